// An instance page: info, extents, syncs, tags, neuroglancer link and, for datatypes with
// a viewer (viewer/sources.js), the slice viewer.
import { getJSON, nodePath } from "../api.js";
import { findNode } from "../dag.js";
import { branchName, h, kvTable, message, replace, show } from "../dom.js";
import { instanceLink } from "../ng.js";
import { OVERLAYS, VIEWERS, isPyramidLevel } from "../viewer/sources.js";
import { SliceViewer } from "../viewer/viewer.js";

export async function render(app, [spec, name], cfg) {
  const repo = await getJSON(`/api/repo/${encodeURIComponent(spec)}/info`);
  const node = findNode(repo.DAG, spec);
  if (!node) throw new Error(`no single version matches ${spec}`);
  const uuid = node.UUID;
  const info = await getJSON(nodePath(uuid, name, "info"));
  const base = info.Base;
  const ext = info.Extended || {};
  const viewer = VIEWERS[base.TypeName];
  // an ROI or annotation instance is shown over the repo's first image (else segmentation)
  const overlay = OVERLAYS[base.TypeName];
  const under = overlay ? ["image", "segmentation"].flatMap((role) => Object.keys(repo.DataInstances)
    .sort().filter((n) => VIEWERS[repo.DataInstances[n].Base.TypeName]?.role === role
      && !isPyramidLevel(n, repo.DataInstances)))[0] : null;
  document.title = `${name} · dvidpy`;

  const syncs = (base.Syncs || []).map((s) => h("a", { class: "tag",
    href: `/console/node/${uuid}/${encodeURIComponent(s)}` }, s));
  const syncedBy = Object.entries(repo.DataInstances)
    .filter(([, i]) => (i.Base.Syncs || []).includes(name))
    .map(([n]) => h("a", { class: "tag", href: `/console/node/${uuid}/${encodeURIComponent(n)}` }, n));
  const extents = info.Extents || (ext.MinPoint !== undefined
    ? { MinPoint: ext.MinPoint, MaxPoint: ext.MaxPoint } : null);
  const ng = instanceLink(cfg, uuid, name, base.TypeName);
  const baseRows = [
    ["Type", h("a", { href: `/api/help/${base.TypeName}` }, base.TypeName)],
    ["Data UUID", h("code", {}, base.DataUUID)],
    ["Compression", base.Compression], ["Versioned", show(base.Versioned)],
    ["Store", base.KVStore], ["Syncs", syncs.length ? syncs : "—"],
    ["Synced by", syncedBy.length ? syncedBy : "—"],
    ["Tags", base.Tags ? Object.entries(base.Tags).map(([k, v]) => `${k}=${v}`).join(", ") : "—"],
  ];
  if (extents) {
    baseRows.push(["Extents", h("span", { id: "extents" },
      extents.MinPoint ? `(${extents.MinPoint.join(", ")}) to (${extents.MaxPoint.join(", ")})`
        : "nothing written")]);
  }
  const extRows = Object.entries(ext).filter(([k]) => !["MinPoint", "MaxPoint"].includes(k))
    .map(([k, v]) => [k, show(v)]);
  const versions = h("select", { id: "version-select", onchange: (ev) => {
    location.href = `/console/node/${ev.target.value}/${encodeURIComponent(name)}${location.hash}`;
  } }, Object.values(repo.DAG.Nodes).sort((a, b) => a.VersionID - b.VersionID).map((n) =>
    h("option", { value: n.UUID, selected: n.UUID === uuid },
      `${n.UUID.slice(0, 8)} ${branchName(n.Branch)}${n.Locked ? "" : " (open)"}`)));

  const viewerEl = h("section", { class: "viewer", id: "viewer" });
  replace(app,
    h("h1", {}, name, " ", h("small", { class: "muted" }, base.TypeName)),
    h("p", { class: "crumbs" },
      h("a", { href: `/console/repo/${repo.Root}#node=${uuid}` }, repo.Alias || repo.Root.slice(0, 8)),
      " · version ", versions,
      ng ? [" · ", h("a", { href: ng, target: "_blank", class: "ng-link", id: "instance-ng" },
        "neuroglancer")] : null),
    viewer || under ? viewerEl : null,
    h("div", { class: "cols" },
      h("section", {}, h("h2", {}, "Info"), kvTable(baseRows)),
      h("section", {}, h("h2", {}, "Extended"), extRows.length ? kvTable(extRows)
        : h("p", { class: "muted" }, "—"))));
  if (!viewer && !under) return;
  if (viewer && (!extents || !extents.MinPoint)) {
    replace(viewerEl, message("nothing written at this version yet", "notice"));
    return;
  }
  const shown = viewer ? name : under;
  const role = VIEWERS[repo.DataInstances[shown].Base.TypeName].role;
  const v = new SliceViewer(viewerEl, {
    uuid, instances: repo.DataInstances, infos: { [name]: info }, cfg,
    image: role === "image" ? shown : "", seg: role === "segmentation" ? shown : "",
    roi: overlay === "roi" ? name : "", ann: overlay === "ann" ? [name] : [],
  });
  await v.start();
  window.addEventListener("hashchange", () => location.reload());  // a pasted view link
  window.consoleViewer = v;  // for the browser tests and for poking at it in devtools
}

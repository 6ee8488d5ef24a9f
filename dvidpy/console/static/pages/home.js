// The server page: server info, stores, load, datatypes, and the repo list.
import { getJSON, postJSON } from "../api.js";
import { h, kvTable, message, replace, show, table } from "../dom.js";

export async function render(app, _args, cfg) {
  // each part on its own: with auth on, an anonymous visitor may see only some of them
  const [info, load, repos, types] = await Promise.all(["/api/server/info", "/api/load",
    "/api/repos/info", "/api/server/compiled-types"].map((p) => getJSON(p).catch((e) => e)));
  const failed = (x) => (x instanceof Error ? message(x.message) : null);
  if (!(info instanceof Error)) document.getElementById("server-note").textContent = info.Note || "";
  const repoList = h("section", { id: "repos" });
  const status = h("div");
  const alias = h("input", { name: "alias", placeholder: "alias", size: 16 });
  const desc = h("input", { name: "description", placeholder: "description", size: 32 });
  const form = h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const r = await postJSON("/api/repos", { alias: alias.value, description: desc.value });
        location.href = `/console/repo/${r.root}`;
      } catch (e) {
        replace(status, message(e.message));
      }
    },
  }, alias, desc, h("button", { type: "submit" }, "New repo"));

  replace(app,
    h("h1", {}, "Server"),
    h("div", { class: "cols" },
      h("section", {}, h("h2", {}, "Info"), failed(info)
        ?? kvTable(Object.entries(info).map(([k, v]) => [k, show(v)]))),
      h("section", {}, h("h2", {}, "Stores"),
        cfg.stores ? [table(["store", "engine", "location"],
          cfg.stores.map((s) => [s.alias, s.engine, s.location || "—"])),
        h("h3", {}, "Backends"),
        kvTable(Object.entries(cfg.backend).map(([k, v]) => [k, v]))]
          : h("p", { class: "muted" }, "shown to administrators"),
        h("h3", {}, "Datatypes"), failed(types) ?? h("p", {}, Object.keys(types).sort()
          .map((t) => h("a", { href: `/api/help/${t}`, class: "tag" }, t))),
        cfg.readonly ? message("read-only mode: writes are refused", "notice") : null),
      h("section", {}, h("h2", {}, "Load"), failed(load)
        ?? kvTable(Object.entries(load).map(([k, v]) => [k, show(v)])))),
    h("h2", {}, "Repos"), repoList, form, status);
  if (repos instanceof Error) replace(repoList, message(repos.message));
  else renderRepos(repoList, repos, cfg.auth !== "none");
}

function renderRepos(el, repos, authOn) {
  const rows = Object.values(repos).sort((a, b) => (a.Alias || "").localeCompare(b.Alias || ""));
  if (!rows.length) {
    replace(el, h("p", { class: "muted" }, authOn
      ? "No repos you may read (signing in may show more)." : "No repos yet."));
    return;
  }
  replace(el, table(["alias", "root", "description", "versions", "instances", "updated"],
    rows.map((r) => {
      const nodes = Object.values(r.DAG.Nodes);
      const insts = Object.entries(r.DataInstances)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, i]) => h("a", {
          class: "tag", href: `/console/node/${r.Root}/${encodeURIComponent(name)}`,
          title: i.Base.TypeName,
        }, name));
      return [
        h("a", { href: `/console/repo/${r.Root}`, class: "repo-link" }, r.Alias || "(no alias)"),
        h("code", {}, r.Root), r.Description, String(nodes.length), insts, r.Updated,
      ];
    }), "grid repos"));
}

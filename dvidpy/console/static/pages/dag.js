// The repo page: the version DAG drawn as a graph, and the selected node's note, log,
// instances and mutations with commit / newversion / branch actions.
import { ApiError, getJSON, nodePath, postJSON } from "../api.js";
import { findNode, layout } from "../dag.js";
import { branchName, h, kvTable, message, replace, shortPrefixes, svg, table } from "../dom.js";
import { nodeLink } from "../ng.js";

const NODE_W = 132, NODE_H = 40, GAP_X = 36, GAP_Y = 34, PAD = 16;

export async function render(app, [spec], cfg) {
  const state = { repo: null, selected: null, cfg };
  const graph = h("div", { class: "dag-wrap", id: "dag" });
  const panel = h("aside", { class: "node-panel", id: "node-panel" });
  const head = h("div");
  replace(app, head, h("div", { class: "dag-page" }, graph, panel));

  async function reload(select) {
    state.repo = await getJSON(`/api/repo/${encodeURIComponent(spec)}/info`);
    const r = state.repo;
    replace(head,
      h("h1", {}, r.Alias || "(no alias)", " ", h("small", { class: "muted" }, "repo ", r.Root)),
      r.Description ? h("p", {}, r.Description) : null);
    document.title = `${r.Alias || r.Root.slice(0, 6)} · dvidpy`;
    const node = select || state.selected || findNode(r.DAG, spec)?.UUID || r.Root;
    state.selected = r.DAG.Nodes[node] ? node : r.Root;
    drawGraph(graph, state, (u) => { state.selected = u; drawGraph(graph, state, null); showNode(); });
    await showNode();
  }

  async function showNode() {
    await renderPanel(panel, state, reload);
    const url = new URL(location.href);
    url.hash = `node=${state.selected}`;
    history.replaceState(null, "", url);
  }

  const fromHash = new URLSearchParams(location.hash.slice(1)).get("node");
  await reload(fromHash);
}

function drawGraph(el, state, onSelect) {
  const dag = state.repo.DAG;
  if (onSelect) state.onSelect = onSelect;
  const { pos, rows, lanes, byId } = layout(dag);
  const prefixes = shortPrefixes(Object.keys(dag.Nodes));
  const W = PAD * 2 + lanes * NODE_W + (lanes - 1) * GAP_X;
  const H = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
  const xy = (id) => {
    const p = pos.get(id);
    return [PAD + p.lane * (NODE_W + GAP_X), PAD + p.row * (NODE_H + GAP_Y)];
  };
  const cells = new Set([...pos.values()].map((p) => `${p.row},${p.lane}`));
  const blocked = (a, b) => {  // a node between rows a.row and b.row, lanes a..b?
    const [l0, l1] = [Math.min(a.lane, b.lane), Math.max(a.lane, b.lane)];
    for (let r = a.row + 1; r < b.row; r++) {
      for (let l = l0; l <= l1; l++) if (cells.has(`${r},${l}`)) return true;
    }
    return false;
  };
  const edges = [];
  const nodes = [];
  for (const n of byId.values()) {
    const [x, y] = xy(n.VersionID);
    for (const pid of n.Parents) {
      if (!pos.has(pid)) continue;
      const [px, py] = xy(pid);
      const x1 = px + NODE_W / 2, y1 = py + NODE_H, x2 = x + NODE_W / 2, y2 = y - 4;
      let d;
      if (blocked(pos.get(pid), pos.get(n.VersionID))) {  // detour through the gutter
        const lane = Math.max(pos.get(pid).lane, pos.get(n.VersionID).lane);
        const gx = PAD + lane * (NODE_W + GAP_X) + NODE_W + GAP_X / 2;
        const ya = y1 + GAP_Y / 2, yb = y - GAP_Y / 2;
        d = `M${x1},${y1} C${x1},${ya} ${gx},${y1} ${gx},${ya + GAP_Y / 2} L${gx},${yb - GAP_Y / 2}`
          + ` C${gx},${y2} ${x2},${yb} ${x2},${y2}`;
      } else {
        const my = (y1 + y2) / 2;
        d = `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
      }
      edges.push(svg("path", { class: n.Parents.length > 1 ? "edge merge" : "edge", d,
        "marker-end": "url(#arrow)", "data-from": byId.get(pid).UUID, "data-to": n.UUID }));
    }
    const sel = n.UUID === state.selected;
    const cls = ["dag-node", n.Locked ? "locked" : "open", n.Parents.length > 1 ? "merge" : "",
      sel ? "selected" : ""].join(" ");
    nodes.push(svg("g", {
      class: cls, transform: `translate(${x},${y})`, "data-uuid": n.UUID,
      "data-branch": branchName(n.Branch), "data-locked": String(n.Locked),
      "data-parents": String(n.Parents.length), tabindex: 0, role: "button",
      onclick: () => state.onSelect(n.UUID),
      onkeydown: (ev) => { if (ev.key === "Enter") state.onSelect(n.UUID); },
    },
    svg("title", {}, `${n.UUID}\n${branchName(n.Branch)} · ${n.Locked ? "locked" : "open"}` +
      (n.Note ? `\n${n.Note}` : "")),
    svg("rect", { width: NODE_W, height: NODE_H, rx: n.Parents.length > 1 ? 14 : 5 }),
    svg("text", { x: 10, y: 17, class: "uuid" }, prefixes.get(n.UUID)),
    svg("text", { x: 10, y: 32, class: "branch" }, branchName(n.Branch)),
    svg("text", { x: NODE_W - 10, y: 17, class: "state", "text-anchor": "end" },
      n.Locked ? "locked" : "open")));
  }
  replace(el, svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "dag" },
    svg("defs", {}, svg("marker", {
      id: "arrow", viewBox: "0 0 10 10", refX: 8, refY: 5, markerWidth: 7, markerHeight: 7,
      orient: "auto-start-reverse",
    }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))),
    edges, nodes));
}

function joined(items) {
  return items.flatMap((x, i) => (i ? [", ", x] : [x]));
}

async function renderPanel(panel, state, reload) {
  const r = state.repo;
  const n = r.DAG.Nodes[state.selected];
  const byId = new Map(Object.values(r.DAG.Nodes).map((x) => [x.VersionID, x]));
  const link = (id) => {
    const m = byId.get(id);
    return m ? h("a", { href: `#node=${m.UUID}`, onclick: (ev) => {
      ev.preventDefault(); state.onSelect(m.UUID);
    } }, m.UUID.slice(0, 8)) : String(id);
  };
  const status = h("div", { class: "action-status", id: "action-status" });
  const act = async (what, path, body) => {
    replace(status);
    try {
      const out = await postJSON(path, body);
      await reload(out && out.child ? out.child : n.UUID);
      replace(document.getElementById("action-status"),
        message(`${what} done`, "notice"));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      replace(status, message(`${what} refused: ${e.message}`));
    }
  };
  const note = h("input", { id: "action-note", placeholder: "note", size: 28 });
  const log = h("input", { id: "action-log", placeholder: "log line (commit)", size: 28 });
  const branch = h("input", { id: "action-branch", placeholder: "new branch name", size: 20 });
  const actions = h("div", { class: "actions" },
    h("div", {}, note), h("div", {}, log),
    h("div", { class: "buttons" },
      h("button", { id: "btn-commit", onclick: () => act("commit", `/api/node/${n.UUID}/commit`,
        { note: note.value, log: log.value ? [log.value] : [] }) }, "Commit"),
      h("button", { id: "btn-newversion", onclick: () => act("newversion",
        `/api/node/${n.UUID}/newversion`, { note: note.value }) }, "New version")),
    h("div", { class: "buttons" }, branch,
      h("button", { id: "btn-branch", onclick: () => act("branch", `/api/node/${n.UUID}/branch`,
        { branch: branch.value, note: note.value }) }, "Branch")),
    status);
  const names = Object.keys(r.DataInstances).sort();
  const mutations = h("div", { id: "node-mutations" }, h("p", { class: "muted" }, "loading…"));
  const ng = nodeLink(state.cfg, n.UUID, r.DataInstances);
  replace(panel,
    h("h2", {}, h("code", {}, n.UUID.slice(0, 8)), " ", branchName(n.Branch),
      h("span", { class: `pill ${n.Locked ? "locked" : "open"}` }, n.Locked ? "locked" : "open")),
    kvTable([
      ["UUID", h("code", {}, n.UUID)], ["Note", n.Note || "—"],
      ["Parents", n.Parents.length ? joined(n.Parents.map(link)) : "— (root)"],
      ["Children", n.Children.length ? joined(n.Children.map(link)) : "—"],
      ["Created", n.Created], ["Updated", n.Updated],
    ]),
    ng ? h("p", {}, h("a", { href: ng, target: "_blank", class: "ng-link", id: "node-ng" },
      "Open this version in neuroglancer")) : null,
    h("h3", {}, "Actions"), actions,
    h("h3", {}, "Log"),
    n.Log.length ? h("ul", { class: "log", id: "node-log" }, n.Log.map((x) => h("li", {}, x)))
      : h("p", { class: "muted", id: "node-log" }, "empty"),
    h("h3", {}, "Instances"),
    names.length ? h("ul", { class: "instances" }, names.map((name) => h("li", {},
      h("a", { href: `/console/node/${n.UUID}/${encodeURIComponent(name)}` }, name), " ",
      h("span", { class: "muted" }, r.DataInstances[name].Base.TypeName))))
      : h("p", { class: "muted" }, "none"),
    h("h3", {}, "Mutations at this version"), mutations);
  const lists = await Promise.all(names.map((name) =>
    getJSON(nodePath(n.UUID, name, "mutations")).catch((e) => ({ error: e.message }))));
  const rows = [];
  names.forEach((name, i) => {
    const ms = lists[i];
    if (ms && ms.error) rows.push([name, "—", "", ms.error, ""]);
    else for (const m of ms || []) {
      rows.push([name, String(m.MutationID), m.Action, m.User || "", m.Timestamp || ""]);
    }
  });
  replace(mutations, rows.length
    ? table(["instance", "id", "action", "user", "time"], rows.slice(-200), "grid small")
    : h("p", { class: "muted" }, "none"));
}

// The version DAG of a repo info answer: lookups and a layered layout for drawing.

/** Nodes of `dag` (repo info's DAG) by VersionID. */
export function nodesById(dag) {
  const m = new Map();
  for (const n of Object.values(dag.Nodes)) m.set(n.VersionID, n);
  return m;
}

/** The HEAD of `branch` ("" or "master" for master): the newest node of the branch that
 *  has no child on the same branch. */
export function branchHead(dag, branch = "") {
  const b = branch === "master" ? "" : branch;
  const byId = nodesById(dag);
  const heads = [...byId.values()].filter((n) => n.Branch === b
    && !n.Children.some((c) => byId.get(c)?.Branch === b));
  heads.sort((x, y) => y.VersionID - x.VersionID);
  return heads[0] || byId.get(Math.min(...byId.keys()));
}

/** The node named by `spec`: a UUID, a unique prefix, PREFIX:branch or PREFIX:branch~N
 *  (as the server resolves them); null when none or ambiguous. */
export function findNode(dag, spec) {
  const [prefix, branchPart] = spec.split(":");
  const matches = Object.keys(dag.Nodes).filter((u) => u.startsWith(prefix));
  if (branchPart === undefined) return matches.length === 1 ? dag.Nodes[matches[0]] : null;
  const [branch, back] = branchPart.split("~");
  let n = branchHead(dag, branch);
  const byId = nodesById(dag);
  for (let i = 0; n && i < Number(back || 0); i++) n = byId.get(n.Parents[0]);
  return n || null;
}

/**
 * Layout: `rows` are generations (longest path from the root), `lanes` one column per
 * branch in order of first appearance; a node whose cell is taken (two children of one
 * node on one branch) gets the next free lane. Returns {pos: Map(VersionID -> {row,
 * lane}), rows, lanes, order (topological)}.
 */
export function layout(dag) {
  const byId = nodesById(dag);
  const indeg = new Map([...byId.keys()].map((k) => [k, 0]));
  for (const n of byId.values()) {
    for (const c of n.Children) if (indeg.has(c)) indeg.set(c, indeg.get(c) + 1);
  }
  const queue = [...byId.keys()].filter((k) => indeg.get(k) === 0).sort((a, b) => a - b);
  const order = [];
  const row = new Map();
  while (queue.length) {
    const id = queue.shift();
    order.push(id);
    const n = byId.get(id);
    const r = Math.max(-1, ...n.Parents.filter((p) => row.has(p)).map((p) => row.get(p))) + 1;
    row.set(id, r);
    for (const c of [...n.Children].sort((a, b) => a - b)) {
      if (!indeg.has(c)) continue;
      indeg.set(c, indeg.get(c) - 1);
      if (indeg.get(c) === 0) queue.push(c);
    }
  }
  const laneOf = new Map();
  const taken = new Set();
  const pos = new Map();
  let lanes = 0;
  for (const id of order) {
    const n = byId.get(id);
    if (!laneOf.has(n.Branch)) laneOf.set(n.Branch, lanes++);
    let lane = laneOf.get(n.Branch);
    while (taken.has(`${row.get(id)},${lane}`)) lane++;
    lanes = Math.max(lanes, lane + 1);
    taken.add(`${row.get(id)},${lane}`);
    pos.set(id, { row: row.get(id), lane });
  }
  const rows = Math.max(0, ...row.values()) + 1;
  return { pos, rows, lanes, order, byId };
}

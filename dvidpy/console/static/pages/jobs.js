// The jobs page: every long-running job of the server with live progress. Each entry of
// JOB_SOURCES lists one kind of job; a source with a `feature` is used only when
// /console/config.json says the server has that route.
import { getJSON, nodePath } from "../api.js";
import { bytes, h, message, replace, table } from "../dom.js";
import { isPyramidLevel } from "../viewer/sources.js";

/** A job row: {kind, id, what, state, cls (the state's style when not its name), done,
 * total, unit, detail, error}. */
/** Style of each ingest job state (running, done, failed). */
const INGEST_CLASS = { PREPARING: "running", UPLOADING: "running", DOWNSAMPLING: "running",
  COMPLETE: "done", FAILED: "failed" };

const JOB_SOURCES = [
  {
    kind: "transfer",
    feature: "transfer",
    async list() {
      const jobs = await getJSON("/api/transfer/jobs");
      return (Array.isArray(jobs) ? jobs : Object.values(jobs)).map((j) => ({
        kind: j.kind || "transfer", id: j.id,
        what: `${j.params?.uuid ?? ""} → ${j.params?.dst ?? j.params?.src ?? ""}`,
        state: j.state, done: j.records, total: j.records_total, unit: "records",
        detail: `${bytes(j.bytes)} · ${Number(j.elapsed || 0).toFixed(1)} s`, error: j.error,
      }));
    },
  },
  {
    kind: "downres",
    /** Pyramid builds: downres-status of every uint8blk instance that has a job. */
    async list(repos) {
      const targets = [];
      for (const r of Object.values(repos)) {
        for (const [name, i] of Object.entries(r.DataInstances)) {
          if (i.Base.TypeName === "uint8blk" && !isPyramidLevel(name, r.DataInstances)) {
            targets.push([r.Root, name]);
          }
        }
      }
      const sts = await Promise.all(targets.map(([root, name]) =>
        getJSON(nodePath(root, name, "downres-status")).catch(() => null)));
      const rows = [];
      targets.forEach(([root, name], k) => {
        const st = sts[k];
        if (!st || !st.State || st.State === "idle") return;
        rows.push({
          kind: "downres", id: `${root.slice(0, 8)}/${name}`, what: `${name} pyramid`,
          state: st.State === "error" ? "failed" : st.State, done: st.BlocksDone,
          total: st.BlocksTotal, unit: "blocks",
          detail: `level ${st.Level}/${st.Levels}` + (st.DirtyBlocks ? ` · ${st.DirtyBlocks} dirty` : ""),
          error: st.Error,
        });
      });
      return rows;
    },
  },
  {
    kind: "ingest",
    feature: "ingest",
    /** Ingest jobs (GET /api/ingest): chunks acknowledged of the job's chunks. */
    async list() {
      const jobs = await getJSON("/api/ingest");
      return jobs.map((j) => {
        const p = j.pyramid_progress;
        const pyramid = j.state === "DOWNSAMPLING" && p
          ? ` · pyramid level ${p.level}/${p.levels}, ${p.tasks_done}/${p.tasks_total} tasks` : "";
        return {
          kind: "ingest", id: j.id, what: `${j.source} → ${j.instance}`,
          state: j.state.toLowerCase(), cls: INGEST_CLASS[j.state] || "",
          done: j.chunks_done, total: j.chunks_total, unit: "chunks",
          detail: `${bytes(j.bytes_done)} of ${bytes(j.bytes_total)}${pyramid}`,
          error: j.error,
        };
      });
    },
  },
];

export async function render(app, _args, cfg) {
  const body = h("div", { id: "jobs" });
  const note = h("p", { class: "muted" });
  replace(app, h("h1", {}, "Jobs"), note, body);
  const sources = JOB_SOURCES.filter((s) => !s.feature || cfg.features[s.feature]);
  note.textContent = `Showing ${sources.map((s) => s.kind).join(", ")} jobs; refreshed while open.`;
  let timer = 0;
  const tick = async () => {
    const repos = await getJSON("/api/repos/info").catch(() => ({}));
    const lists = await Promise.all(sources.map((s) => s.list(repos).catch((e) => [{
      kind: s.kind, id: "—", what: "", state: "failed", error: e.message }])));
    const rows = lists.flat();
    replace(body, rows.length ? table(["kind", "job", "what", "state", "progress", "detail"],
      rows.map((r) => [r.kind, h("code", {}, r.id), r.what,
        h("span", { class: `state ${r.cls || r.state}` }, r.state), progress(r),
        r.error ? message(r.error) : r.detail]), "grid jobs")
      : h("p", { class: "muted" }, "No jobs."));
    const running = rows.some((r) => (r.cls || r.state) === "running");
    timer = setTimeout(tick, running ? 500 : 2000);
  };
  await tick();
  window.addEventListener("pagehide", () => clearTimeout(timer));
}

function progress(r) {
  const total = Number(r.total) || 0;
  const done = Number(r.done) || 0;
  const frac = total ? Math.min(1, done / total) : (r.cls || r.state) === "done" ? 1 : 0;
  return h("div", { class: "progress", title: `${done} / ${total || "?"} ${r.unit || ""}`,
    "data-done": done, "data-total": total },
    h("div", { class: "bar", style: { width: `${(frac * 100).toFixed(1)}%` } }),
    h("span", {}, `${done}${total ? ` / ${total}` : ""} ${r.unit || ""}`));
}

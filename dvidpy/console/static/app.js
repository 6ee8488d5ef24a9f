// Entry point: picks the page from the path (the server answers the same shell for every
// console page) and reports failures in the page.
import { config } from "./api.js";
import { message, replace } from "./dom.js";

const PAGES = [
  [/^\/console\/?$/, "home", () => import("./pages/home.js")],
  [/^\/console\/jobs\/?$/, "jobs", () => import("./pages/jobs.js")],
  [/^\/console\/repo\/([^/]+)\/?$/, "repo", () => import("./pages/dag.js")],
  [/^\/console\/node\/([^/]+)\/([^/]+)\/?$/, "instance", () => import("./pages/instance.js")],
];

async function main() {
  const app = document.getElementById("app");
  const path = location.pathname;
  for (const [re, name, load] of PAGES) {
    const m = path.match(re);
    if (!m) continue;
    document.body.dataset.page = name;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === name);
    }
    try {
      const [mod, cfg] = await Promise.all([load(), config()]);
      await mod.render(app, m.slice(1).map(decodeURIComponent), cfg);
    } catch (e) {
      console.warn(e);
      replace(app, message(e.message || String(e)));
    }
    document.body.dataset.ready = "1";
    return;
  }
  replace(app, message(`no console page at ${path}`));
}

main();

// Entry point: picks the page from the path (the server answers the same shell for every
// console page) and reports failures in the page.
import { ApiError, config, getJSON, postJSON } from "./api.js";
import { h, message, replace } from "./dom.js";

const PAGES = [
  [/^\/console\/?$/, "home", () => import("./pages/home.js")],
  [/^\/console\/jobs\/?$/, "jobs", () => import("./pages/jobs.js")],
  [/^\/console\/login\/?$/, "login", () => import("./pages/login.js")],
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
      if (cfg.auth !== "none") showWho();
      await mod.render(app, m.slice(1).map(decodeURIComponent), cfg);
    } catch (e) {
      console.warn(e);
      replace(app, message(e.message || String(e)), e instanceof ApiError && e.status === 401
        ? h("p", {}, h("a", { href: loginHref(), id: "login-link" }, "Sign in")) : null);
    }
    document.body.dataset.ready = "1";
    return;
  }
  replace(app, message(`no console page at ${path}`));
}

/** The sign-in page, coming back here afterwards. */
export function loginHref() {
  return `/console/login?next=${encodeURIComponent(location.pathname + location.hash)}`;
}

/** Who is signed in (auth on): the user and a sign-out button, or a sign-in link. */
async function showWho() {
  const el = document.getElementById("who");
  const me = await getJSON("/api/server/whoami").catch(() => null);
  if (!me) return;
  if (me.user === null && !me.admin) {
    replace(el, h("a", { href: loginHref(), id: "who-login" }, "Sign in"));
    return;
  }
  replace(el, h("span", { id: "who-user" }, me.user || "admin"), " ",
    h("button", { id: "who-logout", onclick: async () => {
      await postJSON("/api/server/logout");
      location.reload();
    } }, "Sign out"));
}

main();

// Signing in: paste a token (a JWT of this server or of the OIDC issuer, or an API token
// from `dvidpy token create`); the server checks it and keeps it in an HttpOnly cookie.
import { ApiError, postJSON } from "../api.js";
import { h, message, replace } from "../dom.js";

export async function render(app, _args, cfg) {
  const next = new URLSearchParams(location.search).get("next") || "/console/";
  const back = next.startsWith("/console") ? next : "/console/";  // stay on this server
  if (cfg.auth === "none") {
    replace(app, h("h1", {}, "Sign in"),
      message("Authentication is off on this server: no sign-in is needed.", "notice"),
      h("p", {}, h("a", { href: back }, "Back")));
    return;
  }
  const token = h("textarea", { id: "login-token", rows: 4, cols: 72,
    placeholder: "token", autocomplete: "off", spellcheck: false });
  const status = h("div", { id: "login-status" });
  const form = h("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    replace(status);
    try {
      await postJSON("/api/server/login", { token: token.value.trim() });
      location.href = back;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      replace(status, message(`sign-in refused: ${e.message}`));
    }
  } }, h("p", {}, token), h("button", { type: "submit", id: "login-submit" }, "Sign in"));
  replace(app, h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, `This server checks ${cfg.auth === "oidc"
      ? "tokens of its OIDC issuer (or of this server)" : "its own tokens"}; API tokens of `
      + "`dvidpy token create` work too."), form, status);
}

// The console's only way to the server. With auth on, the browser's login cookie
// (POST /api/server/login, HttpOnly) goes with every same-origin request, so no request
// here handles credentials.

/** A refused or failed request; `message` is the server's plain-text answer. */
export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

async function request(method, path, body, signal) {
  const init = { method, headers: {}, signal, credentials: "same-origin" };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, `cannot reach the server: ${e.message}`, path);
  }
  if (!resp.ok) {
    const text = (await resp.text()).trim();
    throw new ApiError(resp.status, text || `${resp.status} ${resp.statusText}`, path);
  }
  return resp;
}

/** GET `path` as JSON. */
export async function getJSON(path, signal) {
  return (await request("GET", path, undefined, signal)).json();
}

/** GET `path` as an ArrayBuffer (optionally gunzipping a gzip body in the browser). */
export async function getBytes(path, { gunzip = false, signal } = {}) {
  const resp = await request("GET", path, undefined, signal);
  if (!gunzip) return resp.arrayBuffer();
  const plain = resp.body.pipeThrough(new DecompressionStream("gzip"));
  return new Response(plain).arrayBuffer();
}

/** GET `path` as a Blob (images). */
export async function getBlob(path, signal) {
  return (await request("GET", path, undefined, signal)).blob();
}

/** POST a JSON body; answers parsed JSON (or text when the answer is not JSON). */
export async function postJSON(path, body) {
  const resp = await request("POST", path, body ?? {});
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `/api/node/{uuid}/{data}/` + rest, with each name percent-encoded. */
export function nodePath(uuid, data, ...rest) {
  const parts = [uuid, data].map(encodeURIComponent);
  return `/api/node/${parts.join("/")}` + (rest.length ? "/" + rest.join("/") : "");
}

let configPromise = null;
/** The server's /console/config.json (fetched once per page). */
export function config() {
  if (!configPromise) configPromise = getJSON("/console/config.json");
  return configPromise;
}

// Small DOM helpers: element building, tables, formatting. Text always goes in as text
// nodes (never innerHTML), so server data cannot inject markup.

/** `h("a", {href, class, onclick, "data-x": 1}, child, [children], "text")`. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/** SVG element with attributes. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A two-column table of [key, value] rows (values: text or nodes). */
export function kvTable(rows, cls = "kv") {
  return h("table", { class: cls }, h("tbody", {},
    rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v ?? "")))));
}

/** A table with a header row; `rows` are arrays of cells. */
export function table(headers, rows, cls = "grid") {
  return h("table", { class: cls },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c ?? ""))))));
}

/** Any JSON value as compact readable text. */
export function show(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** A message box for errors (role=alert) or notices. */
export function message(text, kind = "error") {
  return h("div", { class: `msg ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** Shortest prefix of each UUID (at least `min` characters) that is unique among them. */
export function shortPrefixes(uuids, min = 6) {
  const out = new Map();
  for (const u of uuids) {
    let n = min;
    while (n < u.length && uuids.some((o) => o !== u && o.startsWith(u.slice(0, n)))) n++;
    out.set(u, u.slice(0, n));
  }
  return out;
}

/** Human-readable byte count. */
export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** Branch name as shown ("" is master). */
export function branchName(b) {
  return b ? b : "master";
}

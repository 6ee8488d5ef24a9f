// Neuroglancer links with dvid:// sources on this server. The client is served by this
// server at cfg.neuroglancer (from the neuroglancer package) when it is installed.
import { VIEWERS, isPyramidLevel } from "./viewer/sources.js";

/** Neuroglancer layer for an instance, or null when neuroglancer cannot show its type. */
export function ngLayer(uuid, name, typeName) {
  const v = VIEWERS[typeName];
  if (!v || !v.ngType) return null;
  return { type: v.ngType, name, source: `dvid://${location.origin}/${uuid}/${name}` };
}

/** URL of neuroglancer showing `layers` (null without a served client). */
export function ngUrl(cfg, layers, extra = {}) {
  if (!cfg.neuroglancer || !layers.length) return null;
  const state = { layers, layout: "4panel", ...extra };
  return `${cfg.neuroglancer}#!${encodeURIComponent(JSON.stringify(state))}`;
}

/** Link for one instance (optionally with segments selected and a position). */
export function instanceLink(cfg, uuid, name, typeName, extra = {}) {
  const layer = ngLayer(uuid, name, typeName);
  if (!layer) return null;
  if (extra.segments) layer.segments = extra.segments.map(String);
  const rest = {};
  if (extra.position) rest.position = extra.position;
  return ngUrl(cfg, [layer], rest);
}

/** Link for a whole version: every viewable instance of the repo (pyramid levels of an
 *  image are left out; neuroglancer reads a single instance per layer). */
export function nodeLink(cfg, uuid, instances) {
  const names = Object.keys(instances).sort();
  const layers = [];
  for (const name of names) {
    const t = instances[name].Base.TypeName;
    if (isPyramidLevel(name, instances)) continue;
    const layer = ngLayer(uuid, name, t);
    if (layer) layers.push(layer);
  }
  layers.sort((a, b) => (a.type === "image" ? 0 : 1) - (b.type === "image" ? 0 : 1));
  return ngUrl(cfg, layers);
}

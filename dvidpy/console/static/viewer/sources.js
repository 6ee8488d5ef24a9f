// What the slice viewer can show, by datatype. Each entry says the instance's role in the
// viewer ("image" under, "segmentation" over), its neuroglancer layer type, how to list
// its pyramid levels and how to fetch one 2-D tile of a level from the server's own DVID
// endpoints. Adding a datatype is one more entry here (the imageblk types: grayImage with
// the type's value range, rgba8blk as colour pixels).
import { getBlob, getBytes, getJSON, nodePath } from "../api.js";

/** Axes of each plane: [u (screen right), v (screen down), w (depth)] as x=0, y=1, z=2. */
export const PLANES = { xy: [0, 1, 2], xz: [0, 2, 1], yz: [1, 2, 0] };
const DIMS = { xy: "0_1", xz: "0_2", yz: "1_2" };

/** The 3-D box of a plane rectangle: voxels [u0, u0+nu) x [v0, v0+nv) at depth w. */
export function planeBox(plane, u0, v0, w, nu, nv) {
  const [a, b, c] = PLANES[plane];
  const offset = [0, 0, 0];
  const size = [1, 1, 1];
  offset[a] = u0; offset[b] = v0; offset[c] = w;
  size[a] = nu; size[b] = nv;
  return { offset, size, s: (t) => t.join("_") };
}

/** Whether `name` is level k >= 1 of another instance (NAME_k next to NAME). */
export function isPyramidLevel(name, instances) {
  const m = name.match(/^(.+)_([1-9][0-9]*)$/);
  return Boolean(m && instances[m[1]] && instances[m[1]].Base.TypeName
    === instances[name].Base.TypeName);
}

function extentsOf(info) {
  const e = info.Extended || {};
  if (!e.MinPoint || !e.MaxPoint) return null;
  return { min: e.MinPoint, max: e.MaxPoint };
}

async function decodeGray(blob) {
  const bmp = await createImageBitmap(blob, { colorSpaceConversion: "none",
    premultiplyAlpha: "none" });
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(bmp, 0, 0);
  const px = g.getImageData(0, 0, bmp.width, bmp.height).data;
  const out = new Uint8Array(bmp.width * bmp.height);
  bmp.close();
  for (let i = 0; i < out.length; i++) out[i] = px[i * 4];
  return out;
}

/** Pyramid levels of an image instance: itself, then NAME_1, NAME_2, ... while present. */
async function imageLevels(ctx) {
  const levels = [{ level: 0, name: ctx.name, extents: extentsOf(ctx.info) }];
  for (let k = 1; ctx.instances[`${ctx.name}_${k}`]; k++) {
    const name = `${ctx.name}_${k}`;
    if (ctx.instances[name].Base.TypeName !== ctx.info.Base.TypeName) break;
    const info = await getJSON(nodePath(ctx.uuid, name, "info"));
    levels.push({ level: k, name, extents: extentsOf(info) });
  }
  return levels;
}

/** Scale levels 0..MaxDownresLevel of a labelmap (extents derived from scale 0). */
async function labelmapLevels(ctx) {
  const ext = extentsOf(ctx.info);
  const top = ctx.info.Extended.MaxDownresLevel || 0;
  const levels = [];
  for (let k = 0; k <= top; k++) {
    const f = 2 ** k;
    levels.push({ level: k, name: ctx.name, extents: ext && {
      min: ext.min.map((v) => Math.floor(v / f)), max: ext.max.map((v) => Math.floor(v / f)),
    } });
  }
  return levels;
}

/** A fetchTile reading the one-voxel-thick `raw/0_1_2` box of a plane as voxel values
 *  (little-endian, as the server sends them); `values(buf)` makes the typed array. */
function rawGray(values, kind = "gray") {
  return async function fetchTile(ctx, lvl, plane, u0, v0, w, nu, nv, _opts, signal) {
    const b = planeBox(plane, u0, v0, w, nu, nv);
    const path = nodePath(ctx.uuid, lvl.name, "raw", "0_1_2", b.s(b.size), b.s(b.offset));
    return { kind, data: values(await getBytes(path, { signal })) };
  };
}

/** uint64 voxels as Numbers (exact below 2^53). */
function uint64Values(buf) {
  const w = new Uint32Array(buf);
  const out = new Float64Array(w.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = w[2 * i] + w[2 * i + 1] * 4294967296;
  return out;
}

/** An imageblk type drawn in gray: contrast over `range` (a lookup table when it is
 *  small), pyramid levels NAME_k. */
function grayImage(range, values, step = 1) {
  return { role: "image", ngType: "image", range, step, levels: imageLevels,
    fetchTile: rawGray(values) };
}

/** Datatypes drawn over another instance's slices: the viewer state key they set. */
export const OVERLAYS = { roi: "roi", annotation: "ann" };

export const VIEWERS = {
  uint8blk: {
    role: "image",
    ngType: "image",
    range: [0, 255],
    levels: imageLevels,
    /** 2-D PNG of `raw/{dims}/...` (lossless), decoded to gray values. */
    async fetchTile(ctx, lvl, plane, u0, v0, w, nu, nv, _opts, signal) {
      const b = planeBox(plane, u0, v0, w, nu, nv);
      const path = nodePath(ctx.uuid, lvl.name, "raw", DIMS[plane], `${nu}_${nv}`,
        b.s(b.offset), "png");
      return { kind: "gray", data: await decodeGray(await getBlob(path, signal)) };
    },
  },
  uint16blk: grayImage([0, 65535], (buf) => new Uint16Array(buf)),
  uint32blk: grayImage([0, 4294967295], (buf) => new Uint32Array(buf)),
  uint64blk: grayImage([0, 4294967295], uint64Values),
  float32blk: grayImage([0, 1], (buf) => new Float32Array(buf), 0.001),
  /** RGBA voxels are ImageData pixels as they are (little-endian R, G, B, A bytes). */
  rgba8blk: { role: "image", ngType: "image", levels: imageLevels,
    fetchTile: rawGray((buf) => new Uint32Array(buf), "rgba") },
  labelmap: {
    role: "segmentation",
    ngType: "segmentation",
    levels: labelmapLevels,
    /** uint64 labels of a one-voxel-thick `raw/0_1_2` box at `scale`, gzip-compressed. */
    async fetchTile(ctx, lvl, plane, u0, v0, w, nu, nv, opts, signal) {
      const b = planeBox(plane, u0, v0, w, nu, nv);
      const q = new URLSearchParams({ compression: "gzip" });
      if (lvl.level) q.set("scale", String(lvl.level));
      if (opts.supervoxels) q.set("supervoxels", "true");
      const path = nodePath(ctx.uuid, lvl.name, "raw", "0_1_2", b.s(b.size), b.s(b.offset))
        + `?${q}`;
      const buf = await getBytes(path, { gunzip: true, signal });
      return { kind: "labels", words: new Uint32Array(buf) };
    },
    labelPath(ctx, x, y, z, opts) {
      return nodePath(ctx.uuid, ctx.name, "label", `${x}_${y}_${z}`)
        + (opts.supervoxels ? "?supervoxels=true" : "");
    },
  },
};

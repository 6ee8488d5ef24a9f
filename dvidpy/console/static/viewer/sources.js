// What the slice viewer can show, by datatype. Each entry says the instance's role in the
// viewer ("image" under, "segmentation" over), its neuroglancer layer type, how to list
// its pyramid levels and how to fetch one 2-D tile of a level from the server's own DVID
// endpoints. Adding a datatype (uint16blk, ...) is one more entry here.
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

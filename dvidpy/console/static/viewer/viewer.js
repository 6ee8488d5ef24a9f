// The slice viewer: one canvas showing an image layer and/or a segmentation layer on an
// xy, xz or yz plane, with pan (drag, arrow keys), zoom (wheel, +/-), slice (shift+wheel,
// PageUp/PageDown, the slider), pyramid levels, contrast, label colours, hover and click
// queries to the server, annotation points, an ROI overlay and a body's bounding box.
//
// Geometry: the view is a centre (x, y, z) in scale-0 voxels and a zoom (canvas pixels per
// scale-0 voxel). Voxel i of the u axis covers [i, i+1); canvas pixel sx shows
// u = cu + (sx + 0.5 - W/2) / zoom. Level L (2^L voxels per level voxel) is drawn in
// 256 x 256 tiles of level-L voxels fetched from the layer's source (sources.js).
import { ApiError, getBytes, getJSON, nodePath } from "../api.js";
import { h, kvTable, message, replace } from "../dom.js";
import { instanceLink } from "../ng.js";
import { ColorCache, labelHalves } from "./colors.js";
import { PLANES, VIEWERS, isPyramidLevel } from "./sources.js";

const TILE = 256;
const MAX_TILES = 768;
const MAX_INFLIGHT = 8;
const ANNOTATION_MAX_AREA = 4096 * 4096;
const KIND_COLORS = { PreSyn: "#ffd400", PostSyn: "#00e5ff", Gap: "#ff6df0", Note: "#9dff6b" };

/** One instance drawn as tiles (image or segmentation role). */
class TileLayer {
  constructor(viewer, name, info, role) {
    this.viewer = viewer;
    this.name = name;
    this.info = info;
    this.role = role;
    this.source = VIEWERS[info.Base.TypeName];
    this.ctx = { uuid: viewer.uuid, name, info, instances: viewer.instances };
    this.tiles = new Map();
    this.renderKey = "";
  }

  async init() {
    this.levels = await this.source.levels(this.ctx);
    return this;
  }

  get maxLevel() {
    let k = 0;
    while (k + 1 < this.levels.length && this.levels[k + 1].extents) k++;
    return k;
  }

  variant() {
    return this.role === "segmentation" && this.viewer.state.sv ? "sv" : "";
  }

  key(L, plane, wL, ti, tj) {
    return `${L}|${plane}|${wL}|${ti}|${tj}|${this.variant()}`;
  }

  /** The tile (ti, tj) of level L at depth wL, started loading when new; null when it
   *  lies outside the level's extents. */
  tile(L, plane, wL, ti, tj, fetch = true) {
    const lvl = this.levels[L];
    if (!lvl || !lvl.extents) return null;
    const [a, b, c] = PLANES[plane];
    const ext = lvl.extents;
    if (wL < ext.min[c] || wL > ext.max[c]) return null;
    const u0 = Math.max(ti * TILE, ext.min[a]), u1 = Math.min(ti * TILE + TILE - 1, ext.max[a]);
    const v0 = Math.max(tj * TILE, ext.min[b]), v1 = Math.min(tj * TILE + TILE - 1, ext.max[b]);
    if (u0 > u1 || v0 > v1) return null;
    const key = this.key(L, plane, wL, ti, tj);
    let t = this.tiles.get(key);
    if (t) {
      this.tiles.delete(key);
      this.tiles.set(key, t);
      return t;
    }
    if (!fetch) return null;
    t = { key, state: "queued", L, plane, wL, u0, v0, nu: u1 - u0 + 1, nv: v1 - v0 + 1,
      wanted: this.viewer.gen,
      opts: { supervoxels: this.variant() === "sv" } };
    this.tiles.set(key, t);
    this.viewer.enqueue(this, t);
    while (this.tiles.size > MAX_TILES) {
      const [old] = this.tiles.keys();
      this.tiles.delete(old);
    }
    return t;
  }

  load(t) {
    t.state = "loading";
    return this.source.fetchTile(this.ctx, this.levels[t.L], t.plane, t.u0, t.v0, t.wL, t.nu,
      t.nv, t.opts).then((d) => {
      t.data = d;
      t.state = "ready";
      t.canvasKey = null;
    }, (e) => {
      t.state = "error";
      t.error = e.message;
      this.viewer.reportError(`${this.name}: ${e.message}`);
    });
  }

  /** The tile's canvas, rendered for the viewer's current contrast / selection. */
  canvas(t) {
    if (t.canvasKey === this.renderKey) return t.canvas;
    const img = new ImageData(t.nu, t.nv);
    const out = new Uint32Array(img.data.buffer);
    if (t.data.kind === "rgba") {
      out.set(t.data.data);
    } else if (t.data.kind === "gray") {
      const lut = this.viewer.lut;
      const d = t.data.data;
      const { lo, hi } = this.viewer.state;
      const scale = hi > lo ? 255 / (hi - lo) : 0;
      for (let i = 0; i < out.length; i++) {
        const g = lut ? lut[d[i]]
          : (scale ? Math.max(0, Math.min(255, Math.round((d[i] - lo) * scale)))
            : (d[i] >= lo ? 255 : 0));
        out[i] = 0xFF000000 | (g << 16) | (g << 8) | g;
      }
    } else {
      const colors = this.viewer.colors;
      const sel = this.viewer.selected;
      const w = t.data.words;
      let plo = -1, phi = -1, pword = 0;
      for (let i = 0; i < out.length; i++) {
        const lo = w[2 * i], hi = w[2 * i + 1];
        if (lo !== plo || hi !== phi) {
          plo = lo; phi = hi;
          const alpha = sel && !(sel.lo === lo && sel.hi === hi) ? 80 : 255;
          pword = colors.word(lo, hi, alpha);
        }
        out[i] = pword;
      }
    }
    if (!t.canvas || t.canvas.width !== t.nu || t.canvas.height !== t.nv) {
      t.canvas = new OffscreenCanvas(t.nu, t.nv);
    }
    t.canvas.getContext("2d").putImageData(img, 0, 0);
    t.canvasKey = this.renderKey;
    return t.canvas;
  }

  /** The stored value at level-L voxel (u, v) of the plane, from loaded tiles only. */
  valueAt(L, plane, wL, u, v) {
    const t = this.tile(L, plane, wL, Math.floor(u / TILE), Math.floor(v / TILE), false);
    if (!t || t.state !== "ready") return null;
    const i = (v - t.v0) * t.nu + (u - t.u0);
    if (u < t.u0 || v < t.v0 || u >= t.u0 + t.nu || v >= t.v0 + t.nv) return null;
    return t.data.kind === "gray" ? t.data.data[i] : [t.data.words[2 * i], t.data.words[2 * i + 1]];
  }
}

/** Default view state; `hash` (URLSearchParams) overrides it. */
function parseState(hash, defaults) {
  const s = { ...defaults };
  const num = (k) => (hash.has(k) && Number.isFinite(Number(hash.get(k))) ? Number(hash.get(k))
    : null);
  if (PLANES[hash.get("plane")]) s.plane = hash.get("plane");
  if (hash.has("c")) {
    const c = hash.get("c").split(",").map(Number);
    if (c.length === 3 && c.every(Number.isFinite)) s.center = c;
  }
  if (num("zoom") > 0) s.zoom = num("zoom");
  if (hash.get("level") && hash.get("level") !== "auto" && num("level") >= 0) s.level = num("level");
  for (const k of ["lo", "hi", "opacity"]) if (num(k) !== null) s[k] = num(k);
  if (hash.has("sv")) s.sv = hash.get("sv") === "1";
  for (const k of ["image", "seg", "roi"]) if (hash.has(k)) s[k] = hash.get(k);
  if (hash.has("ann")) s.ann = hash.get("ann").split(",").filter(Boolean);
  return s;
}

export class SliceViewer {
  /**
   * @param root element to build the viewer in
   * @param opts {uuid, instances (repo info DataInstances), infos (name -> info at uuid),
   *   cfg, image (name|""), seg (name|""), roi (name|""), ann ([names])}
   */
  constructor(root, opts) {
    this.root = root;
    this.uuid = opts.uuid;
    this.instances = opts.instances;
    this.infos = opts.infos;
    this.cfg = opts.cfg;
    this.colors = new ColorCache();
    this.queue = [];
    this.inflight = 0;
    this.gen = 0;
    this.selected = null;
    this.annotations = { key: "", points: [], note: "" };
    this.rois = new Map();
    this.hover = null;
    this.hoverSeq = 0;
    this.defaults = { plane: "xy", center: null, zoom: null, level: "auto", lo: 0, hi: 255,
      opacity: opts.image && opts.seg ? 0.5 : 1, sv: false, image: opts.image || "",
      seg: opts.seg || "", roi: opts.roi || "", ann: opts.ann || [] };
    this.state = parseState(new URLSearchParams(location.hash.slice(1)), this.defaults);
  }

  byRole(role) {
    return Object.keys(this.instances).sort().filter((n) => {
      const v = VIEWERS[this.instances[n].Base.TypeName];
      return v && v.role === role && !isPyramidLevel(n, this.instances);
    });
  }

  byType(type) {
    return Object.keys(this.instances).sort()
      .filter((n) => this.instances[n].Base.TypeName === type);
  }

  async info(name) {
    if (!this.infos[name]) this.infos[name] = await getJSON(nodePath(this.uuid, name, "info"));
    return this.infos[name];
  }

  async setLayer(role, name) {
    const key = role === "image" ? "image" : "seg";
    this.state[key] = name;
    this[key] = name ? await new TileLayer(this, name, await this.info(name), role).init() : null;
    if (role === "image") [this.state.lo, this.state.hi] = this.imageRange();
    this.updateLut();
    this.buildControls();
    this.requestRender();
  }

  async start() {
    this.canvas = h("canvas", { class: "slice", tabindex: 0, id: "slice-canvas" });
    this.g = this.canvas.getContext("2d", { alpha: false });
    this.controls = h("div", { class: "viewer-controls" });
    this.statusEl = h("div", { class: "viewer-status", id: "viewer-status" },
      h("span", { id: "vs-view" }), h("span", { id: "vs-pos" }), h("span", { id: "vs-value" }),
      h("span", { id: "vs-label" }), h("span", { id: "vs-ann" }));
    this.bodyEl = h("div", { class: "body-info", id: "body-info" });
    this.errorEl = h("div", { class: "viewer-errors" });
    const stage = h("div", { class: "stage" }, this.canvas);
    replace(this.root, this.controls, stage, this.statusEl, this.errorEl, this.bodyEl);
    const s = this.state;
    this.image = s.image && this.instances[s.image]
      ? await new TileLayer(this, s.image, await this.info(s.image), "image").init() : null;
    this.seg = s.seg && this.instances[s.seg]
      ? await new TileLayer(this, s.seg, await this.info(s.seg), "segmentation").init() : null;
    if (s.roi) await this.loadRoi(s.roi);
    const hash = new URLSearchParams(location.hash.slice(1));
    if (this.image && !hash.has("lo") && !hash.has("hi")) [s.lo, s.hi] = this.imageRange();
    this.updateLut();
    this.resize();
    if (!s.center || !s.zoom) this.fit(!s.center, !s.zoom);
    this.buildControls();
    this.bindEvents();
    new ResizeObserver(() => this.resize()).observe(stage);
    this.requestRender();
  }

  extents() {
    const es = [this.image, this.seg].filter(Boolean).map((l) => l.levels[0].extents)
      .filter(Boolean);
    if (!es.length) return null;
    return {
      min: [0, 1, 2].map((i) => Math.min(...es.map((e) => e.min[i]))),
      max: [0, 1, 2].map((i) => Math.max(...es.map((e) => e.max[i]))),
    };
  }

  fit(center = true, zoom = true) {
    const e = this.extents() || { min: [0, 0, 0], max: [255, 255, 255] };
    const [a, b] = PLANES[this.state.plane];
    if (center) this.state.center = [0, 1, 2].map((i) => Math.floor((e.min[i] + e.max[i] + 1) / 2));
    if (zoom) {
      const fitz = Math.min(this.W / (e.max[a] - e.min[a] + 1), this.H / (e.max[b] - e.min[b] + 1));
      this.state.zoom = 2 ** Math.floor(Math.log2(Math.max(fitz, 1 / 64)));
    }
  }

  resize() {
    const r = this.canvas.getBoundingClientRect();
    const W = Math.max(64, Math.round(r.width)), H = Math.max(64, Math.round(r.height));
    if (W !== this.canvas.width || H !== this.canvas.height) {
      this.canvas.width = W;
      this.canvas.height = H;
    }
    this.W = W;
    this.H = H;
    this.cx = Math.floor(W / 2);  // the canvas pixel whose left/top edge is the centre
    this.cy = Math.floor(H / 2);
    this.requestRender();
  }

  /** [min, max] of the image's voxel values (its VIEWERS entry; 0..255 by default). */
  imageRange() {
    const v = this.image && VIEWERS[this.image.info.Base.TypeName];
    return (v && v.range) || [0, 255];
  }

  updateLut() {
    const { lo, hi } = this.state;
    const [rlo, rhi] = this.imageRange();
    // a table for integer values in 0..2^16-1; wider or fractional ones are mapped per pixel
    const v = this.image && VIEWERS[this.image.info.Base.TypeName];
    const integral = !v || (v.step || 1) === 1;
    this.lut = integral && rlo === 0 && rhi < 65536 ? new Uint8Array(rhi + 1) : null;
    for (let v = 0; this.lut && v <= rhi; v++) {
      const x = hi > lo ? Math.round(((v - lo) * 255) / (hi - lo)) : (v >= lo ? 255 : 0);
      this.lut[v] = Math.max(0, Math.min(255, x));
    }
    if (this.image) this.image.renderKey = `${lo},${hi}`;
    if (this.seg) {
      const s = this.selected;
      this.seg.renderKey = s ? `${s.lo},${s.hi},${s.sv}` : "";
    }
  }

  levelFor(layer) {
    const top = layer.maxLevel;
    if (this.state.level !== "auto") return Math.min(this.state.level, top);
    const L = Math.floor(Math.log2(1 / this.state.zoom) + 1e-9);
    return Math.max(0, Math.min(top, L));
  }

  sliceIndex() {
    return Math.floor(this.state.center[PLANES[this.state.plane][2]]);
  }

  toScreen(u, v) {
    const [a, b] = PLANES[this.state.plane];
    const z = this.state.zoom;
    return [(u - this.state.center[a]) * z + this.cx, (v - this.state.center[b]) * z + this.cy];
  }

  /** Scale-0 voxel under canvas pixel (sx, sy). */
  voxelAt(sx, sy) {
    const [a, b, c] = PLANES[this.state.plane];
    const z = this.state.zoom;
    const p = [0, 0, 0];
    p[a] = Math.floor(this.state.center[a] + (sx + 0.5 - this.cx) / z);
    p[b] = Math.floor(this.state.center[b] + (sy + 0.5 - this.cy) / z);
    p[c] = this.sliceIndex();
    return p;
  }

  enqueue(layer, t) {
    this.queue.push([layer, t]);
  }

  pump() {
    while (this.inflight < MAX_INFLIGHT && this.queue.length) {
      const [layer, t] = this.queue.pop();  // newest first: the current view
      if (t.wanted < this.gen - 1) {  // scrolled away before it was fetched
        layer.tiles.delete(t.key);
        continue;
      }
      this.inflight++;
      layer.load(t).finally(() => {
        this.inflight--;
        this.pump();
        this.requestRender();
      });
    }
  }

  reportError(text) {
    if (this.errorEl.childElementCount < 3) this.errorEl.append(message(text));
  }

  requestRender() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render() {
    if (!this.g || !this.state.center) return;
    const g = this.g;
    this.gen++;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.globalAlpha = 1;
    g.imageSmoothingEnabled = false;
    g.fillStyle = "#000";
    g.fillRect(0, 0, this.W, this.H);
    let pending = 0;
    if (this.image) pending += this.drawLayer(this.image, 1);
    if (this.seg) pending += this.drawLayer(this.seg, this.image ? this.state.opacity : 1);
    g.globalAlpha = 1;
    this.drawRoi();
    this.drawBBox();
    this.drawAnnotations();
    this.pump();
    this.root.dataset.pending = String(pending);
    this.root.dataset.plane = this.state.plane;
    this.updateView();
    this.scheduleHash();
    this.scheduleAnnotations();
  }

  /** Draw a layer's visible tiles (coarser loaded tiles stand in for missing ones);
   *  answers how many visible tiles are not loaded yet. */
  drawLayer(layer, alpha) {
    const g = this.g;
    const L = this.levelFor(layer);
    const f = 2 ** L;
    const [a, b] = PLANES[this.state.plane];
    const z = this.state.zoom;
    const [cu, cv] = [this.state.center[a], this.state.center[b]];
    const slice = this.sliceIndex();
    const wL = Math.floor(slice / f);
    const span = TILE * f;
    const ti0 = Math.floor((cu - this.cx / z) / span);
    const ti1 = Math.floor((cu + (this.W - this.cx) / z) / span);
    const tj0 = Math.floor((cv - this.cy / z) / span);
    const tj1 = Math.floor((cv + (this.H - this.cy) / z) / span);
    g.globalAlpha = alpha;
    let pending = 0;
    for (let tj = tj0; tj <= tj1; tj++) {
      for (let ti = ti0; ti <= ti1; ti++) {
        const t = layer.tile(L, this.state.plane, wL, ti, tj);
        if (!t) continue;
        t.wanted = this.gen;
        if (t.state === "ready") {
          this.blit(layer, t, f);
          continue;
        }
        if (t.state !== "error") pending++;
        for (let k = L + 1; k <= layer.maxLevel; k++) {  // stand-in from a coarser level
          const d = k - L;
          const c = layer.tile(k, this.state.plane, Math.floor(slice / 2 ** k), ti >> d, tj >> d,
            false);
          if (c && c.state === "ready") {
            const [x0, y0] = this.toScreen(t.u0 * f, t.v0 * f);
            const [x1, y1] = this.toScreen((t.u0 + t.nu) * f, (t.v0 + t.nv) * f);
            g.save();
            g.beginPath();
            g.rect(x0, y0, x1 - x0, y1 - y0);
            g.clip();
            this.blit(layer, c, 2 ** k);
            g.restore();
            break;
          }
        }
      }
    }
    return pending;
  }

  blit(layer, t, f) {
    const [x0, y0] = this.toScreen(t.u0 * f, t.v0 * f);
    const [x1, y1] = this.toScreen((t.u0 + t.nu) * f, (t.v0 + t.nv) * f);
    const rx0 = Math.round(x0), ry0 = Math.round(y0);
    this.g.drawImage(layer.canvas(t), rx0, ry0, Math.round(x1) - rx0, Math.round(y1) - ry0);
  }

  // ----- overlays -----------------------------------------------------------------------

  async loadRoi(name) {
    if (!name) return;
    if (!this.rois.has(name)) {
      const [info, spans] = await Promise.all([this.info(name),
        getJSON(nodePath(this.uuid, name, "roi"))]);
      const byZ = new Map(), byY = new Map();
      for (const s of spans) {
        if (!byZ.has(s[0])) byZ.set(s[0], []);
        byZ.get(s[0]).push(s);
        if (!byY.has(s[1])) byY.set(s[1], []);
        byY.get(s[1]).push(s);
      }
      this.rois.set(name, { bs: info.Extended.BlockSize || [32, 32, 32], spans, byZ, byY });
    }
  }

  drawRoi() {
    const roi = this.rois.get(this.state.roi);
    if (!roi) return;
    const g = this.g;
    const [bx, by, bz] = roi.bs;
    const plane = this.state.plane;
    const w = this.sliceIndex();
    const rects = [];  // [u0, v0, u1, v1) in scale-0 voxels
    if (plane === "xy") {
      for (const [, y, x0, x1] of roi.byZ.get(Math.floor(w / bz)) || []) {
        rects.push([x0 * bx, y * by, (x1 + 1) * bx, (y + 1) * by]);
      }
    } else if (plane === "xz") {
      for (const [zz, , x0, x1] of roi.byY.get(Math.floor(w / by)) || []) {
        rects.push([x0 * bx, zz * bz, (x1 + 1) * bx, (zz + 1) * bz]);
      }
    } else {
      const xb = Math.floor(w / bx);
      for (const [zz, y, x0, x1] of roi.spans) {
        if (x0 <= xb && xb <= x1) rects.push([y * by, zz * bz, (y + 1) * by, (zz + 1) * bz]);
      }
    }
    g.fillStyle = "rgba(255, 170, 0, 0.22)";
    g.beginPath();
    for (const [u0, v0, u1, v1] of rects) {
      const [x0, y0] = this.toScreen(u0, v0);
      const [x1, y1] = this.toScreen(u1, v1);
      g.rect(x0, y0, x1 - x0, y1 - y0);
    }
    g.fill();
  }

  drawBBox() {
    const s = this.selected;
    if (!s || !s.bbox) return;
    const [a, b, c] = PLANES[this.state.plane];
    const { min, max } = s.bbox;
    const w = this.sliceIndex();
    const [x0, y0] = this.toScreen(min[a], min[b]);
    const [x1, y1] = this.toScreen(max[a] + 1, max[b] + 1);
    const g = this.g;
    g.save();
    g.strokeStyle = "#fff";
    g.lineWidth = 1.5;
    if (w < min[c] || w > max[c]) g.setLineDash([5, 5]);
    g.strokeRect(x0, y0, x1 - x0, y1 - y0);
    g.restore();
  }

  scheduleAnnotations() {
    clearTimeout(this.annTimer);
    if (!this.state.ann.length) {
      this.annotations = { key: "", points: [], note: "" };
      return;
    }
    this.annTimer = setTimeout(() => this.fetchAnnotations(), 150);
  }

  async fetchAnnotations() {
    const [a, b, c] = PLANES[this.state.plane];
    const z = this.state.zoom;
    const f = 2 ** (this.seg ? this.levelFor(this.seg) : this.image ? this.levelFor(this.image) : 0);
    const q = 64;
    const lo = [0, 0, 0], hi = [0, 0, 0];
    lo[a] = Math.floor((this.state.center[a] - this.cx / z) / q) * q;
    hi[a] = Math.ceil((this.state.center[a] + (this.W - this.cx) / z) / q) * q;
    lo[b] = Math.floor((this.state.center[b] - this.cy / z) / q) * q;
    hi[b] = Math.ceil((this.state.center[b] + (this.H - this.cy) / z) / q) * q;
    const w = this.sliceIndex();
    const half = 2 * f;
    lo[c] = w - half;
    hi[c] = w + half + 1;
    const key = `${this.state.ann.join(",")}|${lo}|${hi}`;
    if (key === this.annotations.key) return;
    if ((hi[a] - lo[a]) * (hi[b] - lo[b]) > ANNOTATION_MAX_AREA) {
      this.annotations = { key, points: [], note: "annotations: zoom in to show" };
      this.updateView();
      this.requestRender();
      return;
    }
    const size = hi.map((v, i) => v - lo[i]).join("_");
    const lists = await Promise.all(this.state.ann.map((name) =>
      getJSON(nodePath(this.uuid, name, "elements", size, lo.join("_")))
        .catch((e) => { this.reportError(`${name}: ${e.message}`); return []; })));
    const points = lists.flatMap((l) => l || []);
    this.annotations = { key, points, note: `annotations: ${points.length}` };
    this.requestRender();
  }

  drawAnnotations() {
    const pts = this.annotations.points;
    if (!pts.length) return;
    const [a, b] = PLANES[this.state.plane];
    const g = this.g;
    const r = Math.max(3, Math.min(8, this.state.zoom * 2));
    for (const e of pts) {
      const [x, y] = this.toScreen(e.Pos[a] + 0.5, e.Pos[b] + 0.5);
      if (x < -r || y < -r || x > this.W + r || y > this.H + r) continue;
      g.beginPath();
      g.arc(x, y, r, 0, 2 * Math.PI);
      g.strokeStyle = KIND_COLORS[e.Kind] || "#ffffff";
      g.lineWidth = 2;
      g.stroke();
    }
  }

  // ----- status, hover, selection -------------------------------------------------------

  updateView() {
    const s = this.state;
    const levels = [this.image, this.seg].filter(Boolean).map((l) => this.levelFor(l));
    replace(this.statusEl.querySelector("#vs-view"),
      `${s.plane} · ${"xyz"[PLANES[s.plane][2]]}=${this.sliceIndex()} · zoom ${+s.zoom.toFixed(3)}` +
      ` · level ${levels.length ? Math.max(...levels) : 0}`);
    replace(this.statusEl.querySelector("#vs-ann"), this.annotations.note);
    if (this.sliceInput) this.sliceInput.value = String(this.sliceIndex());
    if (this.sliceRange) this.sliceRange.value = String(this.sliceIndex());
  }

  showHover(p) {
    replace(this.statusEl.querySelector("#vs-pos"), `(${p.join(", ")})`);
    if (this.image) {
      const L = this.levelFor(this.image), f = 2 ** L;
      const [a, b, c] = PLANES[this.state.plane];
      const v = this.image.valueAt(L, this.state.plane, Math.floor(p[c] / f),
        Math.floor(p[a] / f), Math.floor(p[b] / f));
      replace(this.statusEl.querySelector("#vs-value"), v === null ? "" : `value ${v}`);
    }
    if (!this.seg) return;
    const key = p.join("_") + (this.state.sv ? "sv" : "");
    if (key === this.hoverKey) return;
    this.hoverKey = key;
    clearTimeout(this.hoverTimer);
    this.hoverTimer = setTimeout(async () => {
      const seq = ++this.hoverSeq;
      try {
        const r = await getJSON(VIEWERS[this.seg.info.Base.TypeName].labelPath(this.seg.ctx,
          ...p, { supervoxels: this.state.sv }));
        if (seq !== this.hoverSeq) return;
        const el = this.statusEl.querySelector("#vs-label");
        el.dataset.label = String(r.Label);
        el.dataset.at = p.join(",");
        replace(el, `${this.state.sv ? "supervoxel" : "label"} ${r.Label}`);
      } catch (e) {
        if (e instanceof ApiError) replace(this.statusEl.querySelector("#vs-label"), e.message);
      }
    }, 40);
  }

  async select(p) {
    if (!this.seg) return;
    const sv = this.state.sv;
    const lp = VIEWERS[this.seg.info.Base.TypeName].labelPath(this.seg.ctx, ...p, { supervoxels: sv });
    const label = String((await getJSON(lp)).Label);
    if (label === "0") {
      this.selected = null;
      replace(this.bodyEl);
      this.updateLut();
      this.requestRender();
      return;
    }
    const [lo, hi] = labelHalves(label);
    this.selected = { label, lo, hi, sv };
    this.updateLut();
    this.requestRender();
    const q = sv ? "?supervoxels=true" : "";
    const name = this.seg.name;
    const rows = [["Label", h("span", { id: "body-label" }, label)],
      ["Kind", sv ? "supervoxel" : "body"]];
    const body = h("div", {}, h("h3", {}, sv ? "Supervoxel" : "Body"), kvTable(rows));
    replace(this.bodyEl, body);
    const [size, svs, coarse] = await Promise.all([
      getJSON(nodePath(this.uuid, name, "size", label) + q).catch((e) => e),
      sv ? Promise.resolve(null)
        : getJSON(nodePath(this.uuid, name, "supervoxels", label)).catch((e) => e),
      getBytes(nodePath(this.uuid, name, "sparsevol-coarse", label) + q).catch((e) => e),
    ]);
    if (!this.selected || this.selected.label !== label) return;
    const err = (x) => (x instanceof Error ? x.message : null);
    rows.push(["Voxels", h("span", { id: "body-size" }, err(size) ?? String(size.voxels))]);
    if (!sv) {
      rows.push(["Supervoxels", h("span", { id: "body-svs" }, err(svs)
        ?? `${svs.length}: ${svs.slice(0, 40).join(", ")}${svs.length > 40 ? ", …" : ""}`)]);
    }
    let bboxText = err(coarse);
    if (!bboxText) {
      const bb = coarseBBox(coarse, this.seg.info.Extended.BlockSize);
      this.selected.bbox = bb;
      bboxText = bb ? `(${bb.min.join(", ")}) to (${bb.max.join(", ")})` : "empty";
    }
    rows.push(["Bounding box (sparsevol-coarse)", h("span", { id: "body-bbox" }, bboxText)]);
    const ng = instanceLink(this.cfg, this.uuid, name, this.seg.info.Base.TypeName,
      { segments: [label], position: p });
    replace(this.bodyEl, h("h3", {}, sv ? "Supervoxel" : "Body"), kvTable(rows),
      ng ? h("a", { href: ng, target: "_blank", class: "ng-link" }, "Open in neuroglancer") : null);
    this.requestRender();
  }

  // ----- input ---------------------------------------------------------------------------

  setPlane(plane) {
    this.state.plane = plane;
    this.buildControls();
    this.requestRender();
  }

  moveSlice(d) {
    const c = PLANES[this.state.plane][2];
    this.state.center[c] = this.sliceIndex() + d + 0.5;
    this.requestRender();
  }

  zoomAt(factor, sx = this.cx, sy = this.cy) {
    const [a, b] = PLANES[this.state.plane];
    const s = this.state;
    const nz = Math.max(1 / 256, Math.min(64, s.zoom * factor));
    const ua = s.center[a] + (sx - this.cx) / s.zoom;
    const vb = s.center[b] + (sy - this.cy) / s.zoom;
    s.center[a] = ua - (sx - this.cx) / nz;
    s.center[b] = vb - (sy - this.cy) / nz;
    s.zoom = nz;
    this.requestRender();
  }

  bindEvents() {
    const cv = this.canvas;
    let drag = null;
    cv.addEventListener("pointerdown", (ev) => {
      cv.focus();
      drag = { x: ev.offsetX, y: ev.offsetY, moved: 0, c: [...this.state.center] };
      cv.setPointerCapture(ev.pointerId);
    });
    cv.addEventListener("pointermove", (ev) => {
      if (drag) {
        const [a, b] = PLANES[this.state.plane];
        const dx = ev.offsetX - drag.x, dy = ev.offsetY - drag.y;
        drag.moved = Math.max(drag.moved, Math.abs(dx) + Math.abs(dy));
        if (drag.moved > 3) {
          this.state.center[a] = drag.c[a] - dx / this.state.zoom;
          this.state.center[b] = drag.c[b] - dy / this.state.zoom;
          this.requestRender();
        }
      }
      this.showHover(this.voxelAt(ev.offsetX, ev.offsetY));
    });
    cv.addEventListener("pointerup", (ev) => {
      if (drag && drag.moved <= 3) {
        this.select(this.voxelAt(ev.offsetX, ev.offsetY)).catch((e) => this.reportError(e.message));
      }
      drag = null;
    });
    cv.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      if (ev.shiftKey) this.moveSlice(Math.sign(ev.deltaY || ev.deltaX));
      else this.zoomAt(ev.deltaY < 0 ? 1.25 : 0.8, ev.offsetX, ev.offsetY);
    }, { passive: false });
    cv.addEventListener("keydown", (ev) => {
      const [a, b] = PLANES[this.state.plane];
      const step = (this.W / 8) / this.state.zoom;
      const keys = {
        ArrowLeft: () => { this.state.center[a] -= step; },
        ArrowRight: () => { this.state.center[a] += step; },
        ArrowUp: () => { this.state.center[b] -= step; },
        ArrowDown: () => { this.state.center[b] += step; },
        PageUp: () => this.moveSlice(-1), PageDown: () => this.moveSlice(1),
        ",": () => this.moveSlice(-1), ".": () => this.moveSlice(1),
        "+": () => this.zoomAt(2), "=": () => this.zoomAt(2), "-": () => this.zoomAt(0.5),
      };
      if (keys[ev.key]) {
        ev.preventDefault();
        keys[ev.key]();
        this.requestRender();
      }
    });
  }

  scheduleHash() {
    clearTimeout(this.hashTimer);
    this.hashTimer = setTimeout(() => {
      const s = this.state;
      const q = new URLSearchParams();
      q.set("plane", s.plane);
      q.set("c", s.center.map((v) => +v.toFixed(2)).join(","));
      q.set("zoom", String(+s.zoom.toFixed(5)));
      q.set("level", String(s.level));
      for (const k of ["image", "seg", "roi"]) if (s[k]) q.set(k, s[k]);
      if (s.ann.length) q.set("ann", s.ann.join(","));
      if (s.lo !== 0 || s.hi !== 255) { q.set("lo", s.lo); q.set("hi", s.hi); }
      if (this.seg && this.image) q.set("opacity", String(s.opacity));
      if (s.sv) q.set("sv", "1");
      history.replaceState(null, "", `#${q}`);
    }, 250);
  }

  // ----- controls ----------------------------------------------------------------------

  buildControls() {
    const s = this.state;
    const group = (label, ...els) => h("label", { class: "ctl" }, h("span", {}, label), ...els);
    const select = (id, options, value, onchange) => h("select", { id, onchange: (ev) =>
      onchange(ev.target.value) }, options.map(([v, text]) => h("option",
      { value: v, selected: v === value }, text)));
    const planes = h("span", { class: "seg-buttons" }, Object.keys(PLANES).map((p) => h("button",
      { class: p === s.plane ? "on" : "", id: `plane-${p}`, onclick: () => this.setPlane(p) }, p)));
    const e = this.extents();
    const c = PLANES[s.plane][2];
    const [smin, smax] = e ? [e.min[c], e.max[c]] : [0, 0];
    this.sliceRange = h("input", { type: "range", min: smin, max: smax, value: this.sliceIndex(),
      id: "slice-range", oninput: (ev) => this.moveSlice(Number(ev.target.value) - this.sliceIndex()) });
    this.sliceInput = h("input", { type: "number", value: this.sliceIndex(), id: "slice-input",
      class: "num", onchange: (ev) => this.moveSlice(Number(ev.target.value) - this.sliceIndex()) });
    const top = Math.max(this.image ? this.image.maxLevel : 0, this.seg ? this.seg.maxLevel : 0);
    const levelOpts = [["auto", "auto"]];
    for (let k = 0; k <= top; k++) levelOpts.push([String(k), `${k} (${2 ** k}×)`]);
    const parts = [
      planes,
      group("slice", this.sliceRange, this.sliceInput),
      h("span", { class: "seg-buttons" },
        h("button", { id: "zoom-out", onclick: () => this.zoomAt(0.5) }, "−"),
        h("button", { id: "zoom-in", onclick: () => this.zoomAt(2) }, "+"),
        h("button", { id: "zoom-fit", onclick: () => { this.fit(false, true); this.requestRender(); } },
          "fit")),
      group("level", select("level-select", levelOpts, String(s.level), (v) => {
        s.level = v === "auto" ? "auto" : Number(v);
        this.requestRender();
      })),
    ];
    const images = this.byRole("image");
    if (images.length) {
      parts.push(group("image", select("image-select", [["", "none"],
        ...images.map((n) => [n, n])], s.image, (v) => this.setLayer("image", v))));
    }
    if (this.image) {
      const [rlo, rhi] = this.imageRange();
      const step = VIEWERS[this.image.info.Base.TypeName].step || 1;
      const contrast = (k) => h("input", { type: "range", min: rlo, max: rhi, step, value: s[k],
        id: `contrast-${k}`, oninput: (ev) => {
          s[k] = Number(ev.target.value);
          this.updateLut();
          this.requestRender();
        } });
      parts.push(group("contrast", contrast("lo"), contrast("hi"),
        h("button", { id: "contrast-auto", onclick: () => this.autoContrast() }, "auto"),
        h("button", { id: "contrast-reset", onclick: () => {
          s.lo = rlo; s.hi = rhi; this.updateLut(); this.buildControls(); this.requestRender();
        } }, "reset")));
    }
    const segs = this.byRole("segmentation");
    if (segs.length) {
      parts.push(group("segmentation", select("seg-select", [["", "none"],
        ...segs.map((n) => [n, n])], s.seg, (v) => this.setLayer("segmentation", v))));
    }
    if (this.seg) {
      parts.push(group("supervoxels", h("input", { type: "checkbox", checked: s.sv, id: "sv-toggle",
        onchange: (ev) => {
          s.sv = ev.target.checked;
          this.selected = null;
          this.hoverKey = null;
          replace(this.bodyEl);
          this.updateLut();
          this.requestRender();
        } })));
      if (this.image) {
        parts.push(group("opacity", h("input", { type: "range", min: 0, max: 1, step: 0.05,
          value: s.opacity, id: "seg-opacity", oninput: (ev) => {
            s.opacity = Number(ev.target.value);
            this.requestRender();
          } })));
      }
    }
    const rois = this.byType("roi");
    if (rois.length) {
      parts.push(group("roi", select("roi-select", [["", "none"], ...rois.map((n) => [n, n])],
        s.roi, async (v) => {
          s.roi = v;
          await this.loadRoi(v).catch((err) => this.reportError(err.message));
          this.requestRender();
        })));
    }
    const anns = this.byType("annotation");
    if (anns.length) {
      parts.push(group("annotations", anns.map((n) => h("label", { class: "chk" },
        h("input", { type: "checkbox", checked: s.ann.includes(n), "data-ann": n,
          onchange: (ev) => {
            s.ann = ev.target.checked ? [...new Set([...s.ann, n])] : s.ann.filter((x) => x !== n);
            this.annotations.key = "";
            this.requestRender();
          } }), n))));
    }
    replace(this.controls, parts);
  }

  /** Contrast from the loaded visible image tiles: 1st and 99th percentiles. */
  autoContrast() {
    if (!this.image) return;
    // 1st and 99th percentiles, from a 256-bin histogram over the type's value range
    const [rlo, rhi] = this.imageRange();
    const width = (Number.isInteger(rlo) && Number.isInteger(rhi) ? rhi - rlo + 1 : rhi - rlo)
      / 256 || 1;
    const hist = new Float64Array(256);
    for (const t of this.image.tiles.values()) {
      if (t.state !== "ready" || t.wanted !== this.gen || t.data.kind !== "gray") continue;
      for (const v of t.data.data) hist[Math.max(0, Math.min(255, Math.floor((v - rlo) / width)))]++;
    }
    const total = hist.reduce((x, y) => x + y, 0);
    if (!total) return;
    let acc = 0, lo = 0, hi = 255;
    for (let v = 0; v < 256; v++) {
      acc += hist[v];
      if (acc < total * 0.01) lo = v + 1;
      if (acc <= total * 0.99) hi = v + 1;
    }
    const at = (b) => (width === 1 && rlo === 0 ? b : rlo + b * width);
    this.state.lo = at(Math.min(lo, 254));
    this.state.hi = Math.max(at(Math.min(hi, 255)), this.state.lo + (width === 1 ? 1 : width));
    this.updateLut();
    this.buildControls();
    this.requestRender();
  }
}

/** Voxel bounding box {min, max} (inclusive) of a sparsevol-coarse answer (block spans). */
export function coarseBBox(buf, blockSize) {
  const dv = new DataView(buf);
  if (buf.byteLength < 12) return null;
  const n = dv.getUint32(8, true);
  if (!n) return null;
  const min = [Infinity, Infinity, Infinity], max = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    const o = 12 + 16 * i;
    const x = dv.getInt32(o, true), y = dv.getInt32(o + 4, true), z = dv.getInt32(o + 8, true);
    const len = dv.getInt32(o + 12, true);
    const lo = [x, y, z], hi = [x + len - 1, y, z];
    for (let k = 0; k < 3; k++) {
      min[k] = Math.min(min[k], lo[k]);
      max[k] = Math.max(max[k], hi[k]);
    }
  }
  return { min: min.map((v, k) => v * blockSize[k]), max: max.map((v, k) => (v + 1) * blockSize[k] - 1) };
}

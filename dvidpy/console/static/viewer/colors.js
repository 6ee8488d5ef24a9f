// Label pseudocolours, the same as the server's `pseudocolor` endpoint
// (datatypes/labelmap/images.py): splitmix64's finalizer of the 64-bit label; red is the
// hash's low byte, green the next, blue the third; label 0 is transparent.

const M64 = (1n << 64n) - 1n;

/** [r, g, b, a] of the label whose 32-bit halves are `lo`, `hi`. */
export function labelRGBA(lo, hi) {
  if (lo === 0 && hi === 0) return [0, 0, 0, 0];
  let h = ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)) + 0x9E3779B97F4A7C15n & M64;
  h = ((h ^ (h >> 30n)) * 0xBF58476D1CE4E5B9n) & M64;
  h = ((h ^ (h >> 27n)) * 0x94D049BB133111EBn) & M64;
  h ^= h >> 31n;
  return [Number(h & 0xFFn), Number((h >> 8n) & 0xFFn), Number((h >> 16n) & 0xFFn), 255];
}

/** Decimal text of a label from its halves. */
export function labelText(lo, hi) {
  return ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString();
}

/** Split a decimal label into [lo, hi]. */
export function labelHalves(text) {
  const v = BigInt(text);
  return [Number(v & 0xFFFFFFFFn), Number(v >> 32n)];
}

/** Memoized colours as little-endian RGBA words (for a Uint32Array over ImageData). */
export class ColorCache {
  constructor() {
    this.map = new Map();
  }

  /** Packed colour of (lo, hi) with alpha `alpha` (label 0 stays transparent). */
  word(lo, hi, alpha = 255) {
    const key = hi < 0x200000 ? hi * 4294967296 + lo : `${hi}:${lo}`;
    let rgb = this.map.get(key);
    if (rgb === undefined) {
      const [r, g, b, a] = labelRGBA(lo, hi);
      rgb = a === 0 ? -1 : (b << 16) | (g << 8) | r;
      this.map.set(key, rgb);
      if (this.map.size > 1 << 20) this.map.clear();
    }
    return rgb < 0 ? 0 : ((alpha << 24) | rgb) >>> 0;
  }
}

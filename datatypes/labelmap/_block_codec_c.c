/*
 * Compiled kernels for DVID's compressed label Block format (datatypes/labelmap/block_codec.py
 * describes the layout and is the reference implementation; this file must produce the very
 * same bytes and accept/reject the very same inputs).
 *
 * Python API (all arrays are passed through the buffer protocol, native little-endian):
 *
 *   encode(arr, counts: bool) -> bytes | (bytes, counts_bytes)
 *       arr: 3-D buffer of 8-byte unsigned items (any strides), dims positive multiples of 8,
 *       at most 1024.  counts_bytes holds one uint64 voxel count per entry of the block label
 *       list (which is the sorted unique labels of the block).
 *   label_counts(arr) -> (labels_bytes, counts_bytes)
 *       the sorted unique labels of arr and their voxel counts (no encoding).
 *   decode_into(data, out) -> int
 *       decodes the serialization `data` into the writable 3-D 8-byte buffer `out`, whose
 *       shape must equal the header's (nz, ny, nx).  Returns 0, or 1 when `data` is corrupt in
 *       any way the reference rejects (the caller then asks the reference for the message).
 *
 * The GIL is released while a block is encoded or decoded.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SBS 8                 /* sub-block edge */
#define SBV 512               /* voxels per sub-block */
#define MAX_GRID 128          /* sub-blocks per dimension (1024 voxels) */
#define HSLOTS 1024           /* per-sub-block hash table (load <= 0.5) */

static inline int bits_for(uint32_t n) {
    int b = 0;
    if (n < 2) return 0;
    n -= 1;
    while (n) {
        b++;
        n >>= 1;
    }
    return b;
}

static inline uint64_t hash64(uint64_t v) { return v * 0x9E3779B97F4A7C15ull; }

static inline uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* ---------------------------------------------------------------------------------------- */
/* Encoding                                                                                  */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    uint64_t v;
    uint32_t id;
} pair_t;

static int cmp_pair(const void *a, const void *b) {
    uint64_t x = ((const pair_t *)a)->v, y = ((const pair_t *)b)->v;
    return (x > y) - (x < y);
}

static void sort_pairs(pair_t *p, size_t n) {
    if (n > 24) {
        qsort(p, n, sizeof(pair_t), cmp_pair);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        pair_t t = p[i];
        size_t j = i;
        while (j > 0 && p[j - 1].v > t.v) {
            p[j] = p[j - 1];
            j--;
        }
        p[j] = t;
    }
}

typedef struct {
    /* input volume */
    const char *base;
    Py_ssize_t s0, s1, s2; /* byte strides of z, y, x */
    int gz, gy, gx;
    int pack;              /* produce packed values (else only tables and counts) */
    /* per sub-block */
    uint32_t nsb;
    uint16_t *ns;          /* [nsb] distinct labels per sub-block */
    /* entries: per sub-block, its distinct labels ascending */
    uint64_t *evals;
    uint32_t *ecnt;
    uint32_t *eglob;       /* index into the block label list */
    size_t ne, ecap;
    /* packed values */
    uint8_t *packed;
    size_t plen;
    uint64_t *slab;        /* scratch: one slab of sub-blocks */
    /* block label list and counts */
    uint64_t *labels;
    uint64_t *counts;
    size_t nlab;
} enc_t;

static void enc_free(enc_t *e) {
    free(e->slab);
    free(e->ns);
    free(e->evals);
    free(e->ecnt);
    free(e->eglob);
    free(e->packed);
    free(e->labels);
    free(e->counts);
}

static int grow_entries(enc_t *e, size_t need) {
    if (e->ne + need <= e->ecap) return 0;
    size_t cap = e->ecap ? e->ecap : 1024;
    while (cap < e->ne + need) cap *= 2;
    uint64_t *v = realloc(e->evals, cap * sizeof(uint64_t));
    if (!v) return -1;
    e->evals = v;
    uint32_t *c = realloc(e->ecnt, cap * sizeof(uint32_t));
    if (!c) return -1;
    e->ecnt = c;
    e->ecap = cap;
    return 0;
}

/* Pack 512 values of b bits MSB-first (each 8 values fill exactly b bytes). */
static inline uint8_t *pack_values(uint8_t *dst, const uint16_t *vals, int b) {
    if (b == 9) {
        for (int i = 0; i < SBV; i += 8, dst += 9) {
            uint64_t w = 0;
            for (int x = 0; x < 7; x++) w = (w << 9) | vals[i + x];
            w = (w << 1) | (uint64_t)(vals[i + 7] >> 8);
            for (int j = 0; j < 8; j++) dst[j] = (uint8_t)(w >> (56 - 8 * j));
            dst[8] = (uint8_t)vals[i + 7];
        }
        return dst;
    }
    for (int i = 0; i < SBV; i += 8, dst += b) {
        uint64_t w = 0;
        for (int x = 0; x < 8; x++) w = (w << b) | vals[i + x];
        for (int j = 0; j < b; j++) dst[j] = (uint8_t)(w >> (8 * (b - 1 - j)));
    }
    return dst;
}

/* Runs without the GIL.  Returns 0, or -1 when out of memory. */
static int encode_core(enc_t *e) {
    uint64_t hkey[HSLOTS];
    uint32_t htag[HSLOTS];
    uint16_t hid[HSLOTS];
    uint64_t vals[SBV];
    uint32_t cnt[SBV];
    uint16_t rlen[SBV], rid[SBV], local[SBV], perm[SBV];
    pair_t order[SBV];
    uint32_t gen = 0;
    uint8_t *pdst;

    memset(htag, 0, sizeof(htag));
    e->nsb = (uint32_t)e->gz * (uint32_t)e->gy * (uint32_t)e->gx;
    e->ns = malloc(e->nsb * sizeof(uint16_t));
    if (!e->ns) return -1;
    if (grow_entries(e, 2 * (size_t)e->nsb)) return -1;
    if (e->pack) {
        e->packed = malloc((size_t)e->nsb * 64 * 9);
        if (!e->packed) return -1;
    }
    pdst = e->packed;
    /* One slab (8 z-planes x 8 rows x the block's width) at a time is gathered into sub-block
     * order: the reads run along whole rows, the table work then stays in cache. */
    uint64_t *slab = e->slab = malloc((size_t)e->gx * SBV * sizeof(uint64_t));
    if (!slab) return -1;
    uint32_t sb = 0;
    for (int sz = 0; sz < e->gz; sz++) {
        for (int sy = 0; sy < e->gy; sy++) {
            for (int z = 0; z < SBS; z++) {
                for (int y = 0; y < SBS; y++) {
                    const char *row = e->base + (Py_ssize_t)(sz * SBS + z) * e->s0 +
                                      (Py_ssize_t)(sy * SBS + y) * e->s1;
                    uint64_t *dst = slab + (z * SBS + y) * SBS;
                    if (e->s2 == 8) {
                        for (int sx = 0; sx < e->gx; sx++)
                            memcpy(dst + (size_t)sx * SBV, row + (size_t)sx * 64, 64);
                    } else {
                        for (int sx = 0; sx < e->gx; sx++)
                            for (int x = 0; x < SBS; x++)
                                memcpy(dst + (size_t)sx * SBV + x,
                                       row + (Py_ssize_t)(sx * SBS + x) * e->s2, 8);
                    }
                }
            }
            for (int sx = 0; sx < e->gx; sx++, sb++) {
                const uint64_t *src = slab + (size_t)sx * SBV;
                uint32_t ntab = 0, nruns = 0;
                gen++;
                /* Runs of equal labels along the z,y,x voxel order; one table look-up per run. */
                for (int i = 0; i < SBV;) {
                    uint64_t v = src[i];
                    int j = i + 1;
                    while (j < SBV && src[j] == v) j++;
                    uint16_t pid;
                    uint32_t h = (uint32_t)(hash64(v) >> 54);
                    for (;;) {
                        if (htag[h] != gen) {
                            htag[h] = gen;
                            hkey[h] = v;
                            hid[h] = (uint16_t)ntab;
                            vals[ntab] = v;
                            cnt[ntab] = 0;
                            pid = (uint16_t)ntab++;
                            break;
                        }
                        if (hkey[h] == v) {
                            pid = hid[h];
                            break;
                        }
                        h = (h + 1) & (HSLOTS - 1);
                    }
                    cnt[pid] += (uint32_t)(j - i);
                    rlen[nruns] = (uint16_t)(j - i);
                    rid[nruns++] = pid;
                    i = j;
                }
                e->ns[sb] = (uint16_t)ntab;
                if (grow_entries(e, ntab)) return -1;
                if (ntab == 1) {
                    e->evals[e->ne] = vals[0];
                    e->ecnt[e->ne] = cnt[0];
                    e->ne++;
                    continue;
                }
                for (uint32_t k = 0; k < ntab; k++) {
                    order[k].v = vals[k];
                    order[k].id = k;
                }
                sort_pairs(order, ntab);
                for (uint32_t r = 0; r < ntab; r++) {
                    perm[order[r].id] = (uint16_t)r;
                    e->evals[e->ne + r] = order[r].v;
                    e->ecnt[e->ne + r] = cnt[order[r].id];
                }
                e->ne += ntab;
                if (e->pack) {
                    uint16_t *l = local;
                    for (uint32_t r = 0; r < nruns; r++) {
                        uint16_t v = perm[rid[r]];
                        for (int k = 0; k < rlen[r]; k++) *l++ = v;
                    }
                    pdst = pack_values(pdst, local, bits_for(ntab));
                }
            }
        }
    }
    e->plen = e->pack ? (size_t)(pdst - e->packed) : 0;

    /* Block label list: the distinct entry values, sorted; entries point into it. */
    size_t ne = e->ne, hs = 1024;
    while (hs < 2 * ne) hs *= 2;
    uint64_t *gkey = malloc(hs * sizeof(uint64_t));
    uint32_t *gslot = malloc(hs * sizeof(uint32_t)); /* distinct id + 1 (0 = empty) */
    pair_t *dist = malloc(ne * sizeof(pair_t));
    uint32_t *rank = malloc(ne * sizeof(uint32_t));
    e->eglob = malloc(ne * sizeof(uint32_t));
    if (!gkey || !gslot || !dist || !rank || !e->eglob) {
        free(gkey);
        free(gslot);
        free(dist);
        free(rank);
        return -1;
    }
    memset(gslot, 0, hs * sizeof(uint32_t));
    size_t nd = 0;
    int shift = 64;
    for (size_t t = hs; t > 1; t >>= 1) shift--;
    for (size_t k = 0; k < ne; k++) {
        uint64_t v = e->evals[k];
        size_t h = (size_t)(hash64(v) >> shift);
        for (;;) {
            if (!gslot[h]) {
                gslot[h] = (uint32_t)(nd + 1);
                gkey[h] = v;
                dist[nd].v = v;
                dist[nd].id = (uint32_t)nd;
                e->eglob[k] = (uint32_t)nd++;
                break;
            }
            if (gkey[h] == v) {
                e->eglob[k] = gslot[h] - 1;
                break;
            }
            h = (h + 1) & (hs - 1);
        }
    }
    free(gkey);
    free(gslot);
    sort_pairs(dist, nd);
    e->labels = malloc((nd ? nd : 1) * sizeof(uint64_t));
    e->counts = calloc(nd ? nd : 1, sizeof(uint64_t));
    if (!e->labels || !e->counts) {
        free(dist);
        free(rank);
        return -1;
    }
    for (size_t r = 0; r < nd; r++) {
        rank[dist[r].id] = (uint32_t)r;
        e->labels[r] = dist[r].v;
    }
    for (size_t k = 0; k < ne; k++) {
        uint32_t g = rank[e->eglob[k]];
        e->eglob[k] = g;
        e->counts[g] += e->ecnt[k];
    }
    e->nlab = nd;
    free(dist);
    free(rank);
    return 0;
}

/* Fills `e` from a Python 3-D 8-byte buffer; returns 0, or -1 with an exception set. */
static int enc_run(PyObject *obj, enc_t *e, Py_buffer *view, int pack) {
    memset(e, 0, sizeof(*e));
    e->pack = pack;
    if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO) < 0) return -1;
    if (view->ndim != 3 || view->itemsize != 8) {
        PyErr_SetString(PyExc_ValueError, "label block must be a 3-D array of 8-byte labels");
        PyBuffer_Release(view);
        return -1;
    }
    for (int d = 0; d < 3; d++) {
        Py_ssize_t n = view->shape[d];
        if (n <= 0 || n % SBS || n > SBS * MAX_GRID) {
            PyErr_SetString(PyExc_ValueError,
                            "block dimensions must be positive multiples of 8 and <= 1024");
            PyBuffer_Release(view);
            return -1;
        }
    }
    e->base = view->buf;
    e->s0 = view->strides[0];
    e->s1 = view->strides[1];
    e->s2 = view->strides[2];
    e->gz = (int)(view->shape[0] / SBS);
    e->gy = (int)(view->shape[1] / SBS);
    e->gx = (int)(view->shape[2] / SBS);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = encode_core(e);
    Py_END_ALLOW_THREADS
    if (rc) {
        enc_free(e);
        PyBuffer_Release(view);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *serialize(const enc_t *e) {
    uint32_t head[4] = {(uint32_t)e->gx, (uint32_t)e->gy, (uint32_t)e->gz, (uint32_t)e->nlab};
    if (e->nlab == 1) {
        PyObject *out = PyBytes_FromStringAndSize(NULL, 24);
        if (!out) return NULL;
        char *p = PyBytes_AS_STRING(out);
        memcpy(p, head, 16);
        memcpy(p + 16, e->labels, 8);
        return out;
    }
    size_t total = 16 + 8 * e->nlab + 2 * (size_t)e->nsb + 4 * e->ne + e->plen;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (!out) return NULL;
    char *p = PyBytes_AS_STRING(out);
    memcpy(p, head, 16);
    p += 16;
    memcpy(p, e->labels, 8 * e->nlab);
    p += 8 * e->nlab;
    memcpy(p, e->ns, 2 * (size_t)e->nsb);
    p += 2 * (size_t)e->nsb;
    memcpy(p, e->eglob, 4 * e->ne);
    p += 4 * e->ne;
    memcpy(p, e->packed, e->plen);
    return out;
}

static PyObject *py_encode(PyObject *self, PyObject *args) {
    PyObject *obj;
    int want_counts = 0;
    enc_t e;
    Py_buffer view;
    (void)self;
    if (!PyArg_ParseTuple(args, "Op", &obj, &want_counts)) return NULL;
    if (enc_run(obj, &e, &view, 1)) return NULL;
    PyObject *out = serialize(&e);
    PyObject *res = out;
    if (out && want_counts) {
        PyObject *c = PyBytes_FromStringAndSize((const char *)e.counts, (Py_ssize_t)(8 * e.nlab));
        res = c ? PyTuple_Pack(2, out, c) : NULL;
        Py_XDECREF(c);
        Py_DECREF(out);
    }
    enc_free(&e);
    PyBuffer_Release(&view);
    return res;
}

static PyObject *py_label_counts(PyObject *self, PyObject *args) {
    PyObject *obj;
    enc_t e;
    Py_buffer view;
    (void)self;
    if (!PyArg_ParseTuple(args, "O", &obj)) return NULL;
    if (enc_run(obj, &e, &view, 0)) return NULL;
    PyObject *l = PyBytes_FromStringAndSize((const char *)e.labels, (Py_ssize_t)(8 * e.nlab));
    PyObject *c = PyBytes_FromStringAndSize((const char *)e.counts, (Py_ssize_t)(8 * e.nlab));
    PyObject *res = (l && c) ? PyTuple_Pack(2, l, c) : NULL;
    Py_XDECREF(l);
    Py_XDECREF(c);
    enc_free(&e);
    PyBuffer_Release(&view);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                  */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    char *base;
    Py_ssize_t s0, s1, s2;
} out_t;

static inline void fill_subblock(const out_t *o, int sz, int sy, int sx, uint64_t v) {
    for (int z = 0; z < SBS; z++) {
        for (int y = 0; y < SBS; y++) {
            char *row = o->base + (Py_ssize_t)(sz * SBS + z) * o->s0 +
                        (Py_ssize_t)(sy * SBS + y) * o->s1 + (Py_ssize_t)(sx * SBS) * o->s2;
            for (int x = 0; x < SBS; x++) memcpy(row + x * o->s2, &v, 8);
        }
    }
}

/* Unpacks one sub-block of b-bit values (each 8-voxel x row is exactly b bytes); returns the
 * largest value seen.  Inlined with a constant b at each call site. */
#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

static ALWAYS_INLINE uint32_t
unpack_subblock(const out_t *o, int sz, int sy, int sx, const uint8_t *src, const uint64_t *lut,
                const int b) {
    uint32_t vmax = 0;
    for (int z = 0; z < SBS; z++) {
        for (int y = 0; y < SBS; y++, src += b) {
            char *row = o->base + (Py_ssize_t)(sz * SBS + z) * o->s0 +
                        (Py_ssize_t)(sy * SBS + y) * o->s1 + (Py_ssize_t)(sx * SBS) * o->s2;
            uint64_t w = 0;
            uint32_t v[SBS];
            if (b <= 8) {
                for (int j = 0; j < b; j++) w = (w << 8) | src[j];
                for (int x = 0; x < SBS; x++)
                    v[x] = (uint32_t)(w >> (b * (SBS - 1 - x))) & ((1u << b) - 1);
            } else { /* b == 9: 8 bytes hold 7 values and the top bit of the 8th */
                for (int j = 0; j < 8; j++) w = (w << 8) | src[j];
                for (int x = 0; x < 7; x++) v[x] = (uint32_t)(w >> (55 - 9 * x)) & 0x1FF;
                v[7] = ((uint32_t)(w & 1) << 8) | src[8];
            }
            for (int x = 0; x < SBS; x++) {
                vmax = v[x] > vmax ? v[x] : vmax;
                memcpy(row + x * o->s2, &lut[v[x]], 8);
            }
        }
    }
    return vmax;
}

/* Runs without the GIL.  Returns 0, 1 for corrupt data, -1 when out of memory. */
static int decode_core(const uint8_t *buf, size_t size, const out_t *o) {
    uint32_t gx = rd32(buf), gy = rd32(buf + 4), gz = rd32(buf + 8), n = rd32(buf + 12);
    size_t pos = 16;
    if ((uint64_t)size < pos + 8 * (uint64_t)n) return 1;
    const uint8_t *labels = buf + pos;
    pos += 8 * (size_t)n;
    if (n == 1) {
        uint64_t v = rd64(labels);
        for (uint32_t sz = 0; sz < gz; sz++)
            for (uint32_t sy = 0; sy < gy; sy++)
                for (uint32_t sx = 0; sx < gx; sx++) fill_subblock(o, sz, sy, sx, v);
        return 0;
    }
    size_t nsb = (size_t)gx * gy * gz;
    if (size < pos + 2 * nsb) return 1;
    const uint8_t *ns = buf + pos;
    pos += 2 * nsb;
    uint64_t total = 0, vlen = 0;
    for (size_t s = 0; s < nsb; s++) {
        uint32_t k = rd16(ns + 2 * s);
        if (k > SBV) return 1;
        total += k;
        vlen += 64 * (uint64_t)bits_for(k);
    }
    if ((uint64_t)size < pos + 4 * total) return 1;
    const uint8_t *idx = buf + pos;
    pos += 4 * (size_t)total;
    for (uint64_t t = 0; t < total; t++)
        if (rd32(idx + 4 * t) >= n) return 1;
    if ((uint64_t)size < pos + vlen) return 1;
    const uint8_t *src = buf + pos;
    uint64_t lut[SBV];
    size_t first = 0, s = 0;
    for (uint32_t sz = 0; sz < gz; sz++) {
        for (uint32_t sy = 0; sy < gy; sy++) {
            for (uint32_t sx = 0; sx < gx; sx++, s++) {
                uint32_t k = rd16(ns + 2 * s);
                if (k < 2) {
                    fill_subblock(o, sz, sy, sx, k ? rd64(labels + 8 * rd32(idx + 4 * first)) : 0);
                    first += k;
                    continue;
                }
                for (uint32_t j = 0; j < k; j++)
                    lut[j] = rd64(labels + 8 * (size_t)rd32(idx + 4 * (first + j)));
                first += k;
                int b = bits_for(k);
                uint32_t vmax;
                switch (b) {
                case 1: vmax = unpack_subblock(o, sz, sy, sx, src, lut, 1); break;
                case 2: vmax = unpack_subblock(o, sz, sy, sx, src, lut, 2); break;
                case 3: vmax = unpack_subblock(o, sz, sy, sx, src, lut, 3); break;
                case 4: vmax = unpack_subblock(o, sz, sy, sx, src, lut, 4); break;
                case 5: vmax = unpack_subblock(o, sz, sy, sx, src, lut, 5); break;
                case 6: vmax = unpack_subblock(o, sz, sy, sx, src, lut, 6); break;
                case 7: vmax = unpack_subblock(o, sz, sy, sx, src, lut, 7); break;
                case 8: vmax = unpack_subblock(o, sz, sy, sx, src, lut, 8); break;
                default: vmax = unpack_subblock(o, sz, sy, sx, src, lut, 9); break;
                }
                if (vmax >= k) return 1;
                src += 64 * b;
            }
        }
    }
    return 0;
}

static PyObject *py_decode_into(PyObject *self, PyObject *args) {
    Py_buffer in, out;
    PyObject *outobj;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*O", &in, &outobj)) return NULL;
    if (PyObject_GetBuffer(outobj, &out, PyBUF_RECORDS) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    const uint8_t *buf = in.buf;
    size_t size = (size_t)in.len;
    long rc = 1;
    if (size >= 16) {
        uint32_t gx = rd32(buf), gy = rd32(buf + 4), gz = rd32(buf + 8), n = rd32(buf + 12);
        int grid_ok = gx >= 1 && gx <= MAX_GRID && gy >= 1 && gy <= MAX_GRID && gz >= 1 &&
                      gz <= MAX_GRID && n >= 1;
        if (grid_ok) {
            if (out.ndim != 3 || out.itemsize != 8 || out.shape[0] != (Py_ssize_t)gz * SBS ||
                out.shape[1] != (Py_ssize_t)gy * SBS || out.shape[2] != (Py_ssize_t)gx * SBS) {
                PyBuffer_Release(&in);
                PyBuffer_Release(&out);
                PyErr_SetString(PyExc_ValueError, "output buffer does not match the block shape");
                return NULL;
            }
            out_t o = {out.buf, out.strides[0], out.strides[1], out.strides[2]};
            Py_BEGIN_ALLOW_THREADS
            rc = decode_core(buf, size, &o);
            Py_END_ALLOW_THREADS
        }
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return PyLong_FromLong(rc);
}

static PyMethodDef methods[] = {
    {"encode", py_encode, METH_VARARGS,
     "encode(arr, counts) -> bytes, or (bytes, counts bytes) when counts is true."},
    {"label_counts", py_label_counts, METH_VARARGS,
     "label_counts(arr) -> (sorted unique labels bytes, voxel counts bytes)."},
    {"decode_into", py_decode_into, METH_VARARGS,
     "decode_into(data, out) -> 0, or 1 when data is corrupt."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_block_codec_c",
    "Compiled kernels of datatypes.labelmap.block_codec (DVID compressed label blocks).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__block_codec_c(void) { return PyModule_Create(&module); }

/*
 * Compiled kernel of datatypes/common/blockread.py: decode stored imageblk values (DVID's
 * one-byte frame, then an LZ4 block with its uint32 length, or the raw voxels) and copy the
 * wanted part of each block straight into its place in one preallocated output array.
 * blockread.py holds the numpy reference; this file must write the very same voxels and
 * reject the very same values.
 *
 * Python API:
 *
 *   decode_into(out, out_dims, values, places, block_dims, itemsize, fill, nthreads,
 *               group) -> bytes
 *       out        writable C-contiguous buffer of out_dims = (nz, ny, nx) voxels of
 *                  `itemsize` bytes
 *       values     list of n objects: a stored value (any buffer), or None for a block
 *                  that is not stored (its piece is filled with `fill`)
 *       places     buffer of n*9 int64: dst z,y,x (in out), src z,y,x (in the block),
 *                  extent z,y,x of the piece; every piece must lie inside both (else
 *                  ValueError, nothing written)
 *       block_dims (bz, by, bx)
 *       fill       `itemsize` bytes: the voxel of unstored blocks
 *       nthreads   threads to use (the calling one included); at most one per 4 blocks
 *       group      a thread takes this many consecutive values at a time: the blocks of
 *                  one row along x, whose pieces share the output's cache lines when the
 *                  box is not aligned (two threads writing halves of one line would pass
 *                  it back and forth between their cores)
 *     Returns n status bytes: 0 written, 1 not handled here (a checksummed, gzip or JPEG
 *     value: the caller decodes it), 2 corrupt (the caller asks the reference for the
 *     message). Nothing is written for a value of status 1 or 2.
 *
 * How: a value that holds its voxels as they are (uncompressed, or an LZ4 block that is one
 * run of literals, which is what LZ4 makes of noise: EM grayscale, random test data) is
 * copied from the value itself; any other LZ4 value is decoded into a per-thread scratch
 * block first. The pieces of one group that share their rows (a row of blocks along x)
 * are copied output row by output row, so the cache lines two pieces share are completed
 * at once. benchmarks/imageblk_kernels.py (2 threads, 64³ noise blocks into a 256³ answer): best
 * 0.71 ms aligned and 1.21 ms offset by 32 voxels, against 1.51 and 3.33 ms when every
 * block went through the scratch block; blocks with matches take as long as before.
 *
 * The GIL is released while blocks are decoded; LZ4 is Debian's liblz4 (LZ4_decompress_safe,
 * which never reads or writes outside the buffers it is given).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <lz4.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define COMP_NONE 0
#define COMP_LZ4 4
#define MAX_THREADS 64

typedef struct {
    const uint8_t *buf; /* NULL: not stored */
    Py_ssize_t len;
    const int64_t *pl; /* 9 int64 */
} item_t;

typedef struct {
    uint8_t *out;
    int64_t ony, onx;
    int64_t by, bx;
    size_t isz, block_bytes;
    const uint8_t *fill;
    item_t *items;
    uint8_t *status;
    Py_ssize_t n;
    Py_ssize_t group; /* consecutive values one thread takes at a time */
    Py_ssize_t next;  /* next group, atomic */
    int oom;
} job_t;

static void fill_piece(const job_t *j, const int64_t *pl) {
    size_t isz = j->isz, row = (size_t)pl[8] * isz;
    for (int64_t z = 0; z < pl[6]; z++) {
        for (int64_t y = 0; y < pl[7]; y++) {
            uint8_t *d = j->out + (((pl[0] + z) * j->ony + pl[1] + y) * j->onx + pl[2]) * isz;
            if (isz == 1) {
                memset(d, j->fill[0], row);
            } else {
                for (size_t k = 0; k < row; k += isz) memcpy(d + k, j->fill, isz);
            }
        }
    }
}

static void copy_piece(const job_t *j, const uint8_t *blk, const int64_t *pl) {
    size_t isz = j->isz, row = (size_t)pl[8] * isz;
#if defined(__SSE2__)
    /* Rows of whole cache lines into cache-line aligned places (a block-aligned box of
     * 64-voxel-wide uint8 blocks in an aligned answer) are written with non-temporal
     * stores: no read of each destination line before it is overwritten. In process, 64
     * LZ4 blocks of 64³ into a 256³ answer: 2.1-2.2 ms against 3.9 ms with memcpy. Lines
     * written in parts (unaligned boxes) would cost more that way: memcpy. */
    if (row % 64 == 0) {
        for (int64_t z = 0; z < pl[6]; z++) {
            for (int64_t y = 0; y < pl[7]; y++) {
                uint8_t *d = j->out + (((pl[0] + z) * j->ony + pl[1] + y) * j->onx + pl[2]) * isz;
                const uint8_t *s = blk + (((pl[3] + z) * j->by + pl[4] + y) * j->bx + pl[5]) * isz;
                if (((uintptr_t)d & 63) == 0) {
                    for (size_t k = 0; k < row; k += 16)
                        _mm_stream_si128((__m128i *)(d + k), _mm_loadu_si128((const __m128i *)(s + k)));
                } else {
                    memcpy(d, s, row);
                }
            }
        }
        _mm_sfence();
        return;
    }
#endif
    for (int64_t z = 0; z < pl[6]; z++) {
        for (int64_t y = 0; y < pl[7]; y++) {
            uint8_t *d = j->out + (((pl[0] + z) * j->ony + pl[1] + y) * j->onx + pl[2]) * isz;
            const uint8_t *s = blk + (((pl[3] + z) * j->by + pl[4] + y) * j->bx + pl[5]) * isz;
            memcpy(d, s, row);
        }
    }
}

/* The literals of an LZ4 block holding nothing else, when they are exactly `want` bytes
 * and end the block; else NULL. That is what LZ4 makes of incompressible data (noisy EM
 * grayscale included: LZ4 finds no match in 64³ uint8 of Gaussian noise with sigma >= 10),
 * and LZ4_decompress_safe would write exactly these bytes (a literal run that ends the
 * input is the block's last sequence; its token's match nibble is not read), so the
 * piece is copied from the stored value itself: no decode into the scratch block. */
static const uint8_t *lz4_literals_only(const uint8_t *src, size_t n, size_t want) {
    if (n == 0) return NULL;
    size_t lit = src[0] >> 4, i = 1;
    if (lit == 15) {
        uint8_t b;
        do {
            if (i >= n) return NULL;
            b = src[i++];
            lit += b;
        } while (b == 255);
    }
    return (lit == want && n - i == lit) ? src + i : NULL;
}

/* Where block `it`'s voxels are, for a value that is stored: a pointer into the value
 * itself (uncompressed, or LZ4 of literals only) or into `scratch` (decoded there).
 * Returns 0 (*src set), 1 not handled, 2 corrupt. */
static uint8_t locate(const job_t *j, const item_t *it, uint8_t *scratch, const uint8_t **src) {
    if (it->len < 1) return 2;
    uint8_t head = it->buf[0];
    if (head & 0x18) return 1; /* CRC32: checked by the caller */
    int code = head >> 5;
    if (code == COMP_NONE) {
        if ((size_t)(it->len - 1) != j->block_bytes) return 2;
        *src = it->buf + 1;
        return 0;
    }
    if (code != COMP_LZ4) return 1;
    if (it->len < 5) return 2;
    const uint8_t *p = it->buf + 1;
    uint32_t want = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                    (uint32_t)p[3] << 24;
    if ((size_t)want != j->block_bytes || it->len - 5 > INT32_MAX) return 2;
    const uint8_t *lits = lz4_literals_only(p + 4, (size_t)(it->len - 5), j->block_bytes);
    if (lits != NULL) {
        *src = lits;
        return 0;
    }
    if (scratch == NULL) return 3; /* the caller has no scratch to give: ask again */
    int got = LZ4_decompress_safe((const char *)p + 4, (char *)scratch, (int)(it->len - 5),
                                  (int)j->block_bytes);
    if (got < 0 || (size_t)got != j->block_bytes) return 2;
    *src = scratch;
    return 0;
}

/* Pieces of one row of blocks along x (same dst z, y; same src z, y; same extents z, y):
 * their rows go out in the output's order, each output row written whole before the
 * next, so cache lines that two pieces share are completed at once (an unaligned box's
 * rows start mid-line). Non-temporal stores when every part is 16-byte aligned and sized
 * (aligned boxes; also unaligned ones whose offsets are multiples of 16 voxels of uint8). */
static int same_rows(const int64_t *a, const int64_t *b) {
    return a[0] == b[0] && a[1] == b[1] && a[3] == b[3] && a[4] == b[4] && a[6] == b[6] &&
           a[7] == b[7];
}

static void copy_row_pieces(const job_t *j, const uint8_t *const *src,
                            const int64_t *const *pl, int k) {
    size_t isz = j->isz;
    const int64_t *p0 = pl[0];
#if defined(__SSE2__)
    int nt = 1;
    for (int b = 0; b < k && nt; b++) {
        size_t row = (size_t)pl[b][8] * isz;
        uintptr_t d = (uintptr_t)(j->out + ((p0[0] * j->ony + p0[1]) * j->onx + pl[b][2]) * isz);
        nt = row % 16 == 0 && d % 16 == 0 && ((size_t)j->onx * isz) % 16 == 0;
    }
#endif
    for (int64_t z = 0; z < p0[6]; z++) {
        for (int64_t y = 0; y < p0[7]; y++) {
            uint8_t *drow = j->out + ((p0[0] + z) * j->ony + p0[1] + y) * j->onx * isz;
            for (int b = 0; b < k; b++) {
                const int64_t *q = pl[b];
                uint8_t *d = drow + (size_t)q[2] * isz;
                const uint8_t *s = src[b] + (((q[3] + z) * j->by + q[4] + y) * j->bx + q[5]) * isz;
                size_t row = (size_t)q[8] * isz;
#if defined(__SSE2__)
                if (nt) {
                    for (size_t i = 0; i < row; i += 16)
                        _mm_stream_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
                    continue;
                }
#endif
                memcpy(d, s, row);
            }
        }
    }
#if defined(__SSE2__)
    if (nt) _mm_sfence();
#endif
}

#define ROW_MAX 64 /* pieces copied row by row together */

/* Values [i, end) (one row of blocks along x when the caller grouped them so). */
static void decode_group(job_t *j, Py_ssize_t i, Py_ssize_t end, uint8_t **scratch) {
    const uint8_t *src[ROW_MAX];
    const int64_t *pl[ROW_MAX];
    while (i < end) {
        int k = 0;
        for (; i < end && k < ROW_MAX; i++) {
            const item_t *it = &j->items[i];
            if (it->pl[6] == 0 || it->pl[7] == 0 || it->pl[8] == 0) {
                j->status[i] = 0; /* nothing of this block is wanted */
                continue;
            }
            if (it->buf == NULL) {
                fill_piece(j, it->pl);
                j->status[i] = 0;
                continue;
            }
            const uint8_t *s = NULL;
            uint8_t st = locate(j, it, NULL, &s);
            if (st == 3) { /* LZ4 with matches: decoded into the scratch block, copied now */
                if (*scratch == NULL && (*scratch = malloc(j->block_bytes)) == NULL) {
                    __atomic_store_n(&j->oom, 1, __ATOMIC_RELAXED);
                    continue; /* status stays 3: not done */
                }
                st = locate(j, it, *scratch, &s);
                if (st == 0) copy_piece(j, s, it->pl);
                j->status[i] = st;
                continue;
            }
            j->status[i] = st;
            if (st != 0) continue;
            if (k > 0 && !same_rows(pl[0], it->pl)) { /* not one row: copy what we have */
                copy_row_pieces(j, src, pl, k);
                k = 0;
            }
            src[k] = s;
            pl[k++] = it->pl;
        }
        if (k) copy_row_pieces(j, src, pl, k);
    }
}

static void *worker(void *arg) {
    job_t *j = arg;
    uint8_t *scratch = NULL; /* one block, allocated when a block must be decoded */
    for (;;) {
        Py_ssize_t g = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        Py_ssize_t i = g * j->group, end = i + j->group < j->n ? i + j->group : j->n;
        if (i >= j->n) break;
        decode_group(j, i, end, &scratch);
    }
    free(scratch);
    return NULL;
}

static int dims3(PyObject *t, int64_t d[3], const char *what) {
    if (!PyArg_ParseTuple(t, "LLL", &d[0], &d[1], &d[2])) return -1;
    if (d[0] < 0 || d[1] < 0 || d[2] < 0 || d[0] > (1LL << 31) || d[1] > (1LL << 31) ||
        d[2] > (1LL << 31)) {
        PyErr_Format(PyExc_ValueError, "%s out of range", what);
        return -1;
    }
    return 0;
}

static PyObject *py_decode_into(PyObject *self, PyObject *args) {
    PyObject *outobj, *odims, *values, *placesobj, *bdims;
    Py_ssize_t isz, group;
    Py_buffer fill;
    int nthreads;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO!OOny*in", &outobj, &odims, &PyList_Type, &values,
                          &placesobj, &bdims, &isz, &fill, &nthreads, &group))
        return NULL;
    PyObject *result = NULL;
    Py_buffer out = {0}, places = {0};
    Py_buffer *views = NULL;
    item_t *items = NULL;
    Py_ssize_t n = PyList_GET_SIZE(values), held = 0;
    int64_t od[3], bd[3];
    if (dims3(odims, od, "output dims") < 0 || dims3(bdims, bd, "block dims") < 0) goto done;
    if (isz < 1 || isz > 16 || fill.len != isz) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 1..16 and fill that many bytes");
        goto done;
    }
    int64_t obytes, bbytes;
    if (__builtin_mul_overflow(od[0] * od[1], od[2] * (int64_t)isz, &obytes) ||
        __builtin_mul_overflow(bd[0] * bd[1], bd[2] * (int64_t)isz, &bbytes) ||
        bbytes > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "output or block too large");
        goto done;
    }
    if (PyObject_GetBuffer(outobj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (out.len != obytes) {
        PyErr_SetString(PyExc_ValueError, "output buffer does not match its dims");
        goto done;
    }
    if (PyObject_GetBuffer(placesobj, &places, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (places.len != n * 9 * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "places must hold 9 int64 per value");
        goto done;
    }
    const int64_t *pl = places.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t *q = pl + 9 * i;
        for (int a = 0; a < 3; a++) {
            int64_t e = q[6 + a];
            if (e < 0 || q[a] < 0 || q[3 + a] < 0 || q[a] + e > od[a] || q[3 + a] + e > bd[a]) {
                PyErr_Format(PyExc_ValueError, "place %zd lies outside the output or block", i);
                goto done;
            }
        }
    }
    views = PyMem_Calloc(n ? n : 1, sizeof(Py_buffer));
    items = PyMem_Calloc(n ? n : 1, sizeof(item_t));
    result = PyBytes_FromStringAndSize(NULL, n);
    if (views == NULL || items == NULL || result == NULL) {
        Py_CLEAR(result);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        items[i].pl = pl + 9 * i;
        if (v == Py_None) continue;
        if (PyObject_GetBuffer(v, &views[i], PyBUF_SIMPLE) < 0) {
            Py_CLEAR(result);
            goto done;
        }
        held = i + 1;
        items[i].buf = views[i].buf;
        items[i].len = views[i].len;
    }
    job_t j = {.out = out.buf, .ony = od[1], .onx = od[2], .by = bd[1], .bx = bd[2],
               .isz = (size_t)isz, .block_bytes = (size_t)bbytes,
               .fill = fill.buf, .items = items,
               .status = (uint8_t *)PyBytes_AS_STRING(result), .n = n, .group = 1, .next = 0,
               .oom = 0};
    memset(j.status, 3, (size_t)n); /* 3: not done */
    if (group < 1) group = 1;
    j.group = group;
    if (nthreads > n / 4) nthreads = (int)(n / 4);
    if (nthreads > (n + group - 1) / group) nthreads = (int)((n + group - 1) / group);
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (nthreads < 1) nthreads = 1;
    Py_BEGIN_ALLOW_THREADS
    pthread_t tid[MAX_THREADS];
    int started = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&tid[started], NULL, worker, &j) != 0) break;
        started++;
    }
    worker(&j);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    Py_END_ALLOW_THREADS
    if (j.oom) { /* a thread had no scratch for a block: that block is not done */
        for (Py_ssize_t i = 0; i < n; i++) {
            if (j.status[i] == 3) {
                Py_CLEAR(result);
                PyErr_NoMemory();
                break;
            }
        }
    }
done:
    for (Py_ssize_t i = 0; i < held; i++) {
        if (views[i].obj != NULL) PyBuffer_Release(&views[i]);
    }
    PyMem_Free(views);
    PyMem_Free(items);
    if (out.obj != NULL) PyBuffer_Release(&out);
    if (places.obj != NULL) PyBuffer_Release(&places);
    PyBuffer_Release(&fill);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_into", py_decode_into, METH_VARARGS,
     "decode_into(out, out_dims, values, places, block_dims, itemsize, fill, nthreads, group)"
     " -> status bytes (0 written, 1 not handled, 2 corrupt)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_blockread_c",
    "Compiled kernel of datatypes.common.blockread (imageblk blocks into an output array).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__blockread_c(void) { return PyModule_Create(&module); }

/*
 * Compiled kernel of datatypes/common/blockencode.py: whole blocks of a C-contiguous volume
 * framed as imageblk stores them (DVID's one-byte frame, then an LZ4 block with its uint32
 * length, or the raw voxels), each straight into the bytes object that is the stored value.
 * blockencode.py holds the numpy reference (gather, then dvidpy.codec.serialize); this file
 * must produce values that decode to the very same voxels.
 *
 * Python API:
 *
 *   encode_blocks(vol, vol_dims, origins, block_dims, itemsize, lz4) -> list
 *       vol        C-contiguous buffer of vol_dims = (nz, ny, nx) voxels of `itemsize`
 *                  bytes
 *       origins    buffer of n*3 int64: z, y, x in vol of each block's first voxel; every
 *                  block must lie inside vol (else ValueError, nothing made)
 *       block_dims (bz, by, bx)
 *       lz4        1: LZ4 frame (code 4); 0: uncompressed (code 0)
 *     Returns n bytes objects, the stored values in the order of `origins`.
 *
 * Why: the Python path copies each block four times on its way to the store (the gather,
 * LZ4's output buffer, python-lz4's bytes, the frame join) and pays Python's overhead per
 * block. Here a block's rows are gathered into a scratch block that stays in the core's
 * cache, LZ4 writes after the 5-byte head in a second scratch buffer, and the value is
 * made at its own size from it (an uncompressed value is gathered straight into its own
 * bytes), with the GIL released for the gather and LZ4. One thread per call: callers
 * spread a write's blocks over their thread pool, so values are allocated as and where
 * the Python path allocated them. Tried and not kept, for an ingest's peak memory (0.05-
 * 0.15x more of its bytes in flight): LZ4 straight into values made at LZ4's bound and
 * shrunk after, values made by threads of the kernel's own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <lz4.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define COMP_NONE 0
#define COMP_LZ4 4

typedef struct {
    const uint8_t *vol;
    int64_t vny, vnx;
    int64_t bz, by, bx;
    size_t isz;
} geom_t;

static void gather(const geom_t *g, const int64_t *o, uint8_t *out) {
    size_t row = (size_t)g->bx * g->isz;
    for (int64_t z = 0; z < g->bz; z++) {
        for (int64_t y = 0; y < g->by; y++) {
            const uint8_t *s = g->vol + (((o[0] + z) * g->vny + o[1] + y) * g->vnx + o[2]) * g->isz;
            memcpy(out, s, row);
            out += row;
        }
    }
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

static PyObject *py_encode_blocks(PyObject *self, PyObject *args) {
    PyObject *volobj, *vdims, *originsobj, *bdims;
    Py_ssize_t isz;
    int lz4;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOnp", &volobj, &vdims, &originsobj, &bdims, &isz, &lz4))
        return NULL;
    PyObject *result = NULL, *list = NULL;
    Py_buffer vol = {0}, origins = {0};
    uint8_t *scratch = NULL, *packed = NULL; /* one block's voxels; its LZ4 value */
    Py_ssize_t n = 0;
    int64_t vd[3], bd[3];
    if (dims3(vdims, vd, "volume dims") < 0 || dims3(bdims, bd, "block dims") < 0) goto done;
    if (isz < 1 || isz > 16) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 1..16");
        goto done;
    }
    int64_t vbytes, bbytes;
    if (__builtin_mul_overflow(vd[0] * vd[1], vd[2] * (int64_t)isz, &vbytes) ||
        __builtin_mul_overflow(bd[0] * bd[1], bd[2] * (int64_t)isz, &bbytes) ||
        bbytes > LZ4_MAX_INPUT_SIZE || bbytes == 0) {
        PyErr_SetString(PyExc_ValueError, "volume or block too large, or an empty block");
        goto done;
    }
    if (PyObject_GetBuffer(volobj, &vol, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (vol.len != vbytes) {
        PyErr_SetString(PyExc_ValueError, "volume buffer does not match its dims");
        goto done;
    }
    if (PyObject_GetBuffer(originsobj, &origins, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (origins.len % (3 * (Py_ssize_t)sizeof(int64_t)) != 0) {
        PyErr_SetString(PyExc_ValueError, "origins must hold 3 int64 per block");
        goto done;
    }
    n = origins.len / (3 * (Py_ssize_t)sizeof(int64_t));
    const int64_t *o = origins.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        for (int a = 0; a < 3; a++) {
            if (o[3 * i + a] < 0 || o[3 * i + a] + bd[a] > vd[a]) {
                PyErr_Format(PyExc_ValueError, "block %zd lies outside the volume", i);
                goto done;
            }
        }
    }
    int bound = LZ4_compressBound((int)bbytes);
    geom_t g = {.vol = vol.buf, .vny = vd[1], .vnx = vd[2], .bz = bd[0], .by = bd[1],
                .bx = bd[2], .isz = (size_t)isz};
    list = PyList_New(n);
    if (list == NULL) goto done;
    if (lz4 && n > 0 && ((scratch = PyMem_RawMalloc((size_t)bbytes)) == NULL ||
                         (packed = PyMem_RawMalloc(5 + (size_t)bound)) == NULL)) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t *oi = o + 3 * i;
        if (!lz4) { /* uncompressed: gathered straight into the value */
            PyObject *v = PyBytes_FromStringAndSize(NULL, 1 + (Py_ssize_t)bbytes);
            if (v == NULL) goto done;
            uint8_t *d = (uint8_t *)PyBytes_AS_STRING(v);
            d[0] = COMP_NONE << 5;
            Py_BEGIN_ALLOW_THREADS
            gather(&g, oi, d + 1);
            Py_END_ALLOW_THREADS
            PyList_SET_ITEM(list, i, v);
            continue;
        }
        /* LZ4 into the scratch value, then the value made at its own size: allocated as
         * the Python path allocates them (a value made at LZ4's bound and shrunk after
         * left the allocator fragmented: +0.05x of an ingest's bytes in flight) */
        int got;
        Py_BEGIN_ALLOW_THREADS
        gather(&g, oi, scratch);
        got = LZ4_compress_default((const char *)scratch, (char *)packed + 5, (int)bbytes,
                                   bound);
        Py_END_ALLOW_THREADS
        if (got <= 0) {
            PyErr_SetString(PyExc_RuntimeError, "LZ4 could not compress a block");
            goto done;
        }
        uint32_t bb = (uint32_t)bbytes;
        packed[0] = COMP_LZ4 << 5;
        packed[1] = (uint8_t)bb;
        packed[2] = (uint8_t)(bb >> 8);
        packed[3] = (uint8_t)(bb >> 16);
        packed[4] = (uint8_t)(bb >> 24);
        PyObject *v = PyBytes_FromStringAndSize(NULL, 5 + (Py_ssize_t)got);
        if (v == NULL) goto done;
        Py_BEGIN_ALLOW_THREADS /* the copy without the GIL: the pool's other threads run */
        memcpy(PyBytes_AS_STRING(v), packed, 5 + (size_t)got);
        Py_END_ALLOW_THREADS
        PyList_SET_ITEM(list, i, v);
    }
    result = list;
    list = NULL;
done:
    Py_XDECREF(list);
    PyMem_RawFree(scratch);
    PyMem_RawFree(packed);
    if (vol.obj != NULL) PyBuffer_Release(&vol);
    if (origins.obj != NULL) PyBuffer_Release(&origins);
    return result;
}

static PyMethodDef methods[] = {
    {"encode_blocks", py_encode_blocks, METH_VARARGS,
     "encode_blocks(vol, vol_dims, origins, block_dims, itemsize, lz4) -> list of stored "
     "values."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_blockencode_c",
    "Compiled kernel of datatypes.common.blockencode (imageblk blocks framed for storage).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__blockencode_c(void) { return PyModule_Create(&module); }

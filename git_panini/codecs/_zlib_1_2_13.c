/* Raw deflate by the zlib 1.2.13 bundled in zlib_1_2_13/: the same bytes on every host, whatever zlib
 * Python itself links (zlib-ng on Fedora >= 40, another version elsewhere). deflate-expand re-creates
 * streams with it, so its packs decode everywhere. Built with Z_SOLO (no default allocator, no gz*),
 * NO_GZIP (raw streams only) and Z_PREFIX (our symbols never clash with the process's libz). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "zlib_1_2_13/zlib.h"

#define STEP (1 << 16)

static voidpf zalloc_zeroed(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return calloc(items, size);
}

static void zfree_plain(voidpf opaque, voidpf address)
{
    (void)opaque;
    free(address);
}

static int check_params(int level, int mem, int wbits, int strategy)
{
    if (level < 0 || level > 9 || mem < 1 || mem > 9 || wbits < 9 || wbits > 15 || strategy < 0 || strategy > 4) {
        PyErr_SetString(PyExc_ValueError, "zlib parameters out of range");
        return 0;
    }
    return 1;
}

static int start(z_stream *zs, int level, int mem, int wbits, int strategy)
{
    memset(zs, 0, sizeof(*zs));
    zs->zalloc = zalloc_zeroed;
    zs->zfree = zfree_plain;
    if (deflateInit2(zs, level, Z_DEFLATED, -wbits, mem, strategy) != Z_OK) {
        PyErr_SetString(PyExc_MemoryError, "zlib 1.2.13: deflateInit2 failed");
        return 0;
    }
    return 1;
}

/* Feeds input in STEP slices and hands each run of output to `sink`; stops early when the sink says so.
 * Returns the number of input bytes fed, or -1 on a zlib error. */
typedef int (*sink_fn)(void *state, const unsigned char *out, size_t len);

static Py_ssize_t run(z_stream *zs, const unsigned char *in, size_t in_len, sink_fn sink, void *state, int *stopped)
{
    unsigned char out[STEP];
    size_t pos = 0;
    int flush, ret;
    *stopped = 0;
    do {
        size_t take = in_len - pos < STEP ? in_len - pos : STEP;
        zs->next_in = (Bytef *)(in + pos);
        zs->avail_in = (uInt)take;
        pos += take;
        flush = pos == in_len ? Z_FINISH : Z_NO_FLUSH;
        do {
            zs->next_out = out;
            zs->avail_out = STEP;
            ret = deflate(zs, flush);
            if (ret == Z_STREAM_ERROR)
                return -1;
            if (!sink(state, out, STEP - zs->avail_out)) {
                *stopped = 1;
                return (Py_ssize_t)pos;
            }
        } while (zs->avail_out == 0);
    } while (flush != Z_FINISH);
    return ret == Z_STREAM_END ? (Py_ssize_t)pos : -1;
}

typedef struct {
    unsigned char *buf;
    size_t len, cap;
} growing;

static int append(void *state, const unsigned char *out, size_t len)
{
    growing *g = state;
    if (g->len + len > g->cap) {
        size_t cap = g->cap * 2 > g->len + len ? g->cap * 2 : g->len + len;
        unsigned char *bigger = realloc(g->buf, cap);
        if (bigger == NULL)
            return 0;
        g->buf = bigger;
        g->cap = cap;
    }
    memcpy(g->buf + g->len, out, len);
    g->len += len;
    return 1;
}

typedef struct {
    const unsigned char *expected;
    size_t len, pos;
} comparing;

static int compare(void *state, const unsigned char *out, size_t len)
{
    comparing *c = state;
    if (len > c->len - c->pos || memcmp(c->expected + c->pos, out, len) != 0)
        return 0;
    c->pos += len;
    return 1;
}

PyDoc_STRVAR(deflate_raw_doc,
"deflate_raw(data, level, mem_level, wbits, strategy) -> bytes\n\n"
"The raw deflate stream zlib 1.2.13 writes for data with these parameters (wbits 9-15, no header).");

static PyObject *deflate_raw(PyObject *self, PyObject *args)
{
    Py_buffer data;
    int level, mem, wbits, strategy, stopped;
    z_stream zs;
    growing g = {NULL, 0, 0};
    Py_ssize_t fed;
    PyObject *result;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiii", &data, &level, &mem, &wbits, &strategy))
        return NULL;
    if (!check_params(level, mem, wbits, strategy) || !start(&zs, level, mem, wbits, strategy)) {
        PyBuffer_Release(&data);
        return NULL;
    }
    g.cap = data.len / 2 + 1024;
    g.buf = malloc(g.cap);
    Py_BEGIN_ALLOW_THREADS
    fed = g.buf == NULL ? -1 : run(&zs, data.buf, (size_t)data.len, append, &g, &stopped);
    deflateEnd(&zs);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (fed < 0 || stopped) {
        free(g.buf);
        return PyErr_NoMemory();
    }
    result = PyBytes_FromStringAndSize((const char *)g.buf, (Py_ssize_t)g.len);
    free(g.buf);
    return result;
}

PyDoc_STRVAR(recreates_doc,
"recreates(data, expected, level, mem_level, wbits, strategy) -> (bool, int)\n\n"
"Whether deflate_raw(data, ...) == expected, stopping at the first differing output; and how many\n"
"input bytes were fed to find out.");

static PyObject *recreates(PyObject *self, PyObject *args)
{
    Py_buffer data, expected;
    int level, mem, wbits, strategy, stopped;
    z_stream zs;
    comparing c;
    Py_ssize_t fed;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*iiii", &data, &expected, &level, &mem, &wbits, &strategy))
        return NULL;
    if (!check_params(level, mem, wbits, strategy) || !start(&zs, level, mem, wbits, strategy)) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&expected);
        return NULL;
    }
    c.expected = expected.buf;
    c.len = (size_t)expected.len;
    c.pos = 0;
    Py_BEGIN_ALLOW_THREADS
    fed = run(&zs, data.buf, (size_t)data.len, compare, &c, &stopped);
    deflateEnd(&zs);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&expected);
    if (fed < 0) {
        PyErr_SetString(PyExc_RuntimeError, "zlib 1.2.13: deflate failed");
        return NULL;
    }
    return Py_BuildValue("(On)", (!stopped && c.pos == c.len) ? Py_True : Py_False, fed);
}

static PyMethodDef methods[] = {
    {"deflate_raw", deflate_raw, METH_VARARGS, deflate_raw_doc},
    {"recreates", recreates, METH_VARARGS, recreates_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_zlib_1_2_13",
    "Raw deflate by the bundled zlib 1.2.13: identical output on every host.", -1, methods,
};

PyMODINIT_FUNC PyInit__zlib_1_2_13(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "VERSION", ZLIB_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

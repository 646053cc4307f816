/*
 * mcpi.core._sobol: a block of scrambled Sobol' points as doubles, compiled.
 *
 * The same points as mcpi.core.sobol.points() followed by to_unit(), in one pass: point
 * `start` is the XOR of the (scrambled) direction vectors over the bits of its Gray code,
 * and the shift; each following point differs from the one before by one direction
 * vector, that of the lowest set bit of its index (Gray-code order). Each 64-bit
 * coordinate x becomes the double (floor(x / 2**12) + 0.5) * 2**-52: the centre of its
 * cell of width 2**-52, exactly (a 53-bit integer times a power of two), never 0 or 1.
 * Integer XORs and exact conversions only: the numpy reference gives the same bits, and
 * the tests hold the two to each other. About one nanosecond a coordinate, where numpy's
 * several passes take tens.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define BITS 64

static void fill(const uint64_t *vectors, const uint64_t *shift, Py_ssize_t dims, uint64_t start,
                 Py_ssize_t count, double *out, uint64_t *x)
{
    const uint64_t gray = start ^ (start >> 1);
    for (Py_ssize_t j = 0; j < dims; j++) {
        uint64_t value = shift[j];
        for (int k = 0; k < BITS; k++)
            if ((gray >> k) & 1)
                value ^= vectors[j * BITS + k];
        x[j] = value;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        double *row = out + i * dims;
        for (Py_ssize_t j = 0; j < dims; j++)
            row[j] = ((double)(x[j] >> 12) + 0.5) * 0x1p-52;
        /* The next index's lowest set bit: its Gray code differs from this one's there. */
        const uint64_t next = start + (uint64_t)i + 1;
        if (next == 0)
            break; /* past the sequence's last point (only when count reaches 2**64) */
        const int k = __builtin_ctzll(next);
        for (Py_ssize_t j = 0; j < dims; j++)
            x[j] ^= vectors[j * BITS + k];
    }
}

PyDoc_STRVAR(fill_doc,
             "fill(vectors, shift, start, out)\n\n"
             "Write points start, start + 1, ... of the Sobol' sequence with direction\n"
             "vectors `vectors` (uint64, dims x 64, C-contiguous) and digital shift `shift`\n"
             "(uint64, dims) into `out` (float64, count x dims, C-contiguous), each coordinate\n"
             "as the centre of its cell of width 2**-52.");

static PyObject *py_fill(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer vectors, shift, out;
    unsigned long long start;
    if (!PyArg_ParseTuple(args, "y*y*Kw*", &vectors, &shift, &start, &out))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t dims = shift.len / 8;
    if (shift.len % 8 || dims < 1 || vectors.len != dims * BITS * 8 || out.len % (dims * 8)) {
        PyErr_SetString(PyExc_ValueError,
                        "fill: vectors of dims x 64, a shift of dims, out of count x dims");
        goto done;
    }
    uint64_t *x = PyMem_Malloc((size_t)dims * sizeof(uint64_t));
    if (x == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const Py_ssize_t count = out.len / (dims * 8);
    Py_BEGIN_ALLOW_THREADS
    fill(vectors.buf, shift.buf, dims, (uint64_t)start, count, out.buf, x);
    Py_END_ALLOW_THREADS
    PyMem_Free(x);
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&vectors);
    PyBuffer_Release(&shift);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"fill", py_fill, METH_VARARGS, fill_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_sobol",
    .m_doc = "Scrambled Sobol' points as doubles, compiled (see mcpi.core.sobol).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__sobol(void)
{
    return PyModule_Create(&module);
}

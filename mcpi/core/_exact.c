/*
 * mcpi.core._exact: the bucket pass of mcpi.core.exact.ExactSum, compiled.
 *
 * ExactSum keeps, per bucket (a double's sign and biased exponent: its top 12 bits), the
 * sums of the two 26-bit halves of the mantissas and a count, as 64-bit integers. In
 * numpy that pass costs several passes over the data and three bincounts (~10-20 ns a
 * value); here it is one pass of integer additions (~1 ns a value). The sums are exact in
 * both while at most 2**26 values are taken between folds (a sum of 2**26 values below
 * 2**26 is below 2**52, over all rows together, so numpy's float64 bincounts are exact
 * too), which the caller guarantees: the buckets hold the same numbers, whichever of the
 * two filled them. It can also add the values' squares, each one correctly rounded IEEE product (the
 * same as numpy's x * x), without a temporary array.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define BUCKETS 4096
#define HALF 26
#define HALF_MASK ((UINT64_C(1) << HALF) - 1)
/* Value i goes to row i % ROWS of the buckets: consecutive values mostly share a bucket
   (one exponent), and with one row each addition would wait on the previous one's store. */
#define ROWS 8

PyDoc_STRVAR(add_doc,
             "add(values, table, square) -> (first, stop)\n\n"
             "Add the float64 values (a C-contiguous buffer), or with square their IEEE\n"
             "squares, into table (uint64, ROWS x 4096 cells of high, low, count), cell\n"
             "(sign | exponent << 1) of row i %% ROWS for value i; return the range of cells\n"
             "touched.");

static PyObject *py_add(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer values, table;
    int square;
    if (!PyArg_ParseTuple(args, "y*w*p", &values, &table, &square))
        return NULL;
    PyObject *result = NULL;
    if (values.len % 8 || table.len != (Py_ssize_t)ROWS * BUCKETS * 3 * 8) {
        PyErr_SetString(PyExc_ValueError, "add: values of 8 bytes, a table of ROWS x 4096 x 3");
        goto done;
    }
    const unsigned char *bytes = values.buf;
    uint64_t *cells = table.buf;
    size_t size = (size_t)values.len / 8;
    unsigned first = BUCKETS, stop = 0;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < size; i++) {
        double x;
        memcpy(&x, bytes + 8 * i, 8);
        if (square)
            x = x * x; /* one correctly rounded product, as numpy's x * x */
        uint64_t bits;
        memcpy(&bits, &x, 8);
        /* The cell of a sign and exponent: the two signs of one exponent side by side, so
           that mixed signs do not hit cells 4 KiB apart (which the core mistakes for
           dependent loads and stores). */
        unsigned c = (unsigned)(((bits >> 51) & 0xFFE) | (bits >> 63));
        uint64_t *cell = cells + ((i % ROWS) * BUCKETS + c) * 3;
        cell[0] += (bits >> HALF) & HALF_MASK;
        cell[1] += bits & HALF_MASK;
        cell[2] += 1;
        /* Without branches: signs mixed at random would mispredict. */
        first ^= (first ^ c) & -(unsigned)(c < first);
        stop ^= (stop ^ (c + 1)) & -(unsigned)(c + 1 > stop);
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(II)", first, stop);
done:
    PyBuffer_Release(&values);
    PyBuffer_Release(&table);
    return result;
}

static PyMethodDef methods[] = {
    {"add", py_add, METH_VARARGS, add_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_exact",
    .m_doc = "The bucket pass of exact sums, compiled (see mcpi.core.exact).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__exact(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "ROWS", ROWS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

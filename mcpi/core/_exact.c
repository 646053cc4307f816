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
 *
 * On CPUs with AVX-512 a faster pass takes most values out of the buckets: the window.
 * Every finite double is m * 2**(e-1075) (m its 53-bit mantissa with the implicit bit,
 * e >= 1 its biased exponent, or 1 for zeros and subnormals). Given the largest exponent
 * E of a call's values, each value within 64 binades of it, m << (e - E + 64), is an
 * integer below 2**117, exact; 8 lanes add them in 128-bit integers, positive and
 * negative values apart (2048 values a lane fit), spilled into one 192-bit sum. The
 * caller gets that sum and its scale, 2**(E - 65) units of 2**-1074; the few values
 * further below go to the buckets as before. About 0.2 ns a value, against ~1 ns for the
 * buckets. Integers all the way: the caller's sum is the same, exactly, either way.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#include <immintrin.h>
#define HAVE_WINDOW_PATH 1
#endif

#define BUCKETS 4096
#define HALF 26
#define HALF_MASK ((UINT64_C(1) << HALF) - 1)
/* Value i goes to row i % ROWS of the buckets: consecutive values mostly share a bucket
   (one exponent), and with one row each addition would wait on the previous one's store. */
#define ROWS 8

/* Add one value's bits to the buckets: row `row` % ROWS, cell of its sign and exponent. */
static inline void bucket(uint64_t *cells, uint64_t bits, size_t row, unsigned *first,
                          unsigned *stop)
{
    /* The cell of a sign and exponent: the two signs of one exponent side by side, so that
       mixed signs do not hit cells 4 KiB apart (which the core mistakes for dependent loads
       and stores). */
    unsigned c = (unsigned)(((bits >> 51) & 0xFFE) | (bits >> 63));
    uint64_t *cell = cells + ((row % ROWS) * BUCKETS + c) * 3;
    cell[0] += (bits >> HALF) & HALF_MASK;
    cell[1] += bits & HALF_MASK;
    cell[2] += 1;
    /* Without branches: signs mixed at random would mispredict. */
    *first ^= (*first ^ c) & -(unsigned)(c < *first);
    *stop ^= (*stop ^ (c + 1)) & -(unsigned)(c + 1 > *stop);
}

/* The whole bucket pass, for every value. Returns the largest biased exponent taken. */
static int buckets_pass(const double *x, size_t size, int square, uint64_t *cells,
                        unsigned *first, unsigned *stop)
{
    uint64_t top = 0;
    for (size_t i = 0; i < size; i++) {
        double v = x[i];
        if (square)
            v = v * v; /* one correctly rounded product, as numpy's x * x */
        uint64_t bits;
        memcpy(&bits, &v, 8);
        bucket(cells, bits, i, first, stop);
        uint64_t exponent = bits & 0x7FF0000000000000ULL;
        top = exponent > top ? exponent : top;
    }
    return (int)(top >> 52);
}

/* A 192-bit two's complement sum: top:high:low. */
typedef struct {
    uint64_t low, high;
    int64_t top;
} wide;

static inline void wide_add(wide *w, uint64_t high, uint64_t low)
{
    unsigned __int128 a = ((unsigned __int128)w->high << 64) | w->low;
    unsigned __int128 b = ((unsigned __int128)high << 64) | low;
    unsigned __int128 sum = a + b;
    w->top += sum < a;
    w->low = (uint64_t)sum;
    w->high = (uint64_t)(sum >> 64);
}

static inline void wide_sub(wide *w, uint64_t high, uint64_t low)
{
    unsigned __int128 a = ((unsigned __int128)w->high << 64) | w->low;
    unsigned __int128 b = ((unsigned __int128)high << 64) | low;
    w->top -= a < b;
    a -= b;
    w->low = (uint64_t)a;
    w->high = (uint64_t)(a >> 64);
}

#ifdef HAVE_WINDOW_PATH
#define WINDOW __attribute__((target("avx512f,avx512dq")))
/* Iterations (8 values each) between spills: a lane's 128-bit sums take 2048 values
   below 2**117. */
#define SPILL_EVERY 2048

WINDOW static inline __m512d load8(const double *x, size_t i, size_t size, int square)
{
    size_t left = size - i;
    __mmask8 take = left >= 8 ? 0xFF : (__mmask8)((1u << left) - 1);
    __m512d v = _mm512_maskz_loadu_pd(take, x + i); /* zeros past the end add nothing */
    return square ? _mm512_mul_pd(v, v) : v;
}

/* The window pass's main loop over values whose largest biased exponent is `largest`.
   Inlined twice: with `with_negatives` 0 (squares, and values of one sign, as payoffs or
   counts) it keeps no negative sums. */
WINDOW __attribute__((always_inline)) static inline void
window_loop(const double *x, size_t size, int square, long long largest, int with_negatives,
            uint64_t *cells, unsigned *first, unsigned *stop, wide *total)
{
    const __m512i exponent_bits = _mm512_set1_epi64(0x7FF0000000000000LL);
    const __m512i base = _mm512_set1_epi64(largest - 64), one = _mm512_set1_epi64(1);
    const __m512i fraction = _mm512_set1_epi64(0xFFFFFFFFFFFFFLL);
    const __m512i implicit = _mm512_set1_epi64(1LL << 52), sixty_four = _mm512_set1_epi64(64);
    const __m512i zero = _mm512_setzero_si512(), minus_one = _mm512_set1_epi64(-1);
    __m512i plo = zero, phi = zero, nlo = zero, nhi = zero;
    size_t since_spill = 0;
    for (size_t i = 0; i < size; i += 8) {
        __m512i bits = _mm512_castpd_si512(load8(x, i, size, square));
        __m512i e = _mm512_srli_epi64(_mm512_and_si512(bits, exponent_bits), 52);
        __m512i f = _mm512_and_si512(bits, fraction);
        __m512i m = _mm512_mask_or_epi64(f, _mm512_test_epi64_mask(e, e), f, implicit);
        __m512i shift = _mm512_sub_epi64(_mm512_max_epu64(e, one), base);
        /* Rare: non-zero values more than 64 binades below the largest (zeros, the padding
           past the end among them, add nothing wherever they go). */
        __mmask8 below = _mm512_mask_cmplt_epi64_mask(_mm512_test_epi64_mask(m, m), shift, zero);
        if (below) {
            uint64_t lanes[8];
            _mm512_storeu_si512(lanes, bits);
            for (int k = 0; k < 8; k++)
                if (below >> k & 1)
                    bucket(cells, lanes[k], i + (size_t)k, first, stop);
            m = _mm512_maskz_mov_epi64((__mmask8)~below, m);
        }
        /* m << shift as 128 bits, shift in [0, 64]; shifts by 64 or more give 0. */
        __m512i lo = _mm512_sllv_epi64(m, shift);
        __m512i hi = _mm512_or_si512(_mm512_srlv_epi64(m, _mm512_sub_epi64(sixty_four, shift)),
                                     _mm512_sllv_epi64(m, _mm512_sub_epi64(shift, sixty_four)));
        if (with_negatives) {
            __mmask8 negative = _mm512_movepi64_mask(bits), positive = (__mmask8)~negative;
            plo = _mm512_mask_add_epi64(plo, positive, plo, lo);
            __mmask8 carry = _mm512_mask_cmplt_epu64_mask(positive, plo, lo);
            phi = _mm512_mask_add_epi64(phi, positive, phi, hi);
            phi = _mm512_mask_sub_epi64(phi, carry, phi, minus_one);
            nlo = _mm512_mask_add_epi64(nlo, negative, nlo, lo);
            carry = _mm512_mask_cmplt_epu64_mask(negative, nlo, lo);
            nhi = _mm512_mask_add_epi64(nhi, negative, nhi, hi);
            nhi = _mm512_mask_sub_epi64(nhi, carry, nhi, minus_one);
        } else {
            plo = _mm512_add_epi64(plo, lo);
            __mmask8 carry = _mm512_cmplt_epu64_mask(plo, lo);
            phi = _mm512_add_epi64(phi, hi);
            phi = _mm512_mask_sub_epi64(phi, carry, phi, minus_one);
        }
        if (++since_spill == SPILL_EVERY || i + 8 >= size) {
            uint64_t pl[8], ph[8], nl[8], nh[8];
            _mm512_storeu_si512(pl, plo);
            _mm512_storeu_si512(ph, phi);
            _mm512_storeu_si512(nl, nlo);
            _mm512_storeu_si512(nh, nhi);
            for (int k = 0; k < 8; k++) {
                wide_add(total, ph[k], pl[k]);
                wide_sub(total, nh[k], nl[k]);
            }
            plo = phi = nlo = nhi = zero;
            since_spill = 0;
        }
    }
}

/* The window pass (see the top of the file). Returns the largest biased exponent E
   taken; the sum's scale is 2**(max(E, 1) - 65). */
WINDOW static int window_pass(const double *x, size_t size, int square, uint64_t *cells,
                              unsigned *first, unsigned *stop, wide *total)
{
    /* First the largest exponent, and whether any value is negative (a sign bit set). */
    const __m512i exponent_bits = _mm512_set1_epi64(0x7FF0000000000000LL);
    __m512i top = _mm512_setzero_si512(), signs = _mm512_setzero_si512();
    for (size_t i = 0; i < size; i += 8) {
        __m512i bits = _mm512_castpd_si512(load8(x, i, size, square));
        top = _mm512_max_epu64(top, _mm512_and_si512(bits, exponent_bits));
        signs = _mm512_or_si512(signs, bits);
    }
    int seen = (int)(_mm512_reduce_max_epu64(top) >> 52);
    if (seen == 0x7FF) /* infinite or NaN: the caller refuses the values, adds nothing */
        return seen;
    long long largest = seen < 1 ? 1 : seen;
    if (_mm512_movepi64_mask(signs))
        window_loop(x, size, square, largest, 1, cells, first, stop, total);
    else
        window_loop(x, size, square, largest, 0, cells, first, stop, total);
    return seen;
}

static int window_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}
#endif

static int use_window = 0;

PyDoc_STRVAR(add_doc,
             "add(values, table, square) -> (first, stop, top, high, low, largest)\n\n"
             "Add the float64 values (a C-contiguous buffer), or with square their IEEE\n"
             "squares: on PATH \"window\", most of them into the returned 192-bit integer\n"
             "(top, high, low: top signed) in units of 2**(max(largest, 1) - 65) * 2**-1074,\n"
             "the rest (all, on PATH \"buckets\") into table (uint64, ROWS x 4096 cells of\n"
             "high, low, count), cell (sign | exponent << 1) of row i %% ROWS for value i.\n"
             "Returns also the range of cells touched and the largest biased exponent\n"
             "taken: 2047 if a value (or square) was not finite, and then the sums are void.");

PyDoc_STRVAR(add_buckets_doc,
             "add_buckets(values, table, square) -> (first, stop, 0, 0, 0, largest)\n\n"
             "add on the bucket path, whatever PATH is.");

static PyObject *run_add(PyObject *args, int window)
{
    Py_buffer values, table;
    int square;
    if (!PyArg_ParseTuple(args, "y*w*p", &values, &table, &square))
        return NULL;
    PyObject *result = NULL;
    if (values.len % 8 || table.len != (Py_ssize_t)ROWS * BUCKETS * 3 * 8) {
        PyErr_SetString(PyExc_ValueError, "add: values of 8 bytes, a table of ROWS x 4096 x 3");
        goto done;
    }
    size_t size = (size_t)values.len / 8;
    unsigned first = BUCKETS, stop = 0;
    wide total = {0, 0, 0};
    int largest;
    Py_BEGIN_ALLOW_THREADS
#ifdef HAVE_WINDOW_PATH
    if (window)
        largest = window_pass(values.buf, size, square, table.buf, &first, &stop, &total);
    else
#endif
        largest = buckets_pass(values.buf, size, square, table.buf, &first, &stop);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(IILKKi)", first, stop, (long long)total.top,
                           (unsigned long long)total.high, (unsigned long long)total.low,
                           largest);
done:
    PyBuffer_Release(&values);
    PyBuffer_Release(&table);
    return result;
}

static PyObject *py_add(PyObject *self, PyObject *args)
{
    (void)self;
    return run_add(args, use_window);
}

static PyObject *py_add_buckets(PyObject *self, PyObject *args)
{
    (void)self;
    return run_add(args, 0);
}

static PyMethodDef methods[] = {
    {"add", py_add, METH_VARARGS, add_doc},
    {"add_buckets", py_add_buckets, METH_VARARGS, add_buckets_doc},
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
#ifdef HAVE_WINDOW_PATH
    use_window = window_supported();
#endif
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "ROWS", ROWS) < 0 ||
              PyModule_AddStringConstant(m, "PATH", use_window ? "window" : "buckets") < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

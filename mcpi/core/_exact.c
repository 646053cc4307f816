/*
 * mcpi.core._exact: the passes of mcpi.core.exact.ExactSum and ExactMoments, compiled.
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
 * negative values apart (2048 values a lane fit), spilled into one 192-bit sum in units
 * of 2**(E - 65) * 2**-1074; the few values further below go to the buckets as before. About 0.2 ns a value, against ~1 ns for the
 * buckets. Integers all the way: the caller's sum is the same, exactly, either way.
 *
 * Both passes end in the caller's accumulator: a fixed-point integer of WORDS 64-bit words
 * for the positive terms and WORDS more for the negative ones, in units of 2**-64 of
 * 2**-1074 (so that the window's scale, which can be below 2**-1074, is a whole offset).
 * After each piece of at most PIECE values the touched buckets and the window's sum are
 * added into it, so a call leaves the buckets zero and the caller does no arithmetic of
 * its own: it reads the two integers once, at the end. Every double is below 2**1024, so
 * any 2**64 of them, or of their squares, sum below 2**(64 + 1074 + 1024 + 64) = 2**2226:
 * 35 words; one more for the carries' headroom.
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
/* Accumulator words per sign (see the top of the file). */
#define WORDS 36
/* Values between folds into the accumulator: far below the 2**26 that keep the buckets'
   sums exact, and few enough that one piece of values and of their squares stay in a
   core's cache when moments() takes both. */
#define PIECE (1u << 14)

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

/* Add the unsigned 192-bit w2:w1:w0, shifted left by `bits`, into one sign's words. */
static void add_at(uint64_t *words, unsigned bits, uint64_t w0, uint64_t w1, uint64_t w2)
{
    unsigned q = bits / 64, r = bits % 64;
    uint64_t shifted[4] = {w0, w1, w2, 0};
    if (r) {
        shifted[3] = w2 >> (64 - r);
        shifted[2] = (w2 << r) | (w1 >> (64 - r));
        shifted[1] = (w1 << r) | (w0 >> (64 - r));
        shifted[0] = w0 << r;
    }
    uint64_t carry = 0;
    for (unsigned k = 0; k < 4 && q + k < WORDS; k++) {
        unsigned __int128 sum = (unsigned __int128)words[q + k] + shifted[k] + carry;
        words[q + k] = (uint64_t)sum;
        carry = (uint64_t)(sum >> 64);
    }
    for (unsigned k = q + 4; carry && k < WORDS; k++)
        carry = ++words[k] == 0;
}

/* Add the touched cells [first, stop) of every row into the accumulator, and zero them. */
static void fold(uint64_t *cells, unsigned first, unsigned stop, uint64_t *sums)
{
    for (unsigned c = first; c < stop; c++) {
        uint64_t high = 0, low = 0, count = 0;
        for (unsigned row = 0; row < ROWS; row++) {
            uint64_t *cell = cells + ((size_t)row * BUCKETS + c) * 3;
            high += cell[0];
            low += cell[1];
            count += cell[2];
            cell[0] = cell[1] = cell[2] = 0;
        }
        if (!count)
            continue;
        unsigned biased = c >> 1;
        unsigned __int128 mantissas = ((unsigned __int128)high << HALF) + low;
        if (biased) /* normal numbers carry the implicit leading bit */
            mantissas += (unsigned __int128)count << 52;
        /* m * 2**(max(e, 1) - 1) units of 2**-1074, in the accumulator's 2**-64 of those */
        add_at(sums + (c & 1 ? WORDS : 0), (biased > 1 ? biased : 1) - 1 + 64,
               (uint64_t)mantissas, (uint64_t)(mantissas >> 64), 0);
    }
}

/* Add the window's signed 192-bit sum, in units of 2**(max(largest, 1) - 65) * 2**-1074. */
static void add_window(uint64_t *sums, const wide *total, int largest)
{
    uint64_t low = total->low, high = total->high, top = (uint64_t)total->top;
    uint64_t *words = sums;
    if (total->top < 0) { /* its magnitude, among the negative terms */
        words = sums + WORDS;
        low = ~low + 1;
        high = ~high + (low == 0);
        top = ~top + (low == 0 && high == 0);
    }
    if (low | high | top)
        add_at(words, (unsigned)((largest > 1 ? largest : 1) - 65 + 64), low, high, top);
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
        /* m << shift as 128 bits, shift in [0, 64] (no value is above the largest); shifts
           by 64 give 0, so shift 0 has no high part and shift 64 no low one. */
        __m512i lo = _mm512_sllv_epi64(m, shift);
        __m512i hi = _mm512_srlv_epi64(m, _mm512_sub_epi64(sixty_four, shift));
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

/* The largest magnitude among the values (as its bits: non-negative doubles order as
   their bits do, infinities and NaNs above every finite one), and whether any is
   negative. */
WINDOW static uint64_t window_scan(const double *x, size_t size, int *negative)
{
    const __m512i magnitude = _mm512_set1_epi64(0x7FFFFFFFFFFFFFFFLL);
    __m512i top = _mm512_setzero_si512(), signs = _mm512_setzero_si512();
    for (size_t i = 0; i < size; i += 8) {
        __m512i bits = _mm512_castpd_si512(load8(x, i, size, 0));
        top = _mm512_max_epu64(top, _mm512_and_si512(bits, magnitude));
        signs = _mm512_or_si512(signs, bits);
    }
    *negative = _mm512_movepi64_mask(signs) != 0;
    return _mm512_reduce_max_epu64(top);
}

/* The biased exponent of the largest value, or of its IEEE square: squaring is monotonic
   in the magnitude, so the largest square is the square of the largest magnitude. */
static int exponent_of(uint64_t largest, int square)
{
    if (square) {
        double v;
        memcpy(&v, &largest, 8);
        v = v * v;
        memcpy(&largest, &v, 8);
    }
    return (int)(largest >> 52 & 0x7FF);
}

/* The window pass over values (or squares) whose largest biased exponent is `seen`
   (see the top of the file), its sum and the few values below the window folded into
   `sums`: the sum's scale is 2**(max(seen, 1) - 65). */
WINDOW static void window_into(const double *x, size_t size, int square, int seen, int negative,
                               uint64_t *cells, uint64_t *sums)
{
    unsigned first = BUCKETS, stop = 0;
    wide total = {0, 0, 0};
    long long largest = seen < 1 ? 1 : seen;
    if (negative && !square)
        window_loop(x, size, square, largest, 1, cells, &first, &stop, &total);
    else
        window_loop(x, size, square, largest, 0, cells, &first, &stop, &total);
    add_window(sums, &total, seen);
    fold(cells, first, stop, sums);
}

static int window_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}
#endif

static int use_window = 0;

/* One piece's pass, its buckets and window sum folded into `sums`. Returns the largest
   biased exponent taken: 2047 if a value (or square) was not finite, the sums void. */
static int add_piece(const double *x, size_t size, int square, int window, uint64_t *cells,
                     uint64_t *sums)
{
#ifdef HAVE_WINDOW_PATH
    if (window) {
        int negative;
        int seen = exponent_of(window_scan(x, size, &negative), square);
        if (seen != 0x7FF) /* infinite or NaN: the caller refuses the values, adds nothing */
            window_into(x, size, square, seen, negative, cells, sums);
        return seen;
    }
#endif
    (void)window;
    unsigned first = BUCKETS, stop = 0;
    int largest = buckets_pass(x, size, square, cells, &first, &stop);
    fold(cells, first, stop, sums); /* zeroes the buckets, whatever came of the pass */
    return largest;
}

/* add_piece of the values into `sums` and of their squares into `squares`; on the window
   path with one scan of the values for both. */
static int moments_piece(const double *x, size_t size, int window, uint64_t *cells,
                         uint64_t *sums, uint64_t *squares)
{
#ifdef HAVE_WINDOW_PATH
    if (window) {
        int negative;
        uint64_t largest = window_scan(x, size, &negative);
        int seen = exponent_of(largest, 0), seen_squares = exponent_of(largest, 1);
        if (seen == 0x7FF || seen_squares == 0x7FF)
            return 0x7FF;
        window_into(x, size, 0, seen, negative, cells, sums);
        window_into(x, size, 1, seen_squares, negative, cells, squares);
        return seen_squares > seen ? seen_squares : seen;
    }
#endif
    (void)window;
    int seen = add_piece(x, size, 0, 0, cells, sums);
    if (seen == 0x7FF)
        return seen;
    int seen_squares = add_piece(x, size, 1, 0, cells, squares);
    return seen_squares > seen ? seen_squares : seen;
}

/* values, table and one or two accumulators from args ("y*w*w*p" or "y*w*w*w*"). */
static PyObject *run_add(PyObject *args, int window, int moments)
{
    Py_buffer values, table, sums, squares = {0};
    int square = 0;
    int parsed = moments ? PyArg_ParseTuple(args, "y*w*w*w*", &values, &table, &sums, &squares)
                         : PyArg_ParseTuple(args, "y*w*w*p", &values, &table, &sums, &square);
    if (!parsed)
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t words = (Py_ssize_t)2 * WORDS * 8;
    if (values.len % 8 || table.len != (Py_ssize_t)ROWS * BUCKETS * 3 * 8 || sums.len != words ||
        (moments && squares.len != words)) {
        PyErr_SetString(PyExc_ValueError, "add: values of 8 bytes, a table of ROWS x 4096 x 3, "
                                          "accumulators of 2 x WORDS words");
        goto done;
    }
    size_t size = (size_t)values.len / 8;
    const double *x = values.buf;
    int largest = 0;
    Py_BEGIN_ALLOW_THREADS
    for (size_t at = 0; at < size && largest != 0x7FF; at += PIECE) {
        size_t n = size - at < PIECE ? size - at : PIECE;
        int seen = moments ? moments_piece(x + at, n, window, table.buf, sums.buf, squares.buf)
                           : add_piece(x + at, n, square, window, table.buf, sums.buf);
        largest = seen > largest ? seen : largest;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromLong(largest);
done:
    PyBuffer_Release(&values);
    PyBuffer_Release(&table);
    PyBuffer_Release(&sums);
    if (moments)
        PyBuffer_Release(&squares);
    return result;
}

PyDoc_STRVAR(add_doc,
             "add(values, table, sums, square) -> largest\n\n"
             "Add the float64 values (a C-contiguous buffer), or with square their IEEE\n"
             "squares, exactly into sums: uint64, WORDS words of the positive terms then\n"
             "WORDS of the negative ones, each a little-endian integer in units of\n"
             "2**-64 * 2**-1074. table (uint64, ROWS x 4096 cells of high, low, count) is\n"
             "the buckets' scratch space: all zero before and after. Returns the largest\n"
             "biased exponent taken: 2047 if a value (or square) was not finite, and then\n"
             "the sums are void.");

PyDoc_STRVAR(moments_doc,
             "moments(values, table, sums, squares) -> largest\n\n"
             "add(values, table, sums, False) and add(values, table, squares, True) in one\n"
             "call, piece by piece while each piece is in cache.");

PyDoc_STRVAR(buckets_doc, "The same as add or moments, on the bucket path whatever PATH is.");

static PyObject *py_add(PyObject *self, PyObject *args)
{
    (void)self;
    return run_add(args, use_window, 0);
}

static PyObject *py_moments(PyObject *self, PyObject *args)
{
    (void)self;
    return run_add(args, use_window, 1);
}

static PyObject *py_add_buckets(PyObject *self, PyObject *args)
{
    (void)self;
    return run_add(args, 0, 0);
}

static PyObject *py_moments_buckets(PyObject *self, PyObject *args)
{
    (void)self;
    return run_add(args, 0, 1);
}

static PyMethodDef methods[] = {
    {"add", py_add, METH_VARARGS, add_doc},
    {"moments", py_moments, METH_VARARGS, moments_doc},
    {"add_buckets", py_add_buckets, METH_VARARGS, buckets_doc},
    {"moments_buckets", py_moments_buckets, METH_VARARGS, buckets_doc},
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
              PyModule_AddIntConstant(m, "WORDS", WORDS) < 0 ||
              PyModule_AddStringConstant(m, "PATH", use_window ? "window" : "buckets") < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

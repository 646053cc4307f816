/*
 * mcpi.core._darts: the compiled dart kernel, bit-identical to mcpi.core.kernel's reference.
 *
 * Same stream, same lattice, same hit test as the numpy reference (see kernel.py): dart i
 * of a job is the (i+1)-th output of numpy's PCG64 (XSL-RR 128/64, a step before each
 * output) seeded by the job seed; its low and high 32-bit halves, as signed integers,
 * are x and y; it hits when fl(fl(x*x) + fl(y*y)) < 2**62 in IEEE-754 doubles.
 *
 * Why it is faster: numpy steps the generator one draw at a time (each step waits on the
 * previous one's 128-bit multiply), writes every draw to memory, and the reference then
 * makes four more passes over it. Here independent positions ("lanes") of the same stream
 * are stepped together (lane k starts at dart start + k*L, reached with the LCG's O(log n)
 * jump), so the steps of different lanes overlap in the core's pipelines, and the hit test
 * is fused in. A count is a sum, so how [start, stop) is cut into lanes cannot change it.
 *
 * Two paths, chosen once when the module loads:
 *  - AVX-512 IFMA (x86-64 CPUs since Ice Lake and Zen 4): 32 lanes in four 512-bit
 *    vectors. Each 128-bit state is held as three 52-bit limbs, and the step's 128-bit
 *    multiply-add is nine 52-bit multiply-accumulates (VPMADD52LUQ/HUQ) per 8 lanes; the
 *    output permutation, the int32 -> double conversions and the hit test run in the same
 *    registers. A scalar core issues a 64-bit multiply on one port only, three per step,
 *    which held the portable path at the step rate below; the vector unit does not.
 *  - portable: 16 lanes of scalar 128-bit arithmetic, the draws buffered in L1 and the hit
 *    test vectorised by the compiler (AVX-512, AVX2 or baseline clones).
 * Both count the same darts with the same IEEE operations: the tests hold each to the
 * numpy reference.
 *
 * Must be compiled with -ffp-contract=off: a fused multiply-add would round x*x + y*y once
 * instead of twice and change the count on the annulus where the two differ.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#include <immintrin.h>
#define HAVE_IFMA_PATH 1
#endif

#if !defined(__SIZEOF_INT128__)
#error "the compiled kernel needs a compiler with 128-bit integers (GCC or Clang)"
#endif

typedef unsigned __int128 u128;

/* Independent positions of the stream stepped together: enough to keep the multiplier busy
   while each lane's 128-bit multiply-add waits on its previous one (16 measured best, with
   12 and 8 close, on Intel Xeon and AMD EPYC). */
#define LANES 16
/* Steps per lane between hit-counting passes: LANES * ROUNDS draws (8 KiB) stay in L1. */
#define ROUNDS 64

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
/* AVX-512 and AVX2 versions beside the baseline: the hit test vectorises 8 or 4 wide. */
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

/* numpy's PCG64 multiplier (PCG_DEFAULT_MULTIPLIER_128). */
#define MULT_HI 0x2360ED051FC65DA4ULL
#define MULT_LO 0x4385DF649FCCF645ULL

/* 2**62: the squared radius of the target circle on the int32 lattice. */
static const double RADIUS_SQUARED = 4611686018427387904.0;

static inline u128 mult128(void) { return ((u128)MULT_HI << 64) | MULT_LO; }

static inline uint64_t output(u128 state)
{
    uint64_t hi = (uint64_t)(state >> 64), lo = (uint64_t)state;
    uint64_t word = hi ^ lo;
    unsigned rot = (unsigned)(hi >> 58);
    return (word >> rot) | (word << ((64u - rot) & 63u));
}

/* `delta` steps of the LCG as one affine map, state -> *mult * state + *plus (Brown's
   jump-ahead, as numpy's PCG64.advance). */
static void jump(u128 inc, uint64_t delta, u128 *mult, u128 *plus)
{
    u128 cur_mult = mult128(), cur_plus = inc, acc_mult = 1, acc_plus = 0;
    while (delta) {
        if (delta & 1) {
            acc_mult *= cur_mult;
            acc_plus = acc_plus * cur_mult + cur_plus;
        }
        cur_plus = (cur_mult + 1) * cur_plus;
        cur_mult *= cur_mult;
        delta >>= 1;
    }
    *mult = acc_mult;
    *plus = acc_plus;
}

/* The LCG's state `delta` steps on. */
static u128 advance(u128 state, u128 inc, uint64_t delta)
{
    u128 mult, plus;
    jump(inc, delta, &mult, &plus);
    return mult * state + plus;
}

/* The starting states of `lanes` positions `spacing` apart, the first at `start`: one
   jump to the first, then one multiply-add per lane. */
static void lane_states(u128 origin, u128 inc, uint64_t start, uint64_t spacing, int lanes,
                        u128 *state)
{
    u128 mult, plus;
    jump(inc, spacing, &mult, &plus);
    state[0] = advance(origin, inc, start);
    for (int k = 1; k < lanes; k++)
        state[k] = mult * state[k - 1] + plus;
}

/* Hits among n darts, given as their raw draws. Each product and the sum are separate,
   correctly rounded operations (no contraction, see above); x is the low half of a draw and
   y the high half, as numpy's little-endian int32 view sees them. A loop over a buffer,
   so that the compiler can vectorise the conversions and the arithmetic. */
static inline uint64_t count_draws(const uint64_t *draw, uint64_t n)
{
    uint64_t hits = 0;
    for (uint64_t j = 0; j < n; j++) {
        double x = (double)(int32_t)(uint32_t)draw[j];
        double y = (double)(int32_t)(uint32_t)(draw[j] >> 32);
        double xx = x * x, yy = y * y;
        hits += (xx + yy) < RADIUS_SQUARED;
    }
    return hits;
}

/* Hits among the next n darts of one position of the stream (what the lanes leave over). */
static uint64_t count_serial(u128 state, u128 inc, uint64_t n)
{
    const u128 m = mult128();
    uint64_t draw[LANES], hits = 0;
    while (n) {
        uint64_t take = n < LANES ? n : LANES;
        for (uint64_t j = 0; j < take; j++) {
            state = state * m + inc;
            draw[j] = output(state);
        }
        hits += count_draws(draw, take);
        n -= take;
    }
    return hits;
}

/* The lanes: LANES positions of the stream stepped together, ROUNDS steps at a time into
   an L1-resident buffer, whose hits are then counted in one vectorised pass. Compiled
   for three x86-64 levels and chosen once, when the module loads, for the CPU it runs on
   (the same IEEE operations on each, so the same counts). */
CLONES static uint64_t count_lanes(u128 origin, u128 inc, uint64_t start, uint64_t stop)
{
    const u128 m = mult128();
    uint64_t n = stop - start, per_lane = n / LANES, hits = 0;
    u128 state[LANES];
    uint64_t draw[LANES * ROUNDS];
    lane_states(origin, inc, start, per_lane, LANES, state);
    for (uint64_t i = 0; i < per_lane;) {
        uint64_t rounds = per_lane - i < ROUNDS ? per_lane - i : ROUNDS;
        for (uint64_t r = 0; r < rounds; r++) {
            for (int k = 0; k < LANES; k++) {
                state[k] = state[k] * m + inc;
                draw[r * LANES + k] = output(state[k]);
            }
        }
        hits += count_draws(draw, rounds * LANES);
        i += rounds;
    }
    uint64_t done = per_lane * LANES;
    return hits + count_serial(advance(origin, inc, start + done), inc, n - done);
}

/* The PCG64 step alone: the generator's own limit for a kernel that draws one 64-bit number
   per dart. STEP_LANES positions stepped together with their outputs folded in registers
   (so that none is optimised away, and nothing goes through memory): 8 measured fastest,
   where 16 lanes' states no longer fit in the registers. */
#define STEP_LANES 8

CLONES static uint64_t step_lanes(u128 origin, u128 inc, uint64_t n)
{
    const u128 m = mult128();
    uint64_t per_lane = n / STEP_LANES;
    u128 state[STEP_LANES];
    uint64_t fold[STEP_LANES];
    lane_states(origin, inc, 0, per_lane, STEP_LANES, state);
    for (int k = 0; k < STEP_LANES; k++)
        fold[k] = 0;
    for (uint64_t i = 0; i < per_lane; i++) {
        for (int k = 0; k < STEP_LANES; k++) {
            state[k] = state[k] * m + inc;
            fold[k] ^= output(state[k]);
        }
    }
    uint64_t total = 0;
    for (int k = 0; k < STEP_LANES; k++)
        total ^= fold[k];
    return total;
}

#ifdef HAVE_IFMA_PATH
/* The AVX-512 IFMA path (see the top of the file). */
#define IFMA __attribute__((target("avx512f,avx512dq,avx512ifma")))
/* 512-bit vectors of 8 lanes stepped together: enough independent work to cover the
   latency of a step's chain of multiply-accumulates (2, 3 and 4 measured alike). */
#define VECTORS 4
#define IFMA_LANES (8 * VECTORS)
#define MASK52 0xFFFFFFFFFFFFFULL
#define MASK24 0xFFFFFFULL

/* 8 lanes' 128-bit numbers as three 52-bit limbs: x = l0 + l1 * 2**52 + l2 * 2**104. */
typedef struct {
    __m512i l0, l1, l2;
} limbs;

IFMA static inline limbs broadcast(u128 x)
{
    limbs v = {_mm512_set1_epi64((long long)((uint64_t)x & MASK52)),
               _mm512_set1_epi64((long long)((uint64_t)(x >> 52) & MASK52)),
               _mm512_set1_epi64((long long)(uint64_t)(x >> 104))};
    return v;
}

IFMA static inline limbs load_limbs(const u128 *x)
{
    uint64_t l0[8], l1[8], l2[8];
    for (int k = 0; k < 8; k++) {
        l0[k] = (uint64_t)x[k] & MASK52;
        l1[k] = (uint64_t)(x[k] >> 52) & MASK52;
        l2[k] = (uint64_t)(x[k] >> 104);
    }
    limbs v = {_mm512_loadu_si512(l0), _mm512_loadu_si512(l1), _mm512_loadu_si512(l2)};
    return v;
}

IFMA static inline u128 lane_value(limbs v, int k)
{
    uint64_t l0[8], l1[8], l2[8];
    _mm512_storeu_si512(l0, v.l0);
    _mm512_storeu_si512(l1, v.l1);
    _mm512_storeu_si512(l2, v.l2);
    return (u128)l0[k] | ((u128)l1[k] << 52) | ((u128)l2[k] << 104);
}

/* s * m + c mod 2**128 for 8 lanes. Only the partial products below 2**156 matter, and of
   those at 2**104 only their low 52 bits (their high bits land past 2**128): nine
   multiply-accumulates, then the limbs' carries. No accumulator passes 2**56. */
IFMA static inline limbs step8(limbs s, limbs m, limbs c)
{
    const __m512i zero = _mm512_setzero_si512();
    __m512i t0 = _mm512_madd52lo_epu64(c.l0, s.l0, m.l0);
    __m512i t1 = _mm512_madd52hi_epu64(c.l1, s.l0, m.l0);
    __m512i u1 = _mm512_madd52lo_epu64(_mm512_srli_epi64(t0, 52), s.l0, m.l1);
    t1 = _mm512_madd52lo_epu64(t1, s.l1, m.l0);
    __m512i t2 = _mm512_madd52hi_epu64(c.l2, s.l0, m.l1);
    __m512i u2 = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(zero, s.l0, m.l2), s.l1, m.l1);
    t2 = _mm512_madd52hi_epu64(t2, s.l1, m.l0);
    t2 = _mm512_madd52lo_epu64(t2, s.l2, m.l0);
    t1 = _mm512_add_epi64(t1, u1);
    t2 = _mm512_add_epi64(_mm512_add_epi64(t2, u2), _mm512_srli_epi64(t1, 52));
    limbs next = {_mm512_and_si512(t0, _mm512_set1_epi64(MASK52)),
                  _mm512_and_si512(t1, _mm512_set1_epi64(MASK52)),
                  _mm512_and_si512(t2, _mm512_set1_epi64(MASK24))};
    return next;
}

/* output() for 8 lanes: the 128-bit state's halves XORed, rotated right by its top 6 bits. */
IFMA static inline __m512i output8(limbs s)
{
    __m512i lo = _mm512_or_si512(s.l0, _mm512_slli_epi64(s.l1, 52));
    __m512i hi = _mm512_or_si512(_mm512_srli_epi64(s.l1, 12), _mm512_slli_epi64(s.l2, 40));
    return _mm512_rorv_epi64(_mm512_xor_si512(hi, lo), _mm512_srli_epi64(hi, 58));
}

/* count_draws() for 8 draws: adds 1 to the lanes of `count` whose dart hits. The int32
   halves are sign-extended to 64 bits and converted exactly; the products and the sum are
   rounded separately, as in the reference. */
IFMA static inline __m512i add_hits8(__m512i count, __m512i draw)
{
    __m512d x = _mm512_cvtepi64_pd(_mm512_srai_epi64(_mm512_slli_epi64(draw, 32), 32));
    __m512d y = _mm512_cvtepi64_pd(_mm512_srai_epi64(draw, 32));
    __m512d r = _mm512_add_pd(_mm512_mul_pd(x, x), _mm512_mul_pd(y, y));
    __mmask8 inside = _mm512_cmp_pd_mask(r, _mm512_set1_pd(RADIUS_SQUARED), _CMP_LT_OQ);
    return _mm512_mask_sub_epi64(count, inside, count, _mm512_set1_epi64(-1));
}

/* The lanes' starting states, as limbs. */
IFMA static inline void load_lanes(u128 origin, u128 inc, uint64_t start, uint64_t spacing,
                                   limbs *s)
{
    u128 state[IFMA_LANES];
    lane_states(origin, inc, start, spacing, IFMA_LANES, state);
    for (int v = 0; v < VECTORS; v++)
        s[v] = load_limbs(state + 8 * v);
}

IFMA static uint64_t count_ifma(u128 origin, u128 inc, uint64_t start, uint64_t stop)
{
    uint64_t n = stop - start, per_lane = n / IFMA_LANES;
    if (per_lane == 0)
        return count_serial(advance(origin, inc, start), inc, n);
    const limbs m = broadcast(mult128()), c = broadcast(inc);
    limbs s[VECTORS];
    __m512i count[VECTORS];
    load_lanes(origin, inc, start, per_lane, s);
    for (int v = 0; v < VECTORS; v++)
        count[v] = _mm512_setzero_si512();
    for (uint64_t i = 0; i < per_lane; i++) {
        for (int v = 0; v < VECTORS; v++) {
            s[v] = step8(s[v], m, c);
            count[v] = add_hits8(count[v], output8(s[v]));
        }
    }
    uint64_t hits = 0;
    for (int v = 0; v < VECTORS; v++)
        hits += (uint64_t)_mm512_reduce_add_epi64(count[v]);
    /* The last lane has stepped up to the first dart the lanes left over. */
    u128 rest = lane_value(s[VECTORS - 1], 7);
    return hits + count_serial(rest, inc, n - per_lane * IFMA_LANES);
}

IFMA static uint64_t step_ifma(u128 origin, u128 inc, uint64_t n)
{
    uint64_t per_lane = n / IFMA_LANES;
    const limbs m = broadcast(mult128()), c = broadcast(inc);
    limbs s[VECTORS];
    __m512i fold[VECTORS];
    load_lanes(origin, inc, 0, per_lane, s);
    for (int v = 0; v < VECTORS; v++)
        fold[v] = _mm512_setzero_si512();
    for (uint64_t i = 0; i < per_lane; i++) {
        for (int v = 0; v < VECTORS; v++) {
            s[v] = step8(s[v], m, c);
            fold[v] = _mm512_xor_si512(fold[v], output8(s[v]));
        }
    }
    uint64_t lanes[8], total = 0;
    for (int v = 0; v < VECTORS; v++) {
        _mm512_storeu_si512(lanes, fold[v]);
        for (int k = 0; k < 8; k++)
            total ^= lanes[k];
    }
    return total;
}

static int ifma_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512ifma");
}
#endif

/* The path this CPU runs, chosen in PyInit__darts. */
typedef uint64_t (*count_fn)(u128, u128, uint64_t, uint64_t);
typedef uint64_t (*step_fn)(u128, u128, uint64_t);
static count_fn best_count = count_lanes;
static step_fn best_step = step_lanes;
static const char *best_path = "portable";
static int best_lanes = LANES, best_step_lanes = STEP_LANES;

static int parse(PyObject *const *args, Py_ssize_t nargs, const char *name, u128 *state,
                 u128 *inc, uint64_t *a, uint64_t *b)
{
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "%s takes 6 arguments", name);
        return -1;
    }
    uint64_t v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = PyLong_AsUnsignedLongLong(args[i]);
        if (v[i] == (uint64_t)-1 && PyErr_Occurred())
            return -1;
    }
    *state = ((u128)v[0] << 64) | v[1];
    *inc = ((u128)v[2] << 64) | v[3];
    *a = v[4];
    *b = v[5];
    return 0;
}

/* Both entry points of each kind take a path's function, so that the tests can hold the
   portable path to the reference on a CPU that runs the vector one. */
static PyObject *run_count(PyObject *const *args, Py_ssize_t nargs, const char *name, count_fn fn)
{
    u128 state, inc;
    uint64_t start, stop, hits;
    if (parse(args, nargs, name, &state, &inc, &start, &stop) < 0)
        return NULL;
    if (stop < start) {
        PyErr_SetString(PyExc_ValueError, "invalid dart range");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    hits = fn(state, inc, start, stop);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(hits);
}

static PyObject *run_step(PyObject *const *args, Py_ssize_t nargs, const char *name, step_fn fn)
{
    u128 state, inc;
    uint64_t unused, n, fold;
    if (parse(args, nargs, name, &state, &inc, &unused, &n) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    fold = fn(state, inc, n);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(fold);
}

PyDoc_STRVAR(count_hits_doc,
             "count_hits(state_hi, state_lo, inc_hi, inc_lo, start, stop) -> int\n\n"
             "Hits among darts [start, stop) of the PCG64 stream whose state before dart 0\n"
             "is (state_hi, state_lo) and whose increment is (inc_hi, inc_lo), on PATH.");

static PyObject *py_count_hits(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return run_count(args, nargs, "count_hits", best_count);
}

PyDoc_STRVAR(count_hits_portable_doc,
             "count_hits_portable(state_hi, state_lo, inc_hi, inc_lo, start, stop) -> int\n\n"
             "count_hits on the portable path, whatever PATH is.");

static PyObject *py_count_hits_portable(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return run_count(args, nargs, "count_hits_portable", count_lanes);
}

PyDoc_STRVAR(step_doc,
             "step(state_hi, state_lo, inc_hi, inc_lo, 0, n) -> int\n\n"
             "Steps the stream STEP_LANES * (n // STEP_LANES) times, on PATH's STEP_LANES\n"
             "lanes, and folds the outputs by XOR (for measuring the generator's own rate).");

static PyObject *py_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return run_step(args, nargs, "step", best_step);
}

PyDoc_STRVAR(step_portable_doc,
             "step_portable(state_hi, state_lo, inc_hi, inc_lo, 0, n) -> int\n\n"
             "step on the portable path's PORTABLE_STEP_LANES lanes, whatever PATH is.");

static PyObject *py_step_portable(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return run_step(args, nargs, "step_portable", step_lanes);
}

#define FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL

static PyMethodDef methods[] = {
    {"count_hits", FASTCALL(py_count_hits), count_hits_doc},
    {"count_hits_portable", FASTCALL(py_count_hits_portable), count_hits_portable_doc},
    {"step", FASTCALL(py_step), step_doc},
    {"step_portable", FASTCALL(py_step_portable), step_portable_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_darts",
    .m_doc = "The compiled dart kernel (see mcpi.core.kernel).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__darts(void)
{
#ifdef HAVE_IFMA_PATH
    if (ifma_supported()) {
        best_count = count_ifma;
        best_step = step_ifma;
        best_path = "AVX-512 IFMA";
        best_lanes = best_step_lanes = IFMA_LANES;
    }
#endif
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddStringConstant(m, "PATH", best_path) < 0 ||
              PyModule_AddIntConstant(m, "LANES", best_lanes) < 0 ||
              PyModule_AddIntConstant(m, "STEP_LANES", best_step_lanes) < 0 ||
              PyModule_AddIntConstant(m, "PORTABLE_LANES", LANES) < 0 ||
              PyModule_AddIntConstant(m, "PORTABLE_STEP_LANES", STEP_LANES) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

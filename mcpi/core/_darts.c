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
 * makes four more passes over it. Here LANES independent positions of the same stream
 * are stepped together (lane k starts at dart start + k*L, reached with the LCG's O(log n)
 * jump), so the multiplies of different lanes overlap in the core's pipelines, and the
 * hit test is fused in: no buffer, no second pass. A count is a sum, so how [start, stop)
 * is cut into lanes cannot change it.
 *
 * Must be compiled with -ffp-contract=off: a fused multiply-add would round x*x + y*y once
 * instead of twice and change the count on the annulus where the two differ.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

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

/* The LCG's state `delta` steps on (Brown's jump-ahead, as numpy's PCG64.advance). */
static u128 advance(u128 state, u128 inc, uint64_t delta)
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
    return acc_mult * state + acc_plus;
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
    for (int k = 0; k < LANES; k++)
        state[k] = advance(origin, inc, start + (uint64_t)k * per_lane);
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
    for (int k = 0; k < STEP_LANES; k++) {
        state[k] = advance(origin, inc, (uint64_t)k * per_lane);
        fold[k] = 0;
    }
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

PyDoc_STRVAR(count_hits_doc,
             "count_hits(state_hi, state_lo, inc_hi, inc_lo, start, stop) -> int\n\n"
             "Hits among darts [start, stop) of the PCG64 stream whose state before dart 0\n"
             "is (state_hi, state_lo) and whose increment is (inc_hi, inc_lo).");

static PyObject *py_count_hits(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    u128 state, inc;
    uint64_t start, stop, hits;
    if (parse(args, nargs, "count_hits", &state, &inc, &start, &stop) < 0)
        return NULL;
    if (stop < start) {
        PyErr_SetString(PyExc_ValueError, "invalid dart range");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    hits = count_lanes(state, inc, start, stop);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(hits);
}

PyDoc_STRVAR(step_doc,
             "step(state_hi, state_lo, inc_hi, inc_lo, 0, n) -> int\n\n"
             "Steps the stream STEP_LANES * (n // STEP_LANES) times, on STEP_LANES lanes, and\n"
             "folds the outputs by XOR (for measuring the generator's own rate).");

static PyObject *py_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    u128 state, inc;
    uint64_t unused, n, fold;
    if (parse(args, nargs, "step", &state, &inc, &unused, &n) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    fold = step_lanes(state, inc, n);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(fold);
}

static PyMethodDef methods[] = {
    {"count_hits", (PyCFunction)(void (*)(void))py_count_hits, METH_FASTCALL, count_hits_doc},
    {"step", (PyCFunction)(void (*)(void))py_step, METH_FASTCALL, step_doc},
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
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "LANES", LANES) < 0 ||
              PyModule_AddIntConstant(m, "STEP_LANES", STEP_LANES) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/*
 * test_alloc.c -- the heap allocator (src/alloc.c) against an in-memory model.
 *
 * Every live object of the model has a ref, the size asked for, the usable
 * size mms_alloc_size() gave, and a seed: byte i of the object is a function
 * of (seed, i), so contents are checked byte-exactly after every commit,
 * abort and reopen, and across realloc (the kept prefix) and zalloc (zeroes).
 * Aborts roll the model back to its last committed copy.
 *
 * After each commit/abort: mms_verify() is clean, every live object has its
 * contents and a usable size >= the size asked for, no two objects overlap,
 * and the header's counters equal the model (objects, used bytes).
 *
 * Cases with a fixed seed each (printed; MMS_SEED=n overrides it); each case
 * runs in a child process so that one failing case does not hide the others.
 * MMS_SOAK=1 makes the random cases ten times longer, MMS_SOAK=n (n > 1) n
 * times (MMS_SOAK=1: about three minutes in a release build); the sanitizer
 * build runs them half as long.
 */
#include "test.h"

#include <stdbool.h>

#define KiB ((uint64_t)1024)
#define MiB ((uint64_t)1024 * 1024)
#define PAGE ((uint64_t)4096)
#define SEG (4 * MiB)                  /* heap unit (doc/FORMAT.md) */
#define SMALL_MAX ((uint64_t)2048)     /* largest size-class allocation */
#define LARGE_MAX ((uint64_t)4177920)  /* largest page run: 1020 pages */
#define HUGE_MIN (LARGE_MAX + 1)

static int soak; /* multiplier of the random cases' length; 0 = normal run */

static uint64_t case_seed(uint64_t fixed)
{
    const char *e = getenv("MMS_SEED");
    uint64_t seed = e ? strtoull(e, NULL, 0) : fixed;
    fprintf(stderr, "   seed 0x%" PRIx64 "%s\n", seed, e ? " (from MMS_SEED)" : "");
    return seed;
}

static uint64_t rnd_below(uint64_t *rng, uint64_t n)
{
    return n ? rnd_next(rng) % n : 0;
}

/* ------------------------------------------------------------------------
 * Fill patterns: byte i of an object with seed k is byte i%8 of word(k, i/8).
 * ------------------------------------------------------------------------ */
static inline uint64_t pat_word(uint64_t seed, uint64_t w)
{
    uint64_t z = seed ^ (w * UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 31)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 29)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 32);
}

static inline unsigned char pat_byte(uint64_t seed, uint64_t i)
{
    return (unsigned char)(pat_word(seed, i / 8) >> (8 * (i % 8)));
}

/* The word as it lies in memory, so word and byte accesses agree. */
static inline uint64_t pat_mem(uint64_t seed, uint64_t w)
{
    uint64_t v = pat_word(seed, w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Write the pattern over [lo, hi) of the object at p (p is 16-aligned). */
static void fill(unsigned char *p, uint64_t seed, uint64_t lo, uint64_t hi)
{
    uint64_t i = lo;
    for (; i < hi && i % 8; i++)
        p[i] = pat_byte(seed, i);
    for (; i + 8 <= hi; i += 8) {
        uint64_t v = pat_mem(seed, i / 8);
        memcpy(p + i, &v, 8);
    }
    for (; i < hi; i++)
        p[i] = pat_byte(seed, i);
}

/* First offset in [lo, hi) where p differs from the pattern, or hi. */
static uint64_t mismatch(const unsigned char *p, uint64_t seed, uint64_t lo, uint64_t hi)
{
    uint64_t i = lo;
    for (; i < hi && i % 8; i++)
        if (p[i] != pat_byte(seed, i))
            return i;
    for (; i + 8 <= hi; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v != pat_mem(seed, i / 8))
            break;
    }
    for (; i < hi; i++)
        if (p[i] != pat_byte(seed, i))
            return i;
    return hi;
}

/* First nonzero byte in [0, n), or n. */
static uint64_t nonzero_at(const unsigned char *p, uint64_t n)
{
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v)
            break;
    }
    for (; i < n; i++)
        if (p[i])
            return i;
    return n;
}

/* ------------------------------------------------------------------------
 * The model
 * ------------------------------------------------------------------------ */
struct obj {
    mms_ref ref;
    uint64_t size;   /* bytes asked for; the pattern covers [0, size) */
    uint64_t usable; /* mms_alloc_size() since its last (re)allocation */
    uint64_t seed;
};

struct model {
    struct obj *o;
    size_t n, cap;
};

static void model_add(struct model *m, struct obj o)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->o = realloc(m->o, m->cap * sizeof *m->o);
        ASSERT(m->o != NULL);
    }
    m->o[m->n++] = o;
}

static void model_del(struct model *m, size_t i)
{
    ASSERT_LT(i, m->n);
    m->o[i] = m->o[--m->n];
}

static void model_copy(struct model *dst, const struct model *src)
{
    dst->n = 0;
    for (size_t i = 0; i < src->n; i++)
        model_add(dst, src->o[i]);
}

static void model_release(struct model *m)
{
    free(m->o);
    m->o = NULL;
    m->n = m->cap = 0;
}

static uint64_t model_bytes(const struct model *m)
{
    uint64_t b = 0;
    for (size_t i = 0; i < m->n; i++)
        b += m->o[i].usable;
    return b;
}

static size_t model_huge(const struct model *m)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        k += m->o[i].usable > LARGE_MAX;
    return k;
}

static mms_info *info_of(mms_store *s)
{
    static mms_info info[4];
    static int k;
    mms_info *i = &info[k++ % 4];
    OK(mms_info_get(s, i));
    return i;
}

static void check_ref_shape(mms_ref r)
{
    ASSERT_NE(r, MMS_REF_NULL);
    ASSERT_EQ(MMS_REF_REGION(r), 0);
    ASSERT_EQ(r % 16, 0);
}

static void check_obj(mms_store *s, const struct obj *o)
{
    check_ref_shape(o->ref);
    size_t us = 0;
    OK(mms_alloc_size(s, o->ref, &us));
    ASSERT_EQ(us, o->usable);
    ASSERT_GE(us, o->size);
    const unsigned char *p = mms_deref(s, o->ref);
    uint64_t at = mismatch(p, o->seed, 0, o->size);
    if (at != o->size)
        FAILF("object 0x%" PRIx64 " (%" PRIu64 " bytes, seed 0x%" PRIx64 "): byte %" PRIu64
              " is 0x%02x, expected 0x%02x",
              o->ref, o->size, o->seed, at, p[at], pat_byte(o->seed, at));
}

static int cmp_obj_ref(const void *a, const void *b)
{
    mms_ref x = ((const struct obj *)a)->ref, y = ((const struct obj *)b)->ref;
    return x < y ? -1 : x > y;
}

/* Everything the model knows, checked against the store. Works inside and
 * outside a transaction (mms_verify is the caller's, outside). */
static void check_all(mms_store *s, const struct model *m)
{
    mms_info *in = info_of(s);
    ASSERT_EQ(in->heap_objects, m->n);
    ASSERT_EQ(in->heap_used, model_bytes(m));
    ASSERT_LE(in->heap_used + in->heap_free, in->region_size[0]);
    struct obj *sorted = malloc((m->n ? m->n : 1) * sizeof *sorted);
    ASSERT(sorted != NULL);
    for (size_t i = 0; i < m->n; i++) {
        check_obj(s, &m->o[i]);
        sorted[i] = m->o[i];
    }
    qsort(sorted, m->n, sizeof *sorted, cmp_obj_ref);
    for (size_t i = 0; i < m->n; i++) {
        ASSERT_LE(MMS_REF_SLOT(sorted[i].ref) + sorted[i].usable, in->region_size[0]);
        if (i + 1 < m->n && sorted[i].ref + sorted[i].usable > sorted[i + 1].ref)
            FAILF("objects overlap: 0x%" PRIx64 " (%" PRIu64 " usable) and 0x%" PRIx64,
                  sorted[i].ref, sorted[i].usable, sorted[i + 1].ref);
    }
    free(sorted);
}

/* The heap counters of two infos are the same. */
static void same_heap(const mms_info *a, const mms_info *b)
{
    ASSERT_EQ(a->heap_objects, b->heap_objects);
    ASSERT_EQ(a->heap_used, b->heap_used);
    ASSERT_EQ(a->heap_free, b->heap_free);
    ASSERT_EQ(a->region_size[0], b->region_size[0]);
}

/* A copy of every byte of the heap, to show that refused calls wrote nothing. */
struct snap {
    unsigned char *bytes;
    uint64_t len;
};

static void snap_take(mms_store *s, struct snap *sn)
{
    sn->len = info_of(s)->region_size[0];
    sn->bytes = malloc(sn->len);
    ASSERT(sn->bytes != NULL);
    memcpy(sn->bytes, mms_deref(s, MMS_REF_MAKE(0, 0)), sn->len);
}

static void snap_same(mms_store *s, struct snap *sn)
{
    ASSERT_EQ(info_of(s)->region_size[0], sn->len);
    const unsigned char *now = mms_deref(s, MMS_REF_MAKE(0, 0));
    for (uint64_t i = 0; i < sn->len; i += PAGE)
        if (memcmp(now + i, sn->bytes + i, PAGE)) {
            uint64_t k = i;
            while (now[k] == sn->bytes[k])
                k++;
            FAILF("heap byte at offset 0x%" PRIx64 " changed from 0x%02x to 0x%02x", k,
                  sn->bytes[k], now[k]);
        }
    free(sn->bytes);
    sn->bytes = NULL;
}

/* ------------------------------------------------------------------------
 * Operations that keep the model in step
 * ------------------------------------------------------------------------ */
enum { VIA_ALLOC, VIA_ZALLOC, VIA_REALLOC_NULL };

static struct obj *obj_new(mms_store *s, struct model *m, uint64_t *rng, uint64_t size, int via)
{
    mms_ref r = MMS_REF_NULL;
    if (via == VIA_ALLOC)
        OK(mms_alloc(s, size, &r));
    else if (via == VIA_ZALLOC)
        OK(mms_zalloc(s, size, &r));
    else
        OK(mms_realloc(s, &r, size));
    check_ref_shape(r);
    if (size == 0) /* "size 0 is taken as 1" */
        size = 1;
    size_t us = 0;
    OK(mms_alloc_size(s, r, &us));
    ASSERT_GE(us, size);
    unsigned char *p = mms_deref(s, r);
    if (via == VIA_ZALLOC) {
        uint64_t at = nonzero_at(p, size);
        if (at != size)
            FAILF("zalloc(%" PRIu64 ") = 0x%" PRIx64 ": byte %" PRIu64 " is 0x%02x", size, r,
                  at, p[at]);
    }
    struct obj o = {r, size, us, rnd_next(rng)};
    fill(p, o.seed, 0, size);
    model_add(m, o);
    return &m->o[m->n - 1];
}

static void obj_free(mms_store *s, struct model *m, size_t i, int probe_again)
{
    mms_ref r = m->o[i].ref;
    OK(mms_free(s, r));
    model_del(m, i);
    if (probe_again) {
        /* Nothing was allocated since: r names no live allocation. */
        mms_info before = *info_of(s);
        size_t us;
        FAILS(mms_free(s, r), MMS_EBADREF);
        FAILS(mms_alloc_size(s, r, &us), MMS_EBADREF);
        same_heap(&before, info_of(s));
    }
}

static void obj_realloc(mms_store *s, struct model *m, size_t i, uint64_t size)
{
    struct obj *o = &m->o[i];
    mms_ref r = o->ref;
    OK(mms_realloc(s, &r, size));
    check_ref_shape(r);
    size_t us = 0;
    OK(mms_alloc_size(s, r, &us));
    ASSERT_GE(us, size);
    unsigned char *p = mms_deref(s, r);
    uint64_t keep = size < o->size ? size : o->size;
    uint64_t at = mismatch(p, o->seed, 0, keep);
    if (at != keep)
        FAILF("realloc 0x%" PRIx64 " (%" PRIu64 " bytes) to %" PRIu64 " = 0x%" PRIx64
              ": byte %" PRIu64 " lost",
              o->ref, o->size, size, r, at);
    if (size > o->size)
        fill(p, o->seed, o->size, size);
    o->ref = r;
    o->size = size;
    o->usable = us;
}

/* New contents for an existing object (a store into committed data). */
static void obj_rewrite(mms_store *s, struct obj *o, uint64_t *rng)
{
    o->seed = rnd_next(rng);
    fill(mms_deref(s, o->ref), o->seed, 0, o->size);
}

/* Refs that must be refused: inside the object, unaligned, or in another
 * region. Each is EBADREF for free, alloc_size and realloc, and changes
 * nothing. */
static void probe_bad(mms_store *s, const struct obj *o, uint64_t *rng, int in_txn)
{
    mms_ref bad[16];
    int n = 0;
    if (o->usable > 16) {
        bad[n++] = o->ref + 16;
        bad[n++] = o->ref + o->usable - 16;
        bad[n++] = o->ref + 16 * (1 + rnd_below(rng, o->usable / 16 - 1));
    }
    if (o->usable > PAGE)
        bad[n++] = o->ref + PAGE;
    if (o->usable > SEG) {
        bad[n++] = o->ref + SEG - PAGE; /* first byte of the second unit */
        bad[n++] = o->ref + SEG;
    }
    bad[n++] = o->ref + 8;
    bad[n++] = o->ref + 1 + rnd_below(rng, 15);
    bad[n++] = MMS_REF_MAKE(1 + rnd_below(rng, 0xfffe), MMS_REF_SLOT(o->ref));
    mms_info before = *info_of(s);
    for (int k = 0; k < n; k++) {
        size_t us = 12345;
        int r = mms_alloc_size(s, bad[k], &us);
        if (r != MMS_EBADREF)
            FAILF("mms_alloc_size(0x%" PRIx64 ") of object 0x%" PRIx64 " (%" PRIu64
                  " usable) returned %d (%s) size %zu, expected MMS_EBADREF",
                  bad[k], o->ref, o->usable, r, mms_strerror(r), us);
        if (in_txn) {
            r = mms_free(s, bad[k]);
            if (r != MMS_EBADREF)
                FAILF("mms_free(0x%" PRIx64 ") of object 0x%" PRIx64 " (%" PRIu64
                      " usable) returned %d (%s), expected MMS_EBADREF",
                      bad[k], o->ref, o->usable, r, mms_strerror(r));
            mms_ref rr = bad[k];
            FAILS(mms_realloc(s, &rr, 100), MMS_EBADREF);
            ASSERT_EQ(rr, bad[k]);
        }
    }
    same_heap(&before, info_of(s));
}

/* ------------------------------------------------------------------------
 * Sizes
 * ------------------------------------------------------------------------ */
static const uint64_t small_edges[] = {1,   2,   15,  16,  17,  31,   32,   33,   47,   48,
                                       63,  64,  65,  127, 128, 129,  255,  256,  257,  511,
                                       512, 513, 1023, 1024, 1025, 1536, 2047, 2048};
static const uint64_t large_edges[] = {2049,  4095,  4096,      4097,          8191,
                                       8192,  8193,  65536,     1048576,       LARGE_MAX - PAGE,
                                       LARGE_MAX - 1, LARGE_MAX};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t size_small(uint64_t *rng)
{
    if (rnd_below(rng, 4) == 0)
        return small_edges[rnd_below(rng, NELEM(small_edges))];
    /* Half of them under 256 bytes: that is where most objects are. */
    return 1 + rnd_below(rng, rnd_below(rng, 2) ? 256 : SMALL_MAX);
}

static uint64_t size_large(uint64_t *rng)
{
    if (rnd_below(rng, 6) == 0)
        return large_edges[rnd_below(rng, NELEM(large_edges))];
    /* Log-uniform over 2 KiB .. 4 MiB. */
    uint64_t span = UINT64_C(1) << (11 + rnd_below(rng, 11));
    uint64_t sz = SMALL_MAX + 1 + rnd_below(rng, span);
    return sz > LARGE_MAX ? LARGE_MAX : sz;
}

static uint64_t size_huge(uint64_t *rng)
{
    if (rnd_below(rng, 4) == 0)
        return HUGE_MIN;
    return 5 * MiB + rnd_below(rng, 15 * MiB); /* 5 .. 20 MiB */
}

/* ------------------------------------------------------------------------
 * Cases
 * ------------------------------------------------------------------------ */

/* Every size 1..2100, the large edges and a few huge ones: usable sizes are
 * what the manual promises, and everything survives commit, reopen and frees. */
TEST(size_classes)
{
    uint64_t rng = case_seed(0x5123c1a5);
    const char *p = shm_tpath("alloc-classes");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct model m = {0};
    OK(mms_txn_begin(s, 0));
    size_t prev_us = 0;
    for (uint64_t sz = 1; sz <= 2100; sz++) {
        struct obj *o = obj_new(s, &m, &rng, sz, (int)(sz % 3));
        size_t us = o->usable;
        if (sz <= SMALL_MAX) {
            /* Size classes of 16 to 2048 bytes, 16-byte aligned. */
            ASSERT_EQ(us % 16, 0);
            ASSERT_LE(us, SMALL_MAX);
            ASSERT_GE(us, prev_us);
            prev_us = us;
        } else {
            ASSERT_EQ(us, (sz + PAGE - 1) / PAGE * PAGE); /* a run of whole pages */
        }
        if (sz == 1 || sz == 16)
            ASSERT_EQ(us, 16);
        if (sz == 2048)
            ASSERT_EQ(us, 2048);
        if (sz == 2049)
            ASSERT_EQ(us, PAGE);
    }
    for (size_t k = 0; k < NELEM(large_edges); k++) {
        struct obj *o = obj_new(s, &m, &rng, large_edges[k], (int)(k % 3));
        ASSERT_EQ(o->usable, (large_edges[k] + PAGE - 1) / PAGE * PAGE);
    }
    {
        /* size 0 is taken as 1 */
        struct obj *o = obj_new(s, &m, &rng, 0, VIA_ALLOC);
        ASSERT_EQ(o->usable, 16);
    }
    const uint64_t huge[] = {HUGE_MIN, LARGE_MAX + PAGE, 6 * MiB, 9 * MiB + 17};
    for (size_t k = 0; k < NELEM(huge); k++) {
        struct obj *o = obj_new(s, &m, &rng, huge[k], (int)(k % 3));
        ASSERT_LT(o->usable, huge[k] + SEG); /* no more than a unit of slack */
    }
    check_all(s, &m);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);

    OK(mms_close(s));
    s = open_flags(p, 0);
    verify_ok(s);
    check_all(s, &m);

    /* Free every other object, then the rest, in two transactions. */
    OK(mms_txn_begin(s, 0));
    for (size_t i = m.n; i-- > 0;)
        if (i % 2)
            obj_free(s, &m, i, i % 4 == 1);
    check_all(s, &m);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);
    OK(mms_txn_begin(s, 0));
    while (m.n)
        obj_free(s, &m, m.n - 1, m.n % 5 == 0);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);
    mms_info *in = info_of(s);
    ASSERT_EQ(in->heap_objects, 0);
    ASSERT_EQ(in->heap_used, 0);
    OK(mms_close(s));
    model_release(&m);
    rmrf(p);
}

/* Many objects of one small class: slabs fill up, empty, go back to the
 * spans, and come back. */
TEST(slab_churn)
{
    uint64_t rng = case_seed(0x51ab);
    const char *p = shm_tpath("alloc-slab");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct model m = {0};
    const uint64_t sizes[] = {16, 48, 200, 1000, 2048};
    for (size_t c = 0; c < NELEM(sizes); c++) {
        OK(mms_txn_begin(s, 0));
        for (int i = 0; i < 3000; i++)
            obj_new(s, &m, &rng, sizes[c], i % 2 ? VIA_ALLOC : VIA_ZALLOC);
        OK(mms_txn_commit(s));
        verify_ok(s);
        check_all(s, &m);
        /* Free in a random order, leaving one in 50. */
        OK(mms_txn_begin(s, 0));
        for (size_t k = m.n; k > 0; k--) {
            size_t i = rnd_below(&rng, m.n);
            if (rnd_below(&rng, 50))
                obj_free(s, &m, i, k % 7 == 0);
        }
        check_all(s, &m);
        OK(mms_txn_commit(s));
        verify_ok(s);
        check_all(s, &m);
    }
    uint64_t heap = info_of(s)->region_size[0];
    fprintf(stderr, "   heap %" PRIu64 " MiB after the first round\n", heap / MiB);
    /* The freed slots and slabs are reused: the same again does not grow. */
    for (size_t c = 0; c < NELEM(sizes); c++) {
        OK(mms_txn_begin(s, 0));
        for (int i = 0; i < 2000; i++)
            obj_new(s, &m, &rng, sizes[c], VIA_ALLOC);
        OK(mms_txn_commit(s));
        verify_ok(s);
        check_all(s, &m);
    }
    ASSERT_LE(info_of(s)->region_size[0], heap + SEG); /* no reuse would need 2 more */
    OK(mms_txn_begin(s, 0));
    while (m.n)
        obj_free(s, &m, rnd_below(&rng, m.n), 0);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);
    OK(mms_close(s));
    model_release(&m);
    rmrf(p);
}

/* Long random sequences against the model, across commits, aborts, reopens
 * and closes with an open transaction. The journal is checkpointed past 4
 * MiB, not the default 64: mms_verify after every transaction reads the
 * whole journal, and these transactions rewrite megabytes (most of the
 * case's time went there); checkpoints under way are covered as well. */
static mms_store *open_random(const char *p, unsigned flags)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    o.checkpoint_bytes = 4 * MiB;
    mms_store *s = NULL;
    OK(mms_open(p, &o, &s));
    return s;
}

static void random_run(const char *name, uint64_t fixed_seed, int ntxn, uint64_t budget,
                       unsigned huge_per_mille)
{
    uint64_t rng = case_seed(fixed_seed);
    if (soak)
        ntxn *= soak;
    else if (SANITIZED)
        ntxn /= 2; /* test.h */
    const char *p = shm_tpath(name);
    mms_store *s = open_random(p, MMS_CREATE);
    struct model cur = {0}, committed = {0};
    uint64_t nalloc = 0, nfree = 0, nrealloc = 0, ninplace = 0, nhuge = 0, ncommit = 0,
             nabort = 0, nreopen = 0, peak_heap = 0, peak_live = 0;
    for (int t = 0; t < ntxn; t++) {
        OK(mms_txn_begin(s, 0));
        int nops = 1 + (int)rnd_below(&rng, rnd_below(&rng, 8) ? 16 : 120);
        for (int op = 0; op < nops; op++) {
            unsigned r = (unsigned)rnd_below(&rng, 100);
            bool over = model_bytes(&cur) > budget;
            if (r < 45 && !over) {
                uint64_t sz;
                unsigned k = (unsigned)rnd_below(&rng, 1000);
                if (k < huge_per_mille && model_huge(&cur) < 2) {
                    sz = size_huge(&rng);
                    nhuge++;
                } else if (k < 550) {
                    sz = size_small(&rng);
                } else {
                    sz = size_large(&rng);
                }
                unsigned v = (unsigned)rnd_below(&rng, 10);
                obj_new(s, &cur, &rng, sz, v < 6 ? VIA_ALLOC : v < 9 ? VIA_ZALLOC : VIA_REALLOC_NULL);
                nalloc++;
            } else if (r < 75 && cur.n) {
                obj_free(s, &cur, rnd_below(&rng, cur.n), rnd_below(&rng, 4) == 0);
                nfree++;
            } else if (r < 90 && cur.n) {
                size_t i = rnd_below(&rng, cur.n);
                uint64_t old = cur.o[i].size, sz;
                unsigned k = (unsigned)rnd_below(&rng, 10);
                if (k < 3) /* shrink */
                    sz = 1 + rnd_below(&rng, old);
                else if (k < 6 && !over) /* grow a little (in place for large blocks) */
                    sz = old + 1 + rnd_below(&rng, old < 64 * KiB ? old : 64 * KiB);
                else if (k < 8 && !over) /* grow a lot */
                    sz = old * 2 + rnd_below(&rng, 4096);
                else
                    sz = rnd_below(&rng, 2) ? size_small(&rng) : size_large(&rng);
                if (sz > LARGE_MAX && old <= LARGE_MAX && model_huge(&cur) >= 2)
                    sz = LARGE_MAX;
                mms_ref was = cur.o[i].ref;
                uint64_t was_usable = cur.o[i].usable;
                obj_realloc(s, &cur, i, sz);
                nrealloc++;
                ninplace += sz > was_usable && cur.o[i].ref == was;
            } else if (r < 95 && cur.n) {
                struct obj *o = &cur.o[rnd_below(&rng, cur.n)];
                if (o->size <= LARGE_MAX || rnd_below(&rng, 8) == 0)
                    obj_rewrite(s, o, &rng);
            } else if (cur.n) {
                probe_bad(s, &cur.o[rnd_below(&rng, cur.n)], &rng, 1);
            }
        }
        check_all(s, &cur);
        if (model_bytes(&cur) > peak_live)
            peak_live = model_bytes(&cur);
        unsigned end = (unsigned)rnd_below(&rng, 100);
        if (end < 68) {
            OK(mms_txn_commit(s));
            model_copy(&committed, &cur);
            ncommit++;
        } else if (end < 90) {
            OK(mms_txn_abort(s));
            model_copy(&cur, &committed);
            nabort++;
        } else if (end < 96) {
            OK(mms_txn_commit(s));
            model_copy(&committed, &cur);
            mms_info before = *info_of(s);
            OK(mms_close(s));
            s = open_random(p, 0);
            same_heap(&before, info_of(s));
            ASSERT_EQ(mms_txn_id(s), before.txn_id);
            ncommit++;
            nreopen++;
        } else {
            /* Close with the transaction open: it is aborted. */
            OK(mms_close(s));
            s = open_random(p, 0);
            model_copy(&cur, &committed);
            nabort++;
            nreopen++;
        }
        verify_ok(s);
        check_all(s, &cur);
        if (t % 16 == 0 && cur.n)
            probe_bad(s, &cur.o[rnd_below(&rng, cur.n)], &rng, 0);
        uint64_t h = info_of(s)->region_size[0];
        if (h > peak_heap)
            peak_heap = h;
    }
    fprintf(stderr,
            "   %d txns (%" PRIu64 " commits, %" PRIu64 " aborts, %" PRIu64 " reopens): %" PRIu64
            " allocs (%" PRIu64 " huge), %" PRIu64 " frees, %" PRIu64 " reallocs (%" PRIu64
            " grew in place); %zu live; peaks: %" PRIu64 " MiB live, heap %" PRIu64 " MiB\n",
            ntxn, ncommit, nabort, nreopen, nalloc, nhuge, nfree, nrealloc, ninplace, cur.n,
            peak_live / MiB, peak_heap / MiB);
    /* Everything freed: nothing is left over. */
    OK(mms_txn_begin(s, 0));
    while (cur.n)
        obj_free(s, &cur, cur.n - 1, 0);
    OK(mms_txn_commit(s));
    verify_ok(s);
    mms_info *in = info_of(s);
    ASSERT_EQ(in->heap_objects, 0);
    ASSERT_EQ(in->heap_used, 0);
    ASSERT_GE(in->heap_free, in->region_size[0] - in->region_size[0] / SEG * 16 * PAGE);
    OK(mms_close(s));
    model_release(&cur);
    model_release(&committed);
    rmrf(p);
}

TEST(random_small_large)
{
    random_run("alloc-rnd1", 0xa110c001, 400, 24 * MiB, 0);
}

TEST(random_with_huge)
{
    random_run("alloc-rnd2", 0xa110c002, 150, 48 * MiB, 25);
}

/* realloc: the edge cases of the manual, and in-place growth of a large
 * block into the free span after it. */
TEST(realloc_cases)
{
    uint64_t rng = case_seed(0x4ea11c);
    const char *p = shm_tpath("alloc-realloc");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct model m = {0};
    OK(mms_txn_begin(s, 0));

    /* *ref == MMS_REF_NULL allocates. */
    struct obj *o = obj_new(s, &m, &rng, 100, VIA_REALLOC_NULL);
    mms_ref keep = o->ref;
    /* Size 0: MMS_EINVAL, *ref unchanged and still valid. */
    mms_ref r = keep;
    FAILS(mms_realloc(s, &r, 0), MMS_EINVAL);
    ASSERT_EQ(r, keep);
    FAILS(mms_realloc(s, NULL, 10), MMS_EINVAL);
    FAILS(mms_alloc(s, 10, NULL), MMS_EINVAL);
    /* Too big for any heap: an error, *ref unchanged and still valid. */
    r = keep;
    FAILS(mms_realloc(s, &r, (size_t)1 << 40), MMS_EFULL);
    ASSERT_EQ(r, keep);
    r = keep;
    FAILS(mms_realloc(s, &r, SIZE_MAX), MMS_EFULL);
    ASSERT_EQ(r, keep);
    FAILS(mms_alloc(s, SIZE_MAX, &r), MMS_EFULL);
    check_all(s, &m);

    /* One object through every kind and back. */
    const uint64_t chain[] = {1,   16,   17,        100,      2048,     2049,    4096,
                              5000, 300000, LARGE_MAX, HUGE_MIN, 12 * MiB, 7 * MiB, 6 * MiB,
                              LARGE_MAX, 9000, 2049, 2048, 600, 17, 16, 1};
    for (size_t k = 0; k < NELEM(chain); k++) {
        obj_realloc(s, &m, 0, chain[k]);
        check_all(s, &m);
    }
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);

    /* In-place growth. Find two large blocks A, B with B right after A and a
     * live block C after B; free B; growing A into B keeps A's ref. */
    OK(mms_txn_begin(s, 0));
    size_t ia = 0;
    int found = 0;
    for (int tries = 0; tries < 20 && !found; tries++) {
        obj_new(s, &m, &rng, 4 * PAGE, VIA_ALLOC);
        size_t n = m.n;
        if (n >= 3 && m.o[n - 3].usable == 4 * PAGE && m.o[n - 2].usable == 4 * PAGE &&
            m.o[n - 2].ref == m.o[n - 3].ref + 4 * PAGE &&
            m.o[n - 1].ref == m.o[n - 2].ref + 4 * PAGE) {
            ia = n - 3;
            found = 1;
        }
    }
    ASSERT(found); /* three page runs in a row in a young heap */
    mms_ref a = m.o[ia].ref;
    obj_free(s, &m, ia + 1, 1); /* B; the model moves the last object (C) into its place */
    obj_realloc(s, &m, ia, 4 * PAGE + 1); /* one page more */
    ASSERT_EQ(m.o[ia].ref, a);
    ASSERT_EQ(m.o[ia].usable, 5 * PAGE);
    obj_realloc(s, &m, ia, 8 * PAGE); /* the rest of B's space */
    ASSERT_EQ(m.o[ia].ref, a);
    ASSERT_EQ(m.o[ia].usable, 8 * PAGE);
    check_all(s, &m);
    /* No room after A any more (C is there): growing moves it. */
    obj_realloc(s, &m, ia, 8 * PAGE + 1);
    ASSERT_NE(m.o[ia].ref, a);
    check_all(s, &m);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);

    /* Reallocs (growing in place where there is room), then abort: every
     * object is back at its old place, size and contents. */
    OK(mms_txn_begin(s, 0));
    size_t last = m.n - 1;
    obj_new(s, &m, &rng, 2 * PAGE, VIA_ALLOC);
    OK(mms_txn_commit(s));
    struct model before = {0};
    model_copy(&before, &m);
    OK(mms_txn_begin(s, 0));
    obj_realloc(s, &m, m.n - 1, 3 * PAGE);
    obj_realloc(s, &m, last, m.o[last].size * 3);
    check_all(s, &m);
    OK(mms_txn_abort(s));
    model_copy(&m, &before);
    verify_ok(s);
    check_all(s, &m);

    /* Shrinking a large block to small and a huge one to large. */
    OK(mms_txn_begin(s, 0));
    size_t ih = m.n;
    obj_new(s, &m, &rng, 10 * MiB, VIA_ZALLOC);
    size_t il = m.n;
    obj_new(s, &m, &rng, 100 * KiB, VIA_ALLOC);
    obj_realloc(s, &m, il, 100);
    obj_realloc(s, &m, ih, 1 * MiB);
    check_all(s, &m);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);

    model_release(&before);
    OK(mms_close(s));
    model_release(&m);
    rmrf(p);
}

/* Freed space is reused: the same allocations after freeing everything do
 * not grow the heap, and an aborted transaction leaves no trace. */
TEST(reuse)
{
    uint64_t seed = case_seed(0x4e05e);
    const char *p = shm_tpath("alloc-reuse");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct model m = {0};
    enum { NSIZES = 600 };
    uint64_t sizes[NSIZES], total = 0;
    uint64_t rng = seed;
    for (int i = 0; i < NSIZES; i++) {
        sizes[i] = rnd_below(&rng, 3) ? size_small(&rng) : size_large(&rng) / 4;
        total += sizes[i];
    }
    uint64_t first_heap = 0;
    for (int cycle = 0; cycle < 4; cycle++) {
        OK(mms_txn_begin(s, 0));
        /* Same sizes, another order each cycle. */
        uint64_t order_rng = seed + (uint64_t)cycle;
        uint64_t perm[NSIZES];
        memcpy(perm, sizes, sizeof perm);
        for (int i = NSIZES - 1; i > 0; i--) {
            int j = (int)rnd_below(&order_rng, (uint64_t)i + 1);
            uint64_t x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        for (int i = 0; i < NSIZES; i++)
            obj_new(s, &m, &rng, perm[i], i % 4 == 0 ? VIA_ZALLOC : VIA_ALLOC);
        OK(mms_txn_commit(s));
        verify_ok(s);
        check_all(s, &m);
        mms_info *in = info_of(s);
        ASSERT_GE(in->heap_used, total);
        if (cycle == 0)
            first_heap = in->region_size[0];
        else
            ASSERT_LE(in->region_size[0], first_heap + SEG); /* at most one more segment */
        fprintf(stderr, "   cycle %d: %" PRIu64 " bytes asked, heap %" PRIu64 " MiB\n", cycle,
                total, in->region_size[0] / MiB);

        OK(mms_txn_begin(s, 0));
        while (m.n)
            obj_free(s, &m, rnd_below(&rng, m.n), 0);
        OK(mms_txn_commit(s));
        verify_ok(s);
        in = info_of(s);
        ASSERT_EQ(in->heap_objects, 0);
        ASSERT_EQ(in->heap_used, 0);
        /* All but the metadata (a few pages per 4 MiB unit) is free. */
        ASSERT_GE(in->heap_free, in->region_size[0] - in->region_size[0] / SEG * 16 * PAGE);
    }

    /* Aborted transactions: nothing is left allocated, and the file does not
     * grow again for space an aborted transaction used. */
    mms_info base = *info_of(s);
    uint64_t file_after_first = 0;
    for (int k = 0; k < 3; k++) {
        OK(mms_txn_begin(s, 0));
        for (int i = 0; i < 40; i++)
            obj_new(s, &m, &rng, 1 * MiB + (uint64_t)i * PAGE, VIA_ALLOC);
        obj_new(s, &m, &rng, 9 * MiB, VIA_ALLOC);
        ASSERT(info_of(s)->region_size[0] > base.region_size[0]);
        OK(mms_txn_abort(s));
        m.n = 0;
        verify_ok(s);
        same_heap(&base, info_of(s));
        check_all(s, &m);
        if (k == 0)
            file_after_first = info_of(s)->region_file[0];
        else
            ASSERT_EQ(info_of(s)->region_file[0], file_after_first);
    }
    OK(mms_close(s));
    model_release(&m);
    rmrf(p);
}

/* A freed huge allocation is reused by a later one of the same or smaller
 * size; adjacent freed ones are merged. */
TEST(huge_reuse)
{
    uint64_t rng = case_seed(0x4a6e);
    const char *p = shm_tpath("alloc-huge");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct model m = {0};
    OK(mms_txn_begin(s, 0));
    obj_new(s, &m, &rng, 300, VIA_ALLOC);
    obj_new(s, &m, &rng, 12 * MiB, VIA_ALLOC);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);
    mms_info a = *info_of(s);
    uint64_t heap = a.region_size[0];
    uint64_t husable = m.o[1].usable;

    OK(mms_txn_begin(s, 0));
    obj_free(s, &m, 1, 1);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);
    ASSERT_GE(info_of(s)->heap_free, a.heap_free + husable);

    /* Same size: no growth. */
    OK(mms_txn_begin(s, 0));
    obj_new(s, &m, &rng, 12 * MiB, VIA_ZALLOC);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);
    ASSERT_EQ(info_of(s)->region_size[0], heap);

    /* Smaller: no growth; and the smallest huge size fits in what is left. */
    OK(mms_txn_begin(s, 0));
    obj_free(s, &m, 1, 0);
    obj_new(s, &m, &rng, 6 * MiB, VIA_ALLOC);
    obj_new(s, &m, &rng, HUGE_MIN, VIA_ZALLOC);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);
    ASSERT_EQ(info_of(s)->region_size[0], heap);

    /* Both freed: first the lower one (its run cannot merge at free time, so
     * the 12 MiB allocation must merge the two runs), then the other way
     * round (merged at free time). Neither grows the heap. */
    for (int order = 0; order < 2; order++) {
        OK(mms_txn_begin(s, 0));
        if (order == 0) {
            obj_free(s, &m, 1, 0);
            obj_free(s, &m, 1, 0);
        } else {
            obj_free(s, &m, 2, 0);
            obj_free(s, &m, 1, 0);
        }
        OK(mms_txn_commit(s));
        verify_ok(s);
        check_all(s, &m);
        OK(mms_txn_begin(s, 0));
        obj_new(s, &m, &rng, 12 * MiB, VIA_ALLOC);
        OK(mms_txn_commit(s));
        verify_ok(s);
        check_all(s, &m);
        ASSERT_EQ(info_of(s)->region_size[0], heap);
        if (order == 0) {
            OK(mms_txn_begin(s, 0));
            obj_free(s, &m, 1, 0);
            obj_new(s, &m, &rng, 6 * MiB, VIA_ALLOC);
            obj_new(s, &m, &rng, HUGE_MIN, VIA_ALLOC);
            OK(mms_txn_commit(s));
            ASSERT_EQ(info_of(s)->region_size[0], heap);
        }
    }

    /* A freed huge allocation also serves ordinary page runs. */
    OK(mms_txn_begin(s, 0));
    obj_free(s, &m, 1, 0);
    for (int i = 0; i < 8; i++)
        obj_new(s, &m, &rng, 1 * MiB, VIA_ALLOC);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);
    ASSERT_EQ(info_of(s)->region_size[0], heap);

    OK(mms_close(s));
    s = open_flags(p, 0);
    verify_ok(s);
    check_all(s, &m);
    OK(mms_close(s));
    model_release(&m);
    rmrf(p);
}

/* Refs that are not the start of a live allocation are refused with
 * MMS_EBADREF and change nothing. */
TEST(bad_refs)
{
    uint64_t rng = case_seed(0xbad4ef);
    const char *p = shm_tpath("alloc-badref");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct model m = {0};
    OK(mms_txn_begin(s, 0));
    obj_new(s, &m, &rng, 100, VIA_ALLOC);        /* 0: small, class > 16 */
    obj_new(s, &m, &rng, 3 * PAGE + 5, VIA_ALLOC); /* 1: large */
    obj_new(s, &m, &rng, 10 * MiB, VIA_ALLOC);   /* 2: huge, three units */
    obj_new(s, &m, &rng, 40, VIA_ALLOC);         /* 3, 4, 5: to be freed */
    obj_new(s, &m, &rng, 50000, VIA_ALLOC);
    obj_new(s, &m, &rng, 5 * MiB, VIA_ALLOC);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);
    mms_ref small = m.o[0].ref, large = m.o[1].ref, huge = m.o[2].ref;
    ASSERT(m.o[0].usable > 16);
    mms_ref freed[3] = {m.o[3].ref, m.o[4].ref, m.o[5].ref};
    OK(mms_txn_begin(s, 0));
    obj_free(s, &m, 5, 0);
    obj_free(s, &m, 4, 0);
    obj_free(s, &m, 3, 0);
    OK(mms_txn_commit(s));
    verify_ok(s);
    check_all(s, &m);

    uint64_t top = info_of(s)->region_size[0];
    const mms_ref bad[] = {
        freed[0], freed[1], freed[2],               /* double frees */
        small + 16, small + 32, large + PAGE, large + 2 * PAGE, large + 16,
        huge + PAGE, huge + 16, huge - 16, huge + SEG - PAGE, huge + SEG,
        huge + 2 * SEG, huge + 10 * MiB - 16,       /* interior */
        MMS_REF_MAKE(1, MMS_REF_SLOT(small)), MMS_REF_MAKE(7, MMS_REF_SLOT(large)),
        MMS_REF_MAKE(0xffff, MMS_REF_SLOT(huge)),   /* other regions */
        small + 1, small + 8, large + 4, huge + 8,  /* unaligned */
        MMS_REF_MAKE(0, top), MMS_REF_MAKE(0, top + PAGE), MMS_REF_MAKE(0, top + 16 * MiB),
        MMS_REF_MAKE(0, MMS_SLOT_MASK & ~(uint64_t)15), /* past the heap */
        MMS_REF_MAKE(0, 16), MMS_REF_MAKE(0, PAGE), MMS_REF_MAKE(0, 5 * PAGE),
        MMS_REF_MAKE(0, 8 * PAGE),                  /* store header, page descriptors */
    };
    mms_info before = *info_of(s);
    struct snap sn;
    snap_take(s, &sn);
    OK(mms_txn_begin(s, 0));
    for (size_t k = 0; k < NELEM(bad); k++) {
        size_t us = 777;
        int r = mms_free(s, bad[k]);
        if (r != MMS_EBADREF)
            FAILF("mms_free(bad[%zu] = 0x%" PRIx64 ") returned %d (%s), expected MMS_EBADREF",
                  k, bad[k], r, mms_strerror(r));
        r = mms_alloc_size(s, bad[k], &us);
        if (r != MMS_EBADREF)
            FAILF("mms_alloc_size(bad[%zu] = 0x%" PRIx64 ") returned %d, size %zu", k, bad[k],
                  r, us);
        ASSERT_EQ(us, 777);
        mms_ref rr = bad[k];
        FAILS(mms_realloc(s, &rr, 64), MMS_EBADREF);
        ASSERT_EQ(rr, bad[k]);
        same_heap(&before, info_of(s));
    }
    OK(mms_free(s, MMS_REF_NULL));
    same_heap(&before, info_of(s));
    check_all(s, &m);
    snap_same(s, &sn); /* not one byte of the heap was written */
    OK(mms_txn_commit(s));
    verify_ok(s);
    same_heap(&before, info_of(s));
    check_all(s, &m);
    /* Outside a transaction, alloc_size still answers. */
    for (size_t k = 0; k < NELEM(bad); k++) {
        size_t us;
        FAILS(mms_alloc_size(s, bad[k], &us), MMS_EBADREF);
    }
    OK(mms_close(s));
    model_release(&m);
    rmrf(p);
}

/* Allocation needs a write transaction. */
TEST(no_txn)
{
    uint64_t rng = case_seed(0x7);
    const char *p = shm_tpath("alloc-notxn");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct model m = {0};
    OK(mms_txn_begin(s, 0));
    obj_new(s, &m, &rng, 500, VIA_ALLOC);
    OK(mms_txn_commit(s));
    mms_info before = *info_of(s);
    mms_ref r = 0, keep = m.o[0].ref;
    FAILS(mms_alloc(s, 10, &r), MMS_ENOTXN);
    FAILS(mms_zalloc(s, 10, &r), MMS_ENOTXN);
    FAILS(mms_alloc(s, 10 * MiB, &r), MMS_ENOTXN);
    ASSERT_EQ(r, 0);
    FAILS(mms_free(s, keep), MMS_ENOTXN);
    r = keep;
    FAILS(mms_realloc(s, &r, 5000), MMS_ENOTXN);
    ASSERT_EQ(r, keep);
    r = 0;
    FAILS(mms_realloc(s, &r, 5000), MMS_ENOTXN);
    ASSERT_EQ(r, 0);
    size_t us = 0;
    OK(mms_alloc_size(s, keep, &us));
    ASSERT_EQ(us, m.o[0].usable);
    same_heap(&before, info_of(s));
    verify_ok(s);
    check_all(s, &m);
    /* After an abort, too. */
    OK(mms_txn_begin(s, 0));
    OK(mms_txn_abort(s));
    FAILS(mms_alloc(s, 10, &r), MMS_ENOTXN);
    OK(mms_close(s));
    model_release(&m);
    rmrf(p);
}

/* A ref allocated by an aborted transaction is stale. Here the aborted
 * transaction grew the heap by normal segments; the next transaction reuses
 * that space for one huge allocation, which it does not write. The stale
 * ref names no live allocation (it is inside the huge one), so freeing it
 * must be refused. */
TEST(stale_ref_after_abort)
{
    uint64_t rng = case_seed(0x57a1e);
    const char *p = shm_tpath("alloc-stale");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct model m = {0};
    OK(mms_txn_begin(s, 0));
    obj_new(s, &m, &rng, 64, VIA_ALLOC);
    OK(mms_txn_commit(s));
    mms_info base = *info_of(s);

    OK(mms_txn_begin(s, 0));
    mms_ref stale = 0;
    for (int i = 0; i < 12 && !stale; i++) {
        mms_ref r;
        OK(mms_alloc(s, 1 * MiB, &r));
        if (MMS_REF_SLOT(r) >= 2 * SEG)
            stale = r;
    }
    ASSERT_NE(stale, 0);
    OK(mms_txn_abort(s));
    verify_ok(s);
    same_heap(&base, info_of(s));
    size_t us = 0;
    FAILS(mms_alloc_size(s, stale, &us), MMS_EBADREF); /* past the heap now */

    OK(mms_txn_begin(s, 0));
    mms_ref h;
    OK(mms_alloc(s, 6 * MiB, &h));
    OK(mms_alloc_size(s, h, &us));
    fprintf(stderr, "   stale ref 0x%" PRIx64 ", huge allocation 0x%" PRIx64 " (%zu bytes)\n",
            stale, h, us);
    mms_info before = *info_of(s);
    struct snap sn;
    snap_take(s, &sn);
    us = 777;
    int r = mms_alloc_size(s, stale, &us);
    if (r != MMS_EBADREF)
        FAILF("mms_alloc_size(stale 0x%" PRIx64 ") returned %d, size %zu: expected MMS_EBADREF",
              stale, r, us);
    r = mms_free(s, stale);
    if (r != MMS_EBADREF)
        FAILF("mms_free(stale 0x%" PRIx64 ") returned %d: expected MMS_EBADREF", stale, r);
    same_heap(&before, info_of(s));
    snap_same(s, &sn);
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
    model_release(&m);
    rmrf(p);
}

/* A huge allocation's data is the application's: whatever it holds, a ref
 * into its second unit is an interior ref and is refused. */
TEST(huge_interior_any_data)
{
    case_seed(0);
    const char *p = shm_tpath("alloc-hugedata");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref h;
    size_t us;
    OK(mms_alloc(s, 10 * MiB, &h));
    OK(mms_alloc_size(s, h, &us));
    memset(mms_deref(s, h), 0x11, us); /* bytes that happen to read as segment kinds */
    OK(mms_txn_commit(s));
    verify_ok(s);
    mms_info before = *info_of(s);
    struct snap sn;
    snap_take(s, &sn);
    OK(mms_txn_begin(s, 0));
    const mms_ref bad[] = {h + SEG - PAGE, h + SEG, h + 2 * SEG};
    for (size_t k = 0; k < NELEM(bad); k++) {
        size_t got = 777;
        int r = mms_alloc_size(s, bad[k], &got);
        if (r != MMS_EBADREF)
            FAILF("mms_alloc_size(0x%" PRIx64 ", inside 0x%" PRIx64
                  ") returned %d, size %zu: expected MMS_EBADREF",
                  bad[k], h, r, got);
        r = mms_free(s, bad[k]);
        if (r != MMS_EBADREF)
            FAILF("mms_free(0x%" PRIx64 ", inside 0x%" PRIx64 ") returned %d: expected "
                  "MMS_EBADREF",
                  bad[k], h, r);
        same_heap(&before, info_of(s));
    }
    snap_same(s, &sn);
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * Damaged allocator metadata. A stray store inside a write transaction
 * reaches the header's list heads, the page descriptors and the slab
 * headers (they are plain heap bytes), and the commit makes it durable.
 * Then mms_verify() reports it, and the allocator's calls that meet it
 * fail MMS_ECORRUPT: they never follow a damaged link or length out of
 * the heap (a crash) nor hand out space on its word.
 * ------------------------------------------------------------------------ */
struct fdesc { /* doc/FORMAT.md 2.3 */
    uint8_t kind, cls;
    uint16_t flags;
    uint32_t len, next, prev;
};
#define HDR_BYTES (5 * PAGE)
#define FREE_UNITS_AT 104
#define CLASS_HEAD_AT 112
#define BIN_HEAD_AT 240
#define NBIN 22
#define D_FREE_HEAD 2
#define D_LARGE_HEAD 4
#define GARBAGE 0x7ffffff0u

static struct fdesc *desc_of(mms_store *s, uint64_t pg)
{
    uint64_t seg = pg / 1024;
    char *base = mms_deref(s, MMS_REF_MAKE(0, 0));
    return (struct fdesc *)(void *)(base + seg * SEG + (seg ? 0 : HDR_BYTES)) + pg % 1024;
}

static uint32_t *hdr_u32(mms_store *s, uint64_t at)
{
    return (uint32_t *)mms_deref(s, MMS_REF_MAKE(0, at));
}

enum damage { BIN_HEAD, CLASS_HEAD, FREE_UNITS, SPAN_NEXT, SPAN_LEN, SPAN_KIND, RUN_LEN,
              RUN_NEXT, HUGE_LEN, SEG0_KIND, NDAMAGE };
static const char *const damage_name[NDAMAGE] = {
    "free span list heads", "slab list heads", "free unit list head", "free span links",
    "free span lengths", "free span kinds", "free unit run length", "free unit run link",
    "huge segment length", "segment 0's kind"};

static void damage_one(enum damage k)
{
    const char *p = shm_tpath("alloc-damage");
    rmrf(p);
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_ref small, large, gap, keep, huge, gone;
    OK(mms_txn_begin(s, 0));
    OK(mms_alloc(s, 100, &small));
    OK(mms_alloc(s, 5 * PAGE, &large));
    OK(mms_alloc(s, 7 * PAGE, &gap));
    OK(mms_alloc(s, 3 * PAGE, &keep));
    OK(mms_alloc(s, 6 * MiB, &huge));
    OK(mms_alloc(s, 9 * MiB, &gone));
    OK(mms_alloc(s, 2 * PAGE, &keep)); /* a normal segment after the freed run */
    OK(mms_free(s, gap));
    OK(mms_free(s, gone));
    OK(mms_txn_commit(s));
    verify_ok(s);

    OK(mms_txn_begin(s, 0));
    uint32_t *bins = hdr_u32(s, BIN_HEAD_AT), *classes = hdr_u32(s, CLASS_HEAD_AT);
    uint32_t *units = hdr_u32(s, FREE_UNITS_AT);
    ASSERT_NE(*units, 0);
    struct fdesc *run = desc_of(s, (uint64_t)*units * 1024);
    for (int b = 0; b < NBIN; b++) {
        if (!bins[b])
            continue;
        struct fdesc *d = desc_of(s, bins[b]);
        if (k == BIN_HEAD)
            bins[b] = GARBAGE;
        else if (k == SPAN_NEXT)
            d->next = GARBAGE;
        else if (k == SPAN_LEN)
            d->len = GARBAGE;
        else if (k == SPAN_KIND)
            d->kind = D_LARGE_HEAD;
    }
    for (int c = 0; c < 24 && k == CLASS_HEAD; c++)
        if (classes[c])
            classes[c] = GARBAGE;
    if (k == FREE_UNITS)
        *units = GARBAGE;
    else if (k == RUN_LEN)
        run->len = GARBAGE;
    else if (k == RUN_NEXT)
        run->next = GARBAGE;
    else if (k == HUGE_LEN)
        desc_of(s, MMS_REF_SLOT(huge) / PAGE - 1)->len = GARBAGE;
    else if (k == SEG0_KIND)
        desc_of(s, 0)->kind = 17; /* a huge segment */
    OK(mms_txn_commit(s));
    char msg[256];
    int r = mms_verify(s, msg, sizeof msg);
    if (r != MMS_ECORRUPT)
        FAILF("%s damaged: mms_verify returned %d, expected MMS_ECORRUPT", damage_name[k], r);

    /* The call that meets the damage. */
    mms_ref got = 0;
    size_t us = 0;
    OK(mms_txn_begin(s, 0));
    switch (k) {
    case CLASS_HEAD:
        r = mms_alloc(s, 100, &got);
        break;
    case FREE_UNITS:
    case RUN_LEN:
    case RUN_NEXT:
        r = mms_alloc(s, 9 * MiB, &got);
        break;
    case HUGE_LEN:
        ASSERT(mms_str_get(s, huge, NULL) == NULL);
        r = mms_alloc_size(s, huge, &us);
        if (r == MMS_ECORRUPT)
            r = mms_free(s, huge);
        break;
    case SEG0_KIND:
        r = mms_free(s, small);
        break;
    default:
        r = mms_alloc(s, 5 * PAGE, &got);
        break;
    }
    if (r != MMS_ECORRUPT)
        FAILF("%s damaged: the allocator returned %d (ref 0x%" PRIx64 "), expected "
              "MMS_ECORRUPT", damage_name[k], r, got);
    OK(mms_txn_abort(s));
    OK(mms_close(s));
    rmrf(p);
}

TEST(damaged_metadata)
{
    case_seed(0);
    for (int k = 0; k < NDAMAGE; k++) {
        fprintf(stderr, "   %s\n", damage_name[k]);
        damage_one((enum damage)k);
    }
}

/* A handle outside a transaction reads the heap as it is mapped, while
 * another handle's commits move the heap's size in the header under it:
 * mms_alloc_size and mms_str_get took that size and read descriptors past
 * this handle's mapping (SIGSEGV). A ref it cannot see yet is refused; its
 * next transaction sees it. */
TEST(other_handle_grew_heap)
{
    case_seed(0);
    const char *p = shm_tpath("alloc-grown");
    mms_store *a = open_flags(p, MMS_CREATE), *b = open_flags(p, 0);
    mms_ref h1, x, h2, h3;
    size_t us;
    OK(mms_txn_begin(a, 0));
    OK(mms_alloc(a, 9 * MiB, &h1));
    OK(mms_alloc(a, 100, &x));
    OK(mms_txn_commit(a));
    OK(mms_txn_begin(b, 0));
    OK(mms_alloc_size(b, h1, &us));
    OK(mms_free(b, h1));
    OK(mms_txn_commit(b));
    OK(mms_txn_begin(a, 0));
    OK(mms_alloc(a, 5 * MiB, &h2));
    OK(mms_alloc(a, 4 * MiB, &h3));
    OK(mms_txn_commit(a));
    const mms_ref refs[] = {h2, h3, h3 + SEG, x};
    for (size_t k = 0; k < NELEM(refs); k++) {
        int r = mms_alloc_size(b, refs[k], &us);
        if (r != 0 && r != MMS_EBADREF)
            FAILF("mms_alloc_size(0x%" PRIx64 ") outside a transaction returned %d", refs[k], r);
        (void)mms_str_get(b, refs[k], NULL);
    }
    OK(mms_txn_begin(b, 0));
    OK(mms_alloc_size(b, h3, &us));
    OK(mms_free(b, h3));
    OK(mms_free(b, h2));
    OK(mms_txn_commit(b));
    verify_ok(a);
    verify_ok(b);
    OK(mms_close(a));
    OK(mms_close(b));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * Each case in a child process: a failing case aborts its child only.
 * ------------------------------------------------------------------------ */
static int failures;

static void run_case(const char *name, void (*fn)(void))
{
    fprintf(stderr, "-- %s\n", name);
    double t0 = now_us();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        FAILF("fork: %s", strerror(errno));
    if (pid == 0) {
        fn();
        exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        FAILF("waitpid: %s", strerror(errno));
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok)
        failures++;
    fprintf(stderr, "   %s (%.1f s)\n",
            ok ? "ok" : WIFSIGNALED(st) ? "FAILED (signal)" : "FAILED", (now_us() - t0) / 1e6);
}
#define RUN_CASE(name) run_case(#name, name)

int main(void)
{
    const char *e = getenv("MMS_SOAK");
    if (e)
        soak = atoi(e) > 1 ? atoi(e) : 10;
    double t0 = now_us();
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): the allocator
     * is the point here, and on the disk the syncs of the commits after
     * every few operations were half of this test's time. */
    shm_choose();
    RUN_CASE(size_classes);
    RUN_CASE(slab_churn);
    RUN_CASE(realloc_cases);
    RUN_CASE(reuse);
    RUN_CASE(huge_reuse);
    RUN_CASE(bad_refs);
    RUN_CASE(no_txn);
    RUN_CASE(random_small_large);
    RUN_CASE(random_with_huge);
    RUN_CASE(stale_ref_after_abort);
    RUN_CASE(huge_interior_any_data);
    RUN_CASE(damaged_metadata);
    RUN_CASE(other_handle_grew_heap);
    shm_cleanup();
    fprintf(stderr, "%d case(s) failed; %.1f s\n", failures, (now_us() - t0) / 1e6);
    return failures ? 1 : 0;
}

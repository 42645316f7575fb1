/*
 * pmem_bench -- the pointer API (issue 17) against glibc and against the
 * ref API, and a pointer-based hash map in a fixed-address store against
 * the same code on malloc.
 *
 *     pmem_bench DIR [ROUNDS] [KEYS]     (1000 rounds, 1,000,000 keys)
 *
 * alloc/free: ROUNDS rounds of 1000 allocations of 16-256 bytes (the first
 * word written), then 1000 frees, as bench/sys_*'s alloc workload: glibc
 * malloc/free; mms_alloc/mms_free and mms_pmalloc/mms_pfree in one write
 * transaction of a new store (fixed-address for the pointer API), the
 * commit not counted. The cost of one allocation plus one free.
 *
 * examples/pmap.h, the same code over two allocators: KEYS inserts of
 * distinct 13-byte keys and KEYS lookups of random present keys. On
 * malloc; in a fixed-address store in one write transaction (the commit
 * timed apart), and with a commit every 1000 inserts (durable, and
 * MMS_NOSYNC). Lookups in a read transaction of a new handle, so they read
 * the region file's pages as any later process would.
 *
 * Each figure is the median of 5 runs, each on a new store. Uses only the
 * public API.
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../examples/pmap.h"

#define RUNS 5

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void check(int r, const char *what)
{
    if (r) {
        fprintf(stderr, "pmem_bench: %s: %s (%s)\n", what, mms_strerror(r), mms_errdetail());
        exit(1);
    }
}

static uint64_t mix(uint64_t x)
{
    uint64_t z = x + UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof *v, cmp_double);
    return v[RUNS / 2];
}

static const char *dir;

static mms_store *fresh(unsigned flags)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        exit(1);
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | flags;
    mms_store *s;
    check(mms_open(dir, &o, &s), "open");
    return s;
}

/* ------------------------------------------------------------------------
 * alloc/free
 * ------------------------------------------------------------------------ */
enum { OBJS = 1000 };
enum { A_MALLOC, A_REF, A_PTR };

static double alloc_run(int kind, int rounds)
{
    static void *p[OBJS];
    static mms_ref refs[OBJS];
    mms_store *s = kind == A_MALLOC ? NULL : fresh(kind == A_PTR ? MMS_FIXED : 0);
    if (s)
        check(mms_txn_begin(s, 0), "begin");
    uint64_t x = 1;
    double t = now_s();
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < OBJS; i++) {
            x = mix(x);
            size_t size = 16 + x % 241;
            if (kind == A_MALLOC) {
                p[i] = malloc(size);
            } else if (kind == A_PTR) {
                p[i] = mms_pmalloc(s, size);
            } else {
                check(mms_alloc(s, size, &refs[i]), "mms_alloc");
                p[i] = mms_deref(s, refs[i]);
            }
            if (!p[i])
                check(-12, "allocation");
            *(uint64_t *)p[i] = x;
        }
        for (int i = 0; i < OBJS; i++) {
            if (kind == A_MALLOC)
                free(p[i]);
            else if (kind == A_PTR)
                mms_pfree(s, p[i]);
            else
                check(mms_free(s, refs[i]), "mms_free");
        }
    }
    t = now_s() - t;
    if (s) {
        check(mms_txn_commit(s), "commit");
        check(mms_close(s), "close");
    }
    return t * 1e9 / ((double)rounds * OBJS);
}

/* ------------------------------------------------------------------------
 * The hash map
 * ------------------------------------------------------------------------ */
static void *m_alloc(void *ctx, size_t n) { (void)ctx; return malloc(n); }
static void *m_calloc(void *ctx, size_t n, size_t size) { (void)ctx; return calloc(n, size); }
static void m_free(void *ctx, void *p) { (void)ctx; free(p); }
static void *s_alloc(void *ctx, size_t n) { return mms_pmalloc(ctx, n); }
static void *s_calloc(void *ctx, size_t n, size_t size) { return mms_pcalloc(ctx, n, size); }
static void s_free(void *ctx, void *p) { mms_pfree(ctx, p); }

static char (*keys)[16];
static uint64_t nkeys;

static void insert_range(struct pmap *m, const struct pmap_mem *mem, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        uint64_t *v = pmap_put(m, mem, keys[i], 13);
        if (!v)
            check(-12, "pmap_put");
        *v = i;
    }
}

static uint64_t lookups(const struct pmap *m)
{
    uint64_t sum = 0, x = 2;
    for (uint64_t i = 0; i < nkeys; i++) {
        x = mix(x);
        const uint64_t *v = pmap_get(m, keys[x % nkeys], 13);
        if (!v)
            check(-2, "pmap_get");
        sum += *v;
    }
    return sum;
}

struct map_times {
    double insert, commit, lookup, again; /* seconds; again: a second pass of lookups */
    /* Commits of the batched runs: how many, and their mms_info figures summed. */
    uint64_t commits;
    struct mms_commit_stats sum;
};

static void time_lookups(const struct pmap *m, struct map_times *t)
{
    double t0 = now_s();
    volatile uint64_t sink = lookups(m);
    t->lookup = now_s() - t0;
    t0 = now_s();
    sink = lookups(m);
    (void)sink;
    t->again = now_s() - t0;
}

static void map_malloc(struct map_times *t)
{
    struct pmap_mem mem = {m_alloc, m_calloc, m_free, NULL};
    struct pmap m;
    double t0 = now_s();
    if (pmap_init(&m, &mem, 1024))
        exit(1);
    insert_range(&m, &mem, 0, nkeys);
    t->insert = now_s() - t0;
    t->commit = 0;
    time_lookups(&m, t);
    for (uint64_t i = 0; i < m.nbuckets; i++)
        for (struct pmap_entry *e = m.bucket[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    free(m.bucket);
}

/* batch 0: one transaction. */
static void map_store(struct map_times *t, uint64_t batch, unsigned flags)
{
    mms_store *s = fresh(MMS_FIXED | flags);
    struct pmap_mem mem = {s_alloc, s_calloc, s_free, s};
    double t0 = now_s(), tc = 0;
    check(mms_txn_begin(s, 0), "begin");
    struct pmap *m = mms_pmalloc(s, sizeof *m);
    if (!m || pmap_init(m, &mem, 1024))
        check(mms_last_error(), "pmap_init");
    check(mms_root_ptr_set(s, m), "root");
    uint64_t step = batch ? batch : nkeys;
    for (uint64_t i = 0; i < nkeys; i += step) {
        if (i)
            check(mms_txn_begin(s, 0), "begin");
        insert_range(m, &mem, i, i + step < nkeys ? i + step : nkeys);
        double c0 = now_s();
        check(mms_txn_commit(s), "commit");
        tc += now_s() - c0;
        mms_info in;
        check(mms_info_get(s, &in), "info");
        t->commits++;
        t->sum.total_ns += in.last_commit.total_ns;
        t->sum.detect_ns += in.last_commit.detect_ns;
        t->sum.journal_ns += in.last_commit.journal_ns;
        t->sum.sync_ns += in.last_commit.sync_ns;
        t->sum.apply_ns += in.last_commit.apply_ns;
        t->sum.pages_dirty += in.last_commit.pages_dirty;
        t->sum.journal_bytes += in.last_commit.journal_bytes;
    }
    t->insert = now_s() - t0 - (batch ? 0 : tc);
    t->commit = batch ? 0 : tc;
    check(mms_close(s), "close");
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_FIXED | MMS_RDONLY;
    check(mms_open(dir, &o, &s), "reopen");
    check(mms_read_begin(s), "read");
    time_lookups(mms_root_ptr(s), t);
    check(mms_read_end(s), "read end");
    check(mms_close(s), "close");
}

static char commit_notes[4][256];
static int ncommit_notes;

static void map_row(const char *name, void (*run)(struct map_times *, uint64_t, unsigned),
                    uint64_t batch, unsigned flags, double base_ins, double base_look,
                    double *ins_out, double *look_out)
{
    double ins[RUNS], com[RUNS], look[RUNS], again[RUNS];
    struct map_times t = {0};
    for (int r = 0; r < RUNS; r++) {
        memset(&t, 0, sizeof t);
        if (run)
            run(&t, batch, flags);
        else
            map_malloc(&t);
        ins[r] = nkeys / t.insert / 1e6;
        com[r] = t.commit * 1e3;
        look[r] = nkeys / t.lookup / 1e6;
        again[r] = nkeys / t.again / 1e6;
    }
    double i = median(ins), c = median(com), l = median(look), a = median(again);
    char cbuf[32] = "-";
    if (c > 0)
        snprintf(cbuf, sizeof cbuf, "%.0f ms", c);
    printf("| %s | %.2f M/s | %s | %.2f M/s | %.2f M/s | %.2fx / %.2fx / %.2fx |\n", name, i,
           cbuf, l, a, base_ins ? base_ins / i : 1.0, base_look ? base_look / l : 1.0,
           base_look ? look_out[1] / a : 1.0);
    if (batch && t.commits) /* the last run's commits, on average */
        snprintf(commit_notes[ncommit_notes++], sizeof commit_notes[0],
                 "| %s | %.0f | %.2f ms | %.2f / %.2f / %.2f / %.2f ms | %.0f KB |", name,
                 (double)t.sum.pages_dirty / t.commits, t.sum.total_ns / 1e6 / t.commits,
                 t.sum.detect_ns / 1e6 / t.commits, t.sum.journal_ns / 1e6 / t.commits,
                 t.sum.sync_ns / 1e6 / t.commits, t.sum.apply_ns / 1e6 / t.commits,
                 t.sum.journal_bytes / 1024.0 / t.commits);
    if (ins_out)
        *ins_out = i;
    if (!base_look) {
        look_out[0] = l;
        look_out[1] = a;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pmem_bench DIR [ROUNDS] [KEYS]\n");
        return 2;
    }
    dir = argv[1];
    int rounds = argc > 2 ? atoi(argv[2]) : 1000;
    nkeys = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000;

    printf("## alloc + free, 16-256 bytes, %d x 1000 pairs (median of %d runs)\n\n", rounds, RUNS);
    printf("| allocator | ns per alloc + free | x glibc |\n|---|---:|---:|\n");
    static const char *const names[] = {"glibc malloc/free", "mms_alloc/mms_free (refs)",
                                        "mms_pmalloc/mms_pfree (pointers, MMS_FIXED)"};
    double glibc = 0;
    for (int k = A_MALLOC; k <= A_PTR; k++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++)
            v[r] = alloc_run(k, rounds);
        double m = median(v);
        if (k == A_MALLOC)
            glibc = m;
        printf("| %s | %.1f | %.2fx |\n", names[k], m, m / glibc);
    }

    keys = malloc(nkeys * sizeof *keys);
    if (!keys)
        return 1;
    for (uint64_t i = 0; i < nkeys; i++) /* distinct: odd multiples mod 2^48 */
        snprintf(keys[i], sizeof keys[i], "k%012" PRIx64,
                 (i * UINT64_C(0x9e3779b97f4a7c15)) & UINT64_C(0xffffffffffff));
    printf("\n## examples/pmap.h: %" PRIu64 " inserts, %" PRIu64 " random lookups (median of %d "
           "runs)\n\n", nkeys, nkeys, RUNS);
    printf("| allocator | inserts | commit | lookups | lookups again | x malloc (insert / "
           "lookup / again) |\n|---|---:|---:|---:|---:|---:|\n");
    double bi, bl[2];
    map_row("malloc", NULL, 0, 0, 0, 0, &bi, bl);
    map_row("mms_pmalloc, one transaction", map_store, 0, 0, bi, bl[0], NULL, bl);
    map_row("mms_pmalloc, a durable commit per 1000", map_store, 1000, 0, bi, bl[0], NULL, bl);
    map_row("mms_pmalloc, a MMS_NOSYNC commit per 1000", map_store, 1000, MMS_NOSYNC, bi, bl[0],
            NULL, bl);
    printf("\n## The commits of 1000 inserts (the last run's, on average; mms_info)\n\n"
           "| run | pages dirty | commit | detect / journal / sync / apply | journal group |\n"
           "|---|---:|---:|---:|---:|\n");
    for (int k = 0; k < ncommit_notes; k++)
        printf("%s\n", commit_notes[k]);
    free(keys);
    return 0;
}

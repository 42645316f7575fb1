/*
 * sys_pmemobj -- the benchmark harness for PMDK's libpmemobj (see bench/README.md).
 *
 * One variant, "tx": everything goes through libpmemobj transactions
 * (pmemobj_tx_begin(3)), the library's only multi-operation durability
 * protocol. The store is a pool file DIR/pool.obj created with
 * pmemobj_create(path, "mmstore-bench", size, 0644); its root object holds
 * {PMEMoid recs; uint64_t n}, recs being ONE object: an array of N
 * struct bench_rec (type number 1).
 *
 * Durability. The benchmark file system is not persistent memory, so
 * libpmemobj flushes with msync(2) instead of CPU cache flushes
 * (pmemobj_create(3): "libpmemobj will use either pmem_persist(3) or
 * msync(2) when it needs to flush changes, depending on whether the memory
 * pool appears to be persistent memory or a regular file"; pmem_msync(3)
 * "calls msync() with the MS_SYNC flag"). We do NOT set PMEM_IS_PMEM_FORCE=1: it makes
 * pmem_is_pmem(3) claim the file is pmem, so libpmemobj would only flush CPU
 * caches and never msync -- nothing would reach the disk, which is not
 * durable on a regular file (libpmem(7): the variable "is mostly used for
 * testing"). Default ctl settings (pmemobj_ctl_get(3)); pmemobj_tx_commit(3):
 * "all the changes may be considered as durably written upon successful
 * completion". (libpmemobj does not fsync the directory after creating the
 * pool file; mmstore does. One fsync: negligible.)
 *
 * Transactions use the function API with a NULL jmp_buf (pmemobj_tx_begin(3):
 * the env argument is optional), so an abort does not longjmp: every call's
 * result is checked and a failure exits. That is the TX_BEGIN/TX_END flow
 * without setjmp's clobbering rules.
 *
 * Workloads:
 *   load    timed: pmemobj_create (posix_fallocate of the whole pool, heap
 *           init) + pmemobj_root + ONE transaction: TX_ADD_DIRECT(root),
 *           ONE pmemobj_tx_alloc of N * 64 bytes, bench_make into it, root
 *           set, pmemobj_tx_commit (which msyncs the new object: no
 *           POBJ_XALLOC_NO_FLUSH). Answer: sum of `a` after reopening.
 *           Why one array and not N objects: one transaction of N
 *           pmemobj_tx_alloc calls works but is absurdly slow here. Each
 *           allocation persists its 16-byte object header at once (not at
 *           commit), i.e. one msync(2) per object on a non-pmem file: measured
 *           2.3 msyncs and ~1.2 ms per 64-byte record (10^4 records: 16 s),
 *           so 10^7 records would take hours (the driver's timeout is 1 h).
 *           One array allocated, filled and committed in one transaction is
 *           the fairest alternative: it is also the layout of mmstore's table
 *           (one append_many into fresh space), and the commit flushes the
 *           whole new object (msync of N * 64 bytes). Pool size:
 *           N * 64 * 1.0625 + 64 MiB (a pool file does not grow).
 *   commit  prepare: the load store. Timed: 10^4 transactions, each
 *           TX_ADD_FIELD_DIRECT(rec, a) (an 8-byte undo-log snapshot,
 *           pmemobj_tx_add_range(3)), rec->a++, pmemobj_tx_commit. Answer:
 *           sum of `a`. The store is then rebuilt (untimed) so every run
 *           starts from the prepared state, as sys_mmstore does.
 *   alloc   the Hoard threadtest shape of sys_mmstore.c: 1000 rounds of 1000
 *           pmemobj_tx_alloc(16 + x % 241) (default allocation classes, type
 *           number 2), each written with its x, then 1000 pmemobj_tx_free;
 *           all inside ONE transaction, timed from after pmemobj_tx_begin to
 *           before the commit, like sys_mmstore. One transaction works:
 *           freeing an object allocated in the same transaction cancels its
 *           reservation (the space is reused by the next round) and the
 *           commit has nothing left to do. Each allocation still msyncs its
 *           header (see load), ~0.15 ms here: a run takes ~2.5 minutes.
 *           Answer: the number of allocations. 64 MiB pool, created untimed.
 *   open, get, scan  (not in the driver's list for pmemobj; easy and fair
 *           since the records are one array like mmstore's table)
 *           prepare: the load store. open: pmemobj_open + root + record
 *           bench_key(0, N). get: 10^7 reads of `a` at bench_key(k, N).
 *           scan: the sum of `b`.
 *   commit_size, ipc: unsupported (mmstore only).
 */
#define _GNU_SOURCE
#include <libpmemobj.h>

#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common.h"

#define LAYOUT "mmstore-bench"
#define TYPE_RECS 1
#define TYPE_OBJ 2

struct root {
    PMEMoid recs; /* struct bench_rec[n] */
    uint64_t n;
};

static const char *variant = "tx";

static void rmrf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        BENCH_DIE("cannot remove %s", dir);
}

static void pool_path(char *buf, size_t cap, const char *dir)
{
    snprintf(buf, cap, "%s/pool.obj", dir);
}

/* A fresh, empty pool of size bytes in dir. */
static PMEMobjpool *create_pool(const char *dir, size_t size)
{
    char p[4200];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        BENCH_DIE("pmemobj: cannot make %s", dir);
    pool_path(p, sizeof p, dir);
    PMEMobjpool *pop = pmemobj_create(p, LAYOUT, size, 0644);
    if (!pop)
        BENCH_DIE("pmemobj: pmemobj_create %s: %s", p, pmemobj_errormsg());
    return pop;
}

static PMEMobjpool *open_pool(const char *dir)
{
    char p[4200];
    pool_path(p, sizeof p, dir);
    PMEMobjpool *pop = pmemobj_open(p, LAYOUT);
    if (!pop)
        BENCH_DIE("pmemobj: pmemobj_open %s: %s", p, pmemobj_errormsg());
    return pop;
}

static void tx_begin(PMEMobjpool *pop)
{
    if (pmemobj_tx_begin(pop, NULL, TX_PARAM_NONE) != 0)
        BENCH_DIE("pmemobj: pmemobj_tx_begin: %s", pmemobj_errormsg());
}

static void tx_commit(void)
{
    pmemobj_tx_commit();
    if (pmemobj_tx_end() != 0)
        BENCH_DIE("pmemobj: transaction failed: %s", pmemobj_errormsg());
}

/* Inside a transaction: a failed call has aborted it; end it and exit. */
static void tx_fail(const char *what)
{
    fprintf(stderr, "pmemobj: %s: %s\n", what, pmemobj_errormsg());
    if (pmemobj_tx_stage() != TX_STAGE_NONE)
        pmemobj_tx_end();
    exit(1);
}

/* The records of an open store; checks that it holds n of them. */
static struct bench_rec *records(PMEMobjpool *pop, uint64_t n)
{
    struct root *rt = pmemobj_direct(pmemobj_root(pop, sizeof(struct root)));
    if (!rt || rt->n != n || OID_IS_NULL(rt->recs))
        BENCH_DIE("pmemobj: the store does not hold %llu records", (unsigned long long)n);
    return pmemobj_direct(rt->recs);
}

/* A store of n records, created and filled in one transaction. Returns the
 * time from create to durable commit. */
static double build(const char *dir, uint64_t n)
{
    if (n == 0 || n > PMEMOBJ_MAX_ALLOC_SIZE / sizeof(struct bench_rec))
        BENCH_DIE("pmemobj: cannot hold %llu records in one object", (unsigned long long)n);
    size_t bytes = (size_t)n * sizeof(struct bench_rec);
    rmrf(dir);
    double t = bench_now();
    PMEMobjpool *pop = create_pool(dir, bytes + bytes / 16 + ((size_t)64 << 20));
    PMEMoid root = pmemobj_root(pop, sizeof(struct root));
    if (OID_IS_NULL(root))
        BENCH_DIE("pmemobj: pmemobj_root: %s", pmemobj_errormsg());
    struct root *rt = pmemobj_direct(root);
    tx_begin(pop);
    if (TX_ADD_DIRECT(rt) != 0)
        tx_fail("TX_ADD_DIRECT(root)");
    PMEMoid recs = pmemobj_tx_alloc(bytes, TYPE_RECS);
    if (OID_IS_NULL(recs))
        tx_fail("pmemobj_tx_alloc");
    struct bench_rec *r = pmemobj_direct(recs);
    for (uint64_t i = 0; i < n; i++)
        bench_make(&r[i], i);
    rt->recs = recs;
    rt->n = n;
    tx_commit();
    t = bench_now() - t;
    pmemobj_close(pop);
    return t;
}

static uint64_t checksum_a(const struct bench_rec *r, uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += r[i].a;
    return sum;
}

static void answer_u64(char *buf, uint64_t v)
{
    snprintf(buf, 32, "%llu", (unsigned long long)v);
}

int main(int argc, char **argv)
{
    if (argc < 5)
        BENCH_DIE("usage: bench_pmemobj prepare|run WORKLOAD N DIR [VARIANT]");
    const char *phase = argv[1], *w = argv[2], *dir = argv[4];
    uint64_t n = strtoull(argv[3], NULL, 10);
    if (argc > 5)
        variant = argv[5];
    if (strcmp(variant, "tx") != 0)
        bench_unsupported("pmemobj has one variant: tx");
    int prep = strcmp(phase, "prepare") == 0;
    char ans[64] = "-";

    if (strcmp(w, "open") == 0 || strcmp(w, "get") == 0 || strcmp(w, "scan") == 0) {
        if (prep) {
            build(dir, n);
            return 0;
        }
        double t = bench_now();
        PMEMobjpool *pop = open_pool(dir);
        const struct bench_rec *r = records(pop, n);
        uint64_t ops = 1;
        if (strcmp(w, "open") == 0) {
            answer_u64(ans, r[bench_key(0, n)].a);
            t = bench_now() - t;
        } else if (strcmp(w, "get") == 0) {
            ops = 10000000;
            uint64_t sum = 0;
            t = bench_now();
            for (uint64_t k = 0; k < ops; k++)
                sum += r[bench_key(k, n)].a;
            t = bench_now() - t;
            answer_u64(ans, sum);
        } else {
            ops = n;
            uint64_t sum = 0;
            t = bench_now();
            for (uint64_t i = 0; i < n; i++)
                sum += r[i].b;
            t = bench_now() - t;
            answer_u64(ans, sum);
        }
        pmemobj_close(pop);
        bench_result("pmemobj", variant, w, n, ops, t, ans);
        return 0;
    }
    if (strcmp(w, "load") == 0) {
        if (prep)
            return 0;
        double t = build(dir, n);
        PMEMobjpool *pop = open_pool(dir);
        answer_u64(ans, checksum_a(records(pop, n), n));
        pmemobj_close(pop);
        bench_result("pmemobj", variant, w, n, n, t, ans);
        rmrf(dir);
        return 0;
    }
    if (strcmp(w, "commit") == 0) {
        if (prep) {
            build(dir, n);
            return 0;
        }
        PMEMobjpool *pop = open_pool(dir);
        struct bench_rec *r = records(pop, n);
        enum { TXNS = 10000 };
        double t = bench_now();
        for (uint64_t j = 0; j < TXNS; j++) {
            struct bench_rec *p = &r[bench_key(j, n)];
            tx_begin(pop);
            if (TX_ADD_FIELD_DIRECT(p, a) != 0)
                tx_fail("TX_ADD_FIELD_DIRECT");
            p->a++;
            tx_commit();
        }
        t = bench_now() - t;
        answer_u64(ans, checksum_a(r, n));
        pmemobj_close(pop);
        bench_result("pmemobj", variant, w, n, TXNS, t, ans);
        /* The next run starts from the prepared state again. */
        build(dir, n);
        return 0;
    }
    if (strcmp(w, "alloc") == 0) {
        if (prep)
            return 0;
        rmrf(dir);
        PMEMobjpool *pop = create_pool(dir, (size_t)64 << 20);
        enum { OBJS = 1000 };
        const int rounds = bench_alloc_rounds(n);
        static PMEMoid refs[OBJS];
        uint64_t x = BENCH_SEED, allocs = 0;
        tx_begin(pop);
        double t = bench_now();
        for (int round = 0; round < rounds; round++) {
            for (int i = 0; i < OBJS; i++) {
                x = bench_mix(x);
                refs[i] = pmemobj_tx_alloc(16 + x % 241, TYPE_OBJ);
                if (OID_IS_NULL(refs[i]))
                    tx_fail("pmemobj_tx_alloc");
                *(uint64_t *)pmemobj_direct(refs[i]) = x;
                allocs++;
            }
            for (int i = 0; i < OBJS; i++)
                if (pmemobj_tx_free(refs[i]) != 0)
                    tx_fail("pmemobj_tx_free");
        }
        t = bench_now() - t;
        tx_commit();
        pmemobj_close(pop);
        answer_u64(ans, allocs);
        bench_result("pmemobj", variant, w, n, allocs, t, ans);
        rmrf(dir);
        return 0;
    }
    if (strcmp(w, "commit_size") == 0 || strcmp(w, "ipc") == 0)
        bench_unsupported("mmstore only");
    bench_unsupported("unknown workload");
    return 3;
}

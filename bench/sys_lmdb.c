/*
 * sys_lmdb -- the benchmark harness for LMDB (see bench/README.md).
 *
 * One environment in DIR (data.mdb, lock.mdb), its main DB opened with
 * MDB_INTEGERKEY: keys are 8-byte native uint64_t record indices (size_t on
 * the platforms we run on, as MDB_INTEGERKEY requires), values the 64-byte
 * struct bench_rec. The map size is 64 GiB: without MDB_WRITEMAP LMDB does
 * not grow the file to the map size, so it only reserves address space.
 *
 * Flags, per workload (the documentation quoted is lmdb.h, LMDB 0.9):
 *   open, get, scan  env opened MDB_RDONLY, reads in one MDB_RDONLY txn.
 *                    get is mdb_get; scan a cursor, MDB_FIRST then MDB_NEXT.
 *                    openscan: scan timed from before the open (the cold full
 *                    scan). Variant nordahead (open, openscan): MDB_NORDAHEAD,
 *                    against mmstore's MMS_NORDAHEAD. Otherwise
 *                    no MDB_NORDAHEAD: lmdb.h says turning readahead off
 *                    "may help random read performance when the DB is larger
 *                    than RAM and system RAM is full", which is not the case
 *                    here (the largest DB, 10^7 records, is ~1 GB), and it
 *                    would slow the scan and the cold open.
 *   load (variant append)  mdb_put with MDB_APPEND, keys in order, in ONE
 *                    write txn ("This option allows fast bulk loading when
 *                    keys are already known to be in the correct order"),
 *                    durable commit (no MDB_NOSYNC). Variant default: the
 *                    same with plain mdb_put (pages split half full).
 *                    The stores the other workloads prepare are built the
 *                    same way as variant append (untimed), so they are
 *                    packed as an mmstore table is.
 *   commit           one write txn per update: mdb_get, copy, a += 1,
 *                    mdb_put, mdb_txn_commit.
 *                    variant default: durable, LMDB fsyncs at every commit
 *                    ("LMDB always flushes the OS buffers upon commit ...
 *                    unless the environment was opened with MDB_NOSYNC").
 *                    variant nosync: MDB_NOSYNC ("a system crash can ...
 *                    lose the last transactions"; with write-ordering file
 *                    systems and no MDB_WRITEMAP, ACI are kept, not D): the
 *                    analogue of mmstore's nosync.
 * No MDB_WRITEMAP anywhere: it is not the default, gives up the protection
 * from stray writes, and lmdb.h only promises it "may be slightly faster
 * for DBs that fit entirely in RAM".
 * alloc, commit_size and ipc are unsupported (no allocator of its own /
 * mmstore-only workloads).
 */
#define _GNU_SOURCE
#include <lmdb.h>

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common.h"

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "MDB_INTEGERKEY keys are size_t");

#define MAPSIZE ((size_t)64 << 30)

#define CHECK(call)                                                            \
    do {                                                                       \
        int r_ = (call);                                                       \
        if (r_)                                                                \
            BENCH_DIE("lmdb: %s: %s", #call, mdb_strerror(r_));                \
    } while (0)

static const char *variant = "default";

static void rmrf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        BENCH_DIE("cannot remove %s", dir);
}

static MDB_env *open_env(const char *dir, unsigned flags)
{
    MDB_env *env;
    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_mapsize(env, MAPSIZE));
    if (!(flags & MDB_RDONLY) && strcmp(variant, "nosync") == 0)
        flags |= MDB_NOSYNC;
    CHECK(mdb_env_open(env, dir, flags, 0644));
    return env;
}

static MDB_dbi open_dbi(MDB_txn *txn, unsigned flags)
{
    MDB_dbi dbi;
    CHECK(mdb_dbi_open(txn, NULL, MDB_INTEGERKEY | flags, &dbi));
    return dbi;
}

/* The a of a record in the map (LMDB only aligns data to 2 bytes). */
static inline uint64_t rec_a(const MDB_val *v)
{
    uint64_t a;
    memcpy(&a, (const char *)v->mv_data + offsetof(struct bench_rec, a), sizeof a);
    return a;
}

/* A store of n records: one write txn, keys in order, durable commit
 * (unless variant nosync); MDB_APPEND if append. */
static double build(const char *dir, uint64_t n, int append)
{
    rmrf(dir);
    if (mkdir(dir, 0755) != 0)
        BENCH_DIE("cannot make %s", dir);
    double t = bench_now();
    MDB_env *env = open_env(dir, 0);
    MDB_txn *txn;
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    MDB_dbi dbi = open_dbi(txn, MDB_CREATE);
    struct bench_rec r;
    for (uint64_t i = 0; i < n; i++) {
        MDB_val k = {sizeof i, &i}, v = {sizeof r, &r};
        bench_make(&r, i);
        CHECK(mdb_put(txn, dbi, &k, &v, append ? MDB_APPEND : 0));
    }
    CHECK(mdb_txn_commit(txn));
    t = bench_now() - t;
    mdb_env_close(env);
    return t;
}

/* The sum of a over all records (mod 2^64). */
static uint64_t checksum_a(MDB_env *env)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    MDB_dbi dbi = open_dbi(txn, 0);
    CHECK(mdb_cursor_open(txn, dbi, &cur));
    uint64_t sum = 0;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        sum += rec_a(&v);
    if (rc != MDB_NOTFOUND)
        CHECK(rc);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return sum;
}

static void answer_u64(char *buf, uint64_t v)
{
    snprintf(buf, 32, "%llu", (unsigned long long)v);
}

/* Keyed workloads: the same records keyed by a (MDB_INTEGERKEY), loaded in
 * key order with MDB_APPEND. keyget: mdb_get; range: MDB_SET_RANGE, then
 * MDB_NEXT. */
static void build_keyed(const char *dir, uint64_t n)
{
    rmrf(dir);
    if (mkdir(dir, 0755) != 0)
        BENCH_DIE("cannot make %s", dir);
    uint64_t (*ka)[2] = malloc(n * sizeof *ka);
    if (!ka)
        BENCH_DIE("out of memory");
    for (uint64_t i = 0; i < n; i++) {
        ka[i][0] = bench_a(i);
        ka[i][1] = i;
    }
    qsort(ka, n, sizeof *ka, bench_cmp_u64);
    MDB_env *env = open_env(dir, 0);
    MDB_txn *txn;
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    MDB_dbi dbi = open_dbi(txn, MDB_CREATE);
    struct bench_rec r;
    for (uint64_t i = 0; i < n; i++) {
        MDB_val k = {sizeof ka[i][0], &ka[i][0]}, v = {sizeof r, &r};
        bench_make(&r, ka[i][1]);
        CHECK(mdb_put(txn, dbi, &k, &v, MDB_APPEND));
    }
    CHECK(mdb_txn_commit(txn));
    mdb_env_close(env);
    free(ka);
}

static uint32_t rec_b(const MDB_val *v)
{
    uint32_t b;
    memcpy(&b, (const char *)v->mv_data + offsetof(struct bench_rec, b), sizeof b);
    return b;
}

/* Where LMDB mapped dir/data.mdb (mdb_env_info's me_mapaddr is only the
 * MDB_FIXEDMAP address): from /proc/self/maps. */
static const void *map_of(const char *dir)
{
    char line[4400], want[4200], *abs = realpath(dir, NULL);
    snprintf(want, sizeof want, "%s/data.mdb", abs ? abs : dir);
    free(abs);
    FILE *f = fopen("/proc/self/maps", "r");
    unsigned long long lo = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        size_t L = strlen(line), W = strlen(want);
        if (L >= W && strcmp(line + L - W, want) == 0 && sscanf(line, "%llx-", &lo) == 1)
            break;
        lo = 0;
    }
    if (f)
        fclose(f);
    if (!lo)
        BENCH_DIE("lmdb: %s is not mapped", want);
    return (const void *)(uintptr_t)lo;
}

static int keyed(int prep, const char *w, uint64_t n, const char *dir)
{
    if (strcmp(w, "keyget") != 0 && strcmp(w, "range") != 0)
        bench_unsupported("not measured for LMDB");
    if (prep) {
        build_keyed(dir, n);
        return 0;
    }
    MDB_env *env = open_env(dir, MDB_RDONLY);
    MDB_txn *txn;
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    MDB_dbi dbi = open_dbi(txn, 0);
    uint64_t sum = 0, ops, key;
    MDB_val k = {sizeof key, &key}, v;
    double t;
    char wvar[64];
    if (bench_warm()) { /* every page of the map in use */
        MDB_envinfo ei;
        MDB_stat st;
        CHECK(mdb_env_info(env, &ei));
        CHECK(mdb_env_stat(env, &st));
        bench_touch(map_of(dir), (size_t)(ei.me_last_pgno + 1) * st.ms_psize);
        snprintf(wvar, sizeof wvar, "%s-warm", variant);
        variant = wvar;
    }
    if (strcmp(w, "keyget") == 0) {
        ops = BENCH_KEYGETS;
        t = bench_now();
        for (uint64_t i = 0; i < ops; i++) {
            key = bench_lookup_key(i, n);
            CHECK(mdb_get(txn, dbi, &k, &v));
            sum += rec_b(&v);
        }
        t = bench_now() - t;
    } else {
        MDB_cursor *cur;
        CHECK(mdb_cursor_open(txn, dbi, &cur));
        ops = BENCH_RANGES;
        t = bench_now();
        for (uint64_t j = 0; j < ops; j++) {
            key = bench_range_start(j, n);
            k.mv_size = sizeof key;
            k.mv_data = &key;
            int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            for (unsigned m = 0; m < BENCH_RANGE_LEN && rc == 0; m++) {
                sum += rec_b(&v);
                if (m + 1 < BENCH_RANGE_LEN)
                    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            }
            if (rc)
                CHECK(rc);
        }
        t = bench_now() - t;
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    char ans[32];
    answer_u64(ans, sum);
    bench_result("lmdb", variant, w, n, ops, t, ans);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        BENCH_DIE("usage: bench_lmdb prepare|run WORKLOAD N DIR [default|nosync|append]");
    const char *phase = argv[1], *w = argv[2], *dir = argv[4];
    uint64_t n = strtoull(argv[3], NULL, 10);
    if (argc > 5)
        variant = argv[5];
    if (strcmp(variant, "default") != 0 && strcmp(variant, "nosync") != 0 &&
        strcmp(variant, "append") != 0 && strcmp(variant, "nordahead") != 0)
        BENCH_DIE("lmdb: unknown variant %s (default, nosync, append, nordahead)", variant);
    int prep = strcmp(phase, "prepare") == 0;
    if (!prep && strcmp(phase, "run") != 0)
        BENCH_DIE("lmdb: unknown phase %s", phase);
    if (strcmp(w, "keyget") == 0 || strcmp(w, "range") == 0 || strcmp(w, "ixbuild") == 0 ||
        strcmp(w, "keycommit") == 0)
        return keyed(prep, w, n, dir);
    char ans[64] = "-";

    if (strcmp(w, "open") == 0 || strcmp(w, "get") == 0 || strcmp(w, "scan") == 0 ||
        strcmp(w, "openscan") == 0) {
        if (prep) {
            build(dir, n, 1);
            return 0;
        }
        double t = bench_now();
        MDB_env *env = open_env(dir, MDB_RDONLY | (strcmp(variant, "nordahead") == 0 ? MDB_NORDAHEAD : 0));
        MDB_txn *txn;
        CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
        MDB_dbi dbi = open_dbi(txn, 0);
        uint64_t ops = 1;
        if (strcmp(w, "open") == 0) {
            uint64_t key = bench_key(0, n);
            MDB_val k = {sizeof key, &key}, v;
            CHECK(mdb_get(txn, dbi, &k, &v));
            answer_u64(ans, rec_a(&v));
            t = bench_now() - t;
        } else if (strcmp(w, "get") == 0) {
            ops = 10000000;
            uint64_t sum = 0, key;
            MDB_val k = {sizeof key, &key}, v;
            t = bench_now();
            for (uint64_t i = 0; i < ops; i++) {
                key = bench_key(i, n);
                int rc = mdb_get(txn, dbi, &k, &v);
                if (rc)
                    CHECK(rc);
                sum += rec_a(&v);
            }
            t = bench_now() - t;
            answer_u64(ans, sum);
        } else {
            ops = n;
            uint64_t sum = 0;
            MDB_cursor *cur;
            MDB_val k, v;
            int rc;
            if (strcmp(w, "scan") == 0)
                t = bench_now();
            CHECK(mdb_cursor_open(txn, dbi, &cur));
            for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
                 rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                uint32_t b;
                memcpy(&b, (const char *)v.mv_data + offsetof(struct bench_rec, b), sizeof b);
                sum += b;
            }
            mdb_cursor_close(cur);
            t = bench_now() - t;
            if (rc != MDB_NOTFOUND)
                CHECK(rc);
            answer_u64(ans, sum);
        }
        mdb_txn_abort(txn);
        mdb_env_close(env);
        bench_result("lmdb", variant, w, n, ops, t, ans);
        return 0;
    }
    if (strcmp(w, "load") == 0) {
        if (prep)
            return 0;
        double t = build(dir, n, strcmp(variant, "append") == 0);
        MDB_env *env = open_env(dir, MDB_RDONLY);
        answer_u64(ans, checksum_a(env));
        mdb_env_close(env);
        bench_result("lmdb", variant, w, n, n, t, ans);
        rmrf(dir);
        return 0;
    }
    if (strcmp(w, "commit") == 0) {
        if (prep) {
            build(dir, n, 1);
            return 0;
        }
        MDB_env *env = open_env(dir, 0);
        MDB_dbi dbi;
        {
            MDB_txn *txn;
            CHECK(mdb_txn_begin(env, NULL, 0, &txn));
            dbi = open_dbi(txn, 0);
            CHECK(mdb_txn_commit(txn));
        }
        enum { TXNS = 10000 };
        double t = bench_now();
        for (uint64_t j = 0; j < TXNS; j++) {
            MDB_txn *txn;
            uint64_t key = bench_key(j, n);
            MDB_val k = {sizeof key, &key}, v;
            struct bench_rec r;
            CHECK(mdb_txn_begin(env, NULL, 0, &txn));
            CHECK(mdb_get(txn, dbi, &k, &v));
            if (v.mv_size != sizeof r)
                BENCH_DIE("lmdb: record %llu has %zu bytes", (unsigned long long)key,
                          v.mv_size);
            memcpy(&r, v.mv_data, sizeof r);
            r.a++;
            v.mv_data = &r;
            CHECK(mdb_put(txn, dbi, &k, &v, 0));
            CHECK(mdb_txn_commit(txn));
        }
        t = bench_now() - t;
        answer_u64(ans, checksum_a(env));
        mdb_env_close(env);
        bench_result("lmdb", variant, w, n, TXNS, t, ans);
        /* The next run starts from the prepared state again. */
        build(dir, n, 1);
        return 0;
    }
    if (strcmp(w, "alloc") == 0)
        bench_unsupported("LMDB is a key-value store with no general-purpose allocator");
    if (strcmp(w, "commit_size") == 0 || strcmp(w, "ipc") == 0)
        bench_unsupported("mmstore-only workload");
    bench_unsupported("unknown workload");
    return 3;
}

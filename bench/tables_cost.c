/*
 * tables_cost -- what the calls that should not depend on the number of
 * tables cost as it grows. Uses only the public API.
 *
 *     tables_cost DIR [TABLES...]
 *
 * For each count (default 0 10 100 500): a new MMS_NOSYNC store in DIR
 * with that many tables of one 16-byte record each and a table "main" of
 * 10^5 records, then
 *   - alloc/free: one write transaction of 200 rounds of 1,000 mms_alloc
 *     calls (16 to 256 bytes) and their 1,000 mms_free calls; mms_free
 *     refuses the library's own heap objects (heapobj.c), a look that must
 *     not walk the tables each time: ns per pair;
 *   - commit: 4,000 transactions, each adding one to a field of a record
 *     of "main" (the same 64 pages in turn): us per transaction (begin,
 *     the store, commit), the median of 8 batches of 500;
 *   - open: one mms_open of the closed store, its files in the page
 *     cache: us.
 * One line per count. A commit should cost what the transaction touched,
 * not what the store holds (issue 14).
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

struct rec {
    int64_t a;
    double b;
};
static const mms_field fields[] = {MMS_F_I64(struct rec, a), MMS_F_F64(struct rec, b)};
static const mms_schema schema = MMS_SCHEMA(struct rec, fields);

#define CHECK(call)                                                            \
    do {                                                                       \
        int r_ = (call);                                                       \
        if (r_)                                                                \
            BENCH_DIE("mmstore: %s: %s (%s)", #call, mms_strerror(r_), mms_errdetail()); \
    } while (0)

static void rmrf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (strchr(dir, '\'') || system(cmd) != 0)
        BENCH_DIE("cannot remove %s", dir);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static mms_store *make(const char *dir, int ntab, mms_table **main_t)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_EXCL | MMS_NOSYNC;
    mms_store *s;
    CHECK(mms_open(dir, &o, &s));
    CHECK(mms_txn_begin(s, 0));
    for (int i = 0; i < ntab; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", i);
        mms_table *t;
        struct rec r = {i, 0};
        CHECK(mms_table_open(s, name, &schema, MMS_TABLE_CREATE, &t));
        CHECK(mms_table_append(t, &r, NULL));
    }
    uint64_t first;
    void *at;
    CHECK(mms_table_open(s, "main", &schema, MMS_TABLE_CREATE, main_t));
    CHECK(mms_table_append_many(*main_t, 100000, &first, &at));
    CHECK(mms_txn_commit(s));
    return s;
}

static double alloc_free_ns(mms_store *s)
{
    enum { OBJS = 1000, ROUNDS = 200 };
    static mms_ref refs[OBJS];
    uint64_t x = BENCH_SEED;
    CHECK(mms_txn_begin(s, 0));
    double t = bench_now();
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < OBJS; i++) {
            x = bench_mix(x);
            CHECK(mms_alloc(s, 16 + x % 241, &refs[i]));
        }
        for (int i = 0; i < OBJS; i++)
            CHECK(mms_free(s, refs[i]));
    }
    t = bench_now() - t;
    CHECK(mms_txn_commit(s));
    return t / ((double)ROUNDS * OBJS) * 1e9;
}

static double commit_us(mms_store *s, mms_table *t)
{
    enum { BATCHES = 8, PER = 500 };
    double b[BATCHES];
    for (int k = 0; k < BATCHES; k++) {
        double t0 = bench_now();
        for (int i = 0; i < PER; i++) {
            CHECK(mms_txn_begin(s, 0));
            ((struct rec *)mms_table_get(t, (uint64_t)(i % 64) * 256))->a++;
            CHECK(mms_txn_commit(s));
        }
        b[k] = (bench_now() - t0) / PER * 1e6;
    }
    qsort(b, BATCHES, sizeof b[0], cmp);
    return (b[BATCHES / 2 - 1] + b[BATCHES / 2]) / 2;
}

static double open_us(const char *dir)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_NOSYNC;
    mms_store *s;
    double t0 = bench_now();
    CHECK(mms_open(dir, &o, &s));
    double t = (bench_now() - t0) * 1e6;
    CHECK(mms_close(s));
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tables_cost DIR [TABLES...]\n");
        return 2;
    }
    static const int def[] = {0, 10, 100, 500};
    int n = argc > 2 ? argc - 2 : (int)(sizeof def / sizeof def[0]);
    printf("tables  alloc+free ns  commit us   open us\n");
    for (int i = 0; i < n; i++) {
        int ntab = argc > 2 ? atoi(argv[2 + i]) : def[i];
        rmrf(argv[1]);
        mms_table *t;
        mms_store *s = make(argv[1], ntab, &t);
        double af = alloc_free_ns(s), cu = commit_us(s, t);
        CHECK(mms_close(s));
        printf("%6d %14.1f %10.1f %9.1f\n", ntab, af, cu, open_us(argv[1]));
        fflush(stdout);
    }
    rmrf(argv[1]);
    return 0;
}

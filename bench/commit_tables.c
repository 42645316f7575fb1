/*
 * commit_tables -- what a small commit costs as the store's number of
 * tables grows. Uses only the public API.
 *
 *     commit_tables DIR [TABLES...]
 *
 * For each count (default 0 100 500): a new MMS_NOSYNC store in DIR with
 * that many other tables of one record each and a table of 10^5 records
 * of 16 bytes; then 4,000 transactions, each adding one to a field of one
 * of its records (the same 64 pages in turn) and committing. Prints
 * microseconds per transaction (begin, the store, commit), the median of
 * 8 batches of 500, and the time of an mms_open of the store afterwards
 * (one run), one line per count. A commit should cost what the
 * transaction touched, not what the store holds (issue 14).
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

static double commit_us(const char *dir, int ntab, double *open_us)
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
    mms_table *t;
    CHECK(mms_table_open(s, "main", &schema, MMS_TABLE_CREATE, &t));
    uint64_t first;
    void *at;
    CHECK(mms_table_append_many(t, 100000, &first, &at));
    CHECK(mms_txn_commit(s));
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
    CHECK(mms_close(s));
    /* And an open of it (files in the page cache, this process's first
     * handle): every table's region is opened and mapped. */
    o.flags = MMS_NOSYNC;
    double t0 = bench_now();
    CHECK(mms_open(dir, &o, &s));
    *open_us = (bench_now() - t0) * 1e6;
    CHECK(mms_close(s));
    qsort(b, BATCHES, sizeof b[0], cmp);
    return (b[BATCHES / 2 - 1] + b[BATCHES / 2]) / 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: commit_tables DIR [TABLES...]\n");
        return 2;
    }
    static const int def[] = {0, 100, 500};
    int n = argc > 2 ? argc - 2 : (int)(sizeof def / sizeof def[0]);
    for (int i = 0; i < n; i++) {
        int ntab = argc > 2 ? atoi(argv[2 + i]) : def[i];
        rmrf(argv[1]);
        double open_us, us = commit_us(argv[1], ntab, &open_us);
        printf("%4d tables: %8.1f us per small NOSYNC transaction, %8.1f us to open\n", ntab,
               us, open_us);
        fflush(stdout);
    }
    rmrf(argv[1]);
    return 0;
}

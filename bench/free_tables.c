/*
 * free_tables -- what an allocation and a free cost as the store's number
 * of tables grows. Uses only the public API.
 *
 *     free_tables DIR [TABLES...]
 *
 * For each count (default 0 10 100 500): a new store in DIR with that
 * many tables of a 16-byte layout, then one write transaction of 200
 * rounds of 1,000 mms_alloc calls (16 to 256 bytes) and the 1,000 mms_free
 * calls of them. mms_free refuses the library's own heap objects (the
 * catalog, each table's field list and bitmaps; heapobj.c): a cost that
 * may grow with the tables. Prints nanoseconds per allocation and free
 * pair, one line per count.
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static double pairs_ns(const char *dir, int ntab)
{
    mms_options o = {0};
    o.flags = MMS_CREATE | MMS_EXCL;
    mms_store *s;
    CHECK(mms_open(dir, &o, &s));
    CHECK(mms_txn_begin(s, 0));
    for (int i = 0; i < ntab; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", i);
        mms_table *t;
        CHECK(mms_table_open(s, name, &schema, MMS_TABLE_CREATE, &t));
    }
    CHECK(mms_txn_commit(s));
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
    CHECK(mms_close(s));
    return t / ((double)ROUNDS * OBJS) * 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: free_tables DIR [TABLES...]\n");
        return 2;
    }
    static const int def[] = {0, 10, 100, 500};
    int n = argc > 2 ? argc - 2 : (int)(sizeof def / sizeof def[0]);
    for (int i = 0; i < n; i++) {
        int ntab = argc > 2 ? atoi(argv[2 + i]) : def[i];
        rmrf(argv[1]);
        printf("%4d tables: %7.1f ns per mms_alloc + mms_free\n", ntab, pairs_ns(argv[1], ntab));
        fflush(stdout);
    }
    rmrf(argv[1]);
    return 0;
}

/*
 * str_free_cost -- what a commit that frees one of the application's own
 * strings costs when the store holds many records with strings. Uses only
 * the public API.
 *
 *     str_free_cost DIR [N_RECORDS [COMMITS]]
 *
 * A table of N_RECORDS (default 10^6) records of 16 bytes (an i64 and a
 * STR field, each record its own string), loaded in one transaction. Then
 * COMMITS (default 1000) MMS_NOSYNC transactions, each making a new string
 * that no record holds (kept under the root, as a program keeps its own
 * objects) and freeing the one the previous transaction made: the commit
 * must make sure no live record holds the freed string (heapobj.c, "The
 * strings of live records at commit"). Prints the first and second such
 * commits (the first scans, the second counts the holders) and the median
 * of the others, in microseconds, and the same for commits that free
 * nothing (the floor).
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

struct rec {
    int64_t id;
    mms_ref name;
};
static const mms_field rec_fields[] = {MMS_F_I64(struct rec, id), MMS_F_STR(struct rec, name)};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);

static void check(int r, const char *what)
{
    if (r) {
        fprintf(stderr, "str_free_cost: %s: %s (%s)\n", what, mms_strerror(r), mms_errdetail());
        exit(1);
    }
}

/* COMMITS commits; with do_free, each frees the string the previous made. */
static void commits(mms_store *s, int n, int do_free, double *first, double *second,
                    double *med)
{
    double *v = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
        char b[32];
        int len = snprintf(b, sizeof b, "mine %d", i);
        double t = bench_now();
        check(mms_txn_begin(s, 0), "begin");
        mms_ref old = mms_root(s), mine;
        check(mms_str_new(s, b, (size_t)len, &mine), "str_new");
        check(mms_root_set(s, mine), "root_set");
        if (do_free && old)
            check(mms_free(s, old), "free");
        check(mms_txn_commit(s), "commit");
        v[i] = (bench_now() - t) * 1e6;
    }
    *first = v[0];
    *second = v[1];
    *med = bench_median(v + 2, n - 2);
    free(v);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: str_free_cost DIR [N_RECORDS [COMMITS]]\n");
        return 2;
    }
    const char *dir = argv[1];
    uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
    int ncommits = argc > 3 ? atoi(argv[3]) : 1000;
    if (ncommits < 3)
        ncommits = 3;
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_NOSYNC;
    mms_store *s;
    check(mms_open(dir, &o, &s), "open");
    mms_table *t;
    check(mms_txn_begin(s, 0), "begin");
    check(mms_table_open(s, "rec", &rec_schema, MMS_TABLE_CREATE, &t), "table");
    for (uint64_t i = 0; i < n; i++) {
        char b[32];
        struct rec r = {.id = (int64_t)i};
        int len = snprintf(b, sizeof b, "r%llu", (unsigned long long)i);
        check(mms_str_new(s, b, (size_t)len, &r.name), "str_new");
        check(mms_table_append(t, &r, NULL), "append");
    }
    check(mms_txn_commit(s), "commit");
    double f0, s0, m0, f1, s1, m1;
    commits(s, ncommits, 0, &f0, &s0, &m0);
    commits(s, ncommits, 1, &f1, &s1, &m1);
    printf("records %llu  commits %d  nosync  (microseconds)\n", (unsigned long long)n, ncommits);
    printf("  no free:            first %9.1f  second %9.1f  median of the rest %9.1f\n", f0, s0,
           m0);
    printf("  free an app string: first %9.1f  second %9.1f  median of the rest %9.1f\n", f1, s1,
           m1);
    check(mms_close(s), "close");
    if (system(cmd) != 0)
        return 1;
    return 0;
}

/*
 * guard_cost -- what the guard adds to a small transaction: begin, store 8
 * bytes, commit, with the guard's kinds interleaved A/B/C round by round
 * (the machine may be shared or emulated: compare, never threshold).
 * Built and run by tests/pkey_qemu.sh only (public API only).
 *
 *     guard_cost DIR [SIZE_MB [ROUNDS [TXNS]]]
 *
 * Each kind gets its own store of SIZE_MB, every page read once (so each
 * mapping is populated: mprotect's costly case). MMS_NOSYNC: the journal
 * sync is not what is measured. Prints the median microseconds per
 * transaction and per commit call for each kind.
 */
#define _GNU_SOURCE
#include <mmstore.h>

#include "../../bench/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what, int r)
{
    fprintf(stderr, "guard_cost: %s: %s (%s)\n", what, mms_strerror(r), mms_errdetail());
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: guard_cost DIR [SIZE_MB [ROUNDS [TXNS]]]\n");
        return 2;
    }
    uint64_t mb = argc > 2 ? strtoull(argv[2], NULL, 10) : 64;
    int rounds = argc > 3 ? atoi(argv[3]) : 5, txns = argc > 4 ? atoi(argv[4]) : 200;
    const char *names[3] = {"pkey", "mprotect", "none"};
    const unsigned flags[3] = {MMS_GUARD, MMS_GUARD_MPROTECT, MMS_NOGUARD};
    unsetenv("MMS_GUARD");
    mms_store *s[3];
    volatile uint64_t *word[3];
    unsigned kind[3];
    for (int k = 0; k < 3; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/cost-%s", argv[1], names[k]);
        mms_options o;
        mms_options_init(&o);
        o.flags = MMS_CREATE | MMS_NOSYNC | flags[k];
        int r = mms_open(path, &o, &s[k]);
        if (r)
            die("open", r);
        mms_ref ref;
        if ((r = mms_txn_begin(s[k], 0)) || (r = mms_zalloc(s[k], mb << 20, &ref)) ||
            (r = mms_root_set(s[k], ref)) || (r = mms_txn_commit(s[k])))
            die("setup", r);
        volatile const char *p = mms_deref(s[k], ref);
        uint64_t sum = 0;
        for (uint64_t off = 0; off < mb << 20; off += 4096)
            sum += (unsigned char)p[off];
        word[k] = (volatile uint64_t *)mms_deref(s[k], ref) + sum;
        mms_info in;
        mms_info_get(s[k], &in);
        kind[k] = in.guard_kind;
    }
    double *txn_us[3], *commit_us[3];
    for (int k = 0; k < 3; k++) {
        txn_us[k] = malloc(sizeof(double) * (size_t)rounds);
        commit_us[k] = malloc(sizeof(double) * (size_t)rounds);
    }
    for (int round = 0; round < rounds; round++)
        for (int k0 = 0; k0 < 3; k0++) {
            int k = (k0 + round) % 3; /* the order rotates */
            double t0 = (bench_now() * 1e6), tc = 0;
            for (int i = 0; i < txns; i++) {
                int r = mms_txn_begin(s[k], 0);
                if (r)
                    die("begin", r);
                *word[k] += 1;
                double c0 = (bench_now() * 1e6);
                if ((r = mms_txn_commit(s[k])))
                    die("commit", r);
                tc += (bench_now() * 1e6) - c0;
            }
            txn_us[k][round] = ((bench_now() * 1e6) - t0) / txns;
            commit_us[k][round] = tc / txns;
        }
    printf("guard_cost: %llu MB populated, %d rounds x %d transactions, MMS_NOSYNC\n",
           (unsigned long long)mb, rounds, txns);
    printf("%-10s %-6s %14s %14s\n", "asked", "kind", "txn_us(med)", "commit_us(med)");
    for (int k = 0; k < 3; k++) {
        printf("%-10s %-6u %14.1f %14.1f\n", names[k], kind[k], bench_median(txn_us[k], rounds),
               bench_median(commit_us[k], rounds));
        mms_close(s[k]);
    }
    return 0;
}

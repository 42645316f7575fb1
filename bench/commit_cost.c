/*
 * commit_cost -- what a small commit costs, and where the time goes, as the
 * store grows. Uses only the public API (mms_info_get().last_commit).
 *
 *     commit_cost DIR [SIZE_MB ...]
 *
 * For each size: a store holding one object of SIZE_MB, every page of it
 * read once (so the mapping is populated, the costly case for dirty-page
 * detection), then small transactions that store 8 bytes and commit, in
 * three patterns: "hot" (the same word every time: a one-page commit),
 * "random" (a random page every time) and "empty" (a transaction that
 * writes nothing), durable and MMS_NOSYNC, with each dirty-page backend.
 * COMMIT_COST_QUICK=1 in the environment: MMS_NOSYNC and the scan only.
 * Prints medians: whole commit, detect, journal, sync, apply (microseconds).
 *
 * MMS_KEEP_PAGES=0 in the environment makes commits drop every private
 * page (the alternative this benchmark was written to decide against).
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static void check(int r, const char *what)
{
    if (r) {
        fprintf(stderr, "commit_cost: %s: %s (%s)\n", what, mms_strerror(r), mms_errdetail());
        exit(1);
    }
}

static uint64_t rng = 88172645463325252u;
static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void run(const char *dir, uint64_t size, unsigned flags, unsigned backend, int random)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        exit(1);
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | flags;
    o.dirty = backend;
    mms_store *s;
    check(mms_open(dir, &o, &s), "open");
    mms_ref obj;
    check(mms_txn_begin(s, 0), "begin");
    check(mms_alloc(s, size, &obj), "alloc");
    memset(mms_deref(s, obj), 1, size);
    check(mms_root_set(s, obj), "root");
    check(mms_txn_commit(s), "commit");
    volatile unsigned char sink = 0;
    const unsigned char *p = mms_deref(s, obj);
    for (uint64_t i = 0; i < size; i += 4096)
        sink += p[i];
    (void)sink;

    int n = (flags & MMS_NOSYNC) ? 2000 : 300, warm = 20;
    double *tot = malloc(sizeof(double) * (size_t)n), *det = malloc(sizeof(double) * (size_t)n),
           *jr = malloc(sizeof(double) * (size_t)n), *sy = malloc(sizeof(double) * (size_t)n),
           *ap = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < warm + n; i++) {
        uint64_t off = random == 1 ? (xorshift() % (size / 8)) * 8 : 64;
        double t = now_us();
        check(mms_txn_begin(s, 0), "begin");
        if (random != 2)
            *(uint64_t *)(void *)((char *)mms_deref(s, obj) + off) = (uint64_t)i;
        check(mms_txn_commit(s), "commit");
        double d = now_us() - t;
        if (i < warm)
            continue;
        mms_info in;
        check(mms_info_get(s, &in), "info");
        if (random == 2) /* an empty commit leaves the last stats: take its detect only */
            in.last_commit.detect_ns = in.last_commit.journal_ns = in.last_commit.sync_ns =
                in.last_commit.apply_ns = 0;
        int k = i - warm;
        tot[k] = d;
        det[k] = in.last_commit.detect_ns / 1e3;
        jr[k] = in.last_commit.journal_ns / 1e3;
        sy[k] = in.last_commit.sync_ns / 1e3;
        ap[k] = in.last_commit.apply_ns / 1e3;
    }
    mms_info in;
    check(mms_info_get(s, &in), "info");
    printf("%7llu MB  %-7s  %-7s  %-6s  %9.1f  %9.1f  %9.1f  %9.1f  %9.1f\n",
           (unsigned long long)(size >> 20), (flags & MMS_NOSYNC) ? "nosync" : "durable",
           in.dirty_backend == MMS_DIRTY_SCAN ? "scan" : "pagemap", random == 2 ? "empty" : random ? "random" : "hot",
           median(tot, n), median(det, n), median(jr, n), median(sy, n), median(ap, n));
    fflush(stdout);
    free(tot);
    free(det);
    free(jr);
    free(sy);
    free(ap);
    check(mms_close(s), "close");
    if (system(cmd) != 0)
        exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: commit_cost DIR [SIZE_MB ...]\n");
        return 2;
    }
    static const uint64_t defaults[] = {1, 100, 1024};
    int nsizes = argc > 2 ? argc - 2 : 3;
    const char *keep = getenv("MMS_KEEP_PAGES");
    printf("# small commit (8 bytes) vs store size; medians in microseconds; MMS_KEEP_PAGES=%s\n",
           keep ? keep : "default");
    printf("%10s  %-7s  %-7s  %-6s  %9s  %9s  %9s  %9s  %9s\n", "size", "mode", "backend",
           "pages", "commit", "detect", "journal", "sync", "apply");
    int quick = getenv("COMMIT_COST_QUICK") != NULL;
    for (int i = 0; i < nsizes; i++) {
        uint64_t mb = argc > 2 ? strtoull(argv[2 + i], NULL, 10) : defaults[i];
        for (int mode = quick; mode < 2; mode++)
            for (unsigned b = MMS_DIRTY_SCAN; b <= (quick ? MMS_DIRTY_SCAN : MMS_DIRTY_PAGEMAP); b++)
                for (int random = 0; random < 3; random++)
                    run(argv[1], mb << 20, mode ? MMS_NOSYNC : 0, b, random);
    }
    return 0;
}

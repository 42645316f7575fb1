/*
 * ipc -- what sharing a store between processes costs.
 *
 *     ipc DIR
 *
 * 1. Read transaction begin + end, in a loop (one process; then with a
 *    second process committing as fast as it can meanwhile).
 * 2. Commit to visible: a producer commits; a consumer blocked in
 *    mms_wait() wakes and reads the new value. Measured from just before
 *    mms_txn_commit() (and from its return) to the consumer's read.
 * 3. Long readers: a reader holds read transactions of H ms back to back;
 *    a writer commits every few ms and measures how long mms_txn_commit()
 *    takes (it must not wait), how stale a new reader's view is and how much
 *    memory the commits waiting to be applied hold.
 *
 * Uses only the public API. Times are CLOCK_MONOTONIC, which all processes
 * share.
 */
#define _GNU_SOURCE
#include <mmstore.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void check(int r, const char *what)
{
    if (r) {
        fprintf(stderr, "ipc: %s: %s (%s)\n", what, mms_strerror(r), mms_errdetail());
        exit(1);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, int p)
{
    qsort(v, n, sizeof *v, cmp_u64);
    return v[n * (size_t)p / 100 >= n ? n - 1 : n * (size_t)p / 100] / 1e3;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec t = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&t, NULL);
}

struct shared {
    volatile uint64_t stop;
    volatile uint64_t before[4096], after[4096]; /* per commit: before commit, after */
    volatile uint64_t seen[4096];                /* consumer's read time per txn */
};

static mms_store *open_store(const char *dir, unsigned flags)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    mms_store *s;
    check(mms_open(dir, &o, &s), "open");
    return s;
}

/* A writer that bumps a counter until told to stop. */
static void writer_loop(const char *dir, struct shared *sh, uint64_t pause_ns)
{
    mms_store *w = open_store(dir, MMS_NOSYNC);
    mms_ref r = mms_root(w);
    while (!sh->stop) {
        check(mms_txn_begin(w, 0), "begin");
        (*MMS_AT(w, uint64_t, r))++;
        check(mms_txn_commit(w), "commit");
        if (pause_ns)
            sleep_ns(pause_ns);
    }
    mms_close(w);
    _exit(0);
}

static void bench_read_txn(const char *dir, struct shared *sh)
{
    mms_store *s = open_store(dir, MMS_RDONLY);
    mms_ref r = mms_root(s);
    enum { N = 2000000 };
    for (int with_writer = 0; with_writer < 2; with_writer++) {
        pid_t pid = 0;
        sh->stop = 0;
        if (with_writer && (pid = fork()) == 0)
            writer_loop(dir, sh, 0);
        uint64_t sum = 0, t0 = now_ns();
        for (int i = 0; i < N; i++) {
            check(mms_read_begin(s), "read begin");
            sum += *MMS_AT(s, uint64_t, r);
            mms_read_end(s);
        }
        uint64_t t1 = now_ns();
        sh->stop = 1;
        if (pid)
            waitpid(pid, NULL, 0);
        printf("read txn begin+end (+ one load): %.1f ns %s (%llu)\n", (double)(t1 - t0) / N,
               with_writer ? "with a process committing meanwhile" : "alone",
               (unsigned long long)(sum & 1));
    }
    mms_close(s);
}

static void bench_visible(const char *dir, struct shared *sh, unsigned flags)
{
    enum { N = 2000 };
    memset((void *)sh, 0, sizeof *sh);
    pid_t pid = fork();
    if (pid == 0) {
        mms_store *c = open_store(dir, MMS_RDONLY);
        mms_ref r = mms_root(c);
        uint64_t txn = mms_txn_id(c), base = *MMS_AT(c, uint64_t, r);
        for (;;) {
            check(mms_wait(c, txn, 5000, &txn), "wait");
            check(mms_read_begin(c), "read begin");
            uint64_t v = *MMS_AT(c, uint64_t, r) - base;
            uint64_t t = now_ns();
            mms_read_end(c);
            if (v >= 1 && v <= N && !sh->seen[v - 1])
                sh->seen[v - 1] = t;
            if (v >= N)
                break;
        }
        mms_close(c);
        _exit(0);
    }
    mms_store *w = open_store(dir, flags);
    mms_ref r = mms_root(w);
    sleep_ns(50000000);
    for (int i = 0; i < N; i++) {
        check(mms_txn_begin(w, 0), "begin");
        (*MMS_AT(w, uint64_t, r))++;
        sh->before[i] = now_ns();
        check(mms_txn_commit(w), "commit");
        sh->after[i] = now_ns();
        /* Let the consumer see each one: wait for it (bounded). */
        for (int k = 0; k < 20000 && !sh->seen[i]; k++)
            sleep_ns(1000);
    }
    waitpid(pid, NULL, 0);
    mms_close(w);
    uint64_t a[N];
    size_t n = 0, early = 0;
    for (int i = 0; i < N; i++)
        if (sh->seen[i]) {
            a[n++] = sh->seen[i] - sh->before[i];
            early += sh->seen[i] <= sh->after[i];
        }
    printf("commit to visible in another process (%s, %zu commits): from the commit call "
           "median %.1f us, p99 %.1f us; seen before mms_txn_commit returned: %.0f%%\n",
           (flags & MMS_NOSYNC) ? "NOSYNC" : "durable", n, pct(a, n, 50), pct(a, n, 99),
           n ? 100.0 * (double)early / (double)n : 0.0);
}

/* Readers holding read transactions of H ms back to back while a writer
 * commits every 3-7 ms: the commit's latency (it must not wait for them),
 * how stale a new reader's view is (commits wait to be applied until the
 * readers inside have left), and the memory the waiting commits hold. */
static void bench_long_reader(const char *dir, struct shared *sh)
{
    static const uint64_t holds_ms[] = {0, 1, 10, 100, 1000};
    double base = 0;
    for (size_t h = 0; h < sizeof holds_ms / sizeof holds_ms[0]; h++) {
        sh->stop = 0;
        pid_t pid = fork();
        if (pid == 0) {
            mms_store *rd = open_store(dir, MMS_RDONLY);
            while (!sh->stop) {
                check(mms_read_begin(rd), "read begin");
                if (holds_ms[h])
                    sleep_ns(holds_ms[h] * 1000000u);
                mms_read_end(rd);
            }
            mms_close(rd);
            _exit(0);
        }
        mms_store *w = open_store(dir, MMS_NOSYNC);
        mms_store *fresh = open_store(dir, MMS_RDONLY);
        mms_ref r = mms_root(w);
        sleep_ns(20000000);
        enum { N = 400 };
        uint64_t d[N], stale[N], at[N + 1], txn0 = mms_txn_id(w), backlog = 0;
        at[0] = now_ns();
        for (int i = 0; i < N; i++) {
            check(mms_txn_begin(w, 0), "begin");
            (*MMS_AT(w, uint64_t, r))++;
            uint64_t t = now_ns();
            check(mms_txn_commit(w), "commit");
            at[i + 1] = now_ns();
            d[i] = at[i + 1] - t;
            mms_info in;
            check(mms_info_get(w, &in), "info");
            if (in.backlog_bytes > backlog)
                backlog = in.backlog_bytes;
            /* A new read transaction: how old is the state it sees? */
            check(mms_read_begin(fresh), "read begin");
            uint64_t seen = mms_txn_id(fresh) - txn0;
            mms_read_end(fresh);
            stale[i] = seen >= (uint64_t)i + 1 ? 0 : now_ns() - at[seen + 1];
            sleep_ns(3000000 + (uint64_t)(i * 7919 % 5) * 1000000); /* land anywhere in a hold */
        }
        sh->stop = 1;
        waitpid(pid, NULL, 0);
        mms_close(fresh);
        mms_close(w);
        double med = pct(d, N, 50);
        if (h == 0)
            base = med;
        printf("reader holding read transactions of %4llu ms: NOSYNC commit median %.1f us "
               "(%.2fx no reader), p90 %.1f us, max %.1f us; a new reader's view is behind by "
               "median %.1f ms, max %.1f ms; backlog at most %.1f KiB\n",
               (unsigned long long)holds_ms[h], med, med / base, pct(d, N, 90), pct(d, N, 100),
               pct(stale, N, 50) / 1e3, pct(stale, N, 100) / 1e3, (double)backlog / 1024);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ipc DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    mms_store *s = open_store(dir, MMS_CREATE);
    mms_ref r;
    check(mms_txn_begin(s, 0), "begin");
    check(mms_zalloc(s, 64, &r), "alloc");
    check(mms_root_set(s, r), "root");
    check(mms_txn_commit(s), "commit");
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    bench_read_txn(dir, sh);
    bench_visible(dir, sh, MMS_NOSYNC);
    bench_visible(dir, sh, 0);
    bench_long_reader(dir, sh);
    mms_close(s);
    if (system(cmd) != 0)
        return 1;
    return 0;
}

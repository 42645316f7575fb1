/*
 * test.h -- assertion macros and helpers shared by the test programs.
 *
 * ASSERT_EQ and friends print both values (libuv's habit). Each test program
 * runs its cases in order and exits non-zero at the first failure.
 */
#ifndef MMS_TEST_H
#define MMS_TEST_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mmstore.h>

#define FAILF(...)                                                             \
    do {                                                                       \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                        \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n  detail: %s\n", mms_errdetail());                  \
        abort();                                                               \
    } while (0)

#define ASSERT(c)                                                              \
    do {                                                                       \
        if (!(c))                                                              \
            FAILF("assertion failed: %s", #c);                                 \
    } while (0)

#define ASSERT_OP(a, op, b)                                                    \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (!(a_ op b_))                                                       \
            FAILF("%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_);              \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_OP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_OP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_OP(a, <=, b)
#define ASSERT_GE(a, b) ASSERT_OP(a, >=, b)

/* An mms call that must succeed: prints the code's name and message. */
#define OK(call)                                                               \
    do {                                                                       \
        int r_ = (call);                                                       \
        if (r_ != 0)                                                           \
            FAILF("%s failed: %d %s", #call, r_, mms_strerror(r_));            \
    } while (0)
/* An mms call that must fail with a given code. */
#define FAILS(call, code)                                                      \
    do {                                                                       \
        int r_ = (call);                                                       \
        if (r_ != (code))                                                      \
            FAILF("%s returned %d (%s), expected %d (%s)", #call, r_,           \
                  mms_strerror(r_), (int)(code), mms_strerror(code));          \
    } while (0)

#define TEST(name) static void name(void)
#define RUN(name)                                                              \
    do {                                                                       \
        fprintf(stderr, "-- %s\n", #name);                                     \
        name();                                                                \
    } while (0)

/* A fresh empty directory path for a store: $MMS_TEST_TMP/<name>.<pid>.mms */
static inline const char *tpath(const char *name)
{
    static char buf[8][512];
    static int k;
    const char *base = getenv("MMS_TEST_TMP");
    if (!base)
        base = "/tmp/mms-test";
    mkdir(base, 0777);
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s.%d.mms", base, name, (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0)
        FAILF("cannot clear %s", p);
    return p;
}

static inline void rmrf(const char *p)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0)
        FAILF("cannot remove %s", p);
}

static inline mms_store *open_flags(const char *path, unsigned flags)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    mms_store *s = NULL;
    OK(mms_open(path, &o, &s));
    return s;
}

static inline void verify_ok(mms_store *s)
{
    char msg[512];
    int r = mms_verify(s, msg, sizeof msg);
    if (r)
        FAILF("mms_verify: %s (%s)", mms_strerror(r), msg);
}

/* Run the mms tool: returns its exit status; output goes to out (may be NULL). */
static inline int run_tool(const char *args, char *out, size_t cap)
{
    const char *tool = getenv("MMS_TOOL");
    if (!tool)
        FAILF("MMS_TOOL is not set (run under ctest)");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", tool, args);
    FILE *f = popen(cmd, "r");
    if (!f)
        FAILF("popen %s", cmd);
    size_t n = 0;
    if (out && cap) {
        n = fread(out, 1, cap - 1, f);
        out[n] = 0;
    } else {
        char sink[4096];
        while (fread(sink, 1, sizeof sink, f) > 0)
            ;
    }
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Deterministic PRNG (splitmix64). */
static inline uint64_t rnd_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A randomized test's seed and soak factor: MMS_SEED, or fallback (0: one
 * from the clock and the pid), and MMS_SOAK (10 when it is not a positive
 * number; 1 without it). Printed, with extra, so that a run can be repeated. */
static inline uint64_t test_seed(const char *prog, uint64_t fallback, unsigned *soak,
                                 const char *extra)
{
    const char *e = getenv("MMS_SOAK");
    *soak = 1;
    if (e && *e)
        *soak = atoi(e) > 0 ? (unsigned)atoi(e) : 10;
    e = getenv("MMS_SEED");
    uint64_t seed = e && *e ? strtoull(e, NULL, 0)
                    : fallback ? fallback
                               : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    fprintf(stderr, "%s: seed %llu (rerun with MMS_SEED=%llu), soak x%u%s\n", prog,
            (unsigned long long)seed, (unsigned long long)seed, *soak, extra);
    return seed;
}

static inline double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

#endif

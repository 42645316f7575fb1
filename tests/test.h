/*
 * test.h -- assertion macros and helpers shared by the test programs, and
 * the harness for child processes that are this program exec'd again.
 *
 * ASSERT_EQ and friends print both values (libuv's habit). Each test program
 * runs its cases in order and exits non-zero at the first failure.
 */
#ifndef MMS_TEST_H
#define MMS_TEST_H

#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mmstore.h>

/* SANITIZED: this is the ASan + UBSan build. Tests that repeat one path
 * many times (random kills, races, power cuts) run fewer rounds there: that
 * build looks for memory errors on the same paths, and the release build runs
 * every round. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

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
/* Runs one case, unless MMS_TEST_SKIP names it (names separated by spaces
 * or commas): for a machine that cannot hold what a case needs, such as
 * tests/pkey_qemu.sh's guest with its 600 MB of tmpfs. Prints the case's
 * wall time when it ends: where make test's time goes. */
#define RUN(name)                                                              \
    do {                                                                       \
        if (test_skipped(#name)) {                                             \
            fprintf(stderr, "-- %s: skipped (MMS_TEST_SKIP/ONLY)\n", #name);        \
            break;                                                             \
        }                                                                      \
        fprintf(stderr, "-- %s\n", #name);                                     \
        double t0_ = now_us();                                                 \
        name();                                                                \
        fprintf(stderr, "-- %s: %.1f s\n", #name, (now_us() - t0_) / 1e6);     \
    } while (0)

static inline bool test_listed(const char *e, const char *name)
{
    size_t n = strlen(name);
    for (const char *q = e; q && (q = strstr(q, name)) != NULL; q += n) {
        bool starts = q == e || q[-1] == ' ' || q[-1] == ',';
        bool ends = q[n] == '\0' || q[n] == ' ' || q[n] == ',';
        if (starts && ends)
            return true;
    }
    return false;
}

/* MMS_TEST_SKIP lists cases to skip; MMS_TEST_ONLY, if set, the only ones
 * to run (both separated by spaces or commas). */
static inline bool test_skipped(const char *name)
{
    const char *only = getenv("MMS_TEST_ONLY");
    if (only && *only && !test_listed(only, name))
        return true;
    return test_listed(getenv("MMS_TEST_SKIP"), name);
}

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
    if (snprintf(cmd, sizeof cmd, "rm -rf '%s'", p) >= (int)sizeof cmd)
        FAILF("the path is too long to remove: %s", p);
    if (system(cmd) != 0)
        FAILF("cannot remove %s", p);
}

/* ------------------------------------------------------------------------
 * Stores on tmpfs, for tests that are not about the disk.
 *
 * A test whose point is what the library makes of the bytes it finds
 * (recovery from a killed child, a torn or corrupt image) learns the same
 * from a store on tmpfs, where its fdatasyncs cost nothing: on the disk they
 * were much of such a test's time, spent waiting (test_crash: 142 s on the
 * disk, 71 s on tmpfs; test_corrupt, release build: 38 s, 25 s). What a
 * sync reaches is
 * test_power's; test_crash's placement case checks that the library finds
 * the same dirty pages and writes the same journal on tmpfs as on the disk.
 *
 * shm_tpath(name) is tpath() in this run's own directory on tmpfs:
 * MMS_TEST_SHM (kept), else /dev/shm/mms-PROG.PID when /dev/shm has 1 GiB
 * free (removed by shm_cleanup(), at the end and on an abort: it is
 * memory), else the disk (tpath()).
 * ------------------------------------------------------------------------ */
static char shm_base[256]; /* "": not chosen yet */
static bool shm_own;       /* shm_base is this run's, in /dev/shm */
static pid_t shm_owner;    /* the process that made it: only it removes it */

/* Chooses the directory (once; false: the disk). A program whose cases run
 * in forked children calls it first, so that the parent owns the directory
 * and removes it, whichever child failed. */
static inline bool shm_choose(void)
{
    static bool chosen, on_tmpfs;
    if (chosen)
        return on_tmpfs;
    chosen = true;
    const char *e = getenv("MMS_TEST_SHM");
    struct statvfs v;
    if (e && *e) {
        snprintf(shm_base, sizeof shm_base, "%s", e);
    } else if (statvfs("/dev/shm", &v) == 0 &&
               (uint64_t)v.f_bavail * v.f_frsize >= (UINT64_C(1) << 30)) {
        snprintf(shm_base, sizeof shm_base, "/dev/shm/mms-%s.%d",
                 program_invocation_short_name, (int)getpid());
        shm_own = true;
        shm_owner = getpid();
    } else {
        return false;
    }
    if (mkdir(shm_base, 0777) != 0 && errno != EEXIST)
        FAILF("cannot make %s: %s", shm_base, strerror(errno));
    on_tmpfs = true;
    return true;
}

static inline const char *shm_tpath(const char *name)
{
    if (!shm_choose())
        return tpath(name);
    static char buf[4][512];
    static unsigned k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s.%d.mms", shm_base, name, (int)getpid());
    rmrf(p);
    return p;
}

/* Removes this run's own tmpfs directory, if this process made it: a
 * forked child (which inherits shm_on_abort) that fails leaves it to its
 * parent, which goes on using it. Async-signal-safe (getpid, fork, execv,
 * waitpid): a SIGABRT handler calls it. */
static inline void shm_cleanup(void)
{
    if (!shm_own || getpid() != shm_owner)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {"rm", "-rf", shm_base, NULL};
        execv("/bin/rm", argv);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

/* A SIGABRT handler: in the process that made the tmpfs directory, the
 * directory goes (not in a forked child that inherited the handler), then
 * the handler it replaced runs, if shm_catch_abort() kept one (such as
 * table_world.c's, which prints the context), then the abort goes on. */
static void (*shm_next_abort)(int);
static inline void shm_on_abort(int sig)
{
    shm_cleanup();
    if (shm_next_abort)
        shm_next_abort(sig);
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
}

/* Installs shm_on_abort, after the SIGABRT handler already installed. */
static inline void shm_catch_abort(void)
{
    void (*prev)(int) = signal(SIGABRT, shm_on_abort);
    if (prev != SIG_DFL && prev != SIG_IGN && prev != SIG_ERR && prev != shm_on_abort)
        shm_next_abort = prev;
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
    if (snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", tool, args) >= (int)sizeof cmd)
        FAILF("run_tool: the command is longer than %zu bytes: %s", sizeof cmd, args);
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

/* Write text to path (made, or emptied first). */
static inline void file_put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        FAILF("cannot write %s: %s", path, strerror(errno));
}

/* A whole file, NUL-terminated and malloc'd. */
static inline char *file_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        FAILF("cannot read %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        FAILF("cannot read %s", path);
    b[n] = 0;
    fclose(f);
    return b;
}

/* Bytes on disk of dir/name (its blocks), and its size into *size (may be
 * NULL). */
static inline uint64_t file_disk(const char *dir, const char *name, uint64_t *size)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    if (stat(p, &st) < 0)
        FAILF("stat %s", p);
    if (size)
        *size = (uint64_t)st.st_size;
    return (uint64_t)st.st_blocks * 512;
}

/* Bytes on disk of the region files of the store at dir. */
static inline uint64_t regions_disk(const char *dir)
{
    DIR *d = opendir(dir);
    ASSERT(d != NULL);
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "region-", 7) == 0)
            sum += file_disk(dir, e->d_name, NULL);
    closedir(d);
    return sum;
}

/* Run `mms ARGS` (fmt, ap) with stdout and stderr apart, through files in
 * dir: returns its exit status (128 + signal if it died); *out and *err get
 * what it wrote (malloc'd; what they held is freed). */
static inline int run_tool_split(const char *dir, char **out, char **err, const char *fmt,
                                 va_list ap)
{
    const char *t = getenv("MMS_TOOL");
    if (!t)
        FAILF("MMS_TOOL is not set (run under ctest)");
    char args[2000], cmd[4000], o[600], e[600];
    vsnprintf(args, sizeof args, fmt, ap);
    snprintf(o, sizeof o, "%s/out", dir);
    snprintf(e, sizeof e, "%s/err", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s' </dev/null", t, args, o, e);
    int st = system(cmd);
    if (st == -1)
        FAILF("system %s", cmd);
    free(*out);
    free(*err);
    *out = file_text(o);
    *err = file_text(e);
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

static inline void sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------------
 * Child processes: this program, exec'd again.
 *
 * A child that must start from a fresh process image is this program run
 * again through /proc/self/exe with the arguments "--child FD ARGS...".
 * Fresh, because the library reads MMS_CRASH (its crash points) and
 * MMS_DIRTY once per process image: a forked child would inherit the state
 * the parent's own opens and commits already initialised, and ignore a
 * variable set after fork(). The child gets the parent's environment with
 * the variables the parent names set or unset between fork() and exec().
 *
 * It reports through a page the parent made before spawning: a MAP_SHARED
 * memfd (FD), which survives exec. The parent polls it with GET(); the
 * child writes it with PUB() and INC(). A child dies with its parent
 * (PR_SET_PDEATHSIG), so that a failed test leaves no process holding
 * ctest's output pipe. A child ends with _exit() (or returns from main()).
 *
 *   main(), first:  if ((a = child_enter(argc, argv, 2, "ROLE PATH"))) {
 *                       sh = child_page(sizeof *sh); ...run role a[0] on a[1]...; _exit(0); }
 *   parent:         sh = child_page(sizeof *sh);   (once, before the first spawn)
 *                   pid = child_spawn((const char *[]){"role", arg, NULL},
 *                                     (const char *[]){"MMS_CRASH", crash_or_NULL, NULL});
 *                   AWAIT(GET(sh->opened), pid, 60, "...");  if (!child_end(pid, 60, &st)) ...
 * ------------------------------------------------------------------------ */
#define PUB(lv, v) __atomic_store_n(&(lv), (__typeof__(lv))(v), __ATOMIC_SEQ_CST)
#define GET(lv) __atomic_load_n(&(lv), __ATOMIC_SEQ_CST)
#define INC(lv) __atomic_add_fetch(&(lv), 1, __ATOMIC_SEQ_CST)

struct child_harness {
    int fd;     /* the memfd: made by the parent, inherited by a child; -1: none */
    void *page; /* its mapping in this process */
    size_t size;
};

static inline struct child_harness *child_harness(void)
{
    static struct child_harness h = {-1, NULL, 0};
    return &h;
}

/* The page the parent and its children share, size bytes: made (zeroed) at
 * the first call in the parent, the inherited one in a child. Every call
 * of a process returns the same mapping. */
static inline void *child_page(size_t size)
{
    struct child_harness *h = child_harness();
    if (h->page) {
        ASSERT_EQ(size, h->size);
        return h->page;
    }
    if (h->fd < 0) {
        h->fd = memfd_create(program_invocation_short_name, 0);
        ASSERT(h->fd >= 0);
        ASSERT_EQ(ftruncate(h->fd, (off_t)size), 0);
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
    ASSERT(p != MAP_FAILED);
    h->page = p;
    h->size = size;
    return p;
}

/* In main(), before anything else: is this process a child? Then returns
 * the nargs arguments its parent gave (FAILF with usage, their names, if
 * there are not nargs), and child_page() maps the parent's page. Otherwise
 * NULL. */
static inline char **child_enter(int argc, char **argv, int nargs, const char *usage)
{
    if (argc < 3 || strcmp(argv[1], "--child") != 0)
        return NULL;
    if (argc - 3 != nargs)
        FAILF("usage: %s --child FD %s", argv[0], usage);
    child_harness()->fd = atoi(argv[2]);
    return argv + 3;
}

/* A pid whose process is gone: a child that exited, reaped (for the
 * leftovers of killed runs, NAME.mms-...-PID, that only a dead PID's may
 * be removed). */
static inline pid_t dead_pid(void)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        _exit(0);
    ASSERT_EQ(waitpid(pid, NULL, 0), pid);
    return pid;
}

/* In a child (of child_spawn() or a plain fork()): SIGKILL when the parent
 * dies; if it died already, exit at once. */
static inline void die_with_parent(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(99);
}

/* Start a child: this program with "--child FD" and args (NULL-terminated).
 * env: pairs NAME, value (NULL: unset NAME), ended by a NULL name; may be
 * NULL. Returns the child's pid. */
static inline pid_t child_spawn(const char *const *args, const char *const *env)
{
    char fd[24], *argv[40];
    int n = 0;
    snprintf(fd, sizeof fd, "%d", child_harness()->fd);
    argv[n++] = program_invocation_short_name;
    argv[n++] = "--child";
    argv[n++] = fd;
    for (; args && *args; args++) {
        ASSERT_LT(n, 39);
        argv[n++] = (char *)*args;
    }
    argv[n] = NULL;
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        die_with_parent(parent);
        for (; env && env[0]; env += 2) {
            if (env[1])
                setenv(env[0], env[1], 1);
            else
                unsetenv(env[0]);
        }
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    return pid;
}

/* A wait status in words: "exit 0", "signal 9". */
static inline const char *child_status(int st)
{
    static char buf[64];
    if (WIFEXITED(st))
        snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, sizeof buf, "signal %d", WTERMSIG(st));
    else
        snprintf(buf, sizeof buf, "status 0x%x", st);
    return buf;
}

/* Wait at most secs for child pid to end: 1, with its wait status in *st.
 * 0 if it still runs then (it hangs): it is killed and reaped, and the
 * caller says where it hung. */
static inline int child_end(pid_t pid, double secs, int *st)
{
    for (double t0 = now_us();;) {
        pid_t w = waitpid(pid, st, WNOHANG);
        if (w == pid)
            return 1;
        if (w < 0 && errno != EINTR)
            FAILF("waitpid %d: %s", (int)pid, strerror(errno));
        if (now_us() - t0 > secs * 1e6) {
            kill(pid, SIGKILL);
            waitpid(pid, st, 0);
            return 0;
        }
        sleep_us(200);
    }
}

/* Wait at most secs for cond, while child pid (if > 0) lives; FAILF with
 * the message that follows if it does not come. */
#define AWAIT(cond, pid, secs, ...)                                                        \
    do {                                                                                   \
        double t0_ = now_us();                                                             \
        while (!(cond)) {                                                                  \
            int st_;                                                                       \
            if ((pid) > 0 && waitpid((pid), &st_, WNOHANG) == (pid))                       \
                FAILF("child %d ended (%s) while waiting for %s", (int)(pid),              \
                      child_status(st_), #cond);                                           \
            if (now_us() - t0_ > (secs) * 1e6)                                             \
                FAILF(__VA_ARGS__);                                                        \
            sleep_us(100);                                                                 \
        }                                                                                  \
    } while (0)

#endif

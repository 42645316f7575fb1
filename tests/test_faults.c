/*
 * test_faults.c -- injected I/O failures and a real full disk.
 *
 * Every case checks one contract (DESIGN §3; mmstore.h on mms_txn_commit):
 * the failing call returns the injected -errno (or MMS_EPOISONED), nothing
 * crashes, and a reopen shows exactly the last committed state -- or, when
 * the failure came after the commit point (journal fdatasync or later), the
 * old or the new state and never a mix -- and mms_verify() passes. A full
 * disk is -ENOSPC, never SIGBUS.
 *
 * States are checked against a model: every object's bytes derive from a
 * tag kept in the root, and the model says which tags, objects and txn id
 * each committed state has, so a page of one state next to a page of
 * another shows up as a content mismatch.
 *
 * Whether an armed fault fired is checked, not assumed. A run that shows an
 * error fired it. After a run with no visible error the op is called
 * directly (probe()) until the injected error appears -- then the library
 * made fewer than nth calls -- or nth probes pass without it -- then the
 * library made the nth call and swallowed the error. The sweeps stop at the
 * first n the scenario does not reach, so "calls" below is the number of
 * calls of that op the scenario makes.
 *
 * Cases:
 *   1. sweeps: each op, n = 1, 2, ... over a scenario -- open with recovery
 *      (the fixture's writer was killed between a commit's journal sync and
 *      its apply); a txn that rewrites objects and grows region 0 past
 *      4 MiB; a growing txn that is aborted; a small txn; verify;
 *      checkpoint; close -- also with MMS_NOSYNC, with the pagemap backend,
 *      with a second txn that journals 5 MiB (journal growth, group
 *      flushes, checkpoint inside the commit), for store creation, and
 *      with two faults at once (pseudo-random pairs). After an error before
 *      the commit point the same handle must show the last committed state,
 *      verify, and commit a txn that grows the heap again;
 *   2. ENOSPC/ENOMEM while growing the heap inside a transaction (commit
 *      the rest, abort, retry, smaller retry of the grow step, realloc);
 *   3. a real full file system in a child with its own mount namespace:
 *      tmpfs, and ext4 loop images (1 KiB and 4 KiB blocks) if mkfs.ext4
 *      and loop devices work; region_tail_not_page_aligned reproduces what
 *      ext4 leaves after a failed growth without needing either;
 *   4. poisoning by a failed journal sync, also the background syncer's
 *      (MMS_NOSYNC: reported by the next commit, or by close);
 *   5. failures in mms_close()'s checkpoint; ftruncate failures.
 *
 * FAULTS_ONLY=<case> runs one case (debugging).
 */
#include "test.h"

#include "internal.h"

#include <dirent.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

/* ------------------------------------------------------------------------
 * The data: a root with small objects, one huge object, extras, chunks.
 * ------------------------------------------------------------------------ */
#define NSMALL 40
#define NEXTRA 24
#define NCHUNK 64
#define EXTRA_SIZE 3000
#define BIG_SIZE (((size_t)5 << 20) + 4040) /* a huge allocation: region 0 grows 4 -> 12 MiB */
#define CHUNK_SIZE ((size_t)1 << 20)
#define ROOT_MAGIC UINT64_C(0x544f4f5253544c46)
#define MIB ((uint64_t)1 << 20)

struct root {
    uint64_t magic, gen;
    uint64_t tag[NSMALL];
    mms_ref small[NSMALL];
    mms_ref big;
    uint64_t big_len, big_seed;
    uint64_t nextra, extra_seed;
    mms_ref extra[NEXTRA];
    uint64_t nchunk;
    mms_ref chunk[NCHUNK];
    uint64_t chunk_seed[NCHUNK];
};

enum { M_ABSENT, M_EMPTY, M_DATA };
struct model {
    int kind; /* M_ABSENT: no store; M_EMPTY: a new store, no root */
    uint64_t gen, txn;
    uint64_t tag[NSMALL];
    int has_big;
    uint64_t big_seed;
    uint64_t nextra, extra_seed;
    uint64_t nchunk;
    uint64_t chunk_seed[NCHUNK];
};

static size_t small_size(unsigned i)
{
    return 8 + (size_t)i * 83; /* 8 .. 3245: small classes and one-page large ones */
}
static uint64_t small_seed(uint64_t tag, unsigned i)
{
    return tag * 1000 + i + 1;
}
static uint64_t extra_seed(uint64_t seed, unsigned j)
{
    return seed * 1000 + j + 500;
}

static void fill(void *p, size_t len, uint64_t seed)
{
    uint64_t *w = p;
    size_t n = len / 8;
    uint64_t x = seed * UINT64_C(0x9e3779b97f4a7c15);
    for (size_t k = 0; k < n; k++)
        w[k] = x + k;
    for (size_t k = n * 8; k < len; k++)
        ((unsigned char *)p)[k] = (unsigned char)(seed + k);
}

/* Offset of the first wrong byte, or -1. */
static long check_fill(const void *p, size_t len, uint64_t seed)
{
    const uint64_t *w = p;
    size_t n = len / 8;
    uint64_t x = seed * UINT64_C(0x9e3779b97f4a7c15);
    for (size_t k = 0; k < n; k++)
        if (w[k] != x + k)
            return (long)(k * 8);
    for (size_t k = n * 8; k < len; k++)
        if (((const unsigned char *)p)[k] != (unsigned char)(seed + k))
            return (long)k;
    return -1;
}

/* What a failure was doing: printed when the test aborts. */
static char g_ctx[512];

static void check_obj(mms_store *s, mms_ref r, size_t len, uint64_t seed, const char *what,
                      unsigned i)
{
    const char *p = mms_ptr(s, r);
    if (!p)
        FAILF("%s %u: ref 0x%llx is not in the heap", what, i, (unsigned long long)r);
    size_t usable;
    int rs = mms_alloc_size(s, r, &usable);
    if (rs != MMS_EPOISONED) { /* a poisoned handle still reads */
        OK(rs);
        ASSERT_GE(usable, len);
    }
    long bad = check_fill(p, len, seed);
    if (bad >= 0)
        FAILF("%s %u (ref 0x%llx): byte %ld differs from its committed content (a mix of "
              "states?)", what, i, (unsigned long long)r, bad);
}

/* Check that s holds one of the allowed states, exactly; return it. */
static const struct model *check_state(mms_store *s, const struct model *const *allowed, int n)
{
    mms_ref rr = mms_root(s);
    const struct root *root = NULL;
    if (rr) {
        root = mms_ptr(s, rr);
        if (!root)
            FAILF("the root ref 0x%llx is outside the heap", (unsigned long long)rr);
    }
    const struct model *m = NULL;
    for (int i = 0; i < n; i++) {
        if (rr && allowed[i]->kind == M_DATA && allowed[i]->gen == root->gen)
            m = allowed[i];
        if (!rr && allowed[i]->kind == M_EMPTY)
            m = allowed[i];
    }
    if (!m) {
        char list[256] = "";
        for (int i = 0; i < n; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), " %s%llu",
                     allowed[i]->kind == M_DATA ? "gen " : "kind ",
                     (unsigned long long)(allowed[i]->kind == M_DATA ? allowed[i]->gen
                                                                     : (uint64_t)allowed[i]->kind));
        FAILF("the store is at %s%llu (txn %llu), expected one of:%s", rr ? "gen " : "no root ",
              (unsigned long long)(rr ? root->gen : 0), (unsigned long long)mms_txn_id(s), list);
    }
    ASSERT_EQ(mms_txn_id(s), m->txn);
    mms_info info;
    OK(mms_info_get(s, &info));
    if (m->kind == M_EMPTY) {
        ASSERT_EQ(info.heap_objects, 0);
        return m;
    }
    ASSERT_EQ(root->magic, ROOT_MAGIC);
    for (unsigned i = 0; i < NSMALL; i++) {
        ASSERT_EQ(root->tag[i], m->tag[i]);
        check_obj(s, root->small[i], small_size(i), small_seed(m->tag[i], i), "small", i);
    }
    if (m->has_big) {
        ASSERT_EQ(root->big_len, BIG_SIZE);
        ASSERT_EQ(root->big_seed, m->big_seed);
        check_obj(s, root->big, BIG_SIZE, m->big_seed, "big", 0);
    } else {
        ASSERT_EQ(root->big, MMS_REF_NULL);
    }
    ASSERT_EQ(root->nextra, m->nextra);
    for (unsigned j = 0; j < m->nextra; j++)
        check_obj(s, root->extra[j], EXTRA_SIZE, extra_seed(m->extra_seed, j), "extra", j);
    ASSERT_EQ(root->nchunk, m->nchunk);
    for (unsigned k = 0; k < m->nchunk; k++) {
        ASSERT_EQ(root->chunk_seed[k], m->chunk_seed[k]);
        check_obj(s, root->chunk[k], CHUNK_SIZE, m->chunk_seed[k], "chunk", k);
    }
    ASSERT_EQ(info.heap_objects, 1 + NSMALL + (uint64_t)m->has_big + m->nextra + m->nchunk);
    return m;
}

static void check_exact(mms_store *s, const struct model *m)
{
    check_state(s, &m, 1);
}

/* ------------------------------------------------------------------------
 * Transactions. Each writes the store and builds the model of the state it
 * commits; prev is the state it starts from. On error the caller decides
 * (abort, or commit what the model says was done).
 * ------------------------------------------------------------------------ */
static struct root *root_of(mms_store *s)
{
    struct root *r = mms_ptr(s, mms_root(s));
    if (!r)
        FAILF("the store has no root");
    return r;
}

static int txn_init(mms_store *s, const struct model *prev, struct model *m)
{
    memset(m, 0, sizeof *m);
    m->kind = M_DATA;
    m->gen = 1;
    m->txn = prev->txn + 1;
    mms_ref rr;
    int r = mms_zalloc(s, sizeof(struct root), &rr);
    if (r)
        return r;
    struct root *root = mms_deref(s, rr);
    root->magic = ROOT_MAGIC;
    root->gen = 1;
    for (unsigned i = 0; i < NSMALL; i++) {
        r = mms_alloc(s, small_size(i), &root->small[i]);
        if (r)
            return r;
        root->tag[i] = m->tag[i] = 1;
        fill(mms_deref(s, root->small[i]), small_size(i), small_seed(1, i));
    }
    return mms_root_set(s, rr);
}

static int txn_small(mms_store *s, const struct model *prev, struct model *m, uint64_t gen)
{
    *m = *prev;
    m->gen = gen;
    m->txn = prev->txn + 1;
    struct root *root = root_of(s);
    root->gen = gen;
    root->tag[0] = m->tag[0] = gen;
    fill(mms_deref(s, root->small[0]), small_size(0), small_seed(gen, 0));
    return 0;
}

/* Rewrite every small object, allocate the big one (region 0 grows past
 * 4 MiB: fresh space, fallocate, mmap) and the extras. With keep_going, a
 * failed allocation is skipped and the first error returned. */
static int txn_big(mms_store *s, const struct model *prev, struct model *m, uint64_t gen,
                   bool keep_going)
{
    ASSERT(!prev->has_big && prev->nextra == 0);
    *m = *prev;
    m->gen = gen;
    m->txn = prev->txn + 1;
    struct root *root = root_of(s);
    root->gen = gen;
    for (unsigned i = 0; i < NSMALL; i++) {
        root->tag[i] = m->tag[i] = gen;
        fill(mms_deref(s, root->small[i]), small_size(i), small_seed(gen, i));
    }
    int first = 0;
    mms_ref b;
    int r = mms_alloc(s, BIG_SIZE, &b);
    if (r) {
        if (!keep_going)
            return r;
        first = r;
    } else {
        fill(mms_deref(s, b), BIG_SIZE, gen);
        root->big = b;
        root->big_len = BIG_SIZE;
        root->big_seed = m->big_seed = gen;
        m->has_big = 1;
    }
    root->extra_seed = m->extra_seed = gen;
    for (unsigned j = 0; j < NEXTRA; j++) {
        mms_ref e;
        r = mms_alloc(s, EXTRA_SIZE, &e);
        if (r) {
            if (!keep_going)
                return r;
            if (!first)
                first = r;
            break;
        }
        fill(mms_deref(s, e), EXTRA_SIZE, extra_seed(gen, j));
        root->extra[j] = e;
        root->nextra = m->nextra = j + 1;
    }
    return first;
}

/* Rewrite the whole big object: 5 MiB of journal. */
static int txn_heavy(mms_store *s, const struct model *prev, struct model *m, uint64_t gen)
{
    ASSERT(prev->has_big);
    *m = *prev;
    m->gen = gen;
    m->txn = prev->txn + 1;
    struct root *root = root_of(s);
    root->gen = gen;
    root->big_seed = m->big_seed = gen;
    fill(mms_deref(s, root->big), BIG_SIZE, gen);
    return 0;
}

/* Rewrite the first `rewrite` chunks, then add `add` new ones; stops at the
 * first failed allocation (the model has what was done). */
static int txn_chunks(mms_store *s, const struct model *prev, struct model *m, uint64_t gen,
                      unsigned rewrite, unsigned add)
{
    *m = *prev;
    m->gen = gen;
    m->txn = prev->txn + 1;
    struct root *root = root_of(s);
    root->gen = gen;
    for (unsigned k = 0; k < rewrite && k < m->nchunk; k++) {
        uint64_t seed = gen * 100 + k;
        root->chunk_seed[k] = m->chunk_seed[k] = seed;
        fill(mms_deref(s, root->chunk[k]), CHUNK_SIZE, seed);
    }
    for (unsigned a = 0; a < add; a++) {
        ASSERT_LT(m->nchunk, NCHUNK);
        mms_ref c;
        int r = mms_alloc(s, CHUNK_SIZE, &c);
        if (r)
            return r;
        uint64_t k = m->nchunk, seed = gen * 100 + k;
        fill(mms_deref(s, c), CHUNK_SIZE, seed);
        root->chunk[k] = c;
        root->chunk_seed[k] = m->chunk_seed[k] = seed;
        root->nchunk = m->nchunk = k + 1;
    }
    return 0;
}

/* The transaction that shows a handle still works: init an empty store,
 * else a small change. */
static int txn_next(mms_store *s, const struct model *prev, struct model *m)
{
    if (prev->kind == M_EMPTY)
        return txn_init(s, prev, m);
    return txn_small(s, prev, m, prev->gen + 100);
}

/* ------------------------------------------------------------------------
 * Files and options
 * ------------------------------------------------------------------------ */
static void rm_store(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return;
        FAILF("opendir %s: %s", dir, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) < 0)
            FAILF("unlink %s/%s: %s", dir, e->d_name, strerror(errno));
    }
    closedir(d);
    if (rmdir(dir) < 0)
        FAILF("rmdir %s: %s", dir, strerror(errno));
}

static void copy_store(const char *src, const char *dst)
{
    static char buf[1 << 20];
    rm_store(dst);
    if (mkdir(dst, 0777) < 0)
        FAILF("mkdir %s: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    if (!d)
        FAILF("opendir %s: %s", src, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int in = openat(dirfd(d), e->d_name, O_RDONLY);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dst, e->d_name);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (in < 0 || out < 0)
            FAILF("copy %s/%s: %s", src, e->d_name, strerror(errno));
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                FAILF("write %s: %s", path, strerror(errno));
        if (n < 0)
            FAILF("read %s/%s: %s", src, e->d_name, strerror(errno));
        close(in);
        close(out);
    }
    closedir(d);
}

static mms_options opts(unsigned flags, uint64_t grow_step, uint64_t checkpoint_bytes)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = flags | MMS_GUARD_MPROTECT; /* mprotect at every begin/commit/abort */
    o.grow_step = grow_step;
    o.checkpoint_bytes = checkpoint_bytes;
    return o;
}

static mms_store *xopen(const char *path, const mms_options *o)
{
    mms_store *s = NULL;
    int r = mms_open(path, o, &s);
    if (r)
        FAILF("mms_open %s: %d %s", path, r, mms_strerror(r));
    return s;
}

static const char *op_name(enum mms__op op)
{
    static const char *const names[MMS__OP_COUNT] = {
        "open", "pread", "pwrite", "fsync", "fallocate", "mmap", "msync", "mprotect",
        "ftruncate", "mkdir"};
    return names[op];
}

static const char *errno_name(int e)
{
    switch (e) {
    case ENOSPC: return "ENOSPC";
    case EIO: return "EIO";
    case ENOMEM: return "ENOMEM";
    default: return "E?";
    }
}

/* ------------------------------------------------------------------------
 * Did the armed fault fire? (see the top of the file)
 * ------------------------------------------------------------------------ */
static int g_scratch_fd = -1;
static char g_scratch_dir[512];

static int probe(enum mms__op op)
{
    char buf[16] = {0};
    switch (op) {
    case MMS__OP_OPEN: {
        int fd = mms__os_open("/dev/null", O_RDONLY, 0);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        return fd;
    }
    case MMS__OP_PREAD: return mms__os_pread(g_scratch_fd, buf, sizeof buf, 0);
    case MMS__OP_PWRITE: return mms__os_pwrite(g_scratch_fd, buf, sizeof buf, 0);
    case MMS__OP_FSYNC: return mms__os_fdatasync(g_scratch_fd);
    case MMS__OP_FALLOCATE: return mms__os_fallocate(g_scratch_fd, 0, 4096);
    case MMS__OP_MMAP: {
        char *p;
        int r = mms__os_reserve(4096, &p);
        if (!r)
            munmap(p, 4096);
        return r;
    }
    case MMS__OP_MSYNC: return mms__os_msync(NULL, 0);
    case MMS__OP_MPROTECT: return mms__os_protect(NULL, 0, true);
    case MMS__OP_FTRUNCATE: return mms__os_ftruncate(g_scratch_fd, 4096);
    case MMS__OP_MKDIR: return mms__os_mkdir(g_scratch_dir); /* exists: -EEXIST */
    default: FAILF("probe: op %d", (int)op);
    }
    return 0;
}

/* 1 if the armed fault (op, nth, err) was consumed by the library. */
static int fault_consumed(enum mms__op op, unsigned long nth, int err)
{
    for (unsigned long k = 0; k < nth; k++)
        if (probe(op) == -err)
            return 0;
    return 1;
}

static void scratch_init(void)
{
    const char *d = shm_tpath("faults-scratch");
    snprintf(g_scratch_dir, sizeof g_scratch_dir, "%s", d);
    if (mkdir(g_scratch_dir, 0777) < 0)
        FAILF("mkdir %s: %s", g_scratch_dir, strerror(errno));
    char f[600];
    snprintf(f, sizeof f, "%s/scratch", g_scratch_dir);
    g_scratch_fd = open(f, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (g_scratch_fd < 0 || ftruncate(g_scratch_fd, 4096) < 0)
        FAILF("scratch file %s: %s", f, strerror(errno));
}

/* ------------------------------------------------------------------------
 * Fixture: a store whose journal holds two commits a crashed writer never
 * checkpointed, so every open runs recovery (replay, sync, journal reset).
 * ------------------------------------------------------------------------ */
static char g_tmpl[512], g_work[512];
static struct model g_absent, g_empty, g_fix;

static void fixture_init(void)
{
    snprintf(g_tmpl, sizeof g_tmpl, "%s", shm_tpath("faults-tmpl"));
    snprintf(g_work, sizeof g_work, "%s", shm_tpath("faults-work"));
    g_absent.kind = M_ABSENT;
    g_empty.kind = M_EMPTY;
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        /* Killed after the second commit's journal sync, before its
         * apply: recovery has real work to do. */
        setenv("MMS_CRASH", "commit.journal_synced:2", 1);
        mms_options o = opts(MMS_CREATE, 0, 0);
        mms_store *s = xopen(g_tmpl, &o);
        struct model m1, m2;
        OK(mms_txn_begin(s, 0));
        OK(txn_init(s, &g_empty, &m1));
        OK(mms_txn_commit(s));
        OK(mms_txn_begin(s, 0));
        OK(txn_small(s, &m1, &m2, 2));
        OK(mms_txn_commit(s));
        _exit(3); /* not reached */
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        FAILF("the fixture writer was not killed at its crash point (status 0x%x)", st);
    /* The same two transactions, as a model. */
    memset(&g_fix, 0, sizeof g_fix);
    g_fix.kind = M_DATA;
    g_fix.gen = 2;
    g_fix.txn = 2;
    for (unsigned i = 0; i < NSMALL; i++)
        g_fix.tag[i] = 1;
    g_fix.tag[0] = 2;
    mms_options o = opts(0, 0, 0);
    copy_store(g_tmpl, g_work);
    mms_store *s = xopen(g_work, &o);
    check_exact(s, &g_fix);
    verify_ok(s);
    OK(mms_close(s));
}

/* ------------------------------------------------------------------------
 * Reopen without faults: one of the allowed states, a sound store, and
 * still writable (one more commit, exact after another reopen).
 * ------------------------------------------------------------------------ */
static const struct model *reopen_check(const char *path, const mms_options *o,
                                        const struct model *const *allowed, int n)
{
    mms_options oc = *o;
    oc.flags &= ~(unsigned)(MMS_CREATE | MMS_EXCL);
    mms_store *s = NULL;
    const struct model *got = NULL;
    int r = mms_open(path, &oc, &s);
    const struct model *cur;
    if (r == MMS_ENOTSTORE || r == -ENOENT) {
        for (int i = 0; i < n; i++)
            if (allowed[i]->kind == M_ABSENT)
                got = allowed[i];
        if (!got)
            FAILF("reopen found no store (%s) but one was committed", mms_strerror(r));
        oc.flags |= MMS_CREATE; /* what creation left behind must not stop it */
        s = xopen(path, &oc);
        oc.flags &= ~(unsigned)MMS_CREATE;
        cur = check_state(s, (const struct model *[]){&g_empty}, 1);
    } else {
        if (r)
            FAILF("reopen without faults: %d %s", r, mms_strerror(r));
        got = cur = check_state(s, allowed, n);
    }
    verify_ok(s);
    struct model m;
    OK(mms_txn_begin(s, 0));
    OK(txn_next(s, cur, &m));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    s = xopen(path, &oc);
    check_exact(s, &m);
    verify_ok(s);
    OK(mms_close(s));
    return got;
}

/* Every call on a poisoned handle reports it. */
static void expect_poisoned(mms_store *s)
{
    mms_ref x = MMS_REF_NULL, root = mms_root(s);
    FAILS(mms_txn_begin(s, 0), MMS_EPOISONED);
    FAILS(mms_txn_commit(s), MMS_EPOISONED);
    FAILS(mms_alloc(s, 16, &x), MMS_EPOISONED);
    FAILS(mms_zalloc(s, 16, &x), MMS_EPOISONED);
    FAILS(mms_free(s, root), MMS_EPOISONED);
    FAILS(mms_realloc(s, &root, 64), MMS_EPOISONED);
    FAILS(mms_root_set(s, MMS_REF_NULL), MMS_EPOISONED);
    FAILS(mms_checkpoint(s), MMS_EPOISONED);
    FAILS(mms_verify(s, NULL, 0), MMS_EPOISONED);
    int r = mms_txn_abort(s); /* no transaction is left to abort */
    if (r != MMS_EPOISONED && r != MMS_ENOTXN)
        FAILF("mms_txn_abort on a poisoned handle: %d %s", r, mms_strerror(r));
    mms_info info;
    OK(mms_info_get(s, &info)); /* inspection still works */
}

/* ------------------------------------------------------------------------
 * Case 1: the sweeps
 * ------------------------------------------------------------------------ */
enum variant { V_MAIN, V_HEAVY, V_CREATE };
enum step { S_OPEN, S_BEGIN1, S_BODY1, S_COMMIT1, S_BEGINA, S_BODYA, S_ABORT, S_BEGIN2,
            S_BODY2, S_COMMIT2, S_VERIFY, S_CKPT, S_CLOSE, S_COUNT };
static const char *const step_name[S_COUNT] = {
    "open", "begin", "txn1 body", "commit1", "beginA", "txnA body", "abortA", "begin2",
    "txn2 body", "commit2", "verify", "checkpoint", "close"};

enum result { R_CLEAN, R_SWALLOWED, R_ERROR };

struct sweep_stats {
    unsigned long calls;
    unsigned runs, errors, poisoned, swallowed, old_state, new_state;
    unsigned at_step[S_COUNT];
};

/* A second fault armed with the first (pairs); nth2 == 0: none. */
static enum mms__op g_op2;
static unsigned long g_nth2;
static int g_err2;

/* Scribble over committed objects, allocate, grow the heap again, then
 * abort: none of it may survive. */
static int txn_scribble(mms_store *s)
{
    struct root *root = root_of(s);
    root->gen = 999999;
    for (unsigned i = 0; i < NSMALL; i += 3) {
        root->tag[i] = 999999;
        fill(mms_deref(s, root->small[i]), small_size(i), 424242);
    }
    mms_ref x;
    for (int k = 0; k < 3; k++) {
        int r = mms_alloc(s, 100 + 1000 * (size_t)k, &x);
        if (r)
            return r;
        memset(mms_deref(s, x), 0xee, 100);
    }
    int r = mms_alloc(s, BIG_SIZE, &x);
    if (r)
        return r;
    memset(mms_deref(s, x), 0xdd, 3 * MMS__PAGE);
    root->big = x;
    return 0;
}

/* In a handle that survived an error: commit a transaction that grows the
 * heap again if the state has no big object, else a small one. */
static int txn_retry(mms_store *s, const struct model *prev, struct model *m)
{
    if (prev->kind == M_DATA && !prev->has_big && prev->nextra == 0)
        return txn_big(s, prev, m, prev->gen + 100, false);
    return txn_next(s, prev, m);
}

static enum result run_scenario(enum variant v, const mms_options *o, enum mms__op op,
                                unsigned long nth, int err, struct sweep_stats *st)
{
    struct model m1, m2, mr;
    const struct model *committed, *pending = NULL;
    const struct model *allowed[3];
    int nallowed = 0;
    mms_options oo = *o;
    if (v == V_CREATE) {
        rm_store(g_work);
        committed = &g_absent;
        oo.flags |= MMS_CREATE;
    } else {
        copy_store(g_tmpl, g_work);
        committed = &g_fix;
    }
    st->runs++;
    mms_store *s = NULL;
    enum step step = S_OPEN;
    char msg[256];

    mms__fault_arm(op, nth, err);
    if (g_nth2)
        mms__fault_arm(g_op2, g_nth2, g_err2);
    int r = mms_open(g_work, &oo, &s);
    if (r)
        goto failed;
    if (v == V_CREATE)
        committed = &g_empty;
    step = S_BEGIN1;
    if ((r = mms_txn_begin(s, 0)) != 0)
        goto failed;
    step = S_BODY1;
    r = v == V_CREATE ? txn_init(s, committed, &m1) : txn_big(s, committed, &m1, 3, false);
    if (r)
        goto failed;
    step = S_COMMIT1;
    pending = &m1;
    if ((r = mms_txn_commit(s)) != 0)
        goto failed;
    committed = &m1;
    pending = NULL;
    if (v != V_CREATE) {
        step = S_BEGINA;
        if ((r = mms_txn_begin(s, 0)) != 0)
            goto failed;
        step = S_BODYA;
        if ((r = txn_scribble(s)) != 0)
            goto failed;
        step = S_ABORT;
        if ((r = mms_txn_abort(s)) != 0)
            goto failed;
        check_exact(s, committed);
        step = S_BEGIN2;
        if ((r = mms_txn_begin(s, 0)) != 0)
            goto failed;
        step = S_BODY2;
        r = v == V_HEAVY ? txn_heavy(s, committed, &m2, 4) : txn_small(s, committed, &m2, 4);
        if (r)
            goto failed;
        step = S_COMMIT2;
        pending = &m2;
        if ((r = mms_txn_commit(s)) != 0)
            goto failed;
        committed = &m2;
        pending = NULL;
    }
    step = S_VERIFY;
    if ((r = mms_verify(s, msg, sizeof msg)) != 0)
        goto failed;
    if (v != V_CREATE) {
        step = S_CKPT;
        if ((r = mms_checkpoint(s)) != 0)
            goto failed;
    }
    step = S_CLOSE;
    r = mms_close(s);
    s = NULL;
    if (r)
        goto failed;

    /* No error showed: was the fault reached at all? (Not asked for pairs.) */
    enum result res = R_CLEAN;
    if (!g_nth2 && fault_consumed(op, nth, err))
        res = R_SWALLOWED;
    mms__fault_reset();
    if (res == R_SWALLOWED)
        st->swallowed++;
    allowed[nallowed++] = committed;
    reopen_check(g_work, o, allowed, nallowed);
    return res;

failed:
    mms__fault_reset();
    if (r != -err && r != MMS_EPOISONED && !(g_nth2 && r == -g_err2))
        FAILF("%s returned %d (%s); expected the injected -%s or MMS_EPOISONED",
              step_name[step], r, mms_strerror(r), errno_name(err));
    st->errors++;
    st->at_step[step]++;
    if (step == S_OPEN) {
        ASSERT(s == NULL);
        allowed[nallowed++] = committed;
        if (v == V_CREATE)
            allowed[nallowed++] = &g_empty; /* created, then failed later in open */
    } else if (step == S_CLOSE) {
        allowed[nallowed++] = committed; /* the handle is gone; nothing was pending */
    } else {
        if (step == S_BODY1 || step == S_BODY2 || step == S_BODYA) {
            /* A failed allocation leaves the transaction open. */
            OK(mms_txn_abort(s));
        }
        int p = mms_txn_begin(s, 0);
        /* A failed journal sync is final (journal.c, mms__jsync): every
         * later sync of the store fails until it is opened anew. */
        bool sticky = s->L && __atomic_load_n(&s->L->sync_failed, __ATOMIC_ACQUIRE);
        if (p == MMS_EPOISONED) {
            st->poisoned++;
            expect_poisoned(s);
            int rc = mms_close(s);
            if (rc != 0 && rc != MMS_EPOISONED)
                FAILF("mms_close of a poisoned handle: %d %s", rc, mms_strerror(rc));
            allowed[nallowed++] = committed;
            if (pending)
                allowed[nallowed++] = pending;
        } else if (sticky) {
            if (p == 0)
                OK(mms_txn_abort(s));
            else if (p != -err)
                FAILF("begin after a failed journal sync: %d %s", p, mms_strerror(p));
            ASSERT_EQ(mms_verify(s, NULL, 0), -err); /* no sync counts now */
            int rc = mms_close(s);
            if (rc != 0 && rc != -err && rc != MMS_EPOISONED)
                FAILF("mms_close after a failed journal sync: %d %s", rc, mms_strerror(rc));
            allowed[nallowed++] = committed;
            if (pending)
                allowed[nallowed++] = pending;
        } else {
            /* An error before the commit point: the handle is usable, shows
             * the last committed state, and commits again. */
            if (p)
                FAILF("begin after a failed %s: %d %s", step_name[step], p, mms_strerror(p));
            check_exact(s, committed);
            OK(mms_txn_abort(s));
            verify_ok(s);
            OK(mms_txn_begin(s, 0));
            OK(txn_retry(s, committed, &mr));
            OK(mms_txn_commit(s));
            check_exact(s, &mr);
            committed = &mr;
            OK(mms_close(s));
            allowed[nallowed++] = committed;
        }
    }
    const struct model *got = reopen_check(g_work, o, allowed, nallowed);
    if (pending && nallowed == 2)
        got == pending ? st->new_state++ : st->old_state++;
    return R_ERROR;
}

/* Arm op at n = 1, 2, ... (after 8, every `stride`) until the scenario no
 * longer reaches the nth call; with a stride, the calls between the last
 * one reached and that n are then tried one by one, so the last calls (a
 * commit's final steps) are always covered and `calls` is exact. */
static bool sweep_one(const char *label, enum variant v, const mms_options *o,
                      enum mms__op op, int err, unsigned long n, struct sweep_stats *st)
{
    snprintf(g_ctx, sizeof g_ctx, "[%s: %s fails at call %lu with -%s]\n", label, op_name(op),
             n, errno_name(err));
    if (run_scenario(v, o, op, n, err, st) == R_CLEAN)
        return false;
    st->calls = n;
    return true;
}

static void sweep(const char *label, enum variant v, const mms_options *o, enum mms__op op,
                  int err, unsigned long stride, struct sweep_stats *st)
{
    double t0 = now_us();
    memset(st, 0, sizeof *st);
    unsigned long n;
    for (n = 1; sweep_one(label, v, o, op, err, n, st); n += (n < 8 ? 1 : stride))
        if (n > 5000)
            FAILF("the sweep does not end");
    for (unsigned long m = st->calls + 1; m < n; m++)
        if (!sweep_one(label, v, o, op, err, m, st))
            break;
    g_ctx[0] = 0;
    char steps[300] = "";
    for (int i = 0; i < S_COUNT; i++)
        if (st->at_step[i])
            snprintf(steps + strlen(steps), sizeof steps - strlen(steps), " %s:%u",
                     step_name[i], st->at_step[i]);
    fprintf(stderr,
            "   %-6s %-9s -%-6s calls %3lu%s| errors %3u (poisoned %2u: then old %u new %u) "
            "swallowed %u |%s | %.0f ms\n",
            label, op_name(op), errno_name(err), st->calls, stride > 1 ? "+" : " ", st->errors,
            st->poisoned, st->old_state, st->new_state, st->swallowed, steps,
            (now_us() - t0) / 1000);
}

struct plan {
    enum mms__op op;
    int err;
};

static unsigned long g_calls[MMS__OP_COUNT];
static int g_errno[MMS__OP_COUNT];

TEST(sweep_scenario)
{
    static const struct plan plan[] = {
        {MMS__OP_OPEN, ENOMEM},     {MMS__OP_PREAD, EIO},       {MMS__OP_PWRITE, ENOSPC},
        {MMS__OP_PWRITE, EIO},      {MMS__OP_FSYNC, EIO},       {MMS__OP_FSYNC, ENOSPC},
        {MMS__OP_FALLOCATE, ENOSPC}, {MMS__OP_FALLOCATE, EIO},  {MMS__OP_MMAP, ENOMEM},
        {MMS__OP_MSYNC, EIO},       {MMS__OP_MSYNC, ENOMEM},    {MMS__OP_MPROTECT, ENOMEM},
        {MMS__OP_FTRUNCATE, EIO},   {MMS__OP_MKDIR, ENOSPC}};
    /* grow_step 1 MiB: growth asks for what it needs, no smaller retry. */
    mms_options o = opts(0, MIB, 0);
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        struct sweep_stats st;
        sweep("main", V_MAIN, &o, plan[i].op, plan[i].err, 1, &st);
        g_calls[plan[i].op] = st.calls;
        g_errno[plan[i].op] = plan[i].err;
        if (plan[i].op == MMS__OP_MKDIR) {
            ASSERT_EQ(st.calls, 0); /* not used by this scenario */
            continue;
        }
        if (plan[i].op == MMS__OP_FTRUNCATE) {
            /* Giving back what the aborted txn grew, at the checkpoint: best
             * effort, so a failure is swallowed, the store unharmed. */
            ASSERT_LT(0, st.calls);
            ASSERT_EQ(st.errors, 0);
            ASSERT_EQ(st.swallowed, st.calls);
            continue;
        }
        if (st.calls == 0 || st.errors == 0)
            FAILF("%s: the scenario makes %lu calls and %u injected failures showed",
                  op_name(plan[i].op), st.calls, st.errors);
    }
    /* The pagemap backend reads /proc/self/pagemap at every commit. */
    mms_options op = o;
    op.dirty = MMS_DIRTY_PAGEMAP;
    struct sweep_stats st;
    sweep("pgmap", V_MAIN, &op, MMS__OP_PREAD, EIO, 1, &st);
    ASSERT_LT(0, st.errors);
}

/* MMS_NOSYNC: no msync, no journal sync; the commit point is the journal
 * write. */
TEST(sweep_nosync)
{
    static const struct plan plan[] = {
        {MMS__OP_PWRITE, ENOSPC}, {MMS__OP_FSYNC, EIO}, {MMS__OP_MMAP, ENOMEM},
        {MMS__OP_MPROTECT, ENOMEM}, {MMS__OP_FALLOCATE, ENOSPC}};
    mms_options o = opts(MMS_NOSYNC, MIB, 0);
    /* The background syncer never fires (apply.c S2): the sweep counts the
     * scenario's own calls, not a thread's that runs when it will.
     * poison_background_sync injects into the syncer. */
    o.sync_ms = 600000;
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        struct sweep_stats st;
        sweep("nosync", V_MAIN, &o, plan[i].op, plan[i].err, 1, &st);
        if (st.calls == 0 || st.errors == 0)
            FAILF("%s: the scenario makes %lu calls and %u injected failures showed",
                  op_name(plan[i].op), st.calls, st.errors);
    }
}

/* Two faults at once, so that the cleanup of one failure meets another
 * (a failed commit whose abort cannot re-arm the guard, a failed journal
 * extension whose truncation fails, ...). Pseudo-random, fixed seed; the
 * pagemap backend makes the abort path read /proc/self/pagemap too. */
TEST(sweep_pairs)
{
    mms_options o = opts(0, MIB, 0);
    o.dirty = MMS_DIRTY_PAGEMAP;
    uint64_t seed = 12345;
    struct sweep_stats st;
    memset(&st, 0, sizeof st);
    enum mms__op ops[MMS__OP_COUNT];
    int nops = 0;
    for (int i = 0; i < MMS__OP_COUNT; i++)
        if (g_calls[i])
            ops[nops++] = (enum mms__op)i;
    ASSERT_LE(4, nops);
    double t0 = now_us();
    const int runs = 60;
    for (int k = 0; k < runs; k++) {
        int ia = (int)(rnd_next(&seed) % (uint64_t)nops);
        int ib = (ia + 1 + (int)(rnd_next(&seed) % (uint64_t)(nops - 1))) % nops;
        enum mms__op a = ops[ia], b = ops[ib];
        /* pagemap makes more preads than the scan backend; go a bit past */
        unsigned long na = 1 + rnd_next(&seed) % (g_calls[a] + 2);
        g_op2 = b;
        g_nth2 = 1 + rnd_next(&seed) % (g_calls[b] + 2);
        g_err2 = g_errno[b];
        snprintf(g_ctx, sizeof g_ctx, "[pairs: %s fails at call %lu with -%s, %s at %lu with -%s]\n",
                 op_name(a), na, errno_name(g_errno[a]), op_name(b), g_nth2, errno_name(g_err2));
        run_scenario(V_MAIN, &o, a, na, g_errno[a], &st);
    }
    g_nth2 = 0;
    g_ctx[0] = 0;
    char steps[300] = "";
    for (int i = 0; i < S_COUNT; i++)
        if (st.at_step[i])
            snprintf(steps + strlen(steps), sizeof steps - strlen(steps), " %s:%u",
                     step_name[i], st.at_step[i]);
    fprintf(stderr, "   pairs: %u runs, %u with an error (poisoned %u: then old %u new %u) |%s | "
            "%.0f ms\n", st.runs, st.errors, st.poisoned, st.old_state, st.new_state, steps,
            (now_us() - t0) / 1000);
    ASSERT_LT(st.runs / 2, st.errors);
}

/* The second transaction journals 5 MiB: journal growth, group flushes,
 * and (checkpoint_bytes 1 MiB) a checkpoint inside the commit. */
TEST(sweep_heavy)
{
    static const struct plan plan[] = {
        {MMS__OP_PWRITE, ENOSPC}, {MMS__OP_FSYNC, EIO}, {MMS__OP_MMAP, ENOMEM},
        {MMS__OP_MPROTECT, ENOMEM}, {MMS__OP_MSYNC, EIO}, {MMS__OP_FALLOCATE, ENOSPC}};
    mms_options o = opts(0, MIB, MIB);
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        struct sweep_stats st;
        /* pwrite: ~125 calls, the first 53 the recovery's (swept one by one
         * in the main scenario): every 4th after the 8th. */
        sweep("heavy", V_HEAVY, &o, plan[i].op, plan[i].err,
              plan[i].op == MMS__OP_PWRITE ? 4 : 1, &st);
        if (st.calls == 0 || st.errors == 0)
            FAILF("%s: the scenario makes %lu calls and %u injected failures showed",
                  op_name(plan[i].op), st.calls, st.errors);
    }
}

/* Creating a store: mkdir, region 0, the journal, the rename. */
TEST(sweep_create)
{
    static const struct plan plan[] = {
        {MMS__OP_OPEN, ENOMEM},    {MMS__OP_PREAD, EIO},       {MMS__OP_PWRITE, ENOSPC},
        {MMS__OP_FSYNC, EIO},      {MMS__OP_FALLOCATE, ENOSPC}, {MMS__OP_MMAP, ENOMEM},
        {MMS__OP_MSYNC, EIO},      {MMS__OP_MPROTECT, ENOMEM}, {MMS__OP_FTRUNCATE, EIO},
        {MMS__OP_MKDIR, ENOSPC}};
    mms_options o = opts(0, MIB, 0);
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        struct sweep_stats st;
        sweep("create", V_CREATE, &o, plan[i].op, plan[i].err, 1, &st);
        /* (ftruncate: sizing the lock file.) */
        if (st.calls == 0 || st.errors == 0)
            FAILF("%s: the scenario makes %lu calls and %u injected failures showed",
                  op_name(plan[i].op), st.calls, st.errors);
    }
}

/* ------------------------------------------------------------------------
 * Case 2: growth fails inside a transaction
 * ------------------------------------------------------------------------ */
static uint64_t region0_file(mms_store *s)
{
    mms_info info;
    OK(mms_info_get(s, &info));
    return info.region_file[0];
}

TEST(growth_failure_in_txn)
{
    mms_options o = opts(0, MIB, 0);
    struct model m;
    mms_ref b;
    mms_store *s;

    /* a) ENOSPC from fallocate: mms_alloc says so; the transaction goes on
     *    (the extras fit in the heap) and commits what it has. */
    snprintf(g_ctx, sizeof g_ctx, "[growth: ENOSPC, commit the rest]\n");
    copy_store(g_tmpl, g_work);
    s = xopen(g_work, &o);
    OK(mms_txn_begin(s, 0));
    mms__fault_arm(MMS__OP_FALLOCATE, 1, ENOSPC);
    FAILS(txn_big(s, &g_fix, &m, 3, true), -ENOSPC);
    mms__fault_reset();
    ASSERT_EQ(m.has_big, 0);
    ASSERT_EQ(m.nextra, NEXTRA);
    ASSERT(region0_file(s) < 12 * MIB); /* the failed growth (to 12 MiB) left nothing */
    OK(mms_txn_commit(s));
    check_exact(s, &m);
    verify_ok(s);
    OK(mms_close(s));
    const struct model *al[] = {&m};
    reopen_check(g_work, &o, al, 1);

    /* b) ... or aborts: nothing of it remains, and the next transaction
     *    grows the heap. */
    snprintf(g_ctx, sizeof g_ctx, "[growth: ENOSPC, abort]\n");
    copy_store(g_tmpl, g_work);
    s = xopen(g_work, &o);
    OK(mms_txn_begin(s, 0));
    mms__fault_arm(MMS__OP_FALLOCATE, 1, ENOSPC);
    FAILS(txn_big(s, &g_fix, &m, 3, true), -ENOSPC);
    mms__fault_reset();
    OK(mms_txn_abort(s));
    check_exact(s, &g_fix);
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    OK(txn_big(s, &g_fix, &m, 3, false));
    OK(mms_txn_commit(s));
    check_exact(s, &m);
    ASSERT_EQ(region0_file(s), 12 * MIB);
    OK(mms_close(s));
    reopen_check(g_work, &o, al, 1);

    /* c) ... or tries again in the same transaction, and succeeds. */
    snprintf(g_ctx, sizeof g_ctx, "[growth: ENOSPC, retry]\n");
    copy_store(g_tmpl, g_work);
    s = xopen(g_work, &o);
    OK(mms_txn_begin(s, 0));
    mms__fault_arm(MMS__OP_FALLOCATE, 1, ENOSPC);
    FAILS(mms_alloc(s, BIG_SIZE, &b), -ENOSPC);
    mms__fault_reset();
    OK(txn_big(s, &g_fix, &m, 3, false));
    OK(mms_txn_commit(s));
    check_exact(s, &m);
    OK(mms_close(s));
    reopen_check(g_work, &o, al, 1);

    /* d) A large grow step: the whole step does not fit, growth retries
     *    with what it needs. */
    snprintf(g_ctx, sizeof g_ctx, "[growth: step fails, need fits]\n");
    mms_options o64 = opts(0, 64 * MIB, 0);
    copy_store(g_tmpl, g_work);
    s = xopen(g_work, &o64);
    OK(mms_txn_begin(s, 0));
    mms__fault_arm(MMS__OP_FALLOCATE, 1, ENOSPC);
    OK(txn_big(s, &g_fix, &m, 3, false));
    ASSERT(fault_consumed(MMS__OP_FALLOCATE, 1, ENOSPC));
    mms__fault_reset();
    ASSERT_EQ(region0_file(s), 12 * MIB);
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    reopen_check(g_work, &o64, al, 1);

    /* d') mms_realloc that must grow the heap: on -ENOSPC the old block is
     *     unchanged and still valid; without the fault it moves. */
    snprintf(g_ctx, sizeof g_ctx, "[growth: realloc]\n");
    copy_store(g_tmpl, g_work);
    s = xopen(g_work, &o);
    OK(mms_txn_begin(s, 0));
    OK(txn_small(s, &g_fix, &m, 3));
    mms_ref r5 = root_of(s)->small[5];
    mms__fault_arm(MMS__OP_FALLOCATE, 1, ENOSPC);
    FAILS(mms_realloc(s, &r5, BIG_SIZE), -ENOSPC);
    mms__fault_reset();
    ASSERT_EQ(r5, root_of(s)->small[5]);
    struct model in_txn = m; /* the txn id moves at commit */
    in_txn.txn--;
    check_exact(s, &in_txn);
    OK(mms_realloc(s, &r5, BIG_SIZE));
    ASSERT_NE(r5, root_of(s)->small[5]);
    root_of(s)->small[5] = r5;
    check_exact(s, &in_txn); /* the content moved with it; the old block is free */
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    reopen_check(g_work, &o, al, 1);

    /* e) ENOMEM mapping the new space (1) or the file view (2). */
    for (unsigned long n = 1; n <= 2; n++) {
        snprintf(g_ctx, sizeof g_ctx, "[growth: mmap %lu fails]\n", n);
        copy_store(g_tmpl, g_work);
        s = xopen(g_work, &o);
        OK(mms_txn_begin(s, 0));
        mms__fault_arm(MMS__OP_MMAP, n, ENOMEM);
        FAILS(mms_alloc(s, BIG_SIZE, &b), -ENOMEM);
        mms__fault_reset();
        OK(txn_big(s, &g_fix, &m, 3, false));
        OK(mms_txn_commit(s));
        check_exact(s, &m);
        verify_ok(s);
        OK(mms_close(s));
        reopen_check(g_work, &o, al, 1);
    }
    g_ctx[0] = 0;
}

/* ------------------------------------------------------------------------
 * Case 3: a real full file system, in a child with its own mount namespace
 * ------------------------------------------------------------------------ */
static uint64_t fs_free(const char *dir)
{
    struct statvfs v;
    if (statvfs(dir, &v) < 0)
        return 0;
    return (uint64_t)v.f_bavail * v.f_frsize;
}

/* A file system too small for a store: creation fails cleanly. */
static void create_too_small(const char *dir, const char *fs)
{
    char path[600];
    snprintf(path, sizeof path, "%s/small.mms", dir);
    mms_options o = opts(MMS_CREATE, MIB, 0);
    for (int attempt = 0; attempt < 2; attempt++) { /* the second one meets the leftovers */
        mms_store *s = NULL;
        FAILS(mms_open(path, &o, &s), -ENOSPC);
        ASSERT(s == NULL);
        /* what the creation made is taken back: the directory too */
        struct stat st;
        ASSERT(stat(path, &st) != 0 && errno == ENOENT);
    }
    mms_options ro = opts(0, MIB, 0);
    mms_store *s = NULL;
    FAILS(mms_open(path, &ro, &s), -ENOENT);
    fprintf(stderr, "   %s: creating a store on %llu free bytes: -ENOSPC, no store left\n", fs,
            (unsigned long long)fs_free(dir) + 0);
}

static void fill_disk(const char *dir, const char *fs, uint64_t grow_step, bool fail_truncate)
{
    char path[600];
    snprintf(path, sizeof path, "%s/full.mms", dir);
    mms_options o = opts(MMS_CREATE, grow_step, 0);
    mms_store *s = xopen(path, &o);
    o.flags &= ~(unsigned)MMS_CREATE;
    struct model cur, m;
    uint64_t gen = 10;
    OK(mms_txn_begin(s, 0));
    OK(txn_init(s, &g_empty, &cur));
    OK(mms_txn_commit(s));

    /* Phase 1: fresh space (chunks of 1 MiB, two per transaction) until the
     * disk is full: mms_alloc (fallocate) or the commit says -ENOSPC. */
    int r = 0;
    unsigned t;
    bool in_txn = false;
    const char *where = "";
    if (fail_truncate) /* whatever cleanup the library tries after a failed growth fails too */
        mms__fault_arm(MMS__OP_FTRUNCATE, 1, EIO);
    for (t = 0; t < NCHUNK / 2; t++) {
        OK(mms_txn_begin(s, 0));
        r = txn_chunks(s, &cur, &m, gen++, 0, 2);
        if (r) {
            in_txn = true;
            where = "mms_alloc";
            break;
        }
        r = mms_txn_commit(s);
        if (r) {
            where = "mms_txn_commit";
            break;
        }
        cur = m;
    }
    mms__fault_reset();
    if (r != -ENOSPC)
        FAILF("%s: filling the disk ended with %d (%s) after %u transactions", fs, r,
              mms_strerror(r), t);
    fprintf(stderr, "   %s: phase 1: -ENOSPC from %s after %u commits (%llu MiB of chunks), "
            "%llu KiB free (%s)\n", fs, where, t, (unsigned long long)cur.nchunk,
            (unsigned long long)fs_free(dir) >> 10, mms_errdetail());
    if (in_txn)
        OK(mms_txn_abort(s));
    {
        char rp[700];
        struct stat rs;
        snprintf(rp, sizeof rp, "%s/region-0-0", path);
        if (stat(rp, &rs) == 0)
            fprintf(stderr, "   %s: region 0 file %lld bytes (%lld past a page), mapped %llu\n", fs,
                    (long long)rs.st_size, (long long)(rs.st_size % 4096),
                    (unsigned long long)region0_file(s));
    }
    check_exact(s, &cur);
    verify_ok(s);

    /* Phase 2: commits that only journal (every chunk rewritten), without
     * checkpoints, until the journal cannot grow: the commit says -ENOSPC
     * and the handle stays usable. */
    for (t = 0; t < 64; t++) {
        OK(mms_txn_begin(s, 0));
        OK(txn_chunks(s, &cur, &m, gen++, (unsigned)cur.nchunk, 0));
        r = mms_txn_commit(s);
        if (r)
            break;
        cur = m;
    }
    if (r != -ENOSPC)
        FAILF("%s: filling the journal ended with %d (%s) after %u commits", fs, r,
              mms_strerror(r), t);
    fprintf(stderr, "   %s: phase 2: -ENOSPC from mms_txn_commit after %u journal-only commits\n",
            fs, t);
    check_exact(s, &cur);
    verify_ok(s);

    /* A smaller transaction still commits (after a checkpoint has emptied
     * the journal, if the journal has no room left). */
    OK(mms_txn_begin(s, 0));
    OK(txn_small(s, &cur, &m, gen++));
    r = mms_txn_commit(s);
    if (r == -ENOSPC) {
        fprintf(stderr, "   %s: a small commit needs a checkpoint first\n", fs);
        OK(mms_checkpoint(s));
        OK(mms_txn_begin(s, 0));
        OK(txn_small(s, &cur, &m, gen++));
        r = mms_txn_commit(s);
    }
    OK(r);
    cur = m;
    check_exact(s, &cur);
    OK(mms_close(s));

    /* The last committed state opens, verifies and takes commits on the
     * full disk. */
    s = xopen(path, &o);
    check_exact(s, &cur);
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    OK(txn_small(s, &cur, &m, gen++));
    OK(mms_txn_commit(s));
    cur = m;
    OK(mms_close(s));
    s = xopen(path, &o);
    check_exact(s, &cur);
    verify_ok(s);
    OK(mms_close(s));
}

/* Run fn in a child with a private mount namespace. Returns its exit
 * status (77 = cannot mount); a child that failed is counted in g_fs_failed
 * so that every file system is tried before the test fails. */
static unsigned g_fs_failed, g_failed;

static int in_namespace(const char *mnt, int (*fn)(const char *mnt))
{
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            _exit(77);
        exit(fn(mnt));
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "   FAILED: the full-disk child died of signal %d (%s)%s\n",
                WTERMSIG(st), strsignal(WTERMSIG(st)),
                WTERMSIG(st) == SIGBUS ? ": a full disk must be -ENOSPC, never SIGBUS" : "");
        g_fs_failed++;
        return -1;
    }
    ASSERT(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 77) {
        fprintf(stderr, "   FAILED: the full-disk child exited with %d\n", WEXITSTATUS(st));
        g_fs_failed++;
    }
    return WEXITSTATUS(st);
}

static int tmpfs_child(const char *mnt)
{
    /* A new store takes 148 KiB (region 0 and the journal 64 KiB each). */
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=96k") < 0)
        return 77;
    snprintf(g_ctx, sizeof g_ctx, "[tmpfs 96k]\n");
    create_too_small(mnt, "tmpfs 96k");
    if (umount(mnt) < 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=16m") < 0)
        FAILF("remount tmpfs: %s", strerror(errno));
    snprintf(g_ctx, sizeof g_ctx, "[tmpfs 16m]\n");
    fill_disk(mnt, "tmpfs 16m", MIB, false);
    umount(mnt);
    return 0;
}

static char g_img[600], g_mkfs_opts[64];
static unsigned g_filler_kib;
static uint64_t g_grow_step;
static bool g_fail_truncate;

static int ext4_child(const char *mnt)
{
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "mount -o loop '%s' '%s' >/dev/null 2>&1", g_img, mnt);
    if (system(cmd) != 0)
        return 77;
    char label[160];
    snprintf(label, sizeof label, "ext4%s +%uK step %lluM%s", g_mkfs_opts, g_filler_kib,
             (unsigned long long)(g_grow_step ? g_grow_step : 64 * MIB) >> 20,
             g_fail_truncate ? " ftruncate fails" : "");
    snprintf(g_ctx, sizeof g_ctx, "[%s]\n", label);
    if (g_filler_kib) {
        /* Shift the free space by a few KiB, so that where the disk runs
         * out is not always a page boundary. */
        char f[600];
        snprintf(f, sizeof f, "%s/filler", mnt);
        int fd = open(f, O_RDWR | O_CREAT, 0666);
        if (fd < 0 || posix_fallocate(fd, 0, (off_t)g_filler_kib << 10) != 0)
            FAILF("filler %s", f);
        close(fd);
    }
    fill_disk(mnt, label, g_grow_step, g_fail_truncate);
    if (umount(mnt) < 0)
        FAILF("umount %s: %s", mnt, strerror(errno));
    return 0;
}

TEST(full_disk)
{
    char mnt[512];
    snprintf(mnt, sizeof mnt, "%s", tpath("fullfs"));
    if (mkdir(mnt, 0777) < 0)
        FAILF("mkdir %s: %s", mnt, strerror(errno));
    if (geteuid() != 0 || in_namespace(mnt, tmpfs_child) == 77)
        fprintf(stderr, "SKIP: cannot mount tmpfs\n");

    /* Optional: a tiny ext4 on a loop device, with 1 KiB blocks (mkfs's
     * default at this size; the free space is shifted by 0-3 KiB so the
     * disk runs out off a page boundary) and with 4 KiB blocks. */
    static const struct {
        const char *mkfs;
        unsigned filler_kib;
        uint64_t grow_step; /* 0: the default, 64 MiB */
        bool fail_truncate;
    } variants[] = {{"", 0, MIB, false},         {"", 1, MIB, false}, {"", 2, MIB, false},
                    {"", 3, MIB, false},         {"", 1, 0, false},   {"", 2, 0, false},
                    {"", 3, MIB, true},          {" -b 4096", 0, MIB, false},
                    {" -b 4096", 0, 0, false}};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        snprintf(g_img, sizeof g_img, "%s.img", mnt);
        snprintf(g_mkfs_opts, sizeof g_mkfs_opts, "%s", variants[i].mkfs);
        g_filler_kib = variants[i].filler_kib;
        g_grow_step = variants[i].grow_step;
        g_fail_truncate = variants[i].fail_truncate;
        int fd = open(g_img, O_RDWR | O_CREAT | O_TRUNC, 0666);
        if (fd < 0 || ftruncate(fd, 24 << 20) < 0)
            FAILF("%s: %s", g_img, strerror(errno));
        close(fd);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "mkfs.ext4 -q -F%s '%s' >/dev/null 2>&1", variants[i].mkfs,
                 g_img);
        bool skip = geteuid() != 0 || system(cmd) != 0 || in_namespace(mnt, ext4_child) == 77;
        unlink(g_img);
        if (skip) {
            fprintf(stderr, "SKIP: cannot mount an ext4%s loop image\n", variants[i].mkfs);
            if (i == 0)
                break; /* no mkfs.ext4 or no loop devices: the others would fail alike */
        }
    }
    rmdir(mnt);
    g_ctx[0] = 0;
    if (g_fs_failed) {
        fprintf(stderr, "   FAILED: %u full-disk runs (see above)\n", g_fs_failed);
        g_failed++;
    }
}

/* What ext4 (1 KiB blocks) leaves after a growth that ran out of space,
 * reproduced without a loop device: the region file extended past its
 * mapping to a 1 KiB boundary (13233152 bytes in the full_disk case). A
 * crash right after such a failed fallocate leaves it too, whatever the
 * library does next. The tail is fresh space: the store must open. */
TEST(region_tail_not_page_aligned)
{
    snprintf(g_ctx, sizeof g_ctx, "[region tail]\n");
    mms_options o = opts(0, MIB, 0);
    copy_store(g_tmpl, g_work);
    mms_store *s = xopen(g_work, &o);
    OK(mms_close(s));
    char rp[700];
    struct stat st;
    snprintf(rp, sizeof rp, "%s/region-0-0", g_work);
    if (stat(rp, &st) < 0 || truncate(rp, st.st_size + 3 * 1024) < 0)
        FAILF("extend %s: %s", rp, strerror(errno));
    int r = mms_open(g_work, &o, &s);
    if (r) {
        fprintf(stderr, "   FAILED: a store whose region file has a %d-byte tail past its last "
                "page does not open: %s (%s)\n", 3 * 1024, mms_strerror(r), mms_errdetail());
        g_failed++;
        g_ctx[0] = 0;
        return;
    }
    check_exact(s, &g_fix);
    verify_ok(s);
    struct model m;
    OK(mms_txn_begin(s, 0));
    OK(txn_big(s, &g_fix, &m, 3, false)); /* grows from the odd size */
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    const struct model *al[] = {&m};
    reopen_check(g_work, &o, al, 1);
    g_ctx[0] = 0;
}

/* ------------------------------------------------------------------------
 * Case 4: a failed journal sync poisons the handle
 * ------------------------------------------------------------------------ */
TEST(poison_journal_sync)
{
    static const int errs[] = {EIO, ENOSPC};
    mms_options o = opts(0, MIB, 0);
    for (size_t e = 0; e < 2; e++)
        for (int grow = 0; grow < 2; grow++) {
            snprintf(g_ctx, sizeof g_ctx, "[poison: -%s, %s txn]\n", errno_name(errs[e]),
                     grow ? "growing" : "small");
            copy_store(g_tmpl, g_work);
            mms_store *s = xopen(g_work, &o);
            struct model m;
            OK(mms_txn_begin(s, 0));
            OK(grow ? txn_big(s, &g_fix, &m, 3, false) : txn_small(s, &g_fix, &m, 3));
            mms__fault_arm(MMS__OP_FSYNC, 1, errs[e]); /* the journal's fdatasync */
            FAILS(mms_txn_commit(s), -errs[e]);
            mms__fault_reset();
            expect_poisoned(s);
            FAILS(mms_txn_begin(s, 0), MMS_EPOISONED); /* still, after all those calls */
            int rc = mms_close(s);
            if (rc != 0 && rc != MMS_EPOISONED)
                FAILF("mms_close of a poisoned handle: %d %s", rc, mms_strerror(rc));
            const struct model *al[] = {&g_fix, &m};
            const struct model *got = reopen_check(g_work, &o, al, 2);
            fprintf(stderr, "   poisoned by -%s at commit (%s txn): close %d, reopen has the %s "
                    "state\n", errno_name(errs[e]), grow ? "growing" : "small", rc,
                    got == &m ? "new" : "old");
        }
    g_ctx[0] = 0;
}

/* MMS_NOSYNC: the background syncer's failed sync (apply.c S4) is not
 * lost. The handle's next call that syncs reports it as its own failed
 * sync would be: the next commit (then poisoned), or mms_close. No commit
 * is lost: the process did not crash, and the syncer retries. */
static void wait_syncer_error(mms_store *s)
{
    /* A functional deadline (sync_ms is 20 ms), not a timing. */
    for (int i = 0; i < 2000 && !__atomic_load_n(&s->syncer_err, __ATOMIC_ACQUIRE); i++)
        usleep(10000);
    ASSERT(__atomic_load_n(&s->syncer_err, __ATOMIC_ACQUIRE) != 0);
}

TEST(poison_background_sync)
{
    static const int errs[] = {EIO, ENOSPC};
    mms_options o = opts(MMS_NOSYNC, MIB, 0);
    o.sync_ms = 20;
    for (size_t e = 0; e < 2; e++)
        for (int by = 0; by < 4; by++) {
            static const char *const who[] = {"the next commit", "close",
                                              "the next commit, an empty one",
                                              "another handle's begin, then the next commit"};
            bool by_close = by == 1;
            snprintf(g_ctx, sizeof g_ctx, "[background sync: -%s, reported by %s]\n",
                     errno_name(errs[e]), who[by]);
            copy_store(g_tmpl, g_work);
            mms_store *s = xopen(g_work, &o);
            struct model m, m2;
            OK(mms_txn_begin(s, 0));
            OK(txn_small(s, &g_fix, &m, 3));
            /* A small NOSYNC commit syncs nothing itself: the first sync
             * after it is the syncer's. */
            mms__fault_arm(MMS__OP_FSYNC, 1, errs[e]);
            OK(mms_txn_commit(s));
            wait_syncer_error(s);
            mms__fault_reset();
            const struct model *al[] = {&m, &m2};
            int nal = 1;
            if (by_close) {
                FAILS(mms_close(s), -errs[e]);
            } else if (by == 3) {
                /* Another handle cannot commit after it: its begin syncs
                 * to see this handle's commit, and a failed journal sync is
                 * final until the store is opened anew (journal.c,
                 * mms__jsync; before, its sync succeeded, as a retry on
                 * Linux can for pages that never reached the disk). Nor
                 * can this handle: the failed begin left the store to
                 * recover, and recovery's sync of the journal fails the
                 * same way (before, it synced again and published the
                 * commits whose sync had failed). */
                mms_store *w2 = xopen(g_work, &o);
                FAILS(mms_txn_begin(w2, 0), -errs[e]);
                int rc = mms_close(w2);
                if (rc != 0 && rc != -errs[e])
                    FAILF("mms_close after a failed journal sync: %d %s", rc, mms_strerror(rc));
                FAILS(mms_txn_begin(s, 0), -errs[e]);
                FAILS(mms_read_begin(s), -errs[e]);
                rc = mms_close(s);
                if (rc != 0 && rc != -errs[e] && rc != MMS_EPOISONED)
                    FAILF("mms_close after a failed journal sync: %d %s", rc, mms_strerror(rc));
            } else if (by == 2) {
                /* Nothing to commit, yet the report poisons as any commit's:
                 * the commits whose sync failed are this handle's. */
                OK(mms_txn_begin(s, 0));
                FAILS(mms_txn_commit(s), -errs[e]);
                expect_poisoned(s);
                int rc = mms_close(s);
                if (rc != 0 && rc != MMS_EPOISONED)
                    FAILF("mms_close of a poisoned handle: %d %s", rc, mms_strerror(rc));
            } else {
                OK(mms_txn_begin(s, 0));
                OK(txn_small(s, &m, &m2, 4));
                FAILS(mms_txn_commit(s), -errs[e]);
                expect_poisoned(s);
                int rc = mms_close(s);
                if (rc != 0 && rc != MMS_EPOISONED)
                    FAILF("mms_close of a poisoned handle: %d %s", rc, mms_strerror(rc));
                nal = 2; /* the second commit was written before its report */
            }
            const struct model *got = reopen_check(g_work, &o, al, nal);
            fprintf(stderr, "   background sync failed -%s, reported by %s; reopen has txn %llu\n",
                    errno_name(errs[e]), who[by],
                    (unsigned long long)got->txn);
        }
    g_ctx[0] = 0;
}

/* ------------------------------------------------------------------------
 * Case 5: mms_close()'s checkpoint fails; ftruncate fails
 * ------------------------------------------------------------------------ */
TEST(close_checkpoint_failure)
{
    static const struct plan plan[] = {
        {MMS__OP_FSYNC, EIO}, {MMS__OP_FSYNC, ENOSPC}, {MMS__OP_PWRITE, EIO},
        {MMS__OP_PWRITE, ENOSPC}};
    mms_options o = opts(0, MIB, 0);
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        unsigned errors = 0;
        unsigned long n;
        for (n = 1;; n++) {
            snprintf(g_ctx, sizeof g_ctx, "[close: %s fails at call %lu with -%s]\n",
                     op_name(plan[i].op), n, errno_name(plan[i].err));
            copy_store(g_tmpl, g_work);
            mms_store *s = xopen(g_work, &o);
            struct model m;
            OK(mms_txn_begin(s, 0));
            OK(txn_small(s, &g_fix, &m, 3));
            OK(mms_txn_commit(s)); /* the journal holds it: close checkpoints */
            mms__fault_arm(plan[i].op, n, plan[i].err);
            int r = mms_close(s); /* frees the handle whatever happens */
            bool clean = false;
            if (r) {
                FAILS(r, -plan[i].err);
                errors++;
            } else if (!fault_consumed(plan[i].op, n, plan[i].err)) {
                clean = true;
            } else {
                FAILF("close swallowed the failure");
            }
            mms__fault_reset();
            const struct model *al[] = {&m};
            reopen_check(g_work, &o, al, 1);
            if (clean)
                break;
        }
        fprintf(stderr, "   close: %s -%s: %u of %lu calls failed mms_close, reopen exact\n",
                op_name(plan[i].op), errno_name(plan[i].err), errors, n - 1);
        ASSERT_EQ(errors, n - 1);
        ASSERT_LT(0, errors);
    }

    /* Closing with a transaction open: the abort's mprotect fails. */
    snprintf(g_ctx, sizeof g_ctx, "[close: abort's mprotect fails]\n");
    copy_store(g_tmpl, g_work);
    mms_store *s = xopen(g_work, &o);
    struct model m, m2;
    OK(mms_txn_begin(s, 0));
    OK(txn_small(s, &g_fix, &m, 3));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(txn_small(s, &m, &m2, 4));
    mms__fault_arm(MMS__OP_MPROTECT, 1, ENOMEM);
    int rc = mms_close(s);
    ASSERT(fault_consumed(MMS__OP_MPROTECT, 1, ENOMEM));
    mms__fault_reset();
    fprintf(stderr, "   close with an open txn, mprotect fails in its abort: close returns %d\n",
            rc);
    const struct model *al[] = {&m};
    reopen_check(g_work, &o, al, 1);
    g_ctx[0] = 0;
}

/* A checkpoint's sync of the journal's new header slot fails (armed from
 * the crash point after the region files' sync): that failure is final
 * as any journal sync's (journal.c, mms__jsync). The slot may never reach
 * the disk, the old epoch would then win after a power cut, and the
 * groups written since under the new salt would not replay: a commit
 * acknowledged after it, through another handle whose next sync succeeded
 * (Linux reports a failed writeback once), would be lost. So that commit
 * fails, and an open of the store anew recovers from what the disk holds. */
static void arm_at_synced(enum mms__io_event ev, int fd, const void *addr, uint64_t off,
                          uint64_t len, const char *point)
{
    (void)fd, (void)addr, (void)off, (void)len;
    if (ev == MMS__IO_POINT && strcmp(point, "checkpoint.synced") == 0)
        mms__fault_arm(MMS__OP_FSYNC, 1, EIO);
}

TEST(reset_sync_failure)
{
    snprintf(g_ctx, sizeof g_ctx, "[checkpoint: the header slot's sync fails]\n");
    mms_options o = opts(0, MIB, 0);
    copy_store(g_tmpl, g_work);
    mms_store *a = xopen(g_work, &o), *b = xopen(g_work, &o);
    struct model m, m2;
    OK(mms_txn_begin(a, 0));
    OK(txn_small(a, &g_fix, &m, 3));
    OK(mms_txn_commit(a)); /* the journal holds it: the checkpoint resets */
    mms__os_io_hook(arm_at_synced);
    FAILS(mms_checkpoint(a), -EIO);
    mms__os_io_hook(NULL);
    ASSERT(fault_consumed(MMS__OP_FSYNC, 1, EIO));
    mms__fault_reset();
    OK(mms_txn_begin(b, 0));
    OK(txn_small(b, &m, &m2, 4));
    int r = mms_txn_commit(b);
    if (r == 0)
        FAILF("a commit after the failed sync of the journal's header slot was acknowledged");
    FAILS(r, -EIO);
    fprintf(stderr, "   the next commit through another handle: %s\n", mms_errdetail());
    mms_close(b);
    mms_close(a);
    /* b's commit failed after its group was written: poisoned, the next
     * open decides (as poison_journal_sync). */
    const struct model *al[] = {&m, &m2};
    reopen_check(g_work, &o, al, 2);
    g_ctx[0] = 0;
}

static uint64_t journal_file_size(const char *store)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/journal", store);
    if (stat(p, &st) < 0)
        FAILF("stat %s: %s", p, strerror(errno));
    return (uint64_t)st.st_size;
}

/* ftruncate is only used to give journal space back; its failures must
 * cost nothing but the space. */
TEST(ftruncate_failure)
{
    snprintf(g_ctx, sizeof g_ctx, "[ftruncate]\n");
    mms_options o = opts(0, MIB, MIB);
    copy_store(g_tmpl, g_work);
    mms_store *s = xopen(g_work, &o);
    struct model m1, m2, m3, m4;
    OK(mms_txn_begin(s, 0));
    OK(txn_chunks(s, &g_fix, &m1, 3, 0, 9));
    OK(mms_txn_commit(s));
    /* 9 MiB of journal: the checkpoint inside the commit truncates it. */
    OK(mms_txn_begin(s, 0));
    OK(txn_chunks(s, &m1, &m2, 4, 9, 0));
    mms__fault_arm(MMS__OP_FTRUNCATE, 1, EIO);
    OK(mms_txn_commit(s));
    ASSERT(fault_consumed(MMS__OP_FTRUNCATE, 1, EIO));
    mms__fault_reset();
    uint64_t big = journal_file_size(g_work);
    ASSERT_LE(9 * MIB, big); /* both groups (9 MiB each) were written, none given back */
    check_exact(s, &m2);
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    OK(txn_chunks(s, &m2, &m3, 5, 9, 0));
    OK(mms_txn_commit(s));
    uint64_t small = journal_file_size(g_work);
    ASSERT_LT(small, big);
    /* Extending the journal fails (a zero-fill pwrite) and so does the
     * truncation back: the commit fails before its commit point. */
    OK(mms_txn_begin(s, 0));
    OK(txn_chunks(s, &m3, &m4, 6, 9, 0));
    mms__fault_arm(MMS__OP_PWRITE, 10, ENOSPC);
    mms__fault_arm(MMS__OP_FTRUNCATE, 1, EIO);
    FAILS(mms_txn_commit(s), -ENOSPC);
    ASSERT(fault_consumed(MMS__OP_FTRUNCATE, 1, EIO));
    mms__fault_reset();
    check_exact(s, &m3);
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    OK(txn_chunks(s, &m3, &m4, 6, 9, 0));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    const struct model *al[] = {&m4};
    reopen_check(g_work, &o, al, 1);
    fprintf(stderr, "   journal %llu KiB after a failed truncation, %llu KiB after a good one\n",
            (unsigned long long)big >> 10, (unsigned long long)small >> 10);
    g_ctx[0] = 0;
}

/* Print what was being done when the test aborts or crashes. */
static struct sigaction g_old_abrt, g_old_bus, g_old_segv;
static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    if (g_ctx[0] && write(2, g_ctx, strlen(g_ctx)) < 0)
        g_ctx[0] = 0;
    struct sigaction *old = sig == SIGABRT ? &g_old_abrt : sig == SIGBUS ? &g_old_bus : &g_old_segv;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction)
        old->sa_sigaction(sig, si, uc);
    else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN)
        old->sa_handler(sig);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A reservation the process cannot have -- out of address space (ENOMEM),
 * or a length refused as invalid (EINVAL: valgrind refuses hundreds of
 * GiB so) -- is retried smaller, and the open goes on. Each mmap of an
 * open is failed in turn: with EACCES, which nothing retries, to see that
 * the call is made (the open fails); then with ENOMEM and with EINVAL,
 * which must end alike. The calls that are reservations succeed with both;
 * at least one is. */
TEST(reservation_refused)
{
    char p[600];
    snprintf(p, sizeof p, "%s/reserve_refused", g_scratch_dir);
    mms_options o = opts(MMS_CREATE, 0, 0);
    mms_store *s = xopen(p, &o);
    mms_ref r;
    OK(mms_txn_begin(s, 0));
    OK(mms_zalloc(s, 8, &r));
    *(uint64_t *)mms_deref(s, r) = 77;
    OK(mms_root_set(s, r));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    static const int errs[3] = {EACCES, ENOMEM, EINVAL};
    unsigned retried = 0;
    for (unsigned long n = 1; n <= 12; n++) {
        int got[3];
        for (int e = 0; e < 3; e++) {
            o = opts(0, 0, 0);
            s = NULL;
            mms__fault_arm(MMS__OP_MMAP, n, errs[e]);
            got[e] = mms_open(p, &o, &s);
            mms__fault_reset();
            if (got[e] == 0) {
                ASSERT_EQ(*(uint64_t *)mms_deref(s, mms_root(s)), 77);
                OK(mms_txn_begin(s, 0));
                ++*(uint64_t *)mms_deref(s, mms_root(s));
                mms_txn_abort(s);
                OK(mms_close(s));
            } else {
                ASSERT(s == NULL);
            }
        }
        ASSERT_EQ(got[1] == 0, got[2] == 0);
        retried += got[0] != 0 && got[1] == 0;
    }
    ASSERT(retried >= 1);
    rmrf(p);
}

/* Under a limit on address space (ulimit -v) every region still gets
 * room: a region whose default reservation does not fit keeps a quarter
 * of what fits. It took all of it (256 MiB of a 300 MiB limit for the
 * heap), so that the open of a five-region store failed at its fourth
 * region under limits that a smaller one passed. Each limit is tried in a
 * child (RLIMIT_AS is the process's); sanitizers reserve terabytes, so
 * they skip it. */
TEST(address_space_limit)
{
#if defined(__SANITIZE_ADDRESS__)
    return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return;
#endif
#endif
    char p[600];
    snprintf(p, sizeof p, "%s/aslimit", g_scratch_dir);
    mms_options o = opts(MMS_CREATE, 0, 0);
    mms_store *s = xopen(p, &o);
    struct one { int64_t v; };
    static const mms_field f[] = {MMS_F_I64(struct one, v)};
    static const mms_schema sc = MMS_SCHEMA(struct one, f);
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", i);
        mms_table *t;
        OK(mms_table_open(s, name, &sc, MMS_TABLE_CREATE, &t));
        struct one r = {i};
        OK(mms_table_append(t, &r, NULL));
    }
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    long base_kb = 0;
    FILE *st = fopen("/proc/self/status", "r");
    ASSERT(st);
    char line[256];
    while (fgets(line, sizeof line, st))
        if (strncmp(line, "VmSize:", 7) == 0)
            base_kb = atol(line + 7);
    fclose(st);
    ASSERT(base_kb > 0);
    int failed = 0;
    for (long mb = 40; mb <= 600; mb += 10) {
        pid_t c = fork();
        ASSERT(c >= 0);
        if (c == 0) {
            struct rlimit rl = {((rlim_t)base_kb << 10) + ((rlim_t)mb << 20), RLIM_INFINITY};
            if (setrlimit(RLIMIT_AS, &rl) != 0)
                _exit(3);
            for (int ro = 0; ro < 2; ro++) {
                mms_options oo = opts(ro ? MMS_RDONLY : 0, 0, 0);
                mms_store *q = NULL;
                int r = mms_open(p, &oo, &q);
                if (r) {
                    fprintf(stderr, "limit VmSize + %ld MiB%s: %s: %s\n", mb,
                            ro ? " (read-only)" : "", mms_strerror(r), mms_errdetail());
                    _exit(1);
                }
                mms_close(q);
            }
            _exit(0);
        }
        int wst;
        ASSERT_EQ(waitpid(c, &wst, 0), c);
        ASSERT(WIFEXITED(wst) && WEXITSTATUS(wst) != 3);
        failed += WEXITSTATUS(wst) != 0;
    }
    ASSERT_EQ(failed, 0);
    rmrf(p);
}

int main(void)
{
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): the faults are
     * injected, and the real full disks (case 3) are file systems of their
     * own; on_fatal goes on to shm_on_abort. */
    signal(SIGABRT, shm_on_abort);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGABRT, &sa, &g_old_abrt);
    sigaction(SIGBUS, &sa, &g_old_bus);
    sigaction(SIGSEGV, &sa, &g_old_segv);

    /* The mprotect guard even where keys work: its calls are fault points
     * (the environment wins over the flags, and ctest sets MMS_GUARD=1). */
    setenv("MMS_GUARD", "mprotect", 1);
    double t0 = now_us();
    scratch_init();
    fixture_init();
    /* FAULTS_ONLY=name runs one case (debugging); the sweeps it needs for
     * the pairs come along. */
    const char *only = getenv("FAULTS_ONLY");
#define RUN_ONE(name)                                                          \
    do {                                                                       \
        if (!only || strcmp(only, #name) == 0) {                               \
            mms__fault_reset();                                                \
            RUN(name);                                                         \
        }                                                                      \
    } while (0)
    RUN_ONE(sweep_scenario);
    RUN_ONE(sweep_nosync);
    if (!only || g_calls[MMS__OP_PWRITE])
        RUN_ONE(sweep_pairs);
    RUN_ONE(sweep_heavy);
    RUN_ONE(sweep_create);
    RUN_ONE(growth_failure_in_txn);
    RUN_ONE(poison_journal_sync);
    RUN_ONE(poison_background_sync);
    RUN_ONE(close_checkpoint_failure);
    RUN_ONE(reset_sync_failure);
    RUN_ONE(ftruncate_failure);
    RUN_ONE(reservation_refused);
    RUN_ONE(address_space_limit);
    /* These two count their failures instead of stopping, so that every
     * file system is tried. */
    RUN_ONE(full_disk);
    RUN_ONE(region_tail_not_page_aligned);
    rm_store(g_work);
    rm_store(g_tmpl);
    close(g_scratch_fd);
    rmrf(g_scratch_dir);
    shm_cleanup();
    fprintf(stderr, "test_faults: %.1f s%s\n", (now_us() - t0) / 1e6,
            g_failed ? ", FAILED (see above)" : "");
    return g_failed ? 1 : 0;
}

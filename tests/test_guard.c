/*
 * test_guard.c -- the guard (guard.c NOTES, mmstore.h MMS_GUARD): which
 * guard a handle gets from the flags, the environment, the build and the
 * CPU; that a stray store faults with each (SEGV_ACCERR from mprotect,
 * SEGV_PKUERR from a protection key) and joins the next transaction
 * without, a page held for a reader and write-protected through
 * userfaultfd included; that rights are per thread with a key (another thread cannot
 * write during a transaction, a transaction may commit on another thread);
 * that keys are given back at close and that running out of them falls
 * back.
 *
 * Where the CPU has no `pku` (pkey_alloc fails) the key cases check the
 * fallback instead; under tests/pkey_qemu.sh (TCG, -cpu max) they run for
 * real. Each stray store runs in a child process. The environment is
 * pinned per case (ctest sets MMS_GUARD=1).
 */
#include "counter.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>

#ifndef SEGV_PKUERR
#define SEGV_PKUERR 4
#endif

static bool g_pkeys; /* this CPU and kernel give out protection keys */
#ifdef NDEBUG
static const bool g_debug = false;
#else
static const bool g_debug = true;
#endif

static void set_env(const char *k, const char *v)
{
    if (v)
        setenv(k, v, 1);
    else
        unsetenv(k);
}

/* Probe the CPU without the library: can this process get a key? */
static bool probe_pkeys(void)
{
#if defined(__x86_64__) && defined(PKEY_DISABLE_WRITE)
    int k = pkey_alloc(0, PKEY_DISABLE_ACCESS); /* as Linux starts a thread */
    if (k > 0) {
        pkey_free(k);
        return true;
    }
#endif
    return false;
}

static unsigned kind_of(const mms_store *s)
{
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.guard, in.guard_kind != MMS_GUARD_KIND_NONE);
    return in.guard_kind;
}

static volatile uint64_t *counter_in(mms_store *s)
{
    return &MMS_AT(s, struct counter, mms_root(s))->n;
}

static uint64_t counter_of(const char *p)
{
    set_env("MMS_GUARD", "0");
    mms_store *s = open_flags(p, 0);
    uint64_t n = *counter_in(s);
    verify_ok(s);
    OK(mms_close(s));
    return n;
}

/* ------------------------------------------------------------------------
 * Children that may die: a SIGSEGV exits with 100 + its si_code. The
 * handler runs with the kernel's initial PKRU (no access to any key), so
 * it touches nothing of the store.
 * ------------------------------------------------------------------------ */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    _exit(100 + si->si_code);
}

static void child_catch_segv(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
}

/* Run fn(arg) in a child; its exit status (0: returned normally). */
static int in_child(void (*fn)(const void *), const void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        FAILF("fork: %s", strerror(errno));
    if (pid == 0) {
        child_catch_segv();
        fn(arg);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            FAILF("waitpid: %s", strerror(errno));
    if (!WIFEXITED(st))
        FAILF("the child died of signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

/* What a stray store must do under a guard of this kind. */
static int stray_outcome(unsigned kind)
{
    return kind == MMS_GUARD_KIND_PKEY       ? 100 + SEGV_PKUERR
           : kind == MMS_GUARD_KIND_MPROTECT ? 100 + SEGV_ACCERR
                                             : 0;
}

/* The three guards a handle can ask for. */
static const unsigned g_asked[] = {MMS_GUARD_MPROTECT, MMS_GUARD, MMS_NOGUARD};

/* Sets the counter back to 1, through a handle without a guard. */
static void reset_counter(const char *p)
{
    set_env("MMS_GUARD", "0");
    mms_store *s = open_flags(p, 0);
    OK(mms_txn_begin(s, 0));
    *counter_in(s) = 1;
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

/* A child that ends with a stray store must have died of it under a guard,
 * or exited 3 (it returned from the store) without one. */
static void expect_stray(unsigned kind, int got, const char *what)
{
    if (got != (kind == MMS_GUARD_KIND_NONE ? 3 : stray_outcome(kind)))
        FAILF("guard kind %u: %s, then a stray store: exit %d", kind, what, got);
}

/* ------------------------------------------------------------------------
 * Which guard
 * ------------------------------------------------------------------------ */
static unsigned kind_with(const char *p, unsigned flags, const char *env)
{
    set_env("MMS_GUARD", env);
    mms_store *s = open_flags(p, flags);
    unsigned k = kind_of(s);
    OK(mms_close(s));
    return k;
}

/* mmstore.h MMS_GUARD: the key where one can be had; else mprotect when
 * asked for (the flag, MMS_GUARD=1, a debug build), else none. */
TEST(which_guard)
{
    const char *p = shm_tpath("which");
    OK(mms_close(open_flags(p, MMS_CREATE)));
    const unsigned key_or_mp = g_pkeys ? MMS_GUARD_KIND_PKEY : MMS_GUARD_KIND_MPROTECT;
    const unsigned dflt = g_pkeys ? MMS_GUARD_KIND_PKEY
                          : g_debug ? MMS_GUARD_KIND_MPROTECT
                                    : MMS_GUARD_KIND_NONE;
    const struct {
        unsigned flags;
        const char *env;
        unsigned want;
    } cases[] = {
        {0, NULL, dflt},
        {MMS_GUARD, NULL, key_or_mp},
        {MMS_NOGUARD, NULL, MMS_GUARD_KIND_NONE},
        {MMS_GUARD_MPROTECT, NULL, MMS_GUARD_KIND_MPROTECT},
        {MMS_GUARD | MMS_GUARD_MPROTECT, NULL, MMS_GUARD_KIND_MPROTECT},
        {MMS_NOGUARD | MMS_GUARD_MPROTECT, NULL, MMS_GUARD_KIND_NONE},
        {0, "1", key_or_mp},
        {0, "0", MMS_GUARD_KIND_NONE},
        {0, "mprotect", MMS_GUARD_KIND_MPROTECT},
        {MMS_GUARD, "0", MMS_GUARD_KIND_NONE},
        {MMS_NOGUARD, "1", key_or_mp},            /* the environment wins */
        {MMS_NOGUARD, "mprotect", MMS_GUARD_KIND_MPROTECT},
        {MMS_GUARD_MPROTECT, "1", key_or_mp},
        {MMS_GUARD_MPROTECT, "0", MMS_GUARD_KIND_NONE},
        {MMS_RDONLY, NULL, MMS_GUARD_KIND_NONE}, /* mapped read-only: no key */
        {MMS_RDONLY | MMS_GUARD, "1", MMS_GUARD_KIND_NONE},
        {MMS_RDONLY, "mprotect", MMS_GUARD_KIND_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned k = kind_with(p, cases[i].flags, cases[i].env);
        if (k != cases[i].want)
            FAILF("flags 0x%x, MMS_GUARD=%s: guard kind %u, expected %u", cases[i].flags,
                  cases[i].env ? cases[i].env : "(unset)", k, cases[i].want);
    }
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * Stray stores
 * ------------------------------------------------------------------------ */
enum stray_case {
    S_AFTER_OPEN,    /* before any transaction */
    S_AFTER_COMMIT,  /* into a page the last commit wrote */
    S_AFTER_ABORT,   /* after an abort */
    S_FRESH_ABORTED, /* into fresh space an aborted transaction allocated */
    S_GROWN,         /* into space a commit grew the region by */
    S_HELD,          /* into a page held for a reader (write-protected by
                        userfaultfd where the kernel has PAGEMAP_SCAN) */
    S_RDONLY,        /* a read-only handle: mapped read-only, whatever the guard */
    S_INSIDE,        /* never stray: must not fault */
    S_NCASES
};

struct stray_arg {
    const char *p;
    unsigned flags;
    const char *env;
    enum stray_case c;
};

/* A reader inside a read transaction on a handle of its own, on a thread
 * of its own, until told to leave: the writer then holds the pages its
 * commits change (their shadows), and protects them in batches. */
struct held_reader {
    mms_store *r;
    pthread_t th;
    atomic_int inside, leave;
};

static void *held_reader_run(void *arg)
{
    struct held_reader *h = arg;
    OK(mms_read_begin(h->r));
    atomic_store(&h->inside, 1);
    while (!atomic_load(&h->leave))
        sleep_us(1000);
    OK(mms_read_end(h->r));
    return NULL;
}

static void held_reader_start(struct held_reader *h, const char *p)
{
    h->r = open_flags(p, MMS_RDONLY);
    atomic_init(&h->inside, 0);
    atomic_init(&h->leave, 0);
    if (pthread_create(&h->th, NULL, held_reader_run, h))
        FAILF("pthread_create");
    while (!atomic_load(&h->inside))
        sleep_us(1000);
}

static void held_reader_leave(struct held_reader *h)
{
    atomic_store(&h->leave, 1);
    pthread_join(h->th, NULL);
    OK(mms_close(h->r));
}

#define HELD_PAGES 40 /* more than txn.c's WP_BATCH: the commit protects them */

static void stray_child(const void *arg_)
{
    const struct stray_arg *a = arg_;
    set_env("MMS_GUARD", a->env);
    mms_store *s = open_flags(a->p, a->c == S_RDONLY ? a->flags | MMS_RDONLY : a->flags);
    volatile uint64_t *target = counter_in(s);
    mms_ref x;
    struct held_reader h;
    switch (a->c) {
    case S_AFTER_OPEN:
    case S_RDONLY:
    case S_NCASES:
        break;
    case S_AFTER_COMMIT:
        OK(mms_txn_begin(s, 0));
        *target = 100; /* inside: works */
        OK(mms_txn_commit(s));
        break;
    case S_AFTER_ABORT:
        OK(mms_txn_begin(s, 0));
        *target = 200;
        OK(mms_txn_abort(s));
        break;
    case S_FRESH_ABORTED:
        OK(mms_txn_begin(s, 0));
        OK(mms_alloc(s, (uint64_t)8 << 20, &x));
        target = mms_deref(s, x);
        *target = 300;
        OK(mms_txn_abort(s));
        break;
    case S_GROWN: /* space a commit mapped (growth, then the private remap) */
        OK(mms_txn_begin(s, 0));
        OK(mms_alloc(s, (uint64_t)8 << 20, &x));
        target = mms_deref(s, x);
        *target = 400;
        *counter_in(s) = 100;
        OK(mms_txn_commit(s));
        break;
    case S_HELD:
        OK(mms_txn_begin(s, 0));
        OK(mms_zalloc(s, (uint64_t)HELD_PAGES * 4096, &x));
        OK(mms_txn_commit(s));
        held_reader_start(&h, a->p);
        OK(mms_txn_begin(s, 0));
        for (int i = 0; i < HELD_PAGES; i++)
            ((volatile char *)mms_deref(s, x))[i * 4096 + 8] = 1;
        *target = 100;
        OK(mms_txn_commit(s));
        target = (volatile uint64_t *)((char *)mms_deref(s, x) + HELD_PAGES / 2 * 4096);
        break;
    case S_INSIDE: /* never stray: must not fault */
        OK(mms_txn_begin(s, 0));
        *target = 100;
        OK(mms_txn_commit(s));
        OK(mms_txn_begin(s, 0));
        *target = 0xbad;
        OK(mms_txn_abort(s));
        OK(mms_close(s));
        return;
    }
    *target = 0xbad; /* stray */
    /* Without a guard it joins the next transaction. */
    OK(mms_txn_begin(s, 0));
    OK(mms_txn_commit(s));
    if (a->c == S_HELD) {
        /* That commit found the stray in a held page while the reader
         * held it: once the reader left and the backlog is applied, a
         * new handle reads it. Where held pages are write-protected, the
         * commit before protected the batch, so this one found the stray
         * through the write fault, not by comparing every held page. */
        mms_info in;
        OK(mms_info_get(s, &in));
        if (in.held_protected && in.last_commit.pages_dirty >= HELD_PAGES / 2)
            _exit(4); /* the held pages were not protected */
        held_reader_leave(&h);
        OK(mms_txn_begin(s, 0));
        OK(mms_txn_commit(s));
        OK(mms_close(s));
        set_env("MMS_GUARD", "0");
        s = open_flags(a->p, 0);
        uint64_t got = *(volatile uint64_t *)((char *)mms_deref(s, x) + HELD_PAGES / 2 * 4096);
        OK(mms_close(s));
        if (got != 0xbad)
            _exit(3); /* the commit lost the stray */
        return;
    }
    OK(mms_close(s));
}

static void strays(unsigned flags, const char *env, unsigned want_kind)
{
    const char *p = shm_tpath("stray");
    set_env("MMS_GUARD", "0");
    OK(mms_close(store_with_counter(p, 0)));
    ASSERT_EQ(kind_with(p, flags, env), want_kind);
    for (int c = 0; c < S_NCASES; c++) {
        struct stray_arg a = {p, flags, env, (enum stray_case)c};
        int got = in_child(stray_child, &a);
        int want = c == S_INSIDE   ? 0
                   : c == S_RDONLY ? stray_outcome(MMS_GUARD_KIND_MPROTECT)
                                   : stray_outcome(want_kind);
        if (got != want)
            FAILF("guard kind %u, case %d: the child exited %d, expected %d", want_kind, c, got,
                  want);
        uint64_t n = counter_of(p);
        bool on_counter = c != S_GROWN && c != S_FRESH_ABORTED && c != S_RDONLY && c != S_HELD;
        if (c == S_INSIDE)
            ASSERT_EQ(n, 100);
        else if (want_kind == MMS_GUARD_KIND_NONE && on_counter)
            ASSERT_EQ(n, 0xbad); /* the stray store was committed */
        else if (want_kind != MMS_GUARD_KIND_NONE || !on_counter)
            ASSERT_EQ(n, c == S_AFTER_COMMIT || c == S_GROWN || c == S_HELD ? 100 : 1);
        reset_counter(p);
    }
    rmrf(p);
}

/* The environment variables mms_open reads take only their documented
 * values: MMS_GUARD=on left the guard off without a word, MMS_GUARD=1abc
 * counted as 1. */
TEST(bad_environment)
{
    const char *p = shm_tpath("badenv");
    OK(mms_close(open_flags(p, MMS_CREATE)));
    const struct {
        const char *name, *value;
    } bad[] = {{"MMS_GUARD", "on"}, {"MMS_GUARD", "1abc"},     {"MMS_HUGE", "yes"},
               {"MMS_DIRTY", "uffd"}, {"MMS_KEEP_PAGES", "lots"}, {"MMS_KEEP_PAGES", "-1"}};
    const char *names[] = {"MMS_GUARD", "MMS_HUGE", "MMS_DIRTY", "MMS_KEEP_PAGES"};
    char *saved[4];
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(names[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(names[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(bad[i].name, bad[i].value, 1);
        mms_options o;
        mms_options_init(&o);
        mms_store *s = NULL;
        int r = mms_open(p, &o, &s);
        if (r != MMS_EINVAL || s)
            FAILF("%s=\"%s\": mms_open gave %d, expected MMS_EINVAL", bad[i].name, bad[i].value, r);
        ASSERT(strstr(mms_errdetail(), bad[i].name));
        unsetenv(bad[i].name);
    }
    /* MMS_DIRTY=pagemap, not scan: PAGEMAP_SCAN needs Linux >= 6.7, and
     * without it scan is refused (MMS_ENOTSUP: pkey_qemu.sh's guest). */
    const struct {
        const char *name, *value;
    } good[] = {{"MMS_GUARD", "mprotect"}, {"MMS_HUGE", "0"}, {"MMS_DIRTY", "pagemap"},
                {"MMS_KEEP_PAGES", "0"}, {"MMS_GUARD", ""}, {"MMS_KEEP_PAGES", ""}}; /* "": unset */
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setenv(good[i].name, good[i].value, 1);
        OK(mms_close(open_flags(p, 0)));
        unsetenv(good[i].name);
    }
    for (int i = 0; i < 4; i++)
        if (saved[i]) {
            setenv(names[i], saved[i], 1);
            free(saved[i]);
        }
    rmrf(p);
}

TEST(stray_store_mprotect)
{
    strays(MMS_GUARD_MPROTECT, NULL, MMS_GUARD_KIND_MPROTECT);
    strays(0, "mprotect", MMS_GUARD_KIND_MPROTECT);
}

TEST(stray_store_none)
{
    strays(MMS_NOGUARD, NULL, MMS_GUARD_KIND_NONE);
    strays(MMS_GUARD, "0", MMS_GUARD_KIND_NONE);
}

/* The default and MMS_GUARD: the key where there is one, else the
 * fallback, exactly as before keys. */
TEST(stray_store_default)
{
    strays(MMS_GUARD, NULL, g_pkeys ? MMS_GUARD_KIND_PKEY : MMS_GUARD_KIND_MPROTECT);
    strays(0, NULL,
           g_pkeys   ? MMS_GUARD_KIND_PKEY
           : g_debug ? MMS_GUARD_KIND_MPROTECT
                     : MMS_GUARD_KIND_NONE);
}

/* ------------------------------------------------------------------------
 * Stray stores into every kind of mapping a write handle makes (guard.c
 * G4: each is protected, or tagged with the key): a table's, an index's,
 * each after growth, a table's new file after a migration, regions that
 * another handle's commit grew and this one mapped when it followed, and
 * the view inside a read transaction of a write handle.
 * ------------------------------------------------------------------------ */
struct rec2 {
    uint64_t key, val;
};
static const mms_field rec2_fields[] = {MMS_F_U64(struct rec2, key), MMS_F_U64(struct rec2, val)};
static const mms_schema rec2_schema = MMS_SCHEMA(struct rec2, rec2_fields);
struct rec3 {
    uint64_t key, val, extra;
};
static const mms_field rec3_fields[] = {MMS_F_U64(struct rec3, key), MMS_F_U64(struct rec3, val),
                                        MMS_F_U64(struct rec3, extra)};
static const mms_schema rec3_schema = MMS_SCHEMA(struct rec3, rec3_fields);

enum region_case {
    R_TABLE,        /* a record the last commit appended */
    R_TABLE_GROWN,  /* the last record of 4 MB a commit appended */
    R_INDEX,        /* a page of the ordered index */
    R_INDEX_GROWN,  /* the last page of the index after those appends */
    R_MIGRATED,     /* a record of the table's new file */
    R_FOLLOWED,     /* the table another handle grew, mapped here when followed */
    R_FOLLOWED_HEAP, /* the heap, the same way */
    R_READ_TXN,     /* inside a read transaction of this write handle */
    R_NCASES
};

/* Appends n records {i, 2i} through t in one transaction of s. */
static uint64_t append_recs(mms_store *s, mms_table *t, uint64_t n)
{
    uint64_t first;
    void *where;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append_many(t, n, &first, &where));
    for (uint64_t i = 0; i < n; i++)
        ((struct rec2 *)where)[i] = (struct rec2){first + i, 2 * (first + i)};
    OK(mms_txn_commit(s));
    return first + n - 1;
}

/* The last byte of the ordered index's region. */
static volatile char *index_end(mms_store *s, mms_table *t)
{
    mms_index_info ii;
    size_t n;
    OK(mms_indexes(t, &ii, 1, &n));
    ASSERT_EQ(n, 1);
    return (char *)mms_deref(s, MMS_REF_MAKE(ii.region, 0)) + ii.bytes - 1;
}

static void region_child(const void *arg_)
{
    const struct stray_arg *a = arg_;
    set_env("MMS_GUARD", a->env);
    mms_store *s = open_flags(a->p, a->flags);
    mms_table *t;
    OK(mms_table_open(s, "rec", &rec2_schema, 0, &t));
    volatile char *target = NULL;
    uint64_t last;
    switch ((enum region_case)a->c) {
    case R_TABLE:
        target = mms_table_get(t, append_recs(s, t, 1));
        break;
    case R_TABLE_GROWN:
        target = mms_table_get(t, append_recs(s, t, 250000));
        break;
    case R_INDEX:
        target = index_end(s, t);
        break;
    case R_INDEX_GROWN:
        append_recs(s, t, 250000);
        target = index_end(s, t);
        break;
    case R_MIGRATED: {
        mms_table *t3;
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "rec", &rec3_schema, 0, &t3));
        OK(mms_txn_commit(s));
        target = mms_table_get(t3, 0);
        break;
    }
    case R_FOLLOWED:
    case R_FOLLOWED_HEAP: {
        mms_store *o = open_flags(a->p, a->flags);
        mms_table *to;
        mms_ref big;
        OK(mms_table_open(o, "rec", &rec2_schema, 0, &to));
        OK(mms_txn_begin(o, 0));
        OK(mms_zalloc(o, (uint64_t)8 << 20, &big));
        OK(mms_txn_commit(o));
        last = append_recs(o, to, 250000);
        OK(mms_close(o));
        OK(mms_read_begin(s)); /* this handle maps what grew */
        ASSERT_EQ(MMS_TABLE_GET(t, struct rec2, last)->val, 2 * last);
        OK(mms_read_end(s));
        if ((enum region_case)a->c == R_FOLLOWED)
            target = mms_table_get(t, last);
        else
            target = (char *)mms_deref(s, big) + ((8 << 20) - 1);
        break;
    }
    case R_READ_TXN:
        OK(mms_read_begin(s));
        target = mms_table_get(t, 0);
        break;
    case R_NCASES:
        break;
    }
    *target = 0x5a; /* stray */
    _exit(3);
}

TEST(stray_regions)
{
    const char *p = shm_tpath("regions");
    set_env("MMS_GUARD", "0");
    mms_store *s = store_with_counter(p, 0);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "rec", &rec2_schema, MMS_TABLE_CREATE, &t));
    OK(mms_txn_commit(s));
    append_recs(s, t, 1000);
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "key", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    char copy[600];
    snprintf(copy, sizeof copy, "%s-copy", p);
    for (size_t i = 0; i < 3; i++) {
        set_env("MMS_GUARD", NULL);
        unsigned kind = kind_with(p, g_asked[i], NULL);
        for (int c = 0; c < R_NCASES; c++) {
            char cmd[1300];
            snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", copy, p, copy);
            ASSERT_EQ(system(cmd), 0);
            struct stray_arg a = {copy, g_asked[i], NULL, (enum stray_case)c};
            int got = in_child(region_child, &a);
            if (got != (kind == MMS_GUARD_KIND_NONE ? 3 : stray_outcome(kind)))
                FAILF("guard kind %u, region case %d: the child exited %d", kind, c, got);
        }
    }
    rmrf(copy);
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */
struct thr {
    mms_store *s;
    uint64_t value;
    int r;
    bool call_first;
    int go;
};

/* Takes over the transaction another thread began: a call that needs the
 * transaction, then plain stores, the commit, and a stray store. */
static void *commit_thread(void *arg_)
{
    struct thr *t = arg_;
    while (!__atomic_load_n(&t->go, __ATOMIC_ACQUIRE))
        usleep(1000);
    mms_ref x;
    if (mms_zalloc(t->s, 64, &x) != 0)
        _exit(4);
    *counter_in(t->s) = t->value;
    if (mms_txn_commit(t->s) != 0)
        _exit(5);
    if (*counter_in(t->s) != t->value)
        _exit(6);
    *counter_in(t->s) = 77; /* stray */
    return NULL;
}

static void *store_thread(void *arg_)
{
    struct thr *t = arg_;
    while (!__atomic_load_n(&t->go, __ATOMIC_ACQUIRE))
        usleep(1000);
    if (t->call_first) {
        mms_info in;
        t->r = mms_info_get(t->s, &in); /* guard.c G2 */
    }
    t->value = *counter_in(t->s);
    *counter_in(t->s) = 77;
    return NULL;
}

struct kind_arg {
    const char *p;
    unsigned flags;
};

/* mmstore.h: "a transaction may begin on one thread and commit on
 * another". The thread that takes it over (one that existed before the
 * transaction) writes, and the library writes at its commit (guard.c G2);
 * afterwards that thread's stray store faults. */
/* In a child: a thread running fn is started, then this thread opens a
 * transaction on a->p (storing 66 first if asked) and lets fn go. The
 * thread starts before the transaction: one started inside it would
 * inherit this thread's rights (guard.c G3). The child exits 3 when fn
 * comes back: its stray store did not fault. */
static void thread_in_txn(const struct kind_arg *a, struct thr *t, void *(*fn)(void *),
                          bool store)
{
    set_env("MMS_GUARD", NULL);
    mms_store *s = open_flags(a->p, a->flags);
    t->s = s;
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, fn, t), 0);
    OK(mms_txn_begin(s, 0));
    if (store)
        *counter_in(s) = 66;
    __atomic_store_n(&t->go, 1, __ATOMIC_RELEASE);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    _exit(3);
}

static void other_thread_commits_child(const void *arg_)
{
    struct thr t = {NULL, 55, -1, false, 0};
    thread_in_txn(arg_, &t, commit_thread, false);
}

/* During a transaction on one thread, another thread may read but not
 * write (keys only: mprotect is the whole process's). */
static void other_thread_writes_child(const void *arg_)
{
    struct thr t = {NULL, 0, -1, true, 0};
    thread_in_txn(arg_, &t, store_thread, true);
}

static void *early_thread(void *arg_)
{
    struct thr *t = arg_;
    while (!__atomic_load_n(&t->s, __ATOMIC_ACQUIRE))
        usleep(1000);
    if (t->call_first) {
        mms_info in;
        t->r = mms_info_get(t->s, &in);
    }
    t->value = *counter_in(t->s); /* a read */
    return NULL;
}

/* mmstore.h Caveats: a thread that existed before the open reads the data
 * once it has made a call on the handle; before, with a key, it cannot. */
static void early_thread_child(const void *arg_)
{
    const struct kind_arg *a = arg_;
    bool call = a->flags & 1u;
    set_env("MMS_GUARD", NULL);
    struct thr t = {NULL, 0, -1, call, 1};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, early_thread, &t), 0);
    mms_store *s = open_flags(a->p, a->flags & ~1u);
    __atomic_store_n(&t.s, s, __ATOMIC_RELEASE);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_EQ(t.value, *counter_in(s));
    if (call)
        OK(t.r);
    OK(mms_close(s));
}

TEST(threads)
{
    const char *p = shm_tpath("threads");
    set_env("MMS_GUARD", "0");
    OK(mms_close(store_with_counter(p, 0)));
    for (size_t i = 0; i < 3; i++) {
        struct kind_arg a = {p, g_asked[i]};
        set_env("MMS_GUARD", NULL);
        unsigned kind = kind_with(p, g_asked[i], NULL);
        expect_stray(kind, in_child(other_thread_commits_child, &a), "commit on another thread");
        ASSERT_EQ(counter_of(p), 55); /* the stray store was never committed */
        int got = in_child(other_thread_writes_child, &a);
        if (got != (kind == MMS_GUARD_KIND_PKEY ? 100 + SEGV_PKUERR : 3))
            FAILF("guard kind %u: another thread's store during a transaction: exit %d", kind,
                  got);
        a.flags = g_asked[i] | 1u;
        ASSERT_EQ(in_child(early_thread_child, &a), 0);
        a.flags = g_asked[i];
        got = in_child(early_thread_child, &a);
        if (got != (kind == MMS_GUARD_KIND_PKEY ? 100 + SEGV_PKUERR : 0))
            FAILF("guard kind %u: a thread older than the handle reads: exit %d", kind, got);
    }
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * Several handles: keys are one per handle, given back at close; when
 * they run out the handle falls back; two write handles of one thread
 * follow each other's commits (view.c writes the view outside a
 * transaction, guard.c G1).
 * ------------------------------------------------------------------------ */
TEST(many_handles)
{
    const char *p = shm_tpath("many");
    set_env("MMS_GUARD", "0");
    OK(mms_close(store_with_counter(p, 0)));
    set_env("MMS_GUARD", NULL);
    /* In turn: every one gets a key (the last one's came back). */
    for (int i = 0; i < 40; i++)
        ASSERT_EQ(kind_with(p, MMS_GUARD, NULL),
                  g_pkeys ? MMS_GUARD_KIND_PKEY : MMS_GUARD_KIND_MPROTECT);
    /* At once: 20 handles, more than a process has keys. */
    enum { N = 20 };
    const unsigned nokey_dflt = g_debug ? MMS_GUARD_KIND_MPROTECT : MMS_GUARD_KIND_NONE;
    for (int asked = 0; asked < 2; asked++) {
        mms_store *h[N];
        int keys = 0;
        for (int i = 0; i < N; i++) {
            h[i] = open_flags(p, asked ? MMS_GUARD : 0);
            unsigned k = kind_of(h[i]);
            if (k == MMS_GUARD_KIND_PKEY)
                keys++;
            else
                ASSERT_EQ(k, asked ? MMS_GUARD_KIND_MPROTECT : nokey_dflt);
        }
        if (g_pkeys)
            ASSERT(keys >= 1 && keys < N);
        else
            ASSERT_EQ(keys, 0);
        /* Each writes in turn, and sees what the one before wrote. */
        for (int i = 0; i < N; i++) {
            OK(mms_txn_begin(h[i], 0));
            ASSERT_EQ(*counter_in(h[i]), (uint64_t)(i ? 1000 + i - 1 : 1));
            *counter_in(h[i]) = 1000 + (uint64_t)i;
            OK(mms_txn_commit(h[i]));
        }
        for (int i = 0; i < N; i++)
            OK(mms_close(h[i]));
        reset_counter(p);
        set_env("MMS_GUARD", NULL);
    }
    rmrf(p);
}

static void two_writers_child(const void *arg_)
{
    const struct kind_arg *a = arg_;
    set_env("MMS_GUARD", NULL);
    mms_store *h1 = open_flags(a->p, a->flags), *h2 = open_flags(a->p, a->flags);
    for (uint64_t i = 0; i < 20; i++) {
        mms_store *w = i % 2 ? h2 : h1;
        OK(mms_txn_begin(w, 0));
        ASSERT_EQ(*counter_in(w), i + 1);
        *counter_in(w) = i + 2;
        OK(mms_txn_commit(w));
    }
    /* h2 follows h1's last commit when it reads: then a stray store. */
    OK(mms_read_begin(h2));
    ASSERT_EQ(*counter_in(h2), 21);
    OK(mms_read_end(h2));
    *counter_in(h2) = 0xbad;
    _exit(3);
}

TEST(two_writers_one_thread)
{
    const char *p = shm_tpath("two");
    set_env("MMS_GUARD", "0");
    OK(mms_close(store_with_counter(p, 0)));
    for (size_t i = 0; i < 3; i++) {
        struct kind_arg a = {p, g_asked[i]};
        set_env("MMS_GUARD", NULL);
        unsigned kind = kind_with(p, g_asked[i], NULL);
        expect_stray(kind, in_child(two_writers_child, &a), "two writers");
        ASSERT_EQ(counter_of(p), 21);
        reset_counter(p);
    }
    rmrf(p);
}

/* Not the guard's: test.h's tmpfs directory (shm_tpath) belongs to the
 * process that made it. A forked child inherits shm_on_abort; a child
 * whose case failed (FAILF: abort) removed the whole directory under its
 * parent, which went on with stores gone (and the failing case's store,
 * the one to look at, with them). */
TEST(tmpfs_dir_outlives_an_aborting_child)
{
    const char *p = shm_tpath("childabort");
    ASSERT_EQ(mkdir(p, 0777), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl);
        abort(); /* as FAILF in a child */
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    struct stat sb;
    ASSERT_EQ(stat(p, &sb), 0);
    rmrf(p);
}

int main(void)
{
    g_pkeys = probe_pkeys();
    fprintf(stderr, "protection keys: %s; %s build\n", g_pkeys ? "yes" : "no (fallback)",
            g_debug ? "debug" : "release");
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): the guard is
     * about the writer's mappings, not the disk. */
    signal(SIGABRT, shm_on_abort);
    RUN(which_guard);
    RUN(bad_environment);
    RUN(stray_store_mprotect);
    RUN(stray_store_none);
    RUN(stray_store_default);
    RUN(stray_regions);
    RUN(threads);
    RUN(many_handles);
    RUN(two_writers_one_thread);
    RUN(tmpfs_dir_outlives_an_aborting_child);
    shm_cleanup();
    fprintf(stderr, "test_guard: ok (keys %s)\n", g_pkeys ? "tested" : "absent: fallback tested");
    return 0;
}

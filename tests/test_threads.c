/*
 * test_threads.c -- one process, several threads, each with its own handle
 * of one store (mmstore.h: "a handle is used by one thread at a time. For
 * threads that read while another writes, give each its own handle"):
 * readers see whole commits and working indexes while a thread commits;
 * write transactions of several threads take turns; handles open and close
 * while others write and read; a reader keeps its state while the writer
 * closes; the per-thread checks of lock.c (a read transaction, a writer
 * lock of this thread through another handle) see this thread only;
 * copies to one destination do not collide; the failure detail is per
 * thread; several threads may make the process's first calls at once;
 * MMS_NOSYNC's background syncer runs beside them, stops at close, is
 * not in a forked child.
 *
 * The same program runs as test_threads_tsan, built with the library under
 * ThreadSanitizer (tests/CMakeLists.txt): any data race in the library
 * fails it. It found lock.c's pin_tid and writer_tid, written by a handle's
 * thread and read by every thread that began a transaction, and the
 * once-per-process flags of crc32c.c and os.c (first_calls).
 */
#include "test.h"

#include <pthread.h>
#include <sched.h>

struct rec {
    uint64_t key;
    uint64_t val;
};
static const mms_field rec_fields[] = {MMS_F_U64(struct rec, key), MMS_F_U64(struct rec, val)};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);

/* The root: a == b == the number of records - 1 in every committed state. */
struct pair {
    uint64_t a, b;
};

static struct pair *pair_in(mms_store *s)
{
    return mms_deref(s, mms_root(s));
}

static pthread_t start(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, fn, arg), 0);
    return th;
}

static void join(pthread_t th)
{
    ASSERT_EQ(pthread_join(th, NULL), 0);
}

/* Under ThreadSanitizer (test_threads_tsan) every mapping must fall in its
 * application range, ~1.5 TiB at the top of the address space less what
 * ASLR leaves above its random mmap base: one the kernel places elsewhere
 * aborts the test ("ThreadSanitizer: mmap at bad address", once in CI).
 * The default reservations (256 GiB for the heap, 64 GiB per table or
 * index, per handle) of the handles open at once here can pass that;
 * 512 MiB each is plenty for these stores, and changes nothing else. */
static mms_store *open_t(const char *path, unsigned flags)
{
#ifdef __SANITIZE_THREAD__
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    o.reserve = (uint64_t)512 << 20;
    mms_store *s = NULL;
    OK(mms_open(path, &o, &s));
    return s;
#else
    return open_flags(path, flags);
#endif
}

/* A store with the pair, a table of one record {0, 0} and an ordered index
 * on key and a hash index on val. */
static void make_store(const char *p)
{
    rmrf(p);
    mms_store *s = open_t(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_zalloc(s, sizeof(struct pair), &r));
    OK(mms_root_set(s, r));
    mms_table *t;
    OK(mms_table_open(s, "rec", &rec_schema, MMS_TABLE_CREATE, &t));
    struct rec x = {0, 0};
    OK(mms_table_append(t, &x, NULL));
    OK(mms_index_create(t, "key", MMS_INDEX_ORDERED));
    OK(mms_index_create(t, "val", MMS_INDEX_HASH));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

/* ------------------------------------------------------------------------
 * The process's first calls into the library, made by several threads at
 * once (each creates a store of its own and commits): the library's
 * once-per-process decisions (crc32c.c's CRC instruction or table, os.c's
 * MMS_FAULT and MMS_CRASH) were plain flags written by whichever thread
 * came first. Must run first in the program.
 * ------------------------------------------------------------------------ */
struct first_arg {
    char p[600];
    int *go;
};

static void *first_main(void *arg)
{
    struct first_arg *f = arg;
    while (!__atomic_load_n(f->go, __ATOMIC_ACQUIRE))
        sched_yield();
    make_store(f->p);
    mms_store *s = open_t(f->p, 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(f->p);
    return NULL;
}

TEST(first_calls)
{
    enum { N = 3 };
    struct first_arg f[N];
    pthread_t th[N];
    int go = 0;
    for (int i = 0; i < N; i++) {
        snprintf(f[i].p, sizeof f[i].p, "%s-%d", tpath("thr-first"), i);
        f[i].go = &go;
        th[i] = start(first_main, &f[i]);
    }
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < N; i++)
        join(th[i]);
}

/* ------------------------------------------------------------------------
 * Readers while a thread commits
 * ------------------------------------------------------------------------ */
enum { COMMITS = 120 };

struct shared {
    const char *p;
    int done;       /* the writer has finished */
    long rounds[2]; /* read transactions of each reader */
};

static void *writer_main(void *arg)
{
    struct shared *sh = arg;
    mms_store *s = open_t(sh->p, 0);
    mms_table *t;
    OK(mms_table_open(s, "rec", &rec_schema, 0, &t));
    for (uint64_t i = 1; i <= COMMITS; i++) {
        OK(mms_txn_begin(s, 0));
        struct rec x = {i, 2 * i};
        OK(mms_table_append(t, &x, NULL));
        pair_in(s)->a = i;
        if (i % 8 == 0) { /* the heap grows too */
            mms_ref r;
            OK(mms_alloc(s, 40000, &r));
        }
        pair_in(s)->b = i;
        OK(mms_txn_commit(s));
    }
    OK(mms_close(s));
    __atomic_store_n(&sh->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* One read transaction: the pair is whole, both indexes find every key
 * of its state and none past it, a cursor walks them all in order. */
static void read_once(mms_store *s, mms_index *by_key, mms_index *by_val, mms_cursor *c,
                      uint64_t *rng)
{
    OK(mms_read_begin(s));
    struct pair pr = *pair_in(s);
    ASSERT_EQ(pr.a, pr.b);
    uint64_t n = pr.a + 1, k = rnd_next(rng) % n, v = 2 * k, idx, key;
    OK(mms_index_find(by_key, &k, &idx));
    ASSERT_EQ(idx, k);
    OK(mms_index_find(by_val, &v, &idx));
    ASSERT_EQ(idx, k);
    FAILS(mms_index_find(by_key, &n, &idx), MMS_ENOTFOUND);
    uint64_t seen = 0;
    int r = mms_cursor_seek(c, MMS_SEEK_FIRST, NULL, &idx, &key);
    for (; r == 0; r = mms_cursor_next(c, &idx, &key)) {
        ASSERT_EQ(key, seen);
        ASSERT_EQ(idx, seen);
        seen++;
    }
    FAILS(r, MMS_ENOTFOUND);
    ASSERT_EQ(seen, n);
    OK(mms_read_end(s));
}

struct reader_arg {
    struct shared *sh;
    int i;
};

static void *reader_main(void *arg)
{
    struct reader_arg *ra = arg;
    /* One reader read-only, one on a handle that may write. */
    mms_store *s = open_t(ra->sh->p, ra->i ? MMS_RDONLY : 0);
    mms_table *t;
    mms_index *by_key, *by_val;
    mms_cursor *c;
    OK(mms_table_open(s, "rec", &rec_schema, 0, &t));
    OK(mms_index_open(t, "key", &by_key));
    OK(mms_index_open(t, "val", &by_val));
    OK(mms_cursor_open(by_key, &c));
    uint64_t rng = 7 + (uint64_t)ra->i;
    long rounds = 0;
    while (!__atomic_load_n(&ra->sh->done, __ATOMIC_ACQUIRE)) {
        read_once(s, by_key, by_val, c, &rng);
        rounds++;
    }
    read_once(s, by_key, by_val, c, &rng); /* and the last state */
    mms_cursor_close(c);
    OK(mms_close(s));
    ra->sh->rounds[ra->i] = rounds + 1;
    return NULL;
}

TEST(readers_while_writing)
{
    struct shared sh = {tpath("thr-read"), 0, {0, 0}};
    make_store(sh.p);
    struct reader_arg ra[2] = {{&sh, 0}, {&sh, 1}};
    pthread_t w = start(writer_main, &sh);
    pthread_t r0 = start(reader_main, &ra[0]), r1 = start(reader_main, &ra[1]);
    join(w);
    join(r0);
    join(r1);
    fprintf(stderr, "   read transactions: %ld and %ld\n", sh.rounds[0], sh.rounds[1]);
    mms_store *s = open_t(sh.p, 0);
    OK(mms_read_begin(s));
    ASSERT_EQ(pair_in(s)->a, COMMITS);
    OK(mms_read_end(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(sh.p);
}

/* ------------------------------------------------------------------------
 * Write transactions of several threads take turns; handles open and
 * close meanwhile (a checkpoint at each close that has the store to
 * itself), and a read-only thread opens, reads and closes.
 * ------------------------------------------------------------------------ */
enum { TURNS = 60, WRITERS = 3 };

static void *turn_main(void *arg)
{
    const char *p = arg;
    mms_store *s = open_t(p, 0);
    for (int i = 0; i < TURNS; i++) {
        bool churn = i % 4 == 0; /* a new handle now and then */
        if (churn) {
            OK(mms_close(s));
            s = open_t(p, 0);
        }
        OK(mms_txn_begin(s, 0));
        struct pair *pr = pair_in(s);
        uint64_t a = pr->a;
        sched_yield(); /* another writer, if it got in, would be lost */
        pr->a = a + 1;
        pr->b = a + 1;
        OK(mms_txn_commit(s));
    }
    OK(mms_close(s));
    return NULL;
}

static void *open_read_close_main(void *arg)
{
    const char *p = arg;
    for (int i = 0; i < TURNS; i++) {
        mms_store *s = open_t(p, MMS_RDONLY);
        OK(mms_read_begin(s));
        ASSERT_EQ(pair_in(s)->a, pair_in(s)->b);
        OK(mms_read_end(s));
        OK(mms_close(s));
    }
    return NULL;
}

TEST(writers_take_turns)
{
    const char *p = tpath("thr-turns");
    make_store(p);
    pthread_t th[WRITERS + 1];
    for (int i = 0; i < WRITERS; i++)
        th[i] = start(turn_main, (void *)p);
    th[WRITERS] = start(open_read_close_main, (void *)p);
    for (int i = 0; i <= WRITERS; i++)
        join(th[i]);
    mms_store *s = open_t(p, 0);
    OK(mms_read_begin(s));
    ASSERT_EQ(pair_in(s)->a, WRITERS * TURNS);
    OK(mms_read_end(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * A reader keeps its state while the writer commits and closes; when it
 * leaves, the commits it held back reach the files (it applies them), and
 * its next read transaction sees them.
 * ------------------------------------------------------------------------ */
struct hold {
    const char *p;
    unsigned flags;
    int phase;
};

static void phase_wait(struct hold *h, int want)
{
    while (__atomic_load_n(&h->phase, __ATOMIC_ACQUIRE) < want)
        sleep_us(1000);
}

static void *holder_main(void *arg)
{
    struct hold *h = arg;
    mms_store *s = open_t(h->p, h->flags);
    OK(mms_read_begin(s));
    uint64_t before = pair_in(s)->a;
    __atomic_store_n(&h->phase, 1, __ATOMIC_RELEASE);
    phase_wait(h, 2);
    ASSERT_EQ(pair_in(s)->a, before);
    OK(mms_read_end(s));
    OK(mms_read_begin(s));
    ASSERT_EQ(pair_in(s)->a, before + 30);
    ASSERT_EQ(pair_in(s)->b, before + 30);
    OK(mms_read_end(s));
    OK(mms_close(s));
    return NULL;
}

TEST(reader_outlives_writer)
{
    const char *p = tpath("thr-hold");
    make_store(p);
    for (int ro = 0; ro < 2; ro++) {
        struct hold h = {p, ro ? MMS_RDONLY : 0, 0};
        pthread_t th = start(holder_main, &h);
        phase_wait(&h, 1);
        mms_store *s = open_t(p, 0);
        for (int i = 0; i < 30; i++) {
            OK(mms_txn_begin(s, 0));
            pair_in(s)->a++;
            pair_in(s)->b++;
            OK(mms_txn_commit(s));
        }
        OK(mms_close(s));
        __atomic_store_n(&h.phase, 2, __ATOMIC_RELEASE);
        join(th);
    }
    mms_store *s = open_t(p, 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * lock.c's per-thread checks: this thread inside a read transaction on
 * one handle may not wait for the writer lock through another (MMS_ETXN),
 * nor begin on a second handle while it writes through a first
 * (MMS_EBUSY); another thread's read transaction or writer lock is no
 * reason to refuse this one -- it waits its turn.
 * ------------------------------------------------------------------------ */
struct other {
    const char *p;
    bool write;
    int phase;
};

static void *other_main(void *arg)
{
    struct other *o = arg;
    mms_store *s = open_t(o->p, 0);
    if (o->write)
        OK(mms_txn_begin(s, 0));
    else
        OK(mms_read_begin(s));
    __atomic_store_n(&o->phase, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&o->phase, __ATOMIC_ACQUIRE) < 2)
        sleep_us(1000);
    if (o->write)
        OK(mms_txn_commit(s));
    else
        OK(mms_read_end(s));
    OK(mms_close(s));
    return NULL;
}

static void *release_later(void *arg)
{
    struct other *o = arg;
    sleep_us(50000);
    __atomic_store_n(&o->phase, 2, __ATOMIC_RELEASE);
    return NULL;
}

TEST(per_thread_checks)
{
    const char *p = tpath("thr-checks");
    make_store(p);
    mms_store *h1 = open_t(p, 0), *h2 = open_t(p, 0);
    /* This thread: refused, as mmstore.h says. */
    OK(mms_read_begin(h1));
    FAILS(mms_txn_begin(h2, 0), MMS_ETXN);
    OK(mms_read_end(h1));
    OK(mms_txn_begin(h1, 0));
    FAILS(mms_txn_begin(h2, MMS_TXN_NOWAIT), MMS_EBUSY);
    ASSERT(strstr(mms_errdetail(), "this thread already writes") != NULL);
    OK(mms_txn_commit(h1));
    /* Another thread inside a read transaction: this one writes. */
    struct other o = {p, false, 0};
    pthread_t th = start(other_main, &o);
    while (__atomic_load_n(&o.phase, __ATOMIC_ACQUIRE) < 1)
        sleep_us(1000);
    OK(mms_txn_begin(h2, 0));
    pair_in(h2)->a++;
    pair_in(h2)->b++;
    OK(mms_txn_commit(h2));
    __atomic_store_n(&o.phase, 2, __ATOMIC_RELEASE);
    join(th);
    /* Another thread holds the writer lock: this one is told it is busy
     * (not that it writes itself), and waits its turn. */
    struct other w = {p, true, 0};
    th = start(other_main, &w);
    while (__atomic_load_n(&w.phase, __ATOMIC_ACQUIRE) < 1)
        sleep_us(1000);
    FAILS(mms_txn_begin(h2, MMS_TXN_NOWAIT), MMS_EBUSY);
    ASSERT(strstr(mms_errdetail(), "another writer") != NULL);
    pthread_t rel = start(release_later, &w);
    OK(mms_txn_begin(h2, 0));
    OK(mms_txn_commit(h2));
    join(rel);
    join(th);
    OK(mms_close(h1));
    OK(mms_close(h2));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * Two threads copy the store to one destination at once (MMS_COPY_FORCE):
 * each copy is whole. Their temporary directories were one name (dest +
 * ".mms-copy-" + pid): each removed the other's (copies failed -ENOENT,
 * "cannot create the journal") and one could rename the other's half into
 * place.
 * ------------------------------------------------------------------------ */
struct copy_arg {
    const char *p, *dest;
    int failed;
    char why[200];
};

static void *copy_main(void *arg)
{
    struct copy_arg *c = arg;
    mms_store *s = open_t(c->p, MMS_RDONLY);
    for (int i = 0; i < 12; i++) {
        int r = mms_copy(s, c->dest, MMS_COPY_FORCE, NULL);
        if (r && !c->failed++)
            snprintf(c->why, sizeof c->why, "%s: %s", mms_strerror(r), mms_errdetail());
    }
    OK(mms_close(s));
    return NULL;
}

TEST(copies_to_one_dest)
{
    char p[600], dest[600];
    snprintf(p, sizeof p, "%s", tpath("thr-copy"));
    snprintf(dest, sizeof dest, "%s", tpath("thr-copy-dest"));
    make_store(p);
    rmrf(dest);
    mms_store *s = open_t(p, 0);
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_alloc(s, (uint64_t)2 << 20, &r));
    memset(mms_deref(s, r), 0x5a, (size_t)2 << 20);
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    struct copy_arg c[2] = {{p, dest, 0, ""}, {p, dest, 0, ""}};
    pthread_t a = start(copy_main, &c[0]), b = start(copy_main, &c[1]);
    join(a);
    join(b);
    for (int i = 0; i < 2; i++)
        if (c[i].failed)
            FAILF("thread %d: %d of 12 copies failed, the first: %s", i, c[i].failed, c[i].why);
    s = open_t(dest, 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(dest);
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * mms_errdetail() and mms_last_error() are the calling thread's.
 * ------------------------------------------------------------------------ */
struct err_arg {
    const char *p;
    int i;
    int bad; /* detail of another thread's failure seen */
};

static void *err_main(void *arg)
{
    struct err_arg *e = arg;
    char path[600], want[32];
    snprintf(path, sizeof path, "%s-missing-%d", e->p, e->i);
    snprintf(want, sizeof want, "missing-%d", e->i);
    for (int k = 0; k < 300; k++) {
        mms_store *s;
        int r = mms_open(path, NULL, &s);
        if (r == 0 || !strstr(mms_errdetail(), want) || mms_last_error() != r)
            e->bad++;
    }
    return NULL;
}

TEST(errors_per_thread)
{
    const char *p = tpath("thr-err");
    struct err_arg e[2] = {{p, 0, 0}, {p, 1, 0}};
    pthread_t a = start(err_main, &e[0]), b = start(err_main, &e[1]);
    join(a);
    join(b);
    ASSERT_EQ(e[0].bad, 0);
    ASSERT_EQ(e[1].bad, 0);
}

/* ------------------------------------------------------------------------
 * MMS_NOSYNC's background syncer (apply.c S1-S5): a thread of the
 * library's beside the application's. A writer that commits (with pauses,
 * so that the syncer sleeps, wakes and syncs between commits) while a
 * reader of another handle begins and ends read transactions (its calls
 * sync and apply too: they race the syncer for `syncing`); then no call
 * but mms_info until every commit is durable. Handles closed right after
 * their commit (the syncer joined mid-sleep), many times; a forked child
 * closing its copy of a handle whose syncer runs in the parent.
 * ------------------------------------------------------------------------ */
static mms_store *open_nosync(const char *p, unsigned sync_ms)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_NOSYNC;
    o.sync_ms = sync_ms;
#ifdef __SANITIZE_THREAD__
    o.reserve = (uint64_t)512 << 20; /* as open_t */
#endif
    mms_store *s;
    OK(mms_open(p, &o, &s));
    return s;
}

static void commit_pair(mms_store *s)
{
    OK(mms_txn_begin(s, 0));
    struct pair *q = pair_in(s);
    q->a++;
    q->b++;
    OK(mms_txn_commit(s));
}

/* No call but mms_info (it never syncs) until every commit is durable: a
 * functional deadline (20 s), not a timing. */
static void wait_durable(mms_store *s)
{
    mms_info in;
    for (int i = 0; i < 2000; i++) {
        OK(mms_info_get(s, &in));
        if (in.durable_txn == in.committed_txn)
            return;
        usleep(10000);
    }
    FAILF("20 s after the last commit: durable txn %llu, committed %llu",
          (unsigned long long)in.durable_txn, (unsigned long long)in.committed_txn);
}

struct sync_reader {
    const char *p;
    int *stop;
    unsigned reads;
};

static void *sync_reader_main(void *arg)
{
    struct sync_reader *r = arg;
    mms_store *s = open_t(r->p, 0);
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        OK(mms_read_begin(s));
        const struct pair *q = pair_in(s);
        ASSERT_EQ(q->a, q->b);
        OK(mms_read_end(s));
        __atomic_add_fetch(&r->reads, 1, __ATOMIC_RELEASE);
        usleep(500);
    }
    OK(mms_close(s));
    return NULL;
}

TEST(nosync_background_sync)
{
    const char *p = tpath("thr-bgsync");
    make_store(p);
    int stop = 0;
    struct sync_reader rd = {p, &stop, 0};
    pthread_t th = start(sync_reader_main, &rd);
    /* The reader reads while the commits are made: they start after its
     * first read (a functional deadline, 20 s). The test used to check
     * afterwards that the reader had read at all, which depends on the
     * scheduler: on a loaded machine the 60 commits can end before the
     * reader's open does. */
    for (int i = 0; !__atomic_load_n(&rd.reads, __ATOMIC_ACQUIRE); i++) {
        if (i == 20000)
            FAILF("the reader thread made no read in 20 s");
        usleep(1000);
    }
    mms_store *s = open_nosync(p, 2);
    for (int i = 0; i < 60; i++) {
        commit_pair(s);
        usleep(i % 10 == 9 ? 8000 : 300); /* now and then idle past sync_ms */
    }
    wait_durable(s);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    join(th);
    OK(mms_close(s));
    s = open_t(p, 0);
    ASSERT_EQ(pair_in(s)->a, 60);
    OK(mms_close(s));
    rmrf(p);
}

TEST(nosync_close_after_commit)
{
    const char *p = tpath("thr-bgclose");
    make_store(p);
    for (int i = 0; i < 40; i++) {
        mms_store *s = open_nosync(p, i % 2 ? 1 : 100); /* syncing, or asleep */
        commit_pair(s);
        OK(mms_close(s));
    }
    mms_store *s = open_t(p, 0);
    ASSERT_EQ(pair_in(s)->a, 40);
    OK(mms_close(s));
    rmrf(p);
}

TEST(nosync_fork_child_closes)
{
    const char *p = tpath("thr-bgfork");
    make_store(p);
    mms_store *s = open_nosync(p, 5);
    commit_pair(s); /* the syncer runs */
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        /* No syncer here: close frees memory only (MMS_EFORK or 0). */
        int r = mms_close(s);
        _exit(r == 0 || r == MMS_EFORK ? 0 : 1);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    commit_pair(s); /* the parent's syncer still works */
    wait_durable(s);
    OK(mms_close(s));
    s = open_t(p, 0);
    ASSERT_EQ(pair_in(s)->a, 2);
    OK(mms_close(s));
    rmrf(p);
}

int main(void)
{
    RUN(first_calls);
    RUN(readers_while_writing);
    RUN(writers_take_turns);
    RUN(reader_outlives_writer);
    RUN(per_thread_checks);
    RUN(copies_to_one_dest);
    RUN(errors_per_thread);
    RUN(nosync_background_sync);
    RUN(nosync_close_after_commit);
    RUN(nosync_fork_child_closes);
    printf("threads ok\n");
    return 0;
}

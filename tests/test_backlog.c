/*
 * test_backlog.c -- readers never hold up the writer (issue 11).
 *
 * A reader process holds a read transaction while the writer commits: every
 * commit returns (none waits for the reader), the reader keeps its state,
 * the commits wait in the journal and are visible to nobody but the writer
 * until the reader leaves -- then, in order, at once. Growth and a schema
 * migration while the reader is inside. mms_wait wakes when a commit is
 * applied, not when it is made, and in order. mms_read_begin_latest waits
 * (or times out). The backlog's bound: MMS_BACKLOG_ERROR fails the commit
 * and leaves the transaction open; the default waits for the reader. A
 * writer killed with a backlog: recovery gives every commit it made. A
 * reader killed inside: its slot is reclaimed and the backlog drains
 * without anyone else's help. A writer killed while it waits at its bound
 * (the gate closed): a new reader goes on at once, the next writer recovers
 * every commit. No timing is asserted: only orders.
 */
#include "test.h"
#include "internal.h" /* latest_cannot_apply: a handle that cannot write the files */

#include <pthread.h>

struct rec {
    int64_t v;
};
static const mms_field rec_fields[] = {MMS_F_I64(struct rec, v)};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);
struct rec2 {
    int64_t v;
    int64_t w;
};
static const mms_field rec2_fields[] = {MMS_F_I64(struct rec2, v), MMS_F_I64(struct rec2, w)};
static const mms_schema rec2_schema = MMS_SCHEMA(struct rec2, rec2_fields);

struct root {
    uint64_t counter;
};

/* Shared with the children. */
static struct shared {
    uint64_t go, inside, seen_counter, seen_slots, leave, left, ok, killme;
    uint64_t big, late_began; /* gate_kill */
    char msg[256];
} *sh;

static uint64_t counter_of(mms_store *s)
{
    return MMS_AT(s, struct root, mms_root(s))->counter;
}

static void commit_counter(mms_store *s, uint64_t v)
{
    OK(mms_txn_begin(s, 0));
    MMS_AT(s, struct root, mms_root(s))->counter = v;
    OK(mms_txn_commit(s));
}

/* The counter a new handle on p finds -- in a write transaction if
 * as_writer (its writer recovers first), else in its view at open -- once
 * the store verifies; then p is removed. */
static uint64_t final_counter(const char *p, bool as_writer)
{
    mms_store *w = open_flags(p, 0);
    if (as_writer)
        OK(mms_txn_begin(w, 0));
    uint64_t c = counter_of(w);
    if (as_writer)
        OK(mms_txn_abort(w));
    verify_ok(w);
    OK(mms_close(w));
    rmrf(p);
    return c;
}

static mms_store *setup(const char *p)
{
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_zalloc(s, sizeof(struct root), &r));
    OK(mms_root_set(s, r));
    mms_table *t;
    OK(mms_table_open(s, "t", &rec_schema, MMS_TABLE_CREATE, &t));
    for (int i = 0; i < 10; i++) {
        struct rec x = {i};
        OK(mms_table_append(t, &x, NULL));
    }
    OK(mms_txn_commit(s));
    return s;
}

/* The child reader: begin, report what it sees, wait to be told to leave
 * (checking its state never moves meanwhile), end, report. */
static int child_reader(const char *path, int kill_inside)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    mms_table *t;
    OK(mms_table_find(s, "t", &t));
    OK(mms_read_begin(s));
    uint64_t c = counter_of(s), slots = mms_table_slots(t);
    const struct rec *first = mms_table_get(t, 0);
    int64_t v0 = first->v;
    PUB(sh->seen_counter, c);
    PUB(sh->seen_slots, slots);
    PUB(sh->inside, 1);
    while (!GET(sh->leave)) {
        if (counter_of(s) != c || mms_table_slots(t) != slots || first->v != v0) {
            snprintf(sh->msg, sizeof sh->msg, "the reader's state moved: counter %llu -> %llu",
                     (unsigned long long)c, (unsigned long long)counter_of(s));
            PUB(sh->ok, 2);
        }
        if (kill_inside && GET(sh->killme))
            raise(SIGKILL);
        sleep_us(1000);
    }
    OK(mms_read_end(s));
    PUB(sh->left, 1);
    OK(mms_close(s));
    return 0;
}

static pid_t spawn_reader(const char *p, int kill_inside)
{
    memset(sh, 0, sizeof *sh);
    pid_t pid = child_spawn((const char *[]){"reader", p, kill_inside ? "1" : "0", NULL}, NULL);
    AWAIT(GET(sh->inside), pid, 60, "the reader did not begin its read transaction");
    return pid;
}

static void reader_leaves(pid_t pid)
{
    PUB(sh->leave, 1);
    int st;
    if (!child_end(pid, 60, &st))
        FAILF("the reader hung");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the reader ended with %s", child_status(st));
    if (GET(sh->ok) == 2)
        FAILF("%s", sh->msg);
}

static mms_info *info(mms_store *s)
{
    static mms_info in;
    OK(mms_info_get(s, &in));
    return &in;
}

/* Commits while a reader is inside: none waits, the reader's state stays,
 * the writer sees its own, others see the state the reader pinned, until
 * it leaves; growth and a migration included. */
TEST(commits_never_wait)
{
    const char *p = shm_tpath("bl1");
    mms_store *w = setup(p);
    mms_store *other = open_flags(p, MMS_RDONLY);
    pid_t pid = spawn_reader(p, 0);
    ASSERT_EQ(sh->seen_counter, 0);
    uint64_t txn0 = mms_txn_id(w);
    mms_table *t;
    OK(mms_table_find(w, "t", &t));
    for (uint64_t i = 1; i <= 200; i++) {
        commit_counter(w, i);
        ASSERT_EQ(counter_of(w), i); /* the writer reads its own commits */
    }
    /* Growth: 100,000 appended records. */
    OK(mms_txn_begin(w, 0));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, 100000, &first, &where));
    for (uint64_t i = 0; i < 100000; i++)
        ((struct rec *)where)[i].v = (int64_t)(first + i);
    ((struct rec *)mms_table_get(t, 0))->v = -1;
    OK(mms_txn_commit(w));
    /* A migration. */
    OK(mms_txn_begin(w, 0));
    mms_table *t2;
    OK(mms_table_open(w, "t", &rec2_schema, 0, &t2));
    OK(mms_txn_commit(w));
    ASSERT_EQ(mms_table_slots(t2), 100010);
    ASSERT_EQ(((struct rec2 *)mms_table_get(t2, 5))->v, 5);
    uint64_t last = mms_txn_id(w);
    ASSERT_EQ(last, txn0 + 202);
    mms_info *in = info(w);
    ASSERT_EQ(in->committed_txn, last);
    ASSERT_EQ(in->published_txn, txn0); /* every commit waits: the reader is inside */
    ASSERT_LT(0, in->backlog_bytes);
    ASSERT_EQ(in->last_commit.backlog, 202);
    mms_reader_info ri[8];
    size_t n;
    OK(mms_readers(w, ri, 8, &n));
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (ri[i].pid == (uint32_t)pid) {
            ASSERT(ri[i].active);
            ASSERT_EQ(ri[i].behind, 202);
            found = 1;
        }
    ASSERT(found);
    /* Another handle: the pinned state, not the writer's. */
    OK(mms_read_begin(other));
    ASSERT_EQ(counter_of(other), 0);
    ASSERT_EQ(mms_txn_id(other), txn0);
    OK(mms_read_end(other));
    /* Latest: not while the reader is inside. */
    FAILS(mms_read_begin_latest(other, 50), -ETIMEDOUT);
    reader_leaves(pid);
    /* The reader left last and applied the backlog. */
    in = info(w);
    ASSERT_EQ(in->published_txn, last);
    OK(mms_read_begin(other));
    ASSERT_EQ(counter_of(other), 200);
    mms_table *ot;
    OK(mms_table_find(other, "t", &ot));
    ASSERT_EQ(mms_table_slots(ot), 100010);
    ASSERT_EQ(mms_table_schema(ot)->record_size, sizeof(struct rec2));
    ASSERT_EQ(((struct rec2 *)mms_table_get(ot, 0))->v, -1);
    ASSERT_EQ(((struct rec2 *)mms_table_get(ot, 100009))->v, 100009);
    OK(mms_read_end(other));
    OK(mms_read_begin_latest(other, 1000));
    ASSERT_EQ(mms_txn_id(other), last);
    OK(mms_read_end(other));
    verify_ok(w);
    OK(mms_close(other));
    OK(mms_close(w));
    rmrf(p);
}

struct waiter {
    mms_store *s;
    uint64_t from, got[64];
    int n, stop;
};

static void *wait_thread(void *arg)
{
    struct waiter *wt = arg;
    uint64_t cur = wt->from;
    while (wt->n < 64 && !__atomic_load_n(&wt->stop, __ATOMIC_SEQ_CST)) {
        uint64_t now;
        int r = mms_wait(wt->s, cur, 20, &now);
        if (r == 0) {
            wt->got[wt->n++] = now;
            cur = now;
        }
    }
    return NULL;
}

/* mms_wait wakes when commits are applied, not when they are made; and in
 * order. */
TEST(wait_with_backlog)
{
    const char *p = shm_tpath("bl2");
    mms_store *w = setup(p);
    mms_store *ws = open_flags(p, MMS_RDONLY);
    struct waiter wt = {.s = ws, .from = mms_txn_id(w)};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, wait_thread, &wt), 0);
    pid_t pid = spawn_reader(p, 0);
    for (uint64_t i = 1; i <= 20; i++)
        commit_counter(w, i);
    sleep_us(50000);
    ASSERT_EQ(__atomic_load_n(&wt.n, __ATOMIC_SEQ_CST), 0); /* nothing visible yet */
    uint64_t last = mms_txn_id(w);
    reader_leaves(pid);
    for (double t0 = now_us(); __atomic_load_n(&wt.n, __ATOMIC_SEQ_CST) == 0 ||
                               wt.got[__atomic_load_n(&wt.n, __ATOMIC_SEQ_CST) - 1] != last;)
        if (now_us() - t0 > 30e6)
            FAILF("the waiter never saw txn %llu", (unsigned long long)last);
        else
            sleep_us(1000);
    __atomic_store_n(&wt.stop, 1, __ATOMIC_SEQ_CST);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    for (int i = 1; i < wt.n; i++)
        ASSERT_LT(wt.got[i - 1], wt.got[i]);
    fprintf(stderr, "   20 commits held back, then %d wake%s, the last at txn %llu\n", wt.n,
            wt.n == 1 ? "" : "s", (unsigned long long)last);
    OK(mms_close(ws));
    OK(mms_close(w));
    rmrf(p);
}

struct idle_wait {
    mms_store *s;
    uint64_t from, now;
    int r, asleep, done;
};

static void *idle_wait_thread(void *arg)
{
    struct idle_wait *iw = arg;
    __atomic_store_n(&iw->asleep, 1, __ATOMIC_SEQ_CST);
    iw->r = mms_wait(iw->s, iw->from, -1, &iw->now);
    __atomic_store_n(&iw->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* A waiter already asleep in mms_wait (no timeout) when an MMS_NOSYNC
 * commit comes, whose writer then stays idle: the background syncer syncs
 * it, and the waiter (a handle that can apply) applies it and wakes, about
 * sync_ms later (mmstore.h, MMS_NOSYNC and mms_wait). It slept on
 * publications only, and nothing published: it slept for ever. */
TEST(wait_nosync_idle_writer)
{
    const char *p = shm_tpath("bl_idle");
    mms_store *w = setup(p);
    OK(mms_close(w));
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_NOSYNC;
    o.sync_ms = 20;
    OK(mms_open(p, &o, &w));
    mms_store *ws = open_flags(p, 0);
    struct idle_wait iw = {.s = ws, .from = mms_txn_id(ws)};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, idle_wait_thread, &iw), 0);
    while (!__atomic_load_n(&iw.asleep, __ATOMIC_SEQ_CST))
        sleep_us(1000);
    sleep_us(100000); /* (it waits in the futex by now; the test holds either way) */
    commit_counter(w, 42);
    uint64_t txn = mms_txn_id(w);
    /* The writer makes no call meanwhile. */
    for (double t0 = now_us(); !__atomic_load_n(&iw.done, __ATOMIC_SEQ_CST);)
        if (now_us() - t0 > 20e6)
            FAILF("the waiter never saw the idle writer's commit (txn %llu)",
                  (unsigned long long)txn);
        else
            sleep_us(1000);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    OK(iw.r);
    ASSERT_EQ(iw.now, txn);
    OK(mms_read_begin(ws));
    ASSERT_EQ(counter_of(ws), 42);
    OK(mms_read_end(ws));
    OK(mms_close(ws));
    OK(mms_close(w));
    rmrf(p);
}

/* The same with a commit held back by a reader (default durability): the
 * waiter is asleep before the commit, the writer then stays idle, and the
 * reader dies inside. Nobody leaves to apply: the waiter, which can, must
 * find the dead reader and apply (mmstore.h: mms_wait looks every sync_ms
 * while commits wait to be applied). */
TEST(wait_reader_killed)
{
    const char *p = shm_tpath("bl_rkill");
    mms_store *w = setup(p);
    pid_t rd = spawn_reader(p, 1);
    mms_store *ws = open_flags(p, 0);
    struct idle_wait iw = {.s = ws, .from = mms_txn_id(ws)};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, idle_wait_thread, &iw), 0);
    while (!__atomic_load_n(&iw.asleep, __ATOMIC_SEQ_CST))
        sleep_us(1000);
    sleep_us(100000); /* (it waits in the futex by now; the test holds either way) */
    commit_counter(w, 42);
    uint64_t txn = mms_txn_id(w);
    ASSERT_EQ(info(w)->published_txn, txn - 1); /* held back */
    PUB(sh->killme, 1);
    int st;
    if (!child_end(rd, 60, &st) || !WIFSIGNALED(st))
        FAILF("the reader ended with %s", child_status(st));
    for (double t0 = now_us(); !__atomic_load_n(&iw.done, __ATOMIC_SEQ_CST);)
        if (now_us() - t0 > 20e6)
            FAILF("the waiter never saw the commit the dead reader held back (txn %llu)",
                  (unsigned long long)txn);
        else
            sleep_us(1000);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    OK(iw.r);
    ASSERT_EQ(iw.now, txn);
    OK(mms_close(ws));
    OK(mms_close(w));
    rmrf(p);
}

/* mms_read_begin_latest in a handle that cannot apply (its process may
 * not write the store's files), with nobody inside: the commits wait for
 * a handle that can, and the timeout says so -- not that readers inside
 * hold them back, when none is. */
static void *commit_7(void *arg)
{
    commit_counter(arg, 7);
    return NULL;
}

TEST(latest_cannot_apply)
{
    const char *p = shm_tpath("bl_noapply");
    mms_store *w = setup(p);
    mms_store *r = open_flags(p, MMS_RDONLY);
    r->cannot_apply = true; /* as after EACCES on a region file */
    OK(mms_read_begin(r));
    pthread_t th; /* another thread: this one is inside a read transaction */
    ASSERT_EQ(pthread_create(&th, NULL, commit_7, w), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    uint64_t txn = mms_txn_id(w);
    OK(mms_read_end(r)); /* the last reader out, but it cannot apply */
    ASSERT_EQ(info(w)->published_txn, txn - 1);
    ASSERT_EQ(mms_read_begin_latest(r, 30), -ETIMEDOUT);
    const char *d = mms_errdetail();
    if (!strstr(d, "cannot write") || strstr(d, "readers inside"))
        FAILF("mms_read_begin_latest's timeout says: %s", d);
    ASSERT_EQ(info(w)->active_readers, 0);
    /* A handle that can applies them: here the writer's next commit, an
     * empty one too (it did only in MMS_NOSYNC). */
    OK(mms_txn_begin(w, 0));
    OK(mms_txn_commit(w));
    ASSERT_EQ(info(w)->committed_txn, txn); /* it committed nothing */
    ASSERT_EQ(info(w)->published_txn, txn);
    OK(mms_read_begin_latest(r, 30000));
    ASSERT_EQ(counter_of(r), 7);
    OK(mms_read_end(r));
    OK(mms_close(r));
    OK(mms_close(w));
    rmrf(p);
}

/* A waiter asleep in mms_wait (no timeout) since before a commit whose
 * writer dies in the middle of applying it (the gate closed, the files
 * half written), and nothing else happens: the waiter finishes the dead
 * handle's apply, as a reader that begins does, and wakes with the commit
 * (DESIGN 4: waiters wake, nothing hangs). It slept for ever: nobody
 * published, and it never looked at the abandoned gate. Then the same for
 * mms_read_begin_latest, which timed out. */
TEST(wait_writer_dies_applying)
{
    const char *p = shm_tpath("bl_wdies");
    mms_store *w = setup(p);
    uint64_t txn = mms_txn_id(w);
    OK(mms_close(w));
    mms_store *ws = open_flags(p, 0);
    struct idle_wait iw = {.s = ws, .from = mms_txn_id(ws)};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, idle_wait_thread, &iw), 0);
    while (!__atomic_load_n(&iw.asleep, __ATOMIC_SEQ_CST))
        sleep_us(1000);
    sleep_us(100000); /* (it waits in the futex by now; the test holds either way) */
    memset(sh, 0, sizeof *sh);
    pid_t wr = child_spawn((const char *[]){"writer", p, "3", NULL},
                           (const char *[]){"MMS_CRASH", "commit.apply:1", NULL});
    int st;
    if (!child_end(wr, 60, &st) || !WIFSIGNALED(st))
        FAILF("the writer ended with %s", child_status(st));
    ASSERT_EQ(GET(sh->ok), 0); /* it died in its first commit, after the commit point */
    for (double t0 = now_us(); !__atomic_load_n(&iw.done, __ATOMIC_SEQ_CST);)
        if (now_us() - t0 > 20e6)
            FAILF("the waiter never saw the commit of the writer that died applying it");
        else
            sleep_us(1000);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    OK(iw.r);
    ASSERT_EQ(iw.now, txn + 1);
    OK(mms_read_begin(ws));
    ASSERT_EQ(counter_of(ws), 1);
    OK(mms_read_end(ws));
    /* mms_read_begin_latest, after the second commit's writer died so. */
    pid_t wr2 = child_spawn((const char *[]){"writer", p, "3", NULL},
                            (const char *[]){"MMS_CRASH", "commit.apply:1", NULL});
    if (!child_end(wr2, 60, &st) || !WIFSIGNALED(st))
        FAILF("the writer ended with %s", child_status(st));
    OK(mms_read_begin_latest(ws, 20000));
    ASSERT_EQ(mms_txn_id(ws), txn + 2);
    ASSERT_EQ(counter_of(ws), 2); /* (setting 1 again committed nothing) */
    OK(mms_read_end(ws));
    verify_ok(ws);
    OK(mms_close(ws));
    rmrf(p);
}

/* The bound counts what the backlog holds: commits that change again the
 * pages that wait already add nothing to it (their shadows exist). It
 * counted every page the commit wrote on top of the shadows, so that a
 * writer changing the same 10 pages over and over was refused at a bound
 * of 16 (MMS_EBUSY; without MMS_BACKLOG_ERROR it waited for the reader)
 * with 11 pages held. */
TEST(bound_same_pages)
{
    const char *p = shm_tpath("bl_same");
    mms_store *w = setup(p);
    OK(mms_close(w));
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_BACKLOG_ERROR;
    o.max_backlog = 16 * 4096;
    OK(mms_open(p, &o, &w));
    mms_ref big;
    OK(mms_txn_begin(w, 0));
    OK(mms_zalloc(w, 10 * 4096, &big));
    OK(mms_txn_commit(w));
    pid_t pid = spawn_reader(p, 0);
    for (int k = 1; k <= 20; k++) {
        OK(mms_txn_begin(w, 0));
        char *b = mms_deref(w, big);
        for (int pg = 0; pg < 10; pg++)
            b[pg * 4096 + 8] = (char)k;
        int r = mms_txn_commit(w);
        if (r)
            FAILF("commit %d over the same 10 pages: %s (%s); the backlog holds %llu KB", k,
                  mms_strerror(r), mms_errdetail(),
                  (unsigned long long)(info(w)->backlog_bytes >> 10));
        ASSERT_LE(info(w)->backlog_bytes, o.max_backlog);
    }
    ASSERT(info(w)->published_txn < info(w)->committed_txn); /* all of it waited */
    reader_leaves(pid);
    OK(mms_read_begin_latest(w, 30000));
    for (int pg = 0; pg < 10; pg++)
        ASSERT_EQ(((char *)mms_deref(w, big))[pg * 4096 + 8], 20);
    OK(mms_read_end(w));
    verify_ok(w);
    OK(mms_close(w));
    rmrf(p);
}

static void *leave_later(void *arg)
{
    (void)arg;
    sleep_us(300000);
    PUB(sh->leave, 1);
    return NULL;
}

/* A store at p whose writer (returned) has a backlog bound of 64 pages
 * (flags: MMS_BACKLOG_ERROR or 0) and a committed object of size bytes
 * (*big), and a reader inside, spawned after that commit (*pid). */
static mms_store *bounded(const char *p, unsigned flags, size_t size, mms_ref *big, pid_t *pid)
{
    mms_store *w = setup(p);
    OK(mms_close(w));
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    o.max_backlog = 64 * 4096;
    OK(mms_open(p, &o, &w));
    OK(mms_txn_begin(w, 0));
    OK(mms_zalloc(w, size, big));
    OK(mms_txn_commit(w));
    *pid = spawn_reader(p, 0);
    return w;
}

/* The bound: MMS_BACKLOG_ERROR fails the commit and keeps the transaction;
 * the default waits for the readers inside. */
TEST(bound)
{
    const char *p = shm_tpath("bl3");
    mms_ref big;
    pid_t pid;
    mms_store *w = bounded(p, MMS_BACKLOG_ERROR, 2 << 20, &big, &pid);
    int refused = 0;
    uint64_t k;
    for (k = 0; k < 200 && !refused; k++) {
        OK(mms_txn_begin(w, 0));
        memset((char *)mms_deref(w, big) + k * 4096 * 4, (int)k + 1, 4096 * 4);
        int r = mms_txn_commit(w);
        if (r == MMS_EBUSY) {
            refused = 1;
            ASSERT(strstr(mms_errdetail(), "wait for readers"));
        } else {
            OK(r);
        }
    }
    ASSERT(refused);
    /* Still open: the stores are there, abort works. */
    ASSERT_EQ(((char *)mms_deref(w, big))[(k - 1) * 4096 * 4], (char)k);
    FAILS(mms_txn_commit(w), MMS_EBUSY);
    reader_leaves(pid);
    OK(mms_txn_commit(w)); /* applied when the reader left: room again */
    fprintf(stderr, "   MMS_BACKLOG_ERROR: refused at commit %llu, committed after the reader "
            "left\n", (unsigned long long)k);
    OK(mms_close(w));
    /* The default: the commit at the bound waits for the reader, which
     * leaves a moment later (told by a thread); every commit succeeds. */
    mms_options o;
    mms_options_init(&o);
    o.max_backlog = 64 * 4096;
    OK(mms_open(p, &o, &w));
    pid = spawn_reader(p, 0);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, leave_later, NULL), 0);
    uint64_t at = 0;
    for (k = 0; k < 40; k++) {
        OK(mms_txn_begin(w, 0));
        memset((char *)mms_deref(w, big) + (k % 100) * 4096 * 4, (int)k + 2, 4096 * 4);
        OK(mms_txn_commit(w));
        at = k;
    }
    /* 40 commits of 4 pages each do not fit in 64 pages: one waited for
     * the reader, which the thread tells to leave. (Not sh->left: the
     * reader's read_end applies and wakes the commit, and the writer may
     * finish before the reader says it left; CI saw it once.) */
    ASSERT(GET(sh->leave));
    ASSERT_EQ(pthread_join(th, NULL), 0);
    reader_leaves(pid);
    ASSERT_EQ(info(w)->published_txn, info(w)->committed_txn);
    fprintf(stderr, "   default: %llu commits, the reader left, all applied\n",
            (unsigned long long)at + 1);
    verify_ok(w);
    OK(mms_close(w));
    rmrf(p);
}

/* The bound as documented: the first commit to wait is held back whole,
 * however large (a commit is never refused for its size alone); the next
 * one that would pass max_backlog is refused, and the message says how
 * much waits, this commit's share and the bound. (It said "1 commits
 * wait ... (1608 KB held back, the bound is 1024 KB)", counting this
 * commit's pages as held back, and the manual promised "at most
 * max_backlog bytes" while 4 MiB were held with a 1 MiB bound.) */
TEST(bound_first_commit)
{
    const char *p = shm_tpath("bl5");
    mms_ref big;
    pid_t pid;
    mms_store *w = bounded(p, MMS_BACKLOG_ERROR, 2 << 20, &big, &pid);
    OK(mms_txn_begin(w, 0));
    memset(mms_deref(w, big), 1, 128 * 4096); /* twice the bound */
    OK(mms_txn_commit(w));
    ASSERT_GE(info(w)->backlog_bytes, 128 * 4096);
    OK(mms_txn_begin(w, 0));
    memset((char *)mms_deref(w, big) + 200 * 4096, 2, 4096);
    FAILS(mms_txn_commit(w), MMS_EBUSY);
    const char *d = mms_errdetail();
    if (!strstr(d, "1 commit waits for readers") || !strstr(d, "max_backlog, 256 KB") ||
        !strstr(d, "this commit's 4 KB more")) /* its page: the header page has a shadow */
        FAILF("the refusal does not say what waits, this commit's share and the bound: %s", d);
    OK(mms_txn_abort(w));
    reader_leaves(pid);
    verify_ok(w);
    OK(mms_close(w));
    rmrf(p);
}

/* The diagnostics while a writer waits at its bound for a reader that
 * stays inside: every open waits too (new readers wait, so that readers
 * cannot starve the writer), so `mms info` waited silently for as long as
 * the reader stayed -- for ever, for a stuck one -- and so did `mms
 * readers`, the command that would name it. Now `mms readers` reads the
 * lock file without opening the store and answers at once, and `mms info`
 * says on stderr which reader it waits for before it waits. */
struct commit_arg {
    mms_store *w;
    mms_ref big;
    int done;
};

static void *commit_past_bound(void *arg)
{
    struct commit_arg *c = arg;
    OK(mms_txn_begin(c->w, 0));
    memset(mms_deref(c->w, c->big), 3, 80 * 4096);
    OK(mms_txn_commit(c->w)); /* waits for the reader */
    PUB(c->done, 1);
    return NULL;
}

static void *leave_after_2s(void *arg)
{
    (void)arg;
    sleep_us(2000000);
    PUB(sh->leave, 1);
    return NULL;
}

TEST(tools_at_bound)
{
    const char *p = shm_tpath("bl6");
    mms_ref big;
    pid_t pid;
    mms_store *w = bounded(p, 0, 1 << 20, &big, &pid);
    struct commit_arg c = {w, big, 0};
    OK(mms_txn_begin(w, 0));
    memset(mms_deref(w, c.big), 2, 16 * 4096);
    OK(mms_txn_commit(w)); /* held back */
    sleep_us(1100000); /* the reader is now inside longer than reader_limit_ms */
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, commit_past_bound, &c), 0);
    AWAIT(info(w)->published_txn < info(w)->committed_txn, pid, 60, "no commit held back");
    /* The reader leaves in 2 s whatever happens (the tools wait for that
     * if they wait at all): `mms readers` must answer before. */
    pthread_t leaver;
    ASSERT_EQ(pthread_create(&leaver, NULL, leave_after_2s, NULL), 0);
    char args[700], out[8192];
    snprintf(args, sizeof args, "readers '%s'", p);
    int st = run_tool(args, out, sizeof out);
    if (st != 0 || !strstr(out, "HOLDING BACK") || GET(sh->leave))
        FAILF("`mms readers` while the writer waits at its bound exited %d%s:\n%s", st,
              GET(sh->leave) ? ", after the reader left" : "", out);
    ASSERT(!GET(c.done));
    snprintf(args, sizeof args, "info '%s'", p);
    st = run_tool(args, out, sizeof out); /* waits until the reader leaves */
    char want[64];
    snprintf(want, sizeof want, "pid %d has been inside a read transaction", (int)pid);
    if (st != 0 || !strstr(out, want))
        FAILF("`mms info` while the writer waits at its bound did not name the reader (pid "
              "%d), exit %d:\n%s", (int)pid, st, out);
    ASSERT_EQ(pthread_join(leaver, NULL), 0);
    reader_leaves(pid);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT(GET(c.done));
    verify_ok(w);
    OK(mms_close(w));
    rmrf(p);
}

/* MMS_NOSYNC | MMS_BACKLOG_ERROR with no reader at all: the commits that
 * wait are waiting for their sync, not for a reader, so a commit past the
 * bound syncs them and goes on. (It failed MMS_EBUSY, "commits wait for
 * readers to leave", at every retry for ever: the due sync is made past
 * the bound's check.) */
TEST(bound_nosync_alone)
{
    const char *p = shm_tpath("bl4");
    mms_store *w = setup(p);
    OK(mms_close(w));
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_NOSYNC | MMS_BACKLOG_ERROR;
    o.max_backlog = 4096;
    OK(mms_open(p, &o, &w));
    mms_ref big;
    OK(mms_txn_begin(w, 0));
    OK(mms_zalloc(w, 1 << 20, &big));
    OK(mms_txn_commit(w));
    for (uint64_t k = 0; k < 20; k++) {
        OK(mms_txn_begin(w, 0));
        memset((char *)mms_deref(w, big) + k * 4096 * 4, (int)k + 1, 4096 * 4);
        OK(mms_txn_commit(w));
    }
    verify_ok(w);
    OK(mms_close(w));
    rmrf(p);
}

/* A writer killed with a backlog: the next open gives every commit it made.
 * A reader killed inside: its slot goes, the backlog drains. */
static int child_writer(const char *path, const char *arg)
{
    /* "n" before the count: in MMS_NOSYNC; "w" after it: killed inside a
     * write transaction (holding the writer lock) after the commits. */
    mms_store *s = open_flags(path, arg[0] == 'n' ? MMS_NOSYNC : 0);
    char *end;
    uint64_t n = strtoull(arg + (arg[0] == 'n'), &end, 10);
    for (uint64_t i = 1; i <= n; i++) {
        commit_counter(s, i);
        PUB(sh->ok, i);
    }
    if (*end == 'w') {
        OK(mms_txn_begin(s, 0));
        MMS_AT(s, struct root, mms_root(s))->counter = 1000;
    }
    raise(SIGKILL);
    return 0;
}

TEST(kills)
{
    const char *p = shm_tpath("bl4");
    mms_store *w = setup(p);
    OK(mms_close(w));
    pid_t rd = spawn_reader(p, 1);
    pid_t wr = child_spawn((const char *[]){"writer", p, "50", NULL}, NULL);
    int st;
    if (!child_end(wr, 60, &st) || !WIFSIGNALED(st))
        FAILF("the writer ended with %s", child_status(st));
    ASSERT_EQ(GET(sh->ok), 50);
    /* The reader still pins the old state; a new handle sees what was
     * applied, a latest read waits for the reader. */
    mms_store *s = open_flags(p, MMS_RDONLY);
    ASSERT_EQ(info(s)->committed_txn, info(s)->published_txn + 50);
    PUB(sh->killme, 1);
    if (!child_end(rd, 60, &st) || !WIFSIGNALED(st))
        FAILF("the reader ended with %s", child_status(st));
    /* Nobody left but a reader that died inside: this read applies. */
    OK(mms_read_begin_latest(s, 30000));
    ASSERT_EQ(counter_of(s), 50);
    OK(mms_read_end(s));
    OK(mms_close(s));
    s = open_flags(p, 0);
    ASSERT_EQ(counter_of(s), 50);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* The next writer after one that died: two commits that add 1 each to the
 * counter it finds (reported in seen_counter), then close. */
static int child_next_writer(const char *path)
{
    mms_store *s = open_flags(path, 0);
    OK(mms_txn_begin(s, 0));
    uint64_t c = counter_of(s);
    PUB(sh->seen_counter, c);
    MMS_AT(s, struct root, mms_root(s))->counter = c + 1;
    OK(mms_txn_commit(s));
    commit_counter(s, c + 2);
    OK(mms_close(s));
    PUB(sh->late_began, 1);
    return 0;
}

/* The next writer, in a child, while the reader rd stays inside: it must
 * not wait for that reader (DESIGN §4) -- the dead writer's commits (held
 * of them) become its backlog, as another live writer's would -- and it
 * finds the counter at made. Then
 * the reader leaves (its state never moved), and its two commits reach
 * everyone. */
static void next_writer_runs(const char *p, uint64_t made, const char *what)
{
    pid_t nw = child_spawn((const char *[]){"nextwriter", p, "0", NULL}, NULL);
    int st;
    if (!child_end(nw, 60, &st))
        FAILF("%s: the next writer still waits, 60 s later, for the reader inside", what);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("%s: the next writer ended with %s", what, child_status(st));
    if (GET(sh->seen_counter) != made)
        FAILF("%s: the next writer found counter %llu, not the dead writer's %llu", what,
              (unsigned long long)GET(sh->seen_counter), (unsigned long long)made);
    ASSERT(!GET(sh->left)); /* the reader is still inside */
}

static void next_writer_beside(const char *p, pid_t rd, uint64_t made, uint64_t held,
                               const char *what, mms_store *keep)
{
    next_writer_runs(p, made, what);
    mms_store *s = open_flags(p, MMS_RDONLY);
    ASSERT_EQ(info(s)->committed_txn, info(s)->published_txn + held + 2);
    OK(mms_close(s));
    reader_leaves(rd);
    /* keep, a handle of the parent's idle since before the kill, keeps the
     * store open: the reader applied the commits as it left, and nothing
     * needed a recovery (which would have emptied the journal). */
    mms_info *in = info(keep);
    ASSERT_EQ(in->published_txn, in->committed_txn);
    if (in->journal_bytes == 0)
        FAILF("%s: the commits were recovered, not applied, once the reader left", what);
    OK(mms_close(keep));
    ASSERT_EQ(final_counter(p, false), made + 2);
}

/* A writer killed with commits the reader inside holds back -- inside a
 * transaction after its last commit (MMS_NOSYNC too: not synced yet), between its journal write and its count, before
 * its journal write: the next writer begins at once with every commit the
 * journal holds (the one written but not counted too: recovery would
 * replay it), and commits; the reader's state never moves. */
TEST(next_writer_no_wait)
{
    static const struct {
        const char *arg, *crash;
        uint64_t made;
    } k[] = {
        {"40w", NULL, 40},
        {"n40w", NULL, 40},
        {"5", "commit.journal_synced:3", 3},
        {"5", "commit.journal_write:3", 2},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const char *p = shm_tpath("bl_next");
        mms_store *w = setup(p);
        OK(mms_close(w));
        mms_store *keep = open_flags(p, MMS_RDONLY);
        pid_t rd = spawn_reader(p, 0);
        pid_t wr = child_spawn((const char *[]){"writer", p, k[i].arg, NULL},
                               k[i].crash ? (const char *[]){"MMS_CRASH", k[i].crash, NULL}
                                          : NULL);
        int st;
        if (!child_end(wr, 60, &st) || !WIFSIGNALED(st))
            FAILF("writer %s (%s) ended with %s", k[i].arg, k[i].crash ? k[i].crash : "-",
                  child_status(st));
        ASSERT_GE(GET(sh->ok), k[i].made - 1);
        PUB(sh->ok, 0); /* the reader's from now on: 2 if its state moved */
        next_writer_beside(p, rd, k[i].made, k[i].made, k[i].crash ? k[i].crash : k[i].arg,
                           keep);
    }
}

/* A checkpointer killed at point (MMS_CRASH), holding the writer lock. */
static int child_checkpointer(const char *path)
{
    mms_store *s = open_flags(path, 0);
    OK(mms_checkpoint(s));
    return 1; /* not killed: the parent says so */
}

/* A checkpoint killed with a reader inside (every commit published: it
 * holds none back), after it wrote the journal's new header slot and
 * before the shared state said so, or before it stored the new apply
 * position: the next writer begins at once, and its commits, held back by
 * the reader, are applied from the new epoch when it leaves. */
TEST(next_writer_after_checkpoint)
{
    static const char *const points[] = {"checkpoint.slot_written:1", "checkpoint.reset:1"};
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
        const char *p = shm_tpath("bl_nextck");
        mms_store *w = setup(p); /* kept open: its close would checkpoint */
        commit_counter(w, 3);
        pid_t rd = spawn_reader(p, 0);
        ASSERT_EQ(GET(sh->seen_counter), 3);
        pid_t ck = child_spawn((const char *[]){"checkpointer", p, "0", NULL},
                               (const char *[]){"MMS_CRASH", points[i], NULL});
        int st;
        if (!child_end(ck, 60, &st) || !WIFSIGNALED(st))
            FAILF("%s: the checkpointer ended with %s", points[i], child_status(st));
        next_writer_beside(p, rd, 3, 0, points[i], w);
    }
}

/* gate_kill's writer: commits that each set the counter to k and fill page
 * k - 1 of the big object (sh->big) with k, with a backlog bound of 64
 * pages, until one waits at the bound with the gate closed (a reader is
 * inside), where the crash point gate.hold kills it. */
enum { GATE_PAGES = 256, GATE_BIG = GATE_PAGES * 4096 };
static int child_bound_writer(const char *path)
{
    mms_options o;
    mms_options_init(&o);
    o.max_backlog = 64 * 4096;
    mms_store *s = NULL;
    OK(mms_open(path, &o, &s));
    for (uint64_t k = 1; k < GATE_PAGES; k++) {
        OK(mms_txn_begin(s, 0));
        MMS_AT(s, struct root, mms_root(s))->counter = k;
        memset((char *)mms_deref(s, GET(sh->big)) + (k - 1) * 4096, (int)k, 4096);
        OK(mms_txn_commit(s));
        PUB(sh->ok, k);
    }
    return 0; /* never at the bound: the parent says so */
}

/* gate_kill's new reader: a whole commit (the counter and every page of the
 * big object agree), reported in sh. */
static int child_late_reader(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    uint64_t c = counter_of(s);
    const unsigned char *b = mms_deref(s, GET(sh->big));
    for (size_t i = 0; i < GATE_BIG; i++)
        if (b[i] != (i / 4096 < c ? (unsigned char)(i / 4096 + 1) : 0)) {
            snprintf(sh->msg, sizeof sh->msg, "torn view: counter %llu, byte %zu of the big "
                     "object is %u", (unsigned long long)c, i, b[i]);
            PUB(sh->ok, 0);
            break;
        }
    PUB(sh->seen_counter, c);
    OK(mms_read_end(s));
    OK(mms_close(s));
    PUB(sh->late_began, 1);
    return 0;
}

/* gate_kill's start: a store with the big object, a reader inside (*rd),
 * and child_bound_writer killed at gate.hold, waiting at its bound with the
 * gate closed; the commits it made. */
static uint64_t writer_killed_at_bound(const char *p, mms_ref *big, pid_t *rd)
{
    mms_store *w = setup(p);
    OK(mms_txn_begin(w, 0));
    OK(mms_zalloc(w, GATE_BIG, big));
    OK(mms_txn_commit(w));
    OK(mms_close(w));
    *rd = spawn_reader(p, 0);
    PUB(sh->big, *big);
    pid_t wr = child_spawn((const char *[]){"boundwriter", p, "0", NULL},
                           (const char *[]){"MMS_CRASH", "gate.hold:1", NULL});
    int st;
    if (!child_end(wr, 60, &st) || !WIFSIGNALED(st))
        FAILF("the writer ended with %s, not killed at the bound", child_status(st));
    uint64_t made = GET(sh->ok);
    ASSERT_GE(made, 1);
    return made;
}

/* A writer killed while it waits at its backlog bound, holding the gate
 * closed for the reader inside: a new reader does not wait for that reader
 * to leave (it waited until then: qa4mp's gatekill), it sees the state the
 * reader pinned, whole; the next writer gets every commit the dead one
 * made, without waiting for that reader either. */
TEST(gate_kill)
{
    const char *p = shm_tpath("bl6");
    mms_ref big;
    pid_t rd;
    uint64_t made = writer_killed_at_bound(p, &big, &rd);
    int st;
    pid_t late = child_spawn((const char *[]){"latereader", p, "0", NULL}, NULL);
    if (!child_end(late, 30, &st))
        FAILF("a new reader still waits at the gate of the writer that died at its bound, "
              "30 s later");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || GET(sh->ok) != made)
        FAILF("the new reader ended with %s: %s", child_status(st), sh->msg);
    ASSERT(GET(sh->late_began));
    ASSERT_EQ(GET(sh->seen_counter), 0); /* the state the reader inside pinned */
    ASSERT(!GET(sh->left));               /* ... which is still inside */
    /* The next writer takes every commit the dead one made over at once,
     * the reader still inside (it waited for it until then), and commits
     * twice. */
    next_writer_runs(p, made, "gate_kill");
    reader_leaves(rd);
    mms_store *w = open_flags(p, 0);
    OK(mms_txn_begin(w, 0));
    ASSERT_EQ(counter_of(w), made + 2);
    ASSERT_EQ(((unsigned char *)mms_deref(w, big))[made * 4096 - 1], (unsigned char)made);
    mms_txn_abort(w);
    ASSERT_EQ(info(w)->published_txn, info(w)->committed_txn);
    verify_ok(w);
    OK(mms_close(w));
    rmrf(p);
}

/* gate_word_kill's reader: open, one read transaction, close. */
static int child_quick_reader(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    PUB(sh->seen_counter, counter_of(s));
    OK(mms_read_end(s));
    OK(mms_close(s));
    PUB(sh->late_began, 1);
    return 0;
}

/* A handle killed as it takes the gate (gate.taken) or as it opens it
 * again (gate.opening), while another handle keeps the store open (so the
 * next opener does not rebuild the lock file): the gate is left closed by
 * a dead holder, and a new reader and a new writer go on, with every
 * commit made. The holder and the gate change in one store, so that no
 * moment shows a closed gate naming nobody (a reader would wait for such a
 * gate for ever: the stress case's "no progress at 'open'"). */
TEST(gate_word_kill)
{
    const char *p = shm_tpath("bl7");
    static const char *const points[] = {"gate.taken:1", "gate.taken:3", "gate.opening:1",
                                         "gate.opening:2"};
    for (size_t k = 0; k < sizeof points / sizeof *points; k++) {
        mms_store *w = setup(p);
        OK(mms_close(w));
        mms_store *keep = open_flags(p, MMS_RDONLY);
        memset(sh, 0, sizeof *sh);
        pid_t wr = child_spawn((const char *[]){"writer", p, "5", NULL},
                               (const char *[]){"MMS_CRASH", points[k], NULL});
        int st;
        if (!child_end(wr, 60, &st) || !WIFSIGNALED(st))
            FAILF("%s: the writer ended with %s", points[k], child_status(st));
        uint64_t made = GET(sh->ok);
        pid_t rd = child_spawn((const char *[]){"quickreader", p, "0", NULL}, NULL);
        if (!child_end(rd, 30, &st))
            FAILF("%s: a new reader still waits at the gate of the dead writer, 30 s later",
                  points[k]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !GET(sh->late_began))
            FAILF("%s: the new reader ended with %s", points[k], child_status(st));
        ASSERT_GE(GET(sh->seen_counter), made);
        memset(sh, 0, sizeof *sh);
        wr = child_spawn((const char *[]){"writer", p, "7", NULL}, NULL);
        if (!child_end(wr, 30, &st) || GET(sh->ok) != 7)
            FAILF("%s: a new writer made %llu of 7 commits (%s)", points[k],
                  (unsigned long long)GET(sh->ok), child_status(st));
        OK(mms_close(keep));
        ASSERT_EQ(final_counter(p, false), 7);
    }
}

/* A handle that reopens the gate of a holder that died with nothing
 * written (gate_kill's writer at its bound) is killed as it does
 * (gate.opening), while the reader the dead writer waited for stays
 * inside: the gate is left closed, and a second new reader goes on at
 * once, without waiting for that reader to leave. Before, the handle took
 * the gate over and then opened it, two stores: killed between them, it
 * left a closed gate that named it and looked touched (gate_untouched, lock
 * file version 5, named the writer), and the next reader took it over to
 * finish the work and waited for the reader inside, as gate_kill's reader
 * once did. */
TEST(gate_reopen_kill)
{
    const char *p = shm_tpath("bl8");
    mms_ref big;
    pid_t rd;
    uint64_t made = writer_killed_at_bound(p, &big, &rd);
    int st;
    pid_t late = child_spawn((const char *[]){"latereader", p, "0", NULL},
                             (const char *[]){"MMS_CRASH", "gate.opening:1", NULL});
    if (!child_end(late, 30, &st))
        FAILF("a new reader still waits at the gate of the writer that died at its bound, "
              "30 s later");
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) && !(WIFEXITED(st) && !WEXITSTATUS(st)))
        FAILF("the reader that opens the dead writer's gate ended with %s", child_status(st));
    PUB(sh->late_began, 0);
    late = child_spawn((const char *[]){"latereader", p, "0", NULL}, NULL);
    if (!child_end(late, 30, &st))
        FAILF("a second new reader waits for the reader inside, 30 s later: the gate the "
              "first one died opening looks as if its holder had written");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || GET(sh->ok) != made)
        FAILF("the second new reader ended with %s: %s", child_status(st), sh->msg);
    ASSERT(GET(sh->late_began));
    ASSERT_EQ(GET(sh->seen_counter), 0); /* the state the reader inside pinned */
    ASSERT(!GET(sh->left));               /* ... which is still inside */
    reader_leaves(rd);
    ASSERT_EQ(final_counter(p, true), made);
}

/* A writer killed as it closes the gate for its commit (gate.taken, in
 * gate_try: it has written nothing, and would have found the reader
 * inside and opened the gate again) while a reader stays inside: a new
 * reader goes on at once, without waiting for that reader to leave. The
 * holder said it had written nothing (gate_untouched, lock file version
 * 5) only after it closed the gate: killed in between, the writer left a
 * gate that looked touched, and the new reader took it over to finish
 * work there was none of, waiting for the reader inside. */
TEST(gate_close_kill)
{
    const char *p = shm_tpath("bl10");
    mms_store *w = setup(p);
    OK(mms_close(w));
    pid_t rd = spawn_reader(p, 0);
    pid_t wr = child_spawn((const char *[]){"writer", p, "3", NULL},
                           (const char *[]){"MMS_CRASH", "gate.taken:1", NULL});
    int st;
    if (!child_end(wr, 60, &st) || !WIFSIGNALED(st) || GET(sh->ok) != 0)
        FAILF("the writer ended with %s, not at gate.taken", child_status(st));
    pid_t q = child_spawn((const char *[]){"quickreader", p, "0", NULL}, NULL);
    if (!child_end(q, 30, &st))
        FAILF("a new reader waits for the reader inside, 30 s later: the gate of the writer "
              "that died closing it looks as if its holder had written");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !GET(sh->late_began))
        FAILF("the new reader ended with %s", child_status(st));
    ASSERT(!GET(sh->left)); /* the reader inside is still inside */
    reader_leaves(rd);
    ASSERT_LE(final_counter(p, true), 1); /* the commit it died in may count */
}

/* A reader that applies the backlog as it leaves is killed after it
 * stored the new apply position (apply_off, apply_crc) and before it
 * published it (gate.publishing), while the writer's handle stays open
 * and idle: a new reader finishes its work and sees every commit. The
 * position and the published txn are three words: before, the new reader
 * applied from the new position as if it were the published txn's, found
 * no group there and failed with MMS_ECORRUPT (the store was whole). */
TEST(apply_position_kill)
{
    const char *p = shm_tpath("bl9");
    mms_store *w = setup(p);
    memset(sh, 0, sizeof *sh);
    pid_t rd = child_spawn((const char *[]){"reader", p, "0", NULL},
                           (const char *[]){"MMS_CRASH", "gate.publishing:1", NULL});
    AWAIT(GET(sh->inside), rd, 60, "the reader did not begin its read transaction");
    for (uint64_t i = 1; i <= 3; i++)
        commit_counter(w, i);
    ASSERT_EQ(info(w)->published_txn + 3, info(w)->committed_txn);
    PUB(sh->leave, 1);
    int st;
    if (!child_end(rd, 60, &st) || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        FAILF("the reader ended with %s, not at gate.publishing", child_status(st));
    memset(sh, 0, sizeof *sh);
    pid_t q = child_spawn((const char *[]){"quickreader", p, "0", NULL}, NULL);
    if (!child_end(q, 30, &st))
        FAILF("a new reader still waits at the gate of the dead reader, 30 s later");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !GET(sh->late_began))
        FAILF("the new reader ended with %s (it could not finish the dead reader's apply)",
              child_status(st));
    ASSERT_EQ(GET(sh->seen_counter), 3);
    commit_counter(w, 4);
    ASSERT_EQ(info(w)->published_txn, info(w)->committed_txn);
    OK(mms_close(w));
    ASSERT_EQ(final_counter(p, false), 4);
    /* The writer's own apply of its commit (whole pages, txn.c), killed
     * there, while a read-only handle keeps the lock file. */
    static const char *const points[] = {"gate.publishing:1", "gate.publishing:3"};
    for (size_t k = 0; k < sizeof points / sizeof *points; k++) {
        w = setup(p);
        OK(mms_close(w));
        mms_store *keep = open_flags(p, MMS_RDONLY);
        memset(sh, 0, sizeof *sh);
        pid_t wr = child_spawn((const char *[]){"writer", p, "5", NULL},
                               (const char *[]){"MMS_CRASH", points[k], NULL});
        if (!child_end(wr, 60, &st) || !WIFSIGNALED(st))
            FAILF("%s: the writer ended with %s", points[k], child_status(st));
        uint64_t made = GET(sh->ok);
        q = child_spawn((const char *[]){"quickreader", p, "0", NULL}, NULL);
        if (!child_end(q, 30, &st))
            FAILF("%s: a new reader still waits at the gate of the dead writer, 30 s later",
                  points[k]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !GET(sh->late_began))
            FAILF("%s: the new reader ended with %s", points[k], child_status(st));
        ASSERT_GE(GET(sh->seen_counter), made + 1); /* the one it died publishing too */
        OK(mms_close(keep));
        ASSERT_EQ(final_counter(p, false), made + 1);
    }
}

/* A long backlog (MMS_NOSYNC, no sync due) of commits that each store into
 * a random page of a 1 MiB object, with aborts between them (some writing
 * pages held for the backlog): after every commit and abort the view is
 * the model's, and where held pages are write-protected a commit finds
 * only the pages it wrote, not the backlog. Reopened, the store is the
 * model's. */
TEST(held_pages_protected)
{
    const char *p = shm_tpath("bl5");
    enum { WORDS = (1 << 20) / 8, TXNS = 600 };
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_NOSYNC;
    o.sync_ms = 600000;
    mms_store *s = NULL;
    OK(mms_open(p, &o, &s));
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_zalloc(s, WORDS * 8, &r));
    OK(mms_root_set(s, r));
    OK(mms_txn_commit(s));
    uint64_t *model = calloc(WORDS, 8);
    ASSERT(model);
    uint64_t rng = 12345;
    for (int t = 0; t < TXNS; t++) {
        OK(mms_txn_begin(s, 0));
        uint64_t *a = mms_ptr(s, mms_root(s));
        int n = 1 + (int)(rng % 3);
        uint64_t idx[3];
        for (int k = 0; k < n; k++) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            idx[k] = (rng >> 20) % WORDS;
            a[idx[k]] = rng;
        }
        if (t % 7 == 3) {
            mms_txn_abort(s);
        } else {
            OK(mms_txn_commit(s));
            for (int k = 0; k < n; k++)
                model[idx[k]] = ((uint64_t *)mms_ptr(s, mms_root(s)))[idx[k]];
            mms_info *in = info(s);
            if (in->held_protected && t > 10)
                ASSERT_LE(in->last_commit.pages_dirty, 40); /* its pages, the header, fewer
                                          than 32 waiting for their batch's protection
                                          (txn.c WP_BATCH): not the backlog (hundreds) */
        }
        const uint64_t *v = mms_ptr(s, mms_root(s));
        if (memcmp(v, model, WORDS * 8) != 0)
            FAILF("txn %d: the view differs from the model", t);
    }
    ASSERT(info(s)->backlog_bytes > (uint64_t)100 * 4096); /* the backlog stayed */
    OK(mms_close(s));
    s = open_flags(p, 0);
    const uint64_t *v = mms_ptr(s, mms_root(s));
    ASSERT(memcmp(v, model, WORDS * 8) == 0);
    verify_ok(s);
    OK(mms_close(s));
    free(model);
    rmrf(p);
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 3, "ROLE PATH ARG");
    if (a) {
        sh = child_page(sizeof *sh);
        if (strcmp(a[0], "reader") == 0)
            return child_reader(a[1], atoi(a[2]));
        if (strcmp(a[0], "boundwriter") == 0)
            return child_bound_writer(a[1]);
        if (strcmp(a[0], "latereader") == 0)
            return child_late_reader(a[1]);
        if (strcmp(a[0], "quickreader") == 0)
            return child_quick_reader(a[1]);
        if (strcmp(a[0], "checkpointer") == 0)
            return child_checkpointer(a[1]);
        if (strcmp(a[0], "nextwriter") == 0)
            return child_next_writer(a[1]);
        return child_writer(a[1], a[2]);
    }
    sh = child_page(sizeof *sh);
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): the order in
     * which commits reach readers is the point; kills are process crashes. */
    signal(SIGABRT, shm_on_abort);
    RUN(commits_never_wait);
    RUN(wait_with_backlog);
    RUN(wait_nosync_idle_writer);
    RUN(wait_reader_killed);
    RUN(latest_cannot_apply);
    RUN(wait_writer_dies_applying);
    RUN(bound);
    RUN(bound_first_commit);
    RUN(bound_same_pages);
    RUN(tools_at_bound);
    RUN(bound_nosync_alone);
    RUN(kills);
    RUN(next_writer_no_wait);
    RUN(next_writer_after_checkpoint);
    RUN(gate_kill);
    RUN(gate_word_kill);
    RUN(gate_reopen_kill);
    RUN(gate_close_kill);
    RUN(apply_position_kill);
    RUN(held_pages_protected);
    shm_cleanup();
    return 0;
}

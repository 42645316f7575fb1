/*
 * test_pinwatch.c -- commits that a reader without a slot held back are
 * published when it leaves, while the writer makes no call (apply.c, the
 * pin watcher, P1-P5).
 *
 * A reader that may not write the lock file (a child that drops to UNPRIV
 * after the store was sealed, as test_unwritable does) cannot apply what
 * it held back when it leaves. Before the watcher, a writer that committed
 * while it was inside and then stayed idle left that commit unpublished
 * until its next call: every reader saw the state before, and the
 * reader's mms_wait for the commit timed out.
 *
 * Needs root; skips otherwise.
 */
#include "test.h"


#include "internal.h" /* mms__os_io_hook: a pause at a crash point */

#define UNW_TAG "pinwatch"
#define UNW_TXN_IS_COUNTER 1
#include "unwritable.h"

#define HANG_S 60
/* The reader's wait for the idle writer's commit: long for a watcher
 * that looks every 2 ms, short beside "never". */
#define PUBLISH_WAIT_MS 20000

struct shm {
    int stage;       /* the parent's step */
    int child_stage; /* the reader's step */
    uint64_t c0;     /* what its first transaction read */
    uint64_t seen;   /* what it read after its wait */
    int wait_err;    /* its mms_wait's result */
    uint64_t wait_us; /* from its read_end to the end of its mms_wait */
};
static struct shm *sh;

static void child_ok(pid_t pid)
{
    int st;
    if (!child_end(pid, HANG_S, &st))
        FAILF("the reader still runs %d s later (killed): it hangs", HANG_S);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the reader ended with %s", child_status(st));
}

#define WAIT_FOR(cond, pid) AWAIT(cond, pid, HANG_S, "timed out waiting for %s", #cond)
#define STAGE_WAIT(cond) AWAIT(cond, getppid(), 3 * HANG_S, "timed out waiting for %s", #cond)

/* Inside one read transaction until stage 1; then waits (mms_wait: it
 * cannot apply, it looks) for the commit made meanwhile, reads it. */
static void holder(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    uint64_t c0 = check_whole(s), t0 = mms_txn_id(s);
    PUB(sh->c0, c0);
    PUB(sh->child_stage, 1);
    STAGE_WAIT(GET(sh->stage) >= 1);
    ASSERT_EQ(check_whole(s), c0); /* the commit made meanwhile is not shown */
    double t1 = now_us();
    OK(mms_read_end(s));
    PUB(sh->child_stage, 2);
    int r = mms_wait(s, t0, PUBLISH_WAIT_MS, NULL); /* for a commit after t0 */
    PUB(sh->wait_us, (uint64_t)(now_us() - t1));
    PUB(sh->wait_err, r);
    PUB(sh->seen, read_once(s));
    PUB(sh->child_stage, 3);
    STAGE_WAIT(GET(sh->stage) >= 2);
    OK(mms_close(s));
}

static unsigned handles(mms_store *s)
{
    mms_info info;
    OK(mms_info_get(s, &info));
    return info.handles;
}

/* idle_writer: the writer commits while the unslotted reader is inside,
 * then makes no call at all; the reader leaves and waits for the commit. */
TEST(idle_writer)
{
    const char *path = store_path("idle");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    mms_store *w = open_flags(path, 0);
    commit_counter(w, 1);
    pid_t pid = unw_child(true, holder, path);
    WAIT_FOR(GET(sh->child_stage) >= 1, pid);
    ASSERT_EQ(GET(sh->c0), 1);
    commit_counter(w, 2); /* it waits in the journal: the reader is inside */
    mms_info info;
    OK(mms_info_get(w, &info));
    ASSERT_EQ(info.committed_txn, 3);
    ASSERT_EQ(info.published_txn, 2);
    /* From here the writer's handle makes no call until the reader is
     * done: only shared memory is looked at. */
    PUB(sh->stage, 1);
    WAIT_FOR(GET(sh->child_stage) >= 3, pid);
    int err = GET(sh->wait_err);
    uint64_t seen = GET(sh->seen);
    fprintf(stderr, "   the reader left; its mms_wait: %s after %llu us; it then read counter "
            "%llu (committed: 2)\n", err ? mms_strerror(err) : "ok", (unsigned long long)GET(sh->wait_us),
            (unsigned long long)seen);
    if (err || seen != 2)
        FAILF("a commit the unslotted reader held back was not published after it left "
              "while the writer made no call (%s after %d ms, counter %llu)",
              err ? mms_strerror(err) : "ok", PUBLISH_WAIT_MS, (unsigned long long)seen);
    /* The watcher's own handle (P2) is closed after its apply. */
    AWAIT(handles(w) == 1, pid, HANG_S, "the watcher's handle stays open: %u handles",
          handles(w));
    PUB(sh->stage, 2);
    child_ok(pid);
    OK(mms_info_get(w, &info));
    ASSERT_EQ(info.published_txn, 3);
    verify_ok(w);
    OK(mms_close(w));
}

/* Not inside: reads, says so, then waits (mms_wait) for a commit after
 * what it read. */
static void waiter(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    uint64_t t0 = mms_txn_id(s);
    PUB(sh->c0, check_whole(s));
    OK(mms_read_end(s));
    PUB(sh->child_stage, 1);
    double t1 = now_us();
    int r = mms_wait(s, t0, PUBLISH_WAIT_MS, NULL);
    PUB(sh->wait_us, (uint64_t)(now_us() - t1));
    PUB(sh->wait_err, r);
    PUB(sh->seen, read_once(s));
    PUB(sh->child_stage, 3);
    STAGE_WAIT(GET(sh->stage) >= 2);
    OK(mms_close(s));
}

/* nosync_idle_writer (P6): an MMS_NOSYNC writer commits once and makes no
 * call; nobody is inside; an unslotted reader waits for the commit. The
 * background syncer makes it durable 1.25 x sync_ms later; nobody applied
 * it (the syncer applies nothing, the reader cannot), so the reader waited
 * until the writer's next call -- for ever. */
TEST(nosync_idle_writer)
{
    const char *path = store_path("nosync");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    mms_store *w = open_flags(path, MMS_NOSYNC);
    pid_t pid = unw_child(true, waiter, path);
    WAIT_FOR(GET(sh->child_stage) >= 1, pid);
    ASSERT_EQ(GET(sh->c0), 0);
    commit_counter(w, 1); /* not durable yet: not applied */
    /* No call on w until the reader is done. */
    WAIT_FOR(GET(sh->child_stage) >= 3, pid);
    int err = GET(sh->wait_err);
    uint64_t seen = GET(sh->seen);
    fprintf(stderr, "   the reader's mms_wait: %s after %llu us; it then read counter %llu "
            "(committed: 1, sync_ms 100)\n", err ? mms_strerror(err) : "ok",
            (unsigned long long)GET(sh->wait_us), (unsigned long long)seen);
    if (err || seen != 1)
        FAILF("an idle MMS_NOSYNC writer's commit was not published after its background "
              "sync (%s after %d ms, counter %llu)", err ? mms_strerror(err) : "ok",
              PUBLISH_WAIT_MS, (unsigned long long)seen);
    PUB(sh->stage, 2);
    child_ok(pid);
    verify_ok(w);
    OK(mms_close(w));
}

/* Inside until stage 1, then out; closes at stage 2. */
static void lingerer(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    PUB(sh->c0, check_whole(s));
    PUB(sh->child_stage, 1);
    STAGE_WAIT(GET(sh->stage) >= 1);
    OK(mms_read_end(s));
    PUB(sh->child_stage, 2);
    STAGE_WAIT(GET(sh->stage) >= 2);
    PUB(sh->seen, read_once(s));
    PUB(sh->child_stage, 3);
    OK(mms_close(s));
}

/* close_while_watching: the writer closes while its watcher looks (the
 * reader still inside): the close stops it (P5) and returns; the commit
 * stays in the journal, and the next owner's handle publishes it. */
TEST(close_while_watching)
{
    const char *path = store_path("close");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    mms_store *w = open_flags(path, 0);
    commit_counter(w, 1);
    pid_t pid = unw_child(true, lingerer, path);
    WAIT_FOR(GET(sh->child_stage) >= 1, pid);
    commit_counter(w, 2);
    commit_counter(w, 3);
    OK(mms_close(w)); /* its checkpoint skips: a reader holds commits back */
    PUB(sh->stage, 1);
    WAIT_FOR(GET(sh->child_stage) >= 2, pid);
    mms_store *o = open_flags(path, 0);
    ASSERT_EQ(read_once(o), 3);
    PUB(sh->stage, 2);
    WAIT_FOR(GET(sh->child_stage) >= 3, pid);
    ASSERT_EQ(GET(sh->seen), 3);
    child_ok(pid);
    verify_ok(o);
    OK(mms_close(o));
}

/* unslotted_begin_beside_a_commit: an unslotted reader begins while the
 * writer is in the middle of a commit (committing set), and the writer
 * finishes it and lets go of the lock before the reader looks at who
 * holds it. The reader took the lock word 0 for a dead writer and refused
 * with MMS_ERECOVER ("a writer died in the middle of a commit"), seen by
 * test_unwritable under load (count23). lock.c pin_unslotted. */
static bool in_commit_hook_armed;
static pid_t beside_pid;

static void commit_hook(enum mms__io_event ev, int fd, const void *addr, uint64_t off,
                        uint64_t len, const char *point)
{
    (void)fd, (void)addr, (void)off, (void)len;
    if (ev == MMS__IO_POINT && in_commit_hook_armed && strcmp(point, "commit.journal_synced") == 0) {
        in_commit_hook_armed = false;
        PUB(sh->stage, 1); /* committing is set: begin now */
        WAIT_FOR(GET(sh->child_stage) >= 1, beside_pid);
    }
}

static void reader_hook(enum mms__io_event ev, int fd, const void *addr, uint64_t off,
                        uint64_t len, const char *point)
{
    (void)fd, (void)addr, (void)off, (void)len;
    if (ev == MMS__IO_POINT && strcmp(point, "pin.unslotted_writer") == 0 &&
        GET(sh->child_stage) == 0) {
        PUB(sh->child_stage, 1); /* it saw committing: let the writer finish */
        STAGE_WAIT(GET(sh->stage) >= 2);
    }
}

static void beside_commit_child(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    mms__os_io_hook(reader_hook);
    STAGE_WAIT(GET(sh->stage) >= 1);
    int r = mms_read_begin(s);
    PUB(sh->wait_err, r);
    if (r == 0) {
        PUB(sh->seen, check_whole(s));
        OK(mms_read_end(s));
    } else {
        fprintf(stderr, "   the reader's begin: %s (%s)\n", mms_strerror(r), mms_errdetail());
    }
    PUB(sh->child_stage, 3);
    OK(mms_close(s));
}

TEST(unslotted_begin_beside_a_commit)
{
    const char *path = store_path("beside");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    mms_store *w = open_flags(path, 0);
    pid_t pid = unw_child(true, beside_commit_child, path);
    beside_pid = pid;
    mms__os_io_hook(commit_hook);
    in_commit_hook_armed = true;
    commit_counter(w, 1); /* pauses at its journal sync until the reader saw it */
    mms__os_io_hook(NULL);
    if (GET(sh->child_stage) < 1)
        FAILF("the reader never looked at the writer in the middle of its commit");
    PUB(sh->stage, 2); /* the lock is free: the reader goes on */
    WAIT_FOR(GET(sh->child_stage) >= 3, pid);
    int err = GET(sh->wait_err);
    if (err)
        FAILF("an unslotted reader that began beside a live writer's commit: %s (the writer "
              "finished and let go of the lock; it is not dead)", mms_strerror(err));
    ASSERT(GET(sh->seen) <= 1);
    child_ok(pid);
    OK(mms_close(w));
}

int main(void)
{
    if (!(sh = unw_start(sizeof *sh)))
        return 0;
    RUN(idle_writer);
    RUN(close_while_watching);
    RUN(nosync_idle_writer);
    RUN(unslotted_begin_beside_a_commit);
    unw_finish();
    return 0;
}

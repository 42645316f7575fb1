/*
 * test_pwqa23.c -- QA of the pin watcher (apply.c, P1-P5): commits that
 * readers without a slot (processes that may not write the lock file)
 * held back are published once they leave, while the owner makes no
 * call; never under a reader; and the watcher thread survives the owner's
 * close, fork and death.
 *
 * Readers are forked children that drop to UNPRIV after the store was
 * sealed (unwritable.h), driven through a shared page; each checks
 * unwritable.h's invariant (check_whole) in every read transaction, twice
 * (an apply under it would show). A slotted reader is such a child that
 * stays root. The owner makes no call between its last commit and the
 * readers' wait for it (mms_wait from the unslotted side, which cannot
 * apply: only the watcher can publish).
 *
 * Needs root; skips otherwise. MMS_SOAK=N runs the loops N times longer.
 * No timing thresholds: the deadlines (PUBLISH_WAIT_MS, HANG_S) only tell
 * "never" from "late".
 */
#include "test.h"

#include <dirent.h>

#define UNW_TAG "pwqa23"
#define UNW_TXN_IS_COUNTER 1
#include "unwritable.h"

#define HANG_S 60
#define PUBLISH_WAIT_MS 30000
#define NR 4

enum { CMD_ENTER = 1, CMD_LEAVE, CMD_WAITFOR, CMD_CHURN, CMD_QUIT };

struct rd {
    int cmd, seq, ack;   /* the parent's command, its number, the last done */
    uint64_t target;     /* CMD_WAITFOR: the counter to wait for */
    uint64_t seen;       /* what it read after the wait */
    uint64_t wait_us;    /* how long the wait took (reported, not checked) */
    uint64_t c_in;       /* what CMD_ENTER read */
    uint64_t reads;      /* read transactions of CMD_CHURN */
    int err;             /* mms_wait's unexpected error */
    uint32_t hold_us;    /* CMD_CHURN: the longest hold */
};

struct shm {
    struct rd rd[NR];
    int churn_stop;
    uint64_t acked;   /* the owner child: last counter whose commit returned */
    int owner_ready;
    int owner_may_die; /* owner_killed: MMS_ERECOVER is expected until it reopens */
    int fork_begin_r, fork_read_r, fork_close_r, fork_done;
};
static struct shm *sh;
static unsigned soak = 1;
static uint64_t seed;

/* ------------------------------------------------------------------------
 * Readers
 * ------------------------------------------------------------------------ */
static void reader_wait(mms_store *s, struct rd *me)
{
    uint64_t target = GET(me->target), c;
    double t0 = now_us();
    for (;;) {
        c = read_once(s);
        if (c >= target || now_us() - t0 > PUBLISH_WAIT_MS * 1e3)
            break;
        int r = mms_wait(s, mms_txn_id(s), 1000, NULL);
        if (r && r != -ETIMEDOUT) {
            PUB(me->err, r);
            break;
        }
    }
    PUB(me->wait_us, (uint64_t)(now_us() - t0));
    PUB(me->seen, c);
}

/* Read transactions back to back, overlapping the other readers' (each
 * held a random 0..hold_us), until churn_stop. */
static void reader_churn(mms_store *s, struct rd *me, uint64_t x)
{
    uint64_t last = 0, n = 0;
    while (!GET(sh->churn_stop)) {
        int r = mms_read_begin(s);
        if (r == MMS_ERECOVER && GET(sh->owner_may_die)) {
            sleep_us(1000); /* an owner killed applying: its next open recovers */
            continue;
        }
        OK(r);
        uint64_t c = check_whole(s);
        if (c < last)
            FAILF("the counter went back: %llu after %llu", (unsigned long long)c,
                  (unsigned long long)last);
        last = c;
        sleep_us((unsigned)(rnd_next(&x) % (me->hold_us + 1)));
        ASSERT_EQ(check_whole(s), c); /* nothing applied under this reader */
        OK(mms_read_end(s));
        n++;
        if (rnd_next(&x) % 4 == 0)
            sleep_us((unsigned)(rnd_next(&x) % 200));
    }
    PUB(me->reads, n);
    PUB(me->c_in, last);
}

static void reader_main(const char *path, int i)
{
    struct rd *me = &sh->rd[i];
    mms_store *s = open_flags(path, MMS_RDONLY);
    uint64_t x = seed ^ ((uint64_t)getpid() << 20);
    for (int done = 0;;) {
        while (GET(me->seq) == done)
            sleep_us(50); /* die_with_parent ends it with the parent */
        switch (GET(me->cmd)) {
        case CMD_ENTER:
            OK(mms_read_begin(s));
            PUB(me->c_in, check_whole(s));
            break;
        case CMD_LEAVE:
            ASSERT_EQ(check_whole(s), GET(me->c_in));
            OK(mms_read_end(s));
            break;
        case CMD_WAITFOR:
            reader_wait(s, me);
            break;
        case CMD_CHURN:
            reader_churn(s, me, x);
            break;
        case CMD_QUIT:
            OK(mms_close(s));
            _exit(0);
        }
        done = GET(me->seq);
        PUB(me->ack, done);
    }
}

/* Fork reader i: unslotted (UNPRIV) or slotted (stays root). */
static pid_t reader_start(const char *path, int i, bool slotted)
{
    memset(&sh->rd[i], 0, sizeof sh->rd[i]);
    sh->rd[i].hold_us = 1500;
    pid_t pid = unw_fork(!slotted);
    if (pid == 0) {
        reader_main(path, i);
        _exit(0);
    }
    return pid;
}

/* Give reader i a command; wait until it is done unless async. */
static void cmd(pid_t pid, int i, int c, uint64_t target, bool async)
{
    struct rd *me = &sh->rd[i];
    PUB(me->cmd, c);
    PUB(me->target, target);
    int seq = INC(me->seq);
    if (!async)
        AWAIT(GET(me->ack) == seq, pid, HANG_S + PUBLISH_WAIT_MS / 1000,
              "reader %d: command %d not done in %d s", i, c, HANG_S);
}

static void cmd_done(pid_t pid, int i)
{
    struct rd *me = &sh->rd[i];
    AWAIT(GET(me->ack) == GET(me->seq), pid, HANG_S + PUBLISH_WAIT_MS / 1000,
          "reader %d: command %d not done in %d s", i, GET(me->cmd), HANG_S);
}

/* Reader i waits (mms_wait, it cannot apply) for counter c: it must see
 * exactly c (the owner made no later commit). */
static void expect_published(pid_t pid, int i, uint64_t c, const char *what)
{
    cmd(pid, i, CMD_WAITFOR, c, false);
    uint64_t seen = GET(sh->rd[i].seen);
    int err = GET(sh->rd[i].err);
    if (err || seen != c)
        FAILF("%s: reader %d saw counter %llu, not %llu, after waiting %.1f s (%s): a "
              "commit held back by unslotted readers stayed unpublished after they left",
              what, i, (unsigned long long)seen, (unsigned long long)c,
              GET(sh->rd[i].wait_us) / 1e6, err ? mms_strerror(err) : "ok");
}

static void reader_quit(pid_t pid, int i)
{
    cmd(pid, i, CMD_QUIT, 0, true);
    int st;
    if (!child_end(pid, HANG_S, &st))
        FAILF("reader %d still runs %d s after its quit (killed): it hangs", i, HANG_S);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("reader %d ended with %s", i, child_status(st));
}

static void info(mms_store *s, uint64_t *committed, uint64_t *published)
{
    mms_info in;
    OK(mms_info_get(s, &in));
    *committed = in.committed_txn;
    *published = in.published_txn;
}

/* ------------------------------------------------------------------------
 * Overlapping unslotted readers
 * ------------------------------------------------------------------------ */
/* Three unslotted readers churn (their byte is rarely free) while the
 * owner commits; the owner stops, then they stop and wait for its last
 * commit. */
static void overlap(unsigned flags, const char *name)
{
    const char *path = store_path(name);
    make_store(path);
    pid_t pid[3];
    for (int i = 0; i < 3; i++)
        pid[i] = reader_start(path, i, false);
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    o.sync_ms = 20;
    mms_store *w;
    OK(mms_open(path, &o, &w));
    uint64_t x = seed, c = 0;
    unsigned rounds = 3;
    for (unsigned round = 0; round < rounds * soak; round++) {
        PUB(sh->churn_stop, 0);
        for (int i = 0; i < 3; i++)
            cmd(pid[i], i, CMD_CHURN, 0, true);
        double t0 = now_us();
        while (now_us() - t0 < 400e3) {
            commit_counter(w, ++c);
            sleep_us((unsigned)(rnd_next(&x) % 3000));
        }
        /* From here the owner makes no call until they saw c. */
        PUB(sh->churn_stop, 1);
        for (int i = 0; i < 3; i++)
            cmd_done(pid[i], i);
        for (int i = 0; i < 3; i++)
            expect_published(pid[i], i, c, name);
        fprintf(stderr, "   round %u: counter %llu; reads %llu %llu %llu; published %.1f, "
                "%.1f, %.1f ms after the last left\n", round, (unsigned long long)c,
                (unsigned long long)GET(sh->rd[0].reads), (unsigned long long)GET(sh->rd[1].reads),
                (unsigned long long)GET(sh->rd[2].reads), GET(sh->rd[0].wait_us) / 1e3,
                GET(sh->rd[1].wait_us) / 1e3, GET(sh->rd[2].wait_us) / 1e3);
    }
    uint64_t com, pub;
    info(w, &com, &pub);
    ASSERT_EQ(pub, com);
    ASSERT_EQ(com, c + 1);
    for (int i = 0; i < 3; i++)
        reader_quit(pid[i], i);
    verify_ok(w);
    OK(mms_close(w));
}

TEST(overlapping_unslotted)
{
    overlap(0, "overlap");
}

TEST(overlapping_unslotted_nosync)
{
    overlap(MMS_NOSYNC, "overlap_nosync");
}

/* The NOSYNC owner's last commit, made while an unslotted reader is
 * inside, not yet durable when it leaves: the syncer makes it durable in
 * the background (S5); the writer makes no call.
 * Before P6 (apply.c) it was never published (the reader's wait timed
 * out at counter 1): the commit was not durable, so commit_apply tried no
 * gate and kicked no watcher; the syncer that made it durable applied
 * nothing, and the only other handle, the unslotted reader, cannot apply.
 * Now the syncer's sync wakes the watcher. */
TEST(nosync_commit_left_by_quick_reader)
{
    const char *path = store_path("nosync_quick");
    make_store(path);
    pid_t pid = reader_start(path, 0, false);
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_NOSYNC;
    o.sync_ms = 50;
    mms_store *w;
    OK(mms_open(path, &o, &w));
    commit_counter(w, 1);
    OK(mms_checkpoint(w));
    for (uint64_t c = 2; c < 2 + 3 * soak; c++) {
        cmd(pid, 0, CMD_ENTER, 0, false);
        commit_counter(w, c); /* not durable yet: it waits for the sync */
        cmd(pid, 0, CMD_LEAVE, 0, false);
        expect_published(pid, 0, c, "nosync, reader left before the sync");
    }
    reader_quit(pid, 0);
    verify_ok(w);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * An unslotted reader killed inside: the kernel drops its lock
 * ------------------------------------------------------------------------ */
TEST(unslotted_reader_killed_inside)
{
    const char *path = store_path("killed_reader");
    make_store(path);
    pid_t waiter = reader_start(path, 1, false);
    mms_store *w = open_flags(path, 0);
    uint64_t c = 0;
    commit_counter(w, ++c);
    for (unsigned k = 0; k < 3 * soak; k++) {
        pid_t pid = reader_start(path, 0, false);
        cmd(pid, 0, CMD_ENTER, 0, false);
        commit_counter(w, ++c); /* held back: the reader is inside */
        uint64_t com, pub;
        info(w, &com, &pub);
        ASSERT_LT(pub, com);
        kill(pid, SIGKILL);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        expect_published(waiter, 1, c, "unslotted reader killed inside");
    }
    reader_quit(waiter, 1);
    verify_ok(w);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * A slotted reader beside an unslotted one
 * ------------------------------------------------------------------------ */
TEST(slotted_and_unslotted)
{
    const char *path = store_path("mixed");
    make_store(path);
    pid_t u = reader_start(path, 0, false), sl = reader_start(path, 2, true);
    mms_store *w = open_flags(path, 0);
    uint64_t c = 0;
    commit_counter(w, ++c);
    for (unsigned k = 0; k < 4 * soak; k++) {
        cmd(u, 0, CMD_ENTER, 0, false);
        cmd(sl, 2, CMD_ENTER, 0, false);
        commit_counter(w, ++c);
        if (k % 2 == 0) { /* the slotted reader first: its end finds the byte held */
            cmd(sl, 2, CMD_LEAVE, 0, false);
            cmd(u, 0, CMD_LEAVE, 0, false);
        } else { /* the unslotted first: the slotted one applies as it leaves */
            cmd(u, 0, CMD_LEAVE, 0, false);
            cmd(sl, 2, CMD_LEAVE, 0, false);
        }
        expect_published(u, 0, c, k % 2 ? "unslotted left, then slotted"
                                         : "slotted left, then unslotted");
        expect_published(sl, 2, c, "the slotted reader");
    }
    reader_quit(u, 0);
    reader_quit(sl, 2);
    verify_ok(w);
    OK(mms_close(w));
}

/* A slotted reader (the owner's user: a tool's read, say) and an unslotted
 * one are both inside when the owner commits; the slotted one leaves and
 * closes its handle, then the unslotted one leaves. The owner's commit
 * found a slotted reader inside; the slotted reader's end found the
 * unslotted one and kicked a watcher of its own handle, which its close
 * stopped. The owner makes no call: the commit must be published all the
 * same. */
TEST(slotted_reader_closes_first)
{
    const char *path = store_path("slotted_closes");
    make_store(path);
    pid_t u = reader_start(path, 0, false);
    mms_store *w = open_flags(path, 0);
    uint64_t c = 0;
    commit_counter(w, ++c);
    for (unsigned k = 0; k < 2 * soak; k++) {
        pid_t sl = reader_start(path, 2, true);
        cmd(u, 0, CMD_ENTER, 0, false);
        cmd(sl, 2, CMD_ENTER, 0, false);
        commit_counter(w, ++c);
        cmd(sl, 2, CMD_LEAVE, 0, false);
        reader_quit(sl, 2);
        cmd(u, 0, CMD_LEAVE, 0, false);
        expect_published(u, 0, c, "the slotted reader closed, then the unslotted one left");
    }
    reader_quit(u, 0);
    verify_ok(w);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * mms_close racing the watcher
 * ------------------------------------------------------------------------ */
/* Commit under a reader, let it go, close at once: the watcher may be
 * looking, opening its handle, or applying. No hang, no lost commit. */
TEST(close_races_watcher)
{
    const char *path = store_path("close_race");
    make_store(path);
    pid_t pid = reader_start(path, 0, false);
    uint64_t x = seed, c = 0;
    mms_store *w = open_flags(path, 0);
    commit_counter(w, ++c);
    OK(mms_close(w));
    unsigned n = 40 * soak;
    for (unsigned k = 0; k < n; k++) {
        w = open_flags(path, 0);
        ASSERT_EQ(read_once(w), c); /* the open applied what the last close left */
        cmd(pid, 0, CMD_ENTER, 0, false);
        commit_counter(w, ++c);
        cmd(pid, 0, CMD_LEAVE, 0, true);
        unsigned d = (unsigned)(rnd_next(&x) % 4);
        if (d)
            sleep_us(d * 700 - 600);
        OK(mms_close(w));
        cmd_done(pid, 0);
        if (k % 10 == 9) {
            w = open_flags(path, 0);
            ASSERT_EQ(read_once(w), c);
            verify_ok(w);
            OK(mms_close(w));
        }
    }
    w = open_flags(path, 0);
    ASSERT_EQ(read_once(w), c);
    expect_published(pid, 0, c, "after the closes");
    reader_quit(pid, 0);
    verify_ok(w);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * Open/close cycles: no thread, no descriptor left
 * ------------------------------------------------------------------------ */
static unsigned count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    ASSERT(d);
    unsigned n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

TEST(cycles_leak_nothing)
{
    const char *path = store_path("cycles");
    make_store(path);
    pid_t pid = reader_start(path, 0, false);
    mms_store *w = open_flags(path, 0);
    uint64_t c = 0;
    commit_counter(w, ++c);
    OK(mms_close(w));
    unsigned tasks0 = count_dir("/proc/self/task"), fds0 = count_dir("/proc/self/fd");
    unsigned n = 30 * soak;
    for (unsigned k = 0; k < n; k++) {
        cmd(pid, 0, CMD_ENTER, 0, false);
        w = open_flags(path, 0);
        commit_counter(w, ++c); /* starts the watcher: the reader is inside */
        if (k % 2) { /* the watcher applies, then sleeps */
            cmd(pid, 0, CMD_LEAVE, 0, false);
            expect_published(pid, 0, c, "cycles");
        }
        ASSERT_GE(count_dir("/proc/self/task"), tasks0 + 1); /* the watcher runs */
        OK(mms_close(w));
        if (k % 2 == 0)
            cmd(pid, 0, CMD_LEAVE, 0, false);
    }
    unsigned tasks1 = count_dir("/proc/self/task"), fds1 = count_dir("/proc/self/fd");
    fprintf(stderr, "   %u cycles: threads %u -> %u, descriptors %u -> %u\n", n, tasks0,
            tasks1, fds0, fds1);
    ASSERT_EQ(tasks1, tasks0);
    ASSERT_EQ(fds1, fds0);
    w = open_flags(path, 0);
    ASSERT_EQ(read_once(w), c);
    reader_quit(pid, 0);
    verify_ok(w);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * fork() while the watcher runs
 * ------------------------------------------------------------------------ */
TEST(fork_while_watching)
{
    const char *path = store_path("fork");
    make_store(path);
    pid_t pid = reader_start(path, 0, false), churn[2];
    for (int i = 1; i < 3; i++)
        churn[i - 1] = reader_start(path, i, false);
    mms_store *w = open_flags(path, 0);
    uint64_t c = 0, x = seed;
    commit_counter(w, ++c);
    for (unsigned k = 0; k < 8 * soak; k++) {
        bool busy = k % 2; /* the watcher polls (a reader stays in) or applies */
        if (busy) {
            PUB(sh->churn_stop, 0);
            for (int i = 1; i < 3; i++)
                cmd(churn[i - 1], i, CMD_CHURN, 0, true);
        } else {
            cmd(pid, 0, CMD_ENTER, 0, false);
        }
        commit_counter(w, ++c);
        if (busy)
            sleep_us((unsigned)(rnd_next(&x) % 5000));
        PUB(sh->fork_done, 0);
        fflush(NULL);
        pid_t f = fork();
        ASSERT(f >= 0);
        if (f == 0) {
            PUB(sh->fork_begin_r, mms_txn_begin(w, 0));
            PUB(sh->fork_read_r, mms_read_begin(w));
            PUB(sh->fork_close_r, mms_close(w)); /* frees memory only, joins nothing */
            PUB(sh->fork_done, 1);
            _exit(0);
        }
        int st;
        if (!child_end(f, HANG_S, &st))
            FAILF("the forked child hangs (killed after %d s): its close joined a thread "
                  "it does not have?", HANG_S);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !GET(sh->fork_done))
            FAILF("the forked child ended with %s", child_status(st));
        ASSERT_EQ(GET(sh->fork_begin_r), MMS_EFORK);
        ASSERT_EQ(GET(sh->fork_read_r), MMS_EFORK);
        ASSERT_EQ(GET(sh->fork_close_r), 0);
        if (busy) {
            PUB(sh->churn_stop, 1);
            for (int i = 1; i < 3; i++)
                cmd_done(churn[i - 1], i);
        } else {
            cmd(pid, 0, CMD_LEAVE, 0, false);
        }
        expect_published(pid, 0, c, busy ? "fork while the watcher applies"
                                         : "fork while the watcher polls");
    }
    reader_quit(pid, 0);
    for (int i = 1; i < 3; i++)
        reader_quit(churn[i - 1], i);
    verify_ok(w);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * The owner killed while its watcher polls or applies
 * ------------------------------------------------------------------------ */
static void owner_main(const char *path)
{
    mms_store *w = open_flags(path, 0);
    uint64_t c = read_once(w);
    PUB(sh->owner_ready, 1);
    for (;;) {
        commit_counter(w, ++c);
        PUB(sh->acked, c);
        sleep_us(300);
    }
}

TEST(owner_killed)
{
    const char *path = store_path("owner_killed");
    make_store(path);
    pid_t pid[3];
    for (int i = 0; i < 3; i++)
        pid[i] = reader_start(path, i, false);
    uint64_t x = seed, c = 0;
    {
        mms_store *w = open_flags(path, 0);
        commit_counter(w, ++c);
        OK(mms_close(w));
    }
    PUB(sh->owner_may_die, 1);
    for (unsigned k = 0; k < 6 * soak; k++) {
        PUB(sh->churn_stop, 0);
        for (int i = 0; i < 3; i++)
            cmd(pid[i], i, CMD_CHURN, 0, true);
        PUB(sh->owner_ready, 0);
        PUB(sh->acked, c);
        fflush(NULL);
        pid_t parent = getpid(), o = fork();
        ASSERT(o >= 0);
        if (o == 0) {
            die_with_parent(parent);
            owner_main(path);
            _exit(0);
        }
        AWAIT(GET(sh->owner_ready), o, HANG_S, "the owner did not open");
        uint64_t at = c + 2 + rnd_next(&x) % 30;
        AWAIT(GET(sh->acked) >= at, o, HANG_S, "the owner does not commit");
        if (k % 2) { /* the readers leave: the watcher applies, or is about to */
            PUB(sh->churn_stop, 1);
            sleep_us((unsigned)(rnd_next(&x) % 3000));
        }
        kill(o, SIGKILL);
        int st;
        ASSERT_EQ(waitpid(o, &st, 0), o);
        uint64_t acked = GET(sh->acked);
        PUB(sh->churn_stop, 1);
        for (int i = 0; i < 3; i++)
            cmd_done(pid[i], i);
        mms_store *w = open_flags(path, 0);
        c = read_once(w);
        if (c != acked && c != acked + 1)
            FAILF("after the owner was killed: counter %llu, its last acknowledged commit "
                  "%llu", (unsigned long long)c, (unsigned long long)acked);
        verify_ok(w);
        OK(mms_close(w));
        for (int i = 0; i < 3; i++)
            expect_published(pid[i], i, c, "after the owner died");
    }
    for (int i = 0; i < 3; i++)
        reader_quit(pid[i], i);
    PUB(sh->owner_may_die, 0);
}

int main(void)
{
    if (!(sh = unw_start(sizeof *sh)))
        return 0;
    seed = test_seed("test_pwqa23", 0, &soak, "");
    alarm(600 * soak); /* a hang ends the run with a signal */
    RUN(overlapping_unslotted);
    RUN(overlapping_unslotted_nosync);
    RUN(nosync_commit_left_by_quick_reader);
    RUN(unslotted_reader_killed_inside);
    RUN(slotted_and_unslotted);
    RUN(slotted_reader_closes_first);
    RUN(close_races_watcher);
    RUN(cycles_leak_nothing);
    RUN(fork_while_watching);
    RUN(owner_killed);
    unw_finish();
    return 0;
}

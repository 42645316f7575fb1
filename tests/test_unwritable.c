/*
 * test_unwritable.c -- a store whose files the reader's user may not write
 * (lock.c NOTES, "Readers that cannot write"): owned by root, read through
 * MMS_RDONLY by a child that dropped to an unprivileged uid, while root's
 * writer may run, start later, die mid-commit or recover.
 *
 * THE INVARIANT. The root is {counter, arr}: arr is ARR_N words over
 * several pages that must all equal the counter, and so must every record
 * of the table "rec" (its own region file, which grows by REC_STEP records
 * every 10th commit: 1 + counter / 10 steps); the txn id is counter + 1
 * (txn 1 holds counter 0). A read transaction that sees anything else saw
 * a torn state.
 *
 * Root ignores file permissions, so the readers are forked children that
 * setgid/setuid to UNPRIV first; the test skips when it does not run as
 * root. The stores live in a directory that UNPRIV may search but not
 * write (0755, files 0644).
 */
#include "test.h"
#include "internal.h" /* mms__os_io_hook: a pause at a crash point */

#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>

#define UNW_TAG "unwritable"
#define UNW_TXN_IS_COUNTER 1
#include "unwritable.h"

/* What the parent and its unprivileged child tell each other. */
struct shm {
    int stage;          /* parent's step */
    int child_stage;    /* child's step */
    uint64_t c0;        /* counter the child's read transaction pinned */
    uint64_t last;      /* last counter the child read */
    uint64_t reads;     /* whole read transactions the child made */
    int err;            /* an error code the child met */
    char detail[256];   /* its mms_errdetail() */
};
static struct shm *sh;

static mms_store *open_ro(const char *path)
{
    return open_flags(path, MMS_RDONLY);
}

/* In a mount namespace of its own, the calling process (single-threaded,
 * root) finds /proc's boot id empty: as if it could not be read. */
static bool hide_boot_id(void)
{
    return unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
           mount("/dev/null", "/proc/sys/kernel/random/boot_id", NULL, MS_BIND, NULL) == 0;
}

/* fork(), as this test's children start: output flushed first; in the
 * child, death with the parent (*parent: its pid) and, if no_boot_id, a
 * boot id it cannot read (hide_boot_id), else _exit(no_ns). Returns as
 * fork() does. */
static pid_t fork_child(bool no_boot_id, int no_ns, pid_t *parent)
{
    fflush(NULL);
    *parent = getpid();
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        die_with_parent(*parent);
        if (no_boot_id && !hide_boot_id())
            _exit(no_ns);
    }
    return pid;
}

/* Run fn(path) in a child that is UNPRIV (and, if no_boot_id, cannot read
 * the boot id); returns its pid. */
static pid_t unpriv_in(void (*fn)(const char *path), const char *path, bool no_boot_id)
{
    pid_t parent, pid = fork_child(no_boot_id, 97, &parent);
    if (pid == 0) {
        unw_become_unpriv(parent);
        fn(path);
        _exit(0);
    }
    return pid;
}

static pid_t unpriv(void (*fn)(const char *path), const char *path)
{
    return unpriv_in(fn, path, false);
}

static void child_done(pid_t pid)
{
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("unprivileged child: %s", child_status(st));
}

#define WAIT_FOR(cond, pid) AWAIT(cond, pid, 60, "timed out waiting for %s", #cond)

/* ------------------------------------------------------------------------
 * 1, 4, 6: alone, then a writer that opens after it; refusals; info.
 * ------------------------------------------------------------------------ */
static void alone_child(const char *path)
{
    /* Without MMS_RDONLY: the lock file cannot be opened for writing. */
    mms_options o;
    mms_options_init(&o);
    mms_store *w = NULL;
    FAILS(mms_open(path, &o, &w), -EACCES);
    ASSERT(strstr(mms_errdetail(), "MMS_RDONLY"));
    mms_store *s = open_ro(path);
    ASSERT_EQ(read_once(s), 0);
    /* Write calls fail MMS_ERDONLY; none stores into the lock file (a
     * store there would be a SIGSEGV: it is mapped read-only). */
    FAILS(mms_txn_begin(s, 0), MMS_ERDONLY);
    FAILS(mms_checkpoint(s), MMS_ERDONLY);
    verify_ok(s); /* the published state, pinned: it cannot hold a writer off */
    mms_compact_stats cs;
    FAILS(mms_compact(s, &cs), MMS_ERDONLY);
    unsigned cleared = 7;
    OK(mms_readers_clear_stale(s, &cleared));
    ASSERT_EQ(cleared, 0);
    mms_info info;
    OK(mms_info_get(s, &info));
    ASSERT_EQ(info.published_txn, 1);
    ASSERT_EQ(info.writer_pid, 0);
    size_t n = 99;
    mms_reader_info ri[4];
    OK(mms_readers(s, ri, 4, &n));
    ASSERT_EQ(n, 0); /* no slot: it is not listed */
    PUB(sh->child_stage, 1);
    /* The owner's writer opens now (not alone: this handle holds byte 0)
     * and commits. */
    WAIT_FOR(GET(sh->stage) >= 1, getppid());
    ASSERT_EQ(read_once(s), 20);
    verify_ok(s);
    OK(mms_info_get(s, &info));
    ASSERT_EQ(info.published_txn, 21);
    ASSERT_NE(info.writer_pid, 0); /* the parent holds the writer lock */
    /* `mms verify` as this user checks the published state without
     * waiting for that writer: it does not say it waits. */
    char out[4096], args[600];
    snprintf(args, sizeof args, "verify '%s'", path);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    if (strstr(out, "waiting"))
        FAILF("mms verify as a user who may not write the store says it waits:\n%s", out);
    OK(mms_readers(s, ri, 4, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(ri[0].pid, getppid());
    PUB(sh->child_stage, 2);
    WAIT_FOR(GET(sh->stage) >= 2, getppid());
    /* Its writer closed: alone again, the lock file as it left it. */
    ASSERT_EQ(read_once(s), 21);
    OK(mms_close(s));
    /* And a new open, with nobody there. */
    s = open_ro(path);
    ASSERT_EQ(read_once(s), 21);
    OK(mms_close(s));
}

TEST(unslotted_alone_then_writer)
{
    const char *path = store_path("alone");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    pid_t pid = unpriv(alone_child, path);
    WAIT_FOR(GET(sh->child_stage) >= 1, pid);
    mms_store *w = open_flags(path, 0);
    for (uint64_t c = 1; c <= 20; c++)
        commit_counter(w, c);
    mms_info info;
    OK(mms_info_get(w, &info));
    ASSERT_EQ(info.published_txn, 21); /* nobody inside: applied at once */
    /* Compaction needs the store to itself: the reader holds byte 0. */
    mms_compact_stats cs;
    FAILS(mms_compact(w, &cs), MMS_EBUSY);
    OK(mms_txn_begin(w, 0)); /* the writer lock held: the child sees its pid */
    PUB(sh->stage, 1);
    WAIT_FOR(GET(sh->child_stage) >= 2, pid);
    OK(mms_txn_abort(w));
    commit_counter(w, 21);
    OK(mms_close(w));
    PUB(sh->stage, 2);
    child_done(pid);
    /* The owner opens alone again: the lock file is rebuilt, the store whole. */
    w = open_flags(path, 0);
    verify_ok(w);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * 1, 2: with the owner's writer open; commits never wait for the reader,
 * and its read transaction keeps one whole state.
 * ------------------------------------------------------------------------ */
static void hold_child(const char *path)
{
    mms_store *s = open_ro(path);
    OK(mms_read_begin(s));
    uint64_t c0 = check_whole(s);
    PUB(sh->c0, c0);
    PUB(sh->child_stage, 1);
    /* The writer commits 50 times meanwhile: this state stays. */
    WAIT_FOR(GET(sh->stage) >= 1, getppid());
    ASSERT_EQ(check_whole(s), c0);
    OK(mms_read_end(s));
    PUB(sh->child_stage, 2);
    /* Back to back, while the writer commits. */
    uint64_t last = 0;
    while (GET(sh->stage) < 2) {
        OK(mms_read_begin(s));
        uint64_t c = check_whole(s);
        OK(mms_read_end(s));
        ASSERT_GE(c, last); /* never back */
        last = c;
        PUB(sh->last, c);
        if (INC(sh->reads) % 500 == 0)
            verify_ok(s); /* while the writer commits */
    }
    /* The last commits wait for a handle that can apply them (the
     * writer's mms_wait): this one waits, napping, without writing. */
    OK(mms_read_begin_latest(s, 60000));
    ASSERT_EQ(check_whole(s), GET(sh->c0) + 50 + 200);
    OK(mms_read_end(s));
    OK(mms_close(s));
}

/* mms_readers_unslotted_path's open count; *inside its inside count. */
static unsigned unslotted_open(const char *path, unsigned *inside)
{
    unsigned open;
    OK(mms_readers_unslotted_path(path, &open, inside));
    return open;
}

TEST(unslotted_reader_and_writer)
{
    const char *path = store_path("hold");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    mms_store *w = open_flags(path, 0);
    commit_counter(w, 1);
    pid_t pid = unpriv(hold_child, path);
    WAIT_FOR(GET(sh->child_stage) >= 1, pid);
    uint64_t c0 = GET(sh->c0);
    ASSERT_EQ(c0, 1);
    /* Counted, not timed: each commit returns while the reader stays
     * inside (it waits for stage 1), so none waited for it; and none was
     * published under it. */
    for (uint64_t c = 2; c <= 51; c++)
        commit_counter(w, c);
    mms_info info;
    OK(mms_info_get(w, &info));
    ASSERT_EQ(info.committed_txn, 52);
    ASSERT_EQ(info.published_txn, c0 + 1);
    /* It has no slot: mms_info and mms_readers leave it out, the kernel's
     * lock table counts it, and the tool says so. */
    ASSERT_EQ(info.handles, 1);
    unsigned uo = 9, ui = 9;
    OK(mms_readers_unslotted_path(path, &uo, &ui));
    ASSERT_EQ(uo, 1);
    ASSERT_EQ(ui, 1);
    char out[4096], args[600];
    snprintf(args, sizeof args, "readers '%s'", path);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    if (!strstr(out, "and 1 handle without a slot") || !strstr(out, ", 1 inside a read"))
        FAILF("mms readers did not count the reader without a slot:\n%s", out);
    snprintf(args, sizeof args, "info '%s'", path);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    if (!strstr(out, "handles_without_slot: 1"))
        FAILF("mms info did not count the reader without a slot:\n%s", out);
    ASSERT_EQ(GET(sh->child_stage), 1); /* still inside */
    PUB(sh->stage, 1);
    WAIT_FOR(GET(sh->child_stage) >= 2, pid);
    /* Commits and read transactions interleaved. */
    for (uint64_t c = 52; c <= 251; c++) {
        commit_counter(w, c);
        if (c % 20 == 0) {
            uint64_t r = GET(sh->reads);
            WAIT_FOR(GET(sh->reads) > r, pid);
        }
    }
    /* The last commit is published once no reader is inside. */
    PUB(sh->stage, 2);
    OK(mms_wait(w, 251, 60000, NULL));
    child_done(pid);
    /* The kernel may list the reaped child's locks a moment longer: its
     * lock file is released after its parent saw it end (under load,
     * 100-200 us later, while no process had the file open). */
    WAIT_FOR(unslotted_open(path, &ui) == 0, 0);
    ASSERT_EQ(ui, 0);
    fprintf(stderr, "   %llu whole read transactions beside 250 commits\n",
            (unsigned long long)GET(sh->reads));
    ASSERT_GE(GET(sh->reads), 10);
    verify_ok(w);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * The count of handles without a slot while other locks come and go: the
 * kernel lists its lock table (/proc/locks) a piece at a time, and a piece
 * starts at a line number, so two locks taken anywhere in the system
 * between two pieces, in lines before the seam, list the seam's last two
 * lines again (os.c, mms__os_ofd_shared_count). Here they are taken at
 * the first seam (crash point os.locks_piece), at the head of the lines:
 * a lock goes to the head of the list of the CPU that takes it, and CPU
 * 0's list is listed first. The handles are stood in for by descriptors
 * of the lock file holding byte 0 shared, as an unslotted reader's does;
 * each also holds a byte of its own, so no two lines are alike.
 * ------------------------------------------------------------------------ */
#define STANDINS 75
static int seam_fd = -1;
static int seam_calls;

static void seam_hook(enum mms__io_event ev, int fd, const void *addr, uint64_t off,
                      uint64_t len, const char *point)
{
    (void)fd, (void)addr, (void)off, (void)len;
    if (ev != MMS__IO_POINT || strcmp(point, "os.locks_piece") != 0 || seam_calls++)
        return;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
    ASSERT_EQ(fcntl(seam_fd, F_OFD_SETLK, &fl), 0);
    fl.l_start = 7;
    ASSERT_EQ(fcntl(seam_fd, F_OFD_SETLK, &fl), 0);
}

TEST(unslotted_count_while_locks_change)
{
    const char *path = store_path("seam");
    make_store(path);
    cpu_set_t was, cpu0;
    ASSERT_EQ(sched_getaffinity(0, sizeof was, &was), 0);
    if (!CPU_ISSET(0, &was)) {
        fprintf(stderr, "SKIP: CPU 0 is not ours (its list of locks is listed first)\n");
        return;
    }
    CPU_ZERO(&cpu0);
    CPU_SET(0, &cpu0);
    ASSERT_EQ(sched_setaffinity(0, sizeof cpu0, &cpu0), 0);
    mms_store *w = open_flags(path, 0);
    char lock[700], other[700];
    snprintf(lock, sizeof lock, "%s/lock", path);
    snprintf(other, sizeof other, "%s/other", path);
    int fds[STANDINS];
    for (int i = 0; i < STANDINS; i++) {
        ASSERT((fds[i] = open(lock, O_RDONLY | O_CLOEXEC)) >= 0);
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        ASSERT_EQ(fcntl(fds[i], F_OFD_SETLK, &fl), 0);
        fl.l_start = 100000 + i;
        ASSERT_EQ(fcntl(fds[i], F_OFD_SETLK, &fl), 0);
    }
    ASSERT((seam_fd = open(other, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) >= 0);
    unsigned uo = 9, ui = 9;
    OK(mms_readers_unslotted_path(path, &uo, &ui)); /* no seam moved */
    ASSERT_EQ(uo, STANDINS);
    seam_calls = 0;
    mms__os_io_hook(seam_hook);
    int r = mms_readers_unslotted_path(path, &uo, &ui);
    mms__os_io_hook(NULL);
    fprintf(stderr, "   %d seams read; %u without a slot, %u inside\n", seam_calls, uo, ui);
    OK(r);
    ASSERT(seam_calls > 0); /* the table was listed in more than one piece */
    ASSERT_EQ(uo, STANDINS);
    ASSERT_EQ(ui, 0);
    close(seam_fd);
    for (int i = 0; i < STANDINS; i++)
        close(fds[i]);
    ASSERT_EQ(sched_setaffinity(0, sizeof was, &was), 0);
    OK(mms_readers_unslotted_path(path, &uo, &ui));
    ASSERT_EQ(uo, 0);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * An applier that must wait (a checkpoint applies the backlog with
 * mms__gate_close): it waits for the unslotted reader, never applies
 * under it.
 * ------------------------------------------------------------------------ */
struct ckpt {
    mms_store *w;
    int done, r;
};

static void *ckpt_main(void *arg)
{
    struct ckpt *k = arg;
    k->r = mms_checkpoint(k->w);
    PUB(k->done, 1);
    return NULL;
}

static void linger_child(const char *path)
{
    mms_store *s = open_ro(path);
    OK(mms_read_begin(s));
    uint64_t c0 = check_whole(s);
    PUB(sh->c0, c0);
    PUB(sh->child_stage, 1);
    WAIT_FOR(GET(sh->stage) >= 1, getppid()); /* the checkpoint began */
    sleep_us(200000); /* room for a checkpoint that would not wait */
    ASSERT_EQ(check_whole(s), c0);
    PUB(sh->err, GET(sh->stage) >= 2 ? 1 : 0); /* it finished under us? */
    OK(mms_read_end(s));
    PUB(sh->child_stage, 2);
    WAIT_FOR(GET(sh->stage) >= 2, getppid());
    ASSERT_EQ(read_once(s), 6);
    OK(mms_close(s));
}

TEST(unslotted_reader_checkpoint_waits)
{
    const char *path = store_path("ckpt");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    mms_store *w = open_flags(path, 0);
    pid_t pid = unpriv(linger_child, path);
    WAIT_FOR(GET(sh->child_stage) >= 1, pid);
    for (uint64_t c = 1; c <= 6; c++)
        commit_counter(w, c);
    struct ckpt k = {w, 0, 0};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, ckpt_main, &k), 0);
    PUB(sh->stage, 1);
    WAIT_FOR(GET(k.done), pid);
    PUB(sh->stage, 2);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    OK(k.r);
    ASSERT_EQ(GET(sh->child_stage), 2); /* it finished after the reader left */
    ASSERT_EQ(GET(sh->err), 0);
    mms_info info;
    OK(mms_info_get(w, &info));
    ASSERT_EQ(info.published_txn, 7);
    child_done(pid);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * 3: the reader dies inside a read transaction.
 * ------------------------------------------------------------------------ */
static void die_inside_child(const char *path)
{
    mms_store *s = open_ro(path);
    OK(mms_read_begin(s));
    PUB(sh->c0, check_whole(s));
    PUB(sh->child_stage, 1);
    for (;;)
        pause(); /* killed here */
}

TEST(unslotted_reader_killed_inside)
{
    const char *path = store_path("killed");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    mms_store *w = open_flags(path, 0);
    pid_t pid = unpriv(die_inside_child, path);
    WAIT_FOR(GET(sh->child_stage) >= 1, pid);
    commit_counter(w, 1);
    mms_info info;
    OK(mms_info_get(w, &info));
    ASSERT_EQ(info.published_txn, 1); /* held back by the reader */
    kill(pid, SIGKILL);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    commit_counter(w, 2);
    /* The kernel let go of its byte: published, by this commit or -- when
     * the writer's pin watcher (apply.c P1-P5) was applying txn 2 as it
     * came and it found the gate shut -- by the watcher's next apply, a
     * moment later. */
    AWAIT((mms_info_get(w, &info) == 0 && info.published_txn == 3), 0, 60,
          "published %llu, committed 3", (unsigned long long)info.published_txn);
    for (uint64_t c = 3; c <= 10; c++)
        commit_counter(w, c);
    OK(mms_info_get(w, &info));
    ASSERT_EQ(info.published_txn, 11);
    OK(mms_close(w));
}

/* ------------------------------------------------------------------------
 * 5: a writer killed in the middle of a commit, then an unslotted reader:
 * MMS_ERECOVER, never a torn read; the owner recovers, and it reads.
 * ------------------------------------------------------------------------ */
static void refused_child(const char *path)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    mms_store *s = NULL;
    int r = mms_open(path, &o, &s);
    PUB(sh->err, r);
    snprintf(sh->detail, sizeof sh->detail, "%s", mms_errdetail());
    if (!r) {
        /* Opened (the owner's handle recovered already): whole. */
        PUB(sh->last, read_once(s));
        OK(mms_close(s));
    }
}

static void reader_child(const char *path)
{
    mms_store *s = open_ro(path);
    PUB(sh->last, read_once(s));
    OK(mms_close(s));
}

/* A child writer of counter c that dies at crash point `point`. */
static void crash_writer(const char *path, uint64_t c, const char *point)
{
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        die_with_parent(parent);
        setenv("MMS_CRASH", point, 1);
        mms_store *w = open_flags(path, 0);
        commit_counter(w, c);
        _exit(0); /* not reached */
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(!WIFEXITED(st) || WEXITSTATUS(st) != 0);
}

static void crash_case(const char *name, const char *point, bool owner_open)
{
    const char *path = store_path(name);
    make_store(path);
    memset(sh, 0, sizeof *sh);
    mms_store *owner = NULL;
    if (owner_open) {
        owner = open_flags(path, MMS_RDONLY); /* root: a slotted reader, idle */
        ASSERT_EQ(read_once(owner), 0);
    }
    {
        mms_store *w = open_flags(path, 0);
        commit_counter(w, 1);
        OK(mms_close(w));
        seal(path);
    }
    crash_writer(path, 2, point);
    child_done(unpriv(refused_child, path));
    fprintf(stderr, "   %s: %s\n", point, GET(sh->err) ? sh->detail : "opened");
    ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
    ASSERT(strstr(sh->detail, "recovery"));
    /* The owner recovers: at its open (alone), or its next read. */
    mms_store *w = owner ? owner : open_flags(path, 0);
    ASSERT_EQ(read_once(w), 2); /* the commit was durable */
    if (!owner)
        OK(mms_close(w));
    seal(path);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(reader_child, path));
    ASSERT_EQ(GET(sh->last), 2);
    if (owner)
        OK(mms_close(owner));
}

TEST(unslotted_after_crashed_writer)
{
    /* Dead in the middle of its apply: the gate closed over half-written
     * files. Then dead after its commit point, before it counted it. */
    crash_case("crash_apply", "commit.apply:1", false);
    crash_case("crash_counted", "commit.journal_synced:1", false);
    crash_case("crash_apply_open", "commit.apply:1", true);
    crash_case("crash_counted_open", "commit.journal_synced:1", true);
}

/* ------------------------------------------------------------------------
 * A lock file it cannot trust: missing, or of a copied directory.
 * ------------------------------------------------------------------------ */
/* Byte 0 of the lock file shared, through a read-only descriptor, until
 * the parent's stage 1: what an unslotted reader holds from its attach
 * until it has judged the file (and any process that may read it can). */
/* refused_child, paused where its open has taken byte 0 (crash point
 * lock.unslotted_held) until the parent's stage 1. */
static void pause_hook(enum mms__io_event ev, int fd, const void *addr, uint64_t off,
                       uint64_t len, const char *point)
{
    (void)fd, (void)addr, (void)off, (void)len;
    if (ev == MMS__IO_POINT && strcmp(point, "lock.unslotted_held") == 0) {
        PUB(sh->child_stage, 1);
        WAIT_FOR(GET(sh->stage) >= 1, getppid());
    }
}

static void paused_refused_child(const char *path)
{
    mms__os_io_hook(pause_hook);
    refused_child(path);
}

static void byte0_child(const char *path)
{
    char lock[700];
    snprintf(lock, sizeof lock, "%s/lock", path);
    int fd = open(lock, O_RDONLY);
    ASSERT(fd >= 0);
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    ASSERT_EQ(fcntl(fd, F_OFD_SETLK, &fl), 0);
    PUB(sh->child_stage, 1);
    WAIT_FOR(GET(sh->stage) >= 1, getppid());
    close(fd);
}

TEST(unslotted_untrusted_lock_file)
{
    const char *path = store_path("untrusted");
    make_store(path);
    char lock[700], copy[700];
    snprintf(lock, sizeof lock, "%s/lock", path);
    /* A copied directory: its lock file names another file. */
    snprintf(copy, sizeof copy, "%s.copy", path);
    rmrf(copy);
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", path, copy);
    ASSERT_EQ(system(cmd), 0);
    seal(copy);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(refused_child, copy));
    fprintf(stderr, "   copy: %s\n", sh->detail);
    ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
    /* Left before the system restarted (FORMAT §5: init_real_ns at 200,
     * init_boot_ns at 208): the wall clock moved a minute more than the
     * time since boot did, or the file was made at a later uptime than
     * now. Not while another handle keeps the file. */
    int fd = open(lock, O_RDWR);
    ASSERT(fd >= 0);
    uint64_t clocks[2], moved[2];
    ASSERT_EQ(pread(fd, clocks, 16, 200), 16);
    for (int k = 0; k < 2; k++) {
        moved[0] = clocks[0] - (k == 0 ? UINT64_C(60000000000) : 0);
        moved[1] = clocks[1] + (k == 1 ? UINT64_C(3600000000000000) : 0);
        ASSERT_EQ(pwrite(fd, moved, 16, 200), 16);
        memset(sh, 0, sizeof *sh);
        child_done(unpriv(refused_child, path));
        fprintf(stderr, "   another boot: %s\n", sh->detail);
        ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
        ASSERT(strstr(sh->detail, "restarted"));
    }
    /* Byte 0 held by a process that cannot write the file (another
     * unslotted reader judging it at the same moment) says nothing about
     * the file: still refused. */
    memset(sh, 0, sizeof *sh);
    pid_t holder = unpriv(byte0_child, path);
    WAIT_FOR(GET(sh->child_stage) >= 1, holder);
    child_done(unpriv(refused_child, path));
    fprintf(stderr, "   another boot, byte 0 held by a reader: %s\n", sh->detail);
    ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
    ASSERT(strstr(sh->detail, "restarted"));
    PUB(sh->stage, 1);
    child_done(holder);
    /* Kept by the owner's handle (a slot's byte held) since before the
     * clock was set: trusted. */
    mms_store *keep = open_flags(path, 0);
    ASSERT_EQ(pwrite(fd, moved, 16, 200), 16);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(reader_child, path));
    ASSERT_EQ(GET(sh->last), 0);
    OK(mms_close(keep));
    seal(path);
    /* A reader that will refuse the file never holds byte 0 over it: the
     * owner's first open, meanwhile, is alone and rebuilds the file (not
     * alone, it took the file of another boot as it was, and recovered
     * nothing). */
    memset(sh, 0, sizeof *sh);
    PUB(sh->err, 1);
    pid_t judge = unpriv(paused_refused_child, path);
    WAIT_FOR(GET(sh->child_stage) >= 1 || GET(sh->err) != 1, judge);
    keep = open_flags(path, 0);
    uint64_t now[2];
    ASSERT_EQ(pread(fd, now, 16, 200), 16);
    PUB(sh->stage, 1);
    child_done(judge);
    ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
    ASSERT(now[1] != moved[1]); /* stamped again */
    OK(mms_close(keep));
    seal(path);
    ASSERT_EQ(pwrite(fd, clocks, 16, 200), 16);
    close(fd);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(reader_child, path));
    ASSERT_EQ(GET(sh->last), 0);
    /* No lock file at all. */
    ASSERT_EQ(unlink(lock), 0);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(refused_child, path));
    fprintf(stderr, "   no lock file: %s\n", sh->detail);
    ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
    /* The owner opens each once: then they read. */
    mms_store *w = open_flags(copy, 0);
    OK(mms_close(w));
    w = open_flags(path, 0);
    OK(mms_close(w));
    seal(path);
    seal(copy);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(reader_child, copy));
    ASSERT_EQ(GET(sh->last), 0);
    child_done(unpriv(reader_child, path));
    ASSERT_EQ(GET(sh->last), 0);
    rmrf(copy);
}

/* ------------------------------------------------------------------------
 * A lock file made in the first seconds after a start: across a restart
 * its two clocks part by that uptime, the time to the restart and the
 * time down, all of which may be under the second a step of the wall
 * clock is allowed, so the boot id (FORMAT §5, at 232) tells the boot.
 * ------------------------------------------------------------------------ */
#define BOOT_ID_AT 232
#define BOOT_ID_PROC "/proc/sys/kernel/random/boot_id"

/* The kernel's boot id, parsed here (not by the library). */
static void boot_id_now(uint8_t id[16])
{
    char text[64] = {0};
    int fd = open(BOOT_ID_PROC, O_RDONLY);
    ASSERT(fd >= 0);
    ASSERT(read(fd, text, sizeof text - 1) >= 36);
    close(fd);
    int n = sscanf(text,
                   "%2hhx%2hhx%2hhx%2hhx-%2hhx%2hhx-%2hhx%2hhx-%2hhx%2hhx-"
                   "%2hhx%2hhx%2hhx%2hhx%2hhx%2hhx",
                   &id[0], &id[1], &id[2], &id[3], &id[4], &id[5], &id[6], &id[7], &id[8],
                   &id[9], &id[10], &id[11], &id[12], &id[13], &id[14], &id[15]);
    ASSERT_EQ(n, 16);
}

/* The owner's first open (root) where CLOCK_BOOTTIME reads about a second,
 * as a service started at boot does: in a time namespace (and, if
 * no_boot_id, where the boot id cannot be read). 0, or 77 if this system
 * has no time namespaces for the test. */
static int early_owner(const char *path, bool no_boot_id)
{
    pid_t parent, pid = fork_child(no_boot_id, 77, &parent);
    if (pid == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_BOOTTIME, &ts);
        char off[64];
        int len = snprintf(off, sizeof off, "%d %lld 0", CLOCK_BOOTTIME,
                           1 - (long long)ts.tv_sec);
        if (unshare(CLONE_NEWTIME) != 0)
            _exit(77);
        int fd = open("/proc/self/timens_offsets", O_WRONLY);
        if (fd < 0 || write(fd, off, (size_t)len) != len)
            _exit(77);
        close(fd);
        pid_t in = fork(); /* the namespace is its children's */
        if (in == 0) {
            die_with_parent(getppid());
            clock_gettime(CLOCK_BOOTTIME, &ts);
            ASSERT(ts.tv_sec < 4);
            mms_store *w = open_flags(path, 0);
            OK(mms_close(w));
            _exit(0);
        }
        int st;
        if (in < 0 || waitpid(in, &st, 0) != in)
            _exit(1);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st));
    if (WEXITSTATUS(st) != 77)
        ASSERT_EQ(WEXITSTATUS(st), 0);
    seal(path);
    return WEXITSTATUS(st);
}

TEST(unslotted_early_boot)
{
    const char *path = store_path("early");
    make_store(path);
    char lock[700];
    snprintf(lock, sizeof lock, "%s/lock", path);
    int fd = open(lock, O_RDWR);
    ASSERT(fd >= 0);
    uint8_t id[16], other[16], kept[16];
    static const uint8_t zero[16];
    boot_id_now(id);
    memcpy(other, id, 16);
    other[5] ^= 0x40;
    uint64_t clocks[2], early[2];
    ASSERT_EQ(pread(fd, clocks, 16, 200), 16);
    /* Stamped late in a boot (as everywhere the tests run): no boot id
     * kept, none read. */
    ASSERT_EQ(pread(fd, kept, 16, BOOT_ID_AT), 16);
    if (clocks[1] > UINT64_C(60000000000))
        ASSERT(memcmp(kept, zero, 16) == 0);
    /* Made half a second after a start, the clocks as this boot's would
     * be (they moved alike since): the quick restart the clocks cannot
     * tell from this boot. Without a boot id (an older mmstore's file), or
     * with another one, it is not trusted. */
    early[1] = 500000000;
    early[0] = clocks[0] - (clocks[1] - early[1]);
    ASSERT_EQ(pwrite(fd, early, 16, 200), 16);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(refused_child, path));
    fprintf(stderr, "   early, no boot id: %s\n", GET(sh->err) ? sh->detail : "opened");
    ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
    ASSERT(strstr(sh->detail, "cannot tell"));
    ASSERT_EQ(pwrite(fd, other, 16, BOOT_ID_AT), 16);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(refused_child, path));
    fprintf(stderr, "   early, another boot id: %s\n", GET(sh->err) ? sh->detail : "opened");
    ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
    ASSERT(strstr(sh->detail, "restarted"));
    ASSERT(!strstr(sh->detail, "cannot tell"));
    /* This boot's id: trusted. */
    ASSERT_EQ(pwrite(fd, id, 16, BOOT_ID_AT), 16);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(reader_child, path));
    ASSERT_EQ(GET(sh->last), 0);
    /* ... unless this process cannot read the boot id. */
    memset(sh, 0, sizeof *sh);
    child_done(unpriv_in(refused_child, path, true));
    fprintf(stderr, "   early, boot id unreadable: %s\n", GET(sh->err) ? sh->detail : "opened");
    ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
    ASSERT(strstr(sh->detail, "cannot tell"));
    /* The library's own stamp, early in a boot: it keeps the boot id, and
     * a reader trusts the file however late in the same boot it comes (its
     * clocks are not the namespace's: they part by the whole uptime). */
    if (early_owner(path, false) == 77) {
        fprintf(stderr, "SKIP: no time namespaces (the stamp early in a boot)\n");
        close(fd);
        return;
    }
    ASSERT_EQ(pread(fd, early, 16, 200), 16);
    ASSERT(early[1] < UINT64_C(4000000000));
    ASSERT_EQ(pread(fd, kept, 16, BOOT_ID_AT), 16);
    ASSERT(memcmp(kept, id, 16) == 0);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(reader_child, path));
    ASSERT_EQ(GET(sh->last), 0);
    /* Stamped where the boot id could not be read: nothing kept, not
     * trusted. */
    if (early_owner(path, true) == 77) {
        fprintf(stderr, "SKIP: no mount namespaces (an unreadable boot id)\n");
        close(fd);
        return;
    }
    ASSERT_EQ(pread(fd, kept, 16, BOOT_ID_AT), 16);
    ASSERT(memcmp(kept, zero, 16) == 0);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(refused_child, path));
    fprintf(stderr, "   stamped early, boot id unreadable: %s\n",
            GET(sh->err) ? sh->detail : "opened");
    ASSERT_EQ(GET(sh->err), MMS_ERECOVER);
    ASSERT(strstr(sh->detail, "cannot tell"));
    /* The owner's next open, late in the boot, stamps it again: trusted. */
    mms_store *w = open_flags(path, 0);
    OK(mms_close(w));
    seal(path);
    memset(sh, 0, sizeof *sh);
    child_done(unpriv(reader_child, path));
    ASSERT_EQ(GET(sh->last), 0);
    close(fd);
}

int main(void)
{
    if (!(sh = unw_start(sizeof *sh)))
        return 0;
    RUN(unslotted_alone_then_writer);
    RUN(unslotted_reader_and_writer);
    RUN(unslotted_count_while_locks_change);
    RUN(unslotted_reader_checkpoint_waits);
    RUN(unslotted_reader_killed_inside);
    RUN(unslotted_after_crashed_writer);
    RUN(unslotted_untrusted_lock_file);
    RUN(unslotted_early_boot);
    unw_finish();
    fprintf(stderr, "test_unwritable: ok\n");
    return 0;
}

/*
 * test_killwin.c -- kill windows in the lock file's protocol outside the
 * gate (test_backlog has the gate's): a process killed between two stores
 * into the lock file must leave a state the next handles judge right, so
 * that none waits for ever, takes over a live process's work, or skips a
 * dead one's. Each case kills a child at a crash point in such a window,
 * or pauses one there (an I/O hook at the crash point) while others go on.
 */
#include "test.h"
#include "internal.h" /* mms__os_io_hook: a pause at a crash point */

#include <dirent.h>
#include <grp.h>
#include <sys/stat.h>

#define MIB ((uint64_t)1 << 20)

struct rec {
    int64_t id;
    char pad[56];
};
static const mms_field fields[] = {MMS_F_I64(struct rec, id), MMS_F_CHARS(struct rec, pad)};
static const mms_schema schema = MMS_SCHEMA(struct rec, fields);

/* give_back_kill's child, alone with the store: a transaction that grows
 * the table by 32 MiB aborts, and a checkpoint gives the space back. */
static int child_grower(const char *path)
{
    mms_store *s = open_flags(path, 0);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &schema, 0, &t));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, (32 * MIB) / sizeof(struct rec), &first, &where));
    memset(where, 7, 32 * MIB);
    OK(mms_txn_abort(s));
    OK(mms_checkpoint(s));
    OK(mms_close(s));
    return 0;
}

/* A handle killed as it gives space back (space.giving: it has cleared
 * space_left and cuts no file yet): the next first open gives it back.
 * space_left was cleared before the files were cut, so the open found
 * nothing to give back, and the 32 MiB stayed until some later growth set
 * the flag again. */
TEST(give_back_kill)
{
    const char *p = tpath("kw1");
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &schema, MMS_TABLE_CREATE, &t));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, 1000, &first, &where));
    memset(where, 1, 1000 * sizeof(struct rec));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    uint64_t before = regions_disk(p);
    pid_t pid = child_spawn((const char *[]){"grower", p, NULL},
                            (const char *[]){"MMS_CRASH", "space.giving:1", NULL});
    int st;
    if (!child_end(pid, 60, &st) || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        FAILF("the child ended with %s, not at space.giving", child_status(st));
    uint64_t left = regions_disk(p);
    ASSERT(left > before + 16 * MIB); /* the test tests something */
    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_close(s));
    uint64_t after = regions_disk(p);
    fprintf(stderr, "   region files: %llu bytes on disk before, %llu left by the dead "
            "handle, %llu after the next open\n", (unsigned long long)before,
            (unsigned long long)left, (unsigned long long)after);
    if (after > before + 256 * 1024)
        FAILF("the space the dead handle was giving back stayed: %llu bytes on disk, %llu "
              "before", (unsigned long long)after, (unsigned long long)before);
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * unslotted_judge_kill: an unslotted reader (lock.c NOTES, Readers that
 * cannot write) judges a closed gate from the word it loaded. Its holder
 * may touch it, write and die between that load and the reader's probe
 * of the holder: the word the reader holds says untouched, the files are
 * half applied.
 * ------------------------------------------------------------------------ */
#define UNPRIV 65534u /* nobody */
#define ARR_PAGES 8u

struct judge_shm {
    int h_paused;   /* the applier waits at gate.touching (gate closed, probed) */
    int h_go;       /* ... until this */
    int u_open;     /* the reader has its handle */
    int u_begin;    /* ... and may begin */
    int u_judging;  /* it holds PIN_BYTE and loaded the gate word */
    int u_go;       /* ... until this */
    int u_done;
    int err;        /* what its mms_read_begin returned */
    uint64_t torn;  /* words of the array that differ from word 0 */
    char detail[256];
    /* reset_race */
    int r_trying;   /* the applier passed apply_try's look, before gate_try */
    int r_go1;
    int r_position; /* it holds the gate, between its loads of the position */
    int r_go2;
    int r_failed;   /* its apply failed (apply.failed) */
    int h_inside;   /* the holder is inside a read transaction */
    int h_leave;    /* ... until this */
    char r_detail[256];
    /* abandoned_reopened */
    int a_applying; /* the holder applies, the gate closed (gate.publishing) */
    int a_go;
    int w_judging;  /* the writer loaded the closed gate (gate.judging) */
    int w_go;
    int w_open;
    uint64_t w_journal; /* the journal's bytes once its mms_txn_begin returned */
};
static struct judge_shm *jsh;
static int hook_armed;

/* One pause per process: at the crash point pause_at names, publish 1 in
 * *reached and wait for *go (once). */
static const char *pause_point;
static int *pause_reached, *pause_go;

static void pause_hook(enum mms__io_event ev, int fd, const void *addr, uint64_t off,
                       uint64_t len, const char *point)
{
    (void)fd, (void)addr, (void)off, (void)len;
    if (ev != MMS__IO_POINT || !pause_point || strcmp(point, pause_point) != 0)
        return;
    pause_point = NULL;
    PUB(*pause_reached, 1);
    AWAIT(GET(*pause_go), 0, 60, "the process paused at %s was not let go", point);
}

static void pause_at(const char *point, int *reached, int *go)
{
    pause_reached = reached;
    pause_go = go;
    mms__os_io_hook(pause_hook);
    pause_point = point;
}

/* The applier: a writer whose one commit writes every page of the array;
 * it pauses where it has closed the gate and probed for unslotted
 * readers, and dies (MMS_CRASH commit.apply:1) after the first page. */
static int child_judge_applier(const char *path)
{
    mms_store *s = open_flags(path, 0);
    OK(mms_txn_begin(s, 0));
    uint64_t *arr = MMS_AT(s, uint64_t, mms_root(s));
    for (unsigned i = 0; i < ARR_PAGES * 512; i++)
        arr[i] = 1;
    pause_at("gate.touching", &jsh->h_paused, &jsh->h_go);
    OK(mms_txn_commit(s));
    return 3; /* not reached */
}

/* The reader: unprivileged, so it has no slot. */
static int child_judge_reader(const char *path)
{
    if (setgroups(0, NULL) != 0 || setgid(UNPRIV) != 0 || setuid(UNPRIV) != 0)
        return 98;
    die_with_parent(getppid()); /* a change of credentials cleared it */
    mms_store *s = open_flags(path, MMS_RDONLY);
    PUB(jsh->u_open, 1);
    AWAIT(GET(jsh->u_begin), 0, 60, "the reader was not told to begin");
    pause_at("pin.unslotted_gate", &jsh->u_judging, &jsh->u_go);
    int r = mms_read_begin(s);
    snprintf(jsh->detail, sizeof jsh->detail, "%s", r ? mms_errdetail() : "");
    if (!r) {
        const uint64_t *arr = MMS_AT(s, uint64_t, mms_root(s));
        uint64_t torn = 0;
        for (unsigned i = 0; i < ARR_PAGES * 512; i++)
            torn += arr[i] != arr[0];
        PUB(jsh->torn, torn);
        OK(mms_read_end(s));
    }
    PUB(jsh->err, r);
    PUB(jsh->u_done, 1);
    OK(mms_close(s));
    return 0;
}

/* The reader loads the gate word (closed, untouched: the applier waits at
 * gate.touching), then the applier touches it, writes a page and is
 * killed, then the reader probes the holder: dead. It judged the word it
 * had loaded, untouched, and read the half-applied files (a torn array at
 * the published txn). It must judge the word the dead holder left: it
 * refuses (MMS_ERECOVER), as for any dead holder that may have written. */
/* A new handle (flags) on p reads every word of the root array as v, and
 * the store verifies. */
static void array_is(const char *p, unsigned flags, uint64_t v)
{
    mms_store *s = open_flags(p, flags);
    OK(mms_read_begin(s));
    const uint64_t *arr = MMS_AT(s, uint64_t, mms_root(s));
    for (unsigned i = 0; i < ARR_PAGES * 512; i++)
        ASSERT_EQ(arr[i], v);
    OK(mms_read_end(s));
    verify_ok(s);
    OK(mms_close(s));
}

/* A new store at p whose root is an array of ARR_PAGES zeroed pages; its
 * write handle. */
static mms_store *array_store(const char *p)
{
    mms_store *w = open_flags(p, MMS_CREATE);
    mms_ref a;
    OK(mms_txn_begin(w, 0));
    OK(mms_zalloc(w, ARR_PAGES * 4096, &a));
    OK(mms_root_set(w, a));
    OK(mms_txn_commit(w));
    return w;
}

TEST(unslotted_judge_kill)
{
    if (geteuid() != 0) {
        fprintf(stderr, "   skipped: needs root (the reader drops to uid %u)\n", UNPRIV);
        return;
    }
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "/tmp/killwin-unpriv.%d", (int)getpid());
    rmrf(dir);
    ASSERT_EQ(mkdir(dir, 0755), 0);
    ASSERT_EQ(chmod(dir, 0755), 0);
    snprintf(p, sizeof p, "%s/judge.mms", dir);
    OK(mms_close(array_store(p)));
    ASSERT_EQ(chmod(p, 0755), 0);
    DIR *d = opendir(p);
    ASSERT(d != NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') {
            char f[700];
            snprintf(f, sizeof f, "%s/%s", p, e->d_name);
            ASSERT_EQ(chmod(f, 0644), 0);
        }
    closedir(d);
    memset(jsh, 0, sizeof *jsh);
    pid_t u = child_spawn((const char *[]){"judge_reader", p, NULL}, NULL);
    AWAIT(GET(jsh->u_open), u, 60, "the unslotted reader did not open the store");
    pid_t h = child_spawn((const char *[]){"judge_applier", p, NULL},
                          (const char *[]){"MMS_CRASH", "commit.apply:1", NULL});
    AWAIT(GET(jsh->h_paused), h, 60, "the applier did not reach gate.touching");
    PUB(jsh->u_begin, 1);
    AWAIT(GET(jsh->u_judging), u, 60, "the reader did not reach the closed gate");
    PUB(jsh->h_go, 1);
    int st;
    if (!child_end(h, 60, &st) || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        FAILF("the applier ended with %s, not at commit.apply", child_status(st));
    PUB(jsh->u_go, 1);
    if (!child_end(u, 60, &st) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the reader ended with %s", child_status(st));
    fprintf(stderr, "   reader: %s: %s (%llu torn words)\n", mms_strerror(GET(jsh->err)),
            jsh->detail, (unsigned long long)GET(jsh->torn));
    if (GET(jsh->err) != MMS_ERECOVER)
        FAILF("the unslotted reader began over a dead holder's half-applied files: %s, "
              "%llu of %u words torn", mms_strerror(GET(jsh->err)),
              (unsigned long long)GET(jsh->torn), ARR_PAGES * 512);
    /* The owner finishes the work: the commit was durable. */
    array_is(p, 0, 1);
    rmrf(dir);
}

/* ------------------------------------------------------------------------
 * reset_race: an applier that loads the apply position, then (when the
 * txns it had were all published meanwhile) a checkpoint resets the
 * journal and a commit is made durable in the new one, then it loads
 * durable: the position of the old journal with a durable commit of the
 * new. It applied from there, found no group and failed with
 * MMS_ECORRUPT, leaving the store to recovery.
 * ------------------------------------------------------------------------ */
static void race_hook(enum mms__io_event ev, int fd, const void *addr, uint64_t off,
                      uint64_t len, const char *point)
{
    (void)fd, (void)addr, (void)off, (void)len;
    if (ev != MMS__IO_POINT || !hook_armed)
        return;
    if (strcmp(point, "apply.trying") == 0 && !GET(jsh->r_trying)) {
        PUB(jsh->r_trying, 1);
        AWAIT(GET(jsh->r_go1), 0, 60, "the applier was not let go (1)");
    } else if (strcmp(point, "apply.position") == 0 && GET(jsh->r_trying) &&
               !GET(jsh->r_position)) {
        PUB(jsh->r_position, 1);
        AWAIT(GET(jsh->r_go2), 0, 60, "the applier was not let go (2)");
    } else if (strcmp(point, "apply.failed") == 0) {
        snprintf(jsh->r_detail, sizeof jsh->r_detail, "%s", mms_errdetail());
        PUB(jsh->r_failed, 1);
    }
}

/* The applier: a handle that begins a read transaction with a commit
 * waiting to be applied. */
static int child_race_applier(const char *path)
{
    mms__os_io_hook(race_hook);
    mms_store *s = open_flags(path, 0);
    hook_armed = 1;
    OK(mms_read_begin(s));
    OK(mms_read_end(s));
    OK(mms_close(s));
    return 0;
}

/* A reader that holds a commit back until told to leave, and applies it
 * as it leaves (the last reader out). */
static int child_race_holder(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    PUB(jsh->h_inside, 1);
    AWAIT(GET(jsh->h_leave), 0, 60, "the holder was not told to leave");
    OK(mms_read_end(s));
    OK(mms_close(s));
    return 0;
}

static void set_array(mms_store *w, uint64_t v)
{
    OK(mms_txn_begin(w, 0));
    uint64_t *arr = MMS_AT(w, uint64_t, mms_root(w));
    for (unsigned i = 0; i < ARR_PAGES * 512; i++)
        arr[i] = v;
    OK(mms_txn_commit(w));
}

TEST(reset_race)
{
    const char *p = tpath("kw3");
    mms_store *w = array_store(p);
    memset(jsh, 0, sizeof *jsh);
    pid_t holder = child_spawn((const char *[]){"race_holder", p, NULL}, NULL);
    AWAIT(GET(jsh->h_inside), holder, 60, "the holder did not begin");
    set_array(w, 1); /* held back by the holder */
    pid_t pid = child_spawn((const char *[]){"race_applier", p, NULL}, NULL);
    AWAIT(GET(jsh->r_trying), pid, 60, "the applier did not reach apply.trying");
    PUB(jsh->h_leave, 1); /* the last reader out applies it */
    int st;
    if (!child_end(holder, 60, &st) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the holder ended with %s", child_status(st));
    mms_info info;
    OK(mms_info_get(w, &info));
    ASSERT_EQ(info.published_txn, info.committed_txn);
    PUB(jsh->r_go1, 1);
    AWAIT(GET(jsh->r_position), pid, 60, "the applier did not reach apply.position");
    OK(mms_checkpoint(w)); /* everything is published: the journal starts anew */
    set_array(w, 2);       /* durable; it waits for the gate */
    PUB(jsh->r_go2, 1);
    if (!child_end(pid, 60, &st) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the applier ended with %s", child_status(st));
    if (GET(jsh->r_failed))
        FAILF("the applier's apply failed after a checkpoint it did not see: %s",
              jsh->r_detail);
    array_is(p, MMS_RDONLY, 2);
    OK(mms_close(w));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * abandoned_reopened: a writer at mms_txn_begin asks whether a handle that
 * died left the gate closed (mms__gate_abandoned). It loaded the gate
 * closed by a live applier, which then opened it and exited; the probe
 * found the holder dead, and the writer recovered the whole store (a
 * replay and a checkpoint) for a gate that was open.
 * ------------------------------------------------------------------------ */
/* A reader that holds a commit back until told to leave, and applies it
 * as it leaves (pausing with the gate closed), then exits. */
static int child_reopen_holder(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    PUB(jsh->h_inside, 1);
    AWAIT(GET(jsh->h_leave), 0, 60, "the holder was not told to leave");
    pause_at("gate.publishing", &jsh->a_applying, &jsh->a_go);
    OK(mms_read_end(s));
    OK(mms_close(s));
    return 0;
}

static int child_reopen_writer(const char *path)
{
    mms_store *s = open_flags(path, 0); /* before the gate closes: an open pins */
    PUB(jsh->w_open, 1);
    AWAIT(GET(jsh->a_applying), 0, 60, "the writer was not told to begin");
    pause_at("gate.judging", &jsh->w_judging, &jsh->w_go);
    OK(mms_txn_begin(s, 0));
    mms_info in;
    OK(mms_info_get(s, &in));
    PUB(jsh->w_journal, in.journal_bytes); /* before its close checkpoints */
    OK(mms_txn_abort(s));
    OK(mms_close(s));
    return 0;
}

TEST(abandoned_reopened)
{
    const char *p = tpath("kw4");
    mms_store *w = array_store(p);
    memset(jsh, 0, sizeof *jsh);
    pid_t holder = child_spawn((const char *[]){"reopen_holder", p, NULL}, NULL);
    AWAIT(GET(jsh->h_inside), holder, 60, "the holder did not begin");
    pid_t writer = child_spawn((const char *[]){"reopen_writer", p, NULL}, NULL);
    AWAIT(GET(jsh->w_open), writer, 60, "the writer did not open the store");
    set_array(w, 1); /* held back by the holder */
    mms_info before;
    OK(mms_info_get(w, &before));
    ASSERT(before.journal_bytes > 0); /* what a recovery's checkpoint would reset */
    PUB(jsh->h_leave, 1);
    AWAIT(GET(jsh->a_applying), holder, 60, "the holder did not apply");
    AWAIT(GET(jsh->w_judging), writer, 60, "the writer did not find the gate closed");
    PUB(jsh->a_go, 1); /* it publishes, opens the gate and exits */
    int st;
    if (!child_end(holder, 60, &st) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the holder ended with %s", child_status(st));
    PUB(jsh->w_go, 1);
    if (!child_end(writer, 60, &st) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the writer ended with %s", child_status(st));
    uint64_t after = GET(jsh->w_journal);
    fprintf(stderr, "   journal bytes: %llu before the writer's begin, %llu after\n",
            (unsigned long long)before.journal_bytes, (unsigned long long)after);
    if (after != before.journal_bytes)
        FAILF("the writer recovered the store for a gate that its live holder had opened "
              "(the journal went from %llu to %llu bytes)",
              (unsigned long long)before.journal_bytes, (unsigned long long)after);
    OK(mms_close(w));
    array_is(p, MMS_RDONLY, 1);
    rmrf(p);
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 2, "ROLE PATH");
    if (a) {
        jsh = child_page(sizeof *jsh);
        if (strcmp(a[0], "grower") == 0)
            return child_grower(a[1]);
        if (strcmp(a[0], "judge_applier") == 0)
            return child_judge_applier(a[1]);
        if (strcmp(a[0], "judge_reader") == 0)
            return child_judge_reader(a[1]);
        if (strcmp(a[0], "race_holder") == 0)
            return child_race_holder(a[1]);
        if (strcmp(a[0], "race_applier") == 0)
            return child_race_applier(a[1]);
        if (strcmp(a[0], "reopen_holder") == 0)
            return child_reopen_holder(a[1]);
        if (strcmp(a[0], "reopen_writer") == 0)
            return child_reopen_writer(a[1]);
        return 2;
    }
    jsh = child_page(sizeof *jsh);
    RUN(give_back_kill);
    RUN(unslotted_judge_kill);
    RUN(reset_race);
    RUN(abandoned_reopened);
    return 0;
}

/*
 * test_qa22.c -- a writer killed while readers are inside, from a user's
 * side (qa22): the next writer takes the dead writer's commits over as its
 * backlog without waiting for readers (14b7a16, 1d482a7; include/mmstore.h
 * "Read transactions", mms_txn_begin). test_backlog next_writer_* and
 * test_review22 check it with slotted readers in C; this checks it with
 *
 *   1. readers that may not write the store (unslotted: a child that drops
 *      to UNPRIV after the store was sealed, as test_unwritable does)
 *      inside a read transaction while the writer dies in different ways:
 *      the next writer begins at once, every reader sees whole states,
 *      refusals are MMS_ERECOVER naming recovery, nothing is lost;
 *   2. the mms tool run against such a store (readers inside, the writer
 *      just killed): each command works or fails clearly, none hangs
 *      (60 s each), and no row is lost.
 *
 * THE INVARIANT (as test_unwritable's): the root is {counter, arr}; arr is
 * ARR_N words over several pages that all equal the counter, as does
 * every record of table "rec", which grows by REC_STEP records every 10th
 * counter. A state that breaks it is torn.
 *
 * Needs root (the unslotted readers setuid to UNPRIV); skips otherwise.
 */
#include "test.h"

#include <poll.h>

#define UNW_TAG "qa22"
#define UNW_TXN_IS_COUNTER 0 /* mms import commits too */
#include "unwritable.h"

#define HANG_S 60 /* a tool or a child that takes longer hangs */

/* Rows of the tool test's table "t": k 0, 1, 2, ... */
struct row {
    int64_t k;
    int64_t v;
};
static const mms_field row_fields[] = {MMS_F_I64(struct row, k), MMS_F_I64(struct row, v)};
static const mms_schema row_schema = MMS_SCHEMA(struct row, row_fields);

struct shm {
    int stage;        /* the parent's step */
    int a_stage;      /* reader A's step */
    int r_stage;      /* the slotted reader's step (tool test) */
    uint64_t ok;      /* the writer's last counter that returned */
    uint64_t about;   /* the counter the writer commits now */
    uint64_t a_first; /* what reader A's transaction pinned */
    uint64_t a_again; /* reader A, again inside the same transaction */
    uint64_t a_after; /* reader A's next transaction */
    uint64_t seen;    /* the counter the next writer found */
    uint64_t last;    /* a one-shot reader's counter */
    int err;          /* a one-shot reader's error */
    char detail[300]; /* its mms_errdetail() */
    int i_stage;      /* the idle unslotted reader's step */
    int i_go;         /* the parent's word to it */
    int i_err[2];     /* its read_begin after the kill, after the next writer */
    uint64_t i_read;  /* what its second one read */
    char i_detail[300];
};
static struct shm *sh;

/* The child ends within HANG_S with exit 0; what hung or failed, in words. */
static void child_ok(pid_t pid, const char *what)
{
    int st;
    if (!child_end(pid, HANG_S, &st))
        FAILF("%s: still running %d s later (killed): it hangs", what, HANG_S);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("%s: ended with %s", what, child_status(st));
}

#define WAIT_FOR(cond, pid) AWAIT(cond, pid, HANG_S, "timed out waiting for %s", #cond)
/* A reader's wait for the parent's next step: longer than the parent's
 * own hang detection, so that what hung is said by the parent. */
#define STAGE_WAIT(cond) AWAIT(cond, getppid(), 3 * HANG_S, "timed out waiting for %s", #cond)

/* ------------------------------------------------------------------------
 * Children
 * ------------------------------------------------------------------------ */

/* Reader A (unslotted): inside one read transaction until stage 1, then
 * another transaction, then waits for stage 2 and closes. */
static void reader_a(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    PUB(sh->a_first, check_whole(s));
    PUB(sh->a_stage, 1);
    STAGE_WAIT(GET(sh->stage) >= 1);
    PUB(sh->a_again, check_whole(s));
    OK(mms_read_end(s));
    PUB(sh->a_after, read_once(s));
    PUB(sh->a_stage, 2);
    STAGE_WAIT(GET(sh->stage) >= 2);
    OK(mms_close(s));
}

/* An unslotted handle open (idle) before the kill: a read transaction
 * after the kill (stage 1), and after the next writer (stage 3). */
static void reader_idle(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    ASSERT_EQ(read_once(s), 0);
    PUB(sh->i_stage, 1);
    for (int k = 0; k < 2; k++) {
        STAGE_WAIT(GET(sh->i_go) >= k + 1);
        int r = mms_read_begin(s);
        if (r)
            snprintf(sh->i_detail, sizeof sh->i_detail, "%s", mms_errdetail());
        else {
            PUB(sh->i_read, check_whole(s));
            OK(mms_read_end(s));
        }
        PUB(sh->i_err[k], r);
        PUB(sh->i_stage, 2 + k);
    }
    OK(mms_close(s));
}

/* A one-shot reader: open, one read transaction, close; the error (with
 * its detail) or the counter into sh. */
static void reader_once(const char *path)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    mms_store *s = NULL;
    int r = mms_open(path, &o, &s);
    if (!r) {
        r = mms_read_begin(s);
        if (!r) {
            PUB(sh->last, check_whole(s));
            OK(mms_read_end(s));
        }
        OK(mms_close(s));
    }
    snprintf(sh->detail, sizeof sh->detail, "%s", r ? mms_errdetail() : "");
    PUB(sh->err, r);
}

static const char *kill_kind; /* the writer child's: see kill_writer */
static uint64_t kill_n;

/* The writer (root) commits 1..kill_n, then dies as kill_kind says. */
static void writer_child(const char *path)
{
    bool nosync = strstr(kill_kind, "nosync") != NULL;
    bool bound = strcmp(kill_kind, "bound") == 0;
    if (strncmp(kill_kind, "commit.", 7) == 0) {
        char crash[100];
        snprintf(crash, sizeof crash, "%s:%llu", kill_kind, (unsigned long long)kill_n);
        setenv("MMS_CRASH", crash, 1);
    }
    mms_options o;
    mms_options_init(&o);
    o.flags = nosync ? MMS_NOSYNC : 0;
    if (bound)
        o.max_backlog = 100 * 1024; /* each commit changes about 10 pages */
    mms_store *s = NULL;
    OK(mms_open(path, &o, &s));
    for (uint64_t c = 1; c <= (bound ? 1000 : kill_n); c++) {
        PUB(sh->about, c);
        commit_counter(s, c);
        PUB(sh->ok, c);
    }
    if (bound)
        FAILF("1000 commits passed the backlog bound with a reader inside");
    /* Killed inside a write transaction, holding the writer lock. */
    OK(mms_txn_begin(s, 0));
    MMS_AT(s, struct root, mms_root(s))->counter = 999999;
    raise(SIGKILL);
}

/* The next writer (root): finds the counter, commits +1 and +2, closes. */
static void next_writer(const char *path)
{
    mms_store *s = open_flags(path, 0);
    OK(mms_txn_begin(s, 0));
    uint64_t c = check_whole(s);
    PUB(sh->seen, c);
    OK(mms_txn_abort(s));
    commit_counter(s, c + 1);
    commit_counter(s, c + 2);
    OK(mms_close(s));
}

/* The gate word of the lock file (doc/FORMAT.md §5: at 40). */
static uint32_t gate_word(const char *path)
{
    char lock[700];
    snprintf(lock, sizeof lock, "%s/lock", path);
    int fd = open(lock, O_RDONLY);
    ASSERT(fd >= 0);
    uint32_t g = 0;
    ASSERT_EQ(pread(fd, &g, 4, 40), 4);
    close(fd);
    return g;
}

/* Run the writer child and kill it as kind says; returns the counter of
 * the last commit the journal holds whole (what the next writer must see).
 *   inside, nosync_inside: kill_n commits, then killed inside a write
 *     transaction (in MMS_NOSYNC: commits not synced yet);
 *   commit.journal_synced: killed in commit kill_n between its journal
 *     sync and its count (the commit is made);
 *   commit.journal_write: killed in commit kill_n before its journal group
 *     is written (the commit is not made);
 *   bound: killed while a commit waits at max_backlog for the reader inside
 *     (the gate closed, untouched). */
static uint64_t kill_writer(const char *path, const char *kind, uint64_t n)
{
    kill_kind = kind;
    kill_n = n;
    PUB(sh->ok, 0);
    PUB(sh->about, 0);
    pid_t wr = unw_child(false, writer_child, path);
    int st;
    if (strcmp(kind, "bound") == 0) {
        /* It waits with the gate closed (odd) for the reader's byte: the
         * same odd word, seen for 50 ms, is that wait (a gate_try closes
         * it for microseconds). */
        for (int same = 0; same < 50;) {
            WAIT_FOR(GET(sh->about) >= 2 && (gate_word(path) & 1), wr);
            uint64_t about = GET(sh->about);
            uint32_t g = gate_word(path);
            sleep_us(1000);
            same = gate_word(path) == g && GET(sh->about) == about ? same + 1 : 0;
        }
        kill(wr, SIGKILL);
    }
    if (!child_end(wr, HANG_S, &st) || !WIFSIGNALED(st))
        FAILF("writer %s: ended with %s", kind, child_status(st));
    uint64_t ok = GET(sh->ok);
    if (strcmp(kind, "commit.journal_synced") == 0) {
        ASSERT_EQ(ok, n - 1);
        return n;
    }
    if (strcmp(kind, "commit.journal_write") == 0) {
        ASSERT_EQ(ok, n - 1);
        return n - 1;
    }
    if (strcmp(kind, "bound") == 0) {
        ASSERT_EQ(GET(sh->about), ok + 1); /* the one that waited */
        return ok;
    }
    ASSERT_EQ(ok, n);
    return n;
}

/* ------------------------------------------------------------------------
 * 1. Unslotted readers inside while the writer is killed.
 * ------------------------------------------------------------------------ */
static void unslotted_case(const char *kind, uint64_t n)
{
    const char *path = store_path("unslotted");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    pid_t a = unw_child(true, reader_a, path);
    pid_t idle = unw_child(true, reader_idle, path);
    WAIT_FOR(GET(sh->a_stage) >= 1, a);
    WAIT_FOR(GET(sh->i_stage) >= 1, idle);
    ASSERT_EQ(GET(sh->a_first), 0);
    uint64_t made = kill_writer(path, kind, n);

    /* The idle handle's next read transaction: whole, or refused. */
    PUB(sh->i_go, 1);
    WAIT_FOR(GET(sh->i_stage) >= 2, idle);
    if (GET(sh->i_err[0])) {
        fprintf(stderr, "   %s: an open unslotted handle's read_begin: %s\n", kind, sh->i_detail);
        ASSERT_EQ(GET(sh->i_err[0]), MMS_ERECOVER);
        ASSERT(strstr(sh->i_detail, "recovery"));
    } else {
        ASSERT_EQ(GET(sh->i_read), 0);
    }

    /* A new unslotted reader before any writer came: the state A pinned,
     * whole, or a refusal that says the store needs recovery. */
    pid_t b = unw_child(true, reader_once, path);
    child_ok(b, "a new unslotted reader after the kill");
    int err_before = GET(sh->err);
    fprintf(stderr, "   %s: new unslotted reader before the next writer: %s%s\n", kind,
            err_before ? mms_strerror(err_before) : "read counter ",
            err_before ? sh->detail : (char[24]){0});
    if (err_before) {
        ASSERT_EQ(err_before, MMS_ERECOVER);
        ASSERT(strstr(sh->detail, "recovery"));
    } else {
        ASSERT_EQ(GET(sh->last), 0);
    }

    /* The next writer: at once, with A still inside (it waits for stage
     * 1), every commit the journal holds. */
    child_ok(unw_child(false, next_writer, path), "the next writer, with an unslotted reader "
                                                 "inside");
    if (GET(sh->seen) != made)
        FAILF("%s: the next writer found counter %llu, the dead writer made %llu", kind,
              (unsigned long long)GET(sh->seen), (unsigned long long)made);
    ASSERT_EQ(GET(sh->a_stage), 1); /* A stayed inside */

    /* The idle handle reads again: its refusal was not for good. */
    PUB(sh->i_go, 2);
    WAIT_FOR(GET(sh->i_stage) >= 3, idle);
    if (GET(sh->i_err[1]))
        FAILF("%s: an open unslotted handle after the next writer: %s (%s)", kind,
              mms_strerror(GET(sh->i_err[1])), sh->i_detail);
    ASSERT(GET(sh->i_read) == 0 || GET(sh->i_read) == made + 2);
    child_ok(idle, "the idle unslotted reader");

    /* New unslotted readers now: never refused, whole. */
    memset(sh->detail, 0, sizeof sh->detail);
    child_ok(unw_child(true, reader_once, path), "a new unslotted reader after the next writer");
    if (GET(sh->err))
        FAILF("%s: a new unslotted reader after the next writer: %s (%s)", kind,
              mms_strerror(GET(sh->err)), sh->detail);
    uint64_t mid = GET(sh->last);
    ASSERT(mid == 0 || mid == made + 2);

    /* A: its state never moved; then it leaves and reads again. */
    PUB(sh->stage, 1);
    WAIT_FOR(GET(sh->a_stage) >= 2, a);
    ASSERT_EQ(GET(sh->a_again), 0);
    uint64_t after = GET(sh->a_after);
    ASSERT(after == 0 || after == made + 2);
    PUB(sh->stage, 2);
    child_ok(a, "reader A");

    /* Nothing lost: a handle that can apply sees every commit. */
    mms_store *s = open_flags(path, MMS_RDONLY);
    ASSERT_EQ(read_once(s), made + 2);
    verify_ok(s);
    OK(mms_close(s));
    seal(path);
    child_ok(unw_child(true, reader_once, path), "an unslotted reader at the end");
    ASSERT_EQ(GET(sh->err), 0);
    ASSERT_EQ(GET(sh->last), made + 2);
    fprintf(stderr, "   %s: made %llu, next writer +2, A read %llu after, all see %llu\n", kind,
            (unsigned long long)made, (unsigned long long)after,
            (unsigned long long)(made + 2));
    rmrf(path);
}

TEST(unslotted_inside_writer_killed)
{
    unslotted_case("inside", 25);
    unslotted_case("nosync_inside", 25);
    unslotted_case("commit.journal_synced", 12);
    unslotted_case("commit.journal_write", 12);
    unslotted_case("bound", 0);
}

/* A writer killed mid-commit (written, not counted) with an unslotted
 * reader inside, and then not a writer but a slotted reader comes: it
 * takes the dead writer's commit over (mms__pin_stuck) without waiting for
 * the unslotted reader, and reads a whole state. */
static void slotted_once(const char *path)
{
    reader_once(path);
}

TEST(unslotted_inside_then_slotted_reader_takes_over)
{
    const char *path = store_path("takeover");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    pid_t a = unw_child(true, reader_a, path);
    WAIT_FOR(GET(sh->a_stage) >= 1, a);
    uint64_t made = kill_writer(path, "commit.journal_synced", 7);
    child_ok(unw_child(false, slotted_once, path),
             "a slotted reader after a writer killed mid-commit, an unslotted one inside");
    ASSERT_EQ(GET(sh->err), 0);
    uint64_t seen = GET(sh->last);
    ASSERT(seen == 0 || seen == made);
    /* Taken over: new unslotted readers are not refused any more. */
    child_ok(unw_child(true, reader_once, path), "a new unslotted reader after the take-over");
    if (GET(sh->err))
        FAILF("unslotted reader after a slotted reader took over: %s (%s)",
              mms_strerror(GET(sh->err)), sh->detail);
    PUB(sh->stage, 1);
    WAIT_FOR(GET(sh->a_stage) >= 2, a);
    ASSERT_EQ(GET(sh->a_again), 0);
    PUB(sh->stage, 2);
    child_ok(a, "reader A");
    mms_store *s = open_flags(path, MMS_RDONLY);
    ASSERT_EQ(read_once(s), made);
    verify_ok(s);
    OK(mms_close(s));
    fprintf(stderr, "   slotted reader saw %llu (made %llu)\n", (unsigned long long)seen,
            (unsigned long long)made);
    rmrf(path);
}

/* A writer killed in its commit after its journal sync, before its count
 * (the commit is made: the next writer, and any new read transaction,
 * take it over), and no reader at all: a waiter for the commit after the
 * last one published must see it. FAILS (after HANG_S): mms_wait takes
 * over a dead applier's work (rescue_dead_applier) but not a dead
 * writer's uncounted commit, so it times out one commit behind what a new
 * read transaction shows. */
TEST(wait_sees_dead_writers_last_commit)
{
    const char *path = store_path("wait");
    make_store(path);
    memset(sh, 0, sizeof *sh);
    mms_store *w = open_flags(path, MMS_RDONLY); /* opened before the kill */
    ASSERT_EQ(read_once(w), 0);
    uint64_t made = kill_writer(path, "commit.journal_synced", 3);
    ASSERT_EQ(made, 3);
    uint64_t now = 0;
    mms_info in;
    OK(mms_info_get(w, &in));
    ASSERT_EQ(in.published_txn, made); /* counters 1 and 2 (txn 2, 3) applied */
    int r = mms_wait(w, made, HANG_S * 1000, &now);
    if (r == -ETIMEDOUT) {
        uint64_t c = read_once(w);
        FAILF("mms_wait after txn %llu timed out (%d s) at txn %llu, where a new read "
              "transaction then showed counter %llu (txn %llu): the dead writer's last commit",
              (unsigned long long)made, HANG_S, (unsigned long long)now, (unsigned long long)c,
              (unsigned long long)mms_txn_id(w));
    }
    OK(r);
    ASSERT_EQ(now, made + 1);
    ASSERT_EQ(read_once(w), made);
    verify_ok(w);
    OK(mms_close(w));
    rmrf(path);
}

/* ------------------------------------------------------------------------
 * 2. The mms tool against a store whose writer was just killed, with a
 *    slotted and an unslotted reader inside.
 * ------------------------------------------------------------------------ */

/* The tool (as UNPRIV if unpriv) with args (split at spaces: no quoting),
 * started; tool_finish collects its stdout and stderr into out within
 * HANG_S: -1 if it hung (killed), else its exit status (128 + signal). */
struct tool_run {
    pid_t pid;
    int fd;
};

static struct tool_run tool_start(bool unpriv, const char *args)
{
    const char *tool = getenv("MMS_TOOL");
    if (!tool)
        FAILF("MMS_TOOL is not set");
    char buf[1500];
    snprintf(buf, sizeof buf, "%s", args);
    char *argv[20];
    int n = 0;
    argv[n++] = (char *)tool;
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && n < 19;
         t = strtok_r(NULL, " ", &save))
        argv[n++] = t;
    argv[n] = NULL;
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    pid_t pid = unw_fork(unpriv);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(tool, argv);
        _exit(127);
    }
    close(p[1]);
    return (struct tool_run){pid, p[0]};
}

static int tool_finish(struct tool_run t, char *out, size_t cap)
{
    size_t len = 0;
    double t0 = now_us();
    int st = 0, done = 0;
    out[0] = 0;
    for (;;) {
        struct pollfd pf = {t.fd, POLLIN, 0};
        if (poll(&pf, 1, 100) > 0) {
            char b[4096];
            ssize_t k = read(t.fd, b, sizeof b);
            if (k > 0) {
                size_t c = (size_t)k < cap - 1 - len ? (size_t)k : cap - 1 - len;
                memcpy(out + len, b, c);
                len += c;
                out[len] = 0;
                continue;
            }
            if (k == 0)
                break;
        }
        if (now_us() - t0 > HANG_S * 1e6)
            break;
    }
    close(t.fd);
    done = child_end(t.pid, HANG_S - (now_us() - t0) / 1e6 > 1 ? HANG_S - (now_us() - t0) / 1e6
                                                                  : 1,
                     &st);
    if (!done)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int tool(bool unpriv, char *out, size_t cap, const char *fmt, ...)
{
    char args[1500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = tool_finish(tool_start(unpriv, args), out, cap);
    fprintf(stderr, "   %smms %s -> %s%d\n", unpriv ? "(nobody) " : "", args,
            rc < 0 ? "HUNG " : "exit ", rc);
    return rc;
}

static void tool_hung(int rc, const char *cmd, const char *out)
{
    if (rc < 0)
        FAILF("mms %s still ran %d s later, readers inside, its writer killed:\n%s", cmd, HANG_S,
              out);
}

/* A table "t" of rows k = v = 0..n-1, sealed. */
static void make_rows(const char *path, int64_t n)
{
    mms_store *s = open_flags(path, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t;
    OK(mms_table_open(s, "t", &row_schema, MMS_TABLE_CREATE, &t));
    for (int64_t i = 0; i < n; i++) {
        struct row r = {i, i};
        OK(mms_table_append(t, &r, NULL));
    }
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    seal(path);
}

/* Rows k..k+n-1, one commit. */
static void append_rows(mms_store *s, int64_t k, int64_t n)
{
    OK(mms_txn_begin(s, 0));
    mms_table *t;
    OK(mms_table_open(s, "t", &row_schema, 0, &t));
    for (int64_t i = k; i < k + n; i++) {
        struct row r = {i, i};
        OK(mms_table_append(t, &r, NULL));
    }
    OK(mms_txn_commit(s));
}

/* A reader of table t: inside until stage 2; the count it saw in last. */
static void rows_reader(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    mms_table *t;
    OK(mms_table_open(s, "t", &row_schema, 0, &t));
    uint64_t n = mms_table_count(t);
    if (geteuid() == UNPRIV) {
        PUB(sh->a_first, n);
        PUB(sh->a_stage, 1);
    } else {
        PUB(sh->last, n);
        PUB(sh->r_stage, 1);
    }
    STAGE_WAIT(GET(sh->stage) >= 2);
    ASSERT_EQ(mms_table_count(t), n);
    for (uint64_t i = 0; i < n; i++)
        ASSERT_EQ(((const struct row *)mms_table_get(t, i))->k, (int64_t)i);
    OK(mms_read_end(s));
    OK(mms_close(s));
}

/* The writer: 4 commits of 50 rows (100..299), then killed in its 5th
 * (300..349) after its journal sync, before its count. */
static void rows_writer(const char *path)
{
    setenv("MMS_CRASH", "commit.journal_synced:5", 1);
    mms_store *s = open_flags(path, 0);
    for (int64_t c = 0; c < 5; c++) {
        append_rows(s, 100 + 50 * c, 50);
        PUB(sh->ok, c + 1);
    }
    FAILF("not killed");
}

static uint64_t raw_value(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    if (!p)
        FAILF("no %s in:\n%s", key, out);
    return strtoull(p + strlen(key), NULL, 10);
}

TEST(tool_after_writer_killed_readers_inside)
{
    const char *path = store_path("tool");
    make_rows(path, 100);
    memset(sh, 0, sizeof *sh);
    pid_t r = unw_child(false, rows_reader, path);
    pid_t u = unw_child(true, rows_reader, path);
    WAIT_FOR(GET(sh->r_stage) >= 1, r);
    WAIT_FOR(GET(sh->a_stage) >= 1, u);
    ASSERT_EQ(GET(sh->last), 100);
    ASSERT_EQ(GET(sh->a_first), 100);
    pid_t w = unw_child(false, rows_writer, path);
    int st;
    if (!child_end(w, HANG_S, &st) || !WIFSIGNALED(st))
        FAILF("the writer ended with %s", child_status(st));
    ASSERT_EQ(GET(sh->ok), 4);
    /* txn 1 made the table; 2..5 the writer's counted commits, 6 its last */
    static char out[65536];
    char csv[600], copy[600];
    int rc;

    /* mms readers: does not open the store. */
    rc = tool(false, out, sizeof out, "readers %s", path);
    tool_hung(rc, "readers", out);
    ASSERT_EQ(rc, 0);
    char pidtxt[32];
    snprintf(pidtxt, sizeof pidtxt, "%d ", (int)r);
    /* The slotless count is a snapshot of the kernel's lock table, which
     * counted 2 once under load (make test -j2): at least the reader. */
    if (!strstr(out, pidtxt) || !strstr(out, "without a slot") ||
        !strstr(out, "1 inside a read"))
        FAILF("mms readers does not show both readers:\n%s", out);

    /* The tools as a user who may not write the store, before anyone took
     * the dead writer's commit over: they work or say that the store needs
     * recovery. */
    rc = tool(true, out, sizeof out, "info %s", path);
    tool_hung(rc, "info (nobody)", out);
    fprintf(stderr, "%s", out);
    if (rc != 0 && !strstr(out, "recovery"))
        FAILF("mms info as nobody failed without saying why:\n%s", out);
    rc = tool(true, out, sizeof out, "get %s t k 5", path);
    tool_hung(rc, "get (nobody)", out);
    fprintf(stderr, "%s", out);
    if (rc != 0 && !strstr(out, "recovery"))
        FAILF("mms get as nobody failed without saying why:\n%s", out);

    /* mms info: the dead writer's commit, taken over (6 committed), with
     * the readers holding it back (1 published). */
    rc = tool(false, out, sizeof out, "info %s --raw", path);
    tool_hung(rc, "info", out);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(raw_value(out, "committed_txn: "), 6);
    ASSERT_EQ(raw_value(out, "published_txn: "), 1);
    ASSERT_EQ(raw_value(out, "handles_without_slot: "), 1);

    /* mms get: the published state. */
    rc = tool(false, out, sizeof out, "get %s t k 99", path);
    tool_hung(rc, "get", out);
    ASSERT_EQ(rc, 0);
    ASSERT(strstr(out, "99,99"));
    rc = tool(true, out, sizeof out, "get %s t k 99", path);
    tool_hung(rc, "get (nobody, after the take-over)", out);
    if (rc != 0)
        FAILF("mms get as nobody after the take-over:\n%s", out);

    /* mms copy: the published state, whole, at once. */
    snprintf(copy, sizeof copy, "%s.copy", path);
    rmrf(copy);
    rc = tool(false, out, sizeof out, "copy %s %s", path, copy);
    tool_hung(rc, "copy", out);
    if (rc != 0)
        FAILF("mms copy:\n%s", out);
    {
        mms_store *c = open_flags(copy, MMS_RDONLY);
        verify_ok(c);
        OK(mms_read_begin(c));
        mms_table *t;
        OK(mms_table_open(c, "t", &row_schema, 0, &t));
        uint64_t n = mms_table_count(t);
        ASSERT(n == 100 || n == 350);
        for (uint64_t i = 0; i < n; i++)
            ASSERT_EQ(((const struct row *)mms_table_get(t, i))->k, (int64_t)i);
        OK(mms_read_end(c));
        OK(mms_close(c));
        fprintf(stderr, "   the copy holds %llu rows\n", (unsigned long long)n);
    }
    rmrf(copy);

    /* mms import, appending 350..399: a writer, with the readers inside. */
    snprintf(csv, sizeof csv, "%s.csv", path);
    {
        FILE *f = fopen(csv, "w");
        ASSERT(f);
        fprintf(f, "k,v\n");
        for (int i = 350; i < 400; i++)
            fprintf(f, "%d,%d\n", i, i);
        ASSERT_EQ(fclose(f), 0);
    }
    rc = tool(false, out, sizeof out, "import %s t %s", path, csv);
    tool_hung(rc, "import", out);
    if (rc != 0)
        FAILF("mms import (appending):\n%s", out);

    /* mms compact: needs the store to itself; refused at once, clearly. */
    rc = tool(false, out, sizeof out, "compact %s", path);
    tool_hung(rc, "compact", out);
    fprintf(stderr, "%s", out);
    ASSERT_NE(rc, 0);
    if (!strstr(out, "open") && !strstr(out, "busy") && !strstr(out, "Busy"))
        FAILF("mms compact did not say why:\n%s", out);
    /* ... counting the reader without a slot beside the slotted ones */
    if (!strstr(out, "without a slot"))
        FAILF("mms compact left the reader without a slot out:\n%s", out);

    /* mms verify: applies the backlog first, so it waits for the readers
     * inside; started now, it must end once they leave. */
    char vargs[700];
    snprintf(vargs, sizeof vargs, "verify %s", path);
    struct tool_run v = tool_start(false, vargs);
    rc = tool(false, out, sizeof out, "readers %s", path);
    tool_hung(rc, "readers", out);
    ASSERT_EQ(GET(sh->r_stage), 1);
    ASSERT_EQ(GET(sh->a_stage), 1);
    PUB(sh->stage, 2);
    child_ok(r, "the slotted reader");
    child_ok(u, "the unslotted reader");
    rc = tool_finish(v, out, sizeof out);
    fprintf(stderr, "   mms verify (started with the readers inside) -> %d\n%s", rc, out);
    tool_hung(rc, "verify", out);
    ASSERT_EQ(rc, 0);

    /* Nothing lost: 400 rows, k = 0..399. */
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    mms_table *t;
    OK(mms_table_open(s, "t", &row_schema, 0, &t));
    ASSERT_EQ(mms_table_count(t), 400);
    for (uint64_t i = 0; i < 400; i++)
        ASSERT_EQ(((const struct row *)mms_table_get(t, i))->k, (int64_t)i);
    OK(mms_read_end(s));
    verify_ok(s);
    OK(mms_close(s));
    rc = tool(false, out, sizeof out, "compact %s", path);
    tool_hung(rc, "compact (alone)", out);
    ASSERT_EQ(rc, 0);
    unlink(csv);
    rmrf(path);
}

/* Each command as the first handle after the kill (the one that takes
 * the dead writer's uncounted commit over), with a slotted and an
 * unslotted reader inside: it works (or compact refuses at once), none
 * hangs, and the store ends with every row. verify waits for the readers:
 * it is started, then they leave. */
static void tool_first_case(const char *cmd)
{
    const char *path = store_path("first");
    make_rows(path, 100);
    memset(sh, 0, sizeof *sh);
    pid_t r = unw_child(false, rows_reader, path);
    pid_t u = unw_child(true, rows_reader, path);
    WAIT_FOR(GET(sh->r_stage) >= 1, r);
    WAIT_FOR(GET(sh->a_stage) >= 1, u);
    pid_t w = unw_child(false, rows_writer, path);
    int st;
    if (!child_end(w, HANG_S, &st) || !WIFSIGNALED(st))
        FAILF("the writer ended with %s", child_status(st));
    static char out[65536];
    char csv[600], copy[600], args[1500];
    snprintf(csv, sizeof csv, "%s.csv", path);
    snprintf(copy, sizeof copy, "%s.copy", path);
    int64_t rows = 350;
    if (strcmp(cmd, "import") == 0) {
        FILE *f = fopen(csv, "w");
        ASSERT(f);
        fprintf(f, "k,v\n");
        for (int i = 350; i < 400; i++)
            fprintf(f, "%d,%d\n", i, i);
        ASSERT_EQ(fclose(f), 0);
        snprintf(args, sizeof args, "import %s t %s", path, csv);
        rows = 400;
    } else if (strcmp(cmd, "copy") == 0) {
        rmrf(copy);
        snprintf(args, sizeof args, "copy %s %s", path, copy);
    } else if (strcmp(cmd, "get") == 0) {
        snprintf(args, sizeof args, "get %s t k 7", path);
    } else {
        snprintf(args, sizeof args, "%s %s", cmd, path);
    }
    struct tool_run t = tool_start(false, args);
    if (strcmp(cmd, "verify") == 0)
        PUB(sh->stage, 2); /* it waits for them */
    int rc = tool_finish(t, out, sizeof out);
    fprintf(stderr, "   first after the kill: mms %s -> %d\n", args, rc);
    tool_hung(rc, cmd, out);
    if (strcmp(cmd, "compact") == 0) {
        ASSERT_NE(rc, 0);
        if (!strstr(out, "in use"))
            FAILF("mms compact did not say why:\n%s", out);
    } else if (rc != 0) {
        FAILF("mms %s, first after the kill:\n%s", cmd, out);
    }
    if (strcmp(cmd, "info") == 0)
        ASSERT_EQ(raw_value(out, "committed_txn: "), 6);
    if (strcmp(cmd, "copy") == 0) {
        mms_store *c = open_flags(copy, MMS_RDONLY);
        verify_ok(c);
        OK(mms_close(c));
        rmrf(copy);
    }
    PUB(sh->stage, 2);
    child_ok(r, "the slotted reader");
    child_ok(u, "the unslotted reader");
    mms_store *s = open_flags(path, MMS_RDONLY);
    OK(mms_read_begin(s));
    mms_table *tb;
    OK(mms_table_open(s, "t", &row_schema, 0, &tb));
    ASSERT_EQ(mms_table_count(tb), rows);
    for (int64_t i = 0; i < rows; i++)
        ASSERT_EQ(((const struct row *)mms_table_get(tb, (uint64_t)i))->k, i);
    OK(mms_read_end(s));
    verify_ok(s);
    OK(mms_close(s));
    unlink(csv);
    rmrf(path);
}

TEST(tool_first_after_writer_killed)
{
    static const char *const cmds[] = {"info", "verify", "copy", "get", "import", "compact",
                                       "readers"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        tool_first_case(cmds[i]);
}

/* mms verify applies the commits readers hold back first, so it waits for
 * the readers inside (include/mmstore.h, mms_verify; README "Long
 * readers"), and while it waits with the gate closed every new open and
 * read transaction waits too. After a writer was killed a user runs it
 * first; it must then say what it waits for, as the tools do for a reader
 * that holds a writer back at its bound (tool_note_readers). FAILS: with a
 * reader inside for less than reader_limit_ms when it starts (here a
 * slotted one), or one without a slot, it waits in silence for as long as
 * the reader stays. */
static void say_case(bool unpriv_reader)
{
    const char *path = store_path("say");
    make_rows(path, 100);
    memset(sh, 0, sizeof *sh);
    pid_t rd = unw_child(unpriv_reader, rows_reader, path);
    if (unpriv_reader)
        WAIT_FOR(GET(sh->a_stage) >= 1, rd);
    else
        WAIT_FOR(GET(sh->r_stage) >= 1, rd);
    pid_t w = unw_child(false, rows_writer, path); /* 4 commits held back, killed in the 5th */
    int st;
    if (!child_end(w, HANG_S, &st) || !WIFSIGNALED(st))
        FAILF("the writer ended with %s", child_status(st));
    char args[700];
    snprintf(args, sizeof args, "verify %s", path);
    struct tool_run v = tool_start(false, args);
    /* It waits with the gate closed (odd), the same word for 50 ms. */
    for (int same = 0; same < 50;) {
        WAIT_FOR(gate_word(path) & 1, v.pid);
        uint32_t g = gate_word(path);
        sleep_us(1000);
        same = gate_word(path) == g ? same + 1 : 0;
    }
    static char said[8192];
    size_t len = 0;
    for (struct pollfd pf = {v.fd, POLLIN, 0}; len < sizeof said - 1 && poll(&pf, 1, 0) > 0;) {
        ssize_t k = read(v.fd, said + len, sizeof said - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    said[len] = 0;
    bool silent = !strstr(said, "read transaction") && !strstr(said, "reader");
    PUB(sh->stage, 2);
    child_ok(rd, "the reader");
    static char out[8192];
    int rc = tool_finish(v, out, sizeof out);
    tool_hung(rc, "verify", out);
    ASSERT_EQ(rc, 0);
    if (silent)
        FAILF("mms verify waited for a%s reader inside a read transaction and said nothing "
              "while it waited (stderr so far: \"%s\"); once the reader left it said:\n%s",
              unpriv_reader ? "n unslotted" : " slotted", said, out);
    rmrf(path);
}

TEST(verify_says_it_waits_for_readers)
{
    say_case(true);
    say_case(false);
}

int main(void)
{
    if (!(sh = unw_start(sizeof *sh)))
        return 0;
    RUN(unslotted_inside_writer_killed);
    RUN(unslotted_inside_then_slotted_reader_takes_over);
    RUN(tool_after_writer_killed_readers_inside);
    RUN(tool_first_after_writer_killed);
    RUN(verify_says_it_waits_for_readers);
    RUN(wait_sees_dead_writers_last_commit);
    unw_finish();
    fprintf(stderr, "test_qa22: ok\n");
    return 0;
}

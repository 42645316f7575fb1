/*
 * test_qa21.c -- a QA pass (qa21), outside in: several processes at once
 * (two writers racing for the lock while a third opens and closes readers,
 * a reader that holds one read transaction across many commits, writers
 * killed at random moments) with a counter invariant every reader checks;
 * and the bugs the pass found, each case named for it:
 *
 *   replay_guard   a write handle with the mprotect guard that replayed
 *                  commits a reader held back, into a region they had
 *                  grown or created, crashed (SIGSEGV) in mms_txn_begin
 *   find_fails_null  a failed mms_table_find left *t as it was
 *   dropped_stays_gone  a handle whose table another handle dropped took
 *                    the next table made in its region after an abort
 */
#include "test.h"

#include <dirent.h>
#include <stdarg.h>

#include "table_world.h"

/* The state every commit keeps whole: the root's counter a, b = 3a, and
 * the table "log" holding records n = 1..a (record i has n = i + 1), with
 * a unique ordered index on n and a hash index on sq: record i's sq is
 * (i + 1)^2, but for the records a plain store of a later commit k set
 * to -k (record k / 2; the last such store wins). */
struct ctr {
    uint64_t a, b;
};
struct logrec {
    int64_t n;
    int64_t sq;
};
static const mms_field log_fields[] = {MMS_F_I64(struct logrec, n), MMS_F_I64(struct logrec, sq)};
static const mms_schema log_schema = MMS_SCHEMA(struct logrec, log_fields);

/* What the processes share (a MAP_SHARED page made before the forks). */
struct race {
    uint64_t commits;  /* commits the writers saw succeed */
    uint64_t bad;      /* states a reader saw that no commit made */
    uint64_t reads;    /* read transactions checked */
    uint64_t held;     /* read transactions held across >= HOLD_COMMITS commits */
    uint64_t stop;
    uint64_t short_holds; /* the holder's read transactions end soon */
    char why[256];     /* the first bad state */
};
#define HOLD_COMMITS 40

static struct race *race_page(void)
{
    struct race *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(r != MAP_FAILED);
    memset(r, 0, sizeof *r);
    return r;
}

static void race_bad(struct race *r, const char *fmt, ...)
{
    if (INC(r->bad) == 1) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->why, sizeof r->why, fmt, ap);
        va_end(ap);
    }
}

/* Inside a read transaction of s: is what s sees a committed state?
 * Returns its counter (0 for a store no commit has touched). */
static uint64_t race_check(struct race *r, mms_store *s)
{
    mms_ref root = mms_root(s);
    mms_table *t;
    int rc = mms_table_find(s, "log", &t);
    if (!root) {
        if (rc != MMS_ENOENT)
            race_bad(r, "no root, but the log table: %d", rc);
        return 0;
    }
    struct ctr *c = mms_ptr(s, root);
    if (!c || rc) {
        race_bad(r, "root %#llx: %p, log table %d (%s)", (unsigned long long)root, (void *)c, rc,
                 mms_errdetail());
        return 0;
    }
    uint64_t a = c->a, b = c->b;
    if (b != 3 * a || mms_table_count(t) != a || mms_table_slots(t) != a)
        race_bad(r, "a %llu b %llu count %llu slots %llu", (unsigned long long)a,
                 (unsigned long long)b, (unsigned long long)mms_table_count(t),
                 (unsigned long long)mms_table_slots(t));
    if (a) {
        const struct logrec *last = mms_table_get(t, a - 1);
        if (!last || last->n != (int64_t)a || (a / 2 != a - 1 && last->sq != (int64_t)(a * a)))
            race_bad(r, "a %llu: last record %lld", (unsigned long long)a,
                     last ? (long long)last->n : -1LL);
        mms_index *ix;
        uint64_t at = 0;
        int64_t key = (int64_t)a;
        if ((rc = mms_index_open(t, "n", &ix)) != 0 || (rc = mms_index_find(ix, &key, &at)) != 0 ||
            at != a - 1)
            race_bad(r, "a %llu: index finds %llu (%d %s)", (unsigned long long)a,
                     (unsigned long long)at, rc, mms_errdetail());
        key = (int64_t)a + 1;
        if (rc == 0 && (rc = mms_index_find(ix, &key, &at)) != MMS_ENOTFOUND)
            race_bad(r, "a %llu: index finds key a+1: %d", (unsigned long long)a, rc);
        /* The plain store of the commit that made a: record a / 2 holds
         * sq = -a, and the index on sq (kept from the dirty-page diff)
         * finds it there; -(a - 1) is where that commit's store left it. */
        const struct logrec *j = mms_table_get(t, a / 2);
        key = -(int64_t)a;
        if (!j || j->sq != key)
            race_bad(r, "a %llu: record %llu has sq %lld", (unsigned long long)a,
                     (unsigned long long)(a / 2), j ? (long long)j->sq : 0LL);
        if ((rc = mms_index_open(t, "sq", &ix)) != 0 || (rc = mms_index_find(ix, &key, &at)) != 0 ||
            at != a / 2)
            race_bad(r, "a %llu: the sq index finds %llu (%d %s)", (unsigned long long)a,
                     (unsigned long long)at, rc, mms_errdetail());
        key = -(int64_t)(a - 1);
        if (a > 1 && rc == 0) {
            rc = mms_index_find(ix, &key, &at);
            int want = (a - 1) / 2 == a / 2 ? MMS_ENOTFOUND : 0;
            if (rc != want || (rc == 0 && at != (a - 1) / 2))
                race_bad(r, "a %llu: the sq index finds %lld at %llu (%d)", (unsigned long long)a,
                         (long long)key, (unsigned long long)at, rc);
        }
    }
    return a;
}

/* One commit: a += 1, b = 3a, one more log record. */
static int race_commit(mms_store *s)
{
    int rc = mms_txn_begin(s, 0);
    if (rc)
        return rc;
    mms_table *t;
    mms_ref root = mms_root(s);
    if (!root) {
        if ((rc = mms_zalloc(s, sizeof(struct ctr), &root)) || (rc = mms_root_set(s, root)) ||
            (rc = mms_table_open(s, "log", &log_schema, MMS_TABLE_CREATE, &t)) ||
            (rc = mms_index_create(t, "n", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE)) ||
            (rc = mms_index_create(t, "sq", MMS_INDEX_HASH)))
            goto fail;
    } else if ((rc = mms_table_open(s, "log", &log_schema, 0, &t)) != 0) {
        goto fail;
    }
    struct ctr *c = mms_deref(s, root);
    c->a++;
    c->b = 3 * c->a;
    struct logrec lr = {(int64_t)c->a, (int64_t)(c->a * c->a)};
    if ((rc = mms_table_append(t, &lr, NULL)) != 0)
        goto fail;
    MMS_TABLE_GET(t, struct logrec, c->a / 2)->sq = -(int64_t)c->a; /* found by the diff */
    return mms_txn_commit(s);
fail:
    mms_txn_abort(s);
    return rc;
}

static void race_writer(struct race *r, const char *p)
{
    mms_store *s;
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE;
    int rc = mms_open(p, &o, &s);
    if (rc) {
        race_bad(r, "writer open: %s (%s)", mms_strerror(rc), mms_errdetail());
        _exit(1);
    }
    while (!GET(r->stop)) {
        if ((rc = race_commit(s)) != 0) {
            race_bad(r, "writer commit: %s (%s)", mms_strerror(rc), mms_errdetail());
            _exit(1);
        }
        INC(r->commits);
    }
    mms_close(s);
    _exit(0);
}

/* Opens a handle, checks one read transaction, closes it, again. */
static void race_opener(struct race *r, const char *p)
{
    while (!GET(r->stop)) {
        mms_store *s;
        int rc = mms_open(p, NULL, &s);
        if (rc) {
            race_bad(r, "reader open: %s (%s)", mms_strerror(rc), mms_errdetail());
            _exit(1);
        }
        if ((rc = mms_read_begin(s)) != 0) {
            race_bad(r, "read begin: %s (%s)", mms_strerror(rc), mms_errdetail());
            _exit(1);
        }
        race_check(r, s);
        INC(r->reads);
        mms_read_end(s);
        mms_close(s);
    }
    _exit(0);
}

/* Holds each read transaction until the writers have committed
 * HOLD_COMMITS more times (readers never delay a commit, DESIGN 4): the
 * state it sees must not move meanwhile. Once r->short_holds is set (while
 * writers are killed: the next writer recovers a dead one's commits, which
 * waits for the readers inside, mmstore.h "Read transactions"), it holds
 * each for 20 looks a millisecond apart instead. */
static void race_holder(struct race *r, const char *p)
{
    mms_store *s;
    int rc = mms_open(p, NULL, &s);
    if (rc) {
        race_bad(r, "holder open: %s (%s)", mms_strerror(rc), mms_errdetail());
        _exit(1);
    }
    while (!GET(r->stop)) {
        if ((rc = mms_read_begin(s)) != 0) {
            race_bad(r, "holder begin: %s (%s)", mms_strerror(rc), mms_errdetail());
            _exit(1);
        }
        uint64_t a = race_check(r, s), c0 = GET(r->commits);
        for (int looks = 0; !GET(r->stop); looks++) {
            if (GET(r->short_holds) ? looks == 20 : GET(r->commits) >= c0 + HOLD_COMMITS)
                break;
            sleep_us(1000);
            uint64_t a2 = race_check(r, s);
            if (a2 != a)
                race_bad(r, "a read transaction saw a %llu, then %llu", (unsigned long long)a,
                         (unsigned long long)a2);
        }
        if (GET(r->commits) >= c0 + HOLD_COMMITS)
            INC(r->held);
        mms_read_end(s);
    }
    mms_close(s);
    _exit(0);
}

static pid_t race_fork(struct race *r, const char *p, void (*role)(struct race *, const char *))
{
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        die_with_parent(parent);
        signal(SIGABRT, SIG_DFL);
        role(r, p);
        _exit(0);
    }
    return pid;
}

/* `mms copy` of the store while the writers race (and one was just
 * killed): the copy is one committed state, and `mms readers
 * --clear-stale` and `mms info` answer meanwhile. */
static void race_copy(struct race *r, const char *p, int kills)
{
    char dest[600], args[1400], out[8192];
    snprintf(dest, sizeof dest, "%s.copy%d", p, kills);
    const char *cmds[] = {"copy '%s' '%s'", "readers '%s' --clear-stale", "info '%s'"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, cmds[i], p, dest);
        int rc = run_tool(args, out, sizeof out);
        if (rc)
            FAILF("mms %s: %d: %s", args, rc, out);
    }
    mms_store *c = open_flags(dest, MMS_RDONLY);
    verify_ok(c);
    OK(mms_read_begin(c));
    race_check(r, c);
    OK(mms_read_end(c));
    OK(mms_close(c));
    if (GET(r->bad))
        FAILF("the copy %s: %s", dest, r->why);
    rmrf(dest);
}

/* Two writers race for the lock, one process opens and closes readers, one
 * holds read transactions across commits; the parent kills a writer with
 * SIGKILL at random moments and starts another (and now and then the
 * reader that opens and closes, and copies the store with `mms copy`). Every state a reader sees
 * is a committed one; the store verifies after; the counter holds every
 * commit a writer saw succeed, and at most one more per kill (a commit
 * whose writer died before it counted it). */
TEST(race_kill_writers)
{
    const char *p = shm_tpath("qa21race");
    struct race *r = race_page();
    uint64_t x = seed0 ^ 0x9e3779b97f4a7c15ull;
    pid_t w[2], opener, holder;
    for (int i = 0; i < 2; i++)
        w[i] = race_fork(r, p, race_writer);
    AWAIT(GET(r->commits) > 0, w[0], 60, "no commit");
    opener = race_fork(r, p, race_opener);
    holder = race_fork(r, p, race_holder);
    AWAIT(GET(r->held) >= 3, holder, 120,
          "the holder held %llu read transactions across %d commits (%s)",
          (unsigned long long)GET(r->held), HOLD_COMMITS, r->why);
    PUB(r->short_holds, 1);
    int kills = 0;
    for (; kills < 24; kills++) {
        sleep_us((unsigned)(rnd_next(&x) % 30000));
        int k = (int)(rnd_next(&x) % 2), st;
        ASSERT_EQ(kill(w[k], SIGKILL), 0);
        ASSERT_EQ(waitpid(w[k], &st, 0), w[k]);
        if (!WIFSIGNALED(st))
            FAILF("writer ended before its kill: %s; %s", child_status(st), r->why);
        w[k] = race_fork(r, p, race_writer);
        if (kills % 4 == 3) { /* a reader dies too, maybe inside */
            ASSERT_EQ(kill(opener, SIGKILL), 0);
            ASSERT_EQ(waitpid(opener, &st, 0), opener);
            opener = race_fork(r, p, race_opener);
        }
        if (kills % 6 == 5)
            race_copy(r, p, kills);
        if (GET(r->bad))
            FAILF("kill %d: %llu bad states; the first: %s", kills,
                  (unsigned long long)GET(r->bad), r->why);
    }
    uint64_t c0 = GET(r->commits), reads0 = GET(r->reads);
    AWAIT(GET(r->commits) > c0 + 10 && GET(r->reads) > reads0 + 10, holder, 120,
          "after the kills: %llu commits, %llu reads (%s)", (unsigned long long)(GET(r->commits) - c0),
          (unsigned long long)(GET(r->reads) - reads0), r->why);
    PUB(r->stop, 1);
    pid_t all[4] = {w[0], w[1], opener, holder};
    for (int i = 0; i < 4; i++) {
        int st;
        if (!child_end(all[i], 60, &st))
            FAILF("child %d hung at the end", i);
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            FAILF("child %d: %s; %s", i, child_status(st), r->why);
    }
    if (GET(r->bad))
        FAILF("%llu bad states; the first: %s", (unsigned long long)GET(r->bad), r->why);
    fprintf(stderr, "   %d kills, %llu commits, %llu reads, %llu held\n", kills,
            (unsigned long long)GET(r->commits), (unsigned long long)GET(r->reads),
            (unsigned long long)GET(r->held));
    mms_store *s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_read_begin(s));
    uint64_t a = race_check(r, s);
    OK(mms_read_end(s));
    ASSERT_EQ(GET(r->bad), 0);
    ASSERT_GE(a, GET(r->commits));
    ASSERT_LE(a, GET(r->commits) + (uint64_t)kills);
    OK(mms_close(s));
    char out[4096], args[600];
    snprintf(args, sizeof args, "verify '%s'", p);
    int rc = run_tool(args, out, sizeof out);
    if (rc)
        FAILF("mms verify: %d: %s", rc, out);
    munmap(r, sizeof *r);
    rmrf(p);
}

/* The steps of replay_guard's children, in a shared page. */
struct steps {
    int inside;  /* the reader is inside its read transaction */
    int release; /* it may end it */
    int opened;  /* the second writer has its handle */
    int go;      /* it may begin */
    int began;   /* its mms_txn_begin returned: 0, or the code + 1000000 */
};

/* A write handle with the mprotect guard begins a transaction while a
 * reader holds back commits that another handle made, one of which
 * created a table and grew it: it replays them into its private pages
 * (view.c), mapping the new region and the growth as it goes -- read-only,
 * as the guard maps everything outside a write transaction, and its
 * replay then wrote into them: SIGSEGV in mms_txn_begin. (Where the CPU
 * has protection keys, MMS_GUARD=1 takes a key and maps read-write; the
 * case asks for the mprotect guard.) */
TEST(replay_guard)
{
    const char *p = shm_tpath("qa21replay");
    mms_store *a = open_flags(p, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(a, 0));
    OK(mms_table_open(a, "log", &log_schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_append(t, NULL, NULL));
    OK(mms_txn_commit(a));
    OK(mms_close(a));
    struct steps *st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(st != MAP_FAILED);
    memset(st, 0, sizeof *st);
    fflush(NULL);
    pid_t parent = getpid(), reader = fork();
    ASSERT(reader >= 0);
    if (reader == 0) {
        die_with_parent(parent);
        mms_store *r = open_flags(p, 0);
        OK(mms_read_begin(r));
        PUB(st->inside, 1);
        while (!GET(st->release))
            sleep_us(200);
        OK(mms_read_end(r));
        OK(mms_close(r));
        _exit(0);
    }
    pid_t writer = fork();
    ASSERT(writer >= 0);
    if (writer == 0) {
        die_with_parent(parent);
        setenv("MMS_GUARD", "mprotect", 1);
        mms_store *b = open_flags(p, 0);
        PUB(st->opened, 1);
        while (!GET(st->go))
            sleep_us(200);
        int rc = mms_txn_begin(b, 0);
        PUB(st->began, rc ? rc + 1000000 : 1);
        if (rc)
            _exit(1);
        mms_table *bt, *bn;
        OK(mms_table_find(b, "log", &bt));
        OK(mms_table_find(b, "new", &bn));
        if (mms_table_count(bt) != 20001 || mms_table_count(bn) != 20000 ||
            MMS_TABLE_GET(bt, struct logrec, 20000)->n != 7 ||
            MMS_TABLE_GET(bn, struct logrec, 19999)->n != 7)
            _exit(2);
        OK(mms_table_append(bt, NULL, NULL));
        OK(mms_txn_commit(b));
        OK(mms_close(b));
        _exit(0);
    }
    AWAIT(GET(st->inside) && GET(st->opened), reader, 60, "the children did not start");
    /* Commits the reader holds back: the log grows past its mapping, a
     * new table comes. */
    a = open_flags(p, 0);
    uint64_t first;
    OK(mms_txn_begin(a, 0));
    OK(mms_table_open(a, "log", &log_schema, 0, &t));
    OK(mms_table_append_many(t, 20000, &first, NULL));
    OK(mms_txn_commit(a));
    OK(mms_txn_begin(a, 0));
    OK(mms_table_open(a, "new", &log_schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_append_many(t, 20000, &first, NULL));
    OK(mms_txn_commit(a));
    /* Stores into what the commits before made: journaled, as changed
     * bytes of space that is committed now. */
    OK(mms_txn_begin(a, 0));
    MMS_TABLE_GET(t, struct logrec, 19999)->n = 7;
    OK(mms_table_open(a, "log", &log_schema, 0, &t));
    MMS_TABLE_GET(t, struct logrec, 20000)->n = 7;
    OK(mms_txn_commit(a));
    OK(mms_close(a));
    PUB(st->go, 1);
    int ws;
    if (!child_end(writer, 60, &ws))
        FAILF("the second writer hung");
    if (!WIFEXITED(ws) || WEXITSTATUS(ws))
        FAILF("the second writer: %s (its begin: %d)", child_status(ws), GET(st->began));
    PUB(st->release, 1);
    int rs;
    ASSERT(child_end(reader, 60, &rs));
    ASSERT(WIFEXITED(rs) && WEXITSTATUS(rs) == 0);
    a = open_flags(p, 0);
    verify_ok(a);
    OK(mms_read_begin(a));
    OK(mms_table_find(a, "log", &t));
    ASSERT_EQ(mms_table_count(t), 20002);
    OK(mms_read_end(a));
    OK(mms_close(a));
    munmap(st, sizeof *st);
    rmrf(p);
}

struct w1 { /* the log record widened, a field added */
    int64_t n;
    int64_t sq;
    int32_t tag;
    int32_t pad;
};
static const mms_field w1_fields[] = {MMS_F_I64(struct w1, n), MMS_F_I64(struct w1, sq),
                                      MMS_F_I32(struct w1, tag)};
static const mms_schema w1_schema = MMS_SCHEMA(struct w1, w1_fields);

/* Every region file of the store's directory is the heap, a table's or an
 * index's, in its current generation: nothing a killed process left. */
static void no_stray_regions(const char *p, mms_store *s)
{
    mms_table_info ti[16];
    size_t n = 0;
    uint32_t regions[64];
    int nr = 0;
    OK(mms_read_begin(s));
    OK(mms_tables(s, ti, 16, &n));
    ASSERT_LE(n, 16);
    for (size_t i = 0; i < n; i++) {
        regions[nr++] = ti[i].region;
        mms_table *t;
        mms_index_info ii[8];
        size_t ni = 0;
        OK(mms_table_find(s, ti[i].name, &t));
        OK(mms_indexes(t, ii, 8, &ni));
        ASSERT_LE(ni, 8);
        for (size_t k = 0; k < ni; k++)
            regions[nr++] = ii[k].region;
    }
    OK(mms_read_end(s));
    DIR *d = opendir(p);
    ASSERT(d);
    for (struct dirent *de; (de = readdir(d));) {
        unsigned id, gen;
        char tail;
        if (sscanf(de->d_name, "region-%u-%u%c", &id, &gen, &tail) != 2 || id == 0)
            continue;
        int j = 0;
        while (j < nr && regions[j] != id)
            j++;
        if (j == nr)
            FAILF("%s: file %s belongs to no table nor index", p, de->d_name);
        if (gen != region_gen(s, id))
            FAILF("%s: file %s is not region %u's generation %u", p, de->d_name, id,
                  region_gen(s, id));
    }
    closedir(d);
}

/* Read transactions of 20 looks a millisecond apart, while the table is
 * migrated and indexed by a process that is killed: each sees the table
 * whole, and its indexes (if it has them) find its records. */
static void ix_reader(struct race *r, const char *p)
{
    mms_store *s;
    int rc = mms_open(p, NULL, &s);
    uint64_t x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
    if (rc) {
        race_bad(r, "reader open: %s (%s)", mms_strerror(rc), mms_errdetail());
        _exit(1);
    }
    while (!GET(r->stop)) {
        if ((rc = mms_read_begin(s)) != 0) {
            race_bad(r, "read begin: %s (%s)", mms_strerror(rc), mms_errdetail());
            _exit(1);
        }
        mms_table *t;
        mms_index *ix;
        for (int look = 0; look < 20; look++) {
            uint64_t i = rnd_next(&x) % 200000, at = 0;
            int64_t key = (int64_t)i + 1;
            if ((rc = mms_table_find(s, "log", &t)) != 0 || mms_table_count(t) != 200000 ||
                ((const struct logrec *)mms_table_get(t, i))->n != key)
                race_bad(r, "look %d: the table: %d, %llu records", look, rc,
                         rc ? 0ULL : (unsigned long long)mms_table_count(t));
            else if ((rc = mms_index_open(t, "n", &ix)) == 0 &&
                     ((rc = mms_index_find(ix, &key, &at)) != 0 || at != i))
                race_bad(r, "look %d: the index on n finds %lld at %llu (%d %s)", look,
                         (long long)key, (unsigned long long)at, rc, mms_errdetail());
            else if (rc && rc != MMS_ENOENT)
                race_bad(r, "look %d: the index on n: %d %s", look, rc, mms_errdetail());
            sleep_us(1000);
        }
        INC(r->reads);
        mms_read_end(s);
    }
    mms_close(s);
    _exit(0);
}

/* Index builds and migrations of an indexed table, killed (SIGKILL) at
 * random moments: the store opens at a committed state, verifies, its
 * indexes find what the table holds, and no region file is left over; a
 * reader in another process checks the same all along. */
TEST(kill_index_build_migrate)
{
    const char *p = shm_tpath("qa21ixkill");
    enum { N = 200000 };
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t;
    uint64_t first;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "log", &log_schema, MMS_TABLE_CREATE, &t));
    struct logrec *lr;
    OK(mms_table_append_many(t, N, &first, (void **)&lr));
    for (int64_t i = 0; i < N; i++)
        lr[i] = (struct logrec){i + 1, (i * 7919) % 1000};
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    uint64_t x = seed0 ^ 0x51ed27ull;
    struct race *rc = race_page();
    pid_t reader = race_fork(rc, p, ix_reader);
    for (int round = 0; round < 12; round++) {
        fflush(NULL);
        pid_t parent = getpid(), pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            die_with_parent(parent);
            mms_store *c = open_flags(p, 0);
            mms_table *ct;
            for (int k = 0;; k++) {
                OK(mms_txn_begin(c, 0));
                const mms_schema *want = k % 2 ? &w1_schema : &log_schema;
                OK(mms_table_open(c, "log", want, 0, &ct));
                mms_index_info ii[4];
                size_t ni = 0;
                OK(mms_indexes(ct, ii, 4, &ni));
                if (ni == 0) {
                    OK(mms_index_create(ct, "n", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE));
                    OK(mms_index_create(ct, "sq", MMS_INDEX_HASH));
                } else if (k % 3 == 2) {
                    OK(mms_index_drop(ct, "sq"));
                    OK(mms_index_drop(ct, "n"));
                }
                OK(mms_txn_commit(c));
            }
        }
        sleep_us((unsigned)(rnd_next(&x) % 400000));
        int st;
        ASSERT_EQ(kill(pid, SIGKILL), 0);
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        if (!WIFSIGNALED(st))
            FAILF("round %d: the child ended before its kill: %s", round, child_status(st));
        s = open_flags(p, 0);
        verify_ok(s);
        OK(mms_checkpoint(s));
        OK(mms_read_begin(s));
        OK(mms_table_find(s, "log", &t));
        ASSERT_EQ(mms_table_count(t), N);
        mms_index_info ii[4];
        size_t ni = 0;
        OK(mms_indexes(t, ii, 4, &ni));
        for (size_t k = 0; k < ni; k++) {
            mms_index *ix;
            OK(mms_index_open(t, ii[k].field, &ix));
            ASSERT_EQ(ii[k].entries, N);
            for (int j = 0; j < 50; j++) {
                uint64_t i = rnd_next(&x) % N, at = UINT64_MAX, cnt = 0;
                int64_t key = strcmp(ii[k].field, "n") == 0 ? (int64_t)i + 1 : (int64_t)((i * 7919) % 1000);
                if (strcmp(ii[k].field, "n") == 0) {
                    OK(mms_index_find(ix, &key, &at));
                    ASSERT_EQ(at, i);
                } else {
                    OK(mms_index_count(ix, &key, &cnt));
                    ASSERT_GE(cnt, 1);
                }
            }
        }
        OK(mms_read_end(s));
        OK(mms_close(s));
        fprintf(stderr, "   round %d: %zu indexes\n", round, ni);
    }
    PUB(rc->stop, 1);
    int st;
    if (!child_end(reader, 60, &st))
        FAILF("the reader hung");
    if (!WIFEXITED(st) || WEXITSTATUS(st) || GET(rc->bad))
        FAILF("the reader: %s, %llu reads; %s", child_status(st), (unsigned long long)GET(rc->reads),
              rc->why);
    fprintf(stderr, "   the reader checked %llu read transactions\n", (unsigned long long)GET(rc->reads));
    munmap(rc, sizeof *rc);
    /* What the checkpoints kept for the reader goes at the next. */
    s = open_flags(p, 0);
    OK(mms_checkpoint(s));
    no_stray_regions(p, s);
    OK(mms_close(s));
    char out[4096], args[600];
    snprintf(args, sizeof args, "verify '%s'", p);
    int r = run_tool(args, out, sizeof out);
    if (r)
        FAILF("mms verify: %d: %s", r, out);
    rmrf(p);
}

/* mms_table_find that fails left *t as it was, where mms_table_open,
 * mms_index_open and mms_cursor_open set it NULL: a program that went on
 * with the handle it held (here that of another table; in the case that
 * found it, one of a handle closed since) used it, or freed memory,
 * instead of getting MMS_EINVAL for a NULL table. */
TEST(find_fails_null)
{
    const char *p = shm_tpath("qa21find");
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t, *u;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "log", &log_schema, MMS_TABLE_CREATE, &t));
    OK(mms_txn_commit(s));
    u = t;
    FAILS(mms_table_find(s, "nope", &u), MMS_ENOENT);
    ASSERT(u == NULL);
    u = t;
    FAILS(mms_table_find(s, "", &u), MMS_EINVAL);
    ASSERT(u == NULL);
    FAILS(mms_table_append(u, NULL, NULL), MMS_EINVAL);
    OK(mms_close(s));
    rmrf(p);
}

/* A handle of a table another handle dropped stays gone: an abort of any
 * write transaction on its store (which lets handles find back a rename
 * it undid) made it take the next table created in its region. */
TEST(dropped_stays_gone)
{
    const char *p = shm_tpath("qa21gone");
    mms_store *a = open_flags(p, MMS_CREATE), *b;
    mms_table *t, *d, *t2;
    struct logrec r = {1, 1}, *got;
    OK(mms_txn_begin(a, 0));
    OK(mms_table_open(a, "log", &log_schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_open(a, "d", &log_schema, MMS_TABLE_CREATE, &d));
    OK(mms_table_append(t, &r, NULL));
    OK(mms_txn_commit(a));
    b = open_flags(p, 0);
    OK(mms_txn_begin(b, 0));
    OK(mms_table_drop(b, "d"));
    OK(mms_txn_commit(b));
    OK(mms_txn_begin(a, 0)); /* follows the drop */
    ASSERT(mms_table_get(d, 0) == NULL);
    OK(mms_txn_abort(a));
    OK(mms_txn_begin(b, 0));
    OK(mms_table_open(b, "t2", &log_schema, MMS_TABLE_CREATE, &t2));
    r.n = 7;
    OK(mms_table_append(t2, &r, NULL));
    OK(mms_txn_commit(b));
    OK(mms_read_begin(a));
    got = mms_table_get(d, 0);
    if (got)
        FAILF("the dropped table's handle reads t2's record n=%lld, as '%s'", (long long)got->n,
              mms_table_name(d));
    ASSERT(mms_table_count(d) == 0);
    OK(mms_read_end(a));
    OK(mms_close(b));
    OK(mms_close(a));
    rmrf(p);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    table_test_begin("test_qa21");
    RUN(replay_guard);
    RUN(find_fails_null);
    RUN(dropped_stays_gone);
    RUN(race_kill_writers);
    RUN(kill_index_build_migrate);
    return table_test_end();
}

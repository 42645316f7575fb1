/*
 * test_copy.c -- hot copy (mms_copy, `mms copy`).
 *
 *  1. hot       A writer process commits continuously, keeping two
 *               invariants (the balances of acct always sum to the same;
 *               log holds one record, with a string, per transfer, and
 *               meta counts them), and a reader process reads all the
 *               while, checking them in every read transaction (and that
 *               the count never goes back); this process copies the store
 *               again and again, from a read-write and from a read-only
 *               handle, plain and compacted. Every copy opens, verifies, holds both
 *               invariants, and the copies move forward. Refused: an
 *               existing destination, the store itself, inside a
 *               transaction; --force replaces a store.
 *  2. kill      `mms copy` killed (SIGKILL) at each of its steps: the
 *               destination is absent, or -- once renamed -- whole; a
 *               later copy removes what the killed one left. With --force,
 *               the destination is the old store or the new one, whole.
 *  3. enospc    A full disk while copying: -ENOSPC, no destination, no
 *               temporary directory, the source untouched.
 */
#include "table_world.h"

#include <dirent.h>

#include "internal.h" /* mms__fault_arm() */

struct acct {
    int64_t balance;
};
static const mms_field acct_fields[] = {MMS_F_I64(struct acct, balance)};
static const mms_schema acct_schema = MMS_SCHEMA(struct acct, acct_fields);

struct logrec {
    int64_t n;
    mms_ref note;
};
static const mms_field log_fields[] = {MMS_F_I64(struct logrec, n), MMS_F_STR(struct logrec, note)};
static const mms_schema log_schema = MMS_SCHEMA(struct logrec, log_fields);

#define NACCT 5000
#define START 1000

static void make_store(const char *path)
{
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *a, *l, *m;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "acct", &acct_schema, MMS_TABLE_CREATE, &a));
    OK(mms_table_open(s, "log", &log_schema, MMS_TABLE_CREATE, &l));
    OK(mms_table_open(s, "meta", &acct_schema, MMS_TABLE_CREATE, &m));
    for (int i = 0; i < NACCT; i++) {
        struct acct r = {START};
        OK(mms_table_append(a, &r, NULL));
    }
    struct acct zero = {0};
    OK(mms_table_append(m, &zero, NULL));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

/* The writer: transfers for ever (until killed), each one commit. Every
 * 50th deletes the oldest log records but the last 100 and writes a big
 * string, so the heap both grows and frees. */
static void writer(const char *path)
{
    mms_store *s = sopen(path, 0);
    mms_table *a, *l, *m;
    OK(mms_table_find(s, "acct", &a));
    OK(mms_table_find(s, "log", &l));
    OK(mms_table_find(s, "meta", &m));
    uint64_t x = (uint64_t)getpid();
    char note[3000];
    for (uint64_t k = 1;; k++) {
        OK(mms_txn_begin(s, 0));
        uint64_t i = rnd_next(&x) % NACCT, j = rnd_next(&x) % NACCT;
        int64_t v = (int64_t)(rnd_next(&x) % 100);
        MMS_TABLE_GET(a, struct acct, i)->balance -= v;
        MMS_TABLE_GET(a, struct acct, j)->balance += v;
        struct logrec r = {v, 0};
        size_t len = k % 50 == 0 ? sizeof note : (size_t)(rnd_next(&x) % 200);
        memset(note, 'a' + (int)(k % 26), len);
        OK(mms_str_new(s, note, len, &r.note));
        OK(mms_table_append(l, &r, NULL));
        MMS_TABLE_GET(m, struct acct, 0)->balance += 1;
        if (k % 50 == 0) {
            uint64_t slots = mms_table_slots(l);
            for (uint64_t d = 0; d + 100 < slots; d++)
                if (mms_table_live(l, d))
                    OK(mms_table_delete(l, d));
        }
        OK(mms_txn_commit(s));
    }
}

/* Inside a read transaction: the balances sum to what they started at;
 * returns the transfers made (meta's counter), *log the log table. */
static int64_t balances_ok(mms_store *s, mms_table **log)
{
    mms_table *a, *m;
    OK(mms_table_find(s, "acct", &a));
    OK(mms_table_find(s, "log", log));
    OK(mms_table_find(s, "meta", &m));
    int64_t sum = 0;
    for (uint64_t i = 0; i < NACCT; i++)
        sum += MMS_TABLE_GET(a, struct acct, i)->balance;
    ASSERT_EQ(sum, (int64_t)NACCT * START);
    return MMS_TABLE_GET(m, struct acct, 0)->balance;
}

/* A reader process: read transactions back to back until killed, each
 * checking the writer's invariants in the state it pins; *reads counts
 * them (in memory shared with the parent). A broken invariant aborts it. */
static void reader(const char *path, volatile uint64_t *reads)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    int64_t last = -1;
    for (;;) {
        mms_table *l;
        OK(mms_read_begin(s));
        int64_t n = balances_ok(s, &l);
        ASSERT(n >= last);
        ASSERT(mms_table_count(l) <= (uint64_t)n);
        /* The newest log record's note: one letter repeated. */
        uint64_t slots = mms_table_slots(l);
        if (slots && mms_table_live(l, slots - 1)) {
            size_t len;
            const char *note = mms_str_get(s, MMS_TABLE_GET(l, struct logrec, slots - 1)->note,
                                           &len);
            ASSERT(note);
            for (size_t c = 1; c < len; c++)
                ASSERT_EQ(note[c], note[0]);
        }
        last = n;
        OK(mms_read_end(s));
        __atomic_add_fetch(reads, 1, __ATOMIC_RELAXED);
    }
}

/* The invariants, in the copy at path; returns the transfers it holds. */
static int64_t check_copy(const char *path)
{
    CTX("checking the copy %s", path);
    mms_store *s = open_flags(path, 0);
    verify_ok(s);
    mms_table *l;
    OK(mms_read_begin(s));
    int64_t n = balances_ok(s, &l);
    /* The log keeps some of the transfers (all of them until the first
     * trim), each with its note: one letter repeated. */
    uint64_t live = mms_table_count(l);
    ASSERT(live <= (uint64_t)n);
    ASSERT(n < 50 || live > 0);
    for (uint64_t i = 0; i < mms_table_slots(l); i++)
        if (mms_table_live(l, i)) {
            const struct logrec *r = mms_table_get(l, i);
            size_t len;
            const char *note = mms_str_get(s, r->note, &len);
            ASSERT(note);
            ASSERT(len <= 3000);
            for (size_t c = 1; c < len; c++)
                ASSERT_EQ(note[c], note[0]);
        }
    OK(mms_read_end(s));
    OK(mms_close(s));
    return n;
}

static int64_t transfers(mms_store *s)
{
    mms_table *m;
    OK(mms_read_begin(s));
    OK(mms_table_find(s, "meta", &m));
    int64_t n = MMS_TABLE_GET(m, struct acct, 0)->balance;
    OK(mms_read_end(s));
    return n;
}

static int leftovers(const char *dest)
{
    char dir[600], base[300];
    snprintf(dir, sizeof dir, "%s", dest);
    char *slash = strrchr(dir, '/');
    ASSERT(slash);
    *slash = 0;
    snprintf(base, sizeof base, "%s.mms-copy-", slash + 1);
    DIR *d = opendir(dir);
    ASSERT(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += strncmp(de->d_name, base, strlen(base)) == 0;
    closedir(d);
    return n;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

TEST(test_hot)
{
    char path[512]; /* tpath's buffers are reused after 8 calls */
    snprintf(path, sizeof path, "%s", tpath("copy-src"));
    make_store(path);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        writer(path);
        _exit(0);
    }
    volatile uint64_t *reads = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(reads != MAP_FAILED);
    pid_t rpid = fork();
    ASSERT(rpid >= 0);
    if (rpid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        reader(path, reads);
        _exit(0);
    }
    mms_store *rw = sopen(path, 0), *ro = open_flags(path, MMS_RDONLY);
    char dest[512];
    int64_t last = -1;
    for (int k = 0; k < 8; k++) {
        CTX("copy %d", k);
        uint64_t reads0 = *reads;
        /* Let the writer move on first. */
        int64_t before = transfers(rw);
        AWAIT(transfers(rw) > before + 20, pid, 120, "the writer made no progress");
        snprintf(dest, sizeof dest, "%s", tpath(k % 2 ? "copy-dest-odd" : "copy-dest"));
        mms_copy_stats st;
        OK(mms_copy(k % 2 ? ro : rw, dest, k >= 4 ? MMS_COPY_COMPACT : 0, &st));
        ASSERT(st.regions >= 4);
        ASSERT_EQ(leftovers(dest), 0);
        int64_t n = check_copy(dest);
        fprintf(stderr, "   copy %d%s: txn %llu, %lld transfers, %llu bytes, %.1f ms pinned\n", k,
                k >= 4 ? " (compact)" : "", (unsigned long long)st.txn, (long long)n,
                (unsigned long long)st.bytes_copied, st.read_ns / 1e6);
        ASSERT(n > last);
        last = n;
        /* The reader is alive and reading (a broken invariant ends it). */
        AWAIT(*reads > reads0, rpid, 120, "the reader made no progress");
        if (k < 7)
            rmrf(dest); /* the next copy goes to a name tpath clears anyway */
    }
    /* Refusals. */
    const char *d = dest;
    FAILS(mms_copy(rw, d, 0, NULL), -EEXIST);
    ASSERT(mentions(mms_errdetail(), "exists"));
    FAILS(mms_copy(rw, path, MMS_COPY_FORCE, NULL), MMS_EINVAL);
    /* Without the flag too, the store itself: the detail said "exists
     * (MMS_COPY_FORCE replaces a store there)", and the flag then refused
     * (`mms copy DIR DIR` said "--force replaces"; seen before the fix). */
    FAILS(mms_copy(rw, path, 0, NULL), MMS_EINVAL);
    ASSERT(mentions(mms_errdetail(), "the store being copied"));
    FAILS(mms_copy(rw, d, 0x80, NULL), MMS_EINVAL);
    OK(mms_read_begin(rw));
    FAILS(mms_copy(rw, d, MMS_COPY_FORCE, NULL), MMS_ETXN);
    OK(mms_read_end(rw));
    /* --force over a store: the newer state -- once there is one: a commit
     * published since the last copy (readers inside may hold publication
     * back; under load the copy came before any, and the check failed). */
    AWAIT(transfers(rw) > last, pid, 120, "the writer made no progress");
    OK(mms_copy(rw, d, MMS_COPY_FORCE, NULL));
    ASSERT(check_copy(d) > last);
    ASSERT_EQ(leftovers(d), 0);
    /* The tool, while the writer runs. */
    char out[2048], args[1300];
    snprintf(args, sizeof args, "copy '%s' '%s'", path, d);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1);
    if (!mentions(out, "--force") || mentions(out, "MMS_COPY_FORCE"))
        FAILF("`mms copy` to an existing DEST names the C flag, not --force:\n%s", out);
    snprintf(args, sizeof args, "copy '%s' '%s' --force --compact", path, d);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    check_copy(d);
    int wst;
    ASSERT_EQ(waitpid(rpid, &wst, WNOHANG), 0); /* still reading */
    fprintf(stderr, "   the reader: %llu read transactions, every one sound\n",
            (unsigned long long)*reads);
    kill(rpid, SIGKILL);
    ASSERT_EQ(waitpid(rpid, &wst, 0), rpid);
    munmap((void *)reads, 4096);
    kill(pid, SIGKILL);
    ASSERT_EQ(waitpid(pid, &wst, 0), pid);
    OK(mms_close(ro));
    OK(mms_close(rw));
    /* The source took no harm. */
    check_copy(path);
    rmrf(dest);
    rmrf(path);
}

TEST(test_kill)
{
    static const char *const points[] = {"copy.range:1", "copy.range:3", "copy.copied:1",
                                         "commit.journal_synced:1", "compact.punched:2",
                                         "copy.renamed:1"};
    char path[512], dest[512], old[512];
    snprintf(path, sizeof path, "%s", tpath("copy-ksrc"));
    snprintf(dest, sizeof dest, "%s", tpath("copy-kdest"));
    snprintf(old, sizeof old, "%s", tpath("copy-kold"));
    make_store(path);
    /* Some content to copy. */
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        writer(path);
        _exit(0);
    }
    mms_store *s = sopen(path, 0);
    AWAIT(transfers(s) > 300, pid, 120, "the writer made no progress");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    OK(mms_copy(s, old, 0, NULL));
    int64_t n = check_copy(old);
    for (int force = 0; force < 2; force++)
        for (size_t k = 0; k < sizeof points / sizeof points[0]; k++) {
            CTX("kill at %s%s", points[k], force ? " (--force)" : "");
            char cmd[2000];
            if (force) {
                snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", dest, old, dest);
                ASSERT_EQ(system(cmd), 0);
            }
            snprintf(cmd, sizeof cmd, "MMS_CRASH=%s '%s' copy '%s' '%s' --compact%s >/dev/null 2>&1",
                     points[k], getenv("MMS_TOOL"), path, dest, force ? " --force" : "");
            int st = system(cmd);
            int killed = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            bool renamed = strcmp(points[k], "copy.renamed:1") == 0 || !killed;
            if (!force)
                ASSERT_EQ(exists(dest), renamed);
            if (exists(dest))
                ASSERT_EQ(check_copy(dest), n);
            /* The next copy finishes the work and leaves nothing behind. */
            if (!force)
                rmrf(dest);
            OK(mms_copy(s, dest, force ? MMS_COPY_FORCE : 0, NULL));
            ASSERT_EQ(leftovers(dest), 0);
            ASSERT_EQ(check_copy(dest), n);
            if (!force)
                rmrf(dest);
            fprintf(stderr, "   %-26s%s ok (%s)\n", points[k], force ? " --force" : "",
                    killed ? "killed" : "finished");
        }
    OK(mms_close(s));
    check_copy(path);
    rmrf(dest);
    rmrf(old);
    rmrf(path);
}

TEST(test_enospc)
{
    const char *path = tpath("copy-nsrc");
    make_store(path);
    mms_store *s = sopen(path, 0);
    const char *dest = tpath("copy-ndest");
    for (unsigned nth = 1; nth <= 3; nth++) {
        mms__fault_arm(MMS__OP_COPY, nth, ENOSPC);
        int r = mms_copy(s, dest, 0, NULL);
        mms__fault_arm(MMS__OP_COPY, 0, 0);
        if (r == 0) { /* fewer data ranges than nth */
            rmrf(dest);
            continue;
        }
        ASSERT_EQ(r, -ENOSPC);
        ASSERT(mentions(mms_errdetail(), "copy"));
        ASSERT(!exists(dest));
        ASSERT_EQ(leftovers(dest), 0);
    }
    verify_ok(s);
    OK(mms_close(s));
    check_copy(path);
    rmrf(path);
}

/* --force never replaces a store that a handle has open -- in another
 * process, or this one: that handle would go on committing into the old
 * directory, removed (commits that return 0 and are lost). Before, the
 * copy replaced it and a commit made through the open handle afterwards
 * was gone at the next open. Nor does a copy go inside the source's
 * directory (it made a store inside the store). */
TEST(test_force_open)
{
    char path[512], dest[512];
    snprintf(path, sizeof path, "%s", tpath("copy-fsrc"));
    snprintf(dest, sizeof dest, "%s", tpath("copy-fdest"));
    make_store(path);
    mms_store *s = sopen(path, 0);
    OK(mms_copy(s, dest, 0, NULL));
    mms_store *d = sopen(dest, 0);
    FAILS(mms_copy(s, dest, MMS_COPY_FORCE, NULL), MMS_EBUSY);
    ASSERT(mentions(mms_errdetail(), "open"));
    ASSERT_EQ(leftovers(dest), 0);
    /* The handle's commit is in the store at dest. */
    mms_table *m;
    OK(mms_txn_begin(d, 0));
    OK(mms_table_find(d, "meta", &m));
    MMS_TABLE_GET(m, struct acct, 0)->balance = 4242;
    OK(mms_txn_commit(d));
    OK(mms_close(d));
    d = sopen(dest, MMS_RDONLY);
    OK(mms_read_begin(d));
    OK(mms_table_find(d, "meta", &m));
    ASSERT_EQ(MMS_TABLE_GET(m, struct acct, 0)->balance, 4242);
    OK(mms_read_end(d));
    /* Another process's handle: the tool says so, exit 1. */
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char args[1300], out[2048];
        snprintf(args, sizeof args, "copy '%s' '%s' --force", path, dest);
        int st = run_tool(args, out, sizeof out);
        if (st != 1 || !strstr(out, "open"))
            FAILF("`mms %s` exited %d:\n%s", args, st, out);
        _exit(0);
    }
    int wst;
    ASSERT_EQ(waitpid(pid, &wst, 0), pid);
    ASSERT(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    OK(mms_close(d));
    /* Closed: replaced. */
    OK(mms_copy(s, dest, MMS_COPY_FORCE, NULL));
    check_copy(dest);
    /* Inside the source's directory. */
    char inside[600];
    snprintf(inside, sizeof inside, "%s/sub", path);
    FAILS(mms_copy(s, inside, 0, NULL), MMS_EINVAL);
    ASSERT(!exists(inside));
    OK(mms_close(s));
    rmrf(dest);
    rmrf(path);
}

/* A directory that appears at DEST while the copy is made (here at the
 * crash point after the files are copied) is replaced by --force only if
 * it is a store or empty, as one found before the copy: the look after the
 * copy only asked whether a handle had it open, so a directory of the
 * user's files was swapped out and its files deleted (seen before the
 * fix: the copy returned 0 and keep.txt was gone). */
static const char *appear_at;

static void appear_hook(enum mms__io_event ev, int fd, const void *addr, uint64_t off,
                        uint64_t len, const char *point)
{
    (void)fd, (void)addr, (void)off, (void)len;
    if (ev != MMS__IO_POINT || strcmp(point, "copy.copied") != 0 || !appear_at)
        return;
    char file[700];
    snprintf(file, sizeof file, "%s/keep.txt", appear_at);
    FILE *f = mkdir(appear_at, 0777) == 0 ? fopen(file, "w") : NULL;
    if (!f || fputs("the user's\n", f) < 0 || fclose(f) != 0)
        FAILF("cannot make %s", file);
    appear_at = NULL;
}

TEST(test_force_appeared)
{
    char path[512], dest[512], keep[600];
    snprintf(path, sizeof path, "%s", tpath("copy-asrc"));
    snprintf(dest, sizeof dest, "%s", tpath("copy-adest"));
    snprintf(keep, sizeof keep, "%s/keep.txt", dest);
    make_store(path);
    mms_store *s = sopen(path, 0);
    appear_at = dest;
    mms__os_io_hook(appear_hook);
    int r = mms_copy(s, dest, MMS_COPY_FORCE, NULL);
    mms__os_io_hook(NULL);
    ASSERT(appear_at == NULL); /* the hook ran */
    ASSERT(exists(keep));
    FAILS(r, -EEXIST);
    ASSERT(mentions(mms_errdetail(), "something else"));
    ASSERT_EQ(leftovers(dest), 0);
    OK(mms_close(s));
    rmrf(dest);
    rmrf(path);
}

int main(void)
{
    table_test_begin("test_copy");
    RUN(test_hot);
    RUN(test_kill);
    RUN(test_enospc);
    RUN(test_force_open);
    RUN(test_force_appeared);
    return table_test_end();
}

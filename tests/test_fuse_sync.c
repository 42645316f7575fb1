/*
 * test_fuse_sync.c -- a failed fdatasync of the journal through the real
 * kernel: a store on a FUSE file system (tests/fuse_failsync.c) whose
 * fsync fails with EIO while a control file says so. test_faults.c fails
 * the library's own fdatasync call; here the error comes back from the
 * kernel, after the page cache, the shared mappings and FUSE.
 *
 * What include/mmstore.h and README.md promise (mms_txn_commit,
 * MMS_NOSYNC) and this checks:
 *  - the commit whose journal sync fails returns that error (-EIO) and
 *    poisons its handle (MMS_EPOISONED after it);
 *  - the failure is final for the store (journal.c, mms__jsync: kept in
 *    the lock file): once the file system syncs again, every other handle
 *    still fails with -EIO -- B, open before the failure, and C, opened
 *    after it (at its open or its commit) -- and the file system failed
 *    no sync for them: the error is the store's memory of the failure;
 *  - with every handle closed and syncs failing again (all of them, or
 *    only the region files'), a fresh open fails with -EIO and writes
 *    nothing to the journal after the failed sync (the file system counts
 *    the journal's writes); so does the last close whose checkpoint cannot
 *    sync the region files: the journal keeps the commits;
 *  - once syncs work, the next open recovers: every commit that
 *    returned 0 is there, and each failed one is whole or absent ("whether
 *    the transaction committed is decided by the next open"). This file
 *    system keeps the data it was sent, so the failed commits are there
 *    in practice; the test says what it found. The store commits again,
 *    and is the same read from the backing directory directly.
 *  - an unreadable journal page fails recovery with -EIO naming where
 *    (unreadable_journal), and a page no commit uses does not fail the
 *    apply of commits from the journal (unreadable_journal_tail).
 *
 * The parent mounts, runs the case in a child (an assertion aborts the
 * child only) and unmounts whatever the child did: fusermount3 -u, then
 * umount -l. A killed test leaves no mount either: a watchdog outside the
 * process tree detaches it when the parent is gone (start_watchdog). No
 * FUSE (no /dev/fuse, not root, no daemon): the test says why and fails;
 * it never passes without having run.
 */
#include "test.h"

#include <sys/mount.h>

#define K 5            /* commits acknowledged before the failure */
#define NVALS 16
#define BLOB (64 << 10) /* 16 pages each commit rewrites whole */

struct log_root {
    uint64_t n;           /* commits there */
    uint64_t vals[NVALS]; /* vals[i]: tag * 1000 + i + 1 of the commit i + 1 */
    mms_ref blob;         /* BLOB bytes, each the tag of the last commit */
};

/* Tags: the acknowledged commits are tag 1; each failed one its handle's. */
enum { TAG_OK = 1, TAG_A = 0xA1, TAG_B = 0xB1, TAG_C = 0xC1 };

static char g_base[512], g_back[600], g_mnt[600], g_ctl[600], g_log[600];
static pid_t g_daemon = -1;

/* What the child leaves for the parent: the state the store must have. */
struct shared {
    uint64_t final_n;
    int nfailed;
    int after; /* acknowledged commits after the failed ones */
    int done;
};

static void control(const char *v)
{
    FILE *f = fopen(g_ctl, "w");
    ASSERT(f != NULL);
    fputs(v, f);
    ASSERT_EQ(fclose(f), 0);
}

/* The daemon's counts: fsyncs seen, how many it failed, and (if jwrites)
 * the writes to the journal since the latest run of failed syncs began. */
static void stats3(unsigned long *fsyncs, unsigned long *failed, unsigned long *jwrites)
{
    char p[700];
    snprintf(p, sizeof p, "%s.stats", g_ctl);
    unsigned long j = 0;
    *fsyncs = *failed = 0;
    FILE *f = fopen(p, "r");
    if (f) {
        if (fscanf(f, "fsyncs %lu failed %lu jwrites %lu", fsyncs, failed, &j) != 3)
            *fsyncs = *failed = j = 0;
        fclose(f);
    }
    if (jwrites)
        *jwrites = j;
}

static void stats(unsigned long *fsyncs, unsigned long *failed)
{
    stats3(fsyncs, failed, NULL);
}

static bool mounted(const char *dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    ASSERT(f != NULL);
    char line[4096], at[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "%*s %*s %*s %*s %4095s", at) == 1 && strcmp(at, dir) == 0;
    fclose(f);
    return found;
}

/* One commit on s: the next value, the blob all `tag`. */
static int commit_one(mms_store *s, uint8_t tag)
{
    int r = mms_txn_begin(s, 0);
    if (r)
        return r;
    struct log_root *root = MMS_AT(s, struct log_root, mms_root(s));
    uint64_t n = root->n;
    ASSERT_LT(n, NVALS);
    root->vals[n] = (uint64_t)tag * 1000 + n + 1;
    root->n = n + 1;
    memset(MMS_AT(s, uint8_t, root->blob), tag, BLOB);
    return mms_txn_commit(s);
}

/* A new store at path: the root a log_root with n = 1, vals[0] the first
 * acknowledged commit's, and a blob of blob_bytes, each TAG_OK. */
static void make_log_store(const char *path, size_t blob_bytes)
{
    mms_store *a = open_flags(path, MMS_CREATE);
    OK(mms_txn_begin(a, 0));
    mms_ref root, blob;
    OK(mms_zalloc(a, sizeof(struct log_root), &root));
    OK(mms_zalloc(a, blob_bytes, &blob));
    MMS_AT(a, struct log_root, root)->blob = blob;
    MMS_AT(a, struct log_root, root)->n = 1;
    MMS_AT(a, struct log_root, root)->vals[0] = TAG_OK * 1000 + 1;
    memset(MMS_AT(a, uint8_t, blob), TAG_OK, blob_bytes);
    OK(mms_root_set(a, root));
    OK(mms_txn_commit(a));
    OK(mms_close(a));
}

/* The failed commits in the order they were tried. Each that wrote its
 * journal group began on the state the one before left (a handle that
 * writes after a failed sync sees that commit: undecided, not undone), so
 * the ones recovery keeps must be a prefix of these. */
static const uint8_t failed_tags[] = {TAG_A, TAG_B, TAG_C};

/* The store is "the acknowledged commits 1..K, a prefix of the failed
 * ones, each whole, then `after` acknowledged ones": returns how many
 * failed ones are there. */
static int check_state(mms_store *s, int after)
{
    verify_ok(s);
    const struct log_root *root = MMS_AT(s, struct log_root, mms_root(s));
    uint64_t n = root->n;
    int nfailed = (int)n - K - after;
    if (nfailed < 0 || nfailed > (int)sizeof failed_tags)
        FAILF("%llu commits there (txn %llu), expected %d acknowledged, then at most %d failed ones",
              (unsigned long long)n, (unsigned long long)mms_txn_id(s), K + after,
              (int)sizeof failed_tags);
    ASSERT_EQ(mms_txn_id(s), n);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t want = TAG_OK;
        if (i >= K && i < (uint64_t)(K + nfailed))
            want = failed_tags[i - K];
        if (root->vals[i] != want * 1000 + i + 1)
            FAILF("commit %llu: value %llu, expected %llu", (unsigned long long)i + 1,
                  (unsigned long long)root->vals[i], (unsigned long long)(want * 1000 + i + 1));
    }
    for (uint64_t i = n; i < NVALS; i++)
        ASSERT_EQ(root->vals[i], 0);
    /* The blob is the last commit's, whole. */
    uint8_t tag = (uint8_t)(root->vals[n - 1] / 1000);
    const uint8_t *b = MMS_AT(s, uint8_t, root->blob);
    for (size_t i = 0; i < BLOB; i++)
        if (b[i] != tag)
            FAILF("blob byte %zu is 0x%x, expected 0x%x: a commit only partly there", i, b[i], tag);
    return nfailed;
}

/* Mappings of store's journal this process has (/proc/self/maps): none
 * once an open, failed or not, is done with it. */
static int journal_maps(const char *store)
{
    char want[800], line[4096];
    snprintf(want, sizeof want, "%s/journal\n", store);
    FILE *f = fopen("/proc/self/maps", "r");
    ASSERT(f != NULL);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        size_t k = strlen(line), w = strlen(want);
        n += k >= w && strcmp(line + k - w, want) == 0;
    }
    fclose(f);
    return n;
}

/* A journal page the disk cannot read, met by the open that must replay
 * the journal: an error naming the journal and where, never a SIGBUS --
 * whether recovery reads the journal into memory (up to 256 MiB) or maps
 * it (past that; MMS_JOURNAL_READ_MAX sends this small one that way). */
#define UBLOB (1 << 20)
static void unreadable_journal(void)
{
    char store[700], rf[700];
    snprintf(store, sizeof store, "%s/u.mms", g_mnt);
    snprintf(rf, sizeof rf, "%s.readfail", g_ctl);
    make_log_store(store, UBLOB);

    /* A writer that dies after its commit: the journal keeps the group
     * (1 MiB of records) for the next open to replay. */
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        mms_store *w = open_flags(store, 0);
        int r = mms_txn_begin(w, 0);
        if (!r) {
            struct log_root *lr = MMS_AT(w, struct log_root, mms_root(w));
            lr->vals[1] = TAG_A * 1000 + 2;
            lr->n = 2;
            memset(MMS_AT(w, uint8_t, lr->blob), TAG_A, UBLOB);
            r = mms_txn_commit(w);
        }
        _exit(r == 0 ? 0 : 1);
    }
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Past the kernel's read-ahead of the journal's first bytes (which
     * the open reads on its own): in the group's records. */
    file_put(rf, "790528\n");
    mms_options o;
    mms_options_init(&o);
    for (int mapped = 0; mapped < 2; mapped++) {
        if (mapped)
            ASSERT_EQ(setenv("MMS_JOURNAL_READ_MAX", "4096", 1), 0);
        mms_store *x = NULL;
        int r = mms_open(store, &o, &x);
        fprintf(stderr, "   an unreadable journal page, the journal %s: %d (%s)%s%s\n",
                mapped ? "mapped" : "read", r, mms_strerror(r), r ? ": " : "",
                r ? mms_errdetail() : "");
        ASSERT(x == NULL);
        ASSERT_EQ(r, -EIO);
        ASSERT(strstr(mms_errdetail(), "cannot read the journal between offsets") != NULL);
        ASSERT_EQ(journal_maps(store), 0);
    }
    /* The disk reads again: the commit is there (replayed through the
     * mapping), whole. */
    ASSERT_EQ(unlink(rf), 0);
    mms_store *s = open_flags(store, 0);
    ASSERT_EQ(unsetenv("MMS_JOURNAL_READ_MAX"), 0);
    ASSERT_EQ(journal_maps(store), 0);
    verify_ok(s);
    const struct log_root *lr = MMS_AT(s, struct log_root, mms_root(s));
    ASSERT_EQ(lr->n, 2);
    ASSERT_EQ(lr->vals[1], TAG_A * 1000 + 2);
    const uint8_t *b = MMS_AT(s, uint8_t, lr->blob);
    for (size_t i = 0; i < UBLOB; i++)
        if (b[i] != TAG_A)
            FAILF("blob byte %zu is 0x%x after the replay, expected 0x%x", i, b[i], TAG_A);
    OK(mms_close(s));
}

/* A journal page no commit uses (the preallocated tail, after a commit
 * that rewrote 4 MiB made the journal that long), which the disk cannot read:
 * applying commits reads their groups only, so a reader that applies the
 * backlog goes on. (Applying read the whole journal in first, as
 * recovery's large journal is: -EIO here, and 2.5 ms more for every
 * backlog applied once the journal had grown to 64 MiB.) */
static void unreadable_journal_tail(void)
{
    char store[700], rf[700], jpath[800], at[64];
    snprintf(store, sizeof store, "%s/t.mms", g_mnt);
    snprintf(rf, sizeof rf, "%s.readfail", g_ctl);
    snprintf(jpath, sizeof jpath, "%s/journal", store);
    make_log_store(store, 4 * UBLOB);
    /* A commit that rewrites the blob (a new store's data is written in
     * place): the journal grows past it, and a checkpoint (the close)
     * empties it but keeps its length. */
    mms_store *w = open_flags(store, 0);
    OK(mms_txn_begin(w, 0));
    memset(MMS_AT(w, uint8_t, MMS_AT(w, struct log_root, mms_root(w))->blob), TAG_A, 4 * UBLOB);
    OK(mms_txn_commit(w));
    OK(mms_close(w));
    /* Every open of the journal drops its cached pages (FUSE, no
     * keep_cache): after these, the tail is read only if read for. */
    w = open_flags(store, MMS_NOSYNC);
    mms_store *r = open_flags(store, 0);
    struct stat st;
    ASSERT_EQ(stat(jpath, &st), 0);
    ASSERT_GE(st.st_size, 4 * UBLOB);
    snprintf(at, sizeof at, "%lld\n", (long long)st.st_size - 1);
    file_put(rf, at);
    /* Not synced (MMS_NOSYNC), so not applied: the reader that wants it
     * syncs and applies it. */
    OK(commit_one(w, TAG_OK));
    int x = mms_read_begin_latest(r, 10000);
    fprintf(stderr, "   the journal's last page unreadable, a reader applies a commit: %d (%s)%s%s\n",
            x, mms_strerror(x), x ? ": " : "", x ? mms_errdetail() : "");
    ASSERT_EQ(x, 0);
    ASSERT_EQ(MMS_AT(r, struct log_root, mms_root(r))->n, 2);
    OK(mms_read_end(r));
    /* And that page does fail a read: the reader went on because it did
     * not read it, not because the file system let it. */
    int fd = open(jpath, O_RDONLY | O_CLOEXEC);
    ASSERT(fd >= 0);
    char c;
    ASSERT_EQ(pread(fd, &c, 1, st.st_size - 1), -1);
    ASSERT_EQ(errno, EIO);
    close(fd);
    ASSERT_EQ(unlink(rf), 0);
    OK(mms_close(r));
    OK(mms_close(w));
}

/* The file system's own bookkeeping: under 'r' a directory's sync fails,
 * also when its handle reuses the descriptor of a file named journal
 * that was closed (the daemon kept that file's mark: it passed). */
static void daemon_fd_reuse(void)
{
    char dir[700], j[800];
    snprintf(dir, sizeof dir, "%s/fd-reuse", g_mnt);
    snprintf(j, sizeof j, "%s/journal", dir);
    ASSERT_EQ(mkdir(dir, 0777), 0);
    control("r");
    int fd = open(j, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ASSERT(fd >= 0);
    ASSERT_EQ(fsync(fd), 0); /* a journal: it syncs */
    ASSERT_EQ(close(fd), 0);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT(dfd >= 0);
    ASSERT_EQ(fsync(dfd), -1);
    ASSERT_EQ(errno, EIO);
    ASSERT_EQ(close(dfd), 0);
    control("0");
    ASSERT_EQ(unlink(j), 0);
    ASSERT_EQ(rmdir(dir), 0);
}

/* The case, in a child, on the mounted file system. */
static void run_case(struct shared *out)
{
    char store[700];
    snprintf(store, sizeof store, "%s/s.mms", g_mnt);
    unsigned long fsyncs, failed, fsyncs0, failed0;

    daemon_fd_reuse(); /* one failed sync: the counts start after it */
    unsigned long failed_pre;
    stats(&fsyncs0, &failed_pre);

    /* The library works on this file system at all: create, commit,
     * reopen (and later: recover). */
    make_log_store(store, BLOB);
    mms_store *a = open_flags(store, 0);
    ASSERT_EQ(mms_txn_id(a), 1);
    for (int i = 2; i <= K; i++)
        OK(commit_one(a, TAG_OK));
    ASSERT_EQ(check_state(a, 0), 0);
    stats(&fsyncs0, &failed0);
    ASSERT_GE(fsyncs0, K); /* the commits' syncs reached the file system */
    ASSERT_EQ(failed0, failed_pre);
    fprintf(stderr, "   %d commits acknowledged on the FUSE mount (%lu fsyncs so far)\n", K, fsyncs0);

    /* B: another handle, open before the failure. */
    mms_store *b = open_flags(store, 0);

    /* The file system fails syncs: A's commit fails with its error, and
     * A is poisoned. */
    control("1");
    int r = commit_one(a, TAG_A);
    fprintf(stderr, "   A's commit while fsync fails: %d (%s): %s\n", r, mms_strerror(r), mms_errdetail());
    ASSERT_EQ(r, -EIO);
    ASSERT(strstr(mms_errdetail(), "cannot sync the journal") != NULL);
    stats(&fsyncs, &failed);
    ASSERT_GE(failed, failed0 + 1); /* the EIO came from the file system */
    FAILS(mms_txn_begin(a, 0), MMS_EPOISONED);

    /* The file system syncs again; the store still refuses every sync
     * (a second fdatasync could report lost pages as synced). */
    control("0");
    stats(&fsyncs0, &failed0);
    /* Nor is A's commit published to a reader: the reader's begin would
     * recover it, and recovery's own sync must not count the group durable
     * now (it did: the reader saw K + 1). */
    r = mms_read_begin(b);
    if (r == 0) {
        uint64_t n = MMS_AT(b, struct log_root, mms_root(b))->n;
        mms_read_end(b);
        if (n != K)
            FAILF("a reader after the failed sync sees %llu commits, not the %d acknowledged: "
                  "recovery published the commit whose sync failed", (unsigned long long)n, K);
    } else {
        ASSERT_EQ(r, -EIO);
        ASSERT(strstr(mms_errdetail(), "failed earlier") != NULL);
    }
    r = commit_one(b, TAG_B);
    fprintf(stderr, "   B's write transaction, fsync working again: %d (%s)%s%s\n", r, mms_strerror(r),
            r ? ": " : "", r ? mms_errdetail() : "");
    if (r == 0)
        FAILF("a commit after a failed journal sync succeeded: the failure is not sticky");
    ASSERT_EQ(r, -EIO);
    ASSERT(strstr(mms_errdetail(), "failed earlier") != NULL);
    r = mms_txn_begin(b, 0);
    if (r != -EIO && r != MMS_EPOISONED)
        FAILF("B's next begin: %d (%s), expected -EIO or MMS_EPOISONED", r, mms_strerror(r));
    /* C: a handle opened after the failure. Its open may refuse already
     * (it would recover A's commit); if not, its commit fails. */
    mms_options o;
    mms_options_init(&o);
    mms_store *c = NULL;
    r = mms_open(store, &o, &c);
    if (r == 0) {
        r = commit_one(c, TAG_C);
        fprintf(stderr, "   C's commit (opened after the failure): %d (%s)\n", r, mms_strerror(r));
        if (r == 0)
            FAILF("a handle opened after a failed journal sync committed: the failure is not sticky");
    } else {
        fprintf(stderr, "   C's open (after the failure): %d (%s)\n", r, mms_strerror(r));
    }
    ASSERT_EQ(r, -EIO);
    ASSERT(strstr(mms_errdetail(), "failed earlier") != NULL);
    stats(&fsyncs, &failed);
    /* The -EIO came from the store's memory of the failure, not from
     * the file system. */
    ASSERT_EQ(failed, failed0);
    r = mms_close(a);
    ASSERT(r == 0 || r == -EIO || r == MMS_EPOISONED);
    r = mms_close(b);
    ASSERT(r == 0 || r == -EIO || r == MMS_EPOISONED);
    r = mms_close(c); /* NULL if its open failed: a no-op */
    ASSERT(r == 0 || r == -EIO || r == MMS_EPOISONED);

    /* Every handle closed, and the file system fails syncs again: the
     * open that would recover the failed commits must sync what it
     * replays before it publishes it, so it fails with the file system's
     * error and changes nothing (the journal keeps the groups). */
    control("1");
    stats(&fsyncs0, &failed0);
    c = NULL;
    r = mms_open(store, &o, &c);
    fprintf(stderr, "   a fresh open while fsync fails again: %d (%s)%s%s\n", r, mms_strerror(r),
            r ? ": " : "", r ? mms_errdetail() : "");
    if (r == 0)
        FAILF("the open recovered the failed commits while the file system failed every sync");
    ASSERT_EQ(r, -EIO);
    unsigned long jwrites;
    stats3(&fsyncs, &failed, &jwrites);
    ASSERT_GE(failed, failed0 + 1); /* the file system's error, not the store's memory */
    if (jwrites)
        FAILF("the open wrote the journal %lu time%s after a sync failed", jwrites,
              jwrites == 1 ? "" : "s");

    /* The journal syncs but the region files do not: the open makes the
     * failed commits' groups durable, replays them into the region files,
     * and fails on their sync, before it empties the journal (which then
     * still holds them for the next open). */
    control("r");
    stats(&fsyncs0, &failed0);
    c = NULL;
    r = mms_open(store, &o, &c);
    stats3(&fsyncs, &failed, &jwrites);
    fprintf(stderr, "   a fresh open while only the region files fail to sync: %d (%s)%s%s\n", r,
            mms_strerror(r), r ? ": " : "", r ? mms_errdetail() : "");
    if (r == 0)
        FAILF("the open recovered while the region files failed every sync");
    ASSERT_EQ(r, -EIO);
    ASSERT(strstr(mms_errdetail(), "cannot sync region file region-") != NULL);
    ASSERT_GE(failed, failed0 + 1);
    if (jwrites)
        FAILF("the recovery wrote the journal %lu time%s after a region file failed to sync",
              jwrites, jwrites == 1 ? "" : "s");
    control("0");

    /* The file system syncs: the next open recovers from what the disk
     * holds and the store commits again. */
    a = open_flags(store, 0);
    int nfailed = check_state(a, 0);
    fprintf(stderr, "   reopened: the %d acknowledged commits, then %d failed one%s%s\n", K,
            nfailed, nfailed == 1 ? "" : "s", nfailed ? ", whole (recovery decided they committed)" : "");
    OK(commit_one(a, TAG_OK));
    ASSERT_EQ(check_state(a, 1), nfailed);

    /* A checkpoint that cannot sync: the last handle's close copies the
     * journal into the region files and syncs them before it empties the
     * journal. With syncs failing, the close reports the error and the
     * journal keeps the acknowledged commit for the next open. */
    control("1");
    stats(&fsyncs0, &failed0);
    r = mms_close(a);
    stats3(&fsyncs, &failed, &jwrites);
    fprintf(stderr, "   the last close while fsync fails (its checkpoint): %d (%s), %lu failed sync%s, "
            "%lu journal write%s after the first\n", r, mms_strerror(r), failed - failed0,
            failed - failed0 == 1 ? "" : "s", jwrites, jwrites == 1 ? "" : "s");
    ASSERT_EQ(r, -EIO);
    ASSERT_GE(failed, failed0 + 1);
    if (jwrites) /* an emptied journal would hold none of the commits the files may have lost */
        FAILF("the checkpoint wrote the journal after the region files failed to sync");
    control("0");
    a = open_flags(store, 0);
    ASSERT_EQ(check_state(a, 1), nfailed);
    OK(commit_one(a, TAG_OK));
    ASSERT_EQ(check_state(a, 2), nfailed);
    out->after = 2;
    out->final_n = MMS_AT(a, struct log_root, mms_root(a))->n;
    out->nfailed = nfailed;
    OK(mms_close(a));
    fprintf(stderr, "-- unreadable_journal\n");
    unreadable_journal();
    fprintf(stderr, "-- unreadable_journal_tail\n");
    unreadable_journal_tail();
    out->done = 1;
}

/* fusermount3 -u, then umount -l; then the daemon ends. Returns whether
 * the mount is gone. */
static bool unmount_all(void)
{
    char cmd[800];
    if (mounted(g_mnt)) {
        snprintf(cmd, sizeof cmd, "fusermount3 -u '%s' 2>&1", g_mnt);
        if (system(cmd) != 0 || mounted(g_mnt)) {
            snprintf(cmd, sizeof cmd, "umount -l '%s' 2>&1", g_mnt);
            if (system(cmd) != 0)
                fprintf(stderr, "test_fuse_sync: umount -l %s failed\n", g_mnt);
        }
    }
    if (g_daemon > 0) {
        int st;
        /* Unmounted, it exits by itself (or is killed after 5 s). */
        if (!child_end(g_daemon, 5, &st))
            fprintf(stderr, "test_fuse_sync: the daemon did not exit; killed\n");
        g_daemon = -1;
    }
    return !mounted(g_mnt);
}

/* A watchdog outside this process tree: a grandchild in a session of its
 * own, whose parent has exited, so that neither a kill of the process
 * group (timeout(1)) nor of the tree (ctest) reaches it. It waits until
 * the pipe's write end, held by this process only, closes -- at exit,
 * SIGKILL included -- and then detaches the mount if it is still there.
 * (The daemon's auto_unmount does the same job, but its helper is in our
 * process group and dies with it.) */
static void start_watchdog(void)
{
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        setsid();
        if (fork() != 0)
            _exit(0);
        close(p[1]);
        for (int fd = 0; fd < 1024; fd++)
            if (fd != p[0])
                close(fd);
        char c;
        while (read(p[0], &c, 1) < 0 && errno == EINTR)
            ;
        umount2(g_mnt, MNT_DETACH);
        _exit(0);
    }
    ASSERT_EQ(waitpid(pid, NULL, 0), pid);
    close(p[0]);
    /* p[1] stays open, close-on-exec, until this process ends. */
}

static void print_daemon_log(void)
{
    char *t = file_text(g_log);
    if (t && *t)
        fprintf(stderr, "--- fuse_failsync's output:\n%s---\n", t);
    free(t);
}

/* Why FUSE cannot be used here, or NULL. */
static const char *no_fuse(const char *fs)
{
    static char why[256];
    if (!fs || !*fs)
        return "MMS_FUSE_FS is not set (ctest sets it to the fuse_failsync daemon)";
    if (access(fs, X_OK) != 0) {
        snprintf(why, sizeof why, "MMS_FUSE_FS=%s: %s", fs, strerror(errno));
        return why;
    }
    if (geteuid() != 0)
        return "not root (the test mounts and, if need be, unmounts with umount -l)";
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, sizeof why, "cannot open /dev/fuse: %s", strerror(errno));
        return why;
    }
    close(fd);
    return NULL;
}

int main(void)
{
    const char *fs = getenv("MMS_FUSE_FS");
    const char *why = no_fuse(fs);
    if (why) {
        fprintf(stderr, "test_fuse_sync: FAILED: cannot run: %s\n", why);
        return 1;
    }
    const char *tmp = getenv("MMS_TEST_TMP");
    if (!tmp)
        tmp = "/tmp/mms-test";
    mkdir(tmp, 0777);
    char *abs = realpath(tmp, NULL);
    ASSERT(abs != NULL);
    snprintf(g_base, sizeof g_base, "%s/fuse_sync.%d", abs, (int)getpid());
    free(abs);
    snprintf(g_back, sizeof g_back, "%s/back", g_base);
    snprintf(g_mnt, sizeof g_mnt, "%s/mnt", g_base);
    snprintf(g_ctl, sizeof g_ctl, "%s/control", g_base);
    snprintf(g_log, sizeof g_log, "%s/daemon.log", g_base);
    rmrf(g_base);
    ASSERT_EQ(mkdir(g_base, 0777), 0);
    ASSERT_EQ(mkdir(g_back, 0777), 0);
    ASSERT_EQ(mkdir(g_mnt, 0777), 0);
    control("0");

    fprintf(stderr, "-- mount %s on %s\n", g_back, g_mnt);
    start_watchdog();
    fflush(NULL);
    pid_t parent = getpid();
    g_daemon = fork();
    ASSERT(g_daemon >= 0);
    if (g_daemon == 0) {
        /* SIGTERM when the test dies: libfuse then unmounts and exits. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(99);
        int fd = open(g_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(fs, fs, g_back, g_ctl, g_mnt, "-f", "-s", "-o",
              "auto_unmount,fsname=mms_failsync,subtype=failsync", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", fs, strerror(errno));
        _exit(127);
    }
    for (double t0 = now_us(); !mounted(g_mnt);) {
        int st;
        if (waitpid(g_daemon, &st, WNOHANG) == g_daemon) {
            g_daemon = -1;
            print_daemon_log();
            fprintf(stderr, "test_fuse_sync: FAILED: cannot mount FUSE: the daemon ended (%s)\n",
                    child_status(st));
            return 1;
        }
        if (now_us() - t0 > 10e6) {
            unmount_all();
            print_daemon_log();
            fprintf(stderr, "test_fuse_sync: FAILED: cannot mount FUSE: no mount after 10 s\n");
            return 1;
        }
        sleep_us(10000);
    }

    /* The case runs in a child: whatever happens to it, the parent unmounts. */
    fprintf(stderr, "-- sync_failure_sticky\n");
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(sh != MAP_FAILED);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        die_with_parent(parent);
        run_case(sh);
        _exit(0);
    }
    int st = 0;
    bool ended = child_end(pid, 120, &st);
    bool gone = unmount_all();
    if (!ended || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || !sh->done) {
        print_daemon_log();
        fprintf(stderr, "test_fuse_sync: FAILED: the case %s\n",
                ended ? child_status(st) : "hung (killed after 120 s)");
        return 1;
    }
    if (!gone) {
        fprintf(stderr, "test_fuse_sync: FAILED: %s is still mounted\n", g_mnt);
        return 1;
    }

    /* The same store from the backing directory, no FUSE in between. */
    fprintf(stderr, "-- backing_dir_same\n");
    char store[700];
    snprintf(store, sizeof store, "%s/s.mms", g_back);
    mms_store *s = open_flags(store, 0);
    ASSERT_EQ(check_state(s, sh->after), sh->nfailed);
    ASSERT_EQ(MMS_AT(s, struct log_root, mms_root(s))->n, sh->final_n);
    OK(mms_close(s));
    rmrf(g_base);
    fprintf(stderr, "test_fuse_sync: ok\n");
    return 0;
}

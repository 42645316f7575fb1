/*
 * test_review22_ckfail.c -- a checkpoint whose sync of the region files
 * failed, then the next writer (review of 14b7a16, apply.c mms__repair).
 *
 * The failed checkpoint sets recover_needed (txn.c mms_checkpoint). Until
 * 14b7a16 the next writer then ran the full recovery, which wrote every
 * commit of the journal into the region files again and synced them
 * before it emptied the journal. Now it adopts the journal (its commits
 * are applied already: nothing to do), rewrites nothing, and the next
 * checkpoint's sync -- which Linux may report as a success once the
 * failure was reported, over pages it dropped (journal.c mms__jsync,
 * "fsyncgate") -- empties the journal over files that never reached the
 * disk: an acknowledged commit is lost, and the store refuses to open
 * (its files are older than the last checkpoint). The lost write-back is
 * simulated: the region file gets back the bytes it had at the last good
 * checkpoint (what the disk holds), as if the kernel had dropped the pages
 * whose write-back failed.
 */
#include "test.h"

#include "internal.h" /* mms__fault_arm */

struct root {
    uint64_t counter;
};

static mms_info *info(mms_store *s)
{
    static mms_info in;
    OK(mms_info_get(s, &in));
    return &in;
}

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

static mms_store *setup(const char *p)
{
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_zalloc(s, sizeof(struct root), &r));
    OK(mms_root_set(s, r));
    OK(mms_txn_commit(s));
    return s;
}

static void *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    char *b = malloc((size_t)st.st_size + 1);
    ASSERT(b);
    ASSERT_EQ(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

TEST(checkpoint_sync_failed)
{
    const char *p = shm_tpath("r22_cksync");
    mms_store *a = setup(p);
    commit_counter(a, 1);
    OK(mms_checkpoint(a)); /* the files, synced, hold counter 1: the disk */
    mms_store *keep = open_flags(p, MMS_RDONLY); /* no later open is a first open */
    char f0[600];
    snprintf(f0, sizeof f0, "%s/region-0-0", p);
    size_t n0;
    void *disk = slurp(f0, &n0);
    commit_counter(a, 2); /* acknowledged, applied (no reader), in the journal */
    ASSERT_EQ(info(a)->published_txn, info(a)->committed_txn);
    /* The checkpoint's sync of the region files fails. */
    mms__fault_arm(MMS__OP_FSYNC, 1, EIO);
    int r = mms_checkpoint(a);
    mms__fault_reset();
    ASSERT_EQ(r, -EIO);
    /* ... and the kernel dropped the pages it could not write back: the
     * file reads what the disk has, the last good checkpoint's state. */
    int fd = open(f0, O_WRONLY);
    ASSERT(fd >= 0);
    ASSERT_EQ(pwrite(fd, disk, n0, 0), (ssize_t)n0);
    close(fd);
    free(disk);
    mms_close(a); /* poisoned */
    /* The next writer: the journal still holds counter 2. */
    mms_store *b = open_flags(p, 0);
    OK(mms_txn_begin(b, 0));
    uint64_t c = counter_of(b);
    OK(mms_txn_abort(b));
    OK(mms_checkpoint(b)); /* its sync succeeds: the journal is emptied */
    OK(mms_close(b));
    OK(mms_close(keep));
    mms_options o;
    mms_options_init(&o);
    b = NULL;
    r = mms_open(p, &o, &b);
    uint64_t after = r ? 0 : counter_of(b);
    char got[200];
    if (r)
        snprintf(got, sizeof got, "%s (%s)", mms_strerror(r), mms_errdetail());
    else
        snprintf(got, sizeof got, "counter %llu", (unsigned long long)after);
    fprintf(stderr, "   the next writer found counter %llu; reopened after its checkpoint: %s "
            "(acknowledged: 2)\n", (unsigned long long)c, got);
    if (c != 2 || r || after != 2)
        FAILF("a commit acknowledged before a checkpoint whose region sync failed is lost: "
              "the next writer took the journal over without writing it into the files "
              "again, and its checkpoint emptied the journal");
    OK(mms_close(b));
    rmrf(p);
}

int main(void)
{
    signal(SIGABRT, shm_on_abort);
    RUN(checkpoint_sync_failed);
    shm_cleanup();
    return 0;
}

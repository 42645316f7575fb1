/* Disk space (issue 14, item 5): a new store is small; the space a
 * transaction that aborted or died left past the committed sizes goes back
 * at the next first open and at a checkpoint of a handle that is alone,
 * never under another handle's mapping; version-2 stores (a heap of whole
 * 4 MiB units) still open and stay version 2. */
#include "test.h"
#include "table_world.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB ((uint64_t)1 << 20)

struct rec {
    int64_t id;
    char pad[56];
};
static const mms_field fields[] = {MMS_F_I64(struct rec, id), MMS_F_CHARS(struct rec, pad)};
static const mms_schema schema = MMS_SCHEMA(struct rec, fields);

TEST(new_store_small)
{
    const char *p = tpath("space-new");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_close(s));
    const char *names[] = {"region-0-0", "journal", "lock"};
    for (int i = 0; i < 3; i++) {
        uint64_t size, disk = file_disk(p, names[i], &size);
        fprintf(stderr, "   %s: %llu bytes, %llu on disk\n", names[i], (unsigned long long)size,
                (unsigned long long)disk);
        ASSERT(disk <= 64 * 1024);
        ASSERT(size <= 64 * 1024);
    }
    s = open_flags(p, 0);
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.format_version, MMS_FORMAT_VERSION);
    ASSERT(in.heap_free < 64 * 1024); /* pages past the top are not counted */
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* A transaction that grows the heap by ~48 MiB and a table by ~32 MiB. */
static void big_txn(mms_store *s)
{
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &schema, MMS_TABLE_CREATE, &t));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, (32 * MIB) / sizeof(struct rec), &first, &where));
    memset(where, 7, 32 * MIB);
    for (int i = 0; i < 48; i++) {
        mms_ref r;
        OK(mms_alloc(s, 1000 * 1000, &r));
        memset(mms_deref(s, r), i, 1000 * 1000);
    }
}

/* A store with some committed data: a table of 1000 records, a few objects. */
static void small_store(const char *p)
{
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &schema, MMS_TABLE_CREATE, &t));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, 1000, &first, &where));
    memset(where, 1, 1000 * sizeof(struct rec));
    mms_ref r;
    OK(mms_alloc(s, 5000, &r));
    OK(mms_root_set(s, r));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

/* Each region file is at most its committed size and one growth step. */
static void check_given_back(const char *p, uint64_t limit)
{
    mms_store *s = open_flags(p, 0);
    verify_ok(s);
    mms_table *t;
    OK(mms_table_open(s, "t", &schema, 0, &t));
    ASSERT_EQ(mms_table_count(t), 1000);
    OK(mms_close(s));
    uint64_t disk = regions_disk(p);
    fprintf(stderr, "   region files: %llu bytes on disk (limit %llu)\n",
            (unsigned long long)disk, (unsigned long long)limit);
    ASSERT(disk <= limit);
}

/* A checkpoint through s gives back what an aborted or failed growth took:
 * the region files end within one growth step of before. */
static void checkpoint_gives_back(mms_store *s, const char *p, uint64_t before,
                                  const char *what)
{
    OK(mms_checkpoint(s));
    uint64_t after = regions_disk(p);
    fprintf(stderr, "   %s: %llu bytes on disk after the checkpoint, %llu before\n", what,
            (unsigned long long)after, (unsigned long long)before);
    ASSERT(after <= before + 256 * 1024);
}

/* The store is whole through s and opened again; then it goes. */
static void close_whole(mms_store *s, const char *p)
{
    verify_ok(s);
    OK(mms_close(s));
    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

TEST(killed_txn)
{
    const char *p = tpath("space-killed");
    small_store(p);
    uint64_t before = regions_disk(p);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        mms_store *s = open_flags(p, 0);
        big_txn(s);
        raise(SIGKILL);
        _exit(1);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    uint64_t left = regions_disk(p);
    fprintf(stderr, "   killed half-way: region files %llu bytes on disk, %llu before\n",
            (unsigned long long)left, (unsigned long long)before);
    ASSERT(left > before + 64 * MIB); /* the test tests something */
    check_given_back(p, before + 256 * 1024);
    rmrf(p);
}

TEST(aborted_txn)
{
    const char *p = tpath("space-aborted");
    small_store(p);
    uint64_t before = regions_disk(p);
    mms_store *s = open_flags(p, 0);
    /* With a second handle open the space stays (it maps the files as long
     * as they were); the checkpoint after it closed gives it back. */
    mms_store *other = open_flags(p, MMS_RDONLY);
    big_txn(s);
    OK(mms_txn_abort(s));
    OK(mms_checkpoint(s));
    ASSERT(regions_disk(p) > before + 64 * MIB);
    verify_ok(other);
    OK(mms_close(other));
    checkpoint_gives_back(s, p, before, "aborted");
    /* The handle's mappings were cut with the files: growing again works
     * (a store into a page past the end of a file would be a SIGBUS). */
    big_txn(s);
    OK(mms_txn_commit(s));
    close_whole(s, p);
}

/* A bulk append of 256 MiB (the report: an aborted one of 64 GiB left 65 GB)
 * that is aborted, and one whose growth fails after the file was extended
 * (the mapping fails: ENOMEM, as a very large one may): each leaves at most
 * one growth step on disk after the checkpoint. The second left its 2 GiB
 * for good: nothing marked it as space to give back, so neither the
 * checkpoint nor the next open cut the file (2 GiB in the first version
 * of this test: the size changes nothing but the time the test takes). */
#define BULK ((uint64_t)256 << 20)
TEST(aborted_bulk_append)
{
    const char *p = tpath("space-bulk");
    small_store(p);
    uint64_t before = regions_disk(p), n = BULK / sizeof(struct rec);
    mms_store *s = open_flags(p, 0);
    mms_table *t;
    uint64_t first;
    void *where;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &schema, 0, &t));
    OK(mms_table_append_many(t, n, &first, &where));
    memset(where, 7, MIB);
    ASSERT(regions_disk(p) > before + BULK - MIB); /* preallocated */
    OK(mms_txn_abort(s));
    checkpoint_gives_back(s, p, before, "aborted 256 MiB");
    for (unsigned long nth = 1; nth <= 2; nth++) {
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "t", &schema, 0, &t));
        mms__fault_arm(MMS__OP_MMAP, nth, ENOMEM); /* the view, then the file's view */
        FAILS(mms_table_append_many(t, n, &first, &where), -ENOMEM);
        mms__fault_reset();
        uint64_t failed = regions_disk(p);
        ASSERT(failed <= before + 256 * 1024); /* cut back at once */
        OK(mms_txn_abort(s));
        char what[64];
        snprintf(what, sizeof what, "mapping %lu failed (%llu bytes on disk then)", nth,
                 (unsigned long long)failed);
        checkpoint_gives_back(s, p, before, what);
    }
    /* Growing again works, and the store is whole. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &schema, 0, &t));
    OK(mms_table_append_many(t, 100000, &first, &where));
    memset(where, 9, 100000 * sizeof(struct rec));
    OK(mms_txn_commit(s));
    close_whole(s, p);
}

/* A checkpoint that gives space back goes by the committed sizes in the
 * files, not by its handle's view, which may be older: what another handle
 * committed (and grew the files for) stays. */
TEST(stale_view)
{
    const char *p = tpath("space-stale");
    small_store(p);
    mms_store *a = open_flags(p, 0);
    mms_store *b = open_flags(p, 0);
    big_txn(b);
    OK(mms_txn_commit(b));
    OK(mms_close(b)); /* not alone: gives nothing back */
    OK(mms_checkpoint(a)); /* alone now, its view of before b's commit */
    OK(mms_close(a));
    mms_store *s = open_flags(p, 0);
    verify_ok(s);
    mms_table *t;
    OK(mms_table_open(s, "t", &schema, 0, &t));
    ASSERT_EQ(mms_table_count(t), 1000 + (32 * MIB) / sizeof(struct rec));
    OK(mms_close(s));
    rmrf(p);
}

/* A version-2 store: heap of whole units. Made from a new store by hand:
 * the heap's top moved to the end of segment 0, the version set to 2. */
TEST(version2_store)
{
    const char *p = tpath("space-v2");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_close(s));
    char f[700];
    snprintf(f, sizeof f, "%s/region-0-0", p);
    int fd = open(f, O_RDWR);
    ASSERT(fd >= 0);
    ASSERT_EQ(posix_fallocate(fd, 0, (off_t)(4 * MIB)), 0);
    struct mms__hdrbuf b;
    ASSERT_EQ(pread(fd, &b, sizeof b, 0), (ssize_t)sizeof b);
    b.h.version = 2;
    b.rt[0].size = 4 * MIB;
    b.h.crc = mms__hdr_crc(&b.h, b.rt);
    ASSERT_EQ(pwrite(fd, &b, sizeof b, 0), (ssize_t)sizeof b);
    close(fd);
    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 6; i++) { /* past the first unit */
        mms_ref r;
        OK(mms_alloc(s, 1000 * 1000, &r));
    }
    OK(mms_txn_commit(s));
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.format_version, 2);
    ASSERT_EQ(in.region_size[0] % (4 * MIB), 0);
    ASSERT(in.region_size[0] >= 8 * MIB);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

int main(void)
{
    table_test_begin("test_space");
    RUN(new_store_small);
    RUN(killed_txn);
    RUN(aborted_txn);
    RUN(aborted_bulk_append);
    RUN(stale_view);
    RUN(version2_store);
    return table_test_end();
}

/*
 * test_create.c -- a refused create leaves nothing it made (mmstore.h,
 * MMS_CREATE), and never removes what it did not make.
 *
 *  1. options    a fixed layout the library refuses (checked after the
 *                directory and the lock file were made): no directory left;
 *                in an empty directory the user made, the directory stays,
 *                empty; beside a file of the user's, the file stays.
 *  2. faults     every system call of a create made to fail in turn (each
 *                op, n = 1, 2, ... until the create succeeds): after each
 *                refusal the path is as before -- absent, or the user's
 *                directory with the user's files only. A create that fails
 *                after region-0-0 was renamed into place (mapping it, the
 *                dirty-page backend, the reader slot) takes the store back too.
 *  3. full disk  a tmpfs too small for a store (in a child with its own
 *                mount namespace; skipped where it cannot mount): -ENOSPC,
 *                and the file system is empty again.
 *  4. existing   MMS_CREATE | MMS_EXCL on a store refuses and removes
 *                nothing; a lock file that is a symbolic link (a lock
 *                failure in a directory the user made) stays.
 */
#include "test.h"

#include "internal.h"

#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>

/* The names in dir, sorted, joined by spaces, into buf; "-" if dir is
 * absent. */
static const char *listing(const char *dir, char *buf, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT)
            FAILF("opendir %s: %s", dir, strerror(errno));
        snprintf(buf, cap, "-");
        return buf;
    }
    char names[64][256];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && n < 64)
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "", names[i]);
    return buf;
}

#define ASSERT_LISTING(dir, want)                                                  \
    do {                                                                           \
        char got_[4096];                                                           \
        listing(dir, got_, sizeof got_);                                           \
        if (strcmp(got_, want) != 0)                                               \
            FAILF("%s holds [%s]; expected [%s]", dir, got_, want);                \
    } while (0)

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    file_put(p, text);
}

static mms_options create_opts(unsigned flags)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | flags;
    return o;
}

/* ------------------------------------------------------------------------
 * 1. Options refused after the directory and the lock file were made
 * ------------------------------------------------------------------------ */
TEST(refused_options)
{
    mms_options o = create_opts(MMS_FIXED);
    o.base = 12345; /* not aligned: refused by the fixed layout's check */
    mms_store *s = NULL;

    const char *p = tpath("opts");
    FAILS(mms_open(p, &o, &s), MMS_EINVAL);
    ASSERT(s == NULL);
    ASSERT_LISTING(p, "-");

    /* An empty directory the user made stays, empty. */
    ASSERT_EQ(mkdir(p, 0777), 0);
    FAILS(mms_open(p, &o, &s), MMS_EINVAL);
    ASSERT_LISTING(p, "");

    /* ... and a file of the user's in it stays. */
    write_file(p, "notes.txt", "mine\n");
    FAILS(mms_open(p, &o, &s), MMS_EINVAL);
    ASSERT_LISTING(p, "notes.txt");

    /* The same create without the bad option works there. */
    mms_options good = create_opts(0);
    OK(mms_open(p, &good, &s));
    OK(mms_close(s));
    ASSERT_LISTING(p, "journal lock notes.txt region-0-0");
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * 2. Every system call of a create, failed in turn
 * ------------------------------------------------------------------------ */
static const struct {
    enum mms__op op;
    int err;
} plan[] = {{MMS__OP_OPEN, EMFILE},     {MMS__OP_PREAD, EIO},       {MMS__OP_PWRITE, ENOSPC},
            {MMS__OP_FSYNC, EIO},       {MMS__OP_FALLOCATE, ENOSPC}, {MMS__OP_MMAP, ENOMEM},
            {MMS__OP_MSYNC, EIO},       {MMS__OP_MPROTECT, ENOMEM}, {MMS__OP_FTRUNCATE, EIO},
            {MMS__OP_MKDIR, ENOSPC},    {MMS__OP_RENAME, EIO},      {MMS__OP_STAT, EIO},
            {MMS__OP_FILL, ENOSPC}};

/* One sweep in path: before is what the path holds before each create
 * ("-": absent). Returns how many creates were refused. */
static const char *const op_name[MMS__OP_COUNT] = {
    "open", "pread", "pwrite", "fsync", "fallocate", "mmap", "msync", "mprotect",
    "ftruncate", "mkdir", "rename", "stat", "readdir", "fill", "punch", "copy"};

static unsigned sweep(const char *path, const char *before)
{
    unsigned refused = 0;
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        for (unsigned long nth = 1;; nth++) {
            mms_options o = create_opts(MMS_GUARD_MPROTECT);
            mms_store *s = NULL;
            mms__fault_arm(plan[i].op, nth, plan[i].err);
            int r = mms_open(path, &o, &s);
            mms__fault_reset();
            if (r == 0) { /* the create makes fewer than nth calls of op */
                OK(mms_close(s));
                char p[700];
                for (const char *f = "journal\0lock\0region-0-0\0"; *f; f += strlen(f) + 1) {
                    snprintf(p, sizeof p, "%s/%s", path, f);
                    ASSERT_EQ(unlink(p), 0);
                }
                if (strcmp(before, "-") == 0)
                    ASSERT_EQ(rmdir(path), 0);
                break;
            }
            refused++;
            char got[4096];
            listing(path, got, sizeof got);
            if (strcmp(got, before) != 0)
                FAILF("create with %s #%lu failing (-> %d %s) left [%s]; before it: [%s]",
                      op_name[plan[i].op], nth, r, mms_strerror(r), got, before);
        }
    }
    return refused;
}

TEST(refused_by_faults)
{
    const char *p = tpath("faults");
    unsigned refused = sweep(p, "-");
    fprintf(stderr, "   %u creates refused in a new directory\n", refused);
    ASSERT_GE(refused, 15u);

    ASSERT_EQ(mkdir(p, 0777), 0);
    write_file(p, "notes.txt", "mine\n");
    refused = sweep(p, "notes.txt");
    fprintf(stderr, "   %u creates refused beside a file of the user's\n", refused);
    ASSERT_GE(refused, 15u);
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * 3. A real full disk
 * ------------------------------------------------------------------------ */
static int small_fs_child(const char *mnt)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return 77;
    /* A new store takes 148 KiB (region 0 and the journal 64 KiB each, the
     * lock file): 100 KiB holds the directory and the lock file, not both
     * of the others. */
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=100k") < 0)
        return 77;
    char p[700];
    snprintf(p, sizeof p, "%s/new.mms", mnt);
    mms_options o = create_opts(0);
    mms_store *s = NULL;
    for (int i = 0; i < 2; i++)
        FAILS(mms_open(p, &o, &s), -ENOSPC);
    ASSERT_LISTING(mnt, "");
    /* In a directory the user made: it stays, empty. */
    ASSERT_EQ(mkdir(p, 0777), 0);
    FAILS(mms_open(p, &o, &s), -ENOSPC);
    ASSERT_LISTING(p, "");
    umount(mnt);
    return 0;
}

TEST(refused_by_full_disk)
{
    const char *mnt = tpath("small_fs");
    ASSERT_EQ(mkdir(mnt, 0777), 0);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        _exit(small_fs_child(mnt));
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        fprintf(stderr, "   skipped: cannot mount a tmpfs here\n");
    else
        ASSERT_EQ(WEXITSTATUS(st), 0);
    rmrf(mnt);
}

/* ------------------------------------------------------------------------
 * 4. What was there before stays
 * ------------------------------------------------------------------------ */
TEST(refused_keeps_existing)
{
    const char *p = tpath("existing");
    mms_options o = create_opts(0);
    mms_store *s = NULL;
    OK(mms_open(p, &o, &s));
    OK(mms_close(s));
    o.flags |= MMS_EXCL;
    FAILS(mms_open(p, &o, &s), -EEXIST);
    ASSERT_LISTING(p, "journal lock region-0-0");
    mms_options plain = create_opts(0);
    OK(mms_open(p, &plain, &s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);

    /* A lock file that is a symbolic link: refused; the link and the
     * directory are the user's. */
    ASSERT_EQ(mkdir(p, 0777), 0);
    char link[700];
    snprintf(link, sizeof link, "%s/lock", p);
    ASSERT_EQ(symlink("/nonexistent-target", link), 0);
    FAILS(mms_open(p, &plain, &s), MMS_ECORRUPT);
    ASSERT_LISTING(p, "lock");
    rmrf(p);
}

int main(void)
{
    RUN(refused_options);
    RUN(refused_by_faults);
    RUN(refused_by_full_disk);
    RUN(refused_keeps_existing);
    fprintf(stderr, "test_create: OK\n");
    return 0;
}

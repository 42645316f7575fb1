/*
 * test_leftovers.c -- mms_leftovers_remove(): what killed runs left beside
 * a path goes, and only that (mmstore.h). One mechanism for mms_copy's
 * temporary directories (".mms-copy-PID-N") and the mms tool's dump, load
 * and recover (".mms-dump-PID", ...; test_cli runs those commands).
 *
 *  1. names     NAME.mms-copy-PID and NAME.mms-copy-PID-N of a dead process
 *               go (directories with files, a file, a link -- not what it
 *               names); of a live process, of this one, and names that only
 *               look alike (another NAME, another tag, PID 0..., trailing
 *               text) stay.
 *  2. copy      mms_copy removes a dead copy's temporary directory beside
 *               dest, and keeps a live one's.
 *  3. errors    a tag that is not ".mms-...", no path.
 */
#include "test.h"

#include <dirent.h>

static char g_dir[512];

static void put(const char *name, const char *text)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/%.299s", g_dir, name);
    file_put(p, text);
}

static void put_dir(const char *name)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/%.299s", g_dir, name);
    ASSERT_EQ(mkdir(p, 0777), 0);
    snprintf(p, sizeof p, "%s/%.299s/region-0-0", g_dir, name);
    FILE *f = fopen(p, "w");
    ASSERT(f != NULL);
    fputs("half a store", f);
    ASSERT_EQ(fclose(f), 0);
}

static bool there(const char *name)
{
    char p[1100];
    struct stat st;
    snprintf(p, sizeof p, "%s/%.299s", g_dir, name);
    return lstat(p, &st) == 0;
}

TEST(names)
{
    snprintf(g_dir, sizeof g_dir, "%s", tpath("leftovers"));
    ASSERT_EQ(mkdir(g_dir, 0777), 0);
    pid_t dead = dead_pid(), live = getppid(), self = getpid();
    char n[40][300];
    int k = 0;
    /* go */
    snprintf(n[k++], 300, "db.mms-copy-%d", (int)dead);
    snprintf(n[k++], 300, "db.mms-copy-%d-7", (int)dead);
    snprintf(n[k++], 300, "db.mms-copy-%d-8", (int)dead); /* a file */
    snprintf(n[k++], 300, "db.mms-copy-%d-9", (int)dead); /* a link */
    int go = k;
    /* stay */
    snprintf(n[k++], 300, "db.mms-copy-%d", (int)live);
    snprintf(n[k++], 300, "db.mms-copy-%d-1", (int)self);
    snprintf(n[k++], 300, "dbx.mms-copy-%d", (int)dead);
    snprintf(n[k++], 300, "db.mms-dump-%d", (int)dead);
    snprintf(n[k++], 300, "db.mms-copy-0%d", (int)dead);
    snprintf(n[k++], 300, "db.mms-copy-%dx", (int)dead);
    snprintf(n[k++], 300, "db.mms-copy-%d-", (int)dead);
    snprintf(n[k++], 300, "db.mms-copy-%d-3x", (int)dead);
    snprintf(n[k++], 300, "db.mms-copy-99999999999");
    snprintf(n[k++], 300, "target");
    for (int i = 0; i < k; i++)
        if (i == 2)
            put(n[i], "a dump in the making");
        else if (i == 3) {
            char t[600], l[900];
            snprintf(t, sizeof t, "%s/target", g_dir);
            snprintf(l, sizeof l, "%s/%.299s", g_dir, n[i]);
            ASSERT_EQ(symlink(t, l), 0);
        } else if (i != k - 1)
            put_dir(n[i]);
    put_dir("target");
    char path[600];
    snprintf(path, sizeof path, "%s/db", g_dir);
    unsigned removed = 99;
    OK(mms_leftovers_remove(path, ".mms-copy-", &removed));
    ASSERT_EQ(removed, (unsigned)go);
    for (int i = 0; i < k; i++)
        if ((i < go) == there(n[i]))
            FAILF("%s: %s", n[i], i < go ? "still there" : "removed");
    ASSERT(there("target/region-0-0")); /* the link went, not what it named */
    /* A trailing slash names the same store. */
    snprintf(path, sizeof path, "%s/dbx/", g_dir);
    OK(mms_leftovers_remove(path, ".mms-copy-", &removed));
    ASSERT_EQ(removed, 1u);
    rmrf(g_dir);
}

TEST(copy)
{
    snprintf(g_dir, sizeof g_dir, "%s", tpath("leftovers-copy"));
    ASSERT_EQ(mkdir(g_dir, 0777), 0);
    char src[600], dest[600], gone[300], kept[300];
    snprintf(src, sizeof src, "%s/src.mms", g_dir);
    snprintf(dest, sizeof dest, "%s/dest.mms", g_dir);
    mms_store *s = open_flags(src, MMS_CREATE);
    snprintf(gone, sizeof gone, "dest.mms.mms-copy-%d-1", (int)dead_pid());
    snprintf(kept, sizeof kept, "dest.mms.mms-copy-%d-1", (int)getppid());
    put_dir(gone);
    put_dir(kept);
    OK(mms_copy(s, dest, 0, NULL));
    OK(mms_close(s));
    ASSERT(!there(gone));
    ASSERT(there(kept));
    rmrf(g_dir);
}

TEST(errors)
{
    unsigned removed = 7;
    FAILS(mms_leftovers_remove("/tmp/x", "", &removed), MMS_EINVAL);
    ASSERT_EQ(removed, 0u);
    FAILS(mms_leftovers_remove("/tmp/x", "-", NULL), MMS_EINVAL);
    FAILS(mms_leftovers_remove("/tmp/x", ".mms-a/b-", NULL), MMS_EINVAL);
    FAILS(mms_leftovers_remove(NULL, ".mms-copy-", NULL), MMS_EINVAL);
    FAILS(mms_leftovers_remove("/no/such/parent/x", ".mms-copy-", NULL), -ENOENT);
}

int main(void)
{
    RUN(names);
    RUN(copy);
    RUN(errors);
    fprintf(stderr, "test_leftovers: OK\n");
    return 0;
}

/*
 * test_killwin.c -- kill windows in the lock file's protocol outside the
 * gate (test_backlog has the gate's): a process killed between two stores
 * into the lock file must leave a state the next handles judge right, so
 * that none waits for ever, takes over a live process's work, or skips a
 * dead one's. Each case kills a child at a crash point in such a window.
 */
#include "test.h"

#include <dirent.h>
#include <sys/stat.h>

#define MIB ((uint64_t)1 << 20)

struct rec {
    int64_t id;
    char pad[56];
};
static const mms_field fields[] = {MMS_F_I64(struct rec, id), MMS_F_CHARS(struct rec, pad)};
static const mms_schema schema = MMS_SCHEMA(struct rec, fields);

/* Bytes on disk of the region files. */
static uint64_t regions_disk(const char *dir)
{
    DIR *d = opendir(dir);
    ASSERT(d != NULL);
    uint64_t sum = 0;
    struct dirent *e;
    char p[700];
    struct stat st;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "region-", 7) == 0) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (stat(p, &st) < 0)
                FAILF("stat %s", p);
            sum += (uint64_t)st.st_blocks * 512;
        }
    closedir(d);
    return sum;
}

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

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 2, "ROLE PATH");
    if (a) {
        if (strcmp(a[0], "grower") == 0)
            return child_grower(a[1]);
        return 2;
    }
    RUN(give_back_kill);
    return 0;
}

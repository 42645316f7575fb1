/*
 * test_open_stat.c -- what an open asks the kernel about each region file.
 *
 * The open of a table's region file checks it is a regular file with an
 * fstat (os.c, mms__os_openat_sized); its size, which the mapping needs
 * next, comes from that same fstat: one fstat per table file, not two.
 * The program counts the library's fstat calls (it defines fstat, which
 * the statically linked library then calls) over opens of a store with 1
 * and with 6 tables: the difference is 5 tables' worth.
 *
 * The lock file likewise: its regular-file check and the size the first
 * handle needs come from one fstat, made once the lock is tried (lock.c,
 * mms__lock_attach); it was measured twice.
 */
#include "test.h"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

static unsigned long nfstat, nfstat_lock;

/* Is fd the lock file of a store? (its name in /proc/self/fd) */
static bool is_lock_file(int fd)
{
    char link[64], name[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, name, sizeof name - 1);
    if (n < 5)
        return false;
    name[n] = 0;
    return strcmp(name + n - 5, "/lock") == 0;
}

int fstat(int fd, struct stat *st)
{
    static int (*real)(int, struct stat *);
    if (!real)
        real = (int (*)(int, struct stat *))dlsym(RTLD_NEXT, "fstat");
    __atomic_add_fetch(&nfstat, 1, __ATOMIC_RELAXED);
    if (is_lock_file(fd))
        __atomic_add_fetch(&nfstat_lock, 1, __ATOMIC_RELAXED);
    return real(fd, st);
}

struct row {
    int64_t a;
};
static const mms_field row_fields[] = {MMS_F_I64(struct row, a)};
static const mms_schema row_schema = MMS_SCHEMA(struct row, row_fields);

/* The fstat calls of an open and close of path. */
static unsigned long open_fstats(const char *path)
{
    mms_store *s;
    unsigned long before = nfstat;
    OK(mms_open(path, NULL, &s));
    OK(mms_close(s));
    return nfstat - before;
}

TEST(one_fstat_per_table_file)
{
    const char *path = tpath("open-stat");
    mms_store *s = open_flags(path, MMS_CREATE);
    unsigned long with[2];
    for (int round = 0; round < 2; round++) {
        OK(mms_txn_begin(s, 0));
        for (int k = round ? 1 : 0; k < (round ? 6 : 1); k++) {
            char name[16];
            snprintf(name, sizeof name, "t%d", k);
            mms_table *t;
            OK(mms_table_open(s, name, &row_schema, MMS_TABLE_CREATE, &t));
            struct row r = {k};
            OK(mms_table_append(t, &r, NULL));
        }
        OK(mms_txn_commit(s));
        OK(mms_close(s));
        with[round] = open_fstats(path);
        ASSERT(with[round] > 0); /* the library's calls are the ones counted */
        s = open_flags(path, 0);
    }
    OK(mms_close(s));
    fprintf(stderr, "fstat calls per open: %lu with 1 table, %lu with 6\n", with[0], with[1]);
    ASSERT_EQ(with[1] - with[0], 5);
    rmrf(path);
}

/* The first handle's open (the lock file made or rebuilt) and one that
 * shares it: each fstats the lock file once while it is alone, the one
 * that shares measures again after its wait (an initialiser may have been
 * setting the size). */
TEST(one_fstat_of_the_lock_file)
{
    const char *path = tpath("open-stat-lock");
    mms_store *s = open_flags(path, MMS_CREATE);
    OK(mms_close(s));
    unsigned long before = nfstat_lock;
    s = open_flags(path, MMS_RDONLY);
    ASSERT_EQ(nfstat_lock - before, 1);
    before = nfstat_lock;
    mms_store *s2 = open_flags(path, MMS_RDONLY);
    ASSERT_EQ(nfstat_lock - before, 2);
    OK(mms_close(s2));
    OK(mms_close(s));
    rmrf(path);
}

int main(void)
{
    RUN(one_fstat_per_table_file);
    RUN(one_fstat_of_the_lock_file);
    return 0;
}

/* A store under a low RLIMIT_NOFILE (the report: `mms load` under
 * `ulimit -n 16` failed at the checkpoint's directory listing). Not a
 * leak: a handle keeps each region file it maps open. A checkpoint needs
 * no descriptor beyond those (it syncs the files through them and lists
 * the directory through the handle's own), and running out of descriptors
 * says what holds them and which limit to raise. Each case runs in a child,
 * whose limit it lowers. */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct rec {
    int64_t id;
    char pad[24];
};
static const mms_field fields[] = {MMS_F_I64(struct rec, id), MMS_F_CHARS(struct rec, pad)};
static const mms_schema schema = MMS_SCHEMA(struct rec, fields);

/* The highest descriptor open, plus one. */
static int fds_in_use(void)
{
    DIR *d = opendir("/proc/self/fd");
    ASSERT(d != NULL);
    int top = 0, own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != own && atoi(e->d_name) + 1 > top)
            top = atoi(e->d_name) + 1;
    closedir(d);
    return top;
}

/* Leave exactly spare descriptors free: the limit above the highest in
 * use, and the holes below it filled (a new descriptor takes the lowest
 * free number). */
static void limit_fds(int spare)
{
    int top = fds_in_use();
    struct rlimit rl;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = (rlim_t)(top + spare);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0 && errno == EMFILE && spare == 0)
            break; /* every hole filled */
        ASSERT(fd >= 0);
        if (fd >= top) {
            close(fd);
            break;
        }
    }
}

static void add_table(mms_store *s, const char *name)
{
    mms_table *t;
    OK(mms_table_open(s, name, &schema, MMS_TABLE_CREATE, &t));
    struct rec r = {1, "x"};
    OK(mms_table_append(t, &r, NULL));
}

static void in_child(void (*fn)(const char *), const char *p)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        fn(p);
        _exit(0);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* With not one descriptor to spare, a commit and its checkpoint work. */
static void checkpoint_child(const char *p)
{
    mms_store *s = open_flags(p, 0);
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", i);
        add_table(s, name);
    }
    OK(mms_txn_commit(s));
    OK(mms_checkpoint(s)); /* old region files deleted: none to open below */
    OK(mms_txn_begin(s, 0));
    mms_table *t;
    OK(mms_table_find(s, "t1", &t));
    struct rec r = {2, "y"};
    OK(mms_table_append(t, &r, NULL));
    OK(mms_txn_commit(s));
    limit_fds(0);
    OK(mms_checkpoint(s));
    OK(mms_close(s));
}

TEST(checkpoint_needs_no_spare_descriptor)
{
    const char *p = tpath("fd-checkpoint");
    OK(mms_close(open_flags(p, MMS_CREATE)));
    in_child(checkpoint_child, p);
    mms_store *s = open_flags(p, MMS_RDONLY);
    verify_ok(s);
    mms_table *t;
    OK(mms_table_find(s, "t1", &t));
    ASSERT_EQ(mms_table_count(t), 2u);
    OK(mms_close(s));
    rmrf(p);
}

/* Tables until the descriptors run out: the error names the limit. */
static void tables_child(const char *p)
{
    mms_store *s = open_flags(p, 0);
    limit_fds(4);
    OK(mms_txn_begin(s, 0));
    int r = 0, n = 0;
    for (; n < 20 && !r; n++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", n);
        mms_table *t;
        r = mms_table_open(s, name, &schema, MMS_TABLE_CREATE, &t);
    }
    ASSERT_EQ(r, -EMFILE);
    ASSERT_EQ(n, 5); /* four tables, then none */
    const char *d = mms_errdetail();
    if (!strstr(d, "raise RLIMIT_NOFILE") || !strstr(d, "this handle keeps 5 open"))
        FAILF("the error says: %s", d);
    if (!strstr(mms_strerror(-EMFILE), "RLIMIT_NOFILE"))
        FAILF("mms_strerror(-EMFILE) says: %s", mms_strerror(-EMFILE));
    OK(mms_txn_abort(s));
    OK(mms_close(s));
}

TEST(running_out_says_why)
{
    const char *p = tpath("fd-tables");
    OK(mms_close(open_flags(p, MMS_CREATE)));
    in_child(tables_child, p);
    rmrf(p);
}

int main(void)
{
    RUN(checkpoint_needs_no_spare_descriptor);
    RUN(running_out_says_why);
    return 0;
}

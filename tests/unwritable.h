/*
 * unwritable.h -- the store of test_unwritable.c and test_qa22.c: a root
 * {counter, arr} and a table "rec" that must agree (the invariant
 * test_unwritable.c describes), in a directory an unprivileged uid
 * (UNPRIV) may search but not write. Include after test.h, with UNW_TAG
 * (the name of the stores' directory) and UNW_TXN_IS_COUNTER (1: no
 * commit but commit_counter's is made, so the txn id is counter + 1, and
 * that is checked too) defined.
 */
#ifndef MMS_TEST_UNWRITABLE_H
#define MMS_TEST_UNWRITABLE_H

#include <dirent.h>
#include <grp.h>

#define UNPRIV 65534u /* nobody */
#define ARR_N 4096u   /* 8 pages */

#define REC_STEP 512u

struct root {
    uint64_t counter;
    mms_ref arr;
};

struct rec {
    uint64_t v;
};
static const mms_field rec_fields[] = {MMS_F_U64(struct rec, v)};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);

/* The base directory of the stores: MMS_TEST_TMP if UNPRIV can reach it
 * (every directory above it searchable by others), else /tmp. */
static char base[400];

static const char *store_path(const char *name)
{
    if (!base[0]) {
        const char *b = getenv("MMS_TEST_TMP");
        bool ok = b && *b && strlen(b) < 300;
        if (ok) {
            mkdir(b, 0755);
            char p[400];
            snprintf(p, sizeof p, "%s", b);
            for (char *slash = p + strlen(p); ok && slash; slash = strrchr(p, '/')) {
                struct stat st;
                *slash = 0;
                ok = stat(*p ? p : "/", &st) == 0 && (st.st_mode & S_IXOTH);
                if (!*p)
                    break;
            }
            struct stat st;
            ok = ok && stat(b, &st) == 0 && (st.st_mode & S_IXOTH);
        }
        snprintf(base, sizeof base, "%s/%s.%d", ok ? b : "/tmp", UNW_TAG, (int)getpid());
        mkdir(base, 0755);
        ASSERT_EQ(chmod(base, 0755), 0);
    }
    static char path[8][500];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 500, "%s/%s.mms", base, name);
    rmrf(p);
    return p;
}

/* The directory and its files: readable, not writable, by others. */
static void seal(const char *path)
{
    ASSERT_EQ(chmod(path, 0755), 0);
    DIR *d = opendir(path);
    ASSERT(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char f[700];
        snprintf(f, sizeof f, "%s/%s", path, e->d_name);
        ASSERT_EQ(chmod(f, 0644), 0);
    }
    closedir(d);
}

/* Commit counter c: the counter and every word of arr. */
static void commit_counter(mms_store *s, uint64_t c)
{
    OK(mms_txn_begin(s, 0));
    struct root *rt = MMS_AT(s, struct root, mms_root(s));
    uint64_t *arr = MMS_AT(s, uint64_t, rt->arr);
    rt->counter = c;
    for (unsigned i = 0; i < ARR_N; i++)
        arr[i] = c;
    mms_table *t;
    OK(mms_table_open(s, "rec", &rec_schema, 0, &t));
    uint64_t n = mms_table_count(t), first;
    for (uint64_t i = 0; i < n; i++)
        ((struct rec *)mms_table_get(t, i))->v = c;
    if (c % 10 == 0) {
        void *w;
        OK(mms_table_append_many(t, REC_STEP, &first, &w));
        for (unsigned i = 0; i < REC_STEP; i++)
            ((struct rec *)w)[i].v = c;
    }
    OK(mms_txn_commit(s));
    if (UNW_TXN_IS_COUNTER)
        ASSERT_EQ(mms_txn_id(s), c + 1);
}

/* A new store at counter 0 (txn 1), closed, sealed; its lock file exists. */
static void make_store(const char *path)
{
    mms_store *s = open_flags(path, MMS_CREATE);
    mms_ref r, a;
    OK(mms_txn_begin(s, 0));
    OK(mms_zalloc(s, sizeof(struct root), &r));
    OK(mms_zalloc(s, ARR_N * sizeof(uint64_t), &a));
    MMS_AT(s, struct root, r)->arr = a;
    OK(mms_root_set(s, r));
    mms_table *t;
    uint64_t first;
    void *w;
    OK(mms_table_open(s, "rec", &rec_schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_append_many(t, REC_STEP, &first, &w));
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_txn_id(s), 1);
    OK(mms_close(s));
    seal(path);
}

/* Inside a read transaction: the counter, after checking the invariant. */
static uint64_t check_whole(mms_store *s)
{
    const struct root *rt = MMS_AT(s, struct root, mms_root(s));
    uint64_t c = rt->counter;
    const uint64_t *arr = MMS_AT(s, uint64_t, rt->arr);
    for (unsigned i = 0; i < ARR_N; i++)
        if (arr[i] != c)
            FAILF("torn read: arr[%u] = %llu, counter %llu", i, (unsigned long long)arr[i],
                  (unsigned long long)c);
    if (UNW_TXN_IS_COUNTER && mms_txn_id(s) != c + 1)
        FAILF("txn %llu with counter %llu", (unsigned long long)mms_txn_id(s),
              (unsigned long long)c);
    mms_table *t;
    OK(mms_table_open(s, "rec", &rec_schema, 0, &t));
    uint64_t n = mms_table_count(t);
    if (n != (1 + c / 10) * REC_STEP)
        FAILF("torn read: %llu records at counter %llu", (unsigned long long)n,
              (unsigned long long)c);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = ((const struct rec *)mms_table_get(t, i))->v;
        if (v != c)
            FAILF("torn read: record %llu holds %llu, counter %llu", (unsigned long long)i,
                  (unsigned long long)v, (unsigned long long)c);
    }
    return c;
}

static uint64_t read_once(mms_store *s)
{
    OK(mms_read_begin(s));
    uint64_t c = check_whole(s);
    OK(mms_read_end(s));
    return c;
}

/* The start of main: the readers drop to another uid, so root only (NULL:
 * the test skips); the page the parent and its forked children share. */
static void *unw_start(size_t shared)
{
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: the readers drop to another uid (needs root)\n");
        return NULL;
    }
    umask(022);
    void *p = mmap(NULL, shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(p != MAP_FAILED);
    return p;
}

/* In a forked child (of parent): become UNPRIV, or exit 98. */
static inline void unw_become_unpriv(pid_t parent)
{
    if (setgroups(0, NULL) != 0 || setgid(UNPRIV) != 0 || setuid(UNPRIV) != 0)
        _exit(98);
    die_with_parent(parent); /* a change of credentials cleared it */
    ASSERT_EQ(geteuid(), UNPRIV);
}

/* fork(): in the child (0 returned) it dies with its parent and is UNPRIV
 * if unpriv; the parent gets the child's pid. */
static inline pid_t unw_fork(bool unpriv)
{
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        die_with_parent(parent);
        if (unpriv)
            unw_become_unpriv(parent);
    }
    return pid;
}

/* Run fn(path) in a forked child, as UNPRIV if unpriv; returns its pid. */
static inline pid_t unw_child(bool unpriv, void (*fn)(const char *path), const char *path)
{
    pid_t pid = unw_fork(unpriv);
    if (pid == 0) {
        fn(path);
        _exit(0);
    }
    return pid;
}

/* The end of main: the stores' directory goes. */
static void unw_finish(void)
{
    if (base[0])
        rmrf(base);
}

#endif

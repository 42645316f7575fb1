/*
 * test_mix.c -- features in combination, where each one alone is tested
 * elsewhere.
 *
 *  1. ref_to_dropped  A table whose REF field's target table was dropped
 *                     (the field then targets no table: mms_table_schema()
 *                     gives "") opens with mms_table_open and the layout
 *                     mms_table_schema() gives, migrates with that field
 *                     kept, and the store then dumps and loads. A new REF
 *                     field (a new table's, or one a migration adds) still
 *                     needs a target.
 *  2. killed_new_file A writer killed just after it created a region's new
 *                     file (a migration, an index build, a new table)
 *                     leaves no file the next open and close do not
 *                     delete; one killed just after it grew a table's
 *                     file, no space past the committed size that the
 *                     next open does not give back.
 */
#include "test.h"

struct city {
    int64_t id;
};
static const mms_field city_fields[] = {MMS_F_I64(struct city, id)};
static const mms_schema city_schema = MMS_SCHEMA(struct city, city_fields);

struct home1 {
    int64_t k;
    uint64_t city;
    uint64_t name;
};
static const mms_field home1_fields[] = {MMS_F_I64(struct home1, k),
                                         MMS_F_REF(struct home1, city, "city"),
                                         MMS_F_STR(struct home1, name)};
static const mms_schema home1_schema = MMS_SCHEMA(struct home1, home1_fields);

/* home1 with a field added after "city" was dropped: city targets no table. */
struct home2 {
    int64_t k;
    uint64_t city;
    uint64_t name;
    int32_t z;
};
static const mms_field home2_fields[] = {MMS_F_I64(struct home2, k),
                                         MMS_F_REF(struct home2, city, ""),
                                         MMS_F_STR(struct home2, name),
                                         MMS_F_I32(struct home2, z)};
static const mms_schema home2_schema = MMS_SCHEMA(struct home2, home2_fields);

static void homes_check(mms_store *s, uint64_t n, int migrated)
{
    mms_table *t;
    OK(mms_table_find(s, "home", &t));
    const mms_schema *sc = mms_table_schema(t);
    ASSERT_EQ(sc->record_size, migrated ? sizeof(struct home2) : sizeof(struct home1));
    ASSERT_EQ(sc->fields[1].kind, MMS_KIND_REF);
    ASSERT(sc->fields[1].target && strcmp(sc->fields[1].target, "") == 0);
    ASSERT_EQ(mms_table_count(t), n);
    mms_index *ix;
    OK(mms_index_open(t, "k", &ix));
    for (uint64_t i = 0; i < n; i++) {
        const char *r = mms_table_get(t, i);
        int64_t k;
        uint64_t city, name;
        memcpy(&k, r, 8);
        memcpy(&city, r + 8, 8);
        memcpy(&name, r + 16, 8);
        ASSERT_EQ(k, (int64_t)i * 7);
        ASSERT_EQ(city, 0);
        char want[32];
        snprintf(want, sizeof want, "home %llu", (unsigned long long)i);
        const char *got = mms_str_get(s, name, NULL);
        ASSERT(got && strcmp(got, want) == 0);
        uint64_t at = UINT64_MAX;
        OK(mms_index_find(ix, &k, &at));
        ASSERT_EQ(at, i);
    }
}

TEST(ref_to_dropped)
{
    const char *path = tpath("mix_refdrop");
    mms_store *s = open_flags(path, MMS_CREATE);
    mms_table *c, *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "city", &city_schema, MMS_TABLE_CREATE, &c));
    OK(mms_table_open(s, "home", &home1_schema, MMS_TABLE_CREATE, &t));
    struct city cr = {1};
    OK(mms_table_append(c, &cr, NULL));
    for (uint64_t i = 0; i < 50; i++) {
        struct home1 h = {(int64_t)i * 7, i % 2 ? mms_table_ref(c, 0) : 0, 0};
        char name[32];
        snprintf(name, sizeof name, "home %llu", (unsigned long long)i);
        OK(mms_str_new(s, name, strlen(name), &h.name));
        OK(mms_table_append(t, &h, NULL));
    }
    OK(mms_index_create(t, "k", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
    OK(mms_txn_commit(s));
    /* Clear the refs, drop their target. */
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = 0; i < 50; i++)
        MMS_TABLE_GET(t, struct home1, i)->city = 0;
    OK(mms_table_drop(s, "city"));
    OK(mms_txn_commit(s));
    OK(mms_close(s));

    s = open_flags(path, 0);
    OK(mms_table_find(s, "home", &t));
    homes_check(s, 50, 0);
    /* The layout mms_table_schema gives opens the table, in and out of a
     * write transaction. */
    const mms_schema *stored = mms_table_schema(t);
    mms_field f[3];
    memcpy(f, stored->fields, sizeof f);
    mms_schema same = {stored->record_size, 3, f};
    mms_table *t2 = NULL;
    OK(mms_table_open(s, "home", &same, 0, &t2));
    ASSERT(t2 == t);
    /* So does the program's own struct, with "" for the dropped target. */
    mms_field own[3];
    memcpy(own, home1_fields, sizeof own);
    own[1].target = "";
    mms_schema own_schema = {sizeof(struct home1), 3, own};
    OK(mms_table_open(s, "home", &own_schema, 0, &t2));
    ASSERT(t2 == t);
    /* The gone table's name still names no table. */
    FAILS(mms_table_open(s, "home", &home1_schema, 0, &t2), MMS_ENOENT);

    OK(mms_txn_begin(s, 0));
    /* A new REF field needs a target: a new table's, or one a migration
     * adds. */
    struct lone {
        uint64_t r;
    };
    static const mms_field lone_fields[] = {MMS_F_REF(struct lone, r, "")};
    static const mms_schema lone_schema = MMS_SCHEMA(struct lone, lone_fields);
    FAILS(mms_table_open(s, "lone", &lone_schema, MMS_TABLE_CREATE, &t2), MMS_EINVAL);
    mms_field added[4];
    memcpy(added, home2_fields, sizeof added);
    added[3] = (mms_field){"z2", MMS_KIND_REF, offsetof(struct home2, z), 8, "", NULL};
    mms_schema added_schema = {sizeof(struct home2) + 4, 4, added};
    FAILS(mms_table_open(s, "home", &added_schema, 0, &t2), MMS_EINVAL);
    /* Aiming the field at a table is another target: refused. */
    mms_field aimed[4];
    memcpy(aimed, home2_fields, sizeof aimed);
    aimed[1].target = "home";
    mms_schema aimed_schema = {sizeof(struct home2), 4, aimed};
    FAILS(mms_table_open(s, "home", &aimed_schema, 0, &t2), MMS_ESCHEMA);
    /* A migration that keeps the field. */
    OK(mms_table_open(s, "home", &home2_schema, 0, &t2));
    ASSERT(t2 == t);
    OK(mms_txn_commit(s));
    homes_check(s, 50, 1);
    /* The field still takes only 0. */
    OK(mms_txn_begin(s, 0));
    struct home2 bad = {1000, mms_table_ref(t, 0), 0, 0};
    int r = mms_table_append(t, &bad, NULL);
    if (r == 0)
        r = mms_txn_commit(s);
    else
        OK(mms_txn_abort(s));
    ASSERT_EQ(r, MMS_EBADREF);
    verify_ok(s);
    OK(mms_close(s));

    /* Reopen, and across a dump and a load. */
    s = open_flags(path, 0);
    verify_ok(s);
    homes_check(s, 50, 1);
    OK(mms_close(s));
    char dump[600], args[1400], out[4096];
    const char *loaded = tpath("mix_refdrop_loaded");
    snprintf(dump, sizeof dump, "%s.dump", loaded);
    snprintf(args, sizeof args, "dump '%s' --all '%s'", path, dump);
    if (run_tool(args, out, sizeof out))
        FAILF("mms %s: %s", args, out);
    snprintf(args, sizeof args, "load '%s' '%s'", dump, loaded);
    if (run_tool(args, out, sizeof out))
        FAILF("mms %s: %s", args, out);
    s = open_flags(loaded, 0);
    verify_ok(s);
    homes_check(s, 50, 1);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "home", &home2_schema, 0, &t2));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    unlink(dump);
    rmrf(loaded);
    rmrf(path);
}

struct plain1 {
    int64_t k;
};
static const mms_field plain1_fields[] = {MMS_F_I64(struct plain1, k)};
static const mms_schema plain1_schema = MMS_SCHEMA(struct plain1, plain1_fields);
struct plain2 {
    int64_t k;
    int32_t z;
};
static const mms_field plain2_fields[] = {MMS_F_I64(struct plain2, k), MMS_F_I32(struct plain2, z)};
static const mms_schema plain2_schema = MMS_SCHEMA(struct plain2, plain2_fields);

/* The child of killed_new_file: open path, then in one transaction what
 * makes a new region file (MMS_CRASH kills it there). */
static void new_file_child(const char *path, const char *what)
{
    mms_store *s = open_flags(path, 0);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    if (strcmp(what, "migrate") == 0) {
        OK(mms_table_open(s, "plain", &plain2_schema, 0, &t));
    } else if (strcmp(what, "index") == 0) {
        OK(mms_table_find(s, "plain", &t));
        OK(mms_index_create(t, "k", MMS_INDEX_ORDERED));
    } else if (strcmp(what, "grow") == 0) {
        OK(mms_table_find(s, "plain", &t));
        uint64_t first;
        OK(mms_table_append_many(t, 1000000, &first, NULL));
    } else {
        OK(mms_table_open(s, "city", &city_schema, MMS_TABLE_CREATE, &t));
    }
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

static unsigned region_files_in(const char *path)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^region-'", path);
    FILE *f = popen(cmd, "r");
    unsigned n = 0;
    ASSERT(f != NULL);
    ASSERT_EQ(fscanf(f, "%u", &n), 1);
    pclose(f);
    return n;
}

TEST(killed_new_file)
{
    static const char *whats[] = {"migrate", "index", "table"};
    for (int i = 0; i < 3; i++) {
        const char *path = tpath("mix_newfile");
        mms_store *s = open_flags(path, MMS_CREATE);
        mms_table *t;
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "plain", &plain1_schema, MMS_TABLE_CREATE, &t));
        for (int64_t k = 0; k < 1000; k++) {
            struct plain1 p = {k};
            OK(mms_table_append(t, &p, NULL));
        }
        OK(mms_txn_commit(s));
        OK(mms_close(s));
        ASSERT_EQ(region_files_in(path), 2);
        pid_t pid = child_spawn((const char *[]){"newfile", path, whats[i], NULL},
                                (const char *[]){"MMS_CRASH", "region.created:1", NULL});
        int st;
        if (!child_end(pid, 60, &st))
            FAILF("the child (%s) hung", whats[i]);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
            FAILF("the child (%s) was not killed at region.created: status 0x%x", whats[i], st);
        ASSERT_EQ(region_files_in(path), 3);
        /* The next open (and its close) deletes the file no commit names. */
        s = open_flags(path, 0);
        verify_ok(s);
        OK(mms_close(s));
        if (region_files_in(path) != 2)
            FAILF("%s: a killed writer's new file is still there after an open and a close",
                  whats[i]);
        rmrf(path);
    }
}

static uint64_t file_bytes(const char *path, const char *name)
{
    char p[700];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", path, name);
    ASSERT_EQ(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

TEST(killed_growth)
{
    const char *path = tpath("mix_growth");
    mms_store *s = open_flags(path, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "plain", &plain1_schema, MMS_TABLE_CREATE, &t));
    struct plain1 p = {1};
    OK(mms_table_append(t, &p, NULL));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    uint64_t before = file_bytes(path, "region-1-0");
    ASSERT_LT(before, 1u << 20);
    pid_t pid = child_spawn((const char *[]){"newfile", path, "grow", NULL},
                            (const char *[]){"MMS_CRASH", "region.grown:1", NULL});
    int st;
    if (!child_end(pid, 60, &st))
        FAILF("the child hung");
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        FAILF("the child was not killed at region.grown: status 0x%x", st);
    ASSERT_GE(file_bytes(path, "region-1-0"), 8000000);
    s = open_flags(path, 0);
    verify_ok(s);
    OK(mms_close(s));
    /* Cut to the committed size and one growth step (recover.c). */
    uint64_t after = file_bytes(path, "region-1-0");
    if (after >= 1u << 20)
        FAILF("a killed writer's growth stays: region-1-0 is %llu bytes, it was %llu",
              (unsigned long long)after, (unsigned long long)before);
    rmrf(path);
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 3, "newfile PATH WHAT");
    if (a) {
        new_file_child(a[1], a[2]);
        _exit(0);
    }
    RUN(ref_to_dropped);
    RUN(killed_new_file);
    RUN(killed_growth);
    return 0;
}

/*
 * test_qa23.c -- what a new user meets going through the README from the
 * outside (qa23): the calls its examples and its Concepts name, checked
 * against what they are said to do, where they did something else.
 *
 *   1. mms_str_set on one of the library's own heap objects (the catalog):
 *      refused with MMS_EBADREF, nothing changed (mmstore.h, mms_str_set;
 *      README, Concepts: "mms_free, mms_realloc and mms_str_set refuse a
 *      ref that names one"), and the detail names the call that was made.
 *      It said "mms_free: ref ... is the catalog": the free inside
 *      mms_str_set, after it had made the new string.
 *   2. A table handle opened with a layout (mms_table_open) whose table
 *      another handle dropped and created again with the same layout:
 *      appends are refused with MMS_ESCHEMA (mmstore.h, mms_table_open),
 *      and the detail says what happened. It said the table "was migrated
 *      to another record layout (16 bytes, 2 fields)": the layout the
 *      handle holds. mms_table_find's handle follows the new table, as
 *      after a migration; a new table of another name in the region is
 *      not the handle's (MMS_ENOENT).
 *   3. A tool command that changes a store, its report to a stdout that
 *      cannot be written (/dev/full): the change is made and the exit
 *      status says so (0), the lost report is a warning on stderr. It
 *      exited 1, the status of a command that changed nothing: `mms import
 *      ... || mms import ...` imported the rows twice.
 */
#include "test.h"

struct rec {
    int64_t id;
    mms_ref name;
};
static const mms_field rec_fields[] = {MMS_F_I64(struct rec, id), MMS_F_STR(struct rec, name)};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);

/* The catalog's ref: the store header's field at offset 56 (doc/FORMAT.md
 * §2.1), read as any program holding a wrong ref might have it. */
static mms_ref catalog_ref(mms_store *s)
{
    mms_ref cat;
    memcpy(&cat, (const char *)mms_deref(s, 0) + 56, sizeof cat);
    return cat;
}

TEST(str_set_refuses_library_object_by_its_name)
{
    const char *path = tpath("qa23_str_set");
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE;
    mms_store *s;
    mms_table *t;
    OK(mms_open(path, &o, &s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "rec", &rec_schema, MMS_TABLE_CREATE, &t));
    struct rec r = {1, 0};
    OK(mms_str_new(s, "hello", 5, &r.name));
    OK(mms_table_append(t, &r, NULL));
    OK(mms_txn_commit(s));

    mms_ref cat = catalog_ref(s);
    ASSERT_NE(cat, 0);
    ASSERT_EQ(mms_heap_library_owned(s, cat), 1);
    mms_info before, after;
    OK(mms_info_get(s, &before));

    OK(mms_txn_begin(s, 0));
    mms_ref field = cat;
    FAILS(mms_str_set(s, &field, "x", 1), MMS_EBADREF);
    ASSERT_EQ(field, cat); /* *field unchanged */
    if (!strstr(mms_errdetail(), "mms_str_set"))
        FAILF("the detail names another call: %s", mms_errdetail());
    ASSERT(strstr(mms_errdetail(), "catalog") != NULL);
    OK(mms_txn_commit(s));
    OK(mms_info_get(s, &after));
    ASSERT_EQ(after.heap_objects, before.heap_objects); /* nothing made, nothing freed */
    ASSERT_EQ(after.heap_used, before.heap_used);

    /* The rule is the header's: outside a write transaction the call
     * needs one first, whatever the ref. */
    FAILS(mms_str_set(s, &field, "x", 1), MMS_ENOTXN);
    char msg[256];
    OK(mms_verify(s, msg, sizeof msg));
    OK(mms_close(s));
    rmrf(path);
}

struct pair {
    int64_t id;
    int64_t n;
};
static const mms_field pair_fields[] = {MMS_F_I64(struct pair, id), MMS_F_I64(struct pair, n)};
static const mms_schema pair_schema = MMS_SCHEMA(struct pair, pair_fields);

/* Table "t" of one record made by a, opened by b with its layout (pinned)
 * or by name (found); then a drops it and creates `again` (same layout). */
static void recreate_case(const char *again, int pinned_want, int found_want)
{
    const char *path = tpath("qa23_recreate");
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE;
    mms_store *a, *b, *c;
    mms_table *t, *pinned, *found;
    struct pair r = {1, 2};
    OK(mms_open(path, &o, &a));
    OK(mms_open(path, NULL, &b));
    OK(mms_open(path, NULL, &c));
    OK(mms_txn_begin(a, 0));
    OK(mms_table_open(a, "t", &pair_schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_append(t, &r, NULL));
    OK(mms_txn_commit(a));
    OK(mms_txn_begin(b, 0));
    OK(mms_table_open(b, "t", &pair_schema, 0, &pinned));
    OK(mms_txn_commit(b));
    OK(mms_table_find(c, "t", &found));

    OK(mms_txn_begin(a, 0));
    OK(mms_table_drop(a, "t"));
    OK(mms_table_open(a, again, &pair_schema, MMS_TABLE_CREATE, &t));
    OK(mms_txn_commit(a));

    OK(mms_txn_begin(b, 0));
    FAILS(mms_table_append(pinned, &r, NULL), pinned_want);
    if (pinned_want == MMS_ESCHEMA && !strstr(mms_errdetail(), "dropped and created again"))
        FAILF("the detail does not say the table may have been created again: %s",
              mms_errdetail());
    OK(mms_txn_abort(b));
    OK(mms_txn_begin(c, 0));
    FAILS(mms_table_append(found, &r, NULL), found_want);
    OK(mms_txn_abort(c));
    OK(mms_close(c));
    OK(mms_close(b));
    OK(mms_close(a));
    rmrf(path);
}

TEST(table_dropped_and_created_again_by_another_handle)
{
    recreate_case("t", MMS_ESCHEMA, 0);
    recreate_case("w", MMS_ENOENT, MMS_ENOENT);
}

/* Run `mms ARGS >/dev/full 2>ERR`: the exit status; ERR's text in err. */
static char errf[700]; /* where tool_to_full's stderr goes */

static int tool_to_full(char *err, size_t cap, const char *args)
{
    const char *tool = getenv("MMS_TOOL");
    if (!tool)
        FAILF("MMS_TOOL is not set (run under ctest)");
    char cmd[5600];
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/full 2>'%s'", tool, args, errf);
    int st = system(cmd);
    FILE *f = fopen(errf, "r");
    size_t n = f ? fread(err, 1, cap - 1, f) : 0;
    err[n] = 0;
    if (f)
        fclose(f);
    unlink(errf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static uint64_t rows_of(const char *dir, const char *table)
{
    mms_store *s = open_flags(dir, MMS_RDONLY);
    mms_table *t;
    OK(mms_read_begin(s));
    OK(mms_table_find(s, table, &t));
    uint64_t n = mms_table_count(t);
    OK(mms_read_end(s));
    OK(mms_close(s));
    return n;
}

TEST(changes_with_a_full_stdout)
{
    char dir[600], copy[600], csv[700], err[2000], args[4000];
    snprintf(dir, sizeof dir, "%s", tpath("qa23_full"));
    snprintf(copy, sizeof copy, "%s", tpath("qa23_full_copy"));
    snprintf(csv, sizeof csv, "%s.csv", dir);
    snprintf(errf, sizeof errf, "%s.err", dir);
    file_put(csv, "k,v\n1,a\n2,b\n3,c\n");
    /* Each: exit 0, the change made, a warning that names the lost report. */
    struct {
        const char *fmt;
        const char *what;
    } cmd[] = {
        {"create '%s'", "create"},
        {"import '%s' t '%s'", "import"},
        {"index '%s' t k", "index"},
        {"rename '%s' t u", "rename"},
        {"copy '%s' '%s'", "copy"},
        {"drop '%s' u", "drop"},
        {"compact '%s'", "compact"},
    };
    for (size_t i = 0; i < sizeof cmd / sizeof cmd[0]; i++) {
        if (i == 1)
            snprintf(args, sizeof args, cmd[i].fmt, dir, csv);
        else if (i == 4)
            snprintf(args, sizeof args, cmd[i].fmt, dir, copy);
        else
            snprintf(args, sizeof args, cmd[i].fmt, dir);
        int rc = tool_to_full(err, sizeof err, args);
        fprintf(stderr, "   mms %s >/dev/full: exit %d, %s", cmd[i].what, rc, err);
        if (rc != 0 || !strstr(err, "warning") || !strstr(err, "cannot be written"))
            FAILF("mms %s, its report to a full stdout: exit %d (%s); the change is made, and "
                  "exit 1 says it was not", cmd[i].what, rc, err);
        if (i == 1)
            ASSERT_EQ(rows_of(dir, "t"), 3);
    }
    ASSERT_EQ(rows_of(copy, "u"), 3);
    /* The retry the README warned of: once only. */
    snprintf(args, sizeof args, "import '%s' w '%s' >/dev/full 2>/dev/null || '%s' import '%s' w "
             "'%s' >/dev/null", dir, csv, getenv("MMS_TOOL"), dir, csv);
    ASSERT_EQ(tool_to_full(err, sizeof err, args), 0);
    ASSERT_EQ(rows_of(dir, "w"), 3);
    /* A failure still fails (exit 1), whatever stdout is. */
    snprintf(args, sizeof args, "drop '%s' nosuch", dir);
    int rc = tool_to_full(err, sizeof err, args);
    if (rc != 1 || !strstr(err, "nosuch"))
        FAILF("mms drop of a missing table: exit %d, %s", rc, err);
    mms_store *s = open_flags(dir, MMS_RDONLY);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(copy);
    rmrf(dir);
    unlink(csv);
}

int main(void)
{
    RUN(str_set_refuses_library_object_by_its_name);
    RUN(table_dropped_and_created_again_by_another_handle);
    RUN(changes_with_a_full_stdout);
    fprintf(stderr, "test_qa23: ok\n");
    return 0;
}

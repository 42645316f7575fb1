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

int main(void)
{
    RUN(str_set_refuses_library_object_by_its_name);
    RUN(table_dropped_and_created_again_by_another_handle);
    fprintf(stderr, "test_qa23: ok\n");
    return 0;
}

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

int main(void)
{
    RUN(str_set_refuses_library_object_by_its_name);
    fprintf(stderr, "test_qa23: ok\n");
    return 0;
}

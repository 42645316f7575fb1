/*
 * test_str.c -- strings and blobs as a user calls them (src/str.c):
 * mms_str_set() on a field whose string is gone.
 */
#include "test.h"

/* A field whose string the program already freed (and did not clear):
 * mms_str_set() must refuse it like mms_free() refuses a double free --
 * even when the new string lands in the freed string's place, which made
 * it free the new string and leave the field naming freed space. */
TEST(str_set_freed_field)
{
    const char *p = tpath("str-setfreed");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref keep, field = 0;
    OK(mms_str_new(s, "keep", 4, &keep));
    OK(mms_str_set(s, &field, "hello", 5));
    mms_ref old = field;
    OK(mms_free(s, field)); /* the field still names it */
    FAILS(mms_str_set(s, &field, "world", 5), MMS_EBADREF);
    ASSERT_EQ(field, old);
    /* The failed call left nothing behind: the heap holds one object. */
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.heap_objects, 1);
    /* A live field is replaced, the old string freed. */
    OK(mms_str_set(s, &keep, "kept", 4));
    size_t len;
    const char *q = mms_str_get(s, keep, &len);
    ASSERT(q && len == 4 && memcmp(q, "kept", 4) == 0);
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.heap_objects, 1);
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

int main(void)
{
    RUN(str_set_freed_field);
    return 0;
}

/* Basic life cycle: create, allocate, commit, reopen, abort, root, refs. */
#include "test.h"

struct counter {
    uint64_t n;
    mms_ref next;
};

TEST(create_commit_reopen)
{
    const char *p = tpath("basic");
    mms_store *s = open_flags(p, MMS_CREATE);
    ASSERT_EQ(mms_txn_id(s), 0);
    ASSERT_EQ(mms_root(s), MMS_REF_NULL);
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_zalloc(s, sizeof(struct counter), &r));
    ASSERT_NE(r, 0);
    ASSERT_EQ(r % 16, 0);
    MMS_AT(s, struct counter, r)->n = 41;
    OK(mms_root_set(s, r));
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_txn_id(s), 1);
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    MMS_AT(s, struct counter, r)->n++;
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_txn_id(s), 2);
    OK(mms_close(s));

    s = open_flags(p, 0);
    ASSERT_EQ(mms_txn_id(s), 2);
    ASSERT_EQ(mms_root(s), r);
    ASSERT_EQ(MMS_AT(s, struct counter, mms_root(s))->n, 42);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

TEST(abort_discards)
{
    const char *p = tpath("abort");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_zalloc(s, 100, &r));
    OK(mms_root_set(s, r));
    memset(mms_deref(s, r), 7, 100);
    OK(mms_txn_commit(s));
    mms_info before, after;
    OK(mms_info_get(s, &before));

    OK(mms_txn_begin(s, 0));
    memset(mms_deref(s, r), 9, 100);
    mms_ref extra[100];
    for (int i = 0; i < 100; i++)
        OK(mms_alloc(s, 1000 + i * 100, &extra[i]));
    OK(mms_root_set(s, extra[5]));
    OK(mms_txn_abort(s));
    ASSERT_EQ(mms_root(s), r);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(((unsigned char *)mms_deref(s, r))[i], 7);
    OK(mms_info_get(s, &after));
    ASSERT_EQ(before.heap_used, after.heap_used);
    ASSERT_EQ(before.heap_objects, after.heap_objects);
    ASSERT_EQ(before.txn_id, after.txn_id);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

TEST(empty_commit_is_noop)
{
    const char *p = tpath("empty");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_txn_id(s), 0);
    OK(mms_close(s));
    rmrf(p);
}

/* mms_release_memory() changes no byte: not the fresh space written in
 * the transaction, not a committed object changed in it (a private page),
 * not what a read-only handle maps. */
TEST(release_memory_keeps_data)
{
    const char *p = tpath("release");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref small, big;
    OK(mms_zalloc(s, 64, &small));
    OK(mms_root_set(s, small));
    OK(mms_txn_commit(s));

    const size_t n = (size_t)12 << 20; /* past region 0's first 4 MiB: fresh space */
    OK(mms_txn_begin(s, 0));
    memset(mms_deref(s, small), 5, 64);
    OK(mms_alloc(s, n, &big));
    unsigned char *b = mms_deref(s, big);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 7 + 1);
    *(mms_ref *)mms_deref(s, small) = big;
    OK(mms_release_memory(s));
    for (size_t i = 0; i < n; i += 4093)
        ASSERT_EQ(b[i], (unsigned char)(i * 7 + 1));
    ASSERT_EQ(*(mms_ref *)mms_deref(s, small), big);
    OK(mms_txn_commit(s));
    OK(mms_release_memory(s));
    ASSERT_EQ(b[n - 1], (unsigned char)((n - 1) * 7 + 1));
    verify_ok(s);
    OK(mms_close(s));

    s = open_flags(p, MMS_RDONLY | MMS_NORDAHEAD); /* advice changes no byte either */
    b = mms_deref(s, big);
    ASSERT_EQ(b[12345], (unsigned char)(12345 * 7 + 1));
    OK(mms_release_memory(s));
    for (size_t i = 0; i < n; i += 4093)
        ASSERT_EQ(b[i], (unsigned char)(i * 7 + 1));
    ASSERT_EQ(*(mms_ref *)mms_deref(s, mms_root(s)), big);
    ASSERT_EQ(mms_release_memory(NULL), MMS_EINVAL);
    OK(mms_close(s));
    rmrf(p);
}

int main(void)
{
    RUN(create_commit_reopen);
    RUN(abort_discards);
    RUN(empty_commit_is_noop);
    RUN(release_memory_keeps_data);
    return 0;
}

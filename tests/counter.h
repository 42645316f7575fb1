/*
 * counter.h -- the store test_txn and test_guard start from: its root is a
 * struct counter whose n is 1, committed as txn 1.
 */
#ifndef MMS_TEST_COUNTER_H
#define MMS_TEST_COUNTER_H

#include "test.h"

struct counter {
    uint64_t n;
    mms_ref other;
};

/* Give the fresh store s (no commit yet) a root struct counter with
 * n = 1, committed as txn 1. */
static inline void counter_root(mms_store *s)
{
    mms_ref r;
    OK(mms_txn_begin(s, 0));
    OK(mms_zalloc(s, sizeof(struct counter), &r));
    MMS_AT(s, struct counter, r)->n = 1;
    OK(mms_root_set(s, r));
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_txn_id(s), 1);
}

/* A fresh store whose root is a struct counter with n = 1 (txn 1). */
static inline mms_store *store_with_counter(const char *p, unsigned flags)
{
    mms_store *s = open_flags(p, MMS_CREATE | flags);
    counter_root(s);
    return s;
}

#endif

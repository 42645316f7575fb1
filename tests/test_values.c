/*
 * test_values.c -- what a record may hold, and what a ref may name (issue 10,
 * bugs 4 to 7): mms_str_get on refs that are not strings; ref, string and
 * blob values checked at append and, deferred, at commit (plain stores,
 * forward refs, deletes of records others refer to); the root and the
 * header's reserved bytes; missing values (null bitmaps) through appends,
 * deletes, migration, abort, reopen and verify.
 */
#include "test.h"

#include "internal.h"

struct node {
    int64_t id;
    mms_ref name; /* str */
    mms_ref next; /* ref to node */
    mms_ref blob; /* blob */
};
static const mms_field node_fields[] = {
    MMS_F_I64(struct node, id), MMS_F_STR(struct node, name),
    MMS_F_REF(struct node, next, "node"), MMS_F_BLOB(struct node, blob)};
static const mms_schema node_schema = MMS_SCHEMA(struct node, node_fields);

struct other {
    int32_t v;
};
static const mms_field other_fields[] = {MMS_F_I32(struct other, v)};
static const mms_schema other_schema = MMS_SCHEMA(struct other, other_fields);

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Bug 4: a ref that is not a string gives NULL: freed, unallocated, other
 * allocations (even zeroed ones), offsets inside a string. */
TEST(str_get_only_strings)
{
    const char *p = tpath("strs");
    mms_store *s = open_flags(p, MMS_CREATE);
    enum { N = 300 };
    mms_ref str[N], other[N];
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < N; i++) {
        char b[64];
        int n = snprintf(b, sizeof b, "string %d", i);
        OK(mms_str_new(s, b, (size_t)(i % 3 ? n : 0), &str[i]));
        OK(i % 2 ? mms_zalloc(s, 16 + (size_t)i * 8, &other[i])
                 : mms_alloc(s, 16 + (size_t)i * 8, &other[i]));
        if (i % 2 == 0)
            memset(mms_deref(s, other[i]), i, 16 + (size_t)i * 8);
    }
    for (int i = 0; i < N; i += 5)
        OK(mms_free(s, str[i]));
    OK(mms_txn_commit(s));
    for (int i = 0; i < N; i++) {
        size_t len;
        const char *q = mms_str_get(s, str[i], &len);
        ASSERT((q != NULL) == (i % 5 != 0));
        if (q)
            ASSERT_EQ(len, i % 3 ? strlen(q) : 0);
        ASSERT(mms_str_get(s, other[i], NULL) == NULL);
        ASSERT(mms_str_get(s, str[i] + 8, NULL) == NULL);
        size_t usable;
        if (q && mms_alloc_size(s, str[i], &usable) == 0 && usable > 16)
            ASSERT(mms_str_get(s, str[i] + 16, NULL) == NULL); /* inside it */
    }
    /* 200,000 random refs into the heap: a string only where one starts. */
    uint64_t x = 88172645463325252u, hits = 0, heap = mms__rtab(s)[0].size;
    for (int k = 0; k < 200000; k++) {
        mms_ref r = rnd(&x) % heap & ~(uint64_t)(k % 2 ? 15 : 0);
        if (mms_str_get(s, r, NULL)) {
            int found = 0;
            for (int i = 0; i < N && !found; i++)
                found = r == str[i] && i % 5 != 0;
            ASSERT(found);
            hits++;
        }
    }
    ASSERT(mms_str_get(s, MMS_REF_MAKE(1, 64), NULL) == NULL);
    ASSERT(mms_str_get(s, 0, NULL) == NULL);
    fprintf(stderr, "   200000 random refs: %llu named a live string, no other was taken for one\n",
            (unsigned long long)hits);
    OK(mms_close(s));
    rmrf(p);
}

static mms_store *two_tables(const char *p, mms_table **nodes, mms_table **others)
{
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "node", &node_schema, MMS_TABLE_CREATE, nodes));
    OK(mms_table_open(s, "other", &other_schema, MMS_TABLE_CREATE, others));
    OK(mms_txn_commit(s));
    return s;
}

static void commit_fails(mms_store *s, int code, const char *mention)
{
    uint64_t txn = mms_txn_id(s);
    FAILS(mms_txn_commit(s), code);
    if (!strstr(mms_errdetail(), mention))
        FAILF("the detail \"%s\" does not mention \"%s\"", mms_errdetail(), mention);
    ASSERT_EQ(mms_txn_id(s), txn);
    FAILS(mms_txn_abort(s), MMS_ENOTXN); /* the commit aborted it */
}

/* Bug 5: values checked at append, and at commit for plain stores. */
TEST(values_checked)
{
    const char *p = tpath("vals");
    mms_table *t, *o;
    mms_store *s = two_tables(p, &t, &o);
    OK(mms_txn_begin(s, 0));
    mms_ref name, junk;
    OK(mms_str_new(s, "n", 1, &name));
    OK(mms_zalloc(s, 32, &junk));
    struct node n = {.id = 1, .name = name};
    uint64_t i0, i1;
    OK(mms_table_append(t, &n, &i0));
    n.name = junk; /* not a string */
    FAILS(mms_table_append(t, &n, &i1), MMS_EBADREF);
    n.name = 0;
    n.blob = name + 8; /* inside one */
    FAILS(mms_table_append(t, &n, &i1), MMS_EBADREF);
    n.blob = 0;
    n.next = MMS_REF_MAKE(mms_table_ref(o, 0) >> MMS_SLOT_BITS, 0); /* another table */
    FAILS(mms_table_append(t, &n, &i1), MMS_EBADREF);
    ASSERT_EQ(mms_table_slots(t), 1); /* the refused ones left nothing */
    /* A forward ref is fine until the commit. */
    n.next = mms_table_ref(t, 1);
    OK(mms_table_append(t, &n, &i1));
    ASSERT_EQ(i1, 1);
    n.next = mms_table_ref(t, 0);
    OK(mms_table_append(t, &n, NULL));
    OK(mms_txn_commit(s));
    verify_ok(s);

    /* Plain stores of bad values into committed records: the commit fails
     * and the transaction is aborted. */
    OK(mms_txn_begin(s, 0));
    ((struct node *)mms_table_get(t, 0))->name = junk + 16;
    commit_fails(s, MMS_EBADREF, "field name");
    OK(mms_txn_begin(s, 0));
    ((struct node *)mms_table_get(t, 1))->next = mms_table_ref(t, 99);
    commit_fails(s, MMS_EBADREF, "field next");
    OK(mms_txn_begin(s, 0));
    ((struct node *)mms_table_get(t, 2))->blob = MMS_REF_MAKE(0, 64);
    commit_fails(s, MMS_EBADREF, "field blob");
    /* A forward ref never satisfied: refused at commit. */
    OK(mms_txn_begin(s, 0));
    n.next = mms_table_ref(t, 50);
    OK(mms_table_append(t, &n, NULL));
    commit_fails(s, MMS_EBADREF, "not a live");
    /* append_many: the records filled in place are checked at commit. */
    OK(mms_txn_begin(s, 0));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, 100, &first, &where));
    ((struct node *)where)[77].next = mms_table_ref(t, 1000);
    commit_fails(s, MMS_EBADREF, "field next");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append_many(t, 100, &first, &where));
    for (int k = 0; k < 100; k++)
        ((struct node *)where)[k].next = mms_table_ref(t, first + (uint64_t)(99 - k));
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_table_slots(t), 103);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* Bug 6: a record others refer to may be deleted only with them, or once
 * the refs to it are gone, checked at commit; a reused slot does not hide
 * a stale ref. */
TEST(deletes_and_refs)
{
    const char *p = tpath("dels");
    mms_table *t, *o;
    mms_store *s = two_tables(p, &t, &o);
    OK(mms_txn_begin(s, 0));
    for (int k = 0; k < 10; k++) {
        struct node n = {.id = k, .next = k ? mms_table_ref(t, (uint64_t)k - 1) : 0};
        OK(mms_table_append(t, &n, NULL));
    }
    OK(mms_txn_commit(s));
    /* 3 is referred to by 4. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(t, 3));
    commit_fails(s, MMS_EREFERENCED, "record 4");
    ASSERT(mms_table_live(t, 3));
    /* With the ref cleared first: fine. */
    OK(mms_txn_begin(s, 0));
    ((struct node *)mms_table_get(t, 4))->next = 0;
    OK(mms_table_delete(t, 3));
    OK(mms_txn_commit(s));
    verify_ok(s);
    /* 5..9 form a chain: deleted together, in any order. */
    OK(mms_txn_begin(s, 0));
    for (uint64_t k = 5; k < 10; k++)
        OK(mms_table_delete(t, k));
    OK(mms_txn_commit(s));
    verify_ok(s);
    /* 1 is referred to by 2; 1 deleted and its slot reused at once: the
     * stale ref in 2 must not come to name the new record. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(t, 1));
    uint64_t idx;
    struct node n = {.id = 100};
    OK(mms_table_append(t, &n, &idx));
    ASSERT_EQ(idx, 1);
    commit_fails(s, MMS_EREFERENCED, "record 2");
    ASSERT_EQ(((struct node *)mms_table_get(t, 1))->id, 1);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* Bug 7 (the API side): the root names an allocation or a record; a
 * transaction cannot write the header's fixed or reserved bytes. */
TEST(root_and_header)
{
    const char *p = tpath("root");
    mms_store *s = open_flags(p, MMS_NOGUARD | MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_zalloc(s, 64, &r));
    FAILS(mms_root_set(s, MMS_REF_MAKE(0, 64)), MMS_EBADREF);              /* the header */
    FAILS(mms_root_set(s, MMS_REF_MAKE(0, MMS__HDR_BYTES)), MMS_EBADREF);  /* descriptors */
    FAILS(mms_root_set(s, r + 16), MMS_EBADREF);                          /* inside */
    OK(mms_root_set(s, r));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    mms__hdr(s)->reserved[7] = 1;
    commit_fails(s, MMS_ECORRUPT, "reserved");
    OK(mms_txn_begin(s, 0));
    mms__hdr(s)->created_ns++;
    commit_fails(s, MMS_ECORRUPT, "fixed");
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

static void nulls_expect(mms_table *t, uint32_t k, const char *want)
{
    for (uint64_t i = 0; want[i]; i++)
        if (want[i] != '-' && mms_table_null(t, i, k) != (want[i] == 'N'))
            FAILF("record %llu field %u: null is %d, expected %c", (unsigned long long)i, k,
                  mms_table_null(t, i, k), want[i]);
}

struct wide {
    int64_t id;
    mms_ref name;
    mms_ref next;
    mms_ref blob;
    double extra;
};
static const mms_field wide_fields[] = {
    MMS_F_I64(struct wide, id), MMS_F_STR(struct wide, name),
    MMS_F_REF(struct wide, next, "node"), MMS_F_BLOB(struct wide, blob),
    MMS_F_F64(struct wide, extra)};
static const mms_schema wide_schema = MMS_SCHEMA(struct wide, wide_fields);

/* Missing values: marked and cleared, gone with a delete, kept by name
 * through a migration, undone by an abort, kept across a reopen. */
TEST(missing_values)
{
    const char *p = tpath("nulls");
    mms_table *t, *o;
    mms_store *s = two_tables(p, &t, &o);
    OK(mms_txn_begin(s, 0));
    for (int k = 0; k < 2000; k++) {
        mms_ref nm;
        OK(mms_str_new(s, "x", 1, &nm));
        struct node n = {.id = k, .name = nm};
        OK(mms_table_append(t, &n, NULL));
    }
    FAILS(mms_table_null_set(t, 0, 4, 1), MMS_EINVAL);
    FAILS(mms_table_null_set(t, 5000, 0, 1), MMS_ERANGE);
    uint64_t objs0;
    mms_info in;
    OK(mms_info_get(s, &in));
    objs0 = in.heap_objects;
    OK(mms_table_null_set(t, 1, 0, 1));
    OK(mms_table_null_set(t, 3, 1, 1)); /* frees its string */
    OK(mms_table_null_set(t, 1999, 0, 1));
    ASSERT_EQ(((struct node *)mms_table_get(t, 3))->name, 0);
    OK(mms_txn_commit(s));
    OK(mms_info_get(s, &in));
    ASSERT_LE(in.heap_objects, objs0 + 2); /* one string freed, bitmaps added */
    nulls_expect(t, 0, "-N-");
    nulls_expect(t, 1, "---N");
    ASSERT_EQ(mms_table_null(t, 1999, 0), 1);
    uint64_t nbits;
    const uint64_t *b = mms_table_nulls(t, 0, &nbits);
    ASSERT(b && nbits >= 2000 && nbits % 64 == 0);
    ASSERT(mms_table_nulls(t, 2, &nbits) == NULL && nbits == 0);
    verify_ok(s);
    /* Cleared; an abort undoes marks. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_null_set(t, 1999, 0, 0));
    OK(mms_table_null_set(t, 7, 0, 1));
    OK(mms_txn_abort(s));
    ASSERT_EQ(mms_table_null(t, 1999, 0), 1);
    ASSERT_EQ(mms_table_null(t, 7, 0), 0);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_null_set(t, 1999, 0, 0));
    OK(mms_table_delete(t, 1)); /* its mark goes with it */
    OK(mms_table_append(t, NULL, NULL)); /* reuses slot 1: not missing */
    OK(mms_txn_commit(s));
    nulls_expect(t, 0, "--");
    ASSERT_EQ(mms_table_null(t, 1999, 0), 0);
    verify_ok(s);
    /* A migration keeps marks by field name. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_null_set(t, 5, 0, 1));
    mms_table *w;
    OK(mms_table_open(s, "node", &wide_schema, 0, &w));
    OK(mms_txn_commit(s));
    ASSERT(w == t);
    nulls_expect(w, 0, "-----N");
    nulls_expect(w, 1, "---N");
    ASSERT_EQ(mms_table_null(w, 5, 4), 0);
    verify_ok(s);
    OK(mms_close(s));
    s = open_flags(p, MMS_RDONLY);
    OK(mms_table_find(s, "node", &w));
    OK(mms_read_begin(s));
    nulls_expect(w, 0, "-----N");
    nulls_expect(w, 1, "---N");
    OK(mms_read_end(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

int main(void)
{
    RUN(str_get_only_strings);
    RUN(values_checked);
    RUN(deletes_and_refs);
    RUN(root_and_header);
    RUN(missing_values);
    return 0;
}

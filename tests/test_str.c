/*
 * test_str.c -- strings and blobs as a user calls them (src/str.c):
 * mms_str_set() on a field whose string is gone; what the commit accepts
 * as the string of a STR or BLOB field: not a fresh allocation that holds
 * a freed string's bytes, not a string freed under a live record.
 */
#include "test.h"

#include <malloc.h>

struct node {
    int64_t id;
    mms_ref name; /* str */
    mms_ref blob; /* blob */
};
static const mms_field node_fields[] = {
    MMS_F_I64(struct node, id), MMS_F_STR(struct node, name), MMS_F_BLOB(struct node, blob)};
static const mms_schema node_schema = MMS_SCHEMA(struct node, node_fields);

/* A store with table "node" of n committed records: record i has id i, the
 * string "name i" and the blob "blob i". */
static mms_store *nodes(const char *p, int n, mms_table **t)
{
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "node", &node_schema, MMS_TABLE_CREATE, t));
    for (int i = 0; i < n; i++) {
        char b[32];
        struct node r = {.id = i};
        int len = snprintf(b, sizeof b, "name %d", i);
        OK(mms_str_new(s, b, (size_t)len, &r.name));
        len = snprintf(b, sizeof b, "blob %d", i);
        OK(mms_str_new(s, b, (size_t)len, &r.blob));
        OK(mms_table_append(*t, &r, NULL));
    }
    OK(mms_txn_commit(s));
    return s;
}

static struct node *rec(mms_table *t, uint64_t i)
{
    return (struct node *)mms_table_get(t, i);
}

/* Every record i < n as nodes() made it (no committed data lost). */
static void nodes_intact(mms_store *s, mms_table *t, int n)
{
    for (int i = 0; i < n; i++) {
        char b[32];
        size_t len;
        const struct node *r = rec(t, (uint64_t)i);
        ASSERT(r && r->id == i);
        const char *q = mms_str_get(s, r->name, &len);
        snprintf(b, sizeof b, "name %d", i);
        if (!q || len != strlen(b) || memcmp(q, b, len) != 0)
            FAILF("record %d: name is not \"%s\"", i, b);
        q = mms_str_get(s, r->blob, &len);
        snprintf(b, sizeof b, "blob %d", i);
        if (!q || len != strlen(b) || memcmp(q, b, len) != 0)
            FAILF("record %d: blob is not \"%s\"", i, b);
    }
}

/* The commit must fail with code, name what the detail mentions, and
 * abort the transaction (as every failed commit check does). */
static void commit_fails(mms_store *s, int code, const char *mention)
{
    uint64_t txn = mms_txn_id(s);
    FAILS(mms_txn_commit(s), code);
    if (!strstr(mms_errdetail(), mention))
        FAILF("the detail \"%s\" does not mention \"%s\"", mms_errdetail(), mention);
    ASSERT_EQ(mms_txn_id(s), txn);
    FAILS(mms_txn_abort(s), MMS_ENOTXN); /* the commit aborted it */
}

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

/* Bug 1: a string's tag outlived its free. mms_alloc of the same size
 * got the freed string's place with its bytes (tag, length, NUL) still
 * there, and mms_str_get, the append's check and the commit's check all
 * took that plain allocation for a string. A fresh allocation is never a
 * string, whatever the space held before: committed, or freed in the same
 * transaction. */
TEST(str_stale_bytes_not_a_string)
{
    const char *p = tpath("str-stale");
    mms_table *t;
    mms_store *s = nodes(p, 3, &t);
    static const char text[] = "a string that will be freed";
    mms_ref old;
    OK(mms_txn_begin(s, 0));
    OK(mms_str_new(s, text, sizeof text - 1, &old));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, old));
    OK(mms_txn_commit(s));

    /* A plain store of the fresh allocation's ref into a committed record. */
    OK(mms_txn_begin(s, 0));
    mms_ref fresh;
    OK(mms_alloc(s, sizeof text + 8, &fresh));
    ASSERT_EQ(fresh, old); /* the freed string's place, else this tests nothing */
    ASSERT(mms_str_get(s, fresh, NULL) == NULL);
    mms_ref was = rec(t, 1)->name;
    rec(t, 1)->name = fresh;
    commit_fails(s, MMS_EBADREF, "table node record 1: str field name");
    ASSERT_EQ(rec(t, 1)->name, was);

    /* An append of it is refused at once. */
    OK(mms_txn_begin(s, 0));
    OK(mms_alloc(s, sizeof text + 8, &fresh));
    ASSERT_EQ(fresh, old);
    struct node r = {.id = 9, .blob = fresh};
    FAILS(mms_table_append(t, &r, NULL), MMS_EBADREF);
    OK(mms_txn_abort(s));

    /* Freed and allocated again in one transaction. */
    OK(mms_txn_begin(s, 0));
    mms_ref tmp;
    OK(mms_str_new(s, text, sizeof text - 1, &tmp));
    OK(mms_free(s, tmp));
    OK(mms_alloc(s, sizeof text + 8, &fresh));
    ASSERT_EQ(fresh, tmp);
    ASSERT(mms_str_get(s, fresh, NULL) == NULL);
    rec(t, 2)->blob = fresh;
    commit_fails(s, MMS_EBADREF, "table node record 2: blob field blob");

    /* Over a large (page-run) string too. */
    static char big[6000];
    memset(big, 'x', sizeof big);
    OK(mms_txn_begin(s, 0));
    OK(mms_str_new(s, big, sizeof big, &tmp));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, tmp));
    OK(mms_alloc(s, sizeof big + 9, &fresh));
    ASSERT_EQ(fresh, tmp);
    ASSERT(mms_str_get(s, fresh, NULL) == NULL);
    rec(t, 0)->name = fresh;
    commit_fails(s, MMS_EBADREF, "table node record 0: str field name");

    nodes_intact(s, t, 3);
    verify_ok(s);
    OK(mms_close(s));
    s = open_flags(p, 0);
    OK(mms_table_open(s, "node", &node_schema, 0, &t));
    nodes_intact(s, t, 3);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* Bug 2: a string a live record holds, freed while the record does not
 * change, was freed under it: the commit checked only changed records. The
 * commit now refuses it (MMS_EBADREF naming table, record and field) and
 * aborts, however the string went: mms_free, mms_realloc moving it, its
 * space allocated again. Nothing committed is lost. */
TEST(str_freed_under_live_record)
{
    const char *p = tpath("str-freed");
    mms_table *t;
    enum { N = 50 };
    mms_store *s = nodes(p, N, &t);

    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, 7)->name));
    commit_fails(s, MMS_EBADREF, "table node record 7: str field name");

    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, 8)->blob));
    rec(t, 8)->id = 8; /* a store that changes nothing */
    commit_fails(s, MMS_EBADREF, "table node record 8: blob field blob");

    /* The record changed, but not that field. */
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, 9)->name));
    rec(t, 9)->id = 1000;
    commit_fails(s, MMS_EBADREF, "table node record 9: str field name");

    /* Its space allocated again, for something else. */
    OK(mms_txn_begin(s, 0));
    mms_ref gone = rec(t, 10)->name, again = 0;
    OK(mms_free(s, gone));
    for (int k = 0; k < 1000 && again != gone; k++)
        OK(mms_alloc(s, 16, &again)); /* until one takes its place */
    ASSERT_EQ(again, gone);
    memset(mms_deref(s, again), 0x5a, 16);
    commit_fails(s, MMS_EBADREF, "table node record 10: str field name");

    /* Moved by mms_realloc. */
    OK(mms_txn_begin(s, 0));
    mms_ref moved = rec(t, 11)->blob;
    OK(mms_realloc(s, &moved, 3000));
    ASSERT_NE(moved, rec(t, 11)->blob);
    commit_fails(s, MMS_EBADREF, "table node record 11: blob field blob");

    /* Another record let a string go, this one's is freed too. */
    OK(mms_txn_begin(s, 0));
    OK(mms_str_set(s, &rec(t, 12)->name, "renamed", 7));
    OK(mms_free(s, rec(t, 13)->name));
    commit_fails(s, MMS_EBADREF, "table node record 13: str field name");

    nodes_intact(s, t, N);
    verify_ok(s);

    /* What lets a record's string go through the record is accepted. */
    OK(mms_txn_begin(s, 0));
    OK(mms_str_set(s, &rec(t, 1)->name, "one", 3)); /* frees the old one */
    mms_ref old = rec(t, 2)->name, n2; /* a plain store, then the free */
    OK(mms_str_new(s, "two", 3, &n2));
    rec(t, 2)->name = n2;
    OK(mms_free(s, old));
    OK(mms_table_null_set(t, 3, 1, 1)); /* frees it */
    OK(mms_table_delete(t, 4));         /* frees both */
    /* Freed first, and the new string lands in its place: the field
     * holds a string again (the same ref). */
    old = rec(t, 5)->name;
    OK(mms_free(s, old));
    mms_ref miss[1000];
    int nmiss = 0;
    for (;;) { /* until one takes its place */
        OK(mms_str_new(s, "five", 4, &n2));
        if (n2 == old || nmiss == 1000)
            break;
        miss[nmiss++] = n2;
    }
    ASSERT_EQ(n2, old);
    rec(t, 5)->name = n2;
    while (nmiss--)
        OK(mms_free(s, miss[nmiss]));
    /* Strings no record holds (the root's, and 70 in a row the program
     * keeps elsewhere): freed, they make the commit read every field --
     * null ones too (record 3's) -- and find no holder. */
    mms_ref mine, own[70];
    OK(mms_str_new(s, "the root's", 10, &mine));
    OK(mms_root_set(s, mine));
    for (int k = 0; k < 70; k++)
        OK(mms_str_new(s, "own", 3, &own[k]));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_root_set(s, 0));
    OK(mms_free(s, mine));
    for (int k = 0; k < 70; k++)
        OK(mms_free(s, own[k]));
    OK(mms_txn_commit(s));
    size_t len;
    ASSERT(memcmp(mms_str_get(s, rec(t, 1)->name, &len), "one", 3) == 0 && len == 3);
    ASSERT(memcmp(mms_str_get(s, rec(t, 2)->name, &len), "two", 3) == 0 && len == 3);
    ASSERT_EQ(rec(t, 3)->name, 0);
    ASSERT(memcmp(mms_str_get(s, rec(t, 5)->name, &len), "five", 4) == 0 && len == 4);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* A string the program keeps (under the root, in no record), freed at each
 * commit of a store whose records hold strings: accepted every time (the
 * commit counts holders once, then follows them), while a record's string
 * freed in between still fails. */
TEST(str_app_string_freed_each_commit)
{
    const char *p = tpath("str-appfree");
    mms_table *t;
    enum { N = 3000, COMMITS = 40 };
    mms_store *s = nodes(p, N, &t);
    for (int i = 0; i < COMMITS; i++) {
        char b[32];
        int len = snprintf(b, sizeof b, "mine %d", i);
        OK(mms_txn_begin(s, 0));
        mms_ref old = mms_root(s), mine;
        OK(mms_str_new(s, b, (size_t)len, &mine));
        OK(mms_root_set(s, mine));
        if (old)
            OK(mms_free(s, old));
        OK(mms_txn_commit(s));
        if (i % 10 == 5) {
            OK(mms_txn_begin(s, 0));
            OK(mms_free(s, rec(t, (uint64_t)(i * 7))->name));
            commit_fails(s, MMS_EBADREF, "str field name");
        }
    }
    nodes_intact(s, t, N);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* One transaction: a string of the program's freed (so the commit looks
 * for holders) with whatever else the caller did, then the commit. */
static int commit_with_app_free(mms_store *s)
{
    mms_ref mine;
    int r = mms_str_new(s, "mine", 4, &mine);
    if (!r)
        r = mms_free(s, mine); /* not committed: no look */
    mms_ref old = mms_root(s);
    if (!r)
        r = mms_str_new(s, "kept", 4, &mine);
    if (!r)
        r = mms_root_set(s, mine);
    if (!r && old)
        r = mms_free(s, old); /* committed, in no record: a look */
    return r ? r : mms_txn_commit(s);
}

/* nodes(), then the commits after which the handle has a count of
 * holders: the first frees no committed string (no look), the second
 * scans (H5: no count yet), the third makes it. */
static mms_store *nodes_counted(const char *p, int n, mms_table **t)
{
    mms_store *s = nodes(p, n, t);
    for (int i = 0; i < 3; i++) {
        OK(mms_txn_begin(s, 0));
        OK(commit_with_app_free(s));
    }
    return s;
}

/* The count of holders follows each commit, and is counted again when it
 * cannot: after each step below a freed string a record holds must fail
 * and one no record holds must pass. */
TEST(str_holders_follow_commits)
{
    const char *p = tpath("str-holders");
    mms_table *t;
    enum { N = 60 };
    mms_store *s = nodes_counted(p, N, &t);

    /* Replaced by a plain store, committed; then the old one freed. */
    mms_ref old = rec(t, 1)->name, n1;
    OK(mms_txn_begin(s, 0));
    OK(mms_str_new(s, "one", 3, &n1));
    rec(t, 1)->name = n1;
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, old));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, n1));
    commit_fails(s, MMS_EBADREF, "table node record 1: str field name");

    /* Replaced and freed in one transaction, with a look. */
    OK(mms_txn_begin(s, 0));
    old = rec(t, 2)->name;
    OK(mms_str_new(s, "two", 3, &n1));
    rec(t, 2)->name = n1;
    OK(mms_free(s, old));
    OK(commit_with_app_free(s));

    /* Shared by records 3 and 4; 3 lets it go; freed later: 4 holds it. */
    mms_ref shared = rec(t, 3)->name, gone = rec(t, 4)->name;
    OK(mms_txn_begin(s, 0));
    rec(t, 4)->name = shared;
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, gone)); /* no record holds it now */
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_str_new(s, "three", 5, &n1));
    rec(t, 3)->name = n1;
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, shared));
    commit_fails(s, MMS_EBADREF, "table node record 4: str field name");

    /* Deleted: the delete frees its strings; with a look in the same
     * transaction they are no record's any more. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(t, 5));
    OK(commit_with_app_free(s));
    /* Its slot reused by a record with a new string, which then holds it. */
    struct node r6 = {.id = 5};
    OK(mms_txn_begin(s, 0));
    OK(mms_str_new(s, "five again", 10, &r6.name));
    uint64_t at;
    OK(mms_table_append(t, &r6, &at));
    ASSERT_EQ(at, 5);
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, r6.name));
    commit_fails(s, MMS_EBADREF, "table node record 5: str field name");

    /* Appended records hold their strings. */
    struct node r7 = {.id = 1000};
    OK(mms_txn_begin(s, 0));
    OK(mms_str_new(s, "appended", 8, &r7.name));
    OK(mms_table_append(t, &r7, &at));
    ASSERT_EQ(at, N);
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, r7.name));
    commit_fails(s, MMS_EBADREF, "str field name");

    /* An aborted transaction that let a string go changes no count. */
    OK(mms_txn_begin(s, 0));
    old = rec(t, 6)->name;
    rec(t, 6)->name = 0;
    OK(mms_txn_abort(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, old));
    commit_fails(s, MMS_EBADREF, "table node record 6: str field name");
    /* Nor does a commit that failed after its records were visited. */
    OK(mms_txn_begin(s, 0));
    rec(t, 7)->name = 0;
    OK(mms_free(s, rec(t, 8)->name));
    commit_fails(s, MMS_EBADREF, "table node record 8: str field name");
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, 7)->name));
    commit_fails(s, MMS_EBADREF, "table node record 7: str field name");

    /* Another handle commits between this one's commits (which left a
     * count): it lets record 9's string go and gives record 10 record
     * 11's. */
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));
    mms_store *s2 = open_flags(p, 0);
    mms_table *t2;
    OK(mms_txn_begin(s2, 0));
    OK(mms_table_find(s2, "node", &t2));
    mms_ref nine = rec(t2, 9)->name, ten = rec(t2, 10)->name;
    OK(mms_str_new(s2, "nine", 4, &n1));
    rec(t2, 9)->name = n1;
    rec(t2, 10)->name = rec(t2, 11)->name;
    OK(mms_txn_commit(s2));
    OK(mms_close(s2));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, nine));
    OK(mms_free(s, ten));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, 9)->name));
    commit_fails(s, MMS_EBADREF, "table node record 9: str field name");
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, 11)->name));
    commit_fails(s, MMS_EBADREF, "table node record 10: str field name");

    /* A delete undone by a plain store: the record is deleted, its bytes
     * as committed (so on no record the commit visits), and its strings
     * freed: no live record holds them. */
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    struct node r12 = *rec(t, 12);
    OK(mms_table_delete(t, 12));
    memcpy(mms_table_get(t, 12), &r12, sizeof r12);
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, 13)->name));
    commit_fails(s, MMS_EBADREF, "table node record 13: str field name");
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));

    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* Bytes malloc has handed out and not had back (arena and mmap'd chunks). */
static size_t mapped_heap(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

/* A count dropped because another handle committed (H1) gives its memory
 * back at once (it used to stay until close), and the next build makes a
 * correct one again. */
TEST(str_holders_dropped_memory_freed)
{
    const char *p = tpath("str-holders-mem");
    mms_table *t;
    enum { N = 20000 }; /* a table of 32768 slots of 16 bytes: 512 KiB */
    mms_store *s = nodes_counted(p, N, &t);
    mms_store *s2 = open_flags(p, 0);
    OK(mms_txn_begin(s2, 0));
    OK(mms_root_set(s2, 0));
    OK(mms_txn_commit(s2));
    OK(mms_close(s2));
    size_t before = mapped_heap();
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s)); /* H1: dropped, scanned */
    size_t after = mapped_heap();
    if (!SANITIZED && before < after + (512u << 10)) /* ASan's malloc is not counted there */
        FAILF("the dropped count kept its memory: %zu bytes malloc'd before the drop, %zu "
              "after", before, after);
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s)); /* built again */
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, 17)->name));
    commit_fails(s, MMS_EBADREF, "table node record 17: str field name");
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));
    nodes_intact(s, t, N);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* Tables created, migrated and dropped between commits that look for
 * holders: the count follows the tables the catalog has. */
TEST(str_holders_follow_tables)
{
    const char *p = tpath("str-holdtab");
    mms_table *t, *u;
    enum { N = 40 };
    mms_store *s = nodes_counted(p, N, &t);
    /* A second table, its records holding strings. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "other", &node_schema, MMS_TABLE_CREATE, &u));
    for (int i = 0; i < 5; i++) {
        struct node r = {.id = i};
        OK(mms_str_new(s, "other", 5, &r.name));
        OK(mms_table_append(u, &r, NULL));
    }
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(u, 3)->name));
    commit_fails(s, MMS_EBADREF, "table other record 3: str field name");
    /* Dropped: its strings go with it, held by no record. */
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "other"));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));
    /* node migrated to a wider layout: its records hold their strings. */
    struct wide {
        int64_t id;
        mms_ref name, blob;
        int64_t extra;
    };
    static const mms_field wide_fields[] = {
        MMS_F_I64(struct wide, id), MMS_F_STR(struct wide, name), MMS_F_BLOB(struct wide, blob),
        MMS_F_I64(struct wide, extra)};
    static const mms_schema wide_schema = MMS_SCHEMA(struct wide, wide_fields);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "node", &wide_schema, 0, &t));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, ((struct wide *)mms_table_get(t, 17))->blob));
    commit_fails(s, MMS_EBADREF, "table node record 17: blob field blob");
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* The bulk paths and a second handle between commits that look for
 * holders: records filled through mms_table_append_many, a compaction
 * that trims the table (then appended past the old end again), another
 * handle of this process committing in between, and a migration in the
 * transaction that frees a string a record holds. After each, a freed
 * string a live record holds must fail the commit (a count saying 'not
 * held' would let it pass) and one no record holds must pass. */
TEST(str_holders_bulk_paths)
{
    const char *p = tpath("str-holdbulk");
    mms_table *t;
    enum { N = 40 };
    mms_store *s = nodes_counted(p, N, &t);
    /* append_many, filled in place. */
    uint64_t first;
    void *where;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append_many(t, 3, &first, &where));
    ASSERT_EQ(first, N);
    for (int i = 0; i < 3; i++) {
        struct node *r = (struct node *)where + i;
        r->id = N + i;
        OK(mms_str_new(s, "many", 4, &r->name));
    }
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, N + 1)->name));
    commit_fails(s, MMS_EBADREF, "table node record 41: str field name");

    /* Trimmed by a compaction, then appended past the old end. */
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = N - 2; i < N + 3; i++)
        OK(mms_table_delete(t, i));
    OK(commit_with_app_free(s));
    OK(mms_compact(s, NULL));
    ASSERT_EQ(mms_table_slots(t), N - 2);
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append_many(t, 8, &first, &where));
    ASSERT_EQ(first, N - 2);
    for (int i = 0; i < 8; i++) {
        struct node *r = (struct node *)where + i;
        r->id = 1000 + i;
        OK(mms_str_new(s, "again", 5, &r->name));
    }
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, rec(t, N + 4)->name));
    commit_fails(s, MMS_EBADREF, "table node record 44: str field name");

    /* Another handle of this process commits between this one's. */
    mms_store *s2 = open_flags(p, 0);
    mms_table *t2;
    for (int round = 0; round < 3; round++) {
        mms_ref n3;
        OK(mms_txn_begin(s2, 0));
        OK(mms_table_find(s2, "node", &t2));
        OK(mms_str_new(s2, "from s2", 7, &n3));
        rec(t2, 3)->name = n3;
        OK(mms_txn_commit(s2));
        OK(mms_txn_begin(s, 0));
        OK(commit_with_app_free(s));
        OK(mms_txn_begin(s, 0));
        OK(mms_free(s, n3));
        commit_fails(s, MMS_EBADREF, "table node record 3: str field name");
    }
    OK(mms_close(s2));

    /* A migration and a free of a string a migrated record holds, in one
     * transaction; then, the layout committed, again. */
    struct wide {
        int64_t id;
        mms_ref name, blob;
        int64_t extra;
    };
    static const mms_field wide_fields[] = {
        MMS_F_I64(struct wide, id), MMS_F_STR(struct wide, name), MMS_F_BLOB(struct wide, blob),
        MMS_F_I64(struct wide, extra)};
    static const mms_schema wide_schema = MMS_SCHEMA(struct wide, wide_fields);
    OK(mms_txn_begin(s, 0));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "node", &wide_schema, 0, &t));
    OK(mms_free(s, ((struct wide *)mms_table_get(t, 17))->name));
    commit_fails(s, MMS_EBADREF, "table node record 17: str field name");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "node", &wide_schema, 0, &t));
    OK(commit_with_app_free(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, ((struct wide *)mms_table_get(t, 18))->name));
    commit_fails(s, MMS_EBADREF, "table node record 18: str field name");
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

int main(void)
{
    RUN(str_set_freed_field);
    RUN(str_stale_bytes_not_a_string);
    RUN(str_freed_under_live_record);
    RUN(str_app_string_freed_each_commit);
    RUN(str_holders_follow_commits);
    RUN(str_holders_follow_tables);
    RUN(str_holders_bulk_paths);
    RUN(str_holders_dropped_memory_freed);
    return 0;
}

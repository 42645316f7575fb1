/*
 * test_life.c -- a store's life: dropping and renaming tables.
 *
 *  1. drop      the delete rule (refs from other tables, the root) refuses
 *               a drop and changes nothing; an abort brings a dropped table
 *               back whole; a committed drop survives a reopen, frees the
 *               strings, leaves ref fields aimed at it targetless, and its
 *               region file goes at the next checkpoint; the name can be
 *               used again; `mms drop`.
 *  2. rename    abort, commit, reopen, refs into the renamed table, the
 *               errors; `mms rename`.
 *  3. reuse     a drop and a create in one transaction, three times: the
 *               region is reused in a new file generation, the old file goes.
 *  4. indexed   a table's indexes (hash and ordered, unique) go with it:
 *               an abort or a crash before the commit brings back both, a
 *               commit takes both; their region files go at the checkpoint
 *               as the table's does; `mms drop`.
 *  5. root      the root names a live record or a heap object: mms_root_set
 *               refuses an index's region, a record past the table's end
 *               and a deleted record; a commit that deletes the root's
 *               record fails MMS_EREFERENCED, as for a ref field, and one
 *               that frees the root's heap object MMS_EBADREF.
 *
 * Compaction is test_compact's; copying, test_copy's.
 */
#include "table_world.h"

struct node {
    int64_t id;
    mms_ref name;
    mms_ref parent; /* node */
};
static const mms_field node_fields[] = {MMS_F_I64(struct node, id), MMS_F_STR(struct node, name),
                                        MMS_F_REF(struct node, parent, "node")};
static const mms_schema node_schema = MMS_SCHEMA(struct node, node_fields);

struct edge {
    int64_t w;
    mms_ref to; /* node */
};
static const mms_field edge_fields[] = {MMS_F_I64(struct edge, w),
                                        MMS_F_REF(struct edge, to, "node")};
static const mms_schema edge_schema = MMS_SCHEMA(struct edge, edge_fields);

#define NNODES 300

/* node: NNODES records with names and parents (record i -> i/2);
 * edge: one record per node, referring to it. */
static void make_world(mms_store *s)
{
    mms_table *n, *e;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "node", &node_schema, MMS_TABLE_CREATE, &n));
    OK(mms_table_open(s, "edge", &edge_schema, MMS_TABLE_CREATE, &e));
    for (int64_t i = 0; i < NNODES; i++) {
        char buf[64];
        int len = snprintf(buf, sizeof buf, "node number %lld", (long long)i);
        struct node r = {i, 0, MMS_REF_MAKE(table_region(n), (uint64_t)i / 2)};
        OK(mms_str_new(s, buf, (size_t)len, &r.name));
        OK(mms_table_append(n, &r, NULL));
        struct edge x = {i * 10, mms_table_ref(n, (uint64_t)i)};
        OK(mms_table_append(e, &x, NULL));
    }
    OK(mms_txn_commit(s));
}

static void check_nodes(mms_store *s, const char *name)
{
    mms_table *n;
    OK(mms_table_find(s, name, &n));
    ASSERT_EQ(mms_table_count(n), NNODES);
    for (uint64_t i = 0; i < NNODES; i++) {
        const struct node *r = mms_table_get(n, i);
        ASSERT(r);
        ASSERT_EQ(r->id, (int64_t)i);
        char buf[64];
        snprintf(buf, sizeof buf, "node number %llu", (unsigned long long)i);
        const char *got = mms_str_get(s, r->name, NULL);
        ASSERT(got && strcmp(got, buf) == 0);
        ASSERT_EQ(r->parent, MMS_REF_MAKE(table_region(n), i / 2));
    }
}

static size_t ntables(mms_store *s)
{
    size_t n;
    OK(mms_tables(s, NULL, 0, &n));
    return n;
}

TEST(test_drop)
{
    const char *path = tpath("life-drop");
    mms_store *s = sopen(path, MMS_CREATE);
    make_world(s);
    uint64_t h0 = heap_objects(s);
    mms_table *n, *e;
    OK(mms_table_find(s, "node", &n));
    OK(mms_table_find(s, "edge", &e));
    uint32_t nreg = table_region(n);
    uint32_t ngen = region_gen(s, nreg);

    /* Refs from edge: refused, nothing changes, the transaction goes on. */
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_drop(s, "node"), MMS_EREFERENCED);
    ASSERT(mentions(mms_errdetail(), "edge"));
    FAILS(mms_table_drop(s, "nothing"), MMS_ENOENT);
    FAILS(mms_table_drop(s, ""), MMS_EINVAL);
    ASSERT_EQ(ntables(s), 2);
    ASSERT_EQ(heap_objects(s), h0);
    OK(mms_txn_commit(s));
    check_nodes(s, "node");

    /* One edge left referring: still refused (the last record). */
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = 0; i + 1 < NNODES; i++)
        ((struct edge *)mms_table_get(e, i))->to = 0;
    FAILS(mms_table_drop(s, "node"), MMS_EREFERENCED);
    ASSERT(mentions(mms_errdetail(), "299"));
    /* A deleted record's ref does not count (it is gone). */
    OK(mms_table_delete(e, NNODES - 1));
    /* The root does. */
    OK(mms_root_set(s, mms_table_ref(n, 7)));
    FAILS(mms_table_drop(s, "node"), MMS_EREFERENCED);
    ASSERT(mentions(mms_errdetail(), "root"));
    OK(mms_root_set(s, 0));
    /* Now it goes; an abort brings it back whole. */
    OK(mms_table_drop(s, "node"));
    ASSERT_EQ(ntables(s), 1);
    mms_table *gone = n;
    FAILS(mms_table_find(s, "node", &gone), MMS_ENOENT);
    ASSERT(gone == NULL);
    ASSERT_LT(heap_objects(s), h0);
    OK(mms_txn_abort(s));
    ASSERT_EQ(ntables(s), 2);
    ASSERT_EQ(heap_objects(s), h0);
    check_nodes(s, "node");
    verify_ok(s);

    /* Commit it this time. */
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = 0; i < NNODES; i++)
        ((struct edge *)mms_table_get(e, i))->to = 0;
    OK(mms_table_drop(s, "node"));
    OK(mms_txn_commit(s));
    verify_ok(s);
    /* The dropped table's handle refuses, saying why (it blamed an
     * aborted creation). */
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_append(n, NULL, NULL), MMS_ENOENT);
    ASSERT(strstr(mms_errdetail(), "dropped") != NULL);
    OK(mms_txn_abort(s));
    /* Every string of node went: only what edge and the catalog own stay. */
    ASSERT_LE(heap_objects(s) + NNODES, h0);
    OK(mms_close(s));

    s = sopen(path, 0);
    ASSERT_EQ(ntables(s), 1);
    FAILS(mms_table_find(s, "node", &n), MMS_ENOENT);
    OK(mms_table_find(s, "edge", &e));
    ASSERT_EQ(mms_table_count(e), NNODES);
    const mms_schema *sc = mms_table_schema(e);
    ASSERT_EQ(sc->fields[1].kind, MMS_KIND_REF);
    ASSERT_EQ(strcmp(sc->fields[1].target, ""), 0);
    verify_ok(s);
    /* The region file goes with the next checkpoint. */
    OK(mms_checkpoint(s));
    ASSERT(!has_region_file(path, nreg, ngen));
    /* A ref stored into the targetless field is refused at commit. */
    OK(mms_txn_begin(s, 0));
    ((struct edge *)mms_table_get(e, 0))->to = MMS_REF_MAKE(nreg, 1);
    ASSERT(mms_txn_commit(s) != 0);
    verify_ok(s);
    /* Opened with a schema that aims at node again: refused (there is no
     * node; with a new one it would be a layout change that could lose data). */
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_open(s, "edge", &edge_schema, 0, &e), MMS_ENOENT);
    OK(mms_table_drop(s, "edge"));
    OK(mms_txn_commit(s));
    /* The names are free: new tables, filled again. */
    make_world(s);
    check_nodes(s, "node");
    verify_ok(s);
    OK(mms_close(s));
    s = sopen(path, 0);
    check_nodes(s, "node");
    verify_ok(s);
    OK(mms_close(s));

    /* The tool: refused, then done after the refs are cleared. */
    char out[2048], args[1100];
    snprintf(args, sizeof args, "drop '%s' node", path);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1);
    ASSERT(mentions(out, "refers"));
    s = sopen(path, 0);
    OK(mms_table_find(s, "edge", &e));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "edge"));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    s = sopen(path, 0);
    ASSERT_EQ(ntables(s), 0);
    verify_ok(s);
    OK(mms_close(s));
    snprintf(args, sizeof args, "drop '%s' node", path);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1);
    rmrf(path);
}

TEST(test_rename)
{
    const char *path = tpath("life-rename");
    mms_store *s = sopen(path, MMS_CREATE);
    make_world(s);
    mms_table *n;
    OK(mms_table_find(s, "node", &n));

    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_rename(s, "node", "edge"), -EEXIST);
    FAILS(mms_table_rename(s, "nothing", "x"), MMS_ENOENT);
    FAILS(mms_table_rename(s, "node", ""), MMS_EINVAL);
    OK(mms_table_rename(s, "node", "vertex"));
    ASSERT_EQ(strcmp(mms_table_name(n), "vertex"), 0);
    check_nodes(s, "vertex");
    OK(mms_txn_abort(s));
    check_nodes(s, "node");
    mms_table *v;
    FAILS(mms_table_find(s, "vertex", &v), MMS_ENOENT);
    ASSERT_EQ(strcmp(mms_table_name(n), "node"), 0);

    OK(mms_txn_begin(s, 0));
    OK(mms_table_rename(s, "node", "node")); /* nothing */
    OK(mms_table_rename(s, "node", "vertex"));
    OK(mms_txn_commit(s));
    check_nodes(s, "vertex");
    verify_ok(s);
    OK(mms_close(s));

    s = sopen(path, 0);
    check_nodes(s, "vertex");
    FAILS(mms_table_find(s, "node", &n), MMS_ENOENT);
    mms_table *e;
    OK(mms_table_find(s, "edge", &e));
    const mms_schema *sc = mms_table_schema(e);
    ASSERT_EQ(strcmp(sc->fields[1].target, "vertex"), 0);
    /* Its refs are unchanged and still checked at commit. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_find(s, "vertex", &v));
    OK(mms_table_delete(v, 3));
    FAILS(mms_txn_commit(s), MMS_EREFERENCED);
    verify_ok(s);
    OK(mms_close(s));

    char out[2048], args[1100];
    snprintf(args, sizeof args, "rename '%s' vertex node", path);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1); /* no vertex any more */
    snprintf(args, sizeof args, "rename '%s' node edge", path);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1);
    s = sopen(path, 0);
    check_nodes(s, "node");
    verify_ok(s);
    OK(mms_close(s));
    rmrf(path);
}

/* Another handle drops a table and creates another, of another name, that
 * takes its region: a handle of the dropped table followed it as if it had
 * been renamed (a handle follows a rename by its region), and read the new
 * table's records -- Python's Table "t" gave {'secret': 42} of table "x"
 * (seen before the fix). A rename by the other handle is still followed. */
TEST(test_drop_other_handle)
{
    const char *path = tpath("life-drop-other");
    mms_store *s1 = sopen(path, MMS_CREATE), *s2;
    static const mms_field f[] = {{"a", MMS_KIND_I64, 0, 8, NULL, NULL}};
    static const mms_schema sc = {8, 1, f};
    mms_table *t, *r, *x;
    int64_t v = 7;
    OK(mms_txn_begin(s1, 0));
    OK(mms_table_open(s1, "t", &sc, MMS_TABLE_CREATE, &t));
    OK(mms_table_open(s1, "r", &sc, MMS_TABLE_CREATE, &r));
    OK(mms_table_append(t, &v, NULL));
    OK(mms_table_append(r, &v, NULL));
    OK(mms_txn_commit(s1));
    OK(mms_table_find(s1, "t", &t));
    OK(mms_table_find(s1, "r", &r));
    uint32_t treg = table_region(t); /* now: once gone, t gives no refs */
    s2 = sopen(path, 0);
    OK(mms_txn_begin(s2, 0));
    OK(mms_table_drop(s2, "t"));
    OK(mms_table_open(s2, "x", &sc, MMS_TABLE_CREATE, &x));
    OK(mms_table_append(x, &v, NULL));
    OK(mms_table_append(x, &v, NULL));
    OK(mms_table_rename(s2, "r", "r2"));
    OK(mms_txn_commit(s2));
    ASSERT_EQ(table_region(x), treg); /* the case: its region taken */
    OK(mms_read_begin(s1));
    ASSERT_EQ(mms_table_count(t), 0);
    ASSERT(mms_table_schema(t) == NULL);
    ASSERT_EQ(strcmp(mms_table_name(t), "t"), 0);
    ASSERT_EQ(mms_table_count(r), 1); /* renamed: followed */
    ASSERT_EQ(strcmp(mms_table_name(r), "r2"), 0);
    OK(mms_read_end(s1));
    OK(mms_txn_begin(s1, 0));
    FAILS(mms_table_append(t, &v, NULL), MMS_ENOENT);
    OK(mms_txn_abort(s1));
    verify_ok(s1);
    OK(mms_close(s2));
    OK(mms_close(s1));
    rmrf(path);
}

/* A drop and a create in one transaction: the new table takes the freed
 * region in a new file generation; the old file goes at the checkpoint. */
TEST(test_drop_reuse)
{
    const char *path = tpath("life-reuse");
    mms_store *s = sopen(path, MMS_CREATE);
    make_world(s);
    mms_table *e, *n;
    OK(mms_table_find(s, "edge", &e));
    uint32_t ereg = table_region(e), egen = region_gen(s, ereg);
    for (int round = 0; round < 3; round++) {
        CTX("round %d", round);
        OK(mms_txn_begin(s, 0));
        OK(mms_table_drop(s, round % 2 ? "link" : "edge"));
        mms_table *l;
        OK(mms_table_open(s, round % 2 ? "edge" : "link", &edge_schema, MMS_TABLE_CREATE, &l));
        OK(mms_table_find(s, "node", &n));
        for (uint64_t i = 0; i < 50; i++) {
            struct edge x = {(int64_t)(i + 1000u * (unsigned)round), mms_table_ref(n, i)};
            OK(mms_table_append(l, &x, NULL));
        }
        OK(mms_txn_commit(s));
        verify_ok(s);
        OK(mms_checkpoint(s));
    }
    OK(mms_close(s));
    s = sopen(path, 0);
    verify_ok(s);
    mms_table *l;
    OK(mms_table_find(s, "link", &l));
    ASSERT_EQ(mms_table_count(l), 50);
    ASSERT_EQ(((const struct edge *)mms_table_get(l, 7))->w, 2007);
    ASSERT(!has_region_file(path, ereg, egen));
    FAILS(mms_table_find(s, "edge", &e), MMS_ENOENT);
    check_nodes(s, "node");
    OK(mms_close(s));
    rmrf(path);
}

/* A drop frees each field's missing-value bitmap. It read the entry's
 * (bitmap, bits) pairs as single refs: a table whose first field had a
 * missing value failed to drop, "ref 0x40 is not in the heap" (the first
 * field's bit count taken for a ref: `mms drop` of `mms import`ed
 * debian.csv), and the bitmaps of other fields were left allocated. */
TEST(test_drop_nulls)
{
    const char *path = tpath("life-nulls");
    mms_store *s = sopen(path, MMS_CREATE);
    mms_info info[2];
    /* Round 0 without a missing value, round 1 with some: each drop leaves
     * the heap as round 0's did (the catalog stays). */
    for (int round = 0; round < 2; round++) {
        CTX("round %d", round);
        OK(mms_txn_begin(s, 0));
        mms_table *n;
        OK(mms_table_open(s, "node", &node_schema, MMS_TABLE_CREATE, &n));
        for (int64_t i = 0; i < 100; i++) {
            struct node x = {i, 0, 0};
            OK(mms_str_new(s, "x", 1, &x.name));
            OK(mms_table_append(n, &x, NULL));
        }
        if (round) {
            OK(mms_table_null_set(n, 3, 0, 1));  /* a missing id */
            OK(mms_table_null_set(n, 70, 1, 1)); /* a missing name */
            OK(mms_table_null_set(n, 71, 2, 1)); /* a missing parent */
        }
        OK(mms_txn_commit(s));
        verify_ok(s);
        OK(mms_txn_begin(s, 0));
        OK(mms_table_drop(s, "node"));
        OK(mms_txn_commit(s));
        verify_ok(s);
        OK(mms_info_get(s, &info[round]));
    }
    ASSERT_EQ(info[1].heap_objects, info[0].heap_objects);
    ASSERT_EQ(info[1].heap_used, info[0].heap_used);
    OK(mms_close(s));
    rmrf(path);
}

/* A table with indexes: the drop takes them with it, in its transaction. */
struct item {
    int64_t id;
    int64_t rank;
};
static const mms_field item_fields[] = {MMS_F_I64(struct item, id), MMS_F_I64(struct item, rank)};
static const mms_schema item_schema = MMS_SCHEMA(struct item, item_fields);
#define NITEMS 500

static void make_items(mms_store *s, const char *name)
{
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, name, &item_schema, MMS_TABLE_CREATE, &t));
    for (int64_t i = 0; i < NITEMS; i++) {
        struct item x = {i, 1000 - i};
        OK(mms_table_append(t, &x, NULL));
    }
    OK(mms_index_create(t, "id", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
    OK(mms_index_create(t, "rank", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE));
    OK(mms_txn_commit(s));
}

/* Both indexes find each record. */
static void check_items(mms_store *s, const char *name)
{
    mms_table *t;
    mms_index *hx, *ox;
    OK(mms_table_find(s, name, &t));
    ASSERT_EQ(mms_table_count(t), NITEMS);
    OK(mms_index_open(t, "id", &hx));
    OK(mms_index_open(t, "rank", &ox));
    for (int64_t i = 0; i < NITEMS; i += 7) {
        uint64_t at;
        int64_t rank = 1000 - i;
        OK(mms_index_find(hx, &i, &at));
        ASSERT_EQ(at, (uint64_t)i);
        OK(mms_index_find(ox, &rank, &at));
        ASSERT_EQ(at, (uint64_t)i);
    }
}

TEST(test_drop_indexed)
{
    const char *path = tpath("life-indexed");
    mms_store *s = sopen(path, MMS_CREATE);
    make_items(s, "item");
    mms_table *t;
    OK(mms_table_find(s, "item", &t));
    uint32_t reg[3], gen[3];
    mms_index_info ii[2];
    size_t n;
    OK(mms_indexes(t, ii, 2, &n));
    ASSERT_EQ(n, 2);
    reg[0] = table_region(t);
    reg[1] = ii[0].region;
    reg[2] = ii[1].region;
    for (int k = 0; k < 3; k++)
        gen[k] = region_gen(s, reg[k]);

    /* An abort brings the table back with its indexes, which still work
     * and are kept up by the next transaction. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "item"));
    ASSERT_EQ(ntables(s), 0);
    OK(mms_txn_abort(s));
    check_items(s, "item");
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_find(s, "item", &t));
    struct item dup = {3, 5000};
    FAILS(mms_table_append(t, &dup, NULL), MMS_EUNIQUE);
    OK(mms_txn_abort(s));

    /* A crash before the commit (a child that dies in it): both stay. */
    OK(mms_close(s));
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        mms_store *c;
        if (mms_open(path, NULL, &c) || mms_txn_begin(c, 0) || mms_table_drop(c, "item"))
            _exit(1);
        _exit(0);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    s = sopen(path, 0);
    check_items(s, "item");
    verify_ok(s);

    /* A commit takes both; their files go when the table's does; their
     * handles find nothing. */
    mms_index *hx;
    OK(mms_table_find(s, "item", &t));
    OK(mms_index_open(t, "id", &hx));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "item"));
    OK(mms_txn_commit(s));
    verify_ok(s);
    uint64_t at;
    int64_t key = 3;
    FAILS(mms_index_find(hx, &key, &at), MMS_ENOENT);
    for (int k = 1; k < 3; k++)
        ASSERT_EQ(has_region_file(path, reg[k], gen[k]), has_region_file(path, reg[0], gen[0]));
    OK(mms_close(s));
    s = sopen(path, 0);
    ASSERT_EQ(ntables(s), 0);
    FAILS(mms_table_find(s, "item", &t), MMS_ENOENT);
    verify_ok(s);
    OK(mms_checkpoint(s));
    for (int k = 0; k < 3; k++)
        ASSERT(!has_region_file(path, reg[k], gen[k]));
    /* The name and the regions are free again. */
    make_items(s, "item");
    check_items(s, "item");
    verify_ok(s);
    OK(mms_close(s));

    /* The tool. */
    char out[2048], args[1100];
    snprintf(args, sizeof args, "drop '%s' item", path);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    s = sopen(path, 0);
    ASSERT_EQ(ntables(s), 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(path);
}

/* The delete rule for the root (item 5). Each of these was accepted, and
 * the committed store then failed mms_verify ("the root ... is no table",
 * "... not a live record"). */
TEST(test_root_rule)
{
    const char *path = tpath("life-root");
    mms_store *s = sopen(path, MMS_CREATE);
    make_world(s);
    mms_table *n;
    OK(mms_table_find(s, "node", &n));
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(n, "id", 0));
    OK(mms_txn_commit(s));
    mms_index_info ii;
    size_t k;
    OK(mms_indexes(n, &ii, 1, &k));
    ASSERT_EQ(k, 1);

    /* Only edge 298 and 299 refer to nodes 298 and 299 (no node has
     * them as parent): take those edges away. */
    mms_table *e;
    OK(mms_table_find(s, "edge", &e));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(e, 298));
    OK(mms_table_delete(e, 299));
    OK(mms_txn_commit(s));

    OK(mms_txn_begin(s, 0));
    /* An index is no table: its slots are no records. */
    FAILS(mms_root_set(s, MMS_REF_MAKE(ii.region, 0)), MMS_ERANGE);
    ASSERT(mentions(mms_errdetail(), "no table"));
    /* Past the last record, though inside the region's bytes (a record is
     * 24 bytes: record 1000 would be byte 24000 of 300 * 24). */
    FAILS(mms_root_set(s, mms_table_ref(n, 1000)), MMS_ERANGE);
    ASSERT(mentions(mms_errdetail(), "1000"));
    /* A deleted record. */
    OK(mms_table_delete(n, 298));
    FAILS(mms_root_set(s, mms_table_ref(n, 298)), MMS_ERANGE);
    ASSERT(mentions(mms_errdetail(), "298"));
    ASSERT_EQ(mms_root(s), 0);
    OK(mms_txn_abort(s));

    /* The root's record deleted after the root was set: the commit fails
     * and aborts, as for a ref field (even if an append reuses the slot). */
    OK(mms_txn_begin(s, 0));
    OK(mms_root_set(s, mms_table_ref(n, 299)));
    OK(mms_table_delete(n, 299));
    uint64_t at;
    OK(mms_table_append(n, NULL, &at));
    ASSERT_EQ(at, 299);
    FAILS(mms_txn_commit(s), MMS_EREFERENCED);
    ASSERT(mentions(mms_errdetail(), "root"));
    ASSERT_EQ(mms_root(s), 0);
    verify_ok(s);
    /* A root set to a live record commits, and its delete is refused. */
    OK(mms_txn_begin(s, 0));
    OK(mms_root_set(s, mms_table_ref(n, 299)));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(n, 299));
    FAILS(mms_txn_commit(s), MMS_EREFERENCED);
    ASSERT_EQ(mms_root(s), mms_table_ref(n, 299));
    ASSERT(mms_table_live(n, 299));
    verify_ok(s);

    /* A heap root freed (mms_free, a mms_realloc that moves it, mms_pfree)
     * fails the commit the same way, unless the root is set again: it was
     * committed, naming free space (mms_verify said nothing), and the next
     * allocation there became the root. */
    mms_ref h;
    OK(mms_txn_begin(s, 0));
    OK(mms_zalloc(s, 64, &h));
    OK(mms_root_set(s, h));
    OK(mms_txn_commit(s));
    for (int how = 0; how < 3; how++) {
        OK(mms_txn_begin(s, 0));
        mms_ref moved = h;
        if (how == 0)
            OK(mms_free(s, h));
        else if (how == 1)
            OK(mms_realloc(s, &moved, 1 << 16));
        else
            mms_pfree(s, mms_deref(s, h));
        if (how == 1)
            ASSERT_NE(moved, h);
        FAILS(mms_txn_commit(s), MMS_EBADREF);
        ASSERT(mentions(mms_errdetail(), "root"));
        ASSERT_EQ(mms_root(s), h);
        verify_ok(s);
    }
    OK(mms_txn_begin(s, 0));
    mms_ref moved = h;
    OK(mms_realloc(s, &moved, 1 << 16));
    OK(mms_root_set(s, moved));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, moved));
    OK(mms_root_set(s, 0));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(path);
}

int main(void)
{
    table_test_begin("test_life");
    RUN(test_drop);
    RUN(test_rename);
    RUN(test_drop_other_handle);
    RUN(test_drop_reuse);
    RUN(test_drop_nulls);
    RUN(test_drop_indexed);
    RUN(test_root_rule);
    return table_test_end();
}

/*
 * test_qa20.c -- a QA pass (qa20): indexes across migrations (widened,
 * to float, removed and added back, reordered, a covered field widened, a
 * chars key lengthened), drops and creates of indexes and tables in one
 * transaction, their aborts and the regions they reuse; and the bugs the
 * pass found, each case named for it:
 *
 *   load_twice_named      a dump naming one table twice loaded as one table
 *   where_ref_gone_target `mms get`/--where on a REF field whose target was
 *                         dropped named the target table as ""
 *   recover_out_forms     mms recover --out DEST/ failed, --out '' built the
 *                         store and failed to rename it
 *   load_trailing_gaps_without_root  a dump without a root line loaded its
 *                         last table without its trailing deleted slots
 */
#include "test.h"

#include "table_world.h"

struct q1 {
    int64_t id;
    int32_t grp;
    int32_t pad;
};
static const mms_field q1_fields[] = {MMS_F_I64(struct q1, id), MMS_F_I32(struct q1, grp)};
static const mms_schema q1_schema = MMS_SCHEMA(struct q1, q1_fields);

struct q2 { /* grp widened to i64, a field added */
    int64_t id;
    int64_t grp;
    double x;
};
static const mms_field q2_fields[] = {MMS_F_I64(struct q2, id), MMS_F_I64(struct q2, grp),
                                      MMS_F_F64(struct q2, x)};
static const mms_schema q2_schema = MMS_SCHEMA(struct q2, q2_fields);

struct q3 { /* grp removed */
    int64_t id;
};
static const mms_field q3_fields[] = {MMS_F_I64(struct q3, id)};
static const mms_schema q3_schema = MMS_SCHEMA(struct q3, q3_fields);

static mms_store *fill(const char *p, mms_table **t, int n)
{
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &q1_schema, MMS_TABLE_CREATE, t));
    for (int i = 0; i < n; i++) {
        struct q1 r = {.id = i, .grp = i % 7};
        OK(mms_table_append(*t, &r, NULL));
    }
    OK(mms_txn_commit(s));
    return s;
}

static void expect_grp(mms_store *s, mms_table *t, int64_t key, uint64_t want, int wide)
{
    mms_index *ix;
    OK(mms_index_open(t, "grp", &ix));
    uint64_t n = 0;
    OK(mms_read_begin(s));
    if (wide) {
        OK(mms_index_count(ix, &key, &n));
    } else {
        int32_t k = (int32_t)key;
        OK(mms_index_count(ix, &k, &n));
    }
    OK(mms_read_end(s));
    ASSERT_EQ(n, want);
}

/* Indexes through migrations, aborts, drops. */
TEST(index_migrate_abort_drop)
{
    const char *p = tpath("qa20x");
    mms_table *t;
    mms_store *s = fill(p, &t, 70);
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "grp", MMS_INDEX_ORDERED));
    OK(mms_index_create(t, "id", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
    OK(mms_txn_commit(s));
    expect_grp(s, t, 3, 10, 0);

    /* abort a widening migration */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &q2_schema, 0, &t));
    OK(mms_txn_abort(s));
    expect_grp(s, t, 3, 10, 0);
    verify_ok(s);

    /* abort a removal */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &q3_schema, 0, &t));
    OK(mms_txn_abort(s));
    expect_grp(s, t, 3, 10, 0);
    verify_ok(s);

    /* abort an index drop, and an index create */
    OK(mms_txn_begin(s, 0));
    OK(mms_index_drop(t, "grp"));
    OK(mms_index_create(t, "grp", MMS_INDEX_HASH));
    OK(mms_txn_abort(s));
    expect_grp(s, t, 3, 10, 0);
    verify_ok(s);

    /* widen with the index, append in the same txn */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &q2_schema, 0, &t));
    struct q2 w = {.id = 1000, .grp = (int64_t)1 << 40, .x = 1};
    OK(mms_table_append(t, &w, NULL));
    w.id = 1001;
    w.grp = 3;
    OK(mms_table_append(t, &w, NULL));
    OK(mms_txn_commit(s));
    expect_grp(s, t, 3, 11, 1);
    expect_grp(s, t, (int64_t)1 << 40, 1, 1);
    verify_ok(s);
    OK(mms_close(s));
    s = open_flags(p, 0);
    OK(mms_table_find(s, "t", &t));
    expect_grp(s, t, 3, 11, 1);
    verify_ok(s);

    /* drop the table and create it again in one txn, with an index */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "t"));
    OK(mms_table_open(s, "t", &q1_schema, MMS_TABLE_CREATE, &t));
    struct q1 r = {.id = 5, .grp = 3};
    OK(mms_table_append(t, &r, NULL));
    OK(mms_index_create(t, "grp", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    expect_grp(s, t, 3, 1, 0);
    verify_ok(s);

    /* remove the indexed field, then add it back */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &q3_schema, 0, &t));
    OK(mms_txn_commit(s));
    mms_index *ix;
    FAILS(mms_index_open(t, "grp", &ix), MMS_ENOENT);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &q1_schema, 0, &t));
    OK(mms_index_create(t, "grp", MMS_INDEX_HASH));
    OK(mms_txn_commit(s));
    expect_grp(s, t, 0, 1, 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}


struct q4 { /* grp as f64: an i32 widened to a float */
    int64_t id;
    double grp;
};
static const mms_field q4_fields[] = {MMS_F_I64(struct q4, id), MMS_F_F64(struct q4, grp)};
static const mms_schema q4_schema = MMS_SCHEMA(struct q4, q4_fields);

struct c1 {
    char tag[6];
    int16_t v;
};
static const mms_field c1_fields[] = {MMS_F_CHARS(struct c1, tag), MMS_F_I16(struct c1, v)};
static const mms_schema c1_schema = MMS_SCHEMA(struct c1, c1_fields);
struct c2 {
    char tag[10];
    int16_t pad;
    int64_t v;
};
static const mms_field c2_fields[] = {MMS_F_CHARS(struct c2, tag), MMS_F_I64(struct c2, v)};
static const mms_schema c2_schema = MMS_SCHEMA(struct c2, c2_fields);

TEST(index_float_chars_cover)
{
    const char *p = tpath("qa20y");
    mms_table *t;
    mms_store *s = fill(p, &t, 70);
    mms_index *ix;
    /* index created, then migrated to float in the same txn */
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "grp", MMS_INDEX_ORDERED));
    OK(mms_table_open(s, "t", &q4_schema, 0, &t));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_index_open(t, "grp", &ix));
    double k = 3;
    uint64_t n = 0;
    OK(mms_read_begin(s));
    OK(mms_index_count(ix, &k, &n));
    OK(mms_read_end(s));
    ASSERT_EQ(n, 10);
    mms_cursor *c;
    OK(mms_cursor_open(ix, &c));
    /* drop and create the index again under an open cursor */
    OK(mms_txn_begin(s, 0));
    OK(mms_index_drop(t, "grp"));
    OK(mms_txn_commit(s));
    uint64_t at;
    double got;
    FAILS(mms_cursor_seek(c, MMS_SEEK_FIRST, NULL, &at, &got), MMS_ENOENT);
    OK(mms_txn_begin(s, 0));
    FAILS(mms_index_create(t, "grp", MMS_INDEX_HASH | MMS_INDEX_UNIQUE), MMS_EUNIQUE);
    OK(mms_index_create(t, "grp", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    mms_cursor_close(c);
    verify_ok(s);

    /* chars lengthened, and a covered field widened */
    OK(mms_txn_begin(s, 0));
    mms_table *ct;
    OK(mms_table_open(s, "c", &c1_schema, MMS_TABLE_CREATE, &ct));
    const char *tags[] = {"ab", "abc", "b", "", "abcdef", "a"};
    for (int i = 0; i < 6; i++) {
        struct c1 x = {.v = (int16_t)(i * 100 - 200)};
        memcpy(x.tag, tags[i], strlen(tags[i]));
        OK(mms_table_append(ct, &x, NULL));
    }
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create_covering(ct, "tag", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE, "v"));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "c", &c2_schema, 0, &ct));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_index_open(ct, "tag", &ix));
    OK(mms_read_begin(s));
    char key[10] = "abcdef";
    int64_t v = 0;
    OK(mms_index_find_covered(ix, key, &at, &v));
    ASSERT_EQ(at, 4);
    ASSERT_EQ(v, 200);
    OK(mms_cursor_open(ix, &c));
    char kout[10];
    OK(mms_cursor_seek(c, MMS_SEEK_FIRST, NULL, &at, kout));
    ASSERT_EQ(at, 3);
    OK(mms_cursor_covered(c, &v));
    ASSERT_EQ(v, 100);
    OK(mms_cursor_next(c, &at, kout));
    ASSERT_EQ(at, 5);
    mms_cursor_close(c);
    OK(mms_read_end(s));
    /* a new record with a 10-byte key */
    OK(mms_txn_begin(s, 0));
    struct c2 y = {.tag = "abcdefghij", .v = INT64_MIN};
    OK(mms_table_append(ct, &y, NULL));
    memcpy(y.tag, "abcdef\0\0\0\0", 10);
    FAILS(mms_table_append(ct, &y, NULL), MMS_EUNIQUE);
    OK(mms_txn_commit(s));
    OK(mms_read_begin(s));
    memcpy(key, "abcdefghij", 10);
    OK(mms_index_find_covered(ix, key, &at, &v));
    ASSERT_EQ(at, 6);
    ASSERT(v == INT64_MIN);
    OK(mms_read_end(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

static uint64_t count_key(mms_store *s, mms_table *t, const char *f, int64_t key)
{
    mms_index *ix;
    OK(mms_index_open(t, f, &ix));
    uint64_t n = 0;
    OK(mms_read_begin(s));
    OK(mms_index_count(ix, &key, &n));
    OK(mms_read_end(s));
    return n;
}

TEST(index_regions_reused)
{
    const char *p = tpath("qa20z");
    mms_table *t, *u;
    mms_store *s = fill(p, &t, 50);
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "id", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    /* drop the index, index another field in the same txn */
    OK(mms_txn_begin(s, 0));
    OK(mms_index_drop(t, "id"));
    OK(mms_table_open(s, "u", &q3_schema, MMS_TABLE_CREATE, &u));
    struct q3 x = {.id = 7};
    OK(mms_table_append(u, &x, NULL));
    OK(mms_index_create(u, "id", MMS_INDEX_HASH));
    OK(mms_txn_commit(s));
    verify_ok(s);
    ASSERT_EQ(count_key(s, u, "id", 7), 1);
    /* drop a table with its index and create another with an index, one txn */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "u"));
    OK(mms_table_open(s, "v", &q3_schema, MMS_TABLE_CREATE, &u));
    x.id = 9;
    OK(mms_table_append(u, &x, NULL));
    OK(mms_table_append(u, &x, NULL));
    OK(mms_index_create(u, "id", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    ASSERT_EQ(count_key(s, u, "id", 9), 2);
    verify_ok(s);
    OK(mms_close(s));
    s = open_flags(p, 0);
    OK(mms_table_find(s, "v", &u));
    ASSERT_EQ(count_key(s, u, "id", 9), 2);
    verify_ok(s);
    /* create an index, abort; create a table: regions reused */
    OK(mms_table_find(s, "t", &t));
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "grp", MMS_INDEX_HASH));
    OK(mms_txn_abort(s));
    OK(mms_txn_begin(s, 0));
    mms_table *w;
    OK(mms_table_open(s, "w", &q1_schema, MMS_TABLE_CREATE, &w));
    struct q1 y = {.id = 1, .grp = 2};
    OK(mms_table_append(w, &y, NULL));
    OK(mms_index_create(w, "grp", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    verify_ok(s);
    expect_grp(s, w, 2, 1, 0);
    OK(mms_close(s));
    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

TEST(index_drop_create_one_txn)
{
    const char *p = tpath("qa20w");
    mms_table *t;
    mms_store *s = fill(p, &t, 5000);
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "id", MMS_INDEX_ORDERED));
    OK(mms_index_create(t, "grp", MMS_INDEX_HASH));
    OK(mms_txn_commit(s));
    /* drop and create on the same field in one txn, twice */
    for (int k = 0; k < 2; k++) {
        OK(mms_txn_begin(s, 0));
        OK(mms_index_drop(t, "id"));
        OK(mms_index_create(t, "id", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
        OK(mms_index_drop(t, "grp"));
        OK(mms_index_create(t, "grp", MMS_INDEX_ORDERED));
        OK(mms_txn_commit(s));
        verify_ok(s);
        ASSERT_EQ(count_key(s, t, "id", 77), 1);
    }
    OK(mms_checkpoint(s));
    /* drop both, abort, then drop the table, abort */
    OK(mms_txn_begin(s, 0));
    OK(mms_index_drop(t, "id"));
    OK(mms_index_drop(t, "grp"));
    OK(mms_txn_abort(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "t"));
    OK(mms_txn_abort(s));
    OK(mms_checkpoint(s));
    verify_ok(s);
    ASSERT_EQ(count_key(s, t, "id", 77), 1);
    OK(mms_close(s));
    s = open_flags(p, 0);
    OK(mms_table_find(s, "t", &t));
    ASSERT_EQ(count_key(s, t, "id", 77), 1);
    verify_ok(s);
    /* drop the table; its region and the indexes' go */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "t"));
    OK(mms_txn_commit(s));
    OK(mms_checkpoint(s));
    OK(mms_close(s));
    s = open_flags(p, 0);
    verify_ok(s);
    mms_compact_stats st;
    OK(mms_compact(s, &st));
    OK(mms_close(s));
    rmrf(p);
}

struct q5 { /* q1 reordered: grp first */
    int32_t grp;
    int32_t pad;
    int64_t id;
};
static const mms_field q5_fields[] = {MMS_F_I32(struct q5, grp), MMS_F_I64(struct q5, id)};
static const mms_schema q5_schema = MMS_SCHEMA(struct q5, q5_fields);

TEST(index_fields_reordered)
{
    const char *p = tpath("qa20v");
    mms_table *t;
    mms_store *s = fill(p, &t, 300);
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create_covering(t, "id", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE, "grp"));
    OK(mms_index_create_covering(t, "grp", MMS_INDEX_HASH, "id"));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &q5_schema, 0, &t));
    OK(mms_txn_commit(s));
    verify_ok(s);
    /* plain stores to both fields after the move */
    OK(mms_txn_begin(s, 0));
    struct q5 *r = mms_table_get(t, 10);
    r->id = 100000;
    r->grp = 99;
    OK(mms_txn_commit(s));
    verify_ok(s);
    mms_index *ix;
    OK(mms_index_open(t, "id", &ix));
    int64_t k = 100000;
    uint64_t at = 0;
    int32_t g = 0;
    OK(mms_read_begin(s));
    OK(mms_index_find_covered(ix, &k, &at, &g));
    ASSERT_EQ(at, 10);
    ASSERT_EQ(g, 99);
    OK(mms_read_end(s));
    OK(mms_index_open(t, "grp", &ix));
    g = 99;
    k = 0;
    OK(mms_read_begin(s));
    OK(mms_index_find_covered(ix, &g, &at, &k));
    ASSERT_EQ(at, 10);
    ASSERT_EQ(k, 100000);
    OK(mms_read_end(s));
    /* back to q1 and the same again with a process's second handle */
    mms_store *s2 = open_flags(p, 0);
    mms_table *t2;
    OK(mms_txn_begin(s2, 0));
    OK(mms_table_open(s2, "t", &q1_schema, 0, &t2));
    OK(mms_txn_commit(s2));
    OK(mms_close(s2));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_find(s, "t", &t));
    struct q1 *r1 = mms_table_get(t, 11);
    r1->id = 200000;
    r1->grp = 98;
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_index_open(t, "grp", &ix));
    g = 98;
    OK(mms_read_begin(s));
    OK(mms_index_find_covered(ix, &g, &at, &k));
    ASSERT_EQ(at, 11);
    ASSERT_EQ(k, 200000);
    OK(mms_read_end(s));
    OK(mms_close(s));
    rmrf(p);
}

/* `mms load` of the dump text refuses it (exit 1) saying want, and leaves
 * no store. Under timeout(1), so that a load that would run for hours
 * fails the case instead of hanging it (exit 124). */
static void load_refused(const char *name, const char *text, const char *want)
{
    const char *p = tpath(name);
    char dump[600], cmd[1400], out[2000];
    snprintf(dump, sizeof dump, "%s.jsonl", p);
    file_put(dump, text);
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' load '%s' '%s' 2>&1", getenv("MMS_TOOL"),
             dump, p);
    FILE *f = popen(cmd, "r");
    ASSERT(f != NULL);
    out[fread(out, 1, sizeof out - 1, f)] = 0;
    int ws = pclose(f);
    fprintf(stderr, "%s", out);
    ASSERT(WIFEXITED(ws));
    ASSERT_EQ(WEXITSTATUS(ws), 1);
    if (!strstr(out, want))
        FAILF("no \"%s\" in: %s", want, out);
    struct stat st;
    ASSERT(stat(p, &st) != 0); /* no store */
    unlink(dump);
}

/* A dump that names one table twice: the load made the second open (or
 * migrate) the first, and said "loaded 2 tables" of a store holding one. */
TEST(load_twice_named)
{
    load_refused("qa20dup",
                 "{\"mmstore_dump\":1,\"tables\":2}\n"
                 "{\"table\":\"t\",\"record_size\":8,\"slots\":0,\"records\":0,\"fields\":"
                 "[{\"name\":\"id\",\"kind\":\"i64\",\"offset\":0,\"size\":8}]}\n"
                 "{\"table\":\"t\",\"record_size\":16,\"slots\":1,\"records\":1,\"fields\":"
                 "[{\"name\":\"id\",\"kind\":\"i64\",\"offset\":0,\"size\":8},"
                 "{\"name\":\"x\",\"kind\":\"i64\",\"offset\":8,\"size\":8}]}\n"
                 "{\"i\":0,\"v\":[6,7]}\n"
                 "{\"root\":null}\n"
                 "{\"end\":true,\"records\":1}\n",
                 "line 3 of the dump: a second table called t");
}

/* A dump whose table names a slot count no table can hold (damaged: 10^12
 * slots of 8 bytes, none live): the load appended the deleted slots one at
 * a time, for hours, until the table's limit or a full disk said no. Now
 * they are one append, refused at once. */
TEST(load_huge_slot_count)
{
    load_refused("qa20huge",
                 "{\"mmstore_dump\":1,\"tables\":1}\n"
                 "{\"table\":\"t\",\"record_size\":8,\"slots\":1000000000000,\"records\":0,"
                 "\"fields\":[{\"name\":\"id\",\"kind\":\"i64\",\"offset\":0,\"size\":8}]}\n"
                 "{\"root\":null}\n"
                 "{\"end\":true,\"records\":0}\n",
                 "cannot append to t");
}

/* A condition on a REF field whose target table was dropped: the error
 * named the target as an empty string ("is not a record index of table ",
 * and nothing after it). */
TEST(where_ref_gone_target)
{
    const char *p = tpath("qa20gone");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct g {
        int64_t id;
        mms_ref to;
    };
    static const mms_field gf[] = {MMS_F_I64(struct g, id), MMS_F_REF(struct g, to, "b")};
    static const mms_schema gs = MMS_SCHEMA(struct g, gf);
    mms_table *a, *b;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "b", &q3_schema, MMS_TABLE_CREATE, &b));
    OK(mms_table_open(s, "a", &gs, MMS_TABLE_CREATE, &a));
    struct g r = {.id = 1};
    OK(mms_table_append(a, &r, NULL));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "b"));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    char args[800], out[2000];
    snprintf(args, sizeof args, "get '%s' a to 1", p);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1);
    fprintf(stderr, "%s", out);
    ASSERT(strstr(out, "a.to: '1': field to refers to no table (its target was dropped)"));
    snprintf(args, sizeof args, "dump '%s' a --where 'to<1'", p);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1);
    ASSERT(strstr(out, "--where 'to<1': '1': field to refers to no table"));
    snprintf(args, sizeof args, "get '%s' a to ''", p); /* the records that refer to none */
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    ASSERT(strstr(out, "id,to\n1,\n"));
    rmrf(p);
}

/* mms recover --out DEST/ failed ("cannot create DEST/.mms-recover-PID"),
 * where copy and load take DEST/ as DEST; --out '' built the store and
 * then failed to rename it to "". */
TEST(recover_out_forms)
{
    const char *p = tpath("qa20rec");
    mms_table *t;
    mms_store *s = fill(p, &t, 10);
    OK(mms_close(s));
    const char *d = tpath("qa20recd");
    char args[1400], out[4000];
    snprintf(args, sizeof args, "recover '%s' --out '%s/'", p, d);
    int rc = run_tool(args, out, sizeof out);
    fprintf(stderr, "%s", out);
    ASSERT_EQ(rc, 0);
    ASSERT(strstr(out, "verify"));
    s = open_flags(d, MMS_RDONLY);
    verify_ok(s);
    OK(mms_close(s));
    snprintf(args, sizeof args, "recover '%s' --out ''", p);
    rc = run_tool(args, out, sizeof out);
    fprintf(stderr, "%s", out);
    ASSERT_EQ(rc, 2);
    ASSERT(strstr(out, "mms recover: DEST is empty"));
    ASSERT(!strstr(out, "info source")); /* refused before anything is read */
    rmrf(p);
    rmrf(d);
}

/* A dump whose last table ends in deleted slots and that has no root line
 * (the root is optional to load): those slots were appended when the next
 * table or the root line came, so the last table loaded short -- 1 slot of
 * 5, and later appends took other indexes than in the dumped store. */
TEST(load_trailing_gaps_without_root)
{
    const char *p = tpath("qa20noroot");
    char dump[600], cmd[1400];
    snprintf(dump, sizeof dump, "%s.jsonl", p);
    file_put(dump,
             "{\"mmstore_dump\":1,\"tables\":1}\n"
             "{\"table\":\"t\",\"record_size\":8,\"slots\":5,\"records\":1,"
             "\"fields\":[{\"name\":\"id\",\"kind\":\"i64\",\"offset\":0,\"size\":8}]}\n"
             "{\"i\":0,\"v\":[7]}\n"
             "{\"end\":true,\"records\":1}\n");
    snprintf(cmd, sizeof cmd, "'%s' load '%s' '%s' >/dev/null", getenv("MMS_TOOL"), dump, p);
    ASSERT_EQ(system(cmd), 0);
    mms_store *s = open_flags(p, MMS_RDONLY);
    mms_table *t;
    OK(mms_read_begin(s));
    OK(mms_table_find(s, "t", &t));
    ASSERT_EQ(mms_table_slots(t), 5);
    ASSERT_EQ(mms_table_count(t), 1);
    OK(mms_read_end(s));
    OK(mms_close(s));
    unlink(dump);
    rmrf(p);
}

int main(void)
{
    table_test_begin("test_qa20");
    RUN(index_migrate_abort_drop);
    RUN(index_float_chars_cover);
    RUN(index_regions_reused);
    RUN(index_drop_create_one_txn);
    RUN(index_fields_reordered);
    RUN(load_twice_named);
    RUN(load_huge_slot_count);
    RUN(where_ref_gone_target);
    RUN(recover_out_forms);
    RUN(load_trailing_gaps_without_root);
    return table_test_end();
}

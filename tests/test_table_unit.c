/*
 * test_table_unit.c -- the table API at its edges: bad input and limits.
 *
 *  1. bad       Bad names and schemas (each refused with its code and an
 *               mms_errdetail(), for a new and an existing table, leaving
 *               no table and no heap object behind), deletes of dead or
 *               missing slots, operations outside a transaction, a table
 *               created by an aborted transaction (and created again in
 *               another layout), NULL handles, mms_tables, many tables.
 *  2. limits    1023 tables (the most) in one handle, reopened; creates
 *               that fail at each step (injected) leave no trace.
 *  3. own       This handle's pointers into a table stay readable when
 *               mms_compact cuts the table's file, when the handle
 *               migrates the table to smaller records and when it drops
 *               it; cycles of that do not add mappings.
 *  4. gone      A dropped table's handle: mms_table_null fails as the
 *               other calls do, mms_table_ref gives no ref. ref_slot: mms_table_ref of an index no
 *               ref can hold is MMS_REF_NULL. ref_of_record: mms_ref_of
 *               of a record's pointer is the record's ref. ptr_record:
 *               mms_ptr of a record's ref is the record's pointer, NULL
 *               past the last record.
 *
 * The random model of records and strings is test_table_model's; schema
 * evolution, test_table_migrate's.
 */
#include "table_world.h"

#include <dirent.h>

#include "internal.h" /* mms__fault_arm() */

/* ========================================================================
 * 1. Bad input
 * ======================================================================== */
struct g2 {
    int16_t b;
    char c[5];
};
static const mms_field g2_fields[] = {MMS_F_I16(struct g2, b), MMS_F_CHARS(struct g2, c)};
static const mms_schema g2_schema = MMS_SCHEMA(struct g2, g2_fields);

static void bad_schema(mms_store *s, const char *what, int want, uint32_t rs,
                       const mms_field *f, uint32_t nf)
{
    CTX("bad input: %s", what);
    mms_schema sc = {rs, nf, f};
    size_t n0, n1;
    OK(mms_tables(s, NULL, 0, &n0));
    uint64_t h0 = heap_objects(s);
    mms_table *t = (mms_table *)&sc;
    int r = mms_table_open(s, "fresh", &sc, MMS_TABLE_CREATE, &t);
    if (r != want)
        FAILF("%s: mms_table_open returned %d (%s), expected %d (%s)", what, r,
              mms_strerror(r), want, mms_strerror(want));
    if (!mms_errdetail()[0])
        FAILF("%s: no mms_errdetail()", what);
    ASSERT(t == NULL);
    /* An existing table is checked the same way, before anything else. */
    r = mms_table_open(s, "ok", &sc, 0, &t);
    if (r != want)
        FAILF("%s (existing table): mms_table_open returned %d (%s), expected %d", what, r,
              mms_strerror(r), want);
    OK(mms_tables(s, NULL, 0, &n1));
    ASSERT_EQ(n1, n0);
    ASSERT_EQ(heap_objects(s), h0);
}

TEST(test_bad)
{
    const char *path = tpath("table-bad");
    double t0 = now_us();
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *t = NULL, *tg = NULL;
    size_t n = 99;
    uint64_t first = 0, idx = 0;
    CTX("bad input: outside a transaction");
    FAILS(mms_table_open(s, "x", &r2_schema, MMS_TABLE_CREATE, &t), MMS_ENOTXN);
    FAILS(mms_table_open(s, "x", &r2_schema, 0, &t), MMS_ENOENT);
    FAILS(mms_table_find(s, "x", &t), MMS_ENOENT);
    OK(mms_tables(s, NULL, 0, &n));
    ASSERT_EQ(n, 0);

    /* A table created by a transaction that aborts, in a store that had no
     * catalog yet. */
    CTX("bad input: aborted creation");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "ghost", &g1_schema, MMS_TABLE_CREATE, &tg));
    schema_same(mms_table_schema(tg), &g1_schema, "ghost");
    for (int i = 0; i < 5; i++) {
        struct g1 r = {i + 100, 0};
        OK(mms_str_new(s, "ghost", 5, &r.s));
        OK(mms_table_append(tg, &r, NULL));
    }
    OK(mms_table_append_many(tg, 1000, &first, NULL));
    uint32_t greg = table_region(tg);
    ASSERT_EQ(heap_objects(s), 1 + 1 + 5);
    OK(mms_txn_abort(s));
    ASSERT_EQ(mms_table_count(tg), 0);
    ASSERT_EQ(mms_table_slots(tg), 0);
    ASSERT(mms_table_get(tg, 0) == NULL);
    ASSERT(mms_table_array(tg) == NULL);
    ASSERT_EQ(mms_table_live(tg, 0), 0);
    ASSERT(mms_table_schema(tg) == NULL);
    ASSERT(strcmp(mms_table_name(tg), "ghost") == 0);
    FAILS(mms_table_find(s, "ghost", &t), MMS_ENOENT);
    FAILS(mms_table_open(s, "ghost", &g1_schema, 0, &t), MMS_ENOENT);
    OK(mms_tables(s, NULL, 0, &n));
    ASSERT_EQ(n, 0);
    ASSERT_EQ(heap_objects(s), 0);
    int file_left = region_files(path, greg, NULL, 0) > 0;
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_append(tg, NULL, &idx), MMS_ENOENT);
    FAILS(mms_table_append_many(tg, 3, &first, NULL), MMS_ENOENT);
    FAILS(mms_table_delete(tg, 0), MMS_ENOENT);
    OK(mms_txn_abort(s));
    verify_ok(s);
    /* Created again, with another layout: empty, in the new layout, and
     * the aborted records' bytes do not show through. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "ghost", &g2_schema, MMS_TABLE_CREATE, &t));
    ASSERT(t == tg); /* the same handle for the same name */
    ASSERT_EQ(mms_table_slots(t), 0);
    schema_same(mms_table_schema(t), &g2_schema, "ghost (created again)");
    OK(mms_table_append(t, NULL, &idx));
    ASSERT_EQ(idx, 0);
    OK(mms_table_append_many(t, 10, &first, NULL));
    ASSERT_EQ(first, 1);
    OK(mms_txn_commit(s));
    for (uint64_t i = 0; i < 11; i++) {
        const uint8_t *p = mms_table_get(t, i);
        for (size_t b = 0; b < sizeof(struct g2); b++)
            ASSERT_EQ(p[b], 0);
    }
    ASSERT_EQ(heap_objects(s), 1 + 1);
    verify_ok(s);

    /* Aborted with a catalog present; then another table takes its region.
     * (The header says the handle of an aborted creation must not be used
     * again; right after the abort it reports the table gone, which is all
     * that is checked of it here.) */
    OK(mms_txn_begin(s, 0));
    mms_table *tg2;
    OK(mms_table_open(s, "ghost2", &r2_schema, MMS_TABLE_CREATE, &tg2));
    OK(mms_table_append(tg2, NULL, NULL));
    uint32_t greg2 = table_region(tg2);
    OK(mms_txn_abort(s));
    OK(mms_tables(s, NULL, 0, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(mms_table_count(tg2), 0);
    OK(mms_txn_begin(s, 0));
    mms_table *other;
    OK(mms_table_open(s, "other", &g1_schema, MMS_TABLE_CREATE, &other));
    ASSERT_EQ(table_region(other), greg2);
    struct g1 gr = {5, 0};
    OK(mms_table_append(other, &gr, NULL));
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_table_count(other), 1);
    schema_same(mms_table_schema(other), &g1_schema, "other");
    OK(mms_close(s));
    s = sopen(path, 0);
    files_match_tables(path, s);
    OK(mms_table_open(s, "ghost", &g2_schema, 0, &t));
    ASSERT_EQ(mms_table_count(t), 11);
    verify_ok(s);

    /* Names. */
    CTX("bad input: names");
    char n63[64], n64[65];
    memset(n63, 'n', 63);
    n63[63] = 0;
    memset(n64, 'n', 64);
    n64[64] = 0;
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_open(s, "", &r2_schema, MMS_TABLE_CREATE, &t), MMS_EINVAL);
    ASSERT(mms_errdetail()[0]);
    FAILS(mms_table_open(s, n64, &r2_schema, MMS_TABLE_CREATE, &t), MMS_EINVAL);
    ASSERT(mms_errdetail()[0]);
    FAILS(mms_table_open(s, NULL, &r2_schema, MMS_TABLE_CREATE, &t), MMS_EINVAL);
    FAILS(mms_table_find(s, "", &t), MMS_EINVAL);
    FAILS(mms_table_find(s, n64, &t), MMS_EINVAL);
    FAILS(mms_table_open(s, "ok", &r2_schema, 0x80, &t), MMS_EINVAL);
    FAILS(mms_table_open(s, "ok", &r2_schema, MMS_TABLE_CREATE, NULL), MMS_EINVAL);
    FAILS(mms_table_open(s, "ok", NULL, MMS_TABLE_CREATE, &t), MMS_EINVAL);
    mms_table *tlong;
    OK(mms_table_open(s, n63, &r2_schema, MMS_TABLE_CREATE, &tlong));
    ASSERT(strcmp(mms_table_name(tlong), n63) == 0);
    mms_table *tok;
    OK(mms_table_open(s, "ok", &r2_schema, MMS_TABLE_CREATE, &tok));

    /* Schemas. */
    char f47[48], f48[49];
    memset(f47, 'f', 47);
    f47[47] = 0;
    memset(f48, 'f', 48);
    f48[48] = 0;
    {
        const mms_field ov[] = {{"a", MMS_KIND_I64, 0, 8, NULL, NULL},
                                {"b", MMS_KIND_I32, 4, 4, NULL, NULL}};
        bad_schema(s, "overlapping fields", MMS_EINVAL, 16, ov, 2);
        const mms_field ov2[] = {{"a", MMS_KIND_CHARS, 0, 10, NULL, NULL},
                                 {"b", MMS_KIND_U8, 9, 1, NULL, NULL}};
        bad_schema(s, "overlapping fields (chars)", MMS_EINVAL, 16, ov2, 2);
        const mms_field sz1[] = {{"a", MMS_KIND_I32, 0, 8, NULL, NULL}};
        bad_schema(s, "i32 of 8 bytes", MMS_EINVAL, 8, sz1, 1);
        const mms_field sz2[] = {{"a", MMS_KIND_F64, 0, 4, NULL, NULL}};
        bad_schema(s, "f64 of 4 bytes", MMS_EINVAL, 8, sz2, 1);
        const mms_field sz3[] = {{"a", MMS_KIND_REF, 0, 4, "ok", NULL}};
        bad_schema(s, "ref of 4 bytes", MMS_EINVAL, 8, sz3, 1);
        const mms_field sz4[] = {{"a", MMS_KIND_CHARS, 0, 0, NULL, NULL}};
        bad_schema(s, "chars of 0 bytes", MMS_EINVAL, 8, sz4, 1);
        /* It said "field a is 0 bytes, a chars is 0" (seen before the fix). */
        ASSERT(strstr(mms_errdetail(), "a chars field is 1 byte or more") != NULL);
        const mms_field sz5[] = {{"a", MMS_KIND_BOOL, 0, 2, NULL, NULL}};
        bad_schema(s, "bool of 2 bytes", MMS_EINVAL, 8, sz5, 1);
        const mms_field k0[] = {{"a", 0, 0, 4, NULL, NULL}};
        bad_schema(s, "kind 0", MMS_EINVAL, 8, k0, 1);
        const mms_field k16[] = {{"a", MMS_KIND_BLOB + 1, 0, 8, NULL, NULL}};
        bad_schema(s, "kind past the last", MMS_EINVAL, 8, k16, 1);
        const mms_field k99[] = {{"a", 99, 0, 4, NULL, NULL}};
        bad_schema(s, "kind 99", MMS_EINVAL, 8, k99, 1);
        const mms_field rf[] = {{"r", MMS_KIND_REF, 0, 8, "nowhere", NULL}};
        bad_schema(s, "ref to a table that does not exist", MMS_ENOENT, 8, rf, 1);
        const mms_field rg[] = {{"r", MMS_KIND_REF, 0, 8, "ghost2", NULL}};
        bad_schema(s, "ref to a table whose creation aborted", MMS_ENOENT, 8, rg, 1);
        const mms_field rn[] = {{"r", MMS_KIND_REF, 0, 8, NULL, NULL}};
        bad_schema(s, "ref without a target", MMS_EINVAL, 8, rn, 1);
        const mms_field re[] = {{"r", MMS_KIND_REF, 0, 8, "", NULL}};
        bad_schema(s, "ref with an empty target", MMS_EINVAL, 8, re, 1);
        const mms_field dup[] = {{"a", MMS_KIND_I32, 0, 4, NULL, NULL},
                                 {"a", MMS_KIND_I32, 4, 4, NULL, NULL}};
        bad_schema(s, "two fields called a", MMS_EINVAL, 8, dup, 2);
        const mms_field out[] = {{"a", MMS_KIND_I64, 4, 8, NULL, NULL}};
        bad_schema(s, "a field past the record", MMS_EINVAL, 8, out, 1);
        const mms_field out2[] = {{"a", MMS_KIND_U8, 8, 1, NULL, NULL}};
        bad_schema(s, "a field at the record's end", MMS_EINVAL, 8, out2, 1);
        const mms_field huge[] = {{"a", MMS_KIND_U32, 0xfffffffcu, 4, NULL, NULL}};
        bad_schema(s, "an offset near 2^32", MMS_EINVAL, 8, huge, 1);
        const mms_field nm0[] = {{"", MMS_KIND_I32, 0, 4, NULL, NULL}};
        bad_schema(s, "an empty field name", MMS_EINVAL, 8, nm0, 1);
        const mms_field nmn[] = {{NULL, MMS_KIND_I32, 0, 4, NULL, NULL}};
        bad_schema(s, "a NULL field name", MMS_EINVAL, 8, nmn, 1);
        const mms_field nm48[] = {{f48, MMS_KIND_I32, 0, 4, NULL, NULL}};
        bad_schema(s, "a field name of 48 bytes", MMS_EINVAL, 8, nm48, 1);
        static const char big_dflt[40] = "x";
        const mms_field dfl[] = {{"a", MMS_KIND_CHARS, 0, 40, NULL, big_dflt}};
        bad_schema(s, "a default for a 40-byte field", MMS_EINVAL, 40, dfl, 1);
        const mms_field okf[] = {{"a", MMS_KIND_I32, 0, 4, NULL, NULL}};
        bad_schema(s, "no fields", MMS_EINVAL, 8, okf, 0);
        bad_schema(s, "NULL fields", MMS_EINVAL, 8, NULL, 1);
        bad_schema(s, "record size 0", MMS_EINVAL, 0, okf, 1);
        bad_schema(s, "record size over the limit", MMS_EINVAL, (16u << 20) + 1, okf, 1);
        /* The edges that are fine. */
        const mms_field good[] = {{f47, MMS_KIND_I32, 0, 4, NULL, NULL},
                                  {"self", MMS_KIND_REF, 8, 8, "edge", NULL},
                                  {"last", MMS_KIND_U8, 16, 1, NULL, NULL}};
        mms_schema gs = {17, 3, good};
        mms_table *te;
        OK(mms_table_open(s, "edge", &gs, MMS_TABLE_CREATE, &te));
        schema_same(mms_table_schema(te), &gs, "edge");
    }
    OK(mms_txn_commit(s));
    verify_ok(s);

    /* Deletes of slots that are not live; operations outside a
     * transaction. */
    CTX("bad input: deletes and transactions");
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 3; i++)
        OK(mms_table_append(tok, NULL, NULL));
    OK(mms_table_delete(tok, 1));
    FAILS(mms_table_delete(tok, 1), MMS_ERANGE);
    ASSERT(mms_errdetail()[0]);
    FAILS(mms_table_delete(tok, 3), MMS_ERANGE);
    FAILS(mms_table_delete(tok, UINT64_MAX), MMS_ERANGE);
    FAILS(mms_table_delete(tok, MMS_SLOT_MASK + 1), MMS_ERANGE);
    FAILS(mms_table_append_many(tok, 1, NULL, NULL), MMS_EINVAL);
    FAILS(mms_table_append(NULL, NULL, NULL), MMS_EINVAL);
    FAILS(mms_table_delete(NULL, 0), MMS_EINVAL);
    OK(mms_table_append_many(tok, 0, &first, NULL));
    ASSERT_EQ(first, 3);
    /* Counts whose sum with the 3 slots wraps: refused, nothing written
     * (UINT64_MAX grew the table to 2 slots and zeroed 2^64 - 1 records). */
    FAILS(mms_table_append_many(tok, UINT64_MAX, &first, NULL), MMS_EFULL);
    FAILS(mms_table_append_many(tok, UINT64_MAX - 2, &first, NULL), MMS_EFULL);
    FAILS(mms_table_append_many(tok, MMS_SLOT_MASK, &first, NULL), MMS_EFULL);
    ASSERT_EQ(mms_table_slots(tok), 3);
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_table_count(tok), 2);
    ASSERT_EQ(mms_table_slots(tok), 3);
    FAILS(mms_table_append(tok, NULL, &idx), MMS_ENOTXN);
    FAILS(mms_table_append_many(tok, 1, &first, NULL), MMS_ENOTXN);
    FAILS(mms_table_delete(tok, 0), MMS_ENOTXN);
    FAILS(mms_table_delete(tok, 1), MMS_ENOTXN);
    mms_ref sref;
    FAILS(mms_str_new(s, "x", 1, &sref), MMS_ENOTXN);
    ASSERT_EQ(mms_table_count(tok), 2);
    ASSERT_EQ(mms_table_slots(tok), 3);
    ASSERT_EQ(mms_table_count(NULL), 0);
    ASSERT_EQ(mms_table_slots(NULL), 0);
    ASSERT(mms_table_get(NULL, 0) == NULL);
    ASSERT(mms_table_array(NULL) == NULL);
    ASSERT(mms_table_schema(NULL) == NULL);
    ASSERT(mms_table_name(NULL) == NULL);
    ASSERT_EQ(mms_table_live(NULL, 0), 0);
    ASSERT(mms_str_get(s, 0, NULL) == NULL);

    /* Many tables: the catalog grows past its first sizes. */
    CTX("bad input: many tables");
    OK(mms_tables(s, NULL, 0, &n));
    size_t n0 = n;
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "many%02d", i);
        mms_table *tm;
        OK(mms_table_open(s, name, &r2_schema, MMS_TABLE_CREATE, &tm));
        for (int j = 0; j <= i; j++)
            OK(mms_table_append(tm, NULL, NULL));
        if (i == 9) {
            OK(mms_txn_commit(s));
            OK(mms_txn_begin(s, 0));
        }
    }
    OK(mms_txn_commit(s));
    mms_table_info ti[64];
    OK(mms_tables(s, ti, 64, &n));
    ASSERT_EQ(n, n0 + 20);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++) {
            ASSERT_NE(ti[i].region, ti[j].region);
            ASSERT(strcmp(ti[i].name, ti[j].name) != 0);
        }
    size_t small = 0;
    mms_table_info two[2];
    OK(mms_tables(s, two, 2, &small));
    ASSERT_EQ(small, n);
    ASSERT(strcmp(two[0].name, ti[0].name) == 0 && strcmp(two[1].name, ti[1].name) == 0);
    FAILS(mms_tables(s, NULL, 2, &small), MMS_EINVAL);
    FAILS(mms_tables(s, two, 2, NULL), MMS_EINVAL);
    verify_ok(s);
    OK(mms_close(s));
    s = sopen(path, MMS_RDONLY);
    OK(mms_tables(s, ti, 64, &n));
    ASSERT_EQ(n, n0 + 20);
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "many%02d", i);
        mms_table *tm;
        OK(mms_table_find(s, name, &tm));
        ASSERT_EQ(mms_table_count(tm), (uint64_t)i + 1);
        OK(mms_table_open(s, name, &r2_schema, 0, &tm));
    }
    FAILS(mms_table_open(s, "newone", &r2_schema, MMS_TABLE_CREATE, &t), MMS_ERDONLY);
    OK(mms_close(s));
    s = sopen(path, 0);
    files_match_tables(path, s);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(path);
    fprintf(stderr, "   aborted creation left its region file: %s; %.1f s\n",
            file_left ? "yes (ignored, replaced)" : "no", (now_us() - t0) / 1e6);
}

/* ========================================================================
 * 2. The region limit: 1023 tables, the most a store holds, in one handle
 *    (with fixed 256 GiB reservations the address space ran out at ~510),
 *    reopened (the region table is then longer than the two pages a
 *    header read takes first). A create that fails -- injected ENOSPC
 *    making the file, ENOMEM mapping it -- leaves no trace: same tables,
 *    same heap objects, no file, and the transaction commits.
 * ======================================================================== */
TEST(test_limits)
{
    const char *path = tpath("table-limits");
    double t0 = now_us();
    mms_store *s = sopen(path, MMS_CREATE);
    const unsigned most = MMS_MAX_REGIONS - 1;
    OK(mms_txn_begin(s, 0));
    unsigned made = 0, refused = 0;
    for (unsigned i = 0; i < most; i++) {
        if (i % 100 == 50) {
            /* A failure at each step of making a region. */
            static const struct {
                enum mms__op op;
                const char *name;
                unsigned long nth;
                int err;
            } inj[] = {{MMS__OP_FALLOCATE, "fallocate", 1, ENOSPC}, {MMS__OP_OPEN, "open", 1, EMFILE},
                       {MMS__OP_MMAP, "mmap", 2, ENOMEM}, {MMS__OP_MMAP, "mmap", 3, ENOMEM},
                       {MMS__OP_MMAP, "mmap", 4, ENOMEM}};
            size_t n0, n1;
            OK(mms_tables(s, NULL, 0, &n0));
            uint64_t h0 = heap_objects(s);
            unsigned k = (i / 100) % (sizeof inj / sizeof inj[0]);
            CTX("limits: create with %s %d at call %lu", inj[k].name, inj[k].err,
                inj[k].nth);
            mms__fault_arm(inj[k].op, inj[k].nth, inj[k].err);
            mms_table *t = NULL;
            int r = mms_table_open(s, "doomed", &r2_schema, MMS_TABLE_CREATE, &t);
            mms__fault_reset();
            if (r == 0) {
                BUG("the create succeeded despite the injected failure");
            } else {
                refused++;
                ASSERT(t == NULL);
                OK(mms_tables(s, NULL, 0, &n1));
                ASSERT_EQ(n1, n0);
                ASSERT_EQ(heap_objects(s), h0);
                FAILS(mms_table_find(s, "doomed", &t), MMS_ENOENT);
            }
        }
        char name[16];
        snprintf(name, sizeof name, "t%04u", i);
        CTX("limits: table %u", i);
        mms_table *t;
        OK(mms_table_open(s, name, &r2_schema, MMS_TABLE_CREATE, &t));
        struct r2 rec = {(uint8_t)i, {(char)('a' + i % 26), 0}};
        OK(mms_table_append(t, &rec, NULL));
        made++;
    }
    mms_table *t = NULL;
    FAILS(mms_table_open(s, "one-too-many", &r2_schema, MMS_TABLE_CREATE, &t), MMS_EFULL);
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
    for (int ro = 1; ro >= 0; ro--) {
        CTX("limits: reopened %s", ro ? "read-only" : "read-write");
        s = sopen(path, ro ? MMS_RDONLY : 0);
        size_t n;
        OK(mms_tables(s, NULL, 0, &n));
        ASSERT_EQ(n, most);
        for (unsigned i = 0; i < most; i += 97) {
            char name[16];
            snprintf(name, sizeof name, "t%04u", i);
            OK(mms_table_find(s, name, &t));
            ASSERT_EQ(mms_table_count(t), 1);
            const struct r2 *r = mms_table_get(t, 0);
            ASSERT_EQ(r->a, (uint8_t)i);
        }
        if (!ro) {
            /* No file of the failed creates is left once a checkpoint ran. */
            OK(mms_checkpoint(s));
            DIR *d = opendir(path);
            ASSERT(d);
            unsigned files = 0;
            for (struct dirent *de; (de = readdir(d));)
                files += strncmp(de->d_name, "region-", 7) == 0;
            closedir(d);
            ASSERT_EQ(files, most + 1);
        }
        verify_ok(s);
        OK(mms_close(s));
    }
    /* An index takes a region too: a table dropped for one, the next
     * create is refused naming both (it said "at most 1023 tables" with
     * 1022 of them). */
    CTX("limits: an index in the last region");
    s = sopen(path, 0);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "t0001"));
    OK(mms_table_find(s, "t0000", &t));
    OK(mms_index_create(t, "a", MMS_INDEX_ORDERED));
    FAILS(mms_table_open(s, "one-too-many", &r2_schema, MMS_TABLE_CREATE, &t), MMS_EFULL);
    ASSERT(strstr(mms_errdetail(), "tables and indexes") != NULL);
    OK(mms_txn_abort(s));
    OK(mms_close(s));
    rmrf(path);
    fprintf(stderr, "   %u tables, %u failed creates left no trace; %.1f s\n", made, refused,
            (now_us() - t0) / 1e6);
}

/* The VmFlags of the mapping holding p: 1 if it has "hg" (MADV_HUGEPAGE),
 * 0 if not; -1 if p is in no mapping. */
static int vm_huge(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    ASSERT(f);
    char line[1024];
    int in = 0, res = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            in = lo <= (uintptr_t)p && (uintptr_t)p < hi;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            res = strstr(line, " hg") != NULL;
            break;
        }
    }
    fclose(f);
    return res;
}

struct f8 {
    double x;
};
static const mms_field f8_fields[] = {MMS_F_F64(struct f8, x)};
static const mms_schema f8_schema = MMS_SCHEMA(struct f8, f8_fields);

/* Append n records in a new store opened with flags (MMS_HUGE set to env,
 * or unset if NULL); 1 if the records' pages were advised 2 MiB pages
 * when the append wrote them, 0 if not. The values read back either way. */
static int bulk_advised(const char *path, unsigned flags, const char *env, uint64_t n)
{
    if (env)
        ASSERT(setenv("MMS_HUGE", env, 1) == 0);
    else
        ASSERT(unsetenv("MMS_HUGE") == 0);
    rmrf(path);
    mms_store *s = open_flags(path, MMS_CREATE | flags);
    ASSERT(unsetenv("MMS_HUGE") == 0);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "x", &f8_schema, MMS_TABLE_CREATE, &t));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, n, &first, &where));
    struct f8 *r = where;
    int head = vm_huge(r), tail = vm_huge(r + n - 1);
    ASSERT(head >= 0 && head == tail);
    for (uint64_t i = 0; i < n; i++)
        r[i].x = (double)i;
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    s = open_flags(path, MMS_RDONLY);
    OK(mms_table_find(s, "x", &t));
    OK(mms_read_begin(s));
    ASSERT_EQ(mms_table_count(t), n);
    const struct f8 *a = mms_table_array(t);
    ASSERT(a[0].x == 0 && a[n / 2].x == (double)(n / 2) && a[n - 1].x == (double)(n - 1));
    ASSERT_EQ(vm_huge(a), 0); /* a read-only handle advises nothing */
    mms_read_end(s);
    verify_ok(s);
    OK(mms_close(s));
    return head;
}

/* The 2 MiB tests set MMS_HUGE in turn: its value before, put back after
 * (unset if it had none). Without transparent huge pages they skip. */
struct huge_env {
    bool had;
    char keep[16];
};

static bool huge_begin(struct huge_env *h)
{
    if (access("/sys/kernel/mm/transparent_hugepage", F_OK) != 0) {
        fprintf(stderr, "   no transparent huge pages: skipped\n");
        return false;
    }
    const char *v = getenv("MMS_HUGE");
    h->had = v != NULL;
    snprintf(h->keep, sizeof h->keep, "%s", v ? v : "");
    return true;
}

static void huge_end(const struct huge_env *h)
{
    ASSERT((h->had ? setenv("MMS_HUGE", h->keep, 1) : unsetenv("MMS_HUGE")) == 0);
}

/* MMS_NOHUGE: by default a bulk append of 2 MiB or more writes pages
 * advised 2 MiB (so that the page cache holds them in 2 MiB folios); a
 * smaller one does not; MMS_NOHUGE turns it off, MMS_HUGE=0|1 in the
 * environment wins over the flag. The advice itself is checked (the "hg"
 * flag of the mapping), never a timing or the folio sizes (the file
 * system of the test directory decides those). */
static void test_bulk_huge(void)
{
    struct huge_env env;
    if (!huge_begin(&env))
        return;
    const char *path = tpath("bulk_huge");
    const uint64_t big = (3u << 20) / sizeof(struct f8), small = (1u << 20) / sizeof(struct f8);
    ASSERT_EQ(bulk_advised(path, 0, NULL, big), 1);
    ASSERT_EQ(bulk_advised(path, 0, NULL, small), 0);
    ASSERT_EQ(bulk_advised(path, MMS_NOHUGE, NULL, big), 0);
    ASSERT_EQ(bulk_advised(path, 0, "0", big), 0);
    ASSERT_EQ(bulk_advised(path, MMS_NOHUGE, "1", big), 1);
    huge_end(&env);
    rmrf(path);
}

/* mms_advise's errors, each with a detail (they had none: mms_errdetail()
 * said what an earlier call had failed on), and the hint itself. */
TEST(test_advise)
{
    const char *path = tpath("advise");
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "f8", &f8_schema, MMS_TABLE_CREATE, &t));
    void *where;
    uint64_t first;
    OK(mms_table_append_many(t, 4096, &first, &where));
    OK(mms_txn_commit(s));
    const char *a = mms_table_array(t);
    FAILS(mms_advise(NULL, 10, MMS_ADVISE_HUGE), MMS_EINVAL);
    ASSERT(mentions(mms_errdetail(), "NULL"));
    FAILS(mms_advise(a, 10, 7), MMS_EINVAL);
    ASSERT(mentions(mms_errdetail(), "advice"));
    FAILS(mms_advise(a, UINT64_MAX, MMS_ADVISE_HUGE), MMS_EINVAL);
    ASSERT(mentions(mms_errdetail(), "address space"));
    OK(mms_advise(a, 0, MMS_ADVISE_HUGE));
    /* A range that is not mapped: the kernel's -ENOMEM, said so. */
    char *gone = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(gone != MAP_FAILED);
    munmap(gone, 8192);
    int r = mms_advise(gone, 8192, MMS_ADVISE_HUGE);
    if (r != MMS_ENOTSUP) {
        FAILS(r, -ENOMEM);
        ASSERT(mentions(mms_errdetail(), "MADV_HUGEPAGE"));
    }
    r = mms_advise(a, 4096 * sizeof(struct f8), MMS_ADVISE_HUGE);
    ASSERT(r == 0 || r == MMS_ENOTSUP);
    if (r == 0)
        ASSERT_EQ(vm_huge(a), 1);
    OK(mms_close(s));
    rmrf(path);
}

struct u8rec {
    uint64_t k;
};
static const mms_field u8_fields[] = {MMS_F_U64(struct u8rec, k)};
static const mms_schema u8_schema = MMS_SCHEMA(struct u8rec, u8_fields);

/* The VmFlags "hg" of the mappings of the store's index file (region 2,
 * the one index of the one table; a write handle maps it twice, its user
 * view and the file view that commits apply through): 1 if one of them has
 * it, 0 if none, -1 if the file is not mapped. */
static int index_vm_huge(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ASSERT(f);
    char line[4400], want[4200];
    snprintf(want, sizeof want, "%s/region-2-", path);
    int res = -1;
    while (res < 1 && fgets(line, sizeof line, f))
        if (strstr(line, want))
            res = vm_huge((void *)(uintptr_t)strtoull(line, NULL, 16));
    fclose(f);
    return res;
}

/* A handle opened with flags (MMS_HUGE set to env, or unset if NULL) on a
 * store whose hash index is 4 MiB: 1 if the open advised the index's
 * mapping 2 MiB pages, 0 if not. A find changes nothing of that, and
 * answers either way. */
static int index_advised(const char *path, unsigned flags, const char *env)
{
    if (env)
        ASSERT(setenv("MMS_HUGE", env, 1) == 0);
    else
        ASSERT(unsetenv("MMS_HUGE") == 0);
    mms_store *s = open_flags(path, flags);
    ASSERT(unsetenv("MMS_HUGE") == 0);
    mms_table *t;
    mms_index *ix;
    uint64_t key = 77777, at = 0;
    OK(mms_table_find(s, "u", &t));
    int res = index_vm_huge(path); /* advised when mapped: at open */
    if (flags & MMS_RDONLY)
        OK(mms_read_begin(s));
    OK(mms_index_open(t, "k", &ix));
    OK(mms_index_find(ix, &key, &at));
    ASSERT_EQ(at, 77777);
    ASSERT_EQ(index_vm_huge(path), res); /* a lookup changes nothing */
    if (flags & MMS_RDONLY) {
        mms_read_end(s);
    } else {
        /* A writer's commits keep its advised index right: record 99999
         * takes a new key (once: a later call finds it moved already). */
        uint64_t moved = 7000000, old = 99999;
        if (mms_index_find(ix, &moved, &at) == MMS_ENOTFOUND) {
            OK(mms_txn_begin(s, 0));
            ((struct u8rec *)mms_table_get(t, 99999))->k = moved;
            OK(mms_txn_commit(s));
        }
        OK(mms_index_find(ix, &moved, &at));
        ASSERT_EQ(at, 99999);
        ASSERT_EQ(mms_index_find(ix, &old, &at), MMS_ENOTFOUND);
        OK(mms_read_begin(s));
        OK(mms_index_find(ix, &moved, &at));
        ASSERT_EQ(at, 99999);
        mms_read_end(s);
    }
    OK(mms_close(s));
    return res;
}

/* Indexes in 2 MiB pages: a handle's index mapping is advised
 * MADV_HUGEPAGE when the handle maps it (readers and writers),
 * so that an index read back from the disk comes back in 2 MiB folios, as
 * its bulk build wrote it; not with MMS_NORDAHEAD (random reads of a store
 * bigger than memory), MMS_NOHUGE or MMS_HUGE=0. As test_bulk_huge, the
 * advice is checked, not its effect. */
static void test_index_huge(void)
{
    struct huge_env env;
    if (!huge_begin(&env))
        return;
    const char *path = tpath("index_huge");
    rmrf(path);
    const uint64_t n = 100000; /* 2^18 slots of 16 bytes */
    mms_store *s = open_flags(path, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "u", &u8_schema, MMS_TABLE_CREATE, &t));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, n, &first, &where));
    for (uint64_t i = 0; i < n; i++)
        ((struct u8rec *)where)[i].k = i;
    OK(mms_index_create(t, "k", MMS_INDEX_HASH));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    ASSERT_EQ(index_advised(path, MMS_RDONLY, NULL), 1);
    ASSERT_EQ(index_advised(path, 0, NULL), 1);
    ASSERT_EQ(index_advised(path, MMS_RDONLY | MMS_NORDAHEAD, NULL), 0);
    ASSERT_EQ(index_advised(path, MMS_RDONLY | MMS_NOHUGE, NULL), 0);
    ASSERT_EQ(index_advised(path, MMS_RDONLY, "0"), 0);
    ASSERT_EQ(index_advised(path, MMS_NOHUGE, NULL), 0);
    huge_end(&env);
    rmrf(path);
}

/* ========================================================================
 * 3. This handle's pointers while its table shrinks and goes
 * ======================================================================== */
struct wide {
    int64_t k;
    char pad[56];
};
static const mms_field wide_fields[] = {MMS_F_I64(struct wide, k), MMS_F_CHARS(struct wide, pad)};
static const mms_schema wide_schema = MMS_SCHEMA(struct wide, wide_fields);
#define NWIDE 4000

/* Lines of /proc/self/maps: the process's mappings. */
static unsigned maps_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ASSERT(f);
    unsigned n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Read [p, p + len) in a child process (a copy of this one's mappings):
 * 0 if every byte is zero, 1 if not, -signal if a read faulted -- so a
 * fault fails the check instead of ending the program. */
static int read_in_child(const char *p, uint64_t len)
{
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int any = 0;
        for (uint64_t i = 0; i < len; i++)
            any |= ((const volatile char *)p)[i] != 0;
        _exit(any);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

struct narrow {
    int64_t k;
};
static const mms_field narrow_fields[] = {MMS_F_I64(struct narrow, k)};
static const mms_schema narrow_schema = MMS_SCHEMA(struct narrow, narrow_fields);

/* A table "w" of NWIDE records of 64 bytes, k = i + 1. */
static mms_table *wide_table(mms_store *s)
{
    mms_table *t;
    uint64_t first;
    void *where;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "w", &wide_schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_append_many(t, NWIDE, &first, &where));
    for (int64_t i = 0; i < NWIDE; i++)
        ((struct wide *)where)[i].k = i + 1;
    OK(mms_txn_commit(s));
    return t;
}

TEST(test_own_pointers)
{
    const char *path = tpath("table-own");
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *t = wide_table(s);
    uint64_t first;
    void *where;
    const uint64_t len = (uint64_t)NWIDE * sizeof(struct wide);
    char *arr = mms_table_array(t);

    /* The upper half deleted, then compacted: the table is 2000 slots and
     * its file is cut there; a pointer to a record that left reads zeros
     * (it faulted). */
    CTX("own: compaction");
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = NWIDE / 2; i < NWIDE; i++)
        OK(mms_table_delete(t, i));
    OK(mms_txn_commit(s));
    mms_compact_stats cs;
    OK(mms_compact(s, &cs));
    ASSERT_EQ(mms_table_slots(t), NWIDE / 2);
    ASSERT_EQ(read_in_child(arr + len / 2, len / 2), 0);
    ASSERT_EQ(((struct wide *)arr)[NWIDE / 2 - 1].k, NWIDE / 2);

    /* Migrated by this handle to 8-byte records: the old pointers see the
     * new layout, zeros past it. */
    CTX("own: migration to smaller records");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "w", &narrow_schema, 0, &t));
    OK(mms_txn_commit(s));
    OK(mms_checkpoint(s));
    ASSERT(mms_table_array(t) == arr);
    ASSERT_EQ(((int64_t *)arr)[NWIDE / 2 - 1], NWIDE / 2);
    ASSERT_EQ(read_in_child(arr + NWIDE / 2 * 8, len - NWIDE / 2 * 8), 0);

    /* Dropped: readable (this handle maps the region until it next follows
     * the header: the old bytes, or zeros). */
    CTX("own: drop");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "w"));
    OK(mms_txn_commit(s));
    OK(mms_checkpoint(s));
    ASSERT_GE(read_in_child(arr, len), 0);

    /* Cycles of create, migrate to smaller records and drop: the mappings
     * of the process do not grow with them. */
    unsigned maps[7];
    for (int cycle = 0; cycle < 7; cycle++) {
        CTX("own: cycle %d", cycle);
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "w", &wide_schema, MMS_TABLE_CREATE, &t));
        OK(mms_table_append_many(t, NWIDE / 4 * (uint64_t)(cycle % 3 + 1), &first, &where));
        OK(mms_txn_commit(s));
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "w", &narrow_schema, 0, &t));
        OK(mms_txn_commit(s));
        OK(mms_checkpoint(s));
        ASSERT_GE(read_in_child(arr, len), 0);
        OK(mms_txn_begin(s, 0));
        OK(mms_table_drop(s, "w"));
        OK(mms_txn_commit(s));
        OK(mms_checkpoint(s));
        ASSERT_GE(read_in_child(arr, len), 0);
        maps[cycle] = maps_count();
    }
    /* Table sizes repeat every three cycles: 1 to 3 against 4 to 6. */
    unsigned early = 0, later = 0;
    for (int c = 1; c < 7; c++) {
        unsigned *m = c < 4 ? &early : &later;
        *m = maps[c] > *m ? maps[c] : *m;
    }
    ASSERT_LE(later, early);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(path);
}

/* The handle of a dropped table fails every call as a gone table's:
 * mms_table_null said MMS_EINVAL where the others say MMS_ENOENT. */
TEST(test_gone_null)
{
    const char *path = tpath("table-gone");
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *t = wide_table(s);
    uint32_t treg = table_region(t);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "w"));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    int gone = mms_table_delete(t, 0);
    ASSERT_EQ(gone, MMS_ENOENT);
    FAILS(mms_table_null_set(t, 0, 0, 1), gone);
    OK(mms_txn_abort(s));
    FAILS(mms_table_null(t, 0, 0), gone);
    FAILS(mms_table_null(NULL, 0, 0), MMS_EINVAL);
    /* Its refs are no record's: they named the records of the table that
     * took its region next. */
    ASSERT_EQ(mms_table_ref(t, 0), MMS_REF_NULL);
    mms_table *n;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "n", &wide_schema, MMS_TABLE_CREATE, &n));
    OK(mms_table_append(n, NULL, NULL));
    OK(mms_txn_commit(s));
    ASSERT_EQ(table_region(n), treg);
    ASSERT_EQ(mms_table_ref(t, 0), MMS_REF_NULL);
    ASSERT_EQ(mms_table_ref(n, 0), MMS_REF_MAKE(table_region(n), 0));
    OK(mms_close(s));
    rmrf(path);
}

/* An index past the 48 bits of a ref's slot is no record's ref: it was
 * masked (2^48 gave record 0's ref). */
TEST(test_ref_slot)
{
    const char *path = tpath("table-refslot");
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *t = wide_table(s);
    ASSERT_EQ(mms_table_ref(t, 5), MMS_REF_MAKE(table_region(t), 5));
    ASSERT_EQ(mms_table_ref(t, MMS_SLOT_MASK), MMS_REF_MAKE(table_region(t), MMS_SLOT_MASK));
    ASSERT_EQ(mms_table_ref(t, MMS_SLOT_MASK + 1), MMS_REF_NULL);
    ASSERT_EQ(mms_table_ref(t, UINT64_MAX), MMS_REF_NULL);
    ASSERT_EQ(mms_table_ref(NULL, 0), MMS_REF_NULL);
    OK(mms_close(s));
    rmrf(path);
}

/* A record's ref and its pointer, both ways. mms_ref_of of a pointer to a
 * record is the record's ref (its index, as MMS_REC and the commit's ref
 * checks read it): it was the byte offset, so record 1's "ref" named record
 * 64, and one past the last record's offset a ref the commit refused.
 * Inside a record there is no ref. mms_ptr of a table ref is the record's
 * pointer, as mms_rec gives it: it took the slot for a byte offset, so
 * record 1's ref gave a pointer one byte into record 0, and a ref past the
 * last record (slot NWIDE, inside the region's bytes) a pointer instead of
 * NULL. */
TEST(test_record_ref_and_pointer)
{
    const char *path = tpath("table-refptr");
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *t = wide_table(s);
    mms_ref r = 0;
    OK(mms_ref_of(s, mms_table_get(t, 1), &r));
    ASSERT_EQ(r, mms_table_ref(t, 1));
    ASSERT(mms_rec(s, r) == mms_table_get(t, 1));
    OK(mms_ref_of(s, mms_table_get(t, NWIDE - 1), &r));
    ASSERT_EQ(r, mms_table_ref(t, NWIDE - 1));
    r = 12345;
    FAILS(mms_ref_of(s, (char *)mms_table_get(t, 1) + 8, &r), MMS_EINVAL);
    ASSERT_EQ(r, 12345);

    ASSERT(mms_ptr(s, mms_table_ref(t, 0)) == mms_table_get(t, 0));
    ASSERT(mms_ptr(s, mms_table_ref(t, 1)) == mms_table_get(t, 1));
    ASSERT(mms_ptr(s, mms_table_ref(t, NWIDE - 1)) == mms_table_get(t, NWIDE - 1));
    ASSERT(mms_ptr(s, mms_table_ref(t, NWIDE)) == NULL);
    ASSERT_EQ(mms_last_error(), MMS_ERANGE);
    ASSERT(mms_errdetail()[0]);
    ASSERT(mms_ptr(s, mms_table_ref(t, MMS_SLOT_MASK)) == NULL);
    /* No handle: said so, not the code of an earlier failure. */
    ASSERT(mms_ptr(NULL, mms_table_ref(t, 0)) == NULL);
    ASSERT_EQ(mms_last_error(), MMS_EINVAL);
    OK(mms_close(s));
    rmrf(path);
}

int main(void)
{
    table_test_begin("test_table_unit");
    RUN(test_bad);
    RUN(test_limits);
    RUN(test_bulk_huge);
    RUN(test_index_huge);
    RUN(test_advise);
    RUN(test_own_pointers);
    RUN(test_gone_null);
    RUN(test_ref_slot);
    RUN(test_record_ref_and_pointer);
    return table_test_end();
}

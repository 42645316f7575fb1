/*
 * test_dump.c -- the whole store as text and back (`mms dump DIR --all
 * OUT`, `mms load FILE DIR`).
 *
 *  1. kinds     A store with every field kind (extreme values, NaN and
 *               infinities, -0, chars with bytes after a NUL), strings in
 *               many scripts and with invalid UTF-8, blobs, missing values,
 *               refs within a table and across tables, deleted records
 *               (also at the end of a table), hash and ordered indexes,
 *               and a root that is a heap object: dump -> load -> dump is
 *               byte for byte the same, and the loaded store equals the
 *               first record by record (same indices, same refs, same
 *               indexes) and verifies.
 *  2. graph     A root object graph: the root is a raw heap object holding
 *               refs to other heap objects (raw small, large and huge ones,
 *               strings not owned by any record, objects in slabs of 2
 *               pages, among freed space) and to table records, in tables
 *               whose region ids the load must keep (a dropped table's
 *               region is free, an index holds another, and the tables
 *               load in another order than they were made). dump -> load
 *               -> dump is byte for byte the same, and in the loaded store
 *               every ref in the graph leads to the same bytes.
 *     gone      Ref fields whose target tables were dropped (target ""),
 *               one indexed, a later table in a dropped one's region: dump
 *               -> load -> dump is byte for byte the same.
 *  3. place     mms_heap_objects and mms_heap_place through the API: the
 *               objects of one store placed into a new one land at the same
 *               refs with the same sizes and the heap verifies; refused: a
 *               place taken, a size no allocation has, a slab that cannot
 *               hold the offset, a huge object inside the heap, no
 *               transaction.
 *  4. ucd       The same on the Unicode store that examples/ucd builds.
 *  5. bad       A dump cut short, a damaged line, a heap object that
 *               cannot be placed (a size no allocation has, two at one
 *               place), an existing DIR, a full disk: refused, no DIR
 *               left; `mms load` killed (SIGKILL)
 *               before its rename: no DIR.
 */
#include "table_world.h"

#include <glob.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>

struct every {
    int8_t a8;
    int16_t a16;
    int32_t a32;
    int64_t a64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f32;
    double f64;
    uint8_t flag;
    char chars[12];
    mms_ref self; /* every */
    mms_ref other; /* tag */
    mms_ref s;
    mms_ref blob;
};
static const mms_field every_fields[] = {
    MMS_F_I8(struct every, a8),     MMS_F_I16(struct every, a16),
    MMS_F_I32(struct every, a32),   MMS_F_I64(struct every, a64),
    MMS_F_U8(struct every, u8),     MMS_F_U16(struct every, u16),
    MMS_F_U32(struct every, u32),   MMS_F_U64(struct every, u64),
    MMS_F_F32(struct every, f32),   MMS_F_F64(struct every, f64),
    MMS_F_BOOL(struct every, flag), MMS_F_CHARS(struct every, chars),
    MMS_F_REF(struct every, self, "every"), MMS_F_REF(struct every, other, "tag"),
    MMS_F_STR(struct every, s),     MMS_F_BLOB(struct every, blob)};
static const mms_schema every_schema = MMS_SCHEMA(struct every, every_fields);

struct tag {
    int32_t n;
    char name[7];
};
static const mms_field tag_fields[] = {MMS_F_I32(struct tag, n), MMS_F_CHARS(struct tag, name)};
static const mms_schema tag_schema = MMS_SCHEMA(struct tag, tag_fields);

static const char *const texts[] = {
    "",          "plain",           "quote \" backslash \\ slash /", "tab\tnewline\ncr\r",
    "\x01\x1f\x7f", "naïve café",   "Ελληνικά",                       "日本語のテキスト",
    "😀 emoji 🎉", "\xff\xfe not utf-8", "nul \0 inside"};
#define NTEXT (sizeof texts / sizeof texts[0])
#define NEVERY 300

static void build(const char *path)
{
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *tg, *ev;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "tag", &tag_schema, MMS_TABLE_CREATE, &tg));
    OK(mms_table_open(s, "every", &every_schema, MMS_TABLE_CREATE, &ev));
    for (int i = 0; i < 20; i++) {
        struct tag t = {i * 3, {0}};
        snprintf(t.name, sizeof t.name, "t%d", i);
        OK(mms_table_append(tg, &t, NULL));
    }
    uint64_t x = 12345;
    for (uint64_t i = 0; i < NEVERY; i++) {
        struct every e;
        memset(&e, 0, sizeof e);
        uint64_t r = rnd_next(&x);
        e.a8 = (int8_t)(i % 3 == 0 ? INT8_MIN : (int8_t)r);
        e.a16 = (int16_t)(i % 5 == 0 ? INT16_MAX : (int16_t)(r >> 8));
        e.a32 = (int32_t)(r >> 16);
        e.a64 = i % 7 == 0 ? INT64_MIN : (int64_t)r;
        e.u8 = (uint8_t)r;
        e.u16 = (uint16_t)(r >> 3);
        e.u32 = (uint32_t)(r >> 5);
        e.u64 = i % 4 == 0 ? UINT64_MAX : r;
        static const double specials[] = {0.1, -0.0, 1e308, 5e-324, 3.141592653589793};
        e.f64 = i % 11 == 0 ? NAN : i % 13 == 0 ? -INFINITY : i < 5 ? specials[i]
                                                : (double)r / 3.0;
        e.f32 = i % 17 == 0 ? INFINITY : (float)((double)(r >> 20) / 7.0);
        e.flag = i % 2;
        snprintf(e.chars, sizeof e.chars, "c%llu", (unsigned long long)i);
        if (i % 9 == 0)
            e.chars[10] = 'z'; /* a byte after the NUL */
        e.self = i ? mms_table_ref(ev, (i * 7) % i) : 0;
        e.other = i % 3 ? mms_table_ref(tg, i % 20) : 0;
        const char *t = texts[i % NTEXT];
        size_t len = i % NTEXT == NTEXT - 1 ? 13 : strlen(t);
        if (i % 10 != 3)
            OK(mms_str_new(s, t, len, &e.s));
        if (i % 4 == 1) {
            char b[300];
            for (size_t k = 0; k < sizeof b; k++)
                b[k] = (char)(k * i);
            OK(mms_str_new(s, b, i % 300, &e.blob));
        }
        uint64_t got;
        OK(mms_table_append(ev, &e, &got));
        ASSERT_EQ(got, i);
        if (i % 8 == 5)
            OK(mms_table_null_set(ev, i, (uint32_t)(i % 16), 1));
    }
    /* Deleted: some in the middle (nothing refers to them), and the end. */
    for (uint64_t i = 0; i < NEVERY; i++) {
        struct every *e = mms_table_get(ev, i);
        if (e->self && MMS_REF_SLOT(e->self) % 10 == 6)
            e->self = 0;
    }
    for (uint64_t i = 6; i < NEVERY; i += 10)
        OK(mms_table_delete(ev, i));
    for (uint64_t i = NEVERY - 5; i < NEVERY; i++)
        if (mms_table_live(ev, i))
            OK(mms_table_delete(ev, i));
    OK(mms_table_delete(tg, 19));
    /* Covering indexes of both kinds: kept by a load (same_stores, verify). */
    OK(mms_index_create_covering(tg, "n", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE, "name"));
    OK(mms_index_create_covering(ev, "a32", MMS_INDEX_HASH, "f64"));
    for (uint64_t i = 0; i < NEVERY; i++) {
        struct every *e = mms_table_get(ev, i);
        if (mms_table_live(ev, i) && e->other == mms_table_ref(tg, 19))
            e->other = 0;
        if (mms_table_live(ev, i) && e->self && !mms_table_live(ev, MMS_REF_SLOT(e->self)))
            e->self = 0;
    }
    /* The root: heap bytes. */
    mms_ref root;
    OK(mms_alloc(s, 100, &root));
    memset(mms_deref(s, root), 0xab, 100);
    OK(mms_root_set(s, root));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
}

/* Two stores hold the same tables, records at the same indices and root. */
static void same_stores(const char *a, const char *b)
{
    mms_store *s = open_flags(a, MMS_RDONLY), *t = open_flags(b, MMS_RDONLY);
    verify_ok(t);
    size_t n, m;
    mms_table_info ia[16], ib[16];
    OK(mms_tables(s, ia, 16, &n));
    OK(mms_tables(t, ib, 16, &m));
    ASSERT_EQ(n, m);
    for (size_t i = 0; i < n; i++) {
        mms_table *x, *y;
        OK(mms_table_find(s, ia[i].name, &x));
        OK(mms_table_find(t, ia[i].name, &y));
        ASSERT_EQ(mms_table_slots(x), mms_table_slots(y));
        ASSERT_EQ(mms_table_count(x), mms_table_count(y));
        const mms_schema *sx = mms_table_schema(x), *sy = mms_table_schema(y);
        ASSERT_EQ(mms_schema_same(sx, sy, NULL, 0), 1);
        mms_index_info xa[8], xb[8];
        size_t nxa, nxb;
        OK(mms_indexes(x, xa, 8, &nxa));
        OK(mms_indexes(y, xb, 8, &nxb));
        ASSERT_EQ(nxa, nxb);
        for (size_t k = 0; k < nxa; k++) {
            ASSERT_EQ(strcmp(xa[k].field, xb[k].field), 0);
            ASSERT_EQ(xa[k].flags, xb[k].flags);
            ASSERT_EQ(strcmp(xa[k].cover, xb[k].cover), 0);
            ASSERT_EQ(xa[k].entries, xb[k].entries);
        }
        for (uint64_t r = 0; r < mms_table_slots(x); r++) {
            ASSERT_EQ(mms_table_live(x, r), mms_table_live(y, r));
            if (!mms_table_live(x, r))
                continue;
            const char *p = mms_table_get(x, r), *q = mms_table_get(y, r);
            for (uint32_t k = 0; k < sx->nfields; k++) {
                const mms_field *f = &sx->fields[k];
                ASSERT_EQ(mms_table_null(x, r, k), mms_table_null(y, r, k));
                if (f->kind == MMS_KIND_STR || f->kind == MMS_KIND_BLOB) {
                    mms_ref u, v;
                    memcpy(&u, p + f->offset, 8);
                    memcpy(&v, q + f->offset, 8);
                    size_t lu = 0, lv = 0;
                    const char *bu = u ? mms_str_get(s, u, &lu) : NULL;
                    const char *bv = v ? mms_str_get(t, v, &lv) : NULL;
                    ASSERT_EQ(!bu, !bv);
                    ASSERT_EQ(lu, lv);
                    ASSERT(!bu || memcmp(bu, bv, lu) == 0);
                } else if (f->kind == MMS_KIND_REF) {
                    mms_ref u, v;
                    memcpy(&u, p + f->offset, 8);
                    memcpy(&v, q + f->offset, 8);
                    ASSERT_EQ(!u, !v);
                    ASSERT_EQ(MMS_REF_SLOT(u), MMS_REF_SLOT(v));
                } else if (f->kind == MMS_KIND_F32 || f->kind == MMS_KIND_F64) {
                    double u, v;
                    float fu, fv;
                    if (f->kind == MMS_KIND_F32) {
                        memcpy(&fu, p + f->offset, 4);
                        memcpy(&fv, q + f->offset, 4);
                        u = fu, v = fv;
                    } else {
                        memcpy(&u, p + f->offset, 8);
                        memcpy(&v, q + f->offset, 8);
                    }
                    ASSERT((isnan(u) && isnan(v)) || (u == v && signbit(u) == signbit(v)));
                } else {
                    ASSERT_EQ(memcmp(p + f->offset, q + f->offset, f->size), 0);
                }
            }
        }
    }
    mms_ref ra = mms_root(s), rb = mms_root(t);
    ASSERT_EQ(!ra, !rb);
    if (ra && MMS_REF_REGION(ra) == 0) {
        size_t za, zb;
        OK(mms_alloc_size(s, ra, &za));
        OK(mms_alloc_size(t, rb, &zb));
        ASSERT_EQ(za, zb);
        ASSERT_EQ(memcmp(mms_deref(s, ra), mms_deref(t, rb), za), 0);
    }
    OK(mms_close(s));
    OK(mms_close(t));
}

static void files_equal(const char *a, const char *b)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    if (system(cmd) != 0)
        FAILF("%s and %s differ", a, b);
}

/* dump -> load -> dump, byte for byte. */
static void round_trip(const char *src, const char *what)
{
    CTX("round trip of %s", what);
    char d1[600], d2[600], args[1500], out[4096], loaded[512];
    snprintf(d1, sizeof d1, "%s.dump1", src);
    snprintf(d2, sizeof d2, "%s.dump2", src);
    snprintf(loaded, sizeof loaded, "%s", shm_tpath("dump-loaded"));
    snprintf(args, sizeof args, "dump '%s' --all '%s'", src, d1);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "load '%s' '%s'", d1, loaded);
    if (run_tool(args, out, sizeof out) != 0)
        FAILF("load: %s", out);
    snprintf(args, sizeof args, "dump '%s' --all '%s'", loaded, d2);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    files_equal(d1, d2);
    same_stores(src, loaded);
    struct stat st;
    ASSERT_EQ(stat(d1, &st), 0);
    fprintf(stderr, "   %s: %lld bytes of dump, byte-identical after load\n", what,
            (long long)st.st_size);
    unlink(d1);
    unlink(d2);
    rmrf(loaded);
}

TEST(test_kinds)
{
    char path[512];
    snprintf(path, sizeof path, "%s", shm_tpath("dump-kinds"));
    build(path);
    round_trip(path, "every kind");
    rmrf(path);
}

struct node {
    int64_t v;
    mms_ref leaf; /* leaf */
    mms_ref name;
};
static const mms_field node_fields[] = {MMS_F_I64(struct node, v),
                                        MMS_F_REF(struct node, leaf, "leaf"),
                                        MMS_F_STR(struct node, name)};
static const mms_schema node_schema = MMS_SCHEMA(struct node, node_fields);
struct leaf {
    int32_t x;
};
static const mms_field leaf_fields[] = {MMS_F_I32(struct leaf, x)};
static const mms_schema leaf_schema = MMS_SCHEMA(struct leaf, leaf_fields);

/* The root object: refs to everything else. */
struct graph {
    mms_ref node5, leaf7, text, big, huge, slabbed[8];
    uint64_t magic;
};
#define GRAPH_MAGIC UINT64_C(0x4752415048)
static const char graph_text[] = "a string of nobody's record, \xff";
#define BIG_BYTES 10000
#define HUGE_BYTES (5u << 20)

static void fill(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(i * 31 + seed);
}

static void build_graph(const char *path)
{
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *tmp, *nodes, *leaves;
    OK(mms_txn_begin(s, 0));
    /* Regions: tmp 1 (dropped below), leaf 2, an index 3, node 4: a load
     * must leave 1 and 3 free (it makes no index). */
    OK(mms_table_open(s, "tmp", &leaf_schema, MMS_TABLE_CREATE, &tmp));
    OK(mms_table_open(s, "leaf", &leaf_schema, MMS_TABLE_CREATE, &leaves));
    OK(mms_index_create(leaves, "x", 0));
    OK(mms_table_open(s, "node", &node_schema, MMS_TABLE_CREATE, &nodes));
    OK(mms_table_drop(s, "tmp"));
    ASSERT_EQ(table_region(leaves), 2);
    ASSERT_EQ(table_region(nodes), 4);
    for (int i = 0; i < 10; i++) {
        struct leaf l = {i * 100};
        OK(mms_table_append(leaves, &l, NULL));
    }
    /* Interleaved: record strings, heap objects kept, heap objects freed. */
    mms_ref keep[40], drop[40];
    for (int i = 0; i < 40; i++) {
        struct node n = {i, mms_table_ref(leaves, (uint64_t)i % 10), 0};
        char name[32];
        snprintf(name, sizeof name, "node %d", i);
        OK(mms_str_new(s, name, strlen(name), &n.name));
        OK(mms_table_append(nodes, &n, NULL));
        OK(mms_alloc(s, i % 2 ? 1000 : 40 + (size_t)i, &keep[i])); /* 1000: slabs of 2 pages */
        fill(mms_deref(s, keep[i]), i % 2 ? 1000 : 40 + (size_t)i, (unsigned)i);
        OK(mms_alloc(s, 1000, &drop[i]));
    }
    for (int i = 0; i < 40; i++)
        OK(mms_free(s, drop[i]));
    for (uint64_t i = 3; i < 40; i += 4)
        OK(mms_table_delete(nodes, i));
    mms_ref groot;
    OK(mms_zalloc(s, sizeof(struct graph), &groot));
    struct graph *g = mms_deref(s, groot);
    g->magic = GRAPH_MAGIC;
    g->node5 = mms_table_ref(nodes, 5);
    g->leaf7 = mms_table_ref(leaves, 7);
    OK(mms_str_new(s, graph_text, sizeof graph_text - 1, &g->text));
    OK(mms_alloc(s, BIG_BYTES, &g->big));
    fill(mms_deref(s, g->big), BIG_BYTES, 7);
    OK(mms_alloc(s, HUGE_BYTES, &g->huge));
    fill(mms_deref(s, g->huge), HUGE_BYTES, 9);
    for (int k = 0; k < 8; k++)
        g->slabbed[k] = keep[5 * k + 1];
    OK(mms_root_set(s, groot));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
}

/* Every ref of the graph leads to the same bytes in the loaded store. */
static void graph_same(const char *a, const char *b)
{
    mms_store *s = open_flags(a, MMS_RDONLY), *t = open_flags(b, MMS_RDONLY);
    ASSERT_EQ(mms_root(s), mms_root(t));
    const struct graph *g = mms_deref(t, mms_root(t));
    ASSERT_EQ(g->magic, GRAPH_MAGIC);
    const struct node *n = mms_rec(t, g->node5);
    ASSERT_EQ(n->v, 5);
    ASSERT_EQ(((const struct leaf *)mms_rec(t, n->leaf))->x, 500);
    ASSERT_EQ(((const struct leaf *)mms_rec(t, g->leaf7))->x, 700);
    size_t len;
    const char *text = mms_str_get(t, g->text, &len);
    ASSERT(text);
    ASSERT_EQ(len, sizeof graph_text - 1);
    ASSERT_EQ(memcmp(text, graph_text, len), 0);
    mms_ref objs[10] = {g->big, g->huge};
    memcpy(objs + 2, g->slabbed, sizeof g->slabbed);
    for (int k = 0; k < 10; k++) {
        size_t za, zb;
        OK(mms_alloc_size(s, objs[k], &za));
        OK(mms_alloc_size(t, objs[k], &zb));
        ASSERT_EQ(za, zb);
        ASSERT_EQ(memcmp(mms_deref(s, objs[k]), mms_deref(t, objs[k]), za), 0);
    }
    mms_table *x;
    OK(mms_table_find(t, "node", &x));
    ASSERT_EQ(table_region(x), 4);
    OK(mms_table_find(t, "leaf", &x));
    ASSERT_EQ(table_region(x), 2);
    ASSERT_EQ(mms_table_find(t, "tmp", &x), MMS_ENOENT);
    OK(mms_close(s));
    OK(mms_close(t));
}

/* mms dump path --all dump, then mms load dump dest. */
static void dump_load(const char *path, const char *dump, const char *dest)
{
    char args[1600], out[4096];
    snprintf(args, sizeof args, "dump '%s' --all '%s'", path, dump);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "load '%s' '%s'", dump, dest);
    if (run_tool(args, out, sizeof out) != 0)
        FAILF("load: %s", out);
}

TEST(test_graph)
{
    char path[512], dump[600], dest[512];
    snprintf(path, sizeof path, "%s", shm_tpath("dump-graph"));
    snprintf(dest, sizeof dest, "%s", shm_tpath("dump-graph-dest"));
    snprintf(dump, sizeof dump, "%s.dump", path);
    build_graph(path);
    round_trip(path, "a root object graph");
    dump_load(path, dump, dest);
    graph_same(path, dest);
    unlink(dump);
    rmrf(dest);
    rmrf(path);
}

/* A ref field whose target table was dropped dumps with target "" (doc/
 * FORMAT.md §6), which mms load refused ("ref field names no target
 * table": seen before the fix); it loads, with the field targeting no
 * table again, the tables in their regions (a later table took a dropped
 * one's), an index on such a field too; and a table called as a pad of
 * the load is. */
struct gref {
    mms_ref a; /* gone1 */
    mms_ref b; /* gone2 */
    mms_ref c; /* kept */
    int64_t v;
};
TEST(test_gone_target)
{
    char path[512];
    snprintf(path, sizeof path, "%s", shm_tpath("dump-gone"));
    rmrf(path);
    mms_store *s = open_flags(path, MMS_CREATE);
    mms_table *g1, *g2, *kept, *t, *late;
    const mms_field gref_fields[] = {MMS_F_REF(struct gref, a, "gone1"),
                                     MMS_F_REF(struct gref, b, "gone2"),
                                     MMS_F_REF(struct gref, c, "kept"), MMS_F_I64(struct gref, v)};
    const mms_schema gref_schema = MMS_SCHEMA(struct gref, gref_fields);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "gone1", &tag_schema, MMS_TABLE_CREATE, &g1));
    OK(mms_table_open(s, "kept", &tag_schema, MMS_TABLE_CREATE, &kept));
    OK(mms_table_open(s, "gone2", &tag_schema, MMS_TABLE_CREATE, &g2));
    OK(mms_table_open(s, "g", &gref_schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_append(kept, &(struct tag){7, "seven"}, NULL));
    for (int64_t i = 0; i < 3; i++)
        OK(mms_table_append(t, &(struct gref){0, 0, i ? mms_table_ref(kept, 0) : 0, i}, NULL));
    OK(mms_index_create(t, "a", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_drop(s, "gone1"));
    OK(mms_table_drop(s, "gone2"));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "late", &tag_schema, MMS_TABLE_CREATE, &late));
    OK(mms_table_append(late, &(struct tag){8, "eight"}, NULL));
    OK(mms_txn_commit(s));
    ASSERT_EQ(strcmp(mms_table_schema(t)->fields[0].target, ""), 0);
    /* A table may have the name the load gives its first pad (the load
     * opened that pad for it, in the pad's region: seen failing). */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_rename(s, "kept", "mms-load-pad-1"));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    round_trip(path, "refs to dropped tables");
    rmrf(path);
}

/* A fixed-address store loads fixed, at its base and with its
 * reservation, so the plain pointers in its heap still lead where they
 * did. (It loaded as an ordinary store that MMS_FIXED refused.) */
struct fnode {
    struct fnode *next;
    int64_t value;
};

TEST(test_fixed)
{
    char path[512], dump[600], dest[512];
    snprintf(path, sizeof path, "%s", shm_tpath("dump-fixed"));
    snprintf(dest, sizeof dest, "%s", shm_tpath("dump-fixed-dest"));
    snprintf(dump, sizeof dump, "%s.dump", path);
    const uint64_t base = (uint64_t)44 << 40, reserve = (uint64_t)1 << 30;
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_FIXED;
    o.base = base;
    o.reserve = reserve;
    mms_store *s;
    OK(mms_open(path, &o, &s));
    OK(mms_txn_begin(s, 0));
    for (int64_t v = 1; v <= 3; v++) {
        struct fnode *n = mms_pmalloc(s, sizeof *n);
        ASSERT(n != NULL);
        n->value = v;
        n->next = mms_root_ptr(s);
        OK(mms_root_ptr_set(s, n));
    }
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    round_trip(path, "a fixed-address store");
    dump_load(path, dump, dest);
    mms_options_init(&o);
    o.flags = MMS_FIXED;
    OK(mms_open(dest, &o, &s));
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.fixed_base, base);
    ASSERT_EQ(in.fixed_heap_reserve, reserve);
    int64_t want = 3;
    for (const struct fnode *n = mms_root_ptr(s); n; n = n->next)
        ASSERT_EQ(n->value, want--);
    ASSERT_EQ(want, 0);
    OK(mms_close(s));
    unlink(dump);
    rmrf(dest);
    rmrf(path);
}

TEST(test_place)
{
    char path[512], dest[512];
    snprintf(path, sizeof path, "%s", shm_tpath("dump-place"));
    snprintf(dest, sizeof dest, "%s", shm_tpath("dump-place-dest"));
    build_graph(path);
    mms_store *s = open_flags(path, MMS_RDONLY), *t = sopen(dest, MMS_CREATE);
    mms_heap_obj *h;
    size_t n;
    OK(mms_read_begin(s));
    OK(mms_heap_objects(s, &h, &n));
    OK(mms_read_end(s));
    /* The graph's objects: the root, 40 kept, a string, a large and a huge
     * one; none of the catalog's, none of the records' strings. */
    ASSERT_EQ(n, 44);
    bool small = false, large = false, huge = false;
    FAILS(mms_heap_place(t, &h[0]), MMS_ENOTXN);
    OK(mms_txn_begin(t, 0));
    for (size_t i = 0; i < n; i++) {
        small |= h[i].slab != 0;
        large |= !h[i].slab && h[i].size < (4u << 20);
        huge |= h[i].size > (4u << 20);
        OK(mms_heap_place(t, &h[i]));
        size_t z;
        OK(mms_alloc_size(t, h[i].ref, &z));
        ASSERT_EQ(z, h[i].size);
        memcpy(mms_deref(t, h[i].ref), mms_deref(s, h[i].ref), z);
    }
    ASSERT(small && large && huge);
    /* Taken, a size that is no allocation's, a slab that cannot hold the
     * offset, a huge object inside the heap. */
    FAILS(mms_heap_place(t, &h[0]), MMS_EBADREF);
    mms_heap_obj bad = h[0];
    bad.size = 17;
    FAILS(mms_heap_place(t, &bad), MMS_EINVAL);
    bad = h[0];
    bad.slab += 4096 * 8;
    FAILS(mms_heap_place(t, &bad), MMS_EINVAL);
    bad = h[n - 1];
    for (size_t i = 0; i < n; i++)
        if (h[i].size > (4u << 20))
            bad = h[i];
    ASSERT(bad.size > (4u << 20));
    FAILS(mms_heap_place(t, &bad), MMS_EBADREF);
    bad.ref = MMS_REF_MAKE(0, 4096 * 1024 + 16);
    FAILS(mms_heap_place(t, &bad), MMS_EINVAL);
    /* Bad arguments, each named by the detail (a NULL object was "not a
     * heap ref", NULL bytes "5 bytes of string do not fit 64"). */
    FAILS(mms_heap_place(t, NULL), MMS_EINVAL);
    ASSERT(strstr(mms_errdetail(), "NULL"));
    bad.ref = MMS_REF_MAKE(3, 4096);
    FAILS(mms_heap_place(t, &bad), MMS_EINVAL);
    ASSERT(strstr(mms_errdetail(), "region 3"));
    FAILS(mms_heap_place_str(t, NULL, "x", 1), MMS_EINVAL);
    ASSERT(strstr(mms_errdetail(), "NULL"));
    bad = h[0];
    FAILS(mms_heap_place_str(t, &bad, NULL, 5), MMS_EINVAL);
    ASSERT(strstr(mms_errdetail(), "bytes is NULL"));
    FAILS(mms_heap_place_str(t, &bad, "x", bad.size), MMS_EINVAL);
    ASSERT(strstr(mms_errdetail(), "do not fit"));
    OK(mms_root_set(t, mms_root(s)));
    OK(mms_txn_commit(t));
    verify_ok(t);
    /* The new store lists the same objects, byte for byte. */
    mms_heap_obj *h2;
    size_t n2;
    OK(mms_heap_objects(t, &h2, &n2));
    ASSERT_EQ(n2, n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(h2[i].ref, h[i].ref);
        ASSERT_EQ(h2[i].size, h[i].size);
        ASSERT_EQ(h2[i].slab, h[i].slab);
        ASSERT_EQ(memcmp(mms_deref(t, h[i].ref), mms_deref(s, h[i].ref), h[i].size), 0);
    }
    free(h);
    free(h2);
    OK(mms_close(s));
    OK(mms_close(t));
    rmrf(dest);
    rmrf(path);
}

/* A dump that fails part-way leaves the file at OUT as it was: it is
 * written beside OUT and renamed over it once whole. (It truncated OUT at
 * the start and removed it at the failure: a nightly dump to one name
 * lost the night before's when the disk filled.) The failure here is the
 * file size limit (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG). */
TEST(test_failed_keeps_out)
{
    char path[512], dump[600], args[1600], out[4096];
    snprintf(path, sizeof path, "%s", shm_tpath("dump-keep"));
    build(path);
    snprintf(dump, sizeof dump, "%s.dump", path);
    FILE *f = fopen(dump, "w");
    ASSERT(f && fputs("an earlier dump\n", f) >= 0 && fclose(f) == 0);
    snprintf(args, sizeof args, "dump '%s' --all '%s'", path, dump);
    struct rlimit old, lim;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = run_tool(args, out, sizeof out);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    if (rc != 1 || !mentions(out, "cannot write"))
        FAILF("dump past the size limit: exit %d: %s", rc, out);
    char *text = file_text(dump);
    ASSERT_EQ(strcmp(text, "an earlier dump\n"), 0);
    free(text);
    char pattern[700];
    glob_t g;
    snprintf(pattern, sizeof pattern, "%s.mms-dump-*", dump);
    ASSERT_EQ(glob(pattern, 0, NULL, &g), GLOB_NOMATCH);
    /* Whole, it replaces the earlier file. */
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    text = file_text(dump);
    ASSERT_EQ(strncmp(text, "{\"mmstore_dump\"", 15), 0);
    free(text);
    ASSERT_EQ(glob(pattern, 0, NULL, &g), GLOB_NOMATCH);
}

/* What a killed dump or load leaves (OUT.mms-dump-PID, DIR.mms-load-PID:
 * the run builds there and renames) goes at the next dump to OUT or load
 * into DIR, once its process is gone; a live process's stays. (They stayed
 * for good: a dump of 10^6 records killed after 0.5 s left its 40 MB;
 * seen before the fix.) */
TEST(test_stale_temps)
{
    char path[512], dump[600], load[600], args[1600], out[4096], dead[700], live[700],
        ddir[700], name[800];
    snprintf(path, sizeof path, "%s", shm_tpath("dump-stale"));
    build(path);
    snprintf(dump, sizeof dump, "%s.dump", path);
    snprintf(load, sizeof load, "%s.loaded", path);
    pid_t pid = dead_pid();
    snprintf(dead, sizeof dead, "%s.mms-dump-%d", dump, (int)pid);
    snprintf(live, sizeof live, "%s.mms-dump-%d", dump, (int)getpid());
    snprintf(ddir, sizeof ddir, "%s.mms-load-%d", load, (int)pid);
    FILE *f = fopen(dead, "w");
    ASSERT(f && fputs("{\"mmstore_dump\"", f) >= 0 && fclose(f) == 0);
    f = fopen(live, "w");
    ASSERT(f && fclose(f) == 0);
    ASSERT_EQ(mkdir(ddir, 0777), 0);
    snprintf(name, sizeof name, "%s/region-0-0", ddir);
    f = fopen(name, "w");
    ASSERT(f && fclose(f) == 0);
    snprintf(args, sizeof args, "dump '%s' --all '%s'", path, dump);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    ASSERT(access(dead, F_OK) != 0);
    ASSERT_EQ(access(live, F_OK), 0);
    ASSERT_EQ(access(ddir, F_OK), 0); /* not a dump's */
    snprintf(args, sizeof args, "load '%s' '%s'", dump, load);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    ASSERT(access(ddir, F_OK) != 0);
    ASSERT_EQ(access(live, F_OK), 0);
    unlink(live);
    unlink(dump);
    rmrf(load);
    rmrf(path);
}

/* DIR/ loads into DIR (it failed: "cannot create DIR/.mms-load-PID"),
 * and an empty DIR or OUT is a usage error before any work (a load or
 * dump into '' did all of it, then failed to rename: "cannot rename
 * .mms-load-PID to : No such file or directory"; seen before the fix). */
TEST(test_load_args)
{
    char path[512], dump[600], load[600], args[1600], out[4096];
    snprintf(path, sizeof path, "%s", shm_tpath("dump-args"));
    build(path);
    snprintf(dump, sizeof dump, "%s.dump", path);
    snprintf(load, sizeof load, "%s.loaded", path);
    snprintf(args, sizeof args, "dump '%s' --all '%s'", path, dump);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "load '%s' '%s//'", dump, load);
    if (run_tool(args, out, sizeof out) != 0)
        FAILF("load into DIR//: %s", out);
    mms_store *s = sopen(load, 0);
    verify_ok(s);
    OK(mms_close(s));
    snprintf(args, sizeof args, "load '%s' ''", dump);
    ASSERT_EQ(run_tool(args, out, sizeof out), 2);
    snprintf(args, sizeof args, "dump '%s' --all ''", path);
    ASSERT_EQ(run_tool(args, out, sizeof out), 2);
    /* OUT a link to a file: the file gets the dump, the link stays (it
     * became a file of its own, the linked file as it was; seen before
     * the fix). */
    char link[700];
    snprintf(link, sizeof link, "%s.link", dump);
    unlink(link);
    FILE *f = fopen(dump, "w");
    ASSERT(f && fputs("an earlier dump\n", f) >= 0 && fclose(f) == 0);
    ASSERT_EQ(symlink(dump, link), 0);
    snprintf(args, sizeof args, "dump '%s' --all '%s'", path, link);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    struct stat st;
    ASSERT_EQ(lstat(link, &st), 0);
    ASSERT(S_ISLNK(st.st_mode));
    char *text = file_text(dump);
    ASSERT_EQ(strncmp(text, "{\"mmstore_dump\"", 15), 0);
    free(text);
    unlink(link);
    unlink(dump);
    rmrf(load);
    rmrf(path);
}

TEST(test_ucd)
{
    const char *tool = getenv("MMS_TOOL");
    char dir[1024], ucd[1100], cmd[2400], path[512];
    snprintf(dir, sizeof dir, "%s", tool);
    snprintf(ucd, sizeof ucd, "%s/ucd", dirname(dir));
    snprintf(path, sizeof path, "%s", shm_tpath("dump-ucd"));
    snprintf(cmd, sizeof cmd, "'%s' build '%s' /usr/share/unicode >/dev/null 2>&1", ucd, path);
    ASSERT_EQ(system(cmd), 0);
    round_trip(path, "the Unicode store");
    rmrf(path);
}

TEST(test_bad)
{
    char path[512], dump[600], bad[600], dest[512], args[1600], out[4096];
    snprintf(path, sizeof path, "%s", shm_tpath("dump-bad"));
    snprintf(dest, sizeof dest, "%s", shm_tpath("dump-bad-dest"));
    build(path);
    snprintf(dump, sizeof dump, "%s.dump", path);
    snprintf(bad, sizeof bad, "%s.bad", path);
    snprintf(args, sizeof args, "dump '%s' --all '%s'", path, dump);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    /* Cut short (no end line), then a damaged line. */
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "head -n 100 '%s' > '%s'", dump, bad);
    ASSERT_EQ(system(cmd), 0);
    snprintf(args, sizeof args, "load '%s' '%s'", bad, dest);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1);
    ASSERT(mentions(out, "short"));
    ASSERT(access(dest, F_OK) != 0);
    snprintf(cmd, sizeof cmd,
             "sed '50s/^\\({\"i\":[0-9]*,\"v\":\\[\\([^,]*,\\)\\{9\\}-*[0-9]\\)/\\1\\x00\\x00\\x00\\x002/' '%s' > '%s'",
             dump, bad);
    ASSERT_EQ(system(cmd), 0);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1);
    ASSERT(mentions(out, "50"));
    ASSERT(access(dest, F_OK) != 0);
    /* A member whose key is bad, after good ones: the reader freed the
     * member's value, which it had not set (mms load died of SIGSEGV).
     * glibc's perturb tunable (without its thread cache, which skips it)
     * fills what malloc returns, so that the unset value is garbage every
     * time, not zeros by luck. */
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0:glibc.malloc.perturb=165", 1);
    static const char *const bad_keys[] = {"50s/^{\"i\":/{\"i\":0,7:/",
                                           "50s/^{\"i\":/{\"i\":0,\"x\" 7,\"i\":/",
                                           "2s/^{\"heap\":/{\"a\":1,\"b\":2,3:/"};
    for (size_t k = 0; k < sizeof bad_keys / sizeof bad_keys[0]; k++) {
        snprintf(cmd, sizeof cmd, "sed '%s' '%s' > '%s'", bad_keys[k], dump, bad);
        ASSERT_EQ(system(cmd), 0);
        int rc = run_tool(args, out, sizeof out);
        if (rc != 1)
            FAILF("load with %s: exit %d: %s", bad_keys[k], rc, out);
        if (!mentions(out, "not a JSON object"))
            FAILF("load with %s: %s", bad_keys[k], out);
        ASSERT(access(dest, F_OK) != 0);
    }
    unsetenv("GLIBC_TUNABLES");
    /* NUL bytes inside a number: the reader took them for part of it (the
     * strchr of its characters matched the terminator), so the number's
     * length ran past its copy's end, and parsing read past the copy
     * (heap-buffer-overflow under ASan; found by fuzzing mms load). */
    snprintf(cmd, sizeof cmd,
             "sed '50s/^\\({\"i\":[0-9]*,\"v\":\\[\\([^,]*,\\)\\{9\\}-*[0-9]\\)/\\1\\x00\\x00\\x00\\x002/' "
             "'%s' > '%s'",
             dump, bad);
    ASSERT_EQ(system(cmd), 0);
    int nul_rc = run_tool(args, out, sizeof out);
    if (nul_rc != 1 || !mentions(out, "not a JSON object"))
        FAILF("load with NULs in a number: exit %d: %s", nul_rc, out);
    ASSERT(access(dest, F_OK) != 0);
    /* The root's heap object (line 2) with bytes that are not its size, in
     * a slab it cannot be in, at a place no slot starts, twice. */
    static const struct {
        const char *sed, *says;
    } heap_bad[] = {
        {"2s/\"size\":112/\"size\":113/", "size"},
        {"2s/\"size\":112,\"slab\":[0-9]*/\"size\":112,\"slab\":4096/", "slot"},
        {"2s/\"heap\":\\([0-9]*\\)/\"heap\":\\10/", "slot"},
        {"2p", "order"},
        {"2d", "heap object"},
        {"2s/\"bytes\":{\"hex\":\"abab/\"bytes\":{\"hex\":\"/", "size"},
    };
    for (size_t k = 0; k < sizeof heap_bad / sizeof heap_bad[0]; k++) {
        snprintf(cmd, sizeof cmd, "sed '%s' '%s' > '%s'", heap_bad[k].sed, dump, bad);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_EQ(run_tool(args, out, sizeof out), 1);
        if (!mentions(out, heap_bad[k].says))
            FAILF("sed %s: %s", heap_bad[k].sed, out);
        ASSERT(access(dest, F_OK) != 0);
    }
    /* A name that breaks the name rule (a store keeps one from before the
     * rule, and dumps it): refused before anything is made, the name shown
     * with its byte escaped, and how to mend it said. */
    static const struct {
        const char *sed, *says;
    } name_bad[] = {
        {"s/\"table\":\"tag\"/\"table\":\"t\\\\u0001g\"/", "table name \"t\\x01g\""},
        {"s/{\"name\":\"n\",/{\"name\":\"-n\",/", "field name \"-n\""},
    };
    for (size_t k = 0; k < sizeof name_bad / sizeof name_bad[0]; k++) {
        snprintf(cmd, sizeof cmd, "sed '%s' '%s' > '%s'", name_bad[k].sed, dump, bad);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_EQ(run_tool(args, out, sizeof out), 1);
        if (!mentions(out, name_bad[k].says) || !mentions(out, "name rule") ||
            !mentions(out, "mms rename"))
            FAILF("sed %s: %s", name_bad[k].sed, out);
        ASSERT(access(dest, F_OK) != 0);
    }
    /* A full disk while loading (the nth preallocation fails): an error
     * that says so, no DIR, no temporary directory. */
    int full = 0;
    for (unsigned nth = 1; nth <= 4; nth++) {
        snprintf(cmd, sizeof cmd, "MMS_FAULT=fallocate:%u:%d '%s' load '%s' '%s' 2>&1", nth,
                 ENOSPC, getenv("MMS_TOOL"), dump, dest);
        FILE *f = popen(cmd, "r");
        ASSERT(f);
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = 0;
        int st = pclose(f);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            rmrf(dest); /* fewer preallocations than nth */
            continue;
        }
        ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        ASSERT(strstr(out, "space"));
        ASSERT(access(dest, F_OK) != 0);
        snprintf(cmd, sizeof cmd, "ls -d '%s'.mms-load-* >/dev/null 2>&1", dest);
        ASSERT(system(cmd) != 0);
        full++;
    }
    ASSERT(full > 0);
    /* Killed inside its commit, and after it, before the rename. */
    static const char *const points[] = {"commit.journal_synced:1", "checkpoint.synced:1"};
    for (size_t k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "MMS_CRASH=%s '%s' load '%s' '%s' >/dev/null 2>&1", points[k],
                 getenv("MMS_TOOL"), dump, dest);
        int st = system(cmd);
        ASSERT(!(WIFEXITED(st) && WEXITSTATUS(st) == 0));
        ASSERT(access(dest, F_OK) != 0);
    }
    /* It works, and then DIR exists: refused. */
    snprintf(args, sizeof args, "load '%s' '%s'", dump, dest);
    ASSERT_EQ(run_tool(args, out, sizeof out), 0);
    ASSERT_EQ(run_tool(args, out, sizeof out), 1);
    ASSERT(mentions(out, "exists"));
    same_stores(path, dest);
    unlink(dump);
    unlink(bad);
    rmrf(dest);
    rmrf(path);
    /* What the killed loads left beside dest (their pids are gone). */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'.mms-load-*", dest);
    ASSERT_EQ(system(cmd), 0);
}

int main(void)
{
    table_test_begin("test_dump");
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): dump and load
     * are the point here, their failures are injected or a file size
     * limit, and the syncs of their commits on the disk only waited. */
    shm_choose();
    shm_catch_abort();
    RUN(test_kinds);
    RUN(test_graph);
    RUN(test_gone_target);
    RUN(test_place);
    RUN(test_fixed);
    RUN(test_ucd);
    RUN(test_bad);
    RUN(test_failed_keeps_out);
    RUN(test_stale_temps);
    RUN(test_load_args);
    shm_cleanup();
    return table_test_end();
}

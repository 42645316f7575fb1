/*
 * test_mix.c -- features in combination, where each one alone is tested
 * elsewhere.
 *
 *  1. ref_to_dropped  A table whose REF field's target table was dropped
 *                     (the field then targets no table: mms_table_schema()
 *                     gives "") opens with mms_table_open and the layout
 *                     mms_table_schema() gives, migrates with that field
 *                     kept, and the store then dumps and loads. A new REF
 *                     field (a new table's, or one a migration adds) still
 *                     needs a target.
 *  2. killed_*       What a killed writer leaves, the next open and close
 *                     take: killed just after it created a region's new
 *                     file (a migration, an index build, a new table), the
 *                     file (killed_new_file); just after it grew a table's
 *                     file, the space past the committed size
 *                     (killed_growth); in the checkpoint after it dropped
 *                     an index or a table, once the journal is empty, their
 *                     files (killed_after_drop).
 *  3. chain           One table with a unique hash index on a chars key,
 *                     an ordered index, a string, a blob and a REF into
 *                     another table, through: changes of every kind (plain
 *                     stores to keys, strings replaced, deletes, slot
 *                     reuse, missing keys), a migration that widens the
 *                     indexed key and another field, drops one, adds one
 *                     with a default, in the transaction that renames the
 *                     REF's target; a compaction; a hot copy while another
 *                     process commits; a dump and a load; a drop and a
 *                     build of both indexes. After each step the store, its
 *                     copy and its loaded twin verify (mms_verify and `mms
 *                     verify`) and, reopened, hold every record of a model
 *                     and find every key. Plain, MMS_NOSYNC and MMS_FIXED.
 */
#include "test.h"

struct city {
    int64_t id;
};
static const mms_field city_fields[] = {MMS_F_I64(struct city, id)};
static const mms_schema city_schema = MMS_SCHEMA(struct city, city_fields);

struct home1 {
    int64_t k;
    uint64_t city;
    uint64_t name;
};
static const mms_field home1_fields[] = {MMS_F_I64(struct home1, k),
                                         MMS_F_REF(struct home1, city, "city"),
                                         MMS_F_STR(struct home1, name)};
static const mms_schema home1_schema = MMS_SCHEMA(struct home1, home1_fields);

/* home1 with a field added after "city" was dropped: city targets no table. */
struct home2 {
    int64_t k;
    uint64_t city;
    uint64_t name;
    int32_t z;
};
static const mms_field home2_fields[] = {MMS_F_I64(struct home2, k),
                                         MMS_F_REF(struct home2, city, ""),
                                         MMS_F_STR(struct home2, name),
                                         MMS_F_I32(struct home2, z)};
static const mms_schema home2_schema = MMS_SCHEMA(struct home2, home2_fields);

static void homes_check(mms_store *s, uint64_t n, int migrated)
{
    mms_table *t;
    OK(mms_table_find(s, "home", &t));
    const mms_schema *sc = mms_table_schema(t);
    ASSERT_EQ(sc->record_size, migrated ? sizeof(struct home2) : sizeof(struct home1));
    ASSERT_EQ(sc->fields[1].kind, MMS_KIND_REF);
    ASSERT(sc->fields[1].target && strcmp(sc->fields[1].target, "") == 0);
    ASSERT_EQ(mms_table_count(t), n);
    mms_index *ix;
    OK(mms_index_open(t, "k", &ix));
    for (uint64_t i = 0; i < n; i++) {
        const char *r = mms_table_get(t, i);
        int64_t k;
        uint64_t city, name;
        memcpy(&k, r, 8);
        memcpy(&city, r + 8, 8);
        memcpy(&name, r + 16, 8);
        ASSERT_EQ(k, (int64_t)i * 7);
        ASSERT_EQ(city, 0);
        char want[32];
        snprintf(want, sizeof want, "home %llu", (unsigned long long)i);
        const char *got = mms_str_get(s, name, NULL);
        ASSERT(got && strcmp(got, want) == 0);
        uint64_t at = UINT64_MAX;
        OK(mms_index_find(ix, &k, &at));
        ASSERT_EQ(at, i);
    }
}

TEST(ref_to_dropped)
{
    const char *path = tpath("mix_refdrop");
    mms_store *s = open_flags(path, MMS_CREATE);
    mms_table *c, *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "city", &city_schema, MMS_TABLE_CREATE, &c));
    OK(mms_table_open(s, "home", &home1_schema, MMS_TABLE_CREATE, &t));
    struct city cr = {1};
    OK(mms_table_append(c, &cr, NULL));
    for (uint64_t i = 0; i < 50; i++) {
        struct home1 h = {(int64_t)i * 7, i % 2 ? mms_table_ref(c, 0) : 0, 0};
        char name[32];
        snprintf(name, sizeof name, "home %llu", (unsigned long long)i);
        OK(mms_str_new(s, name, strlen(name), &h.name));
        OK(mms_table_append(t, &h, NULL));
    }
    OK(mms_index_create(t, "k", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
    OK(mms_txn_commit(s));
    /* Clear the refs, drop their target. */
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = 0; i < 50; i++)
        MMS_TABLE_GET(t, struct home1, i)->city = 0;
    OK(mms_table_drop(s, "city"));
    OK(mms_txn_commit(s));
    OK(mms_close(s));

    s = open_flags(path, 0);
    OK(mms_table_find(s, "home", &t));
    homes_check(s, 50, 0);
    /* The layout mms_table_schema gives opens the table, in and out of a
     * write transaction. */
    const mms_schema *stored = mms_table_schema(t);
    mms_field f[3];
    memcpy(f, stored->fields, sizeof f);
    mms_schema same = {stored->record_size, 3, f};
    mms_table *t2 = NULL;
    OK(mms_table_open(s, "home", &same, 0, &t2));
    ASSERT(t2 == t);
    /* So does the program's own struct, with "" for the dropped target. */
    mms_field own[3];
    memcpy(own, home1_fields, sizeof own);
    own[1].target = "";
    mms_schema own_schema = {sizeof(struct home1), 3, own};
    OK(mms_table_open(s, "home", &own_schema, 0, &t2));
    ASSERT(t2 == t);
    /* The gone table's name still names no table. */
    FAILS(mms_table_open(s, "home", &home1_schema, 0, &t2), MMS_ENOENT);

    OK(mms_txn_begin(s, 0));
    /* A new REF field needs a target: a new table's, or one a migration
     * adds. */
    struct lone {
        uint64_t r;
    };
    static const mms_field lone_fields[] = {MMS_F_REF(struct lone, r, "")};
    static const mms_schema lone_schema = MMS_SCHEMA(struct lone, lone_fields);
    FAILS(mms_table_open(s, "lone", &lone_schema, MMS_TABLE_CREATE, &t2), MMS_EINVAL);
    mms_field added[4];
    memcpy(added, home2_fields, sizeof added);
    added[3] = (mms_field){"z2", MMS_KIND_REF, offsetof(struct home2, z), 8, "", NULL};
    mms_schema added_schema = {sizeof(struct home2) + 4, 4, added};
    FAILS(mms_table_open(s, "home", &added_schema, 0, &t2), MMS_EINVAL);
    /* Aiming the field at a table is another target: refused. */
    mms_field aimed[4];
    memcpy(aimed, home2_fields, sizeof aimed);
    aimed[1].target = "home";
    mms_schema aimed_schema = {sizeof(struct home2), 4, aimed};
    FAILS(mms_table_open(s, "home", &aimed_schema, 0, &t2), MMS_ESCHEMA);
    /* A migration that keeps the field. */
    OK(mms_table_open(s, "home", &home2_schema, 0, &t2));
    ASSERT(t2 == t);
    OK(mms_txn_commit(s));
    homes_check(s, 50, 1);
    /* The field still takes only 0. */
    OK(mms_txn_begin(s, 0));
    struct home2 bad = {1000, mms_table_ref(t, 0), 0, 0};
    int r = mms_table_append(t, &bad, NULL);
    if (r == 0)
        r = mms_txn_commit(s);
    else
        OK(mms_txn_abort(s));
    ASSERT_EQ(r, MMS_EBADREF);
    verify_ok(s);
    OK(mms_close(s));

    /* Reopen, and across a dump and a load. */
    s = open_flags(path, 0);
    verify_ok(s);
    homes_check(s, 50, 1);
    OK(mms_close(s));
    char dump[600], args[1400], out[4096];
    const char *loaded = tpath("mix_refdrop_loaded");
    snprintf(dump, sizeof dump, "%s.dump", loaded);
    snprintf(args, sizeof args, "dump '%s' --all '%s'", path, dump);
    if (run_tool(args, out, sizeof out))
        FAILF("mms %s: %s", args, out);
    snprintf(args, sizeof args, "load '%s' '%s'", dump, loaded);
    if (run_tool(args, out, sizeof out))
        FAILF("mms %s: %s", args, out);
    s = open_flags(loaded, 0);
    verify_ok(s);
    homes_check(s, 50, 1);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "home", &home2_schema, 0, &t2));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    unlink(dump);
    rmrf(loaded);
    rmrf(path);
}

struct plain1 {
    int64_t k;
};
static const mms_field plain1_fields[] = {MMS_F_I64(struct plain1, k)};
static const mms_schema plain1_schema = MMS_SCHEMA(struct plain1, plain1_fields);
struct plain2 {
    int64_t k;
    int32_t z;
};
static const mms_field plain2_fields[] = {MMS_F_I64(struct plain2, k), MMS_F_I32(struct plain2, z)};
static const mms_schema plain2_schema = MMS_SCHEMA(struct plain2, plain2_fields);

/* The child of killed_new_file: open path, then in one transaction what
 * makes a new region file (MMS_CRASH kills it there). */
static void new_file_child(const char *path, const char *what)
{
    mms_store *s = open_flags(path, 0);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    if (strcmp(what, "migrate") == 0) {
        OK(mms_table_open(s, "plain", &plain2_schema, 0, &t));
    } else if (strcmp(what, "index") == 0) {
        OK(mms_table_find(s, "plain", &t));
        OK(mms_index_create(t, "k", MMS_INDEX_ORDERED));
    } else if (strcmp(what, "drop_index") == 0) {
        OK(mms_table_find(s, "plain", &t));
        OK(mms_index_drop(t, "k"));
    } else if (strcmp(what, "drop_table") == 0) {
        OK(mms_table_drop(s, "plain"));
    } else if (strcmp(what, "grow") == 0) {
        OK(mms_table_find(s, "plain", &t));
        uint64_t first;
        OK(mms_table_append_many(t, 1000000, &first, NULL));
    } else {
        OK(mms_table_open(s, "city", &city_schema, MMS_TABLE_CREATE, &t));
    }
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

static unsigned region_files_in(const char *path)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^region-'", path);
    FILE *f = popen(cmd, "r");
    unsigned n = 0;
    ASSERT(f != NULL);
    ASSERT_EQ(fscanf(f, "%u", &n), 1);
    pclose(f);
    return n;
}

TEST(killed_new_file)
{
    static const char *whats[] = {"migrate", "index", "table"};
    for (int i = 0; i < 3; i++) {
        const char *path = tpath("mix_newfile");
        mms_store *s = open_flags(path, MMS_CREATE);
        mms_table *t;
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "plain", &plain1_schema, MMS_TABLE_CREATE, &t));
        for (int64_t k = 0; k < 1000; k++) {
            struct plain1 p = {k};
            OK(mms_table_append(t, &p, NULL));
        }
        OK(mms_txn_commit(s));
        OK(mms_close(s));
        ASSERT_EQ(region_files_in(path), 2);
        pid_t pid = child_spawn((const char *[]){"newfile", path, whats[i], NULL},
                                (const char *[]){"MMS_CRASH", "region.created:1", NULL});
        int st;
        if (!child_end(pid, 60, &st))
            FAILF("the child (%s) hung", whats[i]);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
            FAILF("the child (%s) was not killed at region.created: status 0x%x", whats[i], st);
        ASSERT_EQ(region_files_in(path), 3);
        /* The next open (and its close) deletes the file no commit names. */
        s = open_flags(path, 0);
        verify_ok(s);
        OK(mms_close(s));
        if (region_files_in(path) != 2)
            FAILF("%s: a killed writer's new file is still there after an open and a close",
                  whats[i]);
        rmrf(path);
    }
}

static uint64_t file_bytes(const char *path, const char *name)
{
    char p[700];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", path, name);
    ASSERT_EQ(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

TEST(killed_growth)
{
    const char *path = tpath("mix_growth");
    mms_store *s = open_flags(path, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "plain", &plain1_schema, MMS_TABLE_CREATE, &t));
    struct plain1 p = {1};
    OK(mms_table_append(t, &p, NULL));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    uint64_t before = file_bytes(path, "region-1-0");
    ASSERT_LT(before, 1u << 20);
    pid_t pid = child_spawn((const char *[]){"newfile", path, "grow", NULL},
                            (const char *[]){"MMS_CRASH", "region.grown:1", NULL});
    int st;
    if (!child_end(pid, 60, &st))
        FAILF("the child hung");
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        FAILF("the child was not killed at region.grown: status 0x%x", st);
    ASSERT_GE(file_bytes(path, "region-1-0"), 8000000);
    s = open_flags(path, 0);
    verify_ok(s);
    OK(mms_close(s));
    /* Cut to the committed size and one growth step (recover.c). */
    uint64_t after = file_bytes(path, "region-1-0");
    if (after >= 1u << 20)
        FAILF("a killed writer's growth stays: region-1-0 is %llu bytes, it was %llu",
              (unsigned long long)after, (unsigned long long)before);
    rmrf(path);
}


/* ========================================================================
 * 3. A chain of features
 * ======================================================================== */
#define CH_N 600
#define CH_CITIES 20

struct per1 {
    char key[12];
    int32_t score;
    uint64_t name;
    uint64_t data;
    uint64_t city;
    uint8_t flag;
};
static mms_field per1_fields[] = {
    MMS_F_CHARS(struct per1, key), MMS_F_I32(struct per1, score), MMS_F_STR(struct per1, name),
    MMS_F_BLOB(struct per1, data), MMS_F_REF(struct per1, city, "city"), MMS_F_U8(struct per1, flag)};
static const mms_schema per1_schema = MMS_SCHEMA(struct per1, per1_fields);

/* Widened key and score, flag gone, extra added, city's table renamed. */
struct per2 {
    char key[20];
    int64_t score;
    uint64_t name;
    uint64_t data;
    uint64_t city;
    int64_t extra;
};
static const int64_t extra_default = -5;
static const mms_field per2_fields[] = {
    MMS_F_CHARS(struct per2, key), MMS_F_I64(struct per2, score), MMS_F_STR(struct per2, name),
    MMS_F_BLOB(struct per2, data), MMS_F_REF(struct per2, city, "town"),
    MMS_F_WITH_DEFAULT(struct per2, extra, MMS_KIND_I64, &extra_default)};
static const mms_schema per2_schema = MMS_SCHEMA(struct per2, per2_fields);

struct tick {
    uint64_t n;
};
static const mms_field tick_fields[] = {MMS_F_U64(struct tick, n)};
static const mms_schema tick_schema = MMS_SCHEMA(struct tick, tick_fields);

/* What each person record holds. */
struct ch_rec {
    bool live, key_missing;
    char key[16];
    int64_t score;
    char name[40];
    uint8_t data[24];
    uint32_t data_len;
    int city; /* -1: none */
    uint8_t flag;
};
static struct {
    unsigned flags;
    int ver; /* 1: per1, 2: per2 */
    const char *cities;
    uint64_t nkeys, x;
    struct ch_rec r[CH_N];
} CH;

static mms_store *ch_open(const char *path, unsigned more)
{
    return open_flags(path, CH.flags | more);
}

static void ch_fill(struct ch_rec *c)
{
    memset(c, 0, sizeof *c);
    c->live = true;
    snprintf(c->key, sizeof c->key, "k%llu", (unsigned long long)++CH.nkeys * 7919u);
    c->score = (int64_t)(rnd_next(&CH.x) % 30) - 10;
    snprintf(c->name, sizeof c->name, "n%llu", (unsigned long long)rnd_next(&CH.x) % 100000u);
    c->data_len = (uint32_t)(rnd_next(&CH.x) % sizeof c->data);
    for (uint32_t i = 0; i < c->data_len; i++)
        c->data[i] = (uint8_t)rnd_next(&CH.x);
    c->city = rnd_next(&CH.x) % 4 == 0 ? -1 : (int)(rnd_next(&CH.x) % CH_CITIES);
    c->flag = (uint8_t)rnd_next(&CH.x);
}

/* c as a record of the current layout, into rec (its strings made). */
static void ch_record(mms_store *s, mms_table *cities, const struct ch_rec *c, void *rec)
{
    mms_ref name, data, city = c->city < 0 ? 0 : mms_table_ref(cities, (uint64_t)c->city);
    OK(mms_str_new(s, c->name, strlen(c->name), &name));
    OK(mms_str_new(s, c->data, c->data_len, &data));
    if (CH.ver == 1) {
        struct per1 *r = rec;
        *r = (struct per1){.score = (int32_t)c->score, .name = name, .data = data, .city = city,
                           .flag = c->flag};
        memcpy(r->key, c->key, strlen(c->key));
    } else {
        struct per2 *r = rec;
        *r = (struct per2){.score = c->score, .name = name, .data = data, .city = city,
                           .extra = extra_default};
        memcpy(r->key, c->key, strlen(c->key));
    }
}

static mms_table *ch_people(mms_store *s)
{
    mms_table *t;
    OK(mms_table_open(s, "person", CH.ver == 1 ? &per1_schema : &per2_schema, 0, &t));
    return t;
}

/* The store at path holds the model: verified, every record, every key. */
static void ch_check(const char *path, const char *what)
{
    mms_store *s = ch_open(path, 0);
    verify_ok(s);
    OK(mms_read_begin(s));
    mms_table *t, *c;
    OK(mms_table_find(s, "person", &t));
    OK(mms_table_find(s, CH.cities, &c));
    ASSERT_EQ(mms_table_count(c), CH_CITIES);
    const mms_schema *sc = mms_table_schema(t);
    char why[200];
    if (mms_schema_same(sc, CH.ver == 1 ? &per1_schema : &per2_schema, why, sizeof why) != 1)
        FAILF("%s: person has another layout: %s", what, why);
    mms_index *kx, *sx;
    OK(mms_index_open(t, "key", &kx));
    OK(mms_index_open(t, "score", &sx));
    uint32_t key_field = 0;
    uint64_t live = 0, scores[30] = {0};
    for (uint64_t i = 0; i < CH_N; i++) {
        const struct ch_rec *m = &CH.r[i];
        ASSERT_EQ(mms_table_live(t, i), m->live);
        if (!m->live)
            continue;
        live++;
        const char *r = mms_table_get(t, i);
        char key[24] = {0};
        int64_t score;
        mms_ref name, data, city;
        if (CH.ver == 1) {
            const struct per1 *p = (const void *)r;
            memcpy(key, p->key, sizeof p->key);
            score = p->score;
            name = p->name, data = p->data, city = p->city;
            ASSERT_EQ(p->flag, m->flag);
        } else {
            const struct per2 *p = (const void *)r;
            memcpy(key, p->key, sizeof p->key);
            score = p->score;
            name = p->name, data = p->data, city = p->city;
            ASSERT_EQ(p->extra, extra_default);
        }
        if (strcmp(key, m->key) != 0 || score != m->score)
            FAILF("%s: record %llu holds %s/%lld, not %s/%lld", what, (unsigned long long)i,
                  key, (long long)score, m->key, (long long)m->score);
        ASSERT_EQ(mms_table_null(t, i, key_field), m->key_missing);
        size_t len;
        const char *str = mms_str_get(s, name, &len);
        ASSERT(str && len == strlen(m->name) && memcmp(str, m->name, len) == 0);
        str = mms_str_get(s, data, &len);
        ASSERT(str && len == m->data_len && memcmp(str, m->data, len) == 0);
        ASSERT_EQ(city, m->city < 0 ? 0 : mms_table_ref(c, (uint64_t)m->city));
        uint64_t at = UINT64_MAX;
        int fr = mms_index_find(kx, key, &at);
        if (m->key_missing ? fr != MMS_ENOTFOUND : fr != 0 || at != i)
            FAILF("%s: find %s: %d at %lld, record %llu", what, key, fr, (long long)at,
                  (unsigned long long)i);
        scores[m->score + 10]++;
    }
    ASSERT_EQ(mms_table_count(t), live);
    for (int v = 0; v < 30; v++) {
        int64_t k64 = v - 10;
        int32_t k32 = (int32_t)k64;
        uint64_t n = UINT64_MAX;
        OK(mms_index_count(sx, CH.ver == 1 ? (const void *)&k32 : (const void *)&k64, &n));
        ASSERT_EQ(n, scores[v]);
    }
    OK(mms_read_end(s));
    OK(mms_close(s));
    char args[700], out[2048];
    snprintf(args, sizeof args, "verify '%s'", path);
    if (run_tool(args, out, sizeof out))
        FAILF("%s: mms verify: %s", what, out);
}

/* Plain stores to keys, strings replaced, deletes, appends into freed
 * slots, keys marked missing and given back. */
static void ch_mutate(const char *path)
{
    mms_store *s = ch_open(path, 0);
    OK(mms_txn_begin(s, 0));
    mms_table *t = ch_people(s), *c;
    OK(mms_table_find(s, CH.cities, &c));
    uint32_t klen = CH.ver == 1 ? 12 : 20;
    for (uint64_t i = 0; i < CH_N; i++) {
        struct ch_rec *m = &CH.r[i];
        char *r = mms_table_get(t, i);
        unsigned op = (unsigned)(rnd_next(&CH.x) % 8);
        if (!m->live)
            continue;
        if (op == 0) {
            OK(mms_table_delete(t, i));
            m->live = false;
        } else if (op == 1 && !m->key_missing) { /* a plain store of a new key */
            snprintf(m->key, sizeof m->key, "k%llu", (unsigned long long)++CH.nkeys * 7919u);
            memset(r, 0, klen);
            memcpy(r, m->key, strlen(m->key));
        } else if (op == 2) {
            snprintf(m->name, sizeof m->name, "N%llu", (unsigned long long)rnd_next(&CH.x) % 1000u);
            OK(mms_str_set(s, (mms_ref *)(r + (CH.ver == 1 ? offsetof(struct per1, name)
                                                           : offsetof(struct per2, name))),
                           m->name, strlen(m->name)));
        } else if (op == 3 && !m->key_missing) {
            OK(mms_table_null_set(t, i, 0, 1));
            m->key_missing = true;
            m->key[0] = 0;
        } else if (op == 4 && m->key_missing) {
            OK(mms_table_null_set(t, i, 0, 0));
            m->key_missing = false;
            snprintf(m->key, sizeof m->key, "k%llu", (unsigned long long)++CH.nkeys * 7919u);
            memcpy(r, m->key, strlen(m->key));
        }
    }
    /* Appends take the lowest free slot, freed by this transaction too. */
    for (int n = 0; n < CH_N / 10; n++) {
        uint64_t i = 0;
        while (i < CH_N && CH.r[i].live)
            i++;
        if (i == CH_N)
            break;
        union {
            struct per1 a;
            struct per2 b;
        } rec;
        ch_fill(&CH.r[i]);
        ch_record(s, c, &CH.r[i], &rec);
        uint64_t at;
        OK(mms_table_append(t, &rec, &at));
        ASSERT_EQ(at, i);
    }
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

/* A child that commits one tick at a time into "ticks" until killed. */
static pid_t ch_ticker(const char *path)
{
    pid_t parent = getpid(), pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        die_with_parent(parent);
        mms_store *s = ch_open(path, 0);
        mms_table *t;
        OK(mms_table_find(s, "ticks", &t));
        for (;;) {
            OK(mms_txn_begin(s, 0));
            struct tick k = {mms_table_slots(t)};
            OK(mms_table_append(t, &k, NULL));
            OK(mms_txn_commit(s));
        }
    }
    return pid;
}

static void ch_ticks_whole(const char *path)
{
    mms_store *s = ch_open(path, 0);
    mms_table *t;
    OK(mms_read_begin(s));
    OK(mms_table_find(s, "ticks", &t));
    for (uint64_t i = 0; i < mms_table_count(t); i++)
        ASSERT_EQ(MMS_TABLE_GET(t, struct tick, i)->n, i);
    OK(mms_read_end(s));
    OK(mms_close(s));
}

static void chain_with(unsigned flags, uint64_t seed)
{
    memset(&CH, 0, sizeof CH);
    CH.flags = flags;
    CH.ver = 1;
    CH.cities = "city";
    CH.x = seed;
    per1_fields[4].target = "city";
    const char *path = tpath("mix_chain");
    char copy[512], loaded[512], dump[512], args[2000], out[4096];
    snprintf(copy, sizeof copy, "%s.copy", path);
    snprintf(loaded, sizeof loaded, "%s.loaded", path);
    snprintf(dump, sizeof dump, "%s.dump", path);

    mms_store *s = ch_open(path, MMS_CREATE);
    mms_table *t, *c, *k;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "city", &city_schema, MMS_TABLE_CREATE, &c));
    for (int64_t i = 0; i < CH_CITIES; i++)
        OK(mms_table_append(c, &(struct city){i}, NULL));
    OK(mms_table_open(s, "person", &per1_schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_open(s, "ticks", &tick_schema, MMS_TABLE_CREATE, &k));
    for (int i = 0; i < CH_N; i++) {
        struct per1 rec;
        ch_fill(&CH.r[i]);
        ch_record(s, c, &CH.r[i], &rec);
        OK(mms_table_append(t, &rec, NULL));
    }
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "key", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
    OK(mms_index_create(t, "score", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    ch_check(path, "created");

    ch_mutate(path);
    ch_check(path, "changed");

    /* Rename the REF's target and migrate, in one transaction. */
    s = ch_open(path, 0);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_rename(s, "city", "town"));
    OK(mms_table_open(s, "person", &per2_schema, 0, &t));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    CH.ver = 2;
    CH.cities = "town";
    ch_check(path, "migrated");
    ch_mutate(path);
    ch_check(path, "changed after the migration");

    s = ch_open(path, 0);
    OK(mms_compact(s, NULL));
    OK(mms_close(s));
    ch_check(path, "compacted");

    /* A hot copy while another process commits. */
    pid_t w = ch_ticker(path);
    rmrf(copy);
    snprintf(args, sizeof args, "copy '%s' '%s'", path, copy);
    int st = run_tool(args, out, sizeof out);
    kill(w, SIGKILL);
    waitpid(w, NULL, 0);
    if (st)
        FAILF("mms %s: %s", args, out);
    ch_check(copy, "hot copy");
    ch_ticks_whole(copy);
    ch_check(path, "copied");

    snprintf(args, sizeof args, "dump '%s' --all '%s'", path, dump);
    if (run_tool(args, out, sizeof out))
        FAILF("mms %s: %s", args, out);
    rmrf(loaded);
    snprintf(args, sizeof args, "load '%s' '%s'", dump, loaded);
    if (run_tool(args, out, sizeof out))
        FAILF("mms %s: %s", args, out);
    ch_check(loaded, "loaded");
    ch_ticks_whole(loaded);

    s = ch_open(loaded, 0);
    OK(mms_txn_begin(s, 0));
    t = ch_people(s);
    OK(mms_index_drop(t, "key"));
    OK(mms_index_drop(t, "score"));
    OK(mms_index_create(t, "key", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
    OK(mms_index_create(t, "score", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    ch_check(loaded, "indexes built again");
    ch_mutate(loaded);
    ch_check(loaded, "changed after the load");

    unlink(dump);
    rmrf(copy);
    rmrf(loaded);
    rmrf(path);
}

TEST(chain)
{
    unsigned soak;
    uint64_t seed = test_seed("test_mix chain", 0, &soak, "");
    for (unsigned i = 0; i < soak; i++) {
        chain_with(0, seed + i);
        chain_with(MMS_NOSYNC, seed + i);
        chain_with(MMS_FIXED, seed + i);
    }
}

/* A writer killed in the checkpoint after the commit that dropped an index
 * or a table, once the journal is empty and before the dropped region's
 * file is deleted: the next open and close delete it. */
TEST(killed_after_drop)
{
    static const char *whats[] = {"drop_index", "drop_table"};
    for (int i = 0; i < 2; i++) {
        const char *path = tpath("mix_dropfile");
        mms_store *s = open_flags(path, MMS_CREATE);
        mms_table *t;
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "plain", &plain1_schema, MMS_TABLE_CREATE, &t));
        for (int64_t k = 0; k < 1000; k++)
            OK(mms_table_append(t, &(struct plain1){k}, NULL));
        if (i == 0) /* the table dropped has none: its own file is the one */
            OK(mms_index_create(t, "k", MMS_INDEX_HASH));
        OK(mms_txn_commit(s));
        OK(mms_close(s));
        ASSERT_EQ(region_files_in(path), i == 0 ? 3 : 2);
        pid_t pid = child_spawn((const char *[]){"newfile", path, whats[i], NULL},
                                (const char *[]){"MMS_CRASH", "checkpoint.reset:1", NULL});
        int st;
        if (!child_end(pid, 60, &st))
            FAILF("the child (%s) hung", whats[i]);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
            FAILF("the child (%s) was not killed at checkpoint.reset: status 0x%x", whats[i],
                  st);
        s = open_flags(path, 0);
        verify_ok(s);
        OK(mms_close(s));
        unsigned want = i == 0 ? 2 : 1;
        if (region_files_in(path) != want)
            FAILF("%s: %u region files after an open and a close, %u in use", whats[i],
                  region_files_in(path), want);
        rmrf(path);
    }
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 3, "newfile PATH WHAT");
    if (a) {
        new_file_child(a[1], a[2]);
        _exit(0);
    }
    RUN(ref_to_dropped);
    RUN(killed_new_file);
    RUN(killed_growth);
    RUN(killed_after_drop);
    RUN(chain);
    return 0;
}

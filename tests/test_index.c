/*
 * test_index.c -- hash and ordered indexes (issue 13): a model-based test
 * (random appends, append_many, deletes, plain stores to key fields, null
 * marks, aborts, reopens, a migration) that checks every index against a
 * model after every commit and abort; unique violations by each path;
 * key order of floats, chars and signed integers; SIGKILL during a bulk
 * build and during commits that change keys; a reader process looking up
 * while a writer changes keys; damaged index pages. Covering indexes (a
 * copy of one more field in each hash slot or ordered leaf entry) in the
 * model, the crashes and the reader, and on their own (TEST(covering),
 * TEST(covering_ordered)).
 */
#include "test.h"

#include <math.h>

#include "internal.h"

struct rec1 {
    int64_t id;
    double score;
    char tag[12];
    int32_t grp;
    uint8_t flag;
    uint8_t pad[3];
};
static const mms_field rec1_fields[] = {
    MMS_F_I64(struct rec1, id), MMS_F_F64(struct rec1, score), MMS_F_CHARS(struct rec1, tag),
    MMS_F_I32(struct rec1, grp), MMS_F_BOOL(struct rec1, flag)};
static const mms_schema rec1_schema = MMS_SCHEMA(struct rec1, rec1_fields);

/* Layout 2: grp widened to i64, flag removed (its index goes). */
struct rec2 {
    int64_t id;
    double score;
    char tag[12];
    int32_t pad;
    int64_t grp;
};
static const mms_field rec2_fields[] = {
    MMS_F_I64(struct rec2, id), MMS_F_F64(struct rec2, score), MMS_F_CHARS(struct rec2, tag),
    MMS_F_I64(struct rec2, grp)};
static const mms_schema rec2_schema = MMS_SCHEMA(struct rec2, rec2_fields);

/* The model: one entry per slot. */
struct mrec {
    int64_t id;
    double score;
    char tag[12];
    int64_t grp;
    uint8_t flag;
    bool live;
    bool idnull, gnull; /* id, grp missing: the record is not in their indexes */
};
struct model {
    struct mrec *r;
    uint64_t n, cap;
    int layout;
};

static uint64_t rng;
static uint64_t rnd(void)
{
    return rnd_next(&rng);
}

static void model_fit(struct model *m, uint64_t n)
{
    if (n > m->cap) {
        m->cap = n * 2 + 16;
        m->r = realloc(m->r, m->cap * sizeof *m->r);
        ASSERT(m->r);
    }
    for (uint64_t i = m->n; i < n; i++)
        memset(&m->r[i], 0, sizeof m->r[i]);
    if (n > m->n)
        m->n = n;
}

static struct model model_copy(const struct model *m)
{
    struct model c = *m;
    c.r = malloc((m->cap ? m->cap : 1) * sizeof *m->r);
    ASSERT(c.r);
    memcpy(c.r, m->r, m->n * sizeof *m->r);
    return c;
}

/* A record of the table as the model sees it. */
static void rec_read(const struct model *m, const void *p, struct mrec *o)
{
    memset(o, 0, sizeof *o);
    if (m->layout == 1) {
        const struct rec1 *r = p;
        o->id = r->id, o->score = r->score, o->grp = r->grp, o->flag = r->flag;
        memcpy(o->tag, r->tag, 12);
    } else {
        const struct rec2 *r = p;
        o->id = r->id, o->score = r->score, o->grp = r->grp;
        memcpy(o->tag, r->tag, 12);
    }
}

static void rec_write(const struct model *m, void *p, const struct mrec *o)
{
    if (m->layout == 1) {
        struct rec1 *r = p;
        memset(r, 0, sizeof *r);
        r->id = o->id, r->score = o->score, r->grp = (int32_t)o->grp, r->flag = o->flag;
        memcpy(r->tag, o->tag, 12);
    } else {
        struct rec2 *r = p;
        memset(r, 0, sizeof *r);
        r->id = o->id, r->score = o->score, r->grp = o->grp;
        memcpy(r->tag, o->tag, 12);
    }
}

static const double special[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1.5, -1.5};

static void rnd_rec(struct mrec *o, int64_t id)
{
    memset(o, 0, sizeof *o);
    o->id = id;
    uint64_t x = rnd();
    o->score = x % 5 == 0 ? special[x / 5 % 7] : (double)((int64_t)(x % 2001) - 1000) / 4;
    int len = (int)(rnd() % 12);
    for (int i = 0; i < len; i++)
        o->tag[i] = (char)('a' + rnd() % 3);
    o->grp = (int64_t)(rnd() % 7) - 3;
    o->flag = rnd() % 2;
    o->live = true;
}

/* The model's keys, compared as the index documents. */
static int fcmp(double a, double b)
{
    bool na = a != a, nb = b != b;
    if (na || nb)
        return na - nb;
    return a < b ? -1 : a > b;
}
enum { F_ID, F_SCORE, F_TAG, F_GRP, F_FLAG, NF };
static const char *fname[NF] = {"id", "score", "tag", "grp", "flag"};
static const unsigned fflags[NF] = {MMS_INDEX_UNIQUE, MMS_INDEX_ORDERED, MMS_INDEX_ORDERED, 0,
                                    MMS_INDEX_ORDERED};
/* Indexes of both kinds cover a field: id's (hash) and score's (ordered)
 * cover grp (widened within 8 bytes by the migration: still covered),
 * grp's (hash) and tag's (ordered) cover flag (removed by it: the index
 * covers nothing after). */
static const int fcover[NF] = {F_GRP, F_GRP, F_FLAG, F_FLAG, -1};
static int kcmp(int f, const struct mrec *a, const struct mrec *b)
{
    switch (f) {
    case F_ID: return a->id < b->id ? -1 : a->id > b->id;
    case F_SCORE: return fcmp(a->score, b->score);
    case F_TAG: return memcmp(a->tag, b->tag, 12);
    case F_GRP: return a->grp < b->grp ? -1 : a->grp > b->grp;
    default: return (a->flag != 0) - (b->flag != 0);
    }
}

/* The key of r for field f, in the field's C type (layout's). */
static const void *key_of(const struct model *m, int f, const struct mrec *r, void *buf)
{
    switch (f) {
    case F_ID: memcpy(buf, &r->id, 8); break;
    case F_SCORE: memcpy(buf, &r->score, 8); break;
    case F_TAG: memcpy(buf, r->tag, 12); break;
    case F_GRP:
        if (m->layout == 1) {
            int32_t g = (int32_t)r->grp;
            memcpy(buf, &g, 4);
        } else
            memcpy(buf, &r->grp, 8);
        break;
    default: memcpy(buf, &r->flag, 1);
    }
    return buf;
}

static int nfields(const struct model *m)
{
    return m->layout == 1 ? NF : F_FLAG;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const struct model *sort_m;
static int sort_f;
static int cmp_entry(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    int c = kcmp(sort_f, &sort_m->r[x], &sort_m->r[y]);
    return c ? c : x < y ? -1 : x > y;
}

/* Has record r an entry in the index of field f (live, key not missing)? */
static bool held(int f, const struct mrec *r)
{
    return r->live && !(f == F_ID && r->idnull) && !(f == F_GRP && r->gnull);
}

/* Every index of t agrees with the model, and the table too. */
static void check(mms_table *t, const struct model *m)
{
    ASSERT_EQ(mms_table_slots(t), m->n);
    uint64_t live = 0;
    for (uint64_t i = 0; i < m->n; i++) {
        ASSERT_EQ(mms_table_live(t, i), m->r[i].live);
        if (!m->r[i].live)
            continue;
        live++;
        struct mrec got;
        rec_read(m, mms_table_get(t, i), &got);
        ASSERT_EQ(got.id, m->r[i].id);
        ASSERT(memcmp(got.tag, m->r[i].tag, 12) == 0);
        ASSERT_EQ(got.grp, m->r[i].grp);
        ASSERT_EQ(mms_table_null(t, i, 0), m->r[i].idnull);
        ASSERT_EQ(mms_table_null(t, i, 3), m->r[i].gnull);
    }
    ASSERT_EQ(mms_table_count(t), live);
    uint64_t *ord = malloc((live + 1) * 8), *got = malloc((live + 1) * 8);
    ASSERT(ord && got);
    for (int f = 0; f < nfields(m); f++) {
        mms_index *ix;
        OK(mms_index_open(t, fname[f], &ix));
        /* The key of zero bytes: a missing key's value, not its key. */
        struct mrec zero;
        memset(&zero, 0, sizeof zero);
        char zk[16];
        size_t nz = 0, zn;
        for (uint64_t i = 0; i < m->n; i++)
            nz += held(f, &m->r[i]) && kcmp(f, &m->r[i], &zero) == 0;
        OK(mms_index_find_all(ix, key_of(m, f, &zero, zk), got, live, &zn));
        ASSERT_EQ(zn, nz);
        OK(mms_index_warm(ix)); /* reads only: the checks below see no change */
        /* Each record it holds (live, key not missing) is found under its
         * key, with all its peers. */
        uint64_t nin = 0;
        for (uint64_t i = 0; i < m->n; i++)
            if (held(f, &m->r[i]))
                ord[nin++] = i;
        size_t ksz = f == F_TAG ? 12 : f == F_FLAG ? 1 : f == F_GRP && m->layout == 1 ? 4 : 8;
        char *many = malloc((nin + 1) * ksz);
        uint64_t *mres = malloc((nin + 1) * 8), nmany = 0;
        ASSERT(many && mres);
        sort_m = m;
        sort_f = f;
        qsort(ord, nin, 8, cmp_entry);
        for (uint64_t a = 0; a < nin;) {
            uint64_t b = a;
            while (b < nin && kcmp(f, &m->r[ord[a]], &m->r[ord[b]]) == 0)
                b++;
            char kb[16];
            size_t n;
            OK(mms_index_find_all(ix, key_of(m, f, &m->r[ord[a]], kb), got, nin, &n));
            ASSERT_EQ(n, b - a);
            qsort(got, n, 8, cmp_u64);
            for (uint64_t j = a; j < b; j++)
                ASSERT_EQ(got[j - a], ord[j]); /* ord is (key, rec) sorted */
            uint64_t one;
            OK(mms_index_find(ix, kb, &one));
            if (fflags[f] & MMS_INDEX_ORDERED)
                ASSERT_EQ(one, ord[a]);
            else /* a hash find stops at the first nin match: one of them */
                ASSERT(bsearch(&one, got, n, 8, cmp_u64) != NULL);
            /* The covered value: the record's (the entry's copy in a read
             * transaction); an ordered index's of the lowest record. */
            int cf = fcover[f];
            char val[8], want[16]; /* key_of writes up to 12 bytes */
            if (cf >= 0 && cf < nfields(m)) {
                OK(mms_index_find_covered(ix, kb, &one, val));
                if (fflags[f] & MMS_INDEX_ORDERED)
                    ASSERT_EQ(one, ord[a]);
                ASSERT(bsearch(&one, got, n, 8, cmp_u64) != NULL);
                size_t csz = cf == F_FLAG ? 1 : m->layout == 1 ? 4 : 8;
                ASSERT(memcmp(val, key_of(m, cf, &m->r[one], want), csz) == 0);
            } else { /* covers nothing, or no more */
                FAILS(mms_index_find_covered(ix, kb, &one, val), MMS_ENOTSUP);
            }
            memcpy(many + nmany++ * ksz, kb, ksz);
            a = b;
        }
        /* A key no record holds. */
        struct mrec absent;
        memset(&absent, 0, sizeof absent);
        absent.id = -123456789;
        absent.score = 1e300;
        memcpy(absent.tag, "zzzzzzzzzzzz", 12);
        absent.grp = 1000;
        if (f != F_FLAG) {
            char kb[16];
            uint64_t one;
            FAILS(mms_index_find(ix, key_of(m, f, &absent, kb), &one), MMS_ENOTFOUND);
        }
        /* The same keys in one batch (and the absent one last): each answer
         * a nin record holding its key. */
        size_t groups = nmany, found = 0;
        char kab[16];
        if (f != F_FLAG)
            memcpy(many + nmany++ * ksz, key_of(m, f, &absent, kab), ksz);
        OK(mms_index_find_many(ix, many, nmany, mres, &found));
        ASSERT_EQ(found, groups);
        for (uint64_t j = 0; j < groups; j++) {
            char kb2[16];
            ASSERT_LT(mres[j], m->n);
            ASSERT(held(f, &m->r[mres[j]]));
            ASSERT(memcmp(key_of(m, f, &m->r[mres[j]], kb2), many + j * ksz, ksz) == 0);
        }
        if (nmany > groups)
            ASSERT_EQ(mres[groups], UINT64_MAX);
        free(many);
        free(mres);
        if (!(fflags[f] & MMS_INDEX_ORDERED))
            continue;
        /* The whole order, both ways, with the covered values (the
         * entries' copies in a read transaction). */
        mms_cursor *c;
        OK(mms_cursor_open(ix, &c));
        uint64_t rec, n = 0;
        int cf = fcover[f];
        bool covers = cf >= 0 && cf < nfields(m);
        size_t csz = cf == F_FLAG ? 1 : m->layout == 1 ? 4 : 8;
        char val[8], wantc[16]; /* key_of writes up to 12 bytes */
        int r = mms_cursor_seek(c, MMS_SEEK_FIRST, NULL, &rec, NULL);
        while (r == 0) {
            ASSERT_LT(n, nin);
            ASSERT_EQ(rec, ord[n]);
            if (covers) {
                OK(mms_cursor_covered(c, val));
                ASSERT(memcmp(val, key_of(m, cf, &m->r[rec], wantc), csz) == 0);
            } else
                FAILS(mms_cursor_covered(c, val), MMS_ENOTSUP);
            n++;
            r = mms_cursor_next(c, &rec, NULL);
        }
        ASSERT_EQ(r, MMS_ENOTFOUND);
        ASSERT_EQ(n, nin);
        if (covers)
            FAILS(mms_cursor_covered(c, val), MMS_ENOTFOUND); /* past the end */
        r = mms_cursor_seek(c, MMS_SEEK_LAST, NULL, &rec, NULL);
        while (r == 0) {
            ASSERT(n > 0);
            ASSERT_EQ(rec, ord[--n]);
            if (covers) {
                OK(mms_cursor_covered(c, val));
                ASSERT(memcmp(val, key_of(m, cf, &m->r[rec], wantc), csz) == 0);
            }
            r = mms_cursor_prev(c, &rec, NULL);
        }
        ASSERT_EQ(n, 0);
        /* Seeks from random keys agree with the model. */
        for (int q = 0; q < 20 && nin; q++) {
            struct mrec probe;
            rnd_rec(&probe, 0);
            char kb[16], kout[16];
            int op = (int)(rnd() % 4) + MMS_SEEK_GE;
            r = mms_cursor_seek(c, op, key_of(m, f, &probe, kb), &rec, kout);
            /* the model's answer: first (GE/GT) or last (LE/LT) entry */
            int64_t want = -1;
            for (uint64_t j = 0; j < nin; j++) {
                int cmpv = kcmp(f, &m->r[ord[j]], &probe);
                bool ok = op == MMS_SEEK_GE ? cmpv >= 0 : op == MMS_SEEK_GT ? cmpv > 0
                        : op == MMS_SEEK_LE ? cmpv <= 0 : cmpv < 0;
                if (ok && (op <= MMS_SEEK_GT ? want < 0 : true))
                    want = (int64_t)j;
                if (ok && op <= MMS_SEEK_GT)
                    break;
            }
            if (want < 0)
                ASSERT_EQ(r, MMS_ENOTFOUND);
            else {
                OK(r);
                ASSERT_EQ(rec, ord[want]);
                char kw[16];
                ASSERT(memcmp(kout, key_of(m, f, &m->r[ord[want]], kw), f == F_TAG ? 12 : f == F_FLAG ? 1 : f == F_GRP && m->layout == 1 ? 4 : 8) == 0 ||
                       (f == F_SCORE && fcmp(m->r[ord[want]].score, *(double *)(void *)kout) == 0));
            }
        }
        mms_cursor_close(c);
    }
    free(ord);
    free(got);
}

static mms_table *open_table(mms_store *s, const struct model *m)
{
    mms_table *t;
    OK(mms_table_open(s, "t", m->layout == 1 ? &rec1_schema : &rec2_schema, 0, &t));
    return t;
}

/* ------------------------------------------------------------------------ */
TEST(model)
{
    unsigned soak;
    rng = test_seed("test_index model", 0, &soak, "");
    const char *p = shm_tpath("ixmodel");
    mms_store *s = open_flags(p, MMS_CREATE);
    struct model m = {.layout = 1};
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &rec1_schema, MMS_TABLE_CREATE, &t));
    for (int i = 0; i < 50; i++) {
        struct mrec o;
        rnd_rec(&o, i * 3);
        struct rec1 r;
        rec_write(&m, &r, &o);
        uint64_t at;
        OK(mms_table_append(t, &r, &at));
        model_fit(&m, at + 1);
        m.r[at] = o;
    }
    for (int f = 0; f < NF; f++)
        OK(mms_index_create_covering(t, fname[f], fflags[f],
                                     fcover[f] >= 0 ? fname[fcover[f]] : NULL));
    /* The table was made in this transaction: the indexes are built at
     * its commit, and find nothing until then. */
    mms_index *ix0;
    uint64_t at0;
    OK(mms_index_open(t, "id", &ix0));
    FAILS(mms_index_find(ix0, &m.r[0].id, &at0), MMS_ENOTFOUND);
    OK(mms_txn_commit(s));
    check(t, &m);
    verify_ok(s);
    int64_t next_id = 1000;
    unsigned steps = 300 * soak, migrate_at = steps / 2 + (unsigned)(rnd() % (steps / 4));
    for (unsigned step = 0; step < steps; step++) {
        struct model before = model_copy(&m);
        OK(mms_txn_begin(s, 0));
        t = open_table(s, &m);
        if (step == migrate_at) {
            /* grp widened, flag removed: indexes follow at commit. */
            struct model nm = m;
            nm.layout = 2;
            OK(mms_table_open(s, "t", &rec2_schema, 0, &t));
            m.layout = 2;
            (void)nm;
        }
        bool expect_fail = false;
        unsigned ops = 1 + (unsigned)(rnd() % 12);
        for (unsigned k = 0; k < ops; k++) {
            unsigned what = (unsigned)(rnd() % 100);
            uint64_t i = m.n ? rnd() % m.n : 0;
            struct mrec o;
            if (what < 30) {                      /* append */
                rnd_rec(&o, next_id++);
                bool dup = rnd() % 8 == 0 && m.n && m.r[i].live;
                if (dup)
                    o.id = m.r[i].id;
                char r[sizeof(struct rec2) > sizeof(struct rec1) ? sizeof(struct rec2) : sizeof(struct rec1)];
                rec_write(&m, r, &o);
                uint64_t at;
                int rc = mms_table_append(t, r, &at);
                if (dup) {
                    /* the index (or the transaction's appends) knows it,
                     * unless the holder changed its key by a plain store */
                    ASSERT(rc == MMS_EUNIQUE || rc == 0);
                    if (rc == 0)
                        expect_fail = true;
                }
                else
                    OK(rc);
                if (rc == 0) {
                    model_fit(&m, at + 1);
                    m.r[at] = o;
                }
            } else if (what < 38) {               /* append_many, filled in place */
                uint64_t n = 1 + rnd() % 5, first;
                void *where;
                OK(mms_table_append_many(t, n, &first, &where));
                model_fit(&m, first + n);
                for (uint64_t j = 0; j < n; j++) {
                    rnd_rec(&o, next_id++);
                    rec_write(&m, (char *)where + j * (m.layout == 1 ? sizeof(struct rec1) : sizeof(struct rec2)), &o);
                    m.r[first + j] = o;
                }
            } else if (what < 55) {               /* delete */
                if (m.n && m.r[i].live) {
                    OK(mms_table_delete(t, i));
                    memset(&m.r[i], 0, sizeof m.r[i]);
                }
            } else if (what < 90) {               /* plain stores to key fields */
                if (m.n && m.r[i].live) {
                    rnd_rec(&o, m.r[i].id);
                    o.id = rnd() % 4 ? m.r[i].id : next_id++;
                    if (rnd() % 10 == 0) {
                        /* swap two ids: no duplicate at commit */
                        uint64_t j = rnd() % m.n;
                        if (m.r[j].live && j != i) {
                            int64_t a = m.r[i].id;
                            m.r[i].id = m.r[j].id;
                            m.r[j].id = a;
                            rec_write(&m, mms_table_get(t, j), &m.r[j]);
                            o.id = m.r[i].id;
                        }
                    }
                    rec_write(&m, mms_table_get(t, i), &o);
                    o.idnull = m.r[i].idnull; /* a plain store keeps the marks */
                    o.gnull = m.r[i].gnull;
                    m.r[i] = o;
                }
            } else if (what < 94) {               /* a plain store that duplicates an id */
                uint64_t j = m.n ? rnd() % m.n : 0;
                if (m.n && m.r[i].live && m.r[j].live && i != j) {
                    m.r[i].id = m.r[j].id;
                    rec_write(&m, mms_table_get(t, i), &m.r[i]);
                    expect_fail = true;
                }
            } else {                              /* a missing value: zero bytes */
                if (m.n && m.r[i].live) {
                    /* grp (field 3 in both layouts) or id (field 0), marked
                     * (zeroed) or unmarked (the value stays) */
                    bool id = rnd() % 3 == 0, mark = rnd() % 3 != 0;
                    OK(mms_table_null_set(t, i, id ? 0 : 3, mark));
                    if (id) {
                        m.r[i].idnull = mark;
                        m.r[i].id = mark ? 0 : m.r[i].id;
                    } else {
                        m.r[i].gnull = mark;
                        m.r[i].grp = mark ? 0 : m.r[i].grp;
                    }
                }
            }
        }
        /* Duplicate ids can also come from the random appends' ids only
         * by the paths above; compute whether the final state has any. */
        bool dups = false;
        for (uint64_t a = 0; a < m.n && !dups; a++)
            for (uint64_t b = a + 1; b < m.n && m.r[a].live && !dups; b++)
                dups = held(F_ID, &m.r[a]) && held(F_ID, &m.r[b]) && m.r[b].id == m.r[a].id;
        (void)expect_fail;
        unsigned end = (unsigned)(rnd() % 10);
        if (end == 0 || dups) {
            int rc = end == 0 ? mms_txn_abort(s) : mms_txn_commit(s);
            if (end != 0) {
                ASSERT_EQ(rc, MMS_EUNIQUE);
                ASSERT(strstr(mms_errdetail(), "table t: unique index on id: key"));
            } else
                OK(rc);
            free(m.r);
            m = before;
            t = open_table(s, &m);
        } else {
            OK(mms_txn_commit(s));
            free(before.r);
        }
        if (step % 2) { /* in a read transaction: lookups trust the slots */
            OK(mms_read_begin(s));
            check(t, &m);
            mms_read_end(s);
        } else
            check(t, &m);
        if (getenv("IXDEBUG")) {
            fprintf(stderr, "step %u layout %d\n", step, m.layout);
            verify_ok(s);
        }
        if (rnd() % 20 == 0) {
            verify_ok(s);
            OK(mms_close(s));
            s = open_flags(p, 0);
            t = open_table(s, &m);
            check(t, &m);
        }
    }
    verify_ok(s);
    OK(mms_close(s));
    free(m.r);
    rmrf(p);
}

/* ------------------------------------------------------------------------ */
struct kv {
    int64_t k;
    int32_t v;
    int32_t pad;
};
static const mms_field kv_fields[] = {MMS_F_I64(struct kv, k), MMS_F_I32(struct kv, v)};
static const mms_schema kv_schema = MMS_SCHEMA(struct kv, kv_fields);

TEST(unique_paths)
{
    const char *p = shm_tpath("ixuniq");
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t;
    mms_index *ix;
    uint64_t at, first;
    void *where;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "kv", &kv_schema, MMS_TABLE_CREATE, &t));
    for (int i = 0; i < 10; i++)
        OK(mms_table_append(t, &(struct kv){i, i, 0}, NULL));
    OK(mms_index_create(t, "k", MMS_INDEX_UNIQUE | MMS_INDEX_ORDERED));
    FAILS(mms_index_create(t, "k", 0), -EEXIST);
    FAILS(mms_index_create(t, "nope", 0), MMS_EINVAL);
    FAILS(mms_index_create(t, "k", 0x80), MMS_EINVAL);
    OK(mms_txn_commit(s));
    FAILS(mms_index_create(t, "v", 0), MMS_ENOTXN);
    OK(mms_index_open(t, "k", &ix));
    FAILS(mms_index_open(t, "v", &ix), MMS_ENOENT);
    OK(mms_index_open(t, "k", &ix));

    /* 1. append of a committed key */
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_append(t, &(struct kv){3, 0, 0}, &at), MMS_EUNIQUE);
    ASSERT(strstr(mms_errdetail(), "table kv: unique index on k: key 3 is held by record 3"));
    /* 2. append of a key appended in this transaction */
    OK(mms_table_append(t, &(struct kv){100, 0, 0}, &at));
    FAILS(mms_table_append(t, &(struct kv){100, 0, 0}, &at), MMS_EUNIQUE);
    /* the key of a record deleted in the transaction is free again */
    OK(mms_table_delete(t, 4));
    OK(mms_table_append(t, &(struct kv){4, 44, 0}, &at));
    ASSERT_EQ(at, 4);
    OK(mms_txn_commit(s));
    int64_t key = 4;
    OK(mms_index_find(ix, &key, &at));
    ASSERT_EQ(at, 4);
    ASSERT_EQ(MMS_TABLE_GET(t, struct kv, at)->v, 44);

    /* 3. a plain store: the commit fails, the transaction is aborted */
    OK(mms_txn_begin(s, 0));
    MMS_TABLE_GET(t, struct kv, 5)->k = 6;
    FAILS(mms_txn_commit(s), MMS_EUNIQUE);
    ASSERT(strstr(mms_errdetail(), "table kv: unique index on k: key 6 is held by records"));
    ASSERT_EQ(MMS_TABLE_GET(t, struct kv, 5)->k, 5);
    FAILS(mms_txn_abort(s), MMS_ENOTXN);
    /* 4. append_many filled in place */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append_many(t, 2, &first, &where));
    ((struct kv *)where)[0].k = 200;
    ((struct kv *)where)[1].k = 200;
    FAILS(mms_txn_commit(s), MMS_EUNIQUE);
    ASSERT_EQ(mms_table_slots(t), 11);
    /* 5. a swap is no duplicate; a key moved away frees it */
    OK(mms_txn_begin(s, 0));
    MMS_TABLE_GET(t, struct kv, 1)->k = 2;
    MMS_TABLE_GET(t, struct kv, 2)->k = 1;
    MMS_TABLE_GET(t, struct kv, 7)->k = 700;
    OK(mms_table_append(t, &(struct kv){7, 77, 0}, &at)); /* the index still has 7 at 7 */
    OK(mms_txn_commit(s));
    key = 1;
    OK(mms_index_find(ix, &key, &at));
    ASSERT_EQ(at, 2);
    key = 7;
    OK(mms_index_find(ix, &key, &at));
    ASSERT_EQ(MMS_TABLE_GET(t, struct kv, at)->v, 77);
    verify_ok(s);
    /* 6. a unique index over duplicates is refused, nothing is left */
    OK(mms_txn_begin(s, 0));
    MMS_TABLE_GET(t, struct kv, 0)->v = 9;
    FAILS(mms_index_create(t, "v", MMS_INDEX_UNIQUE), MMS_EUNIQUE);
    ASSERT(strstr(mms_errdetail(), "table kv: unique index on v: key 9 is held by records 0 and 9"));
    OK(mms_index_create(t, "v", 0)); /* not unique: fine */
    OK(mms_txn_commit(s));
    size_t n;
    mms_index_info info[4];
    OK(mms_indexes(t, info, 4, &n));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(info[0].entries, mms_table_count(t));
    verify_ok(s);
    /* drop */
    OK(mms_txn_begin(s, 0));
    OK(mms_index_drop(t, "v"));
    FAILS(mms_index_drop(t, "v"), MMS_ENOENT);
    OK(mms_txn_commit(s));
    OK(mms_indexes(t, info, 4, &n));
    ASSERT_EQ(n, 1);
    verify_ok(s);
    /* a hash index refuses cursors; strings cannot be indexed yet */
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "v", 0));
    OK(mms_txn_commit(s));
    mms_index *hv;
    mms_cursor *c;
    OK(mms_index_open(t, "v", &hv));
    FAILS(mms_cursor_open(hv, &c), MMS_ENOTSUP);
    OK(mms_close(s));
    rmrf(p);
}

struct sv {
    mms_ref name;
};
static const mms_field sv_fields[] = {MMS_F_STR(struct sv, name)};
static const mms_schema sv_schema = MMS_SCHEMA(struct sv, sv_fields);

TEST(string_keys_refused)
{
    const char *p = shm_tpath("ixstr");
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "s", &sv_schema, MMS_TABLE_CREATE, &t));
    FAILS(mms_index_create(t, "name", MMS_INDEX_ORDERED), MMS_ENOTSUP);
    ASSERT(strstr(mms_errdetail(), "not supported yet"));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* Many records: splits of every level, growth of the hash table, deletes
 * that empty leaves, ranges. */
TEST(large)
{
    const char *p = shm_tpath("ixlarge");
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t;
    mms_index *ho, *hh;
    enum { N = 60000 };
    rng = 77;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "kv", &kv_schema, MMS_TABLE_CREATE, &t));
    OK(mms_index_create(t, "k", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE));
    OK(mms_index_create(t, "v", 0));
    OK(mms_txn_commit(s));
    OK(mms_index_open(t, "k", &ho));
    OK(mms_index_open(t, "v", &hh));
    /* Inserted at commit one by one (not bulk). */
    for (int round = 0; round < 3; round++) {
        OK(mms_txn_begin(s, 0));
        for (int i = 0; i < N / 3; i++) {
            int64_t k = (int64_t)(rnd() >> 1);
            OK(mms_table_append(t, &(struct kv){k, (int32_t)(k % 100000), 0}, NULL));
        }
        OK(mms_txn_commit(s));
    }
    verify_ok(s);
    /* Delete most of a range, and look again. */
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = 0; i < N; i += 1 + (i % 3 != 0))
        OK(mms_table_delete(t, i));
    OK(mms_txn_commit(s));
    verify_ok(s);
    for (uint64_t i = 0; i < N; i++) {
        const struct kv *r = MMS_TABLE_GET(t, struct kv, i);
        uint64_t at;
        if (mms_table_live(t, i)) {
            OK(mms_index_find(ho, &r->k, &at));
            ASSERT_EQ(at, i);
            size_t n;
            uint64_t got[64];
            OK(mms_index_find_all(hh, &r->v, got, 64, &n));
            bool in = false;
            for (size_t j = 0; j < n && j < 64; j++)
                in |= got[j] == i;
            ASSERT(in);
        }
    }
    /* A range of keys in order. */
    mms_cursor *c;
    OK(mms_cursor_open(ho, &c));
    int64_t lo = INT64_MAX / 4, prev = lo, kk;
    uint64_t at, n = 0;
    int r = mms_cursor_seek(c, MMS_SEEK_GE, &lo, &at, &kk);
    while (r == 0 && n < 1000) {
        ASSERT(kk >= prev);
        ASSERT_EQ(MMS_TABLE_GET(t, struct kv, at)->k, kk);
        prev = kk;
        n++;
        r = mms_cursor_next(c, &at, &kk);
    }
    ASSERT_EQ(n, 1000);
    mms_cursor_close(c);
    /* Build again from the records (a migration that keeps k). */
    OK(mms_close(s));
    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* A new store at p inside a write transaction, its table kv holding n
 * records: key i * 7, value i % vmod (i when vmod is 0). */
static mms_store *kv_begin(const char *p, int n, int vmod, mms_table **t)
{
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "kv", &kv_schema, MMS_TABLE_CREATE, t));
    for (int i = 0; i < n; i++)
        OK(mms_table_append(*t, &(struct kv){i * 7, vmod ? i % vmod : i, 0}, NULL));
    return s;
}

/* The zeros of kv's v index and the records index k finds for key 0, and
 * verify agrees. */
static void zeros_held(mms_store *s, mms_table *t, uint64_t want)
{
    mms_index *ik, *iv;
    uint64_t n, out[8];
    size_t m;
    char msg[256];
    int64_t k0 = 0;
    int32_t v0 = 0;
    OK(mms_verify(s, msg, sizeof msg));
    OK(mms_index_open(t, "k", &ik));
    OK(mms_index_open(t, "v", &iv));
    for (int txn = 0; txn < 2; txn++) {
        if (txn)
            OK(mms_read_begin(s));
        OK(mms_index_count(iv, &v0, &n));
        ASSERT_EQ(n, want);
        OK(mms_index_find_all(ik, &k0, out, 8, &m));
        ASSERT_EQ(m, want);
        for (size_t j = 0; j < m; j++)
            ASSERT_EQ(*(const int64_t *)mms_table_get(t, out[j]), 0);
        if (txn)
            OK(mms_read_end(s));
    }
}

/* An append that takes back a deleted slot with a record of zeros (or
 * one set back to zeros) changes no byte -- a deleted slot is zeros -- so
 * the commit's diff does not see it; the record still gets its entries
 * (found by the fuzzer: seed "indexes" and a write of zeros). */
TEST(zeros_into_deleted_slot)
{
    const char *p = shm_tpath("ixzero");
    mms_table *t;
    uint64_t at;
    mms_store *s = kv_begin(p, 8, 0, &t); /* record 0 is zeros */
    OK(mms_index_create(t, "k", MMS_INDEX_ORDERED));
    OK(mms_index_create(t, "v", 0));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(t, 3));
    OK(mms_table_delete(t, 5));
    OK(mms_table_delete(t, 6));
    OK(mms_txn_commit(s));
    zeros_held(s, t, 1);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append(t, NULL, &at));
    ASSERT_EQ(at, 3);
    OK(mms_txn_commit(s));
    zeros_held(s, t, 2);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append(t, &(struct kv){99, 99, 0}, &at));
    ASSERT_EQ(at, 5);
    memset(mms_table_get(t, at), 0, sizeof(struct kv));
    OK(mms_txn_commit(s));
    zeros_held(s, t, 3);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append(t, NULL, &at));
    ASSERT_EQ(at, 6);
    OK(mms_table_delete(t, at));
    OK(mms_txn_commit(s));
    zeros_held(s, t, 3);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append(t, NULL, &at));
    ASSERT_EQ(at, 6);
    OK(mms_txn_abort(s));
    zeros_held(s, t, 3);
    OK(mms_close(s));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * An index created in a transaction that changes its table before and
 * after the create: built once (at create when the table is as committed,
 * then kept by the commit's upkeep; else at the commit), and the table's
 * at the commit either way.
 * ------------------------------------------------------------------------ */
#define CT_N 256   /* records of 16 bytes: the committed size is one page... */
#define CT_MORE 300 /* ... so that these appended records are all fresh space */
struct ctrec {
    int64_t k;
    int32_t v;
    bool live;
};
static struct ctrec ct[CT_N + CT_MORE + 64];
static uint64_t ct_n;

static void ct_store_k(mms_table *t, uint64_t i, int64_t k)
{
    MMS_TABLE_GET(t, struct kv, i)->k = k;
    ct[i].k = k;
}
static void ct_store_v(mms_table *t, uint64_t i, int32_t v)
{
    MMS_TABLE_GET(t, struct kv, i)->v = v;
    ct[i].v = v;
}
static void ct_delete(mms_table *t, uint64_t i)
{
    OK(mms_table_delete(t, i));
    ct[i].k = 0;
    ct[i].v = 0;
    ct[i].live = false;
}
static uint64_t ct_append(mms_table *t, int64_t k, int32_t v)
{
    uint64_t at;
    OK(mms_table_append(t, &(struct kv){k, v, 0}, &at));
    ct[at].k = k;
    ct[at].v = v;
    ct[at].live = true;
    if (at >= ct_n)
        ct_n = at + 1;
    return at;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Index "k" (covering v) of t agrees with ct entry by entry: each live
 * record found under its key with its value (in a read transaction, the
 * index's copy), as many entries as live records, an ordered one in
 * (key, record) order; and mms_verify agrees. */
static void ct_check(mms_store *s, mms_table *t, unsigned flags)
{
    ASSERT_EQ(mms_table_slots(t), ct_n);
    mms_index *ix;
    OK(mms_index_open(t, "k", &ix));
    uint64_t live = 0, out[CT_N + CT_MORE + 64];
    /* The live keys, sorted, each once: how many records hold a key. */
    static int64_t keys[CT_N + CT_MORE + 64];
    size_t nkeys = 0;
    for (uint64_t i = 0; i < ct_n; i++)
        if (ct[i].live)
            keys[nkeys++] = ct[i].k;
    qsort(keys, nkeys, 8, cmp_i64);
    for (int txn = 0; txn < 2; txn++) {
        if (txn)
            OK(mms_read_begin(s));
        live = 0;
        for (uint64_t i = 0; i < ct_n; i++) {
            ASSERT_EQ(mms_table_live(t, i), ct[i].live);
            if (!ct[i].live)
                continue;
            live++;
            size_t n, want = 0, seen = 0;
            const int64_t *q = bsearch(&ct[i].k, keys, nkeys, 8, cmp_i64);
            while (q > keys && q[-1] == ct[i].k) /* any of equal keys: the first */
                q--;
            for (; q && q < keys + nkeys && *q == ct[i].k; q++)
                want++;
            OK(mms_index_find_all(ix, &ct[i].k, out, CT_N + CT_MORE + 64, &n));
            ASSERT_EQ(n, want);
            for (size_t j = 0; j < n; j++) {
                ASSERT(ct[out[j]].live && ct[out[j]].k == ct[i].k);
                seen += out[j] == i;
            }
            ASSERT_EQ(seen, 1);
            uint64_t one;
            int32_t val;
            OK(mms_index_find_covered(ix, &ct[i].k, &one, &val));
            ASSERT(ct[one].live && ct[one].k == ct[i].k);
            ASSERT_EQ(val, ct[one].v);
        }
        if (txn)
            OK(mms_read_end(s));
    }
    mms_index_info ii;
    size_t n;
    OK(mms_indexes(t, &ii, 1, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(ii.entries, live);
    if (flags & MMS_INDEX_ORDERED) {
        mms_cursor *c;
        uint64_t rec, walked = 0, prev = 0;
        int64_t key, prevk = INT64_MIN;
        OK(mms_cursor_open(ix, &c));
        for (int r = mms_cursor_seek(c, MMS_SEEK_FIRST, NULL, &rec, &key); r == 0;
             r = mms_cursor_next(c, &rec, &key)) {
            ASSERT(ct[rec].live && ct[rec].k == key);
            ASSERT(key > prevk || (key == prevk && rec > prev));
            prevk = key;
            prev = rec;
            walked++;
        }
        ASSERT_EQ(walked, live);
        mms_cursor_close(c);
    }
    verify_ok(s);
}

/* Does the file of generation gen of region id exist? */
static bool region_file(const char *p, uint32_t id, unsigned gen)
{
    char f[600];
    snprintf(f, sizeof f, "%s/region-%u-%u", p, id, gen);
    return access(f, F_OK) == 0;
}

/* kv of CT_N records (key i * 7, value i), records 10..19 deleted, all
 * committed; the store open, no transaction. */
static mms_store *ct_setup(const char *p, mms_table **t)
{
    rmrf(p);
    mms_store *s = kv_begin(p, CT_N, 0, t);
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    memset(ct, 0, sizeof ct);
    ct_n = CT_N;
    for (uint64_t i = 0; i < CT_N; i++)
        ct[i] = (struct ctrec){(int64_t)i * 7, (int32_t)i, true};
    for (uint64_t i = 10; i < 20; i++)
        ct_delete(*t, i);
    OK(mms_txn_commit(s));
    return s;
}

/* The transaction's changes to the table before the create (before 1:
 * keys, values, a delete, an append into a deleted slot; 2: append_many
 * past the end) or after it (0): keys, values, deletes,
 * appends (into deleted slots too, one of zeros), append_many, a null
 * mark of the covered field, keys changed back. */
static void ct_changes(mms_table *t, int before, unsigned flags)
{
    uint64_t first;
    void *where;
    if (before == 1) {
        ct_store_k(t, 1, 100001);
        ct_store_v(t, 2, 555);
        ct_delete(t, 3);
        ct_append(t, 100010, 10);        /* into committed-dead slot 10 */
        ct_store_k(t, 41, 100041);       /* changed back after the create */
        ct_store_k(t, 42, 100042);       /* changed again after it */
        ct_store_k(t, 43, 7);            /* a duplicate of record 1's key... */
        ct_store_k(t, 1, 100001);
        return;
    }
    if (before == 2) { /* appends past the committed size only: fresh space */
        OK(mms_table_append_many(t, CT_MORE, &first, &where));
        for (uint64_t j = 0; j < CT_MORE; j++) {
            ((struct kv *)where)[j] = (struct kv){(int64_t)(100100 + j), (int32_t)j, 0};
            ct[first + j] = (struct ctrec){(int64_t)(100100 + j), (int32_t)j, true};
        }
        ct_n = first + CT_MORE;
        return;
    }
    if (ct_n > CT_N) { /* records appended before the create */
        ct_store_k(t, CT_N, 300000);
        ct_delete(t, CT_N + 1);
        ct_store_k(t, ct_n - 2, 300001);
        ct_delete(t, ct_n - 1);
    }
    ct_store_k(t, 1, 200001);            /* (changed before too, in the other case) */
    ct_store_k(t, 42, 200042);
    ct_store_k(t, 41, 41 * 7);
    ct_store_k(t, 43, 43 * 7);           /* ... gone again */
    ct_store_k(t, 20, 200020);
    ct_store_v(t, 21, 777);
    ct_store_k(t, 22, 200022);
    ct_store_v(t, 22, 778);
    ct_delete(t, 4);
    ct_delete(t, 23);
    uint64_t at = ct_append(t, 200030, 30); /* the lowest deleted slot */
    ASSERT(!(at >= CT_N));
    ct_store_k(t, 0, 200000);               /* record 0's key 0 is the zeros' */
    OK(mms_table_append(t, NULL, &at));     /* zeros into a deleted slot */
    ct[at] = (struct ctrec){0, 0, true};
    OK(mms_table_append_many(t, 3, &first, &where));
    for (uint64_t j = 0; j < 3; j++) {
        ((struct kv *)where)[j] = (struct kv){(int64_t)(200100 + j), (int32_t)(100 + j), 0};
        ct[first + j] = (struct ctrec){(int64_t)(200100 + j), (int32_t)(100 + j), true};
    }
    ct_n = first + 3;
    OK(mms_table_null_set(t, 24, 1, 1)); /* v of record 24 missing: zeros */
    ct[24].v = 0;
    if (!(flags & MMS_INDEX_UNIQUE))
        ct_store_k(t, 25, 26 * 7);       /* a duplicate key, allowed here */
}

static void create_in_txn(unsigned flags)
{
    const char *p = shm_tpath("ixcreate");
    mms_table *t;
    for (int before = 0; before < 3; before++) {
        /* Committed. */
        mms_store *s = ct_setup(p, &t);
        OK(mms_txn_begin(s, 0));
        if (before)
            ct_changes(t, before, flags);
        OK(mms_index_create_covering(t, "k", flags, "v"));
        mms_index *ix;
        uint64_t at;
        int64_t k5 = 35;
        OK(mms_index_open(t, "k", &ix));
        if (before) /* built at the commit: empty until then */
            FAILS(mms_index_find(ix, &k5, &at), MMS_ENOTFOUND);
        else {      /* built now: as of the last commit */
            OK(mms_index_find(ix, &k5, &at));
            ASSERT_EQ(at, 5);
        }
        ct_changes(t, 0, flags);
        OK(mms_txn_commit(s));
        ct_check(s, t, flags);
        mms_index_info ii;
        size_t n;
        OK(mms_indexes(t, &ii, 1, &n));
        /* One build: at create (generation 0, kept by the upkeep), or at
         * the commit (generation 1 over create's empty one). */
        ASSERT_EQ(region_file(p, ii.region, 1), before > 0);
        ASSERT(region_file(p, ii.region, 0) || before);
        OK(mms_close(s));
        s = open_flags(p, 0);
        OK(mms_table_find(s, "kv", &t));
        ct_check(s, t, flags);
        OK(mms_close(s));

        /* Aborted: nothing of the index stays. */
        s = ct_setup(p, &t);
        OK(mms_txn_begin(s, 0));
        if (before)
            ct_changes(t, before, flags);
        OK(mms_index_create_covering(t, "k", flags, "v"));
        ct_changes(t, 0, flags);
        OK(mms_txn_abort(s));
        OK(mms_indexes(t, &ii, 1, &n));
        ASSERT_EQ(n, 0);
        FAILS(mms_index_open(t, "k", &ix), MMS_ENOENT);
        verify_ok(s);
        OK(mms_close(s));
    }
    /* A duplicate a store makes after a unique index's create fails the
     * commit, which aborts the transaction: no index. */
    for (int before = 0; before < 2 && (flags & MMS_INDEX_UNIQUE); before++) {
        mms_store *s = ct_setup(p, &t);
        OK(mms_txn_begin(s, 0));
        if (before)
            ct_store_k(t, 60, 1);
        OK(mms_index_create_covering(t, "k", flags, "v"));
        ct_store_k(t, 61, 62 * 7);
        FAILS(mms_txn_commit(s), MMS_EUNIQUE);
        ASSERT(strstr(mms_errdetail(), "table kv: unique index on k: key 434 is held by records"));
        mms_index_info ii;
        size_t n;
        OK(mms_indexes(t, &ii, 1, &n));
        ASSERT_EQ(n, 0);
        ASSERT_EQ(MMS_TABLE_GET(t, struct kv, 61)->k, 61 * 7);
        verify_ok(s);
        /* ... and one in the records at create is refused there, whether
         * the transaction made it or it was committed. */
        OK(mms_txn_begin(s, 0));
        if (before)
            MMS_TABLE_GET(t, struct kv, 70)->k = 71 * 7;
        if (before) {
            FAILS(mms_index_create_covering(t, "k", flags, NULL), MMS_EUNIQUE);
        } else { /* v of a committed record set to another's */
            OK(mms_index_create_covering(t, "v", flags, NULL));
            OK(mms_txn_commit(s));
            OK(mms_txn_begin(s, 0));
            OK(mms_index_drop(t, "v"));
            OK(mms_txn_commit(s));
            OK(mms_txn_begin(s, 0));
            MMS_TABLE_GET(t, struct kv, 70)->v = 71;
            OK(mms_txn_commit(s));
            OK(mms_txn_begin(s, 0));
            FAILS(mms_index_create_covering(t, "v", flags, NULL), MMS_EUNIQUE);
        }
        ASSERT(strstr(mms_errdetail(), "is held by records 70 and 71"));
        OK(mms_txn_commit(s));
        OK(mms_indexes(t, &ii, 1, &n));
        ASSERT_EQ(n, 0);
        verify_ok(s);
        OK(mms_close(s));
    }
    /* Created on a table as committed but empty, then loaded: more records
     * appended than the index held, so the commit builds it again in bulk
     * instead of inserting them one by one. */
    rmrf(p);
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "kv", &kv_schema, MMS_TABLE_CREATE, &t));
    OK(mms_index_create_covering(t, "k", flags, "v"));
    memset(ct, 0, sizeof ct);
    ct_n = 0;
    for (uint64_t i = 0; i < CT_N; i++)
        ct_append(t, (int64_t)i * 7, (int32_t)i);
    ct_store_k(t, 5, 100005);
    ct_delete(t, 6);
    OK(mms_txn_commit(s));
    ct_check(s, t, flags);
    mms_index_info ii;
    size_t n;
    OK(mms_indexes(t, &ii, 1, &n));
    ASSERT(region_file(p, ii.region, 1));
    OK(mms_close(s));
    rmrf(p);
}

TEST(create_hash)
{
    create_in_txn(0);
}
TEST(create_hash_unique)
{
    create_in_txn(MMS_INDEX_UNIQUE);
}
TEST(create_ordered)
{
    create_in_txn(MMS_INDEX_ORDERED);
}
TEST(create_ordered_unique)
{
    create_in_txn(MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE);
}

/* An index built at create whose transaction then appends records: the
 * commit inserts them one by one, or builds the index again in bulk when
 * that costs less (index.c outgrown; bench/results/index.md, "Outgrown"):
 * a hash index the inserts would grow; an ordered one past 1/10 of its
 * entries when the keys land among its own, past 1.5x when they go after
 * them. A bulk build sorts (ordered or unique), the inserts do not. */
static void outgrown_case(unsigned flags, int64_t held, int64_t added, bool at_end,
                          unsigned long bulk)
{
    const char *p = shm_tpath("ixoutgrown");
    fprintf(stderr, "   flags %u, %lld held, %lld appended %s\n", flags, (long long)held,
            (long long)added, at_end ? "after them" : "among them");
    rmrf(p);
    mms_table *t;
    mms_store *s = kv_begin(p, (int)held, 0, &t); /* keys 7 i */
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "k", flags));
    unsigned long sorts = mms__ix_sorts;
    int64_t k = 0;
    for (int64_t i = 0; i < added; i++) {
        /* Among: 7 j + 3 for distinct j spread over [0, held) (7919 is prime). */
        k = at_end ? (held + i) * 7 : (i * 7919 % held) * 7 + 3;
        OK(mms_table_append(t, &(struct kv){k, (int32_t)i, 0}, NULL));
    }
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms__ix_sorts - sorts, bulk);
    verify_ok(s);
    mms_index *ix;
    uint64_t at;
    OK(mms_index_open(t, "k", &ix));
    OK(mms_index_find(ix, &k, &at));
    ASSERT_EQ(at, (uint64_t)(held + added - 1));
    OK(mms_close(s));
    rmrf(p);
}

TEST(outgrown)
{
    outgrown_case(MMS_INDEX_ORDERED, 2000, 100, false, 0);
    outgrown_case(MMS_INDEX_ORDERED, 2000, 400, false, 1);
    outgrown_case(MMS_INDEX_ORDERED, 2000, 2000, true, 0);
    outgrown_case(MMS_INDEX_ORDERED, 2000, 3100, true, 1);
    /* 1000 held: 2048 slots, 1536 entries before it grows. */
    outgrown_case(MMS_INDEX_HASH | MMS_INDEX_UNIQUE, 1000, 500, false, 0);
    outgrown_case(MMS_INDEX_HASH | MMS_INDEX_UNIQUE, 1000, 600, false, 1);
}

/* A hash index on a field of a hundred keys held by a few hundred records
 * each (a status, a country) is built and kept: the runs of equal keys
 * meet at 3/4 load, and a run past the probe's bound made create (100
 * keys of 200 records) and commits that append more fail MMS_ENOTSUP,
 * which mmstore.h promised only for keys held by a thousand or more. The
 * index spreads such runs over more slots instead. One key held by 5000
 * records is still refused. Seen failing before the fix. */
TEST(hash_runs_spread)
{
    const char *p = shm_tpath("ixruns");
    rmrf(p);
    mms_table *t;
    mms_index *ix;
    uint64_t n;
    mms_store *s = kv_begin(p, 0, 0, &t);
    for (int i = 0; i < 20000; i++) /* k: 100 keys, 200 records each */
        OK(mms_table_append(t, &(struct kv){i % 100, i, 0}, NULL));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "k", 0));
    OK(mms_txn_commit(s));
    OK(mms_index_open(t, "k", &ix));
    for (int64_t k = 0; k < 100; k++) {
        OK(mms_index_count(ix, &k, &n));
        ASSERT_EQ(n, 200);
    }
    /* The commit's inserts: 200 more records of 20 of the keys. */
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 4000; i++)
        OK(mms_table_append(t, &(struct kv){i % 20, i, 0}, NULL));
    OK(mms_txn_commit(s));
    for (int64_t k = 0; k < 100; k++) {
        OK(mms_index_count(ix, &k, &n));
        ASSERT_EQ(n, k < 20 ? 400 : 200);
    }
    verify_ok(s);
    /* One key of 5000 records cannot be spread. */
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 5000; i++)
        OK(mms_table_append(t, &(struct kv){100 + i, -1, 0}, NULL));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    ASSERT_EQ(mms_index_create(t, "v", 0), MMS_ENOTSUP);
    OK(mms_txn_abort(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* A descriptor whose key kind is not of its key's size (found by the
 * fuzzer's read path, crafted: chars[12] said to be i64 or f64) is damage
 * verify reports and lookups and commits refuse; norm would have shifted
 * past 64 bits. */
TEST(descriptor_kind_damaged)
{
    const char *p = shm_tpath("ixkind");
    static const unsigned kinds[] = {MMS_KIND_I64, MMS_KIND_F64, MMS_KIND_STR, 0};
    for (size_t b = 0; b < sizeof kinds / sizeof kinds[0]; b++) {
        mms_store *s = open_flags(p, MMS_CREATE);
        mms_table *t;
        mms_index *ix;
        mms_cursor *c;
        uint64_t rec;
        char msg[256];
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "r", &rec1_schema, MMS_TABLE_CREATE, &t));
        for (int i = 0; i < 10; i++) {
            struct rec1 r = {.id = i};
            snprintf(r.tag, sizeof r.tag, "tag%d", i);
            OK(mms_table_append(t, &r, NULL));
        }
        OK(mms_index_create(t, "tag", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE));
        OK(mms_txn_commit(s));
        /* The descriptor's key_kind, in the file. */
        const struct mms__tabent *e = mms__catalog_by_region(s, 1);
        ASSERT(e && e->nindexes == 1);
        uint64_t off = MMS_REF_SLOT(e->indexes) + offsetof(struct mms__ixdesc, key_kind);
        OK(mms_close(s));
        char f[600];
        snprintf(f, sizeof f, "%s/region-0-0", p);
        int fd = open(f, O_RDWR);
        ASSERT(fd >= 0);
        uint32_t k = kinds[b];
        ASSERT_EQ(pwrite(fd, &k, 4, (off_t)off), 4);
        close(fd);
        char key[12] = "tag3";
        s = open_flags(p, 0);
        FAILS(mms_verify(s, msg, sizeof msg), MMS_ECORRUPT);
        /* The table and index named once (not "table r: index on tag:
         * table r: the index on tag: ..."). */
        const char *named = strstr(msg, "table r:");
        ASSERT(named && !strstr(named + 1, "table r:"));
        OK(mms_table_find(s, "r", &t));
        OK(mms_index_open(t, "tag", &ix));
        FAILS(mms_index_find(ix, key, &rec), MMS_ECORRUPT);
        FAILS(mms_cursor_open(ix, &c), MMS_ECORRUPT);
        OK(mms_txn_begin(s, 0));
        OK(mms_table_append(t, &(struct rec1){.id = 10, .tag = "new"}, NULL));
        FAILS(mms_txn_commit(s), MMS_ECORRUPT);
        OK(mms_close(s));
        rmrf(p);
    }
}

/* Damaged index pages: verify says so; lookups never crash and never
 * return a record that does not hold the key. */
TEST(corrupt)
{
    const char *p = shm_tpath("ixbad");
    mms_table *t;
    enum { N = 5000 };
    mms_store *s = kv_begin(p, N, 50, &t);
    OK(mms_index_create(t, "k", MMS_INDEX_ORDERED));
    OK(mms_index_create(t, "v", 0));
    OK(mms_txn_commit(s));
    mms_index_info info[2];
    size_t n;
    OK(mms_indexes(t, info, 2, &n));
    OK(mms_close(s));
    rng = 99;
    for (int round = 0; round < 40; round++) {
        /* Scribble on a page of one index's file (not its header). */
        const mms_index_info *ii = &info[round % 2];
        char f[600];
        int fd = -1;
        for (unsigned gen = 0; gen < 10 && fd < 0; gen++) {
            snprintf(f, sizeof f, "%s/region-%u-%u", p, ii->region, gen);
            fd = open(f, O_RDWR);
        }
        ASSERT(fd >= 0);
        off_t size = lseek(fd, 0, SEEK_END);
        uint64_t pages = ii->bytes / 4096;
        ASSERT(size >= (off_t)ii->bytes && pages > 1);
        unsigned char junk[64];
        for (size_t j = 0; j < sizeof junk; j++)
            junk[j] = (unsigned char)rnd();
        off_t at = (off_t)(4096 * (1 + rnd() % (pages - 1)) + rnd() % (4096 - 64));
        if (round % 4 == 0)
            at = (off_t)(4096 * (1 + rnd() % (pages - 1))); /* a page header */
        unsigned char save[64];
        ASSERT_EQ(pread(fd, save, 64, at), 64);
        ASSERT_EQ(pwrite(fd, junk, 64, at), 64);
        s = open_flags(p, 0);
        OK(mms_table_find(s, "kv", &t));
        char msg[256];
        int vr = mms_verify(s, msg, sizeof msg);
        mms_index *ix;
        OK(mms_index_open(t, ii->field, &ix));
        for (int q = 0; q < 2000; q++) {
            int64_t k64 = (int64_t)(rnd() % (N * 7));
            int32_t k32 = (int32_t)(rnd() % 60);
            uint64_t rec;
            int fr = mms_index_find(ix, round % 2 ? (void *)&k32 : (void *)&k64, &rec);
            ASSERT(fr == 0 || fr == MMS_ENOTFOUND || fr == MMS_ECORRUPT);
            if (fr == 0) {
                const struct kv *r = MMS_TABLE_GET(t, struct kv, rec);
                ASSERT(round % 2 ? r->v == k32 : r->k == k64);
            }
        }
        if (round % 2 == 0) {
            mms_cursor *c;
            OK(mms_cursor_open(ix, &c));
            uint64_t rec;
            int cr = mms_cursor_seek(c, MMS_SEEK_FIRST, NULL, &rec, NULL);
            for (int q = 0; cr == 0 && q < 10 * N; q++)
                cr = mms_cursor_next(c, &rec, NULL);
            ASSERT(cr == MMS_ENOTFOUND || cr == MMS_ECORRUPT);
            mms_cursor_close(c);
        }
        OK(mms_close(s));
        if (round % 4 == 0)
            ASSERT_EQ(vr, MMS_ECORRUPT); /* a damaged page header */
        else if (vr == 0)
            fprintf(stderr, "  round %d: junk at %lld in unused bytes\n", round, (long long)at);
        /* Junk in used bytes must be seen; restore either way. */
        ASSERT_EQ(pwrite(fd, save, 64, at), 64);
        close(fd);
        s = open_flags(p, 0);
        verify_ok(s);
        OK(mms_close(s));
    }
    rmrf(p);
}

/* The file of an index's region (its one generation), opened for writing. */
static int ix_file(const char *p, const mms_index_info *ii)
{
    int fd = -1;
    for (unsigned gen = 0; gen < 10 && fd < 0; gen++) {
        char f[600];
        snprintf(f, sizeof f, "%s/region-%u-%u", p, ii->region, gen);
        fd = open(f, O_RDWR);
    }
    ASSERT(fd >= 0);
    return fd;
}

/* Over kv_begin's table of store s (in its transaction): a covering hash
 * index on k covering v, committed, the store closed; *ii describes the
 * index, and its file comes back open for writing. */
static int covering_ix_file(const char *p, mms_store *s, mms_table *t, mms_index_info *ii)
{
    size_t n;
    OK(mms_index_create_covering(t, "k", 0, "v"));
    OK(mms_txn_commit(s));
    OK(mms_indexes(t, ii, 1, &n));
    OK(mms_close(s));
    return ix_file(p, ii);
}

/* The offset of the hash slot (E bytes) holding key (K bytes in index
 * form), or -1. */
static off_t slot_of(int fd, uint64_t bytes, const void *key, uint32_t K, uint32_t E)
{
    char sl[16];
    for (off_t at = 4096; at + E <= (off_t)bytes; at += E) {
        ASSERT_EQ(pread(fd, sl, 16, at), 16);
        uint64_t w;
        memcpy(&w, sl, 8);
        if (w && memcmp(sl + 8, key, K) == 0)
            return at;
    }
    return -1;
}

/* A hash slot's record index is checked against its key (FORMAT §2.8): a
 * lookup in a read transaction, which takes the slot for the answer
 * without reading the record, never follows a damaged one to another
 * record, by the 8-byte path (k) or the general one (v, 4 bytes); verify
 * reports it. An index header of the format before checks is refused with
 * MMS_EVERSION until it is dropped and created again. */
TEST(slot_checks)
{
    const char *p = shm_tpath("ixslot");
    mms_table *t;
    enum { N = 3000 };
    mms_store *s = kv_begin(p, N, 0, &t);
    OK(mms_index_create(t, "k", 0));
    OK(mms_index_create(t, "v", MMS_INDEX_UNIQUE));
    OK(mms_txn_commit(s));
    mms_index_info info[2];
    size_t n;
    OK(mms_indexes(t, info, 2, &n));
    ASSERT_EQ(n, 2);
    OK(mms_close(s));
    char msg[256];
    for (int f = 0; f < 2; f++) {
        const mms_index_info *ii = &info[f];
        int fd = ix_file(p, ii);
        for (int round = 0; round < 20; round++) {
            int32_t i = (int32_t)(rnd() % N);
            uint64_t k8 = __builtin_bswap64((uint64_t)(i * 7) ^ (UINT64_C(1) << 63));
            uint32_t k4 = __builtin_bswap32((uint32_t)i ^ (UINT32_C(1) << 31));
            off_t at = slot_of(fd, ii->bytes, f ? (void *)&k4 : (void *)&k8, f ? 4 : 8, 16);
            ASSERT(at > 0);
            uint64_t w, bad;
            ASSERT_EQ(pread(fd, &w, 8, at), 8);
            ASSERT_EQ(w & ((UINT64_C(1) << 40) - 1), (uint64_t)i + 1);
            /* Another record (its index, or a bit of the check, flipped). */
            bad = w ^ (round % 2 ? UINT64_C(1) << (rnd() % 12) : UINT64_C(1) << (40 + rnd() % 24));
            ASSERT_EQ(pwrite(fd, &bad, 8, at), 8);
            s = open_flags(p, 0);
            OK(mms_table_find(s, "kv", &t));
            FAILS(mms_verify(s, msg, sizeof msg), MMS_ECORRUPT);
            ASSERT(strstr(msg, "check") != NULL);
            mms_index *ix;
            OK(mms_index_open(t, ii->field, &ix));
            OK(mms_read_begin(s));
            int64_t key64 = i * 7;
            int32_t key32 = i;
            uint64_t rec, many[2];
            FAILS(mms_index_find(ix, f ? (void *)&key32 : (void *)&key64, &rec), MMS_ENOTFOUND);
            OK(mms_index_find_all(ix, f ? (void *)&key32 : (void *)&key64, many, 2, &n));
            ASSERT_EQ(n, 0);
            OK(mms_index_find_many(ix, f ? (void *)&key32 : (void *)&key64, 1, many, &n));
            ASSERT_EQ(n, 0);
            ASSERT_EQ(many[0], UINT64_MAX);
            /* The others are found. */
            key64 = ((i + 1) % N) * 7;
            key32 = (i + 1) % N;
            OK(mms_index_find(ix, f ? (void *)&key32 : (void *)&key64, &rec));
            ASSERT_EQ(rec, (uint64_t)((i + 1) % N));
            mms_read_end(s);
            OK(mms_close(s));
            ASSERT_EQ(pwrite(fd, &w, 8, at), 8);
        }
        close(fd);
    }
    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_close(s));

    /* A header's reserved bytes, flags it does not know, and a hash
     * index's root, are zero (FORMAT): one that is not, verify names; put
     * back, it is content. */
    static const struct {
        off_t at;
        const char *says;
    } zeros[] = {{65, "unknown flags"}, {68, "reserved byte 68"}, {4095, "reserved byte 4095"},
                 {offsetof(struct mms__ixhdr, root), "root"}};
    for (size_t z = 0; z < sizeof zeros / sizeof zeros[0]; z++) {
        int fd = ix_file(p, &info[0]);
        uint8_t one = 1, zero = 0;
        ASSERT_EQ(pwrite(fd, &one, 1, zeros[z].at), 1);
        s = open_flags(p, 0);
        FAILS(mms_verify(s, msg, sizeof msg), MMS_ECORRUPT);
        ASSERT(strstr(msg, zeros[z].says) != NULL);
        OK(mms_close(s));
        ASSERT_EQ(pwrite(fd, &zero, 1, zeros[z].at), 1);
        close(fd);
        s = open_flags(p, 0);
        verify_ok(s);
        OK(mms_close(s));
    }

    /* A hash index of version 0 (the header's word at 48). */
    int fd = ix_file(p, &info[0]);
    uint32_t v0 = 0, v;
    ASSERT_EQ(pread(fd, &v, 4, offsetof(struct mms__ixhdr, version)), 4);
    ASSERT_EQ(v, MMS__IX_VERSION);
    ASSERT_EQ(pwrite(fd, &v0, 4, offsetof(struct mms__ixhdr, version)), 4);
    close(fd);
    s = open_flags(p, 0);
    OK(mms_table_find(s, "kv", &t));
    FAILS(mms_verify(s, msg, sizeof msg), MMS_ECORRUPT);
    ASSERT(strstr(msg, "format version 0") != NULL);
    mms_index *ix;
    OK(mms_index_open(t, "k", &ix));
    int64_t key = 70;
    uint64_t rec;
    OK(mms_read_begin(s));
    FAILS(mms_index_find(ix, &key, &rec), MMS_EVERSION);
    mms_read_end(s);
    /* A commit that changes a key cannot keep it: it fails, and aborts. */
    OK(mms_txn_begin(s, 0));
    MMS_TABLE_GET(t, struct kv, 10)->k = -1;
    FAILS(mms_txn_commit(s), MMS_EVERSION);
    ASSERT_EQ(MMS_TABLE_GET(t, struct kv, 10)->k, 70);
    /* Dropped and created again, it is of this version. */
    OK(mms_txn_begin(s, 0));
    OK(mms_index_drop(t, "k"));
    OK(mms_index_create(t, "k", 0));
    OK(mms_txn_commit(s));
    OK(mms_read_begin(s));
    OK(mms_index_find(ix, &key, &rec));
    ASSERT_EQ(rec, 10);
    mms_read_end(s);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* Two slots of one key (a hash index that is not unique), one of them
 * damaged: a find in a read transaction goes on past the damaged one to
 * the other, through the short path of a plain get and of a covered one
 * (whose probe stops at the first slot holding the key and leaves the
 * rest of the probe to the general one) as through the long ones. */
TEST(slot_damaged_probe_goes_on)
{
    const char *p = shm_tpath("ixslot2");
    mms_table *t;
    enum { N = 3000 };
    mms_store *s = kv_begin(p, N, 0, &t);
    OK(mms_table_append(t, &(struct kv){70, 12345, 0}, NULL)); /* record N: the key of 10 */
    mms_index_info ii;
    size_t n;
    int fd = covering_ix_file(p, s, t, &ii);
    const uint64_t k8 = __builtin_bswap64((uint64_t)70 ^ (UINT64_C(1) << 63));
    off_t at[2];
    int32_t val[2];
    uint64_t rec[2];
    int m = 0;
    for (off_t o = 4096; o + 24 <= (off_t)ii.bytes && m < 2; o += 24) {
        char sl[24];
        uint64_t w;
        ASSERT_EQ(pread(fd, sl, 24, o), 24);
        memcpy(&w, sl, 8);
        if (w && memcmp(sl + 8, &k8, 8) == 0) {
            at[m] = o;
            rec[m] = (w & ((UINT64_C(1) << 40) - 1)) - 1;
            memcpy(&val[m++], sl + 16, 4);
        }
    }
    ASSERT_EQ(m, 2);
    ASSERT(rec[0] != rec[1] && (rec[0] == 10 || rec[0] == N) && (rec[1] == 10 || rec[1] == N));
    for (int d = 0; d < 2; d++) {
        uint64_t w, bad;
        ASSERT_EQ(pread(fd, &w, 8, at[d]), 8);
        for (int how = 0; how < 2; how++) { /* a bit of the check, of the record */
            bad = w ^ (how ? UINT64_C(1) << 3 : UINT64_C(1) << 50);
            ASSERT_EQ(pwrite(fd, &bad, 8, at[d]), 8);
            s = open_flags(p, MMS_RDONLY);
            OK(mms_table_find(s, "kv", &t));
            mms_index *ix;
            OK(mms_index_open(t, "k", &ix));
            for (int txn = 0; txn < 2; txn++) { /* a read transaction, none */
                if (txn == 0)
                    OK(mms_read_begin(s));
                for (int get = 0; get < 2; get++) { /* the first get resolves the view */
                    int64_t key = 70;
                    uint64_t r = UINT64_MAX, many[2];
                    int32_t v = -1;
                    OK(mms_index_find(ix, &key, &r));
                    ASSERT_EQ(r, rec[1 - d]);
                    r = UINT64_MAX;
                    OK(mms_index_find_covered(ix, &key, &r, &v));
                    ASSERT_EQ(r, rec[1 - d]);
                    ASSERT_EQ(v, val[1 - d]);
                    OK(mms_index_find_covered(ix, &key, NULL, &v));
                    OK(mms_index_find_all(ix, &key, many, 2, &n));
                    ASSERT_EQ(n, 1);
                    ASSERT_EQ(many[0], rec[1 - d]);
                }
                if (txn == 0)
                    mms_read_end(s);
            }
            OK(mms_close(s));
        }
        ASSERT_EQ(pwrite(fd, &w, 8, at[d]), 8);
    }
    close(fd);
    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * Covering indexes (mms_index_create_covering), hash and ordered: the copy
 * of the covered field in each hash slot or leaf entry, after every kind
 * of change, an abort, a reopen, growth and a migration that widens one
 * covered field within 8 bytes and another past them; verify finds a
 * damaged copy.
 * ------------------------------------------------------------------------ */
struct cv1 {
    int64_t k;
    uint32_t u;
    int32_t b;
    char c[8];
    char name[12];
    uint32_t pad;
};
static const mms_field cv1_fields[] = {MMS_F_I64(struct cv1, k), MMS_F_U32(struct cv1, u),
                                       MMS_F_I32(struct cv1, b), MMS_F_CHARS(struct cv1, c),
                                       MMS_F_CHARS(struct cv1, name)};
static const mms_schema cv1_schema = MMS_SCHEMA(struct cv1, cv1_fields);
/* b widened to i64 (still covered), c to chars[16] (no longer coverable). */
struct cv2 {
    int64_t k;
    uint32_t u;
    uint32_t pad;
    int64_t b;
    char c[16];
    char name[12];
    uint32_t pad2;
};
static const mms_field cv2_fields[] = {MMS_F_I64(struct cv2, k), MMS_F_U32(struct cv2, u),
                                       MMS_F_I64(struct cv2, b), MMS_F_CHARS(struct cv2, c),
                                       MMS_F_CHARS(struct cv2, name)};
static const mms_schema cv2_schema = MMS_SCHEMA(struct cv2, cv2_fields);

struct cvm {
    int64_t k, b;
    uint32_t u;
    char c[16];
    bool live;
};
enum { CVMAX = 4000 };
static struct cvm cvm[CVMAX];
static uint64_t cvn;
static int cv_layout;
static unsigned cv_kind; /* of both indexes: 0 (hash) or MMS_INDEX_ORDERED */

static void cv_put(mms_table *t, uint64_t i)
{
    if (cv_layout == 1) {
        struct cv1 *r = MMS_TABLE_GET(t, struct cv1, i);
        r->k = cvm[i].k, r->u = cvm[i].u, r->b = (int32_t)cvm[i].b;
        memcpy(r->c, cvm[i].c, 8);
    } else {
        struct cv2 *r = MMS_TABLE_GET(t, struct cv2, i);
        r->k = cvm[i].k, r->u = cvm[i].u, r->b = cvm[i].b;
        memcpy(r->c, cvm[i].c, 16);
    }
}

static void cv_new(uint64_t i)
{
    ASSERT_LT(i, CVMAX);
    memset(&cvm[i], 0, sizeof cvm[i]);
    cvm[i].k = (int64_t)(i * 11) - 500;
    cvm[i].u = (uint32_t)(i * 3 + 1);
    cvm[i].b = (int64_t)(rnd() % 100000) - 50000;
    snprintf(cvm[i].c, 8, "c%llu", (unsigned long long)(rnd() % 99999));
    cvm[i].live = true;
    if (i >= cvn)
        cvn = i + 1;
}

/* The record holding key (K bytes) through ix, and its covered value: a
 * covered find; on an ordered index it must agree with a seek and the
 * entry's value (mms_cursor_covered). */
static int cv_find(mms_index *ix, const void *key, size_t K, uint64_t *at, void *val)
{
    uint64_t rec;
    if (!(cv_kind & MMS_INDEX_ORDERED)) {
        FAILS(mms_cursor_open(ix, &(mms_cursor *){NULL}), MMS_ENOTSUP);
        return mms_index_find_covered(ix, key, at, val);
    }
    int r = mms_index_find_covered(ix, key, at ? at : &rec, val);
    if (!val)
        return r;
    uint64_t frec = UINT64_MAX, crec = UINT64_MAX;
    char fval[8] = {0}, cval[8] = {0}, kout[8];
    ASSERT_EQ(mms_index_find_covered(ix, key, &frec, fval), r);
    mms_cursor *c;
    OK(mms_cursor_open(ix, &c));
    int cr = mms_cursor_seek(c, MMS_SEEK_GE, key, &crec, kout);
    if (cr == 0 && memcmp(kout, key, K) != 0)
        cr = MMS_ENOTFOUND;
    if (cr == 0)
        cr = mms_cursor_covered(c, cval);
    mms_cursor_close(c);
    ASSERT_EQ(cr, r);
    if (r == 0) {
        ASSERT_EQ(crec, frec);
        ASSERT(memcmp(cval, fval, sizeof cval) == 0);
    }
    return r;
}

/* An ordered index on k holds each live record once, in key order, each
 * with its b. */
static void cv_walk(mms_index *ixk, uint64_t live)
{
    mms_cursor *c;
    uint64_t rec, n = 0;
    int64_t k, prev = INT64_MIN, b8 = 0;
    int32_t b4 = 0;
    OK(mms_cursor_open(ixk, &c));
    for (int r = mms_cursor_seek(c, MMS_SEEK_FIRST, NULL, &rec, &k); r != MMS_ENOTFOUND;
         r = mms_cursor_next(c, &rec, &k)) {
        OK(r);
        ASSERT_LT(rec, cvn);
        ASSERT(cvm[rec].live);
        ASSERT_EQ(k, cvm[rec].k);
        ASSERT(k > prev);
        prev = k;
        OK(mms_cursor_covered(c, cv_layout == 1 ? (void *)&b4 : &b8));
        ASSERT_EQ(cv_layout == 1 ? b4 : b8, cvm[rec].b);
        n++;
    }
    ASSERT_EQ(n, live);
    mms_cursor_close(c);
}

/* Every live record is found by k with its b, and by u with its c (while
 * c is covered); an absent key is not found. */
static void cv_check(mms_table *t)
{
    mms_index *ixk, *ixu;
    OK(mms_index_open(t, "k", &ixk));
    OK(mms_index_open(t, "u", &ixu));
    ASSERT_EQ(mms_table_slots(t), cvn);
    uint64_t live = 0;
    for (uint64_t i = 0; i < cvn; i++) {
        ASSERT_EQ(mms_table_live(t, i), cvm[i].live);
        if (!cvm[i].live)
            continue;
        live++;
        uint64_t at = UINT64_MAX;
        int64_t b8 = 0;
        int32_t b4 = 0;
        OK(cv_find(ixk, &cvm[i].k, 8, &at, cv_layout == 1 ? (void *)&b4 : &b8));
        ASSERT_EQ(at, i);
        ASSERT_EQ(cv_layout == 1 ? b4 : b8, cvm[i].b);
        char c[8];
        if (cv_layout == 1) {
            OK(cv_find(ixu, &cvm[i].u, 4, NULL, c));
            ASSERT(memcmp(c, cvm[i].c, 8) == 0);
        } else {
            FAILS(cv_find(ixu, &cvm[i].u, 4, &at, c), MMS_ENOTSUP);
            OK(mms_index_find(ixu, &cvm[i].u, &at));
            ASSERT_EQ(at, i);
        }
    }
    int64_t absent = -501;
    FAILS(cv_find(ixk, &absent, 8, &(uint64_t){0}, &absent), MMS_ENOTFOUND);
    if (cv_kind & MMS_INDEX_ORDERED)
        cv_walk(ixk, live);
}

/* cv_check in a read transaction (slots alone), then outside one (records
 * read), and verify. */
static void cv_check_all(mms_store *s, mms_table *t)
{
    OK(mms_read_begin(s));
    cv_check(t);
    mms_read_end(s);
    cv_check(t);
    verify_ok(s);
}

/* The offset of the leaf entry (E bytes) of an ordered index whose first
 * L bytes are ent, or -1. */
static off_t leaf_entry_of(int fd, uint64_t bytes, const void *ent, uint32_t L, uint32_t E)
{
    char pg[4096];
    for (off_t at = 4096; at + 4096 <= (off_t)bytes; at += 4096) {
        ASSERT_EQ(pread(fd, pg, 4096, at), 4096);
        uint16_t type, n;
        memcpy(&type, pg, 2);
        memcpy(&n, pg + 2, 2);
        for (uint32_t i = 0; type == MMS__IXP_LEAF && i < n && 32 + (i + 1) * E <= 4096; i++)
            if (memcmp(pg + 32 + i * E, ent, L) == 0)
                return at + 32 + i * E;
    }
    return -1;
}

static void covering_of(unsigned kind)
{
    rng = 31;
    const char *p = shm_tpath(kind ? "ixcoverord" : "ixcover");
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t;
    cvn = 0;
    cv_layout = 1;
    cv_kind = kind;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &cv1_schema, MMS_TABLE_CREATE, &t));
    for (uint64_t i = 0; i < 100; i++) {
        OK(mms_table_append(t, &(struct cv1){0}, NULL));
        cv_new(i);
        cv_put(t, i);
    }
    FAILS(mms_index_create_covering(t, "k", kind, "name"), MMS_ENOTSUP);
    ASSERT(strstr(mms_errdetail(), "at most 8 bytes"));
    FAILS(mms_index_create_covering(t, "k", kind, "nope"), MMS_EINVAL);
    OK(mms_index_create_covering(t, "k", kind | MMS_INDEX_UNIQUE, "b"));
    OK(mms_index_create_covering(t, "u", kind, "c"));
    mms_index *ix0; /* the table is new: built at the commit, empty till then */
    uint64_t at0;
    OK(mms_index_open(t, "k", &ix0));
    FAILS(mms_index_find(ix0, &cvm[0].k, &at0), MMS_ENOTFOUND);
    OK(mms_txn_commit(s));
    cv_check_all(s, t);
    mms_index_info ii[2];
    size_t n;
    OK(mms_indexes(t, ii, 2, &n));
    ASSERT_EQ(n, 2);
    ASSERT(strcmp(ii[0].cover, "b") == 0);
    ASSERT_EQ(ii[0].cover_kind, MMS_KIND_I32);
    ASSERT_EQ(ii[0].cover_size, 4);
    ASSERT(strcmp(ii[1].cover, "c") == 0);
    ASSERT_EQ(ii[1].cover_size, 8);

    /* Every path that changes records, in one commit. */
    OK(mms_txn_begin(s, 0));
    uint64_t at, first;
    OK(mms_table_append(t, &(struct cv1){0}, &at)); /* append */
    cv_new(at);
    cv_put(t, at);
    void *where;
    OK(mms_table_append_many(t, 3, &first, &where)); /* append_many, filled in place */
    for (uint64_t j = first; j < first + 3; j++) {
        cv_new(j);
        cv_put(t, j);
    }
    OK(mms_table_delete(t, 7)); /* delete */
    cvm[7].live = false;
    for (uint64_t i = 10; i < 20; i++) { /* plain stores to the covered field only */
        cvm[i].b = -(int64_t)i * 1000;
        cv_put(t, i);
    }
    for (uint64_t i = 20; i < 23; i++) { /* to the key and the covered field */
        cvm[i].k += 100000;
        cvm[i].b = 777;
        cv_put(t, i);
    }
    memcpy(cvm[30].c, "zz", 3); /* to c */
    cv_put(t, 30);
    /* Inside the transaction the value is the record's (key unchanged). */
    int32_t b4;
    mms_index *ixk;
    OK(mms_index_open(t, "k", &ixk));
    FAILS(cv_find(ixk, &cvm[12].k, 8, &at, NULL), MMS_EINVAL);
    OK(cv_find(ixk, &cvm[12].k, 8, &at, &b4));
    ASSERT_EQ(at, 12);
    ASSERT_EQ(b4, -12000);
    OK(mms_txn_commit(s));
    cv_check_all(s, t);

    /* Growth: mid-commit, a hash index is rebuilt at twice the size, an
     * ordered one splits pages. */
    OK(mms_txn_begin(s, 0));
    for (int j = 0; j < 1500; j++) {
        OK(mms_table_append(t, &(struct cv1){0}, &at));
        cv_new(at);
        cv_put(t, at);
    }
    for (uint64_t i = 40; i < 60; i++) {
        cvm[i].b = 4242;
        cv_put(t, i);
    }
    OK(mms_txn_commit(s));
    cv_check_all(s, t);

    /* An abort leaves the copies as they were. */
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = 0; i < cvn; i += 3)
        if (cvm[i].live)
            MMS_TABLE_GET(t, struct cv1, i)->b = 99;
    OK(mms_table_delete(t, 50));
    OK(mms_txn_abort(s));
    cv_check_all(s, t);

    /* A reopen reads the same copies. */
    OK(mms_close(s));
    s = open_flags(p, 0);
    OK(mms_table_open(s, "t", &cv1_schema, 0, &t));
    cv_check_all(s, t);

    /* A damaged copy: verify names it; restored, verify is content. */
    OK(mms_indexes(t, ii, 2, &n));
    OK(mms_close(s));
    int fd = ix_file(p, &ii[0]);
    uint64_t ent[2] = {__builtin_bswap64((uint64_t)cvm[33].k ^ (UINT64_C(1) << 63)),
                       __builtin_bswap64(33)};
    /* the copy is at 16 in a hash slot (word, key) and an entry (key, record) */
    off_t sl = kind ? leaf_entry_of(fd, ii[0].bytes, ent, 16, 24)
                    : slot_of(fd, ii[0].bytes, ent, 8, 24);
    ASSERT(sl > 0);
    int32_t save, junk;
    ASSERT_EQ(pread(fd, &save, 4, sl + 16), 4);
    ASSERT_EQ(save, cvm[33].b);
    junk = save ^ 0x100;
    ASSERT_EQ(pwrite(fd, &junk, 4, sl + 16), 4);
    s = open_flags(p, 0);
    char msg[256];
    FAILS(mms_verify(s, msg, sizeof msg), MMS_ECORRUPT);
    ASSERT(strstr(msg, "copy of b"));
    /* A read transaction takes the copy for the value: the damaged one. */
    OK(mms_table_open(s, "t", &cv1_schema, 0, &t));
    OK(mms_index_open(t, "k", &ixk));
    OK(mms_read_begin(s));
    OK(cv_find(ixk, &cvm[33].k, 8, &at, &b4));
    ASSERT_EQ(at, 33);
    ASSERT_EQ(b4, junk);
    mms_read_end(s);
    OK(mms_close(s));
    ASSERT_EQ(pwrite(fd, &save, 4, sl + 16), 4);
    close(fd);
    s = open_flags(p, 0);
    verify_ok(s);

    /* A migration: b widened to i64 stays covered (rebuilt), c widened
     * past 8 bytes: the index on u keeps its keys and drops the copy. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &cv2_schema, 0, &t));
    cv_layout = 2;
    OK(mms_txn_commit(s));
    cv_check_all(s, t);
    OK(mms_indexes(t, ii, 2, &n));
    ASSERT(strcmp(ii[0].cover, "b") == 0);
    ASSERT_EQ(ii[0].cover_kind, MMS_KIND_I64);
    ASSERT_EQ(ii[0].cover_size, 8);
    ASSERT_EQ(ii[1].cover[0], 0);
    ASSERT_EQ(ii[1].cover_size, 0);
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = 60; i < 70; i++) {
        cvm[i].b = (int64_t)i << 40; /* wider than the old i32 */
        cv_put(t, i);
    }
    OK(mms_txn_commit(s));
    cv_check_all(s, t);
    OK(mms_close(s));
    s = open_flags(p, 0);
    OK(mms_table_open(s, "t", &cv2_schema, 0, &t));
    cv_check_all(s, t);
    OK(mms_close(s));
    rmrf(p);
}

TEST(covering)
{
    covering_of(0);
}

TEST(covering_ordered)
{
    covering_of(MMS_INDEX_ORDERED);
}

/* mms_index_find of an 8-byte integer key through a hash index (the short
 * path of lookup.c and index.c) against the general one: unsigned keys
 * with the top bit set, negative signed keys, refs, and a 4-byte key (the
 * general path), in a read transaction, a write transaction and outside
 * both; absent keys; and one handle kept while its field's index changes
 * from hash to ordered and back (the handle's view, and whether the short
 * path applies, follow the change). */
struct k8 {
    uint64_t u;
    int64_t i;
    mms_ref r;
    uint32_t w;
    uint32_t pad;
};
static const mms_field k8_fields[] = {MMS_F_U64(struct k8, u), MMS_F_I64(struct k8, i),
                                      MMS_F_REF(struct k8, r, "k8"), MMS_F_U32(struct k8, w)};
static const mms_schema k8_schema = MMS_SCHEMA(struct k8, k8_fields);

static mms_table *k8_t; /* refs are to its records (past its end: absent keys) */

static struct k8 k8_rec(uint64_t j)
{
    struct k8 x = {0};
    x.u = (j * UINT64_C(0x9e3779b97f4a7c15)) | (j % 2 ? UINT64_C(1) << 63 : 0);
    x.i = (int64_t)(j * 7919) * (j % 3 ? -1 : 1) - 1;
    x.r = mms_table_ref(k8_t, j);
    x.w = (uint32_t)(j * 2654435761u);
    return x;
}

static void k8_check(mms_table *t, uint64_t n, const char *const *fields, int nf)
{
    for (int f = 0; f < nf; f++) {
        mms_index *ix;
        OK(mms_index_open(t, fields[f], &ix));
        for (uint64_t j = 0; j < n; j++) {
            struct k8 x = k8_rec(j);
            const void *key = f == 0 ? (void *)&x.u : f == 1 ? (void *)&x.i : f == 2 ?
                              (void *)&x.r : (void *)&x.w;
            uint64_t rec = UINT64_MAX, all[2];
            size_t m;
            OK(mms_index_find(ix, key, &rec));
            ASSERT_EQ(rec, j);
            OK(mms_index_find_all(ix, key, all, 2, &m));
            ASSERT_EQ(m, 1);
            ASSERT_EQ(all[0], j);
            /* Absent: the key of a record past the table. */
            x = k8_rec(n + j);
            FAILS(mms_index_find(ix, key, &rec), MMS_ENOTFOUND);
        }
        FAILS(mms_index_find(ix, NULL, &(uint64_t){0}), MMS_EINVAL);
        FAILS(mms_index_find(NULL, &(uint64_t){0}, &(uint64_t){0}), MMS_EINVAL);
    }
}

/* A hash index header whose slot count does not fit its region (not a
 * power of 2, or more slots than the region holds): every find reports
 * it, the short path of a read transaction (which takes the count checked
 * once, when the view is made) too, and none reads past the region. */
TEST(slot_count_checked)
{
    const char *p = shm_tpath("ixcount");
    mms_table *t;
    enum { N = 3000 };
    mms_store *s = kv_begin(p, N, 0, &t);
    mms_index_info ii;
    int fd = covering_ix_file(p, s, t, &ii);
    uint64_t ns;
    ASSERT_EQ(pread(fd, &ns, 8, offsetof(struct mms__ixhdr, nslots)), 8);
    const uint64_t bad[] = {ns * 2, ns + 1, ns - 1, 0};
    for (size_t b = 0; b <= sizeof bad / sizeof bad[0]; b++) {
        uint64_t w = b < sizeof bad / sizeof bad[0] ? bad[b] : ns;
        ASSERT_EQ(pwrite(fd, &w, 8, offsetof(struct mms__ixhdr, nslots)), 8);
        s = open_flags(p, MMS_RDONLY);
        OK(mms_table_find(s, "kv", &t));
        mms_index *ix;
        OK(mms_index_open(t, "k", &ix));
        OK(mms_read_begin(s));
        int64_t key = 70;
        uint64_t rec = UINT64_MAX;
        int32_t v = -1;
        if (w == ns) {
            OK(mms_index_find(ix, &key, &rec));
            ASSERT_EQ(rec, 10);
            OK(mms_index_find_covered(ix, &key, &rec, &v));
            ASSERT_EQ(v, 10);
        } else {
            FAILS(mms_index_find(ix, &key, &rec), MMS_ECORRUPT);
            FAILS(mms_index_find_covered(ix, &key, &rec, &v), MMS_ECORRUPT);
        }
        mms_read_end(s);
        OK(mms_close(s));
    }
    close(fd);
    rmrf(p);
}

TEST(find_short_path)
{
    const char *p = shm_tpath("ixshort");
    static const char *const fields[] = {"u", "i", "r", "w"};
    enum { N = 5000 };
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "k8", &k8_schema, MMS_TABLE_CREATE, &t));
    k8_t = t;
    for (uint64_t j = 0; j < N; j++)
        OK(mms_table_append(t, &(struct k8){0}, NULL));
    for (uint64_t j = 0; j < N; j++)
        *MMS_TABLE_GET(t, struct k8, j) = k8_rec(j);
    for (int f = 0; f < 4; f++)
        OK(mms_index_create(t, fields[f], 0));
    OK(mms_txn_commit(s));
    k8_check(t, N, fields, 4); /* outside a transaction */
    OK(mms_read_begin(s));
    k8_check(t, N, fields, 4);
    mms_read_end(s);
    OK(mms_txn_begin(s, 0));
    k8_check(t, N, fields, 4);
    /* A key changed in this transaction: found under its new key only. */
    mms_index *ix;
    OK(mms_index_open(t, "u", &ix));
    uint64_t old = MMS_TABLE_GET(t, struct k8, 17)->u, now = 5, rec;
    MMS_TABLE_GET(t, struct k8, 17)->u = now;
    FAILS(mms_index_find(ix, &old, &rec), MMS_ENOTFOUND);
    OK(mms_txn_commit(s));
    OK(mms_read_begin(s));
    OK(mms_index_find(ix, &now, &rec));
    ASSERT_EQ(rec, 17);
    FAILS(mms_index_find(ix, &old, &rec), MMS_ENOTFOUND);
    mms_read_end(s);
    /* The same handle while the index on u becomes ordered, then hash. */
    for (int round = 0; round < 2; round++) {
        OK(mms_txn_begin(s, 0));
        OK(mms_index_drop(t, "u"));
        OK(mms_index_create(t, "u", round == 0 ? MMS_INDEX_ORDERED : 0));
        MMS_TABLE_GET(t, struct k8, 17)->u = old;
        OK(mms_txn_commit(s));
        OK(mms_read_begin(s));
        k8_check(t, N, fields, 1);
        mms_cursor *c;
        if (round == 0) {
            OK(mms_cursor_open(ix, &c));
            mms_cursor_close(c);
        } else {
            FAILS(mms_cursor_open(ix, &c), MMS_ENOTSUP);
        }
        mms_read_end(s);
        OK(mms_txn_begin(s, 0));
        MMS_TABLE_GET(t, struct k8, 17)->u = now;
        OK(mms_txn_commit(s));
    }
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * Processes: SIGKILL during a bulk build and during commits that change
 * keys; a reader looking up while a writer changes keys.
 * ------------------------------------------------------------------------ */
struct shared {
    uint32_t opened, commits, reads, bad, done;
    char why[200];
};
static struct shared *SH;
enum { CN = 20000 };

/* Every live record of kv is found through both indexes, and verify
 * (entry by entry) agrees. */
static void crash_check(const char *p, bool want_index)
{
    mms_store *s = open_flags(p, 0);
    verify_ok(s);
    mms_table *t;
    OK(mms_table_find(s, "kv", &t));
    mms_index *hk, *hv;
    int r = mms_index_open(t, "k", &hk);
    if (!want_index && r == MMS_ENOENT) {
        FAILS(mms_index_open(t, "v", &hv), MMS_ENOENT);
        OK(mms_close(s));
        return;
    }
    OK(r);
    OK(mms_index_open(t, "v", &hv));
    mms_cursor *c;
    OK(mms_cursor_open(hk, &c));
    for (uint64_t i = 0; i < mms_table_slots(t); i++) {
        if (!mms_table_live(t, i))
            continue;
        const struct kv *rec = MMS_TABLE_GET(t, struct kv, i);
        uint64_t at;
        OK(mms_index_find(hk, &rec->k, &at));
        ASSERT_EQ(at, i);
        size_t n;
        OK(mms_index_count(hv, &rec->v, &(uint64_t){0}));
        OK(mms_index_find_all(hv, &rec->v, NULL, 0, &n));
        ASSERT(n >= 1);
        int64_t kc;
        OK(mms_read_begin(s)); /* the slot's copy of k, the entry's of v */
        OK(mms_index_find_covered(hv, &rec->v, &at, &kc));
        ASSERT_EQ(kc, MMS_TABLE_GET(t, struct kv, at)->k);
        int32_t vc;
        OK(mms_cursor_seek(c, MMS_SEEK_GE, &rec->k, &at, NULL));
        ASSERT_EQ(at, i);
        OK(mms_cursor_covered(c, &vc));
        ASSERT_EQ(vc, rec->v);
        mms_read_end(s);
    }
    mms_cursor_close(c);
    OK(mms_close(s));
}

static void child_work(const char *p, const char *mode)
{
    mms_store *s = open_flags(p, 0);
    mms_table *t;
    OK(mms_table_find(s, "kv", &t));
    uint64_t x = (uint64_t)getpid();
    if (strcmp(mode, "build") == 0) {
        PUB(SH->opened, 1);
        OK(mms_txn_begin(s, 0));
        OK(mms_index_create_covering(t, "k", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE, "v"));
        OK(mms_index_create_covering(t, "v", 0, "k"));
        OK(mms_txn_commit(s));
        INC(SH->commits);
        _exit(0);
    }
    if (strcmp(mode, "churn") == 0) {
        PUB(SH->opened, 1);
        for (uint32_t c = 0;; c++) {
            OK(mms_txn_begin(s, 0));
            for (int k = 0; k < 50; k++) {
                uint64_t i = rnd_next(&x) % mms_table_slots(t);
                int64_t key = (int64_t)getpid() << 40 | (int64_t)c << 8 | k;
                unsigned what = (unsigned)(rnd_next(&x) % 4);
                if (!mms_table_live(t, i))
                    continue;
                if (what == 0)
                    OK(mms_table_delete(t, i));
                else if (what == 1)
                    OK(mms_table_append(t, &(struct kv){key, (int32_t)(key % 1000), 0}, NULL));
                else if (what == 2) /* a covered value alone */
                    MMS_TABLE_GET(t, struct kv, i)->v = (int32_t)(key % 1000);
                else {
                    struct kv *r = MMS_TABLE_GET(t, struct kv, i);
                    r->k = key; /* a plain store */
                    r->v = (int32_t)(key % 1000);
                }
            }
            OK(mms_txn_commit(s));
            INC(SH->commits);
        }
    }
    /* reader: in read transactions, every record found by its key is the
     * record holding it, and holds it alone; the copy of k the index on v
     * holds is the k of the record it names (no torn view). */
    PUB(SH->opened, 1);
    mms_index *hk, *hv;
    mms_cursor *c = NULL;
    while (!GET(SH->done)) {
        OK(mms_read_begin(s));
        if (mms_index_open(t, "k", &hk) == 0 && mms_index_open(t, "v", &hv) == 0) {
            if (!c)
                OK(mms_cursor_open(hk, &c));
            uint64_t slots = mms_table_slots(t);
            for (int q = 0; q < 200 && slots; q++) {
                uint64_t i = rnd_next(&x) % slots, at;
                if (!mms_table_live(t, i))
                    continue;
                const struct kv *r = MMS_TABLE_GET(t, struct kv, i);
                int fr = mms_index_find(hk, &r->k, &at);
                size_t n = 0;
                int cr = mms_index_find_all(hk, &r->k, NULL, 0, &n);
                if (fr || at != i || cr || n != 1) {
                    snprintf(SH->why, sizeof SH->why, "record %llu key %lld: find %d at %llu, "
                             "count %d %zu", (unsigned long long)i, (long long)r->k, fr,
                             (unsigned long long)at, cr, n);
                    INC(SH->bad);
                }
                int64_t kc = 0;
                fr = mms_index_find_covered(hv, &r->v, &at, &kc);
                if (fr || at >= slots || MMS_TABLE_GET(t, struct kv, at)->v != r->v ||
                    MMS_TABLE_GET(t, struct kv, at)->k != kc) {
                    snprintf(SH->why, sizeof SH->why, "v %d: covered find %d at %llu, copy of k "
                             "%lld", r->v, fr, (unsigned long long)at, (long long)kc);
                    INC(SH->bad);
                }
                int32_t vc = 0;
                fr = mms_cursor_seek(c, MMS_SEEK_GE, &r->k, &at, NULL);
                cr = fr ? fr : mms_cursor_covered(c, &vc);
                if (fr || cr || at != i || vc != r->v) {
                    snprintf(SH->why, sizeof SH->why, "record %llu key %lld: seek %d at %llu, "
                             "covered %d copy of v %d", (unsigned long long)i, (long long)r->k, fr,
                             (unsigned long long)at, cr, vc);
                    INC(SH->bad);
                }
            }
            INC(SH->reads);
        }
        OK(mms_read_end(s));
    }
    mms_cursor_close(c);
    OK(mms_close(s));
    _exit(0);
}

static void kv_fill(const char *p, bool index)
{
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "kv", &kv_schema, MMS_TABLE_CREATE, &t));
    for (int i = 0; i < CN; i++)
        OK(mms_table_append(t, &(struct kv){i, i % 1000, 0}, NULL));
    if (index) {
        OK(mms_index_create_covering(t, "k", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE, "v"));
        OK(mms_index_create_covering(t, "v", 0, "k"));
    }
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

TEST(crash)
{
    unsigned soak;
    rng = test_seed("test_index crash", 0, &soak, "");
    const char *p = shm_tpath("ixcrash");
    SH = child_page(sizeof *SH);
    static const char *const points[] = {"commit.fresh_synced:1", "commit.journal_write:1",
                                         "commit.journal_synced:1", "commit.apply:1",
                                         "apply.applied:1", NULL};
    /* A bulk build killed at each crash point, and at random moments. */
    for (unsigned round = 0; round < 8 * soak; round++) {
        kv_fill(p, false);
        memset(SH, 0, sizeof *SH);
        const char *crash = round < 5 ? points[round] : NULL;
        pid_t pid = child_spawn((const char *[]){"build", p, NULL},
                                (const char *[]){"MMS_CRASH", crash, NULL});
        if (!crash) {
            AWAIT(GET(SH->opened), pid, 60, "the child did not open the store");
            sleep_us((unsigned)(rnd() % 40000));
            kill(pid, SIGKILL);
        }
        int st;
        ASSERT(child_end(pid, 60, &st));
        /* Killed, or (a point the build does not pass) done. */
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) &&
            !(WIFEXITED(st) && WEXITSTATUS(st) == 0 && GET(SH->commits) == 1))
            FAILF("build child (MMS_CRASH=%s): %s", crash ? crash : "-", child_status(st));
        crash_check(p, GET(SH->commits) > 0);
        rmrf(p);
    }
    /* Commits that change keys (plain stores, appends, deletes), killed. */
    kv_fill(p, true);
    uint32_t total = 0;
    for (unsigned round = 0; round < 8 * soak; round++) {
        memset(SH, 0, sizeof *SH);
        const char *crash = NULL;
        char cbuf[64];
        if (round % 2) {
            snprintf(cbuf, sizeof cbuf, "%s", points[rnd() % 5]);
            cbuf[strlen(cbuf) - 1] = (char)('1' + rnd() % 5);
            crash = cbuf;
        }
        pid_t pid = child_spawn((const char *[]){"churn", p, NULL},
                                (const char *[]){"MMS_CRASH", crash, NULL});
        AWAIT(GET(SH->opened), pid, 60, "the child did not open the store");
        /* Killed at random, or by its crash point (if it passes it soon). */
        sleep_us(crash ? 300000 : 2000 + (unsigned)(rnd() % 50000));
        kill(pid, SIGKILL);
        int st;
        ASSERT(child_end(pid, 60, &st));
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
            FAILF("churn child (MMS_CRASH=%s): %s", crash ? crash : "-", child_status(st));
        total += GET(SH->commits);
        crash_check(p, true);
    }
    fprintf(stderr, "  %u commits changing keys before the kills\n", total);
    ASSERT(total > 0);
    rmrf(p);
}

TEST(reader)
{
    const char *p = shm_tpath("ixread");
    SH = child_page(sizeof *SH);
    memset(SH, 0, sizeof *SH);
    kv_fill(p, true);
    pid_t pid = child_spawn((const char *[]){"read", p, NULL}, NULL);
    AWAIT(GET(SH->opened), pid, 60, "the reader did not open the store");
    mms_store *s = open_flags(p, 0);
    mms_table *t;
    OK(mms_table_find(s, "kv", &t));
    rng = 5;
    /* Keys and covered values change by plain stores (and swaps) while the
     * reader looks. */
    for (uint32_t c = 0; c < 300 || GET(SH->reads) < 50; c++) {
        OK(mms_txn_begin(s, 0));
        for (int k = 0; k < 30; k++) {
            uint64_t i = rnd() % CN, j = rnd() % CN;
            struct kv *a = MMS_TABLE_GET(t, struct kv, i), *b = MMS_TABLE_GET(t, struct kv, j);
            if (k % 3 == 0) {
                int64_t tmp = a->k;
                a->k = b->k;
                b->k = tmp;
            } else if (k % 3 == 1)
                a->k = ((int64_t)c + 1) << 32 | k;
            else /* a value the index on k covers alone (the key of the one on v) */
                a->v = (int32_t)((c * 31 + (uint32_t)k) % 1000);
        }
        OK(mms_txn_commit(s));
        ASSERT_EQ(GET(SH->bad), 0);
    }
    PUB(SH->done, 1);
    int st;
    ASSERT(child_end(pid, 60, &st));
    if (GET(SH->bad))
        FAILF("reader saw %u bad lookups, e.g. %s", GET(SH->bad), SH->why);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* The records index ix's cursor gives from seek op at key (NULL: none),
 * stepping by dir, as "k@rec k@rec ..." into out. */
static void cursor_walk(mms_index *ix, int op, const int64_t *key, int dir, char *out, size_t cap)
{
    mms_cursor *c;
    uint64_t at;
    int64_t k;
    size_t n = 0;
    out[0] = 0;
    OK(mms_cursor_open(ix, &c));
    int r = mms_cursor_seek(c, op, key, &at, &k);
    for (; r == 0 && n < cap; r = dir > 0 ? mms_cursor_next(c, &at, &k) : mms_cursor_prev(c, &at, &k))
        n += (size_t)snprintf(out + n, cap - n, "%s%lld@%llu", n ? " " : "", (long long)k,
                              (unsigned long long)at);
    ASSERT_EQ(r, MMS_ENOTFOUND);
    mms_cursor_close(c);
}

#define WALK_IS(ix, op, key, dir, want)                                        \
    do {                                                                       \
        char got_[512];                                                        \
        cursor_walk(ix, op, key, dir, got_, sizeof got_);                      \
        if (strcmp(got_, want) != 0)                                           \
            FAILF("cursor %s %s: got \"%s\", want \"%s\"", #op, #dir, got_, want); \
    } while (0)

/* A cursor's position is of the state its seek saw (mmstore.h: valid for
 * one read transaction, in a write handle until the next commit). A step
 * after the handle saw another commit gave an entry of the new index at
 * the old place, or a silent end of the range (MMS_ENOTFOUND) where the
 * range went on; it fails MMS_ENOTXN now, and a seek starts it again. A
 * later transaction that sees the same commit, or appends within a write
 * transaction, keep the position. Seen failing before the fix. */
TEST(cursor_stale)
{
    const char *p = shm_tpath("ixstale");
    rmrf(p);
    mms_table *t;
    mms_index *ix;
    mms_cursor *c;
    uint64_t at;
    int64_t k = 3500, got;
    mms_store *s = kv_begin(p, 1000, 0, &t); /* keys 7 i */
    OK(mms_index_create(t, "k", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    OK(mms_index_open(t, "k", &ix));
    OK(mms_cursor_open(ix, &c));
    OK(mms_read_begin(s));
    OK(mms_cursor_seek(c, MMS_SEEK_GE, &k, &at, &got));
    ASSERT_EQ(at, 500);
    OK(mms_read_end(s));
    OK(mms_read_begin(s)); /* the same commit: the position holds */
    OK(mms_cursor_next(c, &at, &got));
    ASSERT_EQ(at, 501);
    OK(mms_read_end(s));
    OK(mms_txn_begin(s, 0)); /* appends in the transaction keep it too */
    for (int i = 0; i < 600; i++)
        OK(mms_table_append(t, &(struct kv){-i, 0, 0}, NULL));
    OK(mms_cursor_next(c, &at, &got));
    ASSERT_EQ(at, 502);
    for (uint64_t i = 0; i < 1000; i += 2)
        OK(mms_table_delete(t, i));
    OK(mms_txn_commit(s));
    OK(mms_read_begin(s));
    ASSERT_EQ(mms_cursor_next(c, &at, &got), MMS_ENOTXN);
    ASSERT_EQ(mms_cursor_prev(c, &at, &got), MMS_ENOTFOUND); /* no position now */
    OK(mms_cursor_seek(c, MMS_SEEK_GE, &k, &at, &got));
    ASSERT_EQ(at, 501);
    OK(mms_cursor_next(c, &at, &got));
    ASSERT_EQ(at, 503);
    OK(mms_read_end(s));
    mms_cursor_close(c);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* Inside a write transaction an index answers as of the last commit, but
 * never with a record that no longer holds the key: not one whose key the
 * transaction changed, nor one it deleted -- whose slot is zeros, the key
 * 0 (finds of key 0 gave the deleted record), nor through a cursor
 * (which gave both). Seen failing before the fix. */
TEST(write_txn_lookups)
{
    const char *p = shm_tpath("ixwtxn");
    mms_table *t;
    mms_index *ik, *iv;
    uint64_t at, n, many[3];
    size_t m;
    int32_t cv;
    mms_store *s = kv_begin(p, 8, 0, &t); /* keys 0, 7, ..., 49; v = 0..7 */
    OK(mms_index_create_covering(t, "k", MMS_INDEX_ORDERED, "v"));
    OK(mms_index_create(t, "v", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
    OK(mms_txn_commit(s));
    OK(mms_index_open(t, "k", &ik));
    OK(mms_index_open(t, "v", &iv));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(t, 0));                /* k 0, v 0: its slot is zeros */
    MMS_TABLE_GET(t, struct kv, 3)->k = 22;    /* k 21 -> 22 */
    MMS_TABLE_GET(t, struct kv, 4)->v = 40;    /* v 4 -> 40 */
    OK(mms_table_delete(t, 6));                /* k 42, v 6 */
    int64_t k0 = 0, k21 = 21, k42 = 42, k28 = 28, keys[3] = {0, 21, 14};
    int32_t v0 = 0, v4 = 4, v6 = 6;
    FAILS(mms_index_find(ik, &k0, &at), MMS_ENOTFOUND);
    FAILS(mms_index_find(iv, &v0, &at), MMS_ENOTFOUND);
    FAILS(mms_index_find_covered(ik, &k0, &at, &cv), MMS_ENOTFOUND);
    OK(mms_index_count(ik, &k0, &n));
    ASSERT_EQ(n, 0);
    OK(mms_index_find_all(iv, &v0, &at, 1, &m));
    ASSERT_EQ(m, 0);
    FAILS(mms_index_find(ik, &k21, &at), MMS_ENOTFOUND);
    FAILS(mms_index_find(iv, &v4, &at), MMS_ENOTFOUND);
    FAILS(mms_index_find(ik, &k42, &at), MMS_ENOTFOUND);
    FAILS(mms_index_find(iv, &v6, &at), MMS_ENOTFOUND);
    OK(mms_index_find_many(ik, keys, 3, many, &m));
    ASSERT_EQ(m, 1);
    ASSERT_EQ(many[0], UINT64_MAX);
    ASSERT_EQ(many[2], 2);
    OK(mms_index_find_covered(ik, &k28, &at, &cv)); /* the record's v, as it is now */
    ASSERT_EQ(at, 4);
    ASSERT_EQ(cv, 40);
    /* Cursors skip them too, at a seek and at each step, both ways. */
    WALK_IS(ik, MMS_SEEK_FIRST, NULL, 1, "7@1 14@2 28@4 35@5 49@7");
    WALK_IS(ik, MMS_SEEK_LAST, NULL, -1, "49@7 35@5 28@4 14@2 7@1");
    WALK_IS(ik, MMS_SEEK_GE, &k0, 1, "7@1 14@2 28@4 35@5 49@7");
    WALK_IS(ik, MMS_SEEK_LE, &k0, -1, "");
    WALK_IS(ik, MMS_SEEK_GE, &k21, 1, "28@4 35@5 49@7");
    WALK_IS(ik, MMS_SEEK_LE, &k21, -1, "14@2 7@1");
    WALK_IS(ik, MMS_SEEK_LT, &k42, -1, "35@5 28@4 14@2 7@1");
    WALK_IS(ik, MMS_SEEK_GT, &k42, 1, "49@7");
    OK(mms_txn_commit(s));
    /* A hash index of 8-byte keys: finds of many keys take a batched
     * probe, which checked the key and not the liveness either. */
    mms_table *th;
    mms_index *ih;
    int64_t hk[2] = {0, 7};
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "kh", &kv_schema, MMS_TABLE_CREATE, &th));
    OK(mms_table_append(th, &(struct kv){0, 0, 0}, NULL));
    OK(mms_table_append(th, &(struct kv){7, 1, 0}, NULL));
    OK(mms_index_create(th, "k", MMS_INDEX_HASH));
    OK(mms_txn_commit(s));
    OK(mms_index_open(th, "k", &ih));
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(th, 0));
    OK(mms_index_find_many(ih, hk, 2, many, &m));
    ASSERT_EQ(m, 1);
    ASSERT_EQ(many[0], UINT64_MAX);
    ASSERT_EQ(many[1], 1);
    FAILS(mms_index_find(ih, &hk[0], &at), MMS_ENOTFOUND);
    OK(mms_txn_commit(s));
    /* Committed, the index is the table's: read and write views agree. */
    for (int txn = 0; txn < 2; txn++) {
        if (txn)
            OK(mms_read_begin(s));
        WALK_IS(ik, MMS_SEEK_FIRST, NULL, 1, "7@1 14@2 22@3 28@4 35@5 49@7");
        FAILS(mms_index_find(ik, &k0, &at), MMS_ENOTFOUND);
        FAILS(mms_index_find(iv, &v0, &at), MMS_ENOTFOUND);
        if (txn)
            OK(mms_read_end(s));
    }
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* A find that misses leaves *index (and a covered find's value) as it was,
 * for both kinds, in a read and in a write transaction (mmstore.h,
 * mms_index_find). An ordered find left the record of the next key there,
 * a hash find in a write transaction UINT64_MAX when it had passed a slot
 * of another key; seen failing before the fix. */
TEST(find_miss_keeps_index)
{
    const unsigned kinds[2] = {MMS_INDEX_HASH, MMS_INDEX_ORDERED};
    for (int kind = 0; kind < 2; kind++) {
        const char *p = shm_tpath("ixmiss");
        mms_table *t;
        mms_index *ik;
        mms_store *s = kv_begin(p, 1000, 0, &t); /* keys 0, 7, ..., 6993 */
        OK(mms_index_create_covering(t, "k", kinds[kind], "v"));
        OK(mms_txn_commit(s));
        OK(mms_index_open(t, "k", &ik));
        for (int txn = 0; txn < 2; txn++) {
            OK(txn ? mms_txn_begin(s, 0) : mms_read_begin(s));
            for (int64_t k = -3; k < 7010; k++) {
                if (k % 7 == 0 && k >= 0 && k < 7000)
                    continue;
                uint64_t at = 0xfeedu;
                int32_t cv = -77;
                if (mms_index_find(ik, &k, &at) != MMS_ENOTFOUND || at != 0xfeedu ||
                    mms_index_find_covered(ik, &k, &at, &cv) != MMS_ENOTFOUND ||
                    at != 0xfeedu || cv != -77)
                    FAILF("%s index, %s transaction: a find of %lld that misses left "
                          "*index %llu, value %d",
                          kind ? "ordered" : "hash", txn ? "write" : "read", (long long)k,
                          (unsigned long long)at, cv);
            }
            if (txn)
                mms_txn_abort(s);
            else
                OK(mms_read_end(s));
        }
        OK(mms_close(s));
        rmrf(p);
    }
}

/* The records of key k (int64) ix finds: find_all, and the count, as
 * "rec rec ..." in record order. */
static void found_of(mms_index *ix, int64_t k, char *out, size_t cap)
{
    uint64_t recs[16];
    size_t n, len = 0;
    OK(mms_index_find_all(ix, &k, recs, 16, &n));
    ASSERT_LT(n, 17);
    qsort(recs, n, 8, cmp_u64);
    out[0] = 0;
    for (size_t j = 0; j < n; j++)
        len += (size_t)snprintf(out + len, cap - len, "%s%llu", j ? " " : "",
                                (unsigned long long)recs[j]);
}
#define FOUND_IS(ix, k, want)                                                  \
    do {                                                                       \
        char got_[256];                                                        \
        found_of(ix, k, got_, sizeof got_);                                    \
        if (strcmp(got_, want) != 0)                                           \
            FAILF("find_all %lld: got \"%s\", want \"%s\"", (long long)(k), got_, want); \
    } while (0)

/* A record whose key is missing (mms_table_null_set) is not in the index:
 * finds, counts and cursors for key 0 never give it (they gave it: a
 * missing value was indexed as its zero bytes), and a unique index takes
 * any number of missing keys (it refused the second). Kept true by the
 * bulk build and by the commit's upkeep when a mark is set or cleared --
 * also where the field's bytes do not change (0 marked missing, a mark
 * cleared on 0) -- and in a write transaction's lookups. Seen failing
 * before the fix. */
TEST(missing_keys)
{
    const char *p = shm_tpath("ixmissing");
    mms_table *t;
    mms_index *ik, *iv;
    uint64_t at;
    int64_t zero = 0;
    mms_store *s = kv_begin(p, 6, 0, &t); /* keys 0, 7, ..., 35; v = 0..5 */
    OK(mms_table_null_set(t, 2, 0, 1));   /* k of 2 and 4 missing */
    OK(mms_table_null_set(t, 4, 0, 1));
    OK(mms_table_null_set(t, 3, 1, 1));   /* v of 3 missing: v 0 is record 0's */
    OK(mms_index_create(t, "k", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE)); /* built at commit */
    OK(mms_index_create(t, "v", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_index_open(t, "k", &ik));
    OK(mms_index_open(t, "v", &iv));
    OK(mms_read_begin(s));
    FOUND_IS(ik, 0, "0");
    FOUND_IS(iv, 0, "0");
    WALK_IS(ik, MMS_SEEK_FIRST, NULL, 1, "0@0 7@1 21@3 35@5");
    WALK_IS(ik, MMS_SEEK_LE, &zero, -1, "0@0");
    OK(mms_index_find(ik, &zero, &at));
    ASSERT_EQ(at, 0);
    OK(mms_read_end(s));
    /* The incremental path: a mark on a key of 0 (no byte changes), on a
     * key of 7 (its bytes zeroed), and an append marked missing. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_null_set(t, 0, 0, 1));
    OK(mms_table_null_set(t, 1, 0, 1));
    OK(mms_table_null_set(t, 0, 1, 1));
    OK(mms_table_append(t, &(struct kv){0, 6, 0}, &at));
    OK(mms_table_null_set(t, at, 0, 1));
    /* In the transaction the index answers as of the last commit, but not
     * with a record whose key is now missing. */
    FOUND_IS(ik, 0, "");
    FOUND_IS(iv, 0, "");
    FOUND_IS(ik, 7, "");
    WALK_IS(ik, MMS_SEEK_FIRST, NULL, 1, "21@3 35@5");
    OK(mms_txn_commit(s));
    verify_ok(s);
    FOUND_IS(ik, 0, "");
    FOUND_IS(ik, 7, "");
    FOUND_IS(iv, 0, "");
    FOUND_IS(iv, 6, "6");
    WALK_IS(ik, MMS_SEEK_FIRST, NULL, 1, "21@3 35@5");
    /* Clearing a mark puts the key (its zero bytes) back, and a unique
     * index sees it then: two of them fail the commit. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_null_set(t, 2, 0, 0));
    OK(mms_txn_commit(s));
    verify_ok(s);
    FOUND_IS(ik, 0, "2");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_null_set(t, 4, 0, 0));
    FAILS(mms_txn_commit(s), MMS_EUNIQUE);
    verify_ok(s);
    FOUND_IS(ik, 0, "2");
    /* An append of zeros to be marked missing next (as Python's append of
     * None does): the unique check waits for the commit, which takes it
     * marked, and refuses it unmarked. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append(t, &(struct kv){0, 7, 0}, &at));
    OK(mms_table_null_set(t, at, 0, 1));
    OK(mms_txn_commit(s));
    verify_ok(s);
    FOUND_IS(ik, 0, "2");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append(t, &(struct kv){0, 8, 0}, &at));
    FAILS(mms_txn_commit(s), MMS_EUNIQUE);
    verify_ok(s);
    /* A delete of a record whose key is missing, a plain store into one
     * (still missing: the mark stays), and a rebuild by a migration. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(t, 4));
    ((struct kv *)mms_table_get(t, 0))->k = 99;
    OK(mms_txn_commit(s));
    verify_ok(s);
    FOUND_IS(ik, 99, "");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_null_set(t, 0, 0, 0)); /* 99 again */
    OK(mms_txn_commit(s));
    FOUND_IS(ik, 99, "0");
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* An index written before missing keys lost their entries (header flags
 * 0) holds a missing key under its zero bytes: where its field has missing
 * values its answers are checked against the records (as a writer's are)
 * until the next commit that writes builds it again; where it has none it
 * is read as it is, and that commit marks it. verify takes either rule. */
TEST(missing_keys_old_index)
{
    const char *p = shm_tpath("ixmissold");
    mms_table *t;
    mms_index *ik, *iv;
    mms_index_info info[2];
    size_t n;
    uint64_t at, nb, recs[4];
    int64_t zero = 0;
    int32_t v1 = 1;
    mms_store *s = kv_begin(p, 4, 0, &t); /* keys 0, 7, 14, 21 */
    OK(mms_table_null_set(t, 0, 0, 1));   /* k's bitmap, no mark left */
    OK(mms_table_null_set(t, 0, 0, 0));
    OK(mms_index_create(t, "k", MMS_INDEX_ORDERED));
    OK(mms_index_create(t, "v", MMS_INDEX_HASH));
    OK(mms_txn_commit(s));
    /* Record 0's k (0) marked missing as an older library left it: the
     * bit set by a plain store into the bitmap, its entry under 0 kept. */
    OK(mms_txn_begin(s, 0));
    uint64_t *bits = (uint64_t *)(uintptr_t)mms_table_nulls(t, 0, &nb);
    ASSERT(bits && nb);
    bits[0] |= 1;
    OK(mms_txn_commit(s));
    OK(mms_indexes(t, info, 2, &n));
    ASSERT_EQ(n, 2);
    OK(mms_close(s));
    uint32_t flags = 0;
    for (int j = 0; j < 2; j++) {
        int fd = ix_file(p, &info[j]);
        ASSERT_EQ(pwrite(fd, &flags, 4, offsetof(struct mms__ixhdr, flags)), 4);
        close(fd);
    }
    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_table_open(s, "kv", &kv_schema, 0, &t));
    OK(mms_index_open(t, "k", &ik));
    OK(mms_index_open(t, "v", &iv));
    OK(mms_read_begin(s));
    ASSERT_EQ(mms_table_null(t, 0, 0), 1);
    FAILS(mms_index_find(ik, &zero, &at), MMS_ENOTFOUND);
    OK(mms_index_find_all(ik, &zero, recs, 4, &n));
    ASSERT_EQ(n, 0);
    WALK_IS(ik, MMS_SEEK_FIRST, NULL, 1, "7@1 14@2 21@3");
    OK(mms_index_find(iv, &v1, &at));
    ASSERT_EQ(at, 1);
    mms_read_end(s);
    OK(mms_txn_begin(s, 0)); /* a commit that writes */
    OK(mms_table_append(t, &(struct kv){28, 4, 0}, NULL));
    OK(mms_txn_commit(s));
    verify_ok(s);
    FAILS(mms_index_find(ik, &zero, &at), MMS_ENOTFOUND);
    WALK_IS(ik, MMS_SEEK_FIRST, NULL, 1, "7@1 14@2 21@3 28@4");
    OK(mms_index_find(iv, &v1, &at));
    OK(mms_indexes(t, info, 2, &n));
    ASSERT_EQ(info[0].entries, 4);
    OK(mms_close(s)); /* applied to the region files */
    for (int j = 0; j < 2; j++) {
        int fd = ix_file(p, &info[j]);
        ASSERT_EQ(pread(fd, &flags, 4, offsetof(struct mms__ixhdr, flags)), 4);
        ASSERT_EQ(flags, MMS__IXH_NO_MISSING);
        close(fd);
    }
    rmrf(p);
}

/* A full disk (or a failed write) on each path that writes an index: a
 * bulk build in mms_index_create, a build the commit makes (the table
 * changed first), and a commit that grows a hash or an ordered index.
 * The nth fallocate (ENOSPC), pwrite (ENOSPC) or mmap (ENOMEM) fails, for
 * n = 1, 2, ...
 * until the step succeeds. After each failure: the error is the one
 * injected and says what failed; the transaction is over or aborts;
 * the store verifies, its last commit is whole (records and indexes),
 * and a small commit goes through -- or, if the failure came after the
 * journal was written (a pwrite or mmap while applying; never a full
 * disk, whose space is had before), the handle is poisoned and a reopen
 * finds one of the two states, whole. */
enum { FD_N = 6000 };
static int fd_step(mms_table *t, int step)
{
    int r;
    uint64_t first;
    void *where;
    switch (step) {
    case 0: /* bulk build now */
        return mms_index_create(t, "grp", MMS_INDEX_HASH);
    case 1:
        return mms_index_create(t, "score", MMS_INDEX_ORDERED);
    case 2: { /* the table changed first: the commit builds it */
        struct rec1 x = {.id = (int64_t)mms_table_slots(t)};
        snprintf(x.tag, sizeof x.tag, "a%llu", (unsigned long long)x.id);
        if ((r = mms_table_append(t, &x, NULL)))
            return r;
    }
        return mms_index_create(t, "tag", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE);
    default: /* grow the indexes on id (hash) and score (ordered) */
        if ((r = mms_table_append_many(t, FD_N, &first, &where)))
            return r;
        for (uint64_t i = 0; i < FD_N; i++) {
            struct rec1 *x = (struct rec1 *)where + i;
            x->id = (int64_t)(first + i);
            x->score = (double)(first + i) / 2;
            x->grp = (int32_t)((first + i) % 1000);
            snprintf(x->tag, sizeof x->tag, "k%llu", (unsigned long long)(first + i));
        }
        return 0;
    }
}

static void fd_check(mms_store *s, uint64_t slots)
{
    mms_table *t;
    mms_index *ix;
    OK(mms_table_find(s, "t", &t));
    ASSERT_EQ(mms_table_slots(t), slots);
    verify_ok(s); /* every index against the table */
    OK(mms_index_open(t, "id", &ix));
    int64_t last = (int64_t)slots - 1;
    uint64_t at;
    OK(mms_index_find(ix, &last, &at));
    ASSERT_EQ(at, slots - 1);
}

TEST(full_disk_index)
{
    static const struct {
        enum mms__op op;
        int err;
    } inj[] = {{MMS__OP_FALLOCATE, ENOSPC}, {MMS__OP_PWRITE, ENOSPC}, {MMS__OP_MMAP, ENOMEM}};
    const char *p = shm_tpath("ixfull");
    unsigned failures = 0, poisoned = 0;
    for (size_t k = 0; k < sizeof inj / sizeof inj[0]; k++) {
        for (int step = 0; step < 4; step++) {
            rmrf(p);
            mms_store *s = open_flags(p, MMS_CREATE);
            mms_table *t;
            OK(mms_txn_begin(s, 0));
            OK(mms_table_open(s, "t", &rec1_schema, MMS_TABLE_CREATE, &t));
            OK(fd_step(t, 3));
            OK(mms_index_create(t, "id", MMS_INDEX_HASH));
            if (step == 3)
                OK(mms_index_create(t, "score", MMS_INDEX_ORDERED));
            OK(mms_txn_commit(s));
            uint64_t slots = mms_table_slots(t);
            for (unsigned long nth = 1;; nth++) {
                ASSERT_LT(nth, 200);
                OK(mms_txn_begin(s, 0));
                mms__fault_arm(inj[k].op, nth, inj[k].err);
                int r = fd_step(t, step);
                int where = 0;
                if (!r) {
                    where = 1;
                    r = mms_txn_commit(s);
                }
                mms__fault_reset();
                if (!r) {
                    slots = mms_table_slots(t);
                    fd_check(s, slots);
                    break;
                }
                failures++;
                if (r == MMS_EPOISONED || (where && mms_txn_begin(s, 0) == MMS_EPOISONED)) {
                    /* Failed while applying a durable commit: a reopen
                     * decides. */
                    ASSERT(inj[k].op != MMS__OP_FALLOCATE); /* space is had first */
                    poisoned++;
                    mms_close(s);
                    s = open_flags(p, 0);
                    OK(mms_table_find(s, "t", &t));
                    slots = mms_table_slots(t);
                    fd_check(s, slots);
                    continue;
                }
                if (r != -inj[k].err)
                    FAILF("step %d, op %d call %lu: %d (%s) %s", step, (int)inj[k].op, nth, r,
                          mms_strerror(r), mms_errdetail());
                ASSERT(mms_errdetail()[0]);
                if (where)
                    mms_txn_abort(s); /* over already after a failed commit */
                else
                    OK(mms_txn_abort(s));
                fd_check(s, slots);
                /* Something smaller commits. */
                OK(mms_txn_begin(s, 0));
                struct rec1 one = {.id = (int64_t)slots, .score = -1};
                snprintf(one.tag, sizeof one.tag, "o%llu", (unsigned long long)slots);
                OK(mms_table_append(t, &one, NULL));
                OK(mms_txn_commit(s));
                slots++;
                fd_check(s, slots);
            }
            OK(mms_close(s));
            s = open_flags(p, 0);
            fd_check(s, slots);
            OK(mms_close(s));
        }
    }
    fprintf(stderr, "   %u injected failures (%u poisoned the handle), each left a sound store\n",
            failures, poisoned);
    rmrf(p);
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 2, "MODE PATH");
    if (a) {
        SH = child_page(sizeof *SH);
        child_work(a[1], a[0]);
        _exit(0);
    }
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): the index
     * against its model is the point; the crash case's kills are process
     * crashes, the full disk an injected fault. */
    signal(SIGABRT, shm_on_abort);
    RUN(unique_paths);
    RUN(string_keys_refused);
    RUN(model);
    RUN(large);
    RUN(corrupt);
    RUN(zeros_into_deleted_slot);
    RUN(write_txn_lookups);
    RUN(cursor_stale);
    RUN(find_miss_keeps_index);
    RUN(missing_keys);
    RUN(missing_keys_old_index);
    RUN(create_hash);
    RUN(create_hash_unique);
    RUN(create_ordered);
    RUN(create_ordered_unique);
    RUN(outgrown);
    RUN(hash_runs_spread);
    RUN(descriptor_kind_damaged);
    RUN(slot_checks);
    RUN(slot_damaged_probe_goes_on);
    RUN(covering);
    RUN(slot_count_checked);
    RUN(covering_ordered);
    RUN(find_short_path);
    RUN(crash);
    RUN(reader);
    RUN(full_disk_index);
    shm_cleanup();
    return 0;
}

/*
 * table_world.c -- what the table test programs share: their start and
 * end, table and region-file helpers, and the logical model of a world of
 * tables (table_world.h says what it is). Linked into every test program
 * (tests/CMakeLists.txt); only the table tests call it.
 */
#include "table_world.h"

#include <ctype.h>
#include <dirent.h>
#include <float.h>
#include <math.h>

#include "internal.h" /* mms__rtab(): the file generation of a region */

uint64_t seed0;
unsigned soak = 1;
char context[512];
char *strbuf;
unsigned long bugs;
static mms_info *info_buf;
static const char *prog_name;
static double prog_t0;

static void on_abort(int sig)
{
    (void)sig;
    char msg[700];
    int n = snprintf(msg, sizeof msg, "\n  context: %s (seed %llu: rerun with MMS_SEED=%llu)\n",
                     context, (unsigned long long)seed0, (unsigned long long)seed0);
    ssize_t w = write(2, msg, (size_t)n);
    (void)w;
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
}

void table_test_begin(const char *prog)
{
    prog_name = prog;
    prog_t0 = now_us();
    info_buf = malloc(sizeof *info_buf);
    strbuf = malloc(STRBUF);
    ASSERT(info_buf && strbuf);
    seed0 = test_seed(prog, 0, &soak, "");
    signal(SIGABRT, on_abort);
}

int table_test_end(void)
{
    free(info_buf);
    free(strbuf);
    double secs = (now_us() - prog_t0) / 1e6;
    if (bugs) {
        fprintf(stderr, "%s: FAILED: %lu wrong answers from the library (LIBRARY BUG "
                "above), %.1f s\n", prog_name, bugs, secs);
        return 1;
    }
    fprintf(stderr, "%s: ok, %.1f s\n", prog_name, secs);
    return 0;
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */
mms_store *sopen(const char *path, unsigned flags)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    o.grow_step = 1u << 20; /* small steps: more growth, less disk */
    mms_store *s = NULL;
    OK(mms_open(path, &o, &s));
    return s;
}

uint64_t heap_objects(mms_store *s)
{
    OK(mms_info_get(s, info_buf));
    return info_buf->heap_objects;
}

uint32_t region_gen(mms_store *s, uint32_t id)
{
    return mms__rtab(s)[id].gen;
}

/* The generations of region id that have a file in the store directory. */
int region_files(const char *path, uint32_t id, uint32_t *gens, int cap)
{
    DIR *d = opendir(path);
    ASSERT(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        unsigned a, b;
        char tail;
        if (sscanf(de->d_name, "region-%u-%u%c", &a, &b, &tail) == 2 && a == id) {
            if (n < cap)
                gens[n] = b;
            n++;
        }
    }
    closedir(d);
    return n;
}

int has_region_file(const char *path, uint32_t id, uint32_t gen)
{
    uint32_t g[16];
    int n = region_files(path, id, g, 16);
    for (int i = 0; i < n && i < 16; i++)
        if (g[i] == gen)
            return 1;
    return 0;
}

/* Only the current generation's file is left (after a checkpoint). */
void only_region_file(const char *path, uint32_t id, uint32_t gen)
{
    uint32_t g[16];
    int n = region_files(path, id, g, 16);
    if (n != 1 || g[0] != gen)
        FAILF("region %u: %d files in %s (first gen %u), expected only generation %u", id, n,
              path, n ? g[0] : 0, gen);
}

/* word appears in text, not as part of a longer name. */
int mentions(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; (p = strstr(p, word)); p++) {
        bool l = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool r = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (l && r)
            return 1;
    }
    return 0;
}

/* String contents: a pure function of (seed, len). */
void str_fill(char *buf, uint64_t seed, uint32_t len)
{
    uint64_t x = seed, w = 0;
    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            w = rnd_next(&x);
        buf[i] = (char)(w >> ((i & 7) * 8));
    }
}

uint32_t pick_len(uint64_t *x)
{
    uint64_t r = rnd_next(x) % 100;
    if (r < 30)
        return (uint32_t)(rnd_next(x) % 9);
    if (r < 82)
        return 9 + (uint32_t)(rnd_next(x) % 92);
    if (r < 97)
        return 101 + (uint32_t)(rnd_next(x) % 2000); /* past the small size classes */
    return 2101 + (uint32_t)(rnd_next(x) % 7000);     /* page runs */
}

void str_check(mms_store *s, mms_ref ref, uint64_t seed, uint32_t len, const char *what,
               uint64_t i)
{
    size_t n = 0;
    const char *p = mms_str_get(s, ref, &n);
    if (!p)
        FAILF("%s of record %llu: mms_str_get(0x%llx) is NULL", what, (unsigned long long)i,
              (unsigned long long)ref);
    if (n != len)
        FAILF("%s of record %llu: %zu bytes, expected %u", what, (unsigned long long)i, n, len);
    str_fill(strbuf, seed, len);
    if (memcmp(p, strbuf, len) != 0)
        FAILF("%s of record %llu: content differs", what, (unsigned long long)i);
    if (p[len] != 0)
        FAILF("%s of record %llu: no NUL after the bytes", what, (unsigned long long)i);
}

/* Every region file belongs to a table of the store, in its generation. */
void files_match_tables(const char *path, mms_store *s)
{
    DIR *d = opendir(path);
    ASSERT(d);
    mms_table_info ti[64];
    size_t n = 0;
    OK(mms_tables(s, ti, 64, &n));
    ASSERT_LE(n, 64);
    for (struct dirent *de; (de = readdir(d));) {
        unsigned id, gen;
        char tail;
        if (sscanf(de->d_name, "region-%u-%u%c", &id, &gen, &tail) != 2 || id == 0)
            continue;
        size_t j = 0;
        while (j < n && ti[j].region != id)
            j++;
        if (j == n)
            FAILF("%s: file %s belongs to no table", path, de->d_name);
        if (gen != region_gen(s, id))
            FAILF("%s: file %s is not table %s's generation %u", path, de->d_name, ti[j].name,
                  region_gen(s, id));
    }
    closedir(d);
}

/* ------------------------------------------------------------------------
 * The logical model (table_world.h)
 * ------------------------------------------------------------------------ */
static const char *lnames[NLF];
static int nlnames;

int lid(const char *name)
{
    for (int i = 0; i < nlnames; i++)
        if (strcmp(lnames[i], name) == 0)
            return i;
    ASSERT_LT(nlnames, NLF);
    lnames[nlnames] = name;
    return nlnames++;
}

void gt_init(struct gt *g, const char *name, const mms_schema *sc, uint64_t cap)
{
    memset(g, 0, sizeof *g);
    g->name = name;
    g->sc = sc;
    g->cap = cap;
    g->live = calloc(cap, 1);
    g->v = calloc(cap * NLF, sizeof *g->v);
    ASSERT(g->live && g->v);
}

void gt_free(struct gt *g)
{
    free(g->live);
    free(g->v);
    g->live = NULL;
    g->v = NULL;
}

void world_copy(struct world *d, const struct world *src)
{
    *d = *src;
    for (int k = 0; k < W_N; k++) {
        const struct gt *a = &src->g[k];
        struct gt *b = &d->g[k];
        b->live = malloc(a->cap);
        b->v = malloc(a->cap * NLF * sizeof *a->v);
        ASSERT(b->live && b->v);
        memcpy(b->live, a->live, a->cap);
        memcpy(b->v, a->v, a->cap * NLF * sizeof *a->v);
    }
}

void world_free(struct world *w)
{
    for (int k = 0; k < W_N; k++)
        gt_free(&w->g[k]);
}

int world_index(const struct world *w, const char *name)
{
    for (int k = 0; k < W_N; k++)
        if (strcmp(w->g[k].name, name) == 0)
            return k;
    FAILF("no table %s in the model", name);
}

void world_handles(const struct world *w, mms_table *th[W_N])
{
    for (int k = 0; k < W_N; k++)
        th[k] = w->g[k].t;
}

uint32_t table_region(const mms_table *t)
{
    return MMS_REF_REGION(mms_table_ref(t, 0));
}

const mms_field *field_named(const mms_schema *sc, const char *name)
{
    for (uint32_t i = 0; i < sc->nfields; i++)
        if (strcmp(sc->fields[i].name, name) == 0)
            return &sc->fields[i];
    return NULL;
}

static int kind_int(unsigned k)
{
    return k >= MMS_KIND_I8 && k <= MMS_KIND_U64;
}

/* The bytes of field f for logical value l, at rec + f->offset. */
static void encode(char *rec, const mms_field *f, const struct lv *l)
{
    char *p = rec + f->offset;
    if (kind_int(f->kind)) {
        uint64_t w = l->t == LV_INT ? (uint64_t)l->v.i : l->t == LV_UINT ? l->v.u : 0;
        memcpy(p, &w, f->size); /* little-endian: the low bytes */
        return;
    }
    switch (f->kind) {
    case MMS_KIND_F32: {
        float x = l->t == LV_FLT ? (float)l->v.f : 0.0f;
        memcpy(p, &x, 4);
        break;
    }
    case MMS_KIND_F64: {
        double x = l->t == LV_FLT    ? l->v.f
                   : l->t == LV_INT  ? (double)l->v.i
                   : l->t == LV_UINT ? (double)l->v.u
                                     : 0.0;
        memcpy(p, &x, 8);
        break;
    }
    case MMS_KIND_BOOL:
        *p = l->t == LV_BOOL ? (char)l->v.u : 0;
        break;
    case MMS_KIND_CHARS:
        memset(p, 0, f->size);
        if (l->t == LV_CHARS) {
            ASSERT_LE(l->len, f->size);
            memcpy(p, l->v.c, l->len);
        }
        break;
    default: { /* STR, BLOB, REF */
        mms_ref r = (l->t == LV_STR && l->has) || l->t == LV_REF ? l->ref : 0;
        memcpy(p, &r, 8);
    }
    }
}

/* The logical value of the bytes of a field of kind f (for defaults). */
void decode_lv(const mms_field *f, const void *bytes, struct lv *l)
{
    memset(l, 0, sizeof *l);
    const unsigned char *b = bytes;
    if (f->kind >= MMS_KIND_I8 && f->kind <= MMS_KIND_I64) {
        uint64_t w = 0;
        memcpy(&w, b, f->size);
        unsigned sh = 64 - 8 * f->size;
        l->t = LV_INT;
        l->v.i = sh ? (int64_t)(w << sh) >> sh : (int64_t)w;
    } else if (kind_int(f->kind)) {
        l->t = LV_UINT;
        memcpy(&l->v.u, b, f->size);
    } else if (f->kind == MMS_KIND_F32) {
        float x;
        memcpy(&x, b, 4);
        l->t = LV_FLT;
        l->v.f = x;
    } else if (f->kind == MMS_KIND_F64) {
        l->t = LV_FLT;
        memcpy(&l->v.f, b, 8);
    } else if (f->kind == MMS_KIND_BOOL) {
        l->t = LV_BOOL;
        l->v.u = b[0];
    } else if (f->kind == MMS_KIND_CHARS) {
        l->t = LV_CHARS;
        l->len = (uint32_t)strnlen((const char *)b, f->size);
        memcpy(l->v.c, b, l->len);
    } else {
        FAILF("no defaults for refs in this test");
    }
}

/* A random value for a numeric, bool or chars field; force >= 0 picks
 * extreme number force (0 = minimum, 1 = maximum, 2 = -1 or max-1, ...). */
static void gen_lv(uint64_t *x, const mms_field *f, struct lv *l, int force)
{
    memset(l, 0, sizeof *l);
    unsigned pick = force >= 0 ? (unsigned)force : (unsigned)(rnd_next(x) % 9);
    if (f->kind >= MMS_KIND_I8 && f->kind <= MMS_KIND_I64) {
        unsigned bits = 8 * f->size;
        int64_t hi = bits == 64 ? INT64_MAX : (int64_t)((UINT64_C(1) << (bits - 1)) - 1);
        int64_t lo = -hi - 1;
        const int64_t vals[] = {lo, hi, -1, lo + 1, hi - 1, 0, 1};
        l->t = LV_INT;
        l->v.i = pick < 7 ? vals[pick] : (int64_t)rnd_next(x) >> (64 - bits);
    } else if (kind_int(f->kind)) {
        unsigned bits = 8 * f->size;
        uint64_t hi = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
        const uint64_t vals[] = {0, hi, hi - 1, hi / 2 + 1, hi / 2, 1, 2};
        l->t = LV_UINT;
        l->v.u = pick < 7 ? vals[pick] : rnd_next(x) >> (64 - bits);
    } else if (f->kind == MMS_KIND_F32) {
        const float vals[] = {-FLT_MAX, FLT_MAX, FLT_TRUE_MIN, -0.0f, INFINITY, NAN, 0.1f};
        float v;
        if (pick < 7) {
            v = vals[pick];
        } else {
            uint32_t w = (uint32_t)rnd_next(x);
            memcpy(&v, &w, 4);
        }
        l->t = LV_FLT;
        l->v.f = v; /* the double a float widens to */
    } else if (f->kind == MMS_KIND_F64) {
        const double vals[] = {-DBL_MAX, DBL_MAX, DBL_TRUE_MIN, -0.0, -INFINITY, NAN, 0.1};
        l->t = LV_FLT;
        if (pick < 7) {
            l->v.f = vals[pick];
        } else {
            uint64_t w = rnd_next(x);
            memcpy(&l->v.f, &w, 8);
        }
    } else if (f->kind == MMS_KIND_BOOL) {
        l->t = LV_BOOL;
        l->v.u = pick % 2;
    } else if (f->kind == MMS_KIND_CHARS) {
        ASSERT_LE(f->size, sizeof l->v.c);
        l->t = LV_CHARS;
        /* Full (no NUL at all), empty, or anything between. */
        l->len = pick == 1 ? f->size : pick == 0 ? 0 : (uint32_t)(rnd_next(x) % (f->size + 1));
        for (uint32_t i = 0; i < l->len; i++)
            l->v.c[i] = (char)(1 + rnd_next(x) % 255);
    } else {
        FAILF("gen_lv: kind %u", f->kind);
    }
}

static uint64_t gt_lowest_dead(const struct gt *g)
{
    for (uint64_t i = 0; i < g->slots; i++)
        if (!g->live[i])
            return i;
    return g->slots;
}

/* The first live record at or after a random slot (wrapping), not below
 * from. */
static uint64_t gt_pick(const struct gt *g, uint64_t *x, uint64_t from)
{
    if (g->count == 0)
        return UINT64_MAX;
    uint64_t start = rnd_next(x) % g->slots;
    for (uint64_t k = 0; k < g->slots; k++) {
        uint64_t i = (start + k) % g->slots;
        if (g->live[i] && i >= from)
            return i;
    }
    FAILF("model of %s: no live record from slot %llu on", g->name, (unsigned long long)from);
}

uint64_t gt_pick_live(const struct gt *g, uint64_t *x)
{
    return gt_pick(g, x, 0);
}

uint64_t gt_pick_some(const struct gt *g, uint64_t *x)
{
    return gt_pick(g, x, g->keep);
}

/* A value for field f of a record: strings are created in the store. */
static void make_value(struct world *W, uint64_t *x, const mms_field *f, struct lv *l, int force)
{
    memset(l, 0, sizeof *l);
    if (f->kind == MMS_KIND_STR || f->kind == MMS_KIND_BLOB) {
        l->t = LV_STR;
        if (rnd_next(x) % 100 < 60) {
            uint32_t len = pick_len(x) % 400;
            uint64_t sd = rnd_next(x);
            str_fill(strbuf, sd, len);
            OK(mms_str_new(W->s, strbuf, len, &l->ref));
            l->has = 1;
            l->len = len;
            l->v.seed = sd;
        }
    } else if (f->kind == MMS_KIND_REF) {
        struct gt *tg = &W->g[world_index(W, f->target)];
        uint64_t j = gt_pick_live(tg, x);
        if (j != UINT64_MAX && rnd_next(x) % 5) {
            l->t = LV_REF;
            l->ref = mms_table_ref(tg->t, j);
        }
    } else {
        gen_lv(x, f, l, force);
    }
}

/* A new record of g: logical values in v[NLF], bytes in rec. */
static void gt_make(struct world *W, struct gt *g, uint64_t *x, struct lv *v, char *rec, int force)
{
    memset(v, 0, NLF * sizeof *v);
    memset(rec, 0, g->sc->record_size);
    for (uint32_t k = 0; k < g->sc->nfields; k++) {
        const mms_field *f = &g->sc->fields[k];
        struct lv *l = &v[lid(f->name)];
        make_value(W, x, f, l, force);
        encode(rec, f, l);
    }
}

uint64_t gt_append(struct world *W, struct gt *g, uint64_t *x, int force)
{
    struct lv v[NLF];
    char rec[1024];
    ASSERT_LE(g->sc->record_size, sizeof rec);
    ASSERT_LT(g->slots, g->cap);
    gt_make(W, g, x, v, rec, force);
    uint64_t want = gt_lowest_dead(g), idx = UINT64_MAX;
    OK(mms_table_append(g->t, rec, &idx));
    if (idx != want)
        FAILF("%s: append got slot %llu, the lowest deleted slot is %llu", g->name,
              (unsigned long long)idx, (unsigned long long)want);
    if (idx == g->slots)
        g->slots++;
    else
        W->reused++;
    g->live[idx] = 1;
    memcpy(GV(g, idx, 0), v, sizeof v);
    g->count++;
    W->appends++;
    return idx;
}

void gt_append_many(struct world *W, struct gt *g, uint64_t *x, uint64_t n)
{
    ASSERT_LE(g->slots + n, g->cap);
    uint64_t first = 0;
    void *where = NULL;
    OK(mms_table_append_many(g->t, n, &first, &where));
    ASSERT_EQ(first, g->slots);
    g->slots += n;
    g->count += n;
    for (uint64_t j = 0; j < n; j++) {
        g->live[first + j] = 1;
        memset(GV(g, first + j, 0), 0, NLF * sizeof(struct lv));
    }
    struct lv v[NLF];
    char rec[1024];
    for (uint64_t j = 0; j < n; j++) {
        gt_make(W, g, x, v, rec, -1);
        memcpy((char *)where + j * g->sc->record_size, rec, g->sc->record_size);
        memcpy(GV(g, first + j, 0), v, sizeof v);
    }
}

/* Before record j of g goes: refs to it are cleared, in the store and the
 * model (verify wants refs to live records). */
static void gt_unref(struct world *W, struct gt *g, uint64_t j)
{
    mms_ref ref = mms_table_ref(g->t, j);
    for (int k = 0; k < W_N; k++) {
        struct gt *h = &W->g[k];
        for (uint32_t fi = 0; fi < h->sc->nfields; fi++) {
            const mms_field *f = &h->sc->fields[fi];
            if (f->kind != MMS_KIND_REF || strcmp(f->target, g->name) != 0)
                continue;
            int l = lid(f->name);
            for (uint64_t i = 0; i < h->slots; i++) {
                struct lv *v = GV(h, i, l);
                if (!h->live[i] || v->t != LV_REF || v->ref != ref)
                    continue;
                char *p = (char *)mms_table_get(h->t, i) + f->offset;
                mms_ref cur;
                memcpy(&cur, p, 8);
                ASSERT_EQ(cur, ref);
                memset(p, 0, 8);
                memset(v, 0, sizeof *v);
                W->unrefs++;
            }
        }
    }
}

void gt_delete(struct world *W, struct gt *g, uint64_t i)
{
    gt_unref(W, g, i);
    OK(mms_table_delete(g->t, i));
    g->live[i] = 0;
    memset(GV(g, i, 0), 0, NLF * sizeof(struct lv));
    g->count--;
    g->tomb = 1;
    W->deletes++;
}

/* A new value for a random field of live record i. */
void gt_set(struct world *W, struct gt *g, uint64_t i, uint64_t *x)
{
    const mms_field *f = &g->sc->fields[rnd_next(x) % g->sc->nfields];
    struct lv *l = GV(g, i, lid(f->name));
    char *rec = mms_table_get(g->t, i);
    if (f->kind == MMS_KIND_STR) {
        mms_ref cur;
        memcpy(&cur, rec + f->offset, 8);
        ASSERT_EQ(cur, l->t == LV_STR && l->has ? l->ref : 0);
        if (rnd_next(x) % 4) {
            uint32_t len = pick_len(x) % 400;
            uint64_t sd = rnd_next(x);
            str_fill(strbuf, sd, len);
            OK(mms_str_set(W->s, &cur, strbuf, len));
            *l = (struct lv){.t = LV_STR, .has = 1, .len = len, .ref = cur, .v.seed = sd};
        } else {
            OK(mms_free(W->s, cur));
            memset(l, 0, sizeof *l);
            l->t = LV_STR;
        }
    } else {
        make_value(W, x, f, l, -1);
    }
    encode(rec, f, l);
    W->sets++;
}

/* The stored layout (mms_table_schema) is sc. A mismatch is reported as a
 * bug and counted; the data checks that follow use the model's layout. */
void schema_same(const mms_schema *st, const mms_schema *sc, const char *table)
{
    if (!st)
        FAILF("table %s: mms_table_schema is NULL", table);
    if (st->record_size != sc->record_size || st->nfields != sc->nfields) {
        BUG("table %s: mms_table_schema() says %u bytes and %u fields; the table has %u and %u",
            table, st->record_size, st->nfields, sc->record_size, sc->nfields);
        return;
    }
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *a = &st->fields[i], *b = &sc->fields[i];
        if (strcmp(a->name, b->name) != 0 || a->kind != b->kind || a->offset != b->offset ||
            a->size != b->size) {
            BUG("table %s field %u: mms_table_schema() says %s kind %u offset %u size %u; the "
                "table has %s %u %u %u", table, i, a->name, a->kind, a->offset, a->size,
                b->name, b->kind, b->offset, b->size);
            return;
        }
        if (b->kind == MMS_KIND_REF && (!a->target || strcmp(a->target, b->target) != 0))
            FAILF("table %s field %s: stored target %s, expected %s", table, a->name,
                  a->target ? a->target : "(null)", b->target);
    }
}

int schema_eq(const mms_schema *st, const mms_schema *sc)
{
    if (st->record_size != sc->record_size || st->nfields != sc->nfields)
        return 0;
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *a = &st->fields[i], *b = &sc->fields[i];
        if (strcmp(a->name, b->name) != 0 || a->kind != b->kind || a->offset != b->offset ||
            a->size != b->size)
            return 0;
    }
    return 1;
}

/* Table k of the world, through handle th[k] of store s. Returns the number
 * of strings its live records hold. */
static uint64_t gt_check(struct world *W, mms_store *s, mms_table *const th[W_N], int k)
{
    struct gt *g = &W->g[k];
    mms_table *t = th[k];
    const mms_schema *sc = g->sc;
    schema_same(mms_table_schema(t), sc, g->name);
    ASSERT_EQ(mms_table_count(t), g->count);
    ASSERT_EQ(mms_table_slots(t), g->slots);
    uint32_t rs = sc->record_size;
    const char *arr = mms_table_array(t);
    ASSERT(g->slots == 0 ? arr == NULL : arr != NULL);
    static char exp[1024];
    ASSERT_LE(rs, sizeof exp);
    uint64_t strings = 0;
    uint64_t nbits = 12345;
    const uint64_t *bits = mms_table_deleted(t, &nbits);
    ASSERT(bits ? nbits > 0 : nbits == 0);
    for (uint64_t i = 0; i < g->slots; i++) {
        int live = mms_table_live(t, i);
        if (live != (i >= nbits || !(bits[i / 64] >> (i % 64) & 1)))
            FAILF("%s slot %llu: mms_table_live and mms_table_deleted disagree", g->name,
                  (unsigned long long)i);
        if (live != g->live[i])
            FAILF("%s slot %llu: live %d in the store, %d in the model", g->name,
                  (unsigned long long)i, live, g->live[i]);
        const char *p = mms_table_get(t, i);
        if (p != arr + i * rs)
            FAILF("%s slot %llu: mms_table_get is not array + i * %u", g->name,
                  (unsigned long long)i, rs);
        memset(exp, 0, rs);
        if (live)
            for (uint32_t f = 0; f < sc->nfields; f++)
                encode(exp, &sc->fields[f], GV(g, i, lid(sc->fields[f].name)));
        if (memcmp(p, exp, rs) != 0) {
            uint32_t b = 0;
            while (p[b] == exp[b])
                b++;
            const char *fname = "(no field: padding)";
            uint32_t foff = b, fsize = 1;
            for (uint32_t f = 0; f < sc->nfields; f++)
                if (b >= sc->fields[f].offset && b < sc->fields[f].offset + sc->fields[f].size) {
                    fname = sc->fields[f].name;
                    foff = sc->fields[f].offset;
                    fsize = sc->fields[f].size;
                }
            char got[80] = "", want[80] = "";
            for (uint32_t j = 0; j < fsize && j < 24; j++) {
                snprintf(got + 3 * j, 4, "%02x ", (unsigned char)p[foff + j]);
                snprintf(want + 3 * j, 4, "%02x ", (unsigned char)exp[foff + j]);
            }
            FAILF("%s %s record %llu (layout gen %llu): field %s at byte %u differs:\n"
                  "    store: %s\n    model: %s", g->name, live ? "live" : "deleted",
                  (unsigned long long)i, (unsigned long long)g->layout_gen, fname, b, got, want);
        }
        if (!live)
            continue;
        for (uint32_t fi = 0; fi < sc->nfields; fi++) {
            const mms_field *f = &sc->fields[fi];
            const struct lv *l = GV(g, i, lid(f->name));
            mms_ref ref;
            memcpy(&ref, p + f->offset, 8);
            if (f->kind == MMS_KIND_STR && l->has) {
                str_check(s, ref, l->v.seed, l->len, f->name, i);
                strings++;
            } else if (f->kind == MMS_KIND_REF && ref) {
                int tk = world_index(W, f->target);
                uint64_t slot = MMS_REF_SLOT(ref);
                ASSERT_EQ(MMS_REF_REGION(ref), table_region(th[tk]));
                ASSERT(mms_table_live(th[tk], slot));
                if (mms_rec(s, ref) != mms_table_get(th[tk], slot))
                    FAILF("%s record %llu: %s = ref 0x%llx: mms_rec is not record %llu of %s",
                          g->name, (unsigned long long)i, f->name, (unsigned long long)ref,
                          (unsigned long long)slot, W->g[tk].name);
            }
        }
    }
    ASSERT(!mms_table_live(t, g->slots));
    ASSERT(mms_table_get(t, g->slots) == NULL);
    return strings;
}

void world_check(struct world *W, mms_store *s, mms_table *const th[W_N], int verify)
{
    uint64_t strings = 0, tombs = 0;
    for (int k = 0; k < W_N; k++) {
        strings += gt_check(W, s, th, k);
        tombs += (uint64_t)W->g[k].tomb;
    }
    ASSERT_EQ(heap_objects(s), 1 + W_N + tombs + strings);
    mms_table_info ti[8];
    size_t n = 0;
    OK(mms_tables(s, ti, 8, &n));
    ASSERT_EQ(n, W_N);
    for (int k = 0; k < W_N; k++) {
        const struct gt *g = &W->g[k];
        size_t j = 0;
        while (j < n && strcmp(ti[j].name, g->name) != 0)
            j++;
        ASSERT_LT(j, n);
        ASSERT_EQ(ti[j].region, table_region(th[k]));
        ASSERT_EQ(ti[j].count, g->count);
        ASSERT_EQ(ti[j].slots, g->slots);
        ASSERT_EQ(ti[j].record_size, g->sc->record_size);
        ASSERT_EQ(ti[j].nfields, g->sc->nfields);
        ASSERT_EQ(ti[j].layout_gen, g->layout_gen);
    }
    if (verify)
        verify_ok(s);
}

/* Strings the live records hold in fields of g that `to` drops. */
uint64_t strings_dropped(const struct gt *g, const mms_schema *to)
{
    uint64_t n = 0;
    for (uint32_t fi = 0; fi < g->sc->nfields; fi++) {
        const mms_field *f = &g->sc->fields[fi];
        if (f->kind != MMS_KIND_STR || field_named(to, f->name))
            continue;
        int l = lid(f->name);
        for (uint64_t i = 0; i < g->slots; i++)
            n += g->live[i] && GV(g, i, l)->has;
    }
    return n;
}

/* What a migration does to the model: removed fields go, added ones get
 * their default (or zero) in live records; kept values stay as they are. */
void gt_migrate_model(struct gt *g, const mms_schema *to)
{
    for (uint32_t fi = 0; fi < g->sc->nfields; fi++) {
        const mms_field *f = &g->sc->fields[fi];
        if (field_named(to, f->name))
            continue;
        int l = lid(f->name);
        for (uint64_t i = 0; i < g->slots; i++)
            memset(GV(g, i, l), 0, sizeof(struct lv));
    }
    for (uint32_t fi = 0; fi < to->nfields; fi++) {
        const mms_field *f = &to->fields[fi];
        if (field_named(g->sc, f->name))
            continue;
        struct lv d;
        memset(&d, 0, sizeof d);
        if (f->dflt)
            decode_lv(f, f->dflt, &d);
        int l = lid(f->name);
        for (uint64_t i = 0; i < g->slots; i++)
            *GV(g, i, l) = g->live[i] ? d : (struct lv){0};
    }
    g->sc = to;
    g->layout_gen++;
}

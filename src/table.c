/*
 * table.c -- typed tables, the catalog, schema evolution, strings.
 *
 * A table is a region of fixed-size records; the catalog (a heap object the
 * store header points to) names each table's region and describes its
 * layout. Everything here is ordinary transactional data: records in their
 * region, catalog and strings in the heap. Appends past a table's committed
 * size are fresh space (not journaled, synced at commit).
 *
 * NOTES ON THE DESIGN
 *
 * Deleted records. A table has a tombstone bitmap in the heap: bit i set
 * means slot i is deleted. Slots past the bitmap's end are live, so
 * appending costs no bitmap write at all; deleting grows it when needed.
 * An append reuses the lowest deleted slot (from free_hint), an
 * append_many never does. A deleted record is zeroed and its strings and
 * blobs freed.
 *
 * Schema evolution (DESIGN §6). A layout change writes the records in
 * their new layout into a new file of the same region, one generation up
 * (region-<id>-<gen+1>), fields matched by name; in the transaction the
 * region table switches to the new generation and the catalog to the new
 * layout. The new file is fresh space: synced before the commit record
 * (Invariant 1), its name made durable by a sync of the directory. Before
 * the commit the old file is the table; after it the new one: a crash
 * leaves one layout or the other. The old file is deleted after the next
 * checkpoint, when no journal record can name it any more. Record indices,
 * and so refs, do not change.
 *
 * The handle's mapping of a migrated region is replaced in place (the same
 * reservation), so pointers into it stay valid addresses.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mms_table {
    mms_store *s;
    uint32_t idx;        /* catalog entry */
    uint32_t region;
    char name[64];
    uint64_t schema_gen; /* layout_gen the schema below was built from */
    mms_schema schema;
    mms_field *fields;
    char (*names)[48];
    char (*targets)[64];
    struct mms_table *next;
    /* What mms_table_get() needs, copied from the catalog entry while
     * view_epoch == s->tab_epoch: a get is then a compare and a multiply,
     * not a walk from the header through the catalog (which, at 10^7
     * random gets, made it twice as slow as the same loop on an array). */
    uint64_t view_epoch; /* UINT64_MAX: none */
    char *view_base;
    uint64_t view_slots; /* records both counted and mapped */
    uint64_t view_rs;
};

/* ------------------------------------------------------------------------
 * Kinds
 * ------------------------------------------------------------------------ */
static const char *const kind_names[] = {
    "?", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64",
    "f32", "f64", "bool", "chars", "ref", "str", "blob"};

static const char *kind_name(unsigned k)
{
    return k <= MMS_KIND_BLOB ? kind_names[k] : "?";
}

/* Fixed size of a kind (0: any, for chars). */
static uint32_t kind_size(unsigned k)
{
    switch (k) {
    case MMS_KIND_I8: case MMS_KIND_U8: case MMS_KIND_BOOL: return 1;
    case MMS_KIND_I16: case MMS_KIND_U16: return 2;
    case MMS_KIND_I32: case MMS_KIND_U32: case MMS_KIND_F32: return 4;
    case MMS_KIND_CHARS: return 0;
    default: return 8;
    }
}

static bool kind_signed(unsigned k)
{
    return k >= MMS_KIND_I8 && k <= MMS_KIND_I64;
}

static bool kind_unsigned(unsigned k)
{
    return k >= MMS_KIND_U8 && k <= MMS_KIND_U64;
}

static bool kind_owns_heap(unsigned k)
{
    return k == MMS_KIND_STR || k == MMS_KIND_BLOB;
}

/* ------------------------------------------------------------------------
 * Catalog access
 * ------------------------------------------------------------------------ */
static struct mms__catalog *catalog(const mms_store *s)
{
    mms_ref c = mms__hdr(s)->catalog;
    if (!c || MMS_REF_REGION(c) != 0 || MMS_REF_SLOT(c) + sizeof(struct mms__catalog) >
                                             mms__rtab(s)[0].size)
        return NULL;
    struct mms__catalog *cat = mms_deref(s, c);
    return cat->magic == MMS__CAT_MAGIC ? cat : NULL;
}

static int find_entry(const mms_store *s, const char *name)
{
    struct mms__catalog *cat = catalog(s);
    for (uint32_t i = 0; cat && i < cat->ntables; i++)
        if (strncmp(cat->t[i].name, name, sizeof cat->t[i].name) == 0)
            return (int)i;
    return -1;
}

static struct mms__tabent *entry_of_region(const mms_store *s, uint32_t region)
{
    struct mms__catalog *cat = catalog(s);
    for (uint32_t i = 0; cat && i < cat->ntables; i++)
        if (cat->t[i].region == region)
            return &cat->t[i];
    return NULL;
}

uint32_t mms__table_unit(const mms_store *s, uint32_t id)
{
    const struct mms__tabent *e = entry_of_region(s, id);
    return e ? e->record_size : 0;
}

/* The table's catalog entry, or NULL when it is gone (created by a
 * transaction that aborted). Hot: every get goes through it, so it checks
 * the entry's index and region, not its name. */
static struct mms__tabent *ent(const mms_table *t)
{
    struct mms__catalog *cat = catalog(t->s);
    if (!cat || t->idx >= cat->ntables || cat->t[t->idx].region != t->region)
        return NULL;
    return &cat->t[t->idx];
}

static struct mms__fdesc *fdescs(const mms_store *s, const struct mms__tabent *e)
{
    return e->fields ? mms_deref(s, e->fields) : NULL;
}

static inline char *rec_at(const mms_table *t, const struct mms__tabent *e, uint64_t i)
{
    return t->s->view.base[t->region] + i * e->record_size;
}

/* ------------------------------------------------------------------------
 * Schema checks
 * ------------------------------------------------------------------------ */
static int schema_check(mms_store *s, const char *table, const mms_schema *sc)
{
    if (!sc || !sc->fields || sc->nfields == 0 || sc->nfields > MMS__MAX_FIELDS)
        return mms__fail(MMS_EINVAL, "table %s: a schema needs 1 to %u fields", table,
                         MMS__MAX_FIELDS);
    if (sc->record_size == 0 || sc->record_size > MMS__MAX_RECORD)
        return mms__fail(MMS_EINVAL, "table %s: record size %u is not in 1..%u", table,
                         sc->record_size, MMS__MAX_RECORD);
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        size_t n = f->name ? strlen(f->name) : 0;
        if (n == 0 || n >= 48)
            return mms__fail(MMS_EINVAL, "table %s: field %u needs a name of 1 to 47 bytes",
                             table, i);
        if (f->kind < MMS_KIND_I8 || f->kind > MMS_KIND_BLOB)
            return mms__fail(MMS_EINVAL, "table %s: field %s has unknown kind %u", table,
                             f->name, f->kind);
        uint32_t ks = kind_size(f->kind);
        if ((ks && f->size != ks) || f->size == 0)
            return mms__fail(MMS_EINVAL, "table %s: field %s is %u bytes, a %s is %u", table,
                             f->name, f->size, kind_name(f->kind), ks);
        if (f->offset > sc->record_size || f->size > sc->record_size - f->offset)
            return mms__fail(MMS_EINVAL, "table %s: field %s lies outside the record", table,
                             f->name);
        if (f->dflt && f->size > 32)
            return mms__fail(MMS_EINVAL, "table %s: field %s: defaults are for fields of up "
                             "to 32 bytes", table, f->name);
        if (f->kind == MMS_KIND_REF) {
            if (!f->target || !*f->target)
                return mms__fail(MMS_EINVAL, "table %s: ref field %s names no target table",
                                 table, f->name);
            if (strcmp(f->target, table) != 0 && find_entry(s, f->target) < 0)
                return mms__fail(MMS_ENOENT, "table %s: ref field %s targets table %s, which "
                                 "does not exist", table, f->name, f->target);
        }
        for (uint32_t j = 0; j < i; j++) {
            const mms_field *g = &sc->fields[j];
            if (strcmp(g->name, f->name) == 0)
                return mms__fail(MMS_EINVAL, "table %s: two fields are called %s", table,
                                 f->name);
            if (f->offset < g->offset + g->size && g->offset < f->offset + f->size)
                return mms__fail(MMS_EINVAL, "table %s: fields %s and %s overlap", table,
                                 g->name, f->name);
        }
    }
    return 0;
}

static uint32_t target_region(mms_store *s, const char *table, uint32_t own_region,
                              const mms_field *f)
{
    if (f->kind != MMS_KIND_REF)
        return 0;
    if (strcmp(f->target, table) == 0)
        return own_region;
    int i = find_entry(s, f->target);
    return i < 0 ? 0 : catalog(s)->t[i].region;
}

static const struct mms__fdesc *fdesc_named(const struct mms__fdesc *fd, uint32_t n,
                                            const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(fd[i].name, name) == 0)
            return &fd[i];
    return NULL;
}

static bool same_layout(mms_store *s, const char *table, const struct mms__tabent *e,
                        const mms_schema *sc)
{
    if (e->record_size != sc->record_size || e->nfields != sc->nfields)
        return false;
    const struct mms__fdesc *fd = fdescs(s, e);
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        const struct mms__fdesc *o = fdesc_named(fd, e->nfields, f->name);
        if (!o || o->kind != f->kind || o->offset != f->offset || o->size != f->size ||
            o->target != target_region(s, table, e->region, f))
            return false;
    }
    return true;
}

/* Write the field descriptors of sc into a new heap array. */
static int fdescs_new(mms_store *s, const char *table, uint32_t region, const mms_schema *sc,
                      mms_ref *out)
{
    int r = mms_zalloc(s, sizeof(struct mms__fdesc) * sc->nfields, out);
    if (r)
        return r;
    struct mms__fdesc *fd = mms_deref(s, *out);
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        snprintf(fd[i].name, sizeof fd[i].name, "%s", f->name);
        fd[i].kind = f->kind;
        fd[i].offset = f->offset;
        fd[i].size = f->size;
        fd[i].target = target_region(s, table, region, f);
        if (f->dflt)
            memcpy(fd[i].dflt, f->dflt, f->size);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Handles
 * ------------------------------------------------------------------------ */
static void table_free(mms_table *t)
{
    free(t->fields);
    free(t->names);
    free(t->targets);
    free(t);
}

/* A transaction was undone: its layouts may come back under the same
 * layout_gen with other fields, so every cached schema is rebuilt. */
void mms__tables_forget(mms_store *s)
{
    s->tab_epoch++;
    for (mms_table *t = s->tables; t; t = t->next)
        t->schema_gen = UINT64_MAX;
}

void mms__tables_free(mms_store *s)
{
    for (mms_table *t = s->tables, *n; t; t = n) {
        n = t->next;
        table_free(t);
    }
    s->tables = NULL;
}

static int handle_for(mms_store *s, int idx, mms_table **out)
{
    const struct mms__tabent *e = &catalog(s)->t[idx];
    for (mms_table *t = s->tables; t; t = t->next)
        if (strcmp(t->name, e->name) == 0) {
            t->idx = (uint32_t)idx;
            t->region = e->region;
            t->view_epoch = UINT64_MAX;
            *out = t;
            return 0;
        }
    mms_table *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->s = s;
    t->idx = (uint32_t)idx;
    t->region = e->region;
    snprintf(t->name, sizeof t->name, "%s", e->name);
    t->schema_gen = UINT64_MAX;
    t->view_epoch = UINT64_MAX;
    t->next = s->tables;
    s->tables = t;
    *out = t;
    return 0;
}

const mms_schema *mms_table_schema(mms_table *t)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    if (!e)
        return NULL;
    if (t->schema_gen == e->layout_gen && t->fields)
        return &t->schema;
    mms_field *f = calloc(e->nfields, sizeof *f);
    char (*names)[48] = calloc(e->nfields, sizeof *names);
    char (*targets)[64] = calloc(e->nfields, sizeof *targets);
    if (!f || !names || !targets) {
        free(f);
        free(names);
        free(targets);
        return NULL;
    }
    const struct mms__fdesc *fd = fdescs(t->s, e);
    for (uint32_t i = 0; i < e->nfields; i++) {
        memcpy(names[i], fd[i].name, sizeof names[i]);
        names[i][47] = 0;
        f[i].name = names[i];
        f[i].kind = fd[i].kind;
        f[i].offset = fd[i].offset;
        f[i].size = fd[i].size;
        if (fd[i].kind == MMS_KIND_REF) {
            const struct mms__tabent *te = entry_of_region(t->s, fd[i].target);
            snprintf(targets[i], sizeof targets[i], "%s", te ? te->name : "?");
            f[i].target = targets[i];
        }
    }
    free(t->fields);
    free(t->names);
    free(t->targets);
    t->fields = f;
    t->names = names;
    t->targets = targets;
    t->schema.record_size = e->record_size;
    t->schema.nfields = e->nfields;
    t->schema.fields = f;
    t->schema_gen = e->layout_gen;
    return &t->schema;
}

const char *mms_table_name(const mms_table *t)
{
    return t ? t->name : NULL;
}

/* ------------------------------------------------------------------------
 * Region files
 * ------------------------------------------------------------------------ */
int mms__region_new(mms_store *s, uint32_t id, uint32_t gen, uint64_t bytes)
{
    char name[64];
    snprintf(name, sizeof name, "region-%u-%u", id, gen);
    int fd;
    int r = mms__region_open_file(s, id, gen, true, true, &fd);
    if (r == -EEXIST) {
        /* Left by a transaction that aborted or crashed: the header does
         * not name it, nobody maps it. */
        mms__os_unlinkat(s->dirfd, name);
        r = mms__region_open_file(s, id, gen, true, true, &fd);
        if (!r)
            mms__detail_clear();
    }
    if (r)
        return r;
    s->dir_dirty = true;
    bytes = mms__round_up(bytes ? bytes : 1, (uint64_t)1 << 20);
    r = mms__os_fallocate(fd, 0, bytes);
    if (r) {
        mms__os_close(fd);
        mms__os_unlinkat(s->dirfd, name);
        return mms__fail(r, "cannot create the file of region %u: %s", id, mms_strerror(r));
    }
    return s->view.base[id] ? mms__map_replace(s, id, fd, gen, 0)
                            : mms__map_region(s, id, fd, gen, 0);
}

void mms__gc_files(mms_store *s, const struct mms__rent *rt, uint32_t nregions)
{
    int fd = mms__os_openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        mms__os_close(fd);
        return;
    }
    for (struct dirent *de; (de = readdir(d));) {
        unsigned id, gen;
        char tail;
        if (sscanf(de->d_name, "region-%u-%u%c", &id, &gen, &tail) != 2)
            continue;
        if (id == 0 || (id < nregions && rt[id].kind != MMS__RK_NONE && rt[id].gen == gen))
            continue;
        mms__os_unlinkat(s->dirfd, de->d_name);
    }
    closedir(d);
}

/* ------------------------------------------------------------------------
 * Creating a table
 * ------------------------------------------------------------------------ */
static int catalog_add(mms_store *s, struct mms__tabent **out, int *idx)
{
    struct mms__hdr *h = mms__hdr(s);
    struct mms__catalog *cat = catalog(s);
    int r;
    if (!cat) {
        mms_ref c;
        r = mms_zalloc(s, sizeof *cat + 8 * sizeof cat->t[0], &c);
        if (r)
            return r;
        cat = mms_deref(s, c);
        cat->magic = MMS__CAT_MAGIC;
        cat->cap = 8;
        h->catalog = c;
    } else if (cat->ntables == cat->cap) {
        mms_ref c = h->catalog;
        uint32_t cap = cat->cap * 2;
        r = mms_realloc(s, &c, sizeof *cat + cap * sizeof cat->t[0]);
        if (r)
            return r;
        h->catalog = c;
        cat = mms_deref(s, c);
        memset(&cat->t[cat->cap], 0, (cap - cat->cap) * sizeof cat->t[0]);
        cat->cap = cap;
    }
    *idx = (int)cat->ntables++;
    *out = &cat->t[*idx];
    memset(*out, 0, sizeof **out);
    return 0;
}

static int table_create(mms_store *s, const char *name, const mms_schema *sc, mms_table **t)
{
    struct mms__hdr *h = mms__hdr(s);
    struct mms__rent *rt = mms__rtab(s);
    uint32_t id = 1;
    while (id < MMS_MAX_REGIONS && id < h->nregions && rt[id].kind != MMS__RK_NONE)
        id++;
    if (id >= MMS_MAX_REGIONS)
        return mms__fail(MMS_EFULL, "a store holds at most %u tables", MMS_MAX_REGIONS - 1);
    /* Everything that can fail comes first, and is undone if a later step
     * fails; the header and the catalog change last, when nothing can: a
     * failed create leaves the transaction as it was. */
    uint32_t gen = id < h->nregions ? rt[id].gen + 1 : 0;
    int r = mms__region_new(s, id, gen, s->grow_step < ((uint64_t)1 << 20) ? s->grow_step : (1u << 20));
    if (r)
        return r;
    mms_ref fields;
    r = fdescs_new(s, name, id, sc, &fields);
    struct mms__tabent *e;
    int idx;
    if (!r) {
        r = catalog_add(s, &e, &idx);
        if (r)
            mms_free(s, fields);
    }
    if (r) {
        char file[64];
        snprintf(file, sizeof file, "region-%u-%u", id, gen);
        mms__map_unmap_region(s, id);
        mms__os_unlinkat(s->dirfd, file);
        return r;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    e->region = (uint16_t)id;
    e->nfields = (uint16_t)sc->nfields;
    e->record_size = sc->record_size;
    e->fields = fields;
    rt[id].size = 0;
    rt[id].gen = gen;
    rt[id].kind = MMS__RK_TABLE;
    if (id >= h->nregions)
        h->nregions = id + 1;
    s->view.unit[id] = sc->record_size; /* mapped before its entry existed */
    return handle_for(s, idx, t);
}

/* ------------------------------------------------------------------------
 * Migration
 * ------------------------------------------------------------------------ */
enum { OP_ZERO, OP_DEFAULT, OP_COPY, OP_INT, OP_INT_F64, OP_F32_F64, OP_CHARS };

struct fplan {
    int op;
    uint32_t dst_off, dst_size, src_off, src_size;
    bool src_signed;
    const uint8_t *dflt;
};

static int64_t read_int(const char *p, uint32_t size, bool sgn)
{
    switch (size) {
    case 1: return sgn ? (int64_t)*(const int8_t *)p : (int64_t)*(const uint8_t *)p;
    case 2: { int16_t a; uint16_t b; memcpy(&a, p, 2); memcpy(&b, p, 2); return sgn ? (int64_t)a : (int64_t)b; }
    case 4: { int32_t a; uint32_t b; memcpy(&a, p, 4); memcpy(&b, p, 4); return sgn ? (int64_t)a : (int64_t)b; }
    default: { int64_t a; memcpy(&a, p, 8); return a; }
    }
}

static void write_int(char *p, uint32_t size, int64_t v)
{
    switch (size) {
    case 1: { int8_t a = (int8_t)v; memcpy(p, &a, 1); break; }
    case 2: { int16_t a = (int16_t)v; memcpy(p, &a, 2); break; }
    case 4: { int32_t a = (int32_t)v; memcpy(p, &a, 4); break; }
    default: memcpy(p, &v, 8);
    }
}

/* Can a value of kind a (size as) become kind b (size bs) without loss? */
static int widen_op(unsigned a, uint32_t as, unsigned b, uint32_t bs)
{
    if (a == b && as == bs)
        return OP_COPY;
    if (a == MMS_KIND_CHARS && b == MMS_KIND_CHARS && bs > as)
        return OP_CHARS;
    if (kind_signed(a) && kind_signed(b) && bs > as)
        return OP_INT;
    if (kind_unsigned(a) && (kind_unsigned(b) || kind_signed(b)) && bs > as)
        return OP_INT;
    if ((kind_signed(a) || kind_unsigned(a)) && as <= 4 && b == MMS_KIND_F64)
        return OP_INT_F64;
    if (a == MMS_KIND_F32 && b == MMS_KIND_F64)
        return OP_F32_F64;
    return -1;
}

static void convert(const struct fplan *plan, uint32_t n, const char *src, char *dst)
{
    for (uint32_t i = 0; i < n; i++) {
        const struct fplan *p = &plan[i];
        char *d = dst + p->dst_off;
        const char *o = src + p->src_off;
        switch (p->op) {
        case OP_ZERO: break; /* the new file is zeroed */
        case OP_DEFAULT: memcpy(d, p->dflt, p->dst_size); break;
        case OP_COPY: memcpy(d, o, p->dst_size); break;
        case OP_CHARS: memcpy(d, o, p->src_size); break;
        case OP_INT: write_int(d, p->dst_size, read_int(o, p->src_size, p->src_signed)); break;
        case OP_INT_F64: {
            double v = (double)read_int(o, p->src_size, p->src_signed);
            memcpy(d, &v, 8);
            break;
        }
        case OP_F32_F64: {
            float f;
            memcpy(&f, o, 4);
            double v = f;
            memcpy(d, &v, 8);
            break;
        }
        }
    }
}

static bool is_live(const mms_store *s, const struct mms__tabent *e, uint64_t i)
{
    if (i >= e->count)
        return false;
    if (i >= e->tomb_bits)
        return true;
    const uint64_t *b = mms_deref(s, e->tomb);
    return !(b[i / 64] >> (i % 64) & 1);
}

static int table_migrate(mms_store *s, mms_table *t, const mms_schema *sc)
{
    struct mms__tabent *e = ent(t);
    const struct mms__fdesc *old = fdescs(s, e);
    uint32_t id = t->region;
    struct fplan *plan = calloc(sc->nfields, sizeof *plan);
    if (!plan)
        return -ENOMEM;
    /* What changes, and whether anything would be lost. */
    char why[480];
    size_t wl = 0;
    why[0] = 0;
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        struct fplan *p = &plan[i];
        p->dst_off = f->offset;
        p->dst_size = f->size;
        const struct mms__fdesc *o = fdesc_named(old, e->nfields, f->name);
        if (!o) {
            p->op = f->dflt ? OP_DEFAULT : OP_ZERO;
            p->dflt = f->dflt;
            continue;
        }
        p->src_off = o->offset;
        p->src_size = o->size;
        p->src_signed = kind_signed(o->kind);
        p->op = widen_op(o->kind, o->size, f->kind, f->size);
        if (p->op >= 0 && f->kind == MMS_KIND_REF &&
            o->target != target_region(s, t->name, id, f))
            p->op = -1;
        if (p->op < 0 && wl < sizeof why - 1)
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "%s%s %s[%u] -> %s[%u]",
                                   wl ? "; " : "", f->name, kind_name(o->kind), o->size,
                                   kind_name(f->kind), f->size);
    }
    if (wl) {
        free(plan);
        return mms__fail(MMS_ESCHEMA, "table %s: changes that could lose data: %s", t->name, why);
    }
    /* The records, in the new layout, in a new file of the region. */
    uint64_t count = e->count, newsize = count * sc->record_size;
    uint32_t gen = mms__rtab(s)[id].gen + 1;
    char name[64];
    snprintf(name, sizeof name, "region-%u-%u", id, gen);
    int fd;
    int r = mms__region_open_file(s, id, gen, true, true, &fd);
    if (r == -EEXIST) {
        mms__os_unlinkat(s->dirfd, name);
        r = mms__region_open_file(s, id, gen, true, true, &fd);
        if (!r)
            mms__detail_clear();
    }
    if (r) {
        free(plan);
        return r;
    }
    s->dir_dirty = true;
    uint64_t fbytes = mms__round_up(newsize ? newsize : 1, (uint64_t)1 << 20);
    char *dst = NULL;
    r = mms__os_fallocate(fd, 0, fbytes);
    if (!r)
        r = mms__os_map(fd, fbytes, true, &dst);
    if (r) {
        free(plan);
        mms__os_close(fd);
        mms__os_unlinkat(s->dirfd, name);
        return mms__fail(r, "table %s: cannot write its new layout: %s", t->name, mms_strerror(r));
    }
    /* Fresh space may hold bytes of an earlier attempt. */
    memset(dst, 0, newsize);
    for (uint64_t i = 0; i < count; i++)
        if (is_live(s, e, i))
            convert(plan, sc->nfields, rec_at(t, e, i), dst + i * sc->record_size);
    free(plan);
    /* Strings and blobs of removed fields go with them. */
    for (uint32_t k = 0; k < e->nfields; k++) {
        if (!kind_owns_heap(old[k].kind))
            continue;
        bool kept = false;
        for (uint32_t i = 0; i < sc->nfields; i++)
            kept |= strcmp(sc->fields[i].name, old[k].name) == 0;
        for (uint64_t i = 0; !kept && i < count; i++) {
            mms_ref ref;
            memcpy(&ref, rec_at(t, e, i) + old[k].offset, 8);
            if (ref && is_live(s, e, i) && (r = mms_free(s, ref)) != 0)
                break;
        }
        if (r)
            break;
    }
    mms__os_unmap(dst, fbytes);
    if (r) {
        mms__os_close(fd);
        mms__os_unlinkat(s->dirfd, name);
        return r;
    }
    /* The catalog and the region table switch in this transaction. */
    mms_ref fields;
    r = fdescs_new(s, t->name, id, sc, &fields);
    if (r) {
        mms__os_close(fd);
        return r;
    }
    e = ent(t);
    mms_free(s, e->fields);
    e->fields = fields;
    e->record_size = sc->record_size;
    e->nfields = (uint16_t)sc->nfields;
    e->layout_gen++;
    struct mms__rent *rte = &mms__rtab(s)[id];
    rte->gen = gen;
    rte->size = newsize;
    /* Committed 0: the whole new file is fresh, synced at commit. */
    return mms__map_replace(s, id, fd, gen, 0);
}

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */
static int name_check(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= 64)
        return mms__fail(MMS_EINVAL, "a table name is 1 to 63 bytes");
    return 0;
}

int mms_table_open(mms_store *s, const char *name, const mms_schema *sc, unsigned flags,
                   mms_table **t)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (!t || (flags & ~MMS_TABLE_CREATE))
        return mms__fail(MMS_EINVAL, "mms_table_open: bad arguments");
    *t = NULL;
    if ((r = name_check(name)) || (r = schema_check(s, name, sc)))
        return r;
    int idx = find_entry(s, name);
    if (idx < 0) {
        if (!(flags & MMS_TABLE_CREATE))
            return mms__fail(MMS_ENOENT, "no table called %s", name);
        if ((r = mms__check_write(s)))
            return r;
        s->tab_epoch++;
        return table_create(s, name, sc, t);
    }
    struct mms__tabent *e = &catalog(s)->t[idx];
    if (same_layout(s, name, e, sc))
        return handle_for(s, idx, t);
    if (s->state != MMS__ST_WRITE)
        return mms__fail(s->flags & MMS_RDONLY ? MMS_ESCHEMA : MMS_ENOTXN,
                         "table %s has another record layout (%u bytes, %u fields); %s", name,
                         e->record_size, e->nfields,
                         s->flags & MMS_RDONLY ? "a read-only handle cannot migrate it"
                                               : "migrating it needs a write transaction");
    mms_table *h;
    s->tab_epoch++;
    if ((r = handle_for(s, idx, &h)) || (r = table_migrate(s, h, sc)))
        return r;
    *t = h;
    return 0;
}

int mms_table_find(mms_store *s, const char *name, mms_table **t)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (!t || (r = name_check(name)))
        return r ? r : mms__fail(MMS_EINVAL, "mms_table_find: t is NULL");
    int idx = find_entry(s, name);
    if (idx < 0)
        return mms__fail(MMS_ENOENT, "no table called %s", name);
    return handle_for(s, idx, t);
}

int mms_tables(mms_store *s, mms_table_info *out, size_t cap, size_t *n)
{
    if (!s || !n || (cap && !out))
        return mms__fail(MMS_EINVAL, "mms_tables: NULL argument");
    struct mms__catalog *cat = catalog(s);
    uint32_t k = cat ? cat->ntables : 0;
    for (uint32_t i = 0; i < k && i < cap; i++) {
        const struct mms__tabent *e = &cat->t[i];
        memset(&out[i], 0, sizeof out[i]);
        snprintf(out[i].name, sizeof out[i].name, "%s", e->name);
        out[i].region = e->region;
        out[i].record_size = e->record_size;
        out[i].nfields = e->nfields;
        out[i].count = e->live;
        out[i].slots = e->count;
        out[i].layout_gen = e->layout_gen;
    }
    *n = k;
    return 0;
}

/* ------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------ */
uint64_t mms_table_count(const mms_table *t)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    return e ? e->live : 0;
}

uint64_t mms_table_slots(const mms_table *t)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    return e ? e->count : 0;
}

void *mms_table_array(const mms_table *t)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    return e && e->count ? t->s->view.base[t->region] : NULL;
}

static void *get_slow(const mms_table *t, uint64_t i)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    if (!e || !e->record_size)
        return NULL;
    /* Outside a read transaction the catalog may be ahead of the mapping. */
    uint64_t slots = t->s->reg[t->region].mapped / e->record_size;
    mms_table *v = (mms_table *)t; /* the handle is ours; only the cache changes */
    v->view_base = rec_at(t, e, 0);
    v->view_slots = e->count < slots ? e->count : slots;
    v->view_rs = e->record_size;
    v->view_epoch = t->s->tab_epoch;
    return i < v->view_slots ? v->view_base + i * v->view_rs : NULL;
}

void *mms_table_get(const mms_table *t, uint64_t i)
{
    if (t && t->view_epoch == t->s->tab_epoch)
        return i < t->view_slots ? t->view_base + i * t->view_rs : NULL;
    return get_slow(t, i);
}

int mms_table_live(const mms_table *t, uint64_t i)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    return e && is_live(t->s, e, i);
}

const uint64_t *mms_table_deleted(const mms_table *t, uint64_t *nbits)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    if (nbits)
        *nbits = e ? e->tomb_bits : 0;
    return e && e->tomb_bits ? mms_deref(t->s, e->tomb) : NULL;
}

mms_ref mms_table_ref(const mms_table *t, uint64_t i)
{
    return t ? MMS_REF_MAKE(t->region, i) : MMS_REF_NULL;
}

/* Grow the table's array to n slots (fresh space past the committed size
 * is not journaled). */
static int grow_to(mms_table *t, uint64_t n)
{
    struct mms__tabent *e = ent(t);
    uint64_t bytes = n * e->record_size;
    if (n > MMS_SLOT_MASK || bytes / e->record_size != n)
        return mms__fail(MMS_EFULL, "table %s cannot hold %llu records", t->name,
                         (unsigned long long)n);
    int r = mms__map_grow(t->s, t->region, bytes);
    if (r)
        return r;
    e->count = n;
    mms__rtab(t->s)[t->region].size = bytes;
    return 0;
}

static int table_write_check(const mms_table *t, struct mms__tabent **e)
{
    if (!t)
        return mms__fail(MMS_EINVAL, "table is NULL");
    int r = mms__check_write(t->s);
    if (r)
        return r;
    t->s->tab_epoch++; /* the caller changes the entry */
    *e = ent(t);
    if (!*e)
        return mms__fail(MMS_ENOENT, "table %s is gone (its creation was aborted)", t->name);
    return 0;
}

int mms_table_append(mms_table *t, const void *rec, uint64_t *index)
{
    struct mms__tabent *e;
    int r = table_write_check(t, &e);
    if (r)
        return r;
    uint64_t i = e->count;
    if (e->live < e->count && e->tomb_bits) {
        /* The lowest deleted slot, from the hint. */
        uint64_t *b = mms_deref(t->s, e->tomb), words = (e->tomb_bits + 63) / 64;
        for (uint64_t k = 0; k < words; k++) {
            uint64_t w = (e->free_hint + k) % words;
            if (b[w]) {
                i = w * 64 + (uint64_t)__builtin_ctzll(b[w]);
                b[w] &= b[w] - 1;
                e->free_hint = w;
                break;
            }
        }
    }
    if (i == e->count && (r = grow_to(t, e->count + 1)))
        return r;
    e = ent(t);
    char *p = rec_at(t, e, i);
    if (rec)
        memcpy(p, rec, e->record_size);
    else
        memset(p, 0, e->record_size);
    e->live++;
    if (index)
        *index = i;
    return 0;
}

int mms_table_append_many(mms_table *t, uint64_t n, uint64_t *first, void **where)
{
    struct mms__tabent *e;
    int r = table_write_check(t, &e);
    if (r)
        return r;
    if (!first)
        return mms__fail(MMS_EINVAL, "mms_table_append_many: first is NULL");
    uint64_t i = e->count;
    if (n && (r = grow_to(t, e->count + n)))
        return r;
    e = ent(t);
    /* Fresh space may hold the bytes of an aborted transaction. */
    memset(rec_at(t, e, i), 0, n * e->record_size);
    e->live += n;
    *first = i;
    if (where)
        *where = rec_at(t, e, i);
    return 0;
}

int mms_table_delete(mms_table *t, uint64_t i)
{
    struct mms__tabent *e;
    int r = table_write_check(t, &e);
    if (r)
        return r;
    if (!is_live(t->s, e, i))
        return mms__fail(MMS_ERANGE, "table %s has no live record %llu", t->name,
                         (unsigned long long)i);
    if (i >= e->tomb_bits) {
        uint64_t bits = e->tomb_bits ? e->tomb_bits : 1024;
        while (bits <= i)
            bits *= 2;
        if (bits > e->count)
            bits = mms__round_up(e->count, 64);
        mms_ref tomb = e->tomb;
        uint64_t had = (e->tomb_bits + 63) / 64 * 8;
        r = mms_realloc(t->s, &tomb, bits / 8);
        if (r)
            return r;
        e = ent(t);
        memset((char *)mms_deref(t->s, tomb) + had, 0, bits / 8 - had);
        e->tomb = tomb;
        e->tomb_bits = bits;
    }
    char *p = rec_at(t, e, i);
    const struct mms__fdesc *fd = fdescs(t->s, e);
    for (uint32_t k = 0; k < e->nfields; k++)
        if (kind_owns_heap(fd[k].kind)) {
            mms_ref ref;
            memcpy(&ref, p + fd[k].offset, 8);
            if (ref && (r = mms_free(t->s, ref)))
                return r;
        }
    memset(p, 0, e->record_size);
    uint64_t *b = mms_deref(t->s, e->tomb);
    b[i / 64] |= UINT64_C(1) << (i % 64);
    if (i / 64 < e->free_hint)
        e->free_hint = i / 64;
    e->live--;
    return 0;
}

/* ------------------------------------------------------------------------
 * Strings and blobs: u64 length, bytes, NUL.
 * ------------------------------------------------------------------------ */
int mms_str_new(mms_store *s, const void *bytes, size_t len, mms_ref *ref)
{
    if (!ref || (len && !bytes))
        return mms__fail(MMS_EINVAL, "mms_str_new: bad arguments");
    if (len > (SIZE_MAX >> 1))
        return mms__fail(MMS_EFULL, "string of %zu bytes is too long", len);
    int r = mms_alloc(s, len + 9, ref);
    if (r)
        return r;
    char *p = mms_deref(s, *ref);
    uint64_t n = len;
    memcpy(p, &n, 8);
    if (len)
        memcpy(p + 8, bytes, len);
    p[8 + len] = 0;
    return 0;
}

const char *mms_str_get(const mms_store *s, mms_ref ref, size_t *len)
{
    if (!s || !ref || MMS_REF_REGION(ref) != 0)
        return NULL;
    uint64_t off = MMS_REF_SLOT(ref), top = mms__rtab(s)[0].size;
    if (off < MMS__HDR_BYTES || off + 9 > top || off + 9 > s->reg[0].mapped)
        return NULL;
    const char *p = mms_deref(s, ref);
    uint64_t n;
    memcpy(&n, p, 8);
    if (n > top - off - 9)
        return NULL;
    if (len)
        *len = (size_t)n;
    return p + 8;
}

int mms_str_set(mms_store *s, mms_ref *field, const void *bytes, size_t len)
{
    if (!field)
        return mms__fail(MMS_EINVAL, "mms_str_set: field is NULL");
    mms_ref n;
    int r = mms_str_new(s, bytes, len, &n);
    if (r)
        return r;
    if (*field && (r = mms_free(s, *field))) {
        mms_free(s, n);
        return r;
    }
    *field = n;
    return 0;
}

/* ------------------------------------------------------------------------
 * Verification: catalog, each table's region and bitmap, and every live
 * record's refs, strings and blobs.
 * ------------------------------------------------------------------------ */
#define VFAIL(...) (snprintf(msg, cap, __VA_ARGS__), MMS_ECORRUPT)

static int check_heap_object(const mms_store *s, mms_ref ref, uint64_t need)
{
    size_t usable;
    if (mms_alloc_size(s, ref, &usable) != 0)
        return -1;
    return usable >= need ? 0 : -1;
}

int mms__tables_verify(mms_store *s, char *msg, size_t cap)
{
    const struct mms__hdr *h = mms__hdr(s);
    const struct mms__rent *rt = mms__rtab(s);
    if (!h->catalog) {
        for (uint32_t id = 1; id < h->nregions; id++)
            if (rt[id].kind != MMS__RK_NONE)
                return VFAIL("region %u is a table but there is no catalog", id);
        return 0;
    }
    if (check_heap_object(s, h->catalog, sizeof(struct mms__catalog)) != 0)
        return VFAIL("catalog: ref 0x%llx is not a live heap object",
                     (unsigned long long)h->catalog);
    const struct mms__catalog *cat = catalog(s);
    if (!cat)
        return VFAIL("catalog: bad magic");
    if (cat->ntables > cat->cap ||
        check_heap_object(s, h->catalog, sizeof *cat + cat->cap * sizeof cat->t[0]) != 0)
        return VFAIL("catalog: %u tables in room for %u, past its allocation", cat->ntables,
                     cat->cap);
    uint32_t tables_of_region[MMS_MAX_REGIONS] = {0};
    for (uint32_t i = 0; i < cat->ntables; i++) {
        const struct mms__tabent *e = &cat->t[i];
        if (memchr(e->name, 0, sizeof e->name) == NULL || !e->name[0])
            return VFAIL("catalog entry %u: bad name", i);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(cat->t[j].name, e->name) == 0)
                return VFAIL("catalog: two tables called %s", e->name);
        uint32_t id = e->region;
        if (id == 0 || id >= h->nregions || rt[id].kind != MMS__RK_TABLE)
            return VFAIL("table %s: region %u is not a table region", e->name, id);
        if (tables_of_region[id]++)
            return VFAIL("table %s: region %u belongs to two tables", e->name, id);
        if (e->record_size == 0 || e->record_size > MMS__MAX_RECORD || e->nfields == 0 ||
            e->nfields > MMS__MAX_FIELDS)
            return VFAIL("table %s: record size %u, %u fields", e->name, e->record_size,
                         e->nfields);
        if (rt[id].size != e->count * e->record_size)
            return VFAIL("table %s: region %u holds %llu bytes, %llu records of %u need %llu",
                         e->name, id, (unsigned long long)rt[id].size,
                         (unsigned long long)e->count, e->record_size,
                         (unsigned long long)(e->count * e->record_size));
        if (s->reg[id].gen != rt[id].gen || s->reg[id].mapped < rt[id].size)
            return VFAIL("table %s: region %u is not mapped as the header says", e->name, id);
        if (check_heap_object(s, e->fields, e->nfields * sizeof(struct mms__fdesc)) != 0)
            return VFAIL("table %s: its field list is not a live heap object", e->name);
        if (e->tomb_bits) {
            if (e->tomb_bits % 64 || check_heap_object(s, e->tomb, e->tomb_bits / 8) != 0)
                return VFAIL("table %s: its deleted-record bitmap is damaged", e->name);
        }
        uint64_t dead = 0;
        const uint64_t *b = e->tomb_bits ? mms_deref(s, e->tomb) : NULL;
        for (uint64_t w = 0; w < e->tomb_bits / 64; w++) {
            /* Bits of slots past the end must be clear. */
            uint64_t valid = w * 64 >= e->count           ? 0
                             : e->count - w * 64 >= 64     ? ~UINT64_C(0)
                                                           : (UINT64_C(1) << (e->count - w * 64)) - 1;
            if (b[w] & ~valid)
                return VFAIL("table %s: a slot past its end is marked deleted", e->name);
            dead += (uint64_t)__builtin_popcountll(b[w]);
        }
        if (e->live != e->count - dead)
            return VFAIL("table %s: counts %llu live records, its bitmap %llu", e->name,
                         (unsigned long long)e->live, (unsigned long long)(e->count - dead));
        const struct mms__fdesc *fd = mms_deref(s, e->fields);
        for (uint32_t k = 0; k < e->nfields; k++) {
            const struct mms__fdesc *f = &fd[k];
            uint32_t ks = kind_size(f->kind);
            if (memchr(f->name, 0, sizeof f->name) == NULL || !f->name[0] ||
                f->kind < MMS_KIND_I8 || f->kind > MMS_KIND_BLOB || (ks && f->size != ks) ||
                f->size == 0 || f->offset > e->record_size ||
                f->size > e->record_size - f->offset)
                return VFAIL("table %s: field %u is damaged", e->name, k);
            if (f->kind == MMS_KIND_REF &&
                (f->target == 0 || f->target >= h->nregions || rt[f->target].kind != MMS__RK_TABLE))
                return VFAIL("table %s: ref field %s targets region %u, not a table", e->name,
                             f->name, f->target);
        }
    }
    for (uint32_t id = 1; id < h->nregions; id++)
        if (rt[id].kind == MMS__RK_TABLE && !tables_of_region[id])
            return VFAIL("region %u is a table region that no catalog entry names", id);
    /* Every live record: refs to live records of the right table, strings
     * and blobs inside the heap. */
    for (uint32_t i = 0; i < cat->ntables; i++) {
        const struct mms__tabent *e = &cat->t[i];
        const struct mms__fdesc *fd = mms_deref(s, e->fields);
        const char *base = s->view.base[e->region];
        for (uint32_t k = 0; k < e->nfields; k++) {
            const struct mms__fdesc *f = &fd[k];
            if (f->kind != MMS_KIND_REF && !kind_owns_heap(f->kind))
                continue;
            const struct mms__tabent *te =
                f->kind == MMS_KIND_REF ? entry_of_region(s, f->target) : NULL;
            for (uint64_t r = 0; r < e->count; r++) {
                if (!is_live(s, e, r))
                    continue;
                mms_ref ref;
                memcpy(&ref, base + r * e->record_size + f->offset, 8);
                if (!ref)
                    continue;
                if (f->kind == MMS_KIND_REF) {
                    if (MMS_REF_REGION(ref) != f->target || !te ||
                        !is_live(s, te, MMS_REF_SLOT(ref)))
                        return VFAIL("table %s record %llu: ref field %s (0x%llx) is not a "
                                     "live record of table %s", e->name, (unsigned long long)r,
                                     f->name, (unsigned long long)ref, te ? te->name : "?");
                } else {
                    size_t len;
                    if (!mms_str_get(s, ref, &len) || check_heap_object(s, ref, len + 9) != 0)
                        return VFAIL("table %s record %llu: %s field %s (0x%llx) is not a "
                                     "string in the heap", e->name, (unsigned long long)r,
                                     kind_name(f->kind), f->name, (unsigned long long)ref);
                }
            }
        }
    }
    return 0;
}

/*
 * table.c -- typed tables: handles, records, creation, schema evolution.
 *
 * Layer 7: calls index.c (unique keys at append, verify), catalog.c, str.c,
 * alloc.c, schema.c, map.c and lock.c (handle checks). A table is a region of fixed-size records; its catalog
 * entry (catalog.c) names the region and describes the layout. Everything
 * here is ordinary transactional data: records in their region, catalog and
 * strings in the heap. Appends past a table's committed size are fresh space
 * (not journaled, synced at commit). It must never write a region file
 * directly except the fresh file of a migration, which no commit names yet.
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

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mms_table {
    mms_store *s;
    uint32_t idx;        /* catalog entry */
    uint32_t region;
    /* The generation of the region's file when the handle last found its
     * entry (tables_reindex), UINT32_MAX after an undo: a table renamed by
     * another handle is found by its region in that file. Not for a handle
     * whose table was gone before the transaction (another handle dropped
     * it): its region may hold a new table later, which is not this one.
     * gone_in_txn: the transaction lost the entry (a drop, or a create it
     * undid), so the undo may bring it back. */
    uint32_t rgen;
    bool gone_in_txn;
    char name[64];
    uint64_t schema_id; /* layout_id the schema below was built from */
    /* The layout the caller said it holds (pin_to): the layout_id its last
     * mms_table_open left, or UINT64_MAX after mms_table_find (the handle
     * follows the stored layout). Appends copy the stored record size from
     * the caller's record, so they refuse a table another handle migrated
     * since (pin_check). pin_prev is the pin before the write transaction
     * moved it (pin_moved): an undo puts it back (mms__tables_undo). */
    uint64_t pin, pin_prev;
    bool pin_moved;
    mms_schema schema;
    mms_field *fields;
    char (*names)[48];
    char (*targets)[64];
    /* s->tab_epoch when targets were named: a REF target's name changes
     * without its layout_id when another handle renames the target table. */
    uint64_t targets_epoch;
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

/* The table's catalog entry, or NULL when it is gone (dropped, or
 * created by a transaction that aborted): its region may be another
 * table's now. Hot: every get goes through it (ent), so it checks the
 * entry's index and region, not its name. */
MMS__OPEN_PATH
static inline struct mms__tabent *catalog_ent(const mms_table *t)
{
    struct mms__catalog *cat = mms__catalog(t->s);
    if (!cat || t->idx >= cat->ntables || cat->t[t->idx].region != t->region)
        return NULL;
    return &cat->t[t->idx];
}

/* The entry of a table this handle maps (NULL also while its region is
 * not mapped: a view behind the catalog). */
MMS__OPEN_PATH
static struct mms__tabent *ent(const mms_table *t)
{
    struct mms__tabent *e = catalog_ent(t);
    if (!e || t->region >= t->s->nmapped || !t->s->view.base[t->region])
        return NULL;
    return e;
}

static inline char *rec_at(const mms_table *t, const struct mms__tabent *e, uint64_t i)
{
    return t->s->view.base[t->region] + i * e->record_size;
}

/* ------------------------------------------------------------------------
 * Schema checks
 * ------------------------------------------------------------------------ */
static uint32_t target_region(mms_store *s, const char *table, uint32_t own_region,
                              const mms_field *f)
{
    if (f->kind != MMS_KIND_REF)
        return 0;
    if (strcmp(f->target, table) == 0)
        return own_region;
    int i = mms__catalog_find(s, f->target);
    return i < 0 ? 0 : mms__catalog(s)->t[i].region;
}

static const struct mms__fdesc *fdesc_named(const struct mms__fdesc *fd, uint32_t n,
                                            const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(fd[i].name, name) == 0)
            return &fd[i];
    return NULL;
}

/* Is field of table a REF that targets no table (its target was dropped,
 * mms__catalog_untarget)? */
static bool ref_targets_none(mms_store *s, const char *table, const char *field)
{
    int i = mms__catalog_find(s, table);
    if (i < 0)
        return false;
    const struct mms__tabent *e = &mms__catalog(s)->t[i];
    const struct mms__fdesc *fd = mms__fdescs(s, e);
    const struct mms__fdesc *o = fd ? fdesc_named(fd, e->nfields, field) : NULL;
    return o && o->kind == MMS_KIND_REF && o->target == 0;
}

/* The checks of schema.c, and every REF target exists (or is this table).
 * The target "" names no table: only a field that targets none already may
 * keep it, so that the layout mms_table_schema() gives (after a drop of
 * the target) opens the table and migrates it with the field. */
static int schema_check(mms_store *s, const char *table, const mms_schema *sc)
{
    int r = mms__schema_check(table, sc);
    if (r)
        return r;
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        if (f->kind != MMS_KIND_REF || strcmp(f->target, table) == 0)
            continue;
        if (!*f->target) {
            if (!ref_targets_none(s, table, f->name))
                return mms__fail(MMS_EINVAL, "table %s: ref field %s names no target table",
                                 table, f->name);
        } else if (mms__catalog_find(s, f->target) < 0) {
            return mms__fail(MMS_ENOENT, "table %s: ref field %s targets table %s, which "
                             "does not exist", table, f->name, f->target);
        }
    }
    return 0;
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

/* What a handle knows a table's layout by: its region and the region's
 * file generation. Creating a table and migrating one each write a new
 * file, of a generation that region never had, so the pair never comes
 * back for another layout in a committed state -- layout_gen does: a table
 * dropped and created again under its name by another handle is at 0
 * again (a handle kept the old table's schema, and appended through it). */
static uint64_t layout_id(const mms_store *s, const struct mms__tabent *e)
{
    return (uint64_t)e->region << 32 | mms__rtab(s)[e->region].gen;
}

/* Layouts may come back under the same layout_id with other fields (an
 * undo: its files' generations are used again, a drop, a rename): every
 * cached schema is rebuilt. */
void mms__tables_forget(mms_store *s)
{
    s->tab_epoch++;
    for (mms_table *t = s->tables; t; t = t->next)
        t->schema_id = UINT64_MAX;
}

/* A write transaction was undone: each handle's layout is the one it had
 * before (an aborted migration leaves the handle working in the old one). */
void mms__tables_undo(mms_store *s)
{
    mms__tables_forget(s);
    for (mms_table *t = s->tables; t; t = t->next) {
        if (t->pin_moved)
            t->pin = t->pin_prev;
        if (t->idx != UINT32_MAX || t->gone_in_txn)
            t->rgen = UINT32_MAX; /* an undone rename (and migration) is found back */
    }
}

/* A write transaction ended (committed or undone): its pins stay. */
void mms__tables_txn_end(mms_store *s)
{
    for (mms_table *t = s->tables; t; t = t->next)
        t->pin_moved = t->gone_in_txn = false;
}

/* The caller holds records of the layout id (UINT64_MAX: of whatever
 * layout the table has). */
static void pin_to(mms_table *t, uint64_t id)
{
    if (t->s->state == MMS__ST_WRITE && !t->pin_moved) {
        t->pin_prev = t->pin;
        t->pin_moved = true;
    }
    t->pin = id;
}

/* A record (or a key, a covered value) from the caller has the table's
 * layout: not one the table had when this handle was opened with it,
 * before another handle migrated it. */
int mms__table_pin_check(const mms_table *t, const struct mms__tabent *e)
{
    if (t->pin == UINT64_MAX || t->pin == layout_id(t->s, e))
        return 0;
    /* layout_id is the region's file: a migration writes a new one, and so
     * does a create that took the region of a table of that name dropped. */
    return mms__fail(MMS_ESCHEMA, "table %s is not the one this handle was opened with: "
                     "migrated (now %u bytes, %u fields), or dropped and created again, "
                     "since; open it again (mms_table_open), or follow the stored layout "
                     "(mms_table_find)", t->name, e->record_size, e->nfields);
}

static void tables_reindex(mms_store *s);

/* Make the mappings match the header (map.c), then give each table region
 * its record size (mms_rec() multiplies by it): the catalog may have changed
 * with the header, so every cached view is stale too, and so is where each
 * handle's entry is (a drop moves entries). */
MMS__OPEN_PATH
int mms__tables_follow(mms_store *s)
{
    s->tab_epoch++;
    int r = mms__map_follow(s);
    tables_reindex(s);
    for (uint32_t id = 1; id < s->nmapped; id++)
        s->view.unit[id] = 0;
    const struct mms__catalog *cat = mms__catalog(s);
    for (uint32_t i = 0; cat && i < cat->ntables; i++) {
        uint32_t id = cat->t[i].region;
        if (id < s->nmapped && s->view.base[id])
            s->view.unit[id] = cat->t[i].record_size;
    }
    return r;
}

void mms__tables_free(mms_store *s)
{
    for (mms_table *t = s->tables, *n; t; t = n) {
        n = t->next;
        table_free(t);
    }
    s->tables = NULL;
}

MMS__OPEN_PATH
static int handle_for(mms_store *s, int idx, mms_table **out)
{
    const struct mms__tabent *e = &mms__catalog(s)->t[idx];
    int r = mms__entry_check(s, e);
    if (r)
        return r;
    for (mms_table *t = s->tables; t; t = t->next)
        if (strcmp(t->name, e->name) == 0) {
            t->idx = (uint32_t)idx;
            t->region = e->region;
            t->rgen = mms__rtab(s)[e->region].gen;
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
    t->rgen = mms__rtab(s)[e->region].gen;
    /* Not snprintf: its first call in a process faults in two pages of the
     * C library's code (the first mms_table_find of a new process paid
     * for them). The name is terminated: mms__entry_check said so. */
    _Static_assert(sizeof t->name == sizeof e->name, "a table handle's name is an entry's");
    memcpy(t->name, e->name, sizeof t->name);
    t->schema_id = UINT64_MAX;
    t->view_epoch = UINT64_MAX;
    t->pin = t->pin_prev = UINT64_MAX;
    t->next = s->tables;
    s->tables = t;
    *out = t;
    return 0;
}

/* Name each REF field's target table as the catalog calls it now, in the
 * handle's own strings (the schema's pointers stay valid). */
static void targets_name(mms_table *t, const struct mms__tabent *e, char (*targets)[64])
{
    const struct mms__fdesc *fd = mms__fdescs(t->s, e);
    for (uint32_t i = 0; fd && i < e->nfields; i++)
        if (fd[i].kind == MMS_KIND_REF) {
            /* Target 0: its table was dropped; "" names no table. */
            const struct mms__tabent *te =
                fd[i].target ? mms__catalog_by_region(t->s, fd[i].target) : NULL;
            snprintf(targets[i], sizeof targets[i], "%s", te ? te->name : fd[i].target ? "?" : "");
        }
    t->targets_epoch = t->s->tab_epoch;
}

const mms_schema *mms_table_schema(mms_table *t)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    if (!e)
        return NULL;
    if (t->schema_id == layout_id(t->s, e) && t->fields) {
        if (t->targets_epoch != t->s->tab_epoch)
            targets_name(t, e, t->targets);
        return &t->schema;
    }
    mms_field *f = calloc(e->nfields, sizeof *f);
    char (*names)[48] = calloc(e->nfields, sizeof *names);
    char (*targets)[64] = calloc(e->nfields, sizeof *targets);
    if (!f || !names || !targets) {
        free(f);
        free(names);
        free(targets);
        return NULL;
    }
    const struct mms__fdesc *fd = mms__fdescs(t->s, e);
    if (!fd) {
        free(f);
        free(names);
        free(targets);
        mms__fail(MMS_ECORRUPT, "table %s: its field list is not in the heap", t->name);
        return NULL;
    }
    for (uint32_t i = 0; i < e->nfields; i++) {
        memcpy(names[i], fd[i].name, sizeof names[i]);
        names[i][47] = 0;
        f[i].name = names[i];
        f[i].kind = fd[i].kind;
        f[i].offset = fd[i].offset;
        f[i].size = fd[i].size;
        if (fd[i].kind == MMS_KIND_REF)
            f[i].target = targets[i];
    }
    targets_name(t, e, targets);
    free(t->fields);
    free(t->names);
    free(t->targets);
    t->fields = f;
    t->names = names;
    t->targets = targets;
    t->schema.record_size = e->record_size;
    t->schema.nfields = e->nfields;
    t->schema.fields = f;
    t->schema_id = layout_id(t->s, e);
    return &t->schema;
}

const char *mms_table_name(const mms_table *t)
{
    return t ? t->name : NULL;
}

/* ------------------------------------------------------------------------
 * Creating a table
 * ------------------------------------------------------------------------ */
static int table_create(mms_store *s, const char *name, const mms_schema *sc, mms_table **t)
{
    struct mms__hdr *h = mms__hdr(s);
    struct mms__rent *rt = mms__rtab(s);
    uint32_t id = 1;
    while (id < MMS_MAX_REGIONS && id < h->nregions && rt[id].kind != MMS__RK_NONE)
        id++;
    if (id >= MMS_MAX_REGIONS)
        return mms__fail(MMS_EFULL, "a store holds at most %u tables and indexes",
                         MMS_MAX_REGIONS - 1);
    /* Everything that can fail comes first, and is undone if a later step
     * fails; the header and the catalog change last, when nothing can: a
     * failed create leaves the transaction as it was. */
    uint32_t gen = id < h->nregions ? rt[id].gen + 1 : 0;
    int r = mms__region_new(s, id, gen, s->grow_step < ((uint64_t)64 << 10) ? s->grow_step : (64u << 10));
    if (r)
        return r;
    mms_ref fields;
    r = fdescs_new(s, name, id, sc, &fields);
    struct mms__tabent *e;
    int idx;
    if (!r) {
        r = mms__catalog_add(s, &e, &idx);
        if (r)
            mms__free(s, fields);
    }
    if (r) {
        mms__map_unmap_region(s, id);
        mms__region_unlink(s, id, gen);
        return r;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    e->region = (uint16_t)id;
    e->nfields = (uint16_t)sc->nfields;
    e->record_size = sc->record_size;
    e->fields = fields;
    mms__heap_lib_changed(s);
    rt[id].size = 0;
    rt[id].gen = gen;
    rt[id].kind = MMS__RK_TABLE;
    if (id >= h->nregions)
        h->nregions = id + 1;
    s->view.unit[id] = sc->record_size; /* mapped before its entry existed */
    return handle_for(s, idx, t);
}

static int migrate_nulls(mms_store *s, struct mms__tabent *e, const struct mms__fdesc *old,
                         uint32_t nold, const mms_schema *sc);

/* ------------------------------------------------------------------------
 * Migration (NOTES above): plan, write the new file, free what goes, switch.
 * ------------------------------------------------------------------------ */
/* One step per field of sc (schema.c converts); MMS_ESCHEMA, listing every
 * change that could lose data, if there is any. */
static int migrate_plan(mms_store *s, mms_table *t, const struct mms__tabent *e,
                        const mms_schema *sc, struct mms__fplan *plan)
{
    const struct mms__fdesc *old = mms__fdescs(s, e);
    char why[480];
    size_t wl = 0;
    why[0] = 0;
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        struct mms__fplan *p = &plan[i];
        p->dst_off = f->offset;
        p->dst_size = f->size;
        const struct mms__fdesc *o = fdesc_named(old, e->nfields, f->name);
        if (!o) {
            p->op = f->dflt ? MMS__CV_DEFAULT : MMS__CV_ZERO;
            p->dflt = f->dflt;
            continue;
        }
        p->src_off = o->offset;
        p->src_size = o->size;
        p->src_signed = mms_kind_class(o->kind) == 'i';
        p->op = mms__widen_op(o->kind, o->size, f->kind, f->size);
        if (p->op >= 0 && f->kind == MMS_KIND_REF &&
            o->target != target_region(s, t->name, t->region, f))
            p->op = -1;
        if (p->op < 0 && wl < sizeof why - 1) {
            /* Another target is the difference of two refs of one size. */
            const struct mms__tabent *ot = o->kind == MMS_KIND_REF
                                               ? mms__catalog_by_region(s, o->target) : NULL;
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "%s%s %s[%u]%s%s -> %s[%u]%s%s",
                                   wl ? "; " : "", f->name, mms__kind_label(o->kind), o->size,
                                   ot ? " to " : "", ot ? ot->name : "",
                                   mms__kind_label(f->kind), f->size,
                                   f->kind == MMS_KIND_REF ? " to " : "",
                                   f->kind == MMS_KIND_REF ? f->target : "");
        }
    }
    if (wl)
        return mms__fail(MMS_ESCHEMA, "table %s: changes that could lose data: %s", t->name, why);
    /* An index follows its field (rebuilt at the commit), unless the
     * field grew past what a key may be (only chars can, of the changes
     * above): then the index, and a unique one's rule, would go without a
     * word. */
    const struct mms__ixdesc *d = mms__ixdescs(s, e);
    for (uint32_t k = 0; d && k < e->nindexes; k++)
        for (uint32_t i = 0; i < sc->nfields; i++) {
            const mms_field *f = &sc->fields[i];
            if (strncmp(f->name, d[k].field, sizeof d[k].field) == 0 &&
                f->kind == MMS_KIND_CHARS && f->size > MMS__IX_MAX_KEY)
                return mms__fail(MMS_ESCHEMA, "table %s: field %s -> chars[%u] has an index, "
                                 "whose keys are at most %u bytes: drop the index first",
                                 t->name, f->name, f->size, MMS__IX_MAX_KEY);
        }
    return 0;
}

/* The live records, converted, into the new file fd (fresh space: nothing
 * else maps it, no commit names it). */
static int migrate_write(mms_store *s, mms_table *t, const struct mms__tabent *e,
                         const mms_schema *sc, const struct mms__fplan *plan, int fd)
{
    uint64_t newsize = e->count * sc->record_size;
    uint64_t fbytes = mms__round_up(newsize ? newsize : 1, (uint64_t)1 << 20);
    char *dst = NULL;
    int r = mms__os_map(fd, fbytes, true, &dst);
    if (r)
        return mms__fail(r, "table %s: cannot write its new layout: %s", t->name, mms_strerror(r));
    /* Fresh space may hold bytes of an earlier attempt. */
    memset(dst, 0, newsize);
    for (uint64_t i = 0; i < e->count; i++)
        if (mms__catalog_live(s, e, i))
            mms__convert(plan, sc->nfields, rec_at(t, e, i), dst + i * sc->record_size);
    mms__os_unmap(dst, fbytes);
    return 0;
}

/* Strings and blobs of removed fields go with them. */
static int migrate_free_removed(mms_store *s, mms_table *t, const struct mms__tabent *e,
                                const mms_schema *sc)
{
    const struct mms__fdesc *old = mms__fdescs(s, e);
    for (uint32_t k = 0; k < e->nfields; k++) {
        if (!mms__kind_owns_heap(old[k].kind))
            continue;
        bool kept = false;
        for (uint32_t i = 0; i < sc->nfields; i++)
            kept |= strcmp(sc->fields[i].name, old[k].name) == 0;
        for (uint64_t i = 0; !kept && i < e->count; i++) {
            mms_ref ref;
            memcpy(&ref, rec_at(t, e, i) + old[k].offset, 8);
            int r = ref && mms__catalog_live(s, e, i) ? mms__free(s, ref) : 0;
            if (r)
                return r;
        }
    }
    return 0;
}

static int table_migrate(mms_store *s, mms_table *t, const mms_schema *sc)
{
    struct mms__tabent *e = ent(t);
    uint32_t id = t->region;
    struct mms__fplan *plan = calloc(sc->nfields, sizeof *plan);
    if (!plan)
        return -ENOMEM;
    int r = migrate_plan(s, t, e, sc, plan);
    if (r) {
        free(plan);
        return r;
    }
    /* The records, in the new layout, in a new file of the region. */
    uint64_t newsize = e->count * sc->record_size;
    uint32_t gen = mms__rtab(s)[id].gen + 1;
    int fd;
    r = mms__region_create_file(s, id, gen, newsize, &fd);
    if (!r) {
        r = migrate_write(s, t, e, sc, plan, fd);
        if (!r)
            r = migrate_free_removed(s, t, e, sc);
        if (r) {
            mms__os_close(fd);
            mms__region_unlink(s, id, gen);
        }
    }
    free(plan);
    if (r)
        return r;
    /* The catalog and the region table switch in this transaction. */
    mms_ref fields;
    r = fdescs_new(s, t->name, id, sc, &fields);
    if (r) {
        mms__os_close(fd);
        return r;
    }
    e = ent(t);
    r = migrate_nulls(s, e, mms__fdescs(s, e), e->nfields, sc);
    if (r) {
        mms__free(s, fields);
        mms__os_close(fd);
        return r;
    }
    e = ent(t);
    mms__free(s, e->fields);
    e->fields = fields;
    mms__heap_lib_changed(s);
    e->record_size = sc->record_size;
    e->nfields = (uint16_t)sc->nfields;
    e->layout_gen++;
    struct mms__rent *rte = &mms__rtab(s)[id];
    rte->gen = gen;
    rte->size = newsize;
    /* Committed 0: the whole new file is fresh, synced at commit. */
    r = mms__map_replace(s, id, fd, gen, 0);
    if (!r)
        s->view.unit[id] = sc->record_size;
    return r;
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

int mms__table_open(mms_store *s, const char *name, const mms_schema *sc, unsigned flags,
                    mms_table **t)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (!t || (flags & ~MMS_TABLE_CREATE))
        return mms__fail(MMS_EINVAL, "mms_table_open: bad arguments");
    *t = NULL;
    struct mms__catalog *cat;
    if ((r = name_check(name)) || (r = schema_check(s, name, sc)) ||
        (r = mms__catalog_get(s, &cat)))
        return r;
    int idx = mms__catalog_find(s, name);
    if (idx < 0) {
        if (!(flags & MMS_TABLE_CREATE))
            return mms__fail(MMS_ENOENT, "no table called %s", name);
        if ((r = mms__check_write(s)) || (r = mms__name_check(name)) ||
            (r = mms__schema_names_check(name, sc, NULL)))
            return r;
        s->tab_epoch++;
        if ((r = table_create(s, name, sc, t)))
            return r;
        pin_to(*t, layout_id(s, ent(*t)));
        return 0;
    }
    struct mms__tabent *e = &mms__catalog(s)->t[idx];
    mms_table *h;
    if ((r = handle_for(s, idx, &h)))
        return r;
    const mms_schema *stored = mms_table_schema(h);
    if (!stored)
        return -ENOMEM;
    if (mms_schema_same(stored, sc, NULL, 0)) {
        pin_to(h, layout_id(s, e));
        *t = h;
        return 0;
    }
    if (s->state != MMS__ST_WRITE)
        return mms__fail(s->flags & MMS_RDONLY ? MMS_ESCHEMA : MMS_ENOTXN,
                         "table %s has another record layout (%u bytes, %u fields); %s", name,
                         e->record_size, e->nfields,
                         s->flags & MMS_RDONLY ? "a read-only handle cannot migrate it"
                                               : "migrating it needs a write transaction");
    if ((r = mms__schema_names_check(name, sc, stored)))
        return r;
    s->tab_epoch++;
    if ((r = table_migrate(s, h, sc)))
        return r;
    pin_to(h, layout_id(s, ent(h)));
    *t = h;
    return 0;
}

MMS__OPEN_PATH
int mms__table_find(mms_store *s, const char *name, mms_table **t)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    struct mms__catalog *cat;
    if (!t)
        return mms__fail(MMS_EINVAL, "mms_table_find: t is NULL");
    *t = NULL; /* as mms_table_open: a failure leaves no handle to go on with */
    if ((r = name_check(name)))
        return r;
    if ((r = mms__catalog_get(s, &cat)))
        return r;
    int idx = mms__catalog_find(s, name);
    if (idx < 0)
        return mms__fail(MMS_ENOENT, "no table called %s", name);
    if ((r = handle_for(s, idx, t)))
        return r;
    pin_to(*t, UINT64_MAX);
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

MMS__OPEN_PATH
void *mms_table_get(const mms_table *t, uint64_t i)
{
    if (t && t->view_epoch == t->s->tab_epoch)
        return i < t->view_slots ? t->view_base + i * t->view_rs : NULL;
    return get_slow(t, i);
}

int mms_table_live(const mms_table *t, uint64_t i)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    return e && mms__catalog_live(t->s, e, i);
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
    /* An index a ref's slot cannot hold is no record's: masked, it named
     * another record. So is a gone table's, mapped here or not. */
    if (!t || i > MMS_SLOT_MASK || !catalog_ent(t))
        return MMS_REF_NULL;
    return MMS_REF_MAKE(t->region, i);
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

mms_store *mms__table_store(const mms_table *t)
{
    return t->s;
}

struct mms__tabent *mms__table_entry(const mms_table *t)
{
    return ent(t);
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
        return mms__fail(MMS_ENOENT, "table %s is gone (dropped, or its creation was aborted)", t->name);
    return 0;
}

int mms__table_write_entry(mms_table *t, struct mms__tabent **e)
{
    return table_write_check(t, e);
}

/* ------------------------------------------------------------------------
 * The values a record may hold (issue 10, bugs 5 and 6). A REF field holds
 * 0 or a live record of its target table; a STR or BLOB field 0 or a string
 * of this store (str.c). Like a deferred foreign key in SQL, the rule holds
 * at commit: a transaction may append a record that refers to one it
 * appends later, and delete records that refer to each other; the commit
 * checks every record the transaction appended or changed, and that no live
 * record refers to a record it deleted (txn.c calls the two checks below) --
 * even if an append reused its slot: a ref left over from the deleted record
 * must not come to name another one unseen.
 * ------------------------------------------------------------------------ */
static int check_field(mms_store *s, const char *table, uint64_t index,
                       const struct mms__fdesc *f, const char *rec, bool now)
{
    if (f->kind != MMS_KIND_REF && !mms__kind_owns_heap(f->kind))
        return 0;
    mms_ref v;
    memcpy(&v, rec + f->offset, 8);
    if (!v)
        return 0;
    if (f->kind == MMS_KIND_REF) {
        const struct mms__tabent *te = mms__catalog_by_region(s, f->target);
        /* At an append, the right table (a forward ref is fine); at
         * commit, a live record. */
        bool ok = MMS_REF_REGION(v) == f->target && te &&
                  (!now || mms__catalog_live(s, te, MMS_REF_SLOT(v)));
        if (!ok)
            return mms__fail(MMS_EBADREF, "table %s record %llu: ref field %s (0x%llx) is not %s "
                             "record of table %s", table, (unsigned long long)index, f->name,
                             (unsigned long long)v, now ? "a live" : "a", te ? te->name : "?");
        return 0;
    }
    if (!mms__str_valid(s, v))
        return mms__fail(MMS_EBADREF, "table %s record %llu: %s field %s (0x%llx) is not a "
                         "string of this store", table, (unsigned long long)index,
                         mms__kind_label(f->kind), f->name, (unsigned long long)v);
    return 0;
}

/* Every REF, STR and BLOB field of record rec (record index), or, with
 * old, those whose bytes differ from old. now: refs must be live (commit). */
static int check_values(mms_store *s, const struct mms__tabent *e, uint64_t index,
                        const char *rec, const char *old, bool now)
{
    const struct mms__fdesc *fd = mms__fdescs(s, e);
    if (!fd)
        return MMS__CORRUPT("table %s: its field list is not in the heap", e->name);
    for (uint32_t k = 0; k < e->nfields; k++) {
        if (old && memcmp(rec + fd[k].offset, old + fd[k].offset, fd[k].size) == 0)
            continue;
        int r = check_field(s, e->name, index, &fd[k], rec, now);
        if (r)
            return r;
    }
    return 0;
}

bool mms__table_watched(const mms_store *s, const struct mms__tabent *e)
{
    if (e->nindexes)
        return true; /* its indexes follow its records */
    const struct mms__fdesc *fd = mms__fdescs(s, e);
    for (uint32_t k = 0; fd && k < e->nfields; k++)
        if (fd[k].kind == MMS_KIND_REF || mms__kind_owns_heap(fd[k].kind))
            return true;
    return false;
}

/* The strings and blobs a committed record let go (its STR or BLOB field
 * changed, or it was deleted): when the transaction freed them, no live
 * record need be looked for that still holds them (heapobj.c). */
static int strings_released(mms_store *s, const struct mms__tabent *e, const char *old,
                            const char *rec)
{
    const struct mms__fdesc *fd = mms__fdescs(s, e);
    for (uint32_t k = 0; fd && k < e->nfields; k++) {
        mms_ref was, now;
        if (!mms__kind_owns_heap(fd[k].kind) || (uint64_t)fd[k].offset + 8 > e->record_size)
            continue;
        memcpy(&was, old + fd[k].offset, 8);
        memcpy(&now, rec + fd[k].offset, 8);
        if (was != now && mms__refset_add(&s->txn_released, was))
            return mms__fail(-ENOMEM, "commit: out of memory");
    }
    return 0;
}

int mms__table_record_changed(mms_store *s, const struct mms__tabent *e, uint64_t index,
                              const char *old, const char *rec)
{
    mms__heap_holders_record(s, e, index, old, rec);
    int r = old && s->txn_freed.n ? strings_released(s, e, old, rec) : 0;
    if (r || !mms__catalog_live(s, e, index))
        return r; /* deleted in this transaction: nothing to check */
    return check_values(s, e, index, rec, old, true);
}

int mms__tables_check_deletes(mms_store *s)
{
    /* The root keeps mms_root_set's rule too: a heap root names the start
     * of a live allocation, whatever the transaction freed (one O(1)
     * look at the allocator's descriptors). */
    mms_ref root = mms__hdr(s)->root;
    uint64_t usable;
    if (root && !MMS_REF_REGION(root) && mms__alloc_usable(s, root, &usable) != 0)
        return mms__fail(MMS_EBADREF, "the root (0x%llx) names heap space the transaction "
                         "freed: set the root again (mms_root_set) before the commit",
                         (unsigned long long)root);
    if (!s->txn_deleted.n)
        return 0;
    const struct mms__catalog *cat = mms__catalog(s);
    if (root && MMS_REF_REGION(root) && mms__refset_has(&s->txn_deleted, root)) {
        const struct mms__tabent *te = mms__catalog_by_region(s, MMS_REF_REGION(root));
        return mms__fail(MMS_EREFERENCED, "the root refers to record %llu of table %s, which "
                         "the transaction deleted", (unsigned long long)MMS_REF_SLOT(root),
                         te ? te->name : "?");
    }
    for (uint32_t n = 0; cat && n < cat->ntables; n++) {
        const struct mms__tabent *e = &cat->t[n];
        const struct mms__fdesc *fd = mms__fdescs(s, e);
        const char *base = e->region < s->nmapped ? s->view.base[e->region] : NULL;
        for (uint32_t k = 0; fd && base && k < e->nfields; k++) {
            if (fd[k].kind != MMS_KIND_REF || !mms__refset_has_region(&s->txn_deleted,
                                                                      fd[k].target))
                continue;
            for (uint64_t i = 0; i < e->count; i++) {
                mms_ref v;
                memcpy(&v, base + i * e->record_size + fd[k].offset, 8);
                if (v && mms__refset_has(&s->txn_deleted, v) && mms__catalog_live(s, e, i)) {
                    const struct mms__tabent *te = mms__catalog_by_region(s, MMS_REF_REGION(v));
                    return mms__fail(MMS_EREFERENCED, "table %s record %llu (field %s) refers to "
                                     "record %llu of table %s, which the transaction deleted",
                                     e->name, (unsigned long long)i, fd[k].name,
                                     (unsigned long long)MMS_REF_SLOT(v), te ? te->name : "?");
                }
            }
        }
    }
    return 0;
}

int mms_table_append(mms_table *t, const void *rec, uint64_t *index)
{
    struct mms__tabent *e;
    int r = table_write_check(t, &e);
    if (r || (r = mms__table_pin_check(t, e)))
        return r;
    uint64_t i = e->count;
    bool reuse = false;
    if (e->live < e->count && e->tomb_bits) {
        /* The lowest deleted slot, from the hint. */
        const uint64_t *b = mms_deref(t->s, e->tomb);
        uint64_t words = (e->tomb_bits + 63) / 64;
        for (uint64_t k = 0; k < words && !reuse; k++) {
            uint64_t w = (e->free_hint + k) % words;
            if (b[w]) {
                i = w * 64 + (uint64_t)__builtin_ctzll(b[w]);
                reuse = true;
            }
        }
    }
    /* Checked before anything changes: a refused record leaves no trace. */
    if (rec && (r = check_values(t->s, e, i, rec, NULL, false)))
        return r;
    if (e->nindexes) {
        char *zeros = rec ? NULL : calloc(1, e->record_size);
        if (!rec && !zeros)
            return -ENOMEM;
        r = mms__ix_check_append(t->s, e, i, rec ? rec : zeros);
        free(zeros);
        if (r)
            return r;
        e = ent(t);
    }
    if (!reuse && (r = grow_to(t, e->count + 1)))
        return r;
    e = ent(t);
    if (reuse) {
        uint64_t *b = mms_deref(t->s, e->tomb);
        b[i / 64] &= ~(UINT64_C(1) << (i % 64));
        e->free_hint = i / 64;
    }
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
    if (r || (r = mms__table_pin_check(t, e)))
        return r;
    if (!first)
        return mms__fail(MMS_EINVAL, "mms_table_append_many: first is NULL");
    uint64_t i = e->count;
    if (n > MMS_SLOT_MASK - i) /* i + n would pass the slots, or wrap */
        return mms__fail(MMS_EFULL, "table %s cannot hold %llu more records", t->name,
                         (unsigned long long)n);
    if (n && (r = grow_to(t, i + n)))
        return r;
    e = ent(t);
    /* Fresh space may hold the bytes of an aborted transaction. */
    mms__map_fresh_huge(t->s, t->region, i * e->record_size, n * e->record_size);
    memset(rec_at(t, e, i), 0, n * e->record_size);
    e->live += n;
    *first = i;
    if (where)
        *where = rec_at(t, e, i);
    return 0;
}

/* ------------------------------------------------------------------------
 * Missing values (SQL NULL): per field, a bitmap in the heap like the
 * deleted-record bitmap. The entry's `nulls` names an array of one
 * (bitmap ref, bits) pair per field; slots at or past a field's bits are
 * not null, so tables that never had a missing value pay nothing.
 * ------------------------------------------------------------------------ */

static bool null_bit(mms_store *s, const struct mms__tabent *e, uint32_t k, uint64_t i)
{
    const struct mms__nullbits *nb = mms__nulls_of(s, e, k);
    if (!nb || !nb->bits || i >= nb->nbits)
        return false;
    const uint64_t *b = mms_deref(s, nb->bits);
    return b[i / 64] >> (i % 64) & 1;
}

/* Record i is deleted (or reused): none of its fields is missing. */
static void nulls_clear(mms_table *t, const struct mms__tabent *e, uint64_t i)
{
    for (uint32_t k = 0; e->nulls && k < e->nfields; k++) {
        struct mms__nullbits *nb = mms__nulls_of(t->s, e, k);
        if (nb && nb->bits && i < nb->nbits)
            ((uint64_t *)mms_deref(t->s, nb->bits))[i / 64] &= ~(UINT64_C(1) << (i % 64));
    }
}

/* Field k's bitmap, grown to cover slot i. */
static int nulls_grow(mms_table *t, uint32_t k, uint64_t i, struct mms__nullbits **out)
{
    struct mms__tabent *e = ent(t);
    int r;
    if (!e->nulls) {
        mms_ref a;
        if ((r = mms_zalloc(t->s, (size_t)e->nfields * sizeof(struct mms__nullbits), &a)))
            return r;
        e = ent(t);
        e->nulls = a;
        mms__heap_lib_changed(t->s);
    }
    struct mms__nullbits *nb = mms__nulls_of(t->s, e, k);
    if (!nb)
        return MMS__CORRUPT("table %s: its null bitmaps are damaged", t->name);
    if (i >= nb->nbits) {
        uint64_t bits = nb->nbits ? nb->nbits : 1024;
        while (bits <= i)
            bits *= 2;
        if (bits > mms__round_up(e->count, 64))
            bits = mms__round_up(e->count, 64);
        mms_ref m = nb->bits;
        uint64_t had = nb->nbits / 8;
        if ((r = mms__realloc(t->s, &m, bits / 8)))
            return r;
        e = ent(t);
        nb = mms__nulls_of(t->s, e, k);
        memset((char *)mms_deref(t->s, m) + had, 0, bits / 8 - had);
        nb->bits = m;
        nb->nbits = bits;
        mms__heap_lib_changed(t->s);
    }
    *out = nb;
    return 0;
}

/* A migration: each field of the new layout sc keeps the bitmap of the old
 * field of its name (a widened value is missing as it was); removed fields'
 * bitmaps are freed. */
static int migrate_nulls(mms_store *s, struct mms__tabent *e, const struct mms__fdesc *old,
                         uint32_t nold, const mms_schema *sc)
{
    if (!e->nulls)
        return 0;
    mms_ref a;
    int r = mms_zalloc(s, (size_t)sc->nfields * sizeof(struct mms__nullbits), &a);
    if (r)
        return r;
    struct mms__nullbits *to = mms_deref(s, a);
    for (uint32_t k = 0; k < nold; k++) {
        struct mms__nullbits *nb = mms__nulls_of(s, e, k);
        if (!nb || !nb->bits)
            continue;
        uint32_t j = 0;
        while (j < sc->nfields && strcmp(sc->fields[j].name, old[k].name) != 0)
            j++;
        if (j < sc->nfields)
            to[j] = *nb;
        else
            mms__free(s, nb->bits);
    }
    mms__free(s, e->nulls);
    e->nulls = a;
    mms__heap_lib_changed(s);
    return 0;
}

int mms_table_null_set(mms_table *t, uint64_t i, uint32_t field, int null)
{
    struct mms__tabent *e;
    int r = table_write_check(t, &e);
    if (r)
        return r;
    if (field >= e->nfields)
        return mms__fail(MMS_EINVAL, "table %s has %u fields; there is no field %u", t->name,
                         e->nfields, field);
    if (!mms__catalog_live(t->s, e, i))
        return mms__fail(MMS_ERANGE, "table %s has no live record %llu", t->name,
                         (unsigned long long)i);
    /* A missing key has no entry in the field's index: the commit makes
     * it so, or gives the key its entry again. */
    if ((r = mms__ix_note_mark(t->s, e, i, field)))
        return r;
    if (!null) {
        struct mms__nullbits *nb = mms__nulls_of(t->s, e, field);
        if (nb && nb->bits && i < nb->nbits)
            ((uint64_t *)mms_deref(t->s, nb->bits))[i / 64] &= ~(UINT64_C(1) << (i % 64));
        return 0;
    }
    /* A missing value has no value: the field's bytes are zeroed, and a
     * string or blob it owned is freed. */
    const struct mms__fdesc *f = mms__fdescs(t->s, e) + field;
    char *p = rec_at(t, e, i) + f->offset;
    if (mms__kind_owns_heap(f->kind)) {
        mms_ref ref;
        memcpy(&ref, p, 8);
        if (ref && mms__str_valid(t->s, ref) && (r = mms__free(t->s, ref)))
            return r;
    }
    struct mms__nullbits *nb = NULL;
    if ((r = nulls_grow(t, field, i, &nb)))
        return r;
    e = ent(t);
    memset(rec_at(t, e, i) + f->offset, 0, f->size);
    ((uint64_t *)mms_deref(t->s, nb->bits))[i / 64] |= UINT64_C(1) << (i % 64);
    return 0;
}

int mms_table_null(const mms_table *t, uint64_t i, uint32_t field)
{
    if (!t)
        return mms__fail(MMS_EINVAL, "table is NULL");
    const struct mms__tabent *e = ent(t);
    if (!e)
        return mms__fail(MMS_ENOENT, "table %s is gone (dropped, or its creation was aborted)",
                         t->name);
    if (field >= e->nfields)
        return mms__fail(MMS_EINVAL, "table %s has %u fields; there is no field %u", t->name,
                         e->nfields, field);
    return mms__catalog_live(t->s, e, i) && null_bit(t->s, e, field, i);
}

const uint64_t *mms_table_nulls(const mms_table *t, uint32_t field, uint64_t *nbits)
{
    const struct mms__tabent *e = t ? ent(t) : NULL;
    const struct mms__nullbits *nb = e ? mms__nulls_of(t->s, e, field) : NULL;
    if (nbits)
        *nbits = nb && nb->bits ? nb->nbits : 0;
    return nb && nb->bits ? mms_deref(t->s, nb->bits) : NULL;
}

int mms_table_delete(mms_table *t, uint64_t i)
{
    struct mms__tabent *e;
    int r = table_write_check(t, &e);
    if (r)
        return r;
    if (!mms__catalog_live(t->s, e, i))
        return mms__fail(MMS_ERANGE, "table %s has no live record %llu", t->name,
                         (unsigned long long)i);
    if ((r = mms__refset_add(&t->s->txn_deleted, MMS_REF_MAKE(t->region, i))))
        return r;
    if (i >= e->tomb_bits) {
        uint64_t bits = e->tomb_bits ? e->tomb_bits : 1024;
        while (bits <= i)
            bits *= 2;
        if (bits > e->count)
            bits = mms__round_up(e->count, 64);
        mms_ref tomb = e->tomb;
        uint64_t had = (e->tomb_bits + 63) / 64 * 8;
        r = mms__realloc(t->s, &tomb, bits / 8);
        if (r)
            return r;
        e = ent(t);
        memset((char *)mms_deref(t->s, tomb) + had, 0, bits / 8 - had);
        e->tomb = tomb;
        e->tomb_bits = bits;
        mms__heap_lib_changed(t->s);
    }
    char *p = rec_at(t, e, i);
    const struct mms__fdesc *fd = mms__fdescs(t->s, e);
    for (uint32_t k = 0; fd && k < e->nfields; k++)
        if (mms__kind_owns_heap(fd[k].kind)) {
            /* A value that is not a string of this store (a plain store put
             * it there; the commit refused it, or verify reports it) is not
             * freed: it is not the record's to free. */
            mms_ref ref;
            memcpy(&ref, p + fd[k].offset, 8);
            if (ref && mms__str_valid(t->s, ref) && (r = mms__free(t->s, ref)))
                return r;
        }
    nulls_clear(t, e, i);
    memset(p, 0, e->record_size);
    uint64_t *b = mms_deref(t->s, e->tomb);
    b[i / 64] |= UINT64_C(1) << (i % 64);
    if (i / 64 < e->free_hint)
        e->free_hint = i / 64;
    e->live--;
    return 0;
}

/* ------------------------------------------------------------------------
 * Verification: catalog, each table's region and bitmap, and every live
 * record's refs, strings and blobs.
 * ------------------------------------------------------------------------ */
#define VFAIL(...) (snprintf(msg, cap, __VA_ARGS__), MMS_ECORRUPT)

static int verify_root(const mms_store *s, char *msg, size_t cap);

/* Every live record's refs (to live records of the right table), strings
 * and blobs (inside the heap), after the catalog itself checks out. */
int mms__tables_verify(mms_store *s, char *msg, size_t cap)
{
    int rc = mms__catalog_verify(s, msg, cap);
    const struct mms__catalog *cat = mms__catalog(s);
    if (rc || !cat)
        return rc;
    /* Every index region is named by one index of one table. */
    uint8_t named[MMS_MAX_REGIONS] = {0};
    for (uint32_t i = 0; i < cat->ntables; i++) {
        const struct mms__tabent *e = &cat->t[i];
        if ((rc = mms__ix_verify(s, e, msg, cap)))
            return rc;
        const struct mms__ixdesc *d = mms__ixdescs(s, e);
        for (uint32_t k = 0; d && k < e->nindexes; k++)
            if (named[d[k].region]++)
                return VFAIL("region %u is the index of two fields", d[k].region);
    }
    const struct mms__rent *rt = mms__rtab(s);
    for (uint32_t id = 1; id < mms__hdr(s)->nregions; id++)
        if (rt[id].kind == MMS__RK_INDEX && !named[id])
            return VFAIL("region %u is an index region that no index names", id);
    for (uint32_t i = 0; i < cat->ntables; i++) {
        const struct mms__tabent *e = &cat->t[i];
        const struct mms__fdesc *fd = mms_deref(s, e->fields);
        const char *base = s->view.base[e->region];
        for (uint32_t k = 0; k < e->nfields; k++) {
            const struct mms__fdesc *f = &fd[k];
            if (f->kind != MMS_KIND_REF && !mms__kind_owns_heap(f->kind))
                continue;
            const struct mms__tabent *te =
                f->kind == MMS_KIND_REF ? mms__catalog_by_region(s, f->target) : NULL;
            for (uint64_t r = 0; r < e->count; r++) {
                if (!mms__catalog_live(s, e, r))
                    continue;
                mms_ref ref;
                memcpy(&ref, base + r * e->record_size + f->offset, 8);
                if (!ref)
                    continue;
                if (f->kind == MMS_KIND_REF) {
                    if (!f->target)
                        return VFAIL("table %s record %llu: ref field %s (0x%llx) points into a "
                                     "table that was dropped: a dangling ref (clear the field, "
                                     "or migrate %s without it)", e->name, (unsigned long long)r,
                                     f->name, (unsigned long long)ref, e->name);
                    if (MMS_REF_REGION(ref) != f->target || !te ||
                        !mms__catalog_live(s, te, MMS_REF_SLOT(ref)))
                        return VFAIL("table %s record %llu: ref field %s (0x%llx) is not a "
                                     "live record of table %s", e->name, (unsigned long long)r,
                                     f->name, (unsigned long long)ref, te ? te->name : "?");
                } else {
                    if (!mms__str_valid(s, ref))
                        return VFAIL("table %s record %llu: %s field %s (0x%llx) is not a "
                                     "string in the heap", e->name, (unsigned long long)r,
                                     mms__kind_label(f->kind), f->name, (unsigned long long)ref);
                }
            }
        }
    }
    return verify_root(s, msg, cap);
}

/* ------------------------------------------------------------------------
 * A store's life: dropping, renaming and trimming tables (compact.c).
 *
 * A handle names its table by name and region: after a drop moved the
 * catalog's entries, it finds its entry again by that pair; after a
 * rename (committed by another handle, or aborted here) by its region
 * alone, and takes the entry's name. A handle whose region no table has
 * is gone -- its calls fail as those of a table whose creation was
 * aborted.
 * ------------------------------------------------------------------------ */
MMS__OPEN_PATH
static void tables_reindex(mms_store *s)
{
    const struct mms__catalog *cat = mms__catalog(s);
    const struct mms__rent *rt = mms__rtab(s);
    uint32_t nregions = mms__hdr(s)->nregions;
    for (mms_table *t = s->tables; t; t = t->next) {
        const struct mms__tabent *e = cat && t->idx < cat->ntables ? &cat->t[t->idx] : NULL;
        uint32_t gen = t->region < nregions ? rt[t->region].gen : UINT32_MAX - 1;
        if (e && e->region == t->region && strcmp(e->name, t->name) == 0) {
            t->rgen = gen; /* a migration's new file */
            continue;
        }
        /* Only this handle's own transaction changes the catalog while it
         * is in one (it holds the writer lock). */
        if (t->idx != UINT32_MAX && s->state == MMS__ST_WRITE)
            t->gone_in_txn = true;
        t->idx = UINT32_MAX;
        for (uint32_t i = 0; cat && i < cat->ntables; i++)
            if (cat->t[i].region == t->region && strcmp(cat->t[i].name, t->name) == 0)
                t->idx = i;
        /* Not by name: renamed (by another handle, or a rename of this one
         * was aborted). A table's region is its own while it lives, and a
         * rename keeps its file; another table in the region (the table was
         * dropped and the region taken by a create, which writes a file of
         * a new generation) is not this one: the handle's table is gone. */
        for (uint32_t i = 0; cat && t->idx == UINT32_MAX && i < cat->ntables; i++)
            if (cat->t[i].region == t->region && (t->rgen == UINT32_MAX || t->rgen == gen)) {
                t->idx = i;
                snprintf(t->name, sizeof t->name, "%s", cat->t[i].name);
            }
        if (t->idx != UINT32_MAX)
            t->rgen = gen;
        t->view_epoch = UINT64_MAX;
    }
}

/* The strings and blobs the live records of e own, and what the entry
 * itself owns in the heap. A ref that is not a string (damage mms_verify
 * reports) is left alone rather than freed. */
static int table_free_heap(mms_store *s, const struct mms__tabent *e)
{
    const struct mms__fdesc *fd = mms__fdescs(s, e);
    const char *base = s->view.base[e->region];
    for (uint32_t k = 0; fd && k < e->nfields; k++) {
        if (!mms__kind_owns_heap(fd[k].kind))
            continue;
        for (uint64_t i = 0; i < e->count; i++) {
            mms_ref ref;
            memcpy(&ref, base + i * e->record_size + fd[k].offset, 8);
            int r = ref && mms__catalog_live(s, e, i) && mms__str_valid(s, ref)
                        ? mms__free(s, ref) : 0;
            if (r)
                return r;
        }
    }
    /* Each field's (bitmap ref, bits) pair: the bitmap is the first word. */
    for (uint32_t k = 0; e->nulls && k < e->nfields; k++) {
        const struct mms__nullbits *nb = mms__nulls_of(s, e, k);
        int r = nb && nb->bits ? mms__free(s, nb->bits) : 0;
        if (r)
            return r;
    }
    int r = mms__free(s, e->nulls);
    if (!r)
        r = mms__free(s, e->tomb);
    if (!r)
        r = mms__free(s, e->fields);
    return r;
}

/* The delete rule for a whole table (main's mms__tables_check_deletes
 * for every record of it at once): no live record of another table and
 * not the root may refer into e's region. Its own records may. The cost is
 * a scan of the REF fields aimed at it. */
static int drop_check_refs(mms_store *s, const struct mms__tabent *d)
{
    const struct mms__catalog *cat = mms__catalog(s);
    mms_ref root = mms__hdr(s)->root;
    if (root && MMS_REF_REGION(root) == d->region)
        return mms__fail(MMS_EREFERENCED, "the root refers to record %llu of table %s",
                         (unsigned long long)MMS_REF_SLOT(root), d->name);
    for (uint32_t n = 0; cat && n < cat->ntables; n++) {
        const struct mms__tabent *e = &cat->t[n];
        if (e->region == d->region)
            continue;
        const struct mms__fdesc *fd = mms__fdescs(s, e);
        const char *base = e->region < s->nmapped ? s->view.base[e->region] : NULL;
        for (uint32_t k = 0; fd && base && k < e->nfields; k++) {
            if (fd[k].kind != MMS_KIND_REF || fd[k].target != d->region)
                continue;
            for (uint64_t i = 0; i < e->count; i++) {
                mms_ref v;
                memcpy(&v, base + i * e->record_size + fd[k].offset, 8);
                if (v && MMS_REF_REGION(v) == d->region && mms__catalog_live(s, e, i))
                    return mms__fail(MMS_EREFERENCED,
                                     "table %s record %llu (field %s) refers to record %llu of "
                                     "table %s: clear the refs before dropping it",
                                     e->name, (unsigned long long)i, fd[k].name,
                                     (unsigned long long)MMS_REF_SLOT(v), d->name);
            }
        }
    }
    return 0;
}

int mms_table_drop(mms_store *s, const char *name)
{
    int r = mms__check_write(s);
    if (r || (r = name_check(name)))
        return r;
    int idx = mms__catalog_find(s, name);
    if (idx < 0)
        return mms__fail(MMS_ENOENT, "no table called %s", name);
    struct mms__tabent *e = &mms__catalog(s)->t[idx];
    uint32_t id = e->region;
    /* The delete rule (mmstore.h): nothing live outside the table may
     * still refer into it. Checked first, so a refusal changes nothing. */
    if ((r = drop_check_refs(s, e)))
        return r;
    s->tab_epoch++;
    /* Then everything else that can fail: a failed drop leaves the
     * transaction's tables as they were, save strings freed (which an
     * abort brings back). */
    if ((r = table_free_heap(s, e)))
        return r;
    /* Its indexes go with it, the last first (nothing moves); their
     * regions are freed as the table's is below. */
    while (e->nindexes)
        if ((r = mms__ix_drop(s, e, e->nindexes - 1)))
            return r;
    mms__catalog_untarget(s, id);
    mms__catalog_remove(s, idx);
    /* The region is free for another table, in a new file generation; its
     * file is deleted after the next checkpoint, like a migrated table's
     * old one (map.c, mms__region_gc). */
    mms__region_release(s, id);
    mms__tables_forget(s);
    tables_reindex(s);
    return 0;
}

int mms_table_rename(mms_store *s, const char *from, const char *to)
{
    int r = mms__check_write(s);
    if (r || (r = name_check(from)) || (r = mms__name_check(to)))
        return r;
    int idx = mms__catalog_find(s, from);
    if (idx < 0)
        return mms__fail(MMS_ENOENT, "no table called %s", from);
    if (strcmp(from, to) == 0)
        return 0;
    if (mms__catalog_find(s, to) >= 0)
        return mms__fail(-EEXIST, "there is a table called %s already", to);
    struct mms__tabent *e = &mms__catalog(s)->t[idx];
    s->tab_epoch++;
    snprintf(e->name, sizeof e->name, "%s", to);
    /* This handle's table handles follow the name; a handle of the new name
     * left by a dropped table of that name is gone. */
    for (mms_table *t = s->tables; t; t = t->next)
        if (t->region == e->region && strcmp(t->name, from) == 0)
            snprintf(t->name, sizeof t->name, "%s", to);
    mms__tables_forget(s);
    tables_reindex(s);
    return 0;
}

/* The deleted slots at the end of each table leave it: its array gets
 * shorter, the indices of its records do not change (deleted slots hold
 * zeros: the region's bytes past the new end are zeros too). */
int mms__tables_trim(mms_store *s, uint64_t *slots)
{
    struct mms__catalog *cat = mms__catalog(s);
    *slots = 0;
    for (uint32_t i = 0; cat && i < cat->ntables; i++) {
        struct mms__tabent *e = &cat->t[i];
        if (e->live == e->count || e->count > e->tomb_bits)
            continue; /* nothing deleted, or the last slot is live */
        uint64_t *b = mms_deref(s, e->tomb), n = e->count;
        while (n > 0) {
            uint64_t w = (n - 1) / 64, below = n - w * 64; /* bits of word w under n */
            uint64_t mask = below == 64 ? ~UINT64_C(0) : (UINT64_C(1) << below) - 1;
            if ((b[w] & mask) == mask) { /* all deleted: clear them, go on */
                b[w] &= ~mask;
                n = w * 64;
                continue;
            }
            while (b[w] >> ((n - 1) % 64) & 1) {
                b[w] &= ~(UINT64_C(1) << ((n - 1) % 64));
                n--;
            }
            break;
        }
        if (n == e->count)
            continue;
        *slots += e->count - n;
        s->tab_epoch++;
        e->count = n;
        mms__rtab(s)[e->region].size = n * e->record_size;
    }
    return 0;
}

/* The root names a heap object (the start of a live allocation), or a
 * record of a table: then a live one. */
static int verify_root(const mms_store *s, char *msg, size_t cap)
{
    mms_ref root = mms__hdr(s)->root;
    uint32_t id = MMS_REF_REGION(root);
    uint64_t usable;
    if (root && id == 0 && mms__alloc_usable(s, root, &usable) != 0)
        return VFAIL("the root (0x%llx) is not the start of a live heap allocation: a "
                     "dangling ref", (unsigned long long)root);
    if (!root || id == 0)
        return 0;
    const struct mms__tabent *e = mms__catalog_by_region(s, id);
    if (!e)
        return VFAIL("the root (0x%llx) points into region %u, which is no table (was it "
                     "dropped?): a dangling ref", (unsigned long long)root, id);
    if (!mms__catalog_live(s, e, MMS_REF_SLOT(root)))
        return VFAIL("the root (0x%llx) is record %llu of table %s, which is not a live record",
                     (unsigned long long)root, (unsigned long long)MMS_REF_SLOT(root), e->name);
    return 0;
}

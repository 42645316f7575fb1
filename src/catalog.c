/*
 * catalog.c -- the catalog: which tables a store has, where their records
 * are and how they are laid out.
 *
 * Layer 5: calls alloc.c (the catalog is a heap object) and schema.c. The
 * catalog is ordinary transactional data: a heap object the store header
 * points to (hdr->catalog), an array of entries (struct mms__tabent), each
 * naming a table, its region, its record layout (an array of field
 * descriptors in the heap), its counts and its deleted-record bitmap
 * (doc/FORMAT.md). This file finds, adds and checks entries; what a table
 * does with its entry is table.c's. It must never touch a region's records
 * or its file.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Bytes [off, off + len) of the heap exist in this view. */
static bool heap_has(const mms_store *s, uint64_t off, uint64_t len)
{
    uint64_t top = mms__rtab(s)[0].size;
    if (top > s->reg[0].mapped)
        top = s->reg[0].mapped;
    return off >= MMS__HDR_BYTES && off <= top && len <= top - off;
}

MMS__OPEN_PATH
bool mms__heap_range(const mms_store *s, mms_ref ref, uint64_t len, uint64_t align)
{
    return MMS_REF_REGION(ref) == 0 && MMS_REF_SLOT(ref) % align == 0 &&
           heap_has(s, MMS_REF_SLOT(ref), len);
}

MMS__OPEN_PATH
int mms__catalog_get(const mms_store *s, struct mms__catalog **out)
{
    mms_ref c = mms__hdr(s)->catalog;
    *out = NULL;
    if (!c)
        return 0;
    /* Nothing read from the store is trusted (DESIGN §5): a catalog that
     * does not check out is damage, reported, never read past. */
    if (!mms__heap_range(s, c, sizeof(struct mms__catalog), 16))
        return MMS__CORRUPT("the catalog ref 0x%llx is not a place in the heap",
                            (unsigned long long)c);
    struct mms__catalog *cat = mms_deref(s, c);
    if (cat->magic != MMS__CAT_MAGIC)
        return MMS__CORRUPT("the catalog at 0x%llx has a bad magic", (unsigned long long)c);
    if (cat->ntables > cat->cap || cat->cap > MMS_MAX_REGIONS ||
        !mms__heap_range(s, c, sizeof *cat + (uint64_t)cat->cap * sizeof cat->t[0], 16))
        return MMS__CORRUPT("the catalog holds %u tables in room for %u, past the heap",
                            cat->ntables, cat->cap);
    *out = cat;
    return 0;
}

MMS__OPEN_PATH
struct mms__catalog *mms__catalog(const mms_store *s)
{
    struct mms__catalog *cat;
    return mms__catalog_get(s, &cat) == 0 ? cat : NULL;
}

MMS__OPEN_PATH
int mms__entry_check(const mms_store *s, const struct mms__tabent *e)
{
    const struct mms__hdr *h = mms__hdr(s);
    const struct mms__rent *rt = mms__rtab(s);
    uint32_t id = e->region;
    if (memchr(e->name, 0, sizeof e->name) == NULL)
        return MMS__CORRUPT("a catalog entry's name is not terminated");
    if (id == 0 || id >= h->nregions || id >= MMS_MAX_REGIONS || rt[id].kind != MMS__RK_TABLE)
        return MMS__CORRUPT("table %s: region %u is not a table region of this store", e->name,
                            id);
    if (id >= s->nmapped || !s->view.base[id])
        return MMS__CORRUPT("table %s: region %u is not mapped", e->name, id);
    if (e->record_size == 0 || e->record_size > MMS__MAX_RECORD || e->nfields == 0 ||
        e->nfields > MMS__MAX_FIELDS)
        return MMS__CORRUPT("table %s: record size %u, %u fields", e->name, e->record_size,
                            e->nfields);
    if (e->count > MMS_SLOT_MASK || e->count * e->record_size != rt[id].size ||
        e->live > e->count)
        return MMS__CORRUPT("table %s: %llu records of %u bytes in a region of %llu", e->name,
                            (unsigned long long)e->count, e->record_size,
                            (unsigned long long)rt[id].size);
    if (!mms__heap_range(s, e->fields, (uint64_t)e->nfields * sizeof(struct mms__fdesc), 8))
        return MMS__CORRUPT("table %s: its field list 0x%llx is not in the heap", e->name,
                            (unsigned long long)e->fields);
    if (e->tomb_bits && (e->tomb_bits % 64 || !mms__heap_range(s, e->tomb, e->tomb_bits / 8, 8)))
        return MMS__CORRUPT("table %s: its deleted-record bitmap is not in the heap", e->name);
    if (e->nulls && !mms__heap_range(s, e->nulls, (uint64_t)e->nfields * 16, 8))
        return MMS__CORRUPT("table %s: its null bitmaps are not in the heap", e->name);
    return 0;
}

MMS__OPEN_PATH
int mms__catalog_find(const mms_store *s, const char *name)
{
    struct mms__catalog *cat = mms__catalog(s);
    for (uint32_t i = 0; cat && i < cat->ntables; i++)
        if (strncmp(cat->t[i].name, name, sizeof cat->t[i].name) == 0)
            return (int)i;
    return -1;
}

/* The table of a region. The catalog is searched only when the entry
 * where the region's table was last found holds another region: a search
 * at each call made a commit of a store with 500 tables, which looks up
 * each region's table, 14% slower by itself, and a delete cost a search
 * (bench/tables_cost.c). Tables have a region each, so an entry that
 * holds the region is the table's. */
struct mms__tabent *mms__catalog_by_region(const mms_store *s, uint32_t region)
{
    struct mms__catalog *cat = mms__catalog(s);
    if (!cat)
        return NULL;
    if (s->cat_at && region < MMS_MAX_REGIONS) {
        uint32_t i = __atomic_load_n(&s->cat_at[region], __ATOMIC_RELAXED);
        if (i < cat->ntables && cat->t[i].region == region)
            return &cat->t[i];
    }
    for (uint32_t i = 0; i < cat->ntables; i++)
        if (cat->t[i].region == region) {
            if (s->cat_at && region < MMS_MAX_REGIONS) /* threads store the same */
                __atomic_store_n(&s->cat_at[region], (uint16_t)i, __ATOMIC_RELAXED);
            return &cat->t[i];
        }
    return NULL;
}

struct mms__fdesc *mms__fdescs(const mms_store *s, const struct mms__tabent *e)
{
    if (!mms__heap_range(s, e->fields, (uint64_t)e->nfields * sizeof(struct mms__fdesc), 8))
        return NULL;
    return mms_deref(s, e->fields);
}

const struct mms__fdesc *mms__fdesc_named(const mms_store *s, const struct mms__tabent *e,
                                          const char *name)
{
    const struct mms__fdesc *fd = mms__fdescs(s, e);
    for (uint32_t k = 0; fd && k < e->nfields; k++)
        if (strncmp(fd[k].name, name, sizeof fd[k].name) == 0)
            return &fd[k];
    return NULL;
}

bool mms__catalog_live(const mms_store *s, const struct mms__tabent *e, uint64_t i)
{
    if (i >= e->count)
        return false;
    if (i >= e->tomb_bits)
        return true;
    if (e->tomb_bits % 64 || !mms__heap_range(s, e->tomb, e->tomb_bits / 8, 8))
        return false; /* a damaged bitmap (mms_verify says so) */
    const uint64_t *b = mms_deref(s, e->tomb);
    return !(b[i / 64] >> (i % 64) & 1);
}

int mms__catalog_add(mms_store *s, struct mms__tabent **out, int *idx)
{
    struct mms__hdr *h = mms__hdr(s);
    struct mms__catalog *cat = mms__catalog(s);
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
        mms__heap_lib_changed(s);
    } else if (cat->ntables == cat->cap) {
        mms_ref c = h->catalog;
        uint32_t cap = cat->cap * 2;
        r = mms__realloc(s, &c, sizeof *cat + cap * sizeof cat->t[0]);
        if (r)
            return r;
        h->catalog = c;
        mms__heap_lib_changed(s);
        cat = mms_deref(s, c);
        memset(&cat->t[cat->cap], 0, (cap - cat->cap) * sizeof cat->t[0]);
        cat->cap = cap;
    }
    *idx = (int)cat->ntables++;
    *out = &cat->t[*idx];
    memset(*out, 0, sizeof **out);
    return 0;
}

int mms__tables_list(mms_store *s, mms_table_info *out, size_t cap, size_t *n)
{
    if (!s || !n || (cap && !out))
        return mms__fail(MMS_EINVAL, "mms_tables: NULL argument");
    struct mms__catalog *cat;
    int r = mms__catalog_get(s, &cat);
    if (r)
        return r;
    uint32_t k = cat ? cat->ntables : 0;
    for (uint32_t i = 0; i < k; i++)
        if ((r = mms__entry_check(s, &cat->t[i])))
            return r;
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
 * Verification of the catalog itself: the entries, their regions, field
 * lists and bitmaps (table.c then checks the records).
 * ------------------------------------------------------------------------ */
#define VFAIL(...) (snprintf(msg, cap, __VA_ARGS__), MMS_ECORRUPT)

static int check_heap_object(const mms_store *s, mms_ref ref, uint64_t need)
{
    size_t usable;
    if (mms_alloc_size(s, ref, &usable) != 0)
        return -1;
    return usable >= need ? 0 : -1;
}

/* Its bitmap: no slot past the end deleted, and the live count agrees. */
static int verify_bitmap(const mms_store *s, const struct mms__tabent *e, char *msg, size_t cap)
{
    if (e->tomb_bits &&
        (e->tomb_bits % 64 || check_heap_object(s, e->tomb, e->tomb_bits / 8) != 0))
        return VFAIL("table %s: its deleted-record bitmap is damaged", e->name);
    uint64_t dead = 0;
    const uint64_t *b = e->tomb_bits ? mms_deref(s, e->tomb) : NULL;
    for (uint64_t w = 0; w < e->tomb_bits / 64; w++) {
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
    return 0;
}

/* Its null bitmaps: in the heap, no bit past the end or on a deleted slot. */
static int verify_nulls(const mms_store *s, const struct mms__tabent *e, char *msg, size_t cap)
{
    if (!e->nulls)
        return 0;
    if (check_heap_object(s, e->nulls, (uint64_t)e->nfields * sizeof(struct mms__nullbits)) != 0)
        return VFAIL("table %s: its null bitmap list is not a live heap object", e->name);
    const struct mms__nullbits *nb = mms_deref(s, e->nulls);
    for (uint32_t k = 0; k < e->nfields; k++) {
        if (!nb[k].bits)
            continue;
        if (nb[k].nbits % 64 || check_heap_object(s, nb[k].bits, nb[k].nbits / 8) != 0)
            return VFAIL("table %s: the null bitmap of field %u is damaged", e->name, k);
        const uint64_t *b = mms_deref(s, nb[k].bits);
        for (uint64_t i = 0; i < nb[k].nbits; i++)
            if (b[i / 64] >> (i % 64) & 1 && !mms__catalog_live(s, e, i))
                return VFAIL("table %s: field %u of record %llu, %s, is marked missing",
                             e->name, k, (unsigned long long)i,
                             i < e->count ? "a deleted slot" : "past the end");
    }
    return 0;
}

static int verify_fields(const mms_store *s, const struct mms__tabent *e, char *msg, size_t cap)
{
    const struct mms__hdr *h = mms__hdr(s);
    const struct mms__rent *rt = mms__rtab(s);
    if (check_heap_object(s, e->fields, e->nfields * sizeof(struct mms__fdesc)) != 0)
        return VFAIL("table %s: its field list is not a live heap object", e->name);
    const struct mms__fdesc *fd = mms_deref(s, e->fields);
    for (uint32_t k = 0; k < e->nfields; k++) {
        const struct mms__fdesc *f = &fd[k];
        uint32_t ks = mms_kind_size(f->kind);
        if (memchr(f->name, 0, sizeof f->name) == NULL || !f->name[0] ||
            !mms_kind_name(f->kind) || (ks && f->size != ks) || f->size == 0 ||
            f->offset > e->record_size || f->size > e->record_size - f->offset)
            return VFAIL("table %s: field %u is damaged", e->name, k);
        /* Target 0: the table it pointed into was dropped (mms_table_drop);
         * table.c reports the refs the field still holds. */
        if (f->kind == MMS_KIND_REF && f->target != 0 &&
            (f->target >= h->nregions || rt[f->target].kind != MMS__RK_TABLE))
            return VFAIL("table %s: ref field %s targets region %u, not a table", e->name,
                         f->name, f->target);
    }
    return 0;
}

static int verify_entry(const mms_store *s, const struct mms__catalog *cat, uint32_t i,
                        uint32_t *tables_of_region, char *msg, size_t cap)
{
    const struct mms__hdr *h = mms__hdr(s);
    const struct mms__rent *rt = mms__rtab(s);
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
        return VFAIL("table %s: record size %u, %u fields", e->name, e->record_size, e->nfields);
    if (rt[id].size != e->count * e->record_size)
        return VFAIL("table %s: region %u holds %llu bytes, %llu records of %u need %llu",
                     e->name, id, (unsigned long long)rt[id].size, (unsigned long long)e->count,
                     e->record_size, (unsigned long long)(e->count * e->record_size));
    if (s->reg[id].gen != rt[id].gen || s->reg[id].mapped < rt[id].size)
        return VFAIL("table %s: region %u is not mapped as the header says", e->name, id);
    int r = verify_fields(s, e, msg, cap);
    if (!r)
        r = verify_bitmap(s, e, msg, cap);
    return r ? r : verify_nulls(s, e, msg, cap);
}

int mms__catalog_verify(const mms_store *s, char *msg, size_t cap)
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
    struct mms__catalog *cat;
    if (mms__catalog_get(s, &cat) != 0)
        return VFAIL("%s", mms_errdetail());
    if (cat->ntables > cat->cap ||
        check_heap_object(s, h->catalog, sizeof *cat + cat->cap * sizeof cat->t[0]) != 0)
        return VFAIL("catalog: %u tables in room for %u, past its allocation", cat->ntables,
                     cat->cap);
    uint32_t tables_of_region[MMS_MAX_REGIONS] = {0};
    for (uint32_t i = 0; i < cat->ntables; i++) {
        int r = verify_entry(s, cat, i, tables_of_region, msg, cap);
        if (r)
            return r;
    }
    for (uint32_t id = 1; id < h->nregions; id++)
        if (rt[id].kind == MMS__RK_TABLE && !tables_of_region[id])
            return VFAIL("region %u is a table region that no catalog entry names", id);
    return 0;
}

/* ------------------------------------------------------------------------
 * Dropping a table (table.c): its entry leaves the catalog, and ref fields
 * that pointed into its region point into nothing (target 0).
 * ------------------------------------------------------------------------ */
void mms__catalog_remove(mms_store *s, int idx)
{
    struct mms__catalog *cat = mms__catalog(s);
    assert(cat && idx >= 0 && (uint32_t)idx < cat->ntables);
    memmove(&cat->t[idx], &cat->t[idx + 1], (cat->ntables - (uint32_t)idx - 1) * sizeof cat->t[0]);
    cat->ntables--;
    memset(&cat->t[cat->ntables], 0, sizeof cat->t[0]);
    mms__heap_lib_changed(s);
}

uint32_t mms__catalog_untarget(mms_store *s, uint32_t region)
{
    struct mms__catalog *cat = mms__catalog(s);
    uint32_t n = 0;
    for (uint32_t i = 0; cat && i < cat->ntables; i++) {
        struct mms__tabent *e = &cat->t[i];
        struct mms__fdesc *fd = mms__fdescs(s, e);
        bool changed = false;
        for (uint32_t k = 0; fd && k < e->nfields; k++)
            if (fd[k].kind == MMS_KIND_REF && fd[k].target == region) {
                fd[k].target = 0;
                changed = true;
                n++;
            }
        /* Its layout changed: handles rebuild their copies of it. */
        if (changed)
            e->layout_gen++;
    }
    return n;
}

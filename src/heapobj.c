/*
 * heapobj.c -- the application's heap objects, for a whole-store dump and
 * its load (mms_heap_objects, mms_heap_place); and, at commit, what the
 * transaction freed: not the library's own objects, not a string a live
 * record holds (mms__heap_owned_check).
 *
 * Layer 6: calls catalog.c, str.c (through the catalog's field kinds),
 * alloc.c, held.c (a page's committed bytes) and refset.c. The heap holds
 * three kinds of allocations: the library's own (the catalog and what each
 * table keeps in the heap), the strings and blobs that STR and BLOB fields
 * of live records own, and the application's (mms_alloc, mms_pmalloc,
 * mms_str_new not stored in a field). A dump writes the first kind as
 * schemas and the second inline in the records; the third is opaque bytes
 * that may hold refs, which cannot be found in them, so a load puts each
 * object back at its own offset: then every ref inside one stays valid.
 * This file tells the third kind from the others, and places them. It
 * must never change a heap that is not in a write transaction, nor place
 * anything but at the offset asked.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The 8 bytes of field k of each record: fd[k] is a heap object the
 * application can damage, so its offset is checked before every record is
 * read there. */
static int field_words(const struct mms__tabent *e, const struct mms__fdesc *fd, uint32_t k)
{
    if (e->record_size < 8 || fd[k].offset > e->record_size - 8)
        return MMS__CORRUPT("table %s: field %u (offset %u) is past its %u-byte record", e->name,
                            k, fd[k].offset, e->record_size);
    return 0;
}

/* Every heap allocation the catalog and the records own, into *own; with
 * hc, the record fields that hold a string or blob another field holds too
 * counted there (mms_heap_check.shared). */
static int owned_refs(const mms_store *s, struct mms__refset *own, mms_heap_check *hc)
{
    struct mms__catalog *cat;
    int r = mms__catalog_get(s, &cat);
    if (r || !cat)
        return r;
    if ((r = mms__refset_add(own, mms__hdr(s)->catalog)))
        return r;
    for (uint32_t t = 0; t < cat->ntables; t++) {
        const struct mms__tabent *e = &cat->t[t];
        if ((r = mms__entry_check(s, e)))
            return r;
        const struct mms__fdesc *fd = mms__fdescs(s, e);
        if (!fd)
            return MMS__CORRUPT("table %s: its field descriptors are damaged", e->name);
        if ((r = mms__refset_add(own, e->fields)) || (r = mms__refset_add(own, e->tomb)) ||
            (r = mms__refset_add(own, e->indexes)) || (r = mms__refset_add(own, e->nulls)))
            return r;
        if (e->nulls) {
            if (!mms__heap_range(s, e->nulls, (uint64_t)e->nfields * 16, 8))
                return MMS__CORRUPT("table %s: its null bitmaps are not in the heap", e->name);
            const struct mms__nullbits *nb = mms_deref(s, e->nulls);
            for (uint32_t k = 0; k < e->nfields; k++)
                if ((r = mms__refset_add(own, nb[k].bits)))
                    return r;
        }
        const char *base = s->view.base[e->region];
        for (uint32_t k = 0; k < e->nfields; k++) {
            if (!mms__kind_owns_heap(fd[k].kind))
                continue;
            if ((r = field_words(e, fd, k)))
                return r;
            for (uint64_t i = 0; i < e->count; i++) {
                if (!mms__catalog_live(s, e, i))
                    continue;
                mms_ref v;
                memcpy(&v, base + i * e->record_size + fd[k].offset, 8);
                if (hc && v && mms__refset_has(own, v) && !hc->shared++)
                    hc->first_shared = v;
                if ((r = mms__refset_add(own, v)))
                    return r;
            }
        }
    }
    return 0;
}

struct collect {
    const mms_store *s;
    const struct mms__refset *own;
    mms_heap_obj *v;
    size_t n, cap;
};

static int collect_one(void *ctx, uint64_t off, uint64_t usable)
{
    struct collect *c = ctx;
    mms_ref ref = MMS_REF_MAKE(0, off);
    if (mms__refset_has(c->own, ref))
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        mms_heap_obj *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    mms_heap_obj *o = &c->v[c->n++];
    o->ref = ref;
    o->size = usable;
    return mms__heap_slab_of(c->s, ref, &o->slab);
}

/* The application's heap objects into c (heap order); hc as owned_refs. */
static int app_objects(const mms_store *s, struct collect *c, mms_heap_check *hc)
{
    struct mms__refset own = {0};
    char msg[256];
    int r = mms__heap_verify(s, msg, sizeof msg);
    if (r)
        r = MMS__CORRUPT("heap: %s", msg);
    if (!r)
        r = owned_refs(s, &own, hc);
    c->own = &own;
    if (!r)
        r = mms__heap_each(s, collect_one, c);
    c->own = NULL;
    mms__refset_free(&own);
    return r == -ENOMEM ? mms__fail(r, "the heap's objects: out of memory") : r;
}

int mms_heap_objects(mms_store *s, mms_heap_obj **objs, size_t *n)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (!objs || !n)
        return mms__fail(MMS_EINVAL, "mms_heap_objects: objs or n is NULL");
    *objs = NULL;
    *n = 0;
    struct collect c = {s, NULL, NULL, 0, 0};
    if ((r = app_objects(s, &c, NULL))) {
        free(c.v);
        return r;
    }
    *objs = c.v;
    *n = c.n;
    return 0;
}

int mms_heap_place(mms_store *s, const mms_heap_obj *o)
{
    int r = mms__check_write(s);
    if (r)
        return r;
    if (!o)
        return mms__fail(MMS_EINVAL, "mms_heap_place: the object is NULL");
    if (MMS_REF_REGION(o->ref) != 0)
        return mms__fail(MMS_EINVAL, "mms_heap_place: ref 0x%llx is in region %u, not the heap",
                         (unsigned long long)o->ref, MMS_REF_REGION(o->ref));
    return mms__heap_place(s, MMS_REF_SLOT(o->ref), o->size, o->slab);
}

int mms_heap_place_str(mms_store *s, const mms_heap_obj *o, const void *bytes, size_t len)
{
    if (!o || (len && !bytes))
        return mms__fail(MMS_EINVAL, "mms_heap_place_str: %s is NULL", o ? "bytes" : "the object");
    if (len > o->size || o->size - len < 9)
        return mms__fail(MMS_EINVAL, "mms_heap_place_str: %zu bytes of string (and 9 of its "
                         "header) do not fit %llu", len, (unsigned long long)o->size);
    int r = mms_heap_place(s, o);
    if (r)
        return r;
    char *p = mms_deref(s, o->ref);
    mms__str_write(p, bytes, len);
    memset(p + 9 + len, 0, o->size - 9 - len);
    return 0;
}

/* ------------------------------------------------------------------------
 * The library's own objects at commit. mms_free accepts any live
 * allocation, and the catalog and what each table keeps in the heap are
 * live allocations too: a wrong ref (a stale one whose space the catalog
 * now holds) frees one. The commit refuses to keep that, as it refuses a
 * freed root (table.c), so a committed state never lacks them.
 * ------------------------------------------------------------------------ */
static int owned_live(mms_store *s, mms_ref ref, const char *table, const char *what)
{
    uint64_t usable;
    int r = ref ? mms__alloc_usable(s, ref, &usable) : 0;
    if (r == MMS_EBADREF)
        return mms__fail(MMS_EBADREF, "the transaction freed heap object 0x%llx, %s%s%s: the "
                         "library's own (a wrong ref given to mms_free?)",
                         (unsigned long long)ref, table ? "table " : "", table ? table : "",
                         what);
    return r;
}

/* ------------------------------------------------------------------------
 * The strings of live records at commit. A record's STR or BLOB field owns
 * its string. The commit checks each field the transaction changed
 * (table.c), but a string freed while its record does not change -- by
 * mms_free, mms_realloc moving it, mms_pfree -- is on no changed record.
 * So, of what the transaction freed: an object whose committed bytes are
 * a string (only those can a committed record hold), that no record the
 * transaction changed or deleted let go (txn_released), and that is not a
 * string now, may be held still; only then is every STR and BLOB field of
 * every live record read, and one that holds a ref the transaction freed
 * that is no longer a string fails the commit. A field holding such a ref
 * while a string is there again (freed, and mms_str_new made the next
 * string in its place) cannot be told from a record given that new
 * string: it passes.
 * ------------------------------------------------------------------------ */
static bool committed_string(mms_store *s, mms_ref ref)
{
    uint64_t off = MMS_REF_SLOT(ref), pg = off & ~(uint64_t)(MMS__PAGE - 1);
    if (MMS_REF_REGION(ref) != 0 || off % 8 || off + 8 > s->reg[0].committed)
        return false;
    return mms__str_tagged(mms__page_base(s, s->view.base[0] + pg, 0) + (off - pg));
}

/* A bit of a word for each ref the transaction freed (bit (ref / 16) %
 * 64: heap objects are 16-byte aligned), so the scan passes over most
 * fields without a look into txn_freed; 0 if none may be held. */
static uint64_t may_be_held(mms_store *s)
{
    uint64_t bits = 0;
    bool any = false;
    for (size_t i = 0; i < s->txn_freed.cap; i++) {
        mms_ref ref = s->txn_freed.v[i];
        if (!ref)
            continue;
        bits |= UINT64_C(1) << (ref >> 4 & 63);
        any = any || (!mms__refset_has(&s->txn_released, ref) && committed_string(s, ref) &&
                      !mms__str_valid(s, ref));
    }
    return any ? bits : 0;
}

static int records_hold_freed(mms_store *s)
{
    uint64_t bits = may_be_held(s);
    if (!bits)
        return 0;
    const struct mms__catalog *cat = mms__catalog(s);
    for (uint32_t t = 0; cat && t < cat->ntables; t++) {
        const struct mms__tabent *e = &cat->t[t];
        const struct mms__fdesc *fd = mms__fdescs(s, e);
        if (!fd)
            return MMS__CORRUPT("table %s: its field descriptors are damaged", e->name);
        const char *base = s->view.base[e->region];
        for (uint32_t k = 0; k < e->nfields; k++) {
            if (!mms__kind_owns_heap(fd[k].kind))
                continue;
            int r = field_words(e, fd, k);
            if (r)
                return r;
            for (uint64_t i = 0; i < e->count; i++) {
                mms_ref v;
                memcpy(&v, base + i * e->record_size + fd[k].offset, 8);
                if (v && (bits >> (v >> 4 & 63) & 1) && mms__refset_has(&s->txn_freed, v) &&
                    mms__catalog_live(s, e, i) && !mms__str_valid(s, v))
                    return mms__fail(MMS_EBADREF, "table %s record %llu: %s field %s (0x%llx) "
                                     "holds a string the transaction freed (mms_free, "
                                     "mms_realloc or mms_pfree of a string a live record "
                                     "owns): let it go through the record -- mms_str_set, "
                                     "mms_table_null_set, mms_table_delete", e->name,
                                     (unsigned long long)i, mms__kind_label(fd[k].kind),
                                     fd[k].name, (unsigned long long)v);
            }
        }
    }
    return 0;
}

int mms__heap_owned_check(mms_store *s)
{
    if (!s->txn_freed.n)
        return 0;
    int r = owned_live(s, mms__hdr(s)->catalog, NULL, "the catalog");
    struct mms__catalog *cat = NULL;
    if (!r)
        r = mms__catalog_get(s, &cat);
    for (uint32_t t = 0; !r && cat && t < cat->ntables; t++) {
        const struct mms__tabent *e = &cat->t[t];
        if ((r = mms__entry_check(s, e)) ||
            (r = owned_live(s, e->fields, e->name, "'s field list")) ||
            (r = owned_live(s, e->tomb, e->name, "'s deleted-record bitmap")) ||
            (r = owned_live(s, e->indexes, e->name, "'s index list")) ||
            (r = owned_live(s, e->nulls, e->name, "'s null bitmap list")))
            break;
        const struct mms__nullbits *nb = e->nulls ? mms_deref(s, e->nulls) : NULL;
        for (uint32_t k = 0; nb && !r && k < e->nfields; k++)
            r = owned_live(s, nb[k].bits, e->name, "'s null bitmap");
    }
    return r ? r : records_hold_freed(s);
}

/* ------------------------------------------------------------------------
 * Reachability (mms_verify_heap): which of the application's objects
 * nothing refers to.
 *
 * The walk is conservative, as a garbage collector's scan of a C stack: the
 * roots are the header's root and every i64/u64 field of every live record;
 * an object is reached when a root or a word (8 bytes, aligned) of a reached
 * object names a byte of it, as a heap ref (region 0: the offset itself) or
 * as a pointer (the heap's recorded fixed base, or this handle's mapping,
 * plus the offset). A word that only looks like a ref keeps an object
 * reached (no false leak), and nothing else can: a ref kept anywhere else
 * (a chars field, inside a string or blob, a file) is not seen.
 * ------------------------------------------------------------------------ */
struct reach {
    const mms_store *s;
    const mms_heap_obj *v; /* the application's objects, in heap order */
    size_t n;
    uint8_t *seen;
    size_t *stack, depth;
    uint64_t base[2]; /* pointer bases: fixed (0: none) and this handle's */
};

/* The object holding heap offset off, or n. */
static size_t obj_at(const struct reach *w, uint64_t off)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (MMS_REF_SLOT(w->v[mid].ref) <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || off - MMS_REF_SLOT(w->v[lo - 1].ref) >= w->v[lo - 1].size)
        return w->n;
    return lo - 1;
}

static void reach_one(struct reach *w, uint64_t off)
{
    size_t i = obj_at(w, off);
    if (i < w->n && !w->seen[i]) {
        w->seen[i] = 1;
        w->stack[w->depth++] = i;
    }
}

static void reach_word(struct reach *w, uint64_t word)
{
    uint64_t top = mms__rtab(w->s)[0].size;
    if (word && MMS_REF_REGION(word) == 0 && word < top)
        reach_one(w, word);
    for (int k = 0; k < 2; k++)
        if (w->base[k] && word >= w->base[k] && word - w->base[k] < top)
            reach_one(w, word - w->base[k]);
}

/* The roots: the header's root and the i64/u64 fields of live records. */
static int reach_roots(struct reach *w)
{
    const mms_store *s = w->s;
    reach_word(w, mms__hdr(s)->root);
    struct mms__catalog *cat = mms__catalog(s);
    for (uint32_t t = 0; cat && t < cat->ntables; t++) {
        const struct mms__tabent *e = &cat->t[t];
        const struct mms__fdesc *fd = mms__fdescs(s, e);
        const char *base = s->view.base[e->region];
        for (uint32_t k = 0; fd && k < e->nfields; k++) {
            if (fd[k].kind != MMS_KIND_I64 && fd[k].kind != MMS_KIND_U64)
                continue;
            int r = field_words(e, fd, k);
            if (r)
                return r;
            for (uint64_t i = 0; i < e->count; i++) {
                uint64_t v;
                memcpy(&v, base + i * e->record_size + fd[k].offset, 8);
                if (v && mms__catalog_live(s, e, i))
                    reach_word(w, v);
            }
        }
    }
    return 0;
}

int mms__heap_reach(const mms_store *s, mms_heap_check *hc)
{
    memset(hc, 0, sizeof *hc);
    struct collect c = {s, NULL, NULL, 0, 0};
    int r = app_objects(s, &c, hc);
    struct reach w = {s, c.v, c.n, NULL, NULL, 0,
                      {s->fixed.base, (uintptr_t)s->view.base[0]}};
    hc->objects = c.n;
    if (!r && c.n) {
        w.seen = calloc(c.n, 1);
        w.stack = malloc(c.n * sizeof *w.stack);
        if (!w.seen || !w.stack)
            r = mms__fail(-ENOMEM, "mms_verify_heap: out of memory");
    }
    if (!r && c.n)
        r = reach_roots(&w);
    if (!r && c.n) {
        while (w.depth) {
            const mms_heap_obj *o = &w.v[w.stack[--w.depth]];
            const char *p = mms_deref(s, o->ref);
            for (uint64_t at = 0; at + 8 <= o->size; at += 8) {
                uint64_t word;
                memcpy(&word, p + at, 8);
                reach_word(&w, word);
            }
        }
        for (size_t i = 0; i < c.n; i++)
            if (!w.seen[i]) {
                if (!hc->unreachable++)
                    hc->first_unreachable = c.v[i].ref;
                hc->unreachable_bytes += c.v[i].size;
            }
    }
    free(w.seen);
    free(w.stack);
    free(c.v);
    return r;
}

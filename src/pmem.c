/*
 * pmem.c -- the pointer API: malloc-shaped allocation in the heap, the
 * root as a pointer, and the conservative scan for pointers that point
 * nowhere valid (mms_verify_pointers).
 *
 * Layer 11, above store.c: calls store.c (refs, the root, the verify
 * frame), catalog.c, alloc.c, lock.c and error.c; nothing calls it. It
 * holds no state and no protocol of its own: a pointer becomes a heap ref
 * (in a fixed-mode handle that subtracts the recorded base) and the ref
 * API does the work, in the same transaction and with the same allocator;
 * the error a NULL cannot carry is kept for mms_last_error(). Fixed-address
 * mode itself lives in map.c (the reservations) and store.c (the layout a
 * new store records); nothing here depends on it, so these functions work
 * in every handle.
 *
 * The scan reads every word of every live allocation. So that a word the
 * program never wrote does not look like a stale pointer, the allocation
 * functions here zero the slack of what they return: the bytes past the
 * size asked for, up to the usable size or, for allocations with more than
 * a page of slack (huge ones), up to the end of the page of the last byte
 * asked for. That costs a memset on a page the caller is about to write.
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void *fail_null(int err)
{
    mms__note_error(err);
    return NULL;
}

/* The heap ref of a pointer into s's heap (the handle checked), or
 * MMS_EBADREF. */
static int heap_ref(const mms_store *s, const void *p, mms_ref *ref)
{
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)s->view.base[0];
    if (a < base || a - base >= s->reg[0].mapped)
        return mms__fail(MMS_EBADREF, "pointer %p is not in the store's heap", p);
    *ref = MMS_REF_MAKE(0, a - base);
    return 0;
}

/* The slack of the allocation at ref, of usable bytes (see the top of
 * the file), zeroed; then its pointer. */
static void *zero_slack(mms_store *s, mms_ref ref, uint64_t size, uint64_t usable)
{
    char *p = mms_deref(s, ref);
    uint64_t end = usable;
    if (usable - size >= MMS__PAGE)
        end = mms__round_up((uintptr_t)p + size, MMS__PAGE) - (uintptr_t)p;
    if (end > size)
        memset(p + size, 0, end - size);
    return p;
}

void *mms_pmalloc(mms_store *s, size_t size)
{
    mms_ref r;
    int e = mms_alloc(s, size, &r);
    return e ? fail_null(e) : zero_slack(s, r, size, mms__alloc_fit(size));
}

void *mms_pcalloc(mms_store *s, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return fail_null(mms__fail(MMS_EINVAL, "mms_pcalloc: %zu * %zu bytes overflows", n, size));
    mms_ref r;
    int e = mms_zalloc(s, n * size, &r);
    return e ? fail_null(e) : zero_slack(s, r, n * size, mms__alloc_fit(n * size));
}

void *mms_prealloc(mms_store *s, void *p, size_t size)
{
    if (!p)
        return mms_pmalloc(s, size);
    mms_ref r = MMS_REF_NULL;
    int e = mms__check_write(s);
    if (!e && size == 0)
        e = mms__fail(MMS_EINVAL, "mms_prealloc: size 0 (use mms_pfree)");
    if (!e)
        e = heap_ref(s, p, &r);
    if (!e)
        e = mms_realloc(s, &r, size);
    uint64_t usable = 0;
    if (!e) /* kept in place, the block may be larger than a new one would be */
        e = mms__alloc_usable(s, r, &usable);
    return e ? fail_null(e) : zero_slack(s, r, size, usable);
}

void mms_pfree(mms_store *s, void *p)
{
    mms_ref r = MMS_REF_NULL;
    if (!p)
        return;
    int e = mms__check_write(s);
    if (!e)
        e = heap_ref(s, p, &r);
    if (!e)
        e = mms_free(s, r);
    if (e)
        mms__note_error(e);
}

void *mms_root_ptr(const mms_store *s)
{
    mms_ref r = mms_root(s);
    return r ? mms_rec(s, r) : NULL;
}

int mms_root_ptr_set(mms_store *s, const void *p)
{
    mms_ref r = MMS_REF_NULL;
    int e = mms__check_write(s);
    if (!e && p)
        e = mms_ref_of(s, p, &r); /* a record's pointer gives its index */
    if (!e)
        e = mms_root_set(s, r);
    return e ? mms__note_error(e) : 0;
}

/* ------------------------------------------------------------------------
 * The pointer scan (mmstore.h, mms_verify_pointers: what it checks and
 * what it cannot).
 *
 * The store's address range is where its regions are, or would be: in a
 * store with recorded addresses, the fixed layout from base to the end of
 * the last region's range -- whatever handle runs the scan, since that is
 * where the pointers it holds were made; otherwise, the ranges this
 * handle's mappings reserve. A word in that range is taken for a pointer
 * and must land inside a live allocation (or just past its end) or a live
 * table record (or just past the last).
 * ------------------------------------------------------------------------ */
struct scan {
    mms_store *s;
    const struct mms__fixed *f; /* the recorded layout, or NULL: this handle's */
    uint32_t n;                 /* regions */
    uint64_t lo, hi;            /* the range that holds them all */
    uint64_t words, allocs, found;
    char *msg;
    size_t cap;
};

/* Region id's range: recorded, or reserved by this handle (len 0: none). */
static void region_range(const struct scan *sc, uint32_t id, uint64_t *lo, uint64_t *len)
{
    const mms_store *s = sc->s;
    *lo = *len = 0;
    if (sc->f) {
        *lo = mms__fixed_addr(sc->f, id);
        *len = mms__fixed_len(sc->f, id);
    } else if (id < s->nmapped && s->view.base[id]) {
        *lo = (uintptr_t)s->view.base[id];
        *len = s->reg[id].reserve;
    }
}

/* Is w in the range of a region? Then which, and where in it. */
static bool word_region(const struct scan *sc, uint64_t w, uint32_t *id, uint64_t *off)
{
    if (w < sc->lo || w >= sc->hi)
        return false;
    if (sc->f) { /* regions end to end: arithmetic */
        uint64_t rel = w - sc->f->base;
        *id = rel < sc->f->heap ? 0 : 1 + (uint32_t)((rel - sc->f->heap) / sc->f->table);
        *off = w - mms__fixed_addr(sc->f, *id);
        return true;
    }
    for (uint32_t k = 0; k < sc->n; k++) {
        uint64_t lo, len;
        region_range(sc, k, &lo, &len);
        if (w >= lo && w - lo < len) {
            *id = k;
            *off = w - lo;
            return true;
        }
    }
    return false;
}

/* Where a pointer to offset off of the heap lands: NULL if inside a live
 * allocation or just past its end, else what is there. */
static int heap_target(const mms_store *s, uint64_t off, const char **bad)
{
    uint64_t start, usable;
    int r = mms__heap_find(s, off, &start, &usable, bad);
    if (r == 0 && off > 0) {
        const char *ignored;
        int r2 = mms__heap_find(s, off - 1, &start, &usable, &ignored);
        if (r2 < 0)
            return r2;
        r = r2 == 1 && start + usable == off;
    }
    if (r == 1)
        *bad = NULL;
    return r < 0 ? r : 0;
}

/* The same for a pointer into table region id. */
static const char *table_target(const mms_store *s, uint32_t id, uint64_t off)
{
    const struct mms__rent *rt = mms__rtab(s);
    if (rt[id].kind != MMS__RK_TABLE)
        return "the range of a region that does not exist";
    if (off > rt[id].size)
        return "a table's range, past its records";
    const struct mms__tabent *e = mms__catalog_by_region(s, id);
    if (off < rt[id].size && e && e->record_size &&
        !mms__catalog_live(s, e, off / e->record_size))
        return "a deleted table record";
    return NULL;
}

/* Is word w a pointer into the store (counted), and then where does it
 * land: *bad NULL if somewhere valid, else what is there. */
static int scan_word(struct scan *sc, uint64_t w, const char **bad)
{
    uint32_t id;
    uint64_t off;
    *bad = NULL;
    if (!word_region(sc, w, &id, &off))
        return 0;
    sc->words++;
    if (id)
        *bad = table_target(sc->s, id, off);
    return id ? 0 : heap_target(sc->s, off, bad);
}

static int scan_alloc(void *ctx, uint64_t off, uint64_t usable)
{
    struct scan *sc = ctx;
    const uint64_t *w = (const uint64_t *)(const void *)(sc->s->view.base[0] + off);
    sc->allocs++;
    for (uint64_t i = 0; i < usable / 8; i++) {
        if (w[i] - sc->lo >= sc->hi - sc->lo) /* the common case: not in the range */
            continue;
        const char *bad;
        int r = scan_word(sc, w[i], &bad);
        if (r)
            return r;
        if (bad && sc->found++ == 0)
            snprintf(sc->msg, sc->cap, "the word at heap ref 0x%llx holds 0x%llx, which points "
                     "into %s", (unsigned long long)(off + 8 * i), (unsigned long long)w[i], bad);
    }
    return 0;
}

/* The root is a ref: checked as the pointer it stands for. */
static int scan_root(struct scan *sc)
{
    mms_ref root = mms_root(sc->s);
    uint32_t id = MMS_REF_REGION(root);
    uint64_t lo, len, unit = 1;
    if (!root || id >= sc->n)
        return 0;
    if (id) {
        const struct mms__tabent *e = mms__catalog_by_region(sc->s, id);
        unit = e ? e->record_size : 0;
    }
    region_range(sc, id, &lo, &len);
    const char *bad = NULL;
    int r = len ? scan_word(sc, lo + MMS_REF_SLOT(root) * unit, &bad) : 0;
    if (bad && sc->found++ == 0)
        snprintf(sc->msg, sc->cap, "the root, ref 0x%llx, points into %s",
                 (unsigned long long)root, bad);
    return r;
}

static int scan_pinned(mms_store *s, void *ctx)
{
    struct scan *sc = ctx;
    const struct mms__hdr *h = mms__hdr(s);
    int r = mms__heap_verify(s, sc->msg, sc->cap);
    if (r)
        return mms__fail(r, "%s", sc->msg);
    sc->s = s;
    sc->f = h->fixed.base ? &h->fixed : NULL;
    sc->n = h->nregions < MMS_MAX_REGIONS ? h->nregions : MMS_MAX_REGIONS;
    sc->lo = UINT64_MAX;
    for (uint32_t id = 0; id < sc->n; id++) {
        uint64_t lo, len;
        region_range(sc, id, &lo, &len);
        if (len && lo < sc->lo)
            sc->lo = lo;
        if (len && lo + len > sc->hi)
            sc->hi = lo + len;
    }
    r = scan_root(sc);
    if (!r)
        r = mms__heap_each(s, scan_alloc, sc);
    if (r)
        return r;
    if (sc->found) {
        size_t k = strlen(sc->msg);
        snprintf(sc->msg + k, sc->cap - k, " (%llu suspicious words of %llu pointers checked)",
                 (unsigned long long)sc->found, (unsigned long long)sc->words);
        return mms__fail(MMS_ECORRUPT, "%s", sc->msg);
    }
    snprintf(sc->msg, sc->cap, "%llu words that point into the store, in %llu live allocations, "
             "all into live data", (unsigned long long)sc->words, (unsigned long long)sc->allocs);
    return 0;
}

int mms_verify_pointers(mms_store *s, char *msg, size_t cap, uint64_t *count)
{
    char local[512];
    if (!msg || cap == 0) {
        msg = local;
        cap = sizeof local;
    }
    msg[0] = 0;
    struct scan sc = {.msg = msg, .cap = cap};
    int r = mms__at_latest(s, "mms_verify_pointers", scan_pinned, &sc);
    if (count)
        *count = sc.found;
    return r;
}

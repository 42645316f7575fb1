/*
 * heapobj.c -- the application's heap objects, for a whole-store dump and
 * its load (mms_heap_objects, mms_heap_place); the public calls that free
 * or move an object by a ref the application gives (mms_free, mms_realloc,
 * mms_str_set), which refuse the library's own (mms_heap_library_owned);
 * and, at commit, what the transaction freed: not the library's own
 * objects, not a string a live record holds (mms__heap_owned_check).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the 8 bytes of field k lie inside a record: fd[k] is a heap
 * object the application can damage, so its offset is checked before
 * every record is read there. */
static bool field_word_fits(const struct mms__tabent *e, const struct mms__fdesc *fd, uint32_t k)
{
    return e->record_size >= 8 && fd[k].offset <= e->record_size - 8;
}

/* As field_word_fits, an error naming the table and field if not. */
static int field_words(const struct mms__tabent *e, const struct mms__fdesc *fd, uint32_t k)
{
    if (!field_word_fits(e, fd, k))
        return MMS__CORRUPT("table %s: field %u (offset %u) is past its %u-byte record", e->name,
                            k, fd[k].offset, e->record_size);
    return 0;
}

/* ------------------------------------------------------------------------
 * The library's own heap objects: the catalog, and what each table keeps
 * in the heap -- its field list, deleted-record bitmap, index list, the
 * list of its null bitmaps and each of them. This is the one list of
 * them: the dump and the reachability walk leave them out (owned_refs),
 * the commit checks they are live (mms__heap_owned_check), and the public
 * calls that free, move or (in a binding) write an object by a ref they
 * are given refuse them (mms_heap_library_owned). A walk of the catalog,
 * never of the records: tables + fields refs.
 * ------------------------------------------------------------------------ */
typedef int (*lib_visit)(void *ctx, mms_ref ref, const char *table, const char *what);

/* visit(ctx, ref, table name or NULL, what) for each of them (null refs
 * left out) until it returns non-zero, which is returned; MMS_ECORRUPT
 * for a damaged catalog. With entries, each catalog entry is checked
 * whole (mms__entry_check), as a walk that goes on to its records needs;
 * without, only what is read here: the list of null bitmaps. */
static int lib_objects(const mms_store *s, bool entries, lib_visit visit, void *ctx)
{
    struct mms__catalog *cat;
    int r = mms__catalog_get(s, &cat);
    if (r || !cat)
        return r;
    if ((r = visit(ctx, mms__hdr(s)->catalog, NULL, "the catalog")))
        return r;
    for (uint32_t t = 0; t < cat->ntables; t++) {
        const struct mms__tabent *e = &cat->t[t];
        if (entries && (r = mms__entry_check(s, e)))
            return r;
        if (!entries && e->nulls && (e->nfields > MMS__MAX_FIELDS ||
                                     !mms__heap_range(s, e->nulls, (uint64_t)e->nfields * 16, 8)))
            return MMS__CORRUPT("table %.63s: its null bitmaps are not in the heap", e->name);
        if ((e->fields && (r = visit(ctx, e->fields, e->name, "'s field list"))) ||
            (e->tomb && (r = visit(ctx, e->tomb, e->name, "'s deleted-record bitmap"))) ||
            (e->indexes && (r = visit(ctx, e->indexes, e->name, "'s index list"))) ||
            (e->nulls && (r = visit(ctx, e->nulls, e->name, "'s null bitmap list"))))
            return r;
        const struct mms__nullbits *nb = e->nulls ? mms_deref(s, e->nulls) : NULL;
        for (uint32_t k = 0; nb && k < e->nfields; k++)
            if (nb[k].bits && (r = visit(ctx, nb[k].bits, e->name, "'s null bitmap")))
                return r;
    }
    return 0;
}

static int lib_add(void *ctx, mms_ref ref, const char *table, const char *what)
{
    (void)table;
    (void)what;
    return mms__refset_add(ctx, ref);
}

struct lib_find {
    mms_ref ref;
    const char *table, *what; /* what names it, once found */
};

static int lib_find_one(void *ctx, mms_ref ref, const char *table, const char *what)
{
    struct lib_find *f = ctx;
    if (ref != f->ref)
        return 0;
    f->table = table;
    f->what = what;
    return 1;
}

int mms_heap_library_owned(const mms_store *s, mms_ref ref)
{
    int r = mms__check_handle(s);
    if (r || ref == MMS_REF_NULL || MMS_REF_REGION(ref) != 0)
        return r;
    struct lib_find f = {ref, NULL, NULL};
    return lib_objects(s, false, lib_find_one, &f);
}

/* MMS_CHECK_LIB=1 in the environment (the tests set it): each answer of
 * the set is checked against a walk; a difference aborts the process. */
static int lib_check = -1;

static bool lib_set_fresh(mms_store *s)
{
    if (s->lib_set_ok)
        return true;
    mms__refset_clear(&s->lib_set);
    /* A walk that fails (no memory, a damaged catalog) leaves it stale:
     * each call then walks, and says what the walk finds. */
    s->lib_set_ok = lib_objects(s, false, lib_add, &s->lib_set) == 0;
    return s->lib_set_ok;
}

/* Is ref one of the library's own heap objects? One walk of the catalog
 * per write transaction (and after library code changed one of their
 * refs), then a lookup: a walk at each call made mms_free of a store
 * with 100 tables 9x as slow as with none, 30x with 500
 * (bench/tables_cost.c, bench/results-tables_cost.txt). Only a
 * ref the set holds is looked for by a walk again, which names it. The
 * walk also checks the catalog: damage a stray store made after the set
 * was, in the same transaction, is found by the commit's walk
 * (mms__heap_owned_check), not at this call. */
int mms__heap_lib_refuse(mms_store *s, mms_ref ref, const char *call)
{
    if (MMS_REF_REGION(ref) != 0)
        return 0;
    struct lib_find f = {ref, NULL, NULL};
    int check = __atomic_load_n(&lib_check, __ATOMIC_RELAXED);
    if (check < 0) {
        const char *c = getenv("MMS_CHECK_LIB");
        check = c && strcmp(c, "1") == 0;
        __atomic_store_n(&lib_check, check, __ATOMIC_RELAXED);
    }
    if (lib_set_fresh(s) && !mms__refset_has(&s->lib_set, ref)) {
        if (check && lib_objects(s, false, lib_find_one, &f) == 1) {
            fprintf(stderr, "mmstore: MMS_CHECK_LIB: ref 0x%llx is %s%s%s, not in the set of "
                    "the library's own objects\n", (unsigned long long)ref,
                    f.table ? "table " : "", f.table ? f.table : "", f.what);
            abort();
        }
        return 0;
    }
    int r = lib_objects(s, false, lib_find_one, &f);
    if (r == 1)
        return mms__fail(MMS_EBADREF, "%s: ref 0x%llx is %s%.63s%s, one of the library's own "
                         "heap objects: only the library frees or changes it", call,
                         (unsigned long long)ref, f.table ? "table " : "",
                         f.table ? f.table : "", f.what);
    return r;
}

int mms_free(mms_store *s, mms_ref ref)
{
    int r = mms__check_write(s);
    if (r || ref == MMS_REF_NULL)
        return r;
    return (r = mms__heap_lib_refuse(s, ref, "mms_free")) ? r : mms__free(s, ref);
}

int mms_realloc(mms_store *s, mms_ref *ref, size_t size)
{
    int r = mms__check_write(s);
    if (!r && ref && *ref)
        r = mms__heap_lib_refuse(s, *ref, "mms_realloc");
    return r ? r : mms__realloc(s, ref, size);
}

/* Here, not in str.c (layer 5): it frees a ref the application gives,
 * through mms_free. */
int mms_str_set(mms_store *s, mms_ref *field, const void *bytes, size_t len)
{
    if (!field)
        return mms__fail(MMS_EINVAL, "mms_str_set: field is NULL");
    /* The old one must be live before the new one is made: once freed,
     * its place may be where the new one lands, and freeing "the old one"
     * would free the new. */
    size_t old_size;
    int r = mms__check_write(s);
    if (!r && *field && !(r = mms_alloc_size(s, *field, &old_size)))
        r = mms__heap_lib_refuse(s, *field, "mms_str_set"); /* before a string is made */
    if (r)
        return r;
    mms_ref n;
    r = mms_str_new(s, bytes, len, &n);
    if (r)
        return r;
    if (*field && (r = mms_free(s, *field))) {
        mms_free(s, n);
        return r;
    }
    *field = n;
    return 0;
}

/* Every heap allocation the catalog and the records own, into *own; with
 * hc, the record fields that hold a string or blob another field holds too
 * counted there (mms_heap_check.shared). */
static int owned_refs(const mms_store *s, struct mms__refset *own, mms_heap_check *hc)
{
    struct mms__catalog *cat;
    int r = mms__catalog_get(s, &cat);
    if (r || !cat || (r = lib_objects(s, true, lib_add, own)))
        return r;
    for (uint32_t t = 0; t < cat->ntables; t++) {
        const struct mms__tabent *e = &cat->t[t];
        const struct mms__fdesc *fd = mms__fdescs(s, e);
        if (!fd)
            return MMS__CORRUPT("table %s: its field descriptors are damaged", e->name);
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
 * The library's own objects at commit. The catalog and what each table
 * keeps in the heap are live allocations, which the public calls given a
 * wrong ref (a stale one whose space the catalog now holds) refuse to free
 * or move (mms__heap_lib_refuse); the library frees them through
 * mms__free. Should one be freed all the same (a library bug, a stray
 * store into the allocator's metadata), the commit refuses to keep that,
 * as it refuses a freed root (table.c), so a committed state never lacks
 * them.
 * ------------------------------------------------------------------------ */
static int owned_live(void *ctx, mms_ref ref, const char *table, const char *what)
{
    uint64_t usable;
    int r = ref ? mms__alloc_usable(ctx, ref, &usable) : 0;
    if (r == MMS_EBADREF)
        return mms__fail(MMS_EBADREF, "the transaction freed heap object 0x%llx, %s%s%s: the "
                         "library's own", (unsigned long long)ref, table ? "table " : "",
                         table ? table : "", what);
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
 * string now, may be held still; only then is each ref the transaction
 * freed looked for in the live records, and one that a live record's STR
 * or BLOB field holds and that is no longer a string fails the commit. A
 * field holding such a ref while a string is there again (freed, and
 * mms_str_new made the next string in its place) cannot be told from a
 * record given that new string: it passes.
 *
 * Looking means counting. The handle keeps, for the committed state it
 * last saw, how many live-record STR and BLOB fields hold each ref (struct
 * mms__holders: a hash of ref -> count; two fields may hold one string).
 * It is built by one scan of those fields when a commit needs it (H5; a
 * handle that never frees a string a record might hold pays nothing),
 * and then follows each commit of this handle from what the commit visits
 * anyway: every record whose bytes changed and every appended one passes
 * through mms__heap_holders_record with its committed bytes and its new
 * ones (txn.c, records_of_table; a delete zeroes its record, so it is
 * one). Then a commit's look costs one probe per freed ref. The counts are
 * thrown away (their memory freed), and built again when next needed, on
 * what they do not follow:
 *
 *   H1. Another handle's commit: the counts name the txn id they describe
 *       (txn), and a commit that starts on another state drops them.
 *   H2. A commit attempt that did not finish (a failed check, a journal
 *       error, MMS_EBUSY that keeps the transaction open): the counts
 *       were changed in place, so only mms__heap_holders_committed makes
 *       them valid again; a commit that finds them half-applied drops
 *       them. An abort changes nothing: counts move only at commit.
 *   H3. A table's layout or file changed, a table dropped, created (with
 *       STR or BLOB fields) or made shorter: the tables the counts follow
 *       (tab: region, file generation, layout, record count) no longer
 *       match the catalog.
 *   H4. A record that is not live holding a ref (the counts rely on a
 *       deleted record being zero, as mms_table_delete leaves it, so that a
 *       record's committed bytes count when they are not zero): the build
 *       finds none, and a commit that makes one drops the counts; a build
 *       that finds one gives up, and the commit scans instead.
 *   H5. A build costs several scans (it fills a table of every string),
 *       so a commit that finds no counts scans as before, and only the
 *       next one builds them, if no other handle committed in between: a
 *       handle whose commits alternate with another's, which would drop
 *       them at each commit (H1), keeps paying a scan, never a build.
 *
 * MMS_CHECK_HOLDERS=1 in the environment (the tests set it): each check
 * also scans, and the counts are compared with a fresh count after every
 * commit that moved them; a difference aborts the process.
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

/* The scan: every STR and BLOB field of every live record. */
static int records_scan(mms_store *s, uint64_t bits)
{
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

struct holder {
    mms_ref ref; /* 0: an empty slot */
    uint64_t n;  /* live-record fields holding it, > 0 */
};

/* A table the counts follow (H3): one with a STR or BLOB field. */
struct holder_tab {
    uint64_t fields, layout_gen, count;
    uint32_t region, gen, record_size, nfields;
};

enum {
    H_NONE,     /* no counts (v freed) */
    H_VALID,    /* the counts of committed state txn */
    H_APPLYING, /* a commit is moving them (H2) */
    H_SETTLED,  /* that commit's new state, if it commits */
};

struct mms__holders {
    struct holder *v; /* open addressing, linear probing, no tombstones */
    size_t n, cap;    /* refs held; slots (a power of 2) */
    struct holder_tab *tab;
    uint32_t ntab, tabcap;
    uint16_t tab_of[MMS_MAX_REGIONS]; /* region -> index in tab + 1; 0: none */
    int state;
    uint64_t txn;
    uint64_t own_txn; /* the txn id of this handle's last commit (H5) */
    bool check;       /* MMS_CHECK_HOLDERS=1 */
};

/* Heap objects are 16-byte aligned, and the strings of records made one
 * after another lie one after another: their units fold onto the slots
 * in order (x ^ x >> bits), so a build writes the table nearly in order
 * (a multiplicative hash, scattering them, made it miss the cache and
 * cost 30 times the scan), and the laps of a large heap land on different
 * permutations of the slots. */
static size_t hslot(const struct mms__holders *h, mms_ref ref)
{
    uint64_t x = ref >> 4 | ref << 60;
    return (size_t)(x ^ x >> __builtin_ctzll(h->cap)) & (h->cap - 1);
}

static struct holder *hfind(const struct mms__holders *h, mms_ref ref)
{
    if (!h->n)
        return NULL;
    for (size_t i = hslot(h, ref);; i = (i + 1) & (h->cap - 1)) {
        if (h->v[i].ref == ref)
            return &h->v[i];
        if (!h->v[i].ref)
            return NULL;
    }
}

static void hput(struct mms__holders *h, mms_ref ref, uint64_t n)
{
    size_t i = hslot(h, ref);
    while (h->v[i].ref && h->v[i].ref != ref)
        i = (i + 1) & (h->cap - 1);
    if (!h->v[i].ref) {
        h->v[i].ref = ref;
        h->n++;
    }
    h->v[i].n += n;
}

/* Room for want refs (h->n of them in it already) without a rehash. */
static int hreserve(struct mms__holders *h, size_t want)
{
    if (4 * want <= 3 * h->cap)
        return 0;
    if (want > (size_t)1 << 40) /* a damaged live count */
        return -ENOMEM;
    size_t cap = h->cap ? h->cap : 1024, oldcap = h->cap;
    while (4 * want > 3 * cap)
        cap *= 2;
    struct holder *v = calloc(cap, sizeof *v), *old = h->v;
    if (!v)
        return -ENOMEM;
    h->v = v;
    h->cap = cap;
    h->n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].ref)
            hput(h, old[i].ref, old[i].n);
    free(old);
    return 0;
}

/* One more holder of ref (not 0). */
static int hinc(struct mms__holders *h, mms_ref ref)
{
    int r = hreserve(h, h->n + 1 > h->cap / 2 ? 2 * (h->n + 1) : h->n + 1);
    if (!r)
        hput(h, ref, 1);
    return r;
}

/* One holder fewer; false if ref had none (the counts are wrong). The
 * run after an emptied slot shifts back into it (no tombstones). */
static bool hdec(struct mms__holders *h, mms_ref ref)
{
    struct holder *x = hfind(h, ref);
    if (!x)
        return false;
    if (--x->n)
        return true;
    size_t mask = h->cap - 1, i = (size_t)(x - h->v);
    for (size_t j = (i + 1) & mask; h->v[j].ref; j = (j + 1) & mask) {
        size_t home = hslot(h, h->v[j].ref);
        if (((j - home) & mask) >= ((j - i) & mask)) { /* home not in (i, j] */
            h->v[i] = h->v[j];
            i = j;
        }
    }
    h->v[i].ref = 0;
    h->v[i].n = 0;
    h->n--;
    return true;
}

/* The table goes too: a handle whose counts keep being dropped (H1, H5)
 * would otherwise hold 16 bytes per slot of the last build until close. */
static void holders_drop(struct mms__holders *h)
{
    free(h->v);
    h->v = NULL;
    h->cap = 0;
    h->n = 0;
    for (uint32_t t = 0; t < h->ntab; t++)
        h->tab_of[h->tab[t].region] = 0;
    h->ntab = 0;
    h->state = H_NONE;
}

static bool has_strings(const mms_store *s, const struct mms__tabent *e)
{
    const struct mms__fdesc *fd = mms__fdescs(s, e);
    for (uint32_t k = 0; fd && k < e->nfields; k++)
        if (mms__kind_owns_heap(fd[k].kind))
            return true;
    return false;
}

static bool tab_matches(const mms_store *s, const struct holder_tab *t,
                        const struct mms__tabent *e)
{
    return t->region == e->region && t->gen == mms__rtab(s)[e->region].gen &&
           t->fields == e->fields && t->layout_gen == e->layout_gen &&
           t->record_size == e->record_size && t->nfields == e->nfields;
}

/* The tables the counts follow, as the catalog has them now (H3). */
static int holders_tables(mms_store *s, struct mms__holders *h)
{
    const struct mms__catalog *cat = mms__catalog(s);
    for (uint32_t t = 0; t < h->ntab; t++)
        h->tab_of[h->tab[t].region] = 0;
    h->ntab = 0;
    for (uint32_t i = 0; cat && i < cat->ntables; i++) {
        const struct mms__tabent *e = &cat->t[i];
        if (!has_strings(s, e))
            continue;
        if (h->ntab == h->tabcap) {
            uint32_t cap = h->tabcap ? 2 * h->tabcap : 16;
            struct holder_tab *v = realloc(h->tab, cap * sizeof *v);
            if (!v)
                return -ENOMEM;
            h->tab = v;
            h->tabcap = cap;
        }
        if (e->region >= MMS_MAX_REGIONS || h->tab_of[e->region])
            return 1; /* damaged: the scan says what it finds */
        h->tab[h->ntab] = (struct holder_tab){e->fields, e->layout_gen, e->count, e->region,
                                              mms__rtab(s)[e->region].gen, e->record_size,
                                              e->nfields};
        h->tab_of[e->region] = (uint16_t)++h->ntab;
    }
    return 0;
}

/* Whether the catalog still has the tables the counts follow, none more,
 * none shorter (H3). */
static bool holders_tables_match(mms_store *s, const struct mms__holders *h)
{
    const struct mms__catalog *cat = mms__catalog(s);
    uint32_t n = 0;
    for (uint32_t i = 0; cat && i < cat->ntables; i++) {
        const struct mms__tabent *e = &cat->t[i];
        if (!has_strings(s, e))
            continue;
        const struct holder_tab *t =
            e->region < MMS_MAX_REGIONS && h->tab_of[e->region] ? &h->tab[h->tab_of[e->region] - 1]
                                                                : NULL;
        if (!t || !tab_matches(s, t, e) || e->count < t->count)
            return false;
        n++;
    }
    return n == h->ntab;
}

/* The counts of the state s shows, from scratch into h: 1 if a record
 * that is not live holds a ref (H4) or a table is damaged (the scan says
 * how), or -ENOMEM; h is left empty then. */
static int holders_build(mms_store *s, struct mms__holders *h)
{
    holders_drop(h);
    int r = holders_tables(s, h);
    const struct mms__catalog *cat = mms__catalog(s);
    /* Room for a ref per field at once: rehashing on the way cost more
     * than the scan. */
    size_t want = 0;
    for (uint32_t t = 0; cat && t < cat->ntables; t++) {
        const struct mms__fdesc *fd = mms__fdescs(s, &cat->t[t]);
        for (uint32_t k = 0; fd && k < cat->t[t].nfields; k++)
            want += mms__kind_owns_heap(fd[k].kind) ? (size_t)cat->t[t].live : 0;
    }
    if (!r)
        r = hreserve(h, want);
    for (uint32_t t = 0; !r && cat && t < cat->ntables; t++) {
        const struct mms__tabent *e = &cat->t[t];
        const struct mms__fdesc *fd = mms__fdescs(s, e);
        r = fd ? 0 : 1;
        const char *base = s->view.base[e->region];
        for (uint32_t k = 0; !r && k < e->nfields; k++) {
            if (!mms__kind_owns_heap(fd[k].kind))
                continue;
            if (!field_word_fits(e, fd, k)) {
                r = 1; /* damaged: the scan says how */
                break;
            }
            for (uint64_t i = 0; !r && i < e->count; i++) {
                mms_ref v;
                memcpy(&v, base + i * e->record_size + fd[k].offset, 8);
                if (v && !mms__catalog_live(s, e, i))
                    r = 1;
                else if (v)
                    r = hinc(h, v);
            }
        }
    }
    if (r)
        holders_drop(h);
    else
        h->state = H_SETTLED;
    return r;
}

/* MMS_CHECK_HOLDERS: the counts h keeps are a fresh count's. */
static void holders_compare(mms_store *s, const struct mms__holders *h, const char *when)
{
    struct mms__holders *f = calloc(1, sizeof *f);
    if (!f || holders_build(s, f) != 0) {
        fprintf(stderr, "mmstore: MMS_CHECK_HOLDERS: no fresh count to compare with (%s)\n",
                when);
        abort();
    }
    bool same = f->n == h->n;
    for (size_t i = 0; same && i < f->cap; i++) {
        const struct holder *x = f->v[i].ref ? hfind(h, f->v[i].ref) : NULL;
        same = !f->v[i].ref || (x && x->n == f->v[i].n);
    }
    if (!same) {
        fprintf(stderr, "mmstore: MMS_CHECK_HOLDERS: the count of holders kept (%zu refs) is "
                "not a fresh count's (%zu refs), %s\n", h->n, f->n, when);
        abort();
    }
    free(f->v);
    free(f->tab);
    free(f);
}

void mms__heap_holders_begin(mms_store *s)
{
    struct mms__holders *h = s->holders;
    if (!h || h->state == H_NONE)
        return;
    if (h->state == H_VALID && h->txn == mms__hdr(s)->txn_id)
        h->state = H_APPLYING;
    else
        holders_drop(h); /* H1, H2 */
}

void mms__heap_holders_record(mms_store *s, const struct mms__tabent *e, uint64_t index,
                              const char *old, const char *rec)
{
    struct mms__holders *h = s->holders;
    if (!h || h->state != H_APPLYING)
        return;
    const struct holder_tab *t =
        e->region < MMS_MAX_REGIONS && h->tab_of[e->region] ? &h->tab[h->tab_of[e->region] - 1]
                                                            : NULL;
    const struct mms__fdesc *fd = mms__fdescs(s, e);
    /* A record the counts have, or an appended one: nothing else. */
    if (!t || !fd || !tab_matches(s, t, e) || (old != NULL) != (index < t->count)) {
        holders_drop(h); /* H3 */
        return;
    }
    bool live = mms__catalog_live(s, e, index);
    for (uint32_t k = 0; k < e->nfields; k++) {
        if (!mms__kind_owns_heap(fd[k].kind) || !field_word_fits(e, fd, k))
            continue;
        mms_ref was = 0, now;
        if (old)
            memcpy(&was, old + fd[k].offset, 8);
        memcpy(&now, rec + fd[k].offset, 8);
        if (now && !live) {
            holders_drop(h); /* H4 */
            return;
        }
        if (was == now)
            continue;
        if ((was && !hdec(h, was)) || (now && hinc(h, now) != 0)) {
            holders_drop(h);
            return;
        }
    }
}

/* At commit, once every record was visited: the counts are the new
 * state's if the tables are still the ones they follow (H3) and no record
 * the transaction deleted holds a ref (H4: a delete undone by a plain
 * store is on no dirty page). */
static void holders_settle(mms_store *s)
{
    struct mms__holders *h = s->holders;
    if (!h || h->state != H_APPLYING)
        return;
    bool ok = holders_tables_match(s, h);
    for (size_t i = 0; ok && i < s->txn_deleted.cap; i++) {
        mms_ref ref = s->txn_deleted.v[i];
        uint32_t id = MMS_REF_REGION(ref);
        const struct mms__tabent *e = ref && id < MMS_MAX_REGIONS && h->tab_of[id]
                                          ? mms__catalog_by_region(s, id) : NULL;
        const struct mms__fdesc *fd = e ? mms__fdescs(s, e) : NULL;
        uint64_t k = MMS_REF_SLOT(ref);
        if (!fd || k >= e->count || mms__catalog_live(s, e, k))
            continue;
        const char *rec = s->view.base[id] + k * e->record_size;
        for (uint32_t f = 0; ok && f < e->nfields; f++) {
            mms_ref v = 0;
            if (mms__kind_owns_heap(fd[f].kind) && (uint64_t)fd[f].offset + 8 <= e->record_size)
                memcpy(&v, rec + fd[f].offset, 8);
            ok = !v;
        }
    }
    if (!ok) {
        holders_drop(h);
        return;
    }
    h->state = H_SETTLED;
    if (h->check)
        holders_compare(s, h, "after the commit's records moved them");
}

void mms__heap_holders_committed(mms_store *s)
{
    struct mms__holders *h = s->holders;
    if (!h)
        return;
    h->own_txn = mms__hdr(s)->txn_id;
    if (h->state == H_NONE)
        return;
    if (h->state == H_SETTLED && holders_tables(s, h) == 0) {
        h->state = H_VALID;
        h->txn = mms__hdr(s)->txn_id;
    } else {
        holders_drop(h);
    }
}

void mms__heap_holders_free(mms_store *s)
{
    if (!s->holders)
        return;
    free(s->holders->v);
    free(s->holders->tab);
    free(s->holders);
    s->holders = NULL;
}

/* Whether a live record holds a ref the transaction freed that is not a
 * string now: 1 yes, 0 no, 2 cannot tell (then the scan does). */
static int holders_answer(mms_store *s)
{
    struct mms__holders *h = s->holders;
    if (!h) {
        if (!(h = s->holders = calloc(1, sizeof *h)))
            return 2;
        const char *check = getenv("MMS_CHECK_HOLDERS");
        h->check = check && strcmp(check, "1") == 0;
    }
    if (h->state != H_SETTLED) {
        if (h->own_txn != mms__hdr(s)->txn_id)
            return 2; /* H5 */
        /* A build that fails (H4, no memory, a damaged table) leaves
         * the answer to the scan, which needs neither and says what it
         * finds where it finds it; the next look scans too. */
        if (holders_build(s, h) != 0) {
            h->own_txn = 0;
            return 2;
        }
    }
    for (size_t i = 0; i < s->txn_freed.cap; i++) {
        mms_ref ref = s->txn_freed.v[i];
        if (ref && hfind(h, ref) && !mms__str_valid(s, ref))
            return 1;
    }
    return 0;
}

static int records_hold_freed(mms_store *s)
{
    uint64_t bits = may_be_held(s);
    if (!bits)
        return 0;
    int held = holders_answer(s);
    bool check = s->holders && s->holders->check;
    if (held == 0 && !check)
        return 0;
    /* Held (the scan names the record), unknown, or checked. */
    int r = records_scan(s, bits);
    if (check && held != 2 && (r == MMS_EBADREF) != (held == 1)) {
        fprintf(stderr, "mmstore: MMS_CHECK_HOLDERS: the count of holders says a freed string "
                "is %sheld, the scan says %s\n", held ? "" : "not ",
                r == MMS_EBADREF ? mms_errdetail() : "it is not");
        abort();
    }
    return r;
}

int mms__heap_owned_check(mms_store *s)
{
    holders_settle(s);
    if (!s->txn_freed.n)
        return 0;
    /* The catalog first: freed, its bytes may be another object's now,
     * which lib_objects would report as a damaged catalog. */
    int r = owned_live(s, mms__hdr(s)->catalog, NULL, "the catalog");
    if (!r)
        r = lib_objects(s, true, owned_live, s);
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

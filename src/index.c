/*
 * index.c -- hash and ordered indexes on a field of a table.
 *
 * Layer 6: calls catalog.c, alloc.c, map.c and schema.c; table.c, txn.c
 * and lookup.c call it. It owns the bytes of index regions (FORMAT §2.8)
 * and the index descriptors of catalog entries. It must never write a
 * table's records, and never trust an index page it reads: a damaged one
 * gives MMS_ECORRUPT (or a miss), never a crash or a wrong record.
 *
 * NOTES ON THE DESIGN
 *
 * Keys. A key is the field's bytes turned into bytes that compare like
 * the values under memcmp (mms__ix_norm): integers big-endian with the
 * sign bit flipped, floats by their IEEE order (-0 is +0; every NaN is
 * one key, above +inf), bool 0 or 1, chars as they are (NUL-padded, so
 * "ab" < "abc"). An entry is the key followed by the record index: in an
 * ordered index big-endian, so entries compare as (key, record) and equal
 * keys are distinct entries; in a hash slot a word of the record index + 1
 * and a check (0: an empty slot; mms__ix_slot_word), then the key.
 * Entries carry their keys: no operation on an index reads a record, so
 * the index never depends on the table's state mid-commit. A covering index's slots and
 * leaf entries also carry a copy of one more field (up to 8 bytes), kept
 * true by the same upkeep as the keys.
 * STR and BLOB keys would live in the heap; they are not indexable yet.
 *
 * Missing keys. A record whose key field is missing (its bit in the
 * field's null bitmap, table.c) has no entry: the index holds the live
 * records whose key is not missing, so no read path tests a null bitmap
 * where table and index are of one commit (the read transaction's short
 * get is unchanged); a checked lookup (mms__ix_held) tests it beside the
 * deleted bit. A mark or an unmark changes no byte the commit's diff sees
 * when the value was zeros: table.c notes the record (mms__ix_note_mark)
 * and the commit gives it the entry its mark says. An index an older
 * library wrote (no MMS__IXH_NO_MISSING) held missing keys under their
 * zero bytes: on a field with a null bitmap it is read checked (stale)
 * until the next commit that writes builds it again (held_missing).
 *
 * Each index is a region of its own (kind 3), page 0 its header:
 *  - hash: open addressing, linear probing, slots from page 1, at most 3/4
 *    full; a removal shifts the run back (no tombstones). Growing writes
 *    the table at twice the size into a new file of the region; so does
 *    a run past PROBE_MAX (equal keys take adjacent slots), up to
 *    SPREAD_MAX times the slots the entries need.
 *  - ordered: a B+tree of 4096-byte pages. Inner pages hold n separators
 *    (whole entries, less a covered copy) and n + 1 children; child i holds
 *    the entries e with sep[i-1] <= e < sep[i]. Leaves are linked both ways. Removal never
 *    merges pages (a page may become empty and stays linked); a rebuild
 *    packs the tree again.
 *
 * Upkeep (DESIGN §6a). Appends, deletes, null marks and plain stores all
 * change records; the commit finds every changed record from the dirty
 * pages (txn.c) with its committed bytes, and this file makes each index
 * agree: the committed key's entry goes if the record changed, died or
 * its key is missing, the new key's comes if it lives with a key. Both
 * steps are idempotent, so a record seen twice (a delete and a dirty
 * page, a dirty page and a mark) is no harm. Unique indexes are
 * checked after every change of the commit is in (a swap of two keys is
 * not a duplicate), and a duplicate fails the commit, which aborts it.
 * An index of a table the transaction migrated is built again from the
 * records at commit instead: the bulk build writes a new file of the
 * region (fresh space: synced, not journaled). So the index agrees with
 * the table at every commit, and a crash leaves both as of one commit:
 * index pages are ordinary pages of the store.
 *
 * Create: one bulk build, now or at commit. The upkeep takes a record's
 * committed bytes for the entry it had (below the region's committed
 * size; none past it), so it makes true an index that was the table's as
 * of the last commit. An index built now from the records is that when
 * the records are the committed ones: every record lies below the
 * committed size, and no private page of the table differs from its
 * committed content (as_committed; liveness needs no test of its own: a
 * deleted slot is zeros, and an entry of zeros is what the upkeep takes a
 * dead slot's committed bytes for). Then create builds it, and the
 * commit's upkeep follows whatever the transaction does after -- unless
 * the transaction appended so many records that inserting them one by one
 * costs more than a bulk build (outgrown, as measured: a hash index they
 * would make grow; an ordered one past 1/10 of its entries, 1.5x when the
 * new keys go after them); then the commit builds it again. Otherwise (the
 * transaction appended, deleted or stored into the table first, or made
 * it) create writes an empty index, checks a unique one's keys, and the
 * commit builds it from the records then, as for a migration: built
 * twice would be the cost of keeping an as-built copy true. A unique
 * one's keys are sorted twice then (the check, the build): keeping the
 * check's sort for the build saved 5% of `mms import --index F:unique`'s
 * instructions, but kept two copies of the entries through the
 * transaction (1.5x its peak memory), so it is not done.
 *
 * Until its commit a transaction's changes are not in its indexes:
 * lookups in a write transaction see the last commit's index (one built
 * at create: as built, or empty until the commit builds it), and return
 * only records whose key still matches.
 *
 * Reading fast (bench/results/index.md). A lookup's cost is its cache
 * misses, taken one after the other: in a read transaction a hash find is
 * one slot (its key and checked record index are the answer: table and
 * index are of one commit), elsewhere the record too (its key compared);
 * it stops at the first live match; a batch (mms__ix_hash_batch8) asks for
 * all its slots before it waits; a descent asks for the
 * lines of a page's first binary-search steps together; a cursor fetches
 * the records of the entries ahead of it (unless its reader takes covered
 * values), and a step within a leaf reads the entry alone (the leaf was
 * checked when the cursor came to it). Prefetches never fault and
 * never decide an answer: every answer is read and checked as before.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG MMS__PAGE
#define MAXDEPTH 32
#define PROBE_MAX 4096 /* a hash run longer than this: spread (SPREAD_MAX), or too many
                        * equal keys */

/* The transaction's index work (s->ixtxn). */
struct pend {
    uint64_t h;   /* hash of (index region, key) */
    mms_ref rec;  /* ref of the record that was appended */
};
struct mms__ixtxn {
    uint64_t fresh[MMS_MAX_REGIONS / 64];   /* index regions created by this txn,
                                               to build at its commit */
    uint64_t built[MMS_MAX_REGIONS / 64];   /* ... built at create (NOTES, "Create") */
    uint64_t rebuilt[MMS_MAX_REGIONS / 64]; /* ... built again by this commit */
    struct pend *p;                         /* appends to tables with unique indexes */
    size_t pn, pcap;
    struct { uint32_t region, tregion; uint64_t rec; } *chk; /* keys to check unique */
    size_t cn, ccap;
    mms_ref *touched; /* records whose entries the diff may not see (note_touched) */
    size_t tn, tcap;
};

static bool bit_get(const uint64_t *b, uint32_t i)
{
    return b[i / 64] >> (i % 64) & 1;
}
static void bit_set(uint64_t *b, uint32_t i)
{
    b[i / 64] |= UINT64_C(1) << (i % 64);
}

static struct mms__ixtxn *txn_state(mms_store *s)
{
    if (!s->ixtxn)
        s->ixtxn = calloc(1, sizeof *s->ixtxn);
    return s->ixtxn;
}

void mms__ix_txn_end(mms_store *s)
{
    struct mms__ixtxn *t = s->ixtxn;
    if (!t)
        return;
    memset(t->fresh, 0, sizeof t->fresh);
    memset(t->built, 0, sizeof t->built);
    memset(t->rebuilt, 0, sizeof t->rebuilt);
    if (t->pn)
        memset(t->p, 0, t->pcap * sizeof *t->p);
    t->pn = 0;
    t->cn = 0;
    t->tn = 0;
}

void mms__ix_free(mms_store *s)
{
    if (s->ixtxn) {
        free(s->ixtxn->p);
        free(s->ixtxn->chk);
        free(s->ixtxn->touched);
        free(s->ixtxn);
    }
    s->ixtxn = NULL;
}

/* ------------------------------------------------------------------------
 * Keys
 * ------------------------------------------------------------------------ */
int mms__ix_keyable(const char *table, const struct mms__fdesc *f)
{
    switch (mms_kind_class(f->kind)) {
    case 'i': case 'u': case 'f': case 'b': case 'r':
        return 0;
    case 'c':
        if (f->size <= MMS__IX_MAX_KEY)
            return 0;
        return mms__fail(MMS_ENOTSUP, "table %s: field %s is chars[%u]; an index key is at most "
                         "%u bytes", table, f->name, f->size, MMS__IX_MAX_KEY);
    default:
        return mms__fail(MMS_ENOTSUP, "table %s: field %s is %s; indexes on strings and blobs are "
                         "not supported yet (index a chars field instead)", table, f->name,
                         mms__kind_label(f->kind));
    }
}

/* A covered field (FORMAT §2.8): a value of at most 8 bytes copied as it
 * is into each slot of a hash index, each leaf entry of an ordered one. */
int mms__ix_coverable(const char *table, const struct mms__fdesc *f)
{
    switch (mms_kind_class(f->kind)) {
    case 'i': case 'u': case 'f': case 'b': case 'r':
        return 0;
    case 'c':
        if (f->size <= 8)
            return 0;
        return mms__fail(MMS_ENOTSUP, "table %s: field %s is chars[%u]; an index covers a field "
                         "of at most 8 bytes", table, f->name, f->size);
    default:
        return mms__fail(MMS_ENOTSUP, "table %s: field %s is %s; an index covers integers, "
                         "floats, bools, refs and chars of at most 8 bytes", table, f->name,
                         mms__kind_label(f->kind));
    }
}

/* The covered value of a record (its C bytes at field) as a slot holds it:
 * zero-padded to 8 bytes. */
static const uint8_t *cover_copy(const char *field, uint32_t C, uint8_t out[8])
{
    memset(out, 0, 8);
    memcpy(out, field, C);
    return out;
}

static void put_be(uint8_t *out, uint64_t v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}
static uint64_t get_be(const uint8_t *in, uint32_t n)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < n; i++)
        v = v << 8 | in[i];
    return v;
}

static uint64_t load_u(const void *p, uint32_t size)
{
    switch (size) {
    case 1: return *(const uint8_t *)p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}
static void store_u(void *p, uint64_t v, uint32_t size)
{
    switch (size) {
    case 1: *(uint8_t *)p = (uint8_t)v; break;
    case 2: { uint16_t w = (uint16_t)v; memcpy(p, &w, 2); break; }
    case 4: { uint32_t w = (uint32_t)v; memcpy(p, &w, 4); break; }
    default: memcpy(p, &v, 8);
    }
}

void mms__ix_norm(unsigned kind, uint32_t size, const void *val, uint8_t *out)
{
    uint64_t v, sign;
    switch (mms_kind_class(kind)) {
    case 'i':
        sign = UINT64_C(1) << (8 * size - 1);
        put_be(out, load_u(val, size) ^ sign, size);
        return;
    case 'u': case 'r':
        put_be(out, load_u(val, size), size);
        return;
    case 'b':
        out[0] = *(const uint8_t *)val != 0;
        return;
    case 'f':
        v = load_u(val, size);
        sign = UINT64_C(1) << (8 * size - 1);
        if (size == 4) {
            float f;
            memcpy(&f, val, 4);
            if (f != f)
                v = 0x7fc00000u;
            else if (f == 0)
                v = 0;
        } else {
            double d;
            memcpy(&d, val, 8);
            if (d != d)
                v = UINT64_C(0x7ff8000000000000);
            else if (d == 0)
                v = 0;
        }
        v = v & sign ? ~v & (sign | (sign - 1)) : v | sign;
        put_be(out, v, size);
        return;
    default: /* chars */
        memcpy(out, val, size);
    }
}

void mms__ix_denorm(unsigned kind, uint32_t size, const uint8_t *key, void *val)
{
    uint64_t v = mms_kind_class(kind) == 'c' || mms_kind_class(kind) == 'b' ? 0 : get_be(key, size);
    uint64_t sign = size < 8 && size ? UINT64_C(1) << (8 * size - 1) : UINT64_C(1) << 63;
    switch (mms_kind_class(kind)) {
    case 'i':
        store_u(val, v ^ sign, size);
        return;
    case 'u': case 'r':
        store_u(val, v, size);
        return;
    case 'b':
        *(uint8_t *)val = key[0];
        return;
    case 'f':
        v = v & sign ? v & ~sign : ~v & (sign | (sign - 1));
        store_u(val, v, size);
        return;
    default:
        memcpy(val, key, size);
    }
}

/* A descriptor's key as mms__ix_norm can read it from a record of
 * record_size bytes: a kind that can be a key, of its size (chars: up to
 * MMS__IX_MAX_KEY bytes), inside the record. A damaged descriptor would
 * have it shift past 64 bits or read past the key. */
static bool key_fits(const struct mms__ixdesc *d, uint32_t record_size)
{
    uint32_t K = d->key_size, ks = mms_kind_size(d->key_kind);
    int cls = mms_kind_class(d->key_kind);
    return cls && cls != 'h' && K && (ks ? K == ks : K <= MMS__IX_MAX_KEY) &&
           d->key_off <= record_size && K <= record_size - d->key_off;
}

/* The key of a record in its index form. */
static void rec_key(const struct mms__ixdesc *d, const char *rec, uint8_t *out)
{
    mms__ix_norm(d->key_kind, d->key_size, rec + d->key_off, out);
}

/* For error messages: the key as text. */
static void key_text(unsigned kind, uint32_t K, const uint8_t *key, char *buf, size_t cap)
{
    union { int64_t i; uint64_t u; double d; float f; uint8_t b[8]; } v = {0};
    char val[MMS__IX_MAX_KEY + 1];
    switch (mms_kind_class(kind)) {
    case 'i':
        mms__ix_denorm(kind, K, key, &v);
        v.i = K == 1 ? (int8_t)v.u : K == 2 ? (int16_t)v.u : K == 4 ? (int32_t)v.u : v.i;
        snprintf(buf, cap, "%lld", (long long)v.i);
        return;
    case 'u': case 'r': case 'b':
        mms__ix_denorm(kind, K, key, &v);
        snprintf(buf, cap, "%llu", (unsigned long long)v.u);
        return;
    case 'f':
        mms__ix_denorm(kind, K, key, &v);
        snprintf(buf, cap, "%.17g", K == 4 ? (double)v.f : v.d);
        return;
    default:
        memcpy(val, key, K);
        val[K] = 0;
        snprintf(buf, cap, "\"%s\"", val);
    }
}

/* ------------------------------------------------------------------------
 * Descriptors
 * ------------------------------------------------------------------------ */
struct mms__ixdesc *mms__ixdescs(const mms_store *s, const struct mms__tabent *e)
{
    if (!e->nindexes || e->nindexes > MMS__MAX_FIELDS ||
        !mms__heap_range(s, e->indexes, (uint64_t)e->nindexes * sizeof(struct mms__ixdesc), 8))
        return NULL;
    return mms_deref(s, e->indexes);
}

struct mms__ixdesc *mms__ixdesc_named(const mms_store *s, const struct mms__tabent *e,
                                      const char *field)
{
    struct mms__ixdesc *d = mms__ixdescs(s, e);
    for (uint32_t k = 0; d && k < e->nindexes; k++)
        if (strncmp(d[k].field, field, sizeof d[k].field) == 0)
            return &d[k];
    return NULL;
}

/* A hash index's nslots fits the view's region (a power of 2). */
static inline bool slots_fit(const struct mms__ixview *v, uint64_t ns)
{
    return ns && !(ns & (ns - 1)) && ns <= v->max_slots;
}

/* Missing values (FORMAT §2.7): the bitmaps are table.c's to write; an
 * index reads them, as the key's record has no entry when it is missing. */
struct mms__nullbits *mms__nulls_of(const mms_store *s, const struct mms__tabent *e, uint32_t k)
{
    if (!e->nulls || k >= e->nfields ||
        !mms__heap_range(s, e->nulls, (uint64_t)e->nfields * sizeof(struct mms__nullbits), 8))
        return NULL;
    struct mms__nullbits *nb = (struct mms__nullbits *)mms_deref(s, e->nulls) + k;
    if (nb->bits && (nb->nbits % 64 || !mms__heap_range(s, nb->bits, nb->nbits / 8, 8)))
        return NULL;
    return nb;
}

/* The missing-value bitmap of index d's field (*nbits its bits; NULL and 0
 * when none: no key is missing). A table that never had a missing value
 * pays one test (the commit's upkeep asks once a changed record). */
static const uint64_t *key_nulls(const mms_store *s, const struct mms__tabent *e,
                                 const struct mms__ixdesc *d, uint64_t *nbits)
{
    *nbits = 0;
    if (!e->nulls)
        return NULL;
    const struct mms__fdesc *f = mms__fdesc_named(s, e, d->field);
    const struct mms__nullbits *nb =
        f ? mms__nulls_of(s, e, (uint32_t)(f - mms__fdescs(s, e))) : NULL;
    *nbits = nb && nb->bits ? nb->nbits : 0;
    return *nbits ? mms_deref(s, nb->bits) : NULL;
}

static bool bit_in(const uint64_t *b, uint64_t nbits, uint64_t i)
{
    return i < nbits && (b[i / 64] >> (i % 64) & 1);
}

/* ------------------------------------------------------------------------
 * Reading an index (no checks trusted: every page number and count is
 * bounded before use).
 * ------------------------------------------------------------------------ */
/* The header page of index d, or NULL when d names no index region. */
static struct mms__ixhdr *hdr_of(const mms_store *s, const struct mms__ixdesc *d)
{
    const struct mms__rent *rt = mms__rtab(s);
    uint32_t id = d->region;
    if (id == 0 || id >= mms__hdr(s)->nregions || id >= s->nmapped || rt[id].kind != MMS__RK_INDEX ||
        !s->view.base[id] || s->reg[id].mapped < PG || rt[id].size < PG)
        return NULL;
    return (struct mms__ixhdr *)(void *)s->view.base[id];
}

int mms__ixview_get(const mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                    struct mms__ixview *v)
{
    const struct mms__rent *rt = mms__rtab(s);
    uint32_t id = d->region;
    const struct mms__ixhdr *h = hdr_of(s, d);
    if (!h)
        return MMS__CORRUPT("table %s: the index on %.47s names region %u, not an index region",
                            e->name, d->field, id);
    uint32_t K = d->key_size;
    bool hash = d->kind == MMS__IX_HASH, covers = h->version == MMS__IX_VERSION_COVER;
    uint32_t C = covers ? h->cover_size : 0;
    uint32_t E = (hash ? 8 + (uint32_t)mms__round_up(K, 8) : K + 8) + (covers ? 8 : 0);
    if (h->magic != MMS__IX_MAGIC || h->kind != d->kind || h->key_size != K ||
        h->entry_size != E || K == 0 || K > MMS__IX_MAX_KEY)
        return MMS__CORRUPT("table %s: the index on %.47s: its header page is damaged", e->name,
                            d->field);
    if (!key_fits(d, e->record_size))
        return MMS__CORRUPT("table %s: the index on %.47s: a key of kind %u, %u bytes at %u, "
                            "in records of %u", e->name, d->field, d->key_kind, K, d->key_off,
                            e->record_size);
    if (hash && h->version != MMS__IX_VERSION && !covers)
        return mms__fail(MMS_EVERSION, "table %s: the hash index on %.47s has format version %u, "
                         "this library reads %u and %u: drop it and create it again", e->name,
                         d->field, h->version, MMS__IX_VERSION, MMS__IX_VERSION_COVER);
    /* Version 2 slots (leaf entries) hold copies of the field the
     * descriptor names; version 1 ones of none (ordered: any version but
     * 2, FORMAT §2.8). */
    if (covers != (d->cover[0] != 0) ||
        (covers && (C == 0 || C > 8 || (uint64_t)h->cover_off + C > e->record_size)))
        return MMS__CORRUPT("table %s: the index on %.47s: its covered field is damaged",
                            e->name, d->field);
    v->kind = d->kind;
    v->flags = d->flags;
    v->check = true;
    v->K = K;
    v->E = E;
    v->C = C;
    v->L = K + 8;
    v->cover_off = covers ? h->cover_off : 0;
    v->key_kind = d->key_kind;
    v->cls = mms_kind_class(d->key_kind);
    v->key_off = d->key_off;
    v->region = id;
    v->ix = s->view.base[id];
    v->ix_bytes = s->reg[id].mapped < rt[id].size ? s->reg[id].mapped : rt[id].size;
    if (s->state == MMS__ST_WRITE && s->reg[id].mapped > v->ix_bytes)
        v->ix_bytes = s->reg[id].mapped; /* the writer's view may be ahead */
    v->rs = e->record_size;
    v->recs = e->region < s->nmapped ? s->view.base[e->region] : NULL;
    /* A damaged bitmap (mms_verify says so) is taken for none. */
    bool tomb = e->tomb_bits % 64 == 0 && mms__heap_range(s, e->tomb, e->tomb_bits / 8, 8);
    v->tomb = tomb ? mms_deref(s, e->tomb) : NULL;
    v->tomb_bits = tomb ? e->tomb_bits : 0;
    v->nulls = key_nulls(s, e, d, &v->null_bits);
    /* Written before missing keys lost their entries, it may hold some
     * where the field has missing values: until the next commit builds it
     * again (mms__ix_commit_begin), its answers are checked against the
     * records, as a writer's are. */
    v->stale = !(h->flags & MMS__IXH_NO_MISSING) && v->nulls;
    uint64_t mapped = e->region < s->nmapped ? s->reg[e->region].mapped / e->record_size : 0;
    v->count = e->count < mapped ? e->count : mapped;
    v->max_slots = (v->ix_bytes - PG) / E;
    v->lcap = (PG - 32) / E;
    v->icap = (PG - 40) / (v->L + 8);
    /* A hash index's slots as of this view, checked once here: a read
     * transaction's finds take them as they are (mms__ix_probe8). */
    v->mask = hash && slots_fit(v, h->nslots) ? h->nslots - 1 : 0;
    return 0;
}

static const struct mms__ixhdr *vhdr(const struct mms__ixview *v)
{
    return (const void *)v->ix;
}

/* ---- hash ----
 * The slot format and the get's probe are in internal.h (mms__ix_probe8,
 * "Hash slots"). */
static uint64_t slot_w(const char *slot)
{
    uint64_t w;
    memcpy(&w, slot, 8);
    return w;
}

/* The key of record rec in v's form (8-byte integers inline). */
static inline void view_key(const struct mms__ixview *v, const char *rec, uint8_t *out)
{
    if (v->K == 8 && (v->cls == 'u' || v->cls == 'i' || v->cls == 'r')) {
        uint64_t w;
        memcpy(&w, rec + v->key_off, 8);
        w = __builtin_bswap64(v->cls == 'i' ? w ^ (UINT64_C(1) << 63) : w);
        memcpy(out, &w, 8);
        return;
    }
    mms__ix_norm(v->key_kind, v->K, rec + v->key_off, out);
}

bool mms__ix_holds(const struct mms__ixview *v, uint64_t rec, const uint8_t *nkey)
{
    uint8_t cur[MMS__IX_MAX_KEY];
    view_key(v, v->recs + rec * v->rs, cur);
    return memcmp(cur, nkey, v->K) == 0 && (!v->check || mms__ix_held(v, rec));
}

/* The record slot sl (whose word is w) names for nkey (hash h), or
 * UINT64_MAX: another key, a failed check, a record past the table, or
 * (v->check) a record that no longer holds nkey (mms__ix_holds). */
static inline uint64_t slot_match(const struct mms__ixview *v, const char *sl, uint64_t w,
                                  uint64_t h, const uint8_t *nkey)
{
    uint64_t r1 = w & MMS__IX_SLOT_REC;
    if (v->K == 8) {
        uint64_t sk, cur;
        memcpy(&sk, sl + 8, 8);
        memcpy(&cur, nkey, 8);
        if (sk != cur || w != mms__ix_slot_word(h, r1) || r1 - 1 >= v->count)
            return UINT64_MAX;
        if (v->check)
            view_key(v, v->recs + (r1 - 1) * v->rs, (uint8_t *)&cur);
        return cur == sk && (!v->check || mms__ix_held(v, r1 - 1)) ? r1 - 1 : UINT64_MAX;
    }
    if (memcmp(sl + 8, nkey, v->K) != 0 || w != mms__ix_slot_word(h, r1) || r1 - 1 >= v->count)
        return UINT64_MAX;
    return !v->check || mms__ix_holds(v, r1 - 1, nkey) ? r1 - 1 : UINT64_MAX;
}

static int slots_ok(const struct mms__ixview *v, uint64_t ns)
{
    if (!slots_fit(v, ns))
        return MMS__CORRUPT("hash index of region %u: %llu slots do not fit it", v->region,
                            (unsigned long long)ns);
    return 0;
}

/* Every live record whose key is nkey: the probe runs to the end of the
 * key's run. */
static int hash_find(const struct mms__ixview *v, const uint8_t *nkey, uint64_t *out, size_t cap,
                     uint64_t *n)
{
    uint64_t ns = vhdr(v)->nslots, h = mms__ix_hash(nkey, v->K), mask = ns - 1;
    *n = 0;
    int r = slots_ok(v, ns);
    if (r)
        return r;
    const char *slots = v->ix + PG;
    for (uint64_t i = h & mask, k = 0; k < ns; i = (i + 1) & mask, k++) {
        const char *sl = slots + i * v->E;
        uint64_t w = slot_w(sl), rec;
        if (!w)
            return 0;
        if ((rec = slot_match(v, sl, w, h, nkey)) == UINT64_MAX)
            continue;
        if (*n < cap)
            out[*n] = rec;
        ++*n;
    }
    return 0;
}

static int hash_first_any(const struct mms__ixview *v, uint64_t ns, const uint8_t *nkey,
                          uint64_t *rec, const char **slot) __attribute__((noinline));

/* mms_index_find on a hash index wants any one record, so the probe stops
 * at the first live match instead of running on to the end of the run
 * (hash_find counts them all: at 3/4 load most of a probe is past the
 * match, and its length is what the branch predictor cannot guess). A
 * slot is 16 bytes for 8-byte keys (24 with a covered value) and the slots
 * start on a page, so a probe mostly reads one cache line. In a read
 * transaction that line is the whole lookup: the slot holds the key and
 * its checked record index (and the covered value), and table and index
 * are of one commit; the record is not read (its cache miss, waited for
 * before the next get could start, was half the time of a get:
 * bench/results/index.md). Elsewhere (v->check) the record's key is
 * compared too (hash_first_any). An 8-byte key in a read transaction
 * takes the get's own probe (mms__ix_probe8), as lookup.c's short path
 * does inline, and the general one only past a damaged slot. *rec is
 * written only when the key is found: a miss leaves it (mms_index_find). */
static int hash_slot(const struct mms__ixview *v, const uint8_t *nkey, uint64_t *rec,
                     const char **sl)
{
    uint64_t nk, r8;
    if (v->K == 8 && !v->check && v->mask) {
        memcpy(&nk, nkey, 8);
        *sl = v->E == 16 ? mms__ix_probe8(v, nk, 16, &r8) : mms__ix_probe8(v, nk, 24, &r8);
        if (!*sl)
            return MMS_ENOTFOUND;
        if (r8 != UINT64_MAX) {
            *rec = r8;
            return 0;
        }
    }
    return hash_first_any(v, vhdr(v)->nslots, nkey, rec, sl);
}

int mms__ix_hash_first(const struct mms__ixview *v, const uint8_t *nkey, uint64_t *rec)
{
    const char *sl;
    return hash_slot(v, nkey, rec, &sl);
}

/* The covered value is the slot's copy where the slot is the answer (a
 * read transaction), the record's own field where the record is read
 * anyway (v->check: the transaction may have changed it since the last
 * commit, and the record is what the caller would read). */
int mms__ix_hash_cover(const struct mms__ixview *v, const uint8_t *nkey, uint64_t *rec,
                       void *value)
{
    const char *sl;
    assert(v->C);
    int r = hash_slot(v, nkey, rec, &sl);
    if (!r)
        mms__ix_copy_cover(value, v->check ? v->recs + *rec * v->rs + v->cover_off
                                           : sl + v->E - 8, v->C);
    return r;
}

static int hash_first_any(const struct mms__ixview *v, uint64_t ns, const uint8_t *nkey,
                          uint64_t *rec, const char **slot)
{
    uint64_t mask = ns - 1;
    uint64_t h = v->K == 8 ? mms__ix_hash(nkey, 8) : mms__ix_hash(nkey, v->K); /* 8 unrolled */
    int r = slots_ok(v, ns);
    if (r)
        return r;
    const char *slots = v->ix + PG;
    for (uint64_t i = h & mask, k = 0; k < ns; i = (i + 1) & mask, k++) {
        const char *sl = slots + i * v->E;
        uint64_t w = slot_w(sl), m;
        if (!w)
            return MMS_ENOTFOUND;
        if ((m = slot_match(v, sl, w, h, nkey)) != UINT64_MAX) {
            *rec = m;
            if (slot)
                *slot = sl;
            return 0;
        }
    }
    return MMS_ENOTFOUND;
}

/* A batch of 8-byte keys: every home slot is asked for first, then each
 * probe runs (its line on the way or there) and asks for the record it
 * finds (the caller reads it next); with v->check each record is then
 * compared. One wait for a batch's slots, where single finds wait once per
 * key. A candidate whose record no longer holds the key goes the slow way
 * (hash_first: there may be another entry for the key further on). */
int mms__ix_hash_batch8(const struct mms__ixview *v, const uint64_t *nkeys, size_t n,
                        uint64_t *rec)
{
    uint64_t ns = vhdr(v)->nslots;
    uint32_t E = v->E;
    if (!(v->K == 8 && (v->cls == 'u' || v->cls == 'i' || v->cls == 'r')))
        return 1;
    int r = slots_ok(v, ns);
    if (r)
        return r;
    const char *slots = v->ix + PG;
    uint64_t mask = ns - 1, h[MMS__IX_BATCH];
    assert(n <= MMS__IX_BATCH);
    for (size_t j = 0; j < n; j++) {
        h[j] = mms__ix_hash((const uint8_t *)&nkeys[j], 8);
        __builtin_prefetch(slots + (h[j] & mask) * E);
    }
    for (size_t j = 0; j < n; j++) {
        rec[j] = UINT64_MAX;
        uint64_t i = h[j] & mask;
        for (uint64_t k = 0; k < ns; k++, i = (i + 1) & mask) {
            uint64_t w, sk, r1;
            memcpy(&w, slots + i * E, 8);
            if (!w)
                break;
            memcpy(&sk, slots + i * E + 8, 8);
            r1 = w & MMS__IX_SLOT_REC;
            if (sk == nkeys[j] && w == mms__ix_slot_word(h[j], r1) && r1 - 1 < v->count) {
                rec[j] = r1 - 1;
                __builtin_prefetch(v->recs + (r1 - 1) * v->rs + v->key_off);
                break;
            }
        }
    }
    for (size_t j = 0; j < n && v->check; j++) {
        uint64_t cur;
        if (rec[j] == UINT64_MAX)
            continue;
        view_key(v, v->recs + rec[j] * v->rs, (uint8_t *)&cur);
        if (cur == nkeys[j] && mms__ix_held(v, rec[j]))
            continue;
        r = mms__ix_hash_first(v, (const uint8_t *)&nkeys[j], &rec[j]);
        if (r == MMS_ENOTFOUND)
            rec[j] = UINT64_MAX;
        else if (r)
            return r;
    }
    return 0;
}

/* ---- ordered ---- */
static const struct mms__ixpage *vpage(const struct mms__ixview *v, uint64_t p, int type)
{
    if (p == 0 || p >= vhdr(v)->nslots || (p + 1) * PG > v->ix_bytes)
        return NULL;
    const struct mms__ixpage *pg = (const void *)(v->ix + p * PG);
    if (pg->magic != MMS__IXP_MAGIC || (type && pg->type != type))
        return NULL;
    uint32_t cap = pg->type == MMS__IXP_LEAF ? v->lcap : v->icap;
    if ((pg->type != MMS__IXP_LEAF && pg->type != MMS__IXP_INNER) || pg->n > cap)
        return NULL;
    return pg;
}
/* Leaves hold entries of E bytes: the L compared (key, record), then in
 * a covering index the covered copy; inner pages separators of L bytes. */
static uint32_t leaf_cap(uint32_t E)
{
    return (PG - 32) / E;
}
static uint32_t inner_cap(uint32_t L)
{
    return (PG - 40) / (L + 8);
}
static const uint8_t *leaf_ent(const void *pg, uint32_t E, uint32_t i)
{
    return (const uint8_t *)pg + 32 + (size_t)i * E;
}
static uint64_t *inner_child(const void *pg)
{
    return (uint64_t *)(void *)((char *)pg + 32);
}
static const uint8_t *inner_sep(const void *pg, uint32_t L, uint32_t i)
{
    return (const uint8_t *)pg + 32 + 8 * (inner_cap(L) + 1) + (size_t)i * L;
}

/* The record index of an entry (big-endian after the K key bytes). */
static inline uint64_t ent_rec(const uint8_t *e, uint32_t K)
{
    uint64_t r;
    memcpy(&r, e + K, 8);
    return __builtin_bswap64(r);
}

/* Entries compare as their first L bytes; 16 (8-byte keys) as two
 * big-endian words. */
static inline int ent_cmp(const uint8_t *a, const uint8_t *b, uint32_t L)
{
    if (L == 16) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x == y) {
            memcpy(&x, a + 8, 8);
            memcpy(&y, b + 8, 8);
        }
        x = __builtin_bswap64(x);
        y = __builtin_bswap64(y);
        return x < y ? -1 : x > y;
    }
    return memcmp(a, b, L);
}

/* Separators <= ent (the child to go down). */
static uint32_t upper_bound_sep(const void *pg, uint32_t n, uint32_t L, const uint8_t *ent)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (ent_cmp(inner_sep(pg, L, mid), ent, L) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
/* Entries < ent. */
static uint32_t lower_bound_leaf(const void *pg, uint32_t n, uint32_t E, uint32_t L,
                                 const uint8_t *ent)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (ent_cmp(leaf_ent(pg, E, mid), ent, L) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A binary search over a page waits for a new cache line at each of its
 * first steps (entries are 4 to a line), one after the other. The lines
 * of its first three steps are asked for together instead: one wait for
 * three. */
static inline void prefetch_search(const uint8_t *a, uint32_t n, uint32_t E)
{
    for (uint32_t k = 1; k < 8; k++)
        __builtin_prefetch(a + (size_t)(n * k / 8) * E);
}

/* The leaf where ent belongs (which = 0), or the first (-1) or last (1). */
static int descend(const struct mms__ixview *v, const uint8_t *ent, int which, uint64_t *leaf)
{
    const struct mms__ixhdr *h = vhdr(v);
    uint64_t p = h->root;
    if (h->depth == 0 || h->depth > MAXDEPTH)
        return MMS__CORRUPT("ordered index of region %u: depth %u", v->region, h->depth);
    for (uint32_t l = h->depth; l > 1; l--) {
        const struct mms__ixpage *pg = vpage(v, p, MMS__IXP_INNER);
        if (!pg)
            return MMS__CORRUPT("ordered index of region %u: inner page %llu is damaged",
                                v->region, (unsigned long long)p);
        if (!which)
            prefetch_search(inner_sep(pg, v->L, 0), pg->n, v->L);
        uint32_t i = which < 0 ? 0 : which > 0 ? pg->n : upper_bound_sep(pg, pg->n, v->L, ent);
        p = inner_child(pg)[i];
    }
    if (!vpage(v, p, MMS__IXP_LEAF))
        return MMS__CORRUPT("ordered index of region %u: leaf %llu is damaged", v->region,
                            (unsigned long long)p);
    *leaf = p;
    return 0;
}

/* p no longer names an entry (r: why). */
static int unposition(struct mms__ixpos *p, int r)
{
    p->page = 0;
    p->n = 0;
    return r;
}

/* Move p to a valid entry: forward (dir 1) from p->pos, or backward; its
 * page's entries and count into p (checked here once a page: a step
 * within it trusts them). An error unpositions p. */
static int settle_pos(const struct mms__ixview *v, struct mms__ixpos *p, int dir)
{
    uint64_t guard = vhdr(v)->nslots + 1;
    for (;;) {
        const struct mms__ixpage *pg = vpage(v, p->page, MMS__IXP_LEAF);
        if (!pg)
            return unposition(p, MMS__CORRUPT("ordered index of region %u: leaf %llu is damaged",
                                              v->region, (unsigned long long)p->page));
        if (p->pos >= 0 && p->pos < pg->n) {
            p->ents = leaf_ent(pg, v->E, 0);
            p->n = pg->n;
            return 0;
        }
        uint64_t to = dir > 0 ? pg->next : pg->prev;
        if (!to)
            return unposition(p, MMS_ENOTFOUND);
        if (!guard--)
            return unposition(p, MMS__CORRUPT("ordered index of region %u: its leaves loop",
                                              v->region));
        p->page = to;
        const struct mms__ixpage *np = vpage(v, to, MMS__IXP_LEAF);
        if (!np)
            return unposition(p, MMS__CORRUPT("ordered index of region %u: leaf %llu is damaged",
                                              v->region, (unsigned long long)to));
        p->pos = dir > 0 ? 0 : (int64_t)np->n - 1;
    }
}

int mms__ix_seek(const struct mms__ixview *v, int op, const uint8_t *nkey, struct mms__ixpos *p)
{
    uint8_t ent[MMS__IX_MAX_KEY + 8];
    p->page = 0;
    p->n = 0;
    if (v->kind != MMS__IX_ORDERED)
        return mms__fail(MMS_ENOTSUP, "a hash index has no order: cursors need an ordered index");
    if (nkey) {
        memcpy(ent, nkey, v->K);
        /* GE, LT: from (key, 0); GT, LE: past (key, every record). */
        memset(ent + v->K, op == MMS__SEEK_GE || op == MMS__SEEK_LT ? 0 : 0xff, 8);
    }
    int which = op == MMS__SEEK_FIRST ? -1 : op == MMS__SEEK_LAST ? 1 : 0;
    int r = descend(v, ent, which, &p->page);
    if (r)
        return r;
    const struct mms__ixpage *pg = vpage(v, p->page, MMS__IXP_LEAF);
    if (op == MMS__SEEK_FIRST) {
        p->pos = 0;
        return settle_pos(v, p, 1);
    }
    if (op == MMS__SEEK_LAST) {
        p->pos = (int64_t)pg->n - 1;
        return settle_pos(v, p, -1);
    }
    prefetch_search(leaf_ent(pg, v->E, 0), pg->n, v->E);
    p->pos = lower_bound_leaf(pg, pg->n, v->E, v->L, ent);
    if (op == MMS__SEEK_GE || op == MMS__SEEK_GT)
        return settle_pos(v, p, 1);
    /* LT, LE: the entry before the first one at or past ent. */
    p->pos--;
    return settle_pos(v, p, -1);
}

void mms__ix_recheck(const struct mms__ixview *v, struct mms__ixpos *p)
{
    const struct mms__ixpage *pg = p->page ? vpage(v, p->page, MMS__IXP_LEAF) : NULL;
    p->page = pg ? p->page : 0;
    p->ents = pg ? leaf_ent(pg, v->E, 0) : NULL;
    p->n = pg ? pg->n : 0;
}

static __attribute__((noinline)) int rec_past_end(const struct mms__ixview *v, uint64_t r)
{
    return MMS__CORRUPT("ordered index of region %u: record %llu is past the table's end",
                        v->region, (unsigned long long)r);
}

/* The entry at p (a position within its page): its record, checked to be
 * in the table, and where its key is (rec, key may be NULL). */
static inline int entry_at(const struct mms__ixview *v, const struct mms__ixpos *p, uint64_t *rec,
                           const uint8_t **key)
{
    const uint8_t *e = p->ents + (size_t)p->pos * v->E;
    uint64_t r = ent_rec(e, v->K);
    if (__builtin_expect(r >= v->count, 0))
        return rec_past_end(v, r);
    if (rec)
        *rec = r;
    if (key)
        *key = e;
    return 0;
}

int mms__ix_entry(const struct mms__ixview *v, const struct mms__ixpos *p, uint64_t *rec,
                  const uint8_t **key)
{
    if (!p->page || (uint64_t)p->pos >= p->n)
        return MMS_ENOTFOUND;
    return entry_at(v, p, rec, key);
}

int mms__ix_entry_cover(const struct mms__ixview *v, const struct mms__ixpos *p, void *value)
{
    uint64_t rec = 0;
    assert(v->C);
    if ((uint64_t)p->pos >= p->n) /* n is 0 without a position */
        return MMS_ENOTFOUND;
    const char *e = (const char *)p->ents + (size_t)p->pos * v->E;
    if (!v->check) { /* the copy is of the record's commit */
        mms__ix_copy_cover(value, e + v->L, v->C);
        return 0;
    }
    /* As a covering hash index's get (mms__ix_hash_cover): a writer's
     * transaction may have changed the record since the last commit. */
    int r = entry_at(v, p, &rec, NULL);
    if (!r)
        mms__ix_copy_cover(value, v->recs + rec * v->rs + v->cover_off, v->C);
    return r;
}

void mms__ix_touch(const struct mms__ixview *v)
{
    /* A volatile read each: the compiler may not drop the loop, and the
     * bytes read do not matter. */
    for (uint64_t off = 0; off < v->ix_bytes; off += PG)
        (void)*(const volatile char *)(v->ix + off);
}

/* Fetch the record of entry i of p's page, i past it: of the next page
 * (or the previous). Not inline: once a page (gcc: nor cloned; clang knows
 * no noipa). */
#ifdef __clang__
#define ONCE_A_PAGE __attribute__((noinline))
#else
#define ONCE_A_PAGE __attribute__((noipa))
#endif
static ONCE_A_PAGE void prefetch_beyond(const struct mms__ixview *v,
                                                      const struct mms__ixpos *p, int64_t i)
{
    const struct mms__ixpage *pg = vpage(v, p->page, MMS__IXP_LEAF), *q;
    q = pg ? vpage(v, i > 0 ? pg->next : pg->prev, MMS__IXP_LEAF) : NULL;
    i += i > 0 ? -(int64_t)p->n : q ? q->n : 0;
    if (!q || i < 0 || i >= q->n)
        return;
    uint64_t r = ent_rec(leaf_ent(q, v->E, (uint32_t)i), v->K);
    if (r < v->count)
        __builtin_prefetch(v->recs + r * v->rs);
}

/* Records read through a cursor are at random places in the table, each a
 * cache miss (and, cold, a TLB miss) the reader would wait for one after
 * the other; entries up to MMS__IX_AHEAD on are in the leaf already, so
 * their records are fetched ahead, and the misses overlap. A prefetch never
 * faults; a damaged entry or page is skipped (mms__ix_entry reports it). */
static inline void prefetch_recs(const struct mms__ixview *v, const struct mms__ixpos *p, int dir,
                                 uint32_t from, uint32_t to)
{
    if (!p->page || !v->recs || !from)
        return;
    for (uint32_t d = from; d <= to; d++) {
        int64_t i = p->pos + (dir > 0 ? (int64_t)d : -(int64_t)d);
        if ((uint64_t)i >= p->n) {
            prefetch_beyond(v, p, i);
            continue;
        }
        uint64_t r = ent_rec(p->ents + (size_t)i * v->E, v->K);
        if (r < v->count)
            __builtin_prefetch(v->recs + r * v->rs);
    }
}

void mms__ix_prefetch(const struct mms__ixview *v, const struct mms__ixpos *p, int dir,
                      uint32_t from, uint32_t to)
{
    prefetch_recs(v, p, dir, from, to);
}

/* mms__ix_next onto another page. */
static __attribute__((noinline)) int next_page(const struct mms__ixview *v, struct mms__ixpos *p,
                                               int dir, uint32_t ahead, uint64_t *rec,
                                               const uint8_t **key)
{
    if (!p->page)
        return MMS_ENOTFOUND;
    int r = settle_pos(v, p, dir);
    if (r)
        return r;
    prefetch_recs(v, p, dir, ahead, ahead);
    r = entry_at(v, p, rec, key);
    return r ? unposition(p, r) : 0;
}

/* A step within a page (most steps) is a compare and the entry's bytes,
 * no page header read: the page was checked when p came to it
 * (settle_pos), and p->n is 0 when p->page is. An error unpositions p. */
int mms__ix_next(const struct mms__ixview *v, struct mms__ixpos *p, int dir, uint32_t ahead,
                 uint64_t *rec, const uint8_t **key)
{
    int64_t i = p->pos + (dir > 0 ? 1 : -1);
    p->pos = i;
    if (__builtin_expect((uint64_t)i >= p->n, 0))
        return next_page(v, p, dir, ahead, rec, key);
    prefetch_recs(v, p, dir, ahead, ahead);
    int r = entry_at(v, p, rec, key);
    return r ? unposition(p, r) : 0;
}

static int ordered_find(const struct mms__ixview *v, const uint8_t *nkey, uint64_t *out,
                        size_t cap, uint64_t *n)
{
    struct mms__ixpos p;
    const uint8_t *k;
    uint64_t rec;
    *n = 0;
    int r = mms__ix_seek(v, MMS__SEEK_GE, nkey, &p);
    for (r = r ? r : mms__ix_entry(v, &p, &rec, &k); !r; r = mms__ix_next(v, &p, 1, 0, &rec, &k)) {
        if (memcmp(k, nkey, v->K) != 0)
            return 0;
        if (mms__ix_holds(v, rec, nkey)) {
            if (*n < cap)
                out[*n] = rec;
            ++*n;
        }
    }
    return r == MMS_ENOTFOUND ? 0 : r;
}

int mms__ix_find(const struct mms__ixview *v, const uint8_t *nkey, uint64_t *out, size_t cap,
                 uint64_t *n)
{
    return v->kind == MMS__IX_HASH ? hash_find(v, nkey, out, cap, n)
                                   : ordered_find(v, nkey, out, cap, n);
}

/* ------------------------------------------------------------------------
 * Writing an index (the writer, inside a write transaction)
 * ------------------------------------------------------------------------ */
struct ix {
    mms_store *s;
    const struct mms__tabent *e;
    struct mms__ixdesc *d;
    uint32_t id, K, E, L, C, cover_off; /* L: ordered, compared bytes; C: covered (0: none) */
    char *base;
    bool moving; /* a record's entry moves to another key (ix_record): */
    int delta;   /* ... the change of the count of entries, not yet written */
    const uint64_t *nulls; /* the key field's missing-value bitmap (mms__ixview) */
    uint64_t null_bits;
};


/* A covered field as an index is built with it (size 0: none). */
struct cover {
    uint32_t kind, off, size;
};

static struct mms__ixhdr *ihdr(const struct ix *x)
{
    return (struct mms__ixhdr *)(void *)x->base;
}

/* d entries more in x: written to the header at once, or while an entry
 * moves summed in x->delta (ix_record writes it if it is not 0). */
static void count_entries(struct ix *x, int d)
{
    if (x->moving)
        x->delta += d;
    else
        ihdr(x)->entries += (uint64_t)(int64_t)d;
}

static int ix_open(mms_store *s, const struct mms__tabent *e, struct mms__ixdesc *d, struct ix *x)
{
    struct mms__ixview v;
    int r = mms__ixview_get(s, e, d, &v);
    if (r)
        return r;
    x->s = s;
    x->e = e;
    x->d = d;
    x->id = d->region;
    x->K = v.K;
    x->E = v.E;
    x->L = v.L;
    x->C = v.C;
    x->cover_off = v.cover_off;
    x->base = s->view.base[x->id];
    x->moving = false;
    x->delta = 0;
    x->nulls = v.nulls;
    x->null_bits = v.null_bits;
    return 0;
}

static void ix_view(const struct ix *x, struct mms__ixview *v)
{
    mms__ixview_get(x->s, x->e, x->d, v);
    v->ix_bytes = x->s->reg[x->id].mapped;
}

/* Make the region hold bytes (fresh space past the committed size). */
static int ix_size(struct ix *x, uint64_t bytes)
{
    int r = mms__map_grow(x->s, x->id, bytes);
    if (r)
        return r;
    mms__rtab(x->s)[x->id].size = bytes;
    x->s->tab_epoch++; /* lookup handles' views of the region are stale */
    return 0;
}

/* ---- hash ---- */
static char *hslot(const struct ix *x, uint64_t i)
{
    return x->base + PG + i * x->E;
}

/* Place entry (key, rec) in a table of ns slots at base (no duplicates
 * check), with the covered value cover (8 bytes, in the slot's last 8;
 * NULL: the slots cover nothing). MMS_ENOTSUP when the run is too long. */
static int hash_place(char *slots, uint64_t ns, uint32_t E, uint32_t K, const uint8_t *key,
                      uint64_t rec, const uint8_t *cover)
{
    uint64_t h = mms__ix_hash(key, K), i = h & (ns - 1);
    for (uint32_t k = 0; slot_w(slots + i * E); k++) {
        if (k > PROBE_MAX)
            return MMS_ENOTSUP;
        i = (i + 1) & (ns - 1);
    }
    uint64_t w = mms__ix_slot_word(h, rec + 1);
    memcpy(slots + i * E, &w, 8);
    memset(slots + i * E + 8, 0, E - 8);
    memcpy(slots + i * E + 8, key, K);
    if (cover)
        memcpy(slots + i * E + E - 8, cover, 8);
    return 0;
}

/* A run of slots past the probe's bound: the records of one key, or of
 * a few keys whose runs meet (mmstore.h). */
static int too_long_run(const struct mms__tabent *e, const struct mms__ixdesc *d)
{
    return mms__fail(MMS_ENOTSUP, "table %s: the hash index on %.47s: too many records share a "
                     "key, or a few keys whose slots run into each other (use an ordered "
                     "index for such a field)", e->name, d->field);
}

static int too_many_records(const struct mms__tabent *e, const struct mms__ixdesc *d)
{
    return mms__fail(MMS_ENOTSUP, "table %s: the hash index on %.47s: a hash index holds records "
                     "below 2^40 - 1 only (use an ordered index)", e->name, d->field);
}

static uint64_t hash_slots_for(uint64_t n)
{
    uint64_t ns = 64;
    while (ns * 3 / 4 < n + 1)
        ns *= 2;
    return ns;
}

/* Equal keys take adjacent slots, so at 3/4 load the runs of a hundred
 * keys held by 200 records each meet past PROBE_MAX (they did at 20000
 * records). A build whose run passes it tries again at twice the slots,
 * up to SPREAD_MAX times what the entries need; past that a run is one
 * key's (or a few keys', each held by thousands): MMS_ENOTSUP. */
#define SPREAD_MAX 8

/* The slot holding (key, rec), or UINT64_MAX. */
static uint64_t hash_lookup(const struct ix *x, const uint8_t *key, uint64_t rec)
{
    uint64_t ns = ihdr(x)->nslots, h = mms__ix_hash(key, x->K), w = mms__ix_slot_word(h, rec + 1);
    for (uint64_t i = h & (ns - 1), k = 0; k < ns; i = (i + 1) & (ns - 1), k++) {
        const char *sl = hslot(x, i);
        uint64_t sw = slot_w(sl);
        if (!sw)
            break;
        if (sw == w && memcmp(sl + 8, key, x->K) == 0)
            return i;
    }
    return UINT64_MAX;
}

static int hash_rebuild(struct ix *x, uint64_t ns);

/* Insert (key, rec), or where it is already, bring its covered value up
 * to date (cover: as hash_place). */
static int hash_insert(struct ix *x, const uint8_t *key, uint64_t rec, const uint8_t *cover,
                       bool *did)
{
    *did = false;
    if (rec + 1 > MMS__IX_SLOT_REC)
        return too_many_records(x->e, x->d);
    uint64_t at = hash_lookup(x, key, rec);
    if (at != UINT64_MAX) {
        char *copy = hslot(x, at) + x->E - 8;
        if (cover && memcmp(copy, cover, 8) != 0) {
            memcpy(copy, cover, 8);
            *did = true;
        }
        return 0;
    }
    struct mms__ixhdr *h = ihdr(x);
    if ((h->entries + 1) * 4 > h->nslots * 3) {
        int r = hash_rebuild(x, h->nslots * 2);
        if (r)
            return r;
        h = ihdr(x);
    }
    while (hash_place(x->base + PG, h->nslots, x->E, x->K, key, rec, cover)) {
        /* A run too long: spread the runs over twice the slots (SPREAD_MAX). */
        if (h->nslots >= hash_slots_for(h->entries + 1) * SPREAD_MAX)
            return too_long_run(x->e, x->d);
        int r = hash_rebuild(x, h->nslots * 2);
        if (r)
            return r;
        h = ihdr(x);
    }
    count_entries(x, 1);
    *did = true;
    return 0;
}

/* Backward-shift deletion: the run after the hole moves up where it may. */
static void hash_remove(struct ix *x, const uint8_t *key, uint64_t rec, bool *did)
{
    uint64_t i = hash_lookup(x, key, rec);
    *did = i != UINT64_MAX;
    if (!*did)
        return;
    struct mms__ixhdr *h = ihdr(x);
    uint64_t mask = h->nslots - 1;
    for (uint64_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        char *sj = hslot(x, j);
        if (!slot_w(sj))
            break;
        uint64_t home = mms__ix_hash((const uint8_t *)sj + 8, x->K) & mask;
        /* sj may move to i if its home is not in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        memcpy(hslot(x, i), sj, x->E);
        i = j;
    }
    memset(hslot(x, i), 0, x->E);
    count_entries(x, -1);
}

/* ---- ordered ---- */
static struct mms__ixpage *wpage(const struct ix *x, uint64_t p)
{
    return (struct mms__ixpage *)(void *)(x->base + p * PG);
}
static uint8_t *wleaf_ent(struct mms__ixpage *pg, uint32_t E, uint32_t i)
{
    return (uint8_t *)pg + 32 + (size_t)i * E;
}
static uint8_t *winner_sep(struct mms__ixpage *pg, uint32_t L, uint32_t i)
{
    return (uint8_t *)pg + 32 + 8 * (inner_cap(L) + 1) + (size_t)i * L;
}

static int page_new(struct ix *x, int type, uint64_t *out)
{
    struct mms__ixhdr *h = ihdr(x);
    uint64_t p = h->nslots;
    int r = ix_size(x, (p + 1) * PG);
    if (r)
        return r;
    h = ihdr(x);
    h->nslots = p + 1;
    struct mms__ixpage *pg = wpage(x, p);
    memset(pg, 0, PG);
    pg->type = (uint16_t)type;
    pg->magic = MMS__IXP_MAGIC;
    *out = p;
    return 0;
}

/* An entry: (key, rec), and in a covering index the copy (8 bytes as a
 * slot holds them: cover_copy). */
static void ent_make(uint8_t *ent, const uint8_t *key, uint32_t K, uint64_t rec,
                     const uint8_t *cover)
{
    memcpy(ent, key, K);
    put_be(ent + K, rec, 8);
    if (cover)
        memcpy(ent + K + 8, cover, 8);
}

/* The path from the root to ent's leaf: page and child taken per level. */
struct path {
    uint64_t page[MAXDEPTH];
    uint32_t child[MAXDEPTH];
    uint32_t depth;
};

static int bt_path(struct ix *x, const uint8_t *ent, struct path *pa)
{
    struct mms__ixview v;
    ix_view(x, &v);
    const struct mms__ixhdr *h = ihdr(x);
    if (h->depth == 0 || h->depth > MAXDEPTH)
        return MMS__CORRUPT("table %s: the index on %.47s: depth %u", x->e->name, x->d->field,
                            h->depth);
    uint64_t p = h->root;
    pa->depth = h->depth;
    for (uint32_t l = h->depth; l > 1; l--) {
        const struct mms__ixpage *pg = vpage(&v, p, MMS__IXP_INNER);
        if (!pg)
            return MMS__CORRUPT("table %s: the index on %.47s: page %llu is damaged", x->e->name,
                                x->d->field, (unsigned long long)p);
        uint32_t i = upper_bound_sep(pg, pg->n, x->L, ent);
        pa->page[l - 1] = p;
        pa->child[l - 1] = i;
        p = inner_child(pg)[i];
    }
    if (!vpage(&v, p, MMS__IXP_LEAF))
        return MMS__CORRUPT("table %s: the index on %.47s: leaf %llu is damaged", x->e->name,
                            x->d->field, (unsigned long long)p);
    pa->page[0] = p;
    return 0;
}

/* Insert separator sep with right child q into inner page p at child
 * position i (sep becomes sep[i], q child[i + 1]); split upward as needed. */
static int bt_insert_inner(struct ix *x, struct path *pa, uint32_t level, const uint8_t *sep,
                           uint64_t q)
{
    uint32_t L = x->L, cap = inner_cap(L);
    uint8_t up[MMS__IX_MAX_KEY + 8];
    memcpy(up, sep, L);
    for (;; level++) {
        if (level >= pa->depth) {
            /* The root split: a new root over the two halves. */
            if (pa->depth >= MAXDEPTH)
                return mms__fail(MMS_EFULL, "table %s: the index on %.47s is too deep",
                                 x->e->name, x->d->field);
            uint64_t root;
            int r = page_new(x, MMS__IXP_INNER, &root);
            if (r)
                return r;
            struct mms__ixhdr *h = ihdr(x);
            struct mms__ixpage *rp = wpage(x, root);
            inner_child(rp)[0] = h->root;
            inner_child(rp)[1] = q;
            memcpy(winner_sep(rp, L, 0), up, L);
            rp->n = 1;
            h->root = root;
            h->depth++;
            return 0;
        }
        uint64_t p = pa->page[level];
        uint32_t i = pa->child[level];
        struct mms__ixpage *pg = wpage(x, p);
        uint32_t n = pg->n;
        if (n < cap) {
            memmove(winner_sep(pg, L, i + 1), winner_sep(pg, L, i), (size_t)(n - i) * L);
            memcpy(winner_sep(pg, L, i), up, L);
            uint64_t *ch = inner_child(pg);
            memmove(ch + i + 2, ch + i + 1, (size_t)(n - i) * 8);
            ch[i + 1] = q;
            pg->n = (uint16_t)(n + 1);
            return 0;
        }
        /* Split: n + 1 separators and n + 2 children in scratch. */
        uint8_t *seps = malloc((size_t)(n + 1) * L);
        uint64_t *ch = malloc((size_t)(n + 2) * 8);
        if (!seps || !ch) {
            free(seps);
            free(ch);
            return -ENOMEM;
        }
        memcpy(seps, winner_sep(pg, L, 0), (size_t)i * L);
        memcpy(seps + (size_t)i * L, up, L);
        memcpy(seps + (size_t)(i + 1) * L, winner_sep(pg, L, i), (size_t)(n - i) * L);
        memcpy(ch, inner_child(pg), (size_t)(i + 1) * 8);
        ch[i + 1] = q;
        memcpy(ch + i + 2, inner_child(pg) + i + 1, (size_t)(n - i) * 8);
        uint64_t nq;
        int r = page_new(x, MMS__IXP_INNER, &nq);
        if (r) {
            free(seps);
            free(ch);
            return r;
        }
        pg = wpage(x, p);
        struct mms__ixpage *qp = wpage(x, nq);
        uint32_t total = n + 1, left = total / 2; /* seps: [0, left) stay, left goes up */
        memcpy(winner_sep(pg, L, 0), seps, (size_t)left * L);
        memcpy(inner_child(pg), ch, (size_t)(left + 1) * 8);
        pg->n = (uint16_t)left;
        uint32_t right = total - left - 1;
        memcpy(winner_sep(qp, L, 0), seps + (size_t)(left + 1) * L, (size_t)right * L);
        memcpy(inner_child(qp), ch + left + 1, (size_t)(right + 1) * 8);
        qp->n = (uint16_t)right;
        memcpy(up, seps + (size_t)left * L, L);
        q = nq;
        free(seps);
        free(ch);
    }
}

/* Insert ent, or where (key, rec) is already, bring its covered copy up
 * to date (as hash_insert). */
static int bt_insert(struct ix *x, const uint8_t *ent, bool *did)
{
    struct path pa;
    *did = false;
    int r = bt_path(x, ent, &pa);
    if (r)
        return r;
    uint32_t E = x->E, L = x->L, cap = leaf_cap(E);
    struct mms__ixpage *pg = wpage(x, pa.page[0]);
    uint32_t n = pg->n, i = lower_bound_leaf(pg, n, E, L, ent);
    if (i < n && memcmp(wleaf_ent(pg, E, i), ent, L) == 0) {
        uint8_t *copy = wleaf_ent(pg, E, i) + L;
        if (E > L && memcmp(copy, ent + L, E - L) != 0) {
            memcpy(copy, ent + L, E - L);
            *did = true;
        }
        return 0;
    }
    *did = true;
    if (n < cap) {
        memmove(wleaf_ent(pg, E, i + 1), wleaf_ent(pg, E, i), (size_t)(n - i) * E);
        memcpy(wleaf_ent(pg, E, i), ent, E);
        pg->n = (uint16_t)(n + 1);
        count_entries(x, 1);
        return 0;
    }
    uint64_t q;
    if ((r = page_new(x, MMS__IXP_LEAF, &q)))
        return r;
    pg = wpage(x, pa.page[0]);
    struct mms__ixpage *qp = wpage(x, q);
    /* Link q after pg. */
    qp->next = pg->next;
    qp->prev = pa.page[0];
    if (pg->next)
        wpage(x, pg->next)->prev = q;
    pg->next = q;
    uint32_t left = (n + 1) / 2;
    if (i < left) {
        memcpy(wleaf_ent(qp, E, 0), wleaf_ent(pg, E, left - 1), (size_t)(n - left + 1) * E);
        memmove(wleaf_ent(pg, E, i + 1), wleaf_ent(pg, E, i), (size_t)(left - 1 - i) * E);
        memcpy(wleaf_ent(pg, E, i), ent, E);
    } else {
        uint32_t j = i - left;
        memcpy(wleaf_ent(qp, E, 0), wleaf_ent(pg, E, left), (size_t)j * E);
        memcpy(wleaf_ent(qp, E, j), ent, E);
        memcpy(wleaf_ent(qp, E, j + 1), wleaf_ent(pg, E, i), (size_t)(n - i) * E);
    }
    pg->n = (uint16_t)left;
    qp->n = (uint16_t)(n + 1 - left);
    count_entries(x, 1);
    uint8_t sep[MMS__IX_MAX_KEY + 8];
    memcpy(sep, wleaf_ent(qp, E, 0), L);
    return bt_insert_inner(x, &pa, 1, sep, q);
}

static int bt_remove(struct ix *x, const uint8_t *ent, bool *did)
{
    struct path pa;
    *did = false;
    int r = bt_path(x, ent, &pa);
    if (r)
        return r;
    struct mms__ixpage *pg = wpage(x, pa.page[0]);
    uint32_t n = pg->n, i = lower_bound_leaf(pg, n, x->E, x->L, ent);
    if (i >= n || memcmp(wleaf_ent(pg, x->E, i), ent, x->L) != 0)
        return 0;
    memmove(wleaf_ent(pg, x->E, i), wleaf_ent(pg, x->E, i + 1), (size_t)(n - i - 1) * x->E);
    pg->n = (uint16_t)(n - 1);
    count_entries(x, -1);
    *did = true;
    return 0;
}

static int ix_insert(struct ix *x, const uint8_t *key, uint64_t rec, const uint8_t *cover,
                     bool *did)
{
    if (x->d->kind == MMS__IX_HASH)
        return hash_insert(x, key, rec, cover, did);
    uint8_t ent[MMS__IX_MAX_KEY + 16];
    ent_make(ent, key, x->K, rec, cover);
    return bt_insert(x, ent, did);
}

static int ix_remove(struct ix *x, const uint8_t *key, uint64_t rec, bool *did)
{
    if (x->d->kind == MMS__IX_HASH) {
        hash_remove(x, key, rec, did);
        return 0;
    }
    uint8_t ent[MMS__IX_MAX_KEY + 8];
    ent_make(ent, key, x->K, rec, NULL);
    return bt_remove(x, ent, did);
}

/* ------------------------------------------------------------------------
 * Bulk build: the live records' entries, sorted (ordered) or placed
 * (hash), written into a new file of the region: fresh space, synced at
 * commit, never journaled.
 * ------------------------------------------------------------------------ */
/* Bytes of an entry as a build collects and sorts it, and as an ordered
 * leaf holds it: the key (K bytes), the record (8) and, covering a field
 * (C > 0), the copy (8). */
static inline uint32_t entry_bytes(uint32_t K, uint32_t C)
{
    return K + 8 + (C ? 8 : 0);
}

/* Entries as (key, rec) byte strings, in record order, of the live records
 * whose key is not missing; with a covered field, (key, rec, covered value
 * as a slot holds it). */
static int collect(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                   const struct cover *cov, uint32_t E, uint8_t **out, uint64_t *n)
{
    const char *base = s->view.base[e->region];
    uint64_t live = e->live <= e->count ? e->live : e->count;
    uint8_t *buf = malloc((size_t)(live ? live : 1) * E);
    if (!buf)
        return -ENOMEM;
    uint64_t k = 0, nbits;
    const uint64_t *nulls = key_nulls(s, e, d, &nbits);
    for (uint64_t i = 0; i < e->count && k < live; i++) {
        if (!mms__catalog_live(s, e, i) || bit_in(nulls, nbits, i))
            continue;
        rec_key(d, base + i * e->record_size, buf + k * E);
        put_be(buf + k * E + d->key_size, i, 8);
        if (cov->size)
            cover_copy(base + i * e->record_size + cov->off, cov->size,
                       buf + k * E + d->key_size + 8);
        k++;
    }
    *out = buf;
    *n = k;
    return 0;
}

unsigned long mms__ix_sorts;

/* LSD radix sort of n entries of E bytes by their first K bytes (the
 * key). Stable, and the entries come in record order: equal keys stay
 * ordered by record, so the entries end up ordered by all their bytes. */
static int sort_entries(uint8_t *a, uint64_t n, uint32_t E, uint32_t K)
{
    __atomic_add_fetch(&mms__ix_sorts, 1, __ATOMIC_RELAXED);
    if (n < 2)
        return 0;
    uint8_t *b = malloc((size_t)n * E), *src = a, *dst = b;
    if (!b)
        return -ENOMEM;
    uint64_t cnt[256];
    for (int byte = (int)K - 1; byte >= 0; byte--) {
        memset(cnt, 0, sizeof cnt);
        for (uint64_t i = 0; i < n; i++)
            cnt[src[i * E + (uint32_t)byte]]++;
        if (cnt[src[(uint32_t)byte]] == n)
            continue; /* every entry has this byte: nothing moves */
        uint64_t sum = 0;
        for (int c = 0; c < 256; c++) {
            uint64_t t = cnt[c];
            cnt[c] = sum;
            sum += t;
        }
        for (uint64_t i = 0; i < n; i++)
            memcpy(dst + cnt[src[i * E + (uint32_t)byte]]++ * E, src + i * E, E);
        uint8_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, (size_t)n * E);
    free(b);
    return 0;
}

/* A new file for the region (generation up if it has one), mapped in its
 * reservation as fresh space of bytes. */
static int region_fresh(mms_store *s, uint32_t id, bool exists, uint64_t bytes)
{
    struct mms__rent *rt = mms__rtab(s);
    uint32_t gen = exists ? rt[id].gen + 1 : (id < mms__hdr(s)->nregions ? rt[id].gen + 1 : 0);
    int r = mms__region_new(s, id, gen, bytes);
    if (r)
        return r;
    rt = mms__rtab(s);
    rt[id].gen = gen;
    rt[id].kind = MMS__RK_INDEX;
    rt[id].size = 0;
    if (id >= mms__hdr(s)->nregions)
        mms__hdr(s)->nregions = id + 1;
    r = mms__map_grow(s, id, bytes);
    if (r)
        return r;
    /* The build writes the whole file at once: asked for in 2 MiB folios,
     * it is mapped 2 MiB at a time by every reader (fewer TLB misses and,
     * on a VM, fewer first-touch costs for lookups at random places; left
     * to the kernel, 20-85% of a 256 MB hash index came out so). A store
     * to it at commit may dirty a whole folio: at 10^7 keys the keycommit
     * workload was not slower (bench/results/index.md). Only a hint: no
     * error; as for a table's bulk append, not under 2 MiB nor with
     * MMS_NOHUGE (map.c). */
    mms__map_fresh_huge(s, id, 0, bytes);
    rt[id].size = bytes;
    return 0;
}

static int too_many_dups(const struct mms__tabent *e, const struct mms__ixdesc *d,
                         const uint8_t *a, uint32_t E)
{
    char kt[MMS__IX_MAX_KEY + 8];
    key_text(d->key_kind, d->key_size, a, kt, sizeof kt);
    return mms__fail(MMS_EUNIQUE, "table %s: unique index on %.47s: key %s is held by records "
                     "%llu and %llu", e->name, d->field, kt,
                     (unsigned long long)get_be(a + d->key_size, 8),
                     (unsigned long long)get_be(a + E + d->key_size, 8));
}

static void hdr_init(struct mms__ixhdr *h, const struct mms__ixdesc *d, uint32_t E, uint32_t table,
                     const struct cover *cov)
{
    memset(h, 0, sizeof *h);
    h->magic = MMS__IX_MAGIC;
    h->kind = d->kind;
    h->key_size = d->key_size;
    h->entry_size = E;
    h->table = table;
    /* Version 1 where it is enough: a library that knows no covered
     * values still reads and keeps such an index; a covering one it
     * refuses (MMS_EVERSION) rather than leave its copies stale. */
    h->version = cov->size ? MMS__IX_VERSION_COVER : MMS__IX_VERSION;
    h->cover_kind = cov->kind;
    h->cover_off = cov->off;
    h->cover_size = cov->size;
    h->flags = MMS__IXH_NO_MISSING;
}

/* ns: at least these slots (a rebuild's; 0: what n entries need). */
static int build_hash(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                      const struct cover *cov, bool exists, const uint8_t *a, uint64_t n,
                      uint32_t SE, uint64_t ns)
{
    uint32_t K = d->key_size, E = 8 + (uint32_t)mms__round_up(K, 8) + (cov->size ? 8 : 0);
    uint64_t need = hash_slots_for(n);
    ns = ns > need ? ns : need;
    if (e->count >= MMS__IX_SLOT_REC)
        return too_many_records(e, d);
    int r = region_fresh(s, d->region, exists, PG + ns * E);
    if (r)
        return r;
    char *base;
    for (uint64_t i = 0;; i = 0) {
        base = s->view.base[d->region];
        memset(base, 0, PG + ns * E); /* fresh space may hold an aborted attempt */
        hdr_init((struct mms__ixhdr *)(void *)base, d, E, e->region, cov);
        while (i < n && !hash_place(base + PG, ns, E, K, a + i * SE, get_be(a + i * SE + K, 8),
                                    cov->size ? a + i * SE + K + 8 : NULL))
            i++;
        if (i == n)
            break;
        if (ns >= need * SPREAD_MAX) /* a run too long: spread them, or refuse */
            return too_long_run(e, d);
        ns *= 2;
        if ((r = mms__map_grow(s, d->region, PG + ns * E)))
            return r;
        mms__map_fresh_huge(s, d->region, 0, PG + ns * E); /* as region_fresh */
        mms__rtab(s)[d->region].size = PG + ns * E;
    }
    struct mms__ixhdr *h = (void *)base;
    h->entries = n;
    h->nslots = ns;
    return 0;
}

/* The tree over the n sorted entries of a (E bytes each: as leaves hold
 * them), leaves packed. */
static int build_ordered(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                         const struct cover *cov, bool exists, const uint8_t *a, uint64_t n)
{
    uint32_t L = d->key_size + 8, E = entry_bytes(d->key_size, cov->size), lc = leaf_cap(E),
             ic = inner_cap(L);
    uint64_t leaves = n ? (n + lc - 1) / lc : 1, pages = 1 + leaves, level = leaves;
    uint32_t depth = 1;
    while (level > 1) {
        level = (level + ic) / (ic + 1);
        pages += level;
        depth++;
    }
    int r = region_fresh(s, d->region, exists, pages * PG);
    if (r)
        return r;
    char *base = s->view.base[d->region];
    hdr_init((struct mms__ixhdr *)(void *)base, d, E, e->region, cov);
    /* Leaves 1..leaves; each level's first entries (their minimums) kept
     * as indices into a. */
    uint64_t *mins = malloc((size_t)leaves * 8);
    if (!mins)
        return -ENOMEM;
    for (uint64_t j = 0; j < leaves; j++) {
        struct mms__ixpage *pg = (void *)(base + (1 + j) * PG);
        memset(pg, 0, PG);
        pg->type = MMS__IXP_LEAF;
        pg->magic = MMS__IXP_MAGIC;
        uint64_t from = j * lc, cnt = n - from < lc ? n - from : lc;
        if (!n)
            cnt = 0;
        if (cnt)
            memcpy((char *)pg + 32, a + from * E, (size_t)cnt * E);
        pg->n = (uint16_t)cnt;
        pg->prev = j ? j : 0;
        pg->next = j + 1 < leaves ? j + 2 : 0;
        mins[j] = from;
    }
    uint64_t first = 1, count = leaves, next = 1 + leaves;
    while (count > 1) {
        uint64_t nodes = (count + ic) / (ic + 1);
        for (uint64_t k = 0; k < nodes; k++) {
            struct mms__ixpage *pg = (void *)(base + (next + k) * PG);
            memset(pg, 0, PG);
            pg->type = MMS__IXP_INNER;
            pg->magic = MMS__IXP_MAGIC;
            uint64_t c0 = k * (ic + 1), cn = count - c0 < ic + 1 ? count - c0 : ic + 1;
            for (uint64_t c = 0; c < cn; c++) {
                inner_child(pg)[c] = first + c0 + c;
                if (c)
                    memcpy(winner_sep(pg, L, (uint32_t)(c - 1)), a + mins[c0 + c] * E, L);
            }
            pg->n = (uint16_t)(cn - 1);
            mins[k] = mins[c0];
        }
        first = next;
        next += nodes;
        count = nodes;
    }
    free(mins);
    struct mms__ixhdr *h = (void *)base;
    h->entries = n;
    h->nslots = pages;
    h->root = first;
    h->depth = depth;
    return 0;
}

/* The entries of index d over the live records of e (SE bytes each),
 * sorted where the index wants them so (ordered, unique); a unique
 * index's duplicate is MMS_EUNIQUE. *a: malloc'd (free it, also after an
 * error; left as it was when none could be). */
static int entries_of(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                      const struct cover *cov, uint32_t SE, uint8_t **a, uint64_t *n)
{
    int r = collect(s, e, d, cov, SE, a, n);
    if (r)
        return r;
    if (d->kind == MMS__IX_ORDERED || (d->flags & MMS__IX_UNIQUE))
        r = sort_entries(*a, *n, SE, d->key_size);
    if (!r && (d->flags & MMS__IX_UNIQUE))
        for (uint64_t i = 1; i < *n && !r; i++)
            if (memcmp(*a + (i - 1) * SE, *a + i * SE, d->key_size) == 0)
                r = too_many_dups(e, d, *a + (i - 1) * SE, SE);
    return r;
}

/* Build index d of e (covering cov) from the live records, or (records
 * false) with no entries. exists: the region has a file (a rebuild writes
 * the next generation). */
static int build(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                 const struct cover *cov, bool exists, bool records)
{
    uint32_t SE = entry_bytes(d->key_size, cov->size);
    uint8_t *a = NULL;
    uint64_t n = 0;
    int r = records ? entries_of(s, e, d, cov, SE, &a, &n) : 0;
    if (!r)
        r = d->kind == MMS__IX_HASH ? build_hash(s, e, d, cov, exists, a, n, SE, 0)
                                    : build_ordered(s, e, d, cov, exists, a, n);
    free(a);
    s->tab_epoch++;
    return r;
}

/* Grow a hash index to ns slots: rebuilt into the next file generation. */
static int hash_rebuild(struct ix *x, uint64_t ns)
{
    struct mms__ixhdr *h = ihdr(x);
    uint64_t old_ns = h->nslots, n = h->entries;
    const struct cover cov = {h->cover_kind, h->cover_off, x->C};
    uint32_t K = x->K, SE = entry_bytes(K, x->C);
    uint8_t *a = malloc((size_t)(n ? n : 1) * SE);
    if (!a)
        return -ENOMEM;
    uint64_t k = 0;
    for (uint64_t i = 0; i < old_ns && k < n; i++) {
        const char *sl = hslot(x, i);
        uint64_t r1 = slot_w(sl) & MMS__IX_SLOT_REC;
        if (!r1)
            continue;
        memcpy(a + k * SE, sl + 8, K);
        put_be(a + k * SE + K, r1 - 1, 8);
        if (x->C)
            memcpy(a + k * SE + K + 8, sl + x->E - 8, 8);
        k++;
    }
    int r = build_hash(x->s, x->e, x->d, &cov, true, a, k, SE, ns);
    free(a);
    x->base = x->s->view.base[x->id];
    x->s->tab_epoch++;
    return r;
}

/* ------------------------------------------------------------------------
 * Create and drop (in a write transaction)
 * ------------------------------------------------------------------------ */
static uint32_t free_region(const mms_store *s)
{
    const struct mms__hdr *h = mms__hdr(s);
    const struct mms__rent *rt = mms__rtab(s);
    uint32_t id = 1;
    while (id < MMS_MAX_REGIONS && id < h->nregions && rt[id].kind != MMS__RK_NONE)
        id++;
    return id;
}

/* Does a private page of [start, end) of region c->id differ from its
 * committed content? (A scan's callback: 1 stops it at the first.) */
struct unchanged {
    mms_store *s;
    uint32_t id;
};
static int page_changed(void *ctx, char *start, char *end)
{
    const struct unchanged *c = ctx;
    for (char *p = start; p < end; p += PG)
        if (mms__page_changed(c->s, p, c->id))
            return 1;
    return 0;
}

/* Are e's records the committed ones (NOTES, "Create")? Every record lies
 * below the region's committed size, and no private page of it differs
 * from its committed content: a scan of the page tables and a compare of
 * the pages the handle holds, not a read of the records. */
static int as_committed(mms_store *s, const struct mms__tabent *e, bool *same)
{
    const struct mms__region *g = &s->reg[e->region];
    char *b = s->view.base[e->region];
    *same = false;
    if (!b || !e->record_size || e->count > g->committed / e->record_size)
        return 0;
    struct unchanged c = {s, e->region};
    int r = mms__os_dirty_scan(s->dirty_fd, s->dirty_backend, b, b + g->priv,
                               MMS__SCAN_PRIVATE, page_changed, &c);
    if (r < 0)
        return mms__fail(r, "finding the pages of table %s the transaction wrote failed: %s",
                         e->name, mms_strerror(r));
    *same = r == 0;
    return 0;
}

int mms__ix_create(mms_store *s, struct mms__tabent *e, const struct mms__fdesc *f,
                   uint32_t kind, uint32_t flags, const struct mms__fdesc *cf)
{
    int r = mms__ix_keyable(e->name, f);
    if (r)
        return r;
    if (cf && (r = mms__ix_coverable(e->name, cf)))
        return r;
    const struct cover cov = {cf ? cf->kind : 0, cf ? cf->offset : 0, cf ? cf->size : 0};
    if (e->nindexes && !mms__ixdescs(s, e))
        return MMS__CORRUPT("table %s: its index descriptors are not in the heap", e->name);
    if (mms__ixdesc_named(s, e, f->name))
        return mms__fail(-EEXIST, "table %s already has an index on %s", e->name, f->name);
    uint32_t id = free_region(s);
    if (id >= MMS_MAX_REGIONS)
        return mms__fail(MMS_EFULL, "a store holds at most %u tables and indexes",
                         MMS_MAX_REGIONS - 1);
    if (!txn_state(s))
        return -ENOMEM;
    struct mms__ixdesc nd = {0};
    snprintf(nd.field, sizeof nd.field, "%s", f->name);
    nd.kind = kind;
    nd.flags = flags;
    nd.region = id;
    nd.key_kind = f->kind;
    nd.key_off = f->offset;
    nd.key_size = f->size;
    nd.layout_gen = e->layout_gen;
    if (cf)
        snprintf(nd.cover, sizeof nd.cover, "%s", cf->name);
    /* Built now from records that are the committed ones, the commit's
     * upkeep brings it up to date; else built at the commit, once, and
     * empty until then (NOTES, "Create"). A unique one's duplicate is
     * refused here either way. */
    bool now;
    if ((r = as_committed(s, e, &now)))
        return r;
    if (!now && (flags & MMS__IX_UNIQUE)) {
        uint8_t *a = NULL;
        uint64_t n;
        r = entries_of(s, e, &nd, &cov, entry_bytes(nd.key_size, cov.size), &a, &n);
        free(a);
        if (r)
            return r;
    }
    /* The descriptors, one longer. Everything that can fail comes before
     * the catalog entry changes. */
    mms_ref arr = e->indexes;
    size_t had = (size_t)e->nindexes * sizeof(struct mms__ixdesc);
    uint32_t region = e->region;
    if ((r = mms__realloc(s, &arr, had + sizeof(struct mms__ixdesc))))
        return r;
    e = mms__catalog_by_region(s, region);
    struct mms__ixdesc *d = (struct mms__ixdesc *)mms_deref(s, arr) + e->nindexes;
    *d = nd;
    uint32_t had_regions = mms__hdr(s)->nregions;
    r = build(s, e, d, &cov, false, now);
    if (r) {
        /* Nothing of it stays: the region's file goes, the descriptors
         * shrink back (the realloc'd array is kept, with its old count;
         * a table that had none has none: its ref is 0, FORMAT). */
        if (s->view.base[id])
            mms__map_unmap_region(s, id);
        mms__region_unlink(s, id, mms__rtab(s)[id].gen);
        struct mms__rent *rt = mms__rtab(s);
        rt[id].kind = MMS__RK_NONE;
        rt[id].size = 0;
        mms__hdr(s)->nregions = had_regions;
        if (!had && mms__free(s, arr) == 0)
            arr = 0;
        e = mms__catalog_by_region(s, region);
        e->indexes = arr;
        mms__heap_lib_changed(s);
        return r;
    }
    e->indexes = arr;
    mms__heap_lib_changed(s);
    e->nindexes++;
    bit_set(now ? s->ixtxn->built : s->ixtxn->fresh, id);
    s->tab_epoch++;
    return 0;
}

int mms__ix_drop(mms_store *s, struct mms__tabent *e, uint32_t k)
{
    struct mms__ixdesc *d = mms__ixdescs(s, e);
    if (!d || k >= e->nindexes)
        return mms__fail(MMS_ENOENT, "table %s: no such index", e->name);
    mms__region_release(s, d[k].region);
    memmove(&d[k], &d[k + 1], (e->nindexes - k - 1) * sizeof *d);
    e->nindexes--;
    if (!e->nindexes) {
        mms_ref arr = e->indexes;
        e->indexes = 0;
        mms__heap_lib_changed(s);
        int r = mms__free(s, arr);
        if (r)
            return r;
    }
    s->tab_epoch++;
    return 0;
}

/* ------------------------------------------------------------------------
 * Appends to tables with unique indexes (table.c, before the append)
 * ------------------------------------------------------------------------ */
static uint64_t pend_hash(uint32_t region, const uint8_t *key, uint32_t K)
{
    uint64_t h = mms__ix_mix(mms__ix_hash(key, K) ^ region);
    return h ? h : 1;
}

static int pend_add(struct mms__ixtxn *t, uint64_t h, mms_ref rec)
{
    if ((t->pn + 1) * 2 > t->pcap) {
        size_t cap = t->pcap ? t->pcap * 2 : 256;
        struct pend *p = calloc(cap, sizeof *p);
        if (!p)
            return -ENOMEM;
        for (size_t i = 0; i < t->pcap; i++) {
            if (!t->p[i].h)
                continue;
            size_t j = t->p[i].h & (cap - 1);
            while (p[j].h)
                j = (j + 1) & (cap - 1);
            p[j] = t->p[i];
        }
        free(t->p);
        t->p = p;
        t->pcap = cap;
    }
    size_t j = h & (t->pcap - 1);
    while (t->p[j].h)
        j = (j + 1) & (t->pcap - 1);
    t->p[j].h = h;
    t->p[j].rec = rec;
    t->pn++;
    return 0;
}

/* Does live record j (not i) hold key now (not missing)? */
static bool holds(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                  uint64_t j, uint64_t i, const uint8_t *key)
{
    uint8_t cur[MMS__IX_MAX_KEY];
    uint64_t nbits;
    const uint64_t *nulls = key_nulls(s, e, d, &nbits);
    if (j == i || !mms__catalog_live(s, e, j) || bit_in(nulls, nbits, j))
        return false;
    rec_key(d, s->view.base[e->region] + j * e->record_size, cur);
    return memcmp(cur, key, d->key_size) == 0;
}

/* Array v of *cap elements of size bytes, n of them used, with room for
 * one more: v itself, or v grown (doubled, 64 at first), or NULL (no
 * memory; v stays as it was). */
static void *room_for_one(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    size_t c = *cap ? *cap * 2 : 64;
    void *g = realloc(v, c * size);
    if (g)
        *cap = c;
    return g;
}

/* Record ref may want other entries than the commit's diff can see: an
 * append took back its deleted slot (zeros, and a record of zeros there --
 * or one a plain store set back to zeros -- changes no byte, and yet is
 * live now), or its key was marked missing or unmarked (a value of zeros
 * stays so). The commit gives it the entries it wants (mms__ix_commit_end). */
static int note_touched(mms_store *s, mms_ref ref)
{
    struct mms__ixtxn *t = txn_state(s);
    mms_ref *v = t ? room_for_one(t->touched, &t->tcap, t->tn, sizeof *v) : NULL;
    if (!v)
        return -ENOMEM;
    t->touched = v;
    t->touched[t->tn++] = ref;
    return 0;
}

int mms__ix_note_mark(mms_store *s, const struct mms__tabent *e, uint64_t i, uint32_t field)
{
    const struct mms__fdesc *fd = mms__fdescs(s, e);
    if (fd && field < e->nfields && mms__ixdesc_named(s, e, fd[field].name))
        return note_touched(s, MMS_REF_MAKE(e->region, i));
    return 0;
}

/* Does rec hold zeros in index d's field: the value of a record appended
 * to be marked missing next (mms_table_null_set), which has no entry then? */
static bool zeros_in(const struct mms__ixdesc *d, const char *rec)
{
    for (uint32_t i = 0; i < d->key_size; i++)
        if (rec[d->key_off + i])
            return false;
    return true;
}

int mms__ix_check_append(mms_store *s, const struct mms__tabent *e, uint64_t i, const char *rec)
{
    struct mms__ixdesc *d = mms__ixdescs(s, e);
    struct mms__ixtxn *t = NULL;
    for (uint32_t k = 0; d && k < e->nindexes; k++) {
        if (!(d[k].flags & MMS__IX_UNIQUE) || d[k].layout_gen != e->layout_gen ||
            !key_fits(&d[k], e->record_size)) /* damaged: the commit fails (ix_open) */
            continue;
        if (!t && !(t = txn_state(s)))
            return -ENOMEM;
        if (zeros_in(&d[k], rec))
            continue; /* the commit checks it, if it is not marked missing by then */
        uint8_t key[MMS__IX_MAX_KEY];
        rec_key(&d[k], rec, key);
        uint64_t dup = UINT64_MAX;
        /* In the index (as of the last commit, or as built in this
         * transaction: NOTES, "Create")... */
        struct mms__ixview v;
        uint64_t found[8], n = 0;
        if (mms__ixview_get(s, e, &d[k], &v) == 0 && mms__ix_find(&v, key, found, 8, &n) == 0)
            for (uint64_t m = 0; m < n && m < 8 && dup == UINT64_MAX; m++)
                if (holds(s, e, &d[k], found[m], i, key))
                    dup = found[m];
        /* ... or appended by this transaction. */
        uint64_t h = pend_hash(d[k].region, key, d[k].key_size);
        for (size_t j = t->pcap ? h & (t->pcap - 1) : 0; t->pcap && t->p[j].h && dup == UINT64_MAX;
             j = (j + 1) & (t->pcap - 1))
            if (t->p[j].h == h && MMS_REF_REGION(t->p[j].rec) == e->region &&
                holds(s, e, &d[k], MMS_REF_SLOT(t->p[j].rec), i, key))
                dup = MMS_REF_SLOT(t->p[j].rec);
        if (dup != UINT64_MAX) {
            char kt[MMS__IX_MAX_KEY + 8];
            key_text(d[k].key_kind, d[k].key_size, key, kt, sizeof kt);
            return mms__fail(MMS_EUNIQUE, "table %s: unique index on %.47s: key %s is held by "
                             "record %llu", e->name, d[k].field, kt, (unsigned long long)dup);
        }
    }
    /* Noted for the next appends of this transaction. */
    for (uint32_t k = 0; t && d && k < e->nindexes; k++) {
        if (!(d[k].flags & MMS__IX_UNIQUE) || !key_fits(&d[k], e->record_size) ||
            zeros_in(&d[k], rec))
            continue;
        uint8_t key[MMS__IX_MAX_KEY];
        rec_key(&d[k], rec, key);
        int r = pend_add(t, pend_hash(d[k].region, key, d[k].key_size),
                         MMS_REF_MAKE(e->region, i));
        if (r)
            return r;
    }
    return i < e->count ? note_touched(s, MMS_REF_MAKE(e->region, i)) : 0;
}

/* ------------------------------------------------------------------------
 * Upkeep at commit (NOTES)
 * ------------------------------------------------------------------------ */
/* Do the keys of the records appended past committed go after every key
 * of ordered index v (an id or a time that grows)? Asked of up to 64 of
 * them, evenly spread: 7 in 8 of those asked is a yes. */
static bool appends_at_end(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                           const struct mms__ixview *v, uint64_t committed)
{
    struct mms__ixpos p;
    if (mms__ix_seek(v, MMS__SEEK_LAST, NULL, &p))
        return true; /* empty (or damaged: the bulk build does not read it) */
    const uint8_t *last = p.ents + (size_t)p.pos * v->E;
    uint64_t added = e->count - committed, step = added > 64 ? added / 64 : 1, asked = 0, after = 0;
    for (uint64_t i = committed; i < e->count; i += step) {
        uint8_t key[MMS__IX_MAX_KEY];
        if (!mms__catalog_live(s, e, i))
            continue;
        rec_key(d, s->view.base[e->region] + i * e->record_size, key);
        asked++;
        after += memcmp(key, last, d->key_size) > 0;
    }
    return after * 8 >= asked * 7;
}

/* Index d, built at create: would the commit's upkeep, one insert a
 * record the transaction then appended to e, cost more than a bulk build
 * of it from all the records? Measured (bench/results/index.md,
 * "Outgrown", 10^6 held): a hash index, once the appends would make it
 * grow (the upkeep then writes it again at twice the size anyway, and
 * inserts on); an ordered one, past 1.5x the entries it holds when the
 * new keys go after them (the inserts fill its last leaves), past 1/10
 * when they land among them (each dirties a leaf, splitting it). */
static bool outgrown(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d)
{
    uint64_t committed = s->reg[e->region].committed / e->record_size;
    struct mms__ixview v;
    if (e->count <= committed || mms__ixview_get(s, e, d, &v))
        return false;
    uint64_t added = e->count - committed, held = vhdr(&v)->entries;
    if (d->kind == MMS__IX_HASH)
        return (held + added) * 4 > vhdr(&v)->nslots * 3;
    return appends_at_end(s, e, d, &v, committed) ? added * 2 > held * 3 : added * 10 > held;
}

/* Index d was written before missing keys lost their entries
 * (MMS__IXH_NO_MISSING): where its field has no missing value it is as
 * this rule wants, and says so from this commit on; where it has some, it
 * may give them entries: true, and the commit builds it again. */
static bool held_missing(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d)
{
    struct mms__ixhdr *h = hdr_of(s, d);
    if (!h || (h->flags & MMS__IXH_NO_MISSING))
        return false;
    uint64_t nbits;
    const uint64_t *nulls = key_nulls(s, e, d, &nbits);
    for (uint64_t w = 0; w < nbits / 64; w++)
        if (nulls[w])
            return true;
    h->flags |= MMS__IXH_NO_MISSING;
    s->precommit_wrote = true;
    return false;
}

int mms__ix_commit_begin(mms_store *s)
{
    struct mms__catalog *cat = mms__catalog(s);
    struct mms__ixtxn *t = s->ixtxn;
    if (t) {
        memset(t->rebuilt, 0, sizeof t->rebuilt);
        t->cn = 0;
    }
    for (uint32_t n = 0; cat && n < cat->ntables; n++) {
        struct mms__tabent *e = &cat->t[n];
        struct mms__ixdesc *d = mms__ixdescs(s, e);
        for (uint32_t k = 0; d && k < e->nindexes; k++) {
            bool fresh = (t && (bit_get(t->fresh, d[k].region) ||
                               (bit_get(t->built, d[k].region) && outgrown(s, e, &d[k])))) ||
                         held_missing(s, e, &d[k]);
            if (!fresh && d[k].layout_gen == e->layout_gen)
                continue;
            if (!t && !(t = txn_state(s)))
                return -ENOMEM;
            /* A migration: the field followed by name; gone, or of a kind
             * no index takes, the index goes with it. */
            const struct mms__fdesc *f = mms__fdesc_named(s, e, d[k].field);
            if (!f || mms__ix_keyable(e->name, f)) {
                mms__detail_clear();
                int r = mms__ix_drop(s, e, k);
                if (r)
                    return r;
                d = mms__ixdescs(s, e);
                k--;
                s->precommit_wrote = true;
                continue;
            }
            d[k].key_kind = f->kind;
            d[k].key_off = f->offset;
            d[k].key_size = f->size;
            d[k].layout_gen = e->layout_gen;
            /* The covered field too; gone, or grown past 8 bytes, the
             * index keeps its key and drops the copy. */
            struct cover cov = {0};
            const struct mms__fdesc *cf = d[k].cover[0] ? mms__fdesc_named(s, e, d[k].cover) : NULL;
            if (cf && !mms__ix_coverable(e->name, cf))
                cov = (struct cover){cf->kind, cf->offset, cf->size};
            else
                memset(d[k].cover, 0, sizeof d[k].cover);
            mms__detail_clear();
            int r = build(s, e, &d[k], &cov, true, true);
            if (r)
                return r;
            bit_set(t->rebuilt, d[k].region);
            s->precommit_wrote = true;
        }
    }
    return 0;
}

static int check_later(struct mms__ixtxn *t, uint32_t region, uint32_t tregion, uint64_t rec)
{
    void *c = room_for_one(t->chk, &t->ccap, t->cn, sizeof *t->chk);
    if (!c)
        return -ENOMEM;
    t->chk = c;
    t->chk[t->cn].region = region;
    t->chk[t->cn].tregion = tregion;
    t->chk[t->cn].rec = rec;
    t->cn++;
    return 0;
}

int mms__ix_record(mms_store *s, const struct mms__tabent *e, uint64_t k, const char *old,
                   const char *rec)
{
    struct mms__ixdesc *d = mms__ixdescs(s, e);
    struct mms__ixtxn *t = txn_state(s);
    if (!t)
        return -ENOMEM;
    bool live = mms__catalog_live(s, e, k);
    for (uint32_t j = 0; d && j < e->nindexes; j++) {
        if (bit_get(t->rebuilt, d[j].region))
            continue;
        struct ix x;
        int r = ix_open(s, e, &d[j], &x);
        if (r)
            return r;
        /* A record whose key is missing has no entry (the old one goes). */
        bool in = live && !bit_in(x.nulls, x.null_bits, k);
        uint8_t ok[MMS__IX_MAX_KEY], nk[MMS__IX_MAX_KEY], cv[8];
        bool did = false;
        rec_key(&d[j], rec, nk);
        if (old)
            rec_key(&d[j], old, ok);
        /* A live record whose key changed: its entry moves, inserted under
         * the new key before it leaves the old one, so that a hash index
         * grown by the insert is built from every entry. The count of
         * entries stays the same and is left alone: a commit that changes
         * one key then dirties no header page (one page fault, one page
         * diffed, journaled and applied fewer; commit cost, index.md). */
        x.moving = old && in && memcmp(ok, nk, x.K) != 0;
        x.delta = 0;
        /* A record whose key stays may have a new covered value: the
         * insert finds its entry and brings the copy up to date. */
        const uint8_t *cover = x.C ? cover_copy(rec + x.cover_off, x.C, cv) : NULL;
        if (in) {
            if ((r = ix_insert(&x, nk, k, cover, &did)))
                return r;
            s->precommit_wrote |= did;
            if (did && (d[j].flags & MMS__IX_UNIQUE) && (r = check_later(t, d[j].region,
                                                                         e->region, k)))
                return r;
        }
        if (old && (!in || x.moving)) {
            if ((r = ix_remove(&x, ok, k, &did)))
                return r;
            s->precommit_wrote |= did;
        }
        if (x.delta) /* the old entry was not there (a record seen twice) */
            ihdr(&x)->entries += (uint64_t)(int64_t)x.delta;
    }
    return 0;
}

int mms__ix_commit_end(mms_store *s)
{
    struct mms__ixtxn *t = s->ixtxn;
    /* Records noted (note_touched), live still, taken as they are for
     * their committed bytes too: an entry of their key goes when it is
     * missing, comes when it is not; one the diff gave or took already is
     * found (or missed), not changed again. */
    for (size_t i = 0; t && i < t->tn; i++) {
        uint32_t id = MMS_REF_REGION(t->touched[i]);
        uint64_t k = MMS_REF_SLOT(t->touched[i]);
        const struct mms__tabent *e = mms__catalog_by_region(s, id);
        if (!e || !e->nindexes || k >= e->count || id >= s->nmapped || !s->view.base[id] ||
            !mms__catalog_live(s, e, k))
            continue;
        const char *rec = s->view.base[id] + k * e->record_size;
        int r = mms__ix_record(s, e, k, rec, rec);
        if (r)
            return r;
    }
    if (s->precommit_wrote)
        s->tab_epoch++; /* the indexes changed under the lookup handles */
    for (size_t i = 0; t && i < t->cn; i++) {
        const struct mms__tabent *e = mms__catalog_by_region(s, t->chk[i].tregion);
        struct mms__ixdesc *d = e ? mms__ixdescs(s, e) : NULL;
        uint32_t k = 0;
        while (d && k < e->nindexes && d[k].region != t->chk[i].region)
            k++;
        if (!d || k == e->nindexes)
            continue;
        struct mms__ixview v;
        int r = mms__ixview_get(s, e, &d[k], &v);
        if (r)
            return r;
        v.ix_bytes = s->reg[v.region].mapped;
        uint8_t key[MMS__IX_MAX_KEY];
        rec_key(&d[k], v.recs + t->chk[i].rec * v.rs, key);
        uint64_t found[2], n;
        if ((r = mms__ix_find(&v, key, found, 2, &n)))
            return r;
        if (n > 1) {
            char kt[MMS__IX_MAX_KEY + 8];
            key_text(d[k].key_kind, d[k].key_size, key, kt, sizeof kt);
            return mms__fail(MMS_EUNIQUE, "table %s: unique index on %.47s: key %s is held by "
                             "records %llu and %llu", e->name, d[k].field, kt,
                             (unsigned long long)found[0], (unsigned long long)found[1]);
        }
    }
    if (t)
        t->cn = 0;
    return 0;
}

/* ------------------------------------------------------------------------
 * Verification: each index entry by entry against its table.
 * ------------------------------------------------------------------------ */
#define VFAIL(...) (snprintf(msg, cap, __VA_ARGS__), MMS_ECORRUPT)

struct vwalk {
    const struct mms__ixview *v;
    uint64_t entries, leaves, last_leaf;
    uint8_t prev[MMS__IX_MAX_KEY + 8];
    bool any;
};

/* The subtree at p (level l) holds entries in [lo, hi) (NULL: unbounded). */
static int vtree(struct vwalk *w, uint64_t p, uint32_t l, const uint8_t *lo, const uint8_t *hi,
                 char *msg, size_t cap)
{
    const struct mms__ixview *v = w->v;
    const struct mms__ixpage *pg = vpage(v, p, l == 1 ? MMS__IXP_LEAF : MMS__IXP_INNER);
    if (!pg)
        return VFAIL("page %llu (level %u) is damaged", (unsigned long long)p, l);
    if (l == 1) {
        if (pg->prev != w->last_leaf)
            return VFAIL("leaf %llu: its previous link is %llu, not %llu", (unsigned long long)p,
                         (unsigned long long)pg->prev, (unsigned long long)w->last_leaf);
        w->last_leaf = p;
        w->leaves++;
        for (uint32_t i = 0; i < pg->n; i++) {
            const uint8_t *e = leaf_ent(pg, v->E, i);
            if ((lo && memcmp(e, lo, v->L) < 0) || (hi && memcmp(e, hi, v->L) >= 0))
                return VFAIL("leaf %llu: entry %u is outside its parent's bounds",
                             (unsigned long long)p, i);
            if (w->any && memcmp(w->prev, e, v->L) >= 0)
                return VFAIL("leaf %llu: entry %u is out of order", (unsigned long long)p, i);
            memcpy(w->prev, e, v->L);
            w->any = true;
            w->entries++;
        }
        return 0;
    }
    for (uint32_t i = 0; i <= pg->n; i++) {
        const uint8_t *clo = i ? inner_sep(pg, v->L, i - 1) : lo;
        const uint8_t *chi = i < pg->n ? inner_sep(pg, v->L, i) : hi;
        if (clo && chi && memcmp(clo, chi, v->L) >= 0)
            return VFAIL("page %llu: separators out of order", (unsigned long long)p);
        int r = vtree(w, inner_child(pg)[i], l - 1, clo, chi, msg, cap);
        if (r)
            return r;
    }
    return 0;
}

/* Index d of e, through its view v (a copy: the walk changes it), against
 * the table, entry by entry. */
static int verify_one(mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                      struct mms__ixview v, char *msg, size_t cap)
{
    const struct mms__ixhdr *h = vhdr(&v);
    const struct mms__fdesc *f = mms__fdesc_named(s, e, d->field);
    if (!f || f->kind != d->key_kind || f->offset != d->key_off || f->size != d->key_size ||
        d->layout_gen != e->layout_gen)
        return VFAIL("its field is not the table's field of that name");
    const struct mms__fdesc *cf = v.C ? mms__fdesc_named(s, e, d->cover) : NULL;
    if (v.C && (!cf || cf->kind != h->cover_kind || cf->offset != v.cover_off || cf->size != v.C))
        return VFAIL("its covered field is not the table's field %.47s", d->cover);
    if (h->table != e->region)
        return VFAIL("its header names table region %u", h->table);
    if (d->kind != MMS__IX_HASH && d->kind != MMS__IX_ORDERED)
        return VFAIL("unknown kind %u", d->kind);
    /* An entry for each live record whose key is not missing (in an index
     * written before, for each live record: v.stale). */
    if (v.stale)
        v.nulls = NULL, v.null_bits = 0;
    uint64_t keyed = 0;
    for (uint64_t i = 0; i < e->count; i++)
        keyed += mms__catalog_live(s, e, i) && !bit_in(v.nulls, v.null_bits, i);
    if (h->entries != keyed)
        return VFAIL("%llu entries for %llu live records with a key", (unsigned long long)h->entries,
                     (unsigned long long)keyed);
    if (h->flags & ~MMS__IXH_NO_MISSING)
        return VFAIL("its header holds unknown flags 0x%x", h->flags);
    for (size_t i = 0; i < sizeof h->reserved; i++)
        if (h->reserved[i])
            return VFAIL("its header's reserved byte %zu is not zero",
                         offsetof(struct mms__ixhdr, reserved) + i);
    if (d->kind == MMS__IX_HASH && (h->root || h->depth))
        return VFAIL("its header holds root %llu and depth %u: zero in a hash index",
                     (unsigned long long)h->root, h->depth);
    uint8_t key[MMS__IX_MAX_KEY];
    if (d->kind == MMS__IX_ORDERED) {
        if (h->nslots * PG > mms__rtab(s)[d->region].size)
            return VFAIL("%llu pages in a region of %llu bytes", (unsigned long long)h->nslots,
                         (unsigned long long)mms__rtab(s)[d->region].size);
        struct vwalk w = {.v = &v};
        if (h->depth == 0 || h->depth > MAXDEPTH)
            return VFAIL("depth %u", h->depth);
        int r = vtree(&w, h->root, h->depth, NULL, NULL, msg, cap);
        if (r)
            return r;
        if (w.entries != h->entries)
            return VFAIL("its leaves hold %llu entries, its header says %llu",
                         (unsigned long long)w.entries, (unsigned long long)h->entries);
        /* Every entry is a live record holding its key (not missing); they
         * are distinct and as many as those records: each is in it. */
        struct mms__ixpos p;
        uint64_t seen = 0;
        v.check = false; /* mms__ix_entry_cover: the entries' copies are what is checked */
        uint64_t rec;
        const uint8_t *k;
        r = mms__ix_seek(&v, MMS__SEEK_FIRST, NULL, &p);
        for (r = r ? r : mms__ix_entry(&v, &p, &rec, &k); !r;
             r = mms__ix_next(&v, &p, 1, 0, &rec, &k)) {
            if (!mms__catalog_live(s, e, rec))
                return VFAIL("entry for record %llu, which is not live", (unsigned long long)rec);
            if (bit_in(v.nulls, v.null_bits, rec))
                return VFAIL("entry for record %llu, whose key is missing",
                             (unsigned long long)rec);
            rec_key(d, v.recs + rec * v.rs, key);
            if (memcmp(key, k, v.K) != 0)
                return VFAIL("record %llu: the index holds another key than the record",
                             (unsigned long long)rec);
            uint8_t cv[8], copy[8] = {0};
            if (v.C) {
                mms__ix_entry_cover(&v, &p, copy);
                if (memcmp(copy, cover_copy(v.recs + rec * v.rs + v.cover_off, v.C, cv), 8) != 0)
                    return VFAIL("record %llu: its entry's copy of %.47s is not the record's",
                                 (unsigned long long)rec, d->cover);
            }
            seen++;
        }
        if (r != MMS_ENOTFOUND)
            return VFAIL("%s", mms_errdetail());
        if (seen != h->entries)
            return VFAIL("its leaf chain holds %llu entries, its tree %llu",
                         (unsigned long long)seen, (unsigned long long)h->entries);
        return 0;
    }
    uint64_t ns = h->nslots;
    if (!ns || (ns & (ns - 1)) || PG + ns * v.E > mms__rtab(s)[d->region].size)
        return VFAIL("%llu slots do not fit its region", (unsigned long long)ns);
    uint64_t used = 0;
    for (uint64_t i = 0; i < ns; i++) {
        const char *sl = v.ix + PG + i * v.E;
        uint64_t w = slot_w(sl), r1 = w & MMS__IX_SLOT_REC;
        if (!w)
            continue;
        used++;
        if (w != mms__ix_slot_word(mms__ix_hash((const uint8_t *)sl + 8, v.K), r1))
            return VFAIL("slot %llu: its check does not match its key and record",
                         (unsigned long long)i);
        if (!mms__catalog_live(s, e, r1 - 1))
            return VFAIL("slot %llu: record %llu is not live", (unsigned long long)i,
                         (unsigned long long)(r1 - 1));
        if (bit_in(v.nulls, v.null_bits, r1 - 1))
            return VFAIL("slot %llu: record %llu's key is missing", (unsigned long long)i,
                         (unsigned long long)(r1 - 1));
        rec_key(d, v.recs + (r1 - 1) * v.rs, key);
        if (memcmp(key, sl + 8, v.K) != 0)
            return VFAIL("slot %llu: record %llu holds another key", (unsigned long long)i,
                         (unsigned long long)(r1 - 1));
        uint8_t cv[8];
        if (v.C && memcmp(sl + v.E - 8, cover_copy(v.recs + (r1 - 1) * v.rs + v.cover_off, v.C,
                                                   cv), 8) != 0)
            return VFAIL("slot %llu: its copy of %.47s is not record %llu's", (unsigned long long)i,
                         d->cover, (unsigned long long)(r1 - 1));
        /* Reachable: no empty slot between its home and it. */
        for (uint64_t j = mms__ix_hash(key, v.K) & (ns - 1); j != i; j = (j + 1) & (ns - 1))
            if (!slot_w(v.ix + PG + j * v.E))
                return VFAIL("slot %llu: an empty slot cuts it off from its home",
                             (unsigned long long)i);
    }
    if (used != h->entries)
        return VFAIL("%llu slots in use, its header says %llu entries", (unsigned long long)used,
                     (unsigned long long)h->entries);
    /* Distinct: each live record with a key is found under it. */
    struct ix x = {.s = s, .e = e, .d = (struct mms__ixdesc *)d, .id = d->region, .K = v.K,
                   .E = v.E, .C = v.C, .cover_off = v.cover_off, .base = (char *)v.ix};
    for (uint64_t i = 0; i < e->count; i++) {
        if (!mms__catalog_live(s, e, i) || bit_in(v.nulls, v.null_bits, i))
            continue;
        rec_key(d, v.recs + i * v.rs, key);
        if (hash_lookup(&x, key, i) == UINT64_MAX)
            return VFAIL("record %llu is not in it", (unsigned long long)i);
    }
    return 0;
}

int mms__ix_verify(mms_store *s, const struct mms__tabent *e, char *msg, size_t cap)
{
    if (!e->nindexes)
        return e->indexes ? VFAIL("table %s: an index array but no indexes", e->name) : 0;
    const struct mms__ixdesc *d = mms__ixdescs(s, e);
    if (!d)
        return VFAIL("table %s: its index descriptors are not in the heap", e->name);
    for (uint32_t k = 0; k < e->nindexes; k++) {
        if (!memchr(d[k].field, 0, sizeof d[k].field))
            return VFAIL("table %s: index %u: its field name is not terminated", e->name, k);
        for (uint32_t j = 0; j < k; j++)
            if (d[j].region == d[k].region || strcmp(d[j].field, d[k].field) == 0)
                return VFAIL("table %s: indexes %u and %u share a region or a field", e->name,
                             j, k);
        /* A view refused names table and index already. */
        struct mms__ixview v;
        if (mms__ixview_get(s, e, &d[k], &v))
            return VFAIL("%s", mms_errdetail());
        char sub[400];
        int r = verify_one(s, e, &d[k], v, sub, sizeof sub);
        if (r)
            return VFAIL("table %s: index on %s: %s", e->name, d[k].field, sub);
    }
    return 0;
}

/*
 * lookup.c -- the public face of indexes: create, drop, handles, finds,
 * cursors.
 *
 * Layer 7: calls table.c (a handle's catalog entry), index.c (everything
 * about an index's bytes) and lock.c (handle checks). It keeps, per index
 * handle, what a lookup needs resolved from the catalog (struct
 * mms__ixview) while the handle's table epoch stays, so a hash lookup is
 * a compare of the epoch, a hash and a probe -- no walk through the
 * header, catalog and descriptors. It must never write the store outside
 * mms_index_create(_covering) and mms_index_drop.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mms_index {
    mms_store *s;
    mms_table *t;
    char field[48];
    struct mms_index *next;
    uint64_t epoch; /* the view below is valid while s->tab_epoch equals it */
    uint64_t epoch8; /* = epoch when the view is of a hash index of 8-byte integer
                      * keys whose slots fit (v.mask), else UINT64_MAX: short_key */
    uint64_t epoch8c; /* = epoch8 when that index also covers a field (v.C), else
                       * UINT64_MAX */
    uint64_t flip;  /* with epoch8: the bit a key flips before its byte swap (norm) */
    struct mms__ixview v;
};

_Static_assert((int)MMS_SEEK_FIRST == MMS__SEEK_FIRST && (int)MMS_SEEK_LAST == MMS__SEEK_LAST &&
               (int)MMS_SEEK_GE == MMS__SEEK_GE && (int)MMS_SEEK_GT == MMS__SEEK_GT &&
               (int)MMS_SEEK_LE == MMS__SEEK_LE && (int)MMS_SEEK_LT == MMS__SEEK_LT, "seek ops");

struct mms_cursor {
    mms_index *ix;
    struct mms__ixpos p;
    uint64_t epoch; /* p was found in the index's view of this epoch (cursor_view) */
    uint64_t seen;  /* ... of the commit the handle saw then (s->seen): a step after
                     * the handle saw another one would go on from a stale place */
    bool covered;   /* its reader reads covered values (mms_cursor_covered), not records */
};

int mms_index_create(mms_table *t, const char *field, unsigned flags)
{
    return mms_index_create_covering(t, field, flags, NULL);
}

int mms_index_create_covering(mms_table *t, const char *field, unsigned flags, const char *cover)
{
    struct mms__tabent *e;
    if (!t || !field || (flags & ~(MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE)))
        return mms__fail(MMS_EINVAL, "mms_index_create: bad arguments");
    int r = mms__table_write_entry(t, &e);
    if (r)
        return r;
    mms_store *s = mms__table_store(t);
    const struct mms__fdesc *f = mms__fdesc_named(s, e, field);
    if (!f)
        return mms__fail(MMS_EINVAL, "table %s has no field %s", e->name, field);
    const struct mms__fdesc *cf = cover ? mms__fdesc_named(s, e, cover) : NULL;
    if (cover && !cf)
        return mms__fail(MMS_EINVAL, "table %s has no field %s to cover", e->name, cover);
    return mms__ix_create(s, e, f, flags & MMS_INDEX_ORDERED ? MMS__IX_ORDERED : MMS__IX_HASH,
                          flags & MMS_INDEX_UNIQUE ? MMS__IX_UNIQUE : 0, cf);
}

int mms_index_drop(mms_table *t, const char *field)
{
    struct mms__tabent *e;
    if (!t || !field)
        return mms__fail(MMS_EINVAL, "mms_index_drop: bad arguments");
    int r = mms__table_write_entry(t, &e);
    if (r)
        return r;
    mms_store *s = mms__table_store(t);
    struct mms__ixdesc *d = mms__ixdesc_named(s, e, field);
    if (!d)
        return mms__fail(MMS_ENOENT, "table %s has no index on %s", e->name, field);
    return mms__ix_drop(s, e, (uint32_t)(d - mms__ixdescs(s, e)));
}

int mms_index_open(mms_table *t, const char *field, mms_index **ix)
{
    if (!t || !field || !ix)
        return mms__fail(MMS_EINVAL, "mms_index_open: bad arguments");
    *ix = NULL;
    mms_store *s = mms__table_store(t);
    int r = mms__check_handle(s);
    if (r)
        return r;
    const struct mms__tabent *e = mms__table_entry(t);
    if (!e)
        return mms__fail(MMS_ENOENT, "table %s is gone", mms_table_name(t));
    if (!mms__ixdesc_named(s, e, field))
        return mms__fail(MMS_ENOENT, "table %s has no index on %s", e->name, field);
    for (mms_index *h = s->ixh; h; h = h->next)
        if (h->t == t && strcmp(h->field, field) == 0) {
            *ix = h;
            return 0;
        }
    mms_index *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->s = s;
    h->t = t;
    snprintf(h->field, sizeof h->field, "%s", field);
    h->epoch = UINT64_MAX;
    h->next = s->ixh;
    s->ixh = h;
    *ix = h;
    return 0;
}

void mms__index_handles_free(mms_store *s)
{
    for (mms_index *h = s->ixh, *n; h; h = n) {
        n = h->next;
        free(h);
    }
    s->ixh = NULL;
}

int mms_indexes(mms_table *t, mms_index_info *out, size_t cap, size_t *n)
{
    if (!t || !n || (cap && !out))
        return mms__fail(MMS_EINVAL, "mms_indexes: bad arguments");
    mms_store *s = mms__table_store(t);
    const struct mms__tabent *e = mms__table_entry(t);
    *n = 0;
    if (!e)
        return mms__fail(MMS_ENOENT, "table %s is gone", mms_table_name(t));
    const struct mms__ixdesc *d = mms__ixdescs(s, e);
    if (e->nindexes && !d)
        return MMS__CORRUPT("table %s: its index descriptors are not in the heap", e->name);
    for (uint32_t k = 0; k < e->nindexes && k < cap; k++) {
        mms_index_info *o = &out[k];
        memset(o, 0, sizeof *o);
        memcpy(o->field, d[k].field, sizeof o->field);
        o->field[sizeof o->field - 1] = 0;
        o->flags = (d[k].kind == MMS__IX_ORDERED ? MMS_INDEX_ORDERED : 0) |
                   (d[k].flags & MMS__IX_UNIQUE ? MMS_INDEX_UNIQUE : 0);
        o->key_kind = d[k].key_kind;
        o->key_size = d[k].key_size;
        o->region = d[k].region;
        struct mms__ixview v;
        if (mms__ixview_get(s, e, &d[k], &v) == 0) {
            o->entries = ((const struct mms__ixhdr *)(const void *)v.ix)->entries;
            o->bytes = mms__rtab(s)[d[k].region].size;
            if (v.C) {
                memcpy(o->cover, d[k].cover, sizeof o->cover);
                o->cover[sizeof o->cover - 1] = 0;
                o->cover_kind = ((const struct mms__ixhdr *)(const void *)v.ix)->cover_kind;
                o->cover_size = v.C;
            }
        }
    }
    *n = e->nindexes;
    return 0;
}

/* A key in the index's form (8-byte integers inline: the hot path). */
static inline void norm(const struct mms__ixview *v, const void *key, uint8_t *out)
{
    if (v->K == 8 && (v->cls == 'u' || v->cls == 'i' || v->cls == 'r')) {
        uint64_t w;
        memcpy(&w, key, 8);
        w = __builtin_bswap64(v->cls == 'i' ? w ^ (UINT64_C(1) << 63) : w);
        memcpy(out, &w, 8);
        return;
    }
    mms__ix_norm(v->key_kind, v->K, key, out);
}

static int resolve_again(mms_index *ix, const struct mms__ixview **out);

/* The handle's view of its index, resolved again when the epoch moved.
 * Inline: it is on every find's path (see mms__ix_hash_first). */
static inline int resolve(mms_index *ix, const struct mms__ixview **out)
{
    if (!ix)
        return mms__fail(MMS_EINVAL, "index handle is NULL");
    mms_store *s = ix->s;
    /* A read transaction sees table and index of one commit: a hash slot's
     * key (its record index checked) is its record's. A writer's records
     * may have changed since; a stale index may hold missing keys. */
    ix->v.check = s->state != MMS__ST_READ || ix->v.stale;
    if (__builtin_expect(ix->epoch == s->tab_epoch, 1)) {
        *out = &ix->v;
        return 0;
    }
    return resolve_again(ix, out);
}

static int resolve_again(mms_index *ix, const struct mms__ixview **out)
{
    mms_store *s = ix->s;
    const struct mms__tabent *e = mms__table_entry(ix->t);
    if (!e)
        return mms__fail(MMS_ENOENT, "table %s is gone", mms_table_name(ix->t));
    /* Keys and covered values are of the field's stored size: a program
     * holding the old layout's would have them read or written past their
     * end. A migration moves the epoch, so the check is here, off the
     * path of a find whose view holds. */
    int r = mms__table_pin_check(ix->t, e);
    if (r)
        return r;
    const struct mms__ixdesc *d = mms__ixdesc_named(s, e, ix->field);
    if (!d)
        return mms__fail(MMS_ENOENT, "table %s has no index on %s (any more)", e->name,
                         ix->field);
    if ((r = mms__ixview_get(s, e, d, &ix->v)))
        return r;
    ix->v.check = s->state != MMS__ST_READ || ix->v.stale;
    bool hash8 = ix->v.kind == MMS__IX_HASH && ix->v.K == 8 && ix->v.mask && !ix->v.stale &&
                 (ix->v.cls == 'u' || ix->v.cls == 'i' || ix->v.cls == 'r');
    ix->flip = ix->v.cls == 'i' ? UINT64_C(1) << 63 : 0;
    ix->epoch = s->tab_epoch;
    ix->epoch8 = hash8 ? s->tab_epoch : UINT64_MAX;
    ix->epoch8c = hash8 && ix->v.C ? s->tab_epoch : UINT64_MAX;
    *out = &ix->v;
    return 0;
}

int mms_index_find_all(mms_index *ix, const void *key, uint64_t *out, size_t cap, size_t *n)
{
    const struct mms__ixview *v;
    if (!key || !n || (cap && !out))
        return mms__fail(MMS_EINVAL, "mms_index_find_all: bad arguments");
    int r = resolve(ix, &v);
    if (r)
        return r;
    uint8_t nk[MMS__IX_MAX_KEY];
    norm(v, key, nk);
    uint64_t m = 0;
    r = mms__ix_find(v, nk, out, cap, &m);
    *n = (size_t)m;
    return r;
}

/* The first entry at or after the key is the lowest record; value (NULL:
 * none): its covered value too (mms__ix_entry_cover). *index is written
 * only when it is found (a miss leaves it, as a hash find does: the walk
 * passes entries of other keys). Not inlined: its buffers would make
 * every hash find set up a large frame. */
__attribute__((noinline)) static int ordered_first(const struct mms__ixview *v, const uint8_t *nk,
                                                   uint64_t *index, void *value)
{
    struct mms__ixpos p;
    const uint8_t *k;
    uint64_t at;
    int r = mms__ix_seek(v, MMS__SEEK_GE, nk, &p);
    for (r = r ? r : mms__ix_entry(v, &p, &at, &k); !r && memcmp(k, nk, v->K) == 0;
         r = mms__ix_next(v, &p, 1, 0, &at, &k)) {
        uint8_t cur[MMS__IX_MAX_KEY]; /* leaf entries have no check: compare */
        norm(v, v->recs + at * v->rs + v->key_off, cur);
        if (memcmp(cur, nk, v->K) == 0 && (!v->check || mms__ix_held(v, at))) {
            r = value ? mms__ix_entry_cover(v, &p, value) : 0;
            if (!r)
                *index = at;
            return r;
        }
    }
    return r ? r : MMS_ENOTFOUND;
}

/* The long ways, out of line: inlined, their frames and saved registers
 * would be set up on every short get. */
static int find_any(mms_index *ix, const void *key, uint64_t *index) __attribute__((noinline));
static int covered_any(mms_index *ix, const void *key, uint64_t *index, void *value)
    __attribute__((noinline));
static int probe_on(mms_index *ix, uint64_t nk, uint64_t *index, void *value)
    __attribute__((noinline));

/* The short path's key (norm, for these keys) when ix is a hash index of
 * 8-byte integer keys (covering one: cover) whose view is current and the
 * handle is in a read transaction (where the slot is the answer:
 * mms__ix_probe8); false: the long way. */
static inline bool short_key(mms_index *ix, const void *key, bool cover, uint64_t *w)
{
    if (!(ix && key && (cover ? ix->epoch8c : ix->epoch8) == ix->s->tab_epoch &&
          ix->s->state == MMS__ST_READ))
        return false;
    memcpy(w, key, 8);
    *w = __builtin_bswap64(*w ^ ix->flip);
    return true;
}

/* A get of an 8-byte key through a hash index in a read transaction is a
 * few checks and the probe, inline (mms__ix_probe8): gets at random keys
 * overlap their cache misses only as far as the CPU can keep several gets
 * in flight at once, so the instructions of one get are what limits them
 * (bench/results/index.md: 100 no-ops added to a get cost ~30%). With the
 * probe in index.c, a second call saving five registers, a get took 1.25x
 * the probe written in the caller; inline, 1.2x, pinned to one vCPU.
 * Every other find (another key, a stale view, a write transaction, bad
 * arguments) takes find_any. */
/* The short path's get of normalized key w in slots of E bytes (a
 * constant at each call): the record to *index (if wanted), the covered
 * value to value (if wanted); a damaged slot of the key: probe_on. */
static inline __attribute__((always_inline)) int short_get(mms_index *ix, uint64_t w, uint32_t E,
                                                         uint64_t *index, void *value)
{
    uint64_t rec;
    const char *sl = mms__ix_probe8(&ix->v, w, E, &rec);
    if (!sl)
        return MMS_ENOTFOUND;
    if (__builtin_expect(rec == UINT64_MAX, 0))
        return probe_on(ix, w, index, value);
    if (index)
        *index = rec;
    return value ? mms__ix_copy_cover(value, sl + 16, ix->v.C) : 0;
}

int mms_index_find(mms_index *ix, const void *key, uint64_t *index)
{
    uint64_t w;
    if (__builtin_expect(index && short_key(ix, key, false, &w), 1))
        return ix->v.E == 16 ? short_get(ix, w, 16, index, NULL) : short_get(ix, w, 24, index, NULL);
    return find_any(ix, key, index);
}

/* The short path's slot held the key but failed its check (a damaged
 * index): the general probe goes on past it. The key comes normalized,
 * by value: the short path keeps no pointer to it live. */
static int probe_on(mms_index *ix, uint64_t nk, uint64_t *index, void *value)
{
    const struct mms__ixview *v;
    uint64_t rec;
    int r = resolve(ix, &v);
    if (r)
        return r;
    if (!value)
        return mms__ix_hash_first(v, (const uint8_t *)&nk, index);
    return mms__ix_hash_cover(v, (const uint8_t *)&nk, index ? index : &rec, value);
}

static int find_any(mms_index *ix, const void *key, uint64_t *index)
{
    const struct mms__ixview *v;
    if (!key || !index)
        return mms__fail(MMS_EINVAL, "mms_index_find: bad arguments");
    int r = resolve(ix, &v);
    if (r)
        return r;
    uint8_t nk[MMS__IX_MAX_KEY];
    norm(v, key, nk);
    if (v->kind == MMS__IX_ORDERED)
        return ordered_first(v, nk, index, NULL);
    return mms__ix_hash_first(v, nk, index);
}

/* The covered get: as mms_index_find, its short path (an 8-byte key, a
 * current view of a covering index, a read transaction) reading one slot
 * of 24 bytes (the key, the covered value). */
int mms_index_find_covered(mms_index *ix, const void *key, uint64_t *index, void *value)
{
    uint64_t w;
    if (__builtin_expect(value && short_key(ix, key, true, &w), 1))
        return short_get(ix, w, 24, index, value);
    return covered_any(ix, key, index, value);
}

static int covered_any(mms_index *ix, const void *key, uint64_t *index, void *value)
{
    const struct mms__ixview *v;
    uint64_t rec;
    if (!key || !value)
        return mms__fail(MMS_EINVAL, "mms_index_find_covered: bad arguments");
    int r = resolve(ix, &v);
    if (r)
        return r;
    if (!v->C)
        return mms__fail(MMS_ENOTSUP, "the index on %s covers no field", ix->field);
    uint8_t nk[MMS__IX_MAX_KEY];
    norm(v, key, nk);
    if (v->kind == MMS__IX_ORDERED)
        return ordered_first(v, nk, index ? index : &rec, value);
    return mms__ix_hash_cover(v, nk, index ? index : &rec, value);
}

int mms_index_find_many(mms_index *ix, const void *keys, size_t n, uint64_t *index,
                        size_t *found)
{
    const struct mms__ixview *v;
    if (n && (!keys || !index))
        return mms__fail(MMS_EINVAL, "mms_index_find_many: bad arguments");
    int r = resolve(ix, &v);
    if (r)
        return r;
    size_t got = 0;
    const char *k = keys;
    for (size_t at = 0; at < n;) {
        size_t m = n - at < MMS__IX_BATCH ? n - at : MMS__IX_BATCH;
        uint64_t nk[MMS__IX_BATCH];
        r = 1;
        if (v->kind == MMS__IX_HASH && v->K == 8) {
            for (size_t j = 0; j < m; j++)
                norm(v, k + (at + j) * 8, (uint8_t *)&nk[j]);
            r = mms__ix_hash_batch8(v, nk, m, index + at);
        }
        if (r == 1) { /* one by one */
            for (size_t j = 0; j < m; j++) {
                r = mms_index_find(ix, k + (at + j) * v->K, &index[at + j]);
                if (r == MMS_ENOTFOUND)
                    index[at + j] = UINT64_MAX;
                else if (r)
                    return r;
            }
            r = 0;
        }
        if (r)
            return r;
        for (size_t j = 0; j < m; j++)
            got += index[at + j] != UINT64_MAX;
        at += m;
    }
    if (found)
        *found = got;
    return 0;
}

int mms_index_count(mms_index *ix, const void *key, uint64_t *n)
{
    size_t m = 0;
    if (!n)
        return mms__fail(MMS_EINVAL, "mms_index_count: n is NULL");
    int r = mms_index_find_all(ix, key, NULL, 0, &m);
    *n = m;
    return r;
}

int mms_index_warm(mms_index *ix)
{
    const struct mms__ixview *v;
    int r = resolve(ix, &v);
    if (r)
        return r;
    mms__ix_touch(v);
    return 0;
}

int mms_cursor_open(mms_index *ix, mms_cursor **c)
{
    const struct mms__ixview *v;
    if (!c)
        return mms__fail(MMS_EINVAL, "mms_cursor_open: c is NULL");
    *c = NULL;
    int r = resolve(ix, &v);
    if (r)
        return r;
    if (v->kind != MMS__IX_ORDERED)
        return mms__fail(MMS_ENOTSUP, "the index on %s is a hash index: cursors need an "
                         "ordered one", ix->field);
    mms_cursor *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    k->ix = ix;
    k->epoch = ix->epoch;
    k->seen = ix->s->seen;
    *c = k;
    return 0;
}

/* cursor_view when the handle's view moved since the cursor's position
 * was found: within the transaction that found it (appends remapped the
 * table, an index grew) it is found again in this one, or lost
 * (mms__ix_recheck). Once the handle sees another commit, the index may
 * have changed around it: its page split or emptied, its entries moved.
 * A step from there would give entries of the new index from an old
 * place (skipping some, or a false end of a range), so it fails, and the
 * cursor is unpositioned (mmstore.h: seek again). Only a moved view can
 * see another commit (mms__tables_follow moves the epoch), so a step
 * within a page pays nothing for the check. */
static __attribute__((noinline)) int cursor_moved(mms_cursor *c, const struct mms__ixview *v)
{
    mms_store *s = c->ix->s;
    c->epoch = c->ix->epoch;
    if (c->p.page && c->seen != s->seen) {
        c->p.page = 0;
        c->p.n = 0;
        return mms__fail(MMS_ENOTXN, "the cursor on %s was positioned in an earlier "
                         "transaction (commit %llu; the handle sees %llu now): seek again",
                         c->ix->field, (unsigned long long)c->seen, (unsigned long long)s->seen);
    }
    mms__ix_recheck(v, &c->p);
    return 0;
}

/* The cursor's view of its index, for a step from its position. */
static inline int cursor_view(mms_cursor *c, const struct mms__ixview **v)
{
    int r = resolve(c->ix, v);
    if (__builtin_expect(!r && c->epoch != c->ix->epoch, 0))
        r = cursor_moved(c, *v);
    return r;
}

/* Records read through a cursor are at random places in the table: the
 * next ones are fetched ahead (MMS__IX_AHEAD) -- unless the reader takes
 * covered values instead, when those fetches would only compete with the
 * leaves for the memory's time. */
static uint32_t cursor_ahead(const mms_cursor *c)
{
    return c->covered ? 0 : MMS__IX_AHEAD;
}

/* Where table and index may be of different commits (v->check: a write
 * transaction, or a handle outside a read transaction), a cursor steps
 * past the entries whose records no longer hold their keys -- changed or
 * deleted since the last commit -- as finds do (mms__ix_holds): the next
 * entry in direction dir that answers. */
static __attribute__((noinline)) int cursor_on(mms_cursor *c, const struct mms__ixview *v,
                                               int dir, uint64_t *index, void *key_out)
{
    const uint8_t *k;
    uint64_t rec;
    int r;
    do
        r = mms__ix_next(v, &c->p, dir, cursor_ahead(c), &rec, &k);
    while (!r && !mms__ix_holds(v, rec, k));
    if (r)
        return r;
    if (index)
        *index = rec;
    if (key_out)
        mms__ix_denorm(v->key_kind, v->K, k, key_out);
    return 0;
}

int mms_cursor_seek(mms_cursor *c, int op, const void *key, uint64_t *index, void *key_out)
{
    const struct mms__ixview *v;
    const uint8_t *k;
    uint64_t rec;
    if (!c || op < MMS_SEEK_FIRST || op > MMS_SEEK_LT ||
        (!key && op != MMS_SEEK_FIRST && op != MMS_SEEK_LAST))
        return mms__fail(MMS_EINVAL, "mms_cursor_seek: bad arguments");
    int r = resolve(c->ix, &v); /* a seek starts afresh: no position to keep */
    if (r)
        return r;
    c->epoch = c->ix->epoch;
    c->seen = c->ix->s->seen;
    uint8_t nk[MMS__IX_MAX_KEY];
    if (key)
        norm(v, key, nk);
    /* enum mms_seek and MMS__SEEK_* are the same list. */
    r = mms__ix_seek(v, op, key ? nk : NULL, &c->p);
    if (r)
        return r;
    if (cursor_ahead(c)) /* a seek usually starts a scan: its first records are wanted soon */
        mms__ix_prefetch(v, &c->p, op == MMS_SEEK_LAST || op == MMS_SEEK_LE || op == MMS_SEEK_LT
                                   ? -1 : 1, 1, cursor_ahead(c));
    if ((r = mms__ix_entry(v, &c->p, &rec, &k))) {
        c->p.page = 0; /* a damaged entry: no position (mms__ixpos) */
        c->p.n = 0;
        return r;
    }
    if (v->check && !mms__ix_holds(v, rec, k))
        return cursor_on(c, v, op == MMS_SEEK_LAST || op == MMS_SEEK_LE || op == MMS_SEEK_LT
                               ? -1 : 1, index, key_out);
    if (index)
        *index = rec;
    if (key_out)
        mms__ix_denorm(v->key_kind, v->K, k, key_out);
    return 0;
}

/* A step is a call of mms__ix_next, the cursor's position updated in
 * place (the key read only when key_out wants it, or the step checks
 * it: cursor_on). */
static int cursor_step(mms_cursor *c, int dir, uint64_t *index, void *key_out)
{
    const struct mms__ixview *v;
    const uint8_t *k;
    if (!c)
        return mms__fail(MMS_EINVAL, "cursor is NULL");
    int r = cursor_view(c, &v);
    if (r)
        return r;
    if (__builtin_expect(v->check, 0))
        return cursor_on(c, v, dir, index, key_out);
    r = mms__ix_next(v, &c->p, dir, cursor_ahead(c), index, key_out ? &k : NULL);
    if (!r && key_out)
        mms__ix_denorm(v->key_kind, v->K, k, key_out);
    return r;
}

int mms_cursor_next(mms_cursor *c, uint64_t *index, void *key_out)
{
    return cursor_step(c, 1, index, key_out);
}

int mms_cursor_prev(mms_cursor *c, uint64_t *index, void *key_out)
{
    return cursor_step(c, -1, index, key_out);
}

int mms_cursor_covered(mms_cursor *c, void *value)
{
    const struct mms__ixview *v;
    if (!c || !value)
        return mms__fail(MMS_EINVAL, "mms_cursor_covered: bad arguments");
    int r = cursor_view(c, &v);
    if (r)
        return r;
    if (!v->C)
        return mms__fail(MMS_ENOTSUP, "the index on %s covers no field", c->ix->field);
    c->covered = true;
    return mms__ix_entry_cover(v, &c->p, value);
}

void mms_cursor_close(mms_cursor *c)
{
    free(c);
}

/*
 * mms_recover.c -- `mms recover DIR [--out DEST] [--dry-run]`: salvage a
 * store damaged by causes outside the library (a disk that corrupts, a hand
 * edit, a truncated file, a lost journal) into a new store, and say exactly
 * what was left behind.
 *
 * It never writes DIR. salvage.c reads DIR's files as the format says, trusting
 * nothing; this file decides what is kept and builds DEST through the public
 * API only (a new store, the same tables and schemas, the records at the same
 * indices, strings, missing-value marks, the root, then the indexes), so DEST
 * is sound by construction -- and mms_verify checks it at the end.
 *
 * THE POLICY (what is dropped, what is cleared)
 *
 *  1. A table is dropped whole when its catalog entry or field list does
 *     not check out: without its layout no record can be read.
 *  2. A record (slot) is dropped when it cannot be proved live: its bytes
 *     are past the end of its region file, or the deleted-record bitmap is
 *     unreadable and the slot is all zero bytes (what a deleted slot is).
 *     A dropped slot stays a deleted slot in DEST, so every other record
 *     keeps its index and every ref to it stays right.
 *  3. A field value that does not check out is cleared (set to 0, null) and
 *     the record kept: a STR/BLOB field that is not a string of the heap, a
 *     REF field that is not a kept live record of its target table (so a
 *     record dropped by 2 clears the refs to it, and nothing cascades).
 *     Integers, floats, chars and bools have no invalid values: they are
 *     kept as they are (a flipped bit in them cannot be detected).
 *  4. The root is kept if it is a kept record or a string. A root that is
 *     another heap object (a struct with refs to more objects) cannot be
 *     moved into a new store faithfully: DEST's allocations land at other
 *     offsets, so the refs inside must be rewritten, and nothing tells a
 *     ref from an integer that happens to equal one (counter_list's own
 *     list length does). So by default it is dropped, the report counting
 *     what is reachable from it. With --follow-refs it is copied with every
 *     object reachable from it: each word that is a live allocation's ref
 *     (the allocation headers check, salvage.c NOTES 3) is followed and made
 *     the copy's ref in DEST, each word that is a kept record's ref made
 *     DEST's (conservative, as mms verify --pointers); the report counts the
 *     words rewritten, and words that look like heap refs and name no live
 *     allocation (left as they are). Raw pointers (MMS_FIXED stores) are
 *     never followed.
 *  5. Heap objects that neither a record nor the root reaches cannot be
 *     found: they are not salvaged (the library would not find them either).
 *  6. Indexes are rebuilt from the salvaged records; one that cannot be (a
 *     unique index and a duplicate key) is reported and left out.
 *
 * THE REPORT, on stdout, one line per finding:
 *
 *     CLASS SUBJECT [key=value ...] -- text
 *
 * CLASS is `info` (nothing lost), `drop` (something not salvaged) or `clear`
 * (a field value set to null); per table a `table` line with its counts; at
 * the end `dest`, `verify` and a `summary` line. `grep -E '^(drop|clear) '`
 * lists every loss. Exit 0: nothing lost; 1: salvaged with losses; 2:
 * nothing salvaged (the header or the catalog is unreadable, DEST exists, a
 * usage error), with the reason on stderr too.
 */
#define _GNU_SOURCE
#include "salvage.h"
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SLOT_DELETED = 0, SLOT_KEPT = 1, SLOT_DROPPED = 2 };

/* A table of DEST, beside its source table. */
struct rtab {
    struct sv_table *src;
    uint8_t *state; /* per slot: SLOT_* */
    mms_table *t;   /* in DEST */
    mms_field *f;   /* DEST's schema */
    char (*target)[64];
    bool created, deferred, full; /* deferred: created without its REF fields */
    uint64_t kept, dropped, cleared, deleted;
};

struct rec {
    struct sv_store st;
    struct rtab *tab; /* one per source table (the unreadable ones have src->bad) */
    mms_store *s;     /* DEST being built, NULL in a dry run */
    bool dry, follow;
    uint64_t losses;  /* drop and clear lines */
    uint64_t kept, dropped, cleared;
    /* A run of dropped slots with one reason, printed as one line. */
    const struct rtab *run_tab;
    uint64_t run_first, run_last;
    const char *run_why;
};

static void say(struct rec *R, const char *cls, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(struct rec *R, const char *cls, const char *subject, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s %s ", cls, subject);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    if (strcmp(cls, "drop") == 0 || strcmp(cls, "clear") == 0)
        R->losses++;
}

static void sv_note(void *ctx, bool loss, const char *subject, const char *text)
{
    say(ctx, loss ? "drop" : "info", subject, "-- %s", text);
}

/* ------------------------------------------------------------------------
 * Which slots are kept (policy 2)
 * ------------------------------------------------------------------------ */
static void run_flush(struct rec *R)
{
    if (!R->run_tab)
        return;
    if (R->run_first == R->run_last)
        say(R, "drop", "record", "table=%s index=%llu -- %s", R->run_tab->src->name,
            (unsigned long long)R->run_first, R->run_why);
    else
        say(R, "drop", "records", "table=%s index=%llu..%llu -- %s", R->run_tab->src->name,
            (unsigned long long)R->run_first, (unsigned long long)R->run_last, R->run_why);
    R->run_tab = NULL;
}

static void slot_drop(struct rec *R, struct rtab *rt, uint64_t i, const char *why)
{
    rt->state[i] = SLOT_DROPPED;
    rt->dropped++;
    if (R->run_tab == rt && R->run_why == why && R->run_last + 1 == i) {
        R->run_last = i;
        return;
    }
    run_flush(R);
    R->run_tab = rt;
    R->run_first = R->run_last = i;
    R->run_why = why;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static int plan_table(struct rec *R, struct rtab *rt)
{
    const struct sv_table *t = rt->src;
    rt->state = calloc(t->count ? t->count : 1, 1);
    if (!rt->state)
        return tool_err("out of memory");
    static const char truncated[] = "past the end of its region file (truncated)";
    static const char unreadable[] = "on a page of its region file that cannot be read";
    static const char unknown[] = "all zero bytes and the deleted-record bitmap is unreadable: "
                                  "cannot tell it from a deleted slot";
    if (t->readable < t->count)
        say(R, "info", "table", "name=%s -- its region file holds %llu of its %llu records",
            t->name, (unsigned long long)t->readable, (unsigned long long)t->count);
    if (!t->tomb_ok)
        say(R, "info", "table", "name=%s -- its deleted-record bitmap is %s: records that are "
            "not all zero bytes are kept as live", t->name, t->tomb_why);
    uint64_t odd = 0;
    for (uint64_t i = 0; i < t->count; i++) {
        const uint8_t *p = t->recs + i * t->record_size;
        if (i >= t->readable) {
            slot_drop(R, rt, i, truncated);
        } else if (sv_unreadable(p, t->record_size)) {
            slot_drop(R, rt, i, unreadable);
        } else if (t->tomb_ok && sv_deleted(t, i)) {
            rt->state[i] = SLOT_DELETED;
            rt->deleted++;
            odd += !all_zero(p, t->record_size);
        } else if (!t->tomb_ok && all_zero(p, t->record_size)) {
            slot_drop(R, rt, i, unknown);
        } else {
            rt->state[i] = SLOT_KEPT;
            rt->kept++;
        }
    }
    run_flush(R);
    if (odd)
        say(R, "info", "table", "name=%s -- %llu deleted slot%s hold%s non-zero bytes; deleted "
            "they stay", t->name, (unsigned long long)odd, odd == 1 ? "" : "s",
            odd == 1 ? "s" : "");
    if (t->tomb_ok && t->readable == t->count && rt->kept != t->live)
        say(R, "info", "table", "name=%s -- the catalog counts %llu live records, the bitmap "
            "%llu; the bitmap is followed", t->name, (unsigned long long)t->live,
            (unsigned long long)rt->kept);
    return 0;
}

/* ------------------------------------------------------------------------
 * The tables of DEST (policy 1): the same schemas, created in an order
 * where every REF target exists (a circle of tables: the REF fields of one
 * are added once its targets exist, a migration of an empty table).
 * ------------------------------------------------------------------------ */
static struct rtab *rtab_of(struct rec *R, uint32_t region)
{
    for (uint32_t i = 0; i < R->st.ntables; i++)
        if (!R->tab[i].src->bad && R->tab[i].src->region == region)
            return &R->tab[i];
    return NULL;
}

static int schema_make(struct rec *R, struct rtab *rt)
{
    const struct sv_table *t = rt->src;
    rt->f = calloc(t->nfields, sizeof *rt->f);
    rt->target = calloc(t->nfields, sizeof *rt->target);
    if (!rt->f || !rt->target)
        return tool_err("out of memory");
    for (uint32_t k = 0; k < t->nfields; k++) {
        const struct sv_field *sf = &t->f[k];
        mms_field *f = &rt->f[k];
        f->name = sf->name;
        f->kind = sf->kind;
        f->offset = sf->offset;
        f->size = sf->size;
        f->dflt = sf->has_dflt && sf->size <= 32 ? sf->dflt : NULL;
        if (f->kind != MMS_KIND_REF)
            continue;
        struct rtab *tt = sf->target ? rtab_of(R, sf->target) : NULL;
        if (!tt) {
            /* No table to aim at: the same bytes as a u64 that holds 0. */
            say(R, "info", "field", "table=%s field=%s -- its target table %s: kept as a u64 "
                "field holding 0", t->name, sf->name,
                sf->target ? "is not salvaged" : "was dropped");
            f->kind = MMS_KIND_U64;
            continue;
        }
        snprintf(rt->target[k], sizeof rt->target[k], "%s", tt->src->name);
        f->target = rt->target[k];
    }
    return 0;
}

/* Can field k of rt be created now (its target exists or is rt)? */
static bool target_ready(struct rec *R, const struct rtab *rt, uint32_t k)
{
    const mms_field *f = &rt->f[k];
    if (f->kind != MMS_KIND_REF || strcmp(f->target, rt->src->name) == 0)
        return true;
    for (uint32_t i = 0; i < R->st.ntables; i++)
        if (R->tab[i].created && strcmp(R->tab[i].src->name, f->target) == 0)
            return true;
    return false;
}

static int table_create(struct rec *R, struct rtab *rt, bool partial)
{
    const struct sv_table *t = rt->src;
    mms_field *f = rt->f;
    uint32_t n = t->nfields;
    mms_field *some = NULL;
    if (partial) {
        some = calloc(n, sizeof *some);
        if (!some)
            return tool_err("out of memory");
        n = 0;
        for (uint32_t k = 0; k < t->nfields; k++)
            if (target_ready(R, rt, k))
                some[n++] = rt->f[k];
        f = some;
        rt->deferred = n < t->nfields;
    }
    mms_schema sc = {t->record_size, n, f};
    int r = n ? mms_table_open(R->s, t->name, &sc, MMS_TABLE_CREATE, &rt->t) : MMS_EINVAL;
    free(some);
    if (r)
        return tool_fail("cannot create the table", t->name, r);
    rt->created = true;
    rt->full = !rt->deferred;
    return 0;
}

static int tables_create(struct rec *R)
{
    uint32_t n = R->st.ntables;
    for (uint32_t i = 0; i < n; i++)
        if (!R->tab[i].src->bad && schema_make(R, &R->tab[i]))
            return 1;
    for (;;) {
        bool progress = false, left = false;
        for (uint32_t i = 0; i < n; i++) {
            struct rtab *rt = &R->tab[i];
            if (rt->src->bad || rt->created)
                continue;
            bool ready = true;
            for (uint32_t k = 0; k < rt->src->nfields && ready; k++)
                ready = target_ready(R, rt, k);
            if (ready) {
                if (table_create(R, rt, false))
                    return 1;
                progress = true;
            } else {
                left = true;
            }
        }
        if (!left)
            break;
        if (!progress) /* a circle: break it at its first table */
            for (uint32_t i = 0; i < n; i++)
                if (!R->tab[i].src->bad && !R->tab[i].created) {
                    if (table_create(R, &R->tab[i], true))
                        return 1;
                    break;
                }
    }
    for (uint32_t i = 0; i < n; i++) {
        struct rtab *rt = &R->tab[i];
        if (rt->src->bad || rt->full)
            continue;
        mms_schema sc = {rt->src->record_size, rt->src->nfields, rt->f};
        int r = mms_table_open(R->s, rt->src->name, &sc, 0, &rt->t);
        if (r)
            return tool_fail("cannot add the ref fields of", rt->src->name, r);
        rt->full = true;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The records (policy 3)
 * ------------------------------------------------------------------------ */
/* Why value v of REF field sf is not a kept record, or NULL (then *to is
 * DEST's ref). */
static const char *ref_check(struct rec *R, const struct sv_field *sf, mms_ref v, mms_ref *to)
{
    static char buf[200];
    struct rtab *tt = sf->target ? rtab_of(R, sf->target) : NULL;
    if (!tt)
        return "its target table is not salvaged";
    uint64_t i = MMS_REF_SLOT(v);
    if (MMS_REF_REGION(v) != sf->target || i >= tt->src->count) {
        snprintf(buf, sizeof buf, "not a record of table %s", tt->src->name);
        return buf;
    }
    if (tt->state[i] != SLOT_KEPT) {
        snprintf(buf, sizeof buf, "record %llu of table %s is %s", (unsigned long long)i,
                 tt->src->name, tt->state[i] == SLOT_DELETED ? "deleted" : "not salvaged");
        return buf;
    }
    *to = tt->t ? mms_table_ref(tt->t, i) : v;
    return NULL;
}

/* Record i of rt into rec (record_size bytes): its REF, STR and BLOB
 * fields checked and made DEST's, or cleared. */
static int record_make(struct rec *R, struct rtab *rt, uint64_t i, uint8_t *rec)
{
    const struct sv_table *t = rt->src;
    memcpy(rec, t->recs + i * t->record_size, t->record_size);
    bool cleared = false;
    for (uint32_t k = 0; k < t->nfields; k++) {
        const struct sv_field *sf = &t->f[k];
        if (sf->kind != MMS_KIND_REF && sf->kind != MMS_KIND_STR && sf->kind != MMS_KIND_BLOB)
            continue;
        mms_ref v, to = 0;
        memcpy(&v, rec + sf->offset, 8);
        if (!v)
            continue;
        const char *why, *p;
        uint64_t len;
        if (sf->kind == MMS_KIND_REF) {
            why = ref_check(R, sf, v, &to);
        } else if (!(why = sv_str(&R->st, v, &p, &len)) && R->s) {
            int r = mms_str_new(R->s, p, (size_t)len, &to);
            if (r)
                return tool_fail("cannot store a string in", "the new store", r);
        }
        if (why) {
            say(R, "clear", "field", "table=%s index=%llu field=%s value=0x%llx -- %s: set to "
                "null", t->name, (unsigned long long)i, sf->name, (unsigned long long)v, why);
            to = 0;
            cleared = true;
        }
        memcpy(rec + sf->offset, &to, 8);
    }
    rt->cleared += cleared;
    return 0;
}

static int records_fill(struct rec *R, struct rtab *rt, uint8_t *rec)
{
    const struct sv_table *t = rt->src;
    uint8_t *where = NULL;
    uint64_t first = 0;
    if (R->s && t->count) {
        void *w;
        int r = mms_table_append_many(rt->t, t->count, &first, &w);
        if (r)
            return tool_fail("cannot append to", t->name, r);
        where = w;
    }
    for (uint64_t i = 0; i < t->count; i++) {
        if (rt->state[i] != SLOT_KEPT)
            continue;
        if (record_make(R, rt, i, rec))
            return 1;
        if (!where)
            continue;
        memcpy(where + i * t->record_size, rec, t->record_size);
        for (uint32_t k = 0; k < t->nfields; k++) {
            int r = sv_null(t, k, i) ? mms_table_null_set(rt->t, first + i, k, 1) : 0;
            if (r)
                return tool_fail("cannot mark a missing value in", t->name, r);
        }
    }
    /* The slots that are not kept become deleted slots (policy 2). */
    for (uint64_t i = 0; where && i < t->count; i++) {
        int r = rt->state[i] == SLOT_KEPT ? 0 : mms_table_delete(rt->t, first + i);
        if (r)
            return tool_fail("cannot delete a slot of", t->name, r);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The root and the heap objects reachable from it (policy 4)
 * ------------------------------------------------------------------------ */
/* Old heap ref -> DEST's ref, open addressing (0 is never a key). */
struct refmap {
    uint64_t *key, *val;
    size_t cap, n;
};

static uint64_t *refmap_slot(struct refmap *m, uint64_t k)
{
    size_t i = (size_t)((k * UINT64_C(0x9e3779b97f4a7c15)) >> 20) & (m->cap - 1);
    while (m->key[i] && m->key[i] != k)
        i = (i + 1) & (m->cap - 1);
    return &m->key[i];
}

static int refmap_put(struct refmap *m, uint64_t k, uint64_t v)
{
    if (2 * (m->n + 1) > m->cap) {
        struct refmap g = {NULL, NULL, m->cap ? 2 * m->cap : 1024, 0};
        g.key = calloc(g.cap, 8);
        g.val = calloc(g.cap, 8);
        if (!g.key || !g.val) {
            free(g.key);
            free(g.val);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i])
                refmap_put(&g, m->key[i], m->val[i]);
        free(m->key);
        free(m->val);
        *m = g;
    }
    uint64_t *slot = refmap_slot(m, k);
    m->n += *slot == 0;
    *slot = k;
    m->val[slot - m->key] = v;
    return 0;
}

static const uint64_t *refmap_get(struct refmap *m, uint64_t k)
{
    if (!m->cap)
        return NULL;
    uint64_t *slot = refmap_slot(m, k);
    return *slot ? &m->val[slot - m->key] : NULL;
}

struct graph {
    bool copy; /* into DEST, or only count */
    struct refmap map;
    uint64_t *queue; /* old refs, in the order they were found */
    size_t nq, capq;
    uint64_t bytes, rewritten, records, dangling;
};

/* Word w of a heap object: a heap ref to copy (1), a ref to a kept record
 * (2, *to its ref in DEST), or neither (0). Conservative, as mms verify
 * --pointers: an integer that equals a live allocation's ref is taken for
 * one. */
static int word_kind(struct rec *R, uint64_t w, mms_ref *to)
{
    uint64_t usable;
    if (!w)
        return 0;
    if (MMS_REF_REGION(w) == 0)
        return sv_alloc(&R->st, w, &usable) ? 0 : 1;
    struct rtab *tt = rtab_of(R, MMS_REF_REGION(w));
    if (!tt || MMS_REF_SLOT(w) >= tt->src->count || tt->state[MMS_REF_SLOT(w)] != SLOT_KEPT)
        return 0;
    *to = tt->t ? mms_table_ref(tt->t, MMS_REF_SLOT(w)) : w;
    return 2;
}

/* Copy object v (not yet in the map) into DEST, queue it. */
static int graph_add(struct rec *R, struct graph *G, mms_ref v)
{
    uint64_t usable;
    sv_alloc(&R->st, v, &usable);
    mms_ref to = v;
    if (G->copy) {
        int r = mms_alloc(R->s, (size_t)usable, &to);
        if (r)
            return tool_fail("cannot allocate in", "the new store", r);
        memcpy(mms_deref(R->s, to), R->st.heap + MMS_REF_SLOT(v), (size_t)usable);
    }
    if (refmap_put(&G->map, v, to))
        return tool_err("out of memory");
    uint64_t *q = tool_room(G->queue, G->nq, &G->capq, sizeof *q, 1024);
    if (!q)
        return tool_err("out of memory");
    G->queue = q;
    G->queue[G->nq++] = v;
    G->bytes += usable;
    return 0;
}

/* Every object reachable from root through heap refs, copied; then their
 * ref words rewritten to the copies' (and to DEST's record refs). */
static int graph_copy(struct rec *R, mms_ref root, bool copy, mms_ref *to)
{
    struct graph G = {0};
    G.copy = copy && R->s;
    int rc = graph_add(R, &G, root);
    for (size_t i = 0; !rc && i < G.nq; i++) {
        uint64_t usable;
        sv_alloc(&R->st, G.queue[i], &usable);
        const uint8_t *p = R->st.heap + MMS_REF_SLOT(G.queue[i]);
        for (uint64_t o = 0; !rc && o + 8 <= usable; o += 8) {
            uint64_t w;
            mms_ref rto;
            memcpy(&w, p + o, 8);
            int k = word_kind(R, w, &rto);
            if (k == 1 && !refmap_get(&G.map, w))
                rc = graph_add(R, &G, w);
            else if (k == 0 && MMS_REF_REGION(w) == 0 && w >= 36864 && w < R->st.heap_size &&
                     w % 16 == 0)
                G.dangling++;
        }
    }
    for (size_t i = 0; !rc && i < G.nq; i++) {
        uint64_t usable;
        sv_alloc(&R->st, G.queue[i], &usable);
        uint8_t *q = G.copy ? mms_deref(R->s, *refmap_get(&G.map, G.queue[i])) : NULL;
        const uint8_t *p = R->st.heap + MMS_REF_SLOT(G.queue[i]);
        for (uint64_t o = 0; o + 8 <= usable; o += 8) {
            uint64_t w;
            mms_ref rto = 0;
            memcpy(&w, p + o, 8);
            int k = word_kind(R, w, &rto);
            if (k == 1)
                rto = *refmap_get(&G.map, w);
            if (k)
                G.rewritten += k == 1, G.records += k == 2;
            if (k && q)
                memcpy(q + o, &rto, 8);
        }
    }
    if (!rc && !copy) {
        say(R, "drop", "root", "value=0x%llx -- a heap object: %zu object%s (%llu bytes) are "
            "reachable from it through words that look like refs (%llu heap, %llu record), "
            "which cannot be told from integers: not copied (--follow-refs copies them, "
            "rewriting those words)", (unsigned long long)root, G.nq, G.nq == 1 ? "" : "s",
            (unsigned long long)G.bytes, (unsigned long long)G.rewritten,
            (unsigned long long)G.records);
    } else if (!rc) {
        *to = *refmap_get(&G.map, root);
        say(R, "info", "root", "value=0x%llx -- a heap object: %zu object%s (%llu bytes) "
            "reachable from it through %llu heap refs and %llu record refs, copied with those "
            "refs made DEST's (--follow-refs: a word that equals a live allocation's ref is "
            "taken for one)",
            (unsigned long long)root, G.nq, G.nq == 1 ? "" : "s", (unsigned long long)G.bytes,
            (unsigned long long)G.rewritten, (unsigned long long)G.records);
        if (G.dangling)
            say(R, "info", "root", "-- %llu word%s of those objects look like heap refs but "
                "name no live allocation (integers, or refs to damaged objects): left as they "
                "are", (unsigned long long)G.dangling, G.dangling == 1 ? "" : "s");
    }
    free(G.map.key);
    free(G.map.val);
    free(G.queue);
    return rc;
}

static int root_salvage(struct rec *R)
{
    mms_ref v = R->st.root, to = 0;
    if (!v)
        return 0;
    const char *why = NULL, *p;
    uint64_t len;
    int r = 0;
    if (MMS_REF_REGION(v) != 0) {
        struct rtab *tt = rtab_of(R, MMS_REF_REGION(v));
        uint64_t i = MMS_REF_SLOT(v);
        if (!tt)
            why = "it names no table that is salvaged";
        else if (i >= tt->src->count || tt->state[i] != SLOT_KEPT)
            why = "it names a record that is not salvaged";
        else {
            to = R->s ? mms_table_ref(tt->t, i) : v;
            say(R, "info", "root", "table=%s index=%llu -- a record, kept", tt->src->name,
                (unsigned long long)i);
        }
    } else if (!sv_str(&R->st, v, &p, &len)) {
        r = R->s ? mms_str_new(R->s, p, (size_t)len, &to) : 0;
        if (r)
            return tool_fail("cannot store a string in", "the new store", r);
        say(R, "info", "root", "value=0x%llx -- a string of %llu bytes, kept",
            (unsigned long long)v, (unsigned long long)len);
    } else if (!(why = sv_alloc(&R->st, v, &len))) {
        if (graph_copy(R, v, R->follow, &to))
            return 1;
    }
    if (why)
        say(R, "drop", "root", "value=0x%llx -- %s", (unsigned long long)v, why);
    if (R->s && to && (r = mms_root_set(R->s, to)))
        return tool_fail("cannot set the root of", "the new store", r);
    return 0;
}

/* ------------------------------------------------------------------------
 * The indexes (policy 6): each in a transaction of its own, after the
 * records are committed, so one that fails costs only itself.
 * ------------------------------------------------------------------------ */
static void indexes_build(struct rec *R)
{
    for (uint32_t i = 0; i < R->st.ntables; i++) {
        struct rtab *rt = &R->tab[i];
        const struct sv_table *t = rt->src;
        if (t->bad)
            continue;
        if (t->ix_bad)
            say(R, "drop", "index", "table=%s -- its list of indexes is %s: none is rebuilt",
                t->name, t->ix_bad);
        for (uint32_t k = 0; k < t->nix; k++) {
            const struct sv_index *x = &t->ix[k];
            unsigned flags = (x->kind == 2 ? MMS_INDEX_ORDERED : MMS_INDEX_HASH) |
                             (x->flags & 1 ? MMS_INDEX_UNIQUE : 0);
            int r = 0;
            if (R->s && !(r = mms_txn_begin(R->s, 0))) {
                r = mms_index_create(rt->t, x->field, flags);
                r = r ? (mms_txn_abort(R->s), r) : mms_txn_commit(R->s);
            }
            if (r)
                say(R, "drop", "index", "table=%s field=%s -- cannot be rebuilt: %s (%s)",
                    t->name, x->field, mms_strerror(r), mms_errdetail());
            else
                say(R, "info", "index", "table=%s field=%s -- %s", t->name, x->field,
                    R->s ? "rebuilt" : "to be rebuilt");
        }
    }
}

/* ------------------------------------------------------------------------
 * DEST: built beside it and renamed into place
 * ------------------------------------------------------------------------ */
static void sync_dir(const char *p)
{
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ------------------------------------------------------------------------
 * Names (mmstore.h, "Names"): DEST is made through mms_table_open, which
 * refuses a new name that breaks the name rule, as a store made before the
 * rule may hold. Such a name is mended: each byte that breaks the rule
 * becomes '_' (every non-ASCII byte, if the name is not UTF-8), and a
 * suffix keeps it unique; an info line says so.
 * ------------------------------------------------------------------------ */
/* Mend name (cap bytes, at most max of them) so that it keeps the rule and
 * taken(ctx, candidate) is false; true if it changed. */
static bool name_mend(char *name, size_t cap, size_t max,
                      bool (*taken)(const void *ctx, const char *name), const void *ctx)
{
    if (!mms_name_fault(name, max))
        return false;
    char base[64];
    snprintf(base, sizeof base, "%s", name);
    if (base[0] == '-')
        base[0] = '_';
    for (char *p = base; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '/')
            *p = '_';
    for (char *p = base; mms_name_fault(base, max) && *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '_';
    base[max - 8] = 0; /* room for a suffix */
    snprintf(name, cap, "%s", base);
    for (unsigned k = 2; taken(ctx, name); k++)
        snprintf(name, cap, "%s_%u", base, k);
    return true;
}

static bool table_taken(const void *ctx, const char *name)
{
    const struct sv_store *st = ctx;
    unsigned n = 0;
    for (uint32_t i = 0; i < st->ntables; i++)
        n += strcmp(st->t[i].name, name) == 0;
    return n > 1; /* the one being mended is among them */
}

static bool field_taken(const void *ctx, const char *name)
{
    const struct sv_table *t = ctx;
    unsigned n = 0;
    for (uint32_t k = 0; k < t->nfields; k++)
        n += strcmp(t->f[k].name, name) == 0;
    return n > 1;
}

static void names_mend(struct rec *R)
{
    char old[64], shown[4 * 64 + 1];
    for (uint32_t i = 0; i < R->st.ntables; i++) {
        struct sv_table *t = &R->st.t[i];
        if (t->bad)
            continue;
        snprintf(old, sizeof old, "%s", t->name);
        if (name_mend(t->name, sizeof t->name, 63, table_taken, &R->st))
            say(R, "info", "table", "name=%s -- renamed %s: the name breaks the name rule (%s)",
                tool_name_shown(old, shown), t->name, mms_name_fault(old, 63));
        for (uint32_t k = 0; k < t->nfields; k++) {
            struct sv_field *f = &t->f[k];
            snprintf(old, sizeof old, "%s", f->name);
            if (!name_mend(f->name, sizeof f->name, 47, field_taken, t))
                continue;
            say(R, "info", "field", "table=%s field=%s -- renamed %s: the name breaks the name "
                "rule (%s)", t->name, tool_name_shown(old, shown), f->name, mms_name_fault(old, 47));
            for (uint32_t x = 0; x < t->nix; x++)
                if (strcmp(t->ix[x].field, old) == 0)
                    snprintf(t->ix[x].field, sizeof t->ix[x].field, "%s", f->name);
        }
    }
}

/* Everything between the source's reading and DEST's commit. */
static int salvage_all(struct rec *R)
{
    uint32_t n = R->st.ntables;
    uint32_t maxrec = 1;
    names_mend(R);
    for (uint32_t i = 0; i < n; i++) {
        R->tab[i].src = &R->st.t[i];
        if (R->st.t[i].bad) {
            say(R, "drop", "table", "name=%s -- its catalog entry is damaged (%s): the table "
                "cannot be read", R->st.t[i].name, R->st.t[i].bad);
            continue;
        }
        if (R->st.t[i].record_size > maxrec)
            maxrec = R->st.t[i].record_size;
        if (plan_table(R, &R->tab[i]))
            return 1;
    }
    if (R->s && tables_create(R))
        return 1;
    if (!R->s)
        for (uint32_t i = 0; i < n; i++)
            if (!R->tab[i].src->bad && schema_make(R, &R->tab[i]))
                return 1;
    uint8_t *rec = malloc(maxrec);
    if (!rec)
        return tool_err("out of memory");
    int rc = 0;
    for (uint32_t i = 0; i < n && !rc; i++)
        if (!R->tab[i].src->bad)
            rc = records_fill(R, &R->tab[i], rec);
    free(rec);
    return rc ? rc : root_salvage(R);
}

static void tables_report(struct rec *R)
{
    for (uint32_t i = 0; i < R->st.ntables; i++) {
        struct rtab *rt = &R->tab[i];
        if (rt->src->bad)
            continue;
        printf("table %s slots=%llu kept=%llu dropped=%llu cleared=%llu deleted=%llu\n",
               rt->src->name, (unsigned long long)rt->src->count, (unsigned long long)rt->kept,
               (unsigned long long)rt->dropped, (unsigned long long)rt->cleared,
               (unsigned long long)rt->deleted);
        R->kept += rt->kept;
        R->dropped += rt->dropped;
        R->cleared += rt->cleared;
    }
}

/* Build DEST in tmp (a new store, one transaction), then rename it. */
static int dest_build(struct rec *R, const char *tmp, const char *dest)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_EXCL;
    int r = mms_open(tmp, &o, &R->s), rc = 0;
    if (r) {
        R->s = NULL;
        return tool_fail("cannot create", tmp, r);
    }
    if ((r = mms_txn_begin(R->s, 0)))
        rc = tool_fail("cannot write", tmp, r);
    if (!rc) {
        rc = salvage_all(R);
        if (!rc && (r = mms_txn_commit(R->s)))
            rc = tool_fail("cannot commit the salvaged store in", tmp, r);
        else if (rc)
            mms_txn_abort(R->s);
    }
    if (!rc)
        indexes_build(R);
    if ((r = mms_close(R->s)) && !rc)
        rc = tool_fail("cannot close", tmp, r);
    R->s = NULL;
    if (rc)
        return rc;
    char lock[4400];
    snprintf(lock, sizeof lock, "%s/lock", tmp);
    unlink(lock);
    sync_dir(tmp);
    if (rename(tmp, dest) != 0)
        return tool_err("cannot rename %s to %s: %s", tmp, dest, strerror(errno));
    char parent[4200];
    snprintf(parent, sizeof parent, "%s", dest);
    char *slash = strrchr(parent, '/');
    if (slash)
        *(slash == parent ? slash + 1 : slash) = 0;
    sync_dir(slash ? parent : ".");
    return 0;
}

static int dest_verify(struct rec *R, const char *dest)
{
    mms_store *s;
    char msg[512] = "";
    int r = tool_open_inspect(dest, &s);
    if (!r) {
        r = mms_verify(s, msg, sizeof msg);
        int r2 = mms_close(s);
        if (!r)
            r = r2;
    }
    if (r) {
        printf("verify %s -- NOT SOUND: %s\n", dest, msg[0] ? msg : mms_strerror(r));
        tool_err("the salvaged store %s is not sound (a bug of mms recover): %s", dest,
                 msg[0] ? msg : mms_strerror(r));
        return 1;
    }
    printf("verify %s -- ok\n", dest);
    (void)R;
    return 0;
}

/* Is the store open in some process (a live store needs no salvage, and its
 * files change under the reader)? The lock file's byte 0 is held shared by
 * every open handle (FORMAT §5). */
static bool store_in_use(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/lock", dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO: no blocking */
    if (fd < 0)
        return false;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    bool busy = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return busy;
}

/* Is path (which need not exist) dir itself or inside it? By the real
 * paths of dir and of path's deepest existing ancestor. */
static bool path_inside(const char *path, const char *dir)
{
    char rd[PATH_MAX], up[PATH_MAX], rp[PATH_MAX];
    if (!realpath(dir, rd))
        return false;
    snprintf(up, sizeof up, "%s", path);
    for (;;) {
        if (realpath(up, rp)) {
            size_t n = strlen(rd);
            return strncmp(rp, rd, n) == 0 && (rp[n] == 0 || rp[n] == '/' || n == 1);
        }
        char *slash = strrchr(up, '/');
        if (!slash)
            return realpath(".", rp) && path_inside(rp, dir);
        if (slash == up)
            return false;
        *slash = 0;
    }
}

static int recover(const char *dir, const char *dest, bool dry, bool follow)
{
    struct stat sb;
    if (!dry && lstat(dest, &sb) == 0) {
        tool_err("%s exists: recover writes a new store (remove it or name another with --out)",
                 dest);
        return 2;
    }
    if (!dry && path_inside(dest, dir)) {
        tool_err("%s is inside the store being salvaged, %s: name a place outside it with --out",
                 dest, dir);
        return 2;
    }
    if (store_in_use(dir)) {
        tool_err("%s is open in a running process: close it first (mms copy makes a copy of a "
                 "live store)", dir);
        return 2;
    }
    struct rec R;
    memset(&R, 0, sizeof R);
    R.dry = dry;
    R.follow = follow;
    char why[600] = "";
    printf("info source -- %s\n", dir);
    int rc = sv_open(&R.st, dir, sv_note, &R, why, sizeof why);
    if (rc) {
        printf("fatal store -- %s\n", why);
        tool_err("cannot salvage %s: %s", dir, why);
        sv_close(&R.st);
        tool_finish_output(NULL);
        return 2;
    }
    R.tab = calloc(R.st.ntables ? R.st.ntables : 1, sizeof *R.tab);
    if (!R.tab) {
        sv_close(&R.st);
        return tool_err("out of memory"), 2;
    }
    if (R.st.fixed_base)
        say(&R, "info", "store", "-- a fixed-address store: DEST is an ordinary one (pointers "
            "stored in heap objects are not translated)");
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.mms-recover-%d", dest, (int)getpid());
    if (dry) {
        rc = salvage_all(&R);
        if (!rc)
            indexes_build(&R);
    } else {
        tool_rm_dir(tmp);
        mms_leftovers_remove(dest, ".mms-recover-", NULL); /* recovers to dest that were killed */
        rc = dest_build(&R, tmp, dest);
        if (rc)
            tool_rm_dir(tmp);
    }
    sv_bad_report(&R.st); /* pages first read while salvaging */
    if (!rc) {
        tables_report(&R);
        if (!dry) {
            printf("dest %s -- %u table%s, %llu records\n", dest, R.st.ntables,
                   R.st.ntables == 1 ? "" : "s", (unsigned long long)R.kept);
            rc = dest_verify(&R, dest) ? 2 : 0;
        }
    }
    if (!rc)
        rc = R.losses ? 1 : 0;
    else
        rc = 2;
    printf("summary tables=%u kept=%llu dropped=%llu cleared=%llu losses=%llu exit=%d -- %s\n",
           R.st.ntables, (unsigned long long)R.kept, (unsigned long long)R.dropped,
           (unsigned long long)R.cleared, (unsigned long long)R.losses, rc,
           rc == 0 ? "nothing lost" : rc == 1 ? "salvaged with losses (the drop and clear lines)"
                                              : "nothing salvaged");
    for (uint32_t i = 0; i < R.st.ntables; i++) {
        free(R.tab[i].state);
        free(R.tab[i].f);
        free(R.tab[i].target);
    }
    free(R.tab);
    sv_close(&R.st);
    int out = tool_finish_output(NULL);
    return out && !rc ? 1 : rc;
}

static int run_recover(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *dir, *out = NULL;
    bool dry = false, follow = false;
    const struct tool_opt opts[] = {{"out", true, &out, NULL},
                                    {"dry-run", false, NULL, &dry},
                                    {"follow-refs", false, NULL, &follow}};
    int rc = tool_args(cmd, argc, argv, opts, 3, &dir, 1);
    if (rc >= 0)
        return rc;
    char dest[PATH_MAX + 16];
    if (out) {
        /* DEST/ is DEST (as for copy and load): the store is built beside it */
        size_t n = strlen(out);
        while (n > 1 && out[n - 1] == '/')
            n--;
        if (n == 0) /* it would salvage everything, then fail to rename */
            return tool_usage_err(cmd, "DEST is empty");
        snprintf(dest, sizeof dest, "%.*s", (int)n, out);
    } else {
        /* Beside DIR: by its real path when its name is not one (".",
         * "..", "/"), whose DIR.recovered would be inside it. */
        char name[PATH_MAX], real[PATH_MAX];
        snprintf(name, sizeof name, "%s", dir);
        size_t n = strlen(name);
        while (n > 1 && name[n - 1] == '/')
            name[--n] = 0;
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        const char *d = name;
        if ((strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(name, "/") == 0) &&
            realpath(dir, real))
            d = real;
        snprintf(dest, sizeof dest, "%s.recovered", d);
    }
    return recover(dir, dest, dry, follow);
}

const struct tool_cmd tool_cmd_recover = {
    "recover", "DIR [--out DEST] [--dry-run] [--follow-refs]",
    "Salvage a damaged store into a new one, DEST, and report what was lost.",
    "For stores damaged by causes outside the library: a disk that corrupts, a\n"
    "hand edit, a truncated file, a lost journal. DIR is never written. Its files\n"
    "are read as doc/FORMAT.md says, trusting nothing: the header checksum, the\n"
    "journal's commits as far as their chained checksums hold, the catalog, every\n"
    "record's slot and its ref, string and blob values. What checks out is written\n"
    "to DEST, a new store built through the library (same tables, schemas and\n"
    "record indices, the root, the indexes), which is verified at the end.\n"
    "\n"
    "A table whose catalog entry is damaged is dropped; a record that cannot be\n"
    "proved live (past the end of a truncated file) is dropped and its slot stays\n"
    "deleted; a ref, string or blob value that does not check out is cleared (set\n"
    "to null) and its record kept. A page that cannot be read (an I/O error) is\n"
    "read as zeros and reported; records on it are dropped. A root that is a\n"
    "record or a string is kept; one that is another heap object is dropped\n"
    "unless --follow-refs.\n"
    "\n"
    "Output, one line per finding: CLASS SUBJECT [key=value ...] -- text, CLASS\n"
    "being info, drop or clear; per table a line of counts; then dest, verify and\n"
    "summary lines. Exit 0: nothing lost; 1: salvaged with losses (the drop and\n"
    "clear lines); 2: nothing salvaged (the header or catalog is unreadable, DEST\n"
    "exists or is inside DIR), the reason on stderr. A store that cannot be read\n"
    "at all gives a 'fatal store -- REASON' line instead of the tables and the\n"
    "summary.\n"
    "\n"
    "  --out DEST   where to write the salvaged store (default DIR.recovered,\n"
    "               beside DIR even when DIR is '.'); it must not exist\n"
    "  --dry-run    read and report only: write nothing\n"
    "  --follow-refs  copy a root heap object with every object reachable from it,\n"
    "               taking each word that equals a live allocation's ref for a ref\n"
    "               and rewriting it to the copy's (an integer that happens to\n"
    "               equal one is rewritten too; the report counts them)\n",
    run_recover};

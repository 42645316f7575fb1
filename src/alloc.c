/*
 * alloc.c -- the heap allocator of region 0.
 *
 * All of its state lives in the heap itself (store header and page
 * descriptors), so it is transactional like any other data: an abort or a
 * crash before commit undoes allocations and frees alike, and nothing leaks.
 *
 * NOTES ON THE DESIGN
 *
 * The heap is a sequence of 4 MiB units. A *normal segment* is one unit of
 * 1024 pages: a table of 1024 16-byte page descriptors (after the store
 * header in segment 0), then pages handed out as
 *   - slabs: 1-8 pages cut into slots of one size class (16..2048 bytes),
 *     with a header and a used-slot bitmap in the slab's first page;
 *   - large allocations: runs of whole pages;
 *   - free spans: runs of free pages, in bins by length.
 * A *huge segment* is a run of units holding one allocation bigger than a
 * normal segment can; its first page is its header. A *free unit run* is
 * what a freed huge segment becomes; normal segments are cut from free unit
 * runs (or from the end of the heap) when the spans run out.
 *
 * desc[0] of every segment says which of the three it is; walking from
 * segment 0 by each segment's length visits them all. Any offset maps to
 * its segment by division, and the page descriptor says what the page is,
 * so free() checks that a ref names the start of a live allocation and
 * refuses anything else (MMS_EBADREF) without touching the heap.
 *
 * The top. The heap's size (region 0's committed size) is where its
 * bytes end; since format version 3 it is any whole number of pages, so
 * the last segment may be partial: its descriptors exist (they are at its
 * start), and a free span at its end may reach past the top. Whoever takes
 * pages (span_alloc, span_take_at, units_take, heap_extend) first moves the
 * top over them (heap_cover), so every page in use is below it and region
 * 0's file grows with what is used, not in units: a new store is its
 * header and descriptors, 36 KiB. A version-2 store keeps a top of whole
 * units, which is what version-2 libraries read.
 *
 * Every page of a span carries its kind (head or continuation); the last
 * page of a free span also carries the distance to its head, so freeing
 * merges with both neighbours in O(1).
 *
 * The header counts live bytes, live objects and free bytes; mms_verify()
 * recomputes all three by walking the heap.
 *
 * Compaction (compact.c) gives the pages of free spans and free unit runs
 * back to the file system, and flags those spans and runs HOLES
 * (internal.h): whoever takes pages out of a flagged span or run first
 * allocates their blocks again (holes_fill), so that a full disk is an
 * error here, inside mms_alloc, and never a SIGBUS when a commit copies
 * the pages into the file. A span or run made by merging takes the flags
 * of its parts; the first page of every unit is never given back, so the
 * descriptor a split or merge writes there is always backed.
 *
 * Space freed by small and large objects is reused for small and large
 * objects; a normal segment that has become entirely free is turned back
 * into a free unit (for huge allocations) when a huge allocation finds no
 * free units, not before: that keeps alloc/free of one object from making
 * and unmaking a segment.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SPAN (MMS__SEG_PAGES - MMS__DESC_PAGES) /* 1020 pages */

static const uint16_t class_size[MMS__NCLASS] = {
    16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256,
    320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048};

static struct {
    uint8_t pages, pad;
    uint16_t nslots, first;
} geom[MMS__NCLASS];
static uint8_t size_class[MMS__MAX_SMALL / 16 + 1];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Slab geometry (doc/FORMAT.md): the smallest of 1, 2, 4, 8 pages that
 * wastes at most 1/8 of the slab (8 pages if none does); slots start after
 * the 16-byte header and one bitmap bit per slot, rounded up to 16 bytes. */
static void tables_init(void)
{
    for (int c = 0; c < MMS__NCLASS; c++) {
        unsigned size = class_size[c];
        for (unsigned p = 1; p <= 8; p *= 2) {
            unsigned bytes = p * MMS__PAGE, n = (bytes - 16) / size, first;
            for (;;) {
                first = (16 + 8 * ((n + 63) / 64) + 15) & ~15u;
                unsigned n2 = (bytes - first) / size;
                if (n2 >= n)
                    break;
                n = n2;
            }
            unsigned waste = bytes - first - n * size;
            if (waste * 8 <= bytes || p == 8) {
                geom[c].pages = (uint8_t)p;
                geom[c].nslots = (uint16_t)n;
                geom[c].first = (uint16_t)first;
                break;
            }
        }
    }
    int c = 0;
    for (unsigned i = 0; i <= MMS__MAX_SMALL / 16; i++) {
        while (class_size[c] < i * 16)
            c++;
        size_class[i] = (uint8_t)c;
    }
}

static void tables(void)
{
    pthread_once(&tables_once, tables_init);
}

static unsigned bin_of(uint32_t n)
{
    if (n <= 16)
        return n - 1;
    return 12 + (31 - (unsigned)__builtin_clz(n));
}

/* ------------------------------------------------------------------------
 * Addressing
 * ------------------------------------------------------------------------ */
static inline char *hbase(const mms_store *s)
{
    return s->view.base[0];
}
/* The heap's size as this handle sees it. In a write transaction it is
 * the region's committed size (mapped before it is set: heap_cover).
 * Outside one, other handles' commits move that size under this handle
 * before it maps what they added: then what is mapped is the top, so no
 * read follows the header past the mapping. */
static inline uint64_t heap_top(const mms_store *s)
{
    uint64_t size = mms__rtab(s)[0].size;
    return size < s->reg[0].mapped ? size : s->reg[0].mapped;
}
/* Units the heap reaches into: the last may be partial (NOTES). */
static inline uint32_t nsegs(const mms_store *s)
{
    return (uint32_t)((heap_top(s) + MMS__SEG - 1) >> MMS__SEG_SHIFT);
}
static inline uint32_t meta_pages(uint32_t seg)
{
    return seg ? MMS__DESC_PAGES : MMS__HDR_PAGES + MMS__DESC_PAGES;
}
static inline struct mms__desc *seg_desc(const mms_store *s, uint32_t seg)
{
    return (struct mms__desc *)(void *)(hbase(s) + ((uint64_t)seg << MMS__SEG_SHIFT) +
                                        (seg ? 0 : MMS__HDR_BYTES));
}
static inline struct mms__desc *D(const mms_store *s, uint32_t pg)
{
    return seg_desc(s, pg / MMS__SEG_PAGES) + pg % MMS__SEG_PAGES;
}
static inline char *page_ptr(const mms_store *s, uint32_t pg)
{
    return hbase(s) + (uint64_t)pg * MMS__PAGE;
}
static inline void set_desc(struct mms__desc *d, uint8_t kind, uint8_t cls, uint32_t len)
{
    d->kind = kind;
    d->cls = cls;
    d->flags = 0;
    d->len = len;
    d->next = 0;
    d->prev = 0;
}

/* ------------------------------------------------------------------------
 * Doubly linked lists through descriptors. A list is named by its head
 * field in the store header; nodes are page numbers (spans and slabs) or
 * segment ids (free unit runs: units).
 *
 * Invariant D (damage): a page number, segment id or length read from the
 * heap is checked before it is followed -- a list head or link names a
 * node of the heap, a span or run ends inside its segment or the heap, a
 * node's neighbours name it back -- so a damaged heap gives MMS_ECORRUPT
 * and is never read or written outside its bytes. A call that fails so may
 * have changed the heap already: the transaction is for aborting.
 * ------------------------------------------------------------------------ */
static struct mms__desc *node(const mms_store *s, bool units, uint32_t n)
{
    return units ? seg_desc(s, n) : D(s, n);
}

/* Can n be a node: a segment past segment 0, or a page of a normal
 * segment's range past its descriptors (whose descriptor is then in the
 * heap; a free span's own pages may lie past the top). */
static bool node_ok(const mms_store *s, bool units, uint32_t n)
{
    if (units)
        return n > 0 && n < nsegs(s);
    uint32_t u = n / MMS__SEG_PAGES;
    return u < nsegs(s) && n % MMS__SEG_PAGES >= meta_pages(u);
}

static int bad_link(bool units, uint32_t n)
{
    return MMS__CORRUPT("heap: a free list's link at %s %u is damaged", units ? "segment" : "page",
                        n);
}

static int list_push(const mms_store *s, uint32_t *head, bool units, uint32_t n)
{
    if (*head && !node_ok(s, units, *head))
        return bad_link(units, *head);
    struct mms__desc *d = node(s, units, n);
    d->prev = 0;
    d->next = *head;
    if (*head)
        node(s, units, *head)->prev = n;
    *head = n;
    return 0;
}

static int list_remove(const mms_store *s, uint32_t *head, bool units, uint32_t n)
{
    struct mms__desc *d = node(s, units, n);
    uint32_t p = d->prev, x = d->next;
    if ((p ? !node_ok(s, units, p) || node(s, units, p)->next != n : *head != n) ||
        (x && (!node_ok(s, units, x) || node(s, units, x)->prev != n)))
        return bad_link(units, n);
    if (p)
        node(s, units, p)->next = x;
    else
        *head = x;
    if (x)
        node(s, units, x)->prev = p;
    d->next = d->prev = 0;
    return 0;
}

/* ------------------------------------------------------------------------
 * Segment starts. Only the first unit of a segment holds a descriptor; the
 * other units of a huge segment hold the application's bytes. Checking a
 * ref therefore needs to know which units start a segment: the handle
 * keeps a bitmap of them, rebuilt from the chain after an abort.
 * ------------------------------------------------------------------------ */
void mms__heap_forget(mms_store *s)
{
    s->segmap_bits = 0;
}

static int segmap_fit(mms_store *s, uint32_t bits)
{
    if (bits <= s->segmap_cap)
        return 0;
    uint32_t cap = s->segmap_cap ? s->segmap_cap : 1024;
    while (cap < bits)
        cap *= 2;
    uint64_t *m = realloc(s->segmap, cap / 8);
    if (!m)
        return -ENOMEM;
    memset((char *)m + s->segmap_cap / 8, 0, (cap - s->segmap_cap) / 8);
    s->segmap = m;
    s->segmap_cap = cap;
    return 0;
}

static void segmap_set(mms_store *s, uint32_t u, bool start)
{
    if (u >= s->segmap_bits)
        return; /* not built (or being built); nothing to keep in sync */
    if (start)
        s->segmap[u / 64] |= UINT64_C(1) << (u % 64);
    else
        s->segmap[u / 64] &= ~(UINT64_C(1) << (u % 64));
}

static int segmap_build(mms_store *s)
{
    uint32_t n = nsegs(s);
    int r = segmap_fit(s, n);
    if (r)
        return r;
    memset(s->segmap, 0, s->segmap_cap / 8);
    for (uint32_t u = 0; u < n;) {
        const struct mms__desc *d = seg_desc(s, u);
        uint32_t len = d->kind == MMS__S_HUGE || d->kind == MMS__S_FREE ? d->len : 1;
        if ((d->kind != MMS__S_NORMAL && len == d->len && (len == 0 || len > n - u)) ||
            (d->kind != MMS__S_NORMAL && d->kind != MMS__S_HUGE && d->kind != MMS__S_FREE))
            return MMS__CORRUPT("heap: segment %u has kind %u and length %u", u, d->kind, d->len);
        s->segmap[u / 64] |= UINT64_C(1) << (u % 64);
        u += len;
    }
    s->segmap_bits = n;
    return 0;
}

/* Does unit u start a segment? Errors come back as negative values. */
static int seg_is_start(const mms_store *cs, uint32_t u)
{
    mms_store *s = (mms_store *)cs; /* the map is a cache */
    if (s->segmap_bits != nsegs(s)) {
        int r = segmap_build(s);
        if (r)
            return r;
    }
    return u < s->segmap_bits && (s->segmap[u / 64] >> (u % 64) & 1);
}

/* The heap grew to n units: the map covers them (new units are starts only
 * where the caller says so). */
static int segmap_grow(mms_store *s, uint32_t n)
{
    if (s->segmap_bits == 0)
        return 0;
    int r = segmap_fit(s, n);
    if (r) {
        s->segmap_bits = 0;
        return 0;
    }
    s->segmap_bits = n;
    return 0;
}

/* The heap reaches at least end bytes (NOTES: the top). Region 0's file
 * grows with it, in map.c's steps, preallocated. A version-2 store keeps
 * its top a whole number of units, as version-2 libraries require. A
 * failure changes nothing. */
static int heap_cover(mms_store *s, uint64_t end)
{
    /* A write transaction maps its committed heap: heap_top() is its size. */
    assert(mms__rtab(s)[0].size <= s->reg[0].mapped);
    if (end <= heap_top(s))
        return 0;
    end = mms__round_up(end, mms__hdr(s)->version < 3 ? MMS__SEG : MMS__PAGE);
    if ((end >> MMS__PAGE_SHIFT) > UINT32_MAX)
        return mms__fail(MMS_EFULL, "the heap cannot pass 16 TiB");
    int r = mms__map_grow(s, 0, end);
    if (r)
        return r;
    mms__rtab(s)[0].size = end;
    return segmap_grow(s, nsegs(s));
}

/* ------------------------------------------------------------------------
 * Spans
 * ------------------------------------------------------------------------ */

/* Make [pg, pg+n) one free span in its bin, with descriptor flags (HOLES
 * or 0). Pages other than the head and the tail must already be FREE_CONT
 * unless mark_all. */
static int span_make_free(const mms_store *s, uint32_t pg, uint32_t n, bool mark_all,
                          uint16_t flags)
{
    struct mms__hdr *h = mms__hdr(s);
    if (mark_all)
        for (uint32_t i = 1; i + 1 < n; i++)
            set_desc(D(s, pg + i), MMS__D_FREE_CONT, 0, 0);
    if (n > 1)
        set_desc(D(s, pg + n - 1), MMS__D_FREE_CONT, 0, n - 1);
    set_desc(D(s, pg), MMS__D_FREE_HEAD, 0, n);
    D(s, pg)->flags = flags;
    return list_push(s, &h->bin_head[bin_of(n)], false, pg);
}

/* Pages of a HOLES span or run about to be handed out: their blocks are
 * allocated first (NOTES), so a full disk is this error. */
static int holes_fill(const mms_store *s, uint64_t off, uint64_t len)
{
    int r = mms__os_fill(s->reg[0].fd, off, len);
    if (r)
        return mms__fail(r, "cannot allocate disk space for %llu bytes of heap at %llu: %s",
                         (unsigned long long)len, (unsigned long long)off, mms_strerror(r));
    return 0;
}

/* Is pg the head of a free span that ends inside its segment (Invariant D)? */
static bool span_ok(const mms_store *s, uint32_t pg)
{
    if (!node_ok(s, false, pg))
        return false;
    const struct mms__desc *d = D(s, pg);
    return d->kind == MMS__D_FREE_HEAD && d->len >= 1 &&
           d->len <= MMS__SEG_PAGES - pg % MMS__SEG_PAGES;
}

static int span_unlink(const mms_store *s, uint32_t pg)
{
    if (!span_ok(s, pg))
        return MMS__CORRUPT("heap: the free span at page %u is damaged", pg);
    return list_remove(s, &mms__hdr(s)->bin_head[bin_of(D(s, pg)->len)], false, pg);
}

/* Return [pg, pg+n) to the free spans, merging with free neighbours. The
 * neighbours are checked (Invariant D) before anything changes. */
static int span_free(const mms_store *s, uint32_t pg, uint32_t n)
{
    struct mms__hdr *h = mms__hdr(s);
    uint32_t seg = pg / MMS__SEG_PAGES;
    uint32_t lo = seg * MMS__SEG_PAGES + meta_pages(seg), hi = (seg + 1) * MMS__SEG_PAGES;
    uint32_t right = pg + n < hi && D(s, pg + n)->kind == MMS__D_FREE_HEAD ? pg + n : 0, left = 0;
    if (pg > lo) {
        const struct mms__desc *p = D(s, pg - 1);
        if (p->kind == MMS__D_FREE_HEAD)
            left = pg - 1;
        else if (p->kind == MMS__D_FREE_CONT && p->len && p->len <= pg - 1 - lo)
            left = pg - 1 - p->len;
        if (left && D(s, left)->kind != MMS__D_FREE_HEAD)
            left = 0;
    }
    if ((right && !span_ok(s, right)) || (left && D(s, left)->len != pg - left))
        return MMS__CORRUPT("heap: a free span next to pages %u..%u is damaged", pg, pg + n - 1);
    int r;
    if ((right && (r = span_unlink(s, right))) || (left && (r = span_unlink(s, left))))
        return r;
    uint16_t flags = 0;
    h->free_bytes += (uint64_t)n * MMS__PAGE;
    for (uint32_t i = 0; i < n; i++)
        set_desc(D(s, pg + i), MMS__D_FREE_CONT, 0, 0);
    if (right) {
        uint32_t m = D(s, right)->len;
        flags |= D(s, right)->flags;
        set_desc(D(s, right), MMS__D_FREE_CONT, 0, 0);
        n += m;
    }
    if (left) {
        uint32_t m = D(s, left)->len;
        flags |= D(s, left)->flags;
        if (m > 1)
            set_desc(D(s, pg - 1), MMS__D_FREE_CONT, 0, 0);
        n += m;
        pg = left;
    }
    return span_make_free(s, pg, n, false, flags);
}

static int segment_new(mms_store *s);

/* Take n pages (n <= MAX_SPAN) from the free spans. The caller marks them.
 * free_bytes is debited here. */
static int span_alloc(mms_store *s, uint32_t n, uint32_t *out)
{
    struct mms__hdr *h = mms__hdr(s);
    for (int attempt = 0; attempt < 2; attempt++) {
        for (unsigned b = bin_of(n); b < MMS__NBIN; b++) {
            uint32_t pg = h->bin_head[b];
            for (int look = 0; pg && look < 64; look++) {
                if (!span_ok(s, pg) || bin_of(D(s, pg)->len) != b)
                    return MMS__CORRUPT("heap: free list %u names page %u, not a free span "
                                        "of its size", b, pg);
                uint32_t len = D(s, pg)->len;
                uint16_t flags = D(s, pg)->flags;
                if (len >= n) {
                    int r = heap_cover(s, (uint64_t)(pg + n) * MMS__PAGE);
                    if (!r && (flags & MMS__DF_HOLES))
                        r = holes_fill(s, (uint64_t)pg * MMS__PAGE, (uint64_t)n * MMS__PAGE);
                    if (r)
                        return r;
                    /* The remainder's pages are FREE_CONT already. */
                    if ((r = span_unlink(s, pg)) ||
                        (len > n && (r = span_make_free(s, pg + n, len - n, false, flags))))
                        return r;
                    h->free_bytes -= (uint64_t)n * MMS__PAGE;
                    *out = pg;
                    return 0;
                }
                pg = D(s, pg)->next;
            }
        }
        if (attempt == 0) {
            int r = segment_new(s);
            if (r)
                return r;
        }
    }
    return MMS__CORRUPT("heap: a new segment did not yield %u free pages", n);
}

/* ------------------------------------------------------------------------
 * Segments and units
 * ------------------------------------------------------------------------ */
static int segment_init_normal(mms_store *s, uint32_t seg, uint16_t flags)
{
    struct mms__desc *d = seg_desc(s, seg);
    uint32_t meta = meta_pages(seg);
    set_desc(&d[0], MMS__S_NORMAL, 0, 1);
    for (uint32_t i = 1; i < meta; i++)
        set_desc(&d[i], MMS__D_META, 0, 0);
    uint32_t first = seg * MMS__SEG_PAGES + meta;
    mms__hdr(s)->free_bytes += (uint64_t)(MMS__SEG_PAGES - meta) * MMS__PAGE;
    return span_make_free(s, first, MMS__SEG_PAGES - meta, true, flags);
}

/* Add units at the heap's end, the first bytes of them in the heap (the
 * descriptors of a normal segment, all of a huge one). *seg gets the first
 * new segment id. */
static int heap_extend(mms_store *s, uint64_t bytes, uint32_t *seg)
{
    uint32_t u = nsegs(s);
    int r = heap_cover(s, ((uint64_t)u << MMS__SEG_SHIFT) + bytes);
    if (r)
        return r;
    *seg = u;
    segmap_set(s, u, true);
    return 0;
}

/* Take a run of k free units (first fit) into *out, 0 if there is none;
 * *flags gets the run's descriptor flags. The first fill bytes of a HOLES
 * run get their blocks first (a failure changes nothing). */
static int units_take(mms_store *s, uint32_t k, uint64_t fill, uint32_t *out, uint16_t *flags)
{
    struct mms__hdr *h = mms__hdr(s);
    uint32_t n = nsegs(s), seen = 0;
    *out = 0;
    for (uint32_t u = h->free_units; u; u = seg_desc(s, u)->next) {
        /* Invariant D; and no more runs than units (a cycle). */
        struct mms__desc *d = node_ok(s, true, u) ? seg_desc(s, u) : NULL;
        if (!d || d->kind != MMS__S_FREE || d->len == 0 || d->len > n - u || ++seen > n)
            return MMS__CORRUPT("heap: the free unit list is damaged at segment %u", u);
        if (d->len < k)
            continue;
        uint32_t len = d->len;
        *flags = d->flags;
        /* A run that ends the heap may reach past its top. */
        int r = heap_cover(s, ((uint64_t)u << MMS__SEG_SHIFT) + fill);
        if (!r && (d->flags & MMS__DF_HOLES))
            r = holes_fill(s, (uint64_t)u << MMS__SEG_SHIFT, fill);
        if (r)
            return r;
        if ((r = list_remove(s, &h->free_units, true, u)))
            return r;
        if (len > k) {
            struct mms__desc *rest = seg_desc(s, u + k);
            set_desc(rest, MMS__S_FREE, 0, len - k);
            rest->flags = *flags;
            if ((r = list_push(s, &h->free_units, true, u + k)))
                return r;
            segmap_set(s, u + k, true);
        }
        h->free_bytes -= (uint64_t)k << MMS__SEG_SHIFT;
        *out = u;
        return 0;
    }
    return 0;
}

/* A normal segment whose pages are all one free span is as good as a free
 * unit, and a free unit is what a huge allocation needs. */
static bool segment_empty(const mms_store *s, uint32_t u)
{
    uint32_t meta = meta_pages(u), first = u * MMS__SEG_PAGES + meta;
    const struct mms__desc *d = D(s, first);
    return d->kind == MMS__D_FREE_HEAD && d->len == MMS__SEG_PAGES - meta;
}

/* Turn the empty normal segment u into a free unit run of one unit. */
static int segment_release(mms_store *s, uint32_t u)
{
    struct mms__hdr *h = mms__hdr(s);
    uint16_t flags = D(s, u * MMS__SEG_PAGES + MMS__DESC_PAGES)->flags;
    int r = span_unlink(s, u * MMS__SEG_PAGES + MMS__DESC_PAGES);
    if (r)
        return r;
    h->free_bytes += (uint64_t)MMS__DESC_PAGES * MMS__PAGE;
    set_desc(seg_desc(s, u), MMS__S_FREE, 0, 1);
    seg_desc(s, u)->flags = flags;
    return list_push(s, &h->free_units, true, u);
}

/* Done lazily, when a huge allocation finds no fit: turn empty normal
 * segments into free units and merge adjacent free unit runs. */
static int units_reclaim(mms_store *s)
{
    struct mms__hdr *h = mms__hdr(s);
    uint32_t n = nsegs(s);
    int r;
    for (uint32_t u = 1; u < n;) {
        struct mms__desc *d = seg_desc(s, u);
        if (d->kind == MMS__S_NORMAL && segment_empty(s, u) && (r = segment_release(s, u)))
            return r;
        uint32_t len = d->kind == MMS__S_NORMAL ? 1 : d->len;
        if (len == 0 || len > n - u)
            return MMS__CORRUPT("heap: segment %u has kind %u and length %u", u, d->kind, d->len);
        while (d->kind == MMS__S_FREE && u + d->len < n) {
            uint32_t v = u + d->len;
            struct mms__desc *e = seg_desc(s, v);
            if (e->kind == MMS__S_NORMAL && segment_empty(s, v) && (r = segment_release(s, v)))
                return r;
            if (e->kind != MMS__S_FREE || e->len == 0 || e->len > n - v)
                break;
            if ((r = list_remove(s, &h->free_units, true, v)))
                return r;
            d->len += e->len;
            d->flags |= e->flags;
            segmap_set(s, v, false);
        }
        u += d->kind == MMS__S_NORMAL ? 1 : d->len;
    }
    return 0;
}

static int segment_new(mms_store *s)
{
    uint32_t seg;
    uint16_t flags = 0;
    /* The descriptor pages are written now; the others when a span of
     * them is taken (span_alloc fills them then). */
    int r = units_take(s, 1, (uint64_t)MMS__DESC_PAGES * MMS__PAGE, &seg, &flags);
    if (!r && !seg) {
        flags = 0;
        r = heap_extend(s, (uint64_t)MMS__DESC_PAGES * MMS__PAGE, &seg);
    }
    if (r)
        return r;
    return segment_init_normal(s, seg, flags & MMS__DF_HOLES);
}

/* ------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------ */
/* Make pages [pg, pg + geom[c].pages), taken from the spans, an empty slab
 * of class c on its class's list. */
static int slab_init(mms_store *s, uint32_t pg, unsigned c)
{
    struct mms__hdr *h = mms__hdr(s);
    set_desc(D(s, pg), MMS__D_SLAB_HEAD, (uint8_t)c, geom[c].pages);
    for (uint32_t i = 1; i < geom[c].pages; i++)
        set_desc(D(s, pg + i), MMS__D_SLAB_CONT, (uint8_t)c, i);
    struct mms__slab *sl = (struct mms__slab *)(void *)page_ptr(s, pg);
    unsigned n = geom[c].nslots, words = (n + 63) / 64;
    sl->cls = (uint16_t)c;
    sl->nslots = (uint16_t)n;
    sl->nfree = (uint16_t)n;
    sl->first = geom[c].first;
    sl->hint = 0;
    sl->magic = MMS__SLAB_MAGIC;
    memset(sl->bitmap, 0, words * 8);
    if (n % 64) /* bits past the last slot read as used */
        sl->bitmap[words - 1] = ~UINT64_C(0) << (n % 64);
    h->free_bytes += (uint64_t)n * class_size[c];
    return list_push(s, &h->class_head[c], false, pg);
}

/* Slot slot of the slab at page pg (class c) becomes used: its bit, the
 * slab's free count (off the class's list when full), the heap's counts. */
static int slot_take(mms_store *s, struct mms__slab *sl, unsigned c, uint32_t pg, unsigned slot)
{
    struct mms__hdr *h = mms__hdr(s);
    int r;
    if (sl->nfree == 1 && (r = list_remove(s, &h->class_head[c], false, pg)))
        return r;
    sl->bitmap[slot / 64] |= UINT64_C(1) << (slot % 64);
    sl->nfree--;
    h->live_bytes += class_size[c];
    h->live_count++;
    h->free_bytes -= class_size[c];
    return 0;
}

static int alloc_small(mms_store *s, unsigned c, uint64_t *off)
{
    struct mms__hdr *h = mms__hdr(s);
    uint32_t pg = h->class_head[c];
    int r;
    if (!pg && ((r = span_alloc(s, geom[c].pages, &pg)) || (r = slab_init(s, pg, c))))
        return r;
    /* Invariant D: the list names pages of a normal segment below the top,
     * holding a slab header of the class (its descriptor is not read: that
     * would be one more cache miss per allocation; mms_verify reads it). */
    if (!node_ok(s, false, pg) || (uint64_t)(pg + geom[c].pages) * MMS__PAGE > heap_top(s))
        return MMS__CORRUPT("heap: slab list %u names page %u, not a slab of its class", c, pg);
    struct mms__slab *sl = (struct mms__slab *)(void *)page_ptr(s, pg);
    unsigned words = (sl->nslots + 63u) / 64u;
    if (sl->nfree == 0 || sl->cls != c || sl->nslots != geom[c].nslots ||
        sl->magic != MMS__SLAB_MAGIC)
        return MMS__CORRUPT("heap: slab at page %u on the free list of class %u is damaged", pg, c);
    unsigned w = sl->hint < words ? sl->hint : 0;
    for (unsigned i = 0; i < words && sl->bitmap[w] == ~UINT64_C(0); i++)
        w = w + 1 == words ? 0 : w + 1;
    if (sl->bitmap[w] == ~UINT64_C(0))
        return MMS__CORRUPT("heap: slab at page %u counts free slots but has none", pg);
    unsigned bit = (unsigned)__builtin_ctzll(~sl->bitmap[w]);
    if ((r = slot_take(s, sl, c, pg, w * 64 + bit)))
        return r;
    sl->hint = w;
    *off = (uint64_t)pg * MMS__PAGE + sl->first + (uint64_t)(w * 64 + bit) * class_size[c];
    return 0;
}

static int alloc_large(mms_store *s, uint32_t n, uint64_t *off)
{
    uint32_t pg;
    int r = span_alloc(s, n, &pg);
    if (r)
        return r;
    set_desc(D(s, pg), MMS__D_LARGE_HEAD, 0, n);
    for (uint32_t i = 1; i < n; i++)
        set_desc(D(s, pg + i), MMS__D_LARGE_CONT, 0, 0);
    struct mms__hdr *h = mms__hdr(s);
    h->live_bytes += (uint64_t)n * MMS__PAGE;
    h->live_count++;
    *off = (uint64_t)pg * MMS__PAGE;
    return 0;
}

static int alloc_huge(mms_store *s, uint64_t size, uint64_t *off)
{
    struct mms__hdr *h = mms__hdr(s);
    uint64_t units64 = (size + MMS__PAGE + MMS__SEG - 1) >> MMS__SEG_SHIFT;
    if (units64 > UINT32_MAX / 2)
        return mms__fail(MMS_EFULL, "allocation of %llu bytes is too large",
                         (unsigned long long)size);
    uint32_t k = (uint32_t)units64, u;
    uint16_t flags;
    uint64_t fill = (uint64_t)k << MMS__SEG_SHIFT;
    int r = units_take(s, k, fill, &u, &flags);
    if (!r && !u && !(r = units_reclaim(s)))
        r = units_take(s, k, fill, &u, &flags);
    if (!r && !u)
        r = heap_extend(s, fill, &u);
    if (r)
        return r;
    set_desc(seg_desc(s, u), MMS__S_HUGE, 0, k);
    h->live_bytes += ((uint64_t)k << MMS__SEG_SHIFT) - MMS__PAGE;
    h->live_count++;
    *off = ((uint64_t)u << MMS__SEG_SHIFT) + MMS__PAGE;
    return 0;
}

static int alloc_any(mms_store *s, size_t size, uint64_t *off)
{
    tables();
    if (size == 0)
        size = 1;
    if ((uint64_t)size > (UINT64_C(1) << 44))
        return mms__fail(MMS_EFULL, "allocation of %llu bytes is larger than a heap can be",
                         (unsigned long long)size);
    if (size <= MMS__MAX_SMALL)
        return alloc_small(s, size_class[(size + 15) / 16], off);
    if (size <= (uint64_t)MAX_SPAN * MMS__PAGE)
        return alloc_large(s, (uint32_t)((size + MMS__PAGE - 1) / MMS__PAGE), off);
    return alloc_huge(s, size, off);
}

/* ------------------------------------------------------------------------
 * Locating an allocation from a ref (free, realloc, alloc_size).
 * ------------------------------------------------------------------------ */
enum { LOC_SMALL, LOC_LARGE, LOC_HUGE };
struct loc {
    int kind;
    uint64_t off, usable;
    uint32_t pg, n;   /* slab head / span head page; span pages or units */
    unsigned cls, slot;
};

/* locate() for a ref into a slab page pg: the start of a used slot. */
static int locate_small(const mms_store *s, mms_ref ref, uint32_t pg, struct loc *l)
{
    uint64_t off = MMS_REF_SLOT(ref);
    uint32_t seg = pg / MMS__SEG_PAGES;
    struct mms__desc *d = D(s, pg);
    if (d->kind == MMS__D_SLAB_CONT &&
        (d->len == 0 || d->len > pg % MMS__SEG_PAGES - meta_pages(seg)))
        return MMS__CORRUPT("heap: slab page %u has a bad back offset %u", pg, d->len);
    uint32_t head = d->kind == MMS__D_SLAB_CONT ? pg - d->len : pg;
    struct mms__desc *hd = D(s, head);
    unsigned c = hd->cls;
    if (hd->kind != MMS__D_SLAB_HEAD || c >= MMS__NCLASS || hd->len != geom[c].pages ||
        head + hd->len <= pg)
        return MMS__CORRUPT("heap: page %u has a bad slab descriptor", pg);
    struct mms__slab *sl = (struct mms__slab *)(void *)page_ptr(s, head);
    if (sl->magic != MMS__SLAB_MAGIC || sl->nslots != geom[c].nslots ||
        sl->first != geom[c].first)
        return MMS__CORRUPT("heap: slab at page %u has a bad header", head);
    uint64_t rel = off - (uint64_t)head * MMS__PAGE;
    if (rel < sl->first || (rel - sl->first) % class_size[c] ||
        (rel - sl->first) / class_size[c] >= sl->nslots)
        return mms__fail(MMS_EBADREF, "ref 0x%llx is not the start of a slot",
                         (unsigned long long)ref);
    unsigned slot = (unsigned)((rel - sl->first) / class_size[c]);
    if (!(sl->bitmap[slot / 64] >> (slot % 64) & 1))
        return mms__fail(MMS_EBADREF, "ref 0x%llx is already free (double free?)",
                         (unsigned long long)ref);
    l->kind = LOC_SMALL;
    l->pg = head;
    l->cls = c;
    l->slot = slot;
    l->usable = class_size[c];
    return 0;
}

static int locate(const mms_store *s, mms_ref ref, struct loc *l)
{
    tables();
    uint64_t off = MMS_REF_SLOT(ref);
    if (MMS_REF_REGION(ref) != 0 || off % 16 || off < MMS__HDR_BYTES || off >= heap_top(s))
        return mms__fail(MMS_EBADREF, "ref 0x%llx is not in the heap", (unsigned long long)ref);
    uint32_t seg = (uint32_t)(off >> MMS__SEG_SHIFT);
    int start = seg_is_start(s, seg);
    if (start < 0)
        return start;
    if (!start)
        return mms__fail(MMS_EBADREF, "ref 0x%llx is inside a huge allocation or free units",
                         (unsigned long long)ref);
    struct mms__desc *d0 = seg_desc(s, seg);
    l->off = off;
    if (seg == 0 ? d0->kind != MMS__S_NORMAL
                 : d0->kind != MMS__S_NORMAL && d0->kind != MMS__S_HUGE && d0->kind != MMS__S_FREE)
        return MMS__CORRUPT("heap: segment %u has kind %u", seg, d0->kind);
    if (d0->kind == MMS__S_HUGE) {
        if (off != ((uint64_t)seg << MMS__SEG_SHIFT) + MMS__PAGE)
            return mms__fail(MMS_EBADREF, "ref 0x%llx is inside a huge allocation",
                             (unsigned long long)ref);
        if (d0->len == 0 || (uint64_t)(seg + d0->len) << MMS__SEG_SHIFT > heap_top(s))
            return MMS__CORRUPT("heap: huge segment %u has length %u units, past the heap's "
                                "end", seg, d0->len);
        l->kind = LOC_HUGE;
        l->n = d0->len;
        l->pg = seg;
        l->usable = ((uint64_t)d0->len << MMS__SEG_SHIFT) - MMS__PAGE;
        return 0;
    }
    if (d0->kind != MMS__S_NORMAL)
        return mms__fail(MMS_EBADREF, "ref 0x%llx is in free space", (unsigned long long)ref);
    uint32_t pg = (uint32_t)(off / MMS__PAGE);
    struct mms__desc *d = D(s, pg);
    if (d->kind == MMS__D_LARGE_HEAD) {
        if (off % MMS__PAGE)
            return mms__fail(MMS_EBADREF, "ref 0x%llx is inside a large allocation",
                             (unsigned long long)ref);
        if (d->len == 0 || d->len > MMS__SEG_PAGES - pg % MMS__SEG_PAGES ||
            (uint64_t)(pg + d->len) * MMS__PAGE > heap_top(s))
            return MMS__CORRUPT("heap: large allocation at page %u has length %u, past its "
                                "segment or the heap's end", pg, d->len);
        l->kind = LOC_LARGE;
        l->pg = pg;
        l->n = d->len;
        l->usable = (uint64_t)d->len * MMS__PAGE;
        return 0;
    }
    if (d->kind == MMS__D_SLAB_HEAD || d->kind == MMS__D_SLAB_CONT)
        return locate_small(s, ref, pg, l);
    return mms__fail(MMS_EBADREF, "ref 0x%llx is not the start of a live allocation",
                     (unsigned long long)ref);
}

static int free_loc(mms_store *s, const struct loc *l)
{
    struct mms__hdr *h = mms__hdr(s);
    int r;
    if (l->kind == LOC_SMALL) {
        struct mms__slab *sl = (struct mms__slab *)(void *)page_ptr(s, l->pg);
        unsigned c = l->cls;
        if (sl->nfree == 0 && (r = list_push(s, &h->class_head[c], false, l->pg)))
            return r;
        sl->bitmap[l->slot / 64] &= ~(UINT64_C(1) << (l->slot % 64));
        sl->nfree++;
        h->live_count--;
        h->live_bytes -= class_size[c];
        h->free_bytes += class_size[c];
        /* An empty slab goes back to the spans unless it is the class's only
         * slab with room (keeps alloc/free of one object from thrashing). */
        if (sl->nfree == sl->nslots && (h->class_head[c] != l->pg || D(s, l->pg)->next)) {
            if ((r = list_remove(s, &h->class_head[c], false, l->pg)))
                return r;
            h->free_bytes -= (uint64_t)sl->nslots * class_size[c];
            return span_free(s, l->pg, geom[c].pages);
        }
        return 0;
    }
    if (l->kind == LOC_LARGE) {
        if ((r = span_free(s, l->pg, l->n)))
            return r;
        h->live_count--;
        h->live_bytes -= l->usable;
        return 0;
    }
    /* Huge: the units become a free run, merged with a free run after it. */
    uint32_t u = l->pg, k = l->n, n = nsegs(s);
    uint16_t flags = 0;
    if (u + k < n && seg_desc(s, u + k)->kind == MMS__S_FREE) {
        uint32_t m = seg_desc(s, u + k)->len;
        if (m == 0 || m > n - (u + k))
            return MMS__CORRUPT("heap: free unit run %u has length %u, past the heap's end",
                                u + k, m);
        if ((r = list_remove(s, &h->free_units, true, u + k)))
            return r;
        flags = seg_desc(s, u + k)->flags;
        h->free_bytes -= (uint64_t)m << MMS__SEG_SHIFT;
        segmap_set(s, u + k, false);
        k += m;
    }
    set_desc(seg_desc(s, u), MMS__S_FREE, 0, k);
    seg_desc(s, u)->flags = flags;
    if ((r = list_push(s, &h->free_units, true, u)))
        return r;
    h->live_count--;
    h->live_bytes -= l->usable;
    h->free_bytes += (uint64_t)k << MMS__SEG_SHIFT;
    return 0;
}

/* ------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------ */
int mms_alloc(mms_store *s, size_t size, mms_ref *ref)
{
    int r = mms__check_write(s);
    if (r)
        return r;
    if (!ref)
        return mms__fail(MMS_EINVAL, "mms_alloc: ref is NULL");
    uint64_t off;
    r = alloc_any(s, size, &off);
    if (r)
        return r;
    /* A fresh allocation is never a string: its first word is zeroed, so
     * the tag of a string that was freed here before (the bytes freed
     * space keeps) does not make it one (str.c, doc/FORMAT.md 2.6). */
    memset(hbase(s) + off, 0, 8);
    *ref = MMS_REF_MAKE(0, off);
    return 0;
}

int mms_zalloc(mms_store *s, size_t size, mms_ref *ref)
{
    int r = mms_alloc(s, size, ref);
    if (!r)
        memset(mms_deref(s, *ref), 0, size);
    return r;
}

/* The commit checks what the transaction freed (heapobj.c): the
 * library's own objects, the strings live records hold. */
static int freed_note(mms_store *s, mms_ref ref)
{
    int r = mms__refset_add(&s->txn_freed, ref);
    return r ? mms__fail(r, "freeing 0x%llx: out of memory", (unsigned long long)ref) : 0;
}

/* The work of mms_free and mms_realloc (heapobj.c), for the library's
 * own calls (internal.h): inside a write transaction, the handle checked. */
int mms__free(mms_store *s, mms_ref ref)
{
    if (ref == MMS_REF_NULL)
        return 0;
    struct loc l;
    int r = locate(s, ref, &l);
    if (!r)
        r = freed_note(s, ref);
    return r ? r : free_loc(s, &l);
}

uint64_t mms__alloc_fit(size_t size)
{
    tables();
    if (size <= MMS__MAX_SMALL)
        return class_size[size_class[(size ? size + 15 : 16) / 16]];
    if (size <= (uint64_t)MAX_SPAN * MMS__PAGE)
        return mms__round_up(size, MMS__PAGE);
    return mms__round_up((uint64_t)size + MMS__PAGE, MMS__SEG) - MMS__PAGE;
}

int mms__alloc_usable(const mms_store *s, mms_ref ref, uint64_t *usable)
{
    struct loc l;
    int r = locate(s, ref, &l);
    if (!r)
        *usable = l.usable;
    return r;
}

int mms_alloc_size(const mms_store *s, mms_ref ref, size_t *size)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (!size)
        return mms__fail(MMS_EINVAL, "mms_alloc_size: size is NULL");
    struct loc l;
    r = locate(s, ref, &l);
    if (r)
        return r;
    *size = (size_t)l.usable;
    return 0;
}

int mms__realloc(mms_store *s, mms_ref *ref, size_t size)
{
    if (!ref)
        return mms__fail(MMS_EINVAL, "mms_realloc: ref is NULL");
    if (size == 0)
        return mms__fail(MMS_EINVAL, "mms_realloc: size 0 (use mms_free)");
    if (*ref == MMS_REF_NULL)
        return mms_alloc(s, size, ref);
    struct loc l;
    int r = locate(s, *ref, &l);
    if (r)
        return r;
    /* Keep the block when it fits and is not more than twice too big. */
    if (size <= l.usable && (size > l.usable / 2 || l.usable <= 16))
        return 0;
    /* A large block grows in place into a free span right after it. */
    if (l.kind == LOC_LARGE && size > l.usable && size <= (uint64_t)MAX_SPAN * MMS__PAGE) {
        uint32_t need = (uint32_t)((size + MMS__PAGE - 1) / MMS__PAGE);
        uint32_t nx = l.pg + l.n, seg = l.pg / MMS__SEG_PAGES;
        bool next_free = nx < (seg + 1) * MMS__SEG_PAGES && D(s, nx)->kind == MMS__D_FREE_HEAD;
        if (next_free && !span_ok(s, nx))
            return MMS__CORRUPT("heap: the free span at page %u is damaged", nx);
        if (next_free && l.n + D(s, nx)->len >= need) {
            struct mms__hdr *h = mms__hdr(s);
            uint32_t flen = D(s, nx)->len, take = need - l.n;
            uint16_t flags = D(s, nx)->flags;
            if ((r = heap_cover(s, (uint64_t)(nx + take) * MMS__PAGE)))
                return r;
            if ((flags & MMS__DF_HOLES) &&
                (r = holes_fill(s, (uint64_t)nx * MMS__PAGE, (uint64_t)take * MMS__PAGE)))
                return r;
            if ((r = span_unlink(s, nx)) ||
                (flen > take && (r = span_make_free(s, nx + take, flen - take, false, flags))))
                return r;
            for (uint32_t i = 0; i < take; i++)
                set_desc(D(s, nx + i), MMS__D_LARGE_CONT, 0, 0);
            D(s, l.pg)->len = need;
            h->free_bytes -= (uint64_t)take * MMS__PAGE;
            h->live_bytes += (uint64_t)take * MMS__PAGE;
            return 0;
        }
    }
    uint64_t off;
    r = freed_note(s, *ref);
    if (!r)
        r = alloc_any(s, size, &off);
    if (r)
        return r;
    memcpy(hbase(s) + off, hbase(s) + l.off, size < l.usable ? size : l.usable);
    /* The new block may have changed the list a slab sits in, but not the
     * old allocation itself, so l is still right. */
    if ((r = free_loc(s, &l)))
        return r;
    *ref = MMS_REF_MAKE(0, off);
    return 0;
}

/* ------------------------------------------------------------------------
 * Placing an allocation at a chosen offset: how a load (mms_heap_place)
 * puts the heap objects of a dump back where they were, so that the refs
 * stored inside them stay valid. Made for a heap that holds nothing else
 * yet, objects placed in increasing offset order: the place must be free
 * pages of a normal segment (the heap grows by normal segments to reach
 * it) or, for a huge allocation, the end of the heap. A small object also
 * names its slab's first page: in a slab of 2 or more pages one offset can
 * be a slot of slabs that start on different pages.
 * ------------------------------------------------------------------------ */

/* The head of the free span that holds page pg, or 0. Free spans are
 * runs of FREE_CONT pages behind a FREE_HEAD, inside one segment. */
static uint32_t span_head_of(const mms_store *s, uint32_t pg)
{
    uint32_t seg = pg / MMS__SEG_PAGES, lo = seg * MMS__SEG_PAGES + meta_pages(seg);
    for (uint32_t p = pg; p >= lo; p--) {
        const struct mms__desc *d = D(s, p);
        if (d->kind == MMS__D_FREE_HEAD)
            return p + d->len > pg ? p : 0;
        if (d->kind != MMS__D_FREE_CONT || p == lo)
            return 0;
    }
    return 0;
}

/* Take pages [pg, pg+n) out of the free span that holds them all; the
 * caller marks them. */
static int span_take_at(mms_store *s, uint32_t pg, uint32_t n)
{
    uint32_t head = span_head_of(s, pg);
    if (head && !span_ok(s, head))
        return MMS__CORRUPT("heap: the free span at page %u is damaged", head);
    if (!head || head + D(s, head)->len < pg + n)
        return mms__fail(MMS_EBADREF, "heap pages %u..%u are not free", pg, pg + n - 1);
    uint32_t len = D(s, head)->len;
    uint16_t flags = D(s, head)->flags;
    int r = heap_cover(s, (uint64_t)(pg + n) * MMS__PAGE);
    if (!r && (flags & MMS__DF_HOLES))
        r = holes_fill(s, (uint64_t)pg * MMS__PAGE, (uint64_t)n * MMS__PAGE);
    if (r)
        return r;
    if ((r = span_unlink(s, head)) ||
        (pg > head && (r = span_make_free(s, head, pg - head, false, flags))) ||
        (head + len > pg + n && (r = span_make_free(s, pg + n, head + len - (pg + n), false,
                                                    flags))))
        return r;
    mms__hdr(s)->free_bytes -= (uint64_t)n * MMS__PAGE;
    return 0;
}

/* Grow the heap by normal segments until segment seg exists. */
static int extend_normal_to(mms_store *s, uint32_t seg)
{
    while (nsegs(s) <= seg) {
        uint32_t u;
        int r = heap_extend(s, (uint64_t)meta_pages(nsegs(s)) * MMS__PAGE, &u);
        if (r || (r = segment_init_normal(s, u, 0)))
            return r;
    }
    return 0;
}

static int place_small(mms_store *s, uint64_t off, unsigned c, uint64_t slab)
{
    uint32_t seg = (uint32_t)(off >> MMS__SEG_SHIFT), pg = (uint32_t)(slab / MMS__PAGE);
    uint64_t rel = off - slab;
    if (slab % MMS__PAGE || slab > off || (slab >> MMS__SEG_SHIFT) != seg ||
        pg % MMS__SEG_PAGES < meta_pages(seg) ||
        pg % MMS__SEG_PAGES + geom[c].pages > MMS__SEG_PAGES || rel < geom[c].first ||
        (rel - geom[c].first) % class_size[c] ||
        (rel - geom[c].first) / class_size[c] >= geom[c].nslots)
        return mms__fail(MMS_EINVAL, "heap offset %llu is no slot of a slab of %u-byte objects "
                         "at %llu", (unsigned long long)off, class_size[c],
                         (unsigned long long)slab);
    int r = extend_normal_to(s, seg);
    if (r)
        return r;
    if (seg_desc(s, seg)->kind != MMS__S_NORMAL)
        return mms__fail(MMS_EBADREF, "heap offset %llu is in a huge allocation or free units",
                         (unsigned long long)off);
    const struct mms__desc *d = D(s, pg);
    if (d->kind != MMS__D_SLAB_HEAD || d->cls != c) {
        if ((r = span_take_at(s, pg, geom[c].pages)) || (r = slab_init(s, pg, c)))
            return r;
    }
    struct mms__slab *sl = (struct mms__slab *)(void *)page_ptr(s, pg);
    unsigned slot = (unsigned)((rel - geom[c].first) / class_size[c]);
    if (sl->bitmap[slot / 64] >> (slot % 64) & 1)
        return mms__fail(MMS_EBADREF, "heap offset %llu is taken", (unsigned long long)off);
    return slot_take(s, sl, c, pg, slot);
}

int mms__heap_place(mms_store *s, uint64_t off, uint64_t usable, uint64_t slab)
{
    tables();
    struct mms__hdr *h = mms__hdr(s);
    uint32_t seg = (uint32_t)(off >> MMS__SEG_SHIFT);
    if (off % 16 || off < MMS__HDR_BYTES || (off >> MMS__PAGE_SHIFT) >= UINT32_MAX ||
        usable == 0)
        return mms__fail(MMS_EINVAL, "no heap object can be at offset %llu with %llu bytes",
                         (unsigned long long)off, (unsigned long long)usable);
    if (usable <= MMS__MAX_SMALL) {
        unsigned c = size_class[(usable + 15) / 16];
        if (class_size[c] != usable)
            return mms__fail(MMS_EINVAL, "%llu bytes is not the size of a slab slot",
                             (unsigned long long)usable);
        return place_small(s, off, c, slab);
    }
    if (usable <= (uint64_t)MAX_SPAN * MMS__PAGE) {
        uint32_t n = (uint32_t)(usable / MMS__PAGE), pg = (uint32_t)(off / MMS__PAGE);
        if (usable % MMS__PAGE || off % MMS__PAGE || pg % MMS__SEG_PAGES < meta_pages(seg) ||
            pg % MMS__SEG_PAGES + n > MMS__SEG_PAGES)
            return mms__fail(MMS_EINVAL, "no run of %u pages can start at heap offset %llu", n,
                             (unsigned long long)off);
        int r = extend_normal_to(s, seg);
        if (r)
            return r;
        if (seg_desc(s, seg)->kind != MMS__S_NORMAL)
            return mms__fail(MMS_EBADREF, "heap offset %llu is in a huge allocation or free "
                             "units", (unsigned long long)off);
        if ((r = span_take_at(s, pg, n)))
            return r;
        set_desc(D(s, pg), MMS__D_LARGE_HEAD, 0, n);
        for (uint32_t i = 1; i < n; i++)
            set_desc(D(s, pg + i), MMS__D_LARGE_CONT, 0, 0);
        h->live_bytes += usable;
        h->live_count++;
        return 0;
    }
    uint64_t k = (usable + MMS__PAGE) >> MMS__SEG_SHIFT;
    if ((usable + MMS__PAGE) % MMS__SEG || off != ((uint64_t)seg << MMS__SEG_SHIFT) + MMS__PAGE ||
        seg == 0 || k > UINT32_MAX / 2)
        return mms__fail(MMS_EINVAL, "no huge allocation of %llu bytes can be at heap offset "
                         "%llu", (unsigned long long)usable, (unsigned long long)off);
    if (seg < nsegs(s))
        return mms__fail(MMS_EBADREF, "heap offset %llu: a huge allocation goes only past the "
                         "end of the heap", (unsigned long long)off);
    uint32_t u;
    int r = extend_normal_to(s, seg - 1);
    if (!r)
        r = heap_extend(s, k << MMS__SEG_SHIFT, &u);
    if (r)
        return r;
    assert(u == seg);
    set_desc(seg_desc(s, u), MMS__S_HUGE, 0, (uint32_t)k);
    h->live_bytes += usable;
    h->live_count++;
    return 0;
}

int mms__heap_slab_of(const mms_store *s, mms_ref ref, uint64_t *slab)
{
    struct loc l;
    int r = locate(s, ref, &l);
    if (!r)
        *slab = l.kind == LOC_SMALL ? (uint64_t)l.pg * MMS__PAGE : 0;
    return r;
}

/* ------------------------------------------------------------------------
 * Formatting a new heap: segment 0 right after the store header.
 * ------------------------------------------------------------------------ */
void mms__heap_init(mms_store *s)
{
    tables();
    struct mms__hdr *h = mms__hdr(s);
    h->nclass = MMS__NCLASS;
    /* The header and the descriptors: the first allocation grows it. */
    mms__rtab(s)[0].size = (uint64_t)meta_pages(0) * MMS__PAGE;
    int r = segment_init_normal(s, 0, 0); /* no list to meet: it cannot fail */
    assert(r == 0);
    (void)r;
}

/* ------------------------------------------------------------------------
 * Verification: walk every segment and list; recompute the counters.
 * Reads only; every index is checked before use, so a damaged heap gives a
 * message, never a crash.
 * ------------------------------------------------------------------------ */
#define VFAIL(...) (snprintf(msg, cap, __VA_ARGS__), MMS_ECORRUPT)

/* What the walk of the heap finds, to hold against the header's counters
 * and the lists. */
struct hwalk {
    uint64_t live, count, freeb, free_runs;
    uint64_t bin_count[MMS__NBIN], class_partial[MMS__NCLASS];
};

static int verify_slab(const mms_store *s, uint32_t pg, const struct mms__desc *d,
                       struct hwalk *w, char *msg, size_t cap)
{
    unsigned c = d->cls;
    uint32_t len = d->len;
    if (c >= MMS__NCLASS || len != geom[c].pages)
        return VFAIL("heap: slab at page %u has class %u and %u pages", pg, c, len);
    for (uint32_t k = 1; k < len; k++)
        if (d[k].len != k)
            return VFAIL("heap: slab page %u has a bad back offset", pg + k);
    const struct mms__slab *sl = (const void *)page_ptr(s, pg);
    if (sl->magic != MMS__SLAB_MAGIC || sl->cls != c || sl->nslots != geom[c].nslots ||
        sl->first != geom[c].first)
        return VFAIL("heap: slab at page %u has a bad header", pg);
    unsigned words = (sl->nslots + 63u) / 64u, used = 0;
    for (unsigned k = 0; k < words; k++) {
        uint64_t b = sl->bitmap[k];
        if (k == words - 1 && sl->nslots % 64) {
            uint64_t tail = ~UINT64_C(0) << (sl->nslots % 64);
            if ((b & tail) != tail)
                return VFAIL("heap: slab at page %u has bits past its last slot", pg);
            b &= ~tail;
        }
        used += (unsigned)__builtin_popcountll(b);
    }
    if (sl->nfree != sl->nslots - used)
        return VFAIL("heap: slab at page %u counts %u free slots, its bitmap %u", pg, sl->nfree,
                     sl->nslots - used);
    w->live += (uint64_t)used * class_size[c];
    w->count += used;
    w->freeb += (uint64_t)sl->nfree * class_size[c];
    if (sl->nfree)
        w->class_partial[c]++;
    return 0;
}

/* The spans of normal segment u: each starts where the last ended, its
 * pages carry its kind, no two free spans touch. */
static int verify_segment(const mms_store *s, uint32_t u, struct hwalk *w, char *msg, size_t cap)
{
    const struct mms__desc *d0 = seg_desc(s, u);
    uint32_t meta = meta_pages(u);
    for (uint32_t i = 1; i < meta; i++)
        if (d0[i].kind != MMS__D_META)
            return VFAIL("heap: segment %u page %u should be metadata", u, i);
    bool prev_free = false;
    for (uint32_t i = meta; i < MMS__SEG_PAGES;) {
        const struct mms__desc *d = &d0[i];
        uint32_t pg = u * MMS__SEG_PAGES + i, len = d->len;
        if (d->kind != MMS__D_FREE_HEAD && d->kind != MMS__D_LARGE_HEAD &&
            d->kind != MMS__D_SLAB_HEAD)
            return VFAIL("heap: page %u has descriptor kind %u where a span should start", pg,
                         d->kind);
        if (len == 0 || len > MMS__SEG_PAGES - i)
            return VFAIL("heap: span at page %u has length %u, past its segment", pg, len);
        uint8_t want = d->kind == MMS__D_FREE_HEAD    ? MMS__D_FREE_CONT
                       : d->kind == MMS__D_LARGE_HEAD ? MMS__D_LARGE_CONT
                                                      : MMS__D_SLAB_CONT;
        for (uint32_t k = 1; k < len; k++)
            if (d[k].kind != want)
                return VFAIL("heap: page %u inside the span at page %u has kind %u", pg + k, pg,
                             d[k].kind);
        if (d->kind == MMS__D_FREE_HEAD) {
            if (prev_free)
                return VFAIL("heap: free span at page %u follows another free span", pg);
            if (len > 1 && d[len - 1].len != len - 1)
                return VFAIL("heap: free span at page %u has a bad tail", pg);
            w->freeb += (uint64_t)len * MMS__PAGE;
            w->bin_count[bin_of(len)]++;
        } else if ((uint64_t)(pg + len) * MMS__PAGE > heap_top(s)) {
            return VFAIL("heap: the allocation at page %u ends past the heap's end", pg);
        } else if (d->kind == MMS__D_LARGE_HEAD) {
            w->live += (uint64_t)len * MMS__PAGE;
            w->count++;
        } else {
            int r = verify_slab(s, pg, d, w, msg, cap);
            if (r)
                return r;
        }
        prev_free = d->kind == MMS__D_FREE_HEAD;
        i += len;
    }
    return 0;
}

/* Every segment, from segment 0 by each one's length. */
static int verify_walk(const mms_store *s, struct hwalk *w, char *msg, size_t cap)
{
    uint32_t n = nsegs(s);
    for (uint32_t u = 0; u < n;) {
        const struct mms__desc *d0 = seg_desc(s, u);
        if (u == 0 && d0->kind != MMS__S_NORMAL)
            return VFAIL("heap: segment 0 is not a normal segment");
        if (d0->kind == MMS__S_HUGE || d0->kind == MMS__S_FREE) {
            if (d0->len == 0 || d0->len > n - u)
                return VFAIL("heap: segment %u has length %u units, past the heap end", u,
                             d0->len);
            if (d0->kind == MMS__S_HUGE) {
                if ((uint64_t)(u + d0->len) << MMS__SEG_SHIFT > heap_top(s))
                    return VFAIL("heap: huge segment %u ends past the heap's end", u);
                w->live += ((uint64_t)d0->len << MMS__SEG_SHIFT) - MMS__PAGE;
                w->count++;
            } else {
                w->freeb += (uint64_t)d0->len << MMS__SEG_SHIFT;
                w->free_runs++;
            }
            u += d0->len;
            continue;
        }
        if (d0->kind != MMS__S_NORMAL || d0->len != 1)
            return VFAIL("heap: segment %u has an unknown kind %u", u, d0->kind);
        if (((uint64_t)u << MMS__SEG_SHIFT) + (uint64_t)meta_pages(u) * MMS__PAGE > heap_top(s))
            return VFAIL("heap: segment %u's descriptors end past the heap's end", u);
        int r = verify_segment(s, u, w, msg, cap);
        if (r)
            return r;
        u++;
    }
    return 0;
}

static bool page_of_normal_segment(const mms_store *s, uint32_t pg)
{
    uint32_t u = pg / MMS__SEG_PAGES;
    return u < nsegs(s) && seg_desc(s, u)->kind == MMS__S_NORMAL &&
           pg % MMS__SEG_PAGES >= meta_pages(u);
}

/* Lists: every node is what the list is for, links agree, the count
 * equals what the walk found (which also rules out cycles). */
static int verify_lists(const mms_store *s, const struct hwalk *w, char *msg, size_t cap)
{
    const struct mms__hdr *h = mms__hdr(s);
    for (unsigned b = 0; b < MMS__NBIN; b++) {
        uint64_t k = 0;
        uint32_t prev = 0;
        for (uint32_t pg = h->bin_head[b]; pg; pg = D(s, pg)->next) {
            if (!page_of_normal_segment(s, pg))
                return VFAIL("heap: free list %u names page %u, not a page of a normal segment", b, pg);
            const struct mms__desc *d = D(s, pg);
            if (d->kind != MMS__D_FREE_HEAD || bin_of(d->len) != b || d->prev != prev)
                return VFAIL("heap: free list %u is damaged at page %u", b, pg);
            if (++k > w->bin_count[b])
                return VFAIL("heap: free list %u is longer than the free spans of its size", b);
            prev = pg;
        }
        if (k != w->bin_count[b])
            return VFAIL("heap: free list %u holds %llu spans, the heap has %llu", b,
                         (unsigned long long)k, (unsigned long long)w->bin_count[b]);
    }
    for (unsigned c = 0; c < MMS__NCLASS; c++) {
        uint64_t k = 0;
        uint32_t prev = 0;
        for (uint32_t pg = h->class_head[c]; pg; pg = D(s, pg)->next) {
            if (!page_of_normal_segment(s, pg))
                return VFAIL("heap: slab list %u names page %u, not a page of a normal segment", c, pg);
            const struct mms__desc *d = D(s, pg);
            const struct mms__slab *sl = (const void *)page_ptr(s, pg);
            if (d->kind != MMS__D_SLAB_HEAD || d->cls != c || d->prev != prev || sl->nfree == 0)
                return VFAIL("heap: slab list %u is damaged at page %u", c, pg);
            if (++k > w->class_partial[c])
                return VFAIL("heap: slab list %u is longer than the slabs with room", c);
            prev = pg;
        }
        if (k != w->class_partial[c])
            return VFAIL("heap: slab list %u holds %llu slabs, %llu have room", c,
                         (unsigned long long)k, (unsigned long long)w->class_partial[c]);
    }
    uint64_t k = 0;
    uint32_t prev = 0;
    for (uint32_t u = h->free_units; u; u = seg_desc(s, u)->next) {
        if (u >= nsegs(s))
            return VFAIL("heap: free unit list names segment %u, past the heap", u);
        const struct mms__desc *d = seg_desc(s, u);
        if (d->kind != MMS__S_FREE || d->prev != prev)
            return VFAIL("heap: free unit list is damaged at segment %u", u);
        if (++k > w->free_runs)
            return VFAIL("heap: free unit list is longer than the free unit runs");
        prev = u;
    }
    if (k != w->free_runs)
        return VFAIL("heap: free unit list holds %llu runs, the heap has %llu",
                     (unsigned long long)k, (unsigned long long)w->free_runs);
    return 0;
}

int mms__heap_verify(const mms_store *s, char *msg, size_t cap)
{
    tables();
    const struct mms__hdr *h = mms__hdr(s);
    uint64_t top = mms__rtab(s)[0].size;
    if (top % (h->version < 3 ? MMS__SEG : MMS__PAGE) || top < (uint64_t)meta_pages(0) * MMS__PAGE)
        return VFAIL("heap size %llu is not a whole number of %s", (unsigned long long)top,
                     h->version < 3 ? "segments" : "pages past the header");
    if (top > s->reg[0].mapped)
        return VFAIL("heap size %llu is past the end of the region file (%llu)",
                     (unsigned long long)top, (unsigned long long)s->reg[0].mapped);
    if (h->nclass != MMS__NCLASS)
        return VFAIL("heap: header says %u size classes, expected %u", h->nclass, MMS__NCLASS);
    struct hwalk w = {0};
    int r = verify_walk(s, &w, msg, cap);
    if (!r)
        r = verify_lists(s, &w, msg, cap);
    if (r)
        return r;
    if (w.live != h->live_bytes || w.count != h->live_count || w.freeb != h->free_bytes)
        return VFAIL("heap counters: header says %llu live bytes in %llu objects and %llu free, "
                     "the heap has %llu, %llu and %llu",
                     (unsigned long long)h->live_bytes, (unsigned long long)h->live_count,
                     (unsigned long long)h->free_bytes, (unsigned long long)w.live,
                     (unsigned long long)w.count, (unsigned long long)w.freeb);
    return 0;
}

/* ------------------------------------------------------------------------
 * For the pointer scan (pmem.c): the live allocations, and the one an
 * offset falls in. Read only, on a heap mms__heap_verify() found sound;
 * lengths are still checked, so a heap changed since gives an error, not
 * a loop.
 * ------------------------------------------------------------------------ */
static int each_in_slab(const mms_store *s, uint32_t pg,
                        int (*fn)(void *ctx, uint64_t off, uint64_t usable), void *ctx)
{
    const struct mms__slab *sl = (const void *)page_ptr(s, pg);
    unsigned size = class_size[sl->cls < MMS__NCLASS ? sl->cls : 0];
    for (unsigned i = 0; i < sl->nslots; i++)
        if (sl->bitmap[i / 64] >> (i % 64) & 1) {
            int r = fn(ctx, (uint64_t)pg * MMS__PAGE + sl->first + (uint64_t)i * size, size);
            if (r)
                return r;
        }
    return 0;
}

int mms__heap_each(const mms_store *s, int (*fn)(void *ctx, uint64_t off, uint64_t usable),
                   void *ctx)
{
    tables();
    uint32_t n = nsegs(s);
    int r = 0;
    for (uint32_t u = 0; u < n && !r;) {
        const struct mms__desc *d0 = seg_desc(s, u);
        if (d0->kind == MMS__S_HUGE || d0->kind == MMS__S_FREE) {
            if (d0->len == 0 || d0->len > n - u)
                return MMS__CORRUPT("heap: segment %u has length %u", u, d0->len);
            if (d0->kind == MMS__S_HUGE)
                r = fn(ctx, ((uint64_t)u << MMS__SEG_SHIFT) + MMS__PAGE,
                       ((uint64_t)d0->len << MMS__SEG_SHIFT) - MMS__PAGE);
            u += d0->len;
            continue;
        }
        for (uint32_t i = meta_pages(u); i < MMS__SEG_PAGES && !r;) {
            const struct mms__desc *d = &d0[i];
            uint32_t pg = u * MMS__SEG_PAGES + i;
            if (d->len == 0 || d->len > MMS__SEG_PAGES - i)
                return MMS__CORRUPT("heap: span at page %u has length %u", pg, d->len);
            if (d->kind == MMS__D_LARGE_HEAD)
                r = fn(ctx, (uint64_t)pg * MMS__PAGE, (uint64_t)d->len * MMS__PAGE);
            else if (d->kind == MMS__D_SLAB_HEAD)
                r = each_in_slab(s, pg, fn, ctx);
            i += d->len;
        }
        u++;
    }
    return r;
}

/* The segment unit u is part of: the nearest segment start at or below. */
static int seg_of_unit(const mms_store *s, uint32_t u, uint32_t *seg)
{
    for (;; u--) {
        int start = seg_is_start(s, u);
        if (start < 0)
            return start;
        if (start || u == 0) {
            *seg = u;
            return 0;
        }
    }
}

/* In normal segment u, page pg (past the metadata): the allocation of the
 * span or slab slot holding off, if it is live. */
static int find_in_span(const mms_store *s, uint32_t u, uint32_t pg, uint64_t off,
                        uint64_t *start, uint64_t *usable, const char **what)
{
    const struct mms__desc *d = D(s, pg);
    uint32_t lo = u * MMS__SEG_PAGES + meta_pages(u), head = pg;
    if (d->kind == MMS__D_LARGE_HEAD || d->kind == MMS__D_LARGE_CONT) {
        while (head > lo && D(s, head)->kind == MMS__D_LARGE_CONT)
            head--;
        if (D(s, head)->kind != MMS__D_LARGE_HEAD)
            return MMS__CORRUPT("heap: large page %u has no head", pg);
        *start = (uint64_t)head * MMS__PAGE;
        *usable = (uint64_t)D(s, head)->len * MMS__PAGE;
        return 1;
    }
    if (d->kind != MMS__D_SLAB_HEAD && d->kind != MMS__D_SLAB_CONT) {
        *what = "free heap pages";
        return 0;
    }
    if (d->kind == MMS__D_SLAB_CONT)
        head = d->len <= pg - lo ? pg - d->len : lo;
    const struct mms__slab *sl = (const void *)page_ptr(s, head);
    if (D(s, head)->kind != MMS__D_SLAB_HEAD || sl->cls >= MMS__NCLASS)
        return MMS__CORRUPT("heap: slab page %u has no head", pg);
    unsigned size = class_size[sl->cls];
    uint64_t rel = off - (uint64_t)head * MMS__PAGE, slot = (rel - sl->first) / size;
    if (rel < sl->first || slot >= sl->nslots) {
        *what = "a slab's header or tail";
        return 0;
    }
    if (!(sl->bitmap[slot / 64] >> (slot % 64) & 1)) {
        *what = "a free slot";
        return 0;
    }
    *start = (uint64_t)head * MMS__PAGE + sl->first + slot * size;
    *usable = size;
    return 1;
}

int mms__heap_find(const mms_store *s, uint64_t off, uint64_t *start, uint64_t *usable,
                   const char **what)
{
    tables();
    if (off >= heap_top(s)) {
        *what = "past the heap's end";
        return 0;
    }
    if (off < MMS__HDR_BYTES) {
        *what = "the store header";
        return 0;
    }
    uint32_t u;
    int r = seg_of_unit(s, (uint32_t)(off >> MMS__SEG_SHIFT), &u);
    if (r)
        return r;
    const struct mms__desc *d0 = seg_desc(s, u);
    if (d0->kind == MMS__S_FREE) {
        *what = "free heap units";
        return 0;
    }
    if (d0->kind == MMS__S_HUGE) {
        *start = ((uint64_t)u << MMS__SEG_SHIFT) + MMS__PAGE;
        *usable = ((uint64_t)d0->len << MMS__SEG_SHIFT) - MMS__PAGE;
        *what = "a huge allocation's header";
        return off >= *start && off - *start < *usable;
    }
    uint32_t pg = (uint32_t)(off / MMS__PAGE);
    if (pg % MMS__SEG_PAGES < meta_pages(u)) {
        *what = "the heap's page descriptors";
        return 0;
    }
    return find_in_span(s, u, pg, off, start, usable, what);
}

/* ------------------------------------------------------------------------
 * Compaction (compact.c, copy.c): the free space that can go back to the
 * file system, and the heap's free tail.
 * ------------------------------------------------------------------------ */
/* fn for the part of [off, off + len) below the heap's top. */
static int run_in_heap(const mms_store *s, mms__free_run_fn fn, void *ctx, uint64_t off,
                       uint64_t len, uint16_t flags)
{
    uint64_t top = heap_top(s);
    if (off >= top)
        return 0;
    return fn(ctx, off, len < top - off ? len : top - off, flags);
}

int mms__heap_free_runs(const mms_store *s, mms__free_run_fn fn, void *ctx)
{
    tables();
    uint32_t n = nsegs(s);
    for (uint32_t u = 0; u < n;) {
        const struct mms__desc *d0 = seg_desc(s, u);
        uint32_t len = d0->kind == MMS__S_NORMAL ? 1 : d0->len;
        if ((d0->kind != MMS__S_NORMAL && d0->kind != MMS__S_HUGE && d0->kind != MMS__S_FREE) ||
            len == 0 || len > n - u)
            return MMS__CORRUPT("heap: segment %u has kind %u and length %u", u, d0->kind,
                                d0->len);
        int r = 0;
        if (d0->kind == MMS__S_FREE) {
            /* Every unit but its first page: descriptors of runs that a
             * later split or merge makes are written there. */
            for (uint32_t v = u; v < u + len && !r; v++)
                r = run_in_heap(s, fn, ctx, ((uint64_t)v << MMS__SEG_SHIFT) + MMS__PAGE,
                                MMS__SEG - MMS__PAGE, d0->flags);
        } else if (d0->kind == MMS__S_NORMAL) {
            for (uint32_t i = meta_pages(u); i < MMS__SEG_PAGES && !r;) {
                const struct mms__desc *d = &d0[i];
                if (d->len == 0 || d->len > MMS__SEG_PAGES - i)
                    return MMS__CORRUPT("heap: span at page %u has length %u, past its segment",
                                        (unsigned)(u * MMS__SEG_PAGES + i), d->len);
                if (d->kind == MMS__D_FREE_HEAD)
                    r = run_in_heap(s, fn, ctx, ((uint64_t)u * MMS__SEG_PAGES + i) * MMS__PAGE,
                                    (uint64_t)d->len * MMS__PAGE, d->flags);
                i += d->len;
            }
        }
        if (r)
            return r;
        u += len;
    }
    return 0;
}

/* The segment that ends the heap (walking from segment 0), or 0. */
static uint32_t last_segment(const mms_store *s)
{
    uint32_t n = nsegs(s), last = 0;
    for (uint32_t u = 0; u < n;) {
        const struct mms__desc *d = seg_desc(s, u);
        uint32_t len = d->kind == MMS__S_NORMAL ? 1 : d->len;
        if (len == 0 || len > n - u)
            return 0; /* damaged: mms_verify says so */
        last = u;
        u += len;
    }
    return last;
}

static int flag_holes(void *ctx, uint64_t off, uint64_t len, uint16_t flags)
{
    mms_store *s = ctx;
    (void)len, (void)flags;
    uint32_t pg = (uint32_t)(off / MMS__PAGE);
    if (pg % MMS__SEG_PAGES == 1) /* a unit of a free run: its descriptor */
        seg_desc(s, pg / MMS__SEG_PAGES)->flags |= MMS__DF_HOLES;
    else
        D(s, pg)->flags |= MMS__DF_HOLES;
    return 0;
}

int mms__heap_compact(mms_store *s, uint64_t *trimmed)
{
    tables();
    struct mms__hdr *h = mms__hdr(s);
    *trimmed = 0;
    /* Empty normal segments become free units, adjacent runs merge: a
     * free run that ends the heap leaves it. */
    int r = units_reclaim(s);
    if (r)
        return r;
    uint32_t u = last_segment(s);
    struct mms__desc *d = seg_desc(s, u);
    if (u > 0 && d->kind == MMS__S_FREE && u + d->len == nsegs(s)) {
        if ((r = list_remove(s, &h->free_units, true, u)))
            return r;
        h->free_bytes -= (uint64_t)d->len << MMS__SEG_SHIFT;
        *trimmed = (uint64_t)d->len << MMS__SEG_SHIFT;
        mms__rtab(s)[0].size = (uint64_t)u << MMS__SEG_SHIFT;
        mms__heap_forget(s);
        u = last_segment(s);
        d = seg_desc(s, u);
    }
    /* A normal segment that ends the heap ends it where its last
     * allocation does (NOTES: the top); not in a version-2 store. */
    if (d->kind == MMS__S_NORMAL && h->version >= 3) {
        uint64_t end = ((uint64_t)u << MMS__SEG_SHIFT) + (uint64_t)meta_pages(u) * MMS__PAGE;
        for (uint32_t i = meta_pages(u); i < MMS__SEG_PAGES;) {
            uint32_t len = d[i].len;
            if (len == 0 || len > MMS__SEG_PAGES - i)
                break; /* damaged: mms_verify says so */
            if (d[i].kind != MMS__D_FREE_HEAD)
                end = ((uint64_t)u * MMS__SEG_PAGES + i + len) * MMS__PAGE;
            i += len;
        }
        if (end < heap_top(s)) {
            *trimmed += heap_top(s) - end;
            mms__rtab(s)[0].size = end;
            mms__heap_forget(s);
        }
    }
    /* Every free span and run left is about to be given back (NOTES). */
    return mms__heap_free_runs(s, flag_holes, s);
}

/*
 * view.c -- what a handle's mappings show, and bringing them up to date.
 *
 * Layer 7: calls table.c (following the catalog), apply.c, held.c,
 * journal.c, alloc.c, lock.c and os.c. A read-only handle's view is the
 * region files: the published state. A write handle's view is its private
 * mapping over them: the files plus the pages it holds (held.c) -- which is
 * the latest commit, its own, even while the files lag behind it (apply.c
 * NOTES). This file decides, when a transaction begins, whether the view
 * still shows what it must, and rebuilds it when not. It must never change
 * a region file.
 *
 * A write handle that begins a transaction must see the latest commit,
 * L->committed, whoever made it. If its view is of another txn (another
 * handle committed since), it drops its private pages; then, if the files
 * lag (published < committed: readers held the commits back, or MMS_NOSYNC
 * has not synced them), it tries to apply them; if readers still hold them
 * back, it replays the missing journal groups into its own private pages,
 * with the published state pinned so that no applier changes the files
 * under it, and holds those pages with shadows like its own commits.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Private pages
 * ------------------------------------------------------------------------ */
static int pagevec_push(struct mms__pagevec *v, char *page)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        char **p = realloc(v->page, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        v->page = p;
        uint8_t *c = realloc(v->changed, cap);
        if (!c)
            return -ENOMEM;
        v->changed = c;
        v->cap = cap;
    }
    v->changed[v->n] = 0;
    v->page[v->n++] = page;
    return 0;
}

int mms__dirty_push_front(mms_store *s, char *page)
{
    int r = pagevec_push(&s->dirty, page);
    if (r)
        return r;
    memmove(s->dirty.page + 1, s->dirty.page, (s->dirty.n - 1) * sizeof *s->dirty.page);
    memmove(s->dirty.changed + 1, s->dirty.changed, s->dirty.n - 1);
    s->dirty.page[0] = page;
    s->dirty.changed[0] = 0;
    return 0;
}

/* A fast scan (MMS__SCAN_WRITTEN_FAST, os.c) costs what the written pages
 * cost, however many protected pages the region holds; the slow one also
 * ~9 ns for each present page: with the hundreds a MMS_NOSYNC backlog
 * holds protected, most of a small commit's scan (bench/results/issue14.md).
 * But it also reports pages read from the file and never protected, which
 * a commit would compare, find unchanged and drop (and a reader of them
 * would fault in again); a fast scan that reports one is thrown away and
 * the region scanned slowly. So a region is scanned fast only where it
 * pays and is safe:
 *
 *   - some pages are protected (s->wp_protected): otherwise both scans
 *     cost the same;
 *   - no mapping was replaced since the held pages were last swept
 *     (s->held_mapseq): a held page is then a private copy for sure, never
 *     the file's page under a held address, which a commit would diff
 *     against its shadow as if the transaction had written it;
 *   - its last fast scans found no page read from the file (a page no
 *     held entry covers, equal to the file's): after one, the region is
 *     scanned slowly for fast_gap commits, a gap that doubles with each
 *     miss (up to FAST_GAP_MAX) and halves with each clean fast scan;
 *   - the fast scan reports at most FAST_MAX pages; past that (a large
 *     transaction, or many pages read) the region is scanned again slowly.
 *
 * Either way no written page is missed: the fast scan reports a superset. */
#define FAST_MAX 256
#define FAST_GAP_MAX 4096u

struct collect {
    struct mms__pagevec *v;
    size_t cap; /* stop past this many pages (SIZE_MAX: never) */
};

static int collect_run(void *ctx, char *start, char *end)
{
    struct collect *c = ctx;
    for (char *p = start; p < end; p += MMS__PAGE) {
        if (c->v->n >= c->cap)
            return 1; /* not an error: the caller scans slowly instead */
        int r = pagevec_push(c->v, p);
        if (r)
            return r;
    }
    return 0;
}

int mms__page_as_file(const mms_store *s, uint32_t id, const char *p)
{
    const struct mms__region *g = &s->reg[id];
    uint64_t off = (uint64_t)(p - s->view.base[id]);
    if (off + MMS__PAGE > g->fview_len)
        return -1;
    return memcmp(p, g->fview + off, MMS__PAGE) == 0;
}

/* Pages of the fast scan of region id, from index from on, that no held
 * entry covers (a held page is a copy: written) and that equal the
 * file's, read and not written -- or lie past the file's view, perhaps
 * read: then the region is scanned slowly. */
static bool read_pages_reported(mms_store *s, uint32_t id, size_t from)
{
    for (size_t i = from; i < s->dirty.n; i++) {
        char *p = s->dirty.page[i];
        if (!mms__held_find(s, p) && mms__page_as_file(s, id, p) != 0)
            return true;
    }
    return false;
}

int mms__dirty_collect(mms_store *s, bool written)
{
    written = written && s->wp_fd >= 0;
    bool fast_ok = written && s->wp_protected && s->mapseq == s->held_mapseq &&
                   s->dirty_backend == MMS_DIRTY_SCAN;
    s->dirty.n = 0;
    for (uint32_t id = 0; id < s->nmapped; id++) {
        struct mms__region *g = &s->reg[id];
        char *b = s->view.base[id];
        if (!b || !g->priv)
            continue;
        size_t from = s->dirty.n;
        bool fast = fast_ok && g->fast_off == 0 && g->fview;
        if (fast_ok && g->fast_off)
            g->fast_off--;
        struct collect c = {&s->dirty, fast ? from + FAST_MAX : SIZE_MAX};
        int r = mms__os_dirty_scan(s->dirty_fd, s->dirty_backend, b, b + g->priv,
                                   fast ? MMS__SCAN_WRITTEN_FAST
                                        : written ? MMS__SCAN_WRITTEN : MMS__SCAN_PRIVATE,
                                   collect_run, &c);
        if (fast && (r == 1 || (!r && read_pages_reported(s, id, from)))) {
            if (r == 0) { /* a miss: slow scans for a while */
                g->fast_gap = g->fast_gap ? g->fast_gap * 2 : 16;
                if (g->fast_gap > FAST_GAP_MAX)
                    g->fast_gap = FAST_GAP_MAX;
                g->fast_off = g->fast_gap;
            }
            s->dirty.n = from;
            c.cap = SIZE_MAX;
            r = mms__os_dirty_scan(s->dirty_fd, s->dirty_backend, b, b + g->priv,
                                   MMS__SCAN_WRITTEN, collect_run, &c);
        } else if (fast && !r) {
            g->fast_gap /= 2;
        }
        if (r)
            return r;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Quiet commits: the scan left out where no page can have changed unseen
 * ------------------------------------------------------------------------
 * A scan walks the page tables of every private range: one page present
 * in a GiB makes it walk that GiB's 512 entries of 2 MiB, ~6 us here
 * however little the transaction wrote (bench/results/issue14_scan.c). But in a
 * private mapping of a file a page becomes writable only through a page
 * fault: a read maps the file's page read-only, the first write copies it
 * (a fault), a write to a held page that a commit write-protected faults
 * too. Without a fault a store can change only the private copies that
 * are present and writable, and every commit's settle knows those: it
 * drops, protects or holds each page it found. So:
 *
 *   Q1  a commit reads the process's fault count (every thread's, faults
 *       the kernel takes on user memory in a system call included) before
 *       it looks for pages;
 *   Q2  at its end it keeps the list of private pages it left writable
 *       (s->quiet): those of s->dirty it held and did not protect, or all
 *       of s->dirty if it changed nothing (nothing was settled);
 *   Q3  the next commit, if the count has not moved since Q1 (nor the
 *       mappings, s->mapseq), takes that list for the scan's answer: any
 *       other page made writable since took a fault counted after Q1.
 *
 * What changes private pages or their protection otherwise -- an abort,
 * a trim (it lifts protections and maps spans anew), a view dropped, a
 * protection lifted -- calls mms__dirty_forget: the next commit scans. So
 * does every QUIET_MAX-th quiet commit in a row: a write the kernel makes
 * here for another process (ptrace, process_vm_writev, which count their
 * fault in that process) is found at most that many commits later, in a
 * later transaction. After a miss (the count moved) the count is not read
 * for quiet_gap commits, a gap that doubles with each miss (up to
 * QUIET_GAP_MAX) and is 0 again after a quiet commit: a writer that faults
 * at every commit (a new page each time) does not pay ~1.4 us for nothing.
 *
 * MMS_CHECK_QUIET=1 in the environment when the handle was opened (the
 * tests) scans after each quiet look as well, and aborts the process if
 * the scan found a written page the list lacks. */
#define QUIET_MAX 64
#define QUIET_GAP_MAX 64u

void mms__dirty_forget(mms_store *s)
{
    s->quiet_ok = false;
    s->quiet_spoiled = true;
}

static int addr_cmp(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return x < y ? -1 : x > y;
}

/* MMS_CHECK_QUIET: every private page a scan finds written (not the
 * file's page) is on the quiet list, now s->dirty. */
static int quiet_check(mms_store *s)
{
    const struct mms__pagevec *q = &s->dirty;
    struct mms__pagevec found = {0};
    char **sorted = malloc((q->n + 1) * sizeof *sorted);
    if (!sorted)
        return -ENOMEM;
    memcpy(sorted, q->page, q->n * sizeof *sorted);
    qsort(sorted, q->n, sizeof *sorted, addr_cmp);
    int r = 0;
    for (uint32_t id = 0; !r && id < s->nmapped; id++) {
        char *b = s->view.base[id];
        struct collect c = {&found, SIZE_MAX};
        if (b && s->reg[id].priv)
            r = mms__os_dirty_scan(s->dirty_fd, s->dirty_backend, b, b + s->reg[id].priv,
                                   s->wp_fd >= 0 ? MMS__SCAN_WRITTEN : MMS__SCAN_PRIVATE,
                                   collect_run, &c);
    }
    for (size_t i = 0; !r && i < found.n; i++) {
        char *p = found.page[i];
        if (!bsearch(&p, sorted, q->n, sizeof *sorted, addr_cmp)) {
            fprintf(stderr, "mmstore: MMS_CHECK_QUIET: page %p is private and written, and "
                            "not on the quiet list (%zu pages)\n", (void *)p, q->n);
            abort();
        }
    }
    free(sorted);
    free(found.page);
    free(found.changed);
    return r;
}

int mms__dirty_commit(mms_store *s)
{
    uint64_t f = UINT64_MAX;
    if (s->quiet_skip)
        s->quiet_skip--;
    else
        f = mms__os_faults();
    bool known = s->quiet_ok && f != UINT64_MAX;
    bool quiet = known && f == s->quiet_faults && s->mapseq == s->quiet_mapseq &&
                 s->quiet_run < QUIET_MAX;
    bool missed = known && f != s->quiet_faults;
    s->quiet_ok = false;
    s->quiet_faults = f;
    s->quiet_spoiled = f == UINT64_MAX;
    if (!quiet) {
        s->quiet_run = 0;
        if (missed) {
            s->quiet_gap = s->quiet_gap ? s->quiet_gap * 2 : 1;
            if (s->quiet_gap > QUIET_GAP_MAX)
                s->quiet_gap = QUIET_GAP_MAX;
            s->quiet_skip = s->quiet_gap;
        }
        return mms__dirty_collect(s, true);
    }
    s->quiet_run++;
    s->quiet_commits++;
    s->quiet_gap = 0;
    struct mms__pagevec v = s->dirty;
    s->dirty = s->quiet;
    s->quiet = v;
    memset(s->dirty.changed, 0, s->dirty.n);
    return s->quiet_check ? quiet_check(s) : 0;
}

void mms__dirty_keep(mms_store *s, bool settled)
{
    struct mms__pagevec v = s->quiet;
    s->quiet = s->dirty;
    s->dirty = v;
    s->dirty.n = 0;
    struct mms__pagevec *q = &s->quiet;
    size_t n = 0;
    for (size_t i = 0; i < q->n; i++) {
        const struct mms__held *h;
        if (settled && (q->changed[i] == 1 || ((h = mms__held_find(s, q->page[i])) && h->wp)))
            continue; /* dropped, or protected */
        q->page[n++] = q->page[i];
    }
    q->n = n;
    s->quiet_mapseq = s->mapseq;
    s->quiet_ok = !s->quiet_spoiled && !s->poisoned;
}

uint32_t mms__page_region(const mms_store *s, const char *p)
{
    for (uint32_t id = 0; id < s->nmapped; id++) {
        const char *b = s->view.base[id];
        if (b && p >= b && p < b + s->reg[id].priv)
            return id;
    }
    return UINT32_MAX; /* unreachable: pages come from the private ranges */
}

void mms__dirty_drop(mms_store *s, int which)
{
    struct mms__pagevec *v = &s->dirty;
    for (size_t i = 0; i < v->n;) {
        if (which >= 0 && v->changed[i] != which) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < v->n && v->page[j] == v->page[j - 1] + MMS__PAGE &&
               (which < 0 || v->changed[j] == which))
            j++;
        mms__os_drop(v->page[i], (uint64_t)(j - i) * MMS__PAGE);
        i = j;
    }
}

void mms__view_trim(mms_store *s)
{
    /* The held pages, in address order (not enough memory: no trim). */
    char **held = malloc((s->held_n + 1) * sizeof *held);
    if (!held)
        return;
    size_t n = 0;
    for (size_t i = 0; i < s->held_cap; i++)
        if (s->held[i].page)
            held[n++] = s->held[i].page;
    qsort(held, n, sizeof *held, addr_cmp);
    for (uint32_t id = 0; id < s->nmapped; id++) {
        char *base = s->view.base[id], *at = base, *end = base + s->reg[id].priv;
        if (!base)
            continue;
        size_t k = 0, hi = n; /* the first held page at or past base */
        while (k < hi) {
            size_t mid = k + (hi - k) / 2;
            if (held[mid] < base)
                k = mid + 1;
            else
                hi = mid;
        }
        for (; k < n && held[k] < end; k++) {
            mms__os_drop(at, (uint64_t)(held[k] - at));
            at = held[k] + MMS__PAGE;
        }
        mms__os_drop(at, (uint64_t)(end - at));
    }
    free(held);
}

void mms__drop_private(mms_store *s)
{
    mms__dirty_forget(s);
    mms__heap_forget(s);
    mms__held_clear(s);
    if (mms__dirty_collect(s, false)) {
        /* Cannot tell which pages: drop every private page there is. */
        for (uint32_t id = 0; id < s->nmapped; id++)
            if (s->view.base[id])
                mms__os_drop(s->view.base[id], s->reg[id].priv);
    } else {
        mms__dirty_drop(s, -1);
    }
    s->dirty.n = 0;
}

/* ------------------------------------------------------------------------
 * Replaying commits the files lack into the private view
 * ------------------------------------------------------------------------ */
struct replay_view {
    mms_store *s;
    struct mms__pagevec touched; /* pages written, in order, with repeats */
    bool guard;                  /* the mprotect guard opened the view for the replay */
};

/* A hash of what the view maps (FNV-1a over each region's lengths): it
 * changes when a follow maps a region, more of one, or a file anew. */
static uint64_t view_extent(const mms_store *s)
{
    uint64_t h = 0xcbf29ce484222325ull ^ s->mapseq;
    for (uint32_t id = 0; id < s->nmapped; id++) {
        h = (h ^ s->reg[id].mapped) * 0x100000001b3ull;
        h = (h ^ s->reg[id].priv) * 0x100000001b3ull;
    }
    return h;
}

static int view_rec(void *ctx, uint32_t region, uint32_t gen, uint64_t off, const uint8_t *bytes,
                    uint32_t len)
{
    struct replay_view *rv = ctx;
    mms_store *s = rv->s;
    /* A record names a committed byte range of a region the view maps (the
     * mapping followed the header group by group); anything else would be
     * a journal that contradicts its own headers. */
    if (region >= s->nmapped || !s->view.base[region] || s->reg[region].gen != gen ||
        off > s->reg[region].priv || len > s->reg[region].priv - off)
        return MMS__CORRUPT("journal record for region %u generation %u at %llu does not fit "
                            "the state it follows", region, gen, (unsigned long long)off);
    char *p = s->view.base[region] + off;
    memcpy(p, bytes, len);
    char *first = (char *)((uintptr_t)p & ~(uintptr_t)(MMS__PAGE - 1));
    for (char *q = first; q < p + len; q += MMS__PAGE) {
        int r = pagevec_push(&rv->touched, q);
        if (r)
            return r;
    }
    return 0;
}

static int view_group_end(void *ctx, uint64_t txn)
{
    struct replay_view *rv = ctx;
    (void)txn;
    /* The header is at txn now: map what it names (new regions, growth). */
    uint64_t had = view_extent(rv->s);
    int r = mms__tables_follow(rv->s);
    /* Outside a write transaction the mprotect guard maps read-only, and
     * the next groups may write what this one mapped: open it too. */
    if (!r && rv->guard && view_extent(rv->s) != had)
        r = mms__map_protect(rv->s, true);
    return r;
}

/* With the published state P pinned and the view following the files:
 * replay (P, upto] into the private pages, and hold each page written. */
static int replay_into_view(mms_store *s, uint64_t upto)
{
    struct mms__lock *L = s->L;
    struct mms__apos pos = {.off = __atomic_load_n(&L->apply_off, __ATOMIC_ACQUIRE),
                            .txn = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE),
                            .crc = __atomic_load_n(&L->apply_crc, __ATOMIC_ACQUIRE)};
    bool guard = (s->flags & MMS_GUARD) && s->state != MMS__ST_WRITE;
    struct replay_view rv = {.s = s, .guard = guard && !s->guard_key};
    int r = guard ? mms__map_protect(s, true) : 0;
    if (!r)
        r = mms__journal_each(s, &pos, upto, view_rec, view_group_end, &rv);
    for (size_t i = 0; !r && i < rv.touched.n; i++) {
        char *p = rv.touched.page[i];
        uint32_t id = mms__page_region(s, p);
        if (id != UINT32_MAX)
            r = mms__held_set(s, p, s->reg[id].gen, upto, true);
    }
    if (guard) {
        int r2 = mms__map_protect(s, false);
        if (!r)
            r = r2;
    }
    free(rv.touched.page);
    free(rv.touched.changed);
    return r;
}

/* ------------------------------------------------------------------------
 * Bringing a view up to date
 * ------------------------------------------------------------------------ */
int mms__view_for_writer(mms_store *s)
{
    struct mms__lock *L = s->L;
    assert(mms__writer_held_by(s));
    uint64_t c = __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE);
    if (s->seen == c)
        return 0;
    mms__drop_private(s);
    /* Best: the files catch up, and the view is theirs. */
    int r = mms__make_durable(s);
    if (!r)
        r = mms__apply_try(s);
    if (r)
        return r;
    uint64_t p;
    r = mms__pin(s, &p, mms__pin_stuck, s);
    if (r)
        return r;
    r = mms__tables_follow(s);
    if (!r && p < c)
        r = replay_into_view(s, c);
    mms__unpin(s);
    if (r) {
        /* Half built: next time, from scratch. */
        mms__drop_private(s);
        s->seen = UINT64_MAX;
        return r;
    }
    s->seen = c;
    return 0;
}

MMS__OPEN_PATH
int mms__view_for_reader(mms_store *s, uint64_t pinned)
{
    bool write = !(s->flags & MMS_RDONLY);
    /* A write handle whose view is the latest commit keeps it: it is at
     * least as new as the published state, and no applier can change a
     * page it shows while it is pinned. */
    if (write && s->seen == __atomic_load_n(&s->L->committed, __ATOMIC_ACQUIRE))
        return 0;
    if (s->seen == pinned)
        return 0;
    if (write)
        mms__drop_private(s);
    mms__heap_forget(s);
    int r = mms__tables_follow(s);
    if (r)
        return r;
    s->seen = pinned;
    return 0;
}

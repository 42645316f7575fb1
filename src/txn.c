/*
 * txn.c -- transactions: write (begin, commit, abort), checkpoint, read,
 * and waiting for commits.
 *
 * Layer 7: calls table.c (following the catalog), recover.c, journal.c,
 * alloc.c, map.c, lock.c and os.c. It owns the commit protocol: the order
 * of the steps that make a transaction durable and visible, each citing
 * its invariant. It must never be called with the writer lock held by
 * another handle of this thread (lock.c refuses that).
 *
 * NOTES ON THE DESIGN (invariants as numbered in DESIGN §3 and journal.c)
 *
 * A transaction's stores land in copy-on-write pages of the private part of
 * each region (map.c), or in fresh space past the committed size. Commit:
 *
 *   1. Ask the kernel which private pages were copied (the dirty pages).
 *      If none were and no region grew, the transaction changed nothing and
 *      commits nothing.
 *   2. Stamp the header: txn id + 1, CRC. (Region sizes were set by the
 *      allocator as it grew regions.)
 *   3. Invariant 1: sync the fresh space of every region that grew, before
 *      any commit record makes it reachable.
 *   4. Diff each dirty page against the file view and journal the differing
 *      byte runs, then the new region sizes and the commit record.
 *   5. Invariant 2: fdatasync the journal. The commit is durable here; an
 *      error before this point aborts the transaction and leaves the handle
 *      usable, an error from here on poisons the handle (the next open's
 *      recovery decides, from the journal, whether the commit happened).
 *   6. Invariant 3: apply -- copy the changed pages into the file view. The
 *      region files now equal the last checkpoint plus a prefix of the
 *      journal.
 *   7. Move the private/shared boundary over the grown space, drop the
 *      private copies that are no longer needed, re-arm the guard.
 *
 * Abort drops every private copy (MADV_DONTNEED): the pages fall back to the
 * file, which still holds the last committed state, header included, so
 * allocator state reverts with the data. Fresh space written by an aborted
 * transaction stays in the file, unreachable.
 *
 * Which private copies to keep after a commit: a page whose copy is dropped
 * costs a copy-on-write fault the next time a transaction writes it; a page
 * that is kept costs a compare at every commit while it stays. Kept pages
 * are those the commit found changed, up to s->keep_pages; pages dirty but
 * unchanged (kept from an earlier commit and not written since) are
 * dropped. bench/commit_cost measures the choice.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Dirty page collection
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

static int collect_run(void *ctx, char *start, char *end)
{
    struct mms__pagevec *v = ctx;
    for (char *p = start; p < end; p += MMS__PAGE) {
        int r = pagevec_push(v, p);
        if (r)
            return r;
    }
    return 0;
}

/* Every copied private page of every region, in address order per region. */
static int collect_dirty(mms_store *s)
{
    s->dirty.n = 0;
    for (uint32_t id = 0; id < s->nmapped; id++) {
        char *b = s->view.base[id];
        if (!b || !s->reg[id].priv)
            continue;
        int r = mms__os_dirty_scan(s->dirty_fd, s->dirty_backend, b, b + s->reg[id].priv,
                                   collect_run, &s->dirty);
        if (r)
            return r;
    }
    return 0;
}

static uint32_t page_region(const mms_store *s, const char *p)
{
    for (uint32_t id = 0; id < s->nmapped; id++) {
        const char *b = s->view.base[id];
        if (b && p >= b && p < b + s->reg[id].priv)
            return id;
    }
    return UINT32_MAX; /* unreachable: pages come from the private ranges */
}

/* Drop runs of consecutive pages of v whose flag equals which (or all). */
static void drop_pages(mms_store *s, int which)
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

static int drop_private(mms_store *s)
{
    mms__heap_forget(s);
    int r = collect_dirty(s);
    if (r) {
        /* Cannot tell which pages: drop every private page there is. */
        for (uint32_t id = 0; id < s->nmapped; id++)
            if (s->view.base[id])
                mms__os_drop(s->view.base[id], s->reg[id].priv);
        s->dirty.n = 0;
        return 0;
    }
    drop_pages(s, -1);
    s->dirty.n = 0;
    return 0;
}

/* ------------------------------------------------------------------------
 * Diff: the byte runs where a private page differs from the file. Runs
 * closer than a record header are merged (cheaper to log the gap).
 * ------------------------------------------------------------------------ */
#define GAP_WORDS 3

static int diff_page(mms_store *s, uint32_t id, uint64_t off, const char *mine, const char *file,
                     bool *changed)
{
    const uint64_t *a = (const uint64_t *)(const void *)mine;
    const uint64_t *b = (const uint64_t *)(const void *)file;
    enum { W = MMS__PAGE / 8 };
    *changed = false;
    for (unsigned i = 0; i < W;) {
        if (a[i] == b[i]) {
            i++;
            continue;
        }
        unsigned last = i;
        for (unsigned j = i + 1; j < W && j - last <= GAP_WORDS; j++)
            if (a[j] != b[j])
                last = j;
        /* Trim to the first and last differing byte. */
        unsigned lo = i * 8, hi = last * 8 + 8;
        while (mine[lo] == file[lo])
            lo++;
        while (mine[hi - 1] == file[hi - 1])
            hi--;
        int r = mms__jgroup_data(s, id, s->reg[id].gen, off + lo, mine + lo, hi - lo);
        if (r)
            return r;
        *changed = true;
        i = last + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------ */
/* The view is stale when another handle committed since this one looked:
 * drop the private copies kept from this handle's last commit (they hold
 * the older state) and map what grew. */
static int refresh(mms_store *s, uint64_t published)
{
    if (published == s->seen)
        return 0;
    if (!(s->flags & MMS_RDONLY))
        drop_private(s);
    mms__heap_forget(s);
    int r = mms__tables_follow(s);
    if (r)
        return r;
    s->seen = published;
    return 0;
}

/* Take the writer lock and bring the view up to date (and, if the last
 * writer died, recover first). */
int mms__writer_enter(mms_store *s, bool wait)
{
    int r = mms__writer_lock(s, wait);
    if (r)
        return r;
    r = mms__recover_live(s);
    if (!r)
        r = refresh(s, __atomic_load_n(&s->L->published, __ATOMIC_ACQUIRE));
    if (r)
        mms__writer_unlock(s);
    return r;
}

int mms_txn_begin(mms_store *s, unsigned flags)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (flags & ~MMS_TXN_NOWAIT)
        return mms__fail(MMS_EINVAL, "mms_txn_begin: unknown flags 0x%x", flags);
    if (s->flags & MMS_RDONLY)
        return mms__fail(MMS_ERDONLY, "the store is open read-only");
    if (s->state == MMS__ST_WRITE)
        return mms__fail(MMS_ETXN, "a write transaction is already active on this handle");
    if (s->state == MMS__ST_READ)
        return mms__fail(MMS_ETXN, "this handle is inside a read transaction");
    r = mms__writer_enter(s, !(flags & MMS_TXN_NOWAIT));
    if (r)
        return r;
    if (s->flags & MMS_GUARD) {
        r = mms__map_protect(s, true);
        if (r) {
            mms__writer_unlock(s);
            return r;
        }
    }
    mms__state_to(s, MMS__ST_WRITE);
    return 0;
}

/* Undo a transaction: the private copies go, so the header, the allocator
 * and the catalog are the committed ones again; then the mappings follow
 * (a table created or migrated by the transaction is unmapped or mapped
 * back to its old file). A failure here leaves mappings the handle cannot
 * trust: it is poisoned. */
static void undo(mms_store *s)
{
    drop_private(s);
    mms__tables_forget(s);
    s->dir_dirty = false;
    int r = mms__tables_follow(s);
    if (r && !s->poisoned)
        s->poisoned = r;
}

/* End the transaction: the guard goes back up, the writer lock is free. */
static void txn_end(mms_store *s)
{
    mms__state_to(s, MMS__ST_IDLE);
    s->dirty.n = 0;
    if (s->flags & MMS_GUARD) {
        int r = mms__map_protect(s, false);
        if (r && !s->poisoned)
            s->poisoned = r;
    }
    mms__writer_unlock(s);
}

int mms_txn_abort(mms_store *s)
{
    int r = mms__check_handle(s);
    if (r && r != MMS_EPOISONED)
        return r;
    if (s->state != MMS__ST_WRITE)
        return mms__fail(MMS_ENOTXN, "no write transaction to abort");
    undo(s);
    txn_end(s);
    return 0;
}

/* An error before the commit point: undo everything, keep the handle. */
static int commit_fail(mms_store *s, int err)
{
    undo(s);
    txn_end(s);
    return err;
}

/* An error after it: the handle cannot know what is on disk any more. The
 * next writer recovers from the journal (which decides whether this commit
 * happened). */
static int commit_poison(mms_store *s, int err)
{
    s->poisoned = err;
    __atomic_store_n(&s->L->recover_needed, 1, __ATOMIC_RELEASE);
    mms__state_to(s, MMS__ST_IDLE);
    mms__writer_unlock(s);
    return err;
}

/* ------------------------------------------------------------------------
 * Commit, in the steps of the NOTES above. Each step returns 0 or an error;
 * an error before the commit point (step 5) aborts the transaction and
 * keeps the handle, one after it poisons the handle.
 * ------------------------------------------------------------------------ */
struct commit {
    struct mms_commit_stats st;
    uint64_t t0, lap;  /* when the commit began; when the last step ended */
    bool grew;         /* a region's size moved past what was committed */
    uint64_t jstart;   /* journal offset of this commit's group */
    size_t nchanged;   /* pages that differed from the file */
};

/* Nanoseconds since the last lap. */
static uint64_t lap(struct commit *c)
{
    uint64_t t = mms__os_mono_ns(), d = t - c->lap;
    c->lap = t;
    return d;
}

/* Step 1: which pages the transaction wrote, and whether it changed
 * anything at all (*any). */
static int commit_detect(mms_store *s, struct commit *c, bool *any)
{
    assert(s->state == MMS__ST_WRITE && mms__writer_held_by(s));
    const struct mms__rent *rt = mms__rtab(s);
    int r = collect_dirty(s);
    if (r)
        return r;
    c->st.detect_ns = lap(c);
    c->st.pages_dirty = s->dirty.n;
    for (uint32_t id = 0; id < s->nmapped; id++)
        if (s->view.base[id] && rt[id].size > s->reg[id].committed)
            c->grew = true;
    *any = c->grew;
    /* Pages kept from the last commit are dirty without having changed:
     * the transaction changed something only if a page differs from the
     * file (usually the first one compared does). */
    for (size_t i = 0; i < s->dirty.n && !*any; i++) {
        char *p = s->dirty.page[i];
        uint32_t id = page_region(s, p);
        *any = memcmp(p, s->reg[id].fview + (p - s->view.base[id]), MMS__PAGE) != 0;
    }
    return 0;
}

/* Step 2: the new txn id and header CRC; page 0 first in the page list. A
 * stray store inside the transaction must not make the store unopenable:
 * the header's fixed fields are checked, not journaled. */
static int commit_stamp(mms_store *s)
{
    struct mms__hdr *h = mms__hdr(s);
    if (memcmp(h, s->hdr_fixed, sizeof s->hdr_fixed) != 0)
        return MMS__CORRUPT("the transaction overwrote the store header's fixed fields; it "
                            "was aborted");
    h->txn_id++;
    h->crc = mms__hdr_crc(h, mms__rtab(s));
    if (s->dirty.n == 0 || s->dirty.page[0] != s->view.base[0]) {
        int r = pagevec_push(&s->dirty, NULL);
        if (r)
            return r;
        memmove(s->dirty.page + 1, s->dirty.page, (s->dirty.n - 1) * sizeof *s->dirty.page);
        s->dirty.page[0] = s->view.base[0];
    }
    return 0;
}

/* Step 3, Invariant 1: fresh data is durable before the record that makes
 * it reachable -- and so are the names of region files it created. */
static int commit_sync_fresh(mms_store *s, struct commit *c)
{
    const struct mms__rent *rt = mms__rtab(s);
    lap(c);
    if (s->dir_dirty && !(s->flags & MMS_NOSYNC)) {
        int r = mms__os_fsync(s->dirfd);
        if (r)
            return mms__fail(r, "cannot sync the store directory: %s", mms_strerror(r));
    }
    s->dir_dirty = false;
    for (uint32_t id = 0; c->grew && !(s->flags & MMS_NOSYNC) && id < s->nmapped; id++) {
        struct mms__region *g = &s->reg[id];
        if (!s->view.base[id] || rt[id].size <= g->committed)
            continue;
        int r = mms__os_msync(s->view.base[id] + g->priv,
                              mms__round_up(rt[id].size, MMS__PAGE) - g->priv);
        if (r)
            return mms__fail(r, "cannot sync new data of region %u: %s", id, mms_strerror(r));
    }
    mms__crashpoint("commit.fresh_synced");
    c->st.sync_ns = lap(c);
    return 0;
}

/* Step 4, Invariant 2 (its first half): the group -- each dirty page's
 * changed bytes, the new region sizes, the txn id -- written to the
 * journal. */
static int commit_journal(mms_store *s, struct commit *c)
{
    struct mms__hdr *h = mms__hdr(s);
    const struct mms__rent *rt = mms__rtab(s);
    c->jstart = s->J->end;
    mms__jgroup_begin(s, h->txn_id);
    for (size_t i = 0; i < s->dirty.n; i++) {
        char *p = s->dirty.page[i];
        uint32_t id = page_region(s, p);
        uint64_t off = (uint64_t)(p - s->view.base[id]);
        bool changed;
        int r = diff_page(s, id, off, p, s->reg[id].fview + off, &changed);
        if (r)
            return r;
        s->dirty.changed[i] = changed;
    }
    for (uint32_t id = 0; id < s->nmapped; id++)
        if (s->view.base[id] && rt[id].size != s->reg[id].committed) {
            int r = mms__jgroup_size(s, id, s->reg[id].gen, rt[id].size);
            if (r)
                return r;
        }
    /* The whole txn id, last: the diff logs only the bytes that changed,
     * and replaying old groups over newer files (an interrupted recovery)
     * must still leave the header naming a txn that existed, which the
     * range check of the next recovery relies on (journal.c). */
    int r = mms__jgroup_data(s, 0, 0, offsetof(struct mms__hdr, txn_id), &h->txn_id,
                             sizeof h->txn_id);
    if (!r)
        r = mms__jgroup_write(s, h->txn_id);
    if (r)
        return r;
    c->st.journal_ns = lap(c);
    c->st.journal_bytes = s->J->end - c->jstart;
    return 0;
}

/* Step 5, Invariant 2: the commit point. */
static int commit_durable(mms_store *s, struct commit *c)
{
    int r = mms__jgroup_sync(s);
    if (r)
        return r;
    mms__crashpoint("commit.journal_synced");
    c->st.sync_ns += lap(c);
    return 0;
}

/* Step 6, Invariant 3: apply -- whole pages: a private page is the
 * committed state of its page plus this transaction's stores. The header
 * page (always page[0]) goes last, so a header naming this txn means the
 * whole commit reached the page cache. Invariant 6: readers never see it
 * half done: the gate is closed and every reader inside a read transaction
 * has left (lock.c); opening the gate publishes the txn. */
static int commit_apply(mms_store *s, struct commit *c)
{
    assert(s->dirty.n > 0 && s->dirty.page[0] == s->view.base[0]);
    int r = mms__gate_close(s);
    if (r)
        return r;
    for (size_t k = 1; k <= s->dirty.n; k++) {
        size_t i = k % s->dirty.n;
        if (!s->dirty.changed[i])
            continue;
        char *p = s->dirty.page[i];
        uint32_t id = page_region(s, p);
        memcpy(s->reg[id].fview + (p - s->view.base[id]), p, MMS__PAGE);
        if (++c->nchanged == 1)
            mms__crashpoint("commit.apply");
    }
    mms__gate_open(s->L, mms__hdr(s)->txn_id);
    s->seen = mms__hdr(s)->txn_id;
    return 0;
}

/* Step 7: the new committed sizes (grown space becomes private), private
 * copies dropped or kept (NOTES), a checkpoint when the journal is long. */
static int commit_settle(mms_store *s, struct commit *c)
{
    const struct mms__rent *rt = mms__rtab(s);
    for (uint32_t id = 0; id < s->nmapped; id++) {
        if (!s->view.base[id])
            continue;
        s->reg[id].committed = rt[id].size;
        int r = mms__map_commit(s, id);
        if (r)
            return r;
    }
    drop_pages(s, c->nchanged > s->keep_pages ? -1 : 0);
    c->st.apply_ns = lap(c);
    c->st.pages_changed = c->nchanged;
    if (s->J->end - MMS__JDATA > s->checkpoint_bytes)
        return mms__checkpoint(s);
    return 0;
}

int mms_txn_commit(mms_store *s)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state != MMS__ST_WRITE)
        return mms__fail(MMS_ENOTXN, "no write transaction to commit");
    /* Publishing waits for the readers inside a read transaction; one of
     * them on this very thread would wait for ever. */
    if (mms__pinned_by_me(s))
        return mms__fail(MMS_ETXN, "this thread is inside a read transaction on this store; "
                         "end it before committing");
    struct commit c = {.t0 = mms__os_mono_ns()};
    c.lap = c.t0;
    bool any;
    r = commit_detect(s, &c, &any);
    if (r)
        return commit_fail(s, mms__fail(r, "finding the dirty pages failed: %s",
                                        mms_strerror(r)));
    if (!any) {
        txn_end(s);
        return 0;
    }
    r = commit_stamp(s);
    if (!r)
        r = commit_sync_fresh(s, &c);
    if (!r)
        r = commit_journal(s, &c);
    if (r)
        return commit_fail(s, r);
    r = commit_durable(s, &c);
    if (!r)
        r = commit_apply(s, &c);
    if (!r)
        r = commit_settle(s, &c);
    if (r)
        return commit_poison(s, r);
    txn_end(s);
    c.st.total_ns = mms__os_mono_ns() - c.t0;
    s->stats = c.st;
    return s->poisoned;
}

/* ------------------------------------------------------------------------
 * Checkpoint (Invariant 5)
 * ------------------------------------------------------------------------ */
int mms__checkpoint(mms_store *s)
{
    assert(mms__writer_held_by(s));
    if (s->J->end == MMS__JDATA)
        return 0;
    for (uint32_t id = 0; id < s->nmapped; id++) {
        if (s->reg[id].fd < 0)
            continue;
        int r = mms__os_fdatasync(s->reg[id].fd);
        if (r)
            return mms__fail(r, "checkpoint cannot sync region %u: %s", id, mms_strerror(r));
    }
    mms__crashpoint("checkpoint.synced");
    int r = mms__journal_reset(s, s->hdr_fixed + offsetof(struct mms__hdr, uuid),
                               mms__hdr(s)->txn_id);
    if (!r) /* no journal record names an old region file any more */
        mms__region_gc(s, mms__rtab(s), mms__hdr(s)->nregions);
    return r;
}

int mms_checkpoint(mms_store *s)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->flags & MMS_RDONLY)
        return mms__fail(MMS_ERDONLY, "the store is open read-only");
    if (s->state == MMS__ST_WRITE)
        return mms__fail(MMS_ETXN, "mms_checkpoint inside a write transaction");
    if (s->state == MMS__ST_READ)
        return mms__fail(MMS_ETXN, "mms_checkpoint inside a read transaction");
    r = mms__writer_enter(s, true);
    if (r)
        return r;
    r = mms__checkpoint(s);
    if (r) {
        s->poisoned = r;
        __atomic_store_n(&s->L->recover_needed, 1, __ATOMIC_RELEASE);
    }
    mms__writer_unlock(s);
    return r;
}

/* ------------------------------------------------------------------------
 * Read transactions and waiting (lock.c does the protocol)
 * ------------------------------------------------------------------------ */
int mms_read_begin(mms_store *s)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state == MMS__ST_READ)
        return mms__fail(MMS_ETXN, "a read transaction is already active on this handle");
    if (s->state == MMS__ST_WRITE)
        return mms__fail(MMS_ETXN, "this handle is inside a write transaction");
    if (s->L_private) { /* read-only file system: nothing can change */
        mms__state_to(s, MMS__ST_READ);
        return 0;
    }
    uint64_t txn;
    r = mms__pin(s, &txn, mms__recover_for_reader, s);
    if (r)
        return r;
    r = refresh(s, txn);
    if (r) {
        mms__unpin(s);
        return r;
    }
    mms__state_to(s, MMS__ST_READ);
    return 0;
}

int mms_read_end(mms_store *s)
{
    int r = mms__check_handle(s);
    if (r && r != MMS_EPOISONED)
        return r;
    if (s->state != MMS__ST_READ)
        return mms__fail(MMS_ENOTXN, "no read transaction to end");
    mms__state_to(s, MMS__ST_IDLE);
    if (!s->L_private)
        mms__unpin(s);
    return 0;
}

int mms_wait(mms_store *s, uint64_t txn, int timeout_ms, uint64_t *now)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state == MMS__ST_READ || mms__pinned_by_me(s))
        return mms__fail(MMS_ETXN, "mms_wait inside a read transaction would wait for ever");
    uint64_t cur;
    r = mms__wait_change(s->L, txn, timeout_ms, &cur);
    if (now)
        *now = cur;
    return r;
}

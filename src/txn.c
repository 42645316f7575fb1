/*
 * txn.c -- write transactions (begin, commit, abort) and checkpoints.
 *
 * Layer 8: calls view.c, table.c, heapobj.c, apply.c, recover.c, journal.c,
 * held.c, alloc.c, map.c, lock.c and os.c. It owns the commit protocol: the order
 * of the steps that make a transaction durable and visible, each citing its
 * invariant. It must never wait for a reader, except at the backlog's bound
 * when the application asked for that.
 *
 * NOTES ON THE DESIGN (invariants as numbered in DESIGN §3 and journal.c)
 *
 * A transaction's stores land in copy-on-write pages of the private part of
 * each region (map.c), or in fresh space past the committed size. Commit:
 *
 *   1. Detect: ask the kernel which private pages exist (the dirty pages:
 *      those the transaction wrote, and those the handle held), leaving
 *      out held pages write-protected since an earlier commit that nothing
 *      wrote (protect_held, below). Each is compared with its
 *      committed content -- its shadow if it has one (held.c), else the
 *      file's. Nothing differs and nothing grew: the
 *      transaction commits nothing.
 *      Records of tables that plain stores changed (or this transaction
 *      appended) get their ref, string and blob values checked: a bad one
 *      aborts the commit (table.c).
 *   2. Bound: too many pages held back for readers (max_backlog)? Then wait
 *      for the readers inside and apply, or fail (MMS_BACKLOG_ERROR).
 *   3. Stamp the header: txn id + 1, CRC. (Region sizes were set by the
 *      allocator as it grew regions.)
 *   4. Invariant 1: sync the fresh space of every region that grew, before
 *      any commit record makes it reachable (in MMS_NOSYNC too).
 *   5. Invariant 2: diff each dirty page against its committed content and
 *      journal the differing byte runs, the region sizes and the commit
 *      record; fdatasync the journal (not in MMS_NOSYNC). The commit is
 *      durable here, and counted (L->committed). An error before this
 *      point aborts the transaction and leaves the handle usable; from here
 *      on it poisons the handle (the next writer decides, from the
 *      journal, whether the commit happened: apply.c, mms__repair).
 *   6. Invariants 3 and 6: apply, if the group is durable and no reader is
 *      inside: copy the changed pages into the file view (or, behind a
 *      backlog, replay the journal) and publish. Otherwise the commit waits
 *      in the journal for whoever applies next (apply.c): a commit never
 *      waits for a reader.
 *   7. Settle: the private/shared boundary moves over grown space; the
 *      pages to hold are held (below), the others dropped; a checkpoint
 *      when the journal is long and everything is applied.
 *
 * Which private pages to hold after a commit: every page changed by a
 * commit that is not applied yet -- the private page is then the only copy
 * of the committed state in this view, and its shadow what the next commit
 * diffs against and an abort restores. Of the pages changed by an applied
 * commit, up to keep_pages: a page whose copy is dropped costs a
 * copy-on-write fault the next time a transaction writes it; a page held
 * costs a compare at every commit while it stays (bench/commit_cost).
 *
 * Abort drops the private copies of pages the file holds (MADV_DONTNEED: the
 * pages fall back to the file, which has their committed state, header
 * included, so allocator state reverts with the data) and restores held
 * pages from their shadows. Fresh space written by an aborted transaction
 * stays in the file, unreachable.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Diff: the byte runs where a private page differs from its committed
 * content. Runs closer than a record header are merged (cheaper to log the
 * gap).
 * ------------------------------------------------------------------------ */
#define GAP_WORDS 3

static int diff_page(mms_store *s, uint32_t id, uint64_t off, const char *mine, const char *base,
                     bool *changed)
{
    const uint64_t *a = (const uint64_t *)(const void *)mine;
    const uint64_t *b = (const uint64_t *)(const void *)base;
    enum { W = MMS__PAGE / 8 };
    *changed = false;
    if (memcmp(mine, base, MMS__PAGE) == 0)
        return 0; /* most pages a commit compares are held ones nothing changed */
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
        while (mine[lo] == base[lo])
            lo++;
        while (mine[hi - 1] == base[hi - 1])
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
 * Begin, abort
 * ------------------------------------------------------------------------ */
int mms__writer_enter_timed(mms_store *s, int timeout_ms)
{
    int r = mms__writer_lock_timed(s, timeout_ms);
    if (r)
        return r;
    r = mms__repair(s);
    if (r)
        mms__writer_unlock(s);
    return r;
}

int mms_txn_begin(mms_store *s, unsigned flags)
{
    return mms_txn_begin_timed(s, flags, (flags & MMS_TXN_NOWAIT) ? 0 : -1);
}

/* The timeout bounds the wait for the writer lock only: taking over from a
 * dead writer (mms__repair) waits for no reader, and the full recovery
 * after a handle that died applying (no reader is inside then) is not cut
 * short half-way. */
int mms_txn_begin_timed(mms_store *s, unsigned flags, int timeout_ms)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (flags & ~MMS_TXN_NOWAIT)
        return mms__fail(MMS_EINVAL, "mms_txn_begin: unknown flags 0x%x", flags);
    if ((flags & MMS_TXN_NOWAIT) && timeout_ms != 0)
        return mms__fail(MMS_EINVAL, "mms_txn_begin_timed: MMS_TXN_NOWAIT is timeout 0, "
                         "not %d ms", timeout_ms);
    if (s->flags & MMS_RDONLY)
        return mms__fail(MMS_ERDONLY, "the store is open read-only");
    if (s->state == MMS__ST_WRITE)
        return mms__fail(MMS_ETXN, "a write transaction is already active on this handle");
    if (s->state == MMS__ST_READ)
        return mms__fail(MMS_ETXN, "this handle is inside a read transaction");
    r = mms__writer_enter_timed(s, timeout_ms);
    if (r)
        return r;
    /* Following another writer, the view syncs first and so may report a
     * failed background sync (apply.c S4): as its own failed sync, it then
     * poisons the handle, as a commit's report does. */
    bool bg_failed = __atomic_load_n(&s->syncer_err, __ATOMIC_ACQUIRE) != 0;
    r = mms__view_for_writer(s);
    if (r && bg_failed && !__atomic_load_n(&s->syncer_err, __ATOMIC_ACQUIRE))
        s->poisoned = r;
    if (!r && (s->flags & MMS_GUARD))
        r = mms__map_protect(s, true);
    if (r) {
        mms__writer_unlock(s);
        return r;
    }
    mms__state_to(s, MMS__ST_WRITE);
    return 0;
}

static bool keep_shadowed(mms_store *s, struct mms__held *h, void *ctx)
{
    (void)s, (void)ctx;
    return h->shadow != NULL;
}

/* Held pages whose content is not their shadow's any more get it back
 * (the transaction wrote them, or a mapping was replaced under them). A
 * page of a region the transaction mapped to another file (a migration's
 * new one, maybe smaller: the page may not be mapped at all) is left
 * until the mappings follow the header again (undo's second call). */
static void restore_shadows(mms_store *s)
{
    for (size_t i = 0; i < s->held_cap; i++) {
        struct mms__held *h = &s->held[i];
        if (!h->page || !h->shadow)
            continue;
        uint32_t id = mms__page_region(s, h->page);
        if (id < s->nmapped && s->reg[id].gen == h->gen &&
            memcmp(h->page, h->shadow, MMS__PAGE) != 0)
            memcpy(h->page, h->shadow, MMS__PAGE);
    }
}

/* Undo a transaction: private copies of pages the file holds go, held
 * pages get their shadows back, so the header, the allocator and the
 * catalog are the committed ones again; then the mappings follow (a table
 * created or migrated by the transaction is unmapped or mapped back to its
 * old file). A failure here leaves mappings the handle cannot trust: it is
 * poisoned. */
static void undo(mms_store *s)
{
    mms__dirty_forget(s);
    mms__heap_forget(s);
    if (mms__dirty_collect(s, false) == 0) {
        for (size_t i = 0; i < s->dirty.n; i++) {
            const struct mms__held *h = mms__held_find(s, s->dirty.page[i]);
            s->dirty.changed[i] = !(h && h->shadow); /* 1: drop it */
        }
        mms__dirty_drop(s, 1);
        mms__held_sweep(s, keep_shadowed, NULL, false);
    } else if (s->shadow_pages == 0) {
        for (uint32_t id = 0; id < s->nmapped; id++)
            if (s->view.base[id])
                mms__os_drop(s->view.base[id], s->reg[id].priv);
        mms__held_clear(s);
    }
    s->dirty.n = 0;
    restore_shadows(s);
    mms__tables_undo(s);
    s->dir_dirty = false;
    int r = mms__tables_follow(s);
    if (!r)
        restore_shadows(s); /* mappings the transaction replaced are back */
    if (r && !s->poisoned)
        s->poisoned = r;
}

/* End the transaction: the guard goes back up, the writer lock is free. */
static void txn_end(mms_store *s)
{
    mms__state_to(s, MMS__ST_IDLE);
    s->dirty.n = 0;
    mms__refset_clear(&s->txn_deleted);
    mms__refset_clear(&s->txn_freed);
    mms__refset_clear(&s->txn_released);
    s->lib_set_ok = false; /* the next transaction may see another catalog */
    mms__ix_txn_end(s);
    mms__tables_txn_end(s);
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
    mms__guard_enter(s, true); /* guard.c G2: undo writes from this thread */
    undo(s);
    txn_end(s);
    return 0;
}

/* An error before the commit point: undo everything, keep the handle. */
static int commit_fail(mms_store *s, int err)
{
    __atomic_store_n(&s->L->committing, 0, __ATOMIC_RELEASE);
    undo(s);
    txn_end(s);
    return err;
}

/* An error after it: the handle cannot know what is on disk any more. The
 * next writer takes over from the journal (apply.c, mms__repair, which
 * decides whether this commit happened); so does a reader that comes first
 * (lock.c). */
static int commit_poison(mms_store *s, int err)
{
    s->poisoned = err;
    __atomic_fetch_or(&s->L->recover_needed, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&s->L->committing, 0, __ATOMIC_RELEASE);
    mms__held_clear(s);
    mms__refset_clear(&s->txn_deleted);
    mms__refset_clear(&s->txn_freed);
    mms__refset_clear(&s->txn_released);
    s->lib_set_ok = false;
    mms__ix_txn_end(s);
    mms__state_to(s, MMS__ST_IDLE);
    mms__writer_unlock(s);
    return err;
}

/* ------------------------------------------------------------------------
 * Commit, in the steps of the NOTES above. Each step returns 0 or an error.
 * ------------------------------------------------------------------------ */
struct commit {
    struct mms_commit_stats st;
    uint64_t t0, lap;  /* when the commit began; when the last step ended */
    bool grew;         /* a region's size moved past what was committed */
    bool applied;      /* the commit reached the region files (step 6) */
    bool quiet;        /* it found its pages without a scan (view.c, Quiet commits) */
    uint64_t jstart;   /* journal offset of this commit's group */
    size_t nchanged;   /* pages that differed from their committed content */
};

/* Nanoseconds since the last lap. */
static uint64_t lap(struct commit *c)
{
    uint64_t t = mms__os_mono_ns(), d = t - c->lap;
    c->lap = t;
    return d;
}

/* Step 1: which pages the transaction wrote, and whether it changed
 * anything at all (*any). The first look may find them without a scan
 * (view.c, "Quiet commits"); a second one (after the record checks wrote)
 * scans. */
static int commit_detect(mms_store *s, struct commit *c, bool first, bool *any)
{
    assert(s->state == MMS__ST_WRITE && mms__writer_held_by(s));
    const struct mms__rent *rt = mms__rtab(s);
    uint64_t quiet = s->quiet_commits;
    int r = first ? mms__dirty_commit(s) : mms__dirty_collect(s, true);
    if (r)
        return mms__fail(r, "finding the dirty pages failed: %s", mms_strerror(r));
    c->quiet = first && s->quiet_commits != quiet;
    c->st.detect_ns = lap(c);
    c->st.pages_dirty = s->dirty.n;
    for (uint32_t id = 0; id < s->nmapped; id++)
        if (s->view.base[id] && rt[id].size > s->reg[id].committed)
            c->grew = true;
    *any = c->grew;
    /* Held pages are dirty without having changed: the transaction changed
     * something only if a page differs from its committed content (usually
     * the first one compared does). */
    for (size_t i = 0; i < s->dirty.n && !*any; i++) {
        char *p = s->dirty.page[i];
        *any = mms__page_changed(s, p, mms__page_region(s, p));
    }
    return 0;
}

/* Bytes [off, off + len) of region id as committed: each page's committed
 * content (its shadow, or the file's; mms__page_base) into buf. */
static void committed_bytes(mms_store *s, uint32_t id, uint64_t off, uint64_t len, char *buf)
{
    while (len) {
        uint64_t pg = off & ~(uint64_t)(MMS__PAGE - 1), n = MMS__PAGE - (off - pg);
        if (n > len)
            n = len;
        const char *base = mms__page_base(s, s->view.base[id] + pg, id);
        memcpy(buf, base + (off - pg), n);
        buf += n;
        off += n;
        len -= n;
    }
}

/* The records of one watched table a plain store changed (on its dirty
 * pages, below its committed count) or the transaction appended (past it:
 * fresh space no diff sees). */
static int records_of_table(mms_store *s, uint32_t id, const struct mms__tabent *e,
                            size_t from, size_t to)
{
    uint64_t rs = e->record_size, committed = s->reg[id].committed / rs, last = UINT64_MAX;
    if (s->recbuf_cap < rs) {
        char *b = realloc(s->recbuf, rs);
        if (!b)
            return -ENOMEM;
        s->recbuf = b;
        s->recbuf_cap = rs;
    }
    const char *base = s->view.base[id];
    for (size_t i = from; i < to; i++) {
        uint64_t off = (uint64_t)(s->dirty.page[i] - base);
        for (uint64_t k = off / rs; k <= (off + MMS__PAGE - 1) / rs && k < committed; k++) {
            if (k == last)
                continue;
            last = k;
            committed_bytes(s, id, k * rs, rs, s->recbuf);
            if (memcmp(s->recbuf, base + k * rs, rs) == 0)
                continue;
            int r = mms__table_record_changed(s, e, k, s->recbuf, base + k * rs);
            if (!r && e->nindexes)
                r = mms__ix_record(s, e, k, s->recbuf, base + k * rs);
            if (r)
                return r;
        }
    }
    /* Appended records are read (and their strings) from fresh space: every
     * 8 MiB of them the pages go back (mms_release_memory), or a bulk load
     * that kept its memory flat would map all it wrote here, at once. */
    uint64_t release_every = ((uint64_t)8 << 20) / rs + 1;
    for (uint64_t k = committed; k < e->count; k++) {
        int r = mms__table_record_changed(s, e, k, NULL, base + k * rs);
        if (!r && e->nindexes)
            r = mms__ix_record(s, e, k, NULL, base + k * rs);
        if (r)
            return r;
        if ((k - committed) % release_every == release_every - 1)
            mms__map_release(s);
    }
    return 0;
}

/* The records the transaction deleted, for the indexes of their tables
 * (a deleted record whose bytes were zero already is on no dirty page). */
static int deleted_records(mms_store *s)
{
    for (size_t i = 0; i < s->txn_deleted.cap; i++) {
        mms_ref ref = s->txn_deleted.v[i];
        uint32_t id = MMS_REF_REGION(ref);
        const struct mms__tabent *e = ref ? mms__catalog_by_region(s, id) : NULL;
        if (!e || !e->nindexes || id >= s->nmapped || !s->view.base[id])
            continue;
        uint64_t k = MMS_REF_SLOT(ref), rs = e->record_size;
        if (k >= e->count)
            continue;
        if (s->recbuf_cap < rs) {
            char *b = realloc(s->recbuf, rs);
            if (!b)
                return -ENOMEM;
            s->recbuf = b;
            s->recbuf_cap = rs;
        }
        bool was = k < s->reg[id].committed / rs;
        if (was)
            committed_bytes(s, id, k * rs, rs, s->recbuf);
        int r = mms__ix_record(s, e, k, was ? s->recbuf : NULL, s->view.base[id] + k * rs);
        if (r)
            return r;
    }
    return 0;
}

/* Step 1b: records of tables that plain stores changed: their values are
 * checked (refs, strings) before anything is written, so a refusal aborts
 * the commit and leaves the store as it was. Then the tables' indexes
 * follow the changed records (index.c), unique ones are checked, and
 * what that wrote becomes part of the commit (precommit_wrote). */
static int commit_records(mms_store *s)
{
    mms__heap_holders_begin(s); /* heapobj.c: its counts follow the records below */
    int r = mms__ix_commit_begin(s);
    if (r)
        return r;
    /* The dirty pages come region by region, in id order (view.c). */
    size_t i = 0;
    for (uint32_t id = 0; id < s->nmapped; id++) {
        const char *b = s->view.base[id];
        size_t from = i;
        while (b && i < s->dirty.n && s->dirty.page[i] >= b &&
               s->dirty.page[i] < b + s->reg[id].priv)
            i++;
        /* An index's region has no entry: not searched for one. */
        const struct mms__tabent *e = b && id && mms__rtab(s)[id].kind == MMS__RK_TABLE
                                          ? mms__catalog_by_region(s, id) : NULL;
        if (!e || !mms__table_watched(s, e))
            continue;
        r = records_of_table(s, id, e, from, i);
        if (r)
            return r;
    }
    r = mms__heap_owned_check(s);
    if (!r)
        r = mms__tables_check_deletes(s);
    if (!r)
        r = deleted_records(s);
    return r ? r : mms__ix_commit_end(s);
}

/* Step 2: the backlog's bound. Commits wait in the journal (and their
 * pages in this handle's shadows) while readers hold them back; past
 * max_backlog the commit waits for those readers, or, with
 * MMS_BACKLOG_ERROR, fails with MMS_EBUSY and the transaction stays open. */
/* Bytes of pages this handle would hold back, with this commit's, for
 * commits readers still see: a page written again that has a shadow
 * already adds none (counting it twice refused commits that rewrote the
 * waiting pages, with half the bound held; test_backlog bound_same_pages). */
static uint64_t backlog_held(const mms_store *s)
{
    uint64_t n = s->shadow_pages;
    for (size_t i = 0; i < s->dirty.n; i++) {
        const struct mms__held *h = mms__held_find(s, s->dirty.page[i]);
        n += !(h && h->shadow);
    }
    return n * MMS__PAGE;
}

static bool backlog_over(mms_store *s)
{
    struct mms__lock *L = s->L;
    if (__atomic_load_n(&L->published, __ATOMIC_ACQUIRE) >=
        __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE))
        return false;
    uint64_t journal = s->J->end - MMS__JDATA;
    return backlog_held(s) > s->max_backlog ||
           journal > 4 * s->checkpoint_bytes + s->max_backlog;
}

static int commit_bound(mms_store *s, struct commit *c)
{
    (void)c;
    if (!backlog_over(s))
        return 0;
    if (s->flags & MMS_BACKLOG_ERROR) {
        /* What no reader holds back goes first: MMS_NOSYNC commits that
         * wait for their sync only are synced, and applied if no reader
         * is inside -- else a writer alone would fail for ever. */
        int r = mms__make_durable(s);
        if (!r)
            r = mms__apply_try(s);
        if (r || !backlog_over(s))
            return r;
        struct mms__lock *L = s->L;
        uint64_t n = __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE) -
                     __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
        char why[160];
        if (backlog_held(s) > s->max_backlog)
            snprintf(why, sizeof why, "they hold %llu KB, and this commit's %llu KB more would "
                     "pass max_backlog, %llu KB",
                     (unsigned long long)(s->shadow_pages * MMS__PAGE >> 10),
                     (unsigned long long)((backlog_held(s) - s->shadow_pages * MMS__PAGE) >> 10),
                     (unsigned long long)(s->max_backlog >> 10));
        else
            snprintf(why, sizeof why, "the journal that keeps them holds %llu KB, past 4 x "
                     "checkpoint_bytes + max_backlog", (unsigned long long)((s->J->end - MMS__JDATA) >> 10));
        return mms__fail(MMS_EBUSY, "%llu commit%s wait%s for readers to leave (%s); the "
                         "transaction is still open", (unsigned long long)n, n == 1 ? "" : "s",
                         n == 1 ? "s" : "", why);
    }
    if (mms__pinned_by_me(s))
        return mms__fail(MMS_ETXN, "the backlog is at its bound and this thread is inside a "
                         "read transaction on this store: it would wait for itself");
    return mms__apply_all(s);
}

/* Step 3: the new txn id and header CRC; page 0 first in the page list. A
 * stray store inside the transaction must not make the store unopenable:
 * the header's fixed fields are checked, not journaled. */
static int commit_stamp(mms_store *s)
{
    struct mms__hdr *h = mms__hdr(s);
    const struct mms__hdr *f = (const struct mms__hdr *)(const void *)s->reg[0].fview;
    if (memcmp(h, s->hdr_fixed, sizeof s->hdr_fixed) != 0 || h->version != f->version ||
        h->page_size != f->page_size || h->hdr_pages != f->hdr_pages ||
        h->created_ns != f->created_ns || h->nclass != f->nclass ||
        memcmp(&h->fixed, &f->fixed, sizeof h->fixed) != 0 ||
        memcmp(h->reserved, f->reserved, sizeof h->reserved) != 0)
        return MMS__CORRUPT("the transaction overwrote fixed or reserved fields of the store "
                            "header; it was aborted");
    h->txn_id++;
    h->crc = mms__hdr_crc(h, mms__rtab(s));
    if (s->dirty.n == 0 || s->dirty.page[0] != s->view.base[0])
        return mms__dirty_push_front(s, s->view.base[0]);
    return 0;
}

/* Step 4, Invariant 1: fresh data is durable before the record that makes
 * it reachable -- and so are the names of region files it created. In
 * MMS_NOSYNC too: the journal's pages may reach the disk by themselves (the
 * kernel writes dirty pages back when it likes) before the sync that would
 * make them durable, and a group whose fresh data is lost would recover to
 * a state that never existed. Only commits that grow a region pay. */
static int commit_sync_fresh(mms_store *s, struct commit *c)
{
    const struct mms__rent *rt = mms__rtab(s);
    lap(c);
    if (s->dir_dirty) {
        int r = mms__os_fsync(s->dirfd);
        if (r)
            return mms__fail(r, "cannot sync the store directory: %s", mms_strerror(r));
    }
    s->dir_dirty = false;
    for (uint32_t id = 0; c->grew && id < s->nmapped; id++) {
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

/* Step 5, Invariant 2 (its first half): the group -- each dirty page's
 * changed bytes, the new region sizes, the txn id -- written to the
 * journal. From here until the commit is counted, a reader that finds
 * this writer dead takes over first (lock.c): committing says so. */
static int commit_journal(mms_store *s, struct commit *c)
{
    struct mms__hdr *h = mms__hdr(s);
    const struct mms__rent *rt = mms__rtab(s);
    c->jstart = s->J->end;
    __atomic_store_n(&s->L->committing, 1, __ATOMIC_SEQ_CST);
    mms__jgroup_begin(s, h->txn_id);
    for (size_t i = 0; i < s->dirty.n; i++) {
        char *p = s->dirty.page[i];
        uint32_t id = mms__page_region(s, p);
        uint64_t off = (uint64_t)(p - s->view.base[id]);
        bool changed;
        int r = diff_page(s, id, off, p, mms__page_base(s, p, id), &changed);
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

/* Step 5, Invariant 2 (its second half): the commit point. Then the commit
 * is counted, and in MMS_NOSYNC the journal is synced if a sync is due. */
static int commit_durable(mms_store *s, struct commit *c)
{
    struct mms__lock *L = s->L;
    uint64_t txn = mms__hdr(s)->txn_id;
    int r = mms__jgroup_sync(s);
    if (r)
        return r;
    mms__crashpoint("commit.journal_synced");
    /* Sequentially consistent: apply.c S1 (a sync clearing unsynced_ns
     * reads committed after the clear). */
    __atomic_store_n(&L->committed, txn, __ATOMIC_SEQ_CST);
    if (!(s->flags & MMS_NOSYNC)) {
        /* Sequentially consistent: before commit_apply tries the gate
         * (apply.c mms__apply_try: an apply that shut it looks again). */
        __atomic_store_n(&L->durable, txn, __ATOMIC_SEQ_CST);
        __atomic_store_n(&L->unsynced_ns, 0, __ATOMIC_RELEASE);
    } else {
        mms__syncer_count(s);
    }
    __atomic_store_n(&L->committing, 0, __ATOMIC_RELEASE);
    if ((s->flags & MMS_NOSYNC) && mms__sync_due(s))
        r = mms__make_durable(s);
    c->st.sync_ns += lap(c);
    return r;
}

/* Step 6, Invariants 3 and 6: apply, if the group is durable and no reader
 * is inside. When this commit is the only one the files lack, whole pages:
 * a private page is the committed state of its page. The header page
 * (always page[0]) goes last, so a header naming this txn means the whole
 * commit reached the page cache. Behind a backlog, the journal is replayed
 * (apply.c). Either way opening the gate publishes. */
static int commit_apply(mms_store *s, struct commit *c)
{
    struct mms__lock *L = s->L;
    uint64_t txn = mms__hdr(s)->txn_id;
    assert(s->dirty.n > 0 && s->dirty.page[0] == s->view.base[0]);
    uint64_t durable = __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE);
    if (durable < txn) {
        /* MMS_NOSYNC, held back: it waits in the journal. The commits a
         * sync made durable since the last apply -- the background
         * syncer's (apply.c), which leaves applying to the calls -- go to
         * the files now: else a writer whose syncs the syncer takes would
         * apply only when one of its commits found a sync due, and hold
         * the pages of every commit in between. */
        if (__atomic_load_n(&L->published, __ATOMIC_ACQUIRE) < durable && mms__apply_gate(s))
            return mms__apply_locked(s, "commit.apply");
        return 0;
    }
    if (!mms__apply_gate(s))
        return 0; /* readers inside: it waits in the journal */
    if (__atomic_load_n(&L->published, __ATOMIC_ACQUIRE) != txn - 1) {
        int r = mms__apply_locked(s, "commit.apply");
        c->applied = r == 0 && __atomic_load_n(&L->published, __ATOMIC_ACQUIRE) >= txn;
        return r;
    }
    size_t n = 0;
    for (size_t k = 1; k <= s->dirty.n; k++) {
        size_t i = k % s->dirty.n;
        if (!s->dirty.changed[i])
            continue;
        char *p = s->dirty.page[i];
        uint32_t id = mms__page_region(s, p);
        memcpy(s->reg[id].fview + (p - s->view.base[id]), p, MMS__PAGE);
        if (++n == 1)
            mms__crashpoint("commit.apply");
    }
    __atomic_store_n(&L->apply_off, s->J->end, __ATOMIC_RELEASE);
    __atomic_store_n(&L->apply_crc, s->J->last_crc, __ATOMIC_RELEASE);
    mms__gate_open(s, txn);
    c->applied = true;
    return 0;
}

struct settle {
    uint64_t txn, published;
    uint32_t mark;
};

/* Backlog pages the files now have lose their shadow. Held pages this
 * commit did not see go: either no longer private (a mapping was
 * replaced), or write-protected and unchanged -- those stay while they
 * hold a commit the files lack, and otherwise go back to the file, which
 * has their content. (Keeping those as well, up to 16 MiB, spared no
 * fault -- a write to a protected page faults as dearly as a
 * copy-on-write one on our VMs -- and doubled the scan of every commit,
 * which walks their page-table entries: bench/results/issue14.md.) */
static bool keep_after_commit(mms_store *s, struct mms__held *h, void *ctx)
{
    const struct settle *st = ctx;
    if (h->shadow && h->txn <= st->published)
        mms__held_unshadow(s, h);
    if (h->mark == st->mark)
        return true;
    if (!h->wp)
        return false;
    uint32_t id = mms__page_region(s, h->page);
    if (id >= s->nmapped || h->mapseq != s->reg[id].mapseq)
        return false;
    if (h->shadow)
        return true;
    s->trim_now = true; /* its page goes back to the file, with the others' */
    return false;
}

/* Held pages are write-protected (in batches, protect_held below), so that
 * the next commits leave them out of their scan until something writes
 * them (os.c): a commit then costs what it wrote, not the backlog of pages
 * waiting for readers or for MMS_NOSYNC's sync. Registration goes by
 * aligned chunks of WP_CHUNK bytes (it
 * turns off the kernel's fault-around there) and lasts as long as the
 * mapping: Linux refuses to unregister a regular file's mapping
 * (UFFDIO_UNREGISTER checks it as if it were not in asynchronous mode).
 * A chunk is 2 MiB, one page table where the region's base is so aligned
 * (the kernel aligns large reservations so; fixed mode's bases are), so
 * that the pieces the registration cuts the mapping into cover whole
 * tables, which an madvise can then free. */
#define WP_CHUNK MMS__WP_CHUNK

/* The chunks of region id registered in its current mapping, a bit each
 * (a new mapping of the region starts with none). */
static struct mms__region *reg_chunks(mms_store *s, uint32_t id)
{
    struct mms__region *g = &s->reg[id];
    if (g->wp_reg_seq != g->mapseq) {
        if (g->wp_reg)
            memset(g->wp_reg, 0, g->wp_reg_words * 8);
        g->wp_reg_seq = g->mapseq;
    }
    return g;
}

/* Whether every chunk of [c0, c1) is registered. The last chunk of the
 * private range may be registered as far as its end only: the part past it
 * becomes another mapping when the region grows, and mms__map_commit then
 * forgets the chunk, so that it is registered again. */
static bool chunks_known(mms_store *s, uint32_t id, uint64_t c0, uint64_t c1)
{
    const struct mms__region *g = reg_chunks(s, id);
    for (uint64_t k = c0 / WP_CHUNK; k < (c1 + WP_CHUNK - 1) / WP_CHUNK; k++)
        if (k / 64 >= g->wp_reg_words || !(g->wp_reg[k / 64] >> (k % 64) & 1))
            return false;
    return true;
}

/* Record that the chunks of [c0, c1) are registered, the last one as far
 * as c1 (no memory: they are registered again next time). */
static void chunks_mark(mms_store *s, uint32_t id, uint64_t c0, uint64_t c1)
{
    struct mms__region *g = reg_chunks(s, id);
    uint64_t last = (c1 + WP_CHUNK - 1) / WP_CHUNK;
    if (last > g->wp_reg_words * 64) {
        uint64_t words = (last + 63) / 64 * 2;
        uint64_t *w = realloc(g->wp_reg, words * 8);
        if (!w)
            return;
        memset(w + g->wp_reg_words, 0, (words - g->wp_reg_words) * 8);
        g->wp_reg = w;
        g->wp_reg_words = words;
    }
    for (uint64_t k = c0 / WP_CHUNK; k < last; k++) {
        g->wp_reg[k / 64] |= UINT64_C(1) << (k % 64);
    }
}

/* Lift the protection of every registered chunk (and the markers that
 * protected pages leave in their page tables when dropped, which keep the
 * tables: the kernel frees a table a drop empties, CONFIG_PT_RECLAIM, and
 * every scan walks the tables there are). Only with no shadow held: no
 * page needs protection then. */
static void wp_lift(mms_store *s)
{
    for (uint32_t id = 0; id < s->nmapped; id++) {
        const struct mms__region *g = reg_chunks(s, id);
        uint64_t n = g->wp_reg_words * 64;
        for (uint64_t k = 0; k < n;) {
            if (!(g->wp_reg[k / 64] >> (k % 64) & 1)) {
                k++;
                continue;
            }
            uint64_t j = k + 1;
            while (j < n && (g->wp_reg[j / 64] >> (j % 64) & 1))
                j++;
            uint64_t end = j * WP_CHUNK < g->priv ? j * WP_CHUNK : g->priv;
            if (end > k * WP_CHUNK)
                mms__os_wp_unprotect(s->wp_fd, s->view.base[id] + k * WP_CHUNK,
                                     end - k * WP_CHUNK);
            k = j;
        }
    }
    s->wp_protected = false;
    for (size_t i = 0; i < s->held_cap; i++)
        s->held[i].wp = false;
}

/* Register the whole chunks around [start, end) of region id, once per
 * mapping: registering again costs a system call that takes the address
 * space's lock for writing. Returns whether they are registered. A
 * failure leaves the pages unprotected, and so reported by every scan:
 * safe. */
static bool register_run(mms_store *s, uint32_t id, char *start, char *end)
{
    char *base = s->view.base[id], *lim = base + s->reg[id].priv;
    uint64_t c0 = (uint64_t)(start - base) & ~(WP_CHUNK - 1);
    uint64_t c1 = mms__round_up((uint64_t)(end - base), WP_CHUNK);
    if (c1 > (uint64_t)(lim - base))
        c1 = (uint64_t)(lim - base);
    if (chunks_known(s, id, c0, c1))
        return true;
    if (mms__os_wp_register(s->wp_fd, base + c0, c1 - c0) != 0)
        return false;
    chunks_mark(s, id, c0, c1);
    return true;
}

struct protected {
    mms_store *s;
    uint32_t id;
};

/* The pages the protecting scan reported (and protected): held ones are
 * marked so. The scan does not tell file pages from copies (os.c: the
 * look-up that would, over every present page, cost more than the batch's
 * protection), so the others are pages read from the file, now protected
 * too, which is harmless (a write faults and is seen), or a page written
 * and neither held nor dropped -- none is expected, every page written
 * since the scan of this commit having been dropped or held: one whose
 * content is not the file's gets its protection lifted at once, so that
 * the next scan still reports it. */
static int protected_run(void *ctx, char *start, char *end)
{
    struct protected *pc = ctx;
    mms_store *s = pc->s;
    const struct mms__region *g = &s->reg[pc->id];
    for (char *p = start; p < end; p += MMS__PAGE) {
        struct mms__held *h = mms__held_find(s, p);
        if (h) {
            h->wp = true;
            h->mapseq = g->mapseq;
        } else if (mms__page_as_file(s, pc->id, p) != 1) {
            mms__os_wp_unprotect(s->wp_fd, p, MMS__PAGE);
            mms__dirty_forget(s); /* writable, on no list */
        }
    }
    s->wp_protected |= start < end;
    return 0;
}

/* Held pages not write-protected are reported, and compared, at every
 * commit; held pages protected cost nothing until written. The pages that
 * need it are those with a shadow (the backlog: MMS_NOSYNC's commits until
 * the sync, commits readers hold back), which may stay for thousands of
 * commits. Protecting costs a system call and a TLB flush: on our VMs a
 * call for one page cost ~17 us, and the flushes were a quarter of a
 * NOSYNC commit when every commit protected the page the last one changed.
 * So pages wait unprotected, compared at each commit, until WP_BATCH of
 * them have a shadow; then one scan per region protects every written page
 * there at once, ~0.4 us a page (os.c: the kernel protects what it
 * reports, in registered chunks only). A page written at every commit
 * (the header's, which the scan leaves out) so stays unprotected and never
 * faults; one written now and then takes one fault when written again after
 * a batch protected it (bench/results/issue14.md). A batch costs ~100-200
 * us in a NOSYNC commit loop here (its flushes make the next accesses
 * fault into the hypervisor), a page waiting ~0.15 us a commit (reported,
 * compared with its shadow): 32 took 14% less CPU than 8 in 10^4 commits,
 * 64 more (the compares; bench/results/issue14.md, 2026-12-06 05:50). */
#define WP_BATCH 32

static void protect_held(mms_store *s)
{
    const struct mms__pagevec *v = &s->dirty;
    if (s->wp_fd < 0)
        return;
    size_t waiting = 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct mms__held *h = v->changed[i] != 1 ? mms__held_find(s, v->page[i]) : NULL;
        waiting += h && h->shadow;
    }
    if (waiting < WP_BATCH)
        return;
    /* The pages come region by region (view.c): each region's runs are
     * registered, then one scan protects the region. Not the header page:
     * every commit writes it (its stamp); a region 0 with no other page
     * waiting is not scanned (in a commit to a table, every other batch's
     * scan found nothing). */
    uint32_t cur = UINT32_MAX;
    bool any = false;
    for (size_t i = 0; i <= v->n;) {
        if (i < v->n && (v->changed[i] == 1 || v->page[i] == s->view.base[0])) {
            i++;
            continue;
        }
        uint32_t id = i < v->n ? mms__page_region(s, v->page[i]) : UINT32_MAX;
        if (id != cur && any) {
            char *b = s->view.base[cur] + (cur == 0 ? MMS__PAGE : 0);
            struct protected pc = {s, cur};
            mms__os_dirty_protect(s->dirty_fd, b, s->view.base[cur] + s->reg[cur].priv,
                                  protected_run, &pc);
        }
        if (i == v->n)
            break;
        if (id != cur)
            any = false;
        cur = id;
        char *lim = s->view.base[id] + s->reg[id].priv; /* a run stays in its region */
        size_t j = i + 1;
        while (j < v->n && v->page[j] == v->page[j - 1] + MMS__PAGE && v->changed[j] != 1 &&
               v->page[j] < lim)
            j++;
        any |= register_run(s, id, v->page[i], v->page[j - 1] + MMS__PAGE);
        i = j;
    }
}

/* Pages the writer only read stay in its page tables, and the scan of the
 * next commit walks them all: after a read of 1 GB, every commit paid
 * milliseconds (bench/commit_cost). When scans are that slow (two in a
 * row), drop them (their content is the file's), keeping the held pages:
 * reads fault them back, ~1 us a page. A writer that reads them back at
 * once would pay that at every commit, so the gap between two trims
 * doubles each time the pages came back before the next, and shrinks back
 * when they did not.
 *
 * A write-protected page dropped leaves a marker in its page table, which
 * keeps the table: with no shadow held, the protection goes first, so that
 * the kernel can free the tables the drop empties (CONFIG_PT_RECLAIM). */
#define TRIM_GAP_MAX 4096u

/* After a trim, the 1 GiB-aligned spans of a private part where no page
 * holds a commit the files lack (shadowed, not published) are mapped anew (map.c):
 * their page tables go, and the scans of the next commits skip them at the
 * top of the tree instead of walking 512 empty entries a GiB (~8 us a
 * GiB). The other held pages there go with the old mapping: the file has
 * their content, and they were kept only to spare a copy-on-write fault
 * (one fault after a trim, against 8 us at every commit: the header's
 * page, which every commit writes, kept the first span's tables). A
 * failure leaves the handle poisoned: the mapping may have a hole. */
#define SPAN MMS__SPAN

struct spans {
    uintptr_t a0;    /* the first whole span of the private part */
    uint64_t n;      /* how many */
    uint64_t *busy;  /* a bit a span: it holds a page of a commit the files lack */
};

/* The span p is in (sp->n or more: none of them). */
static uint64_t span_of(const struct spans *sp, uintptr_t p)
{
    return p < sp->a0 ? UINT64_MAX : (p - sp->a0) / SPAN;
}

static bool span_busy(const struct spans *sp, uintptr_t p)
{
    uint64_t k = span_of(sp, p);
    return k >= sp->n || (sp->busy[k / 64] >> (k % 64) & 1);
}

static bool keep_outside_renewed(mms_store *s, struct mms__held *h, void *ctx)
{
    (void)s;
    return span_busy(ctx, (uintptr_t)h->page);
}

static void renew_spans(mms_store *s)
{
    uint64_t published = __atomic_load_n(&s->L->published, __ATOMIC_ACQUIRE);
    for (uint32_t id = 0; id < s->nmapped; id++) {
        uintptr_t b = (uintptr_t)s->view.base[id];
        uintptr_t a0 = (b + SPAN - 1) & ~(uintptr_t)(SPAN - 1), end = b + s->reg[id].priv;
        if (!b || a0 >= end || end - a0 < SPAN)
            continue;
        struct spans sp = {a0, (end - a0) / SPAN, NULL};
        sp.busy = calloc(sp.n / 64 + 1, 8);
        if (!sp.busy)
            return;
        for (size_t i = 0; i < s->held_cap; i++) {
            const struct mms__held *h = &s->held[i];
            uint64_t k = span_of(&sp, (uintptr_t)h->page);
            if (h->shadow && h->txn > published && k < sp.n)
                sp.busy[k / 64] |= UINT64_C(1) << (k % 64);
        }
        mms__held_sweep(s, keep_outside_renewed, &sp, false); /* the renewal drops them */
        for (uint64_t k = 0; k < sp.n; k++) {
            if (span_busy(&sp, a0 + k * SPAN))
                continue;
            int r = mms__map_renew(s, id, a0 + k * SPAN - b, SPAN);
            if (r && !s->poisoned)
                s->poisoned = r;
            if (r)
                break;
        }
        free(sp.busy);
    }
}

/* A trim drops every private page it does not know written. After a
 * quiet commit (view.c) it does not know one the kernel wrote here for
 * another process (process_vm_writev, ptrace) since the commit before:
 * that write, which the next scan would have committed, went with the
 * trim (test_quiet remote_write_within_64_trimming). So after such a
 * commit the trim waits for the next commit, which scans. */
static void trim(mms_store *s, const struct commit *c)
{
    mms__dirty_forget(s); /* the next commit scans */
    s->trim_due = c->quiet;
    if (c->quiet)
        return;
    if (s->wp_protected && s->shadow_pages == 0)
        wp_lift(s);
    mms__view_trim(s); /* protections lifted, spans mapped anew */
    renew_spans(s);
    s->since_trim = 0;
}

/* Two slow scans in a row trim: a mapping full of pages makes every scan
 * slow, while one slow scan alone is as often the writer losing its core
 * for a moment. On a busy machine (load 3 on our 2 cores) single slow
 * scans trimmed 67-188 times in 10^4 NOSYNC commits, each trim ~300
 * madvise calls (one per gap between held pages), a fifth of the commits'
 * time (perf record; bench/results/issue14.md, "Branch span"). */
static void commit_trim(mms_store *s, const struct commit *c)
{
    if (s->trim_due) {
        trim(s, c);
        return;
    }
    s->since_trim++;
    /* A quiet commit's look is no scan, however long it took. */
    bool slow = !c->quiet && c->st.detect_ns >= s->trim_scan_ns, again = slow && s->scan_slow;
    s->scan_slow = slow;
    if (!again || s->since_trim < s->trim_gap)
        return;
    if (s->since_trim <= 2 * s->trim_gap)
        s->trim_gap = s->trim_gap * 2 > TRIM_GAP_MAX ? TRIM_GAP_MAX : s->trim_gap * 2;
    else
        s->trim_gap = s->trim_gap / 2 ? s->trim_gap / 2 : 1;
    trim(s, c);
}

/* Step 7: the new committed sizes (grown space becomes private), the pages
 * to hold held and the others dropped (NOTES), a checkpoint when the
 * journal is long. */
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
    struct settle st = {.txn = mms__hdr(s)->txn_id,
                        .published = __atomic_load_n(&s->L->published, __ATOMIC_ACQUIRE),
                        .mark = (uint32_t)mms__hdr(s)->txn_id};
    for (size_t i = 0; i < s->dirty.n; i++)
        c->nchanged += s->dirty.changed[i];
    bool keep = !c->applied || c->nchanged <= s->keep_pages;
    /* The sweep below looks at every entry; it has work outside this
     * commit's pages only when commits reached the files (shadows go) or a
     * mapping was replaced (its pages are not private any more). Otherwise
     * this commit's pages are all that changes: it costs what it touched. */
    bool sweep = st.published != s->held_pub || s->mapseq != s->held_mapseq;
    for (size_t i = 0; i < s->dirty.n; i++) {
        char *p = s->dirty.page[i];
        uint32_t id = mms__page_region(s, p);
        struct mms__held *h = mms__held_find(s, p);
        bool hold = s->dirty.changed[i] ? keep : h && h->shadow && h->txn > st.published;
        if (!hold && h && !sweep)
            mms__held_remove(s, h);
        int r = 0;
        if (hold && s->dirty.changed[i])
            r = mms__held_set(s, p, s->reg[id].gen, st.txn, !c->applied);
        if (r)
            return r;
        if (hold && (h = mms__held_find(s, p))) {
            h->mark = st.mark;
            h->wp = false; /* it was written (or never protected) */
        }
        /* 1: drop it; 0: hold it (changed); 2: hold it (unchanged) */
        s->dirty.changed[i] = !hold ? 1 : s->dirty.changed[i] ? 0 : 2;
    }
    mms__dirty_drop(s, 1);
    s->trim_now = false;
    if (sweep) {
        mms__held_sweep(s, keep_after_commit, &st, false);
        s->held_pub = st.published;
        s->held_mapseq = s->mapseq;
    }
    protect_held(s);
    if (s->trim_now)
        trim(s, c); /* the held pages the files now have go back, with the others */
    else
        commit_trim(s, c);
    s->seen = st.txn;
    c->st.apply_ns = lap(c);
    c->st.pages_changed = c->nchanged;
    if (s->J->end - MMS__JDATA > s->checkpoint_bytes && c->applied)
        return mms__checkpoint(s, false);
    return 0;
}

int mms_txn_commit(mms_store *s)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state != MMS__ST_WRITE)
        return mms__fail(MMS_ENOTXN, "no write transaction to commit");
    mms__guard_enter(s, true); /* guard.c G2: commit writes from this thread */
    struct commit c = {.t0 = mms__os_mono_ns()};
    c.lap = c.t0;
    bool any;
    r = commit_detect(s, &c, true, &any);
    if (r)
        return commit_fail(s, r);
    if (!any) {
        commit_trim(s, &c); /* s->dirty: every page marked 0, kept */
        mms__dirty_keep(s, false);
        txn_end(s);
        /* Nothing to commit, yet the writer's commit is where a due sync is
         * found, or a failed background sync reported (MMS_NOSYNC in
         * mmstore.h; apply.c S4), and where commits that readers held back
         * are applied once they have left (in either mode): the commits
         * before it become durable and reach the files, as after a commit
         * that wrote. */
        if (s->poisoned)
            return s->poisoned;
        r = (s->flags & MMS_NOSYNC) && mms__sync_due(s) ? mms__make_durable(s) : 0;
        if (r) /* as a commit that wrote is poisoned by a failed sync */
            return s->poisoned = r;
        return mms__apply_try(s);
    }
    s->precommit_wrote = false;
    r = commit_records(s);
    /* What the checks changed (an index following a plain store) is part
     * of the commit too: look again. */
    if (!r && s->precommit_wrote)
        r = commit_detect(s, &c, false, &any);
    if (r)
        return commit_fail(s, r);
    r = commit_bound(s, &c);
    if (r == MMS_EBUSY)
        return r; /* MMS_BACKLOG_ERROR: the transaction stays open */
    if (!r && (s->flags & MMS_NOSYNC))
        r = mms__syncer_start(s); /* apply.c S5: before the commit point */
    if (!r)
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
    mms__heap_holders_committed(s);
    mms__dirty_keep(s, true);
    txn_end(s);
    c.st.total_ns = mms__os_mono_ns() - c.t0;
    c.st.backlog = __atomic_load_n(&s->L->committed, __ATOMIC_ACQUIRE) -
                   __atomic_load_n(&s->L->published, __ATOMIC_ACQUIRE);
    s->stats = c.st;
    return s->poisoned;
}

/* ------------------------------------------------------------------------
 * Checkpoint (Invariant 5)
 * ------------------------------------------------------------------------ */
/* Delete the region files the header in region 0's file does not name
 * (best effort: a file left over is harmless, it is deleted next time). */
static void gc_files(mms_store *s)
{
    struct mms__hdrbuf b;
    uint64_t fsize;
    int fd;
    if (mms__region_open_file(s, 0, 0, false, false, &fd))
        return;
    if (mms__hdr_read(fd, &b, &fsize) == 0 && mms__hdr_check_full(&b.h, b.rt, fsize) == 0)
        mms__region_gc(s, b.rt, b.h.nregions);
    mms__os_close(fd);
}

int mms__checkpoint(mms_store *s, bool wait)
{
    assert(mms__writer_held_by(s));
    struct mms__lock *L = s->L;
    if (s->J->end == MMS__JDATA)
        return mms__space_give_back(s);
    /* Everything applied first: the checkpoint syncs the files at the last
     * commit. Readers holding commits back: wait for them, or skip. */
    int r = wait ? mms__apply_all(s) : mms__apply_try(s);
    if (r)
        return r;
    uint64_t txn = __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&L->published, __ATOMIC_ACQUIRE) < txn)
        return 0;
    r = mms__region_sync_all(s);
    if (r) {
        /* A sync that failed may succeed when tried again, over pages the
         * kernel dropped (journal.c, mms__jsync): the journal goes into the
         * files again before anything empties it (apply.c, mms__repair). */
        __atomic_fetch_or(&L->recover_needed, 1 | MMS__RECOVER_FULL, __ATOMIC_ACQ_REL);
        return mms__fail(r, "checkpoint cannot sync the region files: %s", mms_strerror(r));
    }
    mms__crashpoint("checkpoint.synced");
    r = mms__journal_reset(s, s->hdr_fixed + offsetof(struct mms__hdr, uuid), txn);
    if (r)
        return r;
    mms__crashpoint("checkpoint.reset");
    __atomic_store_n(&L->apply_off, s->J->end, __ATOMIC_RELEASE);
    __atomic_store_n(&L->apply_crc, s->J->last_crc, __ATOMIC_RELEASE);
    /* No journal record names an old region file any more: delete those
     * the header (as the files have it) does not name. */
    gc_files(s);
    return mms__space_give_back(s); /* what aborted or dead transactions left */
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
    r = mms__writer_enter_timed(s, -1);
    if (r)
        return r;
    r = mms__checkpoint(s, true);
    if (r) {
        s->poisoned = r;
        __atomic_fetch_or(&s->L->recover_needed, 1, __ATOMIC_ACQ_REL);
    }
    mms__writer_unlock(s);
    return r;
}

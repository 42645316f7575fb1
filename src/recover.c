/*
 * recover.c -- bringing the region files to the last valid commit of the
 * journal: at the first open of a store, and after a handle died applying
 * commits (a writer that died elsewhere leaves whole files: apply.c takes
 * its commits over as a backlog, mms__repair).
 *
 * Layer 4: calls hdr.c, journal.c, map.c (region files), lock.c (the writer
 * lock, the gate, publication). It runs before any mapping of the state it
 * repairs exists (first open), or with the writer lock held and the gate
 * closed (after a dead applier), so no reader can see the files half
 * repaired (Invariant 6). It must never run while this thread pins the
 * store: it would wait for itself.
 *
 * Recovery (journal.c NOTES): replay every valid commit group in order
 * (Invariant 4), check that the header then names the journal's last txn,
 * finish with a checkpoint (Invariant 5) and publish that txn.
 *
 * Giving space back. A transaction grows region files past their committed
 * sizes, preallocated (map.c); if it aborts, or its process dies, that
 * space stays in the files. It goes back -- each file cut to its committed
 * size and one growth step (mms__map_keep) -- when no other handle has the
 * store open, because every handle maps a region file as long as it was
 * and a cut under its mapping would make its next touch there a SIGBUS:
 * at the first open (no mapping exists yet), and at a checkpoint of a
 * handle that is alone (it takes byte 0 of the lock file, so no handle can
 * open meanwhile, and cuts its own mappings first). The lock file's
 * space_left says whether any handle grew a file since the space was last
 * given back, so neither pays for looking at the files when none grew: a
 * first open looks at region 0 always (it has its size already), at the
 * tables only then. Cutting only bytes past the committed size, after
 * the journal was replayed, changes nothing a commit or a replay needs.
 */
#include "internal.h"

#include <errno.h>

/* Everything the journal holds is applied: every stage of the pipeline
 * (apply.c NOTES) is at txn, and nothing is in flight. */
static void pipeline_reset(struct mms__lock *L, const struct mms__jstate *J, uint64_t txn)
{
    __atomic_store_n(&L->committed, txn, __ATOMIC_RELEASE);
    __atomic_store_n(&L->durable, txn, __ATOMIC_RELEASE);
    __atomic_store_n(&L->apply_off, J->end, __ATOMIC_RELEASE);
    __atomic_store_n(&L->apply_crc, J->last_crc, __ATOMIC_RELEASE);
    __atomic_store_n(&L->committing, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&L->unsynced_ns, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&L->published, txn, __ATOMIC_RELEASE);
}

/* Recovery, with region 0 open as fd and its header read into b. */
MMS__OPEN_PATH
int mms__recover_at(mms_store *s, int fd, const struct mms__hdrbuf *b, uint64_t *fsizep)
{
    uint64_t fsize = *fsizep;
    const struct mms__hdr *h = &b->h;
    uint64_t replayed, last;
    bool groups;
    int r = mms__journal_load(s, h->uuid, &groups);
    if (!r)
        r = mms__journal_recover(s, groups, h->txn_id, s->jfd_rw, &replayed, &last);
    if (!r && replayed) /* b is a mapping: it shows what the replay wrote */
        r = mms__os_fsize(fd, &fsize);
    if (!r && replayed)
        r = mms__hdr_check_static(h, fsize);
    if (!r)
        r = mms__hdr_check_full(h, b->rt, fsize);
    if (!r && s->J->start_txn != UINT64_MAX && h->txn_id != last)
        r = MMS__CORRUPT("after recovery the header is at txn %llu, the journal at %llu",
                         (unsigned long long)h->txn_id, (unsigned long long)last);
    if (!r && s->jfd_rw && (replayed || s->J->start_txn == UINT64_MAX)) {
        /* Finish with a checkpoint (the replayed files are synced; a
         * foreign journal is replaced by one of this store). A reset writes
         * one slot; the other slot of a foreign journal would still name
         * the other store and win if ours were lost, so it is overwritten
         * too (Invariant 5). */
        bool foreign = s->J->start_txn == UINT64_MAX;
        r = mms__journal_reset(s, h->uuid, h->txn_id);
        if (!r && foreign)
            r = mms__journal_reset(s, h->uuid, h->txn_id);
        /* The recovery ended with a checkpoint: no journal record names an
         * old region file any more. */
        if (!r)
            mms__region_gc(s, b->rt, h->nregions);
    }
    if (!r)
        pipeline_reset(s->L, s->J, h->txn_id);
    *fsizep = fsize;
    return r;
}

static int recover(mms_store *s)
{
    const struct mms__hdrbuf *b = NULL;
    int fd;
    uint64_t fsize;
    int r = mms__region_open_file(s, 0, 0, false, false, &fd);
    if (r == -ENOENT)
        return mms__fail(MMS_ENOTSTORE, "%s holds no store (no region-0-0)", s->path);
    if (r)
        return r;
    r = mms__hdr_map(fd, &b, &fsize);
    if (!r)
        r = mms__recover_at(s, fd, b, &fsize);
    mms__hdr_unmap(b);
    mms__os_close(fd);
    return r;
}

/* Cut the files of regions first.. of rt (n entries) to what is kept; a
 * region this handle maps is measured through its own fd. A missing file
 * is not an error here (mms_verify and the open say what is missing). */
static int trim_regions(mms_store *s, const struct mms__rent *rt, uint32_t n, uint32_t first,
                        uint64_t *cut)
{
    int r = 0;
    for (uint32_t id = first; !r && id < n && id < MMS_MAX_REGIONS; id++) {
        if (rt[id].kind == MMS__RK_NONE)
            continue;
        struct mms__region *g = id < s->nmapped ? &s->reg[id] : NULL;
        bool mine = g && s->view.base[id] && g->gen == rt[id].gen;
        uint64_t fsize = 0;
        if (mine)
            r = mms__os_fsize(g->fd, &fsize);
        if (!r)
            r = mms__map_trim(s, id, rt[id].gen, rt[id].size, mine ? g->fd : -1, fsize, cut);
        if (r == -ENOENT) {
            mms__detail_clear();
            r = 0;
        }
    }
    return r;
}

/* Best effort: a failure (r) leaves a file longer than it needs to be, and
 * consistent (mms__map_trim cuts a mapping before its file); a later
 * checkpoint tries again. Without one, and if gc, the files of tables an
 * aborted or dead transaction created go: nobody else could be creating
 * one now, and the journal names none. */
static void give_back_end(mms_store *s, int r, const struct mms__rent *rt, uint32_t n, bool gc)
{
    if (r) {
        __atomic_store_n(&s->L->space_left, 1, __ATOMIC_RELAXED);
        mms__detail_clear();
    } else if (gc) {
        mms__region_gc(s, rt, n);
    }
}

int mms__space_give_back_at_open(mms_store *s, int fd, const struct mms__hdrbuf *b,
                                 uint64_t *fsize, bool all)
{
    uint64_t cut = 0;
    s->alone = true; /* the first handle: byte 0 is ours (lock.c) */
    int r = mms__map_trim(s, 0, 0, b->rt[0].size, fd, *fsize, &cut);
    if (!r && cut)
        *fsize = mms__map_keep(s, b->rt[0].size);
    if (!r && all)
        r = trim_regions(s, b->rt, b->h.nregions, 1, &cut);
    s->alone = false;
    give_back_end(s, r, b->rt, b->h.nregions, all); /* the journal was replayed */
    return 0;
}

int mms__space_give_back(mms_store *s)
{
    assert(mms__writer_held_by(s));
    if (s->L_private || !__atomic_load_n(&s->L->space_left, __ATOMIC_RELAXED))
        return 0;
    bool was_alone = s->alone;
    if (!mms__lock_alone_try(s))
        return 0; /* others have it open: the last one to checkpoint does it */
    /* The committed sizes as the files have them (the journal is empty:
     * they hold the last commit), not as this handle's view may still
     * show them: another handle may have committed since. */
    const struct mms__hdrbuf *b = NULL;
    uint64_t cut = 0, size0;
    int r = mms__hdr_map(s->reg[0].fd, &b, &size0);
    mms__crashpoint("space.giving");
    if (!r)
        r = trim_regions(s, b->rt, b->h.nregions, 0, &cut);
    give_back_end(s, r, b ? b->rt : NULL, b ? b->h.nregions : 0, s->J->end == MMS__JDATA);
    /* Cleared once the space is back, not before: this handle is alone
     * (nobody else marks meanwhile), and one killed while cutting left
     * the flag clear over space the next first open then did not give
     * back (test_killwin give_back_kill). */
    if (!r)
        __atomic_store_n(&s->L->space_left, 0, __ATOMIC_RELAXED);
    mms__hdr_unmap(b);
    if (!was_alone)
        mms__lock_shared(s);
    return 0;
}

/* Holding the writer lock: the full recovery after a handle died applying
 * or a journal of another store (apply.c, mms__repair, decides). */
int mms__recover_live(mms_store *s)
{
    assert(mms__writer_held_by(s));
    if (mms__pinned_by_me(s))
        return mms__fail(MMS_ETXN, "this thread is inside a read transaction on this store, "
                         "and recovery must wait for it to end");
    /* The gate (taken over from a dead handle if one left it closed over
     * half-applied files) stays closed if recovery fails: the files may be
     * half repaired, and the next handle that can recovers. */
    int r = mms__gate_close(s);
    if (r < 0)
        return r;
    /* Said before the first write, whatever called for this recovery (a
     * dead applier's gate, a foreign journal: recover_needed may be
     * clear). Replaying from the checkpoint over files already ahead of
     * it leaves them a mix of old and new commits until the last group;
     * if this handle dies in between, whoever finds its gate must
     * recover again (mms__pin_stuck), not apply from the published txn:
     * that opened the gate over the mix (a header whose checksum did not
     * match at the next open). */
    __atomic_fetch_or(&s->L->recover_needed, 1, __ATOMIC_ACQ_REL);
    r = recover(s);
    if (r) {
        mms__gate_fail(s);
        return r;
    }
    __atomic_store_n(&s->L->recover_needed, 0, __ATOMIC_RELEASE);
    mms__gate_open(s, s->L->published);
    return 0;
}

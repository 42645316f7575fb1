/*
 * read.c -- read transactions and waiting for commits.
 *
 * Layer 8: calls view.c, apply.c, lock.c, and table.c and catalog.c for the
 * lookups made outside a transaction (below). A read transaction pins the
 * published state (lock.c) and shows it, whole, until it ends (Invariant 6);
 * it never waits for a writer -- at most for an apply in progress, which
 * copies only what one commit changed. Handles that can write the store's
 * files also move the apply pipeline along (apply.c): a reader that begins
 * with nobody inside, or leaves last, applies the commits readers held
 * back. It must never take the writer lock except to recover after a dead
 * writer. A handle whose process may not write the lock file (lock.c,
 * "Readers that cannot write") only reads: it applies and recovers
 * nothing, and it looks again now and then where others sleep until woken.
 *
 * How stale a reader's view may be: it shows the newest commit that was
 * durable at a moment when no reader was inside (and, in MMS_NOSYNC, whose
 * sync was due). While an older read transaction stays inside, new ones
 * see the state it pinned; when it ends, the next apply publishes every
 * commit made meanwhile. mms_read_begin_latest waits for the commits made
 * before the call instead.
 */
#include "internal.h"

#include <errno.h>

static int read_checks(mms_store *s)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state == MMS__ST_READ)
        return mms__fail(MMS_ETXN, "a read transaction is already active on this handle");
    if (s->state == MMS__ST_WRITE)
        return mms__fail(MMS_ETXN, "this handle is inside a write transaction");
    return 0;
}

/* Commits wait to be applied (or, in MMS_NOSYNC, to be synced): try, if
 * this handle can. Best effort: a failure leaves them for another handle
 * (and marks the store for recovery when files were half written). */
MMS__OPEN_PATH
static void apply_if_waiting(mms_store *s)
{
    struct mms__lock *L = s->L;
    if (s->unslotted) /* it may not write the lock file: it only reads */
        return;
    if ((__atomic_load_n(&L->published, __ATOMIC_ACQUIRE) <
             __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE) ||
         mms__sync_due(s)) &&
        mms__apply_try(s) != 0)
        mms__detail_clear();
}

/* For a handle that waits without pinning: a handle died holding the gate
 * in the middle of an apply (the files half written). Finish its work, as
 * a reader that begins does (lock.c NOTES, Dead processes): nobody may be
 * left to publish, and waiters would wait for ever. */
static int rescue_dead_applier(mms_store *s)
{
    if (s->L_private || !mms__gate_left_dead(s))
        return 0;
    if (s->unslotted)
        return mms__fail(MMS_ERECOVER, "a handle died while applying commits; this process "
                         "may not write the lock file: " MMS__NEEDS_WRITER);
    if (mms__pinned_by_me(s))
        return mms__fail(MMS_ETXN, "this thread is inside a read transaction on another "
                         "handle of the store, and a dead handle's apply must be finished");
    return mms__pin_stuck(s, MMS__STUCK_APPLIER);
}

/* For a handle that waits without pinning: a writer died in its commit
 * (its group written, not counted) or left recover_needed. Take its
 * commits over, as a reader that begins does (mms__pin): a new read
 * transaction would show that commit, and nobody else may come to publish
 * it. */
static int rescue_dead_writer(mms_store *s)
{
    if (s->L_private || s->unslotted || !s->jfd_rw || !mms__writer_left_commit(s))
        return 0;
    return mms__pin_stuck(s, MMS__STUCK_WRITER);
}

MMS__OPEN_PATH
static int read_begin(mms_store *s)
{
    if (s->L_private) { /* read-only file system: nothing can change */
        mms__state_to(s, MMS__ST_READ);
        return 0;
    }
    apply_if_waiting(s);
    uint64_t txn;
    int r = mms__pin(s, &txn, mms__pin_stuck, s);
    if (r)
        return r;
    r = mms__view_for_reader(s, txn);
    if (r) {
        mms__unpin(s);
        return r;
    }
    mms__state_to(s, MMS__ST_READ);
    return 0;
}

MMS__OPEN_PATH
int mms_read_begin(mms_store *s)
{
    int r = read_checks(s);
    return r ? r : read_begin(s);
}

/* Why mms_read_begin_latest timed out: readers inside hold the commits
 * back, or nobody is inside and this handle cannot apply them (its process
 * may not write the store's files: they wait for a handle that can). */
static int latest_timeout(mms_store *s, uint64_t target, uint64_t pub)
{
    if (!mms__readers_inside(s) && (!s->jfd_rw || s->cannot_apply))
        return mms__fail(-ETIMEDOUT, "commits up to txn %llu are not applied yet (published: "
                         "txn %llu), and this process cannot write the store's files to apply "
                         "them: a handle that can applies them at its next call (the writer's "
                         "next commit, a read transaction's begin or end, mms_wait)",
                         (unsigned long long)target, (unsigned long long)pub);
    return mms__fail(-ETIMEDOUT, "commits up to txn %llu are not applied yet: readers inside "
                     "hold them back (published: txn %llu)",
                     (unsigned long long)target, (unsigned long long)pub);
}

int mms_read_begin_latest(mms_store *s, int timeout_ms)
{
    int r = read_checks(s);
    if (r || s->L_private)
        return r ? r : read_begin(s);
    struct mms__lock *L = s->L;
    uint64_t target = __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE);
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : mms__os_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uint32_t seq = mms__notify_seq(L);
        uint64_t pub = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
        /* A write handle whose view is the latest commit reads that. */
        bool mine = !(s->flags & MMS_RDONLY) && s->seen >= target &&
                    s->seen == __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE);
        if (pub >= target || mine)
            return read_begin(s);
        r = rescue_dead_applier(s);
        if (r)
            return r;
        if (__atomic_load_n(&L->durable, __ATOMIC_ACQUIRE) < target) {
            r = mms__make_durable(s);
            if (r)
                return r;
        }
        r = mms__apply_try(s);
        if (r)
            return r;
        if (__atomic_load_n(&L->published, __ATOMIC_ACQUIRE) >= target)
            continue;
        uint64_t now = mms__os_mono_ns(), cur;
        if (now >= deadline)
            return latest_timeout(s, target, pub);
        uint64_t left_ms = (deadline - now) / 1000000u;
        mms__wait_change(s, seq, pub, left_ms < 10 ? (int64_t)left_ms + 1 : 10, &cur);
    }
}

static void read_end(mms_store *s, bool apply)
{
    mms__state_to(s, MMS__ST_IDLE);
    if (s->L_private)
        return;
    mms__unpin(s);
    if (apply)
        apply_if_waiting(s); /* the last reader out publishes what it held back */
}

int mms_read_end(mms_store *s)
{
    int r = mms__check_handle(s);
    if (r && r != MMS_EPOISONED)
        return r;
    if (s->state != MMS__ST_READ)
        return mms__fail(MMS_ENOTXN, "no read transaction to end");
    read_end(s, !r);
    return 0;
}

/* ------------------------------------------------------------------------
 * Looking tables up outside a transaction
 * ------------------------------------------------------------------------ */
/* Outside any transaction the files may change under a lookup -- another
 * handle's apply writes a commit's catalog entry before its region sizes
 * (the header page goes last) -- and a table created since this handle
 * last followed the catalog is not mapped yet: both looked like damage
 * ("store is corrupt"). So a lookup made outside a transaction runs in a
 * read transaction of its own, as one the caller began; the table handles
 * it gives stay, as from inside one. A handle that is not sound (poisoned,
 * forked) is left to the lookup, which says so. */
static int lookup_begin(mms_store *s, bool *own)
{
    *own = false;
    if (!s || mms__check_handle(s) != 0) {
        mms__detail_clear();
        return 0;
    }
    if (s->state != MMS__ST_IDLE || s->L_private)
        return 0;
    int r = read_begin(s);
    *own = r == 0;
    return r;
}

/* r: the lookup's; a failed one keeps its detail (an apply that fails on
 * the way out would clear it: the next call applies). */
static int lookup_end(mms_store *s, bool own, int r)
{
    if (own)
        read_end(s, r == 0);
    return r;
}

int mms_table_find(mms_store *s, const char *name, mms_table **t)
{
    bool own;
    int r = lookup_begin(s, &own);
    if (r) {
        if (t)
            *t = NULL; /* as any failure of it */
        return r;
    }
    return lookup_end(s, own, mms__table_find(s, name, t));
}

int mms_table_open(mms_store *s, const char *name, const mms_schema *sc, unsigned flags,
                   mms_table **t)
{
    bool own;
    int r = lookup_begin(s, &own);
    if (r) {
        if (t)
            *t = NULL;
        return r;
    }
    return lookup_end(s, own, mms__table_open(s, name, sc, flags, t));
}

int mms_tables(mms_store *s, mms_table_info *out, size_t cap, size_t *n)
{
    bool own;
    int r = lookup_begin(s, &own);
    return r ? r : lookup_end(s, own, mms__tables_list(s, out, cap, n));
}

int mms_wait(mms_store *s, uint64_t txn, int timeout_ms, uint64_t *now)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state == MMS__ST_READ || mms__pinned_by_me(s))
        return mms__fail(MMS_ETXN, "mms_wait inside a read transaction would wait for ever");
    struct mms__lock *L = s->L;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : mms__os_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    /* Until a commit after txn: also when txn is ahead of what is published
     * (a txn this handle committed and readers still hold back, or one
     * named in advance), not only while txn is the published one. */
    uint64_t cur = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
    while (cur <= txn) {
        uint32_t seq = mms__notify_seq(L); /* before looking: what comes after wakes us */
        if (rescue_dead_applier(s) || rescue_dead_writer(s))
            mms__detail_clear(); /* it cannot: another handle must, wait for it */
        if (!s->L_private)
            apply_if_waiting(s);
        cur = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
        if (cur > txn)
            break;
        uint64_t t = mms__os_mono_ns();
        if (t >= deadline) {
            r = -ETIMEDOUT;
            break;
        }
        /* While commits wait to be applied (or synced), look again now and
         * then: the handle that would apply them may be gone. */
        uint64_t left_ms = deadline == UINT64_MAX ? UINT64_MAX : (deadline - t) / 1000000u + 1;
        bool waiting = __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE) > cur;
        uint64_t slice_ms = waiting ? s->sync_ns / 1000000u + 1 : left_ms;
        int64_t ms = slice_ms < left_ms ? (int64_t)slice_ms
                                        : (left_ms == UINT64_MAX ? -1 : (int64_t)left_ms);
        r = mms__wait_change(s, seq, cur, ms, &cur);
        if (r && r != -ETIMEDOUT)
            break;
        r = 0;
    }
    if (now)
        *now = cur;
    return r;
}

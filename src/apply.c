/*
 * apply.c -- the apply pipeline: making commits durable (MMS_NOSYNC) and
 * applying them to the region files when no reader is inside.
 *
 * Layer 5: calls recover.c, journal.c, lock.c and os.c. Any handle that can
 * write the store's files may apply -- the writer after its commit, a
 * reader leaving its read transaction last, a reader beginning one -- so
 * that commits reach readers without the writer waiting for them (DESIGN
 * §4). It must never apply a commit whose journal group is not durable
 * (Invariant 3), never while a reader is inside (Invariant 6: it holds the
 * gate, lock.c), and never out of order.
 *
 * NOTES ON THE DESIGN
 *
 * Three txn ids in the lock file say where each commit is, always
 * committed >= durable >= published:
 *
 *   committed  its group is written to the journal (by the writer, under
 *              the writer lock);
 *   durable    the journal is fdatasync'ed past it (at once in the default
 *              mode; in MMS_NOSYNC by whichever handle finds the oldest
 *              unsynced commit older than its sync interval);
 *   published  applied to the region files: what a new reader sees.
 *
 * apply_off / apply_crc locate the group after `published` in the journal.
 * Applying replays the groups (published, durable] into the files, exactly
 * as recovery does, then publishes. The gate (lock.c) makes appliers take
 * turns and keeps readers out meanwhile; one that finds a reader inside
 * gives up and leaves the commits for later: the last reader to leave, the
 * next commit, or the next reader to begin will apply them.
 *
 * In MMS_NOSYNC a sync is one fdatasync of the journal: fresh data (grown
 * regions, new files) was synced by its commit, before its group was
 * written (Invariant 1, txn.c), as in the default mode.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

bool mms__sync_due(const mms_store *s)
{
    uint64_t t = __atomic_load_n(&s->L->unsynced_ns, __ATOMIC_ACQUIRE);
    return t && mms__os_mono_ns() - t >= s->sync_ns;
}

/* Take the right to sync: no other handle is syncing, or the one that was
 * died doing it. */
static bool sync_take(mms_store *s)
{
    struct mms__lock *L = s->L;
    uint32_t o = 0, me = mms__owner_id(s);
    if (__atomic_compare_exchange_n(&L->syncing, &o, me, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return true;
    if (o != me && !mms__owner_alive(s, o))
        return __atomic_compare_exchange_n(&L->syncing, &o, me, false, __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE);
    return false;
}

int mms__make_durable(mms_store *s)
{
    struct mms__lock *L = s->L;
    if (s->L_private || __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE) >=
                            __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE))
        return 0;
    if (!sync_take(s))
        return 0; /* another handle is syncing; it counts what it synced */
    uint64_t upto = __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE);
    int r = 0;
    r = mms__os_fdatasync(s->jfd);
    if (!r) {
        uint64_t d = __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE);
        while (d < upto && !__atomic_compare_exchange_n(&L->durable, &d, upto, false,
                                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            ;
        /* Commits after upto are younger than now. */
        __atomic_store_n(&L->unsynced_ns,
                         __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE) > upto
                             ? mms__os_mono_ns() : 0,
                         __ATOMIC_RELEASE);
    }
    __atomic_store_n(&L->syncing, 0, __ATOMIC_RELEASE);
    if (r)
        return mms__fail(r, "cannot sync the journal: %s", mms_strerror(r));
    mms__crashpoint("apply.synced");
    return 0;
}

int mms__apply_locked(mms_store *s, const char *point)
{
    struct mms__lock *L = s->L;
    struct mms__apos pos = {.off = __atomic_load_n(&L->apply_off, __ATOMIC_ACQUIRE),
                            .txn = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE),
                            .crc = __atomic_load_n(&L->apply_crc, __ATOMIC_ACQUIRE)};
    uint64_t upto = __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE);
    if (pos.txn >= upto) {
        mms__gate_reopen(L);
        return 0;
    }
    int r = mms__journal_apply(s, &pos, upto, false, point);
    if (r) {
        /* The files may be half applied: the gate stays closed, marked as
         * held by nobody alive, and the next handle that can recovers. */
        __atomic_store_n(&L->recover_needed, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&L->gate_owner, MMS__GATE_DEAD, __ATOMIC_RELEASE);
        return r;
    }
    mms__crashpoint("apply.applied");
    __atomic_store_n(&L->apply_off, pos.off, __ATOMIC_RELEASE);
    __atomic_store_n(&L->apply_crc, pos.crc, __ATOMIC_RELEASE);
    mms__gate_open(L, pos.txn);
    return 0;
}

int mms__apply_try(mms_store *s)
{
    struct mms__lock *L = s->L;
    if (s->L_private || !s->jfd_rw || s->cannot_apply)
        return 0;
    int r = mms__sync_due(s) ? mms__make_durable(s) : 0;
    if (r)
        return r;
    if (__atomic_load_n(&L->published, __ATOMIC_ACQUIRE) >=
            __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE) ||
        !mms__gate_try(s))
        return 0;
    r = mms__apply_locked(s, "apply.group");
    if (r == -EACCES || r == -EPERM || r == -EROFS)
        s->cannot_apply = true;
    return r;
}

int mms__apply_all(mms_store *s)
{
    if (s->L_private)
        return 0;
    struct mms__lock *L = s->L;
    /* Everything durable: sync, or wait for the handle that syncs. */
    int r = 0;
    while (!r && __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE) <
                     __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE)) {
        r = mms__make_durable(s);
        if (!r && __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE) <
                      __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE))
            mms__os_futex_wait(&L->syncing, __atomic_load_n(&L->syncing, __ATOMIC_ACQUIRE),
                               1000000);
    }
    if (r)
        return r;
    if (__atomic_load_n(&L->published, __ATOMIC_ACQUIRE) >=
        __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE))
        return 0;
    if (!s->jfd_rw)
        return mms__fail(MMS_ERECOVER, "commits wait to be applied, and this process cannot "
                         "write the store's files");
    r = mms__gate_close(s);
    if (!r)
        r = mms__apply_locked(s, "apply.group");
    return r;
}

/* For mms__pin: a reader cannot go on because a writer died in the middle
 * of a commit (why = MMS__STUCK_WRITER: recover the store, holding the
 * writer lock), or because a handle died holding the gate (finish its
 * apply). 0 means try again. */
int mms__pin_stuck(void *ctx, int why)
{
    mms_store *s = ctx;
    if (why == MMS__STUCK_WRITER ||
        __atomic_load_n(&s->L->recover_needed, __ATOMIC_ACQUIRE)) {
        if (mms__writer_held_by(s))
            return mms__recover_live(s);
        int r = mms__writer_lock(s, false);
        if (r == MMS_EBUSY) {
            /* Another handle holds it: it recovers when it takes it (or has
             * done so). Give it a moment. */
            mms__os_futex_wait(&s->L->gate, UINT32_MAX, 1000000);
            return 0;
        }
        if (r)
            return r;
        r = mms__recover_live(s);
        mms__writer_unlock(s);
        return r;
    }
    if (!s->jfd_rw)
        return mms__fail(MMS_ERECOVER, "a handle died while applying commits; finishing its "
                         "work needs write access to the store's files");
    int r = mms__gate_close(s); /* takes the dead handle's gate over */
    if (r)
        return r;
    mms__crashpoint("recover.takeover");
    return mms__apply_locked(s, "apply.group");
}

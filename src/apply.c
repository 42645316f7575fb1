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
 *
 * THE BACKGROUND SYNCER (MMS_NOSYNC). A handle's calls sync when they find
 * the oldest unsynced commit (L->unsynced_ns) sync_ms old; a writer that
 * commits and then makes no call would leave its last commits exposed to
 * a power cut for as long as it stays idle. So each write handle that
 * commits in MMS_NOSYNC has a thread that sleeps until unsynced_ns +
 * 1.25 x sync_ms (S6) and syncs (journal_sync, the same step as a call's,
 * under the same `syncing` word: the handles and processes of a store
 * take turns).
 * A thread per handle, not per process or store: it needs the handle's
 * journal descriptor and reader slot (its owner id for `syncing`), and the
 * handle's close can stop it before closing them. The rules:
 *
 *   S1. unsynced_ns is 0 only if every commit counted (L->committed) is
 *       durable, or the commit that counted itself last is about to set
 *       it: a commit stores committed, then reads unsynced_ns and sets it
 *       if 0 (mms__syncer_count); a sync that clears it reads committed
 *       again after the clear, and sets it back if a commit came
 *       (unsynced_settle). Sequentially consistent, so one of the two sees
 *       the other; before, a sync that read committed just before a
 *       commit stored it, then cleared unsynced_ns, left that commit with
 *       no handle to find it due.
 *   S2. No periodic wakeups: with nothing unsynced the thread sets IDLE in
 *       its futex word, looks at unsynced_ns once more, and sleeps without
 *       a timeout; a commit of its handle wakes it if IDLE is set -- at
 *       most one futex wake per sync interval, none on the other commits
 *       (they find IDLE clear). Not only the commit that sets unsynced_ns
 *       from 0: it may be set already with this commit not covered (a
 *       sync that settled it for commits it did not cover, S1, by a
 *       handle with no syncer awake, a reader's), and this syncer, asleep,
 *       was the one to sync it.
 *   S3. It touches no mapped store data (only the lock file, the journal's
 *       descriptor and its handle's constant fields), blocks every signal
 *       and has no protection-key rights (os.c); it applies nothing
 *       itself: a sync that leaves commits unpublished wakes the pin
 *       watcher (P6), which applies them through a handle of its own.
 *   S4. A failed sync is not lost: the thread keeps the first error in
 *       syncer_err and makes the handle's next sync due (mms__sync_due);
 *       the next call that syncs (a commit, mms_checkpoint, mms_close, a
 *       write transaction following another writer,
 *       mms_read_begin_latest) reports it as its own failed sync
 *       (mms__make_durable) -- a commit (an empty one too) or a begin is
 *       then poisoned, as after a failed foreground sync (txn.c). The
 *       sync is not retried to any effect: a failed journal sync is final
 *       for the store (journal.c, mms__jsync: a retry on Linux can report
 *       lost pages as synced), so every later sync fails until the store
 *       is opened anew; the thread still waits sync_ms between tries
 *       (after a failure, or while another handle syncs), never spins.
 *   S5. Lifetime: started before the handle's first NOSYNC commit point
 *       (a failure to start fails that commit, nothing written);
 *       stopped and joined by mms_close before the journal descriptor is
 *       closed (nothing else closes or replaces s->jfd while the handle
 *       lives). A forked child has no thread: its handle is dead
 *       (MMS_EFORK) and its close frees memory only, joins nothing.
 *   S6. It leaves a busy writer's syncs to the writer: it syncs when the
 *       oldest unsynced commit is 1.25 x sync_ms old, a commit of a writer
 *       that commits at least every sync_ms / 4 finds the sync due first
 *       and syncs and applies everything, itself included, as it did
 *       before there was a syncer. When the syncer took those syncs (at
 *       1 x sync_ms), the commit after a sync could apply only the commits
 *       before it (txn.c commit_apply) and bench_mmstore's NOSYNC commit
 *       loop cost more: task-clock median 658 ms against 583 ms, ~10% more
 *       page faults (6 runs each, bench/results/index.md "bgsync"); with
 *       the quarter interval of grace both are as before. An idle
 *       writer's commits are durable within 1.25 x sync_ms.
 *   S7. Waiters are told (mms__notify, lock.c): a commit that leaves the
 *       journal unsynced from synced (mms__syncer_count), so that those
 *       asleep in mms_wait look every sync_ms from then on (as they do for
 *       the first commit the writer leaves to readers, mms__gate_try), and
 *       every sync that advances durable, so that they apply at once what
 *       it made applicable -- the syncer applies nothing itself (S3); an idle
 *       writer's commits are published about 1.25 x sync_ms after them by
 *       a waiter that can apply, or by the pin watcher the sync wakes (P6)
 *       -- before P6, never, while only readers that cannot apply waited. Before, a waiter asleep when such a
 *       commit came slept until its timeout (for ever without one): it was
 *       woken by publications only, and nobody published.
 *
 * THE PIN WATCHER. A reader that may not write the lock file (unslotted,
 * lock.c "Readers that cannot write") holds commits back as any reader
 * does, but cannot apply them when it leaves, as a slotted reader does: a
 * writer that committed while it was inside and then made no call left
 * its commits unpublished -- every reader saw the state before -- until
 * its next call, for as long as it stayed idle. So a handle whose apply
 * finds the gate shut with unslotted readers inside (mms__gate_try sets
 * gate_unslotted; slotted readers may be inside too: they apply when they
 * leave, but may leave first, and the handle whose end then found the
 * unslotted ones may close, stopping its watcher) wakes a thread of its
 * own that waits for them to leave and applies:
 *
 *   P1. It looks at the readers' byte (PIN_BYTE, one F_OFD_GETLK on the
 *       handle's lock descriptor) every 100 us at first, every 2 ms at
 *       most -- as often as an unslotted reader's own mms_wait looks --
 *       while commits wait (published < committed) and the byte is held;
 *       otherwise it sleeps on its futex word without a timeout until a
 *       handle's apply kicks it again (MMS__PINWATCH_KICK: set, and a
 *       wake only when it was clear). The word's KICK bit is cleared at
 *       the start of each look, so a kick that comes after it changes the
 *       word the thread then sleeps on and wakes it at once.
 *   P2. It applies through a handle of its own (MMS_RDONLY, opened when
 *       the byte is free and closed after the apply): applying uses the
 *       journal's position, the region files' descriptors and mappings,
 *       which the handle's own calls change meanwhile (a commit grows
 *       regions, maps files anew). That handle takes a reader slot for
 *       the moment (mms_readers lists it, the same pid) and never kicks a
 *       watcher of its own. Opening and closing handles is store.c's,
 *       above this file: the handle carries store.c's function for it
 *       (pinwatch_apply).
 *   P3. After the apply it sleeps again unless the gate was shut with
 *       a new unslotted reader inside (then it goes on looking): slotted
 *       readers alone apply when they leave; commits not yet durable
 *       (MMS_NOSYNC) wait for the sync that makes them so (P6).
 *   P4. Errors are dropped, as a reader's apply drops them: the next
 *       call that applies meets and reports them.
 *   P5. Lifetime as the syncer's (S5): started by the first kick (a
 *       failure to start leaves the commits to the next call, as before
 *       there was a watcher), stopped and joined by mms_close after its
 *       last apply; a forked child has none. Every signal blocked, no
 *       protection-key rights (os.c); it touches no mapped data of the
 *       handle it serves.
 *   P6. MMS_NOSYNC: the background syncer, after a sync that leaves
 *       durable commits unpublished (an idle writer's: its own commits
 *       apply what a sync made durable when one is due, S6), wakes the
 *       watcher too. A reader that cannot apply waited for them until the
 *       writer's next call -- for ever from an idle writer, with nobody
 *       inside -- while its mms_wait said "looks every sync_ms". The
 *       calls and the syncer may both start it: pinwatch_on is claimed
 *       with a compare-and-swap.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* The oldest unsynced commit is sync_ms old. */
static bool sync_old(const mms_store *s)
{
    uint64_t t = __atomic_load_n(&s->L->unsynced_ns, __ATOMIC_ACQUIRE);
    return t && mms__os_mono_ns() - t >= s->sync_ns;
}

MMS__OPEN_PATH
bool mms__sync_due(const mms_store *s)
{
    /* S4: a failure of the background syncer waits to be reported. */
    return __atomic_load_n(&s->syncer_err, __ATOMIC_RELAXED) || sync_old(s);
}

/* S1, the sync's side: every commit up to upto is durable. */
static void unsynced_settle(struct mms__lock *L, uint64_t upto)
{
    if (__atomic_load_n(&L->committed, __ATOMIC_SEQ_CST) <= upto) {
        __atomic_store_n(&L->unsynced_ns, 0, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&L->committed, __ATOMIC_SEQ_CST) <= upto)
            return;
    }
    /* Commits after upto are younger than now. */
    __atomic_store_n(&L->unsynced_ns, mms__os_mono_ns(), __ATOMIC_SEQ_CST);
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

/* Sync the journal past every commit counted so far: 0 when they are
 * durable, or when another handle is syncing (*busy: it counts what it
 * synced), or -errno. */
static int journal_sync(mms_store *s, bool *busy)
{
    struct mms__lock *L = s->L;
    *busy = false;
    uint64_t d = __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE);
    if (s->L_private || s->unslotted) /* nothing to sync, or no right to */
        return 0;
    if (d >= __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE)) {
        /* S1: a commit may have set unsynced_ns just after the sync that
         * covered it cleared it; left so, the syncer would wake for it. */
        if (__atomic_load_n(&L->unsynced_ns, __ATOMIC_ACQUIRE))
            unsynced_settle(L, d);
        return 0;
    }
    if (!sync_take(s)) {
        *busy = true;
        return 0;
    }
    uint64_t upto = __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE);
    int r = mms__jsync(s); /* a failure is final: no later sync counts */
    if (!r) {
        d = __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE);
        while (d < upto && !__atomic_compare_exchange_n(&L->durable, &d, upto, false,
                                                        __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE))
            ;
        unsynced_settle(L, upto);
    }
    __atomic_store_n(&L->syncing, 0, __ATOMIC_RELEASE);
    if (!r)
        mms__notify(L); /* S7: waiters may apply what is durable now */
    if (r)
        return r; /* mms__jsync said why */
    mms__crashpoint("apply.synced");
    return 0;
}

int mms__make_durable(mms_store *s)
{
    /* S4: the first call that syncs reports the syncer's failure. */
    int e = __atomic_load_n(&s->syncer_err, __ATOMIC_RELAXED)
                ? __atomic_exchange_n(&s->syncer_err, 0, __ATOMIC_ACQ_REL) : 0;
    if (e)
        return mms__fail(e, "cannot sync the journal (in the background, %u ms after a "
                         "commit): %s", (unsigned)(s->sync_ns / 1000000u), mms_strerror(e));
    bool busy;
    return journal_sync(s, &busy);
}

/* ------------------------------------------------------------------------
 * The background syncer (NOTES: S1-S7)
 * ------------------------------------------------------------------------ */
static void pinwatch_wake(mms_store *s);

static void syncer_main(void *arg)
{
    mms_store *s = arg;
    struct mms__lock *L = s->L;
    uint64_t not_before = 0; /* S4: after a failure, or another handle's sync */
    for (;;) {
        uint32_t w = __atomic_load_n(&s->syncer_word, __ATOMIC_SEQ_CST);
        if (w & MMS__SYNCER_STOP)
            return;
        uint64_t t = __atomic_load_n(&L->unsynced_ns, __ATOMIC_SEQ_CST);
        if (!t) { /* S2 */
            w = __atomic_or_fetch(&s->syncer_word, MMS__SYNCER_IDLE, __ATOMIC_SEQ_CST);
            if (!(w & MMS__SYNCER_STOP) && !__atomic_load_n(&L->unsynced_ns, __ATOMIC_SEQ_CST))
                mms__os_futex_wait(&s->syncer_word, w, -1);
            __atomic_and_fetch(&s->syncer_word, ~MMS__SYNCER_IDLE, __ATOMIC_SEQ_CST);
            continue;
        }
        uint64_t due = t + s->sync_ns + s->sync_ns / 4, now = mms__os_mono_ns(); /* S6 */
        if (due < not_before)
            due = not_before;
        if (now < due) {
            mms__os_futex_wait(&s->syncer_word, w, (int64_t)(due - now));
            continue;
        }
        bool busy;
        int r = journal_sync(s, &busy);
        if (!r && !busy && __atomic_load_n(&L->published, __ATOMIC_ACQUIRE) <
                               __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE))
            pinwatch_wake(s); /* P6 */
        if (r) {
            int none = 0;
            __atomic_compare_exchange_n(&s->syncer_err, &none, r, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED);
            mms__detail_clear(); /* this thread's; the report makes its own */
        }
        if (r || busy)
            not_before = mms__os_mono_ns() + s->sync_ns;
    }
}

int mms__syncer_start(mms_store *s)
{
    if (s->syncer_on)
        return 0;
    s->syncer.fn = syncer_main;
    s->syncer.arg = s;
    __atomic_store_n(&s->syncer_word, 0, __ATOMIC_RELAXED);
    int r = mms__os_thread_start(&s->syncer);
    if (r)
        return mms__fail(r, "cannot start the thread that syncs MMS_NOSYNC commits in the "
                         "background: %s", mms_strerror(r));
    s->syncer_on = true;
    return 0;
}

void mms__syncer_count(mms_store *s)
{
    /* S1, the commit's side (it stored L->committed, sequentially
     * consistent), and S2. */
    struct mms__lock *L = s->L;
    uint64_t t = 0;
    bool first = __atomic_compare_exchange_n(&L->unsynced_ns, &t, mms__os_mono_ns(), false,
                                             __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    /* Also when unsynced_ns was set already: the sync that set or left it
     * may cover nothing of this commit, and no other syncer may be awake. */
    if (__atomic_load_n(&s->syncer_word, __ATOMIC_SEQ_CST) & MMS__SYNCER_IDLE) {
        __atomic_and_fetch(&s->syncer_word, ~MMS__SYNCER_IDLE, __ATOMIC_SEQ_CST);
        mms__os_futex_wake(&s->syncer_word);
    }
    if (first)
        mms__notify(L); /* S7: waiters look every sync_ms from now */
}

void mms__syncer_stop(mms_store *s)
{
    /* S5: called in the process that started it (close checks fork). */
    if (!s->syncer_on)
        return;
    __atomic_or_fetch(&s->syncer_word, MMS__SYNCER_STOP, __ATOMIC_SEQ_CST);
    mms__os_futex_wake(&s->syncer_word);
    mms__os_thread_join(&s->syncer);
    s->syncer_on = false;
}

/* ------------------------------------------------------------------------
 * The pin watcher (NOTES: P1-P6)
 * ------------------------------------------------------------------------ */
#define PINWATCH_NAP_MIN_NS 100000
#define PINWATCH_NAP_MAX_NS 2000000

static __thread bool in_pinwatch; /* P2: this thread is a watcher */

/* Commits wait to be published. */
static bool commits_wait(const struct mms__lock *L)
{
    return __atomic_load_n(&L->published, __ATOMIC_ACQUIRE) <
           __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE);
}

static void pinwatch_main(void *arg)
{
    mms_store *s = arg;
    struct mms__lock *L = s->L;
    in_pinwatch = true;
    int64_t nap = PINWATCH_NAP_MIN_NS;
    for (;;) {
        uint32_t w = __atomic_and_fetch(&s->pinwatch_word, ~MMS__PINWATCH_KICK,
                                        __ATOMIC_SEQ_CST); /* P1 */
        if (w & MMS__PINWATCH_STOP)
            return;
        bool look = commits_wait(L) && (mms__unslotted_inside(s) || s->pinwatch_apply(s));
        if (look) {
            mms__os_futex_wait(&s->pinwatch_word, w, nap);
            nap = nap * 2 < PINWATCH_NAP_MAX_NS ? nap * 2 : PINWATCH_NAP_MAX_NS;
        } else {
            nap = PINWATCH_NAP_MIN_NS;
            mms__os_futex_wait(&s->pinwatch_word, w, -1);
        }
    }
}

/* Start the watcher, or wake it (P1). The handle's calls and its syncer
 * (P6) may both: the first to claim pinwatch_on starts it. */
static void pinwatch_wake(mms_store *s)
{
    if (in_pinwatch)
        return;
    uint32_t off = 0;
    if (__atomic_compare_exchange_n(&s->pinwatch_on, &off, 1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) { /* P5 */
        s->pinwatch.fn = pinwatch_main;
        s->pinwatch.arg = s;
        s->pinwatch.stack = (size_t)1 << 20; /* an open and an apply */
        if (mms__os_thread_start(&s->pinwatch) != 0)
            __atomic_store_n(&s->pinwatch_on, 0, __ATOMIC_RELEASE);
        return;
    }
    if (!(__atomic_fetch_or(&s->pinwatch_word, MMS__PINWATCH_KICK, __ATOMIC_SEQ_CST) &
          MMS__PINWATCH_KICK))
        mms__os_futex_wake(&s->pinwatch_word);
}

bool mms__apply_gate(mms_store *s)
{
    if (mms__gate_try(s))
        return true;
    if (s->gate_unslotted)
        pinwatch_wake(s);
    return false;
}

void mms__pinwatch_stop(mms_store *s)
{
    if (!__atomic_load_n(&s->pinwatch_on, __ATOMIC_ACQUIRE))
        return;
    __atomic_or_fetch(&s->pinwatch_word, MMS__PINWATCH_STOP, __ATOMIC_SEQ_CST);
    mms__os_futex_wake(&s->pinwatch_word);
    mms__os_thread_join(&s->pinwatch);
    __atomic_store_n(&s->pinwatch_on, 0, __ATOMIC_RELEASE);
}

/* Where the group after txn pos->txn starts, found by walking the groups
 * from the start of the journal's epoch: for a handle that took the gate
 * over from one that died applying. The lock file says it in three words
 * (apply_off, apply_crc, published) that an apply stores one after the
 * other, under the gate, as it ends: a death between them left a position
 * that was not the published txn's, and the handle that finished the work
 * applied from it, found no group there and failed with MMS_ECORRUPT
 * over a whole store (test_backlog apply_position_kill). Nothing moves the
 * epoch's start meanwhile: a checkpoint resets the journal, without the
 * gate, only once every commit is published (a holder that died opening
 * the gate left that too), and then the new epoch's first durable commit,
 * loaded before this walk (apply_held), says the reset is done; it cannot
 * reset again while that commit waits for this gate. */
static int apply_pos_walk(mms_store *s, struct mms__apos *pos)
{
    const struct mms__jstate *J = s->J;
    if (J->start_txn == UINT64_MAX || J->start_txn > pos->txn)
        return 0; /* another store's journal (recovery's), or a position of this epoch */
    uint64_t upto = pos->txn;
    *pos = (struct mms__apos){.off = MMS__JDATA, .txn = J->start_txn, .crc = J->salt};
    return mms__journal_each(s, pos, upto, NULL, NULL, NULL);
}

/* Apply what is durable, holding the gate (adopted: taken over from a
 * handle that died applying), and open it. */
static int apply_held(mms_store *s, const char *point, bool adopted)
{
    struct mms__lock *L = s->L;
    /* durable first: the position is then of the journal that holds the
     * commits up to it. A checkpoint resets the journal, without the
     * gate, once every commit is published -- as they may all be by the
     * time a handle that saw some unpublished takes the gate -- and then
     * stores the new position; the next commit's sync stores durable
     * after that. Loaded before durable, the position could be the old
     * journal's and durable a commit of the new: the apply found no group
     * there and failed with MMS_ECORRUPT (test_killwin reset_race). */
    uint64_t upto = __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE);
    mms__crashpoint("apply.position");
    struct mms__apos pos = {.off = __atomic_load_n(&L->apply_off, __ATOMIC_ACQUIRE),
                            .txn = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE),
                            .crc = __atomic_load_n(&L->apply_crc, __ATOMIC_ACQUIRE)};
    if (pos.txn >= upto) {
        mms__gate_reopen(s);
        return 0;
    }
    int r = adopted ? apply_pos_walk(s, &pos) : 0;
    if (!r)
        r = mms__journal_apply(s, &pos, upto, false, point);
    if (r) {
        /* The files may be half applied: the gate stays closed, marked as
         * held by nobody alive, and the next handle that can recovers. */
        __atomic_fetch_or(&L->recover_needed, 1, __ATOMIC_ACQ_REL);
        mms__crashpoint("apply.failed");
        mms__gate_fail(s);
        return r;
    }
    mms__crashpoint("apply.applied");
    __atomic_store_n(&L->apply_off, pos.off, __ATOMIC_RELEASE);
    __atomic_store_n(&L->apply_crc, pos.crc, __ATOMIC_RELEASE);
    mms__gate_open(s, pos.txn);
    return 0;
}

int mms__apply_locked(mms_store *s, const char *point)
{
    return apply_held(s, point, false);
}

int mms__apply_try(mms_store *s)
{
    struct mms__lock *L = s->L;
    if (s->L_private || s->unslotted || !s->jfd_rw || s->cannot_apply)
        return 0;
    /* Not mms__make_durable: the readers' calls that come here drop
     * errors, and a background sync's failure waits for a call that
     * reports it (S4). */
    bool busy;
    int r = sync_old(s) ? journal_sync(s, &busy) : 0;
    if (r)
        return r;
    /* Again after each apply: a commit that found the gate shut by it
     * left its own apply to it (txn.c commit_apply; its durable is stored
     * before it tries the gate, and the gate opened before durable is
     * read again here, both sequentially consistent: one of the two sees
     * the other). Else that commit waited for the next call of a handle
     * that can apply -- for as long as its writer stayed idle, when this
     * is the pin watcher (P3). */
    uint64_t pub;
    while ((pub = __atomic_load_n(&L->published, __ATOMIC_SEQ_CST)) <
           __atomic_load_n(&L->durable, __ATOMIC_SEQ_CST)) {
        mms__crashpoint("apply.trying"); /* another handle may apply them first */
        if (!mms__apply_gate(s))
            return 0;
        r = mms__apply_locked(s, "apply.group");
        if (r == -EACCES || r == -EPERM || r == -EROFS)
            s->cannot_apply = true;
        if (r || __atomic_load_n(&L->published, __ATOMIC_ACQUIRE) <= pub)
            return r; /* no progress: another call tries again */
    }
    return 0;
}

/* Everything counted durable: sync, or wait for the handle that syncs (a
 * sync, not a reader). */
static int durable_all(mms_store *s)
{
    struct mms__lock *L = s->L;
    int r = 0;
    while (!r && __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE) <
                     __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE)) {
        r = mms__make_durable(s);
        if (!r && __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE) <
                      __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE))
            mms__os_futex_wait(&L->syncing, __atomic_load_n(&L->syncing, __ATOMIC_ACQUIRE),
                               1000000);
    }
    return r;
}

int mms__apply_all(mms_store *s)
{
    if (s->L_private)
        return 0;
    if (s->unslotted)
        return mms__fail(MMS_ERDONLY, "this process may not write the store's lock file, "
                         "and so cannot apply commits");
    struct mms__lock *L = s->L;
    int r = durable_all(s);
    if (r)
        return r;
    if (__atomic_load_n(&L->published, __ATOMIC_ACQUIRE) >=
        __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE))
        return 0;
    if (!s->jfd_rw)
        return mms__fail(MMS_ERECOVER, "commits wait to be applied, and this process cannot "
                         "write the store's files");
    r = mms__gate_close(s);
    if (r >= 0)
        r = apply_held(s, "apply.group", r == MMS__GATE_ADOPTED);
    return r;
}

/* A writer died (or a checkpoint failed) while the gate was open, or
 * closed untouched: the region files are whole, at the published state --
 * only a gate holder that touched it writes them. Nothing there needs
 * repair, and the journal's commits after published are a backlog like any
 * other: count them all (the dead writer's last group may be written and
 * not counted; recovery would replay it), make them durable, and leave
 * them to this pipeline. The next writer replays them into its own pages
 * while readers hold them back (view.c), as after a live writer's commits,
 * so no reader delays it (DESIGN §4); a full recovery closed the gate and
 * waited for every reader inside -- for ever, for one that waited inside
 * for commits. 1: a full recovery it is, the journal says something only
 * it judges (damage, files outside the journal's range, another store's
 * journal). */
static int adopt(mms_store *s)
{
    struct mms__lock *L = s->L;
    struct mms__jstate J;
    uint64_t last;
    /* The lock file's uuid: it is the store's (mms__lock_valid), and this
     * may run inside an open, before the handle read the header. */
    int r = mms__journal_count(s, L->uuid, &J, &last);
    if (r)
        return r;
    uint64_t published = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
    if (last < __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE) || J.start_txn > published ||
        published > last)
        return 1;
    *s->J = J;
    /* S1: counted, then unsynced_ns (as a commit does, mms__syncer_count). */
    __atomic_store_n(&L->committed, last, __ATOMIC_SEQ_CST);
    __atomic_store_n(&L->committing, 0, __ATOMIC_RELEASE);
    /* A death from here on leaves recover_needed set: the next handle
     * counts the same groups again. */
    mms__crashpoint("adopt.counted");
    if (published == last) {
        /* Nothing to apply, so no applier moves the position: the end of
         * the journal (a checkpoint that died before storing it left the
         * old epoch's). */
        __atomic_store_n(&L->apply_off, J.end, __ATOMIC_RELEASE);
        __atomic_store_n(&L->apply_crc, J.last_crc, __ATOMIC_RELEASE);
    }
    if (__atomic_load_n(&L->durable, __ATOMIC_ACQUIRE) < last) {
        mms__syncer_count(s);
        /* Invariant 3, as recovery (a failed sync is final); waiting for
         * a handle that syncs already, so that a reader taking over
         * applies them at once. */
        r = durable_all(s);
        if (r)
            return r;
    }
    __atomic_store_n(&L->recover_needed, 0, __ATOMIC_RELEASE);
    mms__notify(L); /* readers waiting for the dead writer's commit go on */
    return 0;
}

int mms__repair(mms_store *s)
{
    assert(mms__writer_held_by(s));
    /* recover_needed: a writer that died (mms__writer_lock_timed sets it
     * when it finds the last one left writer_active), a failed apply or
     * checkpoint. A gate left closed by a handle that died after it may
     * have written (one that had not is opened here): the files may be
     * half applied, and no reader is inside. */
    bool dead_applier = mms__gate_left_dead(s);
    bool foreign = s->J->start_txn == UINT64_MAX;
    /* MMS__RECOVER_FULL: a checkpoint could not sync the files; adopting
     * would let the next checkpoint empty the journal over them. */
    uint32_t rn = __atomic_load_n(&s->L->recover_needed, __ATOMIC_ACQUIRE);
    if (!rn && !dead_applier && !foreign)
        return 0;
    if (!s->jfd_rw)
        return mms__fail(MMS_ERECOVER, "a writer died; recovering needs write access to the "
                         "store's files, which this process lacks");
    if (!dead_applier && !foreign && !(rn & MMS__RECOVER_FULL)) {
        int r = adopt(s);
        if (r <= 0)
            return r;
    }
    return mms__recover_live(s);
}

/* For mms__pin: a reader cannot go on because a writer died in the middle
 * of a commit (why = MMS__STUCK_WRITER: take over what it left, holding the
 * writer lock, then apply it if no reader is inside, as a reader that
 * begins does: it must not be shown the state without the dead writer's
 * commit while nobody holds that back), or because a handle died holding
 * the gate (finish its apply). 0 means try again. */
int mms__pin_stuck(void *ctx, int why)
{
    mms_store *s = ctx;
    if (why == MMS__STUCK_WRITER ||
        __atomic_load_n(&s->L->recover_needed, __ATOMIC_ACQUIRE)) {
        if (mms__writer_held_by(s))
            return mms__repair(s);
        int r = mms__writer_lock_timed(s, 0);
        if (r == MMS_EBUSY) {
            /* Another handle holds it: it recovers when it takes it (or has
             * done so). Give it a moment: until the next publication, 1 ms
             * at most. (A wait on the gate for a value it does not have,
             * as before, returned at once: the reader spun at full CPU for
             * as long as the writer kept its lock.) */
            uint32_t n = mms__notify_seq(s->L);
            mms__os_futex_wait(&s->L->notify, n, 1000000);
            return 0;
        }
        if (r)
            return r;
        r = mms__repair(s);
        mms__writer_unlock(s);
        if (!r && mms__apply_try(s) != 0)
            mms__detail_clear(); /* as every reader's apply: the next call tries again */
        return r;
    }
    if (!s->jfd_rw)
        return mms__fail(MMS_ERECOVER, "a handle died while applying commits; finishing its "
                         "work needs write access to the store's files");
    int r = mms__gate_close(s); /* takes the dead handle's gate over */
    if (r < 0)
        return r;
    mms__crashpoint("recover.takeover");
    return apply_held(s, "apply.group", r == MMS__GATE_ADOPTED);
}

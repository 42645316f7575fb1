/*
 * lock.c -- the lock file: writer lock, reader slots, publication.
 *
 * The file `lock` in the store directory is mapped shared by every handle
 * of every process. It holds no data: it is rebuilt from the store whenever
 * no handle has it open. It must never be trusted across that boundary, and
 * nothing in it is durable.
 *
 * NOTES ON THE DESIGN
 *
 * Life of the file. Every handle holds a shared OFD lock on byte 0 for as
 * long as it is open. An opener first tries an exclusive lock on byte 0: if
 * it gets it, no handle is open anywhere, so it (re)initialises the file and
 * runs recovery, then downgrades to shared (fcntl converts atomically). If
 * it does not, it waits for a shared lock, which also waits out an opener
 * that is initialising.
 *
 * Writer lock. A robust, process-shared mutex. A writer that dies holding
 * it, even inside a commit, is seen by the next locker (EOWNERDEAD), which
 * recovers the store from the journal before going on (recover_needed
 * stays set until a recovery succeeds, so a failed one is retried).
 *
 * Readers (Invariant 6: readers never observe a partially applied commit).
 * A read transaction pins the published state with a store into its slot;
 * applying a commit needs every pinned slot to be empty:
 *
 *     reader begin                         writer publish
 *     g = gate; if odd: wait, retry        gate = odd          (close)
 *     slot.active = 1                      -- full fence --
 *     -- full fence --                     wait: every slot.active == 0
 *     if gate != g: active = 0, retry      apply, published = txn
 *                                          gate = even, wake   (open)
 *
 * The fences make the two checks a Dekker pair: either the reader sees the
 * closed gate and backs off, or the writer sees the reader's slot and waits
 * for it. No system call on the reader's fast path; a reader ending while a
 * writer waits (writer_waiting) wakes it with a futex.
 *
 * A long read transaction therefore holds back publication: a commit is
 * durable when its journal group is synced, but it becomes visible (and
 * mms_txn_commit returns) only when the readers that were inside when it
 * wanted to apply have left.
 *
 * Dead processes. Slots hold the owner's pid and start time, so a pid that
 * has been reused is not mistaken for the owner. A writer waiting for a
 * slot, an opener looking for a free slot and `mms readers --clear-stale`
 * reclaim the slots of dead processes. A reader waiting at a closed gate
 * checks that the writer is alive; if not, it takes the writer lock itself
 * and recovers (when it can write the files) so that nobody waits forever.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_SLICE_NS 10000000 /* 10 ms between liveness checks */

static uint32_t my_tid(void)
{
    static __thread uint32_t tid, tid_pid;
    uint32_t pid = mms__os_pid();
    if (tid_pid != pid) { /* first call on this thread, or a forked child */
        tid = mms__os_tid();
        tid_pid = pid;
    }
    return tid;
}

static uint64_t my_start(void)
{
    static uint64_t start;
    static uint32_t pid;
    uint32_t p = mms__os_pid();
    if (pid != p) { /* first call, or a forked child */
        start = mms__os_proc_start(p);
        pid = p;
    }
    return start;
}

/* Is the process (pid, start) still alive? */
static bool alive(uint32_t pid, uint64_t start)
{
    if (pid == 0)
        return false;
    uint64_t now = mms__os_proc_start(pid);
    return now != 0 && now == start;
}

bool mms__lock_valid(const struct mms__lock *L, const uint8_t uuid[16])
{
    return L->magic == MMS__LMAGIC && L->version == MMS__LVERSION &&
           L->size == sizeof *L && L->nslots == MMS__NSLOTS &&
           memcmp(L->uuid, uuid, 16) == 0 && L->init_done == 1;
}

int mms__lock_init(struct mms__lock *L, const uint8_t uuid[16])
{
    memset(L, 0, sizeof *L);
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (!r)
        r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!r)
        r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!r)
        r = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    if (!r)
        r = pthread_mutex_init(&L->writer, &a);
    pthread_mutexattr_destroy(&a);
    if (r)
        return mms__fail(-r, "cannot set up the writer lock: %s", strerror(r));
    L->magic = MMS__LMAGIC;
    L->version = MMS__LVERSION;
    L->size = sizeof *L;
    L->nslots = MMS__NSLOTS;
    memcpy(L->uuid, uuid, 16);
    return 0;
}

/* ------------------------------------------------------------------------
 * Reader slots
 * ------------------------------------------------------------------------ */
int mms__slot_claim(struct mms__lock *L, uint32_t *idx)
{
    uint32_t pid = mms__os_pid();
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < MMS__NSLOTS; i++) {
            struct mms__rslot *sl = &L->slot[i];
            uint32_t zero = 0;
            if (__atomic_load_n(&sl->pid, __ATOMIC_RELAXED) == 0 &&
                __atomic_compare_exchange_n(&sl->pid, &zero, pid, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
                sl->proc_start = my_start();
                sl->txn = 0;
                sl->since_ns = 0;
                __atomic_store_n(&sl->active, 0, __ATOMIC_RELEASE);
                *idx = i;
                return 0;
            }
        }
        if (pass == 0)
            mms__slots_reclaim(L, NULL);
    }
    return mms__fail(MMS_EBUSY, "all %u reader slots are in use", MMS__NSLOTS);
}

void mms__slot_release(struct mms__lock *L, uint32_t idx)
{
    struct mms__rslot *sl = &L->slot[idx];
    __atomic_store_n(&sl->active, 0, __ATOMIC_RELEASE);
    if (__atomic_load_n(&L->writer_waiting, __ATOMIC_ACQUIRE))
        mms__os_futex_wake(&sl->active);
    __atomic_store_n(&sl->pid, 0, __ATOMIC_RELEASE);
}

/* Free the slots of dead processes. *n gets how many. */
void mms__slots_reclaim(struct mms__lock *L, unsigned *n)
{
    unsigned k = 0;
    for (uint32_t i = 0; i < MMS__NSLOTS; i++) {
        struct mms__rslot *sl = &L->slot[i];
        uint32_t pid = __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE);
        if (pid == 0 || alive(pid, sl->proc_start))
            continue;
        /* Only the one who wins the CAS clears it. */
        if (__atomic_compare_exchange_n(&sl->pid, &pid, UINT32_MAX, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            __atomic_store_n(&sl->active, 0, __ATOMIC_RELEASE);
            mms__os_futex_wake(&sl->active);
            __atomic_store_n(&sl->pid, 0, __ATOMIC_RELEASE);
            k++;
        }
    }
    if (n)
        *n = k;
}

/* ------------------------------------------------------------------------
 * Pinning (read transactions)
 * ------------------------------------------------------------------------ */

/* Pin the published state. Returns 0 with *txn the pinned txn id, or an
 * error if the gate stays closed by a dead writer that this process cannot
 * recover from (recover is called to try). */
int mms__pin(struct mms__lock *L, uint32_t idx, uint64_t *txn, int (*recover)(void *), void *ctx)
{
    struct mms__rslot *sl = &L->slot[idx];
    for (;;) {
        uint32_t g = __atomic_load_n(&L->gate, __ATOMIC_ACQUIRE);
        if (g & 1) {
            int r = mms__os_futex_wait(&L->gate, g, WAIT_SLICE_NS);
            if (r == -ETIMEDOUT && __atomic_load_n(&L->gate, __ATOMIC_ACQUIRE) == g &&
                !alive(L->writer_pid, L->writer_start)) {
                r = recover(ctx);
                if (r)
                    return r;
            }
            continue;
        }
        __atomic_store_n(&sl->active, 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&L->gate, __ATOMIC_RELAXED) != g) {
            mms__unpin(L, idx);
            continue;
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        *txn = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
        sl->txn = *txn;
        sl->tid = my_tid();
        sl->since_ns = mms__os_mono_ns();
        return 0;
    }
}

void mms__unpin(struct mms__lock *L, uint32_t idx)
{
    struct mms__rslot *sl = &L->slot[idx];
    __atomic_store_n(&sl->active, 0, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&L->writer_waiting, __ATOMIC_RELAXED))
        mms__os_futex_wake(&sl->active);
}

/* ------------------------------------------------------------------------
 * Publishing (the writer, holding the writer lock)
 * ------------------------------------------------------------------------ */

/* Close the gate and wait until no reader is inside. skip: a slot the
 * caller itself holds pinned is an error (it would wait for ever). */
bool mms__pinned_by_me(const struct mms__lock *L)
{
    uint32_t pid = mms__os_pid(), tid = my_tid();
    for (uint32_t i = 0; i < MMS__NSLOTS; i++) {
        const struct mms__rslot *sl = &L->slot[i];
        if (__atomic_load_n(&sl->active, __ATOMIC_ACQUIRE) && sl->pid == pid && sl->tid == tid)
            return true;
    }
    return false;
}

int mms__gate_close(struct mms__lock *L, uint32_t my_slot)
{
    if (my_slot < MMS__NSLOTS && __atomic_load_n(&L->slot[my_slot].active, __ATOMIC_ACQUIRE))
        return mms__fail(MMS_ETXN, "this handle is inside a read transaction");
    uint32_t g = __atomic_load_n(&L->gate, __ATOMIC_RELAXED);
    if (!(g & 1))
        __atomic_store_n(&L->gate, g + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (uint32_t i = 0; i < MMS__NSLOTS; i++) {
        struct mms__rslot *sl = &L->slot[i];
        while (__atomic_load_n(&sl->active, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&L->writer_waiting, 1, __ATOMIC_SEQ_CST);
            int r = mms__os_futex_wait(&sl->active, 1, WAIT_SLICE_NS);
            if (r == -ETIMEDOUT) {
                uint32_t pid = __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE);
                if (pid && pid != UINT32_MAX && !alive(pid, sl->proc_start))
                    mms__slots_reclaim(L, NULL);
            }
        }
    }
    __atomic_store_n(&L->writer_waiting, 0, __ATOMIC_RELAXED);
    return 0;
}

void mms__gate_open(struct mms__lock *L, uint64_t txn)
{
    __atomic_store_n(&L->published, txn, __ATOMIC_RELEASE);
    uint32_t g = __atomic_load_n(&L->gate, __ATOMIC_RELAXED);
    if (g & 1)
        __atomic_store_n(&L->gate, g + 1, __ATOMIC_RELEASE);
    mms__os_futex_wake(&L->gate);
    __atomic_add_fetch(&L->notify, 1, __ATOMIC_RELEASE);
    mms__os_futex_wake(&L->notify);
}

/* Wait until the published txn differs from txn, or timeout_ms passes
 * (< 0: for ever). */
int mms__wait_change(struct mms__lock *L, uint64_t txn, int64_t timeout_ms, uint64_t *now)
{
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : mms__os_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uint32_t n = __atomic_load_n(&L->notify, __ATOMIC_ACQUIRE);
        uint64_t p = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
        if (p != txn) {
            *now = p;
            return 0;
        }
        uint64_t t = mms__os_mono_ns();
        if (t >= deadline) {
            *now = p;
            return -ETIMEDOUT;
        }
        uint64_t left = deadline - t;
        int r = mms__os_futex_wait(&L->notify, n, left > INT64_MAX ? -1 : (int64_t)left);
        if (r && r != -ETIMEDOUT && r != -EINTR)
            return r;
    }
}

/* ------------------------------------------------------------------------
 * Writer lock
 * ------------------------------------------------------------------------ */
int mms__writer_lock(struct mms__lock *L, bool wait)
{
    int r = wait ? pthread_mutex_lock(&L->writer) : pthread_mutex_trylock(&L->writer);
    if (r == EOWNERDEAD) {
        /* The last writer died holding the lock: whatever it was doing,
         * recovery from the journal repairs it. */
        __atomic_store_n(&L->recover_needed, 1, __ATOMIC_RELEASE);
        pthread_mutex_consistent(&L->writer);
        r = 0;
    }
    if (r == EBUSY)
        return mms__fail(MMS_EBUSY, "another writer holds the store (pid %u)", L->writer_pid);
    if (r == EDEADLK)
        return mms__fail(MMS_EBUSY, "this thread already writes to the store through another handle");
    if (r)
        return mms__fail(-r, "cannot take the writer lock: %s", strerror(r));
    L->writer_pid = mms__os_pid();
    L->writer_start = my_start();
    return 0;
}

void mms__writer_unlock(struct mms__lock *L)
{
    L->writer_pid = 0;
    L->writer_start = 0;
    pthread_mutex_unlock(&L->writer);
}

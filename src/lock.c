/*
 * lock.c -- the lock file (writer lock, reader slots, publication) and the
 * process's registry of open handles.
 *
 * Layer 2: calls only os.c (and error.c, and guard.c's per-thread hook in
 * mms__check_handle). It owns every byte of the lock
 * file and every OFD lock on it, and knows, for this process, which handles
 * are open, which thread pins or writes through each, and whether a handle
 * survived a fork. It must never touch region files, the journal or a
 * mapping of store data.
 *
 * The file `lock` in the store directory is mapped shared by every handle
 * of every process. It holds no data: it is rebuilt from the store whenever
 * no handle has it open, and nothing in it is durable.
 *
 * NOTES ON THE DESIGN
 *
 * Ownership is kernel locks, not pids. Every handle opens the lock file
 * itself, so it has an open file description of its own, and holds
 * open-file-description (OFD) locks on single bytes of it:
 *
 *     byte 0       shared while the handle is open (exclusive while the
 *                  first handle initialises the file)
 *     byte 2 + i   exclusive while the handle owns reader slot i
 *     byte 258     PIN_BYTE (2 + MMS__NSLOTS): shared while a reader that
 *                  cannot write the lock file is inside a read transaction;
 *                  exclusive while an applier waits such readers out
 *
 * (Byte 1 was the writer lock until lock file version 3; see below.)
 *
 * The kernel drops these when the handle closes or its process dies, in
 * any PID namespace, however it dies; F_OFD_GETLK tells anyone whether a
 * byte is held. So "is the owner alive" is a probe of its byte, never a
 * look at /proc, and a pid that was reused cannot fool it. Pids in the file
 * are for people (mms readers, mms info).
 *
 * Life of the file. An opener that gets byte 0 exclusively is alone: it
 * (re)initialises the file and runs recovery, then converts to shared
 * (atomic for fcntl locks). Others wait for byte 0 shared, which also waits
 * out an initialiser; if they then find the file uninitialised (the
 * initialiser failed), they try again.
 *
 * Writer lock: a futex word, `writer`, holding the owner id of the handle
 * that has it (its slot and the slot's claim count, mms__owner_id), taken
 * and given back with an atomic operation: no system call while nobody
 * else wants it (a commit took two fcntl calls when it was byte 1, several
 * microseconds each on a virtual machine). Whether the holder is alive is
 * a probe of its slot's byte, as for the gate; a waiter that finds it dead
 * takes the word over. Waiters count themselves in writer_waiters and
 * sleep on the word; the holder wakes them when it lets go, if any. A
 * waiter with a deadline (mms_txn_begin_timed) sleeps no later than it and
 * then counts itself out, as any waiter does when it wakes.
 * writer_active is set by the holder once it has the
 * lock and cleared just before it lets go; a new holder that finds it set
 * knows the last one died holding it, maybe inside a commit, and takes
 * over what it left first (apply.c, mms__repair: its commits become a
 * backlog, without waiting for readers; recover_needed stays set until
 * that succeeds). The lock belongs to the handle, not to a thread: a write
 * transaction may begin on one thread and commit on another. A thread that
 * already writes through one handle and asks for the lock through another
 * would wait for itself: the process registry (below) refuses that.
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
 * So that one long read transaction does not stop every new reader, the
 * writer closes the gate optimistically: if it finds a reader inside, it
 * opens the gate again (publishing nothing), waits for that reader, and
 * tries again, as long as it is the same reader in the same transaction
 * (each slot counts the transactions it ended). As soon as it is not (the
 * reader began another before the writer could close the gate, or other
 * readers came in), or after GATE_PATIENCE, it keeps the gate closed until
 * the readers inside have left, so that neither overlapping readers nor
 * one that reads back to back can starve it. Either way the commit waits for the
 * readers that were inside; its data is durable already, only its
 * visibility waits.
 *
 * Dead processes. A writer waiting for a pinned slot probes the slot's byte
 * every WAIT_SLICE; a free byte means the owner is gone, and its slot is
 * cleared. A reader waiting at a closed gate probes the gate's holder every
 * WAIT_SLICE. The gate and its holder are one 64-bit word, closed with its
 * holder's name and opened with none in one store each: a closed gate
 * naming nobody, which no waiter could judge, never shows. The gate's
 * value also says whether its holder has written nothing yet: an open
 * gate is 4k, closing it makes it 4k + 1 (untouched), and its holder makes
 * it 4k + 3 (touched) before it may write a file (the gate is then its own
 * and no reader is inside: gate_try's success, the end of
 * mms__gate_close); opening it makes it 4k + 4. So the word a dead holder
 * left says all there is to judge, in one load. A holder that died with
 * its gate untouched died waiting for readers to leave (a writer at its
 * backlog bound): the files hold the published state,
 * whole, and whoever finds it dead opens the gate again -- a reader goes
 * on at once, without waiting for the readers inside, and the next writer
 * does it when it takes the lock the dead one held. A holder that died
 * after that may have left the files half applied: the reader finishes
 * its work (takes the writer lock and repairs, or applies), when it can
 * write the files, so that nobody waits for ever. It applies from the
 * published txn, whose group it finds from the journal's start (apply.c):
 * the position kept beside published may be the dead holder's next one,
 * half stored. (Until lock file version 6 a holder said it was untouched
 * in a word of its own, gate_untouched, stored after it closed the gate:
 * killed in between, it left an untouched gate that looked touched, and
 * the next reader took it over and waited for the readers inside;
 * test_backlog gate_close_kill.)
 *
 * Readers that cannot write (unslotted). A read-only handle whose process
 * may not write the lock file (the store belongs to another user, on a
 * writable file system) opens it O_RDONLY, maps it read-only and never
 * stores into it: it has no slot (s->slot is UINT32_MAX, s->unslotted).
 * It holds byte 0 shared like every handle (so "alone", compaction and
 * the give-back of space keep waiting for it), and pins with a kernel
 * lock instead of a store, shared on PIN_BYTE (F_RDLCK is allowed on a
 * read-only descriptor, F_WRLCK is not):
 *
 *     unslotted reader begin               applier (gate_try, gate_close)
 *     PIN_BYTE shared (waits out an        gate = odd          (close)
 *       applier that holds it)             readers' slots empty (above)
 *     g = gate                             probe PIN_BYTE: held?
 *     if odd: drop the byte, nap, retry      try: reopen, give up (0)
 *     read published; ... ; drop byte        close: take it exclusively
 *                                            (waits), hold it until open
 *
 * The probe and the lock are the two sides of a Dekker pair through the
 * kernel's lock table (both are serialised there, and a system call is a
 * full barrier): either the probe sees the reader's byte, or the reader's
 * lock came after it and the reader sees the closed gate. No applier
 * writes a region file before its probe found the byte free or it holds
 * the byte, so a reader that holds the byte over an open gate reads files
 * that nobody writes. The applier's cost is one F_OFD_GETLK per apply
 * (2.8 us here; taking and dropping the byte would be two calls, 6.1 us);
 * it cannot be made free when no such reader exists, since such a reader
 * cannot say so in shared memory, and only a system call reads the
 * kernel's lock table. The reader cannot count itself in
 * gate_waiters either, so it naps (futex with a timeout) rather than
 * waits to be woken, while an applier holds the gate without the byte.
 * Nor can it apply what it held back when it leaves: an applier that
 * gave up and found the byte held (gate_unslotted; slotted readers may be
 * inside too) wakes its handle's pin watcher, which applies once the byte
 * is free (apply.c, P1-P6).
 *
 * What it cannot do it refuses (MMS_ERECOVER) instead of waiting for
 * ever or writing: a dead writer's unfinished commit or recover_needed
 * with no live writer to recover, a dead applier's half-applied gate. A
 * dead holder that had written nothing (an untouched gate) leaves the files
 * whole: it reads them, holding the byte, so that whoever takes the gate
 * over waits for it. It judges the word as it is after it found the holder
 * dead, never one loaded before: a holder that probed the byte before the
 * reader took it may touch the gate, write and die in between. Its lock file must be valid for the store
 * (mms__lock_trust): when no slotted handle keeps it, the file is
 * what the last handles left, and the processes that died leave it true
 * (gate, committing, writer_active), but not a restart of the system
 * (the files may then hold a torn apply that only recovery repairs) nor
 * a copied directory: the first opener writes two clocks (and, in the
 * first seconds of a boot, the boot id) and the lock file's own identity
 * into it (lock_stamp), and an unslotted reader
 * trusts a file of this boot and itself, or one whose slot bytes show a
 * handle that can write it (byte 0 does not: unslotted readers hold it
 * too). It judges the file before it takes byte 0, never holding that
 * over a file it refuses. A writer that opens later is not
 * alone (byte 0 is held), so it does not rebuild the file: it recovers
 * after a dead writer under the gate as always, and whatever needs
 * "alone" (compaction, giving space back, recovery at open) waits until
 * the unslotted reader closes.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_SLICE_NS 10000000     /* 10 ms between liveness probes */
#define GATE_PATIENCE_NS 10000000  /* optimistic gate closing, then hold it */
#define SLOT_BYTE(i) (2 + (int)(i))
#define PIN_BYTE (2 + (int)MMS__NSLOTS)
#define NAP_MAX_NS 2000000 /* an unslotted reader's longest nap at a closed gate */

static bool fd_byte_held(int lockfd, int byte);

/* The calling thread's number, unique in its process and never 0: what a
 * pin and a writer lock are told apart by (the process registry below).
 * Not the kernel's thread id: gettid is a system call, and every process's
 * first read transaction paid for it. A forked child's thread keeps its
 * number, still unique there (the counter came along). */
static uint32_t my_tid(void)
{
    static __thread uint32_t tid;
    static uint32_t next;
    while (!tid)
        tid = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
    return tid;
}

uint32_t mms__my_tid(void)
{
    return my_tid();
}

/* ------------------------------------------------------------------------
 * Process state: the open handles, fork detection.
 *
 * The list of open handles answers two questions the lock file cannot:
 * does this thread pin a handle of a store, or hold its writer lock through
 * another handle (either would make it wait for itself, lock.c); and, in a
 * forked child, which lock-file descriptors to close, so that the child's
 * copies do not keep the parent's locks alive after the parent is gone.
 * A handle's pin_tid and writer_tid are written by the thread using it and
 * read here by any thread (only to compare with its own number, so a stale
 * value is harmless): atomic, relaxed, so that this is no data race
 * (ThreadSanitizer reported it wherever threads use handles of one store;
 * test_threads_tsan).
 * ------------------------------------------------------------------------ */
static unsigned long fork_gen;
static int atfork_done; /* set under open_lock; read and written atomically */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static mms_store *open_list;

static void on_fork_prepare(void)
{
    pthread_mutex_lock(&open_lock);
}
static void on_fork_parent(void)
{
    pthread_mutex_unlock(&open_lock);
}
static void on_fork_child(void)
{
    /* The inherited handles are dead here (MMS_EFORK); their lock files
     * must not hold the parent's OFD locks once the parent closes. */
    for (mms_store *h = open_list; h; h = h->next_open)
        if (h->lockfd >= 0) {
            mms__os_close(h->lockfd);
            h->lockfd = -1;
        }
    open_list = NULL;
    pthread_mutex_unlock(&open_lock);
    fork_gen++;
    mms__os_after_fork();
}
/* A new handle belongs to this process as it is now (before any fork).
 * The fork handlers are registered by the first handle, under the mutex
 * rather than with pthread_once, whose first call is a futex system call.
 * atfork_done is first looked at with an atomic add of 0, a write access:
 * in a new process that makes the first touch of the page it shares with
 * open_lock one page fault, where a read made two (the zero page, then
 * its copy when the mutex was taken). */
MMS__OPEN_PATH
void mms__registry_init(mms_store *s)
{
    if (!__atomic_fetch_add(&atfork_done, 0, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&open_lock);
        if (!__atomic_load_n(&atfork_done, __ATOMIC_RELAXED))
            pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
        __atomic_store_n(&atfork_done, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&open_lock);
    }
    s->fork_gen = fork_gen;
}

MMS__OPEN_PATH
void mms__registry_add(mms_store *s)
{
    pthread_mutex_lock(&open_lock);
    s->next_open = open_list;
    open_list = s;
    pthread_mutex_unlock(&open_lock);
}

MMS__OPEN_PATH
bool mms__forked(const mms_store *s)
{
    return s->fork_gen != fork_gen;
}

int mms__check_fork(const mms_store *s)
{
    if (mms__forked(s))
        return mms__fail(MMS_EFORK, "handle opened before fork() used in the child");
    return 0;
}

void mms__registry_remove(mms_store *s)
{
    pthread_mutex_lock(&open_lock);
    for (mms_store **p = &open_list; *p; p = &(*p)->next_open)
        if (*p == s) {
            *p = s->next_open;
            break;
        }
    pthread_mutex_unlock(&open_lock);
}

static bool same_store(const mms_store *a, const mms_store *b)
{
    return a->L && b->L && memcmp(a->L->uuid, b->L->uuid, 16) == 0;
}

bool mms__pinned_by_me(const mms_store *s)
{
    uint32_t tid = mms__my_tid();
    bool yes = false;
    pthread_mutex_lock(&open_lock);
    for (const mms_store *h = open_list; h && !yes; h = h->next_open)
        yes = __atomic_load_n(&h->pin_tid, __ATOMIC_RELAXED) == tid && same_store(h, s);
    pthread_mutex_unlock(&open_lock);
    return yes;
}

static bool writing_in_thread(const mms_store *s)
{
    uint32_t tid = mms__my_tid();
    bool yes = false;
    pthread_mutex_lock(&open_lock);
    for (const mms_store *h = open_list; h && !yes; h = h->next_open)
        yes = h != s && __atomic_load_n(&h->writer_tid, __ATOMIC_RELAXED) == tid &&
              same_store(h, s);
    pthread_mutex_unlock(&open_lock);
    return yes;
}

MMS__OPEN_PATH
int mms__check_handle(const mms_store *s)
{
    if (!s)
        return mms__fail(MMS_EINVAL, "handle is NULL");
    if (mms__forked(s))
        return mms__fail(MMS_EFORK, "handle opened before fork() used in the child");
    if (s->poisoned)
        return mms__fail(MMS_EPOISONED, "an earlier I/O failure (%s) poisoned this handle",
                         mms_strerror(s->poisoned));
    mms__guard_enter(s, false); /* guard.c G2: this thread may read */
    return 0;
}

int mms__check_write(const mms_store *s)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state != MMS__ST_WRITE)
        return mms__fail((s->flags & MMS_RDONLY) ? MMS_ERDONLY : MMS_ENOTXN,
                         "this needs a write transaction");
    mms__guard_enter(s, true); /* guard.c G2: and write */
    return 0;
}

MMS__OPEN_PATH
bool mms__lock_valid(const struct mms__lock *L, const uint8_t uuid[16])
{
    return L->magic == MMS__LMAGIC && L->version == MMS__LVERSION &&
           L->size == sizeof *L && L->nslots == MMS__NSLOTS &&
           memcmp(L->uuid, uuid, 16) == 0 &&
           __atomic_load_n(&L->init_done, __ATOMIC_ACQUIRE) == 1;
}

/* Who may trust this lock file when no handle keeps it (NOTES, Readers
 * that cannot write): this boot, this file. The boot is told by two
 * clocks read when the file is initialised, the wall clock (real) and
 * CLOCK_BOOTTIME (boot, the uptime), and judged by how far they parted
 * since:
 *
 *     d = (real_now - real_stamp) - (boot_now - boot_stamp)
 *
 * Within one boot d is the sum of the steps of the wall clock since the
 * stamp (CLOCK_BOOTTIME is never set): RESTART_SLACK_NS of them are taken
 * as the same boot. Across a restart, with the stamp taken at uptime u, t
 * before the old system went down, and the new one counting its uptime
 * after a time down w, d = u + t + w + c, where c is what the wall clock
 * was set by across the restart. t and w may be nothing (a stamp just
 * before a kexec), so only u is sure to show, and only when it is beyond
 * the slack: a file stamped in the first second of a boot (a service
 * started at boot) and a quick restart would pass. Stamps taken under
 * BOOT_ID_BELOW_NS therefore also keep the kernel's boot id, and are
 * judged by it alone; later ones by the clocks, which then tell a restart
 * unless the wall clock went back across it by BOOT_ID_BELOW_NS -
 * RESTART_SLACK_NS (9 s) or more, and by just the amount that brings d
 * back within the slack. The first seconds of a boot are also when the
 * wall clock is least right (set at its first synchronisation), and an
 * early stamp judged by the id does not mind that step. The id is not
 * read on the common path: it costs a new process ~70 us (the open of a
 * /proc file), as much as the rest of a first open; only first opens in
 * the first 10 s of a boot pay it, and readers that judge their files.
 * It is the kernel's, the same in every container of the system (a
 * restart of a container is no restart of the page cache); a time
 * namespace moves CLOCK_BOOTTIME, so a stamp taken in one that began
 * lately keeps the id too. With /proc unreadable, nothing is kept, and
 * an early file is not trusted: "cannot tell" refuses, never trusts. */
#define RESTART_SLACK_NS 1000000000 /* steps of the wall clock taken as the same boot */
#define BOOT_ID_BELOW_NS 10000000000ull /* stamps at a lower uptime keep the boot id */

MMS__OPEN_PATH
static void lock_stamp(const mms_store *s, struct mms__lock *L)
{
    L->init_real_ns = mms__os_now_ns();
    L->init_boot_ns = mms__os_boot_ns();
    L->lock_id[0] = s->lock_fid[0];
    L->lock_id[1] = s->lock_fid[1];
    /* boot_id is 0 (mms__lock_init), and stays so if unreadable. */
    if (L->init_boot_ns < BOOT_ID_BELOW_NS)
        (void)mms__os_boot_id(L->boot_id);
}

enum { BOOT_OTHER, BOOT_SAME, BOOT_UNKNOWN };

/* Whether the file was stamped in this boot (above): BOOT_UNKNOWN when it
 * was stamped early and either id is missing. */
static int lock_boot(const struct mms__lock *L)
{
    if (L->init_boot_ns < BOOT_ID_BELOW_NS) {
        static const uint8_t none[16];
        uint8_t now[16];
        if (memcmp(L->boot_id, none, 16) == 0 || mms__os_boot_id(now) != 0)
            return BOOT_UNKNOWN;
        return memcmp(L->boot_id, now, 16) == 0 ? BOOT_SAME : BOOT_OTHER;
    }
    uint64_t real = mms__os_now_ns(), boot = mms__os_boot_ns();
    if (!L->init_real_ns || boot < L->init_boot_ns)
        return BOOT_OTHER;
    int64_t d = (int64_t)(real - L->init_real_ns) - (int64_t)(boot - L->init_boot_ns);
    return d <= RESTART_SLACK_NS && d >= -RESTART_SLACK_NS ? BOOT_SAME : BOOT_OTHER;
}

MMS__OPEN_PATH
void mms__lock_init(mms_store *s, const uint8_t uuid[16])
{
    struct mms__lock *L = s->L;
    /* Slots that are already zero (every slot after clean closes) are not
     * written: a store into a page of the shared file is a page fault and
     * makes the page dirty, and this runs at every first open. */
    memset(L, 0, offsetof(struct mms__lock, slot));
    static const struct mms__rslot zero;
    for (uint32_t i = 0; i < MMS__NSLOTS; i++)
        if (memcmp(&L->slot[i], &zero, sizeof zero) != 0)
            memset(&L->slot[i], 0, sizeof zero);
    L->magic = MMS__LMAGIC;
    L->version = MMS__LVERSION;
    L->size = sizeof *L;
    L->nslots = MMS__NSLOTS;
    memcpy(L->uuid, uuid, 16);
    if (!s->L_private)
        lock_stamp(s, L);
}

/* A read-only handle whose process may not write the lock file (NOTES,
 * Readers that cannot write): the file read-only, byte 0 shared. */
MMS__OPEN_PATH
static int attach_unslotted(mms_store *s)
{
    int fd = mms__os_openat_nostat(s->dirfd, "lock", O_RDONLY | O_NOFOLLOW, 0);
    if (fd == -ENOENT)
        return mms__fail(MMS_ERECOVER, "the store has no lock file, and this process may not "
                         "make one: open the store once with a process that can write it");
    if (fd == -ELOOP)
        return MMS__CORRUPT("the lock file is a symbolic link; it holds no data and is "
                            "rebuilt at every first open: remove the link");
    if (fd < 0)
        return mms__fail(fd, "cannot open the lock file: %s", mms_strerror(fd));
    s->lockfd = fd;
    s->unslotted = true;
    uint64_t want = mms__round_up(sizeof(struct mms__lock), MMS__PAGE), size;
    int r = mms__os_fsize_regular_id(fd, "lock", &size, s->lock_fid);
    if (r)
        return r;
    /* Judged before byte 0 is taken, never while holding it: a writer's
     * first open that finds byte 0 held is not alone, and takes the file
     * as it is (no rebuild, no recovery); held for an instant over a file
     * of another boot, it trusted that. Byte 0 held while the file cannot
     * be trusted is a first handle initialising it (exclusively): wait
     * that out, and judge the file it made. */
    for (int tries = 0;; tries++) {
        if (!s->L && size >= want) {
            char *m;
            r = mms__os_map(fd, want, false, &m);
            if (r)
                return r;
            s->L = (struct mms__lock *)(void *)m;
        }
        r = s->L ? mms__lock_trust(s, NULL)
                 : mms__fail(MMS_ERECOVER, "the lock file is not one of this version of "
                             "mmstore, and this process may not rebuild it: open the store "
                             "once with a process that can write it");
        if (!r)
            break;
        if (tries == 2 || !fd_byte_held(fd, 0))
            return r;
        r = mms__os_ofd_lock(fd, 0, F_RDLCK, true);
        if (!r)
            r = mms__os_ofd_lock(fd, 0, F_UNLCK, false);
        if (!r)
            r = mms__os_fsize(fd, &size);
        if (r)
            return mms__fail(r, "cannot lock the lock file: %s", mms_strerror(r));
    }
    /* Shared from now on; an initialiser that came meanwhile is waited out
     * (and mms__lock_trust, with the store's uuid, judges its file). */
    r = mms__os_ofd_lock(fd, 0, F_RDLCK, true);
    mms__crashpoint("lock.unslotted_held");
    if (r)
        return mms__fail(r, "cannot lock the lock file: %s", mms_strerror(r));
    return 0;
}

MMS__OPEN_PATH
int mms__lock_trust(mms_store *s, const uint8_t uuid[16])
{
    const struct mms__lock *L = s->L;
    if (!mms__lock_valid(L, uuid ? uuid : L->uuid)) /* NULL: any store's */
        return mms__fail(MMS_ERECOVER, "the lock file is not valid for this store (made by "
                         "another version of mmstore, left by a first open that failed, or "
                         "copied), and this process may not rebuild it: " MMS__NEEDS_WRITER);
    /* Made in this boot, for this file: what the last handles left, or
     * what open ones keep. */
    const uint64_t *id = s->lock_fid;
    bool early = L->init_boot_ns < BOOT_ID_BELOW_NS;
    int boot = lock_boot(L);
    if (boot == BOOT_SAME && id[1] != 0 && id[0] == L->lock_id[0] && id[1] == L->lock_id[1])
        return 0;
    /* Else kept by a handle that can write it (the clock was set since):
     * valid since its first opener, in this boot. A slot's byte says so,
     * not byte 0: every reader holds that, and one that cannot write the
     * file holds it from its attach until it has judged the file (so two
     * such readers of another boot's file would each trust the other). A
     * slot's byte is taken exclusively, which needs a descriptor open for
     * writing. (The first handle between its initialisation and its claim
     * of a slot holds none, but has just stamped the file.) */
    if (mms__os_ofd_probe_range(s->lockfd, SLOT_BYTE(0), (int)MMS__NSLOTS) == 1)
        return 0; /* an error is no reason to trust */
    if (boot == BOOT_UNKNOWN)
        return mms__fail(MMS_ERECOVER, "the store was last opened in the first seconds after "
                         "the system started, and this process cannot tell whether it restarted "
                         "since (no boot id in the lock file, or /proc/sys/kernel/random/boot_id "
                         "unreadable) nor write the lock file: " MMS__NEEDS_WRITER);
    if (boot == BOOT_OTHER)
        return mms__fail(MMS_ERECOVER, "the store was last opened before the system "
                         "restarted%s, and this process may not write its lock file: "
                         MMS__NEEDS_WRITER,
                         early ? " (its lock file names another boot id)"
                               : " (or the clock was set since, by more than a second)");
    return mms__fail(MMS_ERECOVER, "the lock file was made for another copy of the store "
                     "directory, and this process may not rebuild it: " MMS__NEEDS_WRITER);
}

/* Take a place in the lock file: *alone says whether any other handle has
 * the store open. A read-only handle on a read-only file system, where no
 * handle has the lock file open, keeps a private copy of it: nobody can
 * write the store there. */
MMS__OPEN_PATH
int mms__lock_attach(mms_store *s, bool *alone)
{
    /* Not through a symbolic link: the first handle rebuilds the file, and
     * would write over a file of someone else's that the link names. */
    int fd = mms__os_openat_nostat(s->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0666);
    if ((fd == -EACCES || fd == -EPERM) && (s->flags & MMS_RDONLY)) {
        *alone = false; /* never initialises the file: mms__lock_trust judges it */
        return attach_unslotted(s);
    }
    if (fd == -ELOOP)
        return MMS__CORRUPT("the lock file is a symbolic link; it holds no data and is "
                            "rebuilt at every first open: remove the link");
    if (fd == -EROFS && (s->flags & MMS_RDONLY)) {
        int rfd = mms__os_openat(s->dirfd, "lock", O_RDONLY, 0);
        int held = rfd >= 0 ? mms__os_ofd_probe(rfd, 0) : 0;
        mms__os_close(rfd);
        if (held)
            return mms__fail(MMS_EBUSY, "the store is in use by other handles, and this process "
                             "cannot write its lock file (read-only file system)");
        s->L = calloc(1, sizeof *s->L);
        if (!s->L)
            return -ENOMEM;
        s->L_private = true;
        *alone = true;
        return 0;
    }
    if (fd == -EACCES || fd == -EPERM)
        return mms__fail(fd, "cannot open the lock file: %s (this process may not write the "
                         "store: MMS_RDONLY reads it)", mms_strerror(fd));
    if (fd < 0)
        return mms__fail(fd, "cannot open the lock file: %s", mms_strerror(fd));
    s->lockfd = fd;
    /* One fstat, after the lock is tried: whether it is a regular file
     * (before anything else is said about it, as mms__os_openat would) and,
     * for the first handle, its size, which nobody changes while it holds
     * byte 0 exclusively. The others measure it again once they hold their
     * share: an initialiser may have been setting it meanwhile. */
    uint64_t want = mms__round_up(sizeof(struct mms__lock), MMS__PAGE), size;
    int r = mms__os_ofd_lock(fd, 0, F_WRLCK, false);
    *alone = r == 0;
    int rs = mms__os_fsize_regular_id(fd, "lock", &size, s->lock_fid);
    if (rs)
        return rs; /* not a regular file: the detail says so */
    if (r == MMS_EBUSY) /* others have it open; this also waits out an initialiser */
        r = mms__os_ofd_lock(fd, 0, F_RDLCK, true);
    if (r)
        return mms__fail(r, "cannot lock the lock file: %s", mms_strerror(r));
    if (!*alone)
        r = mms__os_fsize(fd, &size);
    if (!r && *alone && size != want)
        r = mms__os_ftruncate(fd, want);
    else if (!r && size < want)
        r = mms__fail(MMS_EBUSY, "the lock file is in use by an incompatible version of mmstore");
    /* Every page on disk before it is mapped: a page of a hole is a SIGBUS
     * at its first touch when the file system is full (tmpfs: even a
     * read). The first handle allocates what is missing (a no-op once it
     * was); a full disk is then this error, never a signal. */
    if (!r && *alone && (r = mms__os_fill(fd, 0, want)) != 0)
        r = mms__fail(r, "cannot allocate the lock file's %llu bytes: %s",
                      (unsigned long long)want, mms_strerror(r));
    /* Populated: every open reads past the first page (mms__lock_init
     * looks at every slot, a reader's slot may be on any page), a fault
     * each time (~20 us here) that the call saves. */
    char *m;
    if (!r)
        r = mms__os_map_populated(fd, want, &m);
    if (r)
        return r;
    s->L = (struct mms__lock *)(void *)m;
    /* The first handle rewrites the file's first page (mms__lock_init):
     * touched first by a write that changes nothing, it faults once, not
     * for a read and then again for the write. */
    if (*alone)
        __atomic_fetch_add(&s->L->init_done, 0, __ATOMIC_RELAXED);
    return 0;
}

void mms__lock_detach(mms_store *s)
{
    if (s->L && s->L_private)
        free(s->L);
    else if (s->L)
        mms__os_unmap(s->L, mms__round_up(sizeof(struct mms__lock), MMS__PAGE));
    s->L = NULL;
    s->L_private = false;
    s->unslotted = false;
    s->pin_byte = false;
    s->J = NULL;
    mms__os_close(s->lockfd); /* drops every OFD lock of this handle */
    s->lockfd = -1;
}

/* Is byte held by another open file description? (Our own locks never
 * conflict with us, so callers never ask about their own bytes.) */
static bool fd_byte_held(int lockfd, int byte)
{
    int r = mms__os_ofd_probe(lockfd, byte);
    return r != 0; /* an error counts as held: never reclaim on doubt */
}

static bool byte_held(const mms_store *s, int byte)
{
    return fd_byte_held(s->lockfd, byte);
}

bool mms__unslotted_inside(const mms_store *s)
{
    return byte_held(s, PIN_BYTE);
}

/* ------------------------------------------------------------------------
 * Reader slots
 * ------------------------------------------------------------------------ */
static void slot_reset(struct mms__rslot *sl, uint32_t pid)
{
    __atomic_store_n(&sl->active, 0, __ATOMIC_RELEASE);
    sl->txn = 0;
    sl->since_ns = 0;
    sl->tid = 0;
    __atomic_store_n(&sl->pid, pid, __ATOMIC_RELEASE);
}

/* The live handles in slots other than s's, by process, the processes
 * with the most first (one that leaks handles stands out), into who:
 * "pid 12: 200, pid 13: 56, ..." (at most four); returns how many. */
static uint32_t slot_owners(const mms_store *s, char *who, size_t cap)
{
    uint32_t pid[MMS__NSLOTS], count[MMS__NSLOTS], n = 0, handles = 0;
    for (uint32_t i = 0; i < MMS__NSLOTS; i++) {
        uint32_t p = __atomic_load_n(&s->L->slot[i].pid, __ATOMIC_ACQUIRE), k = 0;
        if (i == s->slot || !p || !mms__slot_alive(s, i))
            continue;
        while (k < n && pid[k] != p)
            k++;
        if (k == n)
            pid[n] = p, count[n++] = 0;
        count[k]++;
        handles++;
    }
    size_t len = 0;
    who[0] = 0;
    for (uint32_t shown = 0; shown < 4 && shown < n; shown++) {
        uint32_t best = shown;
        for (uint32_t k = shown + 1; k < n; k++)
            if (count[k] > count[best])
                best = k;
        uint32_t tp = pid[shown], tc = count[shown];
        pid[shown] = pid[best], count[shown] = count[best];
        pid[best] = tp, count[best] = tc;
        len += (size_t)snprintf(who + len, cap - len, "%spid %u: %u", len ? ", " : "",
                                pid[shown], count[shown]);
    }
    if (n > 4)
        snprintf(who + len, cap - len, ", ...");
    return handles;
}

MMS__OPEN_PATH
int mms__slot_claim(mms_store *s)
{
    struct mms__lock *L = s->L;
    uint32_t pid = mms__os_pid();
    /* Free slots first; then slots whose owner may have gone. Owning the
     * slot's byte is owning the slot: whoever held it before has let go. */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < MMS__NSLOTS; i++) {
            struct mms__rslot *sl = &L->slot[i];
            if ((__atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE) == 0) != (pass == 0))
                continue;
            if (mms__os_ofd_lock(s->lockfd, SLOT_BYTE(i), F_WRLCK, false) != 0)
                continue;
            slot_reset(sl, pid);
            __atomic_add_fetch(&sl->claims, 1, __ATOMIC_ACQ_REL);
            s->slot = i;
            return 0;
        }
    char who[160];
    slot_owners(s, who, sizeof who);
    return mms__fail(MMS_EBUSY, "all %u reader slots are taken by open handles (%s); each "
                     "handle holds one until it is closed (mms readers lists them)",
                     MMS__NSLOTS, who);
}

void mms__slot_release(mms_store *s)
{
    struct mms__lock *L = s->L;
    struct mms__rslot *sl = &L->slot[s->slot];
    __atomic_store_n(&sl->active, 0, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&L->writer_waiting, __ATOMIC_RELAXED))
        mms__os_futex_wake(&sl->active);
    __atomic_store_n(&sl->pid, 0, __ATOMIC_RELEASE);
    mms__os_ofd_lock(s->lockfd, SLOT_BYTE(s->slot), F_UNLCK, false);
    s->slot = UINT32_MAX;
}

bool mms__slot_alive(const mms_store *s, uint32_t i)
{
    return i == s->slot || byte_held(s, SLOT_BYTE(i));
}

bool mms__slot_held(int lockfd, uint32_t i)
{
    return fd_byte_held(lockfd, SLOT_BYTE(i));
}

int mms__lock_peek(int dirfd, const struct mms__lock **out, int *lockfd)
{
    *out = NULL;
    *lockfd = -1;
    int fd = mms__os_openat(dirfd, "lock", O_RDONLY, 0);
    if (fd == -ENOENT)
        return 0; /* never opened: no handle */
    if (fd < 0)
        return mms__fail(fd, "cannot open the lock file: %s", mms_strerror(fd));
    uint64_t want = mms__round_up(sizeof(struct mms__lock), MMS__PAGE), size;
    char *m = NULL;
    int r = mms__os_fsize(fd, &size);
    if (!r && size >= want)
        r = mms__os_map(fd, want, false, &m);
    const struct mms__lock *L = (const struct mms__lock *)(void *)m;
    /* Byte 0 is held by every open handle: free, the slots are leftovers
     * that the next open wipes, and the file is not read at all (one left
     * with holes is a SIGBUS at a read on a full tmpfs; an open handle's
     * first opener gave every page its blocks). Ours but not initialised:
     * the first opener is initialising it (recovering the store): nothing
     * to list yet. */
    bool open = !r && fd_byte_held(fd, 0);
    bool ours = open && L && L->magic == MMS__LMAGIC && L->version == MMS__LVERSION &&
                L->size == sizeof *L && L->nslots == MMS__NSLOTS;
    if (open && !ours)
        r = mms__fail(MMS_EBUSY, "the lock file is in use by an incompatible version of mmstore");
    if (r || !open || !ours || __atomic_load_n(&L->init_done, __ATOMIC_ACQUIRE) != 1) {
        if (m)
            mms__os_unmap(m, want);
        mms__os_close(fd);
        return r;
    }
    *out = L;
    *lockfd = fd;
    return 0;
}

int mms__lock_dir_exclusive(int dirfd, int *lockfd)
{
    *lockfd = -1;
    int fd = mms__os_openat(dirfd, "lock", O_RDWR, 0);
    if (fd == -ENOENT)
        return 0; /* never opened: and openers wait for us to be done with dirfd */
    if (fd < 0)
        return fd;
    int r = mms__os_ofd_lock(fd, 0, F_WRLCK, false);
    if (r) {
        mms__os_close(fd);
        return r;
    }
    *lockfd = fd;
    return 0;
}

void mms__lock_unpeek(const struct mms__lock *L, int lockfd)
{
    if (L)
        mms__os_unmap((void *)(uintptr_t)L, mms__round_up(sizeof *L, MMS__PAGE));
    mms__os_close(lockfd);
}

/* Clear slot i if its owner is gone. To take it over we take its byte,
 * which only succeeds if nobody holds it. */
static bool slot_reclaim(mms_store *s, uint32_t i)
{
    struct mms__rslot *sl = &s->L->slot[i];
    if (i == s->slot || __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE) == 0)
        return false;
    if (mms__os_ofd_lock(s->lockfd, SLOT_BYTE(i), F_WRLCK, false) != 0)
        return false; /* owned */
    if (__atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE) == 0) {
        /* Its owner released it cleanly after we looked: not stale. */
        mms__os_ofd_lock(s->lockfd, SLOT_BYTE(i), F_UNLCK, false);
        return false;
    }
    slot_reset(sl, 0);
    mms__os_futex_wake(&sl->active);
    mms__os_ofd_lock(s->lockfd, SLOT_BYTE(i), F_UNLCK, false);
    return true;
}

void mms__slots_reclaim(mms_store *s, unsigned *n)
{
    unsigned k = 0;
    for (uint32_t i = 0; i < MMS__NSLOTS && !s->unslotted; i++)
        k += slot_reclaim(s, i);
    if (n)
        *n = k;
}

/* ------------------------------------------------------------------------
 * Pinning (read transactions)
 * ------------------------------------------------------------------------ */
#define OWNER_SLOT_BITS 9 /* slot index + 1 <= 256 */

uint32_t mms__owner_id(const mms_store *s)
{
    /* Never MMS__GATE_DEAD: slot index + 1 is at most 256, not 511. */
    uint32_t claims = __atomic_load_n(&s->L->slot[s->slot].claims, __ATOMIC_ACQUIRE);
    return (s->slot + 1) | (claims << OWNER_SLOT_BITS);
}

bool mms__owner_alive(const mms_store *s, uint32_t id)
{
    if (id == MMS__GATE_DEAD)
        return false;
    uint32_t i = (id & ((1u << OWNER_SLOT_BITS) - 1)) - 1;
    if (i >= MMS__NSLOTS)
        return true; /* 0: nobody (an open gate, a free word): nothing to take over */
    if (i == s->slot)
        return id == mms__owner_id(s);
    /* Its byte held, by the same claim of the slot: the slot may have been
     * taken over since its owner died. */
    const struct mms__rslot *sl = &s->L->slot[i];
    uint32_t claims = __atomic_load_n(&sl->claims, __ATOMIC_ACQUIRE) << OWNER_SLOT_BITS;
    return (claims | (i + 1)) == id && byte_held(s, SLOT_BYTE(i));
}

/* The gate word (internal.h): the gate and its holder, read and changed
 * together (NOTES, Dead processes). With two stores, a handle killed
 * between closing the gate and naming itself, or between unnaming itself
 * and opening it, left a closed gate naming nobody, and every reader and
 * writer waited at it for ever (test_backlog gate_word_kill). */
union gate_w {
    uint64_t w;
    struct {
        uint32_t gate, owner;
    } f;
};
_Static_assert(offsetof(struct mms__lock, gate_owner) == offsetof(struct mms__lock, gate) + 4,
               "the gate word: gate, then its owner");

MMS__OPEN_PATH
static union gate_w gate_load(const struct mms__lock *L)
{
    return (union gate_w){.w = __atomic_load_n(&L->gate_word, __ATOMIC_SEQ_CST)};
}

/* Change the word from was to (gate, owner): false if it changed since. */
static bool gate_cas(struct mms__lock *L, union gate_w was, uint32_t gate, uint32_t owner)
{
    union gate_w now = {.f = {gate, owner}};
    return __atomic_compare_exchange_n(&L->gate_word, &was.w, now.w, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_RELAXED);
}

/* The gate's value (NOTES, Dead processes): 4k open, 4k + 1 closed and
 * untouched, 4k + 3 closed and touched. */
#define GATE_OPENED(g) (((g) | 3u) + 1u)
#define GATE_TOUCHED 2u

static bool gate_untouched(uint32_t g)
{
    return (g & 3u) == 1u;
}

/* Take a closed gate (at was) over from its dead holder. */
static bool gate_take_over(mms_store *s, union gate_w was)
{
    return (was.f.gate & 1) && gate_cas(s->L, was, was.f.gate, mms__owner_id(s));
}

/* The holder of the gate may write the files from now on (NOTES, Dead
 * processes): the readers are out. The word is the holder's: nobody else
 * changes it meanwhile. Sequentially consistent, so that no file write
 * moves above it. */
static void gate_touch(struct mms__lock *L)
{
    mms__crashpoint("gate.touching"); /* probed, still untouched */
    union gate_w g = gate_load(L), touched = {.f = {g.f.gate | GATE_TOUCHED, g.f.owner}};
    __atomic_store_n(&L->gate_word, touched.w, __ATOMIC_SEQ_CST);
}

/* The gate was opened: wake its waiters. They count themselves before they
 * check the gate (seq_cst both sides): no waiter, no system call.
 * Unslotted readers blocked on PIN_BYTE find the gate open once they have
 * it. */
static void gate_wake(struct mms__lock *L)
{
    if (__atomic_load_n(&L->gate_waiters, __ATOMIC_SEQ_CST))
        mms__os_futex_wake(&L->gate);
}

/* The gate's holder, in the word was, is dead. If it had written nothing
 * (NOTES, Dead processes), open the gate: true, also when another handle
 * opened it or took it over first. False: it may have written, its work
 * needs finishing. Opened from the dead holder's word in one compare-and-
 * swap, never taken over first: a handle killed between taking it over and
 * opening it left a closed gate that named it and looked touched (it was
 * the first holder that had written nothing), and the next reader took it
 * over to finish work there was none of, waiting for the readers inside
 * (test_backlog gate_reopen_kill). */
static bool gate_reopen_untouched(mms_store *s, union gate_w was)
{
    struct mms__lock *L = s->L;
    if (!gate_untouched(was.f.gate))
        return false;
    if (gate_cas(L, was, GATE_OPENED(was.f.gate), 0)) {
        __atomic_store_n(&L->writer_waiting, 0, __ATOMIC_RELAXED); /* it was waiting */
        gate_wake(L);
    }
    return true;
}

/* Wait (one WAIT_SLICE at most) for the gate, closed at g, to change.
 * False, or true with *dead the word if its holder died holding it and
 * its work needs finishing. */
static bool gate_wait(mms_store *s, uint32_t g, union gate_w *dead)
{
    struct mms__lock *L = s->L;
    __atomic_add_fetch(&L->gate_waiters, 1, __ATOMIC_SEQ_CST);
    int r = gate_load(L).f.gate == g ? mms__os_futex_wait(&L->gate, g, WAIT_SLICE_NS) : 0;
    __atomic_sub_fetch(&L->gate_waiters, 1, __ATOMIC_SEQ_CST);
    *dead = gate_load(L);
    if (r != -ETIMEDOUT || dead->f.gate != g)
        return false;
    return !mms__owner_alive(s, dead->f.owner) && !gate_reopen_untouched(s, *dead);
}

/* The gate, for a handle that waits without pinning (mms_wait,
 * mms_read_begin_latest) and for the writer (mms__repair): false while it
 * is open or its holder lives; a dead holder that had written nothing has
 * it opened here (NOTES, Dead processes), false too; true when a dead
 * holder's work needs finishing (mms__pin_stuck), as a reader that begins
 * would find. Judged on the word as it is once its holder is found dead,
 * never on one loaded before the probe: a live holder may open the gate
 * and exit in between, and the gate, open again, looked abandoned (a
 * writer then ran a whole recovery for nothing; test_killwin
 * abandoned_reopened). A dead holder's word changes only when another
 * handle takes it over or opens it: then the new word is judged. */
bool mms__gate_left_dead(mms_store *s)
{
    struct mms__lock *L = s->L;
    union gate_w g = gate_load(L);
    while (g.f.gate & 1) {
        mms__crashpoint("gate.judging"); /* loaded closed, holder not probed yet */
        if (mms__owner_alive(s, g.f.owner))
            return false;
        union gate_w now = gate_load(L);
        if (now.w != g.w) {
            g = now;
            continue;
        }
        if (s->unslotted) /* it cannot open the gate: it only says */
            return !gate_untouched(g.f.gate);
        return !gate_reopen_untouched(s, g);
    }
    return false;
}

/* Nap while the gate is closed at g: an unslotted reader cannot count
 * itself in gate_waiters, so nobody wakes it; *nap doubles up to
 * NAP_MAX_NS. */
static void unslotted_nap(struct mms__lock *L, uint32_t g, int64_t *nap)
{
    static uint32_t still; /* never changes: a plain sleep */
    if (mms__os_futex_wait(&L->gate, g, *nap) == -EFAULT)
        mms__os_futex_wait(&still, 0, *nap);
    *nap = *nap * 2 < NAP_MAX_NS ? *nap * 2 : NAP_MAX_NS;
}

/* mms__pin for a handle that cannot write the lock file (NOTES, Readers
 * that cannot write): PIN_BYTE shared over an open gate. It never stores
 * into the file; what would need a store (recovery, finishing a dead
 * applier's work) it refuses. */
MMS__OPEN_PATH
static int pin_unslotted(mms_store *s, uint64_t *txn)
{
    struct mms__lock *L = s->L;
    int64_t nap = 50000;
    for (;;) {
        int r = mms__os_ofd_lock(s->lockfd, PIN_BYTE, F_RDLCK, true);
        if (r)
            return mms__fail(r, "cannot lock the lock file: %s", mms_strerror(r));
        union gate_w w = gate_load(L);
        uint32_t g = w.f.gate, o = w.f.owner;
        const char *why = NULL;
        bool wait = false;
        if (g & 1) {
            /* Closed by a live applier (which may not have probed the byte
             * yet): wait. By a dead one: whole files if it had written
             * nothing (whoever takes the gate over waits for our byte).
             * The word judged is the one loaded again after the probe:
             * a dead holder's does not change by itself, but the one
             * loaded before may be older than its death -- closed
             * untouched by a holder that had probed PIN_BYTE before we
             * took it, then touched it, wrote and died (test_killwin
             * unslotted_judge_kill). */
            mms__crashpoint("pin.unslotted_gate");
            if (mms__owner_alive(s, o))
                wait = true;
            else if (gate_load(L).w != w.w)
                wait = true; /* it changed as we probed: judge the word it left */
            else if (!gate_untouched(g))
                why = "a handle died (or failed) while applying commits";
        }
        /* As mms__pin: a commit that a dead writer left to take over. A
         * live writer takes it over when it takes the lock (or did). A
         * writer that let go of the lock since committing was read left
         * the word 0 (it cleared committing first), where a dead one
         * leaves its name: that one finished its commit. */
        bool rn = __atomic_load_n(&L->recover_needed, __ATOMIC_ACQUIRE);
        if (!why && !wait && (rn || __atomic_load_n(&L->committing, __ATOMIC_ACQUIRE))) {
            mms__crashpoint("pin.unslotted_writer");
            uint32_t holder = __atomic_load_n(&L->writer, __ATOMIC_ACQUIRE);
            bool live = holder && mms__owner_alive(s, holder);
            if (!live && (rn || holder))
                why = "a writer died in the middle of a commit";
            wait = live && rn;
        }
        if (!why && !wait) {
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            *txn = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
            __atomic_store_n(&s->pin_tid, my_tid(), __ATOMIC_RELAXED); /* read by other threads */
            return 0;
        }
        mms__os_ofd_lock(s->lockfd, PIN_BYTE, F_UNLCK, false);
        if (why)
            return mms__fail(MMS_ERECOVER, "%s; this process may not write the lock file: "
                             MMS__NEEDS_WRITER, why);
        if (mms__pinned_by_me(s))
            return mms__fail(MMS_ETXN, "this thread is inside a read transaction on "
                             "another handle of the store, and an apply waits for it");
        unslotted_nap(L, g, &nap);
    }
}

MMS__OPEN_PATH
int mms__pin(mms_store *s, uint64_t *txn, int (*stuck)(void *ctx, int why), void *ctx)
{
    if (s->unslotted)
        return pin_unslotted(s, txn);
    assert(s->slot < MMS__NSLOTS && s->pin_tid == 0);
    struct mms__lock *L = s->L;
    struct mms__rslot *sl = &L->slot[s->slot];
    for (;;) {
        uint32_t g = gate_load(L).f.gate;
        if (g & 1) {
            /* Waiting here while this thread pins another handle would
             * make the applier wait for us and us for it. */
            if (mms__pinned_by_me(s))
                return mms__fail(MMS_ETXN, "this thread is inside a read transaction on "
                                 "another handle of the store, and an apply waits for it");
            union gate_w dead;
            if (gate_wait(s, g, &dead)) {
                int r = stuck(ctx, MMS__STUCK_APPLIER); /* it died while applying */
                if (r)
                    return r;
            }
            continue;
        }
        __atomic_store_n(&sl->active, 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (gate_load(L).f.gate != g) {
            mms__unpin(s);
            continue;
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        /* This reader must not be shown the state without a dead writer's
         * commit (issue of the dead writer's late commit). */
        if (mms__writer_left_commit(s)) {
            mms__unpin(s);
            int r = stuck(ctx, MMS__STUCK_WRITER);
            if (r)
                return r;
            continue;
        }
        *txn = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
        sl->txn = *txn;
        sl->tid = my_tid();
        sl->since_ns = mms__os_mono_ns();
        __atomic_store_n(&s->pin_tid, sl->tid, __ATOMIC_RELAXED); /* read by other threads */
        return 0;
    }
}

MMS__OPEN_PATH
void mms__unpin(mms_store *s)
{
    if (s->unslotted) {
        __atomic_store_n(&s->pin_tid, 0, __ATOMIC_RELAXED);
        mms__os_ofd_lock(s->lockfd, PIN_BYTE, F_UNLCK, false);
        return;
    }
    struct mms__lock *L = s->L;
    struct mms__rslot *sl = &L->slot[s->slot];
    __atomic_store_n(&s->pin_tid, 0, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sl->ends, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&sl->active, 0, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&L->writer_waiting, __ATOMIC_RELAXED))
        mms__os_futex_wake(&sl->active);
}

/* Handles without a slot (NOTES, Readers that cannot write), from the
 * kernel's lock table: every handle holds byte 0 shared, so those beyond
 * the slotted ones alive (slotted) are *open; *inside hold PIN_BYTE. A
 * snapshot: a handle in the middle of its open counts as one. 0, -EAGAIN
 * (the kernel's listing kept moving: os.c, locks_table) or -errno (both
 * 0). */
int mms__lock_unslotted(int lockfd, unsigned slotted, unsigned *open, unsigned *inside)
{
    static const int bytes[2] = {0, PIN_BYTE};
    unsigned c[2];
    int r = mms__os_ofd_shared_count(lockfd, bytes, 2, c);
    *inside = r ? 0 : c[1];
    *open = r ? 0 : c[0] > slotted ? c[0] - slotted : 0;
    if (*open < *inside)
        *open = *inside; /* a handle opened between the two lines it read */
    return r;
}

bool mms__readers_inside(const mms_store *s)
{
    for (uint32_t i = 0; i < MMS__NSLOTS; i++)
        if (i != s->slot && __atomic_load_n(&s->L->slot[i].active, __ATOMIC_ACQUIRE))
            return true;
    return false;
}

/* ------------------------------------------------------------------------
 * The gate (an applier: the writer, or any handle that can write the files)
 * ------------------------------------------------------------------------ */
/* Take the gate if it is open: true if this handle now holds it. */
static bool gate_take(mms_store *s)
{
    struct mms__lock *L = s->L;
    union gate_w g = gate_load(L);
    uint32_t me = mms__owner_id(s);
    /* Closed, named and untouched in one compare-and-swap. */
    if ((g.f.gate & 1) || !gate_cas(L, g, g.f.gate + 1, me))
        return false;
    mms__crashpoint("gate.taken");
    return true;
}

/* Let go of PIN_BYTE if this handle holds it (gate_close waited for
 * unslotted readers): after the gate opened, or when an apply failed. */
static void pin_byte_release(mms_store *s)
{
    if (s->pin_byte)
        mms__os_ofd_lock(s->lockfd, PIN_BYTE, F_UNLCK, false);
    s->pin_byte = false;
}

/* Open the gate without publishing anything new. */
void mms__gate_reopen(mms_store *s)
{
    struct mms__lock *L = s->L;
    mms__crashpoint("gate.opening");
    union gate_w g = gate_load(L), open = {.f = {GATE_OPENED(g.f.gate), 0}};
    if (g.f.gate & 1) /* ours: nobody else changes the word meanwhile */
        __atomic_store_n(&L->gate_word, open.w, __ATOMIC_SEQ_CST);
    gate_wake(L);
    pin_byte_release(s);
}

/* An apply failed with the gate held: it stays closed, held by nobody
 * alive (MMS__GATE_DEAD), and the next handle that can recovers; unslotted
 * readers that wait for PIN_BYTE find it and refuse (MMS_ERECOVER). */
void mms__gate_fail(mms_store *s)
{
    union gate_w g = gate_load(s->L), dead = {.f = {g.f.gate | GATE_TOUCHED, MMS__GATE_DEAD}};
    __atomic_store_n(&s->L->gate_word, dead.w, __ATOMIC_SEQ_CST); /* ours, as in reopen */
    pin_byte_release(s);
}

/* A reader inside for long may be a process that died inside: its slot
 * would hold every commit back for ever. Probe those (a system call each,
 * so only the old ones) and clear the dead. */
static void reclaim_old_readers(mms_store *s)
{
    uint64_t now = mms__os_mono_ns();
    for (uint32_t i = 0; i < MMS__NSLOTS; i++) {
        const struct mms__rslot *sl = &s->L->slot[i];
        if (i != s->slot && __atomic_load_n(&sl->active, __ATOMIC_ACQUIRE) &&
            now - sl->since_ns > WAIT_SLICE_NS && !byte_held(s, SLOT_BYTE(i)))
            slot_reclaim(s, i);
    }
}

int mms__gate_try(mms_store *s)
{
    assert(s->slot < MMS__NSLOTS && s->pin_tid == 0);
    s->gate_unslotted = false;
    if (!gate_take(s))
        return 0;
    struct mms__lock *L = s->L;
    if (mms__readers_inside(s))
        reclaim_old_readers(s);
    /* With the gate closed: the slots, then unslotted readers' PIN_BYTE
     * (NOTES, Readers that cannot write; one system call). */
    bool slotted = mms__readers_inside(s);
    /* apply.c, P1: also beside slotted readers, which apply when they
     * leave but may leave first (and close) while these stay: the commit
     * was then left to nobody (test_pwqa23 slotted_reader_closes_first). */
    s->gate_unslotted = byte_held(s, PIN_BYTE);
    if (slotted || s->gate_unslotted) {
        mms__gate_reopen(s);
        /* The writer leaves the first commit to wait for the readers: a
         * handle asleep in mms_wait since before it looks every sync_ms
         * from now (read.c), so that a reader that dies inside does not
         * leave it unpublished while the writer is idle. */
        if (mms__writer_held_by(s) && __atomic_load_n(&L->published, __ATOMIC_ACQUIRE) + 1 ==
                                          __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE))
            mms__notify(L);
        return 0;
    }
    gate_touch(L);
    /* Waiters asleep since before this commit look every sync_ms until it
     * is published (read.c), so that an applier that dies in the middle
     * of it is found and its work finished. */
    mms__notify(L);
    return 1;
}
/* Wait once for slot i to leave its read transaction: until it is woken
 * or WAIT_SLICE passes (then a dead owner's slot is reclaimed). */
static void slot_wait_once(mms_store *s, uint32_t i)
{
    struct mms__lock *L = s->L;
    struct mms__rslot *sl = &L->slot[i];
    __atomic_store_n(&L->writer_waiting, 1, __ATOMIC_SEQ_CST);
    int r = mms__os_futex_wait(&sl->active, 1, WAIT_SLICE_NS);
    if (r == -ETIMEDOUT && !byte_held(s, SLOT_BYTE(i)))
        slot_reclaim(s, i);
}

/* Wait until slot i is not pinned (the gate is closed: it cannot pin
 * again meanwhile). */
static void slot_wait(mms_store *s, uint32_t i)
{
    while (__atomic_load_n(&s->L->slot[i].active, __ATOMIC_ACQUIRE))
        slot_wait_once(s, i);
}

/* The first pinned slot other than ours, or UINT32_MAX. */
static uint32_t first_pinned(const mms_store *s, uint32_t from)
{
    for (uint32_t i = from; i < MMS__NSLOTS; i++)
        if (i != s->slot && __atomic_load_n(&s->L->slot[i].active, __ATOMIC_ACQUIRE))
            return i;
    return UINT32_MAX;
}

/* Take the gate, waiting for another applier to open it, or taking it over
 * from one that died holding it after it may have written: true then (the
 * caller finishes its work from the published txn: applying is idempotent,
 * Invariant 4). */
static bool gate_acquire(mms_store *s)
{
    struct mms__lock *L = s->L;
    while (!gate_take(s)) {
        uint32_t g = gate_load(L).f.gate;
        if (!(g & 1))
            continue;
        union gate_w dead;
        if (gate_wait(s, g, &dead) && gate_take_over(s, dead))
            return true;
    }
    return false;
}

int mms__gate_close(mms_store *s)
{
    struct mms__lock *L = s->L;
    if (s->slot < MMS__NSLOTS && __atomic_load_n(&L->slot[s->slot].active, __ATOMIC_ACQUIRE))
        return mms__fail(MMS_ETXN, "this handle is inside a read transaction");
    uint64_t until = mms__os_mono_ns() + GATE_PATIENCE_NS;
    uint32_t last = UINT32_MAX, last_ends = 0;
    bool adopted = false;
    for (;;) {
        adopted |= gate_acquire(s);
        uint32_t i = first_pinned(s, 0);
        if (i == UINT32_MAX)
            break;
        uint32_t ends = __atomic_load_n(&L->slot[i].ends, __ATOMIC_ACQUIRE);
        /* Waiting with the gate open is for one long reader. Hold the gate
         * and wait for everyone inside when patience is over, or when this
         * is not that reader in that same transaction any more (it ended
         * and began another before we could close the gate, or others came
         * in: overlapping readers that would never leave a gap). A gate
         * taken over from a holder that may have written is never opened
         * before its work is done: the files may be half applied (a
         * reader seen here is one about to see the gate closed and leave,
         * or a dead one). */
        if (adopted || mms__os_mono_ns() >= until ||
            (last != UINT32_MAX && (i != last || ends != last_ends))) {
            /* Patience is over: hold the gate and wait for everyone inside. */
            mms__crashpoint("gate.hold");
            for (; i != UINT32_MAX; i = first_pinned(s, i + 1))
                slot_wait(s, i);
            break;
        }
        /* With the gate open the reader may pin again at once: wait for
         * one wake-up only, then try again. */
        last = i;
        last_ends = ends;
        mms__gate_reopen(s);
        slot_wait_once(s, i);
    }
    __atomic_store_n(&L->writer_waiting, 0, __ATOMIC_RELAXED);
    /* Unslotted readers inside (NOTES, Readers that cannot write): wait
     * for them with the gate closed, holding their byte until it opens.
     * Still untouched unless adopted: a death here leaves whole files. */
    if (byte_held(s, PIN_BYTE)) {
        int r = mms__os_ofd_lock(s->lockfd, PIN_BYTE, F_WRLCK, true);
        if (r) {
            if (adopted)
                mms__gate_fail(s); /* not over half-applied files: the next recovers */
            else
                mms__gate_reopen(s);
            return mms__fail(r, "cannot wait for the readers of the lock file: %s",
                             mms_strerror(r));
        }
        s->pin_byte = true;
    }
    gate_touch(L);
    return adopted ? MMS__GATE_ADOPTED : 0;
}

void mms__gate_open(mms_store *s, uint64_t txn)
{
    struct mms__lock *L = s->L;
    mms__crashpoint("gate.publishing"); /* the apply position is stored, not published */
    __atomic_store_n(&L->published, txn, __ATOMIC_RELEASE);
    __atomic_store_n(&L->writer_waiting, 0, __ATOMIC_RELAXED);
    mms__gate_reopen(s);
    mms__notify(L);
}

void mms__notify(struct mms__lock *L)
{
    __atomic_add_fetch(&L->notify, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&L->notify_waiters, __ATOMIC_SEQ_CST))
        mms__os_futex_wake(&L->notify);
}

uint32_t mms__notify_seq(const struct mms__lock *L)
{
    return __atomic_load_n(&L->notify, __ATOMIC_SEQ_CST);
}

/* Sleep until the published txn differs from txn (0, *now = it), or
 * notify moves from seq (mms__notify_seq, read before the caller looked
 * at the lock file's state) -- a publication, or an event after which a
 * waiter may be able to apply (apply.c S7): 0 too, the caller looks again
 * -- or timeout_ms passes (< 0: for ever; -ETIMEDOUT). Before, it slept
 * until a publication: a waiter asleep when an MMS_NOSYNC commit came
 * slept through its sync, and published it at its timeout, or never. */
int mms__wait_change(mms_store *s, uint32_t seq, uint64_t txn, int64_t timeout_ms,
                     uint64_t *now)
{
    struct mms__lock *L = s->L;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : mms__os_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uint64_t p = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
        *now = p;
        if (p != txn)
            return 0;
        uint64_t t = mms__os_mono_ns();
        if (t >= deadline)
            return -ETIMEDOUT;
        uint64_t left = deadline - t;
        /* An unslotted handle cannot count itself in notify_waiters, and
         * so is never woken: it looks again every NAP_MAX_NS. */
        if (s->unslotted && left > NAP_MAX_NS)
            left = NAP_MAX_NS;
        if (!s->unslotted)
            __atomic_add_fetch(&L->notify_waiters, 1, __ATOMIC_SEQ_CST);
        int r = __atomic_load_n(&L->notify, __ATOMIC_SEQ_CST) == seq
                    ? mms__os_futex_wait(&L->notify, seq, left > INT64_MAX ? -1 : (int64_t)left)
                    : 0;
        if (!s->unslotted)
            __atomic_sub_fetch(&L->notify_waiters, 1, __ATOMIC_SEQ_CST);
        if (r && r != -ETIMEDOUT && r != -EINTR)
            return r;
        if (__atomic_load_n(&L->notify, __ATOMIC_ACQUIRE) != seq) {
            *now = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
            return 0;
        }
    }
}

/* ------------------------------------------------------------------------
 * Writer lock (the word `writer`, NOTES)
 * ------------------------------------------------------------------------ */
/* Take the word: free, or held by a handle that is gone. 0 or the holder. */
static uint32_t writer_take(mms_store *s)
{
    uint32_t o = 0, me = mms__owner_id(s);
    if (__atomic_compare_exchange_n(&s->L->writer, &o, me, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_ACQUIRE))
        return 0;
    if (o != me && !mms__owner_alive(s, o) &&
        __atomic_compare_exchange_n(&s->L->writer, &o, me, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_ACQUIRE))
        return 0;
    return o ? o : UINT32_MAX;
}

/* Wait at most timeout_ms for the word (< 0: for ever; 0: take it or fail
 * with MMS_EBUSY at once; past a positive timeout: -ETIMEDOUT). The wait
 * is the futex, woken by writer_unlock; its slices (WAIT_SLICE, or what is
 * left of the timeout) are for probing whether the holder is alive, not a
 * poll for the word. A signal that interrupts the futex only makes the loop
 * look again: the wait goes on until the lock comes or the deadline passes.
 * The word is tried once more after the deadline, so that a lock let go
 * just then is taken rather than timed out. */
int mms__writer_lock_timed(mms_store *s, int timeout_ms)
{
    struct mms__lock *L = s->L;
    if (s->unslotted)
        return mms__fail(MMS_ERDONLY, "this process may not write the store's lock file: its "
                         "handle can only read");
    if (writing_in_thread(s))
        return mms__fail(MMS_EBUSY, "this thread already writes to the store through another "
                         "handle");
    if (timeout_ms != 0 && mms__pinned_by_me(s))
        return mms__fail(MMS_ETXN, "this thread is inside a read transaction on this store; "
                         "waiting for the writer lock could wait for ever");
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : mms__os_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    /* A private lock file (read-only file system) has no one to exclude. */
    for (uint32_t o; !s->L_private && (o = writer_take(s)) != 0;) {
        if (o == mms__owner_id(s))
            return mms__fail(MMS_EBUSY, "this handle holds the writer lock already");
        if (timeout_ms == 0)
            return mms__fail(MMS_EBUSY, "another writer holds the store (pid %u)",
                             L->writer_pid);
        uint64_t now = mms__os_mono_ns();
        if (now >= deadline)
            return mms__fail(-ETIMEDOUT, "another writer held the store for the whole %d ms "
                             "(pid %u)", timeout_ms, L->writer_pid);
        uint64_t slice = deadline - now < WAIT_SLICE_NS ? deadline - now : WAIT_SLICE_NS;
        __atomic_add_fetch(&L->writer_waiters, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&L->writer, __ATOMIC_SEQ_CST) == o)
            mms__os_futex_wait(&L->writer, o, (int64_t)slice);
        __atomic_sub_fetch(&L->writer_waiters, 1, __ATOMIC_SEQ_CST);
    }
    if (__atomic_load_n(&L->writer_active, __ATOMIC_ACQUIRE)) {
        /* The last writer died holding the lock: whatever it was doing,
         * recovery from the journal repairs it. If it died waiting for
         * readers at its backlog bound, the gate it closed has nothing to
         * repair: open it (NOTES, Dead processes). */
        __atomic_fetch_or(&L->recover_needed, 1, __ATOMIC_ACQ_REL);
        union gate_w g = gate_load(L);
        if ((g.f.gate & 1) && !mms__owner_alive(s, g.f.owner))
            gate_reopen_untouched(s, g);
    }
    __atomic_store_n(&L->writer_active, 1, __ATOMIC_RELEASE);
    L->writer_pid = mms__os_pid();
    __atomic_store_n(&s->writer_tid, my_tid(), __ATOMIC_RELAXED); /* read by other threads */
    return 0;
}

void mms__writer_unlock(mms_store *s)
{
    struct mms__lock *L = s->L;
    L->writer_pid = 0;
    __atomic_store_n(&s->writer_tid, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&L->writer_active, 0, __ATOMIC_RELEASE);
    if (s->L_private)
        return;
    __atomic_store_n(&L->writer, 0, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&L->writer_waiters, __ATOMIC_SEQ_CST))
        mms__os_futex_wake(&L->writer);
}

bool mms__writer_held(const mms_store *s)
{
    uint32_t o = __atomic_load_n(&s->L->writer, __ATOMIC_ACQUIRE);
    return o && mms__owner_alive(s, o);
}

bool mms__writer_left_commit(const mms_store *s)
{
    struct mms__lock *L = s->L;
    bool rn = __atomic_load_n(&L->recover_needed, __ATOMIC_ACQUIRE);
    if (!rn && !__atomic_load_n(&L->committing, __ATOMIC_ACQUIRE))
        return false;
    /* A live writer in its commit counts and applies it itself. */
    return !mms__writer_held_by(s) && (rn || !mms__writer_held(s));
}

/* ------------------------------------------------------------------------
 * Alone (compact.c): byte 0 exclusively, taken over this handle's shared
 * hold. Granted only when no other handle has the store open; while it
 * is held, openers wait for byte 0 and so none can map a region file.
 * ------------------------------------------------------------------------ */
bool mms__lock_alone_try(mms_store *s)
{
    if (s->alone)
        return true;
    s->alone = !s->L_private && !s->unslotted &&
               mms__os_ofd_lock(s->lockfd, 0, F_WRLCK, false) == 0;
    return s->alone;
}

int mms__lock_alone(mms_store *s)
{
    if (s->L_private || s->unslotted)
        return mms__fail(MMS_ERDONLY, "this process cannot write the store's lock file");
    int r = mms__os_ofd_lock(s->lockfd, 0, F_WRLCK, false);
    s->alone = r == 0;
    if (r != MMS_EBUSY)
        return r ? mms__fail(r, "cannot lock the lock file: %s", mms_strerror(r)) : 0;
    char who[160];
    uint32_t n = slot_owners(s, who, sizeof who);
    if (n == 0) /* byte 0 held without a slot (NOTES, Readers that cannot write) */
        return mms__fail(MMS_EBUSY, "other handles have the store open: read-only ones of "
                         "processes that may not write its lock file (they hold no slot)");
    /* ... beside slotted ones: the kernel's lock table counts them, beyond
     * those and us. */
    unsigned open = 0, inside;
    if (mms__lock_unslotted(s->lockfd, n + 1, &open, &inside) != 0)
        open = 0;
    char more[120] = "";
    if (open)
        snprintf(more, sizeof more, "; %u without a slot: read-only, of processes that may "
                 "not write its lock file", open);
    return mms__fail(MMS_EBUSY, "%u other handle%s ha%s the store open (%s%s)", n + open,
                     n + open == 1 ? "" : "s", n + open == 1 ? "s" : "ve", who, more);
}

void mms__lock_shared(mms_store *s)
{
    if (!s->L_private && !s->unslotted)
        mms__os_ofd_lock(s->lockfd, 0, F_RDLCK, false); /* a downgrade never waits */
    s->alone = false;
}

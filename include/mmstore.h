/*
 * mmstore.h -- a program's data structures in memory-mapped files.
 *
 * This header is the whole public interface and its manual.
 *
 * A *store* is a directory (by convention NAME.mms) holding region files, a
 * redo journal and a lock file. Opening it maps the regions into memory; no
 * byte is parsed or copied. Region 0 is a heap: mms_alloc() returns space in
 * it, addressed by an mms_ref that is valid in every process and after every
 * restart. A program reads and writes that space through plain pointers
 * (mms_deref()).
 *
 * Writes happen inside a write transaction. A new store's root is null, so
 * the first transaction allocates the counter and makes it the root:
 *
 *     mms_txn_begin(s, 0);
 *     mms_ref r = mms_root(s);
 *     if (!r) { mms_zalloc(s, sizeof(struct counter), &r); mms_root_set(s, r); }
 *     struct counter *c = mms_deref(s, r);
 *     c->n++;                        // a plain store, no "I wrote this" call
 *     mms_txn_commit(s);             // atomic and durable
 *
 * (Every example in this header and in the README is compiled and run by
 * tests/test_examples.c, which also checks that its copies match.)
 *
 * The library finds the pages the transaction changed by asking the kernel
 * which copy-on-write pages of its private mapping exist, journals the changed
 * bytes, makes the journal durable and then applies it to the region files.
 * A crash at any point leaves the last committed state (or the one whose
 * commit was in progress, if its journal record reached the disk), never a
 * mix. mms_txn_abort() discards every store of the transaction, allocations
 * included.
 *
 * Errors: every function that can fail returns int: 0 on success, a negative
 * MMS_E* code below, or a negated errno value (-ENOSPC, -EIO, ...). Use
 * mms_strerror() for the message and mms_errdetail() for what exactly failed.
 *
 * Threads: a handle may be used by one thread at a time; the caller
 * serialises calls on one handle. Different handles are independent.
 *
 * Caveats
 *  - Linux only (it needs /proc/self/pagemap) and 4096-byte pages.
 *  - A raw pointer from mms_deref()/mms_ptr() is valid while the handle is
 *    open: mappings never move, even when a region grows. What it points to
 *    changes when the transaction that allocated it aborts, or after the
 *    object is freed. Store refs, never pointers, inside the store -- unless
 *    it is opened in fixed-address mode (MMS_FIXED), where a pointer into
 *    the store is the same in every process and after every restart (see
 *    "Fixed-address mode and the pointer API").
 *  - Outside a write transaction the mapped data must not be written. With
 *    the guard (MMS_GUARD) such a store faults at once (SIGSEGV). The guard
 *    is on by default where the CPU has memory protection keys (x86 `pku`;
 *    release builds included) and in debug builds; see MMS_GUARD. Without
 *    it the stray store is not detected: it becomes part of the next
 *    transaction, or is discarded by its abort.
 *  - With the key guard (mms_info.guard_kind == MMS_GUARD_KIND_PKEY) rights
 *    are per thread: only the thread inside the write transaction may write;
 *    other threads fault (SEGV_PKUERR). A thread that existed before the
 *    handle was opened, and any signal handler, may not even read the
 *    handle's data until that thread calls mms_info_get() on the handle or
 *    begins a transaction on it (a thread created after the open may read
 *    at once; one created inside a write transaction may write in it too).
 *    A transaction may move to another thread: that thread may store
 *    through pointers after its first call that needs the transaction
 *    (mms_alloc, a table write, ...; mms_txn_commit and mms_txn_abort work
 *    at once), and the first thread stays able to write until it next
 *    ends a transaction on the handle.
 *  - With the mprotect guard (MMS_GUARD_KIND_MPROTECT) rights are the
 *    process's: while a write transaction is open every thread may write
 *    the handle's data, and what another thread stores joins that
 *    transaction; outside one every thread faults.
 *  - MMS_NOSYNC is durable against process crashes only; see its comment.
 *  - A handle is not usable in a child after fork(): calls return MMS_EFORK
 *    (but mms_close, which frees the child's copy of the handle, touches
 *    nothing of the store and returns 0).
 *  - A handle keeps a file descriptor open for each region file it maps
 *    (the heap, each table, each index; for a moment two for a region a
 *    migration or an index rebuild moves to a new file) and up to five more
 *    (the directory, the lock file, the journal, /proc/self/pagemap, a
 *    userfaultfd). So RLIMIT_NOFILE bounds the tables and indexes a process
 *    can have open: past it a call fails with -EMFILE, and mms_strerror()
 *    and the detail say so and name the limit to raise (ulimit -n). A
 *    checkpoint needs no descriptor beyond those it keeps, save one for
 *    each region file it does not map (an old file a migration replaced,
 *    until that checkpoint deletes it).
 *  - A store may be open in any number of handles, in one process or many;
 *    each handle has its own mappings and reader slot (at most 256 handles
 *    per store). Write transactions take a writer lock: one at a time. The
 *    lock belongs to the handle: a transaction may begin on one thread and
 *    commit on another.
 *  - Threads: a handle is used by one thread at a time. For threads that
 *    read while another writes, give each its own handle. The library
 *    starts one thread of its own per write handle that commits with
 *    MMS_NOSYNC (the background sync, see MMS_NOSYNC), and one per handle
 *    whose apply found readers of another user (who may not write the
 *    lock file, see MMS_RDONLY) holding commits back, or whose
 *    background sync left commits unapplied: it applies them once no
 *    such reader is inside (through a handle of its own, opened for the
 *    apply), so that an idle writer's commits are published all the
 *    same; none otherwise.
 *  - Truncating or rewriting region files behind an open handle's back makes
 *    accesses fault (SIGBUS); the library cannot prevent that.
 */
#ifndef MMSTORE_H
#define MMSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MMS_VERSION_MAJOR 0
#define MMS_VERSION_MINOR 1
#define MMS_VERSION_PATCH 0
#define MMS_VERSION_STRING "0.1.0"

/* The version of the library linked ("0.1.0"), which may differ from the
 * MMS_VERSION_STRING of the header a program was compiled with. */
const char *mms_version(void);

/* Version of the on-disk format this library reads and writes. */
#define MMS_FORMAT_VERSION 3

/* ------------------------------------------------------------------------
 * Errors. One table defines every code, its name and its message.
 * ------------------------------------------------------------------------ */
#define MMS_ERRORS(X)                                                          \
    X(MMS_EINVAL, -30900, "invalid argument")                                  \
    X(MMS_ECORRUPT, -30901, "store is corrupt")                                \
    X(MMS_ENOTSTORE, -30902, "not an mmstore store")                           \
    X(MMS_EVERSION, -30903, "store has an unsupported format version")         \
    X(MMS_EBYTEORDER, -30904, "store was written with another byte order")     \
    X(MMS_EABI, -30905, "store was written with another ABI (page size, ref width)") \
    X(MMS_EBUSY, -30906, "store is in use")                                    \
    X(MMS_ETXN, -30907, "a transaction is already active")                     \
    X(MMS_ENOTXN, -30908, "no transaction of the needed kind is active")      \
    X(MMS_ERDONLY, -30909, "store is open read-only")                          \
    X(MMS_ERANGE, -30910, "ref is outside its region")                         \
    X(MMS_EFULL, -30911, "store is full: a region reached its reservation, or no region is left") \
    X(MMS_EPOISONED, -30912, "handle failed an I/O operation; close and reopen it") \
    X(MMS_EFORK, -30913, "handle used in a child process after fork()")        \
    X(MMS_ENOTSUP, -30914, "operation not supported")                          \
    X(MMS_EBADREF, -30915, "ref does not name a live allocation")              \
    X(MMS_ERECOVER, -30916, "store needs recovery, which a read-only open cannot do") \
    X(MMS_ESCHEMA, -30917, "record layout differs from the table's")                 \
    X(MMS_ENOENT, -30918, "no such table or index")                           \
    X(MMS_EREFERENCED, -30919, "record is referred to by another record")      \
    X(MMS_EADDR, -30920, "the store's fixed address range is not available in this process") \
    X(MMS_ENOTFOUND, -30921, "no record has this key")                        \
    X(MMS_EUNIQUE, -30922, "a unique index already holds this key")

enum {
#define MMS__ERR_ENUM(name, code, msg) name = code,
    MMS_ERRORS(MMS__ERR_ENUM)
#undef MMS__ERR_ENUM
    MMS_OK = 0
};

/* Message for an error code (MMS_E* or -errno). Never NULL; static storage. */
const char *mms_strerror(int err);

/* Name of an MMS_E* code ("MMS_ECORRUPT"), or NULL for other values. */
const char *mms_errname(int err);

/* What exactly the last failing call of this thread found wrong, e.g.
 * "journal group at offset 8192: CRC mismatch". Empty string if nothing
 * was recorded. Thread-local storage, overwritten by the next failure
 * that records one: MMS_ENOTFOUND (a find, seek or step of a cursor that
 * meets no entry: an answer, on the lookup path) records none and leaves
 * what an earlier failure recorded. */
const char *mms_errdetail(void);

/* The error code of this thread's last failure: of every failing call of
 * the pointer API (mms_pmalloc() and friends, which return NULL instead of
 * a code), and of every other failing call that recorded a detail. Like
 * errno it is not reset by a call that succeeds; 0 if nothing failed yet. */
int mms_last_error(void);

/* ------------------------------------------------------------------------
 * Refs
 *
 * A ref names a place in a store: region id in the high 16 bits, slot in the
 * low 48. In the heap (region 0) the slot is a byte offset. 0 is the null ref.
 * A ref is valid in every process and across restarts.
 * ------------------------------------------------------------------------ */
typedef uint64_t mms_ref;

/* The header's casts and null pointers: C++'s own forms in C++, so that a
 * C++ program built with -Wold-style-cast or -Wzero-as-null-pointer-constant
 * (and -Werror) can include it and use every macro. */
#ifdef __cplusplus
#define MMS__CAST(T, e) (static_cast<T>(e))
#define MMS__NULLPTR nullptr
#else
#define MMS__CAST(T, e) ((T)(e))
#define MMS__NULLPTR NULL
#endif

#define MMS_REF_NULL MMS__CAST(mms_ref, 0)
#define MMS_SLOT_BITS 48
#define MMS_SLOT_MASK ((UINT64_C(1) << MMS_SLOT_BITS) - 1)
#define MMS_REF_MAKE(region, slot)                                             \
    ((MMS__CAST(mms_ref, region) << MMS_SLOT_BITS) | (MMS__CAST(mms_ref, slot) & MMS_SLOT_MASK))
#define MMS_REF_REGION(r) MMS__CAST(unsigned, MMS__CAST(mms_ref, r) >> MMS_SLOT_BITS)
#define MMS_REF_SLOT(r) MMS__CAST(uint64_t, MMS__CAST(mms_ref, r) & MMS_SLOT_MASK)

/* Largest number of regions in a store (format limit). */
#define MMS_MAX_REGIONS 1024

typedef struct mms_store mms_store;

/* The start of every handle: the base address of each mapped region and
 * the size of its slot unit (1 for the heap, the record size for a table).
 * It is public only so that mms_deref() and mms_rec() can be inline; do not
 * write to it. */
struct mms__view {
    char *base[MMS_MAX_REGIONS];
    uint32_t unit[MMS_MAX_REGIONS];
};

/* Pointer for a heap ref: one load and one add, no checks. r must be a valid
 * non-null ref of this store (from mms_alloc(), mms_root(), or read from the
 * store); anything else gives an invalid pointer. See mms_ptr() for the
 * checked version. The pointer stays valid while the handle is open. */
static inline void *mms_deref(const mms_store *s, mms_ref r)
{
    return MMS__CAST(const struct mms__view *, MMS__CAST(const void *, s))->base[r >> MMS_SLOT_BITS] +
           (r & MMS_SLOT_MASK);
}

/* Typed convenience: MMS_AT(s, struct node, r)->next. */
#define MMS_AT(s, type, r) MMS__CAST(type *, mms_deref((s), (r)))

/* Pointer for a ref to a table record (region = the table, slot = the
 * record's index): two loads, a multiply and an add, no checks. Also right
 * for heap refs (their unit is 1). */
static inline void *mms_rec(const mms_store *s, mms_ref r)
{
    const struct mms__view *v = MMS__CAST(const struct mms__view *, MMS__CAST(const void *, s));
    unsigned id = MMS__CAST(unsigned, r >> MMS_SLOT_BITS);
    return v->base[id] + (r & MMS_SLOT_MASK) * v->unit[id];
}
#define MMS_REC(s, type, r) MMS__CAST(type *, mms_rec((s), (r)))

/* Checked deref: mms_rec()'s pointer (for a heap ref, mms_deref()'s), or
 * NULL. NULL for the null ref is no error (nothing is recorded:
 * mms_last_error() keeps what it was). NULL when r names a region that
 * does not exist or has no records (an index), or points past the
 * region's current size (a table ref: a record not wholly inside it):
 * then mms_last_error() is MMS_ERANGE and mms_errdetail() says which
 * (MMS_EINVAL if s is NULL). */
void *mms_ptr(const mms_store *s, mms_ref r);

/* The ref of a pointer into a mapped region of s: in the heap the byte
 * offset (mms_deref() goes back), in a table the index of the record p
 * points at the start of (MMS_REC() goes back).
 * Errors: MMS_EINVAL if p is NULL, not inside any region of s, or inside a
 * table record but not at its start. */
int mms_ref_of(const mms_store *s, const void *p, mms_ref *out);

/* ------------------------------------------------------------------------
 * Opening and closing
 * ------------------------------------------------------------------------ */

/* Open flags. */
#define MMS_CREATE 0x0001u  /* create the store if it does not exist */
#define MMS_EXCL 0x0002u    /* with MMS_CREATE: fail with -EEXIST if it exists */
/* Map read-only; write transactions fail MMS_ERDONLY. Also opens a store
 * whose files this process may not write (another user's, on a writable
 * file system), while its owner's writer runs or not: such a handle never
 * writes the lock file either (it takes no reader slot, is not listed by
 * mms_readers -- mms_readers_unslotted_path counts such handles -- and its
 * read transactions hold commits back as any
 * reader's do), and what would need a write it refuses with MMS_ERECOVER
 * -- a writer or an apply that died half done, a lock file that is missing
 * or not valid for the store, or, when no handle that can write it has the
 * store open, one left before the system restarted: "the store needs recovery
 * by a process that can write it" (opening it once as its owner does).
 * mms_checkpoint and mms_compact need the writer lock: they fail
 * MMS_ERDONLY there; mms_verify checks the published state (in a read
 * transaction, the journal left out). */
#define MMS_RDONLY 0x0004u
/* Commits do not wait for the journal's sync (one that grew a region still
 * syncs the new space first, as every commit does: fresh data is durable
 * before the journal names it): a commit survives a crash of the process
 * (the kernel still has it); a power loss or kernel crash may lose the
 * commits since the journal was last synced, never consistency: the store
 * opens at an earlier commit, whole: the commits of about the last sync
 * interval (sync_ms, 100 ms by default). (LMDB's MDB_NOSYNC and SQLite's
 * synchronous=OFF may corrupt the database instead.) The journal is synced
 * once the oldest unsynced commit is sync_ms old: in the background, by a
 * thread of the write handle, so also when no call follows the commit (at
 * 1.25 x sync_ms: a busy writer's next commit syncs first); and
 * by the first handle that finds it so -- the writer's next commit, a
 * reader beginning or ending a read transaction, mms_wait -- and at
 * checkpoints and close. The thread starts at the handle's first MMS_NOSYNC
 * commit (if it cannot, that commit fails and writes nothing) and
 * mms_close stops it; it blocks every signal, sleeps without waking while
 * nothing is unsynced and never touches the store's mapped data. A
 * background sync that fails has its error returned by the handle's next
 * call that syncs: the next commit, an empty one too (the handle is then
 * poisoned, as after its own failed sync), mms_checkpoint or mms_close.
 * A failed journal sync, in either mode and by any handle, is final: on
 * Linux a second fdatasync can report success for pages the first one
 * lost, so every later sync of the store's journal, by any handle in any
 * process, fails with the same error (commits then fail and nothing more
 * is published; a begin of either kind that must first recover a poisoned
 * writer's commits fails with it too, as may an open) until every handle
 * has closed the store and it is opened again, which recovers from what
 * the disk holds. A commit reaches the region files,
 * and so readers of other handles, only after its sync (Invariant 3), at
 * the next call that applies (a commit, a read transaction's begin or end;
 * mms_wait looks every sync_ms) or, after a background sync, through the
 * write handle's own thread that applies (see Threads above): they may see
 * it about 1.25 x sync_ms late (mms_read_begin_latest asks for it at
 * once). */
#define MMS_NOSYNC 0x0008u
/* Guard: outside a write transaction the mapped data refuses stores, so a
 * stray store faults at once (SIGSEGV). Two ways, chosen at open
 * (mms_info.guard_kind says which):
 *  - a memory protection key (MMS_GUARD_KIND_PKEY), where the CPU has them
 *    (x86 `pku`, Linux >= 4.9) and the process has one left (15 at most;
 *    each write handle takes one until it closes): the mappings are tagged
 *    once, and a transaction costs two writes of a CPU register, whatever
 *    the store's size. Rights are per thread (see Caveats).
 *  - mprotect() (MMS_GUARD_KIND_MPROTECT): two calls per transaction over
 *    every mapping (about 0.5 ms each on our machines).
 * Defaults: the key guard where a key can be had, in every build; else the
 * mprotect guard in builds without NDEBUG and no guard in release builds.
 * MMS_GUARD asks for a guard: the key, else mprotect. MMS_GUARD_MPROTECT
 * asks for the mprotect guard even where keys work. MMS_NOGUARD turns it
 * off. The environment variable MMS_GUARD=0|1|mprotect wins over the flags
 * (0: off, 1: as MMS_GUARD, mprotect: as MMS_GUARD_MPROTECT). Read-only
 * handles map read-only and take no key. */
#define MMS_GUARD 0x0010u
#define MMS_NOGUARD 0x0020u /* turn the guard off (keys and debug builds too) */
#define MMS_GUARD_MPROTECT 0x0400u /* the mprotect guard, even with keys */
/* When the commits that readers hold back reach max_backlog, mms_txn_commit
 * fails with MMS_EBUSY (the transaction stays open: commit again later, or
 * abort) instead of waiting for those readers to leave. */
#define MMS_BACKLOG_ERROR 0x0040u
/* Fixed-address mode: map the regions at the addresses recorded in the
 * store at its creation, the same in every process, so that plain pointers
 * stored in it stay valid. With MMS_CREATE, a new store records them. See
 * "Fixed-address mode and the pointer API" below. */
#define MMS_FIXED 0x0080u
/* No read-ahead on tables (LMDB's MDB_NORDAHEAD): a table's mapping is
 * advised MADV_RANDOM, so a page fault reads that one page from the disk
 * instead of the kernel's read-around window (read_ahead_kb; 8 MiB on some
 * disks). For random lookups into a store larger than the page cache holds,
 * or a cold process that needs a few records: a cold open's first answer
 * reads a few pages instead of megabytes. Indexes then get no 2 MiB hint
 * either (MMS_NOHUGE). It makes a cold full scan of a
 * table read page by page, many times slower (bench/results/latest.md,
 * "Open + full scan").
 * Warm pages (in the page cache) cost the same either way. Whatever the
 * flag says, mms_open reads the store's header and catalog (region 0)
 * without read-ahead, then gives region 0 the kernel's default back (a cold
 * scan of strings reads the heap in order); a region 0 of at most 256 KiB
 * is read whole instead, one read. The flag belongs to the
 * handle, not to the store. */
#define MMS_NORDAHEAD 0x0100u
/* Bulk appends without the 2 MiB hint. By default a write handle gives
 * the fresh space that an append of at least 2 MiB to a table is about to
 * write (mms_table_append_many: Python's Table.extend, mms import, the
 * recovery tools), widened to whole 2 MiB, the hint MMS_ADVISE_HUGE
 * (mms_advise) before writing it: the page cache then holds those records
 * in 2 MiB folios, and every process that maps them later maps them 2 MiB
 * at a time. The first scan of a table just loaded no longer pays for each
 * new 4 KiB mapping (on a 2-CPU VM 35 to 65 ms more than a warm pass over
 * 80 MB, against 4 to 11 ms in 2 MiB folios; bench/results/python.md), and
 * the bulk append and its commit are faster. The bulk build of an index
 * of at least 2 MiB (mms_index_create) is advised the same way (lookups
 * then map it 2 MiB at a time). Smaller appends and the heap are never
 * advised: a store into fresh space of a clean 2 MiB folio dirties all of
 * it, so a durable one-record append there would write back 2 MiB. The
 * cost that stays: a one-record update of bulk-loaded records dirties the folio holding them,
 * and the next checkpoint writes all of it back (the kernel's read-ahead
 * makes folios up to 2 MiB without the hint too: sparse one-record updates
 * of a 10^7-record table wrote 1.15x to 1.33x the bytes they wrote without
 * it, bench/results/huge_cost.md). MMS_NOHUGE turns the hint off for this
 * handle; MMS_HUGE=0|1 in the environment wins over the flag. Pages already
 * in the page cache keep their size either way.
 *
 * Indexes read back: every handle (read-only ones too) gives the mapping
 * of an index of 2 MiB or more the same hint when it maps it, at open or
 * when the index grows (one system call a mapping; lookups make none), so
 * that an index that left the page cache (dropped
 * caches, reclaim) comes back in 2 MiB folios as its build wrote it, not
 * in the small folios random faults make: after a drop of the caches, 10^6
 * gets at random keys of a 10^7-key covering index took 0.35-0.60 s in the
 * process reading it back against 0.89-1.43 s, and a later process's cold
 * gets ~220 against ~810 ns, with 375 page faults against 6,296 (a loaded
 * machine; bench/results/index.md, "Indexes in 2 MiB folios"). The
 * costs: a cold get reads 2 MiB of the index from the disk (not the
 * kernel's read-around window), and a durable commit that changes a slot
 * writes back its 2 MiB folio, as for a freshly built index. MMS_NOHUGE
 * (MMS_HUGE=0) and MMS_NORDAHEAD turn it off: for random gets into a store
 * bigger than the page cache, use MMS_NORDAHEAD. */
#define MMS_NOHUGE 0x0200u

/* Which guard a handle has (mms_info.guard_kind; see MMS_GUARD). */
enum mms_guard_kind {
    MMS_GUARD_KIND_NONE = 0,     /* stray stores are not caught */
    MMS_GUARD_KIND_MPROTECT = 1, /* mprotect() at every begin and end */
    MMS_GUARD_KIND_PKEY = 2      /* a protection key: one register write */
};

/* How commits find the pages a transaction wrote. */
enum mms_dirty_backend {
    MMS_DIRTY_AUTO = 0,    /* PAGEMAP_SCAN if the kernel has it, else pagemap */
    MMS_DIRTY_SCAN = 1,    /* PAGEMAP_SCAN ioctl (Linux >= 6.7) */
    MMS_DIRTY_PAGEMAP = 2  /* read /proc/self/pagemap */
};

typedef struct mms_options {
    unsigned flags;            /* MMS_CREATE, MMS_RDONLY, ... */
    uint64_t reserve;          /* address space reserved per region: the most a
                                  region can grow to while open (rounded up to
                                  4 MiB; at least its size at open; less when the process runs out
                                  of address space or cannot have that much, as
                                  under valgrind). 0: 256 GiB for the heap,
                                  64 GiB per table, or twice the size at open
                                  if that is more (an open reserves the first
                                  table's 64 GiB with the heap's, in one call,
                                  even before the store has a table). A
                                  range of 1 GiB or more starts on a 1 GiB
                                  boundary (so that commits can skip the GiBs
                                  nothing touched) and keeps the alignment's
                                  slack, 1 GiB in all: the part before the
                                  boundary stays reserved below the region
                                  until it is closed, the part after is room
                                  to grow (given back with the option).
                                  MMS_FIXED: used only when
                                  the store is created, then recorded in it:
                                  the heap's, and a quarter of it per table
                                  (0: 256 GiB and 64 GiB); every later open
                                  of that store, fixed or not, reserves the
                                  recorded lengths */
    uint64_t grow_step;        /* least growth of a region file; 0 = 64 KiB, at most
                                  1 TiB (MMS_EINVAL). A region grows by an eighth of
                                  its size, at least this, at most 256 MiB (or this,
                                  if larger) */
    uint64_t checkpoint_bytes; /* checkpoint when the journal passes this;
                                  0 = 64 MiB */
    unsigned dirty;            /* enum mms_dirty_backend */
    uint64_t max_backlog;      /* bytes of pages a write handle keeps for commits
                                  that readers hold back before a commit waits
                                  for them (or fails, MMS_BACKLOG_ERROR); 0 =
                                  64 MiB. See "Read transactions" below. */
    unsigned sync_ms;          /* MMS_NOSYNC: sync the journal (in the
                                  background too; making commits visible to
                                  other processes) once the oldest unsynced
                                  commit is this old; 0 = 100 ms */
    unsigned reader_limit_ms;  /* report a reader inside for longer than this
                                  that holds commits back (mms_readers,
                                  mms_info); 0 = 1000 ms */
    uint64_t base;             /* MMS_FIXED: the address of region 0. Creating:
                                  where the new store goes (a multiple of
                                  4 MiB); 0 = the default. Opening an existing
                                  store: 0, or the address it records (another
                                  value fails with MMS_EADDR) */
} mms_options;

/* Fill *o with the defaults (all zero). */
void mms_options_init(mms_options *o);

/* Open (and with MMS_CREATE, create) the store in directory path. The first
 * handle to open a store runs recovery: commits whose journal records are
 * complete are applied, a torn last record is discarded. A damaged commit
 * that later durable commits follow is not discarded: the open fails with
 * MMS_ECORRUPT naming it, and `mms recover` salvages the store (README,
 * "A damaged journal is not a torn tail"). o may be NULL (defaults, no
 * create).
 *
 * The environment variables MMS_GUARD=0|1|mprotect and MMS_DIRTY=scan|pagemap
 * override the guard and the backend (used by the tests), and
 * MMS_KEEP_PAGES=N sets how many changed private pages a commit keeps
 * mapped for the next transaction instead of dropping them (default 64;
 * see bench/commit_cost). Any other value of these or of MMS_HUGE (0|1)
 * is an error (MMS_EINVAL naming the variable), not ignored; an empty one
 * counts as unset.
 *
 * Errors: MMS_EINVAL (NULL or empty path, NULL out, unknown flag), -ENOENT (no store and no
 * MMS_CREATE), -EEXIST (MMS_EXCL and it exists), -ENOTDIR (path is a file),
 * MMS_ENOTSTORE (a directory without a store in it), MMS_EVERSION,
 * MMS_EBYTEORDER, MMS_EABI, MMS_ECORRUPT (a damaged header, region or
 * journal; mms_errdetail() names it), MMS_EBUSY (256 handles already open,
 * a lock file of another mmstore version in use, or MMS_RDONLY on a
 * read-only file system while other handles have the store open: alone
 * there, such a handle keeps a private lock state), MMS_ERECOVER (the
 * journal must be replayed and this process cannot write the files, or
 * MMS_RDONLY where this process may not write the lock file and cannot
 * trust it: see MMS_RDONLY),
 * MMS_ENOTSUP (the requested dirty backend does not exist here), MMS_ETXN
 * (this thread is inside a read transaction on another handle of the store
 * while an apply waits for the readers inside: "Read transactions"), MMS_EADDR
 * (MMS_FIXED: an address range of the store is in use in this process, or
 * base is not the store's), -errno. MMS_FIXED on a store created without
 * it, a base (or reserve) that cannot be laid out at creation, or a base
 * without MMS_FIXED, is MMS_EINVAL. On error *out is NULL.
 *
 * A refused create leaves nothing it made: the directory (if it made it),
 * the lock file (if it made it) and the store's files go, whatever step
 * failed (a bad option, a full disk, the lock file, ...); a directory or a
 * file that was there before stays, and so does a store that another
 * handle opened or committed to after this one made it. */
int mms_open(const char *path, const mms_options *o, mms_store **out);

/* Close: aborts an active write transaction, ends an active read
 * transaction, checkpoints, unmaps. Every pointer into the store becomes
 * invalid, and so do s and the table and index handles it gave (they are
 * freed: a call with one afterwards is a use after free, which no error
 * code can report); close the cursors first (mms_cursor_close).
 * mms_close(NULL) is a no-op.
 * Returns the first error met while closing (the handle is freed
 * regardless); a handle already poisoned skips the checkpoint and returns 0,
 * its error having been returned by the call that failed. */
int mms_close(mms_store *s);

/* Give back this process's memory for the store's pages that the file
 * already holds: the page-table entries of every shared mapping of the
 * handle (in a write handle, the fresh space past the committed size:
 * records appended and objects allocated there by this transaction; in a
 * read-only handle, all of every region). The pages stay in the page cache,
 * dirty ones are still written at commit, and the next access maps them
 * again (a minor fault): no data, no pointer and no transaction is changed.
 * The private pages of a write handle (what it changed in committed data,
 * the pages it holds) stay. A bulk load calls it every few megabytes to
 * keep its resident memory flat however large the input (`mms import`
 * does); a reader that scanned a large store, to let its RSS go. Safe at
 * any time, inside a transaction or not. Errors: MMS_EINVAL, MMS_EFORK. */
int mms_release_memory(mms_store *s);

/* ------------------------------------------------------------------------
 * Write transactions
 *
 * One write transaction at a time per handle. Between begin and
 * commit/abort, stores through pointers into the store, mms_alloc(),
 * mms_free() and mms_root_set() are part of the transaction.
 * A call that needs a write transaction fails with MMS_ENOTXN outside one,
 * and on a read-only handle (MMS_RDONLY, which never has one) with
 * MMS_ERDONLY, also where its Errors list MMS_ENOTXN alone -- but for
 * mms_txn_commit and mms_txn_abort, which end one: with none to end they
 * fail MMS_ENOTXN, on a read-only handle too.
 * ------------------------------------------------------------------------ */

/* mms_txn_begin() flag: fail with MMS_EBUSY instead of waiting when another
 * writer holds the store (mms_txn_begin_timed with timeout_ms 0). */
#define MMS_TXN_NOWAIT 0x1u

/* Begin a write transaction. One writer at a time per store, across
 * processes and threads: this waits while another handle writes (or with
 * MMS_TXN_NOWAIT fails with MMS_EBUSY). The writer lock is not fair: a
 * handle that commits and begins again at once may get it back before a
 * waiting one does. If the last writer died, even inside
 * a commit, this takes over every commit its journal holds (the one it
 * wrote and had not counted too) without waiting for readers: those
 * readers hold back become this handle's backlog, as a live writer's
 * commits would (see "Read transactions"); only a handle that died in the
 * middle of writing the region files (no reader is inside then), or a
 * checkpoint that could not sync them (an I/O error: the journal is written
 * into them again, which waits for the readers inside), calls for a
 * recovery from the journal. The handle then sees every commit made so far. The wait sleeps on a futex in the
 * lock file, woken when the writer lets go (and every 10 ms it looks
 * whether the writer is still alive: a writer killed meanwhile lets this
 * one in, which recovers). A signal handler that returns does not end the
 * wait; to make one (Ctrl-C) end it, wait in slices with
 * mms_txn_begin_timed. Same as mms_txn_begin_timed(s, flags,
 * flags & MMS_TXN_NOWAIT ? 0 : -1).
 * Errors: MMS_ETXN (a read or write transaction is active on this handle;
 * or, without MMS_TXN_NOWAIT, this thread is inside a read transaction on
 * another handle of the store -- even when no writer holds the lock:
 * waiting could wait for ever, see "Read transactions"),
 * MMS_EBUSY (MMS_TXN_NOWAIT, or this thread writes through another handle of
 * the store), MMS_ERDONLY, MMS_EPOISONED, MMS_EFORK, MMS_EINVAL (flags);
 * -errno of the journal sync it makes to see another handle's commits
 * (MMS_NOSYNC), a failed background sync's too (see MMS_NOSYNC: the
 * handle is then poisoned). */
int mms_txn_begin(mms_store *s, unsigned flags);

/* mms_txn_begin, waiting at most timeout_ms for the writer lock: negative
 * waits for ever (mms_txn_begin(s, flags)); 0 does not wait
 * (MMS_TXN_NOWAIT: MMS_EBUSY at once, and no MMS_ETXN for a read
 * transaction on another handle, since it cannot wait for itself); a
 * positive timeout waits until the lock comes or the timeout has passed,
 * then fails with -ETIMEDOUT, the handle left outside any transaction (never
 * sooner: it is measured on the monotonic clock, and the lock is tried
 * once more at the end). The wait is the same futex sleep, no polling, and
 * the lock as unfair to it as to any waiter. Every rule of mms_txn_begin
 * holds, its refusals included, which come at once. The timeout bounds
 * the wait for the lock; taking over from a dead writer (which waits for no
 * reader) or a recovery then runs to its end. A signal does
 * not end the wait early either: to stay responsive, wait in short slices
 * (say 100 ms) and look at your flags between them, as the Python binding
 * does for Ctrl-C. flags: 0, or MMS_TXN_NOWAIT with timeout_ms 0.
 * Errors: those of mms_txn_begin; -ETIMEDOUT; MMS_EINVAL (unknown flags, or
 * MMS_TXN_NOWAIT with a timeout other than 0). */
int mms_txn_begin_timed(mms_store *s, unsigned flags, int timeout_ms);

/* Commit: atomic, and durable when it returns 0 (unless MMS_NOSYNC). The
 * next transaction of this handle sees it at once. It never waits for
 * readers: if readers are inside a read transaction, the commit waits in
 * the journal and is applied (made visible to new read transactions) when
 * they have left (see "Read transactions"), unless the commits they hold
 * back reach max_backlog: then this commit waits for them, or with
 * MMS_BACKLOG_ERROR fails with MMS_EBUSY leaving the transaction open.
 * A transaction that changed nothing commits nothing (txn id unchanged),
 * but applies the commits readers held back if they have left (and in
 * MMS_NOSYNC syncs them if a sync is due), as a commit that wrote does.
 * Errors: MMS_ENOTXN; MMS_EBUSY (above); MMS_ETXN at the bound if this
 * thread is inside a read transaction on another handle of the store (it
 * would wait for itself); MMS_ECORRUPT if the transaction overwrote fixed or
 * reserved fields of the store header (magic, version, uuid: a stray store),
 * and -ENOSPC or another -errno from writing the journal:
 * the transaction is aborted, nothing of it is applied, the handle stays
 * usable. If syncing the journal or applying it fails the handle becomes
 * MMS_EPOISONED: whether the transaction committed is decided by the next
 * open (recovery). Either way the transaction is over. */
int mms_txn_commit(mms_store *s);

/* Abort: every store, allocation and free of the transaction is undone.
 * Errors: MMS_ENOTXN. */
int mms_txn_abort(mms_store *s);

/* Id of the last committed transaction this handle's view shows (0 for a
 * new store). */
uint64_t mms_txn_id(const mms_store *s);

/* ------------------------------------------------------------------------
 * Read transactions and change notification
 *
 * Any number of handles, in any processes, read while one writes. Inside a
 * read transaction a handle sees one committed state, whole, and nothing
 * changes under it. Beginning and ending one is a few atomic operations, no
 * system call. Outside a read transaction, data read through a handle may
 * change at any moment.
 *
 * Readers never delay a commit, and a commit never waits for a reader (as
 * in LMDB). A commit is applied to the region files -- which is what
 * readers read -- only when no reader is inside; until then it waits in the
 * journal, and the writing handle reads its own latest state from pages it
 * keeps private. Whoever finds no reader inside applies what waits: the
 * writer at its next commit, the last reader to leave, the next reader to
 * begin (any handle that can write the store's files). So:
 *
 *  - How stale: a new read transaction sees the newest commit that was
 *    applied, i.e. the newest durable one at the last moment no reader was
 *    inside. While an older read transaction stays inside, new ones see the
 *    state it pinned; commits made meanwhile appear, all at once and in
 *    order, when it ends. mms_read_begin_latest waits (with a timeout) for
 *    the commits made before it was called.
 *  - What it costs the writer: each page changed by a commit that waits is
 *    kept in the writing handle, with a copy (its shadow): at most
 *    max_backlog bytes (64 MiB by default) -- or, if the first commit to
 *    wait changed more than that, its pages: the bound is checked when a
 *    commit would join commits that wait already, so a commit is never
 *    refused for its size alone. A commit that would take the backlog
 *    past the bound waits for the readers inside to leave -- new ones wait
 *    too, so that overlapping readers cannot starve it -- then applies the
 *    backlog; or, with MMS_BACKLOG_ERROR, fails with MMS_EBUSY. The
 *    journal also keeps every waiting commit (no checkpoint empties it
 *    meanwhile); the same happens when it passes 4 x checkpoint_bytes +
 *    max_backlog. A commit costs what it changed, plus a compare per page
 *    kept back. If the writer dies while it waits at the bound, a new
 *    reader waiting for it finds it dead (within about 10 ms) and goes on,
 *    seeing the state the readers inside see (the dead writer had applied
 *    nothing). The next writer gets every commit the dead one made, at
 *    once: its mms_txn_begin takes them over from the journal as its own
 *    backlog, waiting for no reader, and they are applied when the
 *    readers inside have left, as any waiting commit. So with a writer
 *    killed anywhere, no reader delays the next one (after an I/O error
 *    syncing the region files, see mms_txn_begin, it does).
 *  - A read transaction may wait while commits are being applied (a copy
 *    of what they changed), never for a writer's transaction or its sync.
 *  - A write handle's own read transactions show its latest commit when it
 *    made the latest one, else the published state.
 *
 * mms_readers() shows each reader's age and how many commits it holds back;
 * a reader inside for longer than reader_limit_ms that holds commits back
 * is flagged there and counted in mms_info().
 *
 * A thread inside a read transaction must not wait for the writer through
 * another handle of the same store: mms_txn_begin (without MMS_TXN_NOWAIT),
 * mms_txn_begin_timed (with a timeout other than 0) and mms_wait return
 * MMS_ETXN then, instead of waiting for ever. Nor for an apply that waits
 * for the readers inside (a writer at max_backlog, mms_checkpoint,
 * mms_verify, mms_compact, the recovery after a handle that died
 * applying), since this
 * thread is one of them: mms_read_begin, mms_read_begin_latest and mms_open
 * of another handle of the store return MMS_ETXN while one waits (end the
 * read transaction, then try again). Open the handles first, and nest
 * read transactions on two handles only where an apply cannot be waiting.
 *
 * Pointers stay valid across transactions; the memory they point to may
 * change between them.
 * ------------------------------------------------------------------------ */

/* Pin the latest published state. If a commit is being applied, waits for
 * it; if its writer died, recovers the store first (which needs write
 * access to its files: MMS_ERECOVER otherwise). Maps regions that grew.
 * Errors: MMS_ETXN (a read or write transaction is active on this handle;
 * or this thread is inside one on another handle of the store while an
 * apply waits for the readers inside, see above), MMS_ERECOVER, MMS_EFULL
 * (a region grew past this handle's reservation), MMS_EFORK, -errno. */
int mms_read_begin(mms_store *s);

/* Begin a read transaction that sees at least every commit made (by any
 * handle) before this call: wait, at most timeout_ms (negative: no limit),
 * for readers that hold commits back to leave, syncing (MMS_NOSYNC) and
 * applying them as soon as they have. A handle whose process cannot write
 * the store's files cannot apply: commits that no reader holds back any
 * more then wait for a handle that can (the writer's next commit, a
 * read transaction's begin or end in such a handle, its mms_wait; for
 * what such readers held back, a thread of the handle that could not
 * apply it, a few ms after they leave), and a timeout says which of
 * the two it waited for. Errors: those of
 * mms_read_begin, -ETIMEDOUT. */
int mms_read_begin_latest(mms_store *s, int timeout_ms);

/* End it. If it was the last reader inside and commits wait to be
 * applied, this handle applies them (when it can write the store's files).
 * Errors: MMS_ENOTXN. */
int mms_read_end(mms_store *s);

/* Wait until a commit after txn is published -- applied, so that a read
 * transaction begun now sees it (mms_txn_id() gives the txn a handle saw) --
 * or timeout_ms passes (negative: no limit). *now (may be NULL) receives
 * the published txn id. A futex in the lock file wakes it; while commits
 * wait to be applied (or are being applied) it also looks every sync_ms
 * whether it can apply them, and finishes the apply of a handle that died
 * applying, as mms_read_begin does (when its process can write the
 * store's files; else it waits for a handle that can). Returns 0, or
 * -ETIMEDOUT, MMS_ETXN (inside a read transaction).
 * Commits become visible in order; a consumer that lags sees the latest
 * txn, not each one in between. */
int mms_wait(mms_store *s, uint64_t txn, int timeout_ms, uint64_t *now);

/* The reader slots of the store's lock file (one per open handle). */
typedef struct mms_reader_info {
    uint32_t pid;       /* owning process */
    int alive;          /* 0: the process is gone (a stale slot) */
    int active;         /* inside a read transaction */
    uint64_t txn;       /* txn pinned by the current (or last) read transaction */
    uint64_t age_ns;    /* time inside the current read transaction */
    uint64_t behind;    /* commits made since it pinned txn (while active) */
    int holding_back;   /* active longer than reader_limit_ms, and commits
                           wait to be applied */
} mms_reader_info;

/* Fill out[0..cap) with the slots in use; *n receives how many there are
 * (which may exceed cap). Errors: MMS_EINVAL, MMS_EFORK. */
int mms_readers(mms_store *s, mms_reader_info *out, size_t cap, size_t *n);

/* The same for the store in the directory path, without opening it: no
 * handle, so no reader slot of its own -- it works when all 256 slots are
 * taken (mms_open then fails with MMS_EBUSY naming the pids that hold
 * them), and it never recovers or writes anything. holding_back uses the
 * default reader_limit_ms (1000 ms). A store that no handle has open has
 * no slots in use (those its dead processes left are wiped by the next
 * open). Errors: MMS_EINVAL,
 * MMS_ENOTSTORE, MMS_EBUSY (a lock file of an incompatible version is in
 * use), -errno. */
int mms_readers_path(const char *path, mms_reader_info *out, size_t cap, size_t *n);

/* Handles that have no reader slot, so that mms_readers and mms_info do
 * not list or count them: those of processes that may not write the
 * store's lock file (another user's store, opened MMS_RDONLY). *open of
 * them have the store open, *inside of those are inside a read
 * transaction (and hold commits back as any reader does). Counted from the
 * kernel's lock table (/proc/locks), which names no process for them; a
 * snapshot, as mms_readers_path is: a handle open (inside) all through
 * the call counts once, one that opens or closes (begins or ends)
 * meanwhile may count or not, and so may a handle in the middle of its
 * open, or one of a process that just ended (the kernel may list its
 * locks a moment after its parent saw it end). The kernel lists the
 * table a page at a time, and any process's lock taken or released
 * between two pages moves its lines: such a listing is read again.
 * Errors: as mms_readers_path, -EAGAIN when the listing kept moving for
 * 100 ms, and -errno when /proc/locks cannot be read. */
int mms_readers_unslotted_path(const char *path, unsigned *open, unsigned *inside);

/* Free the slots of processes that died (also done automatically when a
 * writer waits for one, or when slots run out). *cleared may be NULL. */
int mms_readers_clear_stale(mms_store *s, unsigned *cleared);

/* Checkpoint: sync every region file and empty the journal. Happens by
 * itself when the journal passes checkpoint_bytes and at close.
 * Errors: MMS_ETXN (inside a write or read transaction of this handle, or
 * this thread is inside a read transaction on another handle of the store:
 * it would wait for itself), MMS_ERDONLY, -errno. */
int mms_checkpoint(mms_store *s);

/* ------------------------------------------------------------------------
 * Heap (region 0)
 *
 * Allocation needs a write transaction (MMS_ENOTXN otherwise). Space is
 * 16-byte aligned. Small sizes come from size classes (16 to 2048 bytes),
 * larger ones from page runs; sizes over about 4 MiB get segments of their
 * own. Freed space is reused; an aborted transaction or a crash leaks nothing.
 *
 * The allocator's metadata (lists, page descriptors, slab headers) is heap
 * bytes, so a stray store can damage it. Every call here checks what it
 * reads of it before following it: damage it meets is MMS_ECORRUPT (with
 * mms_errdetail() saying where), never a crash or a read or write outside
 * the heap; mms_verify() finds all of it. A call that failed so may have
 * changed the heap already: abort the transaction.
 * ------------------------------------------------------------------------ */

/* Allocate size bytes (size 0 is taken as 1); *ref receives the ref.
 * The space is not zeroed (mms_zalloc() does that) but for its first 8
 * bytes: a fresh allocation is never a string (mms_str_get() NULL, a STR
 * or BLOB field refuses it), even where a string was freed before.
 * Errors: MMS_ENOTXN (MMS_ERDONLY on a read-only handle), MMS_EINVAL, MMS_EFULL (reservation exhausted),
 * -ENOSPC (the disk is full), -ENOMEM, MMS_ECORRUPT (damaged metadata). */
int mms_alloc(mms_store *s, size_t size, mms_ref *ref);

/* As mms_alloc(), and the space is zeroed. */
int mms_zalloc(mms_store *s, size_t size, mms_ref *ref);

/* Free an allocation. Freeing MMS_REF_NULL does nothing. Freeing a string
 * a live record holds fails the commit (see the tables' values below).
 * Errors: MMS_ENOTXN (MMS_ERDONLY), MMS_EBADREF (not the start of a live
 * allocation, or one of the library's own heap objects (a wrong ref that
 * names the catalog or what a table keeps in the heap: see
 * mms_heap_library_owned): a double free or a wrong ref is refused, the
 * heap is unchanged and the transaction goes on), -ENOMEM (the list of
 * what the transaction freed, which the commit checks, cannot grow: the
 * heap is unchanged), MMS_ECORRUPT (damaged metadata or catalog). Costs a
 * walk of the catalog (tables and their fields, not records) besides the
 * free itself. */
int mms_free(mms_store *s, mms_ref ref);

/* Resize the allocation *ref to size bytes, keeping its contents up to the
 * smaller size; *ref may change. *ref == MMS_REF_NULL allocates.
 * Errors: as mms_alloc() and mms_free() (one of the library's own objects
 * is MMS_EBADREF, even where it would stay in place); MMS_EINVAL for size
 * 0. On error *ref is unchanged and still valid. */
int mms_realloc(mms_store *s, mms_ref *ref, size_t size);

/* Usable size of a live allocation (at least the size asked for).
 * Errors: MMS_EBADREF, MMS_ECORRUPT. Needs no transaction; outside one it
 * answers for the heap as this handle has it mapped, so an allocation in
 * space another handle's commit added since may be MMS_EBADREF until this
 * handle begins a transaction. */
int mms_alloc_size(const mms_store *s, mms_ref ref, size_t *size);

/* Whether ref names one of the library's own heap objects: the catalog,
 * or what a table keeps in the heap (its field list, deleted-record
 * bitmap, index list, null bitmaps). They are live allocations
 * (mms_alloc_size() answers for them) that only the library may free or
 * change: mms_free(), mms_realloc() and mms_str_set() refuse them
 * (MMS_EBADREF), and a store into one through mms_deref() damages the
 * catalog (mms_verify() reports it; the store may not open). For a
 * program that writes through refs it did not make itself (a binding, refs
 * read from a file or a user): check before writing. Returns 1 if it is
 * one, 0 if not (the null ref, a ref to a table record, the application's
 * objects, strings, a ref that names no allocation), MMS_ECORRUPT for a
 * damaged catalog, MMS_EINVAL for a NULL handle. Takes time in proportion
 * to the tables and their fields, never the records (about 5 ns a table
 * of 8 fields with null bitmaps). Needs no transaction; outside one it
 * answers for the catalog as this handle has it mapped (as
 * mms_alloc_size()). */
int mms_heap_library_owned(const mms_store *s, mms_ref ref);

/* ------------------------------------------------------------------------
 * Root: one ref in the store header from which the application finds its
 * data. MMS_REF_NULL in a new store.
 * ------------------------------------------------------------------------ */
mms_ref mms_root(const mms_store *s);

/* ref: MMS_REF_NULL, a heap ref naming the start of a live allocation, or a
 * ref to a live record of a table. Errors: MMS_ENOTXN, MMS_ERANGE (ref
 * outside its region; in a table's region, not a live record; in an
 * index's, which has no records), MMS_EBADREF (a heap ref that is not the
 * start of a live allocation: the store header, allocator pages, freed
 * space, the middle of an object; or one of the library's own objects,
 * mms_heap_library_owned). The commit keeps the rule: one that
 * frees the root's heap object (mms_free, a mms_realloc that moves it,
 * mms_pfree) fails MMS_EBADREF, one that deletes its record
 * MMS_EREFERENCED, and aborts -- unless the root was set again. */
int mms_root_set(mms_store *s, mms_ref ref);

/* ------------------------------------------------------------------------
 * The application's heap objects: what a whole-store dump writes besides
 * the tables (`mms dump DIR --all`), and how its load puts them back where
 * they were, so that refs stored inside them stay valid.
 * ------------------------------------------------------------------------ */
typedef struct mms_heap_obj {
    mms_ref ref;   /* the start of a live heap allocation */
    uint64_t size; /* its usable size (as mms_alloc_size) */
    uint64_t slab; /* objects of up to 2048 bytes: the heap offset of the
                      slab they are cut from (how the allocator laid them
                      out, for mms_heap_place); 0 for larger ones */
} mms_heap_obj;

/* Every live heap allocation the application owns, in heap order: all but
 * the library's own (the catalog and what tables keep in the heap: field
 * descriptors, deletion and null bitmaps, index descriptors) and the
 * strings and blobs that the STR and BLOB fields of live records own.
 * Inside a read or write transaction it is one committed state (or the
 * transaction's own). *objs is malloc'd (free() it), *n its length. Takes
 * time in proportion to the heap and the records of tables with STR or
 * BLOB fields. Errors: MMS_EINVAL, MMS_ECORRUPT (a damaged heap or catalog:
 * mms_verify says more), -ENOMEM. */
int mms_heap_objects(mms_store *s, mms_heap_obj **objs, size_t *n);

/* What mms_verify_heap() finds. Neither count is damage (mms_verify()
 * passes such a store): unreachable objects are a leak, space nothing will
 * give back (mms_compact() keeps them: they are live allocations); a shared
 * string is a record copied whole, whose first delete frees it under the
 * other (mms_verify() then fails: see "Tables"). */
typedef struct mms_heap_check {
    uint64_t objects;           /* the application's objects (mms_heap_objects) */
    uint64_t unreachable;       /* of them, those that nothing refers to */
    uint64_t unreachable_bytes; /* their usable bytes */
    mms_ref first_unreachable;  /* the first of them in heap order; 0: none */
    uint64_t shared;            /* STR/BLOB fields of live records that hold a
                                   string or blob another field holds too */
    mms_ref first_shared;       /* one such string or blob; 0: none */
} mms_heap_check;

/* Look for leaks and shared strings, as of the latest commit (framed as
 * mms_verify is: not inside a transaction, MMS_ETXN). An application object
 * (mms_heap_objects) is reachable when the root, an i64 or u64 field of a
 * live record, or a word (8 bytes, aligned) of a reachable object names a
 * byte of it, as a heap ref or as a pointer (mms_pmalloc): a conservative
 * walk, like a garbage collector's stack scan, so a number that looks like
 * a ref keeps an object reachable (a leak can be missed, never invented),
 * but a ref kept only elsewhere (in a chars field, a string, a blob, outside
 * the store) is not seen: such objects are counted unreachable. Takes time
 * in proportion to the heap and to the records of tables with STR, BLOB,
 * i64 or u64 fields. Errors: MMS_EINVAL, MMS_ETXN, MMS_ECORRUPT (what
 * mms_verify reports), -ENOMEM. `mms verify` prints what it finds. */
int mms_verify_heap(mms_store *s, mms_heap_check *out);

/* Allocate o->size bytes exactly at o->ref, laid out as o->slab says (an
 * object of mms_heap_objects() in another store). Made for a heap that
 * holds nothing else yet -- a new store, before any table is created --
 * with objects placed in increasing ref order; the bytes are not set
 * (write them through mms_deref()). Errors: MMS_ENOTXN, MMS_ERDONLY,
 * MMS_EINVAL (no allocation of that size can start there: another
 * allocator's layout), MMS_EBADREF (the place is taken), MMS_EFULL,
 * -ENOSPC. */
int mms_heap_place(mms_store *s, const mms_heap_obj *o);

/* As mms_heap_place(), and the object becomes a string (or blob) of the
 * len bytes at bytes, as mms_str_new() makes one (the rest of its usable
 * size zero). Errors: as mms_heap_place(); MMS_EINVAL if o->size has no
 * room for len + 9 bytes. */
int mms_heap_place_str(mms_store *s, const mms_heap_obj *o, const void *bytes, size_t len);

/* ------------------------------------------------------------------------
 * Fixed-address mode and the pointer API
 *
 * With MMS_FIXED a store's regions are mapped at addresses recorded in the
 * store when it was created: the same in every process that opens it with
 * MMS_FIXED, writer and readers alike, and after every restart. So a plain
 * C pointer stored in the store stays valid, and C code that knows nothing
 * of mmstore -- a tree, a hash table, a library's own structures --
 * persists unchanged once its allocator is mms_pmalloc(). Its stores are
 * transactional like any other (found by the kernel at commit, undone by an
 * abort or a crash):
 *
 *     mms_txn_begin(s, 0);
 *     struct node *n = mms_pmalloc(s, sizeof *n);
 *     n->value = 42;
 *     n->next = mms_root_ptr(s);     // a plain pointer, kept in the store
 *     mms_root_ptr_set(s, n);
 *     mms_txn_commit(s);
 *
 * Layout. Region 0, the heap, is at the store's base; table region id (1,
 * 2, ...) at base + H + (id - 1) * T, where H is the heap's reservation and
 * T each table's. A region's range is reserved when it is mapped (address
 * space only: no memory, no disk), and the region grows inside it and
 * never moves: the heap can grow to H bytes, a table to T (then MMS_EFULL;
 * a migration whose new layout would not fit fails so and changes nothing).
 * A new store created with MMS_FIXED records:
 *  - H = the reserve option rounded up to 4 MiB, 256 GiB by default, and
 *    T = H / 4 rounded up to 4 MiB (64 GiB by default). A store with n tables takes H + n * T
 *    of address space while it is open (256 GiB + 64 GiB per table by
 *    default), and the next table's range must be free when it is created.
 *    An index is a region too, with a range of T. With the defaults, from
 *    a base of 32 TiB region ~850 reaches the programs near 85 TiB, where
 *    ASLR moves them each run: such a store opens in some runs and fails
 *    MMS_EADDR in others. Many tables and indexes want a smaller reserve.
 *  - base = the base option (a multiple of 4 MiB, base + H at most 128
 *    TiB), by default the first of 32 TiB, 36 TiB, ..., 76 TiB
 *    (0x200000000000 + k * 0x40000000000) whose heap range the creating
 *    process can reserve. On x86-64 Linux that is far from what the kernel
 *    places by itself (programs and their brk heaps below 1 GiB or near 85
 *    TiB, the mmap area and stacks just under 128 TiB, growing down) and
 *    above AddressSanitizer's shadow memory (below 16 TiB).
 * Both are recorded in the store header and never change. Every later open
 * reserves the recorded lengths, with MMS_FIXED or not (the reserve option
 * is ignored), so that a region never grows past its fixed range.
 *
 * Opening with MMS_FIXED:
 *  - Each range is reserved with MAP_FIXED_NOREPLACE, which never maps
 *    over anything: a range that is in use in this process fails the open
 *    with MMS_EADDR, mms_errdetail() naming the region and the range.
 *    Causes: another mapping there (a library's, the program's, another
 *    fixed-mode store laid out over the same range), or another MMS_FIXED
 *    handle of the same store in this process -- one per store and
 *    process; its other handles open without MMS_FIXED. A table created
 *    later whose range is taken fails the same way (in mms_table_open, or
 *    in the read transaction of another process that follows it).
 *  - A store created without MMS_FIXED records no addresses: MMS_EINVAL.
 *    A store does not become a fixed one later.
 *  - A base option at an open must be 0 or the store's recorded base
 *    (MMS_EADDR otherwise): a way for a program with a compiled-in address
 *    to check it.
 * A store created with MMS_FIXED also opens without it: its regions go
 * wherever the kernel puts them, refs work as always, and the pointers in
 * it are numbers that are right only in fixed-mode handles (mms_info()
 * gives the recorded base: p - fixed_base is the heap ref of a heap
 * pointer p). It opens with MMS_FIXED again afterwards: a table or index
 * whose recorded range would pass the end of the address space is refused
 * in either mode (MMS_EADDR), before anything is made.
 *
 * Pointers and refs mix: mms_pmalloc() and mms_alloc() share the heap and
 * its allocator; mms_ref_of(s, p, &r) is the ref of a pointer and
 * mms_deref(s, r) the pointer of a heap ref, in either mode (in fixed mode
 * they subtract and add the recorded base), so mms_free(s, r) frees what
 * mms_pmalloc() returned and mms_pfree(s, mms_deref(s, r)) what mms_alloc()
 * did. A pointer is valid in another process only if both map the store
 * fixed; store refs where a store may be opened without MMS_FIXED.
 *
 * The pointer functions work without MMS_FIXED too, their pointers then
 * valid while the handle is open (like mms_deref()'s). Like mms_alloc()
 * they need a write transaction, and an abort undoes them. On failure they
 * return NULL (mms_pfree: nothing): mms_last_error() gives the code,
 * mms_errdetail() the detail.
 *
 * Caveats
 *  - Address space: a fixed-mode handle holds H + n * T of it at fixed
 *    places. A program that maps something there first (a large
 *    MAP_FIXED mapping, a JIT's code area, ThreadSanitizer or
 *    MemorySanitizer, whose shadow covers most of the address space)
 *    cannot open the store fixed. On a CPU with a smaller address space
 *    than x86-64's 128 TiB, give base at creation.
 *  - ASLR moves what the kernel places (program, libraries, stacks, the
 *    mmap area), never a range a program asks for by address: it does not
 *    move the store, and the store's own addresses are no secret from
 *    whoever can read it. Data whose addresses must stay secret does not
 *    belong in a fixed-mode store.
 *  - Two fixed-mode stores open in one process need ranges that do not
 *    overlap: give base at creation unless the default ones are known to
 *    be apart (the default bases are 4 TiB apart; a store with more than
 *    60 tables at the default reservations spans more).
 *  - fork(): the child inherits the parent's mappings, so opening the store
 *    fixed again in the child fails with MMS_EADDR (after exec() it works).
 *  - A pointer in the store is only a number to the library: nothing stops
 *    code from storing one to freed space, to the stack or to malloc'd
 *    memory. mms_verify_pointers() finds the first kind.
 * ------------------------------------------------------------------------ */

/* size bytes (0 is taken as 1) of the heap, 16-byte aligned, as
 * mms_alloc(): a pointer to them, or NULL (mms_last_error(): MMS_ENOTXN,
 * MMS_ERDONLY, MMS_EFULL (the reservation is used up), -ENOSPC, ...). */
void *mms_pmalloc(mms_store *s, size_t size);

/* n * size zeroed bytes, or NULL: as mms_pmalloc(), and MMS_EINVAL when
 * n * size overflows. */
void *mms_pcalloc(mms_store *s, size_t n, size_t size);

/* As realloc(): the block at p resized to size bytes, its contents kept up
 * to the smaller size; the result may differ from p (which is then freed).
 * p NULL: mms_pmalloc(s, size). On failure NULL, and p is unchanged and
 * still valid: size 0 is MMS_EINVAL (use mms_pfree), a p that is not the
 * start of a live allocation of s's heap, or is one of the library's own
 * objects (mms_heap_library_owned), MMS_EBADREF, and the errors of
 * mms_pmalloc(). */
void *mms_prealloc(mms_store *s, void *p, size_t size);

/* Free the block at p (NULL: nothing). A p that is not the start of a live
 * allocation of s's heap (a double free, a pointer from malloc), or that
 * is one of the library's own objects (mms_heap_library_owned), changes
 * nothing: mms_last_error() is MMS_EBADREF (MMS_ENOTXN outside a write
 * transaction). */
void mms_pfree(mms_store *s, void *p);

/* The root as a pointer: mms_rec() of mms_root() -- into the heap or to a
 * table record -- or NULL for the null root. */
void *mms_root_ptr(const mms_store *s);

/* Make the root p: the start of a live heap allocation or of a table
 * record (NULL: the null root). Errors: MMS_ENOTXN, MMS_EINVAL (p is not
 * inside the store, or inside a record but not at its start), MMS_EBADREF
 * (p is in the heap but not the start of a live allocation), as
 * mms_root_set(). */
int mms_root_ptr_set(mms_store *s, const void *p);

/* ------------------------------------------------------------------------
 * Inspection
 * ------------------------------------------------------------------------ */
typedef struct mms_info {
    uint32_t format_version;
    uint64_t txn_id;          /* last committed transaction */
    uint32_t nregions;
    uint64_t region_size[MMS_MAX_REGIONS];  /* committed bytes per region */
    uint64_t region_file[MMS_MAX_REGIONS];  /* file bytes per region */
    uint64_t journal_bytes;   /* bytes of journal since the last checkpoint */
    uint64_t heap_used;       /* bytes in live allocations (rounded sizes) */
    uint64_t heap_free;       /* bytes free for reuse inside the heap */
    uint64_t heap_objects;    /* live allocations */
    unsigned dirty_backend;   /* the backend in use (enum mms_dirty_backend) */
    int guard;                /* 1 if the guard is on */
    uint32_t writer_pid;      /* process holding the writer lock, 0 = none */
    uint64_t published_txn;   /* the txn readers begin at: applied to the files */
    uint64_t committed_txn;   /* the last commit in the journal (>= published) */
    uint64_t durable_txn;     /* the journal is synced up to this commit */
    uint64_t backlog_bytes;   /* pages this handle keeps for commits not yet applied */
    uint32_t handles;         /* open handles of the store, in all live processes */
    uint32_t active_readers;  /* of which inside a read transaction */
    uint32_t readers_holding_back; /* of which inside longer than reader_limit_ms while
                                      commits wait to be applied */
    /* Where the time of this handle's last commit that wrote something went
     * (all zero before the first). */
    struct mms_commit_stats {
        uint64_t detect_ns;     /* finding the dirty pages (kernel scan, or the list
                                   of commits_unscanned) */
        uint64_t journal_ns;    /* diffing them and writing the journal group */
        uint64_t sync_ns;       /* fdatasync of new data and of the journal */
        uint64_t apply_ns;      /* copying pages into the region files, remapping */
        uint64_t total_ns;      /* the whole mms_txn_commit() call */
        uint64_t pages_dirty;   /* private pages found written (with held_protected:
                                   since the last commit, and a few held pages that
                                   wait to be protected; else every private page) */
        uint64_t pages_changed; /* of which differed from the file */
        uint64_t journal_bytes; /* size of the journal group */
        uint64_t backlog;       /* commits not yet applied when it returned
                                   (readers held them back, or MMS_NOSYNC had
                                   not synced them yet) */
    } last_commit;
    /* Fixed-address mode: the layout recorded in a store created with
     * MMS_FIXED (all 0 for other stores), and whether this handle maps the
     * store there (opened with MMS_FIXED). */
    uint64_t fixed_base;          /* address of region 0 */
    uint64_t fixed_heap_reserve;  /* the heap's reservation */
    uint64_t fixed_table_reserve; /* each table's */
    int fixed;
    /* 1: between commits, the pages this handle holds for commits not yet
     * applied are write-protected (in batches: up to 31 may wait a few
     * commits unprotected, and are compared at each), and the kernel tells
     * the next commit which of them were written, so a commit costs what it
     * wrote, not the backlog (Linux >= 6.7 with userfaultfd; MMS_WP=0 in
     * the environment turns it off). 0: every held page is compared at
     * every commit. */
    int held_protected;
    unsigned guard_kind;      /* enum mms_guard_kind (guard is 1 unless NONE) */
    /* Commits of this handle that found their written pages without a
     * scan of the page tables: the process took no page fault since the
     * commit before began, so only the private pages that commit left
     * writable can have changed, and those are compared. Such a commit
     * costs the same in a store of any size (README, "Commit cost against
     * store size"). Every 64th in a row scans anyway: a write that the
     * kernel makes into this process for another one (ptrace,
     * process_vm_writev), which faults there and not here, is committed at
     * most that many commits later. */
    uint64_t commits_unscanned;
} mms_info;

/* Fill *info. Errors: MMS_EINVAL, MMS_EFORK. */
int mms_info_get(const mms_store *s, mms_info *info);

/* Check the whole store: header, journal, allocator metadata, as of the
 * latest commit. It holds the writer lock while it runs (writers wait).
 * Returns 0 when sound, MMS_ECORRUPT (with a description of the first
 * problem in msg, which is always NUL-terminated when cap > 0) otherwise.
 * Not inside a read or write transaction (MMS_ETXN). In a store with
 * recorded addresses (MMS_FIXED) it checks the layout too (aligned, inside
 * the address space) and, in a fixed-mode handle, that every region is
 * mapped at its address; the pointers stored in the heap are
 * mms_verify_pointers()'s business. */
int mms_verify(mms_store *s, char *msg, size_t cap);

/* A conservative scan for pointers into the store that point nowhere
 * valid, after checking the heap's metadata as mms_verify() does.
 *
 * What is a pointer: every 8-byte aligned word of every live heap
 * allocation (the whole usable size) whose value lies in the store's
 * address range -- from its recorded base to the end of its last table's
 * range; in a store without recorded addresses, the ranges this handle's
 * mappings reserve (meaningful only for pointers this handle stored) --
 * and the root. Each must point inside a live heap allocation (or just past
 * its end) or inside a live record of a table. Reported: a pointer into
 * free heap space, a freed slot, allocator metadata or the store header; a
 * pointer past a region's size (into the reserved, unused part of its
 * range); a pointer to a deleted record; a root that names any of these.
 *
 * Not checked: pointers whose value lies outside that range (to the stack,
 * to malloc'd memory, to another store: nothing tells them from
 * integers); words in table records or not 8-byte aligned; whether a
 * pointer points to the start of what it means, or to the right type; refs.
 * A dangling pointer whose space was freed and then allocated again points
 * into a live allocation and passes. Conservative: an integer that happens
 * to lie in the range is taken for a pointer, so the scan can report a
 * word that is not one (a false alarm) -- and so can bytes of an
 * allocation that the program never wrote, which hold what the space held
 * before, perhaps an old pointer. The pointer functions zero the slack
 * past the size asked for (mms_pmalloc); bytes inside it that the program
 * leaves unwritten (struct padding, a buffer's unused end) are its own to
 * zero, or to allocate with mms_pcalloc().
 *
 * Returns 0 when no word is suspicious (msg then says how many were
 * checked), MMS_ECORRUPT when some are (msg describes the first and gives
 * their number) or the heap is damaged. *count (may be NULL) receives the
 * number of suspicious words. Locks as mms_verify(); errors as
 * mms_verify(). Its cost is a read of every live heap byte. */
int mms_verify_pointers(mms_store *s, char *msg, size_t cap, uint64_t *count);

/* ------------------------------------------------------------------------
 * A store's life: giving space back
 * ------------------------------------------------------------------------ */

/* What mms_compact() did. Disk bytes are the blocks the files of the store
 * directory take (st_blocks), not their lengths. */
typedef struct mms_compact_stats {
    uint64_t disk_before;   /* bytes of disk before */
    uint64_t disk_after;    /* and after */
    uint64_t slots_trimmed; /* deleted records that left the ends of tables */
    uint64_t heap_trimmed;  /* bytes of free units that left the heap's end */
    uint64_t punched;       /* bytes of free heap pages given back (holes) */
    uint64_t truncated;     /* bytes the files' lengths lost: cut from their ends
                               (the journal's too), or old files deleted */
} mms_compact_stats;

/* Compaction in place: give the store's free space back to the file system
 * without moving a live byte -- record indices, heap offsets and so refs
 * do not change. Free heap pages are punched out (holes), deleted records
 * at the end of a table and free space at the end of the heap leave them,
 * and each file is cut to its committed size; the journal is emptied
 * (a checkpoint) and shortened.
 *
 * It needs the store to itself: with any other handle open (another
 * process, or another handle in this one) it fails at once with MMS_EBUSY,
 * and mms_errdetail() names the pids -- it never waits, since a service
 * that keeps the store open would make it wait for ever. To compact a
 * store that stays open, copy it (mms_copy) and switch to the copy. While
 * it runs, other processes that open the store wait for it.
 *
 * A pointer to a record that left a table (its file was cut) stays a
 * readable address; it shows zeros.
 *
 * Crash-safe at any point: a crash leaves the last committed state, with
 * more or less space given back (the first step is an ordinary commit;
 * files are only punched and cut after a checkpoint made it durable).
 * Later allocations allocate the blocks of punched pages again before they
 * are used, so a full disk is -ENOSPC from mms_alloc, never a SIGBUS.
 * Where the file system cannot punch holes, only the tails are cut.
 *
 * st (may be NULL) receives what was done, also on failure (disk_before at
 * least). Not inside a transaction (MMS_ETXN). Errors: MMS_EINVAL,
 * MMS_ERDONLY, MMS_ETXN, MMS_EBUSY, MMS_ECORRUPT (damaged heap metadata;
 * nothing is given back), -ENOSPC and -errno (a failed step after the
 * commit leaves the handle unusable until it is reopened; the store
 * itself is sound). */
int mms_compact(mms_store *s, mms_compact_stats *st);

/* mms_copy() flags. */
#define MMS_COPY_COMPACT 0x1u /* the copy holds live data only (mms_compact on it) */
#define MMS_COPY_FORCE 0x2u   /* replace an existing destination store */

/* What mms_copy() did. */
typedef struct mms_copy_stats {
    uint64_t txn;          /* the commit the copy holds */
    uint64_t regions;      /* region files copied */
    uint64_t bytes_copied; /* data bytes copied (holes are not) */
    uint64_t read_ns;      /* time inside the read transaction */
} mms_copy_stats;

/* Hot copy: write the store's last published state into a new directory
 * dest, which then opens as a normal store of its own and verifies -- a
 * backup while writers keep committing (LMDB's mdb_copy, SQLite's backup
 * API). The state is pinned by a read transaction for as long as the files
 * are read, so the copy is one committed state, whole; the writer is not
 * stopped (its commits wait in the journal meanwhile, and only when its
 * backlog reaches max_backlog does a commit wait for the copy to end --
 * see read transactions above). The state is the published one: a write
 * handle whose own latest commits still wait to be applied (a reader held
 * them back) copies the state before them -- mms_checkpoint() first to copy
 * its latest. The copy keeps the store's uuid, refs and record indices; it
 * is as sparse as the source (holes are not copied).
 *
 * The copy is written into a temporary directory beside dest (dest's name
 * + ".mms-copy-" + pid + "-" + a count of the process's copies, so that
 * threads may copy to one dest at once), synced, and renamed to dest: a crash leaves dest
 * absent (or, with MMS_COPY_FORCE, the store that was there), never half a
 * store; a later copy to the same dest removes the temporary directories
 * of dead processes. An existing dest is refused with -EEXIST unless
 * flags has MMS_COPY_FORCE, which replaces it atomically where the kernel
 * can (renameat2 RENAME_EXCHANGE) -- and only if it is an empty directory
 * or holds a store, never the store being copied (MMS_EINVAL), nor a store
 * that a handle has open (MMS_EBUSY: that handle would go on committing
 * into the removed directory). dest may not be inside the source's
 * directory (MMS_EINVAL).
 * MMS_COPY_COMPACT compacts the copy before it is renamed (mms_compact():
 * free heap pages are not kept, deleted records at the ends of tables and
 * free space at the end of the heap leave them).
 *
 * From outside the library, a store directory may be copied with cp or
 * tar only while no process has it open; while it is open, use this.
 *
 * st (may be NULL) receives what was done. Not inside a transaction of
 * this handle (MMS_ETXN). Errors: MMS_EINVAL, MMS_ETXN, -EEXIST, MMS_EBUSY, MMS_ECORRUPT
 * (a region file shorter than its committed size), -ENOSPC and -errno (the
 * temporary directory is removed; the source is never touched), and the
 * errors of mms_read_begin(). */
int mms_copy(mms_store *s, const char *dest, unsigned flags, mms_copy_stats *st);

/* Remove what killed runs left beside path: the entries of path's parent
 * directory named NAME + tag + PID or NAME + tag + PID-N (NAME: path's last
 * name; PID: decimal, no leading zero) whose process is gone -- not this
 * process, not a live one (kill(PID, 0) fails with ESRCH). A directory goes
 * with the files in it (one level: what a store's directory holds), a file
 * or a symbolic link goes itself (never what the link names). mms_copy()
 * does this with the tag ".mms-copy-" before each copy; the mms tool with
 * ".mms-dump-", ".mms-load-", ".mms-recover-" and ".mms-import-" (the
 * spool file of an import from a pipe). A PID that a new
 * process reuses keeps its leftover until that process is gone.
 * tag must start with ".mms-" (at most 32 bytes, no '/'). Best effort: an
 * entry that cannot be removed stays. removed (may be NULL) receives how
 * many went. Errors: MMS_EINVAL (no path, a bad tag or name), -errno (the
 * parent directory cannot be read). */
int mms_leftovers_remove(const char *path, const char *tag, unsigned *removed);

/* ------------------------------------------------------------------------
 * Tables
 *
 * A table holds fixed-size records of one C struct type, all of them in one
 * region: one contiguous array, so a scan is a loop and record i is at
 * array + i * record_size. A record is named by its index (or by the ref
 * MMS_REF_MAKE(table region, index)); indices never change, not even when
 * the table's layout does. Deleted records leave a slot that a later
 * append reuses; scans skip them with mms_table_live().
 *
 * The schema describes the struct: each field's name, kind, offset and
 * size, taken by the MMS_F_* macros with offsetof/sizeof and checked at
 * compile time (a size or signedness that does not match the kind does not
 * compile, in C11, C++11 and later, and C99 with GCC or Clang; another C99
 * compiler checks sizes only):
 *
 *     struct person { int64_t id; char tag[8]; double score; mms_ref name; mms_ref boss; };
 *     static const mms_field person_fields[] = {
 *         MMS_F_I64(struct person, id),     MMS_F_CHARS(struct person, tag),
 *         MMS_F_F64(struct person, score),  MMS_F_STR(struct person, name),
 *         MMS_F_REF(struct person, boss, "person"),
 *     };
 *     static const mms_schema person_schema = MMS_SCHEMA(struct person, person_fields);
 *
 * Opening a table whose stored layout differs migrates it (in the write
 * transaction; see mms_table_open). Strings and blobs live in the heap
 * (mms_str_new); a record's STR and BLOB fields own theirs: deleting the
 * record frees them. So one string belongs to one record: a record copied
 * whole into another (mms_table_append(t, mms_table_get(t, i), ..), a
 * memcpy between records) shares its strings, and the first delete of
 * either frees them under the other, which mms_verify() then reports.
 * Nothing refuses such a copy yet: give the copy strings of its own
 * (mms_str_new of mms_str_get's bytes).
 *
 * Names. A table's name is 1 to 63 bytes, a field's 1 to 47, and a new one
 * keeps one rule: UTF-8 with no control character (bytes 0x00-0x1f, 0x7f)
 * and no '/', and it does not start with '-'. So a name is one line of
 * `mms` output, one CSV header cell, one JSON string, one Python str and one
 * argument of a command line (spaces and punctuation are allowed: quote
 * them in a shell). Creating a table (its name and its fields' names),
 * renaming one (the new name) and a migration that adds a field (the new
 * field's name) refuse a name that breaks it with MMS_EINVAL, the detail
 * saying what breaks it. Names already in a store are not checked: a store
 * made before the rule (any NUL-terminated bytes) opens, verifies and is
 * read; its tables are found, opened with their stored layout and migrated
 * by the names they have, and mms_table_rename gives one a name that keeps
 * the rule (`mms rename DIR -- -OLD NEW`: "--" ends the options).
 * ------------------------------------------------------------------------ */
/* NULL when name keeps the name rule and is 1 to max bytes (63 for a
 * table, 47 for a field), else what breaks it ("starts with '-'", ...). */
const char *mms_name_fault(const char *name, size_t max);

/* The field kinds, one table (like the error table): X(a, NAME, value,
 * "name", size in bytes (0: any, for chars), class). Class: 'i' signed
 * integer, 'u' unsigned integer, 'f' floating point, 'b' bool, 'c' chars,
 * 'r' ref to a record, 'h' ref to heap bytes the record owns. a is passed
 * through to X unchanged (so a macro can use the table with an argument). */
#define MMS_KINDS(X, a)                                                        \
    X(a, I8, 1, "i8", 1, 'i')                                                  \
    X(a, I16, 2, "i16", 2, 'i')                                                \
    X(a, I32, 3, "i32", 4, 'i')                                                \
    X(a, I64, 4, "i64", 8, 'i')                                                \
    X(a, U8, 5, "u8", 1, 'u')                                                  \
    X(a, U16, 6, "u16", 2, 'u')                                                \
    X(a, U32, 7, "u32", 4, 'u')                                                \
    X(a, U64, 8, "u64", 8, 'u')                                                \
    X(a, F32, 9, "f32", 4, 'f')                                                \
    X(a, F64, 10, "f64", 8, 'f')                                               \
    X(a, BOOL, 11, "bool", 1, 'b')                                             \
    X(a, CHARS, 12, "chars", 0, 'c') /* char[N], NUL-padded */                 \
    X(a, REF, 13, "ref", 8, 'r')     /* mms_ref to a record of the target table */ \
    X(a, STR, 14, "str", 8, 'h')     /* mms_ref to a string in the heap (mms_str_new) */ \
    X(a, BLOB, 15, "blob", 8, 'h')   /* mms_ref to bytes in the heap (mms_str_new) */

enum mms_kind {
#define MMS__KIND_ENUM(a, N, v, name, size, cls) MMS_KIND_##N = v,
    MMS_KINDS(MMS__KIND_ENUM, 0)
#undef MMS__KIND_ENUM
    MMS_KIND_LAST = MMS_KIND_BLOB
};

/* "i8", "chars", ... for a kind; NULL for a value that is not one. */
const char *mms_kind_name(unsigned kind);

/* The kind called name ("i32"), or 0 if there is none. */
unsigned mms_kind_from_name(const char *name);

/* Size in bytes of a field of this kind: 0 for MMS_KIND_CHARS (any size)
 * and for a value that is not a kind. */
uint32_t mms_kind_size(unsigned kind);

/* Its class letter from MMS_KINDS ('i', 'u', 'f', 'b', 'c', 'r', 'h'), or
 * 0 for a value that is not a kind. */
int mms_kind_class(unsigned kind);

typedef struct mms_field {
    const char *name;   /* 1 to 47 bytes, by the name rule ("Names") */
    unsigned kind;      /* enum mms_kind */
    uint32_t offset;
    uint32_t size;
    const char *target; /* MMS_KIND_REF: the table its records are in */
    const void *dflt;   /* the value (size bytes, at most 32) that records
                           created before this field was added get;
                           NULL: zeros (a STR or BLOB field's: NULL or a
                           null ref, MMS_EINVAL otherwise) */
} mms_field;

typedef struct mms_schema {
    uint32_t record_size; /* 1 to MMS_MAX_RECORD bytes */
    uint32_t nfields;     /* 1 to MMS_MAX_FIELDS */
    const mms_field *fields;
} mms_schema;

#define MMS_MAX_FIELDS 1024u
#define MMS_MAX_RECORD (16u << 20)

/* Member m of a T that is not there: for sizeof, decltype and _Generic
 * (not in parentheses: decltype((x.m)) would be a reference type). */
#define MMS__MEMBER(T, m) MMS__CAST(T *, MMS__NULLPTR)->m
#define MMS__MSIZE(T, m) sizeof(MMS__MEMBER(T, m))
/* 0, or a compile-time error when cond is false. */
#define MMS__CHECK0(cond) (0 * sizeof(char[(cond) ? 1 : -1]))
/* Is field m of T a signed integer (signed char, short, int, long, long
 * long), an unsigned one, a float, a double? Plain char and bool are
 * neither signed nor unsigned here. C11 asks _Generic; C++ a traits
 * template (below, in extern "C++", so that it keeps C++ linkage inside
 * this header's extern "C" and a program's own); C99 with GCC or Clang
 * __builtin_types_compatible_p; any other C99 compiler checks sizes only. */
#if defined(__cplusplus)
#define MMS__TRAIT(T, m, what) (mms__field_traits<decltype(MMS__MEMBER(T, m))>::what)
#define MMS__SIGNED(T, m) MMS__TRAIT(T, m, sint)
#define MMS__UNSIGNED(T, m) MMS__TRAIT(T, m, uint)
#define MMS__NOT_SIGNED(T, m) (!MMS__TRAIT(T, m, sint))
#define MMS__IS_F32(T, m) MMS__TRAIT(T, m, f32)
#define MMS__IS_F64(T, m) MMS__TRAIT(T, m, f64)
extern "C++" { /* a template cannot have C linkage */
template <typename U> struct mms__field_traits { enum { sint = 0, uint = 0, f32 = 0, f64 = 0 }; };
template <typename U> struct mms__field_traits<const U> : mms__field_traits<U> {};
template <typename U> struct mms__field_traits<volatile U> : mms__field_traits<U> {};
template <typename U> struct mms__field_traits<const volatile U> : mms__field_traits<U> {};
#define MMS__TRAITS(U, s, u, f, d)                                             \
    template <> struct mms__field_traits<U> { enum { sint = s, uint = u, f32 = f, f64 = d }; };
MMS__TRAITS(signed char, 1, 0, 0, 0)
MMS__TRAITS(short, 1, 0, 0, 0)
MMS__TRAITS(int, 1, 0, 0, 0)
MMS__TRAITS(long, 1, 0, 0, 0)
MMS__TRAITS(long long, 1, 0, 0, 0)
MMS__TRAITS(unsigned char, 0, 1, 0, 0)
MMS__TRAITS(unsigned short, 0, 1, 0, 0)
MMS__TRAITS(unsigned, 0, 1, 0, 0)
MMS__TRAITS(unsigned long, 0, 1, 0, 0)
MMS__TRAITS(unsigned long long, 0, 1, 0, 0)
MMS__TRAITS(float, 0, 0, 1, 0)
MMS__TRAITS(double, 0, 0, 0, 1)
#undef MMS__TRAITS
} /* extern "C++" */
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define MMS__SIGNED(T, m)                                                      \
    _Generic(MMS__MEMBER(T, m), signed char: 1, short: 1, int: 1, long: 1, long long: 1, default: 0)
#define MMS__UNSIGNED(T, m)                                                    \
    _Generic(MMS__MEMBER(T, m), unsigned char: 1, unsigned short: 1, unsigned: 1,     \
             unsigned long: 1, unsigned long long: 1, default: 0)
#define MMS__NOT_SIGNED(T, m) (!MMS__SIGNED(T, m))
#define MMS__IS_F32(T, m) _Generic(MMS__MEMBER(T, m), float: 1, default: 0)
#define MMS__IS_F64(T, m) _Generic(MMS__MEMBER(T, m), double: 1, default: 0)
#elif defined(__GNUC__)
#define MMS__IS(T, m, U) __builtin_types_compatible_p(__typeof__(MMS__MEMBER(T, m)), U)
#define MMS__SIGNED(T, m)                                                      \
    (MMS__IS(T, m, signed char) || MMS__IS(T, m, short) || MMS__IS(T, m, int) ||  \
     MMS__IS(T, m, long) || MMS__IS(T, m, long long))
#define MMS__UNSIGNED(T, m)                                                    \
    (MMS__IS(T, m, unsigned char) || MMS__IS(T, m, unsigned short) ||          \
     MMS__IS(T, m, unsigned) || MMS__IS(T, m, unsigned long) ||                \
     MMS__IS(T, m, unsigned long long))
#define MMS__NOT_SIGNED(T, m) (!MMS__SIGNED(T, m))
#define MMS__IS_F32(T, m) MMS__IS(T, m, float)
#define MMS__IS_F64(T, m) MMS__IS(T, m, double)
#else
#define MMS__SIGNED(T, m) 1
#define MMS__UNSIGNED(T, m) 1
#define MMS__NOT_SIGNED(T, m) 1
#define MMS__IS_F32(T, m) 1
#define MMS__IS_F64(T, m) 1
#endif
#define MMS__F(T, m, kind, ok, target, dflt)                                   \
    { #m, kind, MMS__CAST(uint32_t, offsetof(T, m) + MMS__CHECK0(ok)),                \
      MMS__CAST(uint32_t, MMS__MSIZE(T, m)), target, dflt }
#define MMS_F_I8(T, m) MMS__F(T, m, MMS_KIND_I8, MMS__MSIZE(T, m) == 1 && MMS__SIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_I16(T, m) MMS__F(T, m, MMS_KIND_I16, MMS__MSIZE(T, m) == 2 && MMS__SIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_I32(T, m) MMS__F(T, m, MMS_KIND_I32, MMS__MSIZE(T, m) == 4 && MMS__SIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_I64(T, m) MMS__F(T, m, MMS_KIND_I64, MMS__MSIZE(T, m) == 8 && MMS__SIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_U8(T, m) MMS__F(T, m, MMS_KIND_U8, MMS__MSIZE(T, m) == 1 && MMS__UNSIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_U16(T, m) MMS__F(T, m, MMS_KIND_U16, MMS__MSIZE(T, m) == 2 && MMS__UNSIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_U32(T, m) MMS__F(T, m, MMS_KIND_U32, MMS__MSIZE(T, m) == 4 && MMS__UNSIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_U64(T, m) MMS__F(T, m, MMS_KIND_U64, MMS__MSIZE(T, m) == 8 && MMS__UNSIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_F32(T, m) MMS__F(T, m, MMS_KIND_F32, MMS__IS_F32(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_F64(T, m) MMS__F(T, m, MMS_KIND_F64, MMS__IS_F64(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_BOOL(T, m)                                                       \
    MMS__F(T, m, MMS_KIND_BOOL, MMS__MSIZE(T, m) == 1 && MMS__NOT_SIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_CHARS(T, m) MMS__F(T, m, MMS_KIND_CHARS, MMS__MSIZE(T, m) >= 1, MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_REF(T, m, table)                                                 \
    MMS__F(T, m, MMS_KIND_REF, MMS__MSIZE(T, m) == 8 && MMS__UNSIGNED(T, m), table, MMS__NULLPTR)
#define MMS_F_STR(T, m)                                                        \
    MMS__F(T, m, MMS_KIND_STR, MMS__MSIZE(T, m) == 8 && MMS__UNSIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
#define MMS_F_BLOB(T, m)                                                       \
    MMS__F(T, m, MMS_KIND_BLOB, MMS__MSIZE(T, m) == 8 && MMS__UNSIGNED(T, m), MMS__NULLPTR, MMS__NULLPTR)
/* A field with a default for the records that existed before it was added
 * (checked for size, not signedness):
 *     static const int32_t adult = 18;
 *     static const mms_field age_field =
 *         MMS_F_WITH_DEFAULT(struct person, age, MMS_KIND_I32, &adult); */
#define MMS__KSIZE_X(k, N, v, name, size, cls) (k) == v ? MMS__CAST(uint32_t, size) :
#define MMS__KSIZE(k) (MMS_KINDS(MMS__KSIZE_X, k) 0u)
#define MMS_F_WITH_DEFAULT(T, m, kind, dflt)                                   \
    MMS__F(T, m, kind, MMS__KSIZE(kind) == 0 || MMS__MSIZE(T, m) == MMS__KSIZE(kind), MMS__NULLPTR, dflt)
#define MMS_SCHEMA(T, fields)                                                  \
    { MMS__CAST(uint32_t, sizeof(T)), MMS__CAST(uint32_t, sizeof(fields) / sizeof((fields)[0])), fields }

/* Do a and b describe the same record layout: the same record size and the
 * same fields by name (in any order), each with the same kind, offset, size
 * and, for REF fields, target table? This is the comparison mms_table_open
 * makes (another layout migrates the table). Returns 1 if they do, 0 if not
 * (then why, unless NULL, gets the first difference, e.g. "field score:
 * f64[8] at 16, the other has f32[4] at 16"; NUL-terminated when cap > 0), or
 * MMS_EINVAL for a NULL schema. */
int mms_schema_same(const mms_schema *a, const mms_schema *b, char *why, size_t cap);

typedef struct mms_table mms_table;

#define MMS_TABLE_CREATE 0x1u /* create the table if it does not exist */

/* Open the table called name (1 to 63 bytes; a new one keeps the name rule,
 * "Names" above) with the record layout sc.
 *
 * Made outside any transaction, mms_table_open, mms_table_find and
 * mms_tables run in a read transaction of their own (the published state,
 * as mms_read_begin; its errors too): another handle's commits, tables it
 * created since this handle last looked included, cannot change the
 * catalog under them. (They said "store is corrupt" for a table created
 * since, and now and then during another handle's apply.)
 *
 * - It does not exist: with MMS_TABLE_CREATE it is created (in the current
 *   write transaction), otherwise MMS_ENOENT.
 * - It exists with the same layout (same fields by name, kind, offset, size
 *   and record size): opened.
 * - It exists with another layout: migrated, in the current write
 *   transaction: a new region file is written in the new layout, fields
 *   copied by name, added fields zero or their default, removed fields
 *   dropped (their strings and blobs freed), integers and floats widened
 *   (i8->i16->i32->i64, u8->u16->u32->u64, unsigned to a wider signed,
 *   f32->f64, 8- to 32-bit integers to f64) and char arrays lengthened.
 *   Indices and refs do not change; pointers into the table stay valid
 *   addresses but see the new layout, and zeros past the table's new end
 *   (in this handle at once, in others from their next transaction: reads
 *   there never fault).
 *   A change that could lose data
 *   (narrowing, another kind, another REF target) is refused with
 *   MMS_ESCHEMA and mms_errdetail() lists the differences; the table is
 *   untouched. So is lengthening an indexed chars field past an index
 *   key's 256 bytes (drop the index first). A crash before the commit leaves the old layout; after it,
 *   the new one.
 * Creating or migrating needs a write transaction (MMS_ENOTXN); on a
 * read-only handle a layout mismatch is MMS_ESCHEMA. A REF field's target
 * table must exist (or be this table; MMS_ENOENT), or be "" for a field
 * whose target was dropped (mms_table_drop), as mms_table_schema() gives
 * it: the table opens, and migrates with the field, which still targets no
 * table; a new REF field with the target "" is MMS_EINVAL.
 * *t stays valid until mms_close (the same handle for the same name); the
 * handle of a table whose creation was aborted must not be used again.
 * The handle remembers the layout it was opened with: once another handle
 * (another process, or another mms_open in this one) has migrated the
 * table (or dropped it and created another of that name),
 * mms_table_append and mms_table_append_many through this one fail
 * MMS_ESCHEMA, since they would copy the new record size from a record of
 * the old, and so do finds and cursors of its indexes (a key or covered
 * value of a widened field would be read or written at its new size).
 * Open it again with the layout the program holds (migrating back, in a
 * write transaction), or take mms_table_find's handle. An aborted
 * migration leaves the handle with the layout it had before. A store
 * handle has one table handle per table name (two mms_open of one store
 * have two): the last mms_table_open or mms_table_find of it through that
 * store handle decides. Records read through it (mms_table_get,
 * MMS_REC), field numbers and index keys (a widened field's key is read at
 * its new size) are of the stored layout from the next transaction on: a
 * program that shares a table with one that may migrate it compares
 * mms_table_schema(t) (or mms_tables()' layout_gen) in each transaction. */
int mms_table_open(mms_store *s, const char *name, const mms_schema *sc, unsigned flags,
                   mms_table **t);

/* Open a table with whatever layout it has (tools, dumps): the handle
 * follows the stored layout, appends copy mms_table_schema(t)->record_size
 * bytes from rec. MMS_ENOENT. On failure *t is NULL (as after a failed
 * mms_table_open, once the handle and t are valid). */
int mms_table_find(mms_store *s, const char *name, mms_table **t);

/* The table's stored layout. Field names and targets are owned by the
 * table handle; a REF field's target is the name its table has now, also
 * after another handle renamed it (seen from this handle's next
 * transaction). */
const mms_schema *mms_table_schema(mms_table *t);
const char *mms_table_name(const mms_table *t);

uint64_t mms_table_count(const mms_table *t); /* live records */
uint64_t mms_table_slots(const mms_table *t); /* live + deleted: the array's length */

/* Record 0 of the array (NULL if the table is empty); record i is at
 * (char *)array + i * record_size. Valid until mms_close. */
void *mms_table_array(const mms_table *t);

/* Record i (live or deleted), or NULL if i >= slots. A compare and a
 * multiply: the handle keeps what it needs from the catalog until a table
 * write call, an abort, or a transaction that sees other commits. Outside
 * a read transaction, records another process appended since this handle's
 * last transaction may not be found (NULL). */
void *mms_table_get(const mms_table *t, uint64_t i);

/* Typed convenience: record i as a pointer to type (NULL as above).
 * The cast is not checked: type must be the struct the table's schema
 * describes (the one given to MMS_SCHEMA).
 *     struct person *p = MMS_TABLE_GET(t, struct person, 0);
 *     if (p) p->score += 1; */
#define MMS_TABLE_GET(t, type, i) MMS__CAST(type *, mms_table_get((t), (i)))

/* 1 if record i is live, 0 if deleted or out of range. */
int mms_table_live(const mms_table *t, uint64_t i);

/* Paging hint for len bytes of mapped store memory at p (records from
 * mms_table_array()/mms_table_get(), or any pointer into a region),
 * widened to whole 4096-byte pages. Nothing is read, written or locked; the
 * call costs a system call whatever len is.
 *
 * MMS_ADVISE_HUGE asks the kernel to bring pages of the range that are not
 * yet in the page cache in as 2 MiB folios (Linux transparent huge pages,
 * MADV_HUGEPAGE), and so to map them with one page-table entry per 2 MiB.
 * Whoever maps the file later (any process) maps those folios 2 MiB at a
 * time. Why: the first access to every 4 KiB mapping has a cost of its own
 * (a page fault, and on virtual machines a second-level translation);
 * measured on a 2-CPU KVM guest, a first pass over 80 MB of cached 4 KiB
 * pages took 40 to 80 ms more than a warm pass, over 2 MiB folios about
 * nothing more (bench/results/python.md). MADV_POPULATE_READ, which maps
 * without faults, did not shorten it: the cost is per new 4 KiB mapping.
 * The hint cannot change pages already cached in smaller folios: those keep
 * their size until they leave the page cache. A write handle already gives
 * it to what bulk appends write (MMS_NOHUGE), so a table just loaded is in
 * 2 MiB folios; this call is for data read in from the disk.
 *
 * Errors: MMS_EINVAL (p NULL or an unknown advice), MMS_ENOTSUP (the system
 * has no such hint: no THP, not Linux), -ENOMEM (part of the range is not
 * mapped), -EINVAL (the kernel refused the hint).
 *
 * Caveats
 *  - A cold read of one record then reads up to 2 MiB from the disk (with
 *    MMS_NORDAHEAD too), and a store into a 2 MiB folio through a shared
 *    mapping (how commits apply, and how fresh space is written) dirties,
 *    and writes back, the whole folio on ext4: a durable one-record append
 *    into fresh space in 2 MiB folios wrote 2 MiB per commit (4 KiB
 *    records; 20 KiB without), which is why write handles advise only bulk
 *    appends. Use it for data scanned whole, not for random access to a
 *    store bigger than memory nor for tables updated in place. */
#define MMS_ADVISE_HUGE 1u
int mms_advise(const void *p, uint64_t len, unsigned advice);

/* For fast scans: the deleted-record bitmap. Bit i (bits[i / 64] >> i % 64
 * & 1) set means slot i is deleted; slots at or past *nbits are live (NULL
 * and 0 when nothing was ever deleted). Valid until the next delete or
 * the end of the read transaction.
 *     for (i = 0; i < slots; i++)
 *         if (i >= nbits || !(bits[i / 64] >> (i % 64) & 1))
 *             live++; */
const uint64_t *mms_table_deleted(const mms_table *t, uint64_t *nbits);

/* The ref of record i; MMS_REF_NULL if t is NULL, its table is gone
 * (dropped, or its creation aborted: its region may be another table's)
 * or i is past what a ref can hold (MMS_SLOT_MASK), never the ref of
 * another record. */
mms_ref mms_table_ref(const mms_table *t, uint64_t i);

/* What a record's ref, string and blob fields may hold, and when it is
 * checked. A REF field holds 0 or a ref to a live record of its target
 * table; a STR or BLOB field 0 or a string of this store (mms_str_new).
 * Like a deferred foreign key in SQL, this holds at commit: inside a
 * transaction a record may refer to one appended later, and records that
 * refer to each other may be deleted together. mms_txn_commit checks every
 * record the transaction appended or changed (through the API or by plain
 * stores), and that no live record still refers to a record the
 * transaction deleted -- even if an append reused its slot; a violation
 * fails the commit (MMS_EBADREF or MMS_EREFERENCED, mms_errdetail() names
 * the table, record and field) and aborts the transaction. So a ref never
 * dangles in a committed state, and never comes to name another record
 * unseen. A string or blob a live record holds must not be freed under
 * it: a commit that leaves a live record's STR or BLOB field naming space
 * the transaction freed (mms_free(), mms_pfree(), mms_realloc() moving it
 * -- even if the space was allocated again for something else) fails the
 * same way (MMS_EBADREF naming table, record and field; the transaction
 * aborted), whether or not the record changed. Let a record's string go
 * through the record: mms_str_set() on the field, mms_table_null_set(),
 * mms_table_delete(), or a plain store of another ref into the field (then
 * free the old one). The commit's cost: the records it changed, plus, when
 * it deleted records of a table others refer to, a scan of the REF fields
 * aimed at it, and, when it freed a committed string that no record it
 * changed or deleted let go (one the program keeps outside records, say),
 * a look per freed object into a count of the holders of each string that
 * the handle keeps in memory (21 to 43 bytes per string; it follows the
 * handle's own commits, and is dropped when another handle or process
 * commits). A commit that finds no count scans every table's STR and BLOB
 * fields instead; the next one, if no other commit came in between, scans
 * them to build the count, at several times the cost of the scan.
 * mms_table_drop() keeps the rule too: it refuses to drop a table that
 * live records of others still refer to.
 * Not told apart: a record's string freed, and a new string (mms_str_new)
 * made in its place -- the record then reads the new string, as if it had
 * been stored there; mms_str_set() never does this. */

/* Append one record, a copy of rec (NULL: zeros), reusing the lowest
 * deleted slot if there is one. *index (may be NULL) gets its index. Needs
 * a write transaction. Errors: MMS_ENOTXN, MMS_EFULL, -ENOSPC, MMS_EBADREF
 * (a STR or BLOB field that is not a string of this store, a REF field
 * aimed at another table; nothing is appended), MMS_ESCHEMA (the handle was
 * opened with a layout another handle has migrated since: mms_table_open). */
int mms_table_append(mms_table *t, const void *rec, uint64_t *index);

/* Append n zeroed records at the end (no slot reuse): *first gets the
 * index of the first, *where (may be NULL) a pointer to it, to fill the n
 * records in place. The space is fresh: it is not journaled, only synced
 * at commit. Errors: as mms_table_append. */
int mms_table_append_many(mms_table *t, uint64_t n, uint64_t *first, void **where);

/* Delete record i: its STR and BLOB fields are freed, its missing-value
 * marks cleared, its bytes zeroed, its slot reused by a later append. The
 * refs to it must be gone by the commit (above). Errors: MMS_ENOTXN,
 * MMS_ERANGE (not a live record). */
int mms_table_delete(mms_table *t, uint64_t i);

/* Missing values (SQL NULL; `mms import` stores empty cells so). field is
 * the index of a field in mms_table_schema(t)->fields. Any field of a live
 * record may be marked missing; the mark is kept per field in a bitmap
 * (none until the first mark, so tables without missing values pay
 * nothing), follows the field by name through migrations, and is cleared
 * when the record is deleted. A plain store to the field does not clear it.
 *
 * null_set: mark (null 1) or unmark (0) record i's field. Marking zeroes the
 * field's bytes (a string or blob it owned is freed). Needs a write
 * transaction. Errors: MMS_ENOTXN, MMS_EINVAL (no such field), MMS_ERANGE
 * (not a live record), -ENOSPC. */
int mms_table_null_set(mms_table *t, uint64_t i, uint32_t field, int null);

/* 1 if record i's field is missing, 0 if not (or i is not a live record),
 * MMS_EINVAL for a field that does not exist (or t NULL), MMS_ENOENT for a
 * table that is gone (dropped, or its creation aborted), as the other
 * table calls. */
int mms_table_null(const mms_table *t, uint64_t i, uint32_t field);

/* For scans: the field's bitmap, bit i set = missing; slots at or past
 * *nbits are not (NULL and 0 when none is). Valid until the next mark or
 * the end of the read transaction. */
const uint64_t *mms_table_nulls(const mms_table *t, uint32_t field, uint64_t *nbits);

/* The tables of a store. */
typedef struct mms_table_info {
    char name[64];
    uint32_t region;
    uint32_t record_size;
    uint32_t nfields;
    uint64_t count;      /* live records */
    uint64_t slots;      /* live + deleted */
    uint64_t layout_gen; /* migrations so far */
} mms_table_info;

/* Fill out[0..cap); *n gets the number of tables. Errors: MMS_EINVAL. */
int mms_tables(mms_store *s, mms_table_info *out, size_t cap, size_t *n);

/* Drop the table called name, in the current write transaction: its
 * records, their strings and blobs, its indexes and the regions of both
 * go; an abort brings them back, a crash before the commit leaves them,
 * after the commit they are gone (the region files are deleted at the
 * checkpoint after it, as mms_index_drop's are).
 * The delete rule holds as for mms_table_delete(): while a live record of
 * another table refers to a record of it, or the root does, the drop is
 * refused with MMS_EREFERENCED (mms_errdetail() names the first such
 * record) and nothing changes -- clear those refs first. Its own records
 * may refer to each other. REF fields of other tables that targeted it
 * then target no table (mms_table_schema() gives target ""): they can
 * only hold 0, and mms_verify() reports any other value; mms_table_open
 * takes "" for them. Table handles of
 * it (in this process) must not be used again; its name and its region id
 * may be given to a new table; so may its indexes' (their mms_index
 * handles fail MMS_ENOENT). Other processes' handles of it find it gone
 * from their next transaction (count 0, appends MMS_ENOENT), also when a
 * new table took its region; one given its name is found again by name
 * (mms_table_find, mms_table_open). Pointers into its records stay
 * readable addresses until mms_close, in every handle: they show zeros
 * once the handle has followed the drop (another handle's, at its next
 * transaction), and a new table's records once one takes the region (a
 * handle keeps the address range of a dropped region for the next one of
 * its id). Errors: MMS_ENOTXN, MMS_EINVAL (a bad name),
 * MMS_ENOENT, MMS_EREFERENCED, -ENOMEM. */
int mms_table_drop(mms_store *s, const char *name);

/* Rename table from to to, in the current write transaction (an abort or
 * a crash before the commit keeps the old name). Records, refs and this
 * process's table handles are unchanged (mms_table_name() gives the new
 * name); handles of other processes find the table again by its new name
 * with mms_table_find(). Renaming to the same name does nothing. Errors:
 * MMS_ENOTXN, MMS_EINVAL (from is not 1 to 63 bytes; to breaks the name
 * rule, "Names" above: from need not keep it), MMS_ENOENT (no table from),
 * -EEXIST (a table called to exists). */
int mms_table_rename(mms_store *s, const char *from, const char *to);

/* ------------------------------------------------------------------------
 * Indexes: finding records by key
 *
 * An index on a field of a table finds the records holding a key without
 * a scan. Two kinds:
 *  - hash (MMS_INDEX_HASH): exact match; one or two cache misses.
 *  - ordered (MMS_INDEX_ORDERED): a B+tree; exact match, the first key at
 *    or after a value, ranges in order, both directions (cursors).
 * Either may be unique (MMS_INDEX_UNIQUE): no two live records hold the
 * same key (records whose key is missing are not in it: any number of
 * them may be). One index per field. Each index is a region of its own, so a
 * scan of the table never touches it, and it is part of the store: it
 * changes in the same transactions as its table, and a crash leaves both
 * as of one commit.
 *
 * Keys. Fields of kind i8..i64, u8..u64, f32, f64, bool, ref and chars (up
 * to 256 bytes) can be indexed; STR and BLOB fields cannot yet
 * (MMS_ENOTSUP): index a chars field, or keep a key field beside the
 * string. A key is passed as a pointer to a value of the field's C type
 * (int64_t for i64, double for f64, char[size] for chars: all size bytes,
 * NUL-padded). Order: integers and refs by value; floats by value, with
 * -0.0 equal to +0.0 and every NaN one key, after +infinity; bool false
 * then true; chars by their bytes (memcmp), so "ab" < "abc" < "b".
 *
 * A record whose key field is missing (mms_table_null_set; `mms import`'s
 * empty cell) is not in the index, as SQL's NULL is in no equality or range:
 * finds, counts, covered finds and cursors never give it -- a find of key 0
 * gives the records holding the value 0, not those whose value is missing --
 * and a unique index takes any number of them. Marking a key missing takes
 * its record out at the commit, clearing the mark puts it back under the
 * field's value then (zeros, unless a plain store wrote one: a plain store
 * keeps the mark, and the record stays out). To find the records whose
 * value is missing, scan mms_table_nulls().
 *
 * The index keeps itself true. However a key field was written -- an
 * append, append_many, a delete, a null mark, a plain C store through a
 * pointer -- the commit finds the changed records (from the pages the
 * transaction wrote) and updates every index of the table before it
 * writes the journal: an index never disagrees with its table in a
 * committed state. A migration (mms_table_open) follows the field by
 * name: a removed field's index is dropped, a changed (widened) one is
 * rebuilt, both at the commit (a chars key lengthened past 256 bytes is
 * refused, MMS_ESCHEMA: mms_table_open).
 *
 * Unique indexes refuse a duplicate: mms_table_append fails with
 * MMS_EUNIQUE (mms_errdetail() names the table, field, key and the record
 * holding it) when a live record holds the key as far as the index and
 * the transaction's appends tell; any other duplicate (made by a plain
 * store, append_many, a key changed or a missing mark cleared in the
 * transaction, or an append of a key of zero bytes, which append leaves
 * to the commit as it may be marked missing next) fails the commit with
 * MMS_EUNIQUE, which aborts the transaction.
 *
 * Caveats
 *  - Inside a write transaction an index answers as of the last commit
 *    (for one created in the transaction: as built by mms_index_create,
 *    or empty until the commit builds it, see there): lookups return
 *    only records whose key still matches, and miss records the
 *    transaction gave the key. The commit brings it up to date.
 *  - Lookups read mapped memory only: no system call, in read
 *    transactions of any process. Outside a read transaction (in a handle
 *    that does not write) the index may change while it is read; a
 *    lookup then never crashes, and returns only records holding the key,
 *    but may miss some.
 *  - A hash index suits keys with few duplicates: the records of a key
 *    take adjacent slots, and when such a run, with the runs of other
 *    keys it runs into, passes 4096 slots, the index spreads the runs
 *    over twice the slots, up to 8 times what its entries need; past
 *    that, building or committing fails MMS_ENOTSUP. One key held by
 *    more than about 4000 records does it (10 keys of 3000 records, 100
 *    of 2000 did not; 10 of 4000 did): use an ordered index for such a
 *    field. It holds records below
 *    2^40 - 1 (MMS_ENOTSUP past them). In a read transaction a hash
 *    lookup reads the index only: its slots hold the key and a checked
 *    record index, so no record is read to confirm it.
 *  - A hash index written before its slots had checks (format version 0)
 *    fails MMS_EVERSION; drop it and create it again (doc/FORMAT.md §2.8).
 *  - An index written before missing keys were left out (before
 *    2026-12-06) holds them under their zero bytes. On a field with a
 *    missing-value bitmap its answers are checked against the records (as
 *    in a write transaction: the short hash get is not taken) until the
 *    next commit that writes to the store, which builds it again; one on a
 *    field without is as this rule wants, and is marked by that commit.
 *  - An ordered index does not merge pages emptied by deletes; dropping
 *    and creating it again packs it.
 * ------------------------------------------------------------------------ */
#define MMS_INDEX_HASH 0x0u    /* exact match only */
#define MMS_INDEX_ORDERED 0x1u /* B+tree: ranges and cursors too */
#define MMS_INDEX_UNIQUE 0x2u  /* no two live records hold one key */

/* Create an index on field of t, built once from the records (a bulk
 * build: sorted, then written page by page; at 10^7 records a few
 * seconds). Needs a write transaction. When the transaction has not
 * changed the table before this call, the index is built here and the
 * commit keeps it true as it keeps every index (whatever the transaction
 * does after; if it appends so many records that as many inserts would
 * cost more -- to a hash index, enough to make it grow; to an ordered
 * one, more than 1/10 of the entries it holds, or 1.5x them when the new
 * keys all go after its own -- the commit builds the index again in
 * bulk); lookups in the transaction see it
 * as built, which is the last commit's table. When the transaction did change the table first
 * (appended, deleted, stored into its records, or created or migrated
 * it, as `mms import` does), the build waits for the commit, which
 * builds it from the records then: until the commit the index is empty
 * (lookups find nothing, and a unique index refuses at append only the
 * keys appended after its create; any other duplicate fails the commit).
 * Either way the committed index is the table's.
 * Errors: MMS_ENOTXN, MMS_EINVAL (no such field, bad flags), MMS_ENOTSUP
 * (a field of a kind that cannot be indexed; a hash index over a field
 * with too many equal keys: here, or at the commit for a build that
 * waits for it), -EEXIST (the field has an index already),
 * MMS_EUNIQUE (MMS_INDEX_UNIQUE and two live records hold one key now;
 * the detail names them; nothing is created), MMS_EFULL (no region left),
 * -ENOSPC, -ENOMEM. */
int mms_index_create(mms_table *t, const char *field, unsigned flags);

/* mms_index_create of an index that also covers the field cover: each
 * entry holds a copy of the record's cover value beside the key, so a
 * reader gets the value without reading the record. A hash index's slot
 * holds it: mms_index_find_covered answers with one cache miss (the slot)
 * where a find and a read of the record take two. An ordered index's leaf
 * entries hold it: a cursor reads it with mms_cursor_covered, and a range
 * of n keys reads n entries packed in a few leaf pages instead of n
 * records at random places in the table; mms_index_find_covered on it
 * gives the lowest record's copy. cover: an integer,
 * float, bool, ref or chars field of at most 8 bytes (may be field
 * itself); NULL is mms_index_create. An entry is 8 bytes longer (hash
 * slots 24 bytes, ordered entries 24 for an 8-byte key). The copies are
 * kept true by every path that keeps the keys true (appends, deletes,
 * plain stores to the cover field, aborts, recovery). A migration follows
 * cover by name like field; when it removes cover, or makes it wider than
 * 8 bytes or of a kind not covered, the index keeps its key and covers
 * nothing from that commit on (mms_indexes shows it; covered finds and
 * mms_cursor_covered fail MMS_ENOTSUP). Errors: as mms_index_create;
 * MMS_EINVAL (no field cover), MMS_ENOTSUP (cover of another kind or
 * wider than 8 bytes). */
int mms_index_create_covering(mms_table *t, const char *field, unsigned flags, const char *cover);

/* Drop the index on field of t (its region is deleted after the commit).
 * Needs a write transaction. Errors: MMS_ENOTXN, MMS_ENOENT (no index on
 * that field). Handles of the index (mms_index_open) must not be used
 * after the commit. */
int mms_index_drop(mms_table *t, const char *field);

typedef struct mms_index mms_index;

/* A handle for the index on field of t. *ix stays valid until mms_close
 * (the same handle for the same table and field), but refers to nothing
 * once the index is dropped (calls then fail MMS_ENOENT).
 * Errors: MMS_EINVAL, MMS_ENOENT (no index on that field). */
int mms_index_open(mms_table *t, const char *field, mms_index **ix);

/* The indexes of a table. */
typedef struct mms_index_info {
    char field[48];     /* the indexed field */
    unsigned flags;     /* MMS_INDEX_ORDERED, MMS_INDEX_UNIQUE */
    unsigned key_kind;  /* the field's kind (enum mms_kind) */
    uint32_t key_size;  /* its size in bytes */
    uint32_t region;    /* the index's region */
    uint64_t entries;   /* records in it (the table's live records, less those
                           whose key is missing) */
    uint64_t bytes;     /* size of its region */
    char cover[48];     /* the covered field ("" none: mms_index_create_covering) */
    unsigned cover_kind; /* its kind (enum mms_kind) */
    uint32_t cover_size; /* its size in bytes, 1..8 (0: none) */
} mms_index_info;

/* Fill out[0..cap); *n gets the number of indexes. Errors: MMS_EINVAL,
 * MMS_ECORRUPT (damaged descriptors). */
int mms_indexes(mms_table *t, mms_index_info *out, size_t cap, size_t *n);

/* The first record holding key into *index: for an ordered index the
 * lowest record index, for a hash one any. Cost: a hash index, one probe
 * (in a read transaction the slot alone; elsewhere the record's key is
 * compared too); an ordered one, a descent of its B+tree. A hash index on
 * an 8-byte integer or ref field takes the shortest path (a few dozen
 * instructions besides the probe's cache miss), which matters because
 * gets at random keys overlap their misses only as far as the CPU can
 * keep several in flight. On any error, MMS_ENOTFOUND included, *index is
 * left as it was, for both kinds, in and out of a transaction.
 * Errors: MMS_ENOTFOUND (no live record holds it), MMS_ENOENT
 * (the index was dropped), MMS_ECORRUPT (a damaged index: mms_verify says
 * where), MMS_ESCHEMA (the table handle was opened with a layout another
 * handle has migrated since: mms_table_open), MMS_EINVAL. */
int mms_index_find(mms_index *ix, const void *key, uint64_t *index);

/* Every record holding key: the first cap (for an ordered index in
 * record order) into out, and their number into *n (which may exceed
 * cap). 0 records is not an error. Errors: as mms_index_find, never
 * MMS_ENOTFOUND. */
int mms_index_find_all(mms_index *ix, const void *key, uint64_t *out, size_t cap, size_t *n);

/* mms_index_find on a covering index (mms_index_create_covering) that
 * also gives the record's value of the covered field: its size bytes, as
 * the field's C type, into value; *index (index may be NULL) as
 * mms_index_find. In a read transaction the value is the slot's or leaf
 * entry's copy (of the same commit as the record, so equal to the
 * record's field) and the record is not read: for a hash index, one cache
 * miss for a get of an 8-byte integer or ref key. Elsewhere the record is
 * read (its key compared, as mms_index_find) and the value is the
 * record's field as it is now. On any error, value and *index are left
 * as they were. Errors: as
 * mms_index_find; MMS_ENOTSUP (the index covers no field). */
int mms_index_find_covered(mms_index *ix, const void *key, uint64_t *index, void *value);

/* mms_index_find for n keys at once (keys: n values of the field's C type,
 * one after the other): index[i] gets a record holding keys[i] (as
 * mms_index_find would), or UINT64_MAX when none does; *found (if not
 * NULL) the number found. On a hash index the probes of a batch are
 * started together, so their cache misses overlap instead of following one
 * another: use it when the keys are known ahead (a join, a list of ids).
 * Errors: as mms_index_find, never MMS_ENOTFOUND. */
int mms_index_find_many(mms_index *ix, const void *keys, size_t n, uint64_t *index,
                        size_t *found);

/* Number of records holding key into *n. Errors: as mms_index_find_all. */
int mms_index_count(mms_index *ix, const void *key, uint64_t *n);

/* Read every page of the index once (no system call, nothing changes), so
 * that the lookups after it do not each pay for the first touch of a page
 * of the mapping: a page fault, and on a virtual machine a shadow or nested
 * page-table fill, which is microseconds -- as much as hundreds of lookups.
 * Optional: a process that does few lookups is better off without it. It
 * does not read the table's records (a scan of the table does that), and a
 * later remap of the index (it grew, or another read transaction sees a new
 * file of it) is cold again. Costs about a millisecond per 100 MB of index
 * on our development machine. Errors: as mms_index_find. */
int mms_index_warm(mms_index *ix);

/* Cursors walk an ordered index in key order (then record order). A
 * cursor is not positioned until a seek. It reads the index as the handle
 * sees it: valid for one read transaction (in a write handle: until the
 * next commit or abort); past that, seek again. A step (next, prev,
 * mms_cursor_covered) from a position found before the handle saw another
 * commit fails MMS_ENOTXN and unpositions the cursor (the index may have
 * changed around it); a later transaction that sees the same commit keeps
 * the position, and so does one after a commit of this handle's own that
 * changed no index and no table's catalog entry (plain stores to heap
 * objects or to fields no index holds or covers): the index is as it was. */
typedef struct mms_cursor mms_cursor;

enum mms_seek {
    MMS_SEEK_FIRST, /* the first entry (key is ignored, may be NULL) */
    MMS_SEEK_LAST,  /* the last entry */
    MMS_SEEK_GE,    /* the first entry whose key is >= key */
    MMS_SEEK_GT,    /* ... > key */
    MMS_SEEK_LE,    /* the last entry whose key is <= key */
    MMS_SEEK_LT     /* ... < key */
};

/* Errors: MMS_EINVAL, MMS_ENOTSUP (a hash index has no order), MMS_ENOENT
 * (the index was dropped), -ENOMEM.
 * Free it with mms_cursor_close (before mms_close). */
int mms_cursor_open(mms_index *ix, mms_cursor **c);

/* Position c (enum mms_seek) and return its entry: the record index into
 * *index (if index is not NULL) and, if key_out is not NULL, its key (a
 * value of the field's C type, size bytes) into key_out, as the index
 * holds it: a float key -0.0 comes back as +0.0 and every NaN as the one quiet NaN (they are one key). Errors: MMS_ENOTFOUND (no such entry: the cursor
 * is then unpositioned), MMS_ECORRUPT, MMS_EINVAL, and as mms_index_find
 * MMS_ENOENT (the index was dropped; next and prev too) and MMS_ESCHEMA. */
int mms_cursor_seek(mms_cursor *c, int op, const void *key, uint64_t *index, void *key_out);

/* Move to the next (prev: previous) entry and return it as seek does.
 * MMS_ENOTFOUND past the end (or before the start); the cursor is then
 * unpositioned. MMS_ENOTXN: positioned before the handle saw another
 * commit (above); seek again. */
int mms_cursor_next(mms_cursor *c, uint64_t *index, void *key_out);
int mms_cursor_prev(mms_cursor *c, uint64_t *index, void *key_out);

/* The covered value of the entry c is at (after a seek, next or prev that
 * returned 0), on an index that covers a field (mms_index_create_covering
 * with MMS_INDEX_ORDERED): its size bytes, as the field's C type, into
 * value. In a read transaction the value is the entry's copy (of the same
 * commit as the record, so equal to the record's field) and the record is
 * not read; elsewhere it is the record's field as it is now. Once it is
 * called, the cursor stops fetching the records of the entries ahead of
 * it into the cache (which it does for a reader of records). Errors:
 * MMS_ENOTSUP (the index covers no field), MMS_ENOTFOUND (c is not
 * positioned), MMS_EINVAL. */
int mms_cursor_covered(mms_cursor *c, void *value);

/* Free a cursor. mms_cursor_close(NULL) is a no-op. */
void mms_cursor_close(mms_cursor *c);

/* ------------------------------------------------------------------------
 * Strings and blobs: len bytes in the heap, followed by a NUL that is not
 * counted (so a string reads as a C string when it holds no NUL).
 * ------------------------------------------------------------------------ */

/* Errors: as mms_alloc. */
int mms_str_new(mms_store *s, const void *bytes, size_t len, mms_ref *ref);

/* Pointer to the bytes and (if len is not NULL) their length; NULL for the
 * null ref or a ref that is not a string of this store: one mms_str_new()
 * (or mms_str_set()) made, still live. A plain allocation (mms_alloc) is
 * not one, even when made in a freed string's place. */
const char *mms_str_get(const mms_store *s, mms_ref ref, size_t *len);

/* Replace the string *field refers to (freeing the old one, if any) with
 * a new one. Errors: as mms_str_new and mms_free: MMS_EBADREF when *field
 * is not null and not a live allocation (a string freed already) or is
 * one of the library's own objects (mms_heap_library_owned), and then
 * nothing changes. */
int mms_str_set(mms_store *s, mms_ref *field, const void *bytes, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* MMSTORE_H */

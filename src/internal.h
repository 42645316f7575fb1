/*
 * internal.h -- private declarations shared by the files of src/.
 *
 * On-disk structures live here with _Static_asserts on every offset; their
 * meaning is specified in doc/FORMAT.md, which must change with them.
 * Nothing here is part of the public API; tests may use it.
 *
 * THE LAYERS OF src/, lowest first. A file calls only files of lower layers
 * (and its own); nothing calls up, no two files call each other:
 *
 *   0  error.c crc32c.c schema.c  codes and details; checksums; field kinds,
 *      refset.c                   layouts and conversions; a set of refs
 *   1  os.c                       every system call; fault injection
 *   2  map.c                      region files and their mappings
 *      lock.c                     the lock file; the process's open handles
 *   3  hdr.c                      the store header: read, check, checksum
 *      journal.c                  the redo journal: groups, replay, reset
 *      alloc.c                    the heap allocator of region 0
 *      held.c                     a write handle's private pages and shadows
 *   4  recover.c                  replaying the journal at open or after a
 *                                 dead writer
 *   5  apply.c                    the apply pipeline: syncing (MMS_NOSYNC)
 *                                 and applying commits when no reader is in
 *      catalog.c str.c            the catalog of tables; strings and blobs
 *   6  index.c                    hash and ordered indexes: their regions,
 *                                 builds, upkeep at commit, lookups, verify
 *      heapobj.c                  the application's heap objects: listing
 *                                 them, placing them (dump and load)
 *   7  table.c                    tables: records, creation, migration
 *   8  view.c                     what a handle's mappings show; rebuilding
 *      lookup.c                   the index API: handles, finds, cursors
 *   9  txn.c                      commit, abort, checkpoint
 *      read.c                     read transactions, waiting
 *  10  store.c                    open, close, refs and root, info, verify
 *      compact.c                  giving free space back to the file system
 *  11  pmem.c                     the pointer API: malloc-shaped allocation,
 *                                 the root as a pointer, the pointer scan
 *      copy.c                     hot copy into a new directory
 *
 * Each file's opening paragraph names its layer and what it must never do.
 * The declarations below follow the same order.
 */
#ifndef MMS_INTERNAL_H
#define MMS_INTERNAL_H

#define _GNU_SOURCE 1
#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "mmstore.h"

/* ------------------------------------------------------------------------
 * Format constants (doc/FORMAT.md)
 * ------------------------------------------------------------------------ */
#define MMS__PAGE 4096u
#define MMS__PAGE_SHIFT 12
#define MMS__SEG_SHIFT 22                      /* 4 MiB segments */
#define MMS__SEG ((uint64_t)1 << MMS__SEG_SHIFT)
#define MMS__SEG_PAGES (MMS__SEG / MMS__PAGE)  /* 1024 */
#define MMS__HDR_PAGES 5                       /* page 0 + 4 pages of region table */
#define MMS__HDR_BYTES (MMS__HDR_PAGES * MMS__PAGE)
#define MMS__DESC_PAGES 4                      /* 1024 descriptors of 16 bytes */
/* Region files grow in multiples of this; a new one (region 0 too) is this long. */
#define MMS__GROW_ALIGN ((uint64_t)64 << 10)
#define MMS__GROW_STEP_MAX ((uint64_t)1 << 40) /* mms_options.grow_step: 1 TiB */
#define MMS__NCLASS 24
#define MMS__NBIN 22
#define MMS__MAX_SMALL 2048u

#define MMS__MAGIC UINT64_C(0x3145524f54534d4d)   /* bytes "MMSTORE1" when little-endian */
#define MMS__JMAGIC UINT64_C(0x314c4e524a534d4d)  /* bytes "MMSJRNL1" */
#define MMS__JVERSION 1u
#define MMS__JSLOT 512u                           /* journal header slot size */
#define MMS__JDATA 4096u                          /* first group offset */

/* ABI fingerprint bytes. */
#define MMS__ABI_LE 1
#define MMS__ABI_BE 2

struct mms__abi {
    uint8_t endian;     /* MMS__ABI_LE / MMS__ABI_BE */
    uint8_t ref_bits;   /* 64 */
    uint8_t slot_bits;  /* 48 */
    uint8_t page_shift; /* 12 */
    uint8_t seg_shift;  /* 22 */
    uint8_t pad[3];
};
_Static_assert(sizeof(struct mms__abi) == 8, "abi size");

/* Fixed-address mode (MMS_FIXED): where every region of the store is
 * mapped, recorded at creation and never changed. Region 0 (the heap) at
 * base, region id >= 1 (a table) at base + heap + (id - 1) * table, each
 * reserved for its length and no more: regions grow inside it and never
 * move. All zero: the store has no recorded addresses. */
struct mms__fixed {
    uint64_t base;  /* address of region 0 */
    uint64_t heap;  /* bytes of address space for region 0 */
    uint64_t table; /* bytes of address space for each table region */
};
_Static_assert(sizeof(struct mms__fixed) == 24, "fixed size");
/* Fixed addresses stay below this: the user address space of x86-64 with
 * 4-level page tables (and of every 48-bit configuration of other CPUs). */
#define MMS__ADDR_END ((uint64_t)1 << 47)

static inline uint64_t mms__fixed_addr(const struct mms__fixed *f, uint32_t id)
{
    return f->base + (id ? f->heap + (uint64_t)(id - 1) * f->table : 0);
}
static inline uint64_t mms__fixed_len(const struct mms__fixed *f, uint32_t id)
{
    return id ? f->table : f->heap;
}

/* Store header: page 0 of region 0. */
struct mms__hdr {
    uint64_t magic;          /* 0 */
    uint32_t version;        /* 8 */
    uint32_t page_size;      /* 12 */
    struct mms__abi abi;     /* 16 */
    uint8_t uuid[16];        /* 24 */
    uint64_t txn_id;         /* 40 */
    uint64_t root;           /* 48 */
    uint64_t catalog;        /* 56 */
    uint32_t nregions;       /* 64 */
    uint32_t hdr_pages;      /* 68 */
    uint64_t created_ns;     /* 72 */
    uint64_t live_bytes;     /* 80 */
    uint64_t live_count;     /* 88 */
    uint64_t free_bytes;     /* 96 */
    uint32_t free_units;     /* 104: first free unit run (segment index), 0 = none */
    uint32_t nclass;         /* 108 */
    uint32_t class_head[32]; /* 112: first slab with a free slot, per class */
    uint32_t bin_head[24];   /* 240: first free span, per bin */
    struct mms__fixed fixed; /* 336: fixed-address layout, all 0 = none; never changes */
    uint8_t reserved[4088 - 360];
    uint32_t crc;            /* 4088: crc32c of [0,4088) and the used region entries */
    uint32_t pad;            /* 4092 */
};
_Static_assert(sizeof(struct mms__hdr) == MMS__PAGE, "hdr size");
_Static_assert(offsetof(struct mms__hdr, txn_id) == 40, "hdr txn_id");
_Static_assert(offsetof(struct mms__hdr, root) == 48, "hdr root");
_Static_assert(offsetof(struct mms__hdr, nregions) == 64, "hdr nregions");
_Static_assert(offsetof(struct mms__hdr, live_bytes) == 80, "hdr live_bytes");
_Static_assert(offsetof(struct mms__hdr, free_units) == 104, "hdr free_units");
_Static_assert(offsetof(struct mms__hdr, class_head) == 112, "hdr class_head");
_Static_assert(offsetof(struct mms__hdr, bin_head) == 240, "hdr bin_head");
_Static_assert(offsetof(struct mms__hdr, fixed) == 336, "hdr fixed");
_Static_assert(offsetof(struct mms__hdr, crc) == 4088, "hdr crc");

/* Region table entry (pages 1..4 of region 0). */
enum { MMS__RK_NONE = 0, MMS__RK_HEAP = 1, MMS__RK_TABLE = 2, MMS__RK_INDEX = 3 };
struct mms__rent {
    uint64_t size; /* committed bytes */
    uint32_t gen;  /* file generation: file name is region-<id>-<gen> */
    uint32_t kind; /* MMS__RK_* */
};
_Static_assert(sizeof(struct mms__rent) == 16, "rent size");
_Static_assert(MMS_MAX_REGIONS * sizeof(struct mms__rent) == 4 * MMS__PAGE, "rtab");

/* Page descriptor: 1024 of them at the start of each normal segment
 * (after the header pages in segment 0). desc[0] describes the segment. */
enum {
    MMS__D_UNUSED = 0,
    MMS__D_META = 1,       /* header or descriptor page */
    MMS__D_FREE_HEAD = 2,  /* first page of a free span; len = pages */
    MMS__D_FREE_CONT = 3,  /* other page of a free span; last one: len = back offset */
    MMS__D_LARGE_HEAD = 4, /* first page of a large allocation; len = pages */
    MMS__D_LARGE_CONT = 5,
    MMS__D_SLAB_HEAD = 6,  /* first page of a slab; len = pages, cls = class */
    MMS__D_SLAB_CONT = 7,  /* len = back offset to the head */
    /* segment kinds, only in desc[0] */
    MMS__S_NORMAL = 16,
    MMS__S_HUGE = 17,      /* len = units, aux = object size */
    MMS__S_FREE = 18       /* len = units, aux = next | prev << 32 (segment ids) */
};
/* Descriptor flags. HOLES, on a FREE_HEAD descriptor or an S_FREE segment
 * descriptor: compaction may have given the pages of this free span (every
 * page of a free unit run but each unit's first) back to the file system,
 * so the allocator allocates their blocks (os fill) before it hands them
 * out -- a full disk is then -ENOSPC from mms_alloc, never a SIGBUS when a
 * commit copies the pages into the file (doc/FORMAT.md 2.3). */
#define MMS__DF_HOLES 0x1u
struct mms__desc {
    uint8_t kind;
    uint8_t cls;
    uint16_t flags;   /* MMS__DF_* */
    uint32_t len;
    uint32_t next; /* list links: global page numbers (or segment ids) */
    uint32_t prev;
};
_Static_assert(sizeof(struct mms__desc) == 16, "desc size");
_Static_assert(MMS__SEG_PAGES * sizeof(struct mms__desc) == MMS__DESC_PAGES * MMS__PAGE,
               "desc table");

/* Slab header at the start of a slab's first page. */
struct mms__slab {
    uint16_t cls;
    uint16_t nslots;
    uint16_t nfree;
    uint16_t first; /* byte offset of slot 0 from the slab start */
    uint32_t hint;  /* bitmap word to search first */
    uint32_t magic; /* MMS__SLAB_MAGIC */
    uint64_t bitmap[];
};
#define MMS__SLAB_MAGIC 0x42414c53u /* "SLAB" */
_Static_assert(sizeof(struct mms__slab) == 16, "slab size");

/* The catalog: a heap object the store header points to (hdr->catalog). */
#define MMS__CAT_MAGIC 0x4c544143u /* "CATL" */
#define MMS__MAX_FIELDS MMS_MAX_FIELDS
#define MMS__NAME_MAX 63u       /* a table's name, without its NUL (catalog entry) */
#define MMS__FIELD_NAME_MAX 47u /* a field's name, without its NUL (field descriptor) */
#define MMS__MAX_RECORD MMS_MAX_RECORD
struct mms__tabent {
    char name[64];       /* NUL-terminated, 1..63 bytes */
    uint16_t region;
    uint16_t nfields;
    uint32_t record_size;
    uint64_t fields;     /* heap ref: nfields struct mms__fdesc */
    uint64_t count;      /* slots in use: the array's length */
    uint64_t live;       /* live records */
    uint64_t free_hint;  /* tombstone word to search first for a free slot */
    uint64_t tomb;       /* heap ref: bitmap, bit set = slot deleted; none past tomb_bits */
    uint64_t tomb_bits;
    uint64_t layout_gen; /* migrations so far */
    uint64_t nulls;      /* heap ref: nfields refs of per-field null bitmaps (0: none) */
    uint64_t indexes;    /* heap ref: nindexes index descriptors (0: none) */
    uint32_t nindexes;
    uint32_t flags;      /* 0 */
    uint8_t reserved[104];
};
_Static_assert(sizeof(struct mms__tabent) == 256, "tabent size");
/* One per field in the array a catalog entry's `nulls` names: the field's
 * null bitmap (bit i set: record i's value is missing), none past nbits. */
struct mms__nullbits {
    uint64_t bits; /* heap ref of the bitmap, 0: none */
    uint64_t nbits; /* a multiple of 64 */
};
_Static_assert(sizeof(struct mms__nullbits) == 16, "nullbits size");
_Static_assert(offsetof(struct mms__tabent, nulls) == 128, "tabent nulls");
_Static_assert(offsetof(struct mms__tabent, nindexes) == 144, "tabent nindexes");
struct mms__catalog {
    uint32_t magic; /* MMS__CAT_MAGIC */
    uint32_t ntables;
    uint32_t cap;
    uint32_t pad;
    struct mms__tabent t[];
};
_Static_assert(sizeof(struct mms__catalog) == 16, "catalog size");
struct mms__fdesc {
    char name[48];   /* NUL-terminated, 1..47 bytes */
    uint32_t kind;   /* enum mms_kind */
    uint32_t offset;
    uint32_t size;
    uint32_t target; /* MMS_KIND_REF: region of the target table */
    uint8_t dflt[32];
};
_Static_assert(sizeof(struct mms__fdesc) == 96, "fdesc size");

/* Index descriptors (FORMAT §2.8): a heap array of nindexes of them per
 * catalog entry. One index per field. */
enum { MMS__IX_HASH = 1, MMS__IX_ORDERED = 2 };
#define MMS__IX_UNIQUE 1u
struct mms__ixdesc {
    char field[48];      /* 0: the field's name, followed through migrations */
    uint32_t kind;       /* 48: MMS__IX_HASH or MMS__IX_ORDERED */
    uint32_t flags;      /* 52: MMS__IX_UNIQUE */
    uint32_t region;     /* 56: the index's region (kind MMS__RK_INDEX) */
    uint32_t key_kind;   /* 60: the field's kind when built */
    uint32_t key_off;    /* 64: its offset in the record */
    uint32_t key_size;   /* 68: its size: the key's bytes */
    uint64_t layout_gen; /* 72: the table's layout_gen the index follows */
    char cover[48];      /* 80: the covered field's name ("" none), followed by
                          * name through migrations like field */
};
_Static_assert(sizeof(struct mms__ixdesc) == 128, "ixdesc size");
_Static_assert(offsetof(struct mms__ixdesc, layout_gen) == 72, "ixdesc layout_gen");
_Static_assert(offsetof(struct mms__ixdesc, cover) == 80, "ixdesc cover");

/* Page 0 of an index region. */
#define MMS__IX_MAGIC 0x58444e49u /* "INDX" */
#define MMS__IX_VERSION 1u        /* hash slots with checks (FORMAT §2.8) */
#define MMS__IX_VERSION_COVER 2u  /* ... and a covered value in slots or leaf entries */
#define MMS__IXH_NO_MISSING 1u    /* header flags: records whose key is missing have no
                                   * entry (0: they had their zero bytes', before 2026-12-06) */
struct mms__ixhdr {
    uint32_t magic;      /* 0: MMS__IX_MAGIC */
    uint32_t kind;       /* 4: MMS__IX_* */
    uint32_t key_size;   /* 8: K */
    uint32_t entry_size; /* 12: hash 8 + round_up(K, 8); ordered K + 8; + 8 covering */
    uint64_t entries;    /* 16 */
    uint64_t nslots;     /* 24: hash: slots, a power of 2; ordered: pages in use */
    uint64_t root;       /* 32: ordered: the root page */
    uint32_t depth;      /* 40: ordered: levels (1: the root is a leaf) */
    uint32_t table;      /* 44: region of the indexed table */
    uint32_t version;    /* 48: MMS__IX_VERSION (0: hash slots without checks),
                          * MMS__IX_VERSION_COVER for a covering index */
    uint32_t cover_kind; /* 52: version 2: the covered field's kind when built */
    uint32_t cover_off;  /* 56: ... its offset in the record */
    uint32_t cover_size; /* 60: ... its size, 1..8 (0: covers nothing) */
    uint32_t flags;      /* 64: MMS__IXH_* */
    uint8_t reserved[4096 - 68];
};
_Static_assert(sizeof(struct mms__ixhdr) == 4096, "ixhdr size");
/* A page of an ordered index: a leaf (entries) or an inner node (n
 * separators, n + 1 children). */
#define MMS__IXP_MAGIC 0x50584449u /* "IDXP" */
enum { MMS__IXP_LEAF = 1, MMS__IXP_INNER = 2 };
struct mms__ixpage {
    uint16_t type;  /* MMS__IXP_* */
    uint16_t n;
    uint32_t magic; /* MMS__IXP_MAGIC */
    uint64_t next;  /* leaf: the next leaf, 0: none */
    uint64_t prev;  /* leaf: the previous leaf, 0: none */
    uint64_t pad;
};
_Static_assert(sizeof(struct mms__ixpage) == 32, "ixpage size");

/* Journal header slot (two of them, at 0 and 512). */
struct mms__jhdr {
    uint64_t magic;     /* 0 */
    uint32_t version;   /* 8 */
    uint32_t salt;      /* 12 */
    uint8_t uuid[16];   /* 16 */
    uint64_t seq;       /* 32: checkpoint sequence; the valid slot with the higher wins */
    uint64_t start_txn; /* 40: txn id of the state the checkpoint synced */
    uint32_t crc;       /* 48: crc32c of [0,48) */
    uint32_t pad;
};
_Static_assert(sizeof(struct mms__jhdr) == 56, "jhdr size");

/* Journal records; every record is 8-byte aligned. */
enum { MMS__JR_BEGIN = 0x4e474542u, MMS__JR_DATA = 0x41544144u,
       MMS__JR_SIZE = 0x455a4953u, MMS__JR_COMMIT = 0x54494d43u };
struct mms__jbegin {
    uint32_t type;  /* MMS__JR_BEGIN */
    uint32_t flags; /* MMS__JB_* (journal.c NOTES) */
    uint64_t txn_id;
};
#define MMS__JB_AFTER_DURABLE 1u /* every earlier group was durable when it was written */
struct mms__jdata {
    uint32_t type;   /* MMS__JR_DATA */
    uint32_t len;    /* bytes that follow, padded to 8 */
    uint16_t region;
    uint16_t pad;
    uint32_t gen;
    uint64_t offset;
};
struct mms__jsize {
    uint32_t type; /* MMS__JR_SIZE */
    uint32_t gen;
    uint16_t region;
    uint16_t pad;
    uint32_t pad2;
    uint64_t size;
};
struct mms__jcommit {
    uint32_t type;   /* MMS__JR_COMMIT */
    uint32_t nrec;   /* data + size records in the group */
    uint64_t txn_id;
    uint64_t bytes;  /* bytes of the whole group, this record included */
    uint32_t crc;    /* crc32c chained from the previous group (or salt) over
                        every byte of the group before this field */
    uint32_t pad;
};
_Static_assert(sizeof(struct mms__jbegin) == 16, "jbegin");
_Static_assert(sizeof(struct mms__jdata) == 24, "jdata");
_Static_assert(sizeof(struct mms__jsize) == 24, "jsize");
_Static_assert(sizeof(struct mms__jcommit) == 32, "jcommit");
_Static_assert(offsetof(struct mms__jcommit, crc) == 24, "jcommit crc");

/* ------------------------------------------------------------------------
 * The lock file (lock.c). Shared memory, rebuilt whenever no handle has it
 * open; never durable, never trusted across that boundary.
 * ------------------------------------------------------------------------ */
#define MMS__LMAGIC UINT64_C(0x314b434f4c534d4d) /* bytes "MMSLOCK1" */
#define MMS__LVERSION 6u
#define MMS__NSLOTS 256u

/* Journal state: where the next group goes. Owned by the writer lock. */
struct mms__jstate {
    uint64_t end;       /* offset of the next group */
    uint64_t alloc;     /* bytes of journal file written (zeros past end); 0: not
                           measured yet (journal.c, journal_alloc) */
    uint64_t seq;       /* checkpoint sequence of the current header slot */
    uint64_t start_txn; /* txn of the last checkpoint; UINT64_MAX: a foreign journal */
    uint32_t salt, last_crc;
    int32_t slot;       /* current header slot, 0 or 1 */
    uint32_t pad;
};

/* A reader slot: one per open handle. 64 bytes, one cache line. Owned by
 * whoever holds byte 2 + index of the lock file (lock.c). */
struct mms__rslot {
    uint32_t pid;      /* owner process (for people), 0 = free */
    uint32_t active;   /* futex word: 1 inside a read transaction */
    uint64_t txn;      /* txn pinned by the current read transaction */
    uint64_t since_ns; /* CLOCK_MONOTONIC when it began */
    uint32_t tid;      /* thread that pinned */
    uint32_t ends;     /* read transactions ended so far (wraps) */
    uint32_t claims;   /* times the slot was claimed (wraps): with the slot's
                          index, names its owner (mms__owner_id) */
    uint8_t pad[28];
};
_Static_assert(sizeof(struct mms__rslot) == 64, "rslot size");

struct mms__lock {
    uint64_t magic;          /* MMS__LMAGIC */
    uint32_t version;        /* MMS__LVERSION */
    uint32_t size;           /* sizeof(struct mms__lock) */
    uint8_t uuid[16];        /* the store's */
    uint32_t nslots;         /* MMS__NSLOTS */
    uint32_t init_done;      /* 1 once initialised and recovered */
    union { /* the gate and its holder change together, in one store (lock.c) */
        uint64_t gate_word;
        struct {
            uint32_t gate;       /* futex word: 4k open, 4k + 1 closed, 4k + 3 closed
                                    by a holder that may write files (lock.c) */
            uint32_t gate_owner; /* mms__owner_id of the handle holding the gate, 0: open */
        };
    };
    uint64_t published;      /* txn id readers see: applied to the region files */
    uint32_t writer_waiting; /* an applier waits for readers to leave */
    uint32_t recover_needed; /* a writer died, or failed after its journal write */
    uint32_t writer_pid;     /* holder of the writer lock (for people), 0 = none */
    uint32_t writer_active;  /* 1 while a handle holds the writer lock */
    uint32_t gate_waiters;   /* readers waiting for the gate to open */
    uint32_t notify_waiters; /* handles in mms_wait */
    struct mms__jstate j;    /* where the next commit group goes (writer lock) */
    /* The apply pipeline (txn.c NOTES): committed >= durable >= published. */
    uint64_t committed;      /* last txn whose group the journal holds */
    uint64_t durable;        /* the journal is synced up to this txn */
    uint64_t apply_off;      /* journal offset of the group after `published` */
    uint32_t apply_crc;      /* ... and its CRC seed */
    uint32_t notify;         /* futex word: + 1 at every publication (and apply.c S7) */
    uint32_t committing;     /* a writer is between writing its group and counting it */
    uint32_t syncing;        /* mms__owner_id of a handle syncing the journal */
    uint64_t unsynced_ns;    /* CLOCK_MONOTONIC of the oldest commit not synced, 0: none */
    uint32_t writer;         /* futex word: mms__owner_id of the writer lock's holder, 0: free */
    uint32_t writer_waiters; /* handles waiting for the writer lock */
    uint32_t space_left;     /* a region file grew past its committed size, or a file
                                no commit may name stays, since the space was last
                                given back (recover.c; mms__space_left_mark) */
    uint32_t pad3;           /* gate_untouched until version 6: the gate's value says it */
    uint32_t sync_failed;    /* -errno of a failed journal sync, until the next first
                                open: no sync after it counts (mms__jsync) */
    uint32_t pad2;
    uint64_t init_real_ns;   /* CLOCK_REALTIME when the file was initialised, and */
    uint64_t init_boot_ns;   /* CLOCK_BOOTTIME: a restart since shows (lock.c, Readers
                                that cannot write); 0: not known */
    uint64_t lock_id[2];     /* the lock file's device and inode then */
    uint8_t boot_id[16];     /* the kernel's boot id, kept when init_boot_ns was in the
                                first seconds of a boot (lock.c, BOOT_ID_BELOW_NS);
                                else, or unreadable: 0 */
    uint8_t pad1[8];
    struct mms__rslot slot[MMS__NSLOTS];
};
_Static_assert(sizeof(struct mms__jstate) == 48, "jstate size");
_Static_assert(offsetof(struct mms__lock, gate) == 40, "lock gate");
_Static_assert(offsetof(struct mms__lock, published) == 48, "lock published");
_Static_assert(offsetof(struct mms__lock, writer_active) == 68, "lock writer_active");
_Static_assert(offsetof(struct mms__lock, j) == 80, "lock j");
_Static_assert(offsetof(struct mms__lock, committed) == 128, "lock committed");
_Static_assert(offsetof(struct mms__lock, gate_owner) == 44, "lock gate_owner");
_Static_assert(offsetof(struct mms__lock, notify) == 156, "lock notify");
_Static_assert(offsetof(struct mms__lock, unsynced_ns) == 168, "lock unsynced_ns");
_Static_assert(offsetof(struct mms__lock, writer) == 176, "lock writer");
_Static_assert(offsetof(struct mms__lock, space_left) == 184, "lock space_left");
_Static_assert(offsetof(struct mms__lock, sync_failed) == 192, "lock sync_failed");
_Static_assert(offsetof(struct mms__lock, init_real_ns) == 200, "lock init_real_ns");
_Static_assert(offsetof(struct mms__lock, lock_id) == 216, "lock lock_id");
_Static_assert(offsetof(struct mms__lock, boot_id) == 232, "lock boot_id");
_Static_assert(offsetof(struct mms__lock, slot) == 256, "lock slot");
_Static_assert(sizeof(struct mms__lock) == 256 + 64 * MMS__NSLOTS, "lock size");

/* ------------------------------------------------------------------------
 * The open path's code
 * ------------------------------------------------------------------------ */
/* Marks a function that a new process runs from mms_open to its first
 * mms_table_get. They share one section, which GNU ld's default script
 * places at the start of .text, with main and other .text.hot code (lld
 * and gold keep each object's part together, in input order): a new
 * process's first touch of a code page is a page fault that maps the 64
 * KiB around it, and an open spread over the library's ~200 KB of text
 * paid for a fault per 64 KiB it ran in. Code placement only. */
#define MMS__OPEN_PATH __attribute__((section(".text.hot.mms_open")))

/* ------------------------------------------------------------------------
 * Errors and debugging
 * ------------------------------------------------------------------------ */
/* Record a detail message for mms_errdetail() and err for mms_last_error(),
 * and return err. */
int mms__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Record err for mms_last_error() only (the detail stays); returns err. */
int mms__note_error(int err);
/* MMS_ECORRUPT with the source line in debug builds (SQLite's CORRUPT_BKPT). */
int mms__corrupt_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define MMS__CORRUPT(...) mms__corrupt_at(__FILE__, __LINE__, __VA_ARGS__)
void mms__detail_clear(void);

/* refset.c: a set of refs, and of the regions they name. */
struct mms__refset {
    mms_ref *v;   /* cap slots, 0: empty */
    size_t n, cap;
    uint64_t regions[MMS_MAX_REGIONS / 64];
};
bool mms__refset_has(const struct mms__refset *rs, mms_ref r);
bool mms__refset_has_region(const struct mms__refset *rs, uint32_t region);
int mms__refset_add(struct mms__refset *rs, mms_ref r);
void mms__refset_clear(struct mms__refset *rs);
void mms__refset_free(struct mms__refset *rs);

/* crc32c.c */
uint32_t mms__crc32c(uint32_t crc, const void *buf, size_t len);

/* ------------------------------------------------------------------------
 * os.c: the only file that talks to the kernel. Every call can be made to
 * fail by fault injection (tests): op names below.
 * ------------------------------------------------------------------------ */
enum mms__op {
    MMS__OP_OPEN, MMS__OP_PREAD, MMS__OP_PWRITE, MMS__OP_FSYNC, MMS__OP_FALLOCATE,
    MMS__OP_MMAP, MMS__OP_MSYNC, MMS__OP_MPROTECT, MMS__OP_FTRUNCATE,
    MMS__OP_MKDIR, MMS__OP_RENAME, MMS__OP_STAT, MMS__OP_READDIR,
    /* a store's life (compact.c, copy.c): allocating blocks under a range
     * that may hold holes, punching holes, copying file ranges */
    MMS__OP_FILL, MMS__OP_PUNCH, MMS__OP_COPY,
    MMS__OP_LOCKS, /* reading the kernel's lock table (/proc/locks) */
    MMS__OP_COUNT
};
/* Fail the nth (1-based) future call of op with -err; nth 0 disarms. */
void mms__fault_arm(enum mms__op op, unsigned long nth, int err);
void mms__fault_reset(void);
/* Also armed by the environment: MMS_FAULT=op:nth:errno[,op:nth:errno]. */

/* Crash points: MMS_CRASH=name:n kills the process (SIGKILL) the nth time
 * execution passes mms__crashpoint(name); a comma-separated list of up to
 * four name:n counts each on its own. Used by the crash tests. */
void mms__crashpoint(const char *name);

/* Power-loss simulation (tests/): a hook told of every moment the durable
 * state of a file can change. MMS__IO_WRITE comes before a pwrite (fd, off,
 * len) and before a sync (point names it: "fsync", "fdatasync", "msync");
 * MMS__IO_SYNC_FD after a successful fsync/fdatasync of fd (a file or the
 * store directory); MMS__IO_SYNC_RANGE after a successful msync of
 * [addr, addr+len); MMS__IO_POINT at every crash point (point = its name).
 * Stores through shared mappings make no event: whatever the page cache
 * holds at an event is what a power cut at that moment could find. */
enum mms__io_event { MMS__IO_WRITE, MMS__IO_SYNC_FD, MMS__IO_SYNC_RANGE, MMS__IO_POINT };
typedef void (*mms__io_hook_fn)(enum mms__io_event ev, int fd, const void *addr, uint64_t off,
                                uint64_t len, const char *point);
void mms__os_io_hook(mms__io_hook_fn fn); /* NULL: none */
void mms__os_after_fork(void); /* re-read MMS_FAULT and MMS_CRASH in a child */

int mms__os_open(const char *path, int flags, int mode);
int mms__os_openat(int dirfd, const char *name, int flags, int mode);
/* The same, and a file's size (st_size of the fstat that checked it) into *size. */
int mms__os_openat_sized(int dirfd, const char *name, int flags, int mode, uint64_t *size);
/* The same open without the check: the caller's own later fstat,
 * mms__os_fsize_regular, makes it (MMS_ECORRUPT "NAME is not a regular
 * file", as mms__os_openat) and gives the size. */
int mms__os_openat_nostat(int dirfd, const char *name, int flags, int mode);
int mms__os_fsize_regular(int fd, const char *name, uint64_t *size);
/* The same, and the file's st_dev and st_ino into id (one fstat for both). */
int mms__os_fsize_regular_id(int fd, const char *name, uint64_t *size, uint64_t id[2]);
int mms__os_close(int fd);
/* How many descriptors the process may have open (RLIMIT_NOFILE, soft). */
uint64_t mms__os_fd_limit(void);
int mms__os_mkdir(const char *path);
int mms__os_pread(int fd, void *buf, size_t len, uint64_t off); /* all of it, or -EIO */
/* As much as the file has of [off, off + len): *got bytes (fewer at its end). */
int mms__os_pread_upto(int fd, void *buf, size_t len, uint64_t off, size_t *got);
int mms__os_pwrite(int fd, const void *buf, size_t len, uint64_t off);
int mms__os_fdatasync(int fd);
int mms__os_fsync(int fd);
int mms__os_fallocate(int fd, uint64_t off, uint64_t len);
int mms__os_ftruncate(int fd, uint64_t len);
int mms__os_fsize(int fd, uint64_t *size);
int mms__os_unlinkat(int dirfd, const char *name);
int mms__os_renameat(int dirfd, const char *from, const char *to);
/* 0 if name (relative to dirfd, or a path with AT_FDCWD) exists; *is_dir
 * (may be NULL) says whether it is a directory. */
int mms__os_stat(int dirfd, const char *name, bool *is_dir);
/* fn for each name in directory dirfd but . and ..; stops at fn's first
 * non-zero return, which it returns. */
int mms__os_dir_list(int dirfd, int (*fn)(void *ctx, const char *name), void *ctx);
int mms__os_ofd_lock(int fd, int byte, int type, bool wait);
int mms__os_ofd_probe(int fd, int byte);
int mms__os_ofd_probe_range(int fd, int byte, int len); /* any byte of the range */
int mms__os_ofd_shared_count(int fd, const int *bytes, unsigned n, unsigned *counts);
/* A thread of the library (os.c says what it is spared): fn(arg) runs in
 * it. *t must stay in place until mms__os_thread_join returns. */
struct mms__os_thread {
    void (*fn)(void *arg);
    void *arg;
    size_t stack; /* bytes of stack; 0: 128 KiB */
    pthread_t id;
};
int mms__os_thread_start(struct mms__os_thread *t);
void mms__os_thread_join(struct mms__os_thread *t);
int mms__os_futex_wait(uint32_t *word, uint32_t expect, int64_t timeout_ns);
void mms__os_futex_wake(uint32_t *word);
uint32_t mms__os_pid(void);
/* Reserve len bytes of address space (PROT_NONE); -ENOMEM: not that much
 * (out of it, or a length the kernel or valgrind refuses). */
int mms__os_reserve(uint64_t len, char **out);
/* The same at addr exactly (MAP_FIXED_NOREPLACE): -EEXIST if anything of
 * [addr, addr+len) is mapped already, which stays untouched. */
int mms__os_reserve_at(void *addr, uint64_t len);
/* Map fd[off, off+len) at addr (MAP_FIXED): shared or private, writable or not. */
int mms__os_map_fixed(void *addr, uint64_t len, int fd, uint64_t off, bool shared, bool writable);
/* Map fd[0,len) shared read-write anywhere. */
int mms__os_map(int fd, uint64_t len, bool writable, char **out);
/* The same, read-write, with every page of it mapped at once (a few pages:
 * one call instead of a fault per page first read). */
int mms__os_map_populated(int fd, uint64_t len, char **out);
/* len bytes of zeroed private memory, anywhere (free with mms__os_unmap);
 * the first populate bytes are made at once, not at their first touch. */
int mms__os_anon(uint64_t len, uint64_t populate, char **out);
int mms__os_remap(char *old, uint64_t oldlen, uint64_t newlen, char **out);
int mms__os_unmap(void *addr, uint64_t len);
/* Give back len bytes at addr to the reservation (PROT_NONE, no file). */
int mms__os_unmap_to_reserve(void *addr, uint64_t len);
/* Map len bytes of zeros at addr in place of what was there (no file; the
 * kernel's zero page, no memory until a store, which lands in private
 * pages): read-only unless writable. map.c, "Retired ranges". */
int mms__os_zeros_at(void *addr, uint64_t len, bool writable);
int mms__os_protect(void *addr, uint64_t len, bool writable);
/* Memory protection keys (x86 pku; elsewhere they fail: -ENOSYS, -ENOSPC,
 * -EINVAL). Rights are the calling thread's (PKRU), PKEY_DISABLE_* bits. */
#define MMS__PKEY_NOACCESS 0x1u
#define MMS__PKEY_NOWRITE 0x2u
int mms__os_pkey_alloc(unsigned rights); /* the key, or -errno */
void mms__os_pkey_free(int key);
int mms__os_pkey_tag(void *addr, uint64_t len, int key); /* rw pages of key */
unsigned mms__os_pkey_get(int key);
void mms__os_pkey_set(int key, unsigned rights);
int mms__os_msync(void *addr, uint64_t len);
int mms__os_drop(void *addr, uint64_t len); /* MADV_DONTNEED */
int mms__os_nohuge(void *addr, uint64_t len);
/* MADV_HUGEPAGE: pages the range brings into the page cache come as 2 MiB
 * folios (mms_advise). -EINVAL: the kernel has no transparent huge pages. */
int mms__os_huge(void *addr, uint64_t len);
/* MADV_RANDOM: a fault reads its page, not the read-around window (a hint:
 * failure is harmless). */
int mms__os_no_readahead(void *addr, uint64_t len);
int mms__os_readahead_default(void *addr, uint64_t len); /* MADV_NORMAL */
/* MADV_POPULATE_READ: reads the mapped range in now. -EIO: a page of it
 * cannot be read (a touch would be a SIGBUS); -ENOTSUP: the kernel cannot
 * say (before Linux 5.14); another error: ENOMEM, EINTR... */
int mms__os_populate_read(const void *addr, uint64_t len);
void mms__os_random(void *buf, size_t len);
uint64_t mms__os_now_ns(void);  /* wall clock */
uint64_t mms__os_boot_ns(void); /* since boot, suspend included (CLOCK_BOOTTIME) */
/* The kernel's boot id (/proc/sys/kernel/random/boot_id, parsed): 0, or
 * -errno; -EINVAL if it is not a uuid. id is written only on success. */
int mms__os_boot_id(uint8_t id[16]);
uint64_t mms__os_mono_ns(void); /* monotonic clock */
/* Page faults the process took so far, every thread's (UINT64_MAX: cannot
 * tell). */
uint64_t mms__os_faults(void);
long mms__os_page_size(void);

/* Dirty-page detection backends (also os.c). A run is [start, end) in
 * bytes, page aligned. The callback returns 0 to go on. */
typedef int (*mms__run_fn)(void *ctx, char *start, char *end);
int mms__os_dirty_open(unsigned backend, int *fd, unsigned *chosen);
/* What a scan reports: every private page (MMS__SCAN_PRIVATE); only those
 * written since they were write-protected, and every page never protected
 * (MMS__SCAN_WRITTEN); or those and, besides, pages read from the file and
 * never protected (MMS__SCAN_WRITTEN_FAST: the kernel then does not look
 * up each present page to tell file pages from copies, ~9 ns a page, which
 * over hundreds of protected pages was most of a small commit's scan).
 * The pagemap backend reports every private page. */
enum { MMS__SCAN_PRIVATE, MMS__SCAN_WRITTEN, MMS__SCAN_WRITTEN_FAST };
int mms__os_dirty_scan(int fd, unsigned backend, char *start, char *end, unsigned how,
                       mms__run_fn fn, void *ctx);
/* Write protection that the kernel lifts on the next write (os.c NOTES):
 * a descriptor (or -errno where the kernel cannot); register a range for
 * it (nothing protected yet); unprotect lifts it from a registered range.
 * dirty_protect (scan backend only) reports to fn, and write-protects in
 * the same call, the pages of [start, end) a MMS__SCAN_WRITTEN_FAST scan
 * would report (pages read from the file and never protected included), in
 * registered ranges only: pages elsewhere are neither reported nor
 * protected. */
int mms__os_wp_open(void);
int mms__os_wp_register(int ufd, char *start, uint64_t len);
int mms__os_wp_unprotect(int ufd, char *start, uint64_t len);
int mms__os_dirty_protect(int fd, char *start, char *end, mms__run_fn fn, void *ctx);

/* A store's life (os.c, its last section). fill: allocate the blocks of
 * [off, off+len) of a file, holes included, keeping data and size
 * (fallocate mode 0); punch: give [off, off+len) back to the file system,
 * reading as zeros after (-EOPNOTSUPP where the file system cannot);
 * data_next: the first byte at or after off that is data, not a hole
 * (*next = end when none is before end; the whole range counts as data
 * where SEEK_DATA does not exist); hole_next: the first hole at or after
 * off (end when none is before end); copy: len bytes of fd_in at off to
 * fd_out at the same offset (copy_file_range, or read and write);
 * disk_bytes: the bytes of disk a file takes (st_blocks). */
int mms__os_fill(int fd, uint64_t off, uint64_t len);
int mms__os_punch(int fd, uint64_t off, uint64_t len);
int mms__os_data_next(int fd, uint64_t off, uint64_t end, uint64_t *next);
int mms__os_hole_next(int fd, uint64_t off, uint64_t end, uint64_t *next);
int mms__os_copy(int fd_in, int fd_out, uint64_t off, uint64_t len);
int mms__os_disk_bytes(int fd, uint64_t *bytes);
/* Start writing [off, off+len) of fd back to the disk (sync_file_range), and
 * with wait, wait until it is written; a hint, no durability promise (an
 * fsync still is): it keeps a long copy from leaving gigabytes dirty for one
 * final sync that other processes' syncs would queue behind. */
int mms__os_writeback(int fd, uint64_t off, uint64_t len, bool wait);
/* Directories: remove the empty directory name (relative to dirfd, or a
 * path with AT_FDCWD); swap two names atomically (renameat2
 * RENAME_EXCHANGE; MMS_ENOTSUP where the kernel or file system lacks it). */
int mms__os_rmdirat(int dirfd, const char *name);
bool mms__os_pid_alive(uint32_t pid); /* the process exists (or may: EPERM) */
int mms__os_exchange(int dirfd, const char *a, const char *b);
/* st_dev and st_ino of name (relative to dirfd; "." is dirfd itself). */
int mms__os_file_id(int dirfd, const char *name, uint64_t id[2]);

/* ------------------------------------------------------------------------
 * The handle
 * ------------------------------------------------------------------------ */
#define MMS__WP_CHUNK ((uint64_t)2 << 20)
/* What one table of page tables maps (x86-64, 4 KiB pages): a trim maps
 * anew the spans of a private part that hold no page (txn.c), and
 * reservations of a span or more start on a span's boundary (map.c). */
#define MMS__SPAN ((uint64_t)1 << 30)

struct mms__region {
    int fd;             /* -1 if not open */
    uint32_t gen;
    uint64_t reserve;   /* bytes of address space at view.base[id] */
    uint64_t lead;      /* ... and below it, the slack before a span's boundary
                           (map.c, reserve_spans), given back with it */
    uint64_t mapped;    /* bytes of the file mapped into the user view */
    uint64_t priv;      /* [0, priv) is mapped private (write handles), page aligned */
    uint64_t committed; /* committed size as of the last commit (or open) */
    char *fview;        /* whole file, shared and writable (write handles) */
    uint64_t fview_len;
    uint64_t mapseq;    /* which mapping of [0, priv): new each time it is mapped */
    uint64_t *wp_reg;   /* chunks of MMS__WP_CHUNK registered for write protection
                           (txn.c), a bit each; the last one, partly private, as far
                           as priv (map.c forgets it when priv moves) */
    uint64_t wp_reg_words, wp_reg_seq; /* its size; the mapseq it is valid for */
    uint32_t fast_off, fast_gap; /* view.c: scans left without MMS__SCAN_WRITTEN_FAST,
                                    and how many the next miss costs */
    uint64_t readable;  /* [0, readable) reads without a fault: the file's
                           mapping, then zeros (map.c, "Retired ranges") */
    /* The reservation of this id's region after the region went (dropped),
     * its old range mapped as zeros, until a region of this id takes it
     * again or the handle closes (map.c, "Retired ranges"); NULL: none. */
    char *retired;
    uint64_t retired_reserve, retired_lead, retired_readable;
};

/*
 * THE HANDLE'S STATE (s->state), one of:
 *
 *                 mms_read_begin               mms_txn_begin
 *     ST_READ  <-----------------  ST_IDLE  ---------------->  ST_WRITE
 *              ----------------->           <----------------
 *                 mms_read_end                 mms_txn_commit, mms_txn_abort
 *                                              (and a failed commit)
 *
 * READ: this handle's reader slot pins a published state (pin_tid is the
 * thread that pinned). WRITE: it holds the writer lock (writer_tid, also
 * set by the short holds of checkpoint, verify and close), its mappings
 * are writable. Beside the state, three conditions:
 *   - poisoned (sticky error): an I/O error after a commit point, or while
 *     remapping after an abort. Every call fails MMS_EPOISONED but
 *     mms_txn_abort, mms_read_end (they still end their transaction, so the
 *     state machine stays whole) and mms_close.
 *   - forked: the handle is used in a child after fork() (fork_gen differs
 *     from the process's). Every call fails MMS_EFORK; mms_close frees
 *     memory only.
 *   - L_private: no lock file could be written (read-only file system): a
 *     read-only handle with a private copy of it; nothing can change.
 *   - unslotted: a read-only handle whose process may not write the lock
 *     file (a writable file system): it maps the file read-only, has no
 *     reader slot, and never stores into the file (lock.c, "Readers that
 *     cannot write"); what would need a store it refuses.
 * mms__state_to() asserts that every move is one of the arrows above.
 */
enum { MMS__ST_IDLE = 0, MMS__ST_WRITE = 1, MMS__ST_READ = 2 };

struct mms__pagevec {
    char **page; /* page addresses */
    uint8_t *changed;
    size_t n, cap;
};

struct mms_store {
    struct mms__view view; /* must be first: mms_deref() reads it */
    uint32_t nmapped;      /* regions with a mapping (ids below this) */
    char *path;
    int dirfd, jfd, lockfd, dirty_fd;
    int hdr_fd;         /* region-0-0, opened once by mms_open for all its steps
                           (store.c), -1 once region 0 is mapped (map.c owns it) */
    int wp_fd;          /* write protection of held pages (os.c, txn.c), -1: none */
    uint64_t mapseq;    /* the last mapseq given to a region's mapping (map.c) */
    bool wp_protected;  /* pages were write-protected since the last lift (txn.c) */
    bool trim_now;      /* settle: protected pages the files now have go back (txn.c) */
    unsigned flags;        /* open flags, with MMS_GUARD resolved */
    int guard_key;         /* the guard's protection key, 0: none (guard.c) */
    bool heap_random;      /* region 0 is read without read-ahead while opening (map.c) */
    bool opening;          /* inside mms_open, until the regions are mapped */
    bool alone;            /* holds byte 0 of the lock file exclusively (lock.c) */
    unsigned dirty_backend;
    uint64_t grow_step, checkpoint_bytes, reserve;
    struct mms__fixed fixed; /* the layout the store records (all 0: none): the
                                regions are mapped at it with MMS_FIXED, and
                                never grow past its lengths either way */
    int state;             /* MMS__ST_* (THE HANDLE'S STATE above) */
    int poisoned;          /* sticky error code, 0 if healthy */
    unsigned long fork_gen; /* the process's fork generation when opened */
    /* processes (lock.c) */
    struct mms__lock *L;   /* the shared lock file (or a private copy, below) */
    bool L_private;        /* no lock file could be opened (read-only file system) */
    bool unslotted;        /* the lock file is mapped read-only: this process may not
                              write it; no slot, pins with a kernel lock (lock.c) */
    bool pin_byte;         /* holds the unslotted readers' byte exclusively, while it
                              holds the gate (lock.c, mms__gate_close) */
    uint64_t lock_fid[2];  /* the lock file's st_dev and st_ino (its attach's fstat) */
    uint32_t slot;         /* this handle's reader slot, UINT32_MAX = none */
    uint32_t pin_tid;      /* thread inside this handle's read transaction */
    uint32_t writer_tid;   /* thread that took the writer lock through it */
    struct mms_store *next_open; /* the process's list of open handles */
    bool jfd_rw;           /* the journal is open for writing */
    uint64_t seen;         /* txn the mappings (and kept private pages) reflect */
    uint64_t tab_epoch;    /* + 1 whenever a table's catalog entry may change (a table
                              write call, an undo, following commits): the tables'
                              cached views are valid while it stays (table.c) */
    struct mms__jstate *J; /* &L->j */
    /* Which heap units start a segment (alloc.c). A cache of what walking
     * the segment chain says, so a ref can be checked in O(1); kept up to
     * date by the allocator, rebuilt after an abort. */
    uint64_t *segmap;
    uint32_t segmap_bits;  /* units covered; 0 = must be rebuilt */
    uint32_t segmap_cap;   /* in bits */
    /* The heap objects the write transaction freed (alloc.c), and the
     * strings and blobs that records it changed or deleted let go (table.c,
     * at commit). A commit that freed nothing checks nothing more; else it
     * checks that the library's own objects are live and that no live
     * record holds a string it freed (heapobj.c). */
    struct mms__refset txn_freed, txn_released;
    /* The library's own heap objects (the catalog and what each table
     * keeps in the heap), as the first refusal check of the write
     * transaction found them by a walk of the catalog (heapobj.c,
     * mms__heap_lib_refuse): a lookup, not a walk, per mms_free. Stale
     * (lib_set_ok false) at the end of each transaction and whenever
     * library code changes a ref to one of them (mms__heap_lib_changed). */
    struct mms__refset lib_set;
    bool lib_set_ok;
    /* How many live-record STR and BLOB fields hold each string, in the
     * committed state the handle last saw (heapobj.c); NULL until a commit
     * first needs it. */
    struct mms__holders *holders;
    unsigned keep_pages;   /* changed private pages kept after a commit */
    uint32_t trim_gap;     /* commits to leave between two trims (txn.c) */
    uint32_t since_trim;   /* commits since the last trim */
    uint64_t trim_scan_ns; /* two scans in a row this slow trim (40 us; MMS_TRIM_SCAN_NS) */
    bool scan_slow;        /* the last commit's scan took trim_scan_ns or more */
    bool trim_due;         /* a trim waits for a commit that scans (txn.c) */
    /* Pages this handle keeps private between transactions (held.c): the
     * changed pages it keeps (keep_pages) and, while commits are not yet
     * applied to the region files, every page they changed, with a shadow
     * copy of its committed content. */
    struct mms__held *held, *held_spare;
    size_t held_n, held_cap;   /* entries in use; slots (a power of 2) */
    uint64_t shadow_pages;     /* entries with a shadow */
    uint64_t held_pub, held_mapseq; /* published and mapseq at the last sweep (txn.c) */
    void *shadow_pool;         /* freed shadows kept for reuse, a list through their first word */
    uint32_t shadow_pool_n;
    uint64_t max_backlog;      /* shadow bytes past which a commit waits (or fails) */
    uint64_t sync_ns;          /* MMS_NOSYNC: sync the journal when a commit is this old */
    /* MMS_NOSYNC's background syncer (apply.c NOTES, S1-S6) */
    struct mms__os_thread syncer;
    uint32_t syncer_word;      /* futex word: MMS__SYNCER_STOP | MMS__SYNCER_IDLE */
    int syncer_err;            /* a background sync's failure no call has reported */
    bool syncer_on;            /* the thread runs (in the process that opened the handle) */
    /* The pin watcher (apply.c NOTES, P1-P6) */
    struct mms__os_thread pinwatch;
    uint32_t pinwatch_word;    /* futex word: MMS__PINWATCH_STOP | MMS__PINWATCH_KICK */
    uint32_t pinwatch_on;      /* 1: the thread runs (in the process that opened the handle) */
    bool gate_unslotted;       /* the last mms__gate_try gave up with unslotted readers inside */
    bool (*pinwatch_apply)(const mms_store *s); /* store.c's open, apply, close (P2) */
    uint64_t reader_limit_ns;  /* a reader inside longer holds the store back (0: off) */
    bool cannot_apply;         /* region files are not writable here: others apply */
    char *recbuf;              /* a record's committed bytes, at commit (txn.c) */
    struct mms__refset txn_deleted; /* records the write transaction deleted */
    struct mms__ixtxn *ixtxn;  /* index work of the write transaction (index.c) */
    struct mms_index *ixh;     /* index handles (lookup.c) */
    bool precommit_wrote;      /* the commit's record checks wrote to the store */
    size_t recbuf_cap;
    struct mms_table *tables; /* table handles (table.c) */
    bool dir_dirty;        /* a region file was created in this transaction */
    uint8_t hdr_fixed[40]; /* header bytes that never change (magic .. uuid) */
    /* An open's early mapping of region 0, until mms__map_region adopts it,
     * and the room reserved after it for a table (map.c, mms__map_early0). */
    char *early0, *spare;
    uint64_t early0_reserve, early0_lead, early0_mapped, spare_len;
    /* A new fixed-mode store's region 0 range, reserved from the choice of
     * its base until region 0 is mapped there (map.c, mms__map_fixed_base):
     * two creates of one process cannot choose the same base. */
    char *fixed_claim;
    uint64_t fixed_claim_len;
    struct mms_commit_stats stats;
    /* commit scratch */
    struct mms__pagevec dirty;
    /* Quiet commits (view.c): the pages that can change without a page
     * fault, as the last commit left them, and the process's page-fault
     * count when it began. */
    struct mms__pagevec quiet;
    uint64_t quiet_faults, quiet_mapseq;
    bool quiet_ok;      /* quiet and quiet_faults describe the view */
    bool quiet_spoiled; /* this commit changed pages behind the lists' back */
    uint32_t quiet_run; /* commits in a row that took the list for a scan */
    uint32_t quiet_gap, quiet_skip; /* commits not to count faults, after a miss */
    uint64_t quiet_commits; /* commits that took the list (mms_info) */
    bool quiet_check;       /* MMS_CHECK_QUIET=1: scan as well, abort on a miss */
    uint8_t *jbuf;
    size_t jbuf_len, jbuf_cap;
    uint64_t jg_written; /* bytes of the group being built already written */
    uint32_t jg_crc, jg_nrec;
    /* catalog.c: where mms__catalog_by_region last found each region's
     * table, an index into the catalog checked at every use. Lookups on a
     * const handle fill it, hence a pointer (to cat_at_mem below). */
    uint16_t *cat_at;
    /* Here, after the fields: they share a page with reg[0..47], so opening
     * a small store touches one page of the handle fewer (each first touch
     * of an anonymous page is a fault). Only cat_at_mem, touched when a
     * table is first looked up by region, comes after. */
    struct mms__region reg[MMS_MAX_REGIONS];
    uint16_t cat_at_mem[MMS_MAX_REGIONS];
};

static inline struct mms__hdr *mms__hdr(const mms_store *s)
{
    return (struct mms__hdr *)(void *)s->view.base[0];
}
static inline struct mms__rent *mms__rtab(const mms_store *s)
{
    return (struct mms__rent *)(void *)(s->view.base[0] + MMS__PAGE);
}

/* A legal move of the handle's state machine (THE HANDLE'S STATE above). */
static inline void mms__state_to(mms_store *s, int to)
{
    assert((s->state == MMS__ST_IDLE) != (to == MMS__ST_IDLE));
    s->state = to;
}

/* ------------------------------------------------------------------------
 * Layer 0: schema.c
 * ------------------------------------------------------------------------ */
const char *mms__kind_label(unsigned kind); /* mms_kind_name, or "?" */
bool mms__kind_owns_heap(unsigned kind);    /* STR and BLOB */
/* Every field named, of a known kind and size, inside the record, not
 * overlapping another; REF fields name a target, "" for none (whether it
 * exists, or may be none, is the catalog's question: table.c). MMS_EINVAL
 * with a detail naming table otherwise. */
int mms__schema_check(const char *table, const mms_schema *sc);
/* The name rule (mmstore.h, "Names") for a new table name; for the fields
 * of sc, those not in stored (NULL: all of them). Names already in a store
 * are not checked: a store made before the rule opens, and its tables can
 * be renamed. MMS_EINVAL with a detail saying what breaks the rule. */
int mms__name_check(const char *name);
int mms__schema_names_check(const char *table, const mms_schema *sc, const mms_schema *stored);

/* Migration: how one field of the new layout gets its value. */
enum { MMS__CV_ZERO, MMS__CV_DEFAULT, MMS__CV_COPY, MMS__CV_INT, MMS__CV_INT_F64,
       MMS__CV_F32_F64, MMS__CV_CHARS };
struct mms__fplan {
    int op; /* MMS__CV_*, or -1: the change could lose data */
    uint32_t dst_off, dst_size, src_off, src_size;
    bool src_signed;
    const uint8_t *dflt;
};
/* The step that turns a value of kind a (size as) into kind b (size bs)
 * without loss, or -1 if there is none. */
int mms__widen_op(unsigned a, uint32_t as, unsigned b, uint32_t bs);
/* Fill the fields of a zeroed record dst (new layout) from src (old). */
void mms__convert(const struct mms__fplan *plan, uint32_t n, const char *src, char *dst);

/* ------------------------------------------------------------------------
 * Layer 2: map.c
 * ------------------------------------------------------------------------ */
#define MMS__REGION_NAME 40
void mms__region_name(char name[MMS__REGION_NAME], uint32_t id, uint32_t gen);
int mms__region_open_file(mms_store *s, uint32_t id, uint32_t gen, bool create, bool write,
                          int *fd);
/* Create the file of region id, generation gen, preallocated to bytes
 * (rounded up to 1 MiB); a file of that name left by a transaction that
 * aborted or crashed is replaced. Marks the directory dirty (the commit
 * syncs it). On failure nothing is left. */
int mms__region_create_file(mms_store *s, uint32_t id, uint32_t gen, uint64_t bytes, int *fd);
/* The same, mapped as fresh space (in id's reservation if it has one). */
int mms__region_new(mms_store *s, uint32_t id, uint32_t gen, uint64_t bytes);
void mms__region_unlink(mms_store *s, uint32_t id, uint32_t gen);
/* Say (in the lock file) that the store's files hold what the next
 * give-back must take (recover.c): a file or growth no commit names yet,
 * or a region file a transaction let go (a drop). Said before the files
 * change, so that a death right after leaves it said. */
void mms__space_left_mark(mms_store *s);
/* Free region id in this transaction's region table (a dropped table or
 * index): its file stays for the gc after the commit's checkpoint. */
void mms__region_release(mms_store *s, uint32_t id);
/* Delete region files the region table rt does not name (after a
 * checkpoint, when no journal record can name them). */
void mms__region_gc(mms_store *s, const struct mms__rent *rt, uint32_t nregions);
/* fdatasync every region file of the store directory. */
int mms__region_sync_all(mms_store *s);

/* mms_release_memory(): unmap the pages of the shared mappings. */
void mms__map_release(mms_store *s);
/* The end of mms_open: region 0 gets the kernel's read-ahead back. */
void mms__map_opened(mms_store *s);
/* An open without MMS_FIXED: reserve region 0's range (and room after it
 * for the first table) and map its file of fsize bytes, read-only and
 * shared, at its start: *out, where the header is read. mms__map_region
 * adopts it for region 0; mms__map_early_drop gives back what is not
 * adopted or used (mms_close, a failed open). */
int mms__map_early0(mms_store *s, int fd, uint64_t fsize, const char **out);
void mms__map_early_drop(mms_store *s);
/* Map region id's file fd (the handle owns fd from here on); fsize: the
 * file's size if the caller measured it just now, else 0. */
int mms__map_region(mms_store *s, uint32_t id, int fd, uint32_t gen, uint64_t committed,
                    uint64_t fsize);
/* A new fixed-mode store's base: *base if this process can reserve the
 * heap's range (heap bytes) there (else MMS_EADDR), or when *base is 0 the
 * first of 32 TiB, 36 TiB, ... 76 TiB where it can. The range stays
 * reserved for the handle (s->fixed_claim) until region 0 is mapped in it
 * or the handle is freed. */
int mms__map_fixed_base(mms_store *s, uint64_t heap, uint64_t *base);
/* Make sure region id's file is at least need bytes, growing it by a step
 * and mapping the new part (shared: it is fresh space). */
int mms__map_grow(mms_store *s, uint32_t id, uint64_t need);
/* Giving back file space (recover.c): what of a region file of committed
 * bytes is kept -- the committed size and one growth step. */
uint64_t mms__map_keep(const mms_store *s, uint64_t committed);
/* Cut region id (generation gen, committed bytes) to what is kept: through
 * fd if it is not -1 (its size fsize), else opening it; and, if this handle
 * maps it further, its mappings first. Only while no other handle has the
 * store open (lock.c, alone). *cut adds the bytes given back. */
int mms__map_trim(mms_store *s, uint32_t id, uint32_t gen, uint64_t committed, int fd,
                  uint64_t fsize, uint64_t *cut);
/* After a commit: [priv, round_up(committed)) becomes private. */
int mms__map_commit(mms_store *s, uint32_t id);
/* Map [off, off + len) of region id's private part anew from its file: the
 * kernel frees the page tables there. Only where no private page is left
 * (txn.c trims). */
int mms__map_renew(mms_store *s, uint32_t id, uint64_t off, uint64_t len);
/* Advise the fresh space a bulk append of table region id is about to
 * write, [off, off + len), 2 MiB pages (map.c; MMS_NOHUGE). */
void mms__map_fresh_huge(mms_store *s, uint32_t id, uint64_t off, uint64_t len);
int mms__map_protect(mms_store *s, bool writable);

/* The guard (guard.c NOTES): stores outside a write transaction fault.
 * guard_flags resolves MMS_GUARD / MMS_NOGUARD / MMS_GUARD_MPROTECT, the
 * build type and the environment (MMS_GUARD=0|1|mprotect) into s->flags'
 * wishes; guard_open, before the first mapping, takes a protection key or
 * settles for mprotect or nothing; guard_close gives the key back after
 * the last mapping is gone. */
unsigned mms__guard_flags(unsigned flags);
void mms__guard_open(mms_store *s);
void mms__guard_close(mms_store *s);
/* enum mms_guard_kind of the handle. */
unsigned mms__guard_kind(const mms_store *s);
/* Tag a new mapping of the writer's view with the key (no-op without). */
int mms__guard_tag(const mms_store *s, void *addr, uint64_t len);
/* Key guard: this thread may write (or no longer) through the handle's
 * mappings. One PKRU write. */
void mms__guard_rights(const mms_store *s, bool writable);
/* A call on the handle: this thread may read, and with write, inside a
 * write transaction, write; nothing is taken away (guard.c G2). */
void mms__guard_enter(const mms_store *s, bool write);
void mms__map_unmap_all(mms_store *s);
/* Make the mappings match the header: regions that appeared (open and
 * map), disappeared (unmap), changed file generation (map the new file in
 * the same place), grew (map more); committed sizes follow. Used after
 * other handles committed, after an abort, and at open (through
 * mms__tables_follow, which also sets the tables' units). */
int mms__map_follow(mms_store *s);
/* Map file fd (generation gen) over region id's existing reservation. */
int mms__map_replace(mms_store *s, uint32_t id, int fd, uint32_t gen, uint64_t committed);
void mms__map_unmap_region(mms_store *s, uint32_t id);

/* ------------------------------------------------------------------------
 * Layer 2: lock.c -- the lock file (struct mms__lock above) and the
 * process's registry of open handles.
 * ------------------------------------------------------------------------ */
bool mms__lock_valid(const struct mms__lock *L, const uint8_t uuid[16]);
/* Initialise s->L for the store uuid (the first handle, byte 0 held
 * exclusively), stamped with this boot and the file's identity. */
void mms__lock_init(mms_store *s, const uint8_t uuid[16]);
/* Open and map the lock file; *alone: no other handle has the store open
 * (then this one holds byte 0 exclusively and must initialise the file).
 * A read-only handle whose process may not write the file gets it
 * read-only (s->unslotted, lock.c NOTES "Readers that cannot write"), and
 * must then call mms__lock_trust. */
int mms__lock_attach(mms_store *s, bool *alone);
/* An unslotted handle: may it read the store by this lock file? 0, or
 * MMS_ERECOVER saying why not. uuid NULL: for any store (its attach). */
int mms__lock_trust(mms_store *s, const uint8_t uuid[16]);
void mms__lock_detach(mms_store *s);
int mms__slot_claim(mms_store *s);
void mms__slot_release(mms_store *s);
bool mms__slot_alive(const mms_store *s, uint32_t i);
/* Is slot i owned, asked through lockfd (an fd of the lock file)? */
bool mms__slot_held(int lockfd, uint32_t i);
/* The lock file of the store directory dirfd, mapped read-only, with no
 * place in it (mms_readers_path): *L is NULL when no handle has the store
 * open. Give it back with mms__lock_unpeek. */
int mms__lock_peek(int dirfd, const struct mms__lock **L, int *lockfd);
void mms__lock_unpeek(const struct mms__lock *L, int lockfd);
/* Byte 0 of the lock file of the store directory dirfd, exclusively (in
 * *lockfd, -1 if there is no lock file): no handle has that store open,
 * and openers wait until *lockfd is closed. MMS_EBUSY if a handle has it
 * open. */
int mms__lock_dir_exclusive(int dirfd, int *lockfd);
void mms__slots_reclaim(mms_store *s, unsigned *n);
/* Pin the published state (*txn) in this handle's slot. stuck(ctx, why) is
 * called when the reader cannot go on by itself (MMS__STUCK_*); 0 from it
 * means try again. */
enum { MMS__STUCK_WRITER = 1, MMS__STUCK_APPLIER = 2 };
int mms__pin(mms_store *s, uint64_t *txn, int (*stuck)(void *ctx, int why), void *ctx);
void mms__unpin(mms_store *s);
bool mms__readers_inside(const mms_store *s); /* a slot other than ours is pinned */
bool mms__unslotted_inside(const mms_store *s); /* a reader without a slot is inside */
/* A name for this handle in lock-file words (slot index and the slot's
 * claim count: a slot reclaimed from a dead owner names another owner), and
 * whether the handle a name names is still there. 0 names nobody. */
uint32_t mms__owner_id(const mms_store *s);
bool mms__owner_alive(const mms_store *s, uint32_t id);
int mms__lock_unslotted(int lockfd, unsigned slotted, unsigned *open, unsigned *inside);
/* The gate: odd while one handle (gate_owner) applies commits; readers do
 * not pin meanwhile. gate_try takes it only if it is open and no reader is
 * inside (1) and otherwise leaves it (0); gate_close takes it and waits for
 * the readers inside (and takes it over from a handle that died holding
 * it). gate_open publishes txn; gate_reopen publishes nothing. */
#define MMS__GATE_DEAD UINT32_MAX /* gate_owner of a gate left by a failed apply */
int mms__gate_try(mms_store *s);
/* The end of every MMS_ERECOVER message of a process that may not write
 * the store's files: what to do about it (not `mms recover`, which
 * salvages into a new store). */
#define MMS__NEEDS_WRITER                                                                  \
    "the store needs recovery by a process that can write it (any open of the store by "   \
    "its owner does it, `mms info DIR` for one)"
/* Closed by a handle that died with work to finish (an untouched gate is
 * opened: lock.c). */
bool mms__gate_left_dead(mms_store *s);
/* 0, MMS__GATE_ADOPTED when it took the gate over from a handle that died
 * after it may have written (the caller finishes that work: apply.c), or
 * an error (the gate is not held). */
#define MMS__GATE_ADOPTED 1
int mms__gate_close(mms_store *s);
void mms__gate_open(mms_store *s, uint64_t txn);
void mms__gate_reopen(mms_store *s);
/* An apply failed holding the gate: it stays closed, held by nobody
 * (MMS__GATE_DEAD); the caller has set recover_needed. */
void mms__gate_fail(mms_store *s);
/* Wake the handles in mms__wait_change (notify + 1): a publication, or a
 * change that may let one of them apply (apply.c). */
void mms__notify(struct mms__lock *L);
uint32_t mms__notify_seq(const struct mms__lock *L);
int mms__wait_change(mms_store *s, uint32_t seq, uint64_t txn, int64_t timeout_ms,
                     uint64_t *now);
/* timeout_ms < 0: for ever; 0: MMS_EBUSY at once; else -ETIMEDOUT past it. */
int mms__writer_lock_timed(mms_store *s, int timeout_ms);
void mms__writer_unlock(mms_store *s);
bool mms__writer_held(const mms_store *s); /* by any handle, in any process */
/* A writer died between writing its commit group and counting it, or a
 * commit point failed (recover_needed), and this handle is not the writer:
 * a reader must take it over first (mms__pin_stuck, MMS__STUCK_WRITER),
 * not be shown the state without that commit. */
bool mms__writer_left_commit(const mms_store *s);
static inline bool mms__writer_held_by(const mms_store *s) /* by this handle */
{
    return s->writer_tid != 0;
}
uint32_t mms__my_tid(void);
/* The registry: deadlock guards and fork. */
void mms__registry_init(mms_store *s);  /* a new handle, of this process as it is */
void mms__registry_add(mms_store *s);   /* an open one */
void mms__registry_remove(mms_store *s);
bool mms__forked(const mms_store *s);    /* used in a child after fork() */
int mms__check_fork(const mms_store *s); /* MMS_EFORK or 0 */
bool mms__pinned_by_me(const mms_store *s); /* this thread pins a handle of s's store */
/* Compaction: this handle alone has the store open, and keeps others from
 * opening it until mms__lock_shared (MMS_EBUSY, naming their pids, when
 * others have it open). */
int mms__lock_alone(mms_store *s);
/* The same without a message: true when this handle is alone now. */
bool mms__lock_alone_try(mms_store *s);
void mms__lock_shared(mms_store *s);
/* Common argument checks: 0 or an error. */
int mms__check_handle(const mms_store *s);
int mms__check_write(const mms_store *s); /* + inside a write transaction */
/* Library code changed a ref to one of its own heap objects (the catalog,
 * a table's field list, deleted-record bitmap, index list, null bitmaps):
 * the set mms__heap_lib_refuse looks in is walked again. */
static inline void mms__heap_lib_changed(mms_store *s)
{
    s->lib_set_ok = false;
}

/* ------------------------------------------------------------------------
 * Layer 3: hdr.c
 * ------------------------------------------------------------------------ */
/* Region 0's header page and region table, as read through its file. */
struct mms__hdrbuf {
    struct mms__hdr h;
    struct mms__rent rt[MMS_MAX_REGIONS];
};
_Static_assert(sizeof(struct mms__hdrbuf) == MMS__HDR_BYTES, "hdrbuf");
/* Fill a new store's header: magic, version, ABI, a new uuid, region 0. */
void mms__hdr_format(struct mms__hdr *h, struct mms__rent *rt);
uint32_t mms__hdr_crc(const struct mms__hdr *h, const struct mms__rent *rt);
int mms__hdr_check_static(const struct mms__hdr *h, uint64_t file_size);
/* What is wrong with a fixed-address layout (NULL: nothing; all zero is
 * "none" and fine): alignment, lengths, past MMS__ADDR_END. */
const char *mms__fixed_bad(const struct mms__fixed *f);
int mms__hdr_check_full(const struct mms__hdr *h, const struct mms__rent *rt, uint64_t fsize);
/* Read and check (statically) the header and the region table entries in
 * use; *fsize gets region 0's file size. */
int mms__hdr_read(int fd, struct mms__hdrbuf *b, uint64_t *fsize);
/* The same through a read-only shared mapping of the header pages (an
 * open with MMS_FIXED, recovery, a checkpoint's giving back: a copy would be 8 KB of fresh stack, two or three page faults of
 * ~15 us here; the mapping reads the page cache). *b follows the file
 * (its checks hold while nobody applies commits: alone, or pinned).
 * mms__hdr_unmap(NULL) is a no-op. */
int mms__hdr_map(int fd, const struct mms__hdrbuf **b, uint64_t *fsize);
void mms__hdr_unmap(const struct mms__hdrbuf *b);
/* The same through region 0's own early mapping (an open without
 * MMS_FIXED: mms__map_early0), which stays the handle's, mapped or given
 * back by map.c: never mms__hdr_unmap'ed. */
int mms__hdr_map_region0(mms_store *s, int fd, const struct mms__hdrbuf **b, uint64_t *fsize);

/* ------------------------------------------------------------------------
 * Layer 3: journal.c
 * ------------------------------------------------------------------------ */
int mms__journal_create(mms_store *s, const uint8_t uuid[16]);
int mms__journal_open(mms_store *s);
/* Read the header slots into s->J with one read, which also says whether
 * a group follows (*groups: recovery has something to replay). */
int mms__journal_load(mms_store *s, const uint8_t uuid[16], bool *groups);
/* The journal as the next commit must find it, read from the file, and the
 * txn of its last valid group; 1: only a recovery can judge it. */
int mms__journal_count(mms_store *s, const uint8_t uuid[16], struct mms__jstate *J,
                       uint64_t *last);
/* Where applying stands: the group of txn + 1 starts at offset off, its
 * CRC seed is crc (the salt for the first group of an epoch). */
struct mms__apos {
    uint64_t off, txn;
    uint32_t crc;
};
/* Invariant 3: apply the groups after pos, up to txn upto, to the region
 * files (pwrite through files opened by name); pos follows. The caller
 * makes sure they are durable and that no reader is inside (Invariant 6).
 * sync: fdatasync every file written (recovery, before its checkpoint). */
int mms__journal_apply(mms_store *s, struct mms__apos *pos, uint64_t upto, bool sync,
                       const char *point /* crash point passed before each group */);
/* Each DATA record of the groups after pos, up to txn upto, in order, then
 * group_end after each group; pos follows. (Bytes from a checksummed group;
 * fn still checks where they go.) fn and group_end NULL: only move pos past
 * those groups, each validated. */
typedef int (*mms__jrec_fn)(void *ctx, uint32_t region, uint32_t gen, uint64_t off,
                            const uint8_t *bytes, uint32_t len);
int mms__journal_each(mms_store *s, struct mms__apos *pos, uint64_t upto, mms__jrec_fn fn,
                      int (*group_end)(void *ctx, uint64_t txn), void *ctx);
/* Recovery: sync the journal, then replay every valid group of the epoch
 * into the region files and sync them. *replayed gets the number of groups
 * applied; *last_txn the txn id they reach. Called right after
 * mms__journal_load, with what it said of the groups. */
int mms__journal_recover(mms_store *s, bool groups, uint64_t pre_txn, bool can_write,
                         uint64_t *replayed, uint64_t *last_txn);
/* Checkpoint step 2: a new epoch. */
int mms__journal_reset(mms_store *s, const uint8_t uuid[16], uint64_t start_txn);
/* Build and write a commit group: begin, data..., size..., commit. */
void mms__jgroup_begin(mms_store *s, uint64_t txn_id);
int mms__jgroup_data(mms_store *s, uint32_t region, uint32_t gen, uint64_t off,
                     const void *bytes, uint32_t len);
int mms__jgroup_size(mms_store *s, uint32_t region, uint32_t gen, uint64_t size);
int mms__jgroup_write(mms_store *s, uint64_t txn_id);
int mms__jgroup_sync(mms_store *s);
/* fdatasync of the journal for commits (a group, MMS_NOSYNC's syncs): a
 * failure is sticky in the lock file (sync_failed) and every later call,
 * of any handle, fails too until the store is opened anew. */
int mms__jsync(mms_store *s);
/* Walk the journal for mms_verify / mms_info. */
int mms__journal_check(mms_store *s, uint64_t *groups, uint64_t *bytes, char *msg, size_t cap);
/* A new file `journal` in directory dirfd for a copy of a store whose
 * region files hold txn start_txn: one header slot naming uuid, no group,
 * synced (copy.c). */
int mms__journal_write_new(int dirfd, const uint8_t uuid[16], uint64_t start_txn);
/* Right after a checkpoint, with the writer lock: the journal file back
 * to the size of a new store's (compact.c). */
int mms__journal_shrink(mms_store *s);

/* ------------------------------------------------------------------------
 * Layer 3: held.c -- a write handle's private pages between transactions
 * ------------------------------------------------------------------------ */
struct mms__held {
    char *page;      /* its address in the handle's view; NULL: an empty slot */
    uint8_t *shadow; /* its committed content while the file lacks it, or NULL */
    uint64_t txn;    /* the last commit that changed it */
    uint32_t gen;    /* the file generation of its region */
    uint32_t mark;   /* scratch for the sweeps of a commit */
    bool wp;         /* write-protected since its last write (os.c), in mapping: */
    uint64_t mapseq; /* its region's mapseq when protected */
};
struct mms__held *mms__held_find(const mms_store *s, const char *page);
/* Hold page (add or update): changed by txn; with a shadow copy of its
 * content now, or without one (freed if it had one). */
int mms__held_set(mms_store *s, char *page, uint32_t gen, uint64_t txn, bool shadow);
void mms__held_unshadow(mms_store *s, struct mms__held *h);
void mms__held_remove(mms_store *s, struct mms__held *h); /* h: from held_find, gone after */
/* The committed content of private page p of region id: its shadow if it
 * has one (the file lags behind it), else the file's. */
const char *mms__page_base(const mms_store *s, char *p, uint32_t id);
/* Does private page p of region id differ from its committed content? */
bool mms__page_changed(const mms_store *s, char *p, uint32_t id);
/* Keep the entries keep() says to (it may change the entry it is given,
 * not the table); the others lose their shadow and, if drop, their private
 * page. Never fails: the table swaps with a preallocated spare. */
void mms__held_sweep(mms_store *s, bool (*keep)(mms_store *s, struct mms__held *h, void *ctx),
                     void *ctx, bool drop);
void mms__held_clear(mms_store *s); /* forget them all (their pages stay as they are) */
void mms__held_free(mms_store *s);

/* ------------------------------------------------------------------------
 * Layer 3: alloc.c
 * ------------------------------------------------------------------------ */
void mms__heap_init(mms_store *s); /* format a new heap in a mapped header */
int mms__heap_verify(const mms_store *s, char *msg, size_t cap);
void mms__heap_forget(mms_store *s); /* the heap changed behind the allocator's back */
/* Usable size of the live allocation that starts at ref; MMS_EBADREF (or
 * MMS_ECORRUPT) if it is not one. No handle checks: a read. */
int mms__alloc_usable(const mms_store *s, mms_ref ref, uint64_t *usable);
/* mms_free() and mms_realloc() for the library's own calls, inside a
 * write transaction (the handle checked): the work and its errors, without
 * the refusal of the library's own objects (the public functions,
 * heapobj.c, add it and the handle's check). Every caller in src/ uses these:
 * the library knows what it frees, and a look at the catalog per free
 * would cost a table's drop a walk per string. */
int mms__free(mms_store *s, mms_ref ref);
int mms__realloc(mms_store *s, mms_ref *ref, size_t size);
/* heapobj.c: MMS_EBADREF, naming the object, if ref is one of the
 * library's own heap objects (mms_heap_library_owned); call names the
 * public function that refuses it. 0, or MMS_ECORRUPT for a damaged
 * catalog. No handle check: the caller made it. */
int mms__heap_lib_refuse(mms_store *s, mms_ref ref, const char *call);
/* The usable size mms_alloc() gives an allocation of size bytes. */
uint64_t mms__alloc_fit(size_t size);
/* For the pointer scan (pmem.c), on a heap mms__heap_verify found sound:
 * fn(ctx, offset, usable size) for every live allocation, in address order,
 * until fn returns non-zero (which is returned); and where heap offset off
 * falls: 1 inside a live allocation (*start and *usable name it), 0 not
 * (*what says where instead), or an error. */
int mms__heap_each(const mms_store *s, int (*fn)(void *ctx, uint64_t off, uint64_t usable),
                   void *ctx);
int mms__heap_find(const mms_store *s, uint64_t off, uint64_t *start, uint64_t *usable,
                   const char **what);
/* For a load (heapobj.c): allocate usable bytes (a size the allocator
 * gives: a slab slot, whole pages, or huge units) exactly at heap offset
 * off, in the slab whose first page is at heap offset slab (small sizes
 * only); the place must be free pages of a normal segment, or the end of
 * the heap for a huge allocation (the heap grows as needed). MMS_EINVAL:
 * no allocation of that size can be there; MMS_EBADREF: the place is
 * taken. slab_of: the slab offset of the live allocation ref, 0 for one
 * that is not in a slab. */
int mms__heap_place(mms_store *s, uint64_t off, uint64_t usable, uint64_t slab);
int mms__heap_slab_of(const mms_store *s, mms_ref ref, uint64_t *slab);
/* heapobj.c: mms_verify_heap's count, on the state s shows. */
int mms__heap_reach(const mms_store *s, mms_heap_check *hc);
/* heapobj.c, at commit, after the changed records were checked: the
 * library's own heap objects (the catalog, each table's field list,
 * deleted-record bitmap, index list and null bitmaps) are still live
 * allocations -- the public calls refuse to free them, this is the net
 * behind that -- and no
 * live record's STR or BLOB field holds a string the transaction freed.
 * MMS_EBADREF if not. O(1) when the transaction freed nothing, else
 * O(tables + fields + frees); when it freed a committed string that no
 * changed record let go, a look at the handle's count of holders (where
 * there is none, a scan of every STR and BLOB field, and the next such
 * commit builds it: heapobj.c, "The strings of live records"). */
int mms__heap_owned_check(mms_store *s);
/* heapobj.c, the count of holders at commit: begin (txn.c, before the
 * records are visited), one record the commit visits (table.c: old NULL
 * for an appended one), the commit done (txn.c, after the commit point),
 * and the handle closed. */
void mms__heap_holders_begin(mms_store *s);
void mms__heap_holders_record(mms_store *s, const struct mms__tabent *e, uint64_t index,
                              const char *old, const char *rec);
void mms__heap_holders_committed(mms_store *s);
void mms__heap_holders_free(mms_store *s);
/* Compaction (compact.c, copy.c). free_runs: fn for each byte range of
 * the heap whose content means nothing and may be given back to the file
 * system -- every page of a free span, every page of a free unit run but
 * each unit's first -- with its descriptor's flags; a damaged chain is
 * MMS_ECORRUPT. heap_compact, in a write transaction: empty segments
 * become free units, a free run that ends the heap leaves it (*trimmed
 * bytes), and every free span and run is flagged MMS__DF_HOLES. */
typedef int (*mms__free_run_fn)(void *ctx, uint64_t off, uint64_t len, uint16_t flags);
int mms__heap_free_runs(const mms_store *s, mms__free_run_fn fn, void *ctx);
int mms__heap_compact(mms_store *s, uint64_t *trimmed);

/* ------------------------------------------------------------------------
 * Layer 4: recover.c
 * ------------------------------------------------------------------------ */
/* Replay the journal, checkpoint, publish: with region 0 open as fd and its
 * header read into b. */
int mms__recover_at(mms_store *s, int fd, const struct mms__hdrbuf *b, uint64_t *fsize);
/* The same with the writer lock held, while the store is open: after a
 * handle died applying, or over another store's journal (mms__repair). */
int mms__recover_live(mms_store *s);
/* Give back the file space past each region's committed size and its
 * growth step that transactions which aborted or died left (recover.c):
 * at the first open (before, with the store's header in b and region 0
 * open as fd), and at a checkpoint with the writer lock (after). */
int mms__space_give_back_at_open(mms_store *s, int fd, const struct mms__hdrbuf *b,
                                 uint64_t *fsize, bool all);
int mms__space_give_back(mms_store *s); /* best effort: returns 0 */

/* ------------------------------------------------------------------------
 * Layer 5: apply.c -- the apply pipeline (its NOTES)
 * ------------------------------------------------------------------------ */
/* MMS_NOSYNC: the oldest unsynced commit is old, or a background sync of
 * this handle failed and no call has reported it yet. */
bool mms__sync_due(const mms_store *s);
/* Make every commit written so far durable (sync the journal). Any handle
 * may; one at a time. First reports a failed background sync of the
 * handle, if one waits to be reported (S4). */
int mms__make_durable(mms_store *s);
/* MMS_NOSYNC's background syncer (S1-S6): start it (before the handle's
 * first NOSYNC commit point; once); count a commit (after it set
 * L->committed: marks it unsynced, wakes the syncer if it sleeps with
 * nothing to do); stop it (close, before the journal is closed). */
int mms__syncer_start(mms_store *s);
void mms__syncer_count(mms_store *s);
void mms__syncer_stop(mms_store *s);
#define MMS__SYNCER_STOP 1u
#define MMS__SYNCER_IDLE 2u
/* mms__gate_try for an apply: when it gives up with unslotted readers
 * inside, it also wakes (or starts) the handle's pin watcher, which
 * applies once they leave (P1-P6). Stop the watcher: mms_close, after its
 * last apply. */
bool mms__apply_gate(mms_store *s);
void mms__pinwatch_stop(mms_store *s);
#define MMS__PINWATCH_STOP 1u
#define MMS__PINWATCH_KICK 2u
/* Apply the durable commits not yet published, if no reader is inside
 * (syncing first when a sync is due). Never waits. */
int mms__apply_try(mms_store *s);
/* Make everything durable and apply it, waiting for the readers inside. */
int mms__apply_all(mms_store *s);
/* recover_needed (doc/FORMAT.md): bit 0, something to take over (a writer
 * died, a call failed after its journal write); bit 1, by the full
 * recovery: a sync of the region files failed, so their pages must be
 * written from the journal again before any checkpoint empties it -- a
 * later sync may report pages the kernel dropped as written (journal.c,
 * mms__jsync). */
#define MMS__RECOVER_FULL 2u
/* Holding the writer lock: take over what a dead writer, a failed apply or
 * checkpoint, or a dead applier left -- without waiting for readers, unless
 * the files need the full recovery (mms__recover_live). */
int mms__repair(mms_store *s);
/* With the gate held: apply (published, durable], publish, open it.
 * point: the crash point passed before each group (crash tests). */
int mms__apply_locked(mms_store *s, const char *point);
/* mms__pin's stuck callback (ctx is the handle). */
int mms__pin_stuck(void *ctx, int why);

/* ------------------------------------------------------------------------
 * Layer 5: catalog.c, str.c
 * ------------------------------------------------------------------------ */
/* The catalog: *out NULL if the store has none; MMS_ECORRUPT if the header
 * names something that is not a sound catalog (never read past). */
int mms__catalog_get(const mms_store *s, struct mms__catalog **out);
/* The same, NULL for none or damaged (callers that have checked it once). */
struct mms__catalog *mms__catalog(const mms_store *s);
/* An entry fit to use: its region a mapped table region of the right size,
 * its heap refs inside the heap. MMS_ECORRUPT naming what is wrong. */
int mms__entry_check(const mms_store *s, const struct mms__tabent *e);
/* ref names len bytes of the heap, aligned to align. */
bool mms__heap_range(const mms_store *s, mms_ref ref, uint64_t len, uint64_t align);
int mms__catalog_find(const mms_store *s, const char *name); /* entry index or -1 */
/* mms_tables, with the state as it is (read.c pins it outside a
 * transaction). */
int mms__tables_list(mms_store *s, mms_table_info *out, size_t cap, size_t *n);
struct mms__tabent *mms__catalog_by_region(const mms_store *s, uint32_t region);
struct mms__fdesc *mms__fdescs(const mms_store *s, const struct mms__tabent *e);
/* The field of e named name (a field descriptor's name, NUL-padded), or NULL. */
const struct mms__fdesc *mms__fdesc_named(const mms_store *s, const struct mms__tabent *e,
                                          const char *name);
/* Is slot i of e's table a live record? */
bool mms__catalog_live(const mms_store *s, const struct mms__tabent *e, uint64_t i);
/* A new zeroed entry (the catalog is created or grown as needed). */
int mms__catalog_add(mms_store *s, struct mms__tabent **out, int *idx);
int mms__catalog_verify(const mms_store *s, char *msg, size_t cap);
/* Dropping a table: entry idx leaves the catalog (the entries after it
 * move down one); ref fields that target region get target 0 and their
 * tables a new layout_gen (returns how many fields). */
void mms__catalog_remove(mms_store *s, int idx);
uint32_t mms__catalog_untarget(mms_store *s, uint32_t region);
/* Write a string of len bytes (tagged length, bytes, NUL) at p, which has
 * room for len + 9 bytes (mms_str_new, and a load's mms_heap_place_str). */
void mms__str_write(char *p, const void *bytes, size_t len);
/* Does ref name a whole string or blob of this store's heap? */
bool mms__str_valid(const mms_store *s, mms_ref ref);
/* Do the 8 bytes at p hold a string's tagged length (any length)? */
bool mms__str_tagged(const void *p);

/* ------------------------------------------------------------------------
 * Layer 6: index.c -- hash and ordered indexes: their regions, bulk
 * builds, upkeep at commit, lookups, verification. Works on catalog
 * entries; table.c, txn.c and lookup.c call it.
 * ------------------------------------------------------------------------ */
#define MMS__IX_MAX_KEY 256u /* chars keys of at most this many bytes */
/* The descriptors of entry e (NULL when it has none, or they are damaged). */
struct mms__ixdesc *mms__ixdescs(const mms_store *s, const struct mms__tabent *e);
/* The descriptor of the index on field in e, or NULL. */
struct mms__ixdesc *mms__ixdesc_named(const mms_store *s, const struct mms__tabent *e,
                                      const char *field);
/* May f be an index's key; its covered field (0, or MMS_ENOTSUP)? */
int mms__ix_keyable(const char *table, const struct mms__fdesc *f);
int mms__ix_coverable(const char *table, const struct mms__fdesc *f);
/* Key bytes that compare like the values (memcmp), from a field value. */
void mms__ix_norm(unsigned kind, uint32_t size, const void *val, uint8_t *out);
void mms__ix_denorm(unsigned kind, uint32_t size, const uint8_t *key, void *val);
/* Sorts of index entries so far, by bulk builds and unique checks (tests
 * count them, as SQLite's count its sorts). */
extern unsigned long mms__ix_sorts;
/* Create (and bulk build) the index of field f of e (a hash one covering
 * field cf, or NULL); drop one. */
int mms__ix_create(mms_store *s, struct mms__tabent *e, const struct mms__fdesc *f,
                   uint32_t kind, uint32_t flags, const struct mms__fdesc *cf);
int mms__ix_drop(mms_store *s, struct mms__tabent *e, uint32_t k);
/* At append: a unique index refuses rec's key if a live record holds it
 * (as far as the index and this transaction's appends can tell). */
int mms__ix_check_append(mms_store *s, const struct mms__tabent *e, uint64_t i, const char *rec);
/* Field k's missing-value bitmap pair of e (FORMAT §2.7), or NULL when e
 * has none (or it is damaged). */
struct mms__nullbits *mms__nulls_of(const mms_store *s, const struct mms__tabent *e, uint32_t k);
/* Record i's missing-value mark of field (its number) changed
 * (mms_table_null_set): when an index is on it, the commit gives the
 * record the entry its mark says (a mark changes no byte the commit's
 * diff could see when the value was zeros already). */
int mms__ix_note_mark(mms_store *s, const struct mms__tabent *e, uint64_t i, uint32_t field);
/* At commit (txn.c): begin (rebuild what a migration or a create needs),
 * each changed record (old: its committed bytes, or NULL), end (unique
 * checks). */
int mms__ix_commit_begin(mms_store *s);
int mms__ix_record(mms_store *s, const struct mms__tabent *e, uint64_t k, const char *old,
                   const char *rec);
int mms__ix_commit_end(mms_store *s);
void mms__ix_txn_end(mms_store *s); /* commit or abort: forget the transaction's work */
void mms__ix_free(mms_store *s);
int mms__ix_verify(mms_store *s, const struct mms__tabent *e, char *msg, size_t cap);

/* What a lookup needs of one index, resolved from the catalog. */
struct mms__ixview {
    uint32_t kind, flags, K, E, key_kind, key_off, rs, region;
    uint32_t C, cover_off; /* covering: the covered field's size (0: none), offset in the
                            * record; its copy is at slot + E - 8 (hash), entry + L (ordered) */
    uint32_t L;            /* ordered: bytes an entry compares on, a separator's size (K + 8) */
    int cls;            /* the key kind's class (mms_kind_class) */
    const char *ix;     /* the index region */
    uint64_t ix_bytes;  /* bytes of it that may be read */
    const char *recs;   /* the table's records */
    uint64_t count;     /* slots of the table that may be read */
    uint64_t max_slots; /* hash: slots that fit in ix_bytes (no division per find) */
    uint64_t mask;      /* hash: the header's nslots - 1 when it fits ix_bytes, else 0 */
    uint32_t lcap, icap; /* ordered: entries of a leaf, separators of an inner page */
    bool check;          /* compare the record's key with an entry's, and take only
                          * live records (not in a read transaction, where table and
                          * index are one commit): mms__ix_holds */
    const uint64_t *tomb; /* the table's deleted-record bitmap as of this view (the */
    uint64_t tomb_bits;   /* epoch moves at every delete): bits; past them, live */
    const uint64_t *nulls; /* the key field's missing-value bitmap, the same way (the */
    uint64_t null_bits;    /* epoch moves at every mark): bits; past them, not missing */
    bool stale;            /* written before missing keys lost their entries, on a
                            * field with missing values: lookups check (v->check) */
};
int mms__ixview_get(const mms_store *s, const struct mms__tabent *e, const struct mms__ixdesc *d,
                    struct mms__ixview *v);
/* Has record rec an entry as of v: live (its deleted-record bitmap) and its
 * key not missing (the field's missing-value bitmap)? */
static inline bool mms__ix_held(const struct mms__ixview *v, uint64_t rec)
{
    return (rec >= v->tomb_bits || !(v->tomb[rec / 64] >> (rec % 64) & 1)) &&
           (rec >= v->null_bits || !(v->nulls[rec / 64] >> (rec % 64) & 1));
}
/* Does record rec hold the normalized key nkey, and (v->check) is it held
 * (mms__ix_held)? Where table and index may be of different commits
 * (v->check), an entry answers only for a record that does: a record the
 * transaction deleted, or whose key it marked missing, is zeros there,
 * which is the key of zero bytes. */
bool mms__ix_holds(const struct mms__ixview *v, uint64_t rec, const uint8_t *nkey);
/* Records whose key is nkey: up to cap into out, *n all of them. */
int mms__ix_find(const struct mms__ixview *v, const uint8_t *nkey, uint64_t *out, size_t cap,
                 uint64_t *n);
/* One live record whose key is nkey (a hash index: the first in probe
 * order). MMS_ENOTFOUND when none. */
int mms__ix_hash_first(const struct mms__ixview *v, const uint8_t *nkey, uint64_t *rec);
/* The same on a covering hash index, and the covered value (v->C bytes)
 * into value: the slot's copy in a read transaction, the record's
 * elsewhere (v->check). */
int mms__ix_hash_cover(const struct mms__ixview *v, const uint8_t *nkey, uint64_t *rec,
                       void *value);

/* Hash slots (FORMAT §2.8) as a get's short path reads them. A slot's
 * first word holds the record index + 1 in its low 40 bits (the word is 0
 * in an empty slot) and, above them, 24 bits that check it against the
 * key's hash (mms__ix_slot_word); the key follows, then (covering) the
 * covered value in the slot's last 8 bytes. A reader in a read transaction
 * takes the slot for the answer without reading the record, so a damaged
 * word must not name another record: one whose check fails is no match.
 * These are here, not in index.c, so that lookup.c's get is one function
 * with the probe inline (mms_index_find_covered). */
#define MMS__IX_SLOT_REC ((UINT64_C(1) << 40) - 1) /* record index + 1, at most */
#define MMS__IX_GOLDEN UINT64_C(0x9e3779b97f4a7c15)

static inline uint64_t mms__ix_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* The hash of a key of K bytes in its index form (mms__ix_norm). */
static inline uint64_t mms__ix_hash(const uint8_t *k, uint32_t K)
{
    uint64_t h = MMS__IX_GOLDEN ^ K, w;
    uint32_t i = 0;
    for (; i + 8 <= K; i += 8) {
        memcpy(&w, k + i, 8);
        h = mms__ix_mix(h ^ w);
    }
    if (i < K) {
        w = 0;
        memcpy(&w, k + i, K - i);
        h = mms__ix_mix(h ^ w);
    }
    return i == 0 ? mms__ix_mix(h) : h;
}

/* The first word of the slot of record r1 - 1 whose key hashes to h. */
static inline uint64_t mms__ix_slot_word(uint64_t h, uint64_t r1)
{
    return r1 | ((h ^ r1 * MMS__IX_GOLDEN) >> 40 << 40);
}

/* The first slot from its home that holds the 8-byte key nk (normalized,
 * by value) in a hash index of E-byte slots (a constant at each call), or
 * NULL: an empty slot came first (or every slot). *rec is its record as a
 * read transaction finds it (the slot is the answer: table and index are
 * of one commit), or UINT64_MAX when the slot fails its check (its word,
 * or a record past the table): a damaged slot, past which only the
 * general probe goes on (index.c, hash_first_any). Otherwise the same
 * answer as that probe, by fewer instructions: a get's slot miss overlaps
 * with the next get's only while the CPU keeps both in flight, so every
 * instruction of a get counts, and the loop keeps few values live so that
 * a get with it inline saves one register at most (bench/results/index.md).
 * v->mask must not be 0: it was checked against the region when the view
 * was made. The probe stops at the first slot of the key: any one record
 * of the key will do. */
static inline __attribute__((always_inline)) const char *
mms__ix_probe8(const struct mms__ixview *v, uint64_t nk, uint32_t E, uint64_t *rec)
{
    const char *sl;
    uint64_t h = mms__ix_hash((const uint8_t *)&nk, 8), w, sk;
    /* j - h counts the slots probed, j & v->mask is the slot. */
    for (uint64_t j = h;; j++) {
        if (j - h > v->mask)
            return NULL;
        sl = v->ix + MMS__PAGE + (j & v->mask) * E;
        memcpy(&w, sl, 8);
        if (!w)
            return NULL;
        memcpy(&sk, sl + 8, 8);
        if (sk == nk)
            break;
    }
    /* The check (w == mms__ix_slot_word(h, r1): the same top 24 bits)
     * and the record within the table. */
    uint64_t r1 = w & MMS__IX_SLOT_REC;
    *rec = !((w ^ h ^ r1 * MMS__IX_GOLDEN) >> 40) && r1 - 1 < v->count ? r1 - 1 : UINT64_MAX;
    return sl;
}

/* A covered value of C bytes to dst: the usual sizes without a call to
 * memcpy (an eighth of a covered get's instructions, under cachegrind),
 * the others by a tail call to mms__ix_copy_odd (no registers saved around
 * a call on a get's path). 0. */
static __attribute__((noinline, unused)) int mms__ix_copy_odd(void *dst, const void *src,
                                                              uint32_t C)
{
    memcpy(dst, src, C);
    return 0;
}

static inline int mms__ix_copy_cover(void *dst, const char *src, uint32_t C)
{
    switch (C) {
    case 8: memcpy(dst, src, 8); return 0;
    case 4: memcpy(dst, src, 4); return 0;
    case 2: memcpy(dst, src, 2); return 0;
    case 1: memcpy(dst, src, 1); return 0;
    default: return mms__ix_copy_odd(dst, src, C);
    }
}

/* Hash index, 8-byte integer keys: up to MMS__IX_BATCH keys (normalized)
 * at once, rec[i] = the record or UINT64_MAX. 1: not that kind of index. */
#define MMS__IX_BATCH 16
int mms__ix_hash_batch8(const struct mms__ixview *v, const uint64_t *nkeys, size_t n,
                        uint64_t *rec);
/* Ordered cursors: a position is a leaf page and an entry in it, and
 * the page's entries and their count as found valid when the position
 * came to the page (a step within the page reads no header). They hold
 * for the view of the index they were found in; in another (a commit, a
 * new read transaction, a remap) mms__ix_recheck finds them again, or
 * (the page is no leaf any more) unpositions p. */
struct mms__ixpos {
    uint64_t page; /* 0: no position (and then n is 0) */
    int64_t pos;
    const uint8_t *ents;
    uint32_t n;
};
enum { MMS__SEEK_FIRST, MMS__SEEK_LAST, MMS__SEEK_GE, MMS__SEEK_GT, MMS__SEEK_LE, MMS__SEEK_LT };
int mms__ix_seek(const struct mms__ixview *v, int op, const uint8_t *nkey, struct mms__ixpos *p);
void mms__ix_recheck(const struct mms__ixview *v, struct mms__ixpos *p);
/* Read one byte of every page of the index's mapping (mms_index_warm). */
void mms__ix_touch(const struct mms__ixview *v);
/* Prefetch the records of the entries from to to steps from p in
 * direction dir (a cursor's next records; no error, no fault). */
#define MMS__IX_AHEAD 8
void mms__ix_prefetch(const struct mms__ixview *v, const struct mms__ixpos *p, int dir,
                      uint32_t from, uint32_t to);
/* The entry at p (after a seek or step that returned 0): its record
 * index, and where its key bytes are (key may be NULL; they stay as long
 * as the view). */
int mms__ix_entry(const struct mms__ixview *v, const struct mms__ixpos *p, uint64_t *rec,
                  const uint8_t **key);
/* Step p to the next entry (dir 1) or the previous (-1) and read it as
 * mms__ix_entry (rec may be NULL); ahead (0: none): prefetch the record
 * that many entries further on. MMS_ENOTFOUND past the end; an error
 * unpositions p. */
int mms__ix_next(const struct mms__ixview *v, struct mms__ixpos *p, int dir, uint32_t ahead,
                 uint64_t *rec, const uint8_t **key);
/* The covered value (v->C bytes) of the entry at p: the entry's copy in
 * a read transaction, the record's field elsewhere (v->check).
 * MMS_ENOTFOUND: p is no position. */
int mms__ix_entry_cover(const struct mms__ixview *v, const struct mms__ixpos *p, void *value);

/* ------------------------------------------------------------------------
 * Layer 7: table.c
 * ------------------------------------------------------------------------ */
/* mms__map_follow, then each table region's record size into view.unit. */
int mms__tables_follow(mms_store *s);
/* mms_table_open and mms_table_find, with the state as it is (read.c pins
 * it for a lookup outside a transaction). */
int mms__table_open(mms_store *s, const char *name, const mms_schema *sc, unsigned flags,
                    mms_table **t);
int mms__table_find(mms_store *s, const char *name, mms_table **t);
/* At commit: record index of the table in region was written by plain
 * stores (old: its committed bytes, NULL for a record appended by this
 * transaction; rec: its new bytes). Checks the values it now holds;
 * MMS_EBADREF aborts the commit. */
int mms__table_record_changed(mms_store *s, const struct mms__tabent *e, uint64_t index,
                              const char *old, const char *rec);
/* Does a commit need to look at this table's changed records? */
bool mms__table_watched(const mms_store *s, const struct mms__tabent *e);
/* At commit: no live record and not the root refers to one the
 * transaction deleted (MMS_EREFERENCED otherwise: the commit is refused),
 * and a heap root is still the start of a live allocation (MMS_EBADREF). */
int mms__tables_check_deletes(mms_store *s);
int mms__tables_verify(mms_store *s, char *msg, size_t cap);
void mms__tables_free(mms_store *s);
void mms__tables_forget(mms_store *s); /* cached layouts may be stale */
void mms__tables_undo(mms_store *s);   /* a write transaction was undone */
void mms__tables_txn_end(mms_store *s); /* a write transaction ended */
/* Compaction, in a write transaction: the deleted slots at the end of each
 * table leave it (*slots of them). */
int mms__tables_trim(mms_store *s, uint64_t *slots);
/* For lookup.c: a handle's store, its catalog entry (NULL: gone), and the
 * entry checked for a write (a write transaction, the table exists). */
mms_store *mms__table_store(const mms_table *t);
struct mms__tabent *mms__table_entry(const mms_table *t);
/* MMS_ESCHEMA when t was opened with a layout e (its entry) no longer has:
 * the caller's records, keys and values are of the old one. */
int mms__table_pin_check(const mms_table *t, const struct mms__tabent *e);
int mms__table_write_entry(mms_table *t, struct mms__tabent **e);

/* ------------------------------------------------------------------------
 * Layer 7: lookup.c -- index handles (the public index API)
 * ------------------------------------------------------------------------ */
void mms__index_handles_free(mms_store *s);

/* ------------------------------------------------------------------------
 * Layer 8: view.c
 * ------------------------------------------------------------------------ */
/* The private pages of every region, in address order, into s->dirty:
 * every one, or (written) those not write-protected since their last write
 * -- the held pages a commit protected and nothing wrote since are left
 * out (txn.c NOTES). */
int mms__dirty_collect(mms_store *s, bool written);
int mms__dirty_push_front(mms_store *s, char *page);
/* A commit's first look for written pages (s->dirty): the scan of
 * mms__dirty_collect(s, true), or, when no page fault happened in the
 * process since the last commit began, the pages that last commit left
 * writable (mms_info.commits_unscanned counts those). mms__dirty_keep, at a commit's end, keeps those
 * (settled: s->dirty's changed flags say which were dropped);
 * mms__dirty_forget makes the next commit scan. */
int mms__dirty_commit(mms_store *s);
void mms__dirty_keep(mms_store *s, bool settled);
void mms__dirty_forget(mms_store *s);
/* Drop (MADV_DONTNEED) runs of pages of s->dirty whose changed flag equals
 * which (or all, which < 0). */
void mms__dirty_drop(mms_store *s, int which);
/* After a commit's settle: drop the page-table entries of every page of
 * the private ranges but the held ones -- pages the writer read -- so the
 * next scan walks only what it touches (txn.c). */
void mms__view_trim(mms_store *s);
uint32_t mms__page_region(const mms_store *s, const char *p); /* of a private page */
/* Private page p of region id against the file's view of it: 1 the same
 * bytes, 0 not, -1 cannot tell (the page lies past the view). */
int mms__page_as_file(const mms_store *s, uint32_t id, const char *p);
/* Drop every private page and forget the held ones: the view becomes the
 * region files'. */
void mms__drop_private(mms_store *s);
/* The writer lock held: make the view show the latest commit. */
int mms__view_for_writer(mms_store *s);
/* Pinned at txn: make the view show it (or, in a write handle, keep a view
 * of the latest commit). */
int mms__view_for_reader(mms_store *s, uint64_t pinned);

/* ------------------------------------------------------------------------
 * Layer 9: txn.c, read.c
 * ------------------------------------------------------------------------ */
/* Take the writer lock and recover after a dead writer (the timeout as in
 * mms__writer_lock_timed). */
int mms__writer_enter_timed(mms_store *s, int timeout_ms);
/* Sync the files at the last commit and empty the journal (Invariant 5).
 * Commits not yet applied are applied first; wait: for the readers that
 * hold them back, else the checkpoint is skipped. */
int mms__checkpoint(mms_store *s, bool wait);

/* ------------------------------------------------------------------------
 * Layer 10: store.c
 * ------------------------------------------------------------------------ */
/* Run check(s, ctx) on the latest committed state, as mms_verify does: the
 * writer lock held (no commit meanwhile), the commits readers hold back
 * applied first (when this process can write the files), a read transaction
 * pinning it. what names the caller in the errors of the frame. */
int mms__at_latest(mms_store *s, const char *what, int (*check)(mms_store *s, void *ctx),
                   void *ctx);
/* Compaction (compact.c, beside store.c). Bytes of disk the files of
 * directory dirfd take (allocated blocks). */
uint64_t mms__dir_disk_bytes(int dirfd);

/* Misc helpers */
static inline uint64_t mms__round_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

#endif

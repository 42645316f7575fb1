/*
 * salvage.h -- reading a damaged store without the library (`mms recover`).
 *
 * The library refuses a store that does not check out, as it must; a salvage
 * tool has to read what is left of one. This reader knows the on-disk format
 * from doc/FORMAT.md alone (it shares no code with src/, so a bug in the
 * library's reading is not repeated here) and trusts nothing it reads: every
 * offset, length and count is checked against the bytes that are really
 * there, and each check that fails is a reason, in words, not a crash.
 *
 * It never writes the store it reads: region files are mapped MAP_PRIVATE
 * from descriptors opened O_RDONLY, and the journal's commit groups are
 * replayed into those private pages only.
 *
 * Layer: called by mms_recover.c; calls only libc, tool.c's tool_room (the
 * tool's one way of growing an array) and mms_kind_size of the public
 * header.
 */
#ifndef MMS_SALVAGE_H
#define MMS_SALVAGE_H

#include <mmstore.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One finding of the reader, as sv_open() meets it. loss: something the
 * store held is not salvaged (a journal commit that could not be replayed);
 * otherwise the line only describes what was found. subject and text as in
 * mms_recover.c's report lines. */
typedef void (*sv_note_fn)(void *ctx, bool loss, const char *subject, const char *text);

/* A region file (one generation of one region), mapped private. */
struct sv_view {
    uint32_t id, gen;
    char *base;     /* NULL if the file is missing or empty */
    uint64_t fsize; /* bytes of the file: nothing past them is read */
    bool missing;
    const char *absent; /* when missing, why: "missing", "not a regular file", ... */
};

struct sv_field {
    char name[48];
    uint32_t kind, offset, size;
    uint32_t target; /* REF: the target table's region, 0 if it was dropped */
    uint8_t dflt[32];
    bool has_dflt;    /* dflt holds a non-zero default */
};

struct sv_index {
    char field[48];
    uint32_t kind;  /* 1 hash, 2 ordered */
    uint32_t flags; /* bit 0 unique */
};

struct sv_table {
    char name[64];
    uint32_t region, nfields, record_size;
    uint64_t count, live; /* as the catalog entry says */
    struct sv_field *f;   /* nfields, malloc'd */
    struct sv_index *ix;  /* nix, malloc'd; NULL if none or unreadable */
    uint32_t nix;
    const char *bad;      /* why the table cannot be read at all, or NULL */
    char bad_buf[200];
    const char *ix_bad;   /* why its index list cannot be read, or NULL */
    /* Records: bytes [0, readable * record_size) of the region's file. */
    const uint8_t *recs;
    uint64_t readable;
    /* Deleted-record bitmap: tomb_bits bits at tomb (heap bytes), when
     * tomb_ok; otherwise tomb_why says why it is unreadable. */
    const uint8_t *tomb;
    uint64_t tomb_bits;
    bool tomb_ok;
    const char *tomb_why;
    /* Null bitmaps: per field, bits (heap bytes, NULL if none) and nbits. */
    const uint8_t **nullbits;
    uint64_t *nullnbits;
    const char *nulls_why; /* why they are unreadable (then all are lost), or NULL */
};

struct sv_store {
    const char *dir;
    int dirfd;
    struct sv_view *v;
    size_t nv, capv;
    /* The header, after the journal's replay. */
    uint32_t nregions;
    uint64_t txn, root, catalog, fixed_base;
    struct {
        uint64_t size;
        uint32_t gen, kind;
    } rt[MMS_MAX_REGIONS];
    /* The heap: region 0, size bytes committed, known of them in its file. */
    const uint8_t *heap;
    uint64_t heap_size, heap_known;
    uint32_t nunits;
    uint8_t *unit_kind;  /* per 4 MiB unit: 16 normal, 17 huge, 18 free, 0 unknown */
    uint32_t *unit_seg;  /* per unit: the first unit of its segment */
    uint32_t *unit_len;  /* per unit: its segment's length in units */
    /* The catalog. */
    struct sv_table *t;
    uint32_t ntables;
    sv_note_fn note;
    void *ctx;
};

/* Read the store in dir: its header, the journal (replayed into private
 * pages as far as its commit groups check out and can be applied whole),
 * the heap's segment map and the catalog. Returns 0, or -1 when nothing can
 * be salvaged: then why (cap bytes) says what stopped it. Findings on the
 * way go to note. sv_close() frees it either way. */
int sv_open(struct sv_store *st, const char *dir, sv_note_fn note, void *ctx, char *why,
            size_t cap);
void sv_close(struct sv_store *st);

/* Pages of the store's files that could not be read (a SIGBUS: an I/O
 * error, a hole on a full file system) read as zeros. sv_bad_report()
 * reports, as losses, those found since its last call (sv_open calls it;
 * call it again after reading records and values); sv_unreadable()
 * whether [p, p + len) of a mapping of st touches one (reading it first). */
void sv_bad_report(const struct sv_store *st);
bool sv_unreadable(const void *p, uint64_t len);

/* Is ref (region 0) the start of a live heap allocation whose bytes are all
 * in the file? *usable gets its usable size. Returns NULL if so, else why
 * not ("free space", "inside an allocation", ...). */
const char *sv_alloc(const struct sv_store *st, mms_ref ref, uint64_t *usable);

/* Is ref a string (or blob) of the store (FORMAT §2.7)? NULL and its bytes
 * (*p, *len), or why not. */
const char *sv_str(const struct sv_store *st, mms_ref ref, const char **p, uint64_t *len);

/* The table whose region is id, or NULL. */
const struct sv_table *sv_table_of(const struct sv_store *st, uint32_t id);

/* Slot i of a readable table: 1 deleted, 0 live (the bitmap must be
 * readable: tomb_ok). */
int sv_deleted(const struct sv_table *t, uint64_t i);

/* Field k of slot i is marked missing. */
bool sv_null(const struct sv_table *t, uint32_t k, uint64_t i);

#endif

/*
 * powersim.h -- power loss, simulated: the state a power cut would leave
 * of one store directory, rebuilt as a new directory (SQLite's test6.c
 * crash VFS is the model; the library's side is mms__os_io_hook, os.c).
 *
 * THE MODEL (powersim.c says how each step is done)
 *
 * The real files are the page cache: everything written, by pwrite or by
 * a store through a shared mapping, is there, and a process that dies does
 * not lose it. What a power cut keeps is tracked beside them, per file
 * (inode): its DURABLE IMAGE, kept on disk in a side directory so that the
 * process that recovers continues where a killed writer stopped.
 *
 *   - fsync/fdatasync of a file: its whole current content and size become
 *     its durable image.
 *   - msync(addr, len): the pages of [addr, addr+len) become durable, in
 *     whichever files /proc/self/maps says they map; the durable size grows
 *     to cover them (never past the current size).
 *   - fsync of the store directory: its current names (name -> inode)
 *     become the durable listing.
 *   - Nothing else is durable: pwrite, stores through shared mappings,
 *     fallocate, ftruncate, create, rename and unlink are not, until a sync
 *     covers them. A file never synced has an empty durable image.
 *
 * A CUT at an event builds, for each variant, a directory holding what the
 * disk could show after a power failure at that moment:
 *   - names: for each inode, its durable names or its current ones (a
 *     rename is atomic); an inode created since the last directory sync may
 *     be missing, one unlinked since may be back (with its durable image);
 *   - contents: the durable image, plus a random subset of the pages whose
 *     current content differs from it, some of them torn: only some of
 *     their eight 512-byte sectors written;
 *   - size: the durable or the current one;
 *   - the lock file: absent, empty, garbage or its current bytes (it holds
 *     nothing durable; the library rebuilds it).
 * Variant 0 is the pure loss: durable images and the durable listing only.
 * With four variants or more, the last is "everything written back" (what
 * a crash of the process alone leaves).
 *
 * Events come from the library through the hook: before every pwrite and
 * sync, after every successful sync, and at every crash point. The test's
 * policy function sees each one (of the simulated store only) and says how
 * many variants to cut there, with a note recorded beside each image (what
 * the test must check when it opens it). It may also kill the process.
 */
#ifndef MMS_POWERSIM_H
#define MMS_POWERSIM_H

#include <stddef.h>
#include <stdint.h>

enum psim_kind {
    PSIM_WRITE,      /* before a pwrite of file[off, off+len) */
    PSIM_SYNC_CALL,  /* before fsync/fdatasync/msync (point names it); file: which */
    PSIM_SYNC_FILE,  /* after fsync/fdatasync of a file */
    PSIM_SYNC_RANGE, /* after msync of file[off, off+len) */
    PSIM_SYNC_DIR,   /* after fsync of the store directory */
    PSIM_POINT,      /* a crash point (point = its name) */
    PSIM_NKIND
};
extern const char *const psim_kind_name[PSIM_NKIND];

struct psim_event {
    uint64_t seq;      /* events of the store in this process so far, 1-based */
    int kind;          /* enum psim_kind */
    const char *file;  /* the store file ("journal", "region-1-0"); "" for none or the directory */
    const char *point; /* crash point, or "fsync"/"fdatasync"/"msync"; "" otherwise */
    uint64_t off, len;
};

/* The test's policy: return how many variants to cut at this event (0: no
 * cut) and write what the cut must satisfy into note (NUL-terminated). */
typedef int (*psim_policy_fn)(const struct psim_event *ev, char *note, size_t cap);

/* Simulate store (a directory) with work as the side directory (shadow
 * images and cuts). Sets paths only; seed drives every random choice. */
void psim_init(const char *store, const char *work, uint64_t seed);
/* Every file of the store is durable as it is now (as after sync(2)). */
void psim_snapshot(void);
/* Install the hook with this policy (NULL: remove it). */
void psim_hook(psim_policy_fn fn);
/* While paused, events are ignored (the test opens cut images meanwhile). */
void psim_pause(int on);
/* A forked child: its own random sequence and cut names. */
void psim_after_fork(uint64_t seed);

/* Totals of this process: cuts taken and images written. */
uint64_t psim_cuts(void);
uint64_t psim_images(void);
/* Seconds spent in the hook keeping durable images, and cutting. */
void psim_times(double *sync_s, double *cut_s);

/* Each image cut so far (by any process on this work directory), oldest
 * first: fn(ctx, dir, note); then the image is deleted. Stops at the first
 * non-zero return of fn and returns it. */
int psim_each_image(int (*fn)(void *ctx, const char *dir, const char *note), void *ctx);

#endif

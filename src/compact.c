/*
 * compact.c -- compaction in place: giving the store's free space back to
 * the file system without moving live data.
 *
 * Layer 9, beside store.c: calls txn.c (a transaction, a checkpoint),
 * view.c, table.c, alloc.c, journal.c, map.c, lock.c and os.c. It must
 * never move a live byte (refs name offsets and record indices), and never
 * give back space that a handle could still store into.
 *
 * NOTES ON THE DESIGN
 *
 * What can go back, and when. The library promises that a full disk is an
 * error code, never a SIGBUS: every byte a handle may store into through a
 * shared mapping has its blocks allocated. Two kinds of space are free:
 *
 *   Rule 1. Space past a region's committed size (the growth preallocated
 *           by posix_fallocate, the deleted slots at a table's end once
 *           the table is shorter, the heap's free units at its end once the
 *           heap is): any write handle maps it shared and writable as
 *           fresh space, and every handle maps the file as long as it was.
 *           Truncating it under another handle would make that handle's
 *           next access a SIGBUS. So files are cut only while this handle
 *           is the only one open, and none can open meanwhile: it holds
 *           byte 0 of the lock file exclusively (lock.c), which openers
 *           wait for.
 *   Rule 2. Free heap pages inside the committed size (free spans, free
 *           unit runs): no handle stores into them outside a transaction,
 *           and a transaction takes them only through the allocator. They
 *           are punched out (holes) and their spans flagged HOLES, so the
 *           allocator allocates their blocks again before it hands them
 *           out (alloc.c NOTES): a full disk is then -ENOSPC from
 *           mms_alloc. A write handle may still hold private copies of
 *           such pages from earlier commits and rewrite them whole at its
 *           next commit, into the hole: that is why punching, too, waits
 *           until this handle is alone (and drops its own private pages).
 *
 * So compaction runs only when no other handle has the store open; with
 * another open it fails with MMS_EBUSY at once (it never waits: a service
 * that keeps the store open would make it wait for ever). A store that
 * stays open is compacted by copying it (mms_copy, MMS_COPY_COMPACT) and
 * switching to the copy.
 *
 * The steps, and why a crash at any point is safe:
 *
 *   1. One write transaction: the deleted slots at each table's end leave
 *      it, free units at the heap's end leave the heap, every free span
 *      and run is flagged HOLES. An ordinary commit: a crash leaves it
 *      whole or absent.
 *   2. A checkpoint: the region files hold that commit and the journal
 *      none (Invariant 5). Cutting a file before would break a replay:
 *      recovery checks that each file is as long as the SIZE records of
 *      the groups it replays say.
 *   3. Punch the flagged free runs, cut each file to its committed size
 *      (rounded up to a page), the journal to one growth step (4 MiB,
 *      mms__journal_shrink; a new store's is 64 KiB) when longer. Only
 *      bytes that mean nothing in the committed state change; a crash
 *      between any two of these leaves that state, with more or less
 *      space given back. A punched page whose flag a crash lost cannot
 *      exist: the flag was committed in step 1, before any punch.
 *   4. Map the shorter files in place (same addresses), so the handle goes
 *      on as before.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

/* Bytes of disk the files of the store directory take, and their
 * lengths. */
struct disk_sum {
    int dirfd;
    uint64_t bytes;
    uint64_t length;
};

static int add_file(void *ctx, const char *name)
{
    struct disk_sum *d = ctx;
    int fd = mms__os_openat(d->dirfd, name, O_RDONLY, 0);
    uint64_t b = 0, n = 0;
    if (fd >= 0 && mms__os_disk_bytes(fd, &b) == 0)
        d->bytes += b;
    if (fd >= 0 && mms__os_fsize(fd, &n) == 0)
        d->length += n;
    mms__os_close(fd);
    return 0;
}

static struct disk_sum dir_sum(int dirfd)
{
    struct disk_sum d = {dirfd, 0, 0};
    mms__os_dir_list(dirfd, add_file, &d);
    return d;
}

uint64_t mms__dir_disk_bytes(int dirfd)
{
    return dir_sum(dirfd).bytes;
}

/* Step 1. */
static int compact_commit(mms_store *s, mms_compact_stats *st)
{
    int r = mms_txn_begin(s, MMS_TXN_NOWAIT);
    if (r)
        return r;
    r = mms__tables_trim(s, &st->slots_trimmed);
    if (!r)
        r = mms__heap_compact(s, &st->heap_trimmed);
    if (r) {
        mms_txn_abort(s);
        return r;
    }
    r = mms_txn_commit(s);
    mms__crashpoint("compact.committed");
    return r;
}

struct punch {
    mms_store *s;
    mms_compact_stats *st;
    bool unsupported; /* the file system cannot punch holes */
};

/* Rule 2: a free run flagged HOLES (all of them, after step 1). */
static int punch_run(void *ctx, uint64_t off, uint64_t len, uint16_t flags)
{
    struct punch *p = ctx;
    if (!(flags & MMS__DF_HOLES) || p->unsupported)
        return 0;
    int r = mms__os_punch(p->s->reg[0].fd, off, len);
    if (r == -EOPNOTSUPP) {
        p->unsupported = true;
        return 0;
    }
    if (r)
        return mms__fail(r, "cannot give back heap pages at %llu: %s", (unsigned long long)off,
                         mms_strerror(r));
    p->st->punched += len;
    mms__crashpoint("compact.punched");
    return 0;
}

/* Rule 1: region id's file cut to its committed size, then mapped again in
 * place (the old mapping is longer than the file). */
static int region_cut(mms_store *s, uint32_t id)
{
    struct mms__region *g = &s->reg[id];
    uint64_t keep = mms__round_up(mms__rtab(s)[id].size, MMS__PAGE), fsize;
    int r = mms__os_fsize(g->fd, &fsize);
    if (!r && fsize > keep) {
        r = mms__os_ftruncate(g->fd, keep);
        mms__crashpoint("compact.truncated");
    }
    if (r)
        return mms__fail(r, "cannot cut region %u's file: %s", id, mms_strerror(r));
    int fd;
    r = mms__region_open_file(s, id, g->gen, false, true, &fd);
    if (!r && (r = mms__map_replace(s, id, fd, g->gen, mms__rtab(s)[id].size)))
        s->poisoned = r; /* the mapping is gone; the store itself is sound */
    return r;
}

/* Steps 2 to 4, with the writer lock. */
static int give_back(mms_store *s, mms_compact_stats *st)
{
    int r = mms__checkpoint(s, true);
    if (r) {
        /* As mms_checkpoint: the journal state may be behind the file. */
        s->poisoned = r;
        __atomic_fetch_or(&s->L->recover_needed, 1, __ATOMIC_ACQ_REL);
        return r;
    }
    mms__crashpoint("compact.checkpointed");
    mms__drop_private(s); /* Rule 2: none of this handle's pages is private */
    r = mms__journal_shrink(s);
    struct punch p = {s, st, false};
    if (!r)
        r = mms__heap_free_runs(s, punch_run, &p);
    const struct mms__rent *rt = mms__rtab(s);
    uint32_t n = mms__hdr(s)->nregions;
    for (uint32_t id = 0; !r && id < n && id < s->nmapped; id++)
        if (rt[id].kind != MMS__RK_NONE && s->view.base[id])
            r = region_cut(s, id);
    return r;
}

int mms_compact(mms_store *s, mms_compact_stats *st)
{
    mms_compact_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->flags & MMS_RDONLY)
        return mms__fail(MMS_ERDONLY, "the store is open read-only");
    if (s->state != MMS__ST_IDLE)
        return mms__fail(MMS_ETXN, "mms_compact inside a transaction");
    struct disk_sum before = dir_sum(s->dirfd);
    st->disk_before = before.bytes;
    if ((r = mms__lock_alone(s)))
        return r;
    r = compact_commit(s, st);
    if (!r && !(r = mms__writer_enter_timed(s, -1))) {
        r = give_back(s, st);
        mms__writer_unlock(s);
    }
    mms__lock_shared(s);
    /* What the files' lengths lost: the tails cut here, the journal's
     * (mms__journal_shrink), what the checkpoint cut or deleted. */
    struct disk_sum after = dir_sum(s->dirfd);
    st->disk_after = after.bytes;
    st->truncated = before.length > after.length ? before.length - after.length : 0;
    return r;
}

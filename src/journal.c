/*
 * journal.c -- the redo journal: writing commit groups, recovery, reset.
 *
 * NOTES ON THE DESIGN (the invariants are numbered as in DESIGN §3)
 *
 * The journal file starts with two 512-byte header slots. Each names the
 * store (uuid), a random salt, a checkpoint sequence number and the txn id
 * of the state the checkpoint synced (start_txn). The valid slot with the
 * higher sequence is current; a checkpoint writes the other slot, so a torn
 * header write leaves the previous one in force.
 *
 * From offset 4096 on come commit groups: BEGIN, DATA and SIZE records, and
 * a COMMIT record whose CRC32C covers every byte of the group and is seeded
 * with the previous group's CRC (the salt for the first group). Group n of
 * an epoch has txn id start_txn + n.
 *
 *  Invariant 2: a commit is durable when its group is fdatasync'ed; that is
 *    the only sync on the commit path (unless the txn grew a region,
 *    Invariant 1, see txn.c).
 *  Invariant 4: recovery replays every valid group in order and stops at the
 *    first torn or mismatching one (wrong type, txn id, length or CRC).
 *    Replaying is idempotent: records carry absolute bytes.
 *  Invariant 5: a checkpoint syncs the region files first, then writes a
 *    header slot with a new salt, which invalidates every older group at
 *    once. A journal naming another store is ignored, never replayed.
 *
 * A torn tail, or damage? The walk stops at the first group that fails its
 * check. A crash mid-append leaves exactly that (a torn last group), and so
 * does a power cut in MMS_NOSYNC (groups not yet synced, lost in any
 * order): dropping the tail loses only commits that were never durable.
 * Damage to a durable group that later commits follow must not be dropped
 * so (they were acknowledged). The writer says which is which: a BEGIN
 * record carries MMS__JB_AFTER_DURABLE when every earlier group of its
 * epoch was durable as it was written (L->durable; always so in the
 * default mode). The rule: past the stop, a group that is valid on its
 * own -- its CRC seeded with the crc its predecessor's COMMIT record stores
 * (or, right after the damaged group, with that group's bytes recomputed)
 * -- with a txn id after the stopped one and that flag proves the stopped
 * group was durable: recovery refuses (MMS_ECORRUPT, pointing at `mms
 * recover`) instead of dropping it and those after it. A group of an
 * older epoch cannot pass: its txn id is at most the checkpoint's, unless
 * a recovery dropped durable groups, which this rule forbids. Journals
 * written without the flag (older versions) stay "torn tail".
 *
 * The region files' own header says which txn they have reached. Recovery
 * refuses a store whose region files are ahead of the last valid group, or
 * behind the last checkpoint: either means a file was lost or damaged.
 *
 * Recovery and mms verify read the journal into memory with pread, never
 * through a mapping: a page that cannot be read is then an error naming
 * its offset, not a SIGBUS. Applying commits while the store is open maps
 * it (the groups were just written, from this machine's page cache).
 *
 * Bytes read from the journal are never trusted: every length and offset is
 * checked before use, and a bad one ends the walk (torn tail) or gives
 * MMS_ECORRUPT (a record of a complete, checksummed group that makes no
 * sense).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define JBUF_FLUSH ((size_t)1 << 20)
/* The journal grows by a quarter of its size, from 64 KiB to 4 MiB a step. */
#define JGROW_MIN ((uint64_t)64 << 10)
#define JGROW ((uint64_t)4 << 20)

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

/* ------------------------------------------------------------------------
 * Header slots
 * ------------------------------------------------------------------------ */
static bool slot_valid(const struct mms__jhdr *h)
{
    return h->magic == MMS__JMAGIC && h->version == MMS__JVERSION &&
           h->crc == mms__crc32c(0, h, offsetof(struct mms__jhdr, crc));
}

static void slot_build(char buf[MMS__JSLOT], const uint8_t uuid[16], uint64_t seq,
                       uint32_t salt, uint64_t start_txn)
{
    memset(buf, 0, MMS__JSLOT);
    struct mms__jhdr *h = (struct mms__jhdr *)(void *)buf;
    h->magic = MMS__JMAGIC;
    h->version = MMS__JVERSION;
    h->salt = salt;
    memcpy(h->uuid, uuid, 16);
    h->seq = seq;
    h->start_txn = start_txn;
    h->crc = mms__crc32c(0, h, offsetof(struct mms__jhdr, crc));
}

static int slot_write(mms_store *s, const uint8_t uuid[16], int slot, uint64_t seq,
                      uint32_t salt, uint64_t start_txn)
{
    char buf[MMS__JSLOT];
    slot_build(buf, uuid, seq, salt, start_txn);
    int r = mms__os_pwrite(s->jfd, buf, sizeof buf, (uint64_t)slot * MMS__JSLOT);
    if (r)
        return mms__fail(r, "cannot write the journal header: %s", mms_strerror(r));
    return 0;
}

static uint32_t new_salt(uint32_t old)
{
    uint32_t salt;
    do
        mms__os_random(&salt, sizeof salt);
    while (salt == old);
    return salt;
}

/* The journal file's size, s->J->alloc: 0 until someone needs it (an open
 * reads the header without measuring the file; a new journal is empty), so
 * measured then. */
static int journal_alloc(mms_store *s)
{
    if (s->J->alloc)
        return 0;
    uint64_t size;
    int r = mms__os_fsize(s->jfd, &size);
    if (!r)
        s->J->alloc = size;
    return r;
}

/* Write zeros up to end, so commits overwrite written blocks (the cheapest
 * fdatasync) and a full disk shows up here, before any group is written. */
static int journal_reserve(mms_store *s, uint64_t end)
{
    static const char zeros[1 << 16];
    int r = journal_alloc(s);
    if (r)
        return r;
    if (end <= s->J->alloc)
        return 0;
    uint64_t step = s->J->alloc / 4 < JGROW_MIN ? JGROW_MIN : s->J->alloc / 4 > JGROW ? JGROW
                                                                                    : s->J->alloc / 4;
    step = mms__round_up(step, JGROW_MIN);
    uint64_t want = mms__round_up(end > s->J->alloc + step ? end : s->J->alloc + step, step);
    for (uint64_t at = s->J->alloc; at < want;) {
        size_t n = want - at < sizeof zeros ? (size_t)(want - at) : sizeof zeros;
        r = mms__os_pwrite(s->jfd, zeros, n, at);
        if (r) {
            mms__os_ftruncate(s->jfd, s->J->alloc);
            return mms__fail(r, "cannot extend the journal: %s", mms_strerror(r));
        }
        at += n;
    }
    s->J->alloc = want;
    return 0;
}

/* Create the journal of a new store: one valid header slot, start_txn 0. */
int mms__journal_create(mms_store *s, const uint8_t uuid[16])
{
    int fd = mms__os_openat(s->dirfd, "journal", O_RDWR | O_CREAT | O_EXCL, 0666);
    if (fd < 0)
        return mms__fail(fd, "cannot create the journal: %s", mms_strerror(fd));
    s->jfd = fd;
    s->jfd_rw = true;
    s->J->salt = new_salt(0);
    s->J->seq = 1;
    s->J->slot = 0;
    s->J->start_txn = 0;
    s->J->alloc = 0;
    int r = journal_reserve(s, MMS__JDATA);
    if (!r)
        r = slot_write(s, uuid, 0, s->J->seq, s->J->salt, 0);
    if (r)
        return r;
    s->J->end = MMS__JDATA;
    s->J->last_crc = s->J->salt;
    return 0;
}

/* Open the journal file: for writing if the handle may ever write it (a
 * read-only handle too, when it can: it may have to recover after a dead
 * writer), read-only otherwise. */
MMS__OPEN_PATH
int mms__journal_open(mms_store *s)
{
    int fd = mms__os_openat(s->dirfd, "journal", O_RDWR, 0);
    s->jfd_rw = fd >= 0;
    if ((fd == -EACCES || fd == -EROFS || fd == -EPERM) && (s->flags & MMS_RDONLY))
        fd = mms__os_openat(s->dirfd, "journal", O_RDONLY, 0);
    if (fd < 0) {
        if (fd == -ENOENT)
            return MMS__CORRUPT("the journal file is missing");
        if (fd == MMS_ECORRUPT)
            return fd; /* not a regular file: the detail says so */
        return mms__fail(fd, "cannot open the journal: %s", mms_strerror(fd));
    }
    s->jfd = fd;
    return 0;
}

/* Read the header slots into s->J (recovery, journal.c's NOTES). A journal
 * naming another store gets start_txn UINT64_MAX: it is never replayed.
 * Two reads take both slots and the start of the first group: usually the
 * journal holds none (a checkpoint emptied it), and then nothing more is
 * read, nor the file measured (s->J->alloc: journal_alloc). Not one read of
 * the 4 KiB from the first slot to the first group: that buffer reached a
 * page of the stack that nothing had touched before in a new process, a
 * page fault (~15 us here) at nearly every first open. The second read
 * starts one byte early, so that it tells a file shorter than its header
 * (damage) by coming back empty. */
MMS__OPEN_PATH
static int journal_load_into(mms_store *s, const uint8_t uuid[16], struct mms__jstate *J,
                             bool *groups)
{
    char buf[MMS__JSLOT + sizeof(struct mms__jhdr)];      /* both slots */
    char tail[1 + sizeof(struct mms__jbegin)];            /* from MMS__JDATA - 1 */
    size_t got, got_tail = 0;
    *groups = false;
    int r = mms__os_pread_upto(s->jfd, buf, sizeof buf, 0, &got);
    if (!r && got == sizeof buf)
        r = mms__os_pread_upto(s->jfd, tail, sizeof tail, MMS__JDATA - 1, &got_tail);
    if (r)
        return mms__fail(r, "cannot read the journal header: %s", mms_strerror(r));
    uint64_t size = got_tail ? MMS__JDATA - 1 + got_tail : got; /* exact below 4112 bytes */
    if (!got_tail && got == sizeof buf && mms__os_fsize(s->jfd, &size) != 0)
        size = got; /* damage either way: the message says at least this much */
    if (size < MMS__JDATA)
        return MMS__CORRUPT("the journal is %llu bytes, shorter than its header",
                            (unsigned long long)size);
    const struct mms__jhdr *a = (const void *)buf, *b = (const void *)(buf + MMS__JSLOT);
    bool va = slot_valid(a), vb = slot_valid(b);
    if (!va && !vb)
        return MMS__CORRUPT("both journal header slots are damaged");
    int slot = (va && (!vb || a->seq >= b->seq)) ? 0 : 1;
    const struct mms__jhdr *h = slot ? b : a;
    J->slot = slot;
    J->seq = h->seq;
    J->salt = h->salt;
    J->start_txn = h->start_txn;
    J->last_crc = h->salt;
    J->end = MMS__JDATA;
    J->alloc = got_tail < sizeof tail ? size : 0; /* the file ends there, or: not measured */
    if (memcmp(h->uuid, uuid, 16) != 0) {
        J->start_txn = UINT64_MAX; /* Invariant 5: another store's journal */
        return 0;
    }
    struct mms__jbegin first;
    memcpy(&first, tail + 1, sizeof first);
    *groups = got_tail == sizeof tail && first.type == MMS__JR_BEGIN &&
              first.txn_id == J->start_txn + 1;
    return 0;
}

MMS__OPEN_PATH
int mms__journal_load(mms_store *s, const uint8_t uuid[16], bool *groups)
{
    return journal_load_into(s, uuid, s->J, groups);
}

/* ------------------------------------------------------------------------
 * Walking the groups
 * ------------------------------------------------------------------------ */
struct group {
    uint64_t off, bytes, txn_id;
    uint32_t crc, nrec;
};

/* Validate the group at off. Returns 1 and fills *g if it is complete and
 * its CRC matches; 0 if it is torn or belongs to an older epoch. */
MMS__OPEN_PATH
static int group_parse(const uint8_t *j, uint64_t size, uint64_t off, uint32_t seed,
                       uint64_t txn, struct group *g)
{
    if (off + sizeof(struct mms__jbegin) > size)
        return 0;
    struct mms__jbegin b;
    memcpy(&b, j + off, sizeof b);
    if (b.type != MMS__JR_BEGIN || b.txn_id != txn)
        return 0;
    uint64_t p = off + sizeof b;
    uint32_t nrec = 0;
    for (;;) {
        if (p + 8 > size)
            return 0;
        uint32_t type;
        memcpy(&type, j + p, 4);
        if (type == MMS__JR_DATA) {
            struct mms__jdata d;
            if (p + sizeof d > size)
                return 0;
            memcpy(&d, j + p, sizeof d);
            if (pad8(d.len) > size - p - sizeof d)
                return 0;
            p += sizeof d + pad8(d.len);
        } else if (type == MMS__JR_SIZE) {
            if (p + sizeof(struct mms__jsize) > size)
                return 0;
            p += sizeof(struct mms__jsize);
        } else if (type == MMS__JR_COMMIT) {
            struct mms__jcommit c;
            if (p + sizeof c > size)
                return 0;
            memcpy(&c, j + p, sizeof c);
            uint64_t bytes = p + sizeof c - off;
            if (c.txn_id != txn || c.nrec != nrec || c.bytes != bytes)
                return 0;
            uint32_t crc = mms__crc32c(seed, j + off, bytes - sizeof c + offsetof(struct mms__jcommit, crc));
            if (crc != c.crc)
                return 0;
            g->off = off;
            g->bytes = bytes;
            g->txn_id = txn;
            g->crc = crc;
            g->nrec = nrec;
            return 1;
        } else {
            return 0;
        }
        nrec++;
    }
}

typedef int (*group_fn)(void *ctx, const uint8_t *j, const struct group *g);

/* Call fn for each valid group from the start of the epoch. *end gets the
 * offset after the last valid group, *last_txn its txn id. */
static int journal_walk(const struct mms__jstate *J, const uint8_t *j, uint64_t size, group_fn fn,
                        void *ctx, uint64_t *end, uint64_t *last_txn, uint32_t *last_crc,
                        uint64_t *ngroups)
{
    uint64_t off = MMS__JDATA, txn = J->start_txn, n = 0;
    uint32_t crc = J->salt;
    struct group g;
    while (group_parse(j, size, off, crc, txn + 1, &g)) {
        if (fn) {
            int r = fn(ctx, j, &g);
            if (r)
                return r;
        }
        off += g.bytes;
        crc = g.crc;
        txn++;
        n++;
    }
    *end = off;
    *last_txn = txn;
    *last_crc = crc;
    *ngroups = n;
    return 0;
}

/* Torn tail or damage (NOTES): the walk stopped at off, where the group of
 * txn txn (chain seed seed) fails its check. 1 and *g (the first such group)
 * if a later group of this epoch, written after that one was durable,
 * follows; 0 if nothing proves one does (a torn tail). Every group is at
 * least a BEGIN and a COMMIT record, which bounds the txn ids a position
 * can hold. */
static int later_commit(const uint8_t *j, uint64_t size, uint64_t off, uint64_t txn,
                        uint32_t seed, struct group *g)
{
    const uint64_t least = sizeof(struct mms__jbegin) + sizeof(struct mms__jcommit);
    if (!j || off + least > size)
        return 0;
    for (uint64_t p = off + least; p + least <= size; p += 8) {
        struct mms__jbegin b;
        struct mms__jcommit c;
        memcpy(&b, j + p, sizeof b);
        if (b.type != MMS__JR_BEGIN || !(b.flags & MMS__JB_AFTER_DURABLE) || b.txn_id <= txn ||
            b.txn_id - txn > (p - off) / least)
            continue;
        memcpy(&c, j + p - sizeof c, sizeof c);
        if (c.type != MMS__JR_COMMIT || c.txn_id != b.txn_id - 1 || c.bytes < least ||
            c.bytes > p - off + (c.txn_id == txn ? 0 : off - MMS__JDATA))
            continue;
        if (group_parse(j, size, p, c.crc, b.txn_id, g))
            return 1;
        /* Only the stopped group's crc field damaged: its bytes give the
         * seed. */
        if (c.txn_id == txn && c.bytes == p - off &&
            group_parse(j, size, p,
                        mms__crc32c(seed, j + off, c.bytes - sizeof c +
                                                   offsetof(struct mms__jcommit, crc)),
                        b.txn_id, g))
            return 1;
    }
    return 0;
}

/* The refusal (NOTES, torn tail or damage): the groups from off (txn) on
 * are lost to an open; later is the first group past the damage that
 * proves it. */
static int damaged_commit(const uint8_t *j, uint64_t size, uint64_t off, uint64_t txn,
                          const struct group *later)
{
    struct group g = *later, n;
    while (group_parse(j, size, g.off + g.bytes, g.crc, g.txn_id + 1, &n))
        g = n;
    return MMS__CORRUPT("the journal's group of txn %llu at offset %llu is damaged, and later "
                        "durable commits follow it (txn %llu at offset %llu, up to txn %llu): "
                        "replaying stops at the damage and would lose txns %llu to %llu; "
                        "`mms recover` salvages the commits before it into a new store",
                        (unsigned long long)txn, (unsigned long long)off,
                        (unsigned long long)later->txn_id, (unsigned long long)later->off,
                        (unsigned long long)g.txn_id, (unsigned long long)txn,
                        (unsigned long long)g.txn_id);
}

/* Each record of a valid group, in order; bytes is a DATA record's payload
 * (a SIZE record's gets the empty range after it: never NULL, which GCC 12
 * -Wnonnull would see reach replay_rec's memcpy through the inlining). */
typedef int (*rec_fn)(void *ctx, uint32_t type, const void *rec, const uint8_t *bytes);

static int group_records(const uint8_t *j, const struct group *g, rec_fn fn, void *ctx)
{
    uint64_t p = g->off + sizeof(struct mms__jbegin);
    for (uint32_t i = 0; i < g->nrec; i++) {
        uint32_t type;
        memcpy(&type, j + p, 4);
        int r;
        if (type == MMS__JR_DATA) {
            struct mms__jdata d;
            memcpy(&d, j + p, sizeof d);
            r = fn(ctx, type, &d, j + p + sizeof d);
            p += sizeof d + pad8(d.len);
        } else {
            struct mms__jsize z;
            memcpy(&z, j + p, sizeof z);
            r = fn(ctx, type, &z, j + p + sizeof z);
            p += sizeof z;
        }
        if (r)
            return r;
    }
    return 0;
}

#define JREAD_STEP ((size_t)1 << 20)          /* journal_read's reads, and its errors' unit */
#define JREAD_MAX ((uint64_t)256 << 20)         /* past this, the journal is mapped */
#define JPOPULATE_STEP ((uint64_t)64 << 20)     /* journal_read_in's calls */

/* The journal's first size bytes, mapped read-only into *j. Only what is
 * used is read: applying commits touches their groups, not the rest of a
 * journal that a large transaction once grew. */
static int journal_map(mms_store *s, uint64_t size, uint8_t **j)
{
    char *m;
    int r = mms__os_map(s->jfd, size, false, &m);
    if (r)
        return mms__fail(r, "cannot map the journal (%llu bytes): %s", (unsigned long long)size,
                         mms_strerror(r));
    *j = (uint8_t *)m;
    return 0;
}

/* A mapped journal that recovery or mms verify reads whole (journal_read),
 * read in by the kernel before anything touches it: a page that cannot be
 * read is then this error, naming where, not a SIGBUS at the touch. */
static int journal_read_in(const uint8_t *m, uint64_t size)
{
    for (uint64_t at = 0; at < size; at += JPOPULATE_STEP) {
        uint64_t n = size - at < JPOPULATE_STEP ? size - at : JPOPULATE_STEP;
        int r = mms__os_populate_read(m + at, n);
        if (r == -ENOTSUP) /* an old kernel: touched as it is read, as before */
            break;
        /* Where, to the MiB (as journal_read says it). */
        for (uint64_t sub = at, end = at + n; r == -EIO && sub < end; sub += JREAD_STEP) {
            uint64_t k = end - sub < JREAD_STEP ? end - sub : JREAD_STEP;
            if (mms__os_populate_read(m + sub, k) == -EIO) {
                at = sub;
                n = k;
                break;
            }
        }
        if (r)
            return mms__fail(r, "cannot read the journal between offsets %llu and %llu: %s",
                             (unsigned long long)at, (unsigned long long)(at + n),
                             mms_strerror(r));
    }
    return 0;
}

/* The journal read whole into *j (*size bytes), or *j NULL if it holds no
 * group; journal_release gives it back. Read, not mapped: recovery and
 * mms verify are where a damaged disk shows, and a page that cannot be read
 * is then an error naming its offset, not a SIGBUS (a mapped page of a
 * failing disk, or a hole of a file on a full tmpfs; read(2) gives a hole
 * as zeros). Up to JREAD_MAX: the copy takes as much memory as the journal
 * is long, and a larger journal (one transaction that rewrote more than
 * that of existing data) is mapped read-only -- its pages are the page
 * cache's, not this process's -- and read in at once (journal_read_in): an
 * unreadable page is an error there too. What is left: a page the kernel
 * reclaims between that read and its use, then cannot read again, is a
 * SIGBUS; and a hole of a file on a full tmpfs is an error, not zeros.
 * MMS_JOURNAL_READ_MAX (bytes) lowers the limit, for tests. */
static uint64_t jread_max(void)
{
    const char *v = getenv("MMS_JOURNAL_READ_MAX");
    uint64_t n = v && *v ? strtoull(v, NULL, 10) : JREAD_MAX;
    return n < JREAD_MAX ? n : JREAD_MAX;
}

static int journal_read(mms_store *s, uint64_t start_txn, uint8_t **j, uint64_t *size,
                        bool *mapped)
{
    *j = NULL;
    *mapped = false;
    int r = mms__os_fsize(s->jfd, size);
    if (r)
        return r;
    if (*size <= MMS__JDATA)
        return 0;
    /* Usually the journal holds no group (a checkpoint emptied it): one
     * small read says so, without reading the preallocated file. */
    struct mms__jbegin b;
    if (*size >= MMS__JDATA + sizeof b && mms__os_pread(s->jfd, &b, sizeof b, MMS__JDATA) == 0 &&
        (b.type != MMS__JR_BEGIN || b.txn_id != start_txn + 1))
        return 0;
    if (*size > jread_max()) {
        r = journal_map(s, *size, j);
        if (!r && (r = journal_read_in(*j, *size)) != 0) {
            mms__os_unmap(*j, *size);
            *j = NULL;
        }
        *mapped = r == 0;
        return r;
    }
    uint8_t *buf = malloc((size_t)*size);
    if (!buf)
        return mms__fail(-ENOMEM, "recovery cannot read the journal (%llu bytes) into memory",
                         (unsigned long long)*size);
    for (uint64_t at = 0; at < *size; at += JREAD_STEP) {
        size_t n = *size - at < JREAD_STEP ? (size_t)(*size - at) : JREAD_STEP;
        r = mms__os_pread(s->jfd, buf + at, n, at);
        if (r) {
            free(buf);
            return mms__fail(r, "cannot read the journal between offsets %llu and %llu: %s",
                             (unsigned long long)at, (unsigned long long)(at + n),
                             mms_strerror(r));
        }
    }
    *j = buf;
    return 0;
}

static void journal_release(uint8_t *j, uint64_t size, bool mapped)
{
    if (mapped)
        mms__os_unmap(j, size);
    else
        free(j);
}

/* ------------------------------------------------------------------------
 * Recovery
 * ------------------------------------------------------------------------ */
struct replay {
    mms_store *s;
    struct {
        uint32_t id, gen;
        int fd;
        uint64_t size;
    } f[16];
    int nf;
    bool sync; /* fdatasync each file before closing it (recovery) */
    const char *point; /* the crash point passed before each group */
    uint64_t group_off;
};

/* Recovery's sync of a file it replayed into: a failure names the file
 * (the journal is kept, so the next open replays it again). */
static int replay_sync(const struct replay *rp, int i)
{
    int r = mms__os_fdatasync(rp->f[i].fd);
    if (r)
        return mms__fail(r, "cannot sync region file region-%u-%u after replaying the journal "
                         "into it (the journal keeps the commits): %s", rp->f[i].id,
                         rp->f[i].gen, mms_strerror(r));
    return 0;
}

static int replay_file(struct replay *rp, uint32_t id, uint32_t gen, int *fd, uint64_t *size)
{
    for (int i = 0; i < rp->nf; i++)
        if (rp->f[i].id == id && rp->f[i].gen == gen) {
            *fd = rp->f[i].fd;
            *size = rp->f[i].size;
            return 0;
        }
    if (rp->nf == (int)(sizeof rp->f / sizeof rp->f[0])) {
        /* Evict the oldest (in recovery it was synced by nothing yet, so
         * sync it now). */
        int r = rp->sync ? replay_sync(rp, 0) : 0;
        mms__os_close(rp->f[0].fd);
        if (r)
            return r;
        memmove(&rp->f[0], &rp->f[1], sizeof rp->f[0] * (size_t)(rp->nf - 1));
        rp->nf--;
    }
    int r = mms__region_open_file(rp->s, id, gen, false, true, fd);
    if (r) {
        if (r == -ENOENT)
            return MMS__CORRUPT("journal group at offset %llu names region %u generation %u, "
                                "whose file is missing",
                                (unsigned long long)rp->group_off, id, gen);
        return r;
    }
    r = mms__os_fsize(*fd, size);
    if (r) {
        mms__os_close(*fd);
        return r;
    }
    rp->f[rp->nf].id = id;
    rp->f[rp->nf].gen = gen;
    rp->f[rp->nf].fd = *fd;
    rp->f[rp->nf].size = *size;
    rp->nf++;
    return 0;
}

static int replay_rec(void *ctx, uint32_t type, const void *rec, const uint8_t *bytes)
{
    struct replay *rp = ctx;
    int fd;
    uint64_t size;
    if (type == MMS__JR_DATA) {
        const struct mms__jdata *d = rec;
        if (d->region >= MMS_MAX_REGIONS)
            return MMS__CORRUPT("journal group at offset %llu: region id %u out of range",
                                (unsigned long long)rp->group_off, d->region);
        /* A write handle applying commits has the file mapped shared and
         * writable: a copy there is the same page-cache write as a pwrite,
         * without the system call (four per small commit). Recovery has no
         * mappings yet. */
        const struct mms__region *g = &rp->s->reg[d->region];
        if (!rp->sync && d->region < rp->s->nmapped && g->fview && g->gen == d->gen &&
            d->offset <= g->fview_len && d->len <= g->fview_len - d->offset) {
            memcpy(g->fview + d->offset, bytes, d->len);
            return 0;
        }
        int r = replay_file(rp, d->region, d->gen, &fd, &size);
        if (r)
            return r;
        if (d->offset > size || d->len > size - d->offset)
            return MMS__CORRUPT("journal group at offset %llu writes past the end of region %u",
                                (unsigned long long)rp->group_off, d->region);
        r = mms__os_pwrite(fd, bytes, d->len, d->offset);
        if (r)
            return mms__fail(r, "recovery cannot write region %u: %s", d->region,
                             mms_strerror(r));
        return 0;
    }
    const struct mms__jsize *z = rec;
    if (z->region >= MMS_MAX_REGIONS)
        return MMS__CORRUPT("journal group at offset %llu: region id %u out of range",
                            (unsigned long long)rp->group_off, z->region);
    int r = replay_file(rp, z->region, z->gen, &fd, &size);
    if (r)
        return r;
    if (size < z->size)
        return MMS__CORRUPT("region %u file is %llu bytes, shorter than its committed size %llu",
                            z->region, (unsigned long long)size, (unsigned long long)z->size);
    return 0;
}

static int replay_group(void *ctx, const uint8_t *j, const struct group *g)
{
    struct replay *rp = ctx;
    rp->group_off = g->off;
    mms__crashpoint(rp->point);
    return group_records(j, g, replay_rec, rp);
}

/* Close the files of a replay, syncing them first if it says so. */
static int replay_done(struct replay *rp, int r)
{
    for (int i = 0; i < rp->nf; i++) {
        if (!r && rp->sync)
            r = replay_sync(rp, i);
        mms__os_close(rp->f[i].fd);
    }
    rp->nf = 0;
    return r;
}

/* Replay the groups after pos up to txn upto from the journal's bytes j. */
static int replay_upto(mms_store *s, const uint8_t *j, uint64_t size, struct mms__apos *pos,
                       uint64_t upto, bool sync, const char *point)
{
    int r = 0;
    struct replay rp = {.s = s, .sync = sync, .point = point};
    struct group g;
    while (!r && pos->txn < upto) {
        if (!group_parse(j, size, pos->off, pos->crc, pos->txn + 1, &g)) {
            r = MMS__CORRUPT("the journal lacks the group of txn %llu, committed earlier",
                             (unsigned long long)(pos->txn + 1));
            break;
        }
        r = replay_group(&rp, j, &g);
        if (!r) {
            pos->off += g.bytes;
            pos->crc = g.crc;
            pos->txn++;
        }
    }
    return replay_done(&rp, r);
}

int mms__journal_apply(mms_store *s, struct mms__apos *pos, uint64_t upto, bool sync,
                       const char *point)
{
    if (pos->txn >= upto)
        return 0;
    uint64_t size;
    int r = mms__os_fsize(s->jfd, &size);
    if (r)
        return r;
    uint8_t *j = NULL;
    r = journal_map(s, size, &j);
    if (r)
        return r;
    r = replay_upto(s, j, size, pos, upto, sync, point);
    mms__os_unmap(j, size);
    return r;
}

struct each {
    mms__jrec_fn fn;
    void *ctx;
};

static int each_rec(void *ctx, uint32_t type, const void *rec, const uint8_t *bytes)
{
    struct each *e = ctx;
    if (type != MMS__JR_DATA)
        return 0;
    const struct mms__jdata *d = rec;
    return e->fn(e->ctx, d->region, d->gen, d->offset, bytes, d->len);
}

int mms__journal_each(mms_store *s, struct mms__apos *pos, uint64_t upto, mms__jrec_fn fn,
                      int (*group_end)(void *ctx, uint64_t txn), void *ctx)
{
    if (pos->txn >= upto)
        return 0;
    uint64_t size;
    int r = mms__os_fsize(s->jfd, &size);
    if (r)
        return mms__fail(r, "cannot measure the journal: %s", mms_strerror(r));
    uint8_t *j = NULL;
    r = journal_map(s, size, &j);
    if (r)
        return r;
    struct each e = {fn, ctx};
    struct group g;
    while (!r && pos->txn < upto) {
        if (!group_parse(j, size, pos->off, pos->crc, pos->txn + 1, &g)) {
            r = MMS__CORRUPT("the journal lacks the group of txn %llu, committed earlier",
                             (unsigned long long)(pos->txn + 1));
            break;
        }
        if (fn)
            r = group_records(j, &g, each_rec, &e);
        if (!r && group_end)
            r = group_end(ctx, g.txn_id);
        if (!r) {
            pos->off += g.bytes;
            pos->crc = g.crc;
            pos->txn++;
        }
    }
    mms__os_unmap(j, size);
    return r;
}

/* The epoch of header J, walked: what recovery and mms__journal_count
 * both start from. */
struct epoch {
    uint8_t *j;       /* the journal's bytes (journal_read); NULL: no group */
    uint64_t size;    /* ... and its size; epoch_close gives them back */
    bool mapped;
    uint64_t end;     /* the offset after the last valid group */
    uint64_t last;    /* its txn id (J->start_txn if there is none) */
    uint64_t n;       /* the valid groups */
    uint32_t crc;     /* the last one's chained CRC (the salt if none) */
    bool later;       /* a durable commit follows the stop: later_commit, in g */
    struct group later_g;
};

/* 1 if J names another store's journal (start_txn UINT64_MAX: never
 * replayed, nothing read); else the journal read (if groups: a group
 * follows its header, as the header's read said) and walked into *E, which
 * epoch_close releases. */
MMS__OPEN_PATH
static int epoch_walk(mms_store *s, const struct mms__jstate *J, bool groups, struct epoch *E)
{
    memset(E, 0, sizeof *E);
    if (J->start_txn == UINT64_MAX)
        return 1;
    int r = groups ? journal_read(s, J->start_txn, &E->j, &E->size, &E->mapped) : 0;
    if (r)
        return r;
    r = journal_walk(J, E->j, E->j ? E->size : 0, NULL, NULL, &E->end, &E->last, &E->crc, &E->n);
    if (!r)
        E->later = later_commit(E->j, E->size, E->end, E->last + 1, E->crc, &E->later_g);
    return r;
}

static void epoch_close(struct epoch *E)
{
    journal_release(E->j, E->size, E->mapped);
    E->j = NULL;
}

MMS__OPEN_PATH
int mms__journal_recover(mms_store *s, bool groups, uint64_t pre_txn, bool can_write,
                         uint64_t *replayed, uint64_t *last_txn)
{
    *replayed = 0;
    *last_txn = pre_txn;
    struct epoch E;
    /* First pass: count, so a read-only open can refuse before writing. */
    int r = epoch_walk(s, s->J, groups, &E);
    if (r)
        return r == 1 ? 0 : r; /* 1: another store's journal, ignored */
    *last_txn = E.last;
    if (pre_txn <= E.last && E.later)
        r = damaged_commit(E.j, E.size, E.end, E.last + 1, &E.later_g);
    /* The region files have reached pre_txn (their header says so, whatever
     * else a crash left half-applied). A checkpoint synced them at
     * start_txn; groups since then can bring them to E.last. Outside that
     * range a file was lost, replaced or the journal damaged: replaying
     * would build a state that never existed. */
    if (!r && pre_txn > E.last)
        r = MMS__CORRUPT("the region files are at txn %llu but the journal's valid commits end "
                         "at txn %llu (journal damaged, or a region file written by something "
                         "else)", (unsigned long long)pre_txn, (unsigned long long)E.last);
    if (!r && pre_txn < s->J->start_txn)
        r = MMS__CORRUPT("the region files are at txn %llu, older than the last checkpoint (txn "
                         "%llu): a region file was replaced or lost its writes",
                         (unsigned long long)pre_txn, (unsigned long long)s->J->start_txn);
    if (!r && E.n > 0 && !can_write)
        r = mms__fail(MMS_ERECOVER, "the journal holds %llu commit%s to replay and this process "
                      "cannot write the store's files", (unsigned long long)E.n,
                      E.n == 1 ? "" : "s");
    /* Invariant 3, in recovery too: the groups may be in the page cache
     * only (a writer died before its sync, or MMS_NOSYNC); they reach the
     * region files only once they are durable. A journal sync that failed
     * before is final here too (mms__jsync): a recovery while handles
     * still have the store open (after a poisoned writer) would otherwise
     * sync again, count lost groups durable and publish them. */
    if (!r && E.n > 0)
        r = mms__jsync(s);
    if (!r) {
        struct mms__apos pos = {.off = MMS__JDATA, .txn = s->J->start_txn, .crc = s->J->salt};
        mms__crashpoint("recover.journal_synced");
        if (E.n > 0)
            r = replay_upto(s, E.j, E.size, &pos, E.last, true, "recover.group");
    }
    epoch_close(&E);
    if (r)
        return r;
    *replayed = E.n;
    s->J->end = E.end;
    s->J->last_crc = E.crc;
    return 0;
}

/* For a handle that takes over after a writer died, the region files whole
 * (apply.c, adopt): the journal as the next commit must find it, in *J --
 * its header slots read again (a checkpoint may have died between writing
 * one and storing the shared state) and its end after every valid group,
 * the last one's txn in *last: what recovery would replay (Invariant 4),
 * the dead writer's group that it wrote and did not count included. 1 if
 * only a recovery can judge it: another store's journal, or damage that
 * later durable commits follow (recovery refuses it). Reads, never writes. */
int mms__journal_count(mms_store *s, const uint8_t uuid[16], struct mms__jstate *J,
                       uint64_t *last)
{
    bool groups;
    *J = *s->J;
    int r = journal_load_into(s, uuid, J, &groups);
    if (r)
        return r;
    struct epoch E;
    if ((r = epoch_walk(s, J, groups, &E)))
        return r; /* 1: another store's journal */
    epoch_close(&E);
    *last = E.last;
    J->end = E.end;
    J->last_crc = E.crc;
    return E.later ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * Checkpoint step 2 (Invariant 5): the region files are synced; start a new
 * epoch so that no group written so far can ever be replayed again.
 * ------------------------------------------------------------------------ */
int mms__journal_reset(mms_store *s, const uint8_t uuid[16], uint64_t start_txn)
{
    assert(s->jfd_rw);
    uint32_t salt = new_salt(s->J->salt);
    int slot = 1 - s->J->slot;
    mms__crashpoint("checkpoint.before_header");
    int r = slot_write(s, uuid, slot, s->J->seq + 1, salt, start_txn);
    if (!r)
        r = mms__jsync(s); /* final if it fails: the slot may never reach the disk */
    if (!r)
        mms__crashpoint("checkpoint.slot_written"); /* the shared state is the old epoch's */
    if (r) {
        /* The slot may be on disk with a new epoch the shared journal state
         * does not know: whoever writes next must re-read the journal. */
        if (s->L)
            __atomic_fetch_or(&s->L->recover_needed, 1, __ATOMIC_ACQ_REL);
        return r;
    }
    s->J->slot = slot;
    s->J->seq++;
    s->J->salt = salt;
    s->J->start_txn = start_txn;
    s->J->end = MMS__JDATA;
    s->J->last_crc = salt;
    /* A huge transaction may have left a huge journal; give the space back. */
    uint64_t keep = MMS__JDATA + mms__round_up(s->checkpoint_bytes, JGROW);
    if (journal_alloc(s) == 0 && s->J->alloc > 2 * keep && mms__os_ftruncate(s->jfd, keep) == 0)
        s->J->alloc = keep;
    return 0;
}

/* ------------------------------------------------------------------------
 * Writing a group. Records accumulate in s->jbuf and are written in chunks;
 * the CRC is computed over what is written, so memory stays bounded however
 * large the transaction.
 * ------------------------------------------------------------------------ */
static int jbuf_reserve(mms_store *s, size_t more)
{
    if (s->jbuf_len + more <= s->jbuf_cap)
        return 0;
    size_t cap = s->jbuf_cap ? s->jbuf_cap : 65536;
    while (cap < s->jbuf_len + more)
        cap *= 2;
    uint8_t *p = realloc(s->jbuf, cap);
    if (!p)
        return -ENOMEM;
    s->jbuf = p;
    s->jbuf_cap = cap;
    return 0;
}

static int jbuf_flush(mms_store *s, size_t upto)
{
    int r = journal_reserve(s, s->J->end + s->jg_written + upto);
    if (r)
        return r;
    s->jg_crc = mms__crc32c(s->jg_crc, s->jbuf, upto);
    r = mms__os_pwrite(s->jfd, s->jbuf, upto, s->J->end + s->jg_written);
    if (r)
        return mms__fail(r, "cannot write the journal: %s", mms_strerror(r));
    s->jg_written += upto;
    memmove(s->jbuf, s->jbuf + upto, s->jbuf_len - upto);
    s->jbuf_len -= upto;
    return 0;
}

void mms__jgroup_begin(mms_store *s, uint64_t txn_id)
{
    assert(mms__writer_held_by(s) && s->jfd_rw);
    /* Torn tail or damage (NOTES): whether every earlier group is durable. */
    bool after_durable = __atomic_load_n(&s->L->durable, __ATOMIC_ACQUIRE) >= txn_id - 1;
    struct mms__jbegin b = {.type = MMS__JR_BEGIN,
                            .flags = after_durable ? MMS__JB_AFTER_DURABLE : 0,
                            .txn_id = txn_id};
    s->jbuf_len = 0;
    s->jg_written = 0;
    s->jg_nrec = 0;
    s->jg_crc = s->J->last_crc;
    /* The buffer always has room for a begin record (allocated at open). */
    memcpy(s->jbuf, &b, sizeof b);
    s->jbuf_len = sizeof b;
}

int mms__jgroup_data(mms_store *s, uint32_t region, uint32_t gen, uint64_t off,
                     const void *bytes, uint32_t len)
{
    struct mms__jdata d = {.type = MMS__JR_DATA, .len = len, .region = (uint16_t)region,
                           .gen = gen, .offset = off};
    int r = jbuf_reserve(s, sizeof d + pad8(len));
    if (r)
        return r;
    memcpy(s->jbuf + s->jbuf_len, &d, sizeof d);
    memcpy(s->jbuf + s->jbuf_len + sizeof d, bytes, len);
    memset(s->jbuf + s->jbuf_len + sizeof d + len, 0, pad8(len) - len);
    s->jbuf_len += sizeof d + pad8(len);
    s->jg_nrec++;
    if (s->jbuf_len >= JBUF_FLUSH)
        return jbuf_flush(s, s->jbuf_len);
    return 0;
}

int mms__jgroup_size(mms_store *s, uint32_t region, uint32_t gen, uint64_t size)
{
    struct mms__jsize z = {.type = MMS__JR_SIZE, .gen = gen, .region = (uint16_t)region,
                           .size = size};
    int r = jbuf_reserve(s, sizeof z);
    if (r)
        return r;
    memcpy(s->jbuf + s->jbuf_len, &z, sizeof z);
    s->jbuf_len += sizeof z;
    s->jg_nrec++;
    return 0;
}

int mms__jgroup_write(mms_store *s, uint64_t txn_id)
{
    struct mms__jcommit c = {.type = MMS__JR_COMMIT, .nrec = s->jg_nrec, .txn_id = txn_id};
    s->jg_nrec = 0;
    int r = jbuf_reserve(s, sizeof c);
    if (r)
        return r;
    c.bytes = s->jg_written + s->jbuf_len + sizeof c;
    memcpy(s->jbuf + s->jbuf_len, &c, sizeof c);
    s->jbuf_len += sizeof c;
    /* The CRC covers everything up to the crc field. */
    size_t body = s->jbuf_len - sizeof c + offsetof(struct mms__jcommit, crc);
    r = journal_reserve(s, s->J->end + s->jg_written + s->jbuf_len);
    if (r)
        return r;
    uint32_t crc = mms__crc32c(s->jg_crc, s->jbuf, body);
    memcpy(s->jbuf + body, &crc, sizeof crc);
    mms__crashpoint("commit.journal_write");
    r = mms__os_pwrite(s->jfd, s->jbuf, s->jbuf_len, s->J->end + s->jg_written);
    if (r)
        return mms__fail(r, "cannot write the journal: %s", mms_strerror(r));
    s->J->end += c.bytes;
    s->J->last_crc = crc;
    s->jbuf_len = 0;
    return 0;
}

/* A failed fdatasync is final. Linux reports a failed writeback once per
 * open file, and may have dropped the pages: a second fdatasync, by this
 * handle or any other, can return 0 for journal groups that never reached
 * the disk, and counting them durable would apply them to the region files
 * (Invariant 3) with no journal to redo them after a power cut. So the
 * first failure is kept in the lock file and every journal sync for
 * commits fails after it, in every handle, until no handle has the store
 * open: the next first open re-initialises the lock file and recovers
 * from what the disk holds (the PostgreSQL "fsyncgate" lesson). */
int mms__jsync(mms_store *s)
{
    struct mms__lock *L = s->L;
    uint32_t e = L ? __atomic_load_n(&L->sync_failed, __ATOMIC_ACQUIRE) : 0;
    if (e)
        return mms__fail(-(int)e, "a sync of the journal failed earlier (%s): a sync now could "
                         "report lost commits as safe; close every handle of the store and "
                         "open it again, which recovers from what the disk holds",
                         mms_strerror(-(int)e));
    int r = mms__os_fdatasync(s->jfd);
    if (r && L) {
        uint32_t none = 0;
        __atomic_compare_exchange_n(&L->sync_failed, &none, (uint32_t)-r, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    }
    if (r)
        return mms__fail(r, "cannot sync the journal: %s", mms_strerror(r));
    return 0;
}

int mms__jgroup_sync(mms_store *s)
{
    if (s->flags & MMS_NOSYNC)
        return 0;
    return mms__jsync(s);
}

/* ------------------------------------------------------------------------
 * Checking (mms verify, mms info)
 * ------------------------------------------------------------------------ */
struct jcheck {
    mms_store *s;
    char *msg;
    size_t cap;
    uint64_t group_off;
};

static int check_rec(void *ctx, uint32_t type, const void *rec, const uint8_t *bytes)
{
    struct jcheck *c = ctx;
    (void)bytes;
    uint32_t region = type == MMS__JR_DATA ? ((const struct mms__jdata *)rec)->region
                                           : ((const struct mms__jsize *)rec)->region;
    if (region >= mms__hdr(c->s)->nregions) {
        snprintf(c->msg, c->cap, "journal group at offset %llu names region %u, which does not exist",
                 (unsigned long long)c->group_off, region);
        return MMS_ECORRUPT;
    }
    if (type == MMS__JR_DATA) {
        const struct mms__jdata *d = rec;
        const struct mms__region *g = &c->s->reg[region];
        /* A record for a file the region no longer maps (an index dropped,
         * a file replaced by a migration or a rebuild) was checked against
         * that file when it was replayed or applied. */
        if (region >= c->s->nmapped || !c->s->view.base[region] || g->gen != d->gen ||
            mms__rtab(c->s)[region].kind == MMS__RK_NONE)
            return 0;
        if (d->offset > g->mapped || d->len > g->mapped - d->offset) {
            snprintf(c->msg, c->cap,
                     "journal group at offset %llu writes past the end of region %u",
                     (unsigned long long)c->group_off, region);
            return MMS_ECORRUPT;
        }
    }
    return 0;
}

static int check_group(void *ctx, const uint8_t *j, const struct group *g)
{
    struct jcheck *c = ctx;
    c->group_off = g->off;
    return group_records(j, g, check_rec, c);
}

int mms__journal_check(mms_store *s, uint64_t *groups, uint64_t *bytes, char *msg, size_t cap)
{
    uint8_t *j;
    uint64_t size, end = MMS__JDATA, last = s->J->start_txn; /* an empty journal's */
    uint32_t crc;
    *groups = 0;
    *bytes = 0;
    if (s->J->start_txn == UINT64_MAX)
        return 0;
    bool mapped;
    int r = journal_read(s, s->J->start_txn, &j, &size, &mapped);
    if (r)
        return r;
    struct jcheck c = {.s = s, .msg = msg, .cap = cap};
    r = journal_walk(s->J, j, j ? size : 0, msg ? check_group : NULL, &c, &end, &last, &crc,
                     groups);
    journal_release(j, size, mapped);
    if (r)
        return r;
    *bytes = end - MMS__JDATA;
    if (msg && end != s->J->end) {
        snprintf(msg, cap,
                 "journal: valid groups end at offset %llu but the last commit ended at %llu",
                 (unsigned long long)end, (unsigned long long)s->J->end);
        return MMS_ECORRUPT;
    }
    /* The view shows the last commit, or (commits held back by readers
     * that this handle could not apply) an earlier one the journal has. */
    uint64_t view = mms__hdr(s)->txn_id, committed = s->L_private ? view
                                         : __atomic_load_n(&s->L->committed, __ATOMIC_ACQUIRE);
    if (msg && (last != committed || view > last || view < s->J->start_txn)) {
        snprintf(msg, cap, "journal reaches txn %llu but the header says %llu (last commit: "
                 "txn %llu)", (unsigned long long)last, (unsigned long long)view,
                 (unsigned long long)committed);
        return MMS_ECORRUPT;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The journal of a copy (copy.c): the region files hold txn start_txn,
 * synced; the journal says so and holds no group -- as after a checkpoint.
 * ------------------------------------------------------------------------ */
int mms__journal_write_new(int dirfd, const uint8_t uuid[16], uint64_t start_txn)
{
    int fd = mms__os_openat(dirfd, "journal", O_RDWR | O_CREAT | O_EXCL, 0666);
    if (fd < 0)
        return mms__fail(fd, "cannot create the journal: %s", mms_strerror(fd));
    char *buf = calloc(1, MMS__JDATA);
    int r = buf ? 0 : -ENOMEM;
    if (!r) {
        slot_build(buf, uuid, 1, new_salt(0), start_txn);
        r = mms__os_pwrite(fd, buf, MMS__JDATA, 0);
    }
    if (!r)
        r = mms__os_fdatasync(fd);
    free(buf);
    mms__os_close(fd);
    if (r)
        return mms__fail(r, "cannot write the journal: %s", mms_strerror(r));
    return 0;
}

/* After a checkpoint (compact.c): the file back to one full growth step
 * (JGROW, 4 MiB; a new store's journal is 64 KiB), when it is longer; the
 * next commit writes its zeros again (journal_reserve). */
int mms__journal_shrink(mms_store *s)
{
    assert(s->jfd_rw && s->J->end == MMS__JDATA);
    int r = journal_alloc(s);
    if (r || s->J->alloc <= JGROW)
        return r;
    r = mms__os_ftruncate(s->jfd, JGROW);
    if (r)
        return mms__fail(r, "cannot shorten the journal: %s", mms_strerror(r));
    s->J->alloc = JGROW;
    return 0;
}

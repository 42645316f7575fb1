/*
 * map.c -- region files and the mappings of a handle's regions.
 *
 * Layer 2: calls only os.c (and error.c; guard.c tags what it maps). It
 * creates, opens, maps, grows
 * and deletes region files; it never writes their contents (commits apply
 * through the file view, journal.c and recover.c through the files) and
 * never reads the catalog: what a region holds (heap or records of some
 * size) is its callers' business.
 *
 * Each region gets an address range reserved at open (PROT_NONE); its file
 * is mapped at the start of that range with MAP_FIXED and grows in place, so
 * a pointer into a region stays valid for the life of the handle -- and
 * readable when the mapping gets shorter or the region goes ("Retired
 * ranges": zeros, not PROT_NONE). Where the
 * range is, the kernel decides -- except in fixed-address mode (MMS_FIXED),
 * where it is the store's recorded layout (struct mms__fixed), taken with
 * MAP_FIXED_NOREPLACE: exactly there, or MMS_EADDR; never over a mapping
 * that was there, never somewhere else.
 *
 * In a write handle the user view of a region is split (DESIGN §3):
 *
 *     [0, priv)        MAP_PRIVATE: committed data. Stores land in
 *                      copy-on-write pages that the file never sees until a
 *                      commit journals and applies them.
 *     [priv, mapped)   MAP_SHARED: fresh space past the committed size.
 *                      Stores go straight to the page cache, unjournaled;
 *                      they become reachable only when a commit moves the
 *                      committed size over them (Invariant 1).
 *
 * priv = committed size rounded up to a page, so a committed byte is never
 * in the shared part. A second mapping of the whole file, the file view
 * (shared, writable, internal), is what commits diff against and apply to.
 * Read-only handles map the whole file shared and read-only.
 *
 * This file must never write region contents; it only maps.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROW_CAP ((uint64_t)256 << 20)

static bool view_writable(const mms_store *s)
{
    if (s->flags & MMS_RDONLY)
        return false;
    /* The key guard maps read-write: PKRU refuses the stores (guard.c). */
    return !(s->flags & MMS_GUARD) || s->guard_key || s->state == MMS__ST_WRITE;
}

/* A mapping of the writer's view, tagged with the guard's key if it has
 * one (guard.c G4). */
static int map_view(mms_store *s, char *addr, uint64_t len, int fd, uint64_t off, bool shared,
                    bool writable)
{
    int r = mms__os_map_fixed(addr, len, fd, off, shared, writable);
    if (!r && (r = mms__guard_tag(s, addr, len)))
        mms__os_protect(addr, len, false); /* never writable without the key */
    return r;
}

static char *put_u32(char *p, uint32_t v)
{
    char digits[10];
    int n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *p++ = digits[--n];
    return p;
}

/* "region-<id>-<gen>" (doc/FORMAT.md 1), at most 29 bytes. Not snprintf:
 * an open names a file per region, and snprintf's first call in a process
 * faults in three pages of the C library's code. */
MMS__OPEN_PATH
static void region_name(char name[MMS__REGION_NAME], uint32_t id, uint32_t gen)
{
    _Static_assert(MMS__REGION_NAME >= sizeof "region-4294967295-4294967295", "name");
    memcpy(name, "region-", 7);
    char *p = put_u32(name + 7, id);
    *p++ = '-';
    *put_u32(p, gen) = 0;
}

/* Open region id's file of generation gen; *fsize (unless NULL) gets its
 * size, from the fstat the open makes anyway (mms__os_openat_sized). */
MMS__OPEN_PATH
static int region_open(mms_store *s, uint32_t id, uint32_t gen, bool create, bool write, int *fd,
                       uint64_t *fsize)
{
    char name[MMS__REGION_NAME];
    region_name(name, id, gen);
    int flags = write ? O_RDWR : O_RDONLY;
    if (create)
        flags |= O_CREAT | O_EXCL;
    int r = mms__os_openat_sized(s->dirfd, name, flags, 0666, fsize);
    if (r == -EMFILE) {
        /* Not a leak: a handle keeps every region file it maps open (to
         * grow, sync and cut it), so RLIMIT_NOFILE bounds its tables. */
        uint32_t held = 0;
        for (uint32_t k = 0; k < s->nmapped; k++)
            held += s->reg[k].fd >= 0;
        return mms__fail(r, "cannot open region file %s: %s: this handle keeps %u open (and up "
                         "to 5 other descriptors), and the process may have %llu", name,
                         mms_strerror(r), held, (unsigned long long)mms__os_fd_limit());
    }
    if (r == MMS_ECORRUPT)
        return r; /* not a regular file: the detail says so */
    if (r < 0)
        return mms__fail(r, "cannot open region file %s: %s", name, mms_strerror(r));
    *fd = r;
    return 0;
}

int mms__region_open_file(mms_store *s, uint32_t id, uint32_t gen, bool create, bool write,
                          int *fd)
{
    return region_open(s, id, gen, create, write, fd, NULL);
}

/* Size of region id's file (measured unless *fsize is already not 0),
 * checked against its committed size. A partial
 * page past the committed size is fresh space a failed fallocate (ext4
 * keeps the blocks it got, at its block size) or a crash before the file
 * was cut back may have left: it is ignored. */
MMS__OPEN_PATH
static int file_size(int fd, uint32_t id, uint64_t committed, uint64_t *fsize)
{
    int r = *fsize ? 0 : mms__os_fsize(fd, fsize);
    if (r)
        return r;
    if (*fsize < committed)
        return MMS__CORRUPT("region %u file is %llu bytes, shorter than its committed size %llu",
                            id, (unsigned long long)*fsize, (unsigned long long)committed);
    if (*fsize % MMS__PAGE && *fsize - *fsize % MMS__PAGE >= mms__round_up(committed, MMS__PAGE))
        *fsize -= *fsize % MMS__PAGE;
    if (*fsize % MMS__PAGE)
        return MMS__CORRUPT("region %u file size %llu is not a multiple of the page size", id,
                            (unsigned long long)*fsize);
    return 0;
}

/* Region 0 no larger than this is read whole by a cold open's first fault
 * (the read-around window is larger): fewer reads than the pages the open
 * touches one by one, and a warm open is spared two madvise calls. */
#define HEAP_READ_WHOLE ((uint64_t)256 << 10)

/* Is a region 0 of size bytes advised while the handle opens (map_advise)? */
static bool heap_advised(const mms_store *s, uint64_t size)
{
    return s->opening && s->heap_random && size > HEAP_READ_WHOLE;
}

/* Read-ahead advice for a new piece of region id's user view (mmstore.h,
 * MMS_NORDAHEAD). A fault on a file page the page cache lacks reads the
 * kernel's read-around window with it (read_ahead_kb: 8 MiB on the disks we
 * measured). While a handle opens (s->opening), region 0 is read for its
 * header and catalog, a few pages: without advice a cold open read all of a
 * 4 MiB region 0 for them (a small one is read whole: HEAP_READ_WHOLE).
 * After the open, region 0 gets the kernel's
 * default back (mms__map_opened): strings are allocated in row order, and a
 * cold scan of a string column reads the heap in order -- page by page it
 * was ~40x slower (bench/results: "Open + full scan", nordahead). Tables
 * keep the default unless the handle asked for MMS_NORDAHEAD. With
 * MMS_RDAHEAD_HEAP=1 in the environment the open does not advise region 0
 * (to measure the difference).
 *
 * An index's mapping (2 MiB or more) is advised MADV_HUGEPAGE, in every
 * handle unless MMS_NOHUGE or MMS_NORDAHEAD: pages of it the page cache
 * lacks come back in 2 MiB folios, as its bulk build wrote them
 * (region_fresh in index.c), and are mapped 2 MiB at a time. Without it an
 * index read back after it left the page cache (a drop, reclaim) stays in
 * small folios: a later process's 10^6 cold gets at random keys took 6,296
 * page faults against 375, and ~3.7x the time (bench/results/index.md,
 * "Indexes in 2 MiB folios"). One call a mapping, at open or growth, so
 * that lookups make none. Its cost: a cold get reads 2 MiB from the disk,
 * and a durable commit that changes a slot writes back its folio, as for
 * a freshly built index.
 *
 * A mapping replaced by MAP_FIXED loses its advice: every mapping of the
 * view passes here. */
MMS__OPEN_PATH
static void map_advise(const mms_store *s, uint32_t id, char *addr, uint64_t len)
{
    if (len && (id == 0 ? heap_advised(s, s->reg[0].mapped) : (s->flags & MMS_NORDAHEAD) != 0))
        mms__os_no_readahead(addr, len);
    else if (id && len >= ((uint64_t)2 << 20) && !(s->flags & MMS_NOHUGE) &&
             id < mms__hdr(s)->nregions && mms__rtab(s)[id].kind == MMS__RK_INDEX)
        mms__os_huge(addr, len); /* a hint: harmless if refused */
}

/* Bulk appends in 2 MiB folios (mmstore.h, MMS_NOHUGE): the fresh space
 * [off, off + len) of table region id that an append of at least 2 MiB
 * is about to write, widened to whole 2 MiB (within the fresh shared part
 * of the mapping), is advised MADV_HUGEPAGE before the append's first store
 * faults it in, so that the page cache holds those pages in 2 MiB folios
 * (zeroed, not read: fresh space is preallocated and unwritten). Every
 * later mapping of them -- the writer's own private one after the commit,
 * every reader's in any process -- then maps them 2 MiB at a time: on our
 * VM a first pass over 80 MB of 4 KiB mappings cost 35 ms more than a warm
 * pass, over 2 MiB ones about nothing, and Table.extend of 10^7 rows and
 * its commit ran 2.7x and 1.8x faster (bench/results/python.md).
 *
 * Not all fresh space: a store through a shared mapping into a clean 2 MiB
 * folio makes all of it dirty, so a durable one-record append into fresh
 * space in 2 MiB folios wrote back 2 MiB per new page (records of 4 KiB:
 * 2 MiB a commit against 20 KiB; bench/results/huge_cost.md). Small
 * appends keep the kernel's folios. Widened to 2 MiB because a fault in an
 * unadvised neighbour reads around it, making megabytes of small folios
 * ahead of the append. The partly filled last 2 MiB of a bulk append would
 * cost the small appends that fill it so; after an extend they did not
 * (the file then ends about where the append does, and no 2 MiB folio is
 * made past the end of a file). */
void mms__map_fresh_huge(mms_store *s, uint32_t id, uint64_t off, uint64_t len)
{
    const uint64_t huge = (uint64_t)2 << 20;
    const struct mms__region *g = &s->reg[id];
    if (len < huge || (s->flags & (MMS_RDONLY | MMS_NOHUGE)) || off > g->mapped ||
        len > g->mapped - off)
        return;
    uint64_t lo = off - off % huge, hi = mms__round_up(off + len, huge);
    lo = lo < g->priv ? g->priv : lo;
    hi = hi > g->mapped ? g->mapped : hi;
    if (lo < hi)
        mms__os_huge(s->view.base[id] + lo, hi - lo); /* a hint: harmless if refused */
}

MMS__OPEN_PATH
void mms__map_opened(mms_store *s)
{
    if (s->nmapped && s->view.base[0] && heap_advised(s, s->reg[0].mapped))
        mms__os_readahead_default(s->view.base[0], s->reg[0].mapped);
    s->opening = false;
}

/* Map fd[0, fsize) at region id's base: the user view (private committed
 * part and shared fresh part in a write handle, all shared and read-only
 * in a read-only one) and the file view. kept: a read-only handle's view
 * is there already (region 0 mapped early, advised then). */
MMS__OPEN_PATH
static int map_file(mms_store *s, uint32_t id, uint64_t fsize, bool kept)
{
    struct mms__region *g = &s->reg[id];
    char *base = s->view.base[id];
    bool w = view_writable(s);
    int r;
    g->mapped = fsize;
    g->readable = g->readable > fsize ? g->readable : fsize;
    g->mapseq = ++s->mapseq; /* pages protected in the old mapping are gone */
    if (s->flags & MMS_RDONLY) {
        g->priv = 0;
        r = kept ? 0 : mms__os_map_fixed(base, fsize, g->fd, 0, true, false);
        if (!r && !kept)
            map_advise(s, id, base, fsize);
    } else {
        g->priv = mms__round_up(g->committed, MMS__PAGE);
        r = map_view(s, base, g->priv, g->fd, 0, false, w);
        if (!r)
            r = map_view(s, base + g->priv, fsize - g->priv, g->fd, g->priv, true, w);
        if (!r)
            map_advise(s, id, base, fsize);
        if (!r && fsize)
            r = mms__os_map(g->fd, fsize, true, &g->fview);
        if (!r)
            g->fview_len = fsize;
    }
    if (r)
        return mms__fail(r, "cannot map region %u: %s", id, mms_strerror(r));
    return 0;
}

/* Whether this process can reserve [at, at + len) now (*err: why not);
 * if it can, the handle keeps the reservation (s->fixed_claim) until
 * reserve_fixed maps region 0 there: a probe given back at once let two
 * threads creating stores at once choose the same base, and the second
 * fail at its first mapping, a store left recorded there. */
static bool fixed_claim(mms_store *s, uint64_t at, uint64_t len, int *err)
{
    *err = mms__os_reserve_at((void *)(uintptr_t)at, len);
    if (*err)
        return false;
    s->fixed_claim = (char *)(uintptr_t)at;
    s->fixed_claim_len = len;
    return true;
}

/* The claim goes back unused (a failed create; a layout that differs). */
static void fixed_unclaim(mms_store *s)
{
    if (s->fixed_claim)
        mms__os_unmap(s->fixed_claim, s->fixed_claim_len);
    s->fixed_claim = NULL;
    s->fixed_claim_len = 0;
}

/* Does region id's range of the recorded layout lie in the address space?
 * The kernel keeps the last page below 128 TiB (x86-64's TASK_SIZE), so a
 * range that ends at 128 TiB is no more mappable than one that passes it. */
static int fixed_in_space(const mms_store *s, uint32_t id)
{
    uint64_t at = mms__fixed_addr(&s->fixed, id), len = mms__fixed_len(&s->fixed, id);
    const uint64_t end = MMS__ADDR_END - MMS__PAGE;
    if (at >= end || len > end - at)
        return mms__fail(MMS_EADDR, "region %u's fixed range [0x%llx, 0x%llx) passes the end "
                         "of the address space: the store has too many tables for its "
                         "reservations", id, (unsigned long long)at, (unsigned long long)(at + len));
    return 0;
}

/* Fixed-address mode: region id's range of the recorded layout, exactly. */
static int reserve_fixed(mms_store *s, uint32_t id, uint64_t fsize, char **base,
                         uint64_t *reserve)
{
    uint64_t at = mms__fixed_addr(&s->fixed, id), len = mms__fixed_len(&s->fixed, id);
    if (fsize > len)
        return mms__fail(MMS_EFULL, "region %u's file (%llu bytes) is larger than its fixed "
                         "range of %llu bytes", id, (unsigned long long)fsize,
                         (unsigned long long)len);
    if (s->fixed_claim == (char *)(uintptr_t)at && s->fixed_claim_len == len) {
        s->fixed_claim = NULL; /* reserved when the base was chosen: region 0's now */
        s->fixed_claim_len = 0;
        *base = (char *)(uintptr_t)at;
        *reserve = len;
        return 0;
    }
    fixed_unclaim(s);
    int r = fixed_in_space(s, id);
    if (r)
        return r;
    r = mms__os_reserve_at((void *)(uintptr_t)at, len);
    if (r == -EEXIST)
        return mms__fail(MMS_EADDR, "region %u's fixed range [0x%llx, 0x%llx) is in use in "
                         "this process (another mapping there, or another MMS_FIXED handle of "
                         "this store)", id, (unsigned long long)at, (unsigned long long)(at + len));
    if (r)
        return mms__fail(MMS_EADDR, "cannot reserve region %u's fixed range [0x%llx, 0x%llx): "
                         "%s", id, (unsigned long long)at, (unsigned long long)(at + len),
                         mms_strerror(r));
    *base = (char *)(uintptr_t)at;
    *reserve = len;
    return 0;
}

/* Anywhere the kernel likes, as much as the options say -- or, in a store
 * with a fixed layout, as much as that gives the region, so that the
 * store can always be opened fixed again. */
MMS__OPEN_PATH
static uint64_t reserve_len(const mms_store *s, uint32_t id, uint64_t fsize)
{
    /* The default: 256 GiB for the heap, 64 GiB per table, so that the
     * most regions a store can have (1024) fit in the 128 TiB of address
     * space a process has on x86-64; a region larger than half of that
     * gets twice its size, room to grow while the handle is open. A reserve
     * the user gave is the limit, or the file's size if that is larger. */
    uint64_t reserve = s->reserve ? s->reserve : (uint64_t)(id ? 64 : 256) << 30;
    if (!s->reserve && reserve / 2 < fsize)
        reserve = mms__round_up(2 * fsize, MMS__SEG);
    if (s->fixed.base)
        reserve = mms__fixed_len(&s->fixed, id);
    if (reserve < fsize)
        reserve = mms__round_up(fsize, MMS__SEG);
    return reserve;
}

/* A reservation of len bytes; one of a span (1 GiB) or more starts on a
 * span's boundary. The scan of every commit walks the page tables of the
 * private parts (txn.c), and a trim frees them only by mapping whole
 * spans anew (mms__map_renew): a region whose start is only 2 MiB-aligned
 * (what the kernel gives a large mapping) covers no whole span until it
 * is 2 GiB, so its tables stayed. The slack before the boundary stays
 * reserved, below the region (*lead bytes, given back with it: a munmap
 * less at every open); the slack after it stays in the reservation, room
 * to grow, unless the length is the user's (exact): then it goes. *out:
 * the bytes reserved at *base. */
MMS__OPEN_PATH
static int reserve_spans(const mms_store *s, uint64_t len, char **base, uint64_t *out,
                         uint64_t *lead)
{
    *lead = 0;
    if (len < MMS__SPAN) {
        *out = len;
        return mms__os_reserve(len, base);
    }
    char *p;
    int r = mms__os_reserve(len + MMS__SPAN, &p);
    if (r)
        return r;
    uint64_t head = mms__round_up((uint64_t)(uintptr_t)p, MMS__SPAN) - (uint64_t)(uintptr_t)p;
    *lead = head;
    *base = p + head;
    *out = len + MMS__SPAN - head;
    if (s->reserve && *out > len) {
        mms__os_unmap(*base + len, *out - len);
        *out = len;
    }
    return 0;
}

MMS__OPEN_PATH
static int reserve_any(mms_store *s, uint32_t id, uint64_t fsize, char **base, uint64_t *out,
                       uint64_t *lead)
{
    uint64_t reserve = reserve_len(s, id, fsize);
    *lead = 0;
    /* The room an open reserved after region 0 (mms__map_early0). */
    if (id && s->spare && !s->fixed.base && reserve <= s->spare_len) {
        *base = s->spare;
        *out = s->spare_len;
        s->spare = NULL;
        s->spare_len = 0;
        return 0;
    }
    int r = reserve_spans(s, reserve, base, out, lead);
    /* Out of address space (a large reserve option, many regions): less,
     * down to the file's size; growing past a reservation fails with
     * MMS_EFULL. */
    uint64_t least = mms__round_up(fsize ? fsize : 1, MMS__SEG);
    bool short_of_space = r == -ENOMEM;
    while (r == -ENOMEM && reserve > least) {
        uint64_t less = mms__round_up(reserve / 4, MMS__SEG);
        reserve = less > least ? less : least;
        r = mms__os_reserve(reserve, base);
        *out = reserve;
    }
    /* What fitted may be most of what is left (the first fit of 256 MiB
     * under a 300 MiB ulimit -v): keep a quarter of it, so that the
     * regions mapped after this one find room too. Taking it all made
     * the open of a five-region store fail at its fourth region under
     * limits a smaller one passed. */
    if (!r && short_of_space && reserve > least) {
        uint64_t keep = mms__round_up(reserve / 4, MMS__SEG);
        keep = keep > least ? keep : least;
        mms__os_unmap(*base + keep, reserve - keep);
        reserve = *out = keep;
    }
    if (r)
        return mms__fail(r, "cannot reserve %llu bytes of address space for region %u",
                         (unsigned long long)reserve, id);
    return 0;
}

/* ------------------------------------------------------------------------
 * Region 0 before its header is read (an open without MMS_FIXED).
 *
 * An open reads the header through region 0's own mapping: the region's
 * reservation comes first, its file is mapped read-only and shared at the
 * start of it (what a read-only handle's view of it is), and the same call
 * reserves room for the first table right after it (s->spare, 64 GiB:
 * what a table's reservation is without a reserve option). A warm
 * read-only open of a one-table store so reserves once and maps region 0
 * once; it used to map the header on its own, unmap it again and reserve
 * per region, three system calls more. A store with a fixed layout
 * (which says where its regions go) gives both back when the header says
 * so (early0_adopt); so does a handle that closes with the spare unused.
 * ------------------------------------------------------------------------ */
MMS__OPEN_PATH
int mms__map_early0(mms_store *s, int fd, uint64_t fsize, const char **out)
{
    assert(!(s->flags & MMS_FIXED) && !s->early0 && !s->spare);
    uint64_t reserve = reserve_len(s, 0, fsize);
    uint64_t spare = s->reserve ? 0 : reserve_len(s, 1, 0); /* a reserve option is exact */
    char *base;
    uint64_t got, lead;
    int r = reserve_spans(s, reserve + spare, &base, &got, &lead);
    if (!r && spare)
        spare = got - reserve; /* the slack past a span's boundary: the table's */
    if (r == -ENOMEM) { /* short of address space: the heap's alone, less if need be */
        spare = 0;
        r = reserve_any(s, 0, fsize, &base, &reserve, &lead);
    }
    if (r)
        return r;
    r = mms__os_map_fixed(base, fsize, fd, 0, true, false);
    if (r) {
        mms__os_unmap(base - lead, lead + reserve + spare);
        return mms__fail(r, "cannot map region 0: %s", mms_strerror(r));
    }
    if (heap_advised(s, fsize))
        mms__os_no_readahead(base, fsize);
    s->early0 = base;
    s->early0_reserve = reserve;
    s->early0_lead = lead;
    s->early0_mapped = fsize;
    s->spare = spare ? base + reserve : NULL;
    s->spare_len = spare;
    *out = base;
    return 0;
}

void mms__map_early_drop(mms_store *s)
{
    /* One munmap for both while they are one range (a failed open): a
     * munmap is one of the dearest calls here (~60 us). */
    if (s->early0 && s->spare == s->early0 + s->early0_reserve) {
        mms__os_unmap(s->early0 - s->early0_lead,
                      s->early0_lead + s->early0_reserve + s->spare_len);
    } else {
        if (s->early0)
            mms__os_unmap(s->early0 - s->early0_lead, s->early0_lead + s->early0_reserve);
        if (s->spare)
            mms__os_unmap(s->spare, s->spare_len);
    }
    s->early0 = s->spare = NULL;
    s->early0_reserve = s->early0_lead = s->early0_mapped = s->spare_len = 0;
}

/* Region 0's reservation and mapping from mms__map_early0, for its file of
 * fsize bytes now (recovery or another handle may have changed it since):
 * *kept if a read-only handle's view is there whole already; a page mapped
 * past fsize goes back to the reservation. */
static int early0_adopt(mms_store *s, uint64_t fsize, char **base, uint64_t *reserve,
                        uint64_t *lead, bool *kept)
{
    uint64_t had = mms__round_up(s->early0_mapped, MMS__PAGE);
    if (s->fixed.base || fsize > s->early0_reserve) {
        mms__map_early_drop(s); /* the layout's reservation (or a larger one) instead */
        return reserve_any(s, 0, fsize, base, reserve, lead);
    }
    *base = s->early0;
    *reserve = s->early0_reserve;
    *lead = s->early0_lead;
    s->early0 = NULL;
    s->early0_reserve = s->early0_lead = s->early0_mapped = 0;
    *kept = (s->flags & MMS_RDONLY) && had == fsize;
    return had > fsize ? mms__os_unmap_to_reserve(*base + fsize, had - fsize) : 0;
}

/* ------------------------------------------------------------------------
 * Retired ranges
 *
 * A pointer into a region stays a readable address for the life of the
 * handle (mmstore.h: mms_deref(), mms_table_array() "valid until
 * mms_close"), and a numpy array over a table may outlive every
 * transaction (DESIGN 6b: it never crashes the interpreter). Yet a
 * region's mapping can get shorter under them: another handle (any
 * process) migrates a table to smaller records or drops it, and this
 * handle maps the new file, or none, at its next transaction; a
 * compaction or a trim cuts a file. Nothing tells the library which
 * pointers users still hold, so no range a region ever mapped goes back
 * to PROT_NONE (a read there was a SIGSEGV) while the handle is open:
 *
 *   Z1. A range that leaves a region's mapping (past the new length of a
 *       replaced or cut file) is mapped read-only to zeros instead: the
 *       kernel's zero page, no file, no memory. Reads see zeros; a store
 *       faults, as one past the mapping did -- except in a write handle
 *       without the guard, whose view takes stores outside transactions
 *       everywhere (into private pages, never committed): there the zeros
 *       are writable private pages too. g->readable is how far the
 *       range ever was mapped; each time the file's mapping gets shorter,
 *       all of [new end, readable) is mapped to zeros in one call, over
 *       the zeros of earlier times (the kernel does not always merge
 *       adjacent ones), and growth maps the file over them (MAP_FIXED):
 *       so the zeros past a region's file are one mapping, however often
 *       it is migrated.
 *   Z2. A region that goes (a dropped table or index) keeps its
 *       reservation, its old range zeros (g->retired). The next region of
 *       that id (a create takes the lowest free id) is mapped in it:
 *       pointers of the old one then show the new one's bytes. A handle
 *       holds at most one reservation per region id, as it would with the
 *       region still there, and gives them all back at mms_close -- or one
 *       for a larger file than it can hold (a region of more than half the
 *       reservation, 32 GiB by default), which is then reserved anew.
 *
 * So what an old pointer shows is the region's bytes now: the records of
 * a migrated table in their new layout, zeros past them, zeros for a
 * dropped table, a new table's records once one took the region.
 * ------------------------------------------------------------------------ */
/* Z1: [from, readable) of region id's range, zeros. */
static void retire(mms_store *s, uint32_t id, uint64_t from)
{
    const struct mms__region *g = &s->reg[id];
    char *at = s->view.base[id] + from;
    uint64_t len = g->readable > from ? g->readable - from : 0;
    /* Writable where the whole view is writable outside transactions (a
     * write handle without the guard, whose stores then land in private
     * pages): a store through a pointer kept from before -- a Python
     * writable array -- must not fault here when it does not elsewhere.
     * Best effort, never an error: a failure leaves the range PROT_NONE,
     * what it was before this rule. */
    bool writable = !(s->flags & (MMS_RDONLY | MMS_GUARD));
    if (len && mms__os_zeros_at(at, len, writable))
        mms__os_unmap_to_reserve(at, len);
}

/* Z2: region id's retired reservation, if it can hold a file of fsize
 * bytes; else it goes back and the caller reserves as for a new region. */
static bool retired_adopt(mms_store *s, uint32_t id, uint64_t fsize, char **base,
                          uint64_t *reserve, uint64_t *lead)
{
    struct mms__region *g = &s->reg[id];
    if (!g->retired)
        return false;
    /* In fixed-address mode the region's range is its own, where it was. */
    uint64_t at = (uint64_t)(uintptr_t)g->retired;
    bool fits = (s->flags & MMS_FIXED) ? at == mms__fixed_addr(&s->fixed, id) &&
                                             fsize <= g->retired_reserve
                                       : reserve_len(s, id, fsize) <= g->retired_reserve;
    if (fits) {
        *base = g->retired;
        *reserve = g->retired_reserve;
        *lead = g->retired_lead;
        g->readable = g->retired_readable; /* the zeros are there */
    } else {
        mms__os_unmap(g->retired - g->retired_lead, g->retired_lead + g->retired_reserve);
    }
    g->retired = NULL;
    g->retired_reserve = g->retired_lead = g->retired_readable = 0;
    return fits;
}

MMS__OPEN_PATH
int mms__map_region(mms_store *s, uint32_t id, int fd, uint32_t gen, uint64_t committed,
                    uint64_t fsize)
{
    struct mms__region *g = &s->reg[id];
    /* The handle owns fd from here on, whatever happens. */
    g->fd = fd;
    for (uint32_t k = s->nmapped; k < id; k++) /* skipped ids hold no file */
        s->reg[k].fd = -1;
    if (id >= s->nmapped)
        s->nmapped = id + 1;
    uint64_t reserve = 0, lead = 0;
    char *base = NULL;
    bool kept = false;
    int r = file_size(fd, id, committed, &fsize);
    if (!r && id == 0 && s->early0)
        r = early0_adopt(s, fsize, &base, &reserve, &lead, &kept);
    else if (!r && !retired_adopt(s, id, fsize, &base, &reserve, &lead))
        r = (s->flags & MMS_FIXED) ? reserve_fixed(s, id, fsize, &base, &reserve)
                                   : reserve_any(s, id, fsize, &base, &reserve, &lead);
    if (r)
        return r;
    g->gen = gen;
    g->reserve = reserve;
    g->lead = lead;
    g->committed = committed;
    s->view.base[id] = base;
    s->view.unit[id] = id ? 0 : 1; /* a table's: set by table.c */
    /* Only a handle that may write has anonymous (copy-on-write) pages; a
     * read-only one maps files shared and read-only, and is spared the call. */
    if (!(s->flags & MMS_RDONLY))
        mms__os_nohuge(base, reserve);
    return map_file(s, id, fsize, kept);
}

/* A new store's base (mmstore.h, "Fixed-address mode"). One asked for is
 * tried before any file is made: a create that failed at its first
 * mapping left a store recorded there, which refused every create at
 * another base (MMS_EADDR: "recorded at ..., not at the base asked for").
 * Else the candidates 4 TiB apart (the default heap and 60 default
 * tables), from 32 TiB, well above where the kernel puts nothing of its own
 * choosing, up to 76 TiB, below the programs of 85 TiB. The probe makes a
 * store created while another fixed-mode store is open land past it. */
#define TIB ((uint64_t)1 << 40)
int mms__map_fixed_base(mms_store *s, uint64_t heap, uint64_t *base)
{
    int r;
    fixed_unclaim(s);
    if (*base) {
        if (fixed_claim(s, *base, heap, &r))
            return 0;
        return mms__fail(MMS_EADDR, "region 0's fixed range [0x%llx, 0x%llx) %s",
                         (unsigned long long)*base, (unsigned long long)(*base + heap),
                         r == -EEXIST ? "is in use in this process (another mapping there)"
                                      : mms_strerror(r));
    }
    for (uint64_t at = 32 * TIB; at <= 76 * TIB && heap <= MMS__ADDR_END - at; at += 4 * TIB) {
        if (fixed_claim(s, at, heap, &r)) {
            *base = at;
            return 0;
        }
    }
    return mms__fail(MMS_EADDR, "no default base for a fixed-mode store (32 to 76 TiB, 4 TiB "
                     "apart) has %llu bytes free in this process; give one (mms_options.base)",
                     (unsigned long long)heap);
}

int mms__map_replace(mms_store *s, uint32_t id, int fd, uint32_t gen, uint64_t committed)
{
    struct mms__region *g = &s->reg[id];
    uint64_t fsize = 0; /* measured by file_size */
    int r = file_size(fd, id, committed, &fsize);
    /* A new file is checked when it is made (mms__region_create_file);
     * this is a file found on disk larger than the range. */
    if (!r && fsize > g->reserve)
        r = mms__fail(MMS_EFULL, "region %u's file (%llu bytes) is larger than its "
                      "reservation of %llu bytes", id, (unsigned long long)fsize,
                      (unsigned long long)g->reserve);
    if (r) {
        mms__os_close(fd);
        return r;
    }
    /* The new file takes the old one's place; what the old mapped past
     * the new one's length reads as zeros (Z1, "Retired ranges"). */
    if (g->mapped > fsize)
        retire(s, id, fsize);
    if (g->fview)
        mms__os_unmap(g->fview, g->fview_len);
    g->fview = NULL;
    g->fview_len = 0;
    mms__os_close(g->fd);
    g->fd = fd;
    g->gen = gen;
    g->committed = committed;
    return map_file(s, id, fsize, false);
}

/* Everything of region id but its reservation: the file view, the file,
 * the bookkeeping. */
static void region_forget(mms_store *s, uint32_t id)
{
    struct mms__region *g = &s->reg[id];
    if (g->fview)
        mms__os_unmap(g->fview, g->fview_len);
    mms__os_close(g->fd);
    s->view.base[id] = NULL;
    s->view.unit[id] = 0;
    free(g->wp_reg);
    char *retired = g->retired;
    uint64_t retired_reserve = g->retired_reserve, retired_lead = g->retired_lead,
             retired_readable = g->retired_readable;
    memset(g, 0, sizeof *g);
    g->fd = -1;
    g->retired = retired;
    g->retired_reserve = retired_reserve;
    g->retired_lead = retired_lead;
    g->retired_readable = retired_readable;
}

/* Z2 of "Retired ranges": the reservation stays, the old range reads as
 * zeros. A region that is mapped has no retired reservation (adopted or
 * given back when it was mapped). */
void mms__map_unmap_region(mms_store *s, uint32_t id)
{
    struct mms__region *g = &s->reg[id];
    char *base = s->view.base[id];
    uint64_t reserve = g->reserve, lead = g->lead, readable = g->readable;
    assert(!base || !g->retired);
    if (base)
        retire(s, id, 0);
    region_forget(s, id);
    if (base) {
        g->retired = base;
        g->retired_reserve = reserve;
        g->retired_lead = lead;
        g->retired_readable = readable;
    }
}

/* The step by which a region of size bytes grows: an eighth of it (a
 * store stays within 1.125x its data), at least grow_step (64 KiB), at
 * most 256 MiB (or grow_step if larger). */
static uint64_t grow_step_at(const mms_store *s, uint64_t size)
{
    uint64_t cap = s->grow_step > GROW_CAP ? s->grow_step : GROW_CAP;
    uint64_t step = size / 8 > s->grow_step ? size / 8 : s->grow_step;
    return step > cap ? cap : step;
}

uint64_t mms__map_keep(const mms_store *s, uint64_t committed)
{
    return mms__round_up(committed + grow_step_at(s, committed), MMS__GROW_ALIGN);
}

int mms__map_trim(mms_store *s, uint32_t id, uint32_t gen, uint64_t committed, int fd,
                  uint64_t fsize, uint64_t *cut)
{
    assert(s->alone);
    bool own = fd < 0;
    int r = 0;
    if (own)
        r = region_open(s, id, gen, false, true, &fd, &fsize);
    uint64_t keep = mms__map_keep(s, committed);
    struct mms__region *g = id < s->nmapped && s->view.base[id] && s->reg[id].gen == gen
                                ? &s->reg[id] : NULL;
    if (g && g->priv > keep) /* never under this handle's committed pages */
        keep = g->priv;
    if (!r && fsize > keep && g && g->mapped > keep) {
        /* Nothing past the committed size means anything, and no other
         * handle maps the file (alone); this handle's mapping of it goes
         * first, so that no page of it is past the end of the file. */
        char *fv = NULL;
        r = g->fview ? mms__os_remap(g->fview, g->fview_len, keep, &fv) : 0;
        if (!r) {
            retire(s, id, keep); /* Z1 */
            g->fview = fv;
            g->fview_len = keep;
            g->mapped = keep;
        }
    }
    if (!r && fsize > keep) {
        r = mms__os_ftruncate(fd, keep);
        if (!r)
            *cut += fsize - keep;
    }
    if (own)
        mms__os_close(fd);
    if (r)
        return mms__fail(r, "cannot give back the space past region %u's committed size: %s",
                         id, mms_strerror(r));
    return 0;
}

int mms__map_grow(mms_store *s, uint32_t id, uint64_t need)
{
    assert(id < s->nmapped && s->view.base[id] && !(s->flags & MMS_RDONLY));
    struct mms__region *g = &s->reg[id];
    if (need <= g->mapped)
        return 0;
    if (need > g->reserve)
        return mms__fail(MMS_EFULL, "region %u needs %llu bytes, its reservation is %llu", id,
                         (unsigned long long)need, (unsigned long long)g->reserve);
    uint64_t step = grow_step_at(s, g->mapped);
    uint64_t want = mms__round_up(g->mapped + step > need ? g->mapped + step : need, MMS__GROW_ALIGN);
    if (want > g->reserve)
        want = g->reserve;
    /* Another handle may have grown the file further (in a transaction it
     * aborted, say); what it mapped must stay, so the file is never cut
     * below the size it had here. */
    uint64_t had;
    int r = mms__os_fsize(g->fd, &had);
    if (r)
        return r;
    if (had < g->mapped)
        had = g->mapped;
    /* What is not committed goes back at a checkpoint or an open. */
    mms__space_left_mark(s);
    /* Preallocate, so that the disk filling up is this error and never a
     * SIGBUS when a store touches a hole. */
    r = mms__os_fallocate(g->fd, g->mapped, want - g->mapped);
    if (!r)
        mms__crashpoint("region.grown");
    if (r && want > mms__round_up(need, MMS__GROW_ALIGN)) {
        /* A failed fallocate may keep the blocks it got and extend the file
         * over them (ext4 does): give them back before asking for less. */
        mms__os_ftruncate(g->fd, had);
        want = mms__round_up(need, MMS__GROW_ALIGN) < g->reserve ? mms__round_up(need, MMS__GROW_ALIGN) : need;
        r = mms__os_fallocate(g->fd, g->mapped, want - g->mapped);
    }
    if (r)
        goto cut_back;
    char *base = s->view.base[id];
    r = map_view(s, base + g->mapped, want - g->mapped, g->fd, g->mapped, true,
                 view_writable(s));
    if (r)
        goto cut_back;
    map_advise(s, id, base + g->mapped, want - g->mapped);
    char *fv;
    r = g->fview ? mms__os_remap(g->fview, g->fview_len, want, &fv) : mms__os_map(g->fd, want, true, &fv);
    if (r) {
        mms__os_unmap_to_reserve(base + g->mapped, want - g->mapped);
        goto cut_back;
    }
    g->fview = fv;
    g->fview_len = want;
    g->mapped = want;
    g->readable = g->readable > want ? g->readable : want;
    return 0;
cut_back:
    /* Nothing past what the file had is mapped by anyone or committed, so
     * cutting back to it is safe; it frees the space and keeps whole pages.
     * (Space a failed mapping left was kept for good: nothing marked it
     * space_left, so no checkpoint nor open gave it back.) */
    mms__os_ftruncate(g->fd, had);
    return mms__fail(r, "cannot grow region %u to %llu bytes: %s", id, (unsigned long long)want,
                     mms_strerror(r));
}

/* The chunks of [off, end) of region g are no longer registered for write
 * protection (txn.c registers them again): their mapping was replaced. */
static void wp_forget(struct mms__region *g, uint64_t off, uint64_t end)
{
    for (uint64_t k = off / MMS__WP_CHUNK; k < (end + MMS__WP_CHUNK - 1) / MMS__WP_CHUNK &&
                                           k / 64 < g->wp_reg_words; k++)
        g->wp_reg[k / 64] &= ~(UINT64_C(1) << (k % 64));
}

int mms__map_commit(mms_store *s, uint32_t id)
{
    struct mms__region *g = &s->reg[id];
    uint64_t np = mms__round_up(g->committed, MMS__PAGE);
    if (np <= g->priv)
        return 0;
    /* The fresh pages the transaction wrote are in the page cache, so the
     * private mapping that replaces the shared one shows the same bytes. */
    int r = map_view(s, s->view.base[id] + g->priv, np - g->priv, g->fd, g->priv, false,
                     view_writable(s));
    if (r)
        return mms__fail(r, "cannot remap region %u: %s", id, mms_strerror(r));
    map_advise(s, id, s->view.base[id] + g->priv, np - g->priv);
    /* A chunk registered for write protection up to the old end of the
     * private part (txn.c) is not past it: the new mapping is not. */
    if (g->priv % MMS__WP_CHUNK)
        wp_forget(g, g->priv, g->priv + 1);
    g->priv = np;
    return 0;
}

/* The scan of every commit walks the page tables of the private part
 * (txn.c): emptied by a trim, a table of page tables stays, and with it
 * ~8 us a GiB of walking at every commit (bench/commit_cost). A mapping
 * replaced over a whole 1 GiB-aligned span takes them with it. What was
 * registered for write protection there is not any more (txn.c registers
 * it again), and the advice of the reservation and of map_advise are given
 * again. */
int mms__map_renew(mms_store *s, uint32_t id, uint64_t off, uint64_t len)
{
    struct mms__region *g = &s->reg[id];
    assert(off + len <= g->priv);
    char *at = s->view.base[id] + off;
    int r = map_view(s, at, len, g->fd, off, false, view_writable(s)); /* guard.c G4 */
    if (r)
        return mms__fail(r, "cannot map region %u anew: %s", id, mms_strerror(r));
    mms__os_nohuge(at, len);
    map_advise(s, id, at, len);
    wp_forget(g, off, off + len);
    return 0;
}

/* mms_release_memory: drop the page-table entries of the shared mappings
 * (MADV_DONTNEED). On a shared file mapping that only unmaps: the pages
 * stay in the page cache, a dirty one stays dirty (Invariant 1 still syncs
 * it: msync of a range syncs the file's range, mapped or not), and the
 * next access maps the file's bytes again. Never on [0, priv) of a write
 * handle: there it would discard copy-on-write pages (an abort). */
void mms__map_release(mms_store *s)
{
    for (uint32_t id = 0; id < s->nmapped; id++) {
        struct mms__region *g = &s->reg[id];
        if (!s->view.base[id])
            continue;
        if (g->mapped > g->priv)
            mms__os_drop(s->view.base[id] + g->priv, g->mapped - g->priv);
        if (g->fview && g->fview_len)
            mms__os_drop(g->fview, g->fview_len);
    }
}

int mms__map_protect(mms_store *s, bool writable)
{
    if (s->guard_key) { /* one PKRU write, this thread only (guard.c G1) */
        mms__guard_rights(s, writable);
        return 0;
    }
    for (uint32_t id = 0; id < s->nmapped; id++) {
        if (!s->view.base[id])
            continue;
        int r = mms__os_protect(s->view.base[id], s->reg[id].mapped, writable);
        if (r)
            return mms__fail(r, "mprotect of region %u failed: %s", id, mms_strerror(r));
    }
    return 0;
}

/* Every region's reservation goes, and the spare if it is left: ranges
 * that touch go in one munmap. Region 0 and the first table were reserved
 * in one call (mms__map_early0); a munmap that frees page tables pays for
 * its own TLB flush, and one call for both took ~50 us less than two
 * (bench/results/issue14.md, "third round"). Ids in order catch the ranges
 * that follow each other so; others go one by one. */
void mms__map_unmap_all(mms_store *s)
{
    char *lo = NULL, *hi = NULL; /* the run not given back yet */
    for (uint32_t id = 0; id < s->nmapped; id++) {
        struct mms__region *g = &s->reg[id];
        if (g->retired) /* a range of its own (Z2) */
            mms__os_unmap(g->retired - g->retired_lead, g->retired_lead + g->retired_reserve);
        g->retired = NULL;
        char *a = s->view.base[id];
        if (a) {
            char *b = a + s->reg[id].reserve;
            a -= s->reg[id].lead;
            if (lo && (a == hi || b == lo)) {
                lo = a < lo ? a : lo;
                hi = b > hi ? b : hi;
            } else {
                if (lo)
                    mms__os_unmap(lo, (uint64_t)(hi - lo));
                lo = a;
                hi = b;
            }
        }
        region_forget(s, id);
    }
    if (lo && s->spare == hi) {
        hi += s->spare_len;
        s->spare = NULL;
        s->spare_len = 0;
    }
    if (lo)
        mms__os_unmap(lo, (uint64_t)(hi - lo));
    s->nmapped = 0;
    fixed_unclaim(s);
}

MMS__OPEN_PATH
int mms__map_follow(mms_store *s)
{
    const struct mms__hdr *h = mms__hdr(s);
    const struct mms__rent *rt = mms__rtab(s);
    uint32_t n = h->nregions < MMS_MAX_REGIONS ? h->nregions : MMS_MAX_REGIONS;
    bool write = !(s->flags & MMS_RDONLY);
    /* Regions that are gone (a table created by a transaction that
     * aborted): unmapped. */
    for (uint32_t id = 1; id < s->nmapped; id++)
        if (s->view.base[id] && (id >= n || rt[id].kind == MMS__RK_NONE))
            mms__map_unmap_region(s, id);
    for (uint32_t id = 0; id < n; id++) {
        if (rt[id].kind == MMS__RK_NONE)
            continue;
        struct mms__region *g = &s->reg[id];
        int r;
        if (!s->view.base[id] || g->gen != rt[id].gen) {
            int fd = -1;
            uint64_t fsize = 0;
            r = region_open(s, id, rt[id].gen, false, write, &fd, &fsize);
            if (r == -ENOENT)
                return MMS__CORRUPT("region %u generation %u has no file", id, rt[id].gen);
            if (r)
                return r;
            r = s->view.base[id] ? mms__map_replace(s, id, fd, rt[id].gen, rt[id].size)
                                 : mms__map_region(s, id, fd, rt[id].gen, rt[id].size, fsize);
            if (r)
                return r;
            continue;
        }
        /* Mapped as far as it is committed: nothing to map (what the file
         * has past that is another handle's fresh space), no fstat. */
        uint64_t fsize = g->mapped;
        r = rt[id].size <= g->mapped ? 0 : mms__os_fsize(g->fd, &fsize);
        if (r)
            return r;
        fsize -= fsize % MMS__PAGE;
        if (fsize < g->mapped)
            return MMS__CORRUPT("region %u file shrank to %llu bytes under a mapping of %llu",
                                id, (unsigned long long)fsize, (unsigned long long)g->mapped);
        if (fsize < rt[id].size)
            return MMS__CORRUPT("region %u file is %llu bytes, shorter than its committed size %llu",
                                id, (unsigned long long)fsize, (unsigned long long)rt[id].size);
        if (fsize > g->mapped) {
            if (fsize > g->reserve)
                return mms__fail(MMS_EFULL, "region %u grew to %llu bytes, past this handle's "
                                 "reservation of %llu; reopen it with a larger reserve", id,
                                 (unsigned long long)fsize, (unsigned long long)g->reserve);
            r = map_view(s, s->view.base[id] + g->mapped, fsize - g->mapped, g->fd, g->mapped,
                         true, write && view_writable(s));
            if (!r)
                map_advise(s, id, s->view.base[id] + g->mapped, fsize - g->mapped);
            if (!r && write) {
                char *fv;
                r = g->fview ? mms__os_remap(g->fview, g->fview_len, fsize, &fv)
                             : mms__os_map(g->fd, fsize, true, &fv);
                if (!r) {
                    g->fview = fv;
                    g->fview_len = fsize;
                }
            }
            if (r) {
                mms__os_unmap_to_reserve(s->view.base[id] + g->mapped, fsize - g->mapped);
                return mms__fail(r, "cannot map the grown region %u: %s", id, mms_strerror(r));
            }
            g->mapped = fsize;
            g->readable = g->readable > fsize ? g->readable : fsize;
        }
        g->committed = rt[id].size;
        if (write) {
            r = mms__map_commit(s, id);
            if (r)
                return r;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Creating and deleting region files
 * ------------------------------------------------------------------------ */
int mms__region_create_file(mms_store *s, uint32_t id, uint32_t gen, uint64_t bytes, int *fd)
{
    char name[MMS__REGION_NAME];
    region_name(name, id, gen);
    uint64_t fbytes = mms__round_up(bytes ? bytes : 1, MMS__GROW_ALIGN);
    /* A new file of a mapped region (a migration, a compaction) replaces it
     * inside the region's reservation, which never moves: one that cannot
     * fit fails here, before its caller changes the catalog or the region
     * table (a migration that found out only in mms__map_replace left them
     * switched, and the commit failed). */
    if (id < s->nmapped && s->view.base[id] && fbytes > s->reg[id].reserve)
        return mms__fail(MMS_EFULL, "region %u's new file (%llu bytes) is larger than %s of "
                         "%llu bytes%s", id, (unsigned long long)fbytes,
                         s->fixed.base ? "its fixed range" : "this handle's reservation",
                         (unsigned long long)s->reg[id].reserve,
                         s->fixed.base ? ", recorded at the store's creation"
                                    : "; reopen it with a larger reserve");
    /* A file no commit names yet: an abort, a failed commit or a death
     * leaves it behind, and the next give-back deletes it. */
    mms__space_left_mark(s);
    int r = mms__region_open_file(s, id, gen, true, true, fd);
    if (!r)
        mms__crashpoint("region.created");
    if (r == -EEXIST) {
        /* Left by a transaction that aborted or crashed: the header does
         * not name it, nobody maps it. */
        mms__os_unlinkat(s->dirfd, name);
        r = mms__region_open_file(s, id, gen, true, true, fd);
        if (!r)
            mms__detail_clear();
    }
    if (r)
        return r;
    s->dir_dirty = true;
    /* Preallocated: the disk filling up is this error, never a SIGBUS. */
    r = mms__os_fallocate(*fd, 0, fbytes);
    if (r) {
        mms__os_close(*fd);
        *fd = -1;
        mms__os_unlinkat(s->dirfd, name);
        return mms__fail(r, "cannot create the file of region %u: %s", id, mms_strerror(r));
    }
    return 0;
}

/* Before the files change: a flag set after them left what a death in
 * between made (a new file, a growth, a dropped region's file once the
 * checkpoint had emptied the journal) to whichever handle set it next --
 * an open and a close of the store kept it. */
void mms__space_left_mark(mms_store *s)
{
    if (s->L)
        __atomic_store_n(&s->L->space_left, 1, __ATOMIC_RELAXED);
}

void mms__region_release(mms_store *s, uint32_t id)
{
    struct mms__rent *rt = mms__rtab(s);
    rt[id].kind = MMS__RK_NONE;
    rt[id].size = 0;
    /* The file stays until the checkpoint after the commit (gc), or the
     * give-back after a death before that gc; an abort maps it back. */
    mms__space_left_mark(s);
}

void mms__region_unlink(mms_store *s, uint32_t id, uint32_t gen)
{
    char name[MMS__REGION_NAME];
    region_name(name, id, gen);
    mms__os_unlinkat(s->dirfd, name);
}

int mms__region_new(mms_store *s, uint32_t id, uint32_t gen, uint64_t bytes)
{
    int fd;
    /* A store with a fixed layout gets no region it could not be mapped
     * at, from a normal-mode handle either: one past the end of the address
     * space made every later MMS_FIXED open fail. */
    int r = s->fixed.base && !s->view.base[id] ? fixed_in_space(s, id) : 0;
    if (!r)
        r = mms__region_create_file(s, id, gen, bytes, &fd);
    if (r)
        return r;
    return s->view.base[id] ? mms__map_replace(s, id, fd, gen, 0)
                            : mms__map_region(s, id, fd, gen, 0, 0);
}

struct gc {
    mms_store *s;
    const struct mms__rent *rt;
    uint32_t nregions;
};

static int gc_name(void *ctx, const char *name)
{
    struct gc *g = ctx;
    unsigned id, gen;
    char tail;
    if (sscanf(name, "region-%u-%u%c", &id, &gen, &tail) != 2)
        return 0;
    if (id == 0 || (id < g->nregions && g->rt[id].kind != MMS__RK_NONE && g->rt[id].gen == gen))
        return 0;
    mms__os_unlinkat(g->s->dirfd, name);
    return 0;
}

void mms__region_gc(mms_store *s, const struct mms__rent *rt, uint32_t nregions)
{
    struct gc g = {s, rt, nregions};
    mms__os_dir_list(s->dirfd, gc_name, &g); /* best effort: a leftover is harmless */
}

struct sync_files {
    mms_store *s;
    int err;
};

static int sync_region_file(void *ctx, const char *name)
{
    struct sync_files *sf = ctx;
    unsigned id, gen;
    char tail;
    if (sscanf(name, "region-%u-%u%c", &id, &gen, &tail) != 2)
        return 0;
    /* A file this handle keeps open is synced through its descriptor: one
     * open and close fewer each, and no descriptor more than the listing's
     * (under a low RLIMIT_NOFILE the checkpoint failed here). */
    const mms_store *s = sf->s;
    bool held = id < s->nmapped && s->reg[id].fd >= 0 && s->reg[id].gen == gen;
    int fd = held ? s->reg[id].fd : mms__os_openat(s->dirfd, name, O_RDONLY, 0);
    if (fd == -ENOENT)
        return 0; /* deleted meanwhile (after a checkpoint): nothing to keep */
    int r = fd < 0 ? fd : mms__os_fdatasync(fd);
    if (!held)
        mms__os_close(fd);
    if (r && !sf->err)
        sf->err = r;
    return 0;
}

int mms__region_sync_all(mms_store *s)
{
    struct sync_files sf = {s, 0};
    int r = mms__os_dir_list(s->dirfd, sync_region_file, &sf);
    return r ? r : sf.err;
}

/* The file name of region id, generation gen (doc/FORMAT.md 1), for files
 * of other directories than a handle's own (copy.c). */
void mms__region_name(char name[MMS__REGION_NAME], uint32_t id, uint32_t gen)
{
    region_name(name, id, gen);
}

/*
 * hdr.c -- the store header: reading it from region 0's file, checking it,
 * its checksum, and formatting it for a new store.
 *
 * Layer 3: calls os.c, map.c (an open's early mapping of region 0) and
 * crc32c.c. The header (page 0 of region 0) and the
 * region table after it are ordinary transactional data once the store is
 * mapped; this file only reads them through a file descriptor (before any
 * mapping exists, and in recovery) and judges what it read. It must never
 * write a region file: a new header reaches the disk through the caller.
 *
 * Nothing read here is trusted: a header that does not check out is an
 * error code (MMS_ENOTSTORE, MMS_EVERSION, MMS_EBYTEORDER, MMS_EABI,
 * MMS_ECORRUPT), never a crash.
 */
#include "internal.h"

#include <string.h>

static void abi_mine(struct mms__abi *a)
{
    memset(a, 0, sizeof *a);
    uint16_t one = 1;
    a->endian = *(uint8_t *)&one ? MMS__ABI_LE : MMS__ABI_BE;
    a->ref_bits = 64;
    a->slot_bits = MMS_SLOT_BITS;
    a->page_shift = MMS__PAGE_SHIFT;
    a->seg_shift = MMS__SEG_SHIFT;
}

void mms__hdr_format(struct mms__hdr *h, struct mms__rent *rt)
{
    h->magic = MMS__MAGIC;
    h->version = MMS_FORMAT_VERSION;
    h->page_size = MMS__PAGE;
    abi_mine(&h->abi);
    mms__os_random(h->uuid, sizeof h->uuid);
    h->hdr_pages = MMS__HDR_PAGES;
    h->nregions = 1;
    h->created_ns = mms__os_now_ns();
    rt[0].kind = MMS__RK_HEAP;
}

MMS__OPEN_PATH
uint32_t mms__hdr_crc(const struct mms__hdr *h, const struct mms__rent *rt)
{
    uint32_t crc = mms__crc32c(0, h, offsetof(struct mms__hdr, crc));
    uint32_t n = h->nregions <= MMS_MAX_REGIONS ? h->nregions : MMS_MAX_REGIONS;
    return mms__crc32c(crc, rt, n * sizeof *rt);
}

MMS__OPEN_PATH
const char *mms__fixed_bad(const struct mms__fixed *f)
{
    if (!f->base)
        return f->heap || f->table ? "reservations without a base" : NULL;
    if (f->base % MMS__SEG || f->heap % MMS__SEG || f->table % MMS__SEG)
        return "base or reservation not a multiple of 4 MiB";
    if (f->heap < MMS__SEG || f->table < MMS__SEG)
        return "a reservation smaller than 4 MiB";
    if (f->base >= MMS__ADDR_END || f->heap > MMS__ADDR_END - f->base ||
        f->table > MMS__ADDR_END)
        return "the heap's range passes the end of the address space (128 TiB)";
    return NULL;
}

/* The smallest heap of a store of h's version (doc/FORMAT.md 2): one
 * segment in version 2; the header and segment 0's descriptors since. */
static uint64_t heap_least(const struct mms__hdr *h)
{
    return h->version < 3 ? MMS__SEG : (uint64_t)(MMS__HDR_PAGES + MMS__DESC_PAGES) * MMS__PAGE;
}

/* The fields that never change after creation: a torn apply cannot damage
 * them, so they are checked before recovery. */
MMS__OPEN_PATH
int mms__hdr_check_static(const struct mms__hdr *h, uint64_t file_size)
{
    if (h->magic == __builtin_bswap64(MMS__MAGIC))
        return mms__fail(MMS_EBYTEORDER, "the store was written on a machine of the other byte order");
    if (h->magic != MMS__MAGIC)
        return mms__fail(MMS_ENOTSTORE, "region 0 does not start with the mmstore magic");
    if (h->version < 2 || h->version > MMS_FORMAT_VERSION)
        return mms__fail(MMS_EVERSION, "the store has format version %u; this library reads 2 "
                         "to %u", h->version, MMS_FORMAT_VERSION);
    struct mms__abi mine;
    abi_mine(&mine);
    if (memcmp(&h->abi, &mine, sizeof mine) != 0 || h->page_size != MMS__PAGE ||
        h->hdr_pages != MMS__HDR_PAGES)
        return mms__fail(MMS_EABI, "the store's ABI fingerprint (byte order %u, ref %u bits, "
                         "slot %u bits, page 2^%u = %u bytes, segment 2^%u, %u header pages) "
                         "differs from this library's (%u, %u, %u, 2^%u = %u, 2^%u, %u)%s",
                         h->abi.endian, h->abi.ref_bits, h->abi.slot_bits, h->abi.page_shift,
                         h->page_size, h->abi.seg_shift, h->hdr_pages, mine.endian,
                         mine.ref_bits, mine.slot_bits, mine.page_shift, MMS__PAGE,
                         mine.seg_shift, MMS__HDR_PAGES,
                         h->abi.pad[0] | h->abi.pad[1] | h->abi.pad[2]
                             ? "; its padding is not zero: damage, not another build" : "");
    if (file_size < heap_least(h))
        return MMS__CORRUPT("region 0 is %llu bytes, shorter than the least heap (%llu)",
                            (unsigned long long)file_size, (unsigned long long)heap_least(h));
    const char *why = mms__fixed_bad(&h->fixed);
    if (why)
        return MMS__CORRUPT("header: fixed addresses (base 0x%llx, heap %llu, table %llu "
                            "bytes): %s", (unsigned long long)h->fixed.base,
                            (unsigned long long)h->fixed.heap,
                            (unsigned long long)h->fixed.table, why);
    return 0;
}

/* Everything else, after recovery. */
MMS__OPEN_PATH
int mms__hdr_check_full(const struct mms__hdr *h, const struct mms__rent *rt, uint64_t fsize)
{
    if (h->nregions == 0 || h->nregions > MMS_MAX_REGIONS)
        return MMS__CORRUPT("header: %u regions", h->nregions);
    if (h->crc != mms__hdr_crc(h, rt))
        return MMS__CORRUPT("header checksum mismatch");
    if (rt[0].kind != MMS__RK_HEAP || rt[0].gen != 0)
        return MMS__CORRUPT("header: region 0 is not the heap");
    if (rt[0].size < heap_least(h) || rt[0].size % (h->version < 3 ? MMS__SEG : MMS__PAGE) ||
        rt[0].size > fsize)
        return MMS__CORRUPT("header: heap size %llu does not fit region 0's file of %llu bytes",
                            (unsigned long long)rt[0].size, (unsigned long long)fsize);
    for (uint32_t i = 1; i < h->nregions; i++)
        if (rt[i].kind != MMS__RK_NONE && rt[i].kind != MMS__RK_TABLE && rt[i].kind != MMS__RK_INDEX)
            return MMS__CORRUPT("header: region %u has unknown kind %u", i, rt[i].kind);
    /* mms_root_set() refuses a root outside its region; one here is damage. */
    if (h->root != MMS_REF_NULL && (MMS_REF_REGION(h->root) >= h->nregions ||
                                    MMS_REF_SLOT(h->root) >= rt[MMS_REF_REGION(h->root)].size))
        return MMS__CORRUPT("header: root ref 0x%llx is outside its region",
                            (unsigned long long)h->root);
    return 0;
}

/* Region 0's size, at least a header's: *fsize. */
static int hdr_size(int fd, uint64_t *fsize)
{
    int r = mms__os_fsize(fd, fsize);
    if (!r && *fsize < MMS__HDR_BYTES)
        r = *fsize < 8 ? mms__fail(MMS_ENOTSTORE, "region 0 is too short to be a store")
                       : MMS__CORRUPT("region 0 is %llu bytes, shorter than its header",
                                      (unsigned long long)*fsize);
    return r;
}

int mms__hdr_map(int fd, const struct mms__hdrbuf **b, uint64_t *fsize)
{
    char *m = NULL;
    int r = hdr_size(fd, fsize);
    if (!r && (r = mms__os_map(fd, MMS__HDR_BYTES, false, &m)))
        r = mms__fail(r, "cannot map region 0's header: %s", mms_strerror(r));
    if (!r && (r = mms__hdr_check_static((const struct mms__hdr *)(void *)m, *fsize))) {
        mms__os_unmap(m, MMS__HDR_BYTES);
        m = NULL;
    }
    *b = (const struct mms__hdrbuf *)(void *)m;
    return r;
}

MMS__OPEN_PATH
int mms__hdr_map_region0(mms_store *s, int fd, const struct mms__hdrbuf **b, uint64_t *fsize)
{
    const char *m = NULL;
    int r = hdr_size(fd, fsize);
    if (!r)
        r = mms__map_early0(s, fd, *fsize, &m);
    if (!r)
        r = mms__hdr_check_static((const struct mms__hdr *)(const void *)m, *fsize);
    *b = (const struct mms__hdrbuf *)(const void *)m; /* given back by map.c, checked or not */
    return r;
}

MMS__OPEN_PATH
void mms__hdr_unmap(const struct mms__hdrbuf *b)
{
    if (b)
        mms__os_unmap((void *)(uintptr_t)b, MMS__HDR_BYTES);
}

int mms__hdr_read(int fd, struct mms__hdrbuf *b, uint64_t *fsize)
{
    int r = hdr_size(fd, fsize);
    /* The header page and the region table entries in use: the rest of the
     * buffer is left alone (fewer bytes copied and, in a new process, fewer
     * stack pages touched; each first touch is a page fault). */
    if (!r)
        r = mms__os_pread(fd, b, 2 * MMS__PAGE, 0);
    if (!r)
        r = mms__hdr_check_static(&b->h, *fsize);
    if (r)
        return r;
    uint32_t n = b->h.nregions < MMS_MAX_REGIONS ? b->h.nregions : MMS_MAX_REGIONS;
    uint64_t need = MMS__PAGE + mms__round_up((uint64_t)n * sizeof(struct mms__rent), MMS__PAGE);
    if (need > 2 * MMS__PAGE)
        r = mms__os_pread(fd, (char *)b + 2 * MMS__PAGE, need - 2 * MMS__PAGE, 2 * MMS__PAGE);
    return r;
}

/*
 * image.h -- a store directory as one fuzz input, the format shared by the
 * fuzz target (fuzz_store.c, which unpacks it) and the seed generator
 * (seedgen.c, which packs real stores into it).
 *
 * Store files are large and mostly zero (region 0 is at least 4 MiB, the
 * journal is preallocated in 4 MiB steps), so an input lists only the bytes
 * that are not zero. It is a sequence of file records:
 *
 *     u8   name     low 4 bits: index into mms_fuzz_names[] (modulo its
 *                   length, 16); bit 4: fix the checksums of this file
 *                   after writing it (below)
 *     u32  size     the file's size in bytes (at most MMS_FUZZ_MAX_FILE)
 *     u16  nchunk
 *     nchunk times:
 *       u32  off
 *       u16  len
 *       len bytes   written at off (clipped at size)
 *
 * integers little-endian. Bytes no chunk writes are zero (the files are
 * sparse). A record cut short ends the input, which keeps what came before;
 * a name given again replaces the earlier file. Nothing else is checked:
 * any byte string is an input.
 *
 * Checksums stop most mutations at the first check, so a file may ask for
 * them to be made right after it is written (bit 4 of its name byte):
 * region-0-0 gets its header CRC recomputed, the journal the CRCs of its
 * valid-looking header slots and the chained CRCs of the groups that parse
 * from offset 4096 (txn ids, types and lengths must still be right). The
 * seeds set it; the fuzzer may clear it.
 */
#define MMS_FUZZ_FIX 0x10u
#define MMS_FUZZ_NAME(b) (((b) & 0x0fu) % MMS_FUZZ_NNAMES)
#ifndef MMS_FUZZ_IMAGE_H
#define MMS_FUZZ_IMAGE_H

#define MMS_FUZZ_MAX_FILE (64u << 20)

static const char *const mms_fuzz_names[] = {
    "region-0-0", "journal",    "lock",       "region-1-0", "region-1-1", "region-2-0",
    "region-2-1", "region-3-0", "region-1-2", "region-4-0", "region-0-0.tmp", "region-0-1",
    /* the index regions of seedgen's indexes (3-6): a new index's commit
     * writes its region's generation 1 */
    "region-3-1", "region-4-1", "region-5-1", "region-6-1",
};
#define MMS_FUZZ_NNAMES (sizeof mms_fuzz_names / sizeof mms_fuzz_names[0])

#endif

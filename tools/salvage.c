/*
 * salvage.c -- reading a damaged store without the library (salvage.h).
 *
 * What it owns: the on-disk format as doc/FORMAT.md states it, read back
 * from files that may be damaged in any way. It must never write the store
 * it reads (files are opened O_RDONLY and mapped MAP_PRIVATE: the journal is
 * replayed into private copies of the pages) and never read a byte it has
 * not checked lies in a file.
 *
 * NOTES ON WHAT CAN BE PROVED
 *
 *  1. The header page is believed only if its CRC (FORMAT §2.1) matches
 *     after the journal's replay: it names the catalog and every region's
 *     committed size, so without it nothing else is provable.
 *  2. The journal is replayed only as the library would (FORMAT §3.3): from
 *     the current header slot of a journal naming this store, group after
 *     group while each parses, follows its predecessor's txn id and matches
 *     its chained CRC. A group is applied whole or not at all; one that
 *     cannot be applied (a missing file, a write past a file's end) ends the
 *     replay. Groups the region files already hold (txn <= the header's)
 *     must all be replayable or none is: replaying some of them over newer
 *     files would mix two states.
 *  3. A heap ref is an allocation only if the segment walk reaches its unit,
 *     its page descriptor and slab header check out and its slot's bit is
 *     set (FORMAT §2.3-2.5); a string also needs its tag and NUL (§2.7).
 *  4. A table is readable only if its catalog entry and field list check
 *     out; its records only as far as its region file holds them.
 */
#define _GNU_SOURCE
#include "salvage.h"
#include "tool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* FORMAT §2: region 0. */
#define PAGE 4096u
#define UNIT ((uint64_t)4 << 20)
#define HDR_MAGIC UINT64_C(0x3145524f54534d4d)
#define HDR_VERSION 3u /* reads 2 too: a heap of whole units */
#define HDR_CRC_OFF 4088u
#define RTAB_OFF 4096u
#define SEG0_DESC 20480u /* descriptors of segment 0 */
#define HEAP_START 36864u
#define RK_HEAP 1u
#define RK_TABLE 2u
#define RK_INDEX 3u
/* FORMAT §2.3: descriptor kinds. */
enum { D_META = 1, D_FREE_HEAD, D_FREE_CONT, D_LARGE_HEAD, D_LARGE_CONT, D_SLAB_HEAD,
       D_SLAB_CONT, S_NORMAL = 16, S_HUGE, S_FREE };
#define SLAB_MAGIC 0x42414c53u
static const uint32_t class_size[24] = {16,  32,  48,  64,  80,  96,  112,  128,
                                        160, 192, 224, 256, 320, 384, 448,  512,
                                        640, 768, 896, 1024, 1280, 1536, 1792, 2048};
/* FORMAT §2.6-2.8. */
#define CAT_MAGIC 0x4c544143u
#define CAT_ENTRY 256u
#define FDESC 96u
#define IXDESC 128u
#define STR_TAG UINT64_C(0x5354)
/* FORMAT §3: the journal. */
#define J_MAGIC UINT64_C(0x314c4e524a534d4d)
#define J_SLOT 512u
#define J_DATA 4096u
#define JR_BEGIN 0x4e474542u
#define JR_DATA 0x41544144u
#define JR_SIZE 0x455a4953u
#define JR_COMMIT 0x54494d43u

/* ------------------------------------------------------------------------
 * Little helpers: CRC-32C, unaligned reads, notes
 * ------------------------------------------------------------------------ */
static uint32_t crc_table[256];

static uint32_t crc32c(uint32_t crc, const void *buf, size_t n)
{
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
            crc_table[i] = c;
        }
    const uint8_t *p = buf;
    crc = ~crc;
    while (n--)
        crc = (crc >> 8) ^ crc_table[(crc ^ *p++) & 0xff];
    return ~crc;
}

static uint16_t g16(const void *p, size_t off)
{
    uint16_t v;
    memcpy(&v, (const char *)p + off, 2);
    return v;
}

static uint32_t g32(const void *p, size_t off)
{
    uint32_t v;
    memcpy(&v, (const char *)p + off, 4);
    return v;
}

static uint64_t g64(const void *p, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)p + off, 8);
    return v;
}

static void note(const struct sv_store *st, bool loss, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void note(const struct sv_store *st, bool loss, const char *subject, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (st->note)
        st->note(st->ctx, loss, subject, text);
}

#define WHY(...) (snprintf(why, cap, __VA_ARGS__), -1)

/* ------------------------------------------------------------------------
 * Pages that cannot be read
 *
 * A page of a mapped file that cannot be read (an I/O error of a failing
 * disk; a hole of a sparse file on a full tmpfs) is a SIGBUS at its first
 * touch. A salvage must not die of the damage it is for: the handler puts
 * a page of zeros in its place (the checks then find what it held damaged,
 * or absent) and notes it; sv_bad_report() reports each such page as a
 * loss, and sv_unreadable() tells the records on one, to be dropped. Only
 * this file's mappings are so treated (g_maps); a SIGBUS elsewhere kills.
 * ------------------------------------------------------------------------ */
#define MAPS_MAX (MMS_MAX_REGIONS + 8)
#define BAD_MAX 4096
static struct {
    uintptr_t lo, hi;
    uint32_t id, gen; /* id UINT32_MAX: the journal */
} g_maps[MAPS_MAX];
static volatile sig_atomic_t g_nmaps;
static struct {
    uint32_t map;
    uint64_t off;
} g_bad[BAD_MAX];
static volatile sig_atomic_t g_nbad;
static size_t g_reported;

static void maps_add(const void *p, uint64_t len, uint32_t id, uint32_t gen)
{
    if (g_nmaps == MAPS_MAX)
        return; /* not expected: a SIGBUS there kills, as it did */
    g_maps[g_nmaps].lo = (uintptr_t)p;
    g_maps[g_nmaps].hi = (uintptr_t)p + len;
    g_maps[g_nmaps].id = id;
    g_maps[g_nmaps].gen = gen;
    g_nmaps++;
}

/* Forget the mapping at p (being unmapped): its range may be reused. */
static void maps_drop(const void *p)
{
    for (int i = 0; i < g_nmaps; i++)
        if (g_maps[i].lo == (uintptr_t)p)
            g_maps[i].lo = g_maps[i].hi = 0;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    uintptr_t a = (uintptr_t)si->si_addr, pg = a & ~(uintptr_t)(PAGE - 1);
    for (int i = 0; i < g_nmaps; i++)
        if (a >= g_maps[i].lo && a < g_maps[i].hi) {
            if (g_nbad < BAD_MAX &&
                mmap((void *)pg, PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
                g_bad[g_nbad].map = (uint32_t)i;
                g_bad[g_nbad].off = pg - g_maps[i].lo;
                g_nbad++;
                return; /* the access is made again, and reads zeros */
            }
            break;
        }
    signal(sig, SIG_DFL); /* not ours, or too many: the access faults again, and kills */
}

static void sigbus_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

bool sv_unreadable(const void *p, uint64_t len)
{
    if (!len)
        return false;
    uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(PAGE - 1), hi = (uintptr_t)p + len;
    for (uintptr_t a = lo; a < hi; a += PAGE) /* fault in what was not read yet */
        (void)*(const volatile uint8_t *)(a < (uintptr_t)p ? (uintptr_t)p : a);
    for (int i = 0; i < g_nbad; i++) {
        uintptr_t b = g_maps[g_bad[i].map].lo + g_bad[i].off;
        if (b + PAGE > (uintptr_t)p && b < hi)
            return true;
    }
    return false;
}

void sv_bad_report(const struct sv_store *st)
{
    for (; g_reported < (size_t)g_nbad; g_reported++) {
        uint32_t m = g_bad[g_reported].map;
        char subject[80];
        if (g_maps[m].id == UINT32_MAX)
            snprintf(subject, sizeof subject, "page file=journal offset=%llu",
                     (unsigned long long)g_bad[g_reported].off);
        else
            snprintf(subject, sizeof subject, "page file=region-%u-%u offset=%llu",
                     g_maps[m].id, g_maps[m].gen, (unsigned long long)g_bad[g_reported].off);
        note(st, true, subject, "cannot be read (an I/O error, or a hole of a sparse file on "
             "a full file system): read as zeros, what it held is lost");
    }
}

/* ------------------------------------------------------------------------
 * Region files
 * ------------------------------------------------------------------------ */
/* The view of region id, generation gen: mapped on first use. NULL only when
 * memory runs out. */
static struct sv_view *view(struct sv_store *st, uint32_t id, uint32_t gen)
{
    for (size_t i = 0; i < st->nv; i++)
        if (st->v[i].id == id && st->v[i].gen == gen)
            return &st->v[i];
    struct sv_view *grown = tool_room(st->v, st->nv, &st->capv, sizeof *grown, 16);
    if (!grown)
        return NULL;
    st->v = grown;
    struct sv_view *v = &st->v[st->nv++];
    memset(v, 0, sizeof *v);
    v->id = id;
    v->gen = gen;
    char name[64];
    snprintf(name, sizeof name, "region-%u-%u", id, gen);
    /* O_NONBLOCK: a FIFO in the place of the file would block the open
     * for ever; refused as not a regular file instead. */
    int fd = openat(st->dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        v->missing = true;
        v->absent = fd < 0 && errno == ENOENT ? "missing" : fd < 0 ? "unreadable"
                                                                  : "not a regular file";
        if (fd >= 0)
            close(fd);
        return v;
    }
    v->fsize = (uint64_t)sb.st_size;
    if (v->fsize) {
        /* Private and writable: the journal's replay lands here, never in
         * the file. */
        void *m = mmap(NULL, v->fsize, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED)
            maps_add(m, v->fsize, id, gen);
        if (m == MAP_FAILED) {
            v->missing = true;
            v->absent = "unreadable";
            v->fsize = 0;
        } else {
            v->base = m;
        }
    }
    close(fd);
    return v;
}

/* ------------------------------------------------------------------------
 * The journal (FORMAT §3; NOTES 2)
 * ------------------------------------------------------------------------ */
struct jgroup {
    uint64_t off, bytes, txn;
    uint32_t nrec;
};

struct journal {
    const uint8_t *j;
    uint64_t size;
    uint64_t start_txn;
    uint32_t salt;
    struct jgroup *g;
    size_t ng, capg;
    uint64_t end; /* offset after the last valid group */
    char stop[200]; /* why the walk stopped there */
    bool stop_torn; /* the stop looks like the next commit, damaged or torn */
};

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

/* The group at off with txn id txn and CRC seed seed: 1 and *g if valid;
 * 0 and why (j->stop) if not. */
static int jgroup_parse(struct journal *J, uint64_t off, uint32_t seed, uint64_t txn,
                        struct jgroup *g, uint32_t *crc_out)
{
    const uint8_t *j = J->j;
    uint64_t size = J->size;
    J->stop_torn = false;
    if (off + 16 > size) {
        snprintf(J->stop, sizeof J->stop, "the journal file ends");
        return 0;
    }
    if (g32(j, off) != JR_BEGIN || g64(j, off + 8) != txn) {
        bool zero = true;
        for (uint64_t i = off; i < off + 16 && zero; i++)
            zero = j[i] == 0;
        snprintf(J->stop, sizeof J->stop,
                 zero ? "zero bytes follow"
                      : "the bytes that follow are not a commit group of txn %llu (groups "
                        "of an earlier checkpoint, or damage)",
                 (unsigned long long)txn);
        return 0;
    }
    J->stop_torn = true;
    uint64_t p = off + 16;
    uint32_t nrec = 0;
    for (;;) {
        if (p + 8 > size) {
            snprintf(J->stop, sizeof J->stop, "the group of txn %llu runs past the end of the "
                     "file", (unsigned long long)txn);
            return 0;
        }
        uint32_t type = g32(j, p);
        if (type == JR_DATA) {
            uint64_t len = p + 24 <= size ? g32(j, p + 4) : UINT64_MAX;
            if (len == UINT64_MAX || pad8(len) > size - p - 24) {
                snprintf(J->stop, sizeof J->stop, "the group of txn %llu runs past the end of "
                         "the file", (unsigned long long)txn);
                return 0;
            }
            p += 24 + pad8(len);
        } else if (type == JR_SIZE) {
            p += 24;
        } else if (type == JR_COMMIT) {
            if (p + 32 > size) {
                snprintf(J->stop, sizeof J->stop, "the group of txn %llu runs past the end of "
                         "the file", (unsigned long long)txn);
                return 0;
            }
            uint64_t bytes = p + 32 - off;
            if (g32(j, p + 4) != nrec || g64(j, p + 8) != txn || g64(j, p + 16) != bytes) {
                snprintf(J->stop, sizeof J->stop, "the commit record of txn %llu does not match "
                         "its group", (unsigned long long)txn);
                return 0;
            }
            uint32_t crc = crc32c(seed, j + off, bytes - 32 + 24);
            if (crc != g32(j, p + 24)) {
                snprintf(J->stop, sizeof J->stop, "the group of txn %llu fails its checksum",
                         (unsigned long long)txn);
                return 0;
            }
            g->off = off;
            g->bytes = bytes;
            g->txn = txn;
            g->nrec = nrec;
            *crc_out = crc;
            return 1;
        } else {
            snprintf(J->stop, sizeof J->stop, "the group of txn %llu holds a record of unknown "
                     "type 0x%x", (unsigned long long)txn, type);
            return 0;
        }
        nrec++;
    }
}

/* The header slots and the valid groups. 0, or -1 if the journal is not
 * usable (then it is not replayed; a note says why). */
static int journal_read(struct sv_store *st, const uint8_t uuid[16], struct journal *J)
{
    memset(J, 0, sizeof *J);
    int fd = openat(st->dirfd, "journal", O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* view() */
    struct stat sb;
    if (fd < 0) {
        note(st, false, "journal", "the journal file is missing (%s): the region files are "
             "taken as they are", strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        close(fd);
        note(st, false, "journal", "the journal is not a regular file: the region files are "
             "taken as they are");
        return -1;
    }
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size < J_DATA) {
        close(fd);
        note(st, false, "journal", "the journal is shorter than its header: the region files "
             "are taken as they are");
        return -1;
    }
    J->size = (uint64_t)sb.st_size;
    void *m = mmap(NULL, J->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m != MAP_FAILED)
        maps_add(m, J->size, UINT32_MAX, 0);
    if (m == MAP_FAILED) {
        note(st, false, "journal", "cannot map the journal (%s): the region files are taken as "
             "they are", strerror(errno));
        return -1;
    }
    J->j = m;
    const uint8_t *a = J->j, *b = J->j + J_SLOT;
    bool va = g64(a, 0) == J_MAGIC && g32(a, 8) == 1 && g32(a, 48) == crc32c(0, a, 48);
    bool vb = g64(b, 0) == J_MAGIC && g32(b, 8) == 1 && g32(b, 48) == crc32c(0, b, 48);
    if (!va && !vb) {
        note(st, false, "journal", "both journal header slots are damaged: the journal is not "
             "replayed");
        return -1;
    }
    const uint8_t *h = (va && (!vb || g64(a, 32) >= g64(b, 32))) ? a : b;
    if (memcmp(h + 16, uuid, 16) != 0) {
        note(st, false, "journal", "the journal names another store: it is not replayed");
        return -1;
    }
    J->salt = g32(h, 12);
    J->start_txn = g64(h, 40);
    uint64_t off = J_DATA, txn = J->start_txn;
    uint32_t crc = J->salt;
    struct jgroup g;
    while (jgroup_parse(J, off, crc, txn + 1, &g, &crc)) {
        struct jgroup *n = tool_room(J->g, J->ng, &J->capg, sizeof *n, 64);
        if (!n)
            return -1;
        J->g = n;
        J->g[J->ng++] = g;
        off += g.bytes;
        txn++;
    }
    J->end = off;
    return 0;
}

/* Can group g be applied whole (NOTES 2)? NULL, or why not. */
static const char *jgroup_applicable(struct sv_store *st, const struct journal *J,
                                     const struct jgroup *g, char *buf, size_t cap)
{
    uint64_t p = g->off + 16;
    for (uint32_t i = 0; i < g->nrec; i++) {
        uint32_t type = g32(J->j, p);
        uint32_t id = type == JR_DATA ? g16(J->j, p + 8) : g16(J->j, p + 8);
        uint32_t gen = type == JR_DATA ? g32(J->j, p + 12) : g32(J->j, p + 4);
        if (id >= MMS_MAX_REGIONS) {
            snprintf(buf, cap, "it names region %u", id);
            return buf;
        }
        struct sv_view *v = view(st, id, gen);
        if (!v || v->missing) {
            snprintf(buf, cap, "the file region-%u-%u it writes is %s", id, gen,
                     v ? v->absent : "missing");
            return buf;
        }
        uint64_t end = type == JR_DATA ? g64(J->j, p + 16) + g32(J->j, p + 4) : g64(J->j, p + 16);
        if (end > v->fsize || (type == JR_DATA && g64(J->j, p + 16) > v->fsize)) {
            snprintf(buf, cap, "it writes past the end of region-%u-%u (%llu bytes)", id, gen,
                     (unsigned long long)v->fsize);
            return buf;
        }
        p += type == JR_DATA ? 24 + pad8(g32(J->j, p + 4)) : 24;
    }
    return NULL;
}

static void jgroup_apply(struct sv_store *st, const struct journal *J, const struct jgroup *g)
{
    uint64_t p = g->off + 16;
    for (uint32_t i = 0; i < g->nrec; i++) {
        uint32_t type = g32(J->j, p);
        if (type == JR_DATA) {
            uint32_t len = g32(J->j, p + 4);
            struct sv_view *v = view(st, g16(J->j, p + 8), g32(J->j, p + 12));
            memcpy(v->base + g64(J->j, p + 16), J->j + p + 24, len);
            p += 24 + pad8(len);
        } else {
            p += 24;
        }
    }
}

/* NOTES 2. H is the header's txn id before the replay (hcrc_ok: its CRC
 * matched then). */
static void journal_replay(struct sv_store *st, const uint8_t uuid[16], uint64_t H, bool hcrc_ok)
{
    struct journal J;
    if (journal_read(st, uuid, &J) == 0) {
        uint64_t S = J.start_txn, L = S + J.ng;
        char buf[200];
        size_t upto = J.ng; /* groups to apply */
        const char *stop = NULL;
        for (size_t i = 0; i < J.ng && !stop; i++)
            if ((stop = jgroup_applicable(st, &J, &J.g[i], buf, sizeof buf)))
                upto = i;
        if (hcrc_ok && H > L) {
            note(st, false, "journal", "the region files are at txn %llu, ahead of the "
                 "journal's last valid commit (txn %llu): the journal is not replayed and the "
                 "region files are taken as they are", (unsigned long long)H,
                 (unsigned long long)L);
            upto = 0;
        } else if (hcrc_ok && H < S) {
            /* The checkpoint synced the files at txn S: they lost their
             * writes since H (or were replaced by older ones), and the
             * epochs that held those commits are gone. A loss. */
            note(st, true, "journal", "the region files are at txn %llu, older than the "
                 "journal's checkpoint (txn %llu): the commits of txns %llu..%llu are lost "
                 "(a region file was replaced or lost its writes); the journal is not "
                 "replayed and the region files are taken as they are",
                 (unsigned long long)H, (unsigned long long)S, (unsigned long long)(H + 1),
                 (unsigned long long)L);
            upto = 0;
        } else if (stop && hcrc_ok && S + upto + 1 <= H) {
            note(st, false, "journal", "the commit of txn %llu cannot be applied (%s) and the "
                 "region files already hold it: the journal is not replayed",
                 (unsigned long long)(S + upto + 1), stop);
            upto = 0;
        } else if (stop) {
            note(st, true, "journal", "the commits of txns %llu..%llu are lost: the first "
                 "cannot be applied (%s)", (unsigned long long)(S + upto + 1),
                 (unsigned long long)L, stop);
        }
        for (size_t i = 0; i < upto; i++)
            jgroup_apply(st, &J, &J.g[i]);
        if (J.ng && upto)
            note(st, false, "journal", "replayed %zu commit%s (txns %llu..%llu)", upto,
                 upto == 1 ? "" : "s", (unsigned long long)(S + 1),
                 (unsigned long long)(S + upto));
        else if (!J.ng)
            note(st, false, "journal", "no commit to replay since the checkpoint at txn %llu",
                 (unsigned long long)S);
        /* Where the valid groups end: a torn next commit is a loss (it may
         * have been acknowledged); stale bytes of older epochs are normal. */
        if (J.stop_torn && !(hcrc_ok && H > L))
            note(st, true, "journal", "at offset %llu: %s: that commit is not replayed",
                 (unsigned long long)J.end, J.stop);
        else if (strncmp(J.stop, "zero", 4) != 0 && strncmp(J.stop, "the journal file", 16) != 0)
            note(st, false, "journal", "at offset %llu: %s: the journal ends there",
                 (unsigned long long)J.end, J.stop);
    }
    if (J.j)
        maps_drop(J.j), munmap((void *)J.j, J.size);
    free(J.g);
}

/* ------------------------------------------------------------------------
 * The header (NOTES 1)
 * ------------------------------------------------------------------------ */
static uint32_t hdr_crc(const uint8_t *h, uint32_t nregions)
{
    uint32_t crc = crc32c(0, h, HDR_CRC_OFF);
    return crc32c(crc, h + RTAB_OFF, (size_t)nregions * 16);
}

/* The fields that never change: is region 0 a store this tool reads? */
static int hdr_static(const struct sv_view *v0, char *why, size_t cap)
{
    if (v0->missing && strcmp(v0->absent, "missing") == 0)
        return WHY("%s", "region-0-0 is missing: this is not a store (or its heap file was lost)");
    if (v0->missing)
        return WHY("region-0-0 is %s", v0->absent);
    if (v0->fsize < RTAB_OFF + PAGE * 4)
        return WHY("region-0-0 is %llu bytes, shorter than the store header and region table",
                   (unsigned long long)v0->fsize);
    const uint8_t *h = (const uint8_t *)v0->base;
    uint64_t magic = g64(h, 0);
    if (magic == __builtin_bswap64(HDR_MAGIC))
        return WHY("%s", "the store was written on a machine of the other byte order "
                   "(use mms dump --all there, mms load here)");
    if (magic != HDR_MAGIC)
        return WHY("%s", "region-0-0 does not start with the mmstore magic: the header page is "
                   "damaged, and it names every region and the catalog");
    if (g32(h, 8) < 2 || g32(h, 8) > HDR_VERSION)
        return WHY("the store has format version %u; this tool reads 2 to %u", g32(h, 8),
                   HDR_VERSION);
    static const uint8_t abi[8] = {1, 64, 48, 12, 22, 0, 0, 0};
    uint16_t one = 1;
    if (!*(const uint8_t *)&one || memcmp(h + 16, abi, 8) != 0 || g32(h, 12) != PAGE ||
        g32(h, 68) != 5)
        return WHY("%s", "the store's ABI fingerprint differs from this machine's");
    return 0;
}

static int hdr_full(struct sv_store *st, const uint8_t *h, uint64_t fsize, char *why, size_t cap)
{
    uint32_t n = g32(h, 64);
    if (n == 0 || n > MMS_MAX_REGIONS)
        return WHY("the store header is damaged: it counts %u regions (and its checksum cannot "
                   "be checked); the header names every region and the catalog, so nothing "
                   "can be salvaged", n);
    uint32_t want = hdr_crc(h, n), got = g32(h, HDR_CRC_OFF);
    if (want != got)
        return WHY("the store header is damaged: its checksum is 0x%08x, its bytes give 0x%08x; "
                   "the header names every region and the catalog, so nothing can be salvaged",
                   got, want);
    st->nregions = n;
    st->txn = g64(h, 40);
    st->root = g64(h, 48);
    st->catalog = g64(h, 56);
    st->fixed_base = g64(h, 336);
    for (uint32_t i = 0; i < n; i++) {
        st->rt[i].size = g64(h, RTAB_OFF + 16 * i);
        st->rt[i].gen = g32(h, RTAB_OFF + 16 * i + 8);
        st->rt[i].kind = g32(h, RTAB_OFF + 16 * i + 12);
    }
    /* FORMAT 2: whole units in version 2; since, whole pages past the
     * header and segment 0's descriptors. */
    bool v2 = g32(h, 8) == 2;
    if (st->rt[0].kind != RK_HEAP || st->rt[0].gen != 0 ||
        st->rt[0].size < (v2 ? UNIT : SEG0_DESC + 4 * PAGE) || st->rt[0].size % (v2 ? UNIT : PAGE))
        return WHY("the store header's region table is damaged (region 0: kind %u, %llu "
                   "bytes)", st->rt[0].kind, (unsigned long long)st->rt[0].size);
    st->heap = h;
    st->heap_size = st->rt[0].size;
    st->heap_known = fsize < st->heap_size ? fsize : st->heap_size;
    if (fsize < st->heap_size)
        note(st, false, "heap", "region-0-0 is %llu bytes, the heap %llu: heap objects past "
             "byte %llu are lost", (unsigned long long)fsize,
             (unsigned long long)st->heap_size, (unsigned long long)fsize);
    return 0;
}

/* ------------------------------------------------------------------------
 * The heap (NOTES 3)
 * ------------------------------------------------------------------------ */
static bool heap_has(const struct sv_store *st, uint64_t off, uint64_t len)
{
    return off <= st->heap_known && len <= st->heap_known - off;
}

/* Walk the segments from unit 0 by their lengths (FORMAT §2.3). */
static int heap_walk(struct sv_store *st)
{
    /* The units the header claims (the last may be partial) bound the
     * segments' lengths; only those the file holds are recorded: a
     * damaged size claims up to 2^32 units, and their tables took 10 GB
     * (the store fuzzer's out-of-memory stops). */
    uint32_t claimed = (uint32_t)((st->heap_size + UNIT - 1) / UNIT);
    st->nunits = (uint32_t)((st->heap_known + UNIT - 1) / UNIT);
    st->unit_kind = calloc(st->nunits, 1);
    st->unit_seg = calloc(st->nunits, sizeof *st->unit_seg);
    st->unit_len = calloc(st->nunits, sizeof *st->unit_len);
    if (!st->unit_kind || !st->unit_seg || !st->unit_len)
        return -1;
    for (uint32_t u = 0; u < st->nunits;) {
        uint64_t d = u ? u * UNIT : SEG0_DESC;
        const char *bad = NULL;
        uint8_t kind = 0;
        uint32_t len = 0;
        if (!heap_has(st, d, 16)) {
            bad = "its descriptor is past the end of region-0-0";
        } else {
            kind = st->heap[d];
            len = g32(st->heap, d + 4);
            if (kind != S_NORMAL && kind != S_HUGE && kind != S_FREE)
                bad = "its descriptor has an unknown kind";
            else if (len == 0 || len > claimed - u || (kind == S_NORMAL && len != 1))
                bad = "its descriptor has a bad length";
        }
        if (bad) {
            note(st, false, "heap", "the segment walk stops at unit %u (byte %llu): %s; heap "
                 "objects from there on cannot be proved", u, (unsigned long long)(u * UNIT),
                 bad);
            break;
        }
        for (uint32_t k = 0; k < len && u + k < st->nunits; k++) {
            st->unit_kind[u + k] = kind;
            st->unit_seg[u + k] = u;
            st->unit_len[u + k] = len;
        }
        u += len;
    }
    return 0;
}

static const char *slab_slot(const struct sv_store *st, uint64_t segbase, uint32_t pg,
                             uint64_t off, uint64_t descbase, uint64_t *usable)
{
    const uint8_t *H = st->heap;
    uint8_t kind = H[descbase + pg * 16];
    uint32_t head = pg;
    if (kind == D_SLAB_CONT) {
        uint32_t back = g32(H, descbase + pg * 16 + 4);
        if (back == 0 || back > pg)
            return "in a slab whose descriptors are damaged";
        head = pg - back;
    }
    uint64_t hd = descbase + head * 16;
    uint32_t len = g32(H, hd + 4);
    uint8_t cls = H[hd + 1];
    if (H[hd] != D_SLAB_HEAD || (len != 1 && len != 2 && len != 4 && len != 8) ||
        head + len > 1024 || pg >= head + len || cls >= 24)
        return "in a slab whose descriptors are damaged";
    uint64_t slab = segbase + (uint64_t)head * PAGE;
    if (!heap_has(st, slab, (uint64_t)len * PAGE))
        return "in a slab past the end of region-0-0";
    uint32_t size = class_size[cls], n = g16(H, slab + 2), first = g16(H, slab + 6);
    if (g32(H, slab + 12) != SLAB_MAGIC || g16(H, slab) != cls || n == 0 ||
        first < 16 + 8 * ((n + 63) / 64) || first + (uint64_t)n * size > (uint64_t)len * PAGE)
        return "in a slab whose header is damaged";
    if (off < slab + first || (off - slab - first) % size)
        return "not the start of a slab slot";
    uint64_t i = (off - slab - first) / size;
    if (i >= n)
        return "past the last slot of its slab";
    if (!(H[slab + 16 + i / 8] >> (i % 8) & 1))
        return "a free slab slot";
    *usable = size;
    return NULL;
}

const char *sv_alloc(const struct sv_store *st, mms_ref ref, uint64_t *usable)
{
    if (MMS_REF_REGION(ref) != 0)
        return "not a heap ref";
    uint64_t off = MMS_REF_SLOT(ref);
    if (off < HEAP_START || off >= st->heap_size)
        return "outside the heap";
    if (off >= st->heap_known)
        return "past the end of region-0-0's file";
    uint32_t u = (uint32_t)(off / UNIT);
    uint64_t segbase = (uint64_t)st->unit_seg[u] * UNIT;
    switch (st->unit_kind[u]) {
    case 0:
        return "in a part of the heap the segment walk could not reach";
    case S_FREE:
        return "free space (a free unit run)";
    case S_HUGE:
        if (off != segbase + PAGE)
            return "inside a huge allocation";
        *usable = (uint64_t)st->unit_len[u] * UNIT - PAGE;
        return heap_has(st, off, *usable) ? NULL : "cut off by the end of region-0-0's file";
    default:
        break;
    }
    uint32_t pg = (uint32_t)((off - segbase) / PAGE);
    uint64_t descbase = u ? segbase : SEG0_DESC;
    if (pg < (u ? 4u : 9u))
        return "allocator metadata";
    if (!heap_has(st, descbase, 1024 * 16))
        return "in a segment whose descriptors are past the end of region-0-0";
    const uint8_t *d = st->heap + descbase + pg * 16;
    const char *bad = NULL;
    switch (d[0]) {
    case D_LARGE_HEAD: {
        uint32_t len = g32(d, 4);
        if (off % PAGE)
            return "inside a large allocation";
        if (len == 0 || pg + len > 1024)
            return "a large allocation whose descriptor is damaged";
        *usable = (uint64_t)len * PAGE;
        break;
    }
    case D_LARGE_CONT:
        return "inside a large allocation";
    case D_SLAB_HEAD:
    case D_SLAB_CONT:
        if ((bad = slab_slot(st, segbase, pg, off, descbase, usable)))
            return bad;
        break;
    case D_FREE_HEAD:
    case D_FREE_CONT:
        return "free space";
    case D_META:
        return "allocator metadata";
    default:
        return "on a page whose descriptor is damaged";
    }
    return heap_has(st, off, *usable) ? NULL : "cut off by the end of region-0-0's file";
}

const char *sv_str(const struct sv_store *st, mms_ref ref, const char **p, uint64_t *len)
{
    uint64_t usable;
    const char *why = sv_alloc(st, ref, &usable);
    if (why)
        return why;
    if (usable < 9)
        return "an allocation too small for a string";
    const uint8_t *s = st->heap + MMS_REF_SLOT(ref);
    uint64_t n = g64(s, 0);
    if (n >> 48 != STR_TAG)
        return "an allocation that is not a string (no string tag)";
    n &= MMS_SLOT_MASK;
    if (n > usable - 9 || s[8 + n] != 0)
        return "a string whose length does not fit its allocation";
    *p = (const char *)s + 8;
    *len = n;
    return NULL;
}

/* A heap object of at least need bytes: NULL and its bytes, or why not. */
static const char *heap_object(const struct sv_store *st, uint64_t ref, uint64_t need,
                               const uint8_t **p)
{
    uint64_t usable;
    const char *why = sv_alloc(st, ref, &usable);
    if (why)
        return why;
    if (usable < need)
        return "an allocation smaller than it should be";
    *p = st->heap + MMS_REF_SLOT(ref);
    return NULL;
}

/* ------------------------------------------------------------------------
 * The catalog (NOTES 4)
 * ------------------------------------------------------------------------ */
#define TBAD(...) (snprintf(t->bad_buf, sizeof t->bad_buf, __VA_ARGS__), t->bad = t->bad_buf)

static void fields_read(struct sv_table *t, const uint8_t *fd)
{
    t->f = calloc(t->nfields, sizeof *t->f);
    if (!t->f) {
        TBAD("out of memory");
        return;
    }
    for (uint32_t k = 0; k < t->nfields && !t->bad; k++) {
        const uint8_t *d = fd + (uint64_t)k * FDESC;
        struct sv_field *f = &t->f[k];
        if (!memchr(d, 0, 48) || !d[0]) {
            TBAD("field %u has a damaged name", k);
            break;
        }
        memcpy(f->name, d, 48);
        f->kind = g32(d, 48);
        f->offset = g32(d, 52);
        f->size = g32(d, 56);
        f->target = g32(d, 60);
        memcpy(f->dflt, d + 64, 32);
        for (int i = 0; i < 32; i++)
            f->has_dflt |= f->dflt[i] != 0;
        uint32_t ks = mms_kind_size(f->kind);
        if (f->kind == 0 || f->kind > MMS_KIND_BLOB || (ks && f->size != ks) || !f->size)
            TBAD("field %s: kind %u, %u bytes", f->name, f->kind, f->size);
        else if (f->offset > t->record_size || f->size > t->record_size - f->offset)
            TBAD("field %s lies outside the record", f->name);
        else if (f->kind == MMS_KIND_REF && f->target >= MMS_MAX_REGIONS)
            TBAD("field %s targets region %u", f->name, f->target);
        for (uint32_t i = 0; i < k && !t->bad; i++) {
            const struct sv_field *g = &t->f[i];
            if (strcmp(g->name, f->name) == 0)
                TBAD("two fields are called %s", f->name);
            else if (f->offset < g->offset + g->size && g->offset < f->offset + f->size)
                TBAD("fields %s and %s overlap", g->name, f->name);
        }
    }
}

/* The deleted-record bitmap, null bitmaps and index list: each may be lost
 * on its own without making the records unreadable. */
static void table_extras(struct sv_store *st, struct sv_table *t, const uint8_t *e)
{
    const uint8_t *p;
    uint64_t tomb = g64(e, 104);
    t->tomb_bits = g64(e, 112);
    t->tomb_ok = true;
    if (t->tomb_bits) {
        const char *why = t->tomb_bits % 64 ? "its length is not a multiple of 64" :
                          heap_object(st, tomb, t->tomb_bits / 8, &p);
        if (why) {
            t->tomb_ok = false;
            t->tomb_why = why;
        } else {
            t->tomb = p;
        }
    }
    uint64_t nulls = g64(e, 128);
    t->nullbits = calloc(t->nfields, sizeof *t->nullbits);
    t->nullnbits = calloc(t->nfields, sizeof *t->nullnbits);
    if (!t->nullbits || !t->nullnbits) {
        t->nulls_why = "out of memory";
    } else if (nulls && !(t->nulls_why = heap_object(st, nulls, (uint64_t)t->nfields * 16, &p))) {
        for (uint32_t k = 0; k < t->nfields; k++) {
            uint64_t bits = g64(p, 16 * k), nb = g64(p, 16 * k + 8);
            const uint8_t *b;
            if (!bits)
                continue;
            const char *why = nb % 64 ? "a length not a multiple of 64" :
                              heap_object(st, bits, nb / 8, &b);
            if (why) {
                note(st, true, "table", "%s: the missing-value marks of field %s are lost: its "
                     "bitmap is %s", t->name, t->f[k].name, why);
                continue;
            }
            t->nullbits[k] = b;
            t->nullnbits[k] = nb;
        }
    }
    uint64_t ixref = g64(e, 136);
    uint32_t nix = g32(e, 144);
    if (ixref && nix) {
        if (nix > t->nfields)
            t->ix_bad = "it counts more indexes than the table has fields";
        else if (!(t->ix_bad = heap_object(st, ixref, (uint64_t)nix * IXDESC, &p)) &&
                 (t->ix = calloc(nix, sizeof *t->ix))) {
            for (uint32_t k = 0; k < nix; k++) {
                const uint8_t *d = p + (uint64_t)k * IXDESC;
                if (!memchr(d, 0, 48))
                    continue;
                memcpy(t->ix[t->nix].field, d, 48);
                t->ix[t->nix].kind = g32(d, 48);
                t->ix[t->nix].flags = g32(d, 52);
                t->nix++;
            }
        }
    }
}

/* Entry e of the catalog into t: t->bad says why when it cannot be read. */
static void table_read(struct sv_store *st, struct sv_table *t, const uint8_t *e)
{
    memcpy(t->name, e, 64);
    t->name[63] = 0;
    if (!memchr(e, 0, 64) || !e[0]) {
        snprintf(t->name, sizeof t->name, "(entry at byte %llu)",
                 (unsigned long long)(e - st->heap));
        TBAD("its name is damaged");
        return;
    }
    t->region = g16(e, 64);
    t->nfields = g16(e, 66);
    t->record_size = g32(e, 68);
    t->count = g64(e, 80);
    t->live = g64(e, 88);
    uint32_t id = t->region;
    const uint8_t *fd;
    const char *why;
    if (id == 0 || id >= st->nregions || st->rt[id].kind != RK_TABLE) {
        TBAD("its region %u is not a table region of the store", id);
        return;
    }
    if (t->record_size == 0 || t->record_size > (16u << 20) || t->nfields == 0 ||
        t->nfields > 1024) {
        TBAD("record size %u, %u fields", t->record_size, t->nfields);
        return;
    }
    if (t->count > MMS_SLOT_MASK || st->rt[id].size % t->record_size ||
        t->count != st->rt[id].size / t->record_size || t->live > t->count) {
        TBAD("%llu records (%llu live) of %u bytes in a region of %llu",
             (unsigned long long)t->count, (unsigned long long)t->live, t->record_size,
             (unsigned long long)st->rt[id].size);
        return;
    }
    if ((why = heap_object(st, g64(e, 72), (uint64_t)t->nfields * FDESC, &fd))) {
        TBAD("its field list is %s", why);
        return;
    }
    fields_read(t, fd);
    if (t->bad)
        return;
    struct sv_view *v = view(st, id, st->rt[id].gen);
    if (!v || v->missing) {
        TBAD("its file region-%u-%u is %s", id, st->rt[id].gen, v ? v->absent : "missing");
        return;
    }
    t->recs = (const uint8_t *)v->base;
    t->readable = v->fsize / t->record_size < t->count ? v->fsize / t->record_size : t->count;
    table_extras(st, t, e);
}

static int catalog_read(struct sv_store *st, char *why, size_t cap)
{
    if (!st->catalog)
        return 0;
    const uint8_t *c;
    const char *bad = st->catalog % 16 ? "misaligned" : heap_object(st, st->catalog, 16, &c);
    if (bad)
        return WHY("the catalog (ref 0x%llx) is unreadable: %s; it is the only list of the "
                   "tables, so none can be found", (unsigned long long)st->catalog, bad);
    uint32_t n = g32(c, 4), capn = g32(c, 8);
    if (g32(c, 0) != CAT_MAGIC)
        return WHY("the catalog (ref 0x%llx) is unreadable: bad magic; it is the only list of "
                   "the tables, so none can be found", (unsigned long long)st->catalog);
    if (n > capn || capn > MMS_MAX_REGIONS ||
        (bad = heap_object(st, st->catalog, 16 + (uint64_t)capn * CAT_ENTRY, &c)))
        return WHY("the catalog (ref 0x%llx) is unreadable: it holds %u tables in room for %u%s"
                   "%s; it is the only list of the tables, so none can be found",
                   (unsigned long long)st->catalog, n, capn, bad ? ", " : "", bad ? bad : "");
    st->t = calloc(n ? n : 1, sizeof *st->t);
    if (!st->t)
        return WHY("out of memory");
    st->ntables = n;
    for (uint32_t i = 0; i < n; i++) {
        struct sv_table *t = &st->t[i];
        table_read(st, t, c + 16 + (uint64_t)i * CAT_ENTRY);
        for (uint32_t k = 0; k < i && !t->bad; k++)
            if (!st->t[k].bad && strcmp(st->t[k].name, t->name) == 0)
                TBAD("a table of that name comes earlier in the catalog");
            else if (!st->t[k].bad && st->t[k].region == t->region)
                TBAD("table %s has the same region %u", st->t[k].name, t->region);
    }
    return 0;
}

const struct sv_table *sv_table_of(const struct sv_store *st, uint32_t id)
{
    for (uint32_t i = 0; i < st->ntables; i++)
        if (!st->t[i].bad && st->t[i].region == id)
            return &st->t[i];
    return NULL;
}

int sv_deleted(const struct sv_table *t, uint64_t i)
{
    if (i >= t->tomb_bits)
        return 0;
    return t->tomb[i / 8] >> (i % 8) & 1;
}

bool sv_null(const struct sv_table *t, uint32_t k, uint64_t i)
{
    return t->nullbits && t->nullbits[k] && i < t->nullnbits[k] &&
           (t->nullbits[k][i / 8] >> (i % 8) & 1);
}

/* ------------------------------------------------------------------------
 * The whole
 * ------------------------------------------------------------------------ */
int sv_open(struct sv_store *st, const char *dir, sv_note_fn fn, void *ctx, char *why,
            size_t cap)
{
    memset(st, 0, sizeof *st);
    st->dir = dir;
    st->note = fn;
    st->ctx = ctx;
    st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dirfd < 0)
        return WHY("cannot open %s: %s", dir, strerror(errno));
    sigbus_catch();
    struct sv_view *v0 = view(st, 0, 0);
    if (!v0)
        return WHY("out of memory");
    if (hdr_static(v0, why, cap))
        return -1;
    const uint8_t *h = (const uint8_t *)v0->base;
    uint32_t n = g32(h, 64);
    bool crc_ok = n && n <= MMS_MAX_REGIONS && hdr_crc(h, n) == g32(h, HDR_CRC_OFF);
    uint8_t uuid[16];
    memcpy(uuid, h + 24, 16);
    journal_replay(st, uuid, g64(h, 40), crc_ok);
    /* The replay may have written the header page: read it again. */
    v0 = view(st, 0, 0);
    if (hdr_full(st, (const uint8_t *)v0->base, v0->fsize, why, cap))
        return -1;
    note(st, false, "header", "txn %llu, %u region%s, checksum ok", (unsigned long long)st->txn,
         st->nregions, st->nregions == 1 ? "" : "s");
    if (heap_walk(st))
        return WHY("out of memory");
    int r = catalog_read(st, why, cap);
    sv_bad_report(st);
    return r;
}

void sv_close(struct sv_store *st)
{
    for (size_t i = 0; i < st->nv; i++)
        if (st->v[i].base)
            maps_drop(st->v[i].base), munmap(st->v[i].base, st->v[i].fsize);
    free(st->v);
    for (uint32_t i = 0; i < st->ntables; i++) {
        free(st->t[i].f);
        free(st->t[i].ix);
        free(st->t[i].nullbits);
        free(st->t[i].nullnbits);
    }
    free(st->t);
    free(st->unit_kind);
    free(st->unit_seg);
    free(st->unit_len);
    if (st->dirfd > 0)
        close(st->dirfd);
    memset(st, 0, sizeof *st);
}

/*
 * fuzz_store.c -- fuzz target: open an arbitrary store image, read it
 * through the public API, verify it, write to it if it is sound.
 *
 * The input is a store directory in the compact form of image.h. Each run
 * unpacks it into the same scratch directory (emptied first) and then:
 *
 *   0. The salvage reader of `mms recover` (tools/salvage.c), which reads
 *      damaged stores without the library: sv_open (the journal replayed
 *      into private pages), then every check it makes of what it found --
 *      each table's slots, their REF, STR and BLOB values, missing-value
 *      marks, the root (up to 4096 records a table).
 *   1. mms_open read-only. If it opens: mms_verify, the read path (below),
 *      close. (A journal to replay gives MMS_ERECOVER: fine.)
 *   2. mms_open read-write, which recovers (replays the journal, then
 *      checkpoints). If it opens: mms_verify, the read path, and if verify
 *      passed, a write transaction (an allocation, a record of zeros
 *      appended to each table, a plain store to the key of each index in a
 *      table's middle record, a root change; the indexes read in the
 *      transaction), commit, verify again, the indexes read again; close.
 *
 * The read path is what an application does with a store it opened: root
 * (mms_ptr, mms_alloc_size), info, readers, tables (mms_tables,
 * mms_table_find, mms_table_schema, counts), and for each table its records
 * (mms_table_get, mms_table_live, up to 4096 of them) and their fields, by
 * kind: STR and BLOB through mms_str_get, REF through mms_table_get of the
 * target table; every byte the API hands out is read. The deleted-record
 * bitmap (mms_table_deleted) is read only when verify passed: the API hands
 * out that pointer unchecked.
 *
 * Then each table's indexes (mms_indexes, mms_index_open; up to 8 a
 * table), outside a transaction and in a read transaction (where a hash
 * get of an 8-byte key takes the short path, mms__ix_probe8): for 12 keys
 * (8 from live records, 4 arbitrary) mms_index_find, find_all, count,
 * find_covered; find_many of them all; mms_index_warm; on an ordered index
 * a cursor seeked every way (FIRST, LAST, GE/GT/LE/LT three keys) and
 * stepped 16 entries forward and back, with mms_cursor_covered at each
 * (hash: mms_cursor_open must fail). Every answer must be an error code or
 * a record below mms_table_slots; on a store that verified (and not in
 * the write transaction, where the index answers as of the last commit)
 * the answers must be right too: each record's key found (that record, by
 * a unique index), a covered value the record's field, a scan of an
 * ordered index every live record once. A violation aborts.
 *
 * Nothing may crash, trip a sanitizer, leak, or hang; every failure must
 * be an error code. Built with libFuzzer (MMS_FUZZ=ON, clang) this is the
 * fuzz target; built without it, fuzz/replay.c runs the corpus through it
 * under ctest.
 *
 * Environment: MMS_FUZZ_TMP, where the scratch directory goes (default:
 * /dev/shm if writable, else /tmp); MMS_FUZZ_VERBOSE=1, say what became
 * of each input; MMS_FUZZ_SOUND_ONLY=1, take the read path only on stores
 * that verify (to fuzz past crashes of the read path on damaged stores,
 * issue 10 bug 7, while they are open).
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mmstore.h>

#include "image.h"
#include "internal.h" /* the header and journal layouts and mms__crc32c, to fix checksums */
#include "salvage.h"  /* tools/: mms recover's reader of damaged stores */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[512], store[600];
static volatile uint64_t sink; /* what was read, so the reads happen */

/* Remove a scratch directory (its store directory and that one's files). */
static void remove_scratch(const char *dir)
{
    char st[700];
    snprintf(st, sizeof st, "%s/s.mms", dir);
    DIR *d = opendir(st);
    if (d) {
        for (struct dirent *de; (de = readdir(d));)
            if (de->d_name[0] != '.')
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    rmdir(st);
    rmdir(dir);
}

static void cleanup(void)
{
    remove_scratch(scratch);
}

/* Scratch directories of processes that are gone (libFuzzer's -fork jobs
 * and crashed runs exit without atexit). */
static void remove_stale(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        int pid;
        char tail;
        if (sscanf(de->d_name, "mms-fuzz.%d%c", &pid, &tail) != 1 || pid <= 0 ||
            kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char dir[600];
        snprintf(dir, sizeof dir, "%s/%s", base, de->d_name);
        remove_scratch(dir);
    }
    closedir(d);
}

static void setup_dirs(void)
{
    if (store[0])
        return;
    const char *base = getenv("MMS_FUZZ_TMP");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    remove_stale(base);
    snprintf(scratch, sizeof scratch, "%s/mms-fuzz.%d", base, (int)getpid());
    snprintf(store, sizeof store, "%s/s.mms", scratch);
    mkdir(scratch, 0777);
    mkdir(store, 0777);
    atexit(cleanup);
}

/* Empty the store directory. */
static void clear_store(void)
{
    DIR *d = opendir(store);
    if (!d) {
        mkdir(store, 0777);
        return;
    }
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.')
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}

static int take(const uint8_t **p, const uint8_t *end, void *out, size_t n)
{
    if ((size_t)(end - *p) < n)
        return 0;
    memcpy(out, *p, n); /* little-endian machines only, like the store format */
    *p += n;
    return 1;
}

/* ------------------------------------------------------------------------
 * Checksum fix-ups (image.h): a mutated header or journal group gets past
 * its CRC, so the fuzzer reaches what lies behind it.
 * ------------------------------------------------------------------------ */
static void fix_header(int fd)
{
    struct mms__hdrbuf b;
    if (pread(fd, &b, sizeof b, 0) != (ssize_t)sizeof b)
        return;
    b.h.crc = mms__hdr_crc(&b.h, b.rt);
    if (pwrite(fd, &b.h.crc, sizeof b.h.crc, offsetof(struct mms__hdr, crc)) != sizeof b.h.crc)
        return;
}

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

/* The slots whose magic is right get their CRC; then the groups of the
 * current slot's epoch, as far as they parse, get their chained CRCs. */
static void fix_journal(int fd, uint64_t fsize)
{
    if (fsize < MMS__JDATA || fsize > MMS_FUZZ_MAX_FILE)
        return;
    uint8_t *j = malloc(fsize);
    if (!j || pread(fd, j, fsize, 0) != (ssize_t)fsize) {
        free(j);
        return;
    }
    struct mms__jhdr h[2];
    int cur = -1;
    for (int i = 0; i < 2; i++) {
        memcpy(&h[i], j + i * MMS__JSLOT, sizeof h[i]);
        if (h[i].magic != MMS__JMAGIC || h[i].version != MMS__JVERSION)
            continue;
        h[i].crc = mms__crc32c(0, &h[i], offsetof(struct mms__jhdr, crc));
        memcpy(j + i * MMS__JSLOT, &h[i], sizeof h[i]);
        if (cur < 0 || h[i].seq > h[cur].seq)
            cur = i;
    }
    uint64_t off = MMS__JDATA;
    uint32_t crc = cur >= 0 ? h[cur].salt : 0;
    while (cur >= 0 && off + sizeof(struct mms__jbegin) <= fsize) {
        struct mms__jbegin bg;
        memcpy(&bg, j + off, sizeof bg);
        if (bg.type != MMS__JR_BEGIN)
            break;
        uint64_t p = off + sizeof bg;
        uint32_t nrec = 0;
        int done = 0;
        while (!done && p + 8 <= fsize) {
            uint32_t type;
            memcpy(&type, j + p, 4);
            if (type == MMS__JR_DATA && p + sizeof(struct mms__jdata) <= fsize) {
                struct mms__jdata d;
                memcpy(&d, j + p, sizeof d);
                if (pad8(d.len) > fsize - p - sizeof d)
                    break;
                p += sizeof d + pad8(d.len);
                nrec++;
            } else if (type == MMS__JR_SIZE && p + sizeof(struct mms__jsize) <= fsize) {
                p += sizeof(struct mms__jsize);
                nrec++;
            } else if (type == MMS__JR_COMMIT && p + sizeof(struct mms__jcommit) <= fsize) {
                struct mms__jcommit c;
                memcpy(&c, j + p, sizeof c);
                c.nrec = nrec;
                c.bytes = p + sizeof c - off;
                memcpy(j + p, &c, sizeof c);
                c.crc = mms__crc32c(crc, j + off, c.bytes - sizeof c + offsetof(struct mms__jcommit, crc));
                memcpy(j + p, &c, sizeof c);
                crc = c.crc;
                off = p + sizeof c;
                done = 1;
            } else {
                break;
            }
        }
        if (!done)
            break;
    }
    /* Only the slots and the groups changed. */
    if (pwrite(fd, j, off, 0) != (ssize_t)off) {
        free(j);
        return;
    }
    free(j);
}

/* Write the files of an input (image.h) into the store directory. */
static void unpack(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    uint8_t name;
    uint32_t fsize;
    uint16_t nchunk;
    while (take(&p, end, &name, 1) && take(&p, end, &fsize, 4) && take(&p, end, &nchunk, 2)) {
        if (fsize > MMS_FUZZ_MAX_FILE)
            fsize = MMS_FUZZ_MAX_FILE;
        char path[700];
        const char *fname = mms_fuzz_names[MMS_FUZZ_NAME(name)];
        snprintf(path, sizeof path, "%s/%s", store, fname);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0)
            return;
        if (ftruncate(fd, fsize) != 0) {
            close(fd);
            return;
        }
        for (uint16_t c = 0; c < nchunk; c++) {
            uint32_t off;
            uint16_t len;
            if (!take(&p, end, &off, 4) || !take(&p, end, &len, 2) || (size_t)(end - p) < len) {
                close(fd);
                return;
            }
            if (off < fsize) {
                size_t n = len < fsize - off ? len : fsize - off;
                if (pwrite(fd, p, n, off) != (ssize_t)n) {
                    close(fd);
                    return;
                }
            }
            p += len;
        }
        if ((name & MMS_FUZZ_FIX) && strcmp(fname, "region-0-0") == 0)
            fix_header(fd);
        if ((name & MMS_FUZZ_FIX) && strcmp(fname, "journal") == 0)
            fix_journal(fd, fsize);
        close(fd);
    }
}

static uint64_t sum_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + b[i];
    return h;
}

#define MAXTAB 64
#define MAXREC 4096

/* A table's region, from the list mms_tables gave. */
static int region_of(const mms_table_info *ti, size_t n, const char *name, uint32_t *region)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ti[i].name, name) == 0) {
            *region = ti[i].region;
            return 1;
        }
    return 0;
}

static void read_table(mms_store *s, const mms_table_info *ti, size_t nt, size_t k, int sound)
{
    mms_table *t;
    if (mms_table_find(s, ti[k].name, &t) != 0)
        return;
    const mms_schema *sc = mms_table_schema(t);
    sink += mms_table_count(t) + (uint64_t)(uintptr_t)mms_table_name(t)[0];
    if (!sc)
        return;
    uint64_t slots = mms_table_slots(t);
    if (sound) {
        uint64_t nbits;
        const uint64_t *bits = mms_table_deleted(t, &nbits);
        if (bits)
            sink += sum_bytes(bits, (size_t)(nbits / 64 * 8));
    }
    for (uint64_t i = 0; i < slots && i < MAXREC; i++) {
        const char *rec = mms_table_get(t, i);
        if (!rec)
            break;
        sink += (uint64_t)mms_table_live(t, i) + mms_table_ref(t, i);
        sink += sum_bytes(rec, sc->record_size);
        for (uint32_t f = 0; f < sc->nfields; f++) {
            const mms_field *fd = &sc->fields[f];
            if (fd->offset > sc->record_size || fd->size > sc->record_size - fd->offset ||
                fd->size != 8)
                continue;
            mms_ref ref;
            memcpy(&ref, rec + fd->offset, 8);
            if (fd->kind == MMS_KIND_STR || fd->kind == MMS_KIND_BLOB) {
                size_t len;
                const char *str = mms_str_get(s, ref, &len);
                if (str)
                    sink += sum_bytes(str, len + 1); /* the NUL too */
            } else if (fd->kind == MMS_KIND_REF && ref && fd->target) {
                uint32_t region;
                mms_table *to;
                if (region_of(ti, nt, fd->target, &region) && MMS_REF_REGION(ref) == region &&
                    mms_table_find(s, fd->target, &to) == 0) {
                    const mms_schema *tsc = mms_table_schema(to);
                    const char *target = mms_table_get(to, MMS_REF_SLOT(ref));
                    if (target && tsc)
                        sink += sum_bytes(target, tsc->record_size);
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------
 * Indexes (issue 13: a damaged index is reported by verify and never
 * crashes a lookup). Every answer must be an error code or a record of the
 * table; on a store that verified, read where table and index are of one
 * commit (phase IX_OUTSIDE or IX_READ), the answers must also be right:
 * each key taken from a live record is found, a unique index finds that
 * record, a covered value is the record's field, a scan of an ordered
 * index meets every live record once. A violation aborts, so the fuzzer
 * reports it.
 * ------------------------------------------------------------------------ */
#define MAXIX 8     /* indexes read per table */
#define IXKEYS 12   /* keys asked of each: up to IXFROM from live records, the rest arbitrary */
#define IXFROM 8
#define IXSTEPS 16  /* cursor steps each way after a seek */
#define IXKEY 264   /* a key's buffer: 256 bytes at most (MMS__IX_MAX_KEY), and slack */

enum ix_phase { IX_OUTSIDE, IX_READ, IX_WRITE };

static int verbose = -1, sound_only;
static uint64_t ix_rand;  /* arbitrary keys: seeded from each input */
static unsigned ix_found; /* answers that named a record (MMS_FUZZ_VERBOSE) */

static uint64_t next_rand(void)
{
    ix_rand ^= ix_rand << 13;
    ix_rand ^= ix_rand >> 7;
    ix_rand ^= ix_rand << 17;
    return ix_rand;
}

struct ixrun {
    mms_table *t;
    const mms_index_info *in;
    const char *table;
    int oracle; /* the answers must be right too (above) */
    uint32_t K; /* key stride of keys[] (the descriptor's size, clamped) */
    const mms_field *cover; /* the covered field in the schema, if it has cover_size bytes */
    uint8_t keys[IXKEYS][IXKEY];
    uint64_t from[IXKEYS]; /* the live record a key came from, UINT64_MAX: arbitrary */
};

static void ix_fail(const struct ixrun *x, const char *what, int r, uint64_t rec)
{
    fprintf(stderr, "fuzz_store: index on %s.%s: %s (returned %d, record %llu, table of "
                    "%llu slots)\n", x->table, x->in->field, what, r, (unsigned long long)rec,
            (unsigned long long)mms_table_slots(x->t));
    abort();
}

/* An answer with no record: 0 or an error code. */
static void ix_code(const struct ixrun *x, const char *what, int r)
{
    if (r > 0)
        ix_fail(x, what, r, 0);
}

/* An answer r with record rec: an error code, or a record of the table
 * (whose bytes are then read). */
static void ix_check(const struct ixrun *x, const char *what, int r, uint64_t rec)
{
    if (r > 0 || (r == 0 && rec >= mms_table_slots(x->t)))
        ix_fail(x, what, r, rec);
    const char *p = r == 0 ? mms_table_get(x->t, rec) : NULL;
    if (p)
        sink += (uint8_t)p[0];
    ix_found += r == 0;
}

static const mms_field *field_named(const mms_schema *sc, const char *name)
{
    for (uint32_t f = 0; f < sc->nfields; f++)
        if (sc->fields[f].name && strcmp(sc->fields[f].name, name) == 0 &&
            sc->fields[f].offset <= sc->record_size &&
            sc->fields[f].size <= sc->record_size - sc->fields[f].offset)
            return &sc->fields[f];
    return NULL;
}

/* The keys: those of live records spread over the table, then arbitrary
 * bytes (all zeros once, which missing values and appended zeros hold). */
static void ix_keys(struct ixrun *x, const mms_schema *sc)
{
    const mms_field *kf = field_named(sc, x->in->field);
    uint64_t slots = mms_table_slots(x->t), step = slots / IXFROM + 1;
    if (kf && kf->size != x->in->key_size)
        kf = NULL;
    for (unsigned j = 0; j < IXKEYS; j++) {
        uint64_t i = (uint64_t)j * step;
        const char *rec = j < IXFROM && kf && i < slots && mms_table_live(x->t, i)
                              ? mms_table_get(x->t, i) : NULL;
        x->from[j] = rec ? i : UINT64_MAX;
        if (rec) {
            memset(x->keys[j], 0, IXKEY);
            memcpy(x->keys[j], rec + kf->offset, kf->size);
            continue;
        }
        for (unsigned b = 0; b < IXKEY; b += 8) {
            uint64_t w = j == IXKEYS - 1 ? 0 : next_rand();
            memcpy(x->keys[j] + b, &w, 8);
        }
    }
}

static void ix_finds(struct ixrun *x)
{
    uint64_t rec, cnt, out[64], idx[IXKEYS];
    size_t n, found;
    uint8_t val[16];
    bool unique = x->in->flags & MMS_INDEX_UNIQUE;
    mms_index *ix;
    if (mms_index_open(x->t, x->in->field, &ix) != 0)
        return;
    for (unsigned j = 0; j < IXKEYS; j++) {
        const uint8_t *key = x->keys[j];
        bool known = x->oracle && x->from[j] != UINT64_MAX;
        int r = mms_index_find(ix, key, &rec);
        ix_check(x, "find", r, rec);
        if (known && (r != 0 || (unique && rec != x->from[j])))
            ix_fail(x, "find missed a live record's key", r, x->from[j]);
        r = mms_index_find_all(ix, key, out, 64, &n);
        for (size_t k = 0; r == 0 && k < n && k < 64; k++)
            ix_check(x, "find_all", r, out[k]);
        ix_code(x, "find_all", r);
        if (known) {
            size_t k = 0;
            while (r == 0 && n <= 64 && k < n && out[k] != x->from[j])
                k++;
            if (r != 0 || n == 0 || (n <= 64 && k == n) || (unique && n != 1))
                ix_fail(x, "find_all missed a live record's key", r, x->from[j]);
        }
        int rc = mms_index_count(ix, key, &cnt);
        ix_code(x, "count", rc);
        if (known && (rc != 0 || cnt != n))
            ix_fail(x, "count disagrees with find_all", rc, cnt);
        memset(val, 0, sizeof val);
        r = mms_index_find_covered(ix, key, &rec, val);
        ix_check(x, "find_covered", r, rec);
        if (known && x->cover && r == 0) {
            const char *p = mms_table_get(x->t, rec);
            if (!p || memcmp(val, p + x->cover->offset, x->cover->size) != 0)
                ix_fail(x, "find_covered gave another value than the record's", r, rec);
        }
        if (known && x->cover && r != 0)
            ix_fail(x, "find_covered missed a live record's key", r, x->from[j]);
    }
    /* The batch: its keys one after the other. */
    static uint8_t batch[IXKEYS * IXKEY];
    for (unsigned j = 0; j < IXKEYS; j++)
        memcpy(batch + (size_t)j * x->K, x->keys[j], x->K);
    int r = mms_index_find_many(ix, batch, IXKEYS, idx, &found);
    for (unsigned j = 0; r == 0 && j < IXKEYS; j++) {
        if (idx[j] != UINT64_MAX)
            ix_check(x, "find_many", 0, idx[j]);
        else if (x->oracle && x->from[j] != UINT64_MAX)
            ix_fail(x, "find_many missed a live record's key", r, x->from[j]);
    }
    if (r > 0 || (r == 0 && found > IXKEYS))
        ix_fail(x, "find_many", r, found);
    ix_code(x, "warm", mms_index_warm(ix));
}

/* Seek, then up to IXSTEPS steps forward; seek again, as many back (each
 * with the covered value where the index covers). */
static void ix_walk(struct ixrun *x, mms_cursor *c, int op, const void *key)
{
    uint64_t rec;
    uint8_t kout[IXKEY], val[16];
    for (int dir = 1; dir >= -1; dir -= 2) {
        int r = mms_cursor_seek(c, op, key, &rec, kout);
        ix_check(x, "cursor_seek", r, rec);
        for (unsigned k = 0; r == 0 && k < IXSTEPS; k++) {
            ix_code(x, "cursor_covered", mms_cursor_covered(c, val));
            r = dir > 0 ? mms_cursor_next(c, &rec, kout) : mms_cursor_prev(c, &rec, NULL);
            ix_check(x, dir > 0 ? "cursor_next" : "cursor_prev", r, rec);
        }
    }
}

static void ix_cursors(struct ixrun *x)
{
    mms_index *ix;
    mms_cursor *c;
    if (mms_index_open(x->t, x->in->field, &ix) != 0)
        return;
    int r = mms_cursor_open(ix, &c);
    if (r == 0 && !(x->in->flags & MMS_INDEX_ORDERED))
        ix_fail(x, "a cursor on a hash index", r, 0);
    if (r != 0)
        return;
    ix_walk(x, c, MMS_SEEK_FIRST, NULL);
    ix_walk(x, c, MMS_SEEK_LAST, NULL);
    for (unsigned j = 0; j < IXKEYS; j += 5)
        for (int op = MMS_SEEK_GE; op <= MMS_SEEK_LT; op++)
            ix_walk(x, c, op, x->keys[j]);
    if (x->oracle) { /* every live record once */
        uint64_t rec, seen = 0, live = mms_table_count(x->t);
        for (r = mms_cursor_seek(c, MMS_SEEK_FIRST, NULL, &rec, NULL); r == 0 && seen <= MAXREC;
             r = mms_cursor_next(c, &rec, NULL)) {
            ix_check(x, "cursor scan", r, rec);
            if (!mms_table_live(x->t, rec))
                ix_fail(x, "a scan met a deleted record", r, rec);
            seen++;
        }
        if (seen <= MAXREC && (r != MMS_ENOTFOUND || seen != live))
            ix_fail(x, "a scan did not meet every live record once", r, seen);
    }
    mms_cursor_close(c);
}

/* The indexes of table name, in this phase; how many were read. */
static size_t read_indexes(mms_store *s, const char *name, int sound, enum ix_phase phase)
{
    static mms_index_info in[MAXIX];
    static struct ixrun x;
    size_t n;
    mms_table *t;
    if (mms_table_find(s, name, &t) != 0 || mms_indexes(t, in, MAXIX, &n) != 0)
        return 0;
    const mms_schema *sc = mms_table_schema(t);
    size_t k = 0;
    for (; sc && k < n && k < MAXIX; k++) {
        x.t = t;
        x.in = &in[k];
        x.table = name;
        x.oracle = sound && phase != IX_WRITE;
        x.K = in[k].key_size && in[k].key_size <= IXKEY - 8 ? in[k].key_size : 1;
        x.cover = in[k].cover_size ? field_named(sc, in[k].cover) : NULL;
        if (x.cover && x.cover->size != in[k].cover_size)
            x.cover = NULL;
        ix_keys(&x, sc);
        ix_finds(&x);
        ix_cursors(&x);
    }
    return k;
}

/* The indexes of every table, in this phase. */
static void read_all_indexes(mms_store *s, int sound, enum ix_phase phase)
{
    static mms_table_info ti[MAXTAB];
    static const char *const names[] = {"outside a transaction", "in a read transaction",
                                        "in the write transaction"};
    size_t nt, nix = 0;
    if (mms_tables(s, ti, MAXTAB, &nt) != 0)
        return;
    ix_found = 0;
    for (size_t k = 0; k < nt && k < MAXTAB; k++)
        nix += read_indexes(s, ti[k].name, sound, phase);
    if (verbose && nix)
        fprintf(stderr, "  %zu indexes %s: %u answers named a record\n", nix, names[phase],
                ix_found);
}

/* Outside a transaction, then in a read transaction (where a hash get
 * takes the short path: the slot is the answer). */
static void read_index_phases(mms_store *s, int sound)
{
    read_all_indexes(s, sound, IX_OUTSIDE);
    if (mms_read_begin(s) != 0)
        return;
    read_all_indexes(s, sound, IX_READ);
    mms_read_end(s);
}

static void read_path(mms_store *s, int sound)
{
    static mms_info info;
    if (mms_info_get(s, &info) == 0)
        sink += info.txn_id + info.heap_used;
    mms_reader_info rd[4];
    size_t n;
    if (mms_readers(s, rd, 4, &n) == 0)
        sink += n;
    sink += mms_txn_id(s);
    mms_ref root = mms_root(s);
    const char *p = mms_ptr(s, root);
    size_t usable;
    if (p && MMS_REF_REGION(root) == 0 && mms_alloc_size(s, root, &usable) == 0)
        sink += sum_bytes(p, usable);
    static mms_table_info ti[MAXTAB];
    size_t nt;
    if (mms_tables(s, ti, MAXTAB, &nt) != 0)
        return;
    if (nt > MAXTAB)
        nt = MAXTAB;
    for (size_t k = 0; k < nt; k++)
        read_table(s, ti, nt, k, sound);
    read_index_phases(s, sound);
}

/* A plain store to the key of each index of t in its middle record: the
 * commit moves its entries (or refuses a duplicate of a unique key). */
static void change_key(mms_table *t)
{
    static mms_index_info in[MAXIX];
    size_t n;
    const mms_schema *sc = mms_table_schema(t);
    uint64_t i = mms_table_slots(t) / 2;
    char *rec = mms_table_live(t, i) ? mms_table_get(t, i) : NULL;
    if (!sc || !rec || mms_indexes(t, in, MAXIX, &n) != 0)
        return;
    for (size_t k = 0; k < n && k < MAXIX; k++) {
        const mms_field *f = field_named(sc, in[k].field);
        if (f && f->size)
            rec[f->offset + f->size - 1] ^= 1;
    }
}

/* A sound store takes a write transaction. */
static void write_txn(mms_store *s)
{
    if (mms_txn_begin(s, MMS_TXN_NOWAIT) != 0)
        return;
    mms_ref r;
    if (mms_alloc(s, 100, &r) == 0) {
        memset(mms_deref(s, r), 0x5a, 100);
        mms_root_set(s, r);
    }
    static mms_table_info ti[MAXTAB];
    size_t nt;
    if (mms_tables(s, ti, MAXTAB, &nt) == 0)
        for (size_t k = 0; k < nt && k < MAXTAB; k++) {
            mms_table *t;
            if (mms_table_find(s, ti[k].name, &t) == 0) {
                mms_table_append(t, NULL, NULL);
                change_key(t);
            }
        }
    read_all_indexes(s, 1, IX_WRITE); /* as of the last commit, the appends not yet in */
    if (mms_txn_commit(s) == 0) {
        char msg[256];
        if (mms_verify(s, msg, sizeof msg) != 0) {
            fprintf(stderr, "fuzz_store: a store that verified took a commit and then did "
                            "not verify: %s\n", msg);
            abort();
        }
        read_index_phases(s, 1); /* views of the write transaction's indexes, stale now */
    } else if (verbose) {
        fprintf(stderr, "  commit: %s\n", mms_errdetail());
    }
}

/* Step 0: the salvage reader over the same files, before the library's
 * recovery changes them. */
static void salvage_read(void)
{
    struct sv_store st;
    char why[600];
    uint64_t n = 0, usable;
    const char *p;
    if (sv_open(&st, store, NULL, NULL, why, sizeof why) == 0) {
        for (uint32_t i = 0; i < st.ntables; i++) {
            const struct sv_table *t = &st.t[i];
            if (t->bad)
                continue;
            for (uint64_t k = 0; k < t->readable && k < 4096; k++) {
                const uint8_t *rec = t->recs + k * t->record_size;
                n += t->tomb_ok ? (uint64_t)sv_deleted(t, k) : rec[0];
                for (uint32_t f = 0; f < t->nfields; f++) {
                    mms_ref v;
                    n += sv_null(t, f, k);
                    if (t->f[f].kind != MMS_KIND_REF && t->f[f].kind != MMS_KIND_STR &&
                        t->f[f].kind != MMS_KIND_BLOB)
                        continue;
                    memcpy(&v, rec + t->f[f].offset, 8);
                    if (t->f[f].kind == MMS_KIND_REF) {
                        const struct sv_table *tt = sv_table_of(&st, t->f[f].target);
                        n += tt && MMS_REF_SLOT(v) < tt->readable;
                    } else if (v && !sv_str(&st, v, &p, &usable) && usable) {
                        n += (uint8_t)p[0] + (uint8_t)p[usable - 1];
                    }
                }
            }
        }
        if (st.root && !sv_alloc(&st, st.root, &usable))
            n += st.heap[MMS_REF_SLOT(st.root) + usable - 1];
    }
    sv_close(&st);
    sink += n;
}

/* With MMS_FUZZ_VERBOSE=1: what became of the input. */
static void say(const char *step, int r, const char *msg)
{
    if (verbose)
        fprintf(stderr, "  %s: %s%s%s\n", step, r ? mms_strerror(r) : "ok", r ? ": " : "",
                r ? (msg ? msg : mms_errdetail()) : "");
}

/* Open the store with these flags; verify it, read it, and if it is
 * sound and writable, write to it. */
static void open_and_read(unsigned flags, const char *what)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    o.grow_step = 1u << 20;
    mms_store *s;
    char msg[256];
    int r = mms_open(store, &o, &s);
    say(what, r, NULL);
    if (r)
        return;
    r = mms_verify(s, msg, sizeof msg);
    say("verify", r, msg);
    if (r == 0 || !sound_only)
        read_path(s, r == 0);
    if (r == 0 && !(flags & MMS_RDONLY))
        write_txn(s);
    mms_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (verbose < 0) {
        verbose = getenv("MMS_FUZZ_VERBOSE") && *getenv("MMS_FUZZ_VERBOSE") == '1';
        sound_only = getenv("MMS_FUZZ_SOUND_ONLY") && *getenv("MMS_FUZZ_SOUND_ONLY") == '1';
    }
    setup_dirs();
    ix_rand = sum_bytes(data, size < 256 ? size : 256) ^ size ^ UINT64_C(0x9e3779b97f4a7c15);
    if (!ix_rand)
        ix_rand = 1;
    clear_store();
    unpack(data, size);
    salvage_read();
    open_and_read(MMS_RDONLY, "read-only open");
    open_and_read(0, "read-write open");
    return 0;
}

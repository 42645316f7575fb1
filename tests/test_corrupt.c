/*
 * test_corrupt.c -- torn and corrupt files.
 *
 * Whatever happened to a store's files, opening it must end one of two
 * ways: recovery reaches the last valid commit (exactly that state, and
 * mms_verify() agrees), or mms_open() fails with a clear code (MMS_ECORRUPT,
 * MMS_ENOTSTORE, MMS_EVERSION, MMS_EBYTEORDER, MMS_EABI) and a non-empty
 * mms_errdetail(). Never a crash, never a mixed state.
 *
 * Two store images are the raw material, both held in memory and written
 * out afresh for every trial (so no trial sees another's writes):
 *
 *   A ("crashed"): txns 1..K-1 committed and applied, txn K durable in the
 *     journal but not applied (a child process is SIGKILLed at the crash
 *     point commit.journal_synced of its Kth commit). The journal holds
 *     groups 1..K since creation; only header slot 0 is valid.
 *   B ("checkpointed"): txns 1..3, close, reopen, txns 4..5, close. Both
 *     journal header slots are valid: slot 0 (current, start_txn 5) and
 *     slot 1 (start_txn 3), and the journal still holds groups 4..5 of the
 *     epoch slot 1 started.
 *
 * Every txn t writes recognizable bytes (root->n = t, payload bytes that are
 * a function of t), so "the state of txn t" is checked byte for byte.
 *
 * Trial files are rewritten in place, page by page where they differ from
 * the image, which keeps a trial to a few milliseconds.
 *
 * Cases, in order:
 *   torn_tail            A's journal cut at every length inside group K
 *   flip_last_group      one bit of every byte of group K flipped
 *   flip_applied_group   bits of groups 1, K/2, K-1 (applied): ECORRUPT
 *   damaged_unapplied    damage to an unapplied group that later commits
 *                        follow: ECORRUPT naming it; to the last: torn tail
 *   journal_header       slot damage, another store's journal, short/missing
 *   region_files         region-0-0 cut, misaligned, missing
 *   store_header         every bit of page 0 and region entry 0
 *   heap_metadata        damage only mms_verify and `mms verify` can see
 *   lost_sectors         one 512-byte journal sector lost at a time
 *   random_garbage       random bytes, each trial in a child that must exit
 *   not_regular_files    a FIFO or a link in the place of a file
 *   full_disk_lock       opens on a full tmpfs (root only)
 *   journal_hole_full_disk  a journal hole on a full tmpfs: an error, no SIGBUS
 *   journal_read_error   each pread of an open that recovers failing: -EIO
 *   heap_damage_api, foreign_slot_fallback, root_out_of_range: library
 *                        bugs found by this file (see each)
 */
#include "test.h"

#include "internal.h"

#include <sched.h>
#include <sys/mount.h>

#define K 6 /* txns of image A; txn K is durable but not applied */
#define NPAY 5
#define PAYSZ 3000
#define NSMALL 6
#define SMALLSZ 100
_Static_assert(PAYSZ <= 4096 && SMALLSZ <= 4096, "state_diff's buffer");
#define ROOT_MAGIC UINT64_C(0x544f4f5254534554)
/* Txn K also allocates a huge object: region 0 grows by a segment, so
 * group K has a SIZE record and its data is partly fresh space. */
#define BIGSZ ((size_t)1021 * 4096)

struct rootobj {
    uint64_t magic;
    uint64_t n;
    mms_ref pay[NPAY];
    mms_ref small[NSMALL];
    mms_ref junk[2]; /* allocated by txn 1, freed by txn 2 */
    mms_ref big;     /* allocated by txn K */
};

static void big_fill(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 7 + 3);
}

/* Options of every open here: regions grow by 1 MiB steps (not 64), which
 * keeps the images small. */
static const mms_options *opts(unsigned flags)
{
    static mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    o.grow_step = (uint64_t)1 << 20;
    return &o;
}

/* ------------------------------------------------------------------------
 * The data each txn writes
 * ------------------------------------------------------------------------ */

/* Payload p at txn t: several separated runs that change every txn, so a
 * payload page gives several journal DATA records of different lengths. */
static void pay_fill(uint8_t *b, uint64_t t, int p)
{
    memset(b, 0, PAYSZ);
    memcpy(b, &t, sizeof t);
    for (int i = 0; i < 24 + 40 * p; i++)
        b[64 + 16 * p + i] = (uint8_t)(t * 37 + (uint64_t)p * 11 + (uint64_t)i);
    b[1500 + 3 * p] = (uint8_t)(t * 13 + (uint64_t)p + 1);
    b[2990] = (uint8_t)(t + (uint64_t)p * 50);
}

static void small_fill(uint8_t *b, int i)
{
    for (int j = 0; j < SMALLSZ; j++)
        b[j] = (uint8_t)(i * 7 + j + 1);
}

static void txn_write(mms_store *s, uint64_t t)
{
    OK(mms_txn_begin(s, 0));
    struct rootobj *ro;
    if (t == 1) {
        mms_ref r;
        OK(mms_zalloc(s, sizeof *ro, &r));
        ro = mms_deref(s, r);
        ro->magic = ROOT_MAGIC;
        for (int p = 0; p < NPAY; p++)
            OK(mms_zalloc(s, PAYSZ, &ro->pay[p]));
        for (int i = 0; i < NSMALL; i++) {
            OK(mms_zalloc(s, SMALLSZ, &ro->small[i]));
            small_fill(mms_deref(s, ro->small[i]), i);
        }
        OK(mms_zalloc(s, 2 * MMS__PAGE + 100, &ro->junk[0]));
        OK(mms_zalloc(s, 600, &ro->junk[1]));
        OK(mms_root_set(s, r));
    } else {
        ro = mms_deref(s, mms_root(s));
        for (int i = 0; i < 2; i++)
            if (ro->junk[i]) {
                OK(mms_free(s, ro->junk[i]));
                ro->junk[i] = MMS_REF_NULL;
            }
    }
    if (t == K) {
        OK(mms_alloc(s, BIGSZ, &ro->big));
        uint8_t *b = mms_deref(s, ro->big);
        big_fill(b, 4096);
        big_fill(b + BIGSZ - 4096, 4096);
    }
    ro->n = t;
    for (int p = 0; p < NPAY; p++)
        pay_fill(mms_deref(s, ro->pay[p]), t, p);
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_txn_id(s), t);
}

/* NULL if s holds exactly the state of txn t and verifies, else what differs.
 * Checks bounds before every read, so a wrong state is reported, not a
 * fault. */
static const char *state_diff(mms_store *s, uint64_t t)
{
    static char why[700];
    static mms_info info;
    uint8_t want[4096]; /* >= PAYSZ, SMALLSZ */
    if (mms_txn_id(s) != t) {
        snprintf(why, sizeof why, "txn id %llu", (unsigned long long)mms_txn_id(s));
        return why;
    }
    mms_ref root = mms_root(s);
    struct rootobj *ro = mms_ptr(s, root);
    if (!ro || !mms_ptr(s, root + sizeof *ro - 1) || ro->magic != ROOT_MAGIC)
        return "no root object";
    if (ro->n != t) {
        snprintf(why, sizeof why, "root->n is %llu", (unsigned long long)ro->n);
        return why;
    }
    if ((t == 1) != (ro->junk[0] != 0) || (t == 1) != (ro->junk[1] != 0))
        return "junk refs";
    if ((t >= K) != (ro->big != 0))
        return "big ref";
    if (ro->big) {
        uint8_t *b = mms_ptr(s, ro->big);
        if (!b || !mms_ptr(s, ro->big + BIGSZ - 1))
            return "big ref out of range";
        big_fill(want, 4096);
        if (memcmp(b, want, 4096) != 0 || memcmp(b + BIGSZ - 4096, want, 4096) != 0)
            return "big object differs";
    }
    for (int p = 0; p < NPAY; p++) {
        uint8_t *b = mms_ptr(s, ro->pay[p]);
        if (!b || !mms_ptr(s, ro->pay[p] + PAYSZ - 1))
            return "payload ref out of range";
        pay_fill(want, t, p);
        if (memcmp(b, want, PAYSZ) != 0) {
            snprintf(why, sizeof why, "payload %d differs", p);
            return why;
        }
    }
    for (int i = 0; i < NSMALL; i++) {
        uint8_t *b = mms_ptr(s, ro->small[i]);
        if (!b || !mms_ptr(s, ro->small[i] + SMALLSZ - 1))
            return "small ref out of range";
        small_fill(want, i);
        if (memcmp(b, want, SMALLSZ) != 0)
            return "small object differs";
    }
    if (mms_info_get(s, &info) != 0)
        return "mms_info_get failed";
    if (info.heap_objects != (uint64_t)(1 + NPAY + NSMALL + (t == 1 ? 2 : 0) + (t >= K))) {
        snprintf(why, sizeof why, "%llu heap objects", (unsigned long long)info.heap_objects);
        return why;
    }
    char msg[512];
    int r = mms_verify(s, msg, sizeof msg);
    if (r) {
        snprintf(why, sizeof why, "mms_verify: %s (%s)", mms_strerror(r), msg);
        return why;
    }
    return NULL;
}

#define CHECK_STATE(s, t)                                                      \
    do {                                                                       \
        const char *w_ = state_diff((s), (t));                                 \
        if (w_)                                                                \
            FAILF("state is not that of txn %llu: %s", (unsigned long long)(t), w_); \
    } while (0)

/* ------------------------------------------------------------------------
 * Files and images
 * ------------------------------------------------------------------------ */
struct blob {
    uint8_t *b;
    size_t len;
};
struct image {
    struct blob reg, jrn; /* region-0-0, journal */
};

static void slurp(const char *path, struct blob *out)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        FAILF("open %s: %s", path, strerror(errno));
    struct stat st;
    ASSERT(fstat(fd, &st) == 0);
    out->len = (size_t)st.st_size;
    out->b = malloc(out->len + 1);
    ASSERT(out->b);
    size_t got = 0;
    while (got < out->len) {
        ssize_t n = pread(fd, out->b + got, out->len - got, (off_t)got);
        if (n <= 0)
            FAILF("read %s: %s", path, strerror(errno));
        got += (size_t)n;
    }
    close(fd);
}

static void image_load(struct image *im, const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/region-0-0", dir);
    slurp(p, &im->reg);
    snprintf(p, sizeof p, "%s/journal", dir);
    slurp(p, &im->jrn);
}

static void image_free(struct image *im)
{
    free(im->reg.b);
    free(im->jrn.b);
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Make dir/name hold exactly b[0, len). The file is rewritten in place:
 * only the pages that differ from what it holds are written (removing and
 * recreating files costs far more on this file system than the test
 * itself). */
static void put_file(const char *dir, const char *name, const uint8_t *b, size_t len)
{
    enum { CHUNK = 64 * MMS__PAGE };
    static uint8_t cur[CHUNK];
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDWR | O_CREAT, 0666);
    if (fd < 0)
        FAILF("open %s: %s", p, strerror(errno));
    struct stat st;
    ASSERT(fstat(fd, &st) == 0);
    size_t old = (size_t)st.st_size;
    if (old > len && ftruncate(fd, (off_t)len) != 0)
        FAILF("ftruncate %s: %s", p, strerror(errno));
    for (size_t at = 0; at < len; at += CHUNK) {
        size_t n = len - at < CHUNK ? len - at : CHUNK, have = 0;
        if (at < old) {
            size_t want = old - at < n ? old - at : n;
            while (have < want) {
                ssize_t k = pread(fd, cur + have, want - have, (off_t)(at + have));
                if (k <= 0)
                    FAILF("read %s: %s", p, strerror(errno));
                have += (size_t)k;
            }
        }
        memset(cur + have, 0, n - have);
        for (size_t pg = 0; pg < n; pg += MMS__PAGE) {
            size_t m = n - pg < MMS__PAGE ? n - pg : MMS__PAGE;
            if (memcmp(cur + pg, b + at + pg, m) == 0)
                continue;
            if (pwrite(fd, b + at + pg, m, (off_t)(at + pg)) != (ssize_t)m)
                FAILF("write %s: %s", p, strerror(errno));
        }
    }
    if (old < len && ftruncate(fd, (off_t)len) != 0)
        FAILF("ftruncate %s: %s", p, strerror(errno));
    close(fd);
}

static void unlink_in(const char *dir, const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

/* A fresh store directory holding im, its journal cut to jlen bytes
 * (SIZE_MAX: whole). reg/jrn override the image's files when not NULL. */
static void image_write_with(const struct image *im, const char *dir, size_t jlen,
                             const struct blob *reg, const struct blob *jrn)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        FAILF("mkdir %s: %s", dir, strerror(errno));
    if (!reg)
        reg = &im->reg;
    if (!jrn)
        jrn = &im->jrn;
    put_file(dir, "region-0-0", reg->b, reg->len);
    put_file(dir, "journal", jrn->b, jlen < jrn->len ? jlen : jrn->len);
}

static void image_write(const struct image *im, const char *dir, size_t jlen)
{
    image_write_with(im, dir, jlen, NULL, NULL);
}

static void patch(const char *dir, const char *name, uint64_t off, const void *bytes, size_t n)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY);
    if (fd < 0)
        FAILF("open %s: %s", p, strerror(errno));
    if (pwrite(fd, bytes, n, (off_t)off) != (ssize_t)n)
        FAILF("pwrite %s: %s", p, strerror(errno));
    close(fd);
}

static void flip_bit(const char *dir, const char *name, const struct blob *orig, uint64_t off,
                     unsigned bit)
{
    uint8_t c = orig->b[off] ^ (uint8_t)(1u << bit);
    patch(dir, name, off, &c, 1);
}

static void restore(const char *dir, const char *name, const struct blob *orig, uint64_t off,
                    size_t n)
{
    patch(dir, name, off, orig->b + off, n);
}

static void truncate_file(const char *dir, const char *name, uint64_t len)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (truncate(p, (off_t)len) != 0)
        FAILF("truncate %s: %s", p, strerror(errno));
}

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */
static mms_store *open_ok(const char *dir)
{
    mms_store *s = NULL;
    int r = mms_open(dir, opts(0), &s);
    if (r)
        FAILF("mms_open(%s): %s %s", dir, mms_errname(r) ? mms_errname(r) : "", mms_strerror(r));
    return s;
}

/* Open must fail with code (or, code 0, with any error), leave *out NULL and
 * say why in mms_errdetail(). Returns the code. */
static int open_fails(const char *dir, int code, const char *what)
{
    mms_store *s = (mms_store *)&s;
    int r = mms_open(dir, opts(0), &s);
    if (r == 0) {
        const char *st = state_diff(s, mms_txn_id(s));
        FAILF("%s: open succeeded (txn %llu, %s), expected %s", what,
              (unsigned long long)mms_txn_id(s), st ? st : "consistent",
              code ? mms_errname(code) : "an error");
    }
    if (code && r != code)
        FAILF("%s: open returned %d %s (%s), expected %s", what, r,
              mms_errname(r) ? mms_errname(r) : "", mms_strerror(r), mms_errname(code));
    if (r > 0)
        FAILF("%s: open returned %d", what, r);
    if (s != NULL)
        FAILF("%s: failed open left *out set", what);
    if (!mms_errdetail()[0])
        FAILF("%s: open failed with %s but mms_errdetail() is empty", what, mms_strerror(r));
    return r;
}

/* ------------------------------------------------------------------------
 * The journal, parsed independently of the library
 * ------------------------------------------------------------------------ */
enum { B_BEGIN, B_DHDR, B_DATA, B_SIZE, B_COMMIT, B_NCLASS };

struct jgroup {
    uint64_t off, len, txn;
    uint32_t nrec, ndata;
};

struct jlayout {
    bool valid[2];
    struct mms__jhdr slot[2];
    int cur; /* current slot, as the library chooses it */
    int ngroups;
    struct jgroup g[64];
    uint64_t end; /* after the last valid group */
};

static bool jslot_ok(const struct mms__jhdr *h)
{
    return h->magic == MMS__JMAGIC && h->version == MMS__JVERSION &&
           h->crc == mms__crc32c(0, h, offsetof(struct mms__jhdr, crc));
}

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

/* Walk the groups chained from slot `use`'s salt (-1: the current slot),
 * checking each one's CRC independently of the library. Classifies each
 * byte of group number `classify` (1-based, 0: none) into cls, which must
 * hold that group (its length is known from an earlier parse). */
static void journal_parse(const struct blob *j, int use, struct jlayout *L, int classify,
                          uint8_t *cls)
{
    memset(L, 0, sizeof *L);
    ASSERT(j->len >= MMS__JDATA);
    for (int i = 0; i < 2; i++) {
        memcpy(&L->slot[i], j->b + i * MMS__JSLOT, sizeof L->slot[i]);
        L->valid[i] = jslot_ok(&L->slot[i]);
    }
    ASSERT(L->valid[0] || L->valid[1]);
    L->cur = (L->valid[0] && (!L->valid[1] || L->slot[0].seq >= L->slot[1].seq)) ? 0 : 1;
    if (use < 0)
        use = L->cur;
    ASSERT(L->valid[use]);
    uint32_t crc = L->slot[use].salt;
    uint64_t off = MMS__JDATA, txn = L->slot[use].start_txn;
    for (;;) {
        struct mms__jbegin b;
        if (off + sizeof b > j->len)
            break;
        memcpy(&b, j->b + off, sizeof b);
        if (b.type != MMS__JR_BEGIN || b.txn_id != txn + 1)
            break;
        struct jgroup g = {.off = off, .txn = txn + 1};
        bool cl = classify == L->ngroups + 1;
        if (cl)
            memset(cls, B_BEGIN, sizeof b);
        uint64_t p = off + sizeof b;
        bool done = false, bad = false;
        while (!done && !bad) {
            uint32_t type;
            if (p + 8 > j->len) {
                bad = true;
                break;
            }
            memcpy(&type, j->b + p, 4);
            if (type == MMS__JR_DATA) {
                struct mms__jdata d;
                if (p + sizeof d > j->len) {
                    bad = true;
                    break;
                }
                memcpy(&d, j->b + p, sizeof d);
                if (pad8(d.len) > j->len - p - sizeof d) {
                    bad = true;
                    break;
                }
                if (cl) {
                    memset(cls + (p - off), B_DHDR, sizeof d);
                    memset(cls + (p - off) + sizeof d, B_DATA, pad8(d.len));
                }
                p += sizeof d + pad8(d.len);
                g.nrec++;
                g.ndata++;
            } else if (type == MMS__JR_SIZE) {
                if (p + sizeof(struct mms__jsize) > j->len) {
                    bad = true;
                    break;
                }
                if (cl)
                    memset(cls + (p - off), B_SIZE, sizeof(struct mms__jsize));
                p += sizeof(struct mms__jsize);
                g.nrec++;
            } else if (type == MMS__JR_COMMIT) {
                struct mms__jcommit c;
                if (p + sizeof c > j->len) {
                    bad = true;
                    break;
                }
                memcpy(&c, j->b + p, sizeof c);
                g.len = p + sizeof c - off;
                if (c.bytes != g.len || c.nrec != g.nrec || c.txn_id != g.txn ||
                    c.crc != mms__crc32c(crc, j->b + off,
                                         g.len - sizeof c + offsetof(struct mms__jcommit, crc))) {
                    bad = true;
                    break;
                }
                if (cl)
                    memset(cls + (p - off), B_COMMIT, sizeof c);
                crc = c.crc;
                done = true;
            } else {
                bad = true;
            }
        }
        if (bad)
            break;
        ASSERT_LT(L->ngroups, 64);
        L->g[L->ngroups++] = g;
        off += g.len;
        txn++;
    }
    L->end = off;
}

/* ------------------------------------------------------------------------
 * Building the images
 * ------------------------------------------------------------------------ */
static struct image imgA, imgB;
static struct jlayout layA, layB; /* A: groups 1..K; B: slot 1's epoch, groups 4..5 */
static const char *trial; /* the directory every trial writes its store into */

/* Child (exec'd by test.h's harness, so its crash point counters start
 * from nothing): open dir (creating it if create), commit txns first..last
 * with MMS_CRASH=crash; the crash point must kill it. No automatic
 * checkpoint. */
static int child_commit(const char *dir, const char *crash, uint64_t first, uint64_t last,
                        int create)
{
    mms_options o = *opts(create ? MMS_CREATE | MMS_EXCL : 0);
    o.checkpoint_bytes = (uint64_t)1 << 30;
    mms_store *s = NULL;
    OK(mms_open(dir, &o, &s));
    for (uint64_t t = first; t <= last; t++)
        txn_write(s, t);
    fprintf(stderr, "crash point %s did not fire\n", crash);
    return 2;
}

static void run_crashing_child(const char *dir, const char *crash, uint64_t first,
                               uint64_t last, int create)
{
    char a[3][32];
    snprintf(a[0], sizeof a[0], "%llu", (unsigned long long)first);
    snprintf(a[1], sizeof a[1], "%llu", (unsigned long long)last);
    snprintf(a[2], sizeof a[2], "%d", create);
    pid_t pid = child_spawn((const char *[]){dir, crash, a[0], a[1], a[2], NULL},
                            (const char *[]){"MMS_CRASH", crash, NULL});
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        FAILF("the child was not killed by its crash point %s (status 0x%x)", crash, st);
}

static void build_images(void)
{
    const char *a = shm_tpath("corrupt-A");
    char crash[64];
    /* The crash point counts every commit: the Kth is the one killed. */
    snprintf(crash, sizeof crash, "commit.journal_synced:%d", K);
    run_crashing_child(a, crash, 1, K, 1);
    image_load(&imgA, a);
    rmrf(a);

    const char *b = shm_tpath("corrupt-B");
    mms_store *s = NULL;
    OK(mms_open(b, opts(MMS_CREATE | MMS_EXCL), &s));
    for (uint64_t t = 1; t <= 3; t++)
        txn_write(s, t);
    OK(mms_close(s));
    OK(mms_open(b, opts(0), &s));
    for (uint64_t t = 4; t <= 5; t++)
        txn_write(s, t);
    OK(mms_close(s));
    image_load(&imgB, b);
    rmrf(b);

    /* A: slot 0 only, groups 1..K from txn 0; the region header at K-1. */
    const struct mms__hdr *ha = (const void *)imgA.reg.b;
    ASSERT_EQ(ha->txn_id, K - 1);
    journal_parse(&imgA.jrn, -1, &layA, 0, NULL);
    ASSERT(layA.valid[0] && !layA.valid[1]);
    ASSERT_EQ(layA.slot[0].start_txn, 0);
    ASSERT_EQ(layA.ngroups, K);
    for (int i = 0; i < K; i++)
        ASSERT_EQ(layA.g[i].txn, i + 1);
    ASSERT(all_zero(imgA.jrn.b + layA.end, imgA.jrn.len - layA.end));

    /* B: slot 0 current (seq 3, start 5), slot 1 (seq 2, start 3) whose
     * epoch's groups 4..5 are still in the journal. */
    const struct mms__hdr *hb = (const void *)imgB.reg.b;
    ASSERT_EQ(hb->txn_id, 5);
    struct jlayout cur;
    journal_parse(&imgB.jrn, -1, &cur, 0, NULL);
    ASSERT(cur.valid[0] && cur.valid[1]);
    ASSERT_EQ(cur.cur, 0);
    ASSERT_EQ(cur.slot[0].seq, 3);
    ASSERT_EQ(cur.slot[0].start_txn, 5);
    ASSERT_EQ(cur.ngroups, 0);
    journal_parse(&imgB.jrn, 1, &layB, 0, NULL);
    ASSERT_EQ(layB.slot[1].start_txn, 3);
    ASSERT_EQ(layB.ngroups, 2);
    ASSERT_EQ(layB.g[1].txn, 5);
    fprintf(stderr, "   image A: region 0 %zu bytes, journal %zu, groups end at %llu; image B: "
            "region 0 %zu bytes, journal %zu\n", imgA.reg.len, imgA.jrn.len,
            (unsigned long long)layA.end, imgB.reg.len, imgB.jrn.len);
}

/* ------------------------------------------------------------------------
 * 1. Torn journal tail: every length from the start of group K to its end.
 * ------------------------------------------------------------------------ */
/* The checksum every journal group and header carries: CRC-32C's check
 * value, the same in pieces of every length (the instruction takes 8 bytes
 * at a time, then single bytes), from the CPU's instruction where it has
 * one, which crc32c.c decides when the library is loaded. */
TEST(crc32c_check_value)
{
    ASSERT_EQ(mms__crc32c(0, "123456789", 9), 0xe3069283u);
    for (size_t cut = 0; cut <= 9; cut++)
        ASSERT_EQ(mms__crc32c(mms__crc32c(0, "123456789", cut), "123456789" + cut, 9 - cut),
                  0xe3069283u);
    ASSERT_EQ(mms__crc32c(0, "", 0), 0u);
    static const uint8_t zeros[32];
    ASSERT_EQ(mms__crc32c(0, zeros, 32), 0x8a9136aau); /* RFC 3720, B.4 */
}

TEST(torn_tail)
{
    double t0 = now_us();
    const struct jgroup *gk = &layA.g[K - 1];
    uint8_t *cls = malloc(gk->len);
    ASSERT(cls);
    struct jlayout L;
    journal_parse(&imgA.jrn, -1, &L, K, cls);
    /* The group must be worth tearing: many records, some long. */
    ASSERT_GE(gk->ndata, 10);
    unsigned long where[B_NCLASS] = {0}, tried = 0, reopened = 0;

    /* The whole journal (with its preallocated zero tail): state K. */
    image_write(&imgA, trial, SIZE_MAX);
    mms_store *s = open_ok(trial);
    CHECK_STATE(s, K);
    OK(mms_close(s));

    for (uint64_t len = gk->off; len <= gk->off + gk->len; len++) {
        image_write(&imgA, trial, len);
        s = open_ok(trial);
        uint64_t want = len == gk->off + gk->len ? K : K - 1;
        CHECK_STATE(s, want);
        if (len < gk->off + gk->len)
            where[cls[len - gk->off]]++;
        if (tried % 61 == 0 || len == gk->off + gk->len) {
            /* The recovered store goes on: commit, close, reopen. */
            txn_write(s, want + 1);
            OK(mms_close(s));
            s = open_ok(trial);
            CHECK_STATE(s, want + 1);
            reopened++;
        }
        OK(mms_close(s));
        tried++;
    }
    ASSERT_EQ(tried, gk->len + 1);
    /* Cuts landed inside every kind of record the group has. */
    ASSERT(where[B_BEGIN] && where[B_DHDR] && where[B_DATA] && where[B_SIZE] && where[B_COMMIT]);
    fprintf(stderr,
            "   group %d: %llu bytes, %u records (%u data); %lu cut lengths tried (%lu in the "
            "begin record, %lu in data headers, %lu in data bytes, %lu in size records, %lu in "
            "the commit record, 1 whole), %lu reopened after a commit; %.1f s\n",
            K, (unsigned long long)gk->len, gk->nrec, gk->ndata, tried, where[B_BEGIN],
            where[B_DHDR], where[B_DATA], where[B_SIZE], where[B_COMMIT], reopened,
            (now_us() - t0) / 1e6);
    free(cls);
}

/* ------------------------------------------------------------------------
 * 2. Bit flips in the last, unapplied group: it fails its CRC, state K-1.
 * ------------------------------------------------------------------------ */
TEST(flip_last_group)
{
    double t0 = now_us();
    const struct jgroup *gk = &layA.g[K - 1];
    unsigned long tried = 0, pad = 0;
    for (uint64_t i = 0; i < gk->len; i++) {
        uint64_t off = gk->off + i;
        /* Every byte of the group, one bit each (bit = offset mod 8). */
        image_write(&imgA, trial, SIZE_MAX);
        flip_bit(trial, "journal", &imgA.jrn, off, (unsigned)(off % 8));
        mms_store *s = open_ok(trial);
        /* The last 4 bytes are the commit record's pad, which no CRC covers
         * and nothing reads: the group stays valid. */
        bool in_pad = i >= gk->len - 4;
        CHECK_STATE(s, in_pad ? K : K - 1);
        pad += in_pad;
        OK(mms_close(s));
        tried++;
    }
    ASSERT_EQ(tried, gk->len);
    fprintf(stderr, "   %lu single-bit flips (every byte of group %d), %lu in the unchecked "
            "commit pad; %.1f s\n", tried, K, pad, (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * 3. Damage to an earlier group, whose changes the region files already
 *    have: the files are ahead of the valid journal prefix -> ECORRUPT.
 * ------------------------------------------------------------------------ */
TEST(flip_applied_group)
{
    double t0 = now_us();
    unsigned long flips = 0, cuts = 0, pad = 0;
    image_write(&imgA, trial, SIZE_MAX);
    int groups[] = {1, K / 2, K - 1};
    for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
        const struct jgroup *g = &layA.g[groups[gi] - 1];
        for (uint64_t i = 0; i < g->len; i++) {
            uint64_t off = g->off + i;
            flip_bit(trial, "journal", &imgA.jrn, off, (unsigned)((off + gi) % 8));
            if (i >= g->len - 4) {
                /* Commit pad: not covered, the group stays valid. */
                mms_store *s = open_ok(trial);
                CHECK_STATE(s, K);
                OK(mms_close(s));
                image_write(&imgA, trial, SIZE_MAX);
                pad++;
            } else {
                char what[100];
                snprintf(what, sizeof what, "bit flip at journal offset %llu (group %d)",
                         (unsigned long long)off, groups[gi]);
                open_fails(trial, MMS_ECORRUPT, what);
                restore(trial, "journal", &imgA.jrn, off, 1);
            }
            flips++;
        }
    }
    /* Cuts inside the applied groups: also files ahead of the journal. */
    for (uint64_t len = MMS__JDATA; len < layA.g[K - 1].off; len += 5) {
        image_write(&imgA, trial, len);
        char what[100];
        snprintf(what, sizeof what, "journal cut to %llu bytes", (unsigned long long)len);
        open_fails(trial, MMS_ECORRUPT, what);
        cuts++;
    }
    unsigned long want = 0;
    for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++)
        want += layA.g[groups[gi] - 1].len;
    ASSERT_EQ(flips, want);
    fprintf(stderr, "   %lu single-bit flips over every byte of groups 1, %d, %d (%lu in the "
            "unchecked commit pad), %lu cut lengths (stride 5) before group %d; detail: %s; "
            "%.1f s\n", flips, K / 2, K - 1, pad, cuts, K, mms_errdetail(),
            (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * 4a. Damage to an unapplied group that later durable commits follow
 *     (image C: txns 1..2 applied, 3..KC held back in the journal by a
 *     reader, then the process ends without closing). Those later commits
 *     were acknowledged: the open must refuse, naming the journal, the
 *     offset and the txns, never drop them silently. Damage to the last
 *     group alone is a torn tail: state KC-1, as before.
 * ------------------------------------------------------------------------ */
#define KC 8 /* txns of image C; 3..KC are in the journal only */

static void build_image_c(struct image *im, struct jlayout *lay)
{
    const char *c = shm_tpath("corrupt-C");
    rmrf(c);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        mms_options o = *opts(MMS_CREATE | MMS_EXCL);
        o.checkpoint_bytes = (uint64_t)1 << 30;
        mms_store *s = NULL, *r = NULL;
        OK(mms_open(c, &o, &s));
        for (uint64_t t = 1; t <= 2; t++)
            txn_write(s, t);
        /* A reader in another process holds the state of txn 2. */
        int in[2], out[2];
        ASSERT(pipe(in) == 0 && pipe(out) == 0);
        pid_t rd = fork();
        ASSERT(rd >= 0);
        char c1 = 0;
        if (rd == 0) {
            OK(mms_open(c, opts(MMS_RDONLY), &r));
            OK(mms_read_begin(r));
            ASSERT_EQ(write(in[1], "r", 1), 1);
            ASSERT_EQ(read(out[0], &c1, 1), 1); /* until killed */
            _exit(0);
        }
        ASSERT_EQ(read(in[0], &c1, 1), 1);
        for (uint64_t t = 3; t <= KC; t++)
            txn_write(s, t);
        kill(rd, SIGKILL);
        ASSERT_EQ(waitpid(rd, NULL, 0), rd);
        _exit(0); /* no close: the commits stay in the journal */
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    image_load(im, c);
    rmrf(c);
    const struct mms__hdr *h = (const void *)im->reg.b;
    ASSERT_EQ(h->txn_id, 2);
    journal_parse(&im->jrn, -1, lay, 0, NULL);
    ASSERT_EQ(lay->ngroups, KC);
}

/* Open must fail naming the journal, the damaged group's offset and txn,
 * and `mms recover`; and must have written nothing. */
static void open_refuses(const struct image *im, const struct jgroup *g, const char *what)
{
    open_fails(trial, MMS_ECORRUPT, what);
    const char *d = mms_errdetail();
    char off[64], txn[64];
    snprintf(off, sizeof off, "offset %llu", (unsigned long long)g->off);
    snprintf(txn, sizeof txn, "txn %llu", (unsigned long long)g->txn);
    if (!strstr(d, "journal") || !strstr(d, off) || !strstr(d, txn) || !strstr(d, "mms recover"))
        FAILF("%s: the detail does not name the journal, %s, %s and mms recover: %s", what, off,
              txn, d);
    struct blob j, r;
    char p[600];
    snprintf(p, sizeof p, "%s/journal", trial);
    slurp(p, &j);
    snprintf(p, sizeof p, "%s/region-0-0", trial);
    slurp(p, &r);
    ASSERT(j.len == im->jrn.len && memcmp(j.b, im->jrn.b, j.len) == 0);
    ASSERT(r.len == im->reg.len && memcmp(r.b, im->reg.b, r.len) == 0);
    free(j.b);
    free(r.b);
}

TEST(damaged_unapplied)
{
    double t0 = now_us();
    struct image imC;
    struct jlayout L;
    build_image_c(&imC, &L);
    unsigned long refused = 0, torn = 0;
    static char detail[600];
    image_write(&imC, trial, SIZE_MAX);
    mms_store *s = open_ok(trial);
    CHECK_STATE(s, KC);
    OK(mms_close(s));

    static const uint8_t zeros[512];
    for (int k = 3; k <= KC; k++) {
        const struct jgroup *g = &L.g[k - 1];
        /* A bit in the middle, a lost sector, the commit record's crc. */
        uint64_t at[3] = {g->off + g->len / 2, (g->off + g->len / 2) & ~(uint64_t)511,
                          g->off + g->len - 8};
        ASSERT_GE(at[1], g->off + sizeof(struct mms__jbegin));
        for (int how = 0; how < 3; how++) {
            char what[120];
            snprintf(what, sizeof what, "group %d of %d (unapplied), damage %d at %llu", k, KC,
                     how, (unsigned long long)at[how]);
            image_write(&imC, trial, SIZE_MAX);
            if (how == 0)
                flip_bit(trial, "journal", &imC.jrn, at[how], 3);
            else if (how == 1)
                patch(trial, "journal", at[how], zeros,
                      at[how] + 512 <= g->off + g->len - 32 ? 512 : 8);
            else
                patch(trial, "journal", at[how], "\xff\xff\xff\xff", 4);
            struct image damaged;
            image_load(&damaged, trial);
            if (k < KC) {
                open_refuses(&damaged, g, what);
                if (!refused++)
                    snprintf(detail, sizeof detail, "%s", mms_errdetail());
            } else {
                /* The last group: a torn tail. */
                s = open_ok(trial);
                CHECK_STATE(s, KC - 1);
                OK(mms_close(s));
                torn++;
            }
            image_free(&damaged);
        }
    }
    /* A cut inside an unapplied group is a torn tail too, however many
     * groups came before it. */
    for (int k = 3; k <= KC; k++) {
        image_write(&imC, trial, L.g[k - 1].off + L.g[k - 1].len / 2);
        s = open_ok(trial);
        CHECK_STATE(s, (uint64_t)k - 1);
        OK(mms_close(s));
        torn++;
    }
    fprintf(stderr, "   image C: groups 3..%d unapplied; %lu damaged groups refused (detail: %s), "
            "%lu torn tails recovered; %.1f s\n", KC, refused, detail, torn,
            (now_us() - t0) / 1e6);
    image_free(&imC);
}

/* ------------------------------------------------------------------------
 * 4. The journal header; another store's journal; a short or missing one.
 * ------------------------------------------------------------------------ */
static void damage_slot(const struct image *im, int slot, int how, uint64_t arg)
{
    uint64_t base = (uint64_t)slot * MMS__JSLOT;
    if (how == 0) { /* one bit */
        flip_bit(trial, "journal", &im->jrn, base + arg, (unsigned)(arg % 8));
    } else if (how == 1) { /* zeros */
        uint8_t z[MMS__JSLOT] = {0};
        patch(trial, "journal", base, z, sizeof z);
    } else { /* random bytes */
        uint8_t g[MMS__JSLOT];
        uint64_t x = arg;
        for (size_t i = 0; i < sizeof g; i++)
            g[i] = (uint8_t)rnd_next(&x);
        patch(trial, "journal", base, g, sizeof g);
    }
}

TEST(journal_header)
{
    double t0 = now_us();
    unsigned long one = 0, both = 0, ignored = 0;
    const uint64_t covered = offsetof(struct mms__jhdr, pad); /* crc included */
    /* B, one slot damaged: the other one does. Slot 0 is current; damaging
     * it falls back to slot 1, whose epoch (groups 4..5) is still there. */
    for (int slot = 0; slot < 2; slot++)
        for (int how = 0; how < 3; how++) {
            uint64_t n = how == 0 ? covered : 1;
            for (uint64_t a = 0; a < n; a++) {
                image_write(&imgB, trial, SIZE_MAX);
                damage_slot(&imgB, slot, how, how == 2 ? 77 + (uint64_t)slot : a);
                mms_store *s = open_ok(trial);
                CHECK_STATE(s, 5);
                OK(mms_close(s));
                /* Still sound after recovery and a close. */
                s = open_ok(trial);
                CHECK_STATE(s, 5);
                OK(mms_close(s));
                one++;
            }
        }
    /* Bytes of a slot past its CRC are not part of it. */
    for (uint64_t a = covered; a < MMS__JSLOT; a += 13) {
        image_write(&imgB, trial, SIZE_MAX);
        damage_slot(&imgB, 0, 0, a);
        mms_store *s = open_ok(trial);
        CHECK_STATE(s, 5);
        OK(mms_close(s));
        ignored++;
    }
    /* Both slots damaged (every combination of the three kinds). */
    for (int h0 = 0; h0 < 3; h0++)
        for (int h1 = 0; h1 < 3; h1++) {
            image_write(&imgB, trial, SIZE_MAX);
            damage_slot(&imgB, 0, h0, h0 == 2 ? 5 : 9);
            damage_slot(&imgB, 1, h1, h1 == 2 ? 6 : 40);
            open_fails(trial, MMS_ECORRUPT, "both journal header slots damaged");
            both++;
        }
    /* A has only slot 0: damaging it leaves none. */
    for (uint64_t a = 0; a < covered; a++) {
        image_write(&imgA, trial, SIZE_MAX);
        damage_slot(&imgA, 0, 0, a);
        open_fails(trial, MMS_ECORRUPT, "A's only journal header slot damaged");
        both++;
    }
    /* A, slot 1 (never written) filled with garbage: slot 0 is used. */
    image_write(&imgA, trial, SIZE_MAX);
    damage_slot(&imgA, 1, 2, 3);
    mms_store *s = open_ok(trial);
    CHECK_STATE(s, K);
    OK(mms_close(s));

    /* The current slot damaged while its epoch holds a commit (txn 6, not
     * checkpointed): its salt is lost, the groups cannot be checked, the
     * older slot's epoch ends at txn 5 -> the files are ahead: ECORRUPT. */
    image_write(&imgB, trial, SIZE_MAX);
    s = open_ok(trial);
    txn_write(s, 6);
    struct image live;
    image_load(&live, trial); /* what a crash now would leave */
    OK(mms_close(s));
    image_write(&live, trial, SIZE_MAX);
    s = open_ok(trial);
    CHECK_STATE(s, 6);
    OK(mms_close(s));
    image_write(&live, trial, SIZE_MAX);
    damage_slot(&live, 0, 0, 13);
    open_fails(trial, MMS_ECORRUPT, "current slot damaged with an epoch in progress");
    image_write(&live, trial, SIZE_MAX);
    damage_slot(&live, 1, 1, 0);
    s = open_ok(trial);
    CHECK_STATE(s, 6);
    OK(mms_close(s));
    image_free(&live);

    /* Another store's journal is ignored: A's (groups 1..K, which would
     * write into region 0 if replayed) and B's, copied into the other. */
    for (int v = 0; v < 2; v++) {
        const struct image *own = v ? &imgA : &imgB, *other = v ? &imgB : &imgA;
        /* A's own state needs its journal; give B's journal to a
         * checkpointed copy of A instead. */
        if (v == 1) {
            image_write(&imgA, trial, SIZE_MAX);
            s = open_ok(trial);
            OK(mms_close(s));
            struct image ack;
            image_load(&ack, trial);
            image_write_with(&ack, trial, SIZE_MAX, NULL, &other->jrn);
            image_free(&ack);
        } else {
            image_write_with(own, trial, SIZE_MAX, NULL, &other->jrn);
        }
        uint64_t t = v ? K : 5;
        s = open_ok(trial);
        CHECK_STATE(s, t);
        txn_write(s, t + 1);
        OK(mms_close(s));
        s = open_ok(trial);
        CHECK_STATE(s, t + 1);
        OK(mms_close(s));
    }

    /* Short journals and no journal. */
    static const uint64_t shorts[] = {0, 1, 55, 511, 512, 1024, 1080, 4095};
    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++) {
        image_write(&imgB, trial, shorts[i]);
        char what[80];
        snprintf(what, sizeof what, "journal of %llu bytes", (unsigned long long)shorts[i]);
        open_fails(trial, MMS_ECORRUPT, what);
    }
    const char *short_detail = mms_errdetail();
    fprintf(stderr, "   short journal: %s\n", short_detail);
    image_write(&imgB, trial, MMS__JDATA); /* just the header: a checkpointed store */
    s = open_ok(trial);
    CHECK_STATE(s, 5);
    OK(mms_close(s));
    image_write(&imgB, trial, SIZE_MAX);
    unlink_in(trial, "journal");
    open_fails(trial, MMS_ECORRUPT, "journal missing");
    fprintf(stderr, "   missing journal: %s\n", mms_errdetail());
    image_write(&imgA, trial, SIZE_MAX);
    unlink_in(trial, "journal");
    open_fails(trial, MMS_ECORRUPT, "journal missing (A)");
    fprintf(stderr, "   %lu opens with one slot damaged, %lu with the bytes past a slot's CRC "
            "changed, %lu with no valid slot; %.1f s\n", one, ignored, both,
            (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * 5. Region files cut short, misaligned, missing.
 * ------------------------------------------------------------------------ */
TEST(region_files)
{
    double t0 = now_us();
    /* A store whose heap is more than one segment. */
    const char *dir = shm_tpath("corrupt-R");
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_EXCL;
    o.grow_step = (uint64_t)1 << 20;
    mms_store *s = NULL;
    OK(mms_open(dir, &o, &s));
    txn_write(s, 1);
    OK(mms_txn_begin(s, 0));
    mms_ref big;
    OK(mms_zalloc(s, (size_t)6 << 20, &big));
    memset(mms_deref(s, big), 0x5a, (size_t)6 << 20);
    struct rootobj *ro = mms_deref(s, mms_root(s));
    ro->junk[0] = big;
    OK(mms_txn_commit(s));
    static mms_info in;
    OK(mms_info_get(s, &in));
    OK(mms_close(s));
    uint64_t committed = in.region_size[0], fsize = in.region_file[0];
    ASSERT_LT((long long)MMS__SEG, (long long)committed);
    ASSERT_LE(committed, fsize);
    struct image imgR;
    image_load(&imgR, dir);
    rmrf(dir);
    ASSERT_EQ(imgR.reg.len, fsize);

    unsigned long n = 0, accepted = 0;
    const uint64_t cuts[] = {committed - MMS__PAGE, committed - 1, MMS__SEG + MMS__PAGE,
                             MMS__SEG, MMS__SEG - MMS__PAGE, MMS__HDR_BYTES,
                             MMS__HDR_BYTES - 1, 2 * MMS__PAGE, MMS__PAGE, 100, 8};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        image_write(&imgR, trial, SIZE_MAX);
        truncate_file(trial, "region-0-0", cuts[i]);
        char what[100];
        snprintf(what, sizeof what, "region-0-0 cut to %llu bytes (committed %llu)",
                 (unsigned long long)cuts[i], (unsigned long long)committed);
        open_fails(trial, MMS_ECORRUPT, what);
        if (i == 0)
            fprintf(stderr, "   %s: %s\n", what, mms_errdetail());
        n++;
    }
    /* Shorter than a magic number: any error, no crash. */
    for (uint64_t len = 0; len < 8; len++) {
        image_write(&imgR, trial, SIZE_MAX);
        truncate_file(trial, "region-0-0", len);
        char what[100];
        snprintf(what, sizeof what, "region-0-0 cut to %llu bytes", (unsigned long long)len);
        int r = open_fails(trial, 0, what);
        if (len == 0)
            fprintf(stderr, "   %s: %s (%s)\n", what, mms_errname(r), mms_errdetail());
        n++;
    }
    /* Sizes that are not a multiple of the page size. Short of the
     * committed size: corrupt. Past it, the partial page is fresh space
     * that a failed fallocate or a crash can leave (ext4 allocates whole
     * blocks): map.c ignores it, and the store opens. */
    const uint64_t odd_short[] = {committed - 1, committed - 100, committed - MMS__PAGE - 1};
    for (size_t i = 0; i < sizeof odd_short / sizeof odd_short[0]; i++) {
        image_write(&imgR, trial, SIZE_MAX);
        truncate_file(trial, "region-0-0", odd_short[i]);
        char what[100];
        snprintf(what, sizeof what, "region-0-0 of %llu bytes (committed %llu)",
                 (unsigned long long)odd_short[i], (unsigned long long)committed);
        open_fails(trial, MMS_ECORRUPT, what);
        n++;
    }
    const uint64_t odd_long[] = {fsize + 1, fsize + 100, fsize + MMS__PAGE - 1, committed + 1,
                                 committed + 512};
    for (size_t i = 0; i < sizeof odd_long / sizeof odd_long[0]; i++) {
        image_write(&imgR, trial, SIZE_MAX);
        truncate_file(trial, "region-0-0", odd_long[i]);
        s = open_ok(trial);
        ASSERT_EQ(mms_txn_id(s), 2);
        verify_ok(s);
        if (i == 0) {
            /* and it goes on: a commit that grows the heap, then reopen. */
            OK(mms_txn_begin(s, 0));
            mms_ref more;
            OK(mms_zalloc(s, (size_t)5 << 20, &more));
            memset(mms_deref(s, more), 0x33, (size_t)5 << 20);
            MMS_AT(s, struct rootobj, mms_root(s))->junk[1] = more;
            OK(mms_txn_commit(s));
            OK(mms_close(s));
            s = open_ok(trial);
            ASSERT_EQ(mms_txn_id(s), 3);
            const uint8_t *m = mms_ptr(s, MMS_AT(s, struct rootobj, mms_root(s))->junk[1]);
            ASSERT(m && m[0] == 0x33 && m[((size_t)5 << 20) - 1] == 0x33);
            verify_ok(s);
        }
        OK(mms_close(s));
        accepted++;
    }
    /* Exactly the committed size is a sound store. */
    image_write(&imgR, trial, SIZE_MAX);
    truncate_file(trial, "region-0-0", committed);
    s = open_ok(trial);
    ASSERT_EQ(mms_txn_id(s), 2);
    verify_ok(s);
    OK(mms_close(s));
    /* Missing. */
    image_write(&imgR, trial, SIZE_MAX);
    unlink_in(trial, "region-0-0");
    open_fails(trial, MMS_ENOTSTORE, "region-0-0 missing");
    image_write(&imgA, trial, SIZE_MAX);
    unlink_in(trial, "region-0-0");
    open_fails(trial, MMS_ENOTSTORE, "region-0-0 missing (A)");

    /* A (journal to replay): txn K grew region 0 to two segments, and its
     * SIZE record says so. Region 0 cut below that: corrupt... */
    ASSERT_EQ(imgA.reg.len, 2 * MMS__SEG);
    const uint64_t acuts[] = {imgA.reg.len - MMS__PAGE, imgA.reg.len - 1, MMS__SEG,
                              MMS__HDR_BYTES, MMS__PAGE};
    for (size_t i = 0; i < sizeof acuts / sizeof acuts[0]; i++) {
        image_write(&imgA, trial, SIZE_MAX);
        truncate_file(trial, "region-0-0", acuts[i]);
        char what[100];
        snprintf(what, sizeof what, "A: region-0-0 cut to %llu bytes",
                 (unsigned long long)acuts[i]);
        open_fails(trial, MMS_ECORRUPT, what);
        if (i == 2)
            fprintf(stderr, "   %s: %s\n", what, mms_errdetail());
        n++;
    }
    /* ...unless group K is torn too: then txn K-1, one segment, is all
     * there is to recover. */
    image_write(&imgA, trial, layA.g[K - 1].off + layA.g[K - 1].len - 1);
    truncate_file(trial, "region-0-0", MMS__SEG);
    s = open_ok(trial);
    CHECK_STATE(s, K - 1);
    txn_write(s, K);
    OK(mms_close(s));
    s = open_ok(trial);
    CHECK_STATE(s, K);
    OK(mms_close(s));
    image_free(&imgR);
    fprintf(stderr, "   %lu damaged region files refused; %lu with a partial page past the "
            "committed size opened; %.1f s\n", n, accepted, (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * 6. The store header (page 0) and the region table (page 1).
 * ------------------------------------------------------------------------ */
static int expect_hdr_flip(uint64_t off)
{
    if (off < 8)
        return MMS_ENOTSTORE;
    if (off < 12)
        return MMS_EVERSION;
    if (off < 24 || (off >= offsetof(struct mms__hdr, hdr_pages) &&
                     off < offsetof(struct mms__hdr, hdr_pages) + 4))
        return MMS_EABI; /* page_size, abi, hdr_pages */
    if (off >= offsetof(struct mms__hdr, pad))
        return 0; /* not covered by the CRC, never read */
    return MMS_ECORRUPT;
}

static void hdr_edit(const char *what, uint64_t off, const void *bytes, size_t n, int code)
{
    image_write(&imgB, trial, SIZE_MAX);
    patch(trial, "region-0-0", off, bytes, n);
    open_fails(trial, code, what);
    fprintf(stderr, "   %-28s -> %-15s %s\n", what, mms_errname(code), mms_errdetail());
}

TEST(store_header)
{
    double t0 = now_us();
    const struct mms__hdr *h = (const void *)imgB.reg.b;
    uint64_t v64;
    uint32_t v32;
    uint8_t v8;
    v64 = UINT64_C(0x4242424242424242);
    hdr_edit("bad magic", 0, &v64, 8, MMS_ENOTSTORE);
    v64 = __builtin_bswap64(MMS__MAGIC);
    hdr_edit("byte-swapped magic", 0, &v64, 8, MMS_EBYTEORDER);
    v32 = MMS_FORMAT_VERSION + 1;
    hdr_edit("a newer version", offsetof(struct mms__hdr, version), &v32, 4, MMS_EVERSION);
    v32 = 1; /* version 2 is still read (format 2) */
    hdr_edit("an older version", offsetof(struct mms__hdr, version), &v32, 4, MMS_EVERSION);
    v32 = 0;
    hdr_edit("version 0", offsetof(struct mms__hdr, version), &v32, 4, MMS_EVERSION);
    v8 = 40;
    hdr_edit("abi.slot_bits 40", offsetof(struct mms__hdr, abi) + 2, &v8, 1, MMS_EABI);
    v8 = MMS__ABI_BE;
    hdr_edit("abi.endian big", offsetof(struct mms__hdr, abi), &v8, 1, MMS_EABI);
    v8 = 32;
    hdr_edit("abi.ref_bits 32", offsetof(struct mms__hdr, abi) + 1, &v8, 1, MMS_EABI);
    v8 = 16;
    hdr_edit("abi.page_shift 16", offsetof(struct mms__hdr, abi) + 3, &v8, 1, MMS_EABI);
    v32 = 65536;
    hdr_edit("page_size 65536", offsetof(struct mms__hdr, page_size), &v32, 4, MMS_EABI);
    v64 = h->root + 16;
    hdr_edit("root + 16", offsetof(struct mms__hdr, root), &v64, 8, MMS_ECORRUPT);
    v32 = 2;
    hdr_edit("nregions 2", offsetof(struct mms__hdr, nregions), &v32, 4, MMS_ECORRUPT);
    v32 = 0;
    hdr_edit("nregions 0", offsetof(struct mms__hdr, nregions), &v32, 4, MMS_ECORRUPT);
    v32 = 100000;
    hdr_edit("nregions 100000", offsetof(struct mms__hdr, nregions), &v32, 4, MMS_ECORRUPT);
    v64 = h->free_bytes + MMS__PAGE;
    hdr_edit("free_bytes + 4096", offsetof(struct mms__hdr, free_bytes), &v64, 8, MMS_ECORRUPT);
    v64 = h->txn_id + 1;
    hdr_edit("txn_id + 1", offsetof(struct mms__hdr, txn_id), &v64, 8, MMS_ECORRUPT);
    v64 = h->txn_id - 1;
    hdr_edit("txn_id - 1", offsetof(struct mms__hdr, txn_id), &v64, 8, MMS_ECORRUPT);
    v64 = MMS__SEG * 2;
    hdr_edit("region 0 size doubled", MMS__PAGE, &v64, 8, MMS_ECORRUPT);

    /* Every bit of page 0's fields, its CRC and pad and region table entry
     * 0, one at a time, in place (a refused open writes nothing; each flip
     * is undone). Of the reserved bytes, which only the CRC covers, one bit
     * each, the bit moving with the byte: a CRC32C finds every single-bit
     * error, and all 8 bits of 3728 zero bytes cost 26,000 opens. */
    image_write(&imgB, trial, SIZE_MAX);
    unsigned long flips = 0, pad = 0, by_code[6] = {0};
    const uint64_t res_lo = offsetof(struct mms__hdr, reserved),
                   res_hi = offsetof(struct mms__hdr, crc);
    for (uint64_t off = 0; off < MMS__PAGE + sizeof(struct mms__rent); off++) {
        int want = off < MMS__PAGE ? expect_hdr_flip(off) : MMS_ECORRUPT;
        bool one = off >= res_lo && off < res_hi;
        unsigned b0 = one ? (unsigned)(off % 8) : 0, b1 = one ? b0 + 1 : 8;
        for (unsigned bit = b0; bit < b1; bit++) {
            flip_bit(trial, "region-0-0", &imgB.reg, off, bit);
            if (want == 0) {
                mms_store *s = open_ok(trial);
                CHECK_STATE(s, 5);
                OK(mms_close(s));
                pad++;
            } else {
                char what[80];
                snprintf(what, sizeof what, "bit %u of region-0-0 byte %llu", bit,
                         (unsigned long long)off);
                /* Version 3 with bit 0 flipped is version 2, which is read:
                 * its heap is whole units, this one is not. */
                bool v2 = off == offsetof(struct mms__hdr, version) && bit == 0 &&
                          MMS_FORMAT_VERSION == 3;
                open_fails(trial, v2 ? MMS_ECORRUPT : want, what);
                by_code[-(want - MMS_ECORRUPT)]++;
            }
            restore(trial, "region-0-0", &imgB.reg, off, 1);
            flips++;
        }
    }
    ASSERT_EQ(flips, 8 * (MMS__PAGE + sizeof(struct mms__rent)) - 7 * (res_hi - res_lo));
    /* Region table entries past nregions are not part of the store. */
    unsigned long unused = 0;
    for (uint64_t off = MMS__PAGE + sizeof(struct mms__rent); off < 2 * MMS__PAGE; off += 97) {
        flip_bit(trial, "region-0-0", &imgB.reg, off, (unsigned)(off % 8));
        mms_store *s = open_ok(trial);
        CHECK_STATE(s, 5);
        OK(mms_close(s));
        restore(trial, "region-0-0", &imgB.reg, off, 1);
        unused++;
    }

    /* With a journal to replay (A; one bit of every 5th byte): replay may
     * rewrite the flipped byte (then the state is K), or the open fails. */
    unsigned long a_ok = 0, a_fail = 0;
    image_write(&imgA, trial, SIZE_MAX);
    for (uint64_t off = 0; off < MMS__PAGE + sizeof(struct mms__rent); off += 5) {
        unsigned bit = (unsigned)(off % 8);
        flip_bit(trial, "region-0-0", &imgA.reg, off, bit);
        mms_store *s = NULL;
        int r = mms_open(trial, opts(0), &s);
        if (r == 0) {
            CHECK_STATE(s, K);
            OK(mms_close(s));
            a_ok++;
            image_write(&imgA, trial, SIZE_MAX); /* recovery rewrote the files */
        } else {
            if (r != MMS_ECORRUPT && r != MMS_ENOTSTORE && r != MMS_EVERSION &&
                r != MMS_EABI && r != MMS_EBYTEORDER)
                FAILF("A: bit %u of byte %llu: open returned %d %s", bit,
                      (unsigned long long)off, r, mms_strerror(r));
            ASSERT(s == NULL);
            ASSERT(mms_errdetail()[0]);
            a_fail++;
            /* A refused open may have replayed before it refused. */
            image_write(&imgA, trial, SIZE_MAX);
        }
    }
    fprintf(stderr,
            "   %lu single-bit flips of page 0 + region entry 0: %lu ECORRUPT, %lu ENOTSTORE, "
            "%lu EVERSION, %lu EABI, %lu in the unchecked pad (opened); %lu flips in unused "
            "region entries (opened); with a journal to replay: %lu recovered to txn %d, %lu "
            "refused; %.1f s\n",
            flips, by_code[0], by_code[1], by_code[2], by_code[4], pad, unused, a_ok, K, a_fail,
            (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * 7. Heap metadata damage: open works, mms_verify and `mms verify` refuse.
 * ------------------------------------------------------------------------ */
static uint64_t desc_off(uint32_t pg)
{
    uint32_t seg = pg / (uint32_t)MMS__SEG_PAGES;
    return ((uint64_t)seg << MMS__SEG_SHIFT) + (seg ? 0 : MMS__HDR_BYTES) +
           (uint64_t)(pg % MMS__SEG_PAGES) * sizeof(struct mms__desc);
}

static struct mms__desc desc_at(uint32_t pg)
{
    struct mms__desc d;
    memcpy(&d, imgB.reg.b + desc_off(pg), sizeof d);
    return d;
}

struct heapdamage {
    const char *what;
    uint64_t off;
    uint8_t bytes[16];
    size_t n;
    bool hdr_crc; /* a header field: fix the CRC so open accepts it */
};

/* In a child: the calls a program makes on a store it opened without
 * verifying it. Each may fail (MMS_ECORRUPT, MMS_EBADREF), none may crash
 * or claim a size past the heap. Returns the child's exit status. */
static int heap_api_child(const char *what)
{
    alarm(60);
    mms_store *s = NULL;
    if (mms_open(trial, opts(0), &s))
        return 3;
    const struct mms__hdr *h = (const void *)imgB.reg.b;
    const struct rootobj *ro = (const void *)(imgB.reg.b + MMS_REF_SLOT(h->root));
    mms_ref refs[1 + NPAY + NSMALL];
    int n = 0;
    refs[n++] = h->root;
    for (int p = 0; p < NPAY; p++)
        refs[n++] = ro->pay[p];
    for (int i = 0; i < NSMALL; i++)
        refs[n++] = ro->small[i];
    static mms_info in;
    OK(mms_info_get(s, &in));
    for (int i = 0; i < n; i++) {
        size_t sz = 0;
        fprintf(stderr, "      %s: mms_alloc_size(0x%llx)\n", what, (unsigned long long)refs[i]);
        int r = mms_alloc_size(s, refs[i], &sz);
        if (r == 0 && MMS_REF_SLOT(refs[i]) + sz > in.region_size[0]) {
            fprintf(stderr, "%s: mms_alloc_size(0x%llx) = %zu bytes, past the heap (%llu)\n",
                    what, (unsigned long long)refs[i], sz,
                    (unsigned long long)in.region_size[0]);
            return 4;
        }
    }
    if (mms_txn_begin(s, 0))
        return 3;
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "      %s: mms_free(0x%llx)\n", what, (unsigned long long)refs[i]);
        mms_free(s, refs[i]);
    }
    mms_txn_abort(s);
    mms_close(s);
    return 0;
}

/* Write B with the damage d, fixing the header CRC if asked. */
static void write_damaged(const struct heapdamage *d, bool fix_crc)
{
    image_write(&imgB, trial, SIZE_MAX);
    patch(trial, "region-0-0", d->off, d->bytes, d->n);
    if (fix_crc) {
        uint8_t hb[MMS__HDR_BYTES];
        memcpy(hb, imgB.reg.b, sizeof hb);
        memcpy(hb + d->off, d->bytes, d->n);
        struct mms__hdr *h = (struct mms__hdr *)(void *)hb;
        h->crc = mms__hdr_crc(h, (const struct mms__rent *)(void *)(hb + MMS__PAGE));
        patch(trial, "region-0-0", 0, hb, MMS__PAGE);
    }
}

/* B with the damage: open works, both verifiers refuse. */
static void heap_damage_check(const struct heapdamage *d)
{
    if (d->hdr_crc) {
        /* Without the fix the header CRC refuses it at open. */
        write_damaged(d, false);
        open_fails(trial, MMS_ECORRUPT, d->what);
    }
    write_damaged(d, d->hdr_crc);
    mms_store *s = open_ok(trial);
    char msg[512];
    msg[0] = 0;
    int r = mms_verify(s, msg, sizeof msg);
    if (r != MMS_ECORRUPT)
        FAILF("%s: mms_verify returned %d (%s), expected MMS_ECORRUPT", d->what, r,
              mms_strerror(r));
    if (!msg[0] || !mms_errdetail()[0])
        FAILF("%s: mms_verify gave no message", d->what);
    OK(mms_close(s));
    char cmd[700], out[2048];
    snprintf(cmd, sizeof cmd, "verify '%s'", trial);
    int st = run_tool(cmd, out, sizeof out);
    if (st != 1 || !out[0])
        FAILF("%s: `mms verify` exited %d with \"%s\", expected 1 and a message", d->what, st,
              out);
    fprintf(stderr, "   %-34s: %s", d->what, out);

}

/* B with the damage: the API on the damaged heap refuses or copes, it
 * never crashes. */
static void heap_damage_api_one(const struct heapdamage *d)
{
    int st;
    write_damaged(d, d->hdr_crc);
    char log[700];
    snprintf(log, sizeof log, "%s.apilog", trial);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(5);
        setvbuf(stderr, NULL, _IONBF, 0); /* the trace must survive a crash */
        _exit(heap_api_child(d->what));
    }
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char tail[800];
        snprintf(tail, sizeof tail, "tail -n 3 '%s' >&2", log);
        if (system(tail) != 0)
            fprintf(stderr, "(no trace)\n");
        if (WIFSIGNALED(st))
            FAILF("%s: a program using the damaged heap died of signal %d (%s) in the call "
                  "above; mms_verify finds the damage, the call should refuse it too",
                  d->what, WTERMSIG(st), strsignal(WTERMSIG(st)));
        FAILF("%s: the API child exited %d", d->what, WEXITSTATUS(st));
    }
    unlink(log);
}

static struct heapdamage dm[24];
static int ndm;

TEST(heap_metadata)
{
    double t0 = now_us();
    /* Find the objects of B. */
    const struct mms__hdr *h = (const void *)imgB.reg.b;
    const struct rootobj *ro = (const void *)(imgB.reg.b + MMS_REF_SLOT(h->root));
    ASSERT_EQ(ro->magic, ROOT_MAGIC);
    uint32_t pay_pg = (uint32_t)(MMS_REF_SLOT(ro->pay[0]) / MMS__PAGE);
    ASSERT_EQ(desc_at(pay_pg).kind, MMS__D_LARGE_HEAD);
    uint32_t root_pg = (uint32_t)(MMS_REF_SLOT(h->root) / MMS__PAGE);
    struct mms__desc rd = desc_at(root_pg);
    uint32_t slab_pg = rd.kind == MMS__D_SLAB_CONT ? root_pg - rd.len : root_pg;
    ASSERT_EQ(desc_at(slab_pg).kind, MMS__D_SLAB_HEAD);
    uint64_t slab_off = (uint64_t)slab_pg * MMS__PAGE;
    const struct mms__slab *sl = (const void *)(imgB.reg.b + slab_off);
    ASSERT_EQ(sl->magic, MMS__SLAB_MAGIC);
    ASSERT(sl->nfree > 0); /* a partial slab: on its class list */
    ASSERT_EQ(h->class_head[sl->cls], slab_pg);
    int bin = -1;
    for (int b = 0; b < MMS__NBIN; b++)
        if (h->bin_head[b])
            bin = b;
    ASSERT(bin >= 0);
    uint32_t span_pg = h->bin_head[bin];
    struct mms__desc sd = desc_at(span_pg);
    ASSERT_EQ(sd.kind, MMS__D_FREE_HEAD);
    ASSERT(sd.len > 1);

    int n = 0;
#define DM(w, o, crc, ...)                                                     \
    do {                                                                       \
        const uint8_t dmb_[] = {__VA_ARGS__};                                  \
        ASSERT_LT(n, (int)(sizeof dm / sizeof dm[0]));                         \
        dm[n] = (struct heapdamage){.what = (w), .off = (o), .n = sizeof dmb_, .hdr_crc = (crc)}; \
        memcpy(dm[n].bytes, dmb_, sizeof dmb_);                                \
        n++;                                                                   \
    } while (0)
    uint64_t po = desc_off(pay_pg);
    DM("large span: descriptor kind 99", po + offsetof(struct mms__desc, kind), false, 99);
    DM("large span: length 5000 pages", po + offsetof(struct mms__desc, len), false, 0x88, 0x13,
       0, 0);
    DM("large span: length 0", po + offsetof(struct mms__desc, len), false, 0, 0, 0, 0);
    DM("large span -> slab page, wild back offset", po, false, MMS__D_SLAB_CONT, 0, 0, 0,
       (uint8_t)(pay_pg + 1), (uint8_t)((pay_pg + 1) >> 8), (uint8_t)((pay_pg + 1) >> 16),
       (uint8_t)((pay_pg + 1) >> 24));
    DM("segment 0: kind huge", desc_off(0), false, MMS__S_HUGE);
    DM("metadata page marked free", desc_off(1), false, MMS__D_FREE_HEAD);
    DM("slab: magic", slab_off + offsetof(struct mms__slab, magic), false,
       (uint8_t)(sl->magic ^ 1));
    {
        /* Clear the bitmap bit of slot 0 (in use): bitmap and nfree differ. */
        uint64_t w0;
        memcpy(&w0, imgB.reg.b + slab_off + sizeof *sl, 8);
        ASSERT(w0 & 1); /* slot 0 is in use */
        DM("slab: bitmap bit cleared", slab_off + sizeof *sl, false, (uint8_t)(w0 & 0xfe));
    }
    DM("slab: free count + 1", slab_off + offsetof(struct mms__slab, nfree), false,
       (uint8_t)(sl->nfree + 1), (uint8_t)((sl->nfree + 1) >> 8));
    DM("slab list: cycle", desc_off(slab_pg) + offsetof(struct mms__desc, next), false,
       (uint8_t)slab_pg, (uint8_t)(slab_pg >> 8), (uint8_t)(slab_pg >> 16),
       (uint8_t)(slab_pg >> 24));
    DM("free span: bad tail", desc_off(span_pg + sd.len - 1) + offsetof(struct mms__desc, len),
       false, 7, 0, 0, 0);
    uint64_t lc = h->live_count + 1, fb = h->free_bytes - MMS__PAGE;
    DM("header: live_count + 1", offsetof(struct mms__hdr, live_count), true, (uint8_t)lc,
       (uint8_t)(lc >> 8), (uint8_t)(lc >> 16), (uint8_t)(lc >> 24), 0, 0, 0, 0);
    DM("header: free_bytes - 4096", offsetof(struct mms__hdr, free_bytes), true, (uint8_t)fb,
       (uint8_t)(fb >> 8), (uint8_t)(fb >> 16), (uint8_t)(fb >> 24), (uint8_t)(fb >> 32),
       (uint8_t)(fb >> 40), 0, 0);
    DM("header: free list -> a large span", offsetof(struct mms__hdr, bin_head) + 4 * (uint64_t)bin,
       true, (uint8_t)pay_pg, (uint8_t)(pay_pg >> 8), (uint8_t)(pay_pg >> 16),
       (uint8_t)(pay_pg >> 24));
    DM("header: slab list emptied", offsetof(struct mms__hdr, class_head) + 4 * (uint64_t)sl->cls,
       true, 0, 0, 0, 0);
    DM("header: free list -> page 1e9", offsetof(struct mms__hdr, bin_head) + 4 * (uint64_t)bin,
       true, 0x00, 0xca, 0x9a, 0x3b);
    DM("header: nclass 23", offsetof(struct mms__hdr, nclass), true, 23, 0, 0, 0);
#undef DM
    ndm = n;
    for (int i = 0; i < n; i++)
        heap_damage_check(&dm[i]);
    fprintf(stderr, "   %d kinds of heap damage found by mms_verify and `mms verify`; %.1f s\n",
            n, (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * 8. Random garbage; every trial in a child, which must exit, not die.
 * ------------------------------------------------------------------------ */
enum { X_ANY = -1 }; /* no expectation but "no crash" */

static bool changed_in(const struct blob *orig, const struct blob *cur, uint64_t lo, uint64_t hi)
{
    for (uint64_t i = lo; i < hi && i < cur->len; i++)
        if (orig->b[i] != cur->b[i])
            return true;
    return false;
}

/* Which state a damaged journal must give (0: open must fail with
 * MMS_ECORRUPT), from where the bytes changed. */
static int64_t journal_expect(bool is_a, const struct blob *cur)
{
    const uint64_t cov = offsetof(struct mms__jhdr, pad);
    if (is_a) {
        if (changed_in(&imgA.jrn, cur, 0, cov))
            return 0;
        for (int i = 0; i < K; i++) {
            const struct jgroup *g = &layA.g[i];
            if (changed_in(&imgA.jrn, cur, g->off, g->off + g->len - 4))
                return i + 1 < K ? 0 : K - 1;
        }
        return K;
    }
    if (!changed_in(&imgB.jrn, cur, 0, cov))
        return 5;
    if (changed_in(&imgB.jrn, cur, MMS__JSLOT, MMS__JSLOT + cov))
        return 0;
    for (int i = 0; i < layB.ngroups; i++)
        if (changed_in(&imgB.jrn, cur, layB.g[i].off, layB.g[i].off + layB.g[i].len - 4))
            return 0;
    return 5;
}

/* Read-only first, as `mms verify` opens: it may ask for recovery
 * (MMS_ERECOVER); otherwise it must agree with what is expected. */
static int garbage_child_rdonly(int64_t expect, bool must_fail, uint64_t want_txn,
                                const char *desc)
{
    mms_store *s = NULL;
    int r = mms_open(trial, opts(MMS_RDONLY), &s);
    if (r == MMS_ERECOVER)
        return 0;
    if (r) {
        if (!mms_errdetail()[0] || expect > 0) {
            fprintf(stderr, "%s: read-only open returned %s (%s)\n", desc, mms_strerror(r),
                    mms_errdetail());
            return 3;
        }
        return 0;
    }
    if (expect == 0 || must_fail) {
        fprintf(stderr, "%s: read-only open succeeded, expected an error\n", desc);
        return 3;
    }
    if (want_txn && mms_txn_id(s) != want_txn) {
        fprintf(stderr, "%s: read-only open gave txn %llu, expected %llu\n", desc,
                (unsigned long long)mms_txn_id(s), (unsigned long long)want_txn);
        return 3;
    }
    char msg[512];
    msg[0] = 0;
    const char *w = expect > 0 ? state_diff(s, (uint64_t)expect) : NULL;
    if (w) {
        fprintf(stderr, "%s: read-only: state is not that of txn %lld: %s\n", desc,
                (long long)expect, w);
        return 3;
    }
    r = mms_verify(s, msg, sizeof msg);
    if (r && !msg[0]) {
        fprintf(stderr, "%s: read-only mms_verify failed with no message\n", desc);
        return 3;
    }
    mms_close(s);
    return 0;
}

/* mms_alloc_size() on the refs a program would follow from the root: an
 * answer or an error, and never a size past the heap. */
static int garbage_refs(mms_store *s, const char *desc)
{
    static mms_info in;
    if (mms_info_get(s, &in))
        return 0;
    mms_ref refs[2 + NPAY + NSMALL + 2];
    int n = 0;
    refs[n++] = mms_root(s);
    const struct rootobj *ro = mms_ptr(s, mms_root(s));
    if (ro && mms_ptr(s, mms_root(s) + sizeof *ro - 1)) {
        for (int p = 0; p < NPAY; p++)
            refs[n++] = ro->pay[p];
        for (int i = 0; i < NSMALL; i++)
            refs[n++] = ro->small[i];
        refs[n++] = ro->junk[0];
        refs[n++] = ro->big;
    }
    for (int i = 0; i < n; i++) {
        size_t sz = 0;
        if (mms_alloc_size(s, refs[i], &sz) == 0 &&
            (MMS_REF_REGION(refs[i]) != 0 || MMS_REF_SLOT(refs[i]) + sz > in.region_size[0])) {
            fprintf(stderr, "%s: mms_alloc_size(0x%llx) = %zu, past the heap (%llu)\n", desc,
                    (unsigned long long)refs[i], sz, (unsigned long long)in.region_size[0]);
            return 3;
        }
    }
    return 0;
}

static int garbage_child(int64_t expect, bool must_fail, uint64_t want_txn, const char *desc)
{
    alarm(60);
    int rc = garbage_child_rdonly(expect, must_fail, want_txn, desc);
    if (rc)
        return rc;
    mms_store *s = NULL;
    int r = mms_open(trial, opts(0), &s);
    if (r) {
        if (!mms_errdetail()[0]) {
            fprintf(stderr, "%s: open failed (%s) with no detail\n", desc, mms_strerror(r));
            return 3;
        }
        if (expect > 0 || (expect == 0 && r != MMS_ECORRUPT)) {
            fprintf(stderr, "%s: open returned %s (%s), expected %s\n", desc,
                    mms_errname(r) ? mms_errname(r) : mms_strerror(r), mms_errdetail(),
                    expect ? "success" : "MMS_ECORRUPT");
            return 3;
        }
        return 0;
    }
    if (expect == 0 || must_fail) {
        fprintf(stderr, "%s: open succeeded at txn %llu, expected an error\n", desc,
                (unsigned long long)mms_txn_id(s));
        return 3;
    }
    if (want_txn && mms_txn_id(s) != want_txn) {
        fprintf(stderr, "%s: open gave txn %llu, expected %llu\n", desc,
                (unsigned long long)mms_txn_id(s), (unsigned long long)want_txn);
        return 3;
    }
    if (expect > 0) {
        const char *w = state_diff(s, (uint64_t)expect);
        if (w) {
            fprintf(stderr, "%s: state is not that of txn %lld: %s\n", desc, (long long)expect, w);
            return 3;
        }
    } else {
        char msg[512];
        msg[0] = 0;
        r = mms_verify(s, msg, sizeof msg);
        if (r && !msg[0]) {
            fprintf(stderr, "%s: mms_verify failed (%s) with no message\n", desc,
                    mms_strerror(r));
            return 3;
        }
    }
    if (garbage_refs(s, desc))
        return 3;
    mms_close(s);
    return 10; /* opened */
}

TEST(random_garbage)
{
    double t0 = now_us();
    /* Seeds of 150 trials: 4 in the release build, 2 under the sanitizers
     * (test.h); make test runs half of them (this case was 60% of the
     * program's time), make soak MMS_SOAK times all of them. */
    const char *e = getenv("MMS_SOAK");
    const int soak = e && *e ? (atoi(e) > 0 ? atoi(e) : 10) : 0;
    const int seeds = (SANITIZED ? 2 : 4) * (soak ? soak : 1) / (soak ? 1 : 2), per_seed = 150;
    unsigned long trials = 0, opened = 0, exact = 0, cli = 0;
    size_t most = imgA.reg.len;
    const size_t lens[] = {imgA.jrn.len, imgB.reg.len, imgB.jrn.len};
    for (size_t i = 0; i < 3; i++)
        most = lens[i] > most ? lens[i] : most;
    struct blob scratch = {malloc(most), 0};
    ASSERT(scratch.b);
    for (int seed = 1; seed <= seeds; seed++) {
        uint64_t x = (uint64_t)seed * 0x1234567;
        for (int t = 0; t < per_seed; t++) {
            bool is_a = rnd_next(&x) & 1, jrn = rnd_next(&x) & 1;
            const struct image *im = is_a ? &imgA : &imgB;
            const struct blob *orig = jrn ? &im->jrn : &im->reg;
            memcpy(scratch.b, orig->b, orig->len);
            scratch.len = orig->len;
            uint64_t hot = jrn ? (is_a ? layA.end : layB.end) + 256 : 12 * MMS__PAGE;
            int nr = 1 + (int)(rnd_next(&x) % 3);
            char desc[300];
            int dl = snprintf(desc, sizeof desc, "seed %d trial %d: %s %s", seed, t,
                              is_a ? "A" : "B", jrn ? "journal" : "region-0-0");
            for (int i = 0; i < nr; i++) {
                uint64_t off = rnd_next(&x) % 4 ? rnd_next(&x) % hot : rnd_next(&x) % orig->len;
                uint64_t len = 1 + rnd_next(&x) % (rnd_next(&x) % 4 ? 64 : 4096);
                if (off + len > orig->len)
                    len = orig->len - off;
                for (uint64_t k = 0; k < len; k++)
                    scratch.b[off + k] = (uint8_t)rnd_next(&x);
                if (dl < (int)sizeof desc - 40)
                    dl += snprintf(desc + dl, sizeof desc - (size_t)dl, " [%llu,+%llu)",
                                   (unsigned long long)off, (unsigned long long)len);
            }
            int64_t expect = X_ANY;
            bool must_fail = false;
            /* Region damage: a header that passes its CRC after recovery is
             * the header of the last commit, K (A) or 5 (B). */
            uint64_t want_txn = jrn ? 0 : is_a ? K : 5;
            if (jrn)
                expect = journal_expect(is_a, &scratch);
            else if (!is_a)
                /* No journal to replay: any change to the header page or
                 * region entry 0 (but the pad) must fail the CRC check. */
                must_fail = changed_in(orig, &scratch, 0, offsetof(struct mms__hdr, pad)) ||
                            changed_in(orig, &scratch, MMS__PAGE, MMS__PAGE + 16);
            image_write_with(im, trial, SIZE_MAX, jrn ? NULL : &scratch, jrn ? &scratch : NULL);
            if (t % 5 == 0) {
                /* The CLI on the same files: exit 0 or 1, never a signal. */
                char cmd[700], out[2048];
                snprintf(cmd, sizeof cmd, "verify '%s'", trial);
                int st = run_tool(cmd, out, sizeof out);
                if ((st != 0 && st != 1) || !out[0])
                    FAILF("%s: `mms verify` exited %d (\"%s\")", desc, st, out);
                cli++;
                /* It may have recovered the store: start again. */
                image_write_with(im, trial, SIZE_MAX, jrn ? NULL : &scratch,
                                 jrn ? &scratch : NULL);
            }
            fflush(stderr);
            pid_t pid = fork();
            ASSERT(pid >= 0);
            if (pid == 0)
                _exit(garbage_child(expect, must_fail, want_txn, desc));
            int st;
            ASSERT_EQ(waitpid(pid, &st, 0), pid);
            if (WIFSIGNALED(st))
                FAILF("%s: the child died of signal %d (%s)", desc, WTERMSIG(st),
                      strsignal(WTERMSIG(st)));
            if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 10))
                FAILF("%s: the child exited %d", desc, WEXITSTATUS(st));
            trials++;
            opened += WEXITSTATUS(st) == 10;
            if (expect > 0)
                exact++;
        }
    }
    free(scratch.b);
    ASSERT_EQ(trials, (unsigned long)(seeds * per_seed));
    fprintf(stderr, "   %lu trials in children (read-only open, then read-write), none died, %lu "
            "opened; %lu journal trials had to give an exact state and did; `mms verify` run on "
            "%lu of them; %.1f s\n", trials, opened, exact, cli, (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * Lost sector writes: a power failure can drop any 512-byte sector of a
 * journal write that was not synced yet. Zero each sector under the
 * groups of A, one at a time (the preallocated journal held zeros).
 * ------------------------------------------------------------------------ */
TEST(lost_sectors)
{
    double t0 = now_us();
    struct blob j = {malloc(imgA.jrn.len), imgA.jrn.len};
    ASSERT(j.b);
    memcpy(j.b, imgA.jrn.b, j.len);
    unsigned long n = 0, refused = 0, k1 = 0;
    for (uint64_t sec = 0; sec < layA.end; sec += 512) {
        uint64_t hi = sec + 512 < layA.end ? sec + 512 : layA.end;
        memset(j.b + sec, 0, hi - sec);
        int64_t want = journal_expect(true, &j);
        image_write_with(&imgA, trial, SIZE_MAX, NULL, &j);
        char what[80];
        snprintf(what, sizeof what, "journal sector at %llu zeroed", (unsigned long long)sec);
        if (want == 0) {
            open_fails(trial, MMS_ECORRUPT, what);
            refused++;
        } else {
            mms_store *s = open_ok(trial);
            CHECK_STATE(s, (uint64_t)want);
            OK(mms_close(s));
            k1 += want == K - 1;
        }
        memcpy(j.b + sec, imgA.jrn.b + sec, hi - sec);
        n++;
    }
    ASSERT_EQ(n, (layA.end + 511) / 512);
    ASSERT(k1 > 0 && refused > 0);
    free(j.b);
    fprintf(stderr, "   %lu sectors of [0, %llu) zeroed one at a time: %lu refused (slot 0 or an "
            "applied group), %lu recovered to txn %d (group %d), %lu outside both (txn %d); "
            "%.1f s\n", n, (unsigned long long)layA.end, refused, k1, K - 1, K,
            n - refused - k1, K, (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * A foreign journal that open adopted keeps the other store's header in
 * its other slot. If this store's own slot is then damaged, the journal
 * must not pass for foreign (and be skipped) while the region files are
 * half way through applying a commit of this store.
 * ------------------------------------------------------------------------ */
TEST(foreign_slot_fallback)
{
    double t0 = now_us();
    /* B's files with A's journal: open ignores it and writes a slot of its
     * own (A's other slot may stay). Txn 6 commits (it grows the heap);
     * txn 7 is killed right after its first page reached region 0 (the
     * header page is applied last, so it still names txn 6). */
    image_write_with(&imgB, trial, SIZE_MAX, NULL, &imgA.jrn);
    run_crashing_child(trial, "commit.apply:2", 6, 7, 0);
    struct image mid;
    image_load(&mid, trial);
    struct jlayout L;
    journal_parse(&mid.jrn, -1, &L, 0, NULL);
    const struct mms__hdr *ha = (const void *)imgA.reg.b, *hm = (const void *)mid.reg.b;
    ASSERT(memcmp(L.slot[L.cur].uuid, hm->uuid, 16) == 0);
    ASSERT_EQ(L.ngroups, 2);
    int other = 1 - L.cur;
    bool foreign_left = L.valid[other] && memcmp(L.slot[other].uuid, ha->uuid, 16) == 0;
    /* Half applied: commits apply the header page last, so after the first
     * page of txn 7 the header still says 6 while a data page holds 7. */
    ASSERT_EQ(hm->txn_id, 6);

    /* Both slots intact: recovery finishes txn 7. */
    image_write(&mid, trial, SIZE_MAX);
    mms_store *s = open_ok(trial);
    CHECK_STATE(s, 7);
    OK(mms_close(s));

    /* This store's slot damaged: the groups cannot be checked (their salt
     * is gone), so the only right answers are an error, or txn 7. */
    const uint64_t covered = offsetof(struct mms__jhdr, pad);
    unsigned long n = 0;
    for (uint64_t a = 0; a < covered; a += 4) {
        image_write(&mid, trial, SIZE_MAX);
        damage_slot(&mid, L.cur, 0, a);
        s = NULL;
        int r = mms_open(trial, opts(0), &s);
        if (r == 0) {
            const char *w = state_diff(s, 7);
            if (w)
                FAILF("own journal slot damaged (byte %llu; the other slot %s): open returned a "
                      "half-applied txn %llu (%s) -- the journal was taken for another store's "
                      "and skipped", (unsigned long long)a,
                      foreign_left ? "names the other store" : "is this store's",
                      (unsigned long long)mms_txn_id(s), w);
            OK(mms_close(s));
        } else {
            if (r != MMS_ECORRUPT || !mms_errdetail()[0])
                FAILF("own slot damaged: open returned %d (%s)", r, mms_strerror(r));
        }
        n++;
    }
    image_free(&mid);
    fprintf(stderr, "   %lu damaged own slots (the other slot %s), none gave a mixed state; "
            "%.1f s\n", n, foreign_left ? "still names the other store" : "is this store's",
            (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * The heap damage of heap_metadata, met by a program that opened the store
 * without verifying it: mms_alloc_size() and mms_free() on every object.
 * locate() checks a ref against the heap's metadata before it touches
 * anything ("refuses anything else (MMS_EBADREF) without touching the
 * heap"), so these calls may fail but must not crash, nor report a size
 * past the heap.
 * ------------------------------------------------------------------------ */
TEST(heap_damage_api)
{
    double t0 = now_us();
    ASSERT(ndm > 0);
    for (int i = 0; i < ndm; i++)
        heap_damage_api_one(&dm[i]);
    fprintf(stderr, "   %d kinds of heap damage: mms_alloc_size and mms_free on every object "
            "refused or coped; %.1f s\n", ndm, (now_us() - t0) / 1e6);
}

/* ------------------------------------------------------------------------
 * A root ref outside its region, in a header whose CRC matches (what a
 * stray store into page 0 before a commit stamps the CRC would leave).
 * mms_root_set() refuses such a ref (MMS_ERANGE), so it is damage: open
 * or mms_verify must report it, and `mms verify` must exit 1.
 * ------------------------------------------------------------------------ */
TEST(root_out_of_range)
{
    const struct mms__rent *rt = (const void *)(imgB.reg.b + MMS__PAGE);
    const mms_ref bad[] = {MMS_REF_MAKE(0, rt[0].size), MMS_REF_MAKE(0, (uint64_t)1 << 40),
                           MMS_REF_MAKE(5, 16), MMS_REF_MAKE(MMS_MAX_REGIONS - 1, 0)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t hb[MMS__HDR_BYTES];
        memcpy(hb, imgB.reg.b, sizeof hb);
        struct mms__hdr *e = (struct mms__hdr *)(void *)hb;
        e->root = bad[i];
        e->crc = mms__hdr_crc(e, (const struct mms__rent *)(void *)(hb + MMS__PAGE));
        image_write(&imgB, trial, SIZE_MAX);
        patch(trial, "region-0-0", 0, hb, MMS__PAGE);
        char what[100];
        snprintf(what, sizeof what, "root 0x%llx (heap is %llu bytes)",
                 (unsigned long long)bad[i], (unsigned long long)rt[0].size);
        mms_store *s = NULL;
        int r = mms_open(trial, opts(0), &s);
        if (r == 0) {
            char msg[512];
            msg[0] = 0;
            r = mms_verify(s, msg, sizeof msg);
            OK(mms_close(s));
            if (r != MMS_ECORRUPT || !msg[0])
                FAILF("%s: open succeeded and mms_verify returned %d (%s) \"%s\", expected "
                      "MMS_ECORRUPT", what, r, mms_strerror(r), msg);
        } else if (r != MMS_ECORRUPT || !mms_errdetail()[0]) {
            FAILF("%s: open returned %d (%s)", what, r, mms_strerror(r));
        }
        char cmd[700], out[2048];
        snprintf(cmd, sizeof cmd, "verify '%s'", trial);
        int st = run_tool(cmd, out, sizeof out);
        if (st != 1 || !out[0])
            FAILF("%s: `mms verify` exited %d (\"%s\"), expected 1", what, st, out);
        fprintf(stderr, "   %s: %s", what, out);
    }
}

/* A store file that is no regular file: a FIFO in its place blocked
 * mms_open for ever (the open of a FIFO waits for a writer), a link to
 * /dev/zero was read as data. Now each is MMS_ECORRUPT at once; an alarm
 * turns a hang into a failure. */
TEST(not_regular_files)
{
    static const char *const names[] = {"region-0-0", "journal", "lock"};
    alarm(60);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        for (int fifo = 0; fifo < 2; fifo++) {
            rmrf(trial);
            image_write(&imgB, trial, SIZE_MAX);
            char path[600], what[100];
            snprintf(path, sizeof path, "%s/%s", trial, names[i]);
            unlink(path);
            if (fifo)
                ASSERT_EQ(mkfifo(path, 0666), 0);
            else
                ASSERT_EQ(symlink("/dev/zero", path), 0);
            snprintf(what, sizeof what, "%s as %s", names[i], fifo ? "a FIFO" : "/dev/zero");
            open_fails(trial, MMS_ECORRUPT, what);
            /* The detail says which file and what is wrong with it (it
             * said "cannot open region file region-0-0: store is corrupt"). */
            char want[100];
            snprintf(want, sizeof want, "%s is not a regular file", names[i]);
            if (strcmp(names[i], "lock") == 0 && !fifo) /* refused for the link (below) */
                snprintf(want, sizeof want, "the lock file is a symbolic link");
            if (!strstr(mms_errdetail(), want))
                FAILF("%s: the detail \"%s\" does not say \"%s\"", what, mms_errdetail(),
                      want);
        }
    /* A table's region file too. */
    for (int fifo = 0; fifo < 2; fifo++) {
        rmrf(trial);
        char path[600], src[700];
        snprintf(path, sizeof path, "%s/store", trial);
        mkdir(trial, 0777);
        mms_store *s;
        OK(mms_open(path, opts(MMS_CREATE), &s));
        mms_table *t;
        static const mms_field f[] = {{.name = "v", .kind = MMS_KIND_U64, .offset = 0, .size = 8}};
        mms_schema sc = {.fields = f, .nfields = 1, .record_size = 8};
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "t", &sc, MMS_TABLE_CREATE, &t));
        OK(mms_txn_commit(s));
        OK(mms_close(s));
        snprintf(src, sizeof src, "%s/region-1-0", path);
        ASSERT_EQ(unlink(src), 0);
        if (fifo)
            ASSERT_EQ(mkfifo(src, 0666), 0);
        else
            ASSERT_EQ(symlink("/dev/zero", src), 0);
        open_fails(path, MMS_ECORRUPT, "region-1-0 not a file");
        if (!strstr(mms_errdetail(), "region-1-0 is not a regular file"))
            FAILF("region-1-0 as %s: the detail \"%s\" does not say what is wrong",
                  fifo ? "a FIFO" : "/dev/zero", mms_errdetail());
    }
    /* A lock file that is a link to a regular file: the first open
     * rebuilds the lock file, and so wrote over the file the link names
     * (a user's file outside the store). Refused, and that file intact. */
    char lock[600], target[600];
    static const char text[] = "id,name\n1,a user's file, not a lock file\n";
    snprintf(target, sizeof target, "%s.target", trial);
    for (int ro = 0; ro < 2; ro++) {
        rmrf(trial);
        image_write(&imgB, trial, SIZE_MAX);
        int fd = open(target, O_RDWR | O_CREAT | O_TRUNC, 0666);
        ASSERT(fd >= 0);
        ASSERT_EQ(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
        close(fd);
        snprintf(lock, sizeof lock, "%s/lock", trial);
        unlink(lock);
        ASSERT_EQ(symlink(target, lock), 0);
        mms_store *s = NULL;
        int r = mms_open(trial, opts(ro ? MMS_RDONLY : 0), &s);
        struct blob t;
        slurp(target, &t);
        if (t.len != sizeof text - 1 || memcmp(t.b, text, t.len) != 0)
            FAILF("lock as a link to a file (%s open): the file it names was changed "
                  "(now %zu bytes)", ro ? "read-only" : "read-write", t.len);
        free(t.b);
        ASSERT_EQ(r, MMS_ECORRUPT);
        ASSERT(strstr(mms_errdetail(), "lock file") && strstr(mms_errdetail(), "link"));
        ASSERT(s == NULL);
    }
    unlink(target);
    alarm(0);
    rmrf(trial);
}

/* ------------------------------------------------------------------------
 * A full file system (tmpfs, in a mount namespace of a child: root only).
 * The lock file is made with ftruncate, so all but the page a handle
 * writes first were holes; a store into a hole of a shared mapping on a
 * full file system is a SIGBUS, and on tmpfs a read is too. So a full disk
 * killed every open (mms_readers_path too) with SIGBUS where it must give
 * an error: found by this test.
 * ------------------------------------------------------------------------ */
static int full_child(const char *mnt)
{
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0)
        return 77;
    char dir[700], fill[700], lock[800];
    snprintf(dir, sizeof dir, "%s/store", mnt);
    snprintf(fill, sizeof fill, "%s/fill", mnt);
    snprintf(lock, sizeof lock, "%s/lock", dir);
    for (int kind = 0; kind < 2; kind++) {
        /* A (txn K to replay: the open recovers it) and B; the lock file as
         * a handle left it: its first page written, the rest holes. */
        const struct image *im = kind ? &imgB : &imgA;
        uint64_t want = kind ? 5 : K;
        rmrf(dir);
        image_write(im, dir, SIZE_MAX);
        int fd = open(lock, O_RDWR | O_CREAT | O_TRUNC, 0666);
        ASSERT(fd >= 0);
        ASSERT_EQ(pwrite(fd, "MMSLOCK1", 8, 0), 8);
        ASSERT_EQ(ftruncate(fd, 20480), 0);
        close(fd);
        fd = open(fill, O_RDWR | O_CREAT | O_TRUNC, 0666);
        ASSERT(fd >= 0);
        static char zeros[4096];
        while (write(fd, zeros, sizeof zeros) == (ssize_t)sizeof zeros)
            ;
        ASSERT_EQ(errno, ENOSPC);
        close(fd);
        mms_reader_info rd[4];
        size_t n;
        ASSERT_EQ(mms_readers_path(dir, rd, 4, &n), 0);
        for (int ro = 0; ro < 2; ro++) {
            mms_store *s = NULL;
            int r = mms_open(dir, opts(ro ? MMS_RDONLY : 0), &s);
            if (r == 0) { /* possible only if nothing needed a block */
                const char *st = state_diff(s, want);
                if (st)
                    FAILF("full tmpfs, image %c: %s", kind ? 'B' : 'A', st);
                OK(mms_close(s));
                continue;
            }
            if (r != -ENOSPC || !strstr(mms_errdetail(), "lock file"))
                FAILF("full tmpfs, image %c, %s open: %d %s (%s), expected -ENOSPC naming "
                      "the lock file", kind ? 'B' : 'A', ro ? "read-only" : "read-write", r,
                      mms_strerror(r), mms_errdetail());
        }
        /* Space again: the store is whole, at its last commit. */
        unlink(fill);
        mms_store *s = open_ok(dir);
        const char *st = state_diff(s, want);
        if (st)
            FAILF("tmpfs with space again, image %c: %s", kind ? 'B' : 'A', st);
        OK(mms_close(s));
    }
    umount(mnt);
    return 0;
}

/* Image C on a full tmpfs, a page of unapplied groups a hole,
 * and every zero page of the files a hole too (put_file writes none): a
 * mapped hole is a SIGBUS at its first touch there, where recovery reads
 * the journal. The open must fail with a code naming the damage. */
static int hole_child(const char *mnt, const struct image *im, const struct jlayout *L)
{
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=16m") < 0)
        return 77;
    char dir[700], fill[700], lock[800], jp[800];
    snprintf(dir, sizeof dir, "%s/store", mnt);
    snprintf(fill, sizeof fill, "%s/fill", mnt);
    snprintf(lock, sizeof lock, "%s/lock", dir);
    snprintf(jp, sizeof jp, "%s/journal", dir);
    image_write(im, dir, SIZE_MAX);
    /* The lock file allocated, so the open gets as far as the journal. */
    static char zeros[20480];
    int fd = open(lock, O_RDWR | O_CREAT | O_TRUNC, 0666);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
    close(fd);
    /* The first page wholly past the applied groups; the first group it
     * touches is the damaged one; the last group lies past it (so does
     * the COMMIT record before it). */
    uint64_t page = mms__round_up(L->g[2].off, MMS__PAGE);
    const struct jgroup *g = &L->g[2];
    while (g->off + g->len <= page)
        g++;
    ASSERT_GE(L->g[KC - 1].off - sizeof(struct mms__jcommit), page + MMS__PAGE);
    fd = open(jp, O_RDWR);
    ASSERT(fd >= 0);
    ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)page, MMS__PAGE), 0);
    close(fd);
    fd = open(fill, O_RDWR | O_CREAT | O_TRUNC, 0666);
    ASSERT(fd >= 0);
    while (write(fd, zeros, 4096) == 4096)
        ;
    ASSERT_EQ(errno, ENOSPC);
    close(fd);
    mms_store *s = NULL;
    int r = mms_open(dir, opts(0), &s);
    fprintf(stderr, "   full tmpfs, a hole at journal offset %llu: %s (%s)\n",
            (unsigned long long)page, mms_strerror(r), mms_errdetail());
    char txn[64];
    snprintf(txn, sizeof txn, "txn %llu", (unsigned long long)g->txn);
    if (r != MMS_ECORRUPT || !strstr(mms_errdetail(), txn))
        FAILF("expected MMS_ECORRUPT naming %s (the hole reads as zeros)", txn);
    unlink(fill);
    umount(mnt);
    return 0;
}

TEST(journal_hole_full_disk)
{
    struct image imC;
    struct jlayout L;
    build_image_c(&imC, &L);
    char mnt[600];
    snprintf(mnt, sizeof mnt, "%s-hole", trial);
    if (mkdir(mnt, 0777) < 0 && errno != EEXIST)
        FAILF("mkdir %s: %s", mnt, strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            _exit(77);
        exit(hole_child(mnt, &imC, &L));
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    rmdir(mnt);
    image_free(&imC);
    if (WIFSIGNALED(st))
        FAILF("recovering a journal with a hole on a full tmpfs, the child died of signal %d "
              "(%s): an unreadable page must be an error, never a signal", WTERMSIG(st),
              strsignal(WTERMSIG(st)));
    ASSERT(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        fprintf(stderr, "SKIP: cannot mount tmpfs (not root)\n");
    else
        ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* Image C (commits to replay), the Nth pread of the open failing with EIO,
 * for N = 1..16 (more than an open makes): each open fails with -EIO and
 * says what it could not read, or (a read it can do without, such as the
 * probe of the journal's first group) opens at txn KC. The read of the
 * journal itself names it and the offsets. */
TEST(journal_read_error)
{
    struct image imC;
    struct jlayout L;
    build_image_c(&imC, &L);
    int journal_named = 0, failed = 0;
    for (int nth = 1; nth <= 16; nth++) {
        image_write(&imC, trial, SIZE_MAX);
        unlink_in(trial, "lock");
        int pfd[2];
        ASSERT(pipe(pfd) == 0);
        fflush(NULL);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            char f[32];
            snprintf(f, sizeof f, "pread:%d:%d", nth, EIO);
            setenv("MMS_FAULT", f, 1);
            mms_store *s = NULL;
            int r = mms_open(trial, opts(0), &s);
            char msg[600];
            int n = snprintf(msg, sizeof msg, "%d %s", r,
                             r ? mms_errdetail() : state_diff(s, KC) ? state_diff(s, KC) : "");
            ASSERT_EQ(write(pfd[1], msg, (size_t)n), n);
            _exit(0);
        }
        close(pfd[1]);
        char msg[600] = {0};
        ssize_t got = read(pfd[0], msg, sizeof msg - 1);
        close(pfd[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got > 0);
        int r = atoi(msg);
        const char *detail = strchr(msg, ' ') + 1;
        if (r == 0 && *detail)
            FAILF("pread %d failing: opened, but not at txn %d: %s", nth, KC, detail);
        if (r != 0 && (r != -EIO || !*detail))
            FAILF("pread %d failing: open gave %s, expected -EIO and a detail", nth, msg);
        failed += r != 0;
        if (strstr(detail, "cannot read the journal between offsets") && !journal_named++)
            fprintf(stderr, "   pread %d failing: %s\n", nth, detail);
    }
    ASSERT_EQ(journal_named, 1);
    fprintf(stderr, "   16 preads made failing in turn: %d opens failed with -EIO\n", failed);
    image_free(&imC);
}

TEST(full_disk_lock)
{
    char mnt[600];
    snprintf(mnt, sizeof mnt, "%s-full", trial);
    if (mkdir(mnt, 0777) < 0 && errno != EEXIST)
        FAILF("mkdir %s: %s", mnt, strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            _exit(77);
        exit(full_child(mnt));
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    rmdir(mnt);
    if (WIFSIGNALED(st))
        FAILF("on a full tmpfs the child died of signal %d (%s): a full disk must be an "
              "error, never a signal", WTERMSIG(st), strsignal(WTERMSIG(st)));
    ASSERT(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        fprintf(stderr, "SKIP: cannot mount tmpfs (not root)\n");
    else
        ASSERT_EQ(WEXITSTATUS(st), 0);
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 5, "DIR CRASH FIRST LAST CREATE");
    if (a)
        return child_commit(a[0], a[1], strtoull(a[2], NULL, 10), strtoull(a[3], NULL, 10),
                            atoi(a[4]));
    double t0 = now_us();
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): every case is
     * about the bytes an open finds, none about what a sync reaches; the
     * full disk cases mount a tmpfs of their own. On the disk, the syncs
     * of the thousands of recovering opens were a third of its time. */
    signal(SIGABRT, shm_on_abort);
    trial = shm_tpath("corrupt-trial");
    RUN(crc32c_check_value);
    RUN(build_images);
    RUN(torn_tail);
    RUN(flip_last_group);
    RUN(flip_applied_group);
    RUN(damaged_unapplied);
    RUN(journal_header);
    RUN(region_files);
    RUN(store_header);
    RUN(heap_metadata);
    RUN(lost_sectors);
    RUN(random_garbage);
    RUN(not_regular_files);
    RUN(full_disk_lock);
    RUN(journal_hole_full_disk);
    RUN(journal_read_error);
    /* Last: these expose library bugs (see their comments). */
    RUN(heap_damage_api);
    RUN(foreign_slot_fallback);
    RUN(root_out_of_range);
    image_free(&imgA);
    image_free(&imgB);
    rmrf(trial);
    shm_cleanup();
    fprintf(stderr, "all done in %.1f s\n", (now_us() - t0) / 1e6);
    return 0;
}

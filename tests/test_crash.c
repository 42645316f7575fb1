/*
 * test_crash.c -- crash tests: real child processes killed with SIGKILL.
 *
 * A deterministic workload runs in a child process against a store; the
 * parent kills the child, reopens the store (recovery) and checks it against
 * an in-memory model rebuilt from nothing but the workload seed.
 *
 * THE WORKLOAD
 *
 * Transaction k (k = 1, 2, ...) is a pure function of (seed, k) and of the
 * model state after k-1. The store's root object holds the counter k of the
 * last committed workload transaction and the ref of a table of NSLOT
 * entries {ref, size, seed, npatch}. A transaction runs a few random ops on
 * the table: allocate an object (small, large, sometimes > 4 MiB so the heap
 * grows into fresh space), free one, rewrite all its bytes, patch a few of
 * them, realloc it, store bytes over themselves (dirty pages that did not
 * change), allocate and free a temporary object, move the root or the table
 * to a new allocation. An object's bytes are a pure function of its model
 * entry (fill() of its seed, then its patches), so the parent can rebuild
 * every byte. Attempt a of transaction k aborts instead of committing when
 * abort_attempt(seed, k, a) says so; the committed attempt is the first that
 * does not, so the model replays aborts without a store. Checkpoints happen
 * when the workload says (explicit) and when the journal passes
 * checkpoint_bytes (automatic, inside commit).
 *
 * THE CHILD is this program exec'd again (test.h's child harness: a forked
 * child would inherit the parent's crash point state and ignore MMS_CRASH).
 * The parent sets MMS_CRASH / MMS_DIRTY for it. The child publishes in the
 * shared page where it is (opening, in ops, committing, checkpointing, ...),
 * the counter it found at open, "committing k" before mms_txn_commit and
 * "committed k" after it returns.
 *
 * THE PARENT kills the child after a random delay (random items), or lets
 * it run with MMS_CRASH=<point>:<n> so that the library kills itself inside
 * commit, checkpoint or recovery (crash items). Then it reopens the store and
 * checks:
 *   - the counter c: c == committed, or c == committing when the kill hit
 *     mms_txn_commit; exactly one of them for crash points whose outcome the
 *     protocol fixes (before the journal write: the old state; after the
 *     journal sync, or in a checkpoint: the new one);
 *   - the txn id is c + 1 (one setup transaction, no empty commits);
 *   - every table entry against the model rebuilt for c, byte for byte;
 *   - heap_objects == live entries + 2 (root, table), heap_used == the sum
 *     of the usable sizes, and no two live allocations overlap;
 *   - mms_verify(), and the `mms verify` tool (which recovers the store
 *     itself when it runs first).
 * Some children are not followed by the parent's check: the next child then
 * recovers the store, and the counter it finds at open is checked against
 * the expected range. Chains "A killed right after a journal sync, B killed
 * inside the replay (or in the checkpoint that ends it), sometimes C killed
 * in the replay again, then a random child" check that interrupted
 * recoveries still reach exactly A's last commit.
 *
 * Kills inside a commit that grows the heap (Invariant 1 and the SIZE
 * records) are rare by chance, so they are also aimed: a probe child runs
 * the workload on a copy of the store (on tmpfs) and reports which of its
 * first 100 commits grew the heap first; the target child, from the same state,
 * gets MMS_CRASH at that commit (the workload and the allocator are
 * deterministic). An old store's heap rarely grows any more; then a new
 * store is started.
 *
 * Phases: default durability, MMS_NOSYNC (SIGKILL is a process crash, which
 * NOSYNC survives), and the pagemap dirty backend (MMS_DIRTY=pagemap in the
 * child) alternating both modes. The first runs on the disk, the others on
 * tmpfs, where a process crash leaves what it leaves on a disk and syncs
 * cost nothing; the placement case checks that the library does the same
 * there ("Where the stores live"). MMS_SOAK=N multiplies the iteration counts
 * (the sanitizer build makes half the random kills, test.h, and make test,
 * without MMS_SOAK, half of those); MMS_SEED=S
 * reruns a seed (kill timing still varies). The coverage counts
 * printed at the end are asserted: kills must land in commits, in each crash
 * point, in checkpoints, in recovery and in growing commits.
 */
#include "test.h"

#include <endian.h>
#include <sys/resource.h>

#include "internal.h" /* struct mms__hdr: to show what an interrupted replay left */

/* ------------------------------------------------------------------------
 * Workload and model
 * ------------------------------------------------------------------------ */
#define NSLOT 48
#define MAXPATCH 4
#define NFIXED 2 /* root and table */
#define MAXHUGE 3
#define HUGE_MIN ((uint64_t)1020 * 4096 + 1) /* more than a normal segment holds */
#define ROOT_MAGIC UINT64_C(0x544f4f5248534352)

struct patch {
    uint64_t off, len, seed;
};
struct mentry {
    uint64_t size, seed; /* size 0: empty slot */
    uint32_t npatch;
    struct patch p[MAXPATCH];
};
struct model {
    struct mentry e[NSLOT];
    uint32_t nlive, nhuge;
};

/* In the store. */
struct sentry {
    mms_ref ref;
    uint64_t size, seed, npatch;
};
struct sroot {
    uint64_t magic, counter, seed, nlive;
    mms_ref table;
};

/* Inlined even at -O0 (the sanitizer build): fill() calls word_at() for
 * every 8 bytes of every object the children write and the parent checks. */
#define HOT static inline __attribute__((always_inline))

HOT uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t hash3(uint64_t seed, uint64_t a, uint64_t b)
{
    return mix(seed ^ mix(a * 0x9e3779b97f4a7c15u + mix(b + 0x632be59bd9b4e019u)));
}

/* Byte i of the content of seed is byte i%8 of word_at(seed, i/8). */
HOT uint64_t word_at(uint64_t seed, uint64_t w)
{
    return mix(seed + w * 0x9e3779b97f4a7c15u);
}

/* Bytes [from, to) of seed's content into dst (dst[0] is byte from). The
 * whole words go through a buffer, one memcpy per KiB: byte stores cost the
 * sanitizer build a check each. */
static void fill(uint8_t *dst, uint64_t seed, uint64_t from, uint64_t to)
{
    uint64_t i = from, w[128];
    for (; i < to && (i & 7); i++)
        *dst++ = (uint8_t)(word_at(seed, i >> 3) >> ((i & 7) * 8));
    while (to - i >= 8) {
        uint64_t n = (to - i) / 8 < 128 ? (to - i) / 8 : 128;
        for (uint64_t k = 0; k < n; k++)
            w[k] = htole64(word_at(seed, (i >> 3) + k));
        memcpy(dst, w, n * 8);
        dst += n * 8;
        i += n * 8;
    }
    for (; i < to; i++)
        *dst++ = (uint8_t)(word_at(seed, i >> 3) >> ((i & 7) * 8));
}

/* Bytes [from, to) of a model entry's expected content into dst: its
 * seed's, then its patches' in order. */
static void expected(const struct mentry *e, uint8_t *dst, uint64_t from, uint64_t to)
{
    fill(dst, e->seed, from, to);
    for (uint32_t j = 0; j < e->npatch; j++) {
        uint64_t lo = e->p[j].off > from ? e->p[j].off : from;
        uint64_t hi = e->p[j].off + e->p[j].len < to ? e->p[j].off + e->p[j].len : to;
        if (lo < hi)
            fill(dst + (lo - from), e->p[j].seed, lo, hi);
    }
}

static int is_huge(uint64_t size)
{
    return size >= HUGE_MIN;
}

static uint64_t pick_size(uint64_t *x, int allow_huge)
{
    uint64_t r = rnd_next(x) % 1000;
    if (r < 550)
        return 1 + rnd_next(x) % 2048;
    if (r < 900)
        return 2049 + rnd_next(x) % (62 << 10);
    if (r < 970)
        return (64 << 10) + rnd_next(x) % (960 << 10);
    if (allow_huge)
        return HUGE_MIN + rnd_next(x) % (8 << 20); /* 2 to 4 units */
    return 1 + rnd_next(x) % 4096;
}

static int abort_attempt(uint64_t wseed, uint64_t k, unsigned a)
{
    return a < 3 && hash3(wseed, k, 1000 + a) % 8 == 0;
}

static int checkpoint_after(uint64_t wseed, uint64_t k)
{
    return hash3(wseed, k, 2000) % 16 == 0;
}

/* ------------------------------------------------------------------------
 * Shared page: what the child publishes for the parent.
 * ------------------------------------------------------------------------ */
enum { W_START, W_OPEN, W_OPS, W_ABORT, W_COMMIT, W_CHECKPOINT, W_IDLE, W_CLOSE, W_DONE, W_N };
static const char *const where_name[W_N] = {"start", "open",  "ops",   "abort", "commit",
                                            "checkpoint", "idle", "close", "done"};

#define NTRACE 40
struct shared {
    uint64_t opened, start, committing, committed;
    uint64_t where, grew, backend, ncommit, nabort, nckpt, ngrew, firstgrow;
    /* What the library did at each of the child's first NTRACE commits
     * (mms_info's last_commit): the placement case compares them. */
    struct trace {
        uint64_t dirty, changed, journal, heap;
    } trace[NTRACE];
};
static struct shared *sh; /* test.h's child_page() */
static unsigned soak = 1;
static uint64_t base_seed; /* MMS_SEED */

/* What a failure report says about where we were (printed on abort()). */
static char context[768];

/* CPU seconds of this process and of its children that ended, user +
 * system: printed with each case's wall time, to show what waits. */
static double cpu_s(void)
{
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    return (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
                    kids.ru_stime.tv_sec) +
           (self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
            kids.ru_stime.tv_usec) / 1e6;
}

/* ------------------------------------------------------------------------
 * Where the stores live.
 *
 * A SIGKILL ends a process, not the machine: the page cache outlives it,
 * so what a killed child leaves is the same whether its fdatasyncs reached
 * a disk or returned at once. Power loss, where they matter, is
 * test_power's (scenarios commit, recover-synced, recover-unsynced and
 * nosync, in both modes). Here the syncs, and the writeback they wait
 * for, took half of this test's time: 142 s on the disk, 71 s with every
 * store on tmpfs (release build, MMS_SEED=1234). So each case says where
 * its stores live:
 *
 *   disk   (MMS_TEST_TMP) phase_sync. The default mode syncs at every
 *          commit (fresh data, then the journal), and its crash points
 *          sit right after those syncs: this phase keeps them on the kind
 *          of file system a store lives on, where a sync writes back pages
 *          that the child also maps (shared fresh space, private
 *          committed data), and the kills land around them.
 *   tmpfs  phase_nosync, phase_pagemap, the carry cases and the probes of
 *          run_grow. Their point is recovery: from kills in NOSYNC, with
 *          the pagemap backend, in a replay across a carry, and the probe
 *          only finds which commit grows the heap.
 *
 * tmpfs stands in for the disk only while the library does there what it
 * does on the disk: the same fallocate'd space, the same copy-on-write
 * pages found by PAGEMAP_SCAN and by /proc/self/pagemap (a tmpfs page is
 * file-backed, as an ext4 one is), the same journal groups. The placement
 * case checks that, commit by commit, in the four modes the tmpfs cases
 * use; if it fails, the tmpfs cases must move to the disk.
 *
 * The tmpfs directory is test.h's shm_tpath(): MMS_TEST_SHM, else one of
 * this run's own in /dev/shm (removed at the end, and on a failure: it is
 * memory; MMS_TEST_SHM keeps a failed run's stores), else the disk.
 * ------------------------------------------------------------------------ */
static void on_abort(int sig)
{
    (void)sig;
    ssize_t n = write(2, context, strlen(context));
    if (shm_own) {
        shm_cleanup();
        static const char note[] = "  (the stores on tmpfs are removed; MMS_TEST_SHM=DIR "
                                   "keeps them)\n";
        n = write(2, note, sizeof note - 1);
    }
    (void)n;
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
}

/* ------------------------------------------------------------------------
 * One transaction's ops. With s == NULL only the model changes (replay);
 * with a store the same choices are made on the store. Every random draw is
 * made whatever s is, so both sides see the same sequence.
 * ------------------------------------------------------------------------ */
static struct sroot *sroot(mms_store *s)
{
    return mms_deref(s, mms_root(s));
}

static struct sentry *stable(mms_store *s)
{
    return mms_deref(s, sroot(s)->table);
}

static void clip_patches(struct mentry *e)
{
    uint32_t n = 0;
    for (uint32_t j = 0; j < e->npatch; j++) {
        struct patch p = e->p[j];
        if (p.off >= e->size)
            continue;
        if (p.len > e->size - p.off)
            p.len = e->size - p.off;
        e->p[n++] = p;
    }
    e->npatch = n;
}

static unsigned long root_moves; /* counts root moves, model or store */

static void run_ops(struct model *m, uint64_t wseed, uint64_t k, unsigned a, mms_store *s)
{
    uint64_t x = hash3(wseed, k, a);
    unsigned nops = rnd_next(&x) % 16 == 0 ? 8 + rnd_next(&x) % 24 : 1 + rnd_next(&x) % 5;
    for (unsigned j = 0; j < nops; j++) {
        unsigned i = rnd_next(&x) % NSLOT;
        unsigned r = rnd_next(&x) % 100;
        struct mentry *e = &m->e[i];
        struct sentry *t = s ? &stable(s)[i] : NULL;
        if (t && (t->size != e->size || t->seed != e->seed || t->npatch != e->npatch))
            FAILF("child: slot %u is {size %llu, seed %llx} in the store, {%llu, %llx} in the "
                  "model (txn %llu)", i, (unsigned long long)t->size, (unsigned long long)t->seed,
                  (unsigned long long)e->size, (unsigned long long)e->seed,
                  (unsigned long long)k);
        if (r < 2) { /* move the root object */
            root_moves++;
            if (s) {
                mms_ref old = mms_root(s), nr;
                OK(mms_alloc(s, sizeof(struct sroot), &nr));
                memcpy(mms_deref(s, nr), mms_deref(s, old), sizeof(struct sroot));
                OK(mms_root_set(s, nr));
                OK(mms_free(s, old));
            }
            continue;
        }
        if (r < 4) { /* move the table */
            if (s) {
                mms_ref old = sroot(s)->table, nt;
                OK(mms_alloc(s, NSLOT * sizeof(struct sentry), &nt));
                memcpy(mms_deref(s, nt), mms_deref(s, old), NSLOT * sizeof(struct sentry));
                sroot(s)->table = nt;
                OK(mms_free(s, old));
            }
            continue;
        }
        if (r < 7) { /* a temporary object, freed in the same transaction */
            uint64_t size = pick_size(&x, m->nhuge < MAXHUGE), seed = rnd_next(&x);
            if (s) {
                mms_ref tr;
                OK(mms_alloc(s, size, &tr));
                fill(mms_deref(s, tr), seed, 0, size);
                OK(mms_free(s, tr));
            }
            continue;
        }
        if (e->size == 0) { /* allocate */
            uint64_t size = pick_size(&x, m->nhuge < MAXHUGE), seed = rnd_next(&x);
            if (s) {
                mms_ref ref;
                OK(mms_alloc(s, size, &ref));
                fill(mms_deref(s, ref), seed, 0, size);
                t = &stable(s)[i];
                *t = (struct sentry){ref, size, seed, 0};
                sroot(s)->nlive++;
            }
            e->size = size;
            e->seed = seed;
            e->npatch = 0;
            m->nlive++;
            m->nhuge += is_huge(size);
        } else if (r < 25) { /* free */
            if (s) {
                OK(mms_free(s, t->ref));
                memset(t, 0, sizeof *t);
                sroot(s)->nlive--;
            }
            m->nlive--;
            m->nhuge -= is_huge(e->size);
            memset(e, 0, sizeof *e);
        } else if (r < 40 || (r < 70 && e->npatch == MAXPATCH)) { /* rewrite all */
            uint64_t seed = rnd_next(&x);
            if (s) {
                fill(mms_deref(s, t->ref), seed, 0, e->size);
                t->seed = seed;
                t->npatch = 0;
            }
            e->seed = seed;
            e->npatch = 0;
        } else if (r < 70) { /* patch a few bytes */
            uint64_t off = rnd_next(&x) % e->size;
            uint64_t room = e->size - off, pick = rnd_next(&x) % 8;
            uint64_t cap = pick < 5 ? 8 : pick < 7 ? 64 : 10000;
            uint64_t len = 1 + rnd_next(&x) % (room < cap ? room : cap);
            uint64_t seed = rnd_next(&x);
            if (s) {
                fill((uint8_t *)mms_deref(s, t->ref) + off, seed, off, off + len);
                t->npatch++;
            }
            e->p[e->npatch++] = (struct patch){off, len, seed};
        } else if (r < 85) { /* realloc */
            uint64_t size = pick_size(&x, m->nhuge - is_huge(e->size) < MAXHUGE);
            if (s) {
                mms_ref ref = t->ref;
                OK(mms_realloc(s, &ref, size));
                if (size > e->size)
                    fill((uint8_t *)mms_deref(s, ref) + e->size, e->seed, e->size, size);
                size_t usable;
                OK(mms_alloc_size(s, ref, &usable));
                ASSERT_GE(usable, size);
                t = &stable(s)[i];
                t->ref = ref;
                t->size = size;
            }
            m->nhuge += is_huge(size) - is_huge(e->size);
            e->size = size;
            clip_patches(e);
            if (t)
                t->npatch = e->npatch;
        } else { /* store the same bytes again: dirty pages that did not change */
            uint64_t off = rnd_next(&x) % e->size, room = e->size - off;
            uint64_t len = 1 + rnd_next(&x) % (room < 12288 ? room : 12288);
            if (s) {
                volatile uint8_t *p = (volatile uint8_t *)mms_deref(s, t->ref) + off;
                for (uint64_t b = 0; b < len; b++)
                    p[b] = p[b];
            }
        }
    }
    if (s)
        sroot(s)->counter = k;
}

/* The model after transaction c, from nothing but the seed. */
static void model_build(struct model *m, uint64_t wseed, uint64_t c)
{
    memset(m, 0, sizeof *m);
    for (uint64_t k = 1; k <= c; k++) {
        unsigned a = 0;
        while (abort_attempt(wseed, k, a))
            a++;
        run_ops(m, wseed, k, a, NULL);
    }
}

/* ------------------------------------------------------------------------
 * Items: what one child runs, and how it ends.
 * ------------------------------------------------------------------------ */
/* K_PROBE and K_RUN run to their limit, K_PROBE only until a commit grows
 * the heap (run_grow); K_RUN is the placement case's. */
enum { K_RANDOM, K_CRASH, K_GROW, K_PROBE, K_RUN };

struct item {
    int kind;
    char crash[64];     /* MMS_CRASH for crash items */
    int point;          /* K_GROW: the commit point to hit in a growing commit */
    int grow_target;    /* a K_CRASH item made by K_GROW */
    unsigned limit;     /* crash items: transactions before a clean close */
    unsigned delay_us;  /* random items */
    int in_open;        /* random items: delay counted from the start of mms_open,
                           not from its end */
    int verify;         /* parent checks the store after this child */
    int nosync, pagemap;
    uint64_t grow_step, ckpt_bytes;
};

struct phase {
    const char *name;
    int mode;    /* 0 default durability, 1 NOSYNC, 2 alternate per child */
    int pagemap; /* MMS_DIRTY=pagemap in the children */
    int shm;     /* the store lives on tmpfs ("Where the stores live") */
    unsigned nrandom, nchains, ngrow; /* ngrow: growing-commit targets per commit point */
    const unsigned *nvals; /* n values for each commit/checkpoint crash point */
    unsigned nnvals;
    char path[512];
    uint64_t wseed;
    unsigned epoch; /* a new store (and workload seed) per epoch */
};

static const char *const commit_points[] = {"commit.fresh_synced", "commit.journal_write",
                                            "commit.journal_synced", "commit.apply",
                                            "checkpoint.synced", "checkpoint.before_header"};
#define NPOINTS 6
#define P_RECOVER NPOINTS /* recover.group */

/* Coverage counters. */
static struct {
    unsigned long random, random_where[W_N], random_commit_new, random_commit_old,
        random_grew, chained;
    unsigned long crash_landed[NPOINTS + 1], crash_missed[NPOINTS + 1];
    unsigned long ckpt_auto, ckpt_explicit, ckpt_close, ckpt_open, grew_in_crash;
    unsigned long grow_landed[4], grow_unavailable;
    unsigned long verified, tool_runs, tool_recovered, commits, aborts, checkpoints, grew;
    unsigned long backend_pagemap, backend_scan;
} cov;

/* The counter values the store may hold now. */
struct expect {
    uint64_t lo, hi;
};

/* A kill inside mms_txn_commit may keep or lose that commit; count both. */
static void resolve(const struct expect *ex, uint64_t c)
{
    if (ex->lo != ex->hi)
        c == ex->hi ? cov.random_commit_new++ : cov.random_commit_old++;
}

/* ------------------------------------------------------------------------
 * Child
 * ------------------------------------------------------------------------ */
struct child_args {
    const char *path;
    uint64_t wseed, grow_step, ckpt_bytes;
    unsigned limit;
    int nosync, probe; /* probe: stop after the first commit that grows the heap */
    unsigned sync_ms;  /* mms_options.sync_ms (0: the default) */
};

static void child_main(const struct child_args *ca)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = ca->nosync ? MMS_NOSYNC : 0;
    o.grow_step = ca->grow_step;
    o.checkpoint_bytes = ca->ckpt_bytes;
    o.sync_ms = ca->sync_ms;
    mms_store *s;
    PUB(sh->where, W_OPEN);
    OK(mms_open(ca->path, &o, &s));
    mms_info *info = malloc(sizeof *info);
    ASSERT(info);
    OK(mms_info_get(s, info));
    PUB(sh->backend, info->dirty_backend);
    struct sroot *rt = mms_ptr(s, mms_root(s));
    ASSERT(rt);
    ASSERT_EQ(rt->magic, ROOT_MAGIC);
    uint64_t c = rt->counter;
    static struct model m, tmp;
    model_build(&m, ca->wseed, c);
    PUB(sh->start, c);
    PUB(sh->committed, c);
    PUB(sh->committing, c);
    PUB(sh->where, W_IDLE);
    PUB(sh->opened, 1);

    for (uint64_t k = c + 1; ca->limit == 0 || k <= c + ca->limit; k++) {
        for (unsigned a = 0;; a++) {
            int ab = abort_attempt(ca->wseed, k, a);
            OK(mms_info_get(s, info));
            uint64_t size0 = info->region_size[0];
            PUB(sh->where, W_OPS);
            OK(mms_txn_begin(s, 0));
            if (ab) {
                tmp = m;
                run_ops(&tmp, ca->wseed, k, a, s);
                PUB(sh->where, W_ABORT);
                OK(mms_txn_abort(s));
                PUB(sh->nabort, GET(sh->nabort) + 1);
                /* An abort undoes everything, allocations included. */
                OK(mms_info_get(s, info));
                ASSERT_EQ(info->heap_objects, m.nlive + NFIXED);
                ASSERT_EQ(sroot(s)->counter, k - 1);
                continue;
            }
            run_ops(&m, ca->wseed, k, a, s);
            OK(mms_info_get(s, info)); /* inside the txn: this txn's region sizes */
            PUB(sh->grew, info->region_size[0] > size0);
            PUB(sh->where, W_COMMIT);
            PUB(sh->committing, k);
            OK(mms_txn_commit(s));
            PUB(sh->committed, k);
            PUB(sh->where, W_IDLE);
            PUB(sh->ncommit, GET(sh->ncommit) + 1);
            PUB(sh->ngrew, GET(sh->ngrew) + GET(sh->grew));
            OK(mms_info_get(s, info));
            ASSERT_EQ(info->heap_objects, m.nlive + NFIXED);
            if (GET(sh->ncommit) <= NTRACE)
                sh->trace[GET(sh->ncommit) - 1] =
                    (struct trace){info->last_commit.pages_dirty, info->last_commit.pages_changed,
                                   info->last_commit.journal_bytes, info->region_size[0]};
            if (ca->probe && GET(sh->grew)) {
                PUB(sh->firstgrow, GET(sh->ncommit));
                _exit(0);
            }
            break;
        }
        if (checkpoint_after(ca->wseed, k)) {
            PUB(sh->where, W_CHECKPOINT);
            OK(mms_checkpoint(s));
            PUB(sh->where, W_IDLE);
            PUB(sh->nckpt, GET(sh->nckpt) + 1);
        }
    }
    PUB(sh->where, W_CLOSE);
    OK(mms_close(s));
    PUB(sh->where, W_DONE);
    free(info);
    _exit(0);
}

/* ------------------------------------------------------------------------
 * Parent: checking a store against the model
 * ------------------------------------------------------------------------ */
struct span {
    uint64_t off, len;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static void tool_verify(const char *path, int before_open)
{
    char args[600], out[4096];
    snprintf(args, sizeof args, "verify '%s'", path);
    int st = run_tool(args, out, sizeof out);
    if (st != 0)
        FAILF("`mms verify` exited %d:\n%s", st, out);
    cov.tool_runs++;
    cov.tool_recovered += before_open;
}

static uint64_t check_store(const struct phase *ph, struct expect ex)
{
    mms_store *s = open_flags(ph->path, 0);
    struct sroot *rt = mms_ptr(s, mms_root(s));
    ASSERT(rt);
    ASSERT_EQ(rt->magic, ROOT_MAGIC);
    ASSERT_EQ(rt->seed, ph->wseed);
    uint64_t c = rt->counter;
    if (c < ex.lo || c > ex.hi)
        FAILF("the store holds txn %llu of the workload; expected %llu..%llu",
              (unsigned long long)c, (unsigned long long)ex.lo, (unsigned long long)ex.hi);
    ASSERT_EQ(mms_txn_id(s), c + 1);

    static struct model m;
    model_build(&m, ph->wseed, c);
    const struct sentry *t = mms_ptr(s, rt->table);
    ASSERT(t);
    struct span sp[NSLOT + NFIXED];
    unsigned nsp = 0;
    uint64_t used = 0;
    size_t usable;
    OK(mms_alloc_size(s, mms_root(s), &usable));
    ASSERT_GE(usable, sizeof(struct sroot));
    sp[nsp++] = (struct span){mms_root(s), usable};
    used += usable;
    OK(mms_alloc_size(s, rt->table, &usable));
    ASSERT_GE(usable, NSLOT * sizeof(struct sentry));
    sp[nsp++] = (struct span){rt->table, usable};
    used += usable;

    uint32_t nlive = 0;
    for (unsigned i = 0; i < NSLOT; i++) {
        const struct mentry *e = &m.e[i];
        if (e->size == 0) {
            if (t[i].ref != MMS_REF_NULL || t[i].size != 0)
                FAILF("slot %u: empty in the model, {ref 0x%llx, size %llu} in the store", i,
                      (unsigned long long)t[i].ref, (unsigned long long)t[i].size);
            continue;
        }
        nlive++;
        if (t[i].size != e->size || t[i].seed != e->seed || t[i].npatch != e->npatch)
            FAILF("slot %u: {size %llu, seed %llx, %llu patches} in the store, {%llu, %llx, %u} "
                  "in the model", i, (unsigned long long)t[i].size, (unsigned long long)t[i].seed,
                  (unsigned long long)t[i].npatch, (unsigned long long)e->size,
                  (unsigned long long)e->seed, e->npatch);
        OK(mms_alloc_size(s, t[i].ref, &usable));
        ASSERT_GE(usable, e->size);
        sp[nsp++] = (struct span){t[i].ref, usable};
        used += usable;
        const uint8_t *p = mms_ptr(s, t[i].ref);
        ASSERT(p);
        uint8_t want[4096];
        for (uint64_t at = 0; at < e->size; at += sizeof want) {
            uint64_t n = e->size - at < sizeof want ? e->size - at : sizeof want, d = 0;
            expected(e, want, at, at + n);
            if (memcmp(p + at, want, n) == 0)
                continue;
            while (p[at + d] == want[d])
                d++;
            FAILF("slot %u (ref 0x%llx, %llu bytes): byte %llu is 0x%02x, expected 0x%02x", i,
                  (unsigned long long)t[i].ref, (unsigned long long)e->size,
                  (unsigned long long)(at + d), p[at + d], want[d]);
        }
    }
    ASSERT_EQ(nlive, m.nlive);
    ASSERT_EQ(rt->nlive, m.nlive);
    mms_info *info = malloc(sizeof *info);
    ASSERT(info);
    OK(mms_info_get(s, info));
    ASSERT_EQ(info->heap_objects, m.nlive + NFIXED);
    ASSERT_EQ(info->heap_used, used);
    ASSERT_EQ(info->txn_id, c + 1);
    free(info);
    qsort(sp, nsp, sizeof sp[0], span_cmp);
    for (unsigned i = 1; i < nsp; i++)
        if (sp[i - 1].off + sp[i - 1].len > sp[i].off)
            FAILF("allocations 0x%llx (+%llu) and 0x%llx overlap",
                  (unsigned long long)sp[i - 1].off, (unsigned long long)sp[i - 1].len,
                  (unsigned long long)sp[i].off);
    verify_ok(s);
    OK(mms_close(s));
    cov.verified++;
    return c;
}

static void setup_store(struct phase *ph, unsigned pidx)
{
    ph->wseed = hash3(base_seed, pidx, ph->epoch);
    rmrf(ph->path);
    mms_store *s = open_flags(ph->path, MMS_CREATE | MMS_EXCL);
    OK(mms_txn_begin(s, 0));
    mms_ref root, table;
    OK(mms_zalloc(s, sizeof(struct sroot), &root));
    OK(mms_zalloc(s, NSLOT * sizeof(struct sentry), &table));
    struct sroot *rt = mms_deref(s, root);
    rt->magic = ROOT_MAGIC;
    rt->seed = ph->wseed;
    rt->table = table;
    OK(mms_root_set(s, root));
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_txn_id(s), 1);
    OK(mms_close(s));
}

/* ------------------------------------------------------------------------
 * Parent: running one item
 * ------------------------------------------------------------------------ */
static int point_index(const char *crash)
{
    for (int p = 0; p < NPOINTS; p++)
        if (strncmp(crash, commit_points[p], strlen(commit_points[p])) == 0 &&
            crash[strlen(commit_points[p])] == ':')
            return p;
    if (strncmp(crash, "recover.group:", 14) == 0)
        return P_RECOVER;
    FAILF("unknown crash point %s", crash);
}

/* Run one child; update the expectation. Returns 1 if it was killed. */
static int run_item(const struct phase *ph, const struct item *it, struct expect *ex)
{
    memset(sh, 0, sizeof *sh);
    /* The child is this program again, exec'd: a new process image reads
     * MMS_CRASH afresh. */
    char a_seed[24], a_limit[24], a_nosync[24], a_grow[24], a_ckpt[24], a_probe[8], a_sync[24];
    snprintf(a_seed, sizeof a_seed, "%llu", (unsigned long long)ph->wseed);
    snprintf(a_limit, sizeof a_limit, "%u", it->kind == K_RANDOM ? 0 : it->limit);
    snprintf(a_probe, sizeof a_probe, "%d", it->kind == K_PROBE);
    /* K_RUN: in NOSYNC the journal is synced by checkpoints only, not
     * also when a commit is 100 ms old, and the page tables are never
     * trimmed, rather than after slow scans: what the library does at each
     * commit (the held pages) must not depend on the clock. */
    snprintf(a_sync, sizeof a_sync, "%u", it->kind == K_RUN ? 3600000u : 0u);
    snprintf(a_nosync, sizeof a_nosync, "%d", it->nosync);
    snprintf(a_grow, sizeof a_grow, "%llu", (unsigned long long)it->grow_step);
    snprintf(a_ckpt, sizeof a_ckpt, "%llu", (unsigned long long)it->ckpt_bytes);
    const char *args[] = {ph->path, a_seed,  a_limit, a_nosync, a_grow,
                          a_ckpt,   a_probe, a_sync,  NULL};
    const char *trim = it->kind == K_RUN ? "18446744073709551615" : getenv("MMS_TRIM_SCAN_NS");
    const char *env[] = {"MMS_CRASH", it->kind == K_CRASH ? it->crash : NULL,
                         "MMS_DIRTY", it->pagemap ? "pagemap" : NULL,
                         "MMS_TRIM_SCAN_NS", trim, NULL};
    pid_t pid = child_spawn(args, env);
    int st = 0;
    if (it->kind == K_RANDOM) {
        if (it->in_open)
            AWAIT(GET(sh->where) >= W_OPEN, pid, 60, "the child did not begin to open in 60 s");
        else
            AWAIT(GET(sh->opened), pid, 60, "the child did not open the store within 60 s");
        sleep_us(it->delay_us);
        ASSERT_EQ(kill(pid, SIGKILL), 0);
    }
    /* A child that runs to its limit takes well under a second; one that
     * has not ended after a minute hangs (a library bug: report where). */
    if (!child_end(pid, 60, &st))
        FAILF("the child hung for 60 s at '%s' after %llu commits (committing txn %llu)",
              where_name[GET(sh->where) < W_N ? GET(sh->where) : 0],
              (unsigned long long)GET(sh->ncommit), (unsigned long long)GET(sh->committing));

    uint64_t where = GET(sh->where);
    ASSERT_LT(where, W_N);
    int killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    if (!killed && !(it->kind != K_RANDOM && WIFEXITED(st) && WEXITSTATUS(st) == 0))
        FAILF("the child ended with status 0x%x (%s %d) at '%s'", st,
              WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
              where_name[where]);
    cov.commits += GET(sh->ncommit);
    cov.grew += GET(sh->ngrew);
    cov.aborts += GET(sh->nabort);
    cov.checkpoints += GET(sh->nckpt);
    if (GET(sh->opened)) {
        unsigned b = (unsigned)GET(sh->backend);
        if (it->pagemap)
            ASSERT_EQ(b, MMS_DIRTY_PAGEMAP);
        b == MMS_DIRTY_PAGEMAP ? cov.backend_pagemap++ : cov.backend_scan++;
    }

    /* What the child found at open must be what the last child left. */
    uint64_t opened = GET(sh->opened), start = GET(sh->start);
    uint64_t cd = GET(sh->committed), cg = GET(sh->committing);
    if (opened && (start < ex->lo || start > ex->hi))
        FAILF("the child's recovery found txn %llu of the workload; expected %llu..%llu",
              (unsigned long long)start, (unsigned long long)ex->lo, (unsigned long long)ex->hi);
    if (opened) {
        resolve(ex, start);
        if (cd == cg) {
            ex->lo = ex->hi = cd;
        } else {
            ASSERT_EQ(cg, cd + 1);
            ASSERT_EQ(where, W_COMMIT);
            ex->lo = cd;
            ex->hi = cg;
        }
    }

    if (it->kind == K_PROBE || it->kind == K_RUN) {
        ASSERT(!killed);
        return 0;
    }
    if (it->kind == K_RANDOM) {
        cov.random++;
        cov.random_where[where]++;
        if (where == W_COMMIT && GET(sh->grew))
            cov.random_grew++;
        return killed;
    }
    int p = point_index(it->crash);
    if (!killed) {
        if (it->grow_target)
            FAILF("the commit that grew the heap in the probe copy did not reach %s here",
                  it->crash);
        cov.crash_missed[p]++;
        return 0;
    }
    cov.crash_landed[p]++;
    if (p == P_RECOVER) {
        /* Killed inside recovery: the store must still recover to the
         * state the previous child left. */
        ASSERT_EQ(opened, 0);
        ASSERT_EQ(where, W_OPEN);
        return 1;
    }
    if (p <= 3) {
        /* Inside commit k: before the journal write the old state survives,
         * after the journal sync the new one (Invariants 2 and 3). */
        ASSERT_EQ(opened, 1);
        ASSERT_EQ(where, W_COMMIT);
        ASSERT_EQ(cg, cd + 1);
        if (p <= 1)
            ex->hi = cd;
        else
            ex->lo = cg;
        cov.grew_in_crash += GET(sh->grew) != 0;
        if (it->grow_target) {
            /* The workload and the allocator are deterministic: the probe's
             * growing commit is this one. */
            ASSERT_EQ(GET(sh->grew), 1);
            cov.grow_landed[p]++;
        }
        return 1;
    }
    /* Inside a checkpoint: every commit before it is durable. */
    if (!opened) {
        ASSERT_EQ(where, W_OPEN); /* the checkpoint that ends recovery */
        cov.ckpt_open++;
        return 1;
    }
    ASSERT(where == W_COMMIT || where == W_CHECKPOINT || where == W_CLOSE);
    ex->lo = ex->hi = cg;
    if (where == W_COMMIT)
        cov.ckpt_auto++;
    else if (where == W_CHECKPOINT)
        cov.ckpt_explicit++;
    else
        cov.ckpt_close++;
    return 1;
}

/* A kill inside a commit that grows the heap (Invariant 1, SIZE records),
 * at one of the four commit points. Which commit grows depends on the
 * allocator, so a probe child runs the workload on a copy of the store and
 * reports the first commit that grew; the target child then runs from the
 * same state with MMS_CRASH=<point>:<that commit>. */
/* In MMS_NOSYNC a commit is applied when its journal group is synced, not
 * inside mms_txn_commit: it never reaches commit.apply. */
static bool grow_applicable(const struct item *it)
{
    return !(it->nosync && strcmp(commit_points[it->point], "commit.apply") == 0);
}

static int run_grow(const struct phase *ph, const struct item *it, struct expect *ex)
{
    struct phase probe = *ph;
    snprintf(probe.path, sizeof probe.path, "%s", shm_tpath("probe"));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp -a --sparse=always '%s' '%s'", ph->path, probe.path);
    if (system(cmd) != 0)
        FAILF("%s failed", cmd);
    struct item pi = *it;
    pi.kind = K_PROBE;
    /* An old store's heap that grows at all mostly does so within 75
     * commits (10 of 14 probes that found growth; 4, 7, 10, 25, 27, 37,
     * 37, 52, 55, 63, 67, 75, 101, 180); a probe that finds none costs
     * its whole limit, and a new store grows at once. */
    pi.limit = 100;
    pi.nosync = 1; /* the same commits as the target, faster */
    struct expect pex = *ex;
    run_item(&probe, &pi, &pex);
    uint64_t m = GET(sh->firstgrow);
    rmrf(probe.path);
    if (m == 0) {
        cov.grow_unavailable++;
        return 0;
    }
    struct item ti = *it;
    ti.kind = K_CRASH;
    ti.grow_target = 1;
    snprintf(ti.crash, sizeof ti.crash, "%s:%llu", commit_points[it->point], (unsigned long long)m);
    ti.limit = (unsigned)m + 5;
    run_item(ph, &ti, ex);
    return 1;
}

/* ------------------------------------------------------------------------
 * Phases
 * ------------------------------------------------------------------------ */
struct group {
    struct item it[4];
    unsigned n;
};

static void item_common(const struct phase *ph, struct item *it, uint64_t *x, unsigned idx)
{
    static const uint64_t grow[] = {0, 1 << 20, 4 << 20, 16 << 20};
    static const uint64_t ckpt[] = {64 << 10, 256 << 10, 256 << 10, 1 << 20};
    it->nosync = ph->mode == 2 ? (int)(idx & 1) : ph->mode;
    it->pagemap = ph->pagemap;
    it->grow_step = grow[rnd_next(x) % 4];
    it->ckpt_bytes = ckpt[rnd_next(x) % 4];
    it->verify = 1;
}

static void run_phase(struct phase *ph, unsigned pidx)
{
    double t0 = now_us(), c0 = cpu_s();
    snprintf(ph->path, sizeof ph->path, "%s", ph->shm ? shm_tpath(ph->name) : tpath(ph->name));
    ph->epoch = 0;
    setup_store(ph, pidx);
    uint64_t x = hash3(base_seed, pidx, 77);

    unsigned cap = ph->nrandom + NPOINTS * ph->nnvals * soak + ph->nchains + 4 * ph->ngrow;
    struct group *g = calloc(cap, sizeof *g);
    ASSERT(g);
    unsigned ng = 0, idx = 0;
    for (unsigned i = 0; i < ph->nrandom; i++, ng++) {
        struct item *it = &g[ng].it[0];
        g[ng].n = 1;
        item_common(ph, it, &x, idx++);
        it->kind = K_RANDOM;
        it->in_open = rnd_next(&x) % 5 == 0;
        /* In open: mostly inside mms_open (recovery), which took 0.9, 2.2
         * and 11 ms (10th, 50th, 90th percentiles; ASan 1.9, 4.8, 10).
         * Counted from fork, as they were, a fifth of all the random kills
         * (the ASan build's exec is slower) hit the child before it
         * reached the library. */
        it->delay_us = (unsigned)(rnd_next(&x) % (it->in_open ? 4001 : 30001));
        it->verify = rnd_next(&x) % 4 != 0; /* else the next child recovers it */
    }
    for (unsigned p = 0; p < NPOINTS; p++)
        for (unsigned v = 0; v < ph->nnvals * soak; v++, ng++) {
            struct item *it = &g[ng].it[0];
            g[ng].n = 1;
            item_common(ph, it, &x, idx++);
            unsigned n = v < ph->nnvals && ph->nvals[v] ? ph->nvals[v]
                                                        : 1 + (unsigned)(rnd_next(&x) % 40);
            it->kind = K_CRASH;
            snprintf(it->crash, sizeof it->crash, "%s:%u", commit_points[p], n);
            it->limit = p < 4 ? n + 10 : 40 * n + 100;
        }
    for (unsigned i = 0; i < ph->nchains; i++, ng++) {
        /* A: killed right after a journal sync, leaving groups to replay;
         * B: killed inside that replay, or in the checkpoint that ends it;
         * sometimes C: killed in the replay again; then a random child
         * that recovers, which must find exactly A's last commit. */
        struct item *a = &g[ng].it[0], *b = &g[ng].it[1];
        g[ng].n = rnd_next(&x) % 2 ? 4 : 3;
        item_common(ph, a, &x, idx++);
        a->kind = K_CRASH;
        unsigned m = 4 + (unsigned)(rnd_next(&x) % 16);
        snprintf(a->crash, sizeof a->crash, "commit.journal_synced:%u", m);
        a->limit = m + 10;
        a->ckpt_bytes = 8 << 20;
        a->verify = 0;
        item_common(ph, b, &x, idx++);
        b->kind = K_CRASH;
        if (i % 2)
            snprintf(b->crash, sizeof b->crash, "checkpoint.before_header:1");
        else
            snprintf(b->crash, sizeof b->crash, "recover.group:%u",
                     1 + (unsigned)(rnd_next(&x) % 3));
        b->limit = 10;
        b->verify = 0;
        if (g[ng].n == 4) {
            struct item *c2 = &g[ng].it[2];
            item_common(ph, c2, &x, idx++);
            c2->kind = K_CRASH;
            snprintf(c2->crash, sizeof c2->crash, "recover.group:1");
            c2->limit = 10;
            c2->verify = 0;
        }
        struct item *c = &g[ng].it[g[ng].n - 1];
        item_common(ph, c, &x, idx++);
        c->kind = K_RANDOM;
        c->delay_us = (unsigned)(rnd_next(&x) % 30001);
    }
    for (unsigned p = 0; p < 4; p++)
        for (unsigned i = 0; i < ph->ngrow; i++, ng++) {
            struct item *it = &g[ng].it[0];
            g[ng].n = 1;
            item_common(ph, it, &x, idx++);
            it->kind = K_GROW;
            it->point = (int)p;
            snprintf(it->crash, sizeof it->crash, "%s in a growing commit", commit_points[p]);
        }
    ASSERT_EQ(ng, cap);
    for (unsigned i = ng; i > 1; i--) { /* shuffle the groups */
        unsigned j = (unsigned)(rnd_next(&x) % i);
        struct group t = g[i - 1];
        g[i - 1] = g[j];
        g[j] = t;
    }
    g[ng - 1].it[g[ng - 1].n - 1].verify = 1;

    struct expect ex = {0, 0};
    unsigned chain = 0, step = 0, grow_done[4] = {0};
    for (unsigned i = 0; i < ng; i++)
        for (unsigned j = 0; j < g[i].n; j++, step++) {
            struct item *it = &g[i].it[j];
            if (chain >= 3 && j + 1 == g[i].n)
                it->verify = 1; /* at most a few children in a row recover */
            char what[96];
            if (it->kind == K_RANDOM)
                snprintf(what, sizeof what, "random kill %u us after %s", it->delay_us,
                         it->in_open ? "mms_open began" : "open");
            else
                snprintf(what, sizeof what, "MMS_CRASH=%s", it->crash);
            snprintf(context, sizeof context,
                     "\n  context: phase %s, store %u, seed %llu (MMS_SEED), child %u: %s, %s, "
                     "dirty %s, grow_step %llu, checkpoint_bytes %llu; before it the store held "
                     "workload txn %llu..%llu\n",
                     ph->name, ph->epoch, (unsigned long long)base_seed, step, what,
                     it->nosync ? "NOSYNC" : "sync", it->pagemap ? "pagemap" : "default",
                     (unsigned long long)it->grow_step, (unsigned long long)it->ckpt_bytes,
                     (unsigned long long)ex.lo, (unsigned long long)ex.hi);
            if (it->kind == K_GROW && !grow_applicable(it)) {
                cov.grow_unavailable++;
            } else if (it->kind == K_GROW) {
                if (run_grow(ph, it, &ex)) {
                    grow_done[it->point]++;
                } else if (!grow_done[it->point]) {
                    /* The heap of an old store has room for the workload
                     * and rarely grows; a new store grows within a few
                     * commits. */
                    ph->epoch++;
                    setup_store(ph, pidx);
                    ex.lo = ex.hi = 0;
                    if (!run_grow(ph, it, &ex))
                        FAILF("no commit grew the heap of a new store");
                    grow_done[it->point]++;
                }
            } else {
                run_item(ph, it, &ex);
            }
            if (!it->verify) {
                chain++;
                cov.chained++;
                continue;
            }
            chain = 0;
            int tool_first = step % 8 == 3, tool_after = step % 8 == 7;
            if (tool_first)
                tool_verify(ph->path, 1);
            uint64_t c = check_store(ph, ex);
            resolve(&ex, c);
            ex.lo = ex.hi = c;
            if (tool_after)
                tool_verify(ph->path, 0);
        }
    free(g);
    fprintf(stderr, "   phase %-8s: %u children, %u stores, last one reached txn %llu; %.1f s, "
            "%.1f s CPU\n", ph->name, step, ph->epoch + 1, (unsigned long long)ex.lo,
            (now_us() - t0) / 1e6, cpu_s() - c0);
    rmrf(ph->path);
}

/* ------------------------------------------------------------------------
 * Interrupted recovery across a carry of the txn id's low byte.
 *
 * A journal group carries only the bytes its commit changed: the header's
 * txn id going from 0x0fe to 0x0ff writes one byte, from 0x0ff to 0x100 two.
 * Replaying an epoch's first groups over region files that had already
 * reached a later commit therefore leaves a header whose txn id mixes bytes
 * of both (0x1fd: the low byte of 0x0fd, the next byte of 0x101). The data
 * is fine -- the next full replay rewrites every byte in order -- but the
 * next open must not take that mix for the txn the files reached.
 *
 * Set up exactly: a new store; child A commits until store txn C + 1 (C a
 * multiple of 256) and is killed right after that commit's journal sync, so
 * the files are at C and the journal's epoch holds groups from before the
 * carry to C + 1; child B is killed in its recovery after replaying the
 * epoch's first group; then the store must open and hold workload txn C.
 * No automatic checkpoints (checkpoint_bytes is huge); C is chosen so that
 * no explicit checkpoint starts the epoch at C - 1 or later, and the first
 * group neither crosses a carry itself nor moves the root (its diff run
 * would then cover the whole txn id).
 * ------------------------------------------------------------------------ */
static int txn_moves_root(uint64_t wseed, uint64_t k)
{
    static struct model m;
    model_build(&m, wseed, k - 1);
    unsigned a = 0;
    while (abort_attempt(wseed, k, a))
        a++;
    unsigned long before = root_moves;
    run_ops(&m, wseed, k, a, NULL);
    return root_moves != before;
}

static void carry_case(int nosync)
{
    double t0 = now_us(), c0 = cpu_s();
    struct phase ph = {.name = nosync ? "carry_nosync" : "carry_sync", .mode = nosync, .shm = 1};
    snprintf(ph.path, sizeof ph.path, "%s", shm_tpath(ph.name));
    setup_store(&ph, 10 + (unsigned)nosync); /* workload txn k is store txn k + 1 */
    uint64_t C = 256, first = 0;
    for (;; C += 256) {
        if (checkpoint_after(ph.wseed, C - 2) || checkpoint_after(ph.wseed, C - 1))
            continue;
        first = 1; /* workload txn of the epoch's first group */
        for (uint64_t k = C - 3; k >= 1; k--)
            if (checkpoint_after(ph.wseed, k)) {
                first = k + 1;
                break;
            }
        if ((first + 1) % 256 >= 2 && !txn_moves_root(ph.wseed, first))
            break;
    }
    struct expect ex = {0, 0};
    struct item a = {0};
    a.kind = K_CRASH;
    a.nosync = nosync;
    a.ckpt_bytes = UINT64_C(1) << 40;
    snprintf(a.crash, sizeof a.crash, "commit.journal_synced:%llu", (unsigned long long)C);
    a.limit = (unsigned)C + 10;
    snprintf(context, sizeof context, "\n  context: carry case (%s), seed %llu (MMS_SEED), "
             "child A: MMS_CRASH=%s\n", ph.name, (unsigned long long)base_seed, a.crash);
    ASSERT_EQ(run_item(&ph, &a, &ex), 1);
    ASSERT_EQ(ex.lo, C);
    ASSERT_EQ(ex.hi, C);

    struct item b = a;
    snprintf(b.crash, sizeof b.crash, "recover.group:2");
    b.limit = 10;
    snprintf(context, sizeof context, "\n  context: carry case (%s), seed %llu (MMS_SEED), "
             "child B: MMS_CRASH=%s after A was killed at store txn %llu\n", ph.name,
             (unsigned long long)base_seed, b.crash, (unsigned long long)C + 1);
    ASSERT_EQ(run_item(&ph, &b, &ex), 1);

    char file[600];
    snprintf(file, sizeof file, "%s/region-0-0", ph.path);
    struct mms__hdr h;
    int fd = open(file, O_RDONLY);
    ASSERT(fd >= 0);
    ASSERT_EQ(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
    snprintf(context, sizeof context,
             "\n  context: carry case (%s), seed %llu (MMS_SEED): A was killed after the journal "
             "sync of store txn %llu (0x%llx), the files at txn %llu; B was killed in recovery "
             "after replaying the epoch's first group (store txn %llu). The region header now "
             "says txn %llu (0x%llx); opening the store must still recover workload txn %llu\n",
             ph.name, (unsigned long long)base_seed, (unsigned long long)C + 1,
             (unsigned long long)C + 1, (unsigned long long)C, (unsigned long long)first + 1,
             (unsigned long long)h.txn_id, (unsigned long long)h.txn_id, (unsigned long long)C);
    uint64_t c = check_store(&ph, ex);
    ASSERT_EQ(c, C);
    tool_verify(ph.path, 0);
    rmrf(ph.path);
    fprintf(stderr, "   carry case %-6s: store txn %llu, replay interrupted after txn %llu, "
            "header then said %llu; recovered; %.1f s, %.1f s CPU\n", nosync ? "nosync" : "sync",
            (unsigned long long)C + 1, (unsigned long long)first + 1,
            (unsigned long long)h.txn_id, (now_us() - t0) / 1e6, cpu_s() - c0);
}

/* ------------------------------------------------------------------------
 * Cases: the three phases, the coverage they must reach together, the two
 * carry cases. MMS_TEST_SKIP=a,b skips cases (to time one; skip coverage
 * with any phase, its counts need all three).
 * ------------------------------------------------------------------------ */
static const unsigned nv_full[] = {1, 2, 3, 5, 8, 0};
static const unsigned nv_short[] = {1, 0};
/* The phases, with their counts for MMS_SOAK=1. Where each one's store
 * lives: "Where the stores live". */
static const struct phase phases[] = {
    {.name = "sync", .mode = 0, .pagemap = 0, .shm = 0, .nrandom = 110, .nchains = 4, .ngrow = 2,
     .nvals = nv_full, .nnvals = 6},
    {.name = "nosync", .mode = 1, .pagemap = 0, .shm = 1, .nrandom = 110, .nchains = 4,
     .ngrow = 2, .nvals = nv_full, .nnvals = 6},
    {.name = "pagemap", .mode = 2, .pagemap = 1, .shm = 1, .nrandom = 80, .nchains = 3,
     .ngrow = 1, .nvals = nv_short, .nnvals = 2},
};

/* Phase i, its counts times MMS_SOAK. The sanitizer build makes half the
 * random kills (test.h), and make test (no MMS_SOAK) half again: they were
 * three fifths of this program's children, the longest program of make
 * test, and their coverage below keeps a wide margin with half (release:
 * 311 random kills, 100 of them in a commit; sanitizers: 161, 64). Every
 * crash point, chain and growing commit stays; make soak runs all. */
static void phase(unsigned i)
{
    struct phase ph = phases[i];
    ph.nrandom = ph.nrandom * soak / (SANITIZED ? 2 : 1) / (getenv("MMS_SOAK") ? 1 : 2);
    ph.nchains *= soak;
    ph.ngrow *= soak;
    run_phase(&ph, i);
}

TEST(phase_sync)
{
    phase(0);
}

TEST(phase_nosync)
{
    phase(1);
}

TEST(phase_pagemap)
{
    phase(2);
}

/* The tmpfs cases stand in for the disk ("Where the stores live"): the
 * same children, 40 commits with aborts, checkpoints and heap growth, run
 * on a new store on the disk and on one on tmpfs, in each mode the tmpfs
 * cases use; at every commit the library must have found the same dirty
 * pages, the same changed ones, written the same journal group and grown
 * the heap alike. */
TEST(placement)
{
    __typeof__(cov) kept = cov; /* its children are not the phases' coverage */
    for (unsigned mode = 0; mode < 4; mode++) {
        struct item it = {.kind = K_RUN, .limit = NTRACE, .nosync = (int)(mode & 1),
                          .pagemap = (int)(mode >> 1), .grow_step = 1 << 20,
                          .ckpt_bytes = 256 << 10};
        static struct trace tr[2][NTRACE];
        uint64_t n[2], grew[2];
        const char *dir[2] = {"disk", "tmpfs"};
        for (int t = 0; t < 2; t++) {
            struct phase ph = {.name = "placement", .shm = t};
            snprintf(ph.path, sizeof ph.path, "%s", t ? shm_tpath(ph.name) : tpath(ph.name));
            setup_store(&ph, 20 + mode);
            struct expect ex = {0, 0};
            run_item(&ph, &it, &ex);
            n[t] = GET(sh->ncommit);
            grew[t] = GET(sh->ngrew);
            memcpy(tr[t], sh->trace, sizeof tr[t]);
            ASSERT_EQ(check_store(&ph, ex), it.limit);
            rmrf(ph.path);
        }
        ASSERT_EQ(n[0], NTRACE);
        ASSERT_EQ(n[1], NTRACE);
        for (unsigned k = 0; k < NTRACE; k++) {
            const struct trace *a = &tr[0][k], *b = &tr[1][k];
            if (memcmp(a, b, sizeof *a) != 0)
                FAILF("%s, %s backend: commit %u found %llu dirty pages (%llu changed), wrote a "
                      "%llu-byte journal group and left a %llu-byte heap on the %s; on %s: %llu "
                      "(%llu), %llu, %llu. tmpfs does not stand in for the disk here: move the "
                      "tmpfs cases to the disk (shm = 0)", it.nosync ? "NOSYNC" : "sync",
                      it.pagemap ? "pagemap" : "default", k + 1, (unsigned long long)a->dirty,
                      (unsigned long long)a->changed, (unsigned long long)a->journal,
                      (unsigned long long)a->heap, dir[0], dir[1], (unsigned long long)b->dirty,
                      (unsigned long long)b->changed, (unsigned long long)b->journal,
                      (unsigned long long)b->heap);
        }
        ASSERT_EQ(grew[0], grew[1]);
        ASSERT_GE(grew[0], 1);
        fprintf(stderr, "   placement: %s, %s backend: %u commits alike on the disk and on %s "
                "(%llu grew the heap)\n", it.nosync ? "NOSYNC" : "sync",
                it.pagemap ? "pagemap" : "default", NTRACE, shm_base[0] ? shm_base : "the disk",
                (unsigned long long)grew[0]);
    }
    cov = kept;
}

/* The test is only worth something if the kills landed where it matters. */
TEST(coverage)
{
    snprintf(context, sizeof context, "\n  context: final coverage checks, seed %llu\n",
             (unsigned long long)base_seed);
    fprintf(stderr, "   random kills: %lu (", cov.random);
    for (int w = 0; w < W_N; w++)
        fprintf(stderr, "%s%s %lu", w ? ", " : "", where_name[w], cov.random_where[w]);
    fprintf(stderr, "); inside a commit that grew the heap: %lu; commits in flight kept %lu, "
            "lost %lu\n", cov.random_grew, cov.random_commit_new, cov.random_commit_old);
    fprintf(stderr, "   crash points (landed/missed):");
    for (int p = 0; p <= NPOINTS; p++)
        fprintf(stderr, " %s %lu/%lu", p < NPOINTS ? commit_points[p] : "recover.group",
                cov.crash_landed[p], cov.crash_missed[p]);
    fprintf(stderr, "\n   checkpoint kills: automatic %lu, explicit %lu, at close %lu, at open %lu;"
            " commit kills in a growing commit %lu\n",
            cov.ckpt_auto, cov.ckpt_explicit, cov.ckpt_close, cov.ckpt_open, cov.grew_in_crash);
    fprintf(stderr, "   kills in a growing commit at a chosen point:");
    for (int p = 0; p < 4; p++)
        fprintf(stderr, " %s %lu", commit_points[p], cov.grow_landed[p]);
    fprintf(stderr, " (no growth found: %lu)\n", cov.grow_unavailable);
    fprintf(stderr, "   children recovered by the next child: %lu; stores checked: %lu; "
            "`mms verify` runs: %lu (%lu recovering)\n",
            cov.chained, cov.verified, cov.tool_runs, cov.tool_recovered);
    fprintf(stderr, "   commits %lu (%lu grew the heap), aborts %lu, explicit checkpoints %lu; "
            "backends: pagemap %lu, scan %lu\n", cov.commits, cov.grew, cov.aborts,
            cov.checkpoints, cov.backend_pagemap, cov.backend_scan);

    ASSERT_GE(cov.random_where[W_COMMIT], 1);
    ASSERT_GE(cov.random_where[W_OPS], 1);
    for (int p = 0; p <= NPOINTS; p++)
        ASSERT_GE(cov.crash_landed[p], 1);
    ASSERT_GE(cov.ckpt_auto + cov.ckpt_explicit, 1);
    for (int p = 0; p < 4; p++)
        ASSERT_GE(cov.grow_landed[p], 1);
    ASSERT_GE(cov.backend_pagemap, 1);
    ASSERT_GE(cov.tool_recovered, 1);
    ASSERT_GE(cov.aborts, 1);
}

TEST(carry_sync)
{
    carry_case(0);
}

TEST(carry_nosync)
{
    carry_case(1);
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 8,
                           "PATH SEED LIMIT NOSYNC GROW_STEP CKPT_BYTES PROBE SYNC_MS");
    if (a) {
        struct child_args ca = {a[0], strtoull(a[1], NULL, 10), strtoull(a[4], NULL, 10),
                                strtoull(a[5], NULL, 10), (unsigned)atoi(a[2]), atoi(a[3]),
                                atoi(a[6]), (unsigned)atoi(a[7])};
        sh = child_page(sizeof *sh);
        child_main(&ca);
    }
    base_seed = test_seed("test_crash", 0, &soak, "");
    signal(SIGABRT, on_abort);
    sh = child_page(sizeof *sh);

    RUN(placement);
    RUN(phase_sync);
    RUN(phase_nosync);
    RUN(phase_pagemap);
    RUN(coverage);
    RUN(carry_sync);
    RUN(carry_nosync);
    shm_cleanup();
    return 0;
}

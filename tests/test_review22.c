/*
 * test_review22.c -- a review of "a dead writer's commits become the next
 * writer's backlog" (apply.c mms__repair / adopt), which replaced the full
 * recovery that ran whenever recover_needed was set.
 *
 * Cases:
 *   crash_sweep: a writer killed at each crash point of the commit, apply
 *     and checkpoint paths (two passes, both modes) with a reader inside
 *     holding its last commits back; the next writer (in half the cases
 *     killed first at adopt.counted) begins without waiting for the reader
 *     and finds every acknowledged commit; the reader's state never moves;
 *     everything is applied once it leaves, and a first open agrees.
 *   random_kills: writers (default mode and MMS_NOSYNC, some checkpointing)
 *     and readers (holding read transactions across commits), killed at
 *     random moments and at random crash points, for about 6 s (5 under
 *     sanitizers). Checked all along: every read transaction sees one
 *     whole commit (a counter, one word in each of NPAGES pages and a
 *     table of counter records agree), never older than one that began
 *     before it (published never goes back); every write transaction
 *     begins at least at the last acknowledged commit; at the end the
 *     store verifies and holds every acknowledged commit; no child hangs.
 *   checkpoint_sync_failed: the bug the review found (below).
 *
 * MMS_TEST_ONLY=case runs one case; MMS_R22_SECS sets random_kills' length
 * (MMS_SOAK multiplies the default: make soak).
 */
#include "test.h"
#include "internal.h" /* mms__fault_arm */

#define NPAGES 16

struct rec {
    int64_t v;
};
static const mms_field rec_fields[] = {MMS_F_I64(struct rec, v)};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);

struct root {
    uint64_t counter;
    mms_ref big; /* NPAGES pages: word 0 of each is the counter */
};

#define MAXKIDS 16
static struct shared {
    uint64_t stop;
    uint64_t acked;    /* highest counter whose commit returned 0 */
    uint64_t pub_seen; /* highest counter a read transaction saw */
    uint64_t failed;
    uint64_t commits, reads, held_across, checkpoints, begins_after_death;
    uint64_t beat[MAXKIDS];
    uint64_t phase, inside, leave, left, seen, moved, next_seen; /* crash_sweep */
    char msg[512];
} *sh;

static void amax(uint64_t *p, uint64_t v)
{
    uint64_t o = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (o < v && !__atomic_compare_exchange_n(p, &o, v, false, __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST))
        ;
}

/* A child's invariant broke: say so once, and exit 3. */
#define CFAIL(...)                                                                         \
    do {                                                                                   \
        if (__atomic_exchange_n(&sh->failed, 1, __ATOMIC_SEQ_CST) == 0)                    \
            snprintf(sh->msg, sizeof sh->msg, __VA_ARGS__);                                \
        fprintf(stderr, __VA_ARGS__);                                                      \
        fprintf(stderr, "\n  detail: %s\n", mms_errdetail());                              \
        _exit(3);                                                                          \
    } while (0)

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static mms_info *info(mms_store *s)
{
    static mms_info in;
    OK(mms_info_get(s, &in));
    return &in;
}

static uint64_t counter_of(mms_store *s)
{
    return MMS_AT(s, struct root, mms_root(s))->counter;
}

/* Whether the handle's view is one whole commit: "" or why not. */
static const char *whole(mms_store *s, mms_table *t, uint64_t *c)
{
    static char why[200];
    const struct root *r = MMS_AT(s, struct root, mms_root(s));
    *c = r->counter;
    const char *big = mms_deref(s, r->big);
    for (int i = 0; i < NPAGES; i++) {
        uint64_t w;
        memcpy(&w, big + (size_t)i * 4096, 8);
        if (w != *c) {
            snprintf(why, sizeof why, "counter %llu, page %d of the big object says %llu",
                     (unsigned long long)*c, i, (unsigned long long)w);
            return why;
        }
    }
    uint64_t n = mms_table_slots(t);
    if (n != *c) {
        snprintf(why, sizeof why, "counter %llu, the table holds %llu records",
                 (unsigned long long)*c, (unsigned long long)n);
        return why;
    }
    if (n && ((const struct rec *)mms_table_get(t, n - 1))->v != (int64_t)n) {
        snprintf(why, sizeof why, "counter %llu, the last record says %lld",
                 (unsigned long long)*c,
                 (long long)((const struct rec *)mms_table_get(t, n - 1))->v);
        return why;
    }
    return "";
}

static mms_store *setup(const char *p)
{
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_zalloc(s, sizeof(struct root), &r));
    OK(mms_root_set(s, r));
    mms_ref big;
    OK(mms_zalloc(s, NPAGES * 4096, &big));
    MMS_AT(s, struct root, r)->big = big;
    mms_table *t;
    OK(mms_table_open(s, "t", &rec_schema, MMS_TABLE_CREATE, &t));
    OK(mms_txn_commit(s));
    return s;
}

/* One commit: the counter it finds + 1 everywhere. */
static void bump(mms_store *s, mms_table *t, uint64_t c)
{
    struct root *r = MMS_AT(s, struct root, mms_root(s));
    r->counter = c + 1;
    char *big = mms_deref(s, r->big);
    for (int i = 0; i < NPAGES; i++)
        memcpy(big + (size_t)i * 4096, &r->counter, 8);
    struct rec x = {(int64_t)(c + 1)};
    OK(mms_table_append(t, &x, NULL));
}

/* ------------------------------------------------------------------------
 * crash_sweep
 * ------------------------------------------------------------------------ */
/* The writer: two commits and a checkpoint before the reader comes, four
 * it holds back after, then killed inside a transaction -- or before, at
 * its crash point. mode 1: MMS_NOSYNC. */
static int child_sweep_writer(const char *path, int mode)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = mode ? MMS_NOSYNC : 0;
    o.sync_ms = 5;
    mms_store *s = NULL;
    OK(mms_open(path, &o, &s));
    mms_table *t = NULL;
    for (uint64_t i = 0; i < 6; i++) {
        if (i == 2) {
            OK(mms_checkpoint(s));
            PUB(sh->phase, 1);
            while (!GET(sh->inside))
                sleep_us(200);
        }
        OK(mms_txn_begin(s, 0));
        if (!t)
            OK(mms_table_find(s, "t", &t));
        uint64_t c;
        const char *why = whole(s, t, &c);
        if (*why)
            CFAIL("the writer began on a torn view: %s", why);
        bump(s, t, c);
        OK(mms_txn_commit(s));
        amax(&sh->acked, c + 1);
    }
    OK(mms_txn_begin(s, 0));
    bump(s, t, counter_of(s));
    raise(SIGKILL);
    return 0;
}

static int child_sweep_reader(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    mms_table *t;
    OK(mms_read_begin(s));
    OK(mms_table_find(s, "t", &t));
    uint64_t c;
    const char *why = whole(s, t, &c);
    if (*why)
        CFAIL("the reader began on a torn view: %s", why);
    PUB(sh->seen, c);
    PUB(sh->inside, 1);
    while (!GET(sh->leave)) {
        uint64_t c2;
        why = whole(s, t, &c2);
        if (*why || c2 != c)
            PUB(sh->moved, 1);
        sleep_us(500);
    }
    OK(mms_read_end(s));
    PUB(sh->left, 1);
    OK(mms_close(s));
    return 0;
}

/* A reader that begins after a writer and the handle taking over from it
 * died (recover_needed set, nobody holds the writer lock): it takes over
 * itself (mms__pin_stuck) and reads a whole state, never older than the
 * reader inside saw. */
static int child_sweep_quick(const char *path)
{
    mms_store *s = open_flags(path, MMS_RDONLY);
    mms_table *t;
    OK(mms_read_begin(s));
    OK(mms_table_find(s, "t", &t));
    uint64_t c;
    const char *why = whole(s, t, &c);
    if (*why)
        CFAIL("a new reader began on a torn view: %s", why);
    if (c < GET(sh->seen))
        CFAIL("a new reader saw counter %llu, older than the reader inside (%llu)",
              (unsigned long long)c, (unsigned long long)GET(sh->seen));
    OK(mms_read_end(s));
    OK(mms_close(s));
    return 0;
}

/* The next writer: begins (at once, the reader inside), finds a whole
 * state with every acknowledged commit, and commits twice. */
static int child_sweep_next(const char *path)
{
    uint64_t acked = GET(sh->acked);
    mms_store *s = open_flags(path, 0);
    OK(mms_txn_begin(s, 0));
    mms_table *t;
    OK(mms_table_find(s, "t", &t));
    uint64_t c;
    const char *why = whole(s, t, &c);
    if (*why)
        CFAIL("the next writer began on a torn view: %s", why);
    if (c < acked)
        CFAIL("the next writer began at counter %llu, below the acknowledged %llu",
              (unsigned long long)c, (unsigned long long)acked);
    PUB(sh->next_seen, c);
    bump(s, t, c);
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    bump(s, t, c + 1);
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    return 0;
}

/* A writer killed at each crash point of the commit, apply and checkpoint
 * paths (pass 1 or 3; default mode or MMS_NOSYNC), a reader inside
 * holding its last commits back; the next writer (itself killed first at
 * adopt.counted in half the cases) begins without waiting for that reader,
 * at every acknowledged commit, whole; the reader's state never moves;
 * once it leaves, everything is applied, and a first open finds the next
 * writer's two commits on top. */
TEST(crash_sweep)
{
    static const char *const wpoints[] = {
        "commit.fresh_synced", "commit.journal_write", "commit.journal_synced", "commit.apply",
        "apply.synced", "apply.position", "apply.applied", "apply.trying", "apply.group",
        "gate.taken", "gate.touching", "gate.opening", "gate.publishing", "gate.judging",
        "checkpoint.synced", "checkpoint.before_header", "checkpoint.slot_written",
        "checkpoint.reset", "space.giving", "region.grown",
    };
    unsigned ncase = 0;
    for (size_t i = 0; i < sizeof wpoints / sizeof wpoints[0]; i++)
        for (int v = 0; v < 2; v++) {
            char crash[96];
            snprintf(crash, sizeof crash, "%s:%d", wpoints[i], v ? 3 : 1);
            int mode = (int)((i + (size_t)v) % 2);
            bool kill_adopter = (i / 2 + (size_t)v) % 2;
            const char *p = shm_tpath("r22_sweep");
            mms_store *s = setup(p);
            OK(mms_close(s));
            mms_store *keep = open_flags(p, MMS_RDONLY); /* no open below is a first open */
            memset(sh, 0, sizeof *sh);
            pid_t w = child_spawn((const char *[]){"swriter", p, mode ? "1" : "0", "0", NULL},
                                  (const char *[]){"MMS_CRASH", crash, NULL});
            int st;
            bool dead = false;
            while (!GET(sh->phase) && !dead) {
                if (waitpid(w, &st, WNOHANG) == w)
                    dead = true;
                else
                    sleep_us(200);
            }
            pid_t rd = child_spawn((const char *[]){"sreader", p, "0", "0", NULL}, NULL);
            AWAIT(GET(sh->inside), rd, 60, "%s: the reader did not begin", crash);
            if (!dead && !child_end(w, 60, &st))
                FAILF("%s: the writer hung", crash);
            if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
                FAILF("%s (%s): the writer ended with %s: %s", crash, mode ? "nosync" : "sync",
                      child_status(st), sh->msg);
            if (kill_adopter) {
                pid_t a = child_spawn((const char *[]){"snext", p, "0", "0", NULL},
                                      (const char *[]){"MMS_CRASH", "adopt.counted:1", NULL});
                if (!child_end(a, 60, &st))
                    FAILF("%s: a next writer still waits, 60 s later, with a reader inside",
                          crash);
                if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) &&
                    !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
                    FAILF("%s: the next writer (adopt.counted:1) ended with %s: %s", crash,
                          child_status(st), sh->msg);
                if (WIFEXITED(st)) { /* it did not adopt: a second pair of commits */
                    PUB(sh->acked, GET(sh->next_seen) + 2);
                } else { /* a reader takes over from it */
                    pid_t q = child_spawn((const char *[]){"squick", p, "0", "0", NULL}, NULL);
                    if (!child_end(q, 60, &st) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        FAILF("%s: a new reader ended with %s: %s", crash, child_status(st),
                              sh->msg);
                }
            }
            pid_t nw = child_spawn((const char *[]){"snext", p, "0", "0", NULL}, NULL);
            if (!child_end(nw, 60, &st))
                FAILF("%s (%s): the next writer still waits, 60 s later, for the reader inside",
                      crash, mode ? "nosync" : "sync");
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAILF("%s (%s): the next writer ended with %s: %s", crash,
                      mode ? "nosync" : "sync", child_status(st), sh->msg);
            uint64_t next_seen = GET(sh->next_seen);
            ASSERT(!GET(sh->left));
            PUB(sh->leave, 1);
            if (!child_end(rd, 60, &st) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAILF("%s: the reader ended with %s: %s", crash, child_status(st), sh->msg);
            if (GET(sh->moved))
                FAILF("%s (%s): the reader's state moved inside its read transaction", crash,
                      mode ? "nosync" : "sync");
            mms_info *in = info(keep);
            if (in->published_txn != in->committed_txn)
                FAILF("%s (%s): the reader left, and txns %llu to %llu are still not applied",
                      crash, mode ? "nosync" : "sync",
                      (unsigned long long)in->published_txn + 1,
                      (unsigned long long)in->committed_txn);
            OK(mms_close(keep));
            s = open_flags(p, 0);
            mms_table *t;
            OK(mms_read_begin(s));
            OK(mms_table_find(s, "t", &t));
            uint64_t c;
            const char *why = whole(s, t, &c);
            if (*why)
                FAILF("%s: reopened: %s", crash, why);
            OK(mms_read_end(s));
            if (c != next_seen + 2)
                FAILF("%s (%s): reopened at counter %llu, not the next writer's %llu", crash,
                      mode ? "nosync" : "sync", (unsigned long long)c,
                      (unsigned long long)next_seen + 2);
            verify_ok(s);
            OK(mms_close(s));
            rmrf(p);
            ncase++;
        }
    fprintf(stderr, "   %u cases\n", ncase);
}

/* ------------------------------------------------------------------------
 * random_kills
 * ------------------------------------------------------------------------ */
static const char *const points[] = {
    "commit.fresh_synced", "commit.journal_write", "commit.journal_synced", "commit.apply",
    "apply.synced",        "apply.position",       "apply.applied",         "apply.trying",
    "apply.group",         "gate.taken",           "gate.touching",         "gate.hold",
    "gate.opening",        "gate.publishing",      "gate.judging",          "checkpoint.synced",
    "checkpoint.before_header", "checkpoint.slot_written", "checkpoint.reset",
    "adopt.counted",       "recover.takeover",     "recover.group",         "recover.journal_synced",
    "space.giving",        "region.grown",         "commit.apply",
};
#define NPOINTS (sizeof points / sizeof points[0])

static int child_writer(const char *path, int k, uint64_t seed)
{
    uint64_t x = seed | 1;
    mms_options o;
    mms_options_init(&o);
    bool nosync = rng_next(&x) % 3 == 0;
    o.flags = nosync ? MMS_NOSYNC : 0;
    o.sync_ms = 1 + (unsigned)(rng_next(&x) % 20);
    if (rng_next(&x) % 2)
        o.checkpoint_bytes = 16384 + rng_next(&x) % 200000;
    mms_store *s = NULL;
    OK(mms_open(path, &o, &s));
    mms_table *t = NULL;
    while (!GET(sh->stop)) {
        PUB(sh->beat[k], GET(sh->beat[k]) + 1);
        uint64_t acked = GET(sh->acked);
        OK(mms_txn_begin(s, 0));
        if (!t) /* inside a transaction: outside one the view may change under it */
            OK(mms_table_find(s, "t", &t));
        uint64_t c;
        const char *why = whole(s, t, &c);
        if (*why)
            CFAIL("writer %d (%s) began on a torn view: %s", k, nosync ? "nosync" : "sync", why);
        if (c < acked)
            CFAIL("writer %d began at counter %llu, below the acknowledged %llu", k,
                  (unsigned long long)c, (unsigned long long)acked);
        bump(s, t, c);
        uint64_t what = rng_next(&x) % 20;
        if (what == 0) {
            OK(mms_txn_abort(s));
            continue;
        }
        if (what == 1)
            sleep_us(rng_next(&x) % 5000); /* killed inside, maybe */
        OK(mms_txn_commit(s));
        amax(&sh->acked, c + 1);
        INC(sh->commits);
        if (what == 2) {
            OK(mms_checkpoint(s));
            INC(sh->checkpoints);
        }
        if (what < 6)
            sleep_us(rng_next(&x) % 3000);
    }
    OK(mms_close(s));
    return 0;
}

static int child_reader(const char *path, int k, uint64_t seed)
{
    uint64_t x = seed | 1;
    mms_store *s = open_flags(path, MMS_RDONLY);
    mms_table *t;
    OK(mms_read_begin(s)); /* outside a read transaction the view may change under it */
    OK(mms_table_find(s, "t", &t));
    OK(mms_read_end(s));
    while (!GET(sh->stop)) {
        PUB(sh->beat[k], GET(sh->beat[k]) + 1);
        uint64_t before = GET(sh->pub_seen);
        uint64_t how = rng_next(&x) % 10;
        int r = how == 0 ? mms_read_begin_latest(s, 20) : mms_read_begin(s);
        if (r == -ETIMEDOUT)
            continue;
        OK(r);
        uint64_t c;
        const char *why = whole(s, t, &c);
        if (*why)
            CFAIL("reader %d: a torn view: %s", k, why);
        if (c < before)
            CFAIL("reader %d: the published state went back: counter %llu, after a read "
                  "transaction saw %llu", k, (unsigned long long)c, (unsigned long long)before);
        if (how >= 7) { /* held across commits */
            uint64_t until = rng_next(&x) % 100000;
            for (uint64_t at = 0; at < until && !GET(sh->stop); at += 2000) {
                sleep_us(2000);
                uint64_t c2;
                why = whole(s, t, &c2);
                if (*why || c2 != c)
                    CFAIL("reader %d: its state moved inside a read transaction (%llu -> "
                          "%llu) %s", k, (unsigned long long)c, (unsigned long long)c2, why);
            }
            INC(sh->held_across);
        }
        OK(mms_read_end(s));
        amax(&sh->pub_seen, c);
        INC(sh->reads);
    }
    OK(mms_close(s));
    return 0;
}

struct kid {
    pid_t pid;
    int role; /* 0 writer, 1 reader */
    char crash[80];
};

static void spawn_kid(struct kid *kd, int k, const char *p, uint64_t *x)
{
    char ks[16], seed[32];
    snprintf(ks, sizeof ks, "%d", k);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)rng_next(x));
    kd->crash[0] = 0;
    if (rng_next(x) % 2) /* a crash point, or only the parent's kills */
        snprintf(kd->crash, sizeof kd->crash, "%s:%llu", points[rng_next(x) % NPOINTS],
                 (unsigned long long)(1 + rng_next(x) % 12));
    kd->pid = child_spawn((const char *[]){kd->role ? "reader" : "writer", p, ks, seed, NULL},
                          (const char *[]){"MMS_CRASH", kd->crash[0] ? kd->crash : NULL, NULL});
}

/* A child that ended: killed (by us or a crash point) or exited 0 is fine. */
static void kid_ended(const struct kid *kd, int st)
{
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        return;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return;
    FAILF("%s (MMS_CRASH %s) ended with %s: %s", kd->role ? "a reader" : "a writer",
          kd->crash[0] ? kd->crash : "-", child_status(st), sh->msg);
}

TEST(random_kills)
{
    const char *e = getenv("MMS_R22_SECS");
    double secs = e && *e ? atof(e) : (SANITIZED ? 5 : 6);
    e = getenv("MMS_SOAK"); /* make soak: that many times longer */
    if (e && atoi(e) > 0 && !getenv("MMS_R22_SECS"))
        secs *= atoi(e);
    uint64_t x = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    e = getenv("MMS_R22_SEED");
    if (e && *e)
        x = strtoull(e, NULL, 10);
    fprintf(stderr, "   seed %llu (MMS_R22_SEED), %.0f s\n", (unsigned long long)x, secs);
    const char *p = shm_tpath("r22_kills");
    mms_store *s = setup(p);
    OK(mms_close(s));
    memset(sh, 0, sizeof *sh);
    enum { NW = 3, NR = 4 };
    struct kid kids[NW + NR];
    for (int k = 0; k < NW + NR; k++) {
        kids[k].role = k >= NW;
        spawn_kid(&kids[k], k, p, &x);
    }
    uint64_t kills = 0, deaths = 0;
    double t0 = now_us();
    while (now_us() - t0 < secs * 1e6) {
        sleep_us(2000 + rng_next(&x) % 40000);
        if (GET(sh->failed))
            break;
        int k = (int)(rng_next(&x) % (NW + NR));
        if (kids[k].role == 0 || rng_next(&x) % 3 == 0) {
            kill(kids[k].pid, SIGKILL);
            kills++;
        }
        for (int j = 0; j < NW + NR; j++) {
            int st;
            if (waitpid(kids[j].pid, &st, WNOHANG) == kids[j].pid) {
                kid_ended(&kids[j], st);
                deaths++;
                spawn_kid(&kids[j], j, p, &x);
            }
        }
    }
    PUB(sh->stop, 1);
    for (int k = 0; k < NW + NR; k++) {
        int st;
        if (!child_end(kids[k].pid, 60, &st))
            FAILF("%s %d (MMS_CRASH %s) still runs 60 s after the stop",
                  kids[k].role ? "a reader" : "a writer", k, kids[k].crash);
        kid_ended(&kids[k], st);
    }
    if (GET(sh->failed))
        FAILF("%s", sh->msg);
    fprintf(stderr, "   %llu commits, %llu checkpoints, %llu reads (%llu held across commits), "
            "%llu kills, %llu deaths; acknowledged counter %llu\n",
            (unsigned long long)sh->commits, (unsigned long long)sh->checkpoints,
            (unsigned long long)sh->reads, (unsigned long long)sh->held_across,
            (unsigned long long)kills, (unsigned long long)deaths,
            (unsigned long long)sh->acked);
    ASSERT_LT(0, sh->commits);
    ASSERT_LT(0, sh->reads);
    s = open_flags(p, 0);
    mms_table *t;
    OK(mms_table_find(s, "t", &t));
    OK(mms_read_begin(s));
    uint64_t c;
    const char *why = whole(s, t, &c);
    if (*why)
        FAILF("reopened: %s", why);
    OK(mms_read_end(s));
    if (c < GET(sh->acked))
        FAILF("reopened at counter %llu, below the acknowledged %llu", (unsigned long long)c,
              (unsigned long long)GET(sh->acked));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* checkpoint_sync_failed: a checkpoint whose sync of the region files
 * failed, then the next writer (review of 14b7a16, apply.c mms__repair).
 *
 * The failed checkpoint sets recover_needed (txn.c mms_checkpoint). Until
 * 14b7a16 the next writer then ran the full recovery, which wrote every
 * commit of the journal into the region files again and synced them
 * before it emptied the journal. 14b7a16 adopted the journal instead (its
 * commits are applied already: nothing to do), rewrote nothing, and the
 * next checkpoint's sync -- which Linux may report as a success once the
 * failure was reported, over pages it dropped (journal.c mms__jsync,
 * "fsyncgate") -- emptied the journal over files that never reached the
 * disk: an acknowledged commit was lost, and the store refused to open
 * (its files older than the last checkpoint). Fixed by recover_needed's
 * MMS__RECOVER_FULL: that next writer recovers fully. The lost write-back is
 * simulated: the region file gets back the bytes it had at the last good
 * checkpoint (what the disk holds), as if the kernel had dropped the pages
 * whose write-back failed.
 */

/* The counter alone, in one commit (checkpoint_sync_failed). */
static void set_counter(mms_store *s, uint64_t v)
{
    OK(mms_txn_begin(s, 0));
    MMS_AT(s, struct root, mms_root(s))->counter = v;
    OK(mms_txn_commit(s));
}

static void *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    char *b = malloc((size_t)st.st_size + 1);
    ASSERT(b);
    ASSERT_EQ(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

TEST(checkpoint_sync_failed)
{
    const char *p = shm_tpath("r22_cksync");
    mms_store *a = setup(p);
    set_counter(a, 1);
    OK(mms_checkpoint(a)); /* the files, synced, hold counter 1: the disk */
    mms_store *keep = open_flags(p, MMS_RDONLY); /* no later open is a first open */
    char f0[600];
    snprintf(f0, sizeof f0, "%s/region-0-0", p);
    size_t n0;
    void *disk = slurp(f0, &n0);
    set_counter(a, 2); /* acknowledged, applied (no reader), in the journal */
    ASSERT_EQ(info(a)->published_txn, info(a)->committed_txn);
    /* The checkpoint's sync of the region files fails. */
    mms__fault_arm(MMS__OP_FSYNC, 1, EIO);
    int r = mms_checkpoint(a);
    mms__fault_reset();
    ASSERT_EQ(r, -EIO);
    /* ... and the kernel dropped the pages it could not write back: the
     * file reads what the disk has, the last good checkpoint's state. */
    int fd = open(f0, O_WRONLY);
    ASSERT(fd >= 0);
    ASSERT_EQ(pwrite(fd, disk, n0, 0), (ssize_t)n0);
    close(fd);
    free(disk);
    mms_close(a); /* poisoned */
    /* The next writer: the journal still holds counter 2. */
    mms_store *b = open_flags(p, 0);
    OK(mms_txn_begin(b, 0));
    uint64_t c = counter_of(b);
    OK(mms_txn_abort(b));
    OK(mms_checkpoint(b)); /* its sync succeeds: the journal is emptied */
    OK(mms_close(b));
    OK(mms_close(keep));
    mms_options o;
    mms_options_init(&o);
    b = NULL;
    r = mms_open(p, &o, &b);
    uint64_t after = r ? 0 : counter_of(b);
    char got[200];
    if (r)
        snprintf(got, sizeof got, "%s (%s)", mms_strerror(r), mms_errdetail());
    else
        snprintf(got, sizeof got, "counter %llu", (unsigned long long)after);
    fprintf(stderr, "   the next writer found counter %llu; reopened after its checkpoint: %s "
            "(acknowledged: 2)\n", (unsigned long long)c, got);
    if (c != 2 || r || after != 2)
        FAILF("a commit acknowledged before a checkpoint whose region sync failed is lost: "
              "the next writer took the journal over without writing it into the files "
              "again, and its checkpoint emptied the journal");
    OK(mms_close(b));
    rmrf(p);
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 4, "ROLE PATH K SEED");
    if (a) {
        sh = child_page(sizeof *sh);
        int k = atoi(a[2]);
        uint64_t seed = strtoull(a[3], NULL, 10);
        if (strcmp(a[0], "reader") == 0)
            return child_reader(a[1], k, seed);
        if (strcmp(a[0], "swriter") == 0)
            return child_sweep_writer(a[1], k);
        if (strcmp(a[0], "sreader") == 0)
            return child_sweep_reader(a[1]);
        if (strcmp(a[0], "squick") == 0)
            return child_sweep_quick(a[1]);
        if (strcmp(a[0], "snext") == 0)
            return child_sweep_next(a[1]);
        return child_writer(a[1], k, seed);
    }
    sh = child_page(sizeof *sh);
    signal(SIGABRT, shm_on_abort);
    RUN(crash_sweep);
    RUN(random_kills);
    RUN(checkpoint_sync_failed);
    shm_cleanup();
    return 0;
}

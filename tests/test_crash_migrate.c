/*
 * test_crash_migrate.c -- SIGKILL during a schema migration.
 *
 * Child processes (this program, exec'd again by test.h's child harness)
 * migrate a copy of a template store -- "emp" of test_table_migrate's
 * world, in its first layout, to a layout reordered, widened, with a STR
 * and an i32 removed and a field with a default added -- and are SIGKILLed
 * at random moments or at crash points (MMS_CRASH=point:n); some go on to
 * a second transaction in the new layout. The parent reopens: the store
 * verifies and "emp" is either entirely in the old layout with the old
 * data or entirely in the new one with the converted data (and the second
 * transaction's changes, if it committed), checked against the logical
 * model of table_world.h; both outcomes must occur. Chains of children
 * killed inside the recovery of a killed migration must reach the same
 * states.
 *
 * MMS_SEED=S reruns a seed (kill timing still varies); MMS_SOAK=N
 * multiplies the iteration counts.
 */
#include "table_world.h"

/* VC: what the children migrate emp (V1) to: reordered, widened, a STR and
 * an i32 removed, a field with a default added. */
struct ec {
    mms_ref dept;
    mms_ref boss;
    mms_ref name;
    int64_t newd;
    double ff;
    double fi;
    char code[16];
    int64_t a8;
    int32_t a16;
    int64_t a32;
    int64_t a64;
    uint64_t u32;
    uint16_t u16;
    uint8_t u8;
    uint64_t u64;
    int16_t x8;
    int32_t x16;
    int64_t x32;
    double g8;
    double gu;
    bool flag;
};
static const mms_field ec_fields[] = {
    MMS_F_REF(struct ec, dept, "dept"), MMS_F_REF(struct ec, boss, "emp"),
    MMS_F_STR(struct ec, name), MMS_F_WITH_DEFAULT(struct ec, newd, MMS_KIND_I64, &dflt_newd),
    MMS_F_F64(struct ec, ff), MMS_F_F64(struct ec, fi), MMS_F_CHARS(struct ec, code),
    MMS_F_I64(struct ec, a8), MMS_F_I32(struct ec, a16), MMS_F_I64(struct ec, a32),
    MMS_F_I64(struct ec, a64), MMS_F_U64(struct ec, u32), MMS_F_U16(struct ec, u16),
    MMS_F_U8(struct ec, u8), MMS_F_U64(struct ec, u64), MMS_F_I16(struct ec, x8),
    MMS_F_I32(struct ec, x16), MMS_F_I64(struct ec, x32), MMS_F_F64(struct ec, g8),
    MMS_F_F64(struct ec, gu), MMS_F_BOOL(struct ec, flag),
};
static const mms_schema ec_schema = MMS_SCHEMA(struct ec, ec_fields);

/* Where the child is; published in the shared page (test.h's child_page). */
enum { ST_START, ST_OPEN, ST_MIGRATE, ST_COMMIT1, ST_DONE1, ST_TXN2, ST_COMMIT2, ST_DONE2,
       ST_CLOSE, ST_END, ST_N };
static const char *const st_name[ST_N] = {"start", "open", "migrating", "committing",
                                          "committed", "txn2", "committing2", "committed2",
                                          "closing", "end"};
struct cshared {
    int stage;
    int pad;
    double t_open, t_end;
};
static struct cshared *CS;

/* The child's second transaction, in the new layout: fields of existing
 * records changed (journaled, in the new region file), refs to record 6
 * cleared, record 6 deleted (its string freed) and the slot reused. */
static void crash_txn2(mms_store *s)
{
    mms_table *t, *pj;
    OK(mms_table_open(s, "emp", &ec_schema, 0, &t));
    OK(mms_table_open(s, "proj", &proj_schema, 0, &pj));
    for (uint64_t i = 0; i < 64; i++)
        if (mms_table_live(t, i))
            ((struct ec *)mms_table_get(t, i))->newd = -(int64_t)(1000 + i);
    mms_ref r6 = mms_table_ref(t, 6);
    for (uint64_t i = 0; i < mms_table_slots(t); i++) {
        struct ec *r = mms_table_get(t, i);
        if (mms_table_live(t, i) && r->boss == r6)
            r->boss = 0;
    }
    for (uint64_t i = 0; i < mms_table_slots(pj); i++) {
        struct proj *r = mms_table_get(pj, i);
        if (mms_table_live(pj, i) && r->lead == r6)
            r->lead = 0;
    }
    OK(mms_table_delete(t, 6));
    struct ec r;
    memset(&r, 0, sizeof r);
    r.a64 = 4242;
    r.newd = 77;
    memcpy(r.code, "new", 3);
    uint64_t idx = 0;
    OK(mms_table_append(t, &r, &idx));
    ASSERT_EQ(idx, 6);
}

/* The same on the model. */
static void crash_txn2_model(struct world *W, uint32_t emp_region)
{
    struct gt *e = &W->g[W_EMP];
    int lnewd = lid("newd");
    for (uint64_t i = 0; i < 64; i++)
        if (e->live[i])
            *GV(e, i, lnewd) = (struct lv){.t = LV_INT, .v.i = -(int64_t)(1000 + i)};
    mms_ref r6 = MMS_REF_MAKE(emp_region, 6);
    for (int k = 0; k < W_N; k++) {
        struct gt *h = &W->g[k];
        for (uint32_t fi = 0; fi < h->sc->nfields; fi++) {
            const mms_field *f = &h->sc->fields[fi];
            if (f->kind != MMS_KIND_REF || strcmp(f->target, "emp") != 0)
                continue;
            for (uint64_t i = 0; i < h->slots; i++)
                if (h->live[i] && GV(h, i, lid(f->name))->ref == r6)
                    memset(GV(h, i, lid(f->name)), 0, sizeof(struct lv));
        }
    }
    ASSERT(e->live[6]);
    memset(GV(e, 6, 0), 0, NLF * sizeof(struct lv));
    *GV(e, 6, lid("a64")) = (struct lv){.t = LV_INT, .v.i = 4242};
    *GV(e, 6, lnewd) = (struct lv){.t = LV_INT, .v.i = 77};
    struct lv *c = GV(e, 6, lid("code"));
    *c = (struct lv){.t = LV_CHARS, .len = 3};
    memcpy(c->v.c, "new", 3);
    e->tomb = 1;
}

/* mode 0: open (recovery) and close; 1: migrate; 2: migrate, then txn2.
 * nosync: open with MMS_NOSYNC (a process crash loses nothing either). */
static void crash_child(const char *path, int mode, int nosync)
{
    PUB(CS->stage, ST_START);
    mms_store *s = sopen(path, nosync ? MMS_NOSYNC : 0);
    CS->t_open = now_us();
    PUB(CS->stage, ST_OPEN);
    if (mode > 0) {
        OK(mms_txn_begin(s, 0));
        PUB(CS->stage, ST_MIGRATE);
        mms_table *t;
        OK(mms_table_open(s, "emp", &ec_schema, 0, &t));
        PUB(CS->stage, ST_COMMIT1);
        OK(mms_txn_commit(s));
        PUB(CS->stage, ST_DONE1);
    }
    if (mode == 2) {
        OK(mms_txn_begin(s, 0));
        PUB(CS->stage, ST_TXN2);
        crash_txn2(s);
        PUB(CS->stage, ST_COMMIT2);
        OK(mms_txn_commit(s));
        PUB(CS->stage, ST_DONE2);
    }
    PUB(CS->stage, ST_CLOSE);
    OK(mms_close(s));
    CS->t_end = now_us();
    PUB(CS->stage, ST_END);
    _exit(0);
}

enum { O_OLD, O_NEW, O_NEW2, O_N };
static const char *const out_name[O_N] = {"old", "new", "new+txn2"};
#define M_OLD (1 << O_OLD)
#define M_NEW (1 << O_NEW)
#define M_NEW2 (1 << O_NEW2)

static struct {
    char tmpl[512], work[512];
    struct world w[O_N]; /* the model of each outcome */
    uint64_t txn0;
    uint32_t emp_region, gen0;
    unsigned long outcome[O_N], rnd_outcome[O_N], killed_at[ST_N], points_landed, chains,
        redone, runs, nosync;
    double dur[3];
} P3;

static void p3_fresh_copy(void)
{
    rmrf(P3.work);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp -a --sparse=always '%s' '%s'", P3.tmpl, P3.work);
    if (system(cmd) != 0)
        FAILF("%s failed", cmd);
}

/* Run a child on the work store. delay_us: kill that long after it opened
 * the store (UINT_MAX: never). Returns 1 if it was SIGKILLed. */
static int p3_run(int mode, const char *crash, unsigned delay_us, int *stage)
{
    memset(CS, 0, sizeof *CS);
    char a_mode[8], a_nosync[8];
    snprintf(a_mode, sizeof a_mode, "%d", mode % 10);
    snprintf(a_nosync, sizeof a_nosync, "%d", mode >= 10);
    /* A new process image reads MMS_CRASH afresh. */
    pid_t pid = child_spawn((const char *[]){P3.work, a_mode, a_nosync, NULL},
                            (const char *[]){"MMS_CRASH", crash, NULL});
    int st = 0;
    if (delay_us != UINT32_MAX) {
        AWAIT(GET(CS->stage) >= ST_OPEN, pid, 60, "the child did not open the store within 60 s");
        sleep_us(delay_us);
        ASSERT_EQ(kill(pid, SIGKILL), 0);
    }
    if (!child_end(pid, 60, &st))
        FAILF("the child hung for 60 s at stage %s", st_name[GET(CS->stage)]);
    P3.runs++;
    *stage = GET(CS->stage);
    ASSERT(*stage >= 0 && *stage < ST_N);
    int killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    if (!killed && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        FAILF("the child (mode %d, MMS_CRASH=%s) ended with status 0x%x at stage %s", mode,
              crash ? crash : "-", st, st_name[*stage]);
    return killed;
}

/* Reopen the work store: it verifies, and emp is wholly in one layout with
 * the data of that outcome. */
static int p3_check(int allowed, const char *what)
{
    CTX("crash: checking after %s", what);
    mms_store *s = sopen(P3.work, 0);
    verify_ok(s);
    mms_table *te = NULL;
    OK(mms_table_find(s, "emp", &te));
    const mms_schema *st = mms_table_schema(te);
    ASSERT(st);
    int out;
    if (schema_eq(st, &e1_schema))
        out = O_OLD;
    else if (schema_eq(st, &ec_schema))
        out = mms_txn_id(s) == P3.txn0 + 2 ? O_NEW2 : O_NEW;
    else
        FAILF("%s: emp's layout is neither the old nor the new one: %u bytes, %u fields", what,
              st->record_size, st->nfields);
    ASSERT_EQ(mms_txn_id(s), P3.txn0 + (uint64_t)out);
    if (!(allowed & (1 << out)))
        FAILF("%s: the store holds the %s state; allowed mask 0x%x", what, out_name[out],
              allowed);
    ASSERT_EQ(region_gen(s, P3.emp_region), P3.gen0 + (out != O_OLD));
    struct world *W = &P3.w[out];
    mms_table *th[W_N];
    for (int k = 0; k < W_N; k++)
        OK(mms_table_open(s, W->g[k].name, W->g[k].sc, 0, &th[k]));
    world_check(W, s, th, 0);
    if (out == O_OLD && P3.outcome[O_OLD] % 4 == 0) {
        /* The store is usable: a leftover file of the killed migration
         * does not get in the way of this one. */
        OK(mms_txn_begin(s, 0));
        mms_table *t;
        OK(mms_table_open(s, "emp", &ec_schema, 0, &t));
        OK(mms_txn_commit(s));
        world_check(&P3.w[O_NEW], s, th, 1);
        P3.redone++;
    }
    OK(mms_close(s));
    P3.outcome[out]++;
    return out;
}

/* The outcomes a kill at stage st allows. */
static int p3_allowed(int mode, int st)
{
    if (st <= ST_MIGRATE)
        return M_OLD;
    if (st == ST_COMMIT1)
        return M_OLD | M_NEW;
    if (st <= ST_TXN2)
        return M_NEW;
    if (st == ST_COMMIT2)
        return M_NEW | M_NEW2;
    return mode == 2 ? M_NEW2 : M_NEW;
}

struct citem {
    int mode;
    const char *crash;
    int expect;
};

TEST(test_crash)
{
    uint64_t x = seed0 ^ 0x3333;
    snprintf(P3.tmpl, sizeof P3.tmpl, "%s", shm_tpath("table-crash-template"));
    snprintf(P3.work, sizeof P3.work, "%s", shm_tpath("table-crash"));
    CS = child_page(sizeof *CS);

    /* The template: dept, emp in V1 with deleted slots, proj pointing
     * into emp. */
    CTX("crash: template");
    struct world *W = &P3.w[O_OLD];
    memset(W, 0, sizeof *W);
    unsigned nemp = 8000;
    gt_init(&W->g[W_DEPT], "dept", &dept_schema, 64);
    gt_init(&W->g[W_EMP], "emp", &e1_schema, nemp + 100);
    gt_init(&W->g[W_PROJ], "proj", &proj_schema, 600);
    W->s = sopen(P3.tmpl, MMS_CREATE);
    OK(mms_txn_begin(W->s, 0));
    for (int k = 0; k < W_N; k++)
        OK(mms_table_open(W->s, W->g[k].name, W->g[k].sc, MMS_TABLE_CREATE, &W->g[k].t));
    for (int i = 0; i < 20; i++)
        gt_append(W, &W->g[W_DEPT], &x, -1);
    struct gt *e = &W->g[W_EMP];
    for (int i = 0; i < NEXTREME; i++)
        gt_append(W, e, &x, i);
    gt_append_many(W, e, &x, nemp - NEXTREME);
    for (int i = 0; i < 500; i++)
        gt_append(W, &W->g[W_PROJ], &x, -1);
    for (unsigned i = 0; i < nemp / 10; i++) {
        uint64_t j = gt_pick_live(e, &x);
        if (j >= NEXTREME)
            gt_delete(W, e, j);
    }
    /* Record 6 is live and someone points at it (txn2 clears that). */
    struct proj *p0 = mms_table_get(W->g[W_PROJ].t, 0);
    p0->lead = mms_table_ref(e->t, 6);
    *GV(&W->g[W_PROJ], 0, lid("lead")) = (struct lv){.t = LV_REF, .ref = p0->lead};
    OK(mms_txn_commit(W->s));
    mms_table *th[W_N];
    world_handles(W, th);
    world_check(W, W->s, th, 1);
    P3.txn0 = mms_txn_id(W->s);
    P3.emp_region = table_region(e->t);
    P3.gen0 = region_gen(W->s, P3.emp_region);
    OK(mms_close(W->s));
    W->s = NULL;
    world_copy(&P3.w[O_NEW], W);
    gt_migrate_model(&P3.w[O_NEW].g[W_EMP], &ec_schema);
    world_copy(&P3.w[O_NEW2], &P3.w[O_NEW]);
    crash_txn2_model(&P3.w[O_NEW2], P3.emp_region);

    double t0 = now_us();
    int stage;
    /* Calibration: how long a child takes from open to exit, per mode. */
    for (int mode = 1; mode <= 2; mode++) {
        p3_fresh_copy();
        ASSERT_EQ(p3_run(mode, NULL, UINT32_MAX, &stage), 0);
        ASSERT_EQ(stage, ST_END);
        P3.dur[mode] = CS->t_end - CS->t_open;
        p3_check(mode == 1 ? M_NEW : M_NEW2, "a child that was not killed");
    }
    fprintf(stderr, "   %u emp records (%zu -> %zu bytes); a child migrates and closes in %.1f ms, "
            "with txn2 %.1f ms\n", nemp, sizeof(struct e1), sizeof(struct ec), P3.dur[1] / 1e3,
            P3.dur[2] / 1e3);

    /* Crash points: the outcome is fixed by the protocol. */
    static const struct citem items[] = {
        {1, "commit.fresh_synced:1", M_OLD},     {1, "commit.journal_write:1", M_OLD},
        {1, "commit.journal_synced:1", M_NEW},   {1, "commit.apply:1", M_NEW},
        {1, "checkpoint.synced:1", M_NEW},       {1, "checkpoint.before_header:1", M_NEW},
        {2, "commit.fresh_synced:2", M_NEW},     {2, "commit.journal_write:2", M_NEW},
        {2, "commit.journal_synced:2", M_NEW2},  {2, "commit.apply:2", M_NEW2},
        {2, "checkpoint.synced:1", M_NEW2},      {2, "checkpoint.before_header:1", M_NEW2},
    };
    for (unsigned rep = 0; rep < soak; rep++)
        for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
            p3_fresh_copy();
            CTX("crash: child mode %d, MMS_CRASH=%s", items[i].mode, items[i].crash);
            if (!p3_run(items[i].mode, items[i].crash, UINT32_MAX, &stage))
                FAILF("MMS_CRASH=%s did not kill the child (mode %d)", items[i].crash,
                      items[i].mode);
            P3.points_landed++;
            p3_check(items[i].expect, items[i].crash);
        }
    /* Chains: a child killed after the journal sync, then children killed
     * inside the recovery that replays it (and in its checkpoint). */
    static const struct {
        int mode;
        const char *first, *then[2];
        int expect;
    } chains[] = {
        {1, "commit.journal_synced:1", {"recover.group:1", NULL}, M_NEW},
        {1, "commit.apply:1", {"recover.group:1", "checkpoint.before_header:1"}, M_NEW},
        {2, "commit.journal_synced:2", {"recover.group:2", "recover.group:1"}, M_NEW2},
        {2, "commit.apply:2", {"checkpoint.before_header:1", NULL}, M_NEW2},
    };
    for (unsigned rep = 0; rep < soak; rep++)
        for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++) {
            p3_fresh_copy();
            CTX("crash: chain %zu, first %s", i, chains[i].first);
            ASSERT(p3_run(chains[i].mode, chains[i].first, UINT32_MAX, &stage));
            for (int j = 0; j < 2 && chains[i].then[j]; j++) {
                CTX("crash: chain %zu, recovery with MMS_CRASH=%s", i, chains[i].then[j]);
                if (!p3_run(0, chains[i].then[j], UINT32_MAX, &stage))
                    FAILF("chain %zu: MMS_CRASH=%s did not kill the recovering child", i,
                          chains[i].then[j]);
                ASSERT_EQ(stage, ST_START); /* killed inside mms_open */
            }
            p3_check(chains[i].expect, "an interrupted recovery");
            P3.chains++;
        }
    /* Random moments. More rounds, aimed at the missing side, if one of
     * the outcomes has not occurred yet. */
    unsigned nrand = 40 * soak, done = 0;
    for (unsigned round = 0; round < 4; round++) {
        for (unsigned i = 0; i < nrand; i++, done++) {
            int mode = 1 + (int)(done % 2);
            int nosync = done % 4 >= 2;
            double span = P3.dur[mode] * 1.3;
            double lo = 0;
            if (round > 0 && P3.rnd_outcome[O_OLD] == 0)
                span = P3.dur[mode] * 0.6;
            else if (round > 0)
                lo = P3.dur[mode] * 0.5, span = P3.dur[mode] * 0.8;
            unsigned delay = (unsigned)(lo + (double)(rnd_next(&x) % 1000000) / 1e6 * span);
            p3_fresh_copy();
            CTX("crash: random kill %u (mode %d%s, %u us after open)", done, mode,
                nosync ? " nosync" : "", delay);
            int killed = p3_run(mode + 10 * nosync, NULL, delay, &stage);
            P3.nosync += nosync;
            P3.killed_at[killed ? stage : ST_END]++;
            char what[96];
            snprintf(what, sizeof what, "a kill at stage %s (mode %d)", st_name[stage], mode);
            int out = p3_check(killed ? p3_allowed(mode, stage) : (mode == 2 ? M_NEW2 : M_NEW),
                               what);
            P3.rnd_outcome[out]++;
        }
        if (P3.rnd_outcome[O_OLD] && P3.rnd_outcome[O_NEW] + P3.rnd_outcome[O_NEW2])
            break;
    }
    fprintf(stderr, "   crash points landed %lu, recovery chains %lu; random kills %u, at stage:",
            P3.points_landed, P3.chains, done);
    for (int i = 0; i < ST_N; i++)
        if (P3.killed_at[i])
            fprintf(stderr, " %s %lu", i == ST_END ? "(exited)" : st_name[i], P3.killed_at[i]);
    fprintf(stderr, "\n   outcomes of random kills: old %lu, new %lu, new+txn2 %lu; all children: "
            "old %lu, new %lu, new+txn2 %lu; re-migrated after an old outcome %lu; %lu NOSYNC; "
            "%lu children, "
            "%.1f s\n", P3.rnd_outcome[O_OLD], P3.rnd_outcome[O_NEW], P3.rnd_outcome[O_NEW2],
            P3.outcome[O_OLD], P3.outcome[O_NEW], P3.outcome[O_NEW2], P3.redone, P3.nosync,
            P3.runs,
            (now_us() - t0) / 1e6);
    ASSERT_GE(P3.rnd_outcome[O_OLD], 1);
    ASSERT_GE(P3.rnd_outcome[O_NEW] + P3.rnd_outcome[O_NEW2], 1);
    ASSERT_GE(P3.killed_at[ST_MIGRATE] + P3.killed_at[ST_COMMIT1], 1);
    ASSERT_GE(P3.redone, 1);
    for (int o = 0; o < O_N; o++)
        world_free(&P3.w[o]);
    rmrf(P3.tmpl);
    rmrf(P3.work);
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 3, "PATH MODE NOSYNC");
    if (a) {
        CS = child_page(sizeof *CS);
        crash_child(a[0], atoi(a[1]), atoi(a[2]));
    }
    table_test_begin("test_crash_migrate");
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): the kills are
     * process crashes, which leave in the page cache what they leave on a
     * disk, and the outcomes are the point, not what a sync reaches. */
    shm_choose();
    shm_catch_abort();
    RUN(test_crash);
    shm_cleanup();
    return table_test_end();
}

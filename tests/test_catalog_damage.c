/*
 * test_catalog_damage.c -- a damaged catalog is reported, never read past
 * (issue 10, bug 7, and the four crashes the fuzzer found: a catalog that
 * claims more entries than it holds, an entry whose field list, deleted-
 * record bitmap or region is not what the store has, a header whose region
 * count leaves tables out, a catalog ref that is misaligned or names
 * something else). For each: open, every table call and mms_verify return
 * an error or cope; `mms tables` and `mms dump` exit non-zero. Runs under
 * ASan + UBSan in make test, so an out-of-bounds or misaligned read fails it.
 */
#include "test.h"

#include "internal.h"

struct person {
    int64_t id;
    mms_ref name;
    mms_ref boss;
};
static const mms_field person_fields[] = {MMS_F_I64(struct person, id),
                                          MMS_F_STR(struct person, name),
                                          MMS_F_REF(struct person, boss, "person")};
static const mms_schema person_schema = MMS_SCHEMA(struct person, person_fields);

static char good[512], trial[512];

static void build(void)
{
    snprintf(good, sizeof good, "%s", tpath("catgood"));
    mms_store *s = open_flags(good, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "person", &person_schema, MMS_TABLE_CREATE, &t));
    for (int i = 0; i < 100; i++) {
        struct person p = {.id = i, .boss = i ? mms_table_ref(t, 0) : 0};
        OK(mms_str_new(s, "name", 4, &p.name));
        OK(mms_table_append(t, &p, NULL));
    }
    for (uint64_t i = 50; i < 60; i++)
        OK(mms_table_delete(t, i));
    OK(mms_txn_commit(s));
    OK(mms_close(s)); /* checkpointed: the files hold it all */
}

static void copy_good(void)
{
    char cmd[1200];
    rmrf(trial);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", good, trial);
    if (system(cmd) != 0)
        FAILF("%s failed", cmd);
}

static int fd_of(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/region-0-0", trial);
    int fd = open(p, O_RDWR);
    if (fd < 0)
        FAILF("open %s: %s", p, strerror(errno));
    return fd;
}

static void rd(int fd, void *b, size_t n, uint64_t off)
{
    if (pread(fd, b, n, (off_t)off) != (ssize_t)n)
        FAILF("pread: %s", strerror(errno));
}

static void wr(int fd, const void *b, size_t n, uint64_t off)
{
    if (pwrite(fd, b, n, (off_t)off) != (ssize_t)n)
        FAILF("pwrite: %s", strerror(errno));
}

/* The header (CRC made right after an edit), and the catalog's offset. */
static void hdr_load(int fd, struct mms__hdrbuf *b)
{
    rd(fd, b, sizeof *b, 0);
}

static void hdr_store(int fd, struct mms__hdrbuf *b)
{
    b->h.crc = mms__hdr_crc(&b->h, b->rt);
    wr(fd, b, sizeof *b, 0);
}

enum damage { D_NTABLES, D_FIELDS_REF, D_FIELDS_MISALIGNED, D_TOMB_REF, D_REGION, D_NREGIONS,
              D_CAT_MISALIGNED, D_CAT_OTHER, D_N };
static const char *const damage_name[D_N] = {
    "catalog ntables 65538 (room for 8)", "field list ref in region 4096",
    "field list ref misaligned", "deleted-record bitmap past the heap",
    "entry names region 63", "header says 1 region", "catalog ref misaligned",
    "catalog ref names a string"};

static void damage(enum damage d)
{
    int fd = fd_of();
    struct mms__hdrbuf *b = malloc(sizeof *b);
    hdr_load(fd, b);
    uint64_t cat = MMS_REF_SLOT(b->h.catalog);
    uint64_t ent = cat + sizeof(struct mms__catalog); /* entry 0 */
    uint32_t v32;
    uint64_t v64;
    switch (d) {
    case D_NTABLES:
        v32 = 65538;
        wr(fd, &v32, 4, cat + offsetof(struct mms__catalog, ntables));
        break;
    case D_FIELDS_REF:
        rd(fd, &v64, 8, ent + offsetof(struct mms__tabent, fields));
        v64 |= (uint64_t)4096 << MMS_SLOT_BITS;
        wr(fd, &v64, 8, ent + offsetof(struct mms__tabent, fields));
        break;
    case D_FIELDS_MISALIGNED:
        rd(fd, &v64, 8, ent + offsetof(struct mms__tabent, fields));
        v64 += 3;
        wr(fd, &v64, 8, ent + offsetof(struct mms__tabent, fields));
        break;
    case D_TOMB_REF:
        v64 = (uint64_t)1 << 40;
        wr(fd, &v64, 8, ent + offsetof(struct mms__tabent, tomb));
        break;
    case D_REGION: {
        uint16_t r16 = 63;
        wr(fd, &r16, 2, ent + offsetof(struct mms__tabent, region));
        break;
    }
    case D_NREGIONS:
        b->h.nregions = 1;
        hdr_store(fd, b);
        break;
    case D_CAT_MISALIGNED:
        b->h.catalog += 8;
        hdr_store(fd, b);
        break;
    case D_CAT_OTHER: {
        /* Record 0's name string. */
        struct person p0;
        uint64_t region_base = 0;
        (void)region_base;
        char tp[600];
        snprintf(tp, sizeof tp, "%s/region-1-0", trial);
        int tf = open(tp, O_RDONLY);
        ASSERT(tf >= 0);
        rd(tf, &p0, sizeof p0, 0);
        close(tf);
        b->h.catalog = p0.name;
        hdr_store(fd, b);
        break;
    }
    case D_N:
        break;
    }
    free(b);
    close(fd);
}

/* Every table call on a damaged store: an error, or values that stay
 * inside the store. */
static void poke(mms_store *s)
{
    mms_table_info ti[4];
    size_t n;
    int r = mms_tables(s, ti, 4, &n);
    ASSERT(r == 0 || r == MMS_ECORRUPT);
    mms_table *t = NULL;
    r = mms_table_find(s, "person", &t);
    ASSERT(r == 0 || r == MMS_ECORRUPT || r == MMS_ENOENT);
    if (r == 0) {
        const mms_schema *sc = mms_table_schema(t);
        (void)sc;
        uint64_t nb;
        (void)mms_table_deleted(t, &nb);
        for (uint64_t i = 0; i < mms_table_slots(t) + 2; i++) {
            (void)mms_table_live(t, i);
            const struct person *p = mms_table_get(t, i);
            if (p)
                (void)mms_str_get(s, p->name, NULL);
        }
    }
    mms_table *t2;
    r = mms_table_open(s, "person", &person_schema, 0, &t2);
    ASSERT(r == 0 || r == MMS_ECORRUPT || r == MMS_ENOENT || r == MMS_ESCHEMA);
}

TEST(damaged_catalogs)
{
    build();
    snprintf(trial, sizeof trial, "%s", tpath("cattrial"));
    for (int d = 0; d < D_N; d++) {
        copy_good();
        damage((enum damage)d);
        mms_store *s = NULL;
        int r = mms_open(trial, NULL, &s);
        const char *got = "open refused";
        char msg[512] = "";
        if (r == 0) {
            poke(s);
            r = mms_verify(s, msg, sizeof msg);
            if (r != MMS_ECORRUPT)
                FAILF("%s: mms_verify returned %d (%s)", damage_name[d], r, mms_strerror(r));
            got = msg;
            OK(mms_close(s));
        } else if (r != MMS_ECORRUPT) {
            FAILF("%s: open returned %d (%s)", damage_name[d], r, mms_strerror(r));
        }
        char cmd[700], out[4096];
        snprintf(cmd, sizeof cmd, "tables '%s'", trial);
        int st1 = run_tool(cmd, out, sizeof out);
        snprintf(cmd, sizeof cmd, "dump '%s' person", trial);
        int st2 = run_tool(cmd, out, sizeof out);
        snprintf(cmd, sizeof cmd, "verify '%s'", trial);
        int st3 = run_tool(cmd, out, sizeof out);
        if (st1 == 0 || st2 == 0 || st3 == 0)
            FAILF("%s: mms tables / dump / verify exited %d %d %d", damage_name[d], st1, st2,
                  st3);
        fprintf(stderr, "   %-38s %s\n", damage_name[d], r ? mms_errdetail() : got);
    }
    rmrf(trial);
    rmrf(good);
}

int main(void)
{
    RUN(damaged_catalogs);
    return 0;
}

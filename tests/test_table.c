/*
 * test_table.c -- tables (issue 4): records, deleted slots and their reuse,
 * strings, schema evolution, crashes during a migration, readers in other
 * processes, bad input.
 *
 *  1. model     Random appends (a copy of a record, zeros, append_many),
 *               deletes, field and string updates on two tables (one with
 *               an odd record size of 3 bytes), checked against an in-memory
 *               model after every commit and abort, and after reopens and
 *               through a second, read-only handle: count, slots, liveness
 *               of every slot, every record's bytes (deleted ones zero),
 *               every string, the heap's object count (catalog + one field
 *               list per table + one deleted-slot bitmap per table that had
 *               a delete + one object per string), mms_tables, mms_verify.
 *               An append reuses the lowest deleted slot; append_many never.
 *               An append may copy a record of its own table by address.
 *  2. migrate   A table "emp" with fields of every kind, a REF to itself and
 *               a REF to "dept", and a table "proj" whose REF points into
 *               it, goes through a chain of layouts: fields added (zero and
 *               with defaults), removed (a STR field: its strings are
 *               freed), reordered, widened along every allowed pair in
 *               steps, a field removed and added again, record size changed
 *               alone, two migrations in one transaction. Values are kept
 *               in a logical model (a value survives a widening unchanged)
 *               and every record is compared byte for byte after each step,
 *               inside the transaction, after the commit and after a
 *               reopen. Refused changes (narrowing, other kind, signedness,
 *               shorter chars, another REF target, i64->f64, ...) leave the
 *               table, its data and its region file generation untouched.
 *               An aborted migration leaves the old layout and a working
 *               handle. Read-only handles and writers outside a transaction
 *               get MMS_ESCHEMA / MMS_ENOTXN. A migration that aborts after
 *               its layout was looked at, followed by one to another layout.
 *     edges     Migrating an empty table, one whose records are all deleted,
 *               one created in the same transaction (committed / aborted),
 *               STR and REF fields at odd offsets of a 17-byte record.
 *  3. crash     Child processes (this program, exec'd again by test.h's
 *               child harness) migrate a copy of a template store and are
 *               SIGKILLed at random moments or at crash points
 *               (MMS_CRASH=point:n). The parent reopens: the store verifies
 *               and "emp" is either entirely in the old layout with the old
 *               data or entirely in the new one with the converted data;
 *               both outcomes must occur.
 *  4. reader    A read-only handle in another process sees a table created
 *               by the writer, and later its migrated layout, after its next
 *               mms_read_begin (never before the commit); its pointers into
 *               the table stay valid addresses; refs through MMS_REC follow
 *               the new record size. Outside a read transaction a record
 *               pointer must be NULL or inside the store.
 *     stress    A reader process loops over read transactions while the
 *               writer migrates a table back and forth (and checkpoints):
 *               each read transaction sees one layout, whole, one stamp.
 *  5. bad       Bad names and schemas, deletes of dead or missing slots,
 *               operations outside a transaction, a table created by an
 *               aborted transaction, mms_tables, many tables.
 *  6. limits    1023 tables (the most) in one handle, reopened; creates
 *               that fail at each step (injected) leave no trace.
 *
 * Wrong answers of a kind the library is known to give (a stale layout from
 * mms_table_schema(), a record pointer outside the store) are reported as
 * LIBRARY BUG, counted, and make the program exit 1 at the end, so that the
 * checks after them still run.
 *
 * MMS_SEED=S reruns a seed; MMS_SOAK=N multiplies the iteration counts.
 */
#include "test.h"

#include <ctype.h>
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/mman.h>

#include "internal.h" /* mms__rtab(): the file generation of a region */

static uint64_t seed0;
static unsigned soak = 1;
static char context[512];
static mms_info *info_buf;
static char *strbuf; /* string contents, STRBUF bytes */
#define STRBUF 16384

static void on_abort(int sig)
{
    (void)sig;
    char msg[700];
    int n = snprintf(msg, sizeof msg, "\n  context: %s (seed %llu: rerun with MMS_SEED=%llu)\n",
                     context, (unsigned long long)seed0, (unsigned long long)seed0);
    ssize_t w = write(2, msg, (size_t)n);
    (void)w;
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
}

#define CTX(...) snprintf(context, sizeof context, __VA_ARGS__)

/* A wrong answer that is a known kind of library bug: reported, counted,
 * and the program exits non-zero at the end; the checks after it still
 * run (they do not depend on the wrong answer). */
static unsigned long bugs;
#define BUG(...)                                                               \
    do {                                                                       \
        bugs++;                                                                \
        fprintf(stderr, "%s:%d: LIBRARY BUG: ", __FILE__, __LINE__);           \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n  context: %s\n", context);                         \
    } while (0)

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */
static mms_store *sopen(const char *path, unsigned flags)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    o.grow_step = 1u << 20; /* small steps: more growth, less disk */
    mms_store *s = NULL;
    OK(mms_open(path, &o, &s));
    return s;
}

static uint64_t heap_objects(mms_store *s)
{
    OK(mms_info_get(s, info_buf));
    return info_buf->heap_objects;
}

static uint32_t region_gen(mms_store *s, uint32_t id)
{
    return mms__rtab(s)[id].gen;
}

/* The generations of region id that have a file in the store directory. */
static int region_files(const char *path, uint32_t id, uint32_t *gens, int cap)
{
    DIR *d = opendir(path);
    ASSERT(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        unsigned a, b;
        char tail;
        if (sscanf(de->d_name, "region-%u-%u%c", &a, &b, &tail) == 2 && a == id) {
            if (n < cap)
                gens[n] = b;
            n++;
        }
    }
    closedir(d);
    return n;
}

static int has_region_file(const char *path, uint32_t id, uint32_t gen)
{
    uint32_t g[16];
    int n = region_files(path, id, g, 16);
    for (int i = 0; i < n && i < 16; i++)
        if (g[i] == gen)
            return 1;
    return 0;
}

/* Only the current generation's file is left (after a checkpoint). */
static void only_region_file(const char *path, uint32_t id, uint32_t gen)
{
    uint32_t g[16];
    int n = region_files(path, id, g, 16);
    if (n != 1 || g[0] != gen)
        FAILF("region %u: %d files in %s (first gen %u), expected only generation %u", id, n,
              path, n ? g[0] : 0, gen);
}

/* word appears in text, not as part of a longer name. */
static int mentions(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; (p = strstr(p, word)); p++) {
        bool l = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool r = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (l && r)
            return 1;
    }
    return 0;
}

/* String contents: a pure function of (seed, len). */
static void str_fill(char *buf, uint64_t seed, uint32_t len)
{
    uint64_t x = seed, w = 0;
    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            w = rnd_next(&x);
        buf[i] = (char)(w >> ((i & 7) * 8));
    }
}

static uint32_t pick_len(uint64_t *x)
{
    uint64_t r = rnd_next(x) % 100;
    if (r < 30)
        return (uint32_t)(rnd_next(x) % 9);
    if (r < 82)
        return 9 + (uint32_t)(rnd_next(x) % 92);
    if (r < 97)
        return 101 + (uint32_t)(rnd_next(x) % 2000); /* past the small size classes */
    return 2101 + (uint32_t)(rnd_next(x) % 7000);     /* page runs */
}

static void str_check(mms_store *s, mms_ref ref, uint64_t seed, uint32_t len, const char *what,
                      uint64_t i)
{
    size_t n = 0;
    const char *p = mms_str_get(s, ref, &n);
    if (!p)
        FAILF("%s of record %llu: mms_str_get(0x%llx) is NULL", what, (unsigned long long)i,
              (unsigned long long)ref);
    if (n != len)
        FAILF("%s of record %llu: %zu bytes, expected %u", what, (unsigned long long)i, n, len);
    str_fill(strbuf, seed, len);
    if (memcmp(p, strbuf, len) != 0)
        FAILF("%s of record %llu: content differs", what, (unsigned long long)i);
    if (p[len] != 0)
        FAILF("%s of record %llu: no NUL after the bytes", what, (unsigned long long)i);
}

/* ========================================================================
 * 1. Deletes, slot reuse and strings against a model
 * ======================================================================== */
struct r1 {
    int64_t id;
    uint32_t u;
    int16_t h;
    bool flag;
    char tag[11];
    double d;
    mms_ref name;
    mms_ref note;
    mms_ref link;
    float f;
};
static const mms_field r1_fields[] = {
    MMS_F_I64(struct r1, id),  MMS_F_U32(struct r1, u),   MMS_F_I16(struct r1, h),
    MMS_F_BOOL(struct r1, flag), MMS_F_CHARS(struct r1, tag), MMS_F_F64(struct r1, d),
    MMS_F_STR(struct r1, name), MMS_F_STR(struct r1, note), MMS_F_REF(struct r1, link, "alpha"),
    MMS_F_F32(struct r1, f),
};
static const mms_schema r1_schema = MMS_SCHEMA(struct r1, r1_fields);

struct r2 {
    uint8_t a;
    char b[2];
};
_Static_assert(sizeof(struct r2) == 3, "an odd record size");
static const mms_field r2_fields[] = {MMS_F_U8(struct r2, a), MMS_F_CHARS(struct r2, b)};
static const mms_schema r2_schema = MMS_SCHEMA(struct r2, r2_fields);

static const size_t r1_str_off[2] = {offsetof(struct r1, name), offsetof(struct r1, note)};
static const char *const r1_str_name[2] = {"name", "note"};
#define R1_LINK offsetof(struct r1, link)

struct mstr {
    uint8_t has;
    uint32_t len;
    uint64_t seed;
};

/* Model of one table: liveness, bytes, and the strings of STR fields. */
struct mtab {
    const char *name;
    uint32_t rs, nstr;
    uint64_t slots, count, cap;
    int tomb; /* a delete ever committed: the table has a bitmap in the heap */
    uint8_t *live, *bytes;
    struct mstr *str; /* cap * 2 */
};

static void mtab_init(struct mtab *m, const char *name, uint32_t rs, uint32_t nstr, uint64_t cap)
{
    memset(m, 0, sizeof *m);
    m->name = name;
    m->rs = rs;
    m->nstr = nstr;
    m->cap = cap;
    m->live = calloc(cap, 1);
    m->bytes = calloc(cap, rs);
    m->str = calloc(cap * 2, sizeof *m->str);
    ASSERT(m->live && m->bytes && m->str);
}

static void mtab_copy(struct mtab *d, const struct mtab *src)
{
    uint8_t *live = d->live, *bytes = d->bytes;
    struct mstr *str = d->str;
    ASSERT_EQ(d->cap, src->cap);
    *d = *src;
    d->live = live;
    d->bytes = bytes;
    d->str = str;
    memcpy(d->live, src->live, src->slots);
    memcpy(d->bytes, src->bytes, src->slots * src->rs);
    memcpy(d->str, src->str, src->slots * 2 * sizeof *src->str);
}

static void mtab_free(struct mtab *m)
{
    free(m->live);
    free(m->bytes);
    free(m->str);
}

static uint64_t m_lowest_dead(const struct mtab *m)
{
    for (uint64_t i = 0; i < m->slots; i++)
        if (!m->live[i])
            return i;
    return m->slots;
}

static uint64_t m_pick_live(const struct mtab *m, uint64_t *x)
{
    if (m->count == 0)
        return UINT64_MAX;
    uint64_t start = rnd_next(x) % m->slots;
    for (uint64_t k = 0; k < m->slots; k++) {
        uint64_t i = (start + k) % m->slots;
        if (m->live[i])
            return i;
    }
    FAILF("model: %llu live records but none found", (unsigned long long)m->count);
}

static uint64_t m_pick_dead(const struct mtab *m, uint64_t *x)
{
    if (m->count == m->slots)
        return UINT64_MAX;
    uint64_t start = rnd_next(x) % m->slots;
    for (uint64_t k = 0; k < m->slots; k++) {
        uint64_t i = (start + k) % m->slots;
        if (!m->live[i])
            return i;
    }
    return UINT64_MAX;
}

static struct {
    const char *path;
    mms_store *s;
    mms_table *t[2];
    struct mtab m[2], snap[2];
    uint64_t x;
    unsigned long appends, reused, zeros, noidx, many, many_recs, many_zero, deletes, unlinks,
        str_sets, str_clears, overwrites, commits, aborts, reopens, ro_checks, txn_checks,
        refused_deletes, max_slots, selfcopy;
    const void *arr[2]; /* each table's array: the same address for the handle's life */
} P1;

static void random_bytes(uint64_t *x, void *p, size_t n)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(rnd_next(x) >> 24);
}

/* A record for alpha: random bytes (padding included: records are copied
 * whole), valid strings or null, a link to a live record or null. */
static void r1_make(uint8_t *rec, struct mstr str[2])
{
    uint64_t *x = &P1.x;
    random_bytes(x, rec, sizeof(struct r1));
    for (int k = 0; k < 2; k++) {
        mms_ref ref = 0;
        str[k] = (struct mstr){0, 0, 0};
        if (rnd_next(x) % 100 < (k ? 35u : 70u)) {
            uint32_t len = pick_len(x);
            uint64_t sd = rnd_next(x);
            str_fill(strbuf, sd, len);
            OK(mms_str_new(P1.s, strbuf, len, &ref));
            str[k] = (struct mstr){1, len, sd};
        }
        memcpy(rec + r1_str_off[k], &ref, 8);
    }
    mms_ref lk = 0;
    uint64_t j = m_pick_live(&P1.m[0], x);
    if (j != UINT64_MAX && rnd_next(x) % 2)
        lk = mms_table_ref(P1.t[0], j);
    memcpy(rec + R1_LINK, &lk, 8);
}

/* Before deleting alpha record j: the links to it are cleared (in the store
 * and in the model), as an application must. */
static void r1_clear_links(uint64_t j)
{
    struct mtab *m = &P1.m[0];
    mms_ref ref = mms_table_ref(P1.t[0], j);
    for (uint64_t i = 0; i < m->slots; i++) {
        if (!m->live[i] || memcmp(m->bytes + i * m->rs + R1_LINK, &ref, 8) != 0)
            continue;
        struct r1 *r = mms_table_get(P1.t[0], i);
        ASSERT_EQ(r->link, ref);
        r->link = 0;
        memset(m->bytes + i * m->rs + R1_LINK, 0, 8);
        P1.unlinks++;
    }
}

static void p1_check_counts(int k)
{
    ASSERT_EQ(mms_table_count(P1.t[k]), P1.m[k].count);
    ASSERT_EQ(mms_table_slots(P1.t[k]), P1.m[k].slots);
}

static void op_append(int k, int zeros)
{
    struct mtab *m = &P1.m[k];
    uint64_t *x = &P1.x;
    if (m->count == m->slots && m->slots + 1 >= m->cap)
        return; /* no deleted slot to reuse, no room in the model */
    uint8_t rec[sizeof(struct r1)];
    struct mstr str[2] = {{0, 0, 0}, {0, 0, 0}};
    const void *src = zeros ? NULL : rec;
    if (zeros)
        memset(rec, 0, sizeof rec);
    else if (k == 0)
        r1_make(rec, str);
    else
        random_bytes(x, rec, m->rs);
    if (k == 1 && !zeros && m->count && rnd_next(x) % 3 == 0) {
        /* A copy of a record of the same table, passed by its address in
         * the table (which may grow under it). */
        uint64_t j = m_pick_live(m, x);
        src = mms_table_get(P1.t[k], j);
        memcpy(rec, src, m->rs);
        P1.selfcopy++;
    }
    uint64_t want = m_lowest_dead(m), idx = UINT64_MAX;
    int noidx = rnd_next(x) % 8 == 0;
    OK(mms_table_append(P1.t[k], src, noidx ? NULL : &idx));
    if (noidx) {
        idx = want;
        P1.noidx++;
    }
    if (idx != want)
        FAILF("%s: append got slot %llu; the lowest deleted slot is %llu (slots %llu)", m->name,
              (unsigned long long)idx, (unsigned long long)want, (unsigned long long)m->slots);
    if (idx < m->slots)
        P1.reused++;
    else
        m->slots++;
    m->live[idx] = 1;
    memcpy(m->bytes + idx * m->rs, rec, m->rs);
    memcpy(&m->str[idx * 2], str, sizeof str);
    m->count++;
    P1.appends++;
    P1.zeros += zeros;
    p1_check_counts(k);
    ASSERT(mms_table_live(P1.t[k], idx));
    if (memcmp(mms_table_get(P1.t[k], idx), rec, m->rs) != 0)
        FAILF("%s: appended record %llu does not hold the bytes appended", m->name,
              (unsigned long long)idx);
}

static void op_many(int k)
{
    struct mtab *m = &P1.m[k];
    uint64_t *x = &P1.x;
    /* Sometimes many (while the table is not too long: checks are O(slots)). */
    uint64_t n = rnd_next(x) % 10 == 0 && m->slots < 15000 ? 200 + rnd_next(x) % 3000
                                                           : rnd_next(x) % 12;
    if (m->slots + n >= m->cap)
        return;
    uint64_t first = 12345;
    void *where = NULL;
    int want_where = rnd_next(x) % 4 != 0;
    OK(mms_table_append_many(P1.t[k], n, &first, want_where ? &where : NULL));
    ASSERT_EQ(first, m->slots); /* never reuses a deleted slot */
    if (n && want_where)
        ASSERT(where == mms_table_get(P1.t[k], first));
    P1.many++;
    P1.many_zero += n == 0;
    P1.many_recs += n;
    for (uint64_t j = 0; j < n; j++) {
        uint64_t i = first + j;
        m->live[i] = 1;
        memset(m->bytes + i * m->rs, 0, m->rs);
        memset(&m->str[i * 2], 0, 2 * sizeof *m->str);
    }
    m->slots += n;
    m->count += n;
    p1_check_counts(k);
    /* The space is zeroed, even where an aborted transaction wrote. */
    for (uint64_t j = 0; j < n; j++) {
        const uint8_t *p = mms_table_get(P1.t[k], first + j);
        for (uint32_t b = 0; b < m->rs; b++)
            if (p[b])
                FAILF("%s: append_many record %llu byte %u is 0x%02x, not zero", m->name,
                      (unsigned long long)(first + j), b, p[b]);
    }
    /* Fill some in place. */
    for (uint64_t j = 0; j < n; j++) {
        if (rnd_next(x) % 3)
            continue;
        uint64_t i = first + j;
        uint8_t rec[sizeof(struct r1)];
        struct mstr str[2] = {{0, 0, 0}, {0, 0, 0}};
        if (k == 0)
            r1_make(rec, str);
        else
            random_bytes(x, rec, m->rs);
        uint8_t *dst = where ? (uint8_t *)where + j * m->rs : mms_table_get(P1.t[k], i);
        memcpy(dst, rec, m->rs);
        memcpy(m->bytes + i * m->rs, rec, m->rs);
        memcpy(&m->str[i * 2], str, sizeof str);
    }
}

static void op_delete(int k)
{
    struct mtab *m = &P1.m[k];
    uint64_t i = m_pick_live(m, &P1.x);
    if (i == UINT64_MAX)
        return;
    if (k == 0)
        r1_clear_links(i);
    OK(mms_table_delete(P1.t[k], i));
    m->live[i] = 0;
    memset(m->bytes + i * m->rs, 0, m->rs);
    memset(&m->str[i * 2], 0, 2 * sizeof *m->str);
    m->count--;
    m->tomb = 1;
    P1.deletes++;
    p1_check_counts(k);
    ASSERT(!mms_table_live(P1.t[k], i));
    const uint8_t *p = mms_table_get(P1.t[k], i);
    ASSERT(p);
    for (uint32_t b = 0; b < m->rs; b++)
        if (p[b])
            FAILF("%s: deleted record %llu byte %u is 0x%02x, not zero", m->name,
                  (unsigned long long)i, b, p[b]);
}

static void op_overwrite(int k)
{
    struct mtab *m = &P1.m[k];
    uint64_t *x = &P1.x;
    uint64_t i = m_pick_live(m, x);
    if (i == UINT64_MAX)
        return;
    uint8_t *p = mms_table_get(P1.t[k], i);
    size_t off, len;
    uint8_t val[16];
    if (k == 1) {
        off = rnd_next(x) % 3;
        len = 1 + rnd_next(x) % (3 - off);
        random_bytes(x, val, len);
    } else {
        static const size_t offs[] = {offsetof(struct r1, id), offsetof(struct r1, u),
                                      offsetof(struct r1, h), offsetof(struct r1, flag),
                                      offsetof(struct r1, tag), offsetof(struct r1, d),
                                      offsetof(struct r1, f), R1_LINK};
        static const size_t lens[] = {8, 4, 2, 1, 11, 8, 4, 8};
        unsigned w = (unsigned)(rnd_next(x) % 8);
        off = offs[w];
        len = lens[w];
        if (off == R1_LINK) {
            mms_ref lk = 0;
            uint64_t j = m_pick_live(m, x);
            if (rnd_next(x) % 3)
                lk = mms_table_ref(P1.t[0], j);
            memcpy(val, &lk, 8);
        } else {
            random_bytes(x, val, len);
        }
    }
    memcpy(p + off, val, len);
    memcpy(m->bytes + i * m->rs + off, val, len);
    P1.overwrites++;
}

static void op_string(void)
{
    struct mtab *m = &P1.m[0];
    uint64_t *x = &P1.x;
    uint64_t i = m_pick_live(m, x);
    if (i == UINT64_MAX)
        return;
    int f = (int)(rnd_next(x) % 2);
    uint8_t *p = (uint8_t *)mms_table_get(P1.t[0], i) + r1_str_off[f];
    mms_ref *field = (mms_ref *)(void *)p;
    struct mstr *ms = &m->str[i * 2 + (uint64_t)f];
    if (rnd_next(x) % 10 < 7) {
        uint32_t len = pick_len(x);
        uint64_t sd = rnd_next(x);
        str_fill(strbuf, sd, len);
        OK(mms_str_set(P1.s, field, strbuf, len)); /* frees the old one, if any */
        *ms = (struct mstr){1, len, sd};
        P1.str_sets++;
    } else {
        if (*field)
            OK(mms_free(P1.s, *field));
        *field = 0;
        *ms = (struct mstr){0, 0, 0};
        P1.str_clears++;
    }
    memcpy(m->bytes + i * m->rs + r1_str_off[f], field, 8);
}

/* Refused operations change nothing. */
static void op_refused(void)
{
    int k = (int)(rnd_next(&P1.x) % 2);
    struct mtab *m = &P1.m[k];
    uint64_t d = m_pick_dead(m, &P1.x);
    if (d != UINT64_MAX)
        FAILS(mms_table_delete(P1.t[k], d), MMS_ERANGE);
    FAILS(mms_table_delete(P1.t[k], m->slots), MMS_ERANGE);
    FAILS(mms_table_delete(P1.t[k], m->slots + 1000), MMS_ERANGE);
    FAILS(mms_table_delete(P1.t[k], UINT64_MAX), MMS_ERANGE);
    P1.refused_deletes++;
    p1_check_counts(k);
}

/* Everything the store says about both tables against the model. */
static void p1_check(mms_store *s, mms_table *const th[2], int verify)
{
    uint64_t strings = 0, tombs = 0;
    for (int k = 0; k < 2; k++) {
        const struct mtab *m = &P1.m[k];
        mms_table *t = th[k];
        ASSERT_EQ(mms_table_count(t), m->count);
        ASSERT_EQ(mms_table_slots(t), m->slots);
        const uint8_t *arr = mms_table_array(t);
        if (m->slots == 0)
            ASSERT(arr == NULL);
        else
            ASSERT(arr == mms_table_get(t, 0));
        if (th == P1.t && arr) {
            if (P1.arr[k] && P1.arr[k] != arr)
                FAILF("%s: the array moved from %p to %p", m->name, P1.arr[k], (void *)arr);
            P1.arr[k] = arr;
        }
        static const uint8_t zero[sizeof(struct r1)];
        uint64_t nbits = 12345;
        const uint64_t *bits = mms_table_deleted(t, &nbits);
        ASSERT(bits ? nbits > 0 : nbits == 0);
        for (uint64_t i = 0; i < m->slots; i++) {
            int live = mms_table_live(t, i);
            int fast = i >= nbits || !(bits[i / 64] >> (i % 64) & 1);
            if (fast != live)
                FAILF("%s slot %llu: mms_table_live %d, mms_table_deleted says live %d", m->name,
                      (unsigned long long)i, live, fast);
            if (live != m->live[i])
                FAILF("%s slot %llu: live %d in the store, %d in the model", m->name,
                      (unsigned long long)i, live, m->live[i]);
            const uint8_t *p = mms_table_get(t, i);
            if (p != arr + i * m->rs)
                FAILF("%s slot %llu: mms_table_get is not array + i * record size", m->name,
                      (unsigned long long)i);
            const uint8_t *want = live ? m->bytes + i * m->rs : zero;
            if (memcmp(p, want, m->rs) != 0) {
                uint32_t b = 0;
                while (p[b] == want[b])
                    b++;
                FAILF("%s slot %llu (%s): byte %u is 0x%02x, expected 0x%02x", m->name,
                      (unsigned long long)i, live ? "live" : "deleted", b, p[b], want[b]);
            }
            if (i % 61 == 0 && mms_rec(s, mms_table_ref(t, i)) != p)
                FAILF("%s slot %llu: mms_rec(mms_table_ref()) is not the record", m->name,
                      (unsigned long long)i);
            if (!live)
                continue;
            for (uint32_t f = 0; f < m->nstr; f++) {
                const struct mstr *ms = &m->str[i * 2 + f];
                if (!ms->has)
                    continue;
                mms_ref ref;
                memcpy(&ref, p + r1_str_off[f], 8);
                str_check(s, ref, ms->seed, ms->len, r1_str_name[f], i);
                strings++;
            }
        }
        ASSERT(!mms_table_live(t, m->slots));
        ASSERT(!mms_table_live(t, UINT64_MAX));
        ASSERT(mms_table_get(t, m->slots) == NULL);
        ASSERT(mms_table_get(t, UINT64_MAX) == NULL);
        tombs += (uint64_t)m->tomb;
    }
    /* Catalog + 2 field lists + bitmaps + strings: nothing leaks. */
    ASSERT_EQ(heap_objects(s), 1 + 2 + tombs + strings);
    mms_table_info ti[4];
    size_t n = 0;
    OK(mms_tables(s, ti, 4, &n));
    ASSERT_EQ(n, 2);
    for (int k = 0; k < 2; k++) {
        ASSERT(strcmp(ti[k].name, P1.m[k].name) == 0);
        ASSERT_EQ(ti[k].count, P1.m[k].count);
        ASSERT_EQ(ti[k].slots, P1.m[k].slots);
        ASSERT_EQ(ti[k].record_size, P1.m[k].rs);
        ASSERT_EQ(ti[k].layout_gen, 0);
    }
    ASSERT_EQ(ti[0].nfields, 10);
    ASSERT_EQ(ti[1].nfields, 2);
    if (verify)
        verify_ok(s);
}

static void p1_open_tables(mms_store *s, mms_table *th[2])
{
    static const char *const names[2] = {"alpha", "beta"};
    static const mms_schema *const sc[2] = {&r1_schema, &r2_schema};
    for (int k = 0; k < 2; k++) {
        th[k] = NULL;
        if (rnd_next(&P1.x) % 2)
            OK(mms_table_open(s, names[k], sc[k], 0, &th[k]));
        else
            OK(mms_table_find(s, names[k], &th[k]));
        ASSERT(th[k]);
        ASSERT(strcmp(mms_table_name(th[k]), names[k]) == 0);
        const mms_schema *st = mms_table_schema(th[k]);
        ASSERT(st);
        ASSERT_EQ(st->record_size, sc[k]->record_size);
        ASSERT_EQ(st->nfields, sc[k]->nfields);
    }
}

static void p1_txn(void)
{
    uint64_t *x = &P1.x;
    for (int k = 0; k < 2; k++)
        mtab_copy(&P1.snap[k], &P1.m[k]);
    uint64_t txn0 = mms_txn_id(P1.s);
    OK(mms_txn_begin(P1.s, 0));
    unsigned nops = 1 + (unsigned)(rnd_next(x) % 14);
    for (unsigned j = 0; j < nops; j++) {
        unsigned r = (unsigned)(rnd_next(x) % 100);
        int k = rnd_next(x) % 4 == 0;
        if (r < 22)
            op_append(k, 0);
        else if (r < 28)
            op_append(k, 1);
        else if (r < 33)
            op_many(k);
        else if (r < 56)
            op_delete(k);
        else if (r < 71)
            op_overwrite(k);
        else if (r < 92)
            op_string();
        else
            op_refused();
        if (rnd_next(x) % 12 == 0) {
            p1_check(P1.s, P1.t, 0); /* the transaction's own view */
            P1.txn_checks++;
        }
    }
    if (rnd_next(x) % 5 == 0) {
        OK(mms_txn_abort(P1.s));
        for (int k = 0; k < 2; k++)
            mtab_copy(&P1.m[k], &P1.snap[k]);
        ASSERT_EQ(mms_txn_id(P1.s), txn0);
        P1.aborts++;
    } else {
        OK(mms_txn_commit(P1.s));
        P1.commits++;
    }
    for (int k = 0; k < 2; k++)
        if (P1.m[k].slots > P1.max_slots)
            P1.max_slots = P1.m[k].slots;
    p1_check(P1.s, P1.t, 1);
}

TEST(test_model)
{
    P1.path = tpath("table-model");
    P1.x = seed0 ^ 0x5151;
    mtab_init(&P1.m[0], "alpha", sizeof(struct r1), 2, 40000);
    mtab_init(&P1.m[1], "beta", sizeof(struct r2), 0, 40000);
    mtab_init(&P1.snap[0], "alpha", sizeof(struct r1), 2, 40000);
    mtab_init(&P1.snap[1], "beta", sizeof(struct r2), 0, 40000);
    P1.s = sopen(P1.path, MMS_CREATE);
    ASSERT_EQ(heap_objects(P1.s), 0);
    OK(mms_txn_begin(P1.s, 0));
    OK(mms_table_open(P1.s, "alpha", &r1_schema, MMS_TABLE_CREATE, &P1.t[0]));
    OK(mms_table_open(P1.s, "beta", &r2_schema, MMS_TABLE_CREATE, &P1.t[1]));
    OK(mms_txn_commit(P1.s));
    p1_check(P1.s, P1.t, 1);

    unsigned ntxn = 600 * soak;
    double t0 = now_us();
    for (unsigned n = 1; n <= ntxn; n++) {
        CTX("model: transaction %u", n);
        p1_txn();
        if (n % 23 == 0) { /* reopen */
            OK(mms_close(P1.s));
            P1.s = sopen(P1.path, 0);
            p1_open_tables(P1.s, P1.t);
            P1.arr[0] = P1.arr[1] = NULL;
            p1_check(P1.s, P1.t, 1);
            P1.reopens++;
        }
        if (n % 9 == 0) { /* another handle, read-only */
            mms_store *ro = sopen(P1.path, MMS_RDONLY);
            mms_table *th[2];
            OK(mms_read_begin(ro));
            p1_open_tables(ro, th);
            p1_check(ro, th, 0);
            OK(mms_read_end(ro));
            OK(mms_close(ro));
            P1.ro_checks++;
        }
        if (n == ntxn / 2 || n == ntxn) {
            /* Delete everything: only the fixed objects stay in the heap;
             * then appends fill the slots from the lowest up. */
            CTX("model: deleting everything after transaction %u", n);
            uint64_t before = heap_objects(P1.s);
            OK(mms_txn_begin(P1.s, 0));
            for (int k = 0; k < 2; k++)
                for (uint64_t i = 0; i < P1.m[k].slots; i++)
                    if (P1.m[k].live[i]) {
                        /* Links into alpha need no clearing: every record goes. */
                        OK(mms_table_delete(P1.t[k], i));
                        P1.m[k].live[i] = 0;
                        memset(P1.m[k].bytes + i * P1.m[k].rs, 0, P1.m[k].rs);
                        memset(&P1.m[k].str[i * 2], 0, 2 * sizeof(struct mstr));
                        P1.m[k].count--;
                        P1.m[k].tomb = 1;
                    }
            OK(mms_txn_commit(P1.s));
            p1_check(P1.s, P1.t, 1);
            uint64_t after = heap_objects(P1.s);
            ASSERT_EQ(after, 1 + 2 + 2); /* catalog, field lists, bitmaps */
            ASSERT_LE(after, before);
            fprintf(stderr, "   deleted everything: heap objects %llu -> %llu\n",
                    (unsigned long long)before, (unsigned long long)after);
            OK(mms_txn_begin(P1.s, 0));
            for (int j = 0; j < 5; j++)
                op_append(j % 2, j == 4);
            ASSERT_EQ(P1.m[0].count, 3);
            ASSERT(P1.m[0].live[0] && P1.m[0].live[1] && P1.m[0].live[2]);
            op_many(0);
            OK(mms_txn_commit(P1.s));
            p1_check(P1.s, P1.t, 1);
        }
    }
    OK(mms_close(P1.s));
    fprintf(stderr,
            "   %lu commits, %lu aborts, %lu reopens, %lu read-only checks, %lu in-txn checks; "
            "appends %lu (reused a slot %lu, zeros %lu, no index %lu), append_many %lu (%lu "
            "records, %lu of n=0), deletes %lu (links cleared %lu), refused deletes %lu, "
            "strings set %lu / cleared %lu, overwrites %lu; beta copies of its own records "
            "%lu; most slots %lu; %.1f s\n",
            P1.commits, P1.aborts, P1.reopens, P1.ro_checks, P1.txn_checks, P1.appends, P1.reused,
            P1.zeros, P1.noidx, P1.many, P1.many_recs, P1.many_zero, P1.deletes, P1.unlinks,
            P1.refused_deletes, P1.str_sets, P1.str_clears, P1.overwrites, P1.selfcopy,
            P1.max_slots,
            (now_us() - t0) / 1e6);
    ASSERT_GE(P1.aborts, 5);
    ASSERT_GE(P1.reused, 20);
    ASSERT_GE(P1.many_recs, 200);
    ASSERT_GE(P1.deletes, 50);
    ASSERT_GE(P1.unlinks, 1);
    ASSERT_GE(P1.str_sets, 20);
    ASSERT_GE(P1.reopens, 5);
    rmrf(P1.path);
    for (int k = 0; k < 2; k++) {
        mtab_free(&P1.m[k]);
        mtab_free(&P1.snap[k]);
    }
}

/* ========================================================================
 * Logical model for parts 2 and 3
 *
 * A record's values are kept per field *name*, as logical values (an
 * integer, a float, chars, a string, a ref); a widening keeps the value, so
 * the expected bytes of a record in any layout are its logical values
 * encoded by that layout's kinds. Bytes that no field covers are zero.
 * ======================================================================== */
enum { LV_NONE, LV_INT, LV_UINT, LV_FLT, LV_BOOL, LV_CHARS, LV_STR, LV_REF };
struct lv {
    uint8_t t, has; /* has: LV_STR with a string (else a null ref) */
    uint32_t len;   /* LV_STR, LV_CHARS */
    mms_ref ref;    /* LV_STR with has, LV_REF */
    union {
        int64_t i;
        uint64_t u;
        double f;
        uint64_t seed; /* LV_STR */
        char c[24];
    } v;
};

#define NLF 40
static const char *lnames[NLF];
static int nlnames;

static int lid(const char *name)
{
    for (int i = 0; i < nlnames; i++)
        if (strcmp(lnames[i], name) == 0)
            return i;
    ASSERT_LT(nlnames, NLF);
    lnames[nlnames] = name;
    return nlnames++;
}

struct gt {
    const char *name;
    mms_table *t;
    const mms_schema *sc;
    uint64_t slots, count, cap, layout_gen;
    int tomb;
    uint8_t *live;
    struct lv *v; /* cap * NLF */
};
#define GV(g, i, l) (&(g)->v[(size_t)(i) * NLF + (size_t)(l)])

enum { W_DEPT, W_EMP, W_PROJ, W_N };
struct world {
    mms_store *s;
    struct gt g[W_N];
    unsigned long appends, reused, deletes, unrefs, sets;
};

static void gt_init(struct gt *g, const char *name, const mms_schema *sc, uint64_t cap)
{
    memset(g, 0, sizeof *g);
    g->name = name;
    g->sc = sc;
    g->cap = cap;
    g->live = calloc(cap, 1);
    g->v = calloc(cap * NLF, sizeof *g->v);
    ASSERT(g->live && g->v);
}

static void gt_free(struct gt *g)
{
    free(g->live);
    free(g->v);
    g->live = NULL;
    g->v = NULL;
}

static void world_copy(struct world *d, const struct world *src)
{
    *d = *src;
    for (int k = 0; k < W_N; k++) {
        const struct gt *a = &src->g[k];
        struct gt *b = &d->g[k];
        b->live = malloc(a->cap);
        b->v = malloc(a->cap * NLF * sizeof *a->v);
        ASSERT(b->live && b->v);
        memcpy(b->live, a->live, a->cap);
        memcpy(b->v, a->v, a->cap * NLF * sizeof *a->v);
    }
}

static void world_free(struct world *w)
{
    for (int k = 0; k < W_N; k++)
        gt_free(&w->g[k]);
}

static int world_index(const struct world *w, const char *name)
{
    for (int k = 0; k < W_N; k++)
        if (strcmp(w->g[k].name, name) == 0)
            return k;
    FAILF("no table %s in the model", name);
}

static void world_handles(const struct world *w, mms_table *th[W_N])
{
    for (int k = 0; k < W_N; k++)
        th[k] = w->g[k].t;
}

static uint32_t table_region(const mms_table *t)
{
    return MMS_REF_REGION(mms_table_ref(t, 0));
}

static const mms_field *field_named(const mms_schema *sc, const char *name)
{
    for (uint32_t i = 0; i < sc->nfields; i++)
        if (strcmp(sc->fields[i].name, name) == 0)
            return &sc->fields[i];
    return NULL;
}

static int kind_int(unsigned k)
{
    return k >= MMS_KIND_I8 && k <= MMS_KIND_U64;
}

/* The bytes of field f for logical value l, at rec + f->offset. */
static void encode(char *rec, const mms_field *f, const struct lv *l)
{
    char *p = rec + f->offset;
    if (kind_int(f->kind)) {
        uint64_t w = l->t == LV_INT ? (uint64_t)l->v.i : l->t == LV_UINT ? l->v.u : 0;
        memcpy(p, &w, f->size); /* little-endian: the low bytes */
        return;
    }
    switch (f->kind) {
    case MMS_KIND_F32: {
        float x = l->t == LV_FLT ? (float)l->v.f : 0.0f;
        memcpy(p, &x, 4);
        break;
    }
    case MMS_KIND_F64: {
        double x = l->t == LV_FLT    ? l->v.f
                   : l->t == LV_INT  ? (double)l->v.i
                   : l->t == LV_UINT ? (double)l->v.u
                                     : 0.0;
        memcpy(p, &x, 8);
        break;
    }
    case MMS_KIND_BOOL:
        *p = l->t == LV_BOOL ? (char)l->v.u : 0;
        break;
    case MMS_KIND_CHARS:
        memset(p, 0, f->size);
        if (l->t == LV_CHARS) {
            ASSERT_LE(l->len, f->size);
            memcpy(p, l->v.c, l->len);
        }
        break;
    default: { /* STR, BLOB, REF */
        mms_ref r = (l->t == LV_STR && l->has) || l->t == LV_REF ? l->ref : 0;
        memcpy(p, &r, 8);
    }
    }
}

/* The logical value of the bytes of a field of kind f (for defaults). */
static void decode_lv(const mms_field *f, const void *bytes, struct lv *l)
{
    memset(l, 0, sizeof *l);
    const unsigned char *b = bytes;
    if (f->kind >= MMS_KIND_I8 && f->kind <= MMS_KIND_I64) {
        uint64_t w = 0;
        memcpy(&w, b, f->size);
        unsigned sh = 64 - 8 * f->size;
        l->t = LV_INT;
        l->v.i = sh ? (int64_t)(w << sh) >> sh : (int64_t)w;
    } else if (kind_int(f->kind)) {
        l->t = LV_UINT;
        memcpy(&l->v.u, b, f->size);
    } else if (f->kind == MMS_KIND_F32) {
        float x;
        memcpy(&x, b, 4);
        l->t = LV_FLT;
        l->v.f = x;
    } else if (f->kind == MMS_KIND_F64) {
        l->t = LV_FLT;
        memcpy(&l->v.f, b, 8);
    } else if (f->kind == MMS_KIND_BOOL) {
        l->t = LV_BOOL;
        l->v.u = b[0];
    } else if (f->kind == MMS_KIND_CHARS) {
        l->t = LV_CHARS;
        l->len = (uint32_t)strnlen((const char *)b, f->size);
        memcpy(l->v.c, b, l->len);
    } else {
        FAILF("no defaults for refs in this test");
    }
}

/* A random value for a numeric, bool or chars field; force >= 0 picks
 * extreme number force (0 = minimum, 1 = maximum, 2 = -1 or max-1, ...). */
static void gen_lv(uint64_t *x, const mms_field *f, struct lv *l, int force)
{
    memset(l, 0, sizeof *l);
    unsigned pick = force >= 0 ? (unsigned)force : (unsigned)(rnd_next(x) % 9);
    if (f->kind >= MMS_KIND_I8 && f->kind <= MMS_KIND_I64) {
        unsigned bits = 8 * f->size;
        int64_t hi = bits == 64 ? INT64_MAX : (int64_t)((UINT64_C(1) << (bits - 1)) - 1);
        int64_t lo = -hi - 1;
        const int64_t vals[] = {lo, hi, -1, lo + 1, hi - 1, 0, 1};
        l->t = LV_INT;
        l->v.i = pick < 7 ? vals[pick] : (int64_t)rnd_next(x) >> (64 - bits);
    } else if (kind_int(f->kind)) {
        unsigned bits = 8 * f->size;
        uint64_t hi = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
        const uint64_t vals[] = {0, hi, hi - 1, hi / 2 + 1, hi / 2, 1, 2};
        l->t = LV_UINT;
        l->v.u = pick < 7 ? vals[pick] : rnd_next(x) >> (64 - bits);
    } else if (f->kind == MMS_KIND_F32) {
        const float vals[] = {-FLT_MAX, FLT_MAX, FLT_TRUE_MIN, -0.0f, INFINITY, NAN, 0.1f};
        float v;
        if (pick < 7) {
            v = vals[pick];
        } else {
            uint32_t w = (uint32_t)rnd_next(x);
            memcpy(&v, &w, 4);
        }
        l->t = LV_FLT;
        l->v.f = v; /* the double a float widens to */
    } else if (f->kind == MMS_KIND_F64) {
        const double vals[] = {-DBL_MAX, DBL_MAX, DBL_TRUE_MIN, -0.0, -INFINITY, NAN, 0.1};
        l->t = LV_FLT;
        if (pick < 7) {
            l->v.f = vals[pick];
        } else {
            uint64_t w = rnd_next(x);
            memcpy(&l->v.f, &w, 8);
        }
    } else if (f->kind == MMS_KIND_BOOL) {
        l->t = LV_BOOL;
        l->v.u = pick % 2;
    } else if (f->kind == MMS_KIND_CHARS) {
        ASSERT_LE(f->size, sizeof l->v.c);
        l->t = LV_CHARS;
        /* Full (no NUL at all), empty, or anything between. */
        l->len = pick == 1 ? f->size : pick == 0 ? 0 : (uint32_t)(rnd_next(x) % (f->size + 1));
        for (uint32_t i = 0; i < l->len; i++)
            l->v.c[i] = (char)(1 + rnd_next(x) % 255);
    } else {
        FAILF("gen_lv: kind %u", f->kind);
    }
}

static uint64_t gt_lowest_dead(const struct gt *g)
{
    for (uint64_t i = 0; i < g->slots; i++)
        if (!g->live[i])
            return i;
    return g->slots;
}

static uint64_t gt_pick_live(const struct gt *g, uint64_t *x)
{
    if (g->count == 0)
        return UINT64_MAX;
    uint64_t start = rnd_next(x) % g->slots;
    for (uint64_t k = 0; k < g->slots; k++) {
        uint64_t i = (start + k) % g->slots;
        if (g->live[i])
            return i;
    }
    FAILF("model of %s: no live record", g->name);
}

/* A value for field f of a record: strings are created in the store. */
static void make_value(struct world *W, uint64_t *x, const mms_field *f, struct lv *l, int force)
{
    memset(l, 0, sizeof *l);
    if (f->kind == MMS_KIND_STR || f->kind == MMS_KIND_BLOB) {
        l->t = LV_STR;
        if (rnd_next(x) % 100 < 60) {
            uint32_t len = pick_len(x) % 400;
            uint64_t sd = rnd_next(x);
            str_fill(strbuf, sd, len);
            OK(mms_str_new(W->s, strbuf, len, &l->ref));
            l->has = 1;
            l->len = len;
            l->v.seed = sd;
        }
    } else if (f->kind == MMS_KIND_REF) {
        struct gt *tg = &W->g[world_index(W, f->target)];
        uint64_t j = gt_pick_live(tg, x);
        if (j != UINT64_MAX && rnd_next(x) % 5) {
            l->t = LV_REF;
            l->ref = mms_table_ref(tg->t, j);
        }
    } else {
        gen_lv(x, f, l, force);
    }
}

/* A new record of g: logical values in v[NLF], bytes in rec. */
static void gt_make(struct world *W, struct gt *g, uint64_t *x, struct lv *v, char *rec, int force)
{
    memset(v, 0, NLF * sizeof *v);
    memset(rec, 0, g->sc->record_size);
    for (uint32_t k = 0; k < g->sc->nfields; k++) {
        const mms_field *f = &g->sc->fields[k];
        struct lv *l = &v[lid(f->name)];
        make_value(W, x, f, l, force);
        encode(rec, f, l);
    }
}

static uint64_t gt_append(struct world *W, struct gt *g, uint64_t *x, int force)
{
    struct lv v[NLF];
    char rec[1024];
    ASSERT_LE(g->sc->record_size, sizeof rec);
    ASSERT_LT(g->slots, g->cap);
    gt_make(W, g, x, v, rec, force);
    uint64_t want = gt_lowest_dead(g), idx = UINT64_MAX;
    OK(mms_table_append(g->t, rec, &idx));
    if (idx != want)
        FAILF("%s: append got slot %llu, the lowest deleted slot is %llu", g->name,
              (unsigned long long)idx, (unsigned long long)want);
    if (idx == g->slots)
        g->slots++;
    else
        W->reused++;
    g->live[idx] = 1;
    memcpy(GV(g, idx, 0), v, sizeof v);
    g->count++;
    W->appends++;
    return idx;
}

static void gt_append_many(struct world *W, struct gt *g, uint64_t *x, uint64_t n)
{
    ASSERT_LE(g->slots + n, g->cap);
    uint64_t first = 0;
    void *where = NULL;
    OK(mms_table_append_many(g->t, n, &first, &where));
    ASSERT_EQ(first, g->slots);
    g->slots += n;
    g->count += n;
    for (uint64_t j = 0; j < n; j++) {
        g->live[first + j] = 1;
        memset(GV(g, first + j, 0), 0, NLF * sizeof(struct lv));
    }
    struct lv v[NLF];
    char rec[1024];
    for (uint64_t j = 0; j < n; j++) {
        gt_make(W, g, x, v, rec, -1);
        memcpy((char *)where + j * g->sc->record_size, rec, g->sc->record_size);
        memcpy(GV(g, first + j, 0), v, sizeof v);
    }
}

/* Before record j of g goes: refs to it are cleared, in the store and the
 * model (verify wants refs to live records). */
static void gt_unref(struct world *W, struct gt *g, uint64_t j)
{
    mms_ref ref = mms_table_ref(g->t, j);
    for (int k = 0; k < W_N; k++) {
        struct gt *h = &W->g[k];
        for (uint32_t fi = 0; fi < h->sc->nfields; fi++) {
            const mms_field *f = &h->sc->fields[fi];
            if (f->kind != MMS_KIND_REF || strcmp(f->target, g->name) != 0)
                continue;
            int l = lid(f->name);
            for (uint64_t i = 0; i < h->slots; i++) {
                struct lv *v = GV(h, i, l);
                if (!h->live[i] || v->t != LV_REF || v->ref != ref)
                    continue;
                char *p = (char *)mms_table_get(h->t, i) + f->offset;
                mms_ref cur;
                memcpy(&cur, p, 8);
                ASSERT_EQ(cur, ref);
                memset(p, 0, 8);
                memset(v, 0, sizeof *v);
                W->unrefs++;
            }
        }
    }
}

static void gt_delete(struct world *W, struct gt *g, uint64_t i)
{
    gt_unref(W, g, i);
    OK(mms_table_delete(g->t, i));
    g->live[i] = 0;
    memset(GV(g, i, 0), 0, NLF * sizeof(struct lv));
    g->count--;
    g->tomb = 1;
    W->deletes++;
}

/* A new value for a random field of live record i. */
static void gt_set(struct world *W, struct gt *g, uint64_t i, uint64_t *x)
{
    const mms_field *f = &g->sc->fields[rnd_next(x) % g->sc->nfields];
    struct lv *l = GV(g, i, lid(f->name));
    char *rec = mms_table_get(g->t, i);
    if (f->kind == MMS_KIND_STR) {
        mms_ref cur;
        memcpy(&cur, rec + f->offset, 8);
        ASSERT_EQ(cur, l->t == LV_STR && l->has ? l->ref : 0);
        if (rnd_next(x) % 4) {
            uint32_t len = pick_len(x) % 400;
            uint64_t sd = rnd_next(x);
            str_fill(strbuf, sd, len);
            OK(mms_str_set(W->s, &cur, strbuf, len));
            *l = (struct lv){.t = LV_STR, .has = 1, .len = len, .ref = cur, .v.seed = sd};
        } else {
            OK(mms_free(W->s, cur));
            memset(l, 0, sizeof *l);
            l->t = LV_STR;
        }
    } else {
        make_value(W, x, f, l, -1);
    }
    encode(rec, f, l);
    W->sets++;
}

/* The stored layout (mms_table_schema) is sc. A mismatch is reported as a
 * bug and counted; the data checks that follow use the model's layout. */
static void schema_same(const mms_schema *st, const mms_schema *sc, const char *table)
{
    if (!st)
        FAILF("table %s: mms_table_schema is NULL", table);
    if (st->record_size != sc->record_size || st->nfields != sc->nfields) {
        BUG("table %s: mms_table_schema() says %u bytes and %u fields; the table has %u and %u",
            table, st->record_size, st->nfields, sc->record_size, sc->nfields);
        return;
    }
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *a = &st->fields[i], *b = &sc->fields[i];
        if (strcmp(a->name, b->name) != 0 || a->kind != b->kind || a->offset != b->offset ||
            a->size != b->size) {
            BUG("table %s field %u: mms_table_schema() says %s kind %u offset %u size %u; the "
                "table has %s %u %u %u", table, i, a->name, a->kind, a->offset, a->size,
                b->name, b->kind, b->offset, b->size);
            return;
        }
        if (b->kind == MMS_KIND_REF && (!a->target || strcmp(a->target, b->target) != 0))
            FAILF("table %s field %s: stored target %s, expected %s", table, a->name,
                  a->target ? a->target : "(null)", b->target);
    }
}

static int schema_eq(const mms_schema *st, const mms_schema *sc)
{
    if (st->record_size != sc->record_size || st->nfields != sc->nfields)
        return 0;
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *a = &st->fields[i], *b = &sc->fields[i];
        if (strcmp(a->name, b->name) != 0 || a->kind != b->kind || a->offset != b->offset ||
            a->size != b->size)
            return 0;
    }
    return 1;
}

/* Table k of the world, through handle th[k] of store s. Returns the number
 * of strings its live records hold. */
static uint64_t gt_check(struct world *W, mms_store *s, mms_table *const th[W_N], int k)
{
    struct gt *g = &W->g[k];
    mms_table *t = th[k];
    const mms_schema *sc = g->sc;
    schema_same(mms_table_schema(t), sc, g->name);
    ASSERT_EQ(mms_table_count(t), g->count);
    ASSERT_EQ(mms_table_slots(t), g->slots);
    uint32_t rs = sc->record_size;
    const char *arr = mms_table_array(t);
    ASSERT(g->slots == 0 ? arr == NULL : arr != NULL);
    static char exp[1024];
    ASSERT_LE(rs, sizeof exp);
    uint64_t strings = 0;
    uint64_t nbits = 12345;
    const uint64_t *bits = mms_table_deleted(t, &nbits);
    ASSERT(bits ? nbits > 0 : nbits == 0);
    for (uint64_t i = 0; i < g->slots; i++) {
        int live = mms_table_live(t, i);
        if (live != (i >= nbits || !(bits[i / 64] >> (i % 64) & 1)))
            FAILF("%s slot %llu: mms_table_live and mms_table_deleted disagree", g->name,
                  (unsigned long long)i);
        if (live != g->live[i])
            FAILF("%s slot %llu: live %d in the store, %d in the model", g->name,
                  (unsigned long long)i, live, g->live[i]);
        const char *p = mms_table_get(t, i);
        if (p != arr + i * rs)
            FAILF("%s slot %llu: mms_table_get is not array + i * %u", g->name,
                  (unsigned long long)i, rs);
        memset(exp, 0, rs);
        if (live)
            for (uint32_t f = 0; f < sc->nfields; f++)
                encode(exp, &sc->fields[f], GV(g, i, lid(sc->fields[f].name)));
        if (memcmp(p, exp, rs) != 0) {
            uint32_t b = 0;
            while (p[b] == exp[b])
                b++;
            const char *fname = "(no field: padding)";
            uint32_t foff = b, fsize = 1;
            for (uint32_t f = 0; f < sc->nfields; f++)
                if (b >= sc->fields[f].offset && b < sc->fields[f].offset + sc->fields[f].size) {
                    fname = sc->fields[f].name;
                    foff = sc->fields[f].offset;
                    fsize = sc->fields[f].size;
                }
            char got[80] = "", want[80] = "";
            for (uint32_t j = 0; j < fsize && j < 24; j++) {
                snprintf(got + 3 * j, 4, "%02x ", (unsigned char)p[foff + j]);
                snprintf(want + 3 * j, 4, "%02x ", (unsigned char)exp[foff + j]);
            }
            FAILF("%s %s record %llu (layout gen %llu): field %s at byte %u differs:\n"
                  "    store: %s\n    model: %s", g->name, live ? "live" : "deleted",
                  (unsigned long long)i, (unsigned long long)g->layout_gen, fname, b, got, want);
        }
        if (!live)
            continue;
        for (uint32_t fi = 0; fi < sc->nfields; fi++) {
            const mms_field *f = &sc->fields[fi];
            const struct lv *l = GV(g, i, lid(f->name));
            mms_ref ref;
            memcpy(&ref, p + f->offset, 8);
            if (f->kind == MMS_KIND_STR && l->has) {
                str_check(s, ref, l->v.seed, l->len, f->name, i);
                strings++;
            } else if (f->kind == MMS_KIND_REF && ref) {
                int tk = world_index(W, f->target);
                uint64_t slot = MMS_REF_SLOT(ref);
                ASSERT_EQ(MMS_REF_REGION(ref), table_region(th[tk]));
                ASSERT(mms_table_live(th[tk], slot));
                if (mms_rec(s, ref) != mms_table_get(th[tk], slot))
                    FAILF("%s record %llu: %s = ref 0x%llx: mms_rec is not record %llu of %s",
                          g->name, (unsigned long long)i, f->name, (unsigned long long)ref,
                          (unsigned long long)slot, W->g[tk].name);
            }
        }
    }
    ASSERT(!mms_table_live(t, g->slots));
    ASSERT(mms_table_get(t, g->slots) == NULL);
    return strings;
}

static void world_check(struct world *W, mms_store *s, mms_table *const th[W_N], int verify)
{
    uint64_t strings = 0, tombs = 0;
    for (int k = 0; k < W_N; k++) {
        strings += gt_check(W, s, th, k);
        tombs += (uint64_t)W->g[k].tomb;
    }
    ASSERT_EQ(heap_objects(s), 1 + W_N + tombs + strings);
    mms_table_info ti[8];
    size_t n = 0;
    OK(mms_tables(s, ti, 8, &n));
    ASSERT_EQ(n, W_N);
    for (int k = 0; k < W_N; k++) {
        const struct gt *g = &W->g[k];
        size_t j = 0;
        while (j < n && strcmp(ti[j].name, g->name) != 0)
            j++;
        ASSERT_LT(j, n);
        ASSERT_EQ(ti[j].region, table_region(th[k]));
        ASSERT_EQ(ti[j].count, g->count);
        ASSERT_EQ(ti[j].slots, g->slots);
        ASSERT_EQ(ti[j].record_size, g->sc->record_size);
        ASSERT_EQ(ti[j].nfields, g->sc->nfields);
        ASSERT_EQ(ti[j].layout_gen, g->layout_gen);
    }
    if (verify)
        verify_ok(s);
}

/* Strings the live records hold in fields of g that `to` drops. */
static uint64_t strings_dropped(const struct gt *g, const mms_schema *to)
{
    uint64_t n = 0;
    for (uint32_t fi = 0; fi < g->sc->nfields; fi++) {
        const mms_field *f = &g->sc->fields[fi];
        if (f->kind != MMS_KIND_STR || field_named(to, f->name))
            continue;
        int l = lid(f->name);
        for (uint64_t i = 0; i < g->slots; i++)
            n += g->live[i] && GV(g, i, l)->has;
    }
    return n;
}

/* What a migration does to the model: removed fields go, added ones get
 * their default (or zero) in live records; kept values stay as they are. */
static void gt_migrate_model(struct gt *g, const mms_schema *to)
{
    for (uint32_t fi = 0; fi < g->sc->nfields; fi++) {
        const mms_field *f = &g->sc->fields[fi];
        if (field_named(to, f->name))
            continue;
        int l = lid(f->name);
        for (uint64_t i = 0; i < g->slots; i++)
            memset(GV(g, i, l), 0, sizeof(struct lv));
    }
    for (uint32_t fi = 0; fi < to->nfields; fi++) {
        const mms_field *f = &to->fields[fi];
        if (field_named(g->sc, f->name))
            continue;
        struct lv d;
        memset(&d, 0, sizeof d);
        if (f->dflt)
            decode_lv(f, f->dflt, &d);
        int l = lid(f->name);
        for (uint64_t i = 0; i < g->slots; i++)
            *GV(g, i, l) = g->live[i] ? d : (struct lv){0};
    }
    g->sc = to;
    g->layout_gen++;
}

/* ========================================================================
 * 2. Migrations
 * ======================================================================== */
struct dept {
    int64_t id;
    mms_ref title;
};
static const mms_field dept_fields[] = {MMS_F_I64(struct dept, id), MMS_F_STR(struct dept, title)};
static const mms_schema dept_schema = MMS_SCHEMA(struct dept, dept_fields);

struct proj {
    int32_t n;
    mms_ref lead;
};
static const mms_field proj_fields[] = {MMS_F_I32(struct proj, n),
                                        MMS_F_REF(struct proj, lead, "emp")};
static const mms_schema proj_schema = MMS_SCHEMA(struct proj, proj_fields);

/* V1: fields of every kind; a REF to itself and one to dept. */
struct e1 {
    int8_t a8;
    int16_t a16;
    int32_t a32;
    int64_t a64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    uint8_t x8;
    uint16_t x16;
    uint32_t x32;
    int32_t fi;
    float ff;
    char code[4];
    int8_t g8;
    uint32_t gu;
    bool flag;
    mms_ref name;
    mms_ref extra;
    int32_t gone;
    mms_ref boss;
    mms_ref dept;
};
static const mms_field e1_fields[] = {
    MMS_F_I8(struct e1, a8),    MMS_F_I16(struct e1, a16), MMS_F_I32(struct e1, a32),
    MMS_F_I64(struct e1, a64),  MMS_F_U8(struct e1, u8),   MMS_F_U16(struct e1, u16),
    MMS_F_U32(struct e1, u32),  MMS_F_U64(struct e1, u64), MMS_F_U8(struct e1, x8),
    MMS_F_U16(struct e1, x16),  MMS_F_U32(struct e1, x32), MMS_F_I32(struct e1, fi),
    MMS_F_F32(struct e1, ff),   MMS_F_CHARS(struct e1, code), MMS_F_I8(struct e1, g8),
    MMS_F_U32(struct e1, gu),   MMS_F_BOOL(struct e1, flag), MMS_F_STR(struct e1, name),
    MMS_F_STR(struct e1, extra), MMS_F_I32(struct e1, gone), MMS_F_REF(struct e1, boss, "emp"),
    MMS_F_REF(struct e1, dept, "dept"),
};
static const mms_schema e1_schema = MMS_SCHEMA(struct e1, e1_fields);

/* V2: fields added, one zero and four with defaults. */
static const int64_t dflt_newd = -5;
static const char dflt_newc[8] = "dflt";
static const double dflt_newf = 2.5;
static const uint16_t dflt_newu = 65535;
struct e2 {
    int8_t a8;
    int16_t a16;
    int32_t a32;
    int64_t a64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    uint8_t x8;
    uint16_t x16;
    uint32_t x32;
    int32_t fi;
    float ff;
    char code[4];
    int8_t g8;
    uint32_t gu;
    bool flag;
    mms_ref name;
    mms_ref extra;
    int32_t gone;
    mms_ref boss;
    mms_ref dept;
    int32_t new0;
    int64_t newd;
    char newc[8];
    double newf;
    uint16_t newu;
};
static const mms_field e2_fields[] = {
    MMS_F_I8(struct e2, a8),    MMS_F_I16(struct e2, a16), MMS_F_I32(struct e2, a32),
    MMS_F_I64(struct e2, a64),  MMS_F_U8(struct e2, u8),   MMS_F_U16(struct e2, u16),
    MMS_F_U32(struct e2, u32),  MMS_F_U64(struct e2, u64), MMS_F_U8(struct e2, x8),
    MMS_F_U16(struct e2, x16),  MMS_F_U32(struct e2, x32), MMS_F_I32(struct e2, fi),
    MMS_F_F32(struct e2, ff),   MMS_F_CHARS(struct e2, code), MMS_F_I8(struct e2, g8),
    MMS_F_U32(struct e2, gu),   MMS_F_BOOL(struct e2, flag), MMS_F_STR(struct e2, name),
    MMS_F_STR(struct e2, extra), MMS_F_I32(struct e2, gone), MMS_F_REF(struct e2, boss, "emp"),
    MMS_F_REF(struct e2, dept, "dept"), MMS_F_I32(struct e2, new0),
    MMS_F_WITH_DEFAULT(struct e2, newd, MMS_KIND_I64, &dflt_newd),
    MMS_F_WITH_DEFAULT(struct e2, newc, MMS_KIND_CHARS, dflt_newc),
    MMS_F_WITH_DEFAULT(struct e2, newf, MMS_KIND_F64, &dflt_newf),
    MMS_F_WITH_DEFAULT(struct e2, newu, MMS_KIND_U16, &dflt_newu),
};
static const mms_schema e2_schema = MMS_SCHEMA(struct e2, e2_fields);

/* V3: gone (i32) and extra (a STR: its strings are freed) removed. */
struct e3 {
    int8_t a8;
    int16_t a16;
    int32_t a32;
    int64_t a64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    uint8_t x8;
    uint16_t x16;
    uint32_t x32;
    int32_t fi;
    float ff;
    char code[4];
    int8_t g8;
    uint32_t gu;
    bool flag;
    mms_ref name;
    mms_ref boss;
    mms_ref dept;
    int32_t new0;
    int64_t newd;
    char newc[8];
    double newf;
    uint16_t newu;
};
static const mms_field e3_fields[] = {
    MMS_F_I8(struct e3, a8),   MMS_F_I16(struct e3, a16), MMS_F_I32(struct e3, a32),
    MMS_F_I64(struct e3, a64), MMS_F_U8(struct e3, u8),   MMS_F_U16(struct e3, u16),
    MMS_F_U32(struct e3, u32), MMS_F_U64(struct e3, u64), MMS_F_U8(struct e3, x8),
    MMS_F_U16(struct e3, x16), MMS_F_U32(struct e3, x32), MMS_F_I32(struct e3, fi),
    MMS_F_F32(struct e3, ff),  MMS_F_CHARS(struct e3, code), MMS_F_I8(struct e3, g8),
    MMS_F_U32(struct e3, gu),  MMS_F_BOOL(struct e3, flag), MMS_F_STR(struct e3, name),
    MMS_F_REF(struct e3, boss, "emp"), MMS_F_REF(struct e3, dept, "dept"),
    MMS_F_I32(struct e3, new0),
    MMS_F_WITH_DEFAULT(struct e3, newd, MMS_KIND_I64, &dflt_newd),
    MMS_F_WITH_DEFAULT(struct e3, newc, MMS_KIND_CHARS, dflt_newc),
    MMS_F_WITH_DEFAULT(struct e3, newf, MMS_KIND_F64, &dflt_newf),
    MMS_F_WITH_DEFAULT(struct e3, newu, MMS_KIND_U16, &dflt_newu),
};
static const mms_schema e3_schema = MMS_SCHEMA(struct e3, e3_fields);

/* V4: the same fields, members in reverse order (every offset moves); the
 * field list in yet another order. */
struct e4 {
    uint16_t newu;
    double newf;
    char newc[8];
    int64_t newd;
    int32_t new0;
    mms_ref dept;
    mms_ref boss;
    mms_ref name;
    bool flag;
    uint32_t gu;
    int8_t g8;
    char code[4];
    float ff;
    int32_t fi;
    uint32_t x32;
    uint16_t x16;
    uint8_t x8;
    uint64_t u64;
    uint32_t u32;
    uint16_t u16;
    uint8_t u8;
    int64_t a64;
    int32_t a32;
    int16_t a16;
    int8_t a8;
};
static const mms_field e4_fields[] = {
    MMS_F_REF(struct e4, boss, "emp"), MMS_F_U8(struct e4, x8), MMS_F_I64(struct e4, a64),
    MMS_F_U16(struct e4, u16), MMS_F_F32(struct e4, ff), MMS_F_I8(struct e4, a8),
    MMS_F_CHARS(struct e4, newc), MMS_F_U32(struct e4, x32), MMS_F_I16(struct e4, a16),
    MMS_F_STR(struct e4, name), MMS_F_U32(struct e4, u32), MMS_F_CHARS(struct e4, code),
    MMS_F_I32(struct e4, a32), MMS_F_U64(struct e4, u64), MMS_F_U8(struct e4, u8),
    MMS_F_U16(struct e4, x16), MMS_F_I32(struct e4, fi), MMS_F_I8(struct e4, g8),
    MMS_F_U32(struct e4, gu), MMS_F_BOOL(struct e4, flag), MMS_F_REF(struct e4, dept, "dept"),
    MMS_F_I32(struct e4, new0), MMS_F_I64(struct e4, newd), MMS_F_F64(struct e4, newf),
    MMS_F_U16(struct e4, newu),
};
static const mms_schema e4_schema = MMS_SCHEMA(struct e4, e4_fields);

/* Valt: what an aborted migration tries (V4 plus a field with a default). */
static const int64_t dflt_tmp = 7;
struct ealt {
    uint16_t newu;
    double newf;
    char newc[8];
    int64_t newd;
    int32_t new0;
    mms_ref dept;
    mms_ref boss;
    mms_ref name;
    bool flag;
    uint32_t gu;
    int8_t g8;
    char code[4];
    float ff;
    int32_t fi;
    uint32_t x32;
    uint16_t x16;
    uint8_t x8;
    uint64_t u64;
    uint32_t u32;
    uint16_t u16;
    uint8_t u8;
    int64_t a64;
    int32_t a32;
    int16_t a16;
    int8_t a8;
    int64_t tmp;
};
static const mms_field ealt_fields[] = {
    MMS_F_WITH_DEFAULT(struct ealt, tmp, MMS_KIND_I64, &dflt_tmp),
    MMS_F_REF(struct ealt, boss, "emp"), MMS_F_U8(struct ealt, x8), MMS_F_I64(struct ealt, a64),
    MMS_F_U16(struct ealt, u16), MMS_F_F32(struct ealt, ff), MMS_F_I8(struct ealt, a8),
    MMS_F_CHARS(struct ealt, newc), MMS_F_U32(struct ealt, x32), MMS_F_I16(struct ealt, a16),
    MMS_F_STR(struct ealt, name), MMS_F_U32(struct ealt, u32), MMS_F_CHARS(struct ealt, code),
    MMS_F_I32(struct ealt, a32), MMS_F_U64(struct ealt, u64), MMS_F_U8(struct ealt, u8),
    MMS_F_U16(struct ealt, x16), MMS_F_I32(struct ealt, fi), MMS_F_I8(struct ealt, g8),
    MMS_F_U32(struct ealt, gu), MMS_F_BOOL(struct ealt, flag),
    MMS_F_REF(struct ealt, dept, "dept"), MMS_F_I32(struct ealt, new0),
    MMS_F_I64(struct ealt, newd), MMS_F_F64(struct ealt, newf), MMS_F_U16(struct ealt, newu),
};
static const mms_schema ealt_schema = MMS_SCHEMA(struct ealt, ealt_fields);

/* V5: widen, first step: i8->i16, i16->i32, i32->i64, u8->u16, u16->u32,
 * u32->u64, u8->i16, u16->i32, u32->i64, i32->f64, f32->f64, i8->f64,
 * u32->f64, chars[4]->chars[16], u16->i32. */
struct e5 {
    int32_t newu;
    double newf;
    char newc[8];
    int64_t newd;
    int32_t new0;
    mms_ref dept;
    mms_ref boss;
    mms_ref name;
    bool flag;
    double gu;
    double g8;
    char code[16];
    double ff;
    double fi;
    int64_t x32;
    int32_t x16;
    int16_t x8;
    uint64_t u64;
    uint64_t u32;
    uint32_t u16;
    uint16_t u8;
    int64_t a64;
    int64_t a32;
    int32_t a16;
    int16_t a8;
};
static const mms_field e5_fields[] = {
    MMS_F_REF(struct e5, boss, "emp"), MMS_F_I16(struct e5, x8), MMS_F_I64(struct e5, a64),
    MMS_F_U32(struct e5, u16), MMS_F_F64(struct e5, ff), MMS_F_I16(struct e5, a8),
    MMS_F_CHARS(struct e5, newc), MMS_F_I64(struct e5, x32), MMS_F_I32(struct e5, a16),
    MMS_F_STR(struct e5, name), MMS_F_U64(struct e5, u32), MMS_F_CHARS(struct e5, code),
    MMS_F_I64(struct e5, a32), MMS_F_U64(struct e5, u64), MMS_F_U16(struct e5, u8),
    MMS_F_I32(struct e5, x16), MMS_F_F64(struct e5, fi), MMS_F_F64(struct e5, g8),
    MMS_F_F64(struct e5, gu), MMS_F_BOOL(struct e5, flag), MMS_F_REF(struct e5, dept, "dept"),
    MMS_F_I32(struct e5, new0), MMS_F_I64(struct e5, newd), MMS_F_F64(struct e5, newf),
    MMS_F_I32(struct e5, newu),
};
static const mms_schema e5_schema = MMS_SCHEMA(struct e5, e5_fields);

/* V6: widen, second step (i16->i32, i32->i64, u16->u32, u32->u64, chars
 * 16->17), and gone and extra added again: zero and null, not their old
 * values. */
struct e6 {
    int64_t newu;
    double newf;
    char newc[8];
    int64_t newd;
    int32_t new0;
    mms_ref dept;
    mms_ref boss;
    mms_ref name;
    bool flag;
    double gu;
    double g8;
    char code[17];
    double ff;
    double fi;
    int64_t x32;
    int64_t x16;
    int32_t x8;
    uint64_t u64;
    uint64_t u32;
    uint64_t u16;
    uint32_t u8;
    int64_t a64;
    int64_t a32;
    int64_t a16;
    int32_t a8;
    int64_t gone;
    mms_ref extra;
};
static const mms_field e6_fields[] = {
    MMS_F_REF(struct e6, boss, "emp"), MMS_F_I32(struct e6, x8), MMS_F_I64(struct e6, a64),
    MMS_F_U64(struct e6, u16), MMS_F_F64(struct e6, ff), MMS_F_I32(struct e6, a8),
    MMS_F_CHARS(struct e6, newc), MMS_F_I64(struct e6, x32), MMS_F_I64(struct e6, a16),
    MMS_F_STR(struct e6, name), MMS_F_U64(struct e6, u32), MMS_F_CHARS(struct e6, code),
    MMS_F_I64(struct e6, a32), MMS_F_U64(struct e6, u64), MMS_F_U32(struct e6, u8),
    MMS_F_I64(struct e6, x16), MMS_F_F64(struct e6, fi), MMS_F_F64(struct e6, g8),
    MMS_F_F64(struct e6, gu), MMS_F_BOOL(struct e6, flag), MMS_F_REF(struct e6, dept, "dept"),
    MMS_F_I32(struct e6, new0), MMS_F_I64(struct e6, newd), MMS_F_F64(struct e6, newf),
    MMS_F_I64(struct e6, newu), MMS_F_I64(struct e6, gone), MMS_F_STR(struct e6, extra),
};
static const mms_schema e6_schema = MMS_SCHEMA(struct e6, e6_fields);

/* V7: widen, third step (i32->i64, u32->u64). */
#define E7_MEMBERS                                                             \
    int64_t newu;                                                              \
    double newf;                                                               \
    char newc[8];                                                              \
    int64_t newd;                                                              \
    int32_t new0;                                                              \
    mms_ref dept;                                                              \
    mms_ref boss;                                                              \
    mms_ref name;                                                              \
    bool flag;                                                                 \
    double gu;                                                                 \
    double g8;                                                                 \
    char code[17];                                                             \
    double ff;                                                                 \
    double fi;                                                                 \
    int64_t x32;                                                               \
    int64_t x16;                                                               \
    int64_t x8;                                                                \
    uint64_t u64;                                                              \
    uint64_t u32;                                                              \
    uint64_t u16;                                                              \
    uint64_t u8;                                                               \
    int64_t a64;                                                               \
    int64_t a32;                                                               \
    int64_t a16;                                                               \
    int64_t a8;                                                                \
    int64_t gone;                                                              \
    mms_ref extra;
#define E7_FIELDS(T)                                                           \
    MMS_F_REF(T, boss, "emp"), MMS_F_I64(T, x8), MMS_F_I64(T, a64), MMS_F_U64(T, u16),        \
        MMS_F_F64(T, ff), MMS_F_I64(T, a8), MMS_F_CHARS(T, newc), MMS_F_I64(T, x32),          \
        MMS_F_I64(T, a16), MMS_F_STR(T, name), MMS_F_U64(T, u32), MMS_F_CHARS(T, code),       \
        MMS_F_I64(T, a32), MMS_F_U64(T, u64), MMS_F_U64(T, u8), MMS_F_I64(T, x16),            \
        MMS_F_F64(T, fi), MMS_F_F64(T, g8), MMS_F_F64(T, gu), MMS_F_BOOL(T, flag),            \
        MMS_F_REF(T, dept, "dept"), MMS_F_I32(T, new0), MMS_F_I64(T, newd),                   \
        MMS_F_F64(T, newf), MMS_F_I64(T, newu), MMS_F_I64(T, gone), MMS_F_STR(T, extra)
struct e7 {
    E7_MEMBERS
};
static const mms_field e7_fields[] = {E7_FIELDS(struct e7)};
static const mms_schema e7_schema = MMS_SCHEMA(struct e7, e7_fields);

/* V8: only the record size changes (40 bytes no field covers). */
struct e8 {
    E7_MEMBERS
    char spare[40];
};
static const mms_field e8_fields[] = {E7_FIELDS(struct e8)};
static const mms_schema e8_schema = MMS_SCHEMA(struct e8, e8_fields);
_Static_assert(sizeof(struct e8) > sizeof(struct e7), "V8 only grows the record");
_Static_assert(offsetof(struct e8, extra) == offsetof(struct e7, extra), "same offsets");

static struct {
    const char *path;
    struct world W;
    uint64_t x;
    uint32_t emp_region;
    unsigned long steps, refused, reopens;
} P2;

static void p2_reopen(void)
{
    struct world *W = &P2.W;
    OK(mms_close(W->s));
    W->s = sopen(P2.path, 0);
    for (int k = 0; k < W_N; k++) {
        mms_table *t = NULL;
        /* The stored layout: no migration, so no transaction needed. */
        OK(mms_table_open(W->s, W->g[k].name, W->g[k].sc, 0, &t));
        W->g[k].t = t;
    }
    mms_table *th[W_N];
    world_handles(W, th);
    world_check(W, W->s, th, 1);
    /* The close checkpointed: files of old generations are gone. */
    for (int k = 0; k < W_N; k++) {
        uint32_t id = table_region(th[k]);
        only_region_file(P2.path, id, region_gen(W->s, id));
    }
    P2.reopens++;
}

/* A few operations in the current layout (the handle works after the
 * migration; deleted slots are reused lowest first). */
static void p2_ops(void)
{
    struct world *W = &P2.W;
    struct gt *e = &W->g[W_EMP];
    uint64_t *x = &P2.x;
    OK(mms_txn_begin(W->s, 0));
    for (int j = 0; j < 3; j++)
        gt_append(W, e, x, -1);
    for (int j = 0; j < 2; j++)
        gt_delete(W, e, gt_pick_live(e, x));
    for (int j = 0; j < 8; j++)
        gt_set(W, e, gt_pick_live(e, x), x);
    gt_append(W, &W->g[W_PROJ], x, -1);
    gt_set(W, &W->g[W_PROJ], gt_pick_live(&W->g[W_PROJ], x), x);
    OK(mms_txn_commit(W->s));
    mms_table *th[W_N];
    world_handles(W, th);
    world_check(W, W->s, th, 1);
}

/* Work inside an open transaction: appends, a delete, field updates. */
static void p2_txn_ops(void)
{
    struct world *W = &P2.W;
    struct gt *e = &W->g[W_EMP];
    uint64_t *x = &P2.x;
    gt_append(W, e, x, -1);
    gt_delete(W, e, gt_pick_live(e, x));
    gt_append(W, e, x, -1);
    for (int j = 0; j < 4; j++)
        gt_set(W, e, gt_pick_live(e, x), x);
}

enum {
    S_PRE_COMMIT = 1, /* a committed transaction that wrote emp just before (kept pages) */
    S_PRE_TXN = 2,    /* work in the migrating transaction, before the migration */
    S_POST_TXN = 4,   /* and after it, in the new layout, before the commit */
    S_CREATE = 8      /* mms_table_open with MMS_TABLE_CREATE (the table exists) */
};

/* Migrate emp through the layouts to[0..n) in one transaction. */
static void p2_step(const mms_schema *const *to, int n, const char *what, int flags)
{
    struct world *W = &P2.W;
    struct gt *e = &W->g[W_EMP];
    mms_table *th[W_N];
    world_handles(W, th);
    CTX("migrate: %s", what);
    if (flags & S_PRE_COMMIT)
        p2_ops();
    uint32_t gen0 = region_gen(W->s, P2.emp_region);
    uint64_t txn0 = mms_txn_id(W->s);
    OK(mms_txn_begin(W->s, 0));
    if (flags & S_PRE_TXN)
        p2_txn_ops();
    uint64_t h0 = heap_objects(W->s), freed = 0;
    for (int j = 0; j < n; j++) {
        freed += strings_dropped(e, to[j]);
        mms_table *t = NULL;
        OK(mms_table_open(W->s, "emp", to[j], flags & S_CREATE ? MMS_TABLE_CREATE : 0, &t));
        ASSERT(t == e->t); /* the same handle, now in the new layout */
        gt_migrate_model(e, to[j]);
        ASSERT_EQ(region_gen(W->s, P2.emp_region), gen0 + (uint32_t)j + 1);
        world_check(W, W->s, th, 0); /* inside the transaction */
    }
    /* Strings of removed fields are freed. */
    ASSERT_EQ(heap_objects(W->s), h0 - freed);
    if (flags & S_POST_TXN) {
        p2_txn_ops();
        world_check(W, W->s, th, 0);
    }
    OK(mms_txn_commit(W->s));
    ASSERT_EQ(mms_txn_id(W->s), txn0 + 1);
    world_check(W, W->s, th, 1);
    ASSERT(has_region_file(P2.path, P2.emp_region, gen0 + (uint32_t)n));
    fprintf(stderr, "   %-44s record %3u bytes, %2u fields, region gen %u -> %u, "
            "%llu strings freed\n", what, to[n - 1]->record_size, to[n - 1]->nfields, gen0,
            gen0 + (uint32_t)n, (unsigned long long)freed);
    p2_ops();
    p2_reopen();
    P2.steps++;
}

struct change {
    const char *field;
    unsigned kind;
    uint32_t size;
    const char *target;
};

/* A layout change that could lose data is refused; nothing changes. With
 * add, the schema also adds a field (a valid change that must not happen
 * either). keep: after the refusal, use the handle and commit. */
static void p2_refuse(const struct change *ch, int nch, int add, int keep, const char *what)
{
    struct world *W = &P2.W;
    struct gt *e = &W->g[W_EMP];
    mms_table *th[W_N];
    world_handles(W, th);
    CTX("migrate: refused change %s", what);
    mms_field f[64];
    uint32_t nf = e->sc->nfields, rs = e->sc->record_size;
    ASSERT_LE(nf + 1, 64);
    memcpy(f, e->sc->fields, nf * sizeof f[0]);
    for (int c = 0; c < nch; c++) {
        uint32_t i = 0;
        while (i < nf && strcmp(f[i].name, ch[c].field) != 0)
            i++;
        ASSERT_LT(i, nf);
        f[i].kind = ch[c].kind;
        f[i].size = ch[c].size;
        f[i].target = ch[c].target;
    }
    if (add) {
        f[nf] = (mms_field){"brand_new", MMS_KIND_I64, rs, 8, NULL, NULL};
        nf++;
        rs += 8;
    }
    mms_schema bad = {rs, nf, f};
    uint32_t gen0 = region_gen(W->s, P2.emp_region);
    uint64_t txn0 = mms_txn_id(W->s);
    OK(mms_txn_begin(W->s, 0));
    uint64_t h0 = heap_objects(W->s);
    mms_table *t = (mms_table *)&bad; /* must be reset */
    int r = mms_table_open(W->s, "emp", &bad, 0, &t);
    char detail[512];
    snprintf(detail, sizeof detail, "%s", mms_errdetail());
    if (r != MMS_ESCHEMA)
        FAILF("%s: mms_table_open returned %d (%s), expected MMS_ESCHEMA", what, r,
              mms_strerror(r));
    ASSERT(t == NULL);
    if (!detail[0])
        FAILF("%s: MMS_ESCHEMA with an empty mms_errdetail()", what);
    for (int c = 0; c < nch; c++)
        if (!mentions(detail, ch[c].field))
            FAILF("%s: mms_errdetail() does not name field %s: \"%s\"", what, ch[c].field, detail);
    /* Untouched: layout, data, heap, region file generation, no new file. */
    ASSERT_EQ(region_gen(W->s, P2.emp_region), gen0);
    ASSERT(!has_region_file(P2.path, P2.emp_region, gen0 + 1));
    ASSERT_EQ(heap_objects(W->s), h0);
    world_check(W, W->s, th, 0);
    if (keep) {
        gt_append(W, e, &P2.x, -1);
        gt_set(W, e, gt_pick_live(e, &P2.x), &P2.x);
        OK(mms_txn_commit(W->s));
        ASSERT_EQ(mms_txn_id(W->s), txn0 + 1);
    } else {
        OK(mms_txn_abort(W->s));
        ASSERT_EQ(mms_txn_id(W->s), txn0);
    }
    world_check(W, W->s, th, 1);
    ASSERT_EQ(region_gen(W->s, P2.emp_region), gen0);
    P2.refused++;
    if (P2.refused <= 3 || nch > 1)
        fprintf(stderr, "   refused %-36s detail: %s\n", what, detail);
}

#define REFUSE1(field, kind, size, target)                                                     \
    do {                                                                                       \
        const struct change c_ = {field, kind, size, target};                                 \
        p2_refuse(&c_, 1, 0, 0, field " -> " #kind "[" #size "]" " " #target);                 \
    } while (0)

static void p2_check_now(void)
{
    mms_table *th[W_N];
    world_handles(&P2.W, th);
    world_check(&P2.W, P2.W.s, th, 1);
}

TEST(test_migrate)
{
    struct world *W = &P2.W;
    P2.path = tpath("table-migrate");
    P2.x = seed0 ^ 0x2222;
    uint64_t *x = &P2.x;
    memset(W, 0, sizeof *W);
    gt_init(&W->g[W_DEPT], "dept", &dept_schema, 64);
    gt_init(&W->g[W_EMP], "emp", &e1_schema, 4000);
    gt_init(&W->g[W_PROJ], "proj", &proj_schema, 600);
    W->s = sopen(P2.path, MMS_CREATE);
    CTX("migrate: setup");
    OK(mms_txn_begin(W->s, 0));
    for (int k = 0; k < W_N; k++)
        OK(mms_table_open(W->s, W->g[k].name, W->g[k].sc, MMS_TABLE_CREATE, &W->g[k].t));
    P2.emp_region = table_region(W->g[W_EMP].t);
    for (int i = 0; i < 20; i++)
        gt_append(W, &W->g[W_DEPT], x, -1);
    struct gt *e = &W->g[W_EMP];
    /* Records 0..6 hold one extreme each in every field (minimum, maximum,
     * -1 / max-1, ...): they are never deleted. */
    for (int i = 0; i < 7; i++)
        gt_append(W, e, x, i);
    gt_append_many(W, e, x, 1000);
    for (int i = 0; i < 2000; i++)
        gt_append(W, e, x, -1);
    for (int i = 0; i < 400; i++)
        gt_append(W, &W->g[W_PROJ], x, -1);
    for (int i = 0; i < 300; i++) {
        uint64_t j = gt_pick_live(e, x);
        if (j >= 7)
            gt_delete(W, e, j);
    }
    for (int i = 0; i < 40; i++)
        gt_delete(W, &W->g[W_PROJ], gt_pick_live(&W->g[W_PROJ], x));
    OK(mms_txn_commit(W->s));
    p2_check_now();
    p2_reopen();
    fprintf(stderr, "   emp: %llu records in %llu slots; proj %llu, dept %llu\n",
            (unsigned long long)e->count, (unsigned long long)e->slots,
            (unsigned long long)W->g[W_PROJ].count, (unsigned long long)W->g[W_DEPT].count);
    {
        /* The extremes, as the C types see them. */
        const struct e1 *r0 = mms_table_get(e->t, 0), *r1 = mms_table_get(e->t, 1);
        ASSERT_EQ(r0->a32, INT32_MIN);
        ASSERT_EQ(r1->u32, UINT32_MAX);
        ASSERT_EQ(r0->a64, INT64_MIN);
        ASSERT_EQ(r1->gu, UINT32_MAX);
        ASSERT(r0->ff == -FLT_MAX);
    }

    /* Refused changes, in V1. */
    REFUSE1("a64", MMS_KIND_I32, 4, NULL);          /* narrowing */
    REFUSE1("a16", MMS_KIND_I8, 1, NULL);           /* narrowing */
    REFUSE1("a32", MMS_KIND_F32, 4, NULL);          /* another kind */
    REFUSE1("ff", MMS_KIND_I32, 4, NULL);           /* another kind */
    REFUSE1("a16", MMS_KIND_U16, 2, NULL);          /* signed -> unsigned */
    REFUSE1("a32", MMS_KIND_U32, 4, NULL);          /* signed -> unsigned */
    REFUSE1("u32", MMS_KIND_I32, 4, NULL);          /* unsigned -> signed, not wider */
    REFUSE1("code", MMS_KIND_CHARS, 3, NULL);       /* chars shrink */
    REFUSE1("dept", MMS_KIND_REF, 8, "proj");       /* another REF target */
    REFUSE1("boss", MMS_KIND_REF, 8, "dept");       /* itself -> another table */
    REFUSE1("a64", MMS_KIND_F64, 8, NULL);          /* i64 -> f64 is not exact */
    REFUSE1("u64", MMS_KIND_F64, 8, NULL);          /* u64 -> f64 is not exact */
    REFUSE1("u64", MMS_KIND_I64, 8, NULL);          /* u64 -> i64 */
    REFUSE1("name", MMS_KIND_BLOB, 8, NULL);        /* str -> blob */
    REFUSE1("name", MMS_KIND_U64, 8, NULL);         /* str -> u64 */
    REFUSE1("boss", MMS_KIND_U64, 8, NULL);         /* ref -> u64 */
    REFUSE1("flag", MMS_KIND_U8, 1, NULL);          /* bool -> u8 */
    {
        const struct change two[] = {{"a64", MMS_KIND_I32, 4, NULL},
                                     {"code", MMS_KIND_CHARS, 2, NULL}};
        p2_refuse(two, 2, 0, 0, "a64 and code, two at once");
        p2_refuse(two, 1, 1, 0, "a64 narrowed, a field added");
        p2_refuse(&two[1], 1, 1, 1, "code shrunk + a field; then used");
    }
    {
        /* A new REF field to a table that does not exist: MMS_ENOENT. */
        CTX("migrate: new ref field to a missing table");
        mms_field f[40];
        memcpy(f, e1_fields, sizeof e1_fields);
        uint32_t nf = e1_schema.nfields, rs = e1_schema.record_size;
        f[nf] = (mms_field){"nowhere", MMS_KIND_REF, rs, 8, "nosuch", NULL};
        mms_schema bad = {rs + 8, nf + 1, f};
        uint32_t gen0 = region_gen(W->s, P2.emp_region);
        OK(mms_txn_begin(W->s, 0));
        mms_table *t = NULL;
        FAILS(mms_table_open(W->s, "emp", &bad, 0, &t), MMS_ENOENT);
        ASSERT(mentions(mms_errdetail(), "nosuch"));
        OK(mms_txn_commit(W->s));
        ASSERT_EQ(region_gen(W->s, P2.emp_region), gen0);
        p2_check_now();
    }
    /* Without a write transaction: MMS_ENOTXN, nothing changes. */
    {
        CTX("migrate: outside a transaction");
        mms_table *t = NULL;
        FAILS(mms_table_open(W->s, "emp", &e2_schema, 0, &t), MMS_ENOTXN);
        ASSERT(mms_errdetail()[0]);
        ASSERT(t == NULL);
        p2_check_now();
    }

    const mms_schema *v2[] = {&e2_schema};
    p2_step(v2, 1, "V2: 5 fields added, 4 with defaults", 0);
    {
        /* The defaults, as the C types see them. */
        const struct e2 *r = mms_table_get(e->t, 3);
        ASSERT(mms_table_live(e->t, 3));
        ASSERT_EQ(r->new0, 0);
        ASSERT_EQ(r->newd, -5);
        ASSERT(r->newf == 2.5);
        ASSERT_EQ(r->newu, 65535);
        ASSERT(memcmp(r->newc, "dflt\0\0\0\0", 8) == 0);
    }
    REFUSE1("newf", MMS_KIND_F32, 4, NULL);
    REFUSE1("newd", MMS_KIND_I32, 4, NULL);
    REFUSE1("newu", MMS_KIND_I16, 2, NULL);

    const mms_schema *v3[] = {&e3_schema};
    p2_step(v3, 1, "V3: an i32 and a STR field removed", S_PRE_COMMIT);
    {
        /* A read-only handle: the old layouts are MMS_ESCHEMA, the stored
         * one opens. */
        CTX("migrate: read-only handle");
        mms_store *ro = sopen(P2.path, MMS_RDONLY);
        mms_table *t = NULL, *th[W_N];
        FAILS(mms_table_open(ro, "emp", &e1_schema, 0, &t), MMS_ESCHEMA);
        ASSERT(mms_errdetail()[0]);
        FAILS(mms_table_open(ro, "emp", &e2_schema, 0, &t), MMS_ESCHEMA);
        FAILS(mms_table_open(ro, "emp", &e4_schema, 0, &t), MMS_ESCHEMA);
        ASSERT(t == NULL);
        OK(mms_read_begin(ro));
        for (int k = 0; k < W_N; k++)
            OK(mms_table_open(ro, W->g[k].name, W->g[k].sc, 0, &th[k]));
        world_check(W, ro, th, 0);
        OK(mms_read_end(ro));
        OK(mms_close(ro));
    }

    const mms_schema *v4[] = {&e4_schema};
    p2_step(v4, 1, "V4: members reversed (every offset moves)", S_CREATE);

    /* An aborted migration: the old layout, data and file generation stay,
     * and the handle keeps working in the old layout. */
    {
        CTX("migrate: aborted migration");
        struct world saved;
        world_copy(&saved, W);
        mms_table *th[W_N];
        world_handles(W, th);
        uint32_t gen0 = region_gen(W->s, P2.emp_region);
        uint64_t h0 = heap_objects(W->s);
        OK(mms_txn_begin(W->s, 0));
        mms_table *t = NULL;
        OK(mms_table_open(W->s, "emp", &ealt_schema, 0, &t));
        ASSERT(t == e->t);
        gt_migrate_model(e, &ealt_schema);
        world_check(W, W->s, th, 0); /* includes mms_table_schema() in the new layout */
        ASSERT_EQ(mms_table_schema(t)->record_size, sizeof(struct ealt));
        gt_append(W, e, x, -1);
        gt_delete(W, e, gt_pick_live(e, x));
        gt_set(W, e, gt_pick_live(e, x), x);
        world_check(W, W->s, th, 0);
        OK(mms_txn_abort(W->s));
        world_free(W);
        *W = saved;
        ASSERT_EQ(region_gen(W->s, P2.emp_region), gen0);
        ASSERT_EQ(heap_objects(W->s), h0);
        world_check(W, W->s, th, 1);
        ASSERT_EQ(mms_table_schema(e->t)->record_size, sizeof(struct e4));
        /* The handle works in the old layout. */
        OK(mms_txn_begin(W->s, 0));
        gt_append(W, e, x, -1);
        gt_set(W, e, gt_pick_live(e, x), x);
        gt_delete(W, e, gt_pick_live(e, x));
        OK(mms_txn_commit(W->s));
        world_check(W, W->s, th, 1);
        fprintf(stderr, "   aborted migration to a %zu-byte layout: V4 and its data stay\n",
                sizeof(struct ealt));
    }

    /* A different layout now gets the layout generation the aborted one had. */
    const mms_schema *v5[] = {&e5_schema};
    p2_step(v5, 1, "V5: widened, first step (15 fields)", S_PRE_COMMIT | S_PRE_TXN);
    REFUSE1("a32", MMS_KIND_I32, 4, NULL); /* i64 -> i32 */
    REFUSE1("fi", MMS_KIND_F32, 4, NULL);  /* f64 -> f32 */
    REFUSE1("x8", MMS_KIND_U16, 2, NULL);  /* i16 -> u16 */
    REFUSE1("code", MMS_KIND_CHARS, 4, NULL);

    const mms_schema *v6[] = {&e6_schema};
    p2_step(v6, 1, "V6: widened, second step; gone, extra back", S_POST_TXN);
    const mms_schema *v78[] = {&e7_schema, &e8_schema};
    p2_step(v78, 2, "V7+V8 in one txn: widened, record size", S_PRE_TXN | S_POST_TXN);
    REFUSE1("a8", MMS_KIND_I32, 4, NULL);
    REFUSE1("u8", MMS_KIND_U32, 4, NULL);

    {
        /* Refs into emp through MMS_REC, in the last layout. */
        struct gt *pj = &W->g[W_PROJ];
        int la64 = lid("a64");
        unsigned long n = 0;
        for (uint64_t i = 0; i < pj->slots; i++) {
            if (!pj->live[i])
                continue;
            const struct proj *p = mms_table_get(pj->t, i);
            if (!p->lead)
                continue;
            const struct e8 *r = MMS_REC(W->s, struct e8, p->lead);
            ASSERT(r == mms_table_get(e->t, MMS_REF_SLOT(p->lead)));
            const struct lv *l = GV(e, MMS_REF_SLOT(p->lead), la64);
            ASSERT_EQ(r->a64, l->t == LV_INT ? l->v.i : 0);
            n++;
        }
        ASSERT_GE(n, 100);
        const struct e8 *r0 = mms_table_get(e->t, 0), *r1 = mms_table_get(e->t, 1);
        ASSERT_EQ(r0->a8, INT8_MIN);
        ASSERT_EQ(r1->u8, UINT8_MAX);
        ASSERT_EQ(r0->x8, 0);
        ASSERT_EQ(r1->x8, UINT8_MAX);
        ASSERT(r0->fi == (double)INT32_MIN);
        ASSERT(r1->gu == (double)UINT32_MAX);
        ASSERT(r0->ff == (double)-FLT_MAX);
        ASSERT(r0->g8 == -128.0);
        ASSERT_EQ(r0->a32, INT32_MIN);
        ASSERT_EQ(r1->u32, UINT32_MAX);
        ASSERT_EQ(r0->gone, 0);
        ASSERT_EQ(r0->extra, 0);
    }
    {
        /* A migration that aborts after its layout was looked at, then a
         * migration to another layout with nothing in between: the layout
         * generation numbers match, the layouts do not. */
        CTX("migrate: aborted migration, then another one");
        static mms_field fa[40], fb[40];
        static mms_schema sa, sb;
        uint32_t nf = e8_schema.nfields, rs = e8_schema.record_size;
        memcpy(fa, e8_fields, nf * sizeof fa[0]);
        memcpy(fb, e8_fields, nf * sizeof fb[0]);
        fa[nf] = (mms_field){"xa", MMS_KIND_I64, rs, 8, NULL, NULL};
        fb[nf] = (mms_field){"xb", MMS_KIND_I32, rs, 4, NULL, NULL};
        fb[nf + 1] = (mms_field){"xc", MMS_KIND_U8, rs + 4, 1, NULL, NULL};
        sa = (mms_schema){rs + 8, nf + 1, fa};
        sb = (mms_schema){rs + 8, nf + 2, fb};
        mms_table *t = NULL;
        OK(mms_txn_begin(W->s, 0));
        OK(mms_table_open(W->s, "emp", &sa, 0, &t));
        schema_same(mms_table_schema(t), &sa, "emp (migration to be aborted)");
        OK(mms_txn_abort(W->s));
        OK(mms_txn_begin(W->s, 0));
        OK(mms_table_open(W->s, "emp", &sb, 0, &t));
        OK(mms_txn_commit(W->s));
        gt_migrate_model(e, &sb);
        p2_check_now(); /* mms_table_schema(t) must say sb */
        p2_reopen();
    }
    fprintf(stderr, "   %lu migrations, %lu refused changes, %lu reopens; emp appends %lu "
            "(reused %lu), deletes %lu (refs cleared %lu), field sets %lu\n",
            P2.steps, P2.refused, P2.reopens, W->appends, W->reused, W->deletes, W->unrefs,
            W->sets);
    ASSERT_GE(W->reused, 10);
    OK(mms_close(W->s));
    world_free(W);
    rmrf(P2.path);
}

/* ========================================================================
 * 3. SIGKILL during a migration
 * ======================================================================== */
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
    snprintf(P3.tmpl, sizeof P3.tmpl, "%s", tpath("table-crash-template"));
    snprintf(P3.work, sizeof P3.work, "%s", tpath("table-crash"));
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
    for (int i = 0; i < 7; i++)
        gt_append(W, e, &x, i);
    gt_append_many(W, e, &x, nemp - 7);
    for (int i = 0; i < 500; i++)
        gt_append(W, &W->g[W_PROJ], &x, -1);
    for (unsigned i = 0; i < nemp / 10; i++) {
        uint64_t j = gt_pick_live(e, &x);
        if (j >= 7)
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

/* ========================================================================
 * 4. A reader in another process
 * ======================================================================== */
struct ra {
    int64_t v;
    mms_ref str;
};
static const mms_field ra_fields[] = {MMS_F_I64(struct ra, v), MMS_F_STR(struct ra, str)};
static const mms_schema ra_schema = MMS_SCHEMA(struct ra, ra_fields);
struct rb1 {
    int32_t k;
    char label[6];
    mms_ref to_a;
    mms_ref self;
};
static const mms_field rb1_fields[] = {MMS_F_I32(struct rb1, k), MMS_F_CHARS(struct rb1, label),
                                       MMS_F_REF(struct rb1, to_a, "ta"),
                                       MMS_F_REF(struct rb1, self, "tb")};
static const mms_schema rb1_schema = MMS_SCHEMA(struct rb1, rb1_fields);
static const uint32_t dflt_nine = 9;
struct rb2 {
    char label[12];
    int64_t k;
    mms_ref self;
    mms_ref to_a;
    uint32_t extra;
};
static const mms_field rb2_fields[] = {
    MMS_F_CHARS(struct rb2, label), MMS_F_I64(struct rb2, k), MMS_F_REF(struct rb2, self, "tb"),
    MMS_F_REF(struct rb2, to_a, "ta"), MMS_F_WITH_DEFAULT(struct rb2, extra, MMS_KIND_U32, &dflt_nine)};
static const mms_schema rb2_schema = MMS_SCHEMA(struct rb2, rb2_fields);
#define NB 500

static void pipe_send(int fd, char c)
{
    ASSERT_EQ(write(fd, &c, 1), 1);
}

static char pipe_recv(int fd, const char *who)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 60000);
    if (r != 1)
        FAILF("%s: nothing from the other process for 60 s", who);
    char c = 0;
    if (read(fd, &c, 1) != 1)
        FAILF("%s: the other process is gone", who);
    return c;
}

static void rb_label(int i, char *out)
{
    snprintf(out, 6, "L%u", (unsigned)i % 10000u);
}

static void reader_child(const char *path, int rfd, int wfd)
{
    CTX("reader child");
    mms_store *s = sopen(path, MMS_RDONLY);
    mms_table *ta = NULL, *tb = NULL, *t = NULL;
    char lab[8];
    OK(mms_read_begin(s));
    FAILS(mms_table_find(s, "tb", &tb), MMS_ENOENT);
    OK(mms_table_find(s, "ta", &ta));
    ASSERT_EQ(mms_table_count(ta), 100);
    ASSERT_EQ(((struct ra *)mms_table_get(ta, 42))->v, 126);
    OK(mms_read_end(s));
    pipe_send(wfd, 'a');
    /* The writer created tb but has not committed. */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'u');
    OK(mms_read_begin(s));
    FAILS(mms_table_find(s, "tb", &tb), MMS_ENOENT);
    OK(mms_read_end(s));
    pipe_send(wfd, 'b');
    /* Committed: visible after the next mms_read_begin. Before it (outside
     * a read transaction) anything may show, but a record pointer must be
     * NULL or point into the store (the table's region is not mapped yet:
     * mms_ptr() knows that case, see store.c region_size()). */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'c');
    int outside_bug = 0;
    if (mms_table_find(s, "tb", &tb) == 0) {
        for (uint64_t i = 1; i < NB; i += 97) {
            void *p = mms_table_get(tb, i);
            mms_ref ref;
            if (p && mms_ref_of(s, p, &ref) != 0) {
                fprintf(stderr, "%s:%d: LIBRARY BUG: a read-only handle outside a read "
                        "transaction: mms_table_find(\"tb\") finds the new table (count %llu) "
                        "but mms_table_get(tb, %llu) = %p, neither NULL nor inside the store\n",
                        __FILE__, __LINE__, (unsigned long long)mms_table_count(tb),
                        (unsigned long long)i, p);
                outside_bug = 1;
                break;
            }
        }
    }
    OK(mms_read_begin(s));
    OK(mms_table_find(s, "tb", &tb));
    schema_same(mms_table_schema(tb), &rb1_schema, "tb (reader)");
    OK(mms_table_open(s, "tb", &rb1_schema, 0, &t));
    ASSERT(t == tb);
    ASSERT_EQ(mms_table_count(tb), NB);
    for (int i = 0; i < NB; i++) {
        const struct rb1 *r = mms_table_get(tb, (uint64_t)i);
        ASSERT_EQ(r->k, i);
        rb_label(i, lab);
        ASSERT(strncmp(r->label, lab, 6) == 0);
        ASSERT_EQ(MMS_REC(s, struct ra, r->to_a)->v, (i % 100) * 3);
        ASSERT_EQ(MMS_REC(s, struct rb1, r->self)->k, (i * 7) % NB);
        size_t len;
        const char *str = mms_str_get(s, MMS_REC(s, struct ra, r->to_a)->str, &len);
        ASSERT(str && len == 3 && str[0] == 'a');
    }
    char *arr = mms_table_array(tb);
    struct rb1 *p5 = mms_table_get(tb, 5);
    OK(mms_read_end(s));
    pipe_send(wfd, 'd');
    /* Migrated, not committed: still the old layout. */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'm');
    OK(mms_read_begin(s));
    schema_same(mms_table_schema(tb), &rb1_schema, "tb (reader, migration uncommitted)");
    ASSERT(mms_table_get(tb, 5) == p5);
    ASSERT_EQ(p5->k, 5);
    OK(mms_read_end(s));
    pipe_send(wfd, 'e');
    /* Committed, and a checkpoint removed the old file. */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'M');
    ASSERT_EQ(*(volatile int32_t *)&p5->k, 5); /* the old mapping, until the next begin */
    OK(mms_read_begin(s));
    schema_same(mms_table_schema(tb), &rb2_schema, "tb (reader, migrated)");
    ASSERT(mms_table_array(tb) == arr); /* the same address range */
    ASSERT_EQ(mms_table_count(tb), NB);
    for (int i = 0; i < NB; i++) {
        const struct rb2 *r = mms_table_get(tb, (uint64_t)i);
        ASSERT((const char *)r == arr + (size_t)i * sizeof(struct rb2));
        ASSERT_EQ(r->k, i);
        ASSERT_EQ(r->extra, 9);
        rb_label(i, lab);
        if (i == 3)
            strcpy(lab, "Z3"); /* the second writer handle's change */
        ASSERT(strncmp(r->label, lab, 12) == 0);
        ASSERT_EQ(MMS_REC(s, struct rb2, r->self)->k, (i * 7) % NB);
        ASSERT_EQ(MMS_REC(s, struct ra, r->to_a)->v, (i % 100) * 3);
    }
    /* The old pointer is still a valid address; it sees the new layout. */
    volatile const char *vp = (const char *)p5;
    ASSERT_EQ(vp[0], arr[5 * sizeof(struct rb1)]);
    FAILS(mms_table_open(s, "tb", &rb1_schema, 0, &t), MMS_ESCHEMA);
    OK(mms_table_open(s, "tb", &rb2_schema, 0, &t));
    OK(mms_read_end(s));
    pipe_send(wfd, 'f');
    /* Another writer handle appended a record in the new layout. */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'n');
    OK(mms_read_begin(s));
    ASSERT_EQ(mms_table_count(tb), NB + 1);
    const struct rb2 *r = mms_table_get(tb, NB);
    ASSERT_EQ(r->k, NB);
    ASSERT_EQ(MMS_REC(s, struct rb2, r->self)->k, 0);
    OK(mms_read_end(s));
    OK(mms_close(s));
    pipe_send(wfd, 'g');
    _exit(outside_bug ? 3 : 0);
}

TEST(test_reader)
{
    const char *path = tpath("table-reader");
    double t0 = now_us();
    CTX("reader: writer");
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *ta, *tb;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "ta", &ra_schema, MMS_TABLE_CREATE, &ta));
    for (int i = 0; i < 100; i++) {
        struct ra a = {(int64_t)i * 3, 0};
        OK(mms_str_new(s, "a__", 3, &a.str));
        OK(mms_table_append(ta, &a, NULL));
    }
    OK(mms_txn_commit(s));
    int p2c[2], c2p[2];
    ASSERT_EQ(pipe(p2c), 0);
    ASSERT_EQ(pipe(c2p), 0);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(p2c[1]);
        close(c2p[0]);
        reader_child(path, p2c[0], c2p[1]);
    }
    close(p2c[0]);
    close(c2p[1]);
    int rfd = c2p[0], wfd = p2c[1];
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'a');
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "tb", &rb1_schema, MMS_TABLE_CREATE, &tb));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(tb, NB, &first, &where));
    for (int i = 0; i < NB; i++) {
        struct rb1 *r = (struct rb1 *)where + i;
        r->k = i;
        rb_label(i, r->label);
        r->to_a = mms_table_ref(ta, (uint64_t)(i % 100));
        r->self = mms_table_ref(tb, (uint64_t)((i * 7) % NB));
    }
    pipe_send(wfd, 'u');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'b');
    OK(mms_txn_commit(s));
    pipe_send(wfd, 'c');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'd');
    /* A second writer handle, with tb open in the old layout, that wrote
     * to it (its private copies of the old file's pages stay after the
     * commit). */
    mms_store *h2 = sopen(path, 0);
    mms_table *tb2;
    OK(mms_table_open(h2, "tb", &rb1_schema, 0, &tb2));
    OK(mms_txn_begin(h2, 0));
    memcpy(((struct rb1 *)mms_table_get(tb2, 3))->label, "Z3\0\0\0", 6);
    OK(mms_txn_commit(h2));
    uint32_t id = table_region(tb);
    uint32_t gen0 = region_gen(s, id);
    OK(mms_txn_begin(s, 0));
    mms_table *t = NULL;
    OK(mms_table_open(s, "tb", &rb2_schema, 0, &t));
    ASSERT(t == tb);
    ASSERT_EQ(((struct rb2 *)mms_table_get(tb, 77))->k, 77);
    ASSERT_EQ(((struct rb2 *)mms_table_get(tb, 77))->extra, 9);
    pipe_send(wfd, 'm');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'e');
    OK(mms_txn_commit(s));
    OK(mms_checkpoint(s));
    only_region_file(path, id, gen0 + 1);
    pipe_send(wfd, 'M');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'f');
    /* The second handle sees the new layout in its next transaction. */
    OK(mms_txn_begin(h2, 0));
    schema_same(mms_table_schema(tb2), &rb2_schema, "tb (second writer handle)");
    ASSERT_EQ(((struct rb2 *)mms_table_get(tb2, 5))->k, 5);
    ASSERT(strcmp(((struct rb2 *)mms_table_get(tb2, 3))->label, "Z3") == 0);
    struct rb2 nr;
    memset(&nr, 0, sizeof nr);
    nr.k = NB;
    nr.self = mms_table_ref(tb2, 0);
    uint64_t idx;
    OK(mms_table_append(tb2, &nr, &idx));
    ASSERT_EQ(idx, NB);
    OK(mms_txn_commit(h2));
    pipe_send(wfd, 'n');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'g');
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
        BUG("the reader got a record pointer outside the store (its report above)");
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the reader process ended with status 0x%x", st);
    close(rfd);
    close(wfd);
    OK(mms_close(h2));
    /* The first handle sees the second's append after its next begin. */
    OK(mms_read_begin(s));
    ASSERT_EQ(mms_table_count(tb), NB + 1);
    OK(mms_read_end(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(path);
    fprintf(stderr, "   reader saw the new table and then the migrated layout; %.1f s\n",
            (now_us() - t0) / 1e6);
}


/* ------------------------------------------------------------------------
 * 4b. A reader process in a loop of read transactions while the writer
 *     migrates the table back and forth between two layouts (reorder and
 *     record size) and stamps every record in each transaction: every read
 *     transaction sees one layout, whole, with one stamp in every record.
 * ------------------------------------------------------------------------ */
struct sl1 {
    int64_t k;
    int64_t v;
};
static const mms_field sl1_fields[] = {MMS_F_I64(struct sl1, k), MMS_F_I64(struct sl1, v)};
static const mms_schema sl1_schema = MMS_SCHEMA(struct sl1, sl1_fields);
struct sl2 {
    int64_t v;
    int64_t pad;
    int64_t k;
};
static const mms_field sl2_fields[] = {MMS_F_I64(struct sl2, v), MMS_F_I64(struct sl2, k)};
static const mms_schema sl2_schema = MMS_SCHEMA(struct sl2, sl2_fields);
#define NSL 3000

struct stress_sh {
    int stop, ready;
    unsigned long iters, seen[2], stamp_changes;
    int64_t last_stamp;
};

static void stress_reader(const char *path, struct stress_sh *sh)
{
    CTX("stress reader");
    mms_store *s = sopen(path, MMS_RDONLY);
    mms_table *t = NULL;
    const char *arr0 = NULL;
    int64_t last = -1;
    __atomic_store_n(&sh->ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
        OK(mms_read_begin(s));
        if (!t)
            OK(mms_table_find(s, "st", &t));
        const mms_schema *sc = mms_table_schema(t);
        ASSERT(sc);
        int which = sc->record_size == sizeof(struct sl1) ? 0 : 1;
        ASSERT_EQ(sc->record_size, which ? sizeof(struct sl2) : sizeof(struct sl1));
        const mms_field *fk = field_named(sc, "k"), *fv = field_named(sc, "v");
        ASSERT(fk && fv);
        ASSERT_EQ(fk->offset, which ? offsetof(struct sl2, k) : offsetof(struct sl1, k));
        ASSERT_EQ(mms_table_count(t), NSL);
        const char *arr = mms_table_array(t);
        if (!arr0)
            arr0 = arr;
        ASSERT(arr == arr0); /* migrations never move the array */
        int64_t stamp;
        memcpy(&stamp, arr + fv->offset, 8);
        ASSERT_GE(stamp, last);
        if (stamp != last)
            sh->stamp_changes++;
        last = stamp;
        for (uint64_t i = 0; i < NSL; i++) {
            const char *p = mms_table_get(t, i);
            int64_t k, v;
            memcpy(&k, p + fk->offset, 8);
            memcpy(&v, p + fv->offset, 8);
            if (k != (int64_t)i || v != stamp)
                FAILF("stress reader: layout %d, record %llu holds k %lld v %lld; expected k "
                      "%llu v %lld (record 0's stamp)", which + 1, (unsigned long long)i,
                      (long long)k, (long long)v, (unsigned long long)i, (long long)stamp);
        }
        OK(mms_read_end(s));
        sh->seen[which]++;
        sh->iters++;
    }
    OK(mms_close(s));
    _exit(0);
}

TEST(test_reader_stress)
{
    const char *path = tpath("table-stress");
    double t0 = now_us();
    struct stress_sh *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(sh != MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    mms_store *w = sopen(path, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(w, 0));
    OK(mms_table_open(w, "st", &sl1_schema, MMS_TABLE_CREATE, &t));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, NSL, &first, &where));
    for (int64_t i = 0; i < NSL; i++)
        ((struct sl1 *)where)[i].k = i;
    OK(mms_txn_commit(w));
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        stress_reader(path, sh);
    while (!__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST))
        sleep_us(100);
    int which = 0;
    unsigned n = 0, migrations = 0, checkpoints = 0;
    for (n = 1; n <= 2000; n++) {
        CTX("stress writer: transaction %u", n);
        OK(mms_txn_begin(w, 0));
        if (n % 2) {
            which ^= 1;
            OK(mms_table_open(w, "st", which ? &sl2_schema : &sl1_schema, 0, &t));
            migrations++;
        }
        const mms_schema *sc = mms_table_schema(t);
        uint32_t vo = field_named(sc, "v")->offset;
        for (uint64_t i = 0; i < NSL; i++)
            memcpy((char *)mms_table_get(t, i) + vo, &(int64_t){(int64_t)n}, 8);
        OK(mms_txn_commit(w));
        if (n % 16 == 0) { /* old files go while the reader may map them */
            OK(mms_checkpoint(w));
            checkpoints++;
        }
        if (n >= 200 * soak && sh->seen[0] >= 3 && sh->seen[1] >= 3 && sh->stamp_changes >= 10)
            break;
    }
    __atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the stress reader ended with status 0x%x", st);
    verify_ok(w);
    OK(mms_close(w));
    fprintf(stderr, "   writer: %u transactions, %u migrations, %u checkpoints; reader: %lu read "
            "transactions (layout 1: %lu, layout 2: %lu), %lu stamps seen; %.1f s\n", n,
            migrations, checkpoints, sh->iters, sh->seen[0], sh->seen[1], sh->stamp_changes,
            (now_us() - t0) / 1e6);
    ASSERT_GE(sh->seen[0], 1);
    ASSERT_GE(sh->seen[1], 1);
    ASSERT_GE(sh->stamp_changes, 2);
    munmap(sh, sizeof *sh);
    rmrf(path);
}

/* ========================================================================
 * 5. Bad input
 * ======================================================================== */
struct g1 {
    int64_t a;
    mms_ref s;
};
static const mms_field g1_fields[] = {MMS_F_I64(struct g1, a), MMS_F_STR(struct g1, s)};
static const mms_schema g1_schema = MMS_SCHEMA(struct g1, g1_fields);
struct g2 {
    int16_t b;
    char c[5];
};
static const mms_field g2_fields[] = {MMS_F_I16(struct g2, b), MMS_F_CHARS(struct g2, c)};
static const mms_schema g2_schema = MMS_SCHEMA(struct g2, g2_fields);

/* Every region file belongs to a table of the store, in its generation. */
static void files_match_tables(const char *path, mms_store *s)
{
    DIR *d = opendir(path);
    ASSERT(d);
    mms_table_info ti[64];
    size_t n = 0;
    OK(mms_tables(s, ti, 64, &n));
    ASSERT_LE(n, 64);
    for (struct dirent *de; (de = readdir(d));) {
        unsigned id, gen;
        char tail;
        if (sscanf(de->d_name, "region-%u-%u%c", &id, &gen, &tail) != 2 || id == 0)
            continue;
        size_t j = 0;
        while (j < n && ti[j].region != id)
            j++;
        if (j == n)
            FAILF("%s: file %s belongs to no table", path, de->d_name);
        if (gen != region_gen(s, id))
            FAILF("%s: file %s is not table %s's generation %u", path, de->d_name, ti[j].name,
                  region_gen(s, id));
    }
    closedir(d);
}

static void bad_schema(mms_store *s, const char *what, int want, uint32_t rs,
                       const mms_field *f, uint32_t nf)
{
    CTX("bad input: %s", what);
    mms_schema sc = {rs, nf, f};
    size_t n0, n1;
    OK(mms_tables(s, NULL, 0, &n0));
    uint64_t h0 = heap_objects(s);
    mms_table *t = (mms_table *)&sc;
    int r = mms_table_open(s, "fresh", &sc, MMS_TABLE_CREATE, &t);
    if (r != want)
        FAILF("%s: mms_table_open returned %d (%s), expected %d (%s)", what, r,
              mms_strerror(r), want, mms_strerror(want));
    if (!mms_errdetail()[0])
        FAILF("%s: no mms_errdetail()", what);
    ASSERT(t == NULL);
    /* An existing table is checked the same way, before anything else. */
    r = mms_table_open(s, "ok", &sc, 0, &t);
    if (r != want)
        FAILF("%s (existing table): mms_table_open returned %d (%s), expected %d", what, r,
              mms_strerror(r), want);
    OK(mms_tables(s, NULL, 0, &n1));
    ASSERT_EQ(n1, n0);
    ASSERT_EQ(heap_objects(s), h0);
}

TEST(test_bad)
{
    const char *path = tpath("table-bad");
    double t0 = now_us();
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *t = NULL, *tg = NULL;
    size_t n = 99;
    uint64_t first = 0, idx = 0;
    CTX("bad input: outside a transaction");
    FAILS(mms_table_open(s, "x", &r2_schema, MMS_TABLE_CREATE, &t), MMS_ENOTXN);
    FAILS(mms_table_open(s, "x", &r2_schema, 0, &t), MMS_ENOENT);
    FAILS(mms_table_find(s, "x", &t), MMS_ENOENT);
    OK(mms_tables(s, NULL, 0, &n));
    ASSERT_EQ(n, 0);

    /* A table created by a transaction that aborts, in a store that had no
     * catalog yet. */
    CTX("bad input: aborted creation");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "ghost", &g1_schema, MMS_TABLE_CREATE, &tg));
    schema_same(mms_table_schema(tg), &g1_schema, "ghost");
    for (int i = 0; i < 5; i++) {
        struct g1 r = {i + 100, 0};
        OK(mms_str_new(s, "ghost", 5, &r.s));
        OK(mms_table_append(tg, &r, NULL));
    }
    OK(mms_table_append_many(tg, 1000, &first, NULL));
    uint32_t greg = table_region(tg);
    ASSERT_EQ(heap_objects(s), 1 + 1 + 5);
    OK(mms_txn_abort(s));
    ASSERT_EQ(mms_table_count(tg), 0);
    ASSERT_EQ(mms_table_slots(tg), 0);
    ASSERT(mms_table_get(tg, 0) == NULL);
    ASSERT(mms_table_array(tg) == NULL);
    ASSERT_EQ(mms_table_live(tg, 0), 0);
    ASSERT(mms_table_schema(tg) == NULL);
    ASSERT(strcmp(mms_table_name(tg), "ghost") == 0);
    FAILS(mms_table_find(s, "ghost", &t), MMS_ENOENT);
    FAILS(mms_table_open(s, "ghost", &g1_schema, 0, &t), MMS_ENOENT);
    OK(mms_tables(s, NULL, 0, &n));
    ASSERT_EQ(n, 0);
    ASSERT_EQ(heap_objects(s), 0);
    int file_left = region_files(path, greg, NULL, 0) > 0;
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_append(tg, NULL, &idx), MMS_ENOENT);
    FAILS(mms_table_append_many(tg, 3, &first, NULL), MMS_ENOENT);
    FAILS(mms_table_delete(tg, 0), MMS_ENOENT);
    OK(mms_txn_abort(s));
    verify_ok(s);
    /* Created again, with another layout: empty, in the new layout, and
     * the aborted records' bytes do not show through. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "ghost", &g2_schema, MMS_TABLE_CREATE, &t));
    ASSERT(t == tg); /* the same handle for the same name */
    ASSERT_EQ(mms_table_slots(t), 0);
    schema_same(mms_table_schema(t), &g2_schema, "ghost (created again)");
    OK(mms_table_append(t, NULL, &idx));
    ASSERT_EQ(idx, 0);
    OK(mms_table_append_many(t, 10, &first, NULL));
    ASSERT_EQ(first, 1);
    OK(mms_txn_commit(s));
    for (uint64_t i = 0; i < 11; i++) {
        const uint8_t *p = mms_table_get(t, i);
        for (size_t b = 0; b < sizeof(struct g2); b++)
            ASSERT_EQ(p[b], 0);
    }
    ASSERT_EQ(heap_objects(s), 1 + 1);
    verify_ok(s);

    /* Aborted with a catalog present; then another table takes its region.
     * (The header says the handle of an aborted creation must not be used
     * again; right after the abort it reports the table gone, which is all
     * that is checked of it here.) */
    OK(mms_txn_begin(s, 0));
    mms_table *tg2;
    OK(mms_table_open(s, "ghost2", &r2_schema, MMS_TABLE_CREATE, &tg2));
    OK(mms_table_append(tg2, NULL, NULL));
    uint32_t greg2 = table_region(tg2);
    OK(mms_txn_abort(s));
    OK(mms_tables(s, NULL, 0, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(mms_table_count(tg2), 0);
    OK(mms_txn_begin(s, 0));
    mms_table *other;
    OK(mms_table_open(s, "other", &g1_schema, MMS_TABLE_CREATE, &other));
    ASSERT_EQ(table_region(other), greg2);
    struct g1 gr = {5, 0};
    OK(mms_table_append(other, &gr, NULL));
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_table_count(other), 1);
    schema_same(mms_table_schema(other), &g1_schema, "other");
    OK(mms_close(s));
    s = sopen(path, 0);
    files_match_tables(path, s);
    OK(mms_table_open(s, "ghost", &g2_schema, 0, &t));
    ASSERT_EQ(mms_table_count(t), 11);
    verify_ok(s);

    /* Names. */
    CTX("bad input: names");
    char n63[64], n64[65];
    memset(n63, 'n', 63);
    n63[63] = 0;
    memset(n64, 'n', 64);
    n64[64] = 0;
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_open(s, "", &r2_schema, MMS_TABLE_CREATE, &t), MMS_EINVAL);
    ASSERT(mms_errdetail()[0]);
    FAILS(mms_table_open(s, n64, &r2_schema, MMS_TABLE_CREATE, &t), MMS_EINVAL);
    ASSERT(mms_errdetail()[0]);
    FAILS(mms_table_open(s, NULL, &r2_schema, MMS_TABLE_CREATE, &t), MMS_EINVAL);
    FAILS(mms_table_find(s, "", &t), MMS_EINVAL);
    FAILS(mms_table_find(s, n64, &t), MMS_EINVAL);
    FAILS(mms_table_open(s, "ok", &r2_schema, 0x80, &t), MMS_EINVAL);
    FAILS(mms_table_open(s, "ok", &r2_schema, MMS_TABLE_CREATE, NULL), MMS_EINVAL);
    FAILS(mms_table_open(s, "ok", NULL, MMS_TABLE_CREATE, &t), MMS_EINVAL);
    mms_table *tlong;
    OK(mms_table_open(s, n63, &r2_schema, MMS_TABLE_CREATE, &tlong));
    ASSERT(strcmp(mms_table_name(tlong), n63) == 0);
    mms_table *tok;
    OK(mms_table_open(s, "ok", &r2_schema, MMS_TABLE_CREATE, &tok));

    /* Schemas. */
    char f47[48], f48[49];
    memset(f47, 'f', 47);
    f47[47] = 0;
    memset(f48, 'f', 48);
    f48[48] = 0;
    {
        const mms_field ov[] = {{"a", MMS_KIND_I64, 0, 8, NULL, NULL},
                                {"b", MMS_KIND_I32, 4, 4, NULL, NULL}};
        bad_schema(s, "overlapping fields", MMS_EINVAL, 16, ov, 2);
        const mms_field ov2[] = {{"a", MMS_KIND_CHARS, 0, 10, NULL, NULL},
                                 {"b", MMS_KIND_U8, 9, 1, NULL, NULL}};
        bad_schema(s, "overlapping fields (chars)", MMS_EINVAL, 16, ov2, 2);
        const mms_field sz1[] = {{"a", MMS_KIND_I32, 0, 8, NULL, NULL}};
        bad_schema(s, "i32 of 8 bytes", MMS_EINVAL, 8, sz1, 1);
        const mms_field sz2[] = {{"a", MMS_KIND_F64, 0, 4, NULL, NULL}};
        bad_schema(s, "f64 of 4 bytes", MMS_EINVAL, 8, sz2, 1);
        const mms_field sz3[] = {{"a", MMS_KIND_REF, 0, 4, "ok", NULL}};
        bad_schema(s, "ref of 4 bytes", MMS_EINVAL, 8, sz3, 1);
        const mms_field sz4[] = {{"a", MMS_KIND_CHARS, 0, 0, NULL, NULL}};
        bad_schema(s, "chars of 0 bytes", MMS_EINVAL, 8, sz4, 1);
        const mms_field sz5[] = {{"a", MMS_KIND_BOOL, 0, 2, NULL, NULL}};
        bad_schema(s, "bool of 2 bytes", MMS_EINVAL, 8, sz5, 1);
        const mms_field k0[] = {{"a", 0, 0, 4, NULL, NULL}};
        bad_schema(s, "kind 0", MMS_EINVAL, 8, k0, 1);
        const mms_field k16[] = {{"a", MMS_KIND_BLOB + 1, 0, 8, NULL, NULL}};
        bad_schema(s, "kind past the last", MMS_EINVAL, 8, k16, 1);
        const mms_field k99[] = {{"a", 99, 0, 4, NULL, NULL}};
        bad_schema(s, "kind 99", MMS_EINVAL, 8, k99, 1);
        const mms_field rf[] = {{"r", MMS_KIND_REF, 0, 8, "nowhere", NULL}};
        bad_schema(s, "ref to a table that does not exist", MMS_ENOENT, 8, rf, 1);
        const mms_field rg[] = {{"r", MMS_KIND_REF, 0, 8, "ghost2", NULL}};
        bad_schema(s, "ref to a table whose creation aborted", MMS_ENOENT, 8, rg, 1);
        const mms_field rn[] = {{"r", MMS_KIND_REF, 0, 8, NULL, NULL}};
        bad_schema(s, "ref without a target", MMS_EINVAL, 8, rn, 1);
        const mms_field re[] = {{"r", MMS_KIND_REF, 0, 8, "", NULL}};
        bad_schema(s, "ref with an empty target", MMS_EINVAL, 8, re, 1);
        const mms_field dup[] = {{"a", MMS_KIND_I32, 0, 4, NULL, NULL},
                                 {"a", MMS_KIND_I32, 4, 4, NULL, NULL}};
        bad_schema(s, "two fields called a", MMS_EINVAL, 8, dup, 2);
        const mms_field out[] = {{"a", MMS_KIND_I64, 4, 8, NULL, NULL}};
        bad_schema(s, "a field past the record", MMS_EINVAL, 8, out, 1);
        const mms_field out2[] = {{"a", MMS_KIND_U8, 8, 1, NULL, NULL}};
        bad_schema(s, "a field at the record's end", MMS_EINVAL, 8, out2, 1);
        const mms_field huge[] = {{"a", MMS_KIND_U32, 0xfffffffcu, 4, NULL, NULL}};
        bad_schema(s, "an offset near 2^32", MMS_EINVAL, 8, huge, 1);
        const mms_field nm0[] = {{"", MMS_KIND_I32, 0, 4, NULL, NULL}};
        bad_schema(s, "an empty field name", MMS_EINVAL, 8, nm0, 1);
        const mms_field nmn[] = {{NULL, MMS_KIND_I32, 0, 4, NULL, NULL}};
        bad_schema(s, "a NULL field name", MMS_EINVAL, 8, nmn, 1);
        const mms_field nm48[] = {{f48, MMS_KIND_I32, 0, 4, NULL, NULL}};
        bad_schema(s, "a field name of 48 bytes", MMS_EINVAL, 8, nm48, 1);
        static const char big_dflt[40] = "x";
        const mms_field dfl[] = {{"a", MMS_KIND_CHARS, 0, 40, NULL, big_dflt}};
        bad_schema(s, "a default for a 40-byte field", MMS_EINVAL, 40, dfl, 1);
        const mms_field okf[] = {{"a", MMS_KIND_I32, 0, 4, NULL, NULL}};
        bad_schema(s, "no fields", MMS_EINVAL, 8, okf, 0);
        bad_schema(s, "NULL fields", MMS_EINVAL, 8, NULL, 1);
        bad_schema(s, "record size 0", MMS_EINVAL, 0, okf, 1);
        bad_schema(s, "record size over the limit", MMS_EINVAL, (16u << 20) + 1, okf, 1);
        /* The edges that are fine. */
        const mms_field good[] = {{f47, MMS_KIND_I32, 0, 4, NULL, NULL},
                                  {"self", MMS_KIND_REF, 8, 8, "edge", NULL},
                                  {"last", MMS_KIND_U8, 16, 1, NULL, NULL}};
        mms_schema gs = {17, 3, good};
        mms_table *te;
        OK(mms_table_open(s, "edge", &gs, MMS_TABLE_CREATE, &te));
        schema_same(mms_table_schema(te), &gs, "edge");
    }
    OK(mms_txn_commit(s));
    verify_ok(s);

    /* Deletes of slots that are not live; operations outside a
     * transaction. */
    CTX("bad input: deletes and transactions");
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 3; i++)
        OK(mms_table_append(tok, NULL, NULL));
    OK(mms_table_delete(tok, 1));
    FAILS(mms_table_delete(tok, 1), MMS_ERANGE);
    ASSERT(mms_errdetail()[0]);
    FAILS(mms_table_delete(tok, 3), MMS_ERANGE);
    FAILS(mms_table_delete(tok, UINT64_MAX), MMS_ERANGE);
    FAILS(mms_table_delete(tok, MMS_SLOT_MASK + 1), MMS_ERANGE);
    FAILS(mms_table_append_many(tok, 1, NULL, NULL), MMS_EINVAL);
    FAILS(mms_table_append(NULL, NULL, NULL), MMS_EINVAL);
    FAILS(mms_table_delete(NULL, 0), MMS_EINVAL);
    OK(mms_table_append_many(tok, 0, &first, NULL));
    ASSERT_EQ(first, 3);
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_table_count(tok), 2);
    ASSERT_EQ(mms_table_slots(tok), 3);
    FAILS(mms_table_append(tok, NULL, &idx), MMS_ENOTXN);
    FAILS(mms_table_append_many(tok, 1, &first, NULL), MMS_ENOTXN);
    FAILS(mms_table_delete(tok, 0), MMS_ENOTXN);
    FAILS(mms_table_delete(tok, 1), MMS_ENOTXN);
    mms_ref sref;
    FAILS(mms_str_new(s, "x", 1, &sref), MMS_ENOTXN);
    ASSERT_EQ(mms_table_count(tok), 2);
    ASSERT_EQ(mms_table_slots(tok), 3);
    ASSERT_EQ(mms_table_count(NULL), 0);
    ASSERT_EQ(mms_table_slots(NULL), 0);
    ASSERT(mms_table_get(NULL, 0) == NULL);
    ASSERT(mms_table_array(NULL) == NULL);
    ASSERT(mms_table_schema(NULL) == NULL);
    ASSERT(mms_table_name(NULL) == NULL);
    ASSERT_EQ(mms_table_live(NULL, 0), 0);
    ASSERT(mms_str_get(s, 0, NULL) == NULL);

    /* Many tables: the catalog grows past its first sizes. */
    CTX("bad input: many tables");
    OK(mms_tables(s, NULL, 0, &n));
    size_t n0 = n;
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "many%02d", i);
        mms_table *tm;
        OK(mms_table_open(s, name, &r2_schema, MMS_TABLE_CREATE, &tm));
        for (int j = 0; j <= i; j++)
            OK(mms_table_append(tm, NULL, NULL));
        if (i == 9) {
            OK(mms_txn_commit(s));
            OK(mms_txn_begin(s, 0));
        }
    }
    OK(mms_txn_commit(s));
    mms_table_info ti[64];
    OK(mms_tables(s, ti, 64, &n));
    ASSERT_EQ(n, n0 + 20);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++) {
            ASSERT_NE(ti[i].region, ti[j].region);
            ASSERT(strcmp(ti[i].name, ti[j].name) != 0);
        }
    size_t small = 0;
    mms_table_info two[2];
    OK(mms_tables(s, two, 2, &small));
    ASSERT_EQ(small, n);
    ASSERT(strcmp(two[0].name, ti[0].name) == 0 && strcmp(two[1].name, ti[1].name) == 0);
    FAILS(mms_tables(s, NULL, 2, &small), MMS_EINVAL);
    FAILS(mms_tables(s, two, 2, NULL), MMS_EINVAL);
    verify_ok(s);
    OK(mms_close(s));
    s = sopen(path, MMS_RDONLY);
    OK(mms_tables(s, ti, 64, &n));
    ASSERT_EQ(n, n0 + 20);
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "many%02d", i);
        mms_table *tm;
        OK(mms_table_find(s, name, &tm));
        ASSERT_EQ(mms_table_count(tm), (uint64_t)i + 1);
        OK(mms_table_open(s, name, &r2_schema, 0, &tm));
    }
    FAILS(mms_table_open(s, "newone", &r2_schema, MMS_TABLE_CREATE, &t), MMS_ERDONLY);
    OK(mms_close(s));
    s = sopen(path, 0);
    files_match_tables(path, s);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(path);
    fprintf(stderr, "   aborted creation left its region file: %s; %.1f s\n",
            file_left ? "yes (ignored, replaced)" : "no", (now_us() - t0) / 1e6);
}

/* ========================================================================
 * 2b. Migrations at the edges: an empty table, a table whose records are
 *     all deleted, a table created and migrated in one transaction (kept,
 *     and aborted), STR and REF fields at odd offsets.
 * ======================================================================== */
struct eg2 {
    int64_t a;
    mms_ref s;
    uint16_t c;
};
static const uint16_t dflt_seven = 7;
static const mms_field eg2_fields[] = {
    MMS_F_I64(struct eg2, a), MMS_F_STR(struct eg2, s),
    MMS_F_WITH_DEFAULT(struct eg2, c, MMS_KIND_U16, &dflt_seven)};
static const mms_schema eg2_schema = MMS_SCHEMA(struct eg2, eg2_fields);

/* Hand-made layouts: a STR and a REF at offsets that are not multiples of
 * 8, in a 17-byte record; then moved, with an i8... u8 widened to u16. */
static const mms_field odd1_fields[] = {{"a", MMS_KIND_U8, 0, 1, NULL, NULL},
                                        {"s", MMS_KIND_STR, 1, 8, NULL, NULL},
                                        {"r", MMS_KIND_REF, 9, 8, "odd", NULL}};
static const mms_schema odd1_schema = {17, 3, odd1_fields};
static const mms_field odd2_fields[] = {{"z", MMS_KIND_U16, 0, 2, NULL, &dflt_seven},
                                        {"a", MMS_KIND_U16, 2, 2, NULL, NULL},
                                        {"s", MMS_KIND_STR, 5, 8, NULL, NULL},
                                        {"r", MMS_KIND_REF, 13, 8, "odd", NULL}};
static const mms_schema odd2_schema = {23, 4, odd2_fields};
#define NODD 60

static struct {
    int live[NODD], has[NODD];
    int64_t r[NODD]; /* target slot, -1 = null */
    uint64_t strings;
} OD;

static mms_ref rd_ref(const char *p)
{
    mms_ref r;
    memcpy(&r, p, 8);
    return r;
}

static void odd_check(mms_store *s, mms_table *t, const mms_schema *sc)
{
    schema_same(mms_table_schema(t), sc, "odd");
    int moved = sc == &odd2_schema;
    uint32_t so = moved ? 5 : 1, ro = moved ? 13 : 9;
    uint64_t count = 0;
    char want[32];
    for (int i = 0; i < NODD; i++) {
        ASSERT_EQ(mms_table_live(t, (uint64_t)i), OD.live[i]);
        const char *p = mms_table_get(t, (uint64_t)i);
        if (!OD.live[i]) {
            for (uint32_t b = 0; b < sc->record_size; b++)
                ASSERT_EQ(p[b], 0);
            continue;
        }
        count++;
        if (moved) {
            uint16_t z, a;
            memcpy(&z, p, 2);
            memcpy(&a, p + 2, 2);
            ASSERT_EQ(z, 7);
            ASSERT_EQ(a, (uint8_t)(i + 200)); /* the u8 value, widened */
            ASSERT_EQ(p[4], 0);
        } else {
            ASSERT_EQ((uint8_t)p[0], (uint8_t)(i + 200));
        }
        mms_ref sr = rd_ref(p + so), rr = rd_ref(p + ro);
        if (OD.has[i]) {
            size_t len;
            const char *str = mms_str_get(s, sr, &len);
            snprintf(want, sizeof want, "odd string %d", i);
            ASSERT(str && len == strlen(want) && memcmp(str, want, len) == 0);
        } else {
            ASSERT_EQ(sr, 0);
        }
        if (OD.r[i] < 0) {
            ASSERT_EQ(rr, 0);
        } else {
            ASSERT_EQ(rr, mms_table_ref(t, (uint64_t)OD.r[i]));
            ASSERT(mms_rec(s, rr) == mms_table_get(t, (uint64_t)OD.r[i]));
        }
    }
    ASSERT_EQ(mms_table_count(t), count);
    ASSERT_EQ(mms_table_slots(t), NODD);
}

static void odd_delete(mms_table *t, int j, uint32_t ro)
{
    mms_ref ref = mms_table_ref(t, (uint64_t)j);
    for (int i = 0; i < NODD; i++)
        if (OD.live[i] && OD.r[i] == j) {
            char *p = (char *)mms_table_get(t, (uint64_t)i) + ro;
            ASSERT_EQ(rd_ref(p), ref);
            memset(p, 0, 8);
            OD.r[i] = -1;
        }
    OK(mms_table_delete(t, (uint64_t)j));
    OD.live[j] = 0;
    OD.strings -= (uint64_t)OD.has[j];
    OD.has[j] = 0;
    OD.r[j] = -1;
}

TEST(test_edges)
{
    const char *path = tpath("table-edges");
    double t0 = now_us();
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *te, *td, *tq, *tgone, *to, *t;
    uint64_t idx;

    /* An empty table. */
    CTX("edges: empty table");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "empty", &g1_schema, MMS_TABLE_CREATE, &te));
    OK(mms_txn_commit(s));
    uint32_t eid = table_region(te), egen = region_gen(s, eid);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "empty", &eg2_schema, 0, &t));
    ASSERT(t == te);
    OK(mms_txn_commit(s));
    ASSERT_EQ(region_gen(s, eid), egen + 1);
    schema_same(mms_table_schema(te), &eg2_schema, "empty");
    ASSERT_EQ(mms_table_slots(te), 0);
    ASSERT(mms_table_array(te) == NULL);
    verify_ok(s);

    /* Every record deleted. */
    CTX("edges: every record deleted");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "dead", &g1_schema, MMS_TABLE_CREATE, &td));
    for (int i = 0; i < 100; i++) {
        struct { int64_t a; mms_ref s; } r = {i, 0};
        OK(mms_str_new(s, "dead", 4, &r.s));
        OK(mms_table_append(td, &r, NULL));
    }
    OK(mms_txn_commit(s));
    uint64_t h0 = heap_objects(s);
    OK(mms_txn_begin(s, 0));
    for (uint64_t i = 0; i < 100; i++)
        OK(mms_table_delete(td, i));
    OK(mms_txn_commit(s));
    ASSERT_EQ(heap_objects(s), h0 - 100 + 1); /* strings gone, a bitmap came */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "dead", &eg2_schema, 0, &t));
    OK(mms_txn_commit(s));
    ASSERT_EQ(mms_table_slots(td), 100);
    ASSERT_EQ(mms_table_count(td), 0);
    for (uint64_t i = 0; i < 100; i++) {
        ASSERT(!mms_table_live(td, i));
        const uint8_t *p = mms_table_get(td, i);
        for (size_t b = 0; b < sizeof(struct eg2); b++)
            ASSERT_EQ(p[b], 0); /* no default in deleted slots */
    }
    OK(mms_txn_begin(s, 0));
    OK(mms_table_append(td, NULL, &idx));
    ASSERT_EQ(idx, 0);
    OK(mms_table_append(td, NULL, &idx));
    ASSERT_EQ(idx, 1);
    OK(mms_txn_commit(s));
    ASSERT_EQ(((struct eg2 *)mms_table_get(td, 0))->c, 0); /* appended after: zeros */
    verify_ok(s);

    /* Created and migrated in one transaction. */
    CTX("edges: created and migrated in one transaction");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "quick", &g1_schema, MMS_TABLE_CREATE, &tq));
    for (int i = 0; i < 10; i++) {
        struct { int64_t a; mms_ref s; } r = {i - 5, 0};
        OK(mms_str_new(s, "quick", 5, &r.s));
        OK(mms_table_append(tq, &r, NULL));
    }
    OK(mms_table_open(s, "quick", &eg2_schema, 0, &t));
    ASSERT(t == tq);
    OK(mms_txn_commit(s));
    for (int i = 0; i < 10; i++) {
        const struct eg2 *r = mms_table_get(tq, (uint64_t)i);
        ASSERT_EQ(r->a, i - 5);
        ASSERT_EQ(r->c, 7);
        size_t len;
        const char *str = mms_str_get(s, r->s, &len);
        ASSERT(str && len == 5 && memcmp(str, "quick", 5) == 0);
    }
    size_t ntab0, ntab1;
    OK(mms_tables(s, NULL, 0, &ntab0));
    uint64_t h1 = heap_objects(s);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "gone", &g1_schema, MMS_TABLE_CREATE, &tgone));
    OK(mms_table_append(tgone, NULL, NULL));
    OK(mms_table_open(s, "gone", &eg2_schema, 0, &t));
    OK(mms_table_append(t, NULL, NULL));
    OK(mms_txn_abort(s));
    FAILS(mms_table_find(s, "gone", &t), MMS_ENOENT);
    OK(mms_tables(s, NULL, 0, &ntab1));
    ASSERT_EQ(ntab1, ntab0);
    ASSERT_EQ(heap_objects(s), h1);
    verify_ok(s);

    /* STR and REF at odd offsets. */
    CTX("edges: odd offsets");
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "odd", &odd1_schema, MMS_TABLE_CREATE, &to));
    h0 = heap_objects(s);
    for (int i = 0; i < NODD; i++) {
        char rec[17], str[32];
        memset(rec, 0, sizeof rec);
        rec[0] = (char)(i + 200);
        mms_ref sr = 0, rr = 0;
        if (i % 3) {
            snprintf(str, sizeof str, "odd string %d", i);
            OK(mms_str_new(s, str, strlen(str), &sr));
            OD.has[i] = 1;
            OD.strings++;
        }
        OD.r[i] = i % 4 ? (i * 7) % NODD : -1;
        if (OD.r[i] >= 0)
            rr = mms_table_ref(to, (uint64_t)OD.r[i]);
        memcpy(rec + 1, &sr, 8);
        memcpy(rec + 9, &rr, 8);
        OK(mms_table_append(to, rec, &idx));
        ASSERT_EQ(idx, (uint64_t)i);
        OD.live[i] = 1;
    }
    OK(mms_txn_commit(s));
    odd_check(s, to, &odd1_schema);
    ASSERT_EQ(heap_objects(s), h0 + OD.strings);
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < NODD; i += 7)
        odd_delete(to, i, 9);
    OK(mms_txn_commit(s));
    odd_check(s, to, &odd1_schema);
    ASSERT_EQ(heap_objects(s), h0 + OD.strings + 1);
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "odd", &odd2_schema, 0, &t));
    odd_check(s, to, &odd2_schema);
    OK(mms_txn_commit(s));
    odd_check(s, to, &odd2_schema);
    verify_ok(s);
    OK(mms_txn_begin(s, 0));
    odd_delete(to, 1, 13);
    odd_delete(to, 2, 13);
    OK(mms_txn_commit(s));
    odd_check(s, to, &odd2_schema);
    ASSERT_EQ(heap_objects(s), h0 + OD.strings + 1);
    verify_ok(s);

    OK(mms_close(s));
    s = sopen(path, 0);
    files_match_tables(path, s);
    verify_ok(s);
    OK(mms_table_open(s, "odd", &odd2_schema, 0, &to));
    odd_check(s, to, &odd2_schema);
    OK(mms_table_open(s, "quick", &eg2_schema, 0, &tq));
    ASSERT_EQ(mms_table_count(tq), 10);
    OK(mms_table_open(s, "empty", &eg2_schema, 0, &te));
    OK(mms_table_open(s, "dead", &eg2_schema, 0, &td));
    ASSERT_EQ(mms_table_count(td), 2);
    OK(mms_close(s));
    rmrf(path);
    fprintf(stderr, "   empty, all-deleted, created+migrated (kept and aborted), odd offsets; "
            "%.1f s\n", (now_us() - t0) / 1e6);
}

/* ========================================================================
 * 6. The region limit: 1023 tables, the most a store holds, in one handle
 *    (with fixed 256 GiB reservations the address space ran out at ~510),
 *    reopened (the region table is then longer than the two pages a
 *    header read takes first). A create that fails -- injected ENOSPC
 *    making the file, ENOMEM mapping it -- leaves no trace: same tables,
 *    same heap objects, no file, and the transaction commits.
 * ======================================================================== */
TEST(test_limits)
{
    const char *path = tpath("table-limits");
    double t0 = now_us();
    mms_store *s = sopen(path, MMS_CREATE);
    const unsigned most = MMS_MAX_REGIONS - 1;
    OK(mms_txn_begin(s, 0));
    unsigned made = 0, refused = 0;
    for (unsigned i = 0; i < most; i++) {
        if (i % 100 == 50) {
            /* A failure at each step of making a region. */
            static const struct {
                enum mms__op op;
                const char *name;
                unsigned long nth;
                int err;
            } inj[] = {{MMS__OP_FALLOCATE, "fallocate", 1, ENOSPC}, {MMS__OP_OPEN, "open", 1, EMFILE},
                       {MMS__OP_MMAP, "mmap", 2, ENOMEM}, {MMS__OP_MMAP, "mmap", 3, ENOMEM},
                       {MMS__OP_MMAP, "mmap", 4, ENOMEM}};
            size_t n0, n1;
            OK(mms_tables(s, NULL, 0, &n0));
            uint64_t h0 = heap_objects(s);
            unsigned k = (i / 100) % (sizeof inj / sizeof inj[0]);
            CTX("limits: create with %s %d at call %lu", inj[k].name, inj[k].err,
                inj[k].nth);
            mms__fault_arm(inj[k].op, inj[k].nth, inj[k].err);
            mms_table *t = NULL;
            int r = mms_table_open(s, "doomed", &r2_schema, MMS_TABLE_CREATE, &t);
            mms__fault_reset();
            if (r == 0) {
                BUG("the create succeeded despite the injected failure");
            } else {
                refused++;
                ASSERT(t == NULL);
                OK(mms_tables(s, NULL, 0, &n1));
                ASSERT_EQ(n1, n0);
                ASSERT_EQ(heap_objects(s), h0);
                FAILS(mms_table_find(s, "doomed", &t), MMS_ENOENT);
            }
        }
        char name[16];
        snprintf(name, sizeof name, "t%04u", i);
        CTX("limits: table %u", i);
        mms_table *t;
        OK(mms_table_open(s, name, &r2_schema, MMS_TABLE_CREATE, &t));
        struct r2 rec = {(uint8_t)i, {(char)('a' + i % 26), 0}};
        OK(mms_table_append(t, &rec, NULL));
        made++;
    }
    mms_table *t = NULL;
    FAILS(mms_table_open(s, "one-too-many", &r2_schema, MMS_TABLE_CREATE, &t), MMS_EFULL);
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
    for (int ro = 1; ro >= 0; ro--) {
        CTX("limits: reopened %s", ro ? "read-only" : "read-write");
        s = sopen(path, ro ? MMS_RDONLY : 0);
        size_t n;
        OK(mms_tables(s, NULL, 0, &n));
        ASSERT_EQ(n, most);
        for (unsigned i = 0; i < most; i += 97) {
            char name[16];
            snprintf(name, sizeof name, "t%04u", i);
            OK(mms_table_find(s, name, &t));
            ASSERT_EQ(mms_table_count(t), 1);
            const struct r2 *r = mms_table_get(t, 0);
            ASSERT_EQ(r->a, (uint8_t)i);
        }
        if (!ro) {
            /* No file of the failed creates is left once a checkpoint ran. */
            OK(mms_checkpoint(s));
            DIR *d = opendir(path);
            ASSERT(d);
            unsigned files = 0;
            for (struct dirent *de; (de = readdir(d));)
                files += strncmp(de->d_name, "region-", 7) == 0;
            closedir(d);
            ASSERT_EQ(files, most + 1);
        }
        verify_ok(s);
        OK(mms_close(s));
    }
    rmrf(path);
    fprintf(stderr, "   %u tables, %u failed creates left no trace; %.1f s\n", made, refused,
            (now_us() - t0) / 1e6);
}

int main(int argc, char **argv)
{
    info_buf = malloc(sizeof *info_buf);
    strbuf = malloc(STRBUF);
    ASSERT(info_buf && strbuf);
    char **a = child_enter(argc, argv, 3, "PATH MODE NOSYNC");
    if (a) {
        CS = child_page(sizeof *CS);
        crash_child(a[0], atoi(a[1]), atoi(a[2]));
    }
    seed0 = test_seed("test_table", 0, &soak, "");
    signal(SIGABRT, on_abort);
    double t0 = now_us();
    RUN(test_bad);
    RUN(test_model);
    RUN(test_migrate);
    RUN(test_edges);
    RUN(test_reader);
    RUN(test_reader_stress);
    RUN(test_crash);
    RUN(test_limits);
    free(info_buf);
    free(strbuf);
    if (bugs) {
        fprintf(stderr, "test_table: FAILED: %lu wrong answers from the library (LIBRARY BUG "
                "above), %.1f s\n", bugs, (now_us() - t0) / 1e6);
        return 1;
    }
    fprintf(stderr, "test_table: ok, %.1f s\n", (now_us() - t0) / 1e6);
    return 0;
}

/*
 * test_table_model.c -- tables against an in-memory model: records,
 * deleted slots and their reuse, strings.
 *
 * Random appends (a copy of a record, zeros, append_many), deletes, field
 * and string updates on two tables (one with an odd record size of 3 bytes),
 * checked against the model after every commit and abort, and after reopens
 * and through a second, read-only handle: count, slots, liveness of every
 * slot, every record's bytes (deleted ones zero), every string, the heap's
 * object count (catalog + one field list per table + one deleted-slot
 * bitmap per table that had a delete + one object per string), mms_tables,
 * mms_verify. An append reuses the lowest deleted slot; append_many never.
 * An append may copy a record of its own table by address.
 *
 * MMS_SEED=S reruns a seed; MMS_SOAK=N multiplies the iteration counts.
 */
#include "table_world.h"

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

/* beta's records: struct r2 (table_world.h), of an odd size, 3 bytes. */
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
        int r = mms_txn_commit(P1.s);
        if (r == MMS_EREFERENCED) {
            /* A deleted record is still referred to by a live one: the
             * commit refuses and aborts (the delete rule), as the model
             * does. */
            for (int k = 0; k < 2; k++)
                mtab_copy(&P1.m[k], &P1.snap[k]);
            ASSERT_EQ(mms_txn_id(P1.s), txn0);
            P1.aborts++;
        } else {
            OK(r);
            P1.commits++;
        }
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


int main(void)
{
    table_test_begin("test_table_model");
    RUN(test_model);
    return table_test_end();
}

/*
 * sys_mmstore -- the benchmark harness for mmstore (see bench/README.md).
 *
 * Records are a table "rec" of struct bench_rec; keys are record indices.
 * Variants: durable (default: a commit is durable when it returns) and
 * nosync (MMS_NOSYNC: survives a process crash, not a power loss);
 * nordahead (open, openscan: MMS_NORDAHEAD, no read-ahead on the table).
 * openscan is scan timed from before the open: the cold full scan.
 */
#define _GNU_SOURCE
#include <mmstore.h>

#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static const mms_field rec_fields[] = {
    MMS_F_U64(struct bench_rec, key), MMS_F_U64(struct bench_rec, a),
    MMS_F_F64(struct bench_rec, v),   MMS_F_U32(struct bench_rec, b),
    MMS_F_U32(struct bench_rec, c),   MMS_F_CHARS(struct bench_rec, tag),
};
static const mms_schema rec_schema = MMS_SCHEMA(struct bench_rec, rec_fields);

#define CHECK(call)                                                            \
    do {                                                                       \
        int r_ = (call);                                                       \
        if (r_)                                                                \
            BENCH_DIE("mmstore: %s: %s (%s)", #call, mms_strerror(r_), mms_errdetail()); \
    } while (0)

static const char *variant = "durable";

static mms_store *open_store(const char *dir, unsigned flags)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = flags | (strcmp(variant, "nosync") == 0 ? MMS_NOSYNC : 0) |
              (strcmp(variant, "nordahead") == 0 ? MMS_NORDAHEAD : 0);
    if (flags & MMS_RDONLY)
        o.flags &= ~MMS_NOSYNC;
    mms_store *s;
    CHECK(mms_open(dir, &o, &s));
    return s;
}

static void rmrf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        BENCH_DIE("cannot remove %s", dir);
}

/* A store of n records (one transaction, append_many into fresh space). */
static double build(const char *dir, uint64_t n)
{
    rmrf(dir);
    double t = bench_now();
    mms_store *s = open_store(dir, MMS_CREATE);
    mms_table *tb;
    CHECK(mms_txn_begin(s, 0));
    CHECK(mms_table_open(s, "rec", &rec_schema, MMS_TABLE_CREATE, &tb));
    uint64_t first;
    void *where;
    CHECK(mms_table_append_many(tb, n, &first, &where));
    struct bench_rec *r = where;
    for (uint64_t i = 0; i < n; i++)
        bench_make(&r[i], i);
    CHECK(mms_txn_commit(s));
    t = bench_now() - t;
    CHECK(mms_close(s));
    return t;
}

static uint64_t checksum_a(const mms_table *tb)
{
    const struct bench_rec *r = mms_table_array(tb);
    uint64_t n = mms_table_slots(tb), sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += r[i].a;
    return sum;
}

static void answer_u64(char *buf, uint64_t v)
{
    snprintf(buf, 32, "%llu", (unsigned long long)v);
}

/* Workload commit_size: an empty and a one-page commit on a store holding
 * one object of n MB, every page of it read once; 200 of each. */
static void commit_size(const char *dir, uint64_t mb)
{
    rmrf(dir);
    mms_store *s = open_store(dir, MMS_CREATE);
    uint64_t size = mb << 20;
    mms_ref obj;
    CHECK(mms_txn_begin(s, 0));
    CHECK(mms_alloc(s, size, &obj));
    memset(mms_deref(s, obj), 1, size);
    CHECK(mms_root_set(s, obj));
    CHECK(mms_txn_commit(s));
    volatile unsigned char sink = 0;
    for (uint64_t i = 0; i < size; i += 4096)
        sink += ((unsigned char *)mms_deref(s, obj))[i];
    (void)sink;
    enum { N = 200 };
    for (int page = 0; page < 2; page++) {
        double tot = 0, det = 0, jr = 0, ap = 0;
        for (int i = 0; i < N + 10; i++) {
            double t = bench_now();
            CHECK(mms_txn_begin(s, 0));
            if (page)
                ((uint64_t *)mms_deref(s, obj))[(uint64_t)(i * 7919) % (size / 8)] = (uint64_t)i + 7;
            CHECK(mms_txn_commit(s));
            t = bench_now() - t;
            mms_info in;
            CHECK(mms_info_get(s, &in));
            if (i < 10)
                continue;
            tot += t;
            /* An empty commit changes nothing: it has no stats of its own. */
            if (page) {
                det += in.last_commit.detect_ns / 1e9;
                jr += (in.last_commit.journal_ns + in.last_commit.sync_ns) / 1e9;
                ap += in.last_commit.apply_ns / 1e9;
            }
        }
        const char *w = page ? "commit_page" : "commit_empty";
        bench_result("mmstore", "total", w, mb, N, tot, "-");
        if (page) {
            bench_result("mmstore", "detect", w, mb, N, det, "-");
            bench_result("mmstore", "journal", w, mb, N, jr, "-");
            bench_result("mmstore", "apply", w, mb, N, ap, "-");
        }
    }
    CHECK(mms_close(s));
    rmrf(dir);
}

/* Workload ipc: commit-to-visible latency seen by a second process blocked
 * in mms_wait; reader throughput (read transactions with a lookup) while a
 * writer commits continuously. */
static void ipc(const char *dir, uint64_t n)
{
    build(dir, n);
    struct sh {
        volatile uint64_t stop, before[2000], seen[2000];
    } *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        BENCH_DIE("mmap");
    memset((void *)sh, 0, sizeof *sh);
    enum { N = 2000 };
    pid_t pid = fork();
    if (pid == 0) {
        mms_store *c = open_store(dir, MMS_RDONLY);
        mms_table *tb;
        CHECK(mms_table_find(c, "rec", &tb));
        uint64_t txn = mms_txn_id(c), base = ((struct bench_rec *)mms_table_get(tb, 0))->a;
        for (;;) {
            CHECK(mms_wait(c, txn, 5000, &txn));
            CHECK(mms_read_begin(c));
            uint64_t v = ((struct bench_rec *)mms_table_get(tb, 0))->a - base;
            double t = bench_now();
            mms_read_end(c);
            if (v >= 1 && v <= N && !sh->seen[v - 1])
                sh->seen[v - 1] = (uint64_t)(t * 1e9);
            if (v >= N)
                break;
        }
        mms_close(c);
        _exit(0);
    }
    mms_store *w = open_store(dir, 0);
    mms_table *tb;
    CHECK(mms_table_find(w, "rec", &tb));
    struct timespec pause = {0, 50000000};
    nanosleep(&pause, NULL);
    for (int i = 0; i < N; i++) {
        CHECK(mms_txn_begin(w, 0));
        ((struct bench_rec *)mms_table_get(tb, 0))->a++;
        sh->before[i] = (uint64_t)(bench_now() * 1e9);
        CHECK(mms_txn_commit(w));
        for (int k = 0; k < 20000 && !sh->seen[i]; k++) {
            struct timespec us = {0, 1000};
            nanosleep(&us, NULL);
        }
    }
    waitpid(pid, NULL, 0);
    double tot = 0;
    uint64_t got = 0;
    for (int i = 0; i < N; i++)
        if (sh->seen[i]) {
            tot += (double)(sh->seen[i] - sh->before[i]) / 1e9;
            got++;
        }
    bench_result("mmstore", variant, "ipc_visible", n, got, tot, "-");

    /* Reader throughput with a concurrent writer. */
    sh->stop = 0;
    pid = fork();
    if (pid == 0) {
        mms_store *c = open_store(dir, MMS_RDONLY);
        mms_table *t2;
        CHECK(mms_table_find(c, "rec", &t2));
        uint64_t k = 0, sum = 0;
        double t = bench_now();
        while (bench_now() - t < 1.0) {
            for (int j = 0; j < 1000; j++, k++) {
                CHECK(mms_read_begin(c));
                sum += ((struct bench_rec *)mms_table_get(t2, bench_key(k, n)))->b;
                mms_read_end(c);
            }
        }
        t = bench_now() - t;
        sh->stop = 1;
        bench_result("mmstore", variant, "ipc_reader", n, k, t, "-");
        (void)sum;
        mms_close(c);
        _exit(0);
    }
    while (!sh->stop) {
        CHECK(mms_txn_begin(w, 0));
        ((struct bench_rec *)mms_table_get(tb, 1))->a++;
        CHECK(mms_txn_commit(w));
    }
    waitpid(pid, NULL, 0);
    CHECK(mms_close(w));
    rmrf(dir);
}

/* ------------------------------------------------------------------------
 * Keyed workloads: records found by their random 64-bit field a through an
 * index. Variants: hash, ordered (the index on a); keycommit also none (no
 * index), each with MMS_NOSYNC, and ordered-durable. hash-cover: a hash
 * index covering b (mms_index_create_covering), whose keyget reads b from
 * the slot (mms_index_find_covered) instead of the record. ordered-cover:
 * an ordered index covering b, whose range reads b from the leaf entries
 * (mms_cursor_covered) instead of the records.
 * ------------------------------------------------------------------------ */
static bool covering(const char *v)
{
    return strncmp(v, "hash-cover", 10) == 0;
}

static bool ordered_covering(const char *v)
{
    return strncmp(v, "ordered-cover", 13) == 0;
}

static unsigned index_flags(const char *v)
{
    if (strncmp(v, "hash", 4) == 0)
        return MMS_INDEX_HASH;
    if (strncmp(v, "ordered", 7) == 0)
        return MMS_INDEX_ORDERED;
    BENCH_DIE("mmstore: unknown variant %s for a keyed workload (hash, ordered)", v);
}

static void add_index(const char *dir, unsigned flags, double *secs)
{
    mms_store *s = open_store(dir, 0);
    mms_table *tb;
    CHECK(mms_table_find(s, "rec", &tb));
    double t = bench_now();
    CHECK(mms_txn_begin(s, 0));
    CHECK(mms_index_create_covering(tb, "a", flags,
                                    covering(variant) || ordered_covering(variant) ? "b" : NULL));
    CHECK(mms_txn_commit(s));
    if (secs)
        *secs = bench_now() - t;
    CHECK(mms_close(s));
}

static int keyed(int prep, const char *w, uint64_t n, const char *dir, char *ans)
{
    if (strcmp(w, "keycommit") == 0) {
        bool none = strncmp(variant, "none", 4) == 0;
        unsigned flags = none ? 0 : index_flags(variant);
        bool durable = strstr(variant, "durable") != NULL;
        if (prep) {
            build(dir, n);
            if (!none)
                add_index(dir, flags, NULL);
            return 0;
        }
        mms_options o;
        mms_options_init(&o);
        o.flags = durable ? 0 : MMS_NOSYNC;
        mms_store *s;
        CHECK(mms_open(dir, &o, &s));
        mms_table *tb;
        CHECK(mms_table_find(s, "rec", &tb));
        /* A plain store to the key field of a random record, and a commit
         * (which finds the change and moves the record in the index). */
        double t = bench_now();
        for (uint64_t j = 0; j < BENCH_KEYCOMMITS; j++) {
            CHECK(mms_txn_begin(s, 0));
            ((struct bench_rec *)mms_table_get(tb, bench_key(j, n)))->a = bench_new_key(j);
            CHECK(mms_txn_commit(s));
        }
        t = bench_now() - t;
        uint64_t sum = 0;
        mms_index *ix;
        if (!none) {
            /* Every new key is found where it was stored. */
            CHECK(mms_index_open(tb, "a", &ix));
            for (uint64_t j = 0; j < BENCH_KEYCOMMITS; j++) {
                uint64_t key = bench_new_key(j), at;
                if (mms_index_find(ix, &key, &at) == 0)
                    sum += at;
            }
        } else {
            for (uint64_t j = 0; j < BENCH_KEYCOMMITS; j++) {
                uint64_t i = bench_key(j, n);
                if (((const struct bench_rec *)mms_table_get(tb, i))->a == bench_new_key(j))
                    sum += i;
            }
        }
        CHECK(mms_close(s));
        answer_u64(ans, sum);
        bench_result("mmstore", variant, w, n, BENCH_KEYCOMMITS, t, ans);
        build(dir, n); /* the next run starts from the prepared state */
        if (!none)
            add_index(dir, flags, NULL);
        return 0;
    }
    unsigned flags = index_flags(variant);
    if (strcmp(w, "ixbuild") == 0) {
        if (prep) {
            build(dir, n);
            return 0;
        }
        double t;
        add_index(dir, flags, &t);
        mms_store *s = open_store(dir, 0);
        mms_table *tb;
        mms_index_info ii;
        size_t k;
        CHECK(mms_table_find(s, "rec", &tb));
        CHECK(mms_indexes(tb, &ii, 1, &k));
        CHECK(mms_txn_begin(s, 0));
        CHECK(mms_index_drop(tb, "a"));
        CHECK(mms_txn_commit(s));
        CHECK(mms_close(s));
        answer_u64(ans, ii.entries);
        bench_result("mmstore", variant, w, n, n, t, ans);
        return 0;
    }
    if (strcmp(w, "keyget") != 0 && strcmp(w, "range") != 0 && strcmp(w, "keybatch") != 0)
        return -1;
    if (prep) {
        build(dir, n);
        add_index(dir, flags, NULL);
        return 0;
    }
    mms_store *s = open_store(dir, MMS_RDONLY);
    mms_table *tb;
    mms_index *ix;
    CHECK(mms_table_find(s, "rec", &tb));
    CHECK(mms_read_begin(s));
    CHECK(mms_index_open(tb, "a", &ix));
    uint64_t sum = 0, ops;
    double t;
    char wvar[64];
    if (bench_warm()) {
        CHECK(mms_index_warm(ix));
        bench_touch(mms_table_get(tb, 0), (size_t)n * sizeof(struct bench_rec));
        snprintf(wvar, sizeof wvar, "%s-warm", variant);
        variant = wvar;
    }
    if (strcmp(w, "keyget") == 0) {
        const bool cover = covering(variant);
        ops = BENCH_KEYGETS;
        t = bench_now();
        for (uint64_t k = 0; k < ops && cover; k++) {
            uint64_t key = bench_lookup_key(k, n);
            uint32_t b;
            CHECK(mms_index_find_covered(ix, &key, NULL, &b));
            sum += b;
        }
        for (uint64_t k = 0; k < ops && !cover; k++) {
            uint64_t key = bench_lookup_key(k, n), at;
            CHECK(mms_index_find(ix, &key, &at));
            sum += ((const struct bench_rec *)mms_table_get(tb, at))->b;
        }
        t = bench_now() - t;
    } else if (strcmp(w, "keybatch") == 0) {
        /* The keyget keys, 16 at a time through mms_index_find_many. */
        ops = BENCH_KEYGETS;
        t = bench_now();
        for (uint64_t k = 0; k < ops; k += 16) {
            uint64_t key[16], at[16];
            size_t m = ops - k < 16 ? (size_t)(ops - k) : 16, found;
            for (size_t j = 0; j < m; j++)
                key[j] = bench_lookup_key(k + j, n);
            CHECK(mms_index_find_many(ix, key, m, at, &found));
            for (size_t j = 0; j < m; j++)
                sum += ((const struct bench_rec *)mms_table_get(tb, at[j]))->b;
        }
        t = bench_now() - t;
    } else {
        if (flags != MMS_INDEX_ORDERED)
            bench_unsupported("a hash index has no order");
        mms_cursor *c;
        const bool cover = ordered_covering(variant);
        CHECK(mms_cursor_open(ix, &c));
        ops = BENCH_RANGES;
        t = bench_now();
        for (uint64_t j = 0; j < ops; j++) {
            uint64_t key = bench_range_start(j, n), at;
            int r = mms_cursor_seek(c, MMS_SEEK_GE, &key, &at, NULL);
            for (unsigned m = 0; m < BENCH_RANGE_LEN && r == 0; m++) {
                uint32_t b;
                if (cover)
                    CHECK(mms_cursor_covered(c, &b));
                else
                    b = ((const struct bench_rec *)mms_table_get(tb, at))->b;
                sum += b;
                if (m + 1 < BENCH_RANGE_LEN)
                    r = mms_cursor_next(c, &at, NULL);
            }
            if (r)
                CHECK(r);
        }
        t = bench_now() - t;
        mms_cursor_close(c);
    }
    mms_read_end(s);
    CHECK(mms_close(s));
    answer_u64(ans, sum);
    bench_result("mmstore", variant, w, n, ops, t, ans);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        BENCH_DIE("usage: bench_mmstore prepare|run WORKLOAD N DIR [VARIANT]");
    const char *phase = argv[1], *w = argv[2], *dir = argv[4];
    uint64_t n = strtoull(argv[3], NULL, 10);
    if (argc > 5)
        variant = argv[5];
    int prep = strcmp(phase, "prepare") == 0;
    char ans[64] = "-";
    if (strcmp(w, "keyget") == 0 || strcmp(w, "range") == 0 || strcmp(w, "ixbuild") == 0 ||
        strcmp(w, "keycommit") == 0 || strcmp(w, "keybatch") == 0)
        return keyed(prep, w, n, dir, ans);

    if (strcmp(w, "open") == 0 || strcmp(w, "get") == 0 || strcmp(w, "scan") == 0 ||
        strcmp(w, "openscan") == 0) {
        if (prep) {
            build(dir, n);
            return 0;
        }
        double t = bench_now();
        mms_store *s = open_store(dir, MMS_RDONLY);
        mms_table *tb;
        CHECK(mms_table_find(s, "rec", &tb));
        CHECK(mms_read_begin(s));
        uint64_t ops = 1;
        if (strcmp(w, "open") == 0) {
            answer_u64(ans, ((const struct bench_rec *)mms_table_get(tb, bench_key(0, n)))->a);
            t = bench_now() - t;
        } else if (strcmp(w, "get") == 0) {
            ops = 10000000;
            uint64_t sum = 0;
            t = bench_now();
            for (uint64_t k = 0; k < ops; k++)
                sum += ((const struct bench_rec *)mms_table_get(tb, bench_key(k, n)))->a;
            t = bench_now() - t;
            answer_u64(ans, sum);
        } else {
            ops = n;
            uint64_t sum = 0, nbits;
            if (strcmp(w, "scan") == 0)
                t = bench_now();
            const struct bench_rec *r = mms_table_array(tb);
            const uint64_t *del = mms_table_deleted(tb, &nbits);
            uint64_t slots = mms_table_slots(tb);
            for (uint64_t i = 0; i < slots; i++)
                if (i >= nbits || !(del[i / 64] >> (i % 64) & 1))
                    sum += r[i].b;
            t = bench_now() - t;
            answer_u64(ans, sum);
        }
        mms_read_end(s);
        CHECK(mms_close(s));
        bench_result("mmstore", variant, w, n, ops, t, ans);
        return 0;
    }
    if (strcmp(w, "load") == 0) {
        if (prep)
            return 0;
        double t = build(dir, n);
        mms_store *s = open_store(dir, MMS_RDONLY);
        mms_table *tb;
        CHECK(mms_table_find(s, "rec", &tb));
        answer_u64(ans, checksum_a(tb));
        CHECK(mms_close(s));
        bench_result("mmstore", variant, w, n, n, t, ans);
        rmrf(dir);
        return 0;
    }
    if (strcmp(w, "commit") == 0) {
        if (prep) {
            build(dir, n);
            return 0;
        }
        mms_store *s = open_store(dir, 0);
        mms_table *tb;
        CHECK(mms_table_find(s, "rec", &tb));
        enum { TXNS = 10000 };
        double t = bench_now();
        for (uint64_t j = 0; j < TXNS; j++) {
            CHECK(mms_txn_begin(s, 0));
            ((struct bench_rec *)mms_table_get(tb, bench_key(j, n)))->a++;
            CHECK(mms_txn_commit(s));
        }
        t = bench_now() - t;
        answer_u64(ans, checksum_a(tb));
        CHECK(mms_close(s));
        bench_result("mmstore", variant, w, n, TXNS, t, ans);
        /* The next run starts from the prepared state again. */
        build(dir, n);
        return 0;
    }
    if (strcmp(w, "alloc") == 0) {
        if (prep)
            return 0;
        rmrf(dir);
        mms_store *s = open_store(dir, MMS_CREATE);
        enum { OBJS = 1000 };
        const int rounds = bench_alloc_rounds(n);
        static mms_ref refs[OBJS];
        uint64_t x = BENCH_SEED, allocs = 0;
        CHECK(mms_txn_begin(s, 0));
        double t = bench_now();
        for (int round = 0; round < rounds; round++) {
            for (int i = 0; i < OBJS; i++) {
                x = bench_mix(x);
                CHECK(mms_alloc(s, 16 + x % 241, &refs[i]));
                *(uint64_t *)mms_deref(s, refs[i]) = x;
                allocs++;
            }
            for (int i = 0; i < OBJS; i++)
                CHECK(mms_free(s, refs[i]));
        }
        t = bench_now() - t;
        CHECK(mms_txn_commit(s));
        CHECK(mms_close(s));
        answer_u64(ans, allocs);
        bench_result("mmstore", variant, w, n, allocs, t, ans);
        rmrf(dir);
        return 0;
    }
    if (strcmp(w, "commit_size") == 0) {
        if (!prep)
            commit_size(dir, n);
        return 0;
    }
    if (strcmp(w, "ipc") == 0) {
        if (!prep)
            ipc(dir, n);
        return 0;
    }
    bench_unsupported("unknown workload");
    return 3;
}

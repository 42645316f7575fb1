/*
 * table_bench -- a table of N 64-byte records against the same loops over
 * a malloc'd array (the physical limit).
 *
 *     table_bench DIR [N]       (N defaults to 10,000,000)
 *
 * Bulk append: fill N records (mmstore: mms_table_append_many into fresh
 * space, then commit, durable and NOSYNC). Scan: sum one field over all
 * records (mmstore: the table's array, as a C loop would use it; and with
 * a liveness check per record). Random get: N lookups at random indices
 * (mmstore: mms_table_get, and MMS_REC on refs). Each measurement is the
 * median of 5 runs (append: 3). Uses only the public API.
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rec {
    uint64_t id;
    double value;
    uint64_t key;
    uint32_t a, b;
    char tag[32];
};
_Static_assert(sizeof(struct rec) == 64, "64-byte records");

static const mms_field rec_fields[] = {
    MMS_F_U64(struct rec, id), MMS_F_F64(struct rec, value), MMS_F_U64(struct rec, key),
    MMS_F_U32(struct rec, a),  MMS_F_U32(struct rec, b),     MMS_F_CHARS(struct rec, tag),
};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void check(int r, const char *what)
{
    if (r) {
        fprintf(stderr, "table_bench: %s: %s (%s)\n", what, mms_strerror(r), mms_errdetail());
        exit(1);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static void fill(struct rec *r, uint64_t first, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        struct rec *x = &r[i];
        uint64_t k = first + i;
        x->id = k;
        x->value = (double)(k % 1000) * 0.5;
        x->key = k * 2654435761u;
        x->a = (uint32_t)k;
        x->b = (uint32_t)(k >> 3);
    }
}

static volatile double sink_d;
static volatile uint64_t sink_u;

static double scan(const struct rec *r, uint64_t n)
{
    double t = now_s(), sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += r[i].value;
    sink_d = sum;
    return now_s() - t;
}

/* A scan that skips deleted records, the way the header suggests. */
static double scan_live(const mms_table *t, const struct rec *r, uint64_t n)
{
    double t0 = now_s(), sum = 0;
    uint64_t nbits;
    const uint64_t *del = mms_table_deleted(t, &nbits);
    for (uint64_t i = 0; i < n; i++)
        if (i >= nbits || !(del[i / 64] >> (i % 64) & 1))
            sum += r[i].value;
    sink_d = sum;
    return now_s() - t0;
}

static double get_array(const struct rec *r, const uint64_t *idx, uint64_t n)
{
    double t = now_s();
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += r[idx[i]].key;
    sink_u = sum;
    return now_s() - t;
}

static double get_table(const mms_table *t, const uint64_t *idx, uint64_t n)
{
    double t0 = now_s();
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += ((const struct rec *)mms_table_get(t, idx[i]))->key;
    sink_u = sum;
    return now_s() - t0;
}

static double get_ref(const mms_store *s, const mms_ref *refs, uint64_t n)
{
    double t0 = now_s();
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += MMS_REC(s, const struct rec, refs[i])->key;
    sink_u = sum;
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: table_bench DIR [N]\n");
        return 2;
    }
    const char *dir = argv[1];
    uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000;
    enum { RUNS = 5, ARUNS = 3 };
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    printf("# %llu records of %zu bytes; medians of %d runs (append %d)\n", (unsigned long long)n,
           sizeof(struct rec), RUNS, ARUNS);

    /* Random indices, the same for both. */
    uint64_t *idx = malloc(n * sizeof *idx), x = 88172645463325252u;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        idx[i] = x % n;
    }

    /* The limit: a malloc'd array. */
    double ta[ARUNS], ts[RUNS], tg[RUNS];
    struct rec *m = NULL;
    for (int k = 0; k < ARUNS; k++) {
        free(m);
        double t = now_s();
        m = malloc(n * sizeof *m);
        memset(m, 0, n * sizeof *m);
        fill(m, 0, n);
        ta[k] = now_s() - t;
    }
    for (int k = 0; k < RUNS; k++)
        ts[k] = scan(m, n);
    for (int k = 0; k < RUNS; k++)
        tg[k] = get_array(m, idx, n);
    double m_append = median(ta, ARUNS), m_scan = median(ts, RUNS), m_get = median(tg, RUNS);
    free(m);

    /* mmstore. */
    double tad[ARUNS], tan[ARUNS], tfill[ARUNS];
    for (int k = 0; k < 2 * ARUNS; k++) {
        int nosync = k >= ARUNS;
        if (system(cmd) != 0)
            return 1;
        mms_options o;
        mms_options_init(&o);
        o.flags = MMS_CREATE | (nosync ? MMS_NOSYNC : 0);
        mms_store *s;
        check(mms_open(dir, &o, &s), "open");
        double t = now_s();
        mms_table *tb;
        check(mms_txn_begin(s, 0), "begin");
        check(mms_table_open(s, "rec", &rec_schema, MMS_TABLE_CREATE, &tb), "table");
        uint64_t first;
        void *where;
        check(mms_table_append_many(tb, n, &first, &where), "append_many");
        fill(where, first, n);
        double tf = now_s() - t;
        check(mms_txn_commit(s), "commit");
        (nosync ? tan : tad)[k % ARUNS] = now_s() - t;
        if (!nosync)
            tfill[k] = tf;
        check(mms_close(s), "close");
    }
    double s_fill = median(tfill, ARUNS), s_dur = median(tad, ARUNS), s_nos = median(tan, ARUNS);

    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    mms_store *s;
    check(mms_open(dir, &o, &s), "open");
    mms_table *tb;
    check(mms_table_find(s, "rec", &tb), "find");
    check(mms_read_begin(s), "read begin");
    const struct rec *arr = mms_table_array(tb);
    for (int k = 0; k < RUNS; k++)
        ts[k] = scan(arr, n);
    double s_scan = median(ts, RUNS);
    for (int k = 0; k < RUNS; k++)
        ts[k] = scan_live(tb, arr, n);
    double s_scan_live = median(ts, RUNS);
    for (int k = 0; k < RUNS; k++)
        tg[k] = get_table(tb, idx, n);
    double s_get = median(tg, RUNS);
    mms_ref *refs = malloc(n * sizeof *refs);
    for (uint64_t i = 0; i < n; i++)
        refs[i] = mms_table_ref(tb, idx[i]);
    for (int k = 0; k < RUNS; k++)
        tg[k] = get_ref(s, refs, n);
    double s_ref = median(tg, RUNS);
    mms_read_end(s);
    check(mms_close(s), "close");
    free(refs);
    free(idx);
    if (system(cmd) != 0)
        return 1;

    double M = (double)n / 1e6;
    printf("%-44s %12s %12s %8s\n", "workload", "mmstore", "malloc", "ratio");
    printf("%-44s %9.1f M/s %9.1f M/s %7.2fx\n", "bulk append (fill in place, no commit)",
           M / s_fill, M / m_append, s_fill / m_append);
    printf("%-44s %9.1f M/s %12s\n", "bulk append + durable commit", M / s_dur, "-");
    printf("%-44s %9.1f M/s %12s\n", "bulk append + NOSYNC commit", M / s_nos, "-");
    printf("%-44s %9.1f M/s %9.1f M/s %7.2fx\n", "scan one field (array loop)", M / s_scan,
           M / m_scan, s_scan / m_scan);
    printf("%-44s %9.1f M/s %9.1f M/s %7.2fx\n", "scan one field, skipping deleted records",
           M / s_scan_live, M / m_scan, s_scan_live / m_scan);
    printf("%-44s %9.1f ns %11.1f ns %7.2fx\n", "random get (mms_table_get)", s_get / n * 1e9,
           m_get / n * 1e9, s_get / m_get);
    printf("%-44s %9.1f ns %11.1f ns %7.2fx\n", "random get (MMS_REC on a ref)", s_ref / n * 1e9,
           m_get / n * 1e9, s_ref / m_get);
    return 0;
}

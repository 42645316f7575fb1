/*
 * sys_array -- the physical limits (see bench/README.md):
 *   variant malloc: the same loops over a malloc'd array (get, scan, load),
 *                   glibc malloc/free (alloc);
 *   variant flat:   open = read a flat binary file of the records with fread;
 *   variant csv:    open = parse the records from a CSV file.
 * Nothing here is durable or shared; it is what the hardware can do.
 */
#define _GNU_SOURCE
#include "common.h"

#include <inttypes.h>
#include <sys/mman.h>

static const char *variant = "malloc";

static struct bench_rec *make_all(uint64_t n)
{
    struct bench_rec *r = malloc(n * sizeof *r);
    if (!r)
        BENCH_DIE("array: out of memory");
    for (uint64_t i = 0; i < n; i++)
        bench_make(&r[i], i);
    return r;
}

static void path_of(char *buf, size_t cap, const char *dir, const char *file)
{
    snprintf(buf, cap, "%s/%s", dir, file);
}

static void prepare_files(const char *dir, uint64_t n)
{
    char cmd[4200], p[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        BENCH_DIE("cannot make %s", dir);
    struct bench_rec r;
    if (strcmp(variant, "flat") == 0) {
        path_of(p, sizeof p, dir, "recs.bin");
        FILE *f = fopen(p, "wb");
        if (!f)
            BENCH_DIE("cannot write %s", p);
        for (uint64_t i = 0; i < n; i++) {
            bench_make(&r, i);
            fwrite(&r, sizeof r, 1, f);
        }
        if (fclose(f))
            BENCH_DIE("cannot write %s", p);
    } else {
        path_of(p, sizeof p, dir, "recs.csv");
        FILE *f = fopen(p, "w");
        if (!f)
            BENCH_DIE("cannot write %s", p);
        fprintf(f, "key,a,v,b,c,tag\n");
        for (uint64_t i = 0; i < n; i++) {
            bench_make(&r, i);
            fprintf(f, "%" PRIu64 ",%" PRIu64 ",%.17g,%" PRIu32 ",%" PRIu32 ",%s\n", r.key, r.a,
                    r.v, r.b, r.c, r.tag);
        }
        if (fclose(f))
            BENCH_DIE("cannot write %s", p);
    }
}

/* Open by reading every record into memory, then answer. */
static uint64_t open_read(const char *dir, uint64_t n)
{
    char p[4200];
    struct bench_rec *all = malloc(n * sizeof *all);
    if (!all)
        BENCH_DIE("array: out of memory");
    if (strcmp(variant, "flat") == 0) {
        path_of(p, sizeof p, dir, "recs.bin");
        FILE *f = fopen(p, "rb");
        if (!f || fread(all, sizeof *all, n, f) != n)
            BENCH_DIE("cannot read %s", p);
        fclose(f);
    } else {
        path_of(p, sizeof p, dir, "recs.csv");
        FILE *f = fopen(p, "r");
        if (!f)
            BENCH_DIE("cannot read %s", p);
        char line[512];
        if (!fgets(line, sizeof line, f))
            BENCH_DIE("empty %s", p);
        for (uint64_t i = 0; i < n; i++) {
            if (!fgets(line, sizeof line, f))
                BENCH_DIE("short %s", p);
            struct bench_rec *r = &all[i];
            memset(r, 0, sizeof *r);
            char *e;
            r->key = strtoull(line, &e, 10);
            r->a = strtoull(e + 1, &e, 10);
            r->v = strtod(e + 1, &e);
            r->b = (uint32_t)strtoul(e + 1, &e, 10);
            r->c = (uint32_t)strtoul(e + 1, &e, 10);
            size_t len = strcspn(e + 1, "\n");
            memcpy(r->tag, e + 1, len < sizeof r->tag ? len : sizeof r->tag - 1);
        }
        fclose(f);
    }
    uint64_t a = all[bench_key(0, n)].a;
    free(all);
    return a;
}

/* The limit for a lookup by key: records in a malloc'd array and an
 * open-addressing hash table (linear probing) of (key, index) pairs in
 * memory. keyget: probe, then read the record; ixbuild: filling the table.
 * Variant cover: the limit for a covering index, slots of (key, index, b)
 * -- 24 bytes, as mmstore's covering slots -- and a get that reads b from
 * the slot, not the record.
 *
 * Like with like: the table has as many slots as mmstore's hash index of N
 * keys (src/index.c hash_slots_for: the least power of 2 >= 64 whose 3/4
 * holds N + 1; 2^24 slots, 0.60 full, for 10^7) and is advised
 * MADV_HUGEPAGE, as a freshly built index is held in 2 MiB folios. Before
 * 2026-12-06 it was half full at most (2^25 slots, 0.30 full, for 10^7) in
 * 4 KiB pages: at 0.60 a get finds its key in the home slot 70% of the
 * time, not 85%, and reads 1.53 cache lines, not 1.33
 * (bench/results/index.md, "Like with like"). */
static int keyed(const char *w, uint64_t n)
{
    if (strcmp(w, "keyget") != 0 && strcmp(w, "ixbuild") != 0)
        bench_unsupported("not measured for the in-memory hash table");
    struct bench_rec *r = make_all(n);
    uint64_t ns = 64;
    while (ns * 3 / 4 < n + 1)
        ns *= 2;
    const int cover = strcmp(variant, "cover") == 0;
    const uint64_t W = cover ? 3 : 2; /* words of a slot: key, index + 1[, b] */
    const size_t huge = (size_t)2 << 20, bytes = (size_t)(ns * W * 8);
    char *map = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        BENCH_DIE("out of memory");
    uint64_t *slot = (uint64_t *)(void *)(map + (huge - (uintptr_t)map % huge) % huge);
    madvise(slot, bytes, MADV_HUGEPAGE); /* a hint: zeroed pages either way */
    double t = bench_now();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t h = bench_mix(r[i].a) & (ns - 1);
        while (slot[h * W + 1])
            h = (h + 1) & (ns - 1);
        slot[h * W] = r[i].a;
        slot[h * W + 1] = i + 1;
        if (cover)
            slot[h * W + 2] = r[i].b;
    }
    t = bench_now() - t;
    uint64_t sum = 0, ops = n;
    char ans[32];
    if (strcmp(w, "keyget") == 0) {
        ops = BENCH_KEYGETS;
        t = bench_now();
        for (uint64_t k = 0; k < ops && cover; k++) {
            uint64_t key = bench_lookup_key(k, n), h = bench_mix(key) & (ns - 1);
            while (slot[h * 3] != key || !slot[h * 3 + 1])
                h = (h + 1) & (ns - 1);
            sum += slot[h * 3 + 2];
        }
        for (uint64_t k = 0; k < ops && !cover; k++) {
            uint64_t key = bench_lookup_key(k, n), h = bench_mix(key) & (ns - 1);
            while (slot[h * 2] != key || !slot[h * 2 + 1])
                h = (h + 1) & (ns - 1);
            sum += r[slot[h * 2 + 1] - 1].b;
        }
        t = bench_now() - t;
    } else {
        sum = n;
    }
    snprintf(ans, sizeof ans, "%" PRIu64, sum);
    bench_result("array", variant, w, n, ops, t, ans);
    munmap(map, bytes + huge);
    free(r);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        BENCH_DIE("usage: bench_array prepare|run WORKLOAD N DIR [VARIANT]");
    const char *phase = argv[1], *w = argv[2], *dir = argv[4];
    uint64_t n = strtoull(argv[3], NULL, 10);
    if (argc > 5)
        variant = argv[5];
    int prep = strcmp(phase, "prepare") == 0;
    char ans[64];

    if (strcmp(w, "open") == 0) {
        if (strcmp(variant, "flat") != 0 && strcmp(variant, "csv") != 0)
            bench_unsupported("open: use variant flat or csv");
        if (prep) {
            prepare_files(dir, n);
            return 0;
        }
        double t = bench_now();
        uint64_t a = open_read(dir, n);
        t = bench_now() - t;
        snprintf(ans, sizeof ans, "%" PRIu64, a);
        bench_result("array", variant, w, n, 1, t, ans);
        return 0;
    }
    if (prep)
        return 0;
    if (strcmp(w, "keyget") == 0 || strcmp(w, "range") == 0 || strcmp(w, "ixbuild") == 0 ||
        strcmp(w, "keycommit") == 0)
        return keyed(w, n);
    if (strcmp(w, "get") == 0 || strcmp(w, "scan") == 0) {
        struct bench_rec *r = make_all(n);
        uint64_t sum = 0, ops;
        double t = bench_now();
        if (strcmp(w, "get") == 0) {
            ops = 10000000;
            for (uint64_t k = 0; k < ops; k++)
                sum += r[bench_key(k, n)].a;
        } else {
            ops = n;
            for (uint64_t i = 0; i < n; i++)
                sum += r[i].b;
        }
        t = bench_now() - t;
        free(r);
        snprintf(ans, sizeof ans, "%" PRIu64, sum);
        bench_result("array", variant, w, n, ops, t, ans);
        return 0;
    }
    if (strcmp(w, "load") == 0) {
        double t = bench_now();
        struct bench_rec *r = make_all(n);
        t = bench_now() - t;
        uint64_t sum = 0;
        for (uint64_t i = 0; i < n; i++)
            sum += r[i].a;
        free(r);
        snprintf(ans, sizeof ans, "%" PRIu64, sum);
        bench_result("array", variant, w, n, n, t, ans);
        return 0;
    }
    if (strcmp(w, "alloc") == 0) {
        enum { OBJS = 1000 };
        const int rounds = bench_alloc_rounds(n);
        static void *p[OBJS];
        uint64_t x = BENCH_SEED, allocs = 0;
        double t = bench_now();
        for (int round = 0; round < rounds; round++) {
            for (int i = 0; i < OBJS; i++) {
                x = bench_mix(x);
                p[i] = malloc(16 + x % 241);
                if (!p[i])
                    BENCH_DIE("malloc");
                *(uint64_t *)p[i] = x;
                allocs++;
            }
            for (int i = 0; i < OBJS; i++)
                free(p[i]);
        }
        t = bench_now() - t;
        snprintf(ans, sizeof ans, "%" PRIu64, allocs);
        bench_result("array", "glibc", w, n, allocs, t, ans);
        return 0;
    }
    bench_unsupported("no such workload for a malloc'd array");
    return 3;
}

/*
 * common.h -- the data set and helpers every benchmark harness shares.
 *
 * Record i (0 <= i < N) is a pure function of i and the seed, so every
 * system builds exactly the same data and computes the same answers.
 * C and C++.
 */
#ifndef MMS_BENCH_COMMON_H
#define MMS_BENCH_COMMON_H

#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_SEED UINT64_C(0x6d6d73746f726521)

struct bench_rec {
    uint64_t key;  /* i */
    uint64_t a;    /* mix(i) */
    double v;      /* (a % 1000000) / 100.0 */
    uint32_t b, c; /* low and high halves of a */
    char tag[32];  /* "r<i>", NUL-padded */
};
#ifdef __cplusplus
static_assert(sizeof(struct bench_rec) == 64, "64-byte records");
#else
_Static_assert(sizeof(struct bench_rec) == 64, "64-byte records");
#endif

static inline uint64_t bench_mix(uint64_t x)
{
    uint64_t z = x + UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static inline void bench_make(struct bench_rec *r, uint64_t i)
{
    memset(r, 0, sizeof *r);
    r->key = i;
    r->a = bench_mix(BENCH_SEED ^ i);
    r->v = (double)(r->a % 1000000) / 100.0;
    r->b = (uint32_t)r->a;
    r->c = (uint32_t)(r->a >> 32);
    snprintf(r->tag, sizeof r->tag, "r%llu", (unsigned long long)i);
}

/* The alloc workload's rounds (of 1000 allocations, then 1000 frees): N,
 * or 1000 when N is 0 (the full run; bench-quick passes a few). */
static inline int bench_alloc_rounds(uint64_t n)
{
    return n ? (int)n : 1000;
}

/* The k-th key of the random-lookup stream over N records. */
static inline uint64_t bench_key(uint64_t k, uint64_t n)
{
    return bench_mix(BENCH_SEED + 0x1000 + k) % n;
}

/* Keyed workloads (keyget, range, ixbuild, keycommit): record i is found by
 * its field a, a random 64-bit key (bench_make), not by its position. */
#define BENCH_KEYGETS 1000000u /* lookups per keyget run (10^6: SQLite takes minutes for 10^7) */
#define BENCH_RANGES 2000u      /* range scans per range run ... */
#define BENCH_RANGE_LEN 1000u   /* ... of this many consecutive keys */
#define BENCH_KEYCOMMITS 2000u  /* commits per keycommit run */

static inline uint64_t bench_a(uint64_t i)
{
    return bench_mix(BENCH_SEED ^ i);
}

/* The key of the k-th lookup: the a of a pseudo-random record. */
static inline uint64_t bench_lookup_key(uint64_t k, uint64_t n)
{
    return bench_a(bench_key(k, n));
}

/* Where the j-th range scan starts: the a of a pseudo-random record whose a
 * is below 2^62, so that the keys after it stay below 2^63, where SQLite's
 * signed integer order agrees with the unsigned order of the others. */
static inline uint64_t bench_range_start(uint64_t j, uint64_t n)
{
    for (uint64_t k = 5000000000u + j * 64;; k++) {
        uint64_t a = bench_a(bench_key(k, n));
        if (a < (UINT64_C(1) << 62))
            return a;
    }
}

/* The new key of the j-th keycommit: a fresh pseudo-random one (that it
 * collides with one of 10^7 keys has a chance of 2^-40 per commit). */
static inline uint64_t bench_new_key(uint64_t j)
{
    return bench_mix(BENCH_SEED + UINT64_C(0xabcdef) + j);
}

/* BENCH_WARM=1 (bench/keyed.sh's "WORKLOAD:warm"): before the timed
 * lookups, read one byte of every page of the store's files as mapped, so
 * that the lookups pay no first-touch faults -- the state the in-memory
 * hash table is in after building itself. Without it the timed process
 * starts cold: pages in the page cache, none yet touched by it. */
static inline int bench_warm(void)
{
    const char *w = getenv("BENCH_WARM");
    return w && *w && strcmp(w, "0") != 0;
}

static inline void bench_touch(const void *p, size_t len)
{
    for (size_t off = 0; off < len; off += 4096)
        (void)*((const volatile char *)p + off);
}

static inline int bench_cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static inline int bench_cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The median of n timings (sorts them). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return v[n / 2];
}

/* One result line: what the driver (bench/run.py) reads. */
static inline void bench_result(const char *system, const char *variant, const char *workload,
                                uint64_t n, uint64_t ops, double seconds, const char *answer)
{
    printf("{\"system\": \"%s\", \"variant\": \"%s\", \"workload\": \"%s\", \"n\": %llu, "
           "\"ops\": %llu, \"seconds\": %.9f, \"answer\": \"%s\"}\n",
           system, variant, workload, (unsigned long long)n, (unsigned long long)ops, seconds,
           answer);
    fflush(stdout);
}

/* A workload this system cannot do: exit 3 with the reason. */
static inline void bench_unsupported(const char *why)
{
    printf("{\"unsupported\": \"%s\"}\n", why);
    fflush(stdout);
    exit(3);
}

#define BENCH_DIE(...)                                                         \
    do {                                                                       \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n");                                                 \
        exit(1);                                                               \
    } while (0)

#endif

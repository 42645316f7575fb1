/*
 * issue14_scan.c -- the measurements behind bench/results/issue14.md, "Branch
 * span": what a PAGEMAP_SCAN with the flags of txn.c costs. Raw kernel
 * calls, not the library: kept as a record, not built.
 *
 *   span FILE LEN_MIB  a private file mapping of LEN MiB at a 1 GiB-aligned
 *                      base: populated; all dropped but one written page;
 *                      all but the first 2 MiB mapped anew; the first 2 MiB
 *                      alone; later whole spans mapped anew
 *   gap FILE GAP_GIB   two 16 MiB private mappings GAP GiB apart in one
 *                      PROT_NONE reservation (as region 0 and the first
 *                      table are), a page written in each: two scans (one
 *                      per region) against one over both and the gap
 *
 *     cc -O2 -o scan issue14_scan.c && ./scan span /tmp/f 1024
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct page_region { uint64_t start, end, categories; };
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN (1u << 1)
#define PAGE_IS_FILE (1u << 2)
#define PAGE_IS_PRESENT (1u << 3)
#define PAGE_IS_SWAPPED (1u << 4)
#define G ((uint64_t)1 << 30)
#define M2 ((uint64_t)2 << 20)

static int pfd;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static long scan_once(char *a, char *e)
{
    struct page_region vec[64];
    struct pm_scan_arg arg = {.size = sizeof arg, .start = (uint64_t)a, .end = (uint64_t)e,
                              .vec = (uint64_t)vec, .vec_len = 64,
                              .category_inverted = PAGE_IS_FILE,
                              .category_mask = PAGE_IS_FILE | PAGE_IS_WRITTEN,
                              .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                              .return_mask = PAGE_IS_PRESENT};
    long n = ioctl(pfd, PAGEMAP_SCAN, &arg);
    if (n < 0) {
        perror("PAGEMAP_SCAN");
        exit(1);
    }
    return n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of reps scans of [a, a + len) (or of a + b when b: two ranges), in us. */
static double scan_us(char *a, uint64_t len, char *b, int reps)
{
    double t[301];
    for (int r = 0; r < reps; r++) {
        double t0 = now_ns();
        scan_once(a, a + len);
        if (b)
            scan_once(b, b + len);
        t[r] = now_ns() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp);
    return t[reps / 2] / 1e3;
}

static void span(int fd, uint64_t len)
{
    char *res = mmap(0, len + 2 * G, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    char *b = (char *)(((uintptr_t)res + G - 1) & ~(uintptr_t)(G - 1));
    mmap(b, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    madvise(b, len, MADV_NOHUGEPAGE);
    volatile char sink = 0;
    for (uint64_t i = 0; i < len; i += 4096)
        sink += b[i];
    b[64] = 1;
    printf("populated: %.1f us\n", scan_us(b, len, NULL, 21));
    madvise(b + 4096, len - 4096, MADV_DONTNEED);
    printf("dropped but the written page: %.1f us\n", scan_us(b, len, NULL, 201));
    mmap(b + M2, len - M2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, M2);
    printf("all but the first 2 MiB mapped anew: %.1f us\n", scan_us(b, len, NULL, 201));
    printf("the first 2 MiB alone: %.1f us\n", scan_us(b, M2, NULL, 201));
    int n = 0;
    for (uint64_t a = G; a + G <= len; a += G, n++)
        mmap(b + a, G, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, a);
    printf("and %d later whole spans mapped anew: %.1f us\n", n, scan_us(b, len, NULL, 201));
}

static void gap(int fd, uint64_t gap)
{
    const uint64_t len = 16 << 20;
    char *b0 = mmap(0, gap + 64 * G, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    char *b1 = b0 + gap;
    mmap(b0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    mmap(b1, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    b0[0] = 1;
    b1[8192] = 1;
    double two = scan_us(b0, len, b1, 301);
    double one = scan_us(b0, (uint64_t)(b1 + len - b0), NULL, 301);
    printf("gap %llu GiB: two scans %.2f us, one scan over the gap %.2f us\n",
           (unsigned long long)(gap / G), two, one);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: scan span|gap FILE N\n"), 2;
    uint64_t n = strtoull(argv[3], NULL, 10);
    int fd = open(argv[2], O_RDWR | O_CREAT, 0644);
    pfd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0 || pfd < 0 || ftruncate(fd, strcmp(argv[1], "gap") ? n << 20 : 16 << 20))
        return perror("open"), 1;
    if (strcmp(argv[1], "gap") == 0)
        gap(fd, n * G);
    else
        span(fd, n << 20);
    return 0;
}

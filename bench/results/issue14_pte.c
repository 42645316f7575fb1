/*
 * issue14_pte.c -- the measurements behind bench/results/issue14.md, "What
 * a page-table change costs here" (issue 14 item 2): what each kind of page
 * fault and page-table change costs on the machine, against a system call.
 * A small NOSYNC commit to a page not written since the last commit needs
 * at least one of them; LMDB's commit needs none. Raw kernel calls, not the
 * library: kept as a record, not built.
 *
 *     cc -O2 -o pte issue14_pte.c && ./pte /tmp/pte.file
 *
 * FILE is made (24 MiB) and read once, so that its pages are cached.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Linux 6.7's PAGEMAP_SCAN and userfaultfd's asynchronous write protection
 * (Debian 12's headers predate them). */
struct page_region {
    uint64_t start, end, categories;
};
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
        category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING (1u << 0)
#define PAGE_IS_WRITTEN (1u << 1)
struct uffdio_api {
    uint64_t api, features, ioctls;
};
struct uffdio_register {
    uint64_t start, len, mode, ioctls;
};
#define UFFD_API 0xAA
#define UFFDIO_API _IOWR(0xAA, 0x3F, struct uffdio_api)
#define UFFDIO_REGISTER _IOWR(0xAA, 0x00, struct uffdio_register)
#define UFFDIO_REGISTER_MODE_WP (1ull << 1)
#define UFFD_FEATURE_WP_UNPOPULATED (1ull << 13)
#define UFFD_FEATURE_WP_ASYNC (1ull << 15)

#define PG 4096L
#define LEN (24L << 20)
#define N 1500

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, LEN) != 0) {
        perror(argv[1]);
        return 1;
    }
    char *buf = calloc(1, 1 << 20);
    for (long o = 0; o < LEN; o += 1 << 20)
        if (pwrite(fd, buf, 1 << 20, o) != 1 << 20)
            return 1;
    fsync(fd);
    volatile char sink = 0;
    double t, a, b;

    t = now();
    for (int i = 0; i < 10000; i++)
        syscall(SYS_getpid);
    printf("system call (getpid)                          %7.0f ns\n", (now() - t) / 10000);

    char *anon = mmap(0, N * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    t = now();
    for (int i = 0; i < N; i++)
        anon[i * PG] = 1;
    printf("anonymous write fault                         %7.0f ns\n", (now() - t) / N);

    char *sh = mmap(0, LEN, PROT_READ, MAP_SHARED, fd, 0);
    for (long i = 0; i < LEN / PG; i++) /* cached, mapped once, then unmapped */
        sink += sh[i * PG];
    munmap(sh, LEN);
    sh = mmap(0, LEN, PROT_READ, MAP_SHARED, fd, 0);
    t = now();
    for (int i = 0; i < N; i += 16)
        sink += sh[i * PG];
    printf("read fault, cached file page (16 mapped)      %7.0f ns\n", (now() - t) / (N / 16));

    char *r = mmap(0, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    for (int i = 0; i < N; i++)
        sink += r[i * PG];
    t = now();
    for (int i = 0; i < N; i++)
        r[i * PG] = 1;
    printf("copy-on-write fault of a mapped file page     %7.0f ns\n", (now() - t) / N);

    a = b = 0;
    for (int i = 0; i < N; i++) {
        t = now();
        madvise(r + i * PG, PG, MADV_DONTNEED);
        a += now() - t;
        t = now();
        r[i * PG] = 2; /* the page freed just before comes back */
        b += now() - t;
    }
    printf("MADV_DONTNEED of one page                     %7.0f ns\n", a / N);
    printf("copy-on-write fault, the page recycled        %7.0f ns\n", b / N);

    a = 0;
    for (int i = 0; i < N; i++) {
        t = now();
        mprotect(r + i * PG, PG, PROT_READ);
        mprotect(r + i * PG, PG, PROT_READ | PROT_WRITE);
        a += now() - t;
    }
    printf("mprotect of one page (each way)               %7.0f ns\n", a / N / 2);

    /* Asynchronous write protection, as txn.c uses it for held pages. */
    char *w = mmap(0, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {UFFD_API, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, 0};
    struct uffdio_register reg = {(uint64_t)w, LEN, UFFDIO_REGISTER_MODE_WP, 0};
    int pm = open("/proc/self/pagemap", O_RDONLY);
    if (u < 0 || ioctl(u, UFFDIO_API, &api) != 0 || ioctl(u, UFFDIO_REGISTER, &reg) != 0 ||
        pm < 0) {
        printf("no asynchronous userfaultfd write protection here\n");
        return 0;
    }
    for (int i = 0; i < N; i++)
        w[i * PG] = 1;
    struct page_region vec[64];
    struct pm_scan_arg arg = {.size = sizeof arg, .flags = PM_SCAN_WP_MATCHING,
                              .start = (uint64_t)w, .end = (uint64_t)w + LEN,
                              .vec = (uint64_t)vec, .vec_len = 64,
                              .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN};
    ioctl(pm, PAGEMAP_SCAN, &arg); /* every page protected */
    a = b = 0;
    int k = 0;
    for (int i = 0; i < N; i += 3, k++) {
        t = now();
        w[i * PG] = 2;
        a += now() - t;
        t = now();
        ioctl(pm, PAGEMAP_SCAN, &arg);
        b += now() - t;
    }
    printf("write-protect fault (userfaultfd, async)      %7.0f ns\n", a / k);
    printf("PAGEMAP_SCAN of %4ld MiB, 1 page re-protected %7.0f ns\n", LEN >> 20, b / k);
    arg.flags = 0;
    t = now();
    for (int i = 0; i < 100; i++)
        ioctl(pm, PAGEMAP_SCAN, &arg);
    printf("PAGEMAP_SCAN of %4ld MiB, nothing written     %7.0f ns\n", LEN >> 20, (now() - t) / 100);
    (void)sink;
    unlink(argv[1]);
    return 0;
}

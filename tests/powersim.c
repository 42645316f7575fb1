/*
 * powersim.c -- the power-loss simulation of powersim.h: durable images
 * kept beside a store, and cuts built from them.
 *
 * It hangs off the library's I/O hook (mms__os_io_hook) and never calls
 * the library: it runs inside the library's system calls, with its locks
 * held. Two threads of the library may make events (MMS_NOSYNC's
 * background syncer beside the application's): os.c calls the hook under
 * its io_lock, and `lock` here keeps psim_pause and the API from reading
 * or changing the state while a hook runs (a cut taken in the syncer is
 * whole before the test looks at the images). While paused, no cut is
 * taken, yet a sync of a store file still makes its durable image: the
 * syncer keeps syncing while the test checks images. Its own I/O goes straight to the kernel (an open and close of a
 * store file cannot drop the library's locks: they are open-file-
 * description locks). Any failure of its own is a broken test setup: it
 * aborts with a message.
 *
 * Side directory (work):
 *   shadow/f-<ino>-<btime>  the durable image of one file (inode, birth
 *                           time: inode numbers are reused): its size is
 *                           the durable size; missing = empty
 *   shadow/dir              the durable listing, "name ino btime" lines
 *   cuts/<pid>-<n>-v<k>/    one cut image: a store directory to open
 *   cuts/<pid>-<n>-v<k>.note what the test must check there, and where the
 *                           cut was taken
 */
#define _GNU_SOURCE 1
#include "powersim.h"

#include "internal.h" /* mms__os_io_hook and its events */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PG 4096u
#define SECTOR 512u
#define MAXF 64     /* files in a store directory */
#define NAMELEN 64

const char *const psim_kind_name[PSIM_NKIND] = {"write", "sync-call", "sync-file",
                                                 "sync-range", "sync-dir", "point"};

struct key {
    uint64_t ino, bt; /* inode number, birth time in ns (0 if the file system has none) */
};
struct ent {
    char name[NAMELEN];
    struct key k;
};
struct listing {
    int n;
    struct ent e[MAXF];
};

static struct {
    char store[PATH_MAX], shadow[PATH_MAX], cuts[PATH_MAX];
    uint64_t rng;
    psim_policy_fn policy;
    int paused, busy;
    uint64_t seq, ncuts, nimages;
    uint64_t sync_ns, cut_ns; /* time spent keeping durable images, and cutting */
} P;
/* Recursive: busy, under it, keeps the hook from entering itself. */
static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "powersim: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (errno %d: %s)\n", errno, strerror(errno));
    va_end(ap);
    abort();
}

/* snprintf into an array, dying if it does not fit. */
#define PATHF(buf, ...)                                                        \
    do {                                                                       \
        if (snprintf(buf, sizeof buf, __VA_ARGS__) >= (int)sizeof buf)         \
            die("path too long: %s", buf);                                     \
    } while (0)

static uint64_t rnd(void)
{
    uint64_t z = (P.rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* True with probability num/den. */
static int chance(unsigned num, unsigned den)
{
    return rnd() % den < num;
}

/* ------------------------------------------------------------------------
 * Files and keys
 * ------------------------------------------------------------------------ */
static int key_of(int dirfd, const char *path, int flags, struct key *k)
{
    struct statx sx;
    if (statx(dirfd, path, flags, STATX_INO | STATX_BTIME | STATX_TYPE, &sx) < 0)
        return -errno;
    if (!S_ISREG(sx.stx_mode) && !S_ISDIR(sx.stx_mode))
        return -EINVAL;
    k->ino = sx.stx_ino;
    k->bt = (sx.stx_mask & STATX_BTIME)
                ? (uint64_t)sx.stx_btime.tv_sec * 1000000000u + sx.stx_btime.tv_nsec
                : 0;
    return S_ISDIR(sx.stx_mode) ? 1 : 0;
}

static void shadow_path(char *out, size_t cap, struct key k)
{
    if (snprintf(out, cap, "%s/f-%llu-%llu", P.shadow, (unsigned long long)k.ino,
                 (unsigned long long)k.bt) >= (int)cap)
        die("path too long");
}

static uint64_t fd_size(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat");
    return (uint64_t)st.st_size;
}

static void write_at(int fd, const uint8_t *buf, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pwrite(fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("pwrite");
        buf += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
}

/* A file's bytes in memory: zeros past its size, to a page multiple. */
struct fbuf {
    uint8_t *p;
    uint64_t size, cap; /* the file's size; bytes allocated */
};

static const uint8_t zero_page[PG];

static uint64_t round_pg(uint64_t n)
{
    return (n + PG - 1) / PG * PG;
}

static void fbuf_reserve(struct fbuf *b, uint64_t need)
{
    need = round_pg(need);
    if (need <= b->cap)
        return;
    uint8_t *p = realloc(b->p, need);
    if (!p)
        die("realloc %llu", (unsigned long long)need);
    memset(p + b->cap, 0, need - b->cap);
    b->p = p;
    b->cap = need;
}

/* The whole file fd into b. */
static void fbuf_read(struct fbuf *b, int fd)
{
    uint64_t size = fd_size(fd), got = 0;
    fbuf_reserve(b, size);
    while (got < size) {
        ssize_t r = pread(fd, b->p + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("pread");
        if (r == 0)
            break; /* shrank meanwhile */
        got += (uint64_t)r;
    }
    if (round_pg(got) > got) /* an empty file may have no buffer yet (b->p NULL) */
        memset(b->p + got, 0, round_pg(got) - got);
    if (b->size > got) /* what an earlier, longer content left */
        memset(b->p + round_pg(got), 0, round_pg(b->size) - round_pg(got));
    b->size = got;
}

/* Page pg of b; zeros past its end. */
static const uint8_t *fpage(const struct fbuf *b, uint64_t pg)
{
    return pg * PG < b->size ? b->p + pg * PG : zero_page;
}

static int page_zero(const uint8_t *p)
{
    return memcmp(p, zero_page, PG) == 0;
}

/* ------------------------------------------------------------------------
 * Durable images: on disk in shadow/, cached in memory. shadow/gen counts
 * the updates of every process; a process whose count is behind (it
 * forked a writer that synced, say) reloads what it cached.
 * ------------------------------------------------------------------------ */
struct dimg {
    struct key k;
    struct fbuf b;
    uint8_t *nz; /* per page: not all zero */
    uint64_t nzcap;
    int used;
};

static struct {
    struct dimg d[4 * MAXF];
    uint64_t gen;
} DC;

static uint64_t gen_read(void)
{
    char p[PATH_MAX];
    PATHF(p, "%s/gen", P.shadow);
    uint64_t g = 0;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (pread(fd, &g, sizeof g, 0) != (ssize_t)sizeof g)
            g = 0;
        close(fd);
    }
    return g;
}

static void gen_bump(void)
{
    char p[PATH_MAX];
    PATHF(p, "%s/gen", P.shadow);
    uint64_t g = gen_read() + 1;
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        die("open %s", p);
    write_at(fd, (const uint8_t *)&g, sizeof g, 0);
    close(fd);
    DC.gen = g;
}

static void dimg_nz(struct dimg *d)
{
    uint64_t np = round_pg(d->b.size) / PG;
    if (np + 1 > d->nzcap) {
        free(d->nz);
        d->nzcap = np + 1;
        if (!(d->nz = malloc(d->nzcap)))
            die("malloc");
    }
    for (uint64_t pg = 0; pg < np; pg++)
        d->nz[pg] = !page_zero(fpage(&d->b, pg));
}

/* The durable image of k (empty if there is none). */
static struct dimg *dimg_get(struct key k)
{
    uint64_t g = gen_read();
    int n = (int)(sizeof DC.d / sizeof DC.d[0]);
    if (g != DC.gen) {
        for (int i = 0; i < n; i++)
            DC.d[i].used = 0;
        DC.gen = g;
    }
    struct dimg *free_slot = NULL;
    for (int i = 0; i < n; i++) {
        if (DC.d[i].used && DC.d[i].k.ino == k.ino && DC.d[i].k.bt == k.bt)
            return &DC.d[i];
        if (!DC.d[i].used && !free_slot)
            free_slot = &DC.d[i];
    }
    if (!free_slot) { /* many files came and went: start again */
        for (int i = 0; i < n; i++)
            DC.d[i].used = 0;
        free_slot = &DC.d[0];
    }
    struct dimg *d = free_slot;
    d->k = k;
    d->used = 1;
    char p[PATH_MAX];
    shadow_path(p, sizeof p, k);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fbuf_read(&d->b, fd);
        close(fd);
    } else {
        if (d->b.size)
            memset(d->b.p, 0, round_pg(d->b.size));
        d->b.size = 0;
    }
    dimg_nz(d);
    return d;
}

/* Make [from, to) of the file at src durable in the image of k; full: the
 * whole file and its size. */
static void shadow_update(const char *src, struct key k, uint64_t from, uint64_t to, int full)
{
    static struct fbuf cur;
    struct dimg *d = dimg_get(k);
    int sfd = open(src, O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        die("open %s", src);
    fbuf_read(&cur, sfd);
    close(sfd);
    char sp[PATH_MAX];
    shadow_path(sp, sizeof sp, k);
    int dfd = open(sp, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (dfd < 0)
        die("open %s", sp);
    uint64_t size, old = d->b.size;
    if (full) {
        from = 0;
        to = cur.size;
        size = cur.size;
    } else {
        from -= from % PG;
        if (to > cur.size)
            to = cur.size;
        size = to > old ? to : old;
    }
    fbuf_reserve(&d->b, size);
    for (uint64_t pg = from / PG; pg * PG < to; pg++) {
        uint64_t at = pg * PG, n = to - at < PG ? to - at : PG;
        if (memcmp(fpage(&cur, pg), fpage(&d->b, pg), n) != 0 || at + n > old) {
            write_at(dfd, fpage(&cur, pg), n, at);
            memcpy(d->b.p + at, fpage(&cur, pg), n);
        }
    }
    if (size < old) /* a shorter file now: nothing past its end */
        memset(d->b.p + size, 0, round_pg(old) - size);
    d->b.size = size;
    dimg_nz(d);
    if (ftruncate(dfd, (off_t)size) < 0)
        die("ftruncate %s", sp);
    close(dfd);
    gen_bump();
}

/* ------------------------------------------------------------------------
 * Listings
 * ------------------------------------------------------------------------ */
static void listing_current(struct listing *l)
{
    l->n = 0;
    DIR *d = opendir(P.store);
    if (!d)
        die("opendir %s", P.store);
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= NAMELEN)
            continue;
        struct key k;
        if (key_of(dirfd(d), de->d_name, AT_SYMLINK_NOFOLLOW, &k) != 0)
            continue; /* gone meanwhile, or not a regular file */
        if (l->n == MAXF)
            die("more than %d files in %s", MAXF, P.store);
        PATHF(l->e[l->n].name, "%s", de->d_name);
        l->e[l->n++].k = k;
    }
    closedir(d);
}

static void listing_durable(struct listing *l)
{
    char p[PATH_MAX];
    PATHF(p, "%s/dir", P.shadow);
    l->n = 0;
    FILE *f = fopen(p, "r");
    if (!f)
        die("fopen %s", p);
    char name[NAMELEN];
    unsigned long long ino, bt;
    while (l->n < MAXF && fscanf(f, "%63s %llu %llu", name, &ino, &bt) == 3) {
        PATHF(l->e[l->n].name, "%s", name);
        l->e[l->n++].k = (struct key){ino, bt};
    }
    fclose(f);
}

static void listing_save_durable(const struct listing *l)
{
    char p[PATH_MAX], t[PATH_MAX];
    PATHF(p, "%s/dir", P.shadow);
    PATHF(t, "%s/dir.tmp", P.shadow);
    FILE *f = fopen(t, "w");
    if (!f)
        die("fopen %s", t);
    for (int i = 0; i < l->n; i++)
        fprintf(f, "%s %llu %llu\n", l->e[i].name, (unsigned long long)l->e[i].k.ino,
                (unsigned long long)l->e[i].k.bt);
    if (fclose(f) != 0 || rename(t, p) != 0)
        die("write %s", p);
}

/* ------------------------------------------------------------------------
 * Which store file an fd or an address is
 * ------------------------------------------------------------------------ */
/* 1 and its name ("" for the directory itself) if fd is the store's. */
static int fd_name(int fd, char name[NAMELEN], int *is_dir)
{
    char link[64], path[PATH_MAX];
    PATHF(link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = 0;
    size_t sl = strlen(P.store);
    *is_dir = strcmp(path, P.store) == 0;
    if (*is_dir) {
        name[0] = 0;
        return 1;
    }
    if (strncmp(path, P.store, sl) != 0 || path[sl] != '/' || strchr(path + sl + 1, '/'))
        return 0;
    char *del = strstr(path + sl + 1, " (deleted)");
    if (del)
        *del = 0;
    if (strlen(path + sl + 1) >= NAMELEN)
        return 0;
    memcpy(name, path + sl + 1, strlen(path + sl + 1) + 1);
    return 1;
}

/* For each store file mapped in [addr, addr+len): fn(name, file offset,
 * length). Returns the number of pieces. */
static int range_files(const void *addr, uint64_t len,
                       void (*fn)(const char *name, uint64_t off, uint64_t n, void *ctx), void *ctx)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        die("fopen /proc/self/maps");
    uint64_t lo = (uint64_t)(uintptr_t)addr, hi = lo + len;
    size_t sl = strlen(P.store);
    char line[PATH_MAX + 256];
    int pieces = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long start, end, off;
        int pos = 0;
        if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &start, &end, &off, &pos) != 3 || !pos)
            continue;
        if (end <= lo || start >= hi)
            continue;
        char *path = line + pos;
        path[strcspn(path, "\n")] = 0;
        if (strncmp(path, P.store, sl) != 0 || path[sl] != '/')
            continue;
        char name[NAMELEN];
        PATHF(name, "%s", path + sl + 1);
        char *del = strstr(name, " (deleted)");
        if (del)
            continue; /* an unlinked file: its durability no longer matters */
        uint64_t a = start > lo ? start : lo, b = end < hi ? end : hi;
        fn(name, off + (a - start), b - a, ctx);
        pieces++;
    }
    fclose(f);
    return pieces;
}

struct first_piece {
    char name[NAMELEN];
    uint64_t off, len;
    int found;
};

static void note_first(const char *name, uint64_t off, uint64_t n, void *ctx)
{
    struct first_piece *fp = ctx;
    if (!fp->found) {
        PATHF(fp->name, "%s", name);
        fp->off = off;
        fp->len = n;
        fp->found = 1;
    }
}

static void sync_piece(const char *name, uint64_t off, uint64_t n, void *ctx)
{
    note_first(name, off, n, ctx);
    char path[PATH_MAX];
    PATHF(path, "%s/%s", P.store, name);
    struct key k;
    if (key_of(AT_FDCWD, path, 0, &k) != 0)
        return;
    shadow_update(path, k, off, off + n, 0);
}

/* ------------------------------------------------------------------------
 * Cuts
 * ------------------------------------------------------------------------ */
struct kfile {
    struct key k;
    char dname[NAMELEN], cname[NAMELEN]; /* durable and current name ("" = none) */
    int has_cur;                         /* the file exists now (by cname) */
    const struct dimg *D;                /* durable image */
    struct fbuf *C;                      /* current content */
    uint64_t npages;
    uint8_t *differs; /* per page: current differs from durable */
};

/* The durable image and current content of f (its j-th buffer). */
static void kfile_load(struct kfile *f, int j)
{
    static struct fbuf cur[2 * MAXF];
    f->D = dimg_get(f->k);
    f->C = &cur[j];
    f->C->size = 0;
    if (f->cname[0]) {
        char p[PATH_MAX];
        PATHF(p, "%s/%s", P.store, f->cname);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            f->has_cur = 1;
            fbuf_read(f->C, fd);
            close(fd);
        }
    }
    uint64_t top = f->D->b.size > f->C->size ? f->D->b.size : f->C->size;
    f->npages = round_pg(top) / PG;
    f->differs = calloc(f->npages + 1, 1);
    if (!f->differs)
        die("calloc");
    for (uint64_t pg = 0; f->has_cur && pg < f->npages; pg++)
        f->differs[pg] = memcmp(fpage(&f->D->b, pg), fpage(f->C, pg), PG) != 0;
}

static void kfile_free(struct kfile *f)
{
    free(f->differs);
}

/* Durable page pg is all zero. */
static int dzero(const struct kfile *f, uint64_t pg)
{
    return pg * PG >= f->D->b.size || !f->D->nz[pg];
}

enum { V_DURABLE, V_RANDOM, V_CURRENT };

static void write_lock(const char *dir, const char *name, const struct kfile *f, unsigned how)
{
    char p[PATH_MAX];
    PATHF(p, "%s/%s", dir, name);
    if (how % 4 == 0)
        return; /* absent */
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        die("open %s", p);
    if (how % 4 == 2) { /* garbage, the size of a real one */
        uint8_t g[PG];
        for (unsigned pg = 0; pg < 5; pg++) {
            for (unsigned i = 0; i < PG; i += 8) {
                uint64_t x = rnd();
                memcpy(g + i, &x, 8);
            }
            write_at(fd, g, PG, (uint64_t)pg * PG);
        }
    } else if (how % 4 == 3 && f->C->size) { /* what the page cache holds */
        write_at(fd, f->C->p, f->C->size, 0);
    } /* 1: empty */
    close(fd);
}

/* One file of a variant: durable pages, some current ones (pcur in 1000),
 * some of those torn (ptorn in 1000), the durable or the current size. */
static void write_file(const char *dir, const char *name, const struct kfile *f, int vk,
                       unsigned pcur, unsigned ptorn, unsigned *torn, unsigned *taken)
{
    char p[PATH_MAX];
    PATHF(p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        die("open %s", p);
    uint64_t size = f->D->b.size;
    if (f->has_cur && (vk == V_CURRENT || (vk == V_RANDOM && chance(1, 2))))
        size = f->C->size;
    uint64_t np = (size + PG - 1) / PG;
    /* Runs of nonzero pages are written with one call each. */
    enum { RUN = 64 };
    static uint8_t run[RUN * PG];
    uint64_t run_at = 0, run_n = 0;
    for (uint64_t pg = 0; pg <= np && pg <= f->npages; pg++) {
        uint8_t *buf = run + run_n * PG;
        int keep = 0;
        if (pg < np && pg < f->npages) {
            int use_cur =
                f->differs[pg] && (vk == V_CURRENT || (vk == V_RANDOM && chance(pcur, 1000)));
            if (use_cur || !dzero(f, pg)) {
                memcpy(buf, fpage(&f->D->b, pg), PG);
                if (use_cur) {
                    const uint8_t *cur = fpage(f->C, pg);
                    (*taken)++;
                    if (vk == V_RANDOM && chance(ptorn, 1000)) {
                        /* Torn: a random nonempty, non-full subset of the sectors. */
                        unsigned mask = 1 + (unsigned)(rnd() % 254);
                        for (unsigned sc = 0; sc < PG / SECTOR; sc++)
                            if (mask >> sc & 1)
                                memcpy(buf + sc * SECTOR, cur + sc * SECTOR, SECTOR);
                        (*torn)++;
                    } else {
                        memcpy(buf, cur, PG);
                    }
                }
                keep = !page_zero(buf);
            }
        }
        if (keep && run_n == 0)
            run_at = pg;
        if (keep && run_n + 1 < RUN) {
            run_n++;
            continue;
        }
        if (keep)
            run_n++;
        if (run_n)
            write_at(fd, run, run_n * PG, run_at * PG);
        run_n = 0;
    }
    if (ftruncate(fd, (off_t)size) < 0)
        die("ftruncate %s", p);
    close(fd);
}

static int name_taken(char names[][NAMELEN], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static void cut(const struct psim_event *ev, int nvar, const char *note)
{
    struct listing dur, cur;
    listing_durable(&dur);
    listing_current(&cur);
    static struct kfile f[2 * MAXF];
    int nf = 0;
    /* One kfile per inode, with its durable and current name. */
    for (int pass = 0; pass < 2; pass++) {
        const struct listing *l = pass ? &cur : &dur;
        for (int i = 0; i < l->n; i++) {
            int j;
            for (j = 0; j < nf; j++)
                if (f[j].k.ino == l->e[i].k.ino && f[j].k.bt == l->e[i].k.bt)
                    break;
            if (j == nf) {
                memset(&f[nf], 0, sizeof f[nf]);
                f[nf++].k = l->e[i].k;
            }
            snprintf(pass ? f[j].cname : f[j].dname, NAMELEN, "%s", l->e[i].name);
        }
    }
    for (int j = 0; j < nf; j++)
        kfile_load(&f[j], j);
    uint64_t n = ++P.ncuts;
    for (int v = 0; v < nvar; v++) {
        int vk = v == 0 ? V_DURABLE : (nvar >= 4 && v == nvar - 1) ? V_CURRENT : V_RANDOM;
        char dir[PATH_MAX], np[PATH_MAX + 8];
        PATHF(dir, "%s/%08d-%06llu-v%d", P.cuts, (int)getpid(),
                 (unsigned long long)n, v);
        if (mkdir(dir, 0777) < 0)
            die("mkdir %s", dir);
        static const unsigned pcurs[] = {100, 500, 900};
        unsigned pcur = pcurs[rnd() % 3], ptorn = 250, lockhow = (unsigned)rnd();
        unsigned torn = 0, taken = 0, missing = 0, back = 0;
        char names[2 * MAXF][NAMELEN];
        int nn = 0;
        for (int j = 0; j < nf; j++) {
            const char *name = NULL;
            if (f[j].dname[0] && f[j].cname[0])
                name = vk == V_DURABLE ? f[j].dname : vk == V_CURRENT ? f[j].cname
                       : chance(1, 2) ? f[j].dname : f[j].cname;
            else if (f[j].cname[0]) /* created since the last directory sync */
                name = vk == V_CURRENT || (vk == V_RANDOM && chance(1, 2)) ? f[j].cname : NULL;
            else /* unlinked since */
                name = vk == V_DURABLE || (vk == V_RANDOM && chance(1, 2)) ? f[j].dname : NULL;
            if (!name) {
                missing += f[j].cname[0] != 0;
                continue;
            }
            if (name_taken(names, nn, name))
                continue;
            back += !f[j].cname[0];
            PATHF(names[nn], "%s", name);
            nn++;
            if (strcmp(name, "lock") == 0)
                write_lock(dir, name, &f[j], vk == V_DURABLE ? 0 : lockhow);
            else
                write_file(dir, name, &f[j], vk, pcur, ptorn, &torn, &taken);
        }
        PATHF(np, "%s.note", dir);
        FILE *nf_ = fopen(np, "w");
        if (!nf_)
            die("fopen %s", np);
        fprintf(nf_, "%s\ncut %llu of pid %d at event %llu (%s %s%s%s), variant %d of %d: %s",
                note, (unsigned long long)n, (int)getpid(), (unsigned long long)ev->seq,
                psim_kind_name[ev->kind], ev->file[0] ? ev->file : "-", ev->point[0] ? " " : "",
                ev->point, v, nvar,
                vk == V_DURABLE ? "durable only" : vk == V_CURRENT ? "all written back"
                                                                   : "random");
        if (vk == V_RANDOM)
            fprintf(nf_, " (%u%% of changed pages written, %u of them torn; %u new names lost, "
                    "%u unlinked names back; lock file %s)", pcur / 10, torn, missing, back,
                    (const char *[]){"absent", "empty", "garbage", "current"}[lockhow % 4]);
        else
            fprintf(nf_, " (%u changed pages written)", taken);
        fputc('\n', nf_);
        if (fclose(nf_) != 0)
            die("write %s", np);
        P.nimages++;
    }
    for (int j = 0; j < nf; j++)
        kfile_free(&f[j]);
}

/* ------------------------------------------------------------------------
 * The hook
 * ------------------------------------------------------------------------ */
static void hook(enum mms__io_event ev, int fd, const void *addr, uint64_t off, uint64_t len,
                 const char *point)
{
    pthread_mutex_lock(&lock);
    if (P.busy || (P.paused && ev != MMS__IO_SYNC_FD)) {
        pthread_mutex_unlock(&lock);
        return;
    }
    int saved = errno;
    uint64_t t0 = mono_ns();
    P.busy = 1;
    struct psim_event e = {.point = point ? point : "", .off = off, .len = len};
    char name[NAMELEN] = "";
    int is_dir = 0;
    struct first_piece fp = {{0}, 0, 0, 0};
    switch (ev) {
    case MMS__IO_WRITE:
        if (fd >= 0 && !fd_name(fd, name, &is_dir))
            goto out;
        if (fd < 0) { /* msync */
            range_files(addr, len, note_first, &fp);
            if (!fp.found)
                goto out;
            PATHF(name, "%s", fp.name);
            e.off = fp.off;
        }
        e.kind = point ? PSIM_SYNC_CALL : PSIM_WRITE;
        break;
    case MMS__IO_SYNC_FD: {
        if (!fd_name(fd, name, &is_dir))
            goto out;
        if (is_dir) {
            struct listing l;
            listing_current(&l);
            listing_save_durable(&l);
            e.kind = PSIM_SYNC_DIR;
        } else {
            char link[64];
            struct key k;
            PATHF(link, "/proc/self/fd/%d", fd);
            if (key_of(fd, "", AT_EMPTY_PATH, &k) != 0)
                die("statx fd %d", fd);
            shadow_update(link, k, 0, 0, 1);
            e.kind = PSIM_SYNC_FILE;
        }
        break;
    }
    case MMS__IO_SYNC_RANGE:
        if (!range_files(addr, len, sync_piece, &fp))
            goto out;
        PATHF(name, "%s", fp.name);
        e.kind = PSIM_SYNC_RANGE;
        e.off = fp.off;
        e.len = len;
        break;
    case MMS__IO_POINT:
        e.kind = PSIM_POINT;
        break;
    default:
        goto out;
    }
    e.seq = ++P.seq;
    e.file = name;
    if (P.policy && !P.paused) {
        char note[1024];
        note[0] = 0;
        int nvar = P.policy(&e, note, sizeof note);
        if (nvar > 0) {
            uint64_t t1 = mono_ns();
            cut(&e, nvar, note);
            P.cut_ns += mono_ns() - t1;
            t0 += mono_ns() - t1;
        }
    }
    P.sync_ns += mono_ns() - t0;
out:
    P.busy = 0;
    errno = saved;
    pthread_mutex_unlock(&lock);
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */
static void mkdirs(const char *p)
{
    if (mkdir(p, 0777) < 0 && errno != EEXIST)
        die("mkdir %s", p);
}

void psim_init(const char *store, const char *work, uint64_t seed)
{
    if (!realpath(store, P.store))
        die("realpath %s", store);
    char w[PATH_MAX];
    mkdirs(work);
    if (!realpath(work, w))
        die("realpath %s", work);
    PATHF(P.shadow, "%s/shadow", w);
    PATHF(P.cuts, "%s/cuts", w);
    mkdirs(P.shadow);
    mkdirs(P.cuts);
    P.rng = seed;
    P.seq = 0;
}

void psim_snapshot(void)
{
    struct listing l;
    listing_current(&l);
    listing_save_durable(&l);
    for (int i = 0; i < l.n; i++) {
        char path[PATH_MAX];
        PATHF(path, "%s/%s", P.store, l.e[i].name);
        shadow_update(path, l.e[i].k, 0, 0, 1);
    }
}

void psim_hook(psim_policy_fn fn)
{
    P.policy = fn;
    mms__os_io_hook(fn ? hook : NULL);
}

void psim_pause(int on)
{
    pthread_mutex_lock(&lock);
    P.paused = on;
    pthread_mutex_unlock(&lock);
}

void psim_after_fork(uint64_t seed)
{
    lock = (pthread_mutex_t)PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    P.rng = seed;
    P.seq = 0;
    P.ncuts = P.nimages = 0;
}

uint64_t psim_cuts(void)
{
    return P.ncuts;
}

uint64_t psim_images(void)
{
    return P.nimages;
}

void psim_times(double *sync_s, double *cut_s)
{
    *sync_s = (double)P.sync_ns / 1e9;
    *cut_s = (double)P.cut_ns / 1e9;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
    rmdir(dir);
}

static int is_note(const struct dirent *de)
{
    size_t n = strlen(de->d_name);
    return n > 5 && strcmp(de->d_name + n - 5, ".note") == 0;
}

int psim_each_image(int (*fn)(void *ctx, const char *dir, const char *note), void *ctx)
{
    struct dirent **list;
    int n = scandir(P.cuts, &list, is_note, alphasort);
    if (n < 0)
        die("scandir %s", P.cuts);
    int r = 0;
    for (int i = 0; i < n; i++) {
        char np[PATH_MAX], dir[PATH_MAX], note[4096];
        PATHF(np, "%s/%s", P.cuts, list[i]->d_name);
        PATHF(dir, "%.*s", (int)(strlen(np) - 5), np);
        if (!r) {
            FILE *f = fopen(np, "r");
            size_t k = f ? fread(note, 1, sizeof note - 1, f) : 0;
            note[k] = 0;
            if (f)
                fclose(f);
            r = fn(ctx, dir, note);
        }
        rm_tree(dir);
        unlink(np);
        free(list[i]);
    }
    free(list);
    return r;
}

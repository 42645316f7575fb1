/*
 * os.c -- every call into the kernel: files, mappings, dirty-page detection.
 *
 * Nothing else in src/ may call open/mmap/fsync/ioctl directly; this is what
 * lets the tests fail any call (fault injection) and kill the process at a
 * chosen point (crash points). Functions return 0 or a negated errno and
 * never print.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Fault injection and crash points
 * ------------------------------------------------------------------------ */
static const char *const op_names[MMS__OP_COUNT] = {
    "open", "pread", "pwrite", "fsync", "fallocate", "mmap", "msync", "mprotect",
    "ftruncate", "mkdir", "rename", "stat", "readdir", "fill", "punch", "copy", "locks"};

static struct {
    unsigned long nth[MMS__OP_COUNT]; /* 0 = disarmed */
    unsigned long count[MMS__OP_COUNT];
    int err[MMS__OP_COUNT];
    int env_done;
} fault;
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

void mms__fault_arm(enum mms__op op, unsigned long nth, int err)
{
    pthread_mutex_lock(&fault_lock);
    __atomic_store_n(&fault.env_done, 1, __ATOMIC_RELEASE);
    fault.nth[op] = nth;
    fault.count[op] = 0;
    fault.err[op] = err;
    pthread_mutex_unlock(&fault_lock);
}

void mms__fault_reset(void)
{
    pthread_mutex_lock(&fault_lock);
    memset(fault.nth, 0, sizeof fault.nth);
    memset(fault.count, 0, sizeof fault.count);
    __atomic_store_n(&fault.env_done, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&fault_lock);
}

/* Under fault_lock. env_done is set last (release): fault_hit reads it
 * without the lock, and then the table. */
MMS__OPEN_PATH
static void fault_env(void)
{
    const char *e = getenv("MMS_FAULT");
    if (!e) {
        __atomic_store_n(&fault.env_done, 1, __ATOMIC_RELEASE);
        return;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", e);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char name[32];
        unsigned long nth;
        int err;
        if (sscanf(tok, "%31[a-z]:%lu:%d", name, &nth, &err) != 3)
            continue;
        for (int i = 0; i < MMS__OP_COUNT; i++)
            if (strcmp(name, op_names[i]) == 0) {
                fault.nth[i] = nth;
                fault.err[i] = err;
            }
    }
    __atomic_store_n(&fault.env_done, 1, __ATOMIC_RELEASE);
}

/* 0, or the injected -errno for this call of op. */
MMS__OPEN_PATH
static int fault_hit(enum mms__op op)
{
    int r = 0;
    if (__atomic_load_n(&fault.env_done, __ATOMIC_ACQUIRE) && fault.nth[op] == 0)
        return 0;
    pthread_mutex_lock(&fault_lock);
    if (!fault.env_done)
        fault_env();
    if (fault.nth[op] && ++fault.count[op] == fault.nth[op])
        r = -fault.err[op];
    pthread_mutex_unlock(&fault_lock);
    return r;
}

/* MMS_CRASH=name:n[,name:n...]: each point counts its own passes. */
#define MAX_CRASH 4
static struct {
    int init, n;
    struct {
        char name[64];
        unsigned long nth, count;
    } p[MAX_CRASH];
} crash;

/* The power-loss simulation's hook (tests only; NULL otherwise). With a
 * hook installed, a file operation and its events are one step under
 * io_lock: the hook's model is told of each sync together with what it
 * covered, even while another thread (apply.c's background syncer) writes
 * or syncs, and the hook itself (tests/powersim.c) runs in one thread at a
 * time. Without one, io_hold costs the load of the hook it makes anyway. */
static mms__io_hook_fn io_hook;
static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;

static mms__io_hook_fn io_hold(void)
{
    mms__io_hook_fn fn = __atomic_load_n(&io_hook, __ATOMIC_ACQUIRE);
    if (fn)
        pthread_mutex_lock(&io_lock);
    return fn;
}

static void io_release(mms__io_hook_fn held)
{
    if (held)
        pthread_mutex_unlock(&io_lock);
}

void mms__os_io_hook(mms__io_hook_fn fn)
{
    __atomic_store_n(&io_hook, fn, __ATOMIC_RELEASE);
}

/* fn: what io_hold returned (the hook, held, or NULL). */
static void io_event(mms__io_hook_fn fn, enum mms__io_event ev, int fd, const void *addr,
                     uint64_t off, uint64_t len, const char *point)
{
    if (fn)
        fn(ev, fd, addr, off, len, point);
}

/* After fork(): the child reads MMS_FAULT and MMS_CRASH afresh (a test sets
 * them between fork and the child's first call). */
/* getpid() is a system call (glibc stopped caching it), and read
 * transactions and commits ask: cached, and forgotten in a forked child
 * (mms__os_after_fork, from store.c's pthread_atfork handler, registered
 * at the first open, before any handle can ask). */
static uint32_t pid_cached;

void mms__os_after_fork(void)
{
    /* The child is single-threaded: a lock another thread of the parent
     * held at the fork (the background syncer syncing) is free here. */
    fault_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    io_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    pid_cached = 0;
    fault.env_done = 0; /* armed faults stay armed; the environment adds */
    crash.init = 0;
}

/* Under fault_lock; init is set last (release), as fault_env's env_done:
 * the first crash points of several threads raced here. */
MMS__OPEN_PATH
static void crash_env(void)
{
    const char *e = getenv("MMS_CRASH");
    char buf[300];
    crash.n = 0;
    /* Unset (every process but a crash test's): no snprintf, whose first
     * call faults in pages of the C library's code and tables inside the
     * first mms_open (its recovery passes a crash point). */
    if (!e || !*e) {
        __atomic_store_n(&crash.init, 1, __ATOMIC_RELEASE);
        return;
    }
    snprintf(buf, sizeof buf, "%s", e);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && crash.n < MAX_CRASH;
         tok = strtok_r(NULL, ",", &save))
        if (sscanf(tok, "%63[^:]:%lu", crash.p[crash.n].name, &crash.p[crash.n].nth) == 2) {
            crash.p[crash.n].count = 0;
            crash.n++;
        }
    __atomic_store_n(&crash.init, 1, __ATOMIC_RELEASE);
}

MMS__OPEN_PATH
void mms__crashpoint(const char *name)
{
    mms__io_hook_fn held = io_hold();
    io_event(held, MMS__IO_POINT, -1, NULL, 0, 0, name);
    io_release(held);
    if (!__atomic_load_n(&crash.init, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&fault_lock);
        if (!crash.init)
            crash_env();
        pthread_mutex_unlock(&fault_lock);
    }
    for (int i = 0; i < crash.n; i++)
        if (strcmp(name, crash.p[i].name) == 0 &&
            __atomic_add_fetch(&crash.p[i].count, 1, __ATOMIC_RELAXED) == crash.p[i].nth)
            raise(SIGKILL);
}

/* ------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------ */
/* A descriptor of the store is never 0, 1 or 2: in a process started with
 * stdout or stderr closed, a message written there (the program's, the
 * `mms` tool's) would land in a store file -- over region 0's header. */
MMS__OPEN_PATH
static int fd_above_std(int fd)
{
    if (fd < 0 || fd > 2)
        return fd < 0 ? -errno : fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    return high < 0 ? -e : high;
}

MMS__OPEN_PATH
int mms__os_open(const char *path, int flags, int mode)
{
    int r = fault_hit(MMS__OP_OPEN);
    if (r)
        return r;
    return fd_above_std(open(path, flags | O_CLOEXEC, mode));
}

/* A store's files (region files, journal, lock) are regular files: a FIFO
 * put in the place of one would block the open for ever, a device (a link
 * to /dev/zero) would be read as data. So a file is opened without waiting
 * (O_NONBLOCK: no effect on a regular file's reads, writes and mappings)
 * and refused, MMS_ECORRUPT, unless it is a regular file. The fstat that
 * says so gives its size too (a region file's, measured next: one fstat
 * per file an open maps, not two). A caller that must measure the file
 * later anyway (the lock file, once it is locked) opens it with
 * mms__os_openat_nostat and checks it with that later fstat. */
MMS__OPEN_PATH
int mms__os_openat_nostat(int dirfd, const char *name, int flags, int mode)
{
    int r = fault_hit(MMS__OP_OPEN);
    if (r)
        return r;
    bool file = !(flags & O_DIRECTORY);
    return fd_above_std(openat(dirfd, name, flags | O_CLOEXEC | (file ? O_NONBLOCK : 0), mode));
}

MMS__OPEN_PATH
int mms__os_fsize_regular(int fd, const char *name, uint64_t *size)
{
    return mms__os_fsize_regular_id(fd, name, size, NULL);
}

MMS__OPEN_PATH
int mms__os_fsize_regular_id(int fd, const char *name, uint64_t *size, uint64_t id[2])
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return mms__fail(MMS_ECORRUPT, "%s is not a regular file", name);
    *size = (uint64_t)st.st_size;
    if (id) {
        id[0] = (uint64_t)st.st_dev;
        id[1] = (uint64_t)st.st_ino;
    }
    return 0;
}

MMS__OPEN_PATH
int mms__os_openat_sized(int dirfd, const char *name, int flags, int mode, uint64_t *size)
{
    int fd = mms__os_openat_nostat(dirfd, name, flags, mode);
    if (fd < 0 || (flags & O_DIRECTORY)) {
        if (size)
            *size = 0;
        return fd;
    }
    uint64_t n = 0;
    int r = mms__os_fsize_regular(fd, name, &n);
    if (r) {
        close(fd);
        return r;
    }
    if (size)
        *size = n;
    return fd;
}

uint64_t mms__os_fd_limit(void)
{
    struct rlimit rl;
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 0;
}

MMS__OPEN_PATH
int mms__os_openat(int dirfd, const char *name, int flags, int mode)
{
    return mms__os_openat_sized(dirfd, name, flags, mode, NULL);
}

int mms__os_close(int fd)
{
    if (fd < 0)
        return 0;
    return close(fd) < 0 ? -errno : 0;
}

int mms__os_mkdir(const char *path)
{
    int r = fault_hit(MMS__OP_MKDIR);
    if (r)
        return r;
    return mkdir(path, 0777) < 0 ? -errno : 0;
}

MMS__OPEN_PATH
int mms__os_pread_upto(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    int r = fault_hit(MMS__OP_PREAD);
    if (r)
        return r;
    char *p = buf;
    *got = 0;
    while (*got < len) {
        ssize_t n = pread(fd, p + *got, len - *got, (off_t)(off + *got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break; /* the end of the file */
        *got += (size_t)n;
    }
    return 0;
}

int mms__os_pread(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got;
    int r = mms__os_pread_upto(fd, buf, len, off, &got);
    if (!r && got < len)
        r = -EIO; /* short file: callers check sizes first */
    return r;
}

int mms__os_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    int r = fault_hit(MMS__OP_PWRITE);
    if (r)
        return r;
    mms__io_hook_fn held = io_hold();
    io_event(held, MMS__IO_WRITE, fd, NULL, off, len, NULL);
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            break;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    io_release(held);
    return r;
}

int mms__os_fdatasync(int fd)
{
    int r = fault_hit(MMS__OP_FSYNC);
    if (r)
        return r;
    mms__io_hook_fn held = io_hold();
    io_event(held, MMS__IO_WRITE, fd, NULL, 0, 0, "fdatasync");
    if (fdatasync(fd) < 0)
        r = -errno;
    else
        io_event(held, MMS__IO_SYNC_FD, fd, NULL, 0, 0, NULL);
    io_release(held);
    return r;
}

int mms__os_fsync(int fd)
{
    int r = fault_hit(MMS__OP_FSYNC);
    if (r)
        return r;
    mms__io_hook_fn held = io_hold();
    io_event(held, MMS__IO_WRITE, fd, NULL, 0, 0, "fsync");
    if (fsync(fd) < 0)
        r = -errno;
    else
        io_event(held, MMS__IO_SYNC_FD, fd, NULL, 0, 0, NULL);
    io_release(held);
    return r;
}

int mms__os_fallocate(int fd, uint64_t off, uint64_t len)
{
    int r = fault_hit(MMS__OP_FALLOCATE);
    if (r)
        return r;
    r = posix_fallocate(fd, (off_t)off, (off_t)len);
    return -r;
}

int mms__os_ftruncate(int fd, uint64_t len)
{
    int r = fault_hit(MMS__OP_FTRUNCATE);
    if (r)
        return r;
    return ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
}

MMS__OPEN_PATH
int mms__os_fsize(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Open-file-description locks on one byte: owned by the open file, not the
 * process, so two handles in one process exclude each other like two
 * processes do; released by the kernel when the last descriptor closes,
 * however the process ends. type: F_RDLCK, F_WRLCK or F_UNLCK. */
MMS__OPEN_PATH
int mms__os_ofd_lock(int fd, int byte, int type, bool wait)
{
    struct flock fl = {.l_type = (short)type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    for (;;) {
        if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EACCES)
            return MMS_EBUSY;
        return -errno;
    }
}

/* The kernel's lock table (/proc/locks), each lock held all along listed
 * once. The kernel lists it a piece at a time -- a read() gets at most a
 * page of whole lines, listed under its lock -- and starts each piece at
 * a line number, not at a lock: a lock taken or released meanwhile, by
 * any process, in a line before the seam moves the lines, and the next
 * piece lists the seam's last lines again, or skips its first ones. (Read
 * through stdio, 1 KB at a time, it counted one unslotted reader twice
 * while 12 runs of test_unwritable ran side by side: the read after the
 * last line is such a seam too.) So a piece is followed by a read on from
 * where it ended, which finds the end if it finds nothing, or a first
 * lock that the kernel's page had room for after the piece (that lock
 * came after: a table that fits in a piece is read in one). Else the
 * table is read on from a little before the last lines
 * already read -- SEAM_LINES of them, and back to one unlike the last
 * (after its number), at most SEAM_MAX bytes -- which the next piece must
 * list again, with the same line numbers; else the lines moved, and the
 * table is read again from its first line, for at most
 * LOCKS_PATIENCE_NS (-EAGAIN). What passes unseen: a move by lines alike
 * over a seam inside a run of lines alike longer than SEAM_MAX (one
 * store's handles opened one after another); a piece cut short by a lock
 * whose waiters' lines do not fit in the rest of the kernel's page, when
 * the lines then move back over its end; the lines of such a lock, if
 * they do not fit after the seam's either (read on without the check).
 * *text is malloc'd, *len bytes. */
#define SEAM_LINES 4
#define SEAM_MAX 1024
#define SEAM_SLACK 512 /* lines before the seam's may have changed length */
#define LOCKS_PATIENCE_NS 100000000
#define LINE_ROOM 256 /* more than a lock's line, without waiters */

/* The text of the line that starts at b + at, after its number. */
static const char *line_body(const char *b, size_t at, size_t end, size_t *len)
{
    const char *c = memchr(b + at, ':', end - at);
    const char *nl = memchr(b + at, '\n', end - at);
    if (!c || (nl && nl < c))
        c = b + at;
    *len = (size_t)((nl ? nl + 1 : b + end) - c);
    return c;
}

/* Where the seam's lines start in b[0..n). */
static size_t seam_start(const char *b, size_t n)
{
    size_t from = n, lines = 0, last_len = 0;
    const char *last = NULL;
    bool unlike = false;
    while (from > 0 && n - from < SEAM_MAX && (lines < SEAM_LINES || !unlike)) {
        size_t at = from - 1;
        while (at > 0 && b[at - 1] != '\n')
            at--;
        size_t len;
        const char *body = line_body(b, at, from, &len);
        if (!last)
            last = body, last_len = len;
        else if (len != last_len || memcmp(body, last, len) != 0)
            unlike = true;
        from = at;
        lines++;
    }
    return from;
}

/* Where the seam's lines seam[0..sl) begin a line of d[0..dl), or SIZE_MAX. */
static size_t seam_find(const char *d, size_t dl, const char *seam, size_t sl)
{
    for (size_t i = 0; i + sl <= dl; i++)
        if ((i == 0 || d[i - 1] == '\n') && memcmp(d + i, seam, sl) == 0)
            return i;
    return SIZE_MAX;
}

/* The length of the first lock's lines in d[0..dl): its own and its
 * waiters' ("->"), at least LINE_ROOM. */
static size_t lock_lines(const char *d, size_t dl)
{
    size_t at = 0;
    do {
        const char *nl = memchr(d + at, '\n', dl - at);
        at = nl ? (size_t)(nl - d) + 1 : dl;
    } while (at < dl && memmem(d + at, strcspn(d + at, "\n"), "->", 2));
    return at > LINE_ROOM ? at : LINE_ROOM;
}

static int locks_table(char **text, size_t *len)
{
    int fr = fault_hit(MMS__OP_LOCKS);
    if (fr)
        return fr;
    int fd = open("/proc/locks", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *b = NULL;
    size_t cap = 0, n = 0;
    uint64_t t0 = mms__os_mono_ns();
    size_t page = (size_t)sysconf(_SC_PAGESIZE); /* the least the kernel lists in a piece */
    int r = 0;
    for (;;) {
        size_t from = seam_start(b, n), seam = n - from;
        size_t at = from > SEAM_SLACK ? from - SEAM_SLACK : 0;
        if (cap - n < 65536) {
            char *nb = realloc(b, cap = 2 * cap + 65536);
            if (!nb) {
                r = -ENOMEM;
                break;
            }
            b = nb;
        }
        ssize_t got = pread(fd, b + n, cap - n, (off_t)at);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        size_t k = seam_find(b + n, (size_t)got, b + from, seam);
        if (k == SIZE_MAX) {
            n = 0; /* the lines moved */
            if (mms__os_mono_ns() - t0 > LOCKS_PATIENCE_NS) {
                r = -EAGAIN;
                break;
            }
            continue;
        }
        size_t fresh = (size_t)got - k - seam;
        memmove(b + n, b + n + k + seam, fresh);
        n += fresh;
        /* Is there more? Read on from where the piece ended. Nothing, or
         * a first line that the kernel's page had room for after the
         * piece, is the end: the piece ended with the table, and the line
         * came after (it does not list a lock that came meanwhile twice).
         * Else the piece was cut short, and what follows is read again
         * behind a seam -- unless the piece brought nothing new (above). */
        size_t piece = (at ? LINE_ROOM : 0) + (size_t)got; /* a line cut at at */
        got = pread(fd, b + n, cap - n, (off_t)(at + k + seam + fresh));
        if (got < 0 && errno != EINTR) {
            r = -errno;
            break;
        }
        if (got == 0 || (got > 0 && piece + lock_lines(b + n, (size_t)got) <= page))
            break;
        if (got > 0 && fresh == 0)
            n += (size_t)got;
        mms__crashpoint("os.locks_piece");
    }
    close(fd);
    if (r) {
        free(b);
        return r;
    }
    *text = b;
    *len = n;
    return 0;
}

/* How many shared OFD locks cover each of bytes[0..n) of the file behind
 * fd, as the kernel's lock table lists them (/proc/locks, one line per
 * lock held, read as it was at one moment: locks_table; a waiter's line,
 * "->", is not counted): counts[i]. The table names no process for an
 * OFD lock. 0, -EAGAIN (the table kept moving while it was read) or
 * -errno (no /proc). */
int mms__os_ofd_shared_count(int fd, const int *bytes, unsigned n, unsigned *counts)
{
    memset(counts, 0, n * sizeof *counts);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    char *text = NULL;
    size_t len = 0;
    int r = locks_table(&text, &len);
    if (r)
        return r;
    for (size_t at = 0, next; at < len; at = next) {
        const char *nl = memchr(text + at, '\n', len - at);
        next = nl ? (size_t)(nl - text) + 1 : len;
        char line[256], cls[16], type[16], end[32];
        snprintf(line, sizeof line, "%.*s", (int)(next - at), text + at);
        unsigned maj, min;
        unsigned long long ino, start;
        /* "3: OFDLCK ADVISORY  READ -1 fe:00:10953204 258 258" (or "EOF") */
        if (strstr(line, "->") ||
            sscanf(line, "%*d: %15s %*s %15s %*d %x:%x:%llu %llu %31s", cls, type, &maj, &min,
                   &ino, &start, end) != 7 ||
            strcmp(cls, "OFDLCK") != 0 || strcmp(type, "READ") != 0 ||
            maj != major(st.st_dev) || min != minor(st.st_dev) || ino != st.st_ino)
            continue;
        unsigned long long last = strcmp(end, "EOF") == 0 ? ~0ull : strtoull(end, NULL, 10);
        for (unsigned i = 0; i < n; i++)
            counts[i] += start <= (unsigned long long)bytes[i] &&
                         (unsigned long long)bytes[i] <= last;
    }
    free(text);
    return 0;
}

/* 1 if another open file description holds byte (a write lock would
 * conflict), 0 if not, or -errno. */
int mms__os_ofd_probe(int fd, int byte)
{
    return mms__os_ofd_probe_range(fd, byte, 1);
}

/* The same for any byte of [byte, byte + len): one call. */
int mms__os_ofd_probe_range(int fd, int byte, int len)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = len};
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}

/* Futexes on words of the shared lock file (not FUTEX_PRIVATE: other
 * processes wait on them too). timeout_ns < 0 waits for ever. Returns 0
 * when woken or the word differs, -ETIMEDOUT, or -EINTR. */
int mms__os_futex_wait(uint32_t *word, uint32_t expect, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tp = &ts;
    }
    long r = syscall(SYS_futex, word, FUTEX_WAIT, expect, tp, NULL, 0);
    if (r == 0 || errno == EAGAIN)
        return 0;
    return -errno;
}

void mms__os_futex_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

/* ------------------------------------------------------------------------
 * The library's own threads (apply.c's background syncer and pin watcher)
 *
 * Such a thread must never run an application's signal handler (every
 * signal is blocked in it: it inherits the mask set around its creation),
 * costs little memory (a small stack), and must never be able to touch a
 * guarded mapping (guard.c G3): it starts with no rights to any protection
 * key, whatever rights the creating thread had (a thread inherits its
 * creator's PKRU, and one created inside a write transaction could write).
 * ------------------------------------------------------------------------ */
static bool pkeys_used; /* a protection key was allocated in this process */

static void *thread_main(void *arg)
{
    struct mms__os_thread *t = arg;
#if defined(__x86_64__) && defined(PKEY_DISABLE_WRITE)
    if (__atomic_load_n(&pkeys_used, __ATOMIC_RELAXED))
        for (int k = 1; k < 16; k++)
            pkey_set(k, PKEY_DISABLE_ACCESS);
#endif
    t->fn(t->arg);
    return NULL;
}

int mms__os_thread_start(struct mms__os_thread *t)
{
    pthread_attr_t a;
    sigset_t all, old;
    int r = pthread_attr_init(&a);
    if (r)
        return -r;
    /* 128 KiB, of which glibc takes the static TLS (~33 KiB: the dirty
     * page scan's buffer below): a sync and an error message (mms__fail)
     * need a few KiB, the sanitizers' runtimes some more. Untouched pages
     * cost nothing. */
    r = pthread_attr_setstacksize(&a, t->stack ? t->stack : (size_t)128 << 10);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (!r)
        r = pthread_create(&t->id, &a, thread_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
    return -r;
}

void mms__os_thread_join(struct mms__os_thread *t)
{
    pthread_join(t->id, NULL);
}

MMS__OPEN_PATH
uint32_t mms__os_pid(void)
{
    uint32_t p = __atomic_load_n(&pid_cached, __ATOMIC_RELAXED);
    if (!p) {
        p = (uint32_t)getpid();
        __atomic_store_n(&pid_cached, p, __ATOMIC_RELAXED);
    }
    return p;
}

int mms__os_unlinkat(int dirfd, const char *name)
{
    return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
}

int mms__os_renameat(int dirfd, const char *from, const char *to)
{
    int r = fault_hit(MMS__OP_RENAME);
    if (r)
        return r;
    return renameat(dirfd, from, dirfd, to) < 0 ? -errno : 0;
}

int mms__os_stat(int dirfd, const char *name, bool *is_dir)
{
    int r = fault_hit(MMS__OP_STAT);
    if (r)
        return r;
    struct stat st;
    if (fstatat(dirfd, name, &st, 0) < 0)
        return -errno;
    if (is_dir)
        *is_dir = S_ISDIR(st.st_mode);
    return 0;
}

/* Out of descriptors (EMFILE): list through dirfd itself, whose offset is
 * rewound first (the library opens files at a directory's descriptor, it
 * never reads it otherwise), so that a checkpoint needs no descriptor for
 * its listing under a low RLIMIT_NOFILE. */
static int dir_list_in_place(int dirfd, int (*fn)(void *ctx, const char *name), void *ctx)
{
    if (lseek(dirfd, 0, SEEK_SET) < 0)
        return -errno;
    _Alignas(8) char buf[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, dirfd, buf, sizeof buf);
        if (n <= 0)
            return n < 0 ? -errno : 0;
        for (long off = 0; off < n;) {
            struct { /* linux_dirent64 */
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *de = (void *)(buf + off);
            int r = strcmp(de->name, ".") != 0 && strcmp(de->name, "..") != 0
                        ? fn(ctx, de->name) : 0;
            if (r)
                return r;
            off += de->reclen;
        }
    }
}

int mms__os_dir_list(int dirfd, int (*fn)(void *ctx, const char *name), void *ctx)
{
    int r = fault_hit(MMS__OP_READDIR);
    if (r)
        return r;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == EMFILE)
        return dir_list_in_place(dirfd, fn, ctx);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        r = -errno;
        close(fd);
        return r;
    }
    for (struct dirent *de; (de = readdir(d)) && !r;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            r = fn(ctx, de->d_name);
    closedir(d);
    return r;
}

/* ------------------------------------------------------------------------
 * Mappings
 * ------------------------------------------------------------------------ */
/* -ENOMEM when the process cannot have len bytes of address space: out
 * of it, or a length refused as invalid (EINVAL: valgrind refuses a
 * reservation of hundreds of GiB so), which the callers retry smaller. */
MMS__OPEN_PATH
int mms__os_reserve(uint64_t len, char **out)
{
    int r = fault_hit(MMS__OP_MMAP);
    void *p = r ? MAP_FAILED
                : mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        r = r ? r : -errno;
        return r == -EINVAL ? -ENOMEM : r;
    }
    *out = p;
    return 0;
}

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000 /* Linux >= 4.17; glibc < 2.28 lacks the name */
#endif

int mms__os_reserve_at(void *addr, uint64_t len)
{
    int r = fault_hit(MMS__OP_MMAP);
    if (r)
        return r;
    void *p = mmap(addr, len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    if (p != addr) { /* a kernel before 4.17 takes the address as a hint */
        munmap(p, len);
        return -EEXIST;
    }
    return 0;
}

MMS__OPEN_PATH
int mms__os_map_fixed(void *addr, uint64_t len, int fd, uint64_t off, bool shared, bool writable)
{
    int r = fault_hit(MMS__OP_MMAP);
    if (r)
        return r;
    if (len == 0)
        return 0;
    void *p = mmap(addr, len, PROT_READ | (writable ? PROT_WRITE : 0),
                   (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, fd, (off_t)off);
    if (p == MAP_FAILED)
        return -errno;
    return 0;
}

static int map_shared(int fd, uint64_t len, bool writable, int flags, char **out)
{
    int r = fault_hit(MMS__OP_MMAP);
    if (r)
        return r;
    void *p = mmap(NULL, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED | flags, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *out = p;
    return 0;
}

int mms__os_map(int fd, uint64_t len, bool writable, char **out)
{
    return map_shared(fd, len, writable, 0, out);
}

MMS__OPEN_PATH
int mms__os_map_populated(int fd, uint64_t len, char **out)
{
    return map_shared(fd, len, true, MAP_POPULATE, out);
}

/* Zeroed anonymous memory, touched only where it is used (a calloc of the
 * same size clears every page, and in a new process each first touch is a
 * page fault). Not a fault-injection point: calloc was not one either. */
MMS__OPEN_PATH
int mms__os_anon(uint64_t len, uint64_t populate, char **out)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
#ifdef MADV_POPULATE_WRITE
    /* One call makes the pages: ~7 us a page against ~13 us a fault on
     * our VMs. Best effort (Linux 5.14 and later). */
    if (populate)
        madvise(p, populate < len ? populate : len, MADV_POPULATE_WRITE);
#endif
    *out = p;
    return 0;
}

int mms__os_remap(char *old, uint64_t oldlen, uint64_t newlen, char **out)
{
    int r = fault_hit(MMS__OP_MMAP);
    if (r)
        return r;
    void *p = mremap(old, oldlen, newlen, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
        return -errno;
    *out = p;
    return 0;
}

MMS__OPEN_PATH
int mms__os_unmap(void *addr, uint64_t len)
{
    if (!addr || len == 0)
        return 0;
    return munmap(addr, len) < 0 ? -errno : 0;
}

int mms__os_unmap_to_reserve(void *addr, uint64_t len)
{
    if (len == 0)
        return 0;
    void *p = mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                   -1, 0);
    return p == MAP_FAILED ? -errno : 0;
}

int mms__os_zeros_at(void *addr, uint64_t len, bool writable)
{
    if (len == 0)
        return 0;
    void *p = mmap(addr, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                   -1, 0);
    return p == MAP_FAILED ? -errno : 0;
}

int mms__os_protect(void *addr, uint64_t len, bool writable)
{
    int r = fault_hit(MMS__OP_MPROTECT);
    if (r)
        return r;
    if (len == 0)
        return 0;
    return mprotect(addr, len, PROT_READ | (writable ? PROT_WRITE : 0)) < 0 ? -errno : 0;
}

int mms__os_msync(void *addr, uint64_t len)
{
    int r = fault_hit(MMS__OP_MSYNC);
    if (r)
        return r;
    if (len == 0)
        return 0;
    mms__io_hook_fn held = io_hold();
    io_event(held, MMS__IO_WRITE, -1, addr, 0, len, "msync");
    if (msync(addr, len, MS_SYNC) < 0)
        r = -errno;
    else
        io_event(held, MMS__IO_SYNC_RANGE, -1, addr, 0, len, NULL);
    io_release(held);
    return r;
}

int mms__os_drop(void *addr, uint64_t len)
{
    if (len == 0)
        return 0;
    return madvise(addr, len, MADV_DONTNEED) < 0 ? -errno : 0;
}

int mms__os_nohuge(void *addr, uint64_t len)
{
    return madvise(addr, len, MADV_NOHUGEPAGE) < 0 ? -errno : 0;
}

int mms__os_huge(void *addr, uint64_t len)
{
#ifdef MADV_HUGEPAGE
    return madvise(addr, len, MADV_HUGEPAGE) < 0 ? -errno : 0;
#else
    (void)addr;
    (void)len;
    return -EINVAL;
#endif
}

int mms__os_no_readahead(void *addr, uint64_t len)
{
    return madvise(addr, len, MADV_RANDOM) < 0 ? -errno : 0;
}

int mms__os_populate_read(const void *addr, uint64_t len)
{
#ifdef MADV_POPULATE_READ
    if (madvise((void *)(uintptr_t)addr, len, MADV_POPULATE_READ) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOSYS) /* before Linux 5.14: not known */
        return -ENOTSUP;
    /* EFAULT: a touch would be a SIGBUS; EHWPOISON: a page of memory
     * failed. Either way that page cannot be read. */
    return errno == EFAULT || errno == EHWPOISON ? -EIO : -errno;
#else
    (void)addr;
    (void)len;
    return -ENOTSUP;
#endif
}

int mms__os_readahead_default(void *addr, uint64_t len)
{
    return madvise(addr, len, MADV_NORMAL) < 0 ? -errno : 0;
}

/* The public paging hint (mmstore.h): here because only this file calls
 * the kernel. Not a fault-injection point: a hint that fails changes no
 * data. */
int mms_advise(const void *p, uint64_t len, unsigned advice)
{
    if (!p || advice != MMS_ADVISE_HUGE)
        return mms__fail(MMS_EINVAL, "mms_advise: %s", !p ? "p is NULL" : "unknown advice");
    if (len == 0)
        return 0;
    uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(MMS__PAGE - 1);
    uintptr_t end = (uintptr_t)p + (uintptr_t)len;
    if (end < (uintptr_t)p || end > UINTPTR_MAX - MMS__PAGE)
        return mms__fail(MMS_EINVAL, "mms_advise: %llu bytes at %p run past the address space",
                         (unsigned long long)len, p);
    uintptr_t hi = (end + MMS__PAGE - 1) & ~(uintptr_t)(MMS__PAGE - 1);
#ifdef MADV_HUGEPAGE
    int r = mms__os_huge((void *)lo, hi - lo);
    /* EINVAL: a kernel built without transparent huge pages. */
    if (r == -EINVAL && access("/sys/kernel/mm/transparent_hugepage", F_OK) != 0)
        r = MMS_ENOTSUP;
    if (r)
        return mms__fail(r, "mms_advise: MADV_HUGEPAGE on %llu bytes at %p: %s",
                         (unsigned long long)(hi - lo), (void *)lo,
                         r == MMS_ENOTSUP ? "the kernel has no transparent huge pages"
                                          : strerror(-r));
    return 0;
#else
    (void)lo;
    (void)hi;
    return mms__fail(MMS_ENOTSUP, "mms_advise: this system has no MADV_HUGEPAGE");
#endif
}

void mms__os_random(void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* No entropy source: fall back to time and pid; uuids and salts
             * need to differ, not to be secret. */
            uint64_t x = mms__os_now_ns() ^ ((uint64_t)getpid() << 32);
            for (size_t i = 0; i < len; i++) {
                x = x * 6364136223846793005u + 1442695040888963407u;
                p[i] = (char)(x >> 56);
            }
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

MMS__OPEN_PATH /* a first open stamps the lock file (lock.c) */
uint64_t mms__os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Since boot, suspended time included (lock.c: has the system restarted). */
MMS__OPEN_PATH
uint64_t mms__os_boot_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A random uuid the kernel draws at each boot: what tells a restart when
 * the clocks cannot (lock.c). The kernel's, not a container's: every PID,
 * mount or time namespace reads the same one. Not on the open path: ~70 us
 * in a new process (the open of a /proc file), so lock.c reads it only for
 * a lock file made in the first seconds of a boot. Not counted as an open
 * by fault injection: it is not a store's file. */
int mms__os_boot_id(uint8_t id[16])
{
    char text[40];
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n;
    do
        n = read(fd, text, sizeof text);
    while (n < 0 && errno == EINTR);
    int e = n < 0 ? -errno : 0;
    close(fd);
    if (e)
        return e;
    /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\n" */
    uint8_t got[16] = {0}, any = 0;
    if (n < 36)
        return -EINVAL;
    for (int i = 0, k = 0; i < 36; i++) {
        char c = text[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return -EINVAL;
            continue;
        }
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            return -EINVAL;
        got[k / 2] |= (uint8_t)(k % 2 ? v : v << 4);
        any |= got[k / 2];
        k++;
    }
    if (!any) /* 0 means "none kept" in the lock file */
        return -EINVAL;
    memcpy(id, got, 16);
    return 0;
}

MMS__OPEN_PATH
uint64_t mms__os_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Linux counts a fault when it has resolved it, the page-table entry in
 * place (mm_account_fault, after __handle_mm_fault): a fault in the kernel
 * (a system call writing to user memory) or for get_user_pages in this
 * process counts too. ~1.4 us here (it sums every thread's counters and
 * CPU times): view.c reads it at most once a commit. */
uint64_t mms__os_faults(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0)
        return UINT64_MAX;
    return (uint64_t)u.ru_minflt + (uint64_t)u.ru_majflt;
}

/* On x86 Linux the page size is 4 KiB, always: no need to ask. Asking
 * costs every new process a page fault (sysconf reads a page of the C
 * library's data that nothing else on a warm open touches), ~20 us here. */
MMS__OPEN_PATH
long mms__os_page_size(void)
{
#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
    return 4096;
#else
    return sysconf(_SC_PAGESIZE);
#endif
}

/* ------------------------------------------------------------------------
 * Dirty pages: which pages of a private file mapping were copied on write.
 *
 * A page of a MAP_PRIVATE file mapping is either not present, present and
 * file-backed (read but never written: the page cache page itself), or
 * present and anonymous (written: the kernel copied it), or swapped (only
 * anonymous pages swap). So dirty = (present or swapped) and not file-backed.
 * ------------------------------------------------------------------------ */

/* PAGEMAP_SCAN (linux/fs.h of Linux >= 6.7; Debian 12's headers predate it). */
struct mms__page_region {
    uint64_t start, end, categories;
};
struct mms__pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define MMS__PAGEMAP_SCAN _IOWR('f', 16, struct mms__pm_scan_arg)
#define MMS__PAGE_IS_FILE (1u << 2)
#define MMS__PAGE_IS_PRESENT (1u << 3)
#define MMS__PAGE_IS_SWAPPED (1u << 4)

#define MMS__PAGE_IS_WRITTEN (1u << 1)
#define MMS__PM_SCAN_WP_MATCHING (1u << 0)

/* how: MMS__SCAN_* (internal.h). wp: write-protect the pages reported,
 * atomically with reporting them (PM_SCAN_WP_MATCHING). The kernel then
 * leaves out every range not registered for asynchronous write
 * protection: a scan that must see every written page never asks for it.
 *
 * MMS__SCAN_WRITTEN_FAST leaves PAGE_IS_FILE out of every mask: the kernel
 * computes a category only when a mask names it, and that one costs a
 * look-up of the page's struct page for every present entry (~9 ns each
 * here, bench/results/issue14.md), while the written bit is in the entry.
 * It reports a superset: every page the other modes report, plus pages
 * mapped from the file by a read and never protected (a read fault where
 * the range was protected maps the page protected). */
static int scan_range(int fd, char *start, char *end, unsigned how, bool wp, mms__run_fn fn,
                      void *ctx)
{
    uint64_t file = how == MMS__SCAN_WRITTEN_FAST ? 0 : MMS__PAGE_IS_FILE;
    struct mms__page_region vec[128];
    uint64_t at = (uint64_t)(uintptr_t)start;
    while (at < (uint64_t)(uintptr_t)end) {
        struct mms__pm_scan_arg a = {
            .size = sizeof a,
            .flags = wp ? MMS__PM_SCAN_WP_MATCHING : 0,
            .start = at,
            .end = (uint64_t)(uintptr_t)end,
            .vec = (uint64_t)(uintptr_t)vec,
            .vec_len = sizeof vec / sizeof vec[0],
            .category_inverted = file,
            .category_mask = file | (how != MMS__SCAN_PRIVATE ? MMS__PAGE_IS_WRITTEN : 0),
            .category_anyof_mask = MMS__PAGE_IS_PRESENT | MMS__PAGE_IS_SWAPPED,
            .return_mask = MMS__PAGE_IS_PRESENT | MMS__PAGE_IS_SWAPPED,
        };
        long n = ioctl(fd, MMS__PAGEMAP_SCAN, &a);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (long i = 0; i < n; i++) {
            int r = fn(ctx, (char *)(uintptr_t)vec[i].start, (char *)(uintptr_t)vec[i].end);
            if (r)
                return r;
        }
        if (a.walk_end <= at)
            return -EIO;
        at = a.walk_end;
    }
    return 0;
}

#define PM_PRESENT (UINT64_C(1) << 63)
#define PM_SWAPPED (UINT64_C(1) << 62)
#define PM_FILE (UINT64_C(1) << 61)

static int pagemap_range(int fd, char *start, char *end, mms__run_fn fn, void *ctx)
{
    /* On the stack, one page: a 32 KiB __thread array was cleared (8 page
     * faults) at the start of every process and thread that links the
     * library, used or not; 512 entries a pread read 1 GiB of pagemap
     * as fast as 4096 did (/proc/self/pagemap, 1 page in 16 present). */
    enum { N = 512 };
    uint64_t ent[N];
    uint64_t first = (uint64_t)(uintptr_t)start / MMS__PAGE;
    uint64_t last = (uint64_t)(uintptr_t)end / MMS__PAGE;
    char *run = NULL;
    for (uint64_t pg = first; pg < last;) {
        size_t n = last - pg < N ? (size_t)(last - pg) : N;
        int r = mms__os_pread(fd, ent, n * 8, pg * 8);
        if (r)
            return r;
        for (size_t i = 0; i < n; i++) {
            uint64_t e = ent[i];
            bool d = (e & (PM_PRESENT | PM_SWAPPED)) && !(e & PM_FILE);
            char *addr = (char *)(uintptr_t)((pg + i) * MMS__PAGE);
            if (d && !run)
                run = addr;
            else if (!d && run) {
                r = fn(ctx, run, addr);
                if (r)
                    return r;
                run = NULL;
            }
        }
        pg += n;
    }
    if (run)
        return fn(ctx, run, end);
    return 0;
}

static int scan_supported(int fd)
{
    char probe[1];
    struct mms__page_region v[1];
    struct mms__pm_scan_arg a = {
        .size = sizeof a,
        .start = (uint64_t)(uintptr_t)probe & ~(uint64_t)(MMS__PAGE - 1),
        .end = ((uint64_t)(uintptr_t)probe & ~(uint64_t)(MMS__PAGE - 1)) + MMS__PAGE,
        .vec = (uint64_t)(uintptr_t)v,
        .vec_len = 1,
        .category_anyof_mask = MMS__PAGE_IS_PRESENT,
        .return_mask = MMS__PAGE_IS_PRESENT,
    };
    return ioctl(fd, MMS__PAGEMAP_SCAN, &a) >= 0;
}

int mms__os_dirty_open(unsigned backend, int *fdp, unsigned *chosen)
{
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mms__fail(MMS_ENOTSUP, "cannot open /proc/self/pagemap: %s", strerror(errno));
    if (backend == MMS_DIRTY_AUTO)
        backend = scan_supported(fd) ? MMS_DIRTY_SCAN : MMS_DIRTY_PAGEMAP;
    else if (backend == MMS_DIRTY_SCAN && !scan_supported(fd)) {
        close(fd);
        return mms__fail(MMS_ENOTSUP, "the PAGEMAP_SCAN ioctl is not available (Linux < 6.7)");
    }
    *fdp = fd;
    *chosen = backend;
    return 0;
}

int mms__os_dirty_scan(int fd, unsigned backend, char *start, char *end, unsigned how,
                       mms__run_fn fn, void *ctx)
{
    if (start >= end)
        return 0;
    if (backend == MMS_DIRTY_SCAN)
        return scan_range(fd, start, end, how, false, fn, ctx);
    return pagemap_range(fd, start, end, fn, ctx);
}

int mms__os_dirty_protect(int fd, char *start, char *end, mms__run_fn fn, void *ctx)
{
    if (start >= end)
        return 0;
    return scan_range(fd, start, end, MMS__SCAN_WRITTEN_FAST, true, fn, ctx);
}

/* ------------------------------------------------------------------------
 * Write protection of private pages (userfaultfd in its asynchronous
 * write-protect mode, Linux >= 6.7, the same kernels as PAGEMAP_SCAN).
 *
 * A page write-protected this way faults on its next write, and the kernel
 * resolves the fault itself (no thread waits on the descriptor), clearing
 * the page's uffd-wp bit; PAGEMAP_SCAN reports PAGE_IS_WRITTEN for every
 * page without the bit. So a scan asked for written pages only (above)
 * leaves out exactly the private pages protected since their last write,
 * and every other private page stays in: where protection is missing (an
 * old kernel, a seccomp filter, a range not registered, a mapping
 * replaced), pages are reported as before. That is what makes it safe to
 * use as a filter only.
 *
 * Registering a range disables the kernel's fault-around on reads there,
 * so callers register small chunks around the pages they protect.
 * ------------------------------------------------------------------------ */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define MMS__UFFD_API 0xAA
#define MMS__UFFD_WP_UNPOPULATED (1ull << 13)
#define MMS__UFFD_WP_ASYNC (1ull << 15)
struct mms__uffd_api {
    uint64_t api, features, ioctls;
};
struct mms__uffd_range {
    uint64_t start, len;
};
struct mms__uffd_register {
    struct mms__uffd_range range;
    uint64_t mode, ioctls;
};
struct mms__uffd_wp {
    struct mms__uffd_range range;
    uint64_t mode;
};
#define MMS__UFFDIO_API _IOWR(MMS__UFFD_API, 0x3F, struct mms__uffd_api)
#define MMS__UFFDIO_REGISTER _IOWR(MMS__UFFD_API, 0x00, struct mms__uffd_register)
#define MMS__UFFDIO_WRITEPROTECT _IOWR(MMS__UFFD_API, 0x06, struct mms__uffd_wp)
#define MMS__UFFDIO_REGISTER_MODE_WP (1ull << 1)
#define MMS__UFFDIO_WRITEPROTECT_MODE_WP (1ull << 0)

int mms__os_wp_open(void)
{
#ifdef SYS_userfaultfd
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return -errno;
    struct mms__uffd_api a = {.api = MMS__UFFD_API,
                              .features = MMS__UFFD_WP_ASYNC | MMS__UFFD_WP_UNPOPULATED};
    if (ioctl(fd, MMS__UFFDIO_API, &a) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
#else
    return -ENOSYS;
#endif
}

int mms__os_wp_register(int ufd, char *start, uint64_t len)
{
    struct mms__uffd_register g = {
        .range = {(uint64_t)(uintptr_t)start, len}, .mode = MMS__UFFDIO_REGISTER_MODE_WP};
    return ioctl(ufd, MMS__UFFDIO_REGISTER, &g) < 0 ? -errno : 0;
}

int mms__os_wp_unprotect(int ufd, char *start, uint64_t len)
{
    struct mms__uffd_wp w = {.range = {(uint64_t)(uintptr_t)start, len}, .mode = 0};
    return ioctl(ufd, MMS__UFFDIO_WRITEPROTECT, &w) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------------------
 * A store's life: giving space back, copying files sparsely, directories
 * (compact.c, copy.c).
 * ------------------------------------------------------------------------ */
MMS__OPEN_PATH
int mms__os_fill(int fd, uint64_t off, uint64_t len)
{
    int r = fault_hit(MMS__OP_FILL);
    if (r)
        return r;
    if (len == 0)
        return 0;
    /* Mode 0 allocates what is not allocated and leaves the rest alone
     * (posix_fallocate would emulate it by writing where it cannot). */
    for (;;) {
        if (fallocate(fd, 0, (off_t)off, (off_t)len) == 0)
            return 0;
        if (errno != EINTR)
            break;
    }
    if (errno == EOPNOTSUPP)
        return -posix_fallocate(fd, (off_t)off, (off_t)len);
    return -errno;
}

int mms__os_punch(int fd, uint64_t off, uint64_t len)
{
    int r = fault_hit(MMS__OP_PUNCH);
    if (r)
        return r;
    if (len == 0)
        return 0;
    mms__io_hook_fn held = io_hold();
    io_event(held, MMS__IO_WRITE, fd, NULL, off, len, NULL);
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
        r = -errno;
    io_release(held);
    return r;
}

static int seek_next(int fd, uint64_t off, uint64_t end, int whence, uint64_t *next)
{
    if (off >= end) {
        *next = end;
        return 0;
    }
    off_t p = lseek(fd, (off_t)off, whence);
    if (p < 0 && errno == ENXIO) { /* no data (or no hole) before the end of the file */
        *next = whence == SEEK_DATA ? end : off;
        return 0;
    }
    if (p < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) { /* no SEEK_DATA here */
        *next = whence == SEEK_DATA ? off : end;
        return 0;
    }
    if (p < 0)
        return -errno;
    *next = (uint64_t)p < end ? (uint64_t)p : end;
    return 0;
}

int mms__os_data_next(int fd, uint64_t off, uint64_t end, uint64_t *next)
{
    return seek_next(fd, off, end, SEEK_DATA, next);
}

int mms__os_hole_next(int fd, uint64_t off, uint64_t end, uint64_t *next)
{
    return seek_next(fd, off, end, SEEK_HOLE, next);
}

int mms__os_copy(int fd_in, int fd_out, uint64_t off, uint64_t len)
{
    int r = fault_hit(MMS__OP_COPY);
    if (r)
        return r;
    /* The destination is not a simulated store: the event alone. */
    mms__io_hook_fn held = io_hold();
    io_event(held, MMS__IO_WRITE, fd_out, NULL, off, len, NULL);
    io_release(held);
    bool fallback = false;
    while (len > 0 && !fallback) {
        loff_t in = (loff_t)off, out = (loff_t)off;
        ssize_t n = copy_file_range(fd_in, &in, fd_out, &out, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
                      errno == EINVAL)) {
            fallback = true;
            break;
        }
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* the source is shorter than it said */
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    char buf[1 << 16];
    while (len > 0) {
        size_t k = len < sizeof buf ? (size_t)len : sizeof buf;
        ssize_t n = pread(fd_in, buf, k, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        for (ssize_t w = 0; w < n;) {
            ssize_t m = pwrite(fd_out, buf + w, (size_t)(n - w), (off_t)off + w);
            if (m < 0 && errno == EINTR)
                continue;
            if (m < 0)
                return -errno;
            w += m;
        }
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

int mms__os_writeback(int fd, uint64_t off, uint64_t len, bool wait)
{
    if (len == 0)
        return 0;
#ifdef SYNC_FILE_RANGE_WRITE
    unsigned flags = wait ? SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER
                          : SYNC_FILE_RANGE_WRITE;
    if (sync_file_range(fd, (off_t)off, (off_t)len, flags) == 0 || errno == ENOSYS ||
        errno == EINVAL || errno == ESPIPE)
        return 0; /* a hint: the final fsync is what counts */
    return -errno;
#else
    (void)fd, (void)off, (void)wait;
    return 0;
#endif
}

int mms__os_disk_bytes(int fd, uint64_t *bytes)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *bytes = (uint64_t)st.st_blocks * 512u;
    return 0;
}

bool mms__os_pid_alive(uint32_t pid)
{
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

int mms__os_rmdirat(int dirfd, const char *name)
{
    return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int mms__os_exchange(int dirfd, const char *a, const char *b)
{
    int r = fault_hit(MMS__OP_RENAME);
    if (r)
        return r;
#ifdef RENAME_EXCHANGE
    if (renameat2(dirfd, a, dirfd, b, RENAME_EXCHANGE) == 0)
        return 0;
    if (errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)
        return MMS_ENOTSUP;
    return -errno;
#else
    (void)dirfd, (void)a, (void)b;
    return MMS_ENOTSUP;
#endif
}

/* The identity of a file (st_dev, st_ino): name relative to dirfd, or a
 * path with AT_FDCWD; "." for dirfd itself. */
int mms__os_file_id(int dirfd, const char *name, uint64_t id[2])
{
    struct stat st;
    if (fstatat(dirfd, name, &st, 0) < 0)
        return -errno;
    id[0] = (uint64_t)st.st_dev;
    id[1] = (uint64_t)st.st_ino;
    return 0;
}

/* ------------------------------------------------------------------------
 * Memory protection keys (guard.c): x86 `pku`, Linux >= 4.9, glibc >= 2.27
 *
 * A key tags mappings (pkey_mprotect); each thread's PKRU register says
 * what that thread may do to pages of each key, and writing it is one
 * unprivileged instruction (glibc's pkey_set), no system call. Elsewhere
 * (another CPU, an older glibc) every call here fails with -ENOSYS or
 * -ENOSPC and guard.c falls back. Not fault-injection points: a failed
 * pkey_alloc is the common case (no pku) and is tested as such.
 * ------------------------------------------------------------------------ */
#if defined(__x86_64__) && defined(PKEY_DISABLE_WRITE)
int mms__os_pkey_alloc(unsigned rights)
{
    int k = pkey_alloc(0, rights);
    if (k < 0)
        return -errno;
    __atomic_store_n(&pkeys_used, true, __ATOMIC_RELAXED);
    return k;
}

void mms__os_pkey_free(int key)
{
    pkey_free(key);
}

int mms__os_pkey_tag(void *addr, uint64_t len, int key)
{
    if (len == 0)
        return 0;
    return pkey_mprotect(addr, len, PROT_READ | PROT_WRITE, key) < 0 ? -errno : 0;
}

unsigned mms__os_pkey_get(int key)
{
    int v = pkey_get(key);
    return v < 0 ? MMS__PKEY_NOACCESS | MMS__PKEY_NOWRITE : (unsigned)v;
}

void mms__os_pkey_set(int key, unsigned rights)
{
    pkey_set(key, rights);
}
#else
int mms__os_pkey_alloc(unsigned rights)
{
    (void)rights;
    return -ENOSYS;
}

void mms__os_pkey_free(int key)
{
    (void)key;
}

int mms__os_pkey_tag(void *addr, uint64_t len, int key)
{
    (void)addr, (void)len, (void)key;
    return -ENOSYS;
}

unsigned mms__os_pkey_get(int key)
{
    (void)key;
    return MMS__PKEY_NOACCESS | MMS__PKEY_NOWRITE;
}

void mms__os_pkey_set(int key, unsigned rights)
{
    (void)key, (void)rights;
}
#endif

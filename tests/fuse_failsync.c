/*
 * fuse_failsync.c -- a FUSE file system for tests/test_fuse_sync: every
 * operation passes through to a backing directory, except that fsync and
 * fdatasync (of files and directories) fail with EIO while a control file
 * says so. The real kernel sits between the library and it: the page
 * cache, shared mappings and their writeback, fdatasync's error path.
 *
 *   fuse_failsync BACKING CONTROL MOUNTPOINT [fuse options...]
 *
 * CONTROL is a file outside the mount, read at every fsync: its first byte
 * '1' fails the call with EIO; 'r' fails it unless the file is named
 * "journal" (the region files fail, the journal syncs); anything else, or
 * no file, passes it to the backing file. After every fsync, and every write to a file named
 * "journal", the counts so far are written to CONTROL.stats as "fsyncs N
 * failed M jwrites W" (one line), so a test can tell that a failure it
 * expects came from here. W: the writes to a journal since the first
 * failed sync of the latest run of failed ones (a sync that fails after
 * one that passed starts a run), so a test can tell that nothing touched
 * the journal once a sync had failed.
 *
 * CONTROL.readfail, while it exists, holds a byte offset: a read of a file
 * named "journal" that covers it fails with EIO (a disk that cannot read
 * that sector; mapped, the page is a SIGBUS at its touch). Writes are never dropped: the data
 * reaches the backing file, only the sync reports failure (a disk that
 * fails a flush after taking the data; a lost writeback would lose it).
 *
 * It must never change what a passed-through call does: each handler is the
 * backing call on the same arguments (paths relative to BACKING, file
 * handles are the backing descriptors). Byte-range locks are not
 * implemented here, so the kernel keeps them (OFD locks included) locally,
 * as it does for any FUSE file system without a lock handler: enough for
 * processes of one machine, which is all a store's lock file asks.
 * Run single-threaded (-s): the counts need no lock.
 */
#define _GNU_SOURCE 1
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

static int g_back = -1;           /* the backing directory */
static const char *g_control;     /* the control file */
static char g_stats[4160];       /* CONTROL.stats */
static unsigned long g_fsyncs, g_failed, g_jwrites;
static int g_failing; /* the last sync failed */
/* Which backing descriptors are of a file named "journal": write gets no
 * path (nullpath_ok), so open and create note it. */
static unsigned char g_is_journal[65536];

static void note_fd(const char *path, int fd)
{
    const char *base = strrchr(path, '/');
    if (fd >= 0 && fd < (int)sizeof g_is_journal)
        g_is_journal[fd] = strcmp(base ? base + 1 : path, "journal") == 0;
}

/* "/a/b" -> "a/b", "/" -> "." (relative to g_back). */
static const char *rel(const char *path)
{
    while (*path == '/')
        path++;
    return *path ? path : ".";
}

static int neg(int r)
{
    return r < 0 ? -errno : r;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (fi)
        return neg(fstat((int)fi->fh, st));
    return neg(fstatat(g_back, rel(path), st, AT_SYMLINK_NOFOLLOW));
}

static int fs_access(const char *path, int mode)
{
    return neg(faccessat(g_back, rel(path), mode, 0));
}

/* A directory handle is a backing descriptor too (readdir and fsyncdir
 * get no path for it). */
static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(g_back, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close((int)fi->fh);
    return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path;
    (void)off;
    (void)flags;
    int fd = openat((int)fi->fh, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st = {.st_ino = e->d_ino, .st_mode = (mode_t)DTTOIF(e->d_type)};
        if (fill(buf, e->d_name, &st, 0, 0))
            break;
    }
    closedir(d);
    return 0;
}

static int fs_mkdir(const char *path, mode_t mode)
{
    return neg(mkdirat(g_back, rel(path), mode));
}

static int fs_unlink(const char *path)
{
    return neg(unlinkat(g_back, rel(path), 0));
}

static int fs_rmdir(const char *path)
{
    return neg(unlinkat(g_back, rel(path), AT_REMOVEDIR));
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
    return neg(renameat2(g_back, rel(from), g_back, rel(to), flags));
}

static int fs_link(const char *from, const char *to)
{
    return neg(linkat(g_back, rel(from), g_back, rel(to), 0));
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    if (fi)
        return neg(fchmod((int)fi->fh, mode));
    return neg(fchmodat(g_back, rel(path), mode, 0));
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (fi)
        return neg(ftruncate((int)fi->fh, size));
    int fd = openat(g_back, rel(path), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = neg(ftruncate(fd, size));
    close(fd);
    return r;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    if (fi)
        return neg(futimens((int)fi->fh, tv));
    return neg(utimensat(g_back, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(g_back, rel(path), (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    note_fd(path, fd);
    fi->fh = (uint64_t)fd;
    return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int fd = openat(g_back, rel(path), fi->flags | O_CREAT | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    note_fd(path, fd);
    fi->fh = (uint64_t)fd;
    return 0;
}

/* Whether CONTROL.readfail names a byte in [off, off + size). */
static bool read_fails(off_t off, size_t size)
{
    char p[4200];
    snprintf(p, sizeof p, "%s.readfail", g_control);
    FILE *f = fopen(p, "re");
    if (!f)
        return false;
    long long at = -1;
    if (fscanf(f, "%lld", &at) != 1)
        at = -1;
    fclose(f);
    return at >= (long long)off && at < (long long)off + (long long)size;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh < sizeof g_is_journal && g_is_journal[fi->fh] && read_fails(off, size)) {
        fprintf(stderr, "fuse_failsync: a read of the journal at %lld (%zu bytes) fails with EIO "
                "(the readfail file)\n", (long long)off, size);
        return -EIO;
    }
    ssize_t n = pread((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static void write_stats(void)
{
    FILE *f = fopen(g_stats, "we");
    if (f) {
        fprintf(f, "fsyncs %lu failed %lu jwrites %lu\n", g_fsyncs, g_failed, g_jwrites);
        fclose(f);
    }
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    ssize_t n = pwrite((int)fi->fh, buf, size, off);
    if (fi->fh < sizeof g_is_journal && g_is_journal[fi->fh]) {
        g_jwrites++;
        write_stats();
    }
    return n < 0 ? -errno : (int)n;
}

static int fs_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return neg(fstatvfs(g_back, st));
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    /* Its number may come back as a directory's (opendir notes nothing). */
    if (fi->fh < sizeof g_is_journal)
        g_is_journal[fi->fh] = 0;
    close((int)fi->fh);
    return 0;
}

/* The one place that departs from the backing directory: CONTROL's first
 * byte '1' fails the sync; the counts go to CONTROL.stats either way. */
static int sync_or_fail(const char *path, int fd, int datasync)
{
    char c = 0;
    int cfd = open(g_control, O_RDONLY | O_CLOEXEC);
    if (cfd >= 0) {
        if (read(cfd, &c, 1) != 1)
            c = 0;
        close(cfd);
    }
    int r;
    g_fsyncs++;
    bool journal = fd >= 0 && fd < (int)sizeof g_is_journal && g_is_journal[fd];
    if (c == '1' || (c == 'r' && !journal)) {
        if (!g_failing)
            g_jwrites = 0;
        g_failing = 1;
        g_failed++;
        fprintf(stderr, "fuse_failsync: %s of %s fails with EIO (control file says %c)\n",
                datasync ? "fdatasync" : "fsync", path, c);
        r = -EIO;
    } else {
        g_failing = 0;
        r = neg(datasync ? fdatasync(fd) : fsync(fd));
    }
    write_stats();
    return r;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    return sync_or_fail(path ? path : "(a file)", (int)fi->fh, datasync);
}

static int fs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    return sync_or_fail(path ? path : "(a directory)", (int)fi->fh, datasync);
}

static int fs_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
    (void)path;
    return neg(fallocate((int)fi->fh, mode, off, len));
}

static ssize_t fs_copy_file_range(const char *pin, struct fuse_file_info *fin, off_t oin,
                                  const char *pout, struct fuse_file_info *fout, off_t oout,
                                  size_t len, int flags)
{
    (void)pin;
    (void)pout;
    loff_t i = oin, o = oout;
    ssize_t n = copy_file_range((int)fin->fh, &i, (int)fout->fh, &o, len, (unsigned)flags);
    return n < 0 ? -errno : n;
}

static off_t fs_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
    (void)path;
    off_t r = lseek((int)fi->fh, off, whence);
    return r < 0 ? -errno : r;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    /* Unlinked files are gone at once (no .fuse_hidden files in a store
     * directory); the handlers use the backing descriptors, not paths. */
    cfg->hard_remove = 1;
    cfg->nullpath_ok = 1;
    cfg->use_ino = 1;
    cfg->direct_io = 0; /* shared mappings need the page cache */
    return NULL;
}

static const struct fuse_operations ops = {
    .init = fs_init,
    .getattr = fs_getattr,
    .access = fs_access,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .rename = fs_rename,
    .link = fs_link,
    .chmod = fs_chmod,
    .truncate = fs_truncate,
    .utimens = fs_utimens,
    .open = fs_open,
    .create = fs_create,
    .read = fs_read,
    .write = fs_write,
    .statfs = fs_statfs,
    .release = fs_release,
    .fsync = fs_fsync,
    .fsyncdir = fs_fsyncdir,
    .fallocate = fs_fallocate,
    .copy_file_range = fs_copy_file_range,
    .lseek = fs_lseek,
};

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s BACKING CONTROL MOUNTPOINT [fuse options...]\n", argv[0]);
        return 2;
    }
    g_back = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g_back < 0) {
        fprintf(stderr, "fuse_failsync: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    /* An absolute path: fuse_main may change directory to /. */
    static char control[4096];
    if (argv[2][0] == '/') {
        snprintf(control, sizeof control, "%s", argv[2]);
    } else {
        char cwd[2048];
        if (!getcwd(cwd, sizeof cwd)) {
            fprintf(stderr, "fuse_failsync: getcwd: %s\n", strerror(errno));
            return 1;
        }
        snprintf(control, sizeof control, "%s/%s", cwd, argv[2]);
    }
    g_control = control;
    snprintf(g_stats, sizeof g_stats, "%s.stats", g_control);
    umask(0);
    /* fuse_main sees: argv[0] MOUNTPOINT [options...]. */
    argv[2] = argv[0];
    return fuse_main(argc - 2, argv + 2, &ops, NULL);
}

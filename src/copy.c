/*
 * copy.c -- hot copy: a consistent copy of a store into a new directory
 * while its writer keeps committing (mms_copy).
 *
 * Layer 10, beside pmem.c: calls read.c (a read transaction pins the state
 * copied), store.c and compact.c (the copy is opened and compacted when
 * asked), journal.c (the copy's journal), hdr.c, map.c (file names) and
 * os.c. It must never write into the source store's directory, and never
 * leave a destination that is half a store: the copy is built in a
 * temporary directory beside the destination and renamed into place.
 *
 * NOTES ON THE DESIGN
 *
 * Why a read transaction is enough. Commits reach the region files only
 * when they are applied, and nothing is applied while a reader is inside
 * (Invariant 6, apply.c); a checkpoint follows an apply, and old region
 * files are deleted only after a checkpoint. So while this handle pins the
 * published state, the region files named by the header in region 0's file
 * hold exactly that state up to each region's committed size; what the
 * writer does meanwhile goes to its private pages, to the journal, and to
 * fresh space past the committed sizes, which is not copied. The writer is
 * not stopped: its commits wait in the journal and in its backlog (at most
 * max_backlog bytes; at that bound its next commit waits for the copy to
 * end -- mmstore.h, read transactions). The header is read from the file,
 * not from this handle's view: a write handle's own view may be ahead of
 * the files.
 *
 * The copy's files:
 *   region-<id>-<gen>  [0, committed size rounded up to a page) of each
 *                      region, sparse: only the source's data ranges
 *                      (SEEK_DATA / SEEK_HOLE) are copied, by
 *                      copy_file_range where the kernel has it. A hole of
 *                      the copy is a hole of the source.
 *   journal            a new one, holding no commit, naming the store's
 *                      uuid and the copied txn (as after a checkpoint:
 *                      Invariant 5).
 *   lock               made by the first open.
 * Every file and the directory are synced before the rename, and the
 * parent directory after it: a crash leaves the destination absent or
 * whole (and perhaps the temporary directory, which a later copy to the
 * same destination removes when its process is gone).
 *
 * MMS_COPY_COMPACT then opens the temporary copy and compacts it
 * (compact.c) before the rename: free heap pages punched and flagged,
 * deleted records at the ends of tables and free space at the end of the
 * heap dropped. Refs stay valid in the copy: nothing moves.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMP_TAG ".mms-copy-"
#define STEP ((uint64_t)32 << 20) /* bytes copied between writebacks */

/* ------------------------------------------------------------------------
 * Directories
 * ------------------------------------------------------------------------ */
static int unlink_one(void *ctx, const char *name)
{
    int r = mms__os_unlinkat(*(int *)ctx, name);
    return r == -ENOENT ? 0 : r;
}

/* Remove directory name of parent dirfd and the files in it (a store's
 * directory holds files only). */
static int remove_store_dir(int pfd, const char *name)
{
    int fd = mms__os_openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return fd;
    int r = mms__os_dir_list(fd, unlink_one, &fd);
    mms__os_close(fd);
    return r ? r : mms__os_rmdirat(pfd, name);
}

/* A leftover of a killed run beside base: base + tag + PID, or base + tag
 * + PID-N (copies number theirs: threads may copy to one dest). Its PID,
 * or 0 if name is no such leftover. */
static uint32_t leftover_pid(const char *name, const char *base, const char *tag)
{
    size_t b = strlen(base), t = strlen(tag);
    if (strncmp(name, base, b) != 0 || strncmp(name + b, tag, t) != 0)
        return 0;
    const char *p = name + b + t;
    if (*p < '1' || *p > '9')
        return 0;
    uint64_t pid = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((pid = pid * 10 + (uint64_t)(*p - '0')) > INT32_MAX)
            return 0;
    if (*p == '-' && p[1] >= '0' && p[1] <= '9')
        p += 1 + strspn(p + 1, "0123456789");
    return *p ? 0 : (uint32_t)pid;
}

struct stale {
    int pfd;
    const char *base, *tag;
    unsigned removed;
};

/* One leftover whose process is gone: a directory (what a store's holds:
 * files), or a file, or a link (the link goes, never what it names). */
static int remove_stale(void *ctx, const char *name)
{
    struct stale *st = ctx;
    uint32_t pid = leftover_pid(name, st->base, st->tag);
    if (!pid || pid == mms__os_pid() || mms__os_pid_alive(pid))
        return 0; /* not one, ours, or its process lives: that run goes on */
    int r = remove_store_dir(st->pfd, name);
    if (r == -ENOTDIR || r == -ELOOP)
        r = mms__os_unlinkat(st->pfd, name);
    st->removed += r == 0;
    return 0;
}

/* What may be replaced with MMS_COPY_FORCE: an empty directory, or one
 * that holds a store (region-0-0) -- never any other directory. */
static int any_name(void *ctx, const char *name)
{
    (void)ctx, (void)name;
    return 1;
}

/* A store that a handle has open is never replaced: that handle would go
 * on committing into the old directory, removed -- commits that return 0
 * and are lost. Byte 0 of its lock file, exclusively, in *lockfd: held
 * while it is replaced, openers wait (one that opened the directory
 * before the exchange then finds it gone). */
static int dest_unused(int pfd, const char *base, const char *dest, int *lockfd)
{
    *lockfd = -1;
    int fd = mms__os_openat(pfd, base, O_RDONLY | O_DIRECTORY, 0);
    int r = fd < 0 ? fd : mms__lock_dir_exclusive(fd, lockfd);
    mms__os_close(fd);
    if (r == MMS_EBUSY)
        return mms__fail(MMS_EBUSY, "%s holds a store that is open (mms readers lists its "
                         "handles): not replaced", dest);
    return r ? mms__fail(r, "cannot lock %s: %s", dest, mms_strerror(r)) : 0;
}

static int check_replaceable(int pfd, const char *base, const char *dest)
{
    int fd = mms__os_openat(pfd, base, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return mms__fail(fd == -ENOTDIR ? -EEXIST : fd, "%s exists and is not a directory",
                         dest);
    bool is_dir = false, store = false;
    int r = mms__os_stat(fd, "region-0-0", &is_dir);
    if (r == -ENOENT)
        r = mms__os_dir_list(fd, any_name, NULL) == 0 ? 0 : -ENOTEMPTY;
    else if (!r && is_dir)
        r = -ENOTEMPTY;
    else
        store = !r;
    mms__os_close(fd);
    if (r)
        return mms__fail(r == -ENOTEMPTY ? -EEXIST : r,
                         "%s exists and holds something else than a store: not replaced", dest);
    int lk = -1;
    r = store ? dest_unused(pfd, base, dest, &lk) : 0; /* fail before the copy, not after */
    mms__os_close(lk);
    return r;
}

/* ------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------ */

/* [0, size) of src into a new file name of dirfd, sparse; synced. */
static int copy_file(int src, int dirfd, const char *name, uint64_t size, uint64_t *copied)
{
    int dst = mms__os_openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL, 0666);
    if (dst < 0)
        return mms__fail(dst, "cannot create %s: %s", name, mms_strerror(dst));
    uint64_t end = mms__round_up(size, MMS__PAGE), fsize;
    int r = mms__os_fsize(src, &fsize);
    if (!r && fsize < end)
        r = MMS__CORRUPT("%s is %llu bytes, shorter than its committed size %llu", name,
                         (unsigned long long)fsize, (unsigned long long)size);
    if (!r)
        r = mms__os_ftruncate(dst, end);
    /* In steps of STEP bytes, each written back while the next is copied
     * and waited for before the one after: at most two steps are dirty, so
     * the final fsync is short and a writer's journal syncs never queue
     * behind a gigabyte of copy (what the writer's longest commit during a
     * copy measures: README). */
    uint64_t pend_off = 0, pend_len = 0;
    for (uint64_t off = 0, data, hole; !r && off < end; off = hole) {
        r = mms__os_data_next(src, off, end, &data);
        if (!r)
            r = mms__os_hole_next(src, data, end, &hole);
        for (uint64_t at = data; !r && at < hole;) {
            uint64_t n = hole - at < STEP ? hole - at : STEP;
            r = mms__os_copy(src, dst, at, n);
            if (!r)
                r = mms__os_writeback(dst, pend_off, pend_len, true);
            if (!r)
                r = mms__os_writeback(dst, at, n, false);
            pend_off = at, pend_len = n;
            *copied += n;
            at += n;
            mms__crashpoint("copy.range");
        }
    }
    if (!r)
        r = mms__os_fsync(dst);
    mms__os_close(dst);
    if (r && r != MMS_ECORRUPT)
        r = mms__fail(r, "cannot copy %s: %s", name, mms_strerror(r));
    return r;
}

/* Every region of the state the files hold, and a new journal, into the
 * directory tfd. Inside a read transaction. */
static int copy_regions(mms_store *s, int tfd, mms_copy_stats *st)
{
    int fd0 = mms__os_openat(s->dirfd, "region-0-0", O_RDONLY, 0);
    if (fd0 < 0)
        return mms__fail(fd0, "cannot open region 0: %s", mms_strerror(fd0));
    struct mms__hdrbuf *b = malloc(sizeof *b);
    uint64_t fsize;
    int r = b ? mms__hdr_read(fd0, b, &fsize) : -ENOMEM;
    if (!r)
        r = mms__hdr_check_full(&b->h, b->rt, fsize);
    mms__os_close(fd0);
    for (uint32_t id = 0; !r && id < b->h.nregions; id++) {
        if (b->rt[id].kind == MMS__RK_NONE)
            continue;
        char name[MMS__REGION_NAME];
        mms__region_name(name, id, b->rt[id].gen);
        int src = mms__os_openat(s->dirfd, name, O_RDONLY, 0);
        if (src < 0) {
            r = mms__fail(src, "cannot open %s: %s", name, mms_strerror(src));
            break;
        }
        r = copy_file(src, tfd, name, b->rt[id].size, &st->bytes_copied);
        mms__os_close(src);
        st->regions++;
    }
    if (!r) {
        st->txn = b->h.txn_id;
        r = mms__journal_write_new(tfd, b->h.uuid, b->h.txn_id);
    }
    free(b);
    return r;
}

/* ------------------------------------------------------------------------
 * The call
 * ------------------------------------------------------------------------ */

/* dest split into its parent directory (opened, and as a path prefix
 * ending in '/', or "") and its last name. */
static int dest_split(const char *dest, char *base, size_t cap, char parent[4096], int *pfd)
{
    char path[4096];
    size_t n = strlen(dest);
    while (n > 1 && dest[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof path)
        return mms__fail(MMS_EINVAL, "bad destination path");
    memcpy(path, dest, n);
    path[n] = 0;
    char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        strlen(name) + strlen(TMP_TAG) + 24 >= cap)
        return mms__fail(MMS_EINVAL, "bad destination name %s", dest);
    snprintf(base, cap, "%s", name);
    if (slash == path)
        path[1] = 0;
    else if (slash)
        *slash = 0;
    snprintf(parent, 4100, "%s%s", slash ? path : "", slash && slash != path ? "/" : "");
    int fd = mms__os_open(slash ? path : ".", O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return mms__fail(fd, "cannot open the directory of %s: %s", dest, mms_strerror(fd));
    *pfd = fd;
    return 0;
}

static int copy_into(mms_store *s, const char *dest, const char *parent, int pfd,
                     const char *base, const char *tmp, unsigned flags, mms_copy_stats *st)
{
    char tpath[4500];
    int r = mms__os_openat(pfd, tmp, O_RDONLY | O_DIRECTORY, 0);
    if (r < 0)
        return r;
    int tfd = r;
    uint64_t t0 = mms__os_mono_ns();
    r = mms_read_begin(s);
    if (!r) {
        r = copy_regions(s, tfd, st);
        int r2 = mms_read_end(s);
        r = r ? r : r2;
    }
    st->read_ns = mms__os_mono_ns() - t0;
    if (!r)
        r = mms__os_fsync(tfd);
    mms__os_close(tfd);
    mms__crashpoint("copy.copied");
    /* The temporary copy is a store now: compact it (it is alone). */
    snprintf(tpath, sizeof tpath, "%s%s", parent, tmp);
    if (!r && (flags & MMS_COPY_COMPACT)) {
        mms_store *c;
        r = mms_open(tpath, NULL, &c);
        if (!r) {
            mms_compact_stats cs;
            r = mms_compact(c, &cs);
            int r2 = mms_close(c);
            r = r ? r : r2;
        }
        if (!r) {
            /* The lock file of that open is not part of a copy. */
            int fd = mms__os_openat(pfd, tmp, O_RDONLY | O_DIRECTORY, 0);
            if (fd >= 0) {
                mms__os_unlinkat(fd, "lock");
                r = mms__os_fsync(fd);
                mms__os_close(fd);
            }
        }
    }
    if (r)
        return r;
    /* Into place. */
    bool is_dir;
    for (int tries = 0;; tries++) {
        if (mms__os_stat(pfd, base, &is_dir) != 0) {
            r = mms__os_renameat(pfd, tmp, base);
            /* Another copy (a thread's, a process's) moved its directory
             * there since the look: it is found there now. */
            if ((r == -ENOTEMPTY || r == -EEXIST) && tries < 3)
                continue;
            break;
        }
        if (!(flags & MMS_COPY_FORCE))
            return mms__fail(-EEXIST, "%s exists (appeared during the copy)", dest);
        /* What appeared is looked at as what was there before: a store or
         * an empty directory, or it stays. */
        int lk;
        if ((r = check_replaceable(pfd, base, dest)) || (r = dest_unused(pfd, base, dest, &lk)))
            return r;
        r = mms__os_exchange(pfd, tmp, base);
        if (r == MMS_ENOTSUP) {
            char old[320];
            snprintf(old, sizeof old, "%s.old", tmp);
            r = mms__os_renameat(pfd, base, old);
            if (!r)
                r = mms__os_renameat(pfd, tmp, base);
            if (!r)
                remove_store_dir(pfd, old);
        } else if (!r) {
            remove_store_dir(pfd, tmp); /* the old destination */
        }
        mms__os_close(lk);
        break;
    }
    mms__crashpoint("copy.renamed");
    if (!r)
        r = mms__os_fsync(pfd);
    return r ? mms__fail(r, "cannot move the copy to %s: %s", dest, mms_strerror(r)) : 0;
}

int mms_copy(mms_store *s, const char *dest, unsigned flags, mms_copy_stats *st)
{
    mms_copy_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (!dest || (flags & ~(MMS_COPY_COMPACT | MMS_COPY_FORCE)))
        return mms__fail(MMS_EINVAL, "mms_copy: no destination, or unknown flags");
    if (s->state != MMS__ST_IDLE)
        return mms__fail(MMS_ETXN, "mms_copy inside a transaction");
    char base[256], tmp[300], parent[4100];
    int pfd = -1;
    if ((r = dest_split(dest, base, sizeof base, parent, &pfd)))
        return r;
    bool is_dir;
    uint64_t a[2], b[2], c[2];
    bool ids = mms__os_file_id(s->dirfd, ".", b) == 0;
    if (ids && mms__os_file_id(pfd, ".", c) == 0 && c[0] == b[0] && c[1] == b[1])
        r = mms__fail(MMS_EINVAL, "%s is inside the store being copied", dest);
    else if (mms__os_stat(pfd, base, &is_dir) == 0) {
        if (is_dir && ids && mms__os_file_id(pfd, base, a) == 0 && a[0] == b[0] && a[1] == b[1])
            r = mms__fail(MMS_EINVAL, "%s is the store being copied", dest);
        else if (!(flags & MMS_COPY_FORCE))
            r = mms__fail(-EEXIST, "%s exists (MMS_COPY_FORCE replaces a store there)", dest);
        else if (!is_dir)
            r = mms__fail(-EEXIST, "%s exists and is not a directory", dest);
        else
            r = check_replaceable(pfd, base, dest);
    }
    if (!r) {
        struct stale sl = {pfd, base, TMP_TAG, 0};
        mms__os_dir_list(pfd, remove_stale, &sl);
        /* PID-N, N this process's count of copies: two threads copying to
         * one dest each had the other remove its temporary directory (and
         * could rename the other's half-written one into place). */
        static unsigned copies;
        snprintf(tmp, sizeof tmp, "%s%s%u-%u", base, TMP_TAG, (unsigned)mms__os_pid(),
                 __atomic_add_fetch(&copies, 1, __ATOMIC_RELAXED));
        remove_store_dir(pfd, tmp); /* a dead process's of the same pid */
        char tpath[4500];
        snprintf(tpath, sizeof tpath, "%s%s", parent, tmp);
        r = mms__os_mkdir(tpath);
        if (r)
            r = mms__fail(r, "cannot create %s: %s", tpath, mms_strerror(r));
    }
    if (!r) {
        r = copy_into(s, dest, parent, pfd, base, tmp, flags, st);
        if (r) {
            int keep = r;
            char detail[512];
            snprintf(detail, sizeof detail, "%s", mms_errdetail());
            remove_store_dir(pfd, tmp); /* a failed copy leaves nothing */
            r = mms__fail(keep, "%s", detail);
        }
    }
    mms__os_close(pfd);
    return r;
}

int mms_leftovers_remove(const char *path, const char *tag, unsigned *removed)
{
    mms__detail_clear();
    if (removed)
        *removed = 0;
    if (!path || !tag || strncmp(tag, ".mms-", 5) != 0 || strlen(tag) > 32 || strchr(tag, '/'))
        return mms__fail(MMS_EINVAL, "mms_leftovers_remove: a path and a tag \".mms-...-\" "
                         "are required");
    char base[256], parent[4100];
    int pfd = -1;
    int r = dest_split(path, base, sizeof base, parent, &pfd);
    if (r)
        return r;
    struct stale sl = {pfd, base, tag, 0};
    r = mms__os_dir_list(pfd, remove_stale, &sl);
    mms__os_close(pfd);
    if (removed)
        *removed = sl.removed;
    return r ? mms__fail(r, "cannot read the directory of %s: %s", path, mms_strerror(r)) : 0;
}

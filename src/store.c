/*
 * store.c -- creating, opening and closing a store; recovery; the store
 * header; refs, root and inspection.
 *
 * Opening is: take a place in the lock file (lock.c); if no other handle
 * has the store open, recover it from the journal and (re)initialise the
 * lock file; then, with the published state pinned, read the header and
 * map the regions. Nothing is parsed beyond the header: opening costs the
 * same for any store size.
 *
 * Creation is atomic: the journal and region-0-0.tmp are written and synced,
 * then renamed into place and the directory synced; a directory without
 * region-0-0 is not a store, whatever else it holds.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Process state: the open handles, fork detection.
 *
 * The list of open handles answers two questions the lock file cannot:
 * does this thread pin a handle of a store, or hold its writer lock through
 * another handle (either would make it wait for itself, lock.c); and, in a
 * forked child, which lock-file descriptors to close, so that the child's
 * copies do not keep the parent's locks alive after the parent is gone.
 * ------------------------------------------------------------------------ */
static unsigned long fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static mms_store *open_list;

static void on_fork_prepare(void)
{
    pthread_mutex_lock(&open_lock);
}
static void on_fork_parent(void)
{
    pthread_mutex_unlock(&open_lock);
}
static void on_fork_child(void)
{
    /* The inherited handles are dead here (MMS_EFORK); their lock files
     * must not hold the parent's OFD locks once the parent closes. */
    for (mms_store *h = open_list; h; h = h->next_open)
        if (h->lockfd >= 0) {
            mms__os_close(h->lockfd);
            h->lockfd = -1;
        }
    open_list = NULL;
    pthread_mutex_unlock(&open_lock);
    fork_gen++;
    mms__os_after_fork();
}
static void atfork_init(void)
{
    pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
}

static void open_add(mms_store *s)
{
    pthread_mutex_lock(&open_lock);
    s->next_open = open_list;
    open_list = s;
    pthread_mutex_unlock(&open_lock);
}

static void open_remove(mms_store *s)
{
    pthread_mutex_lock(&open_lock);
    for (mms_store **p = &open_list; *p; p = &(*p)->next_open)
        if (*p == s) {
            *p = s->next_open;
            break;
        }
    pthread_mutex_unlock(&open_lock);
}

static bool same_store(const mms_store *a, const mms_store *b)
{
    return a->L && b->L && memcmp(a->L->uuid, b->L->uuid, 16) == 0;
}

bool mms__pinned_by_me(const mms_store *s)
{
    uint32_t tid = mms__my_tid();
    bool yes = false;
    pthread_mutex_lock(&open_lock);
    for (const mms_store *h = open_list; h && !yes; h = h->next_open)
        yes = h->pin_tid == tid && same_store(h, s);
    pthread_mutex_unlock(&open_lock);
    return yes;
}

bool mms__writing_in_thread(const mms_store *s)
{
    uint32_t tid = mms__my_tid();
    bool yes = false;
    pthread_mutex_lock(&open_lock);
    for (const mms_store *h = open_list; h && !yes; h = h->next_open)
        yes = h != s && h->writer_tid == tid && same_store(h, s);
    pthread_mutex_unlock(&open_lock);
    return yes;
}

int mms__check_handle(const mms_store *s)
{
    if (!s)
        return mms__fail(MMS_EINVAL, "handle is NULL");
    if (s->fork_gen != fork_gen)
        return mms__fail(MMS_EFORK, "handle opened before fork() used in the child");
    if (s->poisoned)
        return mms__fail(MMS_EPOISONED, "an earlier I/O failure (%s) poisoned this handle",
                         mms_strerror(s->poisoned));
    return 0;
}

int mms__check_write(const mms_store *s)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state != MMS__ST_WRITE)
        return mms__fail((s->flags & MMS_RDONLY) ? MMS_ERDONLY : MMS_ENOTXN,
                         "this needs a write transaction");
    return 0;
}

/* ------------------------------------------------------------------------
 * Header
 * ------------------------------------------------------------------------ */
static void abi_mine(struct mms__abi *a)
{
    memset(a, 0, sizeof *a);
    uint16_t one = 1;
    a->endian = *(uint8_t *)&one ? MMS__ABI_LE : MMS__ABI_BE;
    a->ref_bits = 64;
    a->slot_bits = MMS_SLOT_BITS;
    a->page_shift = MMS__PAGE_SHIFT;
    a->seg_shift = MMS__SEG_SHIFT;
}

uint32_t mms__hdr_crc(const struct mms__hdr *h, const struct mms__rent *rt)
{
    uint32_t crc = mms__crc32c(0, h, offsetof(struct mms__hdr, crc));
    uint32_t n = h->nregions <= MMS_MAX_REGIONS ? h->nregions : MMS_MAX_REGIONS;
    return mms__crc32c(crc, rt, n * sizeof *rt);
}

/* The fields that never change after creation: a torn apply cannot damage
 * them, so they are checked before recovery. */
int mms__hdr_check_static(const struct mms__hdr *h, uint64_t file_size)
{
    if (h->magic == __builtin_bswap64(MMS__MAGIC))
        return mms__fail(MMS_EBYTEORDER, "the store was written on a machine of the other byte order");
    if (h->magic != MMS__MAGIC)
        return mms__fail(MMS_ENOTSTORE, "region 0 does not start with the mmstore magic");
    if (h->version != MMS_FORMAT_VERSION)
        return mms__fail(MMS_EVERSION, "the store has format version %u; this library reads %u",
                         h->version, MMS_FORMAT_VERSION);
    struct mms__abi mine;
    abi_mine(&mine);
    if (memcmp(&h->abi, &mine, sizeof mine) != 0 || h->page_size != MMS__PAGE ||
        h->hdr_pages != MMS__HDR_PAGES)
        return mms__fail(MMS_EABI, "the store's ABI fingerprint (page size %u, ref %u bits, "
                         "slot %u bits) differs from this library's",
                         h->page_size, h->abi.ref_bits, h->abi.slot_bits);
    if (file_size < MMS__SEG)
        return MMS__CORRUPT("region 0 is %llu bytes, shorter than one segment",
                            (unsigned long long)file_size);
    return 0;
}

/* Everything else, after recovery. */
static int hdr_check_full(const struct mms__hdr *h, const struct mms__rent *rt, uint64_t fsize)
{
    if (h->nregions == 0 || h->nregions > MMS_MAX_REGIONS)
        return MMS__CORRUPT("header: %u regions", h->nregions);
    if (h->crc != mms__hdr_crc(h, rt))
        return MMS__CORRUPT("header checksum mismatch");
    if (rt[0].kind != MMS__RK_HEAP || rt[0].gen != 0)
        return MMS__CORRUPT("header: region 0 is not the heap");
    if (rt[0].size < MMS__SEG || rt[0].size % MMS__SEG || rt[0].size > fsize)
        return MMS__CORRUPT("header: heap size %llu does not fit region 0's file of %llu bytes",
                            (unsigned long long)rt[0].size, (unsigned long long)fsize);
    for (uint32_t i = 1; i < h->nregions; i++)
        if (rt[i].kind != MMS__RK_NONE && rt[i].kind != MMS__RK_TABLE)
            return MMS__CORRUPT("header: region %u has unknown kind %u", i, rt[i].kind);
    /* mms_root_set() refuses a root outside its region; one here is damage. */
    if (h->root != MMS_REF_NULL && (MMS_REF_REGION(h->root) >= h->nregions ||
                                    MMS_REF_SLOT(h->root) >= rt[MMS_REF_REGION(h->root)].size))
        return MMS__CORRUPT("header: root ref 0x%llx is outside its region",
                            (unsigned long long)h->root);
    return 0;
}

/* ------------------------------------------------------------------------
 * Create
 * ------------------------------------------------------------------------ */
static int store_create_files(mms_store *s)
{
    int r, fd = -1;
    char *m = NULL;
    /* Leftovers of a creation that crashed are overwritten. */
    mms__os_unlinkat(s->dirfd, "journal");
    mms__os_unlinkat(s->dirfd, "region-0-0.tmp");
    r = mms__os_openat(s->dirfd, "region-0-0.tmp", O_RDWR | O_CREAT | O_EXCL, 0666);
    if (r < 0)
        return mms__fail(r, "cannot create region 0: %s", mms_strerror(r));
    fd = r;
    r = mms__os_fallocate(fd, 0, MMS__SEG);
    if (!r)
        r = mms__os_map(fd, MMS__SEG, true, &m);
    if (r) {
        r = mms__fail(r, "cannot create region 0: %s", mms_strerror(r));
        goto out;
    }
    s->view.base[0] = m;
    struct mms__hdr *h = mms__hdr(s);
    h->magic = MMS__MAGIC;
    h->version = MMS_FORMAT_VERSION;
    h->page_size = MMS__PAGE;
    abi_mine(&h->abi);
    mms__os_random(h->uuid, sizeof h->uuid);
    h->hdr_pages = MMS__HDR_PAGES;
    h->nregions = 1;
    h->created_ns = mms__os_now_ns();
    mms__rtab(s)[0].kind = MMS__RK_HEAP;
    mms__heap_init(s);
    h->crc = mms__hdr_crc(h, mms__rtab(s));
    r = mms__os_msync(m, MMS__SEG);
    struct mms__jstate *keep = s->J, tmp; /* the lock file is initialised after */
    s->J = &tmp;
    if (!r)
        r = mms__journal_create(s, h->uuid);
    s->J = keep;
    if (!r)
        r = mms__os_fdatasync(s->jfd);
    if (!r && renameat(s->dirfd, "region-0-0.tmp", s->dirfd, "region-0-0") < 0)
        r = -errno;
    if (!r)
        r = mms__os_fsync(s->dirfd);
    if (r)
        r = mms__fail(r, "cannot create the store: %s", mms_strerror(r));
out:
    s->view.base[0] = NULL;
    mms__os_unmap(m, MMS__SEG);
    mms__os_close(fd);
    mms__os_close(s->jfd);
    s->jfd = -1;
    return r;
}

/* ------------------------------------------------------------------------
 * Open
 * ------------------------------------------------------------------------ */
void mms_options_init(mms_options *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

static unsigned env_flags(unsigned flags)
{
    const char *g = getenv("MMS_GUARD");
#ifndef NDEBUG
    flags |= MMS_GUARD;
#endif
    if (flags & MMS_NOGUARD)
        flags &= ~MMS_GUARD;
    /* The environment wins over the flags (the tests force the guard on). */
    if (g && *g == '1')
        flags |= MMS_GUARD;
    if (g && *g == '0')
        flags &= ~MMS_GUARD;
    if (flags & MMS_RDONLY)
        flags &= ~MMS_GUARD; /* read-only mappings refuse stores anyway */
    return flags;
}

static unsigned env_backend(unsigned b)
{
    const char *e = getenv("MMS_DIRTY");
    if (e && strcmp(e, "scan") == 0)
        return MMS_DIRTY_SCAN;
    if (e && strcmp(e, "pagemap") == 0)
        return MMS_DIRTY_PAGEMAP;
    return b;
}

static void lock_detach(mms_store *s);

static void store_free(mms_store *s)
{
    if (!s)
        return;
    mms__tables_free(s);
    mms__map_unmap_all(s);
    lock_detach(s);
    mms__os_close(s->jfd);
    mms__os_close(s->dirty_fd);
    mms__os_close(s->dirfd);
    free(s->segmap);
    free(s->dirty.page);
    free(s->dirty.changed);
    free(s->jbuf);
    free(s->path);
    mms__os_unmap(s, sizeof *s);
}

/* Read region 0's header and region table (through fd, not a mapping). */
static int hdr_read(int fd, char *hbuf, uint64_t *fsize)
{
    int r = mms__os_fsize(fd, fsize);
    if (!r && *fsize < MMS__HDR_BYTES)
        r = *fsize < 8 ? mms__fail(MMS_ENOTSTORE, "region 0 is too short to be a store")
                       : MMS__CORRUPT("region 0 is %llu bytes, shorter than its header",
                                      (unsigned long long)*fsize);
    /* The header page and the region table entries in use: the rest of
     * hbuf is left alone (fewer bytes copied and, in a new process, fewer
     * stack pages touched; each first touch is a page fault). */
    if (!r)
        r = mms__os_pread(fd, hbuf, 2 * MMS__PAGE, 0);
    if (!r)
        r = mms__hdr_check_static((const struct mms__hdr *)(const void *)hbuf, *fsize);
    if (r)
        return r;
    uint32_t n = ((const struct mms__hdr *)(const void *)hbuf)->nregions;
    uint64_t need = MMS__PAGE + mms__round_up((uint64_t)(n < MMS_MAX_REGIONS ? n : MMS_MAX_REGIONS) *
                                              sizeof(struct mms__rent), MMS__PAGE);
    if (need > 2 * MMS__PAGE)
        r = mms__os_pread(fd, hbuf + 2 * MMS__PAGE, need - 2 * MMS__PAGE, 2 * MMS__PAGE);
    return r;
}

/*
 * Recovery (journal.c NOTES): bring the region files to the last valid
 * commit of the journal, make that a checkpoint, and publish it. Runs when
 * the first handle opens the store, and when a writer finds that the last
 * one died (then with the writer lock held and the gate closed).
 */
static int recover_hdr(mms_store *s, int fd, char *hbuf, uint64_t fsize);

int mms__recover(mms_store *s)
{
    char hbuf[MMS__HDR_BYTES];
    int fd;
    uint64_t fsize;
    int r = mms__region_open_file(s, 0, 0, false, false, &fd);
    if (r == -ENOENT)
        return mms__fail(MMS_ENOTSTORE, "%s holds no store (no region-0-0)", s->path);
    if (r)
        return r;
    r = hdr_read(fd, hbuf, &fsize);
    if (!r)
        r = recover_hdr(s, fd, hbuf, fsize);
    mms__os_close(fd);
    return r;
}

/* Recovery, with region 0 open as fd and its header read into hbuf. */
static int recover_hdr(mms_store *s, int fd, char *hbuf, uint64_t fsize)
{
    const struct mms__hdr *h = (const struct mms__hdr *)(const void *)hbuf;
    const struct mms__rent *rt = (const struct mms__rent *)(const void *)(hbuf + MMS__PAGE);
    uint64_t replayed, last;
    int r = mms__journal_load(s, h->uuid);
    if (!r)
        r = mms__journal_recover(s, h->txn_id, s->jfd_rw, &replayed, &last);
    if (!r && replayed)
        r = hdr_read(fd, hbuf, &fsize);
    if (!r)
        r = hdr_check_full(h, rt, fsize);
    if (!r && s->J->start_txn != UINT64_MAX && h->txn_id != last)
        r = MMS__CORRUPT("after recovery the header is at txn %llu, the journal at %llu",
                         (unsigned long long)h->txn_id, (unsigned long long)last);
    if (!r && s->jfd_rw && (replayed || s->J->start_txn == UINT64_MAX)) {
        /* Finish with a checkpoint (the replayed files are synced; a
         * foreign journal is replaced by one of this store). A reset writes
         * one slot; the other slot of a foreign journal would still name
         * the other store and win if ours were lost, so it is overwritten
         * too (Invariant 5). */
        bool foreign = s->J->start_txn == UINT64_MAX;
        r = mms__journal_reset(s, h->uuid, h->txn_id);
        if (!r && foreign)
            r = mms__journal_reset(s, h->uuid, h->txn_id);
    }
    /* The recovery ended with a checkpoint: no journal record names an old
     * region file any more. */
    if (!r && s->jfd_rw && (replayed || s->J->start_txn == UINT64_MAX))
        mms__gc_files(s, rt, h->nregions);
    if (!r)
        __atomic_store_n(&s->L->published, h->txn_id, __ATOMIC_RELEASE);
    return r;
}

/* Take a place in the lock file: *alone says whether any other handle has
 * the store open. A read-only handle on a read-only file system, where no
 * handle has the lock file open, keeps a private copy of it: nobody can
 * write the store there. */
static int lock_attach(mms_store *s, bool *alone)
{
    int fd = mms__os_openat(s->dirfd, "lock", O_RDWR | O_CREAT, 0666);
    if (fd == -EROFS && (s->flags & MMS_RDONLY)) {
        int rfd = mms__os_openat(s->dirfd, "lock", O_RDONLY, 0);
        int held = rfd >= 0 ? mms__os_ofd_probe(rfd, 0) : 0;
        mms__os_close(rfd);
        if (held)
            return mms__fail(MMS_EBUSY, "the store is in use by other handles, and this process "
                             "cannot write its lock file (read-only file system)");
        s->L = calloc(1, sizeof *s->L);
        if (!s->L)
            return -ENOMEM;
        s->L_private = true;
        *alone = true;
        return 0;
    }
    if (fd < 0)
        return mms__fail(fd, "cannot open the lock file: %s", mms_strerror(fd));
    s->lockfd = fd;
    int r = mms__os_ofd_lock(fd, 0, F_WRLCK, false);
    *alone = r == 0;
    if (r == MMS_EBUSY) /* others have it open; this also waits out an initialiser */
        r = mms__os_ofd_lock(fd, 0, F_RDLCK, true);
    if (r)
        return mms__fail(r, "cannot lock the lock file: %s", mms_strerror(r));
    uint64_t want = mms__round_up(sizeof(struct mms__lock), MMS__PAGE), size;
    r = mms__os_fsize(fd, &size);
    if (!r && *alone && size != want)
        r = mms__os_ftruncate(fd, want);
    else if (!r && size < want)
        r = mms__fail(MMS_EBUSY, "the lock file is in use by an incompatible version of mmstore");
    char *m;
    if (!r)
        r = mms__os_map(fd, want, true, &m);
    if (r)
        return r;
    s->L = (struct mms__lock *)(void *)m;
    return 0;
}

static void lock_detach(mms_store *s)
{
    if (s->L && s->L_private)
        free(s->L);
    else if (s->L)
        mms__os_unmap(s->L, mms__round_up(sizeof(struct mms__lock), MMS__PAGE));
    s->L = NULL;
    s->L_private = false;
    s->J = NULL;
    mms__os_close(s->lockfd); /* drops every OFD lock of this handle */
    s->lockfd = -1;
}

/* The first handle: recover the store and (re)initialise the lock file. */
static int open_alone(mms_store *s, const mms_options *o, bool exists)
{
    if (!exists) /* looked at before the lock; another process may have created it */
        exists = faccessat(s->dirfd, "region-0-0", F_OK, 0) == 0;
    int r;
    if (!exists) {
        if (!(o->flags & MMS_CREATE))
            return mms__fail(MMS_ENOTSTORE, "%s holds no store (no region-0-0)", s->path);
        r = store_create_files(s);
        if (r)
            return r;
    } else if ((o->flags & MMS_CREATE) && (o->flags & MMS_EXCL)) {
        return mms__fail(-EEXIST, "%s already holds a store", s->path);
    }
    char hbuf[MMS__HDR_BYTES];
    uint64_t fsize;
    int fd;
    r = mms__region_open_file(s, 0, 0, false, false, &fd);
    if (r)
        return r;
    r = hdr_read(fd, hbuf, &fsize);
    if (!r) {
        mms__lock_init(s->L, ((const struct mms__hdr *)(const void *)hbuf)->uuid);
        s->J = &s->L->j;
        r = mms__journal_open(s);
    }
    if (!r)
        r = recover_hdr(s, fd, hbuf, fsize);
    mms__os_close(fd);
    if (r)
        return r;
    __atomic_store_n(&s->L->init_done, 1, __ATOMIC_RELEASE);
    if (!s->L_private)
        r = mms__os_ofd_lock(s->lockfd, 0, F_RDLCK, false); /* atomic downgrade */
    return r;
}

/* Other handles have it open: the lock file is theirs and ours. */
enum { OPEN_RETRY = 1 };
static int open_shared(mms_store *s, const mms_options *o, bool exists)
{
    if (!exists && faccessat(s->dirfd, "region-0-0", F_OK, 0) != 0)
        return mms__fail(MMS_ENOTSTORE, "%s holds no store (no region-0-0)", s->path);
    if ((o->flags & MMS_CREATE) && (o->flags & MMS_EXCL))
        return mms__fail(-EEXIST, "%s already holds a store", s->path);
    char hbuf[MMS__HDR_BYTES];
    uint64_t fsize;
    int fd;
    int r = mms__region_open_file(s, 0, 0, false, false, &fd);
    if (!r) {
        r = hdr_read(fd, hbuf, &fsize);
        mms__os_close(fd);
    }
    if (r)
        return r;
    if (!mms__lock_valid(s->L, ((const struct mms__hdr *)(const void *)hbuf)->uuid)) {
        if (__atomic_load_n(&s->L->init_done, __ATOMIC_ACQUIRE) == 0 &&
            s->L->magic == MMS__LMAGIC)
            return OPEN_RETRY; /* the handle that was initialising it failed */
        return mms__fail(MMS_EBUSY, "the store is open elsewhere but its lock file is not valid "
                         "(another version of mmstore, or a copied directory)");
    }
    s->J = &s->L->j;
    return mms__journal_open(s);
}

/* With the published state pinned: read the header, map the regions. */
static int map_pinned(mms_store *s)
{
    char hbuf[MMS__HDR_BYTES];
    const struct mms__hdr *h = (const struct mms__hdr *)(const void *)hbuf;
    const struct mms__rent *rt = (const struct mms__rent *)(const void *)(hbuf + MMS__PAGE);
    uint64_t fsize;
    int fd;
    int r = mms__region_open_file(s, 0, 0, false, !(s->flags & MMS_RDONLY), &fd);
    if (r)
        return r;
    r = hdr_read(fd, hbuf, &fsize);
    if (!r)
        r = hdr_check_full(h, rt, fsize);
    if (r) {
        mms__os_close(fd);
        return r;
    }
    memcpy(s->hdr_fixed, hbuf, sizeof s->hdr_fixed);
    r = mms__map_region(s, 0, fd, 0, rt[0].size);
    if (!r)
        r = mms__map_follow(s); /* the tables */
    return r;
}

static int recover_for_pin(void *ctx);

int mms_open(const char *path, const mms_options *o, mms_store **out)
{
    mms__detail_clear();
    pthread_once(&atfork_once, atfork_init);
    if (out)
        *out = NULL;
    if (!path || !out || !*path)
        return mms__fail(MMS_EINVAL, "mms_open: path and out are required");
    mms_options def = {0};
    if (!o)
        o = &def;
    const unsigned known = MMS_CREATE | MMS_EXCL | MMS_RDONLY | MMS_NOSYNC | MMS_GUARD | MMS_NOGUARD;
    if (o->flags & ~known)
        return mms__fail(MMS_EINVAL, "mms_open: unknown flags 0x%x", o->flags & ~known);
    if ((o->flags & MMS_RDONLY) && (o->flags & MMS_CREATE))
        return mms__fail(MMS_EINVAL, "mms_open: MMS_CREATE with MMS_RDONLY");
    if (o->dirty > MMS_DIRTY_PAGEMAP)
        return mms__fail(MMS_EINVAL, "mms_open: unknown dirty backend %u", o->dirty);
    if (mms__os_page_size() != MMS__PAGE)
        return mms__fail(MMS_ENOTSUP, "the system page size is %ld; mmstore needs 4096",
                         mms__os_page_size());

    /* 70 KB, mostly the region array: mapped, not calloc'd, so that only
     * the pages in use are ever touched (reg[i] is valid for i < nmapped). */
    mms_store *s;
    if (mms__os_anon(sizeof *s, (char **)&s))
        return -ENOMEM;
    s->dirfd = s->jfd = s->lockfd = s->dirty_fd = -1;
    s->slot = UINT32_MAX;
    s->fork_gen = fork_gen;
    s->flags = env_flags(o->flags);
    s->reserve = o->reserve ? mms__round_up(o->reserve, MMS__SEG) : 0; /* 0: map.c's defaults */
    s->grow_step = o->grow_step ? o->grow_step : (uint64_t)64 << 20;
    s->checkpoint_bytes = o->checkpoint_bytes ? o->checkpoint_bytes : (uint64_t)64 << 20;
    const char *keep = getenv("MMS_KEEP_PAGES");
    s->keep_pages = keep ? (unsigned)strtoul(keep, NULL, 10) : 64;
    s->path = strdup(path);
    int r = s->path ? 0 : -ENOMEM;
    if (r)
        goto fail;

    struct stat st;
    if (stat(path, &st) < 0) {
        r = -errno;
        if (r != -ENOENT || !(o->flags & MMS_CREATE)) {
            r = mms__fail(r, "%s: %s", path, strerror(-r));
            goto fail;
        }
        r = mms__os_mkdir(path);
        if (r && r != -EEXIST) {
            r = mms__fail(r, "cannot create %s: %s", path, mms_strerror(r));
            goto fail;
        }
        if (stat(path, &st) < 0) {
            r = mms__fail(-errno, "%s: %s", path, strerror(errno));
            goto fail;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        r = mms__fail(-ENOTDIR, "%s is not a directory (a store is a directory)", path);
        goto fail;
    }
    r = mms__os_open(path, O_RDONLY | O_DIRECTORY, 0);
    if (r < 0) {
        r = mms__fail(r, "cannot open %s: %s", path, mms_strerror(r));
        goto fail;
    }
    s->dirfd = r;
    bool exists = faccessat(s->dirfd, "region-0-0", F_OK, 0) == 0;
    if (!exists && !(o->flags & MMS_CREATE)) {
        r = mms__fail(MMS_ENOTSTORE, "%s holds no store (no region-0-0)", path);
        goto fail;
    }

    bool alone = false;
    for (int attempt = 0;; attempt++) {
        r = lock_attach(s, &alone);
        if (!r)
            r = alone ? open_alone(s, o, exists) : open_shared(s, o, exists);
        if (r != OPEN_RETRY || attempt == 10)
            break;
        lock_detach(s);
        mms__os_close(s->jfd);
        s->jfd = -1;
    }
    if (r == OPEN_RETRY)
        r = mms__fail(MMS_EBUSY, "the lock file stays uninitialised: another process keeps "
                      "failing to open the store");
    if (!r)
        r = s->L_private ? 0 : mms__slot_claim(s);
    if (r)
        goto fail;
    if (s->L_private) {
        r = map_pinned(s);
        s->seen = s->L->published;
    } else {
        uint64_t txn;
        r = mms__pin(s, &txn, recover_for_pin, s);
        if (!r) {
            r = map_pinned(s);
            s->seen = txn;
            mms__unpin(s);
        }
    }
    if (r)
        goto fail;
    if (!(s->flags & MMS_RDONLY)) {
        r = mms__os_dirty_open(env_backend(o->dirty), &s->dirty_fd, &s->dirty_backend);
        if (r)
            goto fail;
        s->jbuf_cap = 65536;
        s->jbuf = malloc(s->jbuf_cap);
        if (!s->jbuf) {
            r = -ENOMEM;
            goto fail;
        }
    }
    open_add(s);
    *out = s;
    return 0;
fail:
    if (s->L && !s->L_private && s->slot != UINT32_MAX)
        mms__slot_release(s);
    store_free(s);
    return r;
}

/* A reader found the gate closed by a writer that died: take the writer
 * lock and recover (lock.c NOTES). 0 to go on waiting or retry. */
static int recover_for_pin(void *ctx)
{
    mms_store *s = ctx;
    int r = mms__writer_lock(s, false);
    if (r == MMS_EBUSY)
        return 0; /* someone else holds it: they will open the gate */
    if (r)
        return r;
    r = mms__recover_live(s);
    mms__writer_unlock(s);
    return r;
}

/* Holding the writer lock: repair what a dead writer left. */
int mms__recover_live(mms_store *s)
{
    if (!__atomic_load_n(&s->L->recover_needed, __ATOMIC_ACQUIRE) &&
        !(__atomic_load_n(&s->L->gate, __ATOMIC_ACQUIRE) & 1) &&
        s->J->start_txn != UINT64_MAX)
        return 0;
    if (!s->jfd_rw)
        return mms__fail(MMS_ERECOVER, "a writer died; recovering needs write access to the "
                         "store's files, which this process lacks");
    if (mms__pinned_by_me(s))
        return mms__fail(MMS_ETXN, "this thread is inside a read transaction on this store, "
                         "and recovery must wait for it to end");
    /* A gate a dead writer left closed guards half-applied files; one that
     * was open guards nothing, and is opened again if recovery fails. */
    bool was_open = !(__atomic_load_n(&s->L->gate, __ATOMIC_ACQUIRE) & 1);
    int r = mms__gate_close(s);
    if (!r)
        r = mms__recover(s);
    if (r) {
        if (was_open)
            mms__gate_reopen(s->L);
        return r;
    }
    __atomic_store_n(&s->L->recover_needed, 0, __ATOMIC_RELEASE);
    mms__gate_open(s->L, s->L->published);
    return 0;
}

int mms_close(mms_store *s)
{
    if (!s)
        return 0;
    int r = 0;
    if (s->fork_gen == fork_gen) {
        int was_poisoned = s->poisoned;
        if (s->state == MMS__ST_WRITE)
            r = mms_txn_abort(s);
        if (s->read_active)
            mms_read_end(s);
        /* Checkpoint when no other writer is busy: a store left alone has
         * an empty journal. */
        if (!(s->flags & MMS_RDONLY) && !s->poisoned && s->L && s->J &&
            s->J->end > MMS__JDATA && mms__writer_enter(s, false) == 0) {
            int r2 = mms__checkpoint(s);
            if (r2) /* the shared journal state may be behind the file */
                __atomic_store_n(&s->L->recover_needed, 1, __ATOMIC_RELEASE);
            mms__writer_unlock(s);
            if (!r)
                r = r2;
        }
        if (!r && !was_poisoned)
            r = s->poisoned; /* the abort above failed to re-arm the guard */
        if (s->L && !s->L_private && s->slot != UINT32_MAX)
            mms__slot_release(s);
        open_remove(s);
    }
    store_free(s);
    return r;
}

/* ------------------------------------------------------------------------
 * Refs and root
 * ------------------------------------------------------------------------ */
/* What of region id a pointer may reach: its size, but no further than
 * this handle has mapped (outside a read transaction the header may be
 * ahead of the mappings). */
static uint64_t region_size(const mms_store *s, unsigned id)
{
    if (id >= s->nmapped || !s->view.base[id] || id >= mms__hdr(s)->nregions)
        return 0;
    uint64_t size = mms__rtab(s)[id].size;
    return size < s->reg[id].mapped ? size : s->reg[id].mapped;
}

void *mms_ptr(const mms_store *s, mms_ref r)
{
    if (!s || r == MMS_REF_NULL)
        return NULL;
    unsigned id = MMS_REF_REGION(r);
    if (MMS_REF_SLOT(r) >= region_size(s, id)) {
        mms__fail(MMS_ERANGE, "ref 0x%llx is outside region %u", (unsigned long long)r, id);
        return NULL;
    }
    return mms_deref(s, r);
}

int mms_ref_of(const mms_store *s, const void *p, mms_ref *out)
{
    if (!s || !p || !out)
        return mms__fail(MMS_EINVAL, "mms_ref_of: NULL argument");
    const char *c = p;
    for (unsigned id = 0; id < s->nmapped; id++) {
        const char *b = s->view.base[id];
        if (b && c >= b && (uint64_t)(c - b) < region_size(s, id)) {
            *out = MMS_REF_MAKE(id, (uint64_t)(c - b));
            return 0;
        }
    }
    return mms__fail(MMS_EINVAL, "pointer %p is not inside the store", p);
}

mms_ref mms_root(const mms_store *s)
{
    return s ? mms__hdr(s)->root : MMS_REF_NULL;
}

int mms_root_set(mms_store *s, mms_ref ref)
{
    int r = mms__check_write(s);
    if (r)
        return r;
    if (ref != MMS_REF_NULL && MMS_REF_SLOT(ref) >= region_size(s, MMS_REF_REGION(ref)))
        return mms__fail(MMS_ERANGE, "root ref 0x%llx is outside its region",
                         (unsigned long long)ref);
    mms__hdr(s)->root = ref;
    return 0;
}

uint64_t mms_txn_id(const mms_store *s)
{
    return s ? mms__hdr(s)->txn_id : 0;
}

/* ------------------------------------------------------------------------
 * Inspection
 * ------------------------------------------------------------------------ */
int mms_info_get(const mms_store *s, mms_info *info)
{
    if (!s || !info)
        return mms__fail(MMS_EINVAL, "mms_info_get: NULL argument");
    if (s->fork_gen != fork_gen)
        return mms__fail(MMS_EFORK, "handle opened before fork() used in the child");
    memset(info, 0, sizeof *info);
    const struct mms__hdr *h = mms__hdr(s);
    info->format_version = h->version;
    info->txn_id = h->txn_id;
    info->nregions = h->nregions;
    for (uint32_t i = 0; i < h->nregions && i < s->nmapped; i++) {
        info->region_size[i] = mms__rtab(s)[i].size;
        info->region_file[i] = s->reg[i].mapped;
    }
    info->journal_bytes = s->J->end - MMS__JDATA;
    info->heap_used = h->live_bytes;
    info->heap_free = h->free_bytes;
    info->heap_objects = h->live_count;
    info->dirty_backend = s->dirty_backend;
    info->guard = !!(s->flags & MMS_GUARD);
    const struct mms__lock *L = s->L;
    /* A dead process's pid stays in the file until someone takes over; the
     * kernel's locks say who is really there. */
    info->writer_pid = (s->state == MMS__ST_WRITE || (!s->L_private && mms__writer_held(s)))
                           ? L->writer_pid : 0;
    info->published_txn = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < MMS__NSLOTS && !s->L_private; i++) {
        uint32_t pid = __atomic_load_n(&L->slot[i].pid, __ATOMIC_ACQUIRE);
        if (pid && mms__slot_alive(s, i)) {
            info->handles++;
            info->active_readers += __atomic_load_n(&L->slot[i].active, __ATOMIC_ACQUIRE) != 0;
        }
    }
    info->last_commit = s->stats;
    return 0;
}

int mms_readers(mms_store *s, mms_reader_info *out, size_t cap, size_t *n)
{
    if (!s || !n || (cap && !out))
        return mms__fail(MMS_EINVAL, "mms_readers: NULL argument");
    if (s->fork_gen != fork_gen)
        return mms__fail(MMS_EFORK, "handle opened before fork() used in the child");
    size_t k = 0;
    uint64_t now = mms__os_mono_ns();
    for (uint32_t i = 0; i < MMS__NSLOTS && !s->L_private; i++) {
        const struct mms__rslot *sl = &s->L->slot[i];
        uint32_t pid = __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE);
        if (pid == 0)
            continue;
        if (k < cap) {
            mms_reader_info *r = &out[k];
            r->pid = pid;
            r->active = __atomic_load_n(&sl->active, __ATOMIC_ACQUIRE) != 0;
            r->txn = sl->txn;
            r->age_ns = r->active && now > sl->since_ns ? now - sl->since_ns : 0;
            r->alive = mms__slot_alive(s, i);
        }
        k++;
    }
    *n = k;
    return 0;
}

int mms_readers_clear_stale(mms_store *s, unsigned *cleared)
{
    if (!s)
        return mms__fail(MMS_EINVAL, "mms_readers_clear_stale: NULL handle");
    if (s->fork_gen != fork_gen)
        return mms__fail(MMS_EFORK, "handle opened before fork() used in the child");
    unsigned n = 0;
    if (!s->L_private)
        mms__slots_reclaim(s, &n);
    if (cleared)
        *cleared = n;
    return 0;
}

static int verify_pinned(mms_store *s, char *msg, size_t cap);

int mms_verify(mms_store *s, char *msg, size_t cap)
{
    char local[512];
    if (!msg || cap == 0) {
        msg = local;
        cap = sizeof local;
    }
    msg[0] = 0;
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state == MMS__ST_WRITE || s->read_active)
        return mms__fail(MMS_ETXN, "mms_verify inside a transaction");
    /* Check one whole committed state, the latest, with no writer adding to
     * the journal meanwhile. */
    r = mms__writer_enter(s, true);
    if (r)
        return r;
    r = mms_read_begin(s);
    if (!r) {
        r = verify_pinned(s, msg, cap);
        mms_read_end(s);
    }
    mms__writer_unlock(s);
    return r;
}

static int verify_pinned(mms_store *s, char *msg, size_t cap)
{
    int r;
    const struct mms__hdr *h = mms__hdr(s);
    r = mms__hdr_check_static(h, s->reg[0].mapped);
    if (!r)
        r = hdr_check_full(h, mms__rtab(s), s->reg[0].mapped);
    if (r) {
        snprintf(msg, cap, "%s", mms_errdetail());
        return r == MMS_ENOTSUP ? r : MMS_ECORRUPT;
    }
    uint64_t groups, bytes;
    r = mms__journal_check(s, &groups, &bytes, msg, cap);
    if (!r)
        r = mms__heap_verify(s, msg, cap);
    if (!r)
        r = mms__tables_verify(s, msg, cap);
    if (r)
        mms__fail(r, "%s", msg);
    return r;
}

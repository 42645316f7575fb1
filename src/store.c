/*
 * store.c -- creating, opening and closing a store; the store header; refs,
 * root and inspection.
 *
 * Opening is: lock, read and check the header's fixed fields, replay the
 * journal (recovery), check the whole header, map the regions. Nothing is
 * parsed beyond the header: opening costs the same for any store size.
 *
 * Creation is atomic: the files are written under temporary names' cover,
 * region 0 last, renamed into place and the directory synced; a directory
 * without region-0-0 is not a store, whatever else it holds.
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
 * Process state: fork detection and the registry of open stores.
 * ------------------------------------------------------------------------ */
static unsigned long fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
/* The registry lock is held across fork() so the child's copy is sane. */
static void on_fork_prepare(void)
{
    pthread_mutex_lock(&reg_lock);
}
static void on_fork_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
}
static void on_fork_child(void)
{
    pthread_mutex_unlock(&reg_lock);
    fork_gen++;
    mms__os_after_fork();
}
static void atfork_init(void)
{
    pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
}

static struct open_store {
    dev_t dev;
    ino_t ino;
    struct open_store *next;
} *open_stores;

static int registry_add(dev_t dev, ino_t ino)
{
    int r = 0;
    pthread_mutex_lock(&reg_lock);
    for (struct open_store *o = open_stores; o; o = o->next)
        if (o->dev == dev && o->ino == ino)
            r = mms__fail(MMS_EBUSY, "the store is already open in this process");
    if (!r) {
        struct open_store *o = malloc(sizeof *o);
        if (!o) {
            r = -ENOMEM;
        } else {
            o->dev = dev;
            o->ino = ino;
            o->next = open_stores;
            open_stores = o;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return r;
}

static void registry_remove(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&reg_lock);
    for (struct open_store **p = &open_stores; *p; p = &(*p)->next)
        if ((*p)->dev == dev && (*p)->ino == ino) {
            struct open_store *o = *p;
            *p = o->next;
            free(o);
            break;
        }
    pthread_mutex_unlock(&reg_lock);
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
        if (rt[i].kind != MMS__RK_NONE)
            return mms__fail(MMS_ENOTSUP, "region %u is a table; this version has no tables", i);
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
    if (!r)
        r = mms__journal_open(s, true);
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

static void store_free(mms_store *s)
{
    if (!s)
        return;
    mms__map_unmap_all(s);
    mms__os_close(s->jfd);
    mms__os_close(s->lockfd);
    mms__os_close(s->dirty_fd);
    mms__os_close(s->dirfd);
    free(s->segmap);
    free(s->dirty.page);
    free(s->dirty.changed);
    free(s->jbuf);
    free(s->path);
    free(s);
}

static int store_open_existing(mms_store *s)
{
    char hbuf[MMS__HDR_BYTES];
    struct mms__hdr *h = (struct mms__hdr *)(void *)hbuf;
    const struct mms__rent *rt = (const struct mms__rent *)(void *)(hbuf + MMS__PAGE);
    int fd;
    uint64_t fsize;
    int r = mms__region_open_file(s, 0, 0, false, &fd);
    if (r == -ENOENT)
        return mms__fail(MMS_ENOTSTORE, "%s holds no store (no region-0-0)", s->path);
    if (r)
        return r;
    r = mms__os_fsize(fd, &fsize);
    if (!r && fsize < MMS__HDR_BYTES)
        r = fsize < 8 ? mms__fail(MMS_ENOTSTORE, "region 0 is too short to be a store")
                      : MMS__CORRUPT("region 0 is %llu bytes, shorter than its header",
                                     (unsigned long long)fsize);
    if (!r)
        r = mms__os_pread(fd, hbuf, MMS__HDR_BYTES, 0);
    if (!r)
        r = mms__hdr_check_static(h, fsize);
    if (r)
        goto fail;
    /* The journal header names the store; give journal_open the uuid. */
    s->view.base[0] = hbuf;
    r = mms__journal_open(s, false);
    s->view.base[0] = NULL;
    if (r)
        goto fail;
    uint64_t replayed, last;
    r = mms__journal_recover(s, h->txn_id, &replayed, &last);
    if (r)
        goto fail;
    if (replayed)
        r = mms__os_pread(fd, hbuf, MMS__HDR_BYTES, 0);
    if (!r)
        r = mms__os_fsize(fd, &fsize);
    if (!r)
        r = hdr_check_full(h, rt, fsize);
    if (!r && s->jstart_txn != UINT64_MAX && h->txn_id != last)
        r = MMS__CORRUPT("after recovery the header is at txn %llu, the journal at %llu",
                         (unsigned long long)h->txn_id, (unsigned long long)last);
    if (r)
        goto fail;
    r = mms__map_region(s, 0, fd, 0, rt[0].size);
    if (r)
        return r;
    memcpy(s->hdr_fixed, hbuf, sizeof s->hdr_fixed);
    if (!(s->flags & MMS_RDONLY) && (replayed || s->jstart_txn == UINT64_MAX)) {
        /* Finish recovery with a checkpoint (the replayed files are synced;
         * a foreign journal is replaced by one of this store). A reset
         * writes one slot; the other slot of a foreign journal would still
         * name the other store and win if ours were lost, so it is
         * overwritten too (Invariant 5). */
        bool foreign = s->jstart_txn == UINT64_MAX;
        r = mms__journal_reset(s, mms__hdr(s)->txn_id);
        if (!r && foreign)
            r = mms__journal_reset(s, mms__hdr(s)->txn_id);
        if (r)
            return r;
    }
    return 0;
fail:
    mms__os_close(fd);
    return r;
}

/* The lock: one read-write handle, or any number of read-only ones. A
 * read-only open of a store whose lock file is missing creates it if it can,
 * and goes without if the file system refuses (then no writer can exist). */
static int store_lock(mms_store *s)
{
    bool ro = s->flags & MMS_RDONLY;
    int r = mms__os_openat(s->dirfd, "lock", ro ? O_RDONLY : O_RDWR | O_CREAT, 0666);
    if (r == -ENOENT && ro) {
        r = mms__os_openat(s->dirfd, "lock", O_RDWR | O_CREAT, 0666);
        if (r == -EROFS || r == -EACCES)
            return 0;
    }
    if (r < 0)
        return mms__fail(r, "cannot open the lock file: %s", mms_strerror(r));
    s->lockfd = r;
    r = mms__os_lock(s->lockfd, !ro);
    if (r == MMS_EBUSY)
        return mms__fail(r, "another process has the store open%s", ro ? " for writing" : "");
    return r;
}

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

    mms_store *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->dirfd = s->jfd = s->lockfd = s->dirty_fd = -1;
    for (int i = 0; i < MMS_MAX_REGIONS; i++)
        s->reg[i].fd = -1;
    s->fork_gen = fork_gen;
    s->flags = env_flags(o->flags);
    s->reserve = o->reserve ? mms__round_up(o->reserve, MMS__SEG) : (uint64_t)256 << 30;
    s->grow_step = o->grow_step ? o->grow_step : (uint64_t)64 << 20;
    s->checkpoint_bytes = o->checkpoint_bytes ? o->checkpoint_bytes : (uint64_t)64 << 20;
    const char *keep = getenv("MMS_KEEP_PAGES");
    s->keep_pages = keep ? (unsigned)strtoul(keep, NULL, 10) : 64;
    s->path = strdup(path);
    int r = s->path ? 0 : -ENOMEM;
    bool registered = false;
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
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    r = registry_add(s->dev, s->ino);
    if (r)
        goto fail;
    registered = true;
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
    r = store_lock(s);
    if (r)
        goto fail;

    exists = faccessat(s->dirfd, "region-0-0", F_OK, 0) == 0; /* again, under the lock */
    if (exists && (o->flags & MMS_CREATE) && (o->flags & MMS_EXCL)) {
        r = mms__fail(-EEXIST, "%s already holds a store", path);
        goto fail;
    }
    if (!exists && (o->flags & MMS_CREATE)) {
        r = store_create_files(s);
        if (r)
            goto fail;
    }
    r = store_open_existing(s);
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
    *out = s;
    return 0;
fail:
    if (registered)
        registry_remove(s->dev, s->ino);
    store_free(s);
    return r;
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
        if (!(s->flags & MMS_RDONLY) && !s->poisoned && s->jend > MMS__JDATA) {
            int r2 = mms__checkpoint(s);
            if (!r)
                r = r2;
        }
        if (!r && !was_poisoned)
            r = s->poisoned; /* the abort above failed to re-arm the guard */
    }
    /* Also in a forked child, so that it can open the store itself. */
    registry_remove(s->dev, s->ino);
    store_free(s);
    return r;
}

/* ------------------------------------------------------------------------
 * Refs and root
 * ------------------------------------------------------------------------ */
static uint64_t region_size(const mms_store *s, unsigned id)
{
    if (id >= s->nmapped || !s->view.base[id] || id >= mms__hdr(s)->nregions)
        return 0;
    return mms__rtab(s)[id].size;
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
    info->journal_bytes = s->jend - MMS__JDATA;
    info->heap_used = h->live_bytes;
    info->heap_free = h->free_bytes;
    info->heap_objects = h->live_count;
    info->dirty_backend = s->dirty_backend;
    info->guard = !!(s->flags & MMS_GUARD);
    info->last_commit = s->stats;
    return 0;
}

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
    if (s->state == MMS__ST_WRITE)
        return mms__fail(MMS_ETXN, "mms_verify inside a write transaction");
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
    if (r)
        mms__fail(r, "%s", msg);
    return r;
}

/*
 * store.c -- creating, opening and closing a store; refs, root and
 * inspection (info, readers, verify).
 *
 * Layer 8, the top: calls txn.c, table.c, recover.c, hdr.c, journal.c,
 * alloc.c, map.c, lock.c and os.c; nothing in src/ calls it. It must never
 * hold the steps of a protocol itself: it puts a handle together from the
 * layers below and takes it apart.
 *
 * Opening is: take a place in the lock file (lock.c); if no other handle
 * has the store open, recover it from the journal and (re)initialise the
 * lock file; then, with the published state pinned, read the header and
 * map the regions. Nothing is parsed beyond the header: opening costs the
 * same for any store size.
 *
 * Creation is atomic: the journal and region-0-0.tmp are written and synced,
 * then renamed into place and the directory synced; a directory without
 * region-0-0 is not a store, whatever else it holds. A create that is
 * refused, at whatever step, takes back what it made and nothing else
 * (create_undo).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READER_LIMIT_MS 1000 /* mms_options.reader_limit_ms when 0 */

/* ------------------------------------------------------------------------
 * Create
 * ------------------------------------------------------------------------ */
static int store_create_files(mms_store *s, const struct mms__fixed *fixed, bool *renamed)
{
    int r, fd = -1;
    char *m = NULL;
    *renamed = false;
    /* Leftovers of a creation that crashed are overwritten. */
    mms__os_unlinkat(s->dirfd, "journal");
    mms__os_unlinkat(s->dirfd, "region-0-0.tmp");
    r = mms__os_openat(s->dirfd, "region-0-0.tmp", O_RDWR | O_CREAT | O_EXCL, 0666);
    if (r < 0)
        return mms__fail(r, "cannot create region 0: %s", mms_strerror(r));
    fd = r;
    r = mms__os_fallocate(fd, 0, MMS__GROW_ALIGN);
    if (!r)
        r = mms__os_map(fd, MMS__GROW_ALIGN, true, &m);
    if (r) {
        r = mms__fail(r, "cannot create region 0: %s", mms_strerror(r));
        goto out;
    }
    s->view.base[0] = m;
    struct mms__hdr *h = mms__hdr(s);
    mms__hdr_format(h, mms__rtab(s));
    h->fixed = *fixed;
    mms__heap_init(s);
    h->crc = mms__hdr_crc(h, mms__rtab(s));
    r = mms__os_msync(m, MMS__GROW_ALIGN);
    struct mms__jstate *keep = s->J, tmp; /* the lock file is initialised after */
    s->J = &tmp;
    if (!r)
        r = mms__journal_create(s, h->uuid);
    s->J = keep;
    if (!r)
        r = mms__os_fdatasync(s->jfd);
    if (!r && !(r = mms__os_renameat(s->dirfd, "region-0-0.tmp", "region-0-0")))
        *renamed = true; /* a failure from here on: the caller takes the store back */
    if (!r)
        r = mms__os_fsync(s->dirfd);
    if (r)
        r = mms__fail(r, "cannot create the store: %s", mms_strerror(r));
out:
    s->view.base[0] = NULL;
    mms__os_unmap(m, MMS__GROW_ALIGN);
    mms__os_close(fd);
    mms__os_close(s->jfd);
    s->jfd = -1;
    if (r && !*renamed) { /* no store: take back what it wrote (a full disk keeps no 40 KB) */
        mms__os_unlinkat(s->dirfd, "journal");
        mms__os_unlinkat(s->dirfd, "region-0-0.tmp");
    }
    return r;
}

/* The layout a new store records (mmstore.h, "Fixed-address mode"): all
 * zero without MMS_FIXED. */
static int store_fixed_layout(mms_store *s, const mms_options *o, struct mms__fixed *f)
{
    memset(f, 0, sizeof *f);
    if (!(o->flags & MMS_FIXED))
        return 0;
    if (o->reserve > MMS__ADDR_END) /* and rounding it up cannot wrap to 0 */
        return mms__fail(MMS_EINVAL, "mms_open: fixed layout: reserve %llu is more than the "
                         "address space (128 TiB)", (unsigned long long)o->reserve);
    f->heap = o->reserve ? mms__round_up(o->reserve, MMS__SEG) : (uint64_t)256 << 30;
    f->table = mms__round_up(f->heap / 4, MMS__SEG);
    f->base = o->base;
    /* A default base (4 TiB steps, the heap fits below the end) is good. */
    const char *why = f->base ? mms__fixed_bad(f) : NULL;
    if (why)
        return mms__fail(MMS_EINVAL, "mms_open: fixed layout (base 0x%llx, reserve %llu): %s",
                         (unsigned long long)f->base, (unsigned long long)f->heap, why);
    return mms__map_fixed_base(s, f->heap, &f->base); /* before any file is made */
}

/* What an open with MMS_CREATE made, so that a refused create takes it back
 * (mmstore.h, MMS_CREATE): the directory (mkdir), the lock file (made with
 * O_EXCL before the lock is taken: one that was there is not ours), the
 * store (region-0-0 renamed into place, and its journal) at txn. */
struct open_made {
    bool dir, lock, store;
    bool lock_init; /* the store made, the lock file then initialised at txn: */
    uint64_t txn;   /* the lock file's committed txn then */
};

/* A refused create leaves nothing it made, and removes nothing else: not
 * a directory or a file that was there before, nor a store another handle
 * has open or committed to since it was made (a concurrent opener that
 * came in after it keeps it). Byte 0 of the lock file, exclusively, says
 * no other handle has the store open: the first handle holds it until its
 * open is done (open_alone), and takes it back now if it let go of it. */
static void create_undo(mms_store *s, const struct open_made *m)
{
    if (!m->dir && !m->lock && !m->store)
        return;
    if (s->lockfd >= 0 && !s->L_private && mms__os_ofd_lock(s->lockfd, 0, F_WRLCK, false) != 0)
        return; /* open elsewhere: theirs now too */
    bool is_dir;
    if (s->dirfd >= 0 && m->store) {
        if (m->lock_init && __atomic_load_n(&s->L->committed, __ATOMIC_ACQUIRE) != m->txn)
            return; /* another handle committed to it */
        mms__os_unlinkat(s->dirfd, "region-0-0");
        mms__os_unlinkat(s->dirfd, "journal");
    }
    /* The lock file goes only with the store it was made for: a store
     * another process made in the meantime keeps it. */
    if (s->dirfd >= 0 && m->lock && mms__os_stat(s->dirfd, "region-0-0", &is_dir) == -ENOENT)
        mms__os_unlinkat(s->dirfd, "lock");
    if (!m->dir)
        return;
    /* The directory made, if the path still names it; not empty (another
     * process's files): it stays. */
    uint64_t a[2], b[2];
    if (s->dirfd < 0 || (mms__os_file_id(s->dirfd, ".", a) == 0 &&
                         mms__os_file_id(AT_FDCWD, s->path, b) == 0 && a[0] == b[0] &&
                         a[1] == b[1]))
        mms__os_rmdirat(AT_FDCWD, s->path);
}

/* ------------------------------------------------------------------------
 * Open
 * ------------------------------------------------------------------------ */
MMS__OPEN_PATH
void mms_options_init(mms_options *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

/* The environment variables mmstore.h documents (mms_open, MMS_HUGE):
 * a value outside theirs is an error, not ignored -- MMS_GUARD=on left the
 * guard off without a word, MMS_GUARD=1abc counted as 1. An empty one is
 * taken as unset (`MMS_GUARD= prog`). Checked once per open, before they
 * are read. */
static bool env_one_of(const char *v, const char *values)
{
    size_t n = strlen(v);
    for (const char *p = values; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, v, n) == 0)
            return true;
        p += len + (bar != NULL);
    }
    return false;
}

static int env_check(void)
{
    static const struct {
        const char *name, *values;
    } vars[] = {{"MMS_GUARD", "0|1|mprotect"}, {"MMS_HUGE", "0|1"}, {"MMS_DIRTY", "scan|pagemap"}};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i].name);
        if (v && *v && !env_one_of(v, vars[i].values)) /* empty: as unset */
            return mms__fail(MMS_EINVAL, "the environment variable %s is \"%.40s\"; it takes "
                             "%s (or unset it)", vars[i].name, v, vars[i].values);
    }
    const char *k = getenv("MMS_KEEP_PAGES");
    if (k && *k && (strspn(k, "0123456789") != strlen(k) || strlen(k) > 6))
        return mms__fail(MMS_EINVAL, "the environment variable MMS_KEEP_PAGES is \"%.40s\"; it "
                         "takes a number of pages, 0 to 999999 (or unset it)", k);
    return 0;
}

static unsigned env_flags(unsigned flags)
{
    flags = mms__guard_flags(flags); /* the environment wins (guard.c) */
    const char *h = getenv("MMS_HUGE"); /* as MMS_GUARD: wins over MMS_NOHUGE */
    if (h && *h == '1')
        flags &= ~MMS_NOHUGE;
    if (h && *h == '0')
        flags |= MMS_NOHUGE;
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
    mms__index_handles_free(s);
    mms__tables_free(s);
    mms__ix_free(s);
    mms__held_free(s);
    mms__map_unmap_all(s);
    mms__map_early_drop(s);
    mms__guard_close(s); /* guard.c G5: after the last mapping */
    mms__lock_detach(s);
    mms__os_close(s->jfd);
    mms__os_close(s->dirty_fd);
    mms__os_close(s->wp_fd);
    mms__os_close(s->hdr_fd);
    mms__os_close(s->dirfd);
    free(s->segmap);
    free(s->dirty.page);
    free(s->dirty.changed);
    free(s->quiet.page);
    free(s->quiet.changed);
    free(s->jbuf);
    free(s->recbuf);
    mms__refset_free(&s->txn_deleted);
    mms__refset_free(&s->txn_freed);
    mms__refset_free(&s->txn_released);
    mms__refset_free(&s->lib_set);
    mms__heap_holders_free(s);
    free(s->path);
    mms__os_unmap(s, sizeof *s);
}

/* Open region-0-0 into s->hdr_fd (for writing in a handle that may
 * write: the same descriptor is mapped later). Returns 0, -ENOENT if the
 * directory holds no store (yet), or another error. Opening mms_open does
 * once: every later step of the open reads the header through this one
 * descriptor (region 0 is never replaced once created, so opening it before
 * the lock is taken names the same file as after). */
MMS__OPEN_PATH
static int hdr_open(mms_store *s)
{
    if (s->hdr_fd >= 0)
        return 0;
    int r = mms__os_openat(s->dirfd, "region-0-0", (s->flags & MMS_RDONLY) ? O_RDONLY : O_RDWR, 0);
    if (r == -ENOENT)
        return r; /* no message: the callers say what it means */
    if (r == MMS_ECORRUPT)
        return r; /* not a regular file: the detail says so */
    if ((r == -EACCES || r == -EPERM) && !(s->flags & MMS_RDONLY))
        return mms__fail(r, "cannot open region file region-0-0: %s (this process may not "
                         "write the store: MMS_RDONLY reads it)", mms_strerror(r));
    if (r < 0)
        return mms__fail(r, "cannot open region file region-0-0: %s", mms_strerror(r));
    s->hdr_fd = r;
    return 0;
}

static int no_store(const char *path)
{
    return mms__fail(MMS_ENOTSTORE, "%s holds no store (no region-0-0)", path);
}

static int not_a_dir(const char *path)
{
    return mms__fail(-ENOTDIR, "%s is not a directory (a store is a directory)", path);
}

/* The header, mapped once by open_alone or open_shared (mms__hdr_map),
 * read by map_pinned once the published state is pinned, unmapped by
 * mms_open. Region 0's size as the first handle measured it (after
 * recovery, for txn) is still right if nothing was published since: then
 * map_pinned does not measure it again (a warm open pays for every system
 * call). Open_shared's measure is not kept: made without a pin. */
struct open_hdr {
    const struct mms__hdrbuf *b;
    uint64_t fsize, txn;
    bool fsize_ok;
    bool early; /* b is region 0's early mapping (map.c's to give back) */
};

/* Without MMS_FIXED the header is read through region 0's own mapping,
 * made early (mms__map_early0) and kept by map_pinned: one mapping of
 * region 0 and one reservation for it and the first table, where a
 * separate mapping of the header was made and unmapped again. With
 * MMS_FIXED the header says where region 0 goes: it is read first. */
static int open_hdr_map(mms_store *s, int fd, struct open_hdr *oh, uint64_t *fsize)
{
    if (s->flags & MMS_FIXED)
        return mms__hdr_map(fd, &oh->b, fsize);
    oh->early = true;
    return mms__hdr_map_region0(s, fd, &oh->b, fsize);
}

static void open_hdr_unmap(mms_store *s, struct open_hdr *oh)
{
    if (oh->early && s->early0) /* not adopted by map_pinned (yet): with the spare */
        mms__map_early_drop(s);
    else if (!oh->early)
        mms__hdr_unmap(oh->b);
    oh->b = NULL;
    oh->early = false;
}

/* The first handle: recover the store and (re)initialise the lock file. */
static int open_alone(mms_store *s, const mms_options *o, bool exists, struct open_hdr *oh,
                      struct open_made *made)
{
    int r = 0;
    if (!exists) { /* looked at before the lock; another process may have created it */
        r = hdr_open(s);
        exists = r == 0;
        if (r && r != -ENOENT)
            return r;
    }
    if (!exists) {
        if (!(o->flags & MMS_CREATE))
            return no_store(s->path);
        struct mms__fixed fixed;
        r = store_fixed_layout(s, o, &fixed);
        if (!r)
            r = store_create_files(s, &fixed, &made->store);
        if (!r)
            r = hdr_open(s);
        if (r)
            return r;
    } else if ((o->flags & MMS_CREATE) && (o->flags & MMS_EXCL)) {
        return mms__fail(-EEXIST, "%s already holds a store", s->path);
    }
    const struct mms__hdrbuf *b;
    uint64_t fsize;
    int fd = s->hdr_fd;
    bool space_left = true; /* did the last handles leave space to give back? */
    open_hdr_unmap(s, oh); /* an open_shared that must try again mapped it */
    r = open_hdr_map(s, fd, oh, &fsize);
    b = oh->b;
    if (!r) {
        space_left = !mms__lock_valid(s->L, b->h.uuid) || s->L->space_left;
        mms__lock_init(s, b->h.uuid);
        made->txn = __atomic_load_n(&s->L->committed, __ATOMIC_ACQUIRE);
        made->lock_init = made->store;
        s->J = &s->L->j;
        r = mms__journal_open(s);
    }
    if (!r)
        r = mms__recover_at(s, fd, b, &fsize);
    if (!r && !(s->flags & MMS_RDONLY))
        r = mms__space_give_back_at_open(s, fd, b, &fsize, space_left);
    else if (!r)
        s->L->space_left = space_left; /* for a handle that may write */
    if (r)
        return r;
    oh->fsize = fsize;
    oh->txn = b->h.txn_id;
    oh->fsize_ok = true;
    __atomic_store_n(&s->L->init_done, 1, __ATOMIC_RELEASE);
    if (!s->L_private)
        r = mms__os_ofd_lock(s->lockfd, 0, F_RDLCK, false); /* atomic downgrade */
    return r;
}

/* Other handles have it open: the lock file is theirs and ours. */
enum { OPEN_RETRY = 1 };
static int open_shared(mms_store *s, const mms_options *o, bool exists, struct open_hdr *oh)
{
    int r = exists ? 0 : hdr_open(s);
    if (r == -ENOENT)
        return no_store(s->path);
    if (r)
        return r;
    if ((o->flags & MMS_CREATE) && (o->flags & MMS_EXCL))
        return mms__fail(-EEXIST, "%s already holds a store", s->path);
    uint64_t fsize;
    if (!oh->b && (r = open_hdr_map(s, s->hdr_fd, oh, &fsize)))
        return r;
    /* A process that may not write the lock file takes it as it is, when
     * it can trust it (lock.c, "Readers that cannot write"). */
    if (s->unslotted && (r = mms__lock_trust(s, oh->b->h.uuid)) != 0)
        return r;
    if (!mms__lock_valid(s->L, oh->b->h.uuid)) { /* the uuid never changes */
        if (__atomic_load_n(&s->L->init_done, __ATOMIC_ACQUIRE) == 0 &&
            s->L->magic == MMS__LMAGIC)
            return OPEN_RETRY; /* the handle that was initialising it failed */
        return mms__fail(MMS_EBUSY, "the store is open elsewhere but its lock file is not valid "
                         "(another version of mmstore, or a copied directory)");
    }
    s->J = &s->L->j;
    return mms__journal_open(s);
}

/* The layout the store records: with MMS_FIXED the one the handle maps at,
 * in every handle the limits of its regions' growth. */
static int fixed_take(mms_store *s, const mms_options *o, const struct mms__hdr *h)
{
    s->fixed = h->fixed;
    if (!(s->flags & MMS_FIXED))
        return 0;
    if (!h->fixed.base)
        return mms__fail(MMS_EINVAL, "%s was created without MMS_FIXED: it records no "
                         "addresses (open it without MMS_FIXED)", s->path);
    if (o->base && o->base != h->fixed.base)
        return mms__fail(MMS_EADDR, "%s is recorded at 0x%llx, not at the base 0x%llx asked "
                         "for", s->path, (unsigned long long)h->fixed.base,
                         (unsigned long long)o->base);
    return 0;
}

/* With the published state (txn) pinned: read the header (unless the
 * first handle's read is of that state), map the regions. */
MMS__OPEN_PATH
static int map_pinned(mms_store *s, const mms_options *o, struct open_hdr *oh, uint64_t txn)
{
    int fd = s->hdr_fd; /* opened by open_dir or open_lock, for writing if we may */
    s->hdr_fd = -1;     /* closed below or owned by the mapping */
    int r = 0;
    if (!oh->b)
        r = open_hdr_map(s, fd, oh, &oh->fsize);
    else if (!oh->fsize_ok || oh->txn != txn)
        r = mms__os_fsize(fd, &oh->fsize);
    const struct mms__hdrbuf *b = oh->b;
    if (!r)
        r = mms__hdr_check_full(&b->h, b->rt, oh->fsize);
    if (!r)
        r = fixed_take(s, o, &b->h);
    if (r) {
        mms__os_close(fd);
        return r;
    }
    memcpy(s->hdr_fixed, &b->h, sizeof s->hdr_fixed);
    r = mms__map_region(s, 0, fd, 0, b->rt[0].size, oh->fsize); /* measured already */
    if (!r)
        r = mms__tables_follow(s); /* the tables */
    mms__map_opened(s); /* the catalog is read: region 0 gets read-ahead back */
    return r;
}

/* The pin watcher's apply (apply.c, P2): open a handle of the watcher's
 * own, apply, close it; true if an unslotted reader shut the gate again. */
static bool pinwatch_apply(const mms_store *s)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    mms_store *h = NULL;
    bool again = false;
    if (mms_open(s->path, &o, &h) == 0) {
        mms__apply_try(h); /* P4: errors dropped */
        again = h->gate_unslotted;
        mms_close(h);
    }
    mms__detail_clear();
    return again;
}

/* The arguments, and a new handle with the options applied. */
static int open_new_handle(const char *path, const mms_options *o, mms_store **out)
{
    if (!path || !out || !*path)
        return mms__fail(MMS_EINVAL, "mms_open: path and out are required");
    const unsigned known = MMS_CREATE | MMS_EXCL | MMS_RDONLY | MMS_NOSYNC | MMS_GUARD |
                           MMS_NOGUARD | MMS_BACKLOG_ERROR | MMS_FIXED | MMS_NORDAHEAD |
                           MMS_NOHUGE | MMS_GUARD_MPROTECT;
    if (o->flags & ~known)
        return mms__fail(MMS_EINVAL, "mms_open: unknown flags 0x%x", o->flags & ~known);
    if (o->base && !(o->flags & MMS_FIXED))
        return mms__fail(MMS_EINVAL, "mms_open: a base without MMS_FIXED");
    if ((o->flags & MMS_RDONLY) && (o->flags & MMS_CREATE))
        return mms__fail(MMS_EINVAL, "mms_open: MMS_CREATE with MMS_RDONLY");
    if (o->dirty > MMS_DIRTY_PAGEMAP)
        return mms__fail(MMS_EINVAL, "mms_open: unknown dirty backend %u", o->dirty);
    if (o->grow_step > MMS__GROW_STEP_MAX) /* a region's size plus it must not wrap */
        return mms__fail(MMS_EINVAL, "mms_open: a grow_step of %llu bytes is past 1 TiB",
                         (unsigned long long)o->grow_step);
    if (mms__os_page_size() != MMS__PAGE)
        return mms__fail(MMS_ENOTSUP, "the system page size is %ld; mmstore needs 4096",
                         mms__os_page_size());
    int r = env_check();
    if (r)
        return r;
    /* 100 KB, mostly the region array and the view: mapped, not calloc'd,
     * so that only the pages in use are ever touched (reg[i] is valid for
     * i < nmapped). calloc clears it all: 23 more faults in a new process,
     * measured. Every open touches its first 4 pages (the view's base[0]
     * and unit[0], the fields and reg[0]): made at once. */
    mms_store *s;
    if (mms__os_anon(sizeof *s, offsetof(mms_store, reg[2]), (char **)&s))
        return -ENOMEM;
    s->dirfd = s->jfd = s->lockfd = s->dirty_fd = s->wp_fd = s->hdr_fd = -1;
    s->slot = UINT32_MAX;
    s->cat_at = s->cat_at_mem;
    mms__registry_init(s);
    s->flags = env_flags(o->flags);
    mms__guard_open(s); /* before the first mapping: it may be tagged */
    const char *ra = getenv("MMS_RDAHEAD_HEAP"); /* 1: no advice on region 0 while opening */
    s->heap_random = !(ra && strcmp(ra, "1") == 0);
    s->opening = true;
    s->reserve = o->reserve ? mms__round_up(o->reserve, MMS__SEG) : 0; /* 0: map.c's defaults */
    s->grow_step = o->grow_step ? o->grow_step : (uint64_t)64 << 10;
    s->checkpoint_bytes = o->checkpoint_bytes ? o->checkpoint_bytes : (uint64_t)64 << 20;
    s->max_backlog = o->max_backlog ? o->max_backlog : (uint64_t)64 << 20;
    s->sync_ns = (uint64_t)(o->sync_ms ? o->sync_ms : 100) * 1000000u;
    s->pinwatch_apply = pinwatch_apply;
    s->reader_limit_ns =
        (uint64_t)(o->reader_limit_ms ? o->reader_limit_ms : READER_LIMIT_MS) * 1000000u;
    const char *keep = getenv("MMS_KEEP_PAGES");
    s->keep_pages = keep && *keep ? (unsigned)strtoul(keep, NULL, 10) : 64;
    s->trim_gap = 1;
    const char *check = getenv("MMS_CHECK_QUIET"); /* tests: view.c, "Quiet commits" */
    s->quiet_check = check && strcmp(check, "1") == 0;
    const char *trim = getenv("MMS_TRIM_SCAN_NS"); /* tests: 0 trims at every commit */
    s->trim_scan_ns = trim ? strtoull(trim, NULL, 10) : 40000;
    s->path = strdup(path);
    *out = s;
    return s->path ? 0 : -ENOMEM;
}

/* The store's directory, made if it is missing and MMS_CREATE says so;
 * *exists: whether it holds a store (then region 0 is open in s->hdr_fd).
 * Opened first and looked at only on failure: a warm open pays for no
 * stat. */
static int open_dir(mms_store *s, const mms_options *o, bool *exists, struct open_made *made)
{
    const char *path = s->path;
    int r = mms__os_open(path, O_RDONLY | O_DIRECTORY, 0);
    if (r == -ENOENT && (o->flags & MMS_CREATE)) {
        r = mms__os_mkdir(path);
        if (r && r != -EEXIST) /* the caller says "cannot create": the path and the cause */
            return mms__fail(r, "%s: %s", path, mms_strerror(r));
        made->dir = r == 0;
        r = mms__os_open(path, O_RDONLY | O_DIRECTORY, 0);
    }
    if (r == -ENOTDIR) {
        bool is_dir = true;
        if (mms__os_stat(AT_FDCWD, path, &is_dir) == 0 && !is_dir)
            return not_a_dir(path);
    }
    if (r < 0)
        return mms__fail(r, "%s: %s", path, mms_strerror(r));
    s->dirfd = r;
    r = hdr_open(s);
    *exists = r == 0;
    if (r == -ENOENT && !(o->flags & MMS_CREATE))
        return no_store(s->path);
    return r == -ENOENT ? 0 : r;
}

/* A place in the lock file, a recovered store, a reader slot. */
static int open_lock(mms_store *s, const mms_options *o, bool exists, struct open_hdr *oh,
                     struct open_made *made)
{
    bool alone = false;
    int r;
    if (!exists && (o->flags & MMS_CREATE)) { /* is the lock file ours? (create_undo) */
        r = mms__os_openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0666);
        if (r < 0 && r != -EEXIST)
            return mms__fail(r, "cannot open the lock file: %s", mms_strerror(r));
        made->lock = r >= 0;
        mms__os_close(r);
    }
    for (int attempt = 0;; attempt++) {
        r = mms__lock_attach(s, &alone);
        if (!r)
            r = alone ? open_alone(s, o, exists, oh, made) : open_shared(s, o, exists, oh);
        if (r != OPEN_RETRY || attempt == 10)
            break;
        mms__lock_detach(s);
        mms__os_close(s->jfd);
        s->jfd = -1;
    }
    if (r == OPEN_RETRY)
        r = mms__fail(MMS_EBUSY, "the lock file stays uninitialised: another process keeps "
                      "failing to open the store");
    if (!r && !s->L_private && !s->unslotted)
        r = mms__slot_claim(s);
    return r;
}

/* The mappings, of the state published now. */
static int open_map(mms_store *s, const mms_options *o, struct open_hdr *oh)
{
    if (s->L_private) {
        s->seen = s->L->published;
        return map_pinned(s, o, oh, s->seen);
    }
    uint64_t txn;
    int r = mms__pin(s, &txn, mms__pin_stuck, s);
    if (r)
        return r;
    r = map_pinned(s, o, oh, txn);
    s->seen = txn;
    mms__unpin(s);
    return r;
}

/* What a handle that may write needs besides: the dirty-page backend and
 * the journal buffer. */
static int open_writer(mms_store *s, const mms_options *o)
{
    if (s->flags & MMS_RDONLY)
        return 0;
    int r = mms__os_dirty_open(env_backend(o->dirty), &s->dirty_fd, &s->dirty_backend);
    if (r)
        return r;
    /* Write protection of held pages (txn.c): only where the scan can tell
     * written pages; MMS_WP=0 turns it off (to measure it). */
    const char *wp = getenv("MMS_WP");
    if (s->dirty_backend == MMS_DIRTY_SCAN && !(wp && strcmp(wp, "0") == 0)) {
        s->wp_fd = mms__os_wp_open();
        if (s->wp_fd < 0)
            s->wp_fd = -1; /* no userfaultfd here: every private page is diffed */
    }
    s->jbuf_cap = 65536;
    s->jbuf = malloc(s->jbuf_cap);
    return s->jbuf ? 0 : -ENOMEM;
}

MMS__OPEN_PATH
int mms_open(const char *path, const mms_options *o, mms_store **out)
{
    mms__detail_clear();
    if (out)
        *out = NULL;
    mms_options def = {0};
    if (!o)
        o = &def;
    if (!out)
        return mms__fail(MMS_EINVAL, "mms_open: path and out are required");
    mms_store *s = NULL;
    bool exists = false;
    struct open_hdr oh = {NULL, 0, 0, false, false};
    struct open_made made = {false, false, false, false, 0};
    int r = open_new_handle(path, o, &s);
    if (!r)
        r = open_dir(s, o, &exists, &made);
    if (!r)
        r = open_lock(s, o, exists, &oh, &made);
    if (!r)
        r = open_map(s, o, &oh);
    if (!r)
        r = open_writer(s, o);
    open_hdr_unmap(s, &oh);
    if (r) {
        if (s && s->L && !s->L_private && s->slot != UINT32_MAX)
            mms__slot_release(s);
        if (s)
            create_undo(s, &made);
        store_free(s);
        return r;
    }
    mms__registry_add(s);
    *out = s;
    return 0;
}

int mms_release_memory(mms_store *s)
{
    if (!s)
        return mms__fail(MMS_EINVAL, "mms_release_memory: NULL handle");
    if (mms__forked(s))
        return mms__check_fork(s);
    mms__map_release(s);
    return 0;
}

int mms_close(mms_store *s)
{
    if (!s)
        return 0;
    int r = 0;
    if (!mms__forked(s)) {
        int was_poisoned = s->poisoned;
        /* First: the syncer uses the journal and the reader slot
         * (apply.c S5); what it left unsynced is synced just below. */
        mms__syncer_stop(s);
        if (s->state == MMS__ST_WRITE)
            r = mms_txn_abort(s);
        if (s->state == MMS__ST_READ)
            mms_read_end(s);
        /* MMS_NOSYNC: what this handle committed becomes durable, so that
         * other handles may apply it. */
        if ((s->flags & MMS_NOSYNC) && !s->poisoned && s->L && !s->L_private &&
            !s->unslotted) {
            int r2 = mms__make_durable(s);
            if (!r)
                r = r2;
        }
        /* Checkpoint when no other writer is busy and no reader holds
         * commits back: a store left alone has an empty journal. */
        if (!(s->flags & MMS_RDONLY) && !s->poisoned && s->L && s->J &&
            (s->J->end > MMS__JDATA || __atomic_load_n(&s->L->space_left, __ATOMIC_RELAXED)) &&
            mms__writer_enter_timed(s, 0) == 0) {
            int r2 = mms__checkpoint(s, false);
            if (r2) /* the shared journal state may be behind the file */
                __atomic_fetch_or(&s->L->recover_needed, 1, __ATOMIC_ACQ_REL);
            mms__writer_unlock(s);
            if (!r)
                r = r2;
        }
        if (!r && !was_poisoned)
            r = s->poisoned; /* the abort above failed to re-arm the guard */
        /* After the last apply above (which may have started it): the pin
         * watcher reads the lock file through the handle (apply.c P5). */
        mms__pinwatch_stop(s);
        if (s->L && !s->L_private && s->slot != UINT32_MAX)
            mms__slot_release(s);
        mms__registry_remove(s);
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
    if (!s) {
        mms__fail(MMS_EINVAL, "mms_ptr: handle is NULL");
        return NULL;
    }
    if (r == MMS_REF_NULL)
        return NULL;
    unsigned id = MMS_REF_REGION(r);
    /* A table's slot is a record index (MMS_REC): the whole record must be
     * inside; a region without records (an index: unit 0) has no refs. */
    uint64_t unit = id < s->nmapped ? s->view.unit[id] : 0;
    if (!unit || MMS_REF_SLOT(r) >= region_size(s, id) / unit) {
        mms__fail(MMS_ERANGE, "ref 0x%llx is outside region %u", (unsigned long long)r, id);
        return NULL;
    }
    return mms_rec(s, r);
}

int mms_ref_of(const mms_store *s, const void *p, mms_ref *out)
{
    if (!s || !p || !out)
        return mms__fail(MMS_EINVAL, "mms_ref_of: NULL argument");
    const char *c = p;
    for (unsigned id = 0; id < s->nmapped; id++) {
        const char *b = s->view.base[id];
        if (b && c >= b && (uint64_t)(c - b) < region_size(s, id)) {
            uint64_t off = (uint64_t)(c - b), unit = s->view.unit[id];
            /* A table's ref is a record index, not a byte offset (MMS_REC) */
            if (id && (!unit || off % unit))
                return mms__fail(MMS_EINVAL, "pointer %p is inside a record of region %u, "
                                 "not at its start", p, id);
            *out = MMS_REF_MAKE(id, id ? off / unit : off);
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
    /* In the heap, the start of a live allocation: not the store header,
     * the allocator's own pages, free space or the middle of an object. */
    uint64_t usable;
    if (ref != MMS_REF_NULL && MMS_REF_REGION(ref) == 0 &&
        mms__alloc_usable(s, ref, &usable) != 0)
        return mms__fail(MMS_EBADREF, "root ref 0x%llx is not the start of a live allocation",
                         (unsigned long long)ref);
    /* Nor one of the library's own (the catalog, a field list): the
     * library moves and frees those, and the root would then name
     * whatever took its place. */
    if (ref != MMS_REF_NULL && (r = mms__heap_lib_refuse(s, ref, "mms_root_set")) != 0)
        return r;
    /* Elsewhere a live record of a table (mms_verify's rule): not an
     * index's slot, nor a record past the end or deleted. The commit
     * keeps it so (mms__tables_check_deletes). */
    if (ref != MMS_REF_NULL && MMS_REF_REGION(ref) != 0) {
        const struct mms__tabent *e = mms__catalog_by_region(s, MMS_REF_REGION(ref));
        if (!e)
            return mms__fail(MMS_ERANGE, "root ref 0x%llx: region %u is no table",
                             (unsigned long long)ref, MMS_REF_REGION(ref));
        if (!mms__catalog_live(s, e, MMS_REF_SLOT(ref)))
            return mms__fail(MMS_ERANGE, "root ref 0x%llx: table %s has no live record %llu",
                             (unsigned long long)ref, e->name,
                             (unsigned long long)MMS_REF_SLOT(ref));
    }
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
/* A reader inside for longer than reader_limit_ms while commits wait. */
static bool holding_back(const struct mms__lock *L, const struct mms__rslot *sl,
                         uint64_t limit_ns, uint64_t now)
{
    uint64_t since = sl->since_ns;
    return __atomic_load_n(&sl->active, __ATOMIC_ACQUIRE) &&
           __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE) >
               __atomic_load_n(&L->published, __ATOMIC_ACQUIRE) &&
           now > since && now - since > limit_ns;
}

int mms_info_get(const mms_store *s, mms_info *info)
{
    if (!s || !info)
        return mms__fail(MMS_EINVAL, "mms_info_get: NULL argument");
    if (mms__forked(s))
        return mms__check_fork(s);
    mms__guard_enter(s, false); /* guard.c G2: a thread may read once it asked */
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
    /* The free pages past the heap's top (alloc.c NOTES) are not in the
     * file yet: not counted. */
    uint64_t top = mms__rtab(s)[0].size;
    info->heap_free = h->free_bytes - (mms__round_up(top, MMS__SEG) - top);
    info->heap_objects = h->live_count;
    info->dirty_backend = s->dirty_backend;
    info->guard = !!(s->flags & MMS_GUARD);
    info->guard_kind = mms__guard_kind(s);
    const struct mms__lock *L = s->L;
    /* A dead process's pid stays in the file until someone takes over; the
     * kernel's locks say who is really there. */
    info->writer_pid = (s->state == MMS__ST_WRITE || (!s->L_private && mms__writer_held(s)))
                           ? L->writer_pid : 0;
    info->published_txn = __atomic_load_n(&L->published, __ATOMIC_ACQUIRE);
    info->committed_txn = __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE);
    info->durable_txn = __atomic_load_n(&L->durable, __ATOMIC_ACQUIRE);
    info->backlog_bytes = s->shadow_pages * MMS__PAGE;
    info->held_protected = s->wp_fd >= 0;
    info->commits_unscanned = s->quiet_commits;
    uint64_t now = mms__os_mono_ns();
    for (uint32_t i = 0; i < MMS__NSLOTS && !s->L_private; i++) {
        uint32_t pid = __atomic_load_n(&L->slot[i].pid, __ATOMIC_ACQUIRE);
        if (pid && mms__slot_alive(s, i)) {
            info->handles++;
            info->active_readers += __atomic_load_n(&L->slot[i].active, __ATOMIC_ACQUIRE) != 0;
            info->readers_holding_back += holding_back(L, &L->slot[i], s->reader_limit_ns, now);
        }
    }
    info->last_commit = s->stats;
    info->fixed_base = h->fixed.base;
    info->fixed_heap_reserve = h->fixed.heap;
    info->fixed_table_reserve = h->fixed.table;
    info->fixed = !!(s->flags & MMS_FIXED);
    return 0;
}

/* The slots in use of lock file L into out[0..cap); how many there are.
 * own: the asking handle's slot (UINT32_MAX: none), alive without a probe. */
static size_t readers_fill(const struct mms__lock *L, int lockfd, uint32_t own, uint64_t limit_ns,
                           mms_reader_info *out, size_t cap)
{
    size_t k = 0;
    uint64_t now = mms__os_mono_ns();
    for (uint32_t i = 0; i < MMS__NSLOTS; i++) {
        const struct mms__rslot *sl = &L->slot[i];
        uint32_t pid = __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE);
        if (pid == 0)
            continue;
        if (k < cap) {
            mms_reader_info *r = &out[k];
            r->pid = pid;
            r->active = __atomic_load_n(&sl->active, __ATOMIC_ACQUIRE) != 0;
            r->txn = sl->txn;
            r->age_ns = r->active && now > sl->since_ns ? now - sl->since_ns : 0;
            r->alive = i == own || mms__slot_held(lockfd, i);
            uint64_t c = __atomic_load_n(&L->committed, __ATOMIC_ACQUIRE);
            r->behind = r->active && c > r->txn ? c - r->txn : 0;
            r->holding_back = holding_back(L, sl, limit_ns, now);
        }
        k++;
    }
    return k;
}

int mms_readers(mms_store *s, mms_reader_info *out, size_t cap, size_t *n)
{
    if (!s || !n || (cap && !out))
        return mms__fail(MMS_EINVAL, "mms_readers: NULL argument");
    if (mms__forked(s))
        return mms__check_fork(s);
    *n = s->L_private ? 0 : readers_fill(s->L, s->lockfd, s->slot, s->reader_limit_ns, out, cap);
    return 0;
}

/* The lock file of the store in path, without opening the store: *L
 * NULL when no handle has it open. mms__lock_unpeek lets go. */
static int peek_path(const char *path, const struct mms__lock **L, int *lfd)
{
    *L = NULL;
    *lfd = -1;
    int dfd = mms__os_open(path, O_RDONLY | O_DIRECTORY, 0);
    if (dfd == -ENOTDIR)
        return not_a_dir(path);
    if (dfd < 0)
        return mms__fail(dfd, "%s: %s", path, mms_strerror(dfd));
    bool is_dir;
    int r = mms__os_stat(dfd, "region-0-0", &is_dir);
    if (r == -ENOENT)
        r = no_store(path);
    if (!r)
        r = mms__lock_peek(dfd, L, lfd);
    mms__os_close(dfd);
    return r;
}

int mms_readers_path(const char *path, mms_reader_info *out, size_t cap, size_t *n)
{
    mms__detail_clear();
    if (!path || !n || (cap && !out))
        return mms__fail(MMS_EINVAL, "mms_readers_path: NULL argument");
    *n = 0;
    const struct mms__lock *L;
    int lfd;
    int r = peek_path(path, &L, &lfd);
    if (!r && L)
        *n = readers_fill(L, lfd, UINT32_MAX, (uint64_t)READER_LIMIT_MS * 1000000u, out, cap);
    mms__lock_unpeek(L, lfd);
    return r;
}

int mms_readers_unslotted_path(const char *path, unsigned *open, unsigned *inside)
{
    mms__detail_clear();
    if (!path || !open || !inside)
        return mms__fail(MMS_EINVAL, "mms_readers_unslotted_path: NULL argument");
    *open = *inside = 0;
    const struct mms__lock *L;
    int lfd;
    int r = peek_path(path, &L, &lfd);
    unsigned slotted = 0;
    for (uint32_t i = 0; !r && L && i < MMS__NSLOTS; i++)
        slotted += __atomic_load_n(&L->slot[i].pid, __ATOMIC_ACQUIRE) && mms__slot_held(lfd, i);
    if (!r && L && (r = mms__lock_unslotted(lfd, slotted, open, inside)))
        r = mms__fail(r, "cannot read the kernel's lock table (/proc/locks): %s",
                      mms_strerror(r));
    mms__lock_unpeek(L, lfd);
    return r;
}

int mms_readers_clear_stale(mms_store *s, unsigned *cleared)
{
    if (!s)
        return mms__fail(MMS_EINVAL, "mms_readers_clear_stale: NULL handle");
    if (mms__forked(s))
        return mms__check_fork(s);
    unsigned n = 0;
    if (!s->L_private)
        mms__slots_reclaim(s, &n);
    if (cleared)
        *cleared = n;
    return 0;
}

int mms__at_latest(mms_store *s, const char *what, int (*check)(mms_store *s, void *ctx),
                   void *ctx)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (s->state != MMS__ST_IDLE)
        return mms__fail(MMS_ETXN, "%s inside a transaction", what);
    /* A handle that may not write the lock file cannot hold the writer
     * off (lock.c, "Readers that cannot write"): the published state,
     * pinned, is the one it checks. */
    if (s->unslotted) {
        r = mms_read_begin(s);
        if (!r) {
            r = check(s, ctx);
            mms_read_end(s);
        }
        return r;
    }
    /* One whole committed state, the latest, with no writer adding to the
     * journal meanwhile: commits readers hold back are applied first
     * (waiting for those readers), when this process can write the files. */
    r = mms__writer_enter_timed(s, -1);
    if (r)
        return r;
    if (s->jfd_rw)
        r = mms__apply_all(s);
    if (!r)
        r = mms_read_begin(s);
    if (!r) {
        r = check(s, ctx);
        mms_read_end(s);
    }
    mms__writer_unlock(s);
    return r;
}

struct verify_msg {
    char *msg;
    size_t cap;
};

static int verify_pinned(mms_store *s, void *ctx);

int mms_verify(mms_store *s, char *msg, size_t cap)
{
    char local[512];
    if (!msg || cap == 0) {
        msg = local;
        cap = sizeof local;
    }
    msg[0] = 0;
    struct verify_msg vm = {msg, cap};
    return mms__at_latest(s, "mms_verify", verify_pinned, &vm);
}

static int verify_heap_pinned(mms_store *s, void *ctx)
{
    return mms__heap_reach(s, ctx);
}

int mms_verify_heap(mms_store *s, mms_heap_check *out)
{
    if (!out)
        return mms__fail(MMS_EINVAL, "mms_verify_heap: out is NULL");
    memset(out, 0, sizeof *out);
    return mms__at_latest(s, "mms_verify_heap", verify_heap_pinned, out);
}

/* In a fixed-mode handle every region is where the layout says. */
static int verify_fixed(const mms_store *s, char *msg, size_t cap)
{
    for (uint32_t id = 0; id < s->nmapped && (s->flags & MMS_FIXED); id++)
        if (s->view.base[id] && (uintptr_t)s->view.base[id] != mms__fixed_addr(&s->fixed, id)) {
            snprintf(msg, cap, "region %u is mapped at %p, not at its fixed address 0x%llx", id,
                     (void *)s->view.base[id],
                     (unsigned long long)mms__fixed_addr(&s->fixed, id));
            return MMS_ECORRUPT;
        }
    return 0;
}

static int verify_pinned(mms_store *s, void *ctx)
{
    char *msg = ((struct verify_msg *)ctx)->msg;
    size_t cap = ((struct verify_msg *)ctx)->cap;
    int r;
    const struct mms__hdr *h = mms__hdr(s);
    r = mms__hdr_check_static(h, s->reg[0].mapped);
    if (!r)
        r = mms__hdr_check_full(h, mms__rtab(s), s->reg[0].mapped);
    if (r) {
        snprintf(msg, cap, "%s", mms_errdetail());
        return r == MMS_ENOTSUP ? r : MMS_ECORRUPT;
    }
    uint64_t groups, bytes;
    r = verify_fixed(s, msg, cap);
    /* The journal, with the writer lock: an unslotted handle has not got
     * it, and readers never read the journal. */
    if (!r && !s->unslotted)
        r = mms__journal_check(s, &groups, &bytes, msg, cap);
    if (!r)
        r = mms__heap_verify(s, msg, cap);
    if (!r)
        r = mms__tables_verify(s, msg, cap);
    if (r)
        mms__fail(r, "%s", msg);
    return r;
}

const char *mms_version(void)
{
    return MMS_VERSION_STRING;
}

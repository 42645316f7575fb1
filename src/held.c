/*
 * held.c -- the pages a write handle keeps private between transactions.
 *
 * Layer 3: calls os.c only. After a commit, a write handle keeps some of
 * its copy-on-write pages instead of dropping them (txn.c NOTES):
 *
 *   - changed pages it keeps so that the next transaction writing them
 *     pays no copy-on-write fault (at most keep_pages of them); the region
 *     file holds their committed content, so nothing else is needed;
 *   - every page changed by a commit that is not yet applied to the region
 *     files (readers were inside, or MMS_NOSYNC has not synced it yet). The
 *     file still holds an older state, so the private page IS the committed
 *     state in this handle's view, and a *shadow* keeps a copy of it: the
 *     base the next commit diffs against, and what an abort restores.
 *
 * This file keeps the set (a hash table keyed by page address) and the
 * shadows, and never decides which pages belong in it (txn.c does). It must
 * never touch region files.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t slot_of(const mms_store *s, const char *page)
{
    uint64_t k = (uint64_t)(uintptr_t)page >> MMS__PAGE_SHIFT;
    return (size_t)((k * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (s->held_cap - 1);
}

struct mms__held *mms__held_find(const mms_store *s, const char *page)
{
    if (!s->held_n)
        return NULL;
    for (size_t i = slot_of(s, page);; i = (i + 1) & (s->held_cap - 1)) {
        struct mms__held *h = &s->held[i];
        if (h->page == page)
            return h;
        if (!h->page)
            return NULL;
    }
}

static void insert(mms_store *s, const struct mms__held *e)
{
    size_t i = slot_of(s, e->page);
    while (s->held[i].page)
        i = (i + 1) & (s->held_cap - 1);
    s->held[i] = *e;
}

/* Room for one more entry at a load of at most 1/2. A spare table of the
 * same size is kept, so that a sweep never allocates (and so never fails:
 * dropping a page of the backlog on the floor would lose a commit). */
static int reserve(mms_store *s)
{
    if (2 * (s->held_n + 1) <= s->held_cap)
        return 0;
    size_t cap = s->held_cap ? 2 * s->held_cap : 64;
    struct mms__held *n = calloc(cap, sizeof *n), *spare = calloc(cap, sizeof *spare);
    if (!n || !spare) {
        free(n);
        free(spare);
        return -ENOMEM;
    }
    struct mms__held *old = s->held;
    size_t oldcap = s->held_cap;
    s->held = n;
    s->held_cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].page)
            insert(s, &old[i]);
    free(old);
    free(s->held_spare);
    s->held_spare = spare;
    return 0;
}

/* Shadows come and go with every commit of a backlog: up to SHADOW_POOL
 * freed ones are kept for the next, so that a commit does not pay malloc's
 * page faults (fresh memory) and trims for its copies. */
#define SHADOW_POOL 256u

static void *shadow_get(mms_store *s)
{
    void *p = s->shadow_pool;
    if (!p)
        return aligned_alloc(MMS__PAGE, MMS__PAGE);
    memcpy(&s->shadow_pool, p, sizeof(void *));
    s->shadow_pool_n--;
    return p;
}

static void shadow_put(mms_store *s, void *p)
{
    if (s->shadow_pool_n >= SHADOW_POOL) {
        free(p);
        return;
    }
    memcpy(p, &s->shadow_pool, sizeof(void *));
    s->shadow_pool = p;
    s->shadow_pool_n++;
}

int mms__held_set(mms_store *s, char *page, uint32_t gen, uint64_t txn, bool shadow)
{
    struct mms__held *h = mms__held_find(s, page);
    if (!h) {
        int r = reserve(s);
        if (r)
            return r;
        struct mms__held e = {.page = page};
        insert(s, &e);
        s->held_n++;
        h = mms__held_find(s, page);
    }
    h->gen = gen;
    h->txn = txn;
    if (shadow) {
        if (!h->shadow) {
            h->shadow = shadow_get(s);
            if (!h->shadow)
                return -ENOMEM;
            s->shadow_pages++;
        }
        memcpy(h->shadow, page, MMS__PAGE);
    } else {
        mms__held_unshadow(s, h);
    }
    return 0;
}

/* Keep the entries keep() says to keep; the others' shadows are freed and,
 * if drop, their pages go back to the file (MADV_DONTNEED). The survivors
 * move to the spare table, which becomes the table: keep() may look at
 * anything but the table. */
void mms__held_sweep(mms_store *s, bool (*keep)(mms_store *s, struct mms__held *h, void *ctx),
                     void *ctx, bool drop)
{
    if (!s->held_n)
        return;
    struct mms__held *old = s->held;
    s->held = s->held_spare;
    s->held_spare = old;
    s->held_n = 0;
    for (size_t i = 0; i < s->held_cap; i++) {
        struct mms__held e = old[i];
        if (!e.page)
            continue;
        memset(&old[i], 0, sizeof old[i]);
        if (keep(s, &e, ctx)) {
            insert(s, &e);
            s->held_n++;
            continue;
        }
        if (drop)
            mms__os_drop(e.page, MMS__PAGE);
        if (e.shadow) {
            shadow_put(s, e.shadow);
            s->shadow_pages--;
        }
    }
}

void mms__held_remove(mms_store *s, struct mms__held *h)
{
    mms__held_unshadow(s, h);
    /* Linear probing: the entries after the hole that it would hide move
     * back into it (no tombstones). */
    size_t mask = s->held_cap - 1, i = (size_t)(h - s->held);
    for (size_t j = (i + 1) & mask; s->held[j].page; j = (j + 1) & mask) {
        size_t home = slot_of(s, s->held[j].page);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->held[i] = s->held[j];
            i = j;
        }
    }
    memset(&s->held[i], 0, sizeof s->held[i]);
    s->held_n--;
}

void mms__held_unshadow(mms_store *s, struct mms__held *h)
{
    if (h->shadow) {
        shadow_put(s, h->shadow);
        h->shadow = NULL;
        s->shadow_pages--;
    }
}

static bool keep_none(mms_store *s, struct mms__held *h, void *ctx)
{
    (void)s, (void)h, (void)ctx;
    return false;
}

void mms__held_clear(mms_store *s)
{
    mms__held_sweep(s, keep_none, NULL, false);
}

void mms__held_free(mms_store *s)
{
    mms__held_clear(s);
    while (s->shadow_pool)
        free(shadow_get(s));
    free(s->held);
    free(s->held_spare);
    s->held = s->held_spare = NULL;
    s->held_cap = 0;
}

const char *mms__page_base(const mms_store *s, char *p, uint32_t id)
{
    const struct mms__held *h = mms__held_find(s, p);
    if (h && h->shadow)
        return (const char *)h->shadow;
    return s->reg[id].fview + (p - s->view.base[id]);
}

bool mms__page_changed(const mms_store *s, char *p, uint32_t id)
{
    return memcmp(p, mms__page_base(s, p, id), MMS__PAGE) != 0;
}

/*
 * heapobj.c -- the application's heap objects, for a whole-store dump and
 * its load (mms_heap_objects, mms_heap_place).
 *
 * Layer 6: calls catalog.c, str.c (through the catalog's field kinds),
 * alloc.c and refset.c. The heap holds three kinds of allocations: the
 * library's own (the catalog and what each table keeps in the heap), the
 * strings and blobs that STR and BLOB fields of live records own, and the
 * application's (mms_alloc, mms_pmalloc, mms_str_new not stored in a
 * field). A dump writes the first kind as schemas and the second inline in
 * the records; the third is opaque bytes that may hold refs, which cannot
 * be found in them, so a load puts each object back at its own offset:
 * then every ref inside one stays valid. This file tells the third kind
 * from the others, and places them. It must never change a heap that is
 * not in a write transaction, nor place anything but at the offset asked.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Every heap allocation the catalog and the records own, into *own. */
static int owned_refs(const mms_store *s, struct mms__refset *own)
{
    struct mms__catalog *cat;
    int r = mms__catalog_get(s, &cat);
    if (r || !cat)
        return r;
    if ((r = mms__refset_add(own, mms__hdr(s)->catalog)))
        return r;
    for (uint32_t t = 0; t < cat->ntables; t++) {
        const struct mms__tabent *e = &cat->t[t];
        if ((r = mms__entry_check(s, e)))
            return r;
        const struct mms__fdesc *fd = mms__fdescs(s, e);
        if (!fd)
            return MMS__CORRUPT("table %s: its field descriptors are damaged", e->name);
        if ((r = mms__refset_add(own, e->fields)) || (r = mms__refset_add(own, e->tomb)) ||
            (r = mms__refset_add(own, e->indexes)) || (r = mms__refset_add(own, e->nulls)))
            return r;
        if (e->nulls) {
            if (!mms__heap_range(s, e->nulls, (uint64_t)e->nfields * 16, 8))
                return MMS__CORRUPT("table %s: its null bitmaps are not in the heap", e->name);
            const struct mms__nullbits *nb = mms_deref(s, e->nulls);
            for (uint32_t k = 0; k < e->nfields; k++)
                if ((r = mms__refset_add(own, nb[k].bits)))
                    return r;
        }
        const char *base = s->view.base[e->region];
        for (uint32_t k = 0; k < e->nfields; k++) {
            if (!mms__kind_owns_heap(fd[k].kind))
                continue;
            for (uint64_t i = 0; i < e->count; i++) {
                if (!mms__catalog_live(s, e, i))
                    continue;
                mms_ref v;
                memcpy(&v, base + i * e->record_size + fd[k].offset, 8);
                if ((r = mms__refset_add(own, v)))
                    return r;
            }
        }
    }
    return 0;
}

struct collect {
    const mms_store *s;
    const struct mms__refset *own;
    mms_heap_obj *v;
    size_t n, cap;
};

static int collect_one(void *ctx, uint64_t off, uint64_t usable)
{
    struct collect *c = ctx;
    mms_ref ref = MMS_REF_MAKE(0, off);
    if (mms__refset_has(c->own, ref))
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        mms_heap_obj *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    mms_heap_obj *o = &c->v[c->n++];
    o->ref = ref;
    o->size = usable;
    return mms__heap_slab_of(c->s, ref, &o->slab);
}

int mms_heap_objects(mms_store *s, mms_heap_obj **objs, size_t *n)
{
    int r = mms__check_handle(s);
    if (r)
        return r;
    if (!objs || !n)
        return mms__fail(MMS_EINVAL, "mms_heap_objects: objs or n is NULL");
    *objs = NULL;
    *n = 0;
    struct mms__refset own = {0};
    struct collect c = {s, &own, NULL, 0, 0};
    char msg[256];
    r = mms__heap_verify(s, msg, sizeof msg);
    if (r)
        r = MMS__CORRUPT("heap: %s", msg);
    if (!r)
        r = owned_refs(s, &own);
    if (!r)
        r = mms__heap_each(s, collect_one, &c);
    mms__refset_free(&own);
    if (r) {
        free(c.v);
        return r == -ENOMEM ? mms__fail(r, "mms_heap_objects: out of memory") : r;
    }
    *objs = c.v;
    *n = c.n;
    return 0;
}

int mms_heap_place(mms_store *s, const mms_heap_obj *o)
{
    int r = mms__check_write(s);
    if (r)
        return r;
    if (!o || MMS_REF_REGION(o->ref) != 0)
        return mms__fail(MMS_EINVAL, "mms_heap_place: not a heap ref");
    return mms__heap_place(s, MMS_REF_SLOT(o->ref), o->size, o->slab);
}

int mms_heap_place_str(mms_store *s, const mms_heap_obj *o, const void *bytes, size_t len)
{
    if (!o || (len && !bytes) || len > o->size || o->size - len < 9)
        return mms__fail(MMS_EINVAL, "mms_heap_place_str: %zu bytes of string do not fit %llu",
                         len, o ? (unsigned long long)o->size : 0ull);
    int r = mms_heap_place(s, o);
    if (r)
        return r;
    char *p = mms_deref(s, o->ref);
    mms__str_write(p, bytes, len);
    memset(p + 9 + len, 0, o->size - 9 - len);
    return 0;
}

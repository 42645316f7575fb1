/*
 * refset.c -- a set of refs (open addressing), with the regions they name.
 *
 * Layer 0: memory only. A transaction keeps the records it deleted in one
 * (table.c, txn.c). It must never touch a store.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t slot_of(const struct mms__refset *rs, mms_ref r)
{
    return (size_t)((r * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (rs->cap - 1);
}

bool mms__refset_has(const struct mms__refset *rs, mms_ref r)
{
    if (!rs->n)
        return false;
    for (size_t i = slot_of(rs, r);; i = (i + 1) & (rs->cap - 1)) {
        if (rs->v[i] == r)
            return true;
        if (!rs->v[i])
            return false;
    }
}

bool mms__refset_has_region(const struct mms__refset *rs, uint32_t region)
{
    return region < MMS_MAX_REGIONS && (rs->regions[region / 64] >> (region % 64) & 1);
}

static void put(struct mms__refset *rs, mms_ref r)
{
    size_t i = slot_of(rs, r);
    while (rs->v[i] && rs->v[i] != r)
        i = (i + 1) & (rs->cap - 1);
    if (!rs->v[i]) {
        rs->v[i] = r;
        rs->n++;
    }
}

int mms__refset_add(struct mms__refset *rs, mms_ref r)
{
    if (!r)
        return 0;
    if (2 * (rs->n + 1) > rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 64;
        mms_ref *v = calloc(cap, sizeof *v), *old = rs->v;
        if (!v)
            return -ENOMEM;
        size_t oldcap = rs->cap;
        rs->v = v;
        rs->cap = cap;
        rs->n = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                put(rs, old[i]);
        free(old);
    }
    put(rs, r);
    /* A ref read from a damaged record may name any of 65536 region ids;
     * only those a store can have are in the map. */
    unsigned reg = MMS_REF_REGION(r);
    if (reg < MMS_MAX_REGIONS)
        rs->regions[reg / 64] |= UINT64_C(1) << (reg % 64);
    return 0;
}

void mms__refset_clear(struct mms__refset *rs)
{
    if (rs->n)
        memset(rs->v, 0, rs->cap * sizeof *rs->v);
    rs->n = 0;
    memset(rs->regions, 0, sizeof rs->regions);
}

void mms__refset_free(struct mms__refset *rs)
{
    free(rs->v);
    memset(rs, 0, sizeof *rs);
}

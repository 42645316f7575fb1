/*
 * str.c -- strings and blobs in the heap.
 *
 * Layer 5: calls alloc.c. A string or blob is one heap allocation: a u64
 * length, the bytes, and a NUL that is not counted (so a string reads as a
 * C string when it holds no NUL). A record's STR and BLOB fields own theirs
 * (table.c frees them with the record). Nothing here trusts a ref: a ref
 * that is not a string of this store gives NULL or an error, never a read
 * outside the heap. mms_str_set, which frees a ref the application gives,
 * is in heapobj.c beside mms_free, whose refusal of the library's own
 * objects it needs.
 */
#include "internal.h"

#include <string.h>

/* The length word: the length in the low 48 bits, the tag in the high 16
 * (doc/FORMAT.md), so that a string is told from any other allocation. */
#define STR_TAG UINT64_C(0x5354)
#define STR_LEN_BITS 48

int mms_str_new(mms_store *s, const void *bytes, size_t len, mms_ref *ref)
{
    if (!ref || (len && !bytes))
        return mms__fail(MMS_EINVAL, "mms_str_new: bad arguments");
    if ((uint64_t)len >= (UINT64_C(1) << STR_LEN_BITS) - 9)
        return mms__fail(MMS_EFULL, "string of %zu bytes is too long", len);
    int r = mms_alloc(s, len + 9, ref);
    if (r)
        return r;
    mms__str_write(mms_deref(s, *ref), bytes, len);
    return 0;
}

void mms__str_write(char *p, const void *bytes, size_t len)
{
    uint64_t n = (uint64_t)len | STR_TAG << STR_LEN_BITS;
    memcpy(p, &n, 8);
    if (len)
        memcpy(p + 8, bytes, len);
    p[8 + len] = 0;
}

const char *mms_str_get(const mms_store *s, mms_ref ref, size_t *len)
{
    if (!s || !ref || MMS_REF_REGION(ref) != 0)
        return NULL;
    uint64_t off = MMS_REF_SLOT(ref), top = mms__rtab(s)[0].size, usable;
    if (off < MMS__HDR_BYTES || off + 9 > top || off + 9 > s->reg[0].mapped)
        return NULL;
    /* The start of a live allocation (not freed space, not inside one),
     * holding a tagged length that fits it, NUL-terminated. */
    if (mms__alloc_usable(s, ref, &usable) != 0 || usable < 9)
        return NULL;
    const char *p = mms_deref(s, ref);
    uint64_t n;
    memcpy(&n, p, 8);
    if (n >> STR_LEN_BITS != STR_TAG)
        return NULL;
    n &= (UINT64_C(1) << STR_LEN_BITS) - 1;
    if (n > usable - 9 || p[8 + n] != 0)
        return NULL;
    if (len)
        *len = (size_t)n;
    return p + 8;
}

bool mms__str_tagged(const void *p)
{
    uint64_t n;
    memcpy(&n, p, 8);
    return n >> STR_LEN_BITS == STR_TAG;
}

bool mms__str_valid(const mms_store *s, mms_ref ref)
{
    return mms_str_get(s, ref, NULL) != NULL;
}

/*
 * pmap.h -- a chained hash map from strings to 64-bit counters, in plain C
 * with plain pointers.
 *
 * It knows nothing of mmstore: it allocates through the functions of a
 * struct pmap_mem, which a program points at malloc/calloc/free -- or at
 * mms_pmalloc/mms_pcalloc/mms_pfree, and then the map lives in a store
 * opened with MMS_FIXED, survives restarts and kill -9, and every change
 * between mms_txn_begin and mms_txn_commit is atomic (examples/pmap.c).
 * bench/pmem_bench.c runs the same code both ways.
 *
 * The bucket array doubles when the map holds more entries than buckets.
 */
#ifndef PMAP_H
#define PMAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct pmap_mem {
    void *(*alloc)(void *ctx, size_t size);            /* NULL on failure */
    void *(*calloc)(void *ctx, size_t n, size_t size); /* zeroed */
    void (*free)(void *ctx, void *p);
    void *ctx;
};

struct pmap_entry {
    struct pmap_entry *next; /* the next entry of its bucket */
    uint64_t hash;
    uint64_t value;
    uint32_t len;
    char key[]; /* len bytes and a NUL */
};

struct pmap {
    struct pmap_entry **bucket;
    uint64_t nbuckets; /* a power of 2 */
    uint64_t count;
};

static inline uint64_t pmap_hash(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 0x100000001b3u;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9u;
    return h ^ (h >> 32);
}

/* An empty map of nbuckets (a power of 2) buckets. 0, or -1 (no memory). */
static inline int pmap_init(struct pmap *m, const struct pmap_mem *mem, uint64_t nbuckets)
{
    m->bucket = mem->calloc(mem->ctx, nbuckets, sizeof *m->bucket);
    m->nbuckets = nbuckets;
    m->count = 0;
    return m->bucket ? 0 : -1;
}

static inline struct pmap_entry **pmap_slot(const struct pmap *m, const char *key, size_t len,
                                            uint64_t hash)
{
    struct pmap_entry **e = &m->bucket[hash & (m->nbuckets - 1)];
    while (*e && ((*e)->hash != hash || (*e)->len != len || memcmp((*e)->key, key, len) != 0))
        e = &(*e)->next;
    return e;
}

/* The counter of key, or NULL if the map does not have it. */
static inline uint64_t *pmap_get(const struct pmap *m, const char *key, size_t len)
{
    struct pmap_entry *e = *pmap_slot(m, key, len, pmap_hash(key, len));
    return e ? &e->value : NULL;
}

/* Twice the buckets; every entry moves to its new bucket. -1: no memory
 * (the map is unchanged). */
static inline int pmap_grow(struct pmap *m, const struct pmap_mem *mem)
{
    uint64_t n = m->nbuckets * 2;
    struct pmap_entry **b = mem->calloc(mem->ctx, n, sizeof *b);
    if (!b)
        return -1;
    for (uint64_t i = 0; i < m->nbuckets; i++)
        for (struct pmap_entry *e = m->bucket[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    mem->free(mem->ctx, m->bucket);
    m->bucket = b;
    m->nbuckets = n;
    return 0;
}

/* The counter of key, the entry made (counter 0) if the map lacks it.
 * NULL: no memory (the map is unchanged). */
static inline uint64_t *pmap_put(struct pmap *m, const struct pmap_mem *mem, const char *key,
                                 size_t len)
{
    uint64_t hash = pmap_hash(key, len);
    struct pmap_entry **slot = pmap_slot(m, key, len, hash);
    if (*slot)
        return &(*slot)->value;
    struct pmap_entry *e = mem->alloc(mem->ctx, offsetof(struct pmap_entry, key) + len + 1);
    if (!e)
        return NULL;
    e->next = NULL;
    e->hash = hash;
    e->value = 0;
    e->len = (uint32_t)len;
    memcpy(e->key, key, len);
    e->key[len] = 0;
    *slot = e;
    if (++m->count > m->nbuckets)
        pmap_grow(m, mem); /* on failure the map is only slower */
    return &e->value;
}

/* Remove key: 1 if it was there, 0 if not. */
static inline int pmap_del(struct pmap *m, const struct pmap_mem *mem, const char *key, size_t len)
{
    struct pmap_entry **slot = pmap_slot(m, key, len, pmap_hash(key, len)), *e = *slot;
    if (!e)
        return 0;
    *slot = e->next;
    mem->free(mem->ctx, e);
    m->count--;
    return 1;
}

/* Is the map whole: every entry in the bucket its hash says, with the hash
 * of its key, and as many entries as the count? 0 if so; otherwise -1 and
 * *bad_bucket names the first bucket that is not. */
static inline int pmap_check(const struct pmap *m, uint64_t *bad_bucket)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < m->nbuckets; i++)
        for (const struct pmap_entry *e = m->bucket[i]; e; e = e->next, n++)
            if ((e->hash & (m->nbuckets - 1)) != i || e->hash != pmap_hash(e->key, e->len) ||
                e->key[e->len] != 0 || n >= m->count) {
                *bad_bucket = i;
                return -1;
            }
    *bad_bucket = m->nbuckets;
    return n == m->count ? 0 : -1;
}

#endif

/*
 * test_fixed.c -- fixed-address mode (MMS_FIXED) and the pointer API
 * (issue 17).
 *
 *   basic        a pointer-linked queue in a fixed store: the same addresses
 *                after a reopen; refs and pointers convert both ways
 *   api          mms_pmalloc/pcalloc/prealloc/pfree, mms_root_ptr(_set),
 *                mms_last_error: errors, abort, zeroed slack, normal mode
 *   modes        created fixed, opened normal (refs work, pointers are
 *                numbers), and fixed again; the errors of opening
 *   addr_in_use  something mapped at the store's range: MMS_EADDR naming it,
 *                nothing clobbered; a second fixed handle; a table's range
 *                taken; two fixed stores in one process
 *   growth       the heap grows 25 times past its first size at the same
 *                address, pointers from old into new space and back; the
 *                reservation's end is MMS_EFULL; tables at their addresses
 *   multi        a writer and readers in other processes, all fixed, the
 *                readers following raw pointers in read transactions
 *   crash        SIGKILL at random points of a writer keeping a pointer-
 *                linked queue: the queue is always the last committed one,
 *                mms_verify and mms_verify_pointers pass
 *   pointers     mms_verify_pointers and `mms verify --pointers`: what they
 *                report and what they pass
 *   example      examples/pmap (built next to the mms tool) killed while it
 *                fills its map, then checked
 */
#include "test.h"

#include <pthread.h>
#include <sys/mman.h>

#include "internal.h" /* mms__alloc_fit */

#define TIB ((uint64_t)1 << 40)
#define DEFAULT_BASE (32 * TIB)

/* A queue of nodes, pointer-linked: values first .. first + count - 1 from
 * head to tail. A node may own a blob (large: the heap grows) whose first
 * word is the node's value. Both structs are a size class exactly. */
struct node {
    struct node *next;
    uint64_t value;
    uint64_t *blob;
    uint64_t pad;
};
struct queue {
    struct node *head, *tail;
    uint64_t count, first, txns, blobs;
    uint64_t pad[2];
};
_Static_assert(sizeof(struct node) == 32 && sizeof(struct queue) == 64, "size classes");

static mms_store *open_fixed(const char *path, unsigned flags)
{
    return open_flags(path, flags | MMS_FIXED);
}

/* The queue is whole: *why says what is wrong otherwise. */
static int queue_ok(const struct queue *q, char *why, size_t cap)
{
    uint64_t n = 0, blobs = 0;
    const struct node *last = NULL;
    for (const struct node *p = q->head; p; p = p->next, n++) {
        if (n >= q->count) {
            snprintf(why, cap, "more than %llu nodes", (unsigned long long)q->count);
            return 0;
        }
        if (p->value != q->first + n) {
            snprintf(why, cap, "node %llu has value %llu, expected %llu", (unsigned long long)n,
                     (unsigned long long)p->value, (unsigned long long)(q->first + n));
            return 0;
        }
        if (p->blob && (blobs++, p->blob[0] != p->value)) {
            snprintf(why, cap, "node %llu's blob says %llu", (unsigned long long)n,
                     (unsigned long long)p->blob[0]);
            return 0;
        }
        last = p;
    }
    if (n != q->count || last != q->tail || blobs != q->blobs) {
        snprintf(why, cap, "%llu nodes (%llu blobs), the queue says %llu (%llu); tail %s", 
                 (unsigned long long)n, (unsigned long long)blobs, (unsigned long long)q->count,
                 (unsigned long long)q->blobs, last == q->tail ? "right" : "wrong");
        return 0;
    }
    return 1;
}

static void queue_check(const struct queue *q)
{
    char why[256];
    if (!queue_ok(q, why, sizeof why))
        FAILF("queue: %s", why);
}

/* A new queue as the root (inside a write transaction). */
static struct queue *queue_new(mms_store *s)
{
    struct queue *q = mms_pcalloc(s, 1, sizeof *q);
    ASSERT(q != NULL);
    q->first = 1;
    OK(mms_root_ptr_set(s, q));
    return q;
}

static void queue_push(mms_store *s, struct queue *q, size_t blob)
{
    struct node *n = mms_pmalloc(s, sizeof *n);
    if (!n)
        FAILF("mms_pmalloc: %s", mms_strerror(mms_last_error()));
    n->next = NULL;
    n->value = q->first + q->count;
    n->blob = NULL;
    n->pad = 0;
    if (blob) {
        n->blob = mms_pmalloc(s, blob);
        if (!n->blob)
            FAILF("mms_pmalloc(%zu): %s", blob, mms_strerror(mms_last_error()));
        n->blob[0] = n->value;
        n->blob[blob / 8 - 1] = n->value; /* the last page too */
        q->blobs++;
    }
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->count++;
}

static void queue_pop(mms_store *s, struct queue *q)
{
    struct node *n = q->head;
    q->head = n->next;
    if (!q->head)
        q->tail = NULL;
    q->first++;
    q->count--;
    if (n->blob) {
        mms_pfree(s, n->blob);
        q->blobs--;
    }
    mms_pfree(s, n);
}

/* One transaction of the workloads: push 1-20 nodes (now and then one with
 * a blob of up to 3 MiB), sometimes pop some. */
static void queue_step(mms_store *s, uint64_t *rng, size_t max_blob)
{
    OK(mms_txn_begin(s, 0));
    struct queue *q = mms_root_ptr(s);
    if (!q)
        q = queue_new(s);
    unsigned k = 1 + rnd_next(rng) % 20;
    for (unsigned i = 0; i < k; i++) {
        size_t blob = max_blob && rnd_next(rng) % 16 == 0 ? 4096 + rnd_next(rng) % max_blob : 0;
        queue_push(s, q, blob & ~(size_t)7);
    }
    if (rnd_next(rng) % 3 == 0)
        for (unsigned i = rnd_next(rng) % 25; i > 0 && q->count; i--)
            queue_pop(s, q);
    q->txns++;
    OK(mms_txn_commit(s));
}

static void verify_pointers_ok(mms_store *s)
{
    char msg[512];
    uint64_t n = 99;
    int r = mms_verify_pointers(s, msg, sizeof msg, &n);
    if (r)
        FAILF("mms_verify_pointers: %s (%s)", mms_strerror(r), msg);
    ASSERT_EQ(n, 0);
}

/* ------------------------------------------------------------------------
 * basic
 * ------------------------------------------------------------------------ */
TEST(basic)
{
    const char *p = shm_tpath("fixed-basic");
    mms_store *s = open_fixed(p, MMS_CREATE);
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.fixed, 1);
    ASSERT_EQ(in.fixed_base, DEFAULT_BASE);
    ASSERT_EQ(in.fixed_heap_reserve, (uint64_t)256 << 30);
    ASSERT_EQ(in.fixed_table_reserve, (uint64_t)64 << 30);
    ASSERT_EQ((uintptr_t)mms_deref(s, MMS_REF_MAKE(0, 0)), DEFAULT_BASE);
    uint64_t rng = 1;
    for (int i = 0; i < 20; i++)
        queue_step(s, &rng, 0);
    struct queue *q = mms_root_ptr(s);
    queue_check(q);
    ASSERT_GE(q->count, 20);
    /* Refs and pointers: a subtraction and an addition of the base. */
    mms_ref r;
    OK(mms_ref_of(s, q->tail, &r));
    ASSERT_EQ(MMS_REF_REGION(r), 0);
    ASSERT_EQ(MMS_REF_SLOT(r), (uintptr_t)q->tail - DEFAULT_BASE);
    ASSERT(mms_deref(s, r) == (void *)q->tail);
    ASSERT_EQ(mms_root(s), (uintptr_t)q - DEFAULT_BASE);
    struct queue copy = *q;
    OK(mms_close(s));
    /* Another handle, after the first is gone: the same addresses. */
    s = open_fixed(p, 0);
    q = mms_root_ptr(s);
    ASSERT(q == (struct queue *)(uintptr_t)(DEFAULT_BASE + mms_root(s)));
    ASSERT(memcmp(q, &copy, sizeof copy) == 0);
    queue_check(q);
    verify_ok(s);
    verify_pointers_ok(s);
    OK(mms_close(s));
    /* A read-only one too. */
    s = open_fixed(p, MMS_RDONLY);
    ASSERT(mms_root_ptr(s) == (void *)q);
    queue_check(mms_root_ptr(s));
    OK(mms_close(s));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * api
 * ------------------------------------------------------------------------ */
static void api_on(mms_store *s)
{
    /* Outside a write transaction: NULL and MMS_ENOTXN. */
    ASSERT(mms_pmalloc(s, 16) == NULL);
    ASSERT_EQ(mms_last_error(), MMS_ENOTXN);
    FAILS(mms_root_ptr_set(s, NULL), MMS_ENOTXN);
    mms_info in0, in1;
    OK(mms_info_get(s, &in0));
    OK(mms_txn_begin(s, 0));
    /* malloc-shaped: aligned, usable, zeroed by pcalloc. */
    char *a = mms_pmalloc(s, 40);
    ASSERT(a != NULL && (uintptr_t)a % 16 == 0);
    memset(a, 0xab, 40);
    uint64_t *z = mms_pcalloc(s, 100, 8);
    ASSERT(z != NULL);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(z[i], 0);
    ASSERT(mms_pcalloc(s, SIZE_MAX / 4, 8) == NULL);
    ASSERT_EQ(mms_last_error(), MMS_EINVAL);
    ASSERT(strstr(mms_errdetail(), "overflow") != NULL);
    /* The slack the pointer functions zero is the allocator's. */
    static const size_t sizes[] = {0, 1, 16, 17, 2048, 2049, 4096, 4097, 1020 * 4096,
                                   1020 * 4096 + 1, (4 << 20) - 4096, (4 << 20) - 4095};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        mms_ref fr;
        size_t usable;
        OK(mms_alloc(s, sizes[i], &fr));
        OK(mms_alloc_size(s, fr, &usable));
        ASSERT_EQ(usable, mms__alloc_fit(sizes[i]));
        OK(mms_free(s, fr));
    }
    for (size_t size = 1; size <= 3000; size++)
        ASSERT_LE(size, mms__alloc_fit(size));
    /* The slack is zeroed even where a freed block left bytes. */
    char *junk = mms_pmalloc(s, 48);
    memset(junk, 0x5a, 48);
    mms_pfree(s, junk);
    char *b = mms_pmalloc(s, 33); /* class 48: the same slot */
    ASSERT(b == junk);
    for (int i = 33; i < 48; i++)
        ASSERT_EQ(b[i], 0);
    /* realloc: contents kept, growing and shrinking, NULL allocates. */
    char *c = mms_prealloc(s, NULL, 10);
    ASSERT(c != NULL);
    memcpy(c, "0123456789", 10);
    c = mms_prealloc(s, c, 5000);
    ASSERT(c != NULL && memcmp(c, "0123456789", 10) == 0);
    c = mms_prealloc(s, c, 8);
    ASSERT(c != NULL && memcmp(c, "01234567", 8) == 0);
    ASSERT(mms_prealloc(s, c, 0) == NULL);
    ASSERT_EQ(mms_last_error(), MMS_EINVAL);
    ASSERT(memcmp(c, "01234567", 8) == 0); /* p unchanged */
    int local;
    ASSERT(mms_prealloc(s, &local, 8) == NULL);
    ASSERT_EQ(mms_last_error(), MMS_EBADREF);
    /* free: NULL does nothing; a double free, an inner pointer, a malloc'd
     * pointer change nothing and say MMS_EBADREF. */
    mms_pfree(s, NULL);
    mms_pfree(s, c);
    mms_pfree(s, c);
    ASSERT_EQ(mms_last_error(), MMS_EBADREF);
    mms_pfree(s, a + 16);
    ASSERT_EQ(mms_last_error(), MMS_EBADREF);
    void *m = malloc(32);
    mms_pfree(s, m);
    ASSERT_EQ(mms_last_error(), MMS_EBADREF);
    free(m);
    /* Refs and pointers mix: mms_free what mms_pmalloc gave and the other
     * way round. */
    mms_ref r;
    OK(mms_ref_of(s, a, &r));
    OK(mms_free(s, r));
    OK(mms_alloc(s, 100, &r));
    mms_pfree(s, mms_deref(s, r));
    FAILS(mms_free(s, r), MMS_EBADREF);
    /* The root as a pointer: the heap, a table record, NULL. */
    OK(mms_root_ptr_set(s, z));
    ASSERT(mms_root_ptr(s) == (void *)z);
    OK(mms_ref_of(s, z, &r));
    ASSERT_EQ(mms_root(s), r);
    FAILS(mms_root_ptr_set(s, &local), MMS_EINVAL);
    ASSERT_EQ(mms_last_error(), MMS_EINVAL);
    FAILS(mms_root_ptr_set(s, (char *)z + 16), MMS_EBADREF); /* inside an allocation */
    ASSERT_EQ(mms_last_error(), MMS_EBADREF);
    struct rec { uint64_t a, b; };
    static const mms_field fields[] = {MMS_F_U64(struct rec, a), MMS_F_U64(struct rec, b)};
    static const mms_schema schema = MMS_SCHEMA(struct rec, fields);
    mms_table *t;
    OK(mms_table_open(s, "recs", &schema, MMS_TABLE_CREATE, &t));
    for (uint64_t i = 0; i < 10; i++) {
        struct rec x = {i, i * i};
        OK(mms_table_append(t, &x, NULL));
    }
    struct rec *r7 = mms_table_get(t, 7);
    OK(mms_root_ptr_set(s, r7));
    ASSERT_EQ(mms_root(s), mms_table_ref(t, 7));
    ASSERT(mms_root_ptr(s) == (void *)r7);
    FAILS(mms_root_ptr_set(s, (char *)r7 + 8), MMS_EINVAL);
    OK(mms_root_ptr_set(s, NULL));
    ASSERT(mms_root_ptr(s) == NULL);
    OK(mms_root_ptr_set(s, z));
    OK(mms_txn_commit(s));
    ASSERT(mms_root_ptr(s) == (void *)z);
    /* An abort undoes allocations and frees made through pointers. */
    OK(mms_info_get(s, &in1));
    ASSERT_LT(in0.heap_objects, in1.heap_objects);
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 100; i++)
        ASSERT(mms_pmalloc(s, 24) != NULL);
    mms_pfree(s, z);
    OK(mms_root_ptr_set(s, NULL));
    OK(mms_txn_abort(s));
    mms_info in2;
    OK(mms_info_get(s, &in2));
    ASSERT_EQ(in2.heap_objects, in1.heap_objects);
    ASSERT(mms_root_ptr(s) == (void *)z);
    verify_ok(s);
    verify_pointers_ok(s);
}

TEST(api)
{
    /* In a fixed store, and in a normal one (pointers then valid while the
     * handle is open). */
    const char *p = shm_tpath("fixed-api");
    mms_store *s = open_fixed(p, MMS_CREATE);
    api_on(s);
    OK(mms_close(s));
    rmrf(p);
    p = shm_tpath("fixed-api-normal");
    s = open_flags(p, MMS_CREATE);
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.fixed, 0);
    ASSERT_EQ(in.fixed_base, 0);
    api_on(s);
    OK(mms_close(s));
    rmrf(p);
    /* A NULL handle. */
    ASSERT(mms_pmalloc(NULL, 8) == NULL);
    ASSERT_EQ(mms_last_error(), MMS_EINVAL);
}

/* ------------------------------------------------------------------------
 * modes
 * ------------------------------------------------------------------------ */
TEST(modes)
{
    const char *p = shm_tpath("fixed-modes");
    mms_store *s = open_fixed(p, MMS_CREATE);
    uint64_t rng = 2;
    for (int i = 0; i < 10; i++)
        queue_step(s, &rng, 0);
    OK(mms_close(s));
    /* Normal mode: mapped elsewhere; refs work; the pointers inside are the
     * fixed addresses, numbers here, turned into refs with the base. */
    s = open_flags(p, 0);
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.fixed, 0);
    ASSERT_EQ(in.fixed_base, DEFAULT_BASE);
    ASSERT((uintptr_t)mms_deref(s, MMS_REF_MAKE(0, 0)) != DEFAULT_BASE);
    struct queue *q = MMS_AT(s, struct queue, mms_root(s));
    ASSERT(mms_root_ptr(s) == (void *)q);
    uint64_t n = 0, last = 0;
    for (uintptr_t a = (uintptr_t)q->head; a; n++) {
        struct node *nd = MMS_AT(s, struct node, a - in.fixed_base);
        ASSERT_EQ(nd->value, q->first + n);
        last = a;
        a = (uintptr_t)nd->next;
    }
    ASSERT_EQ(n, q->count);
    ASSERT_EQ(last, (uintptr_t)q->tail);
    /* Append a node the way a normal handle can: its fixed address is the
     * base plus its ref. The pointer API works here too. */
    OK(mms_txn_begin(s, 0));
    struct node *nd = mms_pmalloc(s, sizeof *nd);
    ASSERT(nd != NULL);
    mms_ref r;
    OK(mms_ref_of(s, nd, &r));
    nd->next = NULL;
    nd->value = q->first + q->count;
    nd->blob = NULL;
    MMS_AT(s, struct node, (uintptr_t)q->tail - in.fixed_base)->next =
        (struct node *)(uintptr_t)(in.fixed_base + r);
    q->tail = (struct node *)(uintptr_t)(in.fixed_base + r);
    q->count++;
    OK(mms_txn_commit(s));
    verify_ok(s);
    verify_pointers_ok(s); /* against the recorded layout, from a normal handle */
    OK(mms_close(s));
    /* Fixed again: the node appended in normal mode is in the queue. */
    s = open_fixed(p, 0);
    q = mms_root_ptr(s);
    queue_check(q);
    ASSERT_EQ(q->count, n + 1);
    queue_step(s, &rng, 0);
    queue_check(mms_root_ptr(s));
    /* The base option: 0 or the recorded one; another is MMS_EADDR. */
    OK(mms_close(s));
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_FIXED;
    o.base = DEFAULT_BASE;
    OK(mms_open(p, &o, &s));
    OK(mms_close(s));
    o.base = DEFAULT_BASE + 4 * TIB;
    FAILS(mms_open(p, &o, &s), MMS_EADDR);
    ASSERT(s == NULL);
    ASSERT(strstr(mms_errdetail(), "0x200000000000") != NULL);
    o.flags = 0; /* a base without MMS_FIXED */
    FAILS(mms_open(p, &o, &s), MMS_EINVAL);
    rmrf(p);
    /* A normal store does not open fixed. */
    const char *pn = shm_tpath("fixed-modes-normal");
    s = open_flags(pn, MMS_CREATE);
    OK(mms_close(s));
    o.flags = MMS_FIXED;
    o.base = 0;
    FAILS(mms_open(pn, &o, &s), MMS_EINVAL);
    ASSERT(strstr(mms_errdetail(), "without MMS_FIXED") != NULL);
    o.flags = MMS_FIXED | MMS_CREATE; /* nor with MMS_CREATE, as it exists */
    FAILS(mms_open(pn, &o, &s), MMS_EINVAL);
    rmrf(pn);
    /* Layouts that cannot be: refused at creation, nothing created. */
    const char *pb = shm_tpath("fixed-modes-bad");
    o.flags = MMS_FIXED | MMS_CREATE;
    o.base = DEFAULT_BASE + 4096;
    FAILS(mms_open(pb, &o, &s), MMS_EINVAL);
    o.base = 127 * TIB;
    o.reserve = 2 * TIB;
    FAILS(mms_open(pb, &o, &s), MMS_EINVAL);
    /* A reserve so large that rounding it up to 4 MiB wraps to 0: refused
     * for its size, not taken for "no bytes" nor for the default. */
    o.base = 0;
    o.reserve = UINT64_MAX;
    FAILS(mms_open(pb, &o, &s), MMS_EINVAL);
    ASSERT(strstr(mms_errdetail(), "128 TiB") != NULL);
    o.base = 40 * TIB;
    FAILS(mms_open(pb, &o, &s), MMS_EINVAL);
    ASSERT(strstr(mms_errdetail(), "128 TiB") != NULL);
    /* A base and reserve given: recorded and used. */
    o.base = 40 * TIB;
    o.reserve = (uint64_t)1 << 30;
    OK(mms_open(pb, &o, &s));
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.fixed_base, 40 * TIB);
    ASSERT_EQ(in.fixed_heap_reserve, (uint64_t)1 << 30);
    ASSERT_EQ(in.fixed_table_reserve, (uint64_t)256 << 20);
    ASSERT_EQ((uintptr_t)mms_deref(s, MMS_REF_MAKE(0, 0)), 40 * TIB);
    OK(mms_close(s));
    s = open_fixed(pb, 0); /* later opens need no option */
    ASSERT_EQ((uintptr_t)mms_deref(s, MMS_REF_MAKE(0, 0)), 40 * TIB);
    OK(mms_close(s));
    rmrf(pb);
}

/* ------------------------------------------------------------------------
 * addr_in_use
 * ------------------------------------------------------------------------ */
static void *map_at(uint64_t addr, size_t len)
{
    void *m = mmap((void *)(uintptr_t)addr, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    ASSERT(m == (void *)(uintptr_t)addr);
    return m;
}

TEST(addr_in_use)
{
    const char *p = shm_tpath("fixed-inuse");
    mms_store *s = open_fixed(p, MMS_CREATE);
    OK(mms_close(s));
    /* A mapping of the program's in the middle of the heap's range: the
     * open fails, names the range, and the mapping is untouched. */
    char *m = map_at(DEFAULT_BASE + ((uint64_t)100 << 30), 4096);
    memset(m, 0x77, 4096);
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_FIXED;
    FAILS(mms_open(p, &o, &s), MMS_EADDR);
    ASSERT(s == NULL);
    fprintf(stderr, "   detail: %s\n", mms_errdetail());
    ASSERT(strstr(mms_errdetail(), "[0x200000000000, 0x204000000000)") != NULL);
    ASSERT(strstr(mms_errdetail(), "in use") != NULL);
    for (int i = 0; i < 4096; i++)
        ASSERT_EQ((unsigned char)m[i], 0x77);
    /* Normal mode does not mind. */
    s = open_flags(p, 0);
    OK(mms_close(s));
    ASSERT_EQ(munmap(m, 4096), 0);
    /* One fixed handle per store and process; others open normal. */
    s = open_fixed(p, 0);
    mms_store *s2;
    FAILS(mms_open(p, &o, &s2), MMS_EADDR);
    ASSERT(strstr(mms_errdetail(), "another MMS_FIXED handle") != NULL);
    mms_store *s3 = open_flags(p, MMS_RDONLY);
    /* A table whose range is taken: the table is refused, nothing else. */
    uint64_t t1 = DEFAULT_BASE + ((uint64_t)256 << 30);
    m = map_at(t1 + ((uint64_t)1 << 30), 4096);
    struct rec { uint64_t a; };
    static const mms_field fields[] = {MMS_F_U64(struct rec, a)};
    static const mms_schema schema = MMS_SCHEMA(struct rec, fields);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_open(s, "t", &schema, MMS_TABLE_CREATE, &t), MMS_EADDR);
    ASSERT(strstr(mms_errdetail(), "region 1") != NULL);
    OK(mms_txn_abort(s));
    ASSERT_EQ(munmap(m, 4096), 0);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_append(t, NULL, NULL));
    OK(mms_txn_commit(s));
    ASSERT_EQ((uintptr_t)mms_table_array(t), t1);
    verify_ok(s);
    OK(mms_close(s3));
    /* Two fixed stores in one process: the second created while the first
     * is open lands on the next default base, and both reopen together. */
    const char *p2 = shm_tpath("fixed-inuse-2");
    s2 = open_fixed(p2, MMS_CREATE);
    mms_info in;
    OK(mms_info_get(s2, &in));
    ASSERT_EQ(in.fixed_base, DEFAULT_BASE + 4 * TIB);
    OK(mms_close(s2));
    OK(mms_close(s));
    s2 = open_fixed(p2, 0);
    s = open_fixed(p, 0);
    OK(mms_close(s));
    OK(mms_close(s2));
    rmrf(p);
    rmrf(p2);
}

/* A create at a base whose range is in use fails before it makes a store:
 * one left behind, recorded there, refused every create at another base
 * ("recorded at 0x2c0000000000, not at the base asked for"). */
TEST(create_in_use)
{
    const char *p = shm_tpath("fixed-create-inuse");
    uint64_t at = 44 * TIB, len = (uint64_t)64 << 20;
    char *m = map_at(at + len / 2, 4096);
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_FIXED;
    o.base = at;
    o.reserve = len;
    mms_store *s;
    FAILS(mms_open(p, &o, &s), MMS_EADDR);
    ASSERT(strstr(mms_errdetail(), "[0x2c0000000000, 0x2c0004000000) is in use") != NULL);
    o.flags = 0; /* no store was made, and the directory it made went too */
    o.base = 0;
    FAILS(mms_open(p, &o, &s), -ENOENT);
    o.flags = MMS_CREATE | MMS_FIXED;
    o.base = at + 4 * TIB;
    OK(mms_open(p, &o, &s));
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.fixed_base, at + 4 * TIB);
    OK(mms_close(s));
    ASSERT_EQ(munmap(m, 4096), 0);
    rmrf(p);
}

/* Two threads creating stores at the default base at once: the base each
 * chose was probed and given back, so both chose the same one and the
 * second failed at its first mapping (MMS_EADDR), leaving a store
 * recorded there. Now the chosen range stays reserved until region 0 is
 * mapped in it (map.c, fixed_claim). */
struct create_arg {
    pthread_barrier_t *bar;
    const char *path;
    int rc;
    uint64_t base;
};

static void *create_one(void *arg)
{
    struct create_arg *c = arg;
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_FIXED;
    mms_store *s = NULL;
    pthread_barrier_wait(c->bar);
    c->rc = mms_open(c->path, &o, &s);
    mms_info in;
    if (!c->rc && !(c->rc = mms_info_get(s, &in)))
        c->base = in.fixed_base;
    pthread_barrier_wait(c->bar); /* both open at once: two bases */
    if (s)
        OK(mms_close(s));
    return NULL;
}

TEST(creates_at_once)
{
    char *paths[2] = {strdup(shm_tpath("fixed-once-a")), strdup(shm_tpath("fixed-once-b"))};
    for (int round = 0; round < 20; round++) {
        pthread_barrier_t bar;
        ASSERT_EQ(pthread_barrier_init(&bar, NULL, 2), 0);
        struct create_arg c[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            c[i] = (struct create_arg){.bar = &bar, .path = paths[i]};
            ASSERT_EQ(pthread_create(&th[i], NULL, create_one, &c[i]), 0);
        }
        for (int i = 0; i < 2; i++)
            ASSERT_EQ(pthread_join(th[i], NULL), 0);
        pthread_barrier_destroy(&bar);
        for (int i = 0; i < 2; i++)
            if (c[i].rc)
                FAILF("round %d, create %d: %d (%s)", round, i, c[i].rc, mms_strerror(c[i].rc));
        ASSERT(c[0].base != c[1].base);
        for (int i = 0; i < 2; i++) { /* each opens again where it was made */
            mms_store *s = open_fixed(paths[i], 0);
            OK(mms_close(s));
            rmrf(paths[i]);
        }
    }
    free(paths[0]);
    free(paths[1]);
}

/* ------------------------------------------------------------------------
 * growth
 * ------------------------------------------------------------------------ */
TEST(growth)
{
    const char *p = shm_tpath("fixed-growth");
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_FIXED;
    o.reserve = (uint64_t)128 << 20; /* 128 MiB of heap, 32 MiB per table */
    o.grow_step = (uint64_t)4 << 20;
    mms_store *s;
    OK(mms_open(p, &o, &s));
    mms_info in;
    OK(mms_info_get(s, &in));
    const uint64_t base = in.fixed_base, first = (uint64_t)4 << 20;
    ASSERT(in.region_size[0] < first); /* a new heap is its header (FORMAT 2) */
    /* Nodes with blobs of up to 1 MiB, until the heap is 25 times 4 MiB;
     * every old node gets a pointer into the newest space. */
    uint64_t rng = 3;
    struct queue *q = NULL;
    while (in.region_size[0] < 25 * first) {
        queue_step(s, &rng, (size_t)1 << 20);
        q = mms_root_ptr(s);
        OK(mms_txn_begin(s, 0));
        for (struct node *nd = q->head; nd; nd = nd->next)
            nd->pad = (uintptr_t)q->tail;
        OK(mms_txn_commit(s));
        OK(mms_info_get(s, &in));
    }
    ASSERT_EQ((uintptr_t)mms_deref(s, MMS_REF_MAKE(0, 0)), base);
    queue_check(q);
    ASSERT((uintptr_t)q->tail - base > 20 * first || q->blobs > 0);
    /* The end of the reservation: NULL and MMS_EFULL, the store unharmed. */
    OK(mms_txn_begin(s, 0));
    ASSERT(mms_pmalloc(s, (size_t)200 << 20) == NULL);
    ASSERT_EQ(mms_last_error(), MMS_EFULL);
    OK(mms_txn_abort(s));
    /* A table at its place, growing inside its 32 MiB. */
    struct rec { uint64_t a[8]; };
    static const mms_field fields[] = {MMS_F_CHARS(struct rec, a)};
    static const mms_schema schema = MMS_SCHEMA(struct rec, fields);
    mms_table *t;
    uint64_t first_rec;
    void *where;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "big", &schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_append_many(t, 400000, &first_rec, &where)); /* 25.6 MB */
    OK(mms_txn_commit(s));
    ASSERT_EQ((uintptr_t)mms_table_array(t), base + o.reserve);
    OK(mms_txn_begin(s, 0));
    FAILS(mms_table_append_many(t, 200000, &first_rec, &where), MMS_EFULL);
    OK(mms_txn_abort(s));
    verify_ok(s);
    verify_pointers_ok(s);
    struct queue copy = *q;
    OK(mms_close(s));
    s = open_fixed(p, 0);
    q = mms_root_ptr(s);
    ASSERT(memcmp(q, &copy, sizeof copy) == 0);
    queue_check(q);
    for (struct node *nd = q->head; nd; nd = nd->next)
        ASSERT(nd->pad == (uintptr_t)q->tail);
    verify_pointers_ok(s);
    OK(mms_close(s));
    /* A normal handle of the store keeps to the same reservation (or the
     * store could not be opened fixed again), whatever it asks for. */
    o.flags = 0;
    o.reserve = (uint64_t)1 << 30;
    OK(mms_open(p, &o, &s));
    OK(mms_txn_begin(s, 0));
    mms_ref big;
    FAILS(mms_alloc(s, (size_t)200 << 20, &big), MMS_EFULL);
    OK(mms_txn_abort(s));
    OK(mms_close(s));
    rmrf(p);
}

/* A migration whose new file does not fit the table's fixed range fails
 * MMS_EFULL and changes nothing: the transaction goes on and commits, the
 * table keeps its layout and records. (The catalog and the region table
 * used to switch before the new file was found too large: the commit then
 * failed "cannot sync new data of region 1", losing the transaction.) */
TEST(migrate_full)
{
    const char *p = shm_tpath("fixed-migrate-full");
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_FIXED;
    o.reserve = (uint64_t)8 << 20; /* 4 MiB per table (a quarter, at least 4 MiB) */
    mms_store *s;
    OK(mms_open(p, &o, &s));
    struct rec2 { uint64_t key, val; };
    static const mms_field f2[] = {MMS_F_U64(struct rec2, key), MMS_F_U64(struct rec2, val)};
    static const mms_schema s2 = MMS_SCHEMA(struct rec2, f2);
    struct rec3 { uint64_t key, val, extra; };
    static const mms_field f3[] = {MMS_F_U64(struct rec3, key), MMS_F_U64(struct rec3, val),
                                   MMS_F_U64(struct rec3, extra)};
    static const mms_schema s3 = MMS_SCHEMA(struct rec3, f3);
    const uint64_t n = 200000; /* 3.2 MB; 4.8 MB in the wider layout */
    mms_table *t;
    uint64_t first;
    void *where;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "t", &s2, MMS_TABLE_CREATE, &t));
    OK(mms_table_append_many(t, n, &first, &where));
    for (uint64_t i = 0; i < n; i++)
        ((struct rec2 *)where)[i] = (struct rec2){i, 2 * i};
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    uint64_t *kept = mms_pmalloc(s, sizeof *kept);
    ASSERT(kept != NULL);
    *kept = 77;
    OK(mms_root_ptr_set(s, kept));
    FAILS(mms_table_open(s, "t", &s3, MMS_TABLE_CREATE, &t), MMS_EFULL);
    OK(mms_txn_commit(s));
    OK(mms_table_find(s, "t", &t));
    ASSERT_EQ(mms_table_schema(t)->record_size, sizeof(struct rec2));
    ASSERT_EQ(mms_table_count(t), n);
    ASSERT_EQ(((struct rec2 *)mms_table_get(t, n - 1))->val, 2 * (n - 1));
    verify_ok(s);
    OK(mms_close(s));
    s = open_fixed(p, 0);
    ASSERT_EQ(*(uint64_t *)mms_root_ptr(s), 77);
    OK(mms_table_find(s, "t", &t));
    ASSERT_EQ(mms_table_count(t), n);
    ASSERT_EQ(mms_table_schema(t)->record_size, sizeof(struct rec2));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* A table whose fixed range would pass the end of the address space is
 * refused in a normal-mode handle too (MMS_EADDR, nothing made), so the
 * store still opens fixed. A normal handle used to create it: the store
 * then failed every MMS_FIXED open ("region 2's fixed range ... passes the
 * end of the address space"). The layout: the heap at 104 TiB, 16 TiB (clear
 * of ASan's allocator at 96-100 TiB and what follows it), table 1 at
 * [120, 124) TiB (below the libraries and stacks near 128 TiB), table 2 at
 * [124, 128) TiB, whose last page the kernel keeps. */
TEST(table_past_end)
{
    const char *p = shm_tpath("fixed-past-end");
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_FIXED;
    o.base = 104 * TIB;
    o.reserve = 16 * TIB;
    mms_store *s;
    OK(mms_open(p, &o, &s));
    OK(mms_close(s));
    struct rec { uint64_t a; };
    static const mms_field fields[] = {MMS_F_U64(struct rec, a)};
    static const mms_schema schema = MMS_SCHEMA(struct rec, fields);
    mms_table *t;
    uint64_t i;
    for (int fixed = 0; fixed < 2; fixed++) {
        s = fixed ? open_fixed(p, 0) : open_flags(p, 0);
        OK(mms_txn_begin(s, 0));
        if (!fixed) {
            OK(mms_table_open(s, "one", &schema, MMS_TABLE_CREATE, &t));
            OK(mms_table_append(t, &(struct rec){7}, &i));
        }
        FAILS(mms_table_open(s, "two", &schema, MMS_TABLE_CREATE, &t), MMS_EADDR);
        if (!strstr(mms_errdetail(), "passes the end of the address space"))
            FAILF("detail: %s", mms_errdetail());
        OK(mms_txn_commit(s));
        OK(mms_close(s));
    }
    s = open_fixed(p, 0);
    OK(mms_table_find(s, "one", &t));
    ASSERT_EQ((uintptr_t)mms_table_array(t), 120 * TIB);
    ASSERT_EQ(((struct rec *)mms_table_get(t, 0))->a, 7);
    FAILS(mms_table_find(s, "two", &t), MMS_ENOENT);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* ------------------------------------------------------------------------
 * Child processes: the writer, readers, the crash workload.
 * ------------------------------------------------------------------------ */
struct shared {
    uint64_t committed; /* transactions the writer committed (q->txns) */
    uint64_t done;      /* the writer finished */
    uint64_t stop;      /* readers: stop */
    uint64_t ready;     /* processes that opened the store */
    uint64_t reads[4];  /* reader i: read transactions that checked the queue */
    uint64_t addr[4];   /* the queue's address as reader i saw it */
    uint64_t failed;
    char msg[256];
};

static void child_fail(struct shared *sh, const char *fmt, const char *why)
{
    if (INC(sh->failed) == 1)
        snprintf(sh->msg, sizeof sh->msg, fmt, why);
    _exit(1);
}

/* Writer: txns transactions of queue_step, publishing each. */
static void role_writer(const char *path, uint64_t txns, uint64_t seed)
{
    struct shared *sh = child_page(sizeof *sh);
    mms_store *s = open_fixed(path, MMS_CREATE);
    INC(sh->ready);
    uint64_t rng = seed;
    for (uint64_t i = 0; i < txns; i++) {
        queue_step(s, &rng, (size_t)256 << 10);
        PUB(sh->committed, ((struct queue *)mms_root_ptr(s))->txns);
    }
    OK(mms_close(s));
    PUB(sh->done, 1);
}

/* Reader i: read transactions that walk the queue by its raw pointers. */
static void role_reader(const char *path, unsigned i)
{
    struct shared *sh = child_page(sizeof *sh);
    mms_store *s = open_fixed(path, i % 2 ? MMS_RDONLY : 0);
    INC(sh->ready);
    char why[256];
    uint64_t last = 0;
    while (!GET(sh->stop)) {
        OK(mms_read_begin(s));
        const struct queue *q = mms_root_ptr(s);
        if (q) {
            if (!queue_ok(q, why, sizeof why))
                child_fail(sh, "reader: %s", why);
            if (q->txns < last)
                child_fail(sh, "reader: %s", "went back in time");
            last = q->txns;
            PUB(sh->addr[i], (uintptr_t)q);
            INC(sh->reads[i]);
        }
        OK(mms_read_end(s));
    }
    OK(mms_close(s));
}

/* The crash workload: queue_step for ever, publishing every commit. */
static void role_crash(const char *path, uint64_t seed)
{
    struct shared *sh = child_page(sizeof *sh);
    mms_store *s = open_fixed(path, MMS_CREATE);
    INC(sh->ready);
    uint64_t rng = seed;
    for (;;) {
        queue_step(s, &rng, (size_t)64 << 10);
        PUB(sh->committed, ((struct queue *)mms_root_ptr(s))->txns);
    }
}

TEST(multi)
{
    const char *p = shm_tpath("fixed-multi");
    struct shared *sh = child_page(sizeof *sh);
    memset(sh, 0, sizeof *sh);
    mms_store *s = open_fixed(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    struct queue *q = queue_new(s);
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    pid_t readers[4];
    for (unsigned i = 0; i < 4; i++) {
        char idx[8];
        snprintf(idx, sizeof idx, "%u", i);
        readers[i] = child_spawn((const char *[]){"reader", p, idx, NULL}, NULL);
    }
    AWAIT(GET(sh->ready) == 4, -1, 60, "the readers did not open the store");
    pid_t w = child_spawn((const char *[]){"writer", p, "300", NULL}, NULL);
    AWAIT(GET(sh->done) || GET(sh->failed), w, 240, "the writer did not finish");
    sleep_us(50000);
    PUB(sh->stop, 1);
    int st;
    ASSERT(child_end(w, 60, &st));
    ASSERT_EQ(st, 0);
    for (unsigned i = 0; i < 4; i++) {
        ASSERT(child_end(readers[i], 60, &st));
        if (st != 0 || GET(sh->failed))
            FAILF("reader %u: %s; %s", i, child_status(st), sh->msg);
        fprintf(stderr, "   reader %u (%s): %llu read transactions\n", i,
                i % 2 ? "read-only" : "read-write", (unsigned long long)GET(sh->reads[i]));
        ASSERT_GE(GET(sh->reads[i]), 1);
        ASSERT_EQ(GET(sh->addr[i]), (uintptr_t)q); /* the same address in every process */
    }
    s = open_fixed(p, 0);
    q = mms_root_ptr(s);
    queue_check(q);
    ASSERT_EQ(q->txns, 300);
    verify_ok(s);
    verify_pointers_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

TEST(crash)
{
    unsigned soak;
    uint64_t seed = test_seed("test_fixed crash", 0, &soak, "");
    const char *p = shm_tpath("fixed-crash");
    struct shared *sh = child_page(sizeof *sh);
    unsigned rounds = 12 * soak;
    uint64_t txns = 0;
    for (unsigned round = 0; round < rounds; round++) {
        memset(sh, 0, sizeof *sh);
        PUB(sh->committed, txns); /* where the last round left the store */
        char sd[32];
        snprintf(sd, sizeof sd, "%llu", (unsigned long long)(seed + round));
        pid_t pid = child_spawn((const char *[]){"crash", p, sd, NULL}, NULL);
        AWAIT(GET(sh->ready), pid, 60, "the crash child did not open the store");
        uint64_t rng = seed ^ round;
        sleep_us(1000 + rnd_next(&rng) % 60000);
        kill(pid, SIGKILL);
        int st;
        ASSERT(child_end(pid, 60, &st));
        ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        uint64_t published = GET(sh->committed);
        mms_store *s = open_fixed(p, 0);
        const struct queue *q = mms_root_ptr(s);
        txns = q ? q->txns : 0;
        /* The last commit the child saw return, or the one after it if the
         * kill came after its journal group was durable. */
        if (txns != published && txns != published + 1)
            FAILF("round %u: the store is at txn %llu, the child had committed %llu", round,
                  (unsigned long long)txns, (unsigned long long)published);
        if (q)
            queue_check(q);
        verify_ok(s);
        verify_pointers_ok(s);
        OK(mms_close(s));
        if (round % 4 == 0)
            fprintf(stderr, "   round %u: killed after %llu commits\n", round,
                    (unsigned long long)txns);
    }
    rmrf(p);
}

/* Write root into the closed store's header at path, with the header's
 * CRC: what damage (or a library without the commit's root check) left. */
static void set_root_on_disk(const char *path, mms_ref root)
{
    char f[600];
    snprintf(f, sizeof f, "%s/region-0-0", path);
    int fd = open(f, O_RDWR);
    ASSERT(fd >= 0);
    static char hb[MMS__HDR_BYTES];
    ASSERT_EQ(pread(fd, hb, sizeof hb, 0), (ssize_t)sizeof hb);
    struct mms__hdr *h = (struct mms__hdr *)(void *)hb;
    h->root = root;
    h->crc = mms__hdr_crc(h, (const struct mms__rent *)(void *)(hb + MMS__PAGE));
    ASSERT_EQ(pwrite(fd, hb, MMS__PAGE, 0), (ssize_t)MMS__PAGE);
    close(fd);
}

/* ------------------------------------------------------------------------
 * pointers: mms_verify_pointers and mms verify --pointers
 * ------------------------------------------------------------------------ */
struct holder {
    void *p[4];
};

static uint64_t heap_size(mms_store *s)
{
    mms_info in;
    OK(mms_info_get(s, &in));
    return in.region_size[0];
}

static uint64_t scan(mms_store *s, char *msg, size_t cap)
{
    uint64_t n = 99;
    int r = mms_verify_pointers(s, msg, cap, &n);
    ASSERT_EQ(r, n ? MMS_ECORRUPT : 0);
    return n;
}

static void pointers_on(const char *p, unsigned flags)
{
    char msg[512], cmd[700], out[2048];
    mms_store *s = open_flags(p, MMS_CREATE | flags);
    OK(mms_txn_begin(s, 0));
    struct holder *h = mms_pcalloc(s, 1, sizeof *h);
    OK(mms_root_ptr_set(s, h));
    char *a = mms_pmalloc(s, 100), *b = mms_pmalloc(s, 100);
    h->p[0] = a + 50;  /* inside */
    h->p[1] = b + 112; /* just past the end of b's 112 usable bytes */
    h->p[2] = (void *)(uintptr_t)12345; /* not an address of the store */
    OK(mms_txn_commit(s));
    ASSERT_EQ(scan(s, msg, sizeof msg), 0);
    fprintf(stderr, "   %s\n", msg);
    /* A pointer to freed space. */
    OK(mms_txn_begin(s, 0));
    mms_pfree(s, a);
    OK(mms_txn_commit(s));
    ASSERT_EQ(scan(s, msg, sizeof msg), 1);
    fprintf(stderr, "   %s\n", msg);
    ASSERT(strstr(msg, "a free slot") != NULL);
    verify_ok(s); /* mms_verify itself does not look at pointers */
    if (!(flags & MMS_FIXED)) {
        OK(mms_close(s));
        rmrf(p);
        return;
    }
    snprintf(cmd, sizeof cmd, "verify '%s' --pointers", p);
    OK(mms_close(s));
    ASSERT_EQ(run_tool(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "a free slot") != NULL);
    snprintf(cmd, sizeof cmd, "verify '%s'", p);
    ASSERT_EQ(run_tool(cmd, out, sizeof out), 0);
    s = open_flags(p, flags);
    h = mms_root_ptr(s);
    /* Fixed: into a table's records (live, deleted, past the last), past
     * the heap's end, and the root. */
    struct rec { uint64_t a; };
    static const mms_field fields[] = {MMS_F_U64(struct rec, a)};
    static const mms_schema schema = MMS_SCHEMA(struct rec, fields);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    h->p[0] = NULL;
    OK(mms_table_open(s, "t", &schema, MMS_TABLE_CREATE, &t));
    for (int i = 0; i < 5; i++)
        OK(mms_table_append(t, NULL, NULL));
    h->p[1] = mms_table_get(t, 2);
    h->p[3] = (char *)mms_table_array(t) + 5 * sizeof(struct rec); /* the end */
    OK(mms_txn_commit(s));
    ASSERT_EQ(scan(s, msg, sizeof msg), 0);
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(t, 2));
    OK(mms_txn_commit(s));
    ASSERT_EQ(scan(s, msg, sizeof msg), 1);
    ASSERT(strstr(msg, "deleted table record") != NULL);
    OK(mms_txn_begin(s, 0));
    h->p[1] = (char *)mms_table_array(t) + 4096;
    h->p[2] = (char *)mms_deref(s, MMS_REF_MAKE(0, 0)) + heap_size(s) + 64;
    OK(mms_txn_commit(s));
    ASSERT_EQ(scan(s, msg, sizeof msg), 2);
    fprintf(stderr, "   %s\n", msg);
    ASSERT(strstr(msg, "past its records") != NULL);
    OK(mms_txn_begin(s, 0));
    h->p[1] = h->p[2] = NULL;
    char *c = mms_pmalloc(s, 64);
    mms_ref rc;
    OK(mms_ref_of(s, c, &rc));
    OK(mms_txn_commit(s));
    /* A root can only be set to a live allocation, and a commit that
     * freed it afterwards is refused (it committed a dangling root). */
    OK(mms_txn_begin(s, 0));
    OK(mms_root_set(s, rc));
    mms_pfree(s, c);
    FAILS(mms_root_set(s, rc), MMS_EBADREF);
    FAILS(mms_root_ptr_set(s, c), MMS_EBADREF);
    FAILS(mms_txn_commit(s), MMS_EBADREF);
    OK(mms_txn_begin(s, 0));
    mms_pfree(s, c);
    OK(mms_txn_commit(s));
    ASSERT_EQ(scan(s, msg, sizeof msg), 0);
    /* So a dangling root is damage: written into the header (with its
     * CRC), the scan reports it, and so does mms_verify. */
    mms_ref keep = mms_root(s);
    OK(mms_close(s));
    set_root_on_disk(p, rc);
    s = open_flags(p, flags);
    ASSERT_EQ(scan(s, msg, sizeof msg), 1);
    ASSERT(strstr(msg, "the root") != NULL);
    FAILS(mms_verify(s, msg, sizeof msg), MMS_ECORRUPT);
    ASSERT(strstr(msg, "the root") != NULL);
    OK(mms_txn_begin(s, 0));
    OK(mms_root_set(s, keep));
    OK(mms_txn_commit(s));
    ASSERT_EQ(scan(s, msg, sizeof msg), 0);
    OK(mms_close(s));
    snprintf(cmd, sizeof cmd, "verify '%s' --pointers", p);
    ASSERT_EQ(run_tool(cmd, out, sizeof out), 0);
    ASSERT(strstr(out, ": ok") != NULL);
    fprintf(stderr, "   mms %s: %s", cmd, out);
    rmrf(p);
}

TEST(pointers)
{
    pointers_on(shm_tpath("fixed-pointers"), MMS_FIXED);
    /* A normal store: against this handle's mappings. */
    pointers_on(shm_tpath("fixed-pointers-normal"), 0);
}

/* ------------------------------------------------------------------------
 * example: examples/pmap, killed and checked
 * ------------------------------------------------------------------------ */
static const char *example_bin(void)
{
    static char path[600];
    const char *tool = getenv("MMS_TOOL");
    ASSERT(tool != NULL);
    const char *slash = strrchr(tool, '/');
    snprintf(path, sizeof path, "%.*s/pmap", slash ? (int)(slash - tool) : 1,
             slash ? tool : ".");
    return path;
}

static int run_cmd(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    ASSERT(f != NULL);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

TEST(example)
{
    const char *p = shm_tpath("fixed-pmap"), *bin = example_bin();
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' put apple 3 && '%s' '%s' put pear && '%s' '%s' get apple",
             bin, p, bin, p, bin, p);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT(strstr(out, "apple 3") != NULL);
    uint64_t rng = 7;
    for (int round = 0; round < 4; round++) {
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            die_with_parent(getppid());
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 1);
            char n[16];
            snprintf(n, sizeof n, "%d", 1000000);
            execl(bin, bin, p, "fill", n, (char *)NULL);
            _exit(127);
        }
        sleep_us(20000 + rnd_next(&rng) % 200000);
        kill(pid, SIGKILL);
        int st;
        ASSERT(child_end(pid, 60, &st));
        ASSERT(WIFSIGNALED(st));
        snprintf(cmd, sizeof cmd, "'%s' '%s' check", bin, p);
        int rc = run_cmd(cmd, out, sizeof out);
        if (rc != 0)
            FAILF("pmap check after kill -9: %s", out);
        fprintf(stderr, "   round %d: %s", round, out);
    }
    snprintf(cmd, sizeof cmd, "verify '%s' --pointers", p);
    ASSERT_EQ(run_tool(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "'%s' '%s' get pear", bin, p);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT(strstr(out, "pear 1") != NULL);
    rmrf(p);
}

int main(int argc, char **argv)
{
    char **a = child_enter(argc, argv, 3, "ROLE PATH ARG");
    if (a) {
        if (strcmp(a[0], "writer") == 0)
            role_writer(a[1], strtoull(a[2], NULL, 10), 11);
        else if (strcmp(a[0], "reader") == 0)
            role_reader(a[1], (unsigned)atoi(a[2]));
        else if (strcmp(a[0], "crash") == 0)
            role_crash(a[1], strtoull(a[2], NULL, 10));
        else
            FAILF("unknown role %s", a[0]);
        _exit(0);
    }
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): addresses and
     * pointers are the point; the crash case's kills are process crashes. */
    signal(SIGABRT, shm_on_abort);
    RUN(basic);
    RUN(api);
    RUN(modes);
    RUN(addr_in_use);
    RUN(create_in_use);
    RUN(creates_at_once);
    RUN(growth);
    RUN(migrate_full);
    RUN(table_past_end);
    RUN(pointers);
    RUN(multi);
    RUN(crash);
    RUN(example);
    shm_cleanup();
    printf("fixed ok\n");
    return 0;
}

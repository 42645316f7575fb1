/* mms_verify_heap and `mms verify`'s warnings: heap objects that nothing
 * refers to (a leak) and string fields that share one string (a record
 * copied whole) are counted, and neither fails mms_verify. */
#include "test.h"

#include "internal.h"

#include <string.h>

struct rec {
    int64_t id;
    uint64_t handle; /* an application's heap ref, kept as a number */
    mms_ref name;
};
static const mms_field fields[] = {MMS_F_I64(struct rec, id), MMS_F_U64(struct rec, handle),
                                   MMS_F_STR(struct rec, name)};
static const mms_schema schema = MMS_SCHEMA(struct rec, fields);

static mms_heap_check check(mms_store *s)
{
    mms_heap_check hc;
    OK(mms_verify_heap(s, &hc));
    verify_ok(s); /* a warning is not damage */
    return hc;
}

static mms_table *people(mms_store *s)
{
    mms_table *t;
    OK(mms_table_open(s, "people", &schema, MMS_TABLE_CREATE, &t));
    return t;
}

static void append_named(mms_table *t, mms_store *s, int64_t id, const char *name)
{
    struct rec r = {id, 0, 0};
    OK(mms_str_new(s, name, strlen(name), &r.name));
    OK(mms_table_append(t, &r, NULL));
}

TEST(clean_store_has_no_warning)
{
    const char *p = tpath("hc-clean");
    mms_store *s = open_flags(p, MMS_CREATE);
    mms_heap_check hc = check(s);
    ASSERT_EQ(hc.objects, 0u);
    OK(mms_txn_begin(s, 0));
    mms_table *t = people(s);
    for (int i = 0; i < 100; i++)
        append_named(t, s, i, i % 2 ? "odd" : "even");
    OK(mms_table_delete(t, 7));
    OK(mms_txn_commit(s));
    hc = check(s);
    ASSERT_EQ(hc.objects, 0u);
    ASSERT_EQ(hc.unreachable, 0u);
    ASSERT_EQ(hc.shared, 0u);
    OK(mms_txn_begin(s, 0));
    FAILS(mms_verify_heap(s, &hc), MMS_ETXN);
    OK(mms_txn_abort(s));
    OK(mms_close(s));
}

/* A string made and never stored, and one whose field was overwritten
 * without mms_free (mms_str_set frees; a plain store does not). */
TEST(leaks_are_counted)
{
    const char *p = tpath("hc-leak");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t = people(s);
    append_named(t, s, 1, "ann");
    mms_ref lost;
    OK(mms_str_new(s, "never stored", 12, &lost));
    OK(mms_txn_commit(s));
    mms_heap_check hc = check(s);
    ASSERT_EQ(hc.objects, 1u);
    ASSERT_EQ(hc.unreachable, 1u);
    ASSERT_EQ(hc.first_unreachable, lost);
    size_t usable;
    OK(mms_alloc_size(s, lost, &usable));
    ASSERT_EQ(hc.unreachable_bytes, (uint64_t)usable);

    OK(mms_txn_begin(s, 0));
    struct rec *r = mms_table_get(t, 0);
    mms_ref old = r->name;
    OK(mms_str_new(s, "bo", 2, &r->name)); /* "ann" is not freed */
    OK(mms_txn_commit(s));
    hc = check(s);
    ASSERT_EQ(hc.unreachable, 2u);
    ASSERT_EQ(hc.first_unreachable, lost < old ? lost : old);

    /* Freeing them ends the leak. */
    OK(mms_txn_begin(s, 0));
    OK(mms_free(s, lost));
    OK(mms_free(s, old));
    OK(mms_txn_commit(s));
    hc = check(s);
    ASSERT_EQ(hc.objects, 0u);
    ASSERT_EQ(hc.unreachable, 0u);
    OK(mms_close(s));
}

/* What the application keeps is reached: the root, a graph of objects from
 * it (by ref and by pointer), an object whose ref a u64 field holds. */
TEST(reachable_objects_are_not_leaks)
{
    const char *p = tpath("hc-reach");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t = people(s);
    mms_ref a, b, c, d, e;
    OK(mms_zalloc(s, 64, &a));
    OK(mms_zalloc(s, 5000, &b)); /* a page run */
    OK(mms_zalloc(s, 32, &c));
    OK(mms_zalloc(s, 16, &d));
    OK(mms_str_new(s, "kept by a number field", 22, &e));
    OK(mms_root_set(s, a));
    ((mms_ref *)mms_deref(s, a))[3] = b;                      /* a ref */
    ((void **)mms_deref(s, b))[600] = (char *)mms_deref(s, c) + 8; /* a pointer, inside c */
    struct rec r = {1, e, 0};
    OK(mms_table_append(t, &r, NULL));
    OK(mms_txn_commit(s));
    mms_heap_check hc = check(s);
    ASSERT_EQ(hc.objects, 5u);
    ASSERT_EQ(hc.unreachable, 1u); /* d only */
    ASSERT_EQ(hc.first_unreachable, d);

    /* Cut the chain: b and c are lost with it. */
    OK(mms_txn_begin(s, 0));
    ((mms_ref *)mms_deref(s, a))[3] = 0;
    OK(mms_txn_commit(s));
    hc = check(s);
    ASSERT_EQ(hc.unreachable, 3u);
    /* A deleted record keeps nothing. */
    OK(mms_txn_begin(s, 0));
    OK(mms_table_delete(t, 0));
    OK(mms_txn_commit(s));
    hc = check(s);
    ASSERT_EQ(hc.unreachable, 4u);
    OK(mms_close(s));
}

/* A record copied whole shares its string: counted, not damage -- until a
 * delete frees it under the other, which mms_verify reports. */
TEST(shared_strings_are_counted)
{
    const char *p = tpath("hc-shared");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t = people(s);
    append_named(t, s, 1, "ann");
    append_named(t, s, 2, "bo");
    OK(mms_table_append(t, mms_table_get(t, 0), NULL));
    OK(mms_txn_commit(s));
    mms_heap_check hc = check(s);
    ASSERT_EQ(hc.shared, 1u);
    ASSERT_EQ(hc.first_shared, ((struct rec *)mms_table_get(t, 0))->name);
    ASSERT_EQ(hc.unreachable, 0u);
    OK(mms_close(s));
}

/* The tool prints one warning line per finding; exit 0 (sound), 2 with
 * --strict. */
TEST(tool_warns)
{
    const char *p = tpath("hc-tool");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t = people(s);
    append_named(t, s, 1, "ann");
    char cmd[700], out[4096];
    OK(mms_txn_commit(s));
    snprintf(cmd, sizeof cmd, "verify %s", p);
    ASSERT_EQ(run_tool(cmd, out, sizeof out), 0);
    ASSERT(strstr(out, "warning") == NULL);
    OK(mms_txn_begin(s, 0));
    mms_ref lost;
    OK(mms_str_new(s, "lost", 4, &lost));
    OK(mms_table_append(t, mms_table_get(t, 0), NULL));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    ASSERT_EQ(run_tool(cmd, out, sizeof out), 0);
    if (!strstr(out, ": ok\n") || !strstr(out, "warning unreachable objects=1 bytes=") ||
        !strstr(out, "warning shared fields=1 "))
        FAILF("mms verify said:\n%s", out);
    snprintf(cmd, sizeof cmd, "verify --strict %s", p);
    ASSERT_EQ(run_tool(cmd, out, sizeof out), 2);
}

/* A STR field of a damaged record may hold any 64 bits; the set of refs
 * the records own (mms_verify_heap, mms_heap_objects) takes them all. Its
 * map of regions covers region ids below MMS_MAX_REGIONS only: a ref
 * naming region 0xffff set a bit 8 KiB past it. */
TEST(refset_takes_any_ref)
{
    struct {
        struct mms__refset rs;
        uint64_t after[MMS_MAX_REGIONS]; /* where an id up to 0xffff reaches */
    } box;
    memset(&box, 0, sizeof box);
    const mms_ref odd[] = {MMS_REF_MAKE(0xffff, 0x9030), MMS_REF_MAKE(MMS_MAX_REGIONS, 16),
                           ~(mms_ref)0, MMS_REF_MAKE(3, 7)};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        OK(mms__refset_add(&box.rs, odd[i]));
    for (size_t i = 0; i < MMS_MAX_REGIONS; i++)
        if (box.after[i])
            FAILF("mms__refset_add wrote past the set: word %zu after it is 0x%llx", i,
                  (unsigned long long)box.after[i]);
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        ASSERT(mms__refset_has(&box.rs, odd[i]));
    ASSERT(mms__refset_has_region(&box.rs, 3));
    ASSERT(!mms__refset_has_region(&box.rs, 0xffff));
    mms__refset_free(&box.rs);
}

/* The library's own heap objects (the catalog, a table's field list,
 * deleted-record bitmap, null bitmaps) are live allocations too, so the
 * public calls that free or move an object by ref took a wrong ref that
 * names one -- a stale ref whose space the catalog now holds. The commit
 * refused a plain free, but an allocation in the same transaction could
 * land in the freed space (the object live again), and the commit then
 * kept a store that failed mms_verify ("table people: field 0 is
 * damaged"). They must refuse it, MMS_EBADREF, the heap unchanged and the
 * transaction going on; mms_heap_library_owned names them. */
TEST(library_objects_are_kept)
{
    const char *p = tpath("hc-libobjs");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t = people(s);
    for (int i = 0; i < 50; i++)
        append_named(t, s, i, "name");
    OK(mms_table_delete(t, 3));               /* a deleted-record bitmap */
    OK(mms_table_null_set(t, 5, 1, 1));       /* null bitmaps */
    mms_ref app;
    OK(mms_alloc(s, 40, &app));
    OK(mms_root_set(s, app));
    OK(mms_txn_commit(s));
    verify_ok(s);
    mms_ref name = MMS_TABLE_GET(t, struct rec, 0)->name, rec0 = mms_table_ref(t, 0);
    ASSERT_EQ(mms_heap_library_owned(s, app), 0);
    ASSERT_EQ(mms_heap_library_owned(s, name), 0);
    ASSERT_EQ(mms_heap_library_owned(s, rec0), 0);
    ASSERT_EQ(mms_heap_library_owned(s, MMS_REF_NULL), 0);
    ASSERT_EQ(mms_heap_library_owned(s, app + 16), 0); /* no allocation starts there */

    /* Every live allocation that is neither the application's nor a
     * record's string: the library's. */
    mms_heap_obj *objs;
    size_t nobjs, found = 0;
    OK(mms_heap_objects(s, &objs, &nobjs));
    ASSERT_EQ(nobjs, 1);
    uint64_t top = mms__rtab(s)[0].size;
    for (uint64_t off = MMS__HDR_BYTES; off < top; off += 16) {
        mms_ref r = MMS_REF_MAKE(0, off);
        size_t us;
        if (r == objs[0].ref || mms_alloc_size(s, r, &us) != 0 || mms_str_get(s, r, NULL))
            continue;
        found++;
        ASSERT_EQ(mms_heap_library_owned(s, r), 1);
        OK(mms_txn_begin(s, 0));
        uint64_t txn = mms_txn_id(s);
        FAILS(mms_free(s, r), MMS_EBADREF);
        mms_ref moved = r;
        FAILS(mms_realloc(s, &moved, 4 * us), MMS_EBADREF); /* would move it */
        FAILS(mms_realloc(s, &moved, us), MMS_EBADREF);     /* would keep it */
        ASSERT_EQ(moved, r);
        FAILS(mms_root_set(s, r), MMS_EBADREF); /* it would name whatever lands there next */
        ASSERT_EQ(mms_root(s), app);
        mms_ref field = r;
        FAILS(mms_str_set(s, &field, "x", 1), MMS_EBADREF);
        ASSERT_EQ(field, r);
        mms_pfree(s, mms_deref(s, r));
        ASSERT_EQ(mms_last_error(), MMS_EBADREF);
        ASSERT(mms_prealloc(s, mms_deref(s, r), 4 * us) == NULL);
        ASSERT_EQ(mms_last_error(), MMS_EBADREF);
        /* Had r been freed, this would take its place. */
        mms_ref n;
        OK(mms_alloc(s, us, &n));
        ASSERT_NE(n, r);
        OK(mms_alloc_size(s, r, &us));
        OK(mms_txn_commit(s));
        ASSERT_EQ(mms_txn_id(s), txn + 1);
        verify_ok(s);
        OK(mms_txn_begin(s, 0));
        OK(mms_free(s, n));
        OK(mms_txn_commit(s));
    }
    free(objs);
    ASSERT_GE(found, 4); /* catalog, field list, bitmap, null bitmaps */
    /* The library frees and moves its own objects as it likes. */
    OK(mms_txn_begin(s, 0));
    for (int i = 0; i < 2000; i++)
        append_named(t, s, 100 + i, "more");
    for (int i = 0; i < 2000; i += 3)
        OK(mms_table_delete(t, (uint64_t)i));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* mms_free looks for the library's own objects in a set made by a walk
 * of the catalog at the first such look of a write transaction (a walk
 * at each call made it slower with each table: bench/tables_cost.c).
 * What the library makes later in that transaction -- a catalog, field
 * lists, a larger catalog, a deleted-record bitmap and a larger one, null
 * bitmaps, an index list, a migrated field list -- must be refused all
 * the same, and what it frees (the field list a migration replaced) is
 * the application's to allocate and free again. */
struct rec2 {
    int64_t id;
    uint64_t handle;
    mms_ref name;
    int64_t extra;
};
static const mms_field fields2[] = {MMS_F_I64(struct rec2, id), MMS_F_U64(struct rec2, handle),
                                    MMS_F_STR(struct rec2, name), MMS_F_I64(struct rec2, extra)};
static const mms_schema schema2 = MMS_SCHEMA(struct rec2, fields2);

TEST(library_objects_made_in_the_transaction)
{
    const char *p = tpath("hc-libnew");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref app;
    OK(mms_alloc(s, 40, &app));
    OK(mms_free(s, app)); /* the set is made: no catalog yet */
    mms_table *t = people(s);
    for (int i = 0; i < 10; i++) { /* the catalog grows past its first 8 entries */
        char name[16];
        snprintf(name, sizeof name, "more%d", i);
        mms_table *x;
        OK(mms_table_open(s, name, &schema, MMS_TABLE_CREATE, &x));
        OK(mms_alloc(s, 24, &app));
        OK(mms_free(s, app)); /* a look between each change */
    }
    for (int i = 0; i < 3000; i++)
        append_named(t, s, i, "n");
    OK(mms_alloc(s, 24, &app));
    OK(mms_free(s, app));
    OK(mms_table_delete(t, 3)); /* a deleted-record bitmap */
    OK(mms_alloc(s, 24, &app));
    OK(mms_free(s, app));
    OK(mms_table_null_set(t, 5, 1, 1)); /* null bitmaps */
    OK(mms_alloc(s, 24, &app));
    OK(mms_free(s, app));
    OK(mms_index_create(t, "id", MMS_INDEX_HASH)); /* an index list */
    OK(mms_alloc(s, 24, &app));
    OK(mms_free(s, app));
    mms_table *t2;
    OK(mms_table_open(s, "people", &schema2, 0, &t2)); /* migrated: a new field list */
    size_t found = 0;
    uint64_t top = mms__rtab(s)[0].size;
    for (uint64_t off = MMS__HDR_BYTES; off < top; off += 16) {
        mms_ref r = MMS_REF_MAKE(0, off);
        size_t us;
        if (mms_alloc_size(s, r, &us) != 0 || mms_str_get(s, r, NULL))
            continue;
        found++;
        if (mms_heap_library_owned(s, r) != 1)
            FAILF("live heap object 0x%llx is neither a string nor the library's",
                  (unsigned long long)r);
        FAILS(mms_free(s, r), MMS_EBADREF);
    }
    ASSERT_GE(found, 5); /* catalog, field lists, bitmap, null bitmaps, index list */
    /* What the library freed is the application's now: allocations of the
     * replaced field list's size land there and are freed. */
    mms_ref mine[64];
    for (int i = 0; i < 64; i++)
        OK(mms_alloc(s, sizeof(struct mms__fdesc) * 3, &mine[i]));
    for (int i = 0; i < 64; i++)
        OK(mms_free(s, mine[i]));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
}

/* A damaged field list (a stray store into the catalog's heap object) may
 * put a STR or I64 field past its record: the walks of mms_verify_heap and
 * mms_heap_objects read 8 bytes there for every record, so they must
 * refuse it (MMS_ECORRUPT), not read past the table's region. */
TEST(damaged_field_offset)
{
    const char *p = tpath("hc-fieldoff");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t = people(s);
    append_named(t, s, 1, "one");
    mms_ref app; /* an application object: the walk reads the u64 fields */
    OK(mms_alloc(s, 32, &app));
    MMS_TABLE_GET(t, struct rec, 0)->handle = app;
    OK(mms_txn_commit(s));
    for (int k = 1; k <= 2; k++) { /* the u64 handle, the str name */
        OK(mms_txn_begin(s, 0));
        const struct mms__tabent *e = &mms__catalog(s)->t[0];
        struct mms__fdesc *fd = mms__fdescs(s, e);
        uint32_t was = fd[k].offset;
        fd[k].offset = 1u << 30;
        OK(mms_txn_commit(s));
        mms_heap_check hc;
        FAILS(mms_verify_heap(s, &hc), MMS_ECORRUPT);
        mms_heap_obj *objs;
        size_t n;
        if (k == 2) /* the objects' walk reads the string fields only */
            FAILS(mms_heap_objects(s, &objs, &n), MMS_ECORRUPT);
        OK(mms_txn_begin(s, 0));
        mms__fdescs(s, &mms__catalog(s)->t[0])[k].offset = was;
        OK(mms_txn_commit(s));
        check(s);
    }
    OK(mms_close(s));
    rmrf(p);
}

int main(void)
{
    RUN(clean_store_has_no_warning);
    RUN(leaks_are_counted);
    RUN(reachable_objects_are_not_leaks);
    RUN(shared_strings_are_counted);
    RUN(tool_warns);
    RUN(refset_takes_any_ref);
    RUN(library_objects_are_kept);
    RUN(library_objects_made_in_the_transaction);
    RUN(damaged_field_offset);
    return 0;
}

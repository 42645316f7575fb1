/*
 * test_multi_table.c -- tables read by other processes while the writer
 * creates and migrates them (test_multi.c is the same for the heap).
 *
 *  1. reader    A read-only handle in another process sees a table created
 *               by the writer, and later its migrated layout, after its next
 *               mms_read_begin (never before the commit); its pointers into
 *               the table stay valid addresses; refs through MMS_REC follow
 *               the new record size. Outside a read transaction a record
 *               pointer must be NULL or inside the store. A second writer
 *               handle that wrote to the table in its old layout sees the
 *               new one in its next transaction.
 *  2. stress    A reader process loops over read transactions while the
 *               writer migrates a table back and forth (and checkpoints):
 *               each read transaction sees one layout, whole, one stamp.
 *  3. shrink    Handles in another process (read-only and read-write) keep
 *               pointers to a table's records while the writer migrates it
 *               to smaller records, drops it, and creates, migrates and
 *               drops tables in its region again and again: after each of
 *               their next mms_read_begin every byte the old pointers
 *               reached is readable (the table's bytes now, zeros past them;
 *               it was a SIGSEGV), and their mappings, as /proc/self/maps
 *               counts them, do not grow with the cycles.
 *
 * The readers are forked (not exec'd: they need no crash points) and talk
 * to the writer through pipes or a shared anonymous page.
 *
 * MMS_SOAK=N makes the stress case longer.
 */
#include "table_world.h"

#include <poll.h>

/* ========================================================================
 * 1. A reader in another process
 * ======================================================================== */
struct ra {
    int64_t v;
    mms_ref str;
};
static const mms_field ra_fields[] = {MMS_F_I64(struct ra, v), MMS_F_STR(struct ra, str)};
static const mms_schema ra_schema = MMS_SCHEMA(struct ra, ra_fields);
struct rb1 {
    int32_t k;
    char label[6];
    mms_ref to_a;
    mms_ref self;
};
static const mms_field rb1_fields[] = {MMS_F_I32(struct rb1, k), MMS_F_CHARS(struct rb1, label),
                                       MMS_F_REF(struct rb1, to_a, "ta"),
                                       MMS_F_REF(struct rb1, self, "tb")};
static const mms_schema rb1_schema = MMS_SCHEMA(struct rb1, rb1_fields);
static const uint32_t dflt_nine = 9;
struct rb2 {
    char label[12];
    int64_t k;
    mms_ref self;
    mms_ref to_a;
    uint32_t extra;
};
static const mms_field rb2_fields[] = {
    MMS_F_CHARS(struct rb2, label), MMS_F_I64(struct rb2, k), MMS_F_REF(struct rb2, self, "tb"),
    MMS_F_REF(struct rb2, to_a, "ta"), MMS_F_WITH_DEFAULT(struct rb2, extra, MMS_KIND_U32, &dflt_nine)};
static const mms_schema rb2_schema = MMS_SCHEMA(struct rb2, rb2_fields);
#define NB 500

static void pipe_send(int fd, char c)
{
    ASSERT_EQ(write(fd, &c, 1), 1);
}

static char pipe_recv(int fd, const char *who)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 60000);
    if (r != 1)
        FAILF("%s: nothing from the other process for 60 s", who);
    char c = 0;
    if (read(fd, &c, 1) != 1)
        FAILF("%s: the other process is gone", who);
    return c;
}

static void rb_label(int i, char *out)
{
    snprintf(out, 6, "L%u", (unsigned)i % 10000u);
}

static void reader_child(const char *path, int rfd, int wfd)
{
    CTX("reader child");
    mms_store *s = sopen(path, MMS_RDONLY);
    mms_table *ta = NULL, *tb = NULL, *t = NULL;
    char lab[8];
    OK(mms_read_begin(s));
    FAILS(mms_table_find(s, "tb", &tb), MMS_ENOENT);
    OK(mms_table_find(s, "ta", &ta));
    ASSERT_EQ(mms_table_count(ta), 100);
    ASSERT_EQ(((struct ra *)mms_table_get(ta, 42))->v, 126);
    OK(mms_read_end(s));
    pipe_send(wfd, 'a');
    /* The writer created tb but has not committed. */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'u');
    OK(mms_read_begin(s));
    FAILS(mms_table_find(s, "tb", &tb), MMS_ENOENT);
    OK(mms_read_end(s));
    pipe_send(wfd, 'b');
    /* Committed: visible after the next mms_read_begin. Before it (outside
     * a read transaction) anything may show, but a record pointer must be
     * NULL or point into the store (the table's region is not mapped yet:
     * mms_ptr() knows that case, see store.c region_size()). */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'c');
    int outside_bug = 0;
    if (mms_table_find(s, "tb", &tb) == 0) {
        for (uint64_t i = 1; i < NB; i += 97) {
            void *p = mms_table_get(tb, i);
            mms_ref ref;
            if (p && mms_ref_of(s, p, &ref) != 0) {
                fprintf(stderr, "%s:%d: LIBRARY BUG: a read-only handle outside a read "
                        "transaction: mms_table_find(\"tb\") finds the new table (count %llu) "
                        "but mms_table_get(tb, %llu) = %p, neither NULL nor inside the store\n",
                        __FILE__, __LINE__, (unsigned long long)mms_table_count(tb),
                        (unsigned long long)i, p);
                outside_bug = 1;
                break;
            }
        }
    }
    OK(mms_read_begin(s));
    OK(mms_table_find(s, "tb", &tb));
    schema_same(mms_table_schema(tb), &rb1_schema, "tb (reader)");
    OK(mms_table_open(s, "tb", &rb1_schema, 0, &t));
    ASSERT(t == tb);
    ASSERT_EQ(mms_table_count(tb), NB);
    for (int i = 0; i < NB; i++) {
        const struct rb1 *r = mms_table_get(tb, (uint64_t)i);
        ASSERT_EQ(r->k, i);
        rb_label(i, lab);
        ASSERT(strncmp(r->label, lab, 6) == 0);
        ASSERT_EQ(MMS_REC(s, struct ra, r->to_a)->v, (i % 100) * 3);
        ASSERT_EQ(MMS_REC(s, struct rb1, r->self)->k, (i * 7) % NB);
        size_t len;
        const char *str = mms_str_get(s, MMS_REC(s, struct ra, r->to_a)->str, &len);
        ASSERT(str && len == 3 && str[0] == 'a');
    }
    char *arr = mms_table_array(tb);
    struct rb1 *p5 = mms_table_get(tb, 5);
    OK(mms_read_end(s));
    pipe_send(wfd, 'd');
    /* Migrated, not committed: still the old layout. */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'm');
    OK(mms_read_begin(s));
    schema_same(mms_table_schema(tb), &rb1_schema, "tb (reader, migration uncommitted)");
    ASSERT(mms_table_get(tb, 5) == p5);
    ASSERT_EQ(p5->k, 5);
    OK(mms_read_end(s));
    pipe_send(wfd, 'e');
    /* Committed, and a checkpoint removed the old file. */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'M');
    ASSERT_EQ(*(volatile int32_t *)&p5->k, 5); /* the old mapping, until the next begin */
    OK(mms_read_begin(s));
    schema_same(mms_table_schema(tb), &rb2_schema, "tb (reader, migrated)");
    ASSERT(mms_table_array(tb) == arr); /* the same address range */
    ASSERT_EQ(mms_table_count(tb), NB);
    for (int i = 0; i < NB; i++) {
        const struct rb2 *r = mms_table_get(tb, (uint64_t)i);
        ASSERT((const char *)r == arr + (size_t)i * sizeof(struct rb2));
        ASSERT_EQ(r->k, i);
        ASSERT_EQ(r->extra, 9);
        rb_label(i, lab);
        if (i == 3)
            strcpy(lab, "Z3"); /* the second writer handle's change */
        ASSERT(strncmp(r->label, lab, 12) == 0);
        ASSERT_EQ(MMS_REC(s, struct rb2, r->self)->k, (i * 7) % NB);
        ASSERT_EQ(MMS_REC(s, struct ra, r->to_a)->v, (i % 100) * 3);
    }
    /* The old pointer is still a valid address; it sees the new layout. */
    volatile const char *vp = (const char *)p5;
    ASSERT_EQ(vp[0], arr[5 * sizeof(struct rb1)]);
    FAILS(mms_table_open(s, "tb", &rb1_schema, 0, &t), MMS_ESCHEMA);
    OK(mms_table_open(s, "tb", &rb2_schema, 0, &t));
    OK(mms_read_end(s));
    pipe_send(wfd, 'f');
    /* Another writer handle appended a record in the new layout. */
    ASSERT_EQ(pipe_recv(rfd, "reader"), 'n');
    OK(mms_read_begin(s));
    ASSERT_EQ(mms_table_count(tb), NB + 1);
    const struct rb2 *r = mms_table_get(tb, NB);
    ASSERT_EQ(r->k, NB);
    ASSERT_EQ(MMS_REC(s, struct rb2, r->self)->k, 0);
    OK(mms_read_end(s));
    OK(mms_close(s));
    pipe_send(wfd, 'g');
    _exit(outside_bug ? 3 : 0);
}

TEST(test_reader)
{
    const char *path = tpath("table-reader");
    double t0 = now_us();
    CTX("reader: writer");
    mms_store *s = sopen(path, MMS_CREATE);
    mms_table *ta, *tb;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "ta", &ra_schema, MMS_TABLE_CREATE, &ta));
    for (int i = 0; i < 100; i++) {
        struct ra a = {(int64_t)i * 3, 0};
        OK(mms_str_new(s, "a__", 3, &a.str));
        OK(mms_table_append(ta, &a, NULL));
    }
    OK(mms_txn_commit(s));
    int p2c[2], c2p[2];
    ASSERT_EQ(pipe(p2c), 0);
    ASSERT_EQ(pipe(c2p), 0);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(p2c[1]);
        close(c2p[0]);
        reader_child(path, p2c[0], c2p[1]);
    }
    close(p2c[0]);
    close(c2p[1]);
    int rfd = c2p[0], wfd = p2c[1];
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'a');
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "tb", &rb1_schema, MMS_TABLE_CREATE, &tb));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(tb, NB, &first, &where));
    for (int i = 0; i < NB; i++) {
        struct rb1 *r = (struct rb1 *)where + i;
        r->k = i;
        rb_label(i, r->label);
        r->to_a = mms_table_ref(ta, (uint64_t)(i % 100));
        r->self = mms_table_ref(tb, (uint64_t)((i * 7) % NB));
    }
    pipe_send(wfd, 'u');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'b');
    OK(mms_txn_commit(s));
    pipe_send(wfd, 'c');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'd');
    /* A second writer handle, with tb open in the old layout, that wrote
     * to it (its private copies of the old file's pages stay after the
     * commit). */
    mms_store *h2 = sopen(path, 0);
    mms_table *tb2;
    OK(mms_table_open(h2, "tb", &rb1_schema, 0, &tb2));
    OK(mms_txn_begin(h2, 0));
    memcpy(((struct rb1 *)mms_table_get(tb2, 3))->label, "Z3\0\0\0", 6);
    OK(mms_txn_commit(h2));
    uint32_t id = table_region(tb);
    uint32_t gen0 = region_gen(s, id);
    OK(mms_txn_begin(s, 0));
    mms_table *t = NULL;
    OK(mms_table_open(s, "tb", &rb2_schema, 0, &t));
    ASSERT(t == tb);
    ASSERT_EQ(((struct rb2 *)mms_table_get(tb, 77))->k, 77);
    ASSERT_EQ(((struct rb2 *)mms_table_get(tb, 77))->extra, 9);
    pipe_send(wfd, 'm');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'e');
    OK(mms_txn_commit(s));
    OK(mms_checkpoint(s));
    only_region_file(path, id, gen0 + 1);
    pipe_send(wfd, 'M');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'f');
    /* The second handle sees the new layout in its next transaction; it
     * was opened with the old one, so its appends wait for it to be opened
     * with the new (a record of the old is smaller). */
    OK(mms_txn_begin(h2, 0));
    schema_same(mms_table_schema(tb2), &rb2_schema, "tb (second writer handle)");
    ASSERT_EQ(((struct rb2 *)mms_table_get(tb2, 5))->k, 5);
    ASSERT(strcmp(((struct rb2 *)mms_table_get(tb2, 3))->label, "Z3") == 0);
    struct rb2 nr;
    memset(&nr, 0, sizeof nr);
    nr.k = NB;
    nr.self = mms_table_ref(tb2, 0);
    uint64_t idx;
    FAILS(mms_table_append(tb2, &nr, &idx), MMS_ESCHEMA);
    OK(mms_table_open(h2, "tb", &rb2_schema, 0, &t));
    ASSERT(t == tb2);
    OK(mms_table_append(tb2, &nr, &idx));
    ASSERT_EQ(idx, NB);
    OK(mms_txn_commit(h2));
    pipe_send(wfd, 'n');
    ASSERT_EQ(pipe_recv(rfd, "writer"), 'g');
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
        BUG("the reader got a record pointer outside the store (its report above)");
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the reader process ended with status 0x%x", st);
    close(rfd);
    close(wfd);
    OK(mms_close(h2));
    /* The first handle sees the second's append after its next begin. */
    OK(mms_read_begin(s));
    ASSERT_EQ(mms_table_count(tb), NB + 1);
    OK(mms_read_end(s));
    verify_ok(s);
    OK(mms_close(s));
    rmrf(path);
    fprintf(stderr, "   reader saw the new table and then the migrated layout; %.1f s\n",
            (now_us() - t0) / 1e6);
}

/* ========================================================================
 * 2. A reader process in a loop of read transactions while the writer
 *     migrates the table back and forth between two layouts (reorder and
 *     record size) and stamps every record in each transaction: every read
 *     transaction sees one layout, whole, with one stamp in every record.
 * ======================================================================== */
struct sl1 {
    int64_t k;
    int64_t v;
};
static const mms_field sl1_fields[] = {MMS_F_I64(struct sl1, k), MMS_F_I64(struct sl1, v)};
static const mms_schema sl1_schema = MMS_SCHEMA(struct sl1, sl1_fields);
struct sl2 {
    int64_t v;
    int64_t pad;
    int64_t k;
};
static const mms_field sl2_fields[] = {MMS_F_I64(struct sl2, v), MMS_F_I64(struct sl2, k)};
static const mms_schema sl2_schema = MMS_SCHEMA(struct sl2, sl2_fields);
#define NSL 3000

struct stress_sh {
    int stop, ready;
    unsigned long iters, seen[2], stamp_changes;
    int64_t last_stamp;
};

static void stress_reader(const char *path, struct stress_sh *sh)
{
    CTX("stress reader");
    mms_store *s = sopen(path, MMS_RDONLY);
    mms_table *t = NULL;
    const char *arr0 = NULL;
    int64_t last = -1;
    __atomic_store_n(&sh->ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
        OK(mms_read_begin(s));
        if (!t)
            OK(mms_table_find(s, "st", &t));
        const mms_schema *sc = mms_table_schema(t);
        ASSERT(sc);
        int which = sc->record_size == sizeof(struct sl1) ? 0 : 1;
        ASSERT_EQ(sc->record_size, which ? sizeof(struct sl2) : sizeof(struct sl1));
        const mms_field *fk = field_named(sc, "k"), *fv = field_named(sc, "v");
        ASSERT(fk && fv);
        ASSERT_EQ(fk->offset, which ? offsetof(struct sl2, k) : offsetof(struct sl1, k));
        ASSERT_EQ(mms_table_count(t), NSL);
        const char *arr = mms_table_array(t);
        if (!arr0)
            arr0 = arr;
        ASSERT(arr == arr0); /* migrations never move the array */
        int64_t stamp;
        memcpy(&stamp, arr + fv->offset, 8);
        ASSERT_GE(stamp, last);
        if (stamp != last)
            sh->stamp_changes++;
        last = stamp;
        for (uint64_t i = 0; i < NSL; i++) {
            const char *p = mms_table_get(t, i);
            int64_t k, v;
            memcpy(&k, p + fk->offset, 8);
            memcpy(&v, p + fv->offset, 8);
            if (k != (int64_t)i || v != stamp)
                FAILF("stress reader: layout %d, record %llu holds k %lld v %lld; expected k "
                      "%llu v %lld (record 0's stamp)", which + 1, (unsigned long long)i,
                      (long long)k, (long long)v, (unsigned long long)i, (long long)stamp);
        }
        OK(mms_read_end(s));
        sh->seen[which]++;
        sh->iters++;
    }
    OK(mms_close(s));
    _exit(0);
}

TEST(test_reader_stress)
{
    const char *path = tpath("table-stress");
    double t0 = now_us();
    struct stress_sh *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(sh != MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    mms_store *w = sopen(path, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(w, 0));
    OK(mms_table_open(w, "st", &sl1_schema, MMS_TABLE_CREATE, &t));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, NSL, &first, &where));
    for (int64_t i = 0; i < NSL; i++)
        ((struct sl1 *)where)[i].k = i;
    OK(mms_txn_commit(w));
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        stress_reader(path, sh);
    while (!__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST))
        sleep_us(100);
    int which = 0;
    unsigned n = 0, migrations = 0, checkpoints = 0;
    for (n = 1; n <= 2000; n++) {
        CTX("stress writer: transaction %u", n);
        OK(mms_txn_begin(w, 0));
        if (n % 2) {
            which ^= 1;
            OK(mms_table_open(w, "st", which ? &sl2_schema : &sl1_schema, 0, &t));
            migrations++;
        }
        const mms_schema *sc = mms_table_schema(t);
        uint32_t vo = field_named(sc, "v")->offset;
        for (uint64_t i = 0; i < NSL; i++)
            memcpy((char *)mms_table_get(t, i) + vo, &(int64_t){(int64_t)n}, 8);
        OK(mms_txn_commit(w));
        if (n % 16 == 0) { /* old files go while the reader may map them */
            OK(mms_checkpoint(w));
            checkpoints++;
        }
        if (n >= 200 * soak && sh->seen[0] >= 3 && sh->seen[1] >= 3 && sh->stamp_changes >= 10)
            break;
    }
    __atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the stress reader ended with status 0x%x", st);
    verify_ok(w);
    OK(mms_close(w));
    fprintf(stderr, "   writer: %u transactions, %u migrations, %u checkpoints; reader: %lu read "
            "transactions (layout 1: %lu, layout 2: %lu), %lu stamps seen; %.1f s\n", n,
            migrations, checkpoints, sh->iters, sh->seen[0], sh->seen[1], sh->stamp_changes,
            (now_us() - t0) / 1e6);
    ASSERT_GE(sh->seen[0], 1);
    ASSERT_GE(sh->seen[1], 1);
    ASSERT_GE(sh->stamp_changes, 2);
    munmap(sh, sizeof *sh);
    rmrf(path);
}

/* ========================================================================
 * 3. Pointers of other handles while a table shrinks and goes
 * ======================================================================== */
struct bg {
    int64_t k;
    char pad[56];
};
static const mms_field bg_fields[] = {MMS_F_I64(struct bg, k), MMS_F_CHARS(struct bg, pad)};
static const mms_schema bg_schema = MMS_SCHEMA(struct bg, bg_fields);
struct sm {
    int64_t k;
};
static const mms_field sm_fields[] = {MMS_F_I64(struct sm, k)};
static const mms_schema sm_schema = MMS_SCHEMA(struct sm, sm_fields);
#define NBG 4000
#define CYCLES 12

/* Lines of /proc/self/maps: the process's mappings. */
static unsigned maps_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ASSERT(f);
    unsigned n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The mappings after cycles 1 to CYCLES: the second half's most is the
 * first half's (they differ with the sizes of the tables, three apart, by
 * a zero range that the kernel keeps in two pieces or one). */
static void maps_bounded(const unsigned *maps_at)
{
    unsigned first = 0, second = 0;
    for (int c = 1; c <= CYCLES; c++) {
        unsigned *half = c <= CYCLES / 2 ? &first : &second;
        *half = maps_at[c] > *half ? maps_at[c] : *half;
    }
    ASSERT_LE(second, first);
}

/* Bytes of [p, p + len) that are not zero; a fault here is the bug. */
static uint64_t nonzero_bytes(const char *p, uint64_t len)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < len; i++)
        n += ((const volatile char *)p)[i] != 0;
    return n;
}

static void shrink_child(const char *path, int rfd, int wfd)
{
    mms_store *h[2] = {sopen(path, MMS_RDONLY), sopen(path, 0)};
    char *arr[2];
    const uint64_t len = (uint64_t)NBG * sizeof(struct bg);
    mms_table *t;
    for (int k = 0; k < 2; k++) {
        CTX("shrink child: handle %d, the table in 64-byte records", k);
        OK(mms_read_begin(h[k]));
        OK(mms_table_find(h[k], "big", &t));
        ASSERT_EQ(mms_table_slots(t), NBG);
        arr[k] = mms_table_array(t);
        ASSERT_EQ(((struct bg *)arr[k])[NBG - 1].k, NBG);
        OK(mms_read_end(h[k]));
    }
    pipe_send(wfd, 'a');
    ASSERT_EQ(pipe_recv(rfd, "shrink child"), 'm');
    for (int k = 0; k < 2; k++) {
        CTX("shrink child: handle %d, migrated to 8-byte records", k);
        OK(mms_read_begin(h[k]));
        OK(mms_table_find(h[k], "big", &t));
        ASSERT_EQ(mms_table_schema(t)->record_size, sizeof(struct sm));
        ASSERT(mms_table_array(t) == arr[k]); /* the same address range */
        /* The old pointers see the new layout (mms_table_open), zeros past
         * it: the 32 KB of records, then 224 KB that the region no longer
         * maps in this layout. */
        for (int64_t i = 0; i < NBG; i++)
            ASSERT_EQ(((int64_t *)arr[k])[i], i + 1);
        ASSERT_EQ(nonzero_bytes(arr[k] + NBG * sizeof(struct sm),
                                len - NBG * sizeof(struct sm)), 0);
        OK(mms_read_end(h[k]));
    }
    pipe_send(wfd, 'b');
    unsigned maps_at[CYCLES + 1] = {0};
    for (int cycle = 0; cycle <= CYCLES; cycle++) {
        /* Dropped (cycle 0: the table above); then created, migrated and
         * dropped again by the writer, one step per message. */
        for (char step = pipe_recv(rfd, "shrink child"); step != 'd';
             step = pipe_recv(rfd, "shrink child")) {
            for (int k = 0; k < 2; k++) {
                CTX("shrink child: handle %d, cycle %d, step %c", k, cycle, step);
                OK(mms_read_begin(h[k]));
                (void)nonzero_bytes(arr[k], len); /* readable, whatever it shows */
                OK(mms_read_end(h[k]));
            }
            pipe_send(wfd, 'n');
        }
        for (int k = 0; k < 2; k++) {
            CTX("shrink child: handle %d, cycle %d, dropped", k, cycle);
            OK(mms_read_begin(h[k]));
            FAILS(mms_table_find(h[k], "big", &t), MMS_ENOENT);
            ASSERT_EQ(nonzero_bytes(arr[k], len), 0);
            OK(mms_read_end(h[k]));
        }
        maps_at[cycle] = maps_count();
        pipe_send(wfd, 'n');
    }
    CTX("shrink child: mappings after the cycles");
    maps_bounded(maps_at);
    OK(mms_close(h[0]));
    OK(mms_close(h[1]));
    _exit(0);
}

/* The writer's side: step (create, migrate) sent and answered. */
static void shrink_step(int rfd, int wfd, char step)
{
    pipe_send(wfd, step);
    ASSERT_EQ(pipe_recv(rfd, "shrink writer"), 'n');
}

TEST(test_shrink)
{
    const char *path = tpath("table-shrink");
    double t0 = now_us();
    CTX("shrink: writer");
    mms_store *w = sopen(path, MMS_CREATE);
    mms_table *t;
    uint64_t first;
    void *where;
    OK(mms_txn_begin(w, 0));
    OK(mms_table_open(w, "big", &bg_schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_append_many(t, NBG, &first, &where));
    for (int64_t i = 0; i < NBG; i++)
        ((struct bg *)where)[i].k = i + 1;
    OK(mms_txn_commit(w));
    int p2c[2], c2p[2];
    ASSERT_EQ(pipe(p2c), 0);
    ASSERT_EQ(pipe(c2p), 0);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(p2c[1]);
        close(c2p[0]);
        shrink_child(path, p2c[0], c2p[1]);
    }
    close(p2c[0]);
    close(c2p[1]);
    int rfd = c2p[0], wfd = p2c[1];
    ASSERT_EQ(pipe_recv(rfd, "shrink writer"), 'a');
    OK(mms_txn_begin(w, 0));
    OK(mms_table_open(w, "big", &sm_schema, 0, &t));
    OK(mms_txn_commit(w));
    OK(mms_checkpoint(w)); /* the old file goes */
    pipe_send(wfd, 'm');
    ASSERT_EQ(pipe_recv(rfd, "shrink writer"), 'b');
    unsigned maps_at[CYCLES + 1] = {0};
    for (int cycle = 0; cycle <= CYCLES; cycle++) {
        CTX("shrink writer: cycle %d", cycle);
        if (cycle) {
            OK(mms_txn_begin(w, 0));
            OK(mms_table_open(w, "big", &bg_schema, MMS_TABLE_CREATE, &t));
            OK(mms_table_append_many(t, NBG / 4 * (uint64_t)(cycle % 3 + 1), &first, &where));
            OK(mms_txn_commit(w));
            shrink_step(rfd, wfd, 'c');
            OK(mms_txn_begin(w, 0));
            OK(mms_table_open(w, "big", &sm_schema, 0, &t));
            OK(mms_txn_commit(w));
            OK(mms_checkpoint(w));
            shrink_step(rfd, wfd, 'm');
        }
        OK(mms_txn_begin(w, 0));
        OK(mms_table_drop(w, "big"));
        OK(mms_txn_commit(w));
        OK(mms_checkpoint(w));
        maps_at[cycle] = maps_count();
        shrink_step(rfd, wfd, 'd');
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("the shrink child ended with status 0x%x%s", st,
              WIFSIGNALED(st) ? " (killed by a signal: an old pointer faulted)" : "");
    close(rfd);
    close(wfd);
    CTX("shrink writer: mappings after the cycles");
    maps_bounded(maps_at);
    verify_ok(w);
    OK(mms_close(w));
    rmrf(path);
    fprintf(stderr, "   old pointers of two handles stayed readable through %d cycles; %.1f s\n",
            CYCLES, (now_us() - t0) / 1e6);
}

/* ========================================================================
 * 4. Finding a table outside any transaction
 * ======================================================================== */
/* A handle that looks a table up outside a transaction, while another
 * handle creates it or appends to it: the lookup sees one committed state,
 * as inside a read transaction. It said "store is corrupt" for a table
 * created since the handle last followed the catalog ("region 1 is not
 * mapped"), and now and then while another handle's apply of an append was
 * under way (the entry's count read after, the region's size before). */
static void lookup_child(const char *path, int flags, int secs)
{
    mms_store *a = open_flags(path, flags);
    long bad = 0, n = 0;
    char first[300] = "";
    for (double end = now_us() + secs * 1e6; now_us() < end; n++) {
        mms_table *t;
        int r = mms_table_find(a, "grow", &t);
        if (r && !bad++)
            snprintf(first, sizeof first, "%s: %s", mms_strerror(r), mms_errdetail());
    }
    if (bad)
        FAILF("%ld of %ld lookups outside a transaction failed, the first with %s", bad, n,
              first);
    OK(mms_close(a));
    _exit(0);
}

TEST(test_lookup_outside_txn)
{
    const char *path = tpath("mt_lookup");
    rmrf(path);
    mms_store *w = open_flags(path, MMS_CREATE);
    mms_store *r = open_flags(path, MMS_RDONLY), *r2 = open_flags(path, 0);
    /* Created after both opened: they have never followed it. */
    OK(mms_txn_begin(w, 0));
    mms_table *t;
    OK(mms_table_open(w, "ta", &ra_schema, MMS_TABLE_CREATE, &t));
    struct ra x = {41, 0};
    OK(mms_table_append(t, &x, NULL));
    OK(mms_txn_commit(w));
    mms_store *hs[] = {r, r2};
    for (int i = 0; i < 2; i++) {
        CTX(i ? "a write handle, outside a transaction" : "a read-only handle, outside a "
                                                          "transaction");
        mms_table *f;
        OK(mms_table_find(hs[i], "ta", &f));
        ASSERT_EQ(mms_table_count(f), 1);
        OK(mms_table_open(hs[i], "ta", &ra_schema, 0, &f));
        OK(mms_read_begin(hs[i]));
        ASSERT_EQ(((const struct ra *)mms_table_get(f, 0))->v, 41);
        OK(mms_read_end(hs[i]));
        mms_table_info info[4];
        size_t n;
        OK(mms_tables(hs[i], info, 4, &n));
        ASSERT_EQ(n, 1);
    }
    OK(mms_close(r));
    OK(mms_close(r2));
    /* While another handle appends (its region grows): a read-only handle
     * and a write handle look it up in a loop for a second each. */
    OK(mms_txn_begin(w, 0));
    OK(mms_table_open(w, "grow", &ra_schema, MMS_TABLE_CREATE, &t));
    OK(mms_txn_commit(w));
    for (int i = 0; i < 2; i++) {
        CTX(i ? "lookups of a write handle while another appends"
              : "lookups of a read-only handle while another appends");
        fflush(NULL);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0)
            lookup_child(path, i ? 0 : MMS_RDONLY, 1);
        uint64_t commits = 0;
        int st;
        for (pid_t got; (got = waitpid(pid, &st, WNOHANG)) != pid; commits++) {
            ASSERT_EQ(got, 0);
            OK(mms_txn_begin(w, 0));
            for (int k = 0; k < 200; k++)
                OK(mms_table_append(t, &x, NULL));
            OK(mms_txn_commit(w));
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            FAILF("the lookup child ended with %s", child_status(st));
        fprintf(stderr, "   %s: %llu commits of 200 appends meanwhile\n",
                i ? "write handle" : "read-only handle", (unsigned long long)commits);
    }
    OK(mms_close(w));
    rmrf(path);
}

int main(void)
{
    table_test_begin("test_multi_table");
    RUN(test_reader);
    RUN(test_reader_stress);
    RUN(test_shrink);
    RUN(test_lookup_outside_txn);
    return table_test_end();
}

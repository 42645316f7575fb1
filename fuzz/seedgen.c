/*
 * seedgen.c -- seed inputs for the fuzz target: small real stores, made
 * with the public API, packed into the form of image.h.
 *
 *     fuzz_seedgen DIR     writes DIR/seed-<name>, one per store below
 *
 * The seeds are made afresh by every build (ctest runs this before the
 * corpus replay), so the repository keeps only the inputs the fuzzer found
 * (fuzz/corpus/). Each store covers a part of the format:
 *   empty       a new store: header, region table, one heap unit, journal
 *   heap        allocations of every kind (slab classes, page runs), frees,
 *               a root
 *   huge        an allocation of its own segments: a second heap unit
 *   tables      two tables with every field kind, refs between them, deleted
 *               records (a tombstone bitmap), strings and blobs, a migrated
 *               layout (region file generation 1)
 *   journal     commits left in the journal by a writer that died (applied)
 *   unapplied   a commit durable in the journal and not applied (the writer
 *               was killed at the crash point commit.journal_synced)
 *   nosync      MMS_NOSYNC commits of a writer that died
 *   epochs      two checkpoints: both journal header slots valid
 *   indexes     a table with five indexes (regions 2-6): hash unique on an
 *               8-byte key (the get's short path), hash covering on an
 *               8-byte key with duplicates (the covered get's short path),
 *               hash on a 4-byte key, ordered unique on a long chars key
 *               (two levels: inner pages, linked leaves), ordered covering
 *               on a float key (NaN, -0.0, duplicates); deleted records
 *   ixjournal   indexes, then commits that change indexed keys (appends,
 *               deletes, plain stores) left in the journal by a writer
 *               that died
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mmstore.h>

#include "image.h"

static void die(const char *what, int r)
{
    fprintf(stderr, "fuzz_seedgen: %s: %s (%s)\n", what, r ? mms_strerror(r) : "failed",
            mms_errdetail());
    exit(1);
}
#define OK(call)                                                               \
    do {                                                                       \
        int r_ = (call);                                                       \
        if (r_)                                                                \
            die(#call, r_);                                                    \
    } while (0)

static char tmp[512];

static void rm_store(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.')
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
    rmdir(dir);
}

static mms_store *open_store(const char *path, unsigned flags)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = flags;
    o.grow_step = 1u << 20;
    mms_store *s;
    OK(mms_open(path, &o, &s));
    return s;
}

/* ------------------------------------------------------------------------
 * Packing a store directory (image.h)
 * ------------------------------------------------------------------------ */
static void put(FILE *f, const void *p, size_t n)
{
    if (fwrite(p, 1, n, f) != n)
        die("fwrite", 0);
}

static void pack_file(FILE *out, int name, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(size ? (size_t)size : 1);
    if (!b || fread(b, 1, (size_t)size, f) != (size_t)size)
        die("read", 0);
    fclose(f);
    /* Runs of nonzero bytes; gaps of fewer than 16 zeros are kept inside a
     * run (a chunk header costs 6 bytes). */
    static struct {
        uint32_t off;
        uint16_t len;
    } ch[65535];
    uint16_t n = 0;
    for (long i = 0; i < size && n < 65535;) {
        if (!b[i]) {
            i++;
            continue;
        }
        long j = i, last = i;
        while (j < size && j - i < 65535 && j - last < 16) {
            if (b[j])
                last = j;
            j++;
        }
        ch[n].off = (uint32_t)i;
        ch[n].len = (uint16_t)(last + 1 - i);
        n++;
        i = last + 1;
    }
    uint8_t nm = (uint8_t)(name | MMS_FUZZ_FIX);
    uint32_t fsize = (uint32_t)size;
    put(out, &nm, 1);
    put(out, &fsize, 4);
    put(out, &n, 2);
    for (uint16_t k = 0; k < n; k++) {
        put(out, &ch[k].off, 4);
        put(out, &ch[k].len, 2);
        put(out, b + ch[k].off, ch[k].len);
    }
    free(b);
}

static void pack(const char *dir, const char *outdir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/seed-%s", outdir, name);
    FILE *out = fopen(p, "wb");
    if (!out)
        die(p, -errno);
    for (size_t i = 0; i < MMS_FUZZ_NNAMES; i++) {
        if (strcmp(mms_fuzz_names[i], "lock") == 0)
            continue; /* rebuilt at every open: nothing to learn from it */
        char fp[1024];
        snprintf(fp, sizeof fp, "%s/%s", dir, mms_fuzz_names[i]);
        pack_file(out, (int)i, fp);
    }
    if (fclose(out) != 0)
        die(p, -errno);
    struct stat st;
    stat(p, &st);
    printf("fuzz_seedgen: %s: %lld bytes\n", p, (long long)st.st_size);
}

/* ------------------------------------------------------------------------
 * The stores
 * ------------------------------------------------------------------------ */
struct person {
    int64_t id;
    char tag[8];
    double score;
    mms_ref name;
    mms_ref boss;
    uint8_t flag;
    int8_t small;
    uint16_t u16;
    uint32_t u32;
    float f32;
    mms_ref blob;
};
static const mms_field person_fields[] = {
    MMS_F_I64(struct person, id),    MMS_F_CHARS(struct person, tag),
    MMS_F_F64(struct person, score), MMS_F_STR(struct person, name),
    MMS_F_REF(struct person, boss, "person"), MMS_F_BOOL(struct person, flag),
    MMS_F_I8(struct person, small),  MMS_F_U16(struct person, u16),
    MMS_F_U32(struct person, u32),   MMS_F_F32(struct person, f32),
    MMS_F_BLOB(struct person, blob),
};
static const mms_schema person_schema = MMS_SCHEMA(struct person, person_fields);

/* The layout after a migration: fields dropped, u32 widened, one added
 * with a default. */
struct person2 {
    uint64_t u32;
    mms_ref name;
    int32_t added;
    mms_ref boss;
    int64_t id;
};
static const int32_t added_default = 7;
static const mms_field person2_fields[] = {
    MMS_F_U64(struct person2, u32), MMS_F_STR(struct person2, name),
    MMS_F_WITH_DEFAULT(struct person2, added, MMS_KIND_I32, &added_default),
    MMS_F_REF(struct person2, boss, "person"), MMS_F_I64(struct person2, id),
};
static const mms_schema person2_schema = MMS_SCHEMA(struct person2, person2_fields);

struct team {
    char name[16];
    mms_ref lead;
    uint64_t size;
};
static const mms_field team_fields[] = {
    MMS_F_CHARS(struct team, name),
    MMS_F_REF(struct team, lead, "person"),
    MMS_F_U64(struct team, size),
};
static const mms_schema team_schema = MMS_SCHEMA(struct team, team_fields);

/* Indexed (fill_indexes): tag is long so that its ordered index has
 * several leaves under an inner page (29 entries a leaf); its bytes past
 * the name are zeros, which the packing skips. */
struct item {
    int64_t id;
    uint64_t key;
    int32_t grp;
    uint32_t val;
    double score;
    char tag[128];
};
static const mms_field item_fields[] = {
    MMS_F_I64(struct item, id),   MMS_F_U64(struct item, key),   MMS_F_I32(struct item, grp),
    MMS_F_U32(struct item, val),  MMS_F_F64(struct item, score), MMS_F_CHARS(struct item, tag),
};
static const mms_schema item_schema = MMS_SCHEMA(struct item, item_fields);
#define NITEM 64

static struct item item_of(unsigned i)
{
    struct item r = {.id = (int64_t)i * 37 - 500, .key = (uint64_t)(i / 2) * 1000003u,
                     .grp = (int32_t)(i % 5) - 2, .val = i * 11, .score = (i % 9) * 0.5};
    if (i == 7)
        r.score = -0.0;
    if (i == 8)
        r.score = 0.0 / 0.0;
    snprintf(r.tag, sizeof r.tag, "tag%03u", (i * 29) % 1000);
    return r;
}

static void some_allocations(mms_store *s, unsigned salt)
{
    static const size_t sizes[] = {1, 16, 17, 48, 100, 256, 300, 1000, 2048, 2049, 5000, 70000};
    mms_ref keep[12];
    for (unsigned i = 0; i < 12; i++) {
        OK(mms_alloc(s, sizes[i], &keep[i]));
        memset(mms_deref(s, keep[i]), (int)(i + salt), sizes[i] < 64 ? sizes[i] : 64);
    }
    for (unsigned i = 0; i < 12; i += 3)
        OK(mms_free(s, keep[i]));
    OK(mms_root_set(s, keep[1]));
}

static void make_tables(mms_store *s, unsigned n)
{
    mms_table *p, *t;
    OK(mms_table_open(s, "person", &person_schema, MMS_TABLE_CREATE, &p));
    OK(mms_table_open(s, "team", &team_schema, MMS_TABLE_CREATE, &t));
    for (unsigned i = 0; i < n; i++) {
        struct person r = {.id = i, .score = i * 1.5, .flag = i & 1, .small = (int8_t)-i,
                           .u16 = (uint16_t)(i * 3), .u32 = i * 7, .f32 = (float)i / 3};
        snprintf(r.tag, sizeof r.tag, "t%u", i % 1000);
        char name[32];
        int len = snprintf(name, sizeof name, "person %u", i);
        OK(mms_str_new(s, name, (size_t)len, &r.name));
        if (i % 3 == 0)
            OK(mms_str_new(s, "\0\1\2\3", 4, &r.blob));
        r.boss = i ? MMS_REF_MAKE(1, i / 2) : 0;
        OK(mms_table_append(p, &r, NULL));
    }
    for (unsigned i = 0; i < 3; i++) {
        struct team r = {.lead = MMS_REF_MAKE(1, i), .size = i + 1};
        snprintf(r.name, sizeof r.name, "team %u", i);
        OK(mms_table_append(t, &r, NULL));
    }
    /* Deleted records: some no other record refers to (bosses are i / 2,
     * leads 0..2). */
    for (unsigned i = n / 2 + 1; i < n; i += 4)
        OK(mms_table_delete(p, i));
}

/* A child that commits and dies: its commits stay in the journal. With
 * crash set, the library kills it there (MMS_CRASH). */
static void dying_writer(const char *path, unsigned flags, const char *crash, unsigned commits)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", -errno);
    if (pid == 0) {
        if (crash)
            setenv("MMS_CRASH", crash, 1);
        mms_store *s = open_store(path, flags);
        for (unsigned k = 0; k < commits; k++) {
            OK(mms_txn_begin(s, 0));
            some_allocations(s, k);
            mms_table *p;
            if (mms_table_find(s, "person", &p) == 0)
                OK(mms_table_append(p, NULL, NULL)); /* zeros, in whatever layout */
            OK(mms_txn_commit(s));
        }
        _exit(0); /* no close: no checkpoint */
    }
    int st;
    waitpid(pid, &st, 0);
    if (crash ? !WIFSIGNALED(st) : !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "fuzz_seedgen: the writer child ended with status 0x%x\n", st);
        exit(1);
    }
}

static void seed(const char *outdir, const char *name, void (*fill)(const char *path))
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s.mms", tmp, name);
    rm_store(path);
    fill(path);
    pack(path, outdir, name);
    rm_store(path);
}

static void fill_empty(const char *path)
{
    OK(mms_close(open_store(path, MMS_CREATE)));
}

static void fill_heap(const char *path)
{
    mms_store *s = open_store(path, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    some_allocations(s, 1);
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

static void fill_huge(const char *path)
{
    mms_store *s = open_store(path, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref r;
    OK(mms_alloc(s, (size_t)5 << 20, &r));
    memcpy(mms_deref(s, r), "huge", 4);
    OK(mms_root_set(s, r));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

static void fill_tables(const char *path)
{
    mms_store *s = open_store(path, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    make_tables(s, 24);
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    mms_table *p;
    OK(mms_table_open(s, "person", &person2_schema, 0, &p));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

static void fill_journal(const char *path)
{
    fill_tables(path);
    dying_writer(path, 0, NULL, 3);
}

static void fill_unapplied(const char *path)
{
    fill_tables(path);
    dying_writer(path, 0, "commit.journal_synced:2", 3);
}

static void fill_nosync(const char *path)
{
    fill_heap(path);
    dying_writer(path, MMS_NOSYNC, NULL, 4);
}

static void fill_epochs(const char *path)
{
    fill_heap(path);
    for (int k = 0; k < 2; k++) {
        mms_store *s = open_store(path, 0);
        OK(mms_txn_begin(s, 0));
        some_allocations(s, (unsigned)k + 5);
        OK(mms_txn_commit(s));
        OK(mms_close(s));
    }
}

static void fill_indexes(const char *path)
{
    mms_store *s = open_store(path, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "item", &item_schema, MMS_TABLE_CREATE, &t));
    for (unsigned i = 0; i < NITEM; i++) {
        struct item r = item_of(i);
        OK(mms_table_append(t, &r, NULL));
    }
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    OK(mms_index_create(t, "id", MMS_INDEX_UNIQUE));
    OK(mms_index_create_covering(t, "key", MMS_INDEX_HASH, "val"));
    OK(mms_index_create(t, "grp", MMS_INDEX_HASH));
    OK(mms_index_create(t, "tag", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE));
    OK(mms_index_create_covering(t, "score", MMS_INDEX_ORDERED, "val"));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    for (unsigned i = 3; i < NITEM; i += 10)
        OK(mms_table_delete(t, i));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

/* Commits that change indexed keys every way, by a writer that dies. */
static void fill_ixjournal(const char *path)
{
    fill_indexes(path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", -errno);
    if (pid == 0) {
        mms_store *s = open_store(path, 0);
        mms_table *t;
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "item", &item_schema, 0, &t));
        struct item r = item_of(NITEM);
        OK(mms_table_append(t, &r, NULL)); /* into the first deleted slot */
        struct item *p = mms_table_get(t, 10);
        p->id = 100000; /* plain stores to keys and a covered field */
        p->key = 1;
        p->val = 99;
        p->score = 1e300;
        memcpy(p->tag, "moved", 6);
        OK(mms_txn_commit(s));
        OK(mms_txn_begin(s, 0));
        OK(mms_table_delete(t, 20));
        OK(mms_table_delete(t, 21));
        OK(mms_txn_commit(s));
        _exit(0); /* no close: no checkpoint */
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "fuzz_seedgen: the index writer child ended with status 0x%x\n", st);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    mkdir(argv[1], 0777);
    snprintf(tmp, sizeof tmp, "%s/tmp.%d", argv[1], (int)getpid());
    mkdir(tmp, 0777);
    seed(argv[1], "empty", fill_empty);
    seed(argv[1], "heap", fill_heap);
    seed(argv[1], "huge", fill_huge);
    seed(argv[1], "tables", fill_tables);
    seed(argv[1], "journal", fill_journal);
    seed(argv[1], "unapplied", fill_unapplied);
    seed(argv[1], "nosync", fill_nosync);
    seed(argv[1], "epochs", fill_epochs);
    seed(argv[1], "indexes", fill_indexes);
    seed(argv[1], "ixjournal", fill_ixjournal);
    rmdir(tmp);
    return 0;
}

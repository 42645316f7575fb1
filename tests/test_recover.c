/*
 * test_recover.c -- `mms recover` (tools/mms_recover.c, tools/salvage.c):
 * salvaging stores damaged from outside the library (issue 10, bug 3).
 *
 * One good store with two tables (strings, blobs, refs between and within
 * them, deleted records, missing values, indexes, a root record) is damaged
 * in copies, one way each, and recovered:
 *  - undamaged: exit 0, DEST holds the same content (`mms dump --all` of
 *    both is the same text) and verifies;
 *  - a flipped byte in one record's string ref: that field is reported and
 *    cleared, every other record and value is kept, exit 1;
 *  - a truncated table file: the records past the cut are reported as one
 *    range and dropped (their slots deleted), the refs to them cleared, the
 *    rest kept, exit 1;
 *  - journals: a commit durable in the journal and not applied is replayed
 *    (exit 0); garbage after the last commit is ignored (exit 0); garbage in
 *    that commit loses it, reported (exit 1); a missing journal leaves the
 *    region files as they are;
 *  - a root that is a heap object with a list hanging from it: dropped and
 *    reported by default, copied with --follow-refs;
 *  - a corrupt header or an unreadable catalog: a clear message, exit 2, no
 *    DEST; DEST that exists: refused, exit 2, untouched; --dry-run writes
 *    nothing.
 *  - random damage (bytes flipped in any file): exit 0, 1 or 2, never a
 *    signal, and a DEST that verifies.
 * The source is never written: its files are compared before and after.
 */
#include "test.h"

#include <sys/statvfs.h>

#include <stdarg.h>

#include "internal.h"

struct city {
    int64_t id;
    mms_ref name;
};
static const mms_field city_fields[] = {MMS_F_I64(struct city, id), MMS_F_STR(struct city, name)};
static const mms_schema city_schema = MMS_SCHEMA(struct city, city_fields);

struct person {
    int64_t id;
    mms_ref name;
    mms_ref city;
    mms_ref boss;
    mms_ref photo;
    double score;
    char tag[8];
};
static const mms_field person_fields[] = {
    MMS_F_I64(struct person, id),          MMS_F_STR(struct person, name),
    MMS_F_REF(struct person, city, "city"), MMS_F_REF(struct person, boss, "person"),
    MMS_F_BLOB(struct person, photo),      MMS_F_F64(struct person, score),
    MMS_F_CHARS(struct person, tag)};
static const mms_schema person_schema = MMS_SCHEMA(struct person, person_fields);

#define NPERSON 200u
#define NCITY 10u

static char good[512], trial[512], dest[512], work[512];

static int64_t pid_of(unsigned i)
{
    return 1000 + i;
}

static void person_make(mms_store *s, mms_table *p, mms_table *c, unsigned i, struct person *r)
{
    memset(r, 0, sizeof *r);
    r->id = pid_of(i);
    char name[32], photo[8] = {1, 2, 0, 3, (char)i, 5, 6, 7};
    int n = snprintf(name, sizeof name, "person-%u", i);
    OK(mms_str_new(s, name, (size_t)n, &r->name));
    r->city = mms_table_ref(c, i % NCITY);
    r->boss = mms_table_ref(p, (i + 1) % NPERSON); /* a forward ref: checked at commit */
    if (i % 3 == 0)
        OK(mms_str_new(s, photo, sizeof photo, &r->photo));
    r->score = i * 0.5;
    snprintf(r->tag, sizeof r->tag, "t%u", i);
}

static void build(void)
{
    snprintf(good, sizeof good, "%s", shm_tpath("recgood"));
    mms_store *s = open_flags(good, MMS_CREATE);
    mms_table *c, *p;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "city", &city_schema, MMS_TABLE_CREATE, &c));
    OK(mms_table_open(s, "person", &person_schema, MMS_TABLE_CREATE, &p));
    for (unsigned i = 0; i < NCITY; i++) {
        struct city r = {.id = i};
        char name[32];
        int n = snprintf(name, sizeof name, "city-%u", i);
        OK(mms_str_new(s, name, (size_t)n, &r.name));
        OK(mms_table_append(c, &r, NULL));
    }
    for (unsigned i = 0; i < NPERSON; i++) {
        struct person r;
        person_make(s, p, c, i, &r);
        OK(mms_table_append(p, &r, NULL));
    }
    OK(mms_txn_commit(s));
    /* Deleted records, the refs to them cleared first; missing values. */
    OK(mms_txn_begin(s, 0));
    for (unsigned i = 50; i < 60; i++) {
        struct person *prev = mms_table_get(p, i - 1);
        prev->boss = 0;
        OK(mms_table_delete(p, i));
    }
    for (unsigned i = 0; i < NPERSON; i += 7)
        if (i < 50 || i >= 60)
            OK(mms_table_null_set(p, i, 5, 1));
    OK(mms_table_null_set(c, 3, 1, 1));
    OK(mms_root_set(s, mms_table_ref(p, 0)));
    OK(mms_index_create(p, "id", MMS_INDEX_HASH | MMS_INDEX_UNIQUE));
    OK(mms_index_create(c, "id", MMS_INDEX_ORDERED));
    OK(mms_txn_commit(s));
    verify_ok(s);
    OK(mms_close(s)); /* checkpointed: the files hold it all */
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        FAILF("%s failed", cmd);
}

static void copy_good(void)
{
    rmrf(trial);
    rmrf(dest);
    sh("cp -a '%s' '%s'", good, trial);
}

static char *out, *err; /* the last command's stdout and stderr */

/* Run `mms ARGS`; returns its exit status. */
static int cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cli(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = run_tool_split(work, &out, &err, fmt, ap);
    va_end(ap);
    return st;
}

static int recover_trial(void)
{
    int rc = cli("recover '%s' --out '%s'", trial, dest);
    fprintf(stderr, "   exit %d\n%s%s", rc, out, err);
    return rc;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* The losses the report lists: lines starting with drop or clear. */
static int losses(void)
{
    int n = 0;
    for (const char *p = out; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        n += strncmp(p, "drop ", 5) == 0 || strncmp(p, "clear ", 6) == 0;
    return n;
}

/* `mms dump DIR --all` as text. */
static char *dump_of(const char *dir)
{
    char file[600];
    snprintf(file, sizeof file, "%s/dump.jsonl", work);
    unlink(file);
    int rc = cli("dump '%s' --all '%s'", dir, file);
    if (rc)
        FAILF("mms dump %s --all: exit %d: %s", dir, rc, err);
    return file_text(file);
}

/* A checksum of every file of dir (the source must not change). */
static char *sums_of(const char *dir)
{
    char file[600];
    snprintf(file, sizeof file, "%s/sums", work);
    sh("cd '%s' && ls | grep -v '^lock$' | xargs md5sum > '%s'", dir, file);
    return file_text(file);
}

/* The file of table name's region in trial, and its record size. */
static void table_file(const char *name, char *path, size_t cap)
{
    mms_store *s = open_flags(trial, MMS_RDONLY);
    mms_table_info ti[4];
    size_t n;
    OK(mms_tables(s, ti, 4, &n));
    unsigned region = 0;
    for (size_t i = 0; i < n && i < 4; i++)
        if (strcmp(ti[i].name, name) == 0)
            region = ti[i].region;
    ASSERT(region);
    uint32_t gen = mms__rtab(s)[region].gen;
    OK(mms_close(s));
    snprintf(path, cap, "%s/region-%u-%u", trial, region, gen);
}

static mms_store *open_dest(mms_table **p, mms_table **c)
{
    mms_store *s = open_flags(dest, MMS_RDONLY);
    verify_ok(s);
    OK(mms_table_open(s, "person", &person_schema, 0, p));
    OK(mms_table_open(s, "city", &city_schema, 0, c));
    return s;
}

/* Record i of person in DEST is what build() made (boss and name as told). */
static void person_check(mms_store *s, mms_table *p, unsigned i, bool name_kept, bool boss_kept)
{
    ASSERT(mms_table_live(p, i));
    const struct person *r = mms_table_get(p, i);
    ASSERT_EQ(r->id, pid_of(i));
    char want[32];
    snprintf(want, sizeof want, "person-%u", i);
    const char *nm = mms_str_get(s, r->name, NULL);
    if (name_kept) {
        ASSERT(nm && strcmp(nm, want) == 0);
    } else {
        ASSERT_EQ(r->name, 0);
    }
    if (boss_kept)
        ASSERT_EQ(r->boss, i == 49 ? 0 : mms_table_ref(p, (i + 1) % NPERSON));
    else
        ASSERT_EQ(r->boss, 0);
    ASSERT(r->score == (mms_table_null(p, i, 5) ? 0 : i * 0.5));
    ASSERT_EQ(mms_table_null(p, i, 5), i % 7 == 0);
}

TEST(undamaged)
{
    copy_good();
    char *before = sums_of(trial);
    ASSERT_EQ(recover_trial(), 0);
    ASSERT_EQ(losses(), 0);
    ASSERT(strstr(out, "table person slots=200 kept=190 dropped=0 cleared=0 deleted=10"));
    ASSERT(strstr(out, "verify "));
    ASSERT(strstr(out, "-- ok\n"));
    char *a = dump_of(trial), *b = dump_of(dest);
    ASSERT(strcmp(a, b) == 0);
    char *after = sums_of(trial);
    ASSERT(strcmp(before, after) == 0);
    /* The indexes are rebuilt. */
    ASSERT_EQ(cli("get '%s' person id 1005", dest), 0);
    ASSERT(strstr(out, "person-5"));
    ASSERT_EQ(cli("indexes '%s' city", dest), 0);
    ASSERT(strstr(out, "ordered"));
    free(a);
    free(b);
    free(before);
    free(after);
    /* The default destination is DIR.recovered. */
    char def[700];
    snprintf(def, sizeof def, "%s.recovered", trial);
    rmrf(def);
    ASSERT_EQ(cli("recover '%s'", trial), 0);
    struct stat sb;
    ASSERT_EQ(stat(def, &sb), 0);
    rmrf(def);
}

TEST(flipped_string_ref)
{
    copy_good();
    char path[700];
    table_file("person", path, sizeof path);
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    uint64_t at = 7 * sizeof(struct person) + offsetof(struct person, name);
    uint8_t b;
    ASSERT_EQ(pread(fd, &b, 1, (off_t)at), 1);
    b ^= 0x01;
    ASSERT_EQ(pwrite(fd, &b, 1, (off_t)at), 1);
    close(fd);
    ASSERT_EQ(recover_trial(), 1);
    ASSERT_EQ(losses(), 1);
    ASSERT(strstr(out, "clear field table=person index=7 field=name "));
    ASSERT(strstr(out, "table person slots=200 kept=190 dropped=0 cleared=1 deleted=10"));
    mms_table *p, *c;
    mms_store *s = open_dest(&p, &c);
    ASSERT_EQ(mms_table_count(p), 190);
    for (unsigned i = 0; i < NPERSON; i++)
        if (i < 50 || i >= 60)
            person_check(s, p, i, i != 7, true);
    OK(mms_close(s));
}

TEST(truncated_table_file)
{
    copy_good();
    char path[700];
    table_file("person", path, sizeof path);
    /* 150 records and a half. */
    ASSERT_EQ(truncate(path, (off_t)(150 * sizeof(struct person) + 20)), 0);
    ASSERT_EQ(recover_trial(), 1);
    ASSERT(strstr(out, "drop records table=person index=150..199 -- past the end"));
    /* Record 149's boss was 150; record 199 was the boss of nobody kept. */
    ASSERT(strstr(out, "clear field table=person index=149 field=boss "));
    ASSERT_EQ(losses(), 2);
    ASSERT(strstr(out, "table person slots=200 kept=140 dropped=50 cleared=1 deleted=10"));
    mms_table *p, *c;
    mms_store *s = open_dest(&p, &c);
    ASSERT_EQ(mms_table_count(p), 140);
    ASSERT_EQ(mms_table_slots(p), 200);
    for (unsigned i = 0; i < 150; i++)
        if (i < 50 || i >= 60)
            person_check(s, p, i, true, i != 149);
    for (unsigned i = 150; i < NPERSON; i++)
        ASSERT(!mms_table_live(p, i));
    /* The root names record 0, which is kept. */
    ASSERT_EQ(mms_root(s), mms_table_ref(p, 0));
    OK(mms_close(s));
}

/* ------------------------------------------------------------------------
 * Journals
 * ------------------------------------------------------------------------ */
/* A child appends to city in two commits and dies at the second one's
 * journal sync (MMS_CRASH): commit 1 is applied, commit 2 only in the
 * journal. */
static void dying_writer(void)
{
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        setenv("MMS_CRASH", "commit.journal_synced:2", 1);
        mms_store *s = open_flags(trial, 0);
        mms_table *c;
        OK(mms_table_open(s, "city", &city_schema, 0, &c));
        for (int k = 0; k < 2; k++) {
            OK(mms_txn_begin(s, 0));
            struct city r = {.id = 100 + k};
            OK(mms_str_new(s, "new", 3, &r.name));
            OK(mms_table_append(c, &r, NULL));
            OK(mms_txn_commit(s));
        }
        _exit(3); /* not reached */
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Offsets of the journal's groups in trial: starts[0..n), and their end. */
static int journal_groups(uint64_t *starts, int cap, uint64_t *end)
{
    char path[700];
    snprintf(path, sizeof path, "%s/journal", trial);
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    uint64_t off = MMS__JDATA;
    int n = 0;
    for (;;) {
        uint32_t type;
        ASSERT_EQ(pread(fd, &type, 4, (off_t)off), 4);
        if (type != MMS__JR_BEGIN || n == cap)
            break;
        starts[n++] = off;
        off += sizeof(struct mms__jbegin);
        for (;;) {
            struct mms__jdata d;
            ASSERT_EQ(pread(fd, &d, sizeof d, (off_t)off), (ssize_t)sizeof d);
            if (d.type == MMS__JR_DATA)
                off += sizeof d + ((d.len + 7) & ~7u);
            else if (d.type == MMS__JR_SIZE)
                off += sizeof(struct mms__jsize);
            else if (d.type == MMS__JR_COMMIT) {
                off += sizeof(struct mms__jcommit);
                break;
            } else
                FAILF("journal record of type 0x%x", d.type);
        }
    }
    close(fd);
    *end = off;
    return n;
}

static void journal_poke(uint64_t at, const char *bytes, size_t n)
{
    char path[700];
    snprintf(path, sizeof path, "%s/journal", trial);
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    ASSERT_EQ(pwrite(fd, bytes, n, (off_t)at), (ssize_t)n);
    close(fd);
}

static uint64_t cities_in_dest(void)
{
    mms_table *p, *c;
    mms_store *s = open_dest(&p, &c);
    uint64_t n = mms_table_count(c);
    OK(mms_close(s));
    return n;
}

TEST(journal_replayed)
{
    copy_good();
    dying_writer();
    char *before = sums_of(trial);
    ASSERT_EQ(recover_trial(), 0);
    ASSERT(strstr(out, "info journal -- replayed 2 commits"));
    ASSERT_EQ(cities_in_dest(), NCITY + 2);
    char *after = sums_of(trial);
    ASSERT(strcmp(before, after) == 0); /* replayed in private pages only */
    free(before);
    free(after);
}

TEST(journal_garbage_tail)
{
    copy_good();
    dying_writer();
    uint64_t g[8], end;
    ASSERT_EQ(journal_groups(g, 8, &end), 2);
    static const char junk[] = "\x13\x37garbage after the last commit, not a group";
    journal_poke(end, junk, sizeof junk);
    ASSERT_EQ(recover_trial(), 0);
    ASSERT(strstr(out, "info journal -- at offset"));
    ASSERT(strstr(out, "not a commit group"));
    ASSERT_EQ(cities_in_dest(), NCITY + 2);
}

TEST(journal_damaged_commit)
{
    copy_good();
    dying_writer();
    uint64_t g[8], end;
    ASSERT_EQ(journal_groups(g, 8, &end), 2);
    /* The checksum of the second (unapplied) group's commit record. */
    journal_poke(end - 8, "\xff\xff\xff\xff", 4);
    ASSERT_EQ(recover_trial(), 1);
    ASSERT(strstr(out, "drop journal -- at offset"));
    ASSERT(strstr(out, "fails its checksum"));
    ASSERT_EQ(losses(), 1);
    ASSERT_EQ(cities_in_dest(), NCITY + 1);
}

/* Three commits held back in the journal by a reader (another process),
 * then the writer ends without closing: none of them is applied. */
static void held_back_writer(void)
{
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int in[2], go[2];
        ASSERT(pipe(in) == 0 && pipe(go) == 0);
        char c1;
        pid_t rd = fork();
        ASSERT(rd >= 0);
        if (rd == 0) {
            mms_store *r = open_flags(trial, MMS_RDONLY);
            OK(mms_read_begin(r));
            ASSERT_EQ(write(in[1], "r", 1), 1);
            ASSERT_EQ(read(go[0], &c1, 1), 1); /* until killed */
            _exit(0);
        }
        ASSERT_EQ(read(in[0], &c1, 1), 1);
        mms_store *s = open_flags(trial, 0);
        mms_table *c;
        OK(mms_table_open(s, "city", &city_schema, 0, &c));
        for (int k = 0; k < 3; k++) {
            OK(mms_txn_begin(s, 0));
            struct city r = {.id = 100 + k};
            OK(mms_str_new(s, "new", 3, &r.name));
            OK(mms_table_append(c, &r, NULL));
            OK(mms_txn_commit(s));
        }
        kill(rd, SIGKILL);
        ASSERT_EQ(waitpid(rd, NULL, 0), rd);
        _exit(0);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Damage to the first of three unapplied groups: the open refuses (the
 * later two were durable, acknowledged commits) and changes nothing; `mms
 * recover` salvages the commits before the damage. */
TEST(journal_damaged_middle)
{
    copy_good();
    held_back_writer();
    uint64_t g[8], end;
    ASSERT_EQ(journal_groups(g, 8, &end), 3);
    journal_poke(g[0] + (g[1] - g[0]) / 2, "\x5a", 1);
    char *before = sums_of(trial);
    mms_store *s = NULL;
    FAILS(mms_open(trial, NULL, &s), MMS_ECORRUPT);
    fprintf(stderr, "   open: %s\n", mms_errdetail());
    ASSERT(strstr(mms_errdetail(), "mms recover"));
    char *after = sums_of(trial);
    ASSERT(strcmp(before, after) == 0);
    free(before);
    free(after);
    ASSERT_EQ(recover_trial(), 1);
    ASSERT(strstr(out, "drop journal -- at offset"));
    ASSERT_EQ(cities_in_dest(), NCITY);
}

/* A journal longer than recovery reads into memory (journal.c JREAD_MAX,
 * 256 MiB) is mapped instead: a child commits a table of 288 MiB, then
 * rewrites all of it and dies at that commit's journal sync; the next open
 * replays the 288 MiB commit from the mapped journal. In /dev/shm when it
 * has room (the disk's writes would only make it slower). */
struct big {
    int64_t v;
    char pad[4088];
};
static const mms_field big_fields[] = {MMS_F_I64(struct big, v)};
static const mms_schema big_schema = MMS_SCHEMA(struct big, big_fields);

TEST(journal_mapped_when_large)
{
    enum { N = 72 * 1024 }; /* 288 MiB of records, so more journal than that */
    char p[600];
    struct statvfs v;
    if (statvfs("/dev/shm", &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize > (UINT64_C(2) << 30))
        snprintf(p, sizeof p, "/dev/shm/mms-jmap.%d.mms", (int)getpid());
    else
        snprintf(p, sizeof p, "%s", tpath("jmap"));
    rmrf(p);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        setenv("MMS_CRASH", "commit.journal_synced:2", 1);
        mms_store *s = open_flags(p, MMS_CREATE);
        mms_table *t;
        OK(mms_txn_begin(s, 0));
        OK(mms_table_open(s, "big", &big_schema, MMS_TABLE_CREATE, &t));
        uint64_t first;
        OK(mms_table_append_many(t, N, &first, NULL));
        OK(mms_txn_commit(s));
        OK(mms_txn_begin(s, 0));
        for (uint64_t i = 0; i < N; i++) { /* every byte: the journal holds what changed */
            struct big *b = MMS_TABLE_GET(t, struct big, i);
            b->v = (int64_t)i + 1;
            memset(b->pad, 0x5a, sizeof b->pad);
        }
        OK(mms_txn_commit(s)); /* dies at its journal sync */
        _exit(3);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    char jp[700];
    struct stat js;
    snprintf(jp, sizeof jp, "%s/journal", p);
    ASSERT_EQ(stat(jp, &js), 0);
    ASSERT((uint64_t)js.st_size > (UINT64_C(256) << 20)); /* past JREAD_MAX: mapped */
    mms_store *s = open_flags(p, 0);
    mms_info in;
    OK(mms_info_get(s, &in));
    ASSERT_EQ(in.txn_id, 2);
    mms_table *t;
    OK(mms_table_find(s, "big", &t));
    OK(mms_read_begin(s));
    for (uint64_t i = 0; i < N; i += 997) {
        ASSERT_EQ(MMS_TABLE_GET(t, struct big, i)->v, (int64_t)i + 1);
        ASSERT_EQ(MMS_TABLE_GET(t, struct big, i)->pad[4000], 0x5a);
    }
    ASSERT_EQ(MMS_TABLE_GET(t, struct big, N - 1)->v, N);
    OK(mms_read_end(s));
    OK(mms_close(s));
    rmrf(p);
}

TEST(journal_missing)
{
    copy_good();
    char path[700];
    snprintf(path, sizeof path, "%s/journal", trial);
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(recover_trial(), 0);
    ASSERT(strstr(out, "info journal -- the journal file is missing"));
    ASSERT_EQ(cities_in_dest(), NCITY);
}

/* ------------------------------------------------------------------------
 * Nothing salvageable, and refusals
 * ------------------------------------------------------------------------ */
TEST(corrupt_header)
{
    copy_good();
    char path[700];
    snprintf(path, sizeof path, "%s/region-0-0", trial);
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    uint8_t b;
    ASSERT_EQ(pread(fd, &b, 1, 100), 1); /* live_count */
    b ^= 0x10;
    ASSERT_EQ(pwrite(fd, &b, 1, 100), 1);
    close(fd);
    ASSERT_EQ(recover_trial(), 2);
    ASSERT(strstr(err, "store header is damaged: its checksum"));
    ASSERT(strstr(out, "fatal store -- the store header is damaged"));
    struct stat sb;
    ASSERT(stat(dest, &sb) != 0);
    /* Not a store at all. */
    rmrf(trial);
    mkdir(trial, 0777);
    ASSERT_EQ(recover_trial(), 2);
    ASSERT(strstr(err, "region-0-0 is missing"));
}

TEST(unreadable_catalog)
{
    copy_good();
    char path[700];
    snprintf(path, sizeof path, "%s/region-0-0", trial);
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    struct mms__hdrbuf *b = malloc(sizeof *b);
    ASSERT_EQ(pread(fd, b, sizeof *b, 0), (ssize_t)sizeof *b);
    b->h.catalog += 16; /* inside the catalog: not an allocation */
    b->h.crc = mms__hdr_crc(&b->h, b->rt);
    ASSERT_EQ(pwrite(fd, b, sizeof *b, 0), (ssize_t)sizeof *b);
    close(fd);
    free(b);
    ASSERT_EQ(recover_trial(), 2);
    ASSERT(strstr(err, "the catalog (ref 0x"));
    ASSERT(strstr(err, "unreadable"));
    struct stat sb;
    ASSERT(stat(dest, &sb) != 0);
}

TEST(dest_exists_and_dry_run)
{
    copy_good();
    mkdir(dest, 0777);
    sh("echo mine > '%s/file'", dest);
    ASSERT_EQ(recover_trial(), 2);
    ASSERT(strstr(err, "exists"));
    ASSERT_EQ(count(out, "\n"), 0);
    char p[700];
    snprintf(p, sizeof p, "%s/file", dest);
    char *keep = file_text(p);
    ASSERT(strcmp(keep, "mine\n") == 0);
    free(keep);
    rmrf(dest);
    ASSERT_EQ(cli("recover '%s' --out '%s' --dry-run", trial, dest), 0);
    ASSERT(strstr(out, "table person slots=200 kept=190"));
    struct stat sb;
    ASSERT(stat(dest, &sb) != 0);
    /* Usage errors. */
    ASSERT_EQ(cli("recover"), 2);
    ASSERT_EQ(cli("recover '%s' --bogus", trial), 2);
}

/* A root that is a heap object: a list of three nodes hangs from it. */
TEST(root_heap_object)
{
    rmrf(trial);
    rmrf(dest);
    mms_store *s = open_flags(trial, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_ref root, next = 0;
    for (uint64_t v = 3; v >= 1; v--) {
        mms_ref n;
        OK(mms_alloc(s, 16, &n));
        uint64_t *w = mms_deref(s, n);
        w[0] = next;
        w[1] = v;
        next = n;
    }
    OK(mms_alloc(s, 16, &root));
    uint64_t *w = mms_deref(s, root);
    w[0] = 3; /* the length */
    w[1] = next;
    OK(mms_root_set(s, root));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    /* By default it is dropped, and the report says what hangs from it. */
    ASSERT_EQ(recover_trial(), 1);
    ASSERT(strstr(out, "drop root value=0x"));
    ASSERT(strstr(out, "4 objects (64 bytes) are reachable"));
    s = open_flags(dest, MMS_RDONLY);
    ASSERT_EQ(mms_root(s), 0);
    OK(mms_close(s));
    /* --follow-refs copies the list with its refs made DEST's. */
    rmrf(dest);
    ASSERT_EQ(cli("recover '%s' --out '%s' --follow-refs", trial, dest), 0);
    ASSERT(strstr(out, "info root value=0x"));
    s = open_flags(dest, MMS_RDONLY);
    verify_ok(s);
    const uint64_t *r = mms_deref(s, mms_root(s));
    ASSERT_EQ(r[0], 3);
    uint64_t v = 1;
    for (mms_ref n = r[1]; n; n = ((const uint64_t *)mms_deref(s, n))[0], v++)
        ASSERT_EQ(((const uint64_t *)mms_deref(s, n))[1], v);
    ASSERT_EQ(v, 4);
    OK(mms_close(s));
}

/* Random damage: bytes flipped in the files of the good store (and of one
 * with commits in its journal). Whatever it is, recover exits 0, 1 or 2,
 * never by a signal, and DEST, when it makes one, verifies. */
static void flip_random(uint64_t *x, const char *dir)
{
    static const char *const files[] = {"region-0-0", "region-1-0", "region-2-0", "journal"};
    char path[700];
    struct stat sb;
    const char *f = files[rnd_next(x) % 4];
    snprintf(path, sizeof path, "%s/%s", dir, f);
    if (stat(path, &sb) != 0 || sb.st_size == 0)
        return;
    /* The parts that hold something: records and groups in the first 16
     * KiB; in the heap, its first pages (the header page itself only
     * sometimes: damage there is always exit 2). */
    bool heap = strcmp(f, "region-0-0") == 0;
    uint64_t span = heap ? 36864 + (64u << 10) : 16u << 10;
    if (span > (uint64_t)sb.st_size)
        span = (uint64_t)sb.st_size;
    uint64_t at = rnd_next(x) % span;
    if (heap && at < 4096 && rnd_next(x) % 8)
        at += 36864;
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    uint8_t b;
    if (pread(fd, &b, 1, (off_t)at) == 1) {
        b ^= (uint8_t)(1u << (rnd_next(x) % 8));
        ASSERT_EQ(pwrite(fd, &b, 1, (off_t)at), 1);
    }
    close(fd);
}

TEST(random_damage)
{
    unsigned soak;
    uint64_t x = test_seed("test_recover", 0, &soak, "");
    char withjournal[512];
    snprintf(withjournal, sizeof withjournal, "%s", shm_tpath("recjournal"));
    copy_good();
    dying_writer();
    sh("cp -a '%s' '%s'", trial, withjournal);
    int seen[3] = {0};
    for (unsigned k = 0; k < 40 * soak; k++) {
        rmrf(trial);
        rmrf(dest);
        sh("cp -a '%s' '%s'", k % 2 ? withjournal : good, trial);
        unsigned n = 1 + (unsigned)(rnd_next(&x) % 4);
        for (unsigned i = 0; i < n; i++)
            flip_random(&x, trial);
        int rc = cli("recover '%s' --out '%s'", trial, dest);
        if (rc > 2 || strstr(out, "NOT SOUND"))
            FAILF("trial %u: exit %d\n%s%s", k, rc, out, err);
        struct stat sb;
        ASSERT_EQ(stat(dest, &sb) == 0, rc != 2);
        seen[rc]++;
    }
    fprintf(stderr, "   exits: %d x 0, %d x 1, %d x 2\n", seen[0], seen[1], seen[2]);
    rmrf(withjournal);
}

int main(void)
{
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): what `mms
     * recover` salvages from the bytes it finds is the point. */
    signal(SIGABRT, shm_on_abort);
    snprintf(work, sizeof work, "%s", shm_tpath("recwork"));
    mkdir(work, 0777);
    build();
    snprintf(trial, sizeof trial, "%s", shm_tpath("rectrial"));
    snprintf(dest, sizeof dest, "%s", shm_tpath("recdest"));
    RUN(undamaged);
    RUN(flipped_string_ref);
    RUN(truncated_table_file);
    RUN(journal_replayed);
    RUN(journal_garbage_tail);
    RUN(journal_damaged_commit);
    RUN(journal_damaged_middle);
    RUN(journal_mapped_when_large);
    RUN(journal_missing);
    RUN(corrupt_header);
    RUN(unreadable_catalog);
    RUN(dest_exists_and_dry_run);
    RUN(root_heap_object);
    RUN(random_damage);
    rmrf(good);
    rmrf(trial);
    rmrf(dest);
    rmrf(work);
    shm_cleanup();
    fprintf(stderr, "test_recover: ok\n");
    return 0;
}

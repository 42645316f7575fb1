/*
 * test_cli.c -- the conventions of the mms tool (tools/mms.c, tools/tool.c,
 * tools/mms_admin.c), those of git, sqlite3 and LMDB's tools:
 *
 *  - `mms` alone: a short list of the commands on stderr, exit 2;
 *  - `mms help`, `mms --help`: the list on stdout, exit 0; `mms help CMD`
 *    and `mms CMD --help`: the same help of that command on stdout, exit 0;
 *    `mms help nosuch`: exit 2;
 *  - usage errors (unknown options, missing values, a value for a flag,
 *    too many or too few arguments): exit 2, one message naming the
 *    command's help, nothing on stdout;
 *  - `mms version` and `mms --version` print the library's mms_version();
 *  - an error is said once: one line, its message not repeated by the
 *    detail;
 *  - `mms info`: sizes in KB/MB, per table live records, deleted slots and
 *    wasted bytes, then the raw key: value lines; `--raw` only those.
 *  - `mms index`, `mms indexes`, `mms get`, `mms dump --where`, `mms import
 *    --index`: the same answers through an index as by a scan; get exits 1
 *    with nothing on stdout when no record matches.
 *  - a store that needs recovery on a read-only file system: the message
 *    says it needs recovery (needs_recovery_readonly).
 */
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/mount.h>

static char work[512];

static char *out, *err; /* the last command's stdout and stderr */

/* Run `mms ARGS`; returns its exit status (128 + signal if it died). */
static int cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cli(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = run_tool_split(work, &out, &err, fmt, ap);
    va_end(ap);
    return st;
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

#define HAS(s, needle)                                                         \
    do {                                                                       \
        if (!strstr((s), (needle)))                                            \
            FAILF("no \"%s\" in:\n%s", (needle), (s));                         \
    } while (0)
#define SAME(s, want)                                                          \
    do {                                                                       \
        if (strcmp((s), (want)) != 0)                                          \
            FAILF("got:\n%s\nwanted:\n%s", (s), (want));                         \
    } while (0)

static const char *const commands[] = {"create", "info",   "verify", "checkpoint", "readers",
                                       "tables", "schema", "import", "dump",       "drop",
                                       "rename", "compact", "copy",  "load",       "get",
                                       "index",  "indexes", "recover"};
#define NCMD (sizeof commands / sizeof commands[0])

TEST(usage_and_help)
{
    /* mms alone: short (a line a command), on stderr, exit 2. */
    ASSERT_EQ(cli(" "), 2);
    ASSERT_EQ(strlen(out), 0);
    ASSERT_LE(lines(err), NCMD + 4);
    for (size_t i = 0; i < NCMD; i++)
        HAS(err, commands[i]);
    /* The list on stdout. */
    ASSERT_EQ(cli("help"), 0);
    ASSERT_EQ(strlen(err), 0);
    char *list = strdup(out);
    ASSERT_EQ(cli("--help"), 0);
    ASSERT(strcmp(out, list) == 0);
    ASSERT_EQ(cli("-h"), 0);
    ASSERT(strcmp(out, list) == 0);
    for (size_t i = 0; i < NCMD; i++) {
        char want[64];
        snprintf(want, sizeof want, "\n  %s ", commands[i]);
        HAS(list, want);
    }
    free(list);
    /* Each command's help, two ways, on stdout. */
    for (size_t i = 0; i < NCMD; i++) {
        ASSERT_EQ(cli("help %s", commands[i]), 0);
        ASSERT_EQ(strlen(err), 0);
        char want[64];
        snprintf(want, sizeof want, "usage: mms %s ", commands[i]);
        if (strncmp(out, want, strlen(want)) != 0)
            FAILF("mms help %s starts:\n%s", commands[i], out);
        char *h = strdup(out);
        ASSERT_EQ(cli("%s --help", commands[i]), 0);
        ASSERT(strcmp(out, h) == 0);
        ASSERT_EQ(cli("%s x y z -h", commands[i]), 0); /* help wins over the rest */
        ASSERT(strcmp(out, h) == 0);
        free(h);
    }
    ASSERT_EQ(cli("help import"), 0);
    HAS(out, "--keep-text");
    HAS(out, "Missing values");
    ASSERT_EQ(cli("help dump"), 0);
    HAS(out, "canonical");
    /* An index holds no entry for a record whose key is missing
     * (mmstore.h, Indexes): entries are not always the live records. */
    ASSERT_EQ(cli("help indexes"), 0);
    HAS(out, "missing");
    ASSERT_EQ(cli("help version"), 0);
    ASSERT_EQ(cli("help nosuch"), 2);
    HAS(err, "no command called 'nosuch'");
    /* help's own help is the list, as every command's --help is its help;
     * more than one name is a usage error, not ignored. */
    ASSERT_EQ(cli("help"), 0);
    list = strdup(out);
    ASSERT_EQ(cli("help help"), 0);
    ASSERT(strcmp(out, list) == 0);
    ASSERT_EQ(cli("help --help"), 0);
    ASSERT(strcmp(out, list) == 0);
    ASSERT_EQ(cli("help -h"), 0);
    ASSERT(strcmp(out, list) == 0);
    free(list);
    ASSERT_EQ(cli("help info dump"), 2);
    ASSERT_EQ(strlen(out), 0);
    HAS(err, "help takes one command name (from 'dump' on)");
    ASSERT_EQ(cli("nosuch"), 2);
    HAS(err, "unknown command 'nosuch'");
}

/* A regular file given as DIR: every command says a store is a directory
 * (`mms readers` said only "Not a directory"). */
TEST(file_as_dir)
{
    char f[700];
    snprintf(f, sizeof f, "%s/plain-file", work);
    file_put(f, "not a store\n");
    const char *cmds[] = {"info", "readers", "tables", "verify"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int rc = cli("%s '%s'", cmds[i], f);
        if (rc != 1)
            FAILF("mms %s FILE: exit %d, expected 1\n%s", cmds[i], rc, err);
        HAS(err, "a store is a directory");
    }
    unlink(f);
}

TEST(usage_errors)
{
    static const struct {
        const char *args, *says;
    } bad[] = {
        {"dump DIR t --bogus", "unknown option --bogus"},
        {"dump DIR t --bogus=1", "unknown option --bogus"},
        {"dump DIR t -x", "unknown option -x (an argument that starts with '-' goes after --)"},
        {"rename DIR t -x", "unknown option -x (an argument that starts with '-' goes after --)"},
        {"dump DIR t --limit", "--limit needs a value"},
        {"dump DIR t --format xml", "--format is csv or jsonl"},
        {"readers DIR --clear-stale=1", "--clear-stale takes no value"},
        {"info DIR --help=1", "--help takes no value"},
        {"info", "too few arguments"},
        {"info DIR DIR2", "too many arguments"},
        {"tables DIR --raw", "unknown option --raw"},
        {"import DIR t", "too few arguments"},
        {"import DIR t f.csv --schema", "--schema needs a value"},
        {"import DIR t f.csv --schema a", "--schema: 'a' is not NAME:KIND"},
        {"create DIR --fixed --reserve -5", "--reserve wants a number, not '-5'"},
        {"create DIR --fixed --base ' 4194304'", "--base wants a number, not ' 4194304'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = cli("%s", bad[i].args);
        if (rc != 2)
            FAILF("mms %s: exit %d, expected 2\n%s", bad[i].args, rc, err);
        ASSERT_EQ(strlen(out), 0);
        HAS(err, bad[i].says);
        char cmd[32];
        sscanf(bad[i].args, "%31s", cmd);
        char want[96];
        snprintf(want, sizeof want, "usage: mms %s ", cmd);
        HAS(err, want);
        snprintf(want, sizeof want, "'mms help %s'", cmd);
        HAS(err, want);
    }
    /* --base and --reserve are decimal or 0x hex: a leading 0 is not octal
     * (strtoull's base 0 took 0104857600 for octal, stopped at the 8 and
     * called it no number; 0400000000 it took for 64 MiB). */
    char fx[700];
    snprintf(fx, sizeof fx, "%s/fx.mms", work);
    ASSERT_EQ(cli("create '%s' --fixed --base 0x3c0000000000 --reserve 0104857600", fx), 0);
    ASSERT_EQ(cli("info '%s' --raw", fx), 0);
    HAS(out, "\nfixed_heap_reserve: 104857600\n");
    ASSERT_EQ(cli("create '%s'2 --fixed --reserve 0x", fx), 2);
    HAS(err, "--reserve wants a number, not '0x'");
    /* "--" ends the options: a store may be called --x. */
    char dir[700];
    snprintf(dir, sizeof dir, "%s/--x.mms", work);
    ASSERT_EQ(cli("create -- '%s'", dir), 0);
    ASSERT_EQ(cli("verify -- '%s'", dir), 0);
}

TEST(version)
{
    ASSERT_EQ(cli("version"), 0);
    char *v = strdup(out);
    ASSERT_EQ(cli("--version"), 0);
    ASSERT(strcmp(out, v) == 0);
    ASSERT_EQ(lines(v), 1);
    char want[64];
    snprintf(want, sizeof want, "mmstore library %s,", mms_version());
    HAS(v, want);
    free(v);
    /* `mms version --help` is help, as `mms CMD --help` is for every
     * command (it printed the version); an extra argument is a usage
     * error (it was ignored). */
    ASSERT_EQ(cli("help version"), 0);
    char *h = strdup(out);
    ASSERT_EQ(cli("version --help"), 0);
    SAME(out, h);
    ASSERT_EQ(cli("version -h"), 0);
    SAME(out, h);
    free(h);
    ASSERT_EQ(cli("version x"), 2);
    ASSERT_EQ(strlen(out), 0);
    HAS(err, "version takes no arguments (from 'x' on)");
}

TEST(errors_once)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/nope.mms", work);
    ASSERT_EQ(cli("info '%s'", dir), 1);
    ASSERT_EQ(strlen(out), 0);
    ASSERT_EQ(lines(err), 1);
    ASSERT_EQ(count(err, "No such file or directory"), 1);
    ASSERT_EQ(count(err, "nope.mms"), 1);
    HAS(err, "mms: cannot open ");
    /* A directory that holds no store. */
    ASSERT_EQ(cli("verify '%s'", work), 1);
    ASSERT_EQ(lines(err), 1);
    ASSERT_EQ(count(err, mms_strerror(MMS_ENOTSTORE)), 1);
    /* create over an existing store */
    snprintf(dir, sizeof dir, "%s/twice.mms", work);
    ASSERT_EQ(cli("create '%s'", dir), 0);
    ASSERT_EQ(cli("create '%s'", dir), 1);
    ASSERT_EQ(lines(err), 1);
    ASSERT_EQ(count(err, "File exists"), 1);
    /* create where the parent is missing: the path once, not "cannot create
     * X: cannot create X: ..." */
    snprintf(dir, sizeof dir, "%s/no/such/parent.mms", work);
    ASSERT_EQ(cli("create '%s'", dir), 1);
    ASSERT_EQ(lines(err), 1);
    ASSERT_EQ(count(err, "parent.mms"), 1);
    ASSERT_EQ(count(err, "No such file or directory"), 1);
    /* create on a full disk (the first fallocate fails): one line, and no
     * directory left behind that holds no store */
    snprintf(dir, sizeof dir, "%s/full.mms", work);
    setenv("MMS_FAULT", "fallocate:1:28", 1);
    ASSERT_EQ(cli("create '%s'", dir), 1);
    unsetenv("MMS_FAULT");
    if (lines(err) != 1)
        FAILF("mms create on a full disk said:\n%s", err);
    HAS(err, "No space left on device");
    struct stat st;
    ASSERT(stat(dir, &st) != 0 && errno == ENOENT);
    ASSERT_EQ(cli("create '%s'", dir), 0);
    ASSERT_EQ(cli("verify '%s'", dir), 0);
    /* the same for an import that would create the store */
    char csv[700];
    snprintf(csv, sizeof csv, "%s/one.csv", work);
    file_put(csv, "a\n1\n");
    snprintf(dir, sizeof dir, "%s/full-import.mms", work);
    setenv("MMS_FAULT", "fallocate:1:28", 1);
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 1);
    unsetenv("MMS_FAULT");
    if (lines(err) != 1)
        FAILF("mms import on a full disk said:\n%s", err);
    HAS(err, "No space left on device");
    ASSERT(stat(dir, &st) != 0 && errno == ENOENT);
    /* recover of a directory that cannot be read: exit 2, the reason on
     * stderr, and the 'fatal store' line its help names on stdout */
    snprintf(dir, sizeof dir, "%s/nope.mms", work);
    ASSERT_EQ(cli("recover '%s'", dir), 2);
    HAS(out, "fatal store -- ");
    HAS(err, "No such file or directory");
    ASSERT_EQ(cli("help recover"), 0);
    HAS(out, "'fatal store -- REASON'");
}

struct rec {
    int64_t id;
    double score;
    char pad[48];
};
static const mms_field rec_fields[] = {MMS_F_I64(struct rec, id), MMS_F_F64(struct rec, score),
                                       MMS_F_CHARS(struct rec, pad)};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);

/* The value of a raw "key: value" line, or -1. */
static long long raw_value(const char *s, const char *key)
{
    size_t k = strlen(key);
    for (const char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, key, k) == 0 && l[k] == ':' && l[k + 1] == ' ')
            return strtoll(l + k + 2, NULL, 0);
    return -1;
}

TEST(info)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/info.mms", work);
    mms_store *s = open_flags(dir, MMS_CREATE);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "people", &rec_schema, MMS_TABLE_CREATE, &t));
    uint64_t first;
    void *where;
    OK(mms_table_append_many(t, 20000, &first, &where));
    for (uint64_t i = 0; i < 100; i++)
        OK(mms_table_delete(t, i * 7));
    OK(mms_txn_commit(s));
    OK(mms_close(s));

    ASSERT_EQ(cli("info '%s'", dir), 0);
    ASSERT_EQ(strlen(err), 0);
    /* For a person: sizes with units, the table's live records, deleted
     * slots and the bytes they waste (100 x 64 bytes = 6.25 KB). */
    HAS(out, " MB");
    char *l = strstr(out, "    people ");
    if (!l)
        FAILF("no line for table people:\n%s", out);
    unsigned long long live, deleted;
    double wasted;
    char unit[8];
    ASSERT(sscanf(l, " people %llu %llu %lf %7s", &live, &deleted, &wasted, unit) == 4);
    ASSERT_EQ(live, 19900);
    ASSERT_EQ(deleted, 100);
    ASSERT(wasted == 6.25 && strcmp(unit, "KB") == 0);
    /* ... and the raw lines that scripts and tests parse. */
    ASSERT_EQ(raw_value(out, "regions"), 2);
    ASSERT_EQ(raw_value(out, "txn_id"), 1);
    ASSERT(strstr(out, "\nwriter: none\n"));
    /* No line of the person's part reads as a raw line. */
    const char *raw_start = strstr(out, "\n\nformat_version: ");
    ASSERT(raw_start != NULL);
    for (const char *p = out; p < raw_start; p = strchr(p, '\n') + 1)
        ASSERT(*p == ' ' || strncmp(p, dir, strlen(dir)) == 0);
    /* --raw: only "key: value" lines, the same as those above. */
    char *person = strdup(out);
    const char *raw_part = person + (raw_start - out) + 2;
    ASSERT_EQ(cli("info --raw '%s'", dir), 0);
    ASSERT_EQ(raw_value(out, "format_version"), MMS_FORMAT_VERSION);
    for (const char *p = out; *p; p = strchr(p, '\n') + 1) {
        const char *colon = strchr(p, ':');
        ASSERT(colon && colon < strchr(p, '\n') && colon[1] == ' ' && *p != ' ');
    }
    ASSERT(strcmp(raw_part, out) == 0);
    /* Every raw key is named by `mms help info` (region_N_ for each region;
     * committed_txn, durable_txn and readers_holding_back were missing). */
    char *raw = strdup(out);
    ASSERT_EQ(cli("help info"), 0);
    for (const char *p = raw; *p; p = strchr(p, '\n') + 1) {
        char key[64];
        ASSERT(sscanf(p, "%63[^:]", key) == 1);
        if (strncmp(key, "region_", 7) == 0 && key[7] >= '0' && key[7] <= '9')
            snprintf(key, sizeof key, "region_N_%s", strchr(key + 7, '_') + 1);
        if (!strstr(out, key))
            FAILF("mms help info does not name the raw key %s:\n%s", key, out);
    }
    free(raw);
    free(person);
}

/* The handles without a slot are counted from the kernel's lock table,
 * whose listing can fail on its own (one that kept moving for 100 ms is
 * -EAGAIN): mms info printed "handles_without_slot: 0" and mms readers
 * nothing, as if none were open. Now the rest of the report stands, the
 * count says unknown, and stderr says why. */
TEST(info_unslotted_not_counted)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/uncounted.mms", work);
    mms_store *s = open_flags(dir, MMS_CREATE);
    OK(mms_close(s));
    setenv("MMS_FAULT", "locks:1:11", 1); /* EAGAIN */
    int rc = cli("info --raw '%s'", dir);
    unsetenv("MMS_FAULT");
    ASSERT_EQ(rc, 0);
    HAS(out, "\nhandles_without_slot: unknown\n");
    HAS(out, "\nhandles: 1\n"); /* the command's own, slotted */
    HAS(err, "warning: ");
    HAS(err, "without a slot");
    HAS(err, "not counted");
    setenv("MMS_FAULT", "locks:1:11", 1);
    rc = cli("info '%s'", dir);
    unsetenv("MMS_FAULT");
    ASSERT_EQ(rc, 0);
    HAS(out, "those without a slot, of processes that may not write the lock file, not counted");
    HAS(err, "not counted");
    /* mms readers reads the lock table only while a handle is open. */
    s = open_flags(dir, 0);
    setenv("MMS_FAULT", "locks:1:11", 1);
    rc = cli("readers '%s'", dir);
    unsetenv("MMS_FAULT");
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(count(out, "\n"), 2); /* the heading and this handle */
    HAS(err, "not counted");
    OK(mms_close(s));
    /* Without the fault: a count, and nothing on stderr. */
    ASSERT_EQ(cli("info --raw '%s'", dir), 0);
    HAS(out, "\nhandles_without_slot: 0\n");
    ASSERT_EQ(strlen(err), 0);
}

/* The same records through an index as by a scan, for each condition. */
TEST(indexes)
{
    char csv[600], dir[600], *scan[64];
    snprintf(csv, sizeof csv, "%s/ix.csv", work);
    snprintf(dir, sizeof dir, "%s/ix.mms", work);
    FILE *f = fopen(csv, "w");
    ASSERT(f);
    fprintf(f, "id,grp,score,code\n");
    uint64_t x = 11;
    for (int i = 0; i < 3000; i++) {
        uint64_t r = rnd_next(&x);
        const char *sc[] = {"nan", "-0", "0", "inf", "-inf"};
        if (r % 50 == 0)
            fprintf(f, "%d,%d,%s,c%d\n", i * 3, (int)(r % 13), sc[r / 50 % 5], (int)(r % 40));
        else
            fprintf(f, "%d,%d,%.2f,c%d\n", i * 3, (int)(r % 13), (double)(r % 1000) / 8 - 50,
                    (int)(r % 40));
    }
    fclose(f);
    ASSERT_EQ(cli("import '%s' t '%s' --schema id:i64,grp:i32,score:f64,code:chars:4 --index id:hash:unique",
                  dir, csv), 0);
    static const char *const where[] = {
        "--where grp=3", "--where 'grp>=11'", "--where 'grp<1'", "--where 'grp>2' --where 'grp<=4'",
        "--where score=0", "--where score=nan", "--where 'score>=inf'", "--where 'score<-49'",
        "--where 'score>10' --where 'score<10.5'", "--where code=c7", "--where 'code>c38'",
        "--where 'code<=c1'", "--where id=300", "--where 'id>=8990'", "--where grp=3 --where code=c3"};
    enum { NW = sizeof where / sizeof where[0] };
    for (int i = 0; i < NW; i++) {
        ASSERT_EQ(cli("dump '%s' t %s", dir, where[i]), 0);
        scan[i] = strdup(out);
        ASSERT(lines(out) >= 1);
    }
    /* One line says what was done, as mms create and mms drop do. */
    char line[1400];
    ASSERT_EQ(cli("index '%s' t grp", dir), 0);
    snprintf(line, sizeof line, "%s: hash index on t.grp created (3000 entries)\n", dir);
    SAME(out, line);
    ASSERT_EQ(cli("index '%s' t score --ordered", dir), 0);
    ASSERT_EQ(cli("index '%s' t code --ordered", dir), 0);
    ASSERT_EQ(cli("index '%s' t grp --ordered", dir), 1);
    HAS(err, "already has an index on grp");
    ASSERT_EQ(cli("index '%s' t grp --drop", dir), 0);
    snprintf(line, sizeof line, "%s: index on t.grp dropped\n", dir);
    SAME(out, line);
    ASSERT_EQ(cli("index '%s' t grp --ordered", dir), 0);
    ASSERT_EQ(cli("index '%s' t code --drop", dir), 0);
    ASSERT_EQ(cli("index '%s' t code --unique", dir), 1);
    HAS(err, "table t: unique index on code: key \"c");
    ASSERT_EQ(cli("index '%s' t code --ordered", dir), 0);
    ASSERT_EQ(cli("indexes '%s'", dir), 0);
    ASSERT_EQ(lines(out), 5);
    HAS(out, "ordered");
    ASSERT_EQ(cli("indexes '%s' t", dir), 0);
    ASSERT_EQ(lines(out), 5);
    for (int i = 0; i < NW; i++) {
        ASSERT_EQ(cli("dump '%s' t %s", dir, where[i]), 0);
        if (strcmp(out, scan[i]) != 0)
            FAILF("%s: through the index:\n%s\nby a scan:\n%s", where[i], out, scan[i]);
    }
    ASSERT_EQ(cli("get '%s' t id 300", dir), 0);
    ASSERT_EQ(lines(out), 2);
    HAS(out, "id,grp,score,code\n300,");
    ASSERT_EQ(cli("get '%s' t id 301", dir), 1);
    ASSERT_EQ(strlen(out), 0);
    ASSERT_EQ(cli("get '%s' t grp 3", dir), 0);
    ASSERT(strcmp(out, scan[0]) == 0);
    ASSERT_EQ(cli("get '%s' t id abc", dir), 1);
    HAS(err, "t.id: 'abc' is not an i64 value"); /* which field's value it is */
    ASSERT_EQ(cli("get '%s' t nope 1", dir), 1);
    HAS(err, "no field 'nope'");
    /* A well-formed condition the table cannot answer (no such field, a
     * value not of the field's kind) is a runtime error, exit 1; one that
     * is not FIELD op VALUE is a usage error, exit 2, found before the
     * store is opened. */
    ASSERT_EQ(cli("dump '%s' t --where 'nope=1'", dir), 1);
    HAS(err, "--where 'nope=1': no field called 'nope'");
    ASSERT_EQ(cli("dump '%s' t --where 'grp'", dir), 2);
    ASSERT_EQ(strlen(out), 0);
    HAS(err, "--where 'grp': expected FIELD=VALUE");
    HAS(err, "usage: ");
    ASSERT_EQ(cli("dump '%s/nothing' t --where '>3'", dir), 2);
    HAS(err, "--where '>3': expected FIELD=VALUE");
    /* a bad value names the condition it came from */
    ASSERT_EQ(cli("dump '%s' t --where 'score>'", dir), 1);
    ASSERT_EQ(lines(err), 1);
    HAS(err, "--where 'score>': '' is not an f64 value");
    ASSERT_EQ(cli("dump '%s' t --where 'grp==3'", dir), 1);
    HAS(err, "--where 'grp==3': '=3' is not an i32 value");
    ASSERT_EQ(cli("verify '%s'", dir), 0);
    /* Covering indexes, hash and ordered: listed with their covered field;
     * the ordered one answers ranges as before. */
    ASSERT_EQ(cli("index '%s' t id --drop", dir), 0);
    ASSERT_EQ(cli("index '%s' t id --unique --cover nope", dir), 1);
    HAS(err, "no field nope");
    ASSERT_EQ(cli("index '%s' t id --unique --cover score", dir), 0);
    snprintf(line, sizeof line, "%s: unique hash index on t.id created (3000 entries, covers score)\n", dir);
    SAME(out, line);
    ASSERT_EQ(cli("index '%s' t grp --drop", dir), 0);
    ASSERT_EQ(cli("index '%s' t grp --ordered --cover code", dir), 0);
    ASSERT_EQ(cli("indexes '%s' t", dir), 0);
    HAS(out, "covers");
    HAS(out, "hash    yes    i64            3000");
    ASSERT(strstr(out, " score\n") != NULL);
    ASSERT(strstr(out, " code\n") != NULL);
    for (int i = 0; i < NW; i++) {
        ASSERT_EQ(cli("dump '%s' t %s", dir, where[i]), 0);
        if (strcmp(out, scan[i]) != 0)
            FAILF("%s: through the covering index:\n%s\nby a scan:\n%s", where[i], out, scan[i]);
    }
    ASSERT_EQ(cli("verify '%s'", dir), 0);
    /* The same covering index built by import; bad covers refused. */
    char dir2[600];
    snprintf(dir2, sizeof dir2, "%s/where-cover", work);
    ASSERT_EQ(cli("import '%s' t '%s' --schema id:i64,grp:i32,score:f64,code:chars:4 "
                  "--index id:hash:unique:cover=score",
                  dir2, csv),
              0);
    ASSERT_EQ(cli("indexes '%s' t", dir2), 0);
    HAS(out, "hash    yes    i64            3000");
    ASSERT(strstr(out, " score\n") != NULL);
    ASSERT_EQ(cli("verify '%s'", dir2), 0);
    /* A malformed --index is a usage error (exit 2), found before the
     * store is opened: no store is created. */
    ASSERT_EQ(cli("import '%s' u '%s' --index id:hash:cover=", dir2, csv), 2);
    HAS(err, "--index 'id:hash:cover=': expected FIELD[:hash][:unique][:cover=F2]");
    HAS(err, "usage: ");
    char dir3[600];
    snprintf(dir3, sizeof dir3, "%s/bad-spec", work);
    ASSERT_EQ(cli("import '%s' u '%s' --index id --index id:uniq", dir3, csv), 2);
    HAS(err, "--index 'id:uniq': expected");
    ASSERT(access(dir3, F_OK) != 0);
    ASSERT_EQ(cli("import '%s' u '%s' --index :unique", dir3, csv), 2);
    ASSERT(access(dir3, F_OK) != 0);
    ASSERT_EQ(cli("import '%s' u '%s' --index id:hash:cover=nope", dir2, csv), 1);
    HAS(err, "no field nope to cover");
    ASSERT_EQ(cli("get '%s' u id 300", dir2), 1);
    /* mms drop takes the table's indexes with it (mms_table_drop), in the
     * one transaction. */
    ASSERT_EQ(cli("drop '%s' t", dir), 0);
    ASSERT_EQ(cli("tables '%s'", dir), 0);
    ASSERT(strstr(out, "\nt ") == NULL);
    ASSERT_EQ(cli("indexes '%s'", dir), 0);
    ASSERT_EQ(lines(out), 1);
    ASSERT_EQ(cli("verify '%s'", dir), 0);
    ASSERT_EQ(cli("drop '%s' t", dir), 1);
    ASSERT_EQ(lines(err), 1);
    HAS(err, "no table called t");
    for (int i = 0; i < NW; i++)
        free(scan[i]);
}

/* A str field whose ref names no string (a damaged region file: commits
 * refuse such refs): dump and get say so and exit 1; dump printed an empty
 * value and exit 0 before, losing the damage from sight. */
TEST(damaged_string)
{
    char csv[600], dir[600], region[700];
    snprintf(csv, sizeof csv, "%s/str.csv", work);
    snprintf(dir, sizeof dir, "%s/str.mms", work);
    file_put(csv, "id,name\n1,ann\n2,bob\n");
    ASSERT_EQ(cli("import '%s' t '%s' --schema id:i64,name:str", dir, csv), 0);
    ASSERT_EQ(cli("checkpoint '%s'", dir), 0);
    snprintf(region, sizeof region, "%s/region-1-0", dir);
    int fd = open(region, O_RDWR);
    ASSERT(fd >= 0);
    uint64_t bad = 0x2ed8e9f0;                  /* record 1's name: 16 + 8 */
    ASSERT_EQ(pwrite(fd, &bad, 8, 24), 8);
    close(fd);
    ASSERT_EQ(cli("verify '%s'", dir), 1);
    ASSERT_EQ(cli("dump '%s' t", dir), 1);
    HAS(err, "table t record 1: field name holds no string");
    ASSERT_EQ(lines(err), 1);
    ASSERT_EQ(cli("dump '%s' t --format jsonl", dir), 1);
    HAS(err, "table t record 1: field name holds no string");
    ASSERT_EQ(cli("get '%s' t id 2", dir), 1);
    ASSERT_EQ(strlen(out), 0);
    HAS(err, "table t record 1: field name holds no string");
    ASSERT_EQ(cli("get '%s' t id 1", dir), 0);
    HAS(out, "1,ann\n");
    /* dump --all refuses it too, and leaves no partial dump for a load */
    char all[700];
    snprintf(all, sizeof all, "%s/str.jsonl", work);
    ASSERT_EQ(cli("dump '%s' --all '%s'", dir, all), 1);
    HAS(err, "which is no string");
    struct stat st;
    ASSERT(stat(all, &st) != 0 && errno == ENOENT);
}

/* A negative VALUE is a value, not an option: `mms get DIR t x -5` once
 * said "unknown option -5" (and "-1" for -108, getopt's first letter). */
TEST(negative_values)
{
    char csv[600], dir[600];
    snprintf(csv, sizeof csv, "%s/neg.csv", work);
    snprintf(dir, sizeof dir, "%s/neg.mms", work);
    file_put(csv, "a,x\n-128,-inf\n-108,-0.5\n5,1\n");
    ASSERT_EQ(cli("import '%s' t '%s' --schema a:i8,x:f64", dir, csv), 0);
    ASSERT_EQ(cli("get '%s' t a -108", dir), 0);
    ASSERT_EQ(strcmp(out, "a,x\n-108,-0.5\n"), 0);
    ASSERT_EQ(cli("get '%s' t a -128", dir), 0);
    ASSERT_EQ(cli("get '%s' t x -inf", dir), 0);
    ASSERT_EQ(strcmp(out, "a,x\n-128,-inf\n"), 0);
    ASSERT_EQ(cli("get '%s' t x -.5", dir), 0);
    ASSERT_EQ(cli("get '%s' t a -7", dir), 1); /* no record */
    ASSERT_EQ(strlen(err), 0);
    ASSERT_EQ(cli("get '%s' t a -7 -8", dir), 2);
    HAS(err, "too many arguments (from '-8' on)");
    ASSERT_EQ(cli("get '%s' t a -x", dir), 2);
    HAS(err, "unknown option -x");
    ASSERT_EQ(cli("dump '%s' t --limit -1", dir), 2);
    HAS(err, "not '-1'");
    /* A ref that names no record: empty, as dump prints it (get refused
     * '' as not a record index). */
    snprintf(csv, sizeof csv, "%s/negref.csv", work);
    file_put(csv, "r\n1\n\n0\n");
    ASSERT_EQ(cli("import '%s' u '%s' --schema r:ref:t", dir, csv), 0);
    ASSERT_EQ(cli("get '%s' u r ''", dir), 0);
    ASSERT_EQ(strcmp(out, "r\n\n"), 0);
    ASSERT_EQ(cli("dump '%s' u --where 'r='", dir), 0);
    ASSERT_EQ(strcmp(out, "r\n\n"), 0);
    ASSERT_EQ(cli("get '%s' u r 1", dir), 0);
    ASSERT_EQ(strcmp(out, "r\n1\n"), 0);
}

/* A field wider than a condition's 256 bytes: `mms get` failed silently,
 * as if no record matched (exit 1, nothing on stderr). */
TEST(get_wide_field)
{
    char csv[600], dir[600];
    snprintf(csv, sizeof csv, "%s/wide.csv", work);
    snprintf(dir, sizeof dir, "%s/wide.mms", work);
    file_put(csv, "a\n1\n");
    ASSERT_EQ(cli("import '%s' t '%s' --schema a:chars:300", dir, csv), 0);
    ASSERT_EQ(cli("get '%s' t a 1", dir), 1);
    ASSERT_EQ(strlen(out), 0);
    HAS(err, "field a is too large for a condition");
    ASSERT_EQ(cli("dump '%s' t --where a=1", dir), 1);
    HAS(err, "field a is too large for a condition");
}

/* A command that must wait for another process's write transaction says
 * so, naming it, instead of hanging without a word. */
TEST(waits_aloud)
{
    char csv[600], dir[600];
    snprintf(csv, sizeof csv, "%s/wait.csv", work);
    snprintf(dir, sizeof dir, "%s/wait.mms", work);
    file_put(csv, "a\n1\n");
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0);
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) { /* a writer that takes its time, twice */
        mms_store *s;
        if (mms_open(dir, NULL, &s))
            _exit(1);
        for (int k = 0; k < 2; k++) {
            char c = 'w';
            if (mms_txn_begin(s, 0) || write(ready[1], &c, 1) != 1)
                _exit(1);
            /* Hold it until the tool has opened the store (its handle
             * shows in the reader slots), then long enough for it to
             * reach the writer lock: a fixed 0.6 s was too short for the
             * ASan tool to start on a loaded machine. */
            for (int tries = 0; tries < 200; tries++) {
                mms_reader_info r[8];
                size_t n = 0, i = 0;
                if (mms_readers(s, r, 8, &n) == 0)
                    while (i < n && i < 8 && (r[i].pid == (uint32_t)getpid() || !r[i].alive))
                        i++;
                if (i < n && i < 8)
                    break;
                sleep_us(50000);
            }
            sleep_us(600000);
            mms_txn_abort(s);
            /* The tool's handle goes before the next round looks for it. */
            for (int tries = 0; tries < 200; tries++) {
                mms_reader_info r[8];
                size_t n = 0;
                if (mms_readers(s, r, 8, &n) == 0 && n <= 1)
                    break;
                sleep_us(50000);
            }
        }
        mms_close(s);
        _exit(0);
    }
    char c, want[64];
    snprintf(want, sizeof want, "(pid %d); waiting", (int)pid);
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    ASSERT_EQ(cli("index '%s' t a", dir), 0);
    HAS(err, want);
    ASSERT_EQ(read(ready[0], &c, 1), 1); /* mms_verify waits inside the library */
    ASSERT_EQ(cli("verify '%s'", dir), 0);
    HAS(err, want);
    close(ready[0]);
    close(ready[1]);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT_EQ(cli("index '%s' t a --drop", dir), 0); /* nobody in the way: silent */
    ASSERT_EQ(strlen(err), 0);
}

/* A store that needs recovery (a writer died after its commit was durable)
 * on a read-only file system: the inspecting commands open it read-only,
 * are told it needs recovery, and try read-write. That failing, the
 * message was the write open's ("cannot open region file region-0-0:
 * Read-only file system"), which hid why a read-only command wanted to
 * write. Root only (a read-only bind mount in a mount namespace). */
static int rofs_child(const char *dir)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(dir, dir, NULL, MS_BIND, NULL) < 0 ||
        mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        return 77;
    static const char *const cmds[] = {"info", "verify", "tables", "dump"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        ASSERT_EQ(cli("%s '%s'%s", cmds[i], dir, i == 3 ? " t" : ""), 1);
        ASSERT_EQ(strlen(out), 0);
        ASSERT_EQ(lines(err), 1);
        HAS(err, "recovery");
        HAS(err, "1 commit to replay");
    }
    return 0;
}

TEST(needs_recovery_readonly)
{
    char csv[600], dir[600];
    snprintf(csv, sizeof csv, "%s/rec.csv", work);
    snprintf(dir, sizeof dir, "%s/rec.mms", work);
    file_put(csv, "a\n1\n");
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0);
    setenv("MMS_CRASH", "commit.journal_synced:1", 1);
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 128 + SIGKILL);
    unsetenv("MMS_CRASH");
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        exit(geteuid() == 0 ? rofs_child(dir) : 77);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        fprintf(stderr, "SKIP: cannot mount the store read-only (not root)\n");
    else
        ASSERT_EQ(WEXITSTATUS(st), 0);
    /* Writable again: the first command recovers it, and the second
     * import (durable when the writer died) is there. */
    ASSERT_EQ(cli("dump '%s' t", dir), 0);
    SAME(out, "a\n1\n1\n");
}

/* `mms recover` reads a store's files itself (tools/salvage.c): a FIFO in
 * the place of one (the journal, a region file, the lock file) blocked its
 * open for ever, where the library refuses one at once. */
TEST(recover_fifo)
{
    char csv[600], dir[600], cmd[2000], fifo[700], keep[800];
    snprintf(csv, sizeof csv, "%s/fifo.csv", work);
    snprintf(dir, sizeof dir, "%s/fifo.mms", work);
    file_put(csv, "a\n1\n2\n");
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0);
    static const struct {
        const char *name;
        int status;         /* of `mms recover --dry-run` */
        const char *report; /* in its stdout */
    } cases[] = {
        {"lock", 0, "summary tables=1 kept=2"},
        {"journal", 0, "journal is not a regular file"},
        {"region-1-0", 1, "region-1-0 is not a regular file"},
        {"region-0-0", 2, "region-0-0 is not a regular file"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(fifo, sizeof fifo, "%s/%s", dir, cases[i].name);
        snprintf(keep, sizeof keep, "%s.keep", fifo);
        ASSERT_EQ(rename(fifo, keep), 0);
        ASSERT_EQ(mkfifo(fifo, 0666), 0);
        snprintf(cmd, sizeof cmd, "timeout 10 '%s' recover '%s' --dry-run >'%s/out' 2>&1",
                 getenv("MMS_TOOL"), dir, work);
        int st = system(cmd);
        ASSERT(WIFEXITED(st));
        free(out);
        char o[700];
        snprintf(o, sizeof o, "%s/out", work);
        out = file_text(o);
        if (WEXITSTATUS(st) == 124)
            FAILF("mms recover with %s a FIFO: still blocked after 10 s", cases[i].name);
        if (WEXITSTATUS(st) != cases[i].status || !strstr(out, cases[i].report))
            FAILF("mms recover with %s a FIFO: exit %d (wanted %d), output:\n%s(wanted \"%s\")",
                  cases[i].name, WEXITSTATUS(st), cases[i].status, out, cases[i].report);
        ASSERT_EQ(unlink(fifo), 0);
        ASSERT_EQ(rename(keep, fifo), 0);
    }
}

/* `mms recover .` from inside the store wrote DEST, "..recovered", into
 * the store's own directory; --out DIR/x did the same on purpose. DEST goes
 * beside the store (DIR.recovered, DIR resolved), never inside it. */
TEST(recover_dest_inside)
{
    char csv[600], dir[600], cmd[2000], p[800];
    snprintf(csv, sizeof csv, "%s/dot.csv", work);
    snprintf(dir, sizeof dir, "%s/dot.mms", work);
    file_put(csv, "a\n1\n");
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' recover . >'%s/out' 2>'%s/err'", dir,
             getenv("MMS_TOOL"), work, work);
    int st = system(cmd);
    ASSERT(WIFEXITED(st));
    snprintf(p, sizeof p, "%s/..recovered", dir);
    struct stat sb;
    if (stat(p, &sb) == 0)
        FAILF("mms recover . wrote its store into the store being salvaged (%s)", p);
    ASSERT_EQ(WEXITSTATUS(st), 0);
    snprintf(p, sizeof p, "%s.recovered", dir);
    ASSERT_EQ(stat(p, &sb), 0);
    ASSERT_EQ(cli("dump '%s' t", p), 0);
    SAME(out, "a\n1\n");
    /* --out inside DIR: refused, nothing written. */
    ASSERT_EQ(cli("recover '%s' --out '%s/sub'", dir, dir), 2);
    HAS(err, "inside");
    snprintf(p, sizeof p, "%s/sub", dir);
    ASSERT(stat(p, &sb) != 0);
    ASSERT_EQ(cli("verify '%s'", dir), 0);
}

/* Copy file from to to (a whole file, small). */
static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ASSERT(a && b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        ASSERT_EQ(fwrite(buf, 1, n, b), n);
    fclose(a);
    ASSERT_EQ(fclose(b), 0);
}

/* Region files older than the journal's checkpoint (a backup of them put
 * back): the library refuses the store; `mms recover` took the files as
 * they were and said "nothing lost", exit 0, though the commits since were
 * gone. They are a loss: a drop line, exit 1. */
TEST(recover_old_region_files)
{
    char csv[600], dir[600], f[700], saved[700];
    snprintf(csv, sizeof csv, "%s/old.csv", work);
    snprintf(dir, sizeof dir, "%s/old.mms", work);
    file_put(csv, "a\n1\n");
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0); /* txn 1 */
    static const char *const files[] = {"region-0-0", "region-1-0"};
    for (int i = 0; i < 2; i++) {
        snprintf(f, sizeof f, "%s/%s", dir, files[i]);
        snprintf(saved, sizeof saved, "%s/%s.txn1", work, files[i]);
        copy_file(f, saved);
    }
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0); /* txn 2, checkpointed at close */
    for (int i = 0; i < 2; i++) {
        snprintf(f, sizeof f, "%s/%s", dir, files[i]);
        snprintf(saved, sizeof saved, "%s/%s.txn1", work, files[i]);
        copy_file(saved, f);
    }
    ASSERT_EQ(cli("info '%s'", dir), 1);
    HAS(err, "older than the last checkpoint");
    ASSERT_EQ(cli("recover '%s' --dry-run", dir), 1);
    HAS(out, "drop journal");
    HAS(out, "txn 2");
    HAS(out, "exit=1");
}

/* A page of a store file that cannot be read: mms recover maps the files,
 * and such a page is a SIGBUS at its first touch; it died of it, salvaging
 * nothing, the damage it exists for. Here the page is a hole of a sparse
 * region file on a full tmpfs (an I/O error of a failing disk acts alike).
 * Root only: a tmpfs in a mount namespace of a child. */
static int unreadable_child(const char *dir)
{
    char mnt[700], copy[800], f[900];
    snprintf(mnt, sizeof mnt, "%s.fs", dir);
    if (mkdir(mnt, 0777) != 0 || unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=512k") < 0)
        return 77;
    snprintf(copy, sizeof copy, "%s/s.mms", mnt);
    ASSERT_EQ(mkdir(copy, 0777), 0);
    static const char *const files[] = {"region-0-0", "journal", "region-1-0"};
    for (int i = 0; i < 3; i++) {
        char from[800];
        snprintf(from, sizeof from, "%s/%s", dir, files[i]);
        snprintf(f, sizeof f, "%s/%s", copy, files[i]);
        copy_file(from, f);
    }
    /* Records 256.. (16 bytes each) are on page 1 of region-1-0: a hole. */
    int fd = open(f, O_RDWR);
    ASSERT(fd >= 0);
    ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096), 0);
    close(fd);
    snprintf(f, sizeof f, "%s/fill", mnt);
    fd = open(f, O_WRONLY | O_CREAT, 0666);
    ASSERT(fd >= 0);
    static char zeros[4096];
    while (write(fd, zeros, sizeof zeros) == (ssize_t)sizeof zeros)
        ;
    close(fd);
    int st = cli("recover '%s' --dry-run", copy);
    if (st != 1)
        FAILF("mms recover of a store with an unreadable page: exit %d, output:\n%s%s", st, out,
              err);
    HAS(out, "drop records table=t index=256..299 -- on a page of its region file that "
             "cannot be read");
    HAS(out, "drop page file=region-1-0 offset=4096");
    HAS(out, "kept=256 dropped=44");
    return 0;
}

TEST(recover_unreadable_page)
{
    char csv[600], dir[600];
    snprintf(csv, sizeof csv, "%s/pg.csv", work);
    snprintf(dir, sizeof dir, "%s/pg.mms", work);
    FILE *f = fopen(csv, "w");
    ASSERT(f);
    fprintf(f, "a,b\n");
    for (int i = 0; i < 300; i++)
        fprintf(f, "%d,%d\n", i, -i);
    ASSERT_EQ(fclose(f), 0);
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        exit(geteuid() == 0 ? unreadable_child(dir) : 77);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    char mnt[700];
    snprintf(mnt, sizeof mnt, "%s.fs", dir);
    rmdir(mnt);
    ASSERT(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        fprintf(stderr, "SKIP: cannot mount tmpfs (not root)\n");
    else
        ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* A killed `mms recover` leaves DEST.mms-recover-PID, a whole store in the
 * making; nothing removed it (a killed load's or dump's leftovers go at
 * the next load or dump to the same place). The next recover to DEST does. */
TEST(recover_stale_leftover)
{
    char csv[600], dir[600], dest[600], stale[700], f[800];
    snprintf(csv, sizeof csv, "%s/st.csv", work);
    snprintf(dir, sizeof dir, "%s/st.mms", work);
    snprintf(dest, sizeof dest, "%s/st.out", work);
    file_put(csv, "a\n1\n");
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0);
    pid_t pid = dead_pid(); /* a process that is gone */
    snprintf(stale, sizeof stale, "%s.mms-recover-%d", dest, (int)pid);
    ASSERT_EQ(mkdir(stale, 0777), 0);
    snprintf(f, sizeof f, "%s/region-0-0", stale);
    file_put(f, "half a store");
    ASSERT_EQ(cli("recover '%s' --out '%s'", dir, dest), 0);
    struct stat sb;
    if (stat(stale, &sb) == 0)
        FAILF("the leftover %s of a recover that was killed is still there", stale);
}

/* A killed `mms dump --all` leaves OUT.mms-dump-PID (a file), a killed
 * `mms load` DIR.mms-load-PID (a store in the making): the next dump to
 * OUT, the next load into DIR removes those of dead processes and keeps a
 * live one's (mms_leftovers_remove, the library's one mechanism). */
TEST(dump_load_stale_leftovers)
{
    char csv[600], dir[600], dumpf[600], into[600], f[800];
    char dead_dump[700], live_dump[700], dead_load[700], live_load[700];
    snprintf(csv, sizeof csv, "%s/dl.csv", work);
    snprintf(dir, sizeof dir, "%s/dl.mms", work);
    snprintf(dumpf, sizeof dumpf, "%s/dl.dump", work);
    snprintf(into, sizeof into, "%s/dl2.mms", work);
    file_put(csv, "a\n1\n");
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0);
    pid_t pid = dead_pid();
    pid_t live = getpid(); /* this test: alive, and not the tool's own pid */
    snprintf(dead_dump, sizeof dead_dump, "%s.mms-dump-%d", dumpf, (int)pid);
    snprintf(live_dump, sizeof live_dump, "%s.mms-dump-%d", dumpf, (int)live);
    file_put(dead_dump, "half a dump");
    file_put(live_dump, "a dump in the making");
    ASSERT_EQ(cli("dump '%s' --all '%s'", dir, dumpf), 0);
    struct stat sb;
    if (stat(dead_dump, &sb) == 0)
        FAILF("the leftover %s of a dump that was killed is still there", dead_dump);
    ASSERT_EQ(stat(live_dump, &sb), 0);
    snprintf(dead_load, sizeof dead_load, "%s.mms-load-%d", into, (int)pid);
    snprintf(live_load, sizeof live_load, "%s.mms-load-%d", into, (int)live);
    ASSERT_EQ(mkdir(dead_load, 0777), 0);
    ASSERT_EQ(mkdir(live_load, 0777), 0);
    snprintf(f, sizeof f, "%s/region-0-0", dead_load);
    file_put(f, "half a store");
    ASSERT_EQ(cli("load '%s' '%s'", dumpf, into), 0);
    if (stat(dead_load, &sb) == 0)
        FAILF("the leftover %s of a load that was killed is still there", dead_load);
    ASSERT_EQ(stat(live_load, &sb), 0);
    ASSERT_EQ(cli("verify '%s'", into), 0);
}

/* `cat FILE | mms import DIR T -` through a shell, with RLIMIT_DATA at
 * data_kib (0: none); its exit status. */
static int import_piped(const char *dir, const char *table, const char *csv,
                        const char *opts, unsigned data_kib)
{
    char cmd[3000], lim[64] = "";
    if (data_kib)
        snprintf(lim, sizeof lim, "ulimit -d %u && ", data_kib);
    snprintf(cmd, sizeof cmd, "%scat '%s' | '%s' import '%s' %s - %s >'%s/out' 2>'%s/err'", lim,
             csv, getenv("MMS_TOOL"), dir, table, opts, work, work);
    int st = system(cmd);
    snprintf(cmd, sizeof cmd, "%s/err", work);
    free(err);
    err = file_text(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* `mms import` from a pipe held its whole input in memory (177 MB resident
 * for a 153 MB CSV): it now spools the pipe to a file beside the store,
 * unlinked at once, and maps it as it maps a regular file. The store is
 * the same as a file import's; no spool is left; a killed import's spool
 * goes at the next import beside it; and memory does not follow the
 * input: 20 MB of input through a pipe under a 16 MB data limit (refused
 * "out of memory" before). */
TEST(import_from_pipe)
{
    char csv[600], viafile[600], viapipe[600], stale[700], blank[600];
    snprintf(csv, sizeof csv, "%s/pipe.csv", work);
    snprintf(viafile, sizeof viafile, "%s/pipe-file.mms", work);
    snprintf(viapipe, sizeof viapipe, "%s/pipe-pipe.mms", work);
    FILE *f = fopen(csv, "w");
    ASSERT(f);
    fputs("id,score,name\n", f);
    for (int i = 0; i < 60000; i++) /* 3 MB: several of the spool's 1 MiB reads */
        fprintf(f, "%d,%d.%d,\"name %d, with a comma\nand a line break, \"\"quoted\"\"\"\n", i,
                i * 7, i % 10, i);
    fputs("bad,row,with,too many fields\n7,8,last\n", f);
    ASSERT_EQ(fclose(f), 0);
    ASSERT_EQ(cli("import '%s' t '%s' --skip-bad", viafile, csv), 0);
    /* A spool that a killed import left beside the store. */
    pid_t pid = dead_pid();
    snprintf(stale, sizeof stale, "%s.mms-import-%d", viapipe, (int)pid);
    file_put(stale, "id\n1\n");
    ASSERT_EQ(import_piped(viapipe, "t", csv, "--skip-bad", 0), 0);
    struct stat sb;
    if (stat(stale, &sb) == 0)
        FAILF("the spool %s of an import that was killed is still there", stale);
    /* The same rows, kinds and missing values. */
    ASSERT_EQ(cli("dump '%s' t", viafile), 0);
    char *a = strdup(out);
    ASSERT_EQ(cli("dump '%s' t", viapipe), 0);
    ASSERT(strcmp(a, out) == 0);
    ASSERT_EQ(count(out, "\n7,8,last"), 1);
    free(a);
    ASSERT_EQ(cli("tables '%s'", viafile), 0);
    a = strdup(out);
    ASSERT_EQ(cli("tables '%s'", viapipe), 0);
    ASSERT(strcmp(a, out) == 0);
    free(a);
    ASSERT_EQ(cli("verify '%s'", viapipe), 0);
    /* Nothing beside the stores but the stores. */
    DIR *d = opendir(work);
    ASSERT(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strstr(e->d_name, ".mms-import-"))
            FAILF("%s/%s is left", work, e->d_name);
    closedir(d);
    /* Memory: 20 MB of input, blank lines (skipped: the store stays
     * small), through a pipe, under a data limit of 16 MB. Not under the
     * sanitizers, whose shadow memory such a limit refuses. */
    if (SANITIZED)
        return;
    snprintf(blank, sizeof blank, "%s/blank.csv", work);
    f = fopen(blank, "w");
    ASSERT(f);
    fputs("a,b\n1,2\n", f);
    for (int i = 0; i < (20 << 20) / 64; i++)
        fputs("\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
              "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", f);
    fputs("3,4\n", f);
    ASSERT_EQ(fclose(f), 0);
    snprintf(viapipe, sizeof viapipe, "%s/pipe-blank.mms", work);
    if (import_piped(viapipe, "t", blank, "", 16384) != 0)
        FAILF("a piped import of 20 MB under a 16 MB data limit failed:\n%s", err);
    ASSERT_EQ(cli("dump '%s' t", viapipe), 0);
    ASSERT(strcmp(out, "a,b\n1,2\n3,4\n") == 0);
    unlink(blank);
}

/* Run with stdout and stderr closed, a command's files took fds 1 and 2:
 * `mms drop DIR nosuch >&- 2>&-` wrote its error message over the header
 * of region-0-0, opened read-write as fd 2, and the store was gone ("not
 * an mmstore store"). The tool now holds 0-2 open before anything else
 * (/dev/null, the wrong way round, so that a closed stdout is still a
 * write error). */
static int run_closed_std(const char *a, const char *b, const char *c, const char *d)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(1);
        close(2);
        execl(getenv("MMS_TOOL"), "mms", a, b, c, d, (char *)NULL);
        _exit(127);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

TEST(closed_std_fds)
{
    char csv[600], dir[600];
    snprintf(csv, sizeof csv, "%s/closed.csv", work);
    snprintf(dir, sizeof dir, "%s/closed.mms", work);
    file_put(csv, "a,b\n1,x\n2,y\n");
    ASSERT_EQ(cli("import '%s' t '%s'", dir, csv), 0);
    ASSERT_EQ(run_closed_std("drop", dir, "nosuch", NULL), 1);
    ASSERT_EQ(run_closed_std("rename", dir, "nosuch", "x"), 1);
    ASSERT_EQ(run_closed_std("index", dir, "nosuch", "a"), 1);
    ASSERT_EQ(run_closed_std("checkpoint", dir, NULL, NULL), 1); /* cannot say so */
    ASSERT_EQ(run_closed_std("info", dir, NULL, NULL), 1);
    ASSERT_EQ(cli("verify '%s'", dir), 0);
    ASSERT_EQ(cli("dump '%s' t", dir), 0);
    SAME(out, "a,b\n1,x\n2,y\n");
    /* The library keeps its files off 0-2 too, for any program: one that
     * writes to its closed stderr while a store is open gets EBADF. */
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(1);
        close(2);
        mms_store *s;
        if (mms_open(dir, NULL, &s) || mms_txn_begin(s, 0))
            _exit(3);
        int wrote = (int)write(1, "stdout!!", 8) + (int)write(2, "stderr!!", 8);
        if (mms_txn_commit(s) || mms_close(s))
            _exit(4);
        _exit(wrote == -2 ? 0 : 5);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT_EQ(cli("verify '%s'", dir), 0);
}

/* An empty DIR is known wrong from the command line alone: a usage error
 * (exit 2) that says so. It reached mms_open, which said "invalid argument:
 * mms_open: path and out are required" (exit 1); mms load already said
 * "FILE and DIR are not empty". */
TEST(empty_dir)
{
    static const char *const rest[] = {
        "create ''",         "info ''",       "verify ''",           "checkpoint ''",
        "readers ''",        "tables ''",     "schema '' t",         "import '' t x.csv",
        "dump '' t",         "drop '' t",     "rename '' a b",       "compact ''",
        "copy '' d.mms",     "get '' t f 1",  "index '' t f",        "indexes ''",
        "recover ''",        "dump '' --all o.jsonl",
    };
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) {
        int st = cli("%s", rest[i]);
        if (st != 2 || !strstr(err, "DIR is empty") || out[0])
            FAILF("mms %s: exit %d (wanted 2, \"DIR is empty\"), stderr:\n%s", rest[i], st, err);
    }
}

int main(void)
{
    /* The stores live on tmpfs (test.h, "Stores on tmpfs"): the tool's
     * words and exit codes are the point; the cases that need a file
     * system of their own (read-only, full) mount one. */
    signal(SIGABRT, shm_on_abort);
    snprintf(work, sizeof work, "%s", shm_tpath("cli"));
    if (mkdir(work, 0777) != 0)
        FAILF("mkdir %s: %s", work, strerror(errno));
    RUN(usage_and_help);
    RUN(usage_errors);
    RUN(file_as_dir);
    RUN(version);
    RUN(errors_once);
    RUN(info);
    RUN(info_unslotted_not_counted);
    RUN(indexes);
    RUN(damaged_string);
    RUN(negative_values);
    RUN(get_wide_field);
    RUN(waits_aloud);
    RUN(needs_recovery_readonly);
    RUN(recover_fifo);
    RUN(recover_dest_inside);
    RUN(recover_old_region_files);
    RUN(recover_unreadable_page);
    RUN(recover_stale_leftover);
    RUN(dump_load_stale_leftovers);
    RUN(import_from_pipe);
    RUN(empty_dir);
    RUN(closed_std_fds);
    free(out);
    free(err);
    rmrf(work);
    shm_cleanup();
    printf("cli ok\n");
    return 0;
}

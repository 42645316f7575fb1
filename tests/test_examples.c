/*
 * test_examples.c -- every example of include/mmstore.h and of README.md,
 * compiled and run.
 *
 * The examples are copied below, each inside a function that gives it what
 * it assumes (an open store, a table). The copies are checked against the
 * originals: check_copies() reads the header and the README, takes every
 * example (in the header, the comment lines indented four more spaces; in
 * the README, the ```c blocks) and requires each of its paragraphs
 * (blank-line separated) to appear here line for line, whitespace aside.
 * So an example that changes without its copy fails this test, and an
 * example that does not compile or run fails it too.
 */
#include "test.h"

#include <mmstore.h>

#include <ctype.h>
#include <stdbool.h>

/* ------------------------------------------------------------------------
 * The copies
 * ------------------------------------------------------------------------ */
struct counter { uint64_t n; };

/* mmstore.h, the first example: a counter in the root. */
static uint64_t header_counter(mms_store *s)
{
    mms_txn_begin(s, 0);
    mms_ref r = mms_root(s);
    if (!r) { mms_zalloc(s, sizeof(struct counter), &r); mms_root_set(s, r); }
    struct counter *c = mms_deref(s, r);
    c->n++;                        // a plain store, no "I wrote this" call
    mms_txn_commit(s);             // atomic and durable
    return MMS_AT(s, struct counter, mms_root(s))->n;
}

/* mmstore.h, Tables: the schema of a struct. */
struct person { int64_t id; char tag[8]; double score; mms_ref name; mms_ref boss; };
static const mms_field person_fields[] = {
    MMS_F_I64(struct person, id),     MMS_F_CHARS(struct person, tag),
    MMS_F_F64(struct person, score),  MMS_F_STR(struct person, name),
    MMS_F_REF(struct person, boss, "person"),
};
static const mms_schema person_schema = MMS_SCHEMA(struct person, person_fields);

/* mmstore.h, MMS_TABLE_GET. */
static void header_table_get(mms_table *t)
{
    struct person *p = MMS_TABLE_GET(t, struct person, 0);
    if (p) p->score += 1;
}

/* mmstore.h, mms_table_deleted: a scan that skips deleted records. */
static uint64_t header_deleted_scan(mms_table *t)
{
    uint64_t i, nbits, live = 0, slots = mms_table_slots(t);
    const uint64_t *bits = mms_table_deleted(t, &nbits);
    for (i = 0; i < slots; i++)
        if (i >= nbits || !(bits[i / 64] >> (i % 64) & 1))
            live++;
    return live;
}

/* mmstore.h, MMS_F_WITH_DEFAULT: a field added with a default; the
 * records that existed before it get the default. */
static void header_default(mms_store *s)
{
    struct person { int64_t id; char tag[8]; double score; mms_ref name; mms_ref boss;
                    int32_t age; };
    static const int32_t adult = 18;
    static const mms_field age_field =
        MMS_F_WITH_DEFAULT(struct person, age, MMS_KIND_I32, &adult);
    const mms_field fields[] = {
        MMS_F_I64(struct person, id),    MMS_F_CHARS(struct person, tag),
        MMS_F_F64(struct person, score), MMS_F_STR(struct person, name),
        MMS_F_REF(struct person, boss, "person"), age_field,
    };
    const mms_schema schema = MMS_SCHEMA(struct person, fields);
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "person", &schema, 0, &t)); /* migrates */
    OK(mms_txn_commit(s));
    ASSERT_EQ(MMS_TABLE_GET(t, struct person, 0)->age, 18);
    ASSERT_EQ(MMS_TABLE_GET(t, struct person, 1)->age, 18);
}

/* README.md, the first example: a counter in the root, in a store of its
 * own ("state.mms" in the current directory). */
static void readme_counter(void)
{
mms_options o;
mms_options_init(&o);
o.flags = MMS_CREATE;
mms_store *s;
mms_open("state.mms", &o, &s);

mms_txn_begin(s, 0);
mms_ref r = mms_root(s);
if (!r) { mms_zalloc(s, sizeof(struct counter), &r); mms_root_set(s, r); }
MMS_AT(s, struct counter, r)->n++;     /* a plain store: no "I wrote this" call */
mms_txn_commit(s);                     /* atomic and durable */
mms_close(s);
}

/* mmstore.h, Fixed-address mode: a node pushed onto a list of plain
 * pointers, the root. */
struct node { struct node *next; int value; };

static void header_fixed(mms_store *s)
{
    mms_txn_begin(s, 0);
    struct node *n = mms_pmalloc(s, sizeof *n);
    n->value = 42;
    n->next = mms_root_ptr(s);     // a plain pointer, kept in the store
    mms_root_ptr_set(s, n);
    mms_txn_commit(s);
}

/* README.md, fixed-address mode: the same in a store of its own
 * ("list.mms" in the current directory). */
static void readme_fixed(void)
{
mms_options o;
mms_options_init(&o);
o.flags = MMS_CREATE | MMS_FIXED;      /* the same addresses in every process */
mms_store *s;
mms_open("list.mms", &o, &s);

mms_txn_begin(s, 0);
struct node *n = mms_pmalloc(s, sizeof *n);
n->value = 42;
n->next = mms_root_ptr(s);             /* a plain pointer, kept in the store */
mms_root_ptr_set(s, n);
mms_txn_commit(s);
mms_close(s);
}

/* ------------------------------------------------------------------------
 * Checking the copies
 * ------------------------------------------------------------------------ */
/* The line without leading and trailing blanks, inner runs of blanks as
 * one space, into out. */
static void squeeze(const char *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    bool space = false;
    for (size_t i = 0; i < n && k + 2 < cap; i++) {
        if (isspace((unsigned char)p[i])) {
            space = k > 0;
            continue;
        }
        if (space)
            out[k++] = ' ';
        space = false;
        out[k++] = p[i];
    }
    out[k] = 0;
}

#define MAXL 4096
struct lines {
    char *l[MAXL];
    int n;
};

static void add_line(struct lines *L, const char *p, size_t n)
{
    char b[512];
    squeeze(p, n, b, sizeof b);
    ASSERT(L->n < MAXL);
    L->l[L->n++] = strdup(b);
}

/* This file's lines, squeezed. */
static void source_lines(const char *text, struct lines *L)
{
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        add_line(L, p, n);
        p += n + (e != NULL);
    }
}

static int examples_checked;

/* Each paragraph of ex (blank lines separate them) appears in src line for
 * line, the paragraphs in order. */
static void check_example(const char *where, const struct lines *ex, const struct lines *src)
{
    int from = 0, i = 0;
    while (i < ex->n) {
        while (i < ex->n && !*ex->l[i])
            i++;
        int j = i;
        while (j < ex->n && *ex->l[j])
            j++;
        if (i == j)
            break;
        int at = -1;
        for (int k = from; k + (j - i) <= src->n && at < 0; k++) {
            int m = 0;
            while (m < j - i && strcmp(src->l[k + m], ex->l[i + m]) == 0)
                m++;
            if (m == j - i)
                at = k;
        }
        if (at < 0) {
            fprintf(stderr, "%s: this example has no copy in test_examples.c:\n", where);
            for (int k = i; k < j; k++)
                fprintf(stderr, "    %s\n", ex->l[k]);
            FAILF("copy the example into test_examples.c and run it");
        }
        from = at + (j - i);
        i = j;
    }
    examples_checked++;
}

static void free_lines(struct lines *L)
{
    for (int i = 0; i < L->n; i++)
        free(L->l[i]);
    L->n = 0;
}

/* The header's examples: comment lines " *     code" (four spaces past the
 * comment's own indentation), consecutive ones forming one example. */
static void header_examples(const char *text, const struct lines *src)
{
    static struct lines ex;
    int line = 0, start = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        line++;
        bool code = n > 7 && strncmp(p, " *     ", 7) == 0;
        if (code) {
            if (!ex.n)
                start = line;
            size_t m = n;
            if (m >= 2 && strncmp(p + m - 2, "*/", 2) == 0)
                m -= 2; /* the comment's end on the example's last line */
            add_line(&ex, p + 3, m - 3);
        } else if (ex.n) {
            char where[64];
            snprintf(where, sizeof where, "include/mmstore.h:%d", start);
            check_example(where, &ex, src);
            free_lines(&ex);
        }
        p += n + (e != NULL);
    }
}

/* The README's ```c blocks. */
static void readme_examples(const char *text, const struct lines *src)
{
    static struct lines ex;
    int line = 0, start = 0;
    bool in = false;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        line++;
        if (!in && n >= 4 && strncmp(p, "```c", 4) == 0 && n == 4) {
            in = true;
            start = line + 1;
        } else if (in && n >= 3 && strncmp(p, "```", 3) == 0) {
            char where[64];
            snprintf(where, sizeof where, "README.md:%d", start);
            check_example(where, &ex, src);
            free_lines(&ex);
            in = false;
        } else if (in) {
            add_line(&ex, p, n);
        }
        p += n + (e != NULL);
    }
}

/* README.md, Finding records by key: an index on person.id, a find and a
 * range (ids 0..99, 3 and 70 deleted); a range over score reading the id
 * its index covers. */
static uint64_t readme_used;
static void use(const void *rec)
{
    if (rec)
        readme_used++;
}

static void readme_find(mms_store *s, mms_table *t)
{
    int64_t key = 42, lo = 10, hi = 19, k;
    mms_txn_begin(s, 0);
    mms_index_create(t, "id", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE); /* built from the records */
    mms_txn_commit(s);

    mms_index *ix;  mms_index_open(t, "id", &ix);
    uint64_t at;    if (mms_index_find(ix, &key, &at) == 0) use(mms_table_get(t, at));
    /* also: mms_index_find_all, mms_index_count, mms_indexes, mms_index_drop */
    mms_cursor *c;  mms_cursor_open(ix, &c);            /* ordered indexes only */
    for (int r = mms_cursor_seek(c, MMS_SEEK_GE, &lo, &at, &k); r == 0 && k <= hi;
         r = mms_cursor_next(c, &at, &k))
        use(mms_table_get(t, at));
    mms_cursor_close(c);

    /* a range reading one small field: an index covering it gives it from its leaves */
    mms_txn_begin(s, 0);
    mms_index_create_covering(t, "score", MMS_INDEX_ORDERED, "id");
    mms_txn_commit(s);
    mms_index *bys;  mms_index_open(t, "score", &bys);
    double from = 45.0, score;  int64_t id, ids = 0;
    mms_cursor_open(bys, &c);
    for (int r = mms_cursor_seek(c, MMS_SEEK_GE, &from, &at, &score); r == 0;
         r = mms_cursor_next(c, &at, &score))
        if (mms_cursor_covered(c, &id) == 0) ids += id;        /* no record read */
    mms_cursor_close(c);
    ASSERT_EQ(ids, 90 + 91 + 92 + 93 + 94 + 95 + 96 + 97 + 98 + 99); /* scores i / 2 */
}

TEST(copies)
{
    /* The sources next to this file (CMake compiles it by its full path). */
    char dir[512], path[600];
    const char *f = __FILE__, *slash = strrchr(f, '/');
    ASSERT(slash != NULL);
    snprintf(dir, sizeof dir, "%.*s/..", (int)(slash - f), f);
    static struct lines src;
    char *self = file_text(f);
    source_lines(self, &src);
    snprintf(path, sizeof path, "%s/include/mmstore.h", dir);
    char *h = file_text(path);
    header_examples(h, &src);
    int in_header = examples_checked;
    snprintf(path, sizeof path, "%s/README.md", dir);
    char *r = file_text(path);
    readme_examples(r, &src);
    fprintf(stderr, "   %d examples in the header, %d in the README, all copied here\n",
            in_header, examples_checked - in_header);
    ASSERT_GE(in_header, 5);
    ASSERT_GE(examples_checked - in_header, 1);
    free_lines(&src);
    free(self);
    free(h);
    free(r);
}

/* ------------------------------------------------------------------------
 * Running them
 * ------------------------------------------------------------------------ */
TEST(run)
{
    const char *p = tpath("examples");
    mms_store *s = open_flags(p, MMS_CREATE);
    /* The counter: a new store (null root), then again. */
    ASSERT_EQ(header_counter(s), 1);
    ASSERT_EQ(header_counter(s), 2);
    /* The person table. */
    mms_table *t;
    OK(mms_txn_begin(s, 0));
    OK(mms_table_open(s, "person", &person_schema, MMS_TABLE_CREATE, &t));
    for (int i = 0; i < 100; i++) {
        struct person x = {i, "p", i * 0.5, 0, 0};
        OK(mms_table_append(t, &x, NULL));
    }
    header_table_get(t);
    OK(mms_table_delete(t, 3));
    OK(mms_table_delete(t, 70));
    OK(mms_txn_commit(s));
    ASSERT(MMS_TABLE_GET(t, struct person, 0)->score == 1.0);
    ASSERT(MMS_TABLE_GET(t, struct person, 100) == NULL);
    ASSERT_EQ(header_deleted_scan(t), 98);
    header_default(s);
    readme_find(s, t); /* 42, then 10..19 */
    ASSERT_EQ(readme_used, 11);
    verify_ok(s);
    OK(mms_close(s));
    rmrf(p);
    /* The fixed-address list, pushed twice. */
    s = open_flags(p, MMS_CREATE | MMS_FIXED);
    header_fixed(s);
    header_fixed(s);
    struct node *top = mms_root_ptr(s);
    ASSERT(top && top->value == 42 && top->next && top->next->value == 42 && !top->next->next);
    OK(mms_close(s));
    rmrf(p);
    /* The README's program, twice in a directory of its own. */
    const char *d = tpath("readme");
    ASSERT_EQ(mkdir(d, 0777), 0);
    char cwd[1024];
    ASSERT(getcwd(cwd, sizeof cwd) != NULL);
    ASSERT_EQ(chdir(d), 0);
    readme_counter();
    readme_counter();
    s = open_flags("state.mms", MMS_RDONLY);
    ASSERT_EQ(MMS_AT(s, struct counter, mms_root(s))->n, 2);
    OK(mms_close(s));
    readme_fixed();
    readme_fixed();
    s = open_flags("list.mms", MMS_RDONLY | MMS_FIXED);
    top = mms_root_ptr(s);
    ASSERT(top && top->next && top->next->value == 42 && !top->next->next);
    OK(mms_close(s));
    ASSERT_EQ(chdir(cwd), 0);
    rmrf(d);
}

/* ------------------------------------------------------------------------
 * The example programs (built next to the mms tool) given wrong arguments:
 * exit 2 and a line that says what is wrong, before any store is made.
 * ------------------------------------------------------------------------ */
static char prog_err[4096];

/* Run the example `name` with args in dir; its stderr goes to prog_err. */
static int run_example(const char *dir, const char *name, const char *args)
{
    const char *tool = getenv("MMS_TOOL");
    if (!tool)
        FAILF("MMS_TOOL is not set (run under ctest)");
    const char *slash = strrchr(tool, '/');
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%.*s/%s' %s 2>&1 >/dev/null </dev/null", dir,
             slash ? (int)(slash - tool) : 1, slash ? tool : ".", name, args);
    FILE *f = popen(cmd, "r");
    ASSERT(f != NULL);
    size_t n = fread(prog_err, 1, sizeof prog_err - 1, f);
    prog_err[n] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

TEST(wrong_arguments)
{
    static const struct {
        const char *prog, *args, *says;
    } bad[] = {
        /* pmap created the store, then said "unknown command" */
        {"pmap", "s.mms bogus", "pmap: unknown command bogus"},
        /* "unknown command get": the KEY was missing */
        {"pmap", "s.mms get", "pmap: missing argument of get"},
        {"pmap", "s.mms put", "pmap: missing argument of put"},
        {"pmap", "s.mms check x", "pmap: too many arguments for check"},
        /* numbers were read with strtoull: "abc" filled 0 keys, exit 0 */
        {"pmap", "s.mms fill abc", "pmap: not a number: abc"},
        {"pmap", "s.mms put k x", "pmap: not a number: x"},
        {"pmap", "s.mms top -1", "pmap: not a number: -1"},
        /* BATCH 0 committed empty transactions for ever */
        {"pubsub", "s.mms produce 10 0", "pubsub: BATCH is a number >= 1, not '0'"},
        {"pubsub", "s.mms produce ten", "pubsub: COUNT is a number, not 'ten'"},
        {"pubsub", "s.mms consume 5 6", "pubsub: too many arguments (from '6' on)"},
        {"pubsub", "s.mms publish 5", "pubsub: unknown mode 'publish' (produce or consume)"},
        /* "abc" was 0 nodes, exit 0 */
        {"counter_list", "s.mms abc", "counter_list: NODES is a number >= 0, not 'abc'"},
        {"counter_list", "s.mms -5", "counter_list: NODES is a number >= 0, not '-5'"},
    };
    const char *d = tpath("wrong-args");
    ASSERT_EQ(mkdir(d, 0777), 0);
    char store[700];
    snprintf(store, sizeof store, "%s/s.mms", d);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run_example(d, bad[i].prog, bad[i].args);
        if (rc != 2 || !strstr(prog_err, bad[i].says))
            FAILF("%s %s: exit %d, said:\n%s\nwanted exit 2 and: %s", bad[i].prog, bad[i].args,
                  rc, prog_err, bad[i].says);
        struct stat st;
        if (stat(store, &st) == 0)
            FAILF("%s %s made a store", bad[i].prog, bad[i].args);
    }
    /* An error is said once: the path not twice, no empty "()". */
    ASSERT_EQ(run_example(d, "pmap", "nope.mms get k"), 1);
    if (strcmp(prog_err, "pmap: cannot open the store: nope.mms: No such file or directory\n"))
        FAILF("pmap on a missing store said:\n%s", prog_err);
    ASSERT_EQ(run_example(d, "ucd", "query nope.mms"), 1);
    if (!strstr(prog_err, "ucd: cannot open the store: nope.mms: No such file or directory\n"))
        FAILF("ucd on a missing store said:\n%s", prog_err);
    rmrf(d);
}

int main(void)
{
    RUN(copies);
    RUN(run);
    RUN(wrong_arguments);
    printf("examples ok\n");
    return 0;
}

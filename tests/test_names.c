/* The name rule (mmstore.h, "Names"): a new table name or field name is
 * UTF-8 with no control character and no '/', not starting with '-'; a
 * store made before the rule, whose names break it, still opens, verifies,
 * is read, and its tables can be renamed to a name that keeps it. */
#include "test.h"

#include "internal.h"

#include <string.h>

struct rec {
    int64_t id;
    mms_ref label;
};
static const mms_field fields[] = {MMS_F_I64(struct rec, id), MMS_F_STR(struct rec, label)};
static const mms_schema schema = MMS_SCHEMA(struct rec, fields);

/* The same with a field added: the migrations. */
struct rec2 {
    int64_t id;
    mms_ref label;
    int64_t more;
};
static const mms_field fields2[] = {MMS_F_I64(struct rec2, id), MMS_F_STR(struct rec2, label),
                                    MMS_F_I64(struct rec2, more)};

/* Names that break the rule, each with what breaks it. */
static const char *const bad_names[] = {
    "",            /* empty */
    "a\nb",        /* a newline: breaks line-oriented output */
    "tab\there",   /* a control character */
    "bell\x7f",    /* DEL */
    "-rf",         /* looks like an option on a command line */
    "a/b",         /* a path */
    "caf\xc3",     /* a UTF-8 sequence cut short */
    "\xc0\xaf",    /* an overlong '/' */
    "\xed\xa0\x80", /* a surrogate */
    "\xff",        /* never UTF-8 */
};

static void fails_einval_saying(int r, const char *words)
{
    ASSERT_EQ(r, MMS_EINVAL);
    const char *d = mms_errdetail();
    if (!strstr(d, words))
        FAILF("detail \"%s\" does not say \"%s\"", d, words);
}

TEST(table_names)
{
    const char *p = tpath("names-tables");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t;
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        /* An empty name fails the older length check first. */
        fails_einval_saying(mms_table_open(s, bad_names[i], &schema, MMS_TABLE_CREATE, &t),
                            i == 0 ? "a table name is 1 to 63 bytes"
                                   : "a table name is 1 to 63 bytes of UTF-8 with no control "
                                     "character and no '/', not starting with '-'");
        ASSERT_EQ(mms_table_find(s, bad_names[i], &t) == MMS_ENOENT ||
                      mms_table_find(s, bad_names[i], &t) == MMS_EINVAL, 1);
    }
    char longname[65];
    memset(longname, 'x', 64);
    longname[64] = 0;
    fails_einval_saying(mms_table_open(s, longname, &schema, MMS_TABLE_CREATE, &t),
                        "1 to 63 bytes");
    /* Spaces, punctuation, a '-' inside and UTF-8 letters keep the rule. */
    const char *good[] = {"people", "my table", "a-b.c_d", "caf\xc3\xa9", "\xf0\x9f\x90\x88",
                          "x-"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        OK(mms_table_open(s, good[i], &schema, MMS_TABLE_CREATE, &t));
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++)
        fails_einval_saying(mms_table_rename(s, "people", bad_names[i]), "a table name is");
    OK(mms_table_rename(s, "people", "persons"));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

TEST(field_names)
{
    const char *p = tpath("names-fields");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t;
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        mms_field f[2] = {fields[0], fields[1]};
        f[1].name = bad_names[i];
        mms_schema sc = {sizeof(struct rec), 2, f};
        int r = mms_table_open(s, "t", &sc, MMS_TABLE_CREATE, &t);
        ASSERT_EQ(r, MMS_EINVAL);
        /* An empty name fails the schema's older length check first. */
        if (i > 0)
            fails_einval_saying(r, "field 1 has a name that");
    }
    OK(mms_table_open(s, "t", &schema, MMS_TABLE_CREATE, &t));
    /* A migration that adds a field with a bad name is refused too. */
    mms_field f3[3] = {fields2[0], fields2[1], fields2[2]};
    f3[2].name = "more\r";
    mms_schema sc3 = {sizeof(struct rec2), 3, f3};
    fails_einval_saying(mms_table_open(s, "t", &sc3, 0, &t), "field 2 has a name that holds a "
                                                             "control character");
    f3[2].name = "more";
    OK(mms_table_open(s, "t", &sc3, 0, &t));
    OK(mms_txn_commit(s));
    OK(mms_close(s));
}

/* A store whose names break the rule (made by hand here, as a library
 * before the rule could make it) opens, verifies, reads, migrates and
 * renames: nobody is locked out of their data. */
TEST(old_store_bad_names)
{
    const char *p = tpath("names-old");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t;
    OK(mms_table_open(s, "good", &schema, MMS_TABLE_CREATE, &t));
    struct rec r = {42, 0};
    OK(mms_str_new(s, "hello", 5, &r.label));
    OK(mms_table_append(t, &r, NULL));
    OK(mms_txn_commit(s));
    OK(mms_txn_begin(s, 0));
    struct mms__catalog *cat;
    OK(mms__catalog_get(s, &cat));
    ASSERT_EQ(cat->ntables, 1u);
    strcpy(cat->t[0].name, "-bad\nname");
    struct mms__fdesc *fd = mms_deref(s, cat->t[0].fields);
    ASSERT_EQ(strcmp(fd[1].name, "label"), 0);
    strcpy(fd[1].name, "la/bel");
    OK(mms_txn_commit(s));
    OK(mms_close(s));

    s = open_flags(p, 0);
    verify_ok(s);
    FAILS(mms_table_find(s, "good", &t), MMS_ENOENT);
    OK(mms_table_find(s, "-bad\nname", &t));
    ASSERT_EQ(mms_table_count(t), 1u);
    const mms_schema *stored = mms_table_schema(t);
    ASSERT_EQ(strcmp(stored->fields[1].name, "la/bel"), 0);
    OK(mms_txn_begin(s, 0));
    /* Opened with its stored layout, bad field name and all. */
    mms_field f[2] = {fields[0], fields[1]};
    f[1].name = "la/bel";
    mms_schema sc = {sizeof(struct rec), 2, f};
    OK(mms_table_open(s, "-bad\nname", &sc, 0, &t));
    /* A migration keeps the old field and adds a good one. */
    mms_field f3[3] = {fields2[0], fields2[1], fields2[2]};
    f3[1].name = "la/bel";
    mms_schema sc3 = {sizeof(struct rec2), 3, f3};
    OK(mms_table_open(s, "-bad\nname", &sc3, 0, &t));
    OK(mms_table_rename(s, "-bad\nname", "fixed"));
    OK(mms_txn_commit(s));
    OK(mms_close(s));

    s = open_flags(p, 0);
    verify_ok(s);
    OK(mms_table_find(s, "fixed", &t));
    const struct rec2 *got = mms_table_get(t, 0);
    ASSERT_EQ(got->id, 42);
    size_t len;
    const char *text = mms_str_get(s, got->label, &len);
    ASSERT_EQ(len, 5u);
    ASSERT_EQ(memcmp(text, "hello", 5), 0);
    OK(mms_close(s));
}

/* The tool renames such a table too ("--" ends the options). */
TEST(tool_renames_dash_name)
{
    const char *p = tpath("names-tool");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t;
    OK(mms_table_open(s, "good", &schema, MMS_TABLE_CREATE, &t));
    struct mms__catalog *cat;
    OK(mms__catalog_get(s, &cat));
    strcpy(cat->t[0].name, "-x");
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    char cmd[700], out[2048];
    snprintf(cmd, sizeof cmd, "rename %s -- -x ok", p);
    ASSERT_EQ(run_tool(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "rename %s -- ok -y", p);
    ASSERT_NE(run_tool(cmd, out, sizeof out), 0);
    if (!strstr(out, "starts with '-'"))
        FAILF("mms rename to -y says: %s", out);
    s = open_flags(p, MMS_RDONLY);
    OK(mms_table_find(s, "ok", &t));
    OK(mms_close(s));
}

/* mms recover makes DEST through the API, which refuses such names: it
 * mends them, says so, and loses nothing. */
TEST(recover_mends_names)
{
    const char *p = tpath("names-recover");
    mms_store *s = open_flags(p, MMS_CREATE);
    OK(mms_txn_begin(s, 0));
    mms_table *t;
    OK(mms_table_open(s, "a", &schema, MMS_TABLE_CREATE, &t));
    OK(mms_table_open(s, "b", &schema, MMS_TABLE_CREATE, &t));
    struct rec r = {7, 0};
    OK(mms_table_append(t, &r, NULL));
    OK(mms_index_create(t, "id", MMS_INDEX_HASH));
    struct mms__catalog *cat;
    OK(mms__catalog_get(s, &cat));
    strcpy(cat->t[0].name, "x/y");
    strcpy(cat->t[1].name, "x\ny"); /* mended to x_y too: then x_y_2 */
    struct mms__fdesc *fd = mms_deref(s, cat->t[1].fields);
    strcpy(fd[0].name, "-id");
    struct mms__ixdesc *ix = mms_deref(s, cat->t[1].indexes);
    strcpy(ix[0].field, "-id");
    OK(mms_txn_commit(s));
    OK(mms_close(s));
    char cmd[1400], out[8192], dest[700];
    snprintf(dest, sizeof dest, "%s.recovered", p);
    rmrf(dest);
    snprintf(cmd, sizeof cmd, "recover %s --out %s", p, dest);
    int rc = run_tool(cmd, out, sizeof out);
    if (rc != 0 || !strstr(out, "info table name=x/y -- renamed x_y: the name breaks the name "
                                "rule (holds a '/')\n") ||
        !strstr(out, "info table name=x\\x0ay -- renamed x_y_2: ") ||
        !strstr(out, "info field table=x_y_2 field=-id -- renamed _id: ") ||
        !strstr(out, "info index table=x_y_2 field=_id -- rebuilt"))
        FAILF("mms recover exited %d:\n%s", rc, out);
    s = open_flags(dest, MMS_RDONLY);
    verify_ok(s);
    OK(mms_table_find(s, "x_y_2", &t));
    ASSERT_EQ(mms_table_count(t), 1u);
    ASSERT_EQ(((struct rec *)mms_table_get(t, 0))->id, 7);
    OK(mms_table_find(s, "x_y", &t));
    OK(mms_close(s));
    rmrf(dest);
}

int main(void)
{
    RUN(table_names);
    RUN(field_names);
    RUN(old_store_bad_names);
    RUN(tool_renames_dash_name);
    RUN(recover_mends_names);
    return 0;
}

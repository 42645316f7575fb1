/*
 * mms_index.c -- `mms index` (create or drop an index) and `mms indexes`
 * (list them), through the public API.
 */
#define _POSIX_C_SOURCE 200809L
#include "tool.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * mms index DIR TABLE FIELD [--unique] [--ordered] [--cover FIELD2] [--drop]
 * ------------------------------------------------------------------------ */
/* The indexes of t into *ii (the caller frees it), *n of them; or 1 with
 * a message. */
static int indexes_of(mms_table *t, const char *dir, mms_index_info **ii, size_t *n)
{
    int r = mms_indexes(t, NULL, 0, n);
    if (r)
        return tool_fail("cannot list the indexes of", dir, r);
    if (!(*ii = calloc(*n ? *n : 1, sizeof **ii)))
        return tool_err("out of memory");
    if ((r = mms_indexes(t, *ii, *n, n))) {
        free(*ii);
        return tool_fail("cannot list the indexes of", dir, r);
    }
    return 0;
}

/* The line a created index gets, as mms create and mms drop say what they
 * did: "DIR: unique hash index on T.F created (N entries, covers F2)". */
static int say_created(mms_store *s, const char *dir, mms_table *t, const char *field)
{
    mms_index_info *ii;
    size_t n;
    int rc = mms_read_begin(s);
    if (rc)
        return tool_fail("cannot read", dir, rc);
    rc = indexes_of(t, dir, &ii, &n);
    mms_read_end(s);
    for (size_t i = 0; !rc && i < n; i++) {
        if (strcmp(ii[i].field, field) != 0)
            continue;
        printf("%s: %s%s index on %s.%s created (%llu entr%s%s%s)\n", dir,
               ii[i].flags & MMS_INDEX_UNIQUE ? "unique " : "",
               ii[i].flags & MMS_INDEX_ORDERED ? "ordered" : "hash", mms_table_name(t), field,
               (unsigned long long)ii[i].entries, ii[i].entries == 1 ? "y" : "ies",
               ii[i].cover[0] ? ", covers " : "", ii[i].cover);
        free(ii);
        return 0;
    }
    if (!rc)
        free(ii);
    return rc ? rc : tool_err("%s: the index on %s.%s is not listed after its commit", dir,
                              mms_table_name(t), field);
}

static int run_index(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[3], *cover = NULL;
    bool unique = false, ordered = false, drop = false;
    const struct tool_opt opts[] = {{"unique", false, NULL, &unique, NULL, 0},
                                    {"ordered", false, NULL, &ordered, NULL, 0},
                                    {"cover", true, &cover, NULL, NULL, 0},
                                    {"drop", false, NULL, &drop, NULL, 0}};
    int rc = tool_args(cmd, argc, argv, opts, 4, pos, 3);
    if (rc >= 0)
        return rc;
    if (drop && (unique || ordered || cover))
        return tool_usage_err(cmd, "--drop takes neither --unique, --ordered nor --cover");
    const char *dir = pos[0];
    mms_store *s;
    int r = mms_open(dir, NULL, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    mms_table *t;
    r = tool_txn_begin(s, dir);
    if (!r)
        r = mms_table_find(s, pos[1], &t);
    if (!r)
        r = drop ? mms_index_drop(t, pos[2])
                 : mms_index_create_covering(t, pos[2], (unique ? MMS_INDEX_UNIQUE : 0) |
                                                            (ordered ? MMS_INDEX_ORDERED : 0),
                                             cover);
    if (!r)
        r = mms_txn_commit(s);
    else if (r != MMS_ETXN)
        mms_txn_abort(s);
    if (r) {
        tool_fail(drop ? "cannot drop the index of" : "cannot index", dir, r);
        mms_close(s);
        return 1;
    }
    rc = 0;
    if (drop)
        printf("%s: index on %s.%s dropped\n", dir, pos[1], pos[2]);
    else
        rc = say_created(s, dir, t, pos[2]);
    r = mms_close(s);
    if (r && !rc)
        rc = tool_fail("cannot close", dir, r);
    return rc ? rc : tool_finish_change();
}

const struct tool_cmd tool_cmd_index = {
    "index", "DIR TABLE FIELD [--unique] [--ordered] [--cover FIELD2] [--drop]",
    "Create an index on a field of TABLE (a hash one unless --ordered), or drop it.",
    "  --ordered   a B+tree: exact match and ranges (dump --where 'F>=A'); without\n"
    "              it a hash index: exact match only, faster\n"
    "  --unique    no two records may hold one key: refused now if two do, and by\n"
    "              every later append or commit that would make two\n"
    "  --cover F2  keep a copy of field F2 (at most 8 bytes: integer, float, bool,\n"
    "              ref, chars) in each hash slot or ordered leaf entry: a get of F2\n"
    "              by key (mms_index_find_covered), or of F2 over a range of keys\n"
    "              (mms_cursor_covered), reads the index alone\n"
    "  --drop      drop the field's index instead\n"
    "\n"
    "The index is built from the records in one transaction (a bulk build) and\n"
    "kept true by every commit from then on, whatever changes the field. One line\n"
    "on stdout says what was done (created: its kind and entries).\n"
    "Fields of kind str and blob cannot be indexed yet.\n",
    run_index};

/* ------------------------------------------------------------------------
 * mms indexes DIR [TABLE]
 * ------------------------------------------------------------------------ */
static int list_table(mms_store *s, const char *dir, const char *name, bool *header)
{
    mms_table *t;
    int r = mms_table_find(s, name, &t);
    if (r == MMS_ENOENT)
        return tool_err("%s: no table called '%s'", dir, name);
    if (r)
        return tool_fail("cannot open a table of", dir, r);
    mms_index_info *ii;
    size_t n;
    if ((r = indexes_of(t, dir, &ii, &n)))
        return r;
    if (!*header) {
        printf("%-16s %-16s %-7s %-6s %-6s %12s %10s  %s\n", "table", "field", "kind", "unique",
               "key", "entries", "size", "covers");
        *header = true;
    }
    for (size_t i = 0; i < n; i++) {
        char b[16];
        printf("%-16s %-16s %-7s %-6s %-6s %12llu %10s  %s\n", name, ii[i].field,
               ii[i].flags & MMS_INDEX_ORDERED ? "ordered" : "hash",
               ii[i].flags & MMS_INDEX_UNIQUE ? "yes" : "no",
               mms_kind_name(ii[i].key_kind) ? mms_kind_name(ii[i].key_kind) : "?",
               (unsigned long long)ii[i].entries, tool_bytes(ii[i].bytes, b),
               ii[i].cover[0] ? ii[i].cover : "-");
    }
    free(ii);
    return 0;
}

static int run_indexes(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[2];
    int got;
    int rc = tool_args_range(cmd, argc, argv, NULL, 0, pos, 1, 2, &got);
    if (rc >= 0)
        return rc;
    rc = 0;
    const char *dir = pos[0];
    mms_store *s;
    int r = tool_open_inspect(dir, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    if ((r = mms_read_begin(s))) {
        mms_close(s);
        return tool_fail("cannot read", dir, r);
    }
    bool header = false;
    if (got == 2) {
        rc = list_table(s, dir, pos[1], &header);
    } else {
        size_t n;
        mms_table_info *ti;
        if ((r = tool_tables(s, &ti, &n)))
            rc = tool_fail("cannot list the tables of", dir, r);
        for (size_t i = 0; !rc && i < n; i++)
            rc = list_table(s, dir, ti[i].name, &header);
        free(ti);
    }
    if (!header && !rc)
        printf("%-16s %-16s %-7s %-6s %-6s %12s %10s  %s\n", "table", "field", "kind", "unique",
               "key", "entries", "size", "covers");
    mms_read_end(s);
    if (!rc)
        rc = tool_finish_output(NULL);
    r = mms_close(s);
    return r && !rc ? tool_fail("cannot close", dir, r) : rc;
}

const struct tool_cmd tool_cmd_indexes = {
    "indexes", "DIR [TABLE]",
    "List the indexes (of every table, or of TABLE): field, kind, entries, size.",
    "kind: hash or ordered; entries: the records in it (the table's live records\n"
    "but those whose value of the field is missing: they are in no index);\n"
    "size: its region's committed bytes; covers: the field an index keeps a copy\n"
    "of in each entry (mms index --cover), - none.\n",
    run_indexes};

/*
 * mms_life.c -- the commands of a store's life: drop and rename a table,
 * compact a store in place (and, later, copy it). Each one is a write
 * transaction or a call of the public API, nothing more; what is safe
 * is the library's business (include/mmstore.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "tool.h"

#include <errno.h>

#include <stdbool.h>
#include <string.h>

/* One write transaction around fn on the store in dir. */
static int in_txn(const char *what, const char *dir, int (*fn)(mms_store *s, void *ctx),
                  void *ctx)
{
    mms_store *s;
    int r = mms_open(dir, NULL, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    r = tool_txn_begin(s, dir);
    if (!r && (r = fn(s, ctx)))
        mms_txn_abort(s);
    else if (!r)
        r = mms_txn_commit(s);
    if (r) {
        tool_fail(what, dir, r);
        mms_close(s);
        return 1;
    }
    r = mms_close(s);
    return r ? tool_fail("cannot close", dir, r) : 0;
}

/* ------------------------------------------------------------------------
 * mms drop DIR TABLE
 * ------------------------------------------------------------------------ */
/* The table's indexes go with it (mms_table_drop). */
static int drop_fn(mms_store *s, void *ctx)
{
    return mms_table_drop(s, ctx);
}

static int run_drop(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[2];
    int rc = tool_args(cmd, argc, argv, NULL, 0, pos, 2);
    if (rc >= 0)
        return rc;
    if ((rc = in_txn("cannot drop the table of", pos[0], drop_fn, (void *)pos[1])))
        return rc;
    printf("%s: table %s dropped\n", pos[0], pos[1]);
    return tool_finish_change();
}

const struct tool_cmd tool_cmd_drop = {
    "drop", "DIR TABLE", "Drop a table: its records, strings and region go.",
    "One write transaction; the table's indexes go with it. Refused while a\n"
    "live record of another table (or the root) refers to a record of TABLE:\n"
    "clear those refs first. Ref fields of other tables that targeted it\n"
    "target no table afterwards.\n",
    run_drop};

/* ------------------------------------------------------------------------
 * mms rename DIR OLD NEW
 * ------------------------------------------------------------------------ */
static int rename_fn(mms_store *s, void *ctx)
{
    const char **names = ctx;
    return mms_table_rename(s, names[0], names[1]);
}

static int run_rename(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[3];
    int rc = tool_args(cmd, argc, argv, NULL, 0, pos, 3);
    if (rc >= 0)
        return rc;
    if ((rc = in_txn("cannot rename a table of", pos[0], rename_fn, (void *)(pos + 1))))
        return rc;
    printf("%s: table %s renamed %s\n", pos[0], pos[1], pos[2]);
    return tool_finish_change();
}

const struct tool_cmd tool_cmd_rename = {
    "rename", "DIR OLD NEW", "Rename a table (records and refs do not change).",
    "One write transaction. Refused when a table called NEW exists.\n", run_rename};

/* ------------------------------------------------------------------------
 * mms compact DIR
 * ------------------------------------------------------------------------ */
static int run_compact(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *dir;
    int rc = tool_args(cmd, argc, argv, NULL, 0, &dir, 1);
    if (rc >= 0)
        return rc;
    mms_store *s;
    int r = mms_open(dir, NULL, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    mms_compact_stats st;
    r = mms_compact(s, &st);
    int r2 = mms_close(s);
    if (r || r2)
        return tool_fail("cannot compact", dir, r ? r : r2);
    char b1[16], b2[16], b3[16], b4[16];
    printf("%s: %s before, %s after (%llu bytes given back: %s punched, %s cut from file "
           "ends; %llu deleted records and %llu heap bytes left the ends)\n",
           dir, tool_bytes(st.disk_before, b1), tool_bytes(st.disk_after, b2),
           (unsigned long long)(st.disk_before > st.disk_after ? st.disk_before - st.disk_after
                                                                : 0),
           tool_bytes(st.punched, b3), tool_bytes(st.truncated, b4),
           (unsigned long long)st.slots_trimmed, (unsigned long long)st.heap_trimmed);
    printf("disk_before %llu\ndisk_after %llu\n", (unsigned long long)st.disk_before,
           (unsigned long long)st.disk_after);
    return tool_finish_change();
}

const struct tool_cmd tool_cmd_compact = {
    "compact", "DIR", "Give free space back to the file system; report bytes before and after.",
    "Free heap pages are punched out, deleted records at the ends of tables and\n"
    "free space at the end of the heap leave them, files are cut to their\n"
    "committed size. No live byte moves, refs stay valid. Safe against a crash\n"
    "at any point. Refused at once (never waits) while another handle has the\n"
    "store open: to compact a store that stays open, copy it.\n",
    run_compact};

/* ------------------------------------------------------------------------
 * mms copy DIR DEST [--compact] [--force]
 * ------------------------------------------------------------------------ */
static int run_copy(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[2];
    bool compact = false, force = false;
    const struct tool_opt opts[] = {{"compact", false, NULL, &compact},
                                    {"force", false, NULL, &force}};
    int rc = tool_args(cmd, argc, argv, opts, 2, pos, 2);
    if (rc >= 0)
        return rc;
    mms_store *s;
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY; /* a reader is all a copy needs */
    tool_note_readers(pos[0]);
    int r = mms_open(pos[0], &o, &s);
    if (r)
        return tool_fail("cannot open", pos[0], r);
    mms_copy_stats st;
    r = mms_copy(s, pos[1], (compact ? MMS_COPY_COMPACT : 0) | (force ? MMS_COPY_FORCE : 0), &st);
    int r2 = mms_close(s);
    if (r == -EEXIST && !force) /* the library's words name its flag, MMS_COPY_FORCE */
        return tool_err("cannot copy %s: %s exists (--force replaces a store or an empty "
                        "directory there)", pos[0], pos[1]);
    if (r)
        return tool_fail("cannot copy", pos[0], r);
    if (r2)
        return tool_fail("cannot close", pos[0], r2);
    char b[16];
    printf("%s: copied to %s at txn %llu (%llu region files, %s of data, %.3f s inside the "
           "read transaction)\n",
           pos[0], pos[1], (unsigned long long)st.txn, (unsigned long long)st.regions,
           tool_bytes(st.bytes_copied, b), st.read_ns / 1e9);
    return tool_finish_change();
}

const struct tool_cmd tool_cmd_copy = {
    "copy", "DIR DEST [--compact] [--force]",
    "Copy a store while it is in use: one committed state, whole, into a new directory.",
    "The state is pinned by a read transaction for as long as the files are\n"
    "read; writers go on committing. The copy is built beside DEST and renamed\n"
    "into place, so a crash leaves no half DEST. Holes are not copied.\n"
    "\n"
    "  --compact   the copy holds live data only: free heap pages, deleted\n"
    "              records at the ends of tables and free space at the end of\n"
    "              the heap are not kept (refs stay valid: nothing moves)\n"
    "  --force     replace DEST if it is a store (or an empty directory)\n"
    "\n"
    "Copying an open store with cp or tar is not safe: it can copy a state\n"
    "that never existed. Copy a closed store with cp, an open one with this.\n",
    run_copy};

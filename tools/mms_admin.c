/*
 * mms_admin.c -- the commands about a store as a whole: create, info,
 * verify, checkpoint, readers. Each opens the store, asks the public API
 * and closes it; only create and checkpoint write.
 */
#define _POSIX_C_SOURCE 200809L
#include "tool.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * mms create DIR [--fixed [--base ADDR] [--reserve BYTES]]
 * ------------------------------------------------------------------------ */
/* A number of the command line (decimal, 0x hex), or a usage error.
 * strtoull alone took "-5" (and " 5") for 2^64 - 5, and with base 0 a
 * leading 0 for octal (0400000000: 64 MiB). */
static int create_number(const struct tool_cmd *cmd, const char *name, const char *text,
                         uint64_t *out)
{
    *out = 0;
    if (!text)
        return -1;
    bool hex = (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'));
    const char *digits = hex ? text + 2 : text;
    char *end;
    errno = 0;
    *out = strtoull(digits, &end, hex ? 16 : 10);
    if (errno || end == digits || *end || !isxdigit((unsigned char)digits[0]) ||
        (!hex && !isdigit((unsigned char)digits[0])))
        return tool_usage_err(cmd, "--%s wants a number, not '%s'", name, text);
    return -1;
}

static int run_create(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *dir, *base = NULL, *reserve = NULL;
    bool fixed = false;
    const struct tool_opt opts[] = {{"fixed", false, NULL, &fixed},
                                    {"base", true, &base, NULL},
                                    {"reserve", true, &reserve, NULL}};
    int rc = tool_args(cmd, argc, argv, opts, 3, &dir, 1);
    if (rc >= 0)
        return rc;
    if ((base || reserve) && !fixed)
        return tool_usage_err(cmd, "--base and --reserve go with --fixed");
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_EXCL | (fixed ? MMS_FIXED : 0);
    if ((rc = create_number(cmd, "base", base, &o.base)) >= 0 ||
        (rc = create_number(cmd, "reserve", reserve, &o.reserve)) >= 0)
        return rc;
    mms_store *s;
    int r = mms_open(dir, &o, &s); /* refused: it leaves nothing it made (mmstore.h) */
    if (r)
        return tool_fail("cannot create", dir, r);
    mms_info in;
    r = mms_info_get(s, &in);
    if (!r)
        r = mms_close(s);
    else
        mms_close(s);
    if (r)
        return tool_fail("cannot close", dir, r);
    if (fixed)
        printf("created %s, fixed at 0x%llx (heap up to %llu bytes, %llu per table)\n", dir,
               (unsigned long long)in.fixed_base, (unsigned long long)in.fixed_heap_reserve,
               (unsigned long long)in.fixed_table_reserve);
    else
        printf("created %s\n", dir);
    return tool_finish_change();
}

const struct tool_cmd tool_cmd_create = {
    "create", "DIR [--fixed [--base ADDR] [--reserve BYTES]]",
    "Create an empty store in the directory DIR (made if missing; one that holds a store is refused).",
    "  --fixed           a fixed-address store (MMS_FIXED): its regions are mapped at\n"
    "                    addresses recorded now, the same in every process that\n"
    "                    opens it with MMS_FIXED, so pointers stored in it stay valid\n"
    "  --base ADDR       where (a multiple of 4 MiB; default 0x200000000000, or the\n"
    "                    next 4 TiB up that is free)\n"
    "  --reserve BYTES   how large the heap may grow (default 256 GiB); each table\n"
    "                    gets a quarter of it\n",
    run_create};

/* ------------------------------------------------------------------------
 * mms info DIR [--raw]
 * ------------------------------------------------------------------------ */
/* The handles without a slot are counted from the kernel's lock table,
 * which can fail on its own (a table that kept moving, -EAGAIN): the rest
 * of the report stands, and stderr says what it lacks. Returns err. */
static long unslotted_warning(const char *dir, int err)
{
    tool_err("warning: %s: the handles without a slot (processes that may not write the "
             "lock file) were not counted: %s", dir, mms_strerror(err));
    return err;
}

/* unslotted < 0: the handles without a slot could not be counted (the
 * -errno of mms_readers_unslotted_path); handles and active_readers then
 * count the slotted ones only. */
static void info_raw(const mms_info *in, mms_ref root, long unslotted)
{
    printf("format_version: %u\n", in->format_version);
    printf("txn_id: %llu\n", (unsigned long long)in->txn_id);
    printf("regions: %u\n", in->nregions);
    for (unsigned i = 0; i < in->nregions; i++) {
        printf("region_%u_size: %llu\n", i, (unsigned long long)in->region_size[i]);
        printf("region_%u_file_bytes: %llu\n", i, (unsigned long long)in->region_file[i]);
    }
    printf("journal_bytes: %llu\n", (unsigned long long)in->journal_bytes);
    printf("heap_used: %llu\n", (unsigned long long)in->heap_used);
    printf("heap_free: %llu\n", (unsigned long long)in->heap_free);
    printf("heap_objects: %llu\n", (unsigned long long)in->heap_objects);
    printf("root: 0x%llx\n", (unsigned long long)root);
    printf("published_txn: %llu\n", (unsigned long long)in->published_txn);
    printf("committed_txn: %llu\n", (unsigned long long)in->committed_txn);
    printf("durable_txn: %llu\n", (unsigned long long)in->durable_txn);
    printf("readers_holding_back: %u\n", in->readers_holding_back);
    if (in->writer_pid)
        printf("writer: %u\n", in->writer_pid);
    else
        printf("writer: none\n");
    printf("handles: %u\n", in->handles);
    if (unslotted < 0)
        printf("handles_without_slot: unknown\n");
    else
        printf("handles_without_slot: %ld\n", unslotted);
    printf("active_readers: %u\n", in->active_readers);
    if (in->fixed_base) {
        printf("fixed_base: 0x%llx\n", (unsigned long long)in->fixed_base);
        printf("fixed_heap_reserve: %llu\n", (unsigned long long)in->fixed_heap_reserve);
        printf("fixed_table_reserve: %llu\n", (unsigned long long)in->fixed_table_reserve);
    }
}

/* The same figures for a person: sizes in KB/MB/GB, and per table its
 * live records, deleted slots and the bytes they waste. Every line is
 * indented, so no line reads as one of the raw "key: value" lines. */
static int info_person(const char *dir, mms_store *s, const mms_info *in, long unslotted)
{
    char a[16], b[16], c[16];
    uint64_t files = 0;
    for (unsigned i = 0; i < in->nregions; i++)
        files += in->region_file[i];
    printf("%s: mmstore format %u, last commit txn %llu\n", dir, in->format_version,
           (unsigned long long)in->txn_id);
    printf("  on disk    %s in %u region file%s; journal %s since the last checkpoint\n",
           tool_bytes(files, a), in->nregions, in->nregions == 1 ? "" : "s",
           tool_bytes(in->journal_bytes, b));
    printf("  heap       %s in %llu object%s, %s free for reuse (file %s)\n",
           tool_bytes(in->heap_used, a), (unsigned long long)in->heap_objects,
           in->heap_objects == 1 ? "" : "s", tool_bytes(in->heap_free, b),
           tool_bytes(in->region_file[0], c));
    if (in->fixed_base)
        printf("  addresses  fixed (MMS_FIXED) at 0x%llx: heap up to %s, %s per table\n",
               (unsigned long long)in->fixed_base, tool_bytes(in->fixed_heap_reserve, a),
               tool_bytes(in->fixed_table_reserve, b));
    size_t n;
    mms_table_info *ti;
    int r = tool_tables(s, &ti, &n);
    if (r)
        return tool_fail("cannot list the tables of", dir, r);
    printf("  tables     %zu\n", n);
    if (n) {
        int w = 5;
        for (size_t i = 0; i < n; i++)
            if ((int)strlen(ti[i].name) > w)
                w = (int)strlen(ti[i].name);
        printf("    %-*s %12s %9s %10s %8s %10s %10s\n", w, "table", "records", "deleted",
               "wasted", "record", "in use", "file");
        for (size_t i = 0; i < n; i++) {
            const mms_table_info *t = &ti[i];
            uint64_t del = t->slots - t->count;
            char d[16];
            printf("    %-*s %12llu %9llu %10s %8s %10s %10s\n", w, t->name,
                   (unsigned long long)t->count, (unsigned long long)del,
                   tool_bytes(del * t->record_size, a), tool_bytes(t->record_size, b),
                   tool_bytes(t->slots * t->record_size, c),
                   tool_bytes(t->region < in->nregions ? in->region_file[t->region] : 0, d));
        }
    }
    free(ti);
    char w[32] = "none";
    if (in->writer_pid)
        snprintf(w, sizeof w, "pid %u", in->writer_pid);
    char u[128] = "";
    if (unslotted < 0)
        snprintf(u, sizeof u, "; those without a slot, of processes that may not write the "
                 "lock file, not counted");
    else if (unslotted)
        snprintf(u, sizeof u, "; %ld of them without a slot, of processes that may not write "
                 "the lock file", unslotted);
    printf("  processes  writer %s; %u open handle%s (this command's included%s), %u inside a "
           "read transaction\n",
           w, in->handles, in->handles == 1 ? "" : "s", u, in->active_readers);
    if (in->committed_txn > in->published_txn)
        printf("  waiting    %llu commit%s not yet applied (readers see txn %llu)%s\n",
               (unsigned long long)(in->committed_txn - in->published_txn),
               in->committed_txn - in->published_txn == 1 ? "" : "s",
               (unsigned long long)in->published_txn,
               in->readers_holding_back ? "; a reader holds the store back (mms readers)" : "");
    return 0;
}

static int run_info(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *dir;
    bool raw = false;
    const struct tool_opt opts[] = {{"raw", false, NULL, &raw}};
    int rc = tool_args(cmd, argc, argv, opts, 1, &dir, 1);
    if (rc >= 0)
        return rc;
    rc = 0;
    mms_store *s;
    int r = tool_open_inspect(dir, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    mms_info *in = malloc(sizeof *in);
    r = in ? mms_info_get(s, in) : -ENOMEM;
    unsigned uo = 0, ui = 0;
    long unslotted = 0;
    if (!r) {
        int ur = mms_readers_unslotted_path(dir, &uo, &ui);
        if (ur)
            unslotted = unslotted_warning(dir, ur);
        else {
            unslotted = uo;
            in->handles += uo; /* mms_info counts the slots only */
            in->active_readers += ui;
        }
    }
    if (!r) {
        if (!raw) {
            rc = info_person(dir, s, in, unslotted);
            printf("\n");
        }
        if (!rc)
            info_raw(in, mms_root(s), unslotted);
    }
    free(in);
    if (r) {
        mms_close(s);
        return tool_fail("cannot inspect", dir, r);
    }
    r = mms_close(s);
    if (r && !rc)
        rc = tool_fail("cannot close", dir, r);
    return rc ? rc : tool_finish_output(NULL);
}

const struct tool_cmd tool_cmd_info = {
    "info", "DIR [--raw]", "Describe the store: its size, heap, tables and processes.",
    "First the figures a person reads (sizes in KB, MB, GB; for each table its live\n"
    "records, deleted slots and the bytes they hold), then the same figures as raw\n"
    "\"key: value\" lines for scripts: format_version, txn_id, regions,\n"
    "region_N_size, region_N_file_bytes, journal_bytes, heap_used, heap_free,\n"
    "heap_objects, root, published_txn (what a new reader sees), committed_txn,\n"
    "durable_txn (behind committed_txn while MMS_NOSYNC commits wait for their\n"
    "sync), readers_holding_back, writer (a pid or none), handles,\n"
    "handles_without_slot (of those: handles of processes that may not write the\n"
    "lock file, counted from /proc/locks; mms readers lists no pid for them;\n"
    "\"unknown\" when the count failed, with a warning on stderr: handles and\n"
    "active_readers then leave them out), active_readers (theirs included), and\n"
    "for a store created with --fixed fixed_base, fixed_heap_reserve,\n"
    "fixed_table_reserve.\n"
    "\n"
    "  --raw   print only the raw lines\n",
    run_info};

/* ------------------------------------------------------------------------
 * mms verify DIR [--pointers]
 * ------------------------------------------------------------------------ */
static int run_verify(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *dir;
    bool pointers = false, strict = false;
    const struct tool_opt opts[] = {{"pointers", false, NULL, &pointers},
                                    {"strict", false, NULL, &strict}};
    int rc = tool_args(cmd, argc, argv, opts, 2, &dir, 1);
    if (rc >= 0)
        return rc;
    mms_store *s;
    int r = tool_open_inspect(dir, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    char msg[512], scan[512] = "";
    uint64_t found = 0;
    tool_note_writer(s, dir);
    tool_note_held_back(s, dir);
    r = mms_verify(s, msg, sizeof msg);
    if (!r && pointers) {
        r = mms_verify_pointers(s, scan, sizeof scan, &found);
        if (r && found)
            snprintf(msg, sizeof msg, "%s", scan);
    }
    mms_heap_check hc;
    if (!r && (r = mms_verify_heap(s, &hc)))
        snprintf(msg, sizeof msg, "%s", mms_errdetail());
    if (r) {
        tool_err("%s is not sound: %s", dir, msg[0] ? msg : mms_strerror(r));
        mms_close(s);
        return 1;
    }
    r = mms_close(s);
    if (r)
        return tool_fail("cannot close", dir, r);
    if (pointers)
        printf("%s: ok (pointer scan: %s)\n", dir, scan);
    else
        printf("%s: ok\n", dir);
    if (hc.unreachable)
        printf("warning unreachable objects=%llu bytes=%llu first=0x%llx -- heap objects "
               "that nothing refers to (a leak, not damage)\n",
               (unsigned long long)hc.unreachable, (unsigned long long)hc.unreachable_bytes,
               (unsigned long long)hc.first_unreachable);
    if (hc.shared)
        printf("warning shared fields=%llu first=0x%llx -- string or blob fields holding "
               "what another field holds (a record copied whole)\n",
               (unsigned long long)hc.shared, (unsigned long long)hc.first_shared);
    rc = tool_finish_output(NULL);
    return rc ? rc : strict && (hc.unreachable || hc.shared) ? 2 : 0;
}

const struct tool_cmd tool_cmd_verify = {
    "verify", "DIR [--pointers] [--strict]",
    "Check the whole store; exit 0 if it is sound, 1 if not.",
    "Checks the header, the journal, the heap's metadata and the tables, and prints\n"
    "the first problem found. A store that needs recovery (its last writer died)\n"
    "is recovered first. Then it warns, one line each, of heap objects nothing\n"
    "refers to ('warning unreachable objects=N bytes=B ...', a leak) and of string\n"
    "or blob fields that share their string ('warning shared fields=N ...'):\n"
    "neither is damage (mms_verify_heap in mmstore.h says how they are found).\n"
    "\n"
    "  --strict     exit 2 when the store is sound but there is a warning\n"
    "  --pointers   then scan the heap for pointers that point nowhere valid: every\n"
    "               8-byte word of every live allocation whose value lies in the\n"
    "               store's address range (a store created with MMS_FIXED: its\n"
    "               recorded layout) must point into a live allocation or a live\n"
    "               table record, and so must the root. Conservative: an integer\n"
    "               that happens to lie in that range counts as a pointer.\n",
    run_verify};

/* ------------------------------------------------------------------------
 * mms checkpoint DIR
 * ------------------------------------------------------------------------ */
static int run_checkpoint(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *dir;
    int rc = tool_args(cmd, argc, argv, NULL, 0, &dir, 1);
    if (rc >= 0)
        return rc;
    mms_store *s;
    int r = mms_open(dir, NULL, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    tool_note_writer(s, dir);
    r = mms_checkpoint(s);
    int r2 = mms_close(s);
    if (r || r2)
        return tool_fail("cannot checkpoint", dir, r ? r : r2);
    printf("%s: checkpointed\n", dir);
    return tool_finish_output(NULL);
}

const struct tool_cmd tool_cmd_checkpoint = {
    "checkpoint", "DIR", "Sync the region files and empty the journal.", "", run_checkpoint};

/* ------------------------------------------------------------------------
 * mms readers DIR [--clear-stale]
 * ------------------------------------------------------------------------ */
/* Listed from the lock file without a handle (mms_readers_path): it works
 * when every reader slot is taken, which is when it is needed most. */
static int run_readers(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *dir;
    bool clear = false;
    const struct tool_opt opts[] = {{"clear-stale", false, NULL, &clear}};
    int rc = tool_args(cmd, argc, argv, opts, 1, &dir, 1);
    if (rc >= 0)
        return rc;
    if (clear) {
        mms_store *s;
        mms_options o;
        mms_options_init(&o);
        o.flags = MMS_RDONLY;
        unsigned n = 0;
        int r = mms_open(dir, &o, &s);
        if (r)
            return tool_fail("cannot open", dir, r);
        r = mms_readers_clear_stale(s, &n);
        int r2 = mms_close(s);
        if (r || r2)
            return tool_fail("cannot clear stale readers of", dir, r ? r : r2);
        printf("cleared: %u\n", n);
    }
    mms_reader_info rd[256];
    size_t n;
    int r = mms_readers_path(dir, rd, sizeof rd / sizeof rd[0], &n);
    if (r)
        return tool_fail("cannot list readers of", dir, r);
    printf("%-8s %-6s %-7s %-10s %-12s %s\n", "pid", "alive", "reading", "txn", "age_ms",
           "behind");
    for (size_t i = 0; i < n && i < sizeof rd / sizeof rd[0]; i++)
        printf("%-8u %-6s %-7s %-10llu %-12.3f %llu%s\n", rd[i].pid, rd[i].alive ? "yes" : "no",
               rd[i].active ? "yes" : "no", (unsigned long long)rd[i].txn,
               rd[i].age_ns / 1e6, (unsigned long long)rd[i].behind,
               rd[i].holding_back ? "  HOLDING BACK the store" : "");
    unsigned uo = 0, ui = 0;
    int ur = mms_readers_unslotted_path(dir, &uo, &ui);
    if (ur)
        unslotted_warning(dir, ur);
    else if (uo)
        printf("and %u handle%s without a slot (processes that may not write the lock file: "
               "no pid, no txn), %u inside a read transaction\n", uo, uo == 1 ? "" : "s", ui);
    return tool_finish_output(NULL);
}

const struct tool_cmd tool_cmd_readers = {
    "readers", "DIR [--clear-stale]",
    "List the handles open on the store (pid, txn, age); free those of dead processes.",
    "One line per handle: pid, alive, inside a read transaction, the txn it pins,\n"
    "how long it has been inside (ms), and how many commits were made since it\n"
    "pinned (commits wait in the journal while it is inside: new readers do not\n"
    "see them until it leaves). A reader inside for longer than the store's\n"
    "reader_limit_ms (1 s by default) while commits wait is marked HOLDING BACK.\n"
    "Handles of processes that may not write the lock file (another user's store,\n"
    "read with MMS_RDONLY) take no slot: a last line counts them, and those inside a\n"
    "read transaction, from the kernel's lock table (/proc/locks), which names no\n"
    "process for them.\n"
    "It reads the store's lock file without opening the store, so it works when\n"
    "all 256 handles a store can have are open (and `mms info` cannot open it).\n"
    "\n"
    "  --clear-stale   first free the slots of processes that died\n",
    run_readers};

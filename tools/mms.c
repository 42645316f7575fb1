/*
 * mms -- the mmstore command-line tool. Uses only the public API.
 *
 *   mms create DIR        create an empty store
 *   mms info DIR          key: value lines describing the store
 *   mms verify DIR        check everything; exit 0 if sound, 1 if not
 *   mms checkpoint DIR    sync the regions and empty the journal
 *   mms readers DIR [--clear-stale]   the handles open on the store
 *   mms tables DIR        the tables (mms_tables.c)
 *   mms schema DIR TABLE  a table's fields (mms_tables.c)
 *   mms dump DIR TABLE [--format csv|jsonl] [--limit N]   (mms_tables.c)
 *   mms import DIR TABLE FILE [--schema SPEC] [--skip-bad] (mms_import.c)
 *
 * Every failure prints a message on stderr and exits non-zero (2 for a
 * usage error, 1 otherwise), never by a signal: SIGPIPE is ignored, so a
 * closed pipe is a write error like any other.
 */
#define _POSIX_C_SOURCE 200809L
#include "mms_tool.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const tool_prog = "mms";
#define prog tool_prog

static const char usage_text[] =
    "usage: %s COMMAND ARGS...\n"
    "commands:\n"
    "  create DIR       create an empty store in DIR\n"
    "  info DIR         print the store's state as key: value lines\n"
    "  verify DIR       check header, journal, heap and tables; exit 0 if sound\n"
    "  checkpoint DIR   sync the region files and empty the journal\n"
    "  readers DIR [--clear-stale]\n"
    "                   list the handles open on the store (pid, txn, age);\n"
    "                   --clear-stale frees those of dead processes\n"
    "  tables DIR       one line per table: name, live records, slots, record\n"
    "                   size, fields, layout generation\n"
    "  schema DIR TABLE one line per field: name, kind, offset, size, ref target\n"
    "  import DIR TABLE FILE [--schema SPEC] [--skip-bad]\n"
    "                   append the rows of a CSV file ('-': standard input) to\n"
    "                   TABLE, creating the store and the table if needed\n"
    "  dump DIR TABLE [--format csv|jsonl] [--limit N]\n"
    "                   print the live records in index order (CSV by default)\n"
    "  version          print the library version\n"
    "\n"
    "import:\n"
    "  The file is CSV (RFC 4180) in UTF-8. Its first row names the fields (1 to\n"
    "  47 bytes, unique). Quoted values may hold commas, line breaks and \"\" for\n"
    "  a quote; lines end with LF or CR LF; a leading UTF-8 byte-order mark is\n"
    "  skipped. With more than one field, empty lines are skipped.\n"
    "  A new table's kinds are inferred per column: i64 if every value is an\n"
    "  integer written as dump writes it (no '+', no leading zeros, not empty),\n"
    "  else f64 if every value is a float written as dump writes it, else str.\n"
    "  --schema gives the kinds instead, by field name, e.g.\n"
    "  \"name:str,age:i32,score:f64,ok:bool\"; kinds: i8 i16 i32 i64 u8 u16 u32\n"
    "  u64 f32 f64 bool (true/false) str chars:N (at most N bytes, no NUL) blob\n"
    "  (hex) ref:TABLE (a record index of TABLE; empty for none). Declared\n"
    "  numbers may have a '+' or leading zeros. Fields are laid out in column\n"
    "  order, each at an offset aligned to its size, as in a C struct.\n"
    "  An existing table gets the rows appended. Without --schema its stored\n"
    "  layout gives the kinds (columns matched to fields by name, all of them\n"
    "  present); with --schema the layout must equal the stored one.\n"
    "  A bad row (malformed quoting, wrong number of fields, invalid UTF-8, a\n"
    "  value that does not parse as its kind) is reported with the line it\n"
    "  starts on (the first 1000 are listed). Then nothing is imported (exit 1),\n"
    "  or with --skip-bad the bad rows are skipped. The import is one\n"
    "  transaction: a crash or an error leaves all of the rows or none.\n"
    "  On a terminal, progress is shown on stderr (MMS_PROGRESS=0|1 overrides).\n"
    "\n"
    "dump:\n"
    "  CSV: a header row, LF line endings, a value quoted only if it holds a\n"
    "  comma, quote, CR or LF (quotes doubled). Integers in decimal; floats in\n"
    "  the shortest form that reads back as the same value, in fixed notation\n"
    "  for exponents -7 < e < 21 (0.1, 100, 1e21, 1.5e-7, -0, nan, inf, -inf);\n"
    "  bool true/false; chars up to the first NUL; str as is; blob as hex; ref\n"
    "  as the target record's index (empty for none).\n"
    "  JSONL: one JSON object per line; strings escaped (control characters as\n"
    "  \\n, \\t, \\u00XX..., invalid UTF-8 as \\ufffd); null for null refs, strings\n"
    "  and blobs; NaN and infinities as null.\n"
    "  Round trip: a CSV file in dump's form (header row, minimal quoting, LF\n"
    "  line endings, values written as dump writes them) imported into a new\n"
    "  table dumps back byte for byte. Other input imports as well and dumps\n"
    "  in canonical form: CR LF becomes LF, needless quotes go. A column with\n"
    "  values such as \"+7\", \"007\" or \"1.50\" is inferred as str and dumps\n"
    "  as written; declared numeric with --schema, it dumps as 7 or 1.5.\n"
    "  \"-0\" is a float (so its column is f64) and keeps its sign.\n"
    "  A dump runs in one read transaction: it sees one committed state, and\n"
    "  commits of other processes wait until it ends (do not leave it stopped\n"
    "  in a pager).\n";

static int usage(FILE *f)
{
    fprintf(f, usage_text, prog);
    return f == stderr ? 2 : 0;
}

static const char *const cmd_usage[][2] = {
    {"create", "create DIR"},
    {"info", "info DIR"},
    {"verify", "verify DIR"},
    {"checkpoint", "checkpoint DIR"},
    {"readers", "readers DIR [--clear-stale]"},
    {"tables", "tables DIR"},
    {"schema", "schema DIR TABLE"},
    {"import", "import DIR TABLE FILE [--schema SPEC] [--skip-bad]"},
    {"dump", "dump DIR TABLE [--format csv|jsonl] [--limit N]"},
};

int tool_usage_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    for (size_t i = 0; i < sizeof cmd_usage / sizeof cmd_usage[0]; i++)
        if (cmd && strcmp(cmd, cmd_usage[i][0]) == 0)
            fprintf(stderr, "usage: %s %s\n", prog, cmd_usage[i][1]);
    fprintf(stderr, "run '%s help' for details\n", prog);
    return 2;
}

int tool_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int tool_fail(const char *what, const char *dir, int err)
{
    const char *d = mms_errdetail();
    fprintf(stderr, "%s: %s %s: %s%s%s\n", prog, what, dir, mms_strerror(err), *d ? ": " : "", d);
    return 1;
}

/* Open for inspection: read-only when possible; a store that needs
 * recovery is opened read-write once, which recovers it. */
int tool_open_inspect(const char *dir, mms_store **s)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    int r = mms_open(dir, &o, s);
    if (r == MMS_ERECOVER) {
        o.flags = 0;
        r = mms_open(dir, &o, s);
    }
    return r;
}

int tool_parse_args(int argc, char **argv, const char **pos, int npos,
                    const struct tool_opt *opts, int nopts)
{
    int k = 0;
    bool no_more_opts = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!no_more_opts && strcmp(a, "--") == 0) {
            no_more_opts = true;
            continue;
        }
        if (!no_more_opts && a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            int j = 0;
            for (; j < nopts; j++)
                if (strlen(opts[j].name) == len && strncmp(opts[j].name, a, len) == 0)
                    break;
            if (j == nopts)
                return tool_usage_err(argv[0], "%s: unknown option %.*s", argv[0], (int)len, a);
            if (!opts[j].takes_value) {
                if (eq)
                    return tool_usage_err(argv[0], "%s takes no value", opts[j].name);
                *opts[j].flag = true;
            } else if (eq) {
                *opts[j].value = eq + 1;
            } else if (i + 1 < argc) {
                *opts[j].value = argv[++i];
            } else {
                return tool_usage_err(argv[0], "%s needs a value", opts[j].name);
            }
            continue;
        }
        if (k == npos)
            return tool_usage_err(argv[0], "%s: too many arguments", argv[0]);
        pos[k++] = a;
    }
    if (k < npos)
        return tool_usage_err(argv[0], "%s: too few arguments", argv[0]);
    return 0;
}

const char *tool_kind_name(unsigned kind)
{
    static const char *const names[] = {"?", "i8", "i16", "i32", "i64", "u8", "u16", "u32",
                                        "u64", "f32", "f64", "bool", "chars", "ref", "str",
                                        "blob"};
    return kind <= MMS_KIND_BLOB ? names[kind] : "?";
}

static int cmd_create(const char *dir)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_EXCL;
    mms_store *s;
    int r = mms_open(dir, &o, &s);
    if (r)
        return tool_fail("cannot create", dir, r);
    r = mms_close(s);
    if (r)
        return tool_fail("cannot close", dir, r);
    printf("created %s\n", dir);
    return 0;
}

static int cmd_info(const char *dir)
{
    mms_store *s;
    int r = tool_open_inspect(dir, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    mms_info *in = malloc(sizeof *in);
    if (!in) {
        mms_close(s);
        return tool_fail("cannot inspect", dir, -12);
    }
    r = mms_info_get(s, in);
    if (r) {
        free(in);
        mms_close(s);
        return tool_fail("cannot inspect", dir, r);
    }
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
    printf("root: 0x%llx\n", (unsigned long long)mms_root(s));
    printf("published_txn: %llu\n", (unsigned long long)in->published_txn);
    if (in->writer_pid)
        printf("writer: %u\n", in->writer_pid);
    else
        printf("writer: none\n");
    printf("handles: %u\n", in->handles);
    printf("active_readers: %u\n", in->active_readers);
    free(in);
    r = mms_close(s);
    return r ? tool_fail("cannot close", dir, r) : 0;
}

static int cmd_verify(const char *dir)
{
    mms_store *s;
    int r = tool_open_inspect(dir, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    char msg[512];
    r = mms_verify(s, msg, sizeof msg);
    if (r) {
        fprintf(stderr, "%s: %s is not sound: %s\n", prog, dir, msg[0] ? msg : mms_strerror(r));
        mms_close(s);
        return 1;
    }
    r = mms_close(s);
    if (r)
        return tool_fail("cannot close", dir, r);
    printf("%s: ok\n", dir);
    return 0;
}

static int cmd_checkpoint(const char *dir)
{
    mms_store *s;
    int r = mms_open(dir, NULL, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    r = mms_checkpoint(s);
    int r2 = mms_close(s);
    if (r || r2)
        return tool_fail("cannot checkpoint", dir, r ? r : r2);
    printf("%s: checkpointed\n", dir);
    return 0;
}

static int cmd_readers(const char *dir, int clear)
{
    mms_store *s;
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    int r = mms_open(dir, &o, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    if (clear) {
        unsigned n;
        r = mms_readers_clear_stale(s, &n);
        if (r) {
            mms_close(s);
            return tool_fail("cannot clear stale readers of", dir, r);
        }
        printf("cleared: %u\n", n);
    }
    mms_reader_info rd[256];
    size_t n;
    r = mms_readers(s, rd, sizeof rd / sizeof rd[0], &n);
    if (r) {
        mms_close(s);
        return tool_fail("cannot list readers of", dir, r);
    }
    /* This command's own handle is one of them. */
    printf("%-8s %-6s %-7s %-10s %s\n", "pid", "alive", "reading", "txn", "age_ms");
    for (size_t i = 0; i < n && i < sizeof rd / sizeof rd[0]; i++)
        printf("%-8u %-6s %-7s %-10llu %.3f%s\n", rd[i].pid, rd[i].alive ? "yes" : "no",
               rd[i].active ? "yes" : "no", (unsigned long long)rd[i].txn,
               rd[i].age_ns / 1e6, rd[i].pid == (uint32_t)getpid() ? "  (this command)" : "");
    r = mms_close(s);
    return r ? tool_fail("cannot close", dir, r) : 0;
}

/* The commands that take exactly one DIR. */
static int one_dir(int argc, char **argv, int (*fn)(const char *))
{
    if (argc != 2)
        return tool_usage_err(argv[0], "%s needs exactly one DIR argument", argv[0]);
    if (argv[1][0] == '-' && argv[1][1] == '-')
        return tool_usage_err(argv[0], "%s: unknown option %s", argv[0], argv[1]);
    return fn(argv[1]);
}

int main(int argc, char **argv)
{
    /* A closed pipe is a write error (exit 1), not a death by signal. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    int ac = argc - 1;
    char **av = argv + 1;
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return usage(stdout);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mms %s (format %d)\n", MMS_VERSION_STRING, MMS_FORMAT_VERSION);
        return 0;
    }
    if (strcmp(cmd, "readers") == 0) {
        if (ac == 3 && strcmp(av[2], "--clear-stale") == 0)
            return cmd_readers(av[1], 1);
        if (ac != 2 || av[1][0] == '-')
            return tool_usage_err(cmd, "readers needs DIR and at most --clear-stale");
        return cmd_readers(av[1], 0);
    }
    if (strcmp(cmd, "create") == 0)
        return one_dir(ac, av, cmd_create);
    if (strcmp(cmd, "info") == 0)
        return one_dir(ac, av, cmd_info);
    if (strcmp(cmd, "verify") == 0)
        return one_dir(ac, av, cmd_verify);
    if (strcmp(cmd, "checkpoint") == 0)
        return one_dir(ac, av, cmd_checkpoint);
    if (strcmp(cmd, "tables") == 0)
        return cmd_tables(ac, av);
    if (strcmp(cmd, "schema") == 0)
        return cmd_schema(ac, av);
    if (strcmp(cmd, "dump") == 0)
        return cmd_dump(ac, av);
    if (strcmp(cmd, "import") == 0)
        return cmd_import(ac, av);
    fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
    return usage(stderr);
}

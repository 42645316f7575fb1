/*
 * mms_tables.c -- `mms tables`, `mms schema` and `mms dump`: reading
 * tables through the public API, never writing.
 *
 * Each command reads inside one read transaction, so it sees one committed
 * state whole even while a writer commits (which waits for it: a dump of a
 * large table delays commits by as long as it runs).
 *
 * Dump prints the values as import reads them back (see numfmt.c): the
 * CSV of a table imported from a canonical file is that file, byte for
 * byte.
 */
#define _POSIX_C_SOURCE 200809L
#include "csv.h"
#include "numfmt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Open DIR for reading and begin a read transaction. */
static int open_read(const char *dir, mms_store **s)
{
    int r = tool_open_inspect(dir, s);
    if (r)
        return tool_fail("cannot open", dir, r);
    r = mms_read_begin(*s);
    if (r) {
        tool_fail("cannot read", dir, r);
        mms_close(*s);
        return 1;
    }
    return 0;
}

static int close_read(const char *dir, mms_store *s, int rc)
{
    mms_read_end(s);
    int r = mms_close(s);
    if (r && !rc)
        return tool_fail("cannot close", dir, r);
    return rc;
}

/* ------------------------------------------------------------------------
 * mms tables DIR
 * ------------------------------------------------------------------------ */
static int run_tables(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *dir;
    int rc = tool_args(cmd, argc, argv, NULL, 0, &dir, 1);
    if (rc >= 0)
        return rc;
    mms_store *s;
    if ((rc = open_read(dir, &s)))
        return rc;
    size_t n;
    mms_table_info *ti;
    int r = tool_tables(s, &ti, &n);
    if (r)
        return close_read(dir, s, tool_fail("cannot list the tables of", dir, r));
    int w = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(ti[i].name) > w)
            w = (int)strlen(ti[i].name);
    printf("%-*s %12s %12s %11s %6s %10s\n", w, "name", "records", "slots", "record_size",
           "fields", "layout_gen");
    for (size_t i = 0; i < n; i++)
        printf("%-*s %12llu %12llu %11u %6u %10llu\n", w, ti[i].name,
               (unsigned long long)ti[i].count, (unsigned long long)ti[i].slots,
               ti[i].record_size, ti[i].nfields, (unsigned long long)ti[i].layout_gen);
    free(ti);
    return close_read(dir, s, tool_finish_output(NULL));
}

const struct tool_cmd tool_cmd_tables = {
    "tables", "DIR",
    "List the tables: live records, slots, record size, fields, layout generation.",
    "slots: live records + deleted slots (the array's length); layout_gen: how many\n"
    "times the table's layout was migrated.\n",
    run_tables};

/* ------------------------------------------------------------------------
 * mms schema DIR TABLE
 * ------------------------------------------------------------------------ */
static int find_table(mms_store *s, const char *dir, const char *name, mms_table **t,
                      const mms_schema **sc)
{
    int r = mms_table_find(s, name, t);
    if (r == MMS_ENOENT)
        return tool_err("%s: no table called '%s'", dir, name);
    if (r)
        return tool_fail("cannot open a table of", dir, r);
    *sc = mms_table_schema(*t);
    if (!*sc)
        return tool_err("%s: cannot read the layout of table '%s'", dir, name);
    return 0;
}

static int run_schema(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[2];
    int rc = tool_args(cmd, argc, argv, NULL, 0, pos, 2);
    if (rc >= 0)
        return rc;
    const char *dir = pos[0];
    mms_store *s;
    if ((rc = open_read(dir, &s)))
        return rc;
    mms_table *t;
    const mms_schema *sc;
    if ((rc = find_table(s, dir, pos[1], &t, &sc)))
        return close_read(dir, s, rc);
    int w = 4;
    for (uint32_t i = 0; i < sc->nfields; i++)
        if ((int)strlen(sc->fields[i].name) > w)
            w = (int)strlen(sc->fields[i].name);
    printf("%-*s %-5s %8s %8s %s\n", w, "name", "kind", "offset", "size", "target");
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        printf("%-*s %-5s %8u %8u %s\n", w, f->name, mms_kind_name(f->kind) ? mms_kind_name(f->kind) : "?", f->offset,
               f->size, f->kind == MMS_KIND_REF && f->target ? f->target : "-");
    }
    return close_read(dir, s, tool_finish_output(NULL));
}

const struct tool_cmd tool_cmd_schema = {
    "schema", "DIR TABLE",
    "List a table's fields: name, kind, offset, size, the target of a ref.",
    "Kinds: i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 bool chars (a char array) ref\n"
    "(a record of the target table) str blob (bytes in the heap).\n",
    run_schema};

/* ------------------------------------------------------------------------
 * mms dump DIR TABLE [--format csv|jsonl] [--limit N]
 * ------------------------------------------------------------------------ */
static int64_t rd_int(const char *p, uint32_t size)
{
    switch (size) {
    case 1: { int8_t v; memcpy(&v, p, 1); return v; }
    case 2: { int16_t v; memcpy(&v, p, 2); return v; }
    case 4: { int32_t v; memcpy(&v, p, 4); return v; }
    default: { int64_t v; memcpy(&v, p, 8); return v; }
    }
}

static uint64_t rd_uint(const char *p, uint32_t size)
{
    switch (size) {
    case 1: { uint8_t v; memcpy(&v, p, 1); return v; }
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

/* One field of a record as text: CSV, or else a JSON value. */
static void field_to_text(struct obuf *o, mms_store *s, const mms_field *f, const char *rec, bool csv)
{
    const char *p = rec + f->offset;
    char t[NUMFMT_MAX];
    size_t n;
    switch (f->kind) {
    case MMS_KIND_I8: case MMS_KIND_I16: case MMS_KIND_I32: case MMS_KIND_I64:
        n = fmt_i64(rd_int(p, f->size), t);
        obuf_write(o, t, n);
        return;
    case MMS_KIND_U8: case MMS_KIND_U16: case MMS_KIND_U32: case MMS_KIND_U64:
        n = fmt_u64(rd_uint(p, f->size), t);
        obuf_write(o, t, n);
        return;
    case MMS_KIND_F32: case MMS_KIND_F64: {
        double d;
        if (f->kind == MMS_KIND_F32) {
            float v;
            memcpy(&v, p, 4);
            n = fmt_f32(v, t);
            d = v;
        } else {
            memcpy(&d, p, 8);
            n = fmt_f64(d, t);
        }
        if (!csv && !isfinite(d))
            obuf_puts(o, "null");
        else
            obuf_write(o, t, n);
        return;
    }
    case MMS_KIND_BOOL:
        obuf_puts(o, *p ? "true" : "false");
        return;
    case MMS_KIND_CHARS: {
        const char *z = memchr(p, 0, f->size);
        n = z ? (size_t)(z - p) : f->size;
        if (csv)
            csv_put(o, p, n);
        else
            json_put_string(o, p, n);
        return;
    }
    case MMS_KIND_REF: {
        mms_ref ref;
        memcpy(&ref, p, 8);
        if (ref) {
            n = fmt_u64(MMS_REF_SLOT(ref), t);
            obuf_write(o, t, n);
        } else if (!csv) {
            obuf_puts(o, "null");
        }
        return;
    }
    case MMS_KIND_STR: case MMS_KIND_BLOB: {
        mms_ref ref;
        memcpy(&ref, p, 8);
        size_t len = 0;
        const char *b = ref ? mms_str_get(s, ref, &len) : NULL;
        if (!b) {
            if (!csv)
                obuf_puts(o, "null");
            return;
        }
        if (f->kind == MMS_KIND_BLOB) {
            if (!csv)
                obuf_putc(o, '"');
            hex_put(o, b, len);
            if (!csv)
                obuf_putc(o, '"');
        } else if (csv) {
            csv_put(o, b, len);
        } else {
            json_put_string(o, b, len);
        }
        return;
    }
    default:
        if (!csv)
            obuf_puts(o, "null");
        return;
    }
}

static int run_dump(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[2], *format = "csv", *limit_s = NULL;
    bool all = false;
    const struct tool_opt opts[] = {{"format", true, &format, NULL},
                                    {"limit", true, &limit_s, NULL},
                                    {"all", false, NULL, &all}};
    int rc = tool_args(cmd, argc, argv, opts, 3, pos, 2);
    if (rc >= 0)
        return rc;
    if (all) /* DIR OUT: the whole store (mms_dumpall.c) */
        return tool_dump_all(pos[0], pos[1]);
    bool csv = strcmp(format, "csv") == 0;
    if (!csv && strcmp(format, "jsonl") != 0)
        return tool_usage_err(cmd, "--format is csv or jsonl, not '%s'", format);
    uint64_t limit = UINT64_MAX;
    if (limit_s && !parse_u64(limit_s, strlen(limit_s), &limit))
        return tool_usage_err(cmd, "--limit needs a number of records, not '%s'", limit_s);
    const char *dir = pos[0];
    mms_store *s;
    if ((rc = open_read(dir, &s)))
        return rc;
    mms_table *t;
    const mms_schema *sc;
    if ((rc = find_table(s, dir, pos[1], &t, &sc)))
        return close_read(dir, s, rc);
    struct obuf o;
    if (obuf_init(&o, stdout, 1 << 20))
        return close_read(dir, s, tool_err("out of memory"));
    /* JSON keys, escaped once (at most 6 bytes per byte of a 47-byte name,
     * so keys never fills and never flushes to its NULL file). */
    struct obuf keys = {0};
    size_t *key_end = NULL;
    if (!csv) {
        key_end = calloc(sc->nfields, sizeof *key_end);
        if (!key_end || obuf_init(&keys, NULL, 300 * (size_t)sc->nfields + 16)) {
            free(key_end);
            obuf_free(&o);
            return close_read(dir, s, tool_err("out of memory"));
        }
        for (uint32_t i = 0; i < sc->nfields; i++) {
            obuf_putc(&keys, i ? ',' : '{');
            json_put_string(&keys, sc->fields[i].name, strlen(sc->fields[i].name));
            obuf_putc(&keys, ':');
            key_end[i] = keys.n;
        }
    } else {
        for (uint32_t i = 0; i < sc->nfields; i++) {
            if (i)
                obuf_putc(&o, ',');
            csv_put(&o, sc->fields[i].name, strlen(sc->fields[i].name));
        }
        obuf_putc(&o, '\n');
    }
    uint64_t slots = mms_table_slots(t), done = 0;
    for (uint64_t i = 0; i < slots && done < limit && !o.err; i++) {
        if (!mms_table_live(t, i))
            continue;
        const char *rec = mms_table_get(t, i);
        if (!rec)
            break;
        for (uint32_t k = 0; k < sc->nfields; k++) {
            if (csv) {
                if (k)
                    obuf_putc(&o, ',');
            } else {
                size_t from = k ? key_end[k - 1] : 0;
                obuf_write(&o, keys.buf + from, key_end[k] - from);
            }
            /* A missing value: an empty CSV cell, a JSON null. */
            if (mms_table_null(t, i, k) == 1) {
                if (!csv)
                    obuf_puts(&o, "null");
                continue;
            }
            field_to_text(&o, s, &sc->fields[k], rec, csv);
        }
        if (!csv)
            obuf_putc(&o, '}');
        obuf_putc(&o, '\n');
        done++;
    }
    rc = tool_finish_output(&o);
    obuf_free(&o);
    obuf_free(&keys);
    free(key_end);
    return close_read(dir, s, rc);
}

const struct tool_cmd tool_cmd_dump = {
    "dump", "DIR TABLE [--format csv|jsonl] [--limit N] | DIR --all OUT",
    "Print the live records of TABLE in index order, CSV by default.",
    "  --format csv|jsonl   CSV (RFC 4180) or one JSON object per line\n"
    "  --limit N            at most N records\n"
    "  --all                the whole store into OUT ('-': standard output):\n"
    "                       every table (schema, records at their indices, missing\n"
    "                       values, strings inline, refs as [table, index]) and\n"
    "                       the root, as JSON lines (doc/FORMAT.md §6); mms load\n"
    "                       makes an equal store of it, on any machine\n"
    "\n"
    "CSV: a header row, LF line endings, a value quoted only if it holds a comma,\n"
    "quote, CR or LF (quotes doubled). Integers in decimal; floats in the shortest\n"
    "form that reads back as the same value, in fixed notation for exponents\n"
    "-7 < e < 21 (0.1, 100, 1e21, 1.5e-7, -0, nan, inf, -inf); bool true/false;\n"
    "chars up to the first NUL; str as is; blob as hex; ref as the target record's\n"
    "index (empty for none).\n"
    "JSONL: strings escaped (control characters as \\n, \\t, \\u00XX..., invalid\n"
    "UTF-8 as \\ufffd); null for null refs, strings and blobs; NaN and infinities\n"
    "as null.\n"
    "\n"
    "Numbers are printed in that canonical form, not as the imported file wrote\n"
    "them: a column imported from 1.50, 1e3 or 007 dumps as 1.5, 1000 and 7\n"
    "(import --keep-text keeps such a column as text). A file written in the\n"
    "canonical form (header row, minimal quoting, LF line endings) imports and\n"
    "dumps back byte for byte.\n"
    "\n"
    "A dump runs in one read transaction: it sees one committed state, and commits\n"
    "of other processes wait until it ends (do not leave it stopped in a pager).\n",
    run_dump};

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
/* false: a str or blob field holds a ref that is no string (damage that
 * mms verify reports): nothing printed, the caller says so. */
static bool field_to_text(struct obuf *o, mms_store *s, const mms_field *f, const char *rec, bool csv)
{
    const char *p = rec + f->offset;
    char t[NUMFMT_MAX];
    size_t n;
    switch (f->kind) {
    case MMS_KIND_I8: case MMS_KIND_I16: case MMS_KIND_I32: case MMS_KIND_I64:
        n = fmt_i64(rd_int(p, f->size), t);
        obuf_write(o, t, n);
        return true;
    case MMS_KIND_U8: case MMS_KIND_U16: case MMS_KIND_U32: case MMS_KIND_U64:
        n = fmt_u64(rd_uint(p, f->size), t);
        obuf_write(o, t, n);
        return true;
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
        return true;
    }
    case MMS_KIND_BOOL:
        obuf_puts(o, *p ? "true" : "false");
        return true;
    case MMS_KIND_CHARS: {
        const char *z = memchr(p, 0, f->size);
        n = z ? (size_t)(z - p) : f->size;
        if (csv)
            csv_put(o, p, n);
        else
            json_put_string(o, p, n);
        return true;
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
        return true;
    }
    case MMS_KIND_STR: case MMS_KIND_BLOB: {
        mms_ref ref;
        memcpy(&ref, p, 8);
        size_t len = 0;
        const char *b = ref ? mms_str_get(s, ref, &len) : NULL;
        if (ref && !b)
            return false;
        if (!b) {
            if (!csv)
                obuf_puts(o, "null");
            return true;
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
        return true;
    }
    default:
        if (!csv)
            obuf_puts(o, "null");
        return true;
    }
}

/* ------------------------------------------------------------------------
 * Conditions (--where, mms get): FIELD op VALUE, answered through an index
 * of the field when there is one, by a scan otherwise -- the same records,
 * printed in record order either way.
 * ------------------------------------------------------------------------ */
enum { OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE };
struct cond {
    uint32_t field;
    int op;
    size_t name_len;        /* FIELD's length in the condition's text (cond_shape) */
    const char *value;      /* VALUE's text in it */
    unsigned char key[256]; /* the value in the field's C type */
};
#define MAX_WHERE 8

/* "'300' is not an i8 value": the article as said (an i.., an f.., a u..). */
static bool bad_value(const char *ctx, const char *text, const mms_field *f)
{
    const char *kind = mms_kind_name(f->kind);
    tool_err("%s'%s' is not %s %s value", ctx, text, kind[0] == 'u' ? "a" : "an", kind);
    return false;
}

/* text as a value of field f into key (struct cond's, 256 bytes); false
 * with a message if it is not one (after ctx: "", or the --where
 * condition it came from). */
static bool parse_key(mms_store *s, const mms_field *f, const char *text, void *key,
                      const char *ctx)
{
    size_t n = strlen(text);
    int64_t i;
    uint64_t u;
    double d;
    float x;
    if (f->size > sizeof ((struct cond *)0)->key)
        return tool_err("%sfield %s is too large for a condition (%u bytes, at most %zu)", ctx,
                        f->name, f->size, sizeof ((struct cond *)0)->key), false;
    memset(key, 0, f->size);
    switch (mms_kind_class(f->kind)) {
    case 'i':
        if (!parse_i64(text, n, &i) ||
            (f->size < 8 && (i < -(INT64_C(1) << (8 * f->size - 1)) ||
                             i >= (INT64_C(1) << (8 * f->size - 1)))))
            return bad_value(ctx, text, f);
        memcpy(key, &i, f->size); /* little-endian: the low bytes */
        return true;
    case 'u':
        if (!parse_u64(text, n, &u) || (f->size < 8 && u >> (8 * f->size)))
            return bad_value(ctx, text, f);
        memcpy(key, &u, f->size);
        return true;
    case 'f':
        if (f->kind == MMS_KIND_F32 ? !parse_f32(text, n, &x) : !parse_f64(text, n, &d))
            return bad_value(ctx, text, f);
        if (f->kind == MMS_KIND_F32)
            memcpy(key, &x, 4);
        else
            memcpy(key, &d, 8);
        return true;
    case 'b':
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
            *(unsigned char *)key = 1;
        else if (strcmp(text, "false") != 0 && strcmp(text, "0") != 0)
            return tool_err("%s'%s' is not a bool value (true, false, 1, 0)", ctx, text), false;
        return true;
    case 'c':
        if (n > f->size)
            return tool_err("%s'%s' is longer than field %s (chars[%u])", ctx, text, f->name,
                            f->size), false;
        memcpy(key, text, n);
        return true;
    case 'r': {
        if (n == 0) /* no record, as dump prints it */
            return true;
        mms_table *tt;
        if (f->target && !f->target[0]) /* mms_table_schema's name of a dropped target */
            return tool_err("%s'%s': field %s refers to no table (its target was dropped), "
                            "so only '' (no record) can match", ctx, text, f->name), false;
        if (!parse_u64(text, n, &u) || !f->target || mms_table_find(s, f->target, &tt))
            return tool_err("%s'%s' is not a record index of table %s", ctx, text,
                            f->target ? f->target : "?"), false;
        mms_ref r = mms_table_ref(tt, u);
        memcpy(key, &r, 8);
        return true;
    }
    default:
        return tool_err("%sfield %s is %s: conditions on strings and blobs are not supported "
                        "yet", ctx, f->name, mms_kind_name(f->kind)), false;
    }
}

/* The shape of w, FIELD op VALUE (op: = < <= > >=), into c: FIELD's
 * length, op and VALUE; false if w has no such shape. It needs no store:
 * a malformed --where is a usage error. */
static bool cond_shape(const char *w, struct cond *c)
{
    size_t at = strcspn(w, "<>=");
    if (!w[at] || at == 0)
        return false;
    c->name_len = at;
    c->value = w + at + 1;
    c->op = w[at] == '=' ? OP_EQ : w[at] == '<' ? OP_LT : OP_GT;
    if (w[at] != '=' && *c->value == '=') {
        c->op = c->op == OP_LT ? OP_LE : OP_GE;
        c->value++;
    }
    return true;
}

/* w, whose shape cond_shape put into c, against the table's layout sc: its
 * field must be one of sc's, its value one of that field's (else a
 * message, and false: exit 1, a condition the table cannot answer). */
static bool parse_cond(mms_store *s, const mms_schema *sc, const char *w, struct cond *c)
{
    size_t at = c->name_len;
    for (c->field = 0; c->field < sc->nfields; c->field++)
        if (strlen(sc->fields[c->field].name) == at &&
            strncmp(sc->fields[c->field].name, w, at) == 0)
            break;
    if (c->field == sc->nfields)
        return tool_err("--where '%s': no field called '%.*s'", w, (int)at, w), false;
    const mms_field *f = &sc->fields[c->field];
    char ctx[300];
    snprintf(ctx, sizeof ctx, "--where '%.250s': ", w);
    return parse_key(s, f, c->value, c->key, ctx);
}

/* a <=> b, two values of field f, in the order indexes use (mmstore.h). */
static int cmp_field(const mms_field *f, const void *a, const void *b)
{
    switch (mms_kind_class(f->kind)) {
    case 'i': {
        int64_t x = rd_int(a, f->size), y = rd_int(b, f->size);
        return x < y ? -1 : x > y;
    }
    case 'u': case 'r': {
        uint64_t x = rd_uint(a, f->size), y = rd_uint(b, f->size);
        return x < y ? -1 : x > y;
    }
    case 'f': {
        double x, y;
        if (f->size == 4) {
            float fx, fy;
            memcpy(&fx, a, 4);
            memcpy(&fy, b, 4);
            x = fx, y = fy;
        } else {
            memcpy(&x, a, 8);
            memcpy(&y, b, 8);
        }
        if (x != x || y != y)
            return (x != x) - (y != y); /* NaN: one value, above all */
        return x < y ? -1 : x > y;
    }
    case 'b':
        return (*(const unsigned char *)a != 0) - (*(const unsigned char *)b != 0);
    default:
        return memcmp(a, b, f->size);
    }
}

static bool cond_holds(const mms_schema *sc, const struct cond *c, const char *rec)
{
    const mms_field *f = &sc->fields[c->field];
    int r = cmp_field(f, rec + f->offset, c->key);
    switch (c->op) {
    case OP_EQ: return r == 0;
    case OP_LT: return r < 0;
    case OP_LE: return r <= 0;
    case OP_GT: return r > 0;
    default: return r >= 0;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The records that may match, through an index of a condition's field:
 * *rows (malloc'd, sorted) and *n, *used true; or *used false: scan. */
static int candidates(mms_table *t, const mms_schema *sc, const struct cond *cs, int nc,
                      uint64_t **rows, size_t *n, bool *used)
{
    *used = false;
    *rows = NULL;
    *n = 0;
    for (int i = 0; i < nc && !*used; i++) {
        mms_index *ix;
        if (mms_index_open(t, sc->fields[cs[i].field].name, &ix))
            continue;
        size_t cap = 0, got = 0;
        uint64_t *v = NULL;
        int r;
        if (cs[i].op == OP_EQ) {
            r = mms_index_find_all(ix, cs[i].key, NULL, 0, &got);
            if (r)
                return r;
            v = malloc((got ? got : 1) * sizeof *v);
            if (!v)
                return -ENOMEM;
            if ((r = mms_index_find_all(ix, cs[i].key, v, got, &got))) {
                free(v);
                return r;
            }
        } else {
            mms_cursor *c;
            if (mms_cursor_open(ix, &c))
                continue; /* a hash index: no ranges */
            /* From the condition's bound (or the start) while it holds. */
            uint64_t rec;
            unsigned char key[256];
            bool up = cs[i].op == OP_GT || cs[i].op == OP_GE;
            r = up ? mms_cursor_seek(c, cs[i].op == OP_GT ? MMS_SEEK_GT : MMS_SEEK_GE, cs[i].key,
                                     &rec, key)
                   : mms_cursor_seek(c, MMS_SEEK_FIRST, NULL, &rec, key);
            while (r == 0) {
                const mms_field *f = &sc->fields[cs[i].field];
                int cmp = cmp_field(f, key, cs[i].key);
                if (!up && (cs[i].op == OP_LT ? cmp >= 0 : cmp > 0))
                    break;
                uint64_t *nv = tool_room(v, got, &cap, sizeof *v, 1024);
                if (!nv) {
                    free(v);
                    mms_cursor_close(c);
                    return -ENOMEM;
                }
                v = nv;
                v[got++] = rec;
                r = mms_cursor_next(c, &rec, key);
            }
            mms_cursor_close(c);
            if (r && r != MMS_ENOTFOUND) {
                free(v);
                return r;
            }
        }
        qsort(v, got, sizeof *v, cmp_u64);
        *rows = v;
        *n = got;
        *used = true;
    }
    return 0;
}

/* Print the header and the live records of t (rows: these, else all) that
 * meet every condition, up to limit. *printed gets how many. 1 (said on
 * stderr) at a string field that holds no string, 0 otherwise. */
static int print_records(struct obuf *o, mms_store *s, mms_table *t, const mms_schema *sc,
                         bool csv, const struct cond *cs, int nc, const uint64_t *rows,
                         size_t nrows, bool use_rows, uint64_t limit, uint64_t *printed);

static int run_dump(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[2], *format = "csv", *limit_s = NULL, *where[MAX_WHERE];
    int nwhere = 0;
    bool all = false;
    const struct tool_opt opts[] = {{"format", true, &format, NULL, NULL, 0},
                                    {"limit", true, &limit_s, NULL, NULL, 0},
                                    {"where", true, where, NULL, &nwhere, MAX_WHERE},
                                    {"all", false, NULL, &all, NULL, 0}};
    int rc = tool_args(cmd, argc, argv, opts, 4, pos, 2);
    if (rc >= 0)
        return rc;
    if (all && nwhere)
        return tool_usage_err(cmd, "--where filters one table's records, not --all");
    if (all && !pos[1][0]) /* it dumped everything, then failed to rename */
        return tool_usage_err(cmd, "OUT is a file name or '-', not empty");
    if (all) /* DIR OUT: the whole store (mms_dumpall.c) */
        return tool_dump_all(pos[0], pos[1]);
    bool csv = strcmp(format, "csv") == 0;
    if (!csv && strcmp(format, "jsonl") != 0)
        return tool_usage_err(cmd, "--format is csv or jsonl, not '%s'", format);
    uint64_t limit = UINT64_MAX;
    if (limit_s && !parse_u64(limit_s, strlen(limit_s), &limit))
        return tool_usage_err(cmd, "--limit needs a number of records, not '%s'", limit_s);
    struct cond cs[MAX_WHERE];
    for (int i = 0; i < nwhere; i++)
        if (!cond_shape(where[i], &cs[i]))
            return tool_usage_err(cmd, "--where '%s': expected FIELD=VALUE, FIELD<VALUE, "
                                  "FIELD<=VALUE, FIELD>VALUE or FIELD>=VALUE", where[i]);
    const char *dir = pos[0];
    mms_store *s;
    if ((rc = open_read(dir, &s)))
        return rc;
    mms_table *t;
    const mms_schema *sc;
    if ((rc = find_table(s, dir, pos[1], &t, &sc)))
        return close_read(dir, s, rc);
    for (int i = 0; i < nwhere; i++)
        if (!parse_cond(s, sc, where[i], &cs[i]))
            return close_read(dir, s, 1);
    uint64_t *rows = NULL;
    size_t nrows = 0;
    bool use_rows = false;
    int r = nwhere ? candidates(t, sc, cs, nwhere, &rows, &nrows, &use_rows) : 0;
    if (r)
        return close_read(dir, s, tool_fail("cannot look up in", dir, r));
    struct obuf o;
    if (obuf_init(&o, stdout, 1 << 20)) {
        free(rows);
        return close_read(dir, s, tool_err("out of memory"));
    }
    uint64_t printed;
    int bad = print_records(&o, s, t, sc, csv, cs, nwhere, rows, nrows, use_rows, limit, &printed);
    free(rows);
    rc = tool_finish_output(&o);
    rc = bad ? bad : rc;
    obuf_free(&o);
    return close_read(dir, s, rc);
}

static int print_records(struct obuf *o, mms_store *s, mms_table *t, const mms_schema *sc,
                         bool csv, const struct cond *cs, int nc, const uint64_t *rows,
                         size_t nrows, bool use_rows, uint64_t limit, uint64_t *printed)
{
    /* JSON keys, escaped once (at most 6 bytes per byte of a 47-byte name,
     * so keys never fills and never flushes to its NULL file). */
    struct obuf keys = {0};
    size_t *key_end = NULL;
    *printed = 0;
    if (!csv) {
        key_end = calloc(sc->nfields, sizeof *key_end);
        if (!key_end || obuf_init(&keys, NULL, 300 * (size_t)sc->nfields + 16)) {
            free(key_end);
            o->err = ENOMEM;
            return 0;
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
                obuf_putc(o, ',');
            csv_put(o, sc->fields[i].name, strlen(sc->fields[i].name));
        }
        obuf_putc(o, '\n');
    }
    uint64_t slots = use_rows ? nrows : mms_table_slots(t), done = 0;
    int rc = 0;
    for (uint64_t j = 0; j < slots && done < limit && !o->err && !rc; j++) {
        uint64_t i = use_rows ? rows[j] : j;
        if (!mms_table_live(t, i))
            continue;
        const char *rec = mms_table_get(t, i);
        if (!rec)
            break;
        bool ok = true;
        for (int c = 0; c < nc && ok; c++)
            ok = cond_holds(sc, &cs[c], rec) && mms_table_null(t, i, cs[c].field) != 1;
        if (!ok)
            continue;
        for (uint32_t k = 0; k < sc->nfields; k++) {
            if (csv) {
                if (k)
                    obuf_putc(o, ',');
            } else {
                size_t from = k ? key_end[k - 1] : 0;
                obuf_write(o, keys.buf + from, key_end[k] - from);
            }
            /* A missing value: an empty CSV cell, a JSON null. */
            if (mms_table_null(t, i, k) == 1) {
                if (!csv)
                    obuf_puts(o, "null");
                continue;
            }
            if (!field_to_text(o, s, &sc->fields[k], rec, csv)) {
                rc = tool_err("table %s record %llu: field %s holds no string: run mms verify",
                              mms_table_name(t), (unsigned long long)i, sc->fields[k].name);
                break;
            }
        }
        if (rc)
            break;
        if (!csv)
            obuf_putc(o, '}');
        obuf_putc(o, '\n');
        done++;
    }
    *printed = done;
    obuf_free(&keys);
    free(key_end);
    return rc;
}

const struct tool_cmd tool_cmd_dump = {
    "dump", "DIR TABLE [--format csv|jsonl] [--limit N] [--where COND]... | DIR --all OUT",
    "Print the live records of TABLE in index order, CSV by default.",
    "  --format csv|jsonl   CSV (RFC 4180) or one JSON object per line\n"
    "  --limit N            at most N records\n"
    "  --where COND         only records where COND holds: FIELD=VALUE, FIELD<VALUE,\n"
    "                       FIELD<=VALUE, FIELD>VALUE or FIELD>=VALUE (quote it for\n"
    "                       the shell); up to 8, all must hold. Through an index of\n"
    "                       the field when there is one (ranges: an ordered one), by\n"
    "                       a scan otherwise: the same records, in record order.\n"
    "                       Values as dump prints them (a ref: the target record's\n"
    "                       index, empty for none); floats order as in indexes\n"
    "                       (NaN above all).\n"
    "                       A missing value meets no condition.\n"
    "  --all                the whole store into OUT ('-': standard output):\n"
    "                       every table (schema, region, indexes, records at their\n"
    "                       indices, missing values, strings inline, refs as\n"
    "                       [table, index]), the application's heap objects at\n"
    "                       their offsets, and the root, as JSON lines\n"
    "                       (doc/FORMAT.md §6); mms load makes an equal store of it.\n"
    "                       A file is written beside OUT and renamed over it when\n"
    "                       whole: a failed dump leaves an earlier OUT as it was\n"
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
    "A dump runs in one read transaction: it sees one committed state. Writers go\n"
    "on committing meanwhile, but what they commit reaches the files, and other\n"
    "readers, only when it ends, and a writer past its backlog bound waits for it\n"
    "(do not leave it stopped in a pager).\n",
    run_dump};

/* ------------------------------------------------------------------------
 * mms get DIR TABLE FIELD VALUE
 * ------------------------------------------------------------------------ */
static int run_get(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[4];
    int rc = tool_args(cmd, argc, argv, NULL, 0, pos, 4);
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
    struct cond c = {.op = OP_EQ};
    for (c.field = 0; c.field < sc->nfields; c.field++)
        if (strcmp(sc->fields[c.field].name, pos[2]) == 0)
            break;
    if (c.field == sc->nfields)
        return close_read(dir, s, tool_err("%s: table %s has no field '%s'", dir, pos[1], pos[2]));
    char ctx[300];
    snprintf(ctx, sizeof ctx, "%s.%s: ", pos[1], pos[2]);
    if (!parse_key(s, &sc->fields[c.field], pos[3], c.key, ctx))
        return close_read(dir, s, 1);
    uint64_t *rows = NULL;
    size_t nrows = 0;
    bool use_rows = false;
    int r = candidates(t, sc, &c, 1, &rows, &nrows, &use_rows);
    if (r)
        return close_read(dir, s, tool_fail("cannot look up in", dir, r));
    /* Into memory first: nothing at all on stdout when nothing matches. */
    char *mem = NULL;
    size_t memlen = 0;
    FILE *mf = open_memstream(&mem, &memlen);
    struct obuf o;
    if (!mf || obuf_init(&o, mf, 1 << 16)) {
        if (mf)
            fclose(mf);
        free(mem);
        free(rows);
        return close_read(dir, s, tool_err("out of memory"));
    }
    uint64_t printed;
    int bad = print_records(&o, s, t, sc, true, &c, 1, rows, nrows, use_rows, UINT64_MAX,
                            &printed);
    free(rows);
    obuf_flush(&o);
    int err = o.err;
    obuf_free(&o);
    fclose(mf);
    if (!printed || err || bad) {
        free(mem);
        return close_read(dir, s, err && !bad ? tool_err("out of memory") : 1);
    }
    fwrite(mem, 1, memlen, stdout);
    free(mem);
    return close_read(dir, s, tool_finish_output(NULL));
}

const struct tool_cmd tool_cmd_get = {
    "get", "DIR TABLE FIELD VALUE",
    "Print the records of TABLE whose FIELD is VALUE (CSV); exit 1 if there is none.",
    "Through an index of FIELD when it has one (mms index), by a scan otherwise.\n"
    "Output as mms dump prints it: a header line, then the matching records in\n"
    "record order. When no record matches, nothing is printed and the exit code\n"
    "is 1. VALUE as dump prints values (a ref: the target record's index, or\n"
    "'' for records that refer to none). A record whose FIELD is missing matches\n"
    "no VALUE (not 0 either), with or without an index. A chars VALUE is its\n"
    "bytes NUL-padded to the field's size, compared as an index compares keys:\n"
    "a field a program filled with bytes after a NUL prints only up to the NUL\n"
    "and matches no VALUE.\n",
    run_get};

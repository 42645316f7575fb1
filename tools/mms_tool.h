/*
 * mms_tool.h -- what the files of the mms tool share: the commands, error
 * reporting, the canonical text of numbers, the CSV reader, the CSV and
 * JSON writers.
 *
 * The tool uses only the public API (include/mmstore.h). Nothing here is
 * part of the library.
 */
#ifndef MMS_TOOL_H
#define MMS_TOOL_H

#include <mmstore.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------------
 * mms.c: errors, opening, the commands
 * ------------------------------------------------------------------------ */
extern const char *const tool_prog;

/* "mms: WHAT DIR: message: detail" on stderr; returns 1 (the exit code). */
int tool_fail(const char *what, const char *dir, int err);

/* "mms: message" on stderr; returns 1. */
int tool_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "mms: message" on stderr, then the usage line of cmd; returns 2. */
int tool_usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Open for inspection: read-only, or read-write once if the store needs
 * recovery (which a read-only handle cannot do). */
int tool_open_inspect(const char *dir, mms_store **s);

/* Command-line options: "--name VALUE", "--name=VALUE" or a flag. */
struct tool_opt {
    const char *name;     /* "--limit" */
    bool takes_value;
    const char **value;   /* takes_value: receives the value */
    bool *flag;           /* !takes_value: set to true */
};

/* Split argv[1..argc) (argv[0] is the command) into exactly npos
 * positional arguments and the options (anywhere; "--" ends them).
 * Returns 0, or 2 after printing a usage error. */
int tool_parse_args(int argc, char **argv, const char **pos, int npos,
                    const struct tool_opt *opts, int nopts);

/* Name of a kind as --schema spells it ("i32", "chars", ...), "?" if none. */
const char *tool_kind_name(unsigned kind);

/* The commands, in mms_tables.c and mms_import.c. argv[0] is the command
 * name; they return the exit code. */
int cmd_tables(int argc, char **argv);
int cmd_schema(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_import(int argc, char **argv);

/* ------------------------------------------------------------------------
 * numfmt.c: the canonical text of numbers (what dump prints) and parsing.
 *
 * Floats print as the shortest decimal that reads back as the same value,
 * laid out as ECMAScript's Number.prototype.toString does (fixed notation
 * for decimal exponents -7 < e < 21, otherwise d.ddde-X), except that a
 * positive exponent has no '+' ("1e300") and negative zero keeps its sign
 * ("-0"). NaN is "nan", infinities "inf" and "-inf".
 * ------------------------------------------------------------------------ */
#define NUMFMT_MAX 48 /* enough for every text below, with the NUL */

size_t fmt_i64(int64_t v, char *buf);
size_t fmt_u64(uint64_t v, char *buf);
size_t fmt_f64(double v, char *buf);
size_t fmt_f32(float v, char *buf);

/* True if p[0..n) is exactly what fmt_i64 / fmt_f64 prints for some value
 * (stored in *v). */
bool canon_i64(const char *p, size_t n, int64_t *v);
bool canon_f64(const char *p, size_t n, double *v);

/* Lenient parsing for declared kinds: [+-]?digits (leading zeros allowed);
 * a float is anything strtod/strtof reads completely, without surrounding
 * space; an overflow to infinity is an error. */
bool parse_i64(const char *p, size_t n, int64_t *v);
bool parse_u64(const char *p, size_t n, uint64_t *v);
bool parse_f64(const char *p, size_t n, double *v);
bool parse_f32(const char *p, size_t n, float *v);

/* ------------------------------------------------------------------------
 * csv.c: RFC 4180 reader, UTF-8 check, output buffer, CSV/JSON writers
 * ------------------------------------------------------------------------ */
struct csv_field {
    const char *p; /* the value's bytes (unquoted and unescaped) */
    size_t n;
    size_t off;    /* internal: offset in the scratch buffer when escaped */
    bool esc;      /* internal */
};

/* Reads rows out of one buffer (a mapped file or a file read into memory).
 * Line endings are LF or CR LF; quoted fields may hold commas, quotes
 * (doubled) and line breaks. */
struct csv_reader {
    const char *buf;
    size_t len;
    size_t pos;           /* next byte to read */
    uint64_t line;        /* line of buf[pos], from 1 */
    size_t max_fields;    /* fields kept per row (0: all); more are counted */
    /* The last row read: */
    struct csv_field *f;  /* its first min(nf, max_fields) fields */
    size_t nf, fcap;      /* nf: how many fields it has */
    uint64_t row_line;    /* line where it starts */
    size_t row_start, row_end; /* its bytes in buf, line ending included */
    bool blank;           /* it was an empty line */
    const char *err;      /* NULL, or why it is malformed (then f is unusable) */
    char *scratch;        /* unescaped quoted fields */
    size_t slen, scap;
};

void csv_reader_init(struct csv_reader *r, const char *buf, size_t len);
void csv_reader_free(struct csv_reader *r);

/* Read the next row: 1 (a row, possibly malformed: see r->err), 0 at the
 * end of the input, -ENOMEM. */
int csv_next(struct csv_reader *r);

/* True if p[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF). */
bool utf8_valid(const char *p, size_t n);

/* Buffered output to a FILE with sticky error. */
struct obuf {
    FILE *f;
    char *buf;
    size_t n, cap;
    int err;     /* errno of the first failed write, 0 if none */
};

int obuf_init(struct obuf *o, FILE *f, size_t cap);
void obuf_flush(struct obuf *o);
void obuf_free(struct obuf *o);
void obuf_write(struct obuf *o, const void *p, size_t n);

static inline void obuf_putc(struct obuf *o, char c)
{
    if (o->n == o->cap)
        obuf_flush(o);
    o->buf[o->n++] = c;
}

static inline void obuf_puts(struct obuf *o, const char *s)
{
    while (*s)
        obuf_putc(o, *s++);
}

/* A CSV value, quoted only if it holds a comma, quote, CR or LF. */
void csv_put(struct obuf *o, const char *p, size_t n);

/* A JSON string with its quotes: ", \ and control characters escaped,
 * valid UTF-8 passed through, each byte of invalid UTF-8 as \ufffd. */
void json_put_string(struct obuf *o, const char *p, size_t n);

/* Lowercase hex of n bytes. */
void hex_put(struct obuf *o, const void *p, size_t n);

#endif

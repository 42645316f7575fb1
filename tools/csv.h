/*
 * csv.h -- RFC 4180 reading (csv.c's head comment has the rules), UTF-8
 * checking, and the CSV, JSON and hex writers of `mms dump`, over the
 * tool library's output buffer.
 */
#ifndef MMS_CSV_H
#define MMS_CSV_H

#include "tool.h"

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

/* A CSV value, quoted only if it holds a comma, quote, CR or LF. */
void csv_put(struct obuf *o, const char *p, size_t n);

/* A JSON string with its quotes: ", \ and control characters escaped,
 * valid UTF-8 passed through, each byte of invalid UTF-8 as \ufffd. */
void json_put_string(struct obuf *o, const char *p, size_t n);

/* Lowercase hex of n bytes. */
void hex_put(struct obuf *o, const void *p, size_t n);

#endif

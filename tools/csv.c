/*
 * csv.c -- RFC 4180 reading and writing, UTF-8 checking, JSON strings.
 * It calls only the tool library's output buffer (tool.h).
 *
 * The reader works on one buffer holding the whole input (a mapped file),
 * so an unquoted field, or a quoted one without doubled quotes, is a slice
 * of that buffer and costs no copy. It never reads past buf + len.
 *
 * Reading rules (RFC 4180, strict about what it says and lenient only in
 * the line ending):
 *  1. A row ends at LF, CR LF or the end of the input. A CR anywhere else
 *     outside quotes makes the row malformed ("bare CR").
 *  2. A field that starts with '"' is quoted: it ends at a '"' not followed
 *     by another '"'; "" inside stands for one quote; commas, CR and LF
 *     inside are data. After the closing quote comes ',', the end of the
 *     row, or the row is malformed.
 *  3. A '"' inside an unquoted field makes the row malformed.
 *  4. A quote still open at the end of the input: the row is malformed
 *     ("unterminated quoted field") and is the last one.
 *  5. A malformed row ends at the next LF after the point where the
 *     problem was found; reading goes on from there.
 * Lines are counted by LF, so a row's line is that of its first byte even
 * when quoted fields span several lines.
 */
#define _POSIX_C_SOURCE 200809L
#include "csv.h"
#include "tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void csv_reader_init(struct csv_reader *r, const char *buf, size_t len)
{
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->len = len;
    r->line = 1;
}

void csv_reader_free(struct csv_reader *r)
{
    free(r->f);
    free(r->scratch);
    r->f = NULL;
    r->scratch = NULL;
}

static int add_field(struct csv_reader *r, const char *p, size_t n, bool esc, size_t off)
{
    if (r->max_fields && r->nf >= r->max_fields) {
        r->nf++; /* counted, not kept: a row of a million commas costs no memory */
        return 0;
    }
    struct csv_field *f = tool_room(r->f, r->nf, &r->fcap, sizeof *f, 16);
    if (!f)
        return -ENOMEM;
    r->f = f;
    r->f[r->nf++] = (struct csv_field){p, n, off, esc};
    return 0;
}

static int scratch_add(struct csv_reader *r, const char *p, size_t n)
{
    if (r->scap - r->slen < n) {
        size_t cap = r->scap ? r->scap : 256;
        while (cap - r->slen < n) {
            if (cap > SIZE_MAX / 2)
                return -ENOMEM;
            cap *= 2;
        }
        char *s = realloc(r->scratch, cap);
        if (!s)
            return -ENOMEM;
        r->scratch = s;
        r->scap = cap;
    }
    memcpy(r->scratch + r->slen, p, n);
    r->slen += n;
    return 0;
}

static uint64_t count_lf(const char *p, size_t n)
{
    uint64_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        k++;
    return k;
}

/* Rule 5: the row is malformed; it ends after the next LF. */
static int malformed(struct csv_reader *r, const char *why)
{
    r->err = why;
    const char *lf = memchr(r->buf + r->pos, '\n', r->len - r->pos);
    if (lf) {
        r->pos = (size_t)(lf - r->buf) + 1;
        r->line++;
    } else {
        r->pos = r->len;
    }
    r->row_end = r->pos;
    return 1;
}

/* Bytes that end an unquoted field or need a closer look. */
static const unsigned char stop_byte[256] = {[','] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 1};

int csv_next(struct csv_reader *r)
{
    const char *b = r->buf;
    size_t len = r->len, pos = r->pos;
    if (pos >= len)
        return 0;
    r->nf = 0;
    r->slen = 0;
    r->err = NULL;
    r->row_line = r->line;
    r->row_start = pos;
    r->blank = b[pos] == '\n' || (b[pos] == '\r' && pos + 1 < len && b[pos + 1] == '\n');
    int rc;
    for (;;) {
        if (pos < len && b[pos] == '"') {
            /* Rule 2. */
            size_t seg = ++pos;
            bool esc = false;
            size_t off = r->slen;
            for (;;) {
                const char *q = memchr(b + pos, '"', len - pos);
                if (!q) {
                    /* Rule 4. */
                    r->line += count_lf(b + pos, len - pos);
                    r->pos = r->row_end = len;
                    r->err = "unterminated quoted field";
                    return 1;
                }
                size_t qi = (size_t)(q - b);
                r->line += count_lf(b + pos, qi - pos);
                if (qi + 1 < len && b[qi + 1] == '"') {
                    if ((rc = scratch_add(r, b + seg, qi + 1 - seg)))
                        return rc;
                    esc = true;
                    pos = seg = qi + 2;
                    continue;
                }
                if (esc) {
                    if ((rc = scratch_add(r, b + seg, qi - seg)))
                        return rc;
                    rc = add_field(r, NULL, r->slen - off, true, off);
                } else {
                    rc = add_field(r, b + seg, qi - seg, false, 0);
                }
                if (rc)
                    return rc;
                pos = qi + 1;
                break;
            }
            if (pos < len && b[pos] != ',' && b[pos] != '\n' &&
                !(b[pos] == '\r' && pos + 1 < len && b[pos + 1] == '\n')) {
                r->pos = pos;
                return malformed(r, "text after a closing quote");
            }
        } else {
            size_t start = pos;
            while (pos < len && !stop_byte[(unsigned char)b[pos]])
                pos++;
            if (pos < len && b[pos] == '"') {
                r->pos = pos;
                return malformed(r, "quote inside an unquoted field");
            }
            if (pos < len && b[pos] == '\r' && !(pos + 1 < len && b[pos + 1] == '\n')) {
                r->pos = pos;
                return malformed(r, "CR not followed by LF");
            }
            if ((rc = add_field(r, b + start, pos - start, false, 0)))
                return rc;
        }
        /* After a field: ',', CR LF, LF or the end. */
        if (pos >= len)
            break;
        if (b[pos] == ',') {
            pos++;
            continue;
        }
        pos += b[pos] == '\r' ? 2 : 1;
        r->line++;
        break;
    }
    r->pos = r->row_end = pos;
    size_t kept = r->max_fields && r->nf > r->max_fields ? r->max_fields : r->nf;
    for (size_t i = 0; i < kept; i++)
        if (r->f[i].esc)
            r->f[i].p = r->scratch + r->f[i].off;
    return 1;
}

/* ------------------------------------------------------------------------
 * UTF-8 (RFC 3629)
 * ------------------------------------------------------------------------ */
/* Length of the valid sequence at p[0..n), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t k;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else
        return 0;
    if (n < k || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < k; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return k;
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */
void csv_put(struct obuf *o, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !stop_byte[(unsigned char)p[i]])
        i++;
    if (i == n) {
        obuf_write(o, p, n);
        return;
    }
    obuf_putc(o, '"');
    for (size_t s = 0;;) {
        const char *q = memchr(p + s, '"', n - s);
        size_t e = q ? (size_t)(q - p) + 1 : n;
        obuf_write(o, p + s, e - s);
        if (!q)
            break;
        obuf_putc(o, '"');
        s = e;
    }
    obuf_putc(o, '"');
}

void json_put_string(struct obuf *o, const char *s, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    obuf_putc(o, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        obuf_write(o, p + i, run - i);
        i = run;
        if (i >= n)
            break;
        unsigned c = p[i];
        if (c >= 0x80) {
            size_t k = utf8_seq(p + i, n - i);
            if (k) {
                obuf_write(o, p + i, k);
                i += k;
            } else {
                obuf_puts(o, "\\ufffd");
                i++;
            }
            continue;
        }
        obuf_putc(o, '\\');
        switch (c) {
        case '"': obuf_putc(o, '"'); break;
        case '\\': obuf_putc(o, '\\'); break;
        case '\n': obuf_putc(o, 'n'); break;
        case '\r': obuf_putc(o, 'r'); break;
        case '\t': obuf_putc(o, 't'); break;
        case '\b': obuf_putc(o, 'b'); break;
        case '\f': obuf_putc(o, 'f'); break;
        default:
            obuf_puts(o, "u00");
            obuf_putc(o, hexd[c >> 4]);
            obuf_putc(o, hexd[c & 15]);
        }
        i++;
    }
    obuf_putc(o, '"');
}

void hex_put(struct obuf *o, const void *p, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        obuf_putc(o, hexd[c[i] >> 4]);
        obuf_putc(o, hexd[c[i] & 15]);
    }
}

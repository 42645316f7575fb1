/*
 * mms_dumpall.c -- the whole store as text and back: `mms dump DIR --all
 * OUT` and `mms load FILE DIR`, in the JSON-lines format of doc/FORMAT.md
 * §6. The path across byte orders, ABIs and format versions: tables,
 * records, strings and refs into tables are text that depends on neither.
 * The application's own heap objects (mms_heap_objects) are opaque bytes
 * that may hold refs, so they keep their heap offsets (a load places each
 * where it was) and tables keep their region ids: the refs inside those
 * bytes stay valid. Their bytes are the application's to convert. Public
 * API only.
 *
 * The dump runs in one read transaction (one committed state). The load
 * builds the store in DIR.mms-load-PID beside DIR, in one write
 * transaction, closes it and renames it to DIR: a crash leaves no DIR
 * (and a DIR.mms-load-PID, which the next load into DIR removes).
 */
#define _GNU_SOURCE
#include "csv.h"
#include "numfmt.h"
#include "tool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DUMP_VERSION 2

/* ------------------------------------------------------------------------
 * Dump
 * ------------------------------------------------------------------------ */
static void put_hexobj(struct obuf *o, const void *p, size_t n)
{
    obuf_puts(o, "{\"hex\":\"");
    hex_put(o, p, n);
    obuf_puts(o, "\"}");
}

/* Bytes as a JSON string when they are valid UTF-8 (json_put_string would
 * replace invalid bytes), else {"hex":...}: lossless either way. */
static void put_bytes(struct obuf *o, const char *p, size_t n)
{
    if (utf8_valid(p, n))
        json_put_string(o, p, n);
    else
        put_hexobj(o, p, n);
}

static int64_t get_int(const char *p, uint32_t size)
{
    switch (size) {
    case 1: { int8_t v; memcpy(&v, p, 1); return v; }
    case 2: { int16_t v; memcpy(&v, p, 2); return v; }
    case 4: { int32_t v; memcpy(&v, p, 4); return v; }
    default: { int64_t v; memcpy(&v, p, 8); return v; }
    }
}

static uint64_t get_uint(const char *p, uint32_t size)
{
    switch (size) {
    case 1: { uint8_t v; memcpy(&v, p, 1); return v; }
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

/* A float that JSON cannot hold as a number. */
static bool put_nonfinite(struct obuf *o, double d)
{
    if (isnan(d))
        obuf_puts(o, "\"nan\"");
    else if (isinf(d))
        obuf_puts(o, d > 0 ? "\"inf\"" : "\"-inf\"");
    else
        return false;
    return true;
}

/* The name of the table that region id holds, by a ref of it. */
struct tabs {
    size_t n;
    mms_table_info *info;
    mms_table **t;
};

static const char *table_of_ref(const struct tabs *tb, mms_ref ref)
{
    for (size_t i = 0; i < tb->n; i++)
        if (tb->info[i].region == MMS_REF_REGION(ref))
            return tb->info[i].name;
    return NULL;
}

static int put_value(struct obuf *o, mms_store *s, const struct tabs *tb, const mms_field *f,
                     const char *rec)
{
    const char *p = rec + f->offset;
    char t[NUMFMT_MAX];
    switch (f->kind) {
    case MMS_KIND_I8: case MMS_KIND_I16: case MMS_KIND_I32: case MMS_KIND_I64:
        obuf_write(o, t, fmt_i64(get_int(p, f->size), t));
        return 0;
    case MMS_KIND_U8: case MMS_KIND_U16: case MMS_KIND_U32: case MMS_KIND_U64:
        obuf_write(o, t, fmt_u64(get_uint(p, f->size), t));
        return 0;
    case MMS_KIND_F32: {
        float v;
        memcpy(&v, p, 4);
        if (!put_nonfinite(o, v))
            obuf_write(o, t, fmt_f32(v, t));
        return 0;
    }
    case MMS_KIND_F64: {
        double v;
        memcpy(&v, p, 8);
        if (!put_nonfinite(o, v))
            obuf_write(o, t, fmt_f64(v, t));
        return 0;
    }
    case MMS_KIND_BOOL:
        obuf_puts(o, *p ? "true" : "false");
        return 0;
    case MMS_KIND_CHARS: {
        /* Up to the first NUL when only NULs follow; else every byte. */
        const char *z = memchr(p, 0, f->size);
        size_t n = z ? (size_t)(z - p) : f->size;
        bool tail_zero = true;
        for (size_t i = n; i < f->size; i++)
            tail_zero &= p[i] == 0;
        if (tail_zero && utf8_valid(p, n))
            json_put_string(o, p, n);
        else
            put_hexobj(o, p, f->size);
        return 0;
    }
    case MMS_KIND_REF: {
        mms_ref ref;
        memcpy(&ref, p, 8);
        const char *tn = ref ? table_of_ref(tb, ref) : NULL;
        if (!ref) {
            obuf_puts(o, "null");
            return 0;
        }
        if (!tn)
            return tool_err("a ref (0x%llx) into no table: run mms verify",
                            (unsigned long long)ref);
        obuf_putc(o, '[');
        json_put_string(o, tn, strlen(tn));
        obuf_putc(o, ',');
        obuf_write(o, t, fmt_u64(MMS_REF_SLOT(ref), t));
        obuf_putc(o, ']');
        return 0;
    }
    case MMS_KIND_STR: case MMS_KIND_BLOB: {
        mms_ref ref;
        memcpy(&ref, p, 8);
        size_t len = 0;
        const char *b = ref ? mms_str_get(s, ref, &len) : NULL;
        if (!ref)
            obuf_puts(o, "null");
        else if (!b)
            return tool_err("a string field holds 0x%llx, which is no string: run mms verify",
                            (unsigned long long)ref);
        else if (f->kind == MMS_KIND_STR)
            put_bytes(o, b, len);
        else
            put_hexobj(o, b, len);
        return 0;
    }
    default:
        return tool_err("a field of unknown kind %u", f->kind);
    }
}

/* Tables in an order where each one's ref targets come before it (itself
 * aside), ties in catalog order: a load creates them in this order. */
static int table_order(mms_store *s, struct tabs *tb, size_t *order)
{
    bool *done = calloc(tb->n + 1, 1);
    if (!done)
        return tool_err("out of memory");
    for (size_t k = 0; k < tb->n; k++) {
        size_t pick = tb->n;
        for (size_t i = 0; i < tb->n && pick == tb->n; i++) {
            if (done[i])
                continue;
            const mms_schema *sc = mms_table_schema(tb->t[i]);
            bool ready = true;
            for (uint32_t f = 0; f < sc->nfields && ready; f++) {
                const mms_field *fd = &sc->fields[f];
                if (fd->kind != MMS_KIND_REF || !*fd->target ||
                    strcmp(fd->target, tb->info[i].name) == 0)
                    continue;
                for (size_t j = 0; j < tb->n; j++)
                    if (!done[j] && strcmp(tb->info[j].name, fd->target) == 0)
                        ready = false;
            }
            if (ready)
                pick = i;
        }
        if (pick == tb->n) {
            free(done);
            return tool_err("tables refer to each other in a circle: no order to load them in");
        }
        done[pick] = true;
        order[k] = pick;
    }
    (void)s;
    free(done);
    return 0;
}

static int dump_table(struct obuf *o, mms_store *s, const struct tabs *tb, size_t i,
                      uint64_t *records)
{
    mms_table *t = tb->t[i];
    const mms_schema *sc = mms_table_schema(t);
    char num[NUMFMT_MAX];
    obuf_puts(o, "{\"table\":");
    json_put_string(o, tb->info[i].name, strlen(tb->info[i].name));
    obuf_puts(o, ",\"region\":");
    obuf_write(o, num, fmt_u64(tb->info[i].region, num));
    obuf_puts(o, ",\"record_size\":");
    obuf_write(o, num, fmt_u64(sc->record_size, num));
    obuf_puts(o, ",\"slots\":");
    obuf_write(o, num, fmt_u64(mms_table_slots(t), num));
    obuf_puts(o, ",\"records\":");
    obuf_write(o, num, fmt_u64(mms_table_count(t), num));
    obuf_puts(o, ",\"fields\":[");
    for (uint32_t k = 0; k < sc->nfields; k++) {
        const mms_field *f = &sc->fields[k];
        obuf_puts(o, k ? ",{\"name\":" : "{\"name\":");
        json_put_string(o, f->name, strlen(f->name));
        obuf_puts(o, ",\"kind\":\"");
        obuf_puts(o, mms_kind_name(f->kind));
        obuf_puts(o, "\",\"offset\":");
        obuf_write(o, num, fmt_u64(f->offset, num));
        obuf_puts(o, ",\"size\":");
        obuf_write(o, num, fmt_u64(f->size, num));
        if (f->kind == MMS_KIND_REF) {
            obuf_puts(o, ",\"target\":");
            json_put_string(o, f->target, strlen(f->target));
        }
        obuf_putc(o, '}');
    }
    obuf_putc(o, ']');
    /* Its indexes, by field (a load builds them again). */
    size_t nix = 0;
    int ir = mms_indexes(t, NULL, 0, &nix);
    mms_index_info *ix = ir || !nix ? NULL : calloc(nix, sizeof *ix);
    if (!ir && nix && !ix)
        return tool_err("out of memory");
    if (!ir && nix)
        ir = mms_indexes(t, ix, nix, &nix);
    if (ir) {
        free(ix);
        return tool_fail("cannot list the indexes of", tb->info[i].name, ir);
    }
    if (nix)
        obuf_puts(o, ",\"indexes\":[");
    for (size_t k = 0; k < nix; k++) {
        obuf_puts(o, k ? ",{\"field\":" : "{\"field\":");
        json_put_string(o, ix[k].field, strlen(ix[k].field));
        obuf_puts(o, ix[k].flags & MMS_INDEX_ORDERED ? ",\"ordered\":true"
                                                     : ",\"ordered\":false");
        obuf_puts(o, ix[k].flags & MMS_INDEX_UNIQUE ? ",\"unique\":true" : ",\"unique\":false");
        if (ix[k].cover[0]) {
            obuf_puts(o, ",\"cover\":");
            json_put_string(o, ix[k].cover, strlen(ix[k].cover));
        }
        obuf_putc(o, '}');
    }
    if (nix)
        obuf_putc(o, ']');
    free(ix);
    obuf_puts(o, "}\n");
    uint64_t slots = mms_table_slots(t);
    for (uint64_t r = 0; r < slots && !o->err; r++) {
        if (!mms_table_live(t, r))
            continue;
        const char *rec = mms_table_get(t, r);
        if (!rec)
            return tool_err("table %s: record %llu cannot be read", tb->info[i].name,
                            (unsigned long long)r);
        obuf_puts(o, "{\"i\":");
        obuf_write(o, num, fmt_u64(r, num));
        obuf_puts(o, ",\"v\":[");
        bool any_null = false;
        for (uint32_t k = 0; k < sc->nfields; k++) {
            if (k)
                obuf_putc(o, ',');
            int rc = put_value(o, s, tb, &sc->fields[k], rec);
            if (rc)
                return rc;
            any_null |= mms_table_null(t, r, k) == 1;
        }
        obuf_putc(o, ']');
        if (any_null) {
            obuf_puts(o, ",\"null\":[");
            for (uint32_t k = 0, first = 1; k < sc->nfields; k++)
                if (mms_table_null(t, r, k) == 1) {
                    if (!first)
                        obuf_putc(o, ',');
                    first = 0;
                    obuf_write(o, num, fmt_u64(k, num));
                }
            obuf_putc(o, ']');
        }
        obuf_puts(o, "}\n");
        ++*records;
    }
    return 0;
}

/* The application's heap objects, in heap order: a string (or blob) as
 * its bytes, anything else as all of its usable bytes. */
static void dump_heap(struct obuf *o, mms_store *s, const mms_heap_obj *h, size_t n)
{
    char num[NUMFMT_MAX];
    for (size_t i = 0; i < n && !o->err; i++) {
        obuf_puts(o, "{\"heap\":");
        obuf_write(o, num, fmt_u64(MMS_REF_SLOT(h[i].ref), num));
        obuf_puts(o, ",\"size\":");
        obuf_write(o, num, fmt_u64(h[i].size, num));
        if (h[i].slab) {
            obuf_puts(o, ",\"slab\":");
            obuf_write(o, num, fmt_u64(h[i].slab, num));
        }
        size_t len;
        const char *b = mms_str_get(s, h[i].ref, &len);
        if (b) {
            obuf_puts(o, ",\"str\":");
            put_bytes(o, b, len);
        } else {
            obuf_puts(o, ",\"bytes\":");
            put_hexobj(o, mms_deref(s, h[i].ref), h[i].size);
        }
        obuf_puts(o, "}\n");
    }
}

static bool heap_has(const mms_heap_obj *h, size_t n, mms_ref ref)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h[mid].ref == ref)
            return true;
        if (h[mid].ref < ref)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* The root: none, a record, a heap object of the dump, or (a string or
 * bytes the tables own) a copy. */
static int dump_root(struct obuf *o, mms_store *s, const struct tabs *tb, const mms_heap_obj *h,
                     size_t nh)
{
    mms_ref root = mms_root(s);
    char num[NUMFMT_MAX];
    obuf_puts(o, "{\"root\":");
    if (!root) {
        obuf_puts(o, "null");
    } else if (MMS_REF_REGION(root) == 0 && heap_has(h, nh, root)) {
        obuf_puts(o, "{\"heap\":");
        obuf_write(o, num, fmt_u64(MMS_REF_SLOT(root), num));
        obuf_putc(o, '}');
    } else if (MMS_REF_REGION(root) != 0) {
        const char *tn = table_of_ref(tb, root);
        if (!tn)
            return tool_err("the root points into no table: run mms verify");
        obuf_puts(o, "{\"record\":[");
        json_put_string(o, tn, strlen(tn));
        obuf_putc(o, ',');
        obuf_write(o, num, fmt_u64(MMS_REF_SLOT(root), num));
        obuf_puts(o, "]}");
    } else {
        size_t len;
        const char *b = mms_str_get(s, root, &len);
        if (b) {
            obuf_puts(o, "{\"str\":");
            put_bytes(o, b, len);
            obuf_putc(o, '}');
        } else {
            size_t size;
            int r = mms_alloc_size(s, root, &size);
            const void *p = r ? NULL : mms_deref(s, root);
            if (!p)
                return tool_err("the root is no heap object: run mms verify");
            obuf_puts(o, "{\"bytes\":");
            put_hexobj(o, p, size);
            obuf_putc(o, '}');
        }
    }
    obuf_puts(o, "}\n");
    return 0;
}

int tool_dump_all(const char *dir, const char *out)
{
    mms_store *s;
    int r = tool_open_inspect(dir, &s);
    if (r)
        return tool_fail("cannot open", dir, r);
    /* A regular file is written beside out and renamed over it only once
     * whole and synced: a dump that fails (a full disk, damage) leaves no
     * partial dump for a load to take, and an earlier dump at out as it
     * was. Standard output, a pipe or a device is written directly. */
    char tmp[4200] = "", *target = NULL;
    struct stat st;
    FILE *f = stdout;
    /* A link to a file: the file is replaced, not the link (renaming over
     * the link made it a file of its own, the linked file as it was). */
    if (strcmp(out, "-") != 0 && lstat(out, &st) == 0 && S_ISLNK(st.st_mode) &&
        stat(out, &st) == 0 && S_ISREG(st.st_mode) && (target = realpath(out, NULL)))
        out = target;
    if (strcmp(out, "-") != 0) {
        if (stat(out, &st) != 0 || S_ISREG(st.st_mode)) {
            mms_leftovers_remove(out, ".mms-dump-", NULL); /* dumps to out that were killed */
            snprintf(tmp, sizeof tmp, "%s.mms-dump-%d", out, (int)getpid());
        }
        f = fopen(tmp[0] ? tmp : out, "w");
    }
    if (!f) {
        int rc = tool_err("cannot write %s: %s", out, strerror(errno));
        free(target);
        mms_close(s);
        return rc;
    }
    struct obuf o;
    struct tabs tb = {0};
    size_t *order = NULL, nheap = 0;
    mms_heap_obj *heap = NULL;
    uint64_t records = 0;
    int rc = obuf_init(&o, f, 1 << 20) ? tool_err("out of memory") : 0;
    if (!rc && (r = mms_read_begin(s)))
        rc = tool_fail("cannot read", dir, r);
    if (!rc && (r = tool_tables(s, &tb.info, &tb.n)))
        rc = tool_fail("cannot list the tables of", dir, r);
    if (!rc) {
        tb.t = calloc(tb.n + 1, sizeof *tb.t);
        order = calloc(tb.n + 1, sizeof *order);
        if (!tb.t || !order)
            rc = tool_err("out of memory");
    }
    for (size_t i = 0; !rc && i < tb.n; i++)
        if ((r = mms_table_find(s, tb.info[i].name, &tb.t[i])))
            rc = tool_fail("cannot open a table of", dir, r);
    if (!rc)
        rc = table_order(s, &tb, order);
    if (!rc && (r = mms_heap_objects(s, &heap, &nheap)))
        rc = tool_fail("cannot list the heap objects of", dir, r);
    if (!rc) {
        char num[NUMFMT_MAX];
        obuf_puts(&o, "{\"mmstore_dump\":");
        obuf_write(&o, num, fmt_u64(DUMP_VERSION, num));
        obuf_puts(&o, ",\"tables\":");
        obuf_write(&o, num, fmt_u64(tb.n, num));
        obuf_puts(&o, ",\"heap_objects\":");
        obuf_write(&o, num, fmt_u64(nheap, num));
        mms_info in;
        if (mms_info_get(s, &in) == 0 && in.fixed_base) {
            /* A fixed-address store loads at its base, so that the
             * pointers in its heap objects still lead where they did. */
            obuf_puts(&o, ",\"fixed_base\":");
            obuf_write(&o, num, fmt_u64(in.fixed_base, num));
            obuf_puts(&o, ",\"fixed_reserve\":");
            obuf_write(&o, num, fmt_u64(in.fixed_heap_reserve, num));
        }
        obuf_puts(&o, "}\n");
        /* First, so that a load places them into a heap that holds
         * nothing else yet. */
        dump_heap(&o, s, heap, nheap);
    }
    for (size_t k = 0; !rc && k < tb.n; k++)
        rc = dump_table(&o, s, &tb, order[k], &records);
    if (!rc)
        rc = dump_root(&o, s, &tb, heap, nheap);
    if (!rc) {
        char num[NUMFMT_MAX];
        obuf_puts(&o, "{\"end\":true,\"records\":");
        obuf_write(&o, num, fmt_u64(records, num));
        obuf_puts(&o, "}\n");
    }
    mms_read_end(s);
    obuf_flush(&o);
    if (!rc && o.err)
        rc = tool_err("cannot write %s: %s", out, strerror(o.err));
    obuf_free(&o);
    if (!rc && tmp[0] && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = tool_err("cannot write %s: %s", tmp, strerror(errno));
    if (f != stdout && fclose(f) != 0 && !rc)
        rc = tool_err("cannot write %s: %s", out, strerror(errno));
    else if (f == stdout && !rc)
        rc = tool_finish_output(NULL);
    if (!rc && tmp[0] && rename(tmp, out) != 0)
        rc = tool_err("cannot rename %s to %s: %s", tmp, out, strerror(errno));
    if (rc && tmp[0])
        unlink(tmp);
    free(tb.info);
    free(tb.t);
    free(order);
    free(heap);
    free(target);
    r = mms_close(s);
    if (!rc && r)
        rc = tool_fail("cannot close", dir, r);
    return rc;
}

/* ------------------------------------------------------------------------
 * A small JSON reader: one line at a time into a tree.
 * ------------------------------------------------------------------------ */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jv {
    enum jtype t;
    bool b;
    char *s;   /* J_STR: the decoded bytes; J_NUM: the text */
    size_t n;  /* their length; J_ARR/J_OBJ: the members */
    struct jv *kid;
    char **key; /* J_OBJ */
};

struct jparse {
    const char *p, *end;
    const char *err;
};

static void jv_free(struct jv *v)
{
    if (!v)
        return;
    free(v->s);
    if (v->t == J_ARR || v->t == J_OBJ) {
        for (size_t i = 0; i < v->n; i++) {
            jv_free(&v->kid[i]);
            if (v->key)
                free(v->key[i]);
        }
        free(v->kid);
        free(v->key);
    }
    memset(v, 0, sizeof *v);
}

static void ws(struct jparse *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static bool put_utf8(char *out, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xc0 | cp >> 6);
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xe0 | cp >> 12);
        out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x110000) {
        out[(*n)++] = (char)(0xf0 | cp >> 18);
        out[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        return false;
    }
    return true;
}

static bool read_u4(struct jparse *j, uint32_t *cp)
{
    if (j->end - j->p < 4)
        return false;
    *cp = 0;
    for (int i = 0; i < 4; i++) {
        int h = tool_hexval((unsigned char)j->p[i]);
        if (h < 0)
            return false;
        *cp = *cp << 4 | (uint32_t)h;
    }
    j->p += 4;
    return true;
}

static bool jstring(struct jparse *j, char **out, size_t *len)
{
    j->p++; /* the quote */
    char *buf = malloc((size_t)(j->end - j->p) + 1);
    size_t n = 0;
    if (!buf)
        return j->err = "out of memory", false;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p++;
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        if (j->p >= j->end)
            break;
        c = (unsigned char)*j->p++;
        uint32_t cp;
        switch (c) {
        case '"': case '\\': case '/': buf[n++] = (char)c; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u':
            if (!read_u4(j, &cp))
                goto bad;
            if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
                uint32_t lo;
                if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                    goto bad;
                j->p += 2;
                if (!read_u4(j, &lo) || lo < 0xdc00 || lo >= 0xe000)
                    goto bad;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (!put_utf8(buf, &n, cp))
                goto bad;
            break;
        default:
            goto bad;
        }
    }
    if (j->p >= j->end)
        goto bad;
    j->p++;
    buf[n] = 0;
    *out = buf;
    *len = n;
    return true;
bad:
    free(buf);
    j->err = "a bad string";
    return false;
}

static bool jvalue(struct jparse *j, struct jv *v, int depth)
{
    memset(v, 0, sizeof *v);
    ws(j);
    if (j->p >= j->end || depth > 16)
        return j->err = "a value is missing (or nested too deep)", false;
    char c = *j->p;
    if (c == '"') {
        v->t = J_STR;
        return jstring(j, &v->s, &v->n);
    }
    if (c == '{' || c == '[') {
        v->t = c == '{' ? J_OBJ : J_ARR;
        j->p++;
        size_t cap = 0;
        ws(j);
        if (j->p < j->end && *j->p == (c == '{' ? '}' : ']')) {
            j->p++;
            return true;
        }
        for (;;) {
            if (v->n == cap) {
                /* kid and key grow together: cap moves once both have. */
                size_t kcap = cap, keycap = cap;
                struct jv *k = tool_room(v->kid, v->n, &kcap, sizeof *k, 8);
                if (k)
                    v->kid = k;
                char **keys = k && c == '{' ? tool_room(v->key, v->n, &keycap, sizeof *keys, 8)
                                            : NULL;
                if (keys)
                    v->key = keys;
                if (!k || (c == '{' && !keys))
                    return j->err = "out of memory", false;
                cap = kcap;
            }
            /* Zero before the key: a bad key still counts the member
             * (its key is freed), and jv_free walks its value too. */
            memset(&v->kid[v->n], 0, sizeof v->kid[v->n]);
            if (c == '{') {
                ws(j);
                size_t kl;
                v->key[v->n] = NULL;
                if (j->p >= j->end || *j->p != '"' || !jstring(j, &v->key[v->n], &kl))
                    return j->err = j->err ? j->err : "a key is missing", v->n++, false;
                ws(j);
                if (j->p >= j->end || *j->p != ':')
                    return j->err = "':' is missing", v->n++, false;
                j->p++;
            }
            bool ok = jvalue(j, &v->kid[v->n], depth + 1);
            v->n++;
            if (!ok)
                return false;
            ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == (c == '{' ? '}' : ']')) {
                j->p++;
                return true;
            }
            return j->err = "',' or the end of a list is missing", false;
        }
    }
    if (strncmp(j->p, "null", 4) == 0) {
        j->p += 4;
        return true;
    }
    if (strncmp(j->p, "true", 4) == 0 || strncmp(j->p, "false", 5) == 0) {
        v->t = J_BOOL;
        v->b = *j->p == 't';
        j->p += v->b ? 4 : 5;
        return true;
    }
    const char *q = j->p;
    while (q < j->end && *q && (isdigit((unsigned char)*q) || strchr("+-.eE", *q)))
        q++;
    if (q == j->p)
        return j->err = "an unexpected character", false;
    v->t = J_NUM;
    v->n = (size_t)(q - j->p);
    v->s = strndup(j->p, v->n);
    j->p = q;
    return v->s ? true : (j->err = "out of memory", false);
}

static const struct jv *jget(const struct jv *o, const char *key)
{
    for (size_t i = 0; o && o->t == J_OBJ && i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return &o->kid[i];
    return NULL;
}

static bool jnum_u64(const struct jv *v, uint64_t *out)
{
    return v && v->t == J_NUM && parse_u64(v->s, v->n, out);
}

/* {"hex": "..."} into malloc'd bytes. */
static bool jhex(const struct jv *v, char **out, size_t *len)
{
    const struct jv *h = v && v->t == J_OBJ ? jget(v, "hex") : NULL;
    if (!h || h->t != J_STR || h->n % 2)
        return false;
    char *b = malloc(h->n / 2 + 1);
    if (!b)
        return false;
    for (size_t i = 0; i < h->n / 2; i++) {
        int a = tool_hexval((unsigned char)h->s[2 * i]);
        int c = tool_hexval((unsigned char)h->s[2 * i + 1]);
        if (a < 0 || c < 0) {
            free(b);
            return false;
        }
        b[i] = (char)(a << 4 | c);
    }
    *out = b;
    *len = h->n / 2;
    return true;
}

/* A JSON string or {"hex":...}: its bytes (*own: to free). */
static bool jbytes(const struct jv *v, const char **p, size_t *len, char **own)
{
    *own = NULL;
    if (v && v->t == J_STR) {
        *p = v->s;
        *len = v->n;
        return true;
    }
    if (!jhex(v, own, len))
        return false;
    *p = *own;
    return true;
}

/* ------------------------------------------------------------------------
 * Load
 * ------------------------------------------------------------------------ */
struct ltab {
    char name[64];
    mms_table *t;
    mms_schema sc;
    mms_field *f;
    char (*fname)[48];
    char (*target)[64];
    uint64_t slots; /* as the dump says */
    uint64_t next;  /* slots appended so far */
    char (*ixfield)[48]; /* its indexes: field, mms_index_create flags, */
    unsigned *ixflags;
    char (*ixcover)[48]; /* ... the covered field ("" none) */
    size_t nix;
};

/* A table made only to take a region id, so that the next table gets the
 * one the dump says; dropped before the commit. */
struct lpad {
    char name[64];
    uint32_t region;
    bool dropped;
};

/* Slots first .. first + n - 1 of table tab were deleted in the dumped
 * store: appended as zeros, deleted at the end. */
struct lgap {
    size_t tab;
    uint64_t first, n;
};

struct load {
    const char *path; /* the store made, at the header */
    mms_store *s;
    uint64_t version;
    uint64_t heap_objects; /* as the header says (version 2) */
    uint64_t *heap; /* offsets of the heap objects placed, increasing */
    size_t nheap, heapcap;
    struct lpad *pad;
    size_t npad, padcap;
    struct ltab *tab;
    size_t ntab, cap;
    struct lgap *gaps; /* runs of zero records appended for deleted slots */
    size_t ngaps, gapcap;
    uint64_t records;
    char *rec;
    uint64_t line;
};

static int lerr(const struct load *l, const char *fmt, const char *what)
{
    return tool_err("line %llu of the dump: %s%s", (unsigned long long)l->line, fmt,
                    what ? what : "");
}

/* A name the store it was dumped from kept from before the name rule
 * (mmstore.h, "Names"): the library makes no table or field of it. */
static int name_refused(const struct load *l, const char *what, const char *name, size_t max)
{
    char shown[4 * 64 + 1];
    return tool_err("line %llu of the dump: the %s name \"%s\" breaks the name rule (%s): "
                    "rename it in the store the dump came from (a table: mms rename DIR -- "
                    "OLD NEW; mms recover DIR --out DEST mends every name) and dump that again",
                    (unsigned long long)l->line, what, tool_name_shown(name, shown),
                    mms_name_fault(name, max));
}

static struct ltab *ltab_named(struct load *l, const char *name)
{
    for (size_t i = 0; i < l->ntab; i++)
        if (strcmp(l->tab[i].name, name) == 0)
            return &l->tab[i];
    return NULL;
}

/* Zero records up to slot n of tb, marked for deletion at the end: one
 * run, appended at once (one at a time, a dump that names a huge slot
 * count, damaged or of a store of mostly deleted records, appended for
 * hours before the table's limit or a full disk said no). */
static int fill_gaps(struct load *l, struct ltab *tb, uint64_t n)
{
    if (tb->next >= n)
        return 0;
    struct lgap *g = tool_room(l->gaps, l->ngaps, &l->gapcap, sizeof *g, 16);
    if (!g)
        return tool_err("out of memory");
    l->gaps = g;
    uint64_t first;
    int r = mms_table_append_many(tb->t, n - tb->next, &first, NULL);
    if (r)
        return tool_fail("cannot append to", tb->name, r);
    l->gaps[l->ngaps++] = (struct lgap){(size_t)(tb - l->tab), first, n - tb->next};
    tb->next = n;
    return 0;
}

/* Is region id taken by a table (or pad) made so far? */
static bool region_used(const struct load *l, uint32_t id)
{
    for (size_t i = 0; i < l->ntab; i++)
        if (l->tab[i].t && MMS_REF_REGION(mms_table_ref(l->tab[i].t, 0)) == id)
            return true;
    for (size_t i = 0; i < l->npad; i++)
        if (!l->pad[i].dropped && l->pad[i].region == id)
            return true;
    return false;
}

static uint32_t lowest_free(const struct load *l)
{
    uint32_t next = 1;
    while (region_used(l, next))
        next++;
    return next;
}

/* Is name a table's of the dump read so far (the one being made too), or
 * a pad's? A table may be called anything, a pad's name too. */
static bool name_taken(const struct load *l, const char *name)
{
    for (size_t i = 0; i < l->ntab; i++)
        if (strcmp(l->tab[i].name, name) == 0)
            return true;
    for (size_t i = 0; i < l->npad; i++)
        if (!l->pad[i].dropped && strcmp(l->pad[i].name, name) == 0)
            return true;
    return false;
}

/* base, or base~1, base~2 ...: the first name not taken, into name. */
static void name_free(const struct load *l, const char *base, char name[64])
{
    snprintf(name, 64, "%s", base);
    for (unsigned k = 1; name_taken(l, name); k++)
        snprintf(name, 64, "%.48s~%u", base, k);
}

/* A table of the dump that a pad made before it has the name of: the pad
 * moves out of its way, renamed (its region stays). */
static int pad_rename_away(struct load *l, const char *name)
{
    for (size_t i = 0; i < l->npad; i++) {
        struct lpad *pd = &l->pad[i];
        if (pd->dropped || strcmp(pd->name, name) != 0)
            continue;
        char to[64];
        name_free(l, name, to);
        int r = mms_table_rename(l->s, pd->name, to);
        if (r)
            return tool_fail("cannot rename the pad table", pd->name, r);
        snprintf(pd->name, sizeof pd->name, "%s", to);
    }
    return 0;
}

/* A pad table called PREFIX-ID (or so: name_free), in region id (the
 * lowest free one). */
static int pad_add(struct load *l, uint32_t id, const char *prefix)
{
    static const mms_field pad_field[] = {{"pad", MMS_KIND_U8, 0, 1, NULL, NULL}};
    static const mms_schema pad_schema = {1, 1, pad_field};
    struct lpad *np = tool_room(l->pad, l->npad, &l->padcap, sizeof *np, 16);
    if (!np)
        return tool_err("out of memory");
    l->pad = np;
    struct lpad *pd = &l->pad[l->npad];
    char base[64];
    snprintf(base, sizeof base, "%s-%u", prefix, id);
    name_free(l, base, pd->name);
    pd->region = id;
    pd->dropped = false;
    mms_table *t;
    int r = mms_table_open(l->s, pd->name, &pad_schema, MMS_TABLE_CREATE, &t);
    if (r)
        return tool_fail("cannot create the pad table", pd->name, r);
    l->npad++;
    if (MMS_REF_REGION(mms_table_ref(t, 0)) != id)
        return lerr(l, "the library put a pad table in another region: ", pd->name);
    return 0;
}

/* A ref field whose target table was dropped (target "", doc/FORMAT.md
 * §6) is made with a pad for its target, into *name: the pad leaves
 * before the commit like the others, and the field then targets no table,
 * as in the dumped store. The pad must not take the region id want (0:
 * any) that its table is to get: a pad takes that one first, and
 * region_take drops it. */
static int gone_pad(struct load *l, uint32_t want, char name[64])
{
    int r = lowest_free(l) == want ? pad_add(l, want, "mms-load-pad") : 0;
    if (!r)
        r = pad_add(l, lowest_free(l), "mms-load-gone");
    if (!r)
        snprintf(name, 64, "%s", l->pad[l->npad - 1].name);
    return r;
}

/* Make the lowest free region id the one the dump gives the next table
 * (mms_table_open takes the lowest free id): pad tables take the ids
 * below it, and a pad that holds it leaves. The refs that heap objects
 * hold into tables name them by region id. */
static int region_take(struct load *l, uint32_t want)
{
    for (;;) {
        uint32_t next = lowest_free(l);
        if (next == want)
            return 0;
        if (next > want) {
            size_t p = 0;
            while (p < l->npad && (l->pad[p].dropped || l->pad[p].region != want))
                p++;
            if (p == l->npad)
                return lerr(l, "two tables in one region", NULL);
            int r = mms_table_drop(l->s, l->pad[p].name);
            if (r)
                return tool_fail("cannot drop the pad table", l->pad[p].name, r);
            l->pad[p].dropped = true;
            continue;
        }
        int r = pad_add(l, next, "mms-load-pad");
        if (r)
            return r;
    }
}

static int drop_pads(struct load *l)
{
    for (size_t i = 0; i < l->npad; i++) {
        if (l->pad[i].dropped)
            continue;
        int r = mms_table_drop(l->s, l->pad[i].name);
        if (r)
            return tool_fail("cannot drop the pad table", l->pad[i].name, r);
        l->pad[i].dropped = true;
    }
    return 0;
}

/* One heap object, placed at its offset (they come before the tables, in
 * increasing order, into a heap that holds nothing else). */
static int load_heap(struct load *l, const struct jv *v)
{
    mms_heap_obj h = {0};
    uint64_t off;
    const struct jv *str = jget(v, "str"), *bytes = jget(v, "bytes"), *slab = jget(v, "slab");
    if (l->ntab)
        return lerr(l, "a heap object after the tables", NULL);
    if (!jnum_u64(jget(v, "heap"), &off) || off == 0 || off > MMS_SLOT_MASK ||
        !jnum_u64(jget(v, "size"), &h.size) || (slab && !jnum_u64(slab, &h.slab)) ||
        (!str == !bytes))
        return lerr(l, "a heap object without offset, size, or one of str and bytes", NULL);
    if (l->nheap && off <= l->heap[l->nheap - 1])
        return lerr(l, "heap objects out of order", NULL);
    h.ref = MMS_REF_MAKE(0, off);
    const char *b;
    size_t len;
    char *own = NULL;
    if (!jbytes(str ? str : bytes, &b, &len, &own))
        return lerr(l, "bad bytes of a heap object", NULL);
    int r;
    if (str) {
        r = mms_heap_place_str(l->s, &h, b, len);
    } else if (len != h.size) {
        free(own);
        return lerr(l, "a heap object whose bytes are not its size", NULL);
    } else if (!(r = mms_heap_place(l->s, &h))) {
        memcpy(mms_deref(l->s, h.ref), b, len);
    }
    free(own);
    if (r) {
        char what[400];
        snprintf(what, sizeof what, "%llu: %s (%s)", (unsigned long long)off, mms_strerror(r),
                 mms_errdetail());
        return lerr(l, "cannot place the heap object at ", what);
    }
    uint64_t *nh = tool_room(l->heap, l->nheap, &l->heapcap, sizeof *nh, 256);
    if (!nh)
        return tool_err("out of memory");
    l->heap = nh;
    l->heap[l->nheap++] = off;
    return 0;
}

static int load_table(struct load *l, const struct jv *v)
{
    const struct jv *name = jget(v, "table"), *fields = jget(v, "fields");
    uint64_t rs, slots;
    if (!name || name->t != J_STR || name->n == 0 || name->n > 63 || !fields ||
        fields->t != J_ARR || fields->n == 0 || !jnum_u64(jget(v, "record_size"), &rs) ||
        !jnum_u64(jget(v, "slots"), &slots) || rs == 0 || rs > UINT32_MAX)
        return lerr(l, "a table line without name, fields, record_size or slots", NULL);
    /* A second table of one name would open (or migrate) the first. */
    if (ltab_named(l, name->s))
        return lerr(l, "a second table called ", name->s);
    struct ltab *t = tool_room(l->tab, l->ntab, &l->cap, sizeof *t, 16);
    if (!t)
        return tool_err("out of memory");
    l->tab = t;
    struct ltab *tb = &l->tab[l->ntab];
    memset(tb, 0, sizeof *tb);
    snprintf(tb->name, sizeof tb->name, "%s", name->s);
    if (mms_name_fault(tb->name, 63))
        return name_refused(l, "table", tb->name, 63);
    size_t n = fields->n;
    tb->f = calloc(n, sizeof *tb->f);
    tb->fname = calloc(n, sizeof *tb->fname);
    tb->target = calloc(n, sizeof *tb->target);
    if (!tb->f || !tb->fname || !tb->target)
        return tool_err("out of memory");
    l->ntab++;
    for (size_t k = 0; k < n; k++) {
        const struct jv *f = &fields->kid[k], *fn = jget(f, "name"), *kind = jget(f, "kind"),
                        *tg = jget(f, "target");
        uint64_t off, size;
        if (!fn || fn->t != J_STR || fn->n == 0 || fn->n > 47 || !kind || kind->t != J_STR ||
            !jnum_u64(jget(f, "offset"), &off) || !jnum_u64(jget(f, "size"), &size) ||
            off > UINT32_MAX || size > UINT32_MAX)
            return lerr(l, "a bad field in table ", tb->name);
        snprintf(tb->fname[k], sizeof tb->fname[k], "%s", fn->s);
        if (mms_name_fault(tb->fname[k], 47))
            return name_refused(l, "field", tb->fname[k], 47);
        tb->f[k].name = tb->fname[k];
        tb->f[k].kind = mms_kind_from_name(kind->s);
        if (!tb->f[k].kind)
            return lerr(l, "a field of an unknown kind: ", kind->s);
        tb->f[k].offset = (uint32_t)off;
        tb->f[k].size = (uint32_t)size;
        if (tb->f[k].kind == MMS_KIND_REF) {
            if (!tg || tg->t != J_STR || tg->n > 63)
                return lerr(l, "a ref field without a target in table ", tb->name);
            snprintf(tb->target[k], sizeof tb->target[k], "%s", tg->s);
            tb->f[k].target = tb->target[k];
        }
    }
    tb->sc.record_size = (uint32_t)rs;
    tb->sc.nfields = (uint32_t)n;
    tb->sc.fields = tb->f;
    tb->slots = slots;
    const struct jv *ixs = jget(v, "indexes");
    if (ixs && (ixs->t != J_ARR || ixs->n > n))
        return lerr(l, "bad indexes in table ", tb->name);
    if (ixs && ixs->n) {
        tb->ixfield = calloc(ixs->n, sizeof *tb->ixfield);
        tb->ixflags = calloc(ixs->n, sizeof *tb->ixflags);
        tb->ixcover = calloc(ixs->n, sizeof *tb->ixcover);
        if (!tb->ixfield || !tb->ixflags || !tb->ixcover)
            return tool_err("out of memory");
        for (size_t k = 0; k < ixs->n; k++) {
            const struct jv *x = &ixs->kid[k], *fn = jget(x, "field"), *ord = jget(x, "ordered"),
                            *uni = jget(x, "unique"), *cov = jget(x, "cover");
            if (!fn || fn->t != J_STR || fn->n == 0 || fn->n > 47 || !ord || ord->t != J_BOOL ||
                !uni || uni->t != J_BOOL ||
                (cov && (cov->t != J_STR || cov->n == 0 || cov->n > 47)))
                return lerr(l, "a bad index in table ", tb->name);
            snprintf(tb->ixfield[k], sizeof tb->ixfield[k], "%s", fn->s);
            if (cov)
                snprintf(tb->ixcover[k], sizeof tb->ixcover[k], "%s", cov->s);
            tb->ixflags[k] = (ord->b ? MMS_INDEX_ORDERED : MMS_INDEX_HASH) |
                             (uni->b ? MMS_INDEX_UNIQUE : 0);
            tb->nix++;
        }
    }
    uint64_t region = 0;
    const struct jv *rv = jget(v, "region");
    if (rv && (!jnum_u64(rv, &region) || region == 0 || region >= MMS_MAX_REGIONS))
        return lerr(l, "a bad region id for table ", tb->name);
    if (!rv && l->version >= 2)
        return lerr(l, "no region id for table ", tb->name);
    int r = 0;
    for (size_t k = 0; k < n && !r; k++)
        if (tb->f[k].kind == MMS_KIND_REF && !tb->target[k][0])
            r = gone_pad(l, (uint32_t)region, tb->target[k]);
    if (!r && region)
        r = region_take(l, (uint32_t)region);
    if (!r)
        r = pad_rename_away(l, tb->name);
    if (r)
        return r;
    r = mms_table_open(l->s, tb->name, &tb->sc, MMS_TABLE_CREATE, &tb->t);
    if (r)
        return tool_fail("cannot create the table", tb->name, r);
    if (region && MMS_REF_REGION(mms_table_ref(tb->t, 0)) != region)
        return lerr(l, "the library put table in another region: ", tb->name);
    free(l->rec);
    l->rec = calloc(1, rs);
    return l->rec ? 0 : tool_err("out of memory");
}

static int put_int(char *p, uint32_t size, const struct jv *v, bool is_signed)
{
    int64_t i;
    uint64_t u;
    if (!v || v->t != J_NUM)
        return -1;
    if (is_signed) {
        if (!parse_i64(v->s, v->n, &i))
            return -1;
        int64_t lim = size == 8 ? INT64_MAX : (INT64_C(1) << (size * 8 - 1)) - 1;
        if (i > lim || i < -lim - 1)
            return -1;
        u = (uint64_t)i;
    } else {
        if (!parse_u64(v->s, v->n, &u) || (size < 8 && u >> (size * 8)))
            return -1;
    }
    switch (size) {
    case 1: { uint8_t x = (uint8_t)u; memcpy(p, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)u; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)u; memcpy(p, &x, 4); break; }
    default: memcpy(p, &u, 8);
    }
    return 0;
}

static int get_float(const struct jv *v, double *d, float *f, bool f32)
{
    if (v && v->t == J_STR) {
        double x = strcmp(v->s, "nan") == 0 ? NAN : strcmp(v->s, "inf") == 0 ? INFINITY
                   : strcmp(v->s, "-inf") == 0 ? -INFINITY : 0;
        if (x == 0)
            return -1;
        *d = x;
        *f = (float)x;
        return 0;
    }
    if (!v || v->t != J_NUM)
        return -1;
    return (f32 ? parse_f32(v->s, v->n, f) : parse_f64(v->s, v->n, d)) ? 0 : -1;
}

/* One value of field f into the record at rec. */
static int load_value(struct load *l, const mms_field *f, const struct jv *v, char *rec)
{
    char *p = rec + f->offset;
    const char *b;
    size_t len;
    char *own = NULL;
    switch (f->kind) {
    case MMS_KIND_I8: case MMS_KIND_I16: case MMS_KIND_I32: case MMS_KIND_I64:
        return put_int(p, f->size, v, true);
    case MMS_KIND_U8: case MMS_KIND_U16: case MMS_KIND_U32: case MMS_KIND_U64:
        return put_int(p, f->size, v, false);
    case MMS_KIND_F32: case MMS_KIND_F64: {
        double d = 0;
        float x = 0;
        if (get_float(v, &d, &x, f->kind == MMS_KIND_F32))
            return -1;
        if (f->kind == MMS_KIND_F32)
            memcpy(p, &x, 4);
        else
            memcpy(p, &d, 8);
        return 0;
    }
    case MMS_KIND_BOOL:
        if (!v || v->t != J_BOOL)
            return -1;
        *p = v->b;
        return 0;
    case MMS_KIND_CHARS:
        if (!jbytes(v, &b, &len, &own) || len > f->size) {
            free(own);
            return -1;
        }
        memcpy(p, b, len);
        free(own);
        return 0;
    case MMS_KIND_REF: {
        if (v && v->t == J_NULL)
            return 0;
        uint64_t i;
        struct ltab *tt = v && v->t == J_ARR && v->n == 2 && v->kid[0].t == J_STR
                              ? ltab_named(l, v->kid[0].s) : NULL;
        if (!tt || !jnum_u64(&v->kid[1], &i))
            return -1;
        mms_ref ref = mms_table_ref(tt->t, i);
        memcpy(p, &ref, 8);
        return 0;
    }
    case MMS_KIND_STR: case MMS_KIND_BLOB: {
        if (v && v->t == J_NULL)
            return 0;
        if (!jbytes(v, &b, &len, &own))
            return -1;
        mms_ref ref;
        int r = mms_str_new(l->s, b, len, &ref);
        free(own);
        if (r)
            return tool_fail("cannot store a string of", "the new store", r), -2;
        memcpy(p, &ref, 8);
        return 0;
    }
    default:
        return -1;
    }
}

static int load_record(struct load *l, const struct jv *v)
{
    struct ltab *tb = l->ntab ? &l->tab[l->ntab - 1] : NULL;
    const struct jv *vals = jget(v, "v"), *nulls = jget(v, "null");
    uint64_t i;
    if (!tb || !jnum_u64(jget(v, "i"), &i) || i < tb->next || i >= tb->slots || !vals ||
        vals->t != J_ARR || vals->n != tb->sc.nfields)
        return lerr(l, "a bad record of table ", tb ? tb->name : "(none)");
    int rc = fill_gaps(l, tb, i);
    if (rc)
        return rc;
    memset(l->rec, 0, tb->sc.record_size);
    for (uint32_t k = 0; k < tb->sc.nfields; k++) {
        int r = load_value(l, &tb->f[k], &vals->kid[k], l->rec);
        if (r == -2)
            return 1;
        if (r) {
            char what[200];
            snprintf(what, sizeof what, "%s, field %s", tb->name, tb->f[k].name);
            return lerr(l, "a bad value in table ", what);
        }
    }
    uint64_t got;
    int r = mms_table_append(tb->t, l->rec, &got);
    if (r)
        return tool_fail("cannot append to", tb->name, r);
    if (got != i)
        return lerr(l, "a record landed at another index in table ", tb->name);
    tb->next = i + 1;
    for (size_t k = 0; nulls && nulls->t == J_ARR && k < nulls->n; k++) {
        uint64_t f;
        if (!jnum_u64(&nulls->kid[k], &f) || f >= tb->sc.nfields)
            return lerr(l, "a bad null mark in table ", tb->name);
        if ((r = mms_table_null_set(tb->t, i, (uint32_t)f, 1)))
            return tool_fail("cannot mark a missing value in", tb->name, r);
    }
    l->records++;
    return 0;
}

static int load_root(struct load *l, const struct jv *v)
{
    const struct jv *rv = jget(v, "root");
    mms_ref ref = 0;
    int r = 0;
    if (!rv || rv->t == J_NULL)
        return 0;
    const struct jv *rec = jget(rv, "record"), *str = jget(rv, "str"), *bytes = jget(rv, "bytes"),
                    *heap = jget(rv, "heap");
    const char *b;
    size_t len;
    char *own = NULL;
    if (heap) {
        uint64_t off;
        size_t lo = 0, hi = l->nheap;
        if (!jnum_u64(heap, &off))
            return lerr(l, "a bad root heap offset", NULL);
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (l->heap[mid] < off)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == l->nheap || l->heap[lo] != off)
            return lerr(l, "the root names no heap object of the dump", NULL);
        ref = MMS_REF_MAKE(0, off);
    } else if (rec) {
        uint64_t i;
        struct ltab *tt = rec->t == J_ARR && rec->n == 2 && rec->kid[0].t == J_STR
                              ? ltab_named(l, rec->kid[0].s) : NULL;
        if (!tt || !jnum_u64(&rec->kid[1], &i))
            return lerr(l, "a bad root record", NULL);
        ref = mms_table_ref(tt->t, i);
    } else if (str) {
        if (!jbytes(str, &b, &len, &own))
            return lerr(l, "a bad root string", NULL);
        r = mms_str_new(l->s, b, len, &ref);
    } else if (bytes) {
        if (!jbytes(bytes, &b, &len, &own))
            return lerr(l, "bad root bytes", NULL);
        r = mms_alloc(l->s, len, &ref);
        if (!r)
            memcpy(mms_deref(l->s, ref), b, len);
    } else {
        return lerr(l, "a root of no known form", NULL);
    }
    free(own);
    if (!r)
        r = mms_root_set(l->s, ref);
    return r ? tool_fail("cannot set the root of", "the new store", r) : 0;
}

static int fsync_path(const char *p)
{
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return r;
}

/* The new store l->path, fixed at the dump's base if its store was, and
 * its one write transaction. */
static int load_create(struct load *l, const struct jv *header)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_EXCL;
    const struct jv *fb = jget(header, "fixed_base");
    if (fb) {
        o.flags |= MMS_FIXED;
        if (!jnum_u64(fb, &o.base) || !jnum_u64(jget(header, "fixed_reserve"), &o.reserve))
            return lerr(l, "a header with a bad fixed_base or fixed_reserve", NULL);
    }
    int r = mms_open(l->path, &o, &l->s);
    if (r)
        return tool_fail("cannot create", l->path, r);
    if ((r = mms_txn_begin(l->s, 0)))
        return tool_fail("cannot write", l->path, r);
    return 0;
}

/* The lines of f into a new store (load_create, at the header), in its
 * one write transaction. */
static int load_lines(struct load *l, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool header = false, end = false;
    int rc = 0;
    while (!rc && !end && (n = getline(&line, &cap, f)) >= 0) {
        l->line++;
        struct jparse j = {line, line + n, NULL};
        struct jv v;
        if (!jvalue(&j, &v, 0) || v.t != J_OBJ) {
            rc = lerr(l, "not a JSON object: ", j.err ? j.err : "");
            jv_free(&v);
            break;
        }
        uint64_t u;
        if (!header) {
            if (!jnum_u64(jget(&v, "mmstore_dump"), &u) || u < 1 || u > DUMP_VERSION)
                rc = lerr(l, "not an mms dump of version 1 or 2 (mms dump DIR --all OUT)", NULL);
            l->version = u;
            if (!rc && u >= 2 && !jnum_u64(jget(&v, "heap_objects"), &l->heap_objects))
                rc = lerr(l, "a header without heap_objects", NULL);
            if (!rc)
                rc = load_create(l, &v);
            header = true;
        } else if (jget(&v, "i")) {
            rc = load_record(l, &v);
        } else if (jget(&v, "heap")) {
            rc = load_heap(l, &v);
        } else if (jget(&v, "table")) {
            if (l->ntab)
                rc = fill_gaps(l, &l->tab[l->ntab - 1], l->tab[l->ntab - 1].slots);
            if (!rc)
                rc = load_table(l, &v);
        } else if (jget(&v, "root")) {
            if (l->ntab)
                rc = fill_gaps(l, &l->tab[l->ntab - 1], l->tab[l->ntab - 1].slots);
            if (!rc)
                rc = load_root(l, &v);
        } else if (jget(&v, "end")) {
            /* The last table's trailing deleted slots, when no root line
             * (which may be left out) came after it. */
            if (l->ntab)
                rc = fill_gaps(l, &l->tab[l->ntab - 1], l->tab[l->ntab - 1].slots);
            if (!rc && (!jnum_u64(jget(&v, "records"), &u) || u != l->records))
                rc = lerr(l, "the dump's record count does not match its records", NULL);
            else if (!rc && l->nheap != l->heap_objects)
                rc = lerr(l, "the dump's heap object count does not match its heap objects",
                          NULL);
            end = true;
        } else {
            rc = lerr(l, "a line of no known kind", NULL);
        }
        jv_free(&v);
    }
    free(line);
    if (!rc && ferror(f))
        rc = tool_err("cannot read the dump: %s", strerror(errno));
    if (!rc && !end)
        rc = tool_err("the dump ends early (no end line): it was cut short");
    /* The slots that were deleted in the dumped store, one call a slot:
     * the API deletes one record at a time. Measured on 1M slots, half of
     * them gaps, the deletes take a fifth to a quarter of the load, most
     * of it the library noting each deleted ref for the commit's delete
     * rule -- a range delete would have to keep that per run to help. */
    for (size_t g = 0; !rc && g < l->ngaps; g++)
        for (uint64_t i = 0; !rc && i < l->gaps[g].n; i++) {
            int r = mms_table_delete(l->tab[l->gaps[g].tab].t, l->gaps[g].first + i);
            if (r)
                rc = tool_fail("cannot delete a slot of", l->tab[l->gaps[g].tab].name, r);
        }
    /* The indexes, built from the records as they now are. */
    for (size_t t = 0; !rc && t < l->ntab; t++)
        for (size_t k = 0; !rc && k < l->tab[t].nix; k++) {
            int r = mms_index_create_covering(l->tab[t].t, l->tab[t].ixfield[k],
                                              l->tab[t].ixflags[k],
                                              l->tab[t].ixcover[k][0] ? l->tab[t].ixcover[k] : NULL);
            if (r) {
                char what[200];
                snprintf(what, sizeof what, "%s.%s", l->tab[t].name, l->tab[t].ixfield[k]);
                rc = tool_fail("cannot build the index on", what, r);
            }
        }
    return rc ? rc : drop_pads(l);
}

int tool_load(const char *file, const char *path)
{
    /* DIR/ (a shell's completion) is DIR: the store is built beside it. */
    char dir[4096];
    size_t dn = strlen(path);
    while (dn > 1 && path[dn - 1] == '/')
        dn--;
    if (dn >= sizeof dir)
        return tool_err("%s: the path is too long", path);
    memcpy(dir, path, dn);
    dir[dn] = 0;
    struct stat st;
    if (stat(dir, &st) == 0)
        return tool_err("%s exists: load makes a new store", dir);
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f)
        return tool_err("cannot read %s: %s", file, strerror(errno));
    char tmp[4200];
    mms_leftovers_remove(dir, ".mms-load-", NULL); /* loads into dir that were killed */
    snprintf(tmp, sizeof tmp, "%s.mms-load-%d", dir, (int)getpid());
    tool_rm_dir(tmp);
    struct load l = {.path = tmp};
    int r, rc = load_lines(&l, f);
    if (l.s) {
        if (!rc && (r = mms_txn_commit(l.s)))
            rc = tool_fail("cannot commit the load into", tmp, r);
        else if (rc)
            mms_txn_abort(l.s);
    }
    if (l.s && (r = mms_close(l.s)) && !rc)
        rc = tool_fail("cannot close", tmp, r);
    if (f != stdin)
        fclose(f);
    for (size_t i = 0; i < l.ntab; i++) {
        free(l.tab[i].f);
        free(l.tab[i].fname);
        free(l.tab[i].target);
        free(l.tab[i].ixfield);
        free(l.tab[i].ixflags);
        free(l.tab[i].ixcover);
    }
    free(l.tab);
    free(l.heap);
    free(l.pad);
    free(l.gaps);
    free(l.rec);
    if (!rc) {
        /* The lock file is rebuilt at open; the store is complete. */
        char lock[4300];
        snprintf(lock, sizeof lock, "%s/lock", tmp);
        unlink(lock);
        fsync_path(tmp);
        if (rename(tmp, dir) != 0)
            rc = tool_err("cannot rename %s to %s: %s", tmp, dir, strerror(errno));
        char parent[4200];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash)
            *(slash == parent ? slash + 1 : slash) = 0;
        fsync_path(slash ? parent : ".");
    }
    if (rc)
        tool_rm_dir(tmp);
    else
        printf("%s: loaded %zu tables, %llu records\n", dir, l.ntab,
               (unsigned long long)l.records);
    return rc ? rc : tool_finish_change();
}

static int run_load(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[2];
    int rc = tool_args(cmd, argc, argv, NULL, 0, pos, 2);
    if (rc >= 0)
        return rc;
    if (!pos[0][0] || !pos[1][0]) /* it loaded everything, then failed to rename */
        return tool_usage_err(cmd, "FILE and DIR are not empty");
    return tool_load(pos[0], pos[1]);
}

const struct tool_cmd tool_cmd_load = {
    "load", "FILE DIR", "Make a new store DIR from a whole-store dump (mms dump DIR --all OUT).",
    "The dump's heap objects (each at its own heap offset), tables (each in its\n"
    "own region), records (at the same indices), missing values, strings and\n"
    "root, then its indexes, in one transaction: refs stay valid, in records\n"
    "and inside heap objects. Built beside DIR and renamed into place: a\n"
    "failure or a crash leaves no DIR. The way across byte orders, ABIs and\n"
    "format versions: dump with the old library or machine, load with the new\n"
    "one (the bytes of heap objects other than strings are the application's\n"
    "to convert). A fixed-address store loads fixed, at its base, so its\n"
    "pointers stay valid. FILE '-' is standard input. doc/FORMAT.md §6 is the\n"
    "format.\n",
    run_load};

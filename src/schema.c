/*
 * schema.c -- field kinds, record layouts, and how a record of one layout
 * becomes a record of another.
 *
 * Layer 0: pure functions over the public mms_field / mms_schema types and
 * byte buffers. It owns the one table of kinds (MMS_KINDS in mmstore.h) as
 * the library sees it, the checks a schema must pass, the layout comparison
 * mms_table_open makes, and the field conversions of a migration (DESIGN §6).
 * It must never touch a store: no handle, no mapping, no system call.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Kinds
 * ------------------------------------------------------------------------ */
const char *mms_kind_name(unsigned kind)
{
    switch (kind) {
#define KIND_NAME(a, N, v, name, size, cls)                                    \
    case v:                                                                    \
        return name;
        MMS_KINDS(KIND_NAME, 0)
#undef KIND_NAME
    default:
        return NULL;
    }
}

unsigned mms_kind_from_name(const char *name)
{
    if (!name)
        return 0;
#define KIND_FROM(a, N, v, nm, size, cls)                                      \
    if (strcmp(name, nm) == 0)                                                 \
        return v;
    MMS_KINDS(KIND_FROM, 0)
#undef KIND_FROM
    return 0;
}

uint32_t mms_kind_size(unsigned kind)
{
    return MMS__KSIZE(kind);
}

int mms_kind_class(unsigned kind)
{
    switch (kind) {
#define KIND_CLASS(a, N, v, name, size, cls)                                   \
    case v:                                                                    \
        return cls;
        MMS_KINDS(KIND_CLASS, 0)
#undef KIND_CLASS
    default:
        return 0;
    }
}

/* "?" instead of NULL, for messages. */
const char *mms__kind_label(unsigned kind)
{
    const char *n = mms_kind_name(kind);
    return n ? n : "?";
}

bool mms__kind_owns_heap(unsigned kind)
{
    return mms_kind_class(kind) == 'h';
}

/* ------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------ */
static const char zeros8[8];

static const mms_field *field_named(const mms_schema *sc, const char *name);

/* The name rule (mmstore.h, "Names"): a table's or a field's name is 1 to
 * max bytes of UTF-8 with no control character (0x00-0x1f, 0x7f) and no '/',
 * and it does not start with '-'. Such a name is one line of text, one CSV
 * header cell, one JSON string and one argument of the mms tool. NULL when
 * name keeps the rule, or what breaks it. */
static const char *name_fault(const char *name, size_t max, size_t *at)
{
    size_t n = name ? strlen(name) : 0;
    *at = 0;
    if (n == 0 || n > max)
        return "is empty or too long";
    if (name[0] == '-')
        return "starts with '-'";
    const unsigned char *p = (const unsigned char *)name;
    for (size_t i = 0; i < n; i++) {
        *at = i;
        if (p[i] < 0x20 || p[i] == 0x7f)
            return "holds a control character";
        if (p[i] == '/')
            return "holds a '/'";
        if (p[i] < 0x80)
            continue;
        /* A UTF-8 sequence: a lead byte, then 1 to 3 continuation bytes; no
         * overlong form, no surrogate, nothing past U+10FFFF. */
        unsigned len = p[i] >= 0xf0 ? 4 : p[i] >= 0xe0 ? 3 : 2;
        uint32_t cp = p[i] & (0x7f >> len);
        if (p[i] < 0xc2 || p[i] > 0xf4 || i + len > n)
            return "is not UTF-8";
        for (unsigned k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return "is not UTF-8";
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return "is not UTF-8";
        i += len - 1;
    }
    return NULL;
}

#define NAME_RULE "UTF-8 with no control character and no '/', not starting with '-'"

const char *mms_name_fault(const char *name, size_t max)
{
    size_t at;
    return name_fault(name, max, &at);
}

int mms__name_check(const char *name)
{
    size_t at;
    const char *fault = name_fault(name, MMS__NAME_MAX, &at);
    if (!fault)
        return 0;
    return mms__fail(MMS_EINVAL, "a table name that %s (byte %zu): a table name is 1 to %u "
                     "bytes of " NAME_RULE, fault, at, MMS__NAME_MAX);
}

int mms__schema_names_check(const char *table, const mms_schema *sc, const mms_schema *stored)
{
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const char *name = sc->fields[i].name;
        size_t at;
        const char *fault = name_fault(name, MMS__FIELD_NAME_MAX, &at);
        if (!fault || (stored && field_named(stored, name)))
            continue;
        return mms__fail(MMS_EINVAL, "table %s: field %u has a name that %s (byte %zu): a "
                         "field name is 1 to %u bytes of " NAME_RULE, table, i, fault, at,
                         MMS__FIELD_NAME_MAX);
    }
    return 0;
}

int mms__schema_check(const char *table, const mms_schema *sc)
{
    if (!sc || !sc->fields || sc->nfields == 0 || sc->nfields > MMS__MAX_FIELDS)
        return mms__fail(MMS_EINVAL, "table %s: a schema needs 1 to %u fields", table,
                         MMS__MAX_FIELDS);
    if (sc->record_size == 0 || sc->record_size > MMS__MAX_RECORD)
        return mms__fail(MMS_EINVAL, "table %s: record size %u is not in 1..%u", table,
                         sc->record_size, MMS__MAX_RECORD);
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        size_t n = f->name ? strlen(f->name) : 0;
        if (n == 0 || n >= 48)
            return mms__fail(MMS_EINVAL, "table %s: field %u needs a name of 1 to 47 bytes",
                             table, i);
        if (!mms_kind_name(f->kind))
            return mms__fail(MMS_EINVAL, "table %s: field %s has unknown kind %u", table,
                             f->name, f->kind);
        uint32_t ks = mms_kind_size(f->kind);
        if (ks && f->size != ks)
            return mms__fail(MMS_EINVAL, "table %s: field %s is %u bytes, a %s is %u", table,
                             f->name, f->size, mms_kind_name(f->kind), ks);
        if (f->size == 0)
            return mms__fail(MMS_EINVAL, "table %s: field %s is 0 bytes, a %s field is 1 byte "
                             "or more", table, f->name, mms_kind_name(f->kind));
        if (f->offset > sc->record_size || f->size > sc->record_size - f->offset)
            return mms__fail(MMS_EINVAL, "table %s: field %s lies outside the record", table,
                             f->name);
        if (f->dflt && f->size > 32)
            return mms__fail(MMS_EINVAL, "table %s: field %s: defaults are for fields of up "
                             "to 32 bytes", table, f->name);
        /* A string's ref as the default would be one string in every
         * record: the first delete would free it under the others. */
        if (f->dflt && mms__kind_owns_heap(f->kind) && memcmp(f->dflt, zeros8, 8) != 0)
            return mms__fail(MMS_EINVAL, "table %s: field %s: a %s field's default can only be "
                             "null (one string would be shared by every record)", table,
                             f->name, mms_kind_name(f->kind));
        if (f->kind == MMS_KIND_REF && !f->target)
            return mms__fail(MMS_EINVAL, "table %s: ref field %s names no target table",
                             table, f->name);
        for (uint32_t j = 0; j < i; j++) {
            const mms_field *g = &sc->fields[j];
            if (strcmp(g->name, f->name) == 0)
                return mms__fail(MMS_EINVAL, "table %s: two fields are called %s", table,
                                 f->name);
            if (f->offset < g->offset + g->size && g->offset < f->offset + f->size)
                return mms__fail(MMS_EINVAL, "table %s: fields %s and %s overlap", table,
                                 g->name, f->name);
        }
    }
    return 0;
}

static const mms_field *field_named(const mms_schema *sc, const char *name)
{
    for (uint32_t i = 0; i < sc->nfields; i++)
        if (sc->fields[i].name && strcmp(sc->fields[i].name, name) == 0)
            return &sc->fields[i];
    return NULL;
}

int mms_schema_same(const mms_schema *a, const mms_schema *b, char *why, size_t cap)
{
    if (!a || !b || (a->nfields && !a->fields) || (b->nfields && !b->fields))
        return mms__fail(MMS_EINVAL, "mms_schema_same: NULL schema");
    char local[1];
    if (!why || !cap) {
        why = local;
        cap = sizeof local;
    }
    why[0] = 0;
    if (a->record_size != b->record_size) {
        snprintf(why, cap, "records of %u bytes, the other has %u", a->record_size,
                 b->record_size);
        return 0;
    }
    if (a->nfields != b->nfields) {
        snprintf(why, cap, "%u fields, the other has %u", a->nfields, b->nfields);
        return 0;
    }
    for (uint32_t i = 0; i < a->nfields; i++) {
        const mms_field *f = &a->fields[i];
        const mms_field *g = f->name ? field_named(b, f->name) : NULL;
        if (!g) {
            snprintf(why, cap, "field %s: the other has none", f->name ? f->name : "(null)");
            return 0;
        }
        const char *ft = f->kind == MMS_KIND_REF && f->target ? f->target : "";
        const char *gt = g->kind == MMS_KIND_REF && g->target ? g->target : "";
        if (g->kind != f->kind || g->offset != f->offset || g->size != f->size ||
            strcmp(ft, gt) != 0) {
            snprintf(why, cap, "field %s: %s[%u]%s%s at %u, the other has %s[%u]%s%s at %u",
                     f->name, mms__kind_label(f->kind), f->size, *ft ? " -> " : "", ft,
                     f->offset, mms__kind_label(g->kind), g->size, *gt ? " -> " : "", gt,
                     g->offset);
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Migration: one step per field of the new layout.
 * ------------------------------------------------------------------------ */
static bool is_int(int cls)
{
    return cls == 'i' || cls == 'u';
}

int mms__widen_op(unsigned a, uint32_t as, unsigned b, uint32_t bs)
{
    int ca = mms_kind_class(a), cb = mms_kind_class(b);
    if (a == b && as == bs)
        return MMS__CV_COPY;
    if (a == MMS_KIND_CHARS && b == MMS_KIND_CHARS && bs > as)
        return MMS__CV_CHARS;
    if (ca == 'i' && cb == 'i' && bs > as)
        return MMS__CV_INT;
    if (ca == 'u' && is_int(cb) && bs > as)
        return MMS__CV_INT;
    if (is_int(ca) && as <= 4 && b == MMS_KIND_F64)
        return MMS__CV_INT_F64;
    if (a == MMS_KIND_F32 && b == MMS_KIND_F64)
        return MMS__CV_F32_F64;
    return -1;
}

static int64_t read_int(const char *p, uint32_t size, bool sgn)
{
    switch (size) {
    case 1: return sgn ? (int64_t)*(const int8_t *)p : (int64_t)*(const uint8_t *)p;
    case 2: { int16_t a; uint16_t b; memcpy(&a, p, 2); memcpy(&b, p, 2); return sgn ? (int64_t)a : (int64_t)b; }
    case 4: { int32_t a; uint32_t b; memcpy(&a, p, 4); memcpy(&b, p, 4); return sgn ? (int64_t)a : (int64_t)b; }
    default: { int64_t a; memcpy(&a, p, 8); return a; }
    }
}

static void write_int(char *p, uint32_t size, int64_t v)
{
    switch (size) {
    case 1: { int8_t a = (int8_t)v; memcpy(p, &a, 1); break; }
    case 2: { int16_t a = (int16_t)v; memcpy(p, &a, 2); break; }
    case 4: { int32_t a = (int32_t)v; memcpy(p, &a, 4); break; }
    default: memcpy(p, &v, 8);
    }
}

void mms__convert(const struct mms__fplan *plan, uint32_t n, const char *src, char *dst)
{
    for (uint32_t i = 0; i < n; i++) {
        const struct mms__fplan *p = &plan[i];
        char *d = dst + p->dst_off;
        const char *o = src + p->src_off;
        switch (p->op) {
        case MMS__CV_ZERO: break; /* the destination is zeroed */
        case MMS__CV_DEFAULT: memcpy(d, p->dflt, p->dst_size); break;
        case MMS__CV_COPY: memcpy(d, o, p->dst_size); break;
        case MMS__CV_CHARS: memcpy(d, o, p->src_size); break;
        case MMS__CV_INT: write_int(d, p->dst_size, read_int(o, p->src_size, p->src_signed)); break;
        case MMS__CV_INT_F64: {
            double v = (double)read_int(o, p->src_size, p->src_signed);
            memcpy(d, &v, 8);
            break;
        }
        case MMS__CV_F32_F64: {
            float f;
            memcpy(&f, o, 4);
            double v = f;
            memcpy(d, &v, 8);
            break;
        }
        }
    }
}

/*
 * pymms_schema.c -- a table's layout as Python sees it: the kinds, the
 * numpy dtype and the Field tuples built from the C schema, the specs
 * create_table takes (a list of fields, the `mms import --schema` string,
 * a numpy structured dtype), and create_table itself; plus the small numpy
 * helpers the binding calls through the Python API.
 *
 * It owns the mapping between C kinds and numpy formats, and must never
 * guess one: a kind string is always the C name ('i8' is 8 bits, where
 * numpy would read int64); numpy types are accepted as objects only.
 */
#include "pymms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Kinds
 * ------------------------------------------------------------------------ */
static const char *const kind_names[] = {"?",   "i8",  "i16",  "i32",   "i64", "u8",
                                         "u16", "u32", "u64",  "f32",   "f64", "bool",
                                         "chars", "ref", "str", "blob"};

const char *pymms_kind_name(unsigned kind)
{
    return kind <= MMS_KIND_BLOB ? kind_names[kind] : "?";
}

unsigned pymms_kind_size(unsigned k)
{
    switch (k) {
    case MMS_KIND_I8: case MMS_KIND_U8: case MMS_KIND_BOOL: return 1;
    case MMS_KIND_I16: case MMS_KIND_U16: return 2;
    case MMS_KIND_I32: case MMS_KIND_U32: case MMS_KIND_F32: return 4;
    case MMS_KIND_CHARS: return 0;
    default: return 8;
    }
}

int pymms_kind_is_int(unsigned k)
{
    return k >= MMS_KIND_I8 && k <= MMS_KIND_U64;
}

int pymms_kind_is_heap(unsigned k)
{
    return k == MMS_KIND_STR || k == MMS_KIND_BLOB;
}

/* numpy's format for a field ("<i4", "S8", ...). The store has this
 * machine's byte order (mms_open refuses another). */
void pymms_kind_format(const mms_field *f, char *out, size_t cap)
{
    static const char *const fmt[] = {"", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
                                      "f4", "f8", "?", "",  "u8", "u8", "u8"};
    if (f->kind == MMS_KIND_CHARS)
        snprintf(out, cap, "S%u", (unsigned)f->size);
    else
        snprintf(out, cap, "%s", f->kind <= MMS_KIND_BLOB ? fmt[f->kind] : "V1");
}

/* ------------------------------------------------------------------------
 * Layout, fields and dtype
 * ------------------------------------------------------------------------ */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* A hash of everything dtype and fields are built from; never 0. */
static uint64_t layout_hash(const mms_schema *sc)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, &sc->record_size, sizeof sc->record_size);
    h = fnv(h, &sc->nfields, sizeof sc->nfields);
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        h = fnv(h, f->name, strlen(f->name) + 1);
        h = fnv(h, &f->kind, sizeof f->kind);
        h = fnv(h, &f->offset, sizeof f->offset);
        h = fnv(h, &f->size, sizeof f->size);
        if (f->target)
            h = fnv(h, f->target, strlen(f->target) + 1);
    }
    return h | 1;
}

static PyStructSequence_Field field_members[] = {
    {"name", "the field's name"},
    {"kind", "i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 bool chars ref str blob"},
    {"offset", "byte offset in the record"},
    {"size", "bytes"},
    {"target", "the table a ref field points into, else None"},
    /* Not one of the tuple's items (PyStructSequence's hidden fields: an
     * attribute, pickled with it, left out of ==, len and unpacking). */
    {"record_size", "the record size of the table it came from (None for one made by hand): "
                    "create_table keeps it for fields that fit in it"},
    {NULL, NULL}};

static PyStructSequence_Desc field_desc = {
    "mmstore.Field", "A field of a table's records: (name, kind, offset, size, target), and "
                     "record_size, its table's.",
    field_members, 5};

PyTypeObject *pymms_field_type;

int pymms_table_init_types(PyObject *m)
{
    pymms_field_type = PyStructSequence_NewType(&field_desc);
    if (!pymms_field_type)
        return -1;
    return PyModule_AddObjectRef(m, "Field", (PyObject *)pymms_field_type);
}

PyObject *pymms_str_of(const char *s)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
}

PyObject *pymms_chars_of(const char *p, uint32_t size)
{
    while (size && !p[size - 1])
        size--;
    return PyUnicode_DecodeUTF8(p, (Py_ssize_t)size, "surrogateescape");
}

PyObject *pymms_make_fields(const mms_schema *sc)
{
    PyObject *t = PyTuple_New(sc->nfields);
    for (uint32_t i = 0; t && i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        PyObject *fo = PyStructSequence_New(pymms_field_type);
        if (!fo) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, fo);
        PyObject *v[6] = {pymms_str_of(f->name), PyUnicode_FromString(pymms_kind_name(f->kind)),
                          PyLong_FromUnsignedLong(f->offset), PyLong_FromUnsignedLong(f->size),
                          f->kind == MMS_KIND_REF && f->target && f->target[0]
                              ? pymms_str_of(f->target) : Py_NewRef(Py_None),
                          PyLong_FromUnsignedLong(sc->record_size)};
        for (int k = 0; k < 6; k++) {
            if (!v[k]) {
                for (int j = 0; j < 6; j++)
                    Py_XDECREF(v[j]);
                Py_CLEAR(t);
                return NULL;
            }
        }
        for (int k = 0; k < 6; k++)
            PyStructSequence_SET_ITEM(fo, k, v[k]);
    }
    return t;
}

static PyObject *make_dtype(const mms_schema *sc)
{
    PyObject *dtype_fn = pymms_np_attr("dtype");
    if (!dtype_fn)
        return NULL;
    PyObject *names = PyList_New(sc->nfields), *formats = PyList_New(sc->nfields),
             *offsets = PyList_New(sc->nfields), *res = NULL;
    if (!names || !formats || !offsets)
        goto out;
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const mms_field *f = &sc->fields[i];
        char fmt[32];
        pymms_kind_format(f, fmt, sizeof fmt);
        PyObject *n = pymms_str_of(f->name), *fm = PyUnicode_FromString(fmt),
                 *o = PyLong_FromUnsignedLong(f->offset);
        if (!n || !fm || !o) {
            Py_XDECREF(n);
            Py_XDECREF(fm);
            Py_XDECREF(o);
            goto out;
        }
        PyList_SET_ITEM(names, i, n);
        PyList_SET_ITEM(formats, i, fm);
        PyList_SET_ITEM(offsets, i, o);
    }
    PyObject *spec = Py_BuildValue("{s:O,s:O,s:O,s:I}", "names", names, "formats", formats,
                                   "offsets", offsets, "itemsize", sc->record_size);
    if (spec) {
        res = PyObject_CallOneArg(dtype_fn, spec);
        Py_DECREF(spec);
    }
out:
    Py_XDECREF(names);
    Py_XDECREF(formats);
    Py_XDECREF(offsets);
    Py_DECREF(dtype_fn);
    return res;
}

/* The table's current layout; dtype and fields are dropped when it changed
 * (a migration, here or by another process). Inside a transaction. */
const mms_schema *pymms_table_schema(pymms_table *tb)
{
    const mms_schema *sc = mms_table_schema(tb->t);
    if (!sc) {
        if (pymms_table_there(tb) == 0)
            pymms_raise_msg(MMS_ENOENT, "table %s: no layout (out of memory, or its field "
                            "list is damaged: verify())", PyUnicode_AsUTF8(tb->name));
        return NULL;
    }
    uint64_t h = layout_hash(sc);
    if (h != tb->layout) {
        Py_CLEAR(tb->dtype);
        Py_CLEAR(tb->fields);
        tb->layout = h;
    }
    return sc;
}

PyObject *pymms_table_dtype_of(pymms_table *tb, const mms_schema *sc)
{
    if (!tb->dtype)
        tb->dtype = make_dtype(sc);
    return tb->dtype; /* borrowed */
}

const mms_field *pymms_field_named(const mms_schema *sc, PyObject *name, uint32_t *index)
{
    const char *n = pymms_utf8(name, "a field name");
    if (!n)
        return NULL;
    for (uint32_t i = 0; i < sc->nfields; i++)
        if (strcmp(sc->fields[i].name, n) == 0) {
            if (index)
                *index = i;
            return &sc->fields[i];
        }
    PyErr_SetObject(PyExc_KeyError, name);
    return NULL;
}

/* ------------------------------------------------------------------------
 * numpy, through its Python API
 * ------------------------------------------------------------------------ */
PyObject *pymms_np_call(const char *fn, const char *fmt, ...)
{
    PyObject *f = pymms_np_attr(fn);
    if (!f)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    PyObject *args = Py_VaBuildValue(fmt, ap);
    va_end(ap);
    PyObject *r = args ? PyObject_Call(f, args, NULL) : NULL;
    Py_XDECREF(args);
    Py_DECREF(f);
    return r;
}

PyObject *pymms_fast_copy(PyObject *o, const char *msg)
{
    if (PyList_Check(o))
        return PyList_GetSlice(o, 0, PY_SSIZE_T_MAX);
    return PySequence_Fast(o, msg);
}

int pymms_is_ndarray(PyObject *o)
{
    PyObject *np = pymms_numpy();
    if (!np)
        return -1;
    PyObject *t = PyObject_GetAttrString(np, "ndarray");
    if (!t)
        return -1;
    int r = PyObject_IsInstance(o, t);
    Py_DECREF(t);
    return r;
}

/* A dtype's kind ('i', 'f', 'S', ...) as a char, or 0 with an exception. */
char pymms_kind_char(PyObject *dt)
{
    PyObject *k = PyObject_GetAttrString(dt, "kind");
    const char *s = k ? PyUnicode_AsUTF8(k) : NULL;
    char c = s ? s[0] : 0;
    Py_XDECREF(k);
    return c;
}

/* The kind of an array's dtype. */
char pymms_dtype_kind(PyObject *a)
{
    PyObject *dt = PyObject_GetAttrString(a, "dtype");
    char c = dt ? pymms_kind_char(dt) : 0;
    Py_XDECREF(dt);
    return c;
}

Py_ssize_t pymms_int_attr(PyObject *o, const char *name)
{
    PyObject *v = PyObject_GetAttrString(o, name);
    if (!v)
        return -1;
    Py_ssize_t n = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return n;
}

/* ------------------------------------------------------------------------
 * create_table: specs
 * ------------------------------------------------------------------------ */
struct spec {
    mms_field *f;
    uint32_t n;
    uint32_t record_size;
    PyObject *keep; /* list: the str objects whose UTF-8 the fields point to */
};

static void spec_free(struct spec *sp)
{
    free(sp->f);
    Py_XDECREF(sp->keep);
    memset(sp, 0, sizeof *sp);
}

static const char *kept_utf8(struct spec *sp, PyObject *o, const char *what)
{
    const char *p = pymms_utf8(o, what);
    if (p && PyList_Append(sp->keep, o) < 0)
        return NULL;
    return p;
}

static unsigned kind_by_name(const char *k)
{
    for (unsigned i = MMS_KIND_I8; i <= MMS_KIND_BLOB; i++)
        if (strcmp(kind_names[i], k) == 0)
            return i;
    return 0;
}

/* A kind given as a numpy type or dtype (not as a string: 'i8' is the C
 * kind, 8 bits, where numpy would read int64). */
static unsigned kind_of_numpy(PyObject *kindobj, unsigned *size)
{
    PyObject *dt = pymms_np_call("dtype", "(O)", kindobj);
    if (!dt)
        return 0;
    char k = pymms_kind_char(dt);
    Py_ssize_t isz = pymms_int_attr(dt, "itemsize");
    PyObject *native = PyObject_GetAttrString(dt, "isnative");
    int nat = native ? PyObject_IsTrue(native) : -1;
    Py_XDECREF(native);
    Py_DECREF(dt);
    if (!k || isz < 0 || nat < 0)
        return 0;
    unsigned kind = 0;
    if (!nat)
        kind = 0;
    else if (k == 'i' || k == 'u') {
        unsigned base = k == 'i' ? MMS_KIND_I8 : MMS_KIND_U8;
        kind = isz == 1 ? base : isz == 2 ? base + 1 : isz == 4 ? base + 2 : isz == 8 ? base + 3 : 0;
    } else if (k == 'f')
        kind = isz == 4 ? MMS_KIND_F32 : isz == 8 ? MMS_KIND_F64 : 0;
    else if (k == 'b')
        kind = MMS_KIND_BOOL;
    else if (k == 'S' && isz > 0)
        kind = MMS_KIND_CHARS;
    if (!kind) {
        PyErr_Format(PyExc_TypeError, "numpy type %R has no mmstore kind (ints, floats, bool, "
                     "bytes S<n>, in this machine's byte order)", kindobj);
        return 0;
    }
    *size = kind == MMS_KIND_CHARS ? (unsigned)isz : pymms_kind_size(kind);
    return kind;
}

/* (name, kind[, size or target]) */
static int spec_field(struct spec *sp, PyObject *item, mms_field *f)
{
    if (!PyTuple_Check(item) && !PyList_Check(item)) {
        PyErr_Format(PyExc_TypeError, "a field is (name, kind[, size or target]) or a "
                     "Field, not %.100s", Py_TYPE(item)->tp_name);
        return -1;
    }
    Py_ssize_t len = PySequence_Size(item);
    if (len < 2 || len > 3) {
        PyErr_SetString(PyExc_ValueError, "a field is (name, kind[, size or target])");
        return -1;
    }
    PyObject *name = PySequence_GetItem(item, 0), *kind = PySequence_GetItem(item, 1),
             *arg = len == 3 ? PySequence_GetItem(item, 2) : NULL;
    int rc = -1;
    memset(f, 0, sizeof *f);
    if (!name || !kind || (len == 3 && !arg) || !(f->name = kept_utf8(sp, name, "a field name")))
        goto out;
    unsigned size = 0;
    if (PyUnicode_Check(kind)) {
        const char *ks = PyUnicode_AsUTF8(kind);
        if (!ks)
            goto out;
        char head[16];
        const char *colon = strchr(ks, ':');
        size_t hl = colon ? (size_t)(colon - ks) : strlen(ks);
        snprintf(head, sizeof head, "%.*s", (int)(hl < 15 ? hl : 15), ks);
        f->kind = hl < 15 ? kind_by_name(head) : 0;
        if (!f->kind) {
            PyErr_Format(PyExc_ValueError, "field %s: unknown kind %R (i8 i16 i32 i64 u8 u16 "
                         "u32 u64 f32 f64 bool chars ref str blob; chars:N, ref:TABLE)",
                         f->name, kind);
            goto out;
        }
        if (colon && f->kind == MMS_KIND_CHARS) {
            char *end;
            unsigned long v = strtoul(colon + 1, &end, 10);
            if (*end || v == 0 || v > MMS_MAX_RECORD) {
                PyErr_Format(PyExc_ValueError, "field %s: bad size in %R", f->name, kind);
                goto out;
            }
            size = (unsigned)v;
        } else if (colon && f->kind == MMS_KIND_REF) {
            PyObject *t = PyUnicode_FromString(colon + 1);
            if (!t || !(f->target = kept_utf8(sp, t, "a ref target"))) {
                Py_XDECREF(t);
                goto out;
            }
            Py_DECREF(t);
        } else if (colon) {
            PyErr_Format(PyExc_ValueError, "field %s: kind %R takes no ':'", f->name, kind);
            goto out;
        }
    } else {
        f->kind = kind_of_numpy(kind, &size);
        if (!f->kind)
            goto out;
    }
    if (arg) {
        if (f->kind == MMS_KIND_CHARS && PyIndex_Check(arg)) {
            PyObject *iv = PyNumber_Index(arg);
            unsigned long long v;
            int in = iv ? pymms_long_in(iv, 1, MMS_MAX_RECORD, &v) : -1;
            Py_XDECREF(iv);
            if (in <= 0) {
                if (in == 0)
                    PyErr_Format(PyExc_ValueError, "field %s: chars size %R is not in 1..%u",
                                 f->name, arg, MMS_MAX_RECORD);
                goto out;
            }
            size = (unsigned)v;
        } else if (f->kind == MMS_KIND_REF && PyUnicode_Check(arg)) {
            if (!(f->target = kept_utf8(sp, arg, "a ref target")))
                goto out;
        } else if (f->kind == MMS_KIND_REF && arg == Py_None) {
            /* Field.target of a ref whose target table was dropped: no
             * table, which C spells "" (accepted only for a field that
             * targets none already). */
            f->target = "";
        } else {
            PyErr_Format(PyExc_ValueError, "field %s: a third item is the size of chars or "
                         "the target table of ref, not %R", f->name, arg);
            goto out;
        }
    }
    if (f->kind == MMS_KIND_CHARS && !size) {
        PyErr_Format(PyExc_ValueError, "field %s: chars needs a size: (name, 'chars', N)",
                     f->name);
        goto out;
    }
    if (f->kind == MMS_KIND_REF && !f->target) {
        PyErr_Format(PyExc_ValueError, "field %s: ref needs a target table: (name, 'ref', "
                     "'table')", f->name);
        goto out;
    }
    f->size = f->kind == MMS_KIND_CHARS ? size : pymms_kind_size(f->kind);
    rc = 0;
out:
    Py_XDECREF(name);
    Py_XDECREF(kind);
    Py_XDECREF(arg);
    return rc;
}

/* A Field (of Table.fields): (name, kind, offset, size, target), taken as
 * the item (name, kind[, size or target]) its kind needs, at its own
 * offset; *record_size: its table's record size (Field.record_size), 0 for
 * none. One made by hand may hold anything: its size and target must be
 * those the item gives. */
static int spec_field_given(struct spec *sp, PyObject *fo, mms_field *f, uint64_t *record_size)
{
    PyObject *name = PyStructSequence_GetItem(fo, 0), *kind = PyStructSequence_GetItem(fo, 1),
             *off = PyStructSequence_GetItem(fo, 2), *size = PyStructSequence_GetItem(fo, 3),
             *target = PyStructSequence_GetItem(fo, 4),
             *rs = PyStructSequence_GetItem(fo, 5); /* borrowed; NULL if never set */
    int chars = PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "chars") == 0;
    int ref = PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "ref") == 0;
    PyObject *item = chars ? PyTuple_Pack(3, name, kind, size)
                     : ref ? PyTuple_Pack(3, name, kind, target) : PyTuple_Pack(2, name, kind);
    int r = item ? spec_field(sp, item, f) : -1;
    Py_XDECREF(item);
    if (r < 0)
        return -1;
    char what[96];
    unsigned long long at, bytes;
    snprintf(what, sizeof what, "field %s: offset", f->name);
    if (pymms_int_arg(off, what, 0, MMS_MAX_RECORD, &at) < 0)
        return -1;
    snprintf(what, sizeof what, "field %s: size", f->name);
    if (pymms_int_arg(size, what, 1, MMS_MAX_RECORD, &bytes) < 0)
        return -1;
    if (bytes != f->size) {
        PyErr_Format(PyExc_ValueError, "field %s: a %s field is %u bytes, not %R", f->name,
                     pymms_kind_name(f->kind), (unsigned)f->size, size);
        return -1;
    }
    if (!ref && target != Py_None) {
        PyErr_Format(PyExc_ValueError, "field %s: only a ref field has a target, not %R",
                     f->name, target);
        return -1;
    }
    unsigned long long carried = 0;
    snprintf(what, sizeof what, "field %s: record_size", f->name);
    if (rs && rs != Py_None && pymms_int_arg(rs, what, 1, MMS_MAX_RECORD, &carried) < 0)
        return -1;
    f->offset = (uint32_t)at;
    *record_size = carried;
    return 0;
}

/* A list of fields laid out as a C struct: each (name, kind[, size or
 * target]) after the one before it, aligned to its size; a Field
 * (Table.fields) where its offset says, as a dtype's field. The record
 * size is the one the Fields carry (their table's, the largest if they
 * came from several) when every field fits in it, so a copy of a layout
 * keeps the source's trailing padding, or its lack of it (a packed
 * dtype's); else the smallest that holds them all, aligned as a C
 * struct's. */
static int spec_from_list(struct spec *sp, PyObject *list)
{
    PyObject *seq = pymms_fast_copy(list, "a schema is a list of fields");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > (Py_ssize_t)MMS_MAX_FIELDS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "a schema has 1 to %u fields", MMS_MAX_FIELDS);
        return -1;
    }
    sp->f = calloc((size_t)n, sizeof *sp->f);
    if (!sp->f) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    uint64_t off = 0, end = 0, maxalign = 1, carried = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        mms_field *f = &sp->f[i];
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        int given = PyObject_TypeCheck(item, pymms_field_type);
        uint64_t rs = 0;
        if ((given ? spec_field_given(sp, item, f, &rs) : spec_field(sp, item, f)) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        if (rs > carried)
            carried = rs;
        uint64_t align = f->kind == MMS_KIND_CHARS ? 1 : f->size;
        if (!given)
            f->offset = (uint32_t)((off + align - 1) / align * align);
        off = (uint64_t)f->offset + f->size;
        if (off > end)
            end = off;
        if (align > maxalign)
            maxalign = align;
        if (end > MMS_MAX_RECORD) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "records would be larger than %u bytes",
                         MMS_MAX_RECORD);
            return -1;
        }
    }
    Py_DECREF(seq);
    sp->n = (uint32_t)n;
    sp->record_size = end <= carried ? (uint32_t)carried
                                     : (uint32_t)((end + maxalign - 1) / maxalign * maxalign);
    return 0;
}

/* "a:i64, b:chars:8, c:ref:other" (the --schema syntax of mms import) ->
 * a list of (name, kind). */
static PyObject *spec_split(PyObject *s)
{
    PyObject *sep = PyUnicode_FromString(",");
    PyObject *parts = sep ? PyUnicode_Split(s, sep, -1) : NULL;
    Py_XDECREF(sep);
    if (!parts)
        return NULL;
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out && i < PyList_GET_SIZE(parts); i++) {
        PyObject *p = PyObject_CallMethod(PyList_GET_ITEM(parts, i), "strip", NULL);
        Py_ssize_t colon = p ? PyUnicode_FindChar(p, ':', 0, PyUnicode_GET_LENGTH(p), 1) : -2;
        if (colon < 0) {
            if (colon == -1)
                PyErr_Format(PyExc_ValueError, "schema item %R is not name:kind", p);
            Py_XDECREF(p);
            Py_CLEAR(out);
            break;
        }
        PyObject *name = PyUnicode_Substring(p, 0, colon);
        PyObject *kind = PyUnicode_Substring(p, colon + 1, PyUnicode_GET_LENGTH(p));
        PyObject *t = name && kind ? PyTuple_Pack(2, name, kind) : NULL;
        if (!t || PyList_Append(out, t) < 0)
            Py_CLEAR(out);
        Py_XDECREF(t);
        Py_XDECREF(name);
        Py_XDECREF(kind);
        Py_DECREF(p);
    }
    Py_DECREF(parts);
    return out;
}

/* A numpy structured dtype: its offsets and itemsize are kept. */
static int spec_from_dtype(struct spec *sp, PyObject *dt, PyObject *names)
{
    PyObject *seq = PySequence_Fast(names, "dtype.names");
    PyObject *fields = seq ? PyObject_GetAttrString(dt, "fields") : NULL;
    Py_ssize_t itemsize = fields ? pymms_int_attr(dt, "itemsize") : -1;
    int rc = -1;
    /* numpy keeps itemsize in a C int: past 2 GiB it is negative, with no
     * exception (the range check below refuses it). */
    if (!seq || !fields || (itemsize < 0 && PyErr_Occurred()))
        goto out;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > (Py_ssize_t)MMS_MAX_FIELDS || itemsize < 1 ||
        itemsize > (Py_ssize_t)MMS_MAX_RECORD) {
        PyErr_SetString(PyExc_ValueError, "the dtype needs 1 to 1024 fields and an itemsize "
                                          "of at most 16 MiB");
        goto out;
    }
    sp->f = calloc((size_t)n, sizeof *sp->f);
    if (!sp->f) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *nm = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *info = PyObject_GetItem(fields, nm); /* (dtype, offset[, title]) */
        mms_field *f = &sp->f[i];
        unsigned size = 0;
        if (!info || !(f->name = kept_utf8(sp, nm, "a field name"))) {
            Py_XDECREF(info);
            goto out;
        }
        PyObject *fdt = PySequence_GetItem(info, 0), *off = PySequence_GetItem(info, 1);
        Py_DECREF(info);
        PyObject *sub = fdt ? PyObject_GetAttrString(fdt, "subdtype") : NULL;
        if (sub && sub != Py_None) {
            PyErr_Format(PyExc_TypeError, "field %s: sub-arrays have no mmstore kind", f->name);
            Py_CLEAR(sub);
        }
        if (sub)
            f->kind = kind_of_numpy(fdt, &size);
        long o = off ? PyLong_AsLong(off) : -1;
        Py_XDECREF(sub);
        Py_XDECREF(fdt);
        Py_XDECREF(off);
        if (!f->kind || o < 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "field %s: bad offset", f->name);
            goto out;
        }
        f->size = size;
        f->offset = (uint32_t)o;
    }
    sp->n = (uint32_t)n;
    sp->record_size = (uint32_t)itemsize;
    rc = 0;
out:
    Py_XDECREF(seq);
    Py_XDECREF(fields);
    return rc;
}

static int spec_parse(struct spec *sp, PyObject *spec)
{
    memset(sp, 0, sizeof *sp);
    if (!(sp->keep = PyList_New(0)))
        return -1;
    if (PyUnicode_Check(spec)) {
        PyObject *list = spec_split(spec);
        if (!list)
            return -1;
        int r = spec_from_list(sp, list);
        Py_DECREF(list);
        return r;
    }
    PyObject *names = PyObject_GetAttrString(spec, "names");
    if (names && names != Py_None && PyObject_HasAttrString(spec, "fields")) {
        int r = spec_from_dtype(sp, spec, names);
        Py_DECREF(names);
        return r;
    }
    Py_XDECREF(names);
    PyErr_Clear();
    if (PyObject_HasAttrString(spec, "names")) {
        PyErr_SetString(PyExc_TypeError, "a dtype as a schema must be structured (have fields)");
        return -1;
    }
    return spec_from_list(sp, spec);
}

/* Same layout as mms_table_open compares it: fields by name, kind, offset
 * and size (and ref target), and the record size. */
static int same_layout(const mms_schema *a, const mms_schema *b)
{
    if (a->record_size != b->record_size || a->nfields != b->nfields)
        return 0;
    for (uint32_t i = 0; i < a->nfields; i++) {
        const mms_field *x = &a->fields[i], *y = NULL;
        for (uint32_t j = 0; j < b->nfields && !y; j++)
            if (strcmp(x->name, b->fields[j].name) == 0)
                y = &b->fields[j];
        if (!y || x->kind != y->kind || x->offset != y->offset || x->size != y->size)
            return 0;
        if (x->kind == MMS_KIND_REF &&
            strcmp(x->target ? x->target : "", y->target ? y->target : "") != 0)
            return 0;
    }
    return 1;
}

/* The tool's --schema text of a parsed spec, or NULL (no exception) when
 * it cannot spell a name or target (no quoting: "p:i8,q" of i64 would be
 * two fields, p (i8) and q (i64)). */
static PyObject *spec_text(const struct spec *sp)
{
    PyObject *parts = PyList_New(0);
    for (uint32_t i = 0; parts && i < sp->n; i++) {
        const mms_field *f = &sp->f[i];
        if (strpbrk(f->name, ",:") || (f->kind == MMS_KIND_REF && strpbrk(f->target, ",:"))) {
            Py_DECREF(parts);
            return NULL;
        }
        PyObject *p = f->kind == MMS_KIND_CHARS ? PyUnicode_FromFormat("%s:chars:%u", f->name,
                                                                       (unsigned)f->size)
                      : f->kind == MMS_KIND_REF ? PyUnicode_FromFormat("%s:ref:%s", f->name,
                                                                       f->target)
                      : PyUnicode_FromFormat("%s:%s", f->name, pymms_kind_name(f->kind));
        if (!p || PyList_Append(parts, p) < 0)
            Py_CLEAR(parts);
        Py_XDECREF(p);
    }
    if (!parts)
        return NULL;
    PyObject *sep = PyUnicode_FromString(",");
    PyObject *s = sep ? PyUnicode_Join(sep, parts) : NULL;
    Py_XDECREF(sep);
    Py_DECREF(parts);
    return s;
}

int pymms_import_schema(PyObject *spec, PyObject **fields, PyObject **text)
{
    *fields = *text = NULL;
    struct spec sp, again;
    memset(&again, 0, sizeof again);
    if (spec_parse(&sp, spec) < 0) {
        spec_free(&sp);
        return -1;
    }
    mms_schema sc = {sp.record_size, sp.n, sp.f};
    PyObject *t = pymms_make_fields(&sc);
    if (!t)
        goto fail;
    /* The text, when the tool lays out from it the records the spec says:
     * the tool places fields as a C struct, with no offset or record size
     * of its own (a Field's, a dtype's). */
    *text = spec_text(&sp);
    if (PyErr_Occurred())
        goto fail;
    if (*text) {
        int r = spec_parse(&again, *text);
        mms_schema laid = {again.record_size, again.n, again.f};
        if (r < 0 || !same_layout(&sc, &laid))
            Py_CLEAR(*text);
        PyErr_Clear(); /* a text that does not parse back is not the tool's either */
    }
    *fields = t;
    spec_free(&sp);
    spec_free(&again);
    return 0;
fail:
    Py_XDECREF(t);
    Py_CLEAR(*text);
    spec_free(&sp);
    spec_free(&again);
    return -1;
}

PyObject *pymms_create_table(pymms_store *st, PyObject *name, PyObject *specobj, int migrate)
{
    const char *cname = pymms_utf8(name, "a table name");
    if (!cname)
        return NULL;
    struct spec sp;
    int bad;
    PYMMS_CONVERTING(st, bad = spec_parse(&sp, specobj) < 0);
    if (bad) {
        spec_free(&sp);
        return NULL;
    }
    mms_schema sc = {sp.record_size, sp.n, sp.f};
    PyObject *res = NULL;
    mms_table *t = NULL;
    pymms_table *old = NULL; /* a new reference, when the table exists */
    int exists = mms_table_find(st->s, cname, &t) == 0;
    if (exists) {
        if (!(old = (pymms_table *)pymms_store_table(st, name)))
            goto out;
        const mms_schema *cur = mms_table_schema(t);
        if (cur && same_layout(cur, &sc)) {
            res = Py_NewRef((PyObject *)old);
            goto out;
        }
        if (!migrate) {
            char why[256] = "";
            if (cur)
                mms_schema_same(cur, &sc, why, sizeof why);
            pymms_raise_msg(MMS_ESCHEMA, "table %s exists with another layout (%s)", cname,
                            cur ? why : "unreadable");
            goto out;
        }
        /* R4: a migration replaces the region's file under its arrays,
         * and a writable one's stores would then go into the new layout. */
        Py_ssize_t here = old->nwviews,
                   elsewhere = pymms_views_elsewhere(st, pymms_region_of(st, cname));
        if (here + elsewhere > 0) {
            PyErr_Format(PyExc_BufferError, "create_table: migrating table %U to a new layout "
                         "while %zd writable arrays over it are alive%s (their stores would "
                         "land in the new layout); delete them first", name,
                         here + elsewhere, elsewhere ? " (taken through another Store of "
                         "this process open on this store)" : "");
            goto out;
        }
    }
    /* A Table builds its records from the stored layout in each
     * transaction: its handle follows that layout (mms_table_find), not
     * the one opened here, so appends go on after another handle migrated
     * the table. */
    int r = mms_table_open(st->s, cname, &sc, MMS_TABLE_CREATE, &t);
    if (!r)
        r = mms_table_find(st->s, cname, &t);
    if (r) {
        pymms_raise(r, exists ? "create_table (migrating)" : "create_table");
        goto out;
    }
    if (exists) {
        if (pymms_mark(old, &old->migrated) < 0)
            goto out;
        old->t = t;
        old->layout = 0;
        res = Py_NewRef((PyObject *)old);
        goto out;
    }
    /* Another handle dropped a table of this name that a Table here still
     * holds: the C library gives the new one that handle (by name), and
     * one Table per handle keeps the R4 and R5 marks in one place. */
    pymms_table *again = pymms_table_of_handle(st, t);
    if (again) {
        again->migrated = 0;
        again->layout = 0;
        res = (PyObject *)again;
    } else {
        res = pymms_table_new(st, t, name);
    }
    if (res && (pymms_mark((pymms_table *)res, &((pymms_table *)res)->created) < 0 ||
                pymms_cache_put(st, name, res) < 0))
        Py_CLEAR(res);
out:
    Py_XDECREF((PyObject *)old);
    spec_free(&sp);
    return res;
}


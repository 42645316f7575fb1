/*
 * pymms_table.c -- the Table object: a table's schema as numpy sees it
 * (dtype, fields), its records as arrays (through pymms_view.c), single
 * records as dicts, and appends, bulk extends and deletes; create_table's
 * spec parsing.
 *
 * It owns the translation between the C layout and numpy: kinds to dtypes
 * and back, values to record bytes and back. It must never hand out an
 * array the rules R4/R5 of pymms.h forbid, never write a record outside a
 * write transaction, and never leave half-converted input in the store: an
 * input is checked whole before the first record is appended, and a failure
 * after that dooms the transaction (it aborts instead of committing).
 */
#include "pymms.h"

#include <math.h>
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

static unsigned kind_size(unsigned k)
{
    switch (k) {
    case MMS_KIND_I8: case MMS_KIND_U8: case MMS_KIND_BOOL: return 1;
    case MMS_KIND_I16: case MMS_KIND_U16: return 2;
    case MMS_KIND_I32: case MMS_KIND_U32: case MMS_KIND_F32: return 4;
    case MMS_KIND_CHARS: return 0;
    default: return 8;
    }
}

static int kind_is_int(unsigned k)
{
    return k >= MMS_KIND_I8 && k <= MMS_KIND_U64;
}

static int kind_is_heap(unsigned k)
{
    return k == MMS_KIND_STR || k == MMS_KIND_BLOB;
}

/* numpy's format for a field ("<i4", "S8", ...). The store has this
 * machine's byte order (mms_open refuses another). */
static void kind_format(const mms_field *f, char *out, size_t cap)
{
    static const char *const fmt[] = {"", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
                                      "f4", "f8", "?", "",  "u8", "u8", "u8"};
    if (f->kind == MMS_KIND_CHARS)
        snprintf(out, cap, "S%u", (unsigned)f->size);
    else
        snprintf(out, cap, "%s", f->kind <= MMS_KIND_BLOB ? fmt[f->kind] : "V1");
}

/* A str without embedded NULs, as UTF-8 (owned by o). */
static const char *utf8_arg(PyObject *o, const char *what)
{
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(o, &n);
    if (p && (Py_ssize_t)strlen(p) != n) {
        PyErr_Format(PyExc_ValueError, "%s must not contain NUL characters", what);
        return NULL;
    }
    return p;
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
    {NULL, NULL}};

static PyStructSequence_Desc field_desc = {
    "mmstore.Field", "A field of a table's records: (name, kind, offset, size, target).",
    field_members, 5};

PyTypeObject *pymms_field_type;

int pymms_table_init_types(PyObject *m)
{
    pymms_field_type = PyStructSequence_NewType(&field_desc);
    if (!pymms_field_type)
        return -1;
    return PyModule_AddObjectRef(m, "Field", (PyObject *)pymms_field_type);
}

static PyObject *str_of(const char *s)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
}

static PyObject *make_fields(const mms_schema *sc)
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
        PyObject *v[5] = {str_of(f->name), PyUnicode_FromString(pymms_kind_name(f->kind)),
                          PyLong_FromUnsignedLong(f->offset), PyLong_FromUnsignedLong(f->size),
                          f->kind == MMS_KIND_REF && f->target && f->target[0]
                              ? str_of(f->target) : Py_NewRef(Py_None)};
        for (int k = 0; k < 5; k++) {
            if (!v[k]) {
                for (int j = 0; j < 5; j++)
                    Py_XDECREF(v[j]);
                Py_CLEAR(t);
                return NULL;
            }
        }
        for (int k = 0; k < 5; k++)
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
        kind_format(f, fmt, sizeof fmt);
        PyObject *n = str_of(f->name), *fm = PyUnicode_FromString(fmt),
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
static const mms_schema *table_schema(pymms_table *tb)
{
    const mms_schema *sc = mms_table_schema(tb->t);
    if (!sc) {
        pymms_raise_msg(MMS_ENOENT, "table %U: no layout (gone, or out of memory)", tb->name);
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

static PyObject *table_dtype_of(pymms_table *tb, const mms_schema *sc)
{
    if (!tb->dtype)
        tb->dtype = make_dtype(sc);
    return tb->dtype; /* borrowed */
}

static const mms_field *field_named(const mms_schema *sc, PyObject *name, uint32_t *index)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "a field name is a str, not %.100s", Py_TYPE(name)->tp_name);
        return NULL;
    }
    const char *n = PyUnicode_AsUTF8(name);
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
 * The object
 * ------------------------------------------------------------------------ */
PyObject *pymms_table_new(pymms_store *st, mms_table *t, PyObject *name)
{
    pymms_table *tb = PyObject_GC_New(pymms_table, &pymms_table_type);
    if (!tb)
        return NULL;
    tb->store = (pymms_store *)Py_NewRef((PyObject *)st);
    tb->t = t;
    tb->name = Py_NewRef(name);
    tb->layout = 0;
    tb->dtype = NULL;
    tb->fields = NULL;
    tb->created = tb->migrated = tb->appended = 0;
    tb->nviews = 0;
    tb->dead = 0;
    PyObject_GC_Track(tb);
    return (PyObject *)tb;
}

static int table_traverse(pymms_table *tb, visitproc visit, void *arg)
{
    Py_VISIT(tb->store);
    return 0;
}

static int table_clear(pymms_table *tb)
{
    Py_CLEAR(tb->store);
    return 0;
}

static void table_dealloc(pymms_table *tb)
{
    PyObject_GC_UnTrack(tb);
    Py_CLEAR(tb->store);
    Py_CLEAR(tb->name);
    Py_CLEAR(tb->dtype);
    Py_CLEAR(tb->fields);
    Py_TYPE(tb)->tp_free((PyObject *)tb);
}

/* R1, closed store, aborted creation. */
static int table_check(pymms_table *tb)
{
    if (!tb->store) {
        PyErr_SetString(PyExc_ValueError, "the table's store is gone");
        return -1;
    }
    if (pymms_check(tb->store) < 0)
        return -1;
    if (tb->dead) {
        pymms_raise_msg(MMS_ENOENT, "table %U: the transaction that created it was aborted",
                        tb->name);
        return -1;
    }
    return 0;
}

/* Python index (negative counts from the end) -> slot, IndexError if out. */
static int index_arg(PyObject *o, uint64_t slots, uint64_t *out)
{
    PyObject *iv = PyNumber_Index(o);
    if (!iv)
        return -1;
    int ovf = 0;
    long long i = PyLong_AsLongLongAndOverflow(iv, &ovf);
    Py_DECREF(iv);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (!ovf && i < 0)
        i += (long long)slots;
    if (ovf || i < 0 || (uint64_t)i >= slots) {
        PyErr_Format(PyExc_IndexError, "record index %R out of range (%llu slots)", o,
                     (unsigned long long)slots);
        return -1;
    }
    *out = (uint64_t)i;
    return 0;
}

/* ------------------------------------------------------------------------
 * Reading records
 * ------------------------------------------------------------------------ */
/* The name of the table in region id, or NULL (no exception). */
static PyObject *region_table(pymms_store *st, unsigned region)
{
    size_t n = 0;
    if (mms_tables(st->s, NULL, 0, &n) || !n)
        return NULL;
    mms_table_info *ti = calloc(n, sizeof *ti);
    if (!ti)
        return NULL;
    size_t cap = n;
    PyObject *res = NULL;
    if (mms_tables(st->s, ti, cap, &n) == 0)
        for (size_t i = 0; i < n && i < cap; i++)
            if (ti[i].region == region) {
                res = str_of(ti[i].name);
                break;
            }
    free(ti);
    return res;
}

static PyObject *heap_value(pymms_store *st, mms_ref ref, unsigned kind, PyObject *tname,
                            const char *field, uint64_t i)
{
    if (!ref)
        Py_RETURN_NONE;
    size_t len;
    const char *p = mms_str_get(st->s, ref, &len);
    if (!p)
        return pymms_raise_msg(MMS_EBADREF, "table %U record %llu field %s: ref 0x%llx is not a "
                               "string of this store", tname, (unsigned long long)i, field,
                               (unsigned long long)ref);
    if (kind == MMS_KIND_BLOB)
        return PyBytes_FromStringAndSize(p, (Py_ssize_t)len);
    return PyUnicode_DecodeUTF8(p, (Py_ssize_t)len, "surrogateescape");
}

/* One field of a record as a Python value. */
static PyObject *field_value(pymms_table *tb, const mms_field *f, const char *rec, uint64_t i)
{
    const char *p = rec + f->offset;
    union { int8_t i8; int16_t i16; int32_t i32; int64_t i64; uint8_t u8; uint16_t u16;
            uint32_t u32; uint64_t u64; float f32; double f64; } v;
    memcpy(&v, p, kind_size(f->kind) ? kind_size(f->kind) : 1);
    switch (f->kind) {
    case MMS_KIND_I8: return PyLong_FromLong(v.i8);
    case MMS_KIND_I16: return PyLong_FromLong(v.i16);
    case MMS_KIND_I32: return PyLong_FromLong(v.i32);
    case MMS_KIND_I64: return PyLong_FromLongLong(v.i64);
    case MMS_KIND_U8: return PyLong_FromUnsignedLong(v.u8);
    case MMS_KIND_U16: return PyLong_FromUnsignedLong(v.u16);
    case MMS_KIND_U32: return PyLong_FromUnsignedLong(v.u32);
    case MMS_KIND_U64: return PyLong_FromUnsignedLongLong(v.u64);
    case MMS_KIND_F32: return PyFloat_FromDouble(v.f32);
    case MMS_KIND_F64: return PyFloat_FromDouble(v.f64);
    case MMS_KIND_BOOL: return PyBool_FromLong(v.u8 != 0);
    case MMS_KIND_CHARS: return PyUnicode_DecodeUTF8(p, (Py_ssize_t)strnlen(p, f->size),
                                                     "surrogateescape");
    case MMS_KIND_REF: {
        if (!v.u64)
            Py_RETURN_NONE;
        PyObject *name = region_table(tb->store, MMS_REF_REGION(v.u64));
        if (!name) {
            if (PyErr_Occurred())
                return NULL;
            name = Py_NewRef(Py_None); /* not a table's region: say so, do not fail */
        }
        PyObject *r = Py_BuildValue("(NK)", name, (unsigned long long)MMS_REF_SLOT(v.u64));
        return r;
    }
    case MMS_KIND_STR:
    case MMS_KIND_BLOB: {
        PyObject *res;
        res = heap_value(tb->store, v.u64, f->kind, tb->name, f->name, i);
        return res;
    }
    default:
        return PyBytes_FromStringAndSize(p, f->size);
    }
}

PyDoc_STRVAR(get_doc,
"get(i) -> dict: record i, field name -> value. Strings decoded (chars and str\n"
"as str, blob as bytes, None for none); refs as (table name, index), or None.\n"
"Negative i counts from the end; IndexError if out of range or deleted.");

static PyObject *table_get(pymms_table *tb, PyObject *arg)
{
    if (table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *d = NULL;
    uint64_t i;
    const mms_schema *sc = table_schema(tb);
    if (!sc || index_arg(arg, mms_table_slots(tb->t), &i) < 0)
        goto out;
    const char *rec = mms_table_get(tb->t, i);
    if (!rec || !mms_table_live(tb->t, i)) {
        PyErr_Format(PyExc_IndexError, "table %U: record %llu is deleted", tb->name,
                     (unsigned long long)i);
        goto out;
    }
    d = PyDict_New();
    for (uint32_t k = 0; d && k < sc->nfields; k++) {
        PyObject *v = field_value(tb, &sc->fields[k], rec, i);
        if (!v || PyDict_SetItemString(d, sc->fields[k].name, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
out:
    if (pymms_scope_exit(tb->store, own, d ? 0 : -1) < 0)
        Py_CLEAR(d);
    return d;
}

PyDoc_STRVAR(str_doc,
"str(i, field) -> str (bytes for a blob field), or None: a string of record i,\n"
"decoded from the heap.");

static PyObject *table_str(pymms_table *tb, PyObject *args)
{
    PyObject *iarg, *fname;
    if (!PyArg_ParseTuple(args, "OO:str", &iarg, &fname) || table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *res = NULL;
    uint64_t i;
    const mms_schema *sc = table_schema(tb);
    const mms_field *f = sc ? field_named(sc, fname, NULL) : NULL;
    if (!f || index_arg(iarg, mms_table_slots(tb->t), &i) < 0)
        goto out;
    if (!kind_is_heap(f->kind)) {
        PyErr_Format(PyExc_TypeError, "field %s is a %s, not a str or blob", f->name,
                     pymms_kind_name(f->kind));
        goto out;
    }
    const char *rec = mms_table_get(tb->t, i);
    if (!rec || !mms_table_live(tb->t, i)) {
        PyErr_Format(PyExc_IndexError, "table %U: record %llu is deleted", tb->name,
                     (unsigned long long)i);
        goto out;
    }
    mms_ref r;
    memcpy(&r, rec + f->offset, 8);
    res = heap_value(tb->store, r, f->kind, tb->name, f->name, i);
out:
    if (pymms_scope_exit(tb->store, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
}

PyDoc_STRVAR(ref_doc,
"ref(i) -> int: the ref of record i (region << 48 | i), as a ref field holds it.");

static PyObject *table_ref(pymms_table *tb, PyObject *arg)
{
    if (table_check(tb) < 0)
        return NULL;
    unsigned long long i = PyLong_AsUnsignedLongLong(arg);
    if (i == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (i > MMS_SLOT_MASK) {
        PyErr_SetString(PyExc_IndexError, "ref: index past 2**48");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(mms_table_ref(tb->t, i));
}

/* R4, R5: may this table be viewed now? */
static int view_allowed(pymms_table *tb, int writable)
{
    pymms_store *st = tb->store;
    if (writable) {
        if (pymms_need_write(st, "array(writable=True)") < 0)
            return -1;
        if (st->guard) {
            pymms_raise_msg(MMS_ENOTSUP, "writable arrays need the guard off, and MMS_GUARD=1 "
                            "in the environment turned it on (a stray store would kill the "
                            "interpreter)");
            return -1;
        }
    }
    if (st->state == PYMMS_WRITE) {
        if (tb->created == st->serial || tb->migrated == st->serial) {
            PyErr_Format(PyExc_BufferError, "table %U was %s in this write transaction: an "
                         "abort would unmap what an array points to; take arrays after the "
                         "commit (extend and append work now)", tb->name,
                         tb->created == st->serial ? "created" : "migrated");
            return -1;
        }
        if (writable && tb->appended == st->serial) {
            PyErr_Format(PyExc_BufferError, "table %U was appended to in this write "
                         "transaction: its new records are fresh space until the commit, and a "
                         "store through the array after an abort could reach another "
                         "process's records; take a writable array after the commit, or fill "
                         "new records with extend", tb->name);
            return -1;
        }
    }
    return 0;
}

/* Every slot as a structured array (inside a transaction). checked: the
 * R4/R5 checks were made (internal copies skip them: their array dies
 * before the call returns). */
static PyObject *records_array(pymms_table *tb, int writable)
{
    const mms_schema *sc = table_schema(tb);
    if (!sc)
        return NULL;
    PyObject *dtype = table_dtype_of(tb, sc);
    if (!dtype)
        return NULL;
    uint64_t slots = mms_table_slots(tb->t);
    char *base = mms_table_array(tb->t);
    /* Every slot must be mapped (R2 makes it so; check, never assume). */
    if (slots && (!base || mms_table_get(tb->t, slots - 1) == NULL))
        return pymms_raise_msg(MMS_ERANGE, "table %U: %llu slots but not all mapped", tb->name,
                               (unsigned long long)slots);
    return pymms_array(tb, base, slots, sc->record_size, dtype, writable);
}

PyDoc_STRVAR(array_doc,
"array(writable=False) -> numpy structured array of every slot (deleted ones\n"
"included: see live()), over the mapped file, no copy. Read-only, and it cannot\n"
"be made writable. writable=True (in a write transaction) makes plain numpy\n"
"stores part of the transaction; see help(mmstore) for how long each stays\n"
"valid.");

static PyObject *table_array(pymms_table *tb, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"writable", NULL};
    int writable = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:array", kwlist, &writable) ||
        table_check(tb) < 0 || view_allowed(tb, writable) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *a = records_array(tb, writable);
    if (pymms_scope_exit(tb->store, own, a ? 0 : -1) < 0)
        Py_CLEAR(a);
    return a;
}

PyDoc_STRVAR(live_doc,
"live() -> numpy bool array, one per slot: True where the record is live\n"
"(a copy). a[t.live()] is the live records.");

static PyObject *live_mask(pymms_table *tb)
{
    uint64_t slots = mms_table_slots(tb->t), nbits = 0;
    const uint64_t *bits = mms_table_deleted(tb->t, &nbits);
    PyObject *ones = pymms_np_attr("ones");
    if (!ones)
        return NULL;
    PyObject *m = PyObject_CallFunction(ones, "Ks", (unsigned long long)slots, "?");
    Py_DECREF(ones);
    if (!m || !bits)
        return m;
    Py_buffer b;
    if (PyObject_GetBuffer(m, &b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    unsigned char *p = b.buf;
    uint64_t n = nbits < slots ? nbits : slots;
    for (uint64_t w = 0; w * 64 < n; w++) {
        uint64_t word = bits[w];
        if (!word)
            continue;
        for (uint64_t i = w * 64; i < n && i < w * 64 + 64; i++)
            p[i] = !(word >> (i % 64) & 1);
    }
    PyBuffer_Release(&b);
    return m;
}

static PyObject *table_live(pymms_table *tb, PyObject *unused)
{
    (void)unused;
    if (table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *m = live_mask(tb);
    if (pymms_scope_exit(tb->store, own, m ? 0 : -1) < 0)
        Py_CLEAR(m);
    return m;
}

/* The strings of a str/blob field, for every slot (or, with mask, the live
 * ones), as a list. */
static PyObject *heap_column(pymms_table *tb, const mms_field *f, uint32_t rs, int live_only)
{
    uint64_t slots = mms_table_slots(tb->t);
    const char *base = mms_table_array(tb->t);
    PyObject *list = PyList_New(0);
    for (uint64_t i = 0; list && i < slots; i++) {
        if (live_only && !mms_table_live(tb->t, i))
            continue;
        mms_ref r;
        memcpy(&r, base + i * rs + f->offset, 8);
        PyObject *v = heap_value(tb->store, r, f->kind, tb->name, f->name, i);
        if (!v || PyList_Append(list, v) < 0)
            Py_CLEAR(list);
        Py_XDECREF(v);
    }
    return list;
}

PyDoc_STRVAR(column_doc,
"column(name) -> a numeric, bool, chars or ref field as a read-only numpy view\n"
"of every slot (refs as uint64: region << 48 | index; index = ref &\n"
"mmstore.SLOT_MASK); a str or blob field as a list of str/bytes (None where\n"
"there is none), one per slot.");

static PyObject *table_column(pymms_table *tb, PyObject *name)
{
    if (table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *res = NULL;
    const mms_schema *sc = table_schema(tb);
    const mms_field *f = sc ? field_named(sc, name, NULL) : NULL;
    if (!f)
        goto out;
    if (kind_is_heap(f->kind)) {
        res = heap_column(tb, f, sc->record_size, 0);
    } else if (view_allowed(tb, 0) == 0) {
        PyObject *a = records_array(tb, 0);
        if (a) {
            res = PyObject_GetItem(a, name);
            Py_DECREF(a);
        }
    }
out:
    if (pymms_scope_exit(tb->store, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
}

static Py_ssize_t table_len(pymms_table *tb)
{
    if (table_check(tb) < 0)
        return -1;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return -1;
    uint64_t n = mms_table_count(tb->t);
    if (pymms_scope_exit(tb->store, own, 0) < 0)
        return -1;
    return (Py_ssize_t)n;
}

/* ------------------------------------------------------------------------
 * Values -> record bytes
 * ------------------------------------------------------------------------ */
static int int_bounds(unsigned kind, long long *lo, unsigned long long *hi)
{
    switch (kind) {
    case MMS_KIND_I8: *lo = INT8_MIN, *hi = INT8_MAX; break;
    case MMS_KIND_I16: *lo = INT16_MIN, *hi = INT16_MAX; break;
    case MMS_KIND_I32: *lo = INT32_MIN, *hi = INT32_MAX; break;
    case MMS_KIND_I64: *lo = INT64_MIN, *hi = INT64_MAX; break;
    case MMS_KIND_U8: *lo = 0, *hi = UINT8_MAX; break;
    case MMS_KIND_U16: *lo = 0, *hi = UINT16_MAX; break;
    case MMS_KIND_U32: *lo = 0, *hi = UINT32_MAX; break;
    case MMS_KIND_U64: *lo = 0, *hi = UINT64_MAX; break;
    case MMS_KIND_BOOL: *lo = 0, *hi = 1; break;
    default: return -1;
    }
    return 0;
}

static int put_int(const mms_field *f, PyObject *v, char *dst)
{
    if (PyFloat_Check(v) || PyUnicode_Check(v) || PyBytes_Check(v)) {
        PyErr_Format(PyExc_TypeError, "field %s is %s: a %.100s is not an integer", f->name,
                     pymms_kind_name(f->kind), Py_TYPE(v)->tp_name);
        return -1;
    }
    PyObject *iv = PyNumber_Index(v);
    if (!iv)
        return -1;
    long long lo;
    unsigned long long hi, u = 0;
    int_bounds(f->kind, &lo, &hi);
    int ovf = 0, bad;
    long long s = PyLong_AsLongLongAndOverflow(iv, &ovf);
    if (s == -1 && PyErr_Occurred()) {
        Py_DECREF(iv);
        return -1;
    }
    if (ovf < 0) {
        bad = 1;
    } else if (ovf > 0) { /* past INT64_MAX: a u64 may still hold it */
        u = PyLong_AsUnsignedLongLong(iv);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            bad = 1;
        } else {
            bad = u > hi;
        }
    } else {
        bad = s < lo || (s >= 0 && (unsigned long long)s > hi);
        u = (unsigned long long)s;
    }
    if (bad) {
        PyErr_Format(PyExc_ValueError, "field %s is %s: %R is out of range", f->name,
                     pymms_kind_name(f->kind), iv);
        Py_DECREF(iv);
        return -1;
    }
    Py_DECREF(iv);
    switch (kind_size(f->kind)) {
    case 1: { uint8_t x = (uint8_t)u; memcpy(dst, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)u; memcpy(dst, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)u; memcpy(dst, &x, 4); break; }
    default: memcpy(dst, &u, 8); break;
    }
    return 0;
}

static int is_numpy_bool(PyObject *v)
{
    return strcmp(Py_TYPE(v)->tp_name, "numpy.bool_") == 0;
}

/* A ref field's value: None, (table, index) or a raw ref; checked against
 * the target table. */
static int put_ref(pymms_store *st, const mms_field *f, PyObject *v, uint64_t *out)
{
    *out = 0;
    if (v == Py_None)
        return 0;
    mms_table *tt = NULL;
    if (!f->target || !f->target[0] || mms_table_find(st->s, f->target, &tt) != 0) {
        pymms_raise_msg(MMS_ENOENT, "ref field %s: its target table %s is not there", f->name,
                        f->target ? f->target : "?");
        return -1;
    }
    uint64_t region = MMS_REF_REGION(mms_table_ref(tt, 0)), slots = mms_table_slots(tt);
    if (PyTuple_Check(v)) {
        PyObject *name, *idx;
        if (!PyArg_ParseTuple(v, "OO;a ref is (table, index), a ref int or None", &name, &idx))
            return -1;
        const char *n = utf8_arg(name, "a ref's table");
        if (!n)
            return -1;
        if (strcmp(n, f->target) != 0) {
            PyErr_Format(PyExc_ValueError, "ref field %s points into table %s, not %s", f->name,
                         f->target, n);
            return -1;
        }
        uint64_t i;
        if (index_arg(idx, slots, &i) < 0)
            return -1;
        *out = mms_table_ref(tt, i);
        return 0;
    }
    if (PyFloat_Check(v) || PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "ref field %s takes (table, index), a ref int or None, "
                     "not %.100s", f->name, Py_TYPE(v)->tp_name);
        return -1;
    }
    PyObject *iv = PyNumber_Index(v);
    if (!iv)
        return -1;
    unsigned long long r = PyLong_AsUnsignedLongLong(iv);
    Py_DECREF(iv);
    if (r == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "ref field %s: %R is not a ref", f->name, v);
        return -1;
    }
    if (r && (MMS_REF_REGION(r) != region || MMS_REF_SLOT(r) >= slots)) {
        PyErr_Format(PyExc_ValueError, "ref field %s: 0x%llx is not a ref to a record of table "
                     "%s (use %s.ref(index) or (table, index))", f->name, r, f->target,
                     f->target);
        return -1;
    }
    *out = r;
    return 0;
}

/* Bytes of a str (UTF-8) or a bytes-like value, as a new bytes object. */
static PyObject *value_bytes(const mms_field *f, PyObject *v, int allow_str, int allow_bytes)
{
    if (PyUnicode_Check(v) && allow_str)
        return PyUnicode_AsEncodedString(v, "utf-8", "surrogateescape");
    if (allow_bytes && PyObject_CheckBuffer(v) && !PyUnicode_Check(v))
        return PyBytes_FromObject(v);
    PyErr_Format(PyExc_TypeError, "field %s is %s: it takes %s, not %.100s", f->name,
                 pymms_kind_name(f->kind),
                 allow_str && allow_bytes ? "str or bytes" : allow_str ? "str or None"
                                                                       : "bytes or None",
                 Py_TYPE(v)->tp_name);
    return NULL;
}

/* One value into a record's bytes. A string is allocated in the heap; its
 * ref goes to *owned so the caller can free it if the record is not made. */
static int put_value(pymms_store *st, const mms_field *f, PyObject *v, char *rec, mms_ref *owned)
{
    char *dst = rec + f->offset;
    *owned = 0;
    switch (f->kind) {
    case MMS_KIND_BOOL:
        if (PyBool_Check(v) || is_numpy_bool(v)) {
            int t = PyObject_IsTrue(v);
            if (t < 0)
                return -1;
            *dst = (char)t;
            return 0;
        }
        return put_int(f, v, dst);
    case MMS_KIND_F32:
    case MMS_KIND_F64: {
        if (PyUnicode_Check(v) || PyBytes_Check(v) || v == Py_None) {
            PyErr_Format(PyExc_TypeError, "field %s is %s: a %.100s is not a number", f->name,
                         pymms_kind_name(f->kind), Py_TYPE(v)->tp_name);
            return -1;
        }
        double d = PyFloat_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred())
            return -1;
        if (f->kind == MMS_KIND_F32) {
            float x = (float)d;
            memcpy(dst, &x, 4);
        } else {
            memcpy(dst, &d, 8);
        }
        return 0;
    }
    case MMS_KIND_CHARS: {
        PyObject *b = value_bytes(f, v, 1, 1);
        if (!b)
            return -1;
        if ((size_t)PyBytes_GET_SIZE(b) > f->size) {
            PyErr_Format(PyExc_ValueError, "field %s holds %u bytes: %R is longer", f->name,
                         (unsigned)f->size, v);
            Py_DECREF(b);
            return -1;
        }
        memset(dst, 0, f->size);
        memcpy(dst, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
        Py_DECREF(b);
        return 0;
    }
    case MMS_KIND_REF: {
        uint64_t r;
        if (put_ref(st, f, v, &r) < 0)
            return -1;
        memcpy(dst, &r, 8);
        return 0;
    }
    case MMS_KIND_STR:
    case MMS_KIND_BLOB: {
        mms_ref r = 0;
        if (v != Py_None) {
            PyObject *b = value_bytes(f, v, f->kind == MMS_KIND_STR, f->kind == MMS_KIND_BLOB);
            if (!b)
                return -1;
            int e = mms_str_new(st->s, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b), &r);
            Py_DECREF(b);
            if (e) {
                pymms_raise(e, "string");
                return -1;
            }
        }
        memcpy(dst, &r, 8);
        *owned = r;
        return 0;
    }
    default:
        return put_int(f, v, dst);
    }
}

PyDoc_STRVAR(append_doc,
"append(record) -> int: add one record from a dict (field name -> value;\n"
"missing fields are zero / None) in a write transaction and return its index\n"
"(a deleted slot is reused). Values: ints, floats, bools; str or bytes for\n"
"chars (at most size bytes) and str; bytes for blob; (table, index), a ref\n"
"int or None for ref.");

static PyObject *table_append(pymms_table *tb, PyObject *rec)
{
    if (table_check(tb) < 0 || pymms_need_write(tb->store, "append") < 0)
        return NULL;
    if (!PyDict_Check(rec)) {
        PyErr_Format(PyExc_TypeError, "append takes a dict, not %.100s", Py_TYPE(rec)->tp_name);
        return NULL;
    }
    pymms_store *st = tb->store;
    const mms_schema *sc = table_schema(tb);
    if (!sc)
        return NULL;
    char *buf = calloc(1, sc->record_size);
    mms_ref *owned = calloc(sc->nfields, sizeof *owned);
    PyObject *res = NULL;
    if (!buf || !owned) {
        PyErr_NoMemory();
        goto out;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(rec, &pos, &key, &value)) {
        uint32_t k;
        const mms_field *f = field_named(sc, key, &k);
        if (!f || put_value(st, f, value, buf, &owned[k]) < 0)
            goto out;
    }
    uint64_t before = mms_table_slots(tb->t), idx;
    int r = mms_table_append(tb->t, buf, &idx);
    if (r) {
        pymms_raise(r, "append");
        goto out;
    }
    if (idx >= before)
        tb->appended = st->serial;
    memset(owned, 0, sc->nfields * sizeof *owned); /* the record owns them now */
    res = PyLong_FromUnsignedLongLong(idx);
out:
    if (owned)
        for (uint32_t k = 0; k < sc->nfields; k++)
            if (owned[k])
                mms_free(st->s, owned[k]);
    free(owned);
    free(buf);
    return res;
}

PyDoc_STRVAR(delete_doc,
"delete(i): delete record i in a write transaction (its strings are freed, its\n"
"bytes zeroed, its slot reused by a later append). IndexError if i is out of\n"
"range or already deleted.");

static PyObject *table_delete(pymms_table *tb, PyObject *arg)
{
    if (table_check(tb) < 0 || pymms_need_write(tb->store, "delete") < 0)
        return NULL;
    uint64_t i;
    if (index_arg(arg, mms_table_slots(tb->t), &i) < 0)
        return NULL;
    if (!mms_table_live(tb->t, i)) {
        PyErr_Format(PyExc_IndexError, "table %U: record %llu is already deleted", tb->name,
                     (unsigned long long)i);
        return NULL;
    }
    int r = mms_table_delete(tb->t, i);
    if (r)
        return pymms_raise(r, "delete");
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * extend: columns in bulk
 * ------------------------------------------------------------------------ */
struct column {
    const mms_field *f;
    PyObject *src;     /* fixed-size kinds: a contiguous array/bytes of n items */
    Py_buffer buf;
    int have_buf;
    PyObject *items;   /* str/blob: a list of bytes or None */
};

static PyObject *np_call(const char *fn, const char *fmt, ...)
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

static int is_ndarray(PyObject *o)
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
static char kind_char(PyObject *dt)
{
    PyObject *k = PyObject_GetAttrString(dt, "kind");
    const char *s = k ? PyUnicode_AsUTF8(k) : NULL;
    char c = s ? s[0] : 0;
    Py_XDECREF(k);
    return c;
}

/* The kind of an array's dtype. */
static char dtype_kind(PyObject *a)
{
    PyObject *dt = PyObject_GetAttrString(a, "dtype");
    char c = dt ? kind_char(dt) : 0;
    Py_XDECREF(dt);
    return c;
}

static Py_ssize_t int_attr(PyObject *o, const char *name)
{
    PyObject *v = PyObject_GetAttrString(o, name);
    if (!v)
        return -1;
    Py_ssize_t n = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return n;
}

static int take_buffer(struct column *c, PyObject *src, Py_ssize_t n, size_t size)
{
    c->src = src;
    if (PyObject_GetBuffer(src, &c->buf, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    c->have_buf = 1;
    if ((size_t)c->buf.len != (size_t)n * size) {
        PyErr_Format(PyExc_ValueError, "column %s: %zd bytes for %zd values of %zu", c->f->name,
                     c->buf.len, n, size);
        return -1;
    }
    return 0;
}

/* A numeric or bool column: numpy converts, after checking that nothing is
 * lost beyond what a same-kind cast loses (a float into an int field is a
 * TypeError, an out-of-range int a ValueError). */
static int prep_number(struct column *c, PyObject *col, Py_ssize_t n)
{
    const mms_field *f = c->f;
    char fmt[32];
    kind_format(f, fmt, sizeof fmt);
    PyObject *a = np_call("asarray", "(O)", col);
    if (!a)
        return -1;
    char k = dtype_kind(a);
    int ok = k == 'b' || k == 'i' || k == 'u' ||
             (k == 'f' && (f->kind == MMS_KIND_F32 || f->kind == MMS_KIND_F64));
    if (!k || !ok) {
        if (k)
            PyErr_Format(PyExc_TypeError, "column %s is %s: it cannot take values of dtype "
                         "kind '%c'", f->name, pymms_kind_name(f->kind), k);
        Py_DECREF(a);
        return -1;
    }
    if (int_attr(a, "ndim") != 1 || int_attr(a, "size") != n) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "column %s: not a 1-d sequence of %zd values",
                         f->name, n);
        Py_DECREF(a);
        return -1;
    }
    if ((kind_is_int(f->kind) || f->kind == MMS_KIND_BOOL) && k != 'b' && n > 0) {
        /* Bounds when the cast is not safe: the array's min and max. */
        PyObject *adt = PyObject_GetAttrString(a, "dtype");
        PyObject *safe = adt ? np_call("can_cast", "(Oss)", adt, fmt, "safe") : NULL;
        Py_XDECREF(adt);
        int is_safe = safe ? PyObject_IsTrue(safe) : -1;
        Py_XDECREF(safe);
        if (is_safe < 0) {
            Py_DECREF(a);
            return -1;
        }
        if (!is_safe) {
            long long lo;
            unsigned long long hi;
            int_bounds(f->kind, &lo, &hi);
            PyObject *mn = PyObject_CallMethod(a, "min", NULL);
            PyObject *mx = PyObject_CallMethod(a, "max", NULL);
            PyObject *mni = mn ? PyNumber_Index(mn) : NULL, *mxi = mx ? PyNumber_Index(mx) : NULL;
            PyObject *blo = PyLong_FromLongLong(lo), *bhi = PyLong_FromUnsignedLongLong(hi);
            int bad = -1;
            if (mni && mxi && blo && bhi) {
                int a1 = PyObject_RichCompareBool(mni, blo, Py_LT);
                int a2 = PyObject_RichCompareBool(mxi, bhi, Py_GT);
                bad = a1 < 0 || a2 < 0 ? -1 : a1 || a2;
            }
            if (bad == 1)
                PyErr_Format(PyExc_ValueError, "column %s is %s: values %R..%R do not fit",
                             f->name, pymms_kind_name(f->kind), mni, mxi);
            Py_XDECREF(mn);
            Py_XDECREF(mx);
            Py_XDECREF(mni);
            Py_XDECREF(mxi);
            Py_XDECREF(blo);
            Py_XDECREF(bhi);
            if (bad) {
                Py_DECREF(a);
                return -1;
            }
        }
    }
    PyObject *cont = np_call("ascontiguousarray", "(Os)", a, fmt);
    Py_DECREF(a);
    if (!cont)
        return -1;
    return take_buffer(c, cont, n, f->size);
}

/* A fixed-size column built item by item (chars from str/bytes, refs from
 * tuples), into a bytes object of n * size. */
static int prep_items(pymms_store *st, struct column *c, PyObject *col, Py_ssize_t n)
{
    const mms_field *f = c->f;
    PyObject *seq = PySequence_Fast(col, "a column must be a sequence");
    if (!seq)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "column %s has %zd values, not %zd", f->name,
                     PySequence_Fast_GET_SIZE(seq), n);
        Py_DECREF(seq);
        return -1;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)f->size);
    if (!out) {
        Py_DECREF(seq);
        return -1;
    }
    char *p = PyBytes_AS_STRING(out);
    memset(p, 0, (size_t)n * f->size);
    /* put_value writes at rec + offset: pretend each item is a record
     * whose field is at 0. */
    mms_field at0 = *f;
    at0.offset = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        mms_ref owned;
        if (put_value(st, &at0, PySequence_Fast_GET_ITEM(seq, i), p + i * f->size, &owned) < 0) {
            Py_DECREF(seq);
            Py_DECREF(out);
            return -1;
        }
    }
    Py_DECREF(seq);
    return take_buffer(c, out, n, f->size);
}

/* chars from a numpy bytes array: values longer than the field refused. */
static int prep_chars_array(struct column *c, PyObject *a, Py_ssize_t n)
{
    const mms_field *f = c->f;
    Py_ssize_t isz = int_attr(a, "itemsize");
    if (isz < 0)
        return -1;
    PyObject *cont = np_call("ascontiguousarray", "(O)", a);
    if (!cont)
        return -1;
    if ((size_t)isz > f->size) {
        Py_buffer b;
        if (PyObject_GetBuffer(cont, &b, PyBUF_C_CONTIGUOUS) < 0) {
            Py_DECREF(cont);
            return -1;
        }
        const char *p = b.buf;
        for (Py_ssize_t i = 0; i < n; i++)
            for (Py_ssize_t j = (Py_ssize_t)f->size; j < isz; j++)
                if (p[i * isz + j]) {
                    PyBuffer_Release(&b);
                    Py_DECREF(cont);
                    PyErr_Format(PyExc_ValueError, "column %s holds %u bytes: value %zd is "
                                 "longer", f->name, (unsigned)f->size, i);
                    return -1;
                }
        PyBuffer_Release(&b);
    }
    char fmt[32];
    kind_format(f, fmt, sizeof fmt);
    PyObject *fit = PyObject_CallMethod(cont, "astype", "s", fmt);
    Py_DECREF(cont);
    if (!fit)
        return -1;
    return take_buffer(c, fit, n, f->size);
}

/* Raw refs from a numpy integer array, each checked against the target. */
static int prep_ref_array(pymms_store *st, struct column *c, PyObject *a, Py_ssize_t n)
{
    const mms_field *f = c->f;
    mms_table *tt = NULL;
    if (!f->target || mms_table_find(st->s, f->target, &tt) != 0) {
        pymms_raise_msg(MMS_ENOENT, "ref field %s: its target table is not there", f->name);
        return -1;
    }
    uint64_t region = MMS_REF_REGION(mms_table_ref(tt, 0)), slots = mms_table_slots(tt);
    PyObject *cont = np_call("ascontiguousarray", "(Os)", a, "u8");
    if (!cont || take_buffer(c, cont, n, 8) < 0)
        return -1;
    const uint64_t *r = c->buf.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (r[i] && (MMS_REF_REGION(r[i]) != region || MMS_REF_SLOT(r[i]) >= slots)) {
            PyErr_Format(PyExc_ValueError, "column %s: value %zd (0x%llx) is not a ref to a "
                         "record of table %s", f->name, i, (unsigned long long)r[i], f->target);
            return -1;
        }
    return 0;
}

static int prep_heap(struct column *c, PyObject *col, Py_ssize_t n)
{
    const mms_field *f = c->f;
    PyObject *seq = PySequence_Fast(col, "a column must be a sequence");
    if (!seq)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "column %s has %zd values, not %zd", f->name,
                     PySequence_Fast_GET_SIZE(seq), n);
        Py_DECREF(seq);
        return -1;
    }
    c->items = PyList_New(n);
    for (Py_ssize_t i = 0; c->items && i < n; i++) {
        PyObject *v = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *b = v == Py_None ? Py_NewRef(Py_None)
                                   : value_bytes(f, v, f->kind == MMS_KIND_STR,
                                                 f->kind == MMS_KIND_BLOB);
        if (!b) {
            Py_DECREF(seq);
            return -1;
        }
        PyList_SET_ITEM(c->items, i, b);
    }
    Py_DECREF(seq);
    return c->items ? 0 : -1;
}

static int prep_column(pymms_store *st, struct column *c, PyObject *col, Py_ssize_t n)
{
    unsigned k = c->f->kind;
    if (kind_is_heap(k))
        return prep_heap(c, col, n);
    int nd = is_ndarray(col);
    if (nd < 0)
        return -1;
    if (k == MMS_KIND_CHARS) {
        if (nd && dtype_kind(col) == 'S')
            return int_attr(col, "ndim") == 1 ? prep_chars_array(c, col, n)
                                              : (PyErr_Format(PyExc_ValueError,
                                                              "column %s: not 1-d", c->f->name),
                                                 -1);
        return prep_items(st, c, col, n);
    }
    if (k == MMS_KIND_REF) {
        if (nd) {
            char dk = dtype_kind(col);
            if (dk != 'i' && dk != 'u') {
                PyErr_Format(PyExc_TypeError, "ref column %s: an array of refs must be of "
                             "integers (region << 48 | index)", c->f->name);
                return -1;
            }
            if (int_attr(col, "ndim") != 1 || int_attr(col, "size") != n) {
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_ValueError, "column %s: not %zd values", c->f->name, n);
                return -1;
            }
            return prep_ref_array(st, c, col, n);
        }
        return prep_items(st, c, col, n);
    }
    return prep_number(c, col, n);
}

static void column_free(struct column *c)
{
    if (c->have_buf)
        PyBuffer_Release(&c->buf);
    Py_XDECREF(c->src);
    Py_XDECREF(c->items);
}

/* Copy n items of size bytes into records of rs bytes. */
static void scatter(char *dst, size_t rs, const char *src, size_t size, uint64_t n)
{
    if (rs == size) {
        memcpy(dst, src, n * size);
        return;
    }
    switch (size) {
    case 1: for (uint64_t i = 0; i < n; i++) dst[i * rs] = src[i]; break;
    case 2: for (uint64_t i = 0; i < n; i++) memcpy(dst + i * rs, src + i * 2, 2); break;
    case 4: for (uint64_t i = 0; i < n; i++) memcpy(dst + i * rs, src + i * 4, 4); break;
    case 8: for (uint64_t i = 0; i < n; i++) memcpy(dst + i * rs, src + i * 8, 8); break;
    default: for (uint64_t i = 0; i < n; i++) memcpy(dst + i * rs, src + i * size, size); break;
    }
}

struct fill {
    struct column *cols;
    uint32_t ncols;
    char *where;
    uint32_t rs;
    uint64_t n;
};

static void fill_fixed(struct fill *fl)
{
    for (uint32_t k = 0; k < fl->ncols; k++) {
        struct column *c = &fl->cols[k];
        if (c->have_buf)
            scatter(fl->where + c->f->offset, fl->rs, c->buf.buf, c->f->size, fl->n);
    }
}

/* The columns of a structured array, as a dict name -> field view. */
static PyObject *struct_columns(PyObject *arr, PyObject *names)
{
    PyObject *d = PyDict_New();
    PyObject *seq = d ? PySequence_Fast(names, "dtype.names") : NULL;
    for (Py_ssize_t i = 0; seq && i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *nm = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *col = PyObject_GetItem(arr, nm);
        if (!col || PyDict_SetItem(d, nm, col) < 0) {
            Py_XDECREF(col);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(col);
    }
    Py_XDECREF(seq);
    if (!seq)
        Py_CLEAR(d);
    return d;
}

PyDoc_STRVAR(extend_doc,
"extend(columns) -> int: append len(column) records in a write transaction and\n"
"return the index of the first. columns: a dict field name -> numpy array or\n"
"sequence (all of one length; missing fields are zero), or a numpy structured\n"
"array (fields by name). Numbers go through numpy with checks (a float into an\n"
"int field is a TypeError, an int out of range a ValueError); chars take bytes\n"
"or str; str/blob take str/bytes/None; ref takes (table, index), None, or an\n"
"integer array of refs (table.ref(i), or another ref column). Everything is\n"
"checked before the first record is appended; the records are appended in one\n"
"block of fresh space and filled by strided copies with the GIL released. If\n"
"the heap fills up while strings are stored, the transaction is doomed: it\n"
"aborts at the end of the with block.");

static PyObject *table_extend(pymms_table *tb, PyObject *columns)
{
    if (table_check(tb) < 0 || pymms_need_write(tb->store, "extend") < 0)
        return NULL;
    pymms_store *st = tb->store;
    const mms_schema *sc = table_schema(tb);
    if (!sc)
        return NULL;
    PyObject *dict = NULL, *res = NULL;
    struct column *cols = calloc(sc->nfields, sizeof *cols);
    uint32_t ncols = 0;
    if (!cols)
        return PyErr_NoMemory();
    if (PyDict_Check(columns)) {
        dict = Py_NewRef(columns);
    } else {
        PyObject *dt = PyObject_GetAttrString(columns, "dtype");
        PyObject *names = dt ? PyObject_GetAttrString(dt, "names") : NULL;
        Py_XDECREF(dt);
        if (!names || names == Py_None) {
            PyErr_Clear();
            Py_XDECREF(names);
            PyErr_Format(PyExc_TypeError, "extend takes a dict of columns or a numpy structured "
                         "array, not %.100s", Py_TYPE(columns)->tp_name);
            goto out;
        }
        dict = struct_columns(columns, names);
        Py_DECREF(names);
        if (!dict)
            goto out;
    }
    /* Check and convert everything before appending anything. */
    Py_ssize_t n = -1;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        const mms_field *f = field_named(sc, key, NULL);
        if (!f)
            goto out;
        Py_ssize_t len = PyObject_Length(value);
        if (len < 0) {
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "column %s: a %.100s has no length", f->name,
                             Py_TYPE(value)->tp_name);
            }
            goto out;
        }
        if (n >= 0 && len != n) {
            PyErr_Format(PyExc_ValueError, "columns differ in length: %s has %zd values, "
                         "another %zd", f->name, len, n);
            goto out;
        }
        n = len;
        cols[ncols].f = f;
        if (prep_column(st, &cols[ncols++], value, n) < 0)
            goto out;
    }
    uint64_t first = mms_table_slots(tb->t);
    if (n <= 0) {
        res = PyLong_FromUnsignedLongLong(first);
        goto out;
    }
    void *where = NULL;
    int r;
    PYMMS_BLOCKING(st, r = mms_table_append_many(tb->t, (uint64_t)n, &first, &where));
    if (r) {
        pymms_raise(r, "extend");
        goto out;
    }
    tb->appended = st->serial;
    struct fill fl = {cols, ncols, where, sc->record_size, (uint64_t)n};
    PYMMS_BLOCKING(st, fill_fixed(&fl));
    for (uint32_t k = 0; k < ncols; k++) {
        struct column *c = &cols[k];
        if (!c->items)
            continue;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *b = PyList_GET_ITEM(c->items, i);
            if (b == Py_None)
                continue;
            mms_ref ref;
            r = mms_str_new(st->s, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b), &ref);
            if (r) {
                /* Records are appended, some strings missing: never commit. */
                st->doomed = 1;
                pymms_raise(r, "extend: storing a string (the transaction will abort)");
                goto out;
            }
            memcpy((char *)where + (size_t)i * sc->record_size + c->f->offset, &ref, 8);
        }
    }
    res = PyLong_FromUnsignedLongLong(first);
out:
    for (uint32_t k = 0; k < ncols; k++)
        column_free(&cols[k]);
    free(cols);
    Py_XDECREF(dict);
    return res;
}

/* ------------------------------------------------------------------------
 * to_pandas
 * ------------------------------------------------------------------------ */
PyDoc_STRVAR(to_pandas_doc,
"to_pandas() -> pandas.DataFrame of the live records (a copy), indexed by\n"
"record index. chars and str become str, blob bytes, refs the target record's\n"
"index (int64, -1 for none). Needs pandas.");

static PyObject *pandas_columns(pymms_table *tb, const mms_schema *sc, PyObject *mask,
                                PyObject *arr)
{
    PyObject *data = PyDict_New();
    uint64_t slots = mms_table_slots(tb->t);
    const char *base = mms_table_array(tb->t);
    for (uint32_t k = 0; data && k < sc->nfields; k++) {
        const mms_field *f = &sc->fields[k];
        PyObject *name = str_of(f->name), *col = NULL;
        if (!name) {
            Py_CLEAR(data);
            break;
        }
        if (kind_is_heap(f->kind)) {
            col = heap_column(tb, f, sc->record_size, 1);
        } else if (f->kind == MMS_KIND_CHARS || f->kind == MMS_KIND_REF) {
            col = PyList_New(0);
            for (uint64_t i = 0; col && i < slots; i++) {
                if (!mms_table_live(tb->t, i))
                    continue;
                const char *p = base + i * sc->record_size + f->offset;
                PyObject *v;
                if (f->kind == MMS_KIND_CHARS) {
                    v = PyUnicode_DecodeUTF8(p, (Py_ssize_t)strnlen(p, f->size), "surrogateescape");
                } else {
                    uint64_t r;
                    memcpy(&r, p, 8);
                    v = PyLong_FromLongLong(r ? (long long)MMS_REF_SLOT(r) : -1);
                }
                if (!v || PyList_Append(col, v) < 0)
                    Py_CLEAR(col);
                Py_XDECREF(v);
            }
            if (col && f->kind == MMS_KIND_REF) {
                PyObject *a = np_call("array", "(Os)", col, "i8");
                Py_SETREF(col, a);
            }
        } else {
            PyObject *view = PyObject_GetItem(arr, name);
            col = view ? PyObject_GetItem(view, mask) : NULL; /* a copy */
            Py_XDECREF(view);
        }
        if (!col || PyDict_SetItem(data, name, col) < 0)
            Py_CLEAR(data);
        Py_XDECREF(col);
        Py_DECREF(name);
    }
    return data;
}

static PyObject *table_to_pandas(pymms_table *tb, PyObject *unused)
{
    (void)unused;
    if (table_check(tb) < 0)
        return NULL;
    PyObject *pd = PyImport_ImportModule("pandas");
    if (!pd)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0) {
        Py_DECREF(pd);
        return NULL;
    }
    PyObject *res = NULL, *mask = NULL, *arr = NULL, *index = NULL, *data = NULL;
    const mms_schema *sc = table_schema(tb);
    if (!sc || !(mask = live_mask(tb)) || !(index = np_call("flatnonzero", "(O)", mask)))
        goto out;
    /* A temporary array, dead before this returns: R4 does not apply. */
    if (!(arr = records_array(tb, 0)) || !(data = pandas_columns(tb, sc, mask, arr)))
        goto out;
    Py_CLEAR(arr);
    PyObject *names = PyList_New(sc->nfields);
    for (uint32_t k = 0; names && k < sc->nfields; k++) {
        PyObject *nm = str_of(sc->fields[k].name);
        if (!nm) {
            Py_CLEAR(names);
            break;
        }
        PyList_SET_ITEM(names, k, nm);
    }
    if (names) {
        PyObject *df = PyObject_GetAttrString(pd, "DataFrame");
        PyObject *kw = Py_BuildValue("{s:O,s:O}", "index", index, "columns", names);
        PyObject *args = PyTuple_Pack(1, data);
        if (df && kw && args)
            res = PyObject_Call(df, args, kw);
        Py_XDECREF(df);
        Py_XDECREF(kw);
        Py_XDECREF(args);
        Py_DECREF(names);
    }
out:
    Py_XDECREF(arr);
    Py_XDECREF(mask);
    Py_XDECREF(index);
    Py_XDECREF(data);
    Py_DECREF(pd);
    if (pymms_scope_exit(tb->store, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
}

/* ------------------------------------------------------------------------
 * Attributes
 * ------------------------------------------------------------------------ */
static PyObject *table_get_name(pymms_table *tb, void *unused)
{
    (void)unused;
    return Py_NewRef(tb->name);
}

static PyObject *table_get_store(pymms_table *tb, void *unused)
{
    (void)unused;
    return tb->store ? Py_NewRef((PyObject *)tb->store) : Py_NewRef(Py_None);
}

/* A schema-derived attribute, read inside a transaction. */
static PyObject *schema_attr(pymms_table *tb, int which)
{
    if (table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *res = NULL;
    const mms_schema *sc = table_schema(tb);
    if (sc) {
        switch (which) {
        case 0:
            res = table_dtype_of(tb, sc);
            Py_XINCREF(res);
            break;
        case 1:
            if (!tb->fields)
                tb->fields = make_fields(sc);
            res = Py_XNewRef(tb->fields);
            break;
        case 2: res = PyLong_FromUnsignedLongLong(mms_table_slots(tb->t)); break;
        default: res = PyLong_FromUnsignedLong(sc->record_size); break;
        }
    }
    if (pymms_scope_exit(tb->store, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
}

static PyObject *table_get_dtype(pymms_table *tb, void *u) { (void)u; return schema_attr(tb, 0); }
static PyObject *table_get_fields(pymms_table *tb, void *u) { (void)u; return schema_attr(tb, 1); }
static PyObject *table_get_slots(pymms_table *tb, void *u) { (void)u; return schema_attr(tb, 2); }
static PyObject *table_get_rs(pymms_table *tb, void *u) { (void)u; return schema_attr(tb, 3); }

static PyObject *table_repr(pymms_table *tb)
{
    if (!tb->store || tb->store->closed || !tb->store->s || tb->dead ||
        (tb->store->busy && tb->store->busy != pymms_me()))
        return PyUnicode_FromFormat("<mmstore.Table %R>", tb->name);
    if (tb->store->state != PYMMS_IDLE && tb->store->owner != pymms_me())
        return PyUnicode_FromFormat("<mmstore.Table %R>", tb->name);
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    const mms_schema *sc = mms_table_schema(tb->t);
    PyObject *r = PyUnicode_FromFormat("<mmstore.Table %R: %llu records, %llu slots of %u bytes>",
                                       tb->name, (unsigned long long)mms_table_count(tb->t),
                                       (unsigned long long)mms_table_slots(tb->t),
                                       sc ? (unsigned)sc->record_size : 0u);
    if (pymms_scope_exit(tb->store, own, r ? 0 : -1) < 0)
        Py_CLEAR(r);
    return r;
}

static PyMethodDef table_methods[] = {
    {"array", (PyCFunction)(void (*)(void))table_array, METH_VARARGS | METH_KEYWORDS, array_doc},
    {"live", (PyCFunction)table_live, METH_NOARGS, live_doc},
    {"column", (PyCFunction)table_column, METH_O, column_doc},
    {"get", (PyCFunction)table_get, METH_O, get_doc},
    {"str", (PyCFunction)table_str, METH_VARARGS, str_doc},
    {"ref", (PyCFunction)table_ref, METH_O, ref_doc},
    {"append", (PyCFunction)table_append, METH_O, append_doc},
    {"extend", (PyCFunction)table_extend, METH_O, extend_doc},
    {"delete", (PyCFunction)table_delete, METH_O, delete_doc},
    {"to_pandas", (PyCFunction)table_to_pandas, METH_NOARGS, to_pandas_doc},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef table_getset[] = {
    {"name", (getter)table_get_name, NULL, "the table's name", NULL},
    {"store", (getter)table_get_store, NULL, "the Store it belongs to", NULL},
    {"dtype", (getter)table_get_dtype, NULL,
     "numpy structured dtype of a record (explicit offsets, itemsize = record size)", NULL},
    {"fields", (getter)table_get_fields, NULL, "tuple of Field(name, kind, offset, size, target)",
     NULL},
    {"slots", (getter)table_get_slots, NULL, "records including deleted ones (the array's length)",
     NULL},
    {"record_size", (getter)table_get_rs, NULL, "bytes per record", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PySequenceMethods table_as_sequence = {.sq_length = (lenfunc)table_len};

PyTypeObject pymms_table_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mmstore.Table",
    .tp_basicsize = sizeof(pymms_table),
    .tp_dealloc = (destructor)table_dealloc,
    .tp_repr = (reprfunc)table_repr,
    .tp_as_sequence = &table_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A table of a Store (Store.table, Store.create_table). len(t) is the number of "
              "live records.",
    .tp_traverse = (traverseproc)table_traverse,
    .tp_clear = (inquiry)table_clear,
    .tp_methods = table_methods,
    .tp_getset = table_getset,
};

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
    const char *p = utf8_arg(o, what);
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
    PyObject *dt = np_call("dtype", "(O)", kindobj);
    if (!dt)
        return 0;
    char k = kind_char(dt);
    Py_ssize_t isz = int_attr(dt, "itemsize");
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
    *size = kind == MMS_KIND_CHARS ? (unsigned)isz : kind_size(kind);
    return kind;
}

/* (name, kind[, size or target]) */
static int spec_field(struct spec *sp, PyObject *item, mms_field *f)
{
    if (!PyTuple_Check(item) && !PyList_Check(item)) {
        PyErr_Format(PyExc_TypeError, "a field is (name, kind[, size or target]), not %.100s",
                     Py_TYPE(item)->tp_name);
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
        if (f->kind == MMS_KIND_CHARS && PyLong_Check(arg)) {
            long v = PyLong_AsLong(arg);
            if (v <= 0 || v > (long)MMS_MAX_RECORD) {
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_ValueError, "field %s: chars size %R is not in 1..%u",
                                 f->name, arg, MMS_MAX_RECORD);
                goto out;
            }
            size = (unsigned)v;
        } else if (f->kind == MMS_KIND_REF && PyUnicode_Check(arg)) {
            if (!(f->target = kept_utf8(sp, arg, "a ref target")))
                goto out;
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
    f->size = f->kind == MMS_KIND_CHARS ? size : kind_size(f->kind);
    rc = 0;
out:
    Py_XDECREF(name);
    Py_XDECREF(kind);
    Py_XDECREF(arg);
    return rc;
}

/* A list of fields laid out as a C struct. */
static int spec_from_list(struct spec *sp, PyObject *list)
{
    PyObject *seq = PySequence_Fast(list, "a schema is a list of fields");
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
    uint64_t off = 0, maxalign = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        mms_field *f = &sp->f[i];
        if (spec_field(sp, PySequence_Fast_GET_ITEM(seq, i), f) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        uint64_t align = f->kind == MMS_KIND_CHARS ? 1 : f->size;
        off = (off + align - 1) / align * align;
        f->offset = (uint32_t)off;
        off += f->size;
        if (align > maxalign)
            maxalign = align;
        if (off > MMS_MAX_RECORD) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "records would be larger than %u bytes",
                         MMS_MAX_RECORD);
            return -1;
        }
    }
    Py_DECREF(seq);
    sp->n = (uint32_t)n;
    sp->record_size = (uint32_t)((off + maxalign - 1) / maxalign * maxalign);
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
    Py_ssize_t itemsize = fields ? int_attr(dt, "itemsize") : -1;
    int rc = -1;
    if (!seq || !fields || itemsize < 0)
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

PyObject *pymms_spec_string(PyObject *spec)
{
    if (PyUnicode_Check(spec))
        return Py_NewRef(spec);
    struct spec sp;
    if (spec_parse(&sp, spec) < 0) {
        spec_free(&sp);
        return NULL;
    }
    PyObject *parts = PyList_New(0);
    for (uint32_t i = 0; parts && i < sp.n; i++) {
        const mms_field *f = &sp.f[i];
        PyObject *p = f->kind == MMS_KIND_CHARS ? PyUnicode_FromFormat("%s:chars:%u", f->name,
                                                                       (unsigned)f->size)
                      : f->kind == MMS_KIND_REF ? PyUnicode_FromFormat("%s:ref:%s", f->name,
                                                                       f->target)
                      : PyUnicode_FromFormat("%s:%s", f->name, pymms_kind_name(f->kind));
        if (!p || PyList_Append(parts, p) < 0)
            Py_CLEAR(parts);
        Py_XDECREF(p);
    }
    spec_free(&sp);
    if (!parts)
        return NULL;
    PyObject *sep = PyUnicode_FromString(",");
    PyObject *s = sep ? PyUnicode_Join(sep, parts) : NULL;
    Py_XDECREF(sep);
    Py_DECREF(parts);
    return s;
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

PyObject *pymms_create_table(pymms_store *st, PyObject *name, PyObject *specobj)
{
    const char *cname = utf8_arg(name, "a table name");
    if (!cname)
        return NULL;
    struct spec sp;
    if (spec_parse(&sp, specobj) < 0) {
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
        /* R4: a migration replaces the region's file under its arrays. */
        if (old->nviews > 0) {
            PyErr_Format(PyExc_BufferError, "create_table: migrating table %U to a new layout "
                         "while %zd arrays over it are alive; delete them first", name,
                         old->nviews);
            goto out;
        }
    }
    int r = mms_table_open(st->s, cname, &sc, MMS_TABLE_CREATE, &t);
    if (r) {
        pymms_raise(r, exists ? "create_table (migrating)" : "create_table");
        goto out;
    }
    if (exists) {
        old->migrated = st->serial;
        old->t = t;
        old->layout = 0;
        res = Py_NewRef((PyObject *)old);
        goto out;
    }
    res = pymms_table_new(st, t, name);
    if (res) {
        ((pymms_table *)res)->created = st->serial;
        if (PyDict_SetItem(st->tables, name, res) < 0)
            Py_CLEAR(res);
    }
out:
    Py_XDECREF((PyObject *)old);
    spec_free(&sp);
    return res;
}

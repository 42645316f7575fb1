/*
 * pymms_write.c -- writing records: Python values to record bytes,
 * Table.append, Table.delete, and Table.extend (columns in bulk).
 *
 * It owns the conversions and their checks. It must never write a record
 * outside a write transaction, and never leave half-converted input in the
 * store: extend checks and converts every column before the first record
 * is appended, and a failure after that (the heap filling up while strings
 * are stored) dooms the transaction, which then aborts instead of
 * committing.
 */
#include "pymms.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Values -> record bytes
 * ------------------------------------------------------------------------ */
static int int_bounds(unsigned kind, long long *lo, unsigned long long *hi)
{
    *lo = 0, *hi = 0; /* not an integer kind: nothing fits (and gcc -O2 sees them set) */
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
    if (!PyIndex_Check(v)) {
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
    int in = pymms_long_in(iv, lo, hi, &u);
    if (in == 0)
        PyErr_Format(PyExc_ValueError, "field %s is %s: %R is out of range", f->name,
                     pymms_kind_name(f->kind), iv);
    Py_DECREF(iv);
    if (in <= 0)
        return -1;
    switch (pymms_kind_size(f->kind)) {
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
        if (PyTuple_GET_SIZE(v) != 2 || !PyUnicode_Check(name = PyTuple_GET_ITEM(v, 0)) ||
            !PyIndex_Check(idx = PyTuple_GET_ITEM(v, 1))) {
            PyErr_Format(PyExc_TypeError, "ref field %s takes (table name, index), a ref int "
                         "or None, not a tuple %.200R", f->name, v);
            return -1;
        }
        const char *n = pymms_utf8(name, "a ref's table");
        if (!n)
            return -1;
        if (strcmp(n, f->target) != 0) {
            PyErr_Format(PyExc_ValueError, "ref field %s points into table %s, not %s", f->name,
                         f->target, n);
            return -1;
        }
        uint64_t i;
        if (pymms_index_arg(idx, slots, &i) < 0)
            return -1;
        *out = mms_table_ref(tt, i);
        return 0;
    }
    if (!PyIndex_Check(v)) { /* a float, a str, bytes, a list, ... */
        PyErr_Format(PyExc_TypeError, "ref field %s takes (table name, index), a ref int or None, "
                     "not %.100s", f->name, Py_TYPE(v)->tp_name);
        return -1;
    }
    PyObject *iv = PyNumber_Index(v);
    if (!iv)
        return -1;
    unsigned long long r = 0;
    int in = pymms_long_in(iv, 0, UINT64_MAX, &r);
    Py_DECREF(iv);
    if (in <= 0) {
        if (in == 0)
            PyErr_Format(PyExc_ValueError, "ref field %s: %R is not a ref", f->name, v);
        return -1;
    }
    if (r && (MMS_REF_REGION(r) != region || MMS_REF_SLOT(r) >= slots)) {
        pymms_value_error("ref field %s: 0x%llx is not a ref to a record of table %s (use "
                          "%s.ref(index) or (table, index))", f->name, r, f->target, f->target);
        return -1;
    }
    *out = r;
    return 0;
}

/* Bytes of a str (UTF-8) or a bytes-like value, as a new bytes object. */
/* Bytes-like: bytes, bytearray, memoryview, a numpy array -- not a numpy
 * scalar, which has a buffer too: a uint64 from a ref or string column would
 * become 8 bytes of blob by mistake. */
static int bytes_like(PyObject *v)
{
    if (PyBytes_Check(v) || PyByteArray_Check(v) || PyMemoryView_Check(v))
        return 1;
    return PyObject_CheckBuffer(v) && pymms_is_ndarray(v) == 1;
}

static PyObject *value_bytes(const mms_field *f, PyObject *v, int allow_str, int allow_bytes)
{
    if (PyUnicode_Check(v) && allow_str)
        return PyUnicode_AsEncodedString(v, "utf-8", "surrogateescape");
    if (allow_bytes && bytes_like(v))
        return PyBytes_FromObject(v);
    PyErr_Clear(); /* from bytes_like */
    const char *takes = allow_str && allow_bytes ? "str or bytes" : allow_str ? "str or None"
                                                                              : "bytes or None";
    if (PyFloat_Check(v)) /* say which float is refused: NaN is not */
        PyErr_Format(PyExc_TypeError, "field %s is %s: it takes %s (in extend also NaN, "
                     "pandas' missing value: %s), not float %R", f->name,
                     pymms_kind_name(f->kind), takes,
                     f->kind == MMS_KIND_CHARS ? "missing" : "no string", v);
    else
        PyErr_Format(PyExc_TypeError, "field %s is %s: it takes %s, not %.100s", f->name,
                     pymms_kind_name(f->kind), takes, Py_TYPE(v)->tp_name);
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
        if (d == -1.0 && PyErr_Occurred()) {
            /* Python's own words name no field: an int past a double's
             * range, or no __float__ (a list, an object). */
            if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "field %s is %s: %R is out of range", f->name,
                             pymms_kind_name(f->kind), v);
            } else if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "field %s is %s: a %.100s is not a number",
                             f->name, pymms_kind_name(f->kind), Py_TYPE(v)->tp_name);
            }
            return -1;
        }
        if (f->kind == MMS_KIND_F32) {
            float x = (float)d;
            if (isinf(x) && !isinf(d)) { /* not the infinity it would become */
                PyErr_Format(PyExc_ValueError, "field %s is f32: %R is out of range", f->name, v);
                return -1;
            }
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

int pymms_put_key(pymms_store *st, const mms_field *f, PyObject *v, unsigned char *out,
                  size_t cap)
{
    if (pymms_kind_is_heap(f->kind) || f->size > cap) {
        PyErr_Format(PyExc_TypeError, "field %s is %s: it has no keys (not indexable)", f->name,
                     pymms_kind_name(f->kind));
        return -1;
    }
    mms_field at0 = *f;
    at0.offset = 0;
    mms_ref owned; /* stays 0: not a heap kind */
    return put_value(st, &at0, v, (char *)out, &owned);
}

PyObject *pymms_in_call(pymms_table *tb, PyObject *(*fn)(pymms_table *, PyObject *),
                        PyObject *arg)
{
    if (pymms_table_check(tb) < 0)
        return NULL;
    pymms_store *st = (pymms_store *)Py_NewRef((PyObject *)tb->store);
    st->calls++;
    PyObject *res = fn(tb, arg);
    st->calls--;
    Py_DECREF(st);
    return res;
}

/* None, or pandas' NA (a nullable column's missing value; its type's name
 * is "NAType", without the module). */
static int is_missing(PyObject *v)
{
    const char *name = Py_TYPE(v)->tp_name, *dot = strrchr(name, '.');
    return v == Py_None || strcmp(dot ? dot + 1 : name, "NAType") == 0;
}

/* The values of dict rec into record buf: 0, or -1 with an exception.
 * Strings made go to owned[field], None marks into missing[field]. */
static int put_record(pymms_store *st, const mms_schema *sc, PyObject *rec, char *buf,
                      mms_ref *owned, unsigned char *missing)
{
    /* A copy: a conversion's Python code could change the caller's. */
    PyObject *key, *value, *copy = PyDict_Copy(rec);
    Py_ssize_t pos = 0;
    int r = copy ? 0 : -1;
    unsigned char *seen = copy ? calloc(sc->nfields, 1) : NULL;
    if (copy && !seen) {
        PyErr_NoMemory();
        r = -1;
    }
    while (!r && PyDict_Next(copy, &pos, &key, &value)) {
        uint32_t k;
        const mms_field *f = pymms_field_named(sc, key, &k);
        if (!f)
            r = -1;
        else if (seen[k]++) { /* two keys spelling one name: the first string would leak */
            PyErr_Format(PyExc_ValueError, "append: field %s is given twice", f->name);
            r = -1;
        } else if (is_missing(value) && !pymms_kind_is_heap(f->kind) && f->kind != MMS_KIND_REF)
            missing[k] = 1; /* marked once the record is there; its bytes stay 0 */
        else if (put_value(st, f, is_missing(value) ? Py_None : value, buf, &owned[k]) < 0)
            r = -1;
    }
    free(seen);
    Py_XDECREF(copy);
    return r;
}

const char pymms_append_doc[] = PyDoc_STR(
"append(record) -> int: add one record from a dict (field name -> value;\n"
"missing fields are zero / None) in a write transaction and return its index\n"
"(a deleted slot is reused). Values: ints, floats, bools; str or bytes for\n"
"chars (at most size bytes) and str; bytes for blob; (table, index), a ref\n"
"int or None for ref. None for a number, bool or chars field marks the value\n"
"missing (missing(), as get() shows it); for str, blob and ref it is none.\n"
"pandas' NA is None.");

static PyObject *append_in(pymms_table *tb, PyObject *rec)
{
    if (pymms_table_check(tb) < 0 || pymms_need_write(tb->store, "append") < 0)
        return NULL;
    if (!PyDict_Check(rec)) {
        PyErr_Format(PyExc_TypeError, "append takes a dict, not %.100s", Py_TYPE(rec)->tp_name);
        return NULL;
    }
    pymms_store *st = tb->store;
    const mms_schema *sc = pymms_table_schema(tb);
    if (!sc)
        return NULL;
    char *buf = calloc(1, sc->record_size);
    mms_ref *owned = calloc(sc->nfields, sizeof *owned);
    unsigned char *missing = calloc(sc->nfields, 1);
    PyObject *res = NULL;
    if (!buf || !owned || !missing) {
        PyErr_NoMemory();
        goto out;
    }
    int bad = 0;
    PYMMS_CONVERTING(st, bad = put_record(st, sc, rec, buf, owned, missing));
    if (bad)
        goto out;
    uint64_t before = mms_table_slots(tb->t), idx;
    int r = mms_table_append(tb->t, buf, &idx);
    if (r) {
        pymms_raise(r, "append");
        goto out;
    }
    if (idx >= before && pymms_mark(tb, &tb->appended) < 0) {
        st->doomed = 1; /* a record the marks do not cover: never commit */
        memset(owned, 0, sc->nfields * sizeof *owned); /* the record holds them */
        goto out;
    }
    for (uint32_t k = 0; k < sc->nfields && !r; k++)
        if (missing[k] && (r = mms_table_null_set(tb->t, idx, k, 1)) != 0) {
            pymms_raise(r, "append: marking a value missing");
            if (mms_table_delete(tb->t, idx) != 0) /* the record goes as it came */
                st->doomed = 1;
            memset(owned, 0, sc->nfields * sizeof *owned); /* freed with it */
            goto out;
        }
    memset(owned, 0, sc->nfields * sizeof *owned); /* the record owns them now */
    res = PyLong_FromUnsignedLongLong(idx);
out:
    if (owned)
        for (uint32_t k = 0; k < sc->nfields; k++)
            if (owned[k])
                mms_free(st->s, owned[k]);
    free(owned);
    free(missing);
    free(buf);
    return res;
}

const char pymms_delete_doc[] = PyDoc_STR(
"delete(i): delete record i in a write transaction (its strings are freed, its\n"
"bytes zeroed, its slot reused by a later append). IndexError if i is out of\n"
"range or already deleted.");

static PyObject *delete_in(pymms_table *tb, PyObject *arg)
{
    if (pymms_table_check(tb) < 0 || pymms_need_write(tb->store, "delete") < 0 ||
        pymms_table_there(tb) < 0)
        return NULL;
    uint64_t i;
    int bad;
    PYMMS_CONVERTING(tb->store, bad = pymms_index_arg(arg, mms_table_slots(tb->t), &i) < 0);
    if (bad)
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
    uint32_t index;    /* of f in the schema */
    PyObject *src;     /* fixed-size kinds: a contiguous array/bytes of n items */
    Py_buffer buf;
    int have_buf;
    PyObject *items;   /* str/blob: a list of bytes or None */
    char *missing;     /* numbers, bool, chars: n flags, 1 = None (missing), or NULL */
};

/* A missing value in a column of field f: is_missing(), or for a text
 * field (str, blob, chars) a float NaN, which is how pandas keeps a missing
 * value in an object column (read_csv, a reindex, .where()). A NaN is a
 * number in a number field; any other float in a text field is refused
 * (value_bytes). */
static int missing_in_column(const mms_field *f, PyObject *v)
{
    if (is_missing(v))
        return 1;
    int text = pymms_kind_is_heap(f->kind) || f->kind == MMS_KIND_CHARS;
    return text && PyFloat_Check(v) && isnan(PyFloat_AS_DOUBLE(v));
}

/* Item i of a column is missing: note it (n flags, allocated on the first). */
static int note_missing(struct column *c, Py_ssize_t i, Py_ssize_t n)
{
    if (!c->missing && !(c->missing = calloc((size_t)n, 1))) {
        PyErr_NoMemory();
        return -1;
    }
    c->missing[i] = 1;
    return 0;
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

/* Did the cast of float column a to f32 (cont) make a finite value
 * infinite? 1, 0, or -1 with an exception. */
static int f32_overflow(PyObject *a, PyObject *cont)
{
    Py_buffer b;
    if (PyObject_GetBuffer(cont, &b, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    Py_ssize_t ninf = 0;
    for (const float *p = b.buf, *e = p + b.len / 4; p < e; p++)
        ninf += isinf(*p) != 0;
    PyBuffer_Release(&b);
    if (!ninf)
        return 0;
    PyObject *inf = pymms_np_call("isinf", "(O)", a);
    PyObject *cnt = inf ? pymms_np_call("count_nonzero", "(O)", inf) : NULL;
    Py_ssize_t was = cnt ? PyNumber_AsSsize_t(cnt, NULL) : -1;
    Py_XDECREF(inf);
    Py_XDECREF(cnt);
    return was < 0 && PyErr_Occurred() ? -1 : was != ninf;
}

/* numpy types Python ints that no one integer dtype holds as float64
 * (np.asarray([2**64 - 1, 0]): uint64 and int64 promote to float), which an
 * integer field refuses: a u64 column from a list, or from to_pandas()'s
 * UInt64 column with <NA> (ints past u64 stay objects). When every value
 * of vals is an integer, they are converted one by one as append()
 * converts them: 1 and the column's bytes taken, or -1 with ValueError for
 * one out of range. 0 (nothing taken) when one is not an integer: the
 * float or object dtype stands. */
static int take_ints(struct column *c, PyObject *vals, Py_ssize_t n)
{
    size_t size = pymms_kind_size(c->f->kind);
    PyObject *it = PyObject_GetIter(vals), *v;
    PyObject *bytes = it ? PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)size) : NULL;
    Py_ssize_t i = 0;
    int rc = bytes ? 1 : -1;
    while (rc > 0 && (v = PyIter_Next(it))) {
        if (!PyIndex_Check(v) || i >= n)
            rc = 0;
        else if (put_int(c->f, v, PyBytes_AS_STRING(bytes) + i++ * size) < 0)
            rc = -1;
        Py_DECREF(v);
    }
    if (PyErr_Occurred())
        rc = -1;
    else if (rc > 0 && i != n)
        rc = 0;
    Py_XDECREF(it);
    if (rc <= 0) {
        Py_XDECREF(bytes);
        return rc;
    }
    return take_buffer(c, bytes, n, size) < 0 ? -1 : 1;
}

/* A numeric or bool column: numpy converts, after checking that nothing is
 * lost beyond what a same-kind cast loses (a float into an int field is a
 * TypeError, an out-of-range int a ValueError). */
static int prep_number(struct column *c, PyObject *col, Py_ssize_t n)
{
    const mms_field *f = c->f;
    char fmt[32];
    pymms_kind_format(f, fmt, sizeof fmt);
    PyObject *a = pymms_np_call("asarray", "(O)", col);
    if (!a)
        return -1;
    char k = pymms_dtype_kind(a);
    if (k == 'f' && pymms_kind_is_int(f->kind) && !pymms_is_ndarray(col)) {
        int r = take_ints(c, col, n);
        if (r) {
            Py_DECREF(a);
            return r < 0 ? -1 : 0;
        }
    }
    if (k == 'O' && pymms_int_attr(a, "ndim") == 1) {
        /* None or pandas' NA among the values: those are missing, 0 here. */
        PyObject *seq = PySequence_Fast(a, "a column must be a sequence");
        PyObject *vals = seq ? PyList_New(PySequence_Fast_GET_SIZE(seq)) : NULL;
        for (Py_ssize_t i = 0; vals && i < PyList_GET_SIZE(vals); i++) {
            PyObject *v = PySequence_Fast_GET_ITEM(seq, i);
            if (is_missing(v) && note_missing(c, i, n) < 0)
                Py_CLEAR(vals);
            else if (vals)
                PyList_SET_ITEM(vals, i, is_missing(v) ? PyLong_FromLong(0) : Py_NewRef(v));
        }
        Py_XDECREF(seq);
        Py_SETREF(a, vals ? pymms_np_call("asarray", "(O)", vals) : NULL);
        k = a ? pymms_dtype_kind(a) : 0;
        int r = (k == 'f' || k == 'O') && pymms_kind_is_int(f->kind) ? take_ints(c, vals, n) : 0;
        Py_XDECREF(vals);
        if (!a || r) {
            Py_XDECREF(a);
            return r > 0 ? 0 : -1;
        }
    }
    int ok = k == 'b' || k == 'i' || k == 'u' || n == 0 || /* [] is float64: no value */
             (k == 'f' && (f->kind == MMS_KIND_F32 || f->kind == MMS_KIND_F64));
    if (!k || !ok) {
        if (k)
            PyErr_Format(PyExc_TypeError, "column %s is %s: it cannot take values of dtype "
                         "kind '%c'", f->name, pymms_kind_name(f->kind), k);
        Py_DECREF(a);
        return -1;
    }
    if (pymms_int_attr(a, "ndim") != 1 || pymms_int_attr(a, "size") != n) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "column %s: not a 1-d sequence of %zd values",
                         f->name, n);
        Py_DECREF(a);
        return -1;
    }
    if ((pymms_kind_is_int(f->kind) || f->kind == MMS_KIND_BOOL) && k != 'b' && n > 0) {
        /* Bounds when the cast is not safe: the array's min and max. */
        PyObject *adt = PyObject_GetAttrString(a, "dtype");
        PyObject *safe = adt ? pymms_np_call("can_cast", "(Oss)", adt, fmt, "safe") : NULL;
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
    PyObject *cont = pymms_np_call("ascontiguousarray", "(Os)", a, fmt);
    int ovf = cont && f->kind == MMS_KIND_F32 && k == 'f' ? f32_overflow(a, cont) : 0;
    Py_DECREF(a);
    if (ovf) {
        if (ovf > 0)
            pymms_value_error("column %s is f32: values past its range (%g) do not fit",
                              f->name, (double)FLT_MAX);
        Py_CLEAR(cont);
    }
    if (!cont)
        return -1;
    return take_buffer(c, cont, n, f->size);
}

/* A fixed-size column built item by item (chars from str/bytes, refs from
 * tuples), into a bytes object of n * size. */
static int prep_items(pymms_store *st, struct column *c, PyObject *col, Py_ssize_t n)
{
    const mms_field *f = c->f;
    PyObject *seq = pymms_fast_copy(col, "a column must be a sequence");
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
        PyObject *v = PySequence_Fast_GET_ITEM(seq, i);
        if (f->kind != MMS_KIND_REF && missing_in_column(f, v)) {
            if (note_missing(c, i, n) < 0) {
                Py_DECREF(seq);
                Py_DECREF(out);
                return -1;
            }
        } else if (put_value(st, &at0, v, p + i * f->size, &owned) < 0) {
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
    Py_ssize_t isz = pymms_int_attr(a, "itemsize");
    if (isz < 0)
        return -1;
    PyObject *cont = pymms_np_call("ascontiguousarray", "(O)", a);
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
    pymms_kind_format(f, fmt, sizeof fmt);
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
    PyObject *cont = pymms_np_call("ascontiguousarray", "(Os)", a, "u8");
    if (!cont || take_buffer(c, cont, n, 8) < 0)
        return -1;
    const uint64_t *r = c->buf.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (r[i] && (MMS_REF_REGION(r[i]) != region || MMS_REF_SLOT(r[i]) >= slots)) {
            pymms_value_error("column %s: value %zd (0x%llx) is not a ref to a record of "
                              "table %s", f->name, i, (unsigned long long)r[i], f->target);
            return -1;
        }
    return 0;
}

static int prep_heap(struct column *c, PyObject *col, Py_ssize_t n)
{
    const mms_field *f = c->f;
    PyObject *seq = pymms_fast_copy(col, "a column must be a sequence");
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
        PyObject *b = missing_in_column(f, v) ? Py_NewRef(Py_None) /* no string */
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

/* A numpy masked array as a list with None for each masked value, so that
 * those are missing (or no string, no ref) as None is; numpy's own
 * conversions would store the values under the mask. New reference: col
 * itself when it is not a masked array. */
static PyObject *unmasked(PyObject *col)
{
    PyObject *ma = pymms_np_attr("ma");
    PyObject *is = ma ? PyObject_CallMethod(ma, "isMaskedArray", "O", col) : NULL;
    int masked = is ? PyObject_IsTrue(is) : -1;
    Py_XDECREF(ma);
    Py_XDECREF(is);
    if (masked < 0)
        return NULL;
    return masked ? PyObject_CallMethod(col, "tolist", NULL) : Py_NewRef(col);
}

static int prep_unmasked(pymms_store *st, struct column *c, PyObject *col, Py_ssize_t n)
{
    unsigned k = c->f->kind;
    if (pymms_kind_is_heap(k))
        return prep_heap(c, col, n);
    int nd = pymms_is_ndarray(col);
    if (nd < 0)
        return -1;
    if (k == MMS_KIND_CHARS) {
        if (nd && pymms_dtype_kind(col) == 'S')
            return pymms_int_attr(col, "ndim") == 1 ? prep_chars_array(c, col, n)
                                              : (PyErr_Format(PyExc_ValueError,
                                                              "column %s: not 1-d", c->f->name),
                                                 -1);
        return prep_items(st, c, col, n);
    }
    if (k == MMS_KIND_REF) {
        if (nd) {
            char dk = pymms_dtype_kind(col);
            if (dk != 'i' && dk != 'u') {
                PyErr_Format(PyExc_TypeError, "ref column %s: an array of refs must be of "
                             "integers (region << 48 | index)", c->f->name);
                return -1;
            }
            if (pymms_int_attr(col, "ndim") != 1 || pymms_int_attr(col, "size") != n) {
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

static int prep_column(pymms_store *st, struct column *c, PyObject *col, Py_ssize_t n)
{
    PyObject *plain = unmasked(col);
    int r = plain ? prep_unmasked(st, c, plain, n) : -1;
    Py_XDECREF(plain);
    return r;
}

static void column_free(struct column *c)
{
    if (c->have_buf)
        PyBuffer_Release(&c->buf);
    Py_XDECREF(c->src);
    Py_XDECREF(c->items);
    free(c->missing);
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

/* extend's columns (a dict, or a structured array's fields into a new dict,
 * *dictp) checked and converted into cols[0..*ncols), all of *np values.
 * 0, or -1 with an exception. */
static int prep_columns(pymms_store *st, const mms_schema *sc, PyObject *columns,
                        struct column *cols, uint32_t *ncols, Py_ssize_t *np, PyObject **dictp)
{
    PyObject *dict;
    if (PyDict_Check(columns)) {
        /* A copy: a conversion's Python code could change the caller's. */
        if (!(*dictp = dict = PyDict_Copy(columns)))
            return -1;
    } else if (PyObject_HasAttrString(columns, "columns") &&
               PyObject_HasAttrString(columns, "items")) {
        /* A pandas DataFrame: its columns by name, in row order. Two of
         * one name are refused: a dict would keep one of them. */
        PyObject *items = PyObject_CallMethod(columns, "items", NULL);
        PyObject *seq = items ? PySequence_List(items) : NULL;
        Py_XDECREF(items);
        if (!seq || !(*dictp = dict = PyDict_New())) {
            Py_XDECREF(seq);
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(seq); i++) {
            PyObject *kv = PyList_GET_ITEM(seq, i), *k, *v;
            if (!PyArg_ParseTuple(kv, "OO;a DataFrame's items() are (name, column)", &k, &v)) {
                Py_DECREF(seq);
                return -1;
            }
            int dup = PyDict_Contains(dict, k);
            if (dup > 0)
                PyErr_Format(PyExc_ValueError, "extend: the DataFrame has two columns called "
                             "%S", k);
            if (dup != 0 || PyDict_SetItem(dict, k, v) < 0) {
                Py_DECREF(seq);
                return -1;
            }
        }
        Py_DECREF(seq);
    } else {
        PyObject *dt = PyObject_GetAttrString(columns, "dtype");
        PyObject *names = dt ? PyObject_GetAttrString(dt, "names") : NULL;
        Py_XDECREF(dt);
        if (!names || names == Py_None) {
            PyErr_Clear();
            Py_XDECREF(names);
            PyErr_Format(PyExc_TypeError, "extend takes a dict of columns, a pandas DataFrame "
                         "or a numpy structured array, not %.100s", Py_TYPE(columns)->tp_name);
            return -1;
        }
        *dictp = dict = struct_columns(columns, names);
        Py_DECREF(names);
        if (!dict)
            return -1;
    }
    Py_ssize_t n = -1;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        uint32_t index;
        const mms_field *f = pymms_field_named(sc, key, &index);
        if (!f)
            return -1;
        /* One column per field (cols has one per field): two keys can
         * spell one name (a str subclass that equals neither). */
        for (uint32_t j = 0; j < *ncols; j++)
            if (cols[j].index == index) {
                PyErr_Format(PyExc_ValueError, "extend: field %s is given twice", f->name);
                return -1;
            }
        if (PyUnicode_Check(value) || PyBytes_Check(value) || PyByteArray_Check(value)) {
            /* One value, not a column of its characters (or bytes). */
            PyErr_Format(PyExc_TypeError, "column %s: a %.100s is one value, not a column "
                         "(a list of them: [value])", f->name, Py_TYPE(value)->tp_name);
            return -1;
        }
        Py_ssize_t len = PyObject_Length(value);
        if (len < 0) {
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "column %s: a %.100s has no length", f->name,
                             Py_TYPE(value)->tp_name);
            }
            return -1;
        }
        if (n >= 0 && len != n) {
            PyErr_Format(PyExc_ValueError, "columns differ in length: %s has %zd values, "
                         "another %zd", f->name, len, n);
            return -1;
        }
        n = len;
        cols[*ncols].f = f;
        cols[*ncols].index = index;
        if (prep_column(st, &cols[(*ncols)++], value, n) < 0)
            return -1;
    }
    *np = n;
    return 0;
}

const char pymms_extend_doc[] = PyDoc_STR(
"extend(columns) -> int: append len(column) records in a write transaction and\n"
"return the index of the first. columns: a dict field name -> numpy array or\n"
"sequence (all of one length; missing fields are zero), a pandas DataFrame\n"
"(columns by name, rows in order) or a numpy structured array (fields by\n"
"name). Numbers go through numpy with checks (a float into an\n"
"int field is a TypeError, an int out of range or a float past f32's range a\n"
"ValueError); chars take bytes or str; None (or pandas' NA) in a number, bool\n"
"or chars column marks that value missing (missing()), as in append(), and so\n"
"does a masked value of a numpy masked array (None in other columns); str/blob\n"
"take str/bytes/None (or NA, or NaN: no string; NaN is missing in chars too); ref takes (table, index), None, or an\n"
"integer array of refs (table.ref(i), or another ref column). Everything is\n"
"checked before the first record is appended; the records are appended in one\n"
"block of fresh space and filled by strided copies with the GIL released. If\n"
"the heap fills up while strings are stored, the transaction is doomed: it\n"
"aborts at the end of the with block.");

static PyObject *extend_in(pymms_table *tb, PyObject *columns)
{
    if (pymms_table_check(tb) < 0 || pymms_need_write(tb->store, "extend") < 0)
        return NULL;
    pymms_store *st = tb->store;
    const mms_schema *sc = pymms_table_schema(tb);
    if (!sc)
        return NULL;
    PyObject *dict = NULL, *res = NULL;
    struct column *cols = calloc(sc->nfields, sizeof *cols);
    uint32_t ncols = 0;
    if (!cols)
        return PyErr_NoMemory();
    /* Check and convert everything before appending anything. */
    Py_ssize_t n = -1;
    int bad;
    PYMMS_CONVERTING(st, bad = prep_columns(st, sc, columns, cols, &ncols, &n, &dict) < 0);
    if (bad)
        goto out;
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
    if (pymms_mark(tb, &tb->appended) < 0) {
        st->doomed = 1; /* records appended and left empty: never commit */
        goto out;
    }
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
    for (uint32_t k = 0; k < ncols; k++)
        for (Py_ssize_t i = 0; cols[k].missing && i < n; i++)
            if (cols[k].missing[i] &&
                (r = mms_table_null_set(tb->t, first + (uint64_t)i, cols[k].index, 1)) != 0) {
                st->doomed = 1; /* records without their marks: never commit */
                pymms_raise(r, "extend: marking a value missing (the transaction will abort)");
                goto out;
            }
    res = PyLong_FromUnsignedLongLong(first);
out:
    for (uint32_t k = 0; k < ncols; k++)
        column_free(&cols[k]);
    free(cols);
    Py_XDECREF(dict);
    return res;
}


PyObject *pymms_table_append(pymms_table *tb, PyObject *rec)
{
    return pymms_in_call(tb, append_in, rec);
}

PyObject *pymms_table_delete(pymms_table *tb, PyObject *arg)
{
    return pymms_in_call(tb, delete_in, arg);
}

PyObject *pymms_table_extend(pymms_table *tb, PyObject *columns)
{
    return pymms_in_call(tb, extend_in, columns);
}

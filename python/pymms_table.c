/*
 * pymms_table.c -- the Table object: its records as numpy arrays (through
 * pymms_view.c), one record as a dict, a string field, the live mask, a
 * copy as a pandas DataFrame, and the attributes (name, dtype, fields,
 * slots).
 *
 * It owns what may be viewed when (rules R4 and R5 of pymms.h) and must
 * never hand out an array those rules forbid, nor read outside a
 * transaction (R2). Writes are in pymms_write.c.
 */
#include "pymms.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    tb->nwviews = 0;
    tb->region = 0;
    tb->dead = 0;
    tb->weakrefs = NULL;
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
    if (tb->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)tb);
    Py_CLEAR(tb->store);
    Py_CLEAR(tb->name);
    Py_CLEAR(tb->dtype);
    Py_CLEAR(tb->fields);
    Py_TYPE(tb)->tp_free((PyObject *)tb);
}

/* tb->name from the C handle, which takes a table's new name when a
 * transaction finds it renamed (by another handle: mms_table_rename). Not
 * while another thread is inside a call on the Store (R1: that call may be
 * the one renaming it), nor inside a call or a conversion of its arguments
 * (R1: that call may hold tb->name), nor once the handle is closed: the
 * last name stays. */
static void name_sync(pymms_table *tb)
{
    pymms_store *st = tb->store;
    if (!st || st->closed || !st->s || tb->dead || st->calls || st->converting ||
        (st->busy && st->busy != pymms_me()))
        return;
    const char *now = mms_table_name(tb->t);
    if (!now)
        return;
    const char *had = PyUnicode_AsUTF8(tb->name); /* cached in the str */
    if (had && strcmp(now, had) == 0)
        return;
    PyErr_Clear(); /* a name from before the name rule may be no UTF-8 */
    PyObject *name = pymms_str_of(now);
    if (!name || PyUnicode_Compare(name, tb->name) == 0) {
        Py_XDECREF(name);
        PyErr_Clear(); /* no memory: the old name stays, better than none */
        return;
    }
    Py_SETREF(tb->name, name);
}

/* R1, closed store, aborted creation. */
int pymms_table_check(pymms_table *tb)
{
    if (!tb->store) {
        PyErr_SetString(PyExc_ValueError, "the table's store is gone");
        return -1;
    }
    if (pymms_check(tb->store) < 0)
        return -1;
    if (tb->dead) {
        pymms_raise_msg(MMS_ENOENT, "table %s: the transaction that created it was aborted",
                        PyUnicode_AsUTF8(tb->name));
        return -1;
    }
    name_sync(tb);
    return 0;
}

/* mms_table_ref(t, 0) is MMS_REF_NULL exactly when the table is gone
 * (mmstore.h): the handle's catalog entry is checked, no lookup by name,
 * as mms_table_count checks it (which then answers 0). A table whose
 * creation this Store aborted is tb->dead (pymms_table_check); one gone
 * otherwise was dropped by another handle, seen from this one's next
 * transaction. */
static int dropped(const pymms_table *tb)
{
    return mms_table_ref(tb->t, 0) == MMS_REF_NULL;
}

/* 0, or -1 with NoentError when the table was dropped (above). */
int pymms_table_there(pymms_table *tb)
{
    if (!dropped(tb))
        return 0;
    pymms_raise_msg(MMS_ENOENT, "table %s was dropped (by another handle or process)",
                    PyUnicode_AsUTF8(tb->name));
    return -1;
}

/* Python index (negative counts from the end) -> slot, IndexError if out. */
int pymms_index_arg(PyObject *o, uint64_t slots, uint64_t *out)
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
                res = pymms_str_of(ti[i].name);
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
        return pymms_raise_msg(MMS_EBADREF, "table %s record %llu field %s: ref 0x%llx is not a "
                               "string of this store", PyUnicode_AsUTF8(tname), (unsigned long long)i, field,
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
    memcpy(&v, p, pymms_kind_size(f->kind) ? pymms_kind_size(f->kind) : 1);
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
    case MMS_KIND_CHARS: return pymms_chars_of(p, f->size);
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
    if (pymms_table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *d = NULL;
    uint64_t i;
    const mms_schema *sc = pymms_table_schema(tb);
    int bad = !sc;
    if (sc)
        PYMMS_CONVERTING(tb->store, bad = pymms_index_arg(arg, mms_table_slots(tb->t), &i) < 0);
    if (bad)
        goto out;
    const char *rec = mms_table_get(tb->t, i);
    if (!rec || !mms_table_live(tb->t, i)) {
        PyErr_Format(PyExc_IndexError, "table %U: record %llu is deleted", tb->name,
                     (unsigned long long)i);
        goto out;
    }
    d = PyDict_New();
    for (uint32_t k = 0; d && k < sc->nfields; k++) {
        PyObject *v = mms_table_null(tb->t, i, k) == 1 ? Py_NewRef(Py_None)
                                                       : field_value(tb, &sc->fields[k], rec, i);
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
    if (!PyArg_ParseTuple(args, "OO:str", &iarg, &fname) || pymms_table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *res = NULL;
    uint64_t i;
    const mms_schema *sc = pymms_table_schema(tb);
    const mms_field *f = sc ? pymms_field_named(sc, fname, NULL) : NULL;
    int bad = !f;
    if (f)
        PYMMS_CONVERTING(tb->store, bad = pymms_index_arg(iarg, mms_table_slots(tb->t), &i) < 0);
    if (bad)
        goto out;
    if (!pymms_kind_is_heap(f->kind)) {
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
"ref(i) -> int: the ref of record i (region << 48 | i), as a ref field holds it.\n"
"Negative i counts from the end; IndexError if out of range, like get(i) (a\n"
"deleted record's ref is given: storing it in a ref field fails at commit).");

static PyObject *table_ref(pymms_table *tb, PyObject *arg)
{
    if (pymms_table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    uint64_t i;
    int bad = pymms_table_there(tb) < 0;
    PyObject *res = NULL;
    if (!bad)
        PYMMS_CONVERTING(tb->store, bad = pymms_index_arg(arg, mms_table_slots(tb->t), &i) < 0);
    if (!bad)
        res = PyLong_FromUnsignedLongLong(mms_table_ref(tb->t, i));
    if (pymms_scope_exit(tb->store, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
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
    if (st->state == PYMMS_WRITE && writable) {
        if (tb->created == st->serial || tb->migrated == st->serial) {
            PyErr_Format(PyExc_BufferError, "table %U was %s in this write transaction: after "
                         "an abort a writable array's stores would land in the records of "
                         "another layout or table; take writable arrays after the commit "
                         "(read-only ones, extend and append work now)", tb->name,
                         tb->created == st->serial ? "created" : "migrated");
            return -1;
        }
        if (tb->appended == st->serial) {
            PyErr_Format(PyExc_BufferError, "table %U was appended to in this write "
                         "transaction: its new records are fresh space until the commit, and a "
                         "store through the array after an abort could reach another "
                         "process's records; take a writable array after the commit, or fill "
                         "new records with extend", tb->name);
            return -1;
        }
    }
    /* R4: where another Store of this process finds this table's writable
     * views, whatever it calls the table by then. In a write transaction:
     * the catalog is current. */
    if (writable) {
        const char *name = mms_table_name(tb->t);
        uint32_t region = name ? pymms_region_of(st, name) : 0;
        if (region)
            tb->region = region;
    }
    return 0;
}

/* Every slot as a structured array (inside a transaction). The R4/R5
 * checks are the caller's (internal copies skip them: their array dies
 * before the call returns). huge: give the records' pages the 2 MiB hint
 * first (mms_advise; see "huge" in array_doc). */
static PyObject *records_array(pymms_table *tb, int writable, int huge)
{
    const mms_schema *sc = pymms_table_schema(tb);
    if (!sc)
        return NULL;
    PyObject *dtype = pymms_table_dtype_of(tb, sc);
    if (!dtype)
        return NULL;
    uint64_t slots = mms_table_slots(tb->t);
    char *base = mms_table_array(tb->t);
    /* Every slot must be mapped (R2 makes it so; check, never assume). */
    if (slots && (!base || mms_table_get(tb->t, slots - 1) == NULL))
        return pymms_raise_msg(MMS_ERANGE, "table %s: %llu slots but not all mapped",
                               PyUnicode_AsUTF8(tb->name),
                               (unsigned long long)slots);
    if (huge && slots) {
        /* A hint: a system without it (MMS_ENOTSUP) reads the same data. */
        int r = mms_advise(base, slots * sc->record_size, MMS_ADVISE_HUGE);
        if (r && r != MMS_ENOTSUP)
            return pymms_raise(r, "mms_advise");
    }
    return pymms_array(tb, base, slots, sc->record_size, dtype, writable);
}

#define HUGE_DOC                                                                          \
"huge=True asks the kernel to read the table's pages that are not yet in the\n"  \
"page cache in 2 MiB folios, which this and every later view (any process)\n"  \
"then maps 2 MiB at a time: a scan of the whole table no longer pays a first-\n" \
"touch cost per 4 KiB page (on the benchmark VM 40-80 ms more than a warm\n"   \
"pass over 80 MB of 4 KiB pages). It costs one system call and reads nothing.\n" \
"Pages cached in smaller folios keep their size until they leave the cache.\n"   \
"A table just loaded by extend() or import_csv() needs no hint: a write\n"     \
"handle writes bulk appends in 2 MiB folios already (open(huge=True), the\n"  \
"default). Not the default here: a cold read of one record then reads 2 MiB,\n" \
"and commits into a 2 MiB folio write all of it back; use it for tables\n"     \
"scanned whole (mms_advise in mmstore.h)."

PyDoc_STRVAR(array_doc,
"array(writable=False, huge=False) -> numpy structured array of every slot\n"
"(deleted ones included: see live()), over the mapped file, no copy.\n"
"Read-only, and it cannot be made writable. writable=True (in a write\n"
"transaction) makes plain numpy stores part of the transaction; see\n"
"help(mmstore) for how long each stays valid. After another process migrates\n"
"the table to smaller records or drops it, an array taken before shows, from\n"
"the next transaction on, the table's bytes now and zeros past them (never a\n"
"crash): take a new one.\n"
HUGE_DOC);

static PyObject *table_array(pymms_table *tb, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"writable", "huge", NULL};
    int writable = 0, huge = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pp:array", kwlist, &writable, &huge) ||
        pymms_table_check(tb) < 0 || view_allowed(tb, writable) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *a = records_array(tb, writable, huge);
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

PyDoc_STRVAR(missing_doc,
"missing(name) -> bool numpy array, one per slot: True where the record's value\n"
"of field name is missing (SQL NULL; mms_table_null). get() gives None for it.");

/* Field k's missing marks, one bool per slot (inside a transaction); *any
 * (if given) receives whether one is set. */
static PyObject *null_mask(pymms_table *tb, uint32_t k, int *any)
{
    uint64_t slots = mms_table_slots(tb->t), nbits = 0;
    const uint64_t *bits = mms_table_nulls(tb->t, k, &nbits);
    PyObject *m = pymms_np_call("zeros", "(Ks)", (unsigned long long)slots, "?");
    int set = 0;
    Py_buffer b;
    if (m && bits) {
        if (PyObject_GetBuffer(m, &b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
            Py_DECREF(m);
            return NULL;
        }
        unsigned char *p = b.buf;
        for (uint64_t i = 0; i < slots && i < nbits; i++)
            set |= p[i] = bits[i / 64] >> (i % 64) & 1;
        PyBuffer_Release(&b);
    }
    if (any)
        *any = set;
    return m;
}

static PyObject *table_missing(pymms_table *tb, PyObject *name)
{
    if (pymms_table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *m = NULL;
    uint32_t k;
    const mms_schema *sc = pymms_table_schema(tb);
    if (sc && pymms_field_named(sc, name, &k))
        m = null_mask(tb, k, NULL);
    if (pymms_scope_exit(tb->store, own, m ? 0 : -1) < 0)
        Py_CLEAR(m);
    return m;
}

static PyObject *table_live(pymms_table *tb, PyObject *unused)
{
    (void)unused;
    if (pymms_table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *m = pymms_table_there(tb) < 0 ? NULL : live_mask(tb);
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
"column(name, huge=False) -> a numeric, bool, chars or ref field as a read-only\n"
"numpy view of every slot (refs as uint64: region << 48 | index; index = ref &\n"
"mmstore.SLOT_MASK); a str or blob field as a list of str/bytes (None where\n"
"there is none), one per slot.\n"
HUGE_DOC);

static PyObject *table_column(pymms_table *tb, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "huge", NULL};
    PyObject *name;
    int huge = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:column", kwlist, &name, &huge) ||
        pymms_table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *res = NULL;
    const mms_schema *sc = pymms_table_schema(tb);
    const mms_field *f = sc ? pymms_field_named(sc, name, NULL) : NULL;
    if (!f)
        goto out;
    if (pymms_kind_is_heap(f->kind)) {
        res = heap_column(tb, f, sc->record_size, 0);
    } else if (view_allowed(tb, 0) == 0) {
        PyObject *a = records_array(tb, 0, huge);
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
    if (pymms_table_check(tb) < 0)
        return -1;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return -1;
    uint64_t n = mms_table_count(tb->t);
    int rc = !n ? pymms_table_there(tb) : 0; /* a dropped table counts 0 */
    if (pymms_scope_exit(tb->store, own, rc) < 0)
        return -1;
    return (Py_ssize_t)n;
}

/* ------------------------------------------------------------------------
 * to_pandas
 * ------------------------------------------------------------------------ */
PyDoc_STRVAR(to_pandas_doc,
"to_pandas() -> pandas.DataFrame of the live records (a copy), indexed by\n"
"record index (a RangeIndex when none is deleted). chars and str become str, blob bytes, refs the target record's\n"
"index (int64, -1 for none). A missing value (missing()) is NaN in a float\n"
"column, None in a string one, and <NA> in an integer, bool or ref one, which\n"
"then has pandas' nullable dtype (Int16, UInt64, boolean, ...). Needs pandas.");

/* col, field f's values of the live records (a list or a numpy array, a
 * copy), with the missing ones (miss: a bool per live record) as pandas
 * shows them: None in a list, NaN in a float array, <NA> in a nullable
 * integer or boolean array. Steals col. */
static PyObject *missing_as_pandas(PyObject *pd, const mms_field *f, PyObject *col,
                                   PyObject *miss)
{
    PyObject *res = NULL;
    if (PyList_Check(col)) {
        Py_buffer b;
        if (PyObject_GetBuffer(miss, &b, PyBUF_C_CONTIGUOUS) == 0) {
            const unsigned char *p = b.buf;
            for (Py_ssize_t i = 0; i < b.len && i < PyList_GET_SIZE(col); i++)
                if (p[i])
                    PyList_SetItem(col, i, Py_NewRef(Py_None));
            PyBuffer_Release(&b);
            res = Py_NewRef(col);
        }
    } else if (f->kind == MMS_KIND_F32 || f->kind == MMS_KIND_F64) {
        PyObject *nan = PyFloat_FromDouble(NAN);
        if (nan && PyObject_SetItem(col, miss, nan) == 0)
            res = Py_NewRef(col);
        Py_XDECREF(nan);
    } else {
        PyObject *arrays = PyObject_GetAttrString(pd, "arrays");
        if (arrays)
            res = PyObject_CallMethod(arrays, f->kind == MMS_KIND_BOOL ? "BooleanArray"
                                                                        : "IntegerArray",
                                      "OO", col, miss);
        Py_XDECREF(arrays);
    }
    Py_DECREF(col);
    return res;
}

static PyObject *pandas_columns(pymms_table *tb, PyObject *pd, const mms_schema *sc,
                                PyObject *mask, PyObject *arr)
{
    PyObject *data = PyDict_New();
    uint64_t slots = mms_table_slots(tb->t);
    const char *base = mms_table_array(tb->t);
    for (uint32_t k = 0; data && k < sc->nfields; k++) {
        const mms_field *f = &sc->fields[k];
        PyObject *name = pymms_str_of(f->name), *col = NULL;
        if (!name) {
            Py_CLEAR(data);
            break;
        }
        if (pymms_kind_is_heap(f->kind)) {
            col = heap_column(tb, f, sc->record_size, 1);
        } else if (f->kind == MMS_KIND_CHARS || f->kind == MMS_KIND_REF) {
            col = PyList_New(0);
            for (uint64_t i = 0; col && i < slots; i++) {
                if (!mms_table_live(tb->t, i))
                    continue;
                const char *p = base + i * sc->record_size + f->offset;
                PyObject *v;
                if (f->kind == MMS_KIND_CHARS) {
                    v = pymms_chars_of(p, f->size);
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
                PyObject *a = pymms_np_call("array", "(Os)", col, "i8");
                Py_SETREF(col, a);
            }
        } else {
            PyObject *view = PyObject_GetItem(arr, name);
            col = view ? PyObject_GetItem(view, mask) : NULL; /* a copy */
            Py_XDECREF(view);
        }
        int any = 0;
        PyObject *miss = col ? null_mask(tb, k, &any) : NULL;
        if (!miss) {
            Py_CLEAR(col);
        } else if (any) {
            PyObject *live_miss = PyObject_GetItem(miss, mask);
            col = live_miss ? missing_as_pandas(pd, f, col, live_miss) : (Py_DECREF(col), NULL);
            Py_XDECREF(live_miss);
        }
        Py_XDECREF(miss);
        if (col && PyList_Check(col)) {
            /* Text: an object array, which pandas keeps as it is; from a
             * list it infers the dtype, float64 for an empty one. */
            PyObject *a = pymms_np_call("array", "(Os)", col, "O");
            Py_SETREF(col, a);
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
    if (pymms_table_check(tb) < 0)
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
    const mms_schema *sc = pymms_table_schema(tb);
    if (!sc || !(mask = live_mask(tb)))
        goto out;
    /* The index is the live records' indices: 0..n-1 without a deleted
     * one, which a RangeIndex holds in no memory (an int64 array of 10^7
     * is 80 MB). */
    uint64_t slots = mms_table_slots(tb->t);
    if (mms_table_count(tb->t) == slots)
        index = PyObject_CallMethod(pd, "RangeIndex", "K", (unsigned long long)slots);
    else
        index = pymms_np_call("flatnonzero", "(O)", mask);
    if (!index)
        goto out;
    /* A temporary array, dead before this returns: R4 does not apply. */
    if (!(arr = records_array(tb, 0, 0)) || !(data = pandas_columns(tb, pd, sc, mask, arr)))
        goto out;
    Py_CLEAR(arr);
    PyObject *names = PyList_New(sc->nfields);
    for (uint32_t k = 0; names && k < sc->nfields; k++) {
        PyObject *nm = pymms_str_of(sc->fields[k].name);
        if (!nm) {
            Py_CLEAR(names);
            break;
        }
        PyList_SET_ITEM(names, k, nm);
    }
    if (names) {
        /* copy=False: every column is a copy of our own already (never a
         * view of the mapping); pandas' default copies a dict's arrays
         * again, twice the frame's memory for a moment. */
        PyObject *df = PyObject_GetAttrString(pd, "DataFrame");
        PyObject *kw = Py_BuildValue("{s:O,s:O,s:O}", "index", index, "columns", names, "copy",
                                     Py_False);
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
    name_sync(tb);
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
    if (pymms_table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *res = NULL;
    const mms_schema *sc = pymms_table_schema(tb);
    if (sc) {
        switch (which) {
        case 0:
            res = pymms_table_dtype_of(tb, sc);
            Py_XINCREF(res);
            break;
        case 1:
            if (!tb->fields)
                tb->fields = pymms_make_fields(sc);
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
    name_sync(tb);
    if (!tb->store || tb->store->closed || !tb->store->s || tb->dead ||
        pymms_forked(tb->store) || (tb->store->busy && tb->store->busy != pymms_me()))
        return PyUnicode_FromFormat("<mmstore.Table %R>", tb->name);
    if (tb->store->state != PYMMS_IDLE && tb->store->owner != pymms_me())
        return PyUnicode_FromFormat("<mmstore.Table %R>", tb->name);
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    const mms_schema *sc = mms_table_schema(tb->t);
    PyObject *r = dropped(tb)
        ? PyUnicode_FromFormat("<mmstore.Table %R: dropped>", tb->name)
        : PyUnicode_FromFormat("<mmstore.Table %R: %llu records, %llu slots of %u bytes>",
                               tb->name, (unsigned long long)mms_table_count(tb->t),
                               (unsigned long long)mms_table_slots(tb->t),
                               sc ? (unsigned)sc->record_size : 0u);
    if (pymms_scope_exit(tb->store, own, r ? 0 : -1) < 0)
        Py_CLEAR(r);
    return r;
}

/* ------------------------------------------------------------------------
 * Finding records by key (an index of the field: mms index / create_index)
 * ------------------------------------------------------------------------ */

/* -1, 0, 1 as two values of field f compare in an ordered index (floats:
 * -0.0 == +0.0, NaN after +inf; chars: bytes). */
static int key_cmp(const mms_field *f, const unsigned char *x, const unsigned char *y)
{
    int cls = mms_kind_class(f->kind);
    if (cls == 'f') {
        double a, b;
        if (f->size == 4) {
            float fa, fb;
            memcpy(&fa, x, 4);
            memcpy(&fb, y, 4);
            a = fa, b = fb;
        } else {
            memcpy(&a, x, 8);
            memcpy(&b, y, 8);
        }
        if (a != a || b != b)
            return (a != a) - (b != b);
        return a < b ? -1 : a > b;
    }
    if (cls == 'i') {
        int64_t a = 0, b = 0;
        switch (f->size) {
        case 1: a = *(const int8_t *)x, b = *(const int8_t *)y; break;
        case 2: { int16_t p, q; memcpy(&p, x, 2); memcpy(&q, y, 2); a = p, b = q; } break;
        case 4: { int32_t p, q; memcpy(&p, x, 4); memcpy(&q, y, 4); a = p, b = q; } break;
        default: memcpy(&a, x, 8); memcpy(&b, y, 8);
        }
        return a < b ? -1 : a > b;
    }
    if (cls == 'c')
        return memcmp(x, y, f->size);
    uint64_t a = 0, b = 0; /* unsigned, bool, ref: little-endian */
    memcpy(&a, x, f->size < 8 ? f->size : 8);
    memcpy(&b, y, f->size < 8 ? f->size : 8);
    return a < b ? -1 : a > b;
}

/* An int64 numpy array of n elements, its data into *p. */
static PyObject *index_array(size_t n, Py_buffer *b)
{
    PyObject *empty = pymms_np_attr("empty");
    PyObject *a = empty ? PyObject_CallFunction(empty, "ns", (Py_ssize_t)n, "int64") : NULL;
    Py_XDECREF(empty);
    if (a && PyObject_GetBuffer(a, b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        Py_CLEAR(a);
    return a;
}

PyDoc_STRVAR(find_doc,
"find(field, key) -> int64 numpy array: the indices of the records whose field\n"
"holds key, through the field's index (hash or ordered; mms index). Ascending\n"
"for an ordered index. Raises the MMS_ENOENT error if the field has no index.\n"
"key is converted as append() converts a value of the field: TypeError for a\n"
"key of the wrong type, ValueError for one the field cannot hold. Inside a\n"
"write transaction the index answers as of the last commit: records the\n"
"transaction appended or gave the key are found once it commits.");

static PyObject *table_find(pymms_table *tb, PyObject *args)
{
    PyObject *fname, *key;
    if (!PyArg_ParseTuple(args, "UO:find", &fname, &key) || pymms_table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *res = NULL;
    const mms_schema *sc = pymms_table_schema(tb);
    const mms_field *f = sc ? pymms_field_named(sc, fname, NULL) : NULL;
    unsigned char k[256]; /* chars keys are at most 256 bytes (mmstore.h) */
    mms_index *ix;
    int r;
    if (!f)
        goto out;
    if ((r = mms_index_open(tb->t, f->name, &ix)) != 0) {
        pymms_raise(r, "find");
        goto out;
    }
    int bad;
    PYMMS_CONVERTING(tb->store, bad = pymms_put_key(tb->store, f, key, k, sizeof k) < 0);
    if (bad)
        goto out;
    size_t n = 0, m = 0;
    if ((r = mms_index_find_all(ix, k, NULL, 0, &n)) != 0) {
        pymms_raise(r, "find");
        goto out;
    }
    Py_buffer b;
    res = index_array(n, &b);
    if (!res)
        goto out;
    r = mms_index_find_all(ix, k, (uint64_t *)b.buf, n, &m);
    PyBuffer_Release(&b);
    if (r || m != n) {
        Py_CLEAR(res);
        pymms_raise(r ? r : MMS_ECORRUPT, "find");
    }
out:
    if (pymms_scope_exit(tb->store, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
}

PyDoc_STRVAR(range_doc,
"range(field, lo, hi) -> int64 numpy array: the indices of the records with\n"
"lo <= field < hi, in key order (then record order), through the field's\n"
"ordered index. lo or hi None: no bound on that side; each other bound is\n"
"converted as a key of find() is.");

static PyObject *table_range(pymms_table *tb, PyObject *args)
{
    PyObject *fname, *lo, *hi;
    if (!PyArg_ParseTuple(args, "UOO:range", &fname, &lo, &hi) || pymms_table_check(tb) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(tb->store, &own) < 0)
        return NULL;
    PyObject *res = NULL, *list = NULL;
    const mms_schema *sc = pymms_table_schema(tb);
    const mms_field *f = sc ? pymms_field_named(sc, fname, NULL) : NULL;
    unsigned char klo[256], khi[256], cur[256];
    mms_index *ix;
    mms_cursor *c = NULL;
    int r;
    if (!f)
        goto out;
    if ((r = mms_index_open(tb->t, f->name, &ix)) != 0 || (r = mms_cursor_open(ix, &c)) != 0) {
        pymms_raise(r, "range");
        goto out;
    }
    int bad;
    PYMMS_CONVERTING(tb->store,
                     bad = (lo != Py_None && pymms_put_key(tb->store, f, lo, klo, sizeof klo) < 0) ||
                           (hi != Py_None && pymms_put_key(tb->store, f, hi, khi, sizeof khi) < 0));
    if (bad)
        goto out;
    size_t cap = 1024, n = 0;
    uint64_t *v = malloc(cap * 8), at;
    if (!v) {
        PyErr_NoMemory();
        goto out;
    }
    r = mms_cursor_seek(c, lo == Py_None ? MMS_SEEK_FIRST : MMS_SEEK_GE,
                        lo == Py_None ? NULL : klo, &at, cur);
    while (r == 0 && (hi == Py_None || key_cmp(f, cur, khi) < 0)) {
        if (n == cap) {
            uint64_t *nv = realloc(v, cap * 2 * 8);
            if (!nv) {
                free(v);
                PyErr_NoMemory();
                goto out;
            }
            v = nv, cap *= 2;
        }
        v[n++] = at;
        r = mms_cursor_next(c, &at, cur);
    }
    if (r && r != MMS_ENOTFOUND) {
        free(v);
        pymms_raise(r, "range");
        goto out;
    }
    Py_buffer b;
    res = index_array(n, &b);
    if (res) {
        memcpy(b.buf, v, n * 8);
        PyBuffer_Release(&b);
    }
    free(v);
out:
    mms_cursor_close(c);
    Py_XDECREF(list);
    if (pymms_scope_exit(tb->store, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
}

/* As Store.__reduce__: refused, saying what to do instead. */
static PyObject *table_reduce(pymms_table *tb, PyObject *unused)
{
    (void)unused;
    return PyErr_Format(PyExc_TypeError, "an mmstore.Table cannot be pickled or copied: it "
                        "lives in its Store's handle; pass the store's path (%R) and the table's "
                        "name (%R), mmstore.open(path).table(name) in the other process, or "
                        "pickle a copy of its data (to_pandas(), array().copy())",
                        tb->store ? tb->store->path : Py_None, tb->name);
}

static PyMethodDef table_methods[] = {
    {"__reduce__", (PyCFunction)table_reduce, METH_NOARGS, NULL},
    {"array", (PyCFunction)(void (*)(void))table_array, METH_VARARGS | METH_KEYWORDS, array_doc},
    {"live", (PyCFunction)table_live, METH_NOARGS, live_doc},
    {"missing", (PyCFunction)table_missing, METH_O, missing_doc},
    {"column", (PyCFunction)(void (*)(void))table_column, METH_VARARGS | METH_KEYWORDS,
     column_doc},
    {"get", (PyCFunction)table_get, METH_O, get_doc},
    {"find", (PyCFunction)table_find, METH_VARARGS, find_doc},
    {"range", (PyCFunction)table_range, METH_VARARGS, range_doc},
    {"str", (PyCFunction)table_str, METH_VARARGS, str_doc},
    {"ref", (PyCFunction)table_ref, METH_O, ref_doc},
    {"append", (PyCFunction)pymms_table_append, METH_O, pymms_append_doc},
    {"extend", (PyCFunction)pymms_table_extend, METH_O, pymms_extend_doc},
    {"delete", (PyCFunction)pymms_table_delete, METH_O, pymms_delete_doc},
    {"to_pandas", (PyCFunction)table_to_pandas, METH_NOARGS, to_pandas_doc},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef table_getset[] = {
    {"name", (getter)table_get_name, NULL,
     "the table's name: its new one once a transaction saw it renamed", NULL},
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
    .tp_weaklistoffset = offsetof(pymms_table, weakrefs),
    .tp_methods = table_methods,
    .tp_getset = table_getset,
};


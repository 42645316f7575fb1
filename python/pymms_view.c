/*
 * pymms_view.c -- the View: the object a numpy array over a table is built
 * on (its .base), exporting one range of records through the buffer
 * protocol.
 *
 * It owns the count of live views (R3 of pymms.h): each View counts itself
 * in its Table and Store while it exists, and the last one to go closes a
 * C handle whose Store was closed meanwhile. It must never export a
 * writable buffer from a read-only View (numpy then refuses
 * `a.flags.writeable = True`), and never outlive the mapping it points
 * into: it holds the Store, and the Store keeps the handle open while any
 * View lives.
 *
 * Why lifetimes and not buffer exports: the View has no bf_releasebuffer
 * on purpose. With one, numpy.frombuffer() wraps the exporter in a
 * memoryview and makes that the array's base -- and `a.base.release()`
 * would then drop the export (and the last reference to the View) while
 * the array still points into the mapping. Without it, numpy makes the
 * View itself the base, and nothing but the array's death frees it.
 */
#include "pymms.h"

static int view_getbuffer(pymms_view *v, Py_buffer *b, int flags)
{
    /* PyBuffer_FillInfo refuses PyBUF_WRITABLE on a read-only export with
     * BufferError. The buffer holds a reference to v (b->obj). */
    return PyBuffer_FillInfo(b, (PyObject *)v, v->buf, v->len, !v->writable, flags);
}

static PyBufferProcs view_as_buffer = {(getbufferproc)view_getbuffer, NULL};

static void view_dealloc(pymms_view *v)
{
    pymms_store *st = v->store;
    st->nviews--;
    if (v->writable) {
        v->table->nwviews--;
        st->nwviews--;
    }
    /* R3: the Store was closed while this view lived; the handle goes with
     * the last view. An error here has nobody to go to. */
    if (st->closed && st->nviews == 0 && st->s) {
        int r = pymms_store_release(st);
        (void)r;
    }
    Py_DECREF(v->table);
    Py_DECREF(st);
    Py_TYPE(v)->tp_free((PyObject *)v);
}

static PyObject *view_repr(pymms_view *v)
{
    return PyUnicode_FromFormat("<mmstore view of table %R: %zd bytes, %s>", v->table->name,
                                v->len, v->writable ? "writable" : "read-only");
}

PyTypeObject pymms_view_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mmstore.View",
    .tp_basicsize = sizeof(pymms_view),
    .tp_dealloc = (destructor)view_dealloc,
    .tp_repr = (reprfunc)view_repr,
    .tp_as_buffer = &view_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The records a numpy array over a table points to (the array's .base).",
};

PyObject *pymms_array(pymms_table *tb, char *buf, uint64_t n, uint32_t record_size,
                      PyObject *dtype, int writable)
{
    if (n == 0) {
        /* Nothing mapped to point to: a plain empty array. */
        PyObject *empty = pymms_np_attr("empty");
        PyObject *a = empty ? PyObject_CallFunction(empty, "iO", 0, dtype) : NULL;
        Py_XDECREF(empty);
        if (a && !writable) {
            PyObject *r = PyObject_CallMethod(a, "setflags", "OOO", Py_False, Py_None, Py_None);
            if (!r)
                Py_CLEAR(a);
            Py_XDECREF(r);
        }
        return a;
    }
    if (n > (uint64_t)PY_SSIZE_T_MAX / record_size) {
        PyErr_SetString(PyExc_OverflowError, "table too large for this address space");
        return NULL;
    }
    PyObject *frombuffer = pymms_np_attr("frombuffer");
    if (!frombuffer)
        return NULL;
    pymms_view *v = PyObject_New(pymms_view, &pymms_view_type);
    if (!v) {
        Py_DECREF(frombuffer);
        return NULL;
    }
    pymms_store *st = tb->store;
    v->table = (pymms_table *)Py_NewRef((PyObject *)tb);
    v->store = (pymms_store *)Py_NewRef((PyObject *)st);
    v->buf = buf;
    v->len = (Py_ssize_t)(n * record_size);
    v->writable = writable;
    st->nviews++;
    if (writable) {
        tb->nwviews++;
        st->nwviews++;
    }
    /* numpy keeps v as the array's base (see the top of this file). */
    PyObject *a = PyObject_CallFunction(frombuffer, "OOK", (PyObject *)v, dtype,
                                        (unsigned long long)n);
    Py_DECREF(frombuffer);
    Py_DECREF(v);
    return a;
}

/*
 * pymms_store.c -- the Store object: the C handle, its transactions and the
 * rules R1-R6 of pymms.h (threads, implicit read transactions, lifetimes,
 * stray stores, blocking calls), plus wait, checkpoint, verify, info and
 * the CSV import (the `mms import` tool in a subprocess).
 *
 * It owns the handle's state as Python sees it (idle, reading, writing; the
 * owner thread; the View counts) and is the only file that begins or ends
 * a transaction. It must never call into the C library while another
 * thread is inside a call on the same handle (R1), and never leave a
 * transaction begun when it raises.
 */
#include "pymms.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#endif

extern char **environ;

static const char *const state_name[] = {"no", "a read", "a write"};

/* Every Store of this process until it is deallocated (R4, R6). The GIL
 * guards it. */
static pymms_store *all_stores;

/* ------------------------------------------------------------------------
 * R1: who may call
 * ------------------------------------------------------------------------ */
/* R1: Python code run by a call's conversion of its arguments calls back;
 * closing: or by Python code run inside any call. */
static int reentered(pymms_store *st, int closing)
{
    if (st->converting)
        pymms_raise_msg(MMS_EBUSY, "a call on this Store was converting a value (its "
                                   "__index__, __float__, __array__, ...) and that called the "
                                   "Store again");
    else if (closing && st->calls)
        pymms_raise_msg(MMS_EBUSY, "close() from Python code that runs inside a call on this "
                                   "Store (a __del__ run by the garbage collector?)");
    else
        return 0;
    return -1;
}

/* Forks of this process so far, as seen in the child (pthread_atfork):
 * a Store opened before one is the child's copy of the parent's, with the
 * parent's transaction state, cache and handle. Its calls must not answer
 * from those (the C library refuses the calls that reach it; reads from a
 * copied transaction and cached Tables did not). */
static unsigned long forks;

static void fork_counted(void)
{
    forks++;
}

int pymms_forked(const pymms_store *st)
{
    return st->forks != forks;
}

/* R1 without the conversion check: open, and this thread's to use. */
static int usable(pymms_store *st)
{
    if (st->closed || !st->s || !st->tables) {
        PyErr_SetString(PyExc_ValueError, "the store is closed");
        return -1;
    }
    if (pymms_forked(st)) {
        pymms_raise_msg(MMS_EFORK, "this Store was opened before the process forked: a child "
                                   "opens the store again (mmstore.open(path)) and may only "
                                   "close() this one");
        return -1;
    }
    unsigned long me = pymms_me();
    if (st->busy && st->busy != me) {
        pymms_raise_msg(MMS_EBUSY, "another thread is inside a call on this Store; "
                                   "give each thread its own Store (mmstore.open)");
        return -1;
    }
    if (st->state != PYMMS_IDLE && st->owner != me) {
        pymms_raise_msg(MMS_EBUSY, "this Store is inside %s transaction of another thread",
                        state_name[st->state]);
        return -1;
    }
    return 0;
}

int pymms_check(pymms_store *st)
{
    return reentered(st, 0) < 0 ? -1 : usable(st);
}

int pymms_need_write(pymms_store *st, const char *what)
{
    if (st->state == PYMMS_WRITE)
        return 0;
    if (st->flags & MMS_RDONLY)
        pymms_raise_msg(MMS_ERDONLY, "%s: the store is open read-only", what);
    else
        pymms_raise_msg(MMS_ENOTXN, "%s needs a write transaction (with store.write():)", what);
    return -1;
}

/* ------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------ */
/* Seconds on the monotonic clock. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* R6: between two slices of a wait, Python's signal handlers run (with
 * other threads kept out, R1). A handler may raise, and it may close the
 * Store (or fork): then the next slice must not call the C library with
 * the handle closed ("handle is NULL"). 0, or -1 with the exception. */
static int between_slices(pymms_store *st)
{
    st->busy = pymms_me();
    int sig = PyErr_CheckSignals();
    st->busy = 0;
    return sig < 0 ? -1 : usable(st);
}

/* R6: begin a write transaction, waiting for another writer until `until`
 * (a time on mono_s(); negative: for ever), with Ctrl-C heard. A signal
 * does not end the C wait, so it waits in slices: mms_txn_begin_timed for
 * at most 100 ms (asleep on the lock's futex, woken when the other writer
 * lets go), then the signal handlers, then again. flags MMS_TXN_NOWAIT:
 * one try, MMS_EBUSY if another writer holds the store. The C call makes
 * its refusals at once (this thread is inside a transaction on another
 * handle of the store: waiting would wait for itself), whatever the slice.
 * Returns the C error (-ETIMEDOUT once until has passed), or 1 with the
 * exception a handler raised. */
static int writer_begin(pymms_store *st, unsigned flags, double until)
{
    int r;
    if (flags & MMS_TXN_NOWAIT) {
        PYMMS_BLOCKING(st, r = mms_txn_begin_timed(st->s, MMS_TXN_NOWAIT, 0));
        return r;
    }
    for (;;) {
        int slice = 100;
        if (until >= 0) {
            double rest = until - mono_s();
            slice = rest >= 0.1 ? 100 : rest > 0 ? (int)(rest * 1000) + 1 : 1;
        }
        PYMMS_BLOCKING(st, r = mms_txn_begin_timed(st->s, 0, slice));
        if (r != -ETIMEDOUT || (until >= 0 && mono_s() >= until))
            return r;
        if (between_slices(st) < 0)
            return 1;
    }
}

/* R5: writable views outlived a write transaction, so stores through them
 * may sit in private pages; drop every private page before a transaction
 * begins (waiting for the writer lock as writer_begin does). The count is
 * read before the discard: if no writable view is left then, none can
 * store after it, and the taint ends. Returns writer_begin's result; the
 * C error is not raised. */
static int discard_stray(pymms_store *st, unsigned flags, double until)
{
    Py_ssize_t left = st->nwviews;
    int r = writer_begin(st, flags, until);
    if (!r)
        PYMMS_BLOCKING(st, r = mms_txn_abort(st->s));
    if (!r && left == 0)
        st->tainted = 0;
    return r;
}

/* Begin a read transaction (R2). latest: one that sees every commit made,
 * by any handle, before this call (mms_read_begin_latest), waiting for
 * the readers that hold them back in slices of 100 ms with Python's signal
 * handlers run between them (R6); a handler that raises, or closes the
 * Store, ends the wait. Each slice waits for the commits made before the
 * call, not before the slice: one that took the commit made last when it
 * began could wait for a commit made since (held back by a reader begun
 * since) long after the ones this call waits for were seen. So after a
 * slice a plain read transaction is tried, taken if it sees them. */
static int read_begin(pymms_store *st, int latest)
{
    int r = st->tainted ? discard_stray(st, 0, -1) : 0;
    if (r) {
        if (r != 1)
            pymms_raise(r, "discarding stores made through writable arrays after their "
                           "transaction");
        return -1;
    }
    uint64_t target = 0;
    if (latest) {
        mms_info *in = malloc(sizeof *in);
        if (!in) {
            PyErr_NoMemory();
            return -1;
        }
        r = mms_info_get(st->s, in);
        target = in->committed_txn;
        free(in);
        if (r) {
            pymms_raise(r, "read transaction");
            return -1;
        }
    }
    for (;;) {
        PYMMS_BLOCKING(st, r = latest ? mms_read_begin_latest(st->s, 100)
                                      : mms_read_begin(st->s));
        if (!latest || r != -ETIMEDOUT)
            break;
        if (between_slices(st) < 0)
            return -1;
        PYMMS_BLOCKING(st, r = mms_read_begin(st->s));
        if (r || mms_txn_id(st->s) >= target)
            break;
        mms_read_end(st->s);
    }
    if (r) {
        pymms_raise(r, "read transaction");
        return -1;
    }
    st->state = PYMMS_READ;
    st->owner = pymms_me();
    return 0;
}

static int read_end(pymms_store *st)
{
    int r = mms_read_end(st->s);
    st->state = PYMMS_IDLE;
    st->owner = 0;
    if (r) {
        pymms_raise(r, "end of read transaction");
        return -1;
    }
    return 0;
}

int pymms_scope_enter(pymms_store *st, int *own)
{
    *own = 0;
    /* R1 again: Python code run since the caller's pymms_check (importing
     * pandas, a str subclass's __hash__) can switch threads, and another
     * thread may have closed the Store or begun a transaction meanwhile. */
    if (usable(st) < 0)
        return -1;
    if (st->state == PYMMS_IDLE) {
        if (read_begin(st, 0) < 0)
            return -1;
        *own = 1;
    } /* else the caller's (usable() made sure it is this thread's) */
    st->calls++;
    return 0;
}

int pymms_scope_exit(pymms_store *st, int own, int rc)
{
    st->calls--;
    if (!own || st->state != PYMMS_READ)
        return rc;
    if (rc < 0) {
        /* Keep the exception that made the call fail. */
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        mms_read_end(st->s);
        st->state = PYMMS_IDLE;
        st->owner = 0;
        PyErr_Restore(t, v, tb);
        return rc;
    }
    return read_end(st) < 0 ? -1 : rc;
}

/* timeout: seconds to wait for another writer (negative: for ever). */
static int write_begin(pymms_store *st, unsigned flags, double timeout)
{
    double until = timeout < 0 ? -1 : mono_s() + timeout;
    const char *what = "discarding stores made through writable arrays after their "
                       "transaction";
    int r = st->tainted ? discard_stray(st, flags, until) : 0;
    if (!r) {
        what = "write transaction";
        r = writer_begin(st, flags, until);
    }
    if (r == -ETIMEDOUT) {
        pymms_raise_msg(-ETIMEDOUT, "%s: another writer held the store for the whole "
                                    "timeout of %g s", what, timeout);
        return -1;
    }
    if (r) {
        if (r != 1)
            pymms_raise(r, what);
        return -1;
    }
    st->state = PYMMS_WRITE;
    st->owner = pymms_me();
    st->serial++;
    st->doomed = 0;
    return 0;
}

/* After a write transaction that did not commit: the tables it created are
 * gone (their handles must not be used again). */
static void forget_created(pymms_store *st)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    if (!st->tables || !st->pinned) /* cleared by the garbage collector */
        return;
    PyObject *gone = PyList_New(0);
    if (!gone) {
        PyErr_Clear();
        return;
    }
    /* The transaction's marks are on the Tables it pinned. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(st->pinned); i++) {
        pymms_table *tb = (pymms_table *)PyList_GET_ITEM(st->pinned, i);
        if (tb->created == st->serial)
            tb->dead = 1;
        /* An aborted migration maps the old layout back: rebuild dtype. */
        if (tb->migrated == st->serial)
            tb->layout = 0;
    }
    while (PyDict_Next(st->tables, &pos, &key, &value)) {
        pymms_table *tb = pymms_cached(value);
        if ((!tb || tb->dead) && PyList_Append(gone, key) < 0)
            PyErr_Clear();
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(gone); i++)
        if (PyDict_DelItem(st->tables, PyList_GET_ITEM(gone, i)) < 0)
            PyErr_Clear();
    Py_DECREF(gone);
}

/* The write transaction ended: its marks need their Tables no more. */
static void unpin(pymms_store *st)
{
    if (st->pinned && PyList_SetSlice(st->pinned, 0, PY_SSIZE_T_MAX, NULL) < 0)
        PyErr_Clear();
}

pymms_table *pymms_cached(PyObject *ref)
{
    PyObject *o = PyWeakref_GetObject(ref); /* borrowed; Py_None once dead */
    return o && o != Py_None ? (pymms_table *)o : NULL;
}

int pymms_cache_put(pymms_store *st, PyObject *name, PyObject *tb)
{
    PyObject *w = PyWeakref_NewRef(tb, NULL);
    int r = w ? PyDict_SetItem(st->tables, name, w) : -1;
    Py_XDECREF(w);
    return r;
}

int pymms_mark(pymms_table *tb, uint64_t *mark)
{
    pymms_store *st = tb->store;
    if (*mark == st->serial)
        return 0;
    *mark = st->serial;
    if (!st->pinned) /* cleared by the garbage collector */
        return 0;
    int in = PySequence_Contains(st->pinned, (PyObject *)tb);
    return in < 0 ? -1 : in ? 0 : PyList_Append(st->pinned, (PyObject *)tb);
}

/* End the write transaction: commit it (commit != 0, and nothing in it
 * failed half-way) or abort it. Either way it is over when this returns. */
static int write_end(pymms_store *st, int commit)
{
    int r, committed = 0;
    const char *what = "commit";
    if (commit && st->doomed) {
        PYMMS_BLOCKING(st, r = mms_txn_abort(st->s));
        r = 0;
        what = NULL;
    } else if (commit) {
        PYMMS_BLOCKING(st, r = mms_txn_commit(st->s));
        if (r == MMS_ETXN) {
            /* This thread is inside a read transaction on another handle of
             * the store: the commit would wait for itself. The C
             * transaction stays open; a Python `with` cannot retry. */
            char detail[512];
            snprintf(detail, sizeof detail, "%s", mms_errdetail());
            PYMMS_BLOCKING(st, mms_txn_abort(st->s));
            st->state = PYMMS_IDLE;
            st->owner = 0;
            forget_created(st);
            unpin(st);
            if (st->nwviews > 0)
                st->tainted = 1;
            pymms_raise_msg(MMS_ETXN, "commit refused, the transaction was aborted: %s", detail);
            return -1;
        }
        committed = r == 0;
    } else {
        PYMMS_BLOCKING(st, r = mms_txn_abort(st->s));
        what = "abort";
    }
    st->state = PYMMS_IDLE;
    st->owner = 0;
    if (st->nwviews > 0)
        st->tainted = 1;
    if (!committed)
        forget_created(st);
    unpin(st);
    if (commit && !what) {
        PyErr_SetString(pymms_Error, "the write transaction was aborted, not committed: a call "
                                     "in it failed part-way (see the exception it raised)");
        return -1;
    }
    if (r) {
        pymms_raise(r, what);
        if (commit) {
            /* mmstore.h, mms_txn_commit: a failure writing the journal
             * aborts; one syncing or applying it poisons the handle, and
             * the next open decides whether the transaction committed. */
            int p;
            PYMMS_BLOCKING(st, p = mms_read_begin(st->s); if (!p) mms_read_end(st->s));
            pymms_outcome_raised("committed", p == MMS_EPOISONED ? -1 : 0, PyUnicode_FromString(
                p == MMS_EPOISONED ? "mmstore: whether the transaction committed is decided "
                                     "when the store is opened again (close this Store and "
                                     "open it: its handle is poisoned)"
                                   : "mmstore: the transaction was aborted, nothing of it "
                                     "was applied"));
        }
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The transaction context managers: store.read(), store.write()
 * ------------------------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    pymms_store *store;
    int write;
    unsigned flags;
    double timeout;  /* write: seconds to wait for another writer, < 0 for ever */
    uint64_t serial; /* the write transaction this object began */
    int active;
} pymms_txn;

/* A write transaction whose object is gone can never commit (only its
 * __exit__ does): it is aborted now, as close() would, rather than leave
 * the Store inside it, holding the writer lock -- and, through the Tables
 * it pinned (each holds the Store), itself, until the garbage collector
 * runs. Not from another thread, inside a call or a conversion (R1), nor
 * in a child of fork() (the parent's). */
static void txn_dealloc(pymms_txn *x)
{
    pymms_store *st = x->store;
    if (st && x->active && x->write && !st->closed && st->s && !pymms_forked(st) &&
        st->state == PYMMS_WRITE && st->serial == x->serial && st->owner == pymms_me() &&
        !st->busy && !st->converting && !st->calls) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (write_end(st, 0) < 0)
            PyErr_Clear();
        PyErr_Restore(t, v, tb);
    }
    Py_XDECREF(x->store);
    Py_TYPE(x)->tp_free((PyObject *)x);
}

static PyObject *txn_enter(pymms_txn *x, PyObject *unused)
{
    (void)unused;
    pymms_store *st = x->store;
    if (x->active) {
        PyErr_SetString(PyExc_RuntimeError, "this transaction object is already in use");
        return NULL;
    }
    if (pymms_check(st) < 0)
        return NULL;
    if (st->state != PYMMS_IDLE)
        return pymms_raise_msg(MMS_ETXN, "the Store is already inside %s transaction",
                               state_name[st->state]);
    if (x->write ? write_begin(st, x->flags, x->timeout) : read_begin(st, 0))
        return NULL;
    x->serial = st->serial;
    x->active = 1;
    return Py_NewRef((PyObject *)st);
}

static PyObject *txn_exit(pymms_txn *x, PyObject *args)
{
    PyObject *type, *value, *tb;
    if (!PyArg_UnpackTuple(args, "__exit__", 3, 3, &type, &value, &tb))
        return NULL;
    pymms_store *st = x->store;
    if (!x->active)
        Py_RETURN_FALSE;
    x->active = 0;
    /* close() inside the block ended its transaction: a write one can end
     * no other way while its object is in use (write_end runs from here,
     * from txn_dealloc, or from close). */
    int closed_in = x->write && st->closed && st->serial == x->serial;
    if (!closed_in && (st->closed || !st->s ||
                       st->state != (x->write ? PYMMS_WRITE : PYMMS_READ) ||
                       (x->write && st->serial != x->serial)))
        Py_RETURN_FALSE;
    if (pymms_forked(st)) {
        /* The parent's transaction, not this child's to end: an exception
         * leaving the block goes on as it is; a block run to its end is
         * told that nothing of it counts. */
        if (type != Py_None)
            Py_RETURN_FALSE;
        return pymms_raise_msg(MMS_EFORK, "the %s transaction belongs to the process that "
                               "began it, not to this child of fork()%s",
                               x->write ? "write" : "read",
                               x->write ? ": nothing of the block is committed" : "");
    }
    if (closed_in) {
        /* The block ran to its end expecting a commit, and its writes are
         * gone: say so (a read block lost nothing; an exception leaving the
         * block asked for the abort and goes on as it is). */
        if (type != Py_None)
            Py_RETURN_FALSE;
        pymms_raise_msg(MMS_ETXN, "the store was closed inside the write block: its "
                                  "transaction was aborted, nothing of the block is committed");
        pymms_outcome_raised("committed", 0, PyUnicode_FromString("mmstore: the transaction "
                                                                  "was aborted by close()"));
        return NULL;
    }
    if (pymms_check(st) < 0)
        return NULL;
    int r = x->write ? write_end(st, type == Py_None) : read_end(st);
    if (r < 0)
        return NULL;
    /* A Ctrl-C in a write block aborts it; one during the commit comes
     * after it (the C commit is not interrupted), here rather than on the
     * caller's next line: either way the KeyboardInterrupt says which
     * (.committed). */
    if (x->write && PyErr_GivenExceptionMatches(type, PyExc_KeyboardInterrupt))
        pymms_outcome(value, "committed", 0,
                      PyUnicode_FromString("mmstore: the write transaction was aborted"));
    if (x->write && type == Py_None && PyErr_CheckSignals() < 0) {
        pymms_outcome_raised("committed", 1, PyUnicode_FromString("mmstore: the write "
                                                                  "transaction had committed"));
        return NULL;
    }
    Py_RETURN_FALSE;
}

static PyMethodDef txn_methods[] = {
    {"__enter__", (PyCFunction)txn_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)txn_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject pymms_txn_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mmstore.Transaction",
    .tp_basicsize = sizeof(pymms_txn),
    .tp_dealloc = (destructor)txn_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A read or write transaction; use it in a with statement.",
    .tp_methods = txn_methods,
};

static PyObject *txn_new(pymms_store *st, int write, unsigned flags, double timeout)
{
    if (PyType_Ready(&pymms_txn_type) < 0)
        return NULL;
    pymms_txn *x = PyObject_New(pymms_txn, &pymms_txn_type);
    if (!x)
        return NULL;
    x->store = (pymms_store *)Py_NewRef((PyObject *)st);
    x->write = write;
    x->flags = flags;
    x->timeout = timeout;
    x->serial = 0;
    x->active = 0;
    return (PyObject *)x;
}

PyDoc_STRVAR(read_doc,
"read() -> context manager: a read transaction.\n\n"
"    with s.read():\n"
"        a = t.array()\n\n"
"Inside it the store shows one committed state, whole; arrays taken in it do\n"
"not change until it ends. Commits of other processes do not wait for it,\n"
"but their pages wait in the writer's memory (up to its max_backlog, 64 MiB\n"
"by default: then its next commit waits) and new read transactions see the\n"
"pinned state until it ends, so keep it short.");

static PyObject *store_read(pymms_store *st, PyObject *unused)
{
    (void)unused;
    if (pymms_check(st) < 0)
        return NULL;
    return txn_new(st, 0, 0, -1);
}

PyDoc_STRVAR(write_doc,
"write(nowait=False, timeout=None) -> context manager: a write transaction.\n\n"
"It commits when the block ends normally (atomic, and durable unless nosync)\n"
"and aborts when it ends with an exception (or close() runs in it: then its\n"
"end raises TxnError, nothing committed). A KeyboardInterrupt out of the\n"
"block has .committed: False if it came inside (aborted), True if it came\n"
"while the commit ran (which it does not stop). One writer at a time per store:\n"
"this waits for another writer (with the GIL released; Ctrl-C interrupts\n"
"it) -- for ever, or at most timeout seconds (a float), then raises\n"
"TimeoutError -- or raises BusyError with nowait=True (which is timeout=0).");

/* A timeout argument: None (-1, for ever) or seconds >= 0; what names the
 * call in the error. */
static int timeout_arg(PyObject *timeout, const char *what, double *out)
{
    *out = -1;
    if (timeout == Py_None)
        return 0;
    double left = PyFloat_AsDouble(timeout);
    if (left == -1 && PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_OverflowError))
        return -1;
    if (!(left >= 0) || PyErr_Occurred()) { /* an int past a double's range too */
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: timeout must be None or a number of seconds "
                     ">= 0, not %.100R", what, timeout);
        return -1;
    }
    *out = left;
    return 0;
}

static PyObject *store_write(pymms_store *st, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"nowait", "timeout", NULL};
    int nowait = 0;
    PyObject *timeout = Py_None;
    double secs;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pO:write", kwlist, &nowait, &timeout) ||
        timeout_arg(timeout, "write", &secs) < 0)
        return NULL;
    if (nowait && secs > 0) {
        PyErr_Format(PyExc_ValueError, "write: nowait=True is timeout=0, not %.100R", timeout);
        return NULL;
    }
    if (pymms_check(st) < 0)
        return NULL;
    return txn_new(st, 1, nowait || secs == 0 ? MMS_TXN_NOWAIT : 0, secs);
}

/* ------------------------------------------------------------------------
 * Opening and closing (R3)
 * ------------------------------------------------------------------------ */
uint32_t pymms_region_of(pymms_store *st, const char *name)
{
    size_t n = 0;
    if (mms_tables(st->s, NULL, 0, &n) || !n)
        return 0;
    mms_table_info *ti = calloc(n, sizeof *ti);
    if (!ti)
        return 0;
    size_t cap = n;
    uint32_t region = 0;
    if (mms_tables(st->s, ti, cap, &n) == 0)
        for (size_t i = 0; i < n && i < cap; i++)
            if (strcmp(ti[i].name, name) == 0) {
                region = ti[i].region;
                break;
            }
    free(ti);
    return region;
}

/* o is another Store of st's store (the same directory, by any path). */
static int same_store(const pymms_store *st, const pymms_store *o)
{
    return o != st && st->ino && o->ino == st->ino && o->dev == st->dev;
}

Py_ssize_t pymms_views_elsewhere(pymms_store *st, uint32_t region)
{
    Py_ssize_t n = 0;
    for (pymms_store *o = all_stores; o && region; o = o->next) {
        if (!same_store(st, o) || !o->tables)
            continue;
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(o->tables, &pos, &key, &value)) {
            pymms_table *tb = pymms_cached(value); /* one with views is alive */
            if (tb && tb->region == region)
                n += tb->nwviews;
        }
    }
    return n;
}

PyObject *pymms_store_new(mms_store *s, PyObject *path, unsigned flags, int guard, dev_t dev,
                          ino_t ino)
{
    pymms_store *st = PyObject_GC_New(pymms_store, &pymms_store_type);
    if (!st) {
        mms_close(s);
        return NULL;
    }
    st->s = s;
    st->path = Py_NewRef(path);
    st->tables = PyDict_New();
    st->pinned = PyList_New(0);
    st->flags = flags;
    st->closed = 0;
    st->guard = guard;
    st->state = PYMMS_IDLE;
    st->owner = 0;
    st->busy = 0;
    st->converting = 0;
    st->calls = 0;
    st->serial = 0;
    st->doomed = 0;
    st->tainted = 0;
    st->nviews = 0;
    st->nwviews = 0;
    static int counting; /* the GIL is held */
    if (!counting && pthread_atfork(NULL, NULL, fork_counted) == 0)
        counting = 1;
    st->forks = forks;
    st->dev = dev;
    st->ino = ino;
    st->next = all_stores;
    all_stores = st;
    PyObject_GC_Track(st);
    if (!st->tables || !st->pinned) {
        Py_DECREF(st);
        return NULL;
    }
    return (PyObject *)st;
}

int pymms_store_release(pymms_store *st)
{
    mms_store *s = st->s;
    if (!s)
        return 0;
    st->s = NULL;
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = mms_close(s);
    Py_END_ALLOW_THREADS
    return r;
}

/* pymms_raise for a call on the whole store (close, checkpoint): an
 * OSError's filename is the store's path, as open()'s is. */
static PyObject *raise_on_store(pymms_store *st, int err, const char *what)
{
    char detail[512];
    snprintf(detail, sizeof detail, "%s", mms_errdetail()); /* before anything else fails */
    PyObject *file = NULL;
    if (!PyUnicode_FSConverter(st->path, &file))
        return NULL;
    pymms_raise_file(err, what, PyBytes_AS_STRING(file), detail);
    Py_DECREF(file);
    return NULL;
}

PyDoc_STRVAR(close_doc,
"close(): end the Store.\n\n"
"An active transaction is aborted (write) or ended (read); the end of a\n"
"`with s.write():` block that close() ran in then raises TxnError, nothing of\n"
"it committed (unless an exception is leaving the block). Every later call\n"
"raises ValueError. Arrays taken from it stay valid: the C handle (and the\n"
"mapping) is closed when the last of them is gone. Closing checkpoints the\n"
"store (GIL released). Closing twice does nothing.");

static PyObject *store_close(pymms_store *st, PyObject *unused)
{
    (void)unused;
    if (st->closed || !st->s)
        Py_RETURN_NONE;
    if (pymms_forked(st)) {
        /* A child's copy: its transaction and busy thread are the parent's
         * (mms_close frees the copy and touches nothing shared). */
        st->state = PYMMS_IDLE;
        st->busy = 0;
        st->closed = 1;
        if (st->nviews > 0)
            Py_RETURN_NONE;
        int r = pymms_store_release(st);
        return r ? raise_on_store(st, r, "close") : Py_NewRef(Py_None);
    }
    unsigned long me = pymms_me();
    if ((st->busy && st->busy != me) || (st->state != PYMMS_IDLE && st->owner != me))
        return pymms_raise_msg(MMS_EBUSY, "close: another thread is using this Store");
    if (reentered(st, 1) < 0)
        return NULL;
    if (st->state == PYMMS_WRITE)
        write_end(st, 0), PyErr_Clear();
    else if (st->state == PYMMS_READ)
        read_end(st), PyErr_Clear();
    st->closed = 1;
    if (st->nviews > 0)
        Py_RETURN_NONE; /* R3: the last View closes the handle */
    int r = pymms_store_release(st);
    if (r)
        return raise_on_store(st, r, "close");
    Py_RETURN_NONE;
}

static PyObject *store_enter(pymms_store *st, PyObject *unused)
{
    (void)unused;
    if (pymms_check(st) < 0)
        return NULL;
    return Py_NewRef((PyObject *)st);
}

static PyObject *store_exit(pymms_store *st, PyObject *args)
{
    (void)args;
    PyObject *r = store_close(st, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static int store_traverse(pymms_store *st, visitproc visit, void *arg)
{
    Py_VISIT(st->tables);
    Py_VISIT(st->pinned);
    return 0;
}

static int store_clear(pymms_store *st)
{
    Py_CLEAR(st->tables);
    Py_CLEAR(st->pinned);
    return 0;
}

static void store_dealloc(pymms_store *st)
{
    PyObject_GC_UnTrack(st);
    for (pymms_store **p = &all_stores; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    if (st->s) {
        /* No View is alive (each holds the Store); mms_close aborts a
         * transaction left open. */
        int r = pymms_store_release(st);
        (void)r;
    }
    Py_CLEAR(st->tables);
    Py_CLEAR(st->pinned);
    Py_CLEAR(st->path);
    Py_TYPE(st)->tp_free((PyObject *)st);
}

static PyObject *store_repr(pymms_store *st)
{
    if (st->closed || !st->s)
        return PyUnicode_FromFormat("<mmstore.Store %R, closed>", st->path);
    return PyUnicode_FromFormat("<mmstore.Store %R, %s, txn %llu%s>", st->path,
                                st->flags & MMS_RDONLY ? "read-only" : "read-write",
                                (unsigned long long)mms_txn_id(st->s),
                                st->state == PYMMS_WRITE ? ", writing"
                                : st->state == PYMMS_READ ? ", reading" : "");
}

/* ------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------ */
/* The Table of C handle t in the cache (a new reference), or NULL; the
 * name it was cached under is dropped (one: this keeps it so). */
pymms_table *pymms_table_of_handle(pymms_store *st, const mms_table *t)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(st->tables, &pos, &key, &value)) {
        pymms_table *tb = pymms_cached(value);
        if (tb && tb->t == t && !tb->dead) {
            Py_INCREF(tb);
            if (PyDict_DelItem(st->tables, key) < 0)
                PyErr_Clear(); /* a str key: cannot fail */
            return tb;
        }
    }
    return NULL;
}

/* The cache is keyed by name, and a name can leave its table: another
 * handle renames the table (the C handle takes the new name at this
 * handle's next transaction) or drops it and creates another of that
 * name. So a hit counts only while the C handle still has that name and a
 * layout (a dropped table's handle keeps its name), and a
 * miss that mms_table_find answers with a handle a Table already holds
 * moves that Table to the new name: one Table object per C table handle,
 * whatever it is called (its writable views are counted on it, R4). */
PyObject *pymms_store_table(pymms_store *st, PyObject *name)
{
    const char *cname = pymms_utf8(name, "a table name");
    if (!cname)
        return NULL;
    /* Inside a transaction: a drop by another handle is seen from this
     * handle's next one. */
    int own;
    if (pymms_scope_enter(st, &own) < 0)
        return NULL;
    PyObject *res = NULL;
    PyObject *ref = PyDict_GetItemWithError(st->tables, name);
    pymms_table *tb = ref ? pymms_cached(ref) : NULL;
    if (tb) {
        const char *now = mms_table_name(tb->t);
        if (now && strcmp(now, cname) == 0) {
            /* A dropped table's handle keeps its name but has no layout.
             * It stays cached: the C library gives it to a table made
             * again by that name, and that is then this Table again. */
            if (mms_table_schema(tb->t))
                res = Py_NewRef((PyObject *)tb);
            else
                PyErr_SetObject(PyExc_KeyError, name);
            goto out;
        }
    } else if (!ref && PyErr_Occurred())
        goto out;
    mms_table *t = NULL;
    int r = mms_table_find(st->s, cname, &t);
    if (r == MMS_ENOENT || r == MMS_EINVAL) { /* no such name, or none can exist */
        PyErr_SetObject(PyExc_KeyError, name);
        if (ref && PyDict_DelItem(st->tables, name) < 0) /* a stale name */
            PyErr_SetObject(PyExc_KeyError, name);
    } else if (r)
        pymms_raise(r, "table");
    else if ((res = (PyObject *)pymms_table_of_handle(st, t))) {
        if (pymms_cache_put(st, name, res) < 0)
            Py_CLEAR(res);
    } else if ((res = pymms_table_new(st, t, name)) && pymms_cache_put(st, name, res) < 0)
        Py_CLEAR(res);
out:
    if (pymms_scope_exit(st, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
}

PyDoc_STRVAR(table_doc, "table(name) -> Table. KeyError if the store has no such table.");

static PyObject *store_table(pymms_store *st, PyObject *name)
{
    if (pymms_check(st) < 0)
        return NULL;
    return pymms_store_table(st, name);
}

PyDoc_STRVAR(create_table_doc,
"create_table(name, spec) -> Table, in a write transaction.\n\n"
"spec: a list of (name, kind) / (name, 'chars', size) / (name, 'ref', table)\n"
"tuples, laid out as a C struct (each field aligned to its size; table None,\n"
"as Field.target gives it, for a ref whose target table was dropped); a\n"
"table's fields (t.fields: a Field in the list keeps its offset, and carries\n"
"its table's record size, Field.record_size, so a copy of a table's layout,\n"
"padding included, is create_table(name, t.fields); tuples after one follow\n"
"it; the record size is the Fields' when every field fits in it, else the\n"
"smallest that holds them, aligned as a C struct's); a string as\n"
"`mms import --schema` takes ('id:i64,name:str,tag:chars:8'); or a numpy\n"
"structured dtype (its offsets and itemsize are kept). Kinds as in C: i8 i16\n"
"i32 i64 u8 u16 u32 u64 f32 f64 bool chars ref str blob (i8 is 8 bits).\n"
"A table that exists with the same layout is opened; with another layout it\n"
"is migrated (fields matched by name), which is refused while writable arrays\n"
"over it are alive in this process (BufferError).");

static PyObject *store_create_table(pymms_store *st, PyObject *args)
{
    PyObject *name, *spec;
    if (!PyArg_ParseTuple(args, "UO:create_table", &name, &spec))
        return NULL;
    if (pymms_check(st) < 0 || pymms_need_write(st, "create_table") < 0)
        return NULL;
    st->calls++;
    PyObject *t = pymms_create_table(st, name, spec, 1);
    st->calls--;
    return t;
}

PyDoc_STRVAR(tables_doc, "tables() -> list of the table names, in catalog order.");

static PyObject *store_tables(pymms_store *st, PyObject *unused)
{
    (void)unused;
    if (pymms_check(st) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(st, &own) < 0)
        return NULL;
    size_t n = 0;
    mms_table_info *ti = NULL;
    PyObject *list = NULL;
    int r = mms_tables(st->s, NULL, 0, &n);
    if (r) {
        pymms_raise(r, "tables");
        goto out;
    }
    ti = calloc(n ? n : 1, sizeof *ti);
    if (!ti) {
        PyErr_NoMemory();
        goto out;
    }
    size_t cap = n;
    if ((r = mms_tables(st->s, ti, cap, &n))) {
        pymms_raise(r, "tables");
        goto out;
    }
    if (n > cap)
        n = cap;
    list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *nm = PyUnicode_DecodeUTF8(ti[i].name, (Py_ssize_t)strlen(ti[i].name),
                                            "surrogateescape");
        if (!nm)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, nm);
    }
out:
    free(ti);
    if (pymms_scope_exit(st, own, list ? 0 : -1) < 0)
        Py_CLEAR(list);
    return list;
}

/* ------------------------------------------------------------------------
 * Inspection and maintenance
 * ------------------------------------------------------------------------ */
PyDoc_STRVAR(info_doc,
"info() -> dict: format_version, txn_id, nregions, region_size, region_file,\n"
"journal_bytes, heap_used, heap_free, heap_objects, dirty_backend, guard,\n"
"writer_pid, published_txn (what new read transactions see), committed_txn,\n"
"durable_txn, backlog_bytes, handles, active_readers, readers_holding_back and\n"
"last_commit (a dict of where the time of this handle's last commit went).");

static PyObject *store_info(pymms_store *st, PyObject *unused)
{
    (void)unused;
    if (pymms_check(st) < 0)
        return NULL;
    mms_info *in = malloc(sizeof *in);
    if (!in)
        return PyErr_NoMemory();
    int r = mms_info_get(st->s, in);
    if (r) {
        free(in);
        return pymms_raise(r, "info");
    }
    static const char *const backends[] = {"auto", "scan", "pagemap"};
    uint32_t n = in->nregions < MMS_MAX_REGIONS ? in->nregions : MMS_MAX_REGIONS;
    PyObject *sizes = PyList_New(n), *files = PyList_New(n), *d = NULL;
    for (uint32_t i = 0; sizes && files && i < n; i++) {
        PyList_SET_ITEM(sizes, i, PyLong_FromUnsignedLongLong(in->region_size[i]));
        PyList_SET_ITEM(files, i, PyLong_FromUnsignedLongLong(in->region_file[i]));
    }
    const struct mms_commit_stats *c = &in->last_commit;
    if (sizes && files && !PyErr_Occurred())
        d = Py_BuildValue(
            "{s:I,s:K,s:I,s:O,s:O,s:K,s:K,s:K,s:K,s:s,s:O,s:I,s:K,s:K,s:K,s:K,s:I,s:I,s:I,"
            "s:{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}}",
            "format_version", in->format_version, "txn_id", (unsigned long long)in->txn_id,
            "nregions", in->nregions, "region_size", sizes, "region_file", files,
            "journal_bytes", (unsigned long long)in->journal_bytes, "heap_used",
            (unsigned long long)in->heap_used, "heap_free", (unsigned long long)in->heap_free,
            "heap_objects", (unsigned long long)in->heap_objects, "dirty_backend",
            in->dirty_backend < 3 ? backends[in->dirty_backend] : "?", "guard",
            in->guard ? Py_True : Py_False, "writer_pid", in->writer_pid, "published_txn",
            (unsigned long long)in->published_txn, "committed_txn",
            (unsigned long long)in->committed_txn, "durable_txn",
            (unsigned long long)in->durable_txn, "backlog_bytes",
            (unsigned long long)in->backlog_bytes, "handles", in->handles, "active_readers",
            in->active_readers, "readers_holding_back", in->readers_holding_back, "last_commit", "detect_ns", (unsigned long long)c->detect_ns,
            "journal_ns", (unsigned long long)c->journal_ns, "sync_ns",
            (unsigned long long)c->sync_ns, "apply_ns", (unsigned long long)c->apply_ns,
            "total_ns", (unsigned long long)c->total_ns, "pages_dirty",
            (unsigned long long)c->pages_dirty, "pages_changed",
            (unsigned long long)c->pages_changed, "journal_bytes",
            (unsigned long long)c->journal_bytes, "backlog", (unsigned long long)c->backlog);
    Py_XDECREF(sizes);
    Py_XDECREF(files);
    free(in);
    return d;
}

PyDoc_STRVAR(verify_doc,
"verify(): check the whole store (header, journal, heap, tables, every live\n"
"record's refs and strings) as of the latest commit. Returns None, or raises\n"
"CorruptError saying what is wrong. Not inside a transaction. Writers wait\n"
"while it runs; the GIL is released.");

static PyObject *store_verify(pymms_store *st, PyObject *unused)
{
    (void)unused;
    if (pymms_check(st) < 0)
        return NULL;
    if (st->state != PYMMS_IDLE)
        return pymms_raise_msg(MMS_ETXN, "verify inside %s transaction", state_name[st->state]);
    char msg[1024] = "";
    int r;
    PYMMS_BLOCKING(st, r = mms_verify(st->s, msg, sizeof msg));
    if (r == MMS_ECORRUPT && msg[0])
        return pymms_raise_msg(r, "verify: %s", msg);
    if (r)
        return pymms_raise(r, "verify");
    Py_RETURN_NONE;
}

PyDoc_STRVAR(checkpoint_doc,
"checkpoint(): sync the region files and empty the journal (GIL released).\n"
"Not inside a transaction.");

static PyObject *store_checkpoint(pymms_store *st, PyObject *unused)
{
    (void)unused;
    if (pymms_check(st) < 0)
        return NULL;
    if (st->state != PYMMS_IDLE)
        return pymms_raise_msg(MMS_ETXN, "checkpoint inside %s transaction",
                               state_name[st->state]);
    int r;
    PYMMS_BLOCKING(st, r = mms_checkpoint(st->s));
    if (r)
        return raise_on_store(st, r, "checkpoint");
    Py_RETURN_NONE;
}

PyDoc_STRVAR(wait_doc,
"wait(txn, timeout=None) -> int: block until a commit after txn is published\n"
"and return the published txn id (pass store.txn, or the last value returned).\n"
"timeout in seconds; TimeoutError when it passes. The GIL is released;\n"
"Ctrl-C interrupts it. Not inside a transaction.");

static PyObject *store_wait(pymms_store *st, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"txn", "timeout", NULL};
    PyObject *txnobj, *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:wait", kwlist, &txnobj, &timeout))
        return NULL;
    unsigned long long txn;
    if (pymms_int_arg(txnobj, "wait: txn", 0, UINT64_MAX, &txn) < 0)
        return NULL;
    double left;
    if (timeout_arg(timeout, "wait", &left) < 0)
        return NULL;
    if (pymms_check(st) < 0)
        return NULL;
    if (st->state != PYMMS_IDLE)
        return pymms_raise_msg(MMS_ETXN, "wait inside %s transaction would wait for ever",
                               state_name[st->state]);
    /* Slices of at most 100 ms, so that a signal (Ctrl-C) is seen, against
     * a deadline on the monotonic clock: subtracting each slice from the
     * timeout left a remainder under 1 ms (0.5 - 5 * 0.1 > 0 in doubles)
     * that became slices of 0 ms for ever, a busy loop. */
    double deadline = left < 0 ? 0 : mono_s() + left;
    for (;;) {
        double rest = left < 0 ? 1 : deadline - mono_s();
        int slice = rest >= 0.1 ? 100 : rest > 0 ? (int)(rest * 1000) + 1 : 0;
        uint64_t now = 0;
        int r;
        PYMMS_BLOCKING(st, r = mms_wait(st->s, txn, slice, &now));
        if (r == 0)
            return PyLong_FromUnsignedLongLong(now);
        if (r != -ETIMEDOUT)
            return pymms_raise(r, "wait");
        if (left >= 0 && mono_s() >= deadline)
            return pymms_raise_msg(-ETIMEDOUT, "wait: no commit after txn %llu", txn);
        if (between_slices(st) < 0)
            return NULL;
    }
}

/* ------------------------------------------------------------------------
 * Properties
 * ------------------------------------------------------------------------ */
static PyObject *store_get_txn(pymms_store *st, void *unused)
{
    (void)unused;
    if (pymms_check(st) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(mms_txn_id(st->s));
}

static PyObject *store_get_path(pymms_store *st, void *unused)
{
    (void)unused;
    return Py_NewRef(st->path);
}

static PyObject *store_get_readonly(pymms_store *st, void *unused)
{
    (void)unused;
    return PyBool_FromLong(!!(st->flags & MMS_RDONLY));
}

static PyObject *store_get_closed(pymms_store *st, void *unused)
{
    (void)unused;
    return PyBool_FromLong(st->closed || !st->s);
}

static PyObject *store_get_root(pymms_store *st, void *unused)
{
    (void)unused;
    if (pymms_check(st) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(mms_root(st->s));
}

static int store_set_root(pymms_store *st, PyObject *v, void *unused)
{
    (void)unused;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "root cannot be deleted: set it to 0");
        return -1;
    }
    unsigned long long ref;
    if (pymms_int_arg(v, "root", 0, UINT64_MAX, &ref) < 0 || pymms_check(st) < 0 ||
        pymms_need_write(st, "setting root") < 0)
        return -1;
    int r = mms_root_set(st->s, ref);
    if (r) {
        pymms_raise(r, "root");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(string_doc,
"string(ref) -> str or None: the heap string a ref names (the store's root,\n"
"say); None for 0. Error if ref is not a string of this store.");

static PyObject *store_string(pymms_store *st, PyObject *arg)
{
    unsigned long long ref;
    if (pymms_int_arg(arg, "string: ref", 0, UINT64_MAX, &ref) < 0)
        return NULL;
    if (pymms_check(st) < 0)
        return NULL;
    if (!ref)
        Py_RETURN_NONE;
    int own;
    if (pymms_scope_enter(st, &own) < 0)
        return NULL;
    size_t len;
    const char *p = mms_str_get(st->s, ref, &len);
    PyObject *res = p ? PyUnicode_DecodeUTF8(p, (Py_ssize_t)len, "surrogateescape")
                      : pymms_raise_msg(MMS_EBADREF, "string: ref 0x%llx is not a string", ref);
    if (pymms_scope_exit(st, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
}

/* ------------------------------------------------------------------------
 * The heap: the application's own objects (mms_alloc in C), as bytes.
 * Reads copy (a bytes object outlives every transaction); writes copy in,
 * inside a write transaction, as a C store through mms_deref would.
 * ------------------------------------------------------------------------ */
/* The bytes [off, off + *len) of the live allocation ref, in bounds;
 * *len < 0 asks for the rest of it. 0, or -1 with an exception. */
static int heap_span(pymms_store *st, const char *what, unsigned long long ref,
                     unsigned long long off, long long *len, char **p)
{
    size_t usable;
    int r = ref ? mms_alloc_size(st->s, ref, &usable) : MMS_EBADREF;
    if (r == MMS_EBADREF) {
        pymms_raise_msg(r, "%s: ref 0x%llx is not the start of a live heap allocation", what, ref);
        return -1;
    }
    if (r) {
        pymms_raise(r, what);
        return -1;
    }
    if (off > usable || (*len >= 0 && (unsigned long long)*len > usable - off)) {
        pymms_raise_msg(MMS_ERANGE, "%s: bytes %llu..%llu are past the object's %llu", what,
                        off, *len >= 0 ? off + (unsigned long long)*len : off,
                        (unsigned long long)usable);
        return -1;
    }
    if (*len < 0)
        *len = (long long)(usable - off);
    *p = (char *)mms_deref(st->s, ref) + off;
    return 0;
}

PyDoc_STRVAR(heap_doc,
"heap(ref, offset=0, size=None) -> bytes: a copy of the bytes of the heap\n"
"object ref names (made by alloc(), or by mms_alloc in C; the root, say),\n"
"from offset, size of them (None: to the end of its usable size, which may\n"
"be more than was asked for). Parse them with struct or numpy.frombuffer;\n"
"refs inside are ints. Error if ref is not the start of a live heap\n"
"allocation; RangeError (an IndexError) past its end. In a transaction or\n"
"outside one (a read transaction of its own).");

static PyObject *store_heap(pymms_store *st, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"ref", "offset", "size", NULL};
    PyObject *oref, *ooff = NULL, *osize = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO:heap", kwlist, &oref, &ooff, &osize))
        return NULL;
    unsigned long long ref, off = 0, size = 0;
    if (pymms_int_arg(oref, "heap: ref", 0, UINT64_MAX, &ref) < 0 ||
        (ooff && pymms_int_arg(ooff, "heap: offset", 0, INT64_MAX, &off) < 0) ||
        (osize != Py_None && pymms_int_arg(osize, "heap: size", 0, INT64_MAX, &size) < 0))
        return NULL;
    if (pymms_check(st) < 0)
        return NULL;
    int own;
    if (pymms_scope_enter(st, &own) < 0)
        return NULL;
    long long len = osize == Py_None ? -1 : (long long)size;
    char *p;
    PyObject *res = NULL;
    if (heap_span(st, "heap", ref, off, &len, &p) == 0)
        res = PyBytes_FromStringAndSize(p, (Py_ssize_t)len);
    if (pymms_scope_exit(st, own, res ? 0 : -1) < 0)
        Py_CLEAR(res);
    return res;
}

PyDoc_STRVAR(heap_write_doc,
"heap_write(ref, data, offset=0): copy data (bytes or any buffer) into the\n"
"heap object ref names, at offset; in a write transaction, whose commit\n"
"keeps it (an abort undoes it). RangeError (an IndexError) past the\n"
"object's usable size; BadrefError for a string or blob (it changes\n"
"through its record) and for the library's own objects (the catalog, a\n"
"table's field list: only the library changes them).");

static PyObject *store_heap_write(pymms_store *st, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"ref", "data", "offset", NULL};
    PyObject *oref, *ooff = NULL;
    Py_buffer data;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oy*|O:heap_write", kwlist, &oref, &data, &ooff))
        return NULL;
    unsigned long long ref, off = 0;
    PyObject *res = NULL;
    char *p;
    long long len = data.len;
    if (pymms_int_arg(oref, "heap_write: ref", 0, UINT64_MAX, &ref) == 0 &&
        (!ooff || pymms_int_arg(ooff, "heap_write: offset", 0, INT64_MAX, &off) == 0) &&
        pymms_check(st) == 0 && pymms_need_write(st, "heap_write") == 0 &&
        heap_span(st, "heap_write", ref, off, &len, &p) == 0) {
        /* A string's first bytes are its header: a store there unmakes it
         * under the record that holds it (mms_verify: not a string). The
         * library's own objects (the catalog, a field list) are live
         * allocations too: a store there damages the catalog. */
        int lib = mms_heap_library_owned(st->s, ref);
        if (mms_str_get(st->s, ref, NULL))
            pymms_raise_msg(MMS_EBADREF, "heap_write: ref 0x%llx is a string (or blob): it "
                            "changes through its record", ref);
        else if (lib == 1)
            pymms_raise_msg(MMS_EBADREF, "heap_write: ref 0x%llx is one of the library's own "
                            "heap objects (the catalog, what a table keeps in the heap): "
                            "only the library changes it", ref);
        else if (lib < 0)
            pymms_raise(lib, "heap_write");
        else {
            memcpy(p, data.buf, (size_t)data.len);
            res = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&data);
    return res;
}

PyDoc_STRVAR(alloc_doc,
"alloc(size, zero=True) -> int: a new heap object of size bytes (zeroed\n"
"unless zero=False), its ref; in a write transaction. Keep the ref where\n"
"you will find it again: the root, another object, an i64/u64 field.");

static PyObject *store_alloc(pymms_store *st, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"size", "zero", NULL};
    PyObject *osize;
    int zero = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:alloc", kwlist, &osize, &zero))
        return NULL;
    unsigned long long size;
    if (pymms_int_arg(osize, "alloc: size", 1, SIZE_MAX, &size) < 0 || pymms_check(st) < 0 ||
        pymms_need_write(st, "alloc") < 0)
        return NULL;
    mms_ref ref;
    int r = zero ? mms_zalloc(st->s, (size_t)size, &ref) : mms_alloc(st->s, (size_t)size, &ref);
    if (r)
        return pymms_raise(r, "alloc");
    return PyLong_FromUnsignedLongLong(ref);
}

PyDoc_STRVAR(free_doc,
"free(ref): free the heap object ref names (0: nothing); in a write\n"
"transaction. BadrefError for a ref that is not the start of a live\n"
"allocation (a double free) or is one of the library's own objects (the\n"
"catalog, a table's field list); the commit refuses to free the root or\n"
"a string a live record holds.");

static PyObject *store_free(pymms_store *st, PyObject *arg)
{
    unsigned long long ref;
    if (pymms_int_arg(arg, "free: ref", 0, UINT64_MAX, &ref) < 0 || pymms_check(st) < 0 ||
        pymms_need_write(st, "free") < 0)
        return NULL;
    int r = mms_free(st->s, ref);
    if (r)
        return pymms_raise(r, "free");
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * import_csv: the mms tool in a subprocess
 * ------------------------------------------------------------------------ */
static int executable(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && access(p, X_OK) == 0;
}

/* name as execvp finds it (a name with a '/' is a path): the first
 * executable file of that name in a directory of PATH (unset: glibc's
 * "/bin:/usr/bin"; an empty entry is the current directory), else name
 * itself, whose exec then fails with ENOENT. Searched here, with the GIL
 * held, not by execvpe in the child: that reads PATH from environ, which
 * another thread's os.environ may be changing meanwhile (tool_env). The
 * rest of execvp, a script without '#!' run by /bin/sh, is spawn_tool's. */
static PyObject *tool_on_path(const char *name)
{
    if (strchr(name, '/'))
        return PyBytes_FromString(name);
    const char *dirs = getenv("PATH");
    if (!dirs)
        dirs = "/bin:/usr/bin";
    for (const char *d = dirs;; d++) {
        size_t len = strcspn(d, ":");
        char p[4200];
        int n = len ? snprintf(p, sizeof p, "%.*s/%s", (int)len, d, name)
                    : snprintf(p, sizeof p, "%s", name);
        if (n > 0 && (size_t)n < sizeof p && executable(p))
            return PyBytes_FromString(p);
        d += len;
        if (!*d)
            break;
    }
    return PyBytes_FromString(name);
}

/* The mms tool: $MMS_TOOL, then beside the module (an installed tree has
 * it in ../bin of the prefix, a build tree one directory up), then PATH. */
static PyObject *find_tool(void)
{
    const char *env = getenv("MMS_TOOL");
    if (env && *env)
        return tool_on_path(env);
    PyObject *mod = PyImport_AddModule("mmstore"); /* borrowed */
    PyObject *file = mod ? PyModule_GetFilenameObject(mod) : NULL;
    PyErr_Clear();
    if (file) {
        PyObject *fs = NULL;
        if (PyUnicode_FSConverter(file, &fs)) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", PyBytes_AS_STRING(fs));
            char *slash = strrchr(dir, '/');
            if (slash)
                *slash = 0;
            static const char *const rel[] = {"/mms", "/../mms", "/../../../bin/mms",
                                              "/../../../../bin/mms"};
            for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
                char p[4200];
                snprintf(p, sizeof p, "%s%s", dir, rel[i]);
                if (executable(p)) {
                    Py_DECREF(fs);
                    Py_DECREF(file);
                    return PyBytes_FromString(p);
                }
            }
            Py_DECREF(fs);
        }
        PyErr_Clear();
        Py_DECREF(file);
    }
    return tool_on_path("mms");
}

#ifdef __linux__
/* The tool dies with this process (PR_SET_PDEATHSIG): an interpreter
 * killed while the tool runs must not leave it importing on its own, or
 * waiting for ever in open() of a FIFO whose writer died. SIGTERM, which
 * the tool takes as a request to stop (tools/mms_import.c, step 7): before
 * its commit it dies with nothing imported; a commit under way finishes.
 *
 * The child is started as posix_spawn starts one, with clone(CLONE_VM |
 * CLONE_VFORK) on a stack of its own: no copy of this process's page
 * tables and mappings (fork() of a process mapping a large store), no
 * pthread_atfork handlers, and the calling thread waits until the child
 * has exec'ed. The child runs in our memory, so it calls only
 * async-signal-safe functions and reports a failure through err. The
 * parent-death signal is sent when the thread that made the child ends;
 * that thread is the one in import_csv, which does not return before the
 * tool has exited. */
struct tool_start {
    char *const *argv;
    char *const *envp;
    int out;              /* the pipe's write end: the tool's stdout and stderr */
    pid_t parent;         /* this process, as seen before the clone */
    const sigset_t *mask; /* the caller's signal mask, the tool's */
    volatile int err;     /* errno of the step that failed, 0 if execve ran */
};

static int tool_child(void *arg)
{
    struct tool_start *ts = arg;
    /* Python's handlers are this process's code: the tool starts with the
     * default ones (so it would after execve; until then a signal must not
     * run them here). Ignored signals stay ignored, as posix_spawn leaves
     * them, except the parent-death signal. */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0)
            continue;
        if (sa.sa_handler == SIG_DFL || (sa.sa_handler == SIG_IGN && sig != SIGTERM))
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(sig, &sa, NULL);
    }
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        goto fail;
    /* Did this process die before the prctl? Then the signal will not come:
     * the child has another parent already. */
    if (getppid() != ts->parent)
        _exit(127);
    for (int fd = 1; fd <= 2; fd++)
        if (ts->out == fd ? fcntl(fd, F_SETFD, 0) != 0 : dup2(ts->out, fd) < 0)
            goto fail;
    sigprocmask(SIG_SETMASK, ts->mask, NULL);
    execve(ts->argv[0], ts->argv, ts->envp); /* a path: tool_on_path searched PATH */
fail:
    ts->err = errno;
    _exit(127);
}

/* Run argv with envp, its stdout and stderr into out: 0 with *pid, or an
 * errno. */
static int start_tool(char *const *argv, char *const *envp, int out, pid_t *pid)
{
    enum { STACK = 256 << 10 };
    char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return errno;
    sigset_t all, mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &mask); /* no handler of ours runs in the child */
    struct tool_start ts = {argv, envp, out, getpid(), &mask, 0};
    pid_t p = clone(tool_child, stack + STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &ts);
    int e = p < 0 ? errno : ts.err;
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    munmap(stack, STACK);
    if (p > 0 && e) { /* it did not exec */
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (!e)
        *pid = p;
    return e;
}
#else
/* Elsewhere posix_spawn: no parent-death signal (the tool outlives a
 * process killed while it runs). */
static int start_tool(char *const *argv, char *const *envp, int out, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_adddup2(&fa, out, 2);
    int r = posix_spawn(pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    return r;
}
#endif

/* The tool's environment: ours less MMS_PROGRESS, plus MMS_PROGRESS=0
 * (progress lines are for terminals) and, for nohuge (the Store was opened
 * with MMS_NOHUGE), MMS_HUGE=0, which the tool's handle reads as that flag
 * -- unless MMS_HUGE is set there already (not empty): it wins over the
 * flag, for the Store as for the tool. (An empty MMS_HUGE is unset to the
 * library, store.c: replaced too, or the tool, finding it first, would
 * read it as unset.) Made with the GIL held: os.environ changes environ
 * (setenv, unsetenv) under the GIL, and another thread's setenv may
 * reallocate the array while a copy made without it reads it. The strings
 * are copied too, into the same block (one free()). NULL if out of
 * memory. */
static char **tool_env(int nohuge)
{
    const char *huge = getenv("MMS_HUGE");
    int sethuge = nohuge && (!huge || !*huge);
    size_t ne = 0, bytes = 0;
    for (; environ[ne]; ne++)
        bytes += strlen(environ[ne]) + 1;
    char **envp = malloc((ne + 3) * sizeof *envp + bytes);
    if (!envp)
        return NULL;
    char *text = (char *)(envp + ne + 3);
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        if (strncmp(environ[i], "MMS_PROGRESS=", 13) == 0 ||
            (sethuge && strncmp(environ[i], "MMS_HUGE=", 9) == 0))
            continue;
        size_t n = strlen(environ[i]) + 1;
        envp[k++] = memcpy(text, environ[i], n);
        text += n;
    }
    envp[k++] = "MMS_PROGRESS=0";
    if (sethuge)
        envp[k++] = "MMS_HUGE=0";
    envp[k] = NULL;
    return envp;
}

/* Start argv (argv[0] a path, find_tool's) with environment envp
 * (tool_env), its stdout and stderr into a pipe: 0 with *pid and *fd (the
 * pipe's read end), or -1 with *spawn_err. A file the kernel will not
 * execute (ENOEXEC: a script without '#!') runs with /bin/sh, as execvp
 * runs it: "/bin/sh FILE ARGS...". It reads nothing of this process's
 * environment: it runs with the GIL released. */
static int spawn_tool(char *const *argv, char *const *envp, pid_t *pid, int *fd, int *spawn_err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return *spawn_err = errno, -1;
    int r = start_tool(argv, envp, fds[1], pid);
    size_t n = 0;
    while (argv[n])
        n++;
    char *sh[16];
    if (r == ENOEXEC && n + 2 <= sizeof sh / sizeof sh[0]) {
        sh[0] = "/bin/sh";
        memcpy(sh + 1, argv, (n + 1) * sizeof *sh); /* its NULL too */
        r = start_tool(sh, envp, fds[1], pid);
    }
    close(fds[1]);
    if (r != 0) {
        close(fds[0]);
        return *spawn_err = r, -1;
    }
    *fd = fds[0];
    return 0;
}

/* Collect the tool's output (at most cap - 1 bytes kept) until it exits;
 * its wait status into *status. The GIL is released while it runs; a
 * signal that interrupts the wait runs Python's handlers, and one that
 * raises (KeyboardInterrupt) stops the tool with SIGINT and is returned
 * (-1) once the tool is gone. A signal that came during the last read or
 * the wait for the tool's exit is handled here too, after it: an exception
 * it raises belongs to this call, which can then say whether the import
 * committed (import_note), rather than to the caller's next line.
 * *wait_err: 0, or the errno of a waitpid that failed (then *status says
 * nothing): ECHILD when this process ignores SIGCHLD (SIG_IGN or
 * SA_NOCLDWAIT), as a daemon may, and the kernel reaped the tool, or when
 * another thread's os.wait() took it. Its exit status is then lost. */
static int collect_tool(pymms_store *st, pid_t pid, int fd, int *status, int *wait_err,
                        char *out, size_t cap)
{
    size_t n = 0;
    int interrupted = 0;
    for (;;) {
        char buf[4096];
        ssize_t got;
        int e;
        /* Handlers first: a signal that came before the read interrupts
         * nothing. */
        if (!interrupted && PyErr_CheckSignals() < 0) {
            interrupted = 1;
            kill(pid, SIGINT);
        }
        PYMMS_BLOCKING(st, got = read(fd, buf, sizeof buf); e = errno);
        if (got < 0 && e == EINTR)
            continue;
        if (got <= 0)
            break;
        size_t take = (size_t)got < cap - 1 - n ? (size_t)got : cap - 1 - n;
        memcpy(out + n, buf, take);
        n += take;
    }
    out[n] = 0;
    close(fd);
    int r;
    PYMMS_BLOCKING(st, while ((r = waitpid(pid, status, 0)) < 0 && errno == EINTR);
                       *wait_err = r < 0 ? errno : 0);
    if (!interrupted && PyErr_CheckSignals() < 0)
        interrupted = 1;
    return interrupted ? -1 : 0;
}

/* import_csv's table made first, from a schema the tool's --schema cannot
 * spell (pymms_import_schema: fields), in a write transaction of its own;
 * one there already must have that layout (SchemaError). The tool then
 * imports into it with the stored layout. */
static int import_table_first(pymms_store *st, PyObject *name, PyObject *fields)
{
    /* R1: the schema's conversion ran Python code, which can switch
     * threads. */
    if (usable(st) < 0)
        return -1;
    if (st->state != PYMMS_IDLE) {
        pymms_raise_msg(MMS_ETXN, "import_csv inside %s transaction", state_name[st->state]);
        return -1;
    }
    if (write_begin(st, 0, -1) < 0)
        return -1;
    st->calls++;
    PyObject *t = pymms_create_table(st, name, fields, 0);
    st->calls--;
    if (!t) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb); /* the create's exception, not the abort's */
        write_end(st, 0);
        PyErr_Clear();
        PyErr_Restore(et, ev, etb);
        return -1;
    }
    Py_DECREF(t);
    return write_end(st, 1);
}

/* The exception import_csv raises (KeyboardInterrupt, or what a signal
 * handler raised) says whether the import committed: .imported and a
 * note (table NULL: not known yet, nothing imported). The tool's exit
 * status is the truth (mms_import.c, step 7): 0 all rows, death by the
 * SIGINT sent to stop it none; committed -1: it was lost (collect_tool's
 * wait_err), .imported is None. */
static void import_note(int committed, PyObject *table)
{
    PyObject *note = !table ? PyUnicode_FromString("import_csv: nothing was imported")
                     : committed < 0
                     ? PyUnicode_FromFormat("import_csv: whether the import into table %S "
                                            "committed is not known (the tool's exit status "
                                            "was lost): look at the table", table)
                     : PyUnicode_FromFormat(committed ? "import_csv: the import into table %S "
                                                        "had committed: every row is in it"
                                                      : "import_csv: nothing was imported "
                                                        "into table %S",
                                            table);
    pymms_outcome_raised("imported", committed, note);
}

PyDoc_STRVAR(import_csv_doc,
"import_csv(csv_path, table, schema=None, skip_bad=False) -> Table\n\n"
"Append the rows of a CSV file (RFC 4180, UTF-8, a header row naming the\n"
"fields) to table, creating it if needed, in one transaction: all rows or\n"
"none. It runs the `mms import` tool in a subprocess (found by $MMS_TOOL,\n"
"beside the module, or on PATH) with the GIL released, so it parses at C\n"
"speed and infers kinds as `mms import` does (i64, f64, else str). schema\n"
"gives the kinds instead: a create_table spec or the tool's string\n"
"('name:str,age:i32'); a spec the string cannot say (a Field's or dtype's\n"
"offsets, its record size, a name with ',' or ':') makes the table first, in a\n"
"transaction of its own (it stays if the import fails; one there with another\n"
"layout is a SchemaError), and the tool imports into it. Bad rows raise Error listing them (skip_bad=True skips\n"
"them); a CSV that cannot be opened raises OSError (FileNotFoundError, ...).\n"
"Not inside a transaction of this Store, nor a read transaction this thread\n"
"holds through another Store of the store (TxnError), nor a write one held so\n"
"(BusyError, as that Store's write() says): the tool writes through a handle\n"
"of its own, and import_csv returns once this Store sees its commit (while\n"
"a read transaction of another process or thread holds commits back, it\n"
"waits).\n\n"
"Ctrl-C (KeyboardInterrupt) stops the tool and is raised once it is gone,\n"
"with .imported: False, nothing was imported (the tool had not begun its\n"
"commit); True, every row was (its commit had begun: it is not cut short).\n"
"So: it returned, or raised with .imported True (a KeyboardInterrupt, or an\n"
"error once the tool had committed): every row; it raised anything else:\n"
"nothing. (A KeyboardInterrupt without\n"
".imported came after it had returned or raised. In a process that ignores\n"
"SIGCHLD the tool's exit status is lost: Error with .imported None.)");

static PyObject *store_import_csv(pymms_store *st, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"csv_path", "table", "schema", "skip_bad", NULL};
    PyObject *csv = NULL, *name, *schema = Py_None;
    int skip_bad = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&U|Op:import_csv", kwlist,
                                     PyUnicode_FSConverter, &csv, &name, &schema, &skip_bad)) {
        if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) /* from a path's __fspath__ */
            import_note(0, NULL);
        return NULL;
    }
    PyObject *tool = NULL, *spec = NULL, *fields = NULL, *pathb = NULL, *res = NULL;
    int committed = 0, stopped = 0;
    if (pymms_check(st) < 0)
        goto out;
    if (st->state != PYMMS_IDLE) {
        pymms_raise_msg(MMS_ETXN, "import_csv inside %s transaction: the import commits "
                        "through another handle and would wait for this one",
                        state_name[st->state]);
        goto out;
    }
    if (st->flags & MMS_RDONLY) {
        pymms_raise_msg(MMS_ERDONLY, "import_csv: the store is open read-only");
        goto out;
    }
    /* A transaction this thread holds through another Store of the store
     * (by any path) cannot end while this thread waits: a write one holds
     * the writer lock the tool's commit takes, a read one the commits that
     * import_csv waits to see (below) -- as the C library refuses these
     * waits, for ever otherwise. */
    for (pymms_store *o = all_stores; o; o = o->next)
        if (same_store(st, o) && !o->closed && o->s &&
            !pymms_forked(o) && o->state != PYMMS_IDLE && o->owner == pymms_me()) {
            if (o->state == PYMMS_WRITE)
                pymms_raise_msg(MMS_EBUSY, "import_csv: this thread already writes to the "
                                "store through another Store (%s): the tool's commit would "
                                "wait for it for ever", PyUnicode_AsUTF8(o->path));
            else
                pymms_raise_msg(MMS_ETXN, "import_csv inside a read transaction of another "
                                "Store of this store (%s): the import could not be seen "
                                "before it ends", PyUnicode_AsUTF8(o->path));
            goto out;
        }
    const char *tname = pymms_utf8(name, "a table name");
    if (!tname || !(tool = find_tool()) || !PyUnicode_FSConverter(st->path, &pathb))
        goto out;
    if (PyUnicode_Check(schema)) {
        spec = Py_NewRef(schema);
    } else if (schema != Py_None) {
        int bad;
        PYMMS_CONVERTING(st, bad = pymms_import_schema(schema, &fields, &spec) < 0);
        if (bad)
            goto out;
        if (spec) /* the tool's --schema says it all: one transaction, the tool's */
            Py_CLEAR(fields);
    }
    /* The file, not the tool's '-' for standard input (ours, inherited). */
    if (PyBytes_AS_STRING(csv)[0] == '-') {
        PyObject *dotted = PyBytes_FromFormat("./%s", PyBytes_AS_STRING(csv));
        if (!dotted)
            goto out;
        Py_SETREF(csv, dotted);
    }
    /* A file that cannot be opened is a system error (OSError: the README,
     * Errors), not the tool's failure as a mmstore.Error. */
    /* Not opened here: a FIFO's writer would take this open for the tool's. */
    if (faccessat(AT_FDCWD, PyBytes_AS_STRING(csv), R_OK, AT_EACCESS) != 0) {
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, PyBytes_AS_STRING(csv));
        goto out;
    }
    if (fields && import_table_first(st, name, fields) < 0)
        goto out;
    char *argv[10];
    int k = 0;
    argv[k++] = PyBytes_AS_STRING(tool);
    argv[k++] = "import";
    if (spec) {
        argv[k++] = "--schema";
        argv[k++] = (char *)PyUnicode_AsUTF8(spec);
        if (!argv[k - 1])
            goto out;
    }
    if (skip_bad)
        argv[k++] = "--skip-bad";
    argv[k++] = "--"; /* a table name or path that begins with '-' is not an option */
    argv[k++] = PyBytes_AS_STRING(pathb);
    argv[k++] = (char *)tname;
    argv[k++] = PyBytes_AS_STRING(csv);
    argv[k] = NULL;
    enum { OUT_CAP = 1 << 16 };
    char **envp = tool_env((st->flags & MMS_NOHUGE) != 0); /* with the GIL */
    char *text = envp ? malloc(OUT_CAP) : NULL;
    if (!text) {
        free(envp);
        PyErr_NoMemory();
        goto out;
    }
    int status = 0, spawn_err = 0, wait_err = 0, fd, r;
    pid_t pid = 0;
    PYMMS_BLOCKING(st, r = spawn_tool(argv, envp, &pid, &fd, &spawn_err));
    free(envp);
    if (r < 0) {
        pymms_raise_file(-spawn_err, "import_csv: cannot run the mms tool (MMS_TOOL names it)",
                         argv[0], "");
    } else if ((stopped = collect_tool(st, pid, fd, &status, &wait_err, text, OUT_CAP) < 0),
               committed = wait_err ? -1 : WIFEXITED(status) && WEXITSTATUS(status) == 0,
               stopped) {
        /* KeyboardInterrupt (or what a handler raised): noted below. */
    } else if (committed != 1) {
        /* The tool says what was wrong (bad rows with their lines). */
        size_t n = strlen(text);
        while (n && text[n - 1] == '\n')
            text[--n] = 0;
        char how[200];
        if (wait_err)
            snprintf(how, sizeof how, "ended, how is not known (waitpid: %s; is SIGCHLD "
                     "ignored?)", strerror(wait_err));
        else if (WIFEXITED(status))
            snprintf(how, sizeof how, "exited with %d", WEXITSTATUS(status));
        else if (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM ||
                 WTERMSIG(status) == SIGHUP)
            snprintf(how, sizeof how, "was stopped by signal %d before its commit: nothing was "
                     "imported", WTERMSIG(status));
        else
            snprintf(how, sizeof how, "was killed by signal %d: the rows are imported only if "
                     "its commit had become durable (look at the table)", WTERMSIG(status));
        PyObject *msg = PyUnicode_FromFormat("import_csv: %s %s:\n%s", argv[0], how, text);
        PyObject *exc = msg ? PyObject_CallOneArg(pymms_Error, msg) : NULL;
        if (exc && PyObject_SetAttrString(exc, "detail", msg) == 0)
            PyErr_SetObject(pymms_Error, exc);
        Py_XDECREF(exc);
        Py_XDECREF(msg);
    } else if (usable(st) == 0 && read_begin(st, 1) == 0) {
        /* The table as of the tool's commit: a read transaction begun as
         * usual sees the state before it while a reader (any process's)
         * holds it back, where the table it created is not. (usable: a
         * signal handler run while the tool ran may have closed the
         * Store.) */
        res = pymms_store_table(st, name);
        if (read_end(st) < 0)
            Py_CLEAR(res);
    }
    free(text);
out:
    /* Every KeyboardInterrupt it raises says what it did, one from Python
     * code run before the tool started (nothing) too; so does any
     * exception raised once the tool has committed. */
    if (stopped || (!res && (committed || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt))))
        import_note(committed, name);
    Py_XDECREF(csv);
    Py_XDECREF(tool);
    Py_XDECREF(spec);
    Py_XDECREF(fields);
    Py_XDECREF(pathb);
    return res;
}

/* pickle, copy.copy, multiprocessing: refused with what to do instead
 * (the default said only "cannot pickle 'mmstore.Store' object"). */
static PyObject *store_reduce(pymms_store *st, PyObject *unused)
{
    (void)unused;
    return PyErr_Format(PyExc_TypeError, "an mmstore.Store cannot be pickled or copied: it is "
                        "this process's handle of the mapped store; pass its path (%R) and "
                        "mmstore.open() it in the other process", st->path);
}

/* ------------------------------------------------------------------------
 * The type
 * ------------------------------------------------------------------------ */
static PyMethodDef store_methods[] = {
    {"__reduce__", (PyCFunction)store_reduce, METH_NOARGS, NULL},
    {"close", (PyCFunction)store_close, METH_NOARGS, close_doc},
    {"__enter__", (PyCFunction)store_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)store_exit, METH_VARARGS, NULL},
    {"read", (PyCFunction)store_read, METH_NOARGS, read_doc},
    {"write", (PyCFunction)(void (*)(void))store_write, METH_VARARGS | METH_KEYWORDS, write_doc},
    {"table", (PyCFunction)store_table, METH_O, table_doc},
    {"create_table", (PyCFunction)store_create_table, METH_VARARGS, create_table_doc},
    {"tables", (PyCFunction)store_tables, METH_NOARGS, tables_doc},
    {"info", (PyCFunction)store_info, METH_NOARGS, info_doc},
    {"verify", (PyCFunction)store_verify, METH_NOARGS, verify_doc},
    {"checkpoint", (PyCFunction)store_checkpoint, METH_NOARGS, checkpoint_doc},
    {"wait", (PyCFunction)(void (*)(void))store_wait, METH_VARARGS | METH_KEYWORDS, wait_doc},
    {"string", (PyCFunction)store_string, METH_O, string_doc},
    {"heap", (PyCFunction)(void (*)(void))store_heap, METH_VARARGS | METH_KEYWORDS, heap_doc},
    {"heap_write", (PyCFunction)(void (*)(void))store_heap_write, METH_VARARGS | METH_KEYWORDS,
     heap_write_doc},
    {"alloc", (PyCFunction)(void (*)(void))store_alloc, METH_VARARGS | METH_KEYWORDS, alloc_doc},
    {"free", (PyCFunction)store_free, METH_O, free_doc},
    {"import_csv", (PyCFunction)(void (*)(void))store_import_csv, METH_VARARGS | METH_KEYWORDS,
     import_csv_doc},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef store_getset[] = {
    {"txn", (getter)store_get_txn, NULL, "id of the last commit this handle's view shows", NULL},
    {"path", (getter)store_get_path, NULL, "absolute path of the store", NULL},
    {"readonly", (getter)store_get_readonly, NULL, "opened read-only", NULL},
    {"closed", (getter)store_get_closed, NULL, "close() was called", NULL},
    {"root", (getter)store_get_root, (setter)store_set_root,
     "the root ref of the store header (an int); set it in a write transaction", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pymms_store_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mmstore.Store",
    .tp_basicsize = sizeof(pymms_store),
    .tp_dealloc = (destructor)store_dealloc,
    .tp_repr = (reprfunc)store_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An open store (mmstore.open). See help(mmstore).",
    .tp_traverse = (traverseproc)store_traverse,
    .tp_clear = (inquiry)store_clear,
    .tp_methods = store_methods,
    .tp_getset = store_getset,
};

/*
 * pymms_module.c -- the mmstore module: open(), the exception classes made
 * from the C error table, constants, and the lazy import of numpy.
 *
 * It owns the mapping from C error codes to Python exceptions; nothing else
 * in the binding builds an exception for a C code by hand. It must never
 * import numpy at module import: `import mmstore` stays cheap, and numpy is
 * needed only once an array is asked for.
 */
#include "pymms.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

PyDoc_STRVAR(module_doc,
"mmstore: tables in memory-mapped files, as zero-copy numpy arrays.\n"
"\n"
"    import mmstore\n"
"    with mmstore.open('data.mms') as s:\n"
"        t = s.table('points')\n"
"        with s.read():                      # one consistent state\n"
"            print(t.column('x').mean())     # a view of the mapped file, no copy\n"
"\n"
"open(path, create=False, readonly=False, nosync=False, huge=True) -> Store\n"
"\n"
"Store: close(), info(), tables(), verify(), checkpoint(), table(name),\n"
"  read() and write() (transactions, as context managers), create_table(name,\n"
"  spec), wait(txn, timeout=None), import_csv(csv_path, table, schema=None,\n"
"  skip_bad=False), string(ref), heap(ref, offset=0, size=None), and in a\n"
"  write transaction alloc(size, zero=True), heap_write(ref, data, offset=0),\n"
"  free(ref), root = ref; root, txn, path, readonly, closed.\n"
"Table: name, store, dtype, fields, len(t), slots, record_size,\n"
"  array(writable=False, huge=False), live(), missing(name), column(name,\n"
"  huge=False), get(i), str(i, field), ref(i), find(field, key), range(field,\n"
"  lo, hi), append(dict), extend(columns), delete(i), to_pandas().\n"
"\n"
"Transactions. `with s.write():` commits when the block ends normally and\n"
"aborts on an exception; `with s.read():` sees one committed state, whole,\n"
"while other processes commit. A call made outside any transaction runs in\n"
"a read transaction of its own.\n"
"\n"
"Lifetimes (the rule; see README.md):\n"
"- An array from array()/column() stays valid as long as it lives, even after\n"
"  s.close(): close() ends the Store for Python at once (further calls raise\n"
"  ValueError) but the mapping stays until the last array is gone. Inside the\n"
"  read transaction it was taken in, an array shows that state and nothing\n"
"  else; after it, it shows whatever the handle maps (later commits; for a\n"
"  table another process migrated to smaller records or dropped, its bytes\n"
"  now and zeros past them -- never a crash).\n"
"- Arrays are read-only unless asked for with array(writable=True) inside a\n"
"  write transaction; a read-only array cannot be made writable.\n"
"- Stores through a writable array are part of whatever write transaction is\n"
"  active when they are made. Stores made after its transaction ended (with\n"
"  no other write transaction active) are never committed: they are discarded\n"
"  before the next transaction begins, and they never crash the interpreter.\n"
"  Delete writable arrays after their transaction: while one lives, each new\n"
"  transaction first takes the writer lock to discard stray stores, and if\n"
"  another process migrates or drops its table meanwhile, a store through it\n"
"  in a later write transaction lands in the table's new layout (or in a new\n"
"  table's records) and is committed.\n"
"- Refused with BufferError: a writable view of a table created or migrated\n"
"  in the current write transaction (after an abort its stores would land in\n"
"  the old layout's records, or a later table's), or appended to in it (after\n"
"  an abort a store into the new records' fresh space could be committed by\n"
"  another process), and migrating a table while writable arrays over it\n"
"  live in this process (their stores would land in the new layout). Read-only\n"
"  arrays are never refused: they read zeros where nothing is mapped any more.\n"
"\n"
"Scans of whole tables: a view maps page-cache folios of 2 MiB 2 MiB at a\n"
"time, and then a whole-column mean no longer pays a first touch per 4 KiB\n"
"page (on the benchmark's VM 35-80 ms more than a warm pass over 80 MB).\n"
"extend() of 2 MiB or more (and import_csv) writes its records in 2 MiB\n"
"folios by default (see open(), huge). For a table read in from the disk,\n"
"column(name, huge=True) and array(huge=True) ask the kernel to read its\n"
"pages as 2 MiB folios: one system call, nothing read, pages already cached\n"
"keep their size; not the default because a cold read of one record then\n"
"reads 2 MiB (see help(Table.column)).\n"
"\n"
"Threads: a Store is used by one thread at a time. A call from another thread\n"
"while one is blocked in a call, or inside a transaction, raises BusyError.\n"
"The GIL is released around every call that can block.\n"
"\n"
"Errors: mmstore.Error, with one subclass per C error code (CorruptError for\n"
"MMS_ECORRUPT, ...), each with .code, .name and .detail; system errors are\n"
"OSError subclasses (FileNotFoundError, ...) with .code = -errno.\n"
"InvalError is also a ValueError, NoentError a KeyError, RangeError an\n"
"IndexError.\n");

PyObject *pymms_Error;

enum { ERR_FIRST = -30900, ERR_LAST = -30999 };
static PyObject *err_class[ERR_FIRST - ERR_LAST + 1];

PyObject *pymms_error_class(int err)
{
    if (err <= ERR_FIRST && err >= ERR_LAST && err_class[ERR_FIRST - err])
        return err_class[ERR_FIRST - err];
    return pymms_Error;
}

/* Set exc (an instance) as the current exception, with its attributes. */
static PyObject *raise_instance(PyObject *exc, int err, const char *name, const char *detail)
{
    if (!exc)
        return NULL;
    PyObject *code = PyLong_FromLong(err);
    PyObject *nm = name ? PyUnicode_FromString(name) : Py_NewRef(Py_None);
    PyObject *dt = PyUnicode_DecodeUTF8(detail, (Py_ssize_t)strlen(detail), "replace");
    if (code && nm && dt && PyObject_SetAttrString(exc, "code", code) == 0 &&
        PyObject_SetAttrString(exc, "name", nm) == 0 &&
        PyObject_SetAttrString(exc, "detail", dt) == 0)
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_XDECREF(code);
    Py_XDECREF(nm);
    Py_XDECREF(dt);
    Py_DECREF(exc);
    return NULL;
}

/* Is err an errno (-errno), not an MMS_E* code? */
static int is_errno(int err)
{
    return !mms_errname(err) && err < 0 && err > -4096;
}

/* file: the OSError's filename (NULL: none). */
static PyObject *raise_with(int err, const char *msg, const char *detail, PyObject *file)
{
    const char *name = mms_errname(err);
    PyObject *exc;
    if (is_errno(err)) {
        /* OSError(errno, message[, filename]) picks the subclass
         * (FileNotFoundError...). */
        exc = file ? PyObject_CallFunction(PyExc_OSError, "isO", -err, msg, file)
                   : PyObject_CallFunction(PyExc_OSError, "is", -err, msg);
    } else {
        exc = PyObject_CallFunction(pymms_error_class(err), "s", msg);
    }
    return raise_instance(exc, err, name, detail);
}

PyObject *pymms_raise(int err, const char *what)
{
    return pymms_raise_file(err, what, NULL, NULL);
}

PyObject *pymms_raise_file(int err, const char *what, const char *file, const char *detail)
{
    /* Copy the detail first: it is this thread's, and the next failing C
     * call overwrites it. */
    char copy[512], head[512], echo[1024], msg[1600];
    snprintf(copy, sizeof copy, "%s", detail ? detail : mms_errdetail());
    int named = file && is_errno(err); /* the OSError's filename names it */
    if (file && !named)
        snprintf(head, sizeof head, "%s %s", what, file);
    else
        snprintf(head, sizeof head, "%s", what);
    /* str(OSError) ends with its filename: a detail that says only "FILE:
     * its error" would say it twice. */
    if (named)
        snprintf(echo, sizeof echo, "%s: %s", file, mms_strerror(err));
    if (copy[0] && !(named && strcmp(copy, echo) == 0))
        snprintf(msg, sizeof msg, "%s: %s: %s", head, mms_strerror(err), copy);
    else
        snprintf(msg, sizeof msg, "%s: %s", head, mms_strerror(err));
    PyObject *name = named ? PyUnicode_DecodeFSDefault(file) : NULL;
    if (named && !name)
        return NULL;
    raise_with(err, msg, copy, name);
    Py_XDECREF(name);
    return NULL;
}

PyObject *pymms_raise_msg(int err, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: %s", detail, mms_strerror(err));
    return raise_with(err, msg, detail, NULL);
}

void pymms_outcome(PyObject *exc, const char *attr, int done, PyObject *note)
{
    PyObject *t, *v, *tb, *added = NULL;
    PyErr_Fetch(&t, &v, &tb); /* the exception being raised, if any, stays */
    PyObject *flag = done < 0 ? Py_None : done ? Py_True : Py_False;
    if (exc && note && PyObject_SetAttrString(exc, attr, flag) == 0)
        added = PyObject_CallMethod(exc, "add_note", "O", note);
    Py_XDECREF(added);
    Py_XDECREF(note);
    PyErr_Restore(t, v, tb); /* and a failure above is dropped */
}

void pymms_outcome_raised(const char *attr, int done, PyObject *note)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    pymms_outcome(v, attr, done, note);
    PyErr_Restore(t, v, tb);
}

void pymms_value_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    PyErr_SetString(PyExc_ValueError, msg);
}

const char *pymms_utf8(PyObject *o, const char *what)
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

int pymms_long_in(PyObject *iv, long long lo, unsigned long long hi, unsigned long long *out)
{
    int ovf = 0;
    long long s = PyLong_AsLongLongAndOverflow(iv, &ovf);
    if (s == -1 && PyErr_Occurred())
        return -1;
    if (ovf < 0)
        return 0;
    if (ovf > 0) { /* past INT64_MAX: an unsigned bound may still hold it */
        unsigned long long u = PyLong_AsUnsignedLongLong(iv);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return u <= hi ? (*out = u, 1) : 0;
    }
    if (s < lo || (s >= 0 && (unsigned long long)s > hi))
        return 0;
    *out = (unsigned long long)s;
    return 1;
}

int pymms_int_arg(PyObject *o, const char *what, long long lo, unsigned long long hi,
                  unsigned long long *out)
{
    PyObject *iv = PyNumber_Index(o); /* TypeError for a float, a str, ... */
    int in = iv ? pymms_long_in(iv, lo, hi, out) : -1;
    Py_XDECREF(iv);
    if (in == 0) {
        if (lo == 0 && hi == UINT64_MAX)
            PyErr_Format(PyExc_ValueError, "%s must be an int from 0 to 2**64-1, not %R", what, o);
        else
            PyErr_Format(PyExc_ValueError, "%s must be an int from %lld to %llu, not %R", what,
                         lo, hi, o);
    }
    return in > 0 ? 0 : -1;
}

/* "MMS_ECORRUPT" -> "CorruptError". */
static void class_name(const char *cname, char *out, size_t cap)
{
    const char *p = cname + 5; /* past "MMS_E" */
    size_t k = 0;
    for (size_t i = 0; p[i] && k + 6 < cap; i++)
        out[k++] = (char)(i == 0 ? p[i] : tolower((unsigned char)p[i]));
    snprintf(out + k, cap - k, "Error");
}

/* Codes whose exception is also a built-in one, so that `except KeyError`
 * and friends catch them. */
static PyObject *extra_base(int err)
{
    switch (err) {
    case MMS_EINVAL: return PyExc_ValueError;
    case MMS_ENOENT: return PyExc_KeyError;
    case MMS_ERANGE: return PyExc_IndexError;
    default: return NULL;
    }
}

static int make_errors(PyObject *m)
{
    PyObject *d = Py_BuildValue("{s:O,s:O,s:O}", "code", Py_None, "name", Py_None, "detail",
                                Py_None);
    if (!d)
        return -1;
    pymms_Error = PyErr_NewExceptionWithDoc(
        "mmstore.Error",
        "An mmstore error: .code is the C error code (MMS_E* or -errno), .name its\n"
        "C name, .detail what exactly failed (mms_errdetail()).",
        PyExc_Exception, d);
    Py_DECREF(d);
    if (!pymms_Error || PyModule_AddObjectRef(m, "Error", pymms_Error) < 0)
        return -1;
    /* Every code the C table defines, found by asking it (mms_errname()). */
    for (int err = ERR_FIRST; err >= ERR_LAST; err--) {
        const char *cname = mms_errname(err);
        if (!cname)
            continue;
        char pyname[64], qual[80];
        class_name(cname, pyname, sizeof pyname);
        snprintf(qual, sizeof qual, "mmstore.%s", pyname);
        PyObject *extra = extra_base(err);
        PyObject *bases = extra ? PyTuple_Pack(2, pymms_Error, extra) : PyTuple_Pack(1, pymms_Error);
        PyObject *attrs = Py_BuildValue("{s:i,s:s}", "code", err, "name", cname);
        PyObject *cls = bases && attrs
                            ? PyErr_NewExceptionWithDoc(qual, mms_strerror(err), bases, attrs)
                            : NULL;
        Py_XDECREF(bases);
        Py_XDECREF(attrs);
        if (!cls)
            return -1;
        err_class[ERR_FIRST - err] = cls; /* the module keeps a reference too */
        if (PyModule_AddObjectRef(m, pyname, cls) < 0 || PyModule_AddIntConstant(m, cname, err) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * numpy, on first use
 * ------------------------------------------------------------------------ */
static PyObject *numpy_module;

PyObject *pymms_numpy(void)
{
    if (!numpy_module)
        numpy_module = PyImport_ImportModule("numpy");
    return numpy_module;
}

PyObject *pymms_np_attr(const char *name)
{
    PyObject *np = pymms_numpy();
    return np ? PyObject_GetAttrString(np, name) : NULL;
}

/* ------------------------------------------------------------------------
 * open()
 * ------------------------------------------------------------------------ */
PyObject *pymms_store_new(mms_store *s, PyObject *path, unsigned flags, int guard, dev_t dev,
                          ino_t ino);

/* The absolute form of path (bytes), without resolving links. */
static PyObject *absolute_path(PyObject *fspath)
{
    const char *p = PyBytes_AS_STRING(fspath);
    if (p[0] == '/')
        return PyUnicode_DecodeFSDefault(p);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return PyErr_SetFromErrno(PyExc_OSError);
    PyObject *b = PyBytes_FromFormat("%s/%s", cwd, p);
    if (!b)
        return NULL;
    PyObject *u = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(b));
    Py_DECREF(b);
    return u;
}

PyDoc_STRVAR(open_doc,
"open(path, create=False, readonly=False, nosync=False, huge=True) -> Store\n"
"\n"
"Open the store in directory path (create it with create=True). readonly maps\n"
"it read-only (write transactions raise RdonlyError). nosync: commits survive\n"
"a crash of the process but not of the machine (MMS_NOSYNC). The first handle\n"
"to open a store recovers it from its journal; the GIL is released meanwhile.\n"
"Write handles are opened without the guard (MMS_NOGUARD), so a stray store\n"
"through an old writable array never kills the interpreter; if MMS_GUARD=1 in\n"
"the environment turns it on anyway, writable arrays are refused.\n"
"huge (write handles): extend() of at least 2 MiB writes its records into\n"
"pages advised 2 MiB (so does import_csv's mms import unless MMS_HUGE=0), so\n"
"the page cache holds them in 2 MiB folios and every later view of them (any\n"
"process) maps them 2 MiB at a time: the first scan of a table just loaded\n"
"costs about what a warm one does. huge=False\n"
"(MMS_NOHUGE) leaves the kernel's folios: sparse one-record updates of loaded\n"
"records then dirty a little less for the next checkpoint to write back.\n"
"MMS_HUGE=0|1 in the environment wins over it (mmstore.h, MMS_NOHUGE).\n"
"A Store is a context manager: `with mmstore.open(p) as s:` closes it.");

static PyObject *mod_open(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {"path", "create", "readonly", "nosync", "huge", NULL};
    PyObject *fspath = NULL;
    int create = 0, readonly = 0, nosync = 0, huge = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|pppp:open", kwlist, PyUnicode_FSConverter,
                                     &fspath, &create, &readonly, &nosync, &huge))
        return NULL;
    if (create && readonly) {
        Py_DECREF(fspath);
        PyErr_SetString(PyExc_ValueError, "open: create and readonly exclude each other");
        return NULL;
    }
    if (!PyBytes_GET_SIZE(fspath)) { /* as os.open(""); mms_open: "path and out are required" */
        Py_DECREF(fspath);
        return pymms_raise_file(-ENOENT, "open", "", "the path is empty");
    }
    PyObject *abspath = absolute_path(fspath);
    if (!abspath) {
        Py_DECREF(fspath);
        return NULL;
    }
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_NOGUARD | (create ? MMS_CREATE : 0) | (readonly ? MMS_RDONLY : 0) |
              (nosync ? MMS_NOSYNC : 0) | (huge ? 0 : MMS_NOHUGE);
    mms_store *s = NULL;
    int r;
    const char *p = PyBytes_AS_STRING(fspath);
    struct stat dir = {0}; /* which store it is, whatever path names it (R4) */
    Py_BEGIN_ALLOW_THREADS
    r = mms_open(p, &o, &s);
    if (!r && stat(p, &dir) != 0)
        dir.st_ino = 0;
    Py_END_ALLOW_THREADS
    if (r) {
        pymms_raise_file(r, "open", p, NULL);
        Py_DECREF(fspath);
        Py_DECREF(abspath);
        return NULL;
    }
    Py_DECREF(fspath);
    /* The environment (MMS_GUARD=1) wins over MMS_NOGUARD; then a stray
     * store would fault, so writable views are refused (R5). */
    int guard = 0;
    if (!readonly) {
        mms_info *info = malloc(sizeof *info);
        if (info && mms_info_get(s, info) == 0)
            guard = info->guard;
        else
            guard = 1; /* cannot tell: assume the worst */
        free(info);
    }
    PyObject *st = pymms_store_new(s, abspath, o.flags, guard, dir.st_dev, dir.st_ino);
    Py_DECREF(abspath);
    return st;
}

static PyMethodDef module_methods[] = {
    {"open", (PyCFunction)(void (*)(void))mod_open, METH_VARARGS | METH_KEYWORDS, open_doc},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "mmstore", module_doc, -1,
                                        module_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_mmstore(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    if (PyType_Ready(&pymms_store_type) < 0 || PyType_Ready(&pymms_table_type) < 0 ||
        PyType_Ready(&pymms_view_type) < 0 || make_errors(m) < 0 ||
        pymms_table_init_types(m) < 0 ||
        PyModule_AddObjectRef(m, "Store", (PyObject *)&pymms_store_type) < 0 ||
        PyModule_AddObjectRef(m, "Table", (PyObject *)&pymms_table_type) < 0 ||
        PyModule_AddStringConstant(m, "__version__", MMS_VERSION_STRING) < 0 ||
        PyModule_AddIntConstant(m, "FORMAT_VERSION", MMS_FORMAT_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "SLOT_BITS", MMS_SLOT_BITS) < 0 ||
        PyModule_AddObject(m, "SLOT_MASK", PyLong_FromUnsignedLongLong(MMS_SLOT_MASK)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

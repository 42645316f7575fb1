/*
 * pymms.h -- what the files of the CPython binding share: the three object
 * types (Store, Table and the View that numpy arrays are built over), the
 * rules every call follows, and the helpers for errors and numpy.
 *
 * The binding uses only the public include/mmstore.h. numpy is used at run
 * time, through the buffer protocol and its Python API (no numpy headers).
 *
 * THE RULES (each enforced in pymms_store.c, tested in python/tests)
 *
 *  R1 Threads. A Store is used by one thread at a time. A call made while
 *     another thread is inside a blocking call on the Store (one that runs
 *     with the GIL released), or while the Store is inside a transaction
 *     that another thread began, raises BusyError. Everything else is
 *     serialised by the GIL. So does a call (close() included) made by
 *     Python code that a call on the Store runs while it converts its
 *     arguments (a value's __index__, __float__, __array__, __len__, ...;
 *     PYMMS_CONVERTING): the outer call holds pointers into the handle, its
 *     schemas and tables, that a close or a migration would free. And
 *     close() made by Python code that runs inside a call (a __del__ that
 *     the garbage collector runs when the call allocates) raises
 *     BusyError: calls that read or write the store are counted (calls).
 *
 *  R2 Consistency. Every read runs inside a read or write transaction:
 *     inside the caller's, or in one of its own (begun and ended around the
 *     call). Outside a transaction the handle's catalog may be ahead of its
 *     mappings, and a pointer it yields could reach unmapped space.
 *
 *  R3 Lifetimes. A numpy array over a table is built over a View, which
 *     holds the Table, which holds the Store. While any View lives, the C
 *     handle stays open: Store.close() ends the Store for Python (every call
 *     then raises ValueError) but the mms_close() waits for the last View to
 *     be deallocated. Views are counted by their own lifetime, not by
 *     buffer exports: an exporter with bf_releasebuffer gets wrapped by
 *     numpy.frombuffer() in a memoryview whose release() a user could call
 *     while the array still points into the mapping (pymms_view.c).
 *
 *  R4 Address ranges. A View's range stays mapped until mms_close(): the
 *     C library never takes back a range a region mapped (src/map.c,
 *     "Retired ranges": past a shorter file, and for a dropped region,
 *     zeros -- writable private ones in a write handle without the guard,
 *     as the binding's write handles are). So no view faults, whatever
 *     happens to its table (an abort of the transaction that created or
 *     migrated it, a migration or a drop by any handle), and no read-only
 *     view is refused: afterwards it shows the region's bytes now (the new
 *     layout's, zeros, another table's). A writable view is another
 *     matter: its stores in a later write transaction are committed to
 *     whatever the range holds then -- the table's records in another
 *     layout, or those of a table that took the region id. So what could
 *     change that under a live writable view is refused (BufferError): a
 *     writable view of a table created or migrated in the current write
 *     transaction (an abort drops the region, whose id the next table
 *     created takes, or maps the old layout back), and a migration of a
 *     table that has live writable views -- through any Store of this
 *     process open on the same store directory (the other handle maps the
 *     new file at its next transaction; its views are found by the
 *     table's region, whatever name it knows the table by). Another
 *     process cannot be refused: a writable view kept past its
 *     transaction over a table another process then migrates or drops
 *     stores into the new layout's records (or a new table's) in this
 *     handle's next write transaction. Delete writable views when their
 *     transaction ends (python/tests/test_refusals.py).
 *  R5 Writable views. A writable view is made only inside a write
 *     transaction, on a handle opened without the guard (MMS_NOGUARD: a
 *     stray store must not SIGSEGV the interpreter), and only over records
 *     that existed when the transaction began or were reused by it: records
 *     appended in the transaction are fresh space, mapped shared, and after
 *     an abort a store through an old view would land in the file's page
 *     cache, where another process's next append would commit it. Stores
 *     through a writable view are part of whatever write transaction is
 *     active when they are made. Stores made when none is active land in
 *     the handle's private copy-on-write pages; they are discarded before
 *     the next transaction of any kind begins (mms_txn_begin +
 *     mms_txn_abort, which drops every private page), for as long as
 *     writable views that outlived their transaction exist. So they are
 *     never committed and never seen inside a transaction.
 *
 *  R6 Blocking. The GIL is released around every call that can wait for
 *     the disk or for another process: open, close, transaction begin,
 *     commit and abort, read begin, wait, checkpoint, verify, the bulk copy
 *     of extend, and the import subprocess. Waits that last as long as
 *     another process wants (a write transaction's begin, wait, the
 *     import) run Python's signal handlers at least every 100 ms.
 */
#ifndef PYMMS_H
#define PYMMS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#include <mmstore.h>

#include <stdint.h>
#include <sys/types.h>

enum pymms_state { PYMMS_IDLE = 0, PYMMS_READ, PYMMS_WRITE };

typedef struct pymms_store {
    PyObject_HEAD
    mms_store *s;          /* NULL once mms_close() ran */
    PyObject *path;        /* str: the absolute path of the store */
    PyObject *tables;      /* dict: name -> weakref to its Table, one object per
                              table (weak: a Table holds its Store, and a cycle
                              would keep a dropped Store open until the GC ran) */
    PyObject *pinned;      /* list: the Tables the current write transaction
                              marked (created, migrated, appended: R4, R5),
                              kept alive until it ends so the marks stay */
    unsigned flags;        /* the MMS_* open flags */
    int closed;            /* close() was called (R3) */
    int guard;             /* the C guard is on (an environment override) */
    enum pymms_state state;
    unsigned long owner;   /* thread that began the current transaction (R1) */
    unsigned long busy;    /* thread inside a call with the GIL released (R1) */
    int converting;        /* a call is converting its arguments (R1) */
    int calls;             /* calls using the handle under way (R1: no close) */
    uint64_t serial;       /* write transactions begun through this Store */
    int doomed;            /* the write transaction holds partial work: abort it */
    int tainted;           /* writable views outlived a write transaction (R5) */
    Py_ssize_t nviews;     /* Views alive (R3) */
    Py_ssize_t nwviews;    /* of which writable (R5) */
    unsigned long forks;   /* pymms_forked(): the process's forks when it opened */
    dev_t dev;             /* the store's directory, or ino 0 if unknown (R4) */
    ino_t ino;
    struct pymms_store *next; /* the process's Stores not deallocated yet (R4) */
} pymms_store;

typedef struct pymms_table {
    PyObject_HEAD
    pymms_store *store;    /* strong */
    mms_table *t;          /* valid while store->s is open */
    PyObject *name;        /* str */
    uint64_t layout;       /* hash of the layout dtype/fields were built from */
    PyObject *dtype;       /* numpy dtype, or NULL until asked for */
    PyObject *fields;      /* tuple of Field, or NULL */
    uint64_t created;      /* serial of the write txn that created it, or 0 (R4) */
    uint64_t migrated;     /* serial of the write txn that migrated it, or 0 (R4) */
    uint64_t appended;     /* serial of the last write txn that appended at its end (R5) */
    Py_ssize_t nwviews;    /* writable Views of this table alive (R4) */
    uint32_t region;       /* its region when the last writable View was made (R4) */
    int dead;              /* its creation was aborted */
    PyObject *weakrefs;    /* the Store's cache holds it weakly */
} pymms_table;

/* The exporter a numpy array is built over: one range of a table's
 * records. It keeps its Table (and so the Store and the C handle) alive. */
typedef struct pymms_view {
    PyObject_HEAD
    pymms_table *table;    /* strong */
    pymms_store *store;    /* strong: outlives a cleared table (GC) */
    char *buf;
    Py_ssize_t len;
    int writable;
} pymms_view;

extern PyTypeObject pymms_store_type;
extern PyTypeObject pymms_table_type;
extern PyTypeObject pymms_view_type;

/* ---- pymms_module.c: errors and numpy --------------------------------- */

/* Raise the exception for a C error code (MMS_E* -> its Error subclass,
 * -errno -> OSError subclass), with mms_errdetail() of this thread; what
 * says which call failed. Returns NULL. Read the detail before anything
 * else can fail on this thread. */
PyObject *pymms_raise(int err, const char *what);
/* As pymms_raise, for a call on file (a path, in the file system's
 * encoding; NULL: none): an errno gives an OSError whose filename is file,
 * an MMS_E* code names file in its message. detail NULL: mms_errdetail(). */
PyObject *pymms_raise_file(int err, const char *what, const char *file, const char *detail);
/* As pymms_raise with a message of our own instead of mms_errdetail(). */
PyObject *pymms_raise_msg(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ValueError with a message made by C's printf: PyErr_Format knows no
 * %llx, %g, ... (it copies the rest of the format as it is). */
void pymms_value_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The UTF-8 of a str argument (owned by o), refusing other types and
 * embedded NULs (C would see a shorter name). NULL with an exception. */
const char *pymms_utf8(PyObject *o, const char *what);
/* Is iv (an int) in lo..hi (lo >= INT64_MIN, hi <= UINT64_MAX)? 1 with its
 * bits in *out (lo < 0: two's complement), 0 if not, -1 with an exception. */
int pymms_long_in(PyObject *iv, long long lo, unsigned long long hi, unsigned long long *out);
/* An integer argument in lo..hi (lo >= INT64_MIN, hi <= UINT64_MAX) into
 * *out (lo < 0: the bits of the signed value). Not an integer (no
 * __index__): TypeError; out of the range: ValueError naming what and the
 * range, never OverflowError. 0, or -1 with the exception. */
int pymms_int_arg(PyObject *o, const char *what, long long lo, unsigned long long hi,
                  unsigned long long *out);
/* Tell on exception exc whether what was interrupted happened: attr
 * (done 1 True, 0 False, -1 None: not known yet) and a note (PEP 678;
 * steals note, NULL allowed). Any exception already set stays; none is
 * raised. */
void pymms_outcome(PyObject *exc, const char *attr, int done, PyObject *note);
/* The same on the exception being raised (set). */
void pymms_outcome_raised(const char *attr, int done, PyObject *note);
/* The Error subclass of an MMS_E* code (borrowed), or the base Error. */
PyObject *pymms_error_class(int err);
extern PyObject *pymms_Error;

/* numpy, imported on first use: the module (borrowed) and one of its
 * attributes (new reference); NULL with an exception set if numpy cannot
 * be imported. */
PyObject *pymms_numpy(void);
PyObject *pymms_np_attr(const char *name);

/* ---- pymms_store.c: the rules -------------------------------------------- */

/* R1, "not closed" and "not a copy in a fork child": 0, or -1 with an
 * exception. */
int pymms_check(pymms_store *st);
/* Was st opened before this process was forked (it is the child's copy
 * of the parent's Store)? */
int pymms_forked(const pymms_store *st);
/* R2: begin a read transaction of our own if the caller is in none,
 * after checking R1 and "not closed" again (Python code may have run
 * since the caller's pymms_check).
 * *own receives whether one was begun. 0 or -1 (exception set). */
int pymms_scope_enter(pymms_store *st, int *own);
/* End it (if own). Returns rc, or -1 if ending failed and rc was 0. */
int pymms_scope_exit(pymms_store *st, int own, int rc);
/* In a write transaction of this thread? 0, or -1 with NotxnError. */
int pymms_need_write(pymms_store *st, const char *what);
/* The region of table name (as this handle's transaction sees it), or 0
 * (none, or it cannot be told). */
uint32_t pymms_region_of(pymms_store *st, const char *name);
/* Writable views of the table in region alive in the other Stores of this
 * process open on st's store directory (R4). By region, not by name:
 * another process may have renamed the table, and a Store that has not
 * begun a transaction since knows it by its old name. */
Py_ssize_t pymms_views_elsewhere(pymms_store *st, uint32_t region);
/* Close the C handle now (R3); with the GIL released. Returns the error. */
int pymms_store_release(pymms_store *st);
/* The live Table a value of st->tables names (borrowed), or NULL. */
pymms_table *pymms_cached(PyObject *ref);
/* Cache tb under name (a weak reference). 0, or -1 with an exception. */
int pymms_cache_put(pymms_store *st, PyObject *name, PyObject *tb);
/* Keep tb alive until the write transaction ends: it carries one of its
 * marks (set *mark to st->serial; pinned once per transaction). 0, or -1
 * with an exception. */
int pymms_mark(pymms_table *tb, uint64_t *mark);
/* The cached Table over C handle t (a new reference; the name it was
 * cached under is dropped: the caller caches it again), or NULL. */
pymms_table *pymms_table_of_handle(pymms_store *st, const mms_table *t);
/* The Table object for name (cached), or NULL with KeyError. Reads in R2. */
PyObject *pymms_store_table(pymms_store *st, PyObject *name);

/* The current thread, as R1 compares them. */
static inline unsigned long pymms_me(void)
{
    return PyThread_get_thread_ident();
}

/* Run stmt with the GIL released, the Store marked busy (R1, R6). */
#define PYMMS_BLOCKING(st, stmt)                                               \
    do {                                                                       \
        (st)->busy = pymms_me();                                               \
        Py_BEGIN_ALLOW_THREADS                                                 \
        stmt;                                                                  \
        Py_END_ALLOW_THREADS                                                   \
        (st)->busy = 0;                                                        \
    } while (0)

/* Run stmt, a conversion of the caller's Python values that may run Python
 * code, with calls on the Store refused meanwhile (R1). stmt must not jump
 * out. */
#define PYMMS_CONVERTING(st, stmt)                                             \
    do {                                                                       \
        (st)->converting++;                                                    \
        stmt;                                                                  \
        (st)->converting--;                                                    \
    } while (0)

/* ---- pymms_schema.c: kinds, layouts, specs, numpy helpers ---------------- */

const char *pymms_kind_name(unsigned kind); /* as `mms import --schema` spells it */
unsigned pymms_kind_size(unsigned kind);    /* 0 for chars (any size) */
int pymms_kind_is_int(unsigned kind);
int pymms_kind_is_heap(unsigned kind);      /* str and blob: refs to heap strings */
/* numpy's format of a field ("i4", "S8", ...). */
void pymms_kind_format(const mms_field *f, char *out, size_t cap);
/* A str from C text (UTF-8, surrogateescape: never fails on bad bytes). */
PyObject *pymms_str_of(const char *s);
/* A chars value as a str: its size bytes less the NUL padding at the end,
 * as numpy's "S" dtype shows them (a NUL inside stays: the index compares
 * every byte, and append() takes the str back to the same bytes). */
PyObject *pymms_chars_of(const char *p, uint32_t size);
/* The Field struct sequence type, made at module init. */
extern PyTypeObject *pymms_field_type;
int pymms_table_init_types(PyObject *module);
/* A tuple of Field for a schema. */
PyObject *pymms_make_fields(const mms_schema *sc);
/* The table's current layout (inside a transaction); drops the cached
 * dtype and fields when it changed. NULL with an exception. */
const mms_schema *pymms_table_schema(pymms_table *tb);
/* The cached numpy dtype of that layout (borrowed), built on first use. */
PyObject *pymms_table_dtype_of(pymms_table *tb, const mms_schema *sc);
/* The field called name; KeyError (or TypeError) if none. */
const mms_field *pymms_field_named(const mms_schema *sc, PyObject *name, uint32_t *index);
/* create_table: spec is a list of (name, kind[, size or target]) and
 * Fields (Table.fields, at their offsets), a "name:kind,..." string or a
 * numpy structured dtype. A table of that name with another layout is
 * migrated, or (migrate 0) refused with SchemaError. */
PyObject *pymms_create_table(pymms_store *st, PyObject *name, PyObject *spec, int migrate);
/* import_csv's schema (a spec that is not a str), parsed once as
 * create_table lays it out: *fields, a tuple of Field (which carry the
 * record size), and *text, the tool's --schema string, when the tool lays
 * out from it the same records (else NULL: an offset or record size it
 * cannot say, or a ',' or ':' in a name). 0, or -1 with an exception. */
int pymms_import_schema(PyObject *spec, PyObject **fields, PyObject **text);
/* numpy.<fn>(*args) with args built by Py_BuildValue(fmt, ...). */
PyObject *pymms_np_call(const char *fn, const char *fmt, ...);
/* PySequence_Fast(o, msg), but a list is copied: PySequence_Fast gives
 * the list itself, and Python code that converting one of its items runs
 * (an __index__) could shrink it under a loop over its items. */
PyObject *pymms_fast_copy(PyObject *o, const char *msg);
int pymms_is_ndarray(PyObject *o);          /* -1 with an exception */
char pymms_kind_char(PyObject *dtype);      /* dtype.kind, 0 with an exception */
char pymms_dtype_kind(PyObject *array);     /* array.dtype.kind */
Py_ssize_t pymms_int_attr(PyObject *o, const char *name);

/* ---- pymms_table.c: the Table object, reads -------------------------------- */

/* A new Table object over t. */
PyObject *pymms_table_new(pymms_store *st, mms_table *t, PyObject *name);
/* R1, closed store, aborted creation: 0 or -1 with an exception. */
int pymms_table_check(pymms_table *tb);
/* Inside a transaction (R2): 0 while the table is there, or -1 with the
 * NoentError of a table another handle dropped. O(1). Every call on a
 * Table reads its layout (pymms_table_schema, which says the same) or
 * makes this check: a dropped table's handle answers 0 records and 0
 * slots, which must not pass for an empty table. */
int pymms_table_there(pymms_table *tb);
/* A Python index (negative from the end) -> slot; IndexError if out. */
int pymms_index_arg(PyObject *o, uint64_t slots, uint64_t *out);

/* ---- pymms_write.c: append, delete, extend ---------------------------------- */

/* fn(tb, arg), counted in tb's Store's calls (R1) while it runs. */
PyObject *pymms_in_call(pymms_table *tb, PyObject *(*fn)(pymms_table *, PyObject *),
                        PyObject *arg);

/* An index key for field f (a lookup, not a record): v converted and
 * checked as append converts a value of f, f->size bytes into out (cap
 * bytes; a field wider, or a str or blob one, has no keys). A wrong type
 * raises TypeError, a value f cannot hold ValueError, both naming f. */
int pymms_put_key(pymms_store *st, const mms_field *f, PyObject *v, unsigned char *out,
                  size_t cap);
PyObject *pymms_table_append(pymms_table *tb, PyObject *rec);
PyObject *pymms_table_delete(pymms_table *tb, PyObject *i);
PyObject *pymms_table_extend(pymms_table *tb, PyObject *columns);
extern const char pymms_append_doc[], pymms_delete_doc[], pymms_extend_doc[];

/* ---- pymms_view.c ------------------------------------------------------- */

/* A numpy array of n records of record_size bytes at buf with dtype; read
 * only unless writable. n may be 0. */
PyObject *pymms_array(pymms_table *tb, char *buf, uint64_t n, uint32_t record_size,
                      PyObject *dtype, int writable);

#endif /* PYMMS_H */

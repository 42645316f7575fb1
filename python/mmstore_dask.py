"""mmstore_dask -- many stores as one dask array or data frame.

A store is a single-machine object; a larger data set is sharded by store
(DESIGN.md section 8): each shard a store, on whichever machine holds it,
each with the same table. This module lets dask treat those shards as one:

    import mmstore_dask
    x = mmstore_dask.array(paths, "events", "latency")   # dask.array, one chunk a store
    x.mean().compute()
    df = mmstore_dask.dataframe(paths, "events")          # dask.dataframe, one partition a store
    df.groupby("kind").latency.mean().compute()

Nothing is read when the collection is made but each store's header and
catalog (it opens each store read-only, once, to learn its table's layout and
size). Each task opens its store by path, read-only, in the process that runs
it -- a dask worker on another machine too, if the store is there under the
same path: a Store cannot be pickled, a path can.

- array(paths, table, field=None): every slot of the table (deleted ones
  included, as Table.array() and Table.column() give them; live() says which
  are live), one chunk per store in the order of paths. A chunk is a view of
  the mapped file, no copy: Table.column(field), or Table.array() for
  field=None (the whole records, a numpy structured dtype). A chunk is taken
  in a read transaction of its own and, once that has ended, shows what the
  store's handle maps (mmstore's lifetime rule), so a writer committing to a
  shard while a computation reads it may be seen part-way. Compute over
  stores no writer changes meanwhile -- a checkpointed copy (`mms copy`) is
  the way to ship one -- or pass copy=True, which copies each chunk inside
  its read transaction: one committed state per store.
  Each chunk is the table's slots as counted when the array was made;
  records appended since are left out, and a store that has fewer slots or
  another layout by then fails the task with ValueError naming it.
  str and blob fields are heap refs, not values: array() refuses them
  (TypeError); dataframe() gives their strings.
- live(paths, table): a bool per slot, True where the record is live, in the
  same chunks as array() (a copy, as Table.live()).
- dataframe(paths, table, columns=None): the live records, one partition per
  store, each Table.to_pandas() of that store (a copy, taken in one read
  transaction, so one committed state per store), indexed by record index in
  its store (the same index appears in several partitions: reset_index() or
  the store's position, given by store_column, tells them apart). Every
  partition has the same dtypes: an integer, bool or ref column has pandas'
  nullable dtype (Int64, boolean, ...) in every partition if a live record
  of any store misses its value when the frame is made (Table.missing(),
  read then), and to_pandas()'s plain numpy dtype otherwise (casting
  2.5 M integers to Int64 took longer than the to_pandas() itself). A store
  that has a missing value there by the time its partition is computed fails
  the task with ValueError naming it.

Every store must hold the table with the same fields (names and kinds, and
for array() the same layout); a store that does not is named in the
ValueError raised when the collection is made.
"""

import dask
import dask.array as da
import numpy as np

import mmstore

__all__ = ["array", "live", "dataframe"]


def _paths(paths):
    if isinstance(paths, (str, bytes)) or not hasattr(paths, "__iter__"):
        raise TypeError("paths: a list of store paths, not %r" % (paths,))
    paths = [p if isinstance(p, str) else str(p) for p in paths]
    if not paths:
        raise ValueError("paths: no store given")
    return paths


def _layout(t):
    """What must agree between the shards: (name, kind, size, target) of
    each field, and the numpy dtype (offsets, record size)."""
    return tuple((f.name, f.kind, f.size, f.target) for f in t.fields), t.dtype


_NULLABLE = {"i8": "Int8", "i16": "Int16", "i32": "Int32", "i64": "Int64",
             "u8": "UInt8", "u16": "UInt16", "u32": "UInt32", "u64": "UInt64",
             "bool": "boolean", "ref": "Int64"}


# What Table.to_pandas() gives a field with no missing value.
_PLAIN = {"i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
          "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
          "f32": "float32", "f64": "float64", "bool": "bool", "ref": "int64",
          "chars": "object", "str": "object", "blob": "object"}


def _survey(paths, table, missing=False):
    """Open each store read-only once: its table's layout and slot count,
    and with missing, the integer, bool and ref fields where a live record
    has a missing value (mmstore's null bitmap: cheap, a bit a record)."""
    first = None
    out = []
    nullable = set()
    for p in paths:
        with mmstore.open(p, readonly=True) as s:
            try:
                t = s.table(table)
            except KeyError:
                raise ValueError("%s: no table %r" % (p, table)) from None
            with s.read():
                fields, dtype = _layout(t)
                slots = t.slots
                if missing:
                    live = t.live()
                    nullable.update(f[0] for f in fields
                                    if f[1] in _NULLABLE and f[0] not in nullable and
                                    (t.missing(f[0]) & live).any())
        if first is None:
            first = (p, fields, dtype)
        elif fields != first[1]:
            raise ValueError("%s: table %r has other fields than in %s: %s, not %s" %
                             (p, table, first[0], fields, first[1]))
        out.append((p, dtype, slots))
    return (first[1], out, nullable) if missing else (first[1], out)


def _open_checked(path, table):
    s = mmstore.open(path, readonly=True)
    try:
        t = s.table(table)
    except KeyError:
        s.close()
        raise ValueError("%s: no table %r any more" % (path, table)) from None
    return s, t


def _check_now(path, table, t, fields, slots):
    if _layout(t)[0] != fields:
        raise ValueError("%s: table %r changed its fields since the dask collection was made"
                         % (path, table))
    if t.slots < slots:
        raise ValueError("%s: table %r has %d slots, fewer than the %d it had when the dask "
                         "collection was made" % (path, table, t.slots, slots))


def _chunk(path, table, field, fields, dtype, slots, copy):
    s, t = _open_checked(path, table)
    try:
        with s.read():
            _check_now(path, table, t, fields, slots)
            a = t.array() if field is None else t.column(field)
            if a.dtype != dtype:
                raise ValueError("%s: table %r changed its layout since the dask collection "
                                 "was made" % (path, table))
            a = a[:slots]
            if copy:
                a = a.copy()
    finally:
        s.close()  # a view keeps the mapping until the view is gone
    return a


def _live_chunk(path, table, fields, slots):
    s, t = _open_checked(path, table)
    try:
        with s.read():
            _check_now(path, table, t, fields, slots)
            return t.live()[:slots]
    finally:
        s.close()


def _field_of(fields, table, field):
    for f in fields:
        if f[0] == field:
            if f[1] in ("str", "blob"):
                raise TypeError("table %r field %r is a %s field (heap refs, not values): "
                                "use dataframe() for its strings" % (table, field, f[1]))
            return f
    raise KeyError("table %r has no field %r (fields: %s)" %
                   (table, field, ", ".join(f[0] for f in fields)))


def array(paths, table, field=None, copy=False):
    """A dask array of every slot of table in each store of paths, one chunk
    per store: field's values, or the whole records for field=None. See the
    module's help for what a chunk shows and when."""
    paths = _paths(paths)
    fields, shards = _survey(paths, table)
    if field is not None:
        _field_of(fields, table, field)
    chunks = []
    for p, dtype, slots in shards:
        dtype = np.dtype(dtype)
        if field is not None:
            dtype = dtype[field]
        elif dtype != np.dtype(shards[0][1]):
            raise ValueError("%s: table %r has another record layout than in %s (offsets or "
                             "size): array() of whole records needs one dtype; name a field"
                             % (p, table, shards[0][0]))
        d = dask.delayed(_chunk, pure=False)(p, table, field, fields, dtype, slots, copy)
        chunks.append(da.from_delayed(d, shape=(slots,), dtype=dtype))
    return da.concatenate(chunks)


def live(paths, table):
    """A dask bool array, one per slot of table in each store of paths, in
    array()'s chunks: True where the record is live."""
    paths = _paths(paths)
    fields, shards = _survey(paths, table)
    return da.concatenate([
        da.from_delayed(dask.delayed(_live_chunk, pure=False)(p, table, fields, slots),
                        shape=(slots,), dtype=np.bool_) for p, _, slots in shards])


def _frame(path, table, fields, names, dtypes, store_column, position):
    s, t = _open_checked(path, table)
    try:
        with s.read():
            _check_now(path, table, t, fields, 0)
            df = t.to_pandas()
    finally:
        s.close()
    df = df[names]
    for n in names:  # to_pandas picks a nullable dtype only where a value is missing
        if str(df[n].dtype) != dtypes[n]:
            if dtypes[n] not in _NULLABLE.values():
                raise ValueError("%s: table %r field %r has missing values it had none of when "
                                 "the dask collection was made" % (path, table, n))
            df[n] = df[n].astype(dtypes[n])
    if store_column is not None:
        df[store_column] = np.full(len(df), position, dtype=np.int64)
    return df


def dataframe(paths, table, columns=None, store_column=None):
    """A dask DataFrame of the live records of table in each store of paths,
    one partition per store (its Table.to_pandas(), with integer, bool and
    ref columns in pandas' nullable dtypes). columns: the fields to keep (all
    by default). store_column: the name of an int64 column to add holding
    the store's position in paths. See the module's help."""
    import dask.dataframe as dd
    import pandas as pd
    paths = _paths(paths)
    fields, shards, nullable = _survey(paths, table, missing=True)
    names = [f[0] for f in fields]
    if columns is not None:
        if isinstance(columns, str):
            raise TypeError("columns: a list of field names, not a str")
        columns = list(columns)
        for c in columns:
            if c not in names:
                raise KeyError("table %r has no field %r (fields: %s)" %
                               (table, c, ", ".join(names)))
        names = columns
    if store_column is not None and store_column in names:
        raise ValueError("store_column %r is a field of table %r" % (store_column, table))
    kinds = {f[0]: f[1] for f in fields}
    dtypes = {n: _NULLABLE[kinds[n]] if n in nullable else _PLAIN[kinds[n]] for n in names}
    meta = pd.DataFrame({n: pd.Series([], dtype=dtypes[n]) for n in names},
                        index=pd.Index([], dtype=np.int64))
    if store_column is not None:
        meta[store_column] = pd.Series([], dtype=np.int64)
    parts = [dask.delayed(_frame, pure=False)(p, table, fields, names, dtypes, store_column, i)
             for i, (p, _, _) in enumerate(shards)]
    return dd.from_delayed(parts, meta=meta, verify_meta=True)

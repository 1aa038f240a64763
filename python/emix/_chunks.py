"""Chunk sources: data that ``fit`` reads piece by piece, again on every EM iteration.

The library's chunked fit (``emix/chunks.hpp``) asks for chunk ``i`` as it walks the data; the
adapters here answer with a View over a host array (in place when the chunk is a C-contiguous
float32/float64 array, converted once otherwise) and the chunk's sample weights. The fit runs
without the GIL and takes it only for these calls.

What counts as a chunk source (:func:`is_chunk_source`):

* :class:`Chunks`, made by :func:`emix.chunked` from any of the below, with a chosen chunk size;
* a NumPy array or ``numpy.memmap`` given to :func:`emix.chunked` (cut into blocks of rows;
  given to ``fit`` directly, a memmap is used in place as one array);
* an ``h5py.Dataset`` (read a block of rows at a time);
* a ``pyarrow.Table``, ``pyarrow.RecordBatchReader`` is *not* one (it reads once), a
  ``pyarrow.dataset.Dataset`` (a chunk per fragment) or a ``pyarrow.parquet.ParquetFile``
  (a chunk per row group); every column is a feature;
* a list or tuple of 2-D arrays (or Arrow Tables and RecordBatches), or any other object whose
  ``iter()`` gives a fresh iterator over them (or ``(array, sample_weight)`` pairs) every time. A
  one-shot iterator (a generator) cannot be re-read and is rejected.
"""

import collections.abc
import math
import numbers

import numpy as np

from . import _emix
from ._emix import InvalidArgument
from ._arrays import _FLOATS, _is_sparse, _target_dtype, numeric_numpy, to_host_numpy

# Rows per chunk for arrays cut by emix: about 64 MiB of float64 per chunk.
_DEFAULT_CHUNK_BYTES = 64 << 20


def _module_of(x):
    return type(x).__module__.split(".")[0]


def _is_h5py_dataset(x):
    return _module_of(x) == "h5py" and type(x).__name__ == "Dataset"


def _is_arrow(x):
    return _module_of(x) == "pyarrow" and type(x).__name__ in ("Table", "FileSystemDataset",
                                                              "Dataset", "UnionDataset",
                                                              "InMemoryDataset", "ParquetFile")


def _is_chunk_list(x):
    # Any 2-D item makes a list of chunks (its items that are not 2-D are then refused, each
    # named); a list of rows or of numbers is one array.
    return (isinstance(x, (list, tuple)) and len(x) > 0
            and any(_is_chunk_item(item) for item in x))


def _is_arrow_chunk(x):
    """An Arrow Table or RecordBatch: a chunk of rows, every column a feature (Arrow objects
    have no ndim)."""
    return _module_of(x) == "pyarrow" and type(x).__name__ in ("Table", "RecordBatch")


def _is_chunk_item(item):
    if _as_pair(item) is not None or (isinstance(item, tuple) and item):
        item = item[0]  # an (array, weights) pair, or a mistaken tuple
    # polars frames, as Arrow's objects, have no ndim.
    return (getattr(item, "ndim", None) == 2 or _is_arrow_chunk(item)
            or (_module_of(item) == "polars" and type(item).__name__ == "DataFrame"))


def reads_only_in_chunks(x):
    """Whether `x` is a chunk source that cannot also be read as one array: h5py datasets and
    Arrow tables convert to arrays (predict and score take them), the others do not."""
    if _is_h5py_dataset(x) or (_is_arrow(x) and type(x).__name__ == "Table"):
        return False
    return is_chunk_source(x)


def _usable_memory_bytes():
    # The library's measure: a container's or ulimit's limit binds before physical memory.
    return _emix.usable_memory_bytes()


def converts_beyond_memory(x, dtype):
    """Whether `x` is a host array that would be converted (its element type or layout is not
    one the library reads in place) into a copy larger than half the memory this process may
    use: an int16 or big-endian memmap of a file larger than memory, say, which was read whole
    into float64. fit, select and accumulate read such an array chunk by chunk instead, as
    emix.chunked(x) would and as `emix fit` reads a .npy that needs converting."""
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        return False
    target = _target_dtype(x.dtype, dtype)
    if x.dtype == target and x.flags.c_contiguous:
        return False
    return x.shape[0] * x.shape[1] * target.itemsize > 0.5 * _usable_memory_bytes()


def is_one_shot(x):
    """True for an iterator (a generator, a file read once): ``iter(x) is x``."""
    return isinstance(x, collections.abc.Iterator)


def is_chunk_source(x):
    """Whether ``fit`` reads `x` chunk by chunk rather than as one array in memory."""
    if isinstance(x, Chunks):
        return True
    # Arrays (a memmap included: it is used in place, paged in by the OS; emix.chunked(mm)
    # reads it chunk by chunk instead) and sparse matrices (refused as the estimators refuse
    # them) are not chunk sources.
    if isinstance(x, np.ndarray) or _is_sparse(x):
        return False
    if _is_h5py_dataset(x) or _is_arrow(x) or _is_chunk_list(x) or is_one_shot(x):
        return True
    # Any other re-iterable that is not array-like: no __array__, no buffer, no DLPack. A range
    # is a sequence of numbers, which the estimators read as NumPy does (a 1-D array: refused as
    # scikit-learn refuses it); a set has no order to re-read.
    return (isinstance(x, collections.abc.Iterable)
            and not isinstance(x, (list, tuple, str, bytes, dict, range, set, frozenset))
            and not hasattr(x, "__array__") and not hasattr(x, "__dlpack__")
            and not hasattr(x, "__cuda_array_interface__")
            and not hasattr(x, "__array_interface__"))


def _as_chunk_array(x, dtype, index):
    """A chunk as a C-contiguous float32/float64 host array (in place when it is one), read as
    the estimators read one array (pandas, tensors, objects that are numbers)."""
    where = f"chunk {index}"
    try:
        x = (_arrow_to_numpy(x, where) if _module_of(x) == "pyarrow"
             else numeric_numpy(x, where, dtype))
    except InvalidArgument:
        raise
    except (TypeError, ValueError) as e:  # NumPy's or the producer's own words, chunk named
        if str(e).startswith(where):  # numeric_numpy's own, which names the chunk already
            raise
        raise InvalidArgument(f"{where}: {e}") from e
    if x.ndim != 2:
        raise InvalidArgument(f"{where}: expected a 2-D array, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=_target_dtype(x.dtype, dtype))


def _arrow_to_numpy(table, where):
    """An Arrow table or record batch as a (rows, columns) array (Arrow stores columns, so this
    is one copy)."""
    for name, column in zip(table.column_names, table.columns):
        # A null is a missing value, not a NaN; a whole column of them is, in a dataset of
        # several files, most likely a file without that column.
        nulls = getattr(column, "null_count", 0)
        if nulls == table.num_rows and nulls > 0:
            raise InvalidArgument(f"{where}: column {name!r} holds no values (all {nulls} null): "
                                  "is it missing from this part of the data (a file of a dataset "
                                  "without it)?")
        if nulls:
            values = "value" if nulls == 1 else "values"
            raise InvalidArgument(f"{where}: column {name!r} has {nulls} missing {values} (null); "
                                  "drop or impute them")
    columns = [np.asarray(column.to_numpy(zero_copy_only=False) if hasattr(column, "to_numpy")
                          else column) for column in table.columns]
    for j, (name, column) in enumerate(zip(table.column_names, columns)):
        # Text and times are not features; objects (decimals, booleans with nulls) convert.
        if column.dtype.kind in "USVMm":
            raise InvalidArgument(f"{where}: column {name!r}: element type {column.dtype} is "
                                  "not numeric")
        if column.dtype.kind == "O":
            try:
                columns[j] = column.astype(np.float64)
            except (TypeError, ValueError) as e:  # strings, lists, structs
                raise InvalidArgument(f"{where}: column {name!r} ({table.schema.field(j).type}) "
                                      f"does not hold numbers: {e}") from e
    if not columns:
        return np.empty((table.num_rows, 0))
    dtype = np.result_type(*[c.dtype for c in columns])
    if dtype not in _FLOATS:
        dtype = np.float64
    out = np.empty((table.num_rows, len(columns)), dtype=dtype)
    for j, column in enumerate(columns):
        out[:, j] = column
    return out


def named_sample(X):
    """What the feature-name checks read for data `X`: a chunk source's DataFrame (its source,
    or its first chunk where the items are frames), an empty Arrow Table of an Arrow source's
    columns, a Dask DataFrame's empty pandas frame, else `X` itself."""
    if isinstance(X, Chunks):
        X = X.source
    if _is_chunk_list(X):
        first = X[0]
        X = first[0] if _as_pair(first) is not None or isinstance(first, tuple) else first
    if _module_of(X) == "pyarrow":
        # scikit-learn reads the names of a Table, not those of a ParquetFile, a Dataset or a
        # RecordBatch: their schema's, as the Table of the same columns gives them.
        schema = X.schema_arrow if hasattr(X, "schema_arrow") else getattr(X, "schema", None)
        if hasattr(schema, "empty_table"):
            return schema.empty_table()
    if _module_of(X) in ("dask", "dask_expr") and hasattr(X, "_meta"):
        return X._meta  # scikit-learn reads names from pandas, not from Dask
    return X


def _is_cut_by_rows(source):
    """An array, memmap, h5py dataset or anything with a shape and row slicing (a DataFrame)."""
    return isinstance(source, np.ndarray) or _is_h5py_dataset(source) or (
        hasattr(source, "shape") and hasattr(source, "__getitem__") and not _is_arrow(source))


class Chunks:
    """Data given as chunks, for ``fit`` of any emix estimator (see :func:`emix.chunked`)."""

    def __init__(self, source, chunk_rows=None, sample_weight=None):
        if is_one_shot(source):
            raise TypeError(
                "emix: the chunk source is a one-shot iterator (a generator?): exact EM reads "
                "the data again on every iteration. Pass a list of arrays, an object whose "
                "__iter__ starts afresh, or use partial_fit for data seen once.")
        if chunk_rows is not None and (isinstance(chunk_rows, bool)
                                       or not isinstance(chunk_rows, numbers.Real)
                                       or not math.isfinite(chunk_rows)
                                       or int(chunk_rows) != chunk_rows or chunk_rows < 1):
            raise InvalidArgument(f"chunk_rows must be an int >= 1, got {chunk_rows!r}")
        if chunk_rows is not None and not (_is_cut_by_rows(source) or (
                _is_arrow(source) and type(source).__name__ in ("Table", "ParquetFile"))):
            raise InvalidArgument(
                "chunk_rows applies to arrays, datasets with a shape, Arrow Tables and Parquet "
                "files, which emix cuts by rows; a pyarrow Dataset gives a chunk per fragment "
                "and an iterable its own items (open one Parquet file with "
                "pyarrow.parquet.ParquetFile to choose its chunks' rows)")
        self.source = source
        self.chunk_rows = None if chunk_rows is None else int(chunk_rows)
        if sample_weight is not None:
            from ._base import as_real_weights  # _base imports this module

            # Read as fit(X, sample_weight=...) reads them: complex numbers and times refused, a
            # scalar (0-d) for every row (the adapter, which knows the rows, spreads it).
            sample_weight = as_real_weights(to_host_numpy(sample_weight))
            if sample_weight.ndim > 1:
                raise InvalidArgument("sample_weight must be 1-D or a scalar")
        self.sample_weight = sample_weight

    def _adapter(self, dtype):
        s = self.source
        if _is_cut_by_rows(s):
            return _SlicedRows(s, self.chunk_rows, self.sample_weight, dtype)
        if _is_arrow(s):
            return _ArrowChunks(s, self.chunk_rows, self.sample_weight, dtype)
        if isinstance(s, collections.abc.Iterable):
            return _Reiterable(s, self.sample_weight, dtype)
        raise TypeError(f"emix: cannot read chunks from a {type(s).__name__}")


def chunked(source, chunk_rows=None, sample_weight=None):
    """Data to fit chunk by chunk: exact EM that reads `source` again on every iteration.

    Parameters
    ----------
    source : array, numpy.memmap, h5py.Dataset, pyarrow Table / Dataset / ParquetFile, or
            re-iterable of 2-D arrays
        The rows. Arrays and datasets with a ``shape`` are cut into blocks of `chunk_rows`
        rows; Arrow sources give a chunk per record batch, fragment or row group; an iterable
        gives its items, each a 2-D array (an Arrow Table or RecordBatch too, every column a
        feature) or an ``(array, sample_weight)`` pair (a list of the two, as a PyTorch
        DataLoader gives, too), and must start afresh on every ``iter()`` (a
        generator is rejected).
    chunk_rows : int, optional
        Rows per chunk for sources cut by rows (default: about 64 MiB of data per chunk); for
        an Arrow Table, the most rows of a record batch; for a ParquetFile, each row group is
        cut into pieces of at most `chunk_rows` rows. Refused for other sources, which give
        their own chunks.
    sample_weight : array-like of shape (n_samples,) or float, optional
        Weight of each row, over all chunks, for sources cut by rows; a scalar weighs every
        row alike.

    Returns
    -------
    Chunks
        Pass it to ``fit`` of ``GaussianMixture``, ``BernoulliMixture`` or ``BinomialMixture``.

    Notes
    -----
    The fit equals the fit of all rows in one array up to the order of the sums (about 1e-15
    relative per iteration in float64; float32 data, summed in float within tiles that the
    chunks cut elsewhere, about 1e-6), initialisation included. C-contiguous float32/float64
    chunks are used in place; others are converted one chunk at a time. Errors name the chunk.
    A memory-mapped source must not be truncated during a fit (the process would get SIGBUS).
    """
    return Chunks(source, chunk_rows, sample_weight)


def adapter_for(X, sample_weight, dtype):
    """The library-facing adapter of a chunk source given to ``fit``."""
    if isinstance(X, Chunks):
        if sample_weight is not None:
            raise InvalidArgument("sample_weight: give it to emix.chunked(source, "
                                  "sample_weight=...), which holds the chunks")
        return X._adapter(dtype)
    return Chunks(X, None, sample_weight)._adapter(dtype)


def chunks_read_once(X, sample_weight, dtype):
    """(View, weights or None) of each chunk of a chunk source, read once, in order: also from
    a one-shot iterator (a generator), which fit refuses and a single pass can take."""
    if not is_one_shot(X):
        source = adapter_for(X, sample_weight, dtype)
        for i in range(source.n_chunks()):
            yield source.chunk(i)
        return
    if sample_weight is not None:
        raise InvalidArgument("sample_weight: give (array, weights) pairs as the iterator's items")
    once = _Adapter()
    once.dtype = dtype
    for i, item in enumerate(X):
        pair = _as_pair(item)
        if pair is not None:
            yield once._result(pair[0], pair[1], i)
        else:
            yield once._result(item, None, i)


def _add_note(error, note):
    """PEP 678's note on `error` (Python 3.11); on 3.10, kept where 3.11 keeps it, for the
    tracebacks that show it (the exceptiongroup backport's)."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        error.__notes__ = [*getattr(error, "__notes__", []), note]


class _Adapter:
    """n_chunks() and chunk(i) -> (View, weights or None), as the C++ PyChunkSource calls, and
    known_rows(i): chunk i's rows when known without reading it, else -1 (the fit then reads
    every chunk once before its first iteration). Records each chunk's width, rows and weight
    as it serves it (every chunk is read by the end of the fit's first E-step). Subclasses read
    chunk i in _chunk(i)."""

    def __init__(self):
        self.seen = {}
        # Passes over the source, for the note on an error it raises: a read of a chunk at or
        # before the last one read starts another (as it restarts a re-iterable's iter()).
        self.passes, self.last_read = 0, None
        # Without a dtype parameter, the chunks' widest element type where the source tells it
        # before they are read (_Reiterable), else the first chunk's: narrower chunks are
        # converted to it, wider ones refused.
        self.first_dtype = None
        self.first_dtype_chunk = None
        self._only_chunk = None
        # The first frame's (or table's) column names, as first read: every frame of every pass
        # must have them (one whose columns were reordered on a later pass is other data). And
        # chunk 0's frame without its rows: named_sample cannot look inside a source that is
        # only iterable, and its fit takes feature_names_in_ from first_frame.
        self.columns, self.columns_chunk = None, None
        self.first_frame = None

    def known_rows(self, i):
        return -1

    def chunk(self, i):
        if self.last_read is None or i <= self.last_read:
            self.passes += 1
        self.last_read = i
        if self._only_chunk is not None:
            return self._only_chunk
        try:
            result = self._chunk(i)
            if self.n_chunks() == 1:
                # A source of one chunk (a pyarrow Table of one record batch, as from_pandas
                # makes) is its data whole: converted once and held, as an in-memory fit holds
                # its array, rather than converted again on every pass (2x the fit's time).
                self._only_chunk = result
            return result
        except InvalidArgument:
            raise  # emix's own, which names the chunk
        except Exception as error:
            # The source's own error (a file gone, a type that changed), of its own type so that
            # the caller's except clauses still catch it, but it did not say where it stopped.
            _add_note(error, f"emix: raised while reading {self._where(i)} of the chunk source, "
                             f"on pass {self.passes} over it")
            raise

    def _where(self, i):
        """Chunk i as the library names it, "chunk 3 (rows 301..400)", where the rows of chunks
        0 to i are known (told by the source, or read on an earlier pass); else "chunk 3"."""
        rows = []
        for j in range(i + 1):
            known = self.known_rows(j)
            rows.append(known if known >= 0 else self.seen[j][1] if j in self.seen else -1)
        if min(rows) < 0:
            return f"chunk {i}"
        first = sum(rows[:-1])
        if rows[-1] == 0:
            return f"chunk {i} (no rows, after row {first})"
        return f"chunk {i} (rows {first + 1}..{first + rows[-1]})"

    @property
    def n_features(self):
        return self.seen[0][0]

    @property
    def n_samples(self):
        return sum(rows for _, rows, _ in self.seen.values())

    @property
    def weight_total(self):
        return float(sum(weight for _, _, weight in self.seen.values()))

    def peek_features(self):
        """The width of the data, before the fit (reads chunk 0 where nothing else tells)."""
        if self.n_chunks() == 0:
            raise InvalidArgument("the chunk source holds no chunks: there are no rows to fit")
        return self.chunk(0)[0].cols

    def _result(self, x, w, index):
        names = None
        if _module_of(x) in ("pandas", "polars") and getattr(x, "columns", None) is not None:
            names = [str(c) for c in x.columns]
        elif _is_arrow_chunk(x):
            names = list(x.column_names)
        if names is not None:
            # Frames (or tables) of other columns are other data, whatever their widths.
            if self.columns is None:
                self.columns, self.columns_chunk = names, index
                if index == 0:
                    # Without rows, and holding none of the chunk's (iloc's view would keep
                    # them for the whole fit); scikit-learn reads a Table's names, not a
                    # RecordBatch's.
                    self.first_frame = (x.iloc[:0].copy() if _module_of(x) == "pandas"
                                        else x.clear() if _module_of(x) == "polars"
                                        else x.schema.empty_table())
            elif names != self.columns and index == self.columns_chunk:
                raise InvalidArgument(
                    f"chunk {index}: its columns {names} are not {self.columns}, its own on the "
                    f"first pass (pass {self.passes} now): a chunk source must give the same "
                    "chunks on every pass")
            elif names != self.columns:
                raise InvalidArgument(f"chunk {index}: its columns {names} are not chunk "
                                      f"{self.columns_chunk}'s {self.columns}")
        x = _as_chunk_array(x, self.dtype, index)
        if self.dtype is None:
            if self.first_dtype is None:
                self.first_dtype, self.first_dtype_chunk = x.dtype, index
            elif x.dtype != self.first_dtype:
                if x.dtype.itemsize > self.first_dtype.itemsize and self.first_dtype_chunk is None:
                    # The type came from the items' own, counted before the fit: the source
                    # changed (this said "the type of chunk None: ... do not say their type").
                    raise InvalidArgument(
                        f"chunk {index}: {x.dtype} values now, but the source's items were all "
                        f"{self.first_dtype} when counted before the fit: the chunks must be "
                        "the same on every pass")
                if x.dtype.itemsize > self.first_dtype.itemsize:
                    # Rounding this chunk to float32 would change the model without a word.
                    raise InvalidArgument(
                        f"chunk {index}: {x.dtype} values, but the chunks are read as "
                        f"{self.first_dtype}, the type of chunk {self.first_dtype_chunk}: this "
                        "source's items do not say their type before they are read (a "
                        "generator, say), so the first one read sets it; give every chunk one "
                        "type, or set the estimator's dtype='float64'")
                x = np.ascontiguousarray(x, dtype=self.first_dtype)
        if w is not None:
            w = np.ascontiguousarray(w, dtype=np.float64)
            if w.ndim != 1:
                raise InvalidArgument(f"chunk {index}: sample weights must be 1-D")
        self.seen[index] = (x.shape[1], x.shape[0],
                            float(x.shape[0]) if w is None else float(w.sum()))
        return _emix.view(x), w


class _SlicedRows(_Adapter):
    """A NumPy array / memmap, h5py dataset or anything with a shape and row slicing."""

    def __init__(self, x, chunk_rows, sample_weight, dtype):
        shape = tuple(x.shape)
        if len(shape) != 2:
            raise InvalidArgument(f"emix: a chunk source cut by rows must be 2-D, got shape "
                                  f"{shape}")
        super().__init__()
        self.x, self.dtype = x, dtype
        if chunk_rows is None:
            chunk_rows = max(1, _DEFAULT_CHUNK_BYTES // max(1, 8 * shape[1]))
        self.rows = int(chunk_rows)
        self.total_rows = int(shape[0])
        self.w = sample_weight
        if self.w is not None and self.w.ndim == 0:
            # A scalar weighs every row alike (a read-only view, not a copy per row).
            self.w = np.broadcast_to(self.w, (self.total_rows,))
        if self.w is not None and self.w.shape != (self.total_rows,):
            raise InvalidArgument(f"sample_weight has {self.w.shape[0]} values, but the data have "
                                  f"{self.total_rows} rows")

    def n_chunks(self):
        return max(1, -(-self.total_rows // self.rows))

    def peek_features(self):
        return int(self.x.shape[1])

    def known_rows(self, i):
        return max(0, min(self.total_rows, (i + 1) * self.rows) - i * self.rows)

    def _chunk(self, i):
        a, b = i * self.rows, min(self.total_rows, (i + 1) * self.rows)
        return self._result(self.x[a:b], None if self.w is None else self.w[a:b], i)


class _ArrowChunks(_Adapter):
    """pyarrow: a Table (its record batches), a Dataset (its fragments) or a ParquetFile (its
    row groups), every column a feature."""

    def __init__(self, source, chunk_rows, sample_weight, dtype):
        super().__init__()
        self.dtype = dtype
        name = type(source).__name__
        # Rows of chunk i from metadata, without reading it (not known for a Dataset's fragments).
        self.rows_of = None
        if name == "ParquetFile" and chunk_rows is None:
            self.n = source.num_row_groups
            self.read = source.read_row_group
            self.rows_of = lambda i: source.metadata.row_group(i).num_rows
        elif name == "ParquetFile":
            # Each row group cut into pieces of chunk_rows (a piece never spans two groups); a
            # pass in order reads each group once.
            pieces = []
            for group in range(source.num_row_groups):
                rows = source.metadata.row_group(group).num_rows
                pieces += [(group, a, min(rows, a + chunk_rows))
                           for a in range(0, max(rows, 1), chunk_rows)]
            cached = {}

            def read(i):
                group, a, b = pieces[i]
                if group not in cached:
                    cached.clear()
                    cached[group] = source.read_row_group(group)
                return cached[group].slice(a, b - a)

            self.n = len(pieces)
            self.read = read
            self.rows_of = lambda i: pieces[i][2] - pieces[i][1]
        elif name == "Table":
            batches = source.to_batches(max_chunksize=chunk_rows)
            self.n = len(batches)
            self.read = batches.__getitem__
            self.rows_of = lambda i: batches[i].num_rows
        else:
            import pyarrow as pa

            fragments = list(source.get_fragments())
            self.n = len(fragments)

            def own_types(physical):
                # Each file in its own column types (cast to the dataset's schema, which takes
                # the first file's, a float64 file after a float32 one was rounded and a float
                # one after an int64 one refused), in the dataset's column order (files may
                # store theirs in other orders); a column a file lacks reads as nulls, named so.
                fields = []
                for field in source.schema:
                    j = physical.get_field_index(field.name)
                    fields.append(physical.field(j) if j >= 0 else field)
                return pa.schema(fields)

            schemas = [own_types(fragment.physical_schema) for fragment in fragments]
            self.read = lambda i: fragments[i].to_table(schema=schemas[i])
            # The widest of the files' types, known before any is read, as for a list of tables.
            types = [_schema_dtype(schema) for schema in schemas]
            if dtype is None and types and all(t is not None for t in types):
                self.first_dtype = np.result_type(*types)
        self.w = sample_weight
        # Row offsets of each chunk: from the metadata where it tells the rows (the fit may then
        # read chunks out of order, for its initialisation's sample, before a pass in order);
        # else learnt on the first pass, which reads every chunk in order.
        self.first_rows = {0: 0}
        if self.rows_of is not None:
            for i in range(self.n):
                self.first_rows[i + 1] = self.first_rows[i] + int(self.rows_of(i))
            if (self.w is not None and self.w.ndim == 1
                    and self.first_rows[self.n] != len(self.w)):
                raise InvalidArgument(f"sample_weight: {len(self.w)} weights for "
                                      f"{self.first_rows[self.n]} rows")

    def n_chunks(self):
        return self.n

    def known_rows(self, i):
        return -1 if self.rows_of is None else int(self.rows_of(i))

    def _chunk(self, i):
        table = self.read(i)
        w = None
        if self.w is not None and self.w.ndim == 0:
            w = np.full(table.num_rows, float(self.w))  # a scalar weighs every row alike
        elif self.w is not None:
            a = self.first_rows[i]
            self.first_rows[i + 1] = a + table.num_rows
            w = self.w[a:a + table.num_rows]
            if i == self.n - 1 and a + table.num_rows != len(self.w):
                raise InvalidArgument(f"sample_weight: {len(self.w)} weights for "
                                      f"{a + table.num_rows} rows")
        return self._result(table, w, i)


def _as_pair(item):
    """An item's (array, weights) when it is such a pair: a tuple of two, or a list of a 2-D
    array and a 1-D one (as a PyTorch DataLoader over a TensorDataset gives its batches)."""
    if isinstance(item, tuple) and len(item) == 2:
        return item
    if (isinstance(item, list) and len(item) == 2 and getattr(item[0], "ndim", None) == 2
            and getattr(item[1], "ndim", None) == 1):
        return tuple(item)
    return None


def _item_rows(item):
    """The rows of a chunk source's item where its shape tells them without reading it, else
    -1."""
    if _as_pair(item) is not None:
        item = item[0]
    if _is_arrow_chunk(item):
        return int(item.num_rows)
    shape = getattr(item, "shape", None)
    try:
        return int(shape[0]) if shape is not None and len(shape) == 2 else -1
    except (TypeError, ValueError):
        return -1


def _schema_dtype(schema):
    """The element type of the chunks of an Arrow schema, or None where their values decide it.

    Float columns convert to their own type (_arrow_to_numpy); other types, whose NumPy type
    depends on their values (nulls), leave it to the first chunk read."""
    types = [str(field.type) for field in schema]
    if not types or not all(t in ("float", "double") for t in types):
        return None
    return np.dtype(np.float32 if all(t == "float" for t in types) else np.float64)


def _item_dtype(item):
    """The element type of a chunk source's item (an array, or an (array, weights) pair), or
    None where it does not say without being read."""
    if _as_pair(item) is not None:
        item = item[0]
    if _is_arrow_chunk(item):
        return _schema_dtype(item.schema)
    if _module_of(item) == "pandas" and hasattr(item, "dtypes"):
        # A frame's columns' types; extension types (nullable integers) leave it to the read.
        try:
            types = [np.dtype(t) for t in getattr(item.dtypes, "values", [item.dtypes])]
        except TypeError:
            return None
        return np.result_type(*{_target_dtype(t, None) for t in types}) if types else None
    try:
        return np.dtype(item.dtype)  # not a PyTorch dtype, say
    except (AttributeError, TypeError):
        return None


class _Reiterable(_Adapter):
    """Any iterable that starts afresh on every iter(): chunks in its order. The library reads
    chunks in order on every pass; a chunk asked for out of order (the initialisation gathers
    rows) restarts the iteration."""

    def __init__(self, source, sample_weight, dtype):
        super().__init__()
        if sample_weight is not None:
            raise InvalidArgument("sample_weight: give (array, weights) pairs as the iterable's "
                                  "items")
        self.source, self.dtype = source, dtype
        self.it, self.position = None, 0
        # The fit's element type, where the items tell it without being read: float32 only if
        # every chunk is float32 (a float64 chunk is never rounded to float32 for a float32
        # chunk 0's sake).
        # The rows each item's shape tells: the library compares every later read with them,
        # so that a source whose chunks change after this counting pass is caught there.
        if isinstance(source, (list, tuple)):
            items = source
        else:
            items, self.passes = self._fresh(), 1  # this counting pass is one over the source
        types, self.rows = [], []
        for item in items:
            types.append(_item_dtype(item))
            self.rows.append(_item_rows(item))
        self.n = len(types)
        if dtype is None and types and all(t is not None for t in types):
            self.first_dtype = np.result_type(*{_target_dtype(t, None) for t in types})

    def _fresh(self):
        it = iter(self.source)
        if it is self.source:
            raise TypeError("emix: the chunk source's __iter__ returns the object itself: it "
                            "cannot be re-read on every EM iteration")
        return it

    def n_chunks(self):
        return self.n

    def known_rows(self, i):
        return self.rows[i]

    def _chunk(self, i):
        if isinstance(self.source, (list, tuple)):
            item = self.source[i]
        else:
            if self.it is None or i < self.position:
                self.it, self.position = self._fresh(), 0
            while True:
                try:
                    item = next(self.it)
                except StopIteration:
                    raise InvalidArgument(f"chunk {i}: the chunk source ended after "
                                          f"{self.position} chunks on this pass, {self.n} on "
                                          "the first") from None
                self.position += 1
                if self.position - 1 == i:
                    break
            if i == self.n - 1:
                # The last chunk of the first pass: a source that now gives more is another
                # data set (its extra rows would be left out without a word).
                extra = next(self.it, None)
                self.it = None
                if extra is not None:
                    raise InvalidArgument(f"chunk {self.n}: the chunk source gave more than the "
                                          f"{self.n} chunks of its first pass")
        pair = _as_pair(item)
        if pair is not None:
            return self._result(pair[0], pair[1], i)
        if isinstance(item, tuple):
            raise InvalidArgument(f"chunk {i}: a tuple item is an (array, sample_weight) "
                                  f"pair, but this one has {len(item)} items")
        return self._result(item, None, i)

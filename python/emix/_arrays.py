"""Arrays in and out: host data in place, CUDA arrays in place, anything else converted once.

A C-contiguous float32 or float64 NumPy array reaches the library as it is (the View's pointer
is the array's buffer). CUDA arrays from CuPy, PyTorch, JAX or any DLPack producer go to the
GPU engine in place; objects that only offer ``__cuda_array_interface__`` are read through the
pointer it gives. Everything else (lists, other dtypes, Fortran order, strided views, CPU tensors
that are not float) is converted once to a C-contiguous float64 (or the requested dtype) array.
Per-row results come back as NumPy arrays for host data and as the input's own array type, on
the input's device, for device data.
"""

import re

import numpy as np

from . import _emix
from ._emix import InvalidArgument

# DLPack device types.
_DL_CPU = 1
_DL_CUDA = 2
_DL_CUDA_HOST = 3
_DL_CUDA_MANAGED = 13

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Data:
    """Data as the library sees them: a View, and where they came from."""

    __slots__ = ("view", "source", "on_device")

    def __init__(self, view, source, on_device):
        self.view = view
        self.source = source
        self.on_device = on_device

    @property
    def n_samples(self):
        return self.view.rows

    @property
    def n_features(self):
        return self.view.cols


def _root_module(x):
    return type(x).__module__.split(".")[0]


def _dlpack_device(x):
    method = getattr(type(x), "__dlpack_device__", None)
    if method is None:
        return None
    try:
        kind, device_id = method(x)
        return int(kind), int(device_id)
    except Exception:  # a producer that cannot say (for example a tensor needing grad)
        return None


def is_device_array(x):
    """True for an array in CUDA memory (DLPack CUDA or managed, or __cuda_array_interface__)."""
    if isinstance(x, np.ndarray):
        return False
    device = _dlpack_device(x)
    if device is not None:
        return device[0] in (_DL_CUDA, _DL_CUDA_MANAGED)
    try:
        return hasattr(x, "__cuda_array_interface__")
    except Exception:
        return False


def _is_sparse(x):
    return hasattr(x, "tocsr") and hasattr(x, "nnz")  # scipy.sparse matrices and arrays


def _target_dtype(source_dtype, dtype):
    """The element type the library gets: `dtype` if given, else float32/float64 kept (in
    either byte order: big-endian float32 from HDF5 or FITS stays float32) and any other type
    as float64 (scikit-learn's rule)."""
    if dtype is not None:
        return np.dtype(dtype)
    native = np.dtype(source_dtype).newbyteorder("=")
    return native if native in _FLOATS else np.dtype(np.float64)


def check_dtype_parameter(dtype):
    if dtype is None:
        return None
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in _FLOATS:
        raise InvalidArgument(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    return resolved


def _shape_problem(shape, name, min_samples=1):
    if len(shape) == 1:
        return ("Expected 2D array, got 1D array instead: shape=%r. Reshape your data either "
                "using array.reshape(-1, 1) if your data has a single feature or "
                "array.reshape(1, -1) if it contains a single sample." % (tuple(shape),))
    if len(shape) != 2:
        return f"Found array with dim {len(shape)}. {name} expected a 2D array."
    if shape[0] < 1:
        return (f"Found array with 0 sample(s) (shape={tuple(shape)}) while a minimum of "
                f"{min_samples} is required by {name}.")
    if shape[1] < 1:
        return (f"Found array with 0 feature(s) (shape={tuple(shape)}) while a minimum of 1 is "
                f"required by {name}.")
    return None


def _raise_not_finite(bad_index, value):
    row, col = (int(i) + 1 for i in bad_index)
    what = "NaN" if np.isnan(value) else "infinity"
    raise InvalidArgument(f"Input X contains {what} (row {row}, column {col}); emix needs finite "
                          "data.")


def _check_finite_host(x):
    # One summation catches NaN and infinity (they propagate); only a sum that overflows or
    # a real non-finite value takes the element-wise look that names the first one.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(x.sum()):
            return
    bad = ~np.isfinite(x)
    if bad.any():
        index = np.argwhere(bad)[0]
        _raise_not_finite(index, x[tuple(index)])


def _is_time_type(dtype):
    if callable(getattr(dtype, "is_temporal", None)):  # polars: Date, Datetime, Duration, Time
        return dtype.is_temporal()
    return (getattr(dtype, "kind", "") in ("M", "m")
            or str(dtype).startswith(("period", "interval")))


def _refuse_frame_times(x, name):
    """A pandas or polars column of times, durations, periods or intervals is not a number to
    fit: mixed with numeric columns, pandas' to_numpy(dtype=float64) and polars' __array__ read
    its times as their ticks (days, microseconds or nanoseconds), silently (a datetime64 array
    alone is refused below)."""
    if type(x).__name__ == "LazyFrame":
        raise TypeError(f"{name}: a polars LazyFrame holds no rows until it is computed; pass "
                        "frame.collect()")
    # A polars frame's column types are its schema (its dtypes are a list); pandas', its dtypes.
    polars_frame = _root_module(x) == "polars" and hasattr(x, "schema")
    dtypes = x.schema if polars_frame else getattr(x, "dtypes", None)
    is_frame = hasattr(dtypes, "items")
    columns = (list(dtypes.items()) if is_frame
               else [(getattr(x, "name", None), getattr(x, "dtype", None))])
    for column, dtype in columns:
        text = str(dtype)
        if _is_time_type(dtype):
            # A frame's column by its name, "" included; a Series by its name where it has one.
            named = is_frame or column not in (None, "")
            where = f"column {column!r}" if named else "the data"
            raise InvalidArgument(f"{name}: {where} has element type {text}, which is not "
                                  "numeric; convert it to numbers explicitly or leave it out")


def _host_array(x, dtype, name, min_samples=1):
    from ._chunks import reads_only_in_chunks

    if reads_only_in_chunks(x):
        raise TypeError(f"{name} takes one array, not a chunk source (emix.chunked, an "
                        "iterable of arrays, a pyarrow dataset or Parquet file): fit, accumulate "
                        "and select read those; call it chunk by chunk")
    given = x
    x = numeric_numpy(x, name, dtype)
    problem = _shape_problem(x.shape, name, min_samples)
    if problem:
        raise InvalidArgument(problem)
    source = x
    with np.errstate(over="ignore"):
        x = np.ascontiguousarray(x, dtype=_target_dtype(x.dtype, dtype))
    try:
        _check_finite_host(x)
    except InvalidArgument:
        if x.dtype == np.float32 and _root_module(given) == "pandas":
            # The frame went to float32 column by column: its values in float64, for the
            # message only.
            source = given.to_numpy(dtype=np.float64, na_value=np.nan)
        if x.dtype == np.float32 and source.dtype != np.float32:
            _refuse_float32_overflow(source, x)
        raise
    return x


def _refuse_float32_overflow(source, converted):
    """Names the first value that was finite before the conversion to float32 and is not
    after it: the data are not at fault, the chosen precision is."""
    overflowed = ~np.isfinite(converted) & np.isfinite(source)
    if overflowed.any():
        index = tuple(np.argwhere(overflowed)[0])
        row, col = (int(i) + 1 for i in index)
        value = float(source[index])
        raise InvalidArgument(f"Input X at row {row}, column {col} is {value!r}, beyond "
                              "float32's range (about 3.4e38): use dtype='float64' or rescale "
                              "the data")


def _frame_as_numpy(frame, dtype):
    """A DataFrame of numeric columns (nullable, Arrow-backed, or NumPy columns of several
    types) as one C-ordered array of the element type the library gets, filled a few columns at
    a time: one conversion, with pd.NA as NaN. to_numpy() first made an object array of such
    frames (a pointer and a Python float per value: 6x the data at the peak, twice
    scikit-learn's), and a Fortran-ordered copy of a frame of mixed types that was copied again.
    None for a frame of one NumPy type (its block is read as it is) and for others
    (categorical, strings, objects), which take the general path."""
    if getattr(frame, "ndim", 0) != 2:
        return None
    kinds = []
    for column_dtype in frame.dtypes:
        numpy_dtype = getattr(column_dtype, "numpy_dtype", column_dtype)  # nullable and Arrow
        if not isinstance(numpy_dtype, np.dtype) or numpy_dtype.kind not in "fiub":
            return None
        kinds.append(numpy_dtype)
    if not kinds or (len(set(kinds)) == 1 and all(isinstance(t, np.dtype) for t in frame.dtypes)):
        return None  # one NumPy block: to_numpy() is a view of it, copied once after
    target = _target_dtype(np.result_type(*kinds), dtype)
    out = np.empty(frame.shape, dtype=target)
    # Each piece passes through a temporary of its columns. A column at a time keeps that to one
    # column, but on a wide frame of NumPy blocks it took 6x the time of a few at a time (0.99 s
    # against 0.17 s on 200,000 x 200); eight at a time there costs a temporary of at most half
    # the data at 17 columns, and on a narrow frame it would be all of it.
    width = 1 if frame.shape[1] <= 16 else 8
    with np.errstate(over="ignore"):  # a value beyond float32 is named after (_host_array)
        for first in range(0, frame.shape[1], width):
            columns = frame.iloc[:, first:first + width]
            out[:, first:first + width] = columns.to_numpy(dtype=target, na_value=np.nan)
    return out


def numeric_numpy(x, name, dtype=None):
    """Host data of any kind (NumPy, pandas, a CPU tensor, lists) as a NumPy array of numbers:
    what every estimator method and every chunk of a chunk source is read through. `name` opens
    the messages ("fit", "chunk 3"); `dtype`, the estimator's, is what a DataFrame is converted
    to, once."""
    if _is_sparse(x):
        raise TypeError(f"{name} does not accept sparse data: a sparse matrix was passed, but "
                        "dense data is required. Use X.toarray() to convert to a dense array.")
    if _root_module(x) == "torch" and getattr(x, "requires_grad", False):
        x = x.detach()
    if _root_module(x) == "torch" and str(getattr(x, "dtype", "")) == "torch.bfloat16":
        x = x.float()  # NumPy has no bfloat16; float32 holds each of its values exactly
    if _root_module(x) == "polars":
        _refuse_frame_times(x, name)
    if _root_module(x) == "pyarrow" and type(x).__name__ in ("Table", "RecordBatch"):
        from ._chunks import _arrow_to_numpy

        # As fit reads one: NumPy's own conversion turned a null into NaN and named neither a
        # time column nor a column of text.
        return _arrow_to_numpy(x, name)
    frame = x if _root_module(x) in ("pandas", "polars") and hasattr(x, "columns") else None
    if _root_module(x) == "pandas" and hasattr(x, "to_numpy"):
        _refuse_frame_times(x, name)
        converted_frame = _frame_as_numpy(x, dtype)
        if converted_frame is not None:
            return converted_frame
        # Nullable columns (Float64, Int64) hold pd.NA, which NumPy cannot read as a number:
        # NaN, which the finiteness check then names.
        converted = x.to_numpy()
        try:
            x = (x.to_numpy(dtype=np.float64, na_value=np.nan) if converted.dtype == object
                 else converted)
        except (TypeError, ValueError) as error:
            _raise_naming_the_column(frame, name, error)
    if not isinstance(x, np.ndarray):
        device = _dlpack_device(x)
        if device is not None and device[0] in (_DL_CPU, _DL_CUDA_HOST):
            try:
                x = np.from_dlpack(x)  # in place (a CPU tensor, a JAX CPU array)
            except Exception:
                x = np.asarray(x)
        else:
            x = np.asarray(x)
    if x.dtype.kind == "c":
        raise InvalidArgument(f"Complex data not supported: {name} fits real-valued data.")
    if x.dtype.kind in "VMm":
        # Times and structured records are not numbers to fit (a datetime64 would be fitted
        # as its count of ticks since 1970).
        raise InvalidArgument(f"{name}: element type {x.dtype} is not numeric; convert the data "
                              "to numbers explicitly")
    if x.dtype.kind not in "fiub":
        # Objects and strings that read as numbers are numbers, as scikit-learn's
        # GaussianMixture takes them; anything else raises NumPy's own TypeError / ValueError
        # ("could not convert string to float: 'a'"), with a frame's column named.
        try:
            x = x.astype(np.float64)
        except (TypeError, ValueError) as error:
            if frame is None:
                raise
            _raise_naming_the_column(frame, name, error)
    return x


def _raise_naming_the_column(frame, name, error):
    """A pandas or polars frame that does not convert to numbers: the first column that does
    not, named as a pyarrow Table's is (pandas' own message named the value alone, as
    scikit-learn's does: "could not convert string to float: 'Paris'")."""
    for column in frame.columns:
        series = frame[column]
        try:
            if _root_module(frame) == "pandas":
                series.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                np.asarray(series.to_numpy()).astype(np.float64)
        except (TypeError, ValueError) as column_error:
            raise InvalidArgument(
                f"{name}: column {column!r} ({series.dtype}) does not hold numbers "
                f"({column_error}); leave it out, or encode it as numbers first") from error
    raise error


def _device_array(x, dtype, name, min_samples):
    """A CUDA array in a form the library can use in place, converted on the device by its
    own library when its dtype or layout does not fit."""
    root = _root_module(x)
    if root == "torch":
        import torch

        x = x.detach()
        problem = _shape_problem(tuple(x.shape), name, min_samples)
        if problem:
            raise InvalidArgument(problem)
        if x.dtype.is_complex:
            raise InvalidArgument(f"Complex data not supported: {name} fits real-valued data.")
        names = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
        target = _target_dtype(names.get(x.dtype, np.dtype(np.int64)), dtype)
        torch_dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
        x = x.to(torch_dtype[target]).contiguous()
        # A sum first, as _check_finite_host: isfinite(x) alone made an N x D bool array on
        # the device, a quarter of float32 data's size.
        if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
            bad = torch.nonzero(~torch.isfinite(x))[0].tolist()
            _raise_not_finite(bad, float(x[bad[0], bad[1]]))
        return x
    if root == "cupy":
        import cupy

        problem = _shape_problem(tuple(x.shape), name, min_samples)
        if problem:
            raise InvalidArgument(problem)
        if x.dtype.kind == "c":
            raise InvalidArgument(f"Complex data not supported: {name} fits real-valued data.")
        with cupy.cuda.Device(x.device.id):
            x = cupy.ascontiguousarray(x, dtype=_target_dtype(np.dtype(x.dtype), dtype))
            if not bool(cupy.isfinite(x.sum())) and not bool(cupy.isfinite(x).all()):
                bad = cupy.argwhere(~cupy.isfinite(x))[0].get()
                _raise_not_finite(bad, float(x[bad[0], bad[1]].get()))
        return x
    if hasattr(x, "__array_namespace__") and hasattr(x, "dtype"):  # JAX and other array API
        xp = x.__array_namespace__()
        problem = _shape_problem(tuple(x.shape), name, min_samples)
        if problem:
            raise InvalidArgument(problem)
        current = str(x.dtype) if str(x.dtype) in ("float32", "float64") else "int64"
        target = _target_dtype(np.dtype(current), dtype)
        if str(x.dtype) != target.name:
            x = xp.astype(x, getattr(xp, target.name))
        if not bool(xp.isfinite(xp.sum(x))) and not bool(xp.all(xp.isfinite(x))):
            bad = np.argwhere(~np.isfinite(np.asarray(x)))[0]
            _raise_not_finite(bad, float(np.asarray(x)[tuple(bad)]))
        return x
    return x  # a bare __dlpack__ / __cuda_array_interface__ producer: used as it is


def _view_of_cuda_array_interface(x, name, min_samples):
    cai = x.__cuda_array_interface__
    shape = tuple(cai["shape"])
    problem = _shape_problem(shape, name, min_samples)
    if problem:
        raise InvalidArgument(problem)
    typestr = cai["typestr"]
    dtypes = {"<f4": "float32", "<f8": "float64"}
    if typestr not in dtypes:
        raise InvalidArgument(f"{name}: a device array of type {typestr} cannot be used in place; "
                              "pass float32 or float64 (or a CuPy / PyTorch array, which emix "
                              "converts on the device)")
    itemsize = 4 if typestr == "<f4" else 8
    strides = cai.get("strides")
    if strides is not None and tuple(strides) != (shape[1] * itemsize, itemsize):
        raise InvalidArgument(f"{name}: the device array is not C-contiguous")
    pointer = cai["data"][0]
    return _emix.device_view(pointer, shape[0], shape[1], dtypes[typestr], -1, x)


def as_data(x, dtype=None, name="emix", min_samples=1):
    """Data for the library: in place where possible, converted once otherwise. `min_samples`
    is what the message for no rows says is needed (a fit's 2, as scikit-learn's)."""
    if is_device_array(x):
        x = _device_array(x, dtype, name, min_samples)
        if hasattr(type(x), "__dlpack__"):
            try:
                view = _emix.view(x)
            except TypeError:
                view = None
            if view is not None:
                if dtype is not None and view.dtype != np.dtype(dtype).name:
                    raise InvalidArgument(f"{name}: the device array is {view.dtype}, but "
                                          f"dtype is {np.dtype(dtype).name}; convert it first")
                return Data(view, x, True)
        if hasattr(x, "__cuda_array_interface__"):
            return Data(_view_of_cuda_array_interface(x, name, min_samples), x, True)
        raise InvalidArgument(f"{name}: cannot read this device array (it offers neither a usable "
                              "__dlpack__ nor __cuda_array_interface__)")
    x = _host_array(x, dtype, name, min_samples)
    return Data(_emix.view(x), x, False)


def to_host_numpy(a):
    """A NumPy array from any array (device arrays are copied to the host)."""
    if isinstance(a, np.ndarray):
        return a
    root = _root_module(a)
    if root == "torch":
        return a.detach().cpu().numpy()
    if root == "cupy":
        return a.get()
    return np.asarray(a)


def like_input(result, data):
    """`result` (a NumPy array) as the input's kind: NumPy for host data; for device data an
    array of the input's library on the input's device."""
    if not data.on_device:
        return result
    x = data.source
    root = _root_module(x)
    if root == "torch":
        import torch

        return torch.from_dlpack(result).to(x.device)
    if root == "cupy":
        import cupy

        with cupy.cuda.Device(x.device.id):
            return cupy.asarray(result)
    if root in ("jax", "jaxlib"):
        import jax

        return jax.device_put(result, next(iter(x.devices())))
    if hasattr(x, "__array_namespace__"):
        return x.__array_namespace__().asarray(result, device=x.device)
    return result


_ROW_AT_START = re.compile(r"^(data|sample weights): row (\d+)")


def in_rows(error, first_row, rows, what):
    """The same library error for a piece of a larger source: the row it names (the library
    numbers rows within the piece it is given) as the row of the whole source, and the piece
    named (`what`: "chunk 3", "block 2") with the rows it holds, as the library's chunked fit
    names a chunk: "(in chunk 3 (rows 301..400))"."""
    message = _ROW_AT_START.sub(lambda m: f"{m.group(1)}: row {int(m.group(2)) + first_row}",
                                str(error))
    return type(error)(f"{message} (in {what} (rows {first_row + 1}..{first_row + rows}))")

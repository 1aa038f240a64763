"""emix's estimators on Dask arrays: the E-step per block on the workers, the EM driver here.

``emix.dask.GaussianMixture``, ``BernoulliMixture`` and ``BinomialMixture`` take the same
parameters as emix's estimators and accept a 2-D ``dask.array.Array`` (NumPy data go to the
in-memory estimator unchanged). ``fit`` runs the library's own EM driver (``core/em.cpp``, the
one every engine runs: convergence, re-seeding, the checks of its numbers) over a chunk source
whose chunks are the array's blocks of rows (_RemoteBlocks, the library's RemoteChunks). Each
pass over the data:

1. the pass's model goes to the workers as bytes; every block computes its sufficient
   statistics under it where it is (the library's ``chunk_pass``, the same arithmetic as a
   chunk read here) and returns them;
2. the library adds the blocks' statistics in block order, whatever worker ran what and
   whenever, runs the M-step, tests convergence, re-seeds, and so on, exactly as ``fit`` does.

The fitted model therefore equals ``fit`` of the same rows in memory, from the same initial
parameters, up to the order of the sums (about 1e-15 relative per iteration), and a component
re-seeded from the same start lands on the same row.

Where the cluster holds the array as the fit reads it (``X = X.persist()``: float32 or float64
in the estimator's ``dtype``, all columns in one block), a pass skips the task graph: one
Dask actor per worker holds the blocks that worker has (balanced by rows over the workers'
threads; a block moves once where Dask left a worker more than its share), and the client calls
each actor once per pass; the blocks' statistics are the task graph's, bitwise, and so is the
fit. A task graph costs 30-37 ms an iteration in scheduler round trips on a 2-core machine, the
calls 5-10 ms. The actors keep their blocks alive until the fit ends, and the scheduler will not
retire a worker that holds one meanwhile; if a worker is lost, the fit goes on through task
graphs, which recompute what it held (``report_.engine`` says from which iteration). An array
the fit must convert or rechunk first (integers, float64 fitted with ``dtype="float32"``,
columns in several blocks) and a Dask DataFrame also run task graphs: persist
``X.rechunk({1: -1}).astype(np.float64)``, say, to fit them through the actors. Where every
block's statistics together would exceed ``merge_task_bytes`` (256 MiB; full covariances with
large K D^2), the client would hold them all at once: the workers then add them in
:func:`emix.merge_in_order`'s tree (tasks of up to 16 blocks) and send one total, through task
graphs; the fit is as deterministic, but its sums are in that tree's order rather than block
order.

Initialisation: from the estimator's ``*_init`` parameters when all are given (then the fit is
that of the in-memory estimator with the same parameters). Otherwise the estimator's own
initialisation (``init_params``, ``n_init``, ``random_state``) runs on a deterministic sample
of at most ``init_sample_rows`` rows (evenly spaced among the rows of positive weight, computed
once to the client), and the given parameters replace the drawn ones. With ``n_init`` > 1 the
restarts' starting models compete by their log-likelihood on that sample, and EM then runs once
over the whole array from the best: ``report_.best_init`` is 0, where the in-memory estimator
runs every restart's EM over all rows and keeps the best result. The report's warnings (the
initialisation's notes, re-seeded rows, a model the data cannot identify) and the FitWarnings
emitted are the in-memory fit's, but for ``dtype='float32'`` on float64 blocks: they are
rounded where they are read, and not judged for what the rounding loses (a NumPy array, a
pandas or polars frame and a list are).

:func:`emix.select` of a Dask array runs the same way: each pass of the selection is one task
per block that returns the block's statistics under every candidate still running (the library
adds them in block order, so the selection is bitwise that of the same blocks read as chunks),
and the initialisation's sampled rows are fetched by tasks; only block 0 is computed here.

``predict``, ``predict_proba`` and ``score_samples`` of a Dask array return Dask arrays (one
block per block of rows) and ``score`` a 0-d Dask array; nothing is computed until asked. Of a
Dask DataFrame they are as lazy, their blocks of unknown length (as DataFrame.to_dask_array
gives them; ``compute_chunk_sizes()`` finds them).
"""

import asyncio
import collections
import copyreg
import inspect
import math
import threading
import time

import dask
import dask.array as da
import numpy as np

from . import _base, _discrete, _emix, _gaussian
from ._emix import InvalidArgument
from ._arrays import _ROW_AT_START, _target_dtype, in_rows
from ._chunks import _Adapter, _as_chunk_array
from ._engine import engine_options
from ._sklearn import check_feature_names, fitted_feature_names
from ._statistics import Statistics

__all__ = ["GaussianMixture", "BernoulliMixture", "BinomialMixture", "accumulate", "tree_merge"]

try:  # dask.distributed, where installed, registers tblib's pickling for every exception type
    import distributed  # noqa: F401
except ImportError:  # pragma: no cover
    pass


def _reduce_error(error):
    return type(error), error.args


# tblib's reducer re-creates an exception with BaseType.__new__, which Python refuses for
# emix.OutOfMemory (an emix.Error and a MemoryError): errors raised on workers would then fail
# to reach the client. emix's errors carry only their message; pickle them as (type, args).
for _name in ("Error", "InvalidArgument", "IoError", "NotAvailable", "OutOfMemory",
              "NumericalError", "CudaError", "MpiError"):
    copyreg.pickle(getattr(_emix, _name), _reduce_error)


def _is_dask_array(x):
    return isinstance(x, da.Array)


def _is_dask_frame(x):
    return type(x).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(
        x, "to_dask_array")


def _refuse_unknown_chunk_sizes(w):
    """A Dask array of weights whose blocks' lengths are unknown cannot be aligned with X's."""
    if w.ndim == 1 and any(math.isnan(c) for c in w.chunks[0]):
        raise InvalidArgument("sample_weight: a Dask array with unknown chunk sizes "
                              "(call sample_weight.compute_chunk_sizes() first)")


def _spread_weight(value, X):
    """A scalar weight for every row of X, as the in-memory fit takes it: made where X's
    blocks are, not sent there."""
    return da.full(X.shape[0], float(value), chunks=(X.chunks[0],))


def _as_dask_array(x, lengths=True):
    """A Dask DataFrame as a Dask array, with known block lengths (its partitions' rows, which
    computes the frame once) unless `lengths` is False (a lazy evaluation, which needs none),
    so that it runs blockwise like an array, not computed into memory; anything else as it is.
    Nullable columns (Int64, Float64, boolean) become float64 with NaN for pd.NA, as the
    in-memory estimators read a pandas frame (as objects they were refused as not numeric);
    a column of anything else that is not a number is named."""
    if not _is_dask_frame(x):
        return x
    import pandas as pd

    meta = x._meta
    frame = isinstance(meta, pd.DataFrame)
    columns = list(meta.dtypes.items()) if frame else [(meta.name, meta.dtype)]
    for name, dtype in columns:
        if pd.api.types.is_complex_dtype(dtype):
            raise InvalidArgument(f"column {name!r}: complex data are not supported")
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise InvalidArgument(f"column {name!r}: element type {dtype} is not numeric")
    # Columns of one NumPy type stay as they are; nullable ones, or a mix (float beside bool,
    # which pandas interleaves as objects), become float64.
    numpy_kinds = {dtype for _, dtype in columns if isinstance(dtype, np.dtype)}
    if len(numpy_kinds) < len({dtype for _, dtype in columns}) or len(numpy_kinds) > 1:
        x = x.astype({name: "float64" for name, _ in columns}) if frame else x.astype("float64")
    return x.to_dask_array(lengths=True if lengths else None)


def _named_like(x):
    """What the feature-name checks read: a Dask DataFrame's empty pandas frame of the same
    columns (scikit-learn reads names from pandas, not from Dask)."""
    return x._meta if _is_dask_frame(x) else x


def accumulate(model, X, sample_weight=None, device=None, centres=None):
    """emix.accumulate of a Dask array: each block's statistics on the workers (about `centres`,
    K x D values, where given), merged in merge_in_order's tree (emix.accumulate dispatches
    here)."""
    from ._statistics import native_model

    m = native_model(model)
    mixture = _DaskMixture.__new__(_DaskMixture)
    mixture.dtype = getattr(model, "dtype", None)
    mixture.device = device or getattr(model, "device", "auto")
    X = mixture._rows(_as_dask_array(X))
    if X.shape[1] != m.n_features:
        raise InvalidArgument(f"X has {X.shape[1]} features, but the model has {m.n_features}")
    weights = mixture._weights(sample_weight, X)
    weights = None if weights is None else weights.map_blocks(_checked_weights, dtype=np.float64)
    first_rows = _first_rows(X)
    return mixture._statistics(m, list(X.to_delayed().ravel()),
                               None if weights is None else list(weights.to_delayed().ravel()),
                               first_rows, list(X.chunks[0]), centres, weights)


def _model_state(model):
    """A picklable description of a library Model (shipped to the workers)."""
    return (model.family, model.covariance, model.n_features, model.trials,
            np.ascontiguousarray(model.weights), np.ascontiguousarray(model.means).ravel(),
            np.ascontiguousarray(model.covariances).ravel(),
            np.ascontiguousarray(model.probabilities).ravel())


def _model_of(state):
    family, covariance, d, trials, w, means, covariances, probabilities = state
    return _emix.Model(family, covariance, d, trials, w, means if means.size else None,
                       covariances if covariances.size else None,
                       probabilities if probabilities.size else None)


def _in_block(error, index, first_row, rows):
    """The same library error, naming the row of the whole array (the library numbers rows
    within the block it is given), the block (its index along the rows, from 0) and its
    rows."""
    return in_rows(error, first_row, rows, f"block {index}")


def _sampled_row(error, rows):
    """A library error about row i of the initialisation's sample, naming row rows[i] of the
    array instead."""
    def renumber(match):
        i = int(match.group(2)) - 1
        return f"{match.group(1)}: row {int(rows[i]) + 1}" if 0 <= i < len(rows) else match[0]

    return type(error)(_ROW_AT_START.sub(renumber, str(error)))


def _first_rows(X):
    """Each row block's first row in the whole array."""
    return [int(r) for r in np.cumsum((0,) + X.chunks[0][:-1])]


def _positive_count(block, first_row):
    """The block's rows of positive weight, its weights checked as the fit checks them (a
    negative one is named, not counted as a zero): the error as a value, so that the client
    raises the lowest block's whichever block failed first."""
    try:
        w = _refuse_bad_weights(np.asarray(block, dtype=np.float64), first_row)
    except InvalidArgument as error:
        return error
    return int(np.count_nonzero(w > 0))


def _positive_rows(block, ranks, first_row):
    """The rows (of the whole array) of the block's rows of positive weight at `ranks` among
    them."""
    return np.flatnonzero(np.asarray(block) > 0)[ranks] + first_row


def _sample_rows(weights, n, size):
    """The initialisation's sample: at most `size` rows, evenly spaced, among the rows of
    positive weight where there are weights (evenly spaced among all rows, weights of 0 every
    other row left one row of weight in the sample, and the fit failed with "only 1 rows have
    positive weight"). The same rows as unweighted where every weight is positive. Two small
    passes over the weights: their count per block, then the chosen rows of each block."""
    if weights is None:
        return np.unique(np.linspace(0, n - 1, min(n, size)).astype(np.int64))
    blocks = weights.to_delayed().ravel()
    count = dask.delayed(_positive_count, pure=True)
    counts = dask.compute(*[count(b, first) for b, first in zip(blocks, _first_rows(weights))])
    for counted in counts:
        if isinstance(counted, Exception):
            raise counted
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        raise InvalidArgument("sample_weight: the sample weights sum to 0")
    ranks = np.unique(np.linspace(0, total - 1, min(total, size)).astype(np.int64))
    ends = np.cumsum(counts)
    starts = ends - counts
    firsts = _first_rows(weights)
    task = dask.delayed(_positive_rows, pure=True)
    parts = [task(b, ranks[(ranks >= a) & (ranks < e)] - a, first)
             for b, a, e, first in zip(blocks, starts, ends, firsts) if e > a]
    return np.concatenate(dask.compute(*parts)).astype(np.int64)


def _unlike_declared(index, first_row, rows, cols, shape):
    """The error about a block whose computed shape is not the one the array declares."""
    return InvalidArgument(
        f"block {index} (rows {first_row + 1}..{first_row + rows}): {shape[0]} x "
        f"{shape[1] if len(shape) > 1 else 1} values, but the Dask array declares {rows} x "
        f"{cols} for it (its chunks or meta do not match what its tasks compute)")


def _block_statistics(block, weights, state, device, first_row, index, rows, centres=None):
    """The block's statistics as bytes, or the library's error about it (naming the row of the
    whole array) as a value: the merge carries the first block's error up the tree (see
    _merge_bytes), so that the error raised is the one in the lowest block whoever computed
    what, as the in-memory fit names the first bad row. `rows`: the block's rows as the array
    declares them (a block that computes fewer was fitted silently, and later errors named rows
    off by the difference)."""
    x = np.ascontiguousarray(block)
    model = _model_of(state)
    declared = (rows, model.n_features)
    if x.shape != declared:
        return _unlike_declared(index, first_row, rows, model.n_features, x.shape)
    if x.shape[0] == 0:  # filtering and concatenating leave empty blocks
        empty = _emix.Statistics(model)
        if centres is not None:
            empty = empty.recentred(np.asarray(centres, dtype=np.float64))
        return empty.serialize()
    w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    try:
        stats = _emix.accumulate_piece(model, centres, _emix.view(x), engine_options(device), w)
    except _emix.Error as error:
        return _in_block(error, index, first_row, x.shape[0])
    return stats.serialize()


def _block_values(block, weights, dtype, index, first_row, rows, cols):
    """A block as fit reads it (`dtype`), checked against the shape the array declares for it,
    and its weights."""
    try:
        x = _as_chunk_array(block, dtype, index)
    except InvalidArgument as error:  # "chunk i: ..." from the chunk reader
        raise InvalidArgument(str(error).replace(
            f"chunk {index}:", f"block {index} (rows {first_row + 1}..{first_row + rows}):",
            1)) from None
    if x.shape != (rows, cols):
        raise _unlike_declared(index, first_row, rows, cols, x.shape)
    w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64).ravel()
    if w is not None and w.shape[0] != rows:
        raise InvalidArgument(f"block {index} (rows {first_row + 1}..{first_row + rows}): "
                              f"{w.shape[0]} sample weights for {rows} rows")
    return x, w


def _block_pass(block, weights, pass_bytes, shape, device, index):
    """A block's statistics under every model of a pass (_RemoteBlocks) and the engine's
    name, or the error about its values (naming the row of the whole array) as a value."""
    dtype, first_row, rows, cols = shape
    try:
        x, w = _block_values(block, weights, dtype, index, first_row, rows, cols)
        if rows == 0:
            return None
        return _emix.chunk_pass(pass_bytes, _emix.view(x), engine_options(device), w)
    except _emix.InvalidArgument as error:
        return (error if str(error).startswith(f"block {index} ")
                else _in_block(error, index, first_row, rows))
    except _emix.Error as error:  # not about the block's values (no GPU answers, say)
        return error


def _block_rows(block, weights, local, want_rows, shape, index):
    """Rows `local` of a block (when want_rows), as doubles of the type fit reads it in, and
    their weights."""
    dtype, first_row, rows, cols = shape
    try:
        x, w = _block_values(block, weights, dtype, index, first_row, rows, cols)
    except _emix.Error as error:
        return error
    return (x[local].astype(np.float64) if want_rows else None,
            None if w is None else w[local])


def _block_weight_sum(weights, first_row, index):
    """The weights' sum, added in row order from 0 as the library sums a chunk's weights
    (np.cumsum adds in order; np.sum does not), and the largest weight; or the error naming a
    weight the fit refuses (and its block) as a value: a negative or NaN one summed into "the
    weights sum to 0"."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    try:
        _refuse_bad_weights(w, first_row)
    except InvalidArgument as error:
        return InvalidArgument(f"{error} (in block {index} (rows {first_row + 1}.."
                               f"{first_row + w.size}))")
    return (float(np.cumsum(w)[-1]), float(w.max())) if w.size else (0.0, 0.0)


def _first_error(results):
    """The results, or the first (lowest block's) error among them raised."""
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


def _add_answers(a, b):
    """Two blocks' answers to a pass (_block_pass) added, for tree_merge: the left one's error
    first, as it comes first; a block without rows answers nothing."""
    if isinstance(a, Exception) or b is None:
        return a
    if isinstance(b, Exception) or a is None:
        return b
    return a[0] + b[0], a[1]


class _RemoteBlocks(_Adapter):
    """The library's chunk source over a Dask array for fit and emix.select: a chunk per block
    of rows, whose passes run where the blocks are (the library's RemoteChunks, through the C++
    PyChunkSource), so that the library's EM driver (core/em.cpp) fits Dask data as it fits
    any other.

    Each pass is one task per block (on the cluster's workers when a dask.distributed Client is
    active, on Dask's local scheduler otherwise) returning the block's statistics under every
    model of the pass, or, after start_resident(), one call per worker of an actor that holds
    that worker's blocks (_ResidentPass). Either way the library adds the blocks' statistics in
    block order: the two are bitwise the same, and bitwise the same chunks read here by the
    same engine (emix.chunked with the blocks' rows). Statistics too large for the client to
    hold every block's (`fan_in` set: full covariances with large K D^2) are added on the
    workers instead, in merge_in_order's tree, and the client receives one total. The
    initialisation's sample and re-seeding rows are fetched by tasks. Only block 0 is computed
    here, for the data's shape and type. Every block is read as the type the array declares
    (float32 or float64 kept, else float64, or `dtype`)."""

    chunk_noun = "block"

    def __init__(self, X, sample_weight, dtype, device):
        super().__init__()
        if X.ndim != 2 or any(math.isnan(c) for c in X.chunks[0]):
            raise InvalidArgument("select: a Dask array must be 2-D with known chunk sizes "
                                  "(call X.compute_chunk_sizes() first)")
        if X.shape[0] == 0:
            raise InvalidArgument("the chunk source holds no chunks: there are no rows to fit")
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        self.x, self.device = X, device
        self.dtype = _target_dtype(X.dtype, dtype)
        self.first_rows = _first_rows(X)
        self.blocks = list(X.to_delayed().ravel())
        self.weights, self.weight_blocks = None, [None] * len(self.blocks)
        if sample_weight is not None:
            self.weight_blocks = self._weight_blocks(sample_weight)
        self.sums = None
        self.largest_weight = None  # with the sums (weight_sums)
        self.worker_engine = None
        self.fan_in = None  # blocks per merge task, where the workers add the blocks' answers
        self.resident = None
        # The EM iteration of the next pass (a fit's hook counts them), and the one whose pass
        # found a worker lost, for the engine's name.
        self.iteration, self.lost_at = 0, None
        self.where = self._where()

    def _weight_blocks(self, sample_weight):
        """The weights as delayed blocks aligned with X's: a Dask array or Series as it is
        (rechunked), anything else sent to the cluster once (persisted), not with every pass."""
        X = self.x
        w = _as_dask_array(sample_weight) if _is_dask_frame(sample_weight) else sample_weight
        if _is_dask_array(w):
            _refuse_unknown_chunk_sizes(w)
        else:
            w = np.asarray(w)
            if w.ndim == 0:
                w = _spread_weight(w, X)
        if w.ndim != 1 or w.shape[0] != X.shape[0]:
            raise InvalidArgument(f"sample_weight has shape {tuple(w.shape)}, but the data "
                                  f"have {X.shape[0]} rows")
        if _is_dask_array(w):
            w = w.rechunk((X.chunks[0],))
        else:
            w = da.from_array(w.astype(np.float64), chunks=(X.chunks[0],)).persist()
        self.weights = w  # a persisted array's blocks live as long as it does
        return list(w.to_delayed().ravel())

    def _shape(self, i):
        return (self.dtype, self.first_rows[i], int(self.x.chunks[0][i]), int(self.x.shape[1]))

    def n_chunks(self):
        return len(self.blocks)

    def _where(self):
        """The blocks ("12 Dask blocks") and where their passes run ("2 Dask workers"), asked
        once: the library names its engine for every candidate."""
        def count(n, noun):
            return f"{n} {noun}" + ("" if n == 1 else "s")

        client = _distributed_client()
        if client is not None:
            where = count(len(client.nthreads()), "Dask worker")
        else:
            kind = getattr(dask.base.get_scheduler(), "__module__", "").rsplit(".", 1)[-1]
            where = f"Dask's {kind or 'local'} scheduler"
        return count(len(self.blocks), "Dask block"), where

    def engine_name(self):
        blocks, where = self.where
        if self.resident is not None:
            name = f"{blocks} resident on {where}"
        elif self.lost_at is not None:
            name = (f"{blocks} on {where} (resident until iteration {self.lost_at}, when a "
                    "worker was lost)")
        else:
            name = f"{blocks} on {where}"
        return name if self.worker_engine is None else f"{self.worker_engine}, {name}"

    def known_rows(self, i):
        return int(self.x.chunks[0][i])

    def peek_features(self):
        return int(self.x.shape[1])

    def chunk(self, i):
        x, w = dask.compute(self.blocks[i], self.weight_blocks[i])
        dtype, first_row, rows, cols = self._shape(i)
        _block_values(x, w, dtype, i, first_row, rows, cols)  # as the workers check theirs
        return self._result(x, w, i)

    def start_resident(self):
        """Passes through one actor per worker from now on, where a dask.distributed cluster
        holds every block of the array (persisted); else, or where the actors cannot start,
        task graphs still. Call close() after the passes."""
        self.resident = _ResidentPass.start(self.x, self.weights, self.device,
                                            [self._shape(i) for i in range(len(self.blocks))])

    def close(self):
        """Releases the actors (and the weights they persisted)."""
        if self.resident is not None:
            self.resident.close()
            self.resident = None

    def chunk_statistics(self, pass_bytes):
        if self.resident is not None:
            try:
                return self._answers(self.resident.statistics(pass_bytes))
            except _emix.Error:
                raise
            except Exception:  # a worker lost ("Worker holding Actor was lost"), say
                # The task graphs recompute the blocks it held.
                self.close()
                self.lost_at = self.iteration
        shared = dask.delayed(pass_bytes)  # one key: sent once to each worker, not per block
        task = dask.delayed(_block_pass, pure=False)
        parts = [task(b, w, shared, self._shape(i), self.device, i)
                 for i, (b, w) in enumerate(zip(self.blocks, self.weight_blocks))]
        if self.fan_in is None:
            return self._answers(dask.compute(*parts))
        (total,) = dask.compute(tree_merge(parts, merge=_add_answers, fan_in=self.fan_in))
        # In the first block with rows: the library adds from there (remote_chunks.hpp).
        first = next(i for i, rows in enumerate(self.x.chunks[0]) if rows > 0)
        answers = [None] * len(parts)
        answers[first] = total
        return self._answers(answers)

    def _answers(self, parts):
        """The blocks' statistics as the library takes them, the workers' engine noted, or the
        first block's error raised."""
        parts = _first_error(parts)
        named = next((p for p in parts if p is not None), None)
        if named is not None:
            self.worker_engine = named[1]
        return [None if p is None else p[0] for p in parts]

    def gather_rows(self, idx, want_rows=True):
        order = np.argsort(idx, kind="stable")
        which = np.searchsorted(self.first_rows, idx[order], side="right") - 1
        task, wanted = dask.delayed(_block_rows, pure=False), []
        for i in np.unique(which):
            local = idx[order[which == i]] - self.first_rows[i]
            wanted.append(task(self.blocks[i], self.weight_blocks[i], local, want_rows,
                               self._shape(int(i)), int(i)))
        parts = _first_error(dask.compute(*wanted))
        rows = None
        if want_rows:
            rows = np.empty((len(idx), self.peek_features()))
            rows[order] = np.concatenate([r for r, _ in parts])
        if self.weight_blocks[0] is None:
            return rows, None
        weights = np.empty(len(idx))
        weights[order] = np.concatenate([w for _, w in parts])
        return rows, weights

    def weight_sums(self):
        if self.sums is None:
            task = dask.delayed(_block_weight_sum, pure=False)
            answers = _first_error(dask.compute(*[
                task(w, first, i)
                for i, (w, first) in enumerate(zip(self.weight_blocks, self.first_rows))]))
            self.sums = [total for total, _ in answers]
            self.largest_weight = max(largest for _, largest in answers)
        return self.sums

    @property
    def n_samples(self):
        return int(self.x.shape[0])  # only block 0 is read here

    @property
    def weight_total(self):
        if self.weight_blocks[0] is None:
            return float(self.x.shape[0])
        total = 0.0
        for s in self.weight_sums():  # in order, as the library adds them (sum() compensates)
            total += s
        return total


def _raised(total):
    """A merged total's statistics, or its first block's error raised."""
    if isinstance(total, Exception):
        raise total
    return Statistics.from_bytes(total)


class _BlockActor:
    """The blocks of a persisted array that one worker holds, as a Dask actor on that worker:
    the client calls it once per pass for their statistics, without a task graph and the
    scheduler's round trips (30-37 ms an iteration on 2 cores, against 5-10 ms for the calls).
    Its blocks run on the worker's number of threads, as its tasks would."""

    def __init__(self, device, indices, shapes, weighted, *arrays):
        from concurrent.futures import ThreadPoolExecutor

        import distributed

        n = len(indices)
        self.device, self.indices, self.shapes = device, indices, shapes
        self.blocks = arrays[:n]
        self.weights = arrays[n:] if weighted else (None,) * n
        threads = max(1, min(n, distributed.get_worker().state.nthreads))
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def statistics(self, pass_bytes):
        """Each block's answer to the pass (_block_pass), in the order of `indices`."""
        def one(j):
            return _block_pass(self.blocks[j], self.weights[j], pass_bytes, self.shapes[j],
                               self.device, self.indices[j])

        if self.pool is None:
            return [one(j) for j in range(len(self.blocks))]
        return list(self.pool.map(one, range(len(self.blocks))))

    def __del__(self):  # the fit released the actor
        if getattr(self, "pool", None) is not None:
            self.pool.shutdown(wait=False)


def _distributed_client():
    """The dask.distributed Client that dask.compute would use now, or None (none running, or
    another scheduler chosen through dask.config)."""
    try:
        import distributed

        client = distributed.default_client()
    except (ImportError, ValueError):
        return None
    return client if getattr(dask.base.get_scheduler(), "__self__", None) is client else None


def _balanced(who_has, nthreads, keys, rows):
    """Block indices by worker: each block on a worker that holds it while that worker's rows
    are below its share (its threads' share of all rows), the rest on the workers that would be
    least above their share with them (a holder on a tie), which fetch them once. Dask may
    place 5 of 8 persisted blocks on one of two workers, and each pass would then wait for
    the 5."""
    total_threads = sum(nthreads.values())
    share = {worker: sum(rows) * n / total_threads for worker, n in nthreads.items()}
    load = dict.fromkeys(nthreads, 0)
    assigned, left = {}, []
    for index, key in enumerate(keys):
        holders = [w for w in who_has.get(key, ()) if w in load]
        below = [w for w in holders if load[w] < share[w]]  # may end one block above it
        if below:
            worker = min(below, key=lambda w: load[w] / share[w])
            load[worker] += rows[index]
            assigned[index] = worker
        else:
            left.append(index)
    for index in left:
        holders = who_has.get(keys[index], ())
        worker = min(load, key=lambda w: ((load[w] + rows[index]) / share[w], w not in holders))
        load[worker] += rows[index]
        assigned[index] = worker
    by_worker = {}
    for index in range(len(keys)):
        by_worker.setdefault(assigned[index], []).append(index)
    return by_worker


class _ResidentPass:
    """The passes over an array persisted on a dask.distributed cluster: one _BlockActor per
    worker over the blocks it holds. Each block's answer comes back to the client, as a task
    graph's would (_RemoteBlocks)."""

    @classmethod
    def start(cls, X, weights, device, shapes):
        """The passes, or None where task graphs must run them: no distributed Client, X not
        all in the cluster's memory, or actors that could not start. `shapes`: each block's
        (dtype, first row, rows, columns), as _block_pass takes them. Weights are persisted
        here (N numbers, read every pass)."""
        client = _distributed_client()
        if client is None:
            return None
        import distributed

        keys = [key for (key,) in X.__dask_keys__()]
        held = {future.key: future for future in distributed.futures_of(X)}
        if not all(key in held for key in keys):
            return None
        self = cls()
        self.client, self.calls, self.actors, self.weights = client, [], [], None
        try:
            nthreads = client.nthreads()
            if not nthreads:
                return None
            weight_futures = []
            if weights is not None:
                self.weights = weights = client.persist(weights)  # held until close
                weight_held = {f.key: f for f in distributed.futures_of(weights)}
                weight_futures = [weight_held[key] for key in weights.__dask_keys__()]
            futures = [held[key] for key in keys]
            by_worker = _balanced(client.who_has(futures), nthreads, keys, X.chunks[0])
            self.indices, self.n_blocks = list(by_worker.values()), len(keys)
            for worker, indices in by_worker.items():
                arrays = [futures[i] for i in indices]
                if weights is not None:
                    arrays += [weight_futures[i] for i in indices]
                self.calls.append(client.submit(
                    _BlockActor, device, indices, [shapes[i] for i in indices],
                    weights is not None, *arrays, workers=[worker], allow_other_workers=True,
                    actor=True, pure=False))
            self.actors = client.gather(self.calls)
        except Exception:  # a worker lost already, futures of another client, ...
            self.close()
            return None
        except BaseException:  # an interrupt: no actor outlives the fit
            self.close()
            raise
        return self

    def statistics(self, pass_bytes):
        """Each block's answer to the pass (_block_pass), in block order."""
        pending = [actor.statistics(pass_bytes) for actor in self.actors]
        parts, failure = [None] * self.n_blocks, None
        for indices, created, call in zip(self.indices, self.calls, pending):
            try:  # every call answers before the first failure is raised
                for index, part in zip(indices, self._answer(created, call)):
                    parts[index] = part
            except Exception as error:
                failure = failure or error
        if failure is not None:
            raise failure
        return parts

    @staticmethod
    def _answer(created, call):
        """What `call` returns, or an error as soon as the scheduler knows the worker of the
        actor that the future `created` made lost: a call relayed to a dead worker would wait
        out the scheduler's connection attempts (distributed.comm.timeouts.connect, 30 s)."""
        while True:
            try:
                return call.result(timeout=0.1)
            except (TimeoutError, asyncio.TimeoutError):
                if created.status != "finished":
                    raise RuntimeError(f"the worker holding {created.key} was lost") from None

    def close(self):
        # Cancelled, not just released: each call through an actor leaves reference cycles
        # (distributed's closures) that would keep it alive until Python's next collection.
        try:
            if self.calls:
                self.client.cancel(self.calls)
        except Exception:  # the cluster failing: what failed is reported, not this
            pass
        self.actors, self.calls, self.weights = [], [], None


def _merge_bytes(a, b):
    if isinstance(a, Exception) or isinstance(b, Exception):  # the left one, as it comes first
        return a if isinstance(a, Exception) else b
    s = _emix.Statistics.deserialize(a)
    s.merge(_emix.Statistics.deserialize(b))
    return s.serialize()


def _merge_group(merge, *parts):
    """parts[0] + parts[1] + ... in merge_in_order's tree: one task's share of tree_merge.

    Adds each part to a stack, merging the two topmost while they cover equally many parts, then
    merges what is left from the top down: the same pairs as merging level by level, with at most
    log2(len(parts)) + 1 sums alive at once besides the parts themselves."""
    stack = []  # (number of parts covered, sum)
    for part in parts:
        covered, value = 1, part
        while stack and stack[-1][0] == covered:
            below = stack.pop()
            covered, value = 2 * covered, merge(below[1], value)
        stack.append((covered, value))
    value = stack.pop()[1]
    while stack:
        value = merge(stack.pop()[1], value)
    return value


def tree_merge(parts, merge=_merge_bytes, fan_in=16):
    """Reduce `parts` (delayed values or plain ones) in merge_in_order's fixed tree: pairs
    (0, 1), (2, 3), ..., an odd last part carried up, then pairs of those sums.

    Each task reduces up to `fan_in` (a power of two) consecutive parts, aligned on multiples of
    `fan_in`: a whole subtree of that binary tree, so the total is bitwise merge_in_order's, in
    log_fan_in(n) rounds of tasks instead of log2(n) (each round costs the scheduler's latency).
    A task holds its `fan_in` inputs at once: large statistics call for a small `fan_in`.
    """
    parts = list(parts)
    if not parts:
        raise InvalidArgument("tree_merge: nothing to merge")
    if fan_in < 2 or fan_in & (fan_in - 1):
        raise InvalidArgument(f"tree_merge: fan_in must be a power of two >= 2, got {fan_in}")
    task = dask.delayed(_merge_group, pure=False)
    while len(parts) > 1:
        parts = [task(merge, *parts[i:i + fan_in]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), fan_in)]
    return parts[0]


# Each process's evaluators of the last few evaluations' models, by the token the client gave
# the model (_Evaluation): a block's evaluation factors the model once per process, not once per
# block (0.13 s for 16 full covariances of 512 features). A worker keeps up to
# _EVALUATORS_KEPT of them for its life: about twice their covariances' memory each.
_EVALUATORS = collections.OrderedDict()
_EVALUATORS_LOCK = threading.Lock()
_EVALUATORS_KEPT = 4


class _Evaluation:
    """A model to evaluate blocks under, as shipped to the workers: its state (_model_state), the
    device, and a token of both (their content's hash: the same model's evaluations share their
    evaluators, and their identical tasks dedupe)."""

    def __init__(self, state, device):
        self.state = state
        self.device = device
        self.token = dask.base.tokenize(state, device)

    def __dask_tokenize__(self):
        return self.token


def _evaluator_of(evaluation):
    # Made under the lock: a worker's threads that start an evaluation's blocks together wait
    # for one evaluator rather than each factoring the model.
    with _EVALUATORS_LOCK:
        evaluator = _EVALUATORS.get(evaluation.token)
        if evaluator is None:
            evaluator = _emix.Evaluator(_model_of(evaluation.state),
                                        engine_options(evaluation.device).n_threads)
            _EVALUATORS[evaluation.token] = evaluator
            while len(_EVALUATORS) > _EVALUATORS_KEPT:
                _EVALUATORS.popitem(last=False)
        _EVALUATORS.move_to_end(evaluation.token)
        return evaluator


def _block_apply(block, evaluation, what, n_components, block_info=None):
    x = np.ascontiguousarray(block)
    if block_info:
        # A block that computes other rows than the array declares (a delayed block's function
        # returned fewer) gave results of the wrong shape, and BIC a count not its rows'; fit
        # refuses it (_block_values).
        (first_row, end), (first_col, end_col) = block_info[0]["array-location"]
        rows, cols = end - first_row, end_col - first_col
        if rows == rows and x.shape != (rows, cols):  # known lengths only (NaN otherwise)
            raise _unlike_declared(block_info[0]["chunk-location"][0], first_row, int(rows),
                                   cols, x.shape)
    if x.shape[0] == 0:
        dtype = np.int64 if what == "predict" else np.float64
        return np.empty((0, n_components) if what == "predict_proba" else (0,), dtype=dtype)
    try:
        return getattr(_evaluator_of(evaluation), what)(_emix.view(x),
                                                         engine_options(evaluation.device))
    except _emix.Error as error:
        first_row = block_info[0]["array-location"][0][0] if block_info else 0
        index = block_info[0]["chunk-location"][0] if block_info else 0
        if first_row is None or first_row != first_row:  # unknown chunk sizes: no global row
            raise type(error)(f"{error} (in block {index}, whose rows are counted within it: "
                              "the array's chunk sizes are unknown)") from None
        raise _in_block(error, index, first_row, x.shape[0]) from None


def _refuse_bad_weights(w, first_row):
    """`w`, or an InvalidArgument naming its first weight (by its row of the whole array, the
    block's first being `first_row`) that is negative or not finite."""
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
    if bad.size:
        raise InvalidArgument(f"sample weights: row {first_row + bad[0] + 1} is "
                              f"{w[bad[0]]}, but a sample weight must be a finite number >= 0")
    return w


def _checked_weights(w, block_info=None):
    """A block of sample weights, refused (naming the row of the whole array) when one is
    negative or not finite, as the in-memory score refuses it."""
    return _refuse_bad_weights(w, block_info[0]["array-location"][0][0] if block_info else 0)


def _counted_rows(log_prob):
    """The rows of a blockwise evaluation, counted as it is computed: a filtered array's are
    known only then."""
    return log_prob.map_blocks(lambda b: np.array([b.shape[0]]), chunks=(1,),
                               dtype=np.int64).sum()


def _weighted_mean(total, normal_total, subnormal_total):
    """sum_n w_n log p(x_n) per unit of weight, the weights' totals judged as the library
    judges all the rows' weights (those below DBL_MIN count as 0; sums that overflow)."""
    _emix.check_weight_totals(float(normal_total), float(subnormal_total))
    return total / (normal_total + subnormal_total)


def _no_rows(name):
    """What a score, BIC or AIC of no rows raises, in the in-memory estimator's words (a mean
    over nothing: NaN, -inf and a number were returned)."""
    return InvalidArgument(f"Found array with 0 sample(s) while a minimum of 1 is required by "
                           f"{name}.")


def _mean_of_rows(total, rows, name):
    if rows == 0:
        raise _no_rows(name)
    return total / rows


_DEFAULT_INIT_SAMPLE_ROWS = 100_000


class _DaskMixture:
    """fit / predict / score over Dask arrays; NumPy data go to the in-memory estimator."""

    def _family_checks(self):
        return super()._family_checks() + [
            (_base._is_int(self.init_sample_rows) and self.init_sample_rows >= 1,
             "init_sample_rows", "an int >= 1")]

    # The statistics one merge task may take in at once (see _fan_in), and the client of every
    # block's in a pass of fit: beyond, the workers add them (_RemoteBlocks.fan_in).
    merge_task_bytes = 256 * 2**20
    # Whether fit passes over an array the cluster holds (persisted) through one actor per
    # worker (_ResidentPass) rather than a task graph per iteration; False is for comparisons.
    resident_blocks = True

    def _rows(self, X, blockwise=False):
        """X checked and converted for the library; unknown chunk sizes (after boolean
        indexing) only `blockwise`, for results computed block by block."""
        if X.ndim != 2:
            raise InvalidArgument(f"Expected a 2-D dask array, got {X.ndim} dimensions")
        if not blockwise and any(np.isnan(c) for c in X.chunks[0]):
            raise InvalidArgument("X has unknown chunk sizes (after boolean indexing, say): call "
                                  "X.compute_chunk_sizes() first")
        if X.dtype.kind not in "fiub":
            raise InvalidArgument(f"dask array of element type {X.dtype} is not numeric")
        dtype = _base.check_dtype_parameter(self.dtype)
        from ._arrays import _target_dtype

        target = _target_dtype(X.dtype, dtype)
        if X.dtype != target:
            X = X.astype(target)
        if len(X.chunks[1]) != 1:
            X = X.rechunk({1: -1})
        return X

    def _weights(self, sample_weight, X):
        if sample_weight is None:
            return None
        if not _is_dask_array(sample_weight):
            weights = _base.as_real_weights(sample_weight)
            if weights.ndim == 0:
                sample_weight = _spread_weight(weights, X)
            elif weights.shape != (X.shape[0],):  # before dask cuts it into X's row blocks
                raise InvalidArgument(f"sample_weight.shape == {weights.shape}, expected "
                                      f"{(X.shape[0],)}")
            else:
                sample_weight = da.from_array(weights, chunks=(X.chunks[0],))
        else:
            _refuse_unknown_chunk_sizes(sample_weight)
            if sample_weight.dtype.kind in "cVMm":  # astype would drop an imaginary part
                raise InvalidArgument(f"sample_weight: element type {sample_weight.dtype} is "
                                      "not real numbers")
        w = sample_weight.astype(np.float64)
        if w.ndim != 1 or w.shape[0] != X.shape[0]:
            raise InvalidArgument(f"sample_weight.shape == {w.shape}, expected {(X.shape[0],)}")
        return w.rechunk((X.chunks[0],))

    def _initial_model(self, source, weights, given, seed):
        """The starting model from the initialisation on the sample, the `given` *_init
        parameters replacing the drawn ones, and the initialisation's notes (a component left
        empty, say), as the in-memory fit's report opens with them."""
        n, d = source.x.shape
        rows = _sample_rows(weights, n, self.init_sample_rows)
        if len(rows) < self.n_components:
            # Said of the sample, the library's word was "larger than the number of rows (3)"
            # of data of 30000.
            if len(rows) < min(n, self.init_sample_rows):  # the rows of positive weight
                raise InvalidArgument(f"initialisation: only {len(rows)} rows have positive "
                                      f"weight, fewer than n_components = {self.n_components}")
            raise InvalidArgument(f"init_sample_rows = {self.init_sample_rows} is fewer than "
                                  f"n_components = {self.n_components}: the initialisation "
                                  "chooses the starting points among that many rows")
        # Gathered by tasks that check each block against its declared shape (a block of
        # other rows was NumPy's or Dask's error, naming no block), as fit's passes do; in X's
        # type, as the in-memory initialisation reads them.
        sample, w = source.gather_rows(rows)
        sample = np.ascontiguousarray(sample, dtype=source.dtype)
        w = None if w is None else np.ascontiguousarray(w)
        options = self._options(seed)
        options.max_iter = 0
        options.tol = 0  # no "did not converge" for a run that takes no step
        try:
            start = _emix.fit(_emix.view(sample), options, w, None)
        except _emix.InvalidArgument as error:
            raise _sampled_row(error, rows) from None
        # The library's report lists the initialisation's notes first and its warnings about
        # the model itself (identifiability) last; the fit states the latter of its own model.
        about_model = set(self._model_warnings(start.model, sample))
        notes = [line for line in start.warnings if line not in about_model]
        parameters = self._parameters_of(start.model)
        parameters.update(given)
        return self._make_model(d, parameters), notes

    def _model_warnings(self, model, rows):
        """The library's warnings about `model` whatever the data (a mixture its rows cannot
        identify): those of a fit from it that takes no step, over `rows` (any of the data,
        repeated where fewer than the components, as the library fits no fewer rows)."""
        k = model.n_components
        rows = rows[:k] if len(rows) >= k else np.resize(rows, (k, rows.shape[1]))
        options = self._options(0)
        options.engine = engine_options("cpu")
        options.init_model = model
        options.n_init = 1
        options.max_iter = 0
        options.tol = 0
        options.fixed_weights = False  # a probe: only the fit itself refuses its options
        return list(_emix.fit(_emix.view(np.ascontiguousarray(rows)), options, None,
                              None).warnings)

    def _fan_in(self, model):
        """Blocks per merge task: 16, fewer where 16 sets of statistics would exceed
        merge_task_bytes (full covariance with large K D^2), down to pairs."""
        size = len(_emix.Statistics(model).serialize())
        fan_in = 16
        while fan_in > 2 and fan_in * size > self.merge_task_bytes:
            fan_in //= 2
        return fan_in

    def _statistics(self, model, blocks, weight_blocks, first_rows, rows, centres=None,
                    weights=None):
        """The statistics of `blocks` (delayed arrays) under `model`, about `centres` where
        given, merged in merge_in_order's tree; first_rows: each block's first row in the whole
        array, for error messages; rows: each block's rows as the array declares them
        (checked); weights: the Dask array weight_blocks come from, whose largest value a fit's
        rule judges (each block is a piece the library does not judge alone: one may hold only
        tiny weights beside normal ones), computed in the same pass."""
        state = _model_state(model)
        device = self.device
        per_block = dask.delayed(_block_statistics, pure=False)
        parts = [per_block(b, None if weight_blocks is None else weight_blocks[i], state, device,
                           first_row, i, declared, centres)
                 for i, (b, first_row, declared) in enumerate(zip(blocks, first_rows, rows))]
        merged = tree_merge(parts, fan_in=self._fan_in(model))
        if weights is None or weights.shape[0] == 0:
            (total,) = dask.compute(merged)
            return _raised(total)
        total, largest = dask.compute(merged, weights.max())
        total = _raised(total)  # a block's error first: it names the row
        if largest > 0:
            _emix.check_largest_sample_weight(float(largest))
        return total

    def fit(self, X, y=None, sample_weight=None):
        """Fit by EM over a Dask array (per-block statistics on the workers, the library's EM
        driver here).

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features), or anything ``fit`` of the
            in-memory estimator takes
        y : Ignored
        sample_weight : dask or NumPy array of shape (n_samples,), optional

        Returns
        -------
        self : object
        """
        if not (_is_dask_array(X) or _is_dask_frame(X)):
            return super().fit(X, y, sample_weight)
        self._check_parameters()
        # A Dask DataFrame's, or none; stored with the model, so that a failed fit keeps the old.
        names = fitted_feature_names(self, _named_like(X))
        X = _as_dask_array(X)
        started = time.perf_counter()
        X = self._rows(X)
        weights = self._weights(sample_weight, X)
        n, d = X.shape
        if n < 2:
            raise InvalidArgument(f"Found array with {n} sample(s) (shape={X.shape}) while a "
                                  f"minimum of 2 is required by {type(self).__name__}.")
        if self.n_components > n:  # also with every *_init given, as the in-memory fit
            raise InvalidArgument(f"Expected n_samples >= n_components but got n_components = "
                                  f"{self.n_components}, n_samples = {n}")
        seed = self._seed()
        warm = self.warm_start and self.__sklearn_is_fitted__()
        given = {}
        if warm:
            self._check_fitted_shape("fit with warm_start")
            model = self._model()
            if model.n_features != d:  # as the in-memory fit says, before any pass
                # As the library words it (count_of): "1 feature", "3 columns".
                raise InvalidArgument(
                    f"init model has {model.n_features} feature"
                    f"{'s' if model.n_features != 1 else ''}, but the data have {d} column"
                    f"{'s' if d != 1 else ''}")
        else:
            given = self._check_initial_parameters(d)
        source = _RemoteBlocks(X, weights, X.dtype, self.device)
        notes = []
        if not warm:
            if len(given) == len(self._init_parameters):
                model = self._make_model(d, given)
            else:
                model, notes = self._initial_model(source, weights, given, seed)
        if weights is not None:
            if not source.weight_total > 0:
                raise InvalidArgument("sample_weight: the sample weights sum to 0")
            # A fit's rule on all the rows' weights (the library judges a chunk read here; the
            # blocks are judged where they are).
            _emix.check_largest_sample_weight(source.largest_weight)
        init_seconds = time.perf_counter() - started
        options = self._options(seed)
        options.init_model = model
        options.n_init = 1
        size = len(_emix.Statistics(model).serialize())
        if source.n_chunks() * size > self.merge_task_bytes:
            # Every block's statistics at once would not fit the client's budget: the workers
            # add them (not bitwise the blocks added in order, but the same whoever runs what).
            source.fan_in = self._fan_in(model)
        elif self.resident_blocks:
            source.start_resident()
        hook = self._hook(0)

        def on_iteration(info):
            source.iteration = info.iteration + 1  # the next pass's, should a worker be lost
            if hook is not None:
                hook(info)

        try:
            report = _emix.fit_chunks(source, options, on_iteration)
        except _emix.NumericalError as error:
            # The library blames a start it was given; this one is the library's own
            # initialisation where the caller gave none.
            own = " and the initial model for extreme values"
            if warm or given or own not in str(error):
                raise
            raise _emix.NumericalError(str(error).replace(own, " for extreme values")) from None
        finally:
            source.close()
        # In the in-memory report's order: the initialisation's notes, then the library's.
        report.warnings = notes + list(report.warnings)
        report.init_seconds = report.init_seconds + init_seconds
        report.seconds = time.perf_counter() - started
        self._set_fitted(report, d, source.weight_total, feature_names=names)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then the labels of X (a Dask array for Dask input)."""
        if not (_is_dask_array(X) or _is_dask_frame(X)):
            return super().fit_predict(X, y, sample_weight)
        return self.fit(X, y, sample_weight).predict(X)

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online EM on a batch in memory (see the in-memory estimator). A Dask
        array is refused rather than computed into memory as one batch."""
        if _is_dask_array(X) or _is_dask_frame(X):
            raise TypeError("partial_fit takes a batch in memory, not a Dask array: pass its "
                            "blocks one by one (for b in X.blocks: est.partial_fit(b.compute())"
                            "), or call fit for exact EM over the whole array")
        return super().partial_fit(X, y, sample_weight)

    # --- evaluation over Dask arrays ----------------------------------------------------------

    def _map(self, X, what, names_checked=False):
        """`what` of each block of X, lazily; `names_checked`: X is rows the caller converted
        after checking its names (a frame's), which it no longer has."""
        self._check_is_fitted()
        if not names_checked:
            check_feature_names(self, _named_like(X), reset=False)
        # Lazy, as for a Dask array: computing the frame's lengths here read it at call time.
        X = self._rows(_as_dask_array(X, lengths=False), blockwise=True)
        if X.shape[1] != self.n_features_in_:
            raise InvalidArgument(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                                  f"expecting {self.n_features_in_} features as input.")
        evaluation = _Evaluation(_model_state(self._model()), self.device)
        dtype = np.int64 if what == "predict" else np.float64
        k = len(self.weights_)  # the fitted model's, whatever set_params changed since
        if what != "predict_proba":
            return X.map_blocks(_block_apply, evaluation, what, k, dtype=dtype,
                                drop_axis=1, chunks=(X.chunks[0],))
        return X.map_blocks(_block_apply, evaluation, what, k, dtype=dtype,
                            chunks=(X.chunks[0], (k,)))

    def predict(self, X):
        """Component labels; a Dask array for a Dask array (see the in-memory estimator)."""
        if not (_is_dask_array(X) or _is_dask_frame(X)):
            return super().predict(X)
        return self._map(X, "predict")

    def predict_proba(self, X):
        """Responsibilities; a Dask array of shape (n_samples, n_components) for Dask input."""
        if not (_is_dask_array(X) or _is_dask_frame(X)):
            return super().predict_proba(X)
        return self._map(X, "predict_proba")

    def score_samples(self, X):
        """log p(x) of each row; a Dask array for Dask input."""
        if not (_is_dask_array(X) or _is_dask_frame(X)):
            return super().score_samples(X)
        return self._map(X, "score_samples")

    def score(self, X, y=None, sample_weight=None):
        """Mean (weighted) log-likelihood; a 0-d Dask array for Dask input."""
        if not (_is_dask_array(X) or _is_dask_frame(X)):
            return super().score(X, y, sample_weight)
        if sample_weight is None:
            log_prob = self.score_samples(X)
            total = dask.delayed(_mean_of_rows)(log_prob.sum(), _counted_rows(log_prob),
                                                type(self).__name__)
            return da.from_delayed(total, shape=(), dtype=np.float64)
        total = dask.delayed(_weighted_mean)(*self._weighted_sums(X, sample_weight))
        return da.from_delayed(total, shape=(), dtype=np.float64)

    def _weighted_sums(self, X, sample_weight):
        """sum_n w_n log p(x_n) and the weights' totals at or above DBL_MIN and below it (the
        library's check_weight_totals judges them) over a Dask array, as lazy Dask scalars."""
        self._check_is_fitted()
        check_feature_names(self, _named_like(X), reset=False)
        rows = self._rows(_as_dask_array(X))
        if rows.shape[0] == 0:
            raise _no_rows(type(self).__name__)
        # From the rows the weights are cut by: a frame's evaluation has unknown block lengths
        # (score_samples reads it lazily), and multiplying by the weights failed.
        log_prob = self._map(rows, "score_samples", names_checked=True)
        w = self._weights(sample_weight, rows).map_blocks(_checked_weights, dtype=np.float64)
        normal = w >= np.finfo(np.float64).tiny
        return (log_prob * w).sum(), da.where(normal, w, 0).sum(), da.where(normal, 0, w).sum()

    def _criterion(self, X, sample_weight):
        """log L and n over a Dask array, computed blockwise; with weights, log L is
        sum_n w_n log p(x_n) and n their sum, as the in-memory estimators count them."""
        if sample_weight is None:
            log_prob = self.score_samples(X)
            log_likelihood, n = dask.compute(log_prob.sum(), _counted_rows(log_prob))
            if n == 0:
                raise _no_rows(type(self).__name__)
            return float(log_likelihood), float(n)
        log_likelihood, normal, subnormal = dask.compute(*self._weighted_sums(X, sample_weight))
        _emix.check_weight_totals(float(normal), float(subnormal))
        return float(log_likelihood), float(normal + subnormal)

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion; blockwise for Dask input (see the in-memory
        estimator)."""
        if not (_is_dask_array(X) or _is_dask_frame(X)):
            return super().bic(X, sample_weight)
        log_likelihood, n = self._criterion(X, sample_weight)
        return _emix.bic_of(log_likelihood, self._model().n_parameters(), n)

    def aic(self, X, sample_weight=None):
        """Akaike information criterion; blockwise for Dask input (see the in-memory
        estimator)."""
        if not (_is_dask_array(X) or _is_dask_frame(X)):
            return super().aic(X, sample_weight)
        log_likelihood, _ = self._criterion(X, sample_weight)
        return _emix.aic_of(log_likelihood, self._model().n_parameters())


def _dask_init(in_memory):
    """The in-memory estimator's __init__ plus ``init_sample_rows``, keyword-only. Its signature
    is stated (scikit-learn's get_params, set_params and clone read the parameters from it), so
    the in-memory parameters are listed once, in their own class."""
    signature = inspect.signature(in_memory.__init__)
    extra = inspect.Parameter("init_sample_rows", inspect.Parameter.KEYWORD_ONLY,
                              default=_DEFAULT_INIT_SAMPLE_ROWS)

    def __init__(self, *args, init_sample_rows=_DEFAULT_INIT_SAMPLE_ROWS, **kwargs):
        in_memory.__init__(self, *args, **kwargs)
        self.init_sample_rows = init_sample_rows

    __init__.__signature__ = signature.replace(
        parameters=list(signature.parameters.values()) + [extra])
    return __init__


_SAMPLE_ROWS_DOC = (
    "\n    init_sample_rows : int, default=100000 (emix.dask only)\n"
    "        The initialisation runs on an evenly spaced sample of at most this many rows.\n")


class GaussianMixture(_DaskMixture, _gaussian.GaussianMixture):
    __doc__ = ("emix.GaussianMixture over Dask arrays (see emix.dask).\n"
               + _SAMPLE_ROWS_DOC + "\n" + (_gaussian.GaussianMixture.__doc__ or ""))
    __init__ = _dask_init(_gaussian.GaussianMixture)


class BernoulliMixture(_DaskMixture, _discrete.BernoulliMixture):
    __doc__ = ("emix.BernoulliMixture over Dask arrays (see emix.dask).\n"
               + _SAMPLE_ROWS_DOC + "\n" + (_discrete.BernoulliMixture.__doc__ or ""))
    __init__ = _dask_init(_discrete.BernoulliMixture)


class BinomialMixture(_DaskMixture, _discrete.BinomialMixture):
    __doc__ = ("emix.BinomialMixture over Dask arrays (see emix.dask).\n"
               + _SAMPLE_ROWS_DOC + "\n" + (_discrete.BinomialMixture.__doc__ or ""))
    __init__ = _dask_init(_discrete.BinomialMixture)

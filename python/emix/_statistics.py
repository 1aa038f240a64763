"""The public statistics API: EM as map (accumulate) / reduce (merge) / M-step (maximize).

Statistics of disjoint sets of rows under the same model add up, so an E-step can run anywhere
(chunks of a file, processes, Dask workers) and its pieces be merged in any grouping; the
M-step on the merged statistics is the M-step of the whole data. ``emix.dask`` and the chunked
``fit`` are built from these calls.
"""

import copy
import numbers

import numpy as np

from . import _emix
from ._emix import InvalidArgument
from ._arrays import as_data, check_dtype_parameter, in_rows, is_device_array
from ._engine import engine_options
from ._gaussian import raise_not_positive
from ._warnings import warn


class Statistics:
    """EM's sufficient statistics of some rows under one model (``emix::Statistics``).

    Made by :func:`accumulate`; merged with :meth:`merge` (or ``+``) and
    :func:`merge_in_order`; turned into a model by :func:`maximize`. Picklable, and
    serialised to a self-describing little-endian byte string by :meth:`to_bytes`.

    Attributes
    ----------
    family : str
        ``"gaussian"``, ``"bernoulli"`` or ``"binomial"``.
    covariance_type : str
        The Gaussian covariance type (``"full"`` for the discrete families).
    n_components, n_features : int
        K and D.
    log_likelihood : float
        sum_n w_n log p(x_n) under the model they were accumulated under.
    weight_sum : float
        sum_n w_n (the number of rows without sample weights).
    entropy : float
        sum_n w_n H_n with H_n = -sum_k p(k | x_n) log p(k | x_n): the entropy of the
        responsibilities, which the ICL adds (twice) to the BIC; the M-step does not use it.
    counts : ndarray of shape (n_components,)
        N_k = sum_n w_n p(k | x_n).
    sums : ndarray of shape (n_components, n_features)
        S_k = sum_n w_n p(k | x_n) (x_n - c_k).
    second_moments : ndarray
        Q_k = sum_n w_n p(k | x_n) (x_n - c_k)(x_n - c_k)^T: shape (K, D, D) for 'full' and
        'tied', its diagonal (K, D) for 'diag' and 'spherical', empty for discrete families.
        For 'tied' only the sum over components is defined (all that its M-step uses), and
        the CPU engine splits it otherwise (it sums the scatter once, into ``Q_0``).
    centres : ndarray of shape (n_components, n_features)
        c_k: the means of the model the statistics were accumulated under (zero for the
        discrete families), about which the sums are taken so that they do not cancel.
    values : ndarray
        The whole flat buffer ``[log_likelihood, weight_sum, entropy, N, S, Q]`` (a copy).
    """

    __slots__ = ("_native",)

    def __init__(self, native):
        if not isinstance(native, _emix.Statistics):
            raise TypeError("Statistics are made by emix.accumulate or Statistics.from_bytes")
        self._native = native

    # --- what they hold -----------------------------------------------------------------------

    family = property(lambda self: self._native.family)
    covariance_type = property(lambda self: self._native.covariance)
    n_components = property(lambda self: self._native.n_components)
    n_features = property(lambda self: self._native.n_features)
    log_likelihood = property(lambda self: self._native.log_likelihood)
    weight_sum = property(lambda self: self._native.weight_sum)
    entropy = property(lambda self: self._native.entropy)
    centres = property(lambda self: self._native.centres)
    values = property(lambda self: self._native.values)

    # The totals (log-likelihood, weight sum, entropy) come first in the flat buffer.
    _TOTALS = 3

    @property
    def counts(self):
        k, t = self.n_components, self._TOTALS
        return self.values[t:t + k]

    @property
    def sums(self):
        k, d, t = self.n_components, self.n_features, self._TOTALS
        return self.values[t + k:t + k + k * d].reshape(k, d)

    @property
    def second_moments(self):
        k, d, t = self.n_components, self.n_features, self._TOTALS
        rest = self.values[t + k + k * d:]
        if self.family != "gaussian":
            return rest
        if self.covariance_type in ("full", "tied"):
            return rest.reshape(k, d, d)
        return rest.reshape(k, d)

    # --- merging ------------------------------------------------------------------------------

    def merge(self, other):
        """The statistics of both sets of rows: ``self + other``, element by element.

        Parameters
        ----------
        other : Statistics
            Statistics accumulated under the same model (same shape, bitwise the same
            centres; ``InvalidArgument`` otherwise). Gaussian statistics are centred on the
            model's means, so those of a model with other means are refused (not those of one
            that differs only in its weights or covariances); Bernoulli and binomial
            statistics are plain sums, which merge whatever model weighed them (keeping model
            versions apart is then the caller's part). A sum past double's range is refused
            (``InvalidArgument``).

        Returns
        -------
        Statistics
            A new object. ``a.merge(b)`` and ``b.merge(a)`` are bitwise equal; three or more
            depend on the grouping, which :func:`merge_in_order` fixes.
        """
        if not isinstance(other, Statistics):
            raise TypeError(f"cannot merge Statistics with {type(other).__name__}")
        out = self._native.copy()
        out.merge(other._native)
        return Statistics(out)

    __add__ = merge

    def __radd__(self, other):
        # sum(parts) starts from 0 (its order is left to right; merge_in_order states a tree).
        if isinstance(other, numbers.Number) and other == 0:
            return Statistics(self._native.copy())
        return NotImplemented

    def scale(self, factor):
        """Every sum times `factor` (finite, >= 0), as a new object (``InvalidArgument`` for
        a product past double's range)."""
        out = self._native.copy()
        out.scale(float(factor))
        return Statistics(out)

    def recentred(self, centres):
        """The same sums taken about other centres (K x D), exact in exact arithmetic: what
        lets statistics accumulated under one Gaussian model feed the M-step of another."""
        c = np.ascontiguousarray(centres, dtype=np.float64)
        return Statistics(self._native.recentred(c))

    # --- bytes --------------------------------------------------------------------------------

    def to_bytes(self):
        """A self-describing little-endian byte string (format, shape, centres, values and a
        checksum that from_bytes verifies)."""
        return self._native.serialize()

    @classmethod
    def from_bytes(cls, data):
        """Statistics from :meth:`to_bytes`' output (``InvalidArgument`` names the first thing
        wrong with malformed bytes)."""
        return cls(_emix.Statistics.deserialize(bytes(data)))

    def __reduce__(self):
        return (Statistics.from_bytes, (self.to_bytes(),))

    def __eq__(self, other):
        return isinstance(other, Statistics) and self.to_bytes() == other.to_bytes()

    __hash__ = None

    def __repr__(self):
        return (f"Statistics(family={self.family!r}, covariance_type={self.covariance_type!r}, "
                f"n_components={self.n_components}, n_features={self.n_features}, "
                f"weight_sum={self.weight_sum!r}, log_likelihood={self.log_likelihood!r})")


def native_model(model):
    """The library's Model of a fitted estimator (or a Model itself)."""
    if isinstance(model, _emix.Model):
        return model
    if hasattr(model, "_model") and hasattr(model, "__sklearn_is_fitted__"):
        model._check_is_fitted()
        return model._model()
    raise TypeError(f"expected a fitted emix estimator, got {type(model).__name__}")


def accumulate(model, X, sample_weight=None, device=None, about=None):
    """The E-step of `model` over rows `X`: their sufficient statistics.

    Parameters
    ----------
    model : fitted GaussianMixture, BernoulliMixture or BinomialMixture
        The model whose responsibilities weigh the rows (its ``device`` is the default).
    X : array-like of shape (n_samples, n_features), or a chunk source
        Rows, host or device, used in place where possible (as ``fit`` takes them). A chunk
        source (:func:`emix.chunked`, an h5py dataset, a pyarrow source, a re-iterable of
        arrays, or here also a generator) is read once, chunk by chunk, and its chunks'
        statistics merged by :func:`merge_in_order`; an error names the chunk and the row of
        the whole source.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each row. All zero is allowed: such a piece of the data adds
        nothing (:func:`maximize` refuses statistics without any weight).
    device : {'auto', 'cpu', 'gpu'}, optional
        Where the E-step runs (default: the estimator's ``device``, else 'auto').
    about : array-like of shape (n_components, n_features), optional
        Gaussian mixtures: the points the sums and second moments are taken about (default: the
        model's means). :func:`maximize` warns where statistics summed about the model's means
        lost digits of a new covariance (a mean that moved by far more than its component's
        spread); accumulating again about the new means, ``about=stepped.means_``, and
        maximising those under the same model gives the step exactly, as ``fit`` does.

    Returns
    -------
    Statistics
    """
    from ._chunks import chunks_read_once, converts_beyond_memory, is_chunk_source, named_sample
    from ._sklearn import check_feature_names

    m = native_model(model)
    if not isinstance(model, _emix.Model):  # columns named otherwise than the fit's: an error
        check_feature_names(model, named_sample(X), reset=False)
    centres = _centres(m, about)
    if type(X).__module__.split(".")[0] in ("dask", "dask_expr"):
        # Blockwise on the workers, as emix.dask fits, not computed into memory here.
        from .dask import accumulate as accumulate_dask

        return accumulate_dask(model, X, sample_weight, device, centres)
    dtype = check_dtype_parameter(getattr(model, "dtype", None))
    device = device or getattr(model, "device", "auto")

    def one(view, weights):
        if centres is None:
            return _emix.accumulate(m, view, engine_options(device), weights)
        return _emix.accumulate_about(m, centres, view, engine_options(device), weights)

    if is_chunk_source(X) or converts_beyond_memory(X, dtype):
        # Each chunk's weights are judged by a fit's rule on the largest with all the others': a
        # chunk may hold only tiny weights beside chunks of normal ones.
        parts, first_row, largest = [], 0, 0.0
        for i, (view, weights) in enumerate(chunks_read_once(X, sample_weight, dtype)):
            if view.cols != m.n_features:  # an empty chunk's too, as fit refuses it
                raise InvalidArgument(f"chunk {i} has {view.cols} features, but the model has "
                                      f"{m.n_features}")
            if view.rows == 0:
                # An empty row group or batch adds zero statistics, kept in its place: the merge's
                # tree pairs the chunks as emix.dask's pairs its blocks, empty ones included.
                parts.append(one(view, None))
                continue
            try:
                parts.append(_emix.accumulate_piece(m, centres, view, engine_options(device),
                                                    weights))
            except _emix.InvalidArgument as error:
                raise in_rows(error, first_row, view.rows, f"chunk {i}") from None
            if weights is not None:
                largest = max(largest, float(np.max(weights)))
            first_row += view.rows
        if not parts:
            raise InvalidArgument("the chunk source gave no chunks")
        if largest > 0:
            _emix.check_largest_sample_weight(largest)
        return Statistics(_emix.merge_in_order(parts))
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2 and shape[0] == 0 and not is_device_array(X):
        # No rows: zero statistics, which merge as nothing (a filtered partition, say), as the
        # C and C++ APIs give them.
        if shape[1] != m.n_features:
            raise InvalidArgument(f"X has {shape[1]} features, but the model has "
                                  f"{m.n_features}")
        if sample_weight is not None:
            from ._base import _check_sample_weight

            _check_sample_weight(sample_weight, 0, allow_all_zero=True)
        empty = np.empty((0, m.n_features), dtype=dtype or np.float64)
        return Statistics(one(_emix.view(empty), None))
    data = as_data(X, dtype, "emix.accumulate")
    if data.n_features != m.n_features:
        raise InvalidArgument(f"X has {data.n_features} features, but the model has "
                              f"{m.n_features}")
    weights = None
    if sample_weight is not None:
        from ._base import _check_sample_weight

        weights = _check_sample_weight(sample_weight, data.n_samples, allow_all_zero=True)
    return Statistics(one(data.view, weights))


def _centres(model, about):
    """`about` as the library's K x D centres (row-major doubles), or None for the means."""
    if about is None:
        return None
    if model.family != "gaussian":
        raise InvalidArgument("about: Bernoulli and binomial statistics are sums of the rows "
                              "themselves, taken about no point")
    centres = np.asarray(about, dtype=np.float64)
    expected = (model.n_components, model.n_features)
    if centres.shape != expected:
        raise InvalidArgument(f"about has shape {centres.shape}, expected {expected} "
                              "(n_components, n_features)")
    return [float(c) for c in centres.ravel()]


def merge_in_order(parts):
    """``parts[0] + parts[1] + ...`` in one stated order, whatever computed them.

    The order is a balanced binary tree over the list index: pairs (0, 1), (2, 3), ..., then
    pairs of those sums, and so on, so that the total is bitwise the same for every caller
    (``emix.accumulate`` of a Dask array reduces its blocks in exactly this tree, and so does
    an ``emix.dask`` fit whose blocks' statistics are too large for the client to hold).

    Parameters
    ----------
    parts : sequence of Statistics
        Non-empty, all accumulated under the same model.

    Returns
    -------
    Statistics
    """
    parts = list(parts)
    if not parts:
        raise InvalidArgument("merge_in_order: no statistics to merge")
    for p in parts:
        if not isinstance(p, Statistics):
            raise TypeError(f"merge_in_order: expected Statistics, got {type(p).__name__}")
    return Statistics(_emix.merge_in_order([p._native for p in parts]))


def maximize(model, statistics, reg_covar=None, prob_epsilon=None, fixed_weights=None):
    """The M-step: new parameters from statistics accumulated under `model`.

    Parameters
    ----------
    model : fitted GaussianMixture, BernoulliMixture or BinomialMixture
        The model the statistics were accumulated under (or, for Gaussian mixtures,
        statistics recentred onto its means). Its ``reg_covar``, ``prob_epsilon`` and
        ``fixed_weights`` are the defaults of the options below.
    statistics : Statistics
    reg_covar : float, optional
        Added to covariance diagonals.
    prob_epsilon : float, optional
        Bernoulli / binomial probabilities are kept in [eps, 1 - eps].
    fixed_weights : bool, optional
        Keep `model`'s mixing weights.

    Returns
    -------
    estimator
        A copy of `model` with the new parameters and no fit report, as a model file without
        a fit section loads (``report_`` None, ``converged_`` False, ``n_iter_`` 0,
        ``lower_bound_`` NaN, ``lower_bounds_`` empty). An empty component (a Gaussian one
        under 1e-12 of the total weight, a Bernoulli or binomial one at N_k = 0) keeps its
        parameters and is listed in the copy's ``empty_components_`` (``fit`` would re-seed
        it), which :meth:`~GaussianMixture.save` does not write: a model file holds
        parameters and a fit's summary.

    Raises
    ------
    InvalidArgument
        Statistics no accumulation gives (NaN, a negative weight, a scatter about a new mean
        that is not positive semi-definite), or none with weight; or, with ``reg_covar=0``, a
        component that collapsed onto a subspace (its covariance singular; ``fit`` would
        re-seed it), named.
    """
    if not isinstance(statistics, Statistics):
        raise TypeError(f"expected Statistics, got {type(statistics).__name__}")
    m = native_model(model)
    options = _emix.MStepOptions()

    def pick(given, name):
        return given if given is not None else getattr(model, name, None)

    for value, name in ((reg_covar, "reg_covar"), (prob_epsilon, "prob_epsilon"),
                        (fixed_weights, "fixed_weights")):
        value = pick(value, name)
        if value is None:
            continue
        if name == "fixed_weights" and not isinstance(value, (bool, np.bool_)):
            raise InvalidArgument(f"fixed_weights must be a bool, got {value!r}")
        if name != "fixed_weights" and (isinstance(value, (bool, np.bool_))
                                        or not isinstance(value, numbers.Real)):
            raise InvalidArgument(f"{name} must be a number, got {value!r}")
        setattr(options, name, type(getattr(options, name))(value))
    new_model, empty = _emix.maximize(m, statistics._native, options)
    if _emix.scatter_lost_digits(new_model, statistics._native):
        from ._base import FitWarning

        warn("maximize: the statistics were summed about points far from the new means, which "
             "rounded away digits of a covariance (a mean moved by far more than its "
             "component's spread); for the exact step, accumulate the same rows again under "
             "the same model with about=<the result>.means_ and maximize those, as fit does",
             FitWarning)
    # What a fit re-seeds, refused as documented, before the model is checked: where rounding
    # left its factorisation a pivot just above 0, that check passed a model that scored rows
    # at -4e15.
    try:
        collapsed = _emix.collapsed_components(new_model, options.reg_covar)
    except _emix.NumericalError:  # a singular tied covariance
        collapsed = [0]
    if collapsed:
        raise_not_positive(collapsed[0], new_model.covariance)
    if isinstance(model, _emix.Model):
        return new_model
    out = copy.copy(model)
    # The online stream's state too, in every form copy.copy may leave it (__getstate__ turns
    # it into a checkpoint): the copy's next partial_fit starts a stream of its own.
    for attribute in ("_online_", "_online_settings_", "_online_checkpoint_", "_online_offset_"):
        out.__dict__.pop(attribute, None)
    out._set_model(new_model)
    # No fit made it: as load_model leaves a model file without a fit section (report_ was
    # missing, an AttributeError).
    out.report_, out.converged_, out.n_iter_ = None, False, 0
    out.lower_bound_ = np.float64("nan")
    out.lower_bounds_ = np.empty(0, dtype=np.float64)
    # The statistics' weight, as a fit's: what a partial_fit going on from it with
    # step_offset='auto' weighs the model as (the original fit's stayed, whatever was summed).
    out._fit_weight_ = float(statistics.weight_sum)
    out.empty_components_ = list(empty)
    return out

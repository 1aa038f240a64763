"""What emix's estimators share: parameters, fitting, evaluation, reports and model files."""

import base64
import dataclasses
import json
import math
import numbers
import os
import time
import weakref

import numpy as np

from . import _emix
from ._warnings import warn
from ._emix import InvalidArgument
from ._arrays import as_data, check_dtype_parameter, like_input, to_host_numpy
from ._chunks import (_module_of, adapter_for, converts_beyond_memory, is_chunk_source,
                      named_sample, reads_only_in_chunks)
from ._engine import engine_options
from ._sklearn import (BaseEstimator, ConvergenceWarning, DensityMixin, NotFittedError,
                       check_feature_names, check_random_state, fitted_feature_names)

# scikit-learn's init_params -> emix's method and k-means refinement steps (None: emix's
# default, 10). 'k-means++' is the seeding alone: each point goes to its nearest seed.
_INIT_METHODS = {
    "kmeans": ("kmeans++", None),
    "k-means++": ("kmeans++", 0),
    "random": ("random", None),
    "random_from_data": ("random-from-data", None),
}
_DEVICES = ("auto", "cpu", "gpu")

_KEEP = object()  # _set_fitted's feature_names: leave them as they are

# Report lines that are records, not warnings: non-convergence becomes a ConvergenceWarning
# (scikit-learn's), and the initialisation sample is how emix initialises large data.
_QUIET_REPORT_LINES = ("did not converge", "initialisation used a random sample")



class FitWarning(UserWarning):
    """Something a fit did that the caller should know: a component that was re-seeded, or
    parameters the data cannot identify (the three-coin model's ridge)."""


@dataclasses.dataclass
class IterationInfo:
    """What one EM iteration did, as passed to an estimator's ``callback``.

    Attributes
    ----------
    init_run : int
        Which of the ``n_init`` initialisations runs.
    iteration : int
        0 for the initial parameters, then 1, 2, ... after each M-step.
    log_likelihood : float
        Total (sample-weighted) log-likelihood under the current parameters.
    mean_log_likelihood : float
        ``log_likelihood`` divided by the sum of the sample weights.
    change : float
        Change of ``mean_log_likelihood`` since the previous iteration (NaN at iteration 0).
    seconds : float
        Wall time of this iteration's E-step.
    """

    init_run: int
    iteration: int
    log_likelihood: float
    mean_log_likelihood: float
    change: float
    seconds: float


@dataclasses.dataclass
class FitReport:
    """How a fit went (emix's ``FitReport``).

    Attributes
    ----------
    log_likelihood, mean_log_likelihood : float
        Total and per-sample (weighted) log-likelihood under the fitted parameters.
    history : ndarray of shape (n_iter + 1,)
        Total log-likelihood under the parameters of iteration 0 (initial), 1, ..., n_iter
        of the best initialisation.
    n_iter : int
        M-steps taken.
    converged : bool
        Whether the change of the mean log-likelihood fell below ``tol``.
    best_init : int
        Which initialisation won.
    engine : str
        Where the E-step ran, for example ``"cpu (2 threads, avx512)"`` or ``"gpu (NVIDIA H100 ...)"``.
    precision : str
        Element type of the data: ``"float32"`` or ``"float64"``.
    seconds, setup_seconds, init_seconds : float
        Wall time of the whole fit, of validation and engine set-up (for a GPU the upload),
        and of initialisation.
    iteration_seconds : ndarray of shape (n_iter + 1,)
        Wall time of each iteration (E-step and the M-step after it).
    warnings : list of str
        What the fit reported: re-seeded components, non-convergence, identifiability.
    """

    log_likelihood: float
    mean_log_likelihood: float
    history: np.ndarray
    n_iter: int
    converged: bool
    best_init: int
    engine: str
    precision: str
    seconds: float
    setup_seconds: float
    init_seconds: float
    iteration_seconds: np.ndarray
    warnings: list

    @classmethod
    def _from_native(cls, r):
        return cls(log_likelihood=r.log_likelihood, mean_log_likelihood=r.mean_log_likelihood,
                   history=np.asarray(r.history, dtype=np.float64), n_iter=r.n_iter,
                   converged=r.converged, best_init=r.best_init, engine=r.engine,
                   precision=r.precision, seconds=r.seconds, setup_seconds=r.setup_seconds,
                   init_seconds=r.init_seconds,
                   iteration_seconds=np.asarray(r.iteration_seconds, dtype=np.float64),
                   warnings=list(r.warnings))

    @classmethod
    def _from_json(cls, fit, path="model file"):
        """From a model file's "fit" section (missing entries read as empty); an entry of the
        wrong kind is emix.IoError naming it, as the library's reader names a bad parameter."""
        def bad(key, what):
            raise _emix.IoError(f"{path}: \"fit\" entry \"{key}\" is {fit[key]!r}, "
                                f"expected {what}")

        def number(key):
            value = fit.get(key)
            if value is None:
                return float("nan")
            if not _is_real(value):
                bad(key, "a number")
            return float(value)

        def whole(key):
            value = fit.get(key, 0)
            if not (_is_int(value) and 0 <= value < 2**31):  # a count, or a restart's index
                bad(key, "a whole number from 0 to 2147483647")
            return int(value)

        def numbers(key):
            values = fit.get(key, [])
            if not isinstance(values, list) or not all(v is None or _is_real(v) for v in values):
                bad(key, "a list of numbers")
            return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)

        def text(key):
            value = fit.get(key, "")
            if not isinstance(value, str):
                bad(key, "a string")
            return value

        converged = fit.get("converged", False)
        if not isinstance(converged, bool):
            bad("converged", "true or false")
        warnings = fit.get("warnings", [])
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            bad("warnings", "a list of strings")
        return cls(log_likelihood=number("log_likelihood"),
                   mean_log_likelihood=number("mean_log_likelihood"),
                   history=numbers("history"), n_iter=whole("n_iter"), converged=converged,
                   best_init=whole("best_init"), engine=text("engine"),
                   precision=text("precision"), seconds=number("seconds"),
                   setup_seconds=number("setup_seconds"), init_seconds=number("init_seconds"),
                   iteration_seconds=numbers("iteration_seconds"), warnings=list(warnings))

    def _to_native(self):
        r = _emix.FitReport()
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            setattr(r, field.name, value)
        return r


def _warn_if_underdetermined(model, data):
    """A first partial_fit step of size 1 replaces the running statistics with the batch's. A
    batch holding fewer numbers than the model has free parameters cannot determine them
    (a covariance from fewer rows than features is singular but for reg_covar), and nothing
    warns later: the following steps only blend into that start."""
    parameters = int(model.n_parameters())
    if data.n_samples * data.n_features < parameters:
        warn(f"partial_fit: the first batch has {data.n_samples} rows of "
             f"{data.n_features} features, fewer values than the model's {parameters} "
             "free parameters, and its step (size 1 with step_offset=1) replaces the "
             "running statistics: start with a larger batch", FitWarning)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# How the library's error about a run whose components kept collapsing begins (core/em.cpp,
# EmRun::kept_collapsing): the one failure its restarts pass over.
_KEPT_COLLAPSING = "components kept collapsing to the end"


def _may_lose_in_float32(dtype):
    """Values of this type that float32 may not hold: wider floats, and integers past 2^24."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        return True  # a pandas extension type (nullable Int64, say): judged by its values
    return (dtype.kind == "f" and dtype.itemsize > 4) or (dtype.kind in "iu" and
                                                          dtype.itemsize > 2)


# polars' types whose values float32 holds exactly.
_POLARS_EXACT_IN_FLOAT32 = {"Float32", "Int8", "Int16", "UInt8", "UInt16", "Boolean"}


def _float64_blocks(x):
    """Host data `x` as float64 blocks of rows, for the rounding scan: None where its values
    could lose nothing in float32, or where reading them again would cost what the fit's own
    conversion did (other array-likes, which may compute their values: not judged)."""
    module = _module_of(x)
    if module == "pandas" and hasattr(x, "iloc"):
        if not any(_may_lose_in_float32(t) for t in x.dtypes):
            return None
        block = lambda first, rows: x.iloc[first:first + rows].to_numpy(dtype=np.float64)
    elif module == "polars" and hasattr(x, "slice"):
        if all(str(t) in _POLARS_EXACT_IN_FLOAT32 for t in x.dtypes):
            return None
        block = lambda first, rows: x.slice(first, rows).to_numpy()
    else:
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)  # Python floats: an array of them is small beside the list
        if not (isinstance(x, np.ndarray) and _may_lose_in_float32(x.dtype)):
            return None
        block = lambda first, rows: x[first:first + rows]
    if len(x.shape) != 2 or x.shape[0] < 2:
        return None
    # A block of rows at a time: a frame's columns, or a strided array, are copied as they go.
    rows = max(1, (1 << 22) // max(1, x.shape[1]))
    return (np.ascontiguousarray(block(first, rows), dtype=np.float64)
            for first in range(0, x.shape[0], rows))


_CENTRE_OR_FLOAT64 = "subtract the column means first, or fit in float64"


def float32_rounding_message(x, name, remedy=_CENTRE_OR_FLOAT64):
    """The warning (or None) where rounding the data to float32 (dtype='float32') changes a
    column by more than 1e-4 of its spread: data far from the origin (values of 1e6 + 0.37 k
    with a spread of 1 keep 0.03 of it; epoch seconds keep none), which float32 cannot hold
    however the arithmetic is done after. The library's scan, as ``emix fit --precision float``
    warns, of NumPy arrays, pandas and polars frames and lists whose values float32 may not hold
    (float64 and wider, integers); other array-likes, device arrays and chunk sources are
    converted where they are, unjudged."""
    try:
        blocks = _float64_blocks(x)
        if blocks is None:
            return None
        scan = _emix.Float32RoundingScan()
        for block in blocks:
            scan.add(_emix.view(block))
    except (TypeError, ValueError):
        return None  # values that are no numbers: the fit's own conversion names them
    worst = scan.worst()
    if worst is None:
        return None
    column, largest, spread, lost = worst
    return (f"{name}: dtype='float32' rounds column {column + 1} (values up to {largest:.3g}, "
            f"spread {spread:.3g}) by up to {lost:.2g} of its spread, more than float32's 1e-4; "
            f"{remedy}")


def warn_float32_rounding(x, dtype, name, category=FitWarning, remedy=_CENTRE_OR_FLOAT64):
    """float32_rounding_message's warning, where `dtype` is float32; the message or None."""
    if dtype != np.float32:
        return None
    message = float32_rounding_message(x, name, remedy)
    if message:
        warn(message, category)
    return message


class _BaseMixture(DensityMixin, BaseEstimator):
    """Base of emix's estimators. Subclasses name their family and initial parameters and
    translate between the library's Model and scikit-learn's fitted attributes."""

    _family = None
    _init_parameters = ()  # the constructor's *_init parameters, in Model terms

    # --- parameters -------------------------------------------------------------------------

    def _check_parameters(self):
        name = type(self).__name__
        # The library's limit on K: the initialisation draws the components among a sample of
        # at most that many rows (FitOptions::init_max_rows), as `emix fit` says it.
        most = _emix.FitOptions().init_max_rows
        checks = [
            (_is_int(self.n_components) and 1 <= self.n_components <= most, "n_components",
             f"an int in [1, {most}] (emix draws the components among a sample of at most "
             f"{most} rows)"),
            (_is_real(self.tol) and self.tol >= 0, "tol", "a float >= 0"),
            (_is_int(self.max_iter) and self.max_iter >= 0, "max_iter", "an int >= 0"),
            (_is_int(self.n_init) and 1 <= self.n_init < 2**31, "n_init", "an int in [1, 2**31)"),
            (self.init_params in _INIT_METHODS, "init_params",
             "one of " + ", ".join(repr(k) for k in _INIT_METHODS)),
            (isinstance(self.verbose, (numbers.Integral, np.bool_)) and self.verbose >= 0,
             "verbose", "an int >= 0 or a bool"),
            (_is_int(self.verbose_interval) and self.verbose_interval >= 1, "verbose_interval",
             "an int >= 1"),
            (self.device in _DEVICES, "device", "one of 'auto', 'cpu', 'gpu'"),
            (isinstance(self.warm_start, (bool, np.bool_)), "warm_start", "a bool"),
            (isinstance(self.fixed_weights, (bool, np.bool_)), "fixed_weights", "a bool"),
            (self.callback is None or callable(self.callback), "callback",
             "None or a callable"),
            (_is_real(self.step_decay) and 0.5 < self.step_decay <= 1, "step_decay",
             "a float in (0.5, 1]"),
            (self.step_offset == "auto" if isinstance(self.step_offset, str) else
             _is_real(self.step_offset) and 1 <= self.step_offset < float("inf"),
             "step_offset", "'auto' or a finite float >= 1"),
            # A Generator (np.random.default_rng) was refused by check_random_state's message,
            # which named no parameter.
            (self.random_state is None or _is_int(self.random_state)
             or isinstance(self.random_state, np.random.RandomState), "random_state",
             "an int in [0, 2**64), a numpy.random.RandomState or None (as in scikit-learn, "
             "not a numpy.random.Generator: pass an int it draws, rng.integers(2**63))"),
        ]
        checks += self._family_checks()
        for ok, parameter, expected in checks:
            if not ok:
                raise InvalidArgument(f"The {parameter!r} parameter of {name} must be {expected}. "
                                      f"Got {getattr(self, parameter)!r} instead.")
        check_dtype_parameter(self.dtype)

    def _check_data_values(self, data):
        """A family's own check of the values of data fit reads, before the library's; none for
        Gaussian mixtures, whose values the library checks alone."""

    def _family_checks(self):
        return []

    def _seed(self):
        """The library's 64-bit seed: random_state itself when it is an int, else one draw
        from the RandomState (None: NumPy's global one), as scikit-learn draws its seeds."""
        if _is_int(self.random_state):
            if not 0 <= self.random_state < 2**64:
                raise InvalidArgument(
                    f"random_state must be in [0, 2**64), got {self.random_state}")
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _engine(self):
        return engine_options(self.device)

    def _options(self, seed):
        o = _emix.FitOptions()
        o.n_components = int(self.n_components)
        o.family = self._family
        method, kmeans_iter = _INIT_METHODS[self.init_params]
        o.init = method
        if kmeans_iter is not None:
            o.kmeans_iter = kmeans_iter
        o.fixed_weights = bool(self.fixed_weights)
        o.n_init = int(self.n_init)
        o.max_iter = min(int(self.max_iter), 2**31 - 1)  # more steps than any fit takes
        o.tol = float(self.tol)
        o.seed = seed
        o.engine = self._engine()
        self._family_options(o)
        return o

    # --- fitting ----------------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the model's parameters with the EM algorithm.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a chunk source
            The data: a NumPy array (used in place when it is C-contiguous float32 or
            float64), a list, a PyTorch CPU tensor, or a CUDA array (CuPy, PyTorch, JAX, any
            DLPack or ``__cuda_array_interface__`` producer), which the GPU engine reads in
            place. Or a chunk source, re-read chunk by chunk on every iteration (exact EM out
            of core): :func:`emix.chunked`, an h5py dataset, a pyarrow Table, ParquetFile or
            Dataset, or a re-iterable of 2-D arrays (a list of them, say).
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row, read as a repetition count: from the same initial
            parameters, integer weights give the EM steps of the data with each row repeated
            that many times. emix's own initialisation draws its sample and seeds by weight,
            which is not the same random draw as on repeated rows.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model and return the most probable component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data (see :meth:`fit`): an array, an h5py dataset or an Arrow table; another
            chunk source is a TypeError (call ``fit``, then ``predict`` chunk by chunk).
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Repetition count of each row.

        Returns
        -------
        labels : array of shape (n_samples,)
            Component labels (int64), as a NumPy array for host data and as an array of the
            input's kind, on its device, for device data.
        """
        if reads_only_in_chunks(X):  # before the fit: the estimator is left as it was
            raise TypeError("fit_predict takes one array; for a chunk source call fit, then "
                            "predict on each chunk")
        data = self._fit(X, sample_weight)
        if data is None:  # an h5py dataset or an Arrow table: fitted by chunks, read whole here
            return self.predict(X)
        return self._evaluate("predict", data)

    def _commit(self, attributes, drop=(), feature_names=_KEEP):
        """Sets `attributes` and removes `drop` in one store of __dict__: a KeyboardInterrupt
        (which Python raises between two statements) or another thread fitting or reading this
        estimator sees all the fitted attributes of one fit, never some of each. Readers that
        take vars(self) once (_model) read one consistent state. `feature_names`: the fit's
        feature_names_in_ (None: none, removed); _KEEP leaves them."""
        state = dict(self.__dict__)  # one call, which no other thread's store interrupts
        for key in drop:
            state.pop(key, None)
        if feature_names is None:
            state.pop("feature_names_in_", None)
        elif feature_names is not _KEEP:
            state["feature_names_in_"] = feature_names
        state.update(attributes)
        self.__dict__ = state
        # The last model's evaluator is not kept beside the new one (the next evaluation would
        # find it stale): about twice the covariances' memory.
        try:
            _EVALUATORS.pop(self, None)
        except TypeError:  # not hashable: none kept
            pass

    def _fit(self, X, sample_weight):
        self._check_parameters()
        name = type(self).__name__
        dtype = check_dtype_parameter(self.dtype)
        # Stored with the model: a fit that fails or is interrupted leaves the estimator as it
        # was, its feature names included (save() would record the new data's).
        names = fitted_feature_names(self, named_sample(X))
        in_chunks = is_chunk_source(X) or converts_beyond_memory(X, dtype)
        if in_chunks:
            source = adapter_for(X, sample_weight, dtype)
            n_features = source.peek_features()
            if names is None and source.first_frame is not None:
                # An iterable of frames, whose names no one could read before its chunk 0.
                names = fitted_feature_names(self, source.first_frame)

            def run(options, hook):
                return _emix.fit_chunks(source, options, hook)
        else:
            data = as_data(X, dtype, name, min_samples=2)
            self._check_data_values(data)
            # The values before the rounding: warned of before the fit, which may fail for it,
            # and among the fit's warnings after (as the program writes its own into the model
            # file).
            rounding = warn_float32_rounding(X, dtype, name)
            weights = _check_sample_weight(sample_weight, data.n_samples)
            if data.n_samples < 2:
                # scikit-learn's minimum for a fit: one row has no spread, and its model would
                # be reg_covar around that row.
                shape = (1, data.n_features)
                raise InvalidArgument(f"Found array with 1 sample(s) (shape={shape}) while a "
                                      f"minimum of 2 is required by {name}.")
            if self.n_components > data.n_samples:
                raise InvalidArgument(f"Expected n_samples >= n_components but got n_components = "
                                      f"{self.n_components}, n_samples = {data.n_samples}")
            n_features = data.n_features

            def run(options, hook):
                return _emix.fit(data.view, options, weights, hook)
        seed = self._seed()
        if self.warm_start and self.__sklearn_is_fitted__():
            self._check_fitted_shape("fit with warm_start")
            options = self._options(seed)
            options.init_model = self._model()
            options.n_init = 1
            report = run(options, self._hook(0))
        else:
            given = self._check_initial_parameters(n_features)
            if len(given) == len(self._init_parameters):
                # All starting parameters given: every initialisation would be the same run.
                options = self._options(seed)
                options.init_model = self._make_model(n_features, given)
                options.n_init = 1
                report = run(options, self._hook(0))
            elif given:
                report = self._fit_from_partial(run, n_features, seed, given)
            else:
                report = run(self._options(seed), self._hook(0))
        if in_chunks:
            if source.n_samples < 2:  # known once the chunks were read; as for an array
                raise InvalidArgument(f"Found 1 sample in the chunks while a minimum of 2 is "
                                      f"required by {name}.")
            self._set_fitted(report, n_features, source.weight_total, feature_names=names)
            return None
        total = float(weights.sum()) if weights is not None else float(data.n_samples)
        self._set_fitted(report, n_features, total, feature_names=names,
                         recorded_warnings=[rounding] if rounding else [])
        return data

    def _fit_from_partial(self, run_fit, n_features, seed, given):
        """Some starting parameters given: scikit-learn takes the others from its
        initialisation. Here each initialisation r runs emix's initialisation alone (seed + r,
        max_iter 0), replaces the given parameters, and runs EM from there."""
        best = None
        first_failure = None
        started = time.perf_counter()
        for run in range(int(self.n_init)):
            try:
                options = self._options((seed + run) % 2**64)
                options.n_init = 1
                options.max_iter = 0
                start = run_fit(options, None)
                parameters = self._parameters_of(start.model)
                parameters.update(given)
                options = self._options(seed)
                options.n_init = 1
                options.init_model = self._make_model(n_features, parameters)
                report = run_fit(options, self._hook(run))
            except _emix.NumericalError as error:
                # A restart whose components kept collapsing is left out, as the library's own
                # restarts are (core/em.cpp, run_em: the fit fails only when every one did); any
                # other failure ends the fit, as there.
                if not str(error).startswith(_KEPT_COLLAPSING):
                    raise
                if first_failure is None:
                    first_failure = error
                continue
            report.best_init = run
            report.init_seconds = report.init_seconds + start.seconds
            if best is None or _emix.better_restart(report.log_likelihood, best.log_likelihood):
                best = report
        if best is None:
            if self.n_init == 1:
                raise first_failure
            raise _emix.NumericalError(f"all {self.n_init} restarts kept collapsing; the first: "
                                       f"{first_failure}") from first_failure
        best.seconds = time.perf_counter() - started
        return best

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online EM on a batch of rows (stepwise EM, Cappé & Moulines 2009).

        The batch's statistics under the current model, per unit of weight, are blended into
        running statistics with step size ``(t + step_offset)^-step_decay`` (t = 0, 1, ...
        counts the calls), and the M-step runs on those.

        The first call initialises the model from the first batch as ``fit`` would (by
        ``init_params`` and ``random_state``, or from ``weights_init`` / ``means_init`` /
        ``precisions_init`` / ``probabilities_init``); on an estimator fitted by ``fit`` it
        starts from the fitted model. The running statistics start as that model's own (those
        whose M-step gives it back). The first step has size ``step_offset ** -step_decay``.
        With ``step_offset=1`` (what ``'auto'`` takes for a stream that starts the model) the
        first batch's statistics replace them outright, so a small first batch moves the model
        far. Going on from ``fit`` of total weight N (N rows unweighted) with batches of
        weight B, ``'auto'`` takes ``N / B + 1``: with ``step_decay=1`` the running
        statistics are then the mean of the fit's (weighted as N / B batches) and every
        batch's since. ``fit`` discards the online state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch (see :meth:`fit`); the first needs at least ``n_components`` rows.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row of the batch.

        Returns
        -------
        self : object

        Notes
        -----
        Online EM is not exact EM. Its iterates depend on the batches' order and sizes, and
        with decaying steps it converges to a stationary point of the likelihood of the
        stream's distribution, with noise of the order of the last step sizes: on a stationary
        stream drawn from a fixed dataset it approaches ``fit`` of that dataset, but not to
        round-off. Data that can be read again are fitted exactly by ``fit``, in memory or
        chunk by chunk (:func:`emix.chunked`). ``n_iter_`` counts the steps taken and
        ``lower_bound_`` is the last batch's mean log-likelihood before its step; there is
        no convergence test (``converged_`` stays False).
        """
        self._check_parameters()
        name = type(self).__name__
        state = vars(self)  # one stream's state, though another thread's step commits now
        fitted = self.__sklearn_is_fitted__()
        if fitted:
            check_feature_names(self, X, reset=False)
            names = _KEEP
        else:  # stored with the first step's model
            names = fitted_feature_names(self, X)
        dtype = check_dtype_parameter(self.dtype)
        data = as_data(X, dtype, name)
        warn_float32_rounding(X, dtype, name)
        weights = _check_sample_weight(sample_weight, data.n_samples)
        online = state.get("_online_")
        if fitted:
            # A model set by its attributes (weights_, means_, ...) may have no n_features_in_:
            # the model's own width then (the library refuses a batch of another).
            expected = getattr(self, "n_features_in_", data.n_features)
            if data.n_features != expected:
                raise InvalidArgument(f"X has {data.n_features} features, but {name} is "
                                      f"expecting {expected} features as input.")
            self._check_fitted_shape("partial_fit")
        mstep = _emix.MStepOptions()
        mstep.reg_covar = float(getattr(self, "reg_covar", mstep.reg_covar))
        mstep.prob_epsilon = float(getattr(self, "prob_epsilon", mstep.prob_epsilon))
        mstep.fixed_weights = bool(self.fixed_weights)
        settings = (float(self.step_decay), self.step_offset, mstep.reg_covar,
                    mstep.prob_epsilon, mstep.fixed_weights)
        checkpoint = state.get("_online_checkpoint_")
        offset = state.get("_online_offset_")
        if online is None and checkpoint is not None:
            # Unpickled: the stream goes on from the step where it was pickled.
            running, steps, last = checkpoint
            online = _emix.OnlineEm.resume(self._model(), settings[0], self._stream_offset(),
                                           mstep, _emix.Statistics.deserialize(running), steps,
                                           last)
        elif online is not None and settings != state.get("_online_settings_"):
            # set_params between batches: the next steps take the new values.
            online = _emix.OnlineEm.resume(online.model, settings[0], self._stream_offset(),
                                           mstep, online.running_statistics, online.steps,
                                           online.last_mean_log_likelihood)
        if online is None:
            # 'auto': a stream going on from fit weighs the fit as W / B batches of this one's
            # weight; one that starts the model, 1.
            fit_weight = state.get("_fit_weight_")
            batch_weight = float(weights.sum()) if weights is not None else data.n_samples
            if self.step_offset != "auto":
                offset = float(self.step_offset)
            elif self.__sklearn_is_fitted__() and fit_weight and batch_weight > 0:
                offset = fit_weight / batch_weight + 1.0
            else:
                offset = 1.0
            if self.__sklearn_is_fitted__():
                initial = self._model()
            else:
                given = self._check_initial_parameters(data.n_features)
                if len(given) == len(self._init_parameters):
                    initial = self._make_model(data.n_features, given)
                else:
                    if self.n_components > data.n_samples:
                        raise InvalidArgument(
                            f"Expected n_samples >= n_components in the first batch of "
                            f"partial_fit but got n_components = {self.n_components}, "
                            f"n_samples = {data.n_samples}")
                    options = self._options(self._seed())
                    options.max_iter = 0
                    start = _emix.fit(data.view, options, weights, None)
                    for message in start.warnings:  # a component left empty, say
                        if not message.startswith(_QUIET_REPORT_LINES):
                            warn(message, FitWarning)
                    parameters = self._parameters_of(start.model)
                    parameters.update(given)
                    initial = self._make_model(data.n_features, parameters)
            online = _emix.OnlineEm(initial, settings[0], offset, mstep)
        if online.steps == 0 and offset == 1:
            _warn_if_underdetermined(online.model, data)
        # The step makes a new stream: the estimator's, which another thread may step or read,
        # is never changed, and an interrupted step leaves it as it was.
        online = online.stepped(data.view, self._engine(), weights)
        attributes = self._model_attributes(online.model)
        # No fit's report: report_ None and lower_bounds_ empty, as maximize's copy and a model
        # file without a fit section have them (they were removed, an AttributeError).
        attributes.update(_online_=online, _online_settings_=settings,
                          n_features_in_=int(data.n_features), n_iter_=int(online.steps),
                          lower_bound_=np.float64(online.last_mean_log_likelihood),
                          converged_=False, report_=None,
                          lower_bounds_=np.empty(0, dtype=np.float64))
        if offset is not None:
            attributes["_online_offset_"] = offset
        self._commit(attributes, drop=("_online_checkpoint_",), feature_names=names)
        weightless = np.flatnonzero(np.asarray(attributes["weights_"]) == 0)
        if weightless.size:
            # fit re-seeds such a component on a row; online EM, which sees each batch once,
            # cannot, and the component stays without weight.
            warn(f"partial_fit: component(s) {', '.join(map(str, weightless))} have no "
                 "weight; online EM does not re-seed them (fit does, or start from other "
                 "initial parameters)", FitWarning)
        return self

    def __getstate__(self):
        # The online state is the library's object: pickled as its running statistics (bytes),
        # step count and last batch's score, from which partial_fit resumes the stream.
        state = dict(super().__getstate__())
        checkpoint = self._online_checkpoint()
        state.pop("_online_", None)
        state.pop("_online_settings_", None)
        if checkpoint is not None:
            state["_online_checkpoint_"] = checkpoint
        return state

    def _online_checkpoint(self):
        """The online stream as (running statistics' bytes, steps, last batch's mean
        log-likelihood), from which partial_fit resumes it; None without one."""
        online = self.__dict__.get("_online_")
        if online is None:
            return self.__dict__.get("_online_checkpoint_")
        return (online.running_statistics.serialize(), int(online.steps),
                float(online.last_mean_log_likelihood))

    def _stream_offset(self):
        """The online stream's step_offset: the parameter's, or for 'auto' the offset the
        stream began with (what 'auto' took, or a number given then and set back to 'auto'
        since)."""
        if self.step_offset != "auto":
            return float(self.step_offset)
        return float(self.__dict__.get("_online_offset_", 1.0))

    def _check_fitted_shape(self, what):
        """InvalidArgument when n_components (or a Gaussian mixture's covariance_type, a
        binomial mixture's n_trials) was changed by set_params after the fit that a warm start
        or partial_fit would go on from."""
        fitted = len(np.asarray(self.weights_))
        if fitted != self.n_components:
            raise InvalidArgument(f"{what}: n_components is {self.n_components}, but the fitted "
                                  f"model has {fitted} components; fit anew (warm_start=False, "
                                  "or a new estimator) to change it")
        kind = getattr(self, "_fitted_covariance_type", None)
        if kind is not None and kind != getattr(self, "covariance_type", kind):
            raise InvalidArgument(f"{what}: covariance_type is '{self.covariance_type}', but the "
                                  f"fitted model's is '{kind}'; fit anew (warm_start=False, or "
                                  "a new estimator) to change it")
        trials = getattr(self, "_fitted_trials", None)
        if trials is not None and hasattr(self, "n_trials") and trials != self._trials():
            raise InvalidArgument(f"{what}: n_trials is {self.n_trials}, but the fitted model's "
                                  f"is {trials}; fit anew (warm_start=False, or a new estimator) "
                                  "to change it")

    def _hook(self, run):
        """The per-iteration Python call: verbose output and the user's callback (None when
        neither is asked for; the library checks for Ctrl-C on its own, about every 50 ms)."""
        verbose, callback, interval = self.verbose, self.callback, self.verbose_interval
        if not verbose and callback is None:
            return None
        last = [time.perf_counter()]
        restarts = self.n_init > 1 and not (self.warm_start and hasattr(self, "weights_"))

        def hook(native):
            info = IterationInfo(init_run=native.init_run + run, iteration=native.iteration,
                                 log_likelihood=native.log_likelihood,
                                 mean_log_likelihood=native.mean_log_likelihood,
                                 change=native.change, seconds=native.seconds)
            if verbose >= 1 and info.iteration == 0:
                print(f"Initialization {info.init_run}")
                last[0] = time.perf_counter()
            elif verbose >= 2 and info.iteration % interval == 0:
                now = time.perf_counter()
                # The restarts run together, their lines interleaved: each names its own.
                which = f" (initialization {info.init_run})" if restarts else ""
                print(f"  Iteration {info.iteration}{which}\t time lapse {now - last[0]:.5f}s\t "
                      f"ll change {info.change:.5f}")
                last[0] = now
            if callback is not None:
                callback(info)

        return hook

    def _set_fitted(self, report, n_features, total_weight, failed=False, candidate=None,
                    feature_names=_KEEP, recorded_warnings=()):
        """The fitted attributes from a fit's report, its warnings emitted. `candidate`: select's
        name for this fit ("K = 3, full"), which prefixes its FitWarnings; select then states
        non-convergence once for all its candidates. `feature_names`: as _commit takes them,
        committed with the rest. `recorded_warnings`: what the fit's caller found and warned of
        already (the data's rounding to float32), added to the report's, not emitted again."""
        attributes = self._model_attributes(report.model)
        attributes.update(
            _fit_weight_=float(total_weight),  # what step_offset='auto' weighs the fit as
            converged_=bool(report.converged),
            n_iter_=int(report.n_iter),
            lower_bound_=np.float64(report.mean_log_likelihood),
            # scikit-learn's lower_bounds_: the value each iteration's E-step measured, under
            # the parameters before its M-step (n_iter_ values); the returned parameters' is
            # lower_bound_.
            lower_bounds_=np.asarray(report.history[:-1], dtype=np.float64) / total_weight,
            n_features_in_=int(n_features),
            report_=FitReport._from_native(report))
        # A fit's model ends the online stream (its next partial_fit starts one from the
        # model); a fit that failed, its data refused say, leaves the stream as it was.
        self._commit(attributes, feature_names=feature_names,
                     drop=("_online_", "_online_settings_", "_online_checkpoint_",
                           "_online_offset_"))
        # From this fit's attributes: another thread's fit may have committed since.
        converged = attributes["converged_"]
        if self.verbose >= 1:
            state = "converged" if converged else "did not converge"
            print(f"Initialization {report.best_init} {state}. time lapse "
                  f"{report.seconds:.5f}s\t lower bound {attributes['lower_bound_']:.5f}.")
        for message in attributes["report_"].warnings:
            if not message.startswith(_QUIET_REPORT_LINES):
                if candidate is None:
                    warn(message, FitWarning)
                else:  # select's caller, past select and this method
                    warn(f"{candidate}: {message}", FitWarning)
        attributes["report_"].warnings.extend(recorded_warnings)
        # A select candidate that failed (its warning gives the error) has not merely not
        # converged: more iterations would not help.
        if candidate is None and not converged and self.max_iter > 0 and not failed:
            warn("Best performing initialization did not converge. Try different init "
                 "parameters, or increase max_iter, tol, or check for degenerate data.",
                 ConvergenceWarning)

    # --- evaluation -------------------------------------------------------------------------

    def __sklearn_is_fitted__(self):
        return hasattr(self, "weights_")

    def _check_is_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call "
                                 "'fit' with appropriate arguments before using this "
                                 "estimator.")

    def _data(self, X):
        self._check_is_fitted()
        check_feature_names(self, X, reset=False)
        name = type(self).__name__
        dtype = check_dtype_parameter(self.dtype)
        data = as_data(X, dtype, name)
        # A fitted model's data cannot be centred alone: its means are the data's as they are.
        warn_float32_rounding(X, dtype, name, UserWarning, "evaluate in float64 (dtype='float64')")
        # A model built from assigned attributes has no n_features_in_ (scikit-learn then skips
        # this check too); the library names a width that disagrees with the model's.
        if data.n_features != getattr(self, "n_features_in_", data.n_features):
            raise InvalidArgument(f"X has {data.n_features} features, but {name} is expecting "
                                  f"{self.n_features_in_} features as input.")
        return data

    def _evaluate(self, method, data):
        evaluate = getattr(self._evaluator(), method)
        return like_input(evaluate(data.view, self._engine()), data)

    def predict(self, X):
        """The most probable component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data (see :meth:`fit`).

        Returns
        -------
        labels : array of shape (n_samples,)
            Component labels (int64, as scikit-learn's): NumPy for host data, the input's kind
            for device data.
        """
        return self._evaluate("predict", self._data(X))

    def predict_proba(self, X):
        """Posterior probability of each component for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data (see :meth:`fit`).

        Returns
        -------
        resp : array of shape (n_samples, n_components)
            Responsibilities p(k | x), float64: NumPy for host data, the input's kind for
            device data.
        """
        return self._evaluate("predict_proba", self._data(X))

    def score_samples(self, X):
        """Log-likelihood of each row under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data (see :meth:`fit`).

        Returns
        -------
        log_prob : array of shape (n_samples,)
            log p(x) of each row, float64: NumPy for host data, the input's kind for device
            data.
        """
        return self._evaluate("score_samples", self._data(X))

    def score(self, X, y=None, sample_weight=None):
        """Mean (sample-weighted) log-likelihood of the data under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data (see :meth:`fit`).
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row.

        Returns
        -------
        log_likelihood : float
            Weighted mean of log p(x) over the rows.
        """
        data = self._data(X)
        weights = _check_sample_weight(sample_weight, data.n_samples)
        return float(self._evaluator().score(data.view, self._engine(), weights))

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion of the model on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows: log L is then sum_n w_n log p(x_n), and n the sum of the
            weights, as :func:`emix.select`'s table counts a weighted fit.

        Returns
        -------
        bic : float
            ``-2 log L + p log n`` with p free parameters counted as scikit-learn does.
        """
        data = self._data(X)
        weights = _check_sample_weight(sample_weight, data.n_samples)
        return float(self._evaluator().bic(data.view, self._engine(), weights))

    def aic(self, X, sample_weight=None):
        """Akaike information criterion of the model on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows: log L is then sum_n w_n log p(x_n).

        Returns
        -------
        aic : float
            ``-2 log L + 2 p``.
        """
        data = self._data(X)
        weights = _check_sample_weight(sample_weight, data.n_samples)
        return float(self._evaluator().aic(data.view, self._engine(), weights))

    def sample(self, n_samples=1):
        """Draw points from the fitted model.

        Parameters
        ----------
        n_samples : int, default=1
            Number of points.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The points, in the order they were drawn (scikit-learn groups them by component).
        y : ndarray of shape (n_samples,)
            The component each point came from (int64, as scikit-learn's).
        """
        self._check_is_fitted()
        # A whole float (2.0) counts, as scikit-learn takes it; 2.5 does not.
        if _is_real(n_samples) and float(n_samples).is_integer():
            n_samples = int(n_samples)
        if not _is_int(n_samples) or n_samples < 1:
            raise InvalidArgument(f"Invalid value for 'n_samples': {n_samples!r} . The sampling "
                                  "requires at least one sample.")
        if n_samples >= 2**63:
            raise InvalidArgument(f"n_samples = {n_samples}: more rows than an array can index")
        # One thread in a process forked after emix ran threads (engine_options' rule).
        X, y = _emix.sample(self._model(), int(n_samples), self._seed(),
                            engine_options("cpu").n_threads)
        return X, np.asarray(y, dtype=np.int64)  # scikit-learn's label type

    # --- files ------------------------------------------------------------------------------

    def save(self, path):
        """Write the fitted model to a JSON model file, the format of ``emix fit -o``.

        The file holds the parameters and, for a model fitted here, the fit's report, or for a
        model partial_fit stepped, its stream (running statistics and step count, from which
        the loaded model's partial_fit goes on as this one's would); the
        ``emix`` program reads it (``emix score``, ``emix predict``) and
        :func:`emix.load_model` reads it back. Its "estimator" section keeps the class, the
        parameters that are numbers, strings, booleans or None (``reg_covar``, ``tol``,
        ``max_iter``, ``random_state`` as an int, ...) and ``feature_names_in_``, which
        :func:`emix.load_model` restores; array parameters (``means_init``, ...), callables,
        random generators and what describes this machine (``device``, ``verbose``) are not
        kept, and load as their defaults.

        Parameters
        ----------
        path : str or os.PathLike
            Where to write. The file is replaced atomically: a failed write leaves no partial
            file.
        """
        self._check_is_fitted()
        report = self.report_._to_native() if getattr(self, "report_", None) else None
        _emix.write_model(os.fsencode(path), self._model(), report, _estimator_section(self))

    # --- subclass hooks ---------------------------------------------------------------------

    def _family_options(self, options):
        raise NotImplementedError

    def _check_initial_parameters(self, n_features):
        """The starting parameters given, checked, as {Model field: array}."""
        raise NotImplementedError

    def _parameters_of(self, model):
        raise NotImplementedError

    def _make_model(self, n_features, parameters):
        raise NotImplementedError

    def _model_attributes(self, model):
        """The fitted attributes of `model` (weights_, means_, ...), by name."""
        raise NotImplementedError

    def _set_model(self, model):
        self._commit(self._model_attributes(model))

    def _model_sources(self):
        """(kind, {name: array}): the fitted attributes the model is made of, as they are now,
        and what else tells models apart (a covariance type, a number of trials)."""
        raise NotImplementedError

    def _model_of(self, kind, sources):
        """The _emix.Model of _model_sources' answer."""
        raise NotImplementedError

    def _model(self):
        return self._model_of(*self._model_sources())

    def _evaluator(self):
        """The fitted model as an _emix.Evaluator, checked and factored once for the evaluations
        that follow (predict of a few rows of a full model of 16 components over 512 features
        took 0.25 s, each call factoring the model twice, where scikit-learn's takes 3 ms). It
        is made again when an attribute it was made from was assigned or changed in place:
        every call compares them with what the evaluator holds (one read of them, as
        scikit-learn's evaluation reads them)."""
        kind, sources = self._model_sources()
        try:
            cached = _EVALUATORS.get(self)
        except TypeError:  # a subclass that is not hashable: nothing kept
            cached = None
        if cached is not None and _made_from(cached, kind, sources):
            return cached[2]
        # The engine's threads (one in a process forked after emix ran threads) factor it.
        evaluator = _emix.Evaluator(self._model_of(kind, sources), self._engine().n_threads)
        # What the evaluator was made from: its own arrays (no copy), a copy of what it holds
        # only in another form (a Gaussian's precisions_cholesky_, maybe on a device).
        references = {}
        for name, value in sources.items():
            value = to_host_numpy(value)
            references[name] = (np.shape(value), evaluator.parameter(name)
                                if name in _MODEL_PARAMETERS
                                else np.array(value, dtype=np.float64).ravel())
        try:
            _EVALUATORS[self] = (kind, references, evaluator)
        except TypeError:
            pass
        return evaluator


# Each estimator's kept evaluator, (kind, references, evaluator), outside the estimator: an
# evaluation leaves its __dict__ as it was (scikit-learn's check_dict_unchanged), and a copy or a
# pickle carries none.
_EVALUATORS = weakref.WeakKeyDictionary()

# The parameters an _emix.Evaluator holds as they were given (Evaluator.parameter).
_MODEL_PARAMETERS = ("weights", "means", "covariances", "probabilities")


def _made_from(cached, kind, sources):
    """Whether the cached evaluator (kind, references, evaluator) was made from `sources`: the
    same kind, names and shapes, and equal values."""
    cached_kind, references, _ = cached
    if cached_kind != kind or references.keys() != sources.keys():
        return False
    for name, value in sources.items():
        shape, reference = references[name]
        value = np.asarray(to_host_numpy(value))
        if value.shape != shape or not np.array_equal(value.ravel(), reference):
            return False
    return True


# What a model file's "estimator" section calls each family's estimator: the emix class, also
# for a subclass of it, so that the file loads where the subclass is not defined.
ESTIMATOR_CLASSES = {"gaussian": "GaussianMixture", "bernoulli": "BernoulliMixture",
                     "binomial": "BinomialMixture"}
# Parameters that describe the machine or the session, not the model: not kept in model files.
MACHINE_PARAMETERS = ("device", "verbose", "verbose_interval", "callback")


def _estimator_section(estimator):
    """A model file's "estimator" section (JSON text): the class, the parameters JSON holds as
    they are, and feature_names_in_."""
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        if name in MACHINE_PARAMETERS:
            continue
        if name == "dtype" and value is not None:
            value = check_dtype_parameter(value).name  # np.float32 itself too, as 'float32'
        if value is None or isinstance(value, (bool, str)):
            params[name] = value
        elif isinstance(value, np.bool_):  # taken where a bool is (warm_start=np.True_)
            params[name] = bool(value)
        elif _is_int(value):
            params[name] = int(value)
        elif _is_real(value) and math.isfinite(value):
            params[name] = float(value)
    section = {"class": ESTIMATOR_CLASSES[estimator._family], "params": params}
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        section["feature_names_in"] = [str(name) for name in names]
    checkpoint = estimator._online_checkpoint()
    if checkpoint is not None:
        # Without it a loaded model's partial_fit would start a new stream, whose first step
        # (size 1) replaces the model by one batch's M-step.
        running, steps, last = checkpoint
        section["online"] = {
            "steps": steps,
            "step_offset": estimator._stream_offset(),
            "last_mean_log_likelihood": last if math.isfinite(last) else None,
            "running_statistics": base64.b64encode(running).decode("ascii"),
        }
    return json.dumps(section)


def as_real_weights(sample_weight):
    """Sample weights as float64, of any real kind (objects such as Decimal too, as
    scikit-learn takes them); complex ones (whose imaginary part would be dropped), times and
    records are refused."""
    weights = np.asarray(sample_weight)
    if weights.dtype.kind in "cVMm":
        raise InvalidArgument(f"sample_weight: element type {weights.dtype} is not real numbers")
    return weights.astype(np.float64, copy=False)


def _check_sample_weight(sample_weight, n_samples, allow_all_zero=False):
    if sample_weight is None:
        return None
    weights = as_real_weights(to_host_numpy(sample_weight))
    if weights.ndim == 0:
        weights = np.full(n_samples, float(weights))
    if weights.ndim != 1:
        raise InvalidArgument("Sample weights must be 1D array or scalar")
    if weights.shape != (n_samples,):
        raise InvalidArgument(f"sample_weight.shape == {weights.shape}, expected {(n_samples,)}!")
    # Negative and non-finite weights are the library's to reject (its message names the
    # row); weights that are all zero leave nothing to fit (but a piece of the data may hold
    # only such rows: allow_all_zero).
    if not allow_all_zero and not np.any(weights != 0):
        raise InvalidArgument("sample weights are all zero: at least one weight must be positive")
    return np.ascontiguousarray(weights)


def check_weights(weights, n_components):
    """scikit-learn's checks of weights_init.

    Weights given in a lower precision than float64 (a float32 fit's weights_) are checked
    to that precision's rounding and then renormalised, so that a model's own weights are
    always accepted back as a start.
    """
    given = np.asarray(to_host_numpy(weights))
    weights = np.asarray(given, dtype=np.float64)
    if weights.shape != (n_components,):
        raise InvalidArgument(f"The parameter 'weights' should have the shape of "
                              f"{(n_components,)}, but got {weights.shape}")
    if np.any(weights < 0) or np.any(weights > 1) or not np.all(np.isfinite(weights)):
        raise InvalidArgument("The parameter 'weights' should be in the range [0, 1], but got max "
                              f"value {np.max(weights):.5f}, min value {np.min(weights):.5f}")
    total = np.sum(weights)
    rounded = np.issubdtype(given.dtype, np.floating) and np.finfo(given.dtype).eps > np.finfo(
        np.float64).eps
    # A float32 weight is off by up to half an ulp, so their sum by up to that times K.
    tolerance = max(1e-8, n_components * np.finfo(given.dtype).eps) if rounded else 1e-8
    if not abs(1.0 - total) <= tolerance:
        raise InvalidArgument("The parameter 'weights' should be normalized, but got "
                              f"sum(weights) = {total:.10g}")
    return weights / total if rounded else weights


def check_shape(array, shape, name):
    array = np.asarray(to_host_numpy(array), dtype=np.float64)
    if array.shape != shape:
        raise InvalidArgument(f"The parameter '{name}' should have the shape of {shape}, but got "
                              f"{array.shape}")
    if not np.all(np.isfinite(array)):
        raise InvalidArgument(f"The parameter '{name}' contains NaN or infinity")
    return array

"""emix.GaussianMixture: scikit-learn's GaussianMixture, fitted by emix on CPUs and GPUs."""

import numpy as np

from . import _emix
from ._emix import InvalidArgument
from ._arrays import to_host_numpy
from ._base import _BaseMixture, _is_real, check_shape, check_weights
from ._engine import engine_options

_COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


def _check_precisions(precisions, covariance_type, n_components, n_features):
    """scikit-learn's checks of precisions_init; returns the covariances they stand for."""
    shape = tuple(_emix.covariance_extents(covariance_type, n_components, n_features))
    precisions = check_shape(precisions, shape, "precisions")
    if covariance_type in ("full", "tied"):
        matrices = precisions.reshape(-1, n_features, n_features)
        symmetric = np.allclose(matrices, np.swapaxes(matrices, -1, -2))
        if not symmetric or np.any(np.linalg.eigvalsh(matrices) <= 0):
            raise InvalidArgument(f"'{covariance_type} precision' should be symmetric, "
                                  "positive-definite")
        # scikit-learn factors the upper triangle (the lower one of the matrix flipped both
        # ways): a precision symmetric only to allclose's tolerance stands for that one, and its
        # inverse is made exactly symmetric, as the library's check of a covariance asks.
        precisions = np.triu(precisions) + np.swapaxes(np.triu(precisions, 1), -1, -2)
        with np.errstate(all="ignore"):
            covariances = np.linalg.inv(precisions)
            covariances = 0.5 * (covariances + np.swapaxes(covariances, -1, -2))
        # A precision near the smallest doubles (1e-310) inverts to inf: named here, not as
        # the covariances the caller never gave.
        bad = ~np.isfinite(covariances.reshape(len(matrices), -1)).all(axis=1)
        if bad.any():
            where = f"[{int(np.flatnonzero(bad)[0])}]" if covariance_type == "full" else ""
            raise InvalidArgument(f"precisions_init{where} is too close to singular: its "
                                  "inverse, the covariance, is not finite")
        return covariances
    if np.any(precisions <= 0):
        raise InvalidArgument(f"'{covariance_type} precision' should be positive")
    with np.errstate(all="ignore"):
        covariances = 1.0 / precisions
    bad = np.flatnonzero(~np.isfinite(covariances))
    if bad.size:
        index = np.unravel_index(int(bad[0]), precisions.shape)
        where = "".join(f"[{int(i)}]" for i in index)
        value = float(precisions[index])
        raise InvalidArgument(f"precisions_init{where} = {value!r} is too small: its inverse, "
                              "the variance, is not finite")
    return covariances


def _covariances_from_cholesky(precisions_cholesky, covariance_type):
    """The covariances whose precisions have the Cholesky factors given (the inverse of
    _precisions_cholesky): Sigma = (U U^T)^-1 = U^-T U^-1."""
    u = np.asarray(to_host_numpy(precisions_cholesky), dtype=np.float64)
    if not np.all(np.isfinite(u)):
        raise InvalidArgument("precisions_cholesky_ contains NaN or infinity")
    if covariance_type in ("full", "tied"):
        # Any factor with U U^T the precision (scikit-learn's is upper triangular; a lower one,
        # as np.linalg.cholesky gives, evaluates the same there).
        if u.shape[-1] != u.shape[-2]:
            raise InvalidArgument("precisions_cholesky_ must hold square matrices")
        # Sigma = W^T W with W = U^-1: inverting U U^T loses twice the digits of inverting U
        # (its condition number is U's squared), and an inverse not exactly symmetric is read
        # by its one triangle: at a condition number of 1e10 scores were 5e-2 off.
        w = np.linalg.inv(u)
        covariances = w.swapaxes(-1, -2) @ w
        return 0.5 * (covariances + covariances.swapaxes(-1, -2))
    if not np.all(u > 0):
        raise InvalidArgument("precisions_cholesky_ must be positive")
    return 1.0 / u**2


def _precisions_cholesky(covariances, covariance_type, model=None):
    """scikit-learn's precisions_cholesky_: the upper factor U of each precision P = U U^T
    (U = L^-T for the covariance's Cholesky factor L), or 1 / sqrt(variance). `model`, the
    emix model of those covariances, computes U as the E-step does: threaded, in the CPU's
    instruction set, a third of np.linalg.inv's work (which took a sixth of a fit's time at
    D = 2048); a covariance that does not factor is then named below."""
    covariances = np.asarray(covariances)
    if covariance_type in ("full", "tied"):
        if model is not None:
            try:
                return model.precisions_cholesky(engine_options("cpu").n_threads)
            except _emix.NumericalError:
                pass
        try:
            lower = np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError:
            d = covariances.shape[-1]
            for c, matrix in enumerate(covariances.reshape(-1, d, d)):
                try:
                    np.linalg.cholesky(matrix)
                except np.linalg.LinAlgError:
                    raise_not_positive(c, covariance_type)
            raise
        return np.swapaxes(np.linalg.inv(lower), -1, -2)
    bad = np.flatnonzero(~(covariances.reshape(-1) > 0))
    if bad.size:
        raise_not_positive(int(bad[0]) // (covariances.shape[-1] if covariances.ndim == 2 else 1),
                            covariance_type)
    return 1.0 / np.sqrt(covariances)


def raise_not_positive(component, covariance_type):
    """InvalidArgument for a model the M-step gave (emix.maximize) with reg_covar = 0 or with
    rows so far apart that their scatter overflows: fit re-seeds such a component, or stops
    with an error that names it."""
    if covariance_type == "tied":  # no component to re-seed: a fit fails on it
        raise InvalidArgument("the tied covariance is not positive definite: the rows lie in a "
                              "subspace (a constant column, or one that combines others) or "
                              "spread beyond double precision (rescale the data); increase "
                              "reg_covar from 0")
    raise InvalidArgument(f"the covariance of component {component} is not positive definite: "
                          "its rows lie in a subspace (a component collapsed; reg_covar > 0 "
                          "prevents it) or spread beyond double precision (rescale the data); "
                          "fit re-seeds such a component")


class GaussianMixture(_BaseMixture):
    """Gaussian mixture fitted by EM on CPUs and NVIDIA GPUs, with scikit-learn's API.

    A drop-in for :class:`sklearn.mixture.GaussianMixture` with the same parameters and fitted
    attributes, plus ``device``, ``dtype``, ``fixed_weights``, ``callback`` and sample
    weights. From the same initial parameters it takes the same EM steps as scikit-learn
    (within 1e-10 relative in float64 a step, measured 1e-15 to 1.3e-12; over many slowly
    converging steps of components hundreds of standard deviations apart, up to a few 1e-10);
    see Notes for where it differs.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': each component its own covariance matrix; 'tied': one shared matrix; 'diag':
        each component its own diagonal; 'spherical': each component one variance.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean (per-sample) log-likelihood. 0 runs
        exactly ``max_iter`` iterations.
    reg_covar : float, default=1e-6
        Added to the diagonal of the covariances, keeping them positive definite.
    max_iter : int, default=100
        Most EM iterations (M-steps) per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest final log-likelihood is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the initial parameters are found. 'kmeans': greedy k-means++ seeding (2 + ln K
        candidates a step, as scikit-learn's) then up to 10 k-means (Lloyd) steps;
        'k-means++': the seeding alone, each point assigned to its nearest seed;
        'random': random responsibilities; 'random_from_data': random distinct rows as seeds,
        each point assigned to its nearest seed (as 'k-means++' assigns to its seeds).
        Initialisation looks at a random sample of at most 131,072 rows.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights.
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances), of shape (n_components,) for 'spherical',
        (n_features, n_features) for 'tied', (n_components, n_features) for 'diag' and
        (n_components, n_features, n_features) for 'full'. emix starts from the covariances
        they invert to, exact to about (condition number) x 1e-16 relative, where
        scikit-learn evaluates the precision as given (a review measured the first step's
        log-likelihood 1e-7 apart at a condition number of 1e10).
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation and of :meth:`sample`. An int is emix's seed itself, so
        ``random_state=s`` fits exactly as ``emix fit --seed s``.
    warm_start : bool, default=False
        If True, a fit starts from the previous fit's parameters (and ``n_init`` is 1).
    verbose : int, default=0
        1 prints each initialisation and the outcome; 2 also every ``verbose_interval``
        iterations.
    verbose_interval : int, default=10
        Iterations between two progress lines at ``verbose=2``.
    device : {'auto', 'cpu', 'gpu'}, default='auto'
        Where the E-step runs. 'auto': the GPU when one answers (and always for data in GPU
        memory), else the CPU.
    dtype : {None, 'float32', 'float64'}, default=None
        Element type the data are read in. None keeps float32 and float64 input as it is and
        converts anything else to float64. Parameters, and per-row results (``predict_proba``,
        ``score_samples``), are always float64 arrays (scikit-learn returns float32 ones for
        float32 data under its own initialisation). Float32 data are computed at float32's
        accuracy: per-row log-densities within about 1e-5 of double's, responsibilities within
        about 1e-6 (some paths of the CPU engine take them in double). Pass
        ``dtype='float64'`` for double accuracy. 'float32' on NumPy arrays, pandas or polars
        frames or lists of values float32 may not hold (float64, integers) warns where the rounding
        loses more than 1e-4 of a column's spread (data far from the origin, epoch times): a
        FitWarning from fit (also in ``report_.warnings``) and partial_fit, a UserWarning
        from the evaluations; other array-likes, chunk sources and Dask arrays are rounded
        where they are read, and not judged.
    fixed_weights : bool, default=False
        Keep the initial mixing weights throughout the fit.
    callback : callable, default=None
        Called as ``callback(info)`` after each iteration's E-step of ``fit`` with an
        :class:`emix.IterationInfo`; an exception it raises stops the fit and propagates.
        :meth:`partial_fit`, one step per call whose outcome it returns, calls neither the
        callback nor ``verbose``'s output.
    step_decay : float, default=0.6
        :meth:`partial_fit` (online EM): step t has size (t + step_offset)^-step_decay;
        in (0.5, 1].
    step_offset : float or 'auto', default='auto'
        :meth:`partial_fit`: >= 1 (1: the first batch's statistics replace the initial
        model's outright). 'auto': 1 for a stream that starts the model, and W / B + 1 for
        one that goes on from ``fit`` on data of total weight W with a first batch of weight
        B, so that the fit counts as W / B batches (with 1 the first batch replaced it).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Mixing weights.
    means_ : ndarray of shape (n_components, n_features)
        Component means.
    covariances_ : ndarray
        Covariances, shaped as ``precisions_init``.
    precisions_ : ndarray
        Inverses of the covariances.
    precisions_cholesky_ : ndarray
        Cholesky factors of the precisions (scikit-learn's convention).
    converged_ : bool
        Whether the fit converged.
    n_iter_ : int
        M-steps taken by the best initialisation.
    lower_bound_ : float
        Mean (per-sample, weighted) log-likelihood of the data under the fitted parameters.
    lower_bounds_ : ndarray of shape (n_iter_,)
        Mean log-likelihood measured by each iteration's E-step, under the parameters before
        its M-step (the initial ones first), as scikit-learn's; the returned parameters' value
        is ``lower_bound_``, and ``report_.history`` holds all ``n_iter_ + 1``. Empty where
        no fit made the parameters (``partial_fit``, ``emix.maximize``, a model file without a
        fit section).
    n_features_in_ : int
        Number of features seen during fit.
    report_ : emix.FitReport or None
        The fit's report: history, engine, warnings, timings. None where no fit made the
        parameters (as for ``lower_bounds_``).

    See Also
    --------
    sklearn.mixture.GaussianMixture : The reference implementation.
    emix.load_model : A model file (``emix fit -o``) as a fitted estimator.

    Notes
    -----
    Where emix differs from scikit-learn:

    * Convergence is tested on the log-likelihood of the current parameters before another
      M-step, so the returned parameters are those whose log-likelihood ``lower_bound_``
      reports. scikit-learn takes one more M-step after its test: its ``lower_bound_`` belongs
      to the parameters before the last M-step, and its ``n_iter_`` is one more than emix's
      for the same run. With ``tol=0`` both run ``max_iter`` M-steps to the same parameters.
      A fit that converges on its last allowed M-step therefore reports ``converged_=True``
      without a ConvergenceWarning where scikit-learn, which needs one step more, reports
      False and warns (with ``max_iter=1`` emix can converge, scikit-learn cannot).
    * ``'kmeans'`` initialisation is greedy k-means++ seeding refined by up to 10 Lloyd steps
      (scikit-learn runs k-means to convergence), on a random sample of at most 131,072 rows.
      ``'k-means++'`` assigns every row to its nearest seed (scikit-learn gives the seeds
      alone responsibility 1, much like ``'random_from_data'``).
      ``'random_from_data'`` starts from the M-step of each row's nearest random row
      (scikit-learn from those rows with covariances of ``reg_covar``, which makes its first
      E-step that nearest-row assignment).
    * ``lower_bounds_`` holds scikit-learn's values (each E-step's, from the same start the
      same numbers); ``lower_bound_`` is the returned parameters' (above).
    * The parameters are taken from ``covariances_``, or from ``precisions_cholesky_`` when
      that was assigned after the fit (scikit-learn reads only the latter).
    * Empty or collapsing components are re-seeded at a random row and reported (a
      :class:`emix.FitWarning` and ``report_.warnings``) instead of failing. A step that
      re-seeded does not count toward convergence; a fit that re-seeds to its end (a far row
      or duplicated rows with ``reg_covar=0``, where scikit-learn usually raises too) raises
      :class:`emix.NumericalError`, unless another of the ``n_init`` restarts did not. A
      tied covariance that is singular with ``reg_covar=0`` raises at once (scikit-learn may
      go on with one whose smallest eigenvalue is rounding).
    * Each component's weight sum is used as it is: scikit-learn adds ``10 * eps`` to it, so a
      nearly empty component's parameters differ by about ``10 * eps / N_k`` (the exact M-step
      is emix's).
    * When only some of ``weights_init``, ``means_init`` and ``precisions_init`` are given,
      initialisation ``r`` runs emix's initialisation with seed ``random_state + r`` and
      replaces the given parameters.
    * Sample weights are supported (repetition counts); :meth:`sample` returns the points in
      the order drawn.

    Examples
    --------
    >>> import numpy as np, emix
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(X)
    >>> gm.means_.shape
    (2, 2)
    """

    _family = "gaussian"
    _init_parameters = ("weights", "means", "covariances")

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=0, verbose_interval=10, device="auto", dtype=None,
                 fixed_weights=False, callback=None, step_decay=0.6, step_offset="auto"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype
        self.fixed_weights = fixed_weights
        self.callback = callback
        self.step_decay = step_decay
        self.step_offset = step_offset

    def _family_checks(self):
        return [
            (self.covariance_type in _COVARIANCE_TYPES, "covariance_type",
             "one of 'full', 'diag', 'spherical', 'tied'"),
            (_is_real(self.reg_covar) and self.reg_covar >= 0, "reg_covar", "a float >= 0"),
        ]

    def _family_options(self, options):
        options.covariance = self.covariance_type
        options.reg_covar = float(self.reg_covar)

    def _check_initial_parameters(self, n_features):
        k = self.n_components
        given = {}
        if self.weights_init is not None:
            given["weights"] = check_weights(self.weights_init, k)
        if self.means_init is not None:
            given["means"] = check_shape(self.means_init, (k, n_features), "means")
        if self.precisions_init is not None:
            given["covariances"] = _check_precisions(self.precisions_init, self.covariance_type,
                                                     k, n_features)
        return given

    def _parameters_of(self, model):
        return {"weights": model.weights, "means": model.means,
                "covariances": model.covariances}

    def _make_model(self, n_features, parameters, covariance_type=None):
        c = np.ascontiguousarray
        kind = self.covariance_type if covariance_type is None else covariance_type
        return _emix.Model("gaussian", kind, n_features, 1,
                           c(parameters["weights"], dtype=np.float64),
                           c(parameters["means"], dtype=np.float64),
                           c(parameters["covariances"], dtype=np.float64), None)

    def _model_attributes(self, model):
        cholesky = _precisions_cholesky(model.covariances, self.covariance_type, model)
        if self.covariance_type in ("full", "tied"):
            precisions = cholesky @ np.swapaxes(cholesky, -1, -2)
        else:
            precisions = cholesky**2
        return {"weights_": model.weights, "means_": model.means,
                "covariances_": model.covariances, "precisions_cholesky_": cholesky,
                "precisions_": precisions,
                # What the fit set, to tell a caller's later assignment of it (_model).
                "_fitted_cholesky": cholesky.copy(),
                "_fitted_covariance_type": self.covariance_type}

    def _model_sources(self):
        # scikit-learn evaluates precisions_cholesky_: a caller who assigns it (or builds a model
        # from attributes) gets that; an assigned covariances_ is used too, which scikit-learn
        # would ignore. The fit's own arrays are used as they are, not round-tripped. The fitted
        # model keeps the covariance type it was fitted with: covariance_type, like n_components,
        # describes the next fit (one changed by set_params is refused there).
        state = vars(self)  # one fit's attributes, though another thread's fit commits now
        kind = state.get("_fitted_covariance_type", self.covariance_type)
        covariances = state.get("covariances_")
        cholesky = state.get("precisions_cholesky_")
        fitted = state.get("_fitted_cholesky")
        if cholesky is not None and (fitted is None or covariances is None
                                     or not np.array_equal(cholesky, fitted)):
            sources = {"precisions_cholesky": cholesky}
        elif covariances is None:
            raise AttributeError("neither covariances_ nor precisions_cholesky_ is set")
        else:
            sources = {"covariances": covariances}
        if "means_" not in state:
            raise AttributeError("means_ is not set")
        sources["weights"] = state["weights_"]
        sources["means"] = np.asarray(to_host_numpy(state["means_"]), dtype=np.float64)
        return kind, sources

    def _model_of(self, kind, sources):
        covariances = sources.get("covariances")
        if covariances is None:
            covariances = _covariances_from_cholesky(sources["precisions_cholesky"], kind)
        means = sources["means"]
        return self._make_model(means.shape[1], {"weights": sources["weights"], "means": means,
                                                 "covariances": covariances}, kind)

"""emix.BernoulliMixture and emix.BinomialMixture: mixtures of 0/1 vectors and of counts."""

import numpy as np

from . import _emix
from ._emix import InvalidArgument
from ._arrays import check_dtype_parameter, to_host_numpy
from ._base import _BaseMixture, _is_int, _is_real, check_shape, check_weights

_COMMON_PARAMETERS = """    n_components : int, default=1
        Number of mixture components.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean (per-sample) log-likelihood. 0 runs
        exactly ``max_iter`` iterations.
    max_iter : int, default=100
        Most EM iterations (M-steps) per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest final log-likelihood is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the initial parameters are found (see :class:`emix.GaussianMixture`);
        'random_from_data' starts each component halfway between a random row and the data's
        mean.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights.
    probabilities_init : array-like of shape (n_components, n_features), default=None
        Initial success probabilities, in [0, 1].
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation and of :meth:`sample` (an int is emix's seed itself).
    warm_start : bool, default=False
        If True, a fit starts from the previous fit's parameters (and ``n_init`` is 1).
    verbose : int, default=0
        1 prints each initialisation and the outcome; 2 also every ``verbose_interval``
        iterations.
    verbose_interval : int, default=10
        Iterations between two progress lines at ``verbose=2``.
    device : {'auto', 'cpu', 'gpu'}, default='auto'
        Where the E-step runs ('auto': the GPU when one answers).
    dtype : {None, 'float32', 'float64'}, default=None
        Element type the data are read in (None: float32 and float64 kept, others float64).
        Parameters and per-row results are float64 whatever it is.
    fixed_weights : bool, default=False
        Keep the initial mixing weights throughout the fit.
    prob_epsilon : float, default=1e-10
        Probabilities are kept in [prob_epsilon, 1 - prob_epsilon], so no log is -inf.
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
"""

_COMMON_ATTRIBUTES = """    weights_ : ndarray of shape (n_components,)
        Mixing weights.
    probabilities_ : ndarray of shape (n_components, n_features)
        Success probability of each feature in each component.
    converged_ : bool
        Whether the fit converged.
    n_iter_ : int
        M-steps taken by the best initialisation.
    lower_bound_ : float
        Mean (per-sample, weighted) log-likelihood under the fitted parameters.
    lower_bounds_ : ndarray of shape (n_iter_,)
        Mean log-likelihood measured by each iteration's E-step, under the parameters before
        its M-step (the initial ones first), as scikit-learn's; the returned parameters' value
        is ``lower_bound_``, and ``report_.history`` holds all ``n_iter_ + 1``. Empty where
        no fit made the parameters (``partial_fit``, ``emix.maximize``, a model file without a
        fit section).
    n_features_in_ : int
        Number of features seen during fit.
    report_ : emix.FitReport or None
        The fit's report: history, engine, warnings (identifiability among them), timings.
        None where no fit made the parameters (as for ``lower_bounds_``).
"""


def _number(value):
    """A value as the library's messages write one: a whole number as one, else the shortest
    text that reads back as it (16777217, not 1.67772e+07)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


class _DiscreteMixture(_BaseMixture):
    _init_parameters = ("weights", "probabilities")

    def __sklearn_tags__(self):
        # Counts: a negative value is refused (scikit-learn >= 1.6 reads the tag).
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def _trials(self):
        return 1

    def _check_data_values(self, data):
        # The positive_only tag promises scikit-learn this wording for negative values; the
        # library's own check (which also names values that are not counts) follows. One
        # reduction over the data, without a temporary; where a value is negative, its place and
        # the first value refused.
        x = data.source
        if data.on_device or x.size == 0 or not x.min() < 0:
            return
        trials = self._trials()
        rule = ("a Bernoulli mixture needs 0 or 1" if isinstance(self, BernoulliMixture) else
                f"a binomial mixture with n_trials = {trials} needs a whole number of successes "
                f"in 0..{trials}")
        negative = tuple(int(i) for i in np.unravel_index(np.argmax(x < 0), x.shape))
        first = self._first_value_not_a_count(x)
        said = f"row {negative[0] + 1}, column {negative[1] + 1} is {_number(x[negative])}"
        if first != negative:
            # An earlier value is refused too (0.13 before -0.2 in Gaussian data): named as the
            # first, with the family's rule (the negative value alone said neither).
            said = (f"{said}; the first value refused is row {first[0] + 1}, column "
                    f"{first[1] + 1}: {_number(x[first])}")
        raise InvalidArgument(f"Negative values in data passed to {type(self).__name__}: {said}; "
                              f"{rule}")

    def _first_value_not_a_count(self, x):
        """(row, column) of the first value (in row-major order) that is not a count in
        0 ... trials, as the library finds it; on the error path only (a temporary of x's size)."""
        not_counts = (x < 0) | (x > self._trials()) | (x != np.floor(x))
        return tuple(int(i) for i in np.unravel_index(np.argmax(not_counts), x.shape))

    def _family_checks(self):
        # The library's range: from 2^-53, so that 1 - prob_epsilon is below 1 in double.
        return [(_is_real(self.prob_epsilon) and 2**-53 <= self.prob_epsilon < 0.5,
                 "prob_epsilon", "a float in [2**-53, 0.5)")]

    def _family_options(self, options):
        options.trials = self._trials()
        options.prob_epsilon = float(self.prob_epsilon)

    def _check_initial_parameters(self, n_features):
        k = self.n_components
        given = {}
        if self.weights_init is not None:
            given["weights"] = check_weights(self.weights_init, k)
        if self.probabilities_init is not None:
            p = check_shape(self.probabilities_init, (k, n_features), "probabilities")
            if np.any(p < 0) or np.any(p > 1):
                raise InvalidArgument("The parameter 'probabilities' should be in the range "
                                      f"[0, 1], but got max value {p.max():.5f}, min value "
                                      f"{p.min():.5f}")
            given["probabilities"] = p
        return given

    def _parameters_of(self, model):
        return {"weights": model.weights, "probabilities": model.probabilities}

    def _make_model(self, n_features, parameters, trials=None):
        c = np.ascontiguousarray
        trials = self._trials() if trials is None else trials
        return _emix.Model(self._family, "full", n_features, trials,
                           c(parameters["weights"], dtype=np.float64), None, None,
                           c(parameters["probabilities"], dtype=np.float64))

    def _model_attributes(self, model):
        return {"weights_": model.weights, "probabilities_": model.probabilities,
                # what a later warm start or partial_fit goes on with
                "_fitted_trials": model.trials}

    def _model_sources(self):
        # The fitted model is scored with the trials it was fitted with: n_trials, like
        # n_components, describes the next fit (one changed by set_params is refused there).
        state = vars(self)  # one fit's attributes, though another thread's fit commits now
        if "probabilities_" not in state:
            raise AttributeError("probabilities_ is not set")
        trials = state.get("_fitted_trials")
        # A model built from assigned attributes has no fitted trials: n_trials, as it is now.
        probabilities = np.asarray(to_host_numpy(state["probabilities_"]), dtype=np.float64)
        return self._trials() if trials is None else trials, {
            "weights": state["weights_"], "probabilities": probabilities}

    def _model_of(self, trials, sources):
        return self._make_model(sources["probabilities"].shape[1], sources, trials)


class BernoulliMixture(_DiscreteMixture):
    __doc__ = """Mixture of multivariate Bernoulli distributions (0/1 vectors), fitted by EM.

    Each component k gives feature j the value 1 with probability ``probabilities_[k, j]``,
    independently across features. With one feature and two components this is the classic
    three-coin model, which is not identifiable: the fit then carries a warning.

    Parameters
    ----------
""" + _COMMON_PARAMETERS + """
    Attributes
    ----------
""" + _COMMON_ATTRIBUTES + """
    Notes
    -----
    Data must be 0 or 1 (bool data are read as 0/1); any other value is a ValueError that
    names its row and column. Methods, sample weights, devices and model files work as for
    :class:`emix.GaussianMixture`.

    Examples
    --------
    >>> import numpy as np, emix
    >>> X = (np.random.default_rng(0).random((500, 8)) < 0.3).astype(np.float64)
    >>> bm = emix.BernoulliMixture(n_components=2, random_state=0, device="cpu").fit(X)
    >>> bm.probabilities_.shape
    (2, 8)
    """

    _family = "bernoulli"

    def __init__(self, n_components=1, *, tol=1e-3, max_iter=100, n_init=1,
                 init_params="kmeans", weights_init=None, probabilities_init=None,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10,
                 device="auto", dtype=None, fixed_weights=False, prob_epsilon=1e-10,
                 callback=None, step_decay=0.6, step_offset="auto"):
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.probabilities_init = probabilities_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype
        self.fixed_weights = fixed_weights
        self.prob_epsilon = prob_epsilon
        self.callback = callback
        self.step_decay = step_decay
        self.step_offset = step_offset


class BinomialMixture(_DiscreteMixture):
    __doc__ = """Mixture of binomial distributions (counts of successes out of n_trials), by EM.

    Each component k gives feature j a count ``x`` in 0 ... ``n_trials`` with probability
    ``C(n_trials, x) p^x (1 - p)^(n_trials - x)``, ``p = probabilities_[k, j]``, independently
    across features.

    Parameters
    ----------
""" + _COMMON_PARAMETERS + """    n_trials : int, default=1
        Trials behind every count (each value must be a whole number in [0, n_trials]).

    Attributes
    ----------
""" + _COMMON_ATTRIBUTES + """
    Notes
    -----
    One feature with K components is identifiable only with n_trials >= 2K - 1; below that
    the fit carries a warning. Methods, sample weights, devices and model files work as for
    :class:`emix.GaussianMixture`.

    Examples
    --------
    >>> import numpy as np, emix
    >>> X = np.random.default_rng(0).binomial(10, 0.3, size=(500, 4))
    >>> bm = emix.BinomialMixture(n_components=2, n_trials=10, random_state=0,
    ...                           device="cpu").fit(X)
    >>> bm.probabilities_.shape
    (2, 4)
    """

    _family = "binomial"

    def __init__(self, n_components=1, *, tol=1e-3, max_iter=100, n_init=1,
                 init_params="kmeans", weights_init=None, probabilities_init=None,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10,
                 device="auto", dtype=None, fixed_weights=False, prob_epsilon=1e-10,
                 callback=None, n_trials=1, step_decay=0.6,
                 step_offset="auto"):
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.probabilities_init = probabilities_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype
        self.fixed_weights = fixed_weights
        self.prob_epsilon = prob_epsilon
        self.callback = callback
        self.step_decay = step_decay
        self.step_offset = step_offset
        self.n_trials = n_trials

    def _trials(self):
        return int(self.n_trials)

    def _check_data_values(self, data):
        super()._check_data_values(data)
        # Counts above n_trials, where the first value the library refuses is one: it said
        # "trials = 1" and no parameter, to a caller who never set n_trials (its default is 1).
        x = data.source
        if data.on_device or x.size == 0 or not x.max() > self._trials():
            return
        row, column = self._first_value_not_a_count(x)
        if x[row, column] > self._trials():
            trials = self._trials()
            default = " (the default)" if self.n_trials == 1 else ""
            raise InvalidArgument(
                f"data: row {row + 1}, column {column + 1} is {_number(x[row, column])}, but a "
                f"binomial mixture with n_trials = {trials}{default} needs a whole number of "
                f"successes in 0..{trials}: set n_trials to the number of trials behind each "
                "count")

    def _check_parameters(self):
        super()._check_parameters()
        # float32 holds every whole number up to 2^24 only: a count of 2^24 + 1 would be read
        # as 2^24, taken as a count of 2^24 trials, and more trials' counts as other counts.
        if check_dtype_parameter(self.dtype) == np.float32 and self._trials() >= 2**24:
            raise InvalidArgument(f"dtype='float32' rounds whole numbers above 2^24 = 16777216, "
                                  f"so with n_trials = {self._trials()} counts would be read as "
                                  "other counts; use dtype=None or 'float64'")

    def _family_checks(self):
        return super()._family_checks() + [
            (_is_int(self.n_trials) and 1 <= self.n_trials <= 2**31 - 1, "n_trials",
             "an int in [1, 2147483647]")]

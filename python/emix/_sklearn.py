"""scikit-learn's base classes when scikit-learn is installed, small stand-ins otherwise.

With scikit-learn the estimators are genuine scikit-learn estimators (clone, pipelines,
check_estimator, tags). Without it they keep the same API: get_params / set_params from the
constructor's signature, NotFittedError and ConvergenceWarning of their own.
"""

import inspect

import numpy as np

try:
    from sklearn.base import BaseEstimator, DensityMixin
    from sklearn.exceptions import ConvergenceWarning, NotFittedError
    from sklearn.utils import check_random_state

    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised only where scikit-learn is absent
    HAVE_SKLEARN = False

    class NotFittedError(ValueError, AttributeError):
        """Raised when an estimator is used before it was fitted."""

    class ConvergenceWarning(UserWarning):
        """The best fit did not converge."""

    class BaseEstimator:
        """get_params / set_params from the constructor's keyword arguments."""

        @classmethod
        def _get_param_names(cls):
            signature = inspect.signature(cls.__init__)
            return sorted(p.name for p in signature.parameters.values()
                          if p.name != "self" and p.kind != p.VAR_KEYWORD)

        def get_params(self, deep=True):
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for key, value in params.items():
                if key not in valid:
                    raise ValueError(f"Invalid parameter {key!r} for estimator {self!r}. "
                                     f"Valid parameters are: {valid!r}.")
                setattr(self, key, value)
            return self

        def __getstate__(self):
            # object.__getstate__ exists from Python 3.11 only; the estimators extend this.
            return self.__dict__.copy()

        def __repr__(self):
            defaults = {p.name: p.default
                        for p in inspect.signature(type(self).__init__).parameters.values()}
            changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                       if not (isinstance(v, type(defaults.get(k))) and v is defaults.get(k))
                       and not _equal(v, defaults.get(k))]
            return f"{type(self).__name__}({', '.join(changed)})"

    class DensityMixin:
        """Mixin for density estimators."""

        _estimator_type = "DensityEstimator"

    def check_random_state(seed):
        if seed is None or seed is np.random:
            return np.random.mtrand._rand
        if isinstance(seed, (int, np.integer)):
            return np.random.RandomState(seed)
        if isinstance(seed, np.random.RandomState):
            return seed
        raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


def check_feature_names(estimator, X, reset):
    """scikit-learn's feature-name bookkeeping, where scikit-learn is installed: fitting on a
    DataFrame with string column names sets ``feature_names_in_`` (other input removes it), and
    data with other names later is an error or a warning, as for scikit-learn's estimators."""
    if not HAVE_SKLEARN:
        return
    try:
        from sklearn.utils.validation import _check_feature_names
    except ImportError:  # scikit-learn before 1.6: a method of BaseEstimator
        method = getattr(estimator, "_check_feature_names", None)
        if method is not None:
            method(X, reset=reset)
        return
    _check_feature_names(estimator, X, reset=reset)


def fitted_feature_names(estimator, X):
    """The feature_names_in_ that fitting `estimator` on X sets (None: none), checked as
    check_feature_names(reset=True) checks them, without setting them: a fit stores them with
    its model, in one commit."""
    scratch = type(estimator).__new__(type(estimator))
    check_feature_names(scratch, X, reset=True)
    return scratch.__dict__.get("feature_names_in_")


def _equal(a, b):
    try:
        return bool(a == b)
    except Exception:
        return False

"""Model files: the JSON format of the emix program (``emix fit -o``, ``emix score``)."""

import json
import os

from . import _emix
from ._base import FitReport
from ._discrete import BernoulliMixture, BinomialMixture
from ._gaussian import GaussianMixture


def load_model(path):
    """Read a model file (the ``emix`` program's JSON format) as a fitted estimator.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``emix fit -o``, :meth:`GaussianMixture.save` or the C API.

    Returns
    -------
    estimator : GaussianMixture, BernoulliMixture or BinomialMixture
        Fitted: its parameters are the file's, so ``predict``, ``score`` and ``sample`` work.
        When the file has a "fit" section (it records the fit that made it), ``report_``,
        ``converged_``, ``n_iter_`` and ``lower_bound_`` come from it; otherwise ``report_``
        is None, ``converged_`` False, ``n_iter_`` 0 and ``lower_bound_`` NaN.

    Raises
    ------
    emix.IoError
        The file cannot be read or is not a model file (an ``OSError``).
    emix.InvalidArgument
        The parameters are invalid (a ``ValueError`` naming the file and the value).
    """
    path = os.fspath(path)
    model, fit_text = _emix.read_model_and_fit(path)  # one read: the file may change
    if model.family == "gaussian":
        estimator = GaussianMixture(n_components=model.n_components,
                                    covariance_type=model.covariance)
    elif model.family == "bernoulli":
        estimator = BernoulliMixture(n_components=model.n_components)
    else:
        estimator = BinomialMixture(n_components=model.n_components, n_trials=model.trials)
    estimator._set_model(model)
    estimator.n_features_in_ = model.n_features
    fit = json.loads(fit_text) if fit_text else None
    if isinstance(fit, dict):
        report = FitReport._from_json(fit, path)
        estimator.report_ = report
        estimator.converged_ = report.converged
        estimator.n_iter_ = report.n_iter
        estimator.lower_bound_ = report.mean_log_likelihood
    else:
        estimator.report_ = None
        estimator.converged_ = False
        estimator.n_iter_ = 0
        estimator.lower_bound_ = float("nan")
    return estimator

"""Model files: the JSON format of the emix program (``emix fit -o``, ``emix score``)."""

import base64
import copy
import json
import math
import os

import numpy as np

from . import _emix
from ._base import MACHINE_PARAMETERS, FitReport
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
        ``converged_``, ``n_iter_``, ``lower_bound_`` and ``lower_bounds_`` come from it;
        otherwise ``report_`` is None, ``converged_`` False, ``n_iter_`` 0, ``lower_bound_``
        NaN and ``lower_bounds_`` empty. When it has an
        "estimator" section (:meth:`GaussianMixture.save` writes one), the estimator's
        parameters (``reg_covar``, ``tol``, ...) and ``feature_names_in_`` come from it;
        parameters this version does not know are ignored. Otherwise (a file of ``emix fit``)
        they are the defaults. A model saved after ``partial_fit`` keeps its stream there:
        ``n_iter_`` (steps) and ``lower_bound_`` come from it, and ``partial_fit`` goes on with
        it.

    Raises
    ------
    emix.IoError
        The file cannot be read or is not a model file (an ``OSError``).
    emix.InvalidArgument
        The parameters are invalid (a ``ValueError`` naming the file and the value).
    """
    # One read: the file may change.
    model, fit_text, estimator_text = _emix.read_model_and_sections(os.fsencode(path))
    path = os.fsdecode(path)  # as the messages below name it
    if model.family == "gaussian":
        estimator = GaussianMixture(n_components=model.n_components,
                                    covariance_type=model.covariance)
    elif model.family == "bernoulli":
        estimator = BernoulliMixture(n_components=model.n_components)
    else:
        estimator = BinomialMixture(n_components=model.n_components, n_trials=model.trials)
    online = None
    section = json.loads(estimator_text) if estimator_text else None
    if section is not None:  # "estimator": null, which the library keeps as it is, is none
        online = _restore_estimator(estimator, section, model, path)
    estimator._set_model(model)
    estimator.n_features_in_ = model.n_features
    fit = json.loads(fit_text) if fit_text else None
    if isinstance(fit, dict):
        report = FitReport._from_json(fit, path)
        estimator.report_ = report
        estimator.converged_ = report.converged
        estimator.n_iter_ = report.n_iter
        estimator.lower_bound_ = np.float64(report.mean_log_likelihood)
        # As a fit sets it: each E-step's mean log-likelihood, the history (totals) over the
        # total weight the file's two log-likelihoods imply.
        weight = (report.log_likelihood / report.mean_log_likelihood
                  if report.mean_log_likelihood != 0 else float("nan"))
        estimator.lower_bounds_ = np.asarray(report.history[:-1], dtype=np.float64) / weight
        if np.isfinite(weight) and weight > 0:
            estimator._fit_weight_ = float(weight)  # what partial_fit's step_offset='auto' weighs
    else:
        estimator.report_ = None
        estimator.converged_ = False
        estimator.n_iter_ = 0
        estimator.lower_bound_ = np.float64("nan")
        estimator.lower_bounds_ = np.empty(0, dtype=np.float64)
    if online is not None:  # as partial_fit left it; its next step goes on with the stream
        checkpoint, offset = online
        estimator._online_checkpoint_ = checkpoint
        estimator._online_offset_ = offset
        estimator.n_iter_ = checkpoint[1]
        estimator.lower_bound_ = np.float64(checkpoint[2])
    return estimator


def _restore_estimator(estimator, section, model, path):
    """Parameters and feature_names_in_ from a model file's "estimator" section
    (_base._estimator_section); n_components, covariance_type and n_trials are the model's."""
    def bad(key, value, expected):
        raise _emix.IoError(f"{path}: \"estimator\" entry \"{key}\" is {value!r}, expected "
                            f"{expected}")

    if not isinstance(section, dict):
        bad("estimator", section, "an object")
    kind = section.get("class")
    if kind != type(estimator).__name__:
        bad("class", kind, f"{type(estimator).__name__!r}, as the model's family is "
                           f"{model.family!r}")
    params = section.get("params", {})
    if not isinstance(params, dict):
        bad("params", params, "an object")
    known = set(estimator.get_params(deep=False)) - {"n_components", "covariance_type",
                                                     "n_trials", *MACHINE_PARAMETERS}
    estimator.set_params(**{name: value for name, value in params.items() if name in known})
    seed = params.get("random_state")
    if not (seed is None or (isinstance(seed, int) and not isinstance(seed, bool)
                             and 0 <= seed < 2**64)):
        bad("params.random_state", seed, "null or a whole number in [0, 2**64)")
    # What a fit would refuse later, refused at the file: the parameters and the starting ones.
    # n_components is the model's, which a fit's initialisation bounds but a model need not be
    # (a file of 140,000 components, which this function's save wrote, was refused).
    probe = copy.copy(estimator)
    probe.n_components = min(model.n_components, _emix.FitOptions().init_max_rows)
    try:
        probe._check_parameters()
        estimator._check_initial_parameters(model.n_features)
    except (ValueError, TypeError) as error:  # emix.InvalidArgument, or NumPy's of a bad array
        raise _emix.IoError(f"{path}: \"estimator\" params: {error}") from None
    names = section.get("feature_names_in")
    if names is not None:
        if not (isinstance(names, list) and len(names) == model.n_features
                and all(isinstance(name, str) for name in names)):
            bad("feature_names_in", names, f"a list of {model.n_features} strings")
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    online = section.get("online")
    return None if online is None else _online_checkpoint(online, estimator, model, bad, path)


def _online_checkpoint(online, estimator, model, bad, path):
    """A partial_fit stream's state from the "estimator" section's "online" entry
    (_base._estimator_section), checked against the model as partial_fit would resume it:
    ((running statistics' bytes, steps, last mean log-likelihood), step offset)."""
    if not isinstance(online, dict):
        bad("online", online, "an object")
    steps = online.get("steps")
    if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0):
        bad("online.steps", steps, "an integer >= 0")
    offset = online.get("step_offset")
    if not (isinstance(offset, (int, float)) and not isinstance(offset, bool)
            and math.isfinite(offset) and offset > 0):
        bad("online.step_offset", offset, "a number > 0")
    last = online.get("last_mean_log_likelihood")
    if last is None:
        last = float("nan")
    elif not (isinstance(last, (int, float)) and not isinstance(last, bool)):
        bad("online.last_mean_log_likelihood", last, "a number or null")
    encoded = online.get("running_statistics")
    try:
        running = base64.b64decode(encoded, validate=True)
    except (TypeError, ValueError):
        shown = encoded[:40] + "..." if isinstance(encoded, str) and len(encoded) > 40 else encoded
        bad("online.running_statistics", shown, "base64 text")
    try:
        _emix.OnlineEm.resume(model, float(estimator.step_decay), float(offset),
                              _emix.MStepOptions(), _emix.Statistics.deserialize(running),
                              steps, float(last))
    except _emix.InvalidArgument as error:
        raise _emix.IoError(f"{path}: \"estimator\" entry \"online\": {error}") from None
    return (running, steps, float(last)), float(offset)

"""Model selection: a grid of K x covariance types fitted in one go and scored by BIC, AIC, ICL."""

import errno
import os
from collections.abc import Iterable

import numpy as np

from . import _emix
from ._warnings import warn
from ._emix import InvalidArgument
from ._arrays import as_data, check_dtype_parameter
from ._chunks import adapter_for, converts_beyond_memory, is_chunk_source, named_sample
from ._sklearn import ConvergenceWarning, check_feature_names, fitted_feature_names

_CRITERIA = ("bic", "aic", "icl")
_FAMILIES = ("gaussian", "bernoulli", "binomial")


_FAILED = "failed, and left out of the choice: "


def _failure(candidate):
    """A failed candidate's error (select.cpp states it among its warnings), else ''."""
    if not candidate.failed:
        return ""
    for warning in candidate.fit.warnings:
        if warning.startswith(_FAILED):
            return warning[len(_FAILED):]
    return "failed"


class SelectResult:
    """What :func:`emix.select` found.

    Attributes
    ----------
    candidates : list of dict
        One per candidate, covariance types in the given order, then K, with the columns of
        ``emix select --table``: ``n_components``, ``covariance_type`` (None for the discrete
        families), ``log_likelihood`` (total, weighted), ``mean_log_likelihood`` (per unit of
        weight), ``n_parameters``, ``bic``, ``aic``, ``icl``, ``n_iter``, ``converged``,
        ``seconds`` (the candidate's own fit time; candidates share passes over the data, so
        these overlap), ``best`` (the chosen one), ``failed`` and ``error``: a candidate the
        data cannot support (a singular covariance with
        ``reg_covar=0``, say) has ``failed`` True, the reason in ``error`` ('' otherwise), a
        log-likelihood of -inf and infinite criteria, and is left out of the choice.
    table : pandas.DataFrame or list of dict
        ``candidates`` as a DataFrame when pandas is importable.
    criterion : str
        The criterion that chose ``best_``.
    best_index_ : int
        Index of the best candidate (the lowest criterion; the first on ties).
    best_ : dict
        That candidate's row.
    best_estimator_ : GaussianMixture, BernoulliMixture or BinomialMixture
        The best candidate as a fitted estimator, equal to ``fit`` of an estimator with the
        same parameters (``estimator(i)`` gives candidate ``candidates[i]``); emix.dask's
        estimators when the data were a Dask array or DataFrame.
    engine : str
        Where the E-steps ran.
    seconds : float
        Wall time of the whole selection.
    passes : int
        Passes over the data (E-steps of all active candidates together).
    """

    def __init__(self, report, estimators, criterion, report_family="gaussian"):
        self._estimators = estimators
        self.criterion = criterion
        self.engine = report.engine
        self.seconds = report.seconds
        self.passes = report.passes
        self.best_index_ = int(report.best)
        # The columns of `emix select --table`, in its order (its "covariance" is
        # covariance_type here, as the estimators call it).
        self.candidates = [{
            "n_components": c.n_components,
            "covariance_type": c.covariance if report_family == "gaussian" else None,
            "log_likelihood": c.fit.log_likelihood,
            "mean_log_likelihood": c.fit.mean_log_likelihood,
            "n_parameters": c.n_parameters,
            "bic": c.bic,
            "aic": c.aic,
            "icl": c.icl,
            "n_iter": c.fit.n_iter,
            "converged": c.fit.converged,
            "seconds": c.fit.seconds,
            "best": index == self.best_index_,
            "failed": c.failed,
            "error": _failure(c),
        } for index, c in enumerate(report.candidates)]

    @property
    def table(self):
        try:
            import pandas
        except ImportError:
            return list(self.candidates)
        return pandas.DataFrame(self.candidates)

    @property
    def best_(self):
        return self.candidates[self.best_index_]

    @property
    def best_estimator_(self):
        return self._estimators[self.best_index_]

    def estimator(self, index):
        """Candidate `index` (a position in ``candidates``) as a fitted estimator; a
        candidate that failed has none (ValueError giving its error)."""
        row = self.candidates[index]
        if row["failed"]:
            raise InvalidArgument(f"candidate {index} (n_components={row['n_components']}, "
                                  f"covariance_type={row['covariance_type']!r}) failed: "
                                  f"{row['error']}")
        return self._estimators[index]

    def plot(self, path_or_ax=None, criteria=_CRITERIA):
        """Draw the criteria against K, a line per criterion and covariance type.

        Parameters
        ----------
        path_or_ax : str, os.PathLike or matplotlib Axes, optional
            A file to write (its format from the extension, PNG for ``.png``), or the axes to
            draw on; None draws on a new figure.
        criteria : sequence of str, default=('bic', 'aic', 'icl')

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib
        from matplotlib.ticker import MaxNLocator

        criteria = [criteria] if isinstance(criteria, str) else list(criteria)
        for criterion in criteria:
            if criterion not in _CRITERIA:
                raise InvalidArgument(f"plot: criteria must be among {_CRITERIA}, got "
                                      f"{criterion!r}")
        ax = None
        path = None
        if path_or_ax is not None and hasattr(path_or_ax, "plot"):
            ax = path_or_ax
        else:
            path = path_or_ax
            # matplotlib would write a folder's name plus ".png" beside it.
            if isinstance(path, (str, os.PathLike)) and os.path.isdir(path):
                error = _emix.IsADirectoryIoError(f"{os.fsdecode(path)}: cannot write the "
                                                  f"plot: it is a folder")
                error.errno, error.strerror = errno.EISDIR, os.strerror(errno.EISDIR)
                error.filename = os.fsdecode(path)
                raise error
        if ax is None:
            if path is not None:
                from matplotlib.figure import Figure

                figure = Figure(figsize=(6.4, 4.2))
                ax = figure.add_subplot()
            else:
                import matplotlib.pyplot as plt

                _, ax = plt.subplots()
        styles = {"bic": "-", "aic": "--", "icl": ":"}
        types = list(dict.fromkeys(c["covariance_type"] for c in self.candidates))
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        for t, covariance in enumerate(types):
            rows = sorted((c for c in self.candidates if c["covariance_type"] == covariance),
                          key=lambda c: c["n_components"])  # K given in any order
            ks = [c["n_components"] for c in rows]
            for criterion in criteria:
                ax.plot(ks, [c[criterion] for c in rows], styles.get(criterion, "-"),
                        marker="o", markersize=3, color=colours[t % len(colours)],
                        label=criterion.upper() + (f" ({covariance})" if covariance else ""))
        best = self.best_
        ax.plot([best["n_components"]], [best[self.criterion]], "k*", markersize=12,
                label=f"best by {self.criterion.upper()}")
        ax.set_xlabel("number of components K")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no K = 1.5
        ax.set_ylabel("criterion (lower is better)")
        ax.legend(fontsize="small")
        if path is not None:
            ax.figure.tight_layout()
            ax.figure.savefig(path, dpi=100)
        return ax

    def __repr__(self):
        b = self.best_
        return (f"SelectResult({len(self.candidates)} candidates, best by {self.criterion}: "
                f"n_components={b['n_components']}, covariance_type={b['covariance_type']!r})")


def select(X, n_components=range(1, 11), covariance_types=("full", "diag", "spherical", "tied"),
           *, family="gaussian", n_trials=1, n_init=1, criterion="bic", random_state=0,
           device="auto", sample_weight=None, max_iter=100, tol=1e-3, reg_covar=1e-6,
           prob_epsilon=1e-10, init_params="kmeans", dtype=None):
    """Fit a grid of mixtures, score each by BIC, AIC and ICL, and pick the best.

    Every candidate (each K with each covariance type, each with ``n_init`` restarts) is fitted
    by the same EM as ``fit``; all candidates still iterating run in lock-step passes over
    the data (on the CPU each window of rows, and from a chunk source each chunk, is read once
    for all of them), and one that has converged drops out. The result is bitwise
    deterministic: the same data and parameters choose the same model every time.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), or a chunk source
        The data (host or device, as ``fit`` takes them), or a chunk source as ``fit`` takes
        it (``emix.chunked(...)``, a memory-mapped array, h5py, pyarrow, a re-iterable of
        arrays); its sample weights then come from the source. A Dask array or DataFrame is
        selected on where its blocks are: each pass is one task per block (on the cluster's
        workers when a dask.distributed Client is active) returning the block's statistics,
        and only block 0 and the initialisation's sampled rows come to this process.
    n_components : int or iterable of int, default=range(1, 11)
        The K grid (the default is ``emix select``'s: 1..10).
    covariance_types : iterable of str, default=('full', 'diag', 'spherical', 'tied')
        Gaussian covariance types to try (each must be one of these; the discrete families
        take none and ignore them). The default is ``emix select``'s too.
    family : {'gaussian', 'bernoulli', 'binomial'}, default='gaussian'
    n_trials : int, default=1
        Trials of the binomial family.
    n_init, max_iter, tol, reg_covar, prob_epsilon, init_params, dtype
        As the estimators take them (reg_covar for the Gaussian family, prob_epsilon for the
        discrete ones).
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        Lower is better: BIC = -2 log L + p log W, AIC = -2 log L + 2 p, ICL = BIC + twice
        the (weighted) entropy of the responsibilities, with W the sum of the weights.
    random_state : int, RandomState instance or None, default=0
        Seed of every candidate's initialisation. An int makes the result reproducible; a
        RandomState (None: NumPy's global one) gives one seed drawn from it, as the
        estimators draw theirs, shared by every candidate.
    device : {'auto', 'cpu', 'gpu'}, default='auto'
    sample_weight : array-like of shape (n_samples,), optional
        With a Dask array X, a NumPy array, a Dask array or a Dask Series (rechunked to X's
        blocks of rows).

    Returns
    -------
    SelectResult
        The table, the best candidate and a fitted estimator for each candidate.
    """
    from ._base import _check_sample_weight, _is_int, _is_real, warn_float32_rounding
    from ._discrete import BernoulliMixture, BinomialMixture
    from ._gaussian import _COVARIANCE_TYPES, GaussianMixture

    if family not in _FAMILIES:
        raise InvalidArgument(f"family must be one of {_FAMILIES}, got {family!r}")
    if criterion not in _CRITERIA:
        raise InvalidArgument(f"criterion must be one of {_CRITERIA}, got {criterion!r}")
    if not _is_int(random_state):
        # One draw for the whole grid, so that every candidate starts as its own fit with that
        # seed would (the estimators draw theirs the same way).
        from ._sklearn import check_random_state
        try:
            random_state = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        except ValueError as e:
            raise InvalidArgument(f"random_state: {e}") from None
    # One K, not an error: as one covariance type may be given as a string.
    if isinstance(n_components, np.ndarray) and n_components.ndim == 0:
        n_components = n_components.item()  # np.array(3): one K, as 3
    if _is_int(n_components):
        ks = [n_components]
    elif isinstance(n_components, Iterable) and not isinstance(n_components, (str, bytes)):
        ks = list(n_components)
    else:
        raise InvalidArgument(f"n_components must be an int or an iterable of ints, got "
                              f"{n_components!r}")
    for k in ks:
        if not _is_int(k):
            raise InvalidArgument(f"n_components must be ints, got {k!r}")
    ks = [int(k) for k in ks]
    for i, k in enumerate(ks):
        if not 1 <= k <= _emix.FitOptions().init_max_rows:
            most = _emix.FitOptions().init_max_rows
            raise InvalidArgument(f"n_components must be ints in [1, {most}] (emix draws the "
                                  f"components among a sample of at most {most} rows), got {k}")
        if k in ks[:i]:  # a candidate fitted twice, as `emix select -k 1,1` refuses it
            raise InvalidArgument(f"n_components: K = {k} is given twice")
    if isinstance(covariance_types, str):  # one type, not its letters
        covariance_types = [covariance_types]
    if not isinstance(covariance_types, Iterable):
        raise InvalidArgument(f"covariance_types must be a covariance type or a list of them, "
                              f"got {covariance_types!r}")
    # Checked whatever the family: each applies to one kind, and a bad value is a mistake.
    if not (_is_real(reg_covar) and 0 <= reg_covar < float("inf")):
        raise InvalidArgument(f"reg_covar must be a finite float >= 0, got {reg_covar!r}")
    if not (_is_real(prob_epsilon) and 2**-53 <= prob_epsilon < 0.5):
        raise InvalidArgument(f"prob_epsilon must be a float in [2**-53, 0.5), got "
                              f"{prob_epsilon!r}")
    types = list(covariance_types)
    for i, t in enumerate(types):
        if t not in _COVARIANCE_TYPES:
            raise InvalidArgument(f"covariance_types must be among {_COVARIANCE_TYPES}, got {t!r}")
        if t in types[:i]:
            raise InvalidArgument(f"covariance_types: {t!r} is given twice")
    if family != "gaussian":
        types = ["full"]
    if not ks or not types:
        raise InvalidArgument("select: the grid is empty")

    dask_data = type(X).__module__.split(".")[0] in ("dask", "dask_expr")
    if dask_data:
        # emix.dask's: their predict, score and bic on the Dask data run block by block, where
        # the in-memory estimators' would compute the whole array in this process.
        from .dask import BernoulliMixture, BinomialMixture, GaussianMixture  # noqa: F811

    def estimator(k, covariance):
        common = dict(n_components=k, n_init=n_init, random_state=random_state, device=device,
                      max_iter=max_iter, tol=tol, init_params=init_params, dtype=dtype)
        if family == "gaussian":
            return GaussianMixture(covariance_type=covariance, reg_covar=reg_covar, **common)
        if family == "bernoulli":
            return BernoulliMixture(prob_epsilon=prob_epsilon, **common)
        return BinomialMixture(n_trials=n_trials, prob_epsilon=prob_epsilon, **common)

    template = estimator(ks[0], types[0])
    template._check_parameters()
    options = template._options(template._seed())
    named = named_sample(X)  # read before a Dask frame becomes chunks of a Dask array
    rounding = None  # chunks and Dask blocks are rounded where they are read, unjudged
    if dask_data or is_chunk_source(X) or converts_beyond_memory(X, check_dtype_parameter(dtype)):
        # Out of core: each chunk is read once per pass for every candidate still running. A
        # Dask array's (or DataFrame's) blocks compute their statistics where they are.
        if dask_data:
            from .dask import _RemoteBlocks, _as_dask_array

            source = _RemoteBlocks(_as_dask_array(X), sample_weight,
                                   check_dtype_parameter(dtype), device)
        else:
            source = adapter_for(X, sample_weight, check_dtype_parameter(dtype))
        n_features = source.peek_features()
        if (getattr(source, "first_frame", None) is not None
                and fitted_feature_names(template, named) is None):
            named = source.first_frame  # an iterable of frames: its names, read with chunk 0
        report = _emix.select_chunks(source, ks, [str(t) for t in types], criterion, options)
        if source.n_samples < 2:  # known once the chunks were read; as for an array
            raise InvalidArgument("Found 1 sample in the chunks while a minimum of 2 is "
                                  "required by emix.select.")
        total = float(source.weight_total)
    else:
        data = as_data(X, check_dtype_parameter(dtype), "emix.select", min_samples=2)
        # Once, not for every candidate.
        rounding = warn_float32_rounding(X, check_dtype_parameter(dtype), "emix.select")
        if data.n_samples < 2:  # as fit refuses it, each candidate being that fit
            raise InvalidArgument(f"Found array with {data.n_samples} sample(s) (shape="
                                  f"{(data.n_samples, data.n_features)}) while a minimum of 2 "
                                  "is required by emix.select.")
        weights = _check_sample_weight(sample_weight, data.n_samples)
        report = _emix.select(data.view, ks, [str(t) for t in types], criterion, options, weights)
        total = float(weights.sum()) if weights is not None else float(data.n_samples)
        n_features = data.n_features
    estimators, unconverged = [], []
    for c in report.candidates:
        covariance = c.covariance if family == "gaussian" else "full"
        name = f"K = {c.n_components}" + (f", {covariance}" if family == "gaussian" else "")
        failed = c.failed
        e = estimator(c.n_components, covariance)
        # The rounding's warning among each candidate's, as fit records it (select emitted it
        # once, above).
        e._set_fitted(c.fit, n_features, total, failed=failed, candidate=name,
                      recorded_warnings=[rounding] if rounding else ())
        check_feature_names(e, named, reset=True)  # a DataFrame's, as fit records
        estimators.append(e)
        if not e.converged_ and max_iter > 0 and not failed:
            unconverged.append(name)
    if unconverged:  # once, naming them: one warning a candidate said the same thing again
        warn(f"{len(unconverged)} of {len(report.candidates)} candidates did not converge "
             f"({'; '.join(unconverged)}). Try different init parameters, or increase "
             "max_iter, tol, or check for degenerate data.", ConvergenceWarning)
    return SelectResult(report, estimators, criterion, family)

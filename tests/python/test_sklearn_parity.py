"""emix.GaussianMixture against sklearn.mixture.GaussianMixture from the same initial parameters.

For each covariance type both fit the same 500 x 3 data (an overlapping 3-component mixture)
from the same weights, means and precisions, with tol=0 and max_iter=T for T = 1, 2, 5, 20, so
both take exactly T E- and M-steps and return theta(T). Compared, each on its own scale (the
relative max-norm difference max|a - b| / max|b| of the whole array; an element-wise ratio
would blow up on off-diagonal covariances and means near zero):

* weights_, means_, covariances_, precisions_, precisions_cholesky_: theta(T);
* emix's lower_bounds_ against sklearn's (where sklearn has it), and lower_bounds_[T - 1] against
  sklearn's lower_bound_: the mean log-likelihood each E-step measured, the last under
  theta(T - 1), before the last M-step;
* emix's lower_bound_ (the mean log-likelihood under the returned theta(T), emix's convention)
  against sklearn's score(X);
* per-row results of the two fitted models: score_samples, predict_proba, predict; and bic, aic.

Tolerance 1e-10. Both compute the same algorithm in float64 and differ only in summation order
and in how the log-density is formed, a few ulps (~1e-15) per step; on overlapping data the EM
map contracts, so after 20 iterations the differences stay near 1e-13 (printed with -s). 1e-10
leaves three orders of margin and still catches a real difference in the algorithm:
test_parity_catches_a_different_algorithm runs emix with reg_covar 1.1e-6 against sklearn's
1e-6 and requires the comparison to fail.
"""

import warnings

import numpy as np
import pytest

from conftest import overlapping_mixture

sklearn_mixture = pytest.importorskip("sklearn.mixture",
                                      reason="scikit-learn is needed for the parity tests")
import emix  # noqa: E402

TOLERANCE = 1e-10
N, D, K = 500, 3, 3
SEEDS = {"full": 20240501, "diag": 20240502, "spherical": 20240503, "tied": 20240504}


def relative(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


def initial_parameters(covariance_type, seed, x=None):
    """Data (`x`, or an overlapping mixture of N x D) and initial parameters in sklearn's shapes:
    unequal weights, means at random rows, covariances from the data's (scaled per component so
    they differ), as precisions."""
    if x is None:
        x = overlapping_mixture(seed, N, D, K)
    n, d = x.shape
    rng = np.random.default_rng(seed + 1)
    weights = rng.uniform(0.5, 1.5, size=K)
    weights /= weights.sum()
    means = x[rng.choice(n, size=K, replace=False)].copy()
    cov = np.cov(x, rowvar=False)
    scales = rng.uniform(0.5, 1.5, size=K)
    if covariance_type == "full":
        precisions = np.stack([np.linalg.inv(s * cov) for s in scales])
    elif covariance_type == "diag":
        precisions = np.stack([1.0 / (s * np.diag(cov)) for s in scales])
    elif covariance_type == "spherical":
        precisions = 1.0 / (scales * np.trace(cov) / d)
    else:
        precisions = np.linalg.inv(cov)
    return x, dict(weights_init=weights, means_init=means, precisions_init=precisions)


def fit_both(covariance_type, iterations, emix_reg_covar=1e-6, x=None):
    x, init = initial_parameters(covariance_type, SEEDS[covariance_type], x)
    common = dict(n_components=K, covariance_type=covariance_type, tol=0.0,
                  max_iter=iterations, random_state=0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 never converges
        # init_params is ignored when all three initial parameters are given; 'random' only
        # saves sklearn a k-means run.
        theirs = sklearn_mixture.GaussianMixture(reg_covar=1e-6, init_params="random",
                                                 **common).fit(x)
        ours = emix.GaussianMixture(reg_covar=emix_reg_covar, device="cpu", **common).fit(x)
    return x, ours, theirs


def differences(x, ours, theirs, iterations):
    return {
        "weights": relative(ours.weights_, theirs.weights_),
        "means": relative(ours.means_, theirs.means_),
        "covariances": relative(ours.covariances_, theirs.covariances_),
        "precisions": relative(ours.precisions_, theirs.precisions_),
        "precisions_cholesky": relative(ours.precisions_cholesky_, theirs.precisions_cholesky_),
        "ll(T-1)": relative(ours.lower_bounds_[iterations - 1], theirs.lower_bound_),
        "ll(T)": relative(ours.lower_bound_, theirs.score(x)),
        "score_samples": relative(ours.score_samples(x), theirs.score_samples(x)),
        "predict_proba": relative(ours.predict_proba(x), theirs.predict_proba(x)),
        "bic": relative(ours.bic(x), theirs.bic(x)),
        "aic": relative(ours.aic(x), theirs.aic(x)),
        # scikit-learn >= 1.7 only: compared where it has them, not with emix's own.
        **({"lower_bounds": relative(ours.lower_bounds_, np.asarray(theirs.lower_bounds_))}
           if hasattr(theirs, "lower_bounds_") else {}),
    }


@pytest.mark.parametrize("iterations", [1, 2, 5, 20])
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_same_iterates_as_sklearn(covariance_type, iterations):
    x, ours, theirs = fit_both(covariance_type, iterations)
    assert ours.n_iter_ == iterations == theirs.n_iter_
    assert ours.lower_bounds_.shape == (iterations,)
    diffs = differences(x, ours, theirs, iterations)
    print(covariance_type, "seed", SEEDS[covariance_type], "T", iterations,
          " ".join(f"{name}={value:.1e}" for name, value in diffs.items()))
    bad = {name: value for name, value in diffs.items() if not value <= TOLERANCE}
    assert not bad, (f"{covariance_type} T={iterations} seed={SEEDS[covariance_type]}: "
                     f"differences above {TOLERANCE:.0e}: {bad}")
    ours_labels, their_labels = ours.predict(x), theirs.predict(x)
    np.testing.assert_array_equal(ours_labels, their_labels)
    # The types too: code written for scikit-learn's estimator may test or rely on them.
    assert ours_labels.dtype == their_labels.dtype
    assert type(ours.lower_bound_) is type(theirs.lower_bound_)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_same_iterates_as_sklearn_at_high_dimension(covariance_type):
    """D = 130, past the D = 3 cases' path: full and tied models there run component by
    component in register blocks, and a tied model projects each row once, about one point.
    The components' covariances are well conditioned (singular values of their factors in
    0.7-1.3), and each has several times D rows: the precisions of ill-conditioned ones differ by
    their condition times eps between any two float64 inversions (5e-8 for overlapping_mixture's
    at 600 rows), whatever the algorithm."""
    iterations = 5
    rng = np.random.default_rng(20240505)
    n, d = 3000, 130
    labels = rng.choice(K, size=n, p=[0.5, 0.3, 0.2])
    x = rng.normal(scale=0.3, size=(K, d))[labels]
    for c in range(K):
        factor = np.eye(d) + rng.normal(scale=0.3 / np.sqrt(d), size=(d, d))
        rows = labels == c
        x[rows] += rng.normal(size=(rows.sum(), d)) @ factor.T
    x, ours, theirs = fit_both(covariance_type, iterations, x=x)
    diffs = differences(x, ours, theirs, iterations)
    print(covariance_type, "D 130 T", iterations,
          " ".join(f"{name}={value:.1e}" for name, value in diffs.items()))
    bad = {name: value for name, value in diffs.items() if not value <= TOLERANCE}
    assert not bad, f"{covariance_type} at D = 130: differences above {TOLERANCE:.0e}: {bad}"
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_parity_catches_a_different_algorithm(covariance_type):
    """The comparison can fail: emix with reg_covar 1.1e-6 instead of 1e-6 differs by more
    than the tolerance (covariances by ~1e-8 relative)."""
    x, ours, theirs = fit_both(covariance_type, 5, emix_reg_covar=1.1e-6)
    assert relative(ours.covariances_, theirs.covariances_) > TOLERANCE


def test_sklearn_converges_one_m_step_later():
    """With tol > 0 both stop on the same test of the same iterates, but sklearn takes one more
    M-step after it: its n_iter_ is emix's + 1 and its lower_bound_ is emix's."""
    x, init = initial_parameters("full", SEEDS["full"])
    common = dict(n_components=K, tol=1e-3, max_iter=200, random_state=0, **init)
    theirs = sklearn_mixture.GaussianMixture(init_params="random", **common).fit(x)
    ours = emix.GaussianMixture(device="cpu", **common).fit(x)
    assert ours.converged_ and theirs.converged_
    assert theirs.n_iter_ == ours.n_iter_ + 1
    assert relative(ours.lower_bound_, theirs.lower_bound_) <= TOLERANCE


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_a_nearly_symmetric_precision_is_taken_as_sklearn_takes_it(covariance_type):
    """A precisions_init symmetric only to np.allclose's tolerance (the upper triangle 1e-7
    relative off the lower) passes both libraries' checks; scikit-learn factors its upper
    triangle. emix refused it ("covariance 0 is not symmetric", a covariance never given) and,
    once accepted, must take the same matrix: the iterates then agree as in the tests above,
    where the lower triangle would put them 4e-8 apart."""
    x, init = initial_parameters(covariance_type, SEEDS[covariance_type])
    precisions = np.array(init["precisions_init"], dtype=np.float64)
    matrices = precisions.reshape(-1, D, D)
    matrices[:, 0, 1] *= 1 + 1e-7
    matrices[:, 1, 2] *= 1 - 1e-7
    init["precisions_init"] = matrices.reshape(precisions.shape)
    common = dict(n_components=K, covariance_type=covariance_type, tol=0.0, max_iter=2,
                  random_state=0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sklearn_mixture.GaussianMixture(init_params="random", **common).fit(x)
        ours = emix.GaussianMixture(device="cpu", **common).fit(x)
    diffs = differences(x, ours, theirs, 2)
    bad = {name: value for name, value in diffs.items() if not value <= TOLERANCE}
    assert not bad, f"{covariance_type}: differences above {TOLERANCE:.0e}: {bad}"

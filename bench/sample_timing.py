"""sample() against its peers, a million draws each: scikit-learn's GaussianMixture.sample for
full and diag Gaussians (16 features, 16 components), and NumPy's own draws for Bernoulli
(D = 50, K = 8: uniforms below p) and binomial mixtures (m = 1000, 200,000 draws:
Generator.binomial). The best of two rounds each. To compare two builds side by side, give each
one's Python package folder in turn:

    python bench/sample_timing.py build/python
    python bench/sample_timing.py /tmp/old-build/python
"""
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "build/python")
import emix  # noqa: E402
from sklearn.mixture import GaussianMixture as SklearnMixture  # noqa: E402

warnings.filterwarnings("ignore")
rng = np.random.default_rng(0)


def best_of_two(draw):
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        draw()
        best = min(best, time.perf_counter() - start)
    return best


X = rng.normal(size=(20000, 16)) + rng.integers(0, 4, (20000, 1)) * 3
for covariance in ("full", "diag"):
    ours = emix.GaussianMixture(16, covariance_type=covariance, device="cpu", random_state=0,
                                max_iter=5).fit(X)
    theirs = SklearnMixture(16, covariance_type=covariance, random_state=0, max_iter=5).fit(X)
    t_ours = best_of_two(lambda: ours.sample(10**6))
    t_theirs = best_of_two(lambda: theirs.sample(10**6))
    print(f"gaussian {covariance}: emix {t_ours:.3f} s, scikit-learn {t_theirs:.3f} s, "
          f"scikit-learn / emix {t_theirs / t_ours:.2f}")

for family, trials, n in (("bernoulli", 1, 10**6), ("binomial", 1000, 2 * 10**5)):
    if family == "bernoulli":
        model = emix.BernoulliMixture(8, device="cpu", random_state=0).fit(
            (rng.random((2000, 50)) < 0.5).astype(float))
    else:
        model = emix.BinomialMixture(8, n_trials=trials, device="cpu", random_state=0).fit(
            rng.binomial(trials, 0.5, (2000, 50)).astype(float))
    p = model.probabilities_

    def numpy_draws():
        labels = rng.choice(8, n, p=model.weights_)
        if family == "bernoulli":
            return rng.random((n, 50)) < p[labels]
        return rng.binomial(trials, p[labels])

    t_ours = best_of_two(lambda: model.sample(n))
    t_numpy = best_of_two(numpy_draws)
    print(f"{family}: emix {t_ours:.3f} s, NumPy {t_numpy:.3f} s, NumPy / emix "
          f"{t_numpy / t_ours:.2f}")

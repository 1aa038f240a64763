"""Time per iteration of 1-D mixtures of 32 components, diag, separated and overlapping,
float32 and float64: the CPU engine's direct path for few features
(bench/results/cpu-direct-diag-few-features-2026-12-05.md).

A/B of two builds, alternated:
    for b in build-before build; do PYTHONPATH=$b/python python3 bench/direct_diag_few_features.py; done
"""
import warnings

import numpy as np

import emix

warnings.simplefilter("ignore")
N, D, K = 200_000, 1, 32


def make_data(separated, dtype, seed=0):
    rng = np.random.default_rng(seed)
    centres = (rng.permutation(K) * 12.0 if separated else rng.normal(size=K) * 0.5)[:, None]
    scales = rng.uniform(0.5, 1.5, (K, D))
    labels = rng.choice(K, N, p=rng.dirichlet(np.full(K, 5.0)))
    x = rng.standard_normal((N, D)) * scales[labels] + centres[labels]
    return x.astype(dtype)


for separated in (True, False):
    for dtype in ("float32", "float64"):
        x = make_data(separated, dtype)
        start = emix.GaussianMixture(K, covariance_type="diag", max_iter=0, tol=0,
                                     random_state=0, device="cpu", dtype="float64").fit(x)
        # Every component starts with the pooled variance (as a k-means start gives it).
        pooled = np.full((K, D), 1.0 / float(np.average(start.covariances_[:, 0],
                                                        weights=start.weights_)))
        gm = emix.GaussianMixture(K, covariance_type="diag", tol=0, max_iter=8, device="cpu",
                                  weights_init=start.weights_, means_init=start.means_,
                                  precisions_init=pooled).fit(x)
        seconds = np.median(gm.report_.iteration_seconds[1:])
        print(f"{'sep' if separated else 'ovl'} {dtype}: {seconds * 1e3:.1f} ms per iteration")

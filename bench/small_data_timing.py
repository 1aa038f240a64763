"""Small data, where a parallel region's wake-ups outweigh the work: breast_cancer (569 x 30,
standardised), K = 3, 20 EM iterations from the same start in emix and scikit-learn, three
rounds per covariance type. Run it on an idle machine and beside a busy one, e.g.

    for i in 1 2; do timeout 60 sh -c 'while :; do :; done' & done
    OMP_NUM_THREADS=2 PYTHONPATH=build/python python bench/small_data_timing.py
"""
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.mixture import GaussianMixture as SklearnMixture
from sklearn.preprocessing import StandardScaler

import emix

warnings.filterwarnings("ignore")
X = StandardScaler().fit_transform(load_breast_cancer().data)
N, D = X.shape
K, T = 3, 20
rng = np.random.default_rng(1)
means = X[rng.choice(N, K, replace=False)]
weights = np.full(K, 1 / K)
variances = np.diag(np.cov(X.T))
precisions = {"diag": np.repeat((1 / variances)[None], K, 0),
              "spherical": np.full(K, 1 / variances.mean()),
              "full": np.repeat(np.linalg.inv(np.cov(X.T))[None], K, 0)}
for covariance in sys.argv[1:] or ["diag", "spherical", "full"]:
    common = dict(covariance_type=covariance, tol=0, max_iter=T, weights_init=weights,
                  means_init=means, precisions_init=precisions[covariance])
    for _ in range(3):
        start = time.perf_counter()
        ours = emix.GaussianMixture(K, device="cpu", **common).fit(X)
        ours_s = time.perf_counter() - start
        theirs = SklearnMixture(K, warm_start=True, **common)
        theirs._initialize(X, None)  # the same start, without scikit-learn's k-means
        theirs.converged_, theirs.lower_bound_ = False, -np.inf
        start = time.perf_counter()
        theirs.fit(X)
        theirs_s = time.perf_counter() - start
        iterations = np.asarray(ours.report_.iteration_seconds)
        print(f"{covariance:9s} emix {ours_s * 1e3:7.1f} ms (iteration median "
              f"{np.median(iterations) * 1e3:.2f} ms, max {iterations.max() * 1e3:.2f} ms)  "
              f"scikit-learn {theirs_s * 1e3:6.1f} ms  ratio {ours_s / theirs_s:5.2f}")

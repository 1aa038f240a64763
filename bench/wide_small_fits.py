"""emix against scikit-learn on few rows of many features (diag and spherical), where a fit's
one-off costs and the tile size show: seconds per iteration of a whole fit (wall time / n_iter),
the first iteration's time and the median of the others (emix's report), both libraries from
the same initial parameters, tol 0 and the same max_iter, the minimum of 3 interleaved runs.

    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive PYTHONPATH=build/python \\
        build/python-venv/bin/python bench/wide_small_fits.py [--spread 10]

--spread: the means' spread in standard deviations (0.5, the default: overlapping clusters;
10: well separated).
"""
import argparse
import time
import warnings

import numpy as np
import emix
from sklearn.mixture import GaussianMixture as SkGaussianMixture

CASES = [  # covariance, N, D, K, dtype
    ("spherical", 300, 4096, 1, np.float64),
    ("spherical", 1000, 2048, 1, np.float64),
    ("diag", 1000, 2048, 1, np.float64),
    ("spherical", 1000, 2048, 4, np.float64),
    ("diag", 1000, 1024, 4, np.float64),
    ("diag", 1000, 2048, 1, np.float32),
    ("diag", 10000, 512, 4, np.float64),
    ("diag", 10000, 128, 8, np.float64),
    ("spherical", 100000, 32, 16, np.float64),
]
ITERATIONS = 20


def data(n, d, k, dtype, seed=0, spread=0.5):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=spread, size=(k, d))  # in standard deviations of the clusters
    return (means[rng.integers(k, size=n)] + rng.normal(size=(n, d))).astype(dtype)


def start(x, k, covariance):
    rows = np.random.default_rng(1).choice(len(x), size=k, replace=False)
    variance = x.astype(np.float64).var(axis=0)
    precisions = (np.tile(1 / variance, (k, 1)) if covariance == "diag"
                  else np.full(k, 1 / variance.mean()))
    return dict(weights_init=np.full(k, 1 / k), means_init=x[rows].astype(np.float64),
                precisions_init=precisions)




def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spread", type=float, default=0.5)
    spread = parser.parse_args().spread
    warnings.filterwarnings("ignore")
    print(f"emix {emix.__version__}; means spread {spread} sd; {ITERATIONS} iterations, tol 0; "
          "ms per iteration")
    print("case | emix wall/iter | emix first | emix others | sklearn wall/iter | emix/sklearn")
    for covariance, n, d, k, dtype in CASES:
        x = data(n, d, k, dtype, spread=spread)
        init = start(x, k, covariance)
        options = dict(n_components=k, covariance_type=covariance, tol=0, max_iter=ITERATIONS,
                       reg_covar=1e-6, **init)
        ours, theirs, first, others = [], [], [], []
        for _ in range(3):
            fit = emix.GaussianMixture(device="cpu", **options)
            t0 = time.perf_counter()
            fit.fit(x)
            ours.append((time.perf_counter() - t0) / fit.n_iter_)
            seconds = fit.report_.iteration_seconds
            first.append(seconds[0])
            others.append(float(np.median(seconds[1:])))
            reference = SkGaussianMixture(**options)
            t0 = time.perf_counter()
            reference.fit(x)
            theirs.append((time.perf_counter() - t0) / reference.n_iter_)
        name = f"{covariance} {np.dtype(dtype).name} N={n} D={d} K={k}"
        print(f"{name} | {min(ours) * 1e3:.2f} | {min(first) * 1e3:.2f} | "
              f"{min(others) * 1e3:.2f} | {min(theirs) * 1e3:.2f} | {min(ours) / min(theirs):.2f}",
              flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Tied Gaussian mixtures at high D: emix (CPU engine, Python) against scikit-learn.

    python bench/tied_high_d.py [--threads 2] [--iters 5] [--rounds 2] [--cases 256,1024,2048]

(--cases 16,64: below D = 128, where emix expands each row into its products.)

For each case the data are K clusters with one shared, correlated covariance (tied's own
model), their means `spread` apart per coordinate: 0.1 overlaps them (every row shared among
several components), 3 separates them. Both libraries fit the same float64 data from the same
weights, means and precision (tol 0, max_iter --iters, so both take exactly that many E- and
M-steps), alternating, --rounds times; the table gives each one's whole-fit seconds (the median
over rounds), their ratio and both final lower bounds. scikit-learn's BLAS and emix get the same
thread count (threadpoolctl; emix's n_threads through OMP_NUM_THREADS, set before the import).

What the two compute per iteration: scikit-learn's log-densities are K GEMMs of N x D by D x D
(its X @ prec_chol - mu @ prec_chol per component) and its M-step one X^T X; emix's (D >= 128)
are one triangular product per row, U^T (x - m), and |y - z_k|^2 per component, and its scatter
one triangle per component over the rows that component owns or, where components share rows,
one triangle per row pooled over the components (and one per pair that shares a row). Below
D = 128 emix expands each row into u and its products u_a u_b: the log-densities are one
product of those with the components' weights (the quadratic part once, as all components share
it) and the statistics the responsibilities times the linear features and the rows' total
weights times the quadratic ones.
"""

import argparse
import os
import statistics
import sys
import time
import warnings

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--iters", type=int, default=5)
parser.add_argument("--rounds", type=int, default=2)
parser.add_argument("--cases", default="256,1024,2048",
                    help="D values among 16, 64, 256, 1024, 2048 (N = 2e5, 1e5, 2e4, 1e4, 4e3; "
                    "K = 16, 8, 16, 8, 4)")
args = parser.parse_args()
os.environ["OMP_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import threadpoolctl  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

import emix  # noqa: E402

SHAPES = {16: (200_000, 16), 64: (100_000, 8), 256: (20_000, 16), 1024: (10_000, 8),
          2048: (4_000, 4)}


def tied_data(n, d, k, spread, seed):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, spread, (k, d))
    a = rng.normal(0, 1, (d, d)) / np.sqrt(d)
    chol = np.linalg.cholesky(a @ a.T + 0.5 * np.eye(d))
    return means[rng.integers(0, k, n)] + rng.normal(0, 1, (n, d)) @ chol.T + 3.0


def start(x, k, seed):
    rng = np.random.default_rng(seed + 1)
    means = x[rng.choice(len(x), k, replace=False)]
    precision = np.linalg.inv(np.cov(x.T) + 1e-6 * np.eye(x.shape[1]))
    return dict(weights_init=np.full(k, 1.0 / k), means_init=means, precisions_init=precision)


def timed_fit(make, x):
    """Seconds, and the mean log-likelihood the last E-step measured (under the parameters
    before the last M-step: scikit-learn's lower_bound_, emix's lower_bounds_[-1])."""
    model = make()
    began = time.perf_counter()
    model.fit(x)
    seconds = time.perf_counter() - began
    return seconds, (model.lower_bounds_[-1] if isinstance(model, emix.GaussianMixture)
                     else model.lower_bound_)


def main():
    warnings.simplefilter("ignore")  # ConvergenceWarning: tol 0 never converges
    print("| D | N | K | data | emix (s) | scikit-learn (s) | scikit-learn / emix | "
          "lower bounds (emix, scikit-learn) |")
    print("|---|---|---|---|---|---|---|---|")
    for d in (int(v) for v in args.cases.split(",")):
        n, k = SHAPES[d]
        for label, spread in (("overlapping", 0.1), ("separated", 3.0)):
            x = tied_data(n, d, k, spread, d)
            common = dict(n_components=k, covariance_type="tied", tol=0, max_iter=args.iters,
                          reg_covar=1e-6, **start(x, k, d))
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(timed_fit(lambda: emix.GaussianMixture(device="cpu", **common), x))
                with threadpoolctl.threadpool_limits(args.threads):
                    theirs.append(timed_fit(lambda: GaussianMixture(**common), x))
            a = statistics.median(t for t, _ in ours)
            b = statistics.median(t for t, _ in theirs)
            print(f"| {d} | {n} | {k} | {label} | {a:.2f} | {b:.2f} | {b / a:.2f} | "
                  f"{ours[0][1]:.10f}, {theirs[0][1]:.10f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Spherical fits, 20 EM steps from a fixed start, for an A/B of two emix builds.

Run once per build, alternating, with that build's Python package first on PYTHONPATH:

    PYTHONPATH=build/python OMP_WAIT_POLICY=passive build/python-venv/bin/python \
        bench/spherical_ab.py

Prints ms per iteration (the median of the fit report's iteration_seconds, the least of 3 fits)
and the lower bound, on load_digits (pixels constant within a cluster), overlapping blobs and
well-separated blobs (100000 x 32, 16 centres), float64 and float32, K = 8 and 32.
"""
import sys, warnings, numpy as np
warnings.simplefilter("ignore")
import emix
from sklearn.datasets import load_digits
rng = np.random.default_rng(0)
digits = load_digits().data.astype(np.float64)
cases = [("digits", digits)]
centres = rng.normal(0, 8, (16, 32))
cases.append(("blobs-1e5x32", centres[rng.integers(0, 16, 100000)] + rng.normal(size=(100000, 32))))
sep = rng.normal(0, 80, (16, 32))
cases.append(("sep-1e5x32", sep[rng.integers(0, 16, 100000)] + rng.normal(size=(100000, 32))))
for name, x in cases:
    for dtype in (np.float64, np.float32):
        for k in (8, 32):
            xs = x.astype(dtype)
            idx = np.linspace(0, len(x) - 1, k).astype(int)
            init = dict(weights_init=np.full(k, 1 / k), means_init=x[idx],
                        precisions_init=np.full(k, 1 / x.var(0).mean()))
            best = np.inf
            for _ in range(3):
                g = emix.GaussianMixture(k, covariance_type="spherical", tol=0, max_iter=20,
                                         device="cpu", random_state=0, **init).fit(xs)
                best = min(best, float(np.median(g.report_.iteration_seconds)))
            print(f"{name} {np.dtype(dtype).name} K={k}: {best*1e3:.3f} ms/iter ll {g.lower_bound_:.12g}")

"""Evaluations of a few rows against scikit-learn's, side by side in one process: predict and
score_samples of 1, 10 and 1000 rows of a fitted GaussianMixture (CPU engine), every covariance
type, separated (means 3 apart per feature) and overlapping (0.3 apart) data, float64 and
float32; milliseconds per call, the mean over at least 0.3 s of calls.

    PYTHONPATH=build/python build/python-venv/bin/python bench/predict_few_rows.py [SHAPES]

SHAPES: covariance:D:K,... (default full:512:16,full:64:8,tied:64:8,diag:64:8,spherical:64:8).
"""
import sys
import time
import warnings

import numpy as np
from sklearn.mixture import GaussianMixture as SklearnMixture

import emix

warnings.simplefilter("ignore")
shapes = sys.argv[1] if len(sys.argv) > 1 else \
    "full:512:16,full:64:8,tied:64:8,diag:64:8,spherical:64:8"


def per_call(function, x):
    function(x)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 0.3:
        function(x)
        calls += 1
    return 1e3 * (time.perf_counter() - start) / calls


print("covariance     D   K  data         dtype    rows  method          emix ms  sklearn ms  "
      "ratio")
for shape in shapes.split(","):
    covariance, d, k = shape.split(":")
    d, k = int(d), int(k)
    for spacing, data in ((3.0, "separated"), (0.3, "overlapping")):
        rng = np.random.default_rng(0)
        x64 = rng.normal(size=(4000, d)) + rng.integers(0, k, 4000)[:, None] * spacing
        for dtype in (np.float64, np.float32):
            x = x64.astype(dtype)
            ours = emix.GaussianMixture(k, covariance_type=covariance, max_iter=5,
                                        random_state=0, device="cpu").fit(x)
            theirs = SklearnMixture(k, covariance_type=covariance, max_iter=5,
                                    random_state=0).fit(x)
            for rows in (1, 10, 1000):
                for method in ("predict", "score_samples"):
                    a = per_call(getattr(ours, method), x[:rows])
                    b = per_call(getattr(theirs, method), x[:rows])
                    print(f"{covariance:10s} {d:5d} {k:3d}  {data:11s}  {np.dtype(dtype).name:7s} "
                          f"{rows:5d}  {method:13s} {a:9.3f}  {b:10.3f}  {a / b:5.2f}",
                          flush=True)

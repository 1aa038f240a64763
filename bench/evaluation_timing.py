# emix evaluation timing (bench/results/evaluation-far-rows-2026-12-05.md). Usage:
#   PYTHONPATH=build/python python bench/evaluation_timing.py LABEL
# predict_proba and score_samples of 10^6 x 16 rows, K = 8, CPU engine (2 threads): full and
# diag, well-separated (means 80 apart, as `emix generate` makes) and overlapping (8 apart),
# float64 and float32; best of 5 calls each, milliseconds.
import sys, time, warnings
import numpy as np
import emix
warnings.simplefilter("ignore")
rng = np.random.default_rng(4)
n, d, k = 1_000_000, 16, 8
for spread, name in [(80.0, "separated"), (8.0, "overlapping")]:
    centres = rng.uniform(-spread / 2, spread / 2, size=(k, d))
    X64 = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    for dtype in (np.float64, np.float32):
        X = X64.astype(dtype)
        for cov in ("full", "diag"):
            g = emix.GaussianMixture(k, covariance_type=cov, max_iter=3, random_state=0,
                                     device="cpu").fit(X[:100_000])
            row = []
            for method in ("predict_proba", "score_samples"):
                best = 1e9
                for _ in range(5):
                    t = time.perf_counter(); getattr(g, method)(X); best = min(best, time.perf_counter() - t)
                row.append(f"{method} {1e3 * best:7.1f} ms")
            print(f"{sys.argv[1]:4s} {name:11s} {np.dtype(dtype).name:7s} {cov:4s}  " + "  ".join(row), flush=True)

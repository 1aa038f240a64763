"""The CPU engine's direct diag / spherical tiles: time per EM iteration against the tile's rows.

    PYTHONPATH=build/python build/python-venv/bin/python bench/direct_diag_tiles.py SCALE [COV...]

Data: N x D rows about K means drawn at SCALE times the unit spread (SCALE 100 separates them
enough for the direct path; a small SCALE lets an expansion point serve them), float64 and
float32; each row of output is one case, `rows:ms` for the build's own rule (0) and for each
explicit `EngineOptions.block_rows`: the median iteration of 8, best of 3, 2 threads.
bench/results/cpu-direct-diag-tiles-2026-12-07.md has what it measured.
"""
import sys
import warnings

import numpy as np

import emix
from emix import _base

warnings.simplefilter("ignore")
scale = float(sys.argv[1])
only = sys.argv[2:]
engine = _base._BaseMixture._engine


def with_rows(rows):
    def options(self):
        e = engine(self)
        e.block_rows = rows
        return e
    return options


rng = np.random.default_rng(0)
for n, d, k in [(200000, 16, 8), (100000, 64, 8), (100000, 256, 8), (20000, 1024, 8),
                (3000, 1024, 16), (300, 4096, 16)]:
    for cov in ("diag", "spherical"):
        for dtype in ("float64", "float32"):
            if only and cov not in only:
                continue
            means = rng.normal(size=(k, d)) * scale
            x = (rng.normal(size=(n, d)) + means[rng.integers(0, k, n)]).astype(dtype)
            start = emix.GaussianMixture(k, covariance_type=cov, max_iter=0, random_state=0,
                                         device="cpu").fit(x)
            times = []
            for rows in [0, 16, 32, 64, 128, 256, 512, 1024]:
                _base._BaseMixture._engine = with_rows(rows)
                best = np.inf
                for _ in range(3):
                    fitted = emix.GaussianMixture(
                        k, covariance_type=cov, max_iter=8, tol=0, device="cpu",
                        weights_init=start.weights_, means_init=start.means_,
                        precisions_init=start.precisions_).fit(x)
                    best = min(best, float(np.median(fitted.report_.iteration_seconds[1:-1])))
                times.append(f"{rows}:{best * 1e3:.2f}")
            _base._BaseMixture._engine = engine
            print(f"{cov:9s} {dtype} {n}x{d} K={k}", " ".join(times), flush=True)

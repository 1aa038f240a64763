"""emix vs scikit-learn, full and tied covariance, over a spread of (N, D, K, dtype, spread).

Modelled on bench/wide_small_fits.py: both libraries from the same initial
parameters (weights_init, means_init, precisions_init), tol 0, the same max_iter, wall time of
fit / n_iter, min of 3 interleaved runs; emix's report_ gives first / other iterations.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive PYTHONPATH=build/python \
      build/python-venv/bin/python bench/full_tied_sweep.py [--out results.jsonl] \
      [--only 'full float64 N=1000 D=256 K=8 s=0.5'] [--list]

max_iter is chosen per shape from a 2-iteration calibration fit of each library (also a
warm-up): as many iterations (2..20) as keep 3 x (emix + sklearn) under ~14 s.
"""
import argparse
import json
import os
import resource
import time
import warnings

import numpy as np
import emix
from sklearn.mixture import GaussianMixture as SkGaussianMixture

NS = [200, 1000, 10_000, 100_000, 1_000_000]
DS = [1, 2, 3, 8, 16, 32, 64, 128, 256]
KS = [1, 2, 8, 32, 64]
VARIANTS = [(np.float64, 0.5), (np.float32, 10.0), (np.float64, 10.0), (np.float32, 0.5)]
INIT_REG = 0.0
BUDGET = 14.0
RUNS = 3
ITERS = 0


def busy_seconds():
    """(all CPUs' busy seconds, this process's CPU seconds): their difference over a shape is
    what other processes ran meanwhile."""
    f = [int(v) for v in open('/proc/stat').readline().split()[1:]]
    hz = os.sysconf('SC_CLK_TCK')
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (sum(f) - f[3] - f[4]) / hz, r.ru_utime + r.ru_stime


def shapes():
    out = []
    for ci, cov in enumerate(["full", "tied"]):
        v = 0 if cov == "full" else 1
        for ni, n in enumerate(NS):
            ds = [d for d in DS if (d < 128 or n <= 10_000) and (n < 1_000_000 or d <= 32)]
            for di, d in enumerate(ds):
                kv = [k for k in KS if n >= 50 * k]
                picks = 1 if n == 200 else 2
                j = di + 2 * ci + ni
                ks = sorted({kv[j % len(kv)], kv[(j + 2) % len(kv)]}) if picks == 2 else [kv[j % len(kv)]]
                for k in ks:
                    dtype, spread = VARIANTS[v % 4]
                    v += 1
                    out.append((cov, n, d, k, dtype, spread))
    return out


def name(s):
    cov, n, d, k, dtype, spread = s
    return f"{cov} {np.dtype(dtype).name} N={n} D={d} K={k} s={spread:g}"


def data(n, d, k, dtype, seed=0, spread=0.5):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=spread, size=(k, d))
    return (means[rng.integers(k, size=n)] + rng.normal(size=(n, d))).astype(dtype)


def start(x, k, covariance):
    rows = np.random.default_rng(1).choice(len(x), size=k, replace=False)
    c = np.atleast_2d(np.cov(x.astype(np.float64).T))
    if INIT_REG:  # N <= D: the sample covariance is singular; ridge it before inverting
        c = c + INIT_REG * np.trace(c) / len(c) * np.eye(len(c))
    precision = np.linalg.inv(c)
    precisions = np.tile(precision, (k, 1, 1)) if covariance == "full" else precision
    return dict(weights_init=np.full(k, 1 / k), means_init=x[rows].astype(np.float64),
                precisions_init=precisions)


def cross_score(model, x, cov):
    """emix's final parameters, scored by scikit-learn's code."""
    t = SkGaussianMixture(n_components=model.weights_.shape[0], covariance_type=cov)
    t.weights_, t.means_ = model.weights_, model.means_
    t.precisions_cholesky_, t.covariances_ = model.precisions_cholesky_, model.covariances_
    return float(t.score(x))


def run(s):
    cov, n, d, k, dtype, spread = s
    rec0 = dict(shape=name(s))
    if n * k * d * d > 4e10:
        return dict(rec0, skipped="N*K*D^2 > 4e10: over the per-shape budget")
    x = data(n, d, k, dtype, spread=spread)
    init = start(x, k, cov)
    base = dict(n_components=k, covariance_type=cov, tol=0, reg_covar=1e-6, **init)
    rec = dict(shape=name(s), cov=cov, n=n, d=d, k=k, dtype=np.dtype(dtype).name, spread=spread)
    # calibration + warm-up
    t0 = time.perf_counter()
    emix.GaussianMixture(device="cpu", max_iter=2, **base).fit(x)
    te = time.perf_counter() - t0
    t0 = time.perf_counter()
    SkGaussianMixture(max_iter=2, **base).fit(x)
    ts = time.perf_counter() - t0
    per_iter = (te + ts) / 2
    iters = int(min(20, max(2, BUDGET / (3 * per_iter)))) if not ITERS else ITERS
    if 3 * iters * per_iter > 45:
        rec.update(skipped=f"too slow: calibration {te:.2f}+{ts:.2f} s for 2 iterations")
        return rec
    options = dict(max_iter=iters, **base)
    ours, theirs, first, others, setup, initt = [], [], [], [], [], []
    for _ in range(RUNS):
        fit = emix.GaussianMixture(device="cpu", **options)
        t0 = time.perf_counter()
        fit.fit(x)
        ours.append((time.perf_counter() - t0) / fit.n_iter_)
        r = fit.report_
        sec = np.asarray(r.iteration_seconds)
        first.append(float(sec[0]))
        others.append(float(np.median(sec[1:])) if len(sec) > 1 else float("nan"))
        setup.append(float(getattr(r, "setup_seconds", float("nan")) or 0))
        initt.append(float(getattr(r, "init_seconds", float("nan")) or 0))
        reference = SkGaussianMixture(**options)
        t0 = time.perf_counter()
        reference.fit(x)
        theirs.append((time.perf_counter() - t0) / reference.n_iter_)
    ll_emix = float(fit.report_.mean_log_likelihood)
    ll_sk = float(reference.score(x))
    ll_cross = cross_score(fit, x, cov)
    rec.update(iters=iters, n_iter_emix=int(fit.n_iter_), n_iter_sk=int(reference.n_iter_),
               emix_ms=min(ours) * 1e3, emix_first_ms=min(first) * 1e3,
               emix_others_ms=min(others) * 1e3, emix_setup_ms=min(setup) * 1e3,
               emix_init_ms=min(initt) * 1e3, sk_ms=min(theirs) * 1e3,
               ratio=min(ours) / min(theirs), engine=fit.report_.engine,
               precision=fit.report_.precision,
               ll_emix=ll_emix, ll_sk=ll_sk, ll_cross=ll_cross,
               ll_rel=abs(ll_emix - ll_sk) / abs(ll_sk),
               ll_cross_rel=abs(ll_cross - ll_sk) / abs(ll_sk))
    return rec


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="results.jsonl")
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--list", action="store_true")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--iters", type=int, default=0, help="max_iter (0: from the calibration)")
    p.add_argument("--init-reg", type=float, default=0.0)
    a = p.parse_args()
    global INIT_REG, RUNS, ITERS
    INIT_REG, RUNS, ITERS = a.init_reg, a.runs, a.iters
    warnings.filterwarnings("ignore")
    todo = shapes()
    if a.only:
        todo = [
            (c, int(n[2:]), int(d[2:]), int(k[2:]), np.dtype(t).type, float(sp[2:]))
            for c, t, n, d, k, sp in (o.split() for o in a.only)]
    if a.list:
        for s in todo:
            print(name(s))
        print(len(todo), "shapes")
        return
    print(f"emix {emix.__version__}; {len(todo)} shapes; ms per iteration", flush=True)
    print("shape | iters | emix wall/iter | first | others | setup | sklearn wall/iter | "
          "emix/sk | LL rel diff", flush=True)
    with open(a.out, "a") as f:
        for s in todo:
            t0 = time.perf_counter()
            b0, o0 = busy_seconds()
            try:
                rec = run(s)
            except Exception as e:  # noqa: BLE001
                rec = dict(shape=name(s), error=f"{type(e).__name__}: {e}")
            rec["shape_seconds"] = time.perf_counter() - t0
            b1, o1 = busy_seconds()
            rec["other_cpu_seconds"] = round((b1 - b0) - (o1 - o0), 2)
            rec["runs"] = RUNS
            f.write(json.dumps(rec) + "\n")
            f.flush()
            if "ratio" in rec:
                print(f"{rec['shape']} | {rec['iters']} | {rec['emix_ms']:.3f} | "
                      f"{rec['emix_first_ms']:.3f} | {rec['emix_others_ms']:.3f} | "
                      f"{rec['emix_setup_ms']:.3f} | {rec['sk_ms']:.3f} | {rec['ratio']:.3f} | "
                      f"{rec['ll_rel']:.1e} ({rec['shape_seconds']:.1f} s, other CPU {rec['other_cpu_seconds']} s)", flush=True)
            else:
                print(rec, flush=True)


if __name__ == "__main__":
    main()

"""Bernoulli and binomial EM iterations against a NumPy EM on the same data and start.

NumPy's EM is the textbook one on BLAS: log-densities X logit^T + sum log(1 - p) + log w (one
GEMM), a log-sum-exp, then S = R^T X (a second GEMM). emix runs its CPU engine. Both start
from the same parameters and take the same iterations; the median seconds per iteration of each
are printed side by side, with the two final mean log-likelihoods (which must agree: emix's
float32 is within 1e-4 relative, float64 within 1e-10).

Shapes: binarised-image-like (6e4 x 784, K = 10 and 40), wide (2e4 x 2000, K = 50), tall and
narrow (1e6 x 16, K = 8; 2e5 x 100, K = 20), and counts of m = 20 trials (1e5 x 200, K = 16);
float64 and float32, each family's data drawn from a known mixture with well-separated and with
overlapping components.

    OMP_NUM_THREADS=2 python bench/discrete_timing.py [build/python] [--quick]
"""
import sys
import time

import warnings

import numpy as np

args = [a for a in sys.argv[1:] if not a.startswith("--")]
sys.path.insert(0, args[0] if args else "build/python")
import emix  # noqa: E402

warnings.filterwarnings("ignore")
QUICK = "--quick" in sys.argv
ITERATIONS = 3 if QUICK else 5


def draw(n, d, k, trials, separated, rng):
    """Rows of a known mixture: centres drawn far apart (separated) or near each other."""
    spread = 3.0 if separated else 0.4
    logits = rng.normal(scale=spread, size=(k, d))
    p = 1.0 / (1.0 + np.exp(-logits))
    labels = rng.integers(0, k, n)
    if trials == 1:
        return (rng.random((n, d)) < p[labels]).astype(np.float64), labels
    return rng.binomial(trials, p[labels]).astype(np.float64), labels


def numpy_em(x, trials, weights, p, iterations, eps=1e-10):
    """Returns (median seconds per iteration, final mean log-likelihood)."""
    times = []
    n = x.shape[0]
    dtype = x.dtype
    for _ in range(iterations):
        start = time.perf_counter()
        pc = np.clip(p, eps, 1 - eps)
        logit = (np.log(pc) - np.log1p(-pc)).astype(dtype)
        bias = (trials * np.log1p(-pc).sum(axis=1) + np.log(weights)).astype(dtype)
        log_density = x @ logit.T + bias
        top = log_density.max(axis=1, keepdims=True)
        resp = np.exp(log_density - top)
        total = resp.sum(axis=1, keepdims=True)
        resp /= total
        nk = resp.sum(axis=0, dtype=np.float64)
        s = (resp.T @ x).astype(np.float64)
        weights = nk / n
        p = s / (trials * nk[:, None])
        times.append(time.perf_counter() - start)
    return float(np.median(times)), weights, p


def mean_log_likelihood(x, trials, weights, p):
    """In float64 (without the binomial coefficients, which emix's value includes)."""
    x = x.astype(np.float64)
    pc = np.clip(p, 1e-10, 1 - 1e-10)
    log_density = x @ (np.log(pc) - np.log1p(-pc)).T + trials * np.log1p(-pc).sum(axis=1)
    log_density += np.log(weights)
    top = log_density.max(axis=1, keepdims=True)
    return float(np.mean(top[:, 0] + np.log(np.exp(log_density - top).sum(axis=1))))


def emix_em(x, trials, weights, p, iterations):
    kwargs = dict(n_components=len(weights), max_iter=iterations, tol=0, device="cpu",
                  weights_init=weights, probabilities_init=p)
    if trials == 1:
        model = emix.BernoulliMixture(**kwargs)
    else:
        model = emix.BinomialMixture(n_trials=trials, **kwargs)
    model.fit(x)
    per_iteration = np.asarray(model.report_.iteration_seconds)[1:]
    return float(np.median(per_iteration)), model.weights_, model.probabilities_


SHAPES = [  # (n, d, k, trials)
    (60000, 784, 10, 1),
    (60000, 784, 40, 1),
    (20000, 2000, 50, 1),
    (200000, 100, 20, 1),
    (1000000, 16, 8, 1),
    (100000, 200, 16, 20),
]
if QUICK:
    SHAPES = [(20000, 784, 10, 1), (20000, 2000, 50, 1), (200000, 16, 8, 1), (20000, 200, 16, 20)]

print(f"{'case':<44} {'emix s/it':>10} {'NumPy s/it':>10} {'NumPy/emix':>10} {'|dLL|/|LL|':>10}")
rng = np.random.default_rng(0)
for n, d, k, trials in SHAPES:
    for separated in (True, False):
        x64, labels = draw(n, d, k, trials, separated, rng)
        # Each component starts from a row of its own cluster, so that none empties (which
        # emix re-seeds and NumPy's EM does not).
        first_rows = [int(np.flatnonzero(labels == c)[0]) for c in range(k)]
        start_p = x64[first_rows] / trials * 0.5 + 0.25
        start_w = np.full(k, 1.0 / k)
        for dtype in (np.float64, np.float32):
            x = x64.astype(dtype)
            ours, w_ours, p_ours = emix_em(x, trials, start_w, start_p, ITERATIONS)
            theirs, w_np, p_np = numpy_em(x, trials, start_w, start_p, ITERATIONS)
            ll_ours = mean_log_likelihood(x64, trials, w_ours, p_ours)
            ll_np = mean_log_likelihood(x64, trials, w_np, p_np)
            family = "bernoulli" if trials == 1 else f"binomial m={trials}"
            case = (f"{family} {n}x{d} K={k} {'sep' if separated else 'overlap'} "
                    f"{np.dtype(dtype).name}")
            print(f"{case:<44} {ours:10.4f} {theirs:10.4f} {theirs / ours:10.2f} "
                  f"{abs(ll_ours - ll_np) / abs(ll_np):10.1e}", flush=True)

#!/usr/bin/env python3
"""emix side by side with the tools users would pick instead (issue "Benchmarks: CPU vs GPU vs
scikit-learn, side by side, against the roofline").

Makes each case's data and initial parameters once, then runs every tool from the same initial
parameters for the same number of EM iterations on the same cores (and the same GPU):

  CPU tools (always)
  emix-double    emix fit --device cpu --precision double   (the emix program)
  emix-float     emix fit --device cpu --precision float
  sklearn        sklearn.mixture.GaussianMixture(weights_init, means_init, precisions_init, tol=0)
  armadillo      arma::gmm_full / gmm_diag learn(keep_existing, km_iter=0, var_floor=1e-6)
                 (bench/arma_gmm.cpp)
  GPU tools (--gpu on, or auto with a GPU present)
  emix-gpu-float   emix fit --device gpu --precision float
  emix-gpu-double  emix fit --device gpu --precision double
  sklearn-torch    GaussianMixture under sklearn.config_context(array_api_dispatch=True) on torch
                   float32 tensors on the GPU (where the installed scikit-learn supports it)
  torch-em         a plain PyTorch EM in this file (full and diag, float32, Cholesky-based
                   log-densities as scikit-learn computes them)
  (--torch-device cpu runs the two torch tools on the CPU instead: a check of their code on a
  machine without a GPU.)

Seconds per iteration (one E-step and one M-step):
  emix:      the median of the fit report's iteration_seconds[1:T] (the model file's
             "fit" object; entry i is the E-step under theta(i) and the M-step to theta(i+1),
             timed inside emix::fit), per run; the median of those over the repeats. Entry 0 is
             left out because it pays first-touch costs (pages of the work space, on a GPU the
             first kernel launches) that later iterations do not, and entry T because it has no
             M-step. (The former (seconds(T) - seconds(0)) / T subtracted two noisy whole-fit
             times and went negative on the GPU.) A time that is not positive gives no ratio and
             no verdict.
  sklearn, sklearn-torch:
             (time of fit(max_iter=T) - time of fit(max_iter=1)) / (T - 1), medians over the
             repeats. Every fit also validates the data and runs a final labelling E-step; the
             difference is T - 1 E+M iterations. (fit(max_iter=0) would be the natural baseline,
             but sklearn 1.9 raises AttributeError on it when precisions_init is given.)
  armadillo: time of learn(em_iter=T) / T, median over the repeats (learn does nothing but the T
             iterations when given parameters and km_iter = 0).
  torch-em:  time of the T iterations (torch.cuda.synchronize before and after) / T, median over
             the repeats, after one untimed warm-up iteration.
Data: the "overlapping" cases (full-1e6x16x16, ...) draw from a random mixture whose components
overlap (make_data) and start every tool from k-means++ means with the data's covariance; the
"sep-" cases are what `emix generate` makes (components far apart, as in most real data sets)
and start every tool from the generating model, so that almost every log-responsibility is below
-700 throughout: the case that exposed subnormal arithmetic (issue 10). --emix-native adds an
emix built with -DEMIX_NATIVE=ON (tools emix-native-double / -float) for the portable-against-
native target. For each case emix-double also runs once from its own k-means++ start
(--max-iter 3), for the initialisation target (init_seconds against 3 iterations).
The mean log-likelihood under theta(T) is compared with the reference (emix-double's history[T] /
N; emix-gpu-double's where emix-double did not run): emix's history[T] / N, sklearn's score(X),
Armadillo's avg_log_p(X), torch-em's mean log p(x) after its T iterations. A tool outside its
tolerance (LL_TOLERANCE) is flagged MISMATCH and the script exits 1.

Environment: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS are set to --threads for
every tool; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed for this command alone (the
script re-executes itself without them) so that numpy's OpenBLAS picks its own kernel; the
kernel threadpoolctl reports is written into the results. SCIPY_ARRAY_API=1 is set (scikit-learn's
array-API dispatch needs it before scipy is imported; numpy inputs take the same path).

Usage: python3 bench/compare.py [--iters 5] [--repeats 3] [--all] [--cases a,b|cpu|gpu|issue]
       [--gpu auto|on|off] [--torch-device cpu|cuda] [--scaling | --scaling-quick]
       [--emix build-bench/emix] [--arma build-bench/bench/arma_gmm] [--workdir DIR]
See bench/README.md.
"""

import os
import sys

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
UNSET_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _threads_from_argv():
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return str(os.cpu_count() or 1)


# Before numpy is imported: OpenBLAS reads these once, when it loads; scipy reads
# SCIPY_ARRAY_API once, when it loads.
if (any(v in os.environ for v in UNSET_VARS)
        or any(os.environ.get(v) != _threads_from_argv() for v in THREAD_VARS)
        or os.environ.get("SCIPY_ARRAY_API") != "1"):
    env = {k: v for k, v in os.environ.items() if k not in UNSET_VARS}
    for v in THREAD_VARS:
        env[v] = _threads_from_argv()
    env["SCIPY_ARRAY_API"] = "1"
    if "EMIX_COMPARE_UNSET" not in os.environ:
        env["EMIX_COMPARE_UNSET"] = ",".join(v for v in UNSET_VARS if v in os.environ) or "none"
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import threadpoolctl  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REG_COVAR = 1e-6


def case(n, d, k, covariance, seed, target=None, gpu_only=False, separated=False, twin=None):
    return {"n": n, "d": d, "k": k, "covariance": covariance, "seed": seed, "target": target,
            "gpu_only": gpu_only, "separated": separated, "twin": twin}


# target: sklearn / emix-double on the CPU (None: no target); issue 10's: the overlapping cases
# at least their 2026-11-26 margins (25x, 15x, 6x), the separated ones 50x (full) and 20x
# (diag). gpu_only: the GPU cases, run only when the GPU tools run (or when named in --cases).
# separated: data from `emix generate`, started from the generating model; twin: the
# overlapping case of the same shape, for the "within 1.3x of overlapping" target.
CASES = {
    "full-1e6x16x16": case(1_000_000, 16, 16, "full", 1001, 25.0),
    "diag-1e6x16x16": case(1_000_000, 16, 16, "diag", 1002, 15.0),
    "sep-full-1e6x16x16": case(1_000_000, 16, 16, "full", 1011, 50.0, separated=True,
                               twin="full-1e6x16x16"),
    "sep-diag-1e6x16x16": case(1_000_000, 16, 16, "diag", 1012, 20.0, separated=True,
                               twin="diag-1e6x16x16"),
    "full-2e5x64x32": case(200_000, 64, 32, "full", 1003, 6.0),
    "diag-1e7x4x8": case(10_000_000, 4, 8, "diag", 1004, 5.0),
    "full-1e7x32x32": case(10_000_000, 32, 32, "full", 1007, gpu_only=True),
    "diag-1e8x8x8": case(100_000_000, 8, 8, "diag", 1008, gpu_only=True),
    # Full covariances at high D, where the per-iteration factorisations (K Cholesky factors and
    # inverses of D x D) weigh beside the N K D^2 of the passes.
    "full-2e4x256x8": case(20_000, 256, 8, "full", 1021),
    "full-1e4x512x4": case(10_000, 512, 4, "full", 1022),
    "full-4e3x2048x2": case(4_000, 2048, 2, "full", 1023),
    # Seconds, for checking the script itself: --cases smoke-full,smoke-diag
    "smoke-full": case(20_000, 8, 4, "full", 1005),
    "smoke-diag": case(20_000, 8, 4, "diag", 1006),
    "smoke-sep-full": case(20_000, 8, 4, "full", 1015, separated=True, twin="smoke-full"),
}
GROUPS = {
    "cpu": ["full-1e6x16x16", "diag-1e6x16x16", "sep-full-1e6x16x16", "sep-diag-1e6x16x16",
            "full-2e5x64x32", "diag-1e7x4x8"],
    "gpu": ["full-1e7x32x32", "diag-1e8x8x8"],
    "smoke": ["smoke-full", "smoke-diag", "smoke-sep-full"],
    "high-d": ["full-2e4x256x8", "full-1e4x512x4", "full-4e3x2048x2"],
}
GROUPS["issue"] = GROUPS["cpu"] + GROUPS["gpu"]
DEFAULT_CASES = ("full-1e6x16x16", "diag-1e6x16x16", "sep-full-1e6x16x16", "sep-diag-1e6x16x16",
                 "full-2e5x64x32")
CPU_TOOLS = ("emix-double", "emix-float", "emix-native-double", "emix-native-float", "sklearn",
             "armadillo")
NATIVE_TOOLS = ("emix-native-double", "emix-native-float")
GPU_TOOLS = ("emix-gpu-float", "emix-gpu-double")
TORCH_TOOLS = ("sklearn-torch", "torch-em")
ALL_TOOLS = CPU_TOOLS + GPU_TOOLS + TORCH_TOOLS
FLOAT32_TOOLS = ("emix-float", "emix-native-float", "emix-gpu-float", "sklearn-torch", "torch-em")

# Peers too slow for --iters x --repeats within the run's budget run fewer iterations (time is
# compared per iteration; the log-likelihood against the reference's history at the same
# iteration): case -> {tool: (iterations, repeats)}. --no-caps lifts these.
#   full-2e5x64x32: Armadillo's gmm_full takes ~11 s per iteration at D=64, K=32 on 2 cores.
#   The GPU cases, sized for the 16-core GPU machine, where the whole GPU run (--cases gpu) must
#   stay under 8 minutes. Estimated there: data and init ~1 min (written once, reused); sklearn
#   ~5-10 s an iteration on each (fit(2) + fit(1) is 3 iterations and 3 labelling E-steps:
#   ~1 min each); Armadillo ~20 s (full) and ~2 s (diag) an iteration; emix on the CPU ~2 s and
#   ~0.5 s an iteration, where each emix run also reads the .npy (2.6 GB and 6.4 GB: a few
#   seconds), which is why the GPU emix runs take 2 repeats there; the torch tools seconds.
#   In all about 5 minutes; the 4 CPU cases add ~2-3 minutes on 16 cores.
_GPU_CASE_CAPS = {"sklearn": (2, 1), "armadillo": (1, 1), "emix-double": (2, 1),
                  "emix-float": (2, 1), "sklearn-torch": (3, 1), "emix-gpu-float": (5, 2),
                  "emix-gpu-double": (5, 2)}
CAPS = {
    "full-2e5x64x32": {"armadillo": (2, 1)},
    "full-1e7x32x32": dict(_GPU_CASE_CAPS),
    "diag-1e8x8x8": dict(_GPU_CASE_CAPS),
}

# Relative agreement of the final mean log-likelihood with the reference (emix-double) that
# counts as "the same":
#   sklearn, emix-gpu-double: the same algorithm in float64, only summation order differs (the
#     parity test shows 1e-14 on small problems; 1e-9 allows for N = 1e8 sums in another order).
#   emix-float, emix-gpu-float: float32 data and log-densities but double accumulation of the
#     statistics: the difference is float32 rounding of x and of the log-densities (~6e-8
#     relative each), carried through T iterations: 1e-5.
#   armadillo: a variance floor instead of reg_covar and uncentred covariance sums: 1e-5.
#   sklearn-torch, torch-em: float32 throughout, including the sums over N rows (a float32
#     reduction of N = 1e8 terms has relative error ~ log2(N) * 6e-8 ~ 2e-6 even when done as a
#     tree) and the M-step's moments (diag: E[x^2] - mean^2 cancels about two digits when the
#     means are ~3 standard deviations out), then T iterations: 1e-4.
LL_TOLERANCE = {"sklearn": 1e-9, "emix-gpu-double": 1e-9, "emix-native-double": 1e-9,
                "emix-float": 1e-5, "emix-native-float": 1e-5, "emix-gpu-float": 1e-5,
                "armadillo": 1e-5, "sklearn-torch": 1e-4, "torch-em": 1e-4}
# float64 torch (--torch-dtype float64) is the same algorithm as sklearn's in float64.
LL_TOLERANCE_TORCH64 = 1e-9

# Issue 10's CPU targets (besides CASES' sklearn ratios).
SEPARATED_WITHIN = 1.3   # emix per iteration on separated data within 1.3x of overlapping data
FLOAT_OVER_DOUBLE = 1.6  # emix float32 at least 1.6x faster than float64, every case and build
PORTABLE_WITHIN = 1.25   # the default (portable) build within 1.25x of -DEMIX_NATIVE=ON
INIT_ITERATIONS = 3      # k-means++ and k-means in at most 3 EM iterations' time

# Issue 4's targets.
GPU_VS_SKLEARN = 100.0   # emix GPU at least 100x scikit-learn on the GPU machine's cores
GPU_VS_GPU_PEERS = 3.0   # and at least 3x each GPU peer on the same GPU
GPU_FLOOR_WITHIN = 1.5   # and within 1.5x of the floor on the N >= 1e7 GPU cases
# Issue 12's: seconds per iteration on an H200 (the GPU-floor targets), and torch-em's time over
# emix-gpu-float's on the headline case.
GPU_SECONDS_TARGETS = {("full-1e7x32x32", "emix-gpu-float"): 0.040,
                       ("full-1e7x32x32", "emix-gpu-double"): 0.060,
                       ("full-1e6x16x16", "emix-gpu-float"): 0.0006,
                       ("diag-1e8x8x8", "emix-gpu-float"): 0.0025}
GPU_VS_TORCH_EM = {"full-1e7x32x32": 7.0}
SCALING_SHAPES = (("diag", 16, 16), ("full", 16, 16))
SCALING_N = (100_000, 300_000, 1_000_000, 3_000_000, 10_000_000)
SCALING_N_QUICK = (30_000, 100_000, 300_000, 1_000_000)


def log(msg):
    print(msg, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class ForeignLoad:
    """How much of the machine other processes used while a tool ran: CPU time the whole
    machine was busy (/proc/stat) minus this script's and its children's, as a share of
    wall time x cores. The load average would count this run's own threads too."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        # user nice system idle iowait irq softirq steal
        busy = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / tick
        steal = fields[7] / tick if len(fields) > 7 else 0.0
        own = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
                  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return time.time(), busy, steal, own

    def percent(self):
        """(others' share, steal share) of all cores since construction, in percent."""
        t1, busy1, steal1, own1 = self._sample()
        t0, busy0, steal0, own0 = self.start
        capacity = max((t1 - t0) * (os.cpu_count() or 1), 1e-9)
        others = max(0.0, (busy1 - busy0) - (own1 - own0))
        return 100.0 * others / capacity, 100.0 * (steal1 - steal0) / capacity


def wait_quiet(limit_seconds, threshold=15.0):
    """Waits (up to limit_seconds) until other processes use under threshold % of the cores
    over a 3-second sample; returns the last sample's share."""
    deadline = time.time() + limit_seconds
    while True:
        probe = ForeignLoad()
        time.sleep(3)
        others, _ = probe.percent()
        if others < threshold or time.time() >= deadline:
            return others
        log("   (other processes use %.0f%% of the cores; waiting)" % others)


def machine():
    model = "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


def gpu_names():
    """The GPUs nvidia-smi lists (empty when there is none or no nvidia-smi)."""
    if shutil.which("nvidia-smi") is None:
        return ""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return "; ".join(line.strip() for line in out.stdout.splitlines() if line.strip()) \
        if out.returncode == 0 else ""


def blas_info():
    parts = []
    for lib in threadpoolctl.threadpool_info():
        if lib.get("user_api") == "blas":
            parts.append("%s %s %s (%s threads)" % (lib.get("internal_api"), lib.get("version"),
                                                  lib.get("architecture"),
                                                  lib.get("num_threads")))
    return "; ".join(parts) or "none found"


def armadillo_version():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libarmadillo-dev"],
                             capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def emix_version():
    out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


# ------------------------------------------------------------------------------------------------
# Work per iteration: the same count as bench/emix_bench.cpp's estep_flops() (see there and
# bench/README.md), for the GPU floor.


def estep_flops(covariance, n, d, k):
    per_row_component = {"full": 4 * d * d + 6 * d + 6, "diag": 9 * d + 6}[covariance]
    return float(n) * k * per_row_component


# ------------------------------------------------------------------------------------------------
# Data and initial parameters


def make_data(path, n, d, k, seed):
    """A random Gaussian mixture: means N(0, 3^2), covariances A A^T / D scaled by [0.5, 2] plus
    0.3 I, weights Dirichlet(5). Written in chunks; reused when already there."""
    if os.path.exists(path):
        x = np.load(path, mmap_mode="r")
        if x.shape == (n, d) and x.dtype == np.float64:
            return np.load(path)
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(k, d))
    chols = []
    for _ in range(k):
        a = rng.normal(size=(d, d)) / np.sqrt(d)
        cov = rng.uniform(0.5, 2.0) * a @ a.T + 0.3 * np.eye(d)
        chols.append(np.linalg.cholesky(cov))
    weights = rng.dirichlet(np.full(k, 5.0))
    x = np.empty((n, d))
    chunk = 1 << 20
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        labels = rng.choice(k, size=stop - start, p=weights)
        z = rng.standard_normal(size=(stop - start, d))
        for c in range(k):
            rows = labels == c
            x[start:stop][rows] = means[c] + z[rows] @ chols[c].T
    tmp = path + ".tmp.npy"
    np.save(tmp, x)
    os.replace(tmp, path)
    return x


def make_separated(emix, path, truth_path, n, d, k, covariance, seed):
    """What `emix generate` makes (well-separated components) and its generating model;
    reused when already there. Returns the data and (weights, means, covariances)."""
    if not (os.path.exists(path) and os.path.exists(truth_path)
            and np.load(path, mmap_mode="r").shape == (n, d)):
        tmp, tmp_truth = path + ".tmp.npy", truth_path + ".tmp.json"
        subprocess.run([emix, "generate", "--n", str(n), "--d", str(d), "-k", str(k),
                        "--covariance", covariance, "--seed", str(seed), "-o", tmp,
                        "--truth", tmp_truth, "-q"], check=True)
        os.replace(tmp, path)
        os.replace(tmp_truth, truth_path)
    with open(truth_path) as f:
        truth = json.load(f)
    return (np.load(path), (np.asarray(truth["weights"], float),
                            np.asarray(truth["means"], float),
                            np.asarray(truth["covariances"], float)))


def make_init(x, k, covariance, seed):
    """Means: k-means++ seeding (D^2 sampling) on a 20,000-row sample, so they are data rows
    spread over the clusters; covariances: the data covariance (its diagonal for diag); equal
    weights."""
    rng = np.random.default_rng(seed + 7)
    sample = x[rng.choice(x.shape[0], size=min(20_000, x.shape[0]), replace=False)]
    centres = [sample[rng.integers(len(sample))]]
    dist = np.sum((sample - centres[0]) ** 2, axis=1)
    for _ in range(1, k):
        c = sample[rng.choice(len(sample), p=dist / dist.sum())]
        centres.append(c)
        dist = np.minimum(dist, np.sum((sample - c) ** 2, axis=1))
    means = np.array(centres)
    # The data covariance, in chunks (np.cov would copy an N = 1e8 array).
    mean = x.mean(axis=0)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for start in range(0, x.shape[0], 1 << 22):
        u = x[start:start + (1 << 22)] - mean
        cov += u.T @ u
    cov /= x.shape[0] - 1
    if covariance == "full":
        covs = np.repeat(cov[None], k, axis=0)
    else:
        covs = np.repeat(np.diag(cov)[None], k, axis=0)
    weights = np.full(k, 1.0 / k)
    return weights, means, covs


def write_init(prefix, covariance, weights, means, covs):
    np.save(prefix + "_weights.npy", weights)
    np.save(prefix + "_means.npy", np.ascontiguousarray(means))
    np.save(prefix + "_covs.npy", np.ascontiguousarray(covs))
    k, d = means.shape
    with open(prefix + ".json", "w") as f:
        json.dump({"format": "emix-model", "version": 1, "family": "gaussian",
                   "covariance": covariance, "n_components": k, "n_features": d,
                   "weights": weights.tolist(), "means": means.tolist(),
                   "covariances": covs.tolist()}, f)


class Case:
    """One problem: its data (file and array), initial parameters and, for the torch tools, the
    data as a tensor (made on first use)."""

    def __init__(self, workdir, name, spec, emix):
        self.name = name
        self.n, self.d, self.k = spec["n"], spec["d"], spec["k"]
        self.covariance = spec["covariance"]
        self.seed = spec["seed"]
        self.target = spec["target"]
        self.gpu_only = spec["gpu_only"]
        self.separated = spec.get("separated", False)
        self.twin = spec.get("twin")
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.data = os.path.join(self.dir, "data_seed%d.npy" % self.seed)
        if self.separated:
            # Started from the generating model, as from a fitted one: every row's
            # responsibilities are 0 or 1 to within e^-700 from the first iteration on.
            self.x, (self.weights, self.means, self.covs) = make_separated(
                emix, self.data, os.path.join(self.dir, "truth_seed%d.json" % self.seed),
                self.n, self.d, self.k, self.covariance, self.seed)
        else:
            self.x = make_data(self.data, self.n, self.d, self.k, self.seed)
            self.weights, self.means, self.covs = make_init(self.x, self.k, self.covariance,
                                                            self.seed)
        self.prefix = os.path.join(self.dir, "init")
        write_init(self.prefix, self.covariance, self.weights, self.means, self.covs)
        self._tensor = None

    def tensor(self, device, dtype):
        torch = import_torch()
        key = (str(device), dtype)
        if self._tensor is None or self._tensor[0] != key:
            self._tensor = None
            release_torch_memory()
            t = torch.from_numpy(self.x).to(device=device, dtype=dtype)
            self._tensor = (key, t)
        return self._tensor[1]

    def release(self):
        self._tensor = None
        self.x = None
        release_torch_memory()


# ------------------------------------------------------------------------------------------------
# The tools


def emix_fit(args, data, init_json, covariance, k, iters, precision, device, out, program=None):
    """One `emix fit` from init_json (None: emix's own k-means++ start); the model file."""
    cmd = [program or args.emix, "fit", data, "-k", str(k), "--covariance", covariance,
           "--tol", "0", "--max-iter", str(iters), "--reg-covar", repr(REG_COVAR), "--device",
           device, "--precision", precision, "--threads", str(args.threads), "-o", out,
           "--quiet"]
    if init_json:
        cmd += ["--init-model", init_json]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("emix failed: %s\n%s" % (" ".join(cmd), proc.stderr.strip()))
    with open(out) as f:
        return json.load(f)


def per_iteration(fit):
    """The median of a fit report's iteration_seconds[1:T]: full iterations (E-step and M-step)
    after the first, which pays first-touch costs; entry T has no M-step. With T = 1 there is no
    such entry and entry 0 is used."""
    times = fit["iteration_seconds"]
    middle = times[1:-1] if len(times) > 2 else times[:1]
    return statistics.median(middle)


def run_emix(args, c, precision, device, iters, repeats, program=None):
    out = os.path.join(c.dir, "emix_%s_%s.json" % (device, precision))
    per_run, model = [], None
    for _ in range(repeats):
        model = emix_fit(args, c.data, c.prefix + ".json", c.covariance, c.k, iters, precision,
                         device, out, program)
        if "iteration_seconds" not in model["fit"]:
            raise RuntimeError("this emix writes no fit.iteration_seconds (an older build?)")
        per_run.append(per_iteration(model["fit"]))
    hist = model["fit"]["history"]
    if len(hist) != iters + 1:
        raise RuntimeError("emix ran %d iterations, expected %d" % (len(hist) - 1, iters))
    result = {"seconds_per_iter": statistics.median(per_run), "mean_ll": hist[-1] / c.n,
              "history_mean": [h / c.n for h in hist],
              "runs": "per-run medians %s" % fmt_list(per_run),
              "engine": model["fit"]["engine"]}
    if device == "cpu" and precision == "double" and program is None:
        # The initialisation target: emix's own k-means++ and k-means on its sample, against
        # the per-iteration time of the same fit.
        init = emix_fit(args, c.data, None, c.covariance, c.k, INIT_ITERATIONS, precision,
                        device, os.path.join(c.dir, "emix_init.json"))["fit"]
        result["init_seconds"] = init["init_seconds"]
        result["init_fit_per_iter"] = per_iteration(init)
    return result


def sklearn_model(covariance, k, weights, means, covs, iters):
    if covariance == "full":
        precisions = np.linalg.inv(covs)
    else:
        precisions = 1.0 / covs
    return GaussianMixture(n_components=k, covariance_type=covariance, tol=0.0, max_iter=iters,
                           reg_covar=REG_COVAR, weights_init=weights, means_init=means,
                           precisions_init=precisions, init_params="random", random_state=0)


def run_sklearn(c, iters, repeats):
    full, one = [], []
    gm = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(repeats):
            gm = sklearn_model(c.covariance, c.k, c.weights, c.means, c.covs, iters)
            start = time.perf_counter()
            gm.fit(c.x)
            full.append(time.perf_counter() - start)
            # max_iter=0 is no baseline: sklearn 1.9 then fails when given precisions_init
            # (_get_parameters reads covariances_, which only an M-step sets).
            g1 = sklearn_model(c.covariance, c.k, c.weights, c.means, c.covs, 1)
            start = time.perf_counter()
            g1.fit(c.x)
            one.append(time.perf_counter() - start)
    per_iter = (statistics.median(full) - statistics.median(one)) / (iters - 1)
    return {"seconds_per_iter": per_iter, "mean_ll": float(gm.score(c.x)),
            "runs": "T: %s; 1: %s" % (fmt_list(full), fmt_list(one)),
            "raw_fit_over_T": statistics.median(full) / iters}


def run_armadillo(args, c, iters, repeats):
    cmd = [args.arma, c.covariance, c.data, c.prefix + "_means.npy", c.prefix + "_covs.npy",
           c.prefix + "_weights.npy", str(iters), str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("arma_gmm failed: %s\n%s" % (" ".join(cmd), proc.stderr))
    out = json.loads(proc.stdout)
    return {"seconds_per_iter": statistics.median(out["seconds"]) / iters,
            "mean_ll": out["mean_log_likelihood"], "runs": fmt_list(out["seconds"]),
            "threads": out["threads"]}


# --- PyTorch --------------------------------------------------------------------------------

_TORCH = []


def import_torch():
    """torch, imported on first use (it takes a second or two and its own threads)."""
    if not _TORCH:
        import torch  # noqa: PLC0415
        _TORCH.append(torch)
    return _TORCH[0]


def torch_available():
    try:
        import_torch()
        return True
    except ImportError:
        return False


def release_torch_memory():
    if _TORCH and _TORCH[0].cuda.is_available():
        _TORCH[0].cuda.empty_cache()


def torch_sync(device):
    torch = import_torch()
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def torch_dtype(name):
    torch = import_torch()
    return torch.float32 if name == "float32" else torch.float64


def torch_precision_cholesky(cov, covariance):
    """scikit-learn's _compute_precision_cholesky: U with U U^T = cov^-1 (full), 1/sqrt (diag)."""
    torch = import_torch()
    if covariance == "full":
        lower = torch.linalg.cholesky(cov)
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device).expand_as(cov)
        return torch.linalg.solve_triangular(lower, eye, upper=False).mT
    return torch.rsqrt(cov)


def torch_log_gaussian_prob(x, means, prec_chol, covariance):
    """scikit-learn's _estimate_log_gaussian_prob, in torch: N x K log N(x | mu_k, Sigma_k)."""
    torch = import_torch()
    n, d = x.shape
    k = means.shape[0]
    if covariance == "full":
        log_det = torch.log(torch.diagonal(prec_chol, dim1=-2, dim2=-1)).sum(dim=1)
        log_prob = torch.empty((n, k), dtype=x.dtype, device=x.device)
        for c in range(k):
            y = x @ prec_chol[c] - means[c] @ prec_chol[c]
            log_prob[:, c] = torch.sum(y * y, dim=1)
    else:
        log_det = torch.log(prec_chol).sum(dim=1)
        precisions = prec_chol * prec_chol
        log_prob = (torch.sum(means * means * precisions, dim=1)
                    - 2.0 * (x @ (means * precisions).T) + (x * x) @ precisions.T)
    return -0.5 * (d * math.log(2 * math.pi) + log_prob) + log_det


class TorchEM:
    """A plain EM for Gaussian mixtures in PyTorch, step for step scikit-learn's GaussianMixture
    (full and diag): E-step log-densities from the precision's Cholesky factor, log-sum-exp,
    M-step as _estimate_gaussian_parameters (nk + 10 eps, reg_covar on the diagonal)."""

    def __init__(self, x, covariance, weights, means, covs):
        torch = import_torch()
        self.x, self.covariance = x, covariance
        self.eps = torch.finfo(x.dtype).eps
        as_t = lambda a: torch.as_tensor(a, dtype=x.dtype, device=x.device)  # noqa: E731
        self.weights, self.means = as_t(weights), as_t(means)
        self.prec_chol = torch_precision_cholesky(as_t(covs), covariance)
        self.lower_bound = None

    def e_step(self):
        torch = import_torch()
        weighted = (torch_log_gaussian_prob(self.x, self.means, self.prec_chol, self.covariance)
                    + torch.log(self.weights))
        log_norm = torch.logsumexp(weighted, dim=1)
        return log_norm, weighted - log_norm[:, None]

    def m_step(self, log_resp):
        torch = import_torch()
        x = self.x
        resp = torch.exp(log_resp)
        nk = resp.sum(dim=0) + 10 * self.eps
        means = (resp.T @ x) / nk[:, None]
        if self.covariance == "full":
            k, d = means.shape
            cov = torch.empty((k, d, d), dtype=x.dtype, device=x.device)
            for c in range(k):
                diff = x - means[c]
                cov[c] = ((resp[:, c] * diff.T) @ diff) / nk[c]
                cov[c].diagonal().add_(REG_COVAR)
        else:
            cov = (resp.T @ (x * x)) / nk[:, None] - means * means + REG_COVAR
        self.weights = nk / nk.sum()
        self.means = means
        self.prec_chol = torch_precision_cholesky(cov, self.covariance)

    def iterate(self, iters):
        for _ in range(iters):
            log_norm, log_resp = self.e_step()
            self.lower_bound = log_norm.mean()  # as sklearn does every iteration (not synced)
            self.m_step(log_resp)

    def mean_log_likelihood(self):
        """Mean log p(x) under the current parameters, summed in float64."""
        log_norm, _ = self.e_step()
        return float(log_norm.double().mean())


def run_torch_em(args, c, iters, repeats):
    dtype = torch_dtype(args.torch_dtype)
    x = c.tensor(args.torch_device_name, dtype)
    times = []
    em = None
    for _ in range(repeats):
        warm = TorchEM(x, c.covariance, c.weights, c.means, c.covs)
        warm.iterate(1)  # untimed: kernels, cuBLAS handles, the caching allocator
        del warm
        em = TorchEM(x, c.covariance, c.weights, c.means, c.covs)
        torch_sync(x.device)
        start = time.perf_counter()
        em.iterate(iters)
        torch_sync(x.device)
        times.append(time.perf_counter() - start)
    return {"seconds_per_iter": statistics.median(times) / iters,
            "mean_ll": em.mean_log_likelihood(), "runs": fmt_list(times)}


def sklearn_torch_support(device, dtype):
    """None when scikit-learn's GaussianMixture runs on torch tensors on `device`, else why not."""
    tags = getattr(GaussianMixture(init_params="random"), "__sklearn_tags__", None)
    if tags is None or not getattr(tags(), "array_api_support", False):
        return "scikit-learn %s has no array API support for GaussianMixture" % (
            sklearn.__version__)
    try:
        torch = import_torch()
        rng = np.random.default_rng(0)
        x = torch.as_tensor(rng.normal(size=(200, 3)), dtype=dtype, device=device)
        as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with sklearn.config_context(array_api_dispatch=True):
                GaussianMixture(2, covariance_type="diag", max_iter=2, tol=0,
                                init_params="random", weights_init=as_t([0.5, 0.5]),
                                means_init=as_t([[0, 0, 0], [1, 1, 1]]),
                                precisions_init=as_t(np.ones((2, 3))),
                                random_state=0).fit(x).score(x)
    except Exception as e:  # noqa: BLE001 - any failure means "unsupported here"
        return "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
    return None


def run_sklearn_torch(args, c, iters, repeats):
    torch = import_torch()
    dtype = torch_dtype(args.torch_dtype)
    x = c.tensor(args.torch_device_name, dtype)
    as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=x.device)  # noqa: E731
    precisions = np.linalg.inv(c.covs) if c.covariance == "full" else 1.0 / c.covs

    def model(t):
        return GaussianMixture(n_components=c.k, covariance_type=c.covariance, tol=0.0,
                               max_iter=t, reg_covar=REG_COVAR, weights_init=as_t(c.weights),
                               means_init=as_t(c.means), precisions_init=as_t(precisions),
                               init_params="random", random_state=0)

    full, one = [], []
    gm = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with sklearn.config_context(array_api_dispatch=True):
            model(1).fit(x)  # untimed warm-up
            torch_sync(x.device)
            for _ in range(repeats):
                gm = model(iters)
                start = time.perf_counter()
                gm.fit(x)
                torch_sync(x.device)
                full.append(time.perf_counter() - start)
                g1 = model(1)
                start = time.perf_counter()
                g1.fit(x)
                torch_sync(x.device)
                one.append(time.perf_counter() - start)
            mean_ll = float(gm.score(x))
    per_iter = (statistics.median(full) - statistics.median(one)) / (iters - 1)
    return {"seconds_per_iter": per_iter, "mean_ll": mean_ll,
            "runs": "T: %s; 1: %s" % (fmt_list(full), fmt_list(one))}


def measure_gpu_floor_rates():
    """(copy bandwidth, FP32 matmul rate) of the GPU measured with torch: a 1 GiB device copy
    (2 x bytes / time, as bench/gpu_timing.cpp and emix_bench do) and an 8192^3 float32 matmul
    without TF32; best of 5 / 3."""
    torch = import_torch()
    dev = "cuda"
    nbytes = 1 << 30
    a = torch.empty(nbytes // 4, dtype=torch.float32, device=dev).fill_(1.0)
    b = torch.empty_like(a)
    b.copy_(a)
    torch.cuda.synchronize()
    best = 1e30
    for _ in range(5):
        start = time.perf_counter()
        b.copy_(a)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    bandwidth = 2.0 * nbytes / best
    del a, b
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 8192
    m1 = torch.rand((n, n), device=dev)
    m2 = torch.rand((n, n), device=dev)
    m1 @ m2
    torch.cuda.synchronize()
    best = 1e30
    for _ in range(3):
        start = time.perf_counter()
        m1 @ m2
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    torch.backends.cuda.matmul.allow_tf32 = previous
    del m1, m2
    release_torch_memory()
    return bandwidth, 2.0 * n ** 3 / best


def gpu_floor(case_, rates):
    """(floor seconds, memory floor, FLOP floor) of one float32 iteration on the GPU: X read once
    at the copy bandwidth, the E-step's FLOPs (estep_flops) at the FP32 rate; the larger."""
    if not rates:
        return None, None, None
    bandwidth, flop_rate = rates
    mem = case_.n * case_.d * 4 / bandwidth
    flop = estep_flops(case_.covariance, case_.n, case_.d, case_.k) / flop_rate
    return max(mem, flop), mem, flop


def fmt_list(values):
    return "[" + ", ".join("%.4g" % v for v in values) + "]"


def rel(a, b):
    return abs(a - b) / abs(b)


# ------------------------------------------------------------------------------------------------
# Which tools run


class Toolset:
    """The tools of this run, and why the others are left out."""

    def __init__(self, args):
        self.args = args
        self.tools = []
        self.unsupported = {}  # tool -> reason (reported per case)
        skip = set(filter(None, args.skip.split(",")))
        self.gpu = False
        # auto: a GPU that nvidia-smi lists; on: also one that only torch sees. torch is
        # imported only when a torch tool or the GPU needs it.
        names = gpu_names() if args.gpu != "off" else ""
        wants_torch = args.torch_device is not None or (args.gpu == "on" or bool(names))
        torch_ok = wants_torch and torch_available()
        torch_cuda = torch_ok and import_torch().cuda.is_available()
        if args.gpu == "on" or (args.gpu == "auto" and names):
            self.gpu = True
        if args.gpu == "on" and not (names or torch_cuda):
            raise SystemExit("--gpu on: no GPU found (nvidia-smi lists none, torch sees none)")
        self.gpu_names = names or ("torch: " + import_torch().cuda.get_device_name(0)
                                   if torch_cuda else "none")
        for tool in CPU_TOOLS:
            if tool in skip:
                continue
            if tool in NATIVE_TOOLS and not args.emix_native:
                continue
            if tool == "armadillo" and not os.path.exists(args.arma):
                log("no arma_gmm at %s: Armadillo left out (build target arma_gmm, or pass "
                    "--arma)" % args.arma)
                continue
            self.tools.append(tool)
        if self.gpu:
            reason = self.probe_emix_gpu()
            for tool in GPU_TOOLS:
                if tool in skip:
                    continue
                self.tools.append(tool)
                if reason:
                    self.unsupported[tool] = reason
        # The torch tools: on the GPU with the GPU tools, or where --torch-device says.
        device = args.torch_device or ("cuda" if self.gpu else None)
        args.torch_device_name = device
        self.torch_device = device
        if device:
            for tool in TORCH_TOOLS:
                if tool in skip:
                    continue
                self.tools.append(tool)
                if not torch_ok:
                    self.unsupported[tool] = "PyTorch is not installed (pip install torch)"
                elif device.startswith("cuda") and not torch_cuda:
                    self.unsupported[tool] = "torch %s sees no CUDA device" % (
                        import_torch().__version__)
                elif tool == "sklearn-torch":
                    why = sklearn_torch_support(device, torch_dtype(args.torch_dtype))
                    if why:
                        self.unsupported[tool] = why
            if torch_ok:
                import_torch().set_num_threads(args.threads)
        self.floor_rates = None
        self.floor_source = "none"
        if args.gpu_bandwidth and args.gpu_tflops:
            self.floor_rates = (args.gpu_bandwidth * 1e9, args.gpu_tflops * 1e12)
            self.floor_source = "given: --gpu-bandwidth %g GB/s, --gpu-tflops %g" % (
                args.gpu_bandwidth, args.gpu_tflops)
        elif self.gpu and torch_cuda:
            bw, rate = measure_gpu_floor_rates()
            self.floor_rates = (bw, rate)
            self.floor_source = ("measured with torch: device copy %.0f GB/s (2 x bytes / time), "
                                 "float32 matmul %.1f TFLOP/s (no TF32)" % (bw / 1e9, rate / 1e12))
        elif self.gpu:
            self.floor_source = ("none: no torch with CUDA to measure it; pass --gpu-bandwidth "
                                 "and --gpu-tflops (emix_bench prints both)")

    def probe_emix_gpu(self):
        """None when `emix fit --device gpu` works on a tiny problem, else emix's error line."""
        if not os.path.exists(self.args.emix):
            return "no emix program at %s" % self.args.emix
        probe = os.path.join(self.args.workdir, "probe.npy")
        np.save(probe, np.random.default_rng(0).normal(size=(256, 2)))
        out = os.path.join(self.args.workdir, "probe.json")
        proc = subprocess.run([self.args.emix, "fit", probe, "-k", "2", "--device", "gpu",
                               "--max-iter", "2", "-o", out, "--quiet"],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            return None
        return (proc.stderr.strip().splitlines() or ["emix exited %d" % proc.returncode])[-1]


def caps_for(args, name, tool):
    """(iterations, repeats) for a tool on a case: --iters and --repeats, lowered by CAPS."""
    if args.no_caps or tool not in CAPS.get(name, {}):
        return args.iters, args.repeats
    iters, repeats = CAPS[name][tool]
    return min(iters, args.iters), min(repeats, args.repeats)


def run_tool(args, tool, c, iters, repeats):
    if tool in ("emix-double", "emix-float"):
        return run_emix(args, c, tool[5:], "cpu", iters, repeats)
    if tool in NATIVE_TOOLS:
        return run_emix(args, c, tool[12:], "cpu", iters, repeats, program=args.emix_native)
    if tool in ("emix-gpu-double", "emix-gpu-float"):
        return run_emix(args, c, tool[9:], "gpu", iters, repeats)
    if tool == "sklearn":
        return run_sklearn(c, iters, repeats)
    if tool == "armadillo":
        return run_armadillo(args, c, iters, repeats)
    if tool == "sklearn-torch":
        return run_sklearn_torch(args, c, iters, repeats)
    if tool == "torch-em":
        return run_torch_em(args, c, iters, repeats)
    raise ValueError(tool)


def timed_tool(args, toolset, tool, c, iters, repeats):
    """Runs one tool on one case and returns its result dict (status "ok", "unsupported: ..."
    or "failed: ...")."""
    if tool in toolset.unsupported:
        return {"status": "unsupported: " + toolset.unsupported[tool], "iters": iters,
                "repeats": repeats}
    if args.wait_quiet > 0:
        wait_quiet(args.wait_quiet)
    load_before = loadavg()
    foreign = ForeignLoad()
    t0 = time.time()
    try:
        r = run_tool(args, tool, c, iters, repeats)
        r["status"] = "ok"
    except Exception as e:  # noqa: BLE001 - reported in the row, the run goes on
        r = {"status": "failed: %s" % " ".join(str(e).split())[:300]}
        release_torch_memory()
    r["load"] = load_before
    r["others_pct"], r["steal_pct"] = foreign.percent()
    r["iters"], r["repeats"] = iters, repeats
    r["wall"] = time.time() - t0
    return r


def tolerance(args, tool):
    if tool in TORCH_TOOLS and args.torch_dtype == "float64":
        return LL_TOLERANCE_TORCH64
    return LL_TOLERANCE.get(tool)


# ------------------------------------------------------------------------------------------------
# The cases run


def run_cases(args, toolset, names, header):
    rows = []
    for name in names:
        spec = CASES[name]
        log("\n== %s: N=%d D=%d K=%d %s, %d iterations, load %s" % (
            name, spec["n"], spec["d"], spec["k"], spec["covariance"], args.iters, loadavg()))
        t0 = time.time()
        c = Case(args.workdir, name, spec, args.emix)
        log("   data and init ready in %.1f s" % (time.time() - t0))
        results = {}
        for tool in toolset.tools:
            iters, repeats = caps_for(args, name, tool)
            r = timed_tool(args, toolset, tool, c, iters, repeats)
            results[tool] = r
            if r["status"] == "ok":
                log("   %-15s %9.4f s/iter   mean log-lik %.12f   (%d iterations; runs %s; "
                    "%.0f s; other processes %.0f%% of the cores, steal %.0f%%)" % (
                        tool, r["seconds_per_iter"], r["mean_ll"], iters, r["runs"], r["wall"],
                        r["others_pct"], r["steal_pct"]))
            else:
                log("   %-15s %s" % (tool, r["status"]))
        c.release()
        rows.extend(case_rows(args, c, results, toolset))
    return rows


def reference_of(results):
    """The float64 emix run with the longest history (emix-double on a tie): every other tool's
    log-likelihood after its T iterations is compared with the reference's history[T]."""
    best = None
    for tool in ("emix-double", "emix-gpu-double"):
        r = results.get(tool, {})
        if r.get("status") == "ok" and (
                best is None or len(r["history_mean"]) > len(results[best]["history_mean"])):
            best = tool
    return best


def case_rows(args, c, results, toolset):
    ok = {t: r for t, r in results.items() if r["status"] == "ok"}
    ref = reference_of(results)
    floor_s, floor_mem, floor_flop = gpu_floor(c, toolset.floor_rates)

    def ratio(r, base):
        # No ratio from a time that is not positive (a timing at or below its resolution).
        if base not in ok or "seconds_per_iter" not in r or not r["seconds_per_iter"] > 0 \
                or not ok[base]["seconds_per_iter"] > 0:
            return ""
        return "%.3g" % (r["seconds_per_iter"] / ok[base]["seconds_per_iter"])

    rows = []
    for tool, r in results.items():
        row = {"case": c.name, "n": c.n, "d": c.d, "k": c.k, "covariance": c.covariance,
               "iters": r["iters"], "repeats": r["repeats"], "tool": tool, "status": r["status"],
               "seconds_per_iter": "", "ratio_to_emix_double": "", "ratio_to_emix_float": "",
               "ratio_to_emix_gpu_float": "", "mean_log_likelihood": "",
               "ll_reference": ref or "", "ll_rel_diff": "", "ll_tolerance": "",
               "ll_agrees": "", "target": "", "floor_seconds": "", "x_floor": "",
               "runs_seconds": "", "load_before": r.get("load", ""),
               "others_cpu_pct": "%.0f" % r["others_pct"] if "others_pct" in r else "",
               "steal_pct": "%.0f" % r["steal_pct"] if "steal_pct" in r else "",
               "engine": r.get("engine", ""),
               "init_seconds": "%.4g" % r["init_seconds"] if "init_seconds" in r else "",
               "init_fit_seconds_per_iter": "%.4g" % r["init_fit_per_iter"]
                                            if "init_fit_per_iter" in r else ""}
        if tool == "sklearn" and c.target is not None:
            row["target"] = "%gx" % c.target
        if r["status"] == "ok":
            row["seconds_per_iter"] = "%.6g" % r["seconds_per_iter"]
            row["ratio_to_emix_double"] = ratio(r, "emix-double")
            row["ratio_to_emix_float"] = ratio(r, "emix-float")
            row["ratio_to_emix_gpu_float"] = ratio(r, "emix-gpu-float")
            row["mean_log_likelihood"] = "%.15g" % r["mean_ll"]
            row["runs_seconds"] = r["runs"]
            if tool in GPU_TOOLS + TORCH_TOOLS and floor_s and r["seconds_per_iter"] > 0 and \
                    (tool in GPU_TOOLS or str(toolset.torch_device).startswith("cuda")):
                row["floor_seconds"] = "%.4g" % floor_s
                row["x_floor"] = "%.3g" % (r["seconds_per_iter"] / floor_s)
            tol = tolerance(args, tool)
            if ref is not None and tool != ref:
                hist = ok[ref]["history_mean"]
                if r["iters"] < len(hist):
                    diff = rel(r["mean_ll"], hist[r["iters"]])
                    row["ll_rel_diff"] = "%.2e" % diff
                    if tol is None and tool.startswith("emix-"):
                        tol = LL_TOLERANCE["sklearn"]  # one emix double against the other
                    if tol is not None:
                        row["ll_tolerance"] = "%.0e" % tol
                        row["ll_agrees"] = "yes" if diff <= tol else "MISMATCH"
        rows.append(row)
    return rows


def verdict_at_least(ratio, target):
    """'met (2.5x over)' when ratio >= target, else 'MISSED by 1.3x'."""
    if not ratio > 0:
        return "n/a (a time at or below the timing's resolution)"
    if ratio >= target:
        return "met (%.2fx over)" % (ratio / target)
    return "MISSED by %.2fx" % (target / ratio)


def verdict_at_most(ratio, target):
    """'met (1.2x under)' when 0 < ratio <= target, else 'MISSED by 1.3x'."""
    if not ratio > 0:
        return "n/a (a time at or below the timing's resolution)"
    if ratio <= target:
        return "met (%.2fx under)" % (target / ratio)
    return "MISSED by %.2fx" % (ratio / target)


def targets_table(rows, toolset):
    """The issue's targets, one line per case and target, with met / missed-by."""
    by_case = {}
    for row in rows:
        by_case.setdefault(row["case"], {})[row["tool"]] = row

    def sec(tools, tool):
        """Seconds per iteration, or None where there is no positive time: no verdict then."""
        row = tools.get(tool)
        value = float(row["seconds_per_iter"]) if row and row["seconds_per_iter"] else None
        return value if value is not None and value > 0 else None

    lines = ["| case | target | measured | verdict |", "|---|---|---|---|"]
    for name, tools in by_case.items():
        spec = CASES[name]
        emix_d = sec(tools, "emix-double")
        sk = sec(tools, "sklearn")
        arma = sec(tools, "armadillo")
        if spec["target"] is not None and emix_d and sk:
            lines.append("| %s | CPU: sklearn / emix-double >= %g | %.3g | %s |" % (
                name, spec["target"], sk / emix_d, verdict_at_least(sk / emix_d, spec["target"])))
        if emix_d and arma and not spec["gpu_only"]:
            lines.append("| %s | CPU: faster than Armadillo (Armadillo / emix-double > 1) | %.3g | "
                         "%s |" % (name, arma / emix_d, verdict_at_least(arma / emix_d, 1.0)))
        for (case_name, tool), limit in GPU_SECONDS_TARGETS.items():
            t = sec(tools, tool) if case_name == name else None
            if t is not None:
                verdict = ("n/a (time per iteration %g s)" % t if not t > 0 else
                           "met (%.2fx under)" % (limit / t) if t <= limit else
                           "MISSED by %.2fx" % (t / limit))
                lines.append("| %s | GPU: %s <= %g s per iteration | %.3g s | %s |" % (
                    name, tool, limit, t, verdict))
        for double, single in (("emix-double", "emix-float"),
                               ("emix-native-double", "emix-native-float")):
            d64, f32 = sec(tools, double), sec(tools, single)
            if d64 and f32:
                lines.append("| %s | CPU: %s / %s >= %g | %.3g | %s |" % (
                    name, double, single, FLOAT_OVER_DOUBLE, d64 / f32,
                    verdict_at_least(d64 / f32, FLOAT_OVER_DOUBLE)))
        for portable, native in (("emix-double", "emix-native-double"),
                                 ("emix-float", "emix-native-float")):
            p_s, n_s = sec(tools, portable), sec(tools, native)
            if p_s and n_s:
                lines.append("| %s | CPU: %s / %s <= %g (portable build against native) | %.3g | "
                             "%s |" % (name, portable, native, PORTABLE_WITHIN, p_s / n_s,
                                       verdict_at_most(p_s / n_s, PORTABLE_WITHIN)))
        twin = by_case.get(spec.get("twin") or "", {})
        twin_d = sec(twin, "emix-double")
        if emix_d and twin_d:
            lines.append("| %s | CPU: emix-double here / on %s <= %g (separated against "
                         "overlapping) | %.3g | %s |" % (
                             name, spec["twin"], SEPARATED_WITHIN, emix_d / twin_d,
                             verdict_at_most(emix_d / twin_d, SEPARATED_WITHIN)))
        row = tools.get("emix-double")
        if row and row.get("init_seconds") and row.get("init_fit_seconds_per_iter"):
            init, it = float(row["init_seconds"]), float(row["init_fit_seconds_per_iter"])
            if init > 0 and it > 0:
                lines.append("| %s | CPU: k-means++ and k-means (init_seconds) <= %d iterations "
                             "of the same fit | %.3g iterations (%.3g s) | %s |" % (
                                 name, INIT_ITERATIONS, init / it, init,
                                 verdict_at_most(init / it, INIT_ITERATIONS)))
        gpu = sec(tools, "emix-gpu-float")
        if not gpu:
            continue
        torch_em = sec(tools, "torch-em")
        if name in GPU_VS_TORCH_EM and torch_em:
            lines.append("| %s | GPU: torch-em / emix-gpu-float >= %g | %.3g | %s |" % (
                name, GPU_VS_TORCH_EM[name], torch_em / gpu,
                verdict_at_least(torch_em / gpu, GPU_VS_TORCH_EM[name])))
        if sk:
            lines.append("| %s | GPU: sklearn (CPU, %d threads) / emix-gpu-float >= %g | %.3g | "
                         "%s |" % (name, toolset.args.threads, GPU_VS_SKLEARN, sk / gpu,
                                   verdict_at_least(sk / gpu, GPU_VS_SKLEARN)))
        for peer in TORCH_TOOLS:
            p = sec(tools, peer)
            if p and str(toolset.torch_device).startswith("cuda"):
                lines.append("| %s | GPU: %s / emix-gpu-float >= %g | %.3g | %s |" % (
                    name, peer, GPU_VS_GPU_PEERS, p / gpu,
                    verdict_at_least(p / gpu, GPU_VS_GPU_PEERS)))
            elif peer in tools:
                lines.append("| %s | GPU: %s / emix-gpu-float >= %g | - | not measured (%s) |" % (
                    name, peer, GPU_VS_GPU_PEERS, tools[peer]["status"]))
        row = tools["emix-gpu-float"]
        if spec["gpu_only"]:
            if row["x_floor"]:
                x = float(row["x_floor"])
                if not x > 0:  # a time per iteration that is not positive measures nothing
                    verdict = "n/a (time per iteration %s s)" % row["seconds_per_iter"]
                else:
                    verdict = ("met (%.2fx of the floor)" % x if x <= GPU_FLOOR_WITHIN
                               else "MISSED by %.2fx" % (x / GPU_FLOOR_WITHIN))
                lines.append("| %s | GPU: emix-gpu-float within %gx of the floor (%s s) | %.3gx | "
                             "%s |" % (name, GPU_FLOOR_WITHIN, row["floor_seconds"], x, verdict))
            else:
                lines.append("| %s | GPU: within %gx of the floor | - | no floor (%s) |" % (
                    name, GPU_FLOOR_WITHIN, toolset.floor_source))
    return "\n".join(lines) + "\n"


def summary_table(rows):
    by_case = {}
    for row in rows:
        by_case.setdefault(row["case"], {})[row["tool"]] = row

    def sec(tools, tool):
        row = tools.get(tool)
        return "%.4g" % float(row["seconds_per_iter"]) if row and row["seconds_per_iter"] else "-"

    def rat(tools, tool, column):
        row = tools.get(tool)
        return row[column] if row and row[column] else "-"

    native = any(t in tools for tools in by_case.values() for t in NATIVE_TOOLS)
    lines = ["| case | emix double s/it | emix float s/it | %ssklearn s/it | Armadillo s/it | "
             "sklearn / emix double | sklearn / emix float | Armadillo / emix double | "
             "target (sklearn / emix double) |" % (
                 "emix native double s/it | emix native float s/it | " if native else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if native else "")]
    for case_name, tools in by_case.items():
        sk = tools.get("sklearn")
        verdict = "-"
        if sk and sk["target"] and sk["ratio_to_emix_double"]:
            target = float(sk["target"].rstrip("x"))
            verdict = "%s: %s" % (sk["target"], verdict_at_least(
                float(sk["ratio_to_emix_double"]), target))
        native_cells = "%s | %s | " % (sec(tools, "emix-native-double"),
                                       sec(tools, "emix-native-float")) if native else ""
        lines.append("| %s | %s | %s | %s%s | %s | %s | %s | %s | %s |" % (
            case_name, sec(tools, "emix-double"), sec(tools, "emix-float"), native_cells,
            sec(tools, "sklearn"),
            sec(tools, "armadillo"), rat(tools, "sklearn", "ratio_to_emix_double"),
            rat(tools, "sklearn", "ratio_to_emix_float"),
            rat(tools, "armadillo", "ratio_to_emix_double"), verdict))
    table = "\n".join(lines) + "\n"
    if not any(t in tools for tools in by_case.values() for t in GPU_TOOLS + TORCH_TOOLS):
        return table
    lines = ["| case | emix-gpu-float s/it | emix-gpu-double s/it | sklearn-torch s/it | "
             "torch-em s/it | sklearn (CPU) / emix-gpu-float | sklearn-torch / emix-gpu-float | "
             "torch-em / emix-gpu-float | floor s | emix-gpu-float / floor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for case_name, tools in by_case.items():
        g = tools.get("emix-gpu-float")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            case_name, sec(tools, "emix-gpu-float"), sec(tools, "emix-gpu-double"),
            sec(tools, "sklearn-torch"), sec(tools, "torch-em"),
            rat(tools, "sklearn", "ratio_to_emix_gpu_float"),
            rat(tools, "sklearn-torch", "ratio_to_emix_gpu_float"),
            rat(tools, "torch-em", "ratio_to_emix_gpu_float"),
            g["floor_seconds"] if g and g["floor_seconds"] else "-",
            g["x_floor"] if g and g["x_floor"] else "-"))
    return table + "\n" + "\n".join(lines) + "\n"


def ll_table(rows):
    lines = ["| case | tool | status | iterations x runs | other processes' CPU % | mean log-lik | "
             "reference | rel. diff | tolerance | agrees |", "|---|---|---|---|---|---|---|---|"
             "---|---|"]
    for row in rows:
        lines.append("| %s | %s | %s | %d x %d | %s | %s | %s | %s | %s | %s |" % (
            row["case"], row["tool"], row["status"], row["iters"], row["repeats"],
            row["others_cpu_pct"], row["mean_log_likelihood"] or "-",
            row["ll_reference"] or "-", row["ll_rel_diff"] or "-", row["ll_tolerance"] or "-",
            row["ll_agrees"] or "-"))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Scaling: time per iteration against N for one shape, and the fitted exponent


def fit_exponent(ns, ts):
    """b and a of t = a N^b, least squares on (log N, log t)."""
    b, log_a = np.polyfit(np.log(np.asarray(ns, float)), np.log(np.asarray(ts, float)), 1)
    return float(b), float(math.exp(log_a))


def run_scaling(args, toolset, header):
    ns = SCALING_N_QUICK if args.scaling_quick else SCALING_N
    tools = [t for t in args.scaling_tools.split(",") if t in toolset.tools]
    rows = []
    for covariance, d, k in SCALING_SHAPES:
        for n in ns:
            name = "scaling-%s-%dx%dx%d" % (covariance, n, d, k)
            spec = case(n, d, k, covariance, 2000 + d * 10 + k)
            log("\n== %s, %d iterations" % (name, args.iters))
            c = Case(args.workdir, name, spec, args.emix)
            for tool in tools:
                r = timed_tool(args, toolset, tool, c, args.iters, args.repeats)
                log("   %-15s %s" % (tool, "%.5g s/iter" % r["seconds_per_iter"]
                                     if r["status"] == "ok" else r["status"]))
                rows.append({"covariance": covariance, "n": n, "d": d, "k": k, "tool": tool,
                             "iters": args.iters, "repeats": args.repeats, "status": r["status"],
                             "seconds_per_iter": "%.6g" % r["seconds_per_iter"]
                             if r["status"] == "ok" else "",
                             "runs_seconds": r.get("runs", ""),
                             "others_cpu_pct": "%.0f" % r["others_pct"]
                             if "others_pct" in r else ""})
            c.release()
    fits = []
    for covariance, d, k in SCALING_SHAPES:
        for tool in tools:
            pts = [(r["n"], float(r["seconds_per_iter"])) for r in rows
                   if r["tool"] == tool and r["covariance"] == covariance and
                   r["seconds_per_iter"] and float(r["seconds_per_iter"]) > 0]
            if len(pts) >= 2:
                b, a = fit_exponent([p[0] for p in pts], [p[1] for p in pts])
                fits.append({"covariance": covariance, "d": d, "k": k, "tool": tool, "b": b,
                             "a": a, "points": len(pts), "n_min": pts[0][0],
                             "n_max": pts[-1][0]})
    return rows, fits


# ------------------------------------------------------------------------------------------------
# Output


def results_stem(args, default):
    """DIR/NAME for the results: --name as given (overwritten), else the default name, with -2,
    -3, ... appended when files of that name are already there (a second run on the same day
    never overwrites the first)."""
    if args.name:
        return os.path.join(args.results, args.name)
    stem = os.path.join(args.results, default)
    i = 1
    while any(os.path.exists(stem + ("" if i == 1 else "-%d" % i) + ext)
              for ext in (".csv", ".md", ".png")):
        i += 1
    return stem + ("" if i == 1 else "-%d" % i)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        for key, value in header.items():
            f.write("# %s: %s\n" % (key, value))
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            writer.writerows(rows)


def md_header(f, title, header):
    f.write("# %s, %s\n\n" % (title, header["date"]))
    for key, value in header.items():
        f.write("- %s: %s\n" % (key, value.replace("\n", " ") if isinstance(value, str)
                                else value))


def plot_cases(path, rows):
    """Log-log: seconds per iteration against N, one panel per covariance type, one marker per
    tool and case (each case's D x K written above it). No lines: the cases differ in D and K
    as well as N, so a line through them would suggest a scaling they do not show (--scaling
    plots that)."""
    plt = import_pyplot()
    if plt is None:
        return False
    covariances = [c for c in ("full", "diag") if any(r["covariance"] == c for r in rows)]
    fig, axes = plt.subplots(1, len(covariances), figsize=(6 * len(covariances), 5),
                             squeeze=False)
    markers = "os^vD<>ph*"
    for ax, covariance in zip(axes[0], covariances):
        sub = [r for r in rows if r["covariance"] == covariance]
        for i, tool in enumerate(ALL_TOOLS):
            pts = sorted((r["n"], float(r["seconds_per_iter"])) for r in sub
                         if r["tool"] == tool and r["seconds_per_iter"]
                         and float(r["seconds_per_iter"]) > 0)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color="C%d" % i,
                        marker=markers[i % len(markers)], linestyle="none", label=tool)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for n, d, k in sorted({(r["n"], r["d"], r["k"]) for r in sub}):
            ax.annotate("D=%d K=%d" % (d, k), xy=(n, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7)
        ax.set_xlabel("N (rows)")
        ax.set_ylabel("seconds per EM iteration")
        ax.set_title(covariance + " covariance", pad=14)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("emix and peers: time per EM iteration (log-log)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_scaling(path, rows, fits):
    plt = import_pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, len(SCALING_SHAPES), figsize=(11, 4.8), squeeze=False)
    for ax, (covariance, d, k) in zip(axes[0], SCALING_SHAPES):
        for tool in dict.fromkeys(r["tool"] for r in rows):
            pts = sorted((r["n"], float(r["seconds_per_iter"])) for r in rows
                         if r["tool"] == tool and r["covariance"] == covariance
                         and r["seconds_per_iter"] and float(r["seconds_per_iter"]) > 0)
            if not pts:
                continue
            fit = [f for f in fits if f["tool"] == tool and f["covariance"] == covariance]
            label = tool + (" (b = %.2f)" % fit[0]["b"] if fit else "")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (rows)")
        ax.set_ylabel("seconds per EM iteration")
        ax.set_title("%s, D = %d, K = %d" % (covariance, d, k))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("emix: time per iteration against N, fitted t = a N^b")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def import_pyplot():
    try:
        import matplotlib  # noqa: PLC0415
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
        return plt
    except ImportError:
        log("matplotlib is not installed (pip install matplotlib): no plot")
        return None


# ------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(
        description="emix vs scikit-learn, Armadillo and (on a GPU) PyTorch peers")
    parser.add_argument("--iters", type=int, default=5, help="EM iterations per run (default 5)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per tool; medians are reported (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for every tool (default: all cores)")
    parser.add_argument("--all", action="store_true", help="also diag N=1e7, D=4, K=8")
    parser.add_argument("--cases", help="comma-separated cases or groups (%s); cases: %s" % (
        ", ".join(GROUPS), ", ".join(CASES)))
    parser.add_argument("--gpu", choices=("auto", "on", "off"), default="auto",
                        help="the GPU tools and cases: auto (when a GPU is present), on, off")
    parser.add_argument("--torch-device", choices=("cpu", "cuda"),
                        help="where sklearn-torch and torch-em run (default: cuda when the GPU "
                             "tools run, else they are left out); cpu checks them without a GPU")
    parser.add_argument("--torch-dtype", choices=("float32", "float64"), default="float32",
                        help="the torch tools' precision (default float32; float64 checks them "
                             "against sklearn to 1e-9)")
    parser.add_argument("--gpu-bandwidth", type=float, metavar="GB/s",
                        help="GPU memory bandwidth for the floor (e.g. emix_bench's copy "
                             "bandwidth), with --gpu-tflops; default: measured with torch")
    parser.add_argument("--gpu-tflops", type=float, metavar="TFLOP/s",
                        help="GPU FP32 rate for the floor (e.g. emix_bench's SGEMM rate)")
    parser.add_argument("--scaling", action="store_true",
                        help="time per iteration of emix at N = 1e5 ... 1e7 (diag and full, "
                             "D = K = 16) and the fitted exponent, instead of the cases")
    parser.add_argument("--scaling-quick", action="store_true",
                        help="--scaling at N = 3e4 ... 1e6 (about a minute on 2 cores)")
    parser.add_argument("--scaling-tools",
                        default="emix-double,emix-float,emix-gpu-float,emix-gpu-double,torch-em",
                        help="tools timed by --scaling (those of this run; default: %(default)s)")
    parser.add_argument("--emix", default=os.path.join(ROOT, "build-bench", "emix"))
    parser.add_argument("--arma", default=os.path.join(ROOT, "build-bench", "bench", "arma_gmm"))
    parser.add_argument("--emix-native", metavar="PATH",
                        help="an emix built with -DEMIX_NATIVE=ON: adds emix-native-double and "
                             "emix-native-float, and the portable-against-native target")
    parser.add_argument("--skip", default="",
                        help="comma-separated tools to leave out (%s)" % ", ".join(ALL_TOOLS))
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each tool, wait up to this long for other processes to use "
                             "under 15%% of the cores (default 0: do not wait)")
    parser.add_argument("--no-caps", action="store_true",
                        help="run the slow peers for --iters x --repeats too (see CAPS)")
    parser.add_argument("--workdir", default="/tmp/emix-compare",
                        help="data and initial models, kept for reuse (default /tmp/emix-compare)")
    parser.add_argument("--results",
                        help="where the CSV, .md and .png go (default bench/results; "
                             "WORKDIR/results for smoke cases and --scaling-quick)")
    parser.add_argument("--name", help="file name stem of the results, overwritten if there "
                                       "(default: cpu-compare-DATE, gpu-compare-DATE or "
                                       "scaling-DATE, with -2, -3, ... when taken)")
    args = parser.parse_args()
    args.scaling = args.scaling or args.scaling_quick
    if args.iters < 2:
        parser.error("--iters must be at least 2 (sklearn's time is fit(T) - fit(1))")
    if not os.path.exists(args.emix):
        parser.error("no emix program at %s (build it, or pass --emix)" % args.emix)
    os.makedirs(args.workdir, exist_ok=True)

    toolset = Toolset(args)
    if args.cases:
        names = []
        for item in args.cases.split(","):
            if item in GROUPS:
                names.extend(GROUPS[item])
            elif item in CASES:
                names.append(item)
            else:
                parser.error("unknown case %s" % item)
        names = list(dict.fromkeys(names))
    else:
        names = list(DEFAULT_CASES) + (["diag-1e7x4x8"] if args.all else [])
        if toolset.gpu:
            names += GROUPS["gpu"]
    names = [n for n in names if toolset.gpu or not CASES[n]["gpu_only"] or log(
        "%s: a GPU case, and the GPU tools are not running (no GPU, or --gpu off): skipped" % n)]
    if not names and not args.scaling:
        parser.error("no case to run")
    smoke = all(n.startswith("smoke") for n in names) if not args.scaling else args.scaling_quick
    if args.results is None:
        args.results = (os.path.join(args.workdir, "results") if smoke
                        else os.path.join(ROOT, "bench", "results"))
    os.makedirs(args.results, exist_ok=True)

    now = datetime.datetime.now()
    import_versions = ""
    if _TORCH:
        import_versions = "; torch %s" % import_torch().__version__
    header = {
        "date": now.strftime("%Y-%m-%d %H:%M"),
        "machine": "%s, nproc %s, %s" % (machine(), os.cpu_count(), platform.platform()),
        "gpu": toolset.gpu_names if toolset.gpu else "not used (%s)" % (
            "--gpu off" if args.gpu == "off" else "none found"),
        "threads": "%d (OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=%s)"
                   % (args.threads, os.environ.get("OMP_NUM_THREADS")),
        "unset": os.environ.get("EMIX_COMPARE_UNSET", "none"),
        "blas": blas_info(),
        "versions": "emix %s; scikit-learn %s; numpy %s; Armadillo %s%s" % (
            emix_version(), sklearn.__version__, np.__version__, armadillo_version(),
            import_versions),
        "tools": ", ".join(toolset.tools),
        "unsupported": "; ".join("%s: %s" % kv for kv in toolset.unsupported.items()) or "none",
        "torch_device": "%s (%s)" % (toolset.torch_device, args.torch_dtype)
                        if toolset.torch_device else "not used",
        "gpu_floor": toolset.floor_source,
        "command": "python3 " + " ".join(sys.argv),
        "iters": args.iters,
        "repeats": args.repeats,
        "load_start": loadavg(),
    }
    for key, value in header.items():
        log("%-12s %s" % (key, value))

    started = time.time()
    stamp = now.strftime("%Y-%m-%d")
    if args.scaling:
        rows, fits = run_scaling(args, toolset, header)
        header["load_end"] = loadavg()
        header["wall_seconds"] = "%.0f" % (time.time() - started)
        stem = results_stem(args, "scaling-%s" % stamp)
        write_csv(stem + ".csv", header, rows)
        lines = ["| shape | tool | N range | points | fitted t = a N^b: b | a |",
                 "|---|---|---|---|---|---|"]
        for f in fits:
            lines.append("| %s D=%d K=%d | %s | %g - %g | %d | %.3f | %.3g |" % (
                f["covariance"], f["d"], f["k"], f["tool"], f["n_min"], f["n_max"], f["points"],
                f["b"], f["a"]))
        table = "\n".join(lines) + "\n"
        with open(stem + ".md", "w") as f:
            md_header(f, "emix scaling: time per iteration against N", header)
            f.write("\nExponent b of t = a N^b, least squares on (log N, log t) (1 = linear):\n\n")
            f.write(table)
            f.write("\nSeconds per iteration:\n\n| shape | N | tool | s/it | status |\n"
                    "|---|---|---|---|---|\n")
            for r in rows:
                f.write("| %s D=%d K=%d | %d | %s | %s | %s |\n" % (
                    r["covariance"], r["d"], r["k"], r["n"], r["tool"],
                    r["seconds_per_iter"] or "-", r["status"]))
        log("\n" + table)
        for fi in fits:
            log("%s D=%d K=%d, %s: t = %.3g * N^%.3f" % (fi["covariance"], fi["d"], fi["k"],
                                                       fi["tool"], fi["a"], fi["b"]))
        wrote = [stem + ".csv", stem + ".md"]
        if plot_scaling(stem + ".png", rows, fits):
            wrote.append(stem + ".png")
        log("wrote %s" % ", ".join(wrote))
        return 1 if any(r["status"].startswith("failed") for r in rows) else 0

    rows = run_cases(args, toolset, names, header)
    header["load_end"] = loadavg()
    header["wall_seconds"] = "%.0f" % (time.time() - started)
    gpu_ran = any(r["tool"] in GPU_TOOLS + TORCH_TOOLS for r in rows)
    stem = results_stem(args, "%s-compare-%s" % ("gpu" if toolset.gpu else "cpu", stamp))
    write_csv(stem + ".csv", header, rows)
    table = summary_table(rows)
    targets = targets_table(rows, toolset)
    with open(stem + ".md", "w") as f:
        md_header(f, "emix vs scikit-learn, Armadillo%s" % (
            " and the PyTorch peers" if gpu_ran else ""), header)
        f.write("\nSeconds per EM iteration (one E-step + one M-step), median of %d runs of %d "
                "iterations unless the log-likelihood table below says otherwise; ratios are "
                "the peer's time over emix's (higher: emix faster). See bench/README.md for how "
                "each is timed.\n\n" % (args.repeats, args.iters))
        f.write(table)
        f.write("\nTargets (issues 4 and 10):\n\n")
        f.write(targets)
        f.write("\nLog-likelihood: mean per point under theta(iterations), relative difference "
                "from the reference's under the same theta:\n\n")
        f.write(ll_table(rows))
    log("\n" + table)
    log(targets)
    log("load at end %s; %s s in all" % (header["load_end"], header["wall_seconds"]))
    wrote = [stem + ".csv", stem + ".md"]
    if plot_cases(stem + ".png", rows):
        wrote.append(stem + ".png")
    log("wrote %s" % ", ".join(wrote))
    bad = [r for r in rows if r["ll_agrees"] == "MISMATCH"]
    for r in bad:
        log("MISMATCH: %s %s log-likelihood differs from %s by %s (tolerance %s)" % (
            r["case"], r["tool"], r["ll_reference"], r["ll_rel_diff"], r["ll_tolerance"]))
    failed = [r for r in rows if r["status"].startswith("failed")]
    for r in failed:
        log("FAILED: %s %s %s" % (r["case"], r["tool"], r["status"]))
    return 1 if bad or failed else 0


if __name__ == "__main__":
    sys.exit(main())

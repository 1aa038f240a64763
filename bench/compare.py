#!/usr/bin/env python3
"""emix's CPU engine side by side with scikit-learn and Armadillo (issue "EM core ... speed").

Makes each case's data and initial parameters once, then runs every tool from the same initial
parameters for the same number of EM iterations on the same cores:

  emix-double  emix fit --device cpu --precision double   (the emix program)
  emix-float   emix fit --device cpu --precision float
  sklearn      sklearn.mixture.GaussianMixture(weights_init, means_init, precisions_init, tol=0)
  armadillo    arma::gmm_full / gmm_diag learn(keep_existing, km_iter=0, var_floor=1e-6)
               (bench/arma_gmm.cpp)

Seconds per iteration (one E-step and one M-step):
  emix:      (fit.seconds at --max-iter T  -  fit.seconds at --max-iter 0) / T, medians over the
             repeats. fit.seconds is measured inside emix::fit (validation, engine set-up, the
             E-steps and M-steps), not the program's run time, so reading the .npy is excluded;
             the subtraction removes the set-up and the one E-step that --max-iter 0 also does.
  sklearn:   (time of fit(max_iter=T) - time of fit(max_iter=1)) / (T - 1), medians over the
             repeats. Every fit also validates the data, computes (and discards) initial
             parameters from random responsibilities, and runs a final labelling E-step; the
             difference is T - 1 E+M iterations. (fit(max_iter=0) would be the natural baseline,
             but sklearn 1.9 raises AttributeError on it when precisions_init is given.)
  armadillo: time of learn(em_iter=T) / T, median over the repeats (learn does nothing but the T
             iterations when given parameters and km_iter = 0).
The mean log-likelihood under theta(T) is compared: emix's history[T] / N, sklearn's score(X),
Armadillo's avg_log_p(X). Armadillo floors covariance diagonals at var_floor = 1e-6 instead of
adding reg_covar = 1e-6, so it follows a slightly different path (expect ~1e-7 relative).

Environment: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS are set to --threads for
every tool; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed for this command alone (the
script re-executes itself without them) so that numpy's OpenBLAS picks its own kernel; the
kernel threadpoolctl reports is written into the results.

Usage: python3 bench/compare.py [--iters 5] [--repeats 3] [--all] [--cases a,b]
       [--emix build-bench/emix] [--arma build-bench/bench/arma_gmm] [--workdir DIR]
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


# Before numpy is imported: OpenBLAS reads these once, when it loads.
if (any(v in os.environ for v in UNSET_VARS)
        or any(os.environ.get(v) != _threads_from_argv() for v in THREAD_VARS)):
    env = {k: v for k, v in os.environ.items() if k not in UNSET_VARS}
    for v in THREAD_VARS:
        env[v] = _threads_from_argv()
    env["EMIX_COMPARE_UNSET"] = ",".join(v for v in UNSET_VARS if v in os.environ) or "none"
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
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

# name: (N, D, K, covariance, sklearn/emix target in double precision, seed). Issue 2's cases;
# the diag N=1e7 one runs only with --all.
CASES = {
    "full-1e6x16x16": (1_000_000, 16, 16, "full", 10.0, 1001),
    "diag-1e6x16x16": (1_000_000, 16, 16, "diag", 5.0, 1002),
    "full-2e5x64x32": (200_000, 64, 32, "full", 5.0, 1003),
    "diag-1e7x4x8": (10_000_000, 4, 8, "diag", None, 1004),
    # Seconds, for checking the script itself: --cases smoke-full,smoke-diag
    "smoke-full": (20_000, 8, 4, "full", None, 1005),
    "smoke-diag": (20_000, 8, 4, "diag", None, 1006),
}
# Peers too slow for --iters x --repeats within the run's ~10 minutes run fewer iterations
# (time is compared per iteration; the log-likelihood against emix's history at the same
# iteration): case -> {tool: (iterations, repeats)}. Armadillo's gmm_full takes ~20-35 s per
# iteration at D=64, K=32 on 2 cores. --no-caps lifts these.
CAPS = {
    "full-2e5x64x32": {"armadillo": (2, 1)},
}
DEFAULT_CASES = ("full-1e6x16x16", "diag-1e6x16x16", "full-2e5x64x32")

# Relative agreement of the final mean log-likelihood with emix-double that counts as "the same".
# sklearn: the same algorithm in float64, only summation order differs (the parity test shows
# 1e-14 on small problems; 1e-9 allows for N = 1e6 sums). emix-float: float32 data and
# log-densities, double accumulation: 1e-5. Armadillo: a variance floor instead of reg_covar and
# uncentred covariance sums: 1e-5.
LL_TOLERANCE = {"sklearn": 1e-9, "emix-float": 1e-5, "armadillo": 1e-5}


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


def blas_info():
    parts = []
    for lib in threadpoolctl.threadpool_info():
        if lib.get("user_api") == "blas":
            parts.append("%s %s %s (%s threads)" % (lib.get("internal_api"), lib.get("version"),
                                                  lib.get("architecture"),
                                                  lib.get("num_threads")))
    return "; ".join(parts) or "none found"


def armadillo_version():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libarmadillo-dev"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def emix_version():
    out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


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
    cov = np.cov(x, rowvar=False)
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


# ------------------------------------------------------------------------------------------------
# The tools


def emix_fit(args, data, init_json, covariance, k, iters, precision, out):
    cmd = [args.emix, "fit", data, "-k", str(k), "--covariance", covariance,
           "--init-model", init_json, "--tol", "0", "--max-iter", str(iters),
           "--reg-covar", repr(REG_COVAR), "--device", "cpu", "--precision", precision,
           "--threads", str(args.threads), "-o", out, "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("emix failed: %s\n%s" % (" ".join(cmd), proc.stderr))
    with open(out) as f:
        return json.load(f)


def run_emix(args, case_dir, data, init_json, covariance, n, k, precision, iters, repeats):
    out = os.path.join(case_dir, "emix_%s.json" % precision)
    full, zero = [], []
    model = None
    for _ in range(repeats):
        model = emix_fit(args, data, init_json, covariance, k, iters, precision, out)
        full.append(model["fit"]["seconds"])
        zero.append(emix_fit(args, data, init_json, covariance, k, 0, precision, out)["fit"]
                    ["seconds"])
    hist = model["fit"]["history"]
    if len(hist) != iters + 1:
        raise RuntimeError("emix ran %d iterations, expected %d" % (len(hist) - 1, iters))
    per_iter = (statistics.median(full) - statistics.median(zero)) / iters
    return {"seconds_per_iter": per_iter, "mean_ll": hist[-1] / n,
            "history_mean": [h / n for h in hist],
            "runs": "T: %s; 0: %s" % (fmt_list(full), fmt_list(zero)),
            "engine": model["fit"]["engine"]}


def sklearn_model(covariance, k, weights, means, covs, iters):
    if covariance == "full":
        precisions = np.linalg.inv(covs)
    else:
        precisions = 1.0 / covs
    return GaussianMixture(n_components=k, covariance_type=covariance, tol=0.0, max_iter=iters,
                           reg_covar=REG_COVAR, weights_init=weights, means_init=means,
                           precisions_init=precisions, init_params="random", random_state=0)


def run_sklearn(x, covariance, k, weights, means, covs, iters, repeats):
    full, one = [], []
    gm = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(repeats):
            gm = sklearn_model(covariance, k, weights, means, covs, iters)
            start = time.perf_counter()
            gm.fit(x)
            full.append(time.perf_counter() - start)
            # max_iter=0 is no baseline: sklearn 1.9 then fails when given precisions_init
            # (_get_parameters reads covariances_, which only an M-step sets).
            g1 = sklearn_model(covariance, k, weights, means, covs, 1)
            start = time.perf_counter()
            g1.fit(x)
            one.append(time.perf_counter() - start)
    per_iter = (statistics.median(full) - statistics.median(one)) / (iters - 1)
    return {"seconds_per_iter": per_iter, "mean_ll": float(gm.score(x)),
            "runs": "T: %s; 1: %s" % (fmt_list(full), fmt_list(one)),
            "raw_fit_over_T": statistics.median(full) / iters}


def run_armadillo(args, data, prefix, covariance, iters, repeats):
    cmd = [args.arma, covariance, data, prefix + "_means.npy", prefix + "_covs.npy",
           prefix + "_weights.npy", str(iters), str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("arma_gmm failed: %s\n%s" % (" ".join(cmd), proc.stderr))
    out = json.loads(proc.stdout)
    return {"seconds_per_iter": statistics.median(out["seconds"]) / iters,
            "mean_ll": out["mean_log_likelihood"], "runs": fmt_list(out["seconds"]),
            "threads": out["threads"]}


def fmt_list(values):
    return "[" + ", ".join("%.3f" % v for v in values) + "]"


def rel(a, b):
    return abs(a - b) / abs(b)


# ------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description="emix CPU vs scikit-learn vs Armadillo")
    parser.add_argument("--iters", type=int, default=5, help="EM iterations per run (default 5)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per tool; medians are reported (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for every tool (default: all cores)")
    parser.add_argument("--all", action="store_true", help="also diag N=1e7, D=4, K=8")
    parser.add_argument("--cases", help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--emix", default=os.path.join(ROOT, "build-bench", "emix"))
    parser.add_argument("--arma", default=os.path.join(ROOT, "build-bench", "bench", "arma_gmm"))
    parser.add_argument("--skip", default="",
                        help="comma-separated tools to leave out: sklearn, armadillo, emix-float")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each tool, wait up to this long for other processes to use "
                             "under 15%% of the cores (default 0: do not wait)")
    parser.add_argument("--no-caps", action="store_true",
                        help="run the slow peers for --iters x --repeats too (see CAPS)")
    parser.add_argument("--workdir", default="/tmp/emix-compare",
                        help="data and initial models, kept for reuse (default /tmp/emix-compare)")
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results"))
    args = parser.parse_args()
    if args.iters < 2:
        parser.error("--iters must be at least 2 (sklearn's time is fit(T) - fit(1))")

    if args.cases:
        names = args.cases.split(",")
        unknown = [c for c in names if c not in CASES]
        if unknown:
            parser.error("unknown case(s) %s" % ", ".join(unknown))
    else:
        names = list(DEFAULT_CASES) + (["diag-1e7x4x8"] if args.all else [])
    skip = set(filter(None, args.skip.split(",")))
    if not os.path.exists(args.emix):
        parser.error("no emix program at %s (build it, or pass --emix)" % args.emix)
    if "armadillo" not in skip and not os.path.exists(args.arma):
        log("no arma_gmm at %s: Armadillo left out (build target arma_gmm, or pass --arma)"
            % args.arma)
        skip.add("armadillo")
    os.makedirs(args.workdir, exist_ok=True)
    os.makedirs(args.results, exist_ok=True)

    now = datetime.datetime.now()
    command = "python3 " + " ".join(sys.argv)
    header = {
        "date": now.strftime("%Y-%m-%d %H:%M"),
        "machine": "%s, nproc %s, %s" % (machine(), os.cpu_count(), platform.platform()),
        "threads": "%d (OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=%s)"
                   % (args.threads, os.environ.get("OMP_NUM_THREADS")),
        "unset": os.environ.get("EMIX_COMPARE_UNSET", "none"),
        "blas": blas_info(),
        "versions": "emix %s; scikit-learn %s; numpy %s; Armadillo %s" % (
            emix_version(), sklearn.__version__, np.__version__, armadillo_version()),
        "command": command,
        "iters": args.iters,
        "repeats": args.repeats,
        "load_start": loadavg(),
    }
    for key, value in header.items():
        log("%-10s %s" % (key, value))

    rows = []
    started = time.time()
    for name in names:
        n, d, k, covariance, target, seed = CASES[name]
        case_dir = os.path.join(args.workdir, name)
        os.makedirs(case_dir, exist_ok=True)
        data = os.path.join(case_dir, "data_seed%d.npy" % seed)
        log("\n== %s: N=%d D=%d K=%d %s, %d iterations, load %s" % (
            name, n, d, k, covariance, args.iters, loadavg()))
        t0 = time.time()
        x = make_data(data, n, d, k, seed)
        weights, means, covs = make_init(x, k, covariance, seed)
        prefix = os.path.join(case_dir, "init")
        write_init(prefix, covariance, weights, means, covs)
        log("   data and init ready in %.1f s" % (time.time() - t0))

        results = {}
        for tool in ("emix-double", "emix-float", "sklearn", "armadillo"):
            if tool in skip:
                continue
            iters, repeats = (args.iters, args.repeats)
            if not args.no_caps:
                iters, repeats = CAPS.get(name, {}).get(tool, (iters, repeats))
            if args.wait_quiet > 0:
                wait_quiet(args.wait_quiet)
            load_before = loadavg()
            foreign = ForeignLoad()
            t0 = time.time()
            if tool in ("emix-double", "emix-float"):
                r = run_emix(args, case_dir, data, prefix + ".json", covariance, n, k,
                             tool[5:], iters, repeats)
            elif tool == "sklearn":
                r = run_sklearn(x, covariance, k, weights, means, covs, iters, repeats)
            else:
                r = run_armadillo(args, data, prefix, covariance, iters, repeats)
            r["load"] = load_before
            r["others_pct"], r["steal_pct"] = foreign.percent()
            r["iters"] = iters
            r["repeats"] = repeats
            results[tool] = r
            log("   %-12s %9.4f s/iter   mean log-lik %.12f   (%d iterations; runs %s; %.0f s; "
                "other processes %.0f%% of the cores, steal %.0f%%)" % (
                    tool, r["seconds_per_iter"], r["mean_ll"], iters, r["runs"],
                    time.time() - t0, r["others_pct"], r["steal_pct"]))
        del x

        base = results["emix-double"]
        for tool, r in results.items():
            # Against emix-double under the same theta(iterations).
            ll_diff = rel(r["mean_ll"], base["history_mean"][r["iters"]])
            tol = LL_TOLERANCE.get(tool)
            rows.append({
                "case": name, "n": n, "d": d, "k": k, "covariance": covariance,
                "iters": r["iters"], "repeats": r["repeats"], "tool": tool,
                "seconds_per_iter": "%.6g" % r["seconds_per_iter"],
                "ratio_to_emix_double": "%.3g" % (r["seconds_per_iter"]
                                                  / base["seconds_per_iter"]),
                "ratio_to_emix_float": ("%.3g" % (r["seconds_per_iter"]
                                                  / results["emix-float"]["seconds_per_iter"])
                                        if "emix-float" in results else ""),
                "mean_log_likelihood": "%.15g" % r["mean_ll"],
                "ll_rel_diff_vs_emix_double": "%.2e" % ll_diff,
                "ll_agrees": "" if tol is None else ("yes" if ll_diff <= tol else "NO"),
                "target": "" if tool != "sklearn" or target is None else "%gx" % target,
                "runs_seconds": r["runs"], "load_before": r["load"],
                "others_cpu_pct": "%.0f" % r["others_pct"], "steal_pct": "%.0f" % r["steal_pct"],
            })
    header["load_end"] = loadavg()
    header["wall_seconds"] = "%.0f" % (time.time() - started)

    stamp = now.strftime("%Y-%m-%d")
    csv_path = os.path.join(args.results, "cpu-compare-%s.csv" % stamp)
    with open(csv_path, "w", newline="") as f:
        for key, value in header.items():
            f.write("# %s: %s\n" % (key, value))
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    md_path = os.path.join(args.results, "cpu-compare-%s.md" % stamp)
    table = summary_table(rows)
    with open(md_path, "w") as f:
        f.write("# emix CPU vs scikit-learn vs Armadillo, %s\n\n" % header["date"])
        for key, value in header.items():
            f.write("- %s: %s\n" % (key, value.replace("\n", " ") if isinstance(value, str)
                                    else value))
        f.write("\nSeconds per EM iteration (one E-step + one M-step), median of %d runs of %d "
                "iterations unless the log-likelihood table below says otherwise; ratios are "
                "the peer's time over emix's (higher: emix faster). See bench/README.md for how "
                "each is timed.\n\n" % (args.repeats, args.iters))
        f.write(table)
        f.write("\nLog-likelihood: mean per point under theta(iterations), relative difference "
                "from emix-double's under the same theta:\n\n")
        f.write("| case | tool | iterations x runs | other processes' CPU % | mean log-lik | "
                "rel. diff | agrees (tolerance) |\n|---|---|---|---|---|---|---|\n")
        for row in rows:
            tol = LL_TOLERANCE.get(row["tool"])
            f.write("| %s | %s | %d x %d | %s | %s | %s | %s |\n" % (
                row["case"], row["tool"], row["iters"], row["repeats"], row["others_cpu_pct"],
                row["mean_log_likelihood"],
                row["ll_rel_diff_vs_emix_double"],
                "" if tol is None else "%s (%.0e)" % (row["ll_agrees"], tol)))
    log("\n" + table)
    log("load at end %s; %s s in all" % (header["load_end"], header["wall_seconds"]))
    log("wrote %s and %s" % (csv_path, md_path))
    bad = [r for r in rows if r["ll_agrees"] == "NO"]
    for r in bad:
        log("WARNING: %s %s log-likelihood differs from emix-double by %s" % (
            r["case"], r["tool"], r["ll_rel_diff_vs_emix_double"]))
    return 1 if bad else 0


def summary_table(rows):
    by_case = {}
    for row in rows:
        by_case.setdefault(row["case"], {})[row["tool"]] = row
    lines = ["| case | emix double s/it | emix float s/it | sklearn s/it | Armadillo s/it | "
             "sklearn / emix double | sklearn / emix float | Armadillo / emix double | "
             "target (sklearn / emix double) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for case, tools in by_case.items():
        def sec(tool):
            return "%.4g" % float(tools[tool]["seconds_per_iter"]) if tool in tools else "-"

        sk = tools.get("sklearn")
        arma = tools.get("armadillo")
        verdict = "-"
        if sk and sk["target"]:
            target = float(sk["target"].rstrip("x"))
            ratio = float(sk["ratio_to_emix_double"])
            verdict = ("%s: met, %.2fx the target" % (sk["target"], ratio / target)
                       if ratio >= target
                       else "%s: MISSED, %.2fx short" % (sk["target"], target / ratio))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            case, sec("emix-double"), sec("emix-float"), sec("sklearn"), sec("armadillo"),
            sk["ratio_to_emix_double"] if sk else "-",
            sk["ratio_to_emix_float"] if sk and sk["ratio_to_emix_float"] else "-",
            arma["ratio_to_emix_double"] if arma else "-", verdict))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""emix.dask on a LocalCluster against the in-process fit on the same cores (issue 14's target:
within 1.5x).

Both fits start from the same initial parameters (one k-means++ start computed in process) and
run the same EM iterations (tol=0, --iters M-steps), so they do the same arithmetic; the
models must agree to 1e-12 relative (checked). Each side runs --repeats times, alternately:

* in process: `emix.GaussianMixture(...).fit(X)` on a NumPy array, the CPU engine on OpenMP's
  default thread count (every core);
* Dask: `emix.dask.GaussianMixture(...).fit(Xd)` on a `dask.distributed.LocalCluster` of
  --workers processes with one thread each (the nanny sets OMP_NUM_THREADS=1 in the workers),
  or with --threads of --workers threads of this process (`processes=False`, as
  `distributed.Client(processes=False)` makes them), Xd persisted on the workers in blocks of
  --block-rows rows, as data loaded by Dask would be. Twice: through one actor per worker
  (what fit does with a persisted array) and through a task graph per iteration (what it does
  with an array the cluster does not hold; `resident_blocks = False` forces it here).

Reported per covariance type: the median seconds per EM iteration (the fit report's
iteration_seconds: an E-step pass over every row plus the M-step; for Dask that includes
the calls or the scheduling, shipping each block's statistics as bytes, the tree merge and the
client's M-step) and of the whole fit, and the ratios Dask / in process.

    build/python-venv/bin/python bench/dask_timing.py --out bench/results/dask-DATE.md
"""

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np


def busy_share(seconds=2.0):
    """Share of the machine's CPU time used by other processes over a short sample."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return max(0.0, 1.0 - (idle1 - idle0) / max(1, total1 - total0))


class Report:
    """A results file's lines: printed as they come, written to a path (if any) at the end."""

    def __init__(self):
        self.lines = []

    def __call__(self, text=""):
        print(text, flush=True)
        self.lines.append(text)

    def write(self, path):
        if path:
            with open(path, "w") as f:
                f.write("\n".join(self.lines) + "\n")


def environment():
    """The machine and versions lines of a results file."""
    import dask
    import distributed

    import emix

    return (f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
            f"other processes' share of the CPUs before the run: {busy_share():.0%}\n"
            f"- versions: emix {emix.__version__}, numpy {np.__version__}, dask "
            f"{dask.__version__}, distributed {distributed.__version__}")


def mixture(n, d, k, seed):
    """n rows of a K-component Gaussian mixture in D dimensions, means about 8 apart."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 8.0, size=(k, d))
    scales = rng.uniform(0.5, 2.0, size=(k, d))
    labels = rng.integers(0, k, size=n)
    return means[labels] + rng.standard_normal((n, d)) * scales[labels]


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--covariances", default="full,diag")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--block-rows", type=int, default=125_000)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="the data's type (both fits run in it)")
    parser.add_argument("--worker-saturation", default=None,
                        help="the scheduler's distributed.scheduler.worker-saturation (Dask's "
                             "default 1.1 queues root-ish tasks on the scheduler, so a worker "
                             "waits a round trip between blocks; 'inf' sends them all at once)")
    parser.add_argument("--threads", action="store_true",
                        help="workers as threads of this process (LocalCluster(processes=False))")
    parser.add_argument("--out", help="also write the result as Markdown here")
    args = parser.parse_args()

    import dask
    import dask.array as da
    import distributed

    if args.worker_saturation is not None:
        dask.config.set({"distributed.scheduler.worker-saturation":
                         float(args.worker_saturation)})

    import emix
    import emix.dask

    x = mixture(args.n, args.d, args.k, seed=1).astype(args.dtype)
    say = Report()

    say(f"# emix.dask on a LocalCluster against the in-process fit, {time.strftime('%Y-%m-%d')}")
    say()
    say(environment())
    say(f"- data: {args.n} x {args.d} {args.dtype}, a {args.k}-component mixture; K = {args.k}; "
        f"{args.iters} EM iterations (tol=0) from one k-means++ start; {args.repeats} runs "
        f"each, alternately")
    kind = "threads of this process" if args.threads else "processes"
    say(f"- Dask: LocalCluster, {args.workers} worker {kind} x 1 thread, the array "
        f"persisted in blocks of {args.block_rows} rows; worker-saturation "
        f"{dask.config.get('distributed.scheduler.worker-saturation')}")
    say(f"- command: `{' '.join([os.path.basename(sys.executable)] + sys.argv)}`")
    say()
    say("| covariance | in process s/iter | Dask s/iter, actors | ratio | Dask s/iter, task graphs "
        "| ratio | in process fit s | Dask fit s, actors | ratio | max rel. diff. of the models |")
    say("|---|---|---|---|---|---|---|---|---|---|")

    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  processes=not args.threads,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        xd = da.from_array(x, chunks=(args.block_rows, args.d)).persist()
        distributed.wait(xd)
        for covariance in args.covariances.split(","):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = emix.GaussianMixture(n_components=args.k, covariance_type=covariance,
                                             random_state=0, device="cpu", max_iter=0).fit(x)
            parameters = dict(n_components=args.k, covariance_type=covariance, device="cpu",
                              tol=0.0, max_iter=args.iters, weights_init=start.weights_,
                              means_init=start.means_, precisions_init=start.precisions_)
            local_iter, dask_iter, graph_iter, local_fit, dask_fit, diff = [], [], [], [], [], 0.0
            for _ in range(args.repeats):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    a = emix.GaussianMixture(**parameters).fit(x)
                    t1 = time.perf_counter()
                    b = emix.dask.GaussianMixture(**parameters).fit(xd)
                    t2 = time.perf_counter()
                    graph = emix.dask.GaussianMixture(**parameters)
                    graph.resident_blocks = False
                    c = graph.fit(xd)
                assert "resident" in b.report_.engine and "resident" not in c.report_.engine
                local_fit.append(t1 - t0)
                dask_fit.append(t2 - t1)
                # The first entry is the initial E-step alone; the others are E-step + M-step.
                local_iter.append(statistics.median(a.report_.iteration_seconds[1:]))
                dask_iter.append(statistics.median(b.report_.iteration_seconds[1:]))
                graph_iter.append(statistics.median(c.report_.iteration_seconds[1:]))
                diff = max(diff, *(rel(getattr(fit, name), getattr(a, name)) for fit in (b, c)
                                   for name in ("weights_", "means_", "covariances_")))
            li, di = statistics.median(local_iter), statistics.median(dask_iter)
            gi = statistics.median(graph_iter)
            lf, df = statistics.median(local_fit), statistics.median(dask_fit)
            say(f"| {covariance} | {li:.3f} | {di:.3f} | {di / li:.2f} | {gi:.3f} | {gi / li:.2f} "
                f"| {lf:.2f} | {df:.2f} | {df / lf:.2f} | {diff:.1e} |")
        client.cancel(xd)
    say()
    say(f"other processes' share of the CPUs after the run: {busy_share():.0%}")
    say.write(args.out)


if __name__ == "__main__":
    main()

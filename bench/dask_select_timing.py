#!/usr/bin/env python3
"""emix.select of a persisted Dask array on a LocalCluster: the passes on the workers against
the blocks read into this process on every pass (what emix.select did before), and against the
in-process selection on the same cores.

Three selections of the same grid (--kmax K values x --covariances), alternately, --repeats
times each:

* workers: `emix.select(Xd)`, Xd persisted on a LocalCluster of --workers processes x 1
  thread in blocks of --block-rows rows: each pass is one task per block on the workers, which
  send back the block's statistics; only block 0 and the initialisation's sampled rows reach
  this process;
* read here: `emix.select(emix.chunked(Xd, chunk_rows=--block-rows))`: the same chunks,
  computed into this process on every pass and accumulated here (every core of this process);
* in process: `emix.select(X)` on the NumPy array.

The first two must agree bitwise (the same chunks' statistics, added in the same order), the
third to 1e-9 on the criteria (checked). Reported: the median seconds of each selection, the
ratios, and the peak RSS of this process over the whole run.

    build/python-venv/bin/python bench/dask_select_timing.py --out bench/results/dask-select-DATE.md
"""

import argparse
import os
import resource
import statistics
import sys
import time
import warnings

import numpy as np

from dask_timing import Report, busy_share, environment, mixture


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=8, help="components of the data's mixture")
    parser.add_argument("--kmax", type=int, default=8, help="the grid's K: 1..kmax")
    parser.add_argument("--covariances", default="full,diag")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--block-rows", type=int, default=125_000)
    parser.add_argument("--out", help="also write the result as Markdown here")
    args = parser.parse_args()

    import dask.array as da
    import distributed

    import emix

    x = mixture(args.n, args.d, args.k, seed=1)
    grid = dict(n_components=range(1, args.kmax + 1),
                covariance_types=args.covariances.split(","), device="cpu")
    say = Report()

    say(f"# emix.select of a Dask array: passes on the workers, {time.strftime('%Y-%m-%d')}")
    say()
    say(environment())
    say(f"- data: {args.n} x {args.d} float64, a {args.k}-component mixture; grid K = "
        f"1..{args.kmax} x {{{args.covariances}}}, emix.select's defaults (max_iter 100, "
        f"tol 1e-3); {args.repeats} runs each, alternately")
    say(f"- Dask: LocalCluster, {args.workers} worker processes x 1 thread, the array "
        f"persisted in blocks of {args.block_rows} rows")
    say(f"- command: `{' '.join([os.path.basename(sys.executable)] + sys.argv)}`")
    say()

    def timed(run):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            result = run()
            return result, time.perf_counter() - t0

    seconds = {"workers": [], "read here": [], "in process": []}
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        xd = da.from_array(x, chunks=(args.block_rows, args.d)).persist()
        distributed.wait(xd)
        runs = {
            "workers": lambda: emix.select(xd, **grid),
            "read here": lambda: emix.select(emix.chunked(xd, chunk_rows=args.block_rows),
                                             **grid),
            "in process": lambda: emix.select(x, **grid),
        }
        results = {}
        for _ in range(args.repeats):
            for name, run in runs.items():
                results[name], s = timed(run)
                seconds[name].append(s)
        client.cancel(xd)
    a, b, c = results["workers"], results["read here"], results["in process"]
    for p, q in zip(a.candidates, b.candidates):
        assert {**p, "seconds": 0} == {**q, "seconds": 0}, "workers and read here differ"
    worst = max(abs(p[k] - q[k]) / abs(q[k]) for p, q in zip(a.candidates, c.candidates)
                for k in ("bic", "aic", "icl") if np.isfinite(q[k]))
    assert worst < 1e-9, worst
    median = {name: statistics.median(s) for name, s in seconds.items()}
    say("| selection | median s | / workers | engine |")
    say("|---|---|---|---|")
    for name, result in (("workers", a), ("read here", b), ("in process", c)):
        say(f"| {name} | {median[name]:.2f} | {median[name] / median['workers']:.2f} | "
            f"{result.engine} |")
    say()
    say(f"Workers and read here: every candidate equal (bitwise); in process: criteria within "
        f"{worst:.1e} relative. Best by BIC: K = {a.best_['n_components']}, "
        f"{a.best_['covariance_type']}; {a.passes} passes. Peak RSS of this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (the data, "
        f"{x.nbytes / 2**20:.0f} MiB, included).")
    say()
    say(f"other processes' share of the CPUs after the run: {busy_share():.0%}")
    say.write(args.out)


if __name__ == "__main__":
    main()

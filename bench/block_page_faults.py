#!/usr/bin/env python3
"""One block's statistics (emix.accumulate) under the environment a Dask worker runs in:
seconds and minor page faults per call, in a child process with and without Dask's nanny
settings (MALLOC_TRIM_THRESHOLD_=65536, OMP_NUM_THREADS=1), side by side.

glibc reads MALLOC_TRIM_THRESHOLD_ at start-up; setting it also fixes the mmap threshold at
128 KiB, so every larger buffer a call allocates is a fresh mapping whose pages fault in again.

    PYTHONPATH=build/python build/python-venv/bin/python bench/block_page_faults.py
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings


def child(args):
    import numpy as np

    import emix

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, args.d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = emix.GaussianMixture(args.k, covariance_type=args.covariance, random_state=0,
                                  device="cpu", max_iter=0).fit(x)
    seconds, faults = [], []
    for _ in range(args.calls):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        emix.accumulate(gm, x)
        seconds.append(time.perf_counter() - t0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps({"seconds": statistics.median(seconds[1:]),
                      "faults": statistics.median(faults[1:])}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=125_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--covariances", default="full,diag")
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--covariance", default="full", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    print(f"{args.rows} x {args.d} float64, K = {args.k}, one thread; the median of "
          f"{args.calls - 1} calls after the first")
    print()
    print("| covariance | environment | ms a call | minor page faults a call |")
    print("|---|---|---|---|")
    settings = {"plain": {}, "Dask worker": {"MALLOC_TRIM_THRESHOLD_": "65536"}}
    for covariance in args.covariances.split(","):
        for name, extra in settings.items():
            env = {key: value for key, value in os.environ.items()
                   if key != "MALLOC_TRIM_THRESHOLD_"}
            env.update(OMP_NUM_THREADS="1", **extra)
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--covariance", covariance,
                 "--rows", str(args.rows), "--d", str(args.d), "--k", str(args.k),
                 "--calls", str(args.calls)], env=env, check=True, capture_output=True,
                text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            print(f"| {covariance} | {name} | {1e3 * result['seconds']:.1f} | "
                  f"{result['faults']:.0f} |")


if __name__ == "__main__":
    main()

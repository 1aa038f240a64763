#!/usr/bin/env python3
"""`mpiexec -n P emix fit` against `emix fit`: the same model for P = 2 and 3 (each rank reads
only its rows of the .npy), a sample-weights file sharded the same way, other commands run once,
and a NaN in the last rank's rows ends every rank with one clear message and no model file,
without hanging.

Tolerance 1e-9 relative per parameter: the ranks' statistics are the single process's sums
grouped differently (see tests/mpi/mpi_fit_test.cpp)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def parameters(path):
    with open(path) as f:
        m = json.load(f)
    return np.concatenate([np.ravel(np.asarray(m[k], dtype=float))
                           for k in ("weights", "means", "covariances") if k in m])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emix", required=True)
    ap.add_argument("--mpiexec", required=True)
    args = ap.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "x.npy")
        weights = os.path.join(tmp, "w.npy")
        r = run([args.emix, "generate", "--n", "30001", "--d", "3", "-k", "3", "--seed", "4",
                 "-o", data, "-q"])
        assert r.returncode == 0, r.stderr
        np.save(weights, 0.5 + np.arange(30001) % 3)
        common = ["-k", "3", "--seed", "9", "--device", "cpu", "--threads", "1", "--tol", "0",
                  "--max-iter", "15", "-q"]
        for weighted in (False, True):
            extra = ["--sample-weight", weights] if weighted else []
            single = os.path.join(tmp, "single.json")
            r = run([args.emix, "fit", data, *common, *extra, "-o", single])
            assert r.returncode == 0, r.stderr
            for ranks in (2, 3):
                out = os.path.join(tmp, f"mpi{ranks}.json")
                r = run([args.mpiexec, "-n", str(ranks), args.emix, "fit", data, *common, *extra,
                         "-o", out])
                if r.returncode != 0:
                    failures.append(f"{ranks} ranks: exit {r.returncode}: {r.stderr}")
                    continue
                a, b = parameters(out), parameters(single)
                diff = np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))
                print(f"{ranks} ranks{' weighted' if weighted else ''}: max relative "
                      f"difference from one process {diff:.2g}")
                if not diff < 1e-9:
                    failures.append(f"{ranks} ranks: parameters differ by {diff:.3g}")

        # Commands other than fit run once, on rank 0.
        r = run([args.mpiexec, "-n", "3", args.emix, "score", single, data])
        lines = [line for line in r.stdout.splitlines() if line.strip()]
        print("score under 3 ranks:", lines)
        if r.returncode != 0 or len(lines) != 1:
            failures.append(f"emix score under 3 ranks: exit {r.returncode}, output {lines}")

        # A NaN in the last rank's rows (rows 20001..30001 of 3 ranks).
        x = np.load(data)
        x[25000, 1] = np.nan
        bad = os.path.join(tmp, "bad.npy")
        np.save(bad, x)
        out = os.path.join(tmp, "bad.json")
        r = run([args.mpiexec, "-n", "3", args.emix, "fit", bad, *common, "-o", out])
        errors = [line for line in r.stderr.splitlines() if line.startswith("emix: error:")]
        print("NaN on rank 2:", errors[:1])
        if r.returncode == 0:
            failures.append("a NaN in rank 2's rows: exit status 0")
        if len(errors) != 3 or len(set(errors)) != 1:
            failures.append(f"expected the same error from all 3 ranks, got {errors}")
        elif "rank 2 of 3" not in errors[0] or "row 25001" not in errors[0]:
            failures.append(f"the error does not name rank 2 and row 25001: {errors[0]}")
        if os.path.exists(out):
            failures.append("a model file was written despite the error")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

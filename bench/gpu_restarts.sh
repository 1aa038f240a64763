#!/usr/bin/env bash
# Issue 14's GPU restarts target, measured: one fit against ten restarts (n_init 10) of a diag
# model, K = 8, on 10^8 x 8 float32 rows, on the GPU, 20 iterations each (tol 0), from the fit
# reports of `emix fit`. The kernel variants come from EMIX_GPU_VARIANTS, as for every engine
# the program makes. Needs 3.2 GB of disk in TMPDIR.
#
#   bench/gpu_restarts.sh EMIX_BINARY [ROWS]     (EMIX_RESTARTS_DEVICE=cpu: a smoke test here)
set -euo pipefail
EMIX=$1
ROWS=${2:-100000000}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/emix-restarts.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
"$EMIX" generate --n "$ROWS" --d 8 -k 8 --covariance diag --precision float --seed 14 \
  -q -o "$DIR/x.npy"
for n_init in 1 10; do
  "$EMIX" fit "$DIR/x.npy" -k 8 --covariance diag --max-iter 20 --tol 0 --n-init "$n_init" \
    --seed 14 --device "${EMIX_RESTARTS_DEVICE:-gpu}" --precision float -q -o "$DIR/m$n_init.json"
  python3 - "$DIR/m$n_init.json" "$n_init" <<'PY'
import json, statistics, sys
fit = json.load(open(sys.argv[1]))["fit"]
print(f"n_init {sys.argv[2]}: {fit['engine']} seconds {fit['seconds']:.3f} setup "
      f"{fit['setup_seconds']:.3f} init {fit['init_seconds']:.3f} median iteration "
      f"{statistics.median(fit['iteration_seconds']):.5f} iterations {fit['n_iter']}")
PY
done

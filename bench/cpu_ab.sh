#!/bin/bash
# Two emix builds' CPU fits side by side, on separated and overlapping data, float64 and float32,
# full and diag: the medians of the fit report's median iteration and of the whole fit over the
# rounds, old and new alternating.
#   bench/cpu_ab.sh OLD_EMIX NEW_EMIX [ROUNDS=3] [DIR=/tmp/emix-cpu-ab]
# Separated: `emix generate` (2 x 10^5 x 16, K = 8). Overlapping: the same shape, eight unit
# Gaussians with means in [-0.5, 0.5]^16 (made with $PYTHON, default python3, and NumPy). 20
# iterations each (tol 0), seed 5, 2 threads.
# COVARIANCES (default "full diag") picks the covariance types.
set -euo pipefail
old=$1 new=$2 rounds=${3:-3} dir=${4:-/tmp/emix-cpu-ab}
mkdir -p "$dir"
cd "$dir"
[ -f sep.npy ] || "$new" generate --n 200000 --d 16 -k 8 --seed 1 -q -o sep.npy
[ -f ovl.npy ] || "${PYTHON:-python3}" -c "
import numpy as np
rng = np.random.default_rng(2)
means = rng.uniform(-0.5, 0.5, size=(8, 16))
np.save('ovl.npy', means[rng.integers(0, 8, 200000)] + rng.normal(size=(200000, 16)))"
run() {  # binary data covariance precision
  "$1" fit "$2" -k 8 --covariance "$3" --precision "$4" --max-iter 20 --tol 0 --seed 5 \
    --device cpu --threads 2 -q -o "$dir/m.json"
  python3 -c "
import json, statistics
f = json.load(open('$dir/m.json'))['fit']
print('%.4f %.3f' % (statistics.median(f['iteration_seconds']), f['seconds']))"
}
medians() {  # "iteration fit" pairs -> the median of each column
  local mid=$((($# + 1) / 2))
  echo "$(printf '%s\n' "$@" | cut -d' ' -f1 | sort -n | sed -n "${mid}p")" \
    "$(printf '%s\n' "$@" | cut -d' ' -f2 | sort -n | sed -n "${mid}p")"
}
printf '%-6s %-5s %-8s %-24s %-24s\n' data cov precision "old: iteration, fit (s)" \
  "new: iteration, fit (s)"
for data in sep ovl; do
  for cov in ${COVARIANCES:-full diag}; do
    for precision in double float; do
      o=() n=()
      for ((r = 0; r < rounds; ++r)); do
        o+=("$(run "$old" $data.npy $cov $precision)")
        n+=("$(run "$new" $data.npy $cov $precision)")
      done
      printf '%-6s %-5s %-8s %-24s %-24s\n' $data $cov $precision "$(medians "${o[@]}")" \
        "$(medians "${n[@]}")"
    done
  done
done

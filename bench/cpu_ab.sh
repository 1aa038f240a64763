#!/bin/bash
# Two emix builds' CPU fits side by side, on separated and overlapping data, float64 and float32,
# full and diag: the medians of the fit report's median iteration and of the whole fit over the
# rounds, old and new alternating.
#   bench/cpu_ab.sh OLD_EMIX NEW_EMIX [ROUNDS=3] [DIR=/tmp/emix-cpu-ab]
# Separated: `emix generate` (N x D = 2 x 10^5 x 16, K = 8). Overlapping: the same shape, K unit
# Gaussians with means in [-0.5, 0.5]^D (made with $PYTHON, default python3, and NumPy). 20
# iterations each (tol 0), seed 5, 2 threads.
# COVARIANCES (default "full diag") picks the covariance types; N, D and K the shape (wide data:
# N=300 D=512 K=16).
set -euo pipefail
old=$1 new=$2 rounds=${3:-3} dir=${4:-/tmp/emix-cpu-ab}
n=${N:-200000} d=${D:-16} k=${K:-8}
mkdir -p "$dir"
cd "$dir"
sep=sep-${n}x${d}x${k}.npy ovl=ovl-${n}x${d}x${k}.npy
[ -f $sep ] || "$new" generate --n $n --d $d -k $k --seed 1 -q -o $sep
[ -f $ovl ] || "${PYTHON:-python3}" -c "
import numpy as np
rng = np.random.default_rng(2)
means = rng.uniform(-0.5, 0.5, size=($k, $d))
np.save('$ovl', means[rng.integers(0, $k, $n)] + rng.normal(size=($n, $d)))"
run() {  # binary data covariance precision
  "$1" fit "$2" -k $k --covariance "$3" --precision "$4" --max-iter 20 --tol 0 --seed 5 \
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
printf '%-20s %-9s %-8s %-24s %-24s\n' data cov precision "old: iteration, fit (s)" \
  "new: iteration, fit (s)"
for data in sep-${n}x${d}x${k} ovl-${n}x${d}x${k}; do
  for cov in ${COVARIANCES:-full diag}; do
    for precision in double float; do
      old_times=() new_times=()
      for ((r = 0; r < rounds; ++r)); do
        old_times+=("$(run "$old" $data.npy $cov $precision)")
        new_times+=("$(run "$new" $data.npy $cov $precision)")
      done
      printf '%-20s %-9s %-8s %-24s %-24s\n' $data $cov $precision "$(medians "${old_times[@]}")" \
        "$(medians "${new_times[@]}")"
    done
  done
done

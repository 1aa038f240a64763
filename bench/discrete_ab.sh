#!/bin/bash
# Bernoulli fits of two emix builds side by side, on the CPU engine, 2 threads.
#   bench/discrete_ab.sh OLD_EMIX NEW_EMIX [ROUNDS=3] [DIR=/tmp/emix-discrete-ab]
# Writes (once) 0/1 data drawn from known mixtures into DIR, float64 and float32 (fitted with
# --precision float), with a start model for each (one iteration of NEW_EMIX from k-means++);
# then, per file, old and new alternate ROUNDS times, 8 iterations each from that start, and it
# prints the best and the median of their median seconds per iteration. FILES="NAME-64.npy ..." runs a subset;
# EMIX_CPU_LEVEL=avx2 (say) is passed on to both. Needs python3 with NumPy (PYTHON=...).
set -euo pipefail
old=$(realpath "$1") new=$(realpath "$2") rounds=${3:-3} dir=${4:-/tmp/emix-discrete-ab}
python=$(command -v "${PYTHON:-python3}")
[[ $python == /* ]] || python=$PWD/$python  # not realpath: a venv's python is a link
mkdir -p "$dir"
cd "$dir"
"$python" - <<'PY'
import os
import numpy as np
rng = np.random.default_rng(1)
# (n, d, k, spread of the logits: 3 well separated, 0.4 overlapping)
for n, d, k, spread in [(1000000, 16, 2, 0.4), (1000000, 16, 4, 0.4), (1000000, 16, 8, 0.4),
                        (200000, 100, 8, 0.4), (200000, 100, 20, 0.4), (60000, 784, 10, 3.0),
                        (60000, 784, 40, 0.4), (20000, 2000, 50, 0.4)]:
    name = f"b{n}x{d}k{k}"
    logits = rng.normal(scale=spread, size=(k, d))
    labels = rng.integers(0, k, n)
    if os.path.exists(name + "-32.npy"):
        continue
    x = rng.random((n, d)) < 1 / (1 + np.exp(-logits[labels]))
    np.save(name + "-64.npy", x.astype(np.float64))
    np.save(name + "-32.npy", x.astype(np.float32))
PY
for f in b*-64.npy; do
  base=${f%-64.npy}
  k=${base##*k}
  [ -f "$base-init.json" ] ||
    "$new" fit "$f" --family bernoulli -k "$k" --max-iter 1 --tol 0 -o "$base-init.json" >/dev/null 2>&1
done
median_iteration() {
  "$python" -c "import json, statistics, sys
print(statistics.median(json.load(open(sys.argv[1]))['fit']['iteration_seconds'][1:]))" "$1"
}
for f in ${FILES:-$(ls b*-64.npy b*-32.npy)}; do
  base=${f%-??.npy}
  precision=double
  [ "${f%-32.npy}" != "$f" ] && precision=float
  times_old=() times_new=()
  for _ in $(seq "$rounds"); do
    for which in old new; do
      exe=$old
      [ "$which" = new ] && exe=$new
      OMP_NUM_THREADS=2 "$exe" fit "$f" --init-model "$base-init.json" --max-iter 8 --tol 0 \
        --precision "$precision" -o "$dir/out-$which.json" >/dev/null 2>&1
      t=$(median_iteration "$dir/out-$which.json")
      if [ "$which" = old ]; then times_old+=("$t"); else times_new+=("$t"); fi
    done
  done
  "$python" -c "import statistics as s, sys
o = [float(v) for v in sys.argv[2].split()]; n = [float(v) for v in sys.argv[3].split()]
print(f'{sys.argv[1]:<26} old {min(o):.4f} s  new {min(n):.4f} s  old/new {min(o) / min(n):.2f}'
      f'  (medians {s.median(o):.4f} {s.median(n):.4f})')" "$f" "${times_old[*]}" "${times_new[*]}"
done

#!/bin/bash
# Initialisation of two emix builds side by side, on the CPU engine: its time against an EM
# iteration's, and how often the default start reaches the best fit.
#   bench/init_seeding_ab.sh OLD_EMIX NEW_EMIX [DIR=/tmp/emix-init-ab]
# Data: `emix generate` (well-separated mixtures) of 10^6 x 16 (K = 16 full, K = 16 diag,
# K = 256 diag), 2 x 10^5 x 64 (K = 32 full) and 5 x 10^4 x 16 (K = 16) rows, written once.
# Each fit is one process, old and new alternating; the times are the fit report's
# (init_seconds, the median of iteration_seconds).
set -euo pipefail
old=$1 new=$2 dir=${3:-/tmp/emix-init-ab}
mkdir -p "$dir"
cd "$dir"
gen() { [ -f "$1" ] || "$new" generate "${@:2}" -o "$1" >/dev/null; }
gen g16.npy --n 1000000 --d 16 -k 16 --seed 1
gen sd16.npy --n 1000000 --d 16 -k 16 --covariance diag --seed 1012
gen g256.npy --n 1000000 --d 16 -k 256 --covariance diag --seed 2
gen g64.npy --n 200000 --d 64 -k 32 --seed 3
gen a50.npy --n 50000 --d 16 -k 16 --seed 1
report() {
  python3 -c "
import json, statistics
f = json.load(open('$1'))['fit']
it = statistics.median(f['iteration_seconds'])
print('init %.3f s  iteration %.3f s  init/iteration %.2f  iterations %d  mean log-lik %.6f'
      % (f['init_seconds'], it, f['init_seconds'] / it, f['n_iter'], f['mean_log_likelihood']))"
}
echo "== time (seed 5), two rounds"
for round in 1 2; do
  for c in "g16.npy -k 16 --covariance full" "sd16.npy -k 16 --covariance diag" \
           "g256.npy -k 256 --covariance diag" "g64.npy -k 32 --covariance full"; do
    for b in old new; do
      bin=$old; [ $b = new ] && bin=$new
      # shellcheck disable=SC2086
      "$bin" fit $c --seed 5 -q -o "$dir/$b.json"
      printf '%-36s %s  %s\n' "$c" "$b" "$(report "$dir/$b.json")"
    done
  done
done
echo "== mean log-likelihood from seeds 1-10 (a50.npy, K = 16 full)"
for b in old new; do
  bin=$old; [ $b = new ] && bin=$new
  line=$b
  for s in 1 2 3 4 5 6 7 8 9 10; do
    "$bin" fit a50.npy -k 16 --seed $s -q -o "$dir/$b.json"
    line="$line $(python3 -c "import json; print('%.3f' % json.load(open('$dir/$b.json'))['fit']['mean_log_likelihood'])")"
  done
  echo "$line"
done

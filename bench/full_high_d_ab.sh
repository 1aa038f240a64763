#!/bin/bash
# Full and tied Gaussian fits at high D of two emix builds side by side, on the CPU engine.
#   bench/full_high_d_ab.sh OLD_EMIX NEW_EMIX [ROUNDS=2] [DIR=/tmp/emix-high-d-ab]
# Writes (once) into DIR 4000 x 2048, 10^4 x 1024 and 2*10^4 x 256 float64 data from
# `emix generate` (K = 2, 8, 8; seeds 3, 5, 6); then per case old and new alternate ROUNDS
# times, each a whole `emix fit` from k-means++, and it prints the median of iterations 1..N and
# the fit's seconds.
# CASES="FILE_K_COVARIANCE_ITERATIONS ..." runs others; FIT_ARGS="..." is added to every fit
# (e.g. "--precision float").
set -euo pipefail
old=$(realpath "$1") new=$(realpath "$2") rounds=${3:-2} dir=${4:-/tmp/emix-high-d-ab}
mkdir -p "$dir"
cd "$dir"
for spec in "d2048 4000 2048 2 3" "d1024 10000 1024 8 5" "d256 20000 256 8 6"; do
  set -- $spec
  [ -e "$1.npy" ] || "$new" generate --n "$2" --d "$3" -k "$4" --seed "$5" -o "$1.npy" >/dev/null 2>&1
done
run() {  # EMIX FILE K COVARIANCE ITERATIONS: "median-s/it fit-s"
  "$1" fit "$2" -k "$3" --covariance "$4" --max-iter "$5" --tol 0 ${FIT_ARGS:-} -o model.json \
    >out.txt 2>&1
  awk '/^iter/ && $2 >= 1 { print $(NF-1) }' out.txt | sort -n |
    awk '{ a[NR] = $1 } END { printf "%s ", a[int((NR + 1) / 2)] }'
  awk '/^engine/ { print $(NF-1) }' out.txt
}
for spec in ${CASES:-d2048.npy_2_full_4 d1024.npy_8_full_4 d2048.npy_4_tied_4 d256.npy_8_full_10}; do
  set -- ${spec//_/ }
  for ((round = 1; round <= rounds; ++round)); do
    echo "$1 K=$2 $3, round $round: old $(run "$old" "$@") | new $(run "$new" "$@")"
  done
done

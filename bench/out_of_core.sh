#!/usr/bin/env bash
# Exact EM from disk (issue 14): fits FILE.npy, larger than memory, through `emix fit`'s memory
# mapping, and measures the disk's sequential read time of the same file in the same run.
#   bench/out_of_core.sh EMIX FILE.npy [ITERATIONS] [extra emix fit options...]
# Prints the disk's read time and rate (dd with O_DIRECT, so the page cache plays no part: a
# file larger than memory leaves little of itself cached anyway), the fit's iteration_seconds,
# and their ratio. Every iteration is one sequential pass over the file, so the target is an
# iteration within 1.5x of the read time.
set -euo pipefail
emix=$1
file=$2
iterations=${3:-3}
shift $(($# < 3 ? $# : 3))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bytes=$(stat -c %s "$file")
echo "file: $file, $bytes bytes; memory: $(free -b | awk '/Mem:/ {print $2}') bytes; $(nproc) CPUs"

read_seconds() {  # $1: extra dd flags
  local start end
  start=$(date +%s.%N)
  dd if="$file" of=/dev/null bs=16M $1 status=none
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

direct=$(read_seconds iflag=direct)
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
printf 'disk, O_DIRECT, 16 MiB reads: %.1f s, %s MB/s\n' "$direct" "$(rate "$direct")"

start=$(date +%s.%N)
/usr/bin/time -v "$emix" fit "$file" -k 8 --covariance diag --precision float --device cpu \
  --tol 0 --max-iter "$iterations" --seed 1 -o "$work/model.json" "$@" 2>"$work/fit.log"
end=$(date +%s.%N)
grep -E "memory-mapped|^iter|engine|Maximum resident|Elapsed" "$work/fit.log" || true
printf 'emix fit, whole command: %.1f s\n' "$(echo "$end - $start" | bc -l)"

buffered=$(read_seconds "")
printf 'disk, buffered (as the mapping reads), 16 MiB reads: %.1f s, %s MB/s\n' "$buffered" \
  "$(rate "$buffered")"

python3 - "$work/model.json" "$direct" "$buffered" <<'EOF'
import json, sys
fit = json.load(open(sys.argv[1]))["fit"]
direct, buffered = float(sys.argv[2]), float(sys.argv[3])
print("setup_seconds %.1f (set-up), init_seconds %.1f" % (fit["setup_seconds"], fit["init_seconds"]))
print("iteration_seconds", ", ".join("%.1f" % s for s in fit["iteration_seconds"]))
# Every entry is one pass over the file (the last one without an M-step, which takes
# microseconds here).
for s in fit["iteration_seconds"]:
    print("iteration %.1f s = %.2fx the O_DIRECT read, %.2fx the buffered read" % (s, s / direct, s / buffered))
EOF

#!/usr/bin/env bash
# A .npy in the run's element type is used in place through a memory mapping; where the file
# system refuses to map files (the shim makes every file mmap fail), emix reads it instead and
# fits the same model as --no-memory-map.
#   reads_unmappable_npy.sh EMIX SHIM.so
set -euo pipefail
emix=$1
shim=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$emix" generate --n 3000 --d 3 -k 3 --seed 2 -o "$work/x.npy" 2>/dev/null
args=(-k 3 --device cpu --seed 2 --tol 0 --max-iter 10 --quiet)
"$emix" fit "$work/x.npy" "${args[@]}" --no-memory-map -o "$work/copy.json"
LD_PRELOAD=$shim "$emix" fit "$work/x.npy" "${args[@]}" -o "$work/unmapped.json"
LD_PRELOAD=$shim "$emix" predict "$work/copy.json" "$work/x.npy" -o "$work/labels.npy"
# The models agree but for the timings.
strip() { grep -v '_seconds\|"seconds"' "$1" | sed 's/,$//'; }
diff <(strip "$work/copy.json") <(strip "$work/unmapped.json")
echo "read instead of mapped: same model"

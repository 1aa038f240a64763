#!/usr/bin/env bash
# A .npy used in place that another program truncates while emix reads it: a clear error with
# exit code 2 and no output file, not a crash. The shim (no_file_mmap.cpp) cuts the file to
# 4096 bytes right after emix maps it.
#   truncated_while_mapped.sh EMIX SHIM.so
set -euo pipefail
emix=$1
shim=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$emix" generate --n 20000 --d 4 -k 2 --seed 3 -o "$work/x.npy" 2>/dev/null
victim=$(realpath "$work/x.npy")
set +e
EMIX_TEST_FILE_MMAP="truncate:$victim" LD_PRELOAD=$shim \
  "$emix" fit "$victim" -k 2 --device cpu -o "$work/m.json" --labels "$work/l.npy" 2>"$work/err"
code=$?
set -e
cat "$work/err"
[ "$code" -eq 2 ] || { echo "exit code $code, expected 2"; exit 1; }
grep -q "ended before its data did" "$work/err"
[ ! -e "$work/m.json" ] && [ ! -e "$work/l.npy" ] || { echo "an output was left"; exit 1; }
[ -z "$(ls -A "$work" | grep -v '^x.npy$\|^err$')" ] || { echo "temporaries left:"; ls -A "$work"; exit 1; }
echo "truncated input: clear error, nothing written"

#!/usr/bin/env bash
# The emix program, built with the GPU engine, runs a CPU fit where CUDA's libraries are absent:
# the toolkit's library folder is hidden behind an empty one in a private mount namespace (as on
# a machine without CUDA). A program that linked cuBLAS would not start. Skips (77) where mount
# namespaces are not permitted (no root, or a container without CAP_SYS_ADMIN).
#   runs_without_cuda_libraries.sh EMIX CUDA_LIBRARY_DIR
set -euo pipefail
emix=$1
library_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/empty"
if ! unshare -m true 2>/dev/null; then
  echo "skipped: this process may not make a mount namespace (unshare -m)"
  exit 77
fi
unshare -m bash -euo pipefail -c '
  mount --bind "$3/empty" "$2"
  ! ls "$2"/libcublas.so* >/dev/null 2>&1 || { echo "cuBLAS still visible in $2"; exit 1; }
  "$1" generate --n 2000 --d 3 -k 2 --seed 1 -o "$3/x.npy" 2>/dev/null
  "$1" fit "$3/x.npy" -k 2 --device cpu --seed 1 -o "$3/m.json" --quiet
  "$1" fit "$3/x.npy" -k 2 --seed 1 -o "$3/auto.json" --quiet
  if "$1" fit "$3/x.npy" -k 2 --device gpu -o "$3/g.json" 2>"$3/err"; then
    echo "--device gpu succeeded without CUDA libraries"; exit 1
  fi
  grep -q -- "--device gpu: " "$3/err"
  echo "CPU fits ran with $2 hidden; --device gpu said: $(cat "$3/err")"
' bash "$emix" "$library_dir" "$work"

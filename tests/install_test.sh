#!/usr/bin/env bash
# cmake --install into a fresh prefix, then: no build or source path in the installed text
# files or in the binaries' run paths; no MPI in libemix.so or emix.pc (libemix_mpi has it);
# examples/ (C++, C, Fortran, and MPI where built) configured with find_package(emix 0.1)
# against that prefix, built and run; the C examples also built with pkg-config alone (emix.pc,
# emix-mpi.pc).
#   install_test.sh BUILD_DIR SOURCE_DIR [MPIEXEC]
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
mpiexec=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/emix-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in lib/libemix.so lib/libemix.a lib/cmake/emix/emixConfig.cmake \
         lib/cmake/emix/emixConfigVersion.cmake lib/pkgconfig/emix.pc include/emix/emix.h \
         include/emix/emix.hpp include/emix/config.h share/emix/fortran/emix.f90 bin/emix; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f was not installed" >&2; exit 1; }
done

# grep -I skips binary files: the text files must not name where emix was built from.
if leaks=$(grep -rIl -e "$build" -e "$source" "$prefix"); then
  echo "FAIL: installed files name the build or source tree:" >&2
  echo "$leaks" >&2
  exit 1
fi
# Binaries: no path into the build tree at all. (Source paths remain in the GPU code's line
# tables, which compute-sanitizer uses to name a faulting line.)
for binary in "$prefix"/lib/libemix.so "$prefix"/lib/libemix.a "$prefix"/bin/emix \
              "$prefix"/bin/emix-mpi; do
  [ -e "$binary" ] || continue
  if grep -q -a -F "$build/" "$binary"; then
    echo "FAIL: $binary names the build tree $build" >&2
    exit 1
  fi
done
for binary in "$prefix"/lib/libemix.so "$prefix"/lib/libemix_mpi.so "$prefix"/bin/emix \
              "$prefix"/bin/emix-mpi; do
  [ -e "$binary" ] || continue
  if readelf -d "$binary" | grep -E 'RPATH|RUNPATH' | grep -q -e "$build" -e "$source"; then
    echo "FAIL: $binary has a run path into the build tree" >&2
    exit 1
  fi
done

# The MPI fit is libemix_mpi's: libemix.so and emix.pc name no MPI, so a program that does not
# use it loads no libmpi and gets no MPI headers (an MPICH program, Open MPI's).
if readelf -d "$prefix/lib/libemix.so" | grep NEEDED | grep -q -i mpi; then
  echo "FAIL: libemix.so needs an MPI library:" >&2
  readelf -d "$prefix/lib/libemix.so" | grep NEEDED >&2
  exit 1
fi
if grep -q -i mpi "$prefix/lib/pkgconfig/emix.pc"; then
  echo "FAIL: emix.pc names MPI" >&2
  exit 1
fi
# The same for the program: `emix` starts without libmpi and hands mpirun's processes to
# emix-mpi (tests/cli_without_optional_libraries.py runs it with the libraries hidden).
if readelf -d "$prefix/bin/emix" | grep NEEDED | grep -q -i -e mpi -e cairo; then
  echo "FAIL: bin/emix needs an MPI or cairo library:" >&2
  readelf -d "$prefix/bin/emix" | grep NEEDED >&2
  exit 1
fi
if [ -n "$mpiexec" ]; then
  for f in bin/emix-mpi lib/libemix_mpi.so lib/libemix_mpi.a lib/pkgconfig/emix-mpi.pc \
           lib/cmake/emix/emixMpiTargets.cmake include/emix/emix_mpi.h include/emix/mpi.hpp; do
    [ -e "$prefix/$f" ] || { echo "FAIL: $f was not installed" >&2; exit 1; }
  done
fi

# libemix.so exports emix's symbols only (cmake/libemix.map): no Eigen, JSON or standard-library
# template instances that could clash with a program's own.
for library in "$prefix"/lib/libemix.so "$prefix"/lib/libemix_mpi.so; do
  [ -e "$library" ] || continue
  foreign=$(nm -D --defined-only -C "$library" | cut -d' ' -f3- |
            grep -v -E '^(emix|(typeinfo|typeinfo name|vtable|VTT) for emix::)' || true)
  if [ -n "$foreign" ]; then
    echo "FAIL: $library exports symbols that are not emix's:" >&2
    echo "$foreign" | head -20 >&2
    exit 1
  fi
done

# The build folder is no package: find_package and pkg-config searching it found files whose
# targets and paths exist only once installed.
for f in emixConfig.cmake emixConfigVersion.cmake emix.pc; do
  [ ! -e "$build/$f" ] || { echo "FAIL: the build folder holds $f at its top" >&2; exit 1; }
done
# emixConfig.cmake runs under its caller's policies: a project without CMP0057 (IN_LIST), as
# cmake_minimum_required(VERSION 3.2) or older leaves it, still finds the package.
mkdir -p "$work/old_policies"
cat >"$work/old_policies/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(old_policies LANGUAGES C CXX)
if(CMAKE_VERSION VERSION_LESS 4.0)  # CMake 4 cannot set a policy before 3.5 to OLD
  cmake_policy(SET CMP0057 OLD)
endif()
find_package(emix 0.1 REQUIRED)
CMAKE
cmake -S "$work/old_policies" -B "$work/old_policies/build" -DCMAKE_PREFIX_PATH="$prefix" \
      >"$work/old_policies.log" 2>&1 || { cat "$work/old_policies.log" >&2; exit 1; }

# A project of C alone links emix::emix_static with the C driver: the package supplies OpenMP
# from C and the C++ runtime (its generate step failed on OpenMP::OpenMP_CXX).
mkdir -p "$work/c_only"
cat >"$work/c_only/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(c_only LANGUAGES C)
find_package(emix 0.1 REQUIRED)
add_executable(fit_c_only_static "$source/examples/fit.c")
target_link_libraries(fit_c_only_static PRIVATE emix::emix_static m)
CMAKE
cmake -S "$work/c_only" -B "$work/c_only/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
      >"$work/c_only.log" 2>&1 && cmake --build "$work/c_only/build" >>"$work/c_only.log" 2>&1 ||
  { echo "FAIL: a C-only project linking emix::emix_static:" >&2; cat "$work/c_only.log" >&2; exit 1; }
echo "== fit.c alone, emix::emix_static"
"$work/c_only/build/fit_c_only_static"
# A required component that cannot be had says why (find_package printed only "NOT found").
mkdir -p "$work/no_mpi"
cat >"$work/no_mpi/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(no_mpi LANGUAGES C)
find_package(emix 0.1 REQUIRED COMPONENTS mpi)
CMAKE
if cmake -S "$work/no_mpi" -B "$work/no_mpi/build" -DCMAKE_PREFIX_PATH="$prefix" \
     -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON >"$work/no_mpi.log" 2>&1; then
  echo "FAIL: find_package(emix COMPONENTS mpi) succeeded without MPI" >&2
  exit 1
fi
grep -q "component mpi: " "$work/no_mpi.log" ||
  { echo "FAIL: a missing mpi component does not say why:" >&2; cat "$work/no_mpi.log" >&2; exit 1; }
if grep -n '//' "$prefix"/lib/pkgconfig/*.pc | grep -v 'http'; then
  echo "FAIL: a .pc file has a path with //" >&2
  exit 1
fi

cmake -S "$source/examples" -B "$work/examples" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; exit 1; }
cmake --build "$work/examples" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }

cd "$work"
for example in fit_cpp fit_cpp_static fit_c fit_fortran; do
  if [ ! -x "$work/examples/$example" ]; then
    [ "$example" = fit_fortran ] && { echo "skip $example: no Fortran compiler"; continue; }
    echo "FAIL: $example was not built" >&2
    exit 1
  fi
  # An executable stack (a Fortran callback built as a trampoline) is refused by hardened systems.
  if readelf -lW "$work/examples/$example" | grep GNU_STACK | grep -q RWE; then
    echo "FAIL: $example has an executable stack" >&2
    exit 1
  fi
  echo "== $example"
  "$work/examples/$example"
done
if [ -n "$mpiexec" ]; then
  for example in fit_mpi_c fit_mpi_fortran; do
    [ -x "$work/examples/$example" ] || { echo "skip $example: not built"; continue; }
    echo "== mpiexec -n 3 $example"
    "$mpiexec" -n 3 "$work/examples/$example"
  done
fi

echo "== fit.c with pkg-config"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046
cc -std=c99 "$source/examples/fit.c" -o "$work/fit_c_pkgconfig" $(pkg-config --cflags --libs emix) -lm
LD_LIBRARY_PATH=$prefix/lib "$work/fit_c_pkgconfig"
if [ -n "$mpiexec" ]; then
  echo "== fit_mpi.c with pkg-config emix-mpi, mpiexec -n 2"
  # shellcheck disable=SC2046
  cc -std=c99 "$source/examples/fit_mpi.c" -o "$work/fit_mpi_pkgconfig" \
     $(pkg-config --cflags --libs emix-mpi) -lm
  LD_LIBRARY_PATH=$prefix/lib "$mpiexec" -n 2 "$work/fit_mpi_pkgconfig"
  # A program that calls only libemix_mpi, linked --as-needed, records no libemix itself: it
  # starts only if libemix_mpi finds libemix beside it (no LD_LIBRARY_PATH here).
  echo "== a program of libemix_mpi's calls alone, --as-needed, its run path only"
  cat > "$work/shard_only.c" <<'C'
#include <emix/emix_mpi.h>
int main(void) {
  int64_t first = -1, count = -1;
  return emix_mpi_shard(10, 1, 2, &first, &count) == EMIX_OK && first == 5 && count == 5 ? 0 : 1;
}
C
  # shellcheck disable=SC2046
  cc -std=c99 "$work/shard_only.c" -o "$work/shard_only" -Wl,--as-needed \
     $(pkg-config --cflags --libs emix-mpi) -Wl,-rpath,"$prefix/lib"
  env -u LD_LIBRARY_PATH "$work/shard_only"
  # The installed `emix` under mpiexec runs the installed emix-mpi: one distributed fit, one
  # report.
  echo "== mpiexec -n 2 bin/emix fit"
  "$prefix/bin/emix" generate --n 2000 --d 2 -k 2 --seed 1 -o "$work/mpi_x.npy" -q
  env -u LD_LIBRARY_PATH "$mpiexec" -n 2 "$prefix/bin/emix" fit "$work/mpi_x.npy" -k 2 \
      -o "$work/mpi_model.json" >"$work/mpi_fit.log" 2>&1
  [ "$(grep -c "x 2 MPI ranks" "$work/mpi_fit.log")" = 1 ] ||
    { echo "FAIL: mpiexec -n 2 bin/emix fit did not run one fit over 2 ranks:" >&2;
      cat "$work/mpi_fit.log" >&2; exit 1; }
fi
[ "$(pkg-config --modversion emix)" = "$(sed -n 's/.*EMIX_VERSION_STRING "\(.*\)"/\1/p' "$prefix/include/emix/config.h")" ]
echo "install test passed"

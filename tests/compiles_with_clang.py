"""Every C++ source of the library (the GPU engine's host files included), the program and the
Python module compiles with clang too.

The build's own compile commands (compile_commands.json) are replayed with clang++ and
-fsyntax-only: the same definitions, include paths, language level and -march of each CPU
kernel level, so that a construct only GCC takes fails here (the CPU dispatch's
__builtin_cpu_supports("x86-64-v2"), which clang 14 refuses, broke every clang build for five
days while the GCC builds passed). Warnings are not judged (-w): the GCC build judges them.

    compiles_with_clang.py BUILD_DIR SOURCE_DIR CLANGXX
"""
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys


def clang_command(entry, clangxx):
    words = shlex.split(entry["command"])
    command = [clangxx, "-fsyntax-only", "-w"]
    skip_next = False
    for word in words[1:]:
        if skip_next:
            skip_next = False
            continue
        if word == "-o":
            skip_next = True
            continue
        if word.startswith("-W"):  # GCC's warning names; -w silences the rest
            continue
        command.append(word)
    return command


def main():
    build_dir, source_dir, clangxx = sys.argv[1:4]
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        entries = json.load(f)
    roots = [
        os.path.join(os.path.realpath(source_dir), part) + os.sep
        for part in ("src", "kernels", "python")
    ]
    chosen = [
        e
        for e in entries
        if e["file"].endswith(".cpp")
        and any(os.path.realpath(e["file"]).startswith(root) for root in roots)
        and "nvcc" not in os.path.basename(shlex.split(e["command"])[0])
    ]
    if not chosen:
        print(
            "no C++ source of src/, kernels/ or python/ in compile_commands.json",
            file=sys.stderr,
        )
        return 1

    def compile_one(entry):
        result = subprocess.run(
            clang_command(entry, clangxx),
            cwd=entry["directory"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return entry["file"], result.returncode, result.stdout

    failed = 0
    workers = max(1, min(2, os.cpu_count() or 1))  # the test's PROCESSORS
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for path, code, output in pool.map(compile_one, chosen):
            if code != 0:
                failed += 1
                print(f"clang++ cannot compile {path}:\n{output}", file=sys.stderr)
    print(f"{len(chosen) - failed} of {len(chosen)} sources compile with {clangxx}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

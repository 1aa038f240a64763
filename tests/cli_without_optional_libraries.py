#!/usr/bin/env python3
"""`emix` starts on a machine without MPI or cairo: an HPC login node without the MPI module, a
slim container. The program records neither library (readelf), and, where a private mount
namespace can hide them (`unshare -m`, as root or with user namespaces), `emix generate`,
`emix fit` and `emix select` run with both hidden, while `emix select --plot` is refused before
any work with a message naming cairo, and writes nothing. Under mpirun `emix` hands over to
`emix-mpi`, which links MPI: tests/mpi/cli_mpi_test.py runs that path; here, a copy of `emix`
with no `emix-mpi` beside it, told by the environment that a launcher started it, warns and
runs alone. Exit 77 (skipped) when the libraries cannot be hidden here; the other checks ran."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

OPTIONAL = ("libmpi", "libcairo")


def needed(binary):
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    return [line.split("[", 1)[1].rstrip("]") for line in out.stdout.splitlines()
            if "(NEEDED)" in line]


def resolved_paths(binary, prefixes):
    """The files the loader maps for `binary`'s libraries whose names start with `prefixes`."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[0].startswith(prefixes):
            paths.append(os.path.realpath(parts[2]))
    return paths


def cairo_paths():
    ldconfig = shutil.which("ldconfig") or shutil.which("ldconfig", path="/sbin:/usr/sbin")
    if ldconfig is None:
        return []
    out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True).stdout
    return sorted({os.path.realpath(line.split("=>")[1].strip()) for line in out.splitlines()
                   if line.strip().startswith("libcairo.so.2 ") and "=>" in line})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emix", required=True)
    args = ap.parse_args()
    failures = []

    recorded = [name for name in needed(args.emix) if name.startswith(OPTIONAL)]
    if recorded:
        failures.append(f"{args.emix} records {recorded}: it does not start without them")
    emix_mpi = os.path.join(os.path.dirname(os.path.abspath(args.emix)), "emix-mpi")

    hidden = cairo_paths()
    if os.path.exists(emix_mpi):
        hidden += resolved_paths(emix_mpi, ("libmpi",))
    with tempfile.TemporaryDirectory() as tmp:
        alone = os.path.join(tmp, "emix")
        shutil.copy2(args.emix, alone)
        r = subprocess.run([alone, "generate", "--n", "100", "--d", "2", "-k", "2", "--seed", "1",
                            "-o", os.path.join(tmp, "x.npy"), "-q"],
                           env=dict(os.environ, OMPI_COMM_WORLD_SIZE="1"), capture_output=True,
                           text=True, timeout=60)
        warned = "emix-mpi" in r.stderr and "runs alone" in r.stderr
        if r.returncode != 0 or not warned:
            failures.append(f"emix under a launcher, no emix-mpi beside it: exit {r.returncode}, "
                            f"{r.stderr.strip()!r}")

    unshare = shutil.which("unshare")
    # root mounts in a namespace of its own; another user needs a user namespace too.
    namespace = [unshare, "-m"] + ([] if os.geteuid() == 0 else ["-r"]) if unshare else []
    mounts = " && ".join(f"mount --bind /dev/null '{path}'" for path in hidden)
    probe = subprocess.run(namespace + ["sh", "-c", mounts] if namespace and hidden else ["false"],
                           capture_output=True)
    skipped = not hidden or probe.returncode != 0
    if skipped:
        print("skip: running with the libraries hidden needs cairo or MPI installed and "
              "`unshare -m` with bind mounts (a private mount namespace)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data, model = os.path.join(tmp, "x.npy"), os.path.join(tmp, "model.json")
            best, plot = os.path.join(tmp, "best.json"), os.path.join(tmp, "criteria.png")
            table = os.path.join(tmp, "table.csv")
            steps = [
                ("generate", [args.emix, "generate", "--n", "2000", "--d", "2", "-k", "2",
                              "--seed", "3", "-o", data, "-q"], 0),
                ("fit", [args.emix, "fit", data, "-k", "2", "--seed", "1", "-o", model, "-q"], 0),
                ("select", [args.emix, "select", data, "-k", "1..3", "--table", table, "-q"], 0),
                ("select --plot", [args.emix, "select", data, "-k", "1..3", "-o", best,
                                   "--plot", plot, "-q"], 2),
            ]
            for name, command, expected in steps:
                script = mounts + ' && exec "$@"'
                r = subprocess.run(namespace + ["sh", "-c", script, "sh", *command],
                                   capture_output=True, text=True, timeout=120)
                if r.returncode != expected:
                    failures.append(f"{name} with {hidden} hidden: exit {r.returncode} "
                                    f"(expected {expected}): {r.stderr.strip()}")
                elif expected != 0 and ("--plot" not in r.stderr or "libcairo2" not in r.stderr):
                    # "cannot load cairo ... libcairo2", or a build without cairo's header:
                    # "no PNG plotting ... libcairo2-dev"
                    failures.append(f"{name}: the message does not name cairo: {r.stderr}")
            for path in (model, table):
                if not os.path.exists(path):
                    failures.append(f"no {os.path.basename(path)} written with {hidden} hidden")
            for path in (best, plot):
                if os.path.exists(path):
                    failures.append(f"a refused --plot left {os.path.basename(path)} behind")
            print(f"ran generate, fit, select with {hidden} hidden")

    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else (77 if skipped else 0)


if __name__ == "__main__":
    sys.exit(main())

"""emix in processes: forked after it ran its threads (multiprocessing's default on Linux), and
under limits that keep its threads from starting."""

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import emix
from conftest import TIME_AN_INTERRUPT

X = np.random.default_rng(0).normal(size=(5000, 3))


def _fit_in_child():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = emix.GaussianMixture(3, random_state=0, device="cpu").fit(X)
        gm.predict(X)
        drawn, _ = gm.sample(200_000)  # several blocks of rows, once drawn in parallel here
    return gm.means_, drawn, [str(w.message) for w in caught if w.category is RuntimeWarning]


@pytest.mark.skipif(sys.platform != "linux", reason="fork() and GNU OpenMP: Linux")
def test_a_child_forked_after_a_fit_runs_on_one_thread_instead_of_hanging():
    """GNU OpenMP's thread pool does not survive fork(): a fit in a child forked after the
    parent had fitted never returned, and so did sample() of more than one block of rows. The
    child now runs on one thread, says so once, and fits and draws the same (the CPU engine's
    results and the draws do not depend on the thread count)."""
    parent = emix.GaussianMixture(3, random_state=0, device="cpu").fit(X)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(_fit_in_child)
        means, drawn, messages = result.get(timeout=60)  # a hang fails here
    np.testing.assert_array_equal(means, parent.means_)
    np.testing.assert_array_equal(drawn, parent.sample(200_000)[0])  # whatever the threads
    assert len(messages) == 1 and "one thread" in messages[0] and "spawn" in messages[0]


THREADS_SCRIPT = """
import resource
import numpy as np
import emix

with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) for line in status if line.startswith("VmSize")) * 1024
# 256 MiB more than the process holds: fits of 2 threads work, 1024 threads' stacks cannot start.
resource.setrlimit(resource.RLIMIT_AS, (size + 2**28, size + 2**28))
x = np.random.default_rng(0).normal(size=(2000, 3))
try:
    emix.GaussianMixture(2, random_state=0, device="cpu").fit(x)
except emix.OutOfMemory as error:
    print("raised:", error)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="GNU OpenMP and RLIMIT_AS: Linux")
def test_threads_that_cannot_start_raise_instead_of_ending_the_interpreter():
    """GNU OpenMP calls exit(1) when it cannot start a region's threads (under ulimit -v): the
    interpreter ended in the middle of fit, no exception, no finally. emix starts the threads
    itself first and raises OutOfMemory naming the remedy."""
    env = dict(os.environ, OMP_NUM_THREADS="1024", OPENBLAS_NUM_THREADS="1")
    env.pop("OMP_STACKSIZE", None)
    env.pop("GOMP_STACKSIZE", None)
    run = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "raised: cannot start 1024 threads" in run.stdout, run.stdout + run.stderr
    assert "fewer threads (n_threads, or OMP_NUM_THREADS)" in run.stdout


FORKED_FROM_A_THREAD = textwrap.dedent("""
    import json, os, threading, warnings
    import numpy as np
    import emix

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    model = emix.GaussianMixture(128, max_iter=1, random_state=0, device="cpu").fit(
        rng.normal(size=(5000, 16)))
    x = rng.normal(size=(400_000, 16))
    read, write = os.pipe()

    def child():
        # A fork from this thread: the child's only thread, where Python runs signal handlers.
        pid = os.fork()
        if pid:
            return
        result = time_an_interrupt(lambda: model.predict_proba(x))
        os.write(write, json.dumps(result).encode())
        os._exit(0)

    thread = threading.Thread(target=child)
    thread.start()
    thread.join()
    os.close(write)
    print(os.read(read, 4096).decode())
    os.wait()
""")


@pytest.mark.skipif(sys.platform != "linux", reason="fork() from a thread: Linux")
def test_a_child_forked_from_a_thread_hears_ctrl_c_inside_a_call(tmp_path):
    """multiprocessing's Pool forks new workers from a thread: in the child, that thread is the
    main one, where Python runs signal handlers, and the library must check for signals there
    (it checked on the parent's main thread, which the child has not, and predict ran on to its
    end)."""
    script = tmp_path / "forked.py"
    script.write_text(TIME_AN_INTERRUPT + FORKED_FROM_A_THREAD)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["after_signal"] is not None, result
    # Checked, the signal is heard within the 50 ms between checks and a 64th of the call;
    # unchecked, it waits for the call's end, three quarters of the call after it was sent.
    assert result["after_signal"] < result["whole"] / 2, result


REIMPORTED = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    import emix

    x = np.random.default_rng(0).normal(size=(500, 2))
    first = emix.GaussianMixture(2, random_state=0, device="cpu").fit(x).means_
    for name in [n for n in sys.modules if n == "emix" or n.startswith("emix.")]:
        del sys.modules[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nanobind's "type ... was already registered"
        import emix as again
    assert again is not emix
    second = again.GaussianMixture(2, random_state=0, device="cpu").fit(x).means_
    np.testing.assert_array_equal(first, second)
    try:
        again.GaussianMixture(0).fit(x)
    except emix.InvalidArgument:  # the first import's class: the same types in both
        print("same errors")
""")


def test_emix_imported_again_after_being_removed_from_sys_modules_works():
    """Test harnesses and reloaders delete a package from sys.modules and import it again. The
    extension module ran its initialisation a second time, nanobind refused to register its
    types again, and the new module lacked its classes (AttributeError: FitOptions)."""
    run = subprocess.run([sys.executable, "-c", REIMPORTED], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "same errors" in run.stdout, run.stdout + run.stderr

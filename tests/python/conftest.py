"""Shared fixtures of the Python tests.

The tests import the emix package from wherever Python finds it: the build tree (CTest sets
PYTHONPATH=<build>/python) or an installed wheel. Tests that need the emix program take its
path from EMIX_CLI (CTest sets it) and skip without it.
"""

import os
import shutil
import textwrap

# scikit-learn runs its array API check only where SciPy was imported with this set.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


# The source of time_an_interrupt, for the scripts the interrupt tests run in processes of
# their own (a SIGINT there is theirs alone): prepend it to the script.
TIME_AN_INTERRUPT = textwrap.dedent("""
    import os, signal, threading, time

    def time_an_interrupt(call):
        \"\"\"Times call(), then runs it again with SIGINT sent a quarter into it: its length,
        and the seconds from the signal to the KeyboardInterrupt (None: the call ended).\"\"\"
        start = time.perf_counter()
        call()
        whole = time.perf_counter() - start
        sent = []

        def fire():
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

        threading.Timer(whole / 4, fire).start()
        try:
            call()
            return {"whole": whole, "after_signal": None}
        except KeyboardInterrupt:
            return {"whole": whole, "after_signal": time.perf_counter() - sent[0]}
""")


def overlapping_mixture(seed, n=500, d=3, k=3, weights=(0.5, 0.3, 0.2)):
    """n points in d dimensions from k overlapping Gaussian components, so responsibilities
    are soft and EM iterates keep moving (the data of tests/sklearn_parity.py)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(k, d))
    labels = rng.choice(k, size=n, p=list(weights))
    x = np.empty((n, d))
    for c in range(k):
        a = rng.normal(size=(d, d)) * 0.6 + np.eye(d)
        rows = labels == c
        x[rows] = centres[c] + rng.normal(size=(rows.sum(), d)) @ a.T
    return x


@pytest.fixture
def gaussian_data():
    return overlapping_mixture(20240601)


@pytest.fixture
def emix_cli():
    path = os.environ.get("EMIX_CLI") or shutil.which("emix")
    if not path or not os.path.exists(path):
        pytest.skip("the emix program is not available: set EMIX_CLI to its path (CTest does)")
    return path

"""The engine options of every library call, and the one-thread rule after fork()."""

import os

from . import _emix
from ._warnings import warn

# GNU OpenMP's thread pool does not survive fork(): a process forked after emix has run its
# threads hangs in its first parallel region (multiprocessing's default start method on Linux,
# measured: a fit in the child never returned). Such a child runs emix on one thread instead,
# and says so once; the 'spawn' and 'forkserver' start methods keep every thread.
_threads_started = False
_forked_after_threads = False
_warned = False


def _after_fork_in_child():
    global _forked_after_threads
    _forked_after_threads = _forked_after_threads or _threads_started


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def engine_options(device):
    """EngineOptions for `device`, on one thread in a process forked after emix ran threads."""
    global _threads_started, _warned
    engine = _emix.EngineOptions()
    engine.device = device
    if _forked_after_threads:
        engine.n_threads = 1
        if not _warned:
            _warned = True
            warn("emix runs on one thread in this process: it was forked after emix had "
                 "started its threads, whose pool (GNU OpenMP's) does not survive "
                 "fork(). Use multiprocessing's 'spawn' or 'forkserver' start method "
                 "for parallel fits in several processes.", RuntimeWarning)
    else:
        _threads_started = True
    return engine

"""OpenMP threads after fork().

GNU OpenMP's thread pool does not survive fork(): in a child forked after
the parent ran a parallel region, the next multi-threaded region waits
forever for threads that exist only in the parent (multiprocessing's
"fork" start method, joblib's multiprocessing backend). Such a child runs
the kernels on one thread instead, with a warning once; a child that the
parent forked before any multi-threaded kernel keeps its threads.
"""
from __future__ import annotations

import os
import warnings

_state = {"threads_used": False, "forked": False, "warned": False}


def _after_fork_in_child() -> None:
    if _state["threads_used"]:
        _state["forked"] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def usable_threads(n_threads: int) -> int:
    """n_threads, or 1 in a process forked after this one's parent used
    several threads (see the module doc); notes that threads are used."""
    if n_threads <= 1:
        return n_threads
    if _state["forked"]:
        if not _state["warned"]:
            _state["warned"] = True
            warnings.warn(
                "fastem: this process was forked after fastem ran multi-threaded "
                "kernels, and OpenMP's threads do not survive fork(): its kernels "
                "run on one thread. For threads in child processes, start them "
                "with the 'spawn' or 'forkserver' method (multiprocessing, or "
                "joblib's default loky backend).", RuntimeWarning, stacklevel=2)
        return 1
    _state["threads_used"] = True
    return n_threads

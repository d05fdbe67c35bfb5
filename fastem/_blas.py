"""BLAS capped at one thread while the kernels call it from their own threads.

The large-D kernels call SciPy's BLAS once per chunk from each of their
OpenMP threads. A BLAS that also started its own threads for those calls
would oversubscribe the cores (OpenBLAS built with pthreads serialises the
callers instead), so around such a pass every BLAS threadpool in the
process is capped at one thread, as scikit-learn's KMeans does around its
own per-thread GEMMs.

Passes may overlap (Dask runs tasks in threads of one process), and a cap
that each pass set and restored on its own could restore a stale value:
the first pass to start sets the cap and the last to finish lifts it.
threadpoolctl lets one Python thread at a time control OpenBLAS's
process-wide thread count; a pass in another thread while that one is
alive runs uncapped: the same results, more slowly.
"""
from __future__ import annotations

import contextlib
import threading

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_active = 0
_limiter = None
_controller = None


def _blas_controller():
    # inspecting the loaded libraries costs milliseconds: once per process,
    # after the kernels (and with them SciPy's BLAS) are imported
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def _enter():
    global _active, _limiter
    with _lock:
        if _active == 0:
            _limiter = _blas_controller().limit(limits=1, user_api="blas")
        _active += 1


def _exit():
    global _active, _limiter
    with _lock:
        _active -= 1
        if _active == 0:
            _limiter.restore_original_limits()
            _limiter = None


@contextlib.contextmanager
def single_threaded_blas(enabled=True):
    """Every BLAS in the process runs one thread inside the block."""
    if not enabled:
        yield
        return
    _enter()
    try:
        yield
    finally:
        _exit()

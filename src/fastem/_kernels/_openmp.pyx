"""Ask how fastem's kernels were built and how many threads a call will use."""
import numbers
import os
import warnings

from fastem._fork_guard import usable_threads


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(FASTEM_OPENMP)


def effective_n_threads(n_threads=None):
    """Number of OpenMP threads a kernel call will use.

    None means all the threads OpenMP offers (which honours OMP_NUM_THREADS,
    and otherwise is the number of CPUs this process may run on); a positive
    int asks for that many; a negative one counts back from the maximum as in
    joblib (-1 = all, -2 = all but one). Any integral type counts as an int
    (NumPy's included), bool does not. Without OpenMP the answer is 1.

    More threads than the CPUs this process may run on are capped to them,
    with a warning (a runtime asked for thousands of threads exits the
    process). In a process forked after its parent ran multi-threaded
    kernels the answer is 1 (fastem/_fork_guard.py).
    """
    if n_threads is not None:
        if (not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, bool)
                or n_threads == 0):
            raise ValueError(f"n_threads must be None or a non-zero int, got {n_threads!r}")
        n_threads = int(n_threads)
    if not FASTEM_OPENMP:
        return 1
    max_threads = omp_get_max_threads()
    cpus = _available_cpus()
    if "OMP_NUM_THREADS" not in os.environ:
        # omp_get_max_threads counts logical CPUs of the machine; respect the
        # CPUs this process is allowed to use (containers, taskset).
        max_threads = min(max_threads, cpus)
    if n_threads is None:
        return usable_threads(max_threads)
    if n_threads < 0:
        return usable_threads(max(1, max_threads + 1 + n_threads))
    if n_threads > max(cpus, max_threads):
        warnings.warn(f"fastem: n_threads={n_threads} is more than the {cpus} CPUs this "
                      f"process may use; using {max(cpus, max_threads)}", UserWarning,
                      stacklevel=2)
        n_threads = max(cpus, max_threads)
    return usable_threads(n_threads)


def _available_cpus():
    """The CPUs this process may run on (its affinity mask where known)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1

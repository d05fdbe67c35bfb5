"""Ask how fastem's kernels were built and how many threads a call will use."""
import numbers
import os


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
    """
    if n_threads is not None:
        if (not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, bool)
                or n_threads == 0):
            raise ValueError(f"n_threads must be None or a non-zero int, got {n_threads!r}")
        n_threads = int(n_threads)
    if not FASTEM_OPENMP:
        return 1
    max_threads = omp_get_max_threads()
    if "OMP_NUM_THREADS" not in os.environ:
        # omp_get_max_threads counts logical CPUs of the machine; respect the
        # CPUs this process is allowed to use (containers, taskset).
        try:
            max_threads = min(max_threads, len(os.sched_getaffinity(0)))
        except AttributeError:
            pass
    if n_threads is None:
        return max_threads
    if n_threads < 0:
        return max(1, max_threads + 1 + n_threads)
    return n_threads

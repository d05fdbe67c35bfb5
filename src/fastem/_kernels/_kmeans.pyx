"""k-means kernels used to initialise EM: k-means++ seeding and Lloyd passes
(hard-assignment EM), chunked and parallel like the EM kernels.

Centers and all accumulations are float64; rows may be float32 or float64.
The reduction is the EM pass's: every thread sums its chunks (each chunk
summed on its own first) into its row of one calloc'd block, allocated and
checked before the parallel region; the rows are handed to the caller, who
adds them in thread order.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset

# tests set this to check that a failed allocation raises MemoryError
cdef bint _refuse_allocations = False


def _set_refuse_allocations(bint refuse):
    """Make the kernels' allocations fail (for testing their error path)."""
    global _refuse_allocations
    _refuse_allocations = refuse


cdef inline Py_ssize_t _row_stride(Py_ssize_t S) noexcept nogil:
    # a whole number of cache lines per row: threads never share one
    return (S + 7) // 8 * 8


cdef double* _thread_rows(int n_threads, Py_ssize_t S) except NULL:
    """Zeroed (2 n_threads, _row_stride(S)) block: each thread's sums, then
    each thread's sums of one chunk."""
    cdef double* rows = NULL
    if not _refuse_allocations:
        rows = <double*> calloc(2 * n_threads * _row_stride(S), sizeof(double))
    if rows == NULL:
        raise MemoryError(f"fastem: cannot allocate the k-means sums of {n_threads} threads")
    return rows


cdef inline double _sqdist(const floating[:, :] X, Py_ssize_t i,
                           const double* c, Py_ssize_t d) noexcept nogil:
    cdef Py_ssize_t j
    cdef double t, s = 0.0
    for j in range(d):
        t = X[i, j] - c[j]
        s += t * t
    return s


def lloyd_pass(
    const floating[:, :] X,             # IN (N, D)
    const double[:, ::1] centers,       # IN (K, D)
    Py_ssize_t chunk_size,
    Py_ssize_t[::1] labels,             # OUT (N,) nearest center, or empty
    double[:, ::1] thread_sums,         # OUT (n_threads, 1 + K + K*D)
    const double[::1] weights=None,     # IN (N,) the rows' weights, or None (all 1)
):
    """Assign rows to their nearest center and sum them per cluster.

    Each thread writes [inertia, counts (K), sums (K, D)] into its row of
    ``thread_sums``; the caller adds the rows in order. With ``weights`` a
    row counts as that many copies of itself.
    """
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = centers.shape[0]
    cdef Py_ssize_t S = thread_sums.shape[1], S8 = _row_stride(S)
    cdef int n_threads = <int> thread_sums.shape[0]
    cdef Py_ssize_t n_chunks = (N + chunk_size - 1) // chunk_size
    cdef bint want_labels = labels.shape[0] > 0
    cdef Py_ssize_t ch, i, j, k, s, t, best, start, stop
    cdef double dist, best_dist, wi = 1.0
    cdef double* rows
    cdef double* acc
    cdef double* local
    cdef bint weighted = weights is not None

    if weighted and weights.shape[0] != N:
        raise ValueError(f"fastem: {weights.shape[0]} weights for {N} rows")
    thread_sums[:, :] = 0.0
    if N == 0:
        return
    rows = _thread_rows(n_threads, S)
    with nogil, parallel(num_threads=n_threads):
        acc = rows + threadid() * S8
        local = rows + (n_threads + threadid()) * S8
        for ch in prange(n_chunks, schedule="static"):
            start = ch * chunk_size
            stop = min(start + chunk_size, N)
            memset(local, 0, S * sizeof(double))
            for i in range(start, stop):
                best = 0
                best_dist = INFINITY
                for k in range(K):
                    dist = _sqdist(X, i, &centers[k, 0], D)
                    if dist < best_dist:
                        best_dist = dist
                        best = k
                # (x 1.0 is exact: unweighted sums are unchanged)
                wi = weights[i] if weighted else 1.0
                local[0] += wi * best_dist
                local[1 + best] += wi
                for j in range(D):
                    local[1 + K + best * D + j] += wi * X[i, j]
                if want_labels:
                    labels[i] = best
            for s in range(S):
                acc[s] += local[s]
    with nogil:
        for t in range(n_threads):
            memcpy(&thread_sums[t, 0], rows + t * S8, S * sizeof(double))
    free(rows)


def update_closest(
    const floating[:, :] X,             # IN (N, D)
    const double[::1] center,           # IN (D,)
    double[::1] closest,                # INOUT (N,) squared distance to nearest center
    Py_ssize_t chunk_size,
    int n_threads,
):
    """closest[i] = min(closest[i], |x_i - center|^2)."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1]
    cdef Py_ssize_t n_chunks = (N + chunk_size - 1) // chunk_size
    cdef Py_ssize_t ch, i
    cdef double dist
    with nogil:
        for ch in prange(n_chunks, schedule="static", num_threads=n_threads):
            for i in range(ch * chunk_size, min((ch + 1) * chunk_size, N)):
                dist = _sqdist(X, i, &center[0], D)
                if dist < closest[i]:
                    closest[i] = dist


def candidate_potentials(
    const floating[:, :] X,             # IN (N, D)
    const double[:, ::1] candidates,    # IN (T, D)
    const double[::1] closest,          # IN (N,)
    Py_ssize_t chunk_size,
    double[:, ::1] thread_pot,          # OUT (n_threads, T)
    const double[::1] weights=None,     # IN (N,) the rows' weights, or None (all 1)
):
    """Potential of each candidate: sum_i w_i min(closest[i], |x_i - c_t|^2)."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], T = candidates.shape[0]
    cdef Py_ssize_t T8 = _row_stride(T)
    cdef int n_threads = <int> thread_pot.shape[0]
    cdef Py_ssize_t n_chunks = (N + chunk_size - 1) // chunk_size
    cdef Py_ssize_t ch, i, t
    cdef double dist
    cdef double* rows
    cdef double* acc
    cdef double* local
    cdef bint weighted = weights is not None

    if weighted and weights.shape[0] != N:
        raise ValueError(f"fastem: {weights.shape[0]} weights for {N} rows")
    thread_pot[:, :] = 0.0
    if N == 0:
        return
    rows = _thread_rows(n_threads, T)
    with nogil, parallel(num_threads=n_threads):
        acc = rows + threadid() * T8
        local = rows + (n_threads + threadid()) * T8
        for ch in prange(n_chunks, schedule="static"):
            memset(local, 0, T * sizeof(double))
            for i in range(ch * chunk_size, min((ch + 1) * chunk_size, N)):
                for t in range(T):
                    dist = _sqdist(X, i, &candidates[t, 0], D)
                    dist = dist if dist < closest[i] else closest[i]
                    local[t] += weights[i] * dist if weighted else dist
            for t in range(T):
                acc[t] += local[t]
    with nogil:
        for t in range(n_threads):
            memcpy(&thread_pot[t, 0], rows + t * T8, T * sizeof(double))
    free(rows)

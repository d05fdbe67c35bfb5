"""Fused EM kernels: one pass of row chunks -> log-responsibilities -> float64
sufficient statistics, and the matching scoring pass.

Parameters of component k (see DESIGN.md): mean mu_k and the upper-triangular
precision Cholesky factor U_k (precision = U_k U_k^T), with

    y_k    = (x - mu_k)^T U_k
    logp_k = log_const_k - |y_k|^2 / 2,
    log_const_k = log w_k - D/2 log(2 pi) + log det U_k

The Python layer flattens U into ``prec``: full (K, D, D), tied (D, D),
diag (K, D), spherical (K,), and for tied passes ``loc_k = (mu_k - c) U`` and
``center = c`` so that y_k = (x - c) U - loc_k costs one triangular product
per row instead of K.

Statistics (float64, flat, per thread; see ``stats_size``)::

    [0]                 sum of row log-likelihoods
    [1, 1+K)            n_k    = sum r_k
    [1+K, 1+K+K*D)      s1_k   = sum r_k (x - c_k)
    [1+K+K*D, ...)      s2: full   (K, D, D) sum r_k (x-c_k)(x-c_k)^T, lower triangle
                            tied   (D, D)    sum (x-c)(x-c)^T, lower triangle
                            diag   (K, D)    sum r_k (x-c_k)^2
                            spherical (K,)   sum r_k |x-c_k|^2

c_k are the rows of ``shift`` (tied: every row is c).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport exp, log, sqrt, INFINITY
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from fastem._kernels._blas cimport syrk_lower_accumulate, trmm_right_upper

cdef enum:
    FULL = 0
    TIED = 1
    DIAG = 2
    SPHERICAL = 3

COV_TYPE_CODES = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}


def stats_size(int cov_type, Py_ssize_t n_components, Py_ssize_t n_features):
    """Length of the flat statistics vector of one thread (see module doc)."""
    cdef Py_ssize_t K = n_components, D = n_features
    cdef Py_ssize_t s2 = {FULL: K * D * D, TIED: D * D, DIAG: K * D,
                          SPHERICAL: K}[cov_type]
    return 1 + K + K * D + s2


# --------------------------------------------------------------------------
# Per-chunk workers. They know nothing about threads; all pointers are to
# row-major contiguous blocks.

cdef void _logprob_chunk(
    const floating* x,          # IN (n, d) chunk of rows
    Py_ssize_t n, Py_ssize_t d, Py_ssize_t n_comp,
    const floating* loc,        # IN (K, d)
    const floating* prec,       # IN flat precision Cholesky
    const floating* center,     # IN (d,) tied only
    const double* log_const,    # IN (K,)
    int cov_type,
    floating* work,             # scratch (n, d)
    double* logp,               # OUT (n, K) weighted log-probabilities
) noexcept nogil:
    cdef Py_ssize_t i, j, a, k
    cdef const floating* xi
    cdef const floating* mu
    cdef const floating* U
    cdef floating* wi
    cdef floating t
    cdef double s

    if cov_type == FULL:
        for k in range(n_comp):
            mu = loc + k * d
            for i in range(n):
                for j in range(d):
                    work[i * d + j] = x[i * d + j] - mu[j]
            trmm_right_upper(<int> n, <int> d, prec + k * d * d, work)
            for i in range(n):
                wi = work + i * d
                s = 0.0
                for j in range(d):
                    s += wi[j] * wi[j]
                logp[i * n_comp + k] = log_const[k] - 0.5 * s
    elif cov_type == TIED:
        # z = (x - c) U once per row, then y_k = z - loc_k.
        for i in range(n):
            for j in range(d):
                work[i * d + j] = x[i * d + j] - center[j]
        trmm_right_upper(<int> n, <int> d, prec, work)
        for i in range(n):
            wi = work + i * d
            for k in range(n_comp):
                mu = loc + k * d
                s = 0.0
                for j in range(d):
                    t = wi[j] - mu[j]
                    s += t * t
                logp[i * n_comp + k] = log_const[k] - 0.5 * s
    elif cov_type == DIAG:
        for i in range(n):
            xi = x + i * d
            for k in range(n_comp):
                mu = loc + k * d
                U = prec + k * d
                s = 0.0
                for j in range(d):
                    t = (xi[j] - mu[j]) * U[j]
                    s += t * t
                logp[i * n_comp + k] = log_const[k] - 0.5 * s
    else:  # SPHERICAL
        for i in range(n):
            xi = x + i * d
            for k in range(n_comp):
                mu = loc + k * d
                s = 0.0
                for j in range(d):
                    t = xi[j] - mu[j]
                    s += t * t
                logp[i * n_comp + k] = log_const[k] - 0.5 * s * prec[k] * prec[k]


cdef double _normalize_chunk(
    double* logp,               # INOUT (n, K): log-probabilities -> responsibilities
    Py_ssize_t n, Py_ssize_t n_comp,
    double* row_ll,             # OUT (n,) row log-likelihoods, or NULL
) noexcept nogil:
    """Log-sum-exp each row; return the chunk's total log-likelihood."""
    cdef Py_ssize_t i, k
    cdef double m, s, l, total = 0.0
    cdef double* row
    for i in range(n):
        row = logp + i * n_comp
        m = -INFINITY
        for k in range(n_comp):
            if row[k] > m:
                m = row[k]
        s = 0.0
        for k in range(n_comp):
            row[k] = exp(row[k] - m)
            s += row[k]
        l = m + log(s)
        s = 1.0 / s
        for k in range(n_comp):
            row[k] *= s
        total += l
        if row_ll != NULL:
            row_ll[i] = l
    return total


cdef void _stats_chunk(
    const floating* x,          # IN (n, d)
    Py_ssize_t n, Py_ssize_t d, Py_ssize_t n_comp,
    const double* resp,         # IN (n, K)
    const double* shift,        # IN (K, d) c_k
    int cov_type,
    double* work,               # scratch (n, d)
    double* st,                 # INOUT flat statistics (see module doc), from [1]
) noexcept nogil:
    cdef Py_ssize_t i, k, a, b
    cdef const floating* xi
    cdef const double* c
    cdef double* nk = st + 1
    cdef double* s1 = st + 1 + n_comp
    cdef double* s2 = st + 1 + n_comp + n_comp * d
    cdef double* S
    cdef double* wi
    cdef double r, sr, w, acc, dv

    if cov_type == FULL:
        for k in range(n_comp):
            c = shift + k * d
            acc = 0.0
            for i in range(n):
                xi = x + i * d
                wi = work + i * d
                r = resp[i * n_comp + k]
                acc = acc + r
                sr = sqrt(r)
                for a in range(d):
                    dv = xi[a] - c[a]
                    s1[k * d + a] += r * dv
                    wi[a] = sr * dv
            nk[k] += acc
            syrk_lower_accumulate(<int> n, <int> d, work, s2 + k * d * d)
    elif cov_type == TIED:
        c = shift
        for i in range(n):
            xi = x + i * d
            wi = work + i * d
            for a in range(d):
                wi[a] = xi[a] - c[a]
            for k in range(n_comp):
                r = resp[i * n_comp + k]
                nk[k] += r
                for a in range(d):
                    s1[k * d + a] += r * wi[a]
        # sum_k r_k = 1: the shared scatter does not depend on responsibilities
        syrk_lower_accumulate(<int> n, <int> d, work, s2)
    elif cov_type == DIAG:
        for i in range(n):
            xi = x + i * d
            for k in range(n_comp):
                r = resp[i * n_comp + k]
                nk[k] += r
                c = shift + k * d
                for a in range(d):
                    dv = xi[a] - c[a]
                    w = r * dv
                    s1[k * d + a] += w
                    s2[k * d + a] += w * dv
    else:  # SPHERICAL
        for i in range(n):
            xi = x + i * d
            for k in range(n_comp):
                r = resp[i * n_comp + k]
                nk[k] += r
                c = shift + k * d
                acc = 0.0
                for a in range(d):
                    dv = xi[a] - c[a]
                    s1[k * d + a] += r * dv
                    acc = acc + dv * dv
                s2[k] += r * acc


cdef inline const floating* _chunk_rows(
    const floating[:, :] X, Py_ssize_t start, Py_ssize_t n, bint contiguous,
    floating* buf,              # scratch (n, D) used when X is not C-contiguous
) noexcept nogil:
    cdef Py_ssize_t i, j, d = X.shape[1]
    if contiguous:
        return &X[start, 0]
    for i in range(n):
        for j in range(d):
            buf[i * d + j] = X[start + i, j]
    return buf


cdef bint _is_c_contiguous(const floating[:, :] X) noexcept nogil:
    return X.strides[1] == sizeof(floating) and (
        X.shape[0] <= 1 or X.strides[0] == X.shape[1] * <Py_ssize_t> sizeof(floating))


# --------------------------------------------------------------------------
# Kernels called from Python.

def em_pass(
    const floating[:, :] X,             # IN (N, D), any strides
    const floating[:, ::1] loc,         # IN (K, D)
    const floating[::1] prec,           # IN flat precision Cholesky
    const floating[::1] center,         # IN (D,) tied; ignored otherwise
    const double[::1] log_const,        # IN (K,)
    const double[:, ::1] shift,         # IN (K, D) statistics shift c_k
    int cov_type,
    Py_ssize_t chunk_size,
    double[:, ::1] thread_stats,        # OUT (n_threads, stats_size)
):
    """One fused E-step + statistics pass over X.

    Each of ``thread_stats.shape[0]`` threads sums the statistics of the
    chunks it processed (chunk by chunk, for accuracy) into its own row; the
    caller adds the rows in order. Rows of threads that got no chunk are 0.
    """
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = loc.shape[0]
    cdef Py_ssize_t S = thread_stats.shape[1]
    cdef int n_threads = <int> thread_stats.shape[0]
    cdef Py_ssize_t n_chunks = (N + chunk_size - 1) // chunk_size
    cdef bint contiguous = _is_c_contiguous(X)
    cdef Py_ssize_t ch, s, start, n
    cdef floating* xbuf
    cdef floating* work
    cdef double* work64
    cdef double* logp
    cdef double* acc
    cdef double* local
    cdef const floating* xc
    cdef int[1] failed

    thread_stats[:, :] = 0.0
    if N == 0:
        return
    failed[0] = 0
    with nogil, parallel(num_threads=n_threads):
        xbuf = <floating*> malloc(chunk_size * D * sizeof(floating))
        work = <floating*> malloc(chunk_size * D * sizeof(floating))
        work64 = <double*> malloc(chunk_size * D * sizeof(double))
        logp = <double*> malloc(chunk_size * K * sizeof(double))
        acc = <double*> malloc(S * sizeof(double))
        local = <double*> malloc(S * sizeof(double))
        if (xbuf == NULL or work == NULL or work64 == NULL or logp == NULL
                or acc == NULL or local == NULL):
            failed[0] = 1
        else:
            memset(acc, 0, S * sizeof(double))
        for ch in prange(n_chunks, schedule="static"):
            if failed[0]:
                continue
            start = ch * chunk_size
            n = min(chunk_size, N - start)
            xc = _chunk_rows(X, start, n, contiguous, xbuf)
            _logprob_chunk(xc, n, D, K, &loc[0, 0], &prec[0], &center[0],
                           &log_const[0], cov_type, work, logp)
            memset(local, 0, S * sizeof(double))
            local[0] = _normalize_chunk(logp, n, K, NULL)
            _stats_chunk(xc, n, D, K, logp, &shift[0, 0], cov_type,
                         work64, local)
            for s in range(S):
                acc[s] += local[s]
        if not failed[0]:
            memcpy(&thread_stats[threadid(), 0], acc, S * sizeof(double))
        free(xbuf)
        free(work)
        free(work64)
        free(logp)
        free(acc)
        free(local)
    if failed[0]:
        raise MemoryError("fastem: cannot allocate the per-thread EM buffers; "
                          "use a smaller chunk_size")


def score_pass(
    const floating[:, :] X,             # IN (N, D), any strides
    const floating[:, ::1] loc,         # IN (K, D)
    const floating[::1] prec,           # IN flat precision Cholesky
    const floating[::1] center,         # IN (D,) tied; ignored otherwise
    const double[::1] log_const,        # IN (K,)
    int cov_type,
    Py_ssize_t chunk_size,
    int n_threads,
    double[::1] out_ll,                 # OUT (N,) row log-likelihoods, or empty
    double[:, ::1] out_resp,            # OUT (N, K) responsibilities, or empty
    Py_ssize_t[::1] out_labels,         # OUT (N,) argmax labels, or empty
):
    """Per-row scores in one chunked parallel pass; fills the non-empty outputs."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = loc.shape[0]
    cdef Py_ssize_t n_chunks = (N + chunk_size - 1) // chunk_size
    cdef bint contiguous = _is_c_contiguous(X)
    cdef bint want_ll = out_ll.shape[0] > 0
    cdef bint want_resp = out_resp.shape[0] > 0
    cdef bint want_labels = out_labels.shape[0] > 0
    cdef Py_ssize_t ch, i, k, start, n, best
    cdef floating* xbuf
    cdef floating* work
    cdef double* logp
    cdef double* row
    cdef const floating* xc
    cdef int[1] failed

    if N == 0:
        return
    failed[0] = 0
    with nogil, parallel(num_threads=n_threads):
        xbuf = <floating*> malloc(chunk_size * D * sizeof(floating))
        work = <floating*> malloc(chunk_size * D * sizeof(floating))
        logp = <double*> malloc(chunk_size * K * sizeof(double))
        if xbuf == NULL or work == NULL or logp == NULL:
            failed[0] = 1
        for ch in prange(n_chunks, schedule="static"):
            if failed[0]:
                continue
            start = ch * chunk_size
            n = min(chunk_size, N - start)
            xc = _chunk_rows(X, start, n, contiguous, xbuf)
            _logprob_chunk(xc, n, D, K, &loc[0, 0], &prec[0], &center[0],
                           &log_const[0], cov_type, work, logp)
            if want_labels:
                # argmax of the weighted log-probabilities, as scikit-learn
                for i in range(n):
                    row = logp + i * K
                    best = 0
                    for k in range(1, K):
                        if row[k] > row[best]:
                            best = k
                    out_labels[start + i] = best
            if want_ll or want_resp:
                _normalize_chunk(logp, n, K, &out_ll[start] if want_ll else NULL)
            if want_resp:
                memcpy(&out_resp[start, 0], logp, n * K * sizeof(double))
        free(xbuf)
        free(work)
        free(logp)
    if failed[0]:
        raise MemoryError("fastem: cannot allocate the per-thread scoring "
                          "buffers; use a smaller chunk_size")

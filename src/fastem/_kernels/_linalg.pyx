"""Precision Cholesky factors of K small covariance matrices in one call.

NumPy's linalg wrappers cost several microseconds per call, more than the
factorisations themselves at the sizes of a mixture's covariances; this
is the M-step's only O(K D^3) work.
"""
from libc.math cimport isfinite, sqrt


def precision_cholesky(
    const double[:, :, ::1] cov,        # IN (K, D, D) symmetric (lower triangle read)
    double[:, :, ::1] out,              # OUT (K, D, D) upper-triangular U, U U^T = cov^-1
):
    """For each k: cov_k = L L^T (Cholesky), U = (L^-1)^T.

    Returns -1, or the first component whose covariance is not positive
    definite or whose factor is not finite (e.g. a pivot so small that its
    reciprocal overflows); that component's ``out`` is then undefined.
    """
    cdef Py_ssize_t K = cov.shape[0], D = cov.shape[1]
    cdef Py_ssize_t k, i, j, m
    cdef double s
    cdef double[:, ::1] L
    cdef int failed = -1
    import numpy as np
    L = np.empty((D, D))
    with nogil:
        for k in range(K):
            # L lower triangular with L L^T = cov_k
            for j in range(D):
                s = cov[k, j, j]
                for m in range(j):
                    s = s - L[j, m] * L[j, m]
                if not s > 0.0:  # also catches NaN
                    failed = <int> k
                    break
                L[j, j] = sqrt(s)
                for i in range(j + 1, D):
                    s = cov[k, i, j]
                    for m in range(j):
                        s = s - L[i, m] * L[j, m]
                    L[i, j] = s / L[j, j]
            if failed >= 0:
                break
            # out = (L^-1)^T: column j of L^-1 by forward substitution,
            # stored as row j of out
            for j in range(D):
                for i in range(D):
                    out[k, j, i] = 0.0
                out[k, j, j] = 1.0 / L[j, j]
                for i in range(j + 1, D):
                    s = 0.0
                    for m in range(j, i):
                        s = s + L[i, m] * out[k, j, m]
                    out[k, j, i] = -s / L[i, i]
            for j in range(D):
                for i in range(j, D):
                    if not isfinite(out[k, j, i]):
                        failed = <int> k
            if failed >= 0:
                break
    return failed

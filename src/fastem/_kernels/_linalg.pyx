"""Precision Cholesky factors of K covariance matrices in one call.

NumPy's linalg wrappers cost several microseconds per call, more than the
factorisations themselves at the sizes of most mixtures' covariances; this
is the M-step's only O(K D^3) work. From LAPACK_MIN_FEATURES features on,
LAPACK's blocked factorisation and inverse (SciPy's, potrf and trtri) are
faster than the loops here.
"""
from libc.math cimport isfinite, sqrt
from libc.string cimport memcpy
from scipy.linalg.cython_lapack cimport dpotrf, dtrtri

cdef enum:
    # measured crossover (benchmarks/crossover.py): the loops are as fast
    # up to D = 128, LAPACK 1.4x faster at 160 and 2.8x at 512
    _LAPACK_MIN_FEATURES = 160

LAPACK_MIN_FEATURES = _LAPACK_MIN_FEATURES


cdef bint _factor_lapack(const double* cov, double* out, int D) noexcept nogil:
    """out = U for one (D, D) covariance; False if it is not positive definite.
    A row-major matrix is the transpose of the column-major one LAPACK sees:
    the column-major lower factor L (cov = L L^T) and its inverse read
    row-major are L^T and (L^-1)^T = U."""
    cdef char lower = b'L', non_unit = b'N'
    cdef int info = 0, i, j
    memcpy(out, cov, D * D * sizeof(double))
    dpotrf(&lower, &D, out, &D, &info)
    if info != 0:
        return False
    dtrtri(&lower, &non_unit, &D, out, &D, &info)
    if info != 0:
        return False
    # LAPACK leaves the other triangle (row-major: below the diagonal) as it was
    for i in range(D):
        for j in range(i):
            out[i * D + j] = 0.0
    return True


cdef bint _factor_loops(const double* cov, double* out, double* L,
                        Py_ssize_t D) noexcept nogil:
    """out = U for one (D, D) covariance with L (D, D) as scratch; False if it
    is not positive definite."""
    cdef Py_ssize_t i, j, m
    cdef double s
    # L lower triangular with L L^T = cov
    for j in range(D):
        s = cov[j * D + j]
        for m in range(j):
            s = s - L[j * D + m] * L[j * D + m]
        if not s > 0.0:  # also catches NaN
            return False
        L[j * D + j] = sqrt(s)
        for i in range(j + 1, D):
            s = cov[i * D + j]
            for m in range(j):
                s = s - L[i * D + m] * L[j * D + m]
            L[i * D + j] = s / L[j * D + j]
    # out = (L^-1)^T: column j of L^-1 by forward substitution, stored as
    # row j of out
    for j in range(D):
        for i in range(D):
            out[j * D + i] = 0.0
        out[j * D + j] = 1.0 / L[j * D + j]
        for i in range(j + 1, D):
            s = 0.0
            for m in range(j, i):
                s = s + L[i * D + m] * out[j * D + m]
            out[j * D + i] = -s / L[i * D + i]
    return True


cdef bint _upper_finite(const double* out, Py_ssize_t D) noexcept nogil:
    """Whether the upper triangle of a (D, D) factor is finite (a pivot so
    small that its reciprocal overflows is not)."""
    cdef Py_ssize_t i, j
    for j in range(D):
        for i in range(j, D):
            if not isfinite(out[j * D + i]):
                return False
    return True


def precision_cholesky(
    const double[:, :, ::1] cov,        # IN (K, D, D) symmetric
    double[:, :, ::1] out,              # OUT (K, D, D) upper-triangular U, U U^T = cov^-1
    lapack=None,                        # None: by D; True/False: force the method
):
    """For each k: cov_k = L L^T (Cholesky), U = (L^-1)^T.

    Returns -1, or the first component whose covariance is not positive
    definite or whose factor is not finite (e.g. a pivot so small that its
    reciprocal overflows); that component's ``out`` is then undefined.
    """
    cdef Py_ssize_t K = cov.shape[0], D = cov.shape[1]
    cdef Py_ssize_t k
    cdef double[:, ::1] L
    cdef double* out_k
    cdef int failed = -1
    cdef bint ok
    cdef bint use_lapack = (D >= _LAPACK_MIN_FEATURES if lapack is None
                            else bool(lapack))
    import numpy as np
    L = np.empty((D, D))
    with nogil:
        for k in range(K):
            out_k = &out[k, 0, 0]
            if use_lapack:
                ok = _factor_lapack(&cov[k, 0, 0], out_k, <int> D)
            else:
                ok = _factor_loops(&cov[k, 0, 0], out_k, &L[0, 0], D)
            if not ok or not _upper_finite(out_k, D):
                failed = <int> k
                break
    return failed


def full_covariances(
    const double[:, :, ::1] s2,         # IN (K, D, D) sum r (x - c)(x - c)^T, symmetric
    const double[:, ::1] s1,            # IN (K, D) sum r (x - c)
    const double[::1] n,                # IN (K,) sum r
    const double[::1] nk,               # IN (K,) sum r + eps (scikit-learn's guard)
    const double[:, ::1] delta,         # IN (K, D) d = mean - c
    double reg_covar,
    double[:, :, ::1] out,              # OUT (K, D, D)
):
    """The M-step's covariances sum r (x - m)(x - m)^T / nk + reg_covar I
    about the means m = c + d, from statistics about the shifts c:

        (s2 - s1 d^T - d s1^T + n d d^T) / nk = s2 / nk - (d q^T + q d^T),
        q = (s1 - n d / 2) / nk

    One typed pass without temporaries: a few NumPy calls for each term
    cost more than the whole loop for small models. The lower triangle is
    computed and mirrored, so the result is exactly symmetric.
    """
    cdef Py_ssize_t K = s2.shape[0], D = s2.shape[1]
    cdef Py_ssize_t k, i, j
    cdef double inv, value
    cdef double[::1] q
    import numpy as np
    q = np.empty(D)
    with nogil:
        for k in range(K):
            inv = 1.0 / nk[k]
            for i in range(D):
                q[i] = (s1[k, i] - 0.5 * n[k] * delta[k, i]) * inv
            for i in range(D):
                for j in range(i + 1):
                    value = s2[k, i, j] * inv - (delta[k, i] * q[j] + q[i] * delta[k, j])
                    out[k, i, j] = value
                    out[k, j, i] = value
                out[k, i, i] += reg_covar

# Row-major BLAS-3 helpers over scipy.linalg.cython_blas, fused on the dtype.
#
# BLAS is column-major; a row-major (m, n) array with leading dimension ld is
# the column-major (n, m) transpose, so each helper swaps operands and
# triangles accordingly. Called from inside OpenMP regions: the Python layer
# keeps BLAS single-threaded meanwhile (threadpoolctl).
from cython cimport floating
from scipy.linalg.cython_blas cimport dtrmm, strmm, dsyrk


cdef inline void trmm_right_upper(
    int m, int n,
    const floating* U,  # IN (n, n) row-major, upper triangular
    floating* A,        # INOUT (m, n) row-major: A <- A @ U
) noexcept nogil:
    # Row-major A @ U is, column-major, U^T A^T with U^T lower triangular.
    cdef char side = b'L', uplo = b'L', trans = b'N', diag = b'N'
    cdef floating one = 1.0
    if floating is double:
        dtrmm(&side, &uplo, &trans, &diag, &n, &m, &one, <double*> U, &n, A, &n)
    else:
        strmm(&side, &uplo, &trans, &diag, &n, &m, &one, <float*> U, &n, A, &n)


cdef inline void syrk_lower_accumulate(
    int m, int n,
    const double* W,    # IN (m, n) row-major
    double* S,          # INOUT (n, n) row-major: lower triangle += W^T W
) noexcept nogil:
    # Column-major, W is (n, m) and W W^T fills the 'U' triangle, which is
    # the lower triangle of the row-major matrix.
    cdef char uplo = b'U', trans = b'N'
    cdef double one = 1.0
    dsyrk(&uplo, &trans, &n, &m, &one, <double*> W, &n, &one, S, &n)

"""Fused EM kernels: one pass of row chunks -> log-responsibilities -> float64
sufficient statistics, and the matching scoring pass.

Parameters of component k: mean mu_k and the upper-triangular precision
Cholesky factor U_k (precision = U_k U_k^T), with

    y_k    = (x - mu_k)^T U_k
    logp_k = log_const_k - |y_k|^2 / 2,
    log_const_k = log w_k - D/2 log(2 pi) + log det U_k

The Python layer flattens U into ``prec``: full (K, D, tri_stride(D)) with
zeros below the diagonal and in the padding columns, tied (D, D),
diag (K, D), spherical (K,), and for tied passes ``loc_k = (mu_k - c) U`` and
``center = c`` so that y_k = (x - c) U - loc_k costs one triangular product
per row instead of K.

How the work is laid out: each thread copies its chunk of rows transposed
(feature-major, D x P with P the chunk padded to a multiple of LANES), so
that every inner loop runs over contiguous rows and the compiler turns it
into SIMD code: the triangular product, the distances, exp/log of the
log-sum-exp and the statistics' sums over rows alike. Padding rows get zero
responsibility and never reach the statistics.

Each covariance type is one entry of ``_COV_TYPES``: its sizes, its
log-probabilities and statistics of a chunk (for float64 and float32 rows)
and the completion of its summed statistics. Both passes run one parallel
driver (``_run_chunks``) over one per-thread workspace (``_Work``).

Statistics (float64, flat; see ``stats_size``)::

    [0]                 sum of row log-likelihoods
    [1, 1+K)            n_k    = sum r_k
    [1+K, 1+K+K*D)      s1_k   = sum r_k (x - c_k)
    [1+K+K*D, ...)      s2: full   (K, D, D) sum r_k (x-c_k)(x-c_k)^T
                            tied   (D, D)    sum (x-c)(x-c)^T
                            diag   (K, D)    sum r_k (x-c_k)^2
                            spherical (K,)   sum r_k |x-c_k|^2

Both passes run with denormal numbers flushed to zero (FTZ/DAZ, restored
afterwards): responsibilities below ~1e-308 (1e-38 in float32) and their
products then count as 0 instead of costing a microcode assist per
operation on some CPUs.

c_k are the rows of ``shift``: the component means for full covariance;
for tied, diag and spherical every row is the same c (a point near the
data: the mean of the means), so that the differences x - c are formed
once per row and shared by all components. The diag and spherical second
moments about c are then as accurate as c is close to each component
(relative error ~ eps (|mu_k - c| / sigma_k)^2; scikit-learn's own diag
estimate takes them about the origin).

Sums over one chunk are formed in the data's precision (float32 data:
float32 partial sums of at most one chunk), then added to the float64
totals.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport calloc, free, malloc
from libc.math cimport log, sqrt
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dsyrk, dtrmm, ssyrk, strmm

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

cdef extern from "fastem_math.h" nogil:
    double fe_exp(double x)
    float fe_expf(float x)
    double fe_log(double x)
    float fe_logf(float x)

cdef extern from "fastem_simd.h" nogil:
    void fe_gram4_d(const double* w, const double* x, const double* c, Py_ssize_t ld,
                    Py_ssize_t P, double* out)
    void fe_gram4_f(const float* w, const float* x, const float* c, Py_ssize_t ld,
                    Py_ssize_t P, float* out)
    void fe_gram4_plain_d(const double* w, const double* x, const double* c,
                          Py_ssize_t ld, Py_ssize_t P, double* out)
    void fe_gram4_plain_f(const float* w, const float* x, const float* c,
                          Py_ssize_t ld, Py_ssize_t P, float* out)
    double fe_wdiff_d(const double* r, const double* x, double c, Py_ssize_t P,
                      double* w)
    float fe_wdiff_f(const float* r, const float* x, float c, Py_ssize_t P, float* w)
    Py_ssize_t FE_TRI_STRIDE(Py_ssize_t D)
    void fe_tri_sqnorm_d(const double* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
                         const double* mu, const double* U, Py_ssize_t ldu, double* q)
    void fe_tri_sqnorm_f(const float* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
                         const float* mu, const float* U, Py_ssize_t ldu, float* q)
    void fe_tri_sqnorm2_d(const double* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
                          const double* mu, const double* U, Py_ssize_t ldu, double* q)
    void fe_tri_sqnorm2_f(const float* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
                          const float* mu, const float* U, Py_ssize_t ldu, float* q)
    void fe_sqdist_d(const double* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
                     Py_ssize_t K, const double* c, const double* p, double* q)
    void fe_sqdist_f(const float* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
                     Py_ssize_t K, const float* c, const float* p, float* q)
    void fe_transpose_d(const double* x, Py_ssize_t n, Py_ssize_t D, double* xt,
                        Py_ssize_t ld)
    void fe_transpose_f(const float* x, Py_ssize_t n, Py_ssize_t D, float* xt,
                        Py_ssize_t ld)
    unsigned int fe_flush_denormals()
    void fe_restore_fp_state(unsigned int old)

cdef enum:
    FULL = 0
    TIED = 1
    DIAG = 2
    SPHERICAL = 3
    N_COV_TYPES = 4
    # chunks are padded to a multiple of this many rows: one register tile
    # of the triangular product (four AVX-512 registers of float64)
    LANES = 32

COV_TYPE_CODES = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}


def tri_stride(Py_ssize_t n_features):
    """Row stride of each full-covariance factor in ``prec`` (see module doc)."""
    return FE_TRI_STRIDE(n_features)


def layout_full(
    const double[:, :, :] prec_chol,    # IN (K, D, D) upper-triangular U_k, any strides
    floating[::1] prec,                 # OUT (K * D * tri_stride(D)) the kernels' layout
    double[::1] log_det,                # OUT (K,) log det U_k
):
    """Full-covariance factors laid out for the kernels (see module doc):
    rows padded to tri_stride(D), zero below the diagonal and in the
    padding (whatever the input holds there), and their log-determinants,
    the sums of the logs of the diagonals. One typed call: per iteration
    on small models, NumPy's per-call costs were most of this work."""
    cdef Py_ssize_t K = prec_chol.shape[0], D = prec_chol.shape[1]
    cdef Py_ssize_t ldu = FE_TRI_STRIDE(D)
    cdef Py_ssize_t k, i, j
    cdef double acc
    if prec_chol.shape[2] != D or prec.shape[0] != K * D * ldu or log_det.shape[0] != K:
        raise ValueError("fastem: layout_full got arrays of inconsistent shapes")
    with nogil:
        for k in range(K):
            acc = 0.0
            for i in range(D):
                for j in range(ldu):
                    prec[(k * D + i) * ldu + j] = (
                        <floating> prec_chol[k, i, j] if i <= j < D else 0)
                acc += log(prec_chol[k, i, i])
            log_det[k] = acc


cdef inline Py_ssize_t _padded(Py_ssize_t n) noexcept nogil:
    return (n + LANES - 1) // LANES * LANES


# --------------------------------------------------------------------------
# Per-chunk workers. They know nothing about threads. Row blocks are
# feature-major: element (row n, feature i) of a block is at [i * ld + n],
# with P (rows, padded to LANES) <= ld (row stride).

cdef inline floating _exp(floating x) noexcept nogil:
    if floating is double:
        return fe_exp(x)
    else:
        return fe_expf(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is double:
        return fe_log(x)
    else:
        return fe_logf(x)


cdef bint _is_c_contiguous(const floating[:, :] X) noexcept nogil:
    return X.strides[1] == sizeof(floating) and (
        X.shape[0] <= 1 or X.strides[0] == X.shape[1] * <Py_ssize_t> sizeof(floating))


cdef void _load_chunk(
    const floating[:, :] X, Py_ssize_t start, Py_ssize_t n, Py_ssize_t P, Py_ssize_t ld,
    bint contiguous,
    floating* xt,               # OUT (D, ld) rows start..start+n, zero padded
) noexcept nogil:
    cdef Py_ssize_t i, j, D = X.shape[1]
    cdef const floating* x
    if contiguous and D == 1:
        # a column is the rows themselves: one copy instead of a loop
        memcpy(xt, &X[start, 0], n * sizeof(floating))
    elif contiguous and D == 2:
        # two streams with a constant stride, which the compiler vectorises
        x = &X[start, 0]
        for i in range(n):
            xt[i] = x[2 * i]
            xt[ld + i] = x[2 * i + 1]
    elif contiguous:
        # square blocks transposed in registers (fastem_simd.h)
        if floating is double:
            fe_transpose_d(&X[start, 0], n, D, xt, ld)
        else:
            fe_transpose_f(&X[start, 0], n, D, xt, ld)
    else:
        for i in range(n):
            for j in range(D):
                xt[j * ld + i] = X[start + i, j]
    for j in range(D):
        for i in range(n, P):
            xt[j * ld + i] = 0


cdef void _clear_weightless(
    floating* xt,               # INOUT (D, ld) a loaded chunk
    const double* weights,      # IN (n,) its rows' weights
    Py_ssize_t n, Py_ssize_t ld, Py_ssize_t D,
) noexcept nogil:
    """Zero the rows of weight 0: they add nothing to the statistics, and
    whatever they hold (the gaps of missing="em" are NaN) must not reach
    the sums as 0 x NaN."""
    cdef Py_ssize_t i, j
    for i in range(n):
        if weights[i] == 0:
            for j in range(D):
                xt[j * ld + i] = 0


cdef void _sub(const floating* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
               const floating* c, floating* dt) noexcept nogil:
    """dt = xt - c (feature-major)."""
    cdef Py_ssize_t i, n
    cdef floating ci
    for i in range(D):
        ci = c[i]
        for n in range(P):
            dt[i * ld + n] = xt[i * ld + n] - ci


cdef inline void _tri_sqnorm(
    const floating* xt,         # IN (D, ld) rows, feature-major
    Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
    const floating* mu,         # IN (D,) mean
    const floating* U,          # IN (D, ldu) upper triangular, zero elsewhere
    Py_ssize_t ldu,
    floating* q,                # OUT (P,) |(x - mu)^T U|^2
) noexcept nogil:
    # register-blocked in fastem_simd.h: a tile of rows times several
    # output coordinates, each loaded difference used for all of them
    if D <= 2:
        if floating is double:
            fe_tri_sqnorm2_d(xt, P, ld, D, mu, U, ldu, q)
        else:
            fe_tri_sqnorm2_f(xt, P, ld, D, mu, U, ldu, q)
    elif floating is double:
        fe_tri_sqnorm_d(xt, P, ld, D, mu, U, ldu, q)
    else:
        fe_tri_sqnorm_f(xt, P, ld, D, mu, U, ldu, q)


cdef void _tri_product(
    const floating* dt,         # IN (D, ld)
    Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
    const floating* U,          # IN (D, D) upper triangular, row-major
    floating* z,                # OUT (D, ld) z_j = sum_{i <= j} dt_i U_ij
) noexcept nogil:
    cdef Py_ssize_t i, j, n
    cdef floating u
    cdef const floating* di
    cdef floating* zj
    for j in range(D):
        zj = z + j * ld
        u = U[j]
        for n in range(P):
            zj[n] = dt[n] * u
        for i in range(1, j + 1):
            u = U[i * D + j]
            di = dt + i * ld
            for n in range(P):
                zj[n] += di[n] * u


cdef void _scale_resp(
    floating* lp,               # INOUT (K, ld) unscaled exps -> responsibilities
    const floating* s,          # IN (P,) 1 / sum of the exps, 0 on padding
    Py_ssize_t P, Py_ssize_t ld, Py_ssize_t K,
) noexcept nogil:
    cdef Py_ssize_t k, n
    cdef floating* lk
    for k in range(K):
        lk = lp + k * ld
        for n in range(P):
            lk[n] *= s[n]


cdef double _normalize_chunk(
    floating* lp,               # INOUT (K, ld): log-probabilities -> responsibilities
    Py_ssize_t n_rows, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t K,
    floating* m,                # scratch (P,); OUT row log-likelihoods
    floating* s,                # OUT (P,) 1 / sum_k exp(lp_k - m), 0 on padding
    bint scale,                 # False: leave lp as exp(lp - m), unscaled
) noexcept nogil:
    """Log-sum-exp over components for every row; padding rows get zero
    responsibility (r = lp * s when not scaled: _scale_resp). Returns the sum of the real
    rows' log-likelihoods."""
    cdef Py_ssize_t k, n
    cdef floating* lk
    cdef floating a, b, t
    cdef bint b_max
    cdef double total = 0.0
    if K == 2:
        # the larger of the two has exp(0) = 1: one exp per row instead of
        # two (the same values as the general loops give)
        lk = lp + ld
        for n in range(P):
            a = lp[n]
            b = lk[n]
            b_max = b > a
            m[n] = b if b_max else a
            t = _exp((a - b) if b_max else (b - a))
            lp[n] = t if b_max else 1
            lk[n] = 1 if b_max else t
            s[n] = 1 + t
    else:
        # the first component starts the maximum and the sum, instead of
        # sweeps that only copy or zero them (small K is sweeps, not
        # arithmetic)
        if K == 1:
            for n in range(P):
                m[n] = lp[n]
        else:
            lk = lp + ld
            for n in range(P):
                m[n] = lk[n] if lk[n] > lp[n] else lp[n]
        for k in range(2, K):
            lk = lp + k * ld
            for n in range(P):
                m[n] = lk[n] if lk[n] > m[n] else m[n]
        for n in range(P):
            lp[n] = _exp(lp[n] - m[n])
            s[n] = lp[n]
        for k in range(1, K):
            lk = lp + k * ld
            for n in range(P):
                lk[n] = _exp(lk[n] - m[n])
                s[n] += lk[n]
    for n in range(P):
        m[n] = m[n] + _log(s[n])
        s[n] = (<floating> 1) / s[n] if n < n_rows else 0
    if scale:
        _scale_resp(lp, s, P, ld, K)
    for n in range(n_rows):
        total += m[n]
    return total


cdef double _weigh_rows(
    floating* s,                # INOUT (n,) the rows' scales, times their weights
    const floating* row_ll,     # IN (n,) the rows' log-likelihoods
    const double* weights,      # IN (n,)
    Py_ssize_t n,
) noexcept nogil:
    """A row of weight w counts as w copies: its responsibilities (r = e s)
    are scaled by w. Returns the weighted sum of the log-likelihoods."""
    cdef Py_ssize_t i
    cdef double total = 0.0
    for i in range(n):
        s[i] = s[i] * <floating> weights[i]
        total += weights[i] * row_ll[i]
    return total


cdef inline floating _dot(const floating* a, const floating* b,
                          Py_ssize_t P) noexcept nogil:
    # four chains over the four quarters of the rows (P is a multiple of
    # LANES): one chain alone waits on the FMA latency
    cdef Py_ssize_t n, Q = P // 4
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0
    for n in range(Q):
        s0 += a[n] * b[n]
        s1 += a[Q + n] * b[Q + n]
        s2 += a[2 * Q + n] * b[2 * Q + n]
        s3 += a[3 * Q + n] * b[3 * Q + n]
    return (s0 + s1) + (s2 + s3)


cdef inline floating _dot_shifted(const floating* w, const floating* x, floating c,
                                  Py_ssize_t P) noexcept nogil:
    """sum_n w[n] (x[n] - c), in four chains like _dot."""
    cdef Py_ssize_t n, Q = P // 4
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0
    for n in range(Q):
        s0 += w[n] * (x[n] - c)
        s1 += w[Q + n] * (x[Q + n] - c)
        s2 += w[2 * Q + n] * (x[2 * Q + n] - c)
        s3 += w[3 * Q + n] * (x[3 * Q + n] - c)
    return (s0 + s1) + (s2 + s3)


cdef void _gram_lower(
    const floating* wt,         # IN (D, ld) weighted differences
    const floating* xt,         # IN (D, ld) rows
    const floating* c,          # IN (D,) shift, or NULL: xt are differences
    Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
    double* S,                  # INOUT (D, D) lower triangle += wt (xt - c)^T
) noexcept nogil:
    # 4 x 4 blocks of (i, j), each sixteen sums over the rows in registers
    # (fastem_simd.h). Diagonal blocks compute their upper corner too, and
    # drop it. (Full covariance forms x - c_k inside the blocks: storing the
    # differences once per component instead was slower.)
    cdef Py_ssize_t i, j, ii, jj
    cdef Py_ssize_t D4 = D // 4 * 4
    cdef floating blk[16]
    cdef const floating* wi
    for i in range(0, D4, 4):
        wi = wt + i * ld
        for j in range(0, i + 1, 4):
            if c == NULL:
                if floating is double:
                    fe_gram4_plain_d(wi, xt + j * ld, NULL, ld, P, blk)
                else:
                    fe_gram4_plain_f(wi, xt + j * ld, NULL, ld, P, blk)
            elif floating is double:
                fe_gram4_d(wi, xt + j * ld, c + j, ld, P, blk)
            else:
                fe_gram4_f(wi, xt + j * ld, c + j, ld, P, blk)
            for ii in range(4):
                for jj in range(4):
                    if j + jj <= i + ii:
                        S[(i + ii) * D + j + jj] += blk[ii * 4 + jj]
    # rows left over when D is not a multiple of 4
    for i in range(D4, D):
        wi = wt + i * ld
        for j in range(i + 1):
            if c == NULL:
                S[i * D + j] += _dot(wi, xt + j * ld, P)
            else:
                S[i * D + j] += _dot_shifted(wi, xt + j * ld, c[j], P)


cdef inline floating _sum(const floating* a, Py_ssize_t P) noexcept nogil:
    cdef Py_ssize_t n, Q = P // 4
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0
    for n in range(Q):
        s0 += a[n]
        s1 += a[Q + n]
        s2 += a[2 * Q + n]
        s3 += a[3 * Q + n]
    return (s0 + s1) + (s2 + s3)


cdef void _cross(
    const floating* a,          # IN (A, ld)
    Py_ssize_t A,
    const floating* b,          # IN (B, ld)
    Py_ssize_t B, Py_ssize_t P, Py_ssize_t ld,
    double* out,                # INOUT (A, ldo) += a b^T (sums over the P rows)
    Py_ssize_t ldo,
) noexcept nogil:
    # 4 x 4 blocks with the scatter's register kernel (16 sums per sweep,
    # each loaded vector used four times); the rest one dot at a time
    cdef Py_ssize_t i, j, ii, jj, A4 = A // 4 * 4, B4 = B // 4 * 4
    cdef floating blk[16]
    for i in range(0, A4, 4):
        for j in range(0, B4, 4):
            if floating is double:
                fe_gram4_plain_d(a + i * ld, b + j * ld, NULL, ld, P, blk)
            else:
                fe_gram4_plain_f(a + i * ld, b + j * ld, NULL, ld, P, blk)
            for ii in range(4):
                for jj in range(4):
                    out[(i + ii) * ldo + j + jj] += blk[ii * 4 + jj]
        for j in range(B4, B):
            for ii in range(4):
                out[(i + ii) * ldo + j] += _dot(a + (i + ii) * ld, b + j * ld, P)
    for i in range(A4, A):
        for j in range(B):
            out[i * ldo + j] += _dot(a + i * ld, b + j * ld, P)


cdef inline void _sqdist_all(
    const floating* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D, Py_ssize_t K,
    const floating* c,          # IN (K, D) centres
    const floating* scale,      # IN (K, D) per-feature scales, or NULL (1)
    floating* q,                # OUT (K, ld) sum_i ((x_i - c_ki) scale_ki)^2
) noexcept nogil:
    # all components in register blocks (fastem_simd.h)
    if floating is double:
        fe_sqdist_d(xt, P, ld, D, K, c, scale, q)
    else:
        fe_sqdist_f(xt, P, ld, D, K, c, scale, q)


cdef void _nk_s1_shared(
    const floating* resp,       # IN (K, ld) responsibilities, zero on padding
    const floating* diff,       # IN (D, ld) x - c, c shared by all components
    Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D, Py_ssize_t K,
    double* st,                 # INOUT flat statistics: n_k and s1 added
) noexcept nogil:
    # one shift for all components: the sums over rows weighted by each
    # component's responsibilities are a product of the (K, P)
    # responsibilities with the differences
    cdef Py_ssize_t k
    for k in range(K):
        st[1 + k] += _sum(resp + k * ld, P)
    _cross(resp, K, diff, D, P, ld, st + 1 + K, D)


cdef void _mirror_lower(double* a, Py_ssize_t n, Py_ssize_t D) noexcept nogil:
    """Upper triangles of n (D, D) matrices from their lower ones."""
    cdef Py_ssize_t k, i, j
    for k in range(n):
        for i in range(D):
            for j in range(i + 1, D):
                a[k * D * D + i * D + j] = a[k * D * D + j * D + i]


cdef void _stats_small_full(
    const floating* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D, Py_ssize_t K,
    const floating* e,          # IN (K, ld) unscaled exps: r_k = e_k * inv_s
    const floating* inv_s,      # IN (P,) zero on padding rows
    const floating* shift,
    double* nk, double* s1, double* s2,     # INOUT, laid out as in _stats_chunk
) noexcept nogil:
    """Full-covariance statistics for D = 1 or 2: all sums of a component in
    one sweep over the rows, kept in registers. (The general path writes the
    weighted differences and sums them again; with so few features its
    sweeps are loads, stores and one dependent add each.)"""
    cdef Py_ssize_t k, n
    cdef const floating* ek
    cdef const floating* x0 = xt
    cdef const floating* x1 = xt + ld
    cdef floating c0, c1, d0, d1, r, w0, w1
    cdef floating a_r, a_0, a_1, a_00, a_10, a_11
    for k in range(K):
        ek = e + k * ld
        c0 = shift[k * D]
        a_r = 0
        a_0 = 0
        a_00 = 0
        if D == 1:
            for n in range(P):
                r = ek[n] * inv_s[n]
                d0 = x0[n] - c0
                w0 = r * d0
                a_r += r
                a_0 += w0
                a_00 += w0 * d0
            nk[k] += a_r
            s1[k] += a_0
            s2[k] += a_00
        else:
            c1 = shift[k * D + 1]
            a_1 = 0
            a_10 = 0
            a_11 = 0
            for n in range(P):
                r = ek[n] * inv_s[n]
                d0 = x0[n] - c0
                d1 = x1[n] - c1
                w0 = r * d0
                w1 = r * d1
                a_r += r
                a_0 += w0
                a_1 += w1
                a_00 += w0 * d0
                a_10 += w1 * d0
                a_11 += w1 * d1
            nk[k] += a_r
            s1[2 * k] += a_0
            s1[2 * k + 1] += a_1
            s2[4 * k] += a_00
            s2[4 * k + 2] += a_10
            s2[4 * k + 3] += a_11


# --------------------------------------------------------------------------
# Large D: the two O(D^2)-per-row products of full and tied covariance as
# BLAS-3 calls on a whole chunk (scipy's BLAS, one thread per call: the
# Python layer caps BLAS at one thread around these passes). To BLAS a
# feature-major block (D, ld) is the column-major P x D matrix of its rows
# with leading dimension ld, and a row-major upper-triangular U (D, ldu) is
# the column-major lower-triangular U^T. Row-major lower triangles of the
# (D, D) scatters are column-major upper ones.

cdef inline void _blas_tri_product(
    floating* y,                # INOUT (D, ld) rows d -> d^T U
    Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
    const floating* U,          # IN (D, ldu) upper triangular, row-major
    Py_ssize_t ldu,
) noexcept nogil:
    cdef int m = <int> P, n = <int> D, ldb = <int> ld, lda = <int> ldu
    cdef char side = b'R', uplo = b'L', trans = b'T', diag = b'N'
    cdef double one_d = 1.0
    cdef float one_f = 1.0
    if floating is double:
        dtrmm(&side, &uplo, &trans, &diag, &m, &n, &one_d, <double*> U, &lda, y, &ldb)
    else:
        strmm(&side, &uplo, &trans, &diag, &m, &n, &one_f, <float*> U, &lda, y, &ldb)


cdef inline void _row_sqnorms(
    const floating* y,          # IN (D, ld)
    Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
    floating* q,                # OUT (P,) sum_i y_i^2 for every row
) noexcept nogil:
    cdef Py_ssize_t i, n
    cdef const floating* yi
    for n in range(P):
        q[n] = y[n] * y[n]
    for i in range(1, D):
        yi = y + i * ld
        for n in range(P):
            q[n] += yi[n] * yi[n]


cdef void _blas_scatter(
    const floating* g,          # IN (D, ld) rows g_n (n < n_rows)
    Py_ssize_t n_rows, Py_ssize_t ld, Py_ssize_t D,
    floating* scratch,          # (D, D) float32 only: the chunk's sum
    double* S,                  # INOUT (D, D) lower triangle += sum_n g_n g_n^T
) noexcept nogil:
    cdef int n = <int> D, k = <int> n_rows, lda = <int> ld, ldc = <int> D
    cdef char uplo = b'U', trans = b'T'
    cdef double one_d = 1.0
    cdef float one_f = 1.0, zero_f = 0.0
    cdef Py_ssize_t i, j
    if floating is double:
        dsyrk(&uplo, &trans, &n, &k, &one_d, <double*> g, &lda, &one_d, S, &ldc)
    else:
        # a float32 sum over at most one chunk, added to the float64 totals
        ssyrk(&uplo, &trans, &n, &k, &one_f, <float*> g, &lda, &zero_f, scratch, &ldc)
        for i in range(D):
            for j in range(i + 1):
                S[i * D + j] += scratch[i * D + j]


# --------------------------------------------------------------------------
# One pass's parameters and one thread's buffers. The buffers hold the
# data's dtype (float64 or float32); they are untyped here so that one
# struct serves both, and each function views them in its own dtype.

ctypedef struct _Params:
    Py_ssize_t D, K
    Py_ssize_t ld               # row stride of the feature-major blocks
    const void* loc             # (K, D)
    const void* prec            # flat precision Cholesky (module doc)
    const void* center          # (D,) tied: c of loc_k = (mu_k - c) U
    const void* shift           # (K, D) statistics shift c_k (EM only)
    const double* log_const     # (K,)
    const double* weights       # (N,) the rows' weights (EM only), or NULL (all 1)
    bint blas                   # full and tied: the products through BLAS


ctypedef struct _Work:
    # diff: tied, formed by the log-probabilities and read again by the
    # statistics; diag and spherical, formed by the statistics.
    # tmp: tied (x - c) U; then the statistics' weighted differences or squares
    void* xt                    # (D, ld) the chunk, feature-major
    void* diff                  # (D, ld) x - c
    void* tmp                   # (D, ld)
    void* lp                    # (K, ld) log-probabilities -> responsibilities
    void* row_ll                # (ld,) row log-likelihoods
    void* row_s                 # (ld,) 1 / sum of the exps, 0 on padding
    void* gram                  # (D, D) BLAS float32 scatter of one chunk, or NULL
    double* sums                # (S,) this thread's statistics (EM only)
    const double* weights       # (n,) the current chunk's row weights, or NULL
    bint ran                    # the thread ran in the last pass


# --------------------------------------------------------------------------
# The covariance types. Each has a log-probability function, filling
# w.lp (K, ld) with the weighted log-probabilities of the chunk xt (P rows),
# and a statistics function, adding a chunk's n_k, s1 and s2 to st[1:] from
# w.lp holding the unscaled exps of _normalize_chunk and w.row_s their scale.
# The chunk is passed on its own (it is also w.xt) to fix the dtype.

cdef void _log_const_minus(
    floating* lp,               # INOUT (K, ld) sums of squares -> log-probabilities
    Py_ssize_t P, Py_ssize_t ld, Py_ssize_t K,
    const double* log_const,    # IN (K,)
    const floating* sph,        # IN (K,) spherical precisions, or NULL (1)
) noexcept nogil:
    cdef Py_ssize_t k, n
    cdef floating lc, p
    cdef floating* q
    for k in range(K):
        q = lp + k * ld
        lc = <floating> log_const[k]
        p = <floating> 0.5
        if sph != NULL:
            p = p * sph[k] * sph[k]
        for n in range(P):
            q[n] = lc - p * q[n]


cdef void _full_logprob(const _Params* p, _Work* w, const floating* xt,
                        Py_ssize_t P) noexcept nogil:
    cdef Py_ssize_t k, n, D = p.D, ld = p.ld, ldu = FE_TRI_STRIDE(p.D)
    cdef const floating* loc = <const floating*> p.loc
    cdef const floating* prec = <const floating*> p.prec
    cdef floating lc
    cdef floating* q
    cdef floating* y = <floating*> w.diff
    # component by component, each turned into log-probabilities while its
    # rows are in cache
    for k in range(p.K):
        q = <floating*> w.lp + k * ld
        if p.blas:
            _full_sqnorm_blas(p, k, xt, P, ld, y, q)
        else:
            _tri_sqnorm(xt, P, ld, D, loc + k * D, prec + k * D * ldu, ldu, q)
        lc = <floating> p.log_const[k]
        for n in range(P):
            q[n] = lc - <floating> 0.5 * q[n]


cdef void _full_stats(const _Params* p, _Work* w, const floating* xt, Py_ssize_t n_rows,
                      Py_ssize_t P, double* st) noexcept nogil:
    cdef Py_ssize_t i, k, D = p.D, K = p.K, ld = p.ld
    cdef floating* resp = <floating*> w.lp
    cdef floating* wt = <floating*> w.tmp
    cdef const floating* shift = <const floating*> p.shift
    cdef const floating* r
    cdef double* nk = st + 1
    cdef double* s1 = st + 1 + K
    cdef double* s2 = st + 1 + K + K * D
    if D <= 2:
        # scales the exps as it reads them: K sweeps that store saved
        _stats_small_full(xt, P, ld, D, K, resp, <floating*> w.row_s, shift, nk, s1, s2)
        return
    _scale_resp(resp, <floating*> w.row_s, P, ld, K)
    if p.blas:
        _full_stats_blas(p, w, xt, n_rows, P, st)
        return
    for k in range(K):
        r = resp + k * ld
        nk[k] += _sum(r, P)
        # w = r (x - c_k) in one sweep, summing w as we go
        # (fastem_simd.h); the scatter forms x - c_k itself
        for i in range(D):
            if floating is double:
                s1[k * D + i] += fe_wdiff_d(r, xt + i * ld, shift[k * D + i], P, wt + i * ld)
            else:
                s1[k * D + i] += fe_wdiff_f(r, xt + i * ld, shift[k * D + i], P, wt + i * ld)
        _gram_lower(wt, xt, shift + k * D, P, ld, D, s2 + k * D * D)


cdef void _full_sqnorm_blas(const _Params* p, Py_ssize_t k, const floating* xt,
                            Py_ssize_t P, Py_ssize_t ld, floating* y,
                            floating* q) noexcept nogil:
    """q (P,) = |(x - mu_k)^T U_k|^2 of the rows of xt (D, ld), through y (D, ld)."""
    cdef Py_ssize_t D = p.D, ldu = FE_TRI_STRIDE(p.D)
    _sub(xt, P, ld, D, <const floating*> p.loc + k * D, y)
    _blas_tri_product(y, P, ld, D, <const floating*> p.prec + k * D * ldu, ldu)
    _row_sqnorms(y, P, ld, D, q)


cdef void _full_component_blas(
    const _Params* p, Py_ssize_t k,
    const floating* xt,         # IN (D, ld) rows, zero padded to P
    Py_ssize_t n_rows, Py_ssize_t P, Py_ssize_t ld,
    const floating* r,          # IN (P,) component k's responsibilities, 0 on padding
    floating* g,                # scratch (D, ld)
    floating* sr,               # scratch (P,)
    floating* gram,             # scratch (D, D), float32 only
    double* st,                 # INOUT flat statistics: component k's n_k, s1, s2
) noexcept nogil:
    """One component's statistics of the rows, the scatter one SYRK of the
    rows sqrt(r) (x - c_k)."""
    cdef Py_ssize_t i, n, D = p.D, K = p.K
    cdef const floating* c = <const floating*> p.shift + k * D
    cdef const floating* xi
    cdef floating* gi
    st[1 + k] += _sum(r, P)
    for n in range(n_rows):
        sr[n] = sqrt(r[n])
    for i in range(D):
        xi = xt + i * ld
        gi = g + i * ld
        st[1 + K + k * D + i] += _dot_shifted(r, xi, c[i], P)
        for n in range(n_rows):
            gi[n] = sr[n] * (xi[n] - c[i])
    _blas_scatter(g, n_rows, ld, D, gram, st + 1 + K + K * D + k * D * D)


cdef void _full_stats_blas(const _Params* p, _Work* w, const floating* xt,
                           Py_ssize_t n_rows, Py_ssize_t P, double* st) noexcept nogil:
    """_full_stats on scaled responsibilities, component by component."""
    cdef Py_ssize_t k
    for k in range(p.K):
        # the row log-likelihoods are not needed once the chunk is normalised
        _full_component_blas(p, k, xt, n_rows, P, p.ld, <floating*> w.lp + k * p.ld,
                             <floating*> w.tmp, <floating*> w.row_ll,
                             <floating*> w.gram, st)


cdef void _full_finish(double* s2, Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    _mirror_lower(s2, K, D)


cdef void _tied_logprob(const _Params* p, _Work* w, const floating* xt,
                        Py_ssize_t P) noexcept nogil:
    cdef floating* diff = <floating*> w.diff
    cdef floating* z = <floating*> w.tmp
    # z = (x - c) U once per row, then |z - loc_k|^2 per component; the
    # differences stay in w.diff for the statistics
    cdef Py_ssize_t i
    _sub(xt, P, p.ld, p.D, <const floating*> p.center, diff)
    if p.blas:
        for i in range(p.D):
            memcpy(z + i * p.ld, diff + i * p.ld, P * sizeof(floating))
        _blas_tri_product(z, P, p.ld, p.D, <const floating*> p.prec, p.D)
    else:
        _tri_product(diff, P, p.ld, p.D, <const floating*> p.prec, z)
    _sqdist_all(z, P, p.ld, p.D, p.K, <const floating*> p.loc, NULL, <floating*> w.lp)
    _log_const_minus(<floating*> w.lp, P, p.ld, p.K, p.log_const, NULL)


cdef void _tied_stats(const _Params* p, _Work* w, const floating* xt, Py_ssize_t n_rows,
                      Py_ssize_t P, double* st) noexcept nogil:
    cdef Py_ssize_t i, n, D = p.D, K = p.K, ld = p.ld
    cdef floating* resp = <floating*> w.lp
    # x - c from _tied_logprob (its center is the shift's common row)
    cdef floating* diff = <floating*> w.diff
    cdef floating* g = diff
    _scale_resp(resp, <floating*> w.row_s, P, ld, K)
    _nk_s1_shared(resp, diff, P, ld, D, K, st)
    # sum_k r_k = 1 (weighted rows: w), so the shared scatter ignores
    # responsibilities: sum_n w_n d_n d_n^T, as g g^T with g = sqrt(w) d for
    # BLAS, as (w d) d^T for the register kernels
    if w.weights != NULL:
        g = <floating*> w.tmp
        for i in range(D):
            for n in range(n_rows):
                g[i * ld + n] = diff[i * ld + n] * <floating> (
                    sqrt(w.weights[n]) if p.blas else w.weights[n])
    if p.blas:
        _blas_scatter(g, n_rows, ld, D, <floating*> w.gram, st + 1 + K + K * D)
        return
    # padding rows are zeroed so they add nothing
    for i in range(D):
        for n in range(n_rows, P):
            g[i * ld + n] = 0
    _gram_lower(g, diff, NULL, P, ld, D, st + 1 + K + K * D)


cdef void _tied_finish(double* s2, Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    _mirror_lower(s2, 1, D)


cdef void _diag_logprob(const _Params* p, _Work* w, const floating* xt,
                        Py_ssize_t P) noexcept nogil:
    _sqdist_all(xt, P, p.ld, p.D, p.K, <const floating*> p.loc, <const floating*> p.prec,
                <floating*> w.lp)
    _log_const_minus(<floating*> w.lp, P, p.ld, p.K, p.log_const, NULL)


cdef void _diag_stats(const _Params* p, _Work* w, const floating* xt, Py_ssize_t n_rows,
                      Py_ssize_t P, double* st) noexcept nogil:
    cdef Py_ssize_t i, n, D = p.D, K = p.K, ld = p.ld
    cdef floating* resp = <floating*> w.lp
    cdef floating* diff = <floating*> w.diff
    cdef floating* sq = <floating*> w.tmp
    _scale_resp(resp, <floating*> w.row_s, P, ld, K)
    _sub(xt, P, ld, D, <const floating*> p.shift, diff)
    _nk_s1_shared(resp, diff, P, ld, D, K, st)
    for i in range(D):
        for n in range(P):
            sq[i * ld + n] = diff[i * ld + n] * diff[i * ld + n]
    _cross(resp, K, sq, D, P, ld, st + 1 + K + K * D, D)


cdef void _spherical_logprob(const _Params* p, _Work* w, const floating* xt,
                             Py_ssize_t P) noexcept nogil:
    _sqdist_all(xt, P, p.ld, p.D, p.K, <const floating*> p.loc, NULL, <floating*> w.lp)
    _log_const_minus(<floating*> w.lp, P, p.ld, p.K, p.log_const,
                     <const floating*> p.prec)


cdef void _spherical_stats(const _Params* p, _Work* w, const floating* xt,
                           Py_ssize_t n_rows, Py_ssize_t P, double* st) noexcept nogil:
    cdef Py_ssize_t i, n, D = p.D, K = p.K, ld = p.ld
    cdef floating* resp = <floating*> w.lp
    cdef floating* diff = <floating*> w.diff
    cdef floating* sq = <floating*> w.tmp
    _scale_resp(resp, <floating*> w.row_s, P, ld, K)
    _sub(xt, P, ld, D, <const floating*> p.shift, diff)
    _nk_s1_shared(resp, diff, P, ld, D, K, st)
    for n in range(P):
        sq[n] = 0
    for i in range(D):
        for n in range(P):
            sq[n] += diff[i * ld + n] * diff[i * ld + n]
    _cross(resp, K, sq, 1, P, ld, st + 1 + K + K * D, 1)


cdef void _no_finish(double* s2, Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    pass


cdef Py_ssize_t _full_prec_size(Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    return K * D * FE_TRI_STRIDE(D)


cdef Py_ssize_t _full_s2_size(Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    return K * D * D


cdef Py_ssize_t _tied_size(Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    return D * D


cdef Py_ssize_t _diag_size(Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    return K * D


cdef Py_ssize_t _spherical_size(Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    return K


ctypedef Py_ssize_t (*_size_fn)(Py_ssize_t K, Py_ssize_t D) noexcept nogil
ctypedef void (*_logprob_d)(const _Params*, _Work*, const double*, Py_ssize_t) noexcept nogil
ctypedef void (*_logprob_f)(const _Params*, _Work*, const float*, Py_ssize_t) noexcept nogil
ctypedef void (*_stats_d)(const _Params*, _Work*, const double*, Py_ssize_t, Py_ssize_t,
                          double*) noexcept nogil
ctypedef void (*_stats_f)(const _Params*, _Work*, const float*, Py_ssize_t, Py_ssize_t,
                          double*) noexcept nogil
ctypedef void (*_finish_fn)(double* s2, Py_ssize_t K, Py_ssize_t D) noexcept nogil

ctypedef struct _CovType:
    _size_fn prec_size          # values in ``prec``
    _size_fn s2_size            # values of s2 in the statistics
    _logprob_d logprob_d
    _logprob_f logprob_f
    _stats_d stats_d
    _stats_f stats_f
    _finish_fn finish           # on the summed s2 (e.g. mirror the triangles)


# indexed by the codes of COV_TYPE_CODES: a new type is its functions above
# and one entry here
cdef _CovType _COV_TYPES[N_COV_TYPES]
_COV_TYPES[FULL] = _CovType(
    _full_prec_size, _full_s2_size, _full_logprob[double], _full_logprob[float],
    _full_stats[double], _full_stats[float], _full_finish)
_COV_TYPES[TIED] = _CovType(
    _tied_size, _tied_size, _tied_logprob[double], _tied_logprob[float],
    _tied_stats[double], _tied_stats[float], _tied_finish)
_COV_TYPES[DIAG] = _CovType(
    _diag_size, _diag_size, _diag_logprob[double], _diag_logprob[float],
    _diag_stats[double], _diag_stats[float], _no_finish)
_COV_TYPES[SPHERICAL] = _CovType(
    _spherical_size, _spherical_size, _spherical_logprob[double],
    _spherical_logprob[float], _spherical_stats[double], _spherical_stats[float],
    _no_finish)


cdef const _CovType* _cov_type(int code) except NULL:
    if code < 0 or code >= N_COV_TYPES:
        raise KeyError(code)
    return &_COV_TYPES[code]


def stats_size(int cov_type, Py_ssize_t n_components, Py_ssize_t n_features):
    """Length of the flat statistics vector of one thread (see module doc)."""
    cdef Py_ssize_t K = n_components, D = n_features
    return 1 + K + K * D + _cov_type(cov_type).s2_size(K, D)


def _check_prec(int cov_type, Py_ssize_t K, Py_ssize_t D, Py_ssize_t size):
    cdef Py_ssize_t expected = _cov_type(cov_type).prec_size(K, D)
    if size != expected:
        raise ValueError(f"fastem: prec has {size} values, expected {expected} "
                         f"for covariance type code {cov_type}, K={K}, D={D}")


# --------------------------------------------------------------------------
# The workspace of a pass and the parallel driver both passes run.

ctypedef struct _Workspace:
    int n_threads
    _Work* threads              # (n_threads,)
    void* buffers               # the threads' chunk buffers, one block
    double* stats               # the threads' sums and chunk statistics, one block


cdef inline Py_ssize_t _round_up(Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    return (n + m - 1) // m * m


cdef int _workspace_new(_Workspace* ws, int n_threads, Py_ssize_t D, Py_ssize_t K,
                        Py_ssize_t ld, Py_ssize_t S, Py_ssize_t itemsize,
                        bint gram) noexcept nogil:
    """Allocate the buffers of ``n_threads`` threads: chunk, differences and
    products (D x ld each), log-probabilities (K x ld), two row vectors and,
    if ``gram``, a (D, D) scatter, in the data's dtype (``itemsize`` bytes),
    and S statistics (none when S = 0), which each thread zeroes itself.
    Returns -1, with nothing left allocated, when any allocation fails or a
    size overflows. Everything is allocated here, before the parallel
    region, so the threads never allocate and never fail."""
    cdef Py_ssize_t rows = 3 * D + K + 2, size, S8 = _round_up(S, 8)
    cdef Py_ssize_t limit = PY_SSIZE_T_MAX // 2
    cdef Py_ssize_t t, gram_items = D * D if gram else 0
    cdef char* block
    cdef _Work* w
    memset(ws, 0, sizeof(_Workspace))
    if (ld > limit // (rows * itemsize) // n_threads or S8 > limit // 8 // n_threads
            or D > limit // (D * itemsize) // n_threads // 2):
        return -1
    # each thread's block a whole number of pages: it starts where a block
    # of its own would (the same alignment), and no two threads share a line
    size = _round_up((rows * ld + gram_items) * itemsize, 4096)
    ws.n_threads = n_threads
    ws.threads = <_Work*> calloc(n_threads, sizeof(_Work))
    ws.buffers = malloc(n_threads * size)
    if S > 0:
        # not calloc: zeroed pages that BLAS reads before it writes them
        # fault twice, the second time with a TLB shootdown across threads
        ws.stats = <double*> malloc(n_threads * S8 * sizeof(double))
    if ws.threads == NULL or ws.buffers == NULL or (S > 0 and ws.stats == NULL):
        _workspace_free(ws)
        return -1
    for t in range(n_threads):
        w = &ws.threads[t]
        block = <char*> ws.buffers + t * size
        w.xt = block
        w.diff = block + D * ld * itemsize
        w.tmp = block + 2 * D * ld * itemsize
        w.lp = block + 3 * D * ld * itemsize
        w.row_ll = block + (3 * D + K) * ld * itemsize
        w.row_s = block + (3 * D + K + 1) * ld * itemsize
        w.gram = block + rows * ld * itemsize if gram else NULL
        if S > 0:
            w.sums = ws.stats + t * S8
    return 0


cdef void _workspace_free(_Workspace* ws) noexcept nogil:
    free(ws.threads)
    free(ws.buffers)
    free(ws.stats)
    memset(ws, 0, sizeof(_Workspace))


ctypedef struct _Scores:
    double* ll                  # (N,) row log-likelihoods, or NULL
    double* resp                # (N, K) responsibilities, or NULL
    Py_ssize_t* labels          # (N,) argmax labels, or NULL


cdef inline void _em_chunk(const _Params* p, const _CovType* ct, _Work* w,
                           const floating* xt, Py_ssize_t start, Py_ssize_t n,
                           Py_ssize_t P, Py_ssize_t S) noexcept nogil:
    """The statistics of the chunk of rows start..start + n, added to the
    thread's sums. Every value of a chunk's statistics is summed over its
    rows first (in registers, or by BLAS) and then added once to the
    float64 totals."""
    # unscaled exps: each type's statistics scale them (or read them scaled)
    cdef double ll = _normalize_chunk(<floating*> w.lp, n, P, p.ld, p.K,
                                      <floating*> w.row_ll, <floating*> w.row_s, False)
    w.weights = NULL
    if p.weights != NULL:
        w.weights = p.weights + start
        ll = _weigh_rows(<floating*> w.row_s, <floating*> w.row_ll, w.weights, n)
    w.sums[0] += ll
    if floating is double:
        ct.stats_d(p, w, xt, n, P, w.sums)
    else:
        ct.stats_f(p, w, xt, n, P, w.sums)


cdef inline void _score_chunk(const _Params* p, _Work* w, const floating* xt,
                              Py_ssize_t start, Py_ssize_t n, Py_ssize_t P,
                              const _Scores* out) noexcept nogil:
    """The chunk's requested per-row outputs."""
    cdef Py_ssize_t i, k, best, K = p.K, ld = p.ld
    cdef floating* lp = <floating*> w.lp
    cdef floating* row_ll = <floating*> w.row_ll
    if out.labels != NULL:
        # argmax of the weighted log-probabilities, as scikit-learn
        for i in range(n):
            best = 0
            for k in range(1, K):
                if lp[k * ld + i] > lp[best * ld + i]:
                    best = k
            out.labels[start + i] = best
    if out.ll != NULL or out.resp != NULL:
        _normalize_chunk(lp, n, P, ld, K, row_ll, <floating*> w.row_s, True)
    if out.ll != NULL:
        for i in range(n):
            out.ll[start + i] = row_ll[i]
    if out.resp != NULL:
        for i in range(n):
            for k in range(K):
                out.resp[(start + i) * K + k] = lp[k * ld + i]


cdef void _run_chunks(
    const floating[:, :] X,     # IN (N, D), any strides
    const _Params* p,
    const _CovType* ct,
    Py_ssize_t chunk_size,
    _Workspace* ws,
    Py_ssize_t S,               # > 0: EM statistics into each thread's w.sums
    const _Scores* out,         # S == 0: scores
) noexcept nogil:
    """Every chunk of X through the type's log-probabilities, then the EM
    statistics or the scores, chunks split statically over the threads."""
    cdef Py_ssize_t N = X.shape[0]
    cdef Py_ssize_t n_chunks = N // chunk_size + (N % chunk_size != 0)
    cdef Py_ssize_t P = _padded(chunk_size)
    cdef bint contiguous = _is_c_contiguous(X)
    cdef Py_ssize_t ch, start, n
    cdef int t
    cdef _Work* w
    cdef floating* xt
    cdef unsigned int fp_state
    for t in range(ws.n_threads):
        ws.threads[t].ran = False
    with parallel(num_threads=ws.n_threads):
        fp_state = fe_flush_denormals()
        w = &ws.threads[threadid()]
        w.ran = True
        if S > 0:
            # zeroed by the thread that adds to them: its pages, first written here
            memset(w.sums, 0, S * sizeof(double))
        xt = <floating*> w.xt
        for ch in prange(n_chunks, schedule="static"):
            start = ch * chunk_size
            n = min(chunk_size, N - start)
            _load_chunk(X, start, n, P, p.ld, contiguous, xt)
            if S > 0 and p.weights != NULL:
                _clear_weightless(xt, p.weights + start, n, p.ld, p.D)
            if floating is double:
                ct.logprob_d(p, w, xt, P)
            else:
                ct.logprob_f(p, w, xt, P)
            if S > 0:
                _em_chunk(p, ct, w, xt, start, n, P, S)
            else:
                _score_chunk(p, w, xt, start, n, P, out)
        fe_restore_fp_state(fp_state)


cdef void _prepare_params(_Params* p, Py_ssize_t D, Py_ssize_t K,
                          const floating[:, ::1] loc, const floating[::1] prec,
                          const floating[::1] center, const double[::1] log_const,
                          const floating* shift, bint blas):
    p.weights = NULL
    p.D = D
    p.K = K
    p.loc = &loc[0, 0]
    p.prec = &prec[0]
    p.center = &center[0]
    p.shift = shift
    p.log_const = &log_const[0]
    p.blas = blas


cdef int _prepare(_Params* p, _Workspace* ws, const floating[:, :] X,
                  const floating[:, ::1] loc, const floating[::1] prec,
                  const floating[::1] center, const double[::1] log_const,
                  const floating* shift, int cov_type, Py_ssize_t chunk_size,
                  int n_threads, Py_ssize_t S, bint blas) except -1:
    """Fill ``p`` and allocate the workspace (MemoryError when it cannot be)."""
    cdef Py_ssize_t D = X.shape[1], K = loc.shape[0]
    # BLAS products for full and tied; the other types have none
    _prepare_params(p, D, K, loc, prec, center, log_const, shift,
                    blas and (cov_type == FULL or cov_type == TIED))
    # one spare cache line per row keeps rows out of the same L1 sets
    p.ld = _padded(min(chunk_size, PY_SSIZE_T_MAX // 4)) + 64 // sizeof(floating)
    # float32 scatters are summed over a chunk in a buffer of their own
    if _workspace_new(ws, n_threads, D, K, p.ld, S, sizeof(floating),
                      p.blas and sizeof(floating) == sizeof(float)) != 0:
        raise MemoryError("fastem: cannot allocate the per-thread buffers of "
                          f"{n_threads} threads for chunks of {chunk_size} rows; "
                          "use a smaller chunk_size")
    return 0


def _check_args(int cov_type, Py_ssize_t K, Py_ssize_t D, Py_ssize_t prec_size,
                Py_ssize_t chunk_size, int n_threads):
    _check_prec(cov_type, K, D, prec_size)
    if n_threads < 1:
        raise ValueError(f"fastem: n_threads must be >= 1, got {n_threads}")
    if chunk_size < 1:
        raise ValueError(f"fastem: chunk_size must be >= 1, got {chunk_size}")


# --------------------------------------------------------------------------
# Full covariance through BLAS with at least as many components as threads.
# Per-thread statistics would hold K D^2 values per thread (256 MiB each
# for K = 32, D = 1024), zeroed and summed every pass. Instead the rows go
# in super-chunks of one sub-chunk per thread, each in two phases: the
# threads turn their sub-chunks into responsibilities in a shared buffer,
# then split the components, each adding its statistics over the whole
# super-chunk straight into the output. One pass over X all the same.

ctypedef struct _Shared:
    void* xt                    # (D, ld) the super-chunk, feature-major
    void* lp                    # (K, ld) responsibilities
    void* row_ll                # (ld,)
    void* row_s                 # (ld,)
    char* threads               # n_threads blocks of `block` bytes: (D, ld)
    Py_ssize_t block            # scratch, (ld,) scratch, float32 (D, D) scatter
    double* loglik              # (n_threads, 8) the threads' log-likelihoods


cdef void _shared_free(_Shared* sh) noexcept nogil:
    free(sh.xt)
    free(sh.threads)
    free(sh.loglik)
    memset(sh, 0, sizeof(_Shared))


cdef int _shared_new(_Shared* sh, int n_threads, Py_ssize_t D, Py_ssize_t K,
                     Py_ssize_t ld, Py_ssize_t itemsize) noexcept nogil:
    """The buffers of _full_em_shared; -1 (nothing allocated) on failure."""
    cdef Py_ssize_t limit = PY_SSIZE_T_MAX // 4
    cdef Py_ssize_t gram = D * D if itemsize == sizeof(float) else 0
    cdef Py_ssize_t rows = D + K + 2
    memset(sh, 0, sizeof(_Shared))
    if (ld > limit // (rows * itemsize) // n_threads
            or D > limit // (D * itemsize) // n_threads):
        return -1
    sh.block = _round_up(((D + 1) * ld + gram) * itemsize, 4096)
    sh.xt = malloc(rows * ld * itemsize)
    sh.threads = <char*> malloc(n_threads * sh.block)
    sh.loglik = <double*> calloc(n_threads * 8, sizeof(double))
    if sh.xt == NULL or sh.threads == NULL or sh.loglik == NULL:
        _shared_free(sh)
        return -1
    sh.lp = <char*> sh.xt + D * ld * itemsize
    sh.row_ll = <char*> sh.xt + (D + K) * ld * itemsize
    sh.row_s = <char*> sh.xt + (D + K + 1) * ld * itemsize
    return 0


cdef void _full_em_shared(
    const floating[:, :] X, const _Params* p, Py_ssize_t sub, int n_threads,
    _Shared* sh,
    double* st,                 # INOUT (S,) zeroed statistics
) noexcept nogil:
    cdef Py_ssize_t N = X.shape[0], D = p.D, K = p.K, ld = p.ld
    cdef Py_ssize_t M = sub * n_threads
    cdef Py_ssize_t n_super = N // M + (N % M != 0)
    cdef bint contiguous = _is_c_contiguous(X)
    cdef floating* xt = <floating*> sh.xt
    cdef floating* lp = <floating*> sh.lp
    cdef floating* row_ll = <floating*> sh.row_ll
    cdef floating* row_s = <floating*> sh.row_s
    cdef Py_ssize_t sc, base, m, n_sub, j, k, off, n, P, i
    cdef floating* y
    cdef floating* sr
    cdef floating* gram
    cdef floating lc
    cdef double ll
    cdef int t
    cdef unsigned int fp_state
    with parallel(num_threads=n_threads):
        fp_state = fe_flush_denormals()
        t = threadid()
        y = <floating*> (sh.threads + t * sh.block)
        sr = y + D * ld
        gram = sr + ld
        for sc in range(n_super):
            base = sc * M
            m = min(M, N - base)
            n_sub = m // sub + (m % sub != 0)
            # responsibilities of the sub-chunks (sub is whole tiles, so
            # their padded rows never overlap the next one's)
            for j in prange(n_sub, schedule="static"):
                off = j * sub
                n = min(sub, m - off)
                P = _padded(n)
                _load_chunk(X, base + off, n, P, ld, contiguous, xt + off)
                if p.weights != NULL:
                    _clear_weightless(xt + off, p.weights + base + off, n, ld, D)
                for k in range(K):
                    _full_sqnorm_blas(p, k, xt + off, P, ld, y, lp + k * ld + off)
                    lc = <floating> p.log_const[k]
                    for i in range(P):
                        lp[k * ld + off + i] = lc - <floating> 0.5 * lp[k * ld + off + i]
                ll = _normalize_chunk(lp + off, n, P, ld, K, row_ll + off, row_s + off,
                                      False)
                if p.weights != NULL:
                    ll = _weigh_rows(row_s + off, row_ll + off, p.weights + base + off, n)
                sh.loglik[t * 8] += ll
                _scale_resp(lp + off, row_s + off, P, ld, K)
            # the components' statistics over the super-chunk
            for k in prange(K, schedule="static"):
                _full_component_blas(p, k, xt, m, _padded(m), ld, lp + k * ld, y, sr,
                                     gram, st)
        fe_restore_fp_state(fp_state)


# --------------------------------------------------------------------------
# Kernels called from Python.

def em_pass(
    const floating[:, :] X,             # IN (N, D), any strides
    const floating[:, ::1] loc,         # IN (K, D)
    const floating[::1] prec,           # IN flat precision Cholesky
    const floating[::1] center,         # IN (D,) tied; ignored otherwise
    const double[::1] log_const,        # IN (K,)
    const floating[:, ::1] shift,       # IN (K, D) statistics shift c_k
    int cov_type,
    Py_ssize_t chunk_size,
    int n_threads,
    double[::1] stats,                  # OUT (stats_size,)
    bint blas=False,
    const double[::1] weights=None,     # IN (N,) the rows' weights, or None (all 1)
):
    """One fused E-step + statistics pass over X with ``n_threads`` threads.

    Each thread sums the statistics of the chunks it processed (chunk by
    chunk, for accuracy); the threads' sums are then added in thread order,
    so the result depends on the chunking and the thread count, not on
    timing. Only the lower triangles of s2 are summed; the upper ones are
    filled from them at the end. ``blas``: full and tied covariance through
    BLAS (the large-D path), with BLAS capped at one thread by the caller.
    ``weights``: each row's responsibilities are multiplied by its weight,
    and stats[0] is the weighted sum of the log-likelihoods; rows of
    weight 0 are read as zeros (they may hold NaN).
    """
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = loc.shape[0]
    cdef Py_ssize_t S = stats.shape[0], S8 = _round_up(S, 8)
    cdef const _CovType* ct = _cov_type(cov_type)
    cdef Py_ssize_t t, s
    cdef const double* row_weights = NULL
    cdef _Params p
    cdef _Workspace ws

    _check_args(cov_type, K, D, prec.shape[0], chunk_size, n_threads)
    if S != stats_size(cov_type, K, D):
        raise ValueError(f"fastem: stats has {S} values, expected "
                         f"{stats_size(cov_type, K, D)}")
    if weights is not None and weights.shape[0] != N:
        raise ValueError(f"fastem: {weights.shape[0]} weights for {N} rows")
    stats[:] = 0.0
    if N == 0:
        return
    if weights is not None:
        row_weights = &weights[0]
    if blas and cov_type == FULL and K >= n_threads and n_threads > 1:
        _em_pass_shared(X, loc, prec, center, log_const, shift, chunk_size, n_threads,
                        stats, row_weights)
        return
    _prepare(&p, &ws, X, loc, prec, center, log_const, &shift[0, 0], cov_type,
             chunk_size, n_threads, S, blas)
    p.weights = row_weights
    with nogil:
        _run_chunks(X, &p, ct, chunk_size, &ws, S, NULL)
        # OpenMP may start fewer threads than asked for; those that ran
        # and got no chunk left zeros
        for t in range(n_threads):
            if ws.threads[t].ran:
                for s in range(S):
                    stats[s] += ws.stats[t * S8 + s]
        ct.finish(&stats[1 + K + K * D], K, D)
        _workspace_free(&ws)


cdef int _em_pass_shared(
    const floating[:, :] X, const floating[:, ::1] loc, const floating[::1] prec,
    const floating[::1] center, const double[::1] log_const,
    const floating[:, ::1] shift, Py_ssize_t chunk_size, int n_threads,
    double[::1] stats, const double* weights,
) except -1:
    """em_pass for full covariance through BLAS, by _full_em_shared: the
    statistics depend on the chunking and the thread count, not on timing."""
    cdef Py_ssize_t D = X.shape[1], K = loc.shape[0], t
    cdef Py_ssize_t sub = _padded(chunk_size)
    cdef _Params p
    cdef _Shared sh
    _prepare_params(&p, D, K, loc, prec, center, log_const, &shift[0, 0], True)
    p.weights = weights
    # the super-chunk's row stride, one spare cache line per row
    p.ld = sub * n_threads + 64 // sizeof(floating)
    if _shared_new(&sh, n_threads, D, K, p.ld, sizeof(floating)) != 0:
        raise MemoryError("fastem: cannot allocate the buffers of "
                          f"{n_threads} threads for chunks of {chunk_size} rows; "
                          "use a smaller chunk_size")
    with nogil:
        _full_em_shared(X, &p, sub, n_threads, &sh, &stats[0])
        for t in range(n_threads):
            stats[0] += sh.loglik[t * 8]
        _full_finish(&stats[1 + K + K * D], K, D)
        _shared_free(&sh)
    return 0


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
    bint blas=False,
):
    """Per-row scores in one chunked parallel pass; fills the non-empty outputs."""
    cdef Py_ssize_t N = X.shape[0]
    cdef const _CovType* ct = _cov_type(cov_type)
    cdef _Params p
    cdef _Workspace ws
    cdef _Scores out

    _check_args(cov_type, loc.shape[0], X.shape[1], prec.shape[0], chunk_size, n_threads)
    if N == 0:
        return
    out.ll = &out_ll[0] if out_ll.shape[0] > 0 else NULL
    out.resp = &out_resp[0, 0] if out_resp.shape[0] > 0 else NULL
    out.labels = &out_labels[0] if out_labels.shape[0] > 0 else NULL
    _prepare(&p, &ws, X, loc, prec, center, log_const, NULL, cov_type, chunk_size,
             n_threads, 0, blas)
    with nogil:
        _run_chunks(X, &p, ct, chunk_size, &ws, 0, &out)
        _workspace_free(&ws)


def exp_log(const floating[::1] x, floating[::1] out_exp, floating[::1] out_log):
    """The kernels' vectorised exp and log, elementwise (for testing them)."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out_exp[i] = _exp(x[i])
            out_log[i] = _log(x[i])

"""Fused EM kernels: one pass of row chunks -> log-responsibilities -> float64
sufficient statistics, and the matching scoring pass.

Parameters of component k (see DESIGN.md): mean mu_k and the upper-triangular
precision Cholesky factor U_k (precision = U_k U_k^T), with

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
operation on Intel CPUs (15-25 % of the full-covariance pass there).

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
from libc.math cimport log
from libc.string cimport memcpy, memset

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
    void fe_diag_sqdist_d(const double* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
                          Py_ssize_t K, const double* c, const double* p, double* q)
    void fe_diag_sqdist_f(const float* xt, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D,
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


def stats_size(int cov_type, Py_ssize_t n_components, Py_ssize_t n_features):
    """Length of the flat statistics vector of one thread (see module doc)."""
    cdef Py_ssize_t K = n_components, D = n_features
    cdef Py_ssize_t s2 = {FULL: K * D * D, TIED: D * D, DIAG: K * D,
                          SPHERICAL: K}[cov_type]
    return 1 + K + K * D + s2


def _check_prec(int cov_type, Py_ssize_t K, Py_ssize_t D, Py_ssize_t size):
    cdef Py_ssize_t expected = {FULL: K * D * FE_TRI_STRIDE(D), TIED: D * D,
                                DIAG: K * D, SPHERICAL: K}[cov_type]
    if size != expected:
        raise ValueError(f"fastem: prec has {size} values, expected {expected} "
                         f"for covariance type code {cov_type}, K={K}, D={D}")


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
        # a column is the rows themselves (a fifth of the 1-D pass when
        # copied element by element)
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


cdef void _logprob_chunk(
    const floating* xt,         # IN (D, ld) chunk, feature-major
    Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D, Py_ssize_t K,
    const floating* loc,        # IN (K, D)
    const floating* prec,       # IN flat precision Cholesky
    const floating* center,     # IN (D,) tied only
    const double* log_const,    # IN (K,)
    int cov_type,
    floating* dt,               # scratch (D, ld), tied only
    floating* zt,               # scratch (D, ld), tied only
    floating* lp,               # OUT (K, ld) weighted log-probabilities
) noexcept nogil:
    cdef Py_ssize_t k, n, ldu = FE_TRI_STRIDE(D)
    cdef floating lc, p
    cdef floating* q

    if cov_type == FULL:
        for k in range(K):
            q = lp + k * ld
            _tri_sqnorm(xt, P, ld, D, loc + k * D, prec + k * D * ldu, ldu, q)
            lc = <floating> log_const[k]
            for n in range(P):
                q[n] = lc - <floating> 0.5 * q[n]
        return
    cdef const floating* scale = prec if cov_type == DIAG else NULL
    if cov_type == TIED:
        # z = (x - c) U once per row, then |z - loc_k|^2 per component
        _sub(xt, P, ld, D, center, dt)
        _tri_product(dt, P, ld, D, prec, zt)
        xt = zt
    # all components in register blocks (fastem_simd.h)
    if floating is double:
        fe_diag_sqdist_d(xt, P, ld, D, K, loc, scale, lp)
    else:
        fe_diag_sqdist_f(xt, P, ld, D, K, loc, scale, lp)
    for k in range(K):
        q = lp + k * ld
        lc = <floating> log_const[k]
        p = <floating> 0.5
        if cov_type == SPHERICAL:
            p = p * prec[k] * prec[k]
        for n in range(P):
            q[n] = lc - p * q[n]


cdef double _normalize_chunk(
    floating* lp,               # INOUT (K, ld): log-probabilities -> responsibilities
    Py_ssize_t n_rows, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t K,
    floating* m,                # scratch (P,); OUT row log-likelihoods
    floating* s,                # OUT (P,) 1 / sum_k exp(lp_k - m), 0 on padding
    bint scale,                 # False: leave lp as exp(lp - m), unscaled
) noexcept nogil:
    """Log-sum-exp over components for every row; padding rows get zero
    responsibility (r = lp * s when not scaled). Returns the sum of the real
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
        for k in range(K):
            lk = lp + k * ld
            for n in range(P):
                lk[n] *= s[n]
    for n in range(n_rows):
        total += m[n]
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
    # differences once per component instead, to save those subtractions,
    # made W1 20 % slower on the AMD machine.)
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


cdef inline bint _small_full(int cov_type, Py_ssize_t D) noexcept nogil:
    return cov_type == FULL and D <= 2


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


cdef void _stats_chunk(
    const floating* xt,         # IN (D, ld) chunk, feature-major
    Py_ssize_t n_rows, Py_ssize_t P, Py_ssize_t ld, Py_ssize_t D, Py_ssize_t K,
    const floating* resp,       # IN (K, ld), zero on padding rows; unscaled
                                # exps when _small_full(cov_type, D)
    const floating* inv_s,      # IN (P,) their scale (_normalize_chunk)
    const floating* shift,      # IN (K, D) c_k
    int cov_type,
    floating* dt,               # scratch (D, ld): differences (not full); IN
                                # for tied: x - c from _logprob_chunk
    floating* wt,               # scratch (D, ld)
    double* st,                 # INOUT flat statistics (see module doc), from [1]
) noexcept nogil:
    cdef Py_ssize_t i, k, n
    cdef const floating* r
    cdef double* nk = st + 1
    cdef double* s1 = st + 1 + K
    cdef double* s2 = st + 1 + K + K * D

    if _small_full(cov_type, D):
        _stats_small_full(xt, P, ld, D, K, resp, inv_s, shift, nk, s1, s2)
        return
    if cov_type == FULL:
        for k in range(K):
            r = resp + k * ld
            nk[k] += _sum(r, P)
            # w = r (x - c_k) in one sweep, summing w as we go
            # (fastem_simd.h); the scatter forms x - c_k itself
            for i in range(D):
                if floating is double:
                    s1[k * D + i] += fe_wdiff_d(r, xt + i * ld, shift[k * D + i], P,
                                                wt + i * ld)
                else:
                    s1[k * D + i] += fe_wdiff_f(r, xt + i * ld, shift[k * D + i], P,
                                                wt + i * ld)
            _gram_lower(wt, xt, shift + k * D, P, ld, D, s2 + k * D * D)
        return
    # tied, diag, spherical: one shift c for all components, so the
    # differences (and their squares) are formed once per chunk, and the
    # sums over rows weighted by each component's responsibilities are a
    # product of the (K, P) responsibilities with them. Tied: dt holds them
    # already, from _logprob_chunk (its center is this shift's row).
    if cov_type != TIED:
        _sub(xt, P, ld, D, shift, dt)
    for k in range(K):
        nk[k] += _sum(resp + k * ld, P)
    _cross(resp, K, dt, D, P, ld, s1, D)
    if cov_type == TIED:
        # sum_k r_k = 1, so the shared scatter ignores responsibilities;
        # padding rows are zeroed so they add nothing
        for i in range(D):
            for n in range(n_rows, P):
                dt[i * ld + n] = 0
        _gram_lower(dt, dt, NULL, P, ld, D, s2)
    elif cov_type == DIAG:
        for i in range(D):
            for n in range(P):
                wt[i * ld + n] = dt[i * ld + n] * dt[i * ld + n]
        _cross(resp, K, wt, D, P, ld, s2, D)
    else:
        for n in range(P):
            wt[n] = 0
        for i in range(D):
            for n in range(P):
                wt[n] += dt[i * ld + n] * dt[i * ld + n]
        _cross(resp, K, wt, 1, P, ld, s2, 1)


cdef inline floating* _workspace(Py_ssize_t D, Py_ssize_t K, Py_ssize_t ld,
                                 const floating* like) noexcept nogil:
    """One thread's buffers in one block: the chunk, its differences and the
    tied products (D x ld each), log-probabilities (K x ld), two row vectors.
    ``like`` only selects the dtype."""
    return <floating*> malloc((3 * D + K + 2) * ld * sizeof(floating))


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
):
    """One fused E-step + statistics pass over X with ``n_threads`` threads.

    Each thread sums the statistics of the chunks it processed (chunk by
    chunk, for accuracy); the threads' sums are then added in thread order,
    so the result depends on the chunking and the thread count, not on
    timing. Only the lower triangles of s2 are summed; the upper ones are
    filled from them at the end.
    """
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = loc.shape[0]
    cdef Py_ssize_t S = stats.shape[0]
    cdef Py_ssize_t n_chunks = (N + chunk_size - 1) // chunk_size
    cdef Py_ssize_t P = _padded(chunk_size)
    # one spare cache line per row keeps rows out of the same L1 sets
    cdef Py_ssize_t ld = P + 64 // sizeof(floating)
    cdef bint contiguous = _is_c_contiguous(X)
    cdef bint small = _small_full(cov_type, D)
    cdef Py_ssize_t ch, s, start, n
    cdef floating* xt
    cdef floating* dt
    cdef floating* zt
    cdef floating* lp
    cdef floating* row_ll
    cdef floating* row_s
    cdef double* acc
    cdef double* local
    cdef double* per_thread
    cdef int[1] failed
    cdef unsigned int fp_state

    _check_prec(cov_type, K, D, prec.shape[0])
    if S != stats_size(cov_type, K, D):
        raise ValueError(f"fastem: stats has {S} values, expected "
                         f"{stats_size(cov_type, K, D)}")
    if n_threads < 1:
        raise ValueError(f"fastem: n_threads must be >= 1, got {n_threads}")
    stats[:] = 0.0
    if N == 0:
        return
    # one row of sums per thread; a thread that gets no chunk leaves zeros
    per_thread = <double*> calloc(n_threads * S, sizeof(double))
    if per_thread == NULL:
        raise MemoryError("fastem: cannot allocate the per-thread statistics")
    failed[0] = 0
    with nogil, parallel(num_threads=n_threads):
        fp_state = fe_flush_denormals()
        xt = _workspace(D, K, ld, &loc[0, 0])
        # this thread's sums go straight to its row of per_thread
        acc = per_thread + threadid() * S
        local = <double*> malloc(S * sizeof(double))
        if xt == NULL or local == NULL:
            failed[0] = 1
        dt = xt + D * ld
        zt = dt + D * ld
        lp = zt + D * ld
        row_ll = lp + K * ld
        row_s = row_ll + ld
        for ch in prange(n_chunks, schedule="static"):
            if failed[0]:
                continue
            start = ch * chunk_size
            n = min(chunk_size, N - start)
            _load_chunk(X, start, n, P, ld, contiguous, xt)
            _logprob_chunk(xt, P, ld, D, K, &loc[0, 0], &prec[0], &center[0],
                           &log_const[0], cov_type, dt, zt, lp)
            memset(local, 0, S * sizeof(double))
            # the small full-covariance statistics scale the exps as they
            # read them, which saves K sweeps that store
            local[0] = _normalize_chunk(lp, n, P, ld, K, row_ll, row_s, not small)
            _stats_chunk(xt, n, P, ld, D, K, lp, row_s, &shift[0, 0], cov_type,
                         dt, zt, local)
            for s in range(S):
                acc[s] += local[s]
        free(xt)
        free(local)
        fe_restore_fp_state(fp_state)
    if not failed[0]:
        for ch in range(n_threads):
            for s in range(S):
                stats[s] += per_thread[ch * S + s]
        if cov_type == FULL:
            _mirror_lower(&stats[1 + K + K * D], K, D)
        elif cov_type == TIED:
            _mirror_lower(&stats[1 + K + K * D], 1, D)
    free(per_thread)
    if failed[0]:
        raise MemoryError("fastem: cannot allocate the per-thread EM buffers; "
                          "use a smaller chunk_size")


cdef void _mirror_lower(double* a, Py_ssize_t n, Py_ssize_t D) noexcept nogil:
    """Upper triangles of n (D, D) matrices from their lower ones."""
    cdef Py_ssize_t k, i, j
    for k in range(n):
        for i in range(D):
            for j in range(i + 1, D):
                a[k * D * D + i * D + j] = a[k * D * D + j * D + i]


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
    cdef Py_ssize_t P = _padded(chunk_size)
    # one spare cache line per row keeps rows out of the same L1 sets
    cdef Py_ssize_t ld = P + 64 // sizeof(floating)
    cdef bint want_ll = out_ll.shape[0] > 0
    cdef bint want_resp = out_resp.shape[0] > 0
    cdef bint want_labels = out_labels.shape[0] > 0
    cdef bint contiguous = _is_c_contiguous(X)
    cdef Py_ssize_t ch, i, k, start, n, best
    cdef floating* xt
    cdef floating* dt
    cdef floating* zt
    cdef floating* lp
    cdef floating* row_ll
    cdef floating* row_s
    cdef int[1] failed
    cdef unsigned int fp_state

    _check_prec(cov_type, K, D, prec.shape[0])
    if N == 0:
        return
    failed[0] = 0
    with nogil, parallel(num_threads=n_threads):
        fp_state = fe_flush_denormals()
        xt = _workspace(D, K, ld, &loc[0, 0])
        if xt == NULL:
            failed[0] = 1
        dt = xt + D * ld
        zt = dt + D * ld
        lp = zt + D * ld
        row_ll = lp + K * ld
        row_s = row_ll + ld
        for ch in prange(n_chunks, schedule="static"):
            if failed[0]:
                continue
            start = ch * chunk_size
            n = min(chunk_size, N - start)
            _load_chunk(X, start, n, P, ld, contiguous, xt)
            _logprob_chunk(xt, P, ld, D, K, &loc[0, 0], &prec[0], &center[0],
                           &log_const[0], cov_type, dt, zt, lp)
            if want_labels:
                # argmax of the weighted log-probabilities, as scikit-learn
                for i in range(n):
                    best = 0
                    for k in range(1, K):
                        if lp[k * ld + i] > lp[best * ld + i]:
                            best = k
                    out_labels[start + i] = best
            if want_ll or want_resp:
                _normalize_chunk(lp, n, P, ld, K, row_ll, row_s, True)
            if want_ll:
                for i in range(n):
                    out_ll[start + i] = row_ll[i]
            if want_resp:
                for i in range(n):
                    for k in range(K):
                        out_resp[start + i, k] = lp[k * ld + i]
        free(xt)
        fe_restore_fp_state(fp_state)
    if failed[0]:
        raise MemoryError("fastem: cannot allocate the per-thread scoring "
                          "buffers; use a smaller chunk_size")


def exp_log(const floating[::1] x, floating[::1] out_exp, floating[::1] out_log):
    """The kernels' vectorised exp and log, elementwise (for testing them)."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out_exp[i] = _exp(x[i])
            out_log[i] = _log(x[i])

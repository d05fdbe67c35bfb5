"""Lloyd's k-means steps in scikit-learn's arithmetic, so that
init_params="kmeans" labels every row as scikit-learn's KMeans does, ties
between equally near centers included.

scikit-learn's KMeans works on the data minus its mean, in the data's float
type, in chunks of 256 rows (the last one shorter). For a chunk it sets
d = |c|^2 and adds -2 x.c by one GEMM of SciPy's BLAS; the nearest center
is the first of the smallest d. A cluster's sum adds its rows one after
another, in row order, within each thread's share of the chunks; the
shares are then added in thread order. Here the chunks are the same rows
and the GEMM is the same call, so every d is the same number; the sums are
made in the same order.

This module is built without -fassociative-math and with -ffp-contract=off
(setup.py): every sum is made in the order written.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from scipy.linalg.cython_blas cimport dgemm, sgemm

ctypedef unsigned long long u64

# scikit-learn's CHUNK_SIZE: the rows of one GEMM
DEF CHUNK = 256
# rows labelled, then added, at a time: whole chunks of about 1 MB, so that
# the sums read them from cache
cdef Py_ssize_t _SUB_BLOCK_BYTES = 1 << 20

# tests set this to check that a failed allocation raises MemoryError
cdef bint _refuse_allocations = False


def _set_refuse_allocations(bint refuse):
    """Make the kernels' allocations fail (for testing their error path)."""
    global _refuse_allocations
    _refuse_allocations = refuse


cdef inline void* _alloc(size_t size) noexcept nogil:
    return NULL if _refuse_allocations else malloc(size)


cdef int _label_chunk(const floating[:, :] X, Py_ssize_t lo, Py_ssize_t hi,
                      const floating[::1] mean, const floating[:, ::1] centers,
                      const floating[::1] sq_norms, Py_ssize_t* labels,
                      floating* xc, floating* dist) noexcept nogil:
    """labels[i - lo] for rows lo..hi (one chunk): centered rows into ``xc``,
    |c|^2 - 2 x.c into ``dist`` by scikit-learn's GEMM, first smallest."""
    cdef int m = <int> (hi - lo), n = <int> centers.shape[0], d = <int> X.shape[1]
    cdef Py_ssize_t i, j, k, r, best
    cdef floating best_dist, one = 1, minus_two = -2
    cdef char trans = b"t", no_trans = b"n"
    for r in range(m):
        i = lo + r
        for j in range(d):
            xc[r * d + j] = X[i, j] - mean[j]
        for k in range(n):
            dist[r * n + k] = sq_norms[k]
    # row-major (m, n) = (m, d) x (n, d)^T, as column-major n x m
    if floating is float:
        sgemm(&trans, &no_trans, &n, &m, &d, &minus_two, <float*> &centers[0, 0], &d,
              xc, &d, &one, dist, &n)
    else:
        dgemm(&trans, &no_trans, &n, &m, &d, &minus_two, <double*> &centers[0, 0], &d,
              xc, &d, &one, dist, &n)
    for r in range(m):
        best = 0
        best_dist = dist[r * n]
        for k in range(1, n):
            if dist[r * n + k] < best_dist:
                best_dist = dist[r * n + k]
                best = k
        labels[r] = best
    return 0


cdef int _label_rows(const floating[:, :] X, Py_ssize_t first_row, Py_ssize_t lo,
                     Py_ssize_t hi, const floating[::1] mean,
                     const floating[:, ::1] centers, const floating[::1] sq_norms,
                     Py_ssize_t* labels, floating* centered, int n_threads) noexcept nogil:
    """labels[i - lo] for rows lo..hi of X (row first_row + i of the data),
    chunk by chunk of the data's 256-row chunks, in parallel; 0, or -1 when
    scratch could not be allocated. ``centered``: NULL, or room for the
    (hi - lo, D) centered rows, which are then left there."""
    cdef Py_ssize_t D = X.shape[1], K = centers.shape[0]
    cdef Py_ssize_t c, c0 = (first_row + lo) // CHUNK, c1 = (first_row + hi - 1) // CHUNK
    cdef Py_ssize_t a, b, i
    cdef floating* xc = NULL
    cdef floating* dist = NULL
    for i in range(hi - lo):
        labels[i] = -1
    with parallel(num_threads=n_threads):
        xc = <floating*> _alloc(CHUNK * D * sizeof(floating))
        dist = <floating*> _alloc(CHUNK * K * sizeof(floating))
        if xc != NULL and dist != NULL:
            for c in prange(c0, c1 + 1, schedule="static"):
                a = max(c * CHUNK - first_row, lo)
                b = min((c + 1) * CHUNK - first_row, hi)
                _label_chunk(X, a, b, mean, centers, sq_norms, labels + (a - lo),
                             xc if centered == NULL else centered + (a - lo) * D, dist)
        free(xc)
        free(dist)
    # a thread without scratch left its chunks unlabelled
    for i in range(hi - lo):
        if labels[i] < 0:
            return -1
    return 0


cdef inline Py_ssize_t _sub_block(Py_ssize_t D, Py_ssize_t itemsize) noexcept nogil:
    return max(1, _SUB_BLOCK_BYTES // max(1, D * itemsize) // CHUNK) * CHUNK


def nearest(
    const floating[:, :] X,             # IN (N, D) rows first_row .. first_row + N
    Py_ssize_t first_row,
    const floating[::1] mean,           # IN (D,) the data's mean
    const floating[:, ::1] centers,     # IN (K, D) centers about the mean
    const floating[::1] sq_norms,       # IN (K,) their squared norms (scikit-learn's)
    Py_ssize_t[::1] labels,             # OUT (N,)
    int n_threads,
):
    """labels[i] = the nearest center to row i, in scikit-learn's arithmetic."""
    if (labels.shape[0] != X.shape[0] or mean.shape[0] != X.shape[1]
            or centers.shape[1] != X.shape[1] or sq_norms.shape[0] != centers.shape[0]):
        raise ValueError("fastem: nearest() got arrays of mismatched shapes")
    if X.shape[0] == 0:
        return
    if _label_rows(X, first_row, 0, X.shape[0], mean, centers, sq_norms, &labels[0],
                   NULL, n_threads) < 0:
        raise MemoryError("fastem: cannot allocate the k-means scratch")


cdef inline void _add_row(floating* acc, const floating* x, Py_ssize_t xs,
                          const floating* mean, floating w, bint weighted,
                          floating* squares, Py_ssize_t n) noexcept nogil:
    """acc[j] += w (x[j] - mean[j]) for j < n, the product rounded before
    the sum as scikit-learn makes it (and squares[j] += w (x - m)^2 unless
    NULL); ``xs``: the stride of x in elements."""
    cdef Py_ssize_t j
    cdef floating d
    if xs == 1 and not weighted:
        for j in range(n):
            acc[j] = acc[j] + (x[j] - mean[j])
    else:
        for j in range(n):
            d = x[j * xs] - mean[j]
            acc[j] = acc[j] + (d * w if weighted else d)
    if squares != NULL:
        for j in range(n):
            d = x[j * xs] - mean[j]
            d = d * d
            squares[j] = squares[j] + (w * d if weighted else d)


cdef inline u64 _mix(u64 z) noexcept nogil:
    # SplitMix64's finaliser: distinct (row, label) pairs give unrelated words
    z = (z ^ (z >> 30)) * <u64> 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <u64> 0x94D049BB133111EB
    return z ^ (z >> 31)


cdef int _fold_by_shares(const floating[:, :] X, Py_ssize_t first_row,
                         const floating[::1] mean, const floating[:, ::1] centers,
                         const floating[::1] sq_norms, const Py_ssize_t[::1] bounds,
                         Py_ssize_t p_lo, Py_ssize_t p_hi,
                         floating[:, :, ::1] sums, floating[:, ::1] counts,
                         const floating[::1] weights, u64* label_hash,
                         int n_threads) noexcept nogil:
    """:func:`lloyd_fold` of rows spanning shares p_lo..p_hi, as scikit-learn
    runs it: each thread takes whole shares and labels and adds their rows
    chunk by chunk, while the chunk is in its cache. 0, or -1 when scratch
    could not be allocated."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = centers.shape[0]
    cdef Py_ssize_t q, p, lo, hi, c, a, b, r, j, k, row
    cdef bint weighted = weights is not None
    cdef floating* xc = NULL
    cdef floating* dist = NULL
    cdef floating* cnt = NULL
    cdef floating* acc
    cdef floating wi
    cdef Py_ssize_t* lab = NULL
    cdef int failed[1]
    cdef u64 h = 0
    failed[0] = 0
    with parallel(num_threads=n_threads):
        xc = <floating*> _alloc(CHUNK * D * sizeof(floating))
        dist = <floating*> _alloc(CHUNK * K * sizeof(floating))
        cnt = <floating*> _alloc(K * sizeof(floating))
        lab = <Py_ssize_t*> _alloc(CHUNK * sizeof(Py_ssize_t))
        if xc == NULL or dist == NULL or cnt == NULL or lab == NULL:
            failed[0] = 1
        else:
            for q in prange(p_hi - p_lo + 1, schedule="static"):
                p = p_lo + q
                lo = max(bounds[p], first_row) - first_row
                hi = min(bounds[p + 1], first_row + N) - first_row
                for k in range(K):
                    cnt[k] = counts[p, k]  # one thread's counts: no shared line
                for c in range((first_row + lo) // CHUNK, (first_row + hi - 1) // CHUNK + 1):
                    a = max(c * CHUNK - first_row, lo)
                    b = min((c + 1) * CHUNK - first_row, hi)
                    _label_chunk(X, a, b, mean, centers, sq_norms, lab, xc, dist)
                    for r in range(b - a):
                        k = lab[r]
                        row = first_row + a + r
                        wi = weights[a + r] if weighted else 1
                        cnt[k] = cnt[k] + wi
                        h += _mix(<u64> row * <u64> K + <u64> k + <u64> 0x9E3779B97F4A7C15)
                        acc = &sums[p, k, 0]
                        if weighted:
                            for j in range(D):
                                # w (x - m) rounded, then added, as scikit-learn does
                                wi = xc[r * D + j] * weights[a + r]
                                acc[j] = acc[j] + wi
                        else:
                            for j in range(D):
                                acc[j] = acc[j] + xc[r * D + j]
                for k in range(K):
                    counts[p, k] = cnt[k]
        free(xc)
        free(dist)
        free(cnt)
        free(lab)
    label_hash[0] = label_hash[0] + h
    return -1 if failed[0] else 0


cdef void _copy_columns(floating[:, :, ::1] sums, floating[::1] squares, floating* local,
                        Py_ssize_t n_parts, Py_ssize_t width, Py_ssize_t stride,
                        bint to_local) noexcept:
    """Copy part t's columns of the sums (then of the squares, if any) to or
    from its block ``local + t * stride``, width columns to a cluster."""
    cdef Py_ssize_t P = sums.shape[0], K = sums.shape[1], D = sums.shape[2]
    cdef Py_ssize_t t, p, k, j, j0, j1
    cdef floating* mine
    cdef floating* theirs
    for t in range(n_parts):
        j0 = t * D // n_parts
        j1 = (t + 1) * D // n_parts
        mine = local + t * stride
        for p in range(P + 1):
            for k in range(K if p < P else 1):
                if p == P and squares.shape[0] == 0:
                    continue
                theirs = &sums[p, k, 0] if p < P else &squares[0]
                for j in range(j0, j1):
                    if to_local:
                        mine[(p * K + k) * width + j - j0] = theirs[j]
                    else:
                        theirs[j] = mine[(p * K + k) * width + j - j0]


def lloyd_fold(
    const floating[:, :] X,             # IN (N, D) rows first_row .. first_row + N
    Py_ssize_t first_row,
    const floating[::1] mean,           # IN (D,)
    const floating[:, ::1] centers,     # IN (K, D)
    const floating[::1] sq_norms,       # IN (K,)
    const Py_ssize_t[::1] bounds,       # IN (P + 1,) the first row of each share, then n
    floating[:, :, ::1] sums,           # INOUT (P, K, D) per share: sum of w (x - mean)
    floating[:, ::1] counts,            # INOUT (P, K) per share: sum of w
    floating[::1] squares,              # INOUT (D,) sum of w (x - mean)^2, or empty
    u64[::1] label_hash,                # INOUT (1,) sum of a hash of (row, label)
    const floating[::1] weights,        # IN (N,) the rows' weights, or None (all 1)
    int n_threads,
):
    """One Lloyd pass over a block of rows, added to running sums.

    Each row goes to its nearest center (as :func:`nearest`); its
    (weighted) deviation from the mean is added to its cluster's sum in its
    share of the rows, after the share's earlier rows; ``squares`` (when
    not empty) gets the (weighted) squared deviations, in row order. The
    caller gives the blocks in row order.

    Rows of several shares are run share by share in parallel; rows of one
    share (or the squares' pass) are labelled in parallel by chunks, then
    added in parallel by columns.
    """
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = centers.shape[0]
    cdef Py_ssize_t P = bounds.shape[0] - 1
    cdef bint weighted = weights is not None
    cdef bint want_squares = squares.shape[0] > 0
    cdef Py_ssize_t sub = _sub_block(D, sizeof(floating))
    cdef Py_ssize_t n_parts = max(1, min(n_threads, D))
    # each thread's columns j0..j1 of the sums, then of the squares, in a
    # block of its own cache lines: threads adding to neighbouring columns
    # of one cluster would otherwise share lines
    cdef Py_ssize_t width = (D + n_parts - 1) // n_parts
    cdef Py_ssize_t line = 64 // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t stride = ((P * K + 1) * width + line - 1) // line * line
    cdef Py_ssize_t lo, hi, i, j0, j1, k, p, row, t
    cdef Py_ssize_t p_lo = 0, p_hi = P - 1
    cdef Py_ssize_t xs = X.strides[1] // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t* labels = NULL
    cdef void* block = NULL
    cdef floating* local
    cdef floating* mine
    cdef floating wi
    cdef u64 h = 0

    if (sums.shape[0] != P or sums.shape[1] != K or sums.shape[2] != D
            or counts.shape[0] != P or counts.shape[1] != K
            or mean.shape[0] != D or centers.shape[1] != D or sq_norms.shape[0] != K
            or (want_squares and squares.shape[0] != D)
            or (weighted and weights.shape[0] != N)):
        raise ValueError("fastem: lloyd_fold() got arrays of mismatched shapes")
    if N == 0:
        return
    if first_row < bounds[0] or first_row + N > bounds[P]:
        raise ValueError("fastem: lloyd_fold() got rows outside the shares")
    while bounds[p_lo + 1] <= first_row:
        p_lo += 1
    while bounds[p_hi] >= first_row + N:
        p_hi -= 1
    if p_hi > p_lo and n_threads > 1 and not want_squares:
        with nogil:
            if _fold_by_shares(X, first_row, mean, centers, sq_norms, bounds, p_lo, p_hi,
                               sums, counts, weights, &label_hash[0],
                               <int> min(n_threads, p_hi - p_lo + 1)) < 0:
                with gil:
                    raise MemoryError("fastem: cannot allocate the k-means scratch")
        return
    labels = <Py_ssize_t*> _alloc(min(sub, N) * sizeof(Py_ssize_t))
    block = _alloc(n_parts * stride * sizeof(floating) + 64)
    if labels == NULL or block == NULL:
        free(labels)
        free(block)
        raise MemoryError("fastem: cannot allocate the k-means sums")
    local = <floating*> ((<size_t> block + 63) // 64 * 64)
    _copy_columns(sums, squares, local, n_parts, width, stride, True)
    try:
        # sub-blocks end where the data's chunks do
        lo = 0
        while lo < N:
            hi = min(N, (first_row + lo) // sub * sub + sub - first_row)
            with nogil:
                if _label_rows(X, first_row, lo, hi, mean, centers, sq_norms, labels,
                               NULL, n_threads) < 0:
                    with gil:
                        raise MemoryError("fastem: cannot allocate the k-means scratch")
                # each thread adds its columns of every row, in row order; the
                # first also counts the rows and hashes their labels
                for t in prange(n_parts, schedule="static", num_threads=n_parts):
                    j0 = t * D // n_parts
                    j1 = (t + 1) * D // n_parts
                    mine = local + t * stride
                    p = 0
                    for i in range(lo, hi):
                        row = first_row + i
                        while row >= bounds[p + 1]:
                            p = p + 1
                        k = labels[i - lo]
                        wi = weights[i] if weighted else 1
                        if t == 0:
                            counts[p, k] = counts[p, k] + wi
                            h += _mix(<u64> row * <u64> K + <u64> k + <u64> 0x9E3779B97F4A7C15)
                        _add_row(mine + (p * K + k) * width, &X[i, j0], xs, &mean[j0], wi,
                                 weighted, mine + P * K * width if want_squares else NULL,
                                 j1 - j0)
            lo = hi
        _copy_columns(sums, squares, local, n_parts, width, stride, False)
    finally:
        free(labels)
        free(block)
    label_hash[0] = label_hash[0] + h


def column_sums(
    const floating[:, :] X,             # IN (N, D)
    floating[::1] sums,                 # INOUT (D,) sum of w x
    floating[::1] total_weight,         # INOUT (1,) sum of w
    const floating[::1] weights,        # IN (N,) the rows' weights, or None (all 1)
    int n_threads,
):
    """Add the block's (weighted) rows to ``sums`` one after another, in row
    order: NumPy's X.sum(axis=0) of a C-ordered X of two or more columns."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], i, j
    cdef bint weighted = weights is not None
    if sums.shape[0] != D or (weighted and weights.shape[0] != N):
        raise ValueError("fastem: column_sums() got arrays of mismatched shapes")
    with nogil:
        for j in prange(D, schedule="static", num_threads=n_threads):
            for i in range(N):
                sums[j] = sums[j] + (X[i, j] * weights[i] if weighted else X[i, j])
        for i in range(N):
            total_weight[0] = total_weight[0] + (weights[i] if weighted else 1)

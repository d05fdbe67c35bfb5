"""The kernels against the NumPy reference: covariance types x dtypes x memory
orders x edge sizes, and invariance to chunk size and thread count."""
import numpy as np
import pytest

from fastem._engine import Engine
from reference import m_step, random_params, responsibilities, suff_stats

COV_TYPES = ["full", "tied", "diag", "spherical"]
CHUNK = 64
# N < chunk; N a multiple of the chunk; N not a multiple of the chunk
SIZES = [5, 4 * CHUNK, 3 * CHUNK + 17]
TOL = {np.float64: dict(rtol=1e-10), np.float32: dict(rtol=2e-4)}


def make_case(covariance_type, dtype, order, n_samples, n_features=4,
              n_components=3, zero_weight=False, seed=0):
    rng = np.random.default_rng(seed)
    params = random_params(rng, covariance_type, n_components, n_features, zero_weight)
    X = rng.normal(scale=2.0, size=(n_samples, n_features))
    X = np.asarray(X, dtype=dtype, order=order)
    return X, params


def run_em_stats(X, params, covariance_type, chunk_size=CHUNK, n_threads=2, blas=None):
    weights, means, prec_chol = params
    engine = Engine(covariance_type, means.shape[0], X.shape[1], chunk_size, n_threads,
                    blas=blas)
    kp = engine.kernel_params(weights, means, prec_chol, X.dtype)
    return engine.em_stats(X, kp), kp


def reference_params(params, covariance_type, dtype):
    """The parameters as the kernel sees them (rounded to dtype)."""
    weights, means, prec_chol = params
    return (weights, means.astype(dtype).astype(np.float64),
            prec_chol.astype(dtype).astype(np.float64))


def assert_close(actual, expected, dtype, scale=None):
    scale = np.max(np.abs(expected)) if scale is None else scale
    rtol = TOL[dtype]["rtol"]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-300))


def assert_pass_matches_reference(X, params, covariance_type, dtype, second_moments=True,
                                  **engine_args):
    """Run the EM pass and check its statistics against the NumPy reference;
    returns them."""
    stats, kp = run_em_stats(X, params, covariance_type, **engine_args)
    ll, resp = responsibilities(X, *reference_params(params, covariance_type, dtype),
                                covariance_type)
    nk, s1, s2 = suff_stats(X, resp, kp.shift, covariance_type)
    assert_close(stats.log_likelihood, ll.sum(), dtype, scale=np.abs(ll).sum())
    assert_close(stats.nk, nk, dtype, scale=X.shape[0])
    assert_close(stats.s1, s1, dtype)
    if second_moments:
        # full and tied: the lower triangles are summed, the upper ones mirrored
        assert_close(stats.s2, s2, dtype)
    return stats


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n_samples", SIZES)
def test_em_pass_matches_reference(covariance_type, dtype, order, n_samples):
    X, params = make_case(covariance_type, dtype, order, n_samples)
    stats = assert_pass_matches_reference(X, params, covariance_type, dtype)
    assert stats.n_samples == n_samples


@pytest.mark.parametrize("n_features", [1, 2, 3, 7, 8, 9, 12, 16, 17])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_full_pass_matches_reference_across_register_block_edges(n_features, dtype):
    # the blocked loops work on 2, 4 or 8 output coordinates and 4 x 4
    # feature blocks: dimensions on and off those multiples (and 1 and 2
    # features have their own chunk copies)
    X, params = make_case("full", dtype, "C", 2 * CHUNK + 3, n_features=n_features,
                          seed=n_features)
    assert_pass_matches_reference(X, params, "full", dtype)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize(("n_samples", "n_features", "n_components", "n_threads"), [
    (5, 3, 3, 2),                   # fewer rows than one chunk
    (4 * CHUNK, 9, 3, 1),           # one thread
    (4 * CHUNK, 9, 3, 2),           # full: components split over the threads
    (7 * CHUNK + 17, 33, 3, 3),     # full: a partial last super-chunk
    (3 * CHUNK + 17, 12, 2, 3),     # full: fewer components than threads
])
def test_blas_path_matches_reference(covariance_type, dtype, order, n_samples, n_features,
                                     n_components, n_threads):
    # the large-D path (BLAS products) is chosen by shape; forced here on
    # small shapes that cover its drivers and its edges
    X, params = make_case(covariance_type, dtype, order, n_samples, n_features=n_features,
                          n_components=n_components, seed=n_features)
    stats = assert_pass_matches_reference(X, params, covariance_type, dtype, blas=True,
                                          n_threads=n_threads)
    assert stats.n_samples == n_samples
    small, _ = run_em_stats(X, params, covariance_type, n_threads=n_threads, blas=False)
    assert_close(stats.s2, small.s2, dtype)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blas_score_pass_matches_reference(covariance_type, dtype):
    X, params = make_case(covariance_type, dtype, "C", 3 * CHUNK + 17, n_features=20,
                          seed=3)
    weights, means, _ = params
    engine = Engine(covariance_type, means.shape[0], X.shape[1], CHUNK, 2, blas=True)
    kp = engine.kernel_params(*params, X.dtype)
    got = engine.score(X, kp, log_likelihood=True, resp=True, labels=True)
    ll, resp = responsibilities(X, *reference_params(params, covariance_type, dtype),
                                covariance_type)
    assert_close(got["log_likelihood"], ll, dtype, scale=np.abs(ll).max())
    assert_close(got["resp"], resp, dtype, scale=1.0)


def test_blas_path_is_chosen_by_shape_and_dtype():
    from fastem._engine import uses_blas
    assert not uses_blas("full", 64, np.float64)
    assert uses_blas("full", 1024, np.float64)
    assert uses_blas("tied", 1024, np.float32)
    assert not uses_blas("diag", 1024, np.float64)
    assert not uses_blas("spherical", 1024, np.float32)
    # many components move full covariance's crossover down, not tied's
    assert not uses_blas("full", 256, np.float64, n_components=8)
    assert uses_blas("full", 256, np.float64, n_components=32)
    assert not uses_blas("full", 128, np.float32, n_components=64)
    assert uses_blas("tied", 256, np.float64, n_components=32)


@pytest.mark.parametrize("covariance_type", ["tied", "diag", "spherical"])
@pytest.mark.parametrize("n_components", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_distance_blocks_over_components_match_reference(covariance_type, n_components,
                                                         dtype):
    # tied, diag and spherical distances are computed for 2 or 4 components
    # at a time, the rest one by one: counts on and off those multiples
    X, params = make_case(covariance_type, dtype, "C", 2 * CHUNK + 3, n_features=5,
                          n_components=n_components, seed=n_components)
    assert_pass_matches_reference(X, params, covariance_type, dtype, second_moments=False)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("n_features", [1, 2, 5])
@pytest.mark.parametrize("zero_weight", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_components_match_reference(covariance_type, n_features, zero_weight, dtype):
    # two components take one exp per row (the larger has exp(0) = 1), and
    # one or two full-covariance features sum their statistics in one sweep;
    # a zero weight gives the other component every row
    X, params = make_case(covariance_type, dtype, "C", 2 * CHUNK + 3,
                          n_features=n_features, n_components=2,
                          zero_weight=zero_weight, seed=n_features)
    stats = assert_pass_matches_reference(X, params, covariance_type, dtype)
    if zero_weight:
        assert np.count_nonzero(stats.nk == 0.0) == 1


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_second_moments_about_the_common_shift_stay_accurate_far_from_it(
        covariance_type):
    # diag and spherical statistics are taken about one shift near the mean
    # of the means; components 40 standard deviations either side of it must
    # still get their variances to float64 accuracy (the error grows like
    # eps (distance / sd)^2), checked through the M-step against the
    # two-pass textbook estimate
    from fastem._covariance import estimate_parameters
    rng = np.random.default_rng(7)
    D = 3
    X = np.concatenate([rng.normal(-40.0, 1.0, (300, D)),
                        rng.normal(40.0, 0.5, (200, D))])
    weights = np.array([0.6, 0.4])
    means = np.array([[-40.0] * D, [40.0] * D])
    prec_chol = (np.array([[1.0] * D, [2.0] * D]) if covariance_type == "diag"
                 else np.array([1.0, 2.0]))
    stats, kp = run_em_stats(X, (weights, means, prec_chol), covariance_type)
    assert np.all(kp.shift == kp.shift[0])
    _, resp = responsibilities(X, weights, means, prec_chol, covariance_type)
    _, want_means, want_covs = m_step(X, resp, 0.0, covariance_type)
    _, got_means, got_covs = estimate_parameters(stats, 0.0)
    np.testing.assert_allclose(got_means, want_means, rtol=1e-12)
    np.testing.assert_allclose(got_covs, want_covs, rtol=1e-10)


def test_kernel_refuses_parameters_of_the_wrong_size():
    X, params = make_case("full", np.float64, "C", 10)
    engine = Engine("full", 3, 4, CHUNK, 1)
    kp = engine.kernel_params(*params, X.dtype)
    kp.prec = kp.prec[:-1]
    with pytest.raises(ValueError, match="prec has"):
        engine.em_stats(X, kp)
    with pytest.raises(ValueError, match="prec has"):
        engine.score(X, kp, labels=True)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zero_weight_component_has_zero_statistics(covariance_type, dtype):
    X, params = make_case(covariance_type, dtype, "C", 3 * CHUNK + 5, zero_weight=True)
    stats, kp = run_em_stats(X, params, covariance_type)
    assert stats.nk[-1] == 0.0
    assert np.all(stats.s1[-1] == 0.0)
    if covariance_type in ("full", "diag", "spherical"):
        assert np.all(stats.s2[-1] == 0.0)
    assert np.isfinite(stats.log_likelihood)
    ll, resp = responsibilities(X, *reference_params(params, covariance_type, dtype),
                                covariance_type)
    assert_close(stats.nk, resp.sum(axis=0), dtype, scale=X.shape[0])


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n_samples", SIZES)
def test_score_pass_matches_reference(covariance_type, dtype, order, n_samples):
    X, params = make_case(covariance_type, dtype, order, n_samples, seed=1)
    weights, means, prec_chol = params
    engine = Engine(covariance_type, means.shape[0], X.shape[1], CHUNK, 2)
    kp = engine.kernel_params(weights, means, prec_chol, X.dtype)
    out = engine.score(X, kp, log_likelihood=True, resp=True, labels=True)
    ll, resp = responsibilities(X, *reference_params(params, covariance_type, dtype),
                                covariance_type)
    assert_close(out["log_likelihood"], ll, dtype)
    assert_close(out["resp"], resp, dtype, scale=1.0)
    # labels are the argmax; rows whose two best components are within
    # rounding of each other may legitimately flip
    top2 = np.sort(resp, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-3
    np.testing.assert_array_equal(out["labels"][clear], resp.argmax(axis=1)[clear])


def test_score_pass_fills_only_requested_outputs():
    X, params = make_case("full", np.float64, "C", 100)
    weights, means, prec_chol = params
    engine = Engine("full", 3, 4, CHUNK, 2)
    kp = engine.kernel_params(weights, means, prec_chol, X.dtype)
    out = engine.score(X, kp, labels=True)
    assert out["labels"].shape == (100,)
    assert out["log_likelihood"] is None and out["resp"] is None


def test_strided_view_gives_same_statistics_as_contiguous_copy():
    # a non-contiguous view (every other row and column) gives the same
    # statistics as its contiguous copy
    X, params = make_case("full", np.float64, "C", 2 * 301, n_features=8)
    view = X[::2, ::2]
    p = random_params(np.random.default_rng(3), "full", 3, 4)
    a, _ = run_em_stats(view, p, "full")
    b, _ = run_em_stats(np.ascontiguousarray(view), p, "full")
    np.testing.assert_allclose(a.s2, b.s2, rtol=1e-12)
    np.testing.assert_allclose(a.log_likelihood, b.log_likelihood, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_results_do_not_depend_on_chunk_size_or_threads(covariance_type):
    X, params = make_case(covariance_type, np.float64, "C", 5003, n_features=6,
                          n_components=4, seed=2)
    ref, _ = run_em_stats(X, params, covariance_type, chunk_size=5003, n_threads=1)
    for chunk_size in (1, 7, 64, 1000, None):
        for n_threads in (1, 2):
            got, _ = run_em_stats(X, params, covariance_type, chunk_size, n_threads)
            for name in ("nk", "s1", "s2"):
                a, b = getattr(got, name), getattr(ref, name)
                np.testing.assert_allclose(a, b, rtol=1e-10,
                                           atol=1e-10 * np.max(np.abs(b)),
                                           err_msg=f"{name} chunk={chunk_size} threads={n_threads}")
            np.testing.assert_allclose(got.log_likelihood, ref.log_likelihood, rtol=1e-10)


def test_empty_input_gives_zero_statistics():
    X, params = make_case("diag", np.float64, "C", 0)
    stats, _ = run_em_stats(X, params, "diag")
    assert stats.n_samples == 0
    assert stats.log_likelihood == 0.0
    assert np.all(stats.nk == 0)


@pytest.mark.parametrize("n_features", [1, 2, 7, 33, 200])
@pytest.mark.parametrize("lapack", [None, False, True])
def test_precision_cholesky_matches_numpy(n_features, lapack):
    # None: loops below LAPACK_MIN_FEATURES, LAPACK from there on
    from fastem._kernels._linalg import precision_cholesky
    rng = np.random.default_rng(n_features)
    A = rng.normal(size=(4, n_features, n_features))
    covs = A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(n_features)
    out = np.full_like(covs, np.nan)  # below the diagonal too: written as zeros
    assert precision_cholesky(covs, out, lapack=lapack) == -1
    expected = np.swapaxes(np.linalg.inv(np.linalg.cholesky(covs)), -1, -2)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())
    # U U^T is the precision
    np.testing.assert_allclose(out @ np.swapaxes(out, 1, 2), np.linalg.inv(covs),
                               rtol=1e-8, atol=1e-10)
    covs[2] = -np.eye(n_features)
    covs[3, 0, 0] = np.nan
    assert precision_cholesky(covs, out, lapack=lapack) == 2
    covs[2] = np.eye(n_features)
    assert precision_cholesky(covs, out, lapack=lapack) == 3


@pytest.mark.parametrize("n_features", [1, 3, 9])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_layout_reads_only_the_upper_triangle_of_any_layout(n_features, dtype):
    # the per-iteration packing (_em.layout_full) reads factors of any
    # strides; a Fortran-ordered factor with garbage below the diagonal must
    # give the same kernel parameters as the clean triangular one
    from fastem._covariance import KernelParams
    from fastem._kernels._em import tri_stride
    rng = np.random.default_rng(n_features)
    weights, means, U = random_params(rng, "full", 3, n_features)
    dirty = np.asfortranarray(U + np.tril(rng.normal(size=U.shape), -1))
    clean = KernelParams(weights, means, U, "full", dtype)
    other = KernelParams(weights, means, dirty, "full", dtype)
    np.testing.assert_array_equal(other.prec, clean.prec)
    np.testing.assert_array_equal(other.log_const, clean.log_const)
    ldu = tri_stride(n_features)
    padded = np.zeros((3, n_features, ldu))
    padded[:, :, :n_features] = np.triu(U)
    np.testing.assert_array_equal(clean.prec, padded.astype(dtype).ravel())
    expected = np.log(weights) - 0.5 * n_features * np.log(2 * np.pi) + np.array(
        [np.log(np.diag(u)).sum() for u in U])
    np.testing.assert_allclose(clean.log_const, expected, rtol=1e-14)


def test_ridge_is_added_to_the_diagonals_only():
    from fastem._covariance import _scaled_identity
    a = np.random.default_rng(0).normal(size=(3, 4, 4))
    ridge = _scaled_identity(4, 0.5)
    np.testing.assert_array_equal(a + ridge, a + 0.5 * np.eye(4))
    assert not ridge.flags.writeable


def test_denormal_flushing_is_restored_after_a_pass():
    # the passes flush denormals to zero while they run; the caller's
    # floating-point state must come back unchanged
    X, params = make_case("full", np.float64, "C", 300)
    tiny = np.array([1e-310])
    assert (tiny * 1.0)[0] > 0
    run_em_stats(X, params, "full", n_threads=1)
    Engine("full", 3, 4, CHUNK, 1).score(
        X, Engine("full", 3, 4, CHUNK, 1).kernel_params(*params, X.dtype),
        log_likelihood=True)
    assert (tiny * 1.0)[0] > 0 and (tiny / 2)[0] > 0


def test_numpy_integer_thread_counts_are_accepted():
    # the estimator takes any Integral; the thread count it hands on must too
    from fastem import GaussianMixture, effective_n_threads
    assert effective_n_threads(np.int64(2)) == effective_n_threads(2)
    assert type(effective_n_threads(np.int32(1))) is int
    with pytest.raises(ValueError):
        effective_n_threads(True)
    X, _ = make_case("diag", np.float64, "C", 200)
    GaussianMixture(2, covariance_type="diag", n_threads=np.int64(2), max_iter=3,
                    random_state=0).fit(X)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("chunk_size", [2 ** 40, 2 ** 61])
def test_passes_raise_memory_error_when_buffers_cannot_be_allocated(covariance_type,
                                                                    chunk_size):
    # per-thread buffers of an absurd chunk: malloc refuses them (2**40
    # rows) or their size overflows (2**61); either way a MemoryError, not
    # a crash, and the next pass still works
    from fastem._kernels import _em
    X, params = make_case(covariance_type, np.float64, "C", 50)
    engine = Engine(covariance_type, 3, 4, CHUNK, 2)
    kp = engine.kernel_params(*params, X.dtype)
    stats = np.empty(engine.stats_size)
    with pytest.raises(MemoryError):
        _em.em_pass(X, kp.loc, kp.prec, kp.center, kp.log_const, kp.shift, kp.cov_code,
                    chunk_size, 2, stats)
    with pytest.raises(MemoryError):
        _em.score_pass(X, kp.loc, kp.prec, kp.center, kp.log_const, kp.cov_code,
                       chunk_size, 2, np.empty(50), np.empty((0, 3)),
                       np.empty(0, dtype=np.intp))
    assert np.isfinite(run_em_stats(X, params, covariance_type)[0].log_likelihood)


def test_kmeans_kernels_raise_memory_error_when_sums_cannot_be_allocated():
    from fastem._kernels import _kmeans
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    centers = X[:4].copy()
    _kmeans._set_refuse_allocations(True)
    try:
        with pytest.raises(MemoryError):
            _kmeans.lloyd_pass(X, centers, 16, np.empty(0, dtype=np.intp), np.empty((2, 17)))
        with pytest.raises(MemoryError):
            _kmeans.candidate_potentials(X, centers, np.full(100, np.inf), 16,
                                         np.empty((2, 4)))
    finally:
        _kmeans._set_refuse_allocations(False)
    sums = np.empty((2, 17))
    _kmeans.lloyd_pass(X, centers, 16, np.empty(0, dtype=np.intp), sums)
    assert sums[:, 1:5].sum() == 100


def test_kmeans_thread_sums_are_each_threads_own():
    # every row of thread_sums is one thread's sums: together the whole
    # data, whatever the split
    from fastem._kernels import _kmeans
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 3))
    centers = X[:5].copy()
    labels = np.empty(1000, dtype=np.intp)
    for threads in (1, 2, 3):
        sums = np.empty((threads, 1 + 5 + 15))
        _kmeans.lloyd_pass(X, centers, 37, labels, sums)
        total = sums.sum(axis=0)
        assert total[1:6].sum() == 1000
        np.testing.assert_allclose(total[1:6], np.bincount(labels, minlength=5))
        np.testing.assert_allclose(total[6:].reshape(5, 3),
                                   [X[labels == k].sum(axis=0) for k in range(5)])


def test_passes_refuse_a_chunk_size_below_one():
    # a zero chunk size used to divide by zero in the kernels
    from fastem._kernels import _em
    X, params = make_case("diag", np.float64, "C", 20)
    engine = Engine("diag", 3, 4, CHUNK, 1)
    kp = engine.kernel_params(*params, X.dtype)
    with pytest.raises(ValueError, match="chunk_size"):
        _em.em_pass(X, kp.loc, kp.prec, kp.center, kp.log_const, kp.shift, kp.cov_code,
                    0, 1, np.empty(engine.stats_size))
    with pytest.raises(ValueError, match="chunk_size"):
        _em.score_pass(X, kp.loc, kp.prec, kp.center, kp.log_const, kp.cov_code, 0, 1,
                       np.empty(20), np.empty((0, 3)), np.empty(0, dtype=np.intp))


def test_shared_blas_pass_raises_memory_error_when_buffers_cannot_be_allocated():
    # the components-over-threads driver allocates its own shared buffers
    from fastem._kernels import _em
    X, params = make_case("full", np.float64, "C", 50)
    engine = Engine("full", 3, 4, CHUNK, 2, blas=True)
    kp = engine.kernel_params(*params, X.dtype)
    stats = np.empty(engine.stats_size)
    with pytest.raises(MemoryError):
        _em.em_pass(X, kp.loc, kp.prec, kp.center, kp.log_const, kp.shift, kp.cov_code,
                    2 ** 40, 2, stats, True)
    assert np.isfinite(run_em_stats(X, params, "full", blas=True)[0].log_likelihood)

"""Weighted rows (sample_weight): the kernels against the NumPy reference,
the estimator against scikit-learn fitted on the rows repeated, streamed
and dask inputs against in-memory, weighted initialisation, bad weights."""
import os
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from test_kernels import CHUNK, assert_close, make_case, reference_params, run_em_stats

from fastem import GaussianMixture, Streamed, _init
from fastem._kernels import _kmeans
from fastem._sources import ArraySource
from reference import responsibilities, suff_stats

COV_TYPES = ["full", "tied", "diag", "spherical"]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def mixture(n=400, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0] * d, [4.0] * d, [-3.0] + [3.0] * (d - 1)])
    return centers[rng.integers(3, size=n)] + rng.normal(size=(n, d))


def integer_weights(n, seed=1):
    return np.random.default_rng(seed).integers(0, 4, size=n)


def start(X, covariance_type, k=3, seed=0):
    """A fixed start: scikit-learn's parameters after a few iterations."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkGaussianMixture(k, covariance_type=covariance_type, max_iter=3,
                               random_state=seed).fit(X)
    return dict(n_components=k, covariance_type=covariance_type,
                weights_init=sk.weights_, means_init=sk.means_,
                precisions_init=sk.precisions_)


# -- the kernels ---------------------------------------------------------------------------
def run_weighted(X, params, covariance_type, weights, **engine_args):
    source = ArraySource(X).with_weights(weights)
    stats, kp = run_em_stats(source, params, covariance_type, **engine_args)
    ll, resp = responsibilities(X, *reference_params(params, covariance_type, X.dtype),
                                covariance_type)
    nk, s1, s2 = suff_stats(X, resp * weights[:, np.newaxis], kp.shift, covariance_type)
    dtype = X.dtype.type
    assert_close(stats.log_likelihood, ll @ weights, dtype, scale=np.abs(ll) @ weights)
    assert_close(stats.nk, nk, dtype, scale=weights.sum())
    assert_close(stats.s1, s1, dtype)
    assert_close(stats.s2, s2, dtype)
    assert stats.n_samples == pytest.approx(weights.sum(), rel=1e-12)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_samples", [5, 3 * CHUNK + 17])
def test_weighted_pass_matches_reference(covariance_type, dtype, n_samples):
    X, params = make_case(covariance_type, dtype, "C", n_samples, seed=2)
    weights = np.random.default_rng(3).uniform(0, 3, size=n_samples)
    weights[::4] = 0.0
    run_weighted(X, params, covariance_type, weights)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("n_components", "n_threads"), [(3, 1), (3, 2), (2, 3)])
def test_weighted_blas_pass_matches_reference(covariance_type, dtype, n_components,
                                              n_threads):
    # the large-D path, forced on a small shape; with full covariance and at
    # least as many components as threads it is the shared super-chunk driver
    X, params = make_case(covariance_type, dtype, "F", 7 * CHUNK + 17, n_features=11,
                          n_components=n_components, seed=4)
    weights = np.random.default_rng(5).uniform(0, 3, size=X.shape[0])
    weights[1::3] = 0.0
    run_weighted(X, params, covariance_type, weights, blas=True, n_threads=n_threads)


def test_lloyd_and_seeding_kernels_weigh_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(301, 3))
    weights = rng.uniform(0, 2, size=301)
    centers = rng.normal(size=(4, 3))
    sums = np.empty((2, 1 + 4 + 12))
    labels = np.empty(301, dtype=np.intp)
    _kmeans.lloyd_pass(X, centers, 64, labels, sums, weights)
    total = sums.sum(axis=0)
    dist = ((X[:, np.newaxis] - centers) ** 2).sum(axis=2)
    nearest = dist.argmin(axis=1)
    np.testing.assert_array_equal(labels, nearest)
    np.testing.assert_allclose(total[0], dist.min(axis=1) @ weights, rtol=1e-12)
    np.testing.assert_allclose(total[1:5], np.bincount(nearest, weights, 4), rtol=1e-12)
    sums_ref = np.stack([weights[nearest == k] @ X[nearest == k] for k in range(4)])
    np.testing.assert_allclose(total[5:].reshape(4, 3), sums_ref, rtol=1e-12)

    closest = dist[:, 0].copy()
    pot = np.empty((1, 3))
    _kmeans.candidate_potentials(X, centers[1:], closest, 64, pot, weights)
    expected = np.minimum(dist[:, 1:], closest[:, np.newaxis]).T @ weights
    np.testing.assert_allclose(pot[0], expected, rtol=1e-12)


# -- the estimator against scikit-learn on repeated rows --------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_weights_equal_repeated_rows_in_scikit_learn(covariance_type):
    X = mixture()
    weights = integer_weights(len(X))
    repeated = np.repeat(X, weights, axis=0)
    params = dict(start(repeated, covariance_type), tol=0.0, max_iter=15)
    sk = SkGaussianMixture(**params).fit(repeated)
    gm = GaussianMixture(**params).fit(X, sample_weight=weights)
    np.testing.assert_allclose(gm.lower_bounds_, sk.lower_bounds_, rtol=1e-10)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(gm, name), getattr(sk, name), rtol=1e-10,
                                   atol=1e-12, err_msg=name)
    assert gm.score(X, sample_weight=weights) == pytest.approx(sk.score(repeated),
                                                               rel=1e-12)
    assert gm.bic(X, sample_weight=weights) == pytest.approx(sk.bic(repeated), rel=1e-12)
    assert gm.aic(X, sample_weight=weights) == pytest.approx(sk.aic(repeated), rel=1e-12)
    labels = gm.fit_predict(X, sample_weight=weights)
    np.testing.assert_array_equal(labels, gm.predict(X))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_scaled_weights_and_zero_weight_rows_change_nothing(covariance_type):
    X = mixture(seed=1)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, size=len(X))
    params = dict(start(X, covariance_type), tol=0.0, max_iter=10)
    base = GaussianMixture(**params).fit(X, sample_weight=weights)
    scaled = GaussianMixture(**params).fit(X, sample_weight=weights * 7.25)
    np.testing.assert_allclose(scaled.lower_bounds_, base.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(scaled.means_, base.means_, rtol=1e-12)
    # rows of weight zero, far away, interleaved with the others
    junk = np.random.default_rng(3).normal(100.0, 50.0, size=X.shape)
    padded = np.empty((2 * len(X), X.shape[1]))
    padded[0::2], padded[1::2] = X, junk
    padded_weights = np.zeros(2 * len(X))
    padded_weights[0::2] = weights
    zero = GaussianMixture(**params).fit(padded, sample_weight=padded_weights)
    np.testing.assert_allclose(zero.lower_bounds_, base.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(zero.covariances_, base.covariances_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random",
                                         "random_from_data"])
def test_equal_weights_give_the_unweighted_fit(covariance_type, init_params):
    # initialisation included: equal weights are a scaling of no weights
    X = mixture(seed=4)
    params = dict(n_components=3, covariance_type=covariance_type,
                  init_params=init_params, random_state=0)
    ref = GaussianMixture(**params).fit(X)
    gm = GaussianMixture(**params).fit(X, sample_weight=np.full(len(X), 3.0))
    assert gm.n_iter_ == ref.n_iter_
    # a seeded start (k-means++, random_from_data) has covariances
    # reg_covar + O(eps c^2 / n_k): scikit-learn's guard n_k + 10 eps does
    # not scale with the weights, which moves the first lower bound (about
    # -2e6) by ~1e-8 relative; from the first M-step on the fits agree
    first_rtol = 1e-7 if init_params in ("k-means++", "random_from_data") else 1e-10
    np.testing.assert_allclose(gm.lower_bounds_[0], ref.lower_bounds_[0], rtol=first_rtol)
    np.testing.assert_allclose(gm.lower_bounds_[1:], ref.lower_bounds_[1:], rtol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-8)


def test_partial_fit_with_weights_equals_repeated_rows():
    X = mixture(seed=5)
    weights = integer_weights(len(X), seed=6)
    repeated = np.repeat(X, weights, axis=0)
    params = start(repeated, "full")
    a = GaussianMixture(**params)
    b = GaussianMixture(**params)
    small = GaussianMixture(**params)  # weights summing to less than one row
    for part in np.array_split(np.arange(len(X)), 3):
        a.partial_fit(X[part], sample_weight=weights[part])
        b.partial_fit(np.repeat(X[part], weights[part], axis=0))
        small.partial_fit(X[part], sample_weight=weights[part] * 1e-4)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(small.lower_bounds_, a.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(small.covariances_, a.covariances_, rtol=1e-10)


# -- weighted initialisation ------------------------------------------------------------------
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data"])
def test_initialisation_never_starts_from_zero_weight_rows(init_params):
    # half the rows (a far cluster) weigh nothing: every start lies in the
    # other cluster, so the model never puts a component there
    rng = np.random.default_rng(7)
    near = rng.normal(size=(300, 2))
    far = rng.normal(50.0, 1.0, size=(300, 2))
    X = np.vstack([near, far])
    weights = np.r_[np.ones(300), np.zeros(300)]
    gm = GaussianMixture(3, init_params=init_params, random_state=0, max_iter=0)
    gm.fit(X, sample_weight=weights)
    assert np.all(np.abs(gm.means_) < 10.0), gm.means_


def test_weighted_kmeans_matches_a_numpy_lloyd_from_the_same_seeds():
    X = mixture(seed=8)
    weights = np.random.default_rng(9).uniform(0, 3, size=len(X))
    source = ArraySource(X).with_weights(weights)
    centers = _init.kmeans(source, 3, np.random.RandomState(0), 64, 2)
    seeds, _ = _init.kmeans_plusplus(X, 3, np.random.RandomState(0), 64, 2, weights)
    ref = seeds
    tol = np.mean(np.average((X - np.average(X, axis=0, weights=weights)) ** 2, axis=0,
                             weights=weights)) * 1e-4
    for _ in range(300):
        labels = ((X[:, np.newaxis] - ref) ** 2).sum(axis=2).argmin(axis=1)
        new = np.stack([np.average(X[labels == k], axis=0, weights=weights[labels == k])
                        for k in range(3)])
        shift = ((new - ref) ** 2).sum()
        ref = new
        if shift <= tol:
            break
    np.testing.assert_allclose(centers, ref, rtol=1e-10)


def test_random_init_weighs_the_first_statistics():
    X = mixture(seed=10)
    weights = integer_weights(len(X), seed=11).astype(float)
    gm = GaussianMixture(3, init_params="random", random_state=0, max_iter=0)
    gm.fit(X, sample_weight=weights)
    resp = np.random.RandomState(0).uniform(size=(len(X), 3))
    resp /= resp.sum(axis=1)[:, np.newaxis]
    resp *= weights[:, np.newaxis]
    np.testing.assert_allclose(gm.means_, resp.T @ X / resp.sum(axis=0)[:, np.newaxis],
                               rtol=1e-10)
    np.testing.assert_allclose(gm.weights_, resp.sum(axis=0) / weights.sum(), rtol=1e-10)


# -- streamed and dask inputs ------------------------------------------------------------------
def streamed_inputs(tmp_path, X, weights):
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "w.npy", weights)
    yield "npy paths", str(tmp_path / "X.npy"), str(tmp_path / "w.npy")
    yield "memmaps", np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(
        tmp_path / "w.npy", mmap_mode="r")
    yield "Streamed, array weights", Streamed(X), weights
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["X"], f["w"] = X, weights
    f = h5py.File(tmp_path / "d.h5", "r")
    yield "HDF5", f["X"], f["w"]
    f.close()


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_streamed_weighted_fit_equals_in_memory(tmp_path, covariance_type):
    X = mixture(n=3000, seed=12)
    weights = np.random.default_rng(13).uniform(0, 2, size=len(X))
    params = dict(start(X, covariance_type), tol=0.0, max_iter=6)
    ref = GaussianMixture(**params).fit(X, sample_weight=weights)
    ref_kmeans = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                                 max_iter=3).fit(X, sample_weight=weights)
    for name, data, w in streamed_inputs(tmp_path, X, weights):
        gm = GaussianMixture(**params, block_bytes=20_000).fit(data, sample_weight=w)
        np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10,
                                   err_msg=name)
        np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-10, err_msg=name)
        assert gm.score(data, sample_weight=w) == pytest.approx(
            ref.score(X, sample_weight=weights), rel=1e-12)
        # default initialisation: all rows in the seeding sample, so the same start
        km = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                             max_iter=3, block_bytes=20_000).fit(data, sample_weight=w)
        np.testing.assert_allclose(km.lower_bounds_, ref_kmeans.lower_bounds_, rtol=1e-9,
                                   err_msg=name)


def test_dask_weighted_fit_equals_in_memory():
    da = pytest.importorskip("dask.array")
    X = mixture(n=3000, seed=14)
    weights = np.random.default_rng(15).uniform(0, 2, size=len(X))
    params = dict(start(X, "full"), tol=0.0, max_iter=6)
    ref = GaussianMixture(**params).fit(X, sample_weight=weights)
    data = da.from_array(X, chunks=(700, 3))
    for w in (weights, da.from_array(weights, chunks=1000)):
        gm = GaussianMixture(**params).fit(data, sample_weight=w)
        np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
        np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-10)
        assert gm.bic(data, sample_weight=w) == pytest.approx(
            ref.bic(X, sample_weight=weights), rel=1e-12)
    for init in ("kmeans", "random"):
        a = GaussianMixture(3, init_params=init, random_state=0, max_iter=2)
        b = GaussianMixture(3, init_params=init, random_state=0, max_iter=2)
        a.fit(X, sample_weight=weights)
        b.fit(data, sample_weight=da.from_array(weights, chunks=700))
        np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-9,
                                   err_msg=init)


# -- bad weights -----------------------------------------------------------------------------
@pytest.mark.parametrize(("weights", "message"), [
    (lambda n: -np.ones(n), "must be >= 0, got -1 at row 0"),
    (lambda n: np.r_[np.ones(n - 1), np.nan], f"contains NaN \\(first at row {399}\\)"),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], "contains infinity"),
    (lambda n: np.ones(n - 1), "has 399 entries for 400 rows"),
    (lambda n: np.ones((n, 1)), "must be 1-dimensional"),
    (lambda n: np.zeros(n), "all weights are zero"),
    (lambda n: np.full(n, 1e308), "sum to infinity"),
    (lambda n: np.array(["a"] * n), "must be numbers"),
])
def test_bad_weights_are_named(weights, message):
    X = mixture()
    gm = GaussianMixture(2)
    with pytest.raises(ValueError, match=message):
        gm.fit(X, sample_weight=weights(len(X)))
    gm.fit(X)
    for method in (gm.score, gm.bic, gm.aic):
        with pytest.raises(ValueError, match=message):
            method(X, sample_weight=weights(len(X)))


def test_weights_and_data_are_never_modified(tmp_path):
    X = mixture()
    weights = np.random.default_rng(0).uniform(0, 2, size=len(X))
    X0, w0 = X.copy(), weights.copy()
    weights.flags.writeable = False
    gm = GaussianMixture(3, random_state=0, n_init=2).fit(X, sample_weight=weights)
    gm.partial_fit(X, sample_weight=weights)
    gm.score(X, sample_weight=weights)
    np.testing.assert_array_equal(weights, w0)
    np.testing.assert_array_equal(X, X0)


def test_summaries_of_weighted_parts_add_to_the_weighted_fit():
    import fastem
    X = mixture(seed=16)
    weights = np.random.default_rng(17).uniform(0, 0.2, size=len(X))  # sum < n
    params = dict(start(X, "diag"), tol=0.0, max_iter=3)
    ref = GaussianMixture(**params).fit(X, sample_weight=weights)
    gm = GaussianMixture(**params)
    for _ in range(3):
        parts = np.array_split(np.arange(len(X)), 4)
        fastem.from_summaries(gm, [fastem.summarize(X[p], gm, sample_weight=weights[p])
                                   for p in parts])
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize(("blas", "n_threads"), [(False, 2), (True, 1), (True, 2)])
def test_rows_of_weight_zero_may_hold_nan(covariance_type, blas, n_threads):
    # missing="em" hands the kernels whole blocks with its rows with gaps
    # weighted 0: the kernels must read them as zeros, not as 0 x NaN
    if blas and covariance_type in ("diag", "spherical"):
        pytest.skip("no BLAS path")
    X, params = make_case(covariance_type, np.float64, "C", 3 * CHUNK + 17, n_features=5,
                          seed=6)
    weights = np.random.default_rng(7).uniform(0.5, 2, size=X.shape[0])
    weights[::5] = 0.0
    holed = X.copy()
    holed[::5, 1] = np.nan
    holed[10, :] = np.nan
    weights[10] = 0.0
    got, _ = run_em_stats(ArraySource(holed).with_weights(weights), params,
                          covariance_type, blas=blas, n_threads=n_threads)
    expected, _ = run_em_stats(ArraySource(X).with_weights(weights), params,
                               covariance_type, blas=blas, n_threads=n_threads)
    assert np.isfinite(got.log_likelihood)
    np.testing.assert_allclose(got.log_likelihood, expected.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(got.s2, expected.s2, rtol=1e-12, atol=1e-12)


def test_a_weights_file_truncated_during_a_fit_is_named(tmp_path):
    # weights read from a .npy path are read, not mapped: a truncated file
    # is an error naming it (a mapping would die of SIGBUS)
    X = mixture(n=4000, seed=18)
    np.save(tmp_path / "w.npy", np.ones(len(X)))
    path = tmp_path / "w.npy"

    def truncate(iteration, lower_bound, params):
        if iteration == 2:
            os.truncate(path, 200)

    gm = GaussianMixture(3, random_state=0, max_iter=5, tol=0.0, callback=truncate)
    with pytest.raises(ValueError, match="w.npy was truncated"):
        gm.fit(Streamed(X), sample_weight=str(path))


def test_dask_data_takes_weights_from_a_file(tmp_path):
    da = pytest.importorskip("dask.array")
    X = mixture(n=3000, seed=19)
    weights = np.random.default_rng(20).uniform(0, 2, size=len(X))
    np.save(tmp_path / "w.npy", weights)
    params = dict(start(X, "diag"), tol=0.0, max_iter=3)
    ref = GaussianMixture(**params).fit(X, sample_weight=weights)
    gm = GaussianMixture(**params).fit(da.from_array(X, chunks=(700, 3)),
                                       sample_weight=str(tmp_path / "w.npy"))
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10)

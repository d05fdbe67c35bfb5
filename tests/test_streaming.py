"""Streamed inputs (memmap, .npy path, HDF5, Zarr, any sliceable) and
stepwise EM (partial_fit)."""
import os
import tracemalloc

import numpy as np
import pytest

from fastem import GaussianMixture
from fastem import _covariance as cov
from fastem._data import BlockReader, as_reader

pytestmark = pytest.mark.filterwarnings(
    # fixed numbers of iterations (tol=0) do not converge, on purpose
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

COV_TYPES = ["full", "tied", "diag", "spherical"]
# a few hundred rows per block: every streamed pass crosses many blocks
SMALL_BLOCK = 4096


def mixture_data(n=3000, d=3, k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    X = centers[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, size=(k, d))[labels]
    return X.astype(dtype)


def init_params(X, covariance_type, k=3):
    """Fixed initial parameters from a quick scikit-learn-free estimate."""
    rng = np.random.default_rng(1)
    means = X[rng.choice(len(X), k, replace=False)].astype(np.float64)
    d = X.shape[1]
    precisions = {
        "full": np.tile(np.eye(d), (k, 1, 1)),
        "tied": np.eye(d),
        "diag": np.ones((k, d)),
        "spherical": np.ones(k),
    }[covariance_type]
    return dict(weights_init=np.full(k, 1.0 / k), means_init=means,
                precisions_init=precisions)


class Sliceable:
    """The least an input needs: shape, dtype and row slices."""

    def __init__(self, array):
        self._array = array
        self.shape = array.shape
        self.dtype = array.dtype

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError("rows by slices only")
        return self._array[key].copy()


def _npy(tmp_path, X):
    path = tmp_path / "X.npy"
    np.save(path, X)
    return path


def make_input(kind, X, tmp_path):
    if kind == "memmap":
        return np.load(_npy(tmp_path, X), mmap_mode="r")
    if kind == "memmap-view":
        return np.load(_npy(tmp_path, X), mmap_mode="r")[:, :]
    if kind == "npy-str":
        return str(_npy(tmp_path, X))
    if kind == "npy-path":
        return _npy(tmp_path, X)
    if kind == "npy-fortran":
        # column-major on disk, as np.save of df.to_numpy() often writes it
        path = _npy(tmp_path, np.asfortranarray(X))
        assert np.load(path, mmap_mode="r").flags.f_contiguous
        return str(path)
    if kind == "memmap-fortran":
        return np.load(_npy(tmp_path, np.asfortranarray(X)), mmap_mode="r")
    if kind == "hdf5":
        h5py = pytest.importorskip("h5py")
        f = h5py.File(tmp_path / "X.h5", "w")
        f.create_dataset("X", data=X, chunks=(257, X.shape[1]))
        return f["X"]
    if kind == "zarr":
        zarr = pytest.importorskip("zarr")
        z = zarr.create_array(store=str(tmp_path / "X.zarr"), shape=X.shape,
                              chunks=(300, X.shape[1]), dtype=X.dtype)
        z[:] = X
        return z
    if kind == "sliceable":
        return Sliceable(X)
    raise ValueError(kind)


INPUT_KINDS = ["memmap", "memmap-view", "npy-str", "npy-path", "npy-fortran", "memmap-fortran",
               "hdf5", "zarr", "sliceable"]


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_streamed_fit_matches_in_memory(kind, covariance_type, tmp_path):
    X = mixture_data()
    params = dict(n_components=3, covariance_type=covariance_type, tol=0.0,
                  max_iter=8, **init_params(X, covariance_type))
    ref = GaussianMixture(**params).fit(X)
    Xs = make_input(kind, X, tmp_path)
    gm = GaussianMixture(**params, block_bytes=SMALL_BLOCK).fit(Xs)
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-8)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-8, atol=1e-10)

    np.testing.assert_array_equal(gm.predict(Xs), ref.predict(X))
    np.testing.assert_allclose(gm.predict_proba(Xs), ref.predict_proba(X),
                               rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(gm.score_samples(Xs), ref.score_samples(X), rtol=1e-9)
    assert gm.score(Xs) == pytest.approx(ref.score(X), rel=1e-9)
    assert gm.bic(Xs) == pytest.approx(ref.bic(X), rel=1e-9)
    assert gm.aic(Xs) == pytest.approx(ref.aic(X), rel=1e-9)


def test_float32_file_is_fitted_in_float32(tmp_path):
    X = mixture_data(dtype=np.float32)
    params = dict(n_components=3, tol=0.0, max_iter=5, **init_params(X, "full"))
    ref = GaussianMixture(**params).fit(X)
    gm = GaussianMixture(**params, block_bytes=SMALL_BLOCK).fit(_npy(tmp_path, X))
    # same float32 kernels, other block boundaries: float32 rounding apart
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-6)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_streamed_initialisation_matches_in_memory(init, tmp_path):
    # fewer rows than the seeding sample: the streamed init sees every row
    # and draws the same random numbers
    X = mixture_data(n=2000, seed=3)
    params = dict(n_components=3, init_params=init, random_state=7, tol=0.0, max_iter=4)
    ref = GaussianMixture(**params).fit(X)
    gm = GaussianMixture(**params, block_bytes=SMALL_BLOCK).fit(_npy(tmp_path, X))
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-8)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random_from_data"])
def test_streamed_initialisation_on_a_subsample_is_reproducible(init, tmp_path, monkeypatch):
    from fastem import _init
    monkeypatch.setattr(_init, "SEEDING_SAMPLE", 500)
    X = mixture_data(n=4000, seed=4)
    path = _npy(tmp_path, X)
    params = dict(n_components=3, init_params=init, random_state=11, max_iter=50,
                  block_bytes=SMALL_BLOCK)
    a = GaussianMixture(**params).fit(path)
    b = GaussianMixture(**params).fit(path)
    np.testing.assert_array_equal(a.lower_bounds_, b.lower_bounds_)
    if init != "random_from_data":
        # k-means from a subsample's seeds lands on the same optimum as the
        # in-memory fit on these separated clusters (random rows need not)
        ref = GaussianMixture(n_components=3, init_params=init, random_state=11,
                              max_iter=50).fit(X)
        assert a.score(X) == pytest.approx(ref.score(X), rel=1e-3)


def test_sample_rows_is_uniform_and_distinct():
    from fastem._init import sample_rows
    rng = np.random.RandomState(0)
    counts = np.zeros(50)
    for _ in range(2000):
        rows = sample_rows(50, 10, rng)
        assert len(np.unique(rows)) == 10 and np.all(np.diff(rows) > 0)
        counts[rows] += 1
    # each row is picked with probability 1/5: 400 +- 3 sd (sd ~ 17.9)
    assert np.all(np.abs(counts - 400) < 60)


def test_streamed_fit_memory_stays_at_the_block_size(tmp_path):
    X = mixture_data(n=400_000, d=8, seed=5)  # 25.6 MB
    path = _npy(tmp_path, X)
    params = dict(n_components=4, tol=0.0, max_iter=3, **init_params(X, "full", 4))
    del X
    block = 1 << 20
    tracemalloc.start()
    try:
        gm = GaussianMixture(**params, block_bytes=block).fit(path)
        gm.score(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    data_bytes = 400_000 * 8 * 8
    # two blocks in flight and their validation, far below the data's size
    assert peak < 6 * block < data_bytes / 4, peak


def test_outputs_can_be_written_into_caller_arrays(tmp_path):
    X = mixture_data()
    gm = GaussianMixture(3, random_state=0).fit(X)
    out = np.lib.format.open_memmap(tmp_path / "proba.npy", mode="w+",
                                    dtype=np.float64, shape=(len(X), 3))
    returned = gm.predict_proba(_npy(tmp_path, X), out=out)
    assert returned is out
    np.testing.assert_allclose(out, gm.predict_proba(X), rtol=1e-12)
    ll = np.empty(len(X))
    assert gm.score_samples(X, out=ll) is ll
    np.testing.assert_allclose(ll, gm.score_samples(X), rtol=1e-12)
    # a float32 output (half the memory) receives the float64 values rounded
    ll32 = np.empty(len(X), dtype=np.float32)
    assert gm.score_samples(X, out=ll32) is ll32
    np.testing.assert_array_equal(ll32, ll.astype(np.float32))
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous float64"):
        gm.predict_proba(X, out=np.empty((len(X), 2)))
    with pytest.raises(ValueError, match="out must be"):
        gm.score_samples(X, out=np.empty(len(X), dtype=np.int64))


# -- bad files ------------------------------------------------------------------------
def test_missing_file_is_a_clear_error(tmp_path):
    gm = GaussianMixture(2)
    with pytest.raises(FileNotFoundError, match="no such file"):
        gm.fit(tmp_path / "missing.npy")


def test_truncated_npy_is_a_clear_error(tmp_path):
    path = _npy(tmp_path, mixture_data())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        GaussianMixture(2).fit(path)


def test_corrupt_npy_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.npy"
    path.write_bytes(b"this is not an array file" * 10)
    with pytest.raises(ValueError, match="not a readable .npy file"):
        GaussianMixture(2).fit(path)


def test_other_paths_are_refused_with_a_hint(tmp_path):
    with pytest.raises(ValueError, match="reads .npy files"):
        GaussianMixture(2).fit(str(tmp_path / "data.csv"))


def test_nan_in_a_streamed_block_names_the_row(tmp_path):
    X = mixture_data()
    X[2500, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*row 2500"):
        GaussianMixture(2, block_bytes=SMALL_BLOCK).fit(_npy(tmp_path, X))


def test_streamed_input_of_wrong_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="2-dimensional"):
        GaussianMixture(2).fit(_npy(tmp_path, np.zeros(10)))
    gm = GaussianMixture(2, random_state=0).fit(mixture_data())
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        gm.predict(_npy(tmp_path, np.zeros((5, 2))))


def test_reader_blocks_cover_every_row_once():
    X = np.arange(1000.0).reshape(-1, 2)
    reader = as_reader(Sliceable(X), [np.float64], block_bytes=16 * 7)
    seen = np.concatenate([block for _, _, block in reader.blocks()])
    np.testing.assert_array_equal(seen, X)
    np.testing.assert_array_equal(reader.take(np.array([0, 3, 499])), X[[0, 3, 499]])
    assert isinstance(reader, BlockReader) and reader.block_rows == 7


# -- statistics about other shifts ------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_recentered_statistics_equal_statistics_about_the_new_shift(covariance_type):
    from fastem._init import stats_from_resp
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    resp = rng.dirichlet(np.ones(2), size=200)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    if covariance_type == "tied":
        a[1], b[1] = a[0], b[0]
    about_a = stats_from_resp(X, covariance_type, lambda s, e, rows: resp[s:e], a)
    about_b = stats_from_resp(X, covariance_type, lambda s, e, rows: resp[s:e], b)
    moved = about_a.recentered(b)
    np.testing.assert_allclose(moved.nk, about_b.nk, rtol=1e-12)
    np.testing.assert_allclose(moved.s1, about_b.s1, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(moved.s2, about_b.s2, rtol=1e-10, atol=1e-10)


# -- partial_fit ----------------------------------------------------------------------
def test_partial_fit_reaches_full_batch_quality():
    X = mixture_data(n=20_000, d=2, k=3, seed=8)
    full = GaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(X)
    gm = GaussianMixture(3, random_state=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        order = rng.permutation(len(X))
        for start in range(0, len(X), 500):
            gm.partial_fit(X[order[start:start + 500]])
    assert gm.n_iter_ == 3 * 40 and len(gm.lower_bounds_) == 120
    assert gm.score(X) >= full.score(X) - 0.01 * abs(full.score(X))
    # and the running fit approaches the optimum: late batches score better
    assert np.mean(gm.lower_bounds_[-20:]) > np.mean(gm.lower_bounds_[:5])


def test_partial_fit_first_call_honours_the_initial_parameters():
    X = mixture_data(seed=9)
    params = init_params(X, "diag")
    gm = GaussianMixture(3, covariance_type="diag", **params).partial_fit(X[:1000])
    # one update from the given start equals one full-batch EM iteration on
    # that batch (the running statistics are the batch's own)
    ref = GaussianMixture(3, covariance_type="diag", max_iter=1, tol=0.0,
                          **params).fit(X[:1000])
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-10)
    assert gm.lower_bounds_ == pytest.approx(ref.lower_bounds_, rel=1e-12)


def _sklearn_resp(weights, means, precisions, X):
    from sklearn.mixture import GaussianMixture as SkGM
    sk = SkGM(len(weights), weights_init=weights, means_init=means,
              precisions_init=precisions, max_iter=1).fit(X)
    # put the given parameters back: the fit above only set up the shapes
    sk.weights_, sk.means_ = weights, means
    sk.precisions_cholesky_ = cov.precision_cholesky_from_precisions(precisions, "full")
    return sk.predict_proba(X)


def _raw_moments(X, resp):
    n = len(X)
    return (resp.sum(axis=0) / n, resp.T @ X / n,
            np.einsum("nk,ni,nj->kij", resp, X, X) / n)


def test_partial_fit_step_blends_statistics():
    # kappa = 1, t0 = 1: the second update has eta = (1 + 1)^-1 = 1/2, so
    # its statistics are the mean of the two batches' per-row moments, each
    # under the parameters its batch was given
    X = mixture_data(seed=10)
    A, B = X[:1000], X[1000:1600]
    params = init_params(X, "full")
    gm = GaussianMixture(3, learning_decay=1.0, learning_offset=1.0, reg_covar=1e-6,
                         **params)
    gm.partial_fit(A)
    p1 = (gm.weights_.copy(), gm.means_.copy(), gm.precisions_.copy())
    gm.partial_fit(B)

    moments_a = _raw_moments(A, _sklearn_resp(params["weights_init"], params["means_init"],
                                              params["precisions_init"], A))
    moments_b = _raw_moments(B, _sklearn_resp(*p1, B))
    nk, s1, s2 = (0.5 * a + 0.5 * b for a, b in zip(moments_a, moments_b, strict=True))
    means = s1 / nk[:, None]
    covariances = s2 / nk[:, None, None] - means[:, :, None] * means[:, None, :]
    covariances += 1e-6 * np.eye(3)
    np.testing.assert_allclose(gm.weights_, nk / nk.sum(), rtol=1e-10)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gm.covariances_, covariances, rtol=1e-8, atol=1e-12)
    assert gm.n_iter_ == 2 and len(gm.lower_bounds_) == 2


def test_partial_fit_refuses_a_batch_with_other_features():
    gm = GaussianMixture(2, random_state=0).partial_fit(mixture_data(n=100, d=3))
    with pytest.raises(ValueError, match="X has 2 features"):
        gm.partial_fit(np.zeros((10, 2)))


def test_partial_fit_continues_a_fitted_model():
    X = mixture_data(seed=12)
    gm = GaussianMixture(3, random_state=0).fit(X)
    means = gm.means_.copy()
    gm.partial_fit(X[:500])
    assert gm.n_iter_ == 1 and len(gm.lower_bounds_) == 1
    # from the fitted optimum one batch moves the means only a little
    np.testing.assert_allclose(gm.means_, means, atol=0.5)


@pytest.mark.parametrize("name, value", [("learning_decay", 0.4),
                                         ("learning_decay", 1.5),
                                         ("learning_offset", 0.5)])
def test_partial_fit_step_parameters_are_checked(name, value):
    with pytest.raises(ValueError, match=name):
        GaussianMixture(2, **{name: value}).partial_fit(mixture_data(n=50))


def test_partial_fit_accepts_streamed_batches(tmp_path):
    X = mixture_data(seed=13)
    a = GaussianMixture(3, random_state=0).partial_fit(X[:1000]).partial_fit(X[1000:2000])
    b = GaussianMixture(3, random_state=0, block_bytes=SMALL_BLOCK)
    b.partial_fit(_npy(tmp_path, X[:1000]))
    b.partial_fit(Sliceable(X[1000:2000]))
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-8)


@pytest.mark.parametrize("change", ["file replaced", "file deleted", "copy-on-write edits"])
def test_a_memmap_is_read_as_the_user_sees_it(change, tmp_path):
    path = tmp_path / "X.npy"
    X = np.random.default_rng(4).normal(size=(3000, 3))
    np.save(path, X)
    mapped = np.load(path, mmap_mode="c" if change == "copy-on-write edits" else "r")
    if change == "file replaced":
        np.save(tmp_path / "other.npy", X[::-1] * 3.0 + 7.0)
        os.replace(tmp_path / "other.npy", path)
    elif change == "file deleted":
        os.remove(path)
    else:
        mapped[:500] += 4.0
    seen = np.array(mapped)  # what the user's array holds
    params = dict(n_components=2, random_state=0, max_iter=5, tol=0.0)
    streamed = GaussianMixture(**params, block_bytes=20_000).fit(mapped)
    in_memory = GaussianMixture(**params).fit(seen)
    np.testing.assert_allclose(streamed.lower_bounds_, in_memory.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(streamed.means_, in_memory.means_, rtol=1e-10)


def test_a_memmap_of_the_file_at_its_name_is_read_through_its_own_mapping(tmp_path):
    from fastem._data import _NpyFile
    from fastem._sources import as_source
    path = tmp_path / "X.npy"
    np.save(path, np.ones((10, 2)))
    for mode in ("r", "r+"):
        assert isinstance(as_source(np.load(path, mmap_mode=mode)).source, _NpyFile)

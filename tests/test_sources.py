"""The RowSource protocol: which inputs are streamed, which are converted
in memory, and that every kind of source answers alike."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastem
from fastem import GaussianMixture
from fastem._sources import ArraySource, RowSource, as_source

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def mixture_data(n=2000, d=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    return centers[rng.integers(k, size=n)] + rng.normal(size=(n, d))


class OnlyArray:
    """An in-memory array-like known to NumPy by __array__ alone."""

    def __init__(self, array):
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


class RowReader:
    """Shape, dtype and row slices, and no array protocol: streamed."""

    def __init__(self, array):
        self._array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.reads = 0

    def __getitem__(self, key):
        self.reads += 1
        return self._array[key].copy()


class ArrayWithSlices(RowReader):
    """Has shape, dtype, slicing and __array__: an array-like, converted."""

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def fit_both(X, other, **params):
    params = dict(n_components=3, random_state=0, max_iter=20, **params)
    return GaussianMixture(**params).fit(X), GaussianMixture(**params).fit(other)


def test_an_array_api_array_fits_and_predicts_as_numpy():
    xp = pytest.importorskip("array_api_strict")
    X = mixture_data()
    ref, gm = fit_both(X, xp.asarray(X))
    assert gm.lower_bounds_ == ref.lower_bounds_
    np.testing.assert_array_equal(gm.means_, ref.means_)
    np.testing.assert_array_equal(gm.predict(xp.asarray(X)), ref.predict(X))
    np.testing.assert_array_equal(gm.score_samples(xp.asarray(X)), ref.score_samples(X))
    assert not as_source(xp.asarray(X)).streamed


def test_an_object_with_only_array_is_converted():
    X = mixture_data(seed=1)
    ref, gm = fit_both(X, OnlyArray(X))
    assert gm.lower_bounds_ == ref.lower_bounds_
    np.testing.assert_array_equal(gm.predict(OnlyArray(X)), ref.predict(X))
    assert isinstance(as_source(OnlyArray(X)), ArraySource)


def test_an_array_like_with_slicing_is_converted_not_streamed():
    X = mixture_data(seed=2)
    data = ArrayWithSlices(X)
    source = as_source(data)
    assert not source.streamed and data.reads == 0


def test_a_sliceable_without_array_protocols_is_streamed():
    X = mixture_data(seed=3)
    data = RowReader(X)
    ref, gm = fit_both(X, data, block_bytes=4096)
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-8)
    assert data.reads > 10  # read block by block, over several passes
    assert as_source(data).streamed


def test_the_wrapper_streams_an_array_like():
    X = mixture_data(seed=4)
    data = ArrayWithSlices(X)
    ref, gm = fit_both(X, fastem.Streamed(data), block_bytes=4096)
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-8)
    assert data.reads > 10
    reads = data.reads
    np.testing.assert_array_equal(gm.predict(fastem.Streamed(data)), ref.predict(X))
    assert data.reads > reads
    source = as_source(fastem.Streamed(data, name="my table"))
    assert source.streamed and source.name == "my table"
    with pytest.raises(TypeError, match="no shape, dtype"):
        fastem.Streamed([[1.0, 2.0]])


def test_errors_of_a_wrapped_input_name_it():
    X = mixture_data(seed=5)
    X[700, 1] = np.inf
    with pytest.raises(ValueError, match="infinity.*row 700"):
        GaussianMixture(2, block_bytes=4096).fit(fastem.Streamed(ArrayWithSlices(X)))


def test_datasets_are_recognised_without_importing_their_libraries():
    code = ("import sys, numpy as np; from fastem._sources import as_source; "
            "as_source(np.zeros((3, 2))); as_source([[1.0, 2.0]]); "
            "print('h5py' in sys.modules, 'zarr' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def _sources(X, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, X)
    yield "array", as_source(X)
    yield "npy", as_source(path, block_bytes=16 * X.shape[1] * 7)
    yield "sliceable", as_source(RowReader(X), block_bytes=16 * X.shape[1] * 7)
    h5py = pytest.importorskip("h5py")
    f = h5py.File(tmp_path / "X.h5", "w")
    f.create_dataset("X", data=X)
    yield "hdf5", as_source(f["X"], block_bytes=16 * X.shape[1] * 7)
    da = pytest.importorskip("dask.array")
    yield "dask", as_source(da.from_array(X, chunks=(13, X.shape[1])))


def _sum_and_count(block):
    return np.array([block.sum(), block.shape[0]])


def test_every_source_answers_alike(tmp_path):
    X = mixture_data(n=100)
    indices = np.array([0, 5, 6, 57, 99])
    for name, source in _sources(X, tmp_path):
        assert isinstance(source, RowSource), name
        assert as_source(source) is source
        assert source.shape == X.shape and source.n_samples == 100, name
        assert source.n_features == 3 and source.dtype == np.float64, name
        parts = list(source.blocks())
        assert [p[0] for p in parts] == [0] + [p[1] for p in parts[:-1]], name
        np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), X)
        np.testing.assert_allclose(source.reduce(_sum_and_count), [X.sum(), 100],
                                   rtol=1e-12)
        np.testing.assert_array_equal(source.take(indices), X[indices])
        np.testing.assert_array_equal(source.rows(3, 9), X[3:9])
        assert source.streamed == (name != "array"), name
        assert source.distributed == (name == "dask"), name


def test_sparse_input_gets_scikit_learns_message():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="Sparse data was passed"):
        GaussianMixture(2).fit(scipy_sparse.csr_matrix(mixture_data(n=50)))


class _Blocks:
    """A dataset kept as a list of row blocks (an input kind fastem does not know)."""

    def __init__(self, parts):
        self.parts = parts


class _BlocksSource(RowSource):
    streamed = True

    def __init__(self, parts, dtype):
        self.parts = [np.ascontiguousarray(p, dtype=dtype) for p in parts]
        self.n_samples = sum(len(p) for p in parts)
        self.n_features = parts[0].shape[1]
        self.shape = (self.n_samples, self.n_features)
        self.dtype = np.dtype(dtype)

    def blocks(self):
        start = 0
        for part in self.parts:
            yield start, start + len(part), part
            start += len(part)

    def rows(self, start, stop):
        return np.concatenate(self.parts)[start:stop]

    def take(self, indices):
        return np.concatenate(self.parts)[np.asarray(indices)]


def test_a_new_kind_of_source_is_one_registry_entry(monkeypatch):
    from fastem import _sources

    X = np.random.default_rng(3).normal(size=(600, 3))
    X[:300] += 4
    entry = ("list of blocks", lambda obj: isinstance(obj, _Blocks),
             lambda obj, dtypes, block_bytes, lazy, persist:
             _BlocksSource(obj.parts, np.float64))
    monkeypatch.setattr(_sources, "SOURCE_KINDS", [entry, *_sources.SOURCE_KINDS])
    blocks = _Blocks(np.array_split(X, 4))
    ref = GaussianMixture(2, random_state=0).fit(X)
    gm = GaussianMixture(2, random_state=0).fit(blocks)
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-10)
    assert gm.score(blocks) == pytest.approx(ref.score(X), rel=1e-12)


@pytest.mark.parametrize("spelling", ["bytes", "upper-case suffix"])
def test_npy_paths_in_every_spelling_are_streamed(spelling, tmp_path):
    X = np.random.default_rng(0).normal(size=(300, 2))
    np.save(tmp_path / "X.npy", X)
    path = tmp_path / "X.npy"
    if spelling == "upper-case suffix":
        path = path.rename(tmp_path / "X.NPY")
    arg = os.fsencode(path) if spelling == "bytes" else str(path)
    streamed = GaussianMixture(2, random_state=0).fit(arg)
    np.testing.assert_allclose(streamed.means_,
                               GaussianMixture(2, random_state=0).fit(X).means_, rtol=1e-12)

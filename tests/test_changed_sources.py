"""Data that change or vanish under a running fit, and data whose squares
overflow: a ValueError that names the file and the cause, never fill
values fitted as data nor a collapsed-component message."""
import os
import shutil

import numpy as np
import pytest

import fastem
from fastem import GaussianMixture

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(0, 1, (2000, 3)), rng.normal(5, 1, (2000, 3))])


def _fit_with(callback, data, **params):
    gm = GaussianMixture(2, random_state=0, max_iter=6, tol=0.0, block_bytes=30_000,
                         callback=callback, **params)
    return gm.fit(data)


def test_an_hdf5_file_truncated_during_a_fit_is_named(X, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "X.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=X)
    with h5py.File(path, "r") as f:
        def truncate(iteration, lower_bound, params):
            if iteration == 2:
                os.truncate(path, os.path.getsize(path) // 2)
        with pytest.raises(ValueError, match=r"X\.h5 was changed .* while it was being read"):
            _fit_with(truncate, f["X"])


def _zarr_store(X, path, rows=None):
    """A Zarr store of X in chunks of 500 rows (only its first ``rows``
    written, if given); returns the zarr module."""
    zarr = pytest.importorskip("zarr")
    z = zarr.create_array(store=str(path), shape=X.shape, dtype=X.dtype, chunks=(500, 3))
    z[:rows] = X[:rows]
    return zarr


def test_a_zarr_store_deleted_during_a_fit_is_named(X, tmp_path):
    path = tmp_path / "X.zarr"
    zarr = _zarr_store(X, path)

    def delete(iteration, lower_bound, params):
        if iteration == 2:
            shutil.rmtree(path)
    with pytest.raises(ValueError, match=r"X\.zarr was deleted while it was being read"):
        _fit_with(delete, zarr.open_array(str(path), mode="r"))


def test_a_zarr_chunk_deleted_during_a_fit_is_named(X, tmp_path):
    path = tmp_path / "X.zarr"
    zarr = _zarr_store(X, path)

    def delete_a_chunk(iteration, lower_bound, params):
        if iteration == 2:
            chunk = next(p for p in path.rglob("*") if p.is_file() and p.name != "zarr.json")
            chunk.unlink()
    with pytest.raises(ValueError, match=r"1 of the Zarr array's 8 chunks are not in its store"):
        _fit_with(delete_a_chunk, zarr.open_array(str(path), mode="r"))


def test_a_zarr_array_with_chunks_never_written_is_refused(X, tmp_path):
    path = tmp_path / "X.zarr"
    zarr = _zarr_store(X, path, rows=1000)
    with pytest.raises(ValueError, match=r"X\.zarr: 6 of the Zarr array's 8 chunks .* "
                                         "fill value"):
        GaussianMixture(2).fit(zarr.open_array(str(path), mode="r"))


def test_an_npy_written_while_its_last_block_is_read_is_named(X, tmp_path, monkeypatch):
    # the write lands after the block's check, while the kernels read it:
    # in the fit's last pass its NaN would reach the fitted parameters
    from fastem import _data
    path = tmp_path / "X.npy"
    np.save(path, X)
    original = _data._NpyFile.view
    views = []
    write_at = None

    def view_then_write(self, start, stop):
        block = original(self, start, stop)
        views.append(stop)
        if len(views) == write_at:
            writable = np.load(path, mmap_mode="r+")
            writable[-1] = np.nan
            writable.flush()
            del writable
        return block
    monkeypatch.setattr(_data._NpyFile, "view", view_then_write)
    _fit_with(None, str(path))  # counts the blocks the fit views
    write_at, views[:] = len(views), []
    assert views == [] and write_at > 1
    with pytest.raises(ValueError, match=r"X\.npy was written to while it was being read"):
        _fit_with(None, str(path))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_float32_values_whose_squares_overflow_say_so(method):
    X = (np.random.default_rng(1).normal(size=(500, 3)) * 1e20).astype(np.float32)
    for model in (GaussianMixture(2, random_state=0),
                  fastem.BayesianGaussianMixture(n_components=2, random_state=0)):
        if not hasattr(model, method):
            continue
        with pytest.raises(ValueError, match=r"overflow float32.*dtype=np\.float64"):
            getattr(model, method)(X)
    assert GaussianMixture(2, random_state=0, dtype=np.float64).fit(X).converged_

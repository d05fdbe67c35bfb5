"""Model files: save/load round trips exactly, bad files give clear errors,
and loading never unpickles."""
import json
import zipfile

import numpy as np
import pytest

import fastem
from fastem import GaussianMixture


def _rewrite(path, **changes):
    """Replace entries of a saved model file, as a tampered file would."""
    with np.load(path) as f:
        content = {k: f[k] for k in f.files}
    content.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **content)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(0, 1, (300, 3)), rng.normal(5, 1, (300, 3))])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_round_trip_is_exact(data, covariance_type, tmp_path):
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=3,
                         reg_covar=1e-5, dtype="float32", chunk_size=128).fit(data)
    path = tmp_path / "model.gmm"
    gm.save(path)
    assert path.exists()  # no suffix added
    back = fastem.load(path)
    assert back.get_params() == {**gm.get_params(), "dtype": "float32"}
    for name in ("weights_", "means_", "covariances_", "precisions_",
                 "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(gm, name))
    assert back.lower_bounds_ == gm.lower_bounds_
    assert (back.converged_, back.n_iter_, back.lower_bound_, back.n_features_in_) == \
        (gm.converged_, gm.n_iter_, gm.lower_bound_, gm.n_features_in_)
    np.testing.assert_array_equal(back.predict_proba(data), gm.predict_proba(data))


def test_init_arrays_are_kept(data, tmp_path):
    means = np.array([[0.0, 0, 0], [5, 5, 5]])
    gm = GaussianMixture(2, means_init=means, max_iter=5).fit(data)
    gm.save(tmp_path / "m.npz")
    back = fastem.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.means_init, means)
    assert back.weights_init is None


def test_unfitted_model_is_refused(tmp_path):
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        GaussianMixture(2).save(tmp_path / "m.npz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        fastem.load(tmp_path / "none.npz")


def test_truncated_file(data, tmp_path):
    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a fastem model file|corrupt or truncated"):
        fastem.load(path)


def test_junk_file(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"\x00\x01junk" * 100)
    with pytest.raises(ValueError, match="not a fastem model file"):
        fastem.load(path)


def test_foreign_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ValueError, match="no fastem format marker"):
        fastem.load(path)


def test_future_version(data, tmp_path):
    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    _rewrite(path, fastem_format_version=np.asarray(99))
    with pytest.raises(ValueError, match="format version 99.*upgrade fastem"):
        fastem.load(path)


def test_pickled_content_is_never_loaded(data, tmp_path):
    # an object array (which would need pickle) in place of the weights
    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    _rewrite(path, weights_=np.array([{"evil": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="corrupt or truncated"):
        fastem.load(path)


def test_inconsistent_shapes_are_refused(data, tmp_path):
    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    _rewrite(path, means_=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="means_ has shape"):
        fastem.load(path)


def test_file_is_plain_arrays(data, tmp_path):
    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    with zipfile.ZipFile(path) as z:
        assert all(name.endswith(".npy") for name in z.namelist())
    with np.load(path, allow_pickle=False) as f:
        params = json.loads(f["params_json"].item())
    assert params["n_components"] == 2


def test_parameters_json_cannot_hold_load_as_none(data, tmp_path):
    calls = []
    gm = GaussianMixture(2, random_state=np.random.RandomState(0), max_iter=3,
                         callback=lambda n_iter, lower_bound, params: calls.append(n_iter),
                         reg_covar=np.float64(1e-5), warm_start=np.bool_(False))
    gm.fit(data)
    assert calls
    gm.set_params(progress=True)  # set after the fit: no progress bar in the test output
    gm.save(tmp_path / "m.npz")
    back = fastem.load(tmp_path / "m.npz")
    assert back.callback is None and back.random_state is None
    assert back.progress is True and back.warm_start is False
    assert back.reg_covar == 1e-5 and type(back.reg_covar) is float
    assert {k: v for k, v in back.get_params().items()
            if k not in ("callback", "random_state")} == \
        {k: v for k, v in gm.get_params().items() if k not in ("callback", "random_state")}
    np.testing.assert_array_equal(back.predict_proba(data), gm.predict_proba(data))


def test_unknown_covariance_type_is_refused(data, tmp_path):
    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    with np.load(path) as f:
        params = json.loads(f["params_json"].item())
    params["covariance_type"] = "banded"
    _rewrite(path, params_json=np.asarray(json.dumps(params)))
    with pytest.raises(ValueError, match="unknown covariance_type 'banded'"):
        fastem.load(path)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_save_leaves_the_old_model(data, tmp_path, monkeypatch, error):
    path = tmp_path / "model.npz"
    old = GaussianMixture(2, random_state=0).fit(data)
    old.save(path)
    new = GaussianMixture(3, random_state=1).fit(data)
    real_savez = np.savez

    def savez_then_fail(f, **arrays):
        # half an archive reaches the file, then the disk is full (or Ctrl-C)
        real_savez(f, **arrays)
        f.truncate(f.tell() // 2)
        raise error

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(type(error)):
        new.save(path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    loaded = fastem.load(path)
    np.testing.assert_array_equal(loaded.means_, old.means_)


def test_save_replaces_a_model_and_gives_it_the_usual_mode(data, tmp_path):
    import os
    path = tmp_path / "model.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    path.chmod(0o640)
    new = GaussianMixture(3, random_state=1).fit(data)
    new.save(path)
    assert path.stat().st_mode & 0o777 == 0o640
    np.testing.assert_array_equal(fastem.load(path).means_, new.means_)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_a_float32_model_loads_as_float32(data, tmp_path):
    X32 = data.astype(np.float32)
    gm = GaussianMixture(2, random_state=0).fit(X32)
    gm.save(tmp_path / "m.npz")
    loaded = fastem.load(tmp_path / "m.npz")
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(loaded, name).dtype == np.float32, name
        np.testing.assert_array_equal(getattr(loaded, name), getattr(gm, name))
    assert type(loaded.lower_bound_) is np.float32 and loaded.lower_bound_ == gm.lower_bound_
    np.testing.assert_array_equal(loaded.predict_proba(X32), gm.predict_proba(X32))


def test_saving_into_a_missing_directory_names_the_path(data, tmp_path):
    path = tmp_path / "missing" / "model.npz"
    with pytest.raises(FileNotFoundError, match=f"cannot write {path}"):
        GaussianMixture(2, random_state=0).fit(data).save(path)

"""Model files: save/load round trips exactly, bad files give clear errors,
and loading never unpickles."""
import io
import json
import re
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
    with pytest.raises(ValueError, match="corrupt: weights_ holds Python objects"):
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


# -- every model fit produces loads ------------------------------------------------------
COV_TYPES = ["full", "tied", "diag", "spherical"]
ESTIMATORS = {"gm": lambda **kw: GaussianMixture(2, random_state=0, **kw),
              "bgm": lambda **kw: fastem.BayesianGaussianMixture(n_components=3,
                                                                 random_state=0, **kw)}
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def _assert_same_model(back, gm, X):
    for name in FITTED:
        np.testing.assert_array_equal(getattr(back, name), getattr(gm, name), err_msg=name)
        assert getattr(back, name).dtype == getattr(gm, name).dtype, name
    np.testing.assert_array_equal(back.predict_proba(X), gm.predict_proba(X))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_fitted_models_load(data, estimator, covariance_type, dtype, tmp_path):
    X = data.astype(dtype)
    gm = ESTIMATORS[estimator](covariance_type=covariance_type).fit(X)
    gm.save(tmp_path / "m.npz")
    _assert_same_model(fastem.load(tmp_path / "m.npz"), gm, X)


def _condition_numbers(gm):
    """Each component's covariance condition number (the tied one's)."""
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    if gm.covariance_type in ("full", "tied"):
        return np.linalg.cond(cov)
    if gm.covariance_type == "diag":
        return cov.max(axis=1) / cov.min(axis=1)
    return np.ones_like(cov)  # one variance: no direction is worse than another


# (the variational fit of such data may stop at max_iter)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_ill_conditioned_models_load(data, estimator, covariance_type, dtype, tmp_path):
    # a nearly constant feature: its variance is little more than reg_covar,
    # the covariances' condition numbers are large, and C P - I, to
    # rounding, is far above the dtype's epsilon
    X = data.copy()
    X[:, 1] = 2.0 + np.random.default_rng(1).normal(0, 1e-5, len(X))
    X = X.astype(dtype)
    gm = ESTIMATORS[estimator](covariance_type=covariance_type, reg_covar=1e-6).fit(X)
    if covariance_type != "spherical":
        assert np.max(_condition_numbers(gm)) > 1e5
    gm.save(tmp_path / "m.npz")
    _assert_same_model(fastem.load(tmp_path / "m.npz"), gm, X)


def test_a_model_that_ran_no_iteration_loads(data, tmp_path):
    # max_iter=0 keeps the initial parameters and a lower bound of -inf
    gm = GaussianMixture(2, max_iter=0, random_state=0).fit(data)
    assert gm.lower_bound_ == -np.inf
    gm.save(tmp_path / "m.npz")
    back = fastem.load(tmp_path / "m.npz")
    assert back.lower_bound_ == -np.inf and back.n_iter_ == 0
    _assert_same_model(back, gm, data)


# -- files whose values no fit produces ----------------------------------------------------
@pytest.fixture(scope="module")
def fitted(data):
    """A fitted model by (estimator, covariance_type, dtype), fitted once."""
    models = {}

    def get(estimator, covariance_type, dtype):
        key = (estimator, covariance_type, dtype)
        if key not in models:
            models[key] = ESTIMATORS[estimator](covariance_type=covariance_type).fit(
                data.astype(dtype))
        return models[key]

    return get


def _with_params(content, **changes):
    params = json.loads(content["params_json"].item())
    return {"params_json": np.asarray(json.dumps({**params, **changes}))}


def _no_components(content):
    D = content["means_"].shape[1]
    empty = np.zeros((0, D, D))
    return {**_with_params(content, n_components=0), "weights_": np.zeros(0),
            "means_": np.zeros((0, D)), "covariances_": empty, "precisions_": empty,
            "precisions_cholesky_": empty}


def _scaled(name, factor):
    return lambda content: {name: content[name] * factor}


def _negated_first(name):
    """name with its first component's entries negated (a factor's sign
    leaves its precisions U U^T, or U^2, as they were)."""
    def change(content):
        value = content[name].copy()
        value[0] = -value[0]
        return {name: value}
    return change


def _transposed_cholesky(content):
    return {"precisions_cholesky_": np.swapaxes(content["precisions_cholesky_"], -1, -2)}


def _set(**changes):
    return lambda content: {name: np.asarray(value) for name, value in changes.items()}


def _unsymmetric_prior(content):
    prior = content["covariance_prior_"].copy()
    prior[0, 1] += 1.0
    return {"covariance_prior_": prior}


# id: (estimator, covariance_type, dtype, change of the file's arrays, message)
BAD_VALUES = {
    "no components": ("gm", "full", "float64", _no_components, "n_components is 0"),
    "n_components not an integer": ("gm", "diag", "float64",
                                    lambda c: _with_params(c, n_components="2"),
                                    "n_components is '2'"),
    "negative weight": ("gm", "diag", "float64",
                        lambda c: {"weights_": c["weights_"] + [1.0, -1.0]},
                        r"weights_ has entries outside \[0, 1\]"),
    "weights not summing to 1": ("gm", "full", "float64", _scaled("weights_", 0.99),
                                 "weights_ sum to 0.99"),
    "float32 weights not summing to 1": ("gm", "spherical", "float32",
                                         _scaled("weights_", 1.0001), "weights_ sum to"),
    "weights of strings": ("gm", "full", "float64", _set(weights_=["a", "b"]),
                           "weights_ has dtype <U1"),
    "lower-triangular full Cholesky factors": (
        "gm", "full", "float64", _transposed_cholesky,
        r"precisions_cholesky_ is not upper triangular \(component 0\)"),
    "lower-triangular tied Cholesky factor": (
        "gm", "tied", "float32", _transposed_cholesky,
        "precisions_cholesky_ is not upper triangular$"),
    "negative full Cholesky diagonal": (
        "gm", "full", "float32", _negated_first("precisions_cholesky_"),
        r"precisions_cholesky_ has a diagonal entry <= 0 \(component 0\)"),
    "negative tied Cholesky diagonal": (
        "gm", "tied", "float64", _scaled("precisions_cholesky_", -1.0),
        "precisions_cholesky_ has a diagonal entry <= 0"),
    "negative diag Cholesky factor": ("gm", "diag", "float64",
                                      _negated_first("precisions_cholesky_"),
                                      "precisions_cholesky_ has entries <= 0"),
    "zero spherical Cholesky factor": ("gm", "spherical", "float64",
                                       _scaled("precisions_cholesky_", 0.0),
                                       "precisions_cholesky_ has entries <= 0"),
    "precisions not from the factors": ("gm", "full", "float32",
                                        _scaled("precisions_", 1.001),
                                        "precisions_ do not match precisions_cholesky_"),
    "diag precisions not from the factors": (
        "gm", "diag", "float64", _scaled("precisions_", 1.001),
        "precisions_ do not match precisions_cholesky_"),
    "string converged_": ("gm", "full", "float64", _set(converged_="yes"),
                          "converged_ is 'yes'.*expected a bool"),
    "integer converged_": ("gm", "full", "float64", _set(converged_=1),
                           "converged_ is 1.*expected a bool"),
    "negative n_iter_": ("gm", "full", "float64", _set(n_iter_=-1),
                         "n_iter_ is -1, expected an integer >= 0"),
    "fractional n_iter_": ("gm", "full", "float64", _set(n_iter_=2.5),
                           r"n_iter_ is 2\.5 \(float64\), expected an integer"),
    "NaN lower_bound_": ("gm", "full", "float64", _set(lower_bound_=np.nan),
                         "lower_bound_ is nan, expected a finite float"),
    "-inf lower_bound_ after iterations": ("gm", "full", "float64",
                                           _set(lower_bound_=-np.inf),
                                           "lower_bound_ is -inf"),
    "infinite lower_bounds_": ("gm", "full", "float64",
                               _set(lower_bounds_=[-3.0, np.inf]),
                               "lower_bounds_ is not finite"),
    "no features": ("gm", "full", "float64", _set(n_features_in_=0),
                    "n_features_in_ is 0, expected an integer >= 1"),
    "negative reseed count": ("gm", "full", "float64", _set(n_reseeded_=-2),
                              "n_reseeded_ is -2"),
    "negative mean_precision_": ("bgm", "full", "float64", _scaled("mean_precision_", -1.0),
                                 "mean_precision_ has entries <= 0"),
    "too few degrees_of_freedom_": ("bgm", "full", "float64",
                                    _set(degrees_of_freedom_=[5.0, 1.5, 5.0]),
                                    "degrees_of_freedom_ has entries <= 2"),
    "too few tied degrees_of_freedom_": ("bgm", "tied", "float32",
                                         _set(degrees_of_freedom_=np.float32(2.0)),
                                         "degrees_of_freedom_ has entries <= 2"),
    "negative weight_concentration_": ("bgm", "diag", "float64",
                                       _scaled("weight_concentration_", -1.0),
                                       "weight_concentration_ has entries <= 0"),
    "covariance_prior_ of the wrong shape": ("bgm", "full", "float64",
                                             _set(covariance_prior_=np.eye(2)),
                                             r"covariance_prior_ has shape \(2, 2\), "
                                             r"expected \(3, 3\)"),
    "spherical covariance_prior_ of the wrong shape": (
        "bgm", "spherical", "float64", _set(covariance_prior_=[1.0, 2.0, 3.0]),
        r"covariance_prior_ has shape \(3,\), expected \(\)"),
    "unsymmetric covariance_prior_": ("bgm", "tied", "float64", _unsymmetric_prior,
                                      "covariance_prior_ is not symmetric"),
    "negative diag covariance_prior_": ("bgm", "diag", "float64",
                                        _scaled("covariance_prior_", -1.0),
                                        "covariance_prior_ has a negative variance"),
    "zero mean_precision_prior_": ("bgm", "full", "float64",
                                   _set(mean_precision_prior_=0.0),
                                   "mean_precision_prior_ has entries <= 0"),
    "negative weight_concentration_prior_": ("bgm", "full", "float64",
                                             _set(weight_concentration_prior_=-1.0),
                                             "weight_concentration_prior_ has entries <= 0"),
    "too few degrees_of_freedom_prior_": ("bgm", "spherical", "float64",
                                          _set(degrees_of_freedom_prior_=2),
                                          "degrees_of_freedom_prior_ has entries <= 2"),
    "unknown weight_concentration_prior_type": (
        "bgm", "full", "float64",
        lambda c: _with_params(c, weight_concentration_prior_type="pitman_yor"),
        "unknown weight_concentration_prior_type 'pitman_yor'"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_values_no_fit_produces_are_refused(fitted, case, tmp_path):
    estimator, covariance_type, dtype, change, message = BAD_VALUES[case]
    path = tmp_path / "m.npz"
    fitted(estimator, covariance_type, np.dtype(dtype).type).save(path)
    with np.load(path) as f:
        content = {k: f[k] for k in f.files}
    _rewrite(path, **change(content))
    with pytest.raises(ValueError) as excinfo:
        fastem.load(path)
    text = str(excinfo.value)
    assert text.startswith(f"fastem: {path}: "), text
    assert re.search(message, text), text


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_covariances_that_are_not_the_precisions_inverses_are_refused(
        fitted, covariance_type, dtype, tmp_path):
    # one per cent off: well beyond rounding, even of float32
    path = tmp_path / "m.npz"
    fitted("gm", covariance_type, dtype).save(path)
    with np.load(path) as f:
        covariances = f["covariances_"] * 1.01
    _rewrite(path, covariances_=covariances)
    with pytest.raises(ValueError, match="covariances_ are not the inverses of precisions_"):
        fastem.load(path)


# -- files that are not model files, or would exhaust memory ----------------------------------
def _npy_bytes(array, shape=None):
    """array as a .npy file's bytes, its header declaring ``shape`` if given."""
    header = np.lib.format.header_data_from_array_1_0(array)
    if shape is not None:
        header["shape"] = shape
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, header)
    f.write(array.tobytes())
    return f.getvalue()


def _rewrite_members(path, members, compression=zipfile.ZIP_STORED):
    """Replace or add members of the zip archive at path, as raw bytes."""
    with zipfile.ZipFile(path) as z:
        content = {name: z.read(name) for name in z.namelist()}
    content.update(members)
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, raw in content.items():
            z.writestr(name, raw)


def test_a_huge_declared_shape_is_refused_before_reading(data, tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    # 8 TiB declared, 16 bytes held
    _rewrite_members(path, {"weights_.npy": _npy_bytes(np.ones(2), shape=(2**40,))})
    monkeypatch.setattr(np.lib.format, "read_array", _no_array_is_read)
    with pytest.raises(ValueError, match=r"corrupt: weights_ declares shape \(1099511627776,\)"):
        fastem.load(path)


def _no_array_is_read(*args, **kwargs):
    raise AssertionError("an array was read")


def test_a_zip_bomb_is_refused_before_reading(data, tmp_path, monkeypatch):
    import fastem._io

    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    # 32 MB of zeros deflate to some 32 KB; the real allowance is larger
    # than a test should inflate, so it is lowered to 1 MB
    bomb = _npy_bytes(np.zeros(4 * 2**20))
    _rewrite_members(path, {"padding.npy": bomb}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    monkeypatch.setattr(fastem._io, "_EXPANSION_ALLOWANCE", 2**20)
    monkeypatch.setattr(np.lib.format, "read_array", _no_array_is_read)
    with pytest.raises(ValueError, match=r"corrupt or a zip bomb: its members declare \d+ "
                                         r"bytes uncompressed"):
        fastem.load(path)


def test_a_member_that_is_no_array_is_refused(data, tmp_path):
    path = tmp_path / "m.npz"
    GaussianMixture(2, random_state=0).fit(data).save(path)
    _rewrite_members(path, {"notes.txt": b"hello"})
    with pytest.raises(ValueError, match="not a fastem model file .*'notes.txt', not an array"):
        fastem.load(path)


@pytest.mark.parametrize("kind", ["csv", "npy", "empty"])
def test_a_data_file_is_not_a_model_file(data, kind, tmp_path):
    path = tmp_path / f"data.{kind}"
    if kind == "csv":
        np.savetxt(path, data, delimiter=",")
    elif kind == "npy":
        np.save(path, data)
    else:
        path.write_bytes(b"")
    with pytest.raises(ValueError) as excinfo:
        fastem.load(path)
    text = str(excinfo.value)
    assert f"{path} is not a fastem model file (" in text
    assert "a .npz archive written by fastem's save / fastem fit" in text
    assert "pickle" not in text
    assert ("a .npy array" in text) == (kind == "npy")


def test_fastem_info_of_a_csv_file_says_it_is_not_a_model(data, tmp_path):
    from clitools import run_fastem

    path = tmp_path / "data.csv"
    np.savetxt(path, data, delimiter=",")
    result = run_fastem("info", path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"{path} is not a fastem model file" in result.stderr
    assert "pickle" not in result.stderr

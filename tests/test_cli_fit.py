"""fastem fit / predict / info as a user runs them: the real console script
in a subprocess, on every data format, with one-line errors."""
import numpy as np
import pytest

import fastem
from clitools import run_fastem


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(3)
    return np.vstack([rng.normal(c, 1.0, (200, 2)) for c in ([0, 0], [6, 0], [0, 6])])


def _write(kind, X, tmp_path):
    if kind == "npy":
        path = tmp_path / "X.npy"
        np.save(path, X)
    elif kind == "csv":
        path = tmp_path / "X.csv"
        np.savetxt(path, X, delimiter=",")
    elif kind == "csv-header":
        path = tmp_path / "Xh.csv"
        np.savetxt(path, X, delimiter=",", header="a,b", comments="")
    elif kind == "h5":
        h5py = pytest.importorskip("h5py")
        path = tmp_path / "X.h5"
        with h5py.File(path, "w") as f:
            f["data/X"] = X
    elif kind == "zarr":
        zarr = pytest.importorskip("zarr")
        path = tmp_path / "X.zarr"
        z = zarr.create_array(store=str(path), shape=X.shape, dtype=X.dtype, chunks=(100, 2))
        z[:] = X
    elif kind == "parquet":
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq
        path = tmp_path / "X.parquet"
        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1]}), path)
    return path


@pytest.mark.parametrize("kind", ["npy", "csv", "csv-header", "h5", "zarr", "parquet"])
def test_fit_every_format_gives_the_same_model(kind, blobs, tmp_path):
    path = _write(kind, blobs, tmp_path)
    out = tmp_path / "m.gmm.npz"
    result = run_fastem("fit", path, "-k", 3, "--seed", 0, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "model written to" in result.stdout
    gm = fastem.load(out)
    ref = fastem.GaussianMixture(3, random_state=0).fit(blobs)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-8)


def test_fit_range_prints_the_selection_table(blobs, tmp_path):
    path = _write("npy", blobs, tmp_path)
    result = run_fastem("fit", path, "-k", "1:4", "--covariance-type", "full,diag",
                        "--seed", 0, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "* minimum BIC" in result.stdout
    assert result.stdout.count("full") >= 4 and result.stdout.count("diag") >= 4
    gm = fastem.load(tmp_path / "X.gmm.npz")  # default name beside the cwd
    assert gm.n_components == 3


def test_predict_and_info(blobs, tmp_path):
    path = _write("csv", blobs, tmp_path)
    model = tmp_path / "m.npz"
    assert run_fastem("fit", path, "-k", 3, "--seed", 0, "--out", model).returncode == 0
    gm = fastem.load(model)
    labels = run_fastem("predict", model, path)
    assert labels.returncode == 0, labels.stderr
    np.testing.assert_array_equal(np.array(labels.stdout.split(), dtype=int),
                                  gm.predict(blobs))
    out = tmp_path / "p.npy"
    proba = run_fastem("predict", model, path, "--proba", "--out", out)
    assert proba.returncode == 0, proba.stderr
    np.testing.assert_allclose(np.load(out), gm.predict_proba(blobs), rtol=1e-12)
    info = run_fastem("info", model)
    assert info.returncode == 0 and "K = 3" in info.stdout and "means" in info.stdout


def _one_line_error(result, *needles):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_errors_are_one_line(blobs, tmp_path):
    _one_line_error(run_fastem("fit", tmp_path / "none.npy", "-k", 2), "no such file")
    bad = blobs.copy()
    bad[10, 1] = np.nan
    _one_line_error(run_fastem("fit", _write("npy", bad, tmp_path), "-k", 2), "NaN")
    _one_line_error(run_fastem("fit", _write("csv", blobs[:2], tmp_path), "-k", 5),
                    "n_samples")
    _one_line_error(run_fastem("fit", "data.txt", "-k", 2), "unknown data format")
    _one_line_error(run_fastem("fit", "X.npy", "-k", "0"), "-k")
    _one_line_error(run_fastem("fit", "X.npy", "-k", 2, "--no-such"), "unrecognized")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk" * 50)
    _one_line_error(run_fastem("predict", junk, _write("npy", blobs, tmp_path)),
                    "not a fastem model file")
    np.save(tmp_path / "wrong.npy", np.zeros((5, 3)))
    model = tmp_path / "m.npz"
    run_fastem("fit", _write("npy", blobs, tmp_path), "-k", 2, "--out", model)
    _one_line_error(run_fastem("predict", model, tmp_path / "wrong.npy"), "features")
    h5 = _write("h5", blobs, tmp_path)
    _one_line_error(run_fastem("fit", h5, "-k", 2, "--dataset", "nope"), "no dataset")


def test_debug_shows_the_traceback(tmp_path):
    result = run_fastem("--debug", "fit", tmp_path / "none.npy", "-k", 2)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_fit_progress_bar(blobs, tmp_path):
    pytest.importorskip("tqdm")
    path = _write("npy", blobs, tmp_path)
    result = run_fastem("fit", path, "-k", 3, "--seed", 0, "--max-iter", 5, "--tol", 0,
                        "--progress", "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    assert "5/5" in result.stderr and "rows_per_s" in result.stderr


def test_fit_with_weights_from_a_file_or_a_column(blobs, tmp_path):
    weights = np.random.default_rng(4).integers(0, 4, size=len(blobs)).astype(float)
    ref = fastem.GaussianMixture(3, random_state=0).fit(blobs, sample_weight=weights)
    np.save(tmp_path / "w.npy", weights)
    np.savetxt(tmp_path / "w.csv", weights)
    np.savetxt(tmp_path / "Xw.csv", np.column_stack([blobs[:, 0], weights, blobs[:, 1]]),
               delimiter=",", header="a,count,b", comments="")
    runs = {
        "npy file": (_write("npy", blobs, tmp_path), tmp_path / "w.npy"),
        "csv file": (_write("csv", blobs, tmp_path), tmp_path / "w.csv"),
        "column by name": (tmp_path / "Xw.csv", "count"),
        "column by position": (tmp_path / "Xw.csv", "1"),
    }
    for name, (data, spec) in runs.items():
        out = tmp_path / "m.npz"
        result = run_fastem("fit", data, "-k", 3, "--seed", 0, "--weights", spec,
                            "--out", out)
        assert result.returncode == 0, (name, result.stderr)
        gm = fastem.load(out)
        assert gm.n_features_in_ == 2, name
        np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-8, err_msg=name)
        np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10,
                                   err_msg=name)
    # a selection over K is weighted too: its BIC uses n = sum of the weights
    result = run_fastem("fit", tmp_path / "Xw.csv", "-k", "2:3", "--seed", 0,
                        "--weights", "count", "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    bic = fastem.GaussianMixture(3, random_state=0).fit(
        blobs, sample_weight=weights).bic(blobs, sample_weight=weights)
    assert f"{bic:.3f}" in result.stdout


def test_bad_weights_on_the_command_line_are_one_line_errors(blobs, tmp_path):
    data = _write("csv-header", blobs, tmp_path)
    _one_line_error(run_fastem("fit", data, "-k", 2, "--weights", "w"),
                    "not a file, nor a column", "a, b")
    np.save(tmp_path / "neg.npy", -np.ones(len(blobs)))
    _one_line_error(run_fastem("fit", data, "-k", 2, "--weights", tmp_path / "neg.npy"),
                    "sample_weight must be >= 0")
    np.save(tmp_path / "short.npy", np.ones(5))
    _one_line_error(run_fastem("fit", _write("npy", blobs, tmp_path), "-k", 2,
                               "--weights", tmp_path / "short.npy"),
                    "5 entries for 600 rows")
    _one_line_error(run_fastem("fit", _write("npy", blobs, tmp_path), "-k", 2,
                               "--weights", "count"),
                    "weights column can be taken from CSV or Parquet")


def test_fit_and_impute_with_missing_values(tmp_path):
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(c, 1.0, (200, 3)) for c in (0.0, 6.0)])
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.5
    csv = tmp_path / "gaps.csv"
    with open(csv, "w") as f:
        f.write("a,b,c\n")
        for row in X:
            f.write(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n")
    model = tmp_path / "m.npz"
    result = run_fastem("fit", csv, "-k", 2, "--seed", 0, "--missing", "em", "--out", model)
    assert result.returncode == 0, result.stderr
    gm = fastem.load(model)
    ref = fastem.GaussianMixture(2, random_state=0, missing="em").fit(X)
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-12)
    filled = tmp_path / "filled.npy"
    result = run_fastem("impute", model, csv, "--out", filled)
    assert result.returncode == 0, result.stderr
    assert f"{int(np.isnan(X).sum())} missing values of 400 rows" in result.stdout
    np.testing.assert_allclose(np.load(filled), ref.impute(X), rtol=1e-12)
    labels = run_fastem("predict", model, csv)
    np.testing.assert_array_equal(np.array(labels.stdout.split(), dtype=int),
                                  ref.predict(X))
    _one_line_error(run_fastem("fit", csv, "-k", 2), "only with --missing em")
    np.save(tmp_path / "gaps.npy", X)
    _one_line_error(run_fastem("fit", tmp_path / "gaps.npy", "-k", 2), "--missing em")


def test_fit_chooses_by_cross_validation(blobs, tmp_path):
    path = _write("npy", blobs, tmp_path)
    result = run_fastem("fit", path, "-k", "1:4", "--criterion", "cv", "--folds", 3,
                        "--seed", 0, "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    assert "* maximum cv_mean" in result.stdout
    sel = fastem.select_model(blobs, n_components=range(1, 5), covariance_types=("full",),
                              criterion="cv", cv=3, random_state=0)
    gm = fastem.load(tmp_path / "m.npz")
    assert gm.n_components == sel.best_.n_components
    assert f"{sel.table[0]['cv_mean']:.5f}" in result.stdout


def test_fit_bayesian_switches_components_off(tmp_path):
    from fastem.datasets import load_faithful
    path = tmp_path / "faithful.npy"
    np.save(path, load_faithful())
    out = tmp_path / "b.npz"
    result = run_fastem("fit", path, "-k", 10, "--bayesian", "--seed", 0, "--max-iter", 500,
                        "--out", out)
    assert result.returncode == 0, result.stderr
    assert "K = 10 at most, 2 with weight >= 0.01" in result.stdout
    model = fastem.load(out)
    assert type(model) is fastem.BayesianGaussianMixture
    expected = fastem.BayesianGaussianMixture(n_components=10, random_state=0,
                                              max_iter=500).fit(load_faithful())
    np.testing.assert_array_equal(model.weights_, expected.weights_)
    info = run_fastem("info", out)
    assert info.returncode == 0 and "weight_concentration_prior_type" in info.stdout
    plot = run_fastem("plot", out, path, "--out", tmp_path / "b.png")
    assert plot.returncode == 0, plot.stderr
    impute = run_fastem("impute", out, path, "--out", tmp_path / "i.npy")
    assert impute.returncode == 1 and "no missing values to fill" in impute.stderr


def test_fit_bayesian_options(blobs, tmp_path):
    path = _write("npy", blobs, tmp_path)
    out = tmp_path / "b.npz"
    result = run_fastem("fit", path, "-k", 4, "--bayesian", "--prior-type",
                        "dirichlet_distribution", "--weight-concentration-prior", 0.01,
                        "--seed", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    model = fastem.load(out)
    assert model.weight_concentration_prior_type == "dirichlet_distribution"
    assert model.weight_concentration_prior == 0.01
    chosen = run_fastem("fit", path, "-k", "2:3", "--bayesian", "--criterion", "cv",
                        "--folds", 3, "--seed", 0, "--out", tmp_path / "c.npz")
    assert chosen.returncode == 0, chosen.stderr
    assert "cv_mean" in chosen.stdout
    assert type(fastem.load(tmp_path / "c.npz")) is fastem.BayesianGaussianMixture
    for args, message in ((("--prior-type", "dirichlet_distribution"), "need --bayesian"),
                          (("--bayesian", "--missing", "em"), "not available with --bayesian")):
        bad = run_fastem("fit", path, "-k", 2, *args, "--out", tmp_path / "x.npz")
        assert bad.returncode == 1 and message in bad.stderr
        assert not (tmp_path / "x.npz").exists()

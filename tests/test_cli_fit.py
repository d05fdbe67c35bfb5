"""fastem fit / predict / info as a user runs them: the real console script
in a subprocess, on every data format, with one-line errors."""
import importlib.util
import re

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
    assert f"read {len(blobs)} rows x 2 columns from {path}" in result.stdout
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
    assert "error: fastem:" not in result.stderr  # one prefix, not two
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
                            "--out", out, "--force")
        assert result.returncode == 0, (name, result.stderr)
        gm = fastem.load(out)
        assert gm.n_features_in_ == 2, name
        np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-8, err_msg=name)
        np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10,
                                   err_msg=name)
    # a selection over K is weighted too: its BIC uses n = sum of the weights
    result = run_fastem("fit", tmp_path / "Xw.csv", "-k", "2:3", "--seed", 0,
                        "--weights", "count", "--out", tmp_path / "m.npz", "--force")
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


# Files the command line must not destroy: an output never replaces an input,
# nor (without --force) any existing file, and is checked before any work.

def test_out_never_replaces_an_input(blobs, tmp_path):
    data = _write("npy", blobs, tmp_path)
    csv = _write("csv", blobs, tmp_path)
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.npy"
    link.symlink_to(data)
    model = tmp_path / "m.npz"
    assert run_fastem("fit", data, "-k", 1, "--out", model).returncode == 0
    before = {path: path.read_bytes() for path in (data, csv, model)}
    runs = [
        (("fit", data, "-k", 1, "--out", data), "the data file"),
        # another spelling of the same path, and a symlink to it; --force does not matter
        (("fit", data, "-k", 1, "--out", tmp_path / "sub" / ".." / "X.npy", "--force"),
         "the data file"),
        (("fit", link, "-k", 1, "--out", data, "--force"), "the data file"),
        (("fit", csv, "-k", 1, "--weights", data, "--out", link, "--force"),
         "the weights file"),
        (("predict", model, csv, "--out", csv, "--force"), "the data file"),
        (("predict", model, data, "--out", model, "--force"), "the model file"),
        (("impute", model, csv, "--out", csv, "--force"), "the data file"),
    ]
    for args, role in runs:
        _one_line_error(run_fastem(*args), "--out", f"is {role}")
    for path, content in before.items():
        assert path.read_bytes() == content, path


def test_default_model_names_keep_the_whole_stem(tmp_path):
    rng = np.random.default_rng(6)
    first, second = rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))
    for name, X in (("run.1.csv", first), ("run.2.csv", second)):
        np.savetxt(tmp_path / name, X, delimiter=",")
        result = run_fastem("fit", name, "-k", 1, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    for name, X in (("run.1.gmm.npz", first), ("run.2.gmm.npz", second)):
        np.testing.assert_allclose(fastem.load(tmp_path / name).means_[0], X.mean(axis=0),
                                   rtol=1e-10)


@pytest.mark.parametrize("command", ["fit", "fit (default name)", "predict", "impute", "plot"])
def test_an_existing_output_is_replaced_only_with_force(command, blobs, tmp_path):
    if command == "plot":
        pytest.importorskip("matplotlib")
    data = _write("npy", blobs, tmp_path)
    model = tmp_path / "model.npz"
    assert run_fastem("fit", data, "-k", 2, "--seed", 0, "--missing", "em",
                      "--out", model).returncode == 0
    args, out = {
        "fit": (("fit", data, "-k", 1, "--out", "m.npz"), "m.npz"),
        "fit (default name)": (("fit", data, "-k", 1), "X.gmm.npz"),
        "predict": (("predict", model, data, "--out", "p.csv"), "p.csv"),
        "impute": (("impute", model, data, "--out", "i.npy"), "i.npy"),
        "plot": (("plot", model, data, "--out", "p.png"), "p.png"),
    }[command]
    (tmp_path / out).write_bytes(b"keep me")
    _one_line_error(run_fastem(*args, cwd=tmp_path), out, "exists", "--force")
    assert (tmp_path / out).read_bytes() == b"keep me"
    result = run_fastem(*args, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / out).read_bytes() != b"keep me"


def test_an_unwritable_out_fails_before_any_work(blobs, tmp_path):
    data = _write("npy", blobs, tmp_path)
    nowhere = tmp_path / "no" / "such" / "dir"
    result = run_fastem("fit", data, "-k", 2, "--out", nowhere / "m.npz")
    _one_line_error(result, str(nowhere))
    assert result.stdout == ""  # neither read nor fitted
    _one_line_error(run_fastem("fit", data, "-k", 2, "--out", tmp_path), "is a directory")
    model = tmp_path / "m.npz"
    assert run_fastem("fit", data, "-k", 2, "--out", model).returncode == 0
    for command in ("predict", "impute"):
        _one_line_error(run_fastem(command, model, data, "--out", nowhere / "out.npy"),
                        str(nowhere))


def test_dataset_only_for_hdf5(blobs, tmp_path):
    model = tmp_path / "m.npz"
    assert run_fastem("fit", _write("npy", blobs, tmp_path), "-k", 1,
                      "--out", model).returncode == 0
    for kind in ("npy", "csv", "parquet"):
        data = _write(kind, blobs, tmp_path)
        _one_line_error(run_fastem("fit", data, "-k", 1, "--dataset", "X",
                                   "--out", tmp_path / "d.npz"), "--dataset", "HDF5")
        _one_line_error(run_fastem("predict", model, data, "--dataset", "X"),
                        "--dataset", "HDF5")


def test_output_into_a_closed_pipe_ends_quietly(blobs, tmp_path):
    import subprocess

    from clitools import fastem_command

    model = tmp_path / "m.npz"
    assert run_fastem("fit", _write("npy", blobs, tmp_path), "-k", 3, "--seed", 0,
                      "--out", model).returncode == 0
    big = tmp_path / "big.npy"
    np.save(big, np.tile(blobs, (200, 1)))  # MBs of output: far more than a pipe holds
    # `fastem predict ... | head -1`: the reader takes one line and goes
    proc = subprocess.Popen(fastem_command() + ["predict", str(model), str(big), "--proba"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert first.count(b",") == 2
    assert err == ""  # no "Broken pipe", no "Exception ignored", no traceback


# CSV files: what is data, what is a header, what is missing, and where a
# problem is (the reader itself is tested in test_cli_data.py)

ROWS = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 9.0]])
READ = re.compile(r"^read (\d+) rows x (\d+) columns from (.+?)(?: \((.*)\))?$", re.MULTILINE)


def _csv(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode())  # byte for byte: a BOM, quotes, line ends
    return path


def _read_report(result):
    """(rows, columns, note) of the line saying what was read."""
    match = READ.search(result.stdout)
    assert match, result.stdout + result.stderr
    return int(match[1]), int(match[2]), match[4]


@pytest.mark.parametrize("text, options, note", [
    ("\ufeff1,2\n3,5\n4,9\n", [], "no header"),
    ("\ufeffa,b\n1,2\n3,5\n4,9\n", [], "header: a, b"),
    ("1,2,\n3,5,\n4,9,\n", [], "no header"),
    ("a,b,\n1,2,\n3,5,\n4,9,\n", [], "header: a, b"),
    ('"a","b"\r\n"1","2"\r\n"3","5"\r\n"4","9"\r\n', [], "header: a, b"),
    ("10,20\n1,2\n3,5\n4,9\n", ["--header"], "header: 10, 20"),
    ("a,b\n1,2\n3,5\n4,9\n", ["--header"], "header: a, b"),
    ("1,2\n3,5\n4,9\n", ["--no-header"], "no header"),
], ids=["BOM", "BOM and header", "trailing commas", "trailing commas and header",
        "quoted", "numeric header", "--header", "--no-header"])
def test_fit_reads_every_row_of_a_csv(text, options, note, tmp_path):
    data = _csv(tmp_path, text)
    result = run_fastem("fit", data, "-k", 1, *options, "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(fastem.load(tmp_path / "m.npz").means_[0], ROWS.mean(axis=0),
                               rtol=1e-12)
    assert _read_report(result) == (3, 2, note)


def test_a_numeric_first_line_is_data_unless_header_is_given(tmp_path):
    data = _csv(tmp_path, "10,20\n1,2\n3,5\n4,9\n")
    result = run_fastem("fit", data, "-k", 1, "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    assert _read_report(result) == (4, 2, "no header")


def test_missing_values_on_line_1_are_data(tmp_path):
    data = _csv(tmp_path, "1,NA\n3,5\n4,9\n")
    _one_line_error(run_fastem("fit", data, "-k", 1, "--out", tmp_path / "n.npz"),
                    "line 1, column 2", "--missing em")
    result = run_fastem("fit", data, "-k", 1, "--missing", "em", "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    assert _read_report(result) == (3, 2, "no header")


@pytest.mark.parametrize("text, options, where", [
    ('"a","b"\n"1","2"\n"3","x"\n', [], "line 3, column 2 (b)"),
    ('"first\nname",b\n1,2\n3,x\n', [], "line 4, column 2 (b)"),
    ("a,b\n1,2\n\n3,x\n", [], "line 4, column 2 (b)"),
    ("a,b\n1,2\n3,\n", [], "line 3, column 2 (b)"),
    ("a,b\n1,2\n3,4,\n", [], "line 3"),
    ("a,b\n1,2\n", ["--no-header"], "line 1, column 1"),
], ids=["quoted", "quoted line end", "blank line", "empty cell", "extra cell", "--no-header"])
def test_csv_errors_name_the_line_and_column(text, options, where, tmp_path):
    data = _csv(tmp_path, text)
    _one_line_error(run_fastem("fit", data, "-k", 1, *options), f"{data}, {where}")


def test_header_options_only_for_csv(blobs, tmp_path):
    _one_line_error(run_fastem("fit", _write("npy", blobs, tmp_path), "-k", 1, "--header"),
                    "--header", "CSV")


# Which columns are features: a pandas index is not, nor a weights column;
# --columns chooses them, and every command says which it used

def _pandas_parquet(path, columns, index):
    """A Parquet file as pandas' to_parquet writes a frame with an index that
    is not a range: the index a column, named in the schema's pandas metadata."""
    import json

    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    table = pa.table({**columns, "__index_level_0__": index})
    meta = {"index_columns": ["__index_level_0__"], "columns": [], "pandas_version": "2.2.0"}
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(meta)}), path)


def test_a_pandas_index_is_not_a_feature(blobs, tmp_path):
    ref = fastem.GaussianMixture(3, random_state=0).fit(blobs)
    # rows in the order of their cluster: an index column would be a feature
    # that follows the clusters
    index = np.arange(len(blobs)) * 10
    parquet = tmp_path / "X.parquet"
    _pandas_parquet(parquet, {"a": blobs[:, 0], "b": blobs[:, 1]}, index)
    csv = tmp_path / "X.csv"
    np.savetxt(csv, np.column_stack([index, blobs]), delimiter=",", header=",a,b",
               comments="")
    for data, note in ((parquet, "columns: a, b; dropped the index column __index_level_0__"),
                       (csv, "header: a, b; dropped the unnamed first column, an index")):
        out = tmp_path / f"{data.suffix[1:]}.npz"
        result = run_fastem("fit", data, "-k", 3, "--seed", 0, "--out", out)
        assert result.returncode == 0, result.stderr
        assert _read_report(result) == (len(blobs), 2, note)
        gm = fastem.load(out)
        assert gm.n_features_in_ == 2
        np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-8)
        labels = run_fastem("predict", out, data)
        assert labels.returncode == 0, labels.stderr
        np.testing.assert_array_equal(np.array(labels.stdout.split(), dtype=int),
                                      ref.predict(blobs))


def test_parquet_columns_are_named_in_the_report(blobs, tmp_path):
    data = _write("parquet", blobs, tmp_path)
    result = run_fastem("fit", data, "-k", 1, "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    assert _read_report(result) == (len(blobs), 2, "columns: a, b")


@pytest.fixture
def four_columns(blobs, tmp_path):
    """A CSV of columns a, count, b, c: features a and b, row weights in
    count, and c, which the fits leave out."""
    weights = np.random.default_rng(4).integers(0, 4, size=len(blobs)).astype(float)
    noise = np.random.default_rng(5).normal(size=len(blobs))
    path = tmp_path / "four.csv"
    np.savetxt(path, np.column_stack([blobs[:, 0], weights, blobs[:, 1], noise]),
               delimiter=",", header="a,count,b,c", comments="")
    return path, weights


@pytest.mark.parametrize("options, note, weighted", [
    (["--columns", "a,b"], "header: a, count, b, c; columns: a, b", False),
    (["--columns", "0,2"], "header: a, count, b, c; columns: a, b", False),
    (["--columns", "a, b", "--weights", "count"],
     "header: a, count, b, c; columns: a, b; weights: count", True),
    (["--weights", "1", "--columns", "0,2"],
     "header: a, count, b, c; columns: a, b; weights: count", True),
], ids=["names", "positions", "with a weights column", "positions, weights by position"])
def test_columns_choose_the_features(options, note, weighted, four_columns, blobs,
                                     tmp_path):
    data, weights = four_columns
    ref = fastem.GaussianMixture(3, random_state=0).fit(
        blobs, sample_weight=weights if weighted else None)
    model = tmp_path / "m.npz"
    result = run_fastem("fit", data, "-k", 3, "--seed", 0, *options, "--out", model)
    assert result.returncode == 0, result.stderr
    assert _read_report(result) == (len(blobs), 4, note)
    gm = fastem.load(model)
    assert gm.n_features_in_ == 2
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-8)


def test_predict_impute_and_plot_take_the_model_s_columns(four_columns, blobs, tmp_path):
    data, _ = four_columns
    model = tmp_path / "m.npz"
    assert run_fastem("fit", data, "-k", 3, "--seed", 0, "--missing", "em",
                      "--columns", "a,b", "--out", model).returncode == 0
    gm = fastem.load(model)
    labels = run_fastem("predict", model, data, "--columns", "a,b")
    assert labels.returncode == 0, labels.stderr
    np.testing.assert_array_equal(np.array(labels.stdout.split(), dtype=int),
                                  gm.predict(blobs))
    assert "columns: a, b" in labels.stderr
    impute = run_fastem("impute", model, data, "--columns", "0,2", "--out", tmp_path / "i.npy")
    assert impute.returncode == 0, impute.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "i.npy"), blobs)
    if importlib.util.find_spec("matplotlib"):
        plot = run_fastem("plot", model, data, "--columns", "a,b", "--out", tmp_path / "p.png")
        assert plot.returncode == 0, plot.stderr
        assert "columns: a, b" in plot.stdout
    # without --columns, the file has two columns more than the model
    for command in (("predict", model, data), ("impute", model, data, "--out", "i2.npy"),
                    ("plot", model, data, "--out", "p2.png")):
        _one_line_error(run_fastem(*command, cwd=tmp_path), "fitted on 2 columns",
                        "gives 4", "--columns")


def test_columns_of_a_streamed_file_by_position(blobs, tmp_path):
    data = tmp_path / "X3.npy"
    np.save(data, np.column_stack([blobs[:, 1], np.ones(len(blobs)), blobs[:, 0]]))
    result = run_fastem("fit", data, "-k", 3, "--seed", 0, "--columns", "2,0",
                        "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    assert _read_report(result) == (len(blobs), 3, "columns: 2, 0")
    ref = fastem.GaussianMixture(3, random_state=0).fit(blobs)
    np.testing.assert_allclose(fastem.load(tmp_path / "m.npz").means_, ref.means_, rtol=1e-8)


def test_bad_columns_are_one_line_errors(four_columns, blobs, tmp_path):
    data, _ = four_columns
    for columns, message in (("a,nope", "--columns a,nope: no column nope"),
                             ("0,7", "--columns 0,7: no column 7")):
        _one_line_error(run_fastem("fit", data, "-k", 1, "--columns", columns),
                        message, "its columns are a, count, b, c")
    _one_line_error(run_fastem("fit", _write("npy", blobs, tmp_path), "-k", 1,
                               "--columns", "a"),
                    "--columns a: no column a", "it has 2 columns (0-based positions)")
    _one_line_error(run_fastem("fit", data, "-k", 1, "--columns", "a,count",
                               "--weights", "count"),
                    "count", "weights", "not a feature")
    _one_line_error(run_fastem("fit", data, "-k", 1, "--columns", ","), "--columns")


def test_a_closed_pipe_does_not_stop_a_fit_writing_its_model(blobs, tmp_path):
    # the reader of the messages goes away before the first one (as
    # `fastem fit ... | head -0` would); unbuffered, every print meets it
    import os
    import subprocess

    from clitools import fastem_command
    path = _write("npy", blobs, tmp_path)
    out = tmp_path / "m.npz"
    process = subprocess.Popen([*fastem_command(), "fit", str(path), "-k", "3", "--seed", "0",
                                "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert err == b""
    expected = fastem.GaussianMixture(3, random_state=0).fit(blobs)
    np.testing.assert_allclose(fastem.load(out).means_, expected.means_, rtol=1e-12)

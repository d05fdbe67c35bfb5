"""select_model: every candidate fitted, criteria right, the best kept."""
import math

import numpy as np
import pytest

import fastem
from fastem import GaussianMixture


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(1)
    centers = np.array([[0, 0], [6, 0], [0, 6]])
    return np.vstack([rng.normal(c, 1.0, (400, 2)) for c in centers])


def test_table_and_best(blobs):
    sel = fastem.select_model(blobs, n_components=range(1, 6),
                              covariance_types=("full", "spherical"), random_state=0)
    assert len(sel.table) == 10
    assert (sel.best_.n_components, sel.best_.covariance_type) in {(3, "full"),
                                                                 (3, "spherical")}
    best = sel.table[sel.best_index_]
    assert best["bic"] == min(row["bic"] for row in sel.table)
    text = str(sel)
    assert text.count("\n") == 11 and "* minimum BIC" in text


def test_criteria_match_their_definitions(blobs):
    sel = fastem.select_model(blobs, n_components=[2], covariance_types=["diag"],
                              random_state=0)
    row, gm = sel.table[0], sel.best_
    assert row["bic"] == pytest.approx(gm.bic(blobs), rel=1e-12)
    assert row["aic"] == pytest.approx(gm.aic(blobs), rel=1e-12)
    assert row["log_likelihood"] == pytest.approx(gm.score(blobs), rel=1e-12)
    resp = gm.predict_proba(blobs)
    icl = gm.bic(blobs) - 2 * np.log(resp.max(axis=1)).sum()
    assert row["icl"] == pytest.approx(icl, rel=1e-12)
    assert row["icl"] >= row["bic"]
    assert row["n_iter"] == gm.n_iter_ and row["converged"] == gm.converged_
    # the same as a plain fit with the same settings
    ref = GaussianMixture(2, covariance_type="diag", random_state=0).fit(blobs)
    assert gm.lower_bounds_ == ref.lower_bounds_


def test_icl_prefers_separated_clusters():
    # two overlapping components make one cluster: BIC counts 2, ICL 1
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(0, 1, 3000), rng.normal(1.5, 1, 3000)])[:, None]
    bic = fastem.select_model(X, n_components=range(1, 4), covariance_types=["full"],
                              random_state=0)
    icl = fastem.select_model(X, n_components=range(1, 4), covariance_types=["full"],
                              criterion="icl", random_state=0)
    assert icl.best_.n_components <= bic.best_.n_components


def test_failed_candidates_stay_in_the_table(blobs):
    sel = fastem.select_model(blobs[:5], n_components=[1, 10], covariance_types=["full"])
    assert sel.best_.n_components == 1
    failed = sel.table[1]
    assert failed["error"] and math.isnan(failed["bic"])
    assert "failed" in str(sel)


def test_bad_arguments(blobs):
    with pytest.raises(ValueError, match="criterion"):
        fastem.select_model(blobs, criterion="xyz")
    with pytest.raises(ValueError, match="n_components"):
        fastem.select_model(blobs, n_components=[0, 1])


def test_to_dict_is_plain(blobs):
    import json
    sel = fastem.select_model(blobs, n_components=[1, 2], covariance_types=["tied"],
                              random_state=0)
    d = json.loads(json.dumps(sel.to_dict()))
    assert d["criterion"] == "bic" and len(d["table"]) == 2


def test_streamed_input(blobs, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, blobs)
    a = fastem.select_model(str(path), n_components=[2, 3], covariance_types=["full"],
                            random_state=0)
    b = fastem.select_model(blobs, n_components=[2, 3], covariance_types=["full"],
                            random_state=0)
    for ra, rb in zip(a.table, b.table, strict=True):
        assert ra["bic"] == pytest.approx(rb["bic"], rel=1e-8)
        assert ra["icl"] == pytest.approx(rb["icl"], rel=1e-8)


def test_callback_sees_every_iteration(blobs):
    seen = []
    gm = GaussianMixture(3, random_state=0, tol=0.0, max_iter=7,
                         callback=lambda it, lb, params: seen.append(
                             (it, lb, params["means"].shape)))
    gm.fit(blobs)
    assert [s[0] for s in seen] == list(range(1, 8))
    assert [s[1] for s in seen] == gm.lower_bounds_
    assert all(s[2] == (3, 2) for s in seen)
    gm.partial_fit(blobs[:100])
    assert seen[-1][0] == 1


def test_progress_bar_reports_rows_per_second(blobs, capsys):
    pytest.importorskip("tqdm")
    GaussianMixture(2, random_state=0, progress=True, tol=0.0, max_iter=3).fit(blobs)
    err = capsys.readouterr().err
    assert "3/3" in err and "rows_per_s" in err


def test_weighted_selection_fits_and_scores_with_the_weights(blobs):
    weights = np.random.default_rng(2).integers(0, 3, size=len(blobs)).astype(float)
    sel = fastem.select_model(blobs, n_components=[2, 3], covariance_types=("diag",),
                              random_state=0, sample_weight=weights)
    for row in sel.table:
        gm = GaussianMixture(row["n_components"], covariance_type="diag",
                             random_state=0).fit(blobs, sample_weight=weights)
        assert row["log_likelihood"] == pytest.approx(
            gm.score(blobs, sample_weight=weights), rel=1e-12)
        assert row["bic"] == pytest.approx(gm.bic(blobs, sample_weight=weights), rel=1e-12)
        resp = gm.predict_proba(blobs)
        icl = row["bic"] - 2 * np.log(resp.max(axis=1)) @ weights
        assert row["icl"] == pytest.approx(icl, rel=1e-10)
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        fastem.select_model(blobs, n_components=[2], sample_weight=-weights)


def test_cross_validation_equals_a_manual_k_fold(blobs, tmp_path):
    from sklearn.model_selection import KFold
    splitter = KFold(4, shuffle=True, random_state=7)
    sel = fastem.select_model(blobs, n_components=[2, 3, 4], covariance_types=("full",),
                              criterion="cv", cv=splitter, random_state=0)
    for row in sel.table:
        scores = []
        for train, test in splitter.split(blobs):
            gm = GaussianMixture(row["n_components"], random_state=0).fit(blobs[train])
            scores.append(gm.score(blobs[test]))
        assert row["cv_mean"] == pytest.approx(np.mean(scores), rel=1e-9)
        assert row["cv_std"] == pytest.approx(np.std(scores), rel=1e-6)
    best = sel.table[sel.best_index_]
    assert best["cv_mean"] == max(row["cv_mean"] for row in sel.table)
    # the winner is refitted on all rows, with its other criteria
    refit = GaussianMixture(best["n_components"], random_state=0).fit(blobs)
    np.testing.assert_allclose(sel.best_.means_, refit.means_, rtol=1e-12)
    assert best["bic"] == pytest.approx(refit.bic(blobs), rel=1e-12)
    assert "cv_mean" in str(sel) and "* maximum cv_mean" in str(sel)
    # a streamed input gives the same folds and scores (zero weights, no copies)
    np.save(tmp_path / "blobs.npy", blobs)
    streamed = fastem.select_model(str(tmp_path / "blobs.npy"), n_components=[2, 3, 4],
                                   covariance_types=("full",), criterion="cv",
                                   cv=splitter, random_state=0)
    np.testing.assert_allclose([r["cv_mean"] for r in streamed.table],
                               [r["cv_mean"] for r in sel.table], rtol=1e-10)


def test_cross_validation_folds_are_shuffled_by_random_state(blobs):
    a = fastem.select_model(blobs, n_components=[3], covariance_types=("diag",),
                            criterion="cv", cv=3, random_state=0)
    b = fastem.select_model(blobs, n_components=[3], covariance_types=("diag",),
                            criterion="cv", cv=3, random_state=0)
    assert a.table[0]["cv_mean"] == b.table[0]["cv_mean"]
    from sklearn.model_selection import KFold
    folds = KFold(3, shuffle=True, random_state=0).split(blobs)
    manual = [GaussianMixture(3, covariance_type="diag", random_state=0)
              .fit(blobs[train]).score(blobs[test]) for train, test in folds]
    assert a.table[0]["cv_mean"] == pytest.approx(np.mean(manual), rel=1e-9)
    with pytest.raises(ValueError, match="at least 2 folds"):
        fastem.select_model(blobs, n_components=[2], criterion="cv", cv=1)


@pytest.mark.parametrize("kind", ["npy", "dask"])
def test_shared_passes_give_the_sequential_fits_exactly(blobs, tmp_path, kind):
    if kind == "npy":
        np.save(tmp_path / "blobs.npy", blobs)
        data = str(tmp_path / "blobs.npy")
    else:
        da = pytest.importorskip("dask.array")
        data = da.from_array(blobs, chunks=(500, 2))
    weights = np.random.default_rng(3).uniform(0.5, 2, size=len(blobs))
    args = dict(n_components=range(1, 5), covariance_types=("full", "spherical"),
                random_state=0, sample_weight=weights, block_bytes=8000)
    shared = fastem.select_model(data, **args)
    alone = fastem.select_model(data, shared_pass=False, **args)
    for a, b in zip(shared.table, alone.table, strict=True):
        assert a["n_iter"] == b["n_iter"]
        for key in ("log_likelihood", "bic", "aic", "icl"):
            assert a[key] == b[key], (key, a, b)
    assert shared.best_index_ == alone.best_index_
    np.testing.assert_array_equal(shared.best_.means_, alone.best_.means_)


def test_shared_passes_read_the_data_once_per_iteration_of_the_grid(blobs):
    reads = []

    class Counted:
        shape, dtype = blobs.shape, blobs.dtype

        def __getitem__(self, rows):
            reads.append(rows)
            return blobs[rows]

    args = dict(n_components=range(1, 5), covariance_types=("diag",), random_state=0,
                init_params="random_from_data", block_bytes=8000)
    fastem.select_model(fastem.Streamed(Counted()), shared_pass=False, **args)
    alone = len(reads)
    reads.clear()
    sel = fastem.select_model(fastem.Streamed(Counted()), **args)
    shared = len(reads)
    blocks = -(-len(blobs) // (8000 // 16 // 256 * 256))  # whole 256-row chunks per block
    iterations = sum(row["n_iter"] for row in sel.table)
    longest = max(row["n_iter"] for row in sel.table)
    # one after another, each candidate reads its seed rows, its EM passes
    # and two scoring passes; shared, the EM passes of the longest fit and
    # one scoring pass serve all
    candidates = len(sel.table)
    assert alone - shared == (iterations - longest + 2 * candidates - 1) * blocks


def test_progress_bar_rows_per_second_is_the_fits_rate(blobs, capsys):
    # from the first iteration on, and never 0 (tqdm's own rate starts empty)
    import re
    GaussianMixture(2, random_state=0, progress=True, tol=0.0, max_iter=2).fit(blobs)
    rates = [float(r) for r in re.findall(r"rows_per_s=([0-9.e+]+)", capsys.readouterr().err)]
    assert rates and all(rate > 0 for rate in rates)

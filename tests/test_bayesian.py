"""BayesianGaussianMixture against scikit-learn's from the same data,
random_state and init_params (its own tests run on fastem's in
tests/test_sklearn_suite.py), on every input kind, in model files and in
select_model."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBayesian

import fastem
from fastem import BayesianGaussianMixture, Streamed
from fastem.datasets import load_faithful

COV_TYPES = ["full", "tied", "diag", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]
INITS = ["kmeans", "k-means++", "random", "random_from_data"]
# scikit-learn's fitted values, as fastem must give them
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_",
          "mean_precision_", "degrees_of_freedom_", "mean_prior_", "covariance_prior_",
          "weight_concentration_prior_", "mean_precision_prior_",
          "degrees_of_freedom_prior_")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 3))
    return np.vstack([rng.normal(size=(n, 3)) @ A + c
                      for n, c in ((300, 0.0), (250, 5.0), (200, -6.0))])


def _fit(estimator, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, **kwargs)


def _assert_same(ours, theirs, rtol=1e-8, atol=1e-10):
    np.testing.assert_allclose(np.ravel(ours.lower_bounds_), np.ravel(theirs.lower_bounds_),
                               rtol=rtol)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    for name in FITTED:
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name),
                                   rtol=rtol, atol=atol, err_msg=name)
    np.testing.assert_allclose(np.asarray(ours.weight_concentration_),
                               np.asarray(theirs.weight_concentration_), rtol=rtol, atol=atol)


@pytest.mark.parametrize("init_params", INITS)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_same_fit_as_scikit_learn(data, covariance_type, prior_type, init_params):
    params = dict(n_components=5, covariance_type=covariance_type, init_params=init_params,
                  weight_concentration_prior_type=prior_type, random_state=3, max_iter=25)
    ours = _fit(BayesianGaussianMixture(**params), data)
    theirs = _fit(SkBayesian(**params), data)
    _assert_same(ours, theirs)
    # scoring uses the same expected densities
    np.testing.assert_allclose(ours.score_samples(data), theirs.score_samples(data),
                               rtol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(data), theirs.predict_proba(data),
                               atol=1e-8)
    np.testing.assert_array_equal(ours.predict(data), theirs.predict(data))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_given_priors_as_scikit_learn(data, covariance_type):
    D = data.shape[1]
    covariance_prior = {"full": np.diag([1.0, 2.0, 3.0]) + 0.5,
                        "tied": np.diag([1.0, 2.0, 3.0]) + 0.5,
                        "diag": np.array([1.0, 2.0, 3.0]),
                        "spherical": 2.5}[covariance_type]
    params = dict(n_components=4, covariance_type=covariance_type, random_state=1,
                  max_iter=20, weight_concentration_prior=0.05, mean_precision_prior=0.3,
                  mean_prior=np.arange(D, dtype=float), degrees_of_freedom_prior=D + 1.5,
                  covariance_prior=covariance_prior,
                  weight_concentration_prior_type="dirichlet_distribution")
    _assert_same(_fit(BayesianGaussianMixture(**params), data),
                 _fit(SkBayesian(**params), data))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_data_as_scikit_learn(data, covariance_type):
    X = data.astype(np.float32)
    params = dict(n_components=4, covariance_type=covariance_type, random_state=0,
                  max_iter=10)
    ours = _fit(BayesianGaussianMixture(**params), X)
    theirs = _fit(SkBayesian(**params), X)
    np.testing.assert_allclose(ours.lower_bounds_, np.ravel(theirs.lower_bounds_), rtol=1e-4)
    assert ours.means_.dtype == np.float32
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_lower_bound_never_decreases(data, covariance_type):
    bgm = _fit(BayesianGaussianMixture(n_components=6, covariance_type=covariance_type,
                                       tol=0.0, max_iter=40, random_state=2,
                                       init_params="random"), data)
    bounds = np.asarray(bgm.lower_bounds_)
    assert len(bounds) == 40
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_weights_are_repeated_rows(data, covariance_type, prior_type):
    # from the same state (scikit-learn's after two iterations on the
    # repeated rows), weighted rows continue as scikit-learn on the repeats:
    # priors, entropy and statistics all weighted
    counts = np.random.default_rng(5).integers(1, 4, size=len(data))
    repeated = np.repeat(data, counts, axis=0)
    params = dict(n_components=4, covariance_type=covariance_type, random_state=0,
                  weight_concentration_prior_type=prior_type)
    start = _fit(SkBayesian(max_iter=2, **params), repeated)
    theirs = SkBayesian(max_iter=15, warm_start=True, **params)
    ours = BayesianGaussianMixture(max_iter=15, warm_start=True, **params)
    for model in (theirs, ours):
        for name in ("weight_concentration_", "mean_precision_", "means_",
                     "degrees_of_freedom_", "covariances_", "precisions_cholesky_",
                     "lower_bound_", "converged_"):
            setattr(model, name, getattr(start, name))
    _fit(theirs, repeated)
    _fit(ours, data, sample_weight=counts)
    _assert_same(ours, theirs)


def test_zero_weight_rows_change_nothing(data):
    far = np.vstack([data, np.full((20, 3), 1e6)])
    weights = np.r_[np.ones(len(data)), np.zeros(20)]
    params = dict(n_components=4, random_state=0, max_iter=15)
    plain = _fit(BayesianGaussianMixture(**params), data)
    weighted = _fit(BayesianGaussianMixture(**params), far, sample_weight=weights)
    np.testing.assert_allclose(weighted.lower_bounds_, plain.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, plain.means_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["npy", "memmap", "streamed", "dask"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_streamed_and_dask_inputs_fit_as_in_memory(data, covariance_type, kind, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, data)
    if kind == "npy":
        X = str(path)
    elif kind == "memmap":
        X = np.load(path, mmap_mode="r")
    elif kind == "streamed":
        X = Streamed(data)
    else:
        da = pytest.importorskip("dask.array")
        X = da.from_array(data, chunks=200)
    params = dict(n_components=4, covariance_type=covariance_type, random_state=0,
                  max_iter=15, block_bytes=20_000)
    plain = _fit(BayesianGaussianMixture(**params), data)
    other = _fit(BayesianGaussianMixture(**params), X)
    # the streamed priors are two passes where scikit-learn uses np.cov
    _assert_same(other, plain, rtol=1e-10, atol=1e-12)
    labels = other.predict(X)
    np.testing.assert_array_equal(np.asarray(labels), plain.predict(data))


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_model_file_round_trip(data, covariance_type, prior_type, dtype, tmp_path):
    X = data.astype(dtype)
    extra = {"spherical": {"covariance_prior": 2.0},
             "diag": {"mean_prior": np.zeros(3)}}.get(covariance_type, {})
    bgm = _fit(BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                       weight_concentration_prior_type=prior_type,
                                       random_state=0, max_iter=5, **extra), X)
    path = tmp_path / "m.npz"
    bgm.save(path)
    loaded = fastem.load(path)
    assert type(loaded) is BayesianGaussianMixture
    assert loaded.get_params().keys() == bgm.get_params().keys()
    for name in FITTED + ("lower_bounds_", "lower_bound_", "n_iter_", "converged_"):
        mine, theirs = getattr(bgm, name), getattr(loaded, name)
        np.testing.assert_array_equal(theirs, mine, err_msg=name)
        assert np.asarray(theirs).dtype == np.asarray(mine).dtype, name
    assert type(loaded.weight_concentration_) is type(bgm.weight_concentration_)
    np.testing.assert_array_equal(np.asarray(loaded.weight_concentration_),
                                  np.asarray(bgm.weight_concentration_))
    np.testing.assert_array_equal(loaded.predict_proba(X), bgm.predict_proba(X))
    with np.load(path) as archive:
        assert int(archive["fastem_format_version"]) == 2


def test_gaussian_mixture_files_keep_format_version_1(data, tmp_path):
    gm = fastem.GaussianMixture(2, random_state=0).fit(data)
    gm.save(tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz") as archive:
        assert int(archive["fastem_format_version"]) == 1
        assert "estimator" not in archive.files


def test_fit_predict_warm_start_and_n_init(data):
    params = dict(n_components=4, random_state=0, max_iter=200)
    labels = BayesianGaussianMixture(**params).fit_predict(data)
    bgm = BayesianGaussianMixture(**params).fit(data)
    np.testing.assert_array_equal(labels, bgm.predict(data))
    theirs = SkBayesian(n_init=3, **params).fit(data)
    _assert_same(BayesianGaussianMixture(n_init=3, **params).fit(data), theirs)
    # warm start: a further fit goes on from the fitted factors
    warm = _fit(BayesianGaussianMixture(warm_start=True, n_components=4, random_state=0,
                                        max_iter=3), data)
    first = list(warm.lower_bounds_)
    _fit(warm, data)
    assert warm.lower_bounds_[0] >= first[-1] - 1e-9 * abs(first[-1])


def test_unneeded_components_are_switched_off():
    X = load_faithful()
    bgm = _fit(BayesianGaussianMixture(n_components=10, random_state=0, max_iter=500), X)
    assert bgm.converged_
    assert np.sum(bgm.weights_ >= 0.01) == 2
    gm = fastem.GaussianMixture(10, random_state=0).fit(X)
    assert np.sum(gm.weights_ >= 0.01) == 10


@pytest.mark.parametrize("params, message", [
    ({"weight_concentration_prior_type": "dirichlet"}, "weight_concentration_prior_type"),
    ({"weight_concentration_prior": 0.0}, "weight_concentration_prior"),
    ({"mean_precision_prior": -1.0}, "mean_precision_prior"),
    ({"degrees_of_freedom_prior": 1.5}, "should be greater than 2"),
    ({"mean_prior": np.zeros(2)}, "'means' should have the shape"),
    ({"covariance_prior": np.eye(2)}, "covariance_prior' should have the shape"),
    ({"covariance_prior": -np.eye(3)}, "symmetric, positive-definite"),
    ({"covariance_type": "diag", "covariance_prior": -np.ones(3)}, "should be positive"),
    ({"covariance_type": "spherical", "covariance_prior": 0.0}, "positive number"),
    ({"init_params": "nope"}, "init_params"),
])
def test_bad_parameters_are_named(data, params, message):
    with pytest.raises(ValueError, match=message):
        BayesianGaussianMixture(**params).fit(data)


def test_default_priors_need_more_than_one_row_of_weight(data):
    weights = np.r_[0.5, 0.4, np.zeros(len(data) - 2)]
    with pytest.raises(ValueError, match="weighing more than 1"):
        BayesianGaussianMixture(n_components=1).fit(Streamed(data), sample_weight=weights)


def test_select_model_with_bayesian_candidates(data, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, data)
    grid = dict(n_components=[2, 4], covariance_types=["full", "diag"], bayesian=True,
                random_state=0, max_iter=30)
    shared = fastem.select_model(str(path), **grid)
    alone = fastem.select_model(str(path), shared_pass=False, **grid)
    assert type(shared.best_) is BayesianGaussianMixture
    for a, b in zip(shared.table, alone.table, strict=True):
        for key in ("log_likelihood", "bic", "aic", "icl", "n_iter", "converged"):
            assert a[key] == b[key], key
    # each candidate is the estimator fitted alone
    row = shared.table[0]
    bgm = _fit(BayesianGaussianMixture(n_components=2, covariance_type="full",
                                       random_state=0, max_iter=30), str(path))
    assert row["log_likelihood"] == pytest.approx(bgm.score(data), rel=1e-12)
    cv = fastem.select_model(data, criterion="cv", cv=3, **grid)
    assert type(cv.best_) is BayesianGaussianMixture
    assert all(np.isfinite(r["cv_mean"]) for r in cv.table)


def test_summaries_are_refused_for_the_bayesian_mixture(data):
    bgm = _fit(BayesianGaussianMixture(n_components=2, max_iter=3), data)
    with pytest.raises(TypeError, match="fastem.Streamed"):
        fastem.summarize(data, bgm)
    stats = fastem.summarize(data, fastem.GaussianMixture(2, random_state=0).fit(data))
    with pytest.raises(TypeError, match="works with a GaussianMixture"):
        fastem.from_summaries(bgm, stats)


def test_shared_passes_read_the_default_priors_once(data, tmp_path, monkeypatch):
    from fastem import _bayesian_mixture
    reads = []
    original = _bayesian_mixture._streamed_moments
    monkeypatch.setattr(_bayesian_mixture, "_streamed_moments",
                        lambda X, matrix: reads.append(matrix) or original(X, matrix))
    path = tmp_path / "X.npy"
    np.save(path, data)
    fastem.select_model(str(path), n_components=[1, 2, 3], covariance_types=["full", "tied"],
                        bayesian=True, random_state=0, max_iter=5)
    assert reads == [True]

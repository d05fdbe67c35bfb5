"""GaussianMixture against scikit-learn from the same initial parameters, and
against the classic worked examples of EM."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastem import GaussianMixture
from fastem import _covariance as cov
from reference import m_step, random_params, responsibilities

COV_TYPES = ["full", "tied", "diag", "spherical"]


def blobs(n_features, seed=0, n_samples=(700, 500, 300)):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(n_samples[0], n_features)),
             rng.normal(loc=3.0, scale=0.5, size=(n_samples[1], n_features)),
             rng.normal(loc=-2.0, scale=2.0, size=(n_samples[2], n_features))]
    return np.concatenate(parts)


def shared_init(X, covariance_type, n_components=3, seed=1):
    """weights/means/precisions from a few random data points, in
    scikit-learn's *_init format."""
    rng = np.random.default_rng(seed)
    means = X[rng.choice(len(X), n_components, replace=False)]
    weights = np.full(n_components, 1.0 / n_components)
    var = X.var(axis=0)
    D = X.shape[1]
    precisions = {
        "full": np.stack([np.diag(1 / var)] * n_components),
        "tied": np.diag(1 / var),
        "diag": np.tile(1 / var, (n_components, 1)),
        "spherical": np.full(n_components, 1 / var.mean()),
    }[covariance_type]
    assert means.shape == (n_components, D)
    return dict(weights_init=weights, means_init=means, precisions_init=precisions)


def fit_both(X, covariance_type, max_iter=20, **kwargs):
    init = shared_init(X, covariance_type)
    kw = dict(n_components=3, covariance_type=covariance_type, tol=0.0,
              max_iter=max_iter, **init, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkGaussianMixture(**kw).fit(X)
        fe = GaussianMixture(**kw).fit(X)
    return sk, fe


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("n_features", [1, 2, 5, 17])
def test_trajectory_matches_scikit_learn(covariance_type, n_features):
    X = blobs(n_features)
    sk, fe = fit_both(X, covariance_type)
    assert len(fe.lower_bounds_) == len(sk.lower_bounds_) == 20
    np.testing.assert_allclose(fe.lower_bounds_, sk.lower_bounds_, rtol=1e-8)
    assert fe.lower_bound_ == fe.lower_bounds_[-1]
    for name in ("weights_", "means_", "covariances_", "precisions_",
                 "precisions_cholesky_"):
        a, b = getattr(fe, name), getattr(sk, name)
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * np.abs(b).max(),
                                   err_msg=name)
    assert fe.n_iter_ == sk.n_iter_
    np.testing.assert_array_equal(fe.predict(X), sk.predict(X))
    np.testing.assert_allclose(fe.predict_proba(X), sk.predict_proba(X), atol=1e-7)
    np.testing.assert_allclose(fe.score_samples(X), sk.score_samples(X), rtol=1e-8)
    assert fe.score(X) == pytest.approx(sk.score(X), rel=1e-10)
    assert fe.bic(X) == pytest.approx(sk.bic(X), rel=1e-10)
    assert fe.aic(X) == pytest.approx(sk.aic(X), rel=1e-10)
    assert fe._n_parameters() == sk._n_parameters()


@pytest.mark.parametrize(("covariance_type", "n_features"), [("full", 384), ("tied", 72)])
def test_large_dimension_trajectory_matches_scikit_learn(covariance_type, n_features):
    # past the BLAS crossover: products through BLAS, factors through LAPACK
    from fastem._engine import uses_blas
    from fastem._kernels._linalg import LAPACK_MIN_FEATURES
    assert uses_blas(covariance_type, n_features, np.float64)
    assert covariance_type == "tied" or n_features >= LAPACK_MIN_FEATURES
    X = blobs(n_features, n_samples=(900, 700, 600))
    sk, fe = fit_both(X, covariance_type, max_iter=5, reg_covar=1e-3)
    np.testing.assert_allclose(fe.lower_bounds_, sk.lower_bounds_, rtol=1e-8)
    for name in ("means_", "covariances_", "precisions_cholesky_"):
        b = getattr(sk, name)
        np.testing.assert_allclose(getattr(fe, name), b, rtol=1e-6,
                                   atol=1e-8 * np.abs(b).max(), err_msg=name)
    np.testing.assert_allclose(fe.score_samples(X), sk.score_samples(X), rtol=1e-8)
    # float32 data: float32 BLAS, close to the float64 trajectory
    _, fe32 = fit_both(X.astype(np.float32), covariance_type, max_iter=5, reg_covar=1e-3)
    np.testing.assert_allclose(fe32.lower_bounds_, sk.lower_bounds_, rtol=1e-4)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_f_ordered_and_float32_inputs(covariance_type):
    X = blobs(4)
    sk, fe = fit_both(np.asfortranarray(X), covariance_type)
    np.testing.assert_allclose(fe.lower_bounds_, sk.lower_bounds_, rtol=1e-8)
    # float32 data is compared in float32: close to the float64 fit, not equal
    sk32, fe32 = fit_both(X.astype(np.float32), covariance_type)
    np.testing.assert_allclose(fe32.lower_bounds_, sk.lower_bounds_, rtol=1e-4)
    # dtype=float64 computes float32 data in float64: scikit-learn's float64
    # trajectory on the same (upcast) values
    X32 = X.astype(np.float32)
    sk64, _ = fit_both(X32.astype(np.float64), covariance_type)
    init = shared_init(X32.astype(np.float64), covariance_type)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fe64 = GaussianMixture(3, covariance_type=covariance_type, tol=0.0, max_iter=20,
                               dtype=np.float64, **init).fit(X32)
    np.testing.assert_allclose(fe64.lower_bounds_, sk64.lower_bounds_, rtol=1e-8)


FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def _output_dtypes(gm, X):
    return [np.asarray(gm.predict_proba(X)).dtype, np.asarray(gm.score_samples(X)).dtype,
            type(gm.score(X)), np.asarray(gm.predict(X)).dtype]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_data_gives_scikit_learns_float32_results(covariance_type):
    # (with float32 *_init: scikit-learn promotes some of its arrays, not
    # all, to float64 when given float64 ones; fastem returns the data's dtype)
    X32 = blobs(4).astype(np.float32)
    init = {k: v.astype(np.float32) for k, v in shared_init(X32, covariance_type).items()}
    kw = dict(n_components=3, covariance_type=covariance_type, tol=0.0, max_iter=20, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk32, fe32 = SkGaussianMixture(**kw).fit(X32), GaussianMixture(**kw).fit(X32)
    for name in FITTED_ARRAYS:
        assert getattr(fe32, name).dtype == getattr(sk32, name).dtype == np.float32, name
    assert type(fe32.lower_bound_) is type(sk32.lower_bound_) is np.float32
    assert _output_dtypes(fe32, X32) == _output_dtypes(sk32, X32)
    assert fe32.predict_proba(X32).dtype == np.float32
    # float32 only when the data and the model both are, as in scikit-learn
    X64 = X32.astype(np.float64)
    sk64, fe64 = fit_both(X64, covariance_type)
    assert _output_dtypes(fe32, X64) == _output_dtypes(sk32, X64)
    assert _output_dtypes(fe64, X32) == _output_dtypes(sk64, X32)
    assert fe64.predict_proba(X32).dtype == np.float64
    # the float32 outputs are the float64 kernels' outputs rounded
    np.testing.assert_array_equal(
        fe32.predict_proba(X32),
        fe32.predict_proba(X32, out=np.empty((len(X32), 3))).astype(np.float32))
    # dtype=float64 keeps everything float64
    forced = GaussianMixture(3, covariance_type=covariance_type, dtype=np.float64,
                             random_state=0).fit(X32)
    assert all(getattr(forced, name).dtype == np.float64 for name in FITTED_ARRAYS)
    assert forced.predict_proba(X32).dtype == np.float64


def test_float32_outputs_are_cast_in_slices(monkeypatch):
    # outputs of more rows than one cast slice are complete and in place
    from fastem import _engine
    monkeypatch.setattr(_engine, "_CAST_ROWS", 7)
    X32 = blobs(3).astype(np.float32)
    gm = GaussianMixture(3, random_state=0).fit(X32)
    resp, ll = gm.predict_proba(X32), gm.score_samples(X32)
    monkeypatch.setattr(_engine, "_CAST_ROWS", 1 << 16)
    np.testing.assert_array_equal(resp, gm.predict_proba(X32))
    np.testing.assert_array_equal(ll, gm.score_samples(X32))
    out = np.zeros((len(X32), 3), dtype=np.float32)
    assert gm.predict_proba(X32, out=out) is out
    np.testing.assert_array_equal(out, resp)


@pytest.mark.parametrize("init_params", ["random", "random_from_data", "k-means++", "kmeans"])
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_init_strategies_follow_scikit_learn(init_params, covariance_type):
    # random draws are made in the same order as scikit-learn, so the same
    # random_state gives the same start (kmeans: the same converged k-means
    # on well-separated data)
    X = blobs(3, seed=4)
    kw = dict(n_components=3, covariance_type=covariance_type, init_params=init_params,
              random_state=0, tol=0.0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkGaussianMixture(**kw).fit(X)
        fe = GaussianMixture(**kw).fit(X)
    np.testing.assert_allclose(fe.lower_bounds_, sk.lower_bounds_, rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_em_never_decreases_log_likelihood(covariance_type, seed):
    rng = np.random.default_rng(seed)
    D = [1, 3, 6][seed]
    X = np.concatenate([rng.normal(loc=rng.normal(scale=3, size=D),
                                   scale=rng.uniform(0.3, 2), size=(400, D))
                        for _ in range(4)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(4, covariance_type=covariance_type, tol=0, max_iter=40,
                             init_params="random", random_state=seed).fit(X)
    lb = np.array(gm.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-12 * np.abs(lb[1:])), np.diff(lb).min()


def test_one_em_iteration_is_the_textbook_update():
    # one fit iteration from given parameters == NumPy E-step + two-pass M-step
    X = blobs(3, seed=5)
    rng = np.random.default_rng(5)
    for covariance_type in COV_TYPES:
        w, m, pc = random_params(rng, covariance_type, 3, 3)
        prec = cov.precisions_from_cholesky(pc, covariance_type)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm = GaussianMixture(3, covariance_type=covariance_type, max_iter=1,
                                 weights_init=w, means_init=m,
                                 precisions_init=prec, reg_covar=1e-3).fit(X)
        ll, resp = responsibilities(X, w, m, pc, covariance_type)
        weights, means, covs = m_step(X, resp, 1e-3, covariance_type)
        assert gm.lower_bounds_[0] == pytest.approx(ll.mean(), rel=1e-12)
        np.testing.assert_allclose(gm.weights_, weights, rtol=1e-10)
        np.testing.assert_allclose(gm.means_, means, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gm.covariances_, covs, rtol=1e-10)


# -- the worked examples of the EM lecture notes --------------------------------

@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_nearly_empty_component_takes_the_weighted_mean(covariance_type):
    # the notes' worked example: x = -6, -5, -4, 0, 4, 5, 6, sigma = 1,
    # tau = 0.5, one iteration from mu = (-20, 6) gives mu1 = -6.00 (the
    # table); component 1 holds ~5e-12 of a row, and scikit-learn's quotient
    # sum r x / (n + 10 eps) is -5.9974
    x = np.array([-6.0, -5, -4, 0, 4, 5, 6])[:, np.newaxis]
    precisions = {"full": np.ones((2, 1, 1)), "tied": np.ones((1, 1)),
                  "diag": np.ones((2, 1)), "spherical": np.ones(2)}[covariance_type]
    params = dict(n_components=2, covariance_type=covariance_type, max_iter=1,
                  weights_init=[0.5, 0.5], means_init=[[-20.0], [6.0]],
                  precisions_init=precisions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(**params).fit(x)
        sk = SkGaussianMixture(**params).fit(x)
    assert gm.means_[0, 0] == pytest.approx(-6.00, abs=0.005)
    # component 2's mean (~4e-12) and component 1's variance (~8e-6, from
    # terms of ~200 that cancel) are exact to the data's scale: atol 1e-12
    np.testing.assert_allclose(gm.means_, sk.means_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gm.covariances_, sk.covariances_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gm.weights_, sk.weights_, rtol=1e-12)


def test_recovers_one_dimensional_two_component_mixture():
    rng = np.random.default_rng(0)
    n = 5000
    z = rng.uniform(size=n) < 0.3
    x = np.where(z, rng.normal(1.0, 2.0, n), rng.normal(9.0, 3.0, n))[:, np.newaxis]
    # the components overlap, so EM crawls: the default tol=1e-3 stops after
    # 4 iterations far from the optimum (scikit-learn does the same)
    gm = GaussianMixture(2, random_state=0, tol=1e-8, max_iter=1000).fit(x)
    order = np.argsort(gm.means_[:, 0])
    assert gm.converged_
    np.testing.assert_allclose(gm.weights_[order], [0.3, 0.7], atol=0.03)
    np.testing.assert_allclose(gm.means_[order, 0], [1.0, 9.0], atol=0.3)
    np.testing.assert_allclose(np.sqrt(gm.covariances_[order, 0, 0]), [2.0, 3.0], atol=0.2)


def test_recovers_three_two_dimensional_clusters():
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0], [3.0, 3.0], [-3.0, 3.0]])
    X = np.concatenate([rng.normal(c, 1.0, size=(1000, 2)) for c in centers])
    for covariance_type in COV_TYPES:
        gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
        found = gm.means_[np.argsort(gm.means_[:, 0])]
        np.testing.assert_allclose(found, centers[[2, 0, 1]], atol=0.15)
        np.testing.assert_allclose(gm.weights_, 1 / 3, atol=0.03)
        covs = np.array(gm.covariances_)
        unit = {"full": np.eye(2)[None], "tied": np.eye(2), "diag": np.ones((1, 2)),
                "spherical": np.ones(1)}[covariance_type]
        np.testing.assert_allclose(covs, np.broadcast_to(unit, covs.shape), atol=0.15)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_single_component_is_sample_mean_and_biased_covariance(covariance_type):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 3)) + 5.0
    reg = 1e-6
    gm = GaussianMixture(1, covariance_type=covariance_type, reg_covar=reg).fit(X)
    np.testing.assert_allclose(gm.means_[0], X.mean(axis=0), rtol=1e-12)
    full = np.cov(X, rowvar=False, bias=True) + reg * np.eye(3)
    expected = {"full": full[None], "tied": full, "diag": np.diag(full)[None],
                "spherical": np.array([np.trace(full) / 3])}[covariance_type]
    np.testing.assert_allclose(gm.covariances_, expected, rtol=1e-10)
    assert gm.weights_ == pytest.approx([1.0])


# -- estimator behaviour -----------------------------------------------------------

def test_n_init_keeps_the_best_and_warm_start_continues():
    X = blobs(2, seed=6)
    single = [GaussianMixture(3, random_state=s, init_params="random", max_iter=200).fit(X)
              for s in range(3)]
    rs = np.random.RandomState(0)
    best = GaussianMixture(3, random_state=rs, init_params="random", n_init=3,
                           max_iter=200).fit(X)
    assert best.lower_bound_ >= max(g.lower_bound_ for g in single[:1]) - 1e-12
    # warm start: a second fit continues from the first's parameters
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ws = GaussianMixture(3, warm_start=True, max_iter=2, tol=0, random_state=0).fit(X)
        first = ws.lower_bounds_[-1]
        ws.fit(X)
        cold = GaussianMixture(3, max_iter=4, tol=0, random_state=0).fit(X)
    assert ws.lower_bounds_[0] >= first - 1e-12
    np.testing.assert_allclose(ws.lower_bounds_, cold.lower_bounds_[2:], rtol=1e-10)


def test_convergence_warning_and_verbose_output(capsys):
    X = blobs(2)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        GaussianMixture(3, max_iter=2, tol=0, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GaussianMixture(3, max_iter=4, tol=0, verbose=2, verbose_interval=2,
                        random_state=0).fit(X)
    out = capsys.readouterr().out
    assert "Initialization 0" in out
    assert "Iteration 2" in out and "Iteration 4" in out and "Iteration 3" not in out
    assert "did not converge" in out and "lower bound" in out


def test_fit_predict_equals_fit_then_predict():
    X = blobs(3)
    a = GaussianMixture(3, random_state=0).fit_predict(X)
    b = GaussianMixture(3, random_state=0).fit(X).predict(X)
    np.testing.assert_array_equal(a, b)


def test_sample_shapes_and_moments():
    X = blobs(2, seed=3)
    for covariance_type in COV_TYPES:
        gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
        S, y = gm.sample(20000)
        assert S.shape == (20000, 2) and y.shape == (20000,)
        np.testing.assert_allclose(np.bincount(y, minlength=3) / 20000, gm.weights_, atol=0.02)
        for k in range(3):
            np.testing.assert_allclose(S[y == k].mean(axis=0), gm.means_[k], atol=0.15)
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(0)


def test_input_is_not_modified():
    X = blobs(3)
    init = shared_init(X, "full")
    copies = {k: v.copy() for k, v in init.items()}
    X0 = X.copy()
    gm = GaussianMixture(3, **init, max_iter=5, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    gm.predict(X), gm.predict_proba(X), gm.score_samples(X)
    np.testing.assert_array_equal(X, X0)
    for k in init:
        np.testing.assert_array_equal(init[k], copies[k])
        assert getattr(gm, k) is init[k]


# -- errors --------------------------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), "NaN"),
    (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), "infinity"),
    (np.zeros((3, 2, 2)), "dim"),
    (np.zeros((1, 2)), "minimum of 2"),
    (np.zeros((0, 2)), "minimum of"),
    (np.array([["a", "b"], ["c", "d"]]), "could not convert|dtype"),
])
def test_bad_fit_input_raises_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(1).fit(bad)


def test_more_components_than_samples():
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(np.random.default_rng(0).normal(size=(3, 2)))


def test_predict_errors():
    X = blobs(3)
    with pytest.raises(NotFittedError):
        GaussianMixture(2).predict(X)
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="3 features"):
        gm.predict(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        gm.score_samples(np.where(X > 3, np.nan, X))


@pytest.mark.parametrize("param, value, match", [
    ("n_components", 0, "n_components"),
    ("covariance_type", "banana", "covariance_type"),
    ("init_params", "nope", "init_params"),
    ("tol", -1.0, "tol"),
    ("reg_covar", -1.0, "reg_covar"),
    ("max_iter", -1, "max_iter"),
    ("n_init", 0, "n_init"),
    ("chunk_size", 0, "chunk_size"),
    ("n_threads", 0, "n_threads"),
    ("dtype", "int32", "dtype"),
])
def test_bad_hyperparameters(param, value, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**{param: value}).fit(blobs(2))


@pytest.mark.parametrize("kwargs, match", [
    (dict(weights_init=[0.5, 0.6]), "normalized"),
    (dict(weights_init=[1.0]), "shape"),
    (dict(means_init=np.zeros((3, 2))), "shape"),
    (dict(precisions_init=np.stack([np.eye(2), -np.eye(2)])), "positive-definite"),
])
def test_bad_initial_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2, **kwargs).fit(blobs(2))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_collapsed_component_gives_actionable_error(covariance_type):
    # a component started on a block of repeated points, with no
    # regularisation, collapses onto them: the error says what to change
    X = np.concatenate([np.zeros((50, 2)), np.random.default_rng(0).normal(size=(50, 2))])
    gm = GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0,
                         means_init=[[0.0, 0.0], [0.5, 0.5]],
                         weights_init=[0.5, 0.5],
                         precisions_init={"full": np.stack([np.eye(2) * 1e6, np.eye(2)]),
                                          "diag": np.array([[1e6, 1e6], [1.0, 1.0]]),
                                          "spherical": np.array([1e6, 1.0])}[covariance_type])
    with pytest.raises(ValueError, match="reg_covar") as err:
        gm.fit(X)
    assert "component(s) [0]" in str(err.value)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_degenerate_data_without_regularisation_gives_actionable_error(covariance_type):
    # a constant feature has zero variance in every component (spherical
    # averages it with the other features' variance, so it survives)
    X = np.random.default_rng(0).normal(size=(100, 2))
    X[:, 1] = 3.0
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0,
                        random_state=0).fit(X)
    # the default regularisation copes
    GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)


def test_chunk_size_larger_than_data_is_clamped():
    X = blobs(3)
    a = GaussianMixture(2, random_state=0, chunk_size=10**12).fit(X)
    b = GaussianMixture(2, random_state=0).fit(X)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(a.score_samples(X), b.score_samples(X), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_fewer_distinct_points_than_components_warns_as_sklearn(covariance_type):
    X = np.repeat([[0.0, 0.0], [1.0, 5.0], [4.0, 2.0]], 20, axis=0)

    def distinct_cluster_warnings(model):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X)
        return [(w.category, str(w.message)) for w in caught
                if "distinct clusters" in str(w.message)]

    ours = distinct_cluster_warnings(
        GaussianMixture(5, covariance_type=covariance_type, random_state=0))
    theirs = distinct_cluster_warnings(
        SkGaussianMixture(5, covariance_type=covariance_type, random_state=0))
    assert ours == theirs == [(ConvergenceWarning,
                               "Number of distinct clusters (3) found smaller than n_clusters "
                               "(5). Possibly due to duplicate points in X.")]


def test_distinct_points_enough_for_components_do_not_warn():
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Number of distinct clusters")
        GaussianMixture(3, random_state=0).fit(blobs(2))

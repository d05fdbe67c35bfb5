"""The covariance types: the registry, and each type's pieces against the
NumPy reference and against each other."""
import pickle

import numpy as np
import pytest

from fastem import _covariance as cov
from fastem import _covtypes
from fastem._engine import default_chunk_size
from fastem._init import stats_from_resp
from fastem._kernels import _em
from reference import m_step, random_params, suff_stats

COV_TYPES = ["full", "tied", "diag", "spherical"]
K, D = 3, 4


def test_registry_names_the_four_types_in_scikit_learn_order():
    assert _covtypes.COVARIANCE_TYPES == cov.COVARIANCE_TYPES == tuple(COV_TYPES)
    for name in COV_TYPES:
        covtype = _covtypes.get(name)
        assert covtype.name == name
        assert _covtypes.get(covtype) is covtype
        assert covtype.code == _em.COV_TYPE_CODES[name]


@pytest.mark.parametrize("name", ["banded", "Full", None, 3])
def test_unknown_name_is_refused(name):
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        _covtypes.get(name)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_s2_shape_matches_the_kernels_flat_layout(covariance_type):
    covtype = _covtypes.get(covariance_type)
    size = _em.stats_size(covtype.code, K, D)
    flat = np.arange(size, dtype=np.float64)
    stats = cov.SuffStats.from_flat(covariance_type, 7, flat, np.zeros((K, D)))
    assert stats.s2.shape == covtype.shape(K, D) == covtype.zeros_s2(K, D).shape
    assert 1 + K + K * D + stats.s2.size == size
    assert stats.covtype is covtype and stats.covariance_type == covariance_type


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_statistics_and_m_step_match_the_reference(covariance_type):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, D)) + rng.integers(0, 3, size=(200, 1)) * 3.0
    resp = rng.dirichlet(np.ones(K), size=200)
    covtype = _covtypes.get(covariance_type)
    shift = covtype.init_shift(rng.normal(size=(K, D)))
    stats = stats_from_resp(X, covariance_type, lambda a, b, rows: resp[a:b], shift)
    nk, s1, s2 = suff_stats(X, resp, shift, covariance_type)
    np.testing.assert_allclose(stats.nk, nk, rtol=1e-12)
    np.testing.assert_allclose(stats.s1, s1, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats.s2, s2, rtol=1e-10)
    weights, means, covariances = m_step(X, resp, 1e-6, covariance_type)
    got_nk, got_means, got_cov = cov.estimate_parameters(stats, 1e-6)
    np.testing.assert_allclose(got_nk / got_nk.sum(), weights, rtol=1e-12)
    np.testing.assert_allclose(got_means, means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_cov, covariances, rtol=1e-9)
    # the same statistics about other shifts give the same parameters
    moved = stats.recentered(covtype.init_shift(rng.normal(size=(K, D))))
    np.testing.assert_allclose(cov.estimate_parameters(moved, 1e-6)[2], got_cov, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_precision_conversions_invert_each_other(covariance_type):
    covtype = _covtypes.get(covariance_type)
    rng = np.random.default_rng(1)
    _, _, prec_chol = random_params(rng, covariance_type, K, D)
    assert prec_chol.shape == covtype.shape(K, D)
    precisions = covtype.precisions_from_cholesky(prec_chol)
    covariances = covtype.covariances_from_cholesky(prec_chol)
    np.testing.assert_allclose(covtype.precision_cholesky(covariances), prec_chol, rtol=1e-10)
    np.testing.assert_allclose(covtype.precision_cholesky_from_precisions(precisions),
                               prec_chol, rtol=1e-10)
    dense = covtype.dense(covariances, K, D)
    assert dense.shape == (K, D, D)
    np.testing.assert_allclose(
        np.linalg.inv(dense),
        covtype.dense(precisions, K, D), rtol=1e-9)
    # log det U, per component or shared: the kernels' constant
    log_det = covtype.kernel_prec(prec_chol, D, np.float64)[1]
    expected = -0.5 * np.linalg.slogdet(dense)[1]
    np.testing.assert_allclose(np.broadcast_to(log_det, (K,)), expected, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_collapse_is_reported(covariance_type):
    covtype = _covtypes.get(covariance_type)
    _, _, prec_chol = random_params(np.random.default_rng(2), covariance_type, K, D)
    covariances = covtype.covariances_from_cholesky(prec_chol)
    if covariance_type == "tied":
        covariances[:] = 0.0
        match = "The tied covariance is not positive definite"
    else:
        covariances[1] = 0.0
        match = r"component\(s\) \[1\] is not positive definite"
    with pytest.raises(ValueError, match=match):
        covtype.precision_cholesky(covariances, 1e-6)


@pytest.mark.parametrize(("covariance_type", "expected"),
                         [("full", 3 * 10 + 12 + 2), ("tied", 10 + 12 + 2),
                          ("diag", 12 + 12 + 2), ("spherical", 3 + 12 + 2)])
def test_parameter_count(covariance_type, expected):
    assert cov.n_parameters(covariance_type, K, D) == expected


@pytest.mark.parametrize(("covariance_type", "extra_rows"),
                         [("full", 1), ("tied", 2), ("diag", 0), ("spherical", 0)])
def test_chunk_budget(covariance_type, extra_rows):
    rows = 256 * 1024 // (8 * ((1 + extra_rows) * 16 + 16)) // 32 * 32
    assert default_chunk_size(16, 16, covariance_type) == rows


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_statistics_survive_pickling(covariance_type):
    # dask ships statistics between processes
    size = _em.stats_size(_covtypes.get(covariance_type).code, K, D)
    stats = cov.SuffStats.from_flat(covariance_type, 5, np.ones(size), np.zeros((K, D)))
    back = pickle.loads(pickle.dumps(stats))
    assert back.covariance_type == covariance_type
    back += stats
    np.testing.assert_array_equal(back.s2, 2 * stats.s2)


def test_a_registered_type_is_all_the_estimator_needs(monkeypatch, tmp_path):
    # a new type is a CovarianceType subclass and a registry entry; this one
    # reuses the spherical kernels, so it must fit exactly as spherical does
    from fastem import GaussianMixture, load
    from fastem._covtypes.spherical import Spherical

    class Isotropic(Spherical):
        name = "isotropic"

    monkeypatch.setitem(_covtypes._REGISTRY, "isotropic", Isotropic())
    monkeypatch.setitem(_em.COV_TYPE_CODES, "isotropic", _em.COV_TYPE_CODES["spherical"])
    X = np.random.default_rng(3).normal(size=(300, 2)) * [1.0, 2.0]
    fits = {name: GaussianMixture(2, covariance_type=name, random_state=0, max_iter=5).fit(X)
            for name in ("spherical", "isotropic")}
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(fits["isotropic"], attr),
                                      getattr(fits["spherical"], attr))
    assert fits["isotropic"].bic(X) == fits["spherical"].bic(X)
    fits["isotropic"].save(tmp_path / "m.npz")
    assert load(tmp_path / "m.npz").covariance_type == "isotropic"


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_nearly_empty_component_gets_scikit_learns_m_step(covariance_type):
    # component 0 holds ~1e-12 of a row and its shift is far from the data:
    # the regularised n_k (n + 10 eps) must not scale the distance from the
    # shift (scikit-learn's quotient sum r x / (n + 10 eps))
    from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, D)) + 3.0
    resp = rng.dirichlet(np.ones(K), size=50)
    resp[:, 0] = 1e-13
    resp /= resp.sum(axis=1, keepdims=True)
    covtype = _covtypes.get(covariance_type)
    centers = np.vstack([np.full(D, -20.0), rng.normal(size=(K - 1, D)) + 3.0])
    shift = covtype.init_shift(centers)
    stats = stats_from_resp(X, covariance_type, lambda a, b, rows: resp[a:b], shift)
    nk, means, covariances = _estimate_gaussian_parameters(X, resp, 1e-6, covariance_type)
    got_nk, got_means, got_cov = cov.estimate_parameters(stats, 1e-6)
    np.testing.assert_allclose(got_nk, nk, rtol=1e-12)
    np.testing.assert_allclose(got_means, means, rtol=1e-10)
    np.testing.assert_allclose(got_cov, covariances, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("n_features", [1, 3, 40])
def test_full_covariances_are_the_two_pass_estimate_and_exactly_symmetric(n_features):
    # the typed M-step loop against NumPy's two-pass sum about the means
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, n_features)) * 3 + 7
    resp = rng.dirichlet(np.ones(K), size=500)
    shift = rng.normal(size=(K, n_features)) + 7
    stats = stats_from_resp(X, "full", lambda a, b, rows: resp[a:b], shift)
    nk, means, got = cov.estimate_parameters(stats, 1e-3)
    for k in range(K):
        diff = X - means[k]
        expected = (diff * resp[:, [k]]).T @ diff / nk[k] + 1e-3 * np.eye(n_features)
        np.testing.assert_allclose(got[k], expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(got[k], got[k].T)

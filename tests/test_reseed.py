"""collapse="reseed": a component that collapses (or loses its weight) is
re-initialised and the fit goes on, where scikit-learn (and collapse="raise")
stop with an error."""
import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastem import GaussianMixture
from fastem._covtypes import get
from fastem._reseed import split_heaviest

MEANS_INIT = [[10.0, 10.0], [16.0, 16.0], [0.0, 0.0]]


@pytest.fixture(scope="module")
def data():
    # two clusters and five copies of one far point, on which the third
    # component starts: with reg_covar=0 its covariance is exactly zero
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(300, 2)) + 10, rng.normal(size=(300, 2)) + 16,
                      np.zeros((5, 2))])


def _params(covariance_type, **extra):
    return dict(n_components=3, covariance_type=covariance_type, reg_covar=0.0,
                means_init=MEANS_INIT, max_iter=30, random_state=0, **extra)


def _fit_reseeding(X, covariance_type, **extra):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = GaussianMixture(collapse="reseed", **_params(covariance_type, **extra)).fit(X)
    reseed_warnings = [w for w in caught if "re-initialised" in str(w.message)]
    return gm, reseed_warnings


def _assert_usable(gm, X):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(gm, name))), name
    assert gm.weights_.sum() == pytest.approx(1.0)
    assert np.all(np.isfinite(gm.score_samples(X)))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_a_collapse_that_stops_scikit_learn_is_reseeded(data, covariance_type):
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        SkGaussianMixture(**_params(covariance_type)).fit(data)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(**_params(covariance_type)).fit(data)
    gm, reseed_warnings = _fit_reseeding(data, covariance_type)
    assert gm.n_reseeded_ >= 1
    assert len(reseed_warnings) == 1  # once per fit, however many reseeds
    _assert_usable(gm, data)
    # the far point's component was split off a heavy one: no component
    # sits on the five copies any more
    assert np.min(np.linalg.norm(gm.means_, axis=1)) > 1.0


def test_a_collapsed_tied_covariance_cannot_be_reseeded():
    # the covariance all components share is singular: a data problem
    X = np.random.default_rng(1).normal(size=(200, 2))
    X[:, 1] = 3.0
    with pytest.raises(ValueError, match="The tied covariance is not positive definite"):
        GaussianMixture(3, covariance_type="tied", reg_covar=0.0, collapse="reseed",
                        random_state=0).fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_without_a_collapse_reseed_changes_nothing(data, covariance_type):
    X = data[:600]
    params = dict(n_components=2, covariance_type=covariance_type, random_state=0)
    a = GaussianMixture(**params).fit(X)
    b = GaussianMixture(collapse="reseed", **params).fit(X)
    assert b.n_reseeded_ == a.n_reseeded_ == 0
    np.testing.assert_array_equal(a.lower_bounds_, b.lower_bounds_)
    np.testing.assert_array_equal(a.means_, b.means_)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_streamed_fit_reseeds_as_in_memory(data, tmp_path, covariance_type):
    path = tmp_path / "X.npy"
    np.save(path, data)
    in_memory, _ = _fit_reseeding(data, covariance_type)
    streamed, reseed_warnings = _fit_reseeding(str(path), covariance_type)
    assert len(reseed_warnings) == 1
    assert streamed.n_reseeded_ == in_memory.n_reseeded_ >= 1
    np.testing.assert_allclose(streamed.lower_bounds_, in_memory.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(streamed.means_, in_memory.means_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_partial_fit_reseeds(data, covariance_type):
    rng = np.random.default_rng(2)
    X = data[rng.permutation(len(data))]
    gm = GaussianMixture(collapse="reseed", **_params(covariance_type))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the first batch holds the far copies: the third component collapses
        gm.partial_fit(np.vstack([data[-5:], X[:200]]))
        for start in range(200, len(X), 200):
            gm.partial_fit(X[start:start + 200])
    assert gm.n_reseeded_ >= 1
    assert len([w for w in caught if "re-initialised" in str(w.message)]) == 1
    _assert_usable(gm, data)


def test_an_iteration_that_reseeded_is_not_convergence(data, monkeypatch):
    # component 2 is reported vanished in the second iteration's M-step
    # (the calls: initialisation, iteration 1, iteration 2); with a tol so
    # large that any finite change converges, iteration 2 would stop the fit
    from fastem import _reseed
    calls = []

    def vanished(weights):
        calls.append(None)
        return [2] if len(calls) == 3 else []

    monkeypatch.setattr(_reseed, "vanished", vanished)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gm = GaussianMixture(3, collapse="reseed", tol=1e300, random_state=0).fit(data)
    assert gm.n_reseeded_ == 1
    assert gm.converged_ and gm.n_iter_ == 3


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_split_halves_the_heaviest_component(covariance_type):
    covtype = get(covariance_type)
    rng = np.random.default_rng(3)
    weights = np.array([0.6, 0.4 - 1e-12, 1e-12])
    means = rng.normal(size=(3, 2))
    covs = {"full": np.stack([np.diag([4.0, 1.0])] * 3), "tied": np.diag([4.0, 1.0]),
            "diag": np.array([[4.0, 1.0]] * 3), "spherical": np.array([4.0] * 3)}[covariance_type]
    w, m, c = split_heaviest(covtype, weights, means, covs, [2])
    np.testing.assert_allclose(w, [0.3 + 5e-13, 0.4 - 1e-12, 0.3 + 5e-13])
    # the two halves sit one standard deviation apart on the widest axis,
    # about the old mean
    sd = 2.0
    np.testing.assert_allclose(np.abs(m[2] - m[0]), [sd, 0.0] if covariance_type != "spherical"
                               else np.abs(m[2] - m[0]), atol=1e-12)
    np.testing.assert_allclose((m[0] + m[2]) / 2, means[0], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(m[2] - m[0]), sd)
    if covariance_type != "tied":
        np.testing.assert_array_equal(c[2], c[0])
    np.testing.assert_array_equal(weights, [0.6, 0.4 - 1e-12, 1e-12])  # inputs untouched

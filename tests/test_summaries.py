"""summarize / from_summaries: EM driven over the user's own loader."""
import numpy as np
import pytest

import fastem
from fastem import GaussianMixture, from_summaries, summarize

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

COV_TYPES = ["full", "tied", "diag", "spherical"]


def mixture_data(n=3000, d=3, k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    return (centers[labels] + rng.normal(size=(n, d))).astype(dtype)


def fixed_start(X, covariance_type, k=3):
    rng = np.random.default_rng(1)
    d = X.shape[1]
    precisions = {"full": np.tile(np.eye(d), (k, 1, 1)), "tied": np.eye(d),
                  "diag": np.ones((k, d)), "spherical": np.ones(k)}[covariance_type]
    return dict(n_components=k, covariance_type=covariance_type,
                weights_init=np.full(k, 1.0 / k),
                means_init=X[rng.choice(len(X), k, replace=False)].astype(np.float64),
                precisions_init=precisions)


def loader(X, size=700):
    for start in range(0, len(X), size):
        yield X[start:start + size]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_a_loop_over_a_loader_reproduces_fit(covariance_type):
    X = mixture_data()
    params = fixed_start(X, covariance_type)
    ref = GaussianMixture(**params, max_iter=8, tol=0.0).fit(X)
    gm = GaussianMixture(**params)
    for _ in range(8):
        stats = sum(summarize(chunk, gm) for chunk in loader(X))
        assert stats.n_samples == len(X)
        from_summaries(gm, stats)
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-10, atol=1e-12)
    assert gm.n_iter_ == 8 and gm.lower_bound_ == gm.lower_bounds_[-1]
    np.testing.assert_array_equal(gm.predict(X), ref.predict(X))


def test_statistics_of_parts_add_up_to_those_of_the_whole():
    X = mixture_data(seed=2)
    gm = GaussianMixture(3, random_state=0, max_iter=3).fit(X)
    whole = summarize(X, gm)
    parts = summarize(X[:1000], gm) + summarize(X[1000:], gm)
    assert parts.n_samples == whole.n_samples == len(X)
    np.testing.assert_allclose(parts.log_likelihood, whole.log_likelihood, rtol=1e-12)
    for name in ("nk", "s1", "s2", "shift"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name),
                                   rtol=1e-10, atol=1e-9)
    # the statistics' log-likelihood is the model's score of those rows
    assert whole.log_likelihood / len(X) == pytest.approx(gm.score(X), rel=1e-12)


def test_a_fitted_model_continues_from_its_parameters():
    X = mixture_data(seed=3)
    params = dict(n_components=3, random_state=0, tol=0.0)
    ref = GaussianMixture(**params, max_iter=6).fit(X)
    gm = GaussianMixture(**params, max_iter=4).fit(X)
    from_summaries(gm, [summarize(part, gm) for part in loader(X, 1000)])
    from_summaries(gm, summarize(X, gm))
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-9)


def test_summarize_streams_any_input(tmp_path):
    X = mixture_data(seed=4)
    gm = GaussianMixture(3, random_state=0, max_iter=3).fit(X)
    path = tmp_path / "X.npy"
    np.save(path, X)
    ref = summarize(X, gm)
    for data in (path, np.load(path, mmap_mode="r"), fastem.Streamed(X)):
        stats = summarize(data, gm)
        np.testing.assert_allclose(stats.s2, ref.s2, rtol=1e-10)


def test_summarize_needs_parameters_and_matching_data():
    X = mixture_data(seed=5)
    with pytest.raises(ValueError, match="fit it first"):
        summarize(X, GaussianMixture(3))
    gm = GaussianMixture(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features"):
        summarize(X[:, :2], gm)
    with pytest.raises(ValueError, match="cannot update"):
        from_summaries(GaussianMixture(3, covariance_type="diag"), summarize(X, gm))
    with pytest.raises(ValueError, match="different shifts"):
        summarize(X, gm) + summarize(X, GaussianMixture(3, random_state=1).fit(X))

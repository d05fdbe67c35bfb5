"""missing="em": the slow reference (tests/reference_missing.py) against
scikit-learn on complete data, fastem against the reference on data with
gaps, the per-row outputs and impute, streamed and dask inputs, the
initialisation, and errors."""
import warnings

import numpy as np
import pytest
import reference_missing as ref
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastem import GaussianMixture, Streamed, _init, _missing_init
from fastem._sources import ArraySource

COV_TYPES = ["full", "tied", "diag", "spherical"]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def mixture(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0] * d, [4.0] * d, [-3.0] + [3.0] * (d - 1)])
    A = rng.normal(scale=0.5, size=(d, d)) + np.eye(d)
    return centers[rng.integers(3, size=n)] + rng.normal(size=(n, d)) @ A


def with_gaps(X, share=0.25, seed=1):
    """X with about ``share`` of its values missing, every row keeping one."""
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(size=X.shape) < share
    gaps[gaps.all(axis=1), 0] = False
    out = X.copy()
    out[gaps] = np.nan
    return out


def sk_start(X, covariance_type, k=3):
    """Parameters after a few of scikit-learn's iterations on complete rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SkGaussianMixture(k, covariance_type=covariance_type, max_iter=3,
                                 random_state=0).fit(X)


def init_of(sk):
    return dict(n_components=sk.n_components, covariance_type=sk.covariance_type,
                weights_init=sk.weights_, means_init=sk.means_,
                precisions_init=sk.precisions_)


# -- the reference itself ---------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_reference_is_scikit_learns_em_on_complete_data(covariance_type):
    X = mixture(n=120)
    start = sk_start(X, covariance_type)
    sk = SkGaussianMixture(**init_of(start), tol=0.0, max_iter=4).fit(X)
    bounds, (w, m, c) = ref.em(X, start.weights_, start.means_, start.covariances_,
                               covariance_type, 4)
    np.testing.assert_allclose(bounds, sk.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(w, sk.weights_, rtol=1e-10)
    np.testing.assert_allclose(m, sk.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c, sk.covariances_, rtol=1e-10, atol=1e-12)


# -- fastem against the reference ---------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_with_gaps_matches_the_reference(covariance_type, dtype):
    X = mixture(seed=2)
    start = sk_start(X, covariance_type)
    gappy = with_gaps(X).astype(dtype)
    gm = GaussianMixture(**init_of(start), missing="em", tol=0.0, max_iter=6).fit(gappy)
    bounds, (w, m, c) = ref.em(gappy.astype(np.float64), start.weights_, start.means_,
                               start.covariances_, covariance_type, 6)
    rtol = 1e-8 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(gm.lower_bounds_, bounds, rtol=rtol)
    np.testing.assert_allclose(gm.weights_, w, rtol=rtol)
    np.testing.assert_allclose(gm.means_, m, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(gm.covariances_, c, rtol=rtol, atol=rtol)
    assert gm.means_.dtype == dtype


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_weighted_fit_with_gaps_matches_the_reference(covariance_type):
    X = mixture(seed=3)
    weights = np.random.default_rng(4).uniform(0, 2, size=len(X))
    start = sk_start(X, covariance_type)
    gappy = with_gaps(X, seed=5)
    gm = GaussianMixture(**init_of(start), missing="em", tol=0.0, max_iter=4)
    gm.fit(gappy, sample_weight=weights)
    bounds, (w, m, c) = ref.em(gappy, start.weights_, start.means_, start.covariances_,
                               covariance_type, 4, sample_weight=weights)
    np.testing.assert_allclose(gm.lower_bounds_, bounds, rtol=1e-8)
    np.testing.assert_allclose(gm.covariances_, c, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_observed_likelihood_never_decreases(covariance_type):
    gappy = with_gaps(mixture(n=600, seed=6), share=0.4, seed=7)
    gm = GaussianMixture(3, covariance_type=covariance_type, missing="em", tol=0.0,
                         max_iter=40, random_state=0).fit(gappy)
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-12 * np.abs(gm.lower_bounds_[1:]))


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random",
                                         "random_from_data"])
def test_without_nan_the_fit_is_exactly_the_plain_fit(init_params):
    X = mixture(seed=8)
    params = dict(n_components=3, init_params=init_params, random_state=0)
    plain = GaussianMixture(**params).fit(X)
    em = GaussianMixture(**params, missing="em").fit(X)
    np.testing.assert_array_equal(em.lower_bounds_, plain.lower_bounds_)
    np.testing.assert_array_equal(em.covariances_, plain.covariances_)
    np.testing.assert_array_equal(em.predict_proba(X), plain.predict_proba(X))


# -- using a model on data with gaps -----------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_per_row_outputs_and_impute_marginalise(covariance_type):
    X = mixture(seed=9)
    gm = GaussianMixture(3, covariance_type=covariance_type, missing="em",
                         random_state=0).fit(with_gaps(X, seed=10))
    gappy = with_gaps(X, share=0.3, seed=11)
    before = gappy.copy()
    row_ll, resp, _, _ = ref.e_step(gappy, gm.weights_, gm.means_, gm.covariances_,
                                    covariance_type)
    np.testing.assert_allclose(gm.score_samples(gappy), row_ll, rtol=1e-10)
    np.testing.assert_allclose(gm.predict_proba(gappy), resp, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(gm.predict(gappy), resp.argmax(axis=1))
    assert gm.score(gappy) == pytest.approx(row_ll.mean(), rel=1e-12)
    n_params = gm._n_parameters()
    assert gm.bic(gappy) == pytest.approx(-2 * row_ll.sum() + n_params * np.log(len(X)),
                                          rel=1e-12)
    assert gm.aic(gappy) == pytest.approx(-2 * row_ll.sum() + 2 * n_params, rel=1e-12)
    imputed = gm.impute(gappy)
    expected = ref.impute(gappy, gm.weights_, gm.means_, gm.covariances_, covariance_type)
    np.testing.assert_allclose(imputed, expected, rtol=1e-10)
    np.testing.assert_array_equal(gappy, before)  # never modified
    assert not np.isnan(imputed).any()
    np.testing.assert_array_equal(imputed[~np.isnan(gappy)], gappy[~np.isnan(gappy)])


def test_impute_recovers_correlated_gaps_better_than_column_means():
    rng = np.random.default_rng(12)
    z = rng.normal(size=(2000, 1))
    X = np.hstack([z, 2 * z + 0.1 * rng.normal(size=(2000, 1))])
    gappy = X.copy()
    gappy[::3, 1] = np.nan
    gm = GaussianMixture(1, missing="em").fit(gappy)
    error = np.abs(gm.impute(gappy)[::3, 1] - X[::3, 1]).mean()
    baseline = np.abs(np.nanmean(gappy[:, 1]) - X[::3, 1]).mean()
    assert error < 0.1 < baseline


# -- inputs ------------------------------------------------------------------------------------
def test_streamed_and_dask_inputs_with_gaps_equal_in_memory(tmp_path):
    X = with_gaps(mixture(n=3000, seed=13), seed=14)
    start = sk_start(np.nan_to_num(X), "full")
    fixed = dict(init_of(start), missing="em", tol=0.0, max_iter=5)
    reference = GaussianMixture(**fixed).fit(X)
    default = GaussianMixture(3, missing="em", random_state=0, max_iter=5).fit(X)
    np.save(tmp_path / "X.npy", X)
    inputs = {"npy": str(tmp_path / "X.npy"), "Streamed": Streamed(X),
              "memmap": np.load(tmp_path / "X.npy", mmap_mode="r")}
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "X.h5", "w") as f:
        f["X"] = X
    inputs["HDF5"] = h5py.File(tmp_path / "X.h5", "r")["X"]
    zarr = pytest.importorskip("zarr")
    z = zarr.create_array(store=str(tmp_path / "X.zarr"), shape=X.shape, dtype=X.dtype,
                          chunks=(500, 4))
    z[:] = X
    inputs["Zarr"] = zarr.open_array(store=str(tmp_path / "X.zarr"), mode="r")
    da = pytest.importorskip("dask.array")
    inputs["dask"] = da.from_array(X, chunks=(700, 4))
    for name, data in inputs.items():
        gm = GaussianMixture(**fixed, block_bytes=20_000).fit(data)
        np.testing.assert_allclose(gm.lower_bounds_, reference.lower_bounds_, rtol=1e-10,
                                   err_msg=name)
        np.testing.assert_allclose(gm.covariances_, reference.covariances_, rtol=1e-10,
                                   err_msg=name)
        km = GaussianMixture(3, missing="em", random_state=0, max_iter=5,
                             block_bytes=20_000).fit(data)
        np.testing.assert_allclose(km.lower_bounds_, default.lower_bounds_, rtol=1e-8,
                                   err_msg=name)
        labels = np.asarray(gm.predict(data))
        np.testing.assert_array_equal(labels, reference.predict(X), err_msg=name)
        np.testing.assert_allclose(np.asarray(gm.impute(data)), reference.impute(X),
                                   rtol=1e-9, atol=1e-12, err_msg=name)


# -- initialisation with gaps ------------------------------------------------------------------
def test_partial_distances_are_rescaled_observed_distances():
    rng = np.random.default_rng(15)
    rows = with_gaps(rng.normal(size=(50, 5)), share=0.4)
    centers = rng.normal(size=(3, 5))
    got = _missing_init.partial_sqdist(rows, centers)
    for n in range(50):
        o = ~np.isnan(rows[n])
        for k in range(3):
            expected = np.sum((rows[n, o] - centers[k, o]) ** 2) * 5 / o.sum()
            assert got[n, k] == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_kmeans_with_gaps_is_kmeans_on_complete_rows():
    X = mixture(seed=16)
    source = ArraySource(X)
    means, variance = _missing_init.column_means(source)
    centers = _missing_init.kmeans(source, 3, np.random.RandomState(0),
                                   _missing_init.fill_with(means), variance)
    expected = _init.kmeans(X, 3, np.random.RandomState(0), 64, 1)
    np.testing.assert_allclose(centers, expected, rtol=1e-10)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random",
                                         "random_from_data"])
def test_default_fits_on_data_with_gaps_find_the_clusters(init_params):
    rng = np.random.default_rng(17)
    centers = np.array([[0.0, 0.0, 0.0], [8.0, 8.0, 8.0]])
    X = centers[rng.integers(2, size=800)] + rng.normal(size=(800, 3))
    gappy = with_gaps(X, share=0.3, seed=18)
    # (from random responsibilities EM leaves the symmetric start slowly,
    # with or without gaps: a small tol lets it)
    gm = GaussianMixture(2, missing="em", init_params=init_params, random_state=0,
                         tol=1e-8, max_iter=3000).fit(gappy)
    found = np.sort(gm.means_[:, 0])
    np.testing.assert_allclose(found, [0.0, 8.0], atol=0.3)


# -- errors ------------------------------------------------------------------------------------
def test_bad_inputs_are_named(tmp_path):
    X = with_gaps(mixture(seed=19))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        GaussianMixture(2).fit(X)
    empty = X.copy()
    empty[7] = np.nan
    with pytest.raises(ValueError, match="row 7 has no observed coordinate"):
        GaussianMixture(2, missing="em").fit(empty)
    np.save(tmp_path / "empty.npy", empty)
    with pytest.raises(ValueError, match="row 7 has no observed coordinate"):
        GaussianMixture(2, missing="em").fit(str(tmp_path / "empty.npy"))
    infinite = X.copy()
    infinite[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2, missing="em").fit(infinite)
    with pytest.raises(ValueError, match="missing must be 'error' or 'em'"):
        GaussianMixture(2, missing="drop").fit(X)
    column = X.copy()
    column[:, 0] = mixture(seed=19)[:, 0]
    column[:, 2] = np.nan
    with pytest.raises(ValueError, match="column 2 of X has no observed value"):
        GaussianMixture(2, missing="em").fit(column)
    plain = GaussianMixture(2).fit(np.nan_to_num(X))
    with pytest.raises(ValueError, match="missing='em'"):
        plain.impute(X)
    gm = GaussianMixture(2, missing="em").fit(X)
    with pytest.raises(ValueError, match="row 7 has no observed coordinate"):
        gm.predict(empty)


def test_summaries_and_partial_fit_take_gaps():
    import fastem
    gappy = with_gaps(mixture(seed=20), seed=21)
    start = sk_start(np.nan_to_num(gappy), "full")
    ref = GaussianMixture(**init_of(start), missing="em", tol=0.0, max_iter=2).fit(gappy)
    gm = GaussianMixture(**init_of(start), missing="em")
    for _ in range(2):
        parts = np.array_split(gappy, 3)
        fastem.from_summaries(gm, [fastem.summarize(part, gm) for part in parts])
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-10)
    stepwise = GaussianMixture(3, missing="em", random_state=0)
    for part in np.array_split(gappy, 3):
        stepwise.partial_fit(part)
    assert np.all(np.isfinite(stepwise.means_)) and stepwise.n_iter_ == 3

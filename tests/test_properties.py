"""Property-based checks: for any shape, chunking and thread count, the fused
pass equals the NumPy reference and a fit does not depend on threads."""
import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from fastem import GaussianMixture
from fastem._engine import Engine
from reference import random_params, responsibilities, suff_stats


@settings(max_examples=60, deadline=None)
@given(
    covariance_type=st.sampled_from(["full", "tied", "diag", "spherical"]),
    n_samples=st.integers(1, 400),
    n_features=st.integers(1, 7),
    n_components=st.integers(1, 5),
    chunk_size=st.integers(1, 500),
    n_threads=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_em_pass_equals_reference(covariance_type, n_samples, n_features,
                                  n_components, chunk_size, n_threads, seed):
    rng = np.random.default_rng(seed)
    weights, means, prec_chol = random_params(rng, covariance_type, n_components, n_features)
    X = rng.normal(scale=2.0, size=(n_samples, n_features))
    engine = Engine(covariance_type, n_components, n_features, chunk_size, n_threads)
    kp = engine.kernel_params(weights, means, prec_chol, X.dtype)
    stats = engine.em_stats(X, kp)
    ll, resp = responsibilities(X, weights, means, prec_chol, covariance_type)
    nk, s1, s2 = suff_stats(X, resp, kp.shift, covariance_type)
    np.testing.assert_allclose(stats.log_likelihood, ll.sum(), rtol=1e-10)
    np.testing.assert_allclose(stats.nk, nk, rtol=1e-10, atol=1e-10 * n_samples)
    np.testing.assert_allclose(stats.s1, s1, rtol=1e-9, atol=1e-9 * np.abs(s1).max())
    if covariance_type in ("full", "tied"):
        s2, got = np.tril(s2), np.tril(stats.s2)
    else:
        got = stats.s2
    np.testing.assert_allclose(got, s2, rtol=1e-9, atol=1e-9 * np.abs(s2).max())


def test_fit_does_not_depend_on_thread_count_or_chunking():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 1.0, size=(3000, 5)) for c in (-3, 0, 3)])
    fits = []
    for n_threads, chunk_size in [(1, None), (2, None), (2, 100), (1, 7)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(GaussianMixture(3, random_state=0, tol=0, max_iter=15,
                                        n_threads=n_threads,
                                        chunk_size=chunk_size).fit(X))
    for gm in fits[1:]:
        np.testing.assert_allclose(gm.lower_bounds_, fits[0].lower_bounds_, rtol=1e-10)
        np.testing.assert_allclose(gm.means_, fits[0].means_, rtol=1e-9)
        np.testing.assert_array_equal(gm.predict(X), fits[0].predict(X))

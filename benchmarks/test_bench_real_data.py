"""What weighted rows and missing values cost, against what users do without
them, in the same run (marginal seconds per EM iteration, W1's shape:
16 features, K = 16, full covariance, fixed start, tol = 0):

- weights: 250,000 distinct rows with counts 1-7 (about a million rows)
  fitted with sample_weight, against scikit-learn and fastem on the rows
  repeated;
- gaps: a million rows, 10% of them with a missing value, fitted with
  missing="em", against fastem on the complete data and scikit-learn on
  the complete rows only (what dropping rows costs in time).

Timing run: ``pytest benchmarks/test_bench_real_data.py --benchmark-enable``.
Disabled (the ordinary test run), each fit runs once on data a hundred
times smaller and the equivalences are checked.
"""
import numpy as np
import pytest
from marginal import marginal_seconds
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastem import GaussianMixture

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_DISTINCT, N_ROWS, D, K, ITERATIONS = 250_000, 1_000_000, 16, 16, 6


def _data(n, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(K, D))
    return centers[rng.integers(K, size=n)] + rng.normal(size=(n, D))


def _start(X):
    sk = SkGaussianMixture(K, max_iter=2, random_state=0).fit(X[:20_000])
    return dict(n_components=K, weights_init=sk.weights_, means_init=sk.means_,
                precisions_init=sk.precisions_, tol=0.0)


@pytest.fixture(scope="module")
def weighted_problem(benchmarks_disabled):
    scale = 100 if benchmarks_disabled else 1
    X = _data(N_DISTINCT // scale, seed=0)
    counts = np.random.default_rng(1).integers(1, 8, size=len(X))
    return X, counts, np.repeat(X, counts, axis=0), _start(X)


@pytest.fixture(scope="module")
def gappy_problem(benchmarks_disabled):
    scale = 100 if benchmarks_disabled else 1
    X = _data(N_ROWS // scale, seed=2)
    rng = np.random.default_rng(3)
    gappy = X.copy()
    rows = np.flatnonzero(rng.uniform(size=len(X)) < 0.1)
    gappy[rows, rng.integers(D, size=rows.size)] = np.nan
    complete_rows = X[~np.isnan(gappy).any(axis=1)]
    return X, gappy, complete_rows, _start(X)


def _marginal_seconds(fit, benchmarks_disabled):
    """(model of ITERATIONS iterations, marginal s/iter or None)."""
    return marginal_seconds(fit, ITERATIONS, benchmarks_disabled)


def _record(benchmark, group, library, seconds, model):
    benchmark.group = group
    benchmark.extra_info.update(library=library, per="EM iteration (marginal)")
    if seconds is not None:
        benchmark.extra_info["seconds"] = seconds
    benchmark.pedantic(lambda: model, rounds=1, iterations=1)


@pytest.mark.parametrize("library", ["fastem", "fastem-repeated", "sklearn"])
def test_weighted_rows(benchmark, weighted_problem, library, benchmarks_disabled):
    X, counts, repeated, start = weighted_problem
    if library == "fastem":
        def fit(n):
            return GaussianMixture(**start, max_iter=n).fit(X, sample_weight=counts)
    else:
        cls = GaussianMixture if library == "fastem-repeated" else SkGaussianMixture

        def fit(n):
            return cls(**start, max_iter=n).fit(repeated)
    model, seconds = _marginal_seconds(fit, benchmarks_disabled)
    _record(benchmark, "weights: distinct rows with counts vs the rows repeated",
            library, seconds, model)
    reference = SkGaussianMixture(**start, max_iter=ITERATIONS).fit(repeated)
    np.testing.assert_allclose(model.lower_bounds_, reference.lower_bounds_, rtol=1e-10)


@pytest.mark.parametrize("library", ["fastem", "fastem-complete", "sklearn"])
def test_missing_values(benchmark, gappy_problem, library, benchmarks_disabled):
    X, gappy, complete_rows, start = gappy_problem
    if library == "fastem":
        def fit(n):
            return GaussianMixture(**start, max_iter=n, missing="em").fit(gappy)
    elif library == "fastem-complete":
        def fit(n):
            return GaussianMixture(**start, max_iter=n).fit(X)
    else:
        def fit(n):
            return SkGaussianMixture(**start, max_iter=n).fit(complete_rows)
    model, seconds = _marginal_seconds(fit, benchmarks_disabled)
    _record(benchmark, "gaps: 10% of rows with a missing value (missing='em') vs "
            "complete data / dropped rows", library, seconds, model)
    assert np.all(np.diff(model.lower_bounds_) > -1e-12)

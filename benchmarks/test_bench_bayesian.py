"""The variational Bayesian mixture per iteration, against fastem's
GaussianMixture and scikit-learn's BayesianGaussianMixture in the same run,
on W1's shape (a million rows, 16 features, K = 16, full covariance):
marginal seconds per iteration from random_from_data starts, tol = 0.

The Bayesian iteration is the same kernel pass with other per-component
constants, and its M-step and lower bound are K x D x D work: it should
cost what an EM iteration costs.

Timing run: ``pytest benchmarks/test_bench_bayesian.py --benchmark-enable``.
Disabled (the ordinary test run), each fit runs once on data a hundred
times smaller and checked against scikit-learn's.
"""
import numpy as np
import pytest
from marginal import marginal_seconds
from sklearn.mixture import BayesianGaussianMixture as SkBayesian

from fastem import BayesianGaussianMixture, GaussianMixture

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_ROWS, D, K, ITERATIONS = 1_000_000, 16, 16, 6
PARAMS = dict(n_components=K, init_params="random_from_data", random_state=0, tol=0.0)


@pytest.fixture(scope="module")
def w1(benchmarks_disabled):
    n = N_ROWS // (100 if benchmarks_disabled else 1)
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(K, D))
    return centers[rng.integers(K, size=n)] + rng.normal(size=(n, D))


def _marginal_seconds(fit, benchmarks_disabled):
    """(model of ITERATIONS iterations, marginal s/iter or None)."""
    return marginal_seconds(fit, ITERATIONS, benchmarks_disabled)


@pytest.mark.parametrize("library", ["fastem-bayesian", "fastem-em", "sklearn-bayesian"])
def test_bayesian_iteration(benchmark, w1, library, benchmarks_disabled):
    cls = {"fastem-bayesian": BayesianGaussianMixture, "fastem-em": GaussianMixture,
           "sklearn-bayesian": SkBayesian}[library]

    def fit(n):
        return cls(max_iter=n, **PARAMS).fit(w1)
    model, seconds = _marginal_seconds(fit, benchmarks_disabled)
    benchmark.group = "W1 shape: variational Bayesian vs EM iteration"
    benchmark.extra_info.update(library=library, per="iteration (marginal)")
    if seconds is not None:
        benchmark.extra_info["seconds"] = seconds
    benchmark.pedantic(lambda: model, rounds=1, iterations=1)
    if library == "fastem-bayesian" and benchmarks_disabled:
        reference = SkBayesian(max_iter=ITERATIONS, **PARAMS).fit(w1)
        np.testing.assert_allclose(model.lower_bounds_, reference.lower_bounds_, rtol=1e-8)

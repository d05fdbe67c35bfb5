"""EM fit benchmarks: fastem against scikit-learn on the same data, from the
same initial parameters, for the same fixed number of iterations.

Timing run (full-size data, sklearn reference fitted once per workload)::

    pytest benchmarks --benchmark-enable --benchmark-autosave
    pytest benchmarks --benchmark-enable --benchmark-compare --benchmark-compare-fail=median:10%

The ordinary test run keeps benchmarks disabled (pyproject addopts): then
every workload runs once on N cut a hundredfold, as a smoke test of the
benchmark code and of the agreement with scikit-learn.

Each workload is its own benchmark group, so the table shows the two
libraries side by side; the saved JSON adds fastem's speed-up over
scikit-learn (see conftest.py).
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastem
from em_workloads import W1, W5, make_estimator, make_problem

pytestmark = pytest.mark.filterwarnings(
    # tol=0 makes non-convergence the point, not a problem
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

WORKLOADS = [W1, W5]

# (rounds, warmup rounds) per workload and library. scikit-learn needs no
# warm-up round: the reference fit has just run in the same process.
# W1 with scikit-learn costs tens of seconds a round, hence only three.
ROUNDS = {
    "W1": {"fastem": (5, 1), "sklearn": (3, 0)},
    "W5": {"fastem": (30, 2), "sklearn": (30, 0)},
}

# Same initial parameters and the same algebra: the trajectories differ by
# rounding only. fastem computes float32 distances in float32 where
# scikit-learn upcasts: 4e-8 relative measured on the smoke-sized workloads,
# the tolerance leaves room for larger N.
RTOL = {np.float64: 1e-8, np.float32: 1e-5}


@pytest.fixture(scope="module", autouse=True)
def serial_blas_when_disabled(benchmarks_disabled):
    # Smoke runs check agreement, not speed. scikit-learn's products on 10^4
    # rows gain nothing from BLAS threads, and on a busy machine a BLAS
    # thread waiting for a core made its smoke fits 3-10x slower.
    if benchmarks_disabled:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    else:
        yield


@pytest.fixture(scope="module", params=WORKLOADS, ids=lambda w: w.name)
def problem(request, benchmarks_disabled):
    # Module scope with parameters: pytest runs all tests of one workload
    # together and drops its data before generating the next.
    workload = request.param
    if benchmarks_disabled:
        workload = workload.smoke()
    return make_problem(workload)


@pytest.fixture(scope="module")
def reference_lower_bounds(problem):
    estimator = make_estimator("sklearn", problem).fit(problem.X)
    return np.asarray(estimator.lower_bounds_)


def _threads(library):
    if library == "fastem":
        return fastem.effective_n_threads()
    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(blas, default=1)


@pytest.mark.parametrize("library", ["fastem", "sklearn"])
def test_em_fit(benchmark, problem, reference_lower_bounds, library):
    w = problem.workload
    X = problem.X
    rounds, warmup_rounds = ROUNDS[w.name][library]

    def fit():
        return make_estimator(library, problem).fit(X)

    benchmark.group = w.describe()
    estimator = benchmark.pedantic(fit, rounds=rounds, warmup_rounds=warmup_rounds,
                                   iterations=1)

    benchmark.extra_info.update(
        library=library,
        workload=w.name,
        n_samples=w.n_samples,
        n_features=w.n_features,
        n_components=w.n_components,
        covariance_type=w.covariance_type,
        dtype=np.dtype(w.dtype).name,
        max_iter=w.max_iter,
        threads=_threads(library),
    )
    if benchmark.stats is not None:  # None when benchmarks are disabled
        # Whole fit over iterations: includes validation, setting up the
        # given initial parameters and, for scikit-learn, its final E-step.
        # benchmarks/measure_w1.py measures the marginal cost instead.
        benchmark.extra_info["seconds_per_iter"] = (
            benchmark.stats.stats.median / w.max_iter
        )

    lower_bounds = np.asarray(estimator.lower_bounds_)
    assert lower_bounds.shape == (w.max_iter,)
    np.testing.assert_allclose(lower_bounds, reference_lower_bounds,
                               rtol=RTOL[w.dtype], atol=0)

"""EM benchmarks: fastem against scikit-learn (and daal4py where installed)
on the same data, from the same initial parameters, for the same fixed
number of iterations. Workloads, timing method and roofline live in
``fastem.bench``; docs/performance.md explains them.

Timing run (full-size data; about half an hour, most of it scikit-learn)::

    pytest benchmarks --benchmark-enable --benchmark-autosave

The ordinary test run keeps benchmarks disabled (pyproject addopts): every
workload then runs once, untimed, on N cut a hundredfold, which checks the
benchmark code and the agreement with scikit-learn.

Each workload is a benchmark group with one entry per library. The timed
call is the whole fixed-work fit; ``extra_info["seconds"]`` holds the
marginal seconds per iteration, (t(fit, 10 iterations) - t(fit, 1)) / 9,
and the saved JSON adds fastem's speed-ups over the other libraries (see
conftest.py). For the ratio-based regression check use ``fastem bench``.
"""
import math
import time

import numpy as np
import pytest

from fastem import bench

pytestmark = pytest.mark.filterwarnings(
    # tol=0 makes non-convergence the point, not a problem
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

# A timing run gives each library about this long per workload, within
# [_MIN_ROUNDS, _MAX_ROUNDS] rounds: three rounds of scikit-learn's W1 fit
# already take two minutes.
_ROUND_BUDGET_SECONDS = 10.0
_MIN_ROUNDS, _MAX_ROUNDS = 3, 30


def _rounds_for(seconds):
    if seconds <= 0:
        return _MAX_ROUNDS
    return int(min(_MAX_ROUNDS, max(_MIN_ROUNDS, math.ceil(_ROUND_BUDGET_SECONDS / seconds))))


def _median_seconds(fn, arg, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# The suite's workloads, of the embedding-sized ones (fastem bench runs them
# all) one shape in its three forms: each takes scikit-learn seconds.
_TEST_WORKLOADS = [w for name, w in bench.WORKLOADS.items()
                   if not name.startswith("D") or name.startswith("D256-K8")]


@pytest.fixture(scope="module", params=_TEST_WORKLOADS, ids=[w.name for w in _TEST_WORKLOADS])
def problem(request, benchmarks_disabled):
    # Module scope with parameters: pytest runs all tests of one workload
    # together and drops its data before generating the next.
    workload = request.param
    if benchmarks_disabled:
        workload = workload.quick()
    return bench.make_problem(workload)


@pytest.fixture(scope="module")
def reference_lower_bounds(problem):
    w = problem.workload
    with bench.library_threads("sklearn", w.n_threads):
        model = bench.make_fitter("sklearn", problem)(w.max_iter)
    return bench.lower_bounds("sklearn", model, w.n_samples)


@pytest.mark.parametrize("library", bench.LIBRARIES)
def test_em_fit(benchmark, problem, reference_lower_bounds, library,
                benchmarks_disabled, roofline):
    w = problem.workload
    if library == "daal4py":
        reason = bench.daal4py_unavailable(w)
        if reason is not None:
            pytest.skip(reason)
    fit = bench.make_fitter(library, problem)
    benchmark.group = f"{w.name} {w.title}: {w.shape_label()}"
    benchmark.extra_info.update(library=library, workload=w.to_dict(),
                                threads=w.threads, per="EM iteration (marginal)")

    with bench.library_threads(library, w.n_threads):
        if benchmarks_disabled:
            model = benchmark.pedantic(fit, args=(w.max_iter,), rounds=1, iterations=1)
        else:
            time.sleep(bench.SETTLE_SECONDS)
            fit(1)  # thread pools and heap, see fastem.bench.timing
            start = time.perf_counter()
            fit(w.max_iter)
            rounds = _rounds_for(time.perf_counter() - start)
            model = benchmark.pedantic(fit, args=(w.max_iter,), rounds=rounds,
                                       iterations=1)
            one_iteration = _median_seconds(fit, 1, rounds)
            seconds = (benchmark.stats.stats.median - one_iteration) / (w.max_iter - 1)
            ideal = bench.ideal_time(w, roofline)
            benchmark.extra_info.update(
                seconds=seconds, fit_1_median_s=one_iteration,
                ideal_seconds=ideal["seconds"], limit=ideal["limit"],
                multiple_of_ideal=seconds / ideal["seconds"],
            )

    lower_bounds = bench.lower_bounds(library, model, w.n_samples)
    if library == "daal4py":
        # daal4py reports the final lower bound only, and adds no reg_covar.
        np.testing.assert_allclose(lower_bounds[-1], reference_lower_bounds[-1],
                                   rtol=bench.DAAL4PY_RTOL, atol=0)
    else:
        assert lower_bounds.shape == (w.max_iter,)
        np.testing.assert_allclose(lower_bounds, reference_lower_bounds,
                                   rtol=bench.adapter(library).rtol(w), atol=0)


@pytest.fixture(scope="module")
def fitted_w1(benchmarks_disabled):
    w = bench.WORKLOADS["W1"]
    if benchmarks_disabled:
        w = w.quick()
    problem = bench.make_problem(w)
    models = {}
    for library in ("fastem", "sklearn"):
        with bench.library_threads(library, w.n_threads):
            models[library] = bench.make_fitter(library, problem)(w.max_iter)
    return problem, models


@pytest.mark.parametrize("library", ["fastem", "sklearn"])
@pytest.mark.parametrize("method", ["predict_proba", "score_samples"])
def test_scoring(benchmark, fitted_w1, method, library, benchmarks_disabled):
    problem, models = fitted_w1
    w = problem.workload
    call = getattr(models[library], method)
    benchmark.group = f"W1 {method}: {w.n_samples:,} rows"
    benchmark.extra_info.update(library=library, per="call")
    with bench.library_threads(library, w.n_threads):
        rounds = 1
        if not benchmarks_disabled:
            time.sleep(bench.SETTLE_SECONDS)
            start = time.perf_counter()
            call(problem.X)
            rounds = _rounds_for(time.perf_counter() - start)
        out = benchmark.pedantic(call, args=(problem.X,), rounds=rounds, iterations=1)
    if benchmark.stats is not None:
        benchmark.extra_info["seconds"] = benchmark.stats.stats.median

    # The two models differ by rounding: their outputs agree closely, not exactly.
    other = "sklearn" if library == "fastem" else "fastem"
    expected = getattr(models[other], method)(problem.X)
    if method == "predict_proba":
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_roofline_and_ideal(roofline):
    rates = bench.roofline_rates(roofline, roofline["threads"])
    assert all(rate > 0 and math.isfinite(rate) for rate in rates.values()), rates
    for w in bench.WORKLOADS.values():
        ideal = bench.ideal_time(w, roofline)
        assert ideal["seconds"] > 0
        assert ideal["limit"] in ("flops", "bandwidth", "exp")
    # W3 is 2 x 10^7 exps against 8 x 10^7 flops: exp-bound on any CPU.
    assert bench.ideal_time(bench.WORKLOADS["W3"], roofline)["limit"] == "exp"


def test_fit_peak_memory(fitted_w1, benchmarks_disabled):
    problem, _ = fitted_w1
    memory = bench.measure_memory(problem)
    for library in bench.libraries_for(problem.workload):
        entry = memory["libraries"][library]
        assert "error" not in entry, entry
        assert entry["extra_bytes"] >= 0
    if not benchmarks_disabled:
        # fastem keeps no (N, K) or (N, D) arrays during a fit; at W1's
        # K = D = 16 either would add the data's size again.
        assert memory["libraries"]["fastem"]["extra_over_data"] < 1.0, memory

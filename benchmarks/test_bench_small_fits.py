"""Small fits on a busy machine: iris-sized data (150 x 4, K = 3, full
covariance, the default k-means start) with every CPU kept busy by other
processes, against scikit-learn in the same run; and how much CPU the
process burns while idle right after a fit (OpenMP threads left
spin-waiting would show here).

Timing run: ``pytest benchmarks/test_bench_small_fits.py --benchmark-enable``.
Disabled (the ordinary test run), each fit runs once on a quiet machine and
its result is checked against scikit-learn's.
"""
import multiprocessing as mp
import os
import resource
import time

import numpy as np
import pytest
from marginal import timed_fits
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastem import GaussianMixture

FITS = 20


def _spin(stop):
    while not stop.is_set():
        pass


@pytest.fixture
def busy_cpus(benchmarks_disabled):
    """One spinning process per CPU this process may use (none when the
    benchmarks are disabled)."""
    if benchmarks_disabled:
        yield 0
        return
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    hogs = [ctx.Process(target=_spin, args=(stop,), daemon=True)
            for _ in range(len(os.sched_getaffinity(0)))]
    for hog in hogs:
        hog.start()
    time.sleep(0.5)
    yield len(hogs)
    stop.set()
    for hog in hogs:
        hog.join(5)


@pytest.mark.parametrize("library", ["fastem", "sklearn"])
def test_small_fit_under_load(benchmark, busy_cpus, library, benchmarks_disabled):
    X = load_iris().data
    cls = GaussianMixture if library == "fastem" else SkGaussianMixture

    model = timed_fits(
        benchmark, f"iris fit (150 x 4, K = 3) with {busy_cpus} CPUs kept busy", library,
        lambda: cls(3, random_state=0).fit(X), FITS, benchmarks_disabled)
    reference = SkGaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_allclose(model.lower_bounds_, reference.lower_bounds_, rtol=1e-8)


def test_no_cpu_burnt_while_idle_after_a_fit(benchmark):
    # a fit large enough for all threads, then half a second of sleep: the
    # CPU time the process uses while it sleeps
    X = np.random.default_rng(0).normal(size=(200_000, 8))
    GaussianMixture(4, random_state=0, max_iter=3).fit(X)
    before = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(0.5)
    after = resource.getrusage(resource.RUSAGE_SELF)
    burnt = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    benchmark.group = "CPU seconds burnt in 0.5 s idle after a fit"
    benchmark.extra_info.update(library="fastem", seconds=burnt)
    benchmark.pedantic(lambda: burnt, rounds=1, iterations=1)
    assert burnt < 0.25, f"{burnt:.3f} CPU seconds burnt while idle"

"""Marginal seconds per iteration: the time of n iterations less that of
one, over n - 1, cancels a fit's start (validation, initialisation); and
the median time of whole fits, for what a start itself costs."""
import time

import numpy as np


def marginal_seconds(fit, iterations, benchmarks_disabled, repeats=3):
    """(the model of ``fit(iterations)``, marginal seconds per iteration, or
    None when the benchmarks are disabled and the fit runs once). Each
    count is timed ``repeats`` times and the fastest kept, after one
    warm-up fit (thread pools, heap)."""
    if benchmarks_disabled:
        return fit(iterations), None
    fit(1)
    times = {}
    for n in (1, iterations):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            model = fit(n)
            runs.append(time.perf_counter() - start)
        times[n] = min(runs)
    return model, (times[iterations] - times[1]) / (iterations - 1)


def timed_fits(benchmark, group, library, fit, repeats, benchmarks_disabled):
    """Run ``fit`` once, then time it ``repeats`` times (once when the
    benchmarks are disabled) and record the median as the benchmark's
    seconds per fit; returns the first fit's model."""
    model = fit()
    runs = []
    for _ in range(1 if benchmarks_disabled else repeats):
        start = time.perf_counter()
        fit()
        runs.append(time.perf_counter() - start)
    benchmark.group = group
    benchmark.extra_info.update(library=library, per="fit (median)",
                                seconds=float(np.median(runs)))
    benchmark.pedantic(lambda: model, rounds=1, iterations=1)
    return model

"""Marginal seconds per iteration: the time of n iterations less that of
one, over n - 1, cancels a fit's start (validation, initialisation)."""
import time


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

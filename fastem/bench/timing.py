"""Timing a workload on every library, and scoring on fastem and scikit-learn.

Seconds per iteration are *marginal*,

    s/iter = (t(fit, max_iter=10) - t(fit, max_iter=1)) / 9,

which removes what does not scale with the iteration count (validation,
turning the initial precisions into Cholesky factors, scikit-learn's final
E-step). The libraries are timed in the same rounds, so a speed-up is a
ratio the machine's load barely moves.
"""
import math
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastem.bench.libraries import (
    ADAPTERS,
    check_agreement,
    libraries_for,
    library_threads,
    lower_bounds,
    make_fitter,
    peers,
)
from fastem.bench.problems import Problem
from fastem.bench.roofline import ideal_time
from fastem.bench.stats import median, ratio, relative_iqr

# Small workloads repeat a timed call for about this long and keep the
# fastest, so that one disturbed call does not decide the timing.
_TARGET_CALL_SECONDS = 0.1
_MAX_REPEATS = 500

# Idle OpenBLAS threads spin for about 2^28 cycles (~0.1 s) after a call,
# and OpenMP and TBB workers spin too. Switching straight from one
# library's timing to another's let those spinners steal a core from the
# next library: scikit-learn's iteration on quick W2 took 4-20x longer
# right after a fastem fit than after this pause.
SETTLE_SECONDS = 0.25


def _repeats(seconds):
    if seconds <= 0:
        return _MAX_REPEATS
    return int(min(_MAX_REPEATS, max(1, math.ceil(_TARGET_CALL_SECONDS / seconds))))


def _timed(fn, arg, repeats):
    """Fastest seconds of ``repeats`` calls of fn(arg), and the last result."""
    result, best = None, math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(arg)
        best = min(best, time.perf_counter() - start)
    return best, result


def _timed_pair(fit, short, long, repeats):
    """Fastest seconds of fit(short) and of fit(long) over ``repeats`` calls
    of each, alternating so that a change in the machine's load falls on both
    alike. The fastest call is the least disturbed one: a mean lets one
    preempted call of fit(short) outweigh the extra iterations of fit(long),
    and at ~0.1 ms per iteration that made a marginal time negative."""
    t_short = t_long = math.inf
    model = None
    for _ in range(repeats):
        start = time.perf_counter()
        fit(short)
        middle = time.perf_counter()
        model = fit(long)
        end = time.perf_counter()
        t_short = min(t_short, middle - start)
        t_long = min(t_long, end - middle)
    return t_short, t_long, model


def time_workload(problem: Problem, rounds: int, roofline: dict | None = None,
                  progress=None) -> dict:
    """Time one workload on every available library, in interleaved rounds.

    Parameters
    ----------
    problem : Problem
    rounds : int
        Each round times, for each library, a fit with ``max_iter=1`` and one
        with ``max_iter=10``; the library order rotates between rounds.
    roofline : dict, optional
        From :func:`fastem.bench.roofline.measure_roofline`; adds the
        multiple of the ideal time.
    progress : callable, optional
        Called with a line of text after each round.

    Returns
    -------
    result : dict
        JSON-able; ``models`` (not JSON-able) holds the last fitted model of
        each library and is removed by :func:`fastem.bench.run_suite` before
        saving.
    """
    w = problem.workload
    n = w.n_samples
    libraries = libraries_for(w)
    fitters = {lib: make_fitter(lib, problem) for lib in libraries}
    per_iter = {lib: [] for lib in libraries}
    fit_first = {lib: [] for lib in libraries}
    fit_last = {lib: [] for lib in libraries}
    models, repeats = {}, {}
    # A peer that raises (oneDAL's em_gmm on some shapes: "Error during
    # covariance computation") is dropped from the workload with the reason.
    failed = {}

    def run(lib, fn):
        if lib in failed:
            return
        try:
            fn()
        except Exception as exc:
            if lib not in peers():
                raise
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            failed[lib] = f"{lib} failed on {w.name}: {first_line}"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0 on purpose
        # The first fit in a process starts thread pools and grows the heap
        # to the size of the fit's temporaries (scikit-learn's first
        # max_iter=1 fit at 10^5 rows took 3.7x its later ones). Left in the
        # max_iter=1 timing, that cost would flatter the per-iteration time.
        def warm_up(lib):
            time.sleep(SETTLE_SECONDS)
            with library_threads(lib, w.n_threads):
                t, _ = _timed(fitters[lib], 1, 1)
            repeats[lib] = _repeats(t)

        def time_round(lib):
            time.sleep(SETTLE_SECONDS)
            with library_threads(lib, w.n_threads):
                t1, tn, models[lib] = _timed_pair(fitters[lib], 1, w.max_iter,
                                                  repeats[lib])
            fit_first[lib].append(t1)
            fit_last[lib].append(tn)
            per_iter[lib].append((tn - t1) / (w.max_iter - 1))

        for lib in libraries:
            run(lib, lambda lib=lib: warm_up(lib))
        for r in range(rounds):
            shift = r % len(libraries)
            for lib in libraries[shift:] + libraries[:shift]:
                run(lib, lambda lib=lib: time_round(lib))
            if progress is not None:
                progress(f"  {w.name} round {r + 1}/{rounds}: " + ", ".join(
                    f"{lib} {per_iter[lib][-1]:.4g} s/iter" for lib in libraries
                    if lib not in failed))
    libraries = [lib for lib in libraries if lib not in failed]
    for lib in failed:
        models.pop(lib, None)

    ratios = [ratio(s, f) for s, f in zip(per_iter["sklearn"], per_iter["fastem"])]
    result = {
        "workload": w.to_dict(),
        "title": w.title,
        "threads": w.threads,
        "data_bytes": w.data_bytes,
        "rounds": rounds,
        "libraries": {},
        "speedup_vs_sklearn": median(ratios),
        "speedup_rounds": ratios,
        "speedup_noise": relative_iqr(ratios),
    }
    for peer in peers():
        result[f"speedup_vs_{peer}"] = None
        result[f"{peer}_note"] = failed.get(peer) or ADAPTERS[peer].unavailable(w)
    for lib in libraries:
        result["libraries"][lib] = {
            "s_per_iter": median(per_iter[lib]),
            "s_per_iter_rounds": per_iter[lib],
            "fit_1_s": fit_first[lib],
            f"fit_{w.max_iter}_s": fit_last[lib],
            "repeats_per_timing": repeats[lib],
            "final_lower_bound": float(lower_bounds(lib, models[lib], n)[-1]),
        }
    for peer in peers():
        if peer in libraries:
            peer_ratios = [ratio(p, f) for p, f in zip(per_iter[peer], per_iter["fastem"])]
            result[f"speedup_vs_{peer}"] = median(peer_ratios)
            result[f"speedup_vs_{peer}_rounds"] = peer_ratios
    result["agreement"] = check_agreement(w, models)
    if roofline is not None:
        ideal = ideal_time(w, roofline)
        result["ideal"] = ideal
        for entry in result["libraries"].values():
            entry["multiple_of_ideal"] = entry["s_per_iter"] / ideal["seconds"]
        result["multiple_of_ideal"] = result["libraries"]["fastem"]["multiple_of_ideal"]
    result["models"] = models
    return result


def time_scoring(problem: Problem, models: dict, rounds: int) -> dict:
    """predict_proba and score_samples of the fitted fastem and scikit-learn
    models on the training data, timed in interleaved rounds."""
    w = problem.workload
    X = problem.X
    out = {"workload": w.name, "n_samples": w.n_samples}
    results = {}
    for method in ("predict_proba", "score_samples"):
        calls = {lib: getattr(models[lib], method) for lib in ("fastem", "sklearn")}
        repeats, times = {}, {lib: [] for lib in calls}
        for lib, call in calls.items():
            time.sleep(SETTLE_SECONDS)
            with library_threads(lib, w.n_threads):
                t, results[lib, method] = _timed(call, X, 1)
            repeats[lib] = _repeats(t)
        for _ in range(rounds):
            for lib, call in calls.items():
                time.sleep(SETTLE_SECONDS)
                with library_threads(lib, w.n_threads):
                    t, _ = _timed(call, X, repeats[lib])
                times[lib].append(t)
        fastem_s, sklearn_s = median(times["fastem"]), median(times["sklearn"])
        out[method] = {"fastem_s": fastem_s, "sklearn_s": sklearn_s,
                       "speedup": ratio(sklearn_s, fastem_s),
                       "fastem_rounds": times["fastem"],
                       "sklearn_rounds": times["sklearn"]}
    # The two models differ by rounding, so these are small, not zero.
    out["predict_proba"]["max_abs_diff"] = float(np.max(np.abs(
        results["fastem", "predict_proba"] - results["sklearn", "predict_proba"])))
    reference = results["sklearn", "score_samples"]
    out["score_samples"]["max_rel_diff"] = float(np.max(
        np.abs(results["fastem", "score_samples"] - reference) / np.abs(reference)))
    return out

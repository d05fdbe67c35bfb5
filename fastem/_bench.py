"""Performance suite: fastem's EM against scikit-learn (and daal4py) on fixed
workloads, each time set against this machine's own limits.

``fastem bench`` and the pytest-benchmark suite under ``benchmarks/`` are
both built on this module; docs/performance.md explains the method.

Every workload is seeded data plus fixed initial parameters, so all
libraries start from the same point and do the same work: ``tol=0`` and a
fixed ``max_iter``. Seconds per iteration are *marginal*,

    s/iter = (t(fit, max_iter=10) - t(fit, max_iter=1)) / 9,

which removes what does not scale with the iteration count (validation,
turning the initial precisions into Cholesky factors, scikit-learn's final
E-step). scikit-learn and, where installed, daal4py are timed in the same
rounds as fastem, so the speed-up is a ratio the machine's load barely moves.
"""
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info, threadpool_limits

import fastem
from fastem._engine import Engine

SCHEMA = "fastem-bench/1"
ITERATIONS = 10
LIBRARIES = ("fastem", "sklearn", "daal4py")

# Same initial parameters and the same algebra: fastem and scikit-learn
# differ by rounding only. In float32 fastem computes distances in float32
# where scikit-learn mixes precisions.
RTOL = {"float64": 1e-8, "float32": 1e-4}
# daal4py adds no reg_covar (its regularizationFactor only applies to
# ill-conditioned covariances), so its trajectory drifts from
# scikit-learn's by about reg_covar / eigenvalue per iteration: at most
# 3e-8 relative on the quick workloads, more expected at full size.
DAAL4PY_RTOL = 1e-5

# Regression threshold on the speed-up over scikit-learn, as a fraction:
# a workload regresses when its speed-up falls by more than
#     min(THRESHOLD_CAP, max(THRESHOLD_FLOOR, THRESHOLD_K * noise)),
# noise being the larger of the baseline's and this run's interquartile
# range of the per-round speed-ups over their median. Derived from eight
# quick runs of the whole suite on the 2-core machine while other work
# shared it (616 ordered pairs of runs of the same code; see
# docs/performance.md): with quiet rounds (noise < 0.2) the speed-up fell by
# up to 29 % between runs, hence the floor; larger falls came only with
# scattered rounds, and 0.94 x noise covered them all, hence k = 1.5 with
# room to spare. The largest fall seen was 74 %; above the cap a fall is
# reported however noisy the rounds, or a noisy run could hide anything.
THRESHOLD_FLOOR = 0.30
THRESHOLD_K = 1.5
THRESHOLD_CAP = 0.80

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

# Below this many rows a quick run keeps the full workload: it is fast already.
_QUICK_MIN_ROWS = 10_000
_QUICK_FACTOR = 100

# Expected distance between two component means, in units of a typical
# component standard deviation (covariance eigenvalues lie in about
# [0.1, 4]). At 6 the 16-dimensional W1 reached its optimum to 1e-5 within
# five iterations, leaving the rest of the fixed work at a fixed point; at 3
# the lower bound still moves at iteration 10 on every workload.
_MEAN_SEPARATION = 3.0


# -- workloads -------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """A fixed amount of EM work: data shape, model and threads.

    ``n_threads=None`` means all the threads fastem would use; scikit-learn
    then runs with its BLAS defaults and daal4py with its own.
    """

    name: str
    title: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str = "full"
    dtype: str = "float64"
    n_threads: int = None
    max_iter: int = ITERATIONS
    seed: int = 0

    def quick(self):
        """The same workload with N cut a hundredfold (``--quick``)."""
        n = max(self.n_samples // _QUICK_FACTOR, min(self.n_samples, _QUICK_MIN_ROWS))
        return replace(self, n_samples=n)

    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize

    @property
    def data_bytes(self):
        return self.n_samples * self.n_features * self.itemsize

    @property
    def threads(self):
        return fastem.effective_n_threads(self.n_threads)

    def shape_label(self):
        return (f"{self.n_samples:,} x {self.n_features}, K={self.n_components}, "
                f"{self.covariance_type}, {self.dtype}, {self.threads} thr")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def _variant(base, suffix, title, **changes):
    return replace(base, name=f"{base.name}-{suffix}", title=title, **changes)


_W1 = Workload("W1", "full-mid", 1_000_000, 16, 16, "full")
_W2 = Workload("W2", "diag-wide", 1_000_000, 64, 32, "diag")

#: All workloads, keyed by name, in the order they are run and printed:
#: each base workload followed by its variants, which share its data.
WORKLOADS = {w.name: w for w in [
    _W1,
    _variant(_W1, "tied", "tied", covariance_type="tied"),
    _variant(_W1, "f32", "full-mid f32", dtype="float32"),
    _variant(_W1, "1thread", "full-mid 1 thr", n_threads=1),
    _W2,
    _variant(_W2, "spherical", "spherical", covariance_type="spherical"),
    _variant(_W2, "f32", "diag-wide f32", dtype="float32"),
    _variant(_W2, "1thread", "diag-wide 1 thr", n_threads=1),
    Workload("W3", "1d-huge", 10_000_000, 1, 2, "full"),
    Workload("W4", "full-highdim", 200_000, 64, 10, "full"),
    Workload("W5", "small", 10_000, 2, 3, "full"),
]}


def select_workloads(names=None, quick=False):
    """Workloads by name (case-insensitive), in suite order.

    Parameters
    ----------
    names : iterable of str, optional
        Default: all of them.
    quick : bool
        Scale N down as ``--quick`` does.

    Returns
    -------
    workloads : list of Workload
    """
    if names is None:
        chosen = list(WORKLOADS.values())
    else:
        by_lower = {name.lower(): w for name, w in WORKLOADS.items()}
        wanted = [n.strip() for n in names if n.strip()]
        unknown = [n for n in wanted if n.lower() not in by_lower]
        if unknown:
            raise ValueError(f"unknown workload(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(WORKLOADS)}")
        if not wanted:
            raise ValueError("no workload given")
        keep = {by_lower[n.lower()].name for n in wanted}
        chosen = [w for w in WORKLOADS.values() if w.name in keep]
    return [w.quick() for w in chosen] if quick else chosen


@dataclass
class Problem:
    """A workload's data and the initial parameters every library starts from."""

    workload: Workload
    X: np.ndarray
    weights_init: np.ndarray
    means_init: np.ndarray
    precisions_init: np.ndarray


def _random_mixture(rng, n_features, n_components):
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = rng.normal(scale=_MEAN_SEPARATION / np.sqrt(2 * n_features),
                       size=(n_components, n_features))
    # A A^T / D has random orientation and eccentricity; the ridge keeps the
    # smallest eigenvalue away from zero so no component is degenerate.
    a = rng.standard_normal((n_components, n_features, n_features))
    covariances = (a @ a.transpose(0, 2, 1)) / n_features + 0.1 * np.eye(n_features)
    return weights, means, covariances


def _sample(rng, n_samples, weights, means, covariances, dtype):
    n_components, n_features = means.shape
    counts = rng.multinomial(n_samples, weights)
    # Rows drawn component by component would give every chunk a single
    # component; scattering each component's rows to random positions makes
    # each chunk look like the whole data set, without the full-size copy
    # that shuffling afterwards would need.
    positions = rng.permutation(n_samples)
    X = np.empty((n_samples, n_features), dtype=dtype)
    start = 0
    for mean, cov, count in zip(means, covariances, counts):
        L = np.linalg.cholesky(cov)
        rows = positions[start:start + count]
        X[rows] = mean + rng.standard_normal((count, n_features)) @ L.T
        start += count
    return X


def _precisions(covariances, weights, covariance_type):
    if covariance_type == "full":
        p = np.linalg.inv(covariances)
        # inv() is symmetric only to rounding; every library must see the
        # same matrix, and fastem rejects visibly asymmetric precisions.
        return (p + p.transpose(0, 2, 1)) / 2
    if covariance_type == "tied":
        p = np.linalg.inv(np.einsum("k,kij->ij", weights, covariances))
        return (p + p.T) / 2
    variances = np.diagonal(covariances, axis1=1, axis2=2)
    if covariance_type == "diag":
        return 1.0 / variances
    if covariance_type == "spherical":
        return 1.0 / variances.mean(axis=1)
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


def make_problem(workload):
    """Data and initial parameters of a workload, from its seed alone.

    The initial parameters are the true ones perturbed (means moved by half
    a unit per coordinate, covariances inflated by the identity, weights
    uniform), not k-means centres: starting near the truth keeps two correct
    implementations on the same trajectory, so their lower bounds compare to
    1e-8, while every fixed iteration still moves the parameters. The
    float32 and one-thread variants draw the same numbers as their base.
    """
    rng = np.random.default_rng(workload.seed)
    D, K = workload.n_features, workload.n_components
    weights, means, covariances = _random_mixture(rng, D, K)
    X = _sample(rng, workload.n_samples, weights, means, covariances, workload.dtype)

    means_init = means + rng.normal(scale=0.5, size=means.shape)
    covariances_init = covariances + np.eye(D)
    weights_init = np.full(K, 1.0 / K)
    precisions_init = _precisions(covariances_init, weights_init, workload.covariance_type)
    return Problem(workload, X, weights_init, means_init, precisions_init)


# -- the libraries -------------------------------------------------------------------------
def daal4py_unavailable(workload):
    """Why daal4py cannot run a workload, or None when it can."""
    if importlib.util.find_spec("daal4py") is None:
        return "daal4py not installed (pip install 'fastem[bench]')"
    if workload.covariance_type not in ("full", "diag"):
        return f"daal4py has no {workload.covariance_type} covariance"
    return None


def libraries_for(workload):
    return [lib for lib in LIBRARIES
            if lib != "daal4py" or daal4py_unavailable(workload) is None]


def make_estimator(library, problem, max_iter=None):
    """An unfitted fastem or scikit-learn estimator set up for fixed work."""
    w = problem.workload
    params = dict(
        n_components=w.n_components,
        covariance_type=w.covariance_type,
        tol=0.0,  # never converge early: every fit does max_iter iterations
        max_iter=w.max_iter if max_iter is None else max_iter,
        weights_init=problem.weights_init,
        means_init=problem.means_init,
        precisions_init=problem.precisions_init,
        random_state=0,
    )
    if library == "fastem":
        return fastem.GaussianMixture(**params, n_threads=w.n_threads)
    if library == "sklearn":
        from sklearn.mixture import GaussianMixture
        return GaussianMixture(**params)
    raise ValueError(f"unknown library {library!r}")


def make_fitter(library, problem):
    """A function ``fit(max_iter) -> model`` whose call is what gets timed.

    Everything that depends only on the workload (for daal4py, the initial
    covariances in its layout) is prepared here, outside the timing.
    """
    X = problem.X
    if library != "daal4py":
        def fit(max_iter):
            return make_estimator(library, problem, max_iter).fit(X)
        return fit

    import daal4py

    w = problem.workload
    fptype = "float" if w.dtype == "float32" else "double"
    if w.covariance_type == "full":
        storage = "full"
        covariances = [np.linalg.inv(p) for p in problem.precisions_init]
    else:
        # daal4py wants one 1 x D row of variances per component.
        storage = "diagonal"
        covariances = [(1.0 / p)[np.newaxis, :] for p in problem.precisions_init]
    covariances = [np.ascontiguousarray(c, dtype=w.dtype) for c in covariances]
    weights = np.ascontiguousarray(problem.weights_init[np.newaxis, :], dtype=w.dtype)
    means = np.ascontiguousarray(problem.means_init, dtype=w.dtype)

    def fit(max_iter):
        algorithm = daal4py.em_gmm(
            nComponents=w.n_components, maxIterations=max_iter,
            accuracyThreshold=0.0, regularizationFactor=1e-6,
            covarianceStorage=storage, fptype=fptype,
        )
        return algorithm.compute(X, weights, means, covariances)
    return fit


def lower_bounds(library, model, n_samples):
    """Mean log-likelihood per iteration; daal4py only reports the last.

    daal4py's ``goalFunction`` is the *summed* log-likelihood of the
    parameters before the last M-step: scikit-learn's last lower bound times
    N (checked against scikit-learn on every run).
    """
    if library == "daal4py":
        return np.array([float(np.asarray(model.goalFunction).ravel()[0]) / n_samples])
    return np.asarray(model.lower_bounds_, dtype=np.float64)


@contextmanager
def library_threads(library, n_threads):
    """Run a library on ``n_threads`` threads (None: its defaults).

    fastem takes its thread count as a parameter; scikit-learn's only
    threads are BLAS's; daal4py has a global thread count.
    """
    if n_threads is None or library == "fastem":
        yield
    elif library == "sklearn":
        with threadpool_limits(limits=n_threads, user_api="blas"):
            yield
    elif library == "daal4py":
        import daal4py
        previous = daal4py.num_threads()
        daal4py.daalinit(n_threads)
        try:
            yield
        finally:
            daal4py.daalinit(previous)
    else:
        raise ValueError(f"unknown library {library!r}")


# -- timing --------------------------------------------------------------------------------
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


def _median(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(values)) if values else float("nan")


def _relative_iqr(values):
    """Interquartile range over median: the spread of the middle rounds,
    which one disturbed round cannot blow up the way it does max - min."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if len(values) < 2:
        return 0.0
    q1, mid, q3 = np.percentile(values, [25, 50, 75])
    return float((q3 - q1) / mid) if mid > 0 else float("nan")


def _ratio(numerator, denominator):
    if not (denominator > 0 and numerator > 0):
        return float("nan")
    return numerator / denominator


def time_workload(problem, rounds, roofline=None, progress=None):
    """Time one workload on every available library, in interleaved rounds.

    Parameters
    ----------
    problem : Problem
    rounds : int
        Each round times, for each library, a fit with ``max_iter=1`` and one
        with ``max_iter=10``; the library order rotates between rounds.
    roofline : dict, optional
        From :func:`measure_roofline`; adds the multiple of the ideal time.
    progress : callable, optional
        Called with a line of text after each round.

    Returns
    -------
    result : dict
        JSON-able; ``models`` (not JSON-able) holds the last fitted model of
        each library and is removed by :func:`run_suite` before saving.
    """
    w = problem.workload
    n = w.n_samples
    libraries = libraries_for(w)
    fitters = {lib: make_fitter(lib, problem) for lib in libraries}
    per_iter = {lib: [] for lib in libraries}
    fit_first = {lib: [] for lib in libraries}
    fit_last = {lib: [] for lib in libraries}
    models, repeats = {}, {}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0 on purpose
        # The first fit in a process starts thread pools and grows the heap
        # to the size of the fit's temporaries (scikit-learn's first
        # max_iter=1 fit at 10^5 rows took 3.7x its later ones). Left in the
        # max_iter=1 timing, that cost would flatter the per-iteration time.
        for lib in libraries:
            time.sleep(SETTLE_SECONDS)
            with library_threads(lib, w.n_threads):
                t, _ = _timed(fitters[lib], 1, 1)
            repeats[lib] = _repeats(t)
        for r in range(rounds):
            shift = r % len(libraries)
            for lib in libraries[shift:] + libraries[:shift]:
                time.sleep(SETTLE_SECONDS)
                with library_threads(lib, w.n_threads):
                    t1, tn, models[lib] = _timed_pair(fitters[lib], 1, w.max_iter,
                                                      repeats[lib])
                fit_first[lib].append(t1)
                fit_last[lib].append(tn)
                per_iter[lib].append((tn - t1) / (w.max_iter - 1))
            if progress is not None:
                progress(f"  {w.name} round {r + 1}/{rounds}: " + ", ".join(
                    f"{lib} {per_iter[lib][-1]:.4g} s/iter" for lib in libraries))

    ratios = [_ratio(s, f) for s, f in zip(per_iter["sklearn"], per_iter["fastem"])]
    result = {
        "workload": w.to_dict(),
        "title": w.title,
        "threads": w.threads,
        "data_bytes": w.data_bytes,
        "rounds": rounds,
        "libraries": {},
        "speedup_vs_sklearn": _median(ratios),
        "speedup_rounds": ratios,
        "speedup_noise": _relative_iqr(ratios),
        "speedup_vs_daal4py": None,
        "daal4py_note": daal4py_unavailable(w),
    }
    for lib in libraries:
        result["libraries"][lib] = {
            "s_per_iter": _median(per_iter[lib]),
            "s_per_iter_rounds": per_iter[lib],
            "fit_1_s": fit_first[lib],
            f"fit_{w.max_iter}_s": fit_last[lib],
            "repeats_per_timing": repeats[lib],
            "final_lower_bound": float(lower_bounds(lib, models[lib], n)[-1]),
        }
    if "daal4py" in libraries:
        daal_ratios = [_ratio(d, f) for d, f in zip(per_iter["daal4py"], per_iter["fastem"])]
        result["speedup_vs_daal4py"] = _median(daal_ratios)
        result["speedup_vs_daal4py_rounds"] = daal_ratios
    result["agreement"] = check_agreement(w, models)
    if roofline is not None:
        ideal = ideal_time(w, roofline)
        result["ideal"] = ideal
        for entry in result["libraries"].values():
            entry["multiple_of_ideal"] = entry["s_per_iter"] / ideal["seconds"]
        result["multiple_of_ideal"] = result["libraries"]["fastem"]["multiple_of_ideal"]
    result["models"] = models
    return result


def check_agreement(workload, models):
    """How far each library's lower bounds are from scikit-learn's.

    fastem must match every iteration (``RTOL``); daal4py only reports the
    final one. A fast wrong answer is a failure, not a speed-up.
    """
    n = workload.n_samples
    reference = lower_bounds("sklearn", models["sklearn"], n)
    ours = lower_bounds("fastem", models["fastem"], n)
    if ours.shape == reference.shape:
        fastem_rel = float(np.max(np.abs(ours - reference) / np.abs(reference)))
    else:
        fastem_rel = float("inf")
    rtol = RTOL[workload.dtype]
    agreement = {
        "fastem_max_rel_diff": fastem_rel,
        "fastem_rtol": rtol,
        "fastem_ok": bool(fastem_rel <= rtol),
    }
    if "daal4py" in models:
        final = lower_bounds("daal4py", models["daal4py"], n)[-1]
        daal_rel = float(abs(final - reference[-1]) / abs(reference[-1]))
        agreement.update(daal4py_final_rel_diff=daal_rel, daal4py_rtol=DAAL4PY_RTOL,
                         daal4py_ok=bool(daal_rel <= DAAL4PY_RTOL))
    return agreement


# -- the machine's limits -------------------------------------------------------------------
def _best_seconds(fn, repeats):
    fn()  # first call pays for page faults and thread start-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _gemm_gflops(dtype, size, threads, repeats):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    c = np.empty_like(a)
    with threadpool_limits(limits=threads, user_api="blas"):
        seconds = _best_seconds(lambda: np.matmul(a, b, out=c), repeats)
    return 2.0 * size**3 / seconds / 1e9


def _in_threads(fn, args):
    workers = [threading.Thread(target=fn, args=(arg,)) for arg in args]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _read_gbs(array, threads, repeats):
    parts = np.array_split(array, threads)
    # x . x streams x from memory once per call with one FMA per element; on
    # this hardware np.sum's pairwise summation is compute-bound at about
    # half the bandwidth of one core. ddot releases the GIL, and with BLAS
    # capped at one thread each Python thread reads its own part.
    with threadpool_limits(limits=1, user_api="blas"):
        seconds = _best_seconds(lambda: _in_threads(lambda p: np.dot(p, p), parts), repeats)
    return array.nbytes / seconds / 1e9


def _exp_per_second(repeats, calls):
    # Log-responsibility differences: what an E-step exponentiates. 4096
    # values stay in L1, so this is the exp's own rate, not memory's.
    x = -20.0 * np.random.default_rng(0).random(4096)
    out = np.empty_like(x)

    def run():
        for _ in range(calls):
            np.exp(x, out=out)
    return x.size * calls / _best_seconds(run, repeats)


def measure_roofline(threads=None, quick=False):
    """Measure this machine's dgemm/sgemm rate, memory read bandwidth and
    exp rate.

    Compute scales with cores, so its ceiling for T threads is the larger of
    a T-thread measurement and T times a one-core measurement: a neighbour
    busy during the T-thread run must not lower a bound. Bandwidth does not
    scale with cores; it is measured with 1..T reading threads and the best
    kept. The exp rate is per core (Python threads cannot drive numpy's exp
    in parallel for L1-sized arrays) times T.

    Parameters
    ----------
    threads : int, optional
        Default: ``fastem.effective_n_threads()``.
    quick : bool
        Smaller matrices and fewer repeats (a second or two in all).

    Returns
    -------
    roofline : dict
    """
    threads = fastem.effective_n_threads(threads)
    size, repeats = (1024, 3) if quick else (2048, 5)
    # Eight times this machine's 32 MiB L3, so the reads come from memory.
    array_bytes = 256 * 2**20
    roof = {"threads": threads, "gemm_size": size, "repeats": repeats,
            "read_array_bytes": array_bytes}
    for name, dtype in (("dgemm", np.float64), ("sgemm", np.float32)):
        one = _gemm_gflops(dtype, size, 1, repeats)
        measured = {1: one}
        if threads > 1:
            measured[threads] = _gemm_gflops(dtype, size, threads, repeats)
        roof[f"{name}_gflops_per_core"] = one
        roof[f"{name}_gflops_measured"] = {str(t): g for t, g in measured.items()}
    array = np.ones(array_bytes // 8)
    bandwidth = {str(t): _read_gbs(array, t, repeats) for t in range(1, threads + 1)}
    del array
    roof["read_gbs_measured"] = bandwidth
    roof["exp_per_s_per_core"] = _exp_per_second(repeats, 200 if quick else 1000)
    return roof


def roofline_rates(roofline, threads):
    """Ceilings (flop/s for float64 and float32, bytes/s, exp/s) for ``threads``."""
    rates = {}
    for name in ("dgemm", "sgemm"):
        measured = roofline[f"{name}_gflops_measured"]
        scaled = roofline[f"{name}_gflops_per_core"] * threads
        rates[name] = max(scaled, measured.get(str(threads), 0.0)) * 1e9
    rates["read"] = max(g for t, g in roofline["read_gbs_measured"].items()
                        if int(t) <= max(threads, 1)) * 1e9
    rates["exp"] = roofline["exp_per_s_per_core"] * threads
    return rates


def work_per_iteration(workload):
    """Flops, bytes read and exps of one EM iteration done ideally.

    full: 2 N K D(D+1) (E-step (x - mu) U with U triangular, M-step
    symmetric scatter); tied: one shared scatter, 2 N D(D+1) + 4 N K D;
    diag and spherical: 6 N K D. Every type exponentiates N K values and
    reads X once.
    """
    N, D, K = workload.n_samples, workload.n_features, workload.n_components
    flops = {
        "full": 2 * N * K * D * (D + 1),
        "tied": 2 * N * D * (D + 1) + 4 * N * K * D,
        "diag": 6 * N * K * D,
        "spherical": 6 * N * K * D,
    }[workload.covariance_type]
    return {"flops": float(flops), "bytes": float(workload.data_bytes),
            "exps": float(N * K)}


def ideal_time(workload, roofline):
    """Ideal seconds per iteration: max(flops / peak, bytes / bandwidth,
    exps / exp rate), with the sgemm rate for float32 data."""
    work = work_per_iteration(workload)
    rates = roofline_rates(roofline, workload.threads)
    peak = rates["sgemm" if workload.dtype == "float32" else "dgemm"]
    terms = {
        "flops": work["flops"] / peak,
        "bandwidth": work["bytes"] / rates["read"],
        "exp": work["exps"] / rates["exp"],
    }
    limit = max(terms, key=terms.get)
    return {**work, "t_flops": terms["flops"], "t_bandwidth": terms["bandwidth"],
            "t_exp": terms["exp"], "seconds": terms[limit], "limit": limit}


# -- predict_proba / score_samples ------------------------------------------------------
def time_scoring(problem, models, rounds):
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
        fastem_s, sklearn_s = _median(times["fastem"]), _median(times["sklearn"])
        out[method] = {"fastem_s": fastem_s, "sklearn_s": sklearn_s,
                       "speedup": _ratio(sklearn_s, fastem_s),
                       "fastem_rounds": times["fastem"],
                       "sklearn_rounds": times["sklearn"]}
    # The two models differ by rounding, so these are small, not zero.
    out["predict_proba"]["max_abs_diff"] = float(np.max(np.abs(
        results["fastem", "predict_proba"] - results["sklearn", "predict_proba"])))
    reference = results["sklearn", "score_samples"]
    out["score_samples"]["max_rel_diff"] = float(np.max(
        np.abs(results["fastem", "score_samples"] - reference) / np.abs(reference)))
    return out


def time_pass_scaling(problem, models, repeats=10):
    """The fused EM pass alone, on one thread and on all, best of ``repeats``
    calls of each, alternating.

    The per-iteration times of a workload and its one-thread variant come
    from different rounds, so a disturbed round moves their ratio; the best
    of many alternating passes over the same data at the same parameters
    measures the kernels' own scaling (an iteration is the pass plus ~0.1 ms
    of M-step on W1 and W2).
    """
    w = problem.workload
    model = models["fastem"]
    engines = {n: Engine(w.covariance_type, w.n_components, w.n_features,
                         None, n) for n in (1, w.threads)}
    params = engines[1].kernel_params(model.weights_, model.means_,
                                      model.precisions_cholesky_, problem.X.dtype)
    best = dict.fromkeys(engines, math.inf)
    # the rounds before may end with a peer whose BLAS threads still spin
    time.sleep(SETTLE_SECONDS)
    for _ in range(repeats):
        for n, engine in engines.items():
            start = time.perf_counter()
            engine.em_stats(problem.X, params)
            best[n] = min(best[n], time.perf_counter() - start)
    return {"threads": w.threads, "repeats": repeats, "one_thread_s": best[1],
            "all_threads_s": best[w.threads],
            "speedup": _ratio(best[1], best[w.threads])}


# -- peak memory -------------------------------------------------------------------------
def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _maxrss_bytes()


def _maxrss_bytes():
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _reset_peak_rss():
    """Make the kernel's peak-RSS mark the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _maxrss_bytes()


def _memory_probe(directory, library):
    """Child process: load the data, then report the peak RSS a fit adds."""
    directory = Path(directory)
    spec = json.loads((directory / "workload.json").read_text())
    workload = Workload.from_dict(spec)
    init = np.load(directory / "init.npz")
    # Imported before the data is loaded: what importing costs is not the fit's.
    if library == "daal4py":
        import daal4py  # noqa: F401
    else:
        import sklearn.mixture  # noqa: F401
    X = np.load(directory / "X.npy")
    problem = Problem(workload, X, init["weights"], init["means"], init["precisions"])
    fit = make_fitter(library, problem)
    after_data = _rss_bytes()
    # ru_maxrss already holds the peak of the imports; resetting the mark
    # makes the reading after the fit the fit's own peak. Without the reset,
    # the difference is an upper bound.
    exact = _reset_peak_rss()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with library_threads(library, workload.n_threads):
            fit(2)
    peak = _peak_rss_bytes() if exact else _maxrss_bytes()
    print(json.dumps({"rss_after_data": after_data, "peak_rss": peak,
                      "extra_bytes": max(0, peak - after_data),
                      "method": "VmHWM reset after loading" if exact
                      else "ru_maxrss - RSS after loading"}))


def measure_memory(problem, timeout=900):
    """Peak memory a fit adds on top of its data, per library.

    Each library fits (``max_iter=2``: the second iteration allocates what
    the first did) in a fresh process that first loads the data from a
    ``.npy`` file, so neither this process's heap nor the data generator's
    temporaries count. fastem should add O(chunk x (D + K) x threads +
    K x D^2); scikit-learn adds N x K arrays.
    """
    w = problem.workload
    D, K = w.n_features, w.n_components
    model_floats = {"full": K * D * D, "tied": D * D, "diag": K * D, "spherical": K}
    out = {"workload": w.name, "data_bytes": w.data_bytes,
           "model_bytes": 8 * (model_floats[w.covariance_type] + K * D + K),
           "libraries": {}}
    with tempfile.TemporaryDirectory(prefix="fastem-bench-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "X.npy", problem.X)
        np.savez(tmp / "init.npz", weights=problem.weights_init,
                 means=problem.means_init, precisions=problem.precisions_init)
        (tmp / "workload.json").write_text(json.dumps(w.to_dict()))
        # Side by side: each process's RSS is its own, and nothing is timed.
        procs = {
            lib: subprocess.Popen(
                [sys.executable, "-m", "fastem._bench", "memory-probe", str(tmp), lib],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for lib in libraries_for(w)
        }
        for lib, proc in procs.items():
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                out["libraries"][lib] = {"error": [f"timed out after {timeout} s"]}
                continue
            if proc.returncode != 0:
                out["libraries"][lib] = {"error": stderr.strip().splitlines()[-1:]}
                continue
            entry = json.loads(stdout.strip().splitlines()[-1])
            entry["extra_over_data"] = entry["extra_bytes"] / w.data_bytes
            out["libraries"][lib] = entry
    return out


# -- machine information -----------------------------------------------------------------
def _cpuinfo():
    """(model name, "family F model M" or None, flags) of the first CPU."""
    fields, flags = {}, []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or "unknown"
    # the model name alone ("AMD EPYC") does not tell CPU generations apart
    family = (f"family {fields['cpu family']} model {fields['model']}"
              if "cpu family" in fields and "model" in fields else None)
    return model, family, flags


def _package_version(*names):
    from importlib import metadata
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine_info():
    """What a timing depends on beyond the code: CPU, threads, BLAS, OpenMP,
    versions and the environment variables that steer them."""
    import scipy
    import scipy.linalg
    import sklearn
    import sklearn.mixture

    model, family, flags = _cpuinfo()
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
    cpu_max = None
    with suppress(OSError):
        cpu_max = Path("/sys/fs/cgroup/cpu.max").read_text().strip()
    env = {k: v for k, v in sorted(os.environ.items())
           if k.startswith(("OMP_", "OPENBLAS_", "MKL_", "GOTO", "KMP_", "BLIS_",
                            "TBB_", "FASTEM_"))}
    return {
        "cpu_model": model,
        "cpu_family_model": family,
        "cpu_flags": " ".join(flags),
        "simd": [f for f in flags if f.startswith(("sse4", "avx", "fma", "asimd", "sve"))],
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "cgroup_cpu_max": cpu_max,
        "fastem_threads": fastem.effective_n_threads(),
        "fastem_openmp": fastem.openmp_enabled(),
        "environment": env,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "threadpools": threadpool_info(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "fastem": fastem.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "scikit-learn-intelex": _package_version("scikit-learn-intelex"),
            "daal4py": _package_version("daal4py", "scikit-learn-intelex"),
        },
    }


# -- the whole suite -------------------------------------------------------------------------
def _extras_workload(workloads):
    for w in workloads:
        if w.name == "W1":
            return w
    return workloads[0]


def run_suite(names=None, quick=False, rounds=None, memory=True, progress=None,
              roofline=None):
    """Run the suite and return its results as a JSON-able dict.

    Parameters
    ----------
    names : list of str, optional
        Workloads to run; default all.
    quick : bool
        N cut a hundredfold: checks that everything runs, times nothing
        that matters.
    rounds : int, optional
        Timing rounds per workload; default 3 (5 with ``quick``).
    memory : bool
        Also measure peak memory and predict/score timings, on W1 when it
        is selected, else on the first selected workload.
    progress : callable, optional
        Receives progress lines.
    roofline : dict, optional
        This machine's roofline from an earlier run, to measure the ideal
        time against; default: measured first.
    """
    workloads = select_workloads(names, quick)
    rounds = rounds if rounds is not None else (5 if quick else 3)
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    say = progress or (lambda line: None)
    started = time.perf_counter()

    if roofline is None:
        say("measuring this machine's roofline")
        roofline = measure_roofline(quick=quick)
    extras = _extras_workload(workloads)
    result = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "mode": ("quick: N / 100, checks that the suite runs; its speed-ups are not "
                 "those of full size" if quick else "full"),
        "iterations": ITERATIONS,
        "rounds": rounds,
        "machine": machine_info(),
        "roofline": roofline,
        "threshold_rule": {"floor": THRESHOLD_FLOOR, "k": THRESHOLD_K,
                           "cap": THRESHOLD_CAP,
                           "noise": "interquartile range / median of the "
                                    "per-round speed-ups over scikit-learn"},
        "workloads": {},
    }
    for w in workloads:
        say(f"{w.name} {w.title}: {w.shape_label()}")
        problem = make_problem(w)
        entry = time_workload(problem, rounds, roofline, progress)
        models = entry.pop("models")
        if w.name in ("W1", "W2") and w.threads > 1:
            say(f"  {w.name}: the EM pass alone, 1 and {w.threads} threads")
            entry["pass_scaling"] = time_pass_scaling(problem, models,
                                                      3 if quick else 10)
        if memory and w is extras:
            say(f"  {w.name}: predict_proba / score_samples")
            result["scoring"] = time_scoring(problem, models, rounds)
            say(f"  {w.name}: peak memory of a fit (fresh processes)")
            result["memory"] = measure_memory(problem)
        result["workloads"][w.name] = entry
        del problem, models
    result["derived"] = _derived(result["workloads"])
    result["elapsed_s"] = time.perf_counter() - started
    return result


def _derived(entries):
    """Speed of float32 over float64 and of all threads over one."""
    out = {}
    for base in ("W1", "W2"):
        ref = entries.get(base)
        if ref is None:
            continue
        ours = ref["libraries"]["fastem"]["s_per_iter"]
        f32 = entries.get(f"{base}-f32")
        if f32 is not None:
            out[f"{base} float32 speed-up over float64"] = _ratio(
                ours, f32["libraries"]["fastem"]["s_per_iter"])
        one = entries.get(f"{base}-1thread")
        if one is not None:
            out[f"{base} {ref['threads']}-thread speed-up over 1 thread"] = _ratio(
                one["libraries"]["fastem"]["s_per_iter"], ours)
        alone = ref.get("pass_scaling")
        if alone is not None:
            out[f"{base} {alone['threads']}-thread speed-up over 1 thread, EM pass "
                f"alone (best of {alone['repeats']} alternating)"] = alone["speedup"]
    return out


# -- regression check ---------------------------------------------------------------------
def load_result(path):
    """Read a saved result, checking that it is one."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a fastem bench result ({SCHEMA})")
    return data


def save_result(result, path):
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")


def auto_threshold(current_entry, baseline_entry):
    """Allowed fractional fall of a workload's speed-up over scikit-learn."""
    noise = max(current_entry.get("speedup_noise") or 0.0,
                baseline_entry.get("speedup_noise") or 0.0)
    if not math.isfinite(noise):
        noise = 0.0
    return min(THRESHOLD_CAP, max(THRESHOLD_FLOOR, THRESHOLD_K * noise))


def threshold_calibration(results, floor=THRESHOLD_FLOOR):
    """What the threshold rule needs to pass runs that did not regress.

    Parameters
    ----------
    results : list of dict
        Several results of the same mode and code on one machine.
    floor : float

    Returns
    -------
    calibration : dict
        Per workload the largest fall of the speed-up from any run to any
        other, and ``k_needed``: the smallest k for which
        ``max(floor, k * noise)`` passes every ordered pair of runs.
    """
    if len(results) < 2:
        raise ValueError("need at least two results")
    largest, k_needed, pairs = {}, 0.0, 0
    for name in results[0]["workloads"]:
        entries = [r["workloads"][name] for r in results if name in r["workloads"]]
        for a in entries:
            for b in entries:
                if a is b:
                    continue
                pairs += 1
                fall = 1.0 - _ratio(b["speedup_vs_sklearn"], a["speedup_vs_sklearn"])
                largest[name] = max(largest.get(name, 0.0), fall)
                noise = max(_relative_iqr(a["speedup_rounds"]),
                            _relative_iqr(b["speedup_rounds"]))
                if fall > floor:
                    k_needed = max(k_needed, fall / noise if noise > 0 else math.inf)
    return {"runs": len(results), "ordered_pairs": pairs, "floor": floor,
            "largest_fall": largest, "k_needed": k_needed}


def regressed(rows):
    """Names of the workloads whose speed-up fell beyond the threshold."""
    return [row["workload"] for row in rows if row["status"] == "REGRESSED"]


def merge_rerun(result, rerun):
    """Put the workloads of ``rerun`` (a :func:`run_suite` result) in place of
    the same workloads of ``result``, in place; what their first attempt
    measured stays beside them under ``first_attempt``.

    A workload whose rounds were all disturbed (another process on the
    machine for a minute) falls beyond the threshold with quiet rounds,
    which no threshold derived from round-to-round noise can tell from a
    regression; a second attempt minutes later can.
    """
    for name, entry in rerun["workloads"].items():
        first = result["workloads"][name]
        entry["first_attempt"] = {
            "speedup_vs_sklearn": first["speedup_vs_sklearn"],
            "speedup_noise": first["speedup_noise"],
            "speedup_rounds": first["speedup_rounds"],
            "fastem_s_per_iter": first["libraries"]["fastem"]["s_per_iter"],
        }
        result["workloads"][name] = entry
    result["derived"] = _derived(result["workloads"])
    result["elapsed_s"] += rerun["elapsed_s"]
    return result


def rerun_regressed(result, baseline, threshold=None, progress=None):
    """Run the workloads of ``result`` that fell beyond the threshold against
    ``baseline`` again, in the same mode and rounds and against the same
    roofline, and merge them in (:func:`merge_rerun`). Returns their names.
    """
    fell = regressed(compare(result, baseline, threshold)[0])
    if fell:
        if progress is not None:
            progress(f"{', '.join(fell)}: speed-up over scikit-learn fell beyond the "
                     f"threshold; running again to tell a regression from a "
                     f"disturbed run")
        merge_rerun(result, run_suite(fell, quick=result["quick"],
                                      rounds=result["rounds"], memory=False,
                                      progress=progress, roofline=result["roofline"]))
    return fell


def compare(result, baseline, threshold=None):
    """Compare each workload's speed-up over scikit-learn with a baseline's.

    Parameters
    ----------
    result, baseline : dict
        Results of :func:`run_suite` (or loaded with :func:`load_result`).
    threshold : float, optional
        Allowed fractional fall (0.2 = 20 %) for every workload; default:
        :func:`auto_threshold` per workload.

    Returns
    -------
    rows : list of dict
        One per workload of either, with ``status`` "ok", "ok (noisy)",
        "REGRESSED", "WRONG" (fastem disagrees with scikit-learn), "new" (not
        in the baseline) or "not run"; "ok (re-run)" when a workload that
        fell beyond the threshold was run again (:func:`merge_rerun`) and
        did not fall this time, its first attempt's change in
        ``first_change``.
    failed : bool
    """
    if bool(result.get("quick")) != bool(baseline.get("quick")):
        mode = {True: "quick", False: "full"}
        raise ValueError(
            f"cannot compare a {mode[bool(result.get('quick'))]} run with a "
            f"{mode[bool(baseline.get('quick'))]} baseline: speed-ups depend on N; "
            "run with the baseline's mode"
        )
    rows = []
    for name, entry in result["workloads"].items():
        ours = entry["speedup_vs_sklearn"]
        base = baseline["workloads"].get(name)
        row = {"workload": name, "current": ours, "baseline": None, "change": None,
               "threshold": None, "status": "new"}
        if base is not None:
            allowed = threshold if threshold is not None else auto_threshold(entry, base)
            change = _ratio(ours, base["speedup_vs_sklearn"]) - 1.0
            if not change >= -allowed:
                status = "REGRESSED"
            elif threshold is None and allowed >= THRESHOLD_CAP:
                # Too scattered to see less than the cap: worth a rerun.
                status = "ok (noisy)"
            else:
                status = "ok"
            first = entry.get("first_attempt")
            if first is not None:
                row["first_change"] = _ratio(first["speedup_vs_sklearn"],
                                             base["speedup_vs_sklearn"]) - 1.0
                if status != "REGRESSED":
                    status = "ok (re-run)"
            row.update(baseline=base["speedup_vs_sklearn"], change=change,
                       threshold=allowed, status=status)
        if not entry["agreement"]["fastem_ok"]:
            row["status"] = "WRONG"
        rows.append(row)
    for name in baseline["workloads"]:
        if name not in result["workloads"]:
            rows.append({"workload": name, "current": None,
                         "baseline": baseline["workloads"][name]["speedup_vs_sklearn"],
                         "change": None, "threshold": None, "status": "not run"})
    failed = any(row["status"] in ("REGRESSED", "WRONG") for row in rows)
    return rows, failed


# -- text output ------------------------------------------------------------------------------
def _seconds(x):
    if x is None or not math.isfinite(x):
        return "n/a"
    if x <= 0:
        return f"{x:.2g}"
    decimals = min(7, max(0, 2 - math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def _times(x):
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}x"


def _table(header, rows, align):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = []
    for cells in [header, *rows]:
        lines.append("  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_result(result):
    """The text report of a result: workloads, roofline, memory, scoring."""
    lines = []
    mode = "quick (N / 100)" if result.get("quick") else "full"
    machine = result["machine"]
    lines.append(f"fastem bench, {mode}, {result['iterations']} EM iterations from a fixed "
                 f"init, marginal seconds per iteration, median of {result['rounds']} rounds")
    family = machine.get("cpu_family_model")
    lines.append(f"{machine['cpu_model']}{f' ({family})' if family else ''}, "
                 f"{machine['usable_cpus']} usable CPUs, fastem "
                 f"{machine['fastem_threads']} threads (OpenMP "
                 f"{'on' if machine['fastem_openmp'] else 'off'})")
    lines.append("")

    header = ["workload", "kind", "N x D, K, cov", "fastem s/it", "sklearn s/it", "speed-up",
              "daal4py s/it", "vs daal4py", "x ideal", "limit", "noise", "agrees"]
    rows = []
    for name, e in result["workloads"].items():
        w = e["workload"]
        libs = e["libraries"]
        daal = libs.get("daal4py")
        agree = e["agreement"]
        ok = "yes" if agree["fastem_ok"] else "NO"
        if daal is not None and not agree.get("daal4py_ok", True):
            ok += " (daal4py no)"
        rows.append([
            name, e["title"],
            f"{w['n_samples']:,} x {w['n_features']}, {w['n_components']}, "
            f"{w['covariance_type']}",
            _seconds(libs["fastem"]["s_per_iter"]),
            _seconds(libs["sklearn"]["s_per_iter"]),
            _times(e["speedup_vs_sklearn"]),
            _seconds(daal["s_per_iter"]) if daal else "n/a",
            _times(e["speedup_vs_daal4py"]) if daal else "n/a",
            f"{e['multiple_of_ideal']:.3g}" if "multiple_of_ideal" in e else "n/a",
            e["ideal"]["limit"] if "ideal" in e else "n/a",
            f"{100 * e['speedup_noise']:.0f}%",
            ok,
        ])
    lines.append(_table(header, rows, ["<", "<", "<", ">", ">", ">", ">", ">", ">", "<",
                                       ">", "<"]))
    lines.append("speed-up = sklearn s/it / fastem s/it (median of per-round ratios); "
                 "vs daal4py = daal4py s/it / fastem s/it;")
    lines.append("x ideal = fastem s/it / this machine's ideal s/it; noise = interquartile "
                 "range / median of the per-round speed-ups.")
    notes = sorted({e["daal4py_note"] for e in result["workloads"].values()
                    if e.get("daal4py_note")})
    for note in notes:
        lines.append(f"daal4py n/a: {note}")

    roof = result["roofline"]
    t = roof["threads"]
    rates = roofline_rates(roof, t)
    lines.append("")
    lines.append(f"Roofline ({t} threads; per core x threads for compute, best of "
                 f"1..{t} reading threads for memory)")
    lines.append(f"  dgemm {roof['dgemm_gflops_per_core']:.1f} GFLOP/s per core, "
                 f"ceiling {rates['dgemm'] / 1e9:.1f} (measured "
                 f"{roof['dgemm_gflops_measured'].get(str(t), float('nan')):.1f} "
                 f"on {t} threads)")
    lines.append(f"  sgemm {roof['sgemm_gflops_per_core']:.1f} GFLOP/s per core, "
                 f"ceiling {rates['sgemm'] / 1e9:.1f} (measured "
                 f"{roof['sgemm_gflops_measured'].get(str(t), float('nan')):.1f} "
                 f"on {t} threads)")
    reads = ", ".join(f"{g:.1f} ({k} thr)" for k, g in roof["read_gbs_measured"].items())
    lines.append(f"  memory read {reads} GB/s")
    lines.append(f"  exp {roof['exp_per_s_per_core'] / 1e9:.2f}e9 /s per core, "
                 f"ceiling {rates['exp'] / 1e9:.2f}e9 /s")

    if result.get("derived"):
        lines.append("")
        lines.append("Scaling (fastem)")
        for label, value in result["derived"].items():
            lines.append(f"  {label}: {_times(value)}")

    memory = result.get("memory")
    if memory:
        lines.append("")
        lines.append(f"Peak memory of a fit on {memory['workload']} (fresh process, "
                     f"beyond the data's {memory['data_bytes'] / 2**20:.1f} MiB; model "
                     f"{memory['model_bytes'] / 2**10:.1f} KiB)")
        for lib, m in memory["libraries"].items():
            if "error" in m:
                lines.append(f"  {lib:8} failed: {' '.join(m['error'])}")
            else:
                lines.append(f"  {lib:8} +{m['extra_bytes'] / 2**20:8.1f} MiB  "
                             f"({m['extra_over_data']:.2f} x data)")

    scoring = result.get("scoring")
    if scoring:
        lines.append("")
        lines.append(f"Scoring on {scoring['workload']} ({scoring['n_samples']:,} rows), "
                     "seconds per call")
        for method in ("predict_proba", "score_samples"):
            s = scoring[method]
            lines.append(f"  {method:14} fastem {_seconds(s['fastem_s'])}  sklearn "
                         f"{_seconds(s['sklearn_s'])}  speed-up {_times(s['speedup'])}")
    return "\n".join(lines)


def format_comparison(rows, baseline_path, baseline):
    lines = [f"Compared with {baseline_path} ({baseline.get('created', '?')}, "
             f"{baseline['machine'].get('cpu_model', '?')})"]
    header = ["workload", "baseline speed-up", "now", "change", "allowed fall", "status"]
    table = []
    for r in rows:
        if r["status"] == "not run":
            continue
        table.append([
            r["workload"],
            _times(r["baseline"]) if r["baseline"] is not None else "-",
            _times(r["current"]),
            f"{100 * r['change']:+.1f}%" if r["change"] is not None else "-",
            f"{100 * r['threshold']:.1f}%" if r["threshold"] is not None else "-",
            r["status"],
        ])
    lines.append(_table(header, table, ["<", ">", ">", ">", ">", "<"]))
    for r in rows:
        if "first_change" in r:
            lines.append(f"{r['workload']}: run again after a first attempt at "
                         f"{100 * r['first_change']:+.1f}%; a regression is two "
                         f"falls beyond the threshold")
    skipped = [r["workload"] for r in rows if r["status"] == "not run"]
    if skipped:
        lines.append(f"in the baseline, not run now: {', '.join(skipped)}")
    return "\n".join(lines)


def machine_differences(result, baseline):
    """Machine facts that differ between a result and its baseline."""
    diffs = []
    a, b = result["machine"], baseline["machine"]
    for key in ("cpu_model", "cpu_family_model", "usable_cpus", "fastem_threads",
                "fastem_openmp", "openblas_coretype"):
        # older results do not record the CPU family: no difference then
        if key == "cpu_family_model" and not (a.get(key) and b.get(key)):
            continue
        if a.get(key) != b.get(key):
            diffs.append(f"{key}: baseline {b.get(key)!r}, now {a.get(key)!r}")
    return diffs


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "memory-probe":
        _memory_probe(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m fastem._bench memory-probe DIR LIBRARY "
                 "(internal; run `fastem bench`)")

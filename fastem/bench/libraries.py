"""The libraries the suite times, one adapter class each, and the check
that their answers agree.

scikit-learn is the reference: every speed-up is over it and every answer
is checked against it. fastem is the library under test. Every other entry
of :data:`ADAPTERS` is a peer, timed in the same rounds where it is
installed and reported in its own columns (``<name> s/it``, ``vs <name>``)
and JSON keys (``speedup_vs_<name>``, ``<name>_note``). Adding a peer is a
subclass of :class:`Library` and one entry in :data:`ADAPTERS`.
"""
import importlib.util
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
from threadpoolctl import threadpool_limits

import fastem
from fastem.bench.problems import Problem
from fastem.bench.workloads import Workload

# Same initial parameters and the same algebra: fastem and scikit-learn
# differ by rounding only. In float32 fastem computes distances in float32
# where scikit-learn mixes precisions.
RTOL = {"float64": 1e-8, "float32": 1e-4}
# A float32 log-density sums D squares, and a float32 fit drifts from the
# float64 one more the more features and the worse conditioned the
# covariances. On the quick workloads after 3 iterations, scikit-learn's
# float32 lower bound was 2.6e-5 (D128-K32), 1.4e-3 (D256-K32) and 4.3e-4
# (D512-K8) from its float64 one, fastem's 3.5e-7, 9.1e-5 and 7.2e-5. So
# from D = 10 on the float32 tolerance grows with D, above scikit-learn's
# measured drift.
RTOL_FLOAT32_PER_FEATURE = 1e-5
# daal4py adds no reg_covar (its regularizationFactor only applies to
# ill-conditioned covariances), so its trajectory drifts from
# scikit-learn's by about reg_covar / eigenvalue per iteration: at most
# 3e-8 relative on the quick workloads, more expected at full size.
DAAL4PY_RTOL = 1e-5

SUBJECT = "fastem"
REFERENCE = "sklearn"


class Library:
    """One library's side of a timing.

    A subclass says whether it can run a workload, how to fit it from the
    shared initial parameters for a given number of iterations, how to
    read back the lower bounds and how to run on a given number of threads.
    """

    #: the name in the registry, the JSON and the table
    name = ""
    #: modules a fit needs, imported before the data when memory is measured
    imports: tuple[str, ...] = ()
    #: False when the library reports only the final lower bound
    reports_every_iteration = True

    def unavailable(self, workload: Workload) -> str | None:
        """Why this library cannot run ``workload``, or None when it can."""
        return None

    def rtol(self, workload: Workload) -> float:
        """Relative tolerance of its lower bounds against scikit-learn's."""
        if workload.dtype == "float32":
            return max(RTOL["float32"], RTOL_FLOAT32_PER_FEATURE * workload.n_features)
        return RTOL[workload.dtype]

    def estimator(self, problem: Problem, max_iter: int | None = None):
        """An unfitted scikit-learn-style estimator set up for fixed work."""
        raise ValueError(f"{self.name} has no scikit-learn-style estimator")

    def fitter(self, problem: Problem) -> Callable:
        """A function ``fit(max_iter) -> model`` whose call is what gets timed."""
        X = problem.X

        def fit(max_iter):
            return self.estimator(problem, max_iter).fit(X)
        return fit

    def lower_bounds(self, model, n_samples: int) -> np.ndarray:
        """Mean log-likelihood per iteration."""
        return np.asarray(model.lower_bounds_, dtype=np.float64)

    @contextmanager
    def threads(self, n_threads: int | None):
        """Run on ``n_threads`` threads (None: the library's defaults)."""
        yield


def _fixed_work(problem, max_iter):
    """Estimator parameters shared by fastem and scikit-learn."""
    w = problem.workload
    return dict(
        n_components=w.n_components,
        covariance_type=w.covariance_type,
        tol=0.0,  # never converge early: every fit does max_iter iterations
        max_iter=w.max_iter if max_iter is None else max_iter,
        weights_init=problem.weights_init,
        means_init=problem.means_init,
        precisions_init=problem.precisions_init,
        random_state=0,
    )


class Fastem(Library):
    """fastem takes its thread count as a parameter."""

    name = "fastem"
    imports = ("fastem",)

    def estimator(self, problem, max_iter=None):
        return fastem.GaussianMixture(**_fixed_work(problem, max_iter),
                                      n_threads=problem.workload.n_threads)


class ScikitLearn(Library):
    """scikit-learn's only threads are BLAS's."""

    name = "sklearn"
    imports = ("sklearn.mixture",)

    def estimator(self, problem, max_iter=None):
        from sklearn.mixture import GaussianMixture
        return GaussianMixture(**_fixed_work(problem, max_iter))

    @contextmanager
    def threads(self, n_threads):
        if n_threads is None:
            yield
            return
        with threadpool_limits(limits=n_threads, user_api="blas"):
            yield


class Daal4py(Library):
    """oneDAL's EM through daal4py; it has a global thread count."""

    name = "daal4py"
    imports = ("daal4py",)
    reports_every_iteration = False

    def unavailable(self, workload):
        if importlib.util.find_spec("daal4py") is None:
            return "daal4py not installed (pip install 'fastem[bench]')"
        if workload.covariance_type not in ("full", "diag"):
            return f"daal4py has no {workload.covariance_type} covariance"
        return None

    def rtol(self, workload):
        return DAAL4PY_RTOL

    def fitter(self, problem):
        # What depends only on the workload (the initial covariances in
        # daal4py's layout) is prepared here, outside the timing.
        import daal4py

        w = problem.workload
        X = problem.X
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

    def lower_bounds(self, model, n_samples):
        # goalFunction is the *summed* log-likelihood of the parameters
        # before the last M-step: scikit-learn's last lower bound times N
        # (checked against scikit-learn on every run).
        return np.array([float(np.asarray(model.goalFunction).ravel()[0]) / n_samples])

    @contextmanager
    def threads(self, n_threads):
        if n_threads is None:
            yield
            return
        import daal4py
        previous = daal4py.num_threads()
        daal4py.daalinit(n_threads)
        try:
            yield
        finally:
            daal4py.daalinit(previous)


#: Every library, by name, in the order of the columns: the library under
#: test, the reference, then the peers.
ADAPTERS = {lib.name: lib for lib in [Fastem(), ScikitLearn(), Daal4py()]}
LIBRARIES = tuple(ADAPTERS)


def peers() -> list[str]:
    """The registered libraries other than fastem and scikit-learn."""
    return [name for name in ADAPTERS if name not in (SUBJECT, REFERENCE)]


def adapter(library: str) -> Library:
    """The adapter of a library by name."""
    try:
        return ADAPTERS[library]
    except KeyError:
        raise ValueError(f"unknown library {library!r}") from None


def daal4py_unavailable(workload: Workload) -> str | None:
    """Why daal4py cannot run a workload, or None when it can."""
    return ADAPTERS["daal4py"].unavailable(workload)


def libraries_for(workload: Workload) -> list[str]:
    """The libraries that can run ``workload``, in column order."""
    return [name for name, lib in ADAPTERS.items() if lib.unavailable(workload) is None]


def make_estimator(library: str, problem: Problem, max_iter: int | None = None):
    """An unfitted fastem or scikit-learn estimator set up for fixed work."""
    return adapter(library).estimator(problem, max_iter)


def make_fitter(library: str, problem: Problem) -> Callable:
    """A function ``fit(max_iter) -> model`` whose call is what gets timed.

    Everything that depends only on the workload is prepared here, outside
    the timing.
    """
    return adapter(library).fitter(problem)


def lower_bounds(library: str, model, n_samples: int) -> np.ndarray:
    """Mean log-likelihood per iteration; daal4py only reports the last."""
    return adapter(library).lower_bounds(model, n_samples)


def library_threads(library: str, n_threads: int | None):
    """Run a library on ``n_threads`` threads (None: its defaults), as a
    context manager."""
    return adapter(library).threads(n_threads)


def _max_rel_diff(values, reference):
    if values.shape != reference.shape:
        return float("inf")
    return float(np.max(np.abs(values - reference) / np.abs(reference)))


def check_agreement(workload: Workload, models: dict) -> dict:
    """How far each library's lower bounds are from scikit-learn's.

    fastem must match every iteration (``RTOL``); a peer that reports only
    the final lower bound (daal4py) is checked on that one. A fast wrong
    answer is a failure, not a speed-up.
    """
    n = workload.n_samples
    reference = lower_bounds(REFERENCE, models[REFERENCE], n)
    fastem_rel = _max_rel_diff(lower_bounds(SUBJECT, models[SUBJECT], n), reference)
    rtol = ADAPTERS[SUBJECT].rtol(workload)
    agreement = {
        "fastem_max_rel_diff": fastem_rel,
        "fastem_rtol": rtol,
        "fastem_ok": bool(fastem_rel <= rtol),
    }
    for peer in peers():
        if peer not in models:
            continue
        lib = ADAPTERS[peer]
        theirs = lib.lower_bounds(models[peer], n)
        if lib.reports_every_iteration:
            key, rel = f"{peer}_max_rel_diff", _max_rel_diff(theirs, reference)
        else:
            key = f"{peer}_final_rel_diff"
            rel = float(abs(theirs[-1] - reference[-1]) / abs(reference[-1]))
        peer_rtol = lib.rtol(workload)
        agreement.update({key: rel, f"{peer}_rtol": peer_rtol,
                          f"{peer}_ok": bool(rel <= peer_rtol)})
    return agreement

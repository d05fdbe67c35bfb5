"""Workloads shared by the pytest benchmarks and the standalone scripts.

A workload is a seeded mixture of Gaussians plus fixed initial parameters,
so fastem and scikit-learn start from exactly the same point and do exactly
the same amount of work (``tol=0``, fixed ``max_iter``).

Initial parameters are the *true generating parameters, perturbed*, not
k-means centres: every mean moved by half a unit per coordinate, every
covariance inflated by the identity, weights reset to uniform. Starting near
the truth keeps the trajectory well conditioned, so two correct
implementations cannot wander into different local optima and their lower
bounds can be compared to 1e-8; the perturbation is large enough that every
one of the fixed iterations still changes the parameters. It also avoids
running k-means, whose cost and randomness would belong to neither library's
EM.
"""
import os
from dataclasses import dataclass, replace

import numpy as np

# Expected distance between two component means, in units of a typical
# component standard deviation (the covariances below have eigenvalues in
# about [0.1, 4]). At 6 the 16-dimensional W1 reached its optimum to 1e-5 in
# five iterations, so the rest of the fixed work compared lower bounds at a
# fixed point; at 3 the lower bound still moves at iteration 10 on every
# workload, so all iterations are checked while the mixture stays a mixture.
_MEAN_SEPARATION = 3.0

# Below this many rows a smoke run keeps the full workload: it is already fast.
_SMOKE_MIN_ROWS = 10_000


@dataclass(frozen=True)
class Workload:
    name: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str = "full"
    dtype: type = np.float64
    max_iter: int = 10
    seed: int = 0

    def smoke(self):
        """The same workload with N cut a hundredfold, for runs that only
        check the code still works (benchmarks disabled)."""
        n = max(self.n_samples // 100, min(self.n_samples, _SMOKE_MIN_ROWS))
        return replace(self, n_samples=n)

    def describe(self):
        return (f"{self.name}: N={self.n_samples:,} D={self.n_features} "
                f"K={self.n_components} {self.covariance_type} "
                f"{np.dtype(self.dtype).name}, {self.max_iter} EM iterations")


W1 = Workload("W1", 1_000_000, 16, 16, "full", np.float64)
W5 = Workload("W5", 10_000, 2, 3, "full", np.float64)


@dataclass
class Problem:
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


def _sample(rng, n_samples, weights, means, covariances):
    n_components, n_features = means.shape
    counts = rng.multinomial(n_samples, weights)
    X = np.empty((n_samples, n_features))
    start = 0
    for mean, cov, count in zip(means, covariances, counts):
        L = np.linalg.cholesky(cov)
        X[start:start + count] = mean + rng.standard_normal((count, n_features)) @ L.T
        start += count
    # Rows drawn component by component would give every chunk a single
    # component; shuffled, each chunk looks like the whole data set.
    return X[rng.permutation(n_samples)]


def _precisions(covariances, weights, covariance_type):
    if covariance_type == "full":
        p = np.linalg.inv(covariances)
        # inv() is symmetric only to rounding; both libraries must see the
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
    """Data and initial parameters for a workload, from its seed alone."""
    rng = np.random.default_rng(workload.seed)
    D, K = workload.n_features, workload.n_components
    weights, means, covariances = _random_mixture(rng, D, K)
    X = _sample(rng, workload.n_samples, weights, means, covariances)
    X = np.ascontiguousarray(X, dtype=workload.dtype)

    means_init = means + rng.normal(scale=0.5, size=means.shape)
    covariances_init = covariances + np.eye(D)
    weights_init = np.full(K, 1.0 / K)
    precisions_init = _precisions(covariances_init, weights_init, workload.covariance_type)
    return Problem(workload, X, weights_init, means_init, precisions_init)


def make_estimator(library, problem, max_iter=None, n_threads=None):
    """An unfitted estimator of either library, set up for fixed work."""
    w = problem.workload
    params = dict(
        n_components=w.n_components,
        covariance_type=w.covariance_type,
        tol=0.0,  # never converge early: every run does max_iter iterations
        max_iter=w.max_iter if max_iter is None else max_iter,
        weights_init=problem.weights_init,
        means_init=problem.means_init,
        precisions_init=problem.precisions_init,
        random_state=0,
    )
    if library == "fastem":
        import fastem
        return fastem.GaussianMixture(**params, n_threads=n_threads)
    if library == "sklearn":
        from sklearn.mixture import GaussianMixture
        return GaussianMixture(**params)
    raise ValueError(f"unknown library {library!r}")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine_info(n_threads=None):
    """What a timing depends on beyond the code: CPU, threads, BLAS, versions."""
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    import fastem

    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
    pools = [
        {key: pool.get(key) for key in
         ("user_api", "internal_api", "version", "num_threads", "threading_layer",
          "architecture", "filepath")}
        for pool in threadpool_info()
    ]
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "fastem_openmp": fastem.openmp_enabled(),
        "fastem_threads": fastem.effective_n_threads(n_threads),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "threadpools": pools,
        "versions": {
            "fastem": fastem.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "sklearn": sklearn.__version__,
        },
    }

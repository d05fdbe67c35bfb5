"""A workload's data and the initial parameters every library starts from,
drawn from the workload's seed alone."""
from dataclasses import dataclass

import numpy as np

from fastem.bench.workloads import Workload

# Expected distance between two component means, in units of a typical
# component standard deviation (covariance eigenvalues lie in about
# [0.1, 4]). At 6 the 16-dimensional W1 reached its optimum to 1e-5 within
# five iterations, leaving the rest of the fixed work at a fixed point; at 3
# the lower bound still moves at iteration 10 on every workload.
_MEAN_SEPARATION = 3.0


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


def make_problem(workload: Workload) -> Problem:
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

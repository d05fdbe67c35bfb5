"""covariance_type="diag": each component has its own diagonal covariance."""
from __future__ import annotations

import numpy as np
from sklearn.utils import check_array

from fastem._covtypes._base import (
    NK_EPS,
    CovarianceType,
    check_positive,
    check_shape,
    positive_precision_cholesky,
)


def mean_terms(stats, nk, delta):
    """scikit-learn's diagonal estimate sum_n r x^2 / n_k - m^2 about the
    shift c, with d = m - c and rho = eps / n_k, is s2 / n_k plus these
    (K, D): -d^2 + 2 c (s1 / n_k - d) - rho c^2. A component on a single
    point gets 0, or a rounding error below it, as in scikit-learn."""
    c, nk = stats.shift, nk[:, np.newaxis]
    return -delta**2 + 2 * c * (stats.s1 / nk - delta) - (NK_EPS / nk) * c**2


class Diag(CovarianceType):
    name = "diag"
    # the differences and their squares also stay in buffers, but the pass
    # ran faster with the budget counting the chunk alone
    chunk_extra_rows = 0

    def shape(self, n_components, n_features):
        return (n_components, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features

    def _scatter(self, diff, r):
        return r @ diff**2

    def s2_from_scatter(self, scatter):
        return np.diagonal(scatter, axis1=1, axis2=2).copy()

    def recentered_s2(self, s2, nk, s1, d):
        return s2 - 2 * d * s1 + nk[:, np.newaxis] * d**2

    def covariances(self, stats, nk, delta, reg_covar):
        return stats.s2 / nk[:, np.newaxis] + mean_terms(stats, nk, delta) + reg_covar

    def precision_cholesky(self, covariances, reg_covar=None):
        return positive_precision_cholesky(covariances, reg_covar)

    def precision_cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def precisions_from_cholesky(self, prec_chol):
        return prec_chol**2

    def covariances_from_cholesky(self, prec_chol):
        return 1.0 / prec_chol**2

    def log_det_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(prec_chol), axis=1)

    def check_precisions(self, precisions, n_features):
        check_positive(precisions, self.name)

    prior_moment = "variances"

    def covariance_prior_from(self, moment):
        return moment

    def check_covariance_prior(self, prior, n_features):
        prior = check_array(prior, dtype=[np.float64, np.float32], ensure_2d=False,
                            input_name="covariance_prior")
        check_shape(prior, (n_features,), f"{self.name} covariance_prior")
        check_positive(prior, self.name)
        return prior

    def variational_covariances(self, nk, xk, sk, mean_precision, prior):
        dof = prior.dof + nk
        diff = xk - prior.mean
        covariances = prior.covariance + nk[:, np.newaxis] * (
            sk + (prior.mean_precision / mean_precision)[:, np.newaxis] * np.square(diff))
        covariances /= dof[:, np.newaxis]
        return dof, covariances

    def dense(self, covariances, n_components, n_features):
        return covariances[:, :, np.newaxis] * np.eye(n_features)

    def sample(self, rng, means, covariances, counts):
        n_features = means.shape[1]
        return [m + rng.standard_normal(size=(n, n_features)) * np.sqrt(c)
                for m, c, n in zip(means, covariances, counts, strict=True)]

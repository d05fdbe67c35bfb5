"""covariance_type="spherical": each component has a single variance."""
from __future__ import annotations

import numpy as np

from fastem._covtypes._base import CovarianceType, check_positive, positive_precision_cholesky


class Spherical(CovarianceType):
    name = "spherical"
    # as diag: counting the chunk alone measured faster
    chunk_extra_rows = 0

    def shape(self, n_components, n_features):
        return (n_components,)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components

    def _scatter(self, diff, r):
        return r @ np.einsum("ij,ij->i", diff, diff)

    def recentered_s2(self, s2, nk, s1, d):
        return s2 - 2 * np.sum(d * s1, axis=1) + nk * np.sum(d**2, axis=1)

    def covariances(self, s2, nk, delta, reg_covar):
        # the mean of the diagonal variances
        n_features = delta.shape[1]
        return (s2 / nk - np.sum(delta**2, axis=1)) / n_features + reg_covar

    def precision_cholesky(self, covariances, reg_covar=None):
        return positive_precision_cholesky(covariances, reg_covar)

    def precision_cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def precisions_from_cholesky(self, prec_chol):
        return prec_chol**2

    def covariances_from_cholesky(self, prec_chol):
        return 1.0 / prec_chol**2

    def log_det_cholesky(self, prec_chol, n_features):
        # per component: D log u_k
        return n_features * np.log(prec_chol)

    def check_precisions(self, precisions, n_features):
        check_positive(precisions, self.name)

    def dense(self, covariances, n_components, n_features):
        return covariances[:, np.newaxis, np.newaxis] * np.eye(n_features)

    def sample(self, rng, means, covariances, counts):
        n_features = means.shape[1]
        return [m + rng.standard_normal(size=(n, n_features)) * np.sqrt(c)
                for m, c, n in zip(means, covariances, counts, strict=True)]

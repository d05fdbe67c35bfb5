"""covariance_type="spherical": each component has a single variance."""
from __future__ import annotations

from numbers import Real

import numpy as np

from fastem._covtypes.diag import Diag, mean_terms


class Spherical(Diag):
    """Diag with one variance per component: its elementwise precisions,
    checks and sampling are diag's, broadcast per component."""

    name = "spherical"

    def shape(self, n_components, n_features):
        return (n_components,)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components

    def _scatter(self, diff, r):
        return r @ np.einsum("ij,ij->i", diff, diff)

    def s2_from_scatter(self, scatter):
        return np.trace(scatter, axis1=1, axis2=2)

    def recentered_s2(self, s2, nk, s1, d):
        return s2 - 2 * np.sum(d * s1, axis=1) + nk * np.sum(d**2, axis=1)

    def covariances(self, stats, nk, delta, reg_covar):
        # scikit-learn's: the mean of diag's variances (s2 is their trace)
        total = stats.s2 / nk + mean_terms(stats, nk, delta).sum(axis=1)
        return total / delta.shape[1] + reg_covar

    def covariance_prior_from(self, moment):
        return moment.mean()

    def check_covariance_prior(self, prior, n_features):
        if not (isinstance(prior, Real) and prior > 0):
            raise ValueError("The parameter 'spherical covariance_prior' should be a "
                             f"positive number, got {prior!r}")
        return float(prior)

    def variational_covariances(self, nk, xk, sk, mean_precision, prior):
        dof = prior.dof + nk
        diff = xk - prior.mean
        covariances = prior.covariance + nk * (
            sk + prior.mean_precision / mean_precision * np.mean(np.square(diff), 1))
        covariances /= dof
        return dof, covariances

    def log_det_cholesky(self, prec_chol, n_features):
        # per component: D log u_k
        return n_features * np.log(prec_chol)

    def dense(self, covariances, n_components, n_features):
        return covariances[:, np.newaxis, np.newaxis] * np.eye(n_features)

"""covariance_type="full": each component has its own covariance matrix."""
from __future__ import annotations

import numpy as np

from fastem._covtypes._base import (
    CovarianceType,
    check_matrix_prior,
    check_symmetric_positive_definite,
    cholesky_stack,
    flipudlr,
)
from fastem._kernels import _em, _linalg


class Full(CovarianceType):
    name = "full"
    # the scatter's weighted differences
    chunk_extra_rows = 1

    def shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) / 2.0

    def _scatter(self, diff, r):
        return (diff.T * r) @ diff

    def s2_from_scatter(self, scatter):
        return scatter

    def recentered_s2(self, s2, nk, s1, d):
        return (s2
                - s1[:, :, np.newaxis] * d[:, np.newaxis, :]
                - d[:, :, np.newaxis] * s1[:, np.newaxis, :]
                + nk[:, np.newaxis, np.newaxis] * d[:, :, np.newaxis] * d[:, np.newaxis, :])

    def covariances(self, stats, nk, delta, reg_covar):
        # scikit-learn's sum_n r (x - m)(x - m)^T / n_k about the shift c,
        # in one typed pass (fastem/_kernels/_linalg.pyx)
        out = np.empty_like(stats.s2)
        _linalg.full_covariances(np.ascontiguousarray(stats.s2), stats.s1, stats.nk, nk,
                                 delta, reg_covar, out)
        return out

    def precision_cholesky(self, covariances, reg_covar=None):
        return cholesky_stack(covariances, reg_covar, shared=False)

    def precision_cholesky_from_precisions(self, precisions):
        # the lower Cholesky factor of the precision with rows and columns reversed
        return flipudlr(np.linalg.cholesky(flipudlr(precisions)))

    def precisions_from_cholesky(self, prec_chol):
        # one BLAS product per component, as scikit-learn forms them
        return prec_chol @ np.swapaxes(prec_chol, -1, -2)

    def covariances_from_cholesky(self, prec_chol):
        # (U U^T)^-1 = U^-T U^-1
        inv = np.linalg.inv(prec_chol)
        return np.swapaxes(inv, -1, -2) @ inv

    def log_det_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)

    def check_precisions(self, precisions, n_features):
        check_symmetric_positive_definite(precisions, self.name, n_features)

    def kernel_prec(self, prec_chol, n_features, dtype):
        # rows padded for the kernel's register blocks, zero below the
        # diagonal and in the padding (see _em.pyx)
        n_components = prec_chol.shape[0]
        prec = np.empty(n_components * n_features * _em.tri_stride(n_features), dtype=dtype)
        log_det = np.empty(n_components)
        _em.layout_full(prec_chol, prec, log_det)
        return prec, log_det

    def kernel_center(self, weights, means):
        # statistics about each component's own mean
        return np.zeros(means.shape[1]), means

    def check_covariance_prior(self, prior, n_features):
        return check_matrix_prior(prior, self.name, n_features)

    def variational_covariances(self, nk, xk, sk, mean_precision, prior):
        # scikit-learn's sum, term by term: prior + n_k S_k + n_k beta_0 /
        # beta_k (x_k - m_0)(x_k - m_0)^T, over nu_k
        dof = prior.dof + nk
        diff = xk - prior.mean
        scale = nk * prior.mean_precision / mean_precision
        covariances = (prior.covariance + nk[:, np.newaxis, np.newaxis] * sk
                       + scale[:, np.newaxis, np.newaxis]
                       * (diff[:, :, np.newaxis] * diff[:, np.newaxis, :]))
        covariances /= dof[:, np.newaxis, np.newaxis]
        return dof, covariances

    def dense(self, covariances, n_components, n_features):
        return covariances.copy()

    def sample(self, rng, means, covariances, counts):
        return [rng.multivariate_normal(m, c, int(n))
                for m, c, n in zip(means, covariances, counts, strict=True)]

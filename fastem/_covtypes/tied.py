"""covariance_type="tied": all components share one covariance matrix."""
from __future__ import annotations

import numpy as np

from fastem._covtypes._base import (
    NK_EPS,
    CovarianceType,
    check_matrix_prior,
    check_symmetric_positive_definite,
    cholesky_stack,
    flipudlr,
    scaled_identity,
)


class Tied(CovarianceType):
    """s2 is the scatter of all rows about one shift c, whatever the
    responsibilities; the shift rows are all equal to c."""

    name = "tied"
    per_component = False
    # the differences and their products
    chunk_extra_rows = 2

    def shape(self, n_components, n_features):
        return (n_features, n_features)

    def n_covariance_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) / 2.0

    def accumulate(self, block, resp, shift, s1, s2, weights=None):
        diff = block - shift[0]
        s1 += resp.T @ diff
        s2 += (diff if weights is None else diff * weights[:, np.newaxis]).T @ diff

    def seed_stats(self, seeds, gram):
        # scikit-learn's tied estimate from one-hot responsibilities uses
        # X^T X over all rows: the statistics about the origin
        return seeds, gram(), np.zeros(seeds.shape)

    def s2_from_scatter(self, scatter):
        return scatter.sum(axis=0)

    def recentered_s2(self, s2, nk, s1, d):
        d0, total = d[0], s1.sum(axis=0)
        return s2 - np.outer(total, d0) - np.outer(d0, total) + nk.sum() * np.outer(d0, d0)

    def init_shift(self, centers):
        return np.tile(centers.mean(axis=0), (centers.shape[0], 1))

    def covariances(self, stats, nk, delta, reg_covar):
        # scikit-learn's (sum_n x x^T - sum_k n_k m_k m_k^T) / sum_k n_k about
        # the common shift c, with d_k = m_k - c, sum_k r = 1 for every row
        # and sum_k n_k = n + K eps:
        #   (s2 - sum_k n_k d_k d_k^T + c w^T + w c^T) / sum_k n_k,
        #   w = sum_k (s1_k - n_k d_k) - K eps c / 2
        c = stats.shift[0]
        weighted = nk[:, np.newaxis] * delta
        w = np.sum(stats.s1 - weighted, axis=0) - len(nk) * NK_EPS / 2 * c
        outer = np.multiply.outer(c, w)
        cov = stats.s2 - weighted.T @ delta
        cov += outer
        cov += outer.T
        cov /= nk.sum()
        cov += scaled_identity(delta.shape[1], reg_covar)
        return cov

    def precision_cholesky(self, covariances, reg_covar=None):
        return cholesky_stack(covariances[np.newaxis], reg_covar, shared=True)[0]

    def precision_cholesky_from_precisions(self, precisions):
        return flipudlr(np.linalg.cholesky(flipudlr(precisions)))

    def precisions_from_cholesky(self, prec_chol):
        return prec_chol @ prec_chol.T

    def covariances_from_cholesky(self, prec_chol):
        inv = np.linalg.inv(prec_chol)
        return np.swapaxes(inv, -1, -2) @ inv

    def log_det_cholesky(self, prec_chol, n_features):
        # one value, broadcast against the weights as scikit-learn does
        return np.sum(np.log(np.diag(prec_chol)))

    def check_precisions(self, precisions, n_features):
        check_symmetric_positive_definite(precisions, self.name, n_features)

    def kernel_loc(self, means, center, prec_chol):
        # y_k = (x - c) U - (mu_k - c) U: one triangular product per row instead of K
        return (means - center) @ prec_chol

    def check_covariance_prior(self, prior, n_features):
        return check_matrix_prior(prior, self.name, n_features)

    def variational_covariances(self, nk, xk, sk, mean_precision, prior):
        # one Wishart factor, with the components' mean count
        n_components = nk.shape[0]
        dof = prior.dof + nk.sum() / n_components
        diff = xk - prior.mean
        covariances = (prior.covariance + sk * nk.sum() / n_components
                       + prior.mean_precision / n_components
                       * np.dot((nk / mean_precision) * diff.T, diff))
        covariances /= dof
        return dof, covariances

    def mahalanobis_sum(self, stats, means, prec_chol):
        # s2 is the scatter of all rows about c; about each component's
        # mean, summed over components with d_k = mu_k - c:
        # s2 - sum_k (s1_k d_k^T + d_k s1_k^T - n_k d_k d_k^T)
        d = means - stats.shift
        cross = stats.s1.T @ d
        scatter = stats.s2 - cross - cross.T + (stats.nk[:, np.newaxis] * d).T @ d
        return float(np.sum(scatter * self.precisions_from_cholesky(prec_chol)))

    def dense(self, covariances, n_components, n_features):
        return np.broadcast_to(covariances, (n_components, n_features, n_features)).copy()

    def sample(self, rng, means, covariances, counts):
        return [rng.multivariate_normal(m, covariances, int(n))
                for m, n in zip(means, counts, strict=True)]

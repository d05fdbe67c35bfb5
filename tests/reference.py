"""Slow, obvious NumPy versions of what the kernels compute, to test against."""
import numpy as np
from scipy.special import logsumexp

from fastem import _covariance as cov


def random_params(rng, covariance_type, n_components, n_features, zero_weight=False):
    """Random but well-conditioned (weights, means, prec_chol)."""
    K, D = n_components, n_features
    weights = rng.uniform(0.5, 1.5, size=K)
    if zero_weight:
        weights[-1] = 0.0
    weights /= weights.sum()
    means = rng.normal(scale=2.0, size=(K, D))
    if covariance_type in ("full", "tied"):
        n = K if covariance_type == "full" else 1
        A = rng.normal(size=(n, D, D))
        covs = A @ np.swapaxes(A, 1, 2) / D + 0.5 * np.eye(D)
        covs = covs if covariance_type == "full" else covs[0]
    elif covariance_type == "diag":
        covs = rng.uniform(0.3, 2.0, size=(K, D))
    else:
        covs = rng.uniform(0.3, 2.0, size=K)
    return weights, means, cov.compute_precision_cholesky(covs, covariance_type)


def weighted_log_prob(X, weights, means, prec_chol, covariance_type):
    """(N, K) log w_k + log N(x | mu_k, Sigma_k), straight from the formula."""
    X = np.asarray(X, dtype=np.float64)
    N, D = X.shape
    K = means.shape[0]
    out = np.empty((N, K))
    for k in range(K):
        if covariance_type == "full":
            U = prec_chol[k]
        elif covariance_type == "tied":
            U = prec_chol
        elif covariance_type == "diag":
            U = np.diag(prec_chol[k])
        else:
            U = prec_chol[k] * np.eye(D)
        y = (X - means[k]) @ U
        log_det = np.sum(np.log(np.diag(U)))
        with np.errstate(divide="ignore"):
            out[:, k] = (np.log(weights[k]) - 0.5 * D * np.log(2 * np.pi) + log_det
                         - 0.5 * np.sum(y**2, axis=1))
    return out


def responsibilities(X, weights, means, prec_chol, covariance_type):
    """(row log-likelihoods (N,), responsibilities (N, K))."""
    lp = weighted_log_prob(X, weights, means, prec_chol, covariance_type)
    ll = logsumexp(lp, axis=1)
    return ll, np.exp(lp - ll[:, np.newaxis])


def suff_stats(X, resp, shift, covariance_type):
    """Sufficient statistics about shift (K, D), as documented in SuffStats."""
    X = np.asarray(X, dtype=np.float64)
    K, D = shift.shape
    nk = resp.sum(axis=0)
    s1 = np.stack([resp[:, k] @ (X - shift[k]) for k in range(K)])
    if covariance_type == "full":
        s2 = np.stack([(X - shift[k]).T @ ((X - shift[k]) * resp[:, [k]]) for k in range(K)])
    elif covariance_type == "tied":
        # each row's responsibilities sum to its weight (1 unweighted)
        diff = X - shift[0]
        s2 = (diff * resp.sum(axis=1)[:, np.newaxis]).T @ diff
    elif covariance_type == "diag":
        s2 = np.stack([resp[:, k] @ (X - shift[k]) ** 2 for k in range(K)])
    else:
        s2 = np.array([resp[:, k] @ np.sum((X - shift[k]) ** 2, axis=1) for k in range(K)])
    return nk, s1, s2


def m_step(X, resp, reg_covar, covariance_type):
    """Textbook two-pass M-step (weights, means, covariances)."""
    X = np.asarray(X, dtype=np.float64)
    nk = resp.sum(axis=0)
    means = resp.T @ X / nk[:, np.newaxis]
    covs = []
    for k in range(len(nk)):
        diff = X - means[k]
        covs.append((diff * resp[:, [k]]).T @ diff / nk[k])
    return nk / nk.sum(), means, typed_covariances(np.array(covs), nk, reg_covar,
                                                  covariance_type)


def typed_covariances(covs, nk, reg_covar, covariance_type):
    """The covariance_type's covariances from each component's full (K, D, D)
    ones, with reg_covar added to the variances."""
    D = covs.shape[-1]
    if covariance_type == "full":
        return covs + reg_covar * np.eye(D)
    if covariance_type == "tied":
        return np.sum(covs * nk[:, None, None], axis=0) / nk.sum() + reg_covar * np.eye(D)
    if covariance_type == "diag":
        return np.diagonal(covs, axis1=1, axis2=2) + reg_covar
    return np.diagonal(covs, axis1=1, axis2=2).mean(axis=1) + reg_covar

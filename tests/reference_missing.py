"""A slow, obvious NumPy version of one EM iteration on data with gaps (NaN):
row by row, component by component, with np.linalg.solve. Tested itself
against scikit-learn on complete data (tests/test_missing.py)."""
import numpy as np
from scipy.special import logsumexp

from reference import typed_covariances


def dense_covariances(covariances, covariance_type, n_components, n_features):
    """Each component's (D, D) covariance matrix."""
    K, D = n_components, n_features
    if covariance_type == "full":
        return np.array(covariances, dtype=np.float64)
    if covariance_type == "tied":
        return np.array([covariances] * K, dtype=np.float64)
    if covariance_type == "diag":
        return np.array([np.diag(c) for c in covariances])
    return np.array([c * np.eye(D) for c in covariances])


def e_step(X, weights, means, covariances, covariance_type, sample_weight=None):
    """(row observed-data log-likelihoods (N,), responsibilities (N, K), the
    conditional expectations x_hat (N, K, D) and conditional covariances
    (N, K, D, D), zero outside the missing x missing block)."""
    X = np.asarray(X, dtype=np.float64)
    N, D = X.shape
    K = len(weights)
    sample_weight = np.ones(N) if sample_weight is None else sample_weight
    covs = dense_covariances(covariances, covariance_type, K, D)
    log_prob = np.empty((N, K))
    x_hat = np.empty((N, K, D))
    cond = np.zeros((N, K, D, D))
    for n in range(N):
        o = ~np.isnan(X[n])
        m = ~o
        for k in range(K):
            s_oo = covs[k][np.ix_(o, o)]
            diff = X[n, o] - means[k, o]
            _, log_det = np.linalg.slogdet(s_oo)
            maha = diff @ np.linalg.solve(s_oo, diff)
            log_prob[n, k] = (np.log(weights[k]) - 0.5 * o.sum() * np.log(2 * np.pi)
                              - 0.5 * log_det - 0.5 * maha)
            x_hat[n, k] = X[n]
            s_mo = covs[k][np.ix_(m, o)]
            x_hat[n, k, m] = means[k, m] + s_mo @ np.linalg.solve(s_oo, diff)
            cond[n, k][np.ix_(m, m)] = (covs[k][np.ix_(m, m)]
                                        - s_mo @ np.linalg.solve(s_oo, s_mo.T))
    row_ll = logsumexp(log_prob, axis=1)
    resp = np.exp(log_prob - row_ll[:, np.newaxis])
    return row_ll, resp, x_hat, cond


def m_step(resp, x_hat, cond, reg_covar, covariance_type, sample_weight=None):
    """Textbook M-step on the expected complete data: (weights, means,
    covariances)."""
    N, K, D = x_hat.shape
    sample_weight = np.ones(N) if sample_weight is None else sample_weight
    r = resp * sample_weight[:, np.newaxis]
    nk = r.sum(axis=0)
    means = np.einsum("nk,nkd->kd", r, x_hat) / nk[:, np.newaxis]
    covs = np.empty((K, D, D))
    for k in range(K):
        diff = x_hat[:, k] - means[k]
        covs[k] = ((diff * r[:, [k]]).T @ diff + np.einsum("n,nij->ij", r[:, k], cond[:, k])
                   ) / nk[k]
    return nk / nk.sum(), means, typed_covariances(covs, nk, reg_covar, covariance_type)


def em(X, weights, means, covariances, covariance_type, n_iter, reg_covar=1e-6,
       sample_weight=None):
    """n_iter iterations: (lower bounds, (weights, means, covariances))."""
    bounds = []
    for _ in range(n_iter):
        ll, resp, x_hat, cond = e_step(X, weights, means, covariances, covariance_type,
                                       sample_weight)
        w = np.ones(len(ll)) if sample_weight is None else sample_weight
        bounds.append(ll @ w / w.sum())
        weights, means, covariances = m_step(resp, x_hat, cond, reg_covar, covariance_type,
                                             sample_weight)
    return bounds, (weights, means, covariances)


def impute(X, weights, means, covariances, covariance_type):
    """X with each NaN replaced by sum_k p(k | x_obs) E_k[x_missing | x_obs]."""
    _, resp, x_hat, _ = e_step(X, weights, means, covariances, covariance_type)
    out = np.array(X, dtype=np.float64)
    expected = np.einsum("nk,nkd->nd", resp, x_hat)
    gaps = np.isnan(out)
    out[gaps] = expected[gaps]
    return out

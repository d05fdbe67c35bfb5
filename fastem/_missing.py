"""Missing values (``missing="em"``): rows with gaps (NaN), grouped by their
pattern of missing coordinates.

EM for data missing at random (Ghahramani & Jordan 1994). A row x with
observed coordinates o and missing ones m has, under component k
(mean mu, covariance S):

- the marginal density of its observed part, N(x_o; mu_o, S_oo), which
  gives its log-likelihood and responsibilities r_k;
- the conditional expectation of its gaps,
  x_m^k = mu_m + S_mo S_oo^-1 (x_o - mu_o), and their conditional
  covariance C^k = S_mm - S_mo S_oo^-1 S_om.

The M-step then uses the expected complete rows x^k (x_o, x_m^k) in the
sufficient statistics, with C^k added to the second moments of the missing
coordinates. Rows are grouped by pattern (Delalleau, Courville & Bengio
2012) so that each pattern's factorisations are computed once per
component and parameter set (a ``Marginals`` keeps them); rows without
gaps never come here: they take the kernels' fused pass.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

from fastem._covariance import SuffStats


# -- finding gaps ---------------------------------------------------------------------------
def gap_rows(block):
    """Sorted indices of the rows of ``block`` holding a NaN. One cheap
    reduction per row first (inf is not allowed, so a NaN row sum is a
    NaN, or an overflow of finite values, which is checked)."""
    if block.shape[0] == 0:
        return np.empty(0, dtype=np.intp)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = block.sum(axis=1)
    candidates = np.flatnonzero(np.isnan(sums))
    if candidates.size:
        candidates = candidates[np.isnan(block[candidates]).any(axis=1)]
    return candidates


def check_block(block, start, name):
    """A ValueError naming the first row that holds infinity or has no
    observed coordinate; NaN elsewhere is a gap."""
    if block.size == 0 or np.isfinite(block.sum(dtype=np.float64)):
        return
    inf = np.isinf(block)
    if inf.any():
        row = start + int(np.argmax(inf.any(axis=1)))
        raise ValueError(f"Input {name} contains infinity (first at row {row}).")
    empty = np.isnan(block).all(axis=1)
    if empty.any():
        row = start + int(np.argmax(empty))
        raise ValueError(f"Input {name}: row {row} has no observed coordinate (all "
                         "NaN); drop it, or give it at least one value")


def patterns(rows):
    """Yield (observed (D,) bool, indices) for each pattern of missing
    coordinates among ``rows`` (n, D)."""
    missing = np.isnan(rows)
    keys = np.packbits(missing, axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse))
    start = 0
    for g, stop in enumerate(bounds):
        yield ~missing[first[g]], order[start:stop]
        start = stop


# -- one parameter set's marginals ----------------------------------------------------------
class _Pattern:
    """One pattern's factorisations for every component."""

    def __init__(self, observed, means, covs):
        o, m = np.flatnonzero(observed), np.flatnonzero(~observed)
        self.o, self.m = o, m
        s_oo = covs[:, o[:, None], o]
        s_om = covs[:, o[:, None], m]
        self.chol = np.linalg.cholesky(s_oo)                       # (K, p, p) lower
        self.log_det = 2 * np.log(np.diagonal(self.chol, axis1=1, axis2=2)).sum(axis=1)
        # A = S_mo S_oo^-1 (K, q, p), and C = S_mm - A S_om (K, q, q)
        self.gain = np.swapaxes(np.linalg.solve(s_oo, s_om), 1, 2)
        self.cond = covs[:, m[:, None], m] - self.gain @ s_om
        self.means = means


class Marginals:
    """The parameters (weights, means, precision Cholesky factors) of a
    mixture, with each pattern's factorisations computed once."""

    def __init__(self, weights, means, prec_chol, covtype):
        self.covtype = covtype
        self.means = np.asarray(means, dtype=np.float64)
        K, D = self.means.shape
        covariances = covtype.covariances_from_cholesky(np.asarray(prec_chol, np.float64))
        self.covs = covtype.dense(covariances, K, D)
        weights = np.asarray(weights, dtype=np.float64)
        self.log_weights = np.full(K, -np.inf)
        np.log(weights, out=self.log_weights, where=weights > 0)
        self._patterns = {}

    def pattern(self, observed):
        key = np.packbits(observed).tobytes()
        found = self._patterns.get(key)
        if found is None:
            found = self._patterns[key] = _Pattern(observed, self.means, self.covs)
        return found

    def __getstate__(self):
        # the cache stays where it was built (a task gets the parameters)
        state = dict(self.__dict__)
        state["_patterns"] = {}
        return state

    def log_prob(self, rows, pattern):
        """(n, K) log w_k + log N(x_o; mu_ko, S_k,oo) of rows of one pattern."""
        p = pattern.o.size
        xo = rows[:, pattern.o]
        out = np.empty((rows.shape[0], self.means.shape[0]))
        for k in range(out.shape[1]):
            z = solve_triangular(pattern.chol[k], (xo - self.means[k, pattern.o]).T,
                                 lower=True, check_finite=False)
            out[:, k] = (self.log_weights[k] - 0.5 * p * math.log(2 * math.pi)
                         - 0.5 * pattern.log_det[k] - 0.5 * np.einsum("ij,ij->j", z, z))
        return out

    def expected_rows(self, rows, pattern, k):
        """Rows (n, D) with their gaps replaced by component k's conditional
        expectation."""
        full = np.array(rows, dtype=np.float64)
        if pattern.m.size:
            diff = full[:, pattern.o] - self.means[k, pattern.o]
            full[:, pattern.m] = self.means[k, pattern.m] + diff @ pattern.gain[k].T
        return full

    def scores(self, rows):
        """(log-likelihoods (n,), responsibilities (n, K), log-probabilities
        (n, K)) of rows with gaps."""
        rows = np.asarray(rows, dtype=np.float64)
        n, K = rows.shape[0], self.means.shape[0]
        log_prob = np.empty((n, K))
        for observed, idx in patterns(rows):
            log_prob[idx] = self.log_prob(rows[idx], self.pattern(observed))
        ll = logsumexp(log_prob, axis=1)
        return ll, np.exp(log_prob - ll[:, np.newaxis]), log_prob

    def impute(self, rows):
        """rows with each gap replaced by sum_k r_k E_k[x_m | x_o]."""
        rows = np.asarray(rows, dtype=np.float64)
        out = rows.copy()
        for observed, idx in patterns(rows):
            pattern = self.pattern(observed)
            group = rows[idx]
            lp = self.log_prob(group, pattern)
            resp = np.exp(lp - logsumexp(lp, axis=1)[:, np.newaxis])
            filled = np.zeros((idx.size, pattern.m.size))
            for k in range(resp.shape[1]):
                filled += resp[:, [k]] * self.expected_rows(group, pattern, k)[:, pattern.m]
            out[np.ix_(idx, pattern.m)] = filled
        return out

    def stats(self, rows, weights, shift):
        """SuffStats of rows with gaps about ``shift`` (K, D): expected
        complete rows, and the conditional covariances added to s2."""
        rows = np.asarray(rows, dtype=np.float64)
        K, D = self.means.shape
        nk, s1 = np.zeros(K), np.zeros((K, D))
        scatter = np.zeros((K, D, D))
        log_likelihood = 0.0
        for observed, idx in patterns(rows):
            pattern = self.pattern(observed)
            group = rows[idx]
            lp = self.log_prob(group, pattern)
            ll = logsumexp(lp, axis=1)
            resp = np.exp(lp - ll[:, np.newaxis])
            if weights is not None:
                w = weights[idx]
                resp *= w[:, np.newaxis]
                log_likelihood += float(ll @ w)
            else:
                log_likelihood += float(ll.sum())
            for k in range(K):
                r = resp[:, k]
                diff = self.expected_rows(group, pattern, k) - shift[k]
                total = r.sum()
                nk[k] += total
                s1[k] += r @ diff
                scatter[k] += (diff * r[:, np.newaxis]).T @ diff
                scatter[k][np.ix_(pattern.m, pattern.m)] += total * pattern.cond[k]
        n_rows = rows.shape[0] if weights is None else float(weights.sum())
        return SuffStats(self.covtype, n_rows, log_likelihood, nk, s1,
                         self.covtype.s2_from_scatter(scatter), np.array(shift))

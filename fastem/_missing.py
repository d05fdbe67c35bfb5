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
component and parameter set (a ``Marginals`` keeps them), and the rows'
work is the kernels' fused pass on their observed coordinates; rows
without gaps never come here: they take the kernels on the whole block.
"""
from __future__ import annotations

import numpy as np

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
    packed = np.packbits(missing, axis=1)
    if packed.shape[1] <= 8:
        # up to 64 features: one integer per pattern, a fast 1-D unique
        wide = np.zeros((packed.shape[0], 8), dtype=np.uint8)
        wide[:, :packed.shape[1]] = packed
        keys = wide.view(np.uint64).ravel()
    else:
        keys = np.ascontiguousarray(packed).view(
            np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse))
    start = 0
    for g, stop in enumerate(bounds):
        yield ~missing[first[g]], order[start:stop]
        start = stop


# -- one parameter set's marginals ----------------------------------------------------------
class _Pattern:
    """One pattern's marginal model and conditionals for every component.

    The observed coordinates o of the pattern's rows follow a K-component
    mixture in p = |o| dimensions (the same weights, means mu_o and
    covariances S_oo), which the kernels fit like any other: its fused pass
    gives the rows' marginal log-likelihoods, responsibilities and the
    statistics of x_o. The gaps are linear in x_o under each component,
    x_m^k = mu_m + A_k (x_o - mu_o) with A_k = S_mo S_oo^-1, so the
    statistics of the expected complete rows follow from those of x_o.
    """

    def __init__(self, observed, weights, means, covs, diagonal, n_threads):
        from fastem._covariance import KernelParams
        from fastem._covtypes import get
        from fastem._engine import Engine

        o, m = np.flatnonzero(observed), np.flatnonzero(~observed)
        self.o, self.m = o, m
        K = means.shape[0]
        s_oo = covs[:, o[:, None], o]
        s_om = covs[:, o[:, None], m]
        # A = S_mo S_oo^-1 (K, q, p), and C = S_mm - A S_om (K, q, q)
        self.gain = np.swapaxes(np.linalg.solve(s_oo, s_om), 1, 2)
        self.cond = covs[:, m[:, None], m] - self.gain @ s_om
        # diag and spherical: uncorrelated coordinates, the diag kernels
        kernel_type = get("diag" if diagonal else "full")
        kernel_cov = np.diagonal(s_oo, axis1=1, axis2=2) if diagonal else s_oo
        prec_chol = kernel_type.precision_cholesky(kernel_cov)
        self.engine = Engine(kernel_type.name, K, o.size, n_threads=n_threads)
        self.params = KernelParams(weights, means[:, o], prec_chol, kernel_type.name,
                                   np.float64)

    def observed_rows(self, rows):
        return np.ascontiguousarray(rows[:, self.o], dtype=np.float64)

    def lift(self, stats, means, shift):
        """(nk, s1 (K, D), scatter (K, D, D)) of the expected complete rows
        about ``shift`` from the statistics of their observed parts."""
        K, D = shift.shape
        o, m = self.o, self.m
        st = stats.recentered(shift[:, o])
        s2 = st.s2 if st.s2.ndim == 3 else np.einsum("ki,ij->kij", st.s2, np.eye(o.size))
        # x - c = B (x_o - c_o) + f: B the identity on o and A on m, f zero
        # on o and mu_m - c_m - A (mu_o - c_o) on m
        B = np.zeros((K, D, o.size))
        B[:, o, np.arange(o.size)] = 1.0
        B[:, m, :] = self.gain
        f = np.zeros((K, D))
        f[:, m] = (means[:, m] - shift[:, m]
                   - np.einsum("kqp,kp->kq", self.gain, means[:, o] - shift[:, o]))
        nk = st.nk
        bs1 = np.einsum("kdp,kp->kd", B, st.s1)
        s1 = bs1 + nk[:, np.newaxis] * f
        cross = bs1[:, :, np.newaxis] * f[:, np.newaxis, :]
        scatter = (B @ s2 @ np.swapaxes(B, 1, 2) + cross + np.swapaxes(cross, 1, 2)
                   + nk[:, np.newaxis, np.newaxis] * f[:, :, np.newaxis] * f[:, np.newaxis, :])
        scatter[:, m[:, None], m] += nk[:, np.newaxis, np.newaxis] * self.cond
        return nk, s1, scatter


class Marginals:
    """The parameters (weights, means, precision Cholesky factors) of a
    mixture, with each pattern's marginal model made once."""

    def __init__(self, weights, means, prec_chol, covtype):
        self.covtype = covtype
        self.weights = np.asarray(weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        K, D = self.means.shape
        covariances = covtype.covariances_from_cholesky(np.asarray(prec_chol, np.float64))
        self.covs = covtype.dense(covariances, K, D)
        self._patterns = {}

    def pattern(self, observed, n_threads=None):
        key = (np.packbits(observed).tobytes(), n_threads)
        found = self._patterns.get(key)
        if found is None:
            diagonal = self.covtype.name in ("diag", "spherical")
            found = self._patterns[key] = _Pattern(observed, self.weights, self.means,
                                                   self.covs, diagonal, n_threads)
        return found

    def __getstate__(self):
        # the cache stays where it was built (a task gets the parameters)
        state = dict(self.__dict__)
        state["_patterns"] = {}
        return state

    def scores(self, rows, n_threads=None):
        """(log-likelihoods (n,), responsibilities (n, K), labels (n,)) of
        rows with gaps: each pattern's through the kernels."""
        n, K = rows.shape[0], self.means.shape[0]
        ll, resp = np.empty(n), np.empty((n, K))
        labels = np.empty(n, dtype=np.intp)
        for observed, idx in patterns(rows):
            pattern = self.pattern(observed, n_threads)
            out = pattern.engine.score(pattern.observed_rows(rows[idx]), pattern.params,
                                       log_likelihood=True, resp=True, labels=True)
            ll[idx], resp[idx], labels[idx] = out["log_likelihood"], out["resp"], \
                out["labels"]
        return ll, resp, labels

    def impute(self, rows, n_threads=None):
        """rows with each gap replaced by sum_k r_k E_k[x_m | x_o]."""
        out = np.array(rows, dtype=np.float64)
        for observed, idx in patterns(rows):
            pattern = self.pattern(observed, n_threads)
            xo = pattern.observed_rows(rows[idx])
            resp = pattern.engine.score(xo, pattern.params, resp=True)["resp"]
            filled = np.zeros((idx.size, pattern.m.size))
            for k in range(resp.shape[1]):
                diff = xo - self.means[k, pattern.o]
                filled += resp[:, [k]] * (self.means[k, pattern.m] + diff @ pattern.gain[k].T)
            out[np.ix_(idx, pattern.m)] = filled
        return out

    def stats(self, rows, weights, shift, n_threads=None):
        """SuffStats of rows with gaps about ``shift`` (K, D): expected
        complete rows, with the conditional covariances added to s2."""
        K, D = self.means.shape
        nk, s1 = np.zeros(K), np.zeros((K, D))
        scatter = np.zeros((K, D, D))
        log_likelihood = 0.0
        for observed, idx in patterns(rows):
            pattern = self.pattern(observed, n_threads)
            st = pattern.engine._kernel_stats(pattern.observed_rows(rows[idx]),
                                              pattern.params,
                                              None if weights is None else weights[idx])
            log_likelihood += st.log_likelihood
            part_nk, part_s1, part_scatter = pattern.lift(st, self.means, shift)
            nk += part_nk
            s1 += part_s1
            scatter += part_scatter
        n_rows = rows.shape[0] if weights is None else float(weights.sum())
        return SuffStats(self.covtype, n_rows, log_likelihood, nk, s1,
                         self.covtype.s2_from_scatter(scatter), np.array(shift))

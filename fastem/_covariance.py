"""Sufficient statistics, the M-step, and the precision Cholesky factors.

Everything here is small (K x D x D at most): the kernels reduce the data
to a `SuffStats`, and these functions turn it into parameters. What differs
between covariance types lives in fastem._covtypes; the functions below
take a type's name (or the type) and hand over to it.
"""
from __future__ import annotations

import math

import numpy as np

from fastem import _covtypes
from fastem._covtypes import COVARIANCE_TYPES, CovarianceType
from fastem._covtypes._base import NK_EPS
from fastem._covtypes._base import scaled_identity as _scaled_identity  # noqa: F401 (tests)

__all__ = ["COVARIANCE_TYPES", "KernelParams", "SuffStats", "compute_precision_cholesky",
           "covariances_from_cholesky", "estimate_parameters", "log_det_cholesky",
           "n_parameters", "precision_cholesky_from_precisions", "precisions_from_cholesky"]

CovType = str | CovarianceType


class SuffStats:
    """Float64 sufficient statistics of rows about per-component shifts c_k.

    Attributes
    ----------
    covtype : CovarianceType
        The covariance type, which gives s2 its meaning.
    covariance_type : str
        Its name.
    n_samples : int or float
        Rows summarised (weighted rows: the sum of their weights).
    log_likelihood : float
        Sum of the rows' (weighted) log-likelihoods under the parameters of
        the E-step.
    nk : ndarray (K,)
        sum r_k (weighted rows: r_k is the responsibility times the weight,
        here and below).
    s1 : ndarray (K, D)
        sum r_k (x - c_k).
    s2 : ndarray
        full (K, D, D) sum r_k (x - c_k)(x - c_k)^T, symmetric; tied (D, D)
        the same summed over k; diag (K, D) its diagonal; spherical (K,) its
        trace.
    shift : ndarray (K, D)
        The c_k (tied: the same row K times).

    Statistics about the same shifts add: that is how chunks, threads, files
    and machines combine.
    """

    def __init__(self, covariance_type: CovType, n_samples, log_likelihood, nk, s1, s2,
                 shift):
        self.covtype = _covtypes.get(covariance_type)
        self.n_samples = n_samples
        self.log_likelihood = log_likelihood
        self.nk = nk
        self.s1 = s1
        self.s2 = s2
        self.shift = shift

    @property
    def covariance_type(self) -> str:
        return self.covtype.name

    @classmethod
    def from_flat(cls, covariance_type: CovType, n_samples, flat, shift):
        """Unpack the kernel's flat layout (see fastem/_kernels/_em.pyx)."""
        covtype = _covtypes.get(covariance_type)
        K, D = shift.shape
        nk = flat[1:1 + K]
        s1 = flat[1 + K:1 + K + K * D].reshape(K, D)
        s2 = covtype.unpack_s2(flat[1 + K + K * D:], K, D)
        return cls(covtype, n_samples, float(flat[0]), nk, s1, s2, shift)

    def __iadd__(self, other):
        if other.covariance_type != self.covariance_type or not np.array_equal(
            other.shift, self.shift
        ):
            raise ValueError("statistics about different shifts cannot be added")
        self.n_samples += other.n_samples
        self.log_likelihood += other.log_likelihood
        self.nk = self.nk + other.nk
        self.s1 = self.s1 + other.s1
        self.s2 = self.s2 + other.s2
        return self

    def recentered(self, shift):
        """The same statistics about other shifts (K, D): with d = c' - c,
        sum r (x - c') = s1 - n d, and s2 as the covariance type says."""
        shift = np.asarray(shift, dtype=np.float64)
        d = shift - self.shift
        nk, s1 = self.nk, self.s1
        s2 = self.covtype.recentered_s2(self.s2, nk, s1, d)
        return SuffStats(self.covtype, self.n_samples, self.log_likelihood, nk,
                         s1 - nk[:, np.newaxis] * d, s2, shift.copy())

    def blended(self, other, step):
        """(1 - step) * self + step * other, about other's shifts, for
        statistics normalised per row (stepwise EM); n_samples and
        log_likelihood are other's."""
        mine = self.recentered(other.shift)
        return SuffStats(
            self.covtype, other.n_samples, other.log_likelihood,
            (1 - step) * mine.nk + step * other.nk,
            (1 - step) * mine.s1 + step * other.s1,
            (1 - step) * mine.s2 + step * other.s2,
            other.shift,
        )

    def per_row(self):
        """The statistics divided by the number of rows."""
        # (the sum of the weights for weighted rows: it may be below 1)
        n = self.n_samples if self.n_samples > 0 else 1
        return SuffStats(self.covtype, self.n_samples, self.log_likelihood,
                         self.nk / n, self.s1 / n, self.s2 / n, self.shift)

    def __add__(self, other):
        """A new SuffStats, self's numbers plus other's (same shifts)."""
        total = SuffStats(self.covariance_type, self.n_samples, self.log_likelihood,
                          self.nk, self.s1, self.s2, self.shift)
        total += other
        return total

    def __radd__(self, other):
        # 0 + stats: the start of sum()
        if isinstance(other, int) and other == 0:
            return SuffStats(self.covariance_type, self.n_samples, self.log_likelihood,
                             self.nk, self.s1, self.s2, self.shift)
        return NotImplemented


def estimate_parameters(stats: SuffStats, reg_covar: float):
    """M-step: (nk, means, covariances) from sufficient statistics.

    With n_k = sum r_k + eps (scikit-learn's guard against empty
    components, NK_EPS), the means are scikit-learn's quotient
    sum_n r_nk x_n / n_k, written about the shift c_k:

    mean_k = c_k + (s1_k - eps c_k) / n_k

    (not c_k + s1_k / n_k: for a nearly empty component eps scales the
    distance from the shift). Each covariance type forms its covariances
    by scikit-learn's algebra for the type about these means, as rounded
    (fastem/_covtypes). nk is returned with eps and unnormalised (the
    caller divides by n or by its sum).
    """
    nk = stats.nk + NK_EPS
    means = stats.shift + (stats.s1 - NK_EPS * stats.shift) / nk[:, np.newaxis]
    # the means' offsets from the shifts as rounded: exact differences
    delta = means - stats.shift
    return nk, means, stats.covtype.covariances(stats, nk, delta, reg_covar)


def compute_precision_cholesky(covariances, covariance_type: CovType, reg_covar=None):
    """Upper-triangular U with U U^T = covariance^-1 (scikit-learn's convention).

    Raises a ValueError naming the collapsed components and what to change.
    """
    return _covtypes.get(covariance_type).precision_cholesky(covariances, reg_covar)


def precision_cholesky_from_precisions(precisions, covariance_type: CovType):
    """Upper-triangular U with U U^T = precision (for precisions_init)."""
    return _covtypes.get(covariance_type).precision_cholesky_from_precisions(precisions)


def precisions_from_cholesky(prec_chol, covariance_type: CovType):
    return _covtypes.get(covariance_type).precisions_from_cholesky(prec_chol)


def covariances_from_cholesky(prec_chol, covariance_type: CovType):
    """Covariances from precision Cholesky factors (when only precisions_init
    is known)."""
    return _covtypes.get(covariance_type).covariances_from_cholesky(prec_chol)


def log_det_cholesky(prec_chol, covariance_type: CovType, n_features: int):
    """log det U per component, or the shared one (tied: broadcast as
    scikit-learn does)."""
    return _covtypes.get(covariance_type).log_det_cholesky(prec_chol, n_features)


def n_parameters(covariance_type: CovType, n_components: int, n_features: int) -> int:
    """Free parameters of the mixture (for BIC and AIC)."""
    K, D = n_components, n_features
    cov_params = _covtypes.get(covariance_type).n_covariance_parameters(K, D)
    return int(cov_params + K * D + K - 1)


class KernelParams:
    """Model parameters laid out for the kernels (see _em.pyx).

    loc/prec/center/shift are in the data's dtype (float32 data is compared
    in float32); log_const is float64. ``shift64`` is the shift the kernel
    actually used (rounded to the data's dtype), which the statistics are
    about.
    """

    def __init__(self, weights, means, prec_chol, covariance_type: CovType, dtype,
                 log_weights=None):
        covtype = _covtypes.get(covariance_type)
        # a model fitted on float32 data holds float32 parameters: the
        # constants are formed in float64 all the same
        weights, means, prec_chol = (np.asarray(a, dtype=np.float64)
                                     for a in (weights, means, prec_chol))
        n_components, n_features = means.shape
        self.cov_code = covtype.code
        self.covariance_type = covtype.name
        self.n_components, self.n_features = n_components, n_features
        # log 0 = -inf marks an empty component (exp gives exactly 0);
        # given log_weights (the Bayesian mixture's expected log-weights
        # and constants) replace log(weights), which then only place the
        # statistics' shift
        if log_weights is not None:
            log_weights = np.asarray(log_weights, dtype=np.float64)
        elif np.count_nonzero(weights) == n_components:
            log_weights = np.log(weights)
        else:
            log_weights = np.full(n_components, -np.inf)
            np.log(weights, out=log_weights, where=weights > 0)
        self.prec, log_det = covtype.kernel_prec(prec_chol, n_features, dtype)
        self.log_const = np.ascontiguousarray(
            log_weights + (log_det - 0.5 * n_features * math.log(2 * math.pi)),
            dtype=np.float64,
        )
        self.weights, self.means, self.prec_chol = weights, means, prec_chol
        self._marginals = None
        center, shift = covtype.kernel_center(weights, means)
        loc = covtype.kernel_loc(means, center, prec_chol)
        self.loc = np.ascontiguousarray(loc, dtype=dtype)
        self.center = np.ascontiguousarray(center, dtype=dtype)
        self.shift = np.ascontiguousarray(shift, dtype=dtype)
        self.shift64 = self.shift.astype(np.float64)

    def marginals(self):
        """The same parameters for rows with gaps (fastem._missing.Marginals),
        made when first asked for."""
        if self._marginals is None:
            from fastem._missing import Marginals
            self._marginals = Marginals(self.weights, self.means, self.prec_chol,
                                        _covtypes.get(self.covariance_type))
        return self._marginals

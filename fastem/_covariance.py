"""Sufficient statistics, the M-step, and the precision Cholesky factors.

Everything here is small (K x D x D at most): the kernels reduce the data
to a `SuffStats`, and these functions turn it into parameters.
"""
import functools
import math

import numpy as np

from fastem._kernels import _em, _linalg

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# scikit-learn adds this to every component's responsibility sum so an empty
# component gives finite parameters; kept for identical trajectories.
_NK_EPS = 10 * np.finfo(np.float64).eps


class SuffStats:
    """Float64 sufficient statistics of rows about per-component shifts c_k.

    Attributes
    ----------
    n_samples : int
        Rows summarised.
    log_likelihood : float
        Sum of the rows' log-likelihoods under the parameters of the E-step.
    nk : ndarray (K,)
        sum r_k.
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

    def __init__(self, covariance_type, n_samples, log_likelihood, nk, s1, s2, shift):
        self.covariance_type = covariance_type
        self.n_samples = n_samples
        self.log_likelihood = log_likelihood
        self.nk = nk
        self.s1 = s1
        self.s2 = s2
        self.shift = shift

    @classmethod
    def from_flat(cls, covariance_type, n_samples, flat, shift):
        """Unpack the kernel's flat layout (see fastem/_kernels/_em.pyx)."""
        K, D = shift.shape
        nk = flat[1:1 + K]
        s1 = flat[1 + K:1 + K + K * D].reshape(K, D)
        s2 = flat[1 + K + K * D:]
        if covariance_type == "full":
            s2 = s2.reshape(K, D, D)
        elif covariance_type == "tied":
            s2 = s2.reshape(D, D)
        elif covariance_type == "diag":
            s2 = s2.reshape(K, D)
        return cls(covariance_type, n_samples, float(flat[0]), nk, s1, s2, shift)

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
        sum r (x - c') = s1 - n d and
        sum r (x - c')(x - c')^T = s2 - s1 d^T - d s1^T + n d d^T."""
        shift = np.asarray(shift, dtype=np.float64)
        d = shift - self.shift
        nk, s1 = self.nk, self.s1
        cov_type = self.covariance_type
        if cov_type == "full":
            s2 = (self.s2
                  - s1[:, :, np.newaxis] * d[:, np.newaxis, :]
                  - d[:, :, np.newaxis] * s1[:, np.newaxis, :]
                  + nk[:, np.newaxis, np.newaxis] * d[:, :, np.newaxis] * d[:, np.newaxis, :])
        elif cov_type == "tied":
            # one shift for all rows, and s2 ignores responsibilities
            d0, total = d[0], s1.sum(axis=0)
            s2 = (self.s2 - np.outer(total, d0) - np.outer(d0, total)
                  + nk.sum() * np.outer(d0, d0))
        elif cov_type == "diag":
            s2 = self.s2 - 2 * d * s1 + nk[:, np.newaxis] * d**2
        else:
            s2 = self.s2 - 2 * np.sum(d * s1, axis=1) + nk * np.sum(d**2, axis=1)
        return SuffStats(cov_type, self.n_samples, self.log_likelihood, nk,
                         s1 - nk[:, np.newaxis] * d, s2, shift.copy())

    def blended(self, other, step):
        """(1 - step) * self + step * other, about other's shifts, for
        statistics normalised per row (stepwise EM); n_samples and
        log_likelihood are other's."""
        mine = self.recentered(other.shift)
        return SuffStats(
            self.covariance_type, other.n_samples, other.log_likelihood,
            (1 - step) * mine.nk + step * other.nk,
            (1 - step) * mine.s1 + step * other.s1,
            (1 - step) * mine.s2 + step * other.s2,
            other.shift,
        )

    def per_row(self):
        """The statistics divided by the number of rows."""
        n = max(self.n_samples, 1)
        return SuffStats(self.covariance_type, self.n_samples, self.log_likelihood,
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


@functools.lru_cache(maxsize=16)
def _scaled_identity(n_features, value):
    """value * I, read-only: adding it adds value to every diagonal in one
    broadcast (off the diagonal x + 0.0 == x)."""
    eye = value * np.eye(n_features)
    eye.flags.writeable = False
    return eye


def estimate_parameters(stats, reg_covar):
    """M-step: (nk, means, covariances) from sufficient statistics.

    mean_k = c_k + s1_k / n_k
    cov_k  = s2_k / n_k - (s1_k / n_k)(s1_k / n_k)^T + reg_covar I

    which is algebraically scikit-learn's two-pass estimate. nk is returned
    unnormalised (the caller divides by n or by its sum).
    """
    nk = stats.nk + _NK_EPS
    delta = stats.s1 / nk[:, np.newaxis]
    means = stats.shift + delta
    cov_type = stats.covariance_type
    if cov_type == "full":
        cov = stats.s2 / nk[:, np.newaxis, np.newaxis]
        cov -= delta[:, :, np.newaxis] * delta[:, np.newaxis, :]
        cov += _scaled_identity(means.shape[1], reg_covar)
    elif cov_type == "tied":
        # sum_k sum_n r_nk (x - m_k)(x - m_k)^T
        #   = sum_n (x - c)(x - c)^T - sum_k n_k (m_k - c)(m_k - c)^T
        cov = stats.s2 - (nk[:, np.newaxis] * delta).T @ delta
        cov /= nk.sum()
        cov += _scaled_identity(means.shape[1], reg_covar)
    elif cov_type == "diag":
        cov = stats.s2 / nk[:, np.newaxis] - delta**2 + reg_covar
    else:  # spherical: the mean of the diagonal variances
        n_features = means.shape[1]
        cov = (stats.s2 / nk - np.sum(delta**2, axis=1)) / n_features + reg_covar
    return nk, means, cov


def _collapse_message(components, reg_covar):
    what = ("the tied covariance is" if components is None
            else f"the covariance of component(s) {components} is")
    return (
        f"Fitting the mixture model failed because {what} not positive "
        "definite: the data (or a component's share of it) lie on a "
        "lower-dimensional subspace, e.g. a component collapsed onto a single "
        "point or a feature is constant. Increase reg_covar (now "
        f"{reg_covar:g}), use fewer components, or rescale the data."
    )


def compute_precision_cholesky(covariances, covariance_type, reg_covar=None):
    """Upper-triangular U with U U^T = covariance^-1 (scikit-learn's convention).

    Raises a ValueError naming the collapsed components and what to change.
    """
    if covariance_type in ("full", "tied"):
        covs = np.ascontiguousarray(
            covariances if covariance_type == "full" else covariances[np.newaxis],
            dtype=np.float64,
        )
        # one typed call for all components: NumPy's or SciPy's linalg
        # wrappers cost more per call than these small factorisations
        out = np.empty_like(covs)
        ok = _linalg.precision_cholesky(covs, out) < 0
        if not ok:
            bad = [k for k, c in enumerate(covs) if not _is_positive_definite(c)]
            bad = bad if covariance_type == "full" else None
            raise ValueError(_collapse_message(bad, _reg(reg_covar)))
        return out if covariance_type == "full" else out[0]
    bad = np.flatnonzero(~(covariances > 0.0).reshape(covariances.shape[0], -1).all(axis=1))
    if bad.size:
        raise ValueError(_collapse_message(bad.tolist(), _reg(reg_covar)))
    return 1.0 / np.sqrt(covariances)


def _is_positive_definite(a):
    try:
        return bool(np.all(np.isfinite(np.linalg.inv(np.linalg.cholesky(a)))))
    except np.linalg.LinAlgError:
        return False


def _reg(reg_covar):
    return float("nan") if reg_covar is None else reg_covar


def _flipudlr(a):
    return np.flip(np.flip(a, axis=-1), axis=-2)


def precision_cholesky_from_precisions(precisions, covariance_type):
    """Upper-triangular U with U U^T = precision (for precisions_init): the
    lower Cholesky factor of the precision with rows and columns reversed."""
    if covariance_type in ("full", "tied"):
        return _flipudlr(np.linalg.cholesky(_flipudlr(precisions)))
    return np.sqrt(precisions)


def precisions_from_cholesky(prec_chol, covariance_type):
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def covariances_from_cholesky(prec_chol, covariance_type):
    """Covariances from precision Cholesky factors (used when only
    precisions_init is known): (U U^T)^-1 = U^-T U^-1."""
    if covariance_type in ("full", "tied"):
        inv = np.linalg.inv(prec_chol)
        return np.swapaxes(inv, -1, -2) @ inv
    return 1.0 / prec_chol**2


def log_det_cholesky(prec_chol, covariance_type, n_features):
    """log det U per component (diag), or the shared one (tied, spherical:
    broadcast as scikit-learn does). Full covariance: _em.layout_full."""
    if covariance_type == "tied":
        return np.sum(np.log(np.diag(prec_chol)))
    if covariance_type == "diag":
        return np.sum(np.log(prec_chol), axis=1)
    if covariance_type == "spherical":
        return n_features * np.log(prec_chol)
    raise ValueError(f"log_det_cholesky: no shared formula for {covariance_type!r}")


def n_parameters(covariance_type, n_components, n_features):
    """Free parameters of the mixture (for BIC and AIC)."""
    K, D = n_components, n_features
    cov_params = {
        "full": K * D * (D + 1) / 2.0,
        "tied": D * (D + 1) / 2.0,
        "diag": K * D,
        "spherical": K,
    }[covariance_type]
    return int(cov_params + K * D + K - 1)


class KernelParams:
    """Model parameters laid out for the kernels (see _em.pyx).

    loc/prec/center/shift are in the data's dtype (float32 data is compared
    in float32); log_const is float64. ``shift64`` is the shift the kernel
    actually used (rounded to the data's dtype), which the statistics are
    about.
    """

    def __init__(self, weights, means, prec_chol, covariance_type, dtype):
        n_components, n_features = means.shape
        self.cov_code = _em.COV_TYPE_CODES[covariance_type]
        self.covariance_type = covariance_type
        self.n_components, self.n_features = n_components, n_features
        # log 0 = -inf marks an empty component (exp gives exactly 0)
        if np.count_nonzero(weights) == n_components:
            log_weights = np.log(weights)
        else:
            log_weights = np.full(n_components, -np.inf)
            np.log(weights, out=log_weights, where=weights > 0)
        if covariance_type == "full":
            # rows padded for the kernel's register blocks, zero below the
            # diagonal and in the padding, and log det U_k (see _em.pyx)
            self.prec = np.empty(n_components * n_features * _em.tri_stride(n_features),
                                 dtype=dtype)
            log_det = np.empty(n_components)
            _em.layout_full(prec_chol, self.prec, log_det)
        else:
            self.prec = np.ascontiguousarray(np.ravel(prec_chol), dtype=dtype)
            # tied and spherical broadcast against the weights
            log_det = log_det_cholesky(prec_chol, covariance_type, n_features)
        self.log_const = np.ascontiguousarray(
            log_weights + (log_det - 0.5 * n_features * math.log(2 * math.pi)),
            dtype=np.float64,
        )
        if covariance_type == "full":
            center = np.zeros(n_features)
            shift = means
        else:
            # one statistics shift c near the data for all components: the
            # kernels form x - c once per row (see _em.pyx)
            w = weights / weights.sum()
            center = w @ means
            shift = np.tile(center, (n_components, 1))
        if covariance_type == "tied":
            # y_k = (x - c) U - (mu_k - c) U: one triangular product per row
            # instead of K.
            loc = (means - center) @ prec_chol
        else:
            loc = means
        self.loc = np.ascontiguousarray(loc, dtype=dtype)
        self.center = np.ascontiguousarray(center, dtype=dtype)
        self.shift = np.ascontiguousarray(shift, dtype=dtype)
        self.shift64 = self.shift.astype(np.float64)

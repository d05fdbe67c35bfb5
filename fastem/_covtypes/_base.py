"""What every covariance type provides, and the helpers two types share.

A covariance type is a stateless object; the registry in ``__init__`` holds
one instance per ``covariance_type`` name. Methods whose behaviour most
types share have a default here, and each type overrides only what differs.
"""
from __future__ import annotations

import functools

import numpy as np

from fastem._kernels import _em, _linalg


class CovarianceType:
    """Everything that depends on the covariance type, in one object.

    The statistics ``s2`` and the attributes ``covariances_``,
    ``precisions_`` and ``precisions_cholesky_`` all have the shape
    :meth:`shape`.
    """

    #: The value of the estimator's ``covariance_type``.
    name: str
    #: Buffers a kernel thread keeps per chunk row, in units of n_features,
    #: beyond the chunk itself (the chunk-size budget in fastem._engine).
    chunk_extra_rows: int
    #: Whether covariances have one entry per component (tied: one shared).
    per_component: bool = True

    @property
    def code(self) -> int:
        """The kernels' integer code of this type."""
        return _em.COV_TYPE_CODES[self.name]

    def __repr__(self) -> str:
        return f"<covariance type {self.name!r}>"

    # -- shapes -------------------------------------------------------------------------
    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of s2 and of the covariance, precision and Cholesky attributes."""
        raise NotImplementedError

    def zeros_s2(self, n_components: int, n_features: int) -> np.ndarray:
        return np.zeros(self.shape(n_components, n_features))

    def unpack_s2(self, flat: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        """s2 from its part of the kernels' flat statistics (a view)."""
        return flat.reshape(self.shape(n_components, n_features))

    def n_covariance_parameters(self, n_components: int, n_features: int) -> float:
        """Free parameters of the covariances (for BIC and AIC)."""
        raise NotImplementedError

    # -- statistics ---------------------------------------------------------------------
    def accumulate(self, block, resp, shift, s1, s2, weights=None):
        """Add a block's s1 and s2 under responsibilities resp (n, K) about
        shift (K, D), in place. Component by component: no (n, K, D) array.
        For weighted rows resp holds the responsibilities times the weights,
        and ``weights`` (n,) the weights (for types whose s2 does not
        depend on the responsibilities)."""
        for k in range(resp.shape[1]):
            r = resp[:, k]
            rows = block
            nonzero = np.flatnonzero(r)
            if 2 * nonzero.size < r.size:
                # hard responsibilities (k-means labels): only the rows with
                # a weight add to the sums, and gathering them is cheaper
                # than O(D^2) work on every row
                rows, r = block[nonzero], r[nonzero]
            diff = rows - shift[k]
            s1[k] += r @ diff
            s2[k] += self._scatter(diff, r)

    def _scatter(self, diff, r):
        """One component's s2 term of a block: differences (n, D), weights (n,)."""
        raise NotImplementedError

    def seed_stats(self, seeds, gram):
        """(s1, s2, shift) of responsibilities that are 1 at the row of
        seeds[k] for component k and 0 elsewhere, about the seeds: then the
        first moments are zero and so are the second. ``gram()`` would give
        X^T X of all rows, which the default does not need."""
        n_components, n_features = seeds.shape
        return (np.zeros((n_components, n_features)),
                self.zeros_s2(n_components, n_features), seeds)

    def s2_from_scatter(self, scatter):
        """s2 from each component's full second moments (K, D, D) about its
        shift (rows with gaps form these: fastem._missing)."""
        raise NotImplementedError

    def recentered_s2(self, s2, nk, s1, d):
        """s2 about shifts moved by d (K, D): with c' = c + d,
        sum r (x - c')(x - c')^T = s2 - s1 d^T - d s1^T + n d d^T."""
        raise NotImplementedError

    def init_shift(self, centers):
        """Statistics shift (K, D) for initial statistics near ``centers``."""
        return np.array(centers, dtype=np.float64)

    # -- M-step and precisions ------------------------------------------------------------
    def covariances(self, stats, nk, delta, reg_covar):
        """M-step covariances from the statistics (about the shifts c), nk
        (the r sums with the empty component guard NK_EPS added) and
        delta = means - c (K, D): scikit-learn's estimate for the type about
        the means, written about c (terms in NK_EPS matter only for a nearly
        empty component)."""
        raise NotImplementedError

    def precision_cholesky(self, covariances, reg_covar=None):
        """Upper-triangular U with U U^T = covariance^-1 (scikit-learn's
        convention); a ValueError naming the collapsed components otherwise."""
        raise NotImplementedError

    def precision_cholesky_from_precisions(self, precisions):
        raise NotImplementedError

    def precisions_from_cholesky(self, prec_chol):
        raise NotImplementedError

    def covariances_from_cholesky(self, prec_chol):
        raise NotImplementedError

    def log_det_cholesky(self, prec_chol, n_features):
        """log det U per component, or one value shared by all."""
        raise NotImplementedError

    def check_precisions(self, precisions, n_features):
        """Raise a ValueError if precisions (of the right shape) are not valid."""
        raise NotImplementedError

    # -- the kernels' parameters ------------------------------------------------------------
    def kernel_prec(self, prec_chol, n_features, dtype):
        """(prec, log_det): the factors flat in the kernels' layout (see
        fastem/_kernels/_em.pyx) and their log-determinants."""
        prec = np.ascontiguousarray(np.ravel(prec_chol), dtype=dtype)
        return prec, self.log_det_cholesky(prec_chol, n_features)

    def kernel_center(self, weights, means):
        """(center (D,), shift (K, D)), float64. By default one shift c for
        all components, the weighted mean of the means: the kernels then
        form x - c once per row for all of them."""
        w = weights / weights.sum()
        center = w @ means
        return center, np.tile(center, (means.shape[0], 1))

    def kernel_loc(self, means, center, prec_chol):
        """The per-component locations the kernels subtract."""
        return means

    def spread_axis(self, covariances, k, n_features):
        """(D,) the direction of component k's largest spread, one standard
        deviation long: where collapse="reseed" splits it in two."""
        n_components = covariances.shape[0] if self.per_component else k + 1
        cov = self.dense(covariances, n_components, n_features)[k]
        values, vectors = np.linalg.eigh(cov)
        return vectors[:, -1] * np.sqrt(max(values[-1], 0.0))

    # -- the variational Bayesian mixture (fastem/_bayesian_mixture.py) -----------------------
    #: What the Bayesian mixture's default covariance_prior is made of: the
    #: data's covariance matrix ("matrix") or its variances ("variances").
    prior_moment = "matrix"

    def covariance_prior_from(self, moment):
        """The default covariance_prior from the data's prior_moment."""
        return np.atleast_2d(moment)

    def check_covariance_prior(self, prior, n_features):
        """A user's covariance_prior, checked (scikit-learn's rules), float64."""
        raise NotImplementedError

    def variational_covariances(self, nk, xk, sk, mean_precision, prior):
        """(degrees_of_freedom, covariances) of the variational Wishart
        factor from the statistics' (nk, means xk, covariances sk) and the
        priors (prior.mean, prior.mean_precision, prior.covariance,
        prior.dof): scikit-learn's estimate for the type, whose
        covariances are the inverses of the expected precisions (W nu)^-1."""
        raise NotImplementedError

    def mahalanobis_sum(self, stats, means, prec_chol):
        """sum_k sum_n r_nk (x_n - mu_k)^T P_k (x_n - mu_k) of the rows the
        statistics summarise (P_k = U_k U_k^T), from the statistics alone:
        each component's scatter about mu_k, contracted with P_k."""
        scatter = self.recentered_s2(stats.s2, stats.nk, stats.s1, means - stats.shift)
        return float(np.sum(scatter * self.precisions_from_cholesky(prec_chol)))

    # -- using a fitted model -----------------------------------------------------------------
    def dense(self, covariances, n_components, n_features):
        """Each component's full (D, D) covariance matrix: (K, D, D)."""
        raise NotImplementedError

    def sample(self, rng, means, covariances, counts):
        """counts[k] rows drawn from each component k: a list of arrays."""
        raise NotImplementedError


# -- helpers shared by types -------------------------------------------------------------------
# scikit-learn adds this to every component's responsibility sum so an empty
# component gives finite parameters; kept for identical trajectories.
NK_EPS = 10 * np.finfo(np.float64).eps


@functools.lru_cache(maxsize=16)
def scaled_identity(n_features, value):
    """value * I, read-only: adding it adds value to every diagonal in one
    broadcast (off the diagonal x + 0.0 == x)."""
    eye = value * np.eye(n_features)
    eye.flags.writeable = False
    return eye


SKLEARN_COLLAPSE_MESSAGE = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton or "
    "collapsed samples). Try to decrease the number of components, increase "
    "reg_covar, or scale the input data."
)


class CollapseError(ValueError):
    """A covariance that is not positive definite; ``components`` lists the
    collapsed components (None: the tied covariance)."""

    def __init__(self, components, reg_covar):
        super().__init__(collapse_message(components, reg_covar))
        self.components = components


def collapse_message(components, reg_covar):
    """Why a covariance is not positive definite and what to change; components
    None means the shared (tied) covariance."""
    reg_covar = float("nan") if reg_covar is None else reg_covar
    what = ("The tied covariance is" if components is None
            else f"The covariance of component(s) {components} is")
    # scikit-learn's sentence first (code matches it), then which and why
    return (
        f"{SKLEARN_COLLAPSE_MESSAGE} {what} not positive definite: the data (or "
        "a component's share of it) lie on a lower-dimensional subspace, e.g. "
        "a component collapsed onto a single point or a feature is constant. "
        f"Increase reg_covar (now {reg_covar:g}), use fewer components, or "
        "rescale the data."
    )


def cholesky_stack(covariances, reg_covar, shared):
    """Precision Cholesky factors of a (n, D, D) stack of covariances."""
    covs = np.ascontiguousarray(covariances, dtype=np.float64)
    # one typed call for all components: NumPy's or SciPy's linalg
    # wrappers cost more per call than these small factorisations
    out = np.empty_like(covs)
    if _linalg.precision_cholesky(covs, out) >= 0:  # the first failed component
        bad = None if shared else [k for k, c in enumerate(covs)
                                   if not _is_positive_definite(c)]
        raise CollapseError(bad, reg_covar)
    return out


def positive_precision_cholesky(covariances, reg_covar):
    """1 / sqrt(variances), once every component's variances are positive."""
    positive = (covariances > 0.0).reshape(covariances.shape[0], -1).all(axis=1)
    bad = np.flatnonzero(~positive)
    if bad.size:
        raise CollapseError(bad.tolist(), reg_covar)
    return 1.0 / np.sqrt(covariances)


def _is_positive_definite(a):
    try:
        return bool(np.all(np.isfinite(np.linalg.inv(np.linalg.cholesky(a)))))
    except np.linalg.LinAlgError:
        return False


def flipudlr(a):
    """a with the rows and columns of its last two axes reversed."""
    return np.flip(np.flip(a, axis=-1), axis=-2)


def check_symmetric_positive_definite(precisions, name, n_features):
    for p in precisions.reshape(-1, n_features, n_features):
        if not (np.allclose(p, p.T) and np.all(np.linalg.eigvalsh(p) > 0.0)):
            raise ValueError(f"'{name} precision' should be symmetric, positive-definite")


def check_shape(param, shape, name):
    """scikit-learn's ValueError for a parameter of the wrong shape."""
    if param.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape of {shape}, "
            f"but got {param.shape}"
        )


def check_matrix_prior(prior, name, n_features):
    """A (D, D) covariance_prior of full or tied covariance, checked as
    scikit-learn checks it."""
    from sklearn.utils import check_array

    prior = check_array(prior, dtype=[np.float64, np.float32], ensure_2d=False,
                        input_name="covariance_prior")
    check_shape(prior, (n_features, n_features), f"{name} covariance_prior")
    check_symmetric_positive_definite(prior, name, n_features)
    return prior


def check_positive(precisions, name):
    if np.any(precisions <= 0.0):
        raise ValueError(f"'{name} precision' should be positive")

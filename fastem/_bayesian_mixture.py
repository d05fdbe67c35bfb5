"""fastem.BayesianGaussianMixture: scikit-learn's variational Bayesian
mixture on fastem's kernels.

Variational inference (Bishop 2006, ch. 10.2; Blei & Jordan 2006 for the
Dirichlet process) alternates the same two steps as EM, and both run on the
same machinery:

- the E-step's log-responsibilities are the Gaussian log-densities of the
  current means and scaled precisions nu_k W_k plus one constant per
  component: E[log pi_k], the expected log-determinant E[log |Lambda_k|]
  less the D log nu_k already in the precisions, and -D / beta_k. The
  fused kernel pass takes these constants in place of log-weights and
  returns the usual sufficient statistics;
- the M-step forms scikit-learn's (n_k, x_k, S_k) from the statistics (as
  GaussianMixture does) and updates the Dirichlet, Gaussian and Wishart
  factors from them (the Wishart update per covariance type lives in
  fastem/_covtypes);
- the lower bound needs sum_n sum_k r_nk log r_nk, which the kernels do not
  sum: with log r_nk = c_k - m_nk / 2 - log p(x_n), it is
  sum_k n_k c_k - (1/2) sum_k tr(P_k S_k) - log-likelihood, all three known
  from the pass's statistics (CovarianceType.mahalanobis_sum).
"""
from __future__ import annotations

import math
import weakref
from numbers import Real
from types import SimpleNamespace

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from scipy.special import betaln, digamma, gammaln
from sklearn.utils import check_array, check_scalar

from fastem import _covariance as cov
from fastem._covtypes._base import check_shape
from fastem._kernel_mixture import KernelMixture
from fastem._sources import ArraySource, as_source

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


class BayesianGaussianMixture(KernelMixture):
    """Variational Bayesian Gaussian mixture, a drop-in for
    ``sklearn.mixture.BayesianGaussianMixture`` running on fastem's kernels.

    The weights have a Dirichlet distribution (finite mixture) or a
    Dirichlet process (stick-breaking, truncated at ``n_components``)
    prior; means and precisions a Gaussian-Wishart prior. Components the
    data do not need get weights near zero: ``n_components`` is an upper
    bound and the fit chooses how many to use. Each iteration is one pass
    over X in chunks of rows, as in :class:`fastem.GaussianMixture`, so
    streamed and dask inputs, ``sample_weight`` (a row of weight w counts
    as w copies) and model files work alike. From the same data,
    ``random_state`` and ``init_params``, ``lower_bounds_`` follow
    scikit-learn's to rounding.

    Parameters
    ----------
    n_components : int, default=1
        The largest number of components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of the
        statistics' covariances.
    max_iter : int, default=100
    n_init : int, default=1
        Initialisations to perform; the one with the largest lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, \
            default="kmeans"
    weight_concentration_prior_type : {"dirichlet_process", \
            "dirichlet_distribution"}, default="dirichlet_process"
    weight_concentration_prior : float, default=None
        gamma_0 > 0 of the weights' prior; smaller values favour fewer
        active components. None: 1 / n_components.
    mean_precision_prior : float, default=None
        beta_0 > 0, how strongly the means are drawn to ``mean_prior``. None: 1.
    mean_prior : array-like of shape (n_features,), default=None
        m_0; None: the mean of X.
    degrees_of_freedom_prior : float, default=None
        nu_0 > n_features - 1 of the Wishart prior; None: n_features.
    covariance_prior : float or array-like, default=None
        The Wishart prior's covariance, shaped (n_features, n_features) for
        "full" and "tied", (n_features,) for "diag", a float for
        "spherical". None: the covariance of X (its variances for "diag",
        their mean for "spherical").
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
    verbose : int, default=0
    verbose_interval : int, default=10
    chunk_size, n_threads, dtype, block_bytes
        As in :class:`fastem.GaussianMixture`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The expected weights under the variational posterior.
    means_ : ndarray of shape (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : ndarray
        Shaped by covariance_type as in GaussianMixture; covariances_ are
        the inverses of the expected precisions nu_k W_k.
    weight_concentration_prior_ : float
    weight_concentration_ : ndarray of shape (n_components,), or a tuple
        of two such arrays ("dirichlet_process": the Beta parameters)
    mean_precision_prior_ : float
    mean_precision_ : ndarray of shape (n_components,)
    mean_prior_ : ndarray of shape (n_features,)
    degrees_of_freedom_prior_ : float
    degrees_of_freedom_ : ndarray of shape (n_components,) (a float for "tied")
    covariance_prior_ : float or ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The lower bound on the model evidence (a total over the rows, as
        scikit-learn's, not per row) of the best fit.
    lower_bounds_ : list of float
        The lower bound at every iteration of the best fit.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import BayesianGaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [12, 4], [10, 7]])
    >>> bgm = BayesianGaussianMixture(n_components=2, random_state=42).fit(X)
    >>> np.round(bgm.means_, 2)
    array([[2.5 , 2.29],
           [8.46, 4.52]])
    """

    _FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_",
                      "precisions_", "mean_precision_", "degrees_of_freedom_")

    def __init__(
        self,
        *,
        n_components: int = 1,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float | None = None,
        mean_prior: ArrayLike | None = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior: float | ArrayLike | None = None,
        random_state: int | np.random.RandomState | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        n_threads: int | None = None,
        dtype: DTypeLike | None = None,
        block_bytes: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.n_threads = n_threads
        self.dtype = dtype
        self.block_bytes = block_bytes

    # -- validation ----------------------------------------------------------------
    def _check_hyperparameters(self):
        self._check_common_hyperparameters()
        if self.weight_concentration_prior_type not in PRIOR_TYPES:
            raise ValueError(f"weight_concentration_prior_type must be one of "
                             f"{PRIOR_TYPES}, got {self.weight_concentration_prior_type!r}")
        for name in ("weight_concentration_prior", "mean_precision_prior",
                     "degrees_of_freedom_prior"):
            value = getattr(self, name)
            if value is not None:
                check_scalar(value, name, Real, min_val=0.0, include_boundaries="neither")

    def _check_parameters(self, X):
        """The priors (scikit-learn's defaults from X where not given)."""
        X = as_source(X)  # (an array as scikit-learn's own tests pass it)
        n_features = X.shape[1]
        covtype = self._covtype
        self.weight_concentration_prior_ = (1.0 / self.n_components
                                            if self.weight_concentration_prior is None
                                            else self.weight_concentration_prior)
        self.mean_precision_prior_ = (1.0 if self.mean_precision_prior is None
                                      else self.mean_precision_prior)
        if self.mean_prior is None or self.covariance_prior is None:
            mean, moment = data_moments(X, covtype.prior_moment == "matrix")
        if self.mean_prior is None:
            self.mean_prior_ = mean
        else:
            self.mean_prior_ = check_array(self.mean_prior, dtype=[np.float64, np.float32],
                                           ensure_2d=False, input_name="mean_prior")
            check_shape(self.mean_prior_, (n_features,), "means")
        if self.degrees_of_freedom_prior is None:
            self.degrees_of_freedom_prior_ = n_features
        elif self.degrees_of_freedom_prior > n_features - 1.0:
            self.degrees_of_freedom_prior_ = self.degrees_of_freedom_prior
        else:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' should be greater than "
                f"{n_features - 1}, but got {self.degrees_of_freedom_prior:.3f}.")
        self.covariance_prior_ = (covtype.covariance_prior_from(moment)
                                  if self.covariance_prior is None
                                  else covtype.check_covariance_prior(self.covariance_prior,
                                                                      n_features))
        self._engine = self._make_engine(n_features)

    def _prior(self):
        return SimpleNamespace(mean=self.mean_prior_, mean_precision=self.mean_precision_prior_,
                               covariance=self.covariance_prior_,
                               dof=self.degrees_of_freedom_prior_,
                               weight_concentration=self.weight_concentration_prior_)

    # -- the variational steps -------------------------------------------------------------
    def _initialize_steps(self, X, random_state):
        stats = yield from self._initial_stats_steps(X, random_state)
        return self._m_step(stats)

    def _m_step(self, stats):
        """The variational factors from a pass's statistics: scikit-learn's
        (n_k, x_k, S_k), then the Dirichlet (or stick-breaking Beta),
        Gaussian and Wishart updates."""
        nk, xk, sk = cov.estimate_parameters(stats, self.reg_covar)
        prior = self._prior()
        if self.weight_concentration_prior_type == "dirichlet_process":
            weight_concentration = (
                1.0 + nk,
                prior.weight_concentration + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0)))
        else:
            weight_concentration = prior.weight_concentration + nk
        mean_precision = prior.mean_precision + nk
        means = ((prior.mean_precision * prior.mean + nk[:, np.newaxis] * xk)
                 / mean_precision[:, np.newaxis])
        dof, covariances = self._covtype.variational_covariances(nk, xk, sk, mean_precision,
                                                                 prior)
        prec_chol = self._covtype.precision_cholesky(covariances, self.reg_covar)
        return weight_concentration, mean_precision, means, dof, covariances, prec_chol

    def _log_weights(self, params):
        """The E-step's per-component constants besides the Gaussian
        log-density of (means, precisions_cholesky): E[log pi_k]
        - (D/2) log nu_k + (1/2) (E[log |Lambda_k|] - D / beta_k)."""
        weight_concentration, mean_precision, means, dof, _, _ = params
        n_features = means.shape[1]
        log_lambda = n_features * np.log(2.0) + np.sum(
            digamma(0.5 * (dof - np.arange(n_features)[:, np.newaxis])), 0)
        return (self._expected_log_weights(weight_concentration)
                - 0.5 * n_features * np.log(dof)
                + 0.5 * (log_lambda - n_features / mean_precision))

    def _expected_log_weights(self, weight_concentration):
        if self.weight_concentration_prior_type == "dirichlet_process":
            a, b = weight_concentration
            digamma_sum = digamma(a + b)
            digamma_b = digamma(b)
            return (digamma(a) - digamma_sum
                    + np.hstack((0, np.cumsum(digamma_b - digamma_sum)[:-1])))
        return digamma(weight_concentration) - digamma(np.sum(weight_concentration))

    def _kernel_params(self, engine, params, dtype):
        weights = self._expected_weights(params[0])
        return engine.kernel_params(weights, params[2], params[5], dtype,
                                    log_weights=self._log_weights(params))

    def _lower_bound(self, stats, params, new_params, n_samples):
        """scikit-learn's lower bound (constants dropped as it drops them):
        the responsibilities' entropy from the E-step under params, less
        the normalisers of the factors new_params after the M-step."""
        covtype = self._covtype
        n_features = params[2].shape[1]
        log_const = (self._log_weights(params)
                     + covtype.log_det_cholesky(params[5], n_features)
                     - 0.5 * n_features * math.log(2 * math.pi))
        # sum_n sum_k r log r = sum_k n_k c_k - (1/2) sum tr(P S) - log L
        resp_log_resp = (float(stats.nk @ log_const)
                         - 0.5 * covtype.mahalanobis_sum(stats, params[2], params[5])
                         - stats.log_likelihood)
        weight_concentration, mean_precision, means, dof, _, prec_chol = new_params
        log_det = (covtype.log_det_cholesky(prec_chol, n_features)
                   - 0.5 * n_features * np.log(dof))
        log_wishart = -(dof * log_det + dof * n_features * 0.5 * math.log(2.0)
                        + np.sum(gammaln(0.5 * (dof - np.arange(n_features)[:, np.newaxis])),
                                 0))
        log_wishart = (np.sum(log_wishart) if covtype.per_component
                       else self.n_components * float(np.ravel(log_wishart)[0]))
        if self.weight_concentration_prior_type == "dirichlet_process":
            log_norm_weight = -np.sum(betaln(*weight_concentration))
        else:
            log_norm_weight = (gammaln(np.sum(weight_concentration))
                               - np.sum(gammaln(weight_concentration)))
        return float(-resp_log_resp - log_wishart - log_norm_weight
                     - 0.5 * n_features * np.sum(np.log(mean_precision)))

    def _expected_weights(self, weight_concentration):
        """E[pi] under the variational posterior (scikit-learn's weights_)."""
        if self.weight_concentration_prior_type == "dirichlet_process":
            a, b = weight_concentration
            total = a + b
            weights = a / total * np.hstack((1, np.cumprod((b / total)[:-1])))
            return weights / np.sum(weights)
        return weight_concentration / np.sum(weight_concentration)

    # -- parameters ---------------------------------------------------------------------
    def _get_parameters(self):
        return (self.weight_concentration_, self.mean_precision_, self.means_,
                self.degrees_of_freedom_, self.covariances_, self.precisions_cholesky_)

    def _set_parameters(self, params):
        (self.weight_concentration_, self.mean_precision_, self.means_,
         self.degrees_of_freedom_, self.covariances_, self.precisions_cholesky_) = params
        self.weights_ = self._expected_weights(self.weight_concentration_)
        self.precisions_ = self._covtype.precisions_from_cholesky(self.precisions_cholesky_)


# the moments of the sources read, while they live: select_model's shared
# passes give one source to all their candidates, which then read it once
_MOMENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def data_moments(X, matrix):
    """(mean, covariance matrix or variances) of the rows of a RowSource,
    with ddof=1: an in-memory unweighted X as scikit-learn computes them,
    other sources in two passes (weighted rows: frequency weights)."""
    if isinstance(X, ArraySource) and X.weights is None:
        array = X.array
        moment = np.cov(array.T) if matrix else np.var(array, axis=0, ddof=1)
        return array.mean(axis=0), moment
    known = _MOMENTS.setdefault(X, {})
    if matrix not in known:
        known[matrix] = _streamed_moments(X, matrix)
    return known[matrix]


def _streamed_moments(X, matrix):
    sums = X.reduce(_block_sums)
    total, mean = sums[0], sums[1:] / sums[0]
    if total <= 1.0:
        raise ValueError(f"the default mean and covariance priors need rows weighing more "
                         f"than 1 in all (got {total:g}); give mean_prior and "
                         "covariance_prior")
    scatter = X.reduce(_block_scatter, mean, matrix)
    return mean, scatter / (total - 1.0)


def _block_sums(block, weights=None):
    """[sum of weights, weighted column sums] of a block, float64."""
    rows = np.asarray(block, dtype=np.float64)
    if weights is None:
        return np.concatenate(([rows.shape[0]], rows.sum(axis=0)))
    return np.concatenate(([weights.sum()], weights @ rows))


def _block_scatter(block, mean, matrix, weights=None):
    """sum w (x - mean)(x - mean)^T of a block (its diagonal if not matrix)."""
    diff = np.asarray(block, dtype=np.float64) - mean
    weighted = diff if weights is None else diff * weights[:, np.newaxis]
    if matrix:
        return weighted.T @ diff
    return np.einsum("ij,ij->j", weighted, diff)

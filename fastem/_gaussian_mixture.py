"""fastem.GaussianMixture: scikit-learn's estimator on fastem's kernels."""
from __future__ import annotations

from collections.abc import Callable
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from sklearn.utils import check_array, check_scalar

from fastem import _covariance as cov
from fastem import _init, _reseed
from fastem._covtypes._base import check_shape
from fastem._kernel_mixture import KernelMixture
from fastem._missing import gap_rows
from fastem._sources import releases_blocks
from fastem._stepwise import StepwiseMixin


def _check_weights(weights, n_components):
    # float32 weights are checked in float32, to its precision (as
    # scikit-learn does), then used in float64
    weights = check_array(weights, dtype=[np.float64, np.float32], ensure_2d=False,
                          input_name="weights_init")
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    check_shape(weights, (n_components,), "weights")
    if np.any(weights < 0.0) or np.any(weights > 1.0):
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got "
            f"max value {weights.max():.5f}, min value {weights.min():.5f}"
        )
    if not abs(1.0 - weights.sum()) <= atol:
        raise ValueError(
            "The parameter 'weights' should be normalized, but got "
            f"sum(weights) = {weights.sum():.5f}"
        )
    return weights.astype(np.float64)


def _check_precisions(precisions, covtype, n_components, n_features):
    shape = covtype.shape(n_components, n_features)
    precisions = check_array(precisions, dtype=np.float64, ensure_2d=False,
                             allow_nd=len(shape) > 2, input_name="precisions_init")
    check_shape(precisions, shape, f"{covtype.name} precision")
    covtype.check_precisions(precisions, n_features)
    return precisions


class GaussianMixture(StepwiseMixin, KernelMixture):
    """Gaussian mixture model fitted by EM, a drop-in for
    ``sklearn.mixture.GaussianMixture`` running on multi-threaded kernels.

    Each EM iteration is one pass over X in chunks of rows: the kernels
    compute log-responsibilities and float64 sufficient statistics for all
    components at once, never materialising (n_samples, n_components) or
    (n_samples, n_features) temporaries. From the same initial parameters
    the fit follows scikit-learn's trajectory to rounding.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Each component has its own general covariance ("full"), all share
        one ("tied"), each has its own diagonal ("diag") or single variance
        ("spherical").
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (mean
        log-likelihood per sample).
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of covariances.
    max_iter : int, default=100
        EM iterations per initialisation.
    n_init : int, default=1
        Initialisations to perform; the best result is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, \
            default="kmeans"
        How initial responsibilities are chosen: k-means labels, k-means++
        seeds, random, or random data points.
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances), shaped by covariance_type
        as ``precisions_``.
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start each ``fit`` from the previous solution (n_init is then 1).
    verbose : int, default=0
    verbose_interval : int, default=10
    chunk_size : int, default=None
        Rows per kernel chunk; None chooses it from n_features and
        n_components so that a chunk's work stays in cache (512 rows on the
        BLAS path of full and tied covariance with many features).
    n_threads : int, default=None
        OpenMP threads; None uses all available CPUs (honouring
        OMP_NUM_THREADS); 1 runs serially; -1 all, -2 all but one.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Precision of the distance computations. None keeps float32 input in
        float32 and uses float64 otherwise. Sufficient statistics and the
        M-step are always float64; the fitted arrays (and ``lower_bound_``)
        are returned in the data's dtype, and per-row outputs are float32
        when both the model and the data are, as scikit-learn returns them.
    block_bytes : int, default=None
        Size in bytes of the blocks of rows read at a time from a streamed
        input (a path to a .npy file, np.memmap, h5py.Dataset, zarr.Array
        or fastem.Streamed object); None: 64 MiB. Memory
        of a streamed fit is about two blocks plus the model.
    learning_decay : float, default=0.7
        kappa in (0.5, 1] of partial_fit's step size eta_t = (t + t0)^-kappa.
    learning_offset : float, default=2.0
        t0 >= 1 of that step size: larger values damp the first updates.
    callback : callable, default=None
        Called after every EM iteration (and every partial_fit update) as
        ``callback(iteration, lower_bound, params)`` with params a dict of
        "weights", "means" and "covariances": e.g. to plot a fit live.
        Not kept by ``save``: a loaded model has callback=None.
    progress : bool, default=False
        Show a progress bar of the iterations with the lower bound and the
        rows processed per second (needs tqdm).
    collapse : {"raise", "reseed"}, default="raise"
        What a component whose covariance is not positive definite (or
        whose weight vanished) does. "raise": a ValueError naming the
        components, as scikit-learn raises. "reseed": the component is
        re-initialised by splitting the heaviest component in two along its
        widest axis, with a UserWarning once per fit, and EM goes on; an
        iteration that reseeded does not count as converged. A collapsed
        tied covariance, shared by all components, still raises.
    persist : bool or None, default=None
        For a dask array: whether fit persists it (on the workers with a
        distributed client) for its passes. None: when it takes at most half
        of the workers' memory limits (of this machine's free memory without
        a client); False: every pass reads the blocks from the array's
        source again (Zarr, HDF5, .npy ...), for data larger than the
        cluster's memory.
    missing : {"error", "em"}, default="error"
        What NaN in X means. "error": an error, as in scikit-learn. "em": a
        missing coordinate (missing at random). The fit maximises the
        likelihood of the observed coordinates: a row's responsibilities
        come from each component's marginal density of its observed
        coordinates, and the M-step uses each component's conditional
        expectation of the missing ones (and their conditional covariance).
        Rows are grouped by their pattern of gaps; rows without gaps take
        the fused kernels as usual, so data without NaN give exactly the
        fit of "error". ``lower_bounds_`` is then the mean observed-data
        log-likelihood; predict, predict_proba, score_samples, score, bic
        and aic marginalise the same way, and :meth:`impute` fills gaps.
        Initialisation uses the observed coordinates (k-means with partial
        distances). Infinity, and a row with no observed value, are errors.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (n_components, n_features, n_features) if "full",
        (n_features, n_features) if "tied", (n_components, n_features) if
        "diag", (n_components,) if "spherical".
    precisions_ : ndarray
        Inverses of the covariances, shaped as covariances_.
    precisions_cholesky_ : ndarray
        Upper-triangular Cholesky factors of the precisions, shaped as
        covariances_.
    converged_ : bool
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Mean log-likelihood per sample at the last iteration of the best fit
        (with sample_weight, per unit of weight; with missing="em", of the
        observed values).
    lower_bounds_ : list of float
        lower_bound_ at every iteration of the best fit.
    n_reseeded_ : int
        Components re-initialised in the best fit (collapse="reseed"; with
        partial_fit, in all updates since the model was first fitted).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0])
    array([ 1., 10.])
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: ArrayLike | None = None,
        means_init: ArrayLike | None = None,
        precisions_init: ArrayLike | None = None,
        random_state: int | np.random.RandomState | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        n_threads: int | None = None,
        dtype: DTypeLike | None = None,
        block_bytes: int | None = None,
        learning_decay: float = 0.7,
        learning_offset: float = 2.0,
        callback: Callable[[int, float, dict], object] | None = None,
        progress: bool = False,
        collapse: str = "raise",
        persist: bool | None = None,
        missing: str = "error",
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.n_threads = n_threads
        self.dtype = dtype
        self.block_bytes = block_bytes
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.callback = callback
        self.progress = progress
        self.collapse = collapse
        self.persist = persist
        self.missing = missing

    # -- validation ----------------------------------------------------------------
    def _check_hyperparameters(self):
        self._check_common_hyperparameters()
        if self.persist not in (None, True, False):
            raise ValueError(f"persist must be None, True or False, got {self.persist!r}")
        if self.missing not in ("error", "em"):
            raise ValueError(f"missing must be 'error' or 'em', got {self.missing!r}")
        if self.collapse not in ("raise", "reseed"):
            raise ValueError(f"collapse must be 'raise' or 'reseed', got {self.collapse!r}")
        if self.callback is not None and not callable(self.callback):
            raise ValueError(f"callback must be callable, got {self.callback!r}")
        # eta_t = (t + offset)^-decay: decay in (0.5, 1] makes sum eta diverge
        # and sum eta^2 converge (the stochastic-approximation conditions)
        check_scalar(self.learning_decay, "learning_decay", Real, min_val=0.5,
                     max_val=1.0, include_boundaries="right")
        check_scalar(self.learning_offset, "learning_offset", Real, min_val=1.0)

    def _check_parameters(self, X):
        n_features = X.shape[1]
        K = self.n_components
        self._weights_init = (None if self.weights_init is None
                              else _check_weights(self.weights_init, K))
        self._means_init = None
        if self.means_init is not None:
            self._means_init = check_array(self.means_init, dtype=np.float64,
                                           input_name="means_init")
            check_shape(self._means_init, (K, n_features), "means")
        self._precisions_init = (
            None if self.precisions_init is None
            else _check_precisions(self.precisions_init, self._covtype, K, n_features)
        )
        self._engine = self._make_engine(n_features)

    # -- EM steps --------------------------------------------------------------------
    def _initialize_steps(self, X, random_state):
        """The initial parameter tuple, as a generator of the passes it
        needs over X (k-means' passes can then be shared; see _init.run)."""
        if (self._weights_init is not None and self._means_init is not None
                and self._precisions_init is not None):
            stats = None  # nothing to estimate, and no random numbers drawn
        else:
            stats = yield from self._initial_stats_steps(X, random_state)

        weights = means = covariances = None
        if stats is not None:
            weights, means, covariances = cov.estimate_parameters(stats, self.reg_covar)
            if self._weights_init is None:
                weights = weights / X.total_weight
        if self._weights_init is not None:
            weights = self._weights_init.copy()
        if self._means_init is not None:
            means = self._means_init.copy()
        covtype = self._covtype
        if self._precisions_init is None:
            return self._factorised(weights, means, covariances)
        prec_chol = covtype.precision_cholesky_from_precisions(self._precisions_init)
        covariances = covtype.covariances_from_cholesky(prec_chol)
        return weights, means, covariances, prec_chol

    def _kernel_params(self, engine, params, dtype):
        weights, means, _, prec_chol = params
        return engine.kernel_params(weights, means, prec_chol, dtype)

    def _m_step(self, stats):
        nk, means, covariances = cov.estimate_parameters(stats, self.reg_covar)
        return self._factorised(nk / nk.sum(), means, covariances)

    def _factorised(self, weights, means, covariances):
        """The parameter tuple with its precision factors; with
        collapse="reseed", components that collapsed or vanished are
        re-initialised first (fastem/_reseed.py) and counted."""
        if self.collapse == "raise":
            return (weights, means, covariances,
                    self._covtype.precision_cholesky(covariances, self.reg_covar))
        weights, means, covariances, prec_chol, bad = _reseed.factorise_or_reseed(
            self._covtype, weights, means, covariances, self.reg_covar)
        if bad:
            self._note_reseeded(bad)
        return weights, means, covariances, prec_chol

    _FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_",
                      "precisions_")

    def _get_parameters(self):
        return (self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    def _set_parameters(self, params):
        (self.weights_, self.means_, self.covariances_,
         self.precisions_cholesky_) = params
        self.precisions_ = self._covtype.precisions_from_cholesky(self.precisions_cholesky_)

    @releases_blocks
    def bic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Bayesian information criterion of the model on X (lower is
        better); with ``sample_weight`` of the weighted log-likelihood, with
        n the sum of the weights."""
        X = self._validate_predict_data(X).with_weights(sample_weight)
        return self._information_criteria(X)["bic"]

    @releases_blocks
    def aic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Akaike information criterion of the model on X (lower is better),
        of the weighted log-likelihood with ``sample_weight``."""
        X = self._validate_predict_data(X).with_weights(sample_weight)
        return self._information_criteria(X)["aic"]

    @releases_blocks
    def impute(self, X: ArrayLike) -> np.ndarray:
        """X with each missing value (NaN) replaced by its expectation under
        the fitted mixture given the row's observed values,
        sum_k p(k | x_obs) E_k[x_missing | x_obs].

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or any input
            ``predict`` takes (a dask array gives a lazy dask array)

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
            A new array (X is not modified), in X's float dtype.
        """
        if self.missing != "em":
            raise ValueError("impute needs a model with missing='em' (NaN is an error "
                             "with missing='error')")
        X = self._validate_predict_data(X, lazy=True)
        engine, kp = self._scoring(X)
        marginals = kp.marginals()
        dtype = self._output_dtype(X)
        if X.distributed:
            return X.array.map_blocks(_impute_block, marginals, dtype, dtype=dtype,
                                      name="fastem-impute")
        out = np.empty(X.shape, dtype=dtype)
        for start, stop, block in _init.iter_blocks(X):
            out[start:stop] = _impute_block(block, marginals, dtype)
        return out


def _impute_block(block, marginals, dtype):
    """A block with its gaps filled (fastem._missing.Marginals.impute)."""
    out = np.array(block, dtype=dtype)
    gaps = gap_rows(out)
    if gaps.size:
        out[gaps] = marginals.impute(out[gaps])
    return out

"""The EM loop, mirroring scikit-learn's BaseMixture: template methods for
initialisation, the fused E-step/statistics pass and the M-step; best of
n_init; warm_start; ConvergenceWarning; a final E-step for labels.

Inputs become a RowSource (fastem/_sources.py) once, in validation; the
steps below only ask the source."""
from __future__ import annotations

import math
import warnings
from abc import ABCMeta, abstractmethod
from time import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from fastem import _init
from fastem._missing import check_block
from fastem._sources import RowSource, as_source, releases_blocks


def check_finite_statistics(stats, dtype):
    """A ValueError saying why, when an E-step's sums are not finite. The
    rows were checked finite, so a distance overflowed: values near the
    square root of the dtype's largest number, or beyond (1.8e19 in
    float32), square to infinity. Without this the M-step would report a
    collapsed component.

    Checked cheaply, as this runs every iteration (W5's takes 60 us): the
    log-likelihood, and the sum of s2. A NaN or infinity in s1 (or n_k)
    comes from rows whose squares in s2 are NaN or infinite too, and a sum
    of finite second moments overflows only beyond what any row's square
    could hold."""
    if math.isfinite(stats.log_likelihood) and math.isfinite(float(stats.s2.sum())):
        return
    dtype = np.dtype(dtype)
    raise ValueError(
        f"fastem: the E-step's sums over the data are not finite: squared distances "
        f"between rows and means overflow {dtype.name}, as they do for values near "
        f"{np.sqrt(np.finfo(dtype).max):.1e} or beyond. Rescale the data"
        + (" or fit in float64 (dtype=np.float64)" if dtype == np.float32 else "") + ".")


class BaseMixture(DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """Shared EM driver; subclasses own the model-specific steps."""

    # -- subclass hooks ------------------------------------------------------
    @abstractmethod
    def _check_parameters(self, X):
        """Validate hyper-parameters and *_init arrays for data X."""

    @abstractmethod
    def _initialize_parameters(self, X, random_state):
        """Return the initial parameter tuple."""

    @abstractmethod
    def _e_step_stats(self, X, params):
        """Fused E-step: SuffStats of X under params (with log-likelihood)."""

    @abstractmethod
    def _e_step_request(self, X, params):
        """The fused E-step as a pass: (block function, arguments)."""

    @abstractmethod
    def _initialize_steps(self, X, random_state):
        """The initial parameters, as a generator of passes (see _fit_steps)."""

    @abstractmethod
    def _m_step(self, stats):
        """Parameter tuple from SuffStats."""

    @abstractmethod
    def _get_parameters(self):
        pass

    @abstractmethod
    def _set_parameters(self, params):
        pass

    @abstractmethod
    def _cast_fitted(self, dtype):
        """Fitted arrays as the data's dtype (float32 or float64), as
        scikit-learn returns them; the M-step itself stays float64."""

    @abstractmethod
    def _fitted_dtype(self):
        """The dtype of the fitted arrays."""

    @abstractmethod
    def _score(self, X, **outputs):
        """Per-row outputs for fitted parameters (see Engine.score)."""

    @abstractmethod
    def _total_log_likelihood(self, X):
        """Sum of the rows' log-likelihoods for fitted parameters."""

    # -- validation ------------------------------------------------------------
    def _allow_nan(self):
        """Whether NaN marks a gap (missing="em") rather than an error."""
        return getattr(self, "missing", "error") == "em"

    def _validated(self, X, **kwargs):
        """scikit-learn's validate_data of an in-memory X; with gaps allowed,
        NaN passes and infinity or a row of NaN only is named."""
        if not self._allow_nan():
            return validate_data(self, X, dtype=self._accepted_dtypes(), **kwargs)
        X = validate_data(self, X, dtype=self._accepted_dtypes(),
                          ensure_all_finite="allow-nan", **kwargs)
        check_block(X, 0, "X")
        return X

    def _validate_fit_data(self, X) -> RowSource:
        """The RowSource of training data X; an in-memory X is checked and
        converted by scikit-learn's validate_data."""
        X = as_source(X, self._accepted_dtypes(), self.block_bytes,
                      validate=lambda X: self._validated(X, ensure_min_samples=2),
                      persist=getattr(self, "persist", None), allow_nan=self._allow_nan())
        if X.streamed:
            self.n_features_in_ = X.n_features
            if X.n_samples < 2:
                raise ValueError(f"Found array with {X.n_samples} sample(s) (shape="
                                 f"{X.shape}) while a minimum of 2 is required.")
        if X.shape[0] < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components but got "
                f"n_components = {self.n_components}, n_samples = {X.shape[0]}"
            )
        return X

    def _validate_predict_data(self, X, lazy=False) -> RowSource:
        """The RowSource of X, checked against the fitted model. ``lazy``: a
        dask array stays lazy (per-row outputs become lazy dask arrays)
        instead of being persisted (for reductions)."""
        check_is_fitted(self)
        X = as_source(X, self._accepted_dtypes(), self.block_bytes,
                      validate=lambda X: self._validated(X, reset=False),
                      lazy=lazy, allow_nan=self._allow_nan())
        if X.streamed and X.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {X.n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        return X

    # -- fitting ----------------------------------------------------------------
    @releases_blocks
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> BaseMixture:
        """Estimate model parameters with the EM algorithm.

        Fits ``n_init`` times and keeps the parameters with the largest lower
        bound. Each trial alternates E- and M-steps until the change of the
        lower bound is below ``tol`` or ``max_iter`` is reached (then a
        ConvergenceWarning is raised). With ``warm_start``, later calls
        continue from the current parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a streamed input
            (a .npy path, np.memmap, h5py.Dataset, zarr.Array,
            fastem.Streamed) or a dask array
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Finite, non-negative weights, not all zero: a row of weight w
            counts as w copies of the row (initialisation included). For a
            streamed or dask X, any input of the same kinds with the same
            rows (e.g. a .npy path of a 1-D array). None: all 1.

        Returns
        -------
        self : object
        """
        self._fit(X, sample_weight)
        return self

    @releases_blocks
    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit as ``fit`` does, then return the labels of X.

        Returns
        -------
        labels : ndarray of shape (n_samples,) (a lazy dask array for a dask X)
        """
        X = self._fit(X, sample_weight)
        return self._score(X, labels=True, dtype=self._output_dtype(X))["labels"]

    def _fit(self, X, sample_weight=None):
        X = self._start_fit(X, sample_weight)
        _init.run(self._fit_steps(X), X)
        return X

    def _start_fit(self, X, sample_weight=None):
        """Checked parameters and the RowSource of X for a fit."""
        self._check_hyperparameters()
        X = self._validate_fit_data(X).with_weights(sample_weight)
        self._check_parameters(X)
        return X

    def _fit_steps(self, X):
        """The fit of X as a generator of its passes over X: it yields
        (block function, arguments) and is sent the pass's sum (see
        fastem._init.run), so that one pass can serve several fits
        (select_model). It ends with the model fitted."""
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        # the lower bound is per row that the rows stand for
        n_samples = X.total_weight
        max_lower_bound = -np.inf
        best_lower_bounds = []
        best_params, best_n_iter, best_reseeded = None, 0, 0
        self.converged_ = False
        self._reseed_warned = False
        random_state = check_random_state(self.random_state)

        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            self._step_reseeds = 0
            if do_init:
                params = yield from self._initialize_steps(X, random_state)
            else:
                params = self._get_parameters()
            n_reseeded = self._step_reseeds
            lower_bound = -np.inf if do_init else self.lower_bound_
            current_lower_bounds = []
            if self.max_iter == 0:
                best_params, best_n_iter, best_reseeded = params, 0, n_reseeded
                continue
            converged = False
            bar = self._progress_bar(init, X.shape[0])
            for n_iter in range(1, self.max_iter + 1):
                prev_lower_bound = lower_bound
                stats = yield self._e_step_request(X, params)
                check_finite_statistics(stats, X.dtype)
                self._step_reseeds = 0
                new_params = self._m_step(stats)
                lower_bound = self._lower_bound(stats, params, new_params, n_samples)
                params = new_params
                n_reseeded += self._step_reseeds
                current_lower_bounds.append(lower_bound)
                change = lower_bound - prev_lower_bound
                self._print_verbose_msg_iter_end(n_iter, change)
                self._report(bar, n_iter, lower_bound, params, X.shape[0])
                # an iteration that re-initialised a component is not a fixed point
                if abs(change) < self.tol and not self._step_reseeds:
                    converged = True
                    break
            if bar is not None:
                bar.close()
            self._print_verbose_msg_init_end(lower_bound, converged)
            if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                max_lower_bound = lower_bound
                best_params, best_n_iter, best_reseeded = params, n_iter, n_reseeded
                best_lower_bounds = current_lower_bounds
                self.converged_ = converged

        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different "
                "init parameters, or increase max_iter, tol, or check for "
                "degenerate data.",
                ConvergenceWarning,
                # the caller of fit: past this generator, _fit, fit and
                # releases_blocks' wrapper
                stacklevel=5,
            )
        self._set_parameters(best_params)
        self._cast_fitted(X.dtype)
        # a later partial_fit starts its running statistics afresh
        self._stepwise_stats, self._stepwise_count = None, 0
        self.n_iter_ = best_n_iter
        self.n_reseeded_ = best_reseeded
        self.lower_bound_ = X.dtype.type(max_lower_bound)
        self.lower_bounds_ = [X.dtype.type(b) for b in best_lower_bounds]

    def _lower_bound(self, stats, params, new_params, n_samples):
        """The lower bound of an iteration: its E-step's statistics of X
        under params, then its M-step's new_params. Here the mean
        log-likelihood of the parameters *before* the M-step, as
        scikit-learn reports it."""
        return stats.log_likelihood / n_samples

    # -- progress ---------------------------------------------------------------------
    def _progress_bar(self, init, n_samples):
        if not getattr(self, "progress", False):
            return None
        from tqdm.auto import tqdm
        bar = tqdm(total=self.max_iter, unit="it",
                   desc=f"EM init {init + 1}/{self.n_init}" if self.n_init > 1 else "EM")
        bar.fastem_started = time()
        return bar

    def _report(self, bar, n_iter, lower_bound, params, n_samples):
        """Progress bar and user callback after an iteration."""
        if bar is not None:
            bar.update(1)
            # rows over the bar's own clock: tqdm's smoothed rate is None
            # for its first updates and lags on long ones
            elapsed = max(time() - bar.fastem_started, 1e-9)
            bar.set_postfix(lower_bound=f"{lower_bound:.6g}",
                            rows_per_s=f"{n_iter * n_samples / elapsed:.3g}")
        callback = getattr(self, "callback", None)
        if callback is not None:
            weights, means, covariances = params[:3]
            callback(n_iter, lower_bound, {"weights": weights, "means": means,
                                           "covariances": covariances})

    def _note_reseeded(self, components):
        """Count re-initialised components (collapse="reseed"); warn once."""
        self._step_reseeds = getattr(self, "_step_reseeds", 0) + len(components)
        if not getattr(self, "_reseed_warned", False):
            self._reseed_warned = True
            warnings.warn(
                f"component(s) {components} collapsed or lost their weight and "
                "were re-initialised by splitting the heaviest component "
                "(collapse='reseed'); n_reseeded_ counts re-initialisations",
                UserWarning, stacklevel=5)

    # -- scoring ------------------------------------------------------------------
    @releases_blocks
    def score_samples(self, X: Any, out: np.ndarray | None = None) -> Any:
        """Log-likelihood of each sample under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a streamed input
        out : ndarray of shape (n_samples,), float64 or float32, optional
            Written in place and returned (e.g. an ``np.memmap``, so that
            the output of a large streamed input need not fit in memory).

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        X = self._validate_predict_data(X, lazy=True)
        return self._score(X, log_likelihood=True, out_ll=out,
                           dtype=self._output_dtype(X))["log_likelihood"]

    @releases_blocks
    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean log-likelihood per sample of X under the model (with
        ``sample_weight``, the weighted mean)."""
        X = self._validate_predict_data(X).with_weights(sample_weight)
        return self._total_log_likelihood(X) / X.total_weight

    @releases_blocks
    def predict(self, X: Any) -> Any:
        """Label of the most probable component for each sample.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        X = self._validate_predict_data(X, lazy=True)
        return self._score(X, labels=True, dtype=self._output_dtype(X))["labels"]

    @releases_blocks
    def predict_proba(self, X: Any, out: np.ndarray | None = None) -> Any:
        """Posterior probability of each component for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a streamed input
        out : ndarray of shape (n_samples, n_components), float64 or float32, C order,
            optional
            Written in place and returned (e.g. an ``np.memmap``).

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        X = self._validate_predict_data(X, lazy=True)
        return self._score(X, resp=True, out_resp=out, dtype=self._output_dtype(X))["resp"]

    def _output_dtype(self, X):
        """Per-row outputs are float32 when the data and the fitted model
        both are (as scikit-learn's), float64 otherwise."""
        return np.result_type(X.dtype, self._fitted_dtype())

    # -- verbose output, as scikit-learn prints it ----------------------------------
    def _print_verbose_msg_init_beg(self, n_init):
        if self.verbose >= 1:
            print(f"Initialization {n_init:d}")
        if self.verbose >= 2:
            self._init_prev_time = time()
            self._iter_prev_time = self._init_prev_time

    def _print_verbose_msg_iter_end(self, n_iter, diff_ll):
        if n_iter % self.verbose_interval != 0:
            return
        if self.verbose == 1:
            print(f"  Iteration {n_iter:d}")
        elif self.verbose >= 2:
            cur_time = time()
            print(f"  Iteration {n_iter:d}\t time lapse "
                  f"{cur_time - self._iter_prev_time:.5f}s\t ll change {diff_ll:.5f}")
            self._iter_prev_time = cur_time

    def _print_verbose_msg_init_end(self, lb, converged):
        msg = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_prev_time
            print(f"Initialization {msg}. time lapse {t:.5f}s\t lower bound {lb:.5f}.")

"""What the two estimators on the kernels share (GaussianMixture and
BayesianGaussianMixture): the scikit-learn parameters they have in common,
the first statistics of the four init_params, the fused E-step pass,
scoring, model files and sampling.

A subclass says how statistics become its parameter tuple (its M-step and
initialisation) and which per-component constants its E-step adds to the
Gaussian densities (``_kernel_params``): the kernels do the rest."""
from __future__ import annotations

import math
import os
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state, check_scalar
from sklearn.utils.validation import check_is_fitted

from fastem import _covariance as cov
from fastem import _covtypes, _dask, _init, _lloyd, _missing_init
from fastem._base import BaseMixture
from fastem._engine import Engine, _block_stats
from fastem._sources import as_source

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


class KernelMixture(BaseMixture):
    """A Gaussian mixture whose E-step is fastem's fused kernel pass."""

    #: The fitted arrays returned in the data's dtype (see _cast_fitted).
    _FITTED_ARRAYS: tuple[str, ...] = ()

    @property
    def _covtype(self):
        """The covariance type object of ``covariance_type``: everything that
        depends on it goes through this one look-up."""
        return _covtypes.get(self.covariance_type)

    # -- validation ----------------------------------------------------------------
    def _check_common_hyperparameters(self):
        """The checks of the parameters both estimators have."""
        check_scalar(self.n_components, "n_components", Integral, min_val=1)
        check_scalar(self.tol, "tol", Real, min_val=0.0)
        check_scalar(self.reg_covar, "reg_covar", Real, min_val=0.0)
        check_scalar(self.max_iter, "max_iter", Integral, min_val=0)
        check_scalar(self.n_init, "n_init", Integral, min_val=1)
        check_scalar(self.verbose_interval, "verbose_interval", Integral, min_val=1)
        _covtypes.get(self.covariance_type)  # a ValueError for an unknown name
        if self.init_params not in INIT_PARAMS:
            raise ValueError(
                f"init_params must be one of {INIT_PARAMS}, got {self.init_params!r}"
            )
        if self.chunk_size is not None:
            check_scalar(self.chunk_size, "chunk_size", Integral, min_val=1)
        if self.block_bytes is not None:
            check_scalar(self.block_bytes, "block_bytes", Integral, min_val=1)
        if self.n_threads is not None and (
            not isinstance(self.n_threads, Integral) or self.n_threads == 0
        ):
            raise ValueError(f"n_threads must be None or a non-zero int, got {self.n_threads!r}")
        self._accepted_dtypes()

    def _accepted_dtypes(self):
        if self.dtype is None:
            return [np.float64, np.float32]
        dtype = np.dtype(self.dtype) if isinstance(self.dtype, (str, type, np.dtype)) else None
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be None, 'float32' or 'float64', got {self.dtype!r}")
        return dtype.type

    def _make_engine(self, n_features):
        return Engine(self.covariance_type, self.n_components, n_features,
                      self.chunk_size, self.n_threads, missing=self._allow_nan())

    # -- initialisation ----------------------------------------------------------------
    def _initial_stats_steps(self, X, random_state):
        """The first SuffStats of ``init_params``, as a generator of the
        passes it needs over X (k-means' passes can then be shared; see
        _init.run)."""
        K = self.n_components
        engine = self._engine
        if self._allow_nan() and _missing_init.has_gaps(X):
            return _missing_init.initial_stats(self, X, random_state)
        if self.init_params == "kmeans":
            labeller = yield from _init.kmeans_steps(X, K, random_state, engine.chunk_size,
                                                     engine.max_threads)
            stats = yield _init.block_kmeans_stats, (
                labeller, _lloyd.RowCounter(X), self.covariance_type,
                self._init_shift(labeller.raw_centers))
            _lloyd.warn_if_fewer_distinct(int(np.count_nonzero(stats.nk)), K)
            return stats
        if X.distributed:
            return _dask.initial_stats(self, X, random_state)
        if self.init_params == "random":
            return _init.stats_from_resp(X, self.covariance_type,
                                         self._random_resp(random_state),
                                         self._random_init_shift(X))
        return _init.seeded_stats(X, self.covariance_type, self.init_params, K,
                                  random_state, engine.chunk_size, engine.max_threads)

    def _initialize_parameters(self, X, random_state):
        X = as_source(X)  # (an array as scikit-learn's own tests pass it)
        return _init.run(self._initialize_steps(X, random_state), X)

    def _random_resp(self, random_state):
        """resp_block of init_params="random": uniform draws, row-normalised."""
        def random_resp(start, stop, rows):
            resp = random_state.uniform(size=(stop - start, self.n_components))
            return resp / resp.sum(axis=1)[:, np.newaxis]
        return random_resp

    def _random_init_shift(self, X):
        """Statistics shift of init_params="random": the mean of the first
        rows, for every component."""
        first = np.asarray(X.rows(0, min(1024, X.n_samples)), dtype=np.float64).mean(axis=0)
        return self._init_shift(np.repeat(first[np.newaxis], self.n_components, 0))

    def _init_shift(self, centers):
        return self._covtype.init_shift(centers)

    # -- the E-step ----------------------------------------------------------------------
    def _kernel_params(self, engine, params, dtype):
        """The KernelParams of a parameter tuple: the Gaussian densities the
        kernels evaluate and the per-component log-constants added to them."""
        raise NotImplementedError

    def _e_step_stats(self, X, params):
        return self._engine.em_stats(X, self._e_step_task(X, params)[1])

    def _e_step_task(self, X, params):
        """(engine, kernel parameters) of the E-step of params on X."""
        return self._engine, self._kernel_params(self._engine, params, X.dtype)

    def _e_step_request(self, X, params):
        """The E-step of params as a pass (block function, arguments)."""
        return _block_stats, self._e_step_task(X, params)

    # -- fitted arrays -------------------------------------------------------------------
    def _cast_fitted(self, dtype):
        for name in self._FITTED_ARRAYS:
            value = np.asarray(getattr(self, name), dtype=dtype)
            # a scalar stays a NumPy scalar (the tied degrees of freedom)
            setattr(self, name, value[()] if value.ndim == 0 else value)

    def _fitted_dtype(self):
        return self.means_.dtype

    # -- scoring -------------------------------------------------------------------------
    def _scoring(self, X):
        engine = getattr(self, "_engine", None)
        if engine is None or engine.n_features != X.shape[1]:
            engine = self._make_engine(X.shape[1])
        return engine, self._kernel_params(engine, self._get_parameters(), X.dtype)

    def _score(self, X, **outputs):
        engine, kp = self._scoring(X)
        if X.distributed:
            # lazy dask arrays, computed block-wise on the cluster
            return {key: _dask.score_lazy(engine, X, kp, key, outputs["dtype"])
                    if outputs.get(key) else None
                    for key in ("log_likelihood", "resp", "labels")}
        return engine.score(X, kp, **outputs)

    def _total_log_likelihood(self, X):
        engine, kp = self._scoring(X)
        return engine.total_log_likelihood(X, kp)

    # -- model size and criteria (select_model) ----------------------------------------------
    def _n_parameters(self):
        return cov.n_parameters(self._covtype, self.n_components, self.means_.shape[1])

    def _information_criteria(self, X):
        """Total log-likelihood, BIC and AIC of validated X from one pass."""
        return self._criteria(self._total_log_likelihood(X), X.total_weight)

    def _criteria(self, log_likelihood, n):
        """Total log-likelihood, BIC and AIC of a log-likelihood of n rows."""
        p = self._n_parameters()
        return {"log_likelihood": log_likelihood,
                "bic": -2 * log_likelihood + p * math.log(n),
                "aic": -2 * log_likelihood + 2 * p}

    # -- model files ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path``; ``fastem.load(path)`` reads it
        back exactly. The file is an ``.npz`` archive of plain arrays (no
        pickle: loading it cannot run code), versioned; see fastem/_io.py.
        Parameters a file cannot hold as plain data (a ``callback``, a
        RandomState ``random_state``) are saved as None."""
        from fastem import _io
        _io.save(self, path)

    # -- sampling ------------------------------------------------------------------------
    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component each sample was drawn from.
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples}. The sampling "
                "requires at least one sample."
            )
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        parts = self._covtype.sample(rng, self.means_, self.covariances_, counts)
        y = np.concatenate([np.full(int(n), k, dtype=np.int64)
                            for k, n in enumerate(counts)])
        return np.vstack(parts), y


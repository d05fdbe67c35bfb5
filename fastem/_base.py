"""The EM loop, mirroring scikit-learn's BaseMixture: template methods for
initialisation, the fused E-step/statistics pass and the M-step; best of
n_init; warm_start; ConvergenceWarning; a final E-step for labels."""
import warnings
from abc import ABCMeta, abstractmethod
from time import time

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data


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
    def _m_step(self, stats):
        """Parameter tuple from SuffStats."""

    @abstractmethod
    def _get_parameters(self):
        pass

    @abstractmethod
    def _set_parameters(self, params):
        pass

    @abstractmethod
    def _score(self, X, **outputs):
        """Per-row outputs for fitted parameters (see Engine.score)."""

    # -- validation ------------------------------------------------------------
    def _validate_fit_data(self, X):
        X = validate_data(self, X, dtype=self._accepted_dtypes(),
                          ensure_min_samples=2)
        if X.shape[0] < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components but got "
                f"n_components = {self.n_components}, n_samples = {X.shape[0]}"
            )
        return X

    def _validate_predict_data(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=self._accepted_dtypes())

    # -- fitting ----------------------------------------------------------------
    def fit(self, X, y=None):
        """Estimate model parameters with the EM algorithm.

        Fits ``n_init`` times and keeps the parameters with the largest lower
        bound. Each trial alternates E- and M-steps until the change of the
        lower bound is below ``tol`` or ``max_iter`` is reached (then a
        ConvergenceWarning is raised). With ``warm_start``, later calls
        continue from the current parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self : object
        """
        self._fit(X)
        return self

    def fit_predict(self, X, y=None):
        """Fit as ``fit`` does, then return the labels of X.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        X = self._fit(X)
        return self._score(X, labels=True)["labels"]

    def _fit(self, X):
        self._check_hyperparameters()
        X = self._validate_fit_data(X)
        self._check_parameters(X)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        n_samples = X.shape[0]
        max_lower_bound = -np.inf
        best_lower_bounds = []
        best_params, best_n_iter = None, 0
        self.converged_ = False
        random_state = check_random_state(self.random_state)

        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            params = (self._initialize_parameters(X, random_state) if do_init
                      else self._get_parameters())
            lower_bound = -np.inf if do_init else self.lower_bound_
            current_lower_bounds = []
            if self.max_iter == 0:
                best_params, best_n_iter = params, 0
                continue
            converged = False
            for n_iter in range(1, self.max_iter + 1):
                prev_lower_bound = lower_bound
                stats = self._e_step_stats(X, params)
                # the mean log-likelihood of the parameters *before*
                # this iteration's M-step, as scikit-learn reports it
                lower_bound = stats.log_likelihood / n_samples
                params = self._m_step(stats)
                current_lower_bounds.append(lower_bound)
                change = lower_bound - prev_lower_bound
                self._print_verbose_msg_iter_end(n_iter, change)
                if abs(change) < self.tol:
                    converged = True
                    break
            self._print_verbose_msg_init_end(lower_bound, converged)
            if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                max_lower_bound = lower_bound
                best_params, best_n_iter = params, n_iter
                best_lower_bounds = current_lower_bounds
                self.converged_ = converged

        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different "
                "init parameters, or increase max_iter, tol, or check for "
                "degenerate data.",
                ConvergenceWarning,
            )
        self._set_parameters(best_params)
        self.n_iter_ = best_n_iter
        self.lower_bound_ = max_lower_bound
        self.lower_bounds_ = best_lower_bounds
        return X

    # -- scoring ------------------------------------------------------------------
    def score_samples(self, X):
        """Log-likelihood of each sample under the model.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        X = self._validate_predict_data(X)
        return self._score(X, log_likelihood=True)["log_likelihood"]

    def score(self, X, y=None):
        """Mean log-likelihood per sample of X under the model."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X):
        """Label of the most probable component for each sample.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        X = self._validate_predict_data(X)
        return self._score(X, labels=True)["labels"]

    def predict_proba(self, X):
        """Posterior probability of each component for each sample.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        X = self._validate_predict_data(X)
        return self._score(X, resp=True)["resp"]

    # -- verbose output, as scikit-learn prints it ----------------------------------
    def _print_verbose_msg_init_beg(self, n_init):
        if self.verbose >= 1:
            print("Initialization %d" % n_init)
        if self.verbose >= 2:
            self._init_prev_time = time()
            self._iter_prev_time = self._init_prev_time

    def _print_verbose_msg_iter_end(self, n_iter, diff_ll):
        if n_iter % self.verbose_interval != 0:
            return
        if self.verbose == 1:
            print("  Iteration %d" % n_iter)
        elif self.verbose >= 2:
            cur_time = time()
            print("  Iteration %d\t time lapse %.5fs\t ll change %.5f"
                  % (n_iter, cur_time - self._iter_prev_time, diff_ll))
            self._iter_prev_time = cur_time

    def _print_verbose_msg_init_end(self, lb, converged):
        msg = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_prev_time
            print(f"Initialization {msg}. time lapse {t:.5f}s\t lower bound {lb:.5f}.")

"""Stepwise EM (partial_fit): online updates of running sufficient
statistics from mini-batches, for the maximum-likelihood mixture."""
from __future__ import annotations

from typing import Any

from sklearn.utils import check_random_state

from fastem._base import check_finite_statistics
from fastem._sources import releases_blocks


class StepwiseMixin:
    """partial_fit for a BaseMixture whose M-step re-estimates parameters
    from statistics normalised per row."""

    @releases_blocks
    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> StepwiseMixin:
        """One stepwise-EM update from a mini-batch of rows.

        The batch's sufficient statistics (per row, about the current means)
        are blended into running ones, s <- (1 - eta) s + eta s_batch with
        eta = (t + learning_offset) ** -learning_decay at the t-th update
        (Cappe & Moulines 2009; Liang & Klein 2009), and the parameters are
        re-estimated from s (the M-step, with reg_covar). The first call on
        an unfitted model initialises it from its batch as ``fit`` would
        (init_params, weights_init, means_init, precisions_init) and sets s
        to that batch's statistics; a model fitted by ``fit`` continues from
        its parameters the same way.

        ``n_iter_`` counts the updates and ``lower_bounds_`` holds each
        batch's mean log-likelihood under the parameters it was given
        (before its update); ``converged_`` stays False.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a streamed input
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            The rows' weights, as in ``fit``; the batch's statistics are
            then per unit of weight.

        Returns
        -------
        self : object
        """
        self._check_hyperparameters()
        fitted = hasattr(self, "converged_")
        self._step_reseeds = 0
        if fitted:
            X = self._validate_predict_data(X).with_weights(sample_weight)
            self._check_parameters(X)
            params = self._get_parameters()
        else:
            X = self._validate_fit_data(X).with_weights(sample_weight)
            self._check_parameters(X)
            self._reseed_warned = False
            params = self._initialize_parameters(X, check_random_state(self.random_state))
        batch = self._e_step_stats(X, params)
        check_finite_statistics(batch, X.dtype)
        batch = batch.per_row()
        running = getattr(self, "_stepwise_stats", None)
        step = getattr(self, "_stepwise_count", 0)
        if running is None:
            running, step = batch, 0
            self.lower_bounds_ = []
        else:
            eta = (step + self.learning_offset) ** -self.learning_decay
            running = running.blended(batch, eta)
        self._set_parameters(self._m_step(running))
        self._cast_fitted(X.dtype)
        self.n_reseeded_ = getattr(self, "n_reseeded_", 0) * fitted + self._step_reseeds
        self._stepwise_stats = running
        self._stepwise_count = step + 1
        self.lower_bound_ = X.dtype.type(batch.log_likelihood / X.total_weight)
        self.lower_bounds_ = list(self.lower_bounds_) + [self.lower_bound_]
        self.n_iter_ = self._stepwise_count
        self.converged_ = False
        self._report(None, self.n_iter_, self.lower_bound_, self._get_parameters(),
                     X.shape[0])
        return self

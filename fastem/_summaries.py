"""EM driven from outside: ``summarize`` (the E-step of some rows, as
sufficient statistics) and ``from_summaries`` (the M-step from statistics),
as pomegranate's pair, so that a user's own data loader can feed EM.

The statistics are fastem's shift-centred ones (fastem._covariance.SuffStats):
about the model's shifts, which stay the same until the parameters change,
so the statistics of any number of parts of the data add with ``+`` or
``sum``. One EM iteration over a loader is::

    stats = sum(fastem.summarize(chunk, gm) for chunk in loader)
    fastem.from_summaries(gm, stats)
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sklearn.utils import check_random_state

from fastem._covariance import SuffStats
from fastem._sources import RowSource, as_source

if TYPE_CHECKING:
    from fastem._gaussian_mixture import GaussianMixture


def _source(X: Any, model: GaussianMixture, fitted: bool) -> RowSource:
    """X as a RowSource with the model's features (set them if unfitted)."""
    source = as_source(X, model._accepted_dtypes(), model.block_bytes,
                       validate=lambda X: model._validated(X, reset=not fitted),
                       allow_nan=model._allow_nan())
    if source.streamed:
        if not fitted:
            model.n_features_in_ = source.n_features
        elif source.n_features != model.n_features_in_:
            raise ValueError(f"X has {source.n_features} features, but "
                             f"{type(model).__name__} is expecting "
                             f"{model.n_features_in_} features as input.")
    return source


def _check_maximum_likelihood(model, name):
    from fastem._gaussian_mixture import GaussianMixture
    if not isinstance(model, GaussianMixture):
        raise TypeError(
            f"{name} works with a GaussianMixture, got {type(model).__name__}: a "
            "Bayesian mixture's priors and lower bound come from all the rows at "
            "once; fit it on a streamed input (fastem.Streamed) instead")


def summarize(X: Any, model: GaussianMixture, sample_weight: Any = None) -> SuffStats:
    """The E-step of X under the model's parameters, as sufficient statistics.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), or any input ``fit`` takes
        Some rows of the data (a part from a loader, a file, a dask array).
    model : GaussianMixture
        Fitted (its ``weights_``, ``means_``, ``precisions_cholesky_``), or
        unfitted with all of ``weights_init``, ``means_init`` and
        ``precisions_init`` (then those are the parameters).
    sample_weight : array-like of shape (n_samples,), default=None
        The rows' weights, as ``fit`` takes them: then ``n_samples`` is
        their sum and every other statistic is weighted.

    Returns
    -------
    SuffStats
        About the model's shifts c_k: ``n_samples``, ``log_likelihood``
        (sum over the rows), ``nk`` (sum of responsibilities), ``s1``
        (sum r (x - c_k)), ``s2`` (second moments about c_k, shaped by
        covariance_type) and ``shift``. Statistics of other rows under the
        same parameters add with ``+`` and ``sum``.
    """
    _check_maximum_likelihood(model, "summarize")
    model._check_hyperparameters()
    fitted = hasattr(model, "means_")
    source = _source(X, model, fitted).with_weights(sample_weight)
    model._check_parameters(source)
    if fitted:
        params = model._get_parameters()
    elif (model._weights_init is None or model._means_init is None
          or model._precisions_init is None):
        raise ValueError(
            "summarize needs the model's parameters: fit it first (e.g. on a "
            "sample), or give weights_init, means_init and precisions_init"
        )
    else:
        # all three given: no data pass and no random numbers
        params = model._initialize_parameters(source, check_random_state(model.random_state))
    return model._e_step_stats(source, params)


def from_summaries(model: GaussianMixture,
                   stats: SuffStats | Iterable[SuffStats]) -> GaussianMixture:
    """The M-step: set the model's parameters from sufficient statistics.

    Parameters
    ----------
    model : GaussianMixture
    stats : SuffStats, or an iterable of them (summed)
        From :func:`summarize` of the data (or of its parts, added) under
        the model's current parameters.

    Returns
    -------
    model : GaussianMixture
        Updated in place: ``weights_``, ``means_``, ``covariances_``,
        ``precisions_``, ``precisions_cholesky_`` (with the model's
        ``reg_covar``); ``lower_bound_`` is the statistics' mean
        log-likelihood (that of the parameters before this update, as
        ``fit`` reports it), appended to ``lower_bounds_`` (a fitted
        model's history continues); ``n_iter_`` counts on. Repeating
        summarize over all the data and from_summaries follows ``fit``'s
        iterations from the same start.
    """
    if not isinstance(stats, SuffStats):
        stats = sum(stats)
    if not isinstance(stats, SuffStats) or not stats.n_samples > 0:
        raise ValueError("from_summaries needs the statistics of at least one row "
                         "(of positive weight)")
    _check_maximum_likelihood(model, "from_summaries")
    model._check_hyperparameters()
    if stats.covariance_type != model.covariance_type or \
            stats.s1.shape[0] != model.n_components:
        raise ValueError(
            f"statistics of a {stats.s1.shape[0]}-component {stats.covariance_type} "
            f"mixture cannot update a {model.n_components}-component "
            f"{model.covariance_type} one"
        )
    model._step_reseeds = 0
    model._set_parameters(model._m_step(stats))
    model.n_reseeded_ = getattr(model, "n_reseeded_", 0) + model._step_reseeds
    lower_bound = stats.log_likelihood / stats.n_samples
    model.lower_bounds_ = list(getattr(model, "lower_bounds_", [])) + [lower_bound]
    model.lower_bound_ = lower_bound
    model.n_iter_ = getattr(model, "n_iter_", 0) + 1
    model.n_features_in_ = stats.s1.shape[1]
    model.converged_ = False
    # a later partial_fit starts its running statistics afresh
    model._stepwise_stats, model._stepwise_count = None, 0
    return model

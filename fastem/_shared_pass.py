"""Several EM fits of the same data in shared passes (select_model on a
streamed input): every pass over the data reads each block once and runs
the E-step of every fit that is still iterating on it.

Each fit runs as its estimator's generator (BaseMixture._fit_steps), which
yields the passes it needs, (block function, arguments): its k-means
initialisation's and its EM iterations'. The passes of all the fits
waiting are made in one ``reduce`` of the source (block by block, or on a
cluster), each fit's sum added in the same order as alone, so each fit
ends exactly as it would on its own. What an initialisation reads beside
passes (k-means++'s sample of rows) is read per fit.
"""
from __future__ import annotations

import warnings

from sklearn.exceptions import ConvergenceWarning

from fastem._engine import StatsList


def fit_together(models, X, sample_weight=None, done=None):
    """Fit every model of ``models`` on X (and sample_weight); returns
    ({index: ValueError} of the fits that failed, the source the passes
    read or None). ``done(index)`` is called as each fit ends. A streamed
    X is validated once (a dask array persisted once), by the first model,
    and that source serves all."""
    errors, running, source = {}, {}, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, model in enumerate(models):
            try:
                if source is not None and source.streamed:
                    data = model._start_fit(source)  # weighted already
                else:
                    data = model._start_fit(X, sample_weight)
                steps = model._fit_steps(data)
                source = data if source is None else source
                running[i] = (steps, next(steps))
            except StopIteration:
                _finish(i, done)
            except ValueError as exc:
                errors[i] = exc
                _finish(i, done)
        while running:
            requests = [request for _, request in running.values()]
            stats = source.reduce(_block_requests, requests)
            for (i, (steps, _)), part in zip(list(running.items()), stats, strict=True):
                try:
                    running[i] = (steps, steps.send(part))
                except StopIteration:
                    del running[i]
                    _finish(i, done)
                except ValueError as exc:
                    del running[i]
                    errors[i] = exc
                    _finish(i, done)
    return errors, source


def _block_requests(block, requests, weights=None):
    """Every waiting fit's pass over one block."""
    return StatsList(fn(block, *args, weights=weights) for fn, args in requests)


def _finish(index, done):
    if done is not None:
        done(index)

"""Several EM fits of the same data in shared passes (select_model on a
streamed input): every pass over the data reads each block once and runs
the E-step of every fit that is still iterating on it.

Each fit runs as its estimator's generator (BaseMixture._fit_steps), which
yields the parameters it needs statistics for; the statistics of all the
fits waiting are gathered in one ``reduce`` of the source (block by block,
or on a cluster), added in the same order as a fit alone adds them, so each
fit ends exactly as it would on its own. Initialisation runs per fit.
"""
from __future__ import annotations

import warnings

from sklearn.exceptions import ConvergenceWarning

from fastem._engine import block_stats_many


def fit_together(models, X, sample_weight=None, done=None):
    """Fit every model of ``models`` on X (and sample_weight); returns
    {index: ValueError} of the fits that failed. ``done(index)`` is called
    as each fit ends. The passes run over the first model's view of X."""
    errors, running, source = {}, {}, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, model in enumerate(models):
            try:
                data = model._start_fit(X, sample_weight)
                steps = model._fit_steps(data)
                running[i] = (steps, next(steps))
                source = data if source is None else source
            except StopIteration:
                _finish(i, done)
            except ValueError as exc:
                errors[i] = exc
                _finish(i, done)
        while running:
            tasks = [models[i]._e_step_task(source, params)
                     for i, (_, params) in running.items()]
            stats = source.reduce(block_stats_many, tasks)
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
    return errors


def _finish(index, done):
    if done is not None:
        done(index)

"""Cross-validated model choice (select_model(criterion="cv")): each fold is a
set of rows given to the fits as weights, 0 on the held-out rows and 0 on
the training rows for the scoring, so no fold copies the data and streamed
or distributed inputs work as they are.
"""
from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, check_cv

from fastem._sources import as_source


def folds(cv, n_samples, random_state):
    """[(train indices, test indices)] of ``cv``: a number of shuffled
    folds (KFold with random_state), a scikit-learn splitter, or an
    iterable of (train, test) index pairs."""
    if isinstance(cv, Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds, got {cv}")
        splitter = KFold(int(cv), shuffle=True, random_state=random_state)
    else:
        splitter = check_cv(cv)
    # splitters look only at the number of rows (no groups nor labels here)
    placeholder = np.empty((n_samples, 0))
    result = [(np.asarray(train), np.asarray(test))
              for train, test in splitter.split(placeholder)]
    for train, test in result:
        if len(train) == 0 or len(test) == 0:
            raise ValueError("every fold needs training and held-out rows")
    return result


def base_weights(X, sample_weight):
    """The rows' weights as one float64 array (ones without sample_weight)."""
    source = as_source(X, lazy=True).with_weights(sample_weight)
    if source.weights is None:
        return np.ones(source.n_samples)
    return source.weights.rows(0, source.n_samples)


def cross_validate(make_model, X, fold_list, weights):
    """Fit ``make_model()`` on each fold's training rows and score it (the
    mean log-likelihood) on its held-out rows. Returns cv_mean, cv_std
    (ddof=0), n_iter (the folds' mean) and converged (all folds); a failed
    fold raises its ValueError."""
    scores, n_iters, converged = [], [], []
    for train, test in fold_list:
        train_weights = np.zeros_like(weights)
        train_weights[train] = weights[train]
        test_weights = np.zeros_like(weights)
        test_weights[test] = weights[test]
        model = make_model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, sample_weight=train_weights)
        scores.append(model.score(X, sample_weight=test_weights))
        n_iters.append(model.n_iter_)
        converged.append(bool(model.converged_))
    return {"cv_mean": float(np.mean(scores)), "cv_std": float(np.std(scores)),
            "n_iter": round(float(np.mean(n_iters))), "converged": all(converged)}

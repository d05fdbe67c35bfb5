"""Model selection over the number of components and the covariance type, in
the spirit of mclust's ``Mclust``: fit every candidate, tabulate BIC, AIC,
ICL and the log-likelihood, keep the best.

BIC, AIC and ICL follow scikit-learn's sign: lower is better.

    BIC = -2 log L + p log n
    AIC = -2 log L + 2 p
    ICL = BIC - 2 sum_n log max_k r_nk

CV is the held-out mean log-likelihood of each candidate over folds
(fastem/_cv.py): higher is better.

ICL (Biernacki, Celeux & Govaert 2000) adds to BIC twice the entropy of the
maximum-a-posteriori classification, so it prefers components that are well
separated: BIC counts density components, ICL counts clusters.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastem import _cv
from fastem._covariance import COVARIANCE_TYPES
from fastem._engine import StatsList, _block_log_likelihood
from fastem._shared_pass import fit_together
from fastem._sources import as_source

CRITERIA = ("bic", "aic", "icl", "cv")
_COLUMNS = ("n_components", "covariance_type", "log_likelihood", "bic", "aic", "icl",
            "cv_mean", "cv_std", "n_iter", "converged")

# rows per slice when summing over an in-memory array: bounds the
# (rows, K) responsibilities held at once
_SLICE_ROWS = 65536


def classification_log_likelihood(gm, X):
    """sum_n log max_k r_nk (<= 0), over X's rows in bounded memory; X as
    ``gm._validate_predict_data`` returns it (on a cluster for dask data)."""
    engine, kp = gm._scoring(X)
    return float(X.reduce(_block_classification_log_likelihood, engine, kp))


def _block_classification_log_likelihood(block, engine, kp, weights=None):
    total = 0.0
    for i in range(0, block.shape[0], _SLICE_ROWS):
        resp = engine.score(block[i:i + _SLICE_ROWS], kp, resp=True)["resp"]
        log_max = np.log(resp.max(axis=1))
        total += float(log_max.sum() if weights is None
                       else log_max @ weights[i:i + _SLICE_ROWS])
    return total


class ModelSelection:
    """The result of :func:`select_model`.

    Attributes
    ----------
    best_ : GaussianMixture or BayesianGaussianMixture
        The fitted candidate with the lowest criterion (the highest cv_mean).
    criterion : str
        "bic", "aic", "icl" or "cv".
    table : list of dict
        One row per candidate, in the order fitted: n_components,
        covariance_type, log_likelihood (mean per sample), bic, aic, icl,
        cv_mean and cv_std (criterion "cv": the held-out mean
        log-likelihood over the folds; then the other criteria are those of
        the winner only, refitted on all rows), n_iter, converged, and error
        (None, or why the fit failed; its criteria are then NaN).
    models_ : dict
        (n_components, covariance_type) -> fitted GaussianMixture (with
        criterion "cv", the winner's refit only).
    """

    def __init__(self, table, models, criterion):
        self.table = table
        self.models_ = models
        self.criterion = criterion
        scores = [best_first(row, criterion) for row in table]
        if all(math.isnan(s) for s in scores):
            raise ValueError("every candidate failed to fit: "
                             + "; ".join(f"K={r['n_components']} {r['covariance_type']}: "
                                         f"{r['error']}" for r in table))
        best = int(np.nanargmin(scores))
        self.best_index_ = best
        row = table[best]
        self.best_ = models[(row["n_components"], row["covariance_type"])]

    def to_dict(self):
        """A plain structure (lists, dicts, numbers, strings), e.g. for JSON."""
        return {"criterion": self.criterion, "best": dict(self.table[self.best_index_]),
                "table": [dict(row) for row in self.table]}

    def __str__(self):
        if self.criterion == "cv":
            return self._cv_table()
        header = (f"  {'K':>3}  {'covariance':<10}  {'loglik/n':>11}  {'BIC':>12}  "
                  f"{'AIC':>12}  {'ICL':>12}  {'n_iter':>6}  {'converged':>9}")
        lines = [header]
        for i, row in enumerate(self.table):
            mark = "*" if i == self.best_index_ else " "
            if row["error"] is not None:
                lines.append(f"{mark} {row['n_components']:>3}  "
                             f"{row['covariance_type']:<10}  failed: {row['error']}")
                continue
            lines.append(
                f"{mark} {row['n_components']:>3}  {row['covariance_type']:<10}  "
                f"{row['log_likelihood']:>11.5f}  {row['bic']:>12.3f}  "
                f"{row['aic']:>12.3f}  {row['icl']:>12.3f}  {row['n_iter']:>6d}  "
                f"{'yes' if row['converged'] else 'no':>9}")
        lines.append(f"* minimum {self.criterion.upper()}")
        return "\n".join(lines)

    def _cv_table(self):
        lines = [f"  {'K':>3}  {'covariance':<10}  {'cv_mean':>11}  {'cv_std':>9}  "
                 f"{'n_iter':>6}  {'converged':>9}"]
        for i, row in enumerate(self.table):
            mark = "*" if i == self.best_index_ else " "
            start = f"{mark} {row['n_components']:>3}  {row['covariance_type']:<10}  "
            if row["error"] is not None:
                lines.append(f"{start}failed: {row['error']}")
                continue
            lines.append(f"{start}{row['cv_mean']:>11.5f}  {row['cv_std']:>9.5f}  "
                         f"{row['n_iter']:>6d}  {'yes' if row['converged'] else 'no':>9}")
        lines.append("* maximum cv_mean: the held-out mean log-likelihood per row "
                     "(n_iter: the folds' mean)")
        return "\n".join(lines)

    __repr__ = __str__


def best_first(row, criterion):
    """The value select_model minimises: the criterion, or -cv_mean."""
    return -row["cv_mean"] if criterion == "cv" else row[criterion]


def select_model(X: Any, n_components: Iterable[int] = range(1, 10),
                 covariance_types: Iterable[str] = ("full", "tied", "diag", "spherical"),
                 criterion: str = "bic", progress: bool = False,
                 sample_weight: Any = None, cv: Any = 5, shared_pass: bool | None = None,
                 bayesian: bool = False, **params: Any) -> ModelSelection:
    """Fit a GaussianMixture (or BayesianGaussianMixture) for every number
    of components and covariance type, and keep the one with the lowest
    criterion (or, with criterion="cv", the highest held-out
    log-likelihood).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), or any input ``fit`` takes
        (a .npy path, memmap, HDF5/Zarr dataset, dask array, fastem.Streamed).
    n_components : iterable of int, default=range(1, 10)
    covariance_types : iterable of str, default all four
    criterion : {"bic", "aic", "icl", "cv"}, default="bic"
        "cv": each candidate is fitted on the training folds and scored
        (mean log-likelihood) on the held-out fold; the one with the
        highest mean over folds is refitted on all rows.
    progress : bool, default=False
        Show a progress bar over the candidates (needs tqdm).
    sample_weight : array-like of shape (n_samples,), default=None
        The rows' weights (as ``GaussianMixture.fit`` takes them): the fits
        and the criteria are weighted, with n the sum of the weights.
    cv : int, scikit-learn splitter or iterable of (train, test), default=5
        With criterion="cv": a number of folds, shuffled with
        ``random_state``, or any splitter (e.g. ``KFold(4, shuffle=True,
        random_state=7)``). A fold is given to the fits as zero weights on
        the other rows: the data are never copied, so streamed and dask
        inputs work alike.
    shared_pass : bool or None, default=None
        Fit the candidates together: each pass over the data reads every
        block once for all the candidates still iterating, instead of once
        per candidate (the results are the same to the last bit). None: on
        streamed and dask inputs, where reading is the cost.
    bayesian : bool, default=False
        The candidates are ``BayesianGaussianMixture``: n_components is then
        each candidate's largest number of components, and the criteria
        are of its ``score`` (the variational expected log-density),
        counting the parameters of all n_components (criterion="cv" needs
        no count).
    **params
        Passed to every candidate (random_state, n_init, tol, max_iter,
        reg_covar, n_threads, ...; with bayesian, its priors).

    Returns
    -------
    ModelSelection
        ``.best_`` is the chosen fitted model, ``.table`` the criteria of
        every candidate; ``print()`` it for a table.

    A candidate whose fit fails (a component collapsing) is kept in the
    table with its error; ConvergenceWarnings are not raised, the table's
    "converged" column says it.
    """
    estimator = _estimator(bayesian)
    criterion = str(criterion).lower()
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    ks = [int(k) for k in n_components]
    if not ks or min(ks) < 1:
        raise ValueError(f"n_components must be integers >= 1, got {list(n_components)}")
    types = list(covariance_types)
    unknown = [t for t in types if t not in COVARIANCE_TYPES]
    if unknown:
        raise ValueError(f"covariance_types must be among {COVARIANCE_TYPES}, "
                         f"got {unknown}")
    if criterion == "cv":
        weights = _cv.base_weights(X, sample_weight)
        fold_list = _cv.folds(cv, weights.size, params.get("random_state"))
    elif sample_weight is not None:
        # bad weights are the caller's error, not every candidate's failure
        as_source(X, lazy=True).with_weights(sample_weight)
    candidates = [(k, t) for t in types for k in ks]
    if shared_pass is None:
        shared_pass = as_source(X, lazy=True).streamed
    if shared_pass and criterion != "cv":
        return _select_together(X, candidates, criterion, progress, sample_weight,
                                estimator, params)
    iterator = candidates
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(candidates, desc="select_model", unit="model")
    table, models = [], {}
    for k, covariance_type in iterator:
        row = dict.fromkeys(_COLUMNS, float("nan"))
        row.update(n_components=k, covariance_type=covariance_type, error=None)

        def make(k=k, covariance_type=covariance_type):
            return estimator(n_components=k, covariance_type=covariance_type, **params)
        try:
            if criterion == "cv":
                row.update(_cv.cross_validate(make, X, fold_list, weights))
            else:
                gm = make()
                _fit_and_score(gm, X, sample_weight, row)
                models[(k, covariance_type)] = gm
        except ValueError as exc:
            row["error"] = " ".join(str(exc).split())
            row.update(n_iter=0, converged=False)
        table.append(row)
    if criterion == "cv":
        scores = [best_first(row, criterion) for row in table]
        if not all(math.isnan(s) for s in scores):
            # the winner, refitted on all rows, with its other criteria
            row = table[int(np.nanargmin(scores))]
            gm = estimator(n_components=row["n_components"],
                           covariance_type=row["covariance_type"], **params)
            cv_columns = {name: row[name] for name in ("cv_mean", "cv_std", "n_iter",
                                                       "converged")}
            _fit_and_score(gm, X, sample_weight, row)
            row.update(cv_columns)
            models[(row["n_components"], row["covariance_type"])] = gm
    return ModelSelection(table, models, criterion)


def _estimator(bayesian):
    if bayesian:
        from fastem._bayesian_mixture import BayesianGaussianMixture
        return BayesianGaussianMixture
    from fastem._gaussian_mixture import GaussianMixture
    return GaussianMixture


def _select_together(X, candidates, criterion, progress, sample_weight, estimator, params):
    """select_model's fits in shared passes (fastem/_shared_pass.py)."""
    models = [estimator(n_components=k, covariance_type=t, **params) for k, t in candidates]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(models), desc="select_model (shared passes)", unit="model")
    errors, source = fit_together(models, X, sample_weight,
                                  done=None if bar is None else lambda i: bar.update(1))
    if bar is not None:
        bar.close()
    ok = [i for i in range(len(models)) if i not in errors]
    # the criteria of all fitted candidates from one more pass
    data = None
    if ok:
        data = (source if source is not None and source.streamed
                else models[ok[0]]._validate_predict_data(X).with_weights(sample_weight))
    sums = data.reduce(_block_criteria, [models[i]._scoring(data) for i in ok]) if ok else []
    scores = dict(zip(ok, sums, strict=True))
    table, fitted = [], {}
    for i, ((k, covariance_type), gm) in enumerate(zip(candidates, models, strict=True)):
        row = dict.fromkeys(_COLUMNS, float("nan"))
        row.update(n_components=k, covariance_type=covariance_type, error=None)
        if i in errors:
            row.update(error=" ".join(str(errors[i]).split()), n_iter=0, converged=False)
        else:
            log_likelihood, classification = scores[i]
            _fill_row(gm, gm._criteria(log_likelihood, data.total_weight),
                      data.total_weight, classification, row)
            fitted[(k, covariance_type)] = gm
        table.append(row)
    return ModelSelection(table, fitted, criterion)


def _block_criteria(block, tasks, weights=None):
    """Each fitted candidate's log-likelihood and classification
    log-likelihood (ICL's) of one block, as the candidates alone sum them."""
    return StatsList(np.array([_block_log_likelihood(block, engine, kp, weights),
                               _block_classification_log_likelihood(block, engine, kp,
                                                                    weights)])
                     for engine, kp in tasks)


def _fit_and_score(gm, X, sample_weight, row):
    """Fit gm on X and put its log-likelihood, BIC, AIC, ICL, n_iter and
    convergence in the table row."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X, sample_weight=sample_weight)
    _score_row(gm, X, sample_weight, row)


def _score_row(gm, X, sample_weight, row):
    """A fitted gm's log-likelihood, BIC, AIC, ICL, n_iter and convergence
    in the table row."""
    # once: a dask array is persisted
    data = gm._validate_predict_data(X).with_weights(sample_weight)
    _fill_row(gm, gm._information_criteria(data), data.total_weight,
              classification_log_likelihood(gm, data), row)


def _fill_row(gm, crit, n, classification, row):
    row.update(log_likelihood=crit["log_likelihood"] / n, bic=crit["bic"], aic=crit["aic"],
               icl=crit["bic"] - 2 * classification,
               n_iter=int(gm.n_iter_), converged=bool(gm.converged_))

"""The checks a model file's values pass before they become a model.

A file that loads must give a model that answers as the fitted one did, so
each fitted value is checked as ``fit`` produces it: its type and shape,
and what fit guarantees of it (weights that sum to 1, upper-triangular
Cholesky factors with a positive diagonal, covariances that are the
inverses of the precisions, ...). The values are the file's arrays, before
load casts them.

Tolerances: fit forms every value in float64 and casts the fitted arrays
to float32 for float32 data, so the relations hold to a few roundings of
the saved dtype. The bounds below allow 16 roundings per term; real models
(both estimators, every covariance type, float32 and float64,
ill-conditioned and reseeded ones) all pass with a quarter of that.
"""
from __future__ import annotations

import numpy as np

from fastem import _covtypes

# roundings (units of the dtype's epsilon) allowed per term of a relation
_ROUNDINGS = 16


class _Invalid(ValueError):
    """A value a fitted model cannot have; the message names it."""


def check_model_values(data, params, estimator, path):
    """Raise a ValueError naming ``path`` and the problem unless ``data``
    (the file's arrays by name) and ``params`` (the constructor's scalar
    parameters) are a model that ``fit`` could have produced."""
    try:
        _check(data, params, estimator == "BayesianGaussianMixture")
    except _Invalid as exc:
        raise ValueError(f"fastem: {path}: {exc}") from None


def _check(data, params, bayesian):
    covtype = _covariance_type(params.get("covariance_type"))
    n_components = params.get("n_components")
    if not _is_int(n_components) or n_components < 1:
        raise _Invalid(f"n_components is {n_components!r}, expected an integer >= 1")
    n_features = _int_scalar(data, "n_features_in_", minimum=1)
    # load casts the fitted arrays and bounds to the dtype of means_: they
    # are checked as cast, so that a value the cast overflows is caught
    dtype = np.float32 if np.asarray(data["means_"]).dtype == np.float32 else np.float64
    _check_run(data, dtype)
    arrays = _fitted_arrays(data, covtype, n_components, n_features, dtype)
    _check_weights(arrays["weights_"])
    _check_cholesky(covtype, arrays["precisions_cholesky_"])
    _check_precisions(covtype, arrays["precisions_"], arrays["precisions_cholesky_"])
    _check_covariances(covtype, arrays["covariances_"], arrays["precisions_"])
    if bayesian:
        _check_bayesian(data, params, covtype, n_components, n_features)


def _covariance_type(name):
    try:
        return _covtypes.get(name)
    except ValueError:
        raise _Invalid(f"unknown covariance_type {name!r}") from None


# -- scalars -------------------------------------------------------------------------
def _is_int(value):
    # (a bool is an int to Python, but no count is a bool)
    return isinstance(value, int) and not isinstance(value, bool)


def _scalar(data, name, kinds, expected):
    """data[name] as the Python scalar it holds, if it is a 0-d array of
    one of the dtype kinds (np.dtype.kind: "b" bool, "i"/"u" integer, "f"
    floating); ``expected`` says what it should be."""
    value = np.asarray(data[name])
    if value.shape != () or value.dtype.kind not in kinds:
        raise _Invalid(f"{name} is {_describe(value)}, expected {expected}")
    return value.item()


def _describe(value):
    if value.shape == ():
        return f"{value.item()!r} ({value.dtype})"
    return f"an array of shape {value.shape} ({value.dtype})"


def _int_scalar(data, name, minimum):
    expected = f"an integer >= {minimum}"
    value = _scalar(data, name, "iu", expected)
    if value < minimum:
        raise _Invalid(f"{name} is {value}, expected {expected}")
    return value


def _check_run(data, dtype):
    """What fit reports of its run: converged_, n_iter_, the lower bounds."""
    _scalar(data, "converged_", "b", "a bool")
    n_iter = _int_scalar(data, "n_iter_", minimum=0)
    if "n_reseeded_" in data:  # (older files have no count)
        _int_scalar(data, "n_reseeded_", minimum=0)
    with np.errstate(over="ignore"):
        lower_bound = dtype(_scalar(data, "lower_bound_", "f", "a float"))
    # max_iter=0 runs no iteration and leaves the bound at -inf
    if not (np.isfinite(lower_bound) or (lower_bound == -np.inf and n_iter == 0)):
        raise _Invalid(f"lower_bound_ is {lower_bound}, expected a finite float")
    lower_bounds = _float_array("lower_bounds_", data, dtype)
    if lower_bounds.ndim != 1:
        raise _Invalid(f"lower_bounds_ has shape {lower_bounds.shape}, "
                       "expected one value per iteration")
    _check_finite("lower_bounds_", lower_bounds)


# -- the fitted arrays ----------------------------------------------------------------
def _float_array(name, data, dtype):
    """data[name], float32 or float64 as fit writes it, cast to dtype."""
    value = np.asarray(data[name])
    if value.dtype not in (np.float32, np.float64):
        raise _Invalid(f"{name} has dtype {value.dtype}, expected float32 or float64")
    with np.errstate(over="ignore"):
        return value.astype(dtype, copy=False)


def _fitted_arrays(data, covtype, n_components, n_features, dtype):
    """The fitted arrays by name, cast to dtype, each checked to be of its
    shape and finite."""
    K, D = n_components, n_features
    shape = covtype.shape(K, D)
    expected = {"weights_": (K,), "means_": (K, D), "covariances_": shape,
                "precisions_": shape, "precisions_cholesky_": shape}
    arrays = {}
    for name, want in expected.items():
        arrays[name] = value = _float_array(name, data, dtype)
        _check_shape(name, value, want)
        _check_finite(name, value)
    return arrays


def _check_shape(name, value, want):
    if np.shape(value) != want:
        raise _Invalid(f"{name} has shape {np.shape(value)}, expected {want}")


def _check_finite(name, value):
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.all(np.isfinite(value))
    if not finite:
        raise _Invalid(f"{name} is not finite")


def _eps(value):
    return np.finfo(value.dtype).eps


def _check_weights(weights):
    # the tolerance fit allows weights_init, which a model fitted with
    # max_iter=0 keeps; fitted weights sum to 1 within a rounding or two
    tolerance = 1e-6 if weights.dtype == np.float32 else 1e-8
    if np.any(weights < 0.0) or np.any(weights > 1.0):
        raise _Invalid(f"weights_ has entries outside [0, 1] (min {weights.min():g}, "
                       f"max {weights.max():g})")
    total = np.sum(weights, dtype=np.float64)
    if not abs(total - 1.0) <= tolerance:
        raise _Invalid(f"weights_ sum to {total:.10g}, expected 1")


def _is_matrix_type(covtype):
    """Whether the type holds D x D matrices (full, tied), not variances."""
    return covtype.name in ("full", "tied")


def _matrices(value):
    """A full or tied array as a stack of (D, D) matrices."""
    return value.reshape((-1,) + value.shape[-2:])


def _which(covtype, index):
    """Which component a failed check concerns, for the message."""
    return f" (component {index})" if covtype.per_component else ""


def _check_cholesky(covtype, prec_chol):
    """The factors fit computes: upper triangular with a positive diagonal
    (a positive log-determinant needs it; the kernels read only the upper
    triangle, so anything below it would go unseen), or positive."""
    if not _is_matrix_type(covtype):
        if np.any(prec_chol <= 0.0):
            raise _Invalid("precisions_cholesky_ has entries <= 0, expected positive ones")
        return
    for k, factor in enumerate(_matrices(prec_chol)):
        # fit's factors hold exact zeros below the diagonal
        if np.any(np.tril(factor, -1) != 0.0):
            raise _Invalid("precisions_cholesky_ is not upper triangular"
                           + _which(covtype, k))
        if np.any(np.diagonal(factor) <= 0.0):
            raise _Invalid("precisions_cholesky_ has a diagonal entry <= 0"
                           + _which(covtype, k))


def _check_precisions(covtype, precisions, prec_chol):
    """precisions_ is U U^T (full, tied) or U^2: each entry to within a few
    roundings of the products that form it, |U| |U|^T."""
    factor = prec_chol.astype(np.float64)
    formed = covtype.precisions_from_cholesky(factor)
    scale = covtype.precisions_from_cholesky(np.abs(factor))
    n_terms = prec_chol.shape[-1] if _is_matrix_type(covtype) else 1
    error = np.abs(precisions.astype(np.float64) - formed)
    bad = error > _ROUNDINGS * n_terms * _eps(precisions) * scale
    if np.any(bad):
        index = np.argwhere(bad)[0][0] if covtype.per_component else None
        raise _Invalid("precisions_ do not match precisions_cholesky_"
                       + _which(covtype, index))


def _check_covariances(covtype, covariances, precisions):
    """covariances_ are the inverses of precisions_. For matrices, the
    residual ||C P - I|| of an inverse grows with the condition number of
    C (a nearly constant feature makes it large), so it is measured
    against ||C|| ||P||, which bounds the condition number from above."""
    eps = max(_eps(covariances), _eps(precisions))
    C, P = covariances.astype(np.float64), precisions.astype(np.float64)
    if not _is_matrix_type(covtype):
        bad = np.abs(C * P - 1.0) > _ROUNDINGS * eps
        if np.any(bad):
            index = np.argwhere(bad)[0][0]
            raise _Invalid("covariances_ are not the inverses of precisions_"
                           + _which(covtype, index))
        return
    C, P = _matrices(C), _matrices(P)
    n_features = C.shape[-1]
    residual = np.linalg.norm(C @ P - np.eye(n_features), axis=(1, 2))
    scale = np.linalg.norm(C, axis=(1, 2)) * np.linalg.norm(P, axis=(1, 2))
    bad = np.flatnonzero(residual > _ROUNDINGS * n_features * eps * scale)
    if bad.size:
        raise _Invalid("covariances_ are not the inverses of precisions_"
                       + _which(covtype, bad[0]))


# -- the Bayesian mixture's own values ----------------------------------------------------
def _check_bayesian(data, params, covtype, n_components, n_features):
    from fastem._bayesian_mixture import PRIOR_TYPES

    K, D = n_components, n_features
    prior_type = params.get("weight_concentration_prior_type")
    if prior_type not in PRIOR_TYPES:
        raise _Invalid(f"unknown weight_concentration_prior_type {prior_type!r}")
    # name: (shape, the bound its entries exceed, or None)
    expected = {
        "mean_precision_": ((K,), 0.0),
        # a tied model's one Wishart factor has one number of degrees of freedom
        "degrees_of_freedom_": ((K,) if covtype.per_component else (), D - 1.0),
        # a Dirichlet process's pair of Beta parameters, stacked
        "weight_concentration_": ((2, K) if prior_type == "dirichlet_process" else (K,),
                                  0.0),
        "mean_prior_": ((D,), None),
        "covariance_prior_": (_one_component_shape(covtype, D), None),
        "weight_concentration_prior_": ((), 0.0),
        "mean_precision_prior_": ((), 0.0),
        "degrees_of_freedom_prior_": ((), D - 1.0),
    }
    for name, (shape, bound) in expected.items():
        value = np.asarray(data[name])
        # (any real number: a prior the user gave keeps its type, an
        # integer degrees_of_freedom_prior for one)
        if value.dtype.kind not in "iuf":
            raise _Invalid(f"{name} has dtype {value.dtype}, expected numbers")
        _check_shape(name, value, shape)
        _check_finite(name, value)
        if bound is not None and not np.all(value > bound):
            raise _Invalid(f"{name} has entries <= {bound:g}, expected them above it")
    _check_covariance_prior(covtype, np.asarray(data["covariance_prior_"]))


def _one_component_shape(covtype, n_features):
    """The shape of one component's covariance: (D, D), (D,) or ()."""
    shape = covtype.shape(1, n_features)
    return shape[1:] if covtype.per_component else shape


def _check_covariance_prior(covtype, prior):
    """A covariance matrix of the data, or its variances: symmetric with a
    non-negative diagonal, or non-negative. (Not definite: a constant
    feature has zero variance, and fit accepts it.)"""
    if not _is_matrix_type(covtype):
        if np.any(prior < 0.0):
            raise _Invalid("covariance_prior_ has a negative variance")
        return
    if np.any(np.diagonal(prior) < 0.0):
        raise _Invalid("covariance_prior_ has a negative variance on its diagonal")
    eps = _eps(prior) if prior.dtype.kind == "f" else 0.0
    if np.any(np.abs(prior - prior.T) > _ROUNDINGS * eps * np.max(np.abs(prior))):
        raise _Invalid("covariance_prior_ is not symmetric")

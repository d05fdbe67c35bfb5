"""Model files: a fitted GaussianMixture or BayesianGaussianMixture as an
``.npz`` archive that loads without pickle, so loading a file can never run
code.

Layout: every entry is a plain array.

    fastem_format          "fastem-gaussian-mixture"
    fastem_format_version  1 (GaussianMixture), 2 (BayesianGaussianMixture)
    fastem_version         the fastem that wrote it
    estimator              (version 2) the estimator's class name
    params_json            JSON of the constructor's scalar parameters
    param__<name>          each array-valued constructor parameter that is set
                           (weights_init, means_init, precisions_init;
                           mean_prior, covariance_prior)
    weights_, means_, covariances_, precisions_, precisions_cholesky_,
    lower_bounds_, converged_, n_iter_, lower_bound_, n_features_in_,
    n_reseeded_
                           (the fitted arrays and bounds float32 for a model
                           fitted on float32 data, as it returns them)
    mean_precision_, degrees_of_freedom_, weight_concentration_,
    mean_prior_, covariance_prior_, weight_concentration_prior_,
    mean_precision_prior_, degrees_of_freedom_prior_
                           (BayesianGaussianMixture; a Dirichlet process's
                           weight_concentration_ pair as one (2, K) array)

A parameter that JSON cannot hold is saved as None and so loads as None:
a ``callback`` (a function), a ``random_state`` that is a RandomState
instance. NumPy scalars are saved as the Python numbers they hold.
"""
from __future__ import annotations

import json
import os
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from fastem._atomic import atomic_write

if TYPE_CHECKING:
    from fastem._bayesian_mixture import BayesianGaussianMixture
    from fastem._gaussian_mixture import GaussianMixture

FORMAT = "fastem-gaussian-mixture"
FORMAT_VERSION = 2
# the format version of each estimator's files (older fastem read version 1)
_VERSIONS = {"GaussianMixture": 1, "BayesianGaussianMixture": 2}

_ARRAY_PARAMS = {"GaussianMixture": ("weights_init", "means_init", "precisions_init"),
                 "BayesianGaussianMixture": ("mean_prior", "covariance_prior")}
_FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_",
                  "precisions_cholesky_", "lower_bounds_")
_FITTED_SCALARS = ("converged_", "n_iter_", "lower_bound_", "n_features_in_")
# the Bayesian mixture's own fitted values, each kept in its own dtype
_BAYESIAN = ("mean_precision_", "degrees_of_freedom_", "weight_concentration_",
             "mean_prior_", "covariance_prior_", "weight_concentration_prior_",
             "mean_precision_prior_", "degrees_of_freedom_prior_")


def save(gm, path: str | os.PathLike) -> None:
    """Write a fitted GaussianMixture to ``path`` (see module doc): whole or
    not at all, an existing file at ``path`` being replaced only once the
    new one is complete on disk."""
    from sklearn.utils.validation import check_is_fitted

    import fastem

    check_is_fitted(gm)
    estimator = type(gm).__name__
    params = gm.get_params()
    scalars = {}
    arrays = {}
    for name, value in params.items():
        if name in _ARRAY_PARAMS[estimator]:
            if value is not None:
                arrays[f"param__{name}"] = np.asarray(value, dtype=np.float64)
            continue
        if name == "dtype" and value is not None:
            value = np.dtype(value).name
        scalars[name] = _json_value(value)
    for name in _FITTED_ARRAYS:
        # a model fitted on float32 data keeps its float32 arrays
        arrays[name] = np.asarray(getattr(gm, name), dtype=_fitted_dtype(gm.means_))
    for name in _FITTED_SCALARS:
        arrays[name] = np.asarray(getattr(gm, name))
    arrays["n_reseeded_"] = np.asarray(getattr(gm, "n_reseeded_", 0))
    if estimator == "BayesianGaussianMixture":
        arrays["estimator"] = np.asarray(estimator)
        for name in _BAYESIAN:
            # (a stick-breaking pair of arrays stacks into one)
            arrays[name] = np.asarray(getattr(gm, name))
    # a file object: np.savez adds no suffix; written beside path and renamed
    # over it, so that an existing model survives a failed save
    with atomic_write(path) as f:
        np.savez(f, fastem_format=np.asarray(FORMAT),
                 fastem_format_version=np.asarray(_VERSIONS[estimator]),
                 fastem_version=np.asarray(fastem.__version__),
                 params_json=np.asarray(json.dumps(scalars)), **arrays)


def _fitted_dtype(means):
    """float32 for a model fitted on float32 data, float64 otherwise."""
    return np.float32 if np.asarray(means).dtype == np.float32 else np.float64


def _json_value(value):
    """value as JSON holds it, or None if it cannot."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


def load(path: str | os.PathLike) -> GaussianMixture | BayesianGaussianMixture:
    """Read a model written by :func:`save`.

    Parameters that were not saved (see the module doc) are None.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not a fastem model, is truncated or corrupt, or was
        written by a newer fastem with a format this one does not know.
    """
    from fastem._bayesian_mixture import BayesianGaussianMixture
    from fastem._gaussian_mixture import GaussianMixture

    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"fastem: no such model file: {path}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"fastem: {path} is not a fastem model file "
                         f"(not a readable .npz archive: {exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"fastem: {path} is not a fastem model file (a bare array)")
    try:
        with archive:
            data = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"fastem: {path} is corrupt or truncated: {exc}") from None
    if data.get("fastem_format", np.asarray("")).item() != FORMAT:
        raise ValueError(f"fastem: {path} is not a fastem model file "
                         "(no fastem format marker)")
    version = int(data["fastem_format_version"])
    if version > FORMAT_VERSION:
        raise ValueError(
            f"fastem: {path} has model format version {version}, written by fastem "
            f"{data['fastem_version'].item()}; this fastem reads up to version "
            f"{FORMAT_VERSION}: upgrade fastem"
        )
    estimator = data["estimator"].item() if "estimator" in data else "GaussianMixture"
    classes = {"GaussianMixture": GaussianMixture,
               "BayesianGaussianMixture": BayesianGaussianMixture}
    if estimator not in classes:
        raise ValueError(f"fastem: {path} holds an unknown estimator {estimator!r}")
    bayesian = _BAYESIAN if estimator == "BayesianGaussianMixture" else ()
    missing = [name for name in ("params_json",) + _FITTED_ARRAYS + _FITTED_SCALARS
               + bayesian if name not in data]
    if missing:
        raise ValueError(f"fastem: {path} is incomplete: missing {', '.join(missing)}")
    try:
        params = json.loads(data["params_json"].item())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"fastem: {path} has unreadable parameters: {exc}") from None
    for name in _ARRAY_PARAMS[estimator]:
        params[name] = _plain(data.get(f"param__{name}"))
    gm = classes[estimator]()
    unknown = set(params) - set(gm.get_params())
    if unknown:
        raise ValueError(f"fastem: {path} has unknown parameters {sorted(unknown)}")
    gm.set_params(**params)
    dtype = _fitted_dtype(data["means_"])
    for name in _FITTED_ARRAYS:
        setattr(gm, name, np.array(data[name], dtype=dtype))
    gm.lower_bounds_ = list(gm.lower_bounds_)
    gm.converged_ = bool(data["converged_"])
    gm.n_iter_ = int(data["n_iter_"])
    gm.lower_bound_ = dtype(data["lower_bound_"])
    gm.n_features_in_ = int(data["n_features_in_"])
    # files written before collapse="reseed" have no count: nothing reseeded
    gm.n_reseeded_ = int(data.get("n_reseeded_", 0))
    for name in bayesian:
        setattr(gm, name, _plain(data[name]))
    if bayesian and gm.weight_concentration_prior_type == "dirichlet_process":
        gm.weight_concentration_ = tuple(gm.weight_concentration_)
    _check_model(gm, path)
    return gm


def _plain(value):
    """A 0-d array as the NumPy scalar it holds (a spherical covariance
    prior, a tied model's degrees of freedom); others as they are."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def _check_model(gm, path):
    from fastem import _covtypes

    K, D = gm.n_components, gm.n_features_in_
    try:
        shape = _covtypes.get(gm.covariance_type).shape(K, D)
    except ValueError:
        raise ValueError(
            f"fastem: {path}: unknown covariance_type {gm.covariance_type!r}") from None
    expected = {"weights_": (K,), "means_": (K, D), "covariances_": shape,
                "precisions_": shape, "precisions_cholesky_": shape}
    if hasattr(gm, "mean_precision_"):
        covtype = _covtypes.get(gm.covariance_type)
        expected.update(mean_precision_=(K,), mean_prior_=(D,),
                        degrees_of_freedom_=(K,) if covtype.per_component else (),
                        weight_concentration_=(
                            (2, K) if gm.weight_concentration_prior_type == "dirichlet_process"
                            else (K,)))
    for name, want in expected.items():
        got = np.shape(getattr(gm, name))
        if got != want:
            raise ValueError(f"fastem: {path}: {name} has shape {got}, expected {want}")
        if not np.all(np.isfinite(getattr(gm, name))):
            raise ValueError(f"fastem: {path}: {name} is not finite")

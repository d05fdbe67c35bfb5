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

Loading reads the zip directory and each member's .npy header before any
array, and refuses sizes that disagree or that add up to much more than the
file holds; then it refuses values no fit produces (fastem/_model_checks.py).

A parameter that JSON cannot hold is saved as None and so loads as None:
a ``callback`` (a function), a ``random_state`` that is a RandomState
instance. NumPy scalars are saved as the Python numbers they hold.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
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
        The file is not a fastem model, is truncated or corrupt, holds values
        no fit produces, or was written by a newer fastem with a format this
        one does not know.
    """
    from fastem._bayesian_mixture import BayesianGaussianMixture
    from fastem._gaussian_mixture import GaussianMixture
    from fastem._model_checks import check_model_values

    data = _read_archive(path)
    if _entry(data, "fastem_format") != FORMAT:
        raise ValueError(f"fastem: {path} is not a fastem model file "
                         "(no fastem format marker)")
    version = _entry(data, "fastem_format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"fastem: {path}: fastem_format_version is {version!r}, "
                         "expected an integer")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"fastem: {path} has model format version {version}, written by fastem "
            f"{_entry(data, 'fastem_version')}; this fastem reads up to version "
            f"{FORMAT_VERSION}: upgrade fastem"
        )
    estimator = _entry(data, "estimator") if "estimator" in data else "GaussianMixture"
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
    if not isinstance(params, dict):
        raise ValueError(f"fastem: {path} has unreadable parameters: not a JSON object")
    for name in _ARRAY_PARAMS[estimator]:
        params[name] = _plain(data.get(f"param__{name}"))
    gm = classes[estimator]()
    unknown = set(params) - set(gm.get_params())
    if unknown:
        raise ValueError(f"fastem: {path} has unknown parameters {sorted(unknown)}")
    check_model_values(data, params, estimator, path)
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
    return gm


def _entry(data, name):
    """The Python value of a 0-d entry (a marker, a version), or None if
    there is no such entry or it is not 0-d."""
    value = data.get(name)
    return value.item() if value is not None and value.shape == () else None


def _plain(value):
    """A 0-d array as the NumPy scalar it holds (a spherical covariance
    prior, a tied model's degrees of freedom); others as they are."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


# -- reading an archive --------------------------------------------------------------------
# How much more data than its own size on disk an archive may declare.
# np.savez stores members uncompressed, so a file fastem wrote declares less
# than its size; a compressed archive (np.savez_compressed) expands, but a
# model's arrays compress little. Declaring more is a zip bomb, or a zip
# directory that lies: refused before anything is read, so that no file
# makes load allocate much more memory than the file's own size.
_EXPANSION_ALLOWANCE = 256 * 2**20
# what a model file says of itself, after "not a fastem model file"
_WHAT_A_MODEL_IS = "a .npz archive written by fastem's save / fastem fit"
# what reading a broken archive or member raises (zlib.error: corrupt
# compressed data; RuntimeError: an encrypted member; NotImplementedError:
# an unknown compression method)
_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error,
                RuntimeError, NotImplementedError)


def _read_archive(path):
    """The arrays of the model file at path, by name. The zip directory and
    every member's .npy header are checked before any array is read: the
    sizes they declare must agree, and add up to little more than the file
    holds (see _EXPANSION_ALLOWANCE)."""
    try:
        with open(path, "rb") as file:
            return _read_zip(file, path)
    except FileNotFoundError:
        raise FileNotFoundError(f"fastem: no such model file: {path}") from None
    except OSError as exc:  # (a directory, no permission: nothing read yet)
        raise ValueError(f"fastem: cannot read model file {path}: {exc}") from None


def _read_zip(file, path):
    try:
        archive = zipfile.ZipFile(file)
    except _READ_ERRORS:
        raise ValueError(_not_an_archive(path, file)) from None
    with archive:
        members = archive.infolist()
        _check_directory(members, os.fstat(file.fileno()).st_size, path)
        try:
            headers = [_npy_header(archive, member) for member in members]
        except _READ_ERRORS as exc:
            raise ValueError(f"fastem: {path} is corrupt or truncated: {exc}") from None
        for member, header in zip(members, headers, strict=True):
            _check_header(member, *header, path)
        try:
            return {member.filename[:-len(".npy")]: _read_member(archive, member)
                    for member in members}
        except _READ_ERRORS as exc:
            raise ValueError(f"fastem: {path} is corrupt or truncated: {exc}") from None


def _not_an_archive(path, file):
    """Why a file that is no zip archive is not a model file."""
    file.seek(0)
    lead = file.read(6)
    if lead.startswith(b"PK"):  # a zip archive's signature, without its end
        return f"fastem: {path} is corrupt or truncated (an incomplete .npz archive)"
    what = "a .npy array, " if lead == b"\x93NUMPY" else ""
    return f"fastem: {path} is not a fastem model file ({what}{_WHAT_A_MODEL_IS})"


def _check_directory(members, file_size, path):
    """Every member a .npy array, declaring in all no more than the file holds."""
    for member in members:
        if not member.filename.endswith(".npy"):
            raise ValueError(f"fastem: {path} is not a fastem model file (it holds "
                             f"{member.filename!r}, not an array; {_WHAT_A_MODEL_IS})")
    declared = sum(member.file_size for member in members)
    if declared > file_size + _EXPANSION_ALLOWANCE:
        raise ValueError(f"fastem: {path} is corrupt or a zip bomb: its members declare "
                         f"{declared} bytes uncompressed, far more than its {file_size} "
                         "bytes hold")


def _npy_header(archive, member):
    """(shape, dtype, header size) of a .npy member, read from its header only."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:  # (3.0 is for field names NumPy cannot write in latin-1: never ours)
            raise ValueError(f"{member.filename} is a .npy array of format version "
                             f"{version}, which fastem does not write")
        return shape, dtype, f.tell()


def _check_header(member, shape, dtype, header_size, path):
    """A member's header declares no Python objects, and as many bytes as
    the zip directory says the member holds: numpy allocates what the
    header declares before reading any of it."""
    name = member.filename[:-len(".npy")]
    if dtype.hasobject:
        raise ValueError(f"fastem: {path} is corrupt: {name} holds Python objects, "
                         "which a model file never does")
    declared = math.prod(shape) * dtype.itemsize
    if header_size + declared != member.file_size:
        raise ValueError(f"fastem: {path} is corrupt: {name} declares shape {shape} of "
                         f"{dtype} ({declared} bytes) but holds "
                         f"{member.file_size - header_size} bytes")


def _read_member(archive, member):
    with archive.open(member) as f:
        return np.lib.format.read_array(f, allow_pickle=False)

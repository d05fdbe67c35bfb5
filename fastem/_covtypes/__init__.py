"""The covariance types, one module each, and the registry that names them.

The rest of the package asks ``get(covariance_type)`` and never compares
names. Adding a type on the Python side is one module with a
``CovarianceType`` subclass (its ``name``, ``chunk_extra_rows`` and the
methods the base class leaves open) and one entry in ``_REGISTRY``; its
kernels are found through ``_em.COV_TYPE_CODES[name]``.
"""
from __future__ import annotations

from fastem._covtypes._base import CovarianceType
from fastem._covtypes.diag import Diag
from fastem._covtypes.full import Full
from fastem._covtypes.spherical import Spherical
from fastem._covtypes.tied import Tied

# in the order scikit-learn lists them
_REGISTRY: dict[str, CovarianceType] = {
    t.name: t for t in (Full(), Tied(), Diag(), Spherical())
}

COVARIANCE_TYPES: tuple[str, ...] = tuple(_REGISTRY)


def get(covariance_type: str | CovarianceType) -> CovarianceType:
    """The covariance type of a ``covariance_type`` name (a type is returned as is).

    Raises
    ------
    ValueError
        For a name that is not one of COVARIANCE_TYPES.
    """
    if isinstance(covariance_type, CovarianceType):
        return covariance_type
    try:
        return _REGISTRY[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}"
        ) from None


__all__ = ["COVARIANCE_TYPES", "CovarianceType", "get"]

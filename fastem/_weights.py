"""Row weights (``sample_weight``): checked once, then read in the same row
ranges as the rows they weigh.

A row of weight w counts as w copies of the row. The weights of a source
(fastem/_sources.py) are a ``RowWeights``: for in-memory rows an array, for
streamed rows any input of the kinds the rows may be (a ``.npy`` path, an
``np.memmap``, an ``h5py.Dataset``, a ``zarr.Array``, a ``fastem.Streamed``
object, or an array), read by row range; for a dask array a dask array cut
in the rows' blocks. They enter the kernels with their rows: the fused pass
multiplies each row's responsibilities by its weight.
"""
from __future__ import annotations

import numpy as np

from fastem._sources import _is_dask_array, _is_dataset, _is_path, _is_plain_sliceable, _is_wrapped

# rows of weights checked at a time (8 MiB of float64)
_CHECK_ROWS = 1 << 20


class RowWeights:
    """Checked weights of n rows: finite, >= 0, not all zero.

    Attributes
    ----------
    n_samples : int
    total : float
        The sum of the weights (the number of rows they stand for).
    """

    def __init__(self, reader, n_samples, total):
        self._reader = reader
        self.n_samples = n_samples
        self.total = total

    def rows(self, start, stop):
        """The weights of rows start..stop: float64, C-contiguous, read-only
        for the caller (never written)."""
        return np.ascontiguousarray(self._reader(start, stop), dtype=np.float64)

    def take(self, indices):
        """The weights of rows at sorted ``indices``."""
        indices = np.asarray(indices, dtype=np.intp)
        out = np.empty(indices.size)
        for start in range(0, self.n_samples, _CHECK_ROWS):
            stop = min(start + _CHECK_ROWS, self.n_samples)
            lo, hi = np.searchsorted(indices, [start, stop])
            if hi > lo:
                out[lo:hi] = self.rows(start, stop)[indices[lo:hi] - start]
        return out


def _reader(sample_weight):
    """(read(start, stop), shape) of a weights input."""
    if _is_path(sample_weight):
        path = str(sample_weight)
        if not path.endswith(".npy"):
            raise ValueError(f"sample_weight: reads .npy files from a path, got {path!r}")
        from fastem._data import _NpyFile
        try:
            # positioned reads, each checking that the file is unchanged (a
            # mapping of a file truncated mid-fit would die of SIGBUS)
            file = _NpyFile(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"sample_weight: cannot read {path}: {exc}") from None
        return file.read, file.shape
    obj = sample_weight.obj if _is_wrapped(sample_weight) else sample_weight
    if isinstance(obj, np.ndarray) or _is_dataset(obj) or _is_plain_sliceable(obj):
        # arrays, memmaps and datasets are read a range at a time
        return (lambda a, b: obj[a:b]), tuple(obj.shape)
    array = np.asarray(obj)
    return (lambda a, b: array[a:b]), array.shape


def check_weights(sample_weight, n_samples):
    """A RowWeights for ``n_samples`` rows, read once to check them; a
    ValueError naming the problem for weights that are negative, NaN,
    infinite, all zero, or of the wrong shape or length."""
    if _is_dask_array(sample_weight):
        sample_weight = np.asarray(sample_weight.compute())
    read, shape = _reader(sample_weight)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 1:
        raise ValueError(f"sample_weight must be 1-dimensional of shape ({n_samples},), "
                         f"got shape {shape}")
    if shape[0] != n_samples:
        raise ValueError(f"sample_weight has {shape[0]} entries for {n_samples} rows "
                         f"of X; one weight per row is needed")
    total = 0.0
    for start in range(0, n_samples, _CHECK_ROWS):
        stop = min(start + _CHECK_ROWS, n_samples)
        part = np.asarray(read(start, stop))
        if part.dtype.kind not in "fiub":
            raise ValueError(f"sample_weight must be numbers, got dtype {part.dtype}")
        part = part.astype(np.float64, copy=False)
        _check_part(part, start)
        with np.errstate(over="ignore"):  # named below
            total += float(part.sum())
    if not total > 0.0:
        raise ValueError("sample_weight: all weights are zero; at least one row "
                         "must have a positive weight")
    if not np.isfinite(total):
        raise ValueError("sample_weight: the weights sum to infinity; rescale them "
                         "(scaling all weights by a constant changes nothing)")
    return RowWeights(read, n_samples, total)


def _check_part(part, start):
    bad = ~np.isfinite(part)
    if bad.any():
        row = start + int(np.argmax(bad))
        what = "NaN" if np.isnan(part[row - start]) else "infinity"
        raise ValueError(f"sample_weight contains {what} (first at row {row})")
    negative = part < 0
    if negative.any():
        row = start + int(np.argmax(negative))
        raise ValueError(f"sample_weight must be >= 0, got {part[row - start]:g} "
                         f"at row {row}")


def array_weights(array):
    """RowWeights of an array already checked (e.g. a block of checked weights)."""
    array = np.ascontiguousarray(array, dtype=np.float64)
    return RowWeights(lambda a, b: array[a:b], array.shape[0], float(array.sum()))

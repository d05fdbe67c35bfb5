"""HDF5 and Zarr datasets as streamed rows, checked against vanishing.

Neither library says when the data under a dataset are gone: HDF5 reads a
truncated file's missing extent as the dataset's fill value, and Zarr reads
a chunk that is not in its store (never written, or deleted) as the array's
fill value. A fit would take those zeros for data. So a dataset's rows are
read only while its file (HDF5) or store (Zarr) is the one found when the
fit began, and a Zarr array must have all its chunks; otherwise a
ValueError names the file and what changed.
"""
from __future__ import annotations

import os

import numpy as np


class DatasetRows:
    """Row slices of an h5py.Dataset or zarr.Array, with _NpyFile's
    interface (read, view, release, close, check_unchanged)."""

    def __init__(self, obj):
        self.obj = obj
        self.shape = obj.shape
        self.dtype = obj.dtype
        self.path = _backing_path(obj)
        self.name = self.path or type(obj).__name__
        self._zarr = type(obj).__module__.split(".")[0] == "zarr"
        self._identity = self._now()
        if self._zarr:
            self._check_chunks()

    def _now(self):
        """What tells the file or store changed: for an HDF5 file its device,
        inode, size and modification time; for a Zarr store on disk its
        directory's device and inode (chunks are checked one by one)."""
        if self.path is None:
            return None
        try:
            status = os.stat(self.path)
        except OSError:
            return "missing"
        if self._zarr:
            return status.st_dev, status.st_ino
        return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns

    def check_unchanged(self):
        now = self._now()
        if now != self._identity:
            what = "deleted" if now == "missing" else "changed (written to, truncated or replaced)"
            raise ValueError(
                f"fastem: {self.name} was {what} while it was being read; a fit needs "
                "its data to stay as they are: let the writer finish, or fit a copy")
        if self._zarr:
            self._check_chunks()

    def _check_chunks(self):
        stored, total = int(self.obj.nchunks_initialized), int(self.obj.nchunks)
        if stored < total:
            raise ValueError(
                f"fastem: {self.name}: {total - stored} of the Zarr array's {total} "
                "chunks are not in its store (never written, or deleted): Zarr would "
                f"read them as the fill value {np.asarray(self.obj.fill_value).item()!r}, "
                "not as data")

    def read(self, start, stop):
        rows = np.asarray(self.obj[start:stop])
        # after the read: a change since the fit began, or while these rows
        # were read, shows here (one check per block, one listing of a
        # Zarr store)
        self.check_unchanged()
        return rows

    view = read

    def release(self, start, stop):
        pass

    def close(self):
        pass


def is_dataset(obj) -> bool:
    module = type(obj).__module__.split(".")[0]
    return module in ("h5py", "zarr") and hasattr(obj, "shape")


def _backing_path(obj):
    """The HDF5 file's name, or the local directory of a Zarr store; None
    for data held elsewhere (in memory, remote stores)."""
    if type(obj).__module__.split(".")[0] == "h5py":
        filename = obj.file.filename
        return filename if filename and os.path.exists(filename) else None
    root = getattr(getattr(obj, "store", None), "root", None)
    if root is None:
        return None
    path = os.path.normpath(os.path.join(str(root), getattr(obj, "path", "") or ""))
    return path if os.path.isdir(path) else None

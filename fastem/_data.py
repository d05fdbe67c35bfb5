"""Data that need not be in memory: read row blocks from memmaps, ``.npy``
files, HDF5 and Zarr datasets, or any object with ``.shape``, ``.dtype`` and
row slicing, and hand them to the kernels one block at a time (a streamed
``RowSource``, see fastem/_sources.py).

A block is many kernel chunks, sized in bytes. While the kernels work on one
block (they release the GIL) a background thread reads the next, so at most
two blocks are held at once: memory stays O(block) whatever the number of
rows.

``.npy`` files (given by path, or as an ``np.memmap`` of a whole file) are
mapped, and the kernels read each block in place: the background thread
maps the next block's pages in (``MADV_POPULATE_READ``) and the pages of a
finished block are unmapped again (``MADV_DONTNEED``), so the process never
holds more than two blocks of the file however large it is. Copying the
blocks out with reads instead cost as much again as the EM pass on a file
in the page cache.
"""
from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fastem._missing import check_block
from fastem._sources import RowSource, as_source

# 64 MiB: large enough that a block is thousands of kernel chunks (the read
# and the per-block bookkeeping are amortised), small enough that two blocks
# in flight are a fraction of any machine's memory.
DEFAULT_BLOCK_BYTES = 64 * 2**20
# blocks of at least this many rows hold a whole number of them (fastem._lloyd.CHUNK)
_ROW_CHUNK = 256

# madvise advice to map a range's pages in (Linux >= 5.14); Python names it
# only from 3.13 on
_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)


def is_out_of_core(X) -> bool:
    """Whether X is streamed in blocks rather than used as one array."""
    return as_source(X, lazy=True).streamed


class _NpyFile:
    """Row slices of a ``.npy`` file: views on its mapping for streaming
    (view/release), copies by positioned reads otherwise.

    A file in Fortran order (``np.save`` of a transposed or column-major
    array, as ``df.to_numpy()`` often gives) stores each column's values
    together: rows start..stop are then one piece of every column, and a
    view on them is strided (the reader copies it into C order)."""

    def __init__(self, path, offset=None, shape=None, dtype=None, fortran=False):
        self.path = str(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"fastem: no such file: {self.path}")
        if offset is None:
            shape, dtype, offset, fortran = _read_npy_header(self.path)
        self.shape, self.dtype, self.offset = tuple(shape), np.dtype(dtype), offset
        # one row is contiguous in C order; in Fortran order only 2-D files
        # with several rows differ
        self.fortran = bool(fortran) and len(self.shape) == 2 and self.shape[0] > 1
        row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        self.row_bytes = row_bytes
        expected = offset + row_bytes * self.shape[0]
        status = os.stat(self.path)
        size = self.size = status.st_size
        if size < expected:
            raise ValueError(
                f"fastem: {self.path} is truncated: its header describes "
                f"{self.shape} {self.dtype} ({expected} bytes with the header) "
                f"but the file has {size} bytes"
            )
        # the file as it was found: checked again before every block
        self._identity = _identity(status)
        self._map = None
        self._populate = True

    def check_unchanged(self):
        """A ValueError naming the file if it was truncated, replaced or
        written to since it was opened: a mapping of a truncated file raises
        SIGBUS where it is read, and a changed file is no longer the data.
        Checked before each block is mapped; a truncation in the moments
        while the kernels read a block is beyond what a check can see."""
        try:
            now = _identity(os.stat(self.path))
        except FileNotFoundError:
            now = None
        if now == self._identity:
            return
        if now is None:
            what = "deleted"
        elif now[:2] != self._identity[:2]:
            what = "replaced by another file"
        elif now[2] < self._identity[2]:
            what = f"truncated from {self._identity[2]} to {now[2]} bytes"
        else:
            what = "written to"
        self.close()
        raise ValueError(
            f"fastem: {self.path} was {what} while it was being read; a fit needs "
            "its data to stay as they are: let the writer finish, or fit a copy"
        )

    def close(self):
        """Unmap the file (now, or when the last block on it is dropped)."""
        if self._map is not None:
            with contextlib.suppress(BufferError):  # blocks still held: at their end
                self._map.close()
            self._map = None

    # -- blocks in place ---------------------------------------------------------------
    def _byte_ranges(self, start, stop):
        """[(first byte, end)] of the file holding rows start..stop: one
        range in C order, one per column in Fortran order."""
        if not self.fortran:
            return [(self.offset + start * self.row_bytes, self.offset + stop * self.row_bytes)]
        item, n = self.dtype.itemsize, self.shape[0]
        return [(self.offset + (j * n + start) * item, self.offset + (j * n + stop) * item)
                for j in range(self.shape[1])]

    def _spans(self, start, stop):
        """Page-aligned (start, length) of the ranges holding rows start..stop."""
        page = mmap.PAGESIZE
        spans = []
        for first, end in self._byte_ranges(start, stop):
            lo = first // page * page
            hi = -(-end // page) * page
            spans.append((lo, min(hi, self.size) - lo))
        return spans

    def view(self, start, stop):
        """Rows start..stop as a read-only array on the file's mapping, its
        pages mapped in ahead of use where the system can."""
        self.check_unchanged()
        if self._map is None:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self._populate and stop > start:
            try:
                for span in self._spans(start, stop):
                    self._map.madvise(_MADV_POPULATE_READ, *span)
            except (OSError, AttributeError, ValueError):
                self._populate = False  # older kernels: pages fault in on use
        if self.fortran:
            whole = np.ndarray(self.shape, dtype=self.dtype, buffer=self._map,
                               offset=self.offset, order="F")
            return whole[start:stop]
        count = (stop - start) * (self.row_bytes // self.dtype.itemsize)
        return np.frombuffer(self._map, dtype=self.dtype, count=count,
                             offset=self.offset + start * self.row_bytes
                             ).reshape((stop - start,) + self.shape[1:])

    def release(self, start, stop):
        """Unmap the pages of rows start..stop (the file keeps them)."""
        if self._map is not None and stop > start:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                for span in self._spans(start, stop):
                    self._map.madvise(mmap.MADV_DONTNEED, *span)

    def read(self, start, stop):
        """Rows start..stop, copied out with positioned reads."""
        self.check_unchanged()
        shape = (stop - start,) + self.shape[1:]
        # the ranges' bytes one after another: the rows in C order, or each
        # column's piece in turn (the rows transposed) in Fortran order
        out = np.empty(shape[::-1] if self.fortran else shape, dtype=self.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))
        done = 0
        with open(self.path, "rb") as f:
            for position, end in self._byte_ranges(start, stop):
                while position < end:
                    n = os.preadv(f.fileno(), [view[done:done + end - position]], position)
                    if n <= 0:
                        raise ValueError(f"fastem: {self.path} ended early (truncated file)")
                    done += n
                    position += n
        return out.T if self.fortran else out


class _Sliced:
    """Row slices of any object with shape, dtype and ``obj[i:j]``, with the
    interface of _NpyFile."""

    def __init__(self, obj):
        self.obj = obj
        self.shape = obj.shape
        self.dtype = obj.dtype

    def read(self, start, stop):
        return np.asarray(self.obj[start:stop])

    view = read

    def release(self, start, stop):
        pass

    def check_unchanged(self):
        pass

    def close(self):
        pass


_passes = itertools.count()


def _join_threads(prefix):
    """Wait for the threads named ``prefix...``. A Ctrl-C that lands inside
    the pool's Thread.start() leaves a thread that the pool does not know
    of, so does not wait for: it reads its one block and ends."""
    for thread in threading.enumerate():
        if thread.name.startswith(prefix + "_"):
            while True:
                try:
                    thread.join()
                    break
                except RuntimeError:  # started, not yet running
                    time.sleep(1e-3)


def _identity(status):
    """What tells a file's contents changed: device, inode, size, mtime."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _read_npy_header(path):
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"fastem: {path} is not a readable .npy file: {exc}") from None
    if dtype.hasobject:
        raise ValueError(f"fastem: {path} holds Python objects, not numbers")
    return shape, dtype, offset, fortran


def _memmap_file(X):
    """An _NpyFile reading the file a memmap maps, for a whole C-ordered
    region, when that is provably the file now at ``X.filename``; else None,
    and the blocks are read from the user's mapping itself.

    Provably: the mapping is shared (a copy-on-write memmap, mode "c", holds
    edits no one else sees) and its pages belong to the inode at the name
    (a file replaced, renamed or deleted since it was mapped is still what
    the memmap shows, but no longer what its name opens)."""
    if not (isinstance(X.base, mmap.mmap) and X.flags.c_contiguous
            and getattr(X, "filename", None)) or getattr(X, "mode", "c") == "c":
        return None
    try:
        named = os.stat(X.filename)
    except OSError:
        return None
    if _mapped_file_id(X.ctypes.data) != (named.st_dev, named.st_ino):
        return None
    return _NpyFile(X.filename, offset=X.offset, shape=X.shape, dtype=X.dtype)


def _mapped_file_id(address):
    """(device, inode) of the file mapped at ``address`` in this process
    (Linux's /proc/self/maps), or None where that cannot be told."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                low, high = (int(x, 16) for x in fields[0].split("-"))
                if low <= address < high:
                    major, minor = (int(x, 16) for x in fields[3].split(":"))
                    return os.makedev(major, minor), int(fields[4])
    except (OSError, ValueError, IndexError):
        pass
    return None


class BlockReader(RowSource):
    """Validated float blocks of rows of a large 2-D input: a streamed source.

    Parameters
    ----------
    source : _NpyFile or _Sliced
        Rows by ``read(start, stop)``, ``view(start, stop)`` (valid until
        ``release(start, stop)``), with ``shape`` and ``dtype``.
    name : str
        How errors name the input.
    dtypes : list of numpy types or a numpy type
        Accepted float types (the first is used for other numeric inputs).
    block_bytes : int
    """

    streamed = True

    def __init__(self, source, name, dtypes, block_bytes=None):
        self.source = source
        self.name = name
        shape = tuple(int(s) for s in source.shape)
        if len(shape) != 2:
            raise ValueError(
                f"Expected a 2-dimensional input, got {name} of shape {shape}. "
                "Reshape your data with X.reshape(-1, 1) for a single feature "
                "or X.reshape(1, -1) for a single sample."
            )
        self.shape = shape
        self.n_samples, self.n_features = shape
        if self.n_features == 0:
            raise ValueError(f"0 feature(s) (shape={shape}) while a minimum of 1 "
                             "is required.")
        in_dtype = np.dtype(source.dtype)
        if in_dtype.kind not in "fiub":
            raise ValueError(f"fastem: {name} has dtype {in_dtype}; numbers are needed")
        dtypes = list(dtypes) if isinstance(dtypes, (list, tuple)) else [dtypes]
        dtypes = [np.dtype(d) for d in dtypes]
        self.dtype = in_dtype if in_dtype in dtypes else dtypes[0]
        block_bytes = int(block_bytes or DEFAULT_BLOCK_BYTES)
        row_bytes = max(in_dtype.itemsize, self.dtype.itemsize) * max(self.n_features, 1)
        self.block_rows = max(1, block_bytes // row_bytes)
        if self.block_rows >= _ROW_CHUNK:
            # whole k-means chunks per block: its GEMMs then see scikit-learn's
            # chunks of rows (fastem/_lloyd.py)
            self.block_rows -= self.block_rows % _ROW_CHUNK
        self._checked = set()

    def rows(self, start, stop):
        return self.read(start, stop)

    def read(self, start, stop, in_place=False):
        """Rows start..stop as a validated C-contiguous array of self.dtype.
        ``in_place``: a view on the file's mapping where the source is a
        .npy file of that dtype (valid until released)."""
        if in_place and self.source.dtype == self.dtype:
            block = self.source.view(start, stop)
        else:
            block = self.source.read(start, stop)
        if block.shape != (stop - start, self.n_features):
            raise ValueError(
                f"fastem: {self.name}[{start}:{stop}] gave shape {block.shape}, "
                f"expected {(stop - start, self.n_features)}"
            )
        block = np.ascontiguousarray(block, dtype=self.dtype)
        # each block is checked once per reader (one fit or one call): the
        # later passes of a fit read the same rows
        if (start, stop) not in self._checked:
            self._check_finite(block, start)
            self._checked.add((start, stop))
        return block

    allow_nan = False

    def allowing_nan(self, allow_nan):
        """This reader, with NaN read as gaps (missing="em") if allow_nan."""
        self.allow_nan = bool(allow_nan)
        return self

    def _check_finite(self, block, start):
        if self.allow_nan:
            check_block(block, start, self.name)
            return
        # sum first: one cheap reduction, no boolean temporary, in the
        # common case that everything is finite
        if block.size and not np.isfinite(block.sum(dtype=np.float64)):
            bad = ~np.isfinite(block)
            if bad.any():
                row = start + int(np.nonzero(bad.any(axis=1))[0][0])
                what = "NaN" if np.isnan(block[bad]).any() else "infinity"
                raise ValueError(f"Input {self.name} contains {what} (first at row {row}).")

    def ranges(self):
        step = self.block_rows
        return [(a, min(a + step, self.n_samples)) for a in range(0, self.n_samples, step)]

    def blocks(self):
        """Yield (start, stop, block) over all rows; the next block is read in
        a background thread while the caller works on the current one. A
        block is valid until the caller asks for the next."""
        ranges = self.ranges()
        if not ranges:
            return
        release = self.source.release
        # an interrupt (Ctrl-C) or error in the caller ends the pass here:
        # the reader thread finishes its one block and stops, and the file
        # is unmapped, so nothing of the pass outlives it
        name = f"fastem-reader-{next(_passes)}"
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
                pending = pool.submit(self.read, *ranges[0], True)
                for i, (start, stop) in enumerate(ranges):
                    block = pending.result()
                    if i + 1 < len(ranges):
                        pending = pool.submit(self.read, *ranges[i + 1], True)
                    yield start, stop, block
                    del block
                    release(start, stop)
            # the rows of the pass's last block were checked before they were
            # read: a file written to while the kernels read them is told here,
            # before its values reach an M-step
            self.source.check_unchanged()
        finally:
            _join_threads(name)
            self.source.close()

    def take(self, indices):
        """Rows at sorted, unique ``indices``, in one streamed pass."""
        indices = np.asarray(indices, dtype=np.intp)
        out = np.empty((len(indices), self.n_features), dtype=self.dtype)
        done = 0
        for start, stop in self.ranges():
            lo = np.searchsorted(indices, start)
            hi = np.searchsorted(indices, stop)
            if hi > lo:
                out[done:done + hi - lo] = self.read(start, stop)[indices[lo:hi] - start]
                done += hi - lo
        return out


def as_reader(X, dtypes, block_bytes=None):
    """A BlockReader for an out-of-core input (see is_out_of_core)."""
    return as_source(X, dtypes, block_bytes)


def npy_reader(path, dtypes, block_bytes=None):
    """A BlockReader of a ``.npy`` file given by path (str, bytes or
    os.PathLike; the suffix in any case)."""
    path = Path(os.fsdecode(path))
    if path.suffix.lower() != ".npy":
        raise ValueError(
            f"fastem: reads .npy files from a path, got {str(path)!r}; open "
            "other formats yourself and pass the dataset (h5py.Dataset, "
            "zarr.Array) or an np.memmap"
        )
    return BlockReader(_NpyFile(path), str(path), dtypes, block_bytes)


def memmap_reader(X, dtypes, block_bytes=None):
    """A BlockReader of an np.memmap: read in place when it maps a whole
    C-ordered file region."""
    source = _memmap_file(X)
    return BlockReader(_Sliced(X) if source is None else source, "memmap", dtypes,
                       block_bytes)


def sliced_reader(obj, name, dtypes, block_bytes=None):
    """A BlockReader of any object with shape, dtype and row slicing."""
    return BlockReader(_Sliced(obj), name, dtypes, block_bytes)


# Builders of fastem._sources.SOURCE_KINDS: (X, dtypes, block_bytes, lazy,
# persist); lazy and persist concern dask arrays only
def wrapped_source(X, dtypes, block_bytes, lazy, persist, allow_nan=False):
    from fastem._datasets import is_dataset
    if is_dataset(X.obj):
        return dataset_source(X.obj, dtypes, block_bytes, lazy, persist, allow_nan)
    return sliced_reader(X.obj, X.name, dtypes, block_bytes).allowing_nan(allow_nan)


def dataset_source(X, dtypes, block_bytes, lazy, persist, allow_nan=False):
    """An HDF5 or Zarr dataset, read while its file or store stays as it was
    (fastem/_datasets.py)."""
    from fastem._datasets import DatasetRows
    rows = DatasetRows(X)
    return BlockReader(rows, rows.name, dtypes, block_bytes).allowing_nan(allow_nan)


def npy_source(X, dtypes, block_bytes, lazy, persist, allow_nan=False):
    return npy_reader(X, dtypes, block_bytes).allowing_nan(allow_nan)


def memmap_source(X, dtypes, block_bytes, lazy, persist, allow_nan=False):
    return memmap_reader(X, dtypes, block_bytes).allowing_nan(allow_nan)


def sliced_source(X, dtypes, block_bytes, lazy, persist, allow_nan=False):
    return sliced_reader(X, type(X).__name__, dtypes, block_bytes).allowing_nan(allow_nan)

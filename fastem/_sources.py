"""One interface for the data the estimator reads: a ``RowSource``.

A source has a row count, a feature count and a dtype, yields its rows in
ordered blocks, sums a function of its blocks in a fixed order (``reduce``)
and gathers sorted rows (``take``). An in-memory array is one block; a
streamed input (fastem._data.BlockReader) is read block by block; a dask
array (fastem._dask.DaskData) runs ``reduce`` on its workers. The rest of
the package asks a source these questions and never looks at its type:
:func:`as_source` alone decides from the input which source to build.
"""
from __future__ import annotations

import copy
import functools
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import closing
from contextvars import ContextVar
from typing import Any

import numpy as np

from fastem._fork_guard import usable_threads

# Set while a task runs on a distributed worker: a function returning that
# task's share of the worker's threads (see fastem._dask).
_TASK_THREADS: ContextVar[Callable[[], int | None] | None] = ContextVar(
    "fastem_task_threads", default=None)


class RowSource:
    """Rows of a 2-D dataset, read in ordered blocks.

    Attributes
    ----------
    n_samples, n_features : int
    shape : tuple of int
    dtype : numpy.dtype
        The float type the kernels get the rows in.
    streamed : bool
        The rows are read in parts (initialisation then works on a sample).
    distributed : bool
        ``reduce`` runs on a cluster, and per-row outputs are lazy dask arrays.
    weights : fastem._weights.RowWeights or None
        The rows' weights (``sample_weight``), read in the same ranges as
        the rows; None: every row weighs 1.
    """

    streamed = False
    distributed = False
    weights = None
    n_samples: int
    n_features: int
    shape: tuple[int, int]
    dtype: np.dtype

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield (start, stop, rows) over all rows, in row order. A block is
        valid until the next is asked for. Iterate inside
        ``with closing(source.blocks()) as blocks`` so that an error or
        Ctrl-C in the loop ends the pass's reading at once (not when the
        traceback is freed)."""
        raise NotImplementedError

    def reduce(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The sum of ``fn(block, *args)`` over the blocks, added with ``+``
        in block order; for weighted rows ``fn(block, *args, weights=w)``
        with w the block's weights."""
        total = None
        with closing(self.blocks()) as blocks:
            for start, stop, block in blocks:
                part = fn(block, *args, **self.block_weights(start, stop))
                total = part if total is None else total + part
        return total

    def block_weights(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """``{"weights": the weights of rows start..stop}``, or {} for
        unweighted rows: the keyword arguments a block function gets."""
        if self.weights is None:
            return {}
        return {"weights": self.weights.rows(start, stop)}

    @property
    def total_weight(self) -> float:
        """The number of rows the rows stand for: n_samples, or the sum of
        the weights."""
        return self.n_samples if self.weights is None else self.weights.total

    def with_weights(self, sample_weight: Any) -> RowSource:
        """The same rows weighted by ``sample_weight`` (checked: a
        ValueError names what is wrong); None: self."""
        if sample_weight is None:
            return self
        from fastem._weights import check_weights
        weighted = copy.copy(self)
        weighted.weights = check_weights(sample_weight, self.n_samples)
        return weighted

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop as an array."""
        raise NotImplementedError

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Rows at sorted, distinct ``indices``."""
        raise NotImplementedError


class ArraySource(RowSource):
    """An in-memory array: one block."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = tuple(array.shape)
        self.n_samples = self.shape[0]
        self.n_features = self.shape[1] if len(self.shape) > 1 else 1
        self.dtype = array.dtype

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        yield 0, self.n_samples, self.array

    def reduce(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self.array, *args, **self.block_weights(0, self.n_samples))

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self.array[start:stop]

    def take(self, indices: np.ndarray) -> np.ndarray:
        return self.array[np.asarray(indices)]


class Streamed:
    """Mark an object to be streamed in row blocks rather than loaded.

    Any object with ``.shape`` (two dimensions), ``.dtype`` and row slicing
    ``obj[i:j]`` (returning something ``np.asarray`` takes) can be wrapped,
    e.g. a table of a database or a custom reader over many files. The
    estimator then reads it ``block_bytes`` at a time, as it reads an
    ``np.memmap`` or an ``h5py.Dataset``.

    Parameters
    ----------
    obj : object with ``shape``, ``dtype`` and ``__getitem__``
    name : str, optional
        How error messages name the input (default: its type's name).

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianMixture, Streamed
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> gm = GaussianMixture(2, random_state=0).fit(Streamed(X))
    >>> gm.means_.shape
    (2, 2)
    """

    def __init__(self, obj: Any, name: str | None = None) -> None:
        missing = [a for a in ("shape", "dtype", "__getitem__") if not hasattr(obj, a)]
        if missing:
            raise TypeError(f"fastem.Streamed needs an object with shape, dtype and row "
                            f"slicing; {type(obj).__name__} has no {', '.join(missing)}")
        self.obj = obj
        self.name = name or type(obj).__name__


# Any of these makes an object an in-memory array that np.asarray converts
_ARRAY_PROTOCOLS = ("__array__", "__array_interface__", "__array_namespace__", "__dlpack__")


def _is_instance_of(X: Any, module: str, name: str) -> bool:
    """isinstance(X, module.name), without importing a module not yet loaded
    (then X cannot be one of its objects)."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(cls, type) and isinstance(X, cls)


def _is_wrapped(X: Any) -> bool:
    return isinstance(X, Streamed)


def _is_path(X: Any) -> bool:
    # (bytes too: the operating system's own spelling of a file name)
    return isinstance(X, (str, bytes, os.PathLike))


def _is_memmap(X: Any) -> bool:
    return isinstance(X, np.memmap)


def _is_dask_array(X: Any) -> bool:
    return type(X).__module__.split(".")[:2] == ["dask", "array"] and hasattr(X, "chunks")


def _is_dataset(X: Any) -> bool:
    return _is_instance_of(X, "h5py", "Dataset") or _is_instance_of(X, "zarr", "Array")


def _is_plain_sliceable(X: Any) -> bool:
    # kept for older code: shape, dtype and slicing, and no way to be an
    # array (those are converted as scikit-learn converts them)
    return (not isinstance(X, (np.ndarray, list, tuple))
            and all(hasattr(X, a) for a in ("shape", "dtype", "__getitem__"))
            and not any(hasattr(X, a) for a in _ARRAY_PROTOCOLS)
            and not _is_instance_of(X, "scipy.sparse", "sparray")
            and not _is_instance_of(X, "scipy.sparse", "spmatrix"))


# The kinds of input that are not converted in memory, tried in order: the
# first whose test accepts X builds its source with
# ``build(X, dtypes, block_bytes, lazy, persist)`` (see as_source; with
# allow_nan=True added for data with gaps, missing="em"), a callable or
# "module:function" (so that a kind's module and its optional library load
# only when used).
# A new kind of source is its module and one line here.
SOURCE_KINDS: list[tuple[str, Callable[[Any], bool], str | Callable[..., RowSource]]] = [
    ("wrapped", _is_wrapped, "fastem._data:wrapped_source"),
    ("npy path", _is_path, "fastem._data:npy_source"),
    ("memmap", _is_memmap, "fastem._data:memmap_source"),
    ("dask array", _is_dask_array, "fastem._dask:dask_source"),
    ("HDF5 or Zarr dataset", _is_dataset, "fastem._data:dataset_source"),
    ("sliceable", _is_plain_sliceable, "fastem._data:sliced_source"),
]


def _builder(spec: str | Callable[..., RowSource]) -> Callable[..., RowSource]:
    if callable(spec):
        return spec
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def as_source(X: Any, dtypes: Any = None, block_bytes: int | None = None, *,
              validate: Callable[[Any], np.ndarray] | None = None,
              lazy: bool = False, persist: bool | None = None,
              allow_nan: bool = False) -> RowSource:
    """The RowSource for an input: the one place that looks at its type.

    Streamed: a path to a ``.npy`` file, an ``np.memmap``, an
    ``h5py.Dataset``, a ``zarr.Array``, an object wrapped in
    :class:`Streamed`, and (kept for older code) any other object with
    ``shape``, ``dtype`` and ``__getitem__`` that is not an array-like.
    Distributed: a ``dask.array.Array``. Everything else is converted in
    memory by ``validate`` (the estimator passes scikit-learn's
    ``validate_data``; default ``np.asarray``). The kinds are listed in
    ``SOURCE_KINDS``.

    Parameters
    ----------
    X : input data, or a RowSource (returned as it is)
    dtypes : numpy type or list of them
        Accepted float types of streamed and distributed inputs (the first
        for other numeric inputs).
    block_bytes : int, optional
        Block size of streamed inputs.
    validate : callable, optional
        Converts an in-memory input to a validated array.
    lazy : bool
        A dask array is kept lazy (for per-row outputs) instead of being
        persisted and checked.
    persist : bool or None
        Unless lazy, whether a dask array is persisted for the passes of a
        fit (None: when it fits in memory, see fastem._dask.DaskData).
    allow_nan : bool
        NaN in streamed and distributed inputs marks a gap (missing="em"),
        checked as fastem._missing.check_block does; infinity is an error.
    """
    if isinstance(X, RowSource):
        return X
    dtypes = [np.float64, np.float32] if dtypes is None else dtypes
    for _, matches, build in SOURCE_KINDS:
        if matches(X):
            # allow_nan only when asked: a builder for data without gaps
            # needs no such argument
            extra = {"allow_nan": True} if allow_nan else {}
            return _builder(build)(X, dtypes, block_bytes, lazy, persist, **extra)
    return ArraySource(np.asarray(X) if validate is None else validate(X))


def releases_blocks(method: Callable[..., Any]) -> Callable[..., Any]:
    """A public method that, when it ends in an exception (Ctrl-C
    included), drops the local variables of the finished frames in the
    traceback: blocks of a mapped file held there would keep the mapping
    and its file descriptor open for as long as the traceback lives (in an
    interactive session, until the next error)."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except BaseException as exc:
            traceback.clear_frames(exc.__traceback__)
            raise
    return wrapper


def kernel_threads(requested: int | None, resolved: int) -> int:
    """Threads for one kernel call: ``resolved`` (the caller's
    effective_n_threads(requested)), except in a task on a distributed
    worker, where the default is the task's share of the worker's threads
    and an explicit request is resolved on the worker."""
    share = _TASK_THREADS.get()
    if share is None:
        return usable_threads(resolved)
    if requested is None:
        threads = share()
        return usable_threads(resolved if threads is None else threads)
    from fastem._kernels._openmp import effective_n_threads
    return effective_n_threads(requested)

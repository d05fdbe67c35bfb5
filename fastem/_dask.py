"""Distributed EM on a ``dask.array.Array``.

The data are persisted once (with a ``dask.distributed.Client`` they stay on
the workers) and never gathered. Each EM iteration is one graph: the kernel
parameters are one task (shipped once to each worker that needs them), one
``_block_stats`` task per row block runs the fused kernel on its block
and returns only sufficient statistics, and the statistics are summed in a
binary tree over the blocks in their order, so the sum does not depend on
where or when a task ran. The driver does the M-step.

Scheduling: with a distributed client active, graphs run on its workers,
and a kernel call uses its task's share of the worker's threads (a worker
running several tasks at once would otherwise start its thread count in
each of them); without one, on dask's local threaded scheduler one block at
a time, each kernel call using all of this machine's cores (a kernel
already fills them, and two at once would fight over them).
"""
from __future__ import annotations

import copy
import os
import uuid

import numpy as np

from fastem import _init
from fastem._missing import check_block
from fastem._sources import _TASK_THREADS, ArraySource, RowSource, _is_dask_array


def _require_dask():
    try:
        import dask
        import dask.array  # noqa: F401
    except ImportError:  # pragma: no cover - only without dask installed
        raise ImportError(
            "fastem: fitting a dask array needs dask; install it with "
            "pip install 'fastem[dask]'"
        ) from None


def _client():
    """The distributed client in use here (its context or the global one)."""
    try:
        from distributed import Client
        return Client.current(allow_global=True)
    except (ImportError, ValueError):
        return None


def _lazy_rows(X, dtypes):
    """X cut in row blocks of whole rows, in an accepted dtype, still lazy."""
    dtypes = [np.dtype(d) for d in (dtypes if isinstance(dtypes, list) else [dtypes])]
    if np.dtype(X.dtype).kind not in "fiub":
        raise ValueError(f"fastem: X has dtype {X.dtype}; numbers are needed")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X if np.dtype(X.dtype) in dtypes else X.astype(dtypes[0])


class DaskData(RowSource):
    """A 2-D dask array cut in row blocks only: a distributed source.

    ``check``: the values are checked for NaN and infinity once (one pass),
    for the passes of a fit; otherwise the array is for per-row outputs
    computed block-wise. ``persist``: the data are persisted (on the
    workers with a client) for the passes of a fit; False: every pass reads
    the blocks from the array's source (Zarr, HDF5, .npy ...) again; None:
    persisted when the array takes at most PERSIST_SHARE of the workers'
    memory (of this machine's free memory without a client).
    """

    streamed = True
    distributed = True

    def __init__(self, X, dtypes, name="X", persist=None, check=True, allow_nan=False):
        _require_dask()
        import dask.array as da

        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2-dimensional input, got a dask array of shape {X.shape}"
            )
        if check and any(np.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()
        X = _lazy_rows(X, dtypes)  # the kernels need whole rows
        self.client = _client()
        if persist is None:
            persist = check and _fits_in_memory(X.size * X.dtype.itemsize, self.client)
        self.persisted = bool(persist)
        if persist:
            X = X.persist()
        # one distributed pass: every value finite (or, with gaps allowed,
        # no infinity and no row without an observed value)?
        if check and allow_nan:
            bad = da.isinf(X).any(axis=1) | da.isnan(X).all(axis=1)
            any_bad, first = da.compute(bad.any(), da.argmax(bad))
            if any_bad:
                row = int(first)
                check_block(np.asarray(X[row:row + 1].compute()), row, name)
        elif check and not bool(da.isfinite(X.sum(dtype=np.float64)).compute()):
            bad = ~da.isfinite(X).all(axis=1)
            row = int(da.argmax(bad).compute())
            what = "NaN" if bool(da.isnan(X[row]).any().compute()) else "infinity"
            raise ValueError(f"Input {name} contains {what} (first at row {row}).")
        self.array = X
        self.shape = tuple(s if np.isnan(s) else int(s) for s in X.shape)
        self.n_samples, self.n_features = self.shape
        self.dtype = np.dtype(X.dtype)

    def block_rows(self):
        return list(self.array.chunks[0])

    def delayed_blocks(self):
        """The row blocks as dask.delayed objects, in row order."""
        return list(self.array.to_delayed().ravel())

    def blocks(self):
        """Yield (start, stop, rows) over all rows, each block computed
        here in turn (passes that must stay on the cluster use reduce)."""
        start = 0
        for part, rows in zip(self.delayed_blocks(), self.block_rows(), strict=True):
            yield start, start + rows, np.asarray(self._compute(part))
            start += rows

    def rows(self, start, stop):
        return np.asarray(self.array[start:stop].compute())

    def take(self, indices):
        """Rows at sorted indices, gathering only those rows."""
        return np.ascontiguousarray(self.array[np.asarray(indices)].compute())

    def with_weights(self, sample_weight):
        """The same rows weighted by ``sample_weight`` (a dask array or any
        1-D array-like), cut in the rows' blocks and checked in one pass."""
        if sample_weight is None:
            return self
        weighted = copy.copy(self)
        weighted.weights = DaskWeights(sample_weight, self.array.chunks[0])
        return weighted

    def reduce(self, fn, *args, per_block=None):
        """fn(block, *args[, per_block[i]][, weights=w]) for every block,
        summed in a fixed binary tree over the blocks, computed on the
        cluster; w is the block's weights for weighted rows. Each of
        ``args`` is one task of the graph: it travels once to each worker,
        not once per block. The tasks' keys start with fn's name."""
        import dask

        shared = [dask.delayed(a, traverse=False) for a in args]
        task = dask.delayed(_run_task, pure=False)
        token = uuid.uuid4().hex
        blocks = self.delayed_blocks()
        weights = ([None] * len(blocks) if self.weights is None
                   else self.weights.delayed_blocks())
        parts = [task(fn, block, *shared, *(() if per_block is None else (per_block[i],)),
                      weights=weights[i], dask_key_name=f"{fn.__name__}-{token}-{i}")
                 for i, block in enumerate(blocks)]
        add = dask.delayed(_add, pure=False)
        while len(parts) > 1:
            parts = [add(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        return self._compute(parts[0])

    def _compute(self, graph):
        if self.client is not None:
            return self.client.compute(graph).result()
        return graph.compute(scheduler="threads", num_workers=1)


class DaskWeights:
    """The weights of a DaskData's rows: a 1-D dask array in the rows'
    blocks, checked in one distributed pass (see fastem._weights)."""

    def __init__(self, sample_weight, row_chunks):
        import dask.array as da

        from fastem._weights import check_weights

        n_samples = int(sum(row_chunks))
        if _is_dask_array(sample_weight):
            if sample_weight.ndim != 1 or sample_weight.shape[0] != n_samples:
                raise ValueError(
                    f"sample_weight must be 1-dimensional of shape ({n_samples},), got "
                    f"a dask array of shape {sample_weight.shape}")
            array = sample_weight.astype(np.float64).rechunk((row_chunks,))
            low, total, finite = da.compute(array.min(), array.sum(),
                                            da.isfinite(array).all())
            if not (finite and low >= 0 and 0 < total < np.inf):
                # the rare bad case: find and name the problem on this machine
                check_weights(np.asarray(array.compute()), n_samples)
        else:
            # any weights input (a .npy path, a dataset ...), read once
            checked = check_weights(sample_weight, n_samples)
            total = checked.total
            array = da.from_array(checked.rows(0, n_samples), chunks=(row_chunks,))
        self.array = array
        self.n_samples = n_samples
        self.total = float(total)

    def delayed_blocks(self):
        return list(self.array.to_delayed().ravel())

    def rows(self, start, stop):
        return np.ascontiguousarray(self.array[start:stop].compute(), dtype=np.float64)

    def take(self, indices):
        return np.asarray(self.array[np.asarray(indices)].compute(), dtype=np.float64)


# persist a dask array for a fit when it takes at most this share of the
# memory it would be held in: the rest is for the blocks in flight, the
# kernels' buffers and whatever else the workers run
PERSIST_SHARE = 0.5


def _fits_in_memory(nbytes, client):
    """Whether persisting nbytes leaves room: against the workers' memory
    limits with a client (no limit: it fits; no worker yet: reading from the
    source, which works in any memory), else this machine's free memory
    (unknown: it fits, as before this check)."""
    if client is not None:
        limits = [w.get("memory_limit") for w in client.scheduler_info()["workers"].values()]
        if not limits:
            return False
        if not all(limits):
            return True
        return nbytes <= PERSIST_SHARE * sum(limits)
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return True
    return nbytes <= PERSIST_SHARE * free


def _add(a, b):
    return a + b


# -- tasks: run on the workers --------------------------------------------------------------
def _worker_share():
    """This task's share of its distributed worker's threads: the worker's
    threads divided among the tasks it is executing; None outside a worker."""
    try:
        from distributed import get_worker
        state = get_worker().state
    except (ImportError, ValueError, AttributeError):
        return None
    return max(1, state.nthreads // max(1, state.executing_count))


def _run_task(fn, block, *args, weights=None):
    """fn(block, *args[, weights=weights]) with the kernels' threads limited
    to the task's share."""
    token = _TASK_THREADS.set(_worker_share)
    kwargs = {} if weights is None else {"weights": np.asarray(weights, dtype=np.float64)}
    try:
        return fn(np.ascontiguousarray(block), *args, **kwargs)
    finally:
        _TASK_THREADS.reset(token)


def _block_score(block, engine, kp, output, dtype):
    return _run_task(_score_rows, block, engine, kp, output, dtype)


def _score_rows(block, engine, kp, output, dtype):
    return engine.score(ArraySource(block), kp, dtype=dtype, **{output: True})[output]


def _block_resp_stats(block, covariance_type, shift, resp, weights=None):
    return _init.stats_from_resp(_init.weighted_block(block, weights), covariance_type,
                                 lambda start, stop, rows: resp[start:stop], shift)


# -- the estimator's steps on a DaskData ------------------------------------------------------
def score_lazy(engine, data, kp, output, dtype=np.float64):
    """A lazy dask array of per-row outputs computed block-wise; the
    log-likelihoods and responsibilities in dtype."""
    import dask

    array = data.array
    n_components = engine.n_components
    # one task each, not a copy per block
    kp = dask.delayed(kp, traverse=False)
    engine = dask.delayed(engine, traverse=False)
    if output == "resp":
        return array.map_blocks(_block_score, engine, kp, output, dtype,
                                chunks=(array.chunks[0], (n_components,)),
                                meta=np.empty((0, 0), dtype=dtype),
                                name="fastem-predict-proba")
    meta_dtype = np.intp if output == "labels" else dtype
    return array.map_blocks(_block_score, engine, kp, output, dtype, drop_axis=1,
                            chunks=(array.chunks[0],), meta=np.empty(0, dtype=meta_dtype),
                            name=f"fastem-{output.replace('_', '-')}")


def initial_stats(gm, data, random_state):
    """The first SuffStats of init_params "random", "random_from_data" and
    "k-means++" on the cluster (see _init; "kmeans" runs as on any source)."""
    K, cov_type = gm.n_components, gm.covariance_type
    engine = gm._engine
    chunk = engine.chunk_size
    if gm.init_params == "random":
        shift = gm._random_init_shift(data)
        # drawn here, in row order, as the in-memory fit draws them
        resp = []
        for rows in data.block_rows():
            r = random_state.uniform(size=(rows, K))
            resp.append(r / r.sum(axis=1)[:, np.newaxis])
        return data.reduce(_block_resp_stats, cov_type, shift, per_block=resp)
    return _init.seeded_stats(data, cov_type, gm.init_params, K, random_state, chunk,
                              engine.max_threads)


def dask_source(X, dtypes, block_bytes, lazy, persist, allow_nan=False):
    """Builder of fastem._sources.SOURCE_KINDS: lazy for per-row outputs,
    else checked and persisted as ``persist`` says."""
    if lazy:
        return DaskData(X, dtypes, check=False, persist=False)
    return DaskData(X, dtypes, persist=persist, allow_nan=allow_nan)

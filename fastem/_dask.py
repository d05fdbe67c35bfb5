"""Distributed EM on a ``dask.array.Array``.

The data are persisted once (with a ``dask.distributed.Client`` they stay on
the workers) and never gathered. Each EM iteration is one graph: the kernel
parameters are one task (shipped once to each worker that needs them), one
``_block_stats`` task per row block runs the fused kernel on its block
and returns only sufficient statistics, and the statistics are summed in a
binary tree over the blocks in their order, so the sum does not depend on
where or when a task ran. The driver does the M-step.

Scheduling: with a distributed client active, graphs run on its workers
and each kernel call uses that worker's threads; without one, on dask's
local threaded scheduler one block at a time, each kernel call using all
of this machine's cores (a kernel already fills them, and two at once would
fight over them).
"""
import numpy as np

from fastem import _init
from fastem._covariance import SuffStats
from fastem._engine import Engine
from fastem._kernels._openmp import effective_n_threads



def is_dask_array(X):
    return type(X).__module__.split(".")[:2] == ["dask", "array"] and hasattr(X, "chunks")


def _require_dask():
    try:
        import dask  # noqa: F401
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


def lazy_rows(X, dtypes):
    """X cut in row blocks of whole rows, in an accepted dtype, still lazy."""
    _require_dask()
    dtypes = [np.dtype(d) for d in (dtypes if isinstance(dtypes, list) else [dtypes])]
    if np.dtype(X.dtype).kind not in "fiub":
        raise ValueError(f"fastem: X has dtype {X.dtype}; numbers are needed")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X if np.dtype(X.dtype) in dtypes else X.astype(dtypes[0])


class DaskData:
    """A validated, persisted 2-D dask array cut in row blocks only."""

    def __init__(self, X, dtypes, name="X"):
        _require_dask()
        import dask.array as da

        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2-dimensional input, got a dask array of shape {X.shape}"
            )
        if any(np.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()
        X = lazy_rows(X, dtypes).persist()  # the kernels need whole rows
        # one distributed pass: every value finite?
        if not bool(da.isfinite(X.sum(dtype=np.float64)).compute()):
            bad = ~da.isfinite(X).all(axis=1)
            row = int(da.argmax(bad).compute())
            what = "NaN" if bool(da.isnan(X[row]).any().compute()) else "infinity"
            raise ValueError(f"Input {name} contains {what} (first at row {row}).")
        self.array = X
        self.shape = tuple(int(s) for s in X.shape)
        self.n_samples, self.n_features = self.shape
        self.dtype = np.dtype(X.dtype)
        self.client = _client()

    def blocks(self):
        return list(self.array.to_delayed().ravel())

    def block_rows(self):
        return list(self.array.chunks[0])

    def __getitem__(self, key):
        return self.array[key].compute()

    def take(self, indices):
        """Rows at sorted indices, gathering only those rows."""
        return np.ascontiguousarray(self.array[np.asarray(indices)].compute())

    def mean_variance(self):
        return float(self.array.astype(np.float64).var(axis=0).mean().compute())

    def lloyd_sums(self, centers, chunk_size, n_threads):
        return self.reduce(_block_lloyd, centers, chunk_size)

    def reduce(self, fn, *args, per_block=None):
        """fn(block, *args[, per_block[i]]) for every block, summed in a
        fixed binary tree over the blocks, computed on the cluster. Each of
        ``args`` is one task of the graph: it travels once to each worker,
        not once per block. The tasks' keys start with fn's name."""
        import dask

        # arrays and parameter objects become tasks; scalars ride along
        shared = [dask.delayed(a, traverse=False)
                  if isinstance(a, np.ndarray) or hasattr(a, "__dict__") else a
                  for a in args]
        task = dask.delayed(fn, pure=False)
        parts = [task(block, *shared, *(() if per_block is None else (per_block[i],)))
                 for i, block in enumerate(self.blocks())]
        add = dask.delayed(_add, pure=False)
        while len(parts) > 1:
            parts = [add(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        if self.client is not None:
            return self.client.compute(parts[0]).result()
        return parts[0].compute(scheduler="threads", num_workers=1)


def _add(a, b):
    if isinstance(a, SuffStats):
        total = SuffStats(a.covariance_type, a.n_samples, a.log_likelihood,
                          a.nk, a.s1, a.s2, a.shift)
        total += b
        return total
    return a + b


# -- tasks: run on the workers --------------------------------------------------------------
def _worker_threads(n_threads):
    """The OpenMP threads of a task: the worker's threads inside a
    distributed worker (unless the user chose), else n_threads."""
    if n_threads is None:
        try:
            from distributed import get_worker
            return get_worker().state.nthreads
        except (ImportError, ValueError, AttributeError):
            return None
    return n_threads


def _engine(spec, block):
    covariance_type, n_components, chunk_size, n_threads = spec
    return Engine(covariance_type, n_components, block.shape[1], chunk_size,
                  _worker_threads(n_threads))


def _block_stats(block, kp, spec):
    return _engine(spec, block).em_stats(np.ascontiguousarray(block), kp)


def _block_log_likelihood(block, kp, spec):
    return _engine(spec, block).total_log_likelihood(np.ascontiguousarray(block), kp)


def _block_score(block, kp, spec, output):
    engine = _engine(spec, block)
    return engine.score(np.ascontiguousarray(block), kp, **{output: True})[output]


def _block_lloyd(block, centers, chunk_size):
    # a worker's own threads; on the local scheduler (one block at a time)
    # all of this machine's
    return _init._lloyd_sums(np.ascontiguousarray(block), centers, chunk_size,
                             _worker_threads(None) or effective_n_threads(None))


def _block_kmeans_stats(block, centers, covariance_type, shift, chunk_size, n_threads):
    n_threads = _worker_threads(n_threads) or 1
    K = centers.shape[0]

    def resp(start, stop, rows):
        labels = _init.nearest(np.ascontiguousarray(rows), centers, chunk_size, n_threads)
        return (labels[:, np.newaxis] == np.arange(K)).astype(np.float64)

    return _init.stats_from_resp(block, covariance_type, resp, shift)


def _block_resp_stats(block, covariance_type, shift, resp):
    return _init.stats_from_resp(block, covariance_type,
                                 lambda start, stop, rows: resp[start:stop], shift)


# -- the estimator's steps on a DaskData ------------------------------------------------------
def _spec(gm):
    return (gm.covariance_type, gm.n_components, gm.chunk_size, gm.n_threads)


def em_stats(gm, data, kp):
    return data.reduce(_block_stats, kp, _spec(gm))


def total_log_likelihood(gm, data, kp):
    return float(data.reduce(_block_log_likelihood, kp, _spec(gm)))


def score_lazy(gm, X, kp, output):
    """A lazy dask array of per-row outputs computed block-wise."""
    import dask

    array = X.array if isinstance(X, DaskData) else X
    spec = _spec(gm)
    kp = dask.delayed(kp, traverse=False)  # one task, not a copy per block
    if output == "resp":
        return array.map_blocks(_block_score, kp, spec, output,
                                chunks=(array.chunks[0], (gm.n_components,)),
                                dtype=np.float64, name="fastem-predict-proba")
    dtype = np.intp if output == "labels" else np.float64
    return array.map_blocks(_block_score, kp, spec, output, drop_axis=1,
                            chunks=(array.chunks[0],), dtype=dtype,
                            name=f"fastem-{output.replace('_', '-')}")


def initial_stats(gm, data, random_state):
    """The first SuffStats of init_params on the cluster (see _init)."""
    K, cov_type = gm.n_components, gm.covariance_type
    engine = gm._engine
    chunk, threads = engine.chunk_size, gm.n_threads
    if gm.init_params == "kmeans":
        centers = _init.kmeans(data, K, random_state, chunk, engine.max_threads)
        shift = gm._init_shift(centers)
        return data.reduce(_block_kmeans_stats, centers, cov_type, shift, chunk, threads)
    if gm.init_params == "random":
        shift = gm._random_init_shift(data)
        # drawn here, in row order, as the in-memory fit draws them
        resp = []
        for rows in data.block_rows():
            r = random_state.uniform(size=(rows, K))
            resp.append(r / r.sum(axis=1)[:, np.newaxis])
        return data.reduce(_block_resp_stats, cov_type, shift, per_block=resp)
    if gm.init_params == "random_from_data":
        seeds = _init.rows_at(data, _init.seed_row_indices(data, K, random_state))
    else:
        seeds, _ = _init.kmeans_plusplus(_init.seeding_rows(data, random_state), K,
                                         random_state, chunk, engine.max_threads)
    return _init.sparse_resp_stats(data, cov_type, seeds)

"""Glue between arrays and the kernels: chunk size, thread count, and the two
passes (fused EM statistics, scoring), over any RowSource (an in-memory
array is one block; see fastem/_sources.py)."""
from __future__ import annotations

import weakref
from contextlib import closing

import numpy as np

from fastem._blas import single_threaded_blas
from fastem._covariance import KernelParams, SuffStats
from fastem._covtypes import get
from fastem._kernels import _em
from fastem._kernels._openmp import effective_n_threads
from fastem._missing import gap_rows
from fastem._sources import as_source, kernel_threads

# A thread works on a chunk of B rows in buffers of B values per row: the
# chunk transposed (D rows), the (K) log-probabilities, and what its
# covariance type adds (CovarianceType.chunk_extra_rows x D). B x rows x 8
# bytes ~ 256 KiB keeps them in the per-core L2; B is whole 32-row tiles, as
# the kernels pad a chunk to them (measurements: docs/performance-log.md).
_CHUNK_BYTES = 256 * 1024
_MIN_CHUNK, _MAX_CHUNK = 64, 8192

# From this many features on, full and tied covariance run their two
# O(D^2)-per-row products (the E-step's triangular product, the M-step's
# scatter) as BLAS-3 calls on chunks of _BLAS_CHUNK rows; below it the
# register-blocked kernels are faster. Crossovers measured on Zen 4 with
# benchmarks/crossover.py (docs/performance.md): for full float64 the
# register kernels are 2-25% faster up to D = 320 and BLAS 8% faster at 384
# (K = 8). With many components the register kernels slow down from about
# 192 features (60-65 GFLOP/s against BLAS's 73-82 at K = 16 and 32), so
# full covariance takes BLAS from _BLAS_MIN_FEATURES_MANY features when
# there are at least _MANY_COMPONENTS (tied has one factor whatever K).
_BLAS_MIN_FEATURES = {
    ("full", "float64"): 384, ("full", "float32"): 256,
    ("tied", "float64"): 64, ("tied", "float32"): 64,
}
_MANY_COMPONENTS = 16
_BLAS_MIN_FEATURES_MANY = {("full", "float64"): 192, ("full", "float32"): 192}
_BLAS_CHUNK = 512

# By default a pass gives each thread at least this many rows. Starting and
# joining a parallel region costs some 10-20 us on a quiet machine, and on a
# loaded one a region waits for every thread to be scheduled: 150 rows
# (iris) took 364 ms per fit with two threads on two busy cores, 1.1 ms with
# one. Measured on Zen 4 (2 threads), full covariance: the second thread
# pays from about 1,000 rows (D = 16, K = 8) to 2,000 (D = 4, K = 3).
# An explicit n_threads is honoured whatever the size.
MIN_ROWS_PER_THREAD = 1024


def uses_blas(covariance_type, n_features, dtype, n_components=1):
    """Whether the kernels take the BLAS path for this shape."""
    key = (covariance_type, np.dtype(dtype).name)
    threshold = _BLAS_MIN_FEATURES.get(key)
    if threshold is None:
        return False
    if n_components >= _MANY_COMPONENTS:
        threshold = _BLAS_MIN_FEATURES_MANY.get(key, threshold)
    return n_features >= threshold


def default_chunk_size(n_features, n_components, covariance_type):
    # each covariance type says how many buffer rows per feature it adds
    extra_rows = get(covariance_type).chunk_extra_rows
    rows_per_row = (1 + extra_rows) * n_features + n_components
    rows = _CHUNK_BYTES // (8 * rows_per_row)
    rows = rows // 32 * 32  # whole tiles: a padded partial tile is wasted work
    return int(min(max(rows, _MIN_CHUNK), _MAX_CHUNK))


class Engine:
    """Runs the kernels over an in-memory array with fixed chunking."""

    def __init__(self, covariance_type, n_components, n_features, chunk_size=None,
                 n_threads=None, blas=None, missing=False):
        self.covariance_type = covariance_type
        # rows with NaN are gaps (fastem._missing), not for the kernels
        self.missing = missing
        # None: BLAS path by shape and dtype (uses_blas); True/False force it
        self.blas = blas
        self.n_components = n_components
        self.n_features = n_features
        self.auto_chunk = chunk_size is None
        self.chunk_size = int(chunk_size or default_chunk_size(
            n_features, n_components, covariance_type))
        self.n_threads = n_threads
        self.max_threads = effective_n_threads(n_threads)
        self.stats_size = _em.stats_size(
            get(covariance_type).code, n_components, n_features
        )
        self._split_cache = (None, None)
        self._gap_cache = None

    def __getstate__(self):
        # the gaps found in a block stay on the machine that read it
        state = dict(self.__dict__)
        state["_gap_cache"] = None
        return state

    def _gaps(self, X):
        """gap_rows(X), kept for the same array object between the passes
        of one fit (an in-memory X is the same block every iteration; an
        Engine is made per fit, and the cache holds no reference to X)."""
        cached = self._gap_cache
        if cached is not None and cached[0]() is X:
            return cached[1]
        gaps = gap_rows(X)
        self._gap_cache = (weakref.ref(X), gaps)
        return gaps

    def uses_blas(self, dtype):
        if self.blas is not None:
            return bool(self.blas)
        return uses_blas(self.covariance_type, self.n_features, dtype, self.n_components)

    def _split(self, n_samples, dtype):
        """(chunk size, threads, BLAS path) for n_samples rows of dtype; the
        last answer is kept, as every iteration of a fit asks the same."""
        max_threads = kernel_threads(self.n_threads, self.max_threads)
        if self.n_threads is None:
            max_threads = max(1, min(max_threads, n_samples // MIN_ROWS_PER_THREAD))
        key = (n_samples, max_threads, dtype)
        cached_key, split = self._split_cache
        if cached_key != key:
            blas = self.uses_blas(dtype)
            chunk = self._chunk_for(n_samples, max_threads, blas)
            n_chunks = -(-n_samples // chunk)
            split = (chunk, max(1, min(max_threads, n_chunks)), blas)
            self._split_cache = (key, split)
        return split

    def _chunk_for(self, n_samples, max_threads, blas):
        # buffers are sized by the chunk: never larger than the data; and
        # small data is cut into a few chunks per thread so that all threads
        # get a share (a chosen chunk_size is kept as given)
        if self.auto_chunk:
            size = _BLAS_CHUNK if blas else self.chunk_size
            per_thread = -(-n_samples // (4 * max_threads))
            return max(1, min(size, max(per_thread, _MIN_CHUNK)))
        return max(1, min(self.chunk_size, n_samples))

    def kernel_params(self, weights, means, prec_chol, dtype, log_weights=None):
        return KernelParams(weights, means, prec_chol, self.covariance_type, dtype,
                            log_weights)

    def em_stats(self, X, params):
        """One fused E-step + statistics pass over X (a RowSource or an
        array): a SuffStats. The blocks' statistics add in block order.
        Weighted rows (a source's weights) count as that many copies: then
        the statistics' n_samples is the sum of the weights."""
        return as_source(X).reduce(_block_stats, self, params)

    def _em_stats(self, X, params, weights=None):
        if self.missing:
            gaps = self._gaps(X)
            if gaps.size:
                # the rows without gaps through the kernels (the others get
                # weight 0 there, which the kernels read as zeros), the rows
                # with gaps by pattern
                kernel_weights = np.ones(X.shape[0]) if weights is None else weights.copy()
                kernel_weights[gaps] = 0.0
                stats = self._kernel_stats(X, params, kernel_weights)
                return stats + params.marginals().stats(
                    X[gaps], None if weights is None else weights[gaps], params.shift64,
                    self.n_threads)
        return self._kernel_stats(X, params, weights)

    def _kernel_stats(self, X, params, weights=None):
        n_samples = X.shape[0]
        flat = np.empty(self.stats_size)
        chunk, threads, blas = self._split(n_samples, X.dtype)
        args = (X, params.loc, params.prec, params.center, params.log_const,
                params.shift, params.cov_code, chunk, threads, flat, blas, weights)
        if weights is not None:
            n_samples = float(weights.sum())
        if blas:
            with single_threaded_blas():
                _em.em_pass(*args)
        else:
            # no context manager on the small path: W5's iteration is 55 us
            _em.em_pass(*args)
        return SuffStats.from_flat(self.covariance_type, n_samples, flat, params.shift64)

    def score(self, X, params, log_likelihood=False, resp=False, labels=False,
              out_ll=None, out_resp=None, dtype=np.float64):
        """Per-row outputs of one scoring pass: a dict of the requested arrays.

        The log-likelihoods and responsibilities are new arrays of ``dtype``
        (float64 or float32), or ``out_ll`` (N,) and ``out_resp`` (N, K),
        float64 or float32 and C-contiguous (e.g. memmaps)."""
        n_samples = X.shape[0]
        K = self.n_components
        if log_likelihood:
            out_ll = _output(out_ll, (n_samples,), "out", dtype)
        if resp:
            out_resp = _output(out_resp, (n_samples, K), "out", dtype)
        out_labels = np.empty(n_samples, dtype=np.intp) if labels else None
        # the kernels write float64: float32 outputs are cast slice by slice
        narrow = any(out is not None and out.dtype != np.float64
                     for out in (out_ll, out_resp))
        with closing(as_source(X).blocks()) as blocks:
            for start, stop, block in blocks:
                step = _CAST_ROWS if narrow else max(stop - start, 1)
                for a in range(0, stop - start, step):
                    rows = slice(start + a, min(start + a + step, stop))
                    ll = _kernel_output(out_ll, rows) if log_likelihood else _EMPTY_LL
                    rs = _kernel_output(out_resp, rows) if resp else np.empty((0, K))
                    self._score(block[a:a + step], params, ll, rs,
                                out_labels[rows] if labels else _EMPTY_LABELS)
                    if log_likelihood and out_ll.dtype != np.float64:
                        out_ll[rows] = ll
                    if resp and out_resp.dtype != np.float64:
                        out_resp[rows] = rs
        return {"log_likelihood": out_ll, "resp": out_resp, "labels": out_labels}

    def total_log_likelihood(self, X, params):
        """Sum of the rows' log-likelihoods (weighted by a source's
        weights), in O(block) memory."""
        return as_source(X).reduce(_block_log_likelihood, self, params)

    def block_log_likelihood(self, block, params, weights=None):
        ll = np.empty(block.shape[0])
        self._score(block, params, ll, np.empty((0, self.n_components)), _EMPTY_LABELS)
        return float(ll.sum() if weights is None else ll @ weights)

    def _score(self, X, params, out_ll, out_resp, out_labels):
        if self.missing:
            gaps = gap_rows(X)
            if gaps.size:
                self._score_with_gaps(X, gaps, params, out_ll, out_resp, out_labels)
                return
        self._kernel_score(X, params, out_ll, out_resp, out_labels)

    def _score_with_gaps(self, X, gaps, params, out_ll, out_resp, out_labels):
        """_score of rows some of which have gaps: all through the kernels
        (which give NaN for the rows with gaps, harmlessly), then the rows
        with gaps overwritten by their marginal scores."""
        self._kernel_score(X, params, out_ll, out_resp, out_labels)
        ll, resp, labels = params.marginals().scores(X[gaps], self.n_threads)
        for out, theirs in ((out_ll, ll), (out_resp, resp), (out_labels, labels)):
            if out.size:
                out[gaps] = theirs

    def _kernel_score(self, X, params, out_ll, out_resp, out_labels):
        chunk, threads, blas = self._split(X.shape[0], X.dtype)
        args = (X, params.loc, params.prec, params.center, params.log_const,
                params.cov_code, chunk, threads, out_ll, out_resp, out_labels, blas)
        if blas:
            with single_threaded_blas():
                _em.score_pass(*args)
        else:
            _em.score_pass(*args)


# -- the passes' work on one block (module functions: tasks of a distributed
# reduce name themselves after them) ----------------------------------------------------
def _block_stats(block, engine, params, weights=None):
    return engine._em_stats(block, params, weights)


class StatsList(list):
    """Several fits' sums over the same rows (select_model's shared passes):
    adds element by element."""

    def __add__(self, other):
        return StatsList(a + b for a, b in zip(self, other, strict=True))


def _block_log_likelihood(block, engine, params, weights=None):
    return engine.block_log_likelihood(block, params, weights)


_EMPTY_LL = np.empty(0)
_EMPTY_LABELS = np.empty(0, dtype=np.intp)


# rows per kernel call when float32 outputs are cast from the kernels' float64
_CAST_ROWS = 1 << 16


def _kernel_output(out, rows):
    """Where the kernels write the rows' outputs: the output itself if it
    is float64, else a float64 scratch to cast from."""
    if out.dtype == np.float64:
        return out[rows]
    return np.empty((rows.stop - rows.start,) + out.shape[1:])


def _output(out, shape, name, dtype=np.float64):
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not (isinstance(out, np.ndarray) and out.shape == shape
            and out.dtype in (np.float64, np.float32) and out.flags.c_contiguous
            and out.flags.writeable):
        raise ValueError(
            f"{name} must be a writeable C-contiguous float64 or float32 array of shape "
            f"{shape}, got {type(out).__name__}"
            + (f" of shape {out.shape} and dtype {out.dtype}"
               if isinstance(out, np.ndarray) else "")
        )
    return out

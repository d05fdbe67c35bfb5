"""Glue between arrays and the kernels: chunk size, thread count, and the two
passes (fused EM statistics, scoring)."""
import numpy as np

from fastem._covariance import KernelParams, SuffStats
from fastem._kernels import _em
from fastem._kernels._openmp import effective_n_threads

# A thread's workspace for a chunk of B rows -- the chunk transposed, its
# differences, the tied products (D x B each), the (K x B) log-probabilities
# and two row vectors -- should stay in the per-core L2 (1 MiB here):
# B * (3 D + K) * 8 bytes ~ 256 KiB. Measured with 2 threads (fused pass):
# W1 (1e6 x 16, K=16, full) 256..2048 rows, W2 (1e6 x 64, K=32, diag) 160..1024,
# W4 (2e5 x 64, K=10, full) 128..1024 are all within this machine's noise,
# provided the chunk is whole 32-row tiles: the kernels pad a chunk to a
# multiple of 32 rows, and W4's unrounded 162 rows (padded to 192) cost 16 %.
_CHUNK_BYTES = 256 * 1024
_MIN_CHUNK, _MAX_CHUNK = 64, 8192



def default_chunk_size(n_features, n_components):
    rows = _CHUNK_BYTES // (8 * (3 * n_features + n_components))
    rows = rows // 32 * 32  # whole tiles: a padded partial tile is wasted work
    return int(min(max(rows, _MIN_CHUNK), _MAX_CHUNK))


class Engine:
    """Runs the kernels over an in-memory array with fixed chunking."""

    def __init__(self, covariance_type, n_components, n_features, chunk_size=None,
                 n_threads=None):
        self.covariance_type = covariance_type
        self.n_components = n_components
        self.n_features = n_features
        self.auto_chunk = chunk_size is None
        self.chunk_size = int(chunk_size or default_chunk_size(n_features, n_components))
        self.max_threads = effective_n_threads(n_threads)
        self.stats_size = _em.stats_size(
            _em.COV_TYPE_CODES[covariance_type], n_components, n_features
        )

    def _chunk_for(self, n_samples):
        # buffers are sized by the chunk: never larger than the data; and
        # small data is cut into a few chunks per thread so that all threads
        # get a share (a chosen chunk_size is kept as given)
        if self.auto_chunk:
            per_thread = -(-n_samples // (4 * self.max_threads))
            return max(1, min(self.chunk_size, max(per_thread, _MIN_CHUNK)))
        return max(1, min(self.chunk_size, n_samples))

    def _threads_for(self, n_samples):
        n_chunks = -(-n_samples // self._chunk_for(n_samples))
        return max(1, min(self.max_threads, n_chunks))

    def kernel_params(self, weights, means, prec_chol, dtype):
        return KernelParams(weights, means, prec_chol, self.covariance_type, dtype)

    def em_stats(self, X, params):
        """One fused E-step + statistics pass over X: a SuffStats."""
        n_samples = X.shape[0]
        thread_stats = np.empty((self._threads_for(n_samples), self.stats_size))
        _em.em_pass(
            X, params.loc, params.prec, params.center, params.log_const,
            params.shift, params.cov_code, self._chunk_for(n_samples),
            thread_stats,
        )
        # fixed order: thread 0, 1, ...
        flat = thread_stats[0].copy()
        for row in thread_stats[1:]:
            flat += row
        return SuffStats.from_flat(self.covariance_type, n_samples, flat, params.shift64)

    def score(self, X, params, log_likelihood=False, resp=False, labels=False):
        """Per-row outputs of one scoring pass: a dict of the requested arrays."""
        n_samples = X.shape[0]
        out_ll = np.empty(n_samples if log_likelihood else 0)
        out_resp = np.empty((n_samples if resp else 0, self.n_components))
        out_labels = np.empty(n_samples if labels else 0, dtype=np.intp)
        _em.score_pass(
            X, params.loc, params.prec, params.center, params.log_const,
            params.cov_code, self._chunk_for(n_samples),
            self._threads_for(n_samples), out_ll, out_resp, out_labels,
        )
        return {"log_likelihood": out_ll, "resp": out_resp, "labels": out_labels}

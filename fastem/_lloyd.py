"""init_params="kmeans": k-means as scikit-learn's KMeans computes it, over
any RowSource, so that a fit starts from the same labels as scikit-learn's
GaussianMixture, rows equally near two centers included.

scikit-learn's KMeans (Lloyd, one k-means++ start) centers the data on its
mean, labels rows by ``|c|^2 - 2 x.c`` per 256-row chunk, adds each
cluster's rows in each thread's share of the chunks, relocates empty
clusters to the rows farthest from their centers, averages with a
reciprocal, and stops when no label changes or when the centers' squared
shift is within ``tol`` times the mean feature variance; the labels are
then those of the last centers. Each step here makes the same operations
in the same order and float type (the kernels are fastem/_kernels/_lloyd.pyx),
so each number is the same; what is small (K x D) is NumPy's own code.

Rows are read in passes, in row order, with running sums; nothing of size
N is kept (empty clusters, when they occur, keep the rows' distances and
labels for one pass). On a dask array the blocks are summed on the workers
instead: the same algorithm, without scikit-learn's order of additions;
so is the mean of a streamed single column, which NumPy sums pairwise.
k-means++ is fastem/_init.py's (scikit-learn's own on the centered
seeding sample).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from fastem._blas import single_threaded_blas
from fastem._kernels import _lloyd
from fastem._sources import kernel_threads

# scikit-learn's CHUNK_SIZE: the rows of one GEMM, and the unit of its
# threads' shares
CHUNK = 256


def kmeans_threads():
    """The threads scikit-learn's KMeans runs here (its shares of the rows)."""
    try:
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    except ImportError:  # pragma: no cover - a scikit-learn without it
        from fastem._kernels._openmp import effective_n_threads
        return effective_n_threads(None)
    return _openmp_effective_n_threads()


def thread_shares(n_samples, n_threads):
    """First row of each thread's share of the 256-row chunks under
    OpenMP's static schedule (the first ``n_chunks % T`` threads take one
    chunk more), then n_samples."""
    n_chunks = max(1, -(-n_samples // CHUNK))
    threads = max(1, min(n_threads, n_chunks))
    q, r = divmod(n_chunks, threads)
    first_chunks = [t * q + min(t, r) for t in range(threads)] + [n_chunks]
    return np.minimum(np.array(first_chunks, dtype=np.intp) * CHUNK, n_samples)


class RowCounter:
    """The first row of each block of a pass (0 per block when distributed)."""

    def __init__(self, source):
        self.sequential = not source.distributed
        self.next_row = 0

    def take(self, n_rows):
        first = self.next_row if self.sequential else 0
        self.next_row += n_rows
        return first


class _Fold:
    """The running sums of one pass. On a sequential source every block
    adds to the same arrays after the blocks before it, and learns its
    first row; on a distributed one each block sums into its own arrays,
    returned and added up (``+``) as the source does."""

    def __init__(self, source, **zeros):
        self.rows = RowCounter(source)
        self.sequential = self.rows.sequential
        self.n_samples = source.n_samples
        self.zeros = zeros
        self.sums = {name: z.copy() for name, z in zeros.items()}

    def block(self, n_rows):
        """(first row, arrays to add to) of the next block of n_rows rows."""
        first = self.rows.take(n_rows)
        if self.sequential:
            return first, self.sums
        return first, {name: z.copy() for name, z in self.zeros.items()}

    def part(self, n_rows, sums):
        return _Part(n_rows, None if self.sequential else sums)

    def result(self, part):
        """The pass's sums, from the sum of its blocks' parts."""
        if part.n_rows != self.n_samples:
            raise RuntimeError(f"fastem: a k-means pass read {part.n_rows} of "
                               f"{self.n_samples} rows")
        return self.sums if self.sequential else part.sums


@dataclass
class _Part:
    n_rows: int
    sums: dict | None

    def __add__(self, other):
        sums = (None if self.sums is None else
                {name: self.sums[name] + other.sums[name] for name in self.sums})
        return _Part(self.n_rows + other.n_rows, sums)


# Float32 rows whose squares overflow make these sums infinite, as they do
# scikit-learn's; the E-step's check then names the problem (a ValueError
# suggesting float64), so NumPy's overflow warnings say nothing more here.
_quiet = np.errstate(over="ignore", invalid="ignore")


def _typed(weights, dtype):
    return None if weights is None else np.ascontiguousarray(weights, dtype=dtype)


# -- the mean and the tolerance ---------------------------------------------------------

def _block_column_sums(rows, fold, n_threads, weights=None):
    first, sums = fold.block(rows.shape[0])
    _lloyd.column_sums(rows, sums["x"], sums["w"], _typed(weights, rows.dtype),
                       kernel_threads(None, n_threads))
    return fold.part(rows.shape[0], sums)


def mean_steps(source, n_threads):
    """The (weighted) mean of the rows, as X.mean(axis=0): a generator of
    its one pass (see fastem._init.run)."""
    dtype, n_features = source.dtype, source.n_features
    if n_features == 1 and not source.streamed and source.weights is None:
        # NumPy sums a single column pairwise: its own mean of the rows in
        # memory (a streamed column is added in row order)
        return np.asarray(source.rows(0, source.n_samples), dtype=dtype).mean(axis=0)
    fold = _Fold(source, x=np.zeros(n_features, dtype), w=np.zeros(1, dtype))
    sums = fold.result((yield _block_column_sums, (fold, n_threads)))
    return _divided(sums["x"], sums["w"][0] if source.weights is not None
                    else source.n_samples)


@_quiet
def _divided(sums, count):
    """sums / count as NumPy's mean divides (in float64 for an integer count,
    stored in the sums' type)."""
    if isinstance(count, (int, np.integer)):
        return np.true_divide(sums, np.intp(count), out=sums.copy(), casting="unsafe")
    return sums / sums.dtype.type(count)


def tolerance(squares, count, tol):
    """scikit-learn's _tolerance: tol times the mean feature variance."""
    if tol == 0:
        return 0
    return np.mean(_divided(squares, count)) * tol


# -- Lloyd's iterations -----------------------------------------------------------------

@dataclass
class Labeller:
    """Nearest centers in scikit-learn's arithmetic: ``mean`` and ``centers``
    (about the mean) in the data's float type, and their squared norms."""

    mean: np.ndarray
    centers: np.ndarray
    n_threads: int

    def __post_init__(self):
        from sklearn.utils.extmath import row_norms
        self.centers = np.ascontiguousarray(self.centers)
        self.sq_norms = row_norms(self.centers, squared=True)

    @property
    def raw_centers(self):
        """The centers in the data's coordinates, float64."""
        return self.centers.astype(np.float64) + self.mean

    def labels(self, rows, first_row):
        """Labels of rows first_row.. of the data (the chunks are the data's)."""
        labels = np.empty(rows.shape[0], dtype=np.intp)
        with single_threaded_blas():
            _lloyd.nearest(rows, first_row, self.mean, self.centers, self.sq_norms, labels,
                           kernel_threads(None, self.n_threads))
        return labels


class _LloydPass:
    """One Lloyd pass: a Labeller, the threads' shares, and the fold."""

    def __init__(self, source, labeller, bounds, squares):
        K, D = labeller.centers.shape
        dtype = source.dtype
        n_shares = len(bounds) - 1 if not source.distributed else 1
        self.labeller = labeller
        self.bounds = bounds
        self.fold = _Fold(source, sums=np.zeros((n_shares, K, D), dtype),
                          counts=np.zeros((n_shares, K), dtype),
                          squares=np.zeros(D if squares else 0, dtype),
                          hash=np.zeros(1, np.uint64))


def _block_lloyd(rows, step, weights=None):
    lab = step.labeller
    n = rows.shape[0]
    first, sums = step.fold.block(n)
    bounds = step.bounds if step.fold.sequential else np.array([0, n], dtype=np.intp)
    with single_threaded_blas():
        _lloyd.lloyd_fold(rows, first, lab.mean, lab.centers, lab.sq_norms, bounds,
                          sums["sums"], sums["counts"], sums["squares"], sums["hash"],
                          _typed(weights, rows.dtype), kernel_threads(None, lab.n_threads))
    return step.fold.part(n, sums)


def lloyd_steps(source, seeds, mean, n_threads, max_iter=300, tol=1e-4):
    """scikit-learn's _kmeans_single_lloyd from ``seeds`` (rows of the data,
    in its float type), as a generator of its passes; returns the Labeller
    of the final labels."""
    centers = np.ascontiguousarray(np.asarray(seeds, dtype=source.dtype) - mean)
    bounds = thread_shares(source.n_samples, kmeans_threads())
    count = source.n_samples if source.weights is None else source.total_weight
    old_hash = None
    for i in range(max_iter):
        labeller = Labeller(mean, centers, n_threads)
        step = yield from lloyd_step(source, labeller, bounds, squares=i == 0)
        if i == 0:
            tol_abs = tolerance(step.squares, count, tol)
        centers = step.centers
        if step.label_hash is not None and step.label_hash == old_hash:
            return labeller  # no label changed: the labels are this pass's
        if step.shift <= tol_abs:
            break
        old_hash = step.label_hash
    return Labeller(mean, centers, n_threads)


@dataclass
class Step:
    """What one Lloyd iteration gives: the new centers and the clusters'
    weights, each center's shift, a hash of the labels (None on a
    distributed source) and, when asked, the squared deviations."""

    centers: np.ndarray
    weight: np.ndarray
    shifts: np.ndarray
    label_hash: int | None
    squares: np.ndarray

    @property
    @_quiet
    def shift(self):
        """The sum of the squared shifts, as scikit-learn adds them."""
        return (self.shifts ** 2).sum()


def lloyd_step(source, labeller, bounds, squares=False):
    """One iteration of scikit-learn's lloyd_iter_chunked_dense from the
    Labeller's centers, over the threads' shares ``bounds``: a generator of
    its pass (and, when clusters are left empty, its relocation's);
    returns a Step."""
    step = _LloydPass(source, labeller, bounds, squares)
    sums = step.fold.result((yield _block_lloyd, (step,)))
    total, weight = _add_shares(sums["sums"], sums["counts"])
    if not weight.all():
        yield from _relocate_steps(source, labeller, total, weight)
    centers = average(total, weight)
    return Step(centers, weight, center_shifts(labeller.centers, centers),
                int(sums["hash"][0]) if step.fold.sequential else None, sums["squares"])


def warn_if_fewer_distinct(n_distinct, n_clusters):
    """scikit-learn's KMeans warning, word for word (so that users' warning
    filters treat both libraries alike), when the final labels use fewer
    than n_clusters clusters."""
    if n_distinct < n_clusters:
        from sklearn.exceptions import ConvergenceWarning
        warnings.warn(
            f"Number of distinct clusters ({n_distinct}) found smaller than "
            f"n_clusters ({n_clusters}). Possibly due to duplicate points in X.",
            ConvergenceWarning, stacklevel=3,
        )


@_quiet
def _add_shares(sums, counts):
    """The clusters' sums and weights: the shares added in thread order."""
    total = np.zeros(sums.shape[1:], sums.dtype)
    weight = np.zeros(counts.shape[1:], counts.dtype)
    for p in range(sums.shape[0]):
        total += sums[p]
        weight += counts[p]
    return total, weight


@_quiet
def average(total, weight):
    """scikit-learn's _average_centers: sums times the reciprocal of their
    weight; an empty cluster takes the heaviest cluster's row as it stands
    when the loop over clusters reaches it."""
    centers = total.copy()
    filled = weight > 0
    alpha = (1.0 / weight[filled].astype(np.float64)).astype(total.dtype)
    centers[filled] = total[filled] * alpha[:, np.newaxis]
    heaviest = int(np.argmax(weight))
    for j in np.flatnonzero(~filled):
        centers[j] = centers[heaviest] if heaviest < j else total[heaviest]
    return centers


@_quiet
def center_shifts(old, new):
    """scikit-learn's center_shift: per center the squared differences
    added four at a time, the groups then one after another (a cumulative
    sum adds in order), and the square root."""
    sq = (new - old) * (new - old)
    whole = sq.shape[1] // 4 * 4
    g = sq[:, :whole].reshape(sq.shape[0], -1, 4)
    terms = np.concatenate([((g[..., 0] + g[..., 1]) + g[..., 2]) + g[..., 3],
                            sq[:, whole:]], axis=1)
    return np.sqrt(np.cumsum(terms, axis=1)[:, -1])


# -- empty clusters ---------------------------------------------------------------------

@_quiet
def _block_distances(rows, labeller, counter, weights=None):
    labels = labeller.labels(rows, counter.take(rows.shape[0]))
    centered = rows - labeller.mean
    return [(((centered - labeller.centers[labels]) ** 2).sum(axis=1), labels)]


def _relocate_steps(source, labeller, total, weight):
    """scikit-learn's _relocate_empty_clusters_dense, in place on the sums
    and weights: each empty cluster takes one of the rows farthest from
    their centers (one pass to find them, one read of those rows)."""
    from fastem._init import _taken_in_order, rows_at

    empty = np.flatnonzero(weight == 0)
    parts = yield _block_distances, (labeller, RowCounter(source))
    distances = np.concatenate([d for d, _ in parts])
    labels = np.concatenate([lab for _, lab in parts])
    del parts
    if np.max(distances) == 0:
        return
    far = np.argpartition(distances, -len(empty))[:-len(empty) - 1:-1]
    rows = np.asarray(rows_at(source, far), dtype=source.dtype) - labeller.mean
    far_weights = (np.ones(len(far), source.dtype) if source.weights is None else
                   _taken_in_order(source.weights.take, far).astype(source.dtype))
    for new, f, x, w in zip(empty, far, rows, far_weights, strict=True):
        old = labels[f]
        total[old] -= x * w
        total[new] = x * w
        weight[new] = w
        weight[old] -= w

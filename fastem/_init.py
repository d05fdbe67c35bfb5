"""Initialisation: k-means++ seeding, Lloyd iterations, and the first
sufficient statistics from initial responsibilities (scikit-learn's four
init_params strategies), all without N x K or N x D temporaries, over any
RowSource (or an in-memory array): whole passes are the source's ``reduce``.

On streamed input k-means++ seeds from a random subsample of
``SEEDING_SAMPLE`` rows (all rows when there are no more), drawn from the
estimator's random_state; Lloyd's iterations then run over all rows, one
streamed pass each, in scikit-learn's arithmetic (fastem/_lloyd.py).
k-means++ is scikit-learn's own kmeans_plusplus on a sample of up to
``EXACT_SEEDING_BYTES``, fastem's fused kernels on a larger one.

Weighted rows (a source's weights) count as that many copies everywhere:
seeds are drawn with probability proportional to weight (times the squared
distance, for k-means++), and Lloyd's means, the tolerance's variances and
the first statistics are weighted.
"""
from __future__ import annotations

import copy
import weakref
from contextlib import closing

import numpy as np

from fastem import _lloyd
from fastem._blas import single_threaded_blas
from fastem._covariance import SuffStats
from fastem._covtypes import get
from fastem._kernels import _kmeans
from fastem._sources import as_source, kernel_threads

# Rows per NumPy block in the init helpers below (one-off passes, so plain
# NumPy on blocks of a few MB is fast enough and simple).
_BLOCK_ROWS = 16384

# Rows k-means++ seeds from on streamed input: with K seeds of 2 + log K
# candidates each, seeding costs O(sample x K x D); 100,000 rows put about
# 100,000 / K rows of an average cluster in the sample.
SEEDING_SAMPLE = 100_000

# k-means++ runs scikit-learn's own kmeans_plusplus on a seeding sample (or
# its centered copy) up to this size, and fastem's fused kernels on a larger
# one, without the copy and the N x (2 + log K) distances: the same draws,
# but where two candidates are equally good to the last bit in exact
# arithmetic each library's rounding picks its own
EXACT_SEEDING_BYTES = 256 * 2**20


def _blocks(n_samples, block_rows=_BLOCK_ROWS):
    for start in range(0, n_samples, block_rows):
        yield start, min(start + block_rows, n_samples)


def iter_blocks(X, block_rows=_BLOCK_ROWS):
    """(start, stop, rows) over X (a RowSource or an array) in blocks of at
    most block_rows rows: the source's blocks cut to that size."""
    with closing(as_source(X).blocks()) as blocks:
        for offset, _, big in blocks:
            for start, stop in _blocks(big.shape[0], block_rows):
                yield offset + start, offset + stop, big[start:stop]


def sample_rows(n_samples, size, random_state):
    """Sorted indices of ``size`` distinct rows of n_samples, uniformly at
    random, in O(size) memory (a permutation of all rows would be O(N))."""
    picked = np.empty(0, dtype=np.int64)
    while picked.size < size:
        picked = np.union1d(picked, random_state.randint(0, n_samples, size=size))
    return np.sort(random_state.choice(picked, size, replace=False))


# The last seeding sample read from each streamed source, while the source
# lives: select_model's shared passes give one source to all candidates,
# and candidates with the same random_state draw the same sample.
_SAMPLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def seeding_rows(X, random_state):
    """(rows, weights) k-means++ seeds from: all of X in memory, else a
    subsample (all rows, in order, when there are at most SEEDING_SAMPLE);
    weights None for unweighted rows."""
    source = as_source(X)
    if not source.streamed:
        indices = None
        rows = source.rows(0, source.n_samples)
    else:
        indices = (np.arange(source.n_samples) if source.n_samples <= SEEDING_SAMPLE
                   else sample_rows(source.n_samples, SEEDING_SAMPLE, random_state))
        rows = _sample(source, indices)
    if source.weights is None:
        return rows, None
    if indices is None:
        return rows, source.weights.rows(0, source.n_samples)
    return rows, source.weights.take(indices)


def _sample(source, indices):
    """source.take(indices), read once for the same indices of the same
    source (read-only: it may serve several fits)."""
    last = _SAMPLES.get(source)
    if last is not None and np.array_equal(last[0], indices):
        return last[1]
    rows = source.take(indices)
    rows.flags.writeable = False
    _SAMPLES[source] = (indices, rows)
    return rows


def seed_row_indices(X, n_components, random_state):
    """Rows for init_params="random_from_data": scikit-learn's draw, or on
    large streamed data one in O(K) memory (a permutation of all rows
    would be O(N)). Weighted rows are drawn with probability proportional
    to their weights (on large streamed data, from a uniform subsample)."""
    source = as_source(X)
    n_samples = source.n_samples
    large = source.streamed and n_samples > SEEDING_SAMPLE
    if source.weights is not None and not _all_equal(source.weights, n_samples):
        candidates = (sample_rows(n_samples, SEEDING_SAMPLE, random_state) if large
                      else np.arange(n_samples))
        weights = (source.weights.take(candidates) if large
                   else source.weights.rows(0, n_samples))
        positive = np.count_nonzero(weights)
        if positive < n_components:
            raise ValueError(
                f"init_params='random_from_data' needs {n_components} rows of "
                f"positive weight to start from, found {positive}")
        return candidates[random_state.choice(candidates.size, size=n_components,
                                              replace=False, p=weights / weights.sum())]
    if large:
        return random_state.permutation(sample_rows(n_samples, n_components, random_state))
    return random_state.choice(n_samples, size=n_components, replace=False)


def kmeans_plusplus(X, n_clusters, random_state, chunk_size, n_threads, weights=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007), drawing random
    numbers exactly as scikit-learn's ``kmeans_plusplus`` does; with
    ``weights`` (n,) a row counts as that many copies (scikit-learn's
    sample_weight: the potentials are weighted sums).

    Returns (centers (K, D) float64, indices (K,)).
    """
    n_samples, n_features = X.shape
    n_local_trials = 2 + int(np.log(n_clusters))
    centers = np.empty((n_clusters, n_features))
    indices = np.empty(n_clusters, dtype=np.intp)
    n_threads = max(1, min(kernel_threads(None, n_threads), -(-n_samples // chunk_size)))

    if weights is None:
        p = np.full(n_samples, 1.0 / n_samples)
    else:
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        p = weights / weights.sum()
    center_id = random_state.choice(n_samples, p=p)
    centers[0] = X[center_id]
    indices[0] = center_id
    closest = np.full(n_samples, np.inf)
    _kmeans.update_closest(X, centers[0], closest, chunk_size, n_threads)
    current_pot = closest.sum() if weights is None else closest @ weights
    thread_pot = np.empty((n_threads, n_local_trials))
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        cumulative = np.cumsum(closest if weights is None else closest * weights)
        candidate_ids = np.searchsorted(cumulative, rand_vals)
        np.clip(candidate_ids, None, n_samples - 1, out=candidate_ids)
        candidates = np.ascontiguousarray(X[candidate_ids], dtype=np.float64)
        _kmeans.candidate_potentials(X, candidates, closest, chunk_size, thread_pot,
                                     weights)
        pots = thread_pot.sum(axis=0)
        best = int(np.argmin(pots))
        current_pot = pots[best]
        centers[c] = candidates[best]
        indices[c] = candidate_ids[best]
        _kmeans.update_closest(X, centers[c], closest, chunk_size, n_threads)
    return centers, indices


def plusplus_indices(rows, n_clusters, random_state, weights, chunk_size, n_threads,
                     shift=None):
    """Indices in ``rows`` (the seeding sample) of the k-means++ seeds, drawn
    as scikit-learn draws them on rows - ``shift`` (KMeans centers the data
    on its mean first; GaussianMixture's init_params="k-means++" does not)."""
    if rows.shape[0] * rows.shape[1] * rows.dtype.itemsize <= EXACT_SEEDING_BYTES:
        from sklearn.cluster import kmeans_plusplus as sklearn_plusplus
        rows = np.asarray(rows) if shift is None else np.asarray(rows) - shift
        return sklearn_plusplus(rows, n_clusters, sample_weight=weights,
                                random_state=random_state)[1]
    return kmeans_plusplus(rows, n_clusters, random_state, chunk_size, n_threads,
                           weights)[1]


def run(steps, X):
    """Drive a generator of passes: each (fn, args) it yields is answered
    with ``X.reduce(fn, *args)``; returns what the generator returns.
    Several such generators can share their passes (fastem/_shared_pass.py)."""
    source = as_source(X)
    try:
        fn, args = next(steps)
        while True:
            fn, args = steps.send(source.reduce(fn, *args))
    except StopIteration as stop:
        return stop.value


def kmeans(X, n_clusters, random_state, chunk_size, n_threads, max_iter=300, tol=1e-4):
    """k-means from k-means++ seeds, as scikit-learn's KMeans computes it
    (fastem/_lloyd.py); returns the (K, D) float64 centers whose nearest
    rows are the final labels."""
    labeller = run(kmeans_steps(X, n_clusters, random_state, chunk_size, n_threads,
                                max_iter, tol), X)
    return labeller.raw_centers


def kmeans_steps(X, n_clusters, random_state, chunk_size, n_threads, max_iter=300,
                 tol=1e-4):
    """k-means as a generator of its passes (see :func:`run`): k-means++
    seeds from the seeding sample, the data's mean, then Lloyd's
    iterations. Returns the _lloyd.Labeller of the final labels."""
    source = as_source(X)
    if source.weights is not None and _all_equal(source.weights, source.n_samples):
        source = copy.copy(source)  # equal weights: the unweighted draws and sums
        source.weights = None
    # BLAS on one thread throughout, as around scikit-learn's Lloyd loop: the
    # kernels call it from their own threads, and BLAS threads woken between
    # passes spin on the cores the next pass needs (digits, K = 60: 16 ms
    # instead of 31)
    with single_threaded_blas():
        rows, weights = seeding_rows(source, random_state)
        mean = yield from _lloyd.mean_steps(source, n_threads)
        indices = plusplus_indices(rows, n_clusters, random_state, weights, chunk_size,
                                   n_threads, shift=mean)
        return (yield from _lloyd.lloyd_steps(source, rows[indices], mean, n_threads,
                                              max_iter, tol))


def block_kmeans_stats(block, labeller, counter, covariance_type, shift, weights=None):
    """The first SuffStats of one block under k-means labels (one-hot
    responsibilities of the nearest center of a _lloyd.Labeller), about
    ``shift``; ``counter`` (a _lloyd.RowCounter) gives the block's first row."""
    n_clusters = labeller.centers.shape[0]
    first = counter.take(block.shape[0])

    def resp(start, stop, rows):
        labels = labeller.labels(rows, first + start)
        return (labels[:, np.newaxis] == np.arange(n_clusters)).astype(np.float64)

    return stats_from_resp(weighted_block(block, weights), covariance_type, resp, shift)


def weighted_block(block, weights):
    """A block with the weights of its rows, as a source."""
    from fastem._sources import ArraySource
    from fastem._weights import array_weights

    source = ArraySource(block)
    if weights is not None:
        source.weights = array_weights(weights)
    return source


def nearest(rows, centers, chunk_size, n_threads):
    """Index of each row's nearest center (the k-means labels)."""
    n_clusters, n_features = centers.shape
    n_threads = kernel_threads(None, n_threads)
    threads = max(1, min(n_threads, -(-rows.shape[0] // chunk_size)))
    sums = np.empty((threads, 1 + n_clusters + n_clusters * n_features))
    labels = np.empty(rows.shape[0], dtype=np.intp)
    _kmeans.lloyd_pass(rows, centers, chunk_size, labels, sums)
    return labels


def stats_from_resp(X, covariance_type, resp_block, shift):
    """SuffStats of X under given responsibilities, block by block.

    ``resp_block(start, stop, rows)`` returns the (stop - start, K)
    responsibilities of those rows; ``shift`` is the (K, D) float64 c_k
    (tied: equal rows). Weighted rows (X's weights) multiply them.
    """
    source = as_source(X)
    covtype = get(covariance_type)
    n_components, n_features = shift.shape
    nk = np.zeros(n_components)
    s1 = np.zeros((n_components, n_features))
    s2 = covtype.zeros_s2(n_components, n_features)
    with closing(iter_blocks(source)) as blocks:
        for start, stop, rows in blocks:
            block = np.asarray(rows, dtype=np.float64)
            resp = resp_block(start, stop, rows)
            weights = None
            if source.weights is not None:
                weights = source.weights.rows(start, stop)
                resp = resp * weights[:, np.newaxis]
            nk += resp.sum(axis=0)
            covtype.accumulate(block, resp, shift, s1, s2, weights)
    return SuffStats(covtype, source.total_weight, 0.0, nk, s1, s2, shift)


def seeded_stats(X, covariance_type, init_params, n_components, random_state, chunk_size,
                 n_threads):
    """The first SuffStats of init_params "random_from_data" (seeds drawn
    from the rows) or "k-means++" (seeds by k-means++): responsibility 1 at
    each seed's row (times its weight for weighted rows)."""
    source = as_source(X)
    if init_params == "random_from_data":
        indices = seed_row_indices(source, n_components, random_state)
        seeds = rows_at(source, indices)
        seed_weights = (None if source.weights is None
                        else _taken_in_order(source.weights.take, indices))
    else:
        rows, row_weights = seeding_rows(source, random_state)
        indices = plusplus_indices(rows, n_components, random_state, row_weights,
                                   chunk_size, n_threads)
        seeds = np.asarray(rows[indices], dtype=np.float64)
        seed_weights = None if row_weights is None else row_weights[indices]
    return sparse_resp_stats(source, covariance_type, seeds, seed_weights)


def _all_equal(weights, n_samples):
    """Whether all weights are equal: then draws are the unweighted ones."""
    first = weights.rows(0, 1)[0]
    return all(np.all(weights.rows(a, b) == first) for a, b in _blocks(n_samples, 1 << 20))


def sparse_resp_stats(X, covariance_type, seeds, seed_weights=None):
    """SuffStats of responsibilities that are 1 at the row of seeds[k] for
    component k and 0 elsewhere (init_params "random_from_data" and
    "k-means++"), computed as scikit-learn's formulas do: in particular its
    tied estimate uses X^T X over all rows. For weighted rows
    ``seed_weights`` are the seed rows' weights (the responsibilities
    times the weights), so that scaling all weights changes nothing."""
    seeds = np.asarray(seeds, dtype=np.float64)
    n_components, n_features = seeds.shape

    def gram():
        # a pass over the data, made only if the covariance type asks
        return as_source(X).reduce(block_gram)

    covtype = get(covariance_type)
    s1, s2, shift = covtype.seed_stats(seeds, gram)
    nk = np.ones(n_components)
    if seed_weights is not None:
        # s1 = sum r (x - c) is the seed's difference times its weight (s2
        # is zero about the seeds, or the tied gram of all rows, weighted)
        nk = np.asarray(seed_weights, dtype=np.float64)
        s1 = s1 * nk[:, np.newaxis]
    return SuffStats(covtype, as_source(X).total_weight, 0.0, nk, s1, s2, shift)


def block_gram(rows, weights=None):
    """X^T X (weighted rows: X^T W X) of a block of rows in float64, summed
    over pieces of _BLOCK_ROWS rows (float32 rows are converted a piece at
    a time)."""
    n_features = rows.shape[1]
    gram = np.zeros((n_features, n_features))
    for start, stop in _blocks(rows.shape[0]):
        block = np.asarray(rows[start:stop], dtype=np.float64)
        weighted = block if weights is None else block * weights[start:stop, np.newaxis]
        gram += weighted.T @ block
    return gram


def rows_at(X, indices):
    """X[indices] (any order, distinct) of a RowSource or an array."""
    return _taken_in_order(as_source(X).take, indices)


def _taken_in_order(take, indices):
    """take(indices) for indices in any order (distinct), where ``take``
    wants them sorted (a source's rows, a RowWeights' weights)."""
    order = np.argsort(indices)
    taken = take(np.asarray(indices)[order])
    out = np.empty_like(taken)
    out[order] = taken
    return out

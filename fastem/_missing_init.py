"""Initialisation on data with gaps (missing="em"): the four init_params
strategies of fastem._init, on the observed coordinates.

k-means uses partial distances: the squared distance over a row's observed
coordinates, rescaled by D / (observed count) so that rows with gaps are
compared with full rows on the same footing; centers are means over the
observed entries of each coordinate; k-means++ draws its seeds with the same
distances. The first statistics then need complete rows: each row's gaps
take its k-means center's coordinates (for init_params="kmeans") or the
observed mean of the column (for the others, and for seeds drawn from rows
with gaps). EM's first iteration replaces them by conditional expectations.
"""
from __future__ import annotations

import numpy as np

from fastem import _init
from fastem._missing import gap_rows
from fastem._sources import RowSource, as_source


def has_gaps(X):
    """Whether any row of X (a RowSource) has a NaN; one pass when streamed."""
    source = as_source(X)
    return bool(source.reduce(_block_gap_count))


def _block_gap_count(block, weights=None):
    return int(gap_rows(block).size)


class Filled(RowSource):
    """The rows of a source with their gaps filled by ``fill(rows)``
    (returns a filled copy): a source for the initialisation's passes."""

    def __init__(self, source, fill):
        self.source, self.fill = source, fill
        self.shape, self.dtype = source.shape, source.dtype
        self.n_samples, self.n_features = source.n_samples, source.n_features
        self.streamed, self.weights = source.streamed, source.weights

    def blocks(self):
        from contextlib import closing
        with closing(self.source.blocks()) as blocks:
            for start, stop, block in blocks:
                yield start, stop, self.fill(block)

    def rows(self, start, stop):
        return self.fill(self.source.rows(start, stop))

    def take(self, indices):
        return self.fill(self.source.take(indices))


def _moments(block, weights=None):
    """(weight, sum, sum of squares) of each column's observed entries."""
    observed = ~np.isnan(block)
    x = np.where(observed, block, 0.0)
    w = np.ones(block.shape[0]) if weights is None else weights
    return np.stack([w @ observed, w @ x, w @ (x * x)])


def column_means(source):
    """(observed mean of each column (D,), mean over columns of the observed
    variances): the fill of gaps, and k-means' tolerance scale."""
    count, total, squares = source.reduce(_moments)
    if np.any(count == 0):
        column = int(np.argmax(count == 0))
        raise ValueError(f"column {column} of X has no observed value (of positive "
                         "weight): it cannot be fitted")
    mean = total / count
    variance = np.maximum(squares / count - mean**2, 0.0)
    return mean, float(variance.mean())


def fill_with(values):
    """A fill: each gap of a row takes values[column]."""
    def fill(rows):
        rows = np.array(rows, dtype=np.float64)
        gaps = np.isnan(rows)
        rows[gaps] = np.broadcast_to(values, rows.shape)[gaps]
        return rows
    return fill


def partial_sqdist(rows, centers):
    """(n, K) squared distances over each row's observed coordinates,
    rescaled by D / (its observed count)."""
    observed = ~np.isnan(rows)
    x = np.where(observed, rows, 0.0)
    d = ((x * x).sum(axis=1)[:, np.newaxis] - 2.0 * x @ centers.T
         + observed.astype(np.float64) @ (centers * centers).T)
    d *= rows.shape[1] / observed.sum(axis=1)[:, np.newaxis]
    return np.maximum(d, 0.0)


def kmeans_plusplus(rows, weights, n_clusters, random_state, fill):
    """k-means++ seeding (scikit-learn's draws) with partial distances;
    seeds' gaps filled by ``fill``. Returns (centers (K, D), indices)."""
    rows = np.asarray(rows, dtype=np.float64)
    n_samples = rows.shape[0]
    w = np.ones(n_samples) if weights is None else np.asarray(weights, dtype=np.float64)
    n_local_trials = 2 + int(np.log(n_clusters))
    indices = np.empty(n_clusters, dtype=np.intp)
    indices[0] = random_state.choice(n_samples, p=w / w.sum())
    centers = np.empty((n_clusters, rows.shape[1]))
    centers[0] = fill(rows[indices[0]][np.newaxis])[0]
    closest = partial_sqdist(rows, centers[:1])[:, 0]
    current_pot = closest @ w
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        candidate_ids = np.searchsorted(np.cumsum(closest * w), rand_vals)
        np.clip(candidate_ids, None, n_samples - 1, out=candidate_ids)
        candidates = fill(rows[candidate_ids])
        distances = np.minimum(partial_sqdist(rows, candidates), closest[:, np.newaxis])
        pots = w @ distances
        best = int(np.argmin(pots))
        current_pot = pots[best]
        closest = distances[:, best]
        centers[c] = candidates[best]
        indices[c] = candidate_ids[best]
    return centers, indices


def _lloyd_sums(block, centers, weights=None):
    labels = partial_sqdist(block, centers).argmin(axis=1)
    observed = ~np.isnan(block)
    onehot = (labels[:, np.newaxis] == np.arange(centers.shape[0])).astype(np.float64)
    if weights is not None:
        onehot *= weights[:, np.newaxis]
    return np.stack([onehot.T @ np.where(observed, block, 0.0), onehot.T @ observed])


def kmeans(source, n_clusters, random_state, fill, variance, max_iter=300, tol=1e-4):
    """Lloyd's algorithm with partial distances, from k-means++ seeds;
    scikit-learn's stopping rule (squared center shift <= tol x mean
    variance). A center keeps a coordinate no member observes."""
    rows, weights = _init.seeding_rows(source, random_state)
    centers, _ = kmeans_plusplus(rows, weights, n_clusters, random_state, fill)
    for _ in range(max_iter):
        sums, counts = source.reduce(_lloyd_sums, centers)
        new = np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), centers)
        shift = float(np.sum((new - centers) ** 2))
        centers = new
        if shift <= tol * variance:
            break
    return centers


def _nearest_center_fill(centers):
    """A fill: each gap of a row takes its nearest center's coordinate."""
    def fill(rows):
        rows = np.array(rows, dtype=np.float64)
        gaps = np.isnan(rows)
        if gaps.any():
            labels = partial_sqdist(rows, centers).argmin(axis=1)
            rows[gaps] = centers[labels][gaps]
        return rows
    return fill


def initial_stats(gm, X, random_state):
    """The first SuffStats of gm.init_params on a source X with gaps."""
    source = as_source(X)
    K, covariance_type = gm.n_components, gm.covariance_type
    means, variance = column_means(source)
    by_mean = fill_with(means)
    if gm.init_params == "kmeans":
        engine = gm._engine
        centers = kmeans(source, K, random_state, by_mean, variance)
        filled = Filled(source, _nearest_center_fill(centers))

        def kmeans_resp(start, stop, rows):
            # a filled row's nearest center is its partial-distance one
            labels = _init.nearest(rows, centers, engine.chunk_size, engine.max_threads)
            return (labels[:, np.newaxis] == np.arange(K)).astype(np.float64)

        return _init.stats_from_resp(filled, covariance_type, kmeans_resp,
                                     gm._init_shift(centers))
    filled = Filled(source, by_mean)
    if gm.init_params == "random":
        return _init.stats_from_resp(filled, covariance_type, gm._random_resp(random_state),
                                     gm._random_init_shift(filled))
    if gm.init_params == "random_from_data":
        return _init.seeded_stats(filled, covariance_type, "random_from_data", K,
                                  random_state, gm._engine.chunk_size, gm._engine.max_threads)
    rows, weights = _init.seeding_rows(source, random_state)
    seeds, indices = kmeans_plusplus(rows, weights, K, random_state, by_mean)
    return _init.sparse_resp_stats(filled, covariance_type, seeds,
                                   None if weights is None else weights[indices])

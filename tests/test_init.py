"""k-means++ seeding and Lloyd iterations against scikit-learn and NumPy."""
import numpy as np
import pytest
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus

import fastem
from fastem import _init


def data(seed=0, n=3000, d=3, k=5):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(k, d))
    return np.concatenate([rng.normal(c, 1.0, size=(n // k, d)) for c in centers])


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_plusplus_picks_scikit_learns_seeds(n_threads, dtype):
    X = data().astype(dtype)
    for seed in range(3):
        _, ref = sk_kmeans_plusplus(X, 5, random_state=np.random.RandomState(seed))
        centers, idx = _init.kmeans_plusplus(X, 5, np.random.RandomState(seed),
                                             chunk_size=100, n_threads=n_threads)
        np.testing.assert_array_equal(idx, ref)
        np.testing.assert_array_equal(centers, X[idx].astype(np.float64))


def lloyd_reference(X, centers, n_iter):
    for _ in range(n_iter):
        d = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
        labels = d.argmin(axis=1)
        centers = np.array([X[labels == k].mean(axis=0) if np.any(labels == k)
                            else centers[k] for k in range(len(centers))])
    d = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    return centers, d.argmin(axis=1)


def test_kmeans_matches_plain_lloyd():
    X = data(seed=1, d=2, k=4)
    centers = _init.kmeans(X, 4, np.random.RandomState(0), chunk_size=128,
                           n_threads=2, max_iter=300, tol=0.0)
    labels = _init.nearest(X, centers, 128, 2)
    centered = X - X.mean(axis=0)
    _, seeds = sk_kmeans_plusplus(centered, 4, random_state=np.random.RandomState(0))
    seeds = X[seeds]
    ref_centers, ref_labels = lloyd_reference(X, seeds, 100)
    np.testing.assert_allclose(centers, ref_centers, rtol=1e-10)
    np.testing.assert_array_equal(labels, ref_labels)


def test_lloyd_pass_is_chunk_and_thread_invariant():
    from fastem._kernels import _kmeans
    X = data(seed=2, n=1001)
    centers = X[:5].copy()
    results = []
    for chunk, threads in [(1001, 1), (7, 2), (64, 2)]:
        sums = np.empty((threads, 1 + 5 + 5 * 3))
        labels = np.empty(len(X), dtype=np.intp)
        _kmeans.lloyd_pass(X, centers, chunk, labels, sums)
        results.append((sums.sum(axis=0), labels))
    for total, labels in results[1:]:
        np.testing.assert_allclose(total, results[0][0], rtol=1e-12)
        np.testing.assert_array_equal(labels, results[0][1])


def test_passes_over_a_streamed_source_match_the_array(tmp_path):
    # the init's passes are reductions over the source's blocks: many small
    # blocks give the array's answers
    from fastem import _lloyd
    from fastem._sources import as_source
    X = data(seed=4, n=5000)
    np.save(tmp_path / "X.npy", X)
    source = as_source(tmp_path / "X.npy", block_bytes=24 * 333)
    assert len(list(source.blocks())) > 10
    # the mean's columns are added in row order, block after block
    np.testing.assert_array_equal(_init.run(_lloyd.mean_steps(source, 2), source),
                                  X.mean(axis=0))
    centers = _init.kmeans(source, 5, np.random.RandomState(0), 64, 2)
    np.testing.assert_array_equal(centers, _init.kmeans(X, 5, np.random.RandomState(0),
                                                        64, 2))
    np.testing.assert_allclose(_init.block_gram(X), X.T @ X, rtol=1e-12)
    indices = np.array([4000, 3, 17, 2500])
    np.testing.assert_array_equal(_init.rows_at(source, indices), X[indices])


def test_a_seeding_sample_is_read_once_for_the_fits_that_draw_it():
    from fastem._sources import as_source
    X = np.random.default_rng(0).normal(size=(_init.SEEDING_SAMPLE + 20_000, 2))
    reads = []

    class Counted:
        shape, dtype = X.shape, X.dtype

        def __getitem__(self, rows):
            reads.append(rows)
            return X[rows]

    source = as_source(fastem.Streamed(Counted()))
    first, _ = _init.seeding_rows(source, np.random.RandomState(0))
    n_reads = len(reads)
    assert n_reads > 0
    again, _ = _init.seeding_rows(source, np.random.RandomState(0))
    assert len(reads) == n_reads and again is first and not again.flags.writeable
    other, _ = _init.seeding_rows(source, np.random.RandomState(1))
    assert len(reads) > n_reads and not np.array_equal(other, first)
    np.testing.assert_array_equal(first, X[_init.sample_rows(len(X), _init.SEEDING_SAMPLE,
                                                             np.random.RandomState(0))])

"""init_params="kmeans" as scikit-learn's KMeans computes it: the kernels of
fastem/_kernels/_lloyd.pyx against scikit-learn's own Lloyd step and plain
NumPy, and the whole k-means (labels, then a fit's first lower bound)
against scikit-learn's on data full of exact ties."""
import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import row_norms
from threadpoolctl import threadpool_limits

import fastem
from fastem import _init, _lloyd
from fastem._kernels import _lloyd as kernels
from fastem._sources import as_source

sk_lloyd = pytest.importorskip("sklearn.cluster._k_means_lloyd")


def grid(n, d, seed, dtype=np.float64):
    """Rows on a 0.1 grid: many rows equally near two centers."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(n, d)) * 0.1 + rng.integers(0, 2, size=d) * 0.37
    return X.astype(dtype)


def few_points(n, d, n_points, seed):
    """Rows repeating a few points: clusters go empty and are relocated."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n_points, d))
    return points[rng.integers(0, n_points, size=n)]


def sklearn_labels(Xc, centers):
    labels = np.full(len(Xc), -1, dtype=np.int32)
    K = len(centers)
    dtype = Xc.dtype
    sk_lloyd.lloyd_iter_chunked_dense(Xc, np.ones(len(Xc), dtype), centers, centers.copy(),
                                      np.zeros(K, dtype), labels, np.zeros(K, dtype), 2,
                                      update_centers=False)
    return labels


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,d,k", [(1, 3, 1), (150, 4, 64), (700, 33, 57), (300, 128, 9),
                                   (600, 300, 30), (257, 1, 5)])
def test_nearest_is_scikit_learns_lloyd_step_bit_for_bit(dtype, n, d, k):
    # same chunks, same GEMM: every distance is the same number, so ties
    # go the same way
    X = grid(n, d, seed=n + d, dtype=dtype)
    mean = X.mean(axis=0)
    Xc = X - mean
    centers = Xc[np.random.default_rng(0).integers(0, n, size=k)].copy()
    labels = np.empty(n, dtype=np.intp)
    kernels.nearest(X, 0, mean, centers, row_norms(centers, squared=True), labels, 2)
    np.testing.assert_array_equal(labels, sklearn_labels(Xc, centers))


def test_nearest_of_a_block_uses_the_datas_chunks():
    X = grid(1000, 7, seed=1)
    mean = X.mean(axis=0)
    centers = (X[:20] - mean).copy()
    norms = row_norms(centers, squared=True)
    whole = np.empty(1000, dtype=np.intp)
    kernels.nearest(X, 0, mean, centers, norms, whole, 2)
    part = np.empty(488, dtype=np.intp)
    kernels.nearest(X[512:], 512, mean, centers, norms, part, 1)
    np.testing.assert_array_equal(part, whole[512:])


def fold_reference(X, mean, labels, bounds, K, weights=None):
    """Sums per share of w (x - mean), rows added one after another."""
    dtype = X.dtype
    P = len(bounds) - 1
    sums = np.zeros((P, K, X.shape[1]), dtype)
    counts = np.zeros((P, K), dtype)
    squares = np.zeros(X.shape[1], dtype)
    for i in range(len(X)):
        p = np.searchsorted(bounds, i, side="right") - 1
        w = dtype.type(1) if weights is None else dtype.type(weights[i])
        x = X[i] - mean
        sums[p, labels[i]] += x * w if weights is not None else x
        counts[p, labels[i]] += w
        squares += w * (x * x) if weights is not None else x * x
    return sums, counts, squares


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_fold_adds_rows_in_order_within_each_share(dtype, weighted):
    X = (np.random.default_rng(3).normal(size=(1300, 6)) * 10).astype(dtype)
    weights = np.random.default_rng(4).uniform(0, 3, 1300).astype(dtype) if weighted else None
    mean = X.mean(axis=0)
    centers = (X[:5] - mean).copy()
    norms = row_norms(centers, squared=True)
    labels = np.empty(1300, dtype=np.intp)
    kernels.nearest(X, 0, mean, centers, norms, labels, 2)
    bounds = _lloyd.thread_shares(1300, 3)
    ref = fold_reference(X, mean, labels, bounds, 5, weights)

    def fold(pieces, n_threads, squares):
        out = [np.zeros((3, 5, 6), dtype), np.zeros((3, 5), dtype),
               np.zeros(6 if squares else 0, dtype), np.zeros(1, np.uint64)]
        for a, b in pieces:
            kernels.lloyd_fold(X[a:b], a, mean, centers, norms, bounds, *out,
                               None if weights is None else weights[a:b], n_threads)
        return out

    # whole: the shares in parallel; in blocks (or with the squares): the
    # columns in parallel; one thread: in order
    runs = [fold([(0, 1300)], 2, False), fold([(0, 1300)], 1, False),
            fold([(0, 256), (256, 700), (700, 1300)], 2, False),
            fold([(0, 1300)], 2, True)]
    for sums, counts, _, label_hash in runs:
        np.testing.assert_array_equal(sums, ref[0])
        np.testing.assert_array_equal(counts, ref[1])
        assert label_hash[0] == runs[0][3][0]
    np.testing.assert_array_equal(runs[3][2], ref[2])


def test_label_hash_tells_one_changed_label():
    X = grid(600, 3, seed=5)
    mean = X.mean(axis=0)
    bounds = _lloyd.thread_shares(600, 2)

    def label_hash(centers):
        centers = np.ascontiguousarray(centers)
        out = [np.zeros((2, len(centers), 3)), np.zeros((2, len(centers))), np.zeros(0),
               np.zeros(1, np.uint64)]
        kernels.lloyd_fold(X, 0, mean, centers, row_norms(centers, squared=True), bounds,
                           *out, None, 2)
        return int(out[3][0])

    centers = X[[0, 100, 200]] - mean
    moved = centers.copy()
    far = np.argmax(((X - mean - centers[0]) ** 2).sum(axis=1))
    moved[2] = X[far] - mean  # takes at least the row it sits on
    assert label_hash(centers) == label_hash(centers.copy())
    assert label_hash(centers) != label_hash(moved)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_sums_are_numpys_sums_over_rows(dtype):
    X = (np.random.default_rng(6).normal(size=(5000, 7)) * 1e3).astype(dtype)
    sums, total = np.zeros(7, dtype), np.zeros(1, dtype)
    kernels.column_sums(X[:1234], sums, total, None, 2)
    kernels.column_sums(X[1234:], sums, total, None, 2)
    np.testing.assert_array_equal(sums, X.sum(axis=0))
    assert total[0] == 5000


def test_thread_shares_follow_openmps_static_schedule():
    # 5 chunks on 2 threads: 3 and 2; fewer chunks than threads: one each
    np.testing.assert_array_equal(_lloyd.thread_shares(1200, 2), [0, 768, 1200])
    np.testing.assert_array_equal(_lloyd.thread_shares(300, 8), [0, 256, 300])
    np.testing.assert_array_equal(_lloyd.thread_shares(100, 4), [0, 100])


def kmeans_labels(X, K, seed, source=None):
    source = as_source(X) if source is None else source
    labeller = _init.run(_init.kmeans_steps(source, K, np.random.RandomState(seed), 128, 2),
                         source)
    return labeller.labels(X, 0)


def standardised_iris():
    return StandardScaler().fit_transform(load_iris().data)


CASES = [
    ("iris", standardised_iris, 64, 0),
    ("iris", standardised_iris, 72, 2),
    ("grid", lambda: grid(700, 4, seed=7), 40, 1),
    ("grid", lambda: grid(2000, 13, seed=8), 25, 3),
    ("grid float32", lambda: grid(1500, 5, seed=9, dtype=np.float32), 30, 4),
    ("few points", lambda: few_points(900, 3, 12, seed=10), 20, 5),
]


@pytest.mark.parametrize("name,make,K,seed", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("threads", [1, 2])
def test_kmeans_labels_are_scikit_learns(name, make, K, seed, threads):
    X = make()
    with threadpool_limits(threads, user_api="openmp"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = KMeans(K, n_init=1, random_state=np.random.RandomState(seed)).fit(X).labels_
        labels = kmeans_labels(X, K, seed)
    np.testing.assert_array_equal(labels, expected)


def test_kmeans_labels_from_a_file_are_scikit_learns(tmp_path):
    X = grid(3000, 6, seed=11)
    np.save(tmp_path / "X.npy", X)
    source = as_source(str(tmp_path / "X.npy"), block_bytes=300 * 48)
    assert len(list(source.blocks())) > 5
    expected = KMeans(30, n_init=1, random_state=np.random.RandomState(0)).fit(X).labels_
    np.testing.assert_array_equal(kmeans_labels(X, 30, 0, source), expected)


@pytest.mark.parametrize("K,seed", [(20, 0), (28, 123), (72, 2), (80, 42)])
def test_a_fit_on_standardised_iris_starts_where_scikit_learns_does(K, seed):
    # rows equally near two centers, to the last bit in exact arithmetic,
    # took the other center before (issue: first lower bound 5.42 vs 5.22)
    X = standardised_iris()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fastem.GaussianMixture(K, random_state=seed, max_iter=1).fit(X)
        theirs = SkGaussianMixture(K, random_state=seed, max_iter=1).fit(X)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-8)


STEP_CASES = [
    ("normal", lambda: np.random.default_rng(12).normal(size=(3000, 5)) * 1e3, 7),
    ("float32", lambda: (np.random.default_rng(13).normal(size=(2600, 9)) * 1e3)
     .astype(np.float32), 6),
    ("empty clusters", lambda: np.random.default_rng(14).normal(size=(1000, 3)), 9),
    ("13 wide-ranging features",
     lambda: np.random.default_rng(16).normal(size=(4000, 13)) * np.logspace(0, 6, 13), 150),
]


@pytest.mark.parametrize("name,make,K", STEP_CASES, ids=[c[0] for c in STEP_CASES])
@pytest.mark.parametrize("threads", [1, 2])
def test_one_lloyd_step_is_scikit_learns_bit_for_bit(name, make, K, threads):
    # the shares' order of additions, relocation of empty clusters, the
    # reciprocal in the average and the shift all show in the last bits
    X = make()
    dtype = X.dtype
    mean = X.mean(axis=0)
    Xc = X - mean
    rng = np.random.default_rng(K)
    centers = Xc[rng.choice(len(X), K, replace=False)].copy()
    if name == "empty clusters":
        centers[K - 2:] = centers[0]  # twin centers: nothing is nearer to them
    new = np.zeros_like(centers)
    weight = np.zeros(K, dtype)
    shift = np.zeros(K, dtype)
    labels = np.full(len(X), -1, dtype=np.int32)
    sk_lloyd.lloyd_iter_chunked_dense(Xc, np.ones(len(X), dtype), centers, new, weight,
                                      labels, shift, threads)
    source = as_source(X)
    step = _init.run(_lloyd.lloyd_step(source, _lloyd.Labeller(mean, centers, 2),
                                       _lloyd.thread_shares(len(X), threads)), source)
    np.testing.assert_array_equal(step.centers, new)
    np.testing.assert_array_equal(step.weight, weight)
    np.testing.assert_array_equal(step.shifts, shift)
    assert step.shift == (shift ** 2).sum()
    if name == "empty clusters":
        assert weight.all()  # relocated to the farthest rows


@pytest.mark.parametrize("threads", [1, 2])
def test_centers_after_some_iterations_are_scikit_learns_bit_for_bit(threads):
    # the shares are scikit-learn's threads' (OpenMP's count, not fastem's)
    X = np.random.default_rng(15).normal(size=(5000, 4)) * 1e3
    with threadpool_limits(threads, user_api="openmp"):
        expected = KMeans(6, n_init=1, max_iter=3, tol=0.0,
                          random_state=np.random.RandomState(0)).fit(X).cluster_centers_
        centers = _init.kmeans(X, 6, np.random.RandomState(0), 128, 2, max_iter=3, tol=0.0)
    np.testing.assert_array_equal(centers, expected)


def test_a_failed_allocation_raises_memory_error():
    X = grid(1000, 5, seed=17)
    mean = X.mean(axis=0)
    centers = (X[:4] - mean).copy()
    norms = row_norms(centers, squared=True)
    bounds = _lloyd.thread_shares(1000, 2)

    def fold(rows, first):
        out = [np.zeros((2, 4, 5)), np.zeros((2, 4)), np.zeros(0), np.zeros(1, np.uint64)]
        kernels.lloyd_fold(rows, first, mean, centers, norms, bounds, *out, None, 2)
        return out

    kernels._set_refuse_allocations(True)
    try:
        with pytest.raises(MemoryError, match="k-means"):
            kernels.nearest(X, 0, mean, centers, norms, np.empty(1000, np.intp), 2)
        with pytest.raises(MemoryError, match="k-means"):
            fold(X, 0)  # the shares in parallel
        with pytest.raises(MemoryError, match="k-means"):
            fold(X[:300], 0)  # one share, its columns in parallel
        with pytest.raises(MemoryError):
            fastem.GaussianMixture(3, random_state=0).fit(X)
    finally:
        kernels._set_refuse_allocations(False)
    np.testing.assert_array_equal(fold(X, 0)[0], fold_reference(X, mean, kmeans_nearest(
        X, mean, centers, norms), bounds, 4)[0])


def kmeans_nearest(X, mean, centers, norms):
    labels = np.empty(len(X), dtype=np.intp)
    kernels.nearest(X, 0, mean, centers, norms, labels, 2)
    return labels


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
@pytest.mark.parametrize("K,seed", [(72, 0), (100, 2)])
def test_kmeans_plusplus_breaks_ties_between_candidates_as_scikit_learn(init_params, K, seed):
    # late in the seeding, two candidates can leave equal potentials in
    # exact arithmetic; scikit-learn's own rounding chooses
    X = standardised_iris()
    kw = dict(n_components=K, random_state=seed, max_iter=1, init_params=init_params,
              covariance_type="diag", reg_covar=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fastem.GaussianMixture(**kw).fit(X)
        theirs = SkGaussianMixture(**kw).fit(X)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-8)

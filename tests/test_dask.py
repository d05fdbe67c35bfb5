"""Distributed EM on dask arrays, against the in-memory fit, on a real
LocalCluster of two worker processes and on dask's local scheduler."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from fastem import GaussianMixture  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

COV_TYPES = ["full", "tied", "diag", "spherical"]


def mixture_data(n=3000, d=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    return centers[labels] + rng.normal(size=(n, d))


def fixed_start(X, covariance_type, k=3):
    rng = np.random.default_rng(1)
    d = X.shape[1]
    precisions = {"full": np.tile(np.eye(d), (k, 1, 1)), "tied": np.eye(d),
                  "diag": np.ones((k, d)), "spherical": np.ones(k)}[covariance_type]
    return dict(n_components=k, covariance_type=covariance_type,
                weights_init=np.full(k, 1.0 / k),
                means_init=X[rng.choice(len(X), k, replace=False)],
                precisions_init=precisions, tol=0.0, max_iter=6)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_cluster_fit_matches_in_memory(client, covariance_type):
    X = mixture_data()
    params = fixed_start(X, covariance_type)
    ref = GaussianMixture(**params).fit(X)
    with client.as_current():
        gm = GaussianMixture(**params).fit(da.from_array(X, chunks=(700, 3)))
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-8)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-8, atol=1e-10)


def test_kernels_run_on_the_workers_one_task_per_block_and_iteration(client):
    X = mixture_data()
    params = fixed_start(X, "full")
    dX = da.from_array(X, chunks=(500, 3))  # 6 blocks
    with client.as_current(), distributed.get_task_stream(client) as stream:
        gm = GaussianMixture(**params).fit(dX)
    stats_tasks = [t for t in stream.data if str(t["key"]).startswith("('_block_stats")
                   or str(t["key"]).startswith("_block_stats")]
    assert len(stats_tasks) == 6 * gm.n_iter_
    workers = {t["worker"] for t in stats_tasks}
    assert workers <= set(client.scheduler_info()["workers"])
    assert len(workers) == 2  # both worker processes did kernel work


def test_cluster_results_do_not_depend_on_the_chunking(client):
    X = mixture_data(seed=2)
    params = fixed_start(X, "diag")
    with client.as_current():
        a = GaussianMixture(**params).fit(da.from_array(X, chunks=(256, 3)))
        b = GaussianMixture(**params).fit(da.from_array(X, chunks=(1500, (1, 2))))
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)


def test_cluster_scoring_is_lazy_and_matches_in_memory(client):
    X = mixture_data(seed=3)
    params = fixed_start(X, "full")
    ref = GaussianMixture(**params).fit(X)
    dX = da.from_array(X, chunks=(700, 3))
    with client.as_current():
        gm = GaussianMixture(**params).fit(dX)
        labels, proba, ll = gm.predict(dX), gm.predict_proba(dX), gm.score_samples(dX)
        assert all(isinstance(a, da.Array) for a in (labels, proba, ll))
        np.testing.assert_array_equal(labels.compute(), ref.predict(X))
        np.testing.assert_allclose(proba.compute(), ref.predict_proba(X), rtol=1e-7,
                                   atol=1e-12)
        np.testing.assert_allclose(ll.compute(), ref.score_samples(X), rtol=1e-9)
        assert gm.score(dX) == pytest.approx(ref.score(X), rel=1e-10)
        assert gm.bic(dX) == pytest.approx(ref.bic(X), rel=1e-10)
        assert gm.aic(dX) == pytest.approx(ref.aic(X), rel=1e-10)


def test_cluster_float32_outputs_are_float32(client):
    X32 = mixture_data(seed=3).astype(np.float32)
    ref = GaussianMixture(3, random_state=0).fit(X32)
    dX = da.from_array(X32, chunks=(700, 3))
    with client.as_current():
        proba, ll = ref.predict_proba(dX), ref.score_samples(dX)
        assert proba.dtype == ll.dtype == np.float32  # the lazy arrays' dtype
        np.testing.assert_array_equal(proba.compute(), ref.predict_proba(X32))
        np.testing.assert_array_equal(ll.compute(), ref.score_samples(X32))
        assert proba.compute().dtype == np.float32


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_cluster_initialisation_matches_in_memory(client, init):
    # fewer rows than the seeding sample: the same seeds, the same draws
    X = mixture_data(n=2000, seed=4)
    params = dict(n_components=3, init_params=init, random_state=5, tol=0.0, max_iter=4)
    ref = GaussianMixture(**params).fit(X)
    with client.as_current():
        gm = GaussianMixture(**params).fit(da.from_array(X, chunks=(600, 3)))
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-8)


def test_partial_fit_takes_dask_batches(client):
    X = mixture_data(seed=6)
    ref = GaussianMixture(3, random_state=0).partial_fit(X[:1500]).partial_fit(X[1500:])
    with client.as_current():
        gm = GaussianMixture(3, random_state=0)
        gm.partial_fit(da.from_array(X[:1500], chunks=400))
        gm.partial_fit(da.from_array(X[1500:], chunks=400))
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-8)


def _fail(block):
    raise RuntimeError("disk of worker lost")


def test_a_failing_task_surfaces_on_the_driver(client):
    dX = da.from_array(mixture_data(), chunks=(700, 3)).map_blocks(
        lambda b: _fail(b) if b[0, 0] > 1e9 or b.shape[0] < 700 else b, dtype=float)
    with client.as_current(), pytest.raises(RuntimeError, match="disk of worker lost"):
        GaussianMixture(3, random_state=0).fit(dX)


def test_nan_on_the_cluster_names_the_row(client):
    X = mixture_data()
    X[2222, 0] = np.nan
    with client.as_current(), pytest.raises(ValueError, match="NaN.*row 2222"):
        GaussianMixture(3).fit(da.from_array(X, chunks=(700, 3)))


def test_local_scheduler_fit_matches_in_memory():
    X = mixture_data(seed=7)
    params = fixed_start(X, "tied")
    ref = GaussianMixture(**params).fit(X)
    gm = GaussianMixture(**params).fit(da.from_array(X, chunks=(800, 3)))
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-8)
    assert gm.predict(da.from_array(X, chunks=800)).compute().tolist() == \
        ref.predict(X).tolist()


_TOGETHER = {}


def _stats_when_both_run(block, engine, params):
    from fastem import _engine
    _TOGETHER["barrier"].wait()
    return _engine._block_stats(block, engine, params)


def test_tasks_running_together_share_the_workers_threads(monkeypatch):
    # one worker of two threads running two kernel tasks at once: each task
    # gets one thread, not two (threads multiplying to nthreads squared)
    import threading

    from fastem import _engine
    from fastem._dask import DaskData

    X = mixture_data(n=4000)
    gm = GaussianMixture(**fixed_start(X, "full"))
    gm._check_parameters(X)
    kp = gm._engine.kernel_params(gm.weights_init, gm.means_init,
                                  np.tile(np.eye(3), (3, 1, 1)), X.dtype)
    used = []
    em_pass = _engine._em.em_pass

    def recording_em_pass(*args):
        used.append(args[8])  # the kernel's thread count
        # neither task may finish (and so stop counting as running) before
        # the other has chosen its threads
        chosen = _TOGETHER.get("chosen")
        if chosen is not None:
            chosen.wait()
        return em_pass(*args)

    monkeypatch.setattr(_engine._em, "em_pass", recording_em_pass)
    monkeypatch.setitem(_TOGETHER, "barrier", threading.Barrier(2, timeout=30))
    monkeypatch.setitem(_TOGETHER, "chosen", threading.Barrier(2, timeout=30))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, client.as_current():
        data = DaskData(da.from_array(X, chunks=(2000, 3)), [np.float64])
        stats = data.reduce(_stats_when_both_run, gm._engine, kp)
    _TOGETHER["chosen"] = None
    assert used == [1, 1]
    ref = gm._engine.em_stats(X, kp)
    np.testing.assert_allclose(stats.s2, ref.s2, rtol=1e-10)


def test_cluster_fit_with_gaps_and_weights_matches_in_memory(client):
    X = mixture_data(seed=4)
    rng = np.random.default_rng(5)
    X[rng.uniform(size=X.shape) < 0.15] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    weights = rng.uniform(0, 2, size=len(X))
    params = dict(fixed_start(np.nan_to_num(X), "full"), missing="em")
    ref = GaussianMixture(**params).fit(X, sample_weight=weights)
    with client.as_current():
        data = da.from_array(X, chunks=(700, 3))
        gm = GaussianMixture(**params).fit(data, sample_weight=da.from_array(weights,
                                                                            chunks=700))
        imputed = gm.impute(data).compute()
    np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-10)
    np.testing.assert_allclose(imputed, ref.impute(X), rtol=1e-9, atol=1e-12)

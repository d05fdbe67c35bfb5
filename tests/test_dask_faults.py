"""Dask fits beyond the cluster's memory and through a lost worker, each on
its own LocalCluster of worker processes."""
import os
import signal
import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from fastem import GaussianMixture  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


def _start(X, k=2):
    rng = np.random.default_rng(1)
    d = X.shape[1]
    return dict(n_components=k, weights_init=np.full(k, 1.0 / k),
                means_init=X[rng.choice(len(X), k, replace=False)],
                precisions_init=np.tile(np.eye(d), (k, 1, 1)), tol=0.0, max_iter=3)


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) + 4.0 * (rng.random((n, 1)) < 0.4)


def test_data_beyond_the_workers_memory_are_read_from_their_source(tmp_path):
    # 192 MiB of data and one worker limited to 256 MiB, of which its
    # interpreter, NumPy, Zarr and fastem take ~140: persisted, the data
    # would pause the worker (at 80 % of the limit) and get it killed; read
    # block by block from the Zarr store on every pass, the fit runs
    X = _data(4_000_000, 6)
    store = str(tmp_path / "X.zarr")
    zarr.create_array(store, shape=X.shape, chunks=(100_000, 6), dtype=X.dtype)[:] = X
    params = _start(X)
    reference = GaussianMixture(**params).fit(X)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  memory_limit="256MiB", dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client, client.as_current():
        client.wait_for_workers(1)  # its memory limit is what persist is judged by
        pids = client.run(os.getpid)
        gm = GaussianMixture(**params).fit(da.from_zarr(store))
        # the worker neither spilled data to disk (at 60 % of its limit) nor
        # was restarted
        spilled = client.run(lambda dask_worker: len(dask_worker.data.slow))
        assert list(spilled.values()) == [0]
        assert client.run(os.getpid) == pids
    np.testing.assert_allclose(gm.lower_bounds_, reference.lower_bounds_, rtol=1e-8)
    np.testing.assert_allclose(gm.means_, reference.means_, rtol=1e-8)


def test_persist_is_chosen_from_the_workers_memory(monkeypatch):
    from fastem import _dask
    X = _data(20_000, 4)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  memory_limit="1GiB", dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client, client.as_current():
        client.wait_for_workers(1)
        dX = da.from_array(X, chunks=(5_000, 4))
        assert _dask.DaskData(dX, [np.float64]).persisted  # 640 kB of 1 GiB
        monkeypatch.setattr(_dask, "PERSIST_SHARE", X.nbytes / 2**30 / 2)
        assert not _dask.DaskData(dX, [np.float64]).persisted
        assert _dask.DaskData(dX, [np.float64], persist=True).persisted
        gm = GaussianMixture(persist=False, **_start(X)).fit(dX)
        ref = GaussianMixture(**_start(X)).fit(X)
        np.testing.assert_allclose(gm.lower_bounds_, ref.lower_bounds_, rtol=1e-8)
    with pytest.raises(ValueError, match="persist must be"):
        GaussianMixture(persist="yes").fit(X)


def test_a_worker_killed_mid_fit_is_recovered_from(tmp_path):
    # one of two worker processes is killed while a pass runs on it: the
    # scheduler recomputes its persisted blocks elsewhere (its nanny starts
    # it again) and the fit ends as the in-memory one does
    X = _data(1_200_000, 8)
    params = dict(_start(X), max_iter=6)
    reference = GaussianMixture(**params).fit(X)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client, client.as_current():
        victim = next(iter(client.run(os.getpid).values()))
        killed = threading.Event()

        def kill_during_next_pass(iteration, lower_bound, parameters):
            if iteration == 2:
                threading.Timer(0.02, lambda: (os.kill(victim, signal.SIGKILL),
                                               killed.set())).start()

        gm = GaussianMixture(callback=kill_during_next_pass, **params).fit(
            da.from_array(X, chunks=(100_000, 8)))
    assert killed.is_set()
    np.testing.assert_allclose(gm.lower_bounds_, reference.lower_bounds_, rtol=1e-8)
    np.testing.assert_allclose(gm.means_, reference.means_, rtol=1e-8)

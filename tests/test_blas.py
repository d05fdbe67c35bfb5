"""The BLAS thread cap around the large-D passes (fastem/_blas.py)."""
import threading

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from fastem import GaussianMixture
from fastem._blas import single_threaded_blas


def blas_threads():
    return {info["filepath"]: info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas"}


def test_blas_runs_one_thread_inside_and_as_before_after():
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        assert before and set(before.values()) == {2}
        with single_threaded_blas():
            assert set(blas_threads().values()) == {1}
        assert blas_threads() == before
        with single_threaded_blas(enabled=False):
            assert blas_threads() == before


class _FakeController:
    """Records the caps set and lifted (threadpoolctl lets one Python thread
    control OpenBLAS, so the overlap is checked on the bookkeeping)."""

    def __init__(self):
        self.events = []

    def limit(self, limits, user_api):
        self.events.append(("cap", limits, user_api))
        controller = self

        class Limiter:
            def restore_original_limits(self):
                controller.events.append(("lift",))
        return Limiter()


def test_overlapping_passes_lift_the_cap_when_the_last_one_ends(monkeypatch):
    # two passes in two threads (as Dask tasks run): the first to end must
    # not lift the cap under the other
    from fastem import _blas
    fake = _FakeController()
    monkeypatch.setattr(_blas, "_controller", fake)
    first_in, second_in, first_out = (threading.Event() for _ in range(3))
    seen = {}

    def first():
        with single_threaded_blas():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with single_threaded_blas():
            second_in.set()
            first_out.wait(10)
            seen["after the first ended"] = list(fake.events)

    workers = [threading.Thread(target=f) for f in (first, second)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert seen["after the first ended"] == [("cap", 1, "blas")]
    assert fake.events == [("cap", 1, "blas"), ("lift",)]
    assert _blas._active == 0


def test_fit_past_the_crossover_leaves_the_blas_threads_alone():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 300))
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        GaussianMixture(2, max_iter=2, reg_covar=1e-2, random_state=0).fit(X)
        assert blas_threads() == before

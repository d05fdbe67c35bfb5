"""Thread counts the OpenMP runtime cannot honour: a process forked after
multi-threaded kernels (whose OpenMP threads stay in the parent) and more
threads than CPUs. Each case runs in a child process with a timeout, so
that a hang fails the test instead of stopping the suite."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastem

_FORKED_FIT = """
import multiprocessing as mp, sys, warnings
import numpy as np
import fastem
if not fastem.openmp_enabled() or fastem.effective_n_threads() < 2:
    print("SKIP"); sys.exit(0)
X = np.random.default_rng(0).normal(size=(20000, 4))
parent = fastem.GaussianMixture(3, random_state=0, n_threads=2).fit(X)

def child(queue):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        {child_work}
    queue.put((result, [str(w.message) for w in caught]))

ctx = mp.get_context("fork")
queue = ctx.Queue()
process = ctx.Process(target=child, args=(queue,), daemon=True)
process.start()
result, messages = queue.get(timeout=60)
process.join(10)
print(repr(result))
print(any("forked after fastem ran multi-threaded" in m for m in messages))
"""


@pytest.mark.parametrize("child_work, expected", [
    # a new fit in the child
    ("result = float(fastem.GaussianMixture(3, random_state=0, n_threads=2)"
     ".fit(X).lower_bound_)", "float(parent.lower_bound_)"),
    # the parent's fitted model (its engine made with two threads) in the child
    ("result = parent.score(X)", "parent.score(X)"),
])
def test_a_forked_child_runs_on_one_thread_instead_of_hanging(child_work, expected):
    script = _FORKED_FIT.replace("{child_work}", child_work) + f"print(repr({expected}))\n"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.split()
    if lines == ["SKIP"]:
        pytest.skip("needs OpenMP and two threads")
    child_result, warned, parent_result = lines
    assert warned == "True"
    assert float(child_result) == pytest.approx(float(parent_result), rel=1e-12)


def test_a_child_forked_before_any_threads_keeps_them():
    script = textwrap.dedent("""
        import multiprocessing as mp
        import fastem
        def child(queue):
            queue.put(fastem.effective_n_threads())
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        ctx.Process(target=child, args=(queue,), daemon=True).start()
        print(queue.get(timeout=60), fastem.effective_n_threads())
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    child, parent = run.stdout.split()
    assert child == parent


@pytest.mark.skipif(not fastem.openmp_enabled(), reason="one thread without OpenMP")
def test_more_threads_than_cpus_are_capped_with_a_warning():
    cpus = fastem.effective_n_threads(-1)
    with pytest.warns(UserWarning, match="n_threads=2000 is more than"):
        assert fastem.effective_n_threads(2000) == cpus
    X = np.random.default_rng(1).normal(size=(3000, 3))
    with pytest.warns(UserWarning, match="n_threads=5000"):
        many = fastem.GaussianMixture(2, random_state=0, n_threads=5000).fit(X)
    few = fastem.GaussianMixture(2, random_state=0, n_threads=cpus).fit(X)
    np.testing.assert_allclose(many.lower_bounds_, few.lower_bounds_, rtol=1e-12)


def test_small_passes_run_on_one_thread_unless_threads_are_asked_for():
    from fastem._engine import MIN_ROWS_PER_THREAD, Engine
    default = Engine("full", 3, 4)
    asked = Engine("full", 3, 4, n_threads=2)
    small, large = 150, 64 * MIN_ROWS_PER_THREAD
    assert default._split(small, np.dtype(np.float64))[1] == 1
    assert default._split(large, np.dtype(np.float64))[1] == default.max_threads
    if asked.max_threads == 2:
        assert asked._split(small, np.dtype(np.float64))[1] == 2

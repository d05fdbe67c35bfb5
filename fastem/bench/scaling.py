"""fastem's own scaling: the EM pass on one thread and on all, and the
float32 and thread speed-ups derived from a run's workloads."""
import math
import time

from fastem._engine import Engine
from fastem.bench.problems import Problem
from fastem.bench.stats import ratio
from fastem.bench.timing import SETTLE_SECONDS


def time_pass_scaling(problem: Problem, models: dict, repeats: int = 10) -> dict:
    """The fused EM pass alone, on one thread and on all, best of ``repeats``
    calls of each, alternating.

    The per-iteration times of a workload and its one-thread variant come
    from different rounds, so a disturbed round moves their ratio; the best
    of many alternating passes over the same data at the same parameters
    measures the kernels' own scaling (an iteration is the pass plus ~0.1 ms
    of M-step on W1 and W2).
    """
    w = problem.workload
    model = models["fastem"]
    engines = {n: Engine(w.covariance_type, w.n_components, w.n_features,
                         None, n) for n in (1, w.threads)}
    params = engines[1].kernel_params(model.weights_, model.means_,
                                      model.precisions_cholesky_, problem.X.dtype)
    best = dict.fromkeys(engines, math.inf)
    # the rounds before may end with a peer whose BLAS threads still spin
    time.sleep(SETTLE_SECONDS)
    for _ in range(repeats):
        for n, engine in engines.items():
            start = time.perf_counter()
            engine.em_stats(problem.X, params)
            best[n] = min(best[n], time.perf_counter() - start)
    return {"threads": w.threads, "repeats": repeats, "one_thread_s": best[1],
            "all_threads_s": best[w.threads],
            "speedup": ratio(best[1], best[w.threads])}


def derived(entries: dict) -> dict:
    """Speed of float32 over float64 and of all threads over one, on W1 and
    W2, from a result's workload entries."""
    out = {}
    for base in ("W1", "W2"):
        ref = entries.get(base)
        if ref is None:
            continue
        ours = ref["libraries"]["fastem"]["s_per_iter"]
        f32 = entries.get(f"{base}-f32")
        if f32 is not None:
            out[f"{base} float32 speed-up over float64"] = ratio(
                ours, f32["libraries"]["fastem"]["s_per_iter"])
        one = entries.get(f"{base}-1thread")
        if one is not None:
            out[f"{base} {ref['threads']}-thread speed-up over 1 thread"] = ratio(
                one["libraries"]["fastem"]["s_per_iter"], ours)
        alone = ref.get("pass_scaling")
        if alone is not None:
            out[f"{base} {alone['threads']}-thread speed-up over 1 thread, EM pass "
                f"alone (best of {alone['repeats']} alternating)"] = alone["speedup"]
    return out

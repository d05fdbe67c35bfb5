"""This machine's limits, and the ideal time of a workload against them."""
import math
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

import fastem
from fastem.bench.workloads import Workload


def _best_seconds(fn, repeats):
    fn()  # first call pays for page faults and thread start-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _gemm_gflops(dtype, size, threads, repeats):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    c = np.empty_like(a)
    with threadpool_limits(limits=threads, user_api="blas"):
        seconds = _best_seconds(lambda: np.matmul(a, b, out=c), repeats)
    return 2.0 * size**3 / seconds / 1e9


def _in_threads(fn, args):
    workers = [threading.Thread(target=fn, args=(arg,)) for arg in args]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _read_gbs(array, threads, repeats):
    parts = np.array_split(array, threads)
    # x . x streams x from memory once per call with one FMA per element; on
    # this hardware np.sum's pairwise summation is compute-bound at about
    # half the bandwidth of one core. ddot releases the GIL, and with BLAS
    # capped at one thread each Python thread reads its own part.
    with threadpool_limits(limits=1, user_api="blas"):
        seconds = _best_seconds(lambda: _in_threads(lambda p: np.dot(p, p), parts), repeats)
    return array.nbytes / seconds / 1e9


def _exp_per_second(repeats, calls):
    # Log-responsibility differences: what an E-step exponentiates. 4096
    # values stay in L1, so this is the exp's own rate, not memory's.
    x = -20.0 * np.random.default_rng(0).random(4096)
    out = np.empty_like(x)

    def run():
        for _ in range(calls):
            np.exp(x, out=out)
    return x.size * calls / _best_seconds(run, repeats)


def measure_roofline(threads: int | None = None, quick: bool = False) -> dict:
    """Measure this machine's dgemm/sgemm rate, memory read bandwidth and
    exp rate.

    Compute scales with cores, so its ceiling for T threads is the larger of
    a T-thread measurement and T times a one-core measurement: a neighbour
    busy during the T-thread run must not lower a bound. Bandwidth does not
    scale with cores; it is measured with 1..T reading threads and the best
    kept. The exp rate is per core (Python threads cannot drive numpy's exp
    in parallel for L1-sized arrays) times T.

    Parameters
    ----------
    threads : int, optional
        Default: ``fastem.effective_n_threads()``.
    quick : bool
        Smaller matrices and fewer repeats (a second or two in all).

    Returns
    -------
    roofline : dict
    """
    threads = fastem.effective_n_threads(threads)
    size, repeats = (1024, 3) if quick else (2048, 5)
    # Eight times this machine's 32 MiB L3, so the reads come from memory.
    array_bytes = 256 * 2**20
    roof = {"threads": threads, "gemm_size": size, "repeats": repeats,
            "read_array_bytes": array_bytes}
    for name, dtype in (("dgemm", np.float64), ("sgemm", np.float32)):
        one = _gemm_gflops(dtype, size, 1, repeats)
        measured = {1: one}
        if threads > 1:
            measured[threads] = _gemm_gflops(dtype, size, threads, repeats)
        roof[f"{name}_gflops_per_core"] = one
        roof[f"{name}_gflops_measured"] = {str(t): g for t, g in measured.items()}
    array = np.ones(array_bytes // 8)
    bandwidth = {str(t): _read_gbs(array, t, repeats) for t in range(1, threads + 1)}
    del array
    roof["read_gbs_measured"] = bandwidth
    roof["exp_per_s_per_core"] = _exp_per_second(repeats, 200 if quick else 1000)
    return roof


def roofline_rates(roofline: dict, threads: int) -> dict:
    """Ceilings (flop/s for float64 and float32, bytes/s, exp/s) for ``threads``."""
    rates = {}
    for name in ("dgemm", "sgemm"):
        measured = roofline[f"{name}_gflops_measured"]
        scaled = roofline[f"{name}_gflops_per_core"] * threads
        rates[name] = max(scaled, measured.get(str(threads), 0.0)) * 1e9
    rates["read"] = max(g for t, g in roofline["read_gbs_measured"].items()
                        if int(t) <= max(threads, 1)) * 1e9
    rates["exp"] = roofline["exp_per_s_per_core"] * threads
    return rates


def work_per_iteration(workload: Workload) -> dict:
    """Flops, bytes read and exps of one EM iteration done ideally.

    full: 2 N K D(D+1) (E-step (x - mu) U with U triangular, M-step
    symmetric scatter) plus (2/3) K D^3 for the precision factors
    (Cholesky D^3/3, triangular inverse D^3/3), which counts from a few
    hundred features on; tied: one shared scatter, 2 N D(D+1) + 4 N K D +
    (2/3) D^3; diag and spherical: 6 N K D. Every type exponentiates N K
    values and reads X once.
    """
    N, D, K = workload.n_samples, workload.n_features, workload.n_components
    factors = 2 * D**3 / 3
    flops = {
        "full": 2 * N * K * D * (D + 1) + K * factors,
        "tied": 2 * N * D * (D + 1) + 4 * N * K * D + factors,
        "diag": 6 * N * K * D,
        "spherical": 6 * N * K * D,
    }[workload.covariance_type]
    return {"flops": float(flops), "bytes": float(workload.data_bytes),
            "exps": float(N * K)}


def ideal_time(workload: Workload, roofline: dict) -> dict:
    """Ideal seconds per iteration: max(flops / peak, bytes / bandwidth,
    exps / exp rate), with the sgemm rate for float32 data."""
    work = work_per_iteration(workload)
    rates = roofline_rates(roofline, workload.threads)
    peak = rates["sgemm" if workload.dtype == "float32" else "dgemm"]
    terms = {
        "flops": work["flops"] / peak,
        "bandwidth": work["bytes"] / rates["read"],
        "exp": work["exps"] / rates["exp"],
    }
    limit = max(terms, key=terms.get)
    return {**work, "t_flops": terms["flops"], "t_bandwidth": terms["bandwidth"],
            "t_exp": terms["exp"], "seconds": terms[limit], "limit": limit}

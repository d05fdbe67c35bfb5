"""Seconds per EM iteration of fastem and scikit-learn on workload W1.

    python benchmarks/measure_w1.py                      # W1: 1,000,000 x 16, K=16, full
    python benchmarks/measure_w1.py --n 100000 --threads 1

Both libraries fit the same seeded data from the same initial parameters
(see em_workloads.py) with tol=0, so each runs exactly --iters iterations.

Seconds per iteration are *marginal*: each library is timed fitting with
max_iter=1 and with max_iter=--iters, and the difference is divided by
--iters - 1. That removes what does not scale with the iteration count:
input validation, turning the given precisions into Cholesky factors and,
for scikit-learn, the extra E-step it runs after the last iteration. What is
left is the E-step + M-step cost both libraries pay every iteration.
"""
import argparse
import time
import warnings
from dataclasses import replace

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import em_workloads
from em_workloads import W1, make_estimator, make_problem

LIBRARIES = ("fastem", "sklearn")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=W1.n_samples, help="rows")
    parser.add_argument("--d", type=int, default=W1.n_features, help="features")
    parser.add_argument("--k", type=int, default=W1.n_components, help="components")
    parser.add_argument("--iters", type=int, default=W1.max_iter,
                        help="EM iterations of the timed fit (at least 2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="fastem OpenMP threads and scikit-learn BLAS threads "
                             "(default: all)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each fit this many times and keep the fastest")
    parser.add_argument("--seed", type=int, default=W1.seed)
    args = parser.parse_args()
    if args.iters < 2:
        parser.error("--iters must be at least 2 for a marginal time per iteration")
    return args


def timed_fit(library, problem, max_iter, threads, repeat):
    best, estimator = np.inf, None
    for _ in range(repeat):
        est = make_estimator(library, problem, max_iter=max_iter, n_threads=threads)
        # fastem takes its thread count as a parameter; scikit-learn's only
        # threads are BLAS's, so --threads caps those for the same core count.
        limit = (threadpool_limits(limits=threads, user_api="blas")
                 if library == "sklearn" and threads is not None else None)
        start = time.perf_counter()
        if limit is None:
            est.fit(problem.X)
        else:
            with limit:
                est.fit(problem.X)
        elapsed = time.perf_counter() - start
        if elapsed < best:
            best, estimator = elapsed, est
    return best, estimator


def print_machine_info(threads):
    info = em_workloads.machine_info(threads)
    print(f"CPU              {info['cpu_model']} "
          f"({info['usable_cpus']} of {info['logical_cpus']} logical CPUs usable)")
    print(f"fastem threads   {info['fastem_threads']} "
          f"(OpenMP {'on' if info['fastem_openmp'] else 'off'}, "
          f"OMP_NUM_THREADS={info['omp_num_threads_env']})")
    print(f"sklearn threads  {threads if threads is not None else 'all'} (BLAS)")
    for pool in info["threadpools"]:
        print(f"threadpool       {pool['user_api']}: {pool['internal_api']} "
              f"{pool['version'] or ''} {pool['threading_layer'] or ''} "
              f"{pool['architecture'] or ''} num_threads={pool['num_threads']} "
              f"{pool['filepath']}")
    versions = " ".join(f"{name} {v}" for name, v in info["versions"].items())
    print(f"versions         {versions}")


def main():
    args = parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0 on purpose
    workload = replace(W1, n_samples=args.n, n_features=args.d, n_components=args.k,
                       max_iter=args.iters, seed=args.seed)

    start = time.perf_counter()
    problem = make_problem(workload)
    print(f"{workload.describe()}; data generated in "
          f"{time.perf_counter() - start:.1f} s")
    print_machine_info(args.threads)

    # The first fit of each library in a process starts its thread pools and
    # grows the heap to the size of its temporaries (at 10^5 rows scikit-learn's
    # first max_iter=1 fit took 3.7x its later ones). Left in the max_iter=1
    # fit, that cost would be subtracted from the long fit and flatter the
    # per-iteration time, so warm up on the full data.
    for library in LIBRARIES:
        timed_fit(library, problem, 1, args.threads, 1)

    per_iter, lower_bounds = {}, {}
    print()
    print(f"{'library':8} {'fit(1) s':>10} {f'fit({args.iters}) s':>11} {'s/iter':>10}")
    for library in LIBRARIES:
        t_one, _ = timed_fit(library, problem, 1, args.threads, args.repeat)
        t_all, est = timed_fit(library, problem, args.iters, args.threads, args.repeat)
        per_iter[library] = (t_all - t_one) / (args.iters - 1)
        lower_bounds[library] = np.asarray(est.lower_bounds_)
        print(f"{library:8} {t_one:10.3f} {t_all:11.3f} {per_iter[library]:10.4f}")

    ours, theirs = lower_bounds["fastem"], lower_bounds["sklearn"]
    final_rel = abs(ours[-1] - theirs[-1]) / abs(theirs[-1])
    worst_rel = np.max(np.abs(ours - theirs) / np.abs(theirs))
    print()
    print(f"speed-up (sklearn / fastem s/iter)   {per_iter['sklearn'] / per_iter['fastem']:.2f}x")
    print(f"final lower bound fastem / sklearn   {ours[-1]:.12g} / {theirs[-1]:.12g}")
    print(f"relative difference, final           {final_rel:.2e}")
    print(f"relative difference, worst iteration {worst_rel:.2e}")


if __name__ == "__main__":
    main()

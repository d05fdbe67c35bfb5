"""Distributed EM on Dask: seconds per iteration of the dask path against the
in-memory fit of the same data, with one and with two worker processes, and
the per-iteration scheduling overhead.

    python benchmarks/dask_bench.py            # about two minutes on 2 cores

Every fit starts from the same fixed parameters and runs a fixed number of
iterations (tol=0); seconds per iteration are marginal, (t(long) - t(short))
/ (long - short), best of ``--repeats``. The overhead is the same measure on
a tiny array cut into as many blocks: its kernels take microseconds, so
what is left is building the graph, scheduling one task per block and the
tree of sums, and the M-step on the driver.
"""
import argparse
import time

import numpy as np


def problem(n_rows, n_features, n_components, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_components, n_features))
    X = centers[rng.integers(n_components, size=n_rows)] + rng.normal(size=(n_rows, n_features))
    start = dict(n_components=n_components, tol=0.0,
                 weights_init=np.full(n_components, 1.0 / n_components),
                 means_init=centers + rng.normal(scale=0.3, size=centers.shape),
                 precisions_init=np.tile(np.eye(n_features), (n_components, 1, 1)))
    return X, start


def seconds_per_iteration(fit, short=1, long=5, repeats=3):
    def best(n_iter):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fit(n_iter)
            times.append(time.perf_counter() - t)
        return min(times)
    return (best(long) - best(short)) / (long - short)


def measure(n_rows=1_000_000, n_features=16, n_components=16, blocks=8, repeats=3):
    import warnings

    import dask.array as da
    import distributed
    from sklearn.exceptions import ConvergenceWarning

    from fastem import GaussianMixture

    warnings.simplefilter("ignore", ConvergenceWarning)
    X, start = problem(n_rows, n_features, n_components)
    tiny, tiny_start = problem(blocks * 64, n_features, n_components, seed=1)
    out = {"rows": n_rows, "features": n_features, "components": n_components,
           "blocks": blocks}
    out["in_memory"] = seconds_per_iteration(
        lambda m: GaussianMixture(max_iter=m, **start).fit(X), repeats=repeats)
    out["local_scheduler"] = seconds_per_iteration(
        lambda m: GaussianMixture(max_iter=m, **start).fit(
            da.from_array(X, chunks=(-(-n_rows // blocks), n_features))), repeats=repeats)
    for workers, threads in ((1, 2), (2, 1), (1, 1)):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=threads,
                                      processes=True, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            dX = client.persist(da.from_array(X, chunks=(-(-n_rows // blocks), n_features)))
            distributed.wait(dX)
            key = f"{workers}x{threads}"
            out[f"cluster_{key}"] = seconds_per_iteration(
                lambda m, dX=dX: GaussianMixture(max_iter=m, **start).fit(dX),
                repeats=repeats)
            dt = client.persist(da.from_array(tiny, chunks=(64, n_features)))
            out[f"overhead_{key}"] = seconds_per_iteration(
                lambda m, dt=dt: GaussianMixture(max_iter=m, **tiny_start).fit(dt),
                short=2, long=12, repeats=repeats)
    return out


def report(r):
    lines = [f"{r['rows']:,} x {r['features']}, K={r['components']}, full, "
             f"{r['blocks']} blocks; seconds per EM iteration (marginal, best of repeats)",
             f"  in memory (2 OpenMP threads)          {r['in_memory']:.3f}",
             f"  dask, local threaded scheduler        {r['local_scheduler']:.3f}  "
             f"({r['local_scheduler'] / r['in_memory']:.2f}x in memory)"]
    for key, what in (("1x1", "1 worker process x 1 thread "),
                      ("1x2", "1 worker process x 2 threads"),
                      ("2x1", "2 worker processes x 1 thread")):
        s = r[f"cluster_{key}"]
        lines.append(f"  dask cluster, {what}  {s:.3f}  ({s / r['in_memory']:.2f}x in memory)")
    lines.append(f"  2 workers over 1 worker (1 thread each): "
                 f"{r['cluster_1x1'] / r['cluster_2x1']:.2f}x faster")
    lines.append("  scheduling overhead per iteration (tiny data, same blocks): "
                 + ", ".join(f"{key} {1e3 * r[f'overhead_{key}']:.1f} ms"
                             for key in ("1x1", "1x2", "2x1")))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(report(measure(args.rows, blocks=args.blocks, repeats=args.repeats)))


if __name__ == "__main__":
    main()

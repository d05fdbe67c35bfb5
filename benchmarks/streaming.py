"""Scale proof for data bigger than memory: a float32 .npy file of several GB
fitted with full covariance in bounded memory, streaming vs in-memory
seconds per iteration, and the convergence of partial_fit over a stream of
mini-batches.

Full run (writes a 4.1 GB file under --dir, about 10 minutes on 2 cores)::

    python benchmarks/streaming.py --dir /tmp

Every fit runs in a fresh process that reports its own peak resident set
size (``VmHWM``: everything the process held at once, the interpreter and
libraries included). ``benchmarks/test_bench_streaming.py`` runs the
same code on small sizes in the ordinary test run.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

N_FEATURES, N_COMPONENTS = 16, 8


def truth(n_features=N_FEATURES, n_components=N_COMPONENTS, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = rng.normal(scale=3.0, size=(n_components, n_features))
    a = rng.standard_normal((n_components, n_features, n_features))
    covariances = a @ a.transpose(0, 2, 1) / n_features + 0.1 * np.eye(n_features)
    return weights, means, covariances


def sample(n_rows, seed, dtype=np.float32, params=None):
    weights, means, covariances = params or truth()
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(weights), size=n_rows, p=weights)
    chol = np.linalg.cholesky(covariances)
    z = rng.standard_normal((n_rows, means.shape[1]))
    return (means[labels] + np.einsum("nij,nj->ni", chol[labels], z)).astype(dtype)


def write_file(path, n_rows, block_rows=1_000_000):
    """A C-ordered float32 .npy of n_rows rows, written block by block."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                    shape=(n_rows, N_FEATURES))
    for start in range(0, n_rows, block_rows):
        stop = min(start + block_rows, n_rows)
        out[start:stop] = sample(stop - start, seed=start)
    out.flush()
    del out


def init_params():
    """The truth moved a little: a fixed start shared by every fit."""
    weights, means, covariances = truth()
    rng = np.random.default_rng(1)
    return dict(weights_init=np.full(len(weights), 1 / len(weights)),
                means_init=means + rng.normal(scale=0.3, size=means.shape),
                precisions_init=np.linalg.inv(covariances + 0.5 * np.eye(N_FEATURES)))


# -- measured in a child process --------------------------------------------------------
def _child(mode, path, short, long):
    import fastem

    X = np.load(path) if mode == "memory" else path
    times = {}
    for n_iter in (short, long):
        gm = fastem.GaussianMixture(N_COMPONENTS, tol=0.0, max_iter=n_iter, **init_params())
        start = time.perf_counter()
        gm.fit(X)
        times[n_iter] = time.perf_counter() - start
    return {"mode": mode, "s_per_iter": (times[long] - times[short]) / (long - short),
            "peak_rss_mb": _peak_rss_bytes() / 2**20, "lower_bound": float(gm.lower_bound_)}


def _peak_rss_bytes():
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's
    # peak over fork and exec, e.g. that of writing the file)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(mode, path, short=1, long=4):
    code = ("import json, sys; sys.path.insert(0, %r); import streaming; "
            "print(json.dumps(streaming._child(%r, %r, %d, %d)))"
            % (os.path.dirname(os.path.abspath(__file__)), mode, str(path), short, long))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def warm_page_cache(path):
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def scale_proof(path, n_rows, rebuild=False):
    if rebuild or not os.path.exists(path):
        write_file(path, n_rows)
    warm_page_cache(path)
    streamed = run_child("stream", path)
    in_memory = run_child("memory", path)
    return {"rows": n_rows, "file_gb": os.path.getsize(path) / 1e9,
            "streamed": streamed, "in_memory": in_memory,
            "ratio": streamed["s_per_iter"] / in_memory["s_per_iter"]}


# -- partial_fit over a stream ----------------------------------------------------------------
def stepwise_curve(start="kmeans", n_rows=400_000, batch=10_000, passes=3, every=5,
                   seed=2):
    """Mean log-likelihood on all rows as partial_fit sees mini-batches,
    against the full-batch optimum (run to tol=1e-7) from the same kind of
    start: ``start="kmeans"`` (the default init: k-means on all rows for the
    full batch, on its first batch for partial_fit) or "near-truth" (the
    fixed parameters of init_params() for both)."""
    import fastem

    X = sample(n_rows, seed=seed, dtype=np.float64)
    given = init_params() if start == "near-truth" else {}
    full = fastem.GaussianMixture(N_COMPONENTS, tol=1e-7, max_iter=2000, random_state=0,
                                  **given).fit(X)
    optimum = full.score(X)
    gm = fastem.GaussianMixture(N_COMPONENTS, random_state=0, **given)
    rng = np.random.default_rng(seed)
    curve, seen = [], 0
    for _p in range(passes):
        order = rng.permutation(n_rows)
        for i, first in enumerate(range(0, n_rows, batch)):
            gm.partial_fit(X[order[first:first + batch]])
            seen += batch
            if seen == batch or (i + 1) % every == 0 or first + batch >= n_rows:
                score = gm.score(X)
                curve.append({"pass": seen / n_rows, "mean_ll": score,
                              "gap": (optimum - score) / abs(optimum)})
    within = next((c["pass"] for c in curve if c["gap"] <= 0.01), None)
    return {"start": start, "rows": n_rows, "batch": batch, "optimum": optimum,
            "full_batch_iterations": full.n_iter_, "curve": curve,
            "passes_to_1_percent": within}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp", help="where the big file goes")
    parser.add_argument("--rows", type=int, default=64_000_000,
                        help="rows of the file (16 float32 each; default 4.1 GB)")
    parser.add_argument("--rebuild", action="store_true", help="rewrite the file")
    parser.add_argument("--save", help="write the results as JSON")
    args = parser.parse_args(argv)

    path = os.path.join(args.dir, f"fastem-stream-{args.rows}x{N_FEATURES}.npy")
    proof = scale_proof(path, args.rows, args.rebuild)
    s, m = proof["streamed"], proof["in_memory"]
    print(f"file: {proof['rows']:,} x {N_FEATURES} float32, {proof['file_gb']:.2f} GB, "
          f"K={N_COMPONENTS}, full covariance, page cache warm")
    print(f"  streamed   {s['s_per_iter']:.3f} s/iter  peak RSS {s['peak_rss_mb']:.0f} MB")
    print(f"  in memory  {m['s_per_iter']:.3f} s/iter  peak RSS {m['peak_rss_mb']:.0f} MB")
    print(f"  streamed / in memory: {proof['ratio']:.2f}x; lower bounds "
          f"{s['lower_bound']:.10f} vs {m['lower_bound']:.10f}")

    curves = [stepwise_curve(start) for start in ("kmeans", "near-truth")]
    for curve in curves:
        print(f"\npartial_fit from {curve['start']}, batches of {curve['batch']:,} from "
              f"{curve['rows']:,} rows; full-batch optimum from the same start "
              f"{curve['optimum']:.5f} ({curve['full_batch_iterations']} iterations)")
        print("  passes  mean log-lik  gap to optimum")
        for c in curve["curve"]:
            print(f"  {c['pass']:6.3f}  {c['mean_ll']:12.5f}  {100 * c['gap']:8.3f} %")
        print(f"  within 1 % after {curve['passes_to_1_percent']} passes")
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"scale": proof, "stepwise": curves}, f, indent=1)


if __name__ == "__main__":
    main()

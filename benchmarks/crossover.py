"""Where the large-D path starts to pay: the register-blocked kernels
against the BLAS products (full and tied, float64 and float32), and the
precision factors' loops against LAPACK, on this machine.

    python benchmarks/crossover.py [--quick]

Prints seconds per E-step + statistics pass (best of 3, all threads, one
call of the kernels each, ~0.2 s of work) and GFLOP/s. The thresholds in
fastem/_engine.py (_BLAS_MIN_FEATURES) and _linalg.pyx
(_LAPACK_MIN_FEATURES) are the smallest D from which the second column wins.
"""
import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from fastem._covariance import compute_precision_cholesky
from fastem._engine import Engine
from fastem._kernels import _linalg
from fastem.bench.roofline import _best_seconds

_FLOPS_TARGET = 2e10  # ~0.2 s of work per pass


def best_of(fn):
    return _best_seconds(fn, repeats=3)


def problem(covariance_type, n_features, n_components, dtype, rng):
    flops_per_row = 2 * n_features * (n_features + 1) * (
        n_components if covariance_type == "full" else 1)
    n_samples = max(2048, int(_FLOPS_TARGET / flops_per_row))
    X = rng.normal(size=(n_samples, n_features)).astype(dtype)
    weights = np.full(n_components, 1.0 / n_components)
    means = rng.normal(size=(n_components, n_features))
    cov = np.cov(X[:4096].T.astype(np.float64)) + 0.1 * np.eye(n_features)
    covs = cov if covariance_type == "tied" else np.stack([cov] * n_components)
    prec_chol = compute_precision_cholesky(covs, covariance_type)
    return X, (weights, means, prec_chol), n_samples * flops_per_row


def pass_seconds(covariance_type, n_features, n_components, dtype, blas, rng):
    X, params, flops = problem(covariance_type, n_features, n_components, dtype, rng)
    engine = Engine(covariance_type, n_components, n_features, blas=blas)
    kp = engine.kernel_params(*params, X.dtype)
    return best_of(lambda: engine.em_stats(X, kp)), flops


def factor_seconds(n_features, n_components, lapack, rng):
    a = rng.normal(size=(n_components, n_features, 2 * n_features))
    covs = a @ np.swapaxes(a, 1, 2) / (2 * n_features) + 0.1 * np.eye(n_features)
    out = np.empty_like(covs)
    return best_of(lambda: _linalg.precision_cholesky(covs, out, lapack=lapack))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer shapes")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    dims = [128, 256, 512] if args.quick else [96, 128, 160, 192, 256, 320, 384, 512]
    many_dims = [128, 160, 192, 256] if args.quick else [128, 160, 176, 192, 224, 256, 320]
    # K = 8 for both types; then full covariance with many components
    # (_MANY_COMPONENTS in fastem/_engine.py), whose crossover is lower
    shapes = [(cov, dtype, 8, dims) for cov in ("full", "tied")
              for dtype in ("float64", "float32")]
    shapes += [("full", dtype, k, many_dims) for k in (16, 32)
               for dtype in ("float64", "float32")]
    print("E-step + statistics pass: seconds (GFLOP/s)")
    print(f"{'type':6} {'dtype':8} {'K':>3} {'D':>5} {'registers':>18} {'BLAS':>18}")
    for covariance_type, dtype, k, ds in shapes:
        for d in ds:
            cells = []
            for blas in (False, True):
                seconds, flops = pass_seconds(covariance_type, d, k, dtype, blas, rng)
                cells.append(f"{seconds:8.4f} ({flops / seconds / 1e9:5.1f})")
            print(f"{covariance_type:6} {dtype:8} {k:3d} {d:5d} {cells[0]:>18} {cells[1]:>18}")
    print("\nprecision factors of 8 components: seconds (loops vs LAPACK)")
    with threadpool_limits(limits=None):
        for d in ([64, 128, 256] if args.quick else [64, 96, 128, 160, 192, 256, 512]):
            loops = factor_seconds(d, 8, False, rng)
            lapack = factor_seconds(d, 8, True, rng)
            print(f"D = {d:4d}: loops {loops:.2e}  LAPACK {lapack:.2e}")


if __name__ == "__main__":
    main()

"""The kernels' own exp and log against NumPy's (libm) over the ranges the
kernels use them on: exp of log-probability differences (<= 0, down to
-inf), log of sums of exponentials (>= 1)."""
import numpy as np
import pytest

from fastem._kernels._em import exp_log


def run(x):
    out_exp, out_log = np.empty_like(x), np.empty_like(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        exp_log(x, out_exp, out_log)
    return out_exp, out_log


@pytest.mark.parametrize("dtype, rtol, lo", [(np.float64, 4e-16, -708.0),
                                             (np.float32, 3e-7, -87.0)])
def test_exp_matches_libm(dtype, rtol, lo):
    x = np.concatenate([np.linspace(lo, 0.0, 200001), -np.logspace(-12, 0, 1000),
                        [0.0, -0.5, -1.0, np.log(0.5)]]).astype(dtype)
    got, _ = run(x)
    want = np.exp(x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=rtol * 4, atol=0)


@pytest.mark.parametrize("dtype, floor", [(np.float64, -709.0), (np.float32, -88.0)])
def test_exp_flushes_to_exact_zero_far_below(dtype, floor):
    x = np.array([-np.inf, floor - 1.0, -1e6], dtype=dtype)
    got, _ = run(x)
    assert np.all(got == 0.0)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 4e-16), (np.float32, 3e-7)])
def test_log_matches_libm(dtype, rtol):
    x = np.concatenate([np.linspace(1.0, 64.0, 200001), np.logspace(0, 30, 1000),
                        np.logspace(-30, 0, 1000), [1.0, 2.0, np.sqrt(2.0), 1e-300]])
    x = x[x >= np.finfo(dtype).tiny].astype(dtype)
    _, got = run(x)
    want = np.log(x.astype(np.float64))
    # relative to max(|log x|, 1): log(1) = 0 has no relative accuracy
    err = np.abs(got - want) / np.maximum(np.abs(want), 1.0)
    assert err.max() <= rtol * 4, err.max()

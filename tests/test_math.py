"""The kernels' own exp and log against NumPy's (libm) over the ranges the
kernels use them on: exp of log-probability differences (<= 0, down to
-inf), log of sums of exponentials (>= 1)."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fastem._kernels._em import exp_log

KERNELS = Path(__file__).parent.parent / "src" / "fastem" / "_kernels"


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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_of_nan_and_minus_inf(dtype):
    got, _ = run(np.array([np.nan, -np.inf], dtype=dtype))
    assert np.isnan(got[0]) and got[1] == 0.0


def test_float32_exp_overflows_to_inf():
    # the float32 exponent was built from an unclamped int: +inf gave NaN and
    # 100 a tiny negative number
    got, _ = run(np.array([88.5, 100.0, 1e30, np.inf], dtype=np.float32))
    assert np.all(got == np.inf), got


def _compile_and_run(tmp_path, source, flags):
    compiler = shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler")
    if not (KERNELS / "fastem_math.h").exists():
        pytest.skip("the kernels' C sources are not beside the tests")
    src = tmp_path / "harness.c"
    src.write_text(source)
    exe = tmp_path / "harness"
    build = subprocess.run([compiler, *flags, f"-I{KERNELS}", str(src), "-o", str(exe), "-lm"],
                           capture_output=True, text=True)
    if build.returncode != 0 and "sanitize" in build.stderr:
        pytest.skip(f"{compiler} cannot build with the sanitizer: {build.stderr.strip()}")
    assert build.returncode == 0, build.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True)


UB_HARNESS = r"""
#include <math.h>
#include <stdio.h>
#include "fastem_math.h"
int main(void)
{
    /* volatile: evaluated at run time, where the sanitizer sees them */
    volatile float xf[] = {NAN, -NAN, INFINITY, -INFINITY, 88.5f, 100.0f, 1e30f,
                           -1e30f, -87.0f, 0.0f, 3.0e38f};
    volatile double xd[] = {NAN, INFINITY, -INFINITY, -1e300, 0.0, 1.0};
    float sf = 0;
    double sd = 0;
    for (unsigned i = 0; i < sizeof xf / sizeof xf[0]; i++)
        sf += fe_expf(xf[i]) + fe_logf(fabsf(xf[i]));
    for (unsigned i = 0; i < sizeof xd / sizeof xd[0]; i++)
        sd += fe_exp(xd[i]) + fe_log(fabs(xd[i]));
    printf("done %d\n", (int)(sf != sf) + (int)(sd != sd));
    return 0;
}
"""


def test_exp_and_log_have_no_undefined_behaviour_on_special_inputs(tmp_path):
    # NaN, infinities and out-of-range values once reached a float -> int
    # conversion and a left shift of a negative int
    run_ = _compile_and_run(tmp_path, UB_HARNESS, [
        "-O1", "-fsanitize=undefined,float-cast-overflow", "-fno-sanitize-recover=all"])
    assert run_.returncode == 0 and "done" in run_.stdout, run_.stdout + run_.stderr


SAME_HARNESS = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "fastem_math.h"
/* the float32 exp as first written, for the inputs where it was defined */
static float first_expf(float x)
{
    const float lo = -87.33654f;
    float xc = x < lo ? lo : x;
    float k = __builtin_floorf(xc * 1.44269504f + 0.5f);
    float r = __builtin_fmaf(k, 2.12194440e-4f, __builtin_fmaf(k, -0.693359375f, xc));
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < lo ? 0.0f : p * scale;
}
int main(void)
{
    /* every 61st float from +0 to 88 and from -0 to -inf */
    const float hi = 88.0f;
    uint32_t top, u;
    long n = 0, differ = 0;
    memcpy(&top, &hi, sizeof top);
    for (u = 0; u <= top; u += 61, n++) {
        float x, a, b;
        memcpy(&x, &u, sizeof x);
        a = first_expf(x);
        b = fe_expf(x);
        differ += memcmp(&a, &b, sizeof a) != 0;
    }
    for (u = 0x80000000u; u <= 0xFF800000u; u += 61, n++) {
        float x, a, b;
        memcpy(&x, &u, sizeof x);
        a = first_expf(x);
        b = fe_expf(x);
        differ += memcmp(&a, &b, sizeof a) != 0;
    }
    printf("checked %ld, differ %ld\n", n, differ);
    return differ != 0;
}
"""


def test_float32_exp_is_unchanged_bit_for_bit_where_it_was_defined(tmp_path):
    run_ = _compile_and_run(tmp_path, SAME_HARNESS, [
        "-O2", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math",
        "-fno-signed-zeros"])
    assert run_.returncode == 0, run_.stdout + run_.stderr

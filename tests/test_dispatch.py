"""The kernels' instruction-set variants: each one this CPU runs gives the
reference results, the automatic choice is the best the CPU runs, and
FASTEM_CPU_VARIANT forces a variant or fails as documented
(fastem/_kernels/_dispatch.py)."""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastem
from fastem._kernels import _cpu, _dispatch
from reference import responsibilities, suff_stats

HERE = Path(__file__).parent
COV_TYPES = ["full", "tied", "diag", "spherical"]
RTOL = 1e-10
BUILT = _dispatch.built_variants()
RUNNABLE = [v for v in BUILT if v in _dispatch.cpu_variants() or v in ("native", "custom")]
PORTABLE = set(BUILT) <= {"baseline", "avx2", "avx512"}
# /proc/cpuinfo names of the features each x86-64 level adds
LEVEL_FLAGS = {
    "avx2": {"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm", "xsave"},
    "avx512": {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
}

# Run in a fresh interpreter under FASTEM_CPU_VARIANT: one EM pass, one
# scoring pass and a short fit per covariance type, saved for the test.
RUN_VARIANT = """
import sys
import numpy as np
import fastem
from fastem._engine import Engine
from reference import random_params

out = {"variant": fastem.show_config(mode="dicts")["kernels"]["variant"]}
for i, ct in enumerate(%(cov_types)r):
    rng = np.random.default_rng(i)
    params = random_params(rng, ct, 3, 5)
    X = rng.normal(scale=2.0, size=(3 * 64 + 17, 5))
    engine = Engine(ct, 3, 5, 64, 2)
    kp = engine.kernel_params(*params, X.dtype)
    stats = engine.em_stats(X, kp)
    scores = engine.score(X, kp, log_likelihood=True, resp=True)
    gm = fastem.GaussianMixture(3, covariance_type=ct, init_params="random", max_iter=8,
                                tol=0.0, random_state=0, n_threads=2).fit(X)
    arrays = dict(X=X, weights=params[0], means=params[1], prec_chol=params[2],
                  shift=kp.shift64, ll=stats.log_likelihood, nk=stats.nk, s1=stats.s1,
                  s2=stats.s2, row_ll=scores["log_likelihood"], resp=scores["resp"],
                  lower_bound=gm.lower_bound_, fit_means=gm.means_)
    for name, value in arrays.items():
        out[ct + "/" + name] = value
np.savez(sys.argv[1], **out)
"""


def run_python(code, variant, *args):
    """Run ``code`` in a fresh interpreter with FASTEM_CPU_VARIANT=variant
    (None: unset), from tests/ so that the reference helpers import."""
    env = dict(os.environ)
    env.pop(_dispatch.ENV_VAR, None)
    if variant is not None:
        env[_dispatch.ENV_VAR] = variant
    return subprocess.run([sys.executable, "-c", code, *args], cwd=HERE, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def variant_results(tmp_path_factory):
    """Results of RUN_VARIANT under each variant, computed on first use."""
    cache = {}
    tmp = tmp_path_factory.mktemp("variants")

    def get(variant):
        if variant not in cache:
            path = tmp / f"{variant}.npz"
            run = run_python(RUN_VARIANT % {"cov_types": COV_TYPES}, variant, str(path))
            assert run.returncode == 0, run.stderr
            with np.load(path) as data:
                cache[variant] = dict(data)
        return cache[variant]
    return get


def cpuinfo_flags():
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("no /proc/cpuinfo to compare with")
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    pytest.skip("/proc/cpuinfo lists no flags")


def skip_unless_runnable(variant):
    if variant not in BUILT:
        pytest.skip(f"this build holds no {variant} kernels")
    if variant not in RUNNABLE:
        pytest.skip(f"this CPU cannot run the {variant} kernels")


def assert_close(actual, expected, scale=None):
    scale = np.max(np.abs(expected)) if scale is None else scale
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * max(scale, 1e-300))


@pytest.mark.parametrize("variant", _dispatch.VARIANTS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_each_variant_matches_the_reference(variant, covariance_type, variant_results):
    skip_unless_runnable(variant)
    got = {k.split("/")[1]: v for k, v in variant_results(variant).items()
           if k.startswith(covariance_type + "/")}
    assert variant_results(variant)["variant"] == variant
    X = got["X"]
    row_ll, resp = responsibilities(X, got["weights"], got["means"], got["prec_chol"],
                                    covariance_type)
    nk, s1, s2 = suff_stats(X, resp, got["shift"], covariance_type)
    assert_close(got["ll"], row_ll.sum(), scale=np.abs(row_ll).sum())
    assert_close(got["nk"], nk, scale=X.shape[0])
    assert_close(got["s1"], s1)
    assert_close(got["s2"], s2)
    assert_close(got["row_ll"], row_ll)
    assert_close(got["resp"], resp, scale=1.0)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_variants_fit_alike(covariance_type, variant_results):
    if len(RUNNABLE) < 2:
        pytest.skip("fewer than two variants to compare")
    first = variant_results(RUNNABLE[0])
    for variant in RUNNABLE[1:]:
        other = variant_results(variant)
        for name in ("lower_bound", "fit_means", "s2", "resp"):
            key = f"{covariance_type}/{name}"
            np.testing.assert_allclose(other[key], first[key], rtol=RTOL,
                                       atol=RTOL * np.max(np.abs(first[key])),
                                       err_msg=f"{variant} vs {RUNNABLE[0]}: {name}")


def test_kmeans_variants_agree():
    if len(RUNNABLE) < 2:
        pytest.skip("fewer than two variants to compare")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 6))
    centers = X[:5].copy()
    results = []
    for variant in RUNNABLE:
        kmeans = _dispatch.load(variant)["_kmeans"]
        labels = np.empty(1000, dtype=np.intp)
        sums = np.empty((2, 1 + 5 + 30))
        kmeans.lloyd_pass(X, centers, 64, labels, sums)
        results.append((labels, sums))
    for labels, sums in results[1:]:
        np.testing.assert_array_equal(labels, results[0][0])
        np.testing.assert_allclose(sums, results[0][1], rtol=RTOL, atol=RTOL * 1000)


def test_plain_module_names_are_the_chosen_variant():
    from fastem._kernels import _em, _kmeans, _linalg, _lloyd
    from fastem._kernels._em import em_pass

    variant = fastem.show_config(mode="dicts")["kernels"]["variant"]
    for name, module in zip(_dispatch.KERNELS, (_em, _kmeans, _linalg, _lloyd)):
        assert module.__name__ == f"fastem._kernels.{name}_{variant}"
        assert sys.modules[f"fastem._kernels.{name}"] is module
    assert em_pass is _em.em_pass


def test_cpu_levels_match_proc_cpuinfo():
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("not an x86-64 CPU")
    flags = cpuinfo_flags()
    levels = _cpu.supported_levels()
    assert levels["avx2"] == (LEVEL_FLAGS["avx2"] <= flags)
    assert levels["avx512"] == ((LEVEL_FLAGS["avx2"] | LEVEL_FLAGS["avx512"]) <= flags)


def test_automatic_choice_is_the_best_the_cpu_runs():
    run = run_python("import fastem; print(fastem.show_config(mode='dicts')['kernels']"
                     "['variant'])", None)
    assert run.returncode == 0, run.stderr
    chosen = run.stdout.strip()
    if not PORTABLE:
        assert chosen == BUILT[0]
        return
    flags = cpuinfo_flags()
    if (LEVEL_FLAGS["avx2"] | LEVEL_FLAGS["avx512"]) <= flags and "avx512" in BUILT:
        expected = "avx512"
    elif LEVEL_FLAGS["avx2"] <= flags and "avx2" in BUILT:
        expected = "avx2"
    else:
        expected = "baseline"
    assert chosen == expected


@pytest.mark.parametrize("value, message", [
    ("sse9", "'sse9' is not a kernel variant; use one of native, custom, avx512"),
    ("native" if PORTABLE else "avx512", "names a variant this build does not hold"),
])
def test_forcing_an_unknown_or_missing_variant_fails_the_import(value, message):
    run = run_python("import fastem", value)
    assert run.returncode != 0
    assert "ImportError" in run.stderr and message in run.stderr


def test_forcing_a_lower_variant_is_case_and_space_tolerant():
    skip_unless_runnable("baseline")
    run = run_python("import fastem; print(fastem.show_config(mode='dicts')['kernels']"
                     "['variant'])", " Baseline ")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "baseline"


@pytest.mark.parametrize("requested, built, runnable, expected", [
    (None, ("avx512", "avx2", "baseline"), ("avx512", "avx2", "baseline"), "avx512"),
    ("", ("avx512", "avx2", "baseline"), ("avx2", "baseline"), "avx2"),
    ("auto", ("avx512", "avx2", "baseline"), ("baseline",), "baseline"),
    ("avx2", ("avx512", "avx2", "baseline"), ("avx512", "avx2", "baseline"), "avx2"),
    (None, ("native",), ("native",), "native"),
])
def test_choose(requested, built, runnable, expected):
    assert _dispatch.choose(requested, built, runnable) == expected


@pytest.mark.parametrize("requested, built, runnable, message", [
    ("avx512", ("avx512", "avx2", "baseline"), ("avx2", "baseline"),
     "names a variant this CPU cannot run; it runs avx2, baseline"),
    ("avx2", ("native",), ("native",), "this build does not hold; it holds native"),
    ("avx", ("avx2", "baseline"), ("avx2", "baseline"), "'avx' is not a kernel variant"),
    (None, ("avx512", "avx2"), ("baseline",), "can run none of the kernel variants"),
    (None, (), (), "no compiled kernels found"),
])
def test_choose_refuses(requested, built, runnable, message):
    with pytest.raises(ImportError, match=message):
        _dispatch.choose(requested, built, runnable)


def test_show_config(capsys):
    config = fastem.show_config(mode="dicts")
    assert config["fastem"] == fastem.__version__
    kernels = config["kernels"]
    assert kernels["variant"] in kernels["built"]
    assert kernels["built"] == list(BUILT)
    assert set(config["cpu"]["supports"]) <= {"avx512", "avx2", "baseline"}
    assert "baseline" in config["cpu"]["supports"]
    assert config["openmp"]["enabled"] == fastem.openmp_enabled()
    assert config["openmp"]["threads"] == fastem.effective_n_threads()
    assert set(config["versions"]) == {"python", "numpy", "scipy", "scikit-learn"}
    assert fastem.show_config() is None
    printed = capsys.readouterr().out
    assert printed.startswith(f"fastem {fastem.__version__}\n")
    assert f"  variant: {kernels['variant']}\n" in printed
    json.dumps(config)  # plain data, for result files
    with pytest.raises(ValueError, match="mode"):
        fastem.show_config(mode="yaml")

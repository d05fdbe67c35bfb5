"""scikit-learn's own GaussianMixture and BayesianGaussianMixture tests, run
on fastem's.

The installed scikit-learn ships its test module; running it with the
estimator replaced (tests/sklearn_swap.py) catches any drift from
scikit-learn's behaviour, float32 included. Tests of scikit-learn's
private internals are expected failures, each with its reason there.
"""
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

MODULES = {"GaussianMixture": "sklearn.mixture.tests.test_gaussian_mixture",
           "BayesianGaussianMixture": "sklearn.mixture.tests.test_bayesian_mixture"}


@pytest.mark.parametrize("estimator", sorted(MODULES))
def test_scikit_learns_mixture_tests_pass_on_fastem(estimator, tmp_path):
    module = MODULES[estimator]
    if find_spec("sklearn.mixture.tests") is None or find_spec(module) is None:
        pytest.skip("this scikit-learn was installed without its tests")
    env = dict(os.environ, SKLEARN_RUN_FLOAT32_TESTS="1",
               PYTHONPATH=os.pathsep.join(
                   [str(Path(__file__).parent)]
                   + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    # from an empty directory, so that this project's pytest settings stay out
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", module, "-p", "sklearn_swap",
         "-p", "no:cacheprovider", "-q", "-rfExX"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert f"fastem's estimators in ['{module}.{estimator}']" in output, output[-3000:]
    assert " passed" in output

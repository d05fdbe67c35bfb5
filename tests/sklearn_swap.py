"""pytest plugin: run scikit-learn's own mixture tests on fastem's estimators.

Loaded by tests/test_sklearn_suite.py (``-p sklearn_swap``) for a run of
the installed scikit-learn's ``sklearn/mixture/tests/test_gaussian_mixture.py``
and ``test_bayesian_mixture.py``. Every collected test module that imported
``GaussianMixture`` or ``BayesianGaussianMixture`` gets fastem's in its
place. The tests listed below fail for a reason that no user of the public
API can observe; each is marked as an expected failure with it.
"""
import pytest

import fastem

_PRIVATE = ("calls scikit-learn's private GaussianMixture._initialize, which "
            "fastem does not have")
EXPECTED_FAILURES = {
    "test_gaussian_mixture_precisions_init": _PRIVATE,
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters": (
        "mocks scikit-learn's private _estimate_gaussian_parameters and "
        "counts its calls; fastem's M-step is its own"),
    "test_compare_covar_type": (
        "calls scikit-learn's private BayesianGaussianMixture._initialize_parameters "
        "and reads the parameters it sets on the estimator; fastem's returns them"),
    "test_check_weights": (
        "scikit-learn's message prints the smallest weight as 'max value' and "
        "the largest as 'min value'; fastem's message says which is which"),
    "test_score[float32]": (
        "compares score(X) to the float32 mean of float32 score_samples(X) to "
        "7 decimals; fastem's score sums the rows in float64, and the float32 "
        "mean alone is off by more than that (its spacing at -2.6 is 2.4e-7)"),
}

_swapped = []


def _reason(item):
    for name in (item.name, item.originalname):
        if name in EXPECTED_FAILURES:
            return EXPECTED_FAILURES[name]
    return None


_ESTIMATORS = ("GaussianMixture", "BayesianGaussianMixture")


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = getattr(item, "module", None)
        for name in _ESTIMATORS:
            ours = getattr(fastem, name)
            if getattr(module, name, ours) is not ours:
                setattr(module, name, ours)
                _swapped.append(f"{module.__name__}.{name}")
        reason = _reason(item)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(
        f"sklearn_swap: fastem's estimators in {sorted(set(_swapped))}")

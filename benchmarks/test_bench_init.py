"""The default start (init_params="kmeans"): the time to a fit's first lower
bound (k-means++, Lloyd's iterations, the first statistics, one EM
iteration), fastem against scikit-learn in the same run, from the same
random_state and so the same k-means labels:

- blobs: W1's shape, a million rows of 16 features in 16 clusters, K = 16;
- digits: scikit-learn's 1,797 images of 8 x 8 pixels, K = 60, diagonal
  covariance (pixel values: many rows equally near two centers).

Timing run: ``pytest benchmarks/test_bench_init.py --benchmark-enable``.
Disabled (the ordinary test run), each fit runs once on smaller data and
its first lower bound is checked against scikit-learn's.
"""
import numpy as np
import pytest
from marginal import timed_fits
from sklearn.datasets import load_digits
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastem import GaussianMixture

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _blobs(n):
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(16, 16))
    return centers[rng.integers(16, size=n)] + rng.normal(size=(n, 16))


PROBLEMS = {
    "blobs": lambda small: (_blobs(20_000 if small else 1_000_000),
                            dict(n_components=16), 3),
    "digits": lambda small: (load_digits().data,
                             dict(n_components=60, covariance_type="diag", reg_covar=1e-2), 5),
}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("library", ["fastem", "sklearn"])
def test_kmeans_start(benchmark, problem, library, benchmarks_disabled):
    X, params, repeats = PROBLEMS[problem](benchmarks_disabled)
    cls = GaussianMixture if library == "fastem" else SkGaussianMixture

    model = timed_fits(
        benchmark, f"k-means start and one EM iteration: {problem} {X.shape}", library,
        lambda: cls(random_state=0, max_iter=1, **params).fit(X), repeats,
        benchmarks_disabled)
    reference = SkGaussianMixture(random_state=0, max_iter=1, **params).fit(X)
    np.testing.assert_allclose(model.lower_bounds_, reference.lower_bounds_, rtol=1e-8)

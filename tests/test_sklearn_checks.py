"""scikit-learn's own estimator checks."""
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastem import GaussianMixture


@parametrize_with_checks([
    GaussianMixture(),
    GaussianMixture(n_components=2, covariance_type="diag", random_state=0),
    GaussianMixture(n_components=2, covariance_type="tied", n_threads=1, chunk_size=7),
])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)

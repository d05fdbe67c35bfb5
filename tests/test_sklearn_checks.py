"""scikit-learn's own estimator checks."""
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastem import BayesianGaussianMixture, GaussianMixture

# scikit-learn fits the weighted estimator on shuffled rows and the other on
# the rows repeated, each from its own random initialisation: k-means++ then
# draws other seeds (as for scikit-learn's KMeans, which lists this check as
# an expected failure). From the same *_init the two fits are equal, which
# tests/test_weights.py checks against scikit-learn on repeated rows.
_RANDOM_START = ("a random initialisation draws other seeds from shuffled and "
                 "repeated rows; equal from the same *_init (tests/test_weights.py)")


def _expected_failures(estimator):
    return {"check_sample_weight_equivalence_on_dense_data": _RANDOM_START}


@parametrize_with_checks([
    GaussianMixture(),
    GaussianMixture(n_components=2, covariance_type="diag", random_state=0),
    GaussianMixture(n_components=2, covariance_type="tied", n_threads=1, chunk_size=7),
    BayesianGaussianMixture(),
    BayesianGaussianMixture(n_components=3, covariance_type="diag",
                            weight_concentration_prior_type="dirichlet_distribution",
                            random_state=0),
    BayesianGaussianMixture(n_components=2, covariance_type="spherical", n_threads=1,
                            chunk_size=7),
], expected_failed_checks=_expected_failures, xfail_strict=False)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)

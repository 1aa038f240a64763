"""scikit-learn's estimator checks (sklearn.utils.estimator_checks), one pytest case each.

GaussianMixture passes every check, with each covariance type and in float32; with several
components, every check but the sample-weight equivalence, which no random start keeps (its
draws depend on the rows as they lie, not on their weights alone).

BernoulliMixture and BinomialMixture are checked too, but most checks fit on data that
scikit-learn generates: continuous values (normal or uniform draws), which a Bernoulli mixture
(0/1 values) or a binomial mixture (whole counts in [0, n_trials]) rejects by design, with a
ValueError that names the row and column of the first such value. A check that fails for that
reason, and for that reason only, is marked xfail with the check's name; a check that fails for
any other reason fails the test. Checks that do not fit on generated data (parameters, cloning,
repr, tags, unfitted errors) must pass, and so must check_positive_only_tag_during_fit: the
estimators declare positive_only and word their error for negative values as scikit-learn
expects.
"""

import pytest

pytest.importorskip("sklearn", reason="scikit-learn is needed for its estimator checks")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import emix  # noqa: E402

# Messages emix gives data outside a discrete family's domain (src/core/validate.cpp), and for
# negative values the wording the positive_only tag promises scikit-learn (_discrete.py).
_DOMAIN_MESSAGES = ("but a Bernoulli mixture needs 0 or 1",
                    "needs a whole number of successes in 0..",
                    "Negative values in data passed to")


def _rejected_for_domain(error):
    """True when `error`, or an exception it was raised from, is emix rejecting a value outside
    the family's domain."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, emix.InvalidArgument) and any(m in str(error)
                                                           for m in _DOMAIN_MESSAGES):
            return True
        error = error.__cause__ or error.__context__
    return False


# Every covariance type, and float32, whose checks run different code (parameter shapes, the
# float32 engine), not only the defaults.
@parametrize_with_checks([emix.GaussianMixture(device="cpu")] +
                         [emix.GaussianMixture(covariance_type=t, device="cpu")
                          for t in ("tied", "diag", "spherical")] +
                         [emix.GaussianMixture(dtype="float32", device="cpu")])
def test_gaussian_mixture_passes_sklearn_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_several_components_fail_only_the_sample_weight_equivalence(init_params):
    from sklearn.utils.estimator_checks import check_estimator
    estimator = emix.GaussianMixture(n_components=3, init_params=init_params, device="cpu")
    try:
        results = check_estimator(estimator, on_fail=None)
    except TypeError:  # a scikit-learn before 1.6, without on_fail
        pytest.skip("this scikit-learn's check_estimator cannot list results")
    passed = {result["check_name"] for result in results if result["status"] == "passed"}
    failed = {result["check_name"] for result in results if result["status"] == "failed"}
    assert "check_fit_score_takes_y" in passed and len(passed) > 30
    assert failed <= {"check_sample_weight_equivalence_on_dense_data"}


@parametrize_with_checks([emix.BernoulliMixture(device="cpu"),
                          emix.BinomialMixture(n_trials=5, device="cpu")])
def test_discrete_mixtures_pass_the_checks_that_apply(estimator, check):
    try:
        check(estimator)
    except Exception as error:
        if _rejected_for_domain(error):
            pytest.xfail(f"{getattr(check, 'func', check).__name__} fits continuous data, which "
                         f"{type(estimator).__name__} rejects by design: {error}")
        raise


def test_discrete_mixtures_keep_the_positive_only_promise():
    """The tag says negative values are refused with scikit-learn's wording (an audit found the
    check failing); the check itself, where this scikit-learn has it."""
    from sklearn.utils import estimator_checks

    check = getattr(estimator_checks, "check_positive_only_tag_during_fit", None)
    if check is None:
        pytest.skip("this scikit-learn has no check_positive_only_tag_during_fit")
    for estimator in (emix.BernoulliMixture(device="cpu"),
                      emix.BinomialMixture(n_trials=5, device="cpu")):
        check(type(estimator).__name__, estimator)
    with pytest.raises(emix.InvalidArgument, match=r"Negative values in data passed to "
                       r"BernoulliMixture: row 2, column 1 is -1"):
        emix.BernoulliMixture(device="cpu").fit([[0, 1], [-1, 1], [1, 0]])

"""One estimator used from several threads, or interrupted while it stores a fit: it holds one
fit's attributes at every moment, never some of one fit and some of another (the library calls
release the GIL, so Python threads run inside each other's fits)."""

import threading
import warnings

import numpy as np
import pytest

import emix
from emix import _gaussian

# The filters are the process's, not a thread's (warnings.catch_warnings in threads is not
# safe): the fits below do not converge in 3 iterations, on purpose.
pytestmark = pytest.mark.filterwarnings("ignore")

RNG = np.random.default_rng(0)
XA = RNG.normal(size=(2000, 4))
XA[:1000] += 3
XB = 2 * RNG.normal(size=(2000, 4))
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_",
          "lower_bound_", "lower_bounds_", "n_iter_", "converged_")


def gm(**parameters):
    return emix.GaussianMixture(n_components=4, random_state=0, max_iter=3, tol=0, device="cpu",
                                **parameters)


def same_fit(estimator, reference):
    return all(np.array_equal(getattr(estimator, name), getattr(reference, name))
               for name in FITTED)


def test_an_interrupt_while_a_fit_is_stored_keeps_the_previous_model(monkeypatch):
    """Python raises KeyboardInterrupt between two statements; the attributes used to be set
    one by one, with a library call (the precisions' Cholesky factors) between covariances_ and
    precisions_cholesky_: a signal there left means_ of the new fit beside lower_bound_ of the
    old, and predict used a model no fit had made."""
    reference_a = gm().fit(XA)
    estimator = gm().fit(XA)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_gaussian, "_precisions_cholesky", interrupted)
    with pytest.raises(KeyboardInterrupt):
        estimator.fit(XB)
    monkeypatch.undo()
    assert same_fit(estimator, reference_a)
    np.testing.assert_array_equal(estimator.predict(XB), reference_a.predict(XB))


def test_two_threads_fitting_one_estimator_leave_one_fits_attributes():
    reference = {"A": gm().fit(XA), "B": gm().fit(XB)}
    for trial in range(60):
        estimator = gm()
        barrier = threading.Barrier(2)

        def fit(x):
            barrier.wait()
            estimator.fit(x)

        threads = [threading.Thread(target=fit, args=(x,)) for x in (XA, XB)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert any(same_fit(estimator, r) for r in reference.values()), f"trial {trial}"


def test_partial_fit_from_several_threads_steps_one_stream():
    """The online stream is stepped as a copy and stored with the model: two threads that step
    it at once each make a stream of their own from the one they read (one of the two steps is
    then lost, as it would be for any unsynchronised update), and none reads a model another is
    writing (which raised 'covariance is not positive definite' on good data)."""
    x = RNG.normal(size=(20000, 32))
    x[:10000] += 2
    estimator = emix.GaussianMixture(n_components=4, random_state=0, device="cpu")
    estimator.partial_fit(x[:4000])
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(60):
            start = rng.integers(0, 19700)
            try:
                estimator.partial_fit(x[start:start + 300])
            except Exception as error:  # noqa: BLE001 - what the test looks for
                errors.append(repr(error))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert 2 <= estimator.n_iter_ <= 1 + 4 * 60
    np.testing.assert_array_equal(estimator.means_, estimator._online_.model.means)
    assert estimator.n_iter_ == estimator._online_.steps


def test_a_warning_raised_as_an_error_after_the_fit_leaves_its_model_with_its_names():
    """A fit's warnings come after its attributes are stored; raised as errors, they used to
    put the previous fit's feature names back beside the new model, and predict on the new
    columns then refused them."""
    pandas = pytest.importorskip("pandas")
    estimator = gm().fit(pandas.DataFrame(XA[:, :2], columns=["a", "b"]))
    renamed = pandas.DataFrame(XB[:, :2], columns=["c", "d"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", emix._sklearn.ConvergenceWarning)
        with pytest.raises(emix._sklearn.ConvergenceWarning):
            estimator.fit(renamed)
    assert list(estimator.feature_names_in_) == ["c", "d"]
    np.testing.assert_array_equal(estimator.predict(renamed), gm().fit(renamed).predict(renamed))

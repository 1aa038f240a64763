"""Issue 14: partial_fit is online (stepwise) EM and converges to the exact fit on a
stationary stream."""

import copy
import os
import pickle
import tempfile
import warnings

import numpy as np
import pytest

import emix
from conftest import overlapping_mixture


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


def exact(x, **parameters):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parameters = {"device": "cpu", "random_state": 0, "tol": 1e-12, "max_iter": 2000,
                      **parameters}
        return emix.GaussianMixture(**parameters).fit(x)


def separated(n, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, -1.0]])
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    return centres[labels] + rng.normal(size=(n, 2))


def test_whole_data_batches_reach_the_em_fixed_point():
    # A stream whose every batch is the whole data set: stepwise EM is then damped EM,
    # s <- (1 - g_t) s + g_t E[s | model], whose fixed points are EM's. Near the fixed point
    # the error shrinks by about (1 - g_t (1 - r)) per step, r being EM's own rate (small
    # for well-separated clusters), so after T steps it is ~ exp(-(1 - r) sum_t g_t). With
    # g_t = (t + 1)^-0.6 and T = 400, measured: 3e-9 after 100 steps, 6e-11 after 200,
    # 4e-13 after 400; 1e-11 is asserted. The reference runs EM to its fixed point (tol 0,
    # 200 iterations: the default tol would stop it ~1e-8 away).
    x = separated(1500)
    start = exact(x, n_components=3, max_iter=0)
    init = dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)
    online = emix.GaussianMixture(3, device="cpu", step_decay=0.6, **init)
    for _ in range(400):
        online.partial_fit(x)
    reference = exact(x, n_components=3, tol=0, max_iter=200, **init)
    assert online.n_iter_ == 400
    assert rel(online.means_, reference.means_) < 1e-11
    assert rel(online.covariances_, reference.covariances_) < 1e-11
    assert rel(online.weights_, reference.weights_) < 1e-11


def test_minibatches_of_a_stationary_stream_approach_the_exact_fit():
    # Minibatches drawn at random from a fixed data set: a stationary stream whose
    # distribution is the data's, so the online iterates approach the data's maximum-likelihood
    # fit, with noise of the order of the last step sizes times the batch's sampling noise
    # (here ~ 2000^-0.6 * O(1/sqrt(200)) ~ 1e-3): 2e-2 relative on the means is a loose bound.
    rng = np.random.default_rng(0)
    x = separated(3000)
    reference = exact(x, n_components=3)
    online = emix.GaussianMixture(3, device="cpu", random_state=0, step_decay=0.6)
    for _ in range(2000):
        online.partial_fit(x[rng.integers(0, len(x), size=200)])
    order = [int(np.argmin(np.linalg.norm(reference.means_ - m, axis=1))) for m in online.means_]
    assert sorted(order) == [0, 1, 2]
    assert rel(online.means_, reference.means_[order]) < 2e-2
    assert rel(online.weights_, reference.weights_[order]) < 2e-2
    assert rel(online.covariances_, reference.covariances_[order]) < 5e-2


def test_first_call_initialises_and_fit_resets():
    x = overlapping_mixture(3, n=300)
    a = emix.GaussianMixture(3, device="cpu", random_state=5).partial_fit(x[:100])
    b = emix.GaussianMixture(3, device="cpu", random_state=5).partial_fit(x[:100])
    assert np.array_equal(a.means_, b.means_)
    assert a.n_iter_ == 1 and a.converged_ is False
    a.partial_fit(x[100:200])
    assert a.n_iter_ == 2
    with pytest.raises(ValueError, match="features"):
        a.partial_fit(x[:, :2])
    with pytest.raises(ValueError, match="n_components"):
        emix.GaussianMixture(5, device="cpu").partial_fit(x[:3])
    restored = pickle.loads(pickle.dumps(a))
    assert np.array_equal(restored.means_, a.means_)
    restored.partial_fit(x[200:])  # continues the stream (test_pickling_continues_the_stream)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.fit(x)
    assert not hasattr(a, "_online_")
    a.partial_fit(x[:50])  # continues from the fitted model
    assert a.n_iter_ == 1


def through_a_model_file(estimator):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.json")
        estimator.save(path)
        return emix.load_model(path)


@pytest.mark.parametrize("copy_of", [lambda g: pickle.loads(pickle.dumps(g)), copy.deepcopy,
                                     through_a_model_file],
                         ids=["pickle", "deepcopy", "model file"])
def test_pickling_continues_the_stream(copy_of):
    # A pickled (or deep-copied, or saved and loaded) estimator takes the next step bitwise as
    # the original does: the running statistics and the step count travel with it. Before, the
    # copy started the stream again and its next batch replaced everything learned (a score of
    # -6.9 for -5.35); a model file kept none of it until 2026-12-07.
    x = overlapping_mixture(3, n=2000)
    original = emix.GaussianMixture(3, device="cpu", random_state=1)
    for start in range(0, 1500, 100):
        original.partial_fit(x[start:start + 100])
    copied = copy_of(original)
    for start in (1500, 1520, 1540):
        original.partial_fit(x[start:start + 20])
        copied.partial_fit(x[start:start + 20])
    assert copied.n_iter_ == original.n_iter_ == 18
    machine = ("device", "verbose")  # what a model file does not keep (GaussianMixture.save)
    assert ({k: v for k, v in copied.get_params().items() if k not in machine}
            == {k: v for k, v in original.get_params().items() if k not in machine})
    for name in ("weights_", "means_", "covariances_"):
        assert np.array_equal(getattr(copied, name), getattr(original, name)), name
    assert copied.lower_bound_ == original.lower_bound_


def test_set_params_between_batches_takes_effect_or_is_refused():
    x = overlapping_mixture(3, n=600)
    a = emix.GaussianMixture(3, device="cpu", random_state=2).partial_fit(x[:300])
    live = emix.GaussianMixture(3, device="cpu", random_state=2).partial_fit(x[:300])
    resumed = pickle.loads(pickle.dumps(a))
    for b in (live, resumed):
        b.set_params(reg_covar=0.5)  # the next M-step adds 0.5 to every variance
        b.partial_fit(x[300:])
    a.partial_fit(x[300:])
    for b in (live, resumed):
        diag = np.diagonal(b.covariances_ - a.covariances_, axis1=1, axis2=2)
        assert np.allclose(diag, 0.5 - 1e-6, rtol=0, atol=1e-9)
    b = resumed
    # What the fitted model's arrays fix cannot change in the middle of a stream.
    b.set_params(n_components=4)
    with pytest.raises(ValueError, match="n_components is 4, but the fitted model has 3"):
        b.partial_fit(x[:10])
    b.set_params(n_components=3, covariance_type="diag")
    with pytest.raises(ValueError, match="covariance_type is 'diag', but the fitted model's is"):
        b.partial_fit(x[:10])
    binomial = emix.BinomialMixture(2, n_trials=10, device="cpu", random_state=2)
    counts = np.random.default_rng(3).binomial(10, 0.3, size=(200, 4)).astype(float)
    binomial.partial_fit(counts[:100])
    binomial.set_params(n_trials=20)
    with pytest.raises(ValueError, match="n_trials is 20, but the fitted model's is 10"):
        binomial.partial_fit(counts[100:])
    warm = emix.GaussianMixture(3, device="cpu", random_state=2, warm_start=True).fit(x)
    warm.set_params(covariance_type="spherical")
    with pytest.raises(ValueError, match="fit with warm_start: covariance_type is 'spherical'"):
        warm.fit(x)


def test_a_step_offset_continues_a_fit_instead_of_replacing_it():
    # After fit, online EM starts from the fitted model's own statistics (N_k = w_k, S_k = 0
    # about its means). With step_decay=1 and step_offset = N / B + 1 = 21, the first step
    # blends them 20 : 1 with the batch's (N_b, S_b), so component k's mean moves by
    # S_bk / (20 w_k + N_bk), where the default step_offset=1 (the batch's statistics replacing
    # the fit's) moves it by S_bk / N_bk: the ratio is N_bk / (20 w_k + N_bk), with N_bk the
    # replaced model's weight. Closed form, to 1e-10 (a few roundings of numbers ~1).
    x = separated(2000)
    shifted = separated(100, seed=1) + np.array([1.0, -1.0])  # a batch from elsewhere
    fitted = exact(x, n_components=3)
    replaced = pickle.loads(pickle.dumps(fitted)).set_params(step_offset=1).partial_fit(shifted)
    kept = pickle.loads(pickle.dumps(fitted))
    kept.set_params(step_decay=1.0, step_offset=2000 / 100 + 1)
    kept.partial_fit(shifted)
    # The default, 'auto', takes that N / B + 1 going on from fit (it took 1, which replaced the
    # fit by a first batch however small), and 1 for a stream that starts the model.
    auto = pickle.loads(pickle.dumps(fitted)).set_params(step_decay=1.0)
    assert auto.step_offset == "auto"
    assert np.array_equal(auto.partial_fit(shifted).means_, kept.means_)
    weighted = pickle.loads(pickle.dumps(fitted)).set_params(step_decay=1.0)
    weighted.partial_fit(shifted, sample_weight=np.full(len(shifted), 0.5))  # B = 50: 41
    by_hand = pickle.loads(pickle.dumps(fitted)).set_params(step_decay=1.0, step_offset=41.0)
    by_hand.partial_fit(shifted, sample_weight=np.full(len(shifted), 0.5))
    assert np.array_equal(weighted.means_, by_hand.means_)
    # A model from emix.maximize counts as its statistics' weight; one loaded from a file as
    # its fit's (it was the original fit's, and 1, replacing the model, after a load).
    stepped = emix.maximize(fitted, emix.accumulate(fitted, x[:1000]))
    stepped.set_params(step_decay=1.0).partial_fit(shifted)
    by_weight = emix.maximize(fitted, emix.accumulate(fitted, x[:1000]))
    by_weight.set_params(step_decay=1.0, step_offset=1000 / 100 + 1).partial_fit(shifted)
    assert np.array_equal(stepped.means_, by_weight.means_)
    loaded = through_a_model_file(fitted).set_params(step_decay=1.0)
    np.testing.assert_allclose(loaded.partial_fit(shifted).means_, kept.means_, rtol=1e-12)
    fresh = emix.GaussianMixture(3, random_state=0, device="cpu", step_decay=1.0)
    one = emix.GaussianMixture(3, random_state=0, device="cpu", step_decay=1.0, step_offset=1)
    assert np.array_equal(fresh.partial_fit(shifted).means_, one.partial_fit(shifted).means_)
    moved = replaced.means_ - fitted.means_
    assert np.max(np.abs(moved)) > 0.5  # the batch lies 1.4 away from the fit's clusters
    share = replaced.weights_ / (20 * fitted.weights_ + replaced.weights_)
    np.testing.assert_allclose(kept.means_ - fitted.means_, moved * share[:, None], rtol=0,
                               atol=1e-10)


def test_bernoulli_partial_fit():
    rng = np.random.default_rng(2)
    p = np.array([[0.9] * 5 + [0.1] * 5, [0.1] * 5 + [0.9] * 5])
    z = rng.integers(0, 2, size=4000)
    x = (rng.random((4000, 10)) < p[z]).astype(float)
    online = emix.BernoulliMixture(2, device="cpu", random_state=0)
    for a in range(0, 4000, 100):
        online.partial_fit(x[a:a + 100])
    got = np.sort(online.probabilities_[:, 0])
    assert abs(got[0] - 0.1) < 0.05 and abs(got[1] - 0.9) < 0.05


def test_a_component_without_weight_is_reported():
    """A first batch of one repeated row leaves a component empty: fit would re-seed it, online
    EM cannot, and says so (the initialisation's note, then at every step that leaves it
    without weight)."""
    rng = np.random.default_rng(0)
    with pytest.warns(emix.FitWarning, match="left 1 component"):
        gm = emix.GaussianMixture(2, random_state=0, device="cpu").partial_fit(np.ones((50, 2)))
    with pytest.warns(emix.FitWarning, match=r"component\(s\) 1 have no weight"):
        gm.partial_fit(rng.normal(size=(100, 2)))
    assert gm.weights_[1] == 0


def test_an_underdetermined_first_batch_is_warned():
    """The first step (size 1) replaces the running statistics with the batch's, so a batch of
    fewer values than the model's free parameters fixes a start it cannot determine. A batch
    large enough, or a later small one, is not warned about."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 10))
    # 3 full components of 10 features: 3 * (10 + 55) + 2 = 197 parameters, 19 rows = 190 values.
    with pytest.warns(emix.FitWarning, match="first batch has 19 rows of 10 features, fewer "
                      "values than the model's 197 free parameters"):
        emix.GaussianMixture(3, device="cpu", random_state=0).partial_fit(x[:19])
    with warnings.catch_warnings():
        warnings.simplefilter("error", emix.FitWarning)
        gm = emix.GaussianMixture(3, device="cpu", random_state=0).partial_fit(x[:20])
        gm.partial_fit(x[20:25])
        # Diagonal covariances have 3 * 20 + 2 = 62 parameters: 7 rows (70 values) suffice.
        emix.GaussianMixture(3, covariance_type="diag", device="cpu",
                             random_state=0).partial_fit(x[:7])
        # A first step smaller than 1 blends the batch into the initial model's statistics.
        emix.GaussianMixture(3, device="cpu", random_state=0, step_offset=4).partial_fit(x[:19])


def test_continuing_a_fit_with_a_larger_reg_covar():
    """step_offset > 1 blends the batch with the statistics the fitted model implies, Sigma -
    reg_covar I, which for collinear features is not positive semi-definite once reg_covar
    grows; the M-step adds reg_covar back, and the step is taken (it once failed maximize's
    check for impossible statistics)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3000, 2))
    x = np.hstack([a, a.sum(1, keepdims=True)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = emix.GaussianMixture(2, random_state=0, device="cpu", reg_covar=1e-9).fit(x)
    assert np.linalg.eigvalsh(gm.covariances_)[:, 0].min() < 1e-6
    gm.set_params(reg_covar=1e-3, step_offset=5.0)
    gm.partial_fit(x)
    assert np.linalg.eigvalsh(gm.covariances_)[:, 0].min() >= 1e-3 * (1 - 1e-9)


def test_a_fit_that_is_refused_leaves_the_stream_as_it_was():
    """fit() dropped the online EM state before checking its data: after a refused fit, the
    stream restarted (n_iter_ 1, a step of size 1 on the next batch)."""
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(-4, 1, (400, 2)), rng.normal(4, 1, (400, 2))]
    online = emix.GaussianMixture(2, random_state=0, device="cpu")
    for batch in np.array_split(x, 8):
        online.partial_fit(batch)
    reference = copy.deepcopy(online)
    spoilt = x.copy()
    spoilt[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        online.fit(spoilt)
    online.partial_fit(x[:50])
    reference.partial_fit(x[:50])
    assert online.n_iter_ == reference.n_iter_ == 9
    assert np.array_equal(online.means_, reference.means_)
    online.fit(x)  # a fit that succeeds ends the stream: the next step starts one afresh
    assert online.partial_fit(x[:50]).n_iter_ == 1


def test_partial_fit_goes_on_from_a_model_set_by_its_attributes():
    rng = np.random.default_rng(4)
    x = np.r_[rng.normal(-4, 1, (200, 2)), rng.normal(4, 1, (200, 2))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = emix.GaussianMixture(2, random_state=0, device="cpu").fit(x)
    assigned = emix.GaussianMixture(2, device="cpu")
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(assigned, name, getattr(fitted, name))
    assigned.partial_fit(x[:100])  # an AttributeError (no n_features_in_) before
    assert assigned.n_features_in_ == 2 and assigned.n_iter_ == 1
    with pytest.raises(ValueError, match="X has 4 features, but GaussianMixture is expecting 2"):
        assigned.partial_fit(np.c_[x, x][:100])

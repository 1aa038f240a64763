"""Issue 14: emix.dask on a dask.distributed LocalCluster (2 worker processes) equals the
in-memory fit from the same initial parameters to 1e-12 relative; predict and score give Dask
arrays."""

import time
import warnings
from unittest import mock

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import sklearn.base  # noqa: E402

import emix  # noqa: E402
import emix.dask  # noqa: E402
from conftest import overlapping_mixture  # noqa: E402


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


@pytest.fixture(scope="module")
def client():
    # Real processes (emix is imported in each worker from the same PYTHONPATH).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, memory_limit="1GiB") as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def data():
    return overlapping_mixture(20240601, n=1200)


def in_memory(x, sample_weight=None, **parameters):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return emix.GaussianMixture(**parameters).fit(x, sample_weight=sample_weight)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_dask_fit_equals_in_memory(client, data, covariance_type):
    start = in_memory(data, n_components=3, random_state=0, device="cpu", max_iter=0,
                      covariance_type=covariance_type)
    parameters = dict(n_components=3, covariance_type=covariance_type, device="cpu", tol=1e-6,
                      weights_init=start.weights_, means_init=start.means_,
                      precisions_init=start.precisions_)
    reference = in_memory(data, **parameters)
    x = da.from_array(data, chunks=(250, 2))  # uneven blocks, columns split on purpose
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = emix.dask.GaussianMixture(**parameters).fit(x)
    assert fitted.n_iter_ == reference.n_iter_ > 3
    for name in ("weights_", "means_", "covariances_"):
        assert rel(getattr(fitted, name), getattr(reference, name)) < 1e-12, name
    assert rel(fitted.lower_bounds_, reference.lower_bounds_) < 1e-12
    # The workers' engine, and where the passes ran.
    assert fitted.report_.engine.startswith("cpu (1 thread")
    assert fitted.report_.engine.endswith(", 5 Dask blocks on 2 Dask workers")

    labels = fitted.predict(x)
    assert isinstance(labels, da.Array)
    assert np.array_equal(labels.compute(), reference.predict(data))
    proba = fitted.predict_proba(x)
    assert isinstance(proba, da.Array) and proba.shape == (len(data), 3)
    assert rel(proba.compute(), reference.predict_proba(data)) < 1e-10
    score = fitted.score(x)
    assert isinstance(score, da.Array)
    assert float(score.compute()) == pytest.approx(reference.score(data), rel=1e-12)


def test_dask_weights_and_bernoulli(client):
    rng = np.random.default_rng(4)
    p = np.array([[0.8] * 3 + [0.2] * 3, [0.2] * 3 + [0.8] * 3])
    data = (rng.random((900, 6)) < p[rng.integers(0, 2, 900)]).astype(float)
    w = rng.uniform(0.5, 2.0, size=900)
    parameters = dict(n_components=2, device="cpu", tol=1e-8,
                      weights_init=[0.5, 0.5], probabilities_init=[[0.6] * 3 + [0.4] * 3,
                                                                   [0.4] * 3 + [0.6] * 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = emix.BernoulliMixture(**parameters).fit(data, sample_weight=w)
        fitted = emix.dask.BernoulliMixture(**parameters).fit(
            da.from_array(data, chunks=(200, 6)), sample_weight=w)
    assert fitted.n_iter_ == reference.n_iter_
    assert rel(fitted.probabilities_, reference.probabilities_) < 1e-12
    assert rel(fitted.weights_, reference.weights_) < 1e-12


def test_a_dask_fit_reads_given_probabilities_of_0_and_1_as_the_in_memory_fit(client):
    """The in-memory fit moves a given 0 or 1 to prob_epsilon or 1 - prob_epsilon before its
    first E-step; emix.dask took them as given, which its statistics then evaluated at 2^-53:
    a start of no steps scored -19.16 against -12.71 in memory."""
    rng = np.random.default_rng(5)
    data = (rng.random((300, 4)) < 0.5).astype(float)
    for given in (dict(weights_init=[0.5, 0.5]), {}):  # every parameter given, and some
        parameters = dict(n_components=2, device="cpu", max_iter=0, random_state=0,
                          probabilities_init=[[0.0, 1.0, 0.5, 0.5], [1.0, 0.0, 0.5, 0.5]],
                          **given)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = emix.BernoulliMixture(**parameters).fit(data)
            fitted = emix.dask.BernoulliMixture(**parameters).fit(
                da.from_array(data, chunks=(100, 4)))
        assert fitted.probabilities_.min() == reference.probabilities_.min() == 1e-10
        assert fitted.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-12)


def test_reduction_is_merge_in_order_whatever_the_schedule(client, data):
    gm = in_memory(data, n_components=3, random_state=0, device="cpu", max_iter=1)
    x = da.from_array(data, chunks=(100, 3))
    model = gm._model()
    direct = emix.merge_in_order([emix.accumulate(gm, data[a:a + 100])
                                  for a in range(0, len(data), 100)])
    estimator = emix.dask.GaussianMixture(3, device="cpu")
    blocks = list(x.to_delayed().ravel())
    for _ in range(2):
        total = estimator._statistics(model, blocks, None, list(range(0, len(data), 100)),
                                      list(x.chunks[0]))
        assert total.to_bytes() == direct.to_bytes()


def test_tree_merge_of_any_fan_in_is_merge_in_order_bitwise(data):
    """Tasks that each reduce fan_in aligned parts compute whole subtrees of merge_in_order's
    binary tree: the same bytes for every fan-in and number of parts (odd ones carried up)."""
    gm = in_memory(data, n_components=3, random_state=0, device="cpu", max_iter=1)
    pieces = [emix.accumulate(gm, data[a:a + 50]) for a in range(0, 50 * 23, 50)]
    for n in (1, 2, 3, 5, 8, 13, 16, 17, 23):
        direct = emix.merge_in_order(pieces[:n]).to_bytes()
        for fan_in in (2, 4, 8, 16):
            (total,) = dask.compute(emix.dask.tree_merge([p.to_bytes() for p in pieces[:n]],
                                                         fan_in=fan_in), scheduler="sync")
            assert total == direct, (n, fan_in)
    with pytest.raises(ValueError, match="power of two"):
        emix.dask.tree_merge([pieces[0].to_bytes()], fan_in=6)
    # Large statistics make smaller merge tasks: 16 of 3 x 3 components' fit in the budget, and
    # a budget of three sets' bytes leaves pairs.
    estimator = emix.dask.GaussianMixture(3, device="cpu")
    model = gm._model()
    assert estimator._fan_in(model) == 16
    estimator.merge_task_bytes = 3 * len(pieces[0].to_bytes())
    assert estimator._fan_in(model) == 2


def test_dask_initialisation_is_deterministic(client, data):
    x = da.from_array(data, chunks=(300, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = emix.dask.GaussianMixture(3, random_state=1, device="cpu").fit(x)
        b = emix.dask.GaussianMixture(3, random_state=1, device="cpu").fit(x)
        # The sample is every row here (n < init_sample_rows): the in-memory initialisation.
        c = emix.GaussianMixture(3, random_state=1, device="cpu").fit(data)
    assert np.array_equal(a.means_, b.means_)
    assert rel(a.means_, c.means_) < 1e-12
    # NumPy input goes to the in-memory estimator.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = emix.dask.GaussianMixture(3, random_state=1, device="cpu").fit(data)
    assert np.array_equal(d.means_, c.means_)


def test_errors_pickle_with_distributed_imported(client):
    # distributed installs tblib's exception pickling, which cannot re-create OutOfMemory (an
    # emix.Error and a MemoryError); emix.dask registers its errors' own reducer.
    import pickle

    for kind in ("OutOfMemory", "InvalidArgument", "NumericalError"):
        try:
            emix._emix.raise_for_test(kind, "what went wrong")
        except emix.Error as error:
            again = pickle.loads(pickle.dumps(error))
            assert type(again) is type(error) and str(again) == "what went wrong"
    # An error on a worker reaches the client as itself.
    x = da.from_array(np.full((10, 2), np.nan), chunks=(5, 2))
    with pytest.raises(emix.InvalidArgument):
        emix.dask.GaussianMixture(2, device="cpu", weights_init=[0.5, 0.5],
                                  means_init=[[0, 0], [1, 1]],
                                  precisions_init=[np.eye(2), np.eye(2)]).fit(x)


def test_dask_initialisation_from_an_evenly_spaced_sample(client, data):
    x = da.from_array(data, chunks=(400, 3))
    estimator = emix.dask.GaussianMixture(3, random_state=2, device="cpu", tol=1e-4,
                                          init_sample_rows=300)
    # A parameter as scikit-learn's tools know them: get_params, set_params and clone keep it.
    assert estimator.get_params()["init_sample_rows"] == 300
    assert sklearn.base.clone(estimator).init_sample_rows == 300
    assert emix.dask.BinomialMixture(2, n_trials=4).set_params(init_sample_rows=9).n_trials == 4
    with pytest.raises(ValueError, match="'init_sample_rows' parameter of GaussianMixture must "
                                         "be an int >= 1"):
        emix.dask.GaussianMixture(3, init_sample_rows=0).fit(x)
    rows = np.unique(np.linspace(0, len(data) - 1, 300).astype(np.int64))
    start = in_memory(data[rows], n_components=3, random_state=2, device="cpu", max_iter=0)
    reference = in_memory(data, n_components=3, device="cpu", tol=1e-4,
                          weights_init=start.weights_, means_init=start.means_,
                          precisions_init=start.precisions_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(x)
    assert estimator.n_iter_ == reference.n_iter_
    assert rel(estimator.means_, reference.means_) < 1e-12


def test_weighted_initialisation_samples_rows_of_positive_weight(client, data):
    # Weights of 0 every other row: an evenly spaced sample of every row fell on the rows of
    # weight 0 ("initialisation: only 1 rows have positive weight"). The sample is evenly spaced
    # among the rows of positive weight: the in-memory fit of those rows from the same start.
    weights = (np.arange(len(data)) % 2).astype(float)
    x = da.from_array(data, chunks=(350, 3))
    estimator = emix.dask.GaussianMixture(3, random_state=2, device="cpu", tol=1e-4,
                                          init_sample_rows=301)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(x, sample_weight=weights)
    positive = np.flatnonzero(weights > 0)
    rows = positive[np.unique(np.linspace(0, len(positive) - 1, 301).astype(np.int64))]
    start = in_memory(data[rows], n_components=3, random_state=2, device="cpu", max_iter=0)
    reference = in_memory(data, sample_weight=weights, n_components=3, device="cpu", tol=1e-4,
                          weights_init=start.weights_, means_init=start.means_,
                          precisions_init=start.precisions_)
    assert estimator.n_iter_ == reference.n_iter_
    assert rel(estimator.means_, reference.means_) < 1e-12
    # A negative weight is named by its row, not counted as a zero ("the weights sum to 0").
    negative = -np.ones(len(data))
    with pytest.raises(emix.InvalidArgument, match="sample weights: row 1 is -1"):
        emix.dask.GaussianMixture(3, device="cpu").fit(x, sample_weight=negative)
    # Every weight positive: the rows of the unweighted sample.
    assert np.array_equal(emix.dask._sample_rows(da.ones(len(data), chunks=350), len(data), 300),
                          np.unique(np.linspace(0, len(data) - 1, 300).astype(np.int64)))


def test_weights_that_sum_to_zero_are_an_invalid_argument(client):
    data = (np.random.default_rng(5).random((100, 4)) < 0.5).astype(float)
    estimator = emix.dask.BernoulliMixture(
        n_components=2, device="cpu", weights_init=[0.5, 0.5],
        probabilities_init=[[0.6] * 4, [0.4] * 4])
    with pytest.raises(emix.InvalidArgument, match="sum to 0"):
        estimator.fit(da.from_array(data, chunks=(50, 4)), sample_weight=np.zeros(100))
    # Named before dask cuts the weights into the data's row blocks ("Chunks do not add up").
    with pytest.raises(emix.InvalidArgument, match=r"sample_weight.shape == \(5,\), expected "
                                                   r"\(100,\)"):
        estimator.fit(da.from_array(data, chunks=(50, 4)), sample_weight=np.ones(5))


def test_scalar_weights_and_weights_of_unknown_chunk_sizes(client, data):
    """fit(x, sample_weight=2.0) was refused ("sample_weight.shape == (), expected (1200,)")
    where the in-memory fit weighs every row alike, and so was emix.select of a Dask array;
    weights of unknown chunk sizes (a Dask DataFrame's column as an array) said
    "sample_weight.shape == (nan,)", without the hint that X and emix.select give."""
    x = da.from_array(data, chunks=(300, data.shape[1]))
    parameters = dict(n_components=2, random_state=0, device="cpu", tol=1e-4)
    spread = np.full(len(data), 2.0)
    scalar = emix.dask.GaussianMixture(**parameters).fit(x, sample_weight=2.0)
    reference = emix.dask.GaussianMixture(**parameters).fit(x, sample_weight=spread)
    assert scalar.n_iter_ == reference.n_iter_
    np.testing.assert_array_equal(scalar.means_, reference.means_)
    assert scalar.score(x, sample_weight=2.0).compute() == pytest.approx(scalar.score(data),
                                                                         rel=1e-12)
    grid = dict(n_components=[1, 2], covariance_types=["diag"], device="cpu")
    picked = emix.select(x, sample_weight=2.0, **grid)
    for a, b in zip(picked.candidates, emix.select(x, sample_weight=spread, **grid).candidates):
        assert {**a, "seconds": 0} == {**b, "seconds": 0}
    ones = da.ones(len(data), chunks=300)
    unknown = ones[ones > 0]
    assert np.isnan(unknown.shape[0])
    with pytest.raises(emix.InvalidArgument, match=r"sample_weight: .* unknown chunk sizes "
                                                   r"\(call sample_weight\.compute_chunk_sizes"):
        emix.dask.GaussianMixture(**parameters).fit(x, sample_weight=unknown)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_a_step_far_from_the_start_is_taken_again_about_the_new_means(client, covariance_type):
    """Data 1e8 from the starting means: the scatter about them, moved to the new means, kept
    none of a variance's digits, and the Dask fit's covariances were 140 % off (the in-memory
    fit takes the statistics again about the new means). Through the task graph and through
    the resident blocks of a persisted array alike."""
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, (2000, 2)), rng.normal(3, 1, (2000, 2))] + 1e8
    precision = {"full": np.tile(np.eye(2), (2, 1, 1)), "diag": np.ones((2, 2)),
                 "tied": np.eye(2), "spherical": np.ones(2)}[covariance_type]
    parameters = dict(n_components=2, covariance_type=covariance_type, device="cpu", tol=0,
                      max_iter=3, weights_init=[0.5, 0.5], means_init=[[0.0, 0.0], [1.0, 1.0]],
                      precisions_init=precision * 1e-10)
    reference = in_memory(x, **parameters)
    blocks = da.from_array(x, chunks=(1000, 2))
    for data in (blocks, blocks.persist()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = emix.dask.GaussianMixture(**parameters).fit(data)
        np.testing.assert_allclose(fitted.covariances_, reference.covariances_, rtol=1e-12)
        np.testing.assert_allclose(fitted.means_, reference.means_, rtol=1e-12)
    assert "resident" in fitted.report_.engine


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_constant_data_fit_as_in_memory(client, covariance_type):
    """1,000 copies of one row, K = 3: components empty at once, and one restarted from its own
    covariance (initialisation's identity) beside others of variance reg_covar emptied again
    every step, until the Dask fit failed "kept collapsing"; the in-memory fit converges."""
    x = np.full((1000, 3), 5.0)
    parameters = dict(n_components=3, covariance_type=covariance_type, random_state=0,
                      device="cpu")
    reference = in_memory(x, **parameters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = emix.dask.GaussianMixture(**parameters).fit(da.from_array(x, chunks=250))
    assert reference.converged_ and fitted.converged_
    assert fitted.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(fitted.means_, reference.means_, rtol=1e-12)
    np.testing.assert_allclose(fitted.lower_bound_, reference.lower_bound_, rtol=1e-12)


def test_empty_and_collapsed_components_are_reseeded(client, data):
    """A component that empties (its mean far from every row) or collapses onto identical rows
    (reg_covar=0) moves onto a random row, taking one row's share of the weight, as in the
    in-memory fit: the same row from the same start (the library's EM driver runs both); the
    report names it. Both take the other components' covariances, by
    their weights (an empty one's own says nothing of the data; a collapsed one's was shrinking
    onto the rows it collapsed on)."""
    n = len(data)
    x = da.from_array(data, chunks=(300, 3))
    d = data.shape[1]
    means = np.vstack([data[:3], np.full(d, 1e3)])
    parameters = dict(n_components=4, covariance_type="diag", device="cpu", max_iter=1,
                      random_state=7, weights_init=[0.3, 0.3, 0.3, 0.1], means_init=means,
                      precisions_init=np.ones((4, d)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = emix.dask.GaussianMixture(**parameters).fit(x)
        again = emix.dask.GaussianMixture(**parameters).fit(x)
    warning = fitted.report_.warnings[0]
    assert warning.startswith("iteration 1: component 3 was empty; re-seeded at row ")
    row = int(warning.rsplit(" ", 1)[1]) - 1  # messages number rows from 1
    assert 0 <= row < n
    assert np.array_equal(fitted.means_[3], data[row])
    pooled = np.average(fitted.covariances_[:3], axis=0, weights=fitted.weights_[:3])
    np.testing.assert_allclose(fitted.covariances_[3], pooled, rtol=1e-12)
    # One row's share, then the weights renormalised (the other three keep their M-step shares).
    assert fitted.weights_[3] == pytest.approx((1 / n) / (1 + 1 / n), rel=1e-12)
    assert np.array_equal(again.means_, fitted.means_)  # random_state fixes the row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        in_memory_fit = in_memory(data, **parameters)
    # The library's driver draws the row from the same generator, given the same start.
    assert fitted.report_.warnings == in_memory_fit.report_.warnings
    np.testing.assert_allclose(fitted.covariances_, in_memory_fit.covariances_, rtol=1e-12)
    np.testing.assert_allclose(fitted.means_, in_memory_fit.means_, rtol=1e-12)

    # Five identical rows far from the rest, and a component started on them with reg_covar=0:
    # its variances become exactly 0, and it is re-seeded rather than sent to the workers.
    stacked = np.vstack([data, np.tile(np.full(d, 40.0), (5, 1))])
    for covariance_type, precisions in (("diag", np.ones((2, d))),
                                        ("full", np.tile(np.eye(d), (2, 1, 1)))):
        collapsing = dict(n_components=2, covariance_type=covariance_type, device="cpu",
                          max_iter=1, random_state=3, reg_covar=0.0, weights_init=[0.9, 0.1],
                          means_init=[data.mean(axis=0), np.full(d, 40.0)],
                          precisions_init=precisions)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = emix.dask.GaussianMixture(**collapsing).fit(
                da.from_array(stacked, chunks=(400, 3)))
            reference = in_memory(stacked, **collapsing)
        warning = fitted.report_.warnings[0]
        assert "component 1 collapsed (singular covariance); re-seeded at row" in warning
        assert fitted.report_.warnings == reference.report_.warnings
        assert "component 1 collapsed (singular covariance)" in reference.report_.warnings[0]
        row = int(warning.rsplit(" ", 1)[1]) - 1
        assert np.array_equal(fitted.means_[1], stacked[row])
        assert np.all(np.isfinite(fitted.precisions_cholesky_))
        # The only other component's covariance, through a weighted mean of one term.
        for model in (fitted, reference):
            np.testing.assert_allclose(model.covariances_[1], model.covariances_[0], rtol=1e-14)


def test_components_that_keep_collapsing_on_coinciding_rows_fail_the_fit(client):
    """Five points repeated five times, K = 8, reg_covar=0: components on coinciding rows get
    covariances that are the rounding of zero (1e-37 and less), which count as collapsed; a step
    that re-seeded does not count toward convergence, and a fit that re-seeds to its end fails,
    as the in-memory fit does (which once called such a fit converged at -3e44 a row)."""
    points = np.random.default_rng(0).normal(size=(5, 2))
    x = np.repeat(points, 5, axis=0)
    kept_collapsing = 0
    for covariance_type in ("full", "diag", "spherical"):
        parameters = dict(n_components=8, covariance_type=covariance_type, device="cpu",
                          reg_covar=0.0, random_state=3, max_iter=30)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Or nothing valid to restart from: also an honest end.
            with pytest.raises(emix.NumericalError, match="increase reg_covar") as error:
                emix.dask.GaussianMixture(**parameters).fit(da.from_array(x, chunks=(10, 2)))
        kept_collapsing += "kept collapsing to the end" in str(error.value)
    assert kept_collapsing > 0


def test_empty_blocks_unknown_chunk_sizes_and_global_rows(client, data):
    # Filtering leaves an empty block; fit and predict go on as without it.
    x = da.from_array(data, chunks=(300, data.shape[1]))
    keep = da.from_array(np.arange(len(data)) >= 300, chunks=300)
    filtered = x[keep]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        emix.dask.GaussianMixture(2, random_state=0, device="cpu").fit(filtered)
    # Results block by block need no sizes (a pass to compute them costs one over the data).
    whole = emix.dask.GaussianMixture(2, random_state=0, device="cpu").fit(x)
    assert np.array_equal(whole.predict(filtered).compute(), whole.predict(data[300:]))
    assert np.array_equal(whole.score_samples(filtered).compute(),
                          whole.score_samples(data[300:]))
    assert float(whole.score(filtered).compute()) == pytest.approx(whole.score(data[300:]),
                                                                   rel=1e-14)
    # bic and aic too (they asked for compute_chunk_sizes(), which score did not).
    assert whole.bic(filtered) == pytest.approx(whole.bic(data[300:]), rel=1e-14)
    assert whole.aic(filtered) == pytest.approx(whole.aic(data[300:]), rel=1e-14)
    spoilt = data.copy()
    spoilt[700, 1] = np.nan
    unknown = da.from_array(spoilt, chunks=(300, data.shape[1]))[keep]
    with pytest.raises(emix.InvalidArgument, match=r"row 101, column 2 is nan \(in block 2, "
                                                   r"whose rows are counted within it"):
        whole.predict_proba(unknown).compute()
    filtered.compute_chunk_sizes()
    assert 0 in filtered.chunks[0]
    fitted = emix.dask.GaussianMixture(2, random_state=0, device="cpu").fit(filtered)
    alone = emix.dask.GaussianMixture(2, random_state=0, device="cpu").fit(
        da.from_array(data[300:], chunks=(300, data.shape[1])))
    assert rel(fitted.means_, alone.means_) < 1e-12
    labels = fitted.predict(filtered).compute()
    assert np.array_equal(labels, fitted.predict(data[300:]))
    assert fitted.predict_proba(filtered).compute().shape == (len(data) - 300, 2)

    # A NaN in row 801 is named as row 801 of the array, not of its block.
    spoiled = data.copy()
    spoiled[800, 1] = np.nan
    start = dict(weights_init=[0.5, 0.5], means_init=fitted.means_,
                 precisions_init=fitted.precisions_, device="cpu")
    named = r"row 801, column 2 is nan \(in block 2 \(rows 601\.\.900\)\)"
    with pytest.raises(emix.InvalidArgument, match=named):
        emix.dask.GaussianMixture(2, **start).fit(da.from_array(spoiled, chunks=(300, 4)))
    with pytest.raises(emix.InvalidArgument, match=named):
        fitted.predict(da.from_array(spoiled, chunks=(300, 4))).compute()
    # In the initialisation's evenly spaced sample (every third row of 900 here), the same:
    # the row of the array, not its place in the sample.
    sampled = emix.dask.GaussianMixture(2, random_state=0, device="cpu")
    sampled.set_params(init_sample_rows=300)
    rows = np.unique(np.linspace(0, len(data) - 1, 300).astype(np.int64))
    spoiled = data.copy()
    spoiled[rows[200], 1] = np.nan
    with pytest.raises(emix.InvalidArgument, match=rf"^data: row {rows[200] + 1}, column 2 "):
        sampled.fit(da.from_array(spoiled, chunks=(300, 4)))


def test_score_checks_weights_and_fit_calls_the_callback(client, data):
    x = da.from_array(data, chunks=(300, data.shape[1]))
    calls = []
    fitted = emix.dask.GaussianMixture(2, random_state=0, device="cpu", max_iter=3, tol=0,
                                       callback=calls.append).fit(x)
    assert [c.iteration for c in calls] == [0, 1, 2, 3]
    assert np.isnan(calls[0].change) and calls[-1].log_likelihood == pytest.approx(
        fitted.lower_bound_ * len(data), rel=1e-12)
    weights = np.ones(len(data))
    assert fitted.score(x, sample_weight=weights).compute() == pytest.approx(
        fitted.score(data), rel=1e-12)
    weights[500] = -3
    with pytest.raises(emix.InvalidArgument, match="row 501 is -3"):
        fitted.score(x, sample_weight=weights).compute()
    with pytest.raises(emix.InvalidArgument, match="sum to 0"):
        fitted.score(x, sample_weight=np.zeros(len(data))).compute()
    # No rows (a filter that keeps none): refused as in memory, where score was NaN, BIC -inf
    # (the best in a lowest-wins loop) and AIC a number. A filtered array's rows are counted as
    # its score is computed.
    nothing = x[x[:, 0] > 1e6]
    with pytest.raises(emix.InvalidArgument, match="Found array with 0 sample"):
        fitted.score(nothing).compute()
    with pytest.raises(emix.InvalidArgument, match="Found array with 0 sample"):
        fitted.score(nothing.compute_chunk_sizes(), sample_weight=np.ones(0)).compute()
    for criterion in (fitted.bic, fitted.aic):
        for rows in (nothing, nothing.compute_chunk_sizes()):
            with pytest.raises(emix.InvalidArgument, match="Found array with 0 sample"):
                criterion(rows)
    kept = x[x[:, 0] > 0]
    assert fitted.score(kept).compute() == pytest.approx(
        fitted.score(data[data[:, 0] > 0]), rel=1e-12)


def test_a_dask_fit_forgets_the_feature_names_of_an_earlier_fit(client, data):
    pd = pytest.importorskip("pandas", reason="pandas makes the DataFrame")
    pytest.importorskip("sklearn", reason="the feature-name checks are scikit-learn's")
    estimator = emix.dask.GaussianMixture(2, random_state=0, device="cpu")
    estimator.fit(pd.DataFrame(data, columns=[f"c{j}" for j in range(data.shape[1])]))
    assert hasattr(estimator, "feature_names_in_")
    estimator.fit(da.from_array(data, chunks=(300, data.shape[1])))
    assert not hasattr(estimator, "feature_names_in_")


def test_set_params_after_a_fit_changes_neither_shapes_nor_warm_starts(client, data):
    """An audit changed n_components (or covariance_type) after a Dask fit: predict_proba
    declared the new K while its blocks held the fitted one, and a warm start fitted the old
    model silently (or failed blaming reg_covar). Evaluations take the fitted model's K; a warm
    start that cannot go on is refused as the in-memory estimator refuses it."""
    x = da.from_array(data, chunks=(300, data.shape[1]))
    estimator = emix.dask.GaussianMixture(2, random_state=0, device="cpu", warm_start=True)
    estimator.fit(x)
    estimator.set_params(n_components=3)
    proba = estimator.predict_proba(x)
    assert proba.shape == (len(data), 2)
    assert proba.compute().shape == (len(data), 2)
    assert float(proba[:, 1].sum().compute()) > 0  # column slicing needs the declared shape
    with pytest.raises(emix.InvalidArgument, match="n_components is 3, but the fitted model"):
        estimator.fit(x)
    estimator.set_params(n_components=2, covariance_type="diag")
    with pytest.raises(emix.InvalidArgument, match="covariance_type is 'diag', but the fitted"):
        estimator.fit(x)
    # Data of another width: blamed on the Dask array's declared chunks before.
    estimator.set_params(covariance_type="full")
    narrow = x[:, :2]
    with pytest.raises(emix.InvalidArgument,
                       match=f"^init model has {data.shape[1]} features, but the data have 2 "):
        estimator.fit(narrow)
    with pytest.raises(emix.InvalidArgument,
                       match=f"^init model has {data.shape[1]} features, but the data have 2 "):
        emix.GaussianMixture(2, device="cpu", warm_start=True).fit(data).fit(data[:, :2])


def test_criteria_statistics_and_selection_of_a_dask_array_run_blockwise(client, data,
                                                                          monkeypatch):
    """bic, aic, emix.accumulate and emix.select computed a Dask array whole on the client
    (np.asarray); they now run block by block, with the in-memory answers. partial_fit, one
    step a batch, refuses a Dask array rather than read it whole as one batch."""
    x = da.from_array(data, chunks=(250, data.shape[1]))
    fitted = emix.dask.GaussianMixture(3, random_state=0, device="cpu").fit(x)
    whole = emix.GaussianMixture(3, device="cpu")
    whole._set_model(fitted._model())
    whole.n_features_in_ = data.shape[1]
    assert rel(fitted.bic(x), whole.bic(data)) < 1e-12
    assert rel(fitted.aic(x), whole.aic(data)) < 1e-12
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(data))  # as weighted select counts
    assert rel(fitted.bic(x, sample_weight=w), whole.bic(data, sample_weight=w)) < 1e-12
    assert rel(fitted.aic(x, sample_weight=w), whole.aic(data, sample_weight=w)) < 1e-12
    assert rel(fitted.bic(x, sample_weight=w), whole.bic(data)) > 1e-6
    # Weights the in-memory criteria refuse are refused blockwise too (they gave -7785.9 and inf).
    for bad in (np.full(len(data), 1e-310), np.full(len(data), 1e306)):
        with pytest.raises(emix.InvalidArgument, match="sample weights"):
            whole.bic(data, sample_weight=bad)
        with pytest.raises(emix.InvalidArgument, match="sample weights"):
            fitted.bic(x, sample_weight=bad)

    as_array = da.Array.__array__

    def no_whole_array(self, *args, **kwargs):
        assert self.shape[0] < len(data), "the Dask array was computed whole"
        return as_array(self, *args, **kwargs)

    monkeypatch.setattr(da.Array, "__array__", no_whole_array)
    statistics = emix.accumulate(whole, x)
    reference = emix.merge_in_order([emix.accumulate(whole, b)
                                     for b in np.array_split(data, [250, 500, 750, 1000])])
    assert statistics == reference  # the same blocks, merged in the same tree: bitwise
    picked = emix.select(x, n_components=[2, 3], covariance_types=["diag"], device="cpu")
    # Its estimators are emix.dask's: the in-memory ones computed the whole array here.
    best = picked.best_estimator_
    assert isinstance(best, emix.dask.GaussianMixture)
    labels = best.predict(x)
    assert isinstance(labels, da.Array)
    assert float(best.bic(x)) == pytest.approx(picked.best_["bic"], rel=1e-12)
    monkeypatch.undo()
    np.testing.assert_array_equal(labels.compute(), emix.GaussianMixture.predict(best, data))
    in_memory_pick = emix.select(data, n_components=[2, 3], covariance_types=["diag"],
                                 device="cpu")
    assert picked.best_["n_components"] == in_memory_pick.best_["n_components"]
    assert rel(picked.best_["bic"], in_memory_pick.best_["bic"]) < 1e-12
    with pytest.raises(TypeError, match="partial_fit takes a batch in memory"):
        fitted.partial_fit(x)


def test_select_of_a_dask_array_runs_on_the_workers(client, monkeypatch):
    """emix.select of a Dask array computed every block on the client on every pass; the
    blocks' statistics (and the initialisation's sampled rows) now come from the workers, only
    block 0 is read here, and the selection is bitwise that of the same chunks read here. More
    rows than the initialisation samples (131072), so that most are seen first by the
    workers."""
    rng = np.random.default_rng(7)
    n = 140_000
    X = np.concatenate([rng.normal(c, 1.0, size=(n // 2, 3)) for c in (0.0, 4.0)])
    X = X[rng.permutation(n)]
    w = rng.uniform(0.5, 2.0, n)
    x = da.from_array(X, chunks=(20_000, 3)).persist()
    read_here = []
    chunk = emix.dask._RemoteBlocks.chunk
    monkeypatch.setattr(emix.dask._RemoteBlocks, "chunk",
                        lambda self, i: read_here.append(i) or chunk(self, i))
    grid = dict(n_components=[1, 2, 3], covariance_types=["full", "diag"], device="cpu")
    for weights in (None, da.from_array(w, chunks=7_000)):
        picked = emix.select(x, sample_weight=weights, **grid)
        assert read_here == [0]
        assert picked.engine.startswith("cpu (1 thread")  # the workers' engine
        assert picked.engine.endswith(", 7 Dask blocks on 2 Dask workers")
        here = emix.select(emix.chunked(X, chunk_rows=20_000,
                                        sample_weight=None if weights is None else w), **grid)
        for a, b in zip(picked.candidates, here.candidates):
            assert {**a, "seconds": 0} == {**b, "seconds": 0}
        for a, b in zip(picked._estimators, here._estimators):
            for name in ("weights_", "means_", "covariances_"):
                assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert picked.best_["n_components"] == 2
        read_here.clear()

    with pytest.raises(emix.InvalidArgument, match="sample_weight has shape"):
        emix.select(x, sample_weight=w[:-1], **grid)

    # A bad value is named by its row of the whole array and its block, whether the
    # initialisation's sample meets it here (140,000 rows, 131,072 sampled) or a pass on a
    # worker does (10^6 rows, generated on the workers; the row is not sampled).
    passes = []
    run_pass = emix.dask._RemoteBlocks.chunk_statistics
    monkeypatch.setattr(emix.dask._RemoteBlocks, "chunk_statistics",
                        lambda self, p: passes.append(1) or run_pass(self, p))
    bad = X.copy()
    bad[100_000, 1] = np.nan  # block 5's first row
    with pytest.raises(emix.InvalidArgument,
                       match=r"row 100001, column 2 is nan \(in block 5 \(rows 100001..120000\)\)"):
        emix.select(da.from_array(bad, chunks=(20_000, 3)), **grid)
    assert not passes
    large = da.random.default_rng(8).normal(size=(1_000_000, 2), chunks=(125_000, 2))
    large[700_000, 1] = np.nan
    with pytest.raises(emix.InvalidArgument,
                       match=r"row 700001, column 2 is nan \(in block 5 \(rows 625001..750000\)\)"):
        emix.select(large, n_components=[1, 2], covariance_types=["diag"], device="cpu")
    assert passes


def test_select_of_a_dask_array_refuses_blocks_unlike_their_declaration(client, monkeypatch):
    """A block whose values are not the shape the array declares for it (a map_blocks that
    drops columns or adds rows) is named, where it corrupted the heap (too few columns) or
    was used silently (too many rows); a bad weight in the initialisation's sample is named
    by its row and block; a Dask Series of weights stays on the workers."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6000, 3))
    x = da.from_array(X, chunks=(2000, 3))
    grid = dict(n_components=[1, 2], covariance_types=["diag"], device="cpu")
    narrow = x.map_blocks(lambda b: b[:, :1], dtype=float)
    with pytest.raises(emix.InvalidArgument, match=r"block 0 \(rows 1..2000\): 2000 x 1 values, "
                       "but the Dask array declares 2000 x 3"):
        emix.select(narrow, **grid)

    def longer(b, block_info=None):
        return np.vstack([b, b[:500]]) if block_info[0]["chunk-location"][0] == 1 else b

    with pytest.raises(emix.InvalidArgument, match=r"block 1 \(rows 2001..4000\): 2500 x 3"):
        emix.select(x.map_blocks(longer, dtype=float), **grid)
    # fit checks the same: a shorter block was fitted silently (rows named later were off), a
    # narrower one said "statistics: the model has 9 mean values for K x D = 12".
    start = dict(weights_init=[1.0], means_init=[[0.0, 0.0, 0.0]],
                 precisions_init=[np.eye(3)], device="cpu", max_iter=2)
    with pytest.raises(emix.InvalidArgument, match=r"block 1 \(rows 2001..4000\): 2500 x 3 "
                                                   "values, but the Dask array declares 2000 x 3"):
        emix.dask.GaussianMixture(1, **start).fit(x.map_blocks(longer, dtype=float))
    with pytest.raises(emix.InvalidArgument, match=r"block 0 \(rows 1..2000\): 2000 x 1 values"):
        emix.dask.GaussianMixture(1, **start).fit(narrow)
    # The initialisation's sample too (NumPy's or Dask's own error, naming no block).
    for bad in (x.map_blocks(longer, dtype=float), narrow):
        with pytest.raises(emix.InvalidArgument, match=r"declares 2000 x 3"):
            emix.dask.GaussianMixture(2, device="cpu", random_state=0).fit(bad)
    # A sample too small for K is named as what it is, not as the data ("n_components = 5 is
    # larger than the number of rows (3)" of 6000).
    with pytest.raises(emix.InvalidArgument, match="init_sample_rows = 3 is fewer than "
                                                   "n_components = 5"):
        emix.dask.GaussianMixture(5, init_sample_rows=3, device="cpu").fit(x)
    one = da.from_array((np.arange(6000) == 7).astype(float), chunks=2000)
    with pytest.raises(emix.InvalidArgument, match="initialisation: only 1 rows have positive "
                                                   "weight, fewer than n_components = 2"):
        emix.dask.GaussianMixture(2, device="cpu").fit(x, sample_weight=one)
    # The evaluations too: predict gave 6500 labels for a declared 6000, and bic took 6000 rows
    # beside the log-likelihood of 6500.
    fitted = emix.dask.GaussianMixture(1, **start).fit(x)
    for evaluate in (fitted.predict, fitted.score_samples, fitted.predict_proba):
        with pytest.raises(emix.InvalidArgument, match=r"block 1 \(rows 2001..4000\): 2500 x 3 "
                                                       "values, but the Dask array declares"):
            evaluate(x.map_blocks(longer, dtype=float)).compute()
    with pytest.raises(emix.InvalidArgument, match=r"block 1 \(rows 2001..4000\): 2500 x 3"):
        fitted.bic(x.map_blocks(longer, dtype=float))

    w = np.ones(6000)
    w[4321] = -1.0
    with pytest.raises(emix.InvalidArgument, match=r"sample weights: row 4322 is -1, .* \(in "
                       r"block 2 \(rows 4001..6000\)\)"):
        emix.select(x, sample_weight=w, **grid)

    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    frame = dd.from_pandas(pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "w": rng.uniform(1, 2, 6000)}),
                           npartitions=3)
    as_array = da.Array.__array__

    def no_whole_array(self, *args, **kwargs):
        assert self.shape[0] < 6000, "the Dask array was computed whole"
        return as_array(self, *args, **kwargs)

    def no_whole_series(self, *args, **kwargs):
        raise AssertionError("the Dask Series of weights was computed whole")

    monkeypatch.setattr(da.Array, "__array__", no_whole_array)
    monkeypatch.setattr(type(frame["w"]), "__array__", no_whole_series)
    picked = emix.select(frame[["a", "b"]], sample_weight=frame["w"], **grid)
    monkeypatch.undo()
    here = emix.select(frame[["a", "b"]].compute(), sample_weight=frame["w"].compute(), **grid)
    for a, b in zip(picked.candidates, here.candidates):
        assert abs(a["bic"] - b["bic"]) <= 1e-12 * abs(b["bic"])


def test_a_dask_dataframe_is_fitted_blockwise_with_its_column_names(client, data):
    dd = pytest.importorskip("dask.dataframe", reason="dask.dataframe makes the frame")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn", reason="the feature-name checks are scikit-learn's")
    frame = dd.from_pandas(pd.DataFrame(data, columns=["a", "b", "c"]), npartitions=4)
    fitted = emix.dask.GaussianMixture(2, random_state=0, device="cpu").fit(frame)
    # Before: computed, an in-memory fit.
    assert fitted.report_.engine.endswith(", 4 Dask blocks on 2 Dask workers")
    assert list(fitted.feature_names_in_) == ["a", "b", "c"]
    labels = fitted.predict(frame)  # lazy: the partitions' lengths are known once computed
    assert isinstance(labels, da.Array) and labels.compute_chunk_sizes().shape == (len(data),)
    # Nullable columns are numbers, as the in-memory estimators read them (Dask made them
    # objects, "not numeric"); a column of text is named.
    nullable = pd.DataFrame(data, columns=["a", "b", "c"])
    nullable["c"] = pd.array(np.round(data[:, 2]), dtype="Int64")
    from_nullable = emix.dask.GaussianMixture(2, random_state=0, device="cpu").fit(
        dd.from_pandas(nullable, npartitions=4))
    in_memory_fit = in_memory(nullable.astype("float64").to_numpy(), n_components=2,
                              random_state=0, device="cpu", weights_init=from_nullable.weights_,
                              means_init=from_nullable.means_,
                              precisions_init=from_nullable.precisions_, max_iter=0)
    assert from_nullable.score(dd.from_pandas(nullable, npartitions=4)).compute() == (
        pytest.approx(in_memory_fit.score(nullable.astype("float64").to_numpy()), rel=1e-12))
    # A weighted score of a frame: its evaluation's block lengths were unknown, and multiplying
    # by the weights (cut by the known lengths) failed to broadcast.
    weights = np.random.default_rng(4).uniform(0.5, 2.0, len(data))
    for given in (weights, dd.from_pandas(pd.Series(weights), npartitions=4)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "X does not have valid feature names"
            weighted = fitted.score(frame, sample_weight=given).compute()
        assert weighted == pytest.approx(fitted.score(np.asarray(data), sample_weight=weights),
                                         rel=1e-12)
    # Its columns' names are checked as the unweighted score's are (the frame became rows
    # without names first, and swapped columns scored silently).
    with pytest.raises(ValueError, match="Feature names"):
        fitted.score(frame[["b", "a", "c"]], sample_weight=weights)
    text = pd.DataFrame({"a": data[:, 0], "name": ["x"] * len(data)})
    with pytest.raises(emix.InvalidArgument, match="column 'name': element type"):
        emix.dask.GaussianMixture(2, device="cpu").fit(dd.from_pandas(text, npartitions=2))
    # Complex values are refused as in memory (cast to float64, they lost their imaginary part);
    # a bool column beside float ones is a number (pandas interleaved them as objects).
    complex_frame = pd.DataFrame({"a": data[:, 0], "z": data[:, 1] + 1j})
    with pytest.raises(emix.InvalidArgument, match="column 'z': complex data are not supported"):
        emix.dask.GaussianMixture(2, device="cpu").fit(dd.from_pandas(complex_frame, npartitions=2))
    flags = pd.DataFrame({"a": data[:, 0], "b": data[:, 1], "flag": data[:, 2] > 0})
    mixed = emix.dask.GaussianMixture(2, random_state=0, device="cpu").fit(
        dd.from_pandas(flags, npartitions=2))
    assert mixed.means_.shape == (2, 3)


def test_the_initialisations_notes_and_identifiability_reach_the_report(client):
    """The Dask fit dropped the warnings of the initialisation it runs (a component left empty)
    and never stated that the data cannot identify the model (the three-coin ridge, too few
    binomial trials), which the in-memory fit reports and emits as FitWarnings. Its report and
    its warnings now hold the same lines (the re-seeded rows aside: the Dask fit draws its own)."""
    rng = np.random.default_rng(7)
    coins = (rng.random((300, 2)) < 0.3).astype(float)
    cases = [
        ("GaussianMixture", dict(n_components=3), np.r_[np.zeros((50, 2)), np.ones((50, 2))]),
        ("BernoulliMixture", dict(n_components=2), coins),
        ("BernoulliMixture", dict(n_components=2), coins[:, :1]),  # its text names the fit's mean
        ("BernoulliMixture", dict(n_components=2, weights_init=[0.5, 0.5],
                                  probabilities_init=[[0.2, 0.3], [0.6, 0.7]]), coins),
        ("BinomialMixture", dict(n_components=2, n_trials=2),
         rng.binomial(2, 0.4, size=(300, 1)).astype(float)),
    ]

    def fitted(module, name, parameters, x):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator = getattr(module, name)(random_state=0, device="cpu", **parameters).fit(x)
        lines = [line for line in estimator.report_.warnings if not line.startswith("iteration")]
        emitted = [str(w.message) for w in caught if issubclass(w.category, emix.FitWarning)
                   and not str(w.message).startswith("iteration")]
        return lines, emitted

    for name, parameters, x in cases:
        lines, emitted = fitted(emix, name, parameters, x)
        assert lines and emitted == lines, (name, parameters)
        assert fitted(emix.dask, name, parameters, da.from_array(x, chunks=(70, 2))) == (
            lines, emitted), (name, parameters)
    ridge = fitted(emix, "BernoulliMixture", {"n_components": 2}, coins)[0]
    warm = emix.dask.BernoulliMixture(2, random_state=0, device="cpu", warm_start=True)
    for _ in range(2):  # the second fit goes on from the first's model
        with pytest.warns(emix.FitWarning, match="not identifiable"):
            warm.fit(da.from_array(coins, chunks=(70, 2)))
        assert warm.report_.warnings == ridge


def test_select_and_accumulate_read_a_dask_dataframes_column_names(client, data):
    """emix.select of a Dask DataFrame gave estimators without feature_names_in_ (the frame had
    become chunks of a Dask array before its names were read), as emix.select of its pandas
    frame did not; emix.accumulate of one did not check its columns against the fit's."""
    dd = pytest.importorskip("dask.dataframe", reason="dask.dataframe makes the frame")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn", reason="the feature-name checks are scikit-learn's")
    frame = pd.DataFrame(data, columns=["a", "b", "c"])
    picked = emix.select(dd.from_pandas(frame, npartitions=3), n_components=[1, 2],
                         covariance_types="diag", device="cpu")
    assert list(picked.best_estimator_.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names should match"):
        emix.accumulate(picked.best_estimator_,
                        dd.from_pandas(frame[["b", "a", "c"]], npartitions=3))


def test_a_fixed_weight_of_zero_is_refused_as_in_memory():
    """With the in-memory fit's words (the Dask fit checks before its passes)."""
    X = np.random.default_rng(0).normal(size=(100, 2))
    settings = dict(weights_init=[0.0, 1.0], fixed_weights=True)
    with pytest.raises(emix.InvalidArgument) as in_memory:
        emix.GaussianMixture(2, **settings).fit(X)
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(emix.InvalidArgument) as distributed_fit:
            emix.dask.GaussianMixture(2, **settings).fit(da.from_array(X, chunks=50))
    assert str(distributed_fit.value) == str(in_memory.value)
    assert "component 0 (0-based) has weight 0" in str(in_memory.value)


def test_a_fit_of_one_row_is_refused_as_in_memory():
    one_row = np.ones((1, 2))
    with pytest.raises(emix.InvalidArgument) as in_memory:
        emix.GaussianMixture(1).fit(one_row)
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(emix.InvalidArgument) as distributed_fit:
            emix.dask.GaussianMixture(1).fit(da.from_array(one_row))
    assert str(distributed_fit.value) == str(in_memory.value)
    assert "minimum of 2 is required" in str(in_memory.value)


def test_evaluations_of_a_dask_dataframe_are_lazy(client):
    """predict, predict_proba and score_samples of a Dask DataFrame read its partitions only
    when their result is computed, once, as for a Dask array; they read the whole frame at
    call time (its partitions' lengths) and again on compute()."""
    import dask.dataframe as dd
    import pandas as pd

    data = overlapping_mixture(1, n=2000)
    frame = dd.from_pandas(pd.DataFrame(data, columns=list("abc")), npartitions=4)
    calls = []

    def counted(part):
        calls.append(len(part))
        return part

    with dask.config.set(scheduler="synchronous"):
        gm = emix.dask.GaussianMixture(2, random_state=0, device="cpu").fit(frame)
        for method in ("predict", "predict_proba", "score_samples"):
            lazy = frame.map_partitions(counted)  # Dask calls it on a 2-row sample for its meta
            calls.clear()
            result = getattr(gm, method)(lazy)
            assert calls == [], method
            np.testing.assert_array_equal(result.compute(), getattr(gm, method)(data))
            assert len(calls) == 4, method


def test_fewer_rows_than_components_and_complex_weights_are_refused_as_in_memory():
    """Two rows, K = 3, every *_init given: the Dask fit returned a model, the in-memory one
    refuses. Complex Dask weights lost their imaginary part; in memory they are refused."""
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    given = dict(n_components=3, device="cpu", weights_init=[0.2, 0.3, 0.5],
                 means_init=np.zeros((3, 2)), precisions_init=np.ones((3, 2)),
                 covariance_type="diag")
    with dask.config.set(scheduler="synchronous"):
        for fit in (lambda e: e.fit(x), lambda e: e.fit(da.from_array(x))):
            with pytest.raises(emix.InvalidArgument, match="Expected n_samples >= n_components"):
                fit(emix.dask.GaussianMixture(**given))
        rows = np.arange(8.0).reshape(4, 2)
        weights = np.ones(4) + 1j
        with pytest.raises(emix.InvalidArgument, match="complex128 is not real numbers"):
            emix.GaussianMixture(2, device="cpu").fit(rows, sample_weight=weights)
        with pytest.raises(emix.InvalidArgument, match="complex128 is not real numbers"):
            emix.dask.GaussianMixture(2, device="cpu").fit(
                da.from_array(rows, chunks=2), sample_weight=da.from_array(weights, chunks=2))


def test_a_persisted_array_is_fitted_by_actors_on_its_workers(client, data):
    """A persisted array's blocks stay where they are: one actor per worker computes their
    statistics, without a task graph per iteration. The fit is bitwise the task graph's (the
    same blocks merged in the same tree) and equals the in-memory fit, weighted or not."""
    weights = np.random.default_rng(3).uniform(0.5, 2.0, size=len(data))
    start = in_memory(data, n_components=3, random_state=0, device="cpu", max_iter=0)
    parameters = dict(n_components=3, device="cpu", tol=1e-6, weights_init=start.weights_,
                      means_init=start.means_, precisions_init=start.precisions_)
    lazy = da.from_array(data, chunks=(150, data.shape[1]))
    persisted = lazy.persist()
    distributed.wait(persisted)
    for sample_weight in (None, weights):
        reference = in_memory(data, sample_weight=sample_weight, **parameters)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = emix.dask.GaussianMixture(**parameters).fit(lazy, sample_weight=sample_weight)
            resident = emix.dask.GaussianMixture(**parameters).fit(persisted,
                                                                   sample_weight=sample_weight)
        assert graph.report_.engine.endswith(", 8 Dask blocks on 2 Dask workers")
        assert resident.report_.engine.endswith(", 8 Dask blocks resident on 2 Dask workers")
        assert resident.n_iter_ == graph.n_iter_ == reference.n_iter_ > 3
        for name in ("weights_", "means_", "covariances_", "lower_bounds_"):
            assert np.array_equal(getattr(resident, name), getattr(graph, name)), name
            assert rel(getattr(resident, name), getattr(reference, name)) < 1e-12, name
    # The fit releases its actors and the weights it persisted: the scheduler forgets them (a
    # message away) and keeps the persisted blocks.
    deadline = time.monotonic() + 10
    while len(client.who_has()) != 8:
        assert time.monotonic() < deadline, f"the fit left {sorted(map(str, client.who_has()))}"
        time.sleep(0.05)
    assert not any("_BlockActor" in str(key) for key in client.who_has())


def test_the_first_bad_block_is_named_whoever_computes_it(client, data, monkeypatch):
    """Bad rows in blocks 1 and 6 (of 8): the error names the first, as the in-memory fit does,
    on both paths and every time. The actors' answers came in worker order (the worker of block
    0 first), and a task graph raised whichever task failed first."""
    passes = []
    resident_statistics = emix.dask._ResidentPass.statistics

    def counted(self, pass_bytes):
        passes.append(self.n_blocks)
        return resident_statistics(self, pass_bytes)

    monkeypatch.setattr(emix.dask._ResidentPass, "statistics", counted)
    spoiled = data.copy()
    spoiled[200, 1] = np.nan
    spoiled[1000, 0] = np.inf
    start = dict(weights_init=[0.5, 0.5], means_init=data[:2],
                 precisions_init=np.stack([np.eye(data.shape[1])] * 2), device="cpu")
    with pytest.raises(ValueError, match=r"row 201, column 2"):
        emix.GaussianMixture(2, **start).fit(spoiled)
    named = r"row 201, column 2 is nan \(in block 1 \(rows 151\.\.300\)\)"
    lazy = da.from_array(spoiled, chunks=(150, data.shape[1]))
    persisted = lazy.persist()
    distributed.wait(persisted)
    for _ in range(3):
        for x in (lazy, persisted):
            with pytest.raises(emix.InvalidArgument, match=named):
                emix.dask.GaussianMixture(2, **start).fit(x)
    assert passes == [8, 8, 8]  # the persisted array's fits ran through the actors


def test_a_fit_goes_on_through_task_graphs_when_a_worker_is_lost(data):
    """A worker that dies takes its actor along; the fit recomputes through task graphs (the
    scheduler recomputes the blocks the worker held) and ends as the in-memory fit. A call to
    the dead worker's actor, relayed by the scheduler, waited out its connection attempts (30 s
    by default, 120 s here) before the fit went on; now it stops as soon as the scheduler knows
    the worker lost (under a second; 60 s allowed, far from both)."""
    import os

    start = in_memory(data, n_components=3, random_state=0, device="cpu", max_iter=0)
    parameters = dict(n_components=3, device="cpu", tol=0, max_iter=6,
                      weights_init=start.weights_, means_init=start.means_,
                      precisions_init=start.precisions_)
    reference = in_memory(data, **parameters)
    with dask.config.set({"distributed.comm.timeouts.connect": "120s"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None, memory_limit="1GiB") as cluster, \
            distributed.Client(cluster) as c:
        x = da.from_array(data, chunks=(150, data.shape[1])).persist()
        distributed.wait(x)
        victim = sorted(c.nthreads())[0]

        def kill_a_worker(state):
            if state.iteration == 2:
                try:
                    c.run(os._exit, 1, workers=[victim])
                except Exception:  # the worker's connection closes before it answers
                    pass

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = emix.dask.GaussianMixture(callback=kill_a_worker, **parameters).fit(x)
    assert fitted.report_.engine.endswith(", 8 Dask blocks on 2 Dask workers (resident until "
                                          "iteration 3, when a worker was lost)")
    assert fitted.report_.iteration_seconds[3] < 60
    for name in ("weights_", "means_", "covariances_"):
        assert rel(getattr(fitted, name), getattr(reference, name)) < 1e-12, name


def test_blocks_are_balanced_over_the_workers_threads():
    balanced = emix.dask._balanced
    keys = list("abcdefgh")
    rows = (100,) * 8
    # Dask left five blocks on one worker and three on the other: one moves.
    who_has = {k: ["A"] if i in (0, 1, 2, 4, 6) else ["B"] for i, k in enumerate(keys)}
    by_worker = balanced(who_has, {"A": 1, "B": 1}, keys, rows)
    assert sorted(map(len, by_worker.values())) == [4, 4]
    assert sum(who_has[keys[i]] != [w] for w, indices in by_worker.items() for i in indices) == 1
    # Rows follow the threads: a worker of three threads takes three quarters of the rows.
    by_worker = balanced({k: ["A"] for k in keys}, {"A": 1, "B": 3}, keys, rows)
    assert len(by_worker["B"]) == 6 and len(by_worker["A"]) == 2
    # Three blocks on one of two workers: one moves, whichever worker is listed first.
    for nthreads in ({"A": 1, "B": 1}, {"B": 1, "A": 1}):
        by_worker = balanced({k: ["A"] for k in "abc"}, nthreads, list("abc"), (100,) * 3)
        assert by_worker == {"A": [0, 1], "B": [2]}
    # Blocks of any size, each exactly once, in order within a worker.
    rows = (500, 10, 10, 300, 0, 90, 60, 30)
    by_worker = balanced({k: ["A", "B"] for k in keys}, {"A": 1, "B": 1}, keys, rows)
    assert sorted(i for indices in by_worker.values() for i in indices) == list(range(8))
    assert all(indices == sorted(indices) for indices in by_worker.values())


def test_a_worker_of_several_threads_runs_its_blocks_on_all_of_them(data):
    """The actor of a worker with two threads computes its blocks two at a time; the sums are
    bitwise those of one thread (each block's statistics do not depend on who computes them)."""
    start = in_memory(data, n_components=2, random_state=0, device="cpu", max_iter=0)
    parameters = dict(n_components=2, device="cpu", tol=0, max_iter=4,
                      weights_init=start.weights_, means_init=start.means_,
                      precisions_init=start.precisions_)
    results, pools = [], []
    actor_statistics = emix.dask._BlockActor.statistics

    def noted(self, pass_bytes):  # the actor runs in this process (processes=False)
        pools.append(0 if self.pool is None else self.pool._max_workers)
        return actor_statistics(self, pass_bytes)

    for threads in (1, 2):
        with mock.patch.object(emix.dask._BlockActor, "statistics", noted), \
                distributed.LocalCluster(n_workers=1, threads_per_worker=threads, processes=False,
                                         dashboard_address=None) as cluster, \
                distributed.Client(cluster):
            x = da.from_array(data, chunks=(100, data.shape[1])).persist()
            results.append(emix.dask.GaussianMixture(**parameters).fit(x))
            assert "resident" in results[-1].report_.engine
    assert set(pools[:5]) == {0} and set(pools[5:]) == {2}  # 5 passes each: no pool, then two
    assert np.array_equal(results[0].means_, results[1].means_)
    assert np.array_equal(results[0].covariances_, results[1].covariances_)


def test_statistics_of_the_same_model_twice_log_no_scheduler_errors(client, data):
    """emix.accumulate of one model over one array, called again at once, reused the task keys
    of the call before while the scheduler forgot them: "Couldn't gather keys" errors in the log
    and a rescheduled task (in about one run of 30 calls in two). Every call's tasks now have
    keys of their own."""
    import logging

    class Messages(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    gm = in_memory(data, n_components=2, random_state=0, device="cpu", max_iter=1)
    x = da.from_array(data, chunks=(150, data.shape[1])).persist()
    messages, logger = Messages(), logging.getLogger("distributed")
    logger.addHandler(messages)
    try:
        totals = {emix.accumulate(gm, x).to_bytes() for _ in range(30)}
    finally:
        logger.removeHandler(messages)
    assert len(totals) == 1
    assert not [line for line in messages.lines if "Couldn't gather" in line]


def test_a_process_makes_one_evaluator_per_evaluation_of_many_blocks(monkeypatch, data):
    """The blocks of one evaluation share their process's evaluator of the model (its check and
    factorisation made once), as later evaluations of the same model do; another model gets its
    own, and the last few are kept."""
    import emix.dask as emix_dask

    fitted = in_memory(data, n_components=3, random_state=0, device="cpu")
    expected = fitted.predict(data)  # before the count: the in-memory estimator makes one too
    made = []
    real = emix_dask._emix.Evaluator

    def counting(model, threads):
        made.append(model)
        return real(model, threads)

    monkeypatch.setattr(emix_dask._emix, "Evaluator", counting)
    model = emix_dask.GaussianMixture(n_components=3, device="cpu")
    model.__dict__.update(vars(fitted))
    x = da.from_array(data, chunks=(100, 2))  # 12 blocks
    with dask.config.set(scheduler="threads"):
        assert np.array_equal(model.predict(x).compute(), expected)
        assert len(made) == 1
        model.means_ = model.means_ + 0.25
        scores = model.score_samples(x).compute()
        scored = dict(vars(model))  # the attributes the scores came from (replaced, not changed)
        assert len(made) == 2
        model.score_samples(x).compute()  # the same model again: its evaluator is kept
        assert len(made) == 2
        # More models than are kept: the oldest go, the newest stay.
        for _ in range(emix_dask._EVALUATORS_KEPT + 1):
            model.means_ = model.means_ + 0.25
            model.predict(x).compute()
        assert len(made) == 3 + emix_dask._EVALUATORS_KEPT
        assert len(emix_dask._EVALUATORS) == emix_dask._EVALUATORS_KEPT
        model.predict(x).compute()
        assert len(made) == 3 + emix_dask._EVALUATORS_KEPT
    monkeypatch.undo()
    again = emix.GaussianMixture(n_components=3, device="cpu")
    again.__dict__.update(scored)
    assert np.array_equal(scores, again.score_samples(data))


def test_a_start_that_scores_every_row_at_minus_infinity_is_named_as_in_memory():
    """Means of 1e150 with variances of 1e-300 put every row at -inf at iteration 0: both fits
    named the data alone."""
    x = np.random.default_rng(0).normal(size=(400, 2))
    start = dict(weights_init=[1.0], means_init=[[1e150, 1e150]],
                 precisions_init=[[1e300, 1e300]], covariance_type="diag", device="cpu")
    expected = r"at iteration 0 \(check the data and the initial model for extreme values\)"
    with pytest.raises(emix.NumericalError, match=expected):
        emix.GaussianMixture(1, **start).fit(x)
    with pytest.raises(emix.NumericalError, match=expected):
        emix.dask.GaussianMixture(1, **start).fit(da.from_array(x, chunks=100))


def test_data_at_the_scale_of_the_subnormals_fail_as_in_memory():
    """Data of variance 1e-300 or less from a start of variance 1 (reg_covar=0): the step's
    covariances fall where the engines flush statistics to zero. The in-memory fit names that;
    the Dask fit, which ran its own EM loop, blamed the start ("the starting covariance of
    component 0 has a variance of 9.9e-301", at 1e-150) or failed in the M-step ("maximize:
    ... not positive semi-definite", at 1e-160). Both now run the library's driver."""
    rng = np.random.default_rng(0)
    for scale in (1e-150, 1e-160):
        x = rng.normal(size=(2000, 2)) * scale
        given = dict(weights_init=[0.5, 0.5], means_init=[[0.0, 0.0], [scale, scale]],
                     precisions_init=np.ones((2, 2)), covariance_type="diag")
        for start in ({}, given):  # the initialisation's own start, and one given
            parameters = dict(n_components=2, reg_covar=0.0, random_state=0, device="cpu",
                              **start)
            with pytest.raises(emix.NumericalError) as in_memory_fit:
                emix.GaussianMixture(**parameters).fit(x)
            with dask.config.set(scheduler="synchronous"):
                with pytest.raises(emix.NumericalError) as dask_fit:
                    emix.dask.GaussianMixture(**parameters).fit(da.from_array(x, chunks=500))
            assert str(dask_fit.value) == str(in_memory_fit.value), (scale, bool(start))
            if scale == 1e-150 and start:
                assert str(dask_fit.value).startswith("the covariance of every component has a "
                                                      "variance of 9.")


def test_statistics_too_large_for_the_client_are_added_on_the_workers(client, data,
                                                                      monkeypatch):
    """Where every block's statistics together would exceed merge_task_bytes (full covariances
    with large K D^2), the workers add them in merge_in_order's tree and the client receives
    one total, the persisted array's included (its actors would send every block's): the fit
    still equals the in-memory one, and the first bad block is still the one named."""
    start = in_memory(data, n_components=3, random_state=0, device="cpu", max_iter=0)
    parameters = dict(n_components=3, device="cpu", tol=1e-6, weights_init=start.weights_,
                      means_init=start.means_, precisions_init=start.precisions_)
    weights = np.random.default_rng(3).uniform(0.5, 2.0, size=len(data))
    answers = []
    run_pass = emix.dask._RemoteBlocks.chunk_statistics
    monkeypatch.setattr(emix.dask._RemoteBlocks, "chunk_statistics",
                        lambda self, p: answers.append(run_pass(self, p)) or answers[-1])
    lazy = da.from_array(data, chunks=(150, data.shape[1]))
    persisted = lazy.persist()
    distributed.wait(persisted)
    size = len(emix._emix.Statistics(start._model()).serialize())
    for x in (lazy, persisted):
        for sample_weight in (None, weights):
            reference = in_memory(data, sample_weight=sample_weight, **parameters)
            estimator = emix.dask.GaussianMixture(**parameters)
            estimator.merge_task_bytes = 3 * size  # 8 blocks' are too many; merge tasks of 2
            answers.clear()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = estimator.fit(x, sample_weight=sample_weight)
            assert fitted.report_.engine.endswith(", 8 Dask blocks on 2 Dask workers")
            assert answers and all(sum(a is not None for a in each) == 1 for each in answers)
            assert fitted.n_iter_ == reference.n_iter_ > 3
            for name in ("weights_", "means_", "covariances_", "lower_bounds_"):
                assert rel(getattr(fitted, name), getattr(reference, name)) < 1e-12, name
    spoiled = data.copy()
    spoiled[200, 1] = np.nan
    spoiled[1000, 0] = np.inf
    estimator = emix.dask.GaussianMixture(**parameters)
    estimator.merge_task_bytes = 3 * size
    with pytest.raises(emix.InvalidArgument,
                       match=r"row 201, column 2 is nan \(in block 1 \(rows 151\.\.300\)\)"):
        estimator.fit(da.from_array(spoiled, chunks=(150, data.shape[1])))


def test_statistics_about_given_centres_of_a_dask_array_are_the_arrays(client, data):
    """emix.accumulate(..., about=) returned a Dask array's statistics about the model's means,
    the centres given and their shape unread (the review's case)."""
    gm = in_memory(data, n_components=3, random_state=0, device="cpu", max_iter=1)
    about = np.asarray(gm.means_) + 0.5
    x = da.from_array(data, chunks=(250, data.shape[1]))
    blockwise = emix.accumulate(gm, x, about=about)
    whole = emix.accumulate(gm, data, about=about)
    np.testing.assert_array_equal(blockwise.centres, about)
    assert rel(blockwise.second_moments, whole.second_moments) < 1e-12
    with pytest.raises(emix.InvalidArgument, match="about has shape"):
        emix.accumulate(gm, x, about=np.zeros((7, 7)))


def test_a_block_of_tiny_weights_beside_normal_ones_is_judged_with_them(client, data):
    """Each block's weights were judged alone by the library's rule on the largest weight: a
    block of weights 1e-200 beside blocks of weight 1 was refused where the in-memory
    accumulate takes it (the review's case); all of them tiny is refused either way."""
    gm = in_memory(data, n_components=3, random_state=0, device="cpu", max_iter=1)
    x = da.from_array(data, chunks=(200, data.shape[1]))
    w = np.ones(len(data))
    w[:200] = 1e-200
    blockwise = emix.accumulate(gm, x, sample_weight=w)
    whole = emix.accumulate(gm, data, sample_weight=w)
    assert rel(blockwise.counts, whole.counts) < 1e-12
    with pytest.raises(emix.InvalidArgument, match="sample weights are all below"):
        emix.accumulate(gm, x, sample_weight=np.full(len(data), 1e-200))


def test_a_fit_from_a_given_start_judges_the_largest_weight_as_in_memory(client, data):
    """With every *_init given (or warm_start) no initialisation sample judged the weights, and
    the library judges only the chunks it reads itself: weights all 1e-302 were fitted, or
    failed as "components kept collapsing" (the review's case)."""
    d = data.shape[1]
    params = dict(n_components=2, device="cpu", weights_init=[0.5, 0.5], means_init=data[:2],
                  precisions_init=np.array([np.eye(d)] * 2))
    w = np.full(len(data), 1e-302)
    with pytest.raises(emix.InvalidArgument, match="sample weights are all below"):
        emix.GaussianMixture(**params).fit(data, sample_weight=w)
    x = da.from_array(data, chunks=(250, d))
    with pytest.raises(emix.InvalidArgument, match="sample weights are all below"):
        emix.dask.GaussianMixture(**params).fit(x, sample_weight=w)

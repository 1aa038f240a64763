"""Issue 14's public statistics API: accumulate over pieces, merge, maximize, bytes."""

import pickle
import warnings

import numpy as np
import pytest

import emix
from conftest import overlapping_mixture


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


def quiet_fit(estimator, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(x)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_two_halves_merged_give_one_em_step(covariance_type):
    x = overlapping_mixture(7, n=400)
    params = dict(n_components=3, covariance_type=covariance_type, random_state=1, device="cpu",
                  tol=0)
    start = quiet_fit(emix.GaussianMixture(max_iter=0, **params), x)
    one_step = quiet_fit(emix.GaussianMixture(max_iter=1, **params), x)
    stats = emix.accumulate(start, x[:150]).merge(emix.accumulate(start, x[150:]))
    assert stats.weight_sum == 400
    assert abs(stats.counts.sum() - 400) < 1e-9
    stepped = emix.maximize(start, stats)
    assert isinstance(stepped, emix.GaussianMixture)
    for name in ("weights_", "means_", "covariances_"):
        assert rel(getattr(stepped, name), getattr(one_step, name)) < 1e-12, name
    # The stepped copy is a usable model; the start is unchanged.
    assert np.isfinite(stepped.score(x))
    assert rel(start.means_, one_step.means_) > 1e-6


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_entropy_is_that_of_the_responsibilities(dtype):
    """Statistics.entropy is sum_n w_n H_n, H_n = -sum_k p log p, from predict_proba's
    responsibilities (another route: the evaluation path, then logarithms here); float64 to
    1e-12 relative, float32 to 1e-5 (responsibilities rounded to 24 bits)."""
    x = overlapping_mixture(11, n=500)
    w = np.random.default_rng(2).uniform(0.0, 2.0, size=len(x))
    model = quiet_fit(emix.GaussianMixture(n_components=3, random_state=0, device="cpu",
                                           max_iter=3, dtype=dtype), x)
    stats = emix.accumulate(model, x, sample_weight=w)
    p = model.predict_proba(x).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    expected = float(np.sum(w * h))
    assert stats.entropy > 0
    assert abs(stats.entropy - expected) <= (1e-12 if dtype == "float64" else 1e-5) * expected
    assert stats.values[2] == stats.entropy
    # The counts follow it in the flat buffer (float32: each tile's sums are float).
    assert stats.counts.sum() == pytest.approx(stats.weight_sum,
                                               rel=1e-12 if dtype == "float64" else 1e-6)


def test_bernoulli_statistics_with_weights():
    rng = np.random.default_rng(3)
    x = (rng.random((300, 6)) < rng.choice([0.2, 0.8], size=(300, 1))).astype(np.float64)
    w = rng.uniform(0.5, 2.0, size=300)
    params = dict(n_components=2, random_state=0, device="cpu", tol=0)
    start = quiet_fit(emix.BernoulliMixture(max_iter=0, **params), x)
    stats = emix.merge_in_order([emix.accumulate(start, x[a:a + 100], sample_weight=w[a:a + 100])
                                 for a in (0, 100, 200)])
    assert abs(stats.weight_sum - w.sum()) < 1e-9 * w.sum()
    assert stats.second_moments.size == 0
    stepped = emix.maximize(start, stats)
    one_step = emix.BernoulliMixture(max_iter=1, weights_init=start.weights_,
                                     probabilities_init=start.probabilities_, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one_step.fit(x, sample_weight=w)
    assert rel(stepped.probabilities_, one_step.probabilities_) < 1e-12
    assert rel(stepped.weights_, one_step.weights_) < 1e-12


def test_bytes_and_pickle_round_trip_bitwise():
    x = overlapping_mixture(11, n=200)
    gm = quiet_fit(emix.GaussianMixture(3, random_state=0, device="cpu", max_iter=2), x)
    stats = emix.accumulate(gm, x)
    data = stats.to_bytes()
    assert isinstance(data, bytes)
    back = emix.Statistics.from_bytes(data)
    assert back.to_bytes() == data
    assert np.array_equal(back.values, stats.values)
    assert np.array_equal(back.centres, gm.means_)
    assert back == stats
    assert pickle.loads(pickle.dumps(stats)).to_bytes() == data
    assert back.second_moments.shape == (3, 3, 3)
    with pytest.raises(emix.InvalidArgument):
        emix.Statistics.from_bytes(data[:-3])
    with pytest.raises(emix.InvalidArgument):
        emix.Statistics.from_bytes(b"not statistics")
    # A flipped sign bit in N_k (the 48-byte header, the centres, three totals, then N_k).
    n_k = 48 + 8 * gm.means_.size + 8 * 3
    flipped = bytearray(data)
    flipped[n_k + 7] ^= 0x80
    with pytest.raises(emix.InvalidArgument, match="N_k of component 0 is negative"):
        emix.Statistics.from_bytes(bytes(flipped))


def test_maximize_refuses_statistics_without_weight():
    x = overlapping_mixture(12, n=200)
    gm = quiet_fit(emix.GaussianMixture(2, random_state=0, device="cpu", max_iter=2), x)
    stats = emix.accumulate(gm, x, sample_weight=np.zeros(len(x)))
    with pytest.raises(ValueError, match="hold no weight"):
        emix.maximize(gm, stats)


def test_rows_without_any_are_zero_statistics_that_merge_as_nothing():
    """As the C and C++ APIs take them: a filtered partition of a frame may hold no rows."""
    x = overlapping_mixture(12, n=200)
    gm = quiet_fit(emix.GaussianMixture(2, random_state=0, device="cpu", max_iter=2), x)
    whole = emix.accumulate(gm, x)
    for empty in (x[:0], x[:0].astype(np.float32)):
        nothing = emix.accumulate(gm, empty, sample_weight=np.zeros(0))
        assert (nothing + whole).to_bytes() == whole.to_bytes()
        assert (whole + nothing).to_bytes() == whole.to_bytes()
    with pytest.raises(ValueError, match="features, but the model has"):
        emix.accumulate(gm, np.empty((0, x.shape[1] + 1)))
    with pytest.raises(ValueError, match="sample_weight"):
        emix.accumulate(gm, x[:0], sample_weight=np.ones(3))


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_maximize_names_a_component_that_collapsed_without_reg_covar(covariance_type):
    # Fifty identical rows own component 0: with reg_covar = 0 its new covariance is singular,
    # which fit re-seeds; maximize's model names it rather than numpy's LinAlgError or an
    # infinite precision.
    # The start's tight components give the far rows a responsibility of exactly 0, so that
    # component 0's scatter is exactly 0 (not rounding noise that may factorise).
    rng = np.random.default_rng(1)
    x = np.vstack([np.zeros((50, 3)), rng.normal(size=(100, 3)) + 5])
    precisions = {"full": np.stack([100 * np.eye(3)] * 2), "diag": np.full((2, 3), 100.0)}
    gm = quiet_fit(emix.GaussianMixture(2, covariance_type=covariance_type, reg_covar=0,
                                        means_init=[[0, 0, 0], [5, 5, 5]],
                                        precisions_init=precisions[covariance_type],
                                        random_state=0, device="cpu", max_iter=0), x)
    with pytest.raises(emix.InvalidArgument,
                       match="covariance of component 0 is not positive definite.*reg_covar > 0"):
        emix.maximize(gm, emix.accumulate(gm, x))


def test_maximize_refuses_a_covariance_singular_to_rounding():
    # Rows on the line y = x: component 0's new covariance is singular, but rounding left its
    # factorisation a pivot just above 0, which the model check passed; the model scored a row
    # off the line at -4.5e15. fit calls it singular (16 d epsilon of a variance), and so does
    # maximize.
    x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    gm = quiet_fit(emix.GaussianMixture(2, reg_covar=0, weights_init=[0.5, 0.5],
                                        means_init=[[0.5, 0.5], [2.5, 2.5]],
                                        precisions_init=np.stack([np.eye(2)] * 2),
                                        random_state=0, device="cpu", max_iter=0), x)
    with pytest.raises(emix.InvalidArgument,
                       match="covariance of component 0 is not positive definite.*reg_covar > 0"):
        emix.maximize(gm, emix.accumulate(gm, x))
    emix.maximize(gm, emix.accumulate(gm, x), reg_covar=1e-6)  # the default: no collapse
    # A tied covariance has no component a fit could re-seed: the advice is reg_covar's.
    tied = quiet_fit(emix.GaussianMixture(2, covariance_type="tied", reg_covar=0,
                                          weights_init=[0.5, 0.5],
                                          means_init=[[0.5, 0.5], [2.5, 2.5]],
                                          precisions_init=np.eye(2), random_state=0,
                                          device="cpu", max_iter=0), x)
    with pytest.raises(emix.InvalidArgument, match="^the tied covariance is not positive definite: "
                                                   "the rows lie in a subspace .* increase "
                                                   "reg_covar from 0$"):
        emix.maximize(tied, emix.accumulate(tied, x))


def test_maximize_refuses_a_corrupted_scatter():
    x = overlapping_mixture(12, n=200)
    gm = quiet_fit(emix.GaussianMixture(2, random_state=0, device="cpu", max_iter=2), x)
    data = bytearray(emix.accumulate(gm, x).to_bytes())
    q = float(np.asarray(emix.accumulate(gm, x).second_moments)[0, 0, 0])
    at = bytes(data).find(np.float64(q).tobytes())
    data[at:at + 8] = np.float64(-q).tobytes()
    # The bytes' checksum refuses them as they are read ...
    with pytest.raises(emix.InvalidArgument, match="the checksum does not match"):
        emix.Statistics.from_bytes(bytes(data))
    # ... and the M-step refuses such statistics where no checksum stands guard: format 2 (the
    # version field at bytes 8-11), which has none.
    old = data[:-8]
    old[8:12] = (2).to_bytes(4, "little")
    with pytest.raises(emix.InvalidArgument, match="scatter of component 0, feature 0 is negative"):
        emix.maximize(gm, emix.Statistics.from_bytes(bytes(old)))


def test_merge_order_is_the_stated_tree():
    x = overlapping_mixture(5, n=500)
    gm = quiet_fit(emix.GaussianMixture(3, random_state=0, device="cpu", max_iter=1), x)
    parts = [emix.accumulate(gm, x[a:a + 100]) for a in range(0, 500, 100)]
    expected = ((parts[0] + parts[1]) + (parts[2] + parts[3])) + parts[4]
    assert emix.merge_in_order(parts).to_bytes() == expected.to_bytes()
    # Two merges commute bitwise.
    assert (parts[0] + parts[1]).to_bytes() == (parts[1] + parts[0]).to_bytes()
    # Any chunking gives the same model to 1e-12.
    whole = emix.maximize(gm, emix.accumulate(gm, x))
    merged = emix.maximize(gm, emix.merge_in_order(parts))
    assert rel(merged.covariances_, whole.covariances_) < 1e-12


def test_merge_rejects_other_models_and_recentres():
    x = overlapping_mixture(5, n=200)
    a = quiet_fit(emix.GaussianMixture(3, random_state=0, device="cpu", max_iter=1), x)
    b = quiet_fit(emix.GaussianMixture(3, random_state=0, device="cpu", max_iter=2), x)
    sa, sb = emix.accumulate(a, x), emix.accumulate(b, x)
    with pytest.raises(emix.InvalidArgument):
        sa.merge(sb)
    moved = sb.recentred(a.means_)
    assert np.array_equal(moved.centres, a.means_)
    assert rel(moved.counts, sb.counts) == 0
    with pytest.raises(TypeError):
        emix.merge_in_order([sa, "x"])
    with pytest.raises(ValueError):
        emix.merge_in_order([])
    with pytest.raises(emix._sklearn.NotFittedError):
        emix.accumulate(emix.GaussianMixture(), x)


def test_accumulate_over_a_chunk_source():
    x = overlapping_mixture(9, n=300)
    gm = quiet_fit(emix.GaussianMixture(3, random_state=0, device="cpu", max_iter=1), x)
    pieces = [x[a:a + 70] for a in range(0, 300, 70)]
    by_chunks = emix.accumulate(gm, emix.chunked(x, chunk_rows=70))
    assert by_chunks == emix.merge_in_order([emix.accumulate(gm, p) for p in pieces])
    assert emix.accumulate(gm, pieces) == by_chunks
    with pytest.raises(ValueError, match="chunk 1"):
        emix.accumulate(gm, [x[:10], x[10:20, :2]])
    # An empty piece (an empty row group, a filtered batch) adds zero statistics in its place
    # in the merge's tree, as emix.dask's tree takes an empty block: bitwise the merge of every
    # piece's. Dropped, it paired the pieces after it otherwise.
    with_empty = [x[:1], x[1:1], x[1:150], x[150:]]
    assert emix.accumulate(gm, with_empty) == \
        emix.merge_in_order([emix.accumulate(gm, p) for p in with_empty])
    assert emix.accumulate(gm, [x[:0], x[:0]]) == emix.accumulate(gm, x[:0])
    # Read once, so a generator will do; an error names the row of the whole source.
    assert emix.accumulate(gm, (p for p in pieces)) == by_chunks
    spoiled = x.copy()
    spoiled[150, 2] = np.nan
    with pytest.raises(emix.InvalidArgument,
                       match=r"^data: row 151, column 3 is nan \(in chunk 2 \(rows 141\.\.210\)\)"):
        emix.accumulate(gm, emix.chunked(spoiled, chunk_rows=70))


def test_binomial_statistics_of_other_trials_are_refused_naming_them():
    x = np.random.default_rng(3).integers(0, 6, size=(200, 3)).astype(np.float64)
    five = quiet_fit(emix.BinomialMixture(2, n_trials=5, random_state=0, device="cpu"), x)
    seven = quiet_fit(emix.BinomialMixture(2, n_trials=7, random_state=0, device="cpu"), x)
    with pytest.raises(emix.InvalidArgument, match="trials = 7 into binomial, K = 2, D = 3, "
                                                   "trials = 5"):
        emix.accumulate(five, x).merge(emix.accumulate(seven, x))
    with pytest.raises(emix.InvalidArgument, match="trials = 5 for a model of .* trials = 7"):
        emix.maximize(seven, emix.accumulate(five, x))


def test_a_maximized_copy_does_not_continue_its_sources_online_stream():
    """maximize() copies the estimator; copy.copy pickles the online state into a checkpoint,
    which the copy kept: its next partial_fit blended into the source's running statistics (6
    steps, means 0.1 off). The copy now starts a stream of its own, as a fresh estimator."""
    x = overlapping_mixture(20240605, n=1200)
    batches = np.array_split(x, 6)
    source = emix.GaussianMixture(2, random_state=0, device="cpu")
    for b in batches[:5]:
        source.partial_fit(b)
    statistics = emix.accumulate(source, x)
    copy = emix.maximize(source, statistics)
    fresh = emix.maximize(source, statistics)
    for name in ("_online_", "_online_checkpoint_", "_online_settings_"):
        assert name not in copy.__dict__
    # The copy's stream weighs its model as the statistics' weight (step_offset='auto'), as a
    # clean estimator of that model does with the same offset.
    assert copy.partial_fit(batches[5]).n_iter_ == 1
    clean = emix.GaussianMixture(2, random_state=0, device="cpu",
                                 step_offset=statistics.weight_sum / len(batches[5]) + 1)
    clean._set_model(fresh._model())
    clean.n_features_in_ = x.shape[1]
    assert rel(copy.means_, clean.partial_fit(batches[5]).means_) == 0


def test_statistics_options_and_centres_are_checked_where_they_come_in():
    x = overlapping_mixture(20240606, n=600)
    model = quiet_fit(emix.GaussianMixture(3, random_state=0, device="cpu"), x)
    statistics = emix.accumulate(model, x)
    # bool('no') was True: fixed weights the caller meant to refuse.
    with pytest.raises(ValueError, match="fixed_weights must be a bool, got 'no'"):
        emix.maximize(model, statistics, fixed_weights="no")
    with pytest.raises(ValueError, match="reg_covar must be a number"):
        emix.maximize(model, statistics, reg_covar="1e-6")
    # NaN centres were accepted, and only from_bytes or maximize refused what they made.
    with pytest.raises(ValueError, match="centre 1 is nan"):
        statistics.recentred(np.where(np.arange(9).reshape(3, 3) == 4, np.nan, 0.0))
    halves = [emix.accumulate(model, h) for h in np.array_split(x, 2)]
    assert sum(halves) == halves[0] + halves[1]  # sum() starts from 0


def test_a_step_whose_sums_lost_digits_warns_and_about_the_new_means_is_exact():
    # Two tight clusters a long way from the start's means: sums about those means round away
    # the digits of covariances of 1e-6 (2.7e-6 relative off the fit's step, silently, before).
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(500, 2)) * 1e-3 + 1000,
                        rng.normal(size=(500, 2)) * 1e-3 - 1000])
    params = dict(n_components=2, device="cpu", tol=0, weights_init=[0.5, 0.5],
                  means_init=[[900.0, 900.0], [-900.0, -900.0]],
                  precisions_init=np.array([np.eye(2)] * 2))
    start = quiet_fit(emix.GaussianMixture(max_iter=0, **params), x)
    one_step = quiet_fit(emix.GaussianMixture(max_iter=1, **params), x)
    with pytest.warns(emix.FitWarning, match="about="):
        rough = emix.maximize(start, emix.accumulate(start, x[:500]) + emix.accumulate(start,
                                                                                       x[500:]))
    assert rel(rough.covariances_, one_step.covariances_) > 1e-9  # what the warning is about
    again = emix.accumulate(start, x[:500], about=rough.means_) + emix.accumulate(
        start, x[500:], about=rough.means_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact = emix.maximize(start, again)
    for name in ("weights_", "means_", "covariances_"):
        assert rel(getattr(exact, name), getattr(one_step, name)) < 1e-12, name
    with pytest.raises(emix.InvalidArgument, match=r"about has shape \(3, 2\)"):
        emix.accumulate(start, x, about=np.zeros((3, 2)))


def test_weights_that_flush_or_overflow_are_refused_where_statistics_are_made():
    x = overlapping_mixture(3, n=400)
    gm = quiet_fit(emix.GaussianMixture(2, random_state=0, device="cpu"), x)
    # As fit refuses them: 1e-300 gave a step 1e-8 off the unit-weight one, 1e-310 dropped the
    # rows (a partial_fit batch without a step). Chunks are judged together, as a fit judges
    # them: one of tiny weights beside one of normal weights is taken.
    for tiny in (1e-300, 1e-310):
        with pytest.raises(emix.InvalidArgument, match="sample weights are all below"):
            emix.accumulate(gm, x, sample_weight=np.full(len(x), tiny))
        weights = np.concatenate([np.full(200, tiny), np.ones(len(x) - 200)])
        chunks = emix.chunked(x, chunk_rows=200, sample_weight=weights)
        assert emix.accumulate(gm, chunks).weight_sum == pytest.approx(len(x) - 200)
        with pytest.raises(emix.InvalidArgument, match="sample weights are all below"):
            emix.accumulate(gm, emix.chunked(x, chunk_rows=200,
                                             sample_weight=np.full(len(x), tiny)))
        stream = emix.GaussianMixture(2, random_state=0, device="cpu")
        quiet_fit(stream, x)
        stream.partial_fit(x[:200])
        steps = stream.n_iter_
        with pytest.raises(emix.InvalidArgument, match="sample weights are all below"):
            stream.partial_fit(x[200:], sample_weight=np.full(200, tiny))
        assert stream.n_iter_ == steps
    # All zero is still a piece of the data that adds nothing.
    assert emix.accumulate(gm, x, sample_weight=np.zeros(len(x))).weight_sum == 0
    huge = np.ones(len(x))
    huge[0] = 1e308
    with pytest.raises(emix.NumericalError, match="overflow.*scale them down"):
        emix.accumulate(gm, x, sample_weight=huge)


def test_an_empty_chunk_of_another_width_is_refused_as_fit_refuses_it():
    x = overlapping_mixture(3, n=400)
    gm = quiet_fit(emix.GaussianMixture(2, random_state=0, device="cpu"), x)
    with pytest.raises(emix.InvalidArgument, match="chunk 1 has 7 features"):
        emix.accumulate(gm, [x[:10], np.empty((0, 7)), x[10:]])


def test_a_maximized_copy_says_no_fit_made_it_as_a_loaded_model_file_does(tmp_path):
    """The copy had no report_ at all (an AttributeError) where a model file without a fit
    section loads with report_ None; it kept the source's converged_ and n_iter_ neither."""
    x = overlapping_mixture(20240607, n=600)
    fitted = emix.GaussianMixture(2, random_state=0, device="cpu").fit(x)
    stepped = emix.maximize(fitted, emix.accumulate(fitted, x))
    stepped.save(tmp_path / "m.json")
    loaded = emix.load_model(tmp_path / "m.json")
    for model in (stepped, loaded):
        assert model.report_ is None and model.converged_ is False and model.n_iter_ == 0
        assert np.isnan(model.lower_bound_) and model.lower_bounds_.shape == (0,)
    assert np.array_equal(loaded.means_, stepped.means_)
    # partial_fit's steps, which no fit's report describes either (both were removed).
    streamed = emix.GaussianMixture(2, random_state=0, device="cpu").fit(x).partial_fit(x[:100])
    assert streamed.report_ is None and streamed.lower_bounds_.shape == (0,)

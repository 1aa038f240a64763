"""Issue 14: emix.select fits a K x covariance-type grid deterministically; its best candidate
equals its own fit; the table and the plot."""

import re
import warnings

import numpy as np
import pytest

import emix


@pytest.fixture(scope="module")
def three_clusters():
    rng = np.random.default_rng(42)
    centres = np.array([[-5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    labels = rng.choice(3, size=600, p=[0.4, 0.35, 0.25])
    return centres[labels] + rng.normal(size=(600, 2))


def run(x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return emix.select(x, n_components=range(1, 6), covariance_types=("full", "diag"),
                           random_state=3, device="cpu", **kw)


def test_select_picks_true_k_deterministically(three_clusters):
    a = run(three_clusters)
    b = run(three_clusters)
    assert a.best_["n_components"] == 3
    assert len(a.candidates) == 10
    strip = [{k: v for k, v in c.items() if k != "seconds"} for c in a.candidates]
    assert strip == [{k: v for k, v in c.items() if k != "seconds"} for c in b.candidates]
    assert a.best_index_ == b.best_index_
    for name in ("means_", "covariances_", "weights_"):
        assert np.array_equal(getattr(a.best_estimator_, name),
                              getattr(b.best_estimator_, name))
    assert [c["covariance_type"] for c in a.candidates[:5]] == ["full"] * 5
    assert [c["n_components"] for c in a.candidates[:5]] == [1, 2, 3, 4, 5]
    for c in a.candidates:
        assert set(c) >= {"log_likelihood", "bic", "aic", "icl", "n_iter", "seconds"}
        assert c["icl"] >= c["bic"] - 1e-9


def test_candidates_equal_their_own_fits(three_clusters):
    result = run(three_clusters, criterion="icl")
    for index in (result.best_index_, 6):
        row = result.candidates[index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            own = emix.GaussianMixture(row["n_components"],
                                       covariance_type=row["covariance_type"], random_state=3,
                                       device="cpu").fit(three_clusters)
        got = result.estimator(index)
        assert got.n_iter_ == own.n_iter_
        for name in ("weights_", "means_", "covariances_"):
            assert np.array_equal(getattr(got, name), getattr(own, name)), (index, name)
        assert row["bic"] == pytest.approx(own.bic(three_clusters), rel=1e-12)
        assert np.array_equal(got.predict(three_clusters), own.predict(three_clusters))


def test_table_and_plot(three_clusters, tmp_path):
    result = run(three_clusters, criterion="aic")
    table = result.table
    pandas = pytest.importorskip("pandas")
    assert isinstance(table, pandas.DataFrame)
    assert list(table["n_components"][:5]) == [1, 2, 3, 4, 5]
    assert table["aic"].idxmin() == result.best_index_
    pytest.importorskip("matplotlib")
    path = tmp_path / "criteria.png"
    result.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best by aic" in repr(result)


def test_bernoulli_select_and_errors():
    rng = np.random.default_rng(1)
    p = np.array([[0.9] * 4 + [0.1] * 4, [0.1] * 4 + [0.9] * 4])
    x = (rng.random((400, 8)) < p[rng.integers(0, 2, 400)]).astype(float)
    result = emix.select(x, n_components=[1, 2, 3], family="bernoulli", random_state=0,
                         device="cpu")
    assert isinstance(result.best_estimator_, emix.BernoulliMixture)
    assert result.best_["n_components"] == 2
    assert [c["covariance_type"] for c in result.candidates] == [None] * 3  # no such choice
    with pytest.raises(ValueError):
        emix.select(x, n_components=[], device="cpu")
    with pytest.raises(ValueError):
        emix.select(x, criterion="bad", device="cpu")
    # A RandomState (None: NumPy's global one) gives one seed for the grid, as the estimators
    # draw theirs; each candidate is its own fit from that seed. Anything else is refused.
    seed = int(np.random.RandomState(5).randint(np.iinfo(np.int32).max))
    drawn = emix.select(x, n_components=[1, 2], family="bernoulli",
                        random_state=np.random.RandomState(5), device="cpu")
    fixed = emix.select(x, n_components=[1, 2], family="bernoulli", random_state=seed,
                        device="cpu")
    assert [c["bic"] for c in drawn.candidates] == [c["bic"] for c in fixed.candidates]
    assert np.array_equal(drawn.best_estimator_.probabilities_,
                          fixed.best_estimator_.probabilities_)
    emix.select(x, n_components=[1, 2], family="bernoulli", random_state=None, device="cpu")
    with pytest.raises(ValueError, match="random_state: 'x' cannot be used to seed"):
        emix.select(x, random_state="x", device="cpu")
    with pytest.raises(ValueError, match="reg_covar must be a finite float >= 0, got -1"):
        emix.select(x, reg_covar=-1, family="bernoulli", device="cpu")
    with pytest.raises(ValueError, match=r"prob_epsilon must be a float in \[2\*\*-53, 0.5\), got 0.7"):
        emix.select(x, prob_epsilon=0.7, device="cpu")
    with pytest.raises(ValueError, match="covariance_types must be among .* got 'banana'"):
        emix.select(x, covariance_types=("banana",), family="bernoulli", device="cpu")
    # prob_epsilon reaches the candidates: the all-zero column's probability is eps.
    zeros = x.copy()
    zeros[:, 0] = 0
    fitted = emix.select(zeros, n_components=[1], family="bernoulli", prob_epsilon=0.01,
                         device="cpu").best_estimator_
    assert fitted.probabilities_[0, 0] == 0.01


def test_sample_weights_and_plot_on_axes(three_clusters):
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(three_clusters))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = emix.select(three_clusters, n_components=[2, 3], covariance_types=("diag",),
                             random_state=3, device="cpu", sample_weight=w)
        own = emix.GaussianMixture(3, covariance_type="diag", random_state=3,
                                   device="cpu").fit(three_clusters, sample_weight=w)
    assert np.array_equal(result.estimator(1).means_, own.means_)
    # The table's criteria are the estimators' with the same weights (bic() took none: 1164
    # against 600 in the hunt's case).
    for row, chosen in zip(result.candidates, (result.estimator(0), result.estimator(1))):
        assert row["bic"] == pytest.approx(chosen.bic(three_clusters, sample_weight=w), rel=1e-12)
        assert row["aic"] == pytest.approx(chosen.aic(three_clusters, sample_weight=w), rel=1e-12)
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots()
    assert result.plot(ax, criteria=("bic",)) is ax
    assert len(ax.get_lines()) == 2  # BIC (diag) and the best point
    assert all(float(k).is_integer() for k in ax.get_xticks())  # no K = 2.5
    with pytest.raises(ValueError, match="criteria must be among"):  # was a bare KeyError
        result.plot(ax, criteria=("bic", "xyz"))
    plt.close(figure)


def test_chunk_sources_select_as_in_memory(three_clusters, tmp_path):
    # A memory-mapped file and weighted chunks: the same choice as the in-memory selection, and
    # each candidate equal to it to rounding (the chunks' sums are grouped differently; the
    # candidates below the true K drift along flat ridges of the likelihood, hence 1e-8, not
    # the 1e-12 of a well-posed fit). The candidates equal their own chunked fits bitwise.
    path = tmp_path / "x.npy"
    np.save(path, three_clusters)
    mm = np.load(path, mmap_mode="r")
    w = np.where(np.arange(len(three_clusters)) % 3 == 0, 2.0, 1.0)
    for source, weights in ((emix.chunked(mm, chunk_rows=128), None),
                            (emix.chunked(three_clusters, chunk_rows=77, sample_weight=w), w)):
        chunked = run(source, criterion="icl")
        whole = run(three_clusters, criterion="icl", sample_weight=weights)
        assert chunked.best_index_ == whole.best_index_
        for a, b in zip(chunked.candidates, whole.candidates):
            assert a["n_iter"] == b["n_iter"]
            for key in ("log_likelihood", "bic", "icl"):
                assert a[key] == pytest.approx(b[key], rel=1e-12), key
        for index in range(len(chunked.candidates)):
            np.testing.assert_allclose(chunked.estimator(index).means_,
                                       whole.estimator(index).means_, rtol=1e-8, atol=1e-8)
        row = chunked.candidates[chunked.best_index_]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            own = emix.GaussianMixture(row["n_components"],
                                       covariance_type=row["covariance_type"], random_state=3,
                                       device="cpu").fit(source)
        assert np.array_equal(chunked.best_estimator_.means_, own.means_)


def test_one_covariance_type_given_as_a_string(three_clusters):
    result = emix.select(three_clusters, n_components=[1, 2], covariance_types="diag",
                         random_state=3, device="cpu")
    assert [c["covariance_type"] for c in result.candidates] == ["diag", "diag"]


def test_a_failed_candidate_warns_with_its_error_not_of_convergence():
    """Data in a plane (a column of zeros) without reg_covar: the full candidates fail. Each
    says why (a FitWarning with the error); scikit-learn's advice to raise max_iter would not
    help, so no ConvergenceWarning comes for them."""
    x = np.random.default_rng(5).normal(size=(300, 3))
    x[:, 2] = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = emix.select(x, n_components=[1, 2], covariance_types=("full", "spherical"),
                        reg_covar=0, random_state=0, device="cpu")
    failed = [c for c in r.candidates if not np.isfinite(c["bic"])]
    assert len(failed) == 2 and all(c["covariance_type"] == "full" for c in failed)
    kinds = [type(w.message).__name__ for w in caught]
    assert "FitWarning" in kinds and "ConvergenceWarning" not in kinds, kinds
    # Each FitWarning says whose it is.
    assert all(re.match(r"K = \d, (full|spherical): ", str(w.message)) for w in caught
               if w.category is emix.FitWarning), [str(w.message) for w in caught]
    # The table says which failed and why; such a candidate has no estimator to use.
    assert [c["failed"] for c in r.candidates] == [not np.isfinite(c["bic"]) for c in r.candidates]
    reason = re.compile("singular|not positive definite")
    assert all(reason.search(c["error"]) for c in failed), [c["error"] for c in failed]
    assert all(c["error"] == "" for c in r.candidates if not c["failed"])
    index = r.candidates.index(failed[0])
    with pytest.raises(ValueError, match=f"candidate {index} .* failed: "):
        r.estimator(index)
    working = next(i for i, c in enumerate(r.candidates) if not c["failed"])
    assert r.estimator(working).predict(x).shape == (300,)


def test_collinear_columns_fail_their_full_candidates_at_every_k():
    """Two equal columns without reg_covar: a full covariance of them is singular, though its
    factorisation may succeed with a pivot at rounding level; K = 1 then gave a "converged"
    model scoring +16 per row, which select chose."""
    v = np.random.default_rng(0).normal(size=1000)
    x = np.c_[v, v]
    r = emix.select(x, n_components=[1, 2], covariance_types=("full", "diag"), reg_covar=0,
                    random_state=0, device="cpu")
    assert [c["failed"] for c in r.candidates] == [True, True, False, False]
    assert r.best_["covariance_type"] == "diag"
    with pytest.raises(ValueError, match="singular"):
        emix.GaussianMixture(1, reg_covar=0, random_state=0, device="cpu").fit(x)


def test_a_k_larger_than_the_data_fails_alone():
    """As a grid search scores an impossible candidate as failed: the default grid (K up to
    10) on 5 rows fitted nothing before."""
    x = np.random.default_rng(0).normal(size=(5, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = emix.select(x, covariance_types="diag", random_state=0, device="cpu")
    assert [c["failed"] for c in r.candidates] == [False] * 5 + [True] * 5
    assert r.candidates[5]["error"] == "K = 6 is more than the 5 rows"
    assert r.best_["n_components"] <= 5
    with pytest.raises(ValueError, match="larger than the number of rows"):
        emix.select(x, n_components=[6, 7], random_state=0, device="cpu")


def test_the_default_grid_is_the_programs(three_clusters):
    # `emix select`'s defaults: K = 1..10 with every covariance type, types as listed, then K.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = emix.select(three_clusters, max_iter=3, device="cpu")
    assert [(c["covariance_type"], c["n_components"]) for c in result.candidates] == [
        (t, k) for t in ("full", "diag", "spherical", "tied") for k in range(1, 11)]


def test_one_k_given_as_an_int(three_clusters):
    result = emix.select(three_clusters, n_components=3, covariance_types="diag",
                         random_state=3, device="cpu")
    assert [c["n_components"] for c in result.candidates] == [3]


def test_the_k_grid_takes_ints_only(three_clusters):
    with pytest.raises(ValueError, match="n_components must be ints, got 2.7"):
        emix.select(three_clusters, n_components=[2.7], device="cpu")
    # A scalar that is not an int said "'float' object is not iterable".
    # A 0-d array of an int is one K, as the int.
    assert [c["n_components"] for c in emix.select(three_clusters, n_components=np.array(2),
                                                   covariance_types="diag", device="cpu")
            .candidates] == [2]
    for value in (3.0, None, True):
        with pytest.raises(ValueError, match="n_components must be an int or an iterable of "
                                             f"ints, got {value!r}"):
            emix.select(three_clusters, n_components=value, device="cpu")
    with pytest.raises(ValueError, match=r"0 sample\(s\) .* minimum of 2 is required by "
                                         "emix.select"):
        emix.select(three_clusters[:0], n_components=2, device="cpu")


def test_estimators_of_a_dataframe_know_its_columns(three_clusters):
    pandas = pytest.importorskip("pandas", reason="pandas is not installed")
    pytest.importorskip("sklearn", reason="feature names are scikit-learn's bookkeeping")
    frame = pandas.DataFrame(three_clusters,
                             columns=[f"x{j}" for j in range(three_clusters.shape[1])])
    r = emix.select(frame, n_components=[2, 3], covariance_types="diag", random_state=3,
                    device="cpu")
    own = emix.GaussianMixture(3, covariance_type="diag", random_state=3,
                               device="cpu").fit(frame)
    assert list(r.best_estimator_.feature_names_in_) == list(own.feature_names_in_)


def test_candidates_that_did_not_converge_are_named_in_one_warning(three_clusters):
    """Every candidate's ConvergenceWarning had the same text and place, so Python showed one,
    naming none; their FitWarnings did not say whose they were."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = emix.select(three_clusters, n_components=[1, 2, 5], covariance_types="full",
                             max_iter=2, random_state=0, device="cpu")
    unconverged = [f"K = {c['n_components']}, full" for c in result.candidates
                   if not c["converged"]]
    assert unconverged
    convergence = [str(w.message) for w in caught if w.category.__name__ == "ConvergenceWarning"]
    assert convergence == [f"{len(unconverged)} of 3 candidates did not converge "
                           f"({'; '.join(unconverged)}). Try different init parameters, or "
                           "increase max_iter, tol, or check for degenerate data."]
    assert all(w.filename == __file__ for w in caught)  # the caller's line, not emix's


def test_the_plot_draws_each_type_in_increasing_k(three_clusters, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    result = emix.select(three_clusters, n_components=[3, 1, 2], covariance_types="diag",
                         random_state=0, device="cpu")
    ax = Figure().add_subplot()
    result.plot(ax, criteria=("bic",))
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]


def test_grids_select_cannot_fit_are_refused_with_the_reason(three_clusters):
    with pytest.raises(ValueError, match=r"n_components must be ints in \[1, 131072\].*got 131073"):
        emix.select(three_clusters, n_components=[2, 131073], device="cpu")
    with pytest.raises(ValueError, match="covariance_types must be a covariance type or a list"):
        emix.select(three_clusters, n_components=[2], covariance_types=None, device="cpu")
    with pytest.raises(ValueError, match="minimum of 2 is required by emix.select"):
        emix.select(three_clusters[:1], n_components=[1], device="cpu")  # as fit refuses it


def test_the_table_is_the_programs(three_clusters, emix_cli, tmp_path):
    """The candidates' columns and values are those of `emix select --table` on the same data,
    grid and seed (its 'covariance' is covariance_type here); seconds differ, run to run."""
    import csv
    import subprocess

    np.save(tmp_path / "x.npy", three_clusters)
    done = subprocess.run([emix_cli, "select", str(tmp_path / "x.npy"), "-k", "1..5",
                           "--covariance", "full,diag", "--seed", "3", "--device", "cpu",
                           "--table", str(tmp_path / "t.csv"), "-q"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    result = run(three_clusters)
    columns = ["covariance_type" if name == "covariance" else name for name in rows[0]]
    assert list(result.candidates[0]) == columns
    for row, candidate in zip(rows, result.candidates, strict=True):
        for name, text in row.items():
            key = "covariance_type" if name == "covariance" else name
            value = candidate[key]
            if name == "seconds":
                continue
            if isinstance(value, bool):
                assert text == str(value).lower(), (name, row)
            elif isinstance(value, float):
                assert float(text) == pytest.approx(value, rel=1e-12), (name, row)
            else:
                assert text == str(value), (name, row)

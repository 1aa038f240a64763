"""Model files shared with the emix program, in both directions.

A model fitted in Python and saved scores with `emix score` and predicts with `emix predict`
exactly as in Python; a model fitted by `emix fit` loads with emix.load_model and gives the
labels the program wrote. Both sides run the same library on the same float64 data with the
same engine (CPU), so results agree to the last bit; the comparisons allow 1e-13 relative only
for the decimal round trip of the printed score (17 significant digits, exact in principle).
"""

import json
import re
import subprocess

import numpy as np
import pytest

import emix
from conftest import overlapping_mixture


def run(*command):
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    assert done.returncode == 0, f"{command} failed ({done.returncode}): {done.stderr}"
    return done.stdout


@pytest.fixture
def data_file(tmp_path):
    x = overlapping_mixture(99, n=800)
    path = tmp_path / "data.npy"
    np.save(path, x)
    return x, path


def discrete_data(family):
    rng = np.random.default_rng(5)
    if family == "bernoulli":
        return (rng.random((600, 6)) < np.where(rng.random((600, 1)) < 0.4, 0.8, 0.2)) * 1.0
    return rng.binomial(7, np.where(rng.random((600, 1)) < 0.4, 0.7, 0.2), size=(600, 4)) * 1.0


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_python_model_scores_with_the_program(emix_cli, data_file, tmp_path, covariance_type):
    x, data = data_file
    gm = emix.GaussianMixture(n_components=3, covariance_type=covariance_type, random_state=1,
                              device="cpu").fit(x)
    model = tmp_path / "model.json"
    gm.save(model)
    score = float(run(emix_cli, "score", model, data, "--device", "cpu"))
    assert score == pytest.approx(gm.score(x), rel=1e-13)
    labels = tmp_path / "labels.npy"
    run(emix_cli, "predict", model, data, "-o", labels, "--device", "cpu", "--quiet")
    np.testing.assert_array_equal(np.load(labels), gm.predict(x))
    resp = tmp_path / "resp.npy"
    run(emix_cli, "predict", model, data, "-o", resp, "--proba", "--device", "cpu", "--quiet")
    np.testing.assert_array_equal(np.load(resp), gm.predict_proba(x))
    # The file records the fit.
    fit = json.loads(model.read_text())["fit"]
    assert fit["n_iter"] == gm.n_iter_ and fit["converged"] == gm.converged_
    np.testing.assert_array_equal(fit["history"], gm.report_.history)


def test_program_model_loads_in_python(emix_cli, data_file, tmp_path):
    x, data = data_file
    model, labels = tmp_path / "model.json", tmp_path / "labels.npy"
    run(emix_cli, "fit", data, "-k", 3, "--seed", 5, "--device", "cpu", "--precision", "double",
        "-o", model, "--labels", labels, "--quiet")
    loaded = emix.load_model(model)
    assert isinstance(loaded, emix.GaussianMixture)
    assert (loaded.n_components, loaded.covariance_type, loaded.n_features_in_) == (3, "full", 3)
    np.testing.assert_array_equal(loaded.predict(x), np.load(labels))
    score = float(run(emix_cli, "score", model, data, "--device", "cpu"))
    assert loaded.score(x) == pytest.approx(score, rel=1e-13)
    # random_state=s is --seed s: the Python fit is the program's fit.
    ours = emix.GaussianMixture(n_components=3, random_state=5, device="cpu").fit(x)
    np.testing.assert_array_equal(ours.means_, loaded.means_)
    np.testing.assert_array_equal(ours.covariances_, loaded.covariances_)
    assert loaded.n_iter_ == ours.n_iter_ and loaded.converged_ == ours.converged_
    np.testing.assert_array_equal(loaded.report_.history, ours.report_.history)
    assert loaded.lower_bound_ == ours.lower_bound_


def test_seeding_alone_is_kmeans_iter_zero(emix_cli, data_file, tmp_path):
    # scikit-learn's init_params='k-means++' (the seeding, no k-means) is the program's
    # --kmeans-iter 0: the same first model, iterate for iterate; the default refines it.
    x, data = data_file
    model = tmp_path / "model.json"
    common = ("-k", 3, "--seed", 2, "--device", "cpu", "--max-iter", 1, "--tol", 0, "--quiet")
    run(emix_cli, "fit", data, "--kmeans-iter", 0, "-o", model, *common)
    ours = emix.GaussianMixture(n_components=3, init_params="k-means++", random_state=2,
                                max_iter=1, tol=0, device="cpu").fit(x)
    np.testing.assert_array_equal(emix.load_model(model).means_, ours.means_)
    run(emix_cli, "fit", data, "-o", model, *common)
    assert not np.array_equal(emix.load_model(model).means_, ours.means_)


@pytest.mark.parametrize("family", ["bernoulli", "binomial"])
def test_discrete_models_both_ways(emix_cli, tmp_path, family):
    x = discrete_data(family)
    data = tmp_path / "data.npy"
    np.save(data, x)
    estimator = (emix.BernoulliMixture(n_components=2, random_state=2, device="cpu")
                 if family == "bernoulli" else
                 emix.BinomialMixture(n_components=2, n_trials=7, random_state=2, device="cpu"))
    estimator.fit(x)
    ours = tmp_path / "ours.json"
    estimator.save(ours)
    # The CPU engine in double, as the estimator: on a GPU the program's default is float32.
    assert float(run(emix_cli, "score", ours, data, "--device", "cpu")) == pytest.approx(
        estimator.score(x), rel=1e-13)
    theirs = tmp_path / "theirs.json"
    extra = ["--trials", 7] if family == "binomial" else []
    run(emix_cli, "fit", data, "-k", 2, "--family", family, *extra, "--seed", 2,
        "--device", "cpu", "--precision", "double", "-o", theirs, "--quiet")
    loaded = emix.load_model(theirs)
    assert type(loaded) is type(estimator)
    np.testing.assert_array_equal(loaded.probabilities_, estimator.probabilities_)
    if family == "binomial":
        assert loaded.n_trials == 7


def test_save_and_load_round_trip_without_the_program(tmp_path):
    x = overlapping_mixture(4)
    gm = emix.GaussianMixture(n_components=2, covariance_type="diag", random_state=0,
                              device="cpu").fit(x)
    path = tmp_path / "m.json"
    gm.save(str(path))
    loaded = emix.load_model(path)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(gm, name))
    assert loaded.report_.engine == gm.report_.engine
    # lower_bounds_ as the fit set them (an audit found none): the history over the weight.
    np.testing.assert_allclose(loaded.lower_bounds_, gm.lower_bounds_, rtol=1e-15)
    assert loaded.lower_bounds_.shape == (gm.n_iter_,)
    np.testing.assert_array_equal(loaded.predict(x), gm.predict(x))
    # A file with parameters only (an init model) loads too, with no report.
    bare = json.loads(path.read_text())
    del bare["fit"]
    path.write_text(json.dumps(bare))
    loaded = emix.load_model(path)
    assert loaded.report_ is None and loaded.n_iter_ == 0 and np.isnan(loaded.lower_bound_)
    assert loaded.lower_bounds_.shape == (0,)
    np.testing.assert_array_equal(loaded.predict(x), gm.predict(x))
    # A loaded model saves again (without a report) and reads back the same.
    loaded.save(path)
    np.testing.assert_array_equal(emix.load_model(path).means_, gm.means_)


def test_parameters_and_feature_names_survive_a_round_trip(tmp_path):
    # A loaded model refits as the saved one would have: with its own reg_covar, tol, ...,
    # not the defaults; and it checks a DataFrame's column names as the fitted one did.
    pandas = pytest.importorskip("pandas", reason="pandas is not installed")
    x = overlapping_mixture(6)
    frame = pandas.DataFrame(x, columns=["height", "weight", "age"][:x.shape[1]])
    params = dict(n_components=2, covariance_type="tied", reg_covar=1e-4, tol=1e-5,
                  max_iter=40, n_init=2, init_params="random", random_state=7, device="cpu",
                  dtype="float64", fixed_weights=True, step_decay=0.75)
    gm = emix.GaussianMixture(**params).fit(frame)
    path = tmp_path / "m.json"
    gm.save(path)
    loaded = emix.load_model(path)
    kept = {name: value for name, value in loaded.get_params().items() if name in params}
    assert kept == dict(params, device="auto")  # this machine's choice, not the file's
    assert list(loaded.feature_names_in_) == list(gm.feature_names_in_)
    np.testing.assert_array_equal(loaded.predict(frame), gm.predict(frame))
    renamed = frame.rename(columns={frame.columns[0]: "size"})
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(renamed)
    # Refitting the loaded model is refitting the saved one.
    np.testing.assert_array_equal(emix.load_model(path).fit(x).means_,
                                  emix.GaussianMixture(**params).fit(x).means_)
    # A section the file's model contradicts, or of the wrong kind, names itself.
    edited = json.loads(path.read_text())
    edited["estimator"]["class"] = "BernoulliMixture"
    path.write_text(json.dumps(edited))
    with pytest.raises(emix.IoError, match='"estimator" entry "class"'):
        emix.load_model(path)
    edited["estimator"]["class"] = "GaussianMixture"
    edited["estimator"]["feature_names_in"] = ["a"]
    path.write_text(json.dumps(edited))
    with pytest.raises(emix.IoError, match='"estimator" entry "feature_names_in"'):
        emix.load_model(path)
    # Parameters of a later version are ignored, and so is what describes another machine.
    edited["estimator"]["feature_names_in"] = list(gm.feature_names_in_)
    edited["estimator"]["params"]["a_later_parameter"] = 3
    edited["estimator"]["params"]["device"] = "gpu"
    path.write_text(json.dumps(edited))
    loaded = emix.load_model(path)
    assert loaded.reg_covar == 1e-4 and loaded.device == "auto"
    # A parameter a fit would refuse is refused at the file (it loaded, and failed at a refit).
    edited["estimator"]["params"]["tol"] = "x"
    path.write_text(json.dumps(edited))
    with pytest.raises(emix.IoError, match='"estimator" params: .*tol'):
        emix.load_model(path)


def test_numpy_booleans_are_saved(tmp_path):
    """warm_start=np.True_ is taken where a bool is, and was left out of the file: the loaded
    model's warm_start was False."""
    x = overlapping_mixture(8)
    path = tmp_path / "m.json"
    emix.GaussianMixture(2, warm_start=np.True_, fixed_weights=np.True_, random_state=0,
                         device="cpu").fit(x).save(path)
    loaded = emix.load_model(path)
    assert loaded.warm_start is True and loaded.fixed_weights is True


def test_a_dtype_given_as_a_type_is_saved(tmp_path):
    """dtype=np.float32 (the type, not the string) was left out of the file: the loaded model
    refitted in float64."""
    x = overlapping_mixture(8)
    path = tmp_path / "m.json"
    emix.GaussianMixture(2, dtype=np.float32, random_state=0, device="cpu").fit(x).save(path)
    assert emix.load_model(path).dtype == "float32"


def test_a_subclass_saves_as_its_emix_class(tmp_path):
    class Mine(emix.GaussianMixture):
        pass

    x = overlapping_mixture(7)
    mine = Mine(n_components=2, reg_covar=1e-3, random_state=0, device="cpu").fit(x)
    path = tmp_path / "m.json"
    mine.save(path)
    assert json.loads(path.read_text())["estimator"]["class"] == "GaussianMixture"
    assert "device" not in json.loads(path.read_text())["estimator"]["params"]
    loaded = emix.load_model(path)
    assert type(loaded) is emix.GaussianMixture and loaded.reg_covar == 1e-3


@pytest.mark.parametrize("key, value", [("converged", "false"), ("history", None),
                                        ("warnings", None), ("n_iter", None),
                                        ("n_iter", 2.5), ("seconds", "fast")])
def test_a_fit_section_entry_of_the_wrong_kind_is_an_io_error(tmp_path, key, value):
    x = overlapping_mixture(5)
    gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu", max_iter=2).fit(x)
    path = tmp_path / "m.json"
    gm.save(str(path))
    edited = json.loads(path.read_text())
    edited["fit"][key] = value
    path.write_text(json.dumps(edited))
    with pytest.raises(emix.IoError, match=f'"fit" entry "{key}"'):
        emix.load_model(path)


@pytest.mark.parametrize("key, value, expected", [
    ("steps", -1, 'entry "online.steps" is -1'),
    ("steps", 2.5, 'entry "online.steps" is 2.5'),
    ("step_offset", 0, 'entry "online.step_offset" is 0'),
    ("last_mean_log_likelihood", "high", 'entry "online.last_mean_log_likelihood"'),
    ("running_statistics", "not base64!", 'entry "online.running_statistics"'),
    ("running_statistics", "AAAA", 'entry "online": statistics bytes'),
])
def test_a_damaged_online_stream_is_an_io_error(tmp_path, key, value, expected):
    # partial_fit's stream in a model file (tests/python/test_partial_fit.py resumes it):
    # an entry that cannot resume it is refused at the file, not at the next partial_fit.
    x = overlapping_mixture(5)
    gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu")
    gm.partial_fit(x[:100]).partial_fit(x[100:200])
    path = tmp_path / "m.json"
    gm.save(path)
    edited = json.loads(path.read_text())
    assert edited["estimator"]["online"]["steps"] == 2
    edited["estimator"]["online"][key] = value
    path.write_text(json.dumps(edited))
    with pytest.raises(emix.IoError, match=re.escape(expected)):
        emix.load_model(path)


def test_an_online_stream_of_another_model_is_an_io_error(tmp_path):
    # Running statistics of another model's shape (a file's model edited by hand, say).
    x = overlapping_mixture(5)
    path = tmp_path / "m.json"
    emix.GaussianMixture(n_components=2, random_state=0, device="cpu").partial_fit(x).save(path)
    other = emix.GaussianMixture(n_components=3, random_state=0, device="cpu").partial_fit(x)
    edited = json.loads(path.read_text())
    edited["estimator"]["online"] = json.loads(
        emix._base._estimator_section(other))["online"]
    path.write_text(json.dumps(edited))
    with pytest.raises(emix.IoError, match="running statistics are of 3 components"):
        emix.load_model(path)


def test_a_path_with_a_nul_byte_is_refused_not_cut(tmp_path):
    # The C library would take the name up to the NUL: "a", another file.
    kept = tmp_path / "a"
    kept.write_text("kept")
    gm = emix.GaussianMixture(1, device="cpu").fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(emix.IoError, match="a file name holds no NUL byte"):
        gm.save(str(kept) + "\0b.json")
    with pytest.raises(emix.IoError, match="a file name holds no NUL byte"):
        emix.load_model(str(kept) + "\0b.json")
    assert kept.read_text() == "kept"


@pytest.mark.parametrize("before, after", [(b"\xef\xbb\xbf", b""), (b"", b"\0"),
                                           (b"", b"\n\n")])
def test_load_model_reads_what_the_program_reads(tmp_path, before, after):
    # A UTF-8 byte-order mark or a trailing NUL: the library's reader takes them, and the fit
    # section comes from the same single read of the file.
    path = tmp_path / "m.json"
    gm = emix.GaussianMixture(2, random_state=0, device="cpu").fit(overlapping_mixture(3, n=200))
    gm.save(path)
    path.write_bytes(before + path.read_bytes() + after)
    loaded = emix.load_model(path)
    assert np.array_equal(loaded.means_, gm.means_)
    assert loaded.n_iter_ == gm.n_iter_ and loaded.converged_ == gm.converged_
    assert loaded.lower_bound_ == gm.lower_bound_


def test_model_files_python_writes_or_the_library_takes_load(tmp_path):
    """Files Python could not read back: a model of more components than a fit starts (its save
    wrote n_components = 140,000 into params, which the load checked as a fit's), and an
    "estimator" section of null, which the library keeps as it is. A fit section's n_iter past
    int's range loaded, and save() then failed with nanobind's TypeError; a random_state or
    means_init that no fit could use loaded too, and failed only at fit, unnamed."""
    rng = np.random.default_rng(0)
    k = 140_000
    path = tmp_path / "big.json"
    path.write_text(json.dumps({
        "format": "emix-model", "version": 1, "family": "gaussian", "covariance": "spherical",
        "n_components": k, "n_features": 1, "weights": (np.ones(k) / k).tolist(),
        "means": rng.normal(size=(k, 1)).tolist(), "covariances": [1.0] * k}))
    big = emix.load_model(path)
    big.save(tmp_path / "again.json")
    again = emix.load_model(tmp_path / "again.json")
    assert again.n_components == k and np.array_equal(again.means_, big.means_)

    gm = emix.GaussianMixture(2, random_state=0, device="cpu").fit(overlapping_mixture(3, n=200))
    gm.save(path)
    saved = json.loads(path.read_text())
    saved["estimator"] = None
    path.write_text(json.dumps(saved))
    assert np.array_equal(emix.load_model(path).means_, gm.means_)

    for key, value in (("n_iter", 10**10), ("n_iter", -5), ("best_init", -1)):
        saved = json.loads((tmp_path / "again.json").read_text())
        saved.setdefault("fit", {})[key] = value
        path.write_text(json.dumps(saved))
        with pytest.raises(emix.IoError, match=f'"fit" entry "{key}" is {value}, expected a '
                                               "whole number from 0 to 2147483647"):
            emix.load_model(path)

    gm.save(path)
    for key, value, expected in (
            ("random_state", "abc", r'"params.random_state" is \'abc\''),
            ("random_state", -1, r'"params.random_state" is -1'),
            ("means_init", [[1, 2]], r"params: The parameter 'means' should have"),
            ("weights_init", [0.5, 0.6], r'"estimator" params: .*weights'),
            ("means_init", "abc", r'"estimator" params: '),
            ("weights_init", {"a": 1}, r'"estimator" params: ')):
        edited = json.loads(path.read_text())
        edited["estimator"]["params"][key] = value
        (tmp_path / "edited.json").write_text(json.dumps(edited))
        with pytest.raises(emix.IoError, match=expected):
            emix.load_model(tmp_path / "edited.json")

"""Every bad input has its exception and its message.

emix's C++ errors arrive as emix.Error subclasses that are also the built-in type a Python
caller catches: InvalidArgument is a ValueError, IoError an OSError, OutOfMemory a
MemoryError, NumericalError / NotAvailable / CudaError / MpiError RuntimeErrors. Each case
below names the exception type and a piece of the message that says what was wrong.
"""

import errno
import io
import json
import os
import pickle
import re
import warnings

import numpy as np
import pytest

import emix
from emix import _emix

X = np.random.default_rng(7).normal(size=(50, 3))


def gm(**parameters):
    parameters.setdefault("device", "cpu")
    parameters.setdefault("n_components", 2)
    return emix.GaussianMixture(**parameters)


@pytest.mark.parametrize("kind, python_type", [
    ("InvalidArgument", ValueError), ("IoError", OSError), ("OutOfMemory", MemoryError),
    ("NumericalError", RuntimeError), ("NumericalError", ValueError), ("NotAvailable", RuntimeError),
    ("CudaError", RuntimeError), ("MpiError", RuntimeError), ("Error", Exception),
])
def test_each_library_error_becomes_its_python_type(kind, python_type):
    with pytest.raises(python_type, match="^what went wrong$") as caught:
        _emix.raise_for_test(kind, "what went wrong")
    assert isinstance(caught.value, emix.Error)
    assert type(caught.value) is getattr(emix, kind)
    assert type(caught.value).__module__ == "emix"
    again = pickle.loads(pickle.dumps(caught.value))  # errors cross process pools
    assert type(again) is type(caught.value) and str(again) == "what went wrong"


def test_other_cpp_errors_keep_their_usual_python_types():
    with pytest.raises(MemoryError):
        _emix.raise_for_test("bad_alloc", "")
    with pytest.raises(RuntimeError, match="a logic error"):
        _emix.raise_for_test("logic_error", "a logic error")


BAD_DATA = [
    (np.ones(10), ValueError, "Expected 2D array, got 1D array"),
    (np.ones((4, 3, 2)), ValueError, "Found array with dim 3"),
    # A fit's minimum is 2 rows, as scikit-learn's (the message said 1 for no rows).
    (np.ones((0, 3)), ValueError, r"0 sample\(s\) \(shape=\(0, 3\)\) while a minimum of 2 is "),
    (np.ones((5, 0)), ValueError, r"0 feature\(s\)"),
    (np.where(np.arange(30).reshape(10, 3) == 4, np.nan, 1.0), ValueError,
     r"Input X contains NaN \(row 2, column 2\)"),
    (np.where(np.arange(30).reshape(10, 3) == 29, -np.inf, 1.0), ValueError,
     r"Input X contains infinity \(row 10, column 3\)"),
    (np.ones((10, 3), dtype=complex), ValueError, "Complex data not supported"),
    # Times are not numbers to fit (a datetime64 was fitted as its ticks since 1970); strings
    # and objects that read as numbers are numbers, as scikit-learn's GaussianMixture takes them.
    ([["a", "b"], ["c", "d"]], ValueError, "could not convert string to float"),
    (np.ones((4, 2)).astype("datetime64[s]"), ValueError,
     r"element type datetime64\[s\] is not numeric"),
    (np.array([["a", 2.0], [1.0, 2.0]], dtype=object), ValueError,
     "could not convert string to float"),
    (np.array([[{"a": 1}, 2.0]], dtype=object), TypeError, "must be a string or a"),
]


@pytest.mark.parametrize("data, error, message", BAD_DATA,
                         ids=["1d", "3d", "no-rows", "no-columns", "nan", "inf", "complex",
                              "strings", "times", "object-strings", "object"])
def test_bad_data(data, error, message):
    with pytest.raises(error, match=message) as caught:
        gm(n_components=1).fit(data)
    # emix's own checks raise emix errors (also the built-in type); NumPy's conversion of
    # strings and objects raises its own.
    if not message.startswith(("could not convert", "must be a string")):
        assert isinstance(caught.value, emix.Error), caught.value


@pytest.mark.parametrize("column", ["datetime", "datetime-tz", "timedelta", "period"])
def test_pandas_time_columns_are_refused_by_name(column):
    """Mixed with numeric columns, a column of times was fitted as its ticks since 1970 (an audit
    got a mean of 1.6e15); alone it was refused. Both are refused, naming the column."""
    pd = pytest.importorskip("pandas", reason="a DataFrame is the input")
    times = {"datetime": pd.date_range("2020", periods=6),
             "datetime-tz": pd.date_range("2020", periods=6, tz="UTC"),
             "timedelta": pd.to_timedelta(np.arange(6), unit="s"),
             "period": pd.period_range("2020-01", periods=6, freq="M")}[column]
    frame = pd.DataFrame({"t": times, "x": np.arange(6.0)})
    with pytest.raises(emix.InvalidArgument, match="column 't' has element type .* not numeric"):
        gm(n_components=1).fit(frame)
    with pytest.raises(emix.InvalidArgument, match="not numeric"):
        gm(n_components=1).fit(frame[["t"]])
    assert gm(n_components=1).fit(frame[["x"]]).means_.shape == (1, 1)
    # A column named "" is a column still, not "the data".
    with pytest.raises(emix.InvalidArgument, match="column '' has element type"):
        gm(n_components=1).fit(frame.rename(columns={"t": ""}))


@pytest.mark.parametrize("column", ["date", "datetime", "duration", "time"])
def test_polars_time_columns_are_refused_by_name(column):
    """Beside a numeric column, polars' own conversion read a Date, Datetime, Duration or Time
    column as its count of days, microseconds or nanoseconds: fitted silently (means of 1.7e15)."""
    pl = pytest.importorskip("polars", reason="a polars DataFrame is the input")
    import datetime

    values = {"date": [datetime.date(2024, 1, i + 1) for i in range(6)],
              "datetime": [datetime.datetime(2024, 1, i + 1) for i in range(6)],
              "duration": [datetime.timedelta(hours=i) for i in range(6)],
              "time": [datetime.time(i) for i in range(6)]}[column]
    frame = pl.DataFrame({"x": np.arange(6.0), "t": values})
    fitted = gm(n_components=1).fit(pl.DataFrame({"x": np.arange(6.0), "t": np.arange(6.0)}))
    with pytest.raises(emix.InvalidArgument, match="column 't' has element type .* not numeric"):
        gm(n_components=1).fit(frame)
    with pytest.raises(emix.InvalidArgument, match="column 't' has element type .* not numeric"):
        fitted.score_samples(frame)
    with pytest.raises(emix.InvalidArgument, match="'t' has element type .* not numeric"):
        gm(n_components=1).fit(frame["t"].to_frame())
    with pytest.raises(TypeError, match=r"LazyFrame .* pass frame.collect\(\)"):
        gm(n_components=1).fit(frame.lazy())
    assert gm(n_components=1).fit(frame.select("x")).means_.shape == (1, 1)


def test_an_arrow_table_is_checked_by_column_wherever_it_is_read():
    """fit read a pyarrow Table through the chunk path, which names a column of times, text or
    nulls; predict and score_samples read it through NumPy, which leaked a promotion error or
    turned a null into NaN."""
    pa = pytest.importorskip("pyarrow", reason="an Arrow table is the input")
    import datetime

    fitted = gm(n_components=1).fit(pa.table({"x": X[:, 0], "y": X[:, 1]}))
    times = pa.table({"x": [0.1, 0.2], "y": pa.array([datetime.datetime(2024, 1, 1)] * 2)})
    nulls = pa.table({"x": [0.1, None], "y": [1.0, 2.0]})
    for method in (fitted.score_samples, fitted.predict, fitted.predict_proba):
        with pytest.raises(emix.InvalidArgument, match=r"column 'y': element type datetime64"):
            method(times)
        with pytest.raises(emix.InvalidArgument, match="column 'x' has 1 missing value"):
            method(nulls)
    good = pa.table({"x": X[:5, 0], "y": X[:5, 1]})
    np.testing.assert_array_equal(fitted.score_samples(good), fitted.score_samples(X[:5, :2]))
    np.testing.assert_array_equal(fitted.score_samples(good.to_batches()[0]),
                                  fitted.score_samples(X[:5, :2]))


@pytest.mark.parametrize("data", [range(10), {1.0, 2.0}], ids=["range", "set"])
def test_a_range_or_a_set_is_data_not_a_chunk_source(data):
    """Any iterable that is not array-like was read as a chunk source, and a range was refused as
    "chunk 0: expected a 2-D array", of chunks the user never made."""
    with pytest.raises((ValueError, TypeError)) as caught:
        gm(n_components=1).fit(data)
    assert "chunk" not in str(caught.value)


def test_huge_finite_values_are_not_mistaken_for_infinity():
    """The finite check sums the data first; a sum that overflows is not an error by itself."""
    huge = np.array([[1e308, 1.0], [1e308, 2.0], [0.0, 3.0]])
    assert emix._arrays.as_data(huge).view.rows == 3


def test_sparse_data_is_refused():
    sparse = pytest.importorskip("scipy.sparse", reason="SciPy makes the sparse input")
    with pytest.raises(TypeError, match="sparse"):
        gm().fit(sparse.csr_matrix(X))
    # In chunks the same TypeError, naming the chunk once (it said "chunk 0: chunk 0 does not
    # accept sparse data", as a ValueError).
    for source in ([sparse.csr_matrix(X)], emix.chunked(sparse.csr_matrix(X), chunk_rows=50)):
        with pytest.raises(TypeError, match="^chunk 0 does not accept sparse data"):
            gm().fit(source)


@pytest.mark.parametrize("parameter, value, expected", [
    ("n_components", 0, r"an int in \[1, 131072\]"),
    ("n_components", 2.5, r"an int in \[1, 131072\]"),
    ("n_components", 131073, r"an int in \[1, 131072\] \(emix draws the components among a "
                             r"sample of at most 131072 rows\)"),
    ("covariance_type", "banana", "one of 'full', 'diag', 'spherical', 'tied'"),
    ("tol", -1.0, "a float >= 0"),
    ("reg_covar", -1e-6, "a float >= 0"),
    ("max_iter", -1, "an int >= 0"),
    ("n_init", 0, r"an int in \[1, 2\*\*31\)"),
    ("n_init", 2**31, r"an int in \[1, 2\*\*31\)"),
    ("init_params", "kmeans++", "one of 'kmeans', 'k-means\\+\\+', 'random'"),
    ("verbose", -1, "an int >= 0"),
    ("verbose_interval", 0, "an int >= 1"),
    ("device", "tpu", "one of 'auto', 'cpu', 'gpu'"),
    ("warm_start", "yes", "a bool"),
    ("fixed_weights", 1, "a bool"),
    ("callback", 5, "None or a callable"),
    ("step_decay", "a", r"a float in \(0.5, 1\]"),
    ("step_decay", 0.5, r"a float in \(0.5, 1\]"),
    ("step_offset", 0.5, "'auto' or a finite float >= 1"),
    ("step_offset", "Auto", "'auto' or a finite float >= 1"),
])
def test_bad_parameters(parameter, value, expected):
    # emix.InvalidArgument is a ValueError: scikit-learn's code and emix's both catch it.
    with pytest.raises(emix.InvalidArgument,
                       match=f"The '{parameter}' parameter of GaussianMixture must be {expected}"):
        gm(**{parameter: value}).fit(X)


def test_bad_dtype_and_random_state():
    with pytest.raises(ValueError, match="dtype must be None, 'float32' or 'float64'"):
        gm(dtype="int32").fit(X)
    with pytest.raises(ValueError, match=r"random_state must be in \[0, 2\*\*64\)"):
        gm(random_state=-1).fit(X)


@pytest.mark.parametrize("estimator", [emix.GaussianMixture, emix.BernoulliMixture])
def test_a_fit_needs_two_rows_as_in_scikit_learn(estimator):
    one_row = np.ones((1, 3))
    with pytest.raises(emix.InvalidArgument, match=r"Found array with 1 sample\(s\) \(shape=\(1, "
                                                   r"3\)\) while a minimum of 2 is required"):
        estimator(n_components=1).fit(one_row)
    estimator(n_components=1).fit(np.ones((2, 3)))


def test_more_components_than_rows():
    with pytest.raises(emix.InvalidArgument, match="Expected n_samples >= n_components but got "
                                         "n_components = 60, n_samples = 50"):
        gm(n_components=60).fit(X)


def test_components_the_start_leaves_empty_are_said_to_be_likely_duplicates():
    """The warning said "left 1 component(s) empty" and not why; scikit-learn's k-means names
    duplicate points."""
    duplicates = np.repeat(X[:2], 10, axis=0)  # 2 distinct rows, 3 components
    with pytest.warns(emix.FitWarning, match=r"left 1 component\(s\) empty \(fewer distinct "
                                             r"rows than components\? rows that coincide"):
        gm(n_components=3, reg_covar=1e-3).fit(duplicates)


@pytest.mark.parametrize("parameters, message", [
    (dict(weights_init=[0.5, 0.3, 0.2]), r"'weights' should have the shape of \(2,\)"),
    (dict(weights_init=[1.5, -0.5]), r"'weights' should be in the range \[0, 1\]"),
    (dict(weights_init=[0.5, 0.6]), "'weights' should be normalized"),
    (dict(means_init=np.zeros((2, 2))), r"'means' should have the shape of \(2, 3\)"),
    (dict(means_init=np.full((2, 3), np.nan)), "'means' contains NaN or infinity"),
    (dict(precisions_init=np.zeros((2, 3))), r"'precisions' should have the shape of "
                                             r"\(2, 3, 3\)"),
    (dict(precisions_init=np.stack([np.eye(3), -np.eye(3)])),
     "'full precision' should be symmetric, positive-definite"),
    (dict(covariance_type="diag", precisions_init=np.zeros((2, 3))),
     "'diag precision' should be positive"),
    (dict(covariance_type="spherical", precisions_init=[1.0, -1.0]),
     "'spherical precision' should be positive"),
    # Positive, but too small to invert: named as the precision given, not as a covariance.
    (dict(covariance_type="diag", precisions_init=[[1.0, 1.0, 1.0], [1.0, 1e-320, 1.0]]),
     r"precisions_init\[1\]\[1\] = 1e-320 is too small: its inverse, the variance, is not "
     "finite"),
    (dict(covariance_type="spherical", precisions_init=[1e-320, 1.0]),
     r"precisions_init\[0\] = 1e-320 is too small"),
    (dict(precisions_init=np.stack([np.eye(3), 1e-320 * np.eye(3)])),
     r"precisions_init\[1\] is too close to singular: its inverse, the covariance, is not "
     "finite"),
    (dict(covariance_type="tied", precisions_init=1e-320 * np.eye(3)),
     "precisions_init is too close to singular"),
])
def test_bad_initial_parameters(parameters, message):
    with pytest.raises(ValueError, match=message):
        gm(**parameters).fit(X)


@pytest.mark.parametrize("weights, error, message", [
    (np.ones(49), ValueError, r"sample_weight.shape == \(49,\), expected \(50,\)"),
    (np.ones((50, 1)), ValueError, "Sample weights must be 1D array or scalar"),
    (np.where(np.arange(50) == 2, -1.0, 1.0), ValueError,
     "sample weights: row 3 is -1, but a sample weight must be a finite number >= 0"),
    (np.where(np.arange(50) == 0, np.nan, 1.0), ValueError, "sample weights: row 1 is nan"),
    (np.zeros(50), ValueError, "sample weights are all zero"),
    (np.ones(50) + 0j, ValueError, "sample_weight: element type complex128 is not real numbers"),
])
def test_bad_sample_weights(weights, error, message):
    with pytest.raises(error, match=message):
        gm().fit(X, sample_weight=weights)
    fitted = gm(random_state=0).fit(X)
    with pytest.raises(error, match=message):
        fitted.score(X, sample_weight=weights)


def test_numbers_as_strings_or_objects_are_numbers():
    # As scikit-learn takes them: data as strings, weights as objects (Decimal, a pandas object
    # column).
    from decimal import Decimal
    reference = gm(random_state=0).fit(X)
    np.testing.assert_array_equal(gm(random_state=0).fit(X.astype(str)).means_, reference.means_)
    weights = [Decimal(1)] * len(X)
    np.testing.assert_array_equal(gm(random_state=0).fit(X, sample_weight=weights).means_,
                                  reference.means_)


def test_unfitted_and_mismatched_use():
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(emix._sklearn.NotFittedError,
                           match="This GaussianMixture instance is not fitted yet"):
            getattr(gm(), method)(X)
    with pytest.raises(emix._sklearn.NotFittedError):
        gm().sample(3)
    with pytest.raises(emix._sklearn.NotFittedError):
        gm().save("never-written.json")
    fitted = gm(random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting "
                                         "3 features as input"):
        fitted.predict(X[:, :2])
    with pytest.raises(ValueError, match="Invalid value for 'n_samples'"):
        fitted.sample(0)


def test_discrete_data_outside_the_family():
    bits = (np.random.default_rng(0).random((20, 4)) < 0.5).astype(float)
    bits[3, 2] = 2.0
    with pytest.raises(emix.InvalidArgument,
                       match="row 4, column 3 is 2, but a Bernoulli mixture needs 0 or 1"):
        emix.BernoulliMixture(n_components=2, device="cpu").fit(bits)
    counts = np.random.default_rng(0).integers(0, 4, size=(20, 2)).astype(float)
    counts[0, 1] = 4
    with pytest.raises(ValueError, match=r"row 1, column 2 is 4, but a binomial mixture with "
                                         r"n_trials = 3 needs a whole number of successes in "
                                         r"0..3: set n_trials to the number of trials behind"):
        emix.BinomialMixture(n_components=2, n_trials=3, device="cpu").fit(counts)
    # n_trials left at its default is named as such ("trials = 1" named no parameter).
    with pytest.raises(ValueError, match=r"^data: row 1, column 1 is 3, but a binomial mixture "
                                         r"with n_trials = 1 \(the default\) "
                                         r"needs"):
        emix.BinomialMixture(n_components=2, device="cpu").fit(counts)
    counts[0, 1] = 1.5
    with pytest.raises(ValueError, match="is 1.5, but a binomial mixture"):
        emix.BinomialMixture(n_components=2, n_trials=3, device="cpu").fit(counts)
    with pytest.raises(ValueError, match=r"'n_trials' parameter of BinomialMixture must be an "
                                         r"int in \[1, 2147483647\]"):
        emix.BinomialMixture(n_trials=0).fit(counts)
    # float32 read 16777217 as 16777216, a count of 2^24 trials, without a word.
    large = np.array([[16777217.0], [3.0]])
    with pytest.raises(emix.InvalidArgument, match=r"^dtype='float32' rounds whole numbers above "
                                                   r"2\^24 = 16777216, so with n_trials = "
                                                   r"16777216 counts would be read as other"):
        emix.BinomialMixture(n_trials=2**24, dtype="float32", device="cpu").fit(large)
    with pytest.raises(ValueError, match="row 1, column 1 is 16777217, but a binomial mixture"):
        emix.BinomialMixture(n_trials=2**24, device="cpu").fit(large)
    fitted = emix.BinomialMixture(n_trials=2**24 - 1, dtype="float32", device="cpu")
    with pytest.raises(ValueError, match="row 1, column 1 is 16777216, but a binomial mixture"):
        fitted.fit(large)  # below 2^24 trials, a count above them stays above them
    with pytest.raises(ValueError, match="'prob_epsilon' parameter of BernoulliMixture"):
        emix.BernoulliMixture(prob_epsilon=0.5).fit(bits)
    with pytest.raises(ValueError, match=r"'probabilities' should be in the range \[0, 1\]"):
        emix.BernoulliMixture(n_components=2, probabilities_init=np.full((2, 4), 1.5)).fit(bits)


def test_discrete_data_are_named_by_their_first_value_outside_the_family():
    """A negative value was named alone, with the rule for counts, where an earlier value was
    refused by the family too: Gaussian data given to a Bernoulli mixture were told of row 1,
    column 2's -0.13 ("its values count successes, which are >= 0"), not of column 1's 0.13.
    The message still opens as the positive_only tag promises scikit-learn."""
    gaussian = np.array([[0.13, -0.13], [1.0, 0.0]])
    with pytest.raises(emix.InvalidArgument,
                       match=r"^Negative values in data passed to BernoulliMixture: row 1, "
                             r"column 2 is -0.13; the first value refused is row 1, column 1: "
                             r"0.13; a Bernoulli mixture needs 0 or 1$"):
        emix.BernoulliMixture(device="cpu").fit(gaussian)
    with pytest.raises(emix.InvalidArgument,
                       match=r"^Negative values in data passed to BernoulliMixture: row 1, "
                             r"column 2 is -1; a Bernoulli mixture needs 0 or 1$"):
        emix.BernoulliMixture(device="cpu").fit([[1.0, -1.0], [-1.0, 1.0]])
    with pytest.raises(emix.InvalidArgument,
                       match=r"^Negative values in data passed to BinomialMixture: row 1, "
                             r"column 2 is -2; a binomial mixture with n_trials = 3 needs a "
                             r"whole number of successes in 0..3$"):
        emix.BinomialMixture(n_trials=3, device="cpu").fit([[1.0, -2.0], [3.0, 9.0]])
    # Without a negative value, the library names the first (as `emix fit` does).
    with pytest.raises(emix.InvalidArgument,
                       match=r"^data: row 1, column 1 is 0.13, but a Bernoulli mixture needs 0"):
        emix.BernoulliMixture(device="cpu").fit(np.abs(gaussian))


def test_a_frames_column_of_text_is_named():
    """pandas' own message named the value alone ("could not convert string to float:
    'Paris'"), where a datetime column and an Arrow table's column of text are named."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "city": ["Paris", "Rome", "Oslo"],
                          "b": [0.5, 1.5, 2.5]})
    message = r"column 'city' \((object|str|string)\) does not hold numbers \(could not convert"
    with pytest.raises(emix.InvalidArgument, match=message):
        gm().fit(frame)
    with pytest.raises(emix.InvalidArgument, match=r"column 'city' \(category\) does not hold"):
        gm().fit(frame.astype({"city": "category"}))
    polars = pytest.importorskip("polars")
    with pytest.raises(emix.InvalidArgument, match=r"column 'city' \(String\) does not hold"):
        gm().fit(polars.from_pandas(frame))


def test_a_numpy_generator_as_random_state_is_named():
    """check_random_state's message ("Generator(PCG64) cannot be used to seed a
    numpy.random.RandomState instance") named no parameter; scikit-learn's names it."""
    with pytest.raises(emix.InvalidArgument,
                       match=r"The 'random_state' parameter of GaussianMixture must be an int in "
                             r"\[0, 2\*\*64\), a numpy.random.RandomState or None \(as in "
                             r"scikit-learn, not a numpy.random.Generator"):
        gm(random_state=np.random.default_rng(0)).fit(X)
    gm(random_state=np.random.RandomState(0)).fit(X)


def test_numerical_failure_is_a_runtime_error_and_a_value_error():
    """A tied covariance of data in a plane (a column of zeros: singular however the machine
    rounds), with no regularisation, cannot be factored. scikit-learn raises ValueError there."""
    plane = np.random.default_rng(0).normal(size=(100, 2))
    x = np.column_stack([plane, np.zeros(100)])
    for error in (emix.NumericalError, RuntimeError, ValueError):
        with pytest.raises(error, match="tied covariance is (singular|not positive definite)"):
            gm(covariance_type="tied", reg_covar=0.0, random_state=0).fit(x)


def test_gpu_requests_without_a_gpu():
    if emix.gpu_available():
        pytest.skip("a GPU answers here: device='gpu' is not an error")
    with pytest.raises(emix.NotAvailable) as caught:
        gm(device="gpu").fit(X)
    # The reason, as gpu_unavailable_reason() gives it: no GPU engine, no device, or no cuBLAS.
    reason = emix.gpu_unavailable_reason()
    assert reason and reason in str(caught.value)
    assert re.search("no GPU support|no CUDA device answers|cuBLAS", reason)


def test_model_file_errors(tmp_path):
    with pytest.raises(emix.IoError) as caught:
        emix.load_model(tmp_path / "missing.json")
    assert isinstance(caught.value, OSError) and "missing.json" in str(caught.value)
    # As open() raises it: the errno's own OSError subclass and attributes, emix's message.
    assert isinstance(caught.value, FileNotFoundError)
    assert caught.value.errno == errno.ENOENT and caught.value.strerror == os.strerror(errno.ENOENT)
    assert caught.value.filename == str(tmp_path / "missing.json")
    assert str(caught.value).startswith(str(tmp_path / "missing.json") + ": cannot open")
    with pytest.raises(IsADirectoryError) as caught:
        emix.load_model(tmp_path)
    assert isinstance(caught.value, emix.IoError) and caught.value.filename == str(tmp_path)
    # A name that is not UTF-8 reaches the message replaced and the filename as os.fsdecode has it.
    undecodable = os.fsdecode(bytes(tmp_path) + b"/model-\xff.json")
    with pytest.raises(FileNotFoundError) as caught:
        emix.load_model(undecodable)
    assert caught.value.filename == undecodable and "model-\ufffd.json" in str(caught.value)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(emix.IoError, match="garbage.json"):
        emix.load_model(garbage)
    fitted = gm(random_state=0).fit(X)
    with pytest.raises(emix.IoError) as caught:
        fitted.save(tmp_path / "no-such-directory" / "model.json")
    assert isinstance(caught.value, FileNotFoundError)
    assert caught.value.filename == str(tmp_path / "no-such-directory" / "model.json")
    path = tmp_path / "model.json"
    fitted.save(path)
    model = json.loads(path.read_text())
    model["weights"] = [0.7, 0.7]
    path.write_text(json.dumps(model))
    with pytest.raises(emix.InvalidArgument, match="model.json: weights sum to 1.4, not 1"):
        emix.load_model(path)
    model["weights"] = [0.5, 0.25, 0.25]
    path.write_text(json.dumps(model))
    with pytest.raises(emix.IoError, match="'weights' has 3 values, expected n_components = 2"):
        emix.load_model(path)


def test_errors_pickle_with_their_type_message_and_errno(tmp_path):
    """Errors cross processes pickled (a Dask worker's, a multiprocessing child's): the errno
    subclasses of IoError could not be pickled at all (emix had no attribute of their name),
    and OSError's own reduce would rebuild them with the tuple (errno, strerror, filename) as
    their message."""
    with pytest.raises(emix.IoError) as caught:
        emix.load_model(tmp_path / "missing.json")
    back = pickle.loads(pickle.dumps(caught.value))
    assert type(back) is type(caught.value) is emix.FileNotFoundIoError
    assert str(back) == str(caught.value)
    assert (back.errno, back.strerror, back.filename) == (
        caught.value.errno, caught.value.strerror, caught.value.filename)
    for kind in (emix.IoError, emix.InvalidArgument, emix.NumericalError, emix.OutOfMemory,
                 emix.PermissionIoError, emix.IsADirectoryIoError):
        back = pickle.loads(pickle.dumps(kind("what went wrong")))
        assert type(back) is kind and str(back) == "what went wrong"


def test_max_iter_beyond_the_libraries_int_means_no_limit():
    fitted = gm(n_components=1, max_iter=2**40).fit(X)
    assert fitted.converged_


def test_chunk_sources_and_nullable_frames_where_one_array_is_expected():
    fitted = gm(n_components=1).fit(X)
    with pytest.raises(TypeError, match="not a chunk source"):
        fitted.predict([X[:10], X[10:]])
    with pytest.raises(TypeError, match="not a chunk source"):
        fitted.score(emix.chunked(X))
    pd = pytest.importorskip("pandas", reason="pandas makes the nullable frame")
    frame = pd.DataFrame(X).astype("Float64")
    frame.iloc[3, 1] = pd.NA
    with pytest.raises(ValueError, match="NaN"):
        gm(n_components=1).fit(frame)
    assert fitted.predict(pd.DataFrame(X).astype("Float64")).shape == (len(X),)


def test_values_beyond_what_the_library_holds_are_named():
    # Not nanobind's "incompatible function arguments" or bad_alloc.
    with pytest.raises(ValueError, match=r"'n_trials' parameter .* must be an int in "
                                         r"\[1, 2147483647\]"):
        emix.BinomialMixture(1, n_trials=2**31).fit(np.ones((5, 2)))
    fitted = gm(random_state=0).fit(X)
    with pytest.raises(ValueError, match="n_samples = 9223372036854775808: more rows"):
        fitted.sample(2**63)
    with pytest.raises(MemoryError, match="sample: 1000000000000 rows x 3 features need"):
        fitted.sample(10**12)
    with pytest.raises(MemoryError, match="n_init = 100000000 needs at least .* fewer restarts"):
        gm(n_components=2, n_init=10**8).fit(X)


def test_select_refuses_a_candidate_given_twice(tmp_path):
    with pytest.raises(ValueError, match="K = 2 is given twice"):
        emix.select(X, n_components=[1, 2, 2])
    with pytest.raises(ValueError, match="'diag' is given twice"):
        emix.select(X, n_components=[1], covariance_types=["diag", "diag"])
    result = emix.select(X, n_components=[1, 2], covariance_types=["diag"], device="cpu")
    pytest.importorskip("matplotlib")
    # matplotlib would write tmp_path + ".png" beside the folder.
    with pytest.raises(IsADirectoryError, match="cannot write the plot: it is a folder") as caught:
        result.plot(tmp_path)
    assert isinstance(caught.value, emix.IoError) and caught.value.errno == errno.EISDIR
    assert not os.path.exists(str(tmp_path) + ".png")
    picture = io.BytesIO()  # a file object, which matplotlib writes
    result.plot(picture)
    assert picture.getvalue().startswith(b"\x89PNG")


def test_finite_data_beyond_float32s_range_is_named_as_such():
    """Finite float64 data cast to float32 by dtype='float32' were called "infinity" in the
    input; the message now names the value and the precision that cannot hold it."""
    x = X.copy()
    x[3, 1] = 1e300
    with pytest.raises(ValueError, match=r"row 4, column 2 is 1e\+300, beyond float32's range"):
        gm(dtype="float32").fit(x)
    x[3, 1] = np.inf  # the data's own infinity is still the data's
    with pytest.raises(ValueError, match=r"contains infinity \(row 4, column 2\)"):
        gm(dtype="float32").fit(x)


def test_a_row_every_component_rounds_to_zero_is_not_assigned():
    """predict_proba gave a row of zeros and predict the label 0 for a row of 1e155, which the
    fit refuses; score_samples gives its log-density, -inf."""
    model = gm(random_state=0).fit(X)
    far = np.vstack([X[:2], [[1e155, 0.0, 0.0]]])
    assert model.score_samples(far)[2] == -np.inf
    for method in (model.predict_proba, model.predict):
        with pytest.raises(ValueError, match="row 3 cannot be assigned to a component"):
            method(far)


@pytest.mark.parametrize("estimator, parameters", [
    (emix.GaussianMixture, dict(reg_covar=np.int64(0), tol=np.int64(1), step_decay=np.int64(1),
                                step_offset=np.int64(2))),
    (emix.GaussianMixture, dict(reg_covar=np.float32(1e-6), tol=np.float32(1e-3),
                                step_decay=np.float32(0.75), step_offset=np.float32(1.5))),
    (emix.BernoulliMixture, dict(prob_epsilon=np.float32(1e-6), tol=np.int64(1),
                                 step_decay=np.int64(1), step_offset=np.int64(2))),
    (emix.BinomialMixture, dict(n_trials=np.int64(3), prob_epsilon=np.float16(1e-3),
                                tol=np.int64(1), step_decay=np.int64(1),
                                step_offset=np.int64(2))),
], ids=["gaussian-int64", "gaussian-float32", "bernoulli", "binomial"])
def test_numpy_numbers_are_taken_by_every_float_parameter(estimator, parameters):
    """reg_covar=np.int64(0) was refused ("must be a float >= 0") while tol took NumPy's
    integers: every float parameter takes any real number, NumPy's too, as the same Python
    float."""
    x = np.abs(X).round().clip(0, 1 if estimator is emix.BernoulliMixture else 3)
    plain = {name: int(value) if name == "n_trials" else float(value)
             for name, value in parameters.items()}

    def fitted(given, method):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tol 1 stops at once: not converged, not the point
            e = estimator(n_components=2, random_state=0, device="cpu", **given)
            return getattr(e, method)(x)

    for method in ("fit", "partial_fit"):
        a, b = fitted(parameters, method), fitted(plain, method)
        np.testing.assert_array_equal(a.weights_, b.weights_)
        np.testing.assert_array_equal(a.means_ if hasattr(a, "means_") else a.probabilities_,
                                      b.means_ if hasattr(b, "means_") else b.probabilities_)

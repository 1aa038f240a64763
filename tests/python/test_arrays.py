"""Data in and out: in place where the layout allows it, converted once otherwise.

Zero-copy is shown, not assumed: the View's pointer is the address C++ holds in its DataView,
and emix._emix.last_fit_pointer() is the address the last fit handed to emix::fit. Both are
compared with the address of the caller's buffer.
"""

import warnings

import numpy as np
import pytest

import emix
from emix import _emix


def buffer_address(a):
    return a.__array_interface__["data"][0]


class DLPackOnly:
    """A CPU array that offers only the DLPack protocol (as a JAX or PyTorch CPU array does)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


class FakeCudaArray:
    """Announces a CUDA array through __cuda_array_interface__ (pointing at host memory: only
    used where no GPU reads it)."""

    def __init__(self, array):
        self._array = array
        self.__cuda_array_interface__ = {
            "shape": array.shape, "typestr": array.dtype.str, "version": 3,
            "data": (buffer_address(array), True), "strides": None}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_c_contiguous_float_arrays_are_used_in_place(gaussian_data, dtype):
    x = np.ascontiguousarray(gaussian_data, dtype=dtype)
    view = _emix.view(x)
    assert view.pointer == buffer_address(x)
    assert (view.rows, view.cols, view.dtype) == (x.shape[0], x.shape[1], np.dtype(dtype).name)
    gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(x)
    assert _emix.last_fit_pointer() == buffer_address(x)
    assert gm.report_.precision == np.dtype(dtype).name


def test_row_slices_read_only_arrays_and_memmaps_are_used_in_place(gaussian_data, tmp_path):
    rows = gaussian_data[100:]  # C-contiguous, starting inside the buffer
    emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(rows)
    assert _emix.last_fit_pointer() == buffer_address(rows) != buffer_address(gaussian_data)

    frozen = gaussian_data.copy()
    frozen.setflags(write=False)
    emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(frozen)
    assert _emix.last_fit_pointer() == buffer_address(frozen)

    path = tmp_path / "x.dat"
    mapped = np.memmap(path, dtype=np.float64, mode="w+", shape=gaussian_data.shape)
    mapped[:] = gaussian_data
    emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(mapped)
    assert _emix.last_fit_pointer() == buffer_address(mapped)


def test_dlpack_cpu_arrays_are_used_in_place(gaussian_data):
    gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu")
    gm.fit(DLPackOnly(gaussian_data))
    assert _emix.last_fit_pointer() == buffer_address(gaussian_data)
    labels = gm.predict(DLPackOnly(gaussian_data))
    assert isinstance(labels, np.ndarray)


@pytest.mark.parametrize("make", [
    lambda x: np.asfortranarray(x),              # column-major
    lambda x: x[::2],                             # strided rows
    lambda x: np.round(x * 100).astype(np.int64),  # integers
    lambda x: x.astype(np.float16),               # a float emix does not read
], ids=["fortran", "strided", "int64", "float16"])
def test_other_layouts_are_converted_once(gaussian_data, make):
    x = make(gaussian_data)
    gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(x)
    assert _emix.last_fit_pointer() != buffer_address(x)
    expected = "float64"
    assert gm.report_.precision == expected
    # The same fit as on the converted array, which is used in place.
    converted = np.ascontiguousarray(x, dtype=np.float64)
    again = emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(converted)
    assert _emix.last_fit_pointer() == buffer_address(converted)
    np.testing.assert_array_equal(gm.means_, again.means_)


def test_big_endian_float32_stays_float32(gaussian_data):
    """HDF5 and FITS data are often big-endian: '>f4' is float32 all the same, and was promoted
    to float64 (twice its memory)."""
    x = gaussian_data.astype(">f4")
    gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(x)
    assert gm.report_.precision == "float32"
    native = emix.GaussianMixture(n_components=2, random_state=0, device="cpu")
    native.fit(gaussian_data.astype(np.float32))
    np.testing.assert_array_equal(gm.means_, native.means_)


@pytest.mark.parametrize("column_type, precision", [
    ("Float64", "float64"), ("Float32", "float32"), ("float64[pyarrow]", "float64"),
    ("float32[pyarrow]", "float32"), ("Int64", "float64"), ("mixed", "float64"),
])
def test_dataframes_are_converted_once_into_their_element_type(gaussian_data, column_type,
                                                                precision):
    """Nullable and Arrow-backed columns went through an object array (a Python float per
    value, 6x the data at the peak) and came out float64 whatever their type; a frame of
    mixed types was copied twice. They are now filled column by column into one C-ordered
    array of the type the columns hold (bench/results/python-input-memory-2026-12-07.md)."""
    pd = pytest.importorskip("pandas")
    if "pyarrow" in column_type:
        pytest.importorskip("pyarrow")
    x = np.round(gaussian_data * 64) / 64  # exact in float32 and as integers below
    if column_type == "Int64":
        x = np.round(gaussian_data * 64)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    if column_type == "mixed":
        frame = frame.astype({"a": np.float32, "b": np.int64, "c": np.float32})
    else:
        frame = frame.astype(column_type)
    data = emix._arrays.as_data(frame)
    assert data.source.dtype == np.dtype(precision)
    assert data.source.flags.c_contiguous
    expected = frame.to_numpy(dtype=np.float64).astype(precision)
    np.testing.assert_array_equal(data.source, expected)
    gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(frame)
    assert gm.report_.precision == precision
    again = emix.GaussianMixture(n_components=2, random_state=0, device="cpu")
    np.testing.assert_array_equal(gm.means_, again.fit(expected).means_)


def test_wide_frames_of_several_types_are_converted_a_few_columns_at_a_time():
    """Beyond 16 columns a frame is filled eight columns at a time: every value lands where
    its column and row say, whatever the columns' types."""
    pd = pytest.importorskip("pandas")
    x = np.round(np.random.default_rng(4).normal(size=(300, 21)) * 64) / 64
    frame = pd.DataFrame(x).astype({0: np.float32, 9: "Float64", 17: np.int64, 20: "Float32"})
    data = emix._arrays.as_data(frame)
    assert data.source.dtype == np.float64 and data.source.flags.c_contiguous
    np.testing.assert_array_equal(data.source, frame.to_numpy(dtype=np.float64))


def test_missing_values_of_nullable_columns_are_named(gaussian_data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(gaussian_data).astype("Float64")
    frame.iloc[7, 1] = pd.NA
    with pytest.raises(emix.InvalidArgument, match=r"NaN \(row 8, column 2\)"):
        emix.GaussianMixture(n_components=2, device="cpu").fit(frame)


def test_a_frame_beyond_float32_names_its_value():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1e39, 2.0]})
    with pytest.raises(emix.InvalidArgument, match=r"row 2, column 2 is 1e\+39, beyond "
                                                   r"float32's range"):
        emix.GaussianMixture(n_components=1, device="cpu", dtype="float32").fit(frame)


def test_dtype_parameter_chooses_the_element_type(gaussian_data):
    gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu", dtype="float32")
    gm.fit(gaussian_data)
    assert gm.report_.precision == "float32"
    x32 = gaussian_data.astype(np.float32)
    gm.fit(x32)
    assert _emix.last_fit_pointer() == buffer_address(x32)


def test_lists_are_accepted(gaussian_data):
    from_list = emix.GaussianMixture(n_components=2, random_state=0, device="cpu")
    from_list.fit(gaussian_data.tolist())
    from_array = emix.GaussianMixture(n_components=2, random_state=0, device="cpu")
    from_array.fit(gaussian_data)
    np.testing.assert_array_equal(from_list.means_, from_array.means_)
    np.testing.assert_array_equal(from_list.predict(gaussian_data[:5].tolist()),
                                  from_array.predict(gaussian_data[:5]))


def test_pytorch_cpu_tensors_are_accepted_in_place(gaussian_data):
    torch = pytest.importorskip(
        "torch", reason="PyTorch is not installed (PyPI's Linux wheel brings the CUDA build, "
        "gigabytes, so the test environment leaves it out; the DLPack path it takes is "
        "tested by test_dlpack_cpu_arrays_are_used_in_place)")
    t = torch.from_numpy(gaussian_data.copy())
    gm = emix.GaussianMixture(n_components=2, random_state=0, device="cpu").fit(t)
    assert _emix.last_fit_pointer() == t.data_ptr()
    reference = emix.GaussianMixture(n_components=2, random_state=0, device="cpu")
    reference.fit(gaussian_data)
    np.testing.assert_array_equal(gm.means_, reference.means_)
    labels = gm.predict(t)
    assert isinstance(labels, np.ndarray)  # host data: NumPy results
    # A tensor that needs grad is read through a detached view, still in place.
    g = t.clone().requires_grad_(True)
    gm.fit(g)
    assert _emix.last_fit_pointer() == g.data_ptr()
    # Integer tensors are converted, and bfloat16 ones (NumPy has no bfloat16) through float32.
    gm.fit(torch.round(t * 10).to(torch.int32))
    assert gm.report_.precision == "float64"
    half = t.to(torch.bfloat16)
    np.testing.assert_array_equal(gm.predict(half), gm.predict(half.float().numpy()))


def test_host_results_are_numpy_arrays(gaussian_data):
    gm = emix.GaussianMixture(n_components=3, random_state=0, device="cpu").fit(gaussian_data)
    labels = gm.predict(gaussian_data)
    resp = gm.predict_proba(gaussian_data)
    log_prob = gm.score_samples(gaussian_data)
    assert labels.dtype == np.int64 and labels.shape == (500,)
    assert resp.dtype == np.float64 and resp.shape == (500, 3)
    assert log_prob.dtype == np.float64 and log_prob.shape == (500,)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(labels, resp.argmax(axis=1))
    # The results own their memory: they outlive the estimator.
    del gm
    assert np.isfinite(log_prob).all()


def test_cuda_array_interface_goes_to_the_gpu_engine(gaussian_data):
    """A device array is never copied to the host: without a GPU the fit refuses it."""
    fake = FakeCudaArray(np.ascontiguousarray(gaussian_data))
    with pytest.raises(ValueError, match="device cpu: the data are in GPU memory"):
        emix.GaussianMixture(n_components=2, device="cpu").fit(fake)
    if not emix.gpu_available():
        with pytest.raises(RuntimeError):  # NotAvailable: no GPU engine or no device
            emix.GaussianMixture(n_components=2, device="auto").fit(fake)
    view = emix._arrays.as_data(fake).view
    assert view.on_device and view.pointer == buffer_address(fake._array)


def test_cuda_array_interface_that_cannot_be_used_in_place_is_refused():
    x = np.zeros((4, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="cannot be used in place"):
        emix._arrays.as_data(FakeCudaArray(x), None, "GaussianMixture")
    strided = FakeCudaArray(np.zeros((4, 2)))
    strided.__cuda_array_interface__["strides"] = (8, 32)
    with pytest.raises(ValueError, match="not C-contiguous"):
        emix._arrays.as_data(strided, None, "GaussianMixture")


def test_the_module_refuses_what_it_cannot_use_in_place():
    with pytest.raises(ValueError, match="not C-contiguous"):
        _emix.view(np.asfortranarray(np.ones((3, 2))))
    with pytest.raises(ValueError, match="float32 or float64"):
        _emix.view(np.ones((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        _emix.view(np.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _emix.view(np.ones((1, 5))[:, :1].copy()).cols == 1


def test_dataframe_feature_names_as_in_scikit_learn():
    pd = pytest.importorskip("pandas", reason="pandas makes the DataFrame")
    pytest.importorskip("sklearn", reason="the feature-name checks are scikit-learn's")
    x = pd.DataFrame(np.random.default_rng(3).normal(size=(200, 2)), columns=["a", "b"])
    fitted = emix.GaussianMixture(2, random_state=0, device="cpu").fit(x)
    assert list(fitted.feature_names_in_) == ["a", "b"]
    with pytest.raises(ValueError, match="feature names should match"):
        fitted.predict(x.rename(columns={"a": "z"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        fitted.predict(x.to_numpy())
    refitted = fitted.fit(x.to_numpy())
    assert not hasattr(refitted, "feature_names_in_")


def test_a_failed_refit_keeps_the_feature_names_of_the_model_it_keeps():
    """A refit that fails leaves the fitted model, and so the names it was fitted with: they
    were reset from the new data before the failure (save() would have recorded them with the
    old model, and predict on the old columns refused)."""
    pd = pytest.importorskip("pandas", reason="pandas makes the DataFrame")
    pytest.importorskip("sklearn", reason="the feature-name checks are scikit-learn's")
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    fitted = emix.GaussianMixture(2, random_state=0, device="cpu").fit(x)
    means = fitted.means_.copy()
    bad = pd.DataFrame(rng.normal(size=(200, 2)), columns=["y", "z"])
    bad.iloc[7, 1] = np.nan
    with pytest.raises(ValueError):
        fitted.fit(bad)
    assert list(fitted.feature_names_in_) == ["a", "b"]
    np.testing.assert_array_equal(fitted.means_, means)
    fitted.predict(x)  # the old columns still fit the model
    # And an estimator never fitted stays without names.
    fresh = emix.GaussianMixture(2, device="cpu")
    with pytest.raises(ValueError):
        fresh.fit(bad)
    assert not hasattr(fresh, "feature_names_in_")

"""The GPU engine from Python: device arrays in place, results on the device, CPU parity.

These tests need a build with the GPU engine and a CUDA device; elsewhere they skip, saying
which is missing. The PyTorch, CuPy and JAX cases also skip where that library (with CUDA) is
not installed.

Tolerances: GPU and CPU run the same algorithm in float64 and differ in summation order only
(the GPU's reductions are fixed-order but not the CPU's order), ~1e-15 per step, so after 10
iterations from the same start parameters agree to ~1e-12; 1e-9 leaves margin (DESIGN.md:
GPU float32 against CPU double is ~1e-6 in the log-likelihood, ~1e-4 in the parameters).
"""

import warnings

import numpy as np
import pytest

import emix
from emix import _emix
from conftest import overlapping_mixture

if not emix.gpu_built():
    pytest.skip("this build of emix has no GPU engine (built without CUDA: no nvcc, or "
                "EMIX_CUDA=OFF)", allow_module_level=True)
if not emix.gpu_available():
    pytest.skip(emix.gpu_unavailable_reason(), allow_module_level=True)


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


X = overlapping_mixture(77, n=20_000, d=5, k=3)
START = dict(weights_init=[0.3, 0.3, 0.4], means_init=X[[0, 1, 2]])


PRECISIONS = {"full": np.stack([np.eye(5)] * 3), "tied": np.eye(5), "diag": np.ones((3, 5)),
              "spherical": np.ones(3)}


def fit(x, device, sample_weight=None, **parameters):
    parameters = {**dict(n_components=3, tol=0.0, max_iter=10, **START), **parameters}
    parameters["precisions_init"] = PRECISIONS[parameters.get("covariance_type", "full")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emix._sklearn.ConvergenceWarning)
        return emix.GaussianMixture(device=device, **parameters).fit(
            x, sample_weight=sample_weight)


@pytest.fixture(scope="module")
def cpu_fit():
    return fit(X, "cpu")


def torch_cuda():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA device")
    return torch


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_host_data_on_the_gpu_match_the_cpu(covariance_type):
    gpu = fit(X, "gpu", covariance_type=covariance_type)
    cpu = fit(X, "cpu", covariance_type=covariance_type)
    assert gpu.report_.engine.startswith("gpu") and cpu.report_.engine.startswith("cpu")
    for name in ("weights_", "means_", "covariances_"):
        assert rel(getattr(gpu, name), getattr(cpu, name)) < 1e-9, name
    assert gpu.lower_bound_ == pytest.approx(cpu.lower_bound_, rel=1e-12)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), rtol=0, atol=1e-9)


def test_auto_uses_the_gpu():
    assert fit(X, "auto").report_.engine.startswith("gpu")


def test_torch_cuda_tensors_are_used_in_place(cpu_fit):
    torch = torch_cuda()
    t = torch.from_numpy(X).to("cuda")
    gm = fit(t, "auto")
    assert _emix.last_fit_pointer() == t.data_ptr()  # no host round trip, no device copy
    assert gm.report_.engine.startswith("gpu")
    for name in ("weights_", "means_", "covariances_"):
        assert rel(getattr(gm, name), getattr(cpu_fit, name)) < 1e-9, name
    labels = gm.predict(t)
    resp = gm.predict_proba(t)
    log_prob = gm.score_samples(t)
    for result in (labels, resp, log_prob):
        assert isinstance(result, torch.Tensor) and result.device == t.device
    assert labels.dtype == torch.int64 and resp.shape == (len(X), 3)
    # One model: the device tensor and the host array give the same per-row results.
    np.testing.assert_allclose(log_prob.cpu().numpy(), gm.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(resp.cpu().numpy(), gm.predict_proba(X), rtol=0, atol=1e-12)
    # Against the CPU's own fit, whose parameters differ by the summation order (measured on an
    # H200: 4e-12 relative in the log-densities): the parameters' 1e-9.
    np.testing.assert_allclose(resp.cpu().numpy(), cpu_fit.predict_proba(X), atol=1e-9)
    np.testing.assert_allclose(log_prob.cpu().numpy(), cpu_fit.score_samples(X), rtol=1e-9)
    assert gm.score(t) == pytest.approx(cpu_fit.score(X), rel=1e-9)
    assert isinstance(gm.fit_predict(t), torch.Tensor)


def test_torch_cuda_conversions_stay_on_the_device(cpu_fit):
    torch = torch_cuda()
    t32 = torch.from_numpy(X.astype(np.float32)).to("cuda")
    gm = fit(t32, "gpu")
    assert gm.report_.precision == "float32" and _emix.last_fit_pointer() == t32.data_ptr()
    # float32 data against float64 (DESIGN.md: parameters ~1e-4, log-likelihood ~1e-6; the
    # latter given a factor 10 here, as the mean of 20,000 float32 log-densities).
    assert rel(gm.means_, cpu_fit.means_) < 1e-4
    assert gm.lower_bound_ == pytest.approx(cpu_fit.lower_bound_, rel=1e-5)

    columns = torch.from_numpy(np.asfortranarray(X)).to("cuda").t().contiguous().t()
    assert not columns.is_contiguous()
    gm = fit(columns, "gpu")  # made contiguous on the device, then read in place
    assert gm.report_.precision == "float64" and rel(gm.means_, cpu_fit.means_) < 1e-9

    grad = torch.from_numpy(X).to("cuda").requires_grad_(True)
    assert rel(fit(grad, "gpu").means_, cpu_fit.means_) < 1e-9

    counts = torch.from_numpy(np.round(X * 10)).to("cuda").to(torch.int64)
    assert fit(counts, "gpu").report_.precision == "float64"

    bad = torch.from_numpy(X).to("cuda")
    bad[5, 1] = float("nan")
    with pytest.raises(ValueError, match=r"Input X contains NaN \(row 6, column 2\)"):
        fit(bad, "gpu")
    with pytest.raises(ValueError, match="device cpu: the data are in GPU memory"):
        fit(torch.from_numpy(X).to("cuda"), "cpu")


def test_sample_weights_on_the_device():
    torch = torch_cuda()
    counts = np.random.default_rng(0).integers(0, 3, size=len(X)).astype(np.float64)
    t = torch.from_numpy(X).to("cuda")
    on_device = fit(t, "gpu", sample_weight=torch.from_numpy(counts).to("cuda"))
    on_host = fit(X, "gpu", sample_weight=counts)
    assert rel(on_device.means_, on_host.means_) < 1e-12


def test_cuda_array_interface_only_arrays_are_used_in_place(cpu_fit):
    torch = torch_cuda()
    t = torch.from_numpy(X).to("cuda")

    class Wrapped:  # a producer with __cuda_array_interface__ only (as Numba's arrays)
        __cuda_array_interface__ = t.__cuda_array_interface__

    gm = fit(Wrapped(), "gpu")
    assert _emix.last_fit_pointer() == t.data_ptr()
    assert rel(gm.means_, cpu_fit.means_) < 1e-9
    assert isinstance(gm.predict(Wrapped()), np.ndarray)  # an unknown kind: NumPy results


def test_cupy_arrays_are_used_in_place(cpu_fit):
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    c = cupy.asarray(X)
    gm = fit(c, "auto")
    assert _emix.last_fit_pointer() == c.data.ptr
    assert rel(gm.means_, cpu_fit.means_) < 1e-9
    labels = gm.predict(c)
    assert isinstance(labels, cupy.ndarray) and labels.device.id == c.device.id
    np.testing.assert_array_equal(cupy.asnumpy(labels), cpu_fit.predict(X))


def test_jax_gpu_arrays_are_used_in_place(cpu_fit):
    jax = pytest.importorskip("jax", reason="JAX is not installed")
    try:
        device = jax.devices("gpu")[0]
    except RuntimeError:
        pytest.skip("this JAX has no GPU backend")
    jax.config.update("jax_enable_x64", True)
    j = jax.device_put(X, device)
    gm = fit(j, "auto")
    assert rel(gm.means_, cpu_fit.means_) < 1e-9
    resp = gm.predict_proba(j)
    assert next(iter(resp.devices())) == device


def test_bernoulli_and_binomial_on_the_gpu():
    rng = np.random.default_rng(3)
    bits = (rng.random((5000, 6)) < np.where(rng.random((5000, 1)) < 0.4, 0.8, 0.2)) * 1.0
    for family in ("bernoulli", "binomial"):
        make = (emix.BernoulliMixture if family == "bernoulli"
                else lambda **p: emix.BinomialMixture(n_trials=1, **p))
        gpu = make(n_components=2, random_state=0, tol=0.0, max_iter=10, device="gpu")
        cpu = make(n_components=2, random_state=0, tol=0.0, max_iter=10, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emix._sklearn.ConvergenceWarning)
            gpu.fit(bits)
            cpu.fit(bits)
        assert rel(gpu.probabilities_, cpu.probabilities_) < 1e-9

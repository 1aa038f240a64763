// emix._emix: the Python extension module (nanobind) over emix's public C++ API. It stays thin:
// array protocols, estimator semantics and scikit-learn's conventions live in python/emix/*.py.
//
// Data reach C++ as a View: a DataView over the caller's buffer (NumPy through the buffer
// protocol or DLPack, CuPy / PyTorch / JAX through DLPack, or a raw device pointer taken from
// __cuda_array_interface__) plus a reference that keeps the buffer alive. Nothing is copied here;
// the Python side converts what does not fit (dtype, order) once, before it makes the View.
//
// Every call into the library releases the GIL (LibraryCall) and takes it back about every 50 ms
// of work to run Python's signal handlers (Ctrl-C raises KeyboardInterrupt there, which unwinds
// out of the call through the library's RAII owners); a fit also once per EM iteration for the
// optional progress callback.
//
// Issue 14's API is bound as it is: Statistics (merge, scale, recentred, bytes),
// merge_in_order, accumulate, maximize, OnlineEm and select; fit_chunks and select_chunks run
// over a Python chunk source (PyChunkSource), taking the GIL only inside its callbacks.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/accumulate_piece.hpp"
#include "core/criteria.hpp"
#include "core/em.hpp"
#include "core/float32_rounding.hpp"
#include "core/maximize.hpp"
#include "core/remote_chunks.hpp"
#include "core/validate.hpp"
#include "emix/emix.hpp"

namespace nb = nanobind;

namespace {

// DLPack device types (dlpack.h): what a View accepts.
constexpr int kDlCpu = 1;
constexpr int kDlCuda = 2;
constexpr int kDlCudaHost = 3;      // pinned host memory: host memory to emix
constexpr int kDlCudaManaged = 13;  // managed memory: the GPU engine reads it in place

// A DataView and what keeps its memory alive.
struct View {
  emix::DataView view;
  nb::object owner;    // the ndarray (or the __cuda_array_interface__ object)
  int device_id = -1;  // CUDA device of device data; -1 for host data

  std::uintptr_t pointer() const { return reinterpret_cast<std::uintptr_t>(view.data); }
};

// The data pointer of the last fit, for the zero-copy test (what C++ saw, not what Python
// assumed).
std::atomic<std::uintptr_t> g_last_fit_pointer{0};

emix::DType dtype_of(const nb::dlpack::dtype& t) {
  if (t == nb::dtype<float>()) return emix::DType::kFloat32;
  if (t == nb::dtype<double>()) return emix::DType::kFloat64;
  throw emix::InvalidArgument(
      "data: element type must be float32 or float64 (convert first; emix.GaussianMixture does)");
}

emix::DType parse_dtype(const std::string& name) {
  if (name == "float32") return emix::DType::kFloat32;
  if (name == "float64") return emix::DType::kFloat64;
  throw emix::InvalidArgument("data: dtype '" + name + "' is not float32 or float64");
}

// A View over an array that nanobind imports (buffer protocol or DLPack) without conversion.
View make_view(nb::ndarray<nb::ro> array) {
  if (array.ndim() != 2) {
    throw emix::InvalidArgument("data: expected a 2-D array, got " + std::to_string(array.ndim()) +
                                " dimensions");
  }
  const std::int64_t rows = static_cast<std::int64_t>(array.shape(0));
  const std::int64_t cols = static_cast<std::int64_t>(array.shape(1));
  // Strides are in elements. A dimension of extent 1 may have any stride, and an array without
  // rows any strides (NumPy gives np.empty((0, d)) strides (0, 0)).
  if (rows > 0 && ((cols > 1 && array.stride(1) != 1) || (rows > 1 && array.stride(0) != cols))) {
    throw emix::InvalidArgument("data: the array is not C-contiguous (row-major)");
  }
  View v;
  v.view.data = array.data();
  v.view.rows = rows;
  v.view.cols = cols;
  v.view.dtype = dtype_of(array.dtype());
  switch (array.device_type()) {
    case kDlCpu:
    case kDlCudaHost:
      v.view.space = emix::MemorySpace::kHost;
      break;
    case kDlCuda:
    case kDlCudaManaged:
      v.view.space = emix::MemorySpace::kDevice;
      v.device_id = array.device_id();
      break;
    default:
      throw emix::InvalidArgument("data: DLPack device type " +
                                  std::to_string(array.device_type()) +
                                  " is neither host memory nor a CUDA device");
  }
  v.owner = nb::cast(array);
  return v;
}

// A View over device memory described by a raw pointer (from __cuda_array_interface__).
View make_device_view(std::uintptr_t pointer, std::int64_t rows, std::int64_t cols,
                      const std::string& dtype, int device_id, nb::object owner) {
  if (rows < 0 || cols < 0) throw emix::InvalidArgument("data: negative shape");
  View v;
  v.view.data = reinterpret_cast<const void*>(pointer);
  v.view.rows = rows;
  v.view.cols = cols;
  v.view.dtype = parse_dtype(dtype);
  v.view.space = emix::MemorySpace::kDevice;
  v.device_id = device_id;
  v.owner = std::move(owner);
  return v;
}

// Engine options for a call on `x`: device data run on the data's own GPU.
emix::EngineOptions engine_for(const View& x, emix::EngineOptions engine) {
  if (x.view.space == emix::MemorySpace::kDevice && engine.gpu_device < 0 && x.device_id >= 0) {
    engine.gpu_device = x.device_id;
  }
  return engine;
}

using HostWeights = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

const double* weights_for(const View& x, const std::optional<HostWeights>& w) {
  if (!w) return nullptr;
  if (static_cast<std::int64_t>(w->shape(0)) != x.view.rows) {
    throw emix::InvalidArgument("sample_weight has " + std::to_string(w->shape(0)) +
                                " values, but the data have " + std::to_string(x.view.rows) +
                                " rows");
  }
  return w->data();
}

// A call into the library: the GIL released for its work, and Ctrl-C heard inside it. The
// library runs the check about every 50 ms of work (emix/interrupt.hpp); Python's handler raises
// KeyboardInterrupt there, which unwinds out of the call as nb::python_error. Python runs signal
// handlers on its main thread alone: a call from another thread (a Dask worker's) has no check,
// and never waits for the GIL that a busy Python thread holds.
unsigned long g_main_thread = 0;  // threading.main_thread().ident, set at import and fork

class LibraryCall {
 public:
  LibraryCall()
      : check_(PyThread_get_thread_ident() != g_main_thread ? std::function<void()>() : [] {
          nb::gil_scoped_acquire acquire;
          if (PyErr_CheckSignals() != 0) throw nb::python_error();
        }) {}

 private:
  nb::gil_scoped_release release_;
  emix::InterruptCheck check_;
};

// A NumPy array that owns a vector's storage (no copy).
template <typename T>
nb::ndarray<nb::numpy, T> to_numpy(std::vector<T>&& values, const std::vector<size_t>& shape) {
  auto* heap = new std::vector<T>(std::move(values));
  nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T>(heap->data(), shape.size(), shape.data(), owner);
}

template <typename T>
nb::ndarray<nb::numpy, T> to_numpy(const std::vector<T>& values, const std::vector<size_t>& shape) {
  return to_numpy(std::vector<T>(values), shape);
}

using HostDoubles = nb::ndarray<const double, nb::c_contig, nb::device::cpu>;

std::vector<double> to_vector(const std::optional<HostDoubles>& a) {
  if (!a) return {};
  return std::vector<double>(a->data(), a->data() + a->size());
}

// A Gaussian model's covariances, or their precision factors, in scikit-learn's shape for its
// covariance type.
nb::ndarray<nb::numpy, double> covariance_shaped(std::vector<double>&& values,
                                                 const emix::Model& m) {
  return to_numpy(std::move(values),
                  emix::covariance_extents(m.covariance, m.n_components, m.n_features));
}

// The covariance array in scikit-learn's shape for the model's covariance type.
nb::ndarray<nb::numpy, double> covariances_of(const emix::Model& m) {
  if (m.family != emix::Family::kGaussian) return to_numpy(std::vector<double>{}, {0});
  return covariance_shaped(std::vector<double>(m.covariances), m);
}

// scikit-learn's precisions_cholesky_ (U with U U^T = Sigma^-1) of a Gaussian model in its
// shape, from the E-step's own factorisation (prepare): on up to `threads` threads, in the CPU's
// instruction set. NumericalError where a covariance does not factor.
nb::ndarray<nb::numpy, double> precisions_cholesky_of(const emix::Model& m, int threads) {
  if (m.family != emix::Family::kGaussian) {
    throw emix::InvalidArgument("precisions_cholesky: the model is not Gaussian");
  }
  emix::PrepareOptions options;
  options.threads = threads;
  emix::PreparedModel prepared;
  {
    const LibraryCall call;
    prepared = emix::prepare(m, options);
  }
  return covariance_shaped(std::move(prepared.prec_chol), m);
}

emix::Model make_model(const std::string& family, const std::string& covariance, int n_features,
                       int trials, const HostDoubles& weights,
                       const std::optional<HostDoubles>& means,
                       const std::optional<HostDoubles>& covariances,
                       const std::optional<HostDoubles>& probabilities) {
  emix::Model m;
  m.family = emix::parse_family(family);
  m.covariance = emix::parse_covariance(covariance);
  m.n_components = static_cast<int>(weights.size());
  m.n_features = n_features;
  m.trials = trials;
  m.weights = std::vector<double>(weights.data(), weights.data() + weights.size());
  m.means = to_vector(means);
  m.covariances = to_vector(covariances);
  m.probabilities = to_vector(probabilities);
  return m;
}

// Python exception types, one per emix error class; each also derives from the built-in type a
// Python user catches (ValueError, OSError, MemoryError, RuntimeError).
struct ErrorTypes {
  PyObject* error = nullptr;
  PyObject* invalid_argument = nullptr;
  PyObject* io_error = nullptr;
  PyObject* not_available = nullptr;
  PyObject* out_of_memory = nullptr;
  PyObject* numerical_error = nullptr;
  PyObject* cuda_error = nullptr;
  PyObject* mpi_error = nullptr;
  // IoError's subclasses that are also the OSError subclass Python raises for an errno, so that
  // `except FileNotFoundError` catches a missing file as it does for open().
  std::vector<std::pair<int, PyObject*>> io_error_by_errno;
};
ErrorTypes g_errors;

PyObject* new_error_type(nb::module_& m, const char* name, PyObject* base, PyObject* builtin,
                         const char* doc, PyObject* second_builtin = nullptr) {
  const std::string qualified = std::string("emix.") + name;
  nb::object bases = second_builtin ? nb::make_tuple(nb::handle(base), nb::handle(builtin),
                                                     nb::handle(second_builtin))
                     : builtin      ? nb::make_tuple(nb::handle(base), nb::handle(builtin))
                                    : nb::make_tuple(nb::handle(base));
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (!type) throw nb::python_error();
  m.attr(name) = nb::handle(type);  // the module keeps a reference for the process's life
  Py_DECREF(type);
  return type;
}

// A message may quote a file name that is not UTF-8; PyErr_SetString would raise a
// UnicodeDecodeError in place of the error.
PyObject* message_text(const char* what) {
  return PyUnicode_DecodeUTF8(what, static_cast<Py_ssize_t>(std::strlen(what)), "replace");
}

void set_error(PyObject* type, const char* what) {
  PyObject* message = message_text(what);
  if (message == nullptr) return;
  PyErr_SetObject(type, message);
  Py_DECREF(message);
}

// As OSError(errno, strerror, filename) sets them, with the message emix wrote as str(error).
void set_io_error(const emix::IoError& e) {
  PyObject* type = g_errors.io_error;
  for (const auto& [number, subtype] : g_errors.io_error_by_errno) {
    if (number == e.error_number()) type = subtype;
  }
  PyObject* message = message_text(e.what());
  if (message == nullptr) return;
  PyObject* error = PyObject_CallOneArg(type, message);
  Py_DECREF(message);
  if (error == nullptr) return;
  const auto set = [error](const char* name, PyObject* value) {
    if (value == nullptr || PyObject_SetAttrString(error, name, value) != 0) PyErr_Clear();
    Py_XDECREF(value);
  };
  if (e.error_number() != 0) {
    set("errno", PyLong_FromLong(e.error_number()));
    set("strerror", message_text(std::strerror(e.error_number())));
  }
  if (!e.path().empty()) set("filename", PyUnicode_DecodeFSDefault(e.path().c_str()));
  PyErr_SetObject(type, error);
  Py_DECREF(error);
}

void translate(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const emix::InvalidArgument& e) {
    set_error(g_errors.invalid_argument, e.what());
  } catch (const emix::IoError& e) {
    set_io_error(e);
  } catch (const emix::NotAvailable& e) {
    set_error(g_errors.not_available, e.what());
  } catch (const emix::OutOfMemory& e) {
    set_error(g_errors.out_of_memory, e.what());
  } catch (const emix::NumericalError& e) {
    set_error(g_errors.numerical_error, e.what());
  } catch (const emix::CudaError& e) {
    set_error(g_errors.cuda_error, e.what());
  } catch (const emix::MpiError& e) {
    set_error(g_errors.mpi_error, e.what());
  } catch (const emix::Error& e) {
    set_error(g_errors.error, e.what());
  }
}

emix::FitReport fit(const View& x, emix::FitOptions options,
                    const std::optional<HostWeights>& sample_weight, nb::object callback) {
  const double* weights = weights_for(x, sample_weight);
  options.engine = engine_for(x, options.engine);
  // Runs on the calling thread between iterations (the driver calls it outside any parallel
  // region). A pending Python exception (KeyboardInterrupt from the signal handler, or one the
  // callback raised) is thrown as nb::python_error and unwinds out of emix::fit.
  options.on_iteration = [&callback](const emix::IterationInfo& info) {
    nb::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
    if (!callback.is_none()) callback(info);
  };
  g_last_fit_pointer = x.pointer();
  const LibraryCall call;
  return emix::fit(x.view, options, weights);
}

// A ChunkSource over a Python object with n_chunks() and chunk(i) -> (View, weights or None)
// (emix._chunks adapts arrays, HDF5 and Arrow datasets and re-iterables to that). The fit runs
// without the GIL; each call into Python takes it for the call alone. The current chunk's View
// and weights are held here, so that their memory stays valid until the next chunk() call.
// An object that also has chunk_statistics(pass) -> one float64 array (or None: no rows, or
// rows whose sums an earlier chunk's answer holds, remote_chunks.hpp) per chunk,
// gather_rows(idx) -> (rows, weights or None), weight_sums() -> one float per chunk,
// engine_name() and chunk_noun computes passes where its chunks live (emix.dask's source over a
// Dask array's blocks: RemoteChunks).
class PyChunkSource final : public emix::ChunkSource, public emix::RemoteChunks {
 public:
  explicit PyChunkSource(nb::object source) : source_(std::move(source)) {}
  PyChunkSource(const PyChunkSource&) = delete;
  PyChunkSource& operator=(const PyChunkSource&) = delete;
  ~PyChunkSource() override {
    nb::gil_scoped_acquire acquire;
    current_.reset();
    weights_array_.reset();
    weights_ = nb::object();
    source_ = nb::object();
  }

  std::int64_t n_chunks() override {
    nb::gil_scoped_acquire acquire;
    return nb::cast<std::int64_t>(source_.attr("n_chunks")());
  }

  emix::DataView chunk(std::int64_t i) override {
    nb::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
    // The last chunk is let go first (its view is valid only until this call): held through
    // the adapter's call, two converted chunks were alive at once.
    current_.reset();
    weights_array_.reset();
    weights_ = nb::object();
    weights_pointer_ = nullptr;
    nb::object result = source_.attr("chunk")(i);
    auto pair = nb::cast<nb::tuple>(result);
    if (pair.size() != 2) throw emix::InvalidArgument("chunk source: chunk() must give a pair");
    current_ = nb::cast<View>(pair[0]);
    weights_ = nb::borrow<nb::object>(pair[1].ptr());
    if (!weights_.is_none()) {
      // Held as a member: where nanobind had to convert the weights (float32, strided), the
      // converted array is owned by this handle alone and must outlive the chunk.
      weights_array_ = nb::cast<HostWeights>(weights_);
      if (static_cast<std::int64_t>(weights_array_->shape(0)) != current_->view.rows) {
        throw emix::InvalidArgument(
            "chunk " + std::to_string(i) + ": " + std::to_string(weights_array_->shape(0)) +
            " sample weights for " + std::to_string(current_->view.rows) + " rows");
      }
      weights_pointer_ = weights_array_->data();
    }
    return current_->view;
  }

  const double* chunk_weights(std::int64_t) override { return weights_pointer_; }

  std::int64_t known_rows(std::int64_t i) override {
    nb::gil_scoped_acquire acquire;
    if (!nb::hasattr(source_, "known_rows")) return -1;
    return nb::cast<std::int64_t>(source_.attr("known_rows")(i));
  }

  bool computes_remotely() override {
    nb::gil_scoped_acquire acquire;
    return nb::hasattr(source_, "chunk_statistics");
  }

  std::string engine_name() override { return text_of("engine_name", true); }
  std::string chunk_noun() override { return text_of("chunk_noun", false); }

  std::vector<std::vector<double>> chunk_statistics(
      const std::vector<std::uint8_t>& pass) override {
    nb::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
    nb::object parts = source_.attr("chunk_statistics")(
        nb::bytes(reinterpret_cast<const char*>(pass.data()), pass.size()));
    std::vector<std::vector<double>> out;
    for (nb::handle part : parts) {
      if (part.is_none()) {
        out.emplace_back();
        continue;
      }
      const HostVector values = as_vector(part, "chunk_statistics()");
      out.emplace_back(values.data(), values.data() + values.size());
    }
    return out;
  }

  void gather(const std::int64_t* idx, std::int64_t count, std::int64_t cols, double* rows,
              double* weights) override {
    nb::gil_scoped_acquire acquire;
    nb::object result = source_.attr("gather_rows")(
        to_numpy(std::vector<std::int64_t>(idx, idx + count), {static_cast<size_t>(count)}),
        rows != nullptr);
    nb::tuple pair;
    if (!nb::try_cast(result, pair) || pair.size() != 2) {
      throw emix::InvalidArgument("chunk source: gather_rows() must give a pair");
    }
    if (rows != nullptr) {
      HostMatrix values;
      if (!nb::try_cast(pair[0], values) || static_cast<std::int64_t>(values.shape(0)) != count ||
          static_cast<std::int64_t>(values.shape(1)) != cols) {
        throw emix::InvalidArgument("chunk source: gather_rows() must give " +
                                    std::to_string(count) + " x " + std::to_string(cols) +
                                    " float64 rows");
      }
      std::copy(values.data(), values.data() + count * cols, rows);
    }
    if (weights != nullptr) {
      if (pair[1].is_none()) {
        std::fill(weights, weights + count, 1.0);
      } else {
        const HostVector w = as_vector(pair[1], "gather_rows()");
        if (static_cast<std::int64_t>(w.size()) != count) {
          throw emix::InvalidArgument(
              "chunk source: gather_rows() gave the wrong number of weights");
        }
        std::copy(w.data(), w.data() + count, weights);
      }
    }
  }

  std::vector<double> weight_sums() override {
    nb::gil_scoped_acquire acquire;
    std::vector<double> sums;
    if (!nb::try_cast(source_.attr("weight_sums")(), sums)) {
      throw emix::InvalidArgument("chunk source: weight_sums() must give a list of floats");
    }
    return sums;
  }

 private:
  using HostVector = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
  using HostMatrix = nb::ndarray<const double, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

  static HostVector as_vector(nb::handle value, const char* call) {
    HostVector vector;
    if (!nb::try_cast(value, vector)) {
      throw emix::InvalidArgument(std::string("chunk source: ") + call +
                                  " must give 1-D float64 arrays");
    }
    return vector;
  }

  std::string text_of(const char* name, bool call) const {
    nb::gil_scoped_acquire acquire;
    nb::object value = source_.attr(name);
    std::string text;
    if (!nb::try_cast(call ? value() : value, text)) {
      throw emix::InvalidArgument(std::string("chunk source: ") + name + " must be a str");
    }
    return text;
  }

  nb::object source_;
  std::optional<View> current_;
  nb::object weights_;
  std::optional<HostWeights> weights_array_;
  const double* weights_pointer_ = nullptr;
};

emix::FitReport fit_chunks(nb::object source, emix::FitOptions options, nb::object callback) {
  options.on_iteration = [&callback](const emix::IterationInfo& info) {
    nb::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
    if (!callback.is_none()) callback(info);
  };
  PyChunkSource chunks(std::move(source));
  const LibraryCall call;
  return emix::fit(chunks, options);
}

emix::SelectReport select_chunks(nb::object source, emix::SelectOptions options) {
  options.fit.on_iteration = [](const emix::IterationInfo&) {
    nb::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
  };
  PyChunkSource chunks(std::move(source));
  const LibraryCall call;
  return emix::select(chunks, options);
}

nb::bytes to_bytes(const emix::Statistics& s) {
  std::vector<std::uint8_t> bytes;
  {
    const LibraryCall call;
    bytes = s.serialize();
  }
  return nb::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

emix::Statistics from_bytes(const nb::bytes& b) {
  return emix::Statistics::deserialize(b.c_str(), b.size());
}

void define_module(nb::module_& m) {
  m.doc() = "emix's C++ library, bound for the emix package (use emix.GaussianMixture & co.)";
  g_main_thread = nb::cast<unsigned long>(
      nb::module_::import_("threading").attr("main_thread")().attr("ident"));
  // A child forked from another thread runs its signal handlers on that thread, its only one
  // (multiprocessing's Pool forks new workers from a thread).
  nb::module_::import_("os").attr("register_at_fork")(
      nb::arg("after_in_child") =
          nb::cpp_function([] { g_main_thread = PyThread_get_thread_ident(); }));

  g_errors.error =
      new_error_type(m, "Error", PyExc_Exception, nullptr, "Base of every error emix raises.");
  g_errors.invalid_argument =
      new_error_type(m, "InvalidArgument", g_errors.error, PyExc_ValueError,
                     "A bad argument, option, model or data value; the message names it.");
  g_errors.io_error = new_error_type(m, "IoError", g_errors.error, PyExc_OSError,
                                     "A file that cannot be read or written, or is malformed.");
  // OSError's str() is "[Errno 2] No such file or directory: 'name'" once errno and filename are
  // set; emix's message says more (what it was doing, the row), so str() stays the message.
  nb::handle(g_errors.io_error).attr("__str__") = nb::handle(PyExc_BaseException).attr("__str__");
  const struct {
    std::vector<int> numbers;
    const char* name;
    PyObject* builtin;
  } io_subtypes[] = {
      {{ENOENT}, "FileNotFoundIoError", PyExc_FileNotFoundError},
      {{EACCES, EPERM}, "PermissionIoError", PyExc_PermissionError},
      {{EISDIR}, "IsADirectoryIoError", PyExc_IsADirectoryError},
      {{ENOTDIR}, "NotADirectoryIoError", PyExc_NotADirectoryError},
      {{EEXIST}, "FileExistsIoError", PyExc_FileExistsError},
      {{EPIPE}, "BrokenPipeIoError", PyExc_BrokenPipeError},
  };
  for (const auto& subtype : io_subtypes) {
    PyObject* type = new_error_type(m, subtype.name, g_errors.io_error, subtype.builtin,
                                    "An IoError that is also the OSError Python raises for its "
                                    "errno.");
    for (const int number : subtype.numbers) g_errors.io_error_by_errno.emplace_back(number, type);
  }
  g_errors.not_available =
      new_error_type(m, "NotAvailable", g_errors.error, PyExc_RuntimeError,
                     "A capability this build or machine lacks (for example a GPU engine).");
  g_errors.out_of_memory = new_error_type(m, "OutOfMemory", g_errors.error, PyExc_MemoryError,
                                          "Host or device memory could not be allocated.");
  // Also a ValueError: scikit-learn raises ValueError for what emix calls numerical failures of
  // the data (an ill-defined covariance), and code written for it catches that.
  g_errors.numerical_error = new_error_type(
      m, "NumericalError", g_errors.error, PyExc_RuntimeError,
      "A numerical failure no policy could recover from (a singular covariance, say).",
      PyExc_ValueError);
  g_errors.cuda_error = new_error_type(m, "CudaError", g_errors.error, PyExc_RuntimeError,
                                       "A CUDA runtime or cuBLAS call failed.");
  g_errors.mpi_error =
      new_error_type(m, "MpiError", g_errors.error, PyExc_RuntimeError, "An MPI call failed.");
  nb::register_exception_translator(translate);

  nb::class_<View>(m, "View", "A row-major matrix in host or CUDA memory, used in place.")
      .def_prop_ro("pointer", &View::pointer, "Address of the first element, as C++ sees it.")
      .def_prop_ro("rows", [](const View& v) { return v.view.rows; })
      .def_prop_ro("cols", [](const View& v) { return v.view.cols; })
      .def_prop_ro("dtype",
                   [](const View& v) { return std::string(emix::to_string(v.view.dtype)); })
      .def_prop_ro("on_device",
                   [](const View& v) { return v.view.space == emix::MemorySpace::kDevice; })
      .def_prop_ro("device_id", [](const View& v) { return v.device_id; })
      .def_prop_ro("owner", [](const View& v) { return v.owner; });
  m.def("view", &make_view, nb::arg("array").noconvert(),
        "A View over a 2-D C-contiguous float32/float64 array (buffer protocol or DLPack).");
  nb::class_<emix::detail::Float32RoundingScan>(
      m, "Float32RoundingScan",
      "What rounding data to float32 loses of each column's spread (core/float32_rounding.hpp).")
      .def(nb::init<>())
      .def(
          "add",
          [](emix::detail::Float32RoundingScan& scan, const View& rows) { scan.add(rows.view); },
          nb::arg("rows"), "Adds the next rows (a host View).")
      .def(
          "worst",
          [](const emix::detail::Float32RoundingScan& scan)
              -> std::optional<std::tuple<std::int64_t, double, double, double>> {
            const auto worst = scan.worst();
            if (!worst) return std::nullopt;
            return std::make_tuple(worst->column, worst->largest, worst->spread, worst->lost);
          },
          "(column, largest, spread, lost) of the column that loses the most above 1e-4 of "
          "its spread, or None.");
  m.def("device_view", &make_device_view, nb::arg("pointer"), nb::arg("rows"), nb::arg("cols"),
        nb::arg("dtype"), nb::arg("device_id"), nb::arg("owner"),
        "A View over CUDA memory given by address (for __cuda_array_interface__).");
  m.def(
      "raise_for_test",
      [](const std::string& kind, const std::string& message) {
        if (kind == "InvalidArgument") throw emix::InvalidArgument(message);
        if (kind == "IoError") throw emix::IoError(message);
        if (kind == "NotAvailable") throw emix::NotAvailable(message);
        if (kind == "OutOfMemory") throw emix::OutOfMemory(message);
        if (kind == "NumericalError") throw emix::NumericalError(message);
        if (kind == "CudaError") throw emix::CudaError(message);
        if (kind == "MpiError") throw emix::MpiError(message);
        if (kind == "Error") throw emix::Error(message);
        if (kind == "bad_alloc") throw std::bad_alloc();
        throw std::logic_error(message);
      },
      nb::arg("kind"), nb::arg("message"),
      "Throws the named C++ exception, for the test of its translation to Python.");
  m.def(
      "last_fit_pointer", [] { return g_last_fit_pointer.load(); },
      "The data address the last fit passed to the library (for tests).");

  nb::class_<emix::Model>(m, "Model", "A fitted or initial mixture's parameters (immutable).")
      .def(
          "__init__",
          [](emix::Model* self, const std::string& family, const std::string& covariance,
             int n_features, int trials, const HostDoubles& weights,
             const std::optional<HostDoubles>& means, const std::optional<HostDoubles>& covariances,
             const std::optional<HostDoubles>& probabilities) {
            new (self) emix::Model(make_model(family, covariance, n_features, trials, weights,
                                              means, covariances, probabilities));
          },
          nb::arg("family"), nb::arg("covariance"), nb::arg("n_features"), nb::arg("trials"),
          nb::arg("weights"), nb::arg("means").none(), nb::arg("covariances").none(),
          nb::arg("probabilities").none())
      .def_prop_ro("family", [](const emix::Model& x) { return emix::to_string(x.family); })
      .def_prop_ro("covariance", [](const emix::Model& x) { return emix::to_string(x.covariance); })
      .def_ro("n_components", &emix::Model::n_components)
      .def_ro("n_features", &emix::Model::n_features)
      .def_ro("trials", &emix::Model::trials)
      .def_prop_ro(
          "weights",
          [](const emix::Model& x) {
            return to_numpy(x.weights, {static_cast<size_t>(x.n_components)});
          },
          nb::rv_policy::move)
      .def_prop_ro(
          "means",
          [](const emix::Model& x) {
            const auto k = static_cast<size_t>(x.n_components);
            return to_numpy(x.means,
                            {x.means.empty() ? 0 : k, x.means.empty() ? 0 : x.means.size() / k});
          },
          nb::rv_policy::move)
      .def_prop_ro("covariances", &covariances_of, nb::rv_policy::move)
      .def_prop_ro(
          "probabilities",
          [](const emix::Model& x) {
            const auto k = static_cast<size_t>(x.n_components);
            const size_t n = x.probabilities.size();
            return to_numpy(x.probabilities, {n == 0 ? 0 : k, n == 0 ? 0 : n / k});
          },
          nb::rv_policy::move)
      .def("precisions_cholesky", &precisions_cholesky_of, nb::arg("n_threads"),
           nb::rv_policy::move)
      .def("n_parameters", &emix::Model::n_parameters)
      .def("validate", &emix::Model::validate);

  nb::class_<emix::Evaluator>(m, "Evaluator",
                              "A model checked and factored once, for many evaluations "
                              "(emix::Evaluator): predict and the others without the model's "
                              "check and factorisation per call.")
      .def(
          "__init__",
          [](emix::Evaluator* self, const emix::Model& model, int n_threads) {
            const LibraryCall call;
            new (self) emix::Evaluator(model, n_threads);
          },
          nb::arg("model"), nb::arg("n_threads"))
      .def(
          "parameter",
          [](nb::handle self, const std::string& name) {
            // The evaluator's own array, not a copy (its lifetime holds it): what a caller
            // compares its parameters with, to tell whether this evaluator is still theirs.
            const emix::Model& model = nb::cast<const emix::Evaluator&>(self).model();
            const std::vector<double>* values = name == "weights"         ? &model.weights
                                                : name == "means"         ? &model.means
                                                : name == "covariances"   ? &model.covariances
                                                : name == "probabilities" ? &model.probabilities
                                                                          : nullptr;
            if (values == nullptr) throw emix::InvalidArgument("no model parameter " + name);
            return nb::ndarray<nb::numpy, const double>(values->data(), {values->size()}, self);
          },
          nb::arg("name"), "The model's parameter `name`, flat and read-only.")
      .def(
          "predict",
          [](const emix::Evaluator& e, const View& x, const emix::EngineOptions& engine) {
            // int64, scikit-learn's label type (and sample()'s), from the library's int32.
            std::vector<std::int64_t> labels;
            {
              const LibraryCall call;
              const std::vector<std::int32_t> narrow = e.predict(x.view, engine_for(x, engine));
              labels.assign(narrow.begin(), narrow.end());
            }
            return to_numpy(std::move(labels), {static_cast<size_t>(x.view.rows)});
          },
          nb::arg("x"), nb::arg("engine"))
      .def(
          "predict_proba",
          [](const emix::Evaluator& e, const View& x, const emix::EngineOptions& engine) {
            std::vector<double> resp;
            {
              const LibraryCall call;
              resp = e.predict_proba(x.view, engine_for(x, engine));
            }
            return to_numpy(std::move(resp), {static_cast<size_t>(x.view.rows),
                                              static_cast<size_t>(e.model().n_components)});
          },
          nb::arg("x"), nb::arg("engine"))
      .def(
          "score_samples",
          [](const emix::Evaluator& e, const View& x, const emix::EngineOptions& engine) {
            std::vector<double> log_prob;
            {
              const LibraryCall call;
              log_prob = e.score_samples(x.view, engine_for(x, engine));
            }
            return to_numpy(std::move(log_prob), {static_cast<size_t>(x.view.rows)});
          },
          nb::arg("x"), nb::arg("engine"))
      .def(
          "score",
          [](const emix::Evaluator& e, const View& x, const emix::EngineOptions& engine,
             const std::optional<HostWeights>& sample_weight) {
            const double* weights = weights_for(x, sample_weight);
            const LibraryCall call;
            return e.score(x.view, engine_for(x, engine), weights);
          },
          nb::arg("x"), nb::arg("engine"), nb::arg("sample_weight").none())
      .def(
          "bic",
          [](const emix::Evaluator& e, const View& x, const emix::EngineOptions& engine,
             const std::optional<HostWeights>& sample_weight) {
            const double* weights = weights_for(x, sample_weight);
            const LibraryCall call;
            return e.bic(x.view, engine_for(x, engine), weights);
          },
          nb::arg("x"), nb::arg("engine"), nb::arg("sample_weight").none() = nb::none())
      .def(
          "aic",
          [](const emix::Evaluator& e, const View& x, const emix::EngineOptions& engine,
             const std::optional<HostWeights>& sample_weight) {
            const double* weights = weights_for(x, sample_weight);
            const LibraryCall call;
            return e.aic(x.view, engine_for(x, engine), weights);
          },
          nb::arg("x"), nb::arg("engine"), nb::arg("sample_weight").none() = nb::none());

  nb::class_<emix::IterationInfo>(m, "IterationInfo", "What one EM iteration did.")
      .def_ro("init_run", &emix::IterationInfo::init_run)
      .def_ro("iteration", &emix::IterationInfo::iteration)
      .def_ro("log_likelihood", &emix::IterationInfo::log_likelihood)
      .def_ro("mean_log_likelihood", &emix::IterationInfo::mean_log_likelihood)
      .def_ro("change", &emix::IterationInfo::change)
      .def_ro("seconds", &emix::IterationInfo::seconds)
      .def("__repr__", [](const emix::IterationInfo& i) {
        return "IterationInfo(init_run=" + std::to_string(i.init_run) +
               ", iteration=" + std::to_string(i.iteration) +
               ", mean_log_likelihood=" + std::to_string(i.mean_log_likelihood) + ")";
      });

  nb::class_<emix::FitReport>(m, "FitReport", "The outcome of a fit (emix/fit.hpp).")
      .def(nb::init<>())
      .def_rw("model", &emix::FitReport::model)
      .def_rw("log_likelihood", &emix::FitReport::log_likelihood)
      .def_rw("mean_log_likelihood", &emix::FitReport::mean_log_likelihood)
      .def_rw("history", &emix::FitReport::history)
      .def_rw("n_iter", &emix::FitReport::n_iter)
      .def_rw("converged", &emix::FitReport::converged)
      .def_rw("best_init", &emix::FitReport::best_init)
      .def_rw("engine", &emix::FitReport::engine)
      .def_rw("precision", &emix::FitReport::precision)
      .def_rw("seconds", &emix::FitReport::seconds)
      .def_rw("setup_seconds", &emix::FitReport::setup_seconds)
      .def_rw("init_seconds", &emix::FitReport::init_seconds)
      .def_rw("iteration_seconds", &emix::FitReport::iteration_seconds)
      .def_rw("warnings", &emix::FitReport::warnings);

  nb::class_<emix::EngineOptions>(m, "EngineOptions", "Where and how the E-step runs.")
      .def(nb::init<>())
      .def_prop_rw(
          "device", [](const emix::EngineOptions& o) { return emix::to_string(o.device); },
          [](emix::EngineOptions& o, const std::string& v) { o.device = emix::parse_device(v); })
      .def_rw("n_threads", &emix::EngineOptions::n_threads)
      .def_rw("block_rows", &emix::EngineOptions::block_rows)
      .def_rw("chunk_rows", &emix::EngineOptions::chunk_rows)
      .def_rw("device_memory_limit", &emix::EngineOptions::device_memory_limit)
      .def_rw("allow_tf32", &emix::EngineOptions::allow_tf32)
      .def_rw("gpu_device", &emix::EngineOptions::gpu_device);

  nb::class_<emix::FitOptions>(m, "FitOptions", "Options of a fit (emix/options.hpp).")
      .def(nb::init<>())
      .def_rw("n_components", &emix::FitOptions::n_components)
      .def_prop_rw(
          "family", [](const emix::FitOptions& o) { return emix::to_string(o.family); },
          [](emix::FitOptions& o, const std::string& v) { o.family = emix::parse_family(v); })
      .def_prop_rw(
          "covariance", [](const emix::FitOptions& o) { return emix::to_string(o.covariance); },
          [](emix::FitOptions& o, const std::string& v) {
            o.covariance = emix::parse_covariance(v);
          })
      .def_rw("trials", &emix::FitOptions::trials)
      .def_prop_rw(
          "init", [](const emix::FitOptions& o) { return emix::to_string(o.init); },
          [](emix::FitOptions& o, const std::string& v) { o.init = emix::parse_init(v); })
      .def_prop_rw(
          "init_model",
          [](const emix::FitOptions& o) -> nb::object {
            return o.init_model ? nb::cast(*o.init_model) : nb::none();
          },
          [](emix::FitOptions& o, const emix::Model* v) {
            if (v) {
              o.init_model = *v;
            } else {
              o.init_model.reset();
            }
          },
          nb::for_setter(nb::arg("value").none()))
      .def_rw("kmeans_iter", &emix::FitOptions::kmeans_iter)
      .def_rw("init_max_rows", &emix::FitOptions::init_max_rows)
      .def_rw("fixed_weights", &emix::FitOptions::fixed_weights)
      .def_rw("n_init", &emix::FitOptions::n_init)
      .def_rw("max_iter", &emix::FitOptions::max_iter)
      .def_rw("tol", &emix::FitOptions::tol)
      .def_rw("reg_covar", &emix::FitOptions::reg_covar)
      .def_rw("prob_epsilon", &emix::FitOptions::prob_epsilon)
      .def_rw("seed", &emix::FitOptions::seed)
      .def_rw("engine", &emix::FitOptions::engine);

  m.def("fit", &fit, nb::arg("x"), nb::arg("options"), nb::arg("sample_weight").none(),
        nb::arg("callback").none(),
        "emix::fit on a View; callback(IterationInfo) runs after each iteration's E-step.");
  m.def(
      "sample",
      [](const emix::Model& model, std::int64_t n, std::uint64_t seed, int n_threads) {
        emix::Sample s;
        {
          const LibraryCall call;
          s = emix::sample(model, n, seed, n_threads);
        }
        const auto rows = static_cast<size_t>(n);
        return nb::make_tuple(
            to_numpy(std::move(s.x), {rows, static_cast<size_t>(model.n_features)}),
            to_numpy(std::move(s.labels), {rows}));
      },
      nb::arg("model"), nb::arg("n"), nb::arg("seed"), nb::arg("n_threads") = 0);
  // Paths arrive as os.fsencode gives them: a name that is not UTF-8 has no std::string as str.
  m.def(
      "read_model_and_sections",
      [](const nb::bytes& path) {
        const std::string name(path.c_str(), path.size());
        std::string fit, estimator;
        emix::Model model;
        {
          const LibraryCall call;
          model = emix::io::read_model(name, &fit, &estimator);
        }
        return nb::make_tuple(std::move(model), std::move(fit), std::move(estimator));
      },
      nb::arg("path"));
  m.def(
      "write_model",
      [](const nb::bytes& path, const emix::Model& model, const emix::FitReport* report,
         const std::string& estimator) {
        const std::string name(path.c_str(), path.size());
        const LibraryCall call;
        emix::io::write_model(name, model, report, estimator);
      },
      nb::arg("path"), nb::arg("model"), nb::arg("report").none(), nb::arg("estimator") = "");
  // --- issue 14: the statistics API, chunked fits, online EM, model selection ---------------
  nb::class_<emix::Statistics>(m, "Statistics",
                               "EM's sufficient statistics (emix/statistics.hpp), additive.")
      .def(nb::init<const emix::Model&>(), nb::arg("model"))
      .def_prop_ro("family", [](const emix::Statistics& s) { return emix::to_string(s.family()); })
      .def_prop_ro("covariance",
                   [](const emix::Statistics& s) { return emix::to_string(s.covariance()); })
      .def_prop_ro("n_components", &emix::Statistics::n_components)
      .def_prop_ro("n_features", &emix::Statistics::n_features)
      .def_prop_ro("trials", &emix::Statistics::trials)
      .def_prop_ro("log_likelihood", &emix::Statistics::log_likelihood)
      .def_prop_ro("weight_sum", &emix::Statistics::weight_sum)
      .def_prop_ro("entropy", &emix::Statistics::entropy)
      .def_prop_ro(
          "centres",
          [](const emix::Statistics& s) {
            return to_numpy(s.centres(), {static_cast<size_t>(s.n_components()),
                                          static_cast<size_t>(s.n_features())});
          },
          nb::rv_policy::move)
      .def_prop_ro(
          "values",
          [](const emix::Statistics& s) {
            const auto& v = static_cast<const std::vector<double>&>(s.values());
            return to_numpy(v, {v.size()});
          },
          nb::rv_policy::move)
      .def(
          "merge",
          [](emix::Statistics& s, const emix::Statistics& other) -> emix::Statistics& {
            return s.merge(other);
          },
          nb::arg("other"), nb::rv_policy::reference_internal)
      .def(
          "scale", [](emix::Statistics& s, double f) -> emix::Statistics& { return s.scale(f); },
          nb::arg("factor"), nb::rv_policy::reference_internal)
      .def(
          "recentred",
          [](const emix::Statistics& s, const HostDoubles& centres) {
            return s.recentred(
                std::vector<double>(centres.data(), centres.data() + centres.size()));
          },
          nb::arg("centres"))
      .def("serialize", &to_bytes)
      .def_static("deserialize", &from_bytes, nb::arg("data"))
      .def("copy", [](const emix::Statistics& s) { return emix::Statistics(s); });
  m.def(
      "merge_in_order",
      [](const std::vector<emix::Statistics>& parts) {
        const LibraryCall call;
        return emix::merge_in_order(parts);
      },
      nb::arg("parts"));
  m.def(
      "accumulate",
      [](const emix::Model& model, const View& x, const emix::EngineOptions& engine,
         const std::optional<HostWeights>& sample_weight) {
        const double* weights = weights_for(x, sample_weight);
        const LibraryCall call;
        return emix::accumulate(model, x.view, engine_for(x, engine), weights);
      },
      nb::arg("model"), nb::arg("x"), nb::arg("engine"), nb::arg("sample_weight").none());
  m.def(
      "accumulate_piece",
      [](const emix::Model& model, const std::optional<std::vector<double>>& centres, const View& x,
         const emix::EngineOptions& engine, const std::optional<HostWeights>& sample_weight) {
        const double* weights = weights_for(x, sample_weight);
        const LibraryCall call;
        return emix::accumulate_piece(model, centres ? &*centres : nullptr, x.view,
                                      engine_for(x, engine), weights);
      },
      nb::arg("model"), nb::arg("centres").none(), nb::arg("x"), nb::arg("engine"),
      nb::arg("sample_weight").none(),
      "accumulate of a piece of the rows whose weights the caller judges with all the others "
      "(check_largest_sample_weight on the largest): a Dask block, a chunk (core/"
      "accumulate_piece.hpp).");
  m.def(
      "accumulate_about",
      [](const emix::Model& model, const std::vector<double>& centres, const View& x,
         const emix::EngineOptions& engine, const std::optional<HostWeights>& sample_weight) {
        const double* weights = weights_for(x, sample_weight);
        const LibraryCall call;
        return emix::accumulate_about(model, centres, x.view, engine_for(x, engine), weights);
      },
      nb::arg("model"), nb::arg("centres"), nb::arg("x"), nb::arg("engine"),
      nb::arg("sample_weight").none());
  m.def(
      "scatter_lost_digits",
      [](const emix::Model& next, const emix::Statistics& statistics) {
        const LibraryCall call;
        return emix::scatter_lost_digits(next, statistics);
      },
      nb::arg("next"), nb::arg("statistics"));
  nb::class_<emix::MStepOptions>(m, "MStepOptions", "Options of the M-step.")
      .def(nb::init<>())
      .def_rw("reg_covar", &emix::MStepOptions::reg_covar)
      .def_rw("prob_epsilon", &emix::MStepOptions::prob_epsilon)
      .def_rw("fixed_weights", &emix::MStepOptions::fixed_weights);
  m.def(
      "maximize",
      [](const emix::Model& model, const emix::Statistics& statistics,
         const emix::MStepOptions& options) {
        std::vector<int> empty;
        emix::Model next;
        {
          const LibraryCall call;
          next = emix::maximize(model, statistics, options, &empty);
        }
        return std::make_pair(std::move(next), std::move(empty));
      },
      nb::arg("model"), nb::arg("statistics"), nb::arg("options"));

  m.def(
      "chunk_pass",
      [](nb::bytes pass, const View& x, const emix::EngineOptions& engine,
         const std::optional<HostWeights>& sample_weight) {
        const double* weights = weights_for(x, sample_weight);
        const auto* begin = static_cast<const std::uint8_t*>(pass.data());
        const std::vector<std::uint8_t> bytes(begin, begin + pass.size());
        std::vector<double> statistics;
        std::string engine_name;
        {
          const LibraryCall call;
          statistics =
              emix::chunk_pass(bytes, x.view, weights, engine_for(x, engine), &engine_name);
        }
        const size_t size = statistics.size();
        return nb::make_tuple(to_numpy(std::move(statistics), {size}), engine_name);
      },
      nb::arg("pass_"), nb::arg("x"), nb::arg("engine"), nb::arg("sample_weight").none(),
      "A chunk's statistics under each model of a pass (a ChunkSource's chunk_statistics on the "
      "chunk's side), its values checked, the models' statistics concatenated; and the name of "
      "the engine that computed them.");
  m.def("fit_chunks", &fit_chunks, nb::arg("source"), nb::arg("options"),
        nb::arg("callback").none(),
        "emix::fit over a chunk source (an object with n_chunks() and chunk(i) -> (View, "
        "weights or None)).");

  nb::class_<emix::OnlineEm>(m, "OnlineEm", "Stepwise EM over a stream (emix/online.hpp).")
      .def(
          "__init__",
          [](emix::OnlineEm* self, const emix::Model& initial, double step_decay,
             double step_offset, const emix::MStepOptions& mstep) {
            emix::OnlineOptions o;
            o.step_decay = step_decay;
            o.step_offset = step_offset;
            o.mstep = mstep;
            new (self) emix::OnlineEm(initial, o);
          },
          nb::arg("initial"), nb::arg("step_decay"), nb::arg("step_offset"), nb::arg("mstep"))
      .def_static(
          "resume",
          [](const emix::Model& model, double step_decay, double step_offset,
             const emix::MStepOptions& mstep, const emix::Statistics& running, std::int64_t steps,
             double last_mean_log_likelihood) {
            emix::OnlineOptions o;
            o.step_decay = step_decay;
            o.step_offset = step_offset;
            o.mstep = mstep;
            return emix::OnlineEm(model, o, running, steps, last_mean_log_likelihood);
          },
          nb::arg("model"), nb::arg("step_decay"), nb::arg("step_offset"), nb::arg("mstep"),
          nb::arg("running"), nb::arg("steps"), nb::arg("last_mean_log_likelihood"),
          "An OnlineEm that continues a stopped one (OnlineEm's resuming constructor).")
      .def(
          "stepped",
          // A new stream one step on: this one, which other threads may read or step too, is
          // left as it was.
          [](const emix::OnlineEm& self, const View& x, const emix::EngineOptions& engine,
             const std::optional<HostWeights>& sample_weight) {
            const double* weights = weights_for(x, sample_weight);
            const LibraryCall call;
            emix::OnlineEm next = self;
            next.partial_fit(x.view, engine_for(x, engine), weights);
            return next;
          },
          nb::arg("x"), nb::arg("engine"), nb::arg("sample_weight").none())
      .def_prop_ro("model", [](const emix::OnlineEm& o) { return o.model(); })
      .def_prop_ro("steps", &emix::OnlineEm::steps)
      .def_prop_ro("running_statistics",
                   [](const emix::OnlineEm& o) { return o.running_statistics(); })
      .def_prop_ro("last_mean_log_likelihood", &emix::OnlineEm::last_mean_log_likelihood);

  nb::class_<emix::SelectCandidate>(m, "SelectCandidate", "One model of a selection's grid.")
      .def_ro("n_components", &emix::SelectCandidate::n_components)
      .def_prop_ro("covariance",
                   [](const emix::SelectCandidate& c) { return emix::to_string(c.covariance); })
      .def_ro("fit", &emix::SelectCandidate::fit)
      .def_ro("n_parameters", &emix::SelectCandidate::n_parameters)
      .def_ro("failed", &emix::SelectCandidate::failed)
      .def_ro("bic", &emix::SelectCandidate::bic)
      .def_ro("aic", &emix::SelectCandidate::aic)
      .def_ro("icl", &emix::SelectCandidate::icl);
  nb::class_<emix::SelectReport>(m, "SelectReport", "The outcome of a selection.")
      .def_ro("candidates", &emix::SelectReport::candidates)
      .def_ro("best", &emix::SelectReport::best)
      .def_prop_ro("criterion",
                   [](const emix::SelectReport& r) { return emix::to_string(r.criterion); })
      .def_ro("engine", &emix::SelectReport::engine)
      .def_ro("seconds", &emix::SelectReport::seconds)
      .def_ro("passes", &emix::SelectReport::passes);
  m.def(
      "select",
      [](const View& x, const std::vector<int>& n_components,
         const std::vector<std::string>& covariances, const std::string& criterion,
         emix::FitOptions fit_options, const std::optional<HostWeights>& sample_weight) {
        emix::SelectOptions o;
        o.n_components = n_components;
        o.covariances.clear();
        for (const auto& c : covariances) o.covariances.push_back(emix::parse_covariance(c));
        o.criterion = emix::parse_criterion(criterion);
        fit_options.engine = engine_for(x, fit_options.engine);
        fit_options.on_iteration = [](const emix::IterationInfo&) {
          nb::gil_scoped_acquire acquire;
          if (PyErr_CheckSignals() != 0) throw nb::python_error();
        };
        o.fit = std::move(fit_options);
        const double* weights = weights_for(x, sample_weight);
        const LibraryCall call;
        return emix::select(x.view, o, weights);
      },
      nb::arg("x"), nb::arg("n_components"), nb::arg("covariances"), nb::arg("criterion"),
      nb::arg("options"), nb::arg("sample_weight").none());
  m.def(
      "select_chunks",
      [](nb::object source, const std::vector<int>& n_components,
         const std::vector<std::string>& covariances, const std::string& criterion,
         emix::FitOptions fit_options) {
        emix::SelectOptions o;
        o.n_components = n_components;
        o.covariances.clear();
        for (const auto& c : covariances) o.covariances.push_back(emix::parse_covariance(c));
        o.criterion = emix::parse_criterion(criterion);
        o.fit = std::move(fit_options);
        return select_chunks(std::move(source), std::move(o));
      },
      nb::arg("source"), nb::arg("n_components"), nb::arg("covariances"), nb::arg("criterion"),
      nb::arg("options"),
      "select over a chunk source: each chunk read once per pass for every candidate.");

  m.def("usable_memory_bytes", &emix::usable_memory_bytes,
        "What this process may allocate: the least of physical memory, the cgroup's limit and "
        "ulimit -v / -d.");
  m.def("gpu_available", &emix::gpu_available,
        "True when this build has a GPU engine, a CUDA device answers and cuBLAS loads.");
  m.def("gpu_unavailable_reason", &emix::gpu_unavailable_reason,
        "Why gpu_available() is False, in words ('' when it is True).");
  m.def("gpu_built", &emix::gpu_built, "True when this build has a GPU engine.");
  m.def("gpu_count", &emix::gpu_count, "CUDA devices the GPU engine can use.");
  m.def("version", [] { return std::string(emix::version()); });
  // The library's own rules, for the Python layer's loops that take the same decisions (the
  // partial-initialisation restarts, the statistics API's M-step), so that the two never drift.
  m.def("better_restart", &emix::better_restart, nb::arg("candidate"), nb::arg("best"),
        "Whether a restart with this log-likelihood replaces the best so far (core/em.hpp).");
  m.def("check_weight_totals", &emix::check_weight_totals, nb::arg("normal_total"),
        nb::arg("subnormal_total"), nb::arg("all_rows") = true,
        "The rule on sample weights (all finite and non-negative) from their totals at or above "
        "DBL_MIN and below it (core/validate.hpp).");
  m.def("check_largest_sample_weight", &emix::check_largest_sample_weight, nb::arg("largest"),
        "A fit's rule on the largest of all the rows' sample weights (core/validate.hpp).");
  m.def("bic_of", &emix::bic_of, nb::arg("log_likelihood"), nb::arg("parameters"),
        nb::arg("weight"), "-2 log L + p log W (core/criteria.hpp).");
  m.def("aic_of", &emix::aic_of, nb::arg("log_likelihood"), nb::arg("parameters"),
        "-2 log L + 2 p (core/criteria.hpp).");
  m.def(
      "covariance_extents",
      [](const std::string& covariance, int k, int d) {
        return emix::covariance_extents(emix::parse_covariance(covariance), k, d);
      },
      nb::arg("covariance"), nb::arg("n_components"), nb::arg("n_features"),
      "The extents of a Gaussian mixture's covariances, outermost first (emix/model.hpp).");
  m.def("collapsed_components", &emix::collapsed_components, nb::arg("model"), nb::arg("reg_covar"),
        "The components of an M-step's result that a fit takes for collapsed and re-seeds; "
        "NumericalError for a singular tied covariance (core/maximize.hpp).");
}

}  // namespace

NB_MODULE(_emix, m) {
  // nanobind registers each C++ type once per interpreter. A second initialisation in the same
  // interpreter (an import after `del sys.modules["emix._emix"]`, as test harnesses and
  // reloaders do) would find them taken and leave the new module without its classes; it gets
  // the first module's contents instead. The first module is kept in the interpreter's own
  // dictionary, which a new interpreter does not share.
  PyObject* interpreter = PyInterpreterState_GetDict(PyInterpreterState_Get());
  const char* key = "emix._emix: the module first initialised";
  if (interpreter) {
    if (PyObject* first = PyDict_GetItemString(interpreter, key)) {
      PyObject* name = nullptr;
      PyObject* value = nullptr;
      Py_ssize_t position = 0;
      PyObject* contents = PyModule_GetDict(first);
      while (PyDict_Next(contents, &position, &name, &value)) {
        const std::string text = nb::cast<std::string>(nb::handle(name));
        if (text.rfind("__", 0) != 0 || text == "__doc__") m.attr(name) = nb::handle(value);
      }
      return;
    }
  }
  define_module(m);
  if (interpreter && PyDict_SetItemString(interpreter, key, m.ptr()) != 0) {
    throw nb::python_error();
  }
}

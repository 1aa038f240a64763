#include "kernels/cublas_library.hpp"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <optional>

#include "emix/errors.hpp"

#define EMIX_STRINGIFY_(x) #x
#define EMIX_STRINGIFY(x) EMIX_STRINGIFY_(x)

namespace emix::gpu {

namespace {

// A minor version of cuBLAS keeps the functions of the ones before it, so the header's major
// version names the library: libcublas.so.13 for CUDA 13.
constexpr const char* kCublasSoname = "libcublas.so." EMIX_STRINGIFY(CUBLAS_VER_MAJOR);

template <typename Function>
void resolve(void* library, const char* symbol, Function& function, std::string& missing) {
  function = reinterpret_cast<Function>(dlsym(library, symbol));
  if (function == nullptr) missing += missing.empty() ? symbol : std::string(", ") + symbol;
}

// The functions of an opened library, or nullopt with `missing` naming those it lacks.
std::optional<CublasApi> resolve_all(void* library, std::string& missing) {
  CublasApi api;
#define EMIX_CUBLAS_RESOLVE(field, symbol) resolve(library, #symbol, api.field, missing);
  EMIX_CUBLAS_FUNCTIONS(EMIX_CUBLAS_RESOLVE)
#undef EMIX_CUBLAS_RESOLVE
  if (!missing.empty()) return std::nullopt;
  return api;
}

struct Loaded {
  CublasApi api;
  std::string unavailable_reason;
};

std::atomic<bool> g_exiting{false};

// Never destroyed: a GPU engine held in a global object may ask for it during exit.
const Loaded& loaded() {
  static const Loaded& once = *[] {
    auto* result = new Loaded;
    try {
      result->api = load_cublas(cublas_candidates());
      // cuBLAS registered its own clean-up when it was opened, after the program's globals were
      // built, so at exit it runs before their destructors. Registered after it, this runs
      // first of all and tells those destructors that cuBLAS is going (cublas_exiting()).
      std::atexit([] { g_exiting.store(true); });
    } catch (const NotAvailable& error) {
      result->unavailable_reason = error.what();
    }
    return result;
  }();
  return once;
}

}  // namespace

std::vector<std::string> cublas_candidates() {
  std::vector<std::string> candidates{kCublasSoname};
#ifdef EMIX_CUDA_LIBRARY_DIR
  candidates.push_back(std::string(EMIX_CUDA_LIBRARY_DIR) + "/" + kCublasSoname);
#endif
  return candidates;
}

CublasApi load_cublas(const std::vector<std::string>& candidates) {
  std::string failures;
  for (const std::string& candidate : candidates) {
    // RTLD_LOCAL: cuBLAS's symbols stay out of the way of a program's own cuBLAS, if it has one.
    void* library = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    std::string why;  // dlerror's text names the file
    if (library == nullptr) {
      const char* error = dlerror();
      why = error != nullptr ? error : candidate + ": dlopen failed";
    } else {
      std::string missing;
      if (std::optional<CublasApi> api = resolve_all(library, missing)) return *api;
      why = candidate + " lacks " + missing;
      dlclose(library);
    }
    failures += "\n  " + why;
  }
  throw NotAvailable(std::string("the GPU engine needs cuBLAS (") + kCublasSoname +
                     "), which could not be loaded; install CUDA's cuBLAS or add its folder to "
                     "LD_LIBRARY_PATH. Tried:" +
                     failures);
}

const std::string& cublas_unavailable_reason() { return loaded().unavailable_reason; }

bool cublas_exiting() { return g_exiting.load(); }

const CublasApi& cublas() {
  const Loaded& library = loaded();
  if (!library.unavailable_reason.empty()) throw NotAvailable(library.unavailable_reason);
  return library.api;
}

}  // namespace emix::gpu

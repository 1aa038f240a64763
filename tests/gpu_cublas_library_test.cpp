// cuBLAS opened at run time (kernels/cublas_library.hpp): the symbols emix resolves exist in the
// toolkit's library, and a library that cannot be used is refused with its name. These need the
// library, not a device, so they run on a CPU-only machine with the CUDA toolkit.
#if EMIX_HAS_CUDA
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

#include "emix/errors.hpp"
#include "kernels/cublas_library.hpp"

namespace {

using emix::gpu::cublas;
using emix::gpu::cublas_candidates;
using emix::gpu::cublas_unavailable_reason;
using emix::gpu::load_cublas;

std::string refusal(const std::vector<std::string>& candidates) {
  try {
    load_cublas(candidates);
  } catch (const emix::NotAvailable& error) {
    return error.what();
  }
  return "";
}

TEST(CublasLibrary, TheSonameIsTriedFirstThenTheToolkitsFolder) {
  const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  const std::vector<std::string> candidates = cublas_candidates();
  ASSERT_EQ(candidates.size(), 2u);
  EXPECT_EQ(candidates.front(), soname);
  // The build's toolkit folder: an absolute path to the same file name.
  EXPECT_EQ(candidates.back().front(), '/') << candidates.back();
  EXPECT_EQ(candidates.back().substr(candidates.back().size() - soname.size() - 1), "/" + soname);
}

TEST(CublasLibrary, LoadsWithEveryFunctionEmixCalls) {
  if (!cublas_unavailable_reason().empty()) GTEST_SKIP() << cublas_unavailable_reason();
  const emix::gpu::CublasApi& api = cublas();
#define EMIX_EXPECT_LOADED(field, symbol) EXPECT_NE(api.field, nullptr) << #symbol;
  EMIX_CUBLAS_FUNCTIONS(EMIX_EXPECT_LOADED)
#undef EMIX_EXPECT_LOADED
  // An absolute path after a name that does not load serves as well, as the toolkit's folder
  // does. The path is the library's that loaded: the build's toolkit folder need not exist on
  // the machine that runs the tests.
  Dl_info loaded{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(api.create), &loaded), 0);
  ASSERT_NE(loaded.dli_fname, nullptr);
  ASSERT_EQ(loaded.dli_fname[0], '/') << loaded.dli_fname;
  EXPECT_NO_THROW(load_cublas({"libcublas-missing.so.1", loaded.dli_fname}));
  // The status functions need no device: a call shows the pointers are the right functions.
  EXPECT_STREQ(api.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
  EXPECT_NE(std::string(api.status_string(CUBLAS_STATUS_ALLOC_FAILED)), "");
}

TEST(CublasLibrary, AMissingLibraryIsRefusedByName) {
  const std::string what = refusal({"/nonexistent/libcublas.so.99", "libcublas-missing.so.1"});
  EXPECT_NE(what.find("/nonexistent/libcublas.so.99"), std::string::npos) << what;
  EXPECT_NE(what.find("libcublas-missing.so.1"), std::string::npos) << what;
  EXPECT_NE(what.find("LD_LIBRARY_PATH"), std::string::npos) << what;
}

TEST(CublasLibrary, ALibraryWithoutCublasIsRefusedNamingWhatItLacks) {
  const std::string what = refusal({"libm.so.6"});
  EXPECT_NE(what.find("libm.so.6 lacks cublasCreate_v2"), std::string::npos) << what;
}

}  // namespace
#endif

// CUDA error checking and RAII owners for device memory, pinned host memory, streams, events and
// the cuBLAS handle. Every CUDA runtime and cuBLAS call in kernels/ goes through EMIX_CUDA_TRY or
// EMIX_CUBLAS_TRY; every kernel launch is followed by EMIX_CHECK_LAUNCH.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "emix/errors.hpp"
#include "kernels/cublas_library.hpp"

namespace emix::gpu {

// "12.5 MiB"-style size for messages.
inline std::string format_bytes(std::int64_t bytes) {
  char text[64];
  const double b = static_cast<double>(bytes);
  if (bytes >= (std::int64_t{1} << 30)) {
    std::snprintf(text, sizeof text, "%lld bytes (%.2f GiB)", static_cast<long long>(bytes),
                  b / double(1 << 30));
  } else if (bytes >= (std::int64_t{1} << 20)) {
    std::snprintf(text, sizeof text, "%lld bytes (%.2f MiB)", static_cast<long long>(bytes),
                  b / double(1 << 20));
  } else {
    std::snprintf(text, sizeof text, "%lld bytes", static_cast<long long>(bytes));
  }
  return text;
}

// kernels/foo.cu rather than the build machine's absolute path.
inline const char* short_file(const char* file) {
  const char* p = std::strstr(file, "kernels/");
  return p ? p : file;
}

inline std::string describe_cuda_error(cudaError_t status, const char* call, const char* file,
                                       int line) {
  return std::string("CUDA call `") + call + "` failed with " + cudaGetErrorName(status) + " (" +
         cudaGetErrorString(status) + ") at " + short_file(file) + ":" + std::to_string(line);
}

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                          int line) {
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // not sticky: clear it so later calls do not see it
    throw OutOfMemory(describe_cuda_error(status, call, file, line));
  }
  throw CudaError(describe_cuda_error(status, call, file, line));
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call,
                                            const char* file, int line) {
  const std::string text = std::string("cuBLAS call `") + call + "` failed with " +
                           cublas().status_name(status) + " (" + cublas().status_string(status) +
                           ") at " + short_file(file) + ":" + std::to_string(line);
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemory(text);
  throw CudaError(text);
}

// For destructors: a failure there cannot be thrown, so it is reported on stderr. Except when
// the program is exiting and the CUDA runtime has already torn itself down (an engine held in
// a static or global object outlives it): the runtime has released every resource then, so
// nothing leaked and there is nothing to report.
inline void report_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaErrorCudartUnloading) return;
  std::fprintf(stderr, "emix: %s (ignored while releasing a resource)\n",
               describe_cuda_error(status, call, file, line).c_str());
}

}  // namespace emix::gpu

#define EMIX_CUDA_TRY(expr)                                                        \
  do {                                                                             \
    const cudaError_t emix_cuda_status_ = (expr);                                  \
    if (emix_cuda_status_ != cudaSuccess) {                                        \
      ::emix::gpu::throw_cuda_error(emix_cuda_status_, #expr, __FILE__, __LINE__); \
    }                                                                              \
  } while (0)

#define EMIX_CUDA_TRY_NOTHROW(expr)                                                 \
  do {                                                                              \
    const cudaError_t emix_cuda_status_ = (expr);                                   \
    if (emix_cuda_status_ != cudaSuccess) {                                         \
      ::emix::gpu::report_cuda_error(emix_cuda_status_, #expr, __FILE__, __LINE__); \
    }                                                                               \
  } while (0)

#define EMIX_CUBLAS_TRY(expr)                                                          \
  do {                                                                                 \
    const cublasStatus_t emix_cublas_status_ = (expr);                                 \
    if (emix_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                                \
      ::emix::gpu::throw_cublas_error(emix_cublas_status_, #expr, __FILE__, __LINE__); \
    }                                                                                  \
  } while (0)

// After every kernel launch: a bad configuration is reported at once; with EMIX_CUDA_DEBUG_SYNC a
// fault inside the kernel is reported at its launch rather than at some later call.
#ifdef EMIX_CUDA_DEBUG_SYNC
#define EMIX_CHECK_LAUNCH(stream)                 \
  do {                                            \
    EMIX_CUDA_TRY(cudaGetLastError());            \
    EMIX_CUDA_TRY(cudaStreamSynchronize(stream)); \
  } while (0)
#else
#define EMIX_CHECK_LAUNCH(stream)      \
  do {                                 \
    (void)(stream);                    \
    EMIX_CUDA_TRY(cudaGetLastError()); \
  } while (0)
#endif

namespace emix::gpu {

// Device memory for `count` elements of T, released on destruction. A failed allocation throws
// OutOfMemory naming the size, what it was for, and the device's free memory.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(std::int64_t count, const char* what) { allocate(count, what); }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      ptr_ = std::exchange(other.ptr_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }

  void allocate(std::int64_t count, const char* what) {
    reset();
    if (count <= 0) return;
    if (count > std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(sizeof(T))) {
      throw OutOfMemory(std::string("GPU engine: ") + what + " would need more than 2^63 bytes");
    }
    const std::int64_t bytes = count * static_cast<std::int64_t>(sizeof(T));
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, static_cast<std::size_t>(bytes));
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      std::size_t free_bytes = 0, total_bytes = 0;
      std::string where;
      if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
        where = "; the device has " + format_bytes(static_cast<std::int64_t>(free_bytes)) +
                " free of " + format_bytes(static_cast<std::int64_t>(total_bytes));
      }
      throw OutOfMemory("GPU engine: cannot allocate " + format_bytes(bytes) +
                        " of device memory for " + what + where);
    }
    if (status != cudaSuccess) throw_cuda_error(status, "cudaMalloc", __FILE__, __LINE__);
    ptr_ = static_cast<T*>(p);
    count_ = count;
  }

  void reset() noexcept {
    if (ptr_ != nullptr) EMIX_CUDA_TRY_NOTHROW(cudaFree(ptr_));
    ptr_ = nullptr;
    count_ = 0;
  }

  T* data() const { return ptr_; }
  std::int64_t size() const { return count_; }
  std::int64_t bytes() const { return count_ * static_cast<std::int64_t>(sizeof(T)); }

 private:
  T* ptr_ = nullptr;
  std::int64_t count_ = 0;
};

// Page-locked host memory (the staging buffers that let copies overlap with kernels).
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { reset(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void allocate(std::int64_t count, const char* what) {
    reset();
    if (count <= 0) return;
    const std::int64_t bytes = count * static_cast<std::int64_t>(sizeof(T));
    void* p = nullptr;
    const cudaError_t status = cudaMallocHost(&p, static_cast<std::size_t>(bytes));
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      throw OutOfMemory("GPU engine: cannot allocate " + format_bytes(bytes) +
                        " of pinned host memory for " + what);
    }
    if (status != cudaSuccess) throw_cuda_error(status, "cudaMallocHost", __FILE__, __LINE__);
    ptr_ = static_cast<T*>(p);
    count_ = count;
  }

  void reset() noexcept {
    if (ptr_ != nullptr) EMIX_CUDA_TRY_NOTHROW(cudaFreeHost(ptr_));
    ptr_ = nullptr;
    count_ = 0;
  }

  T* data() const { return ptr_; }
  std::int64_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  std::int64_t count_ = 0;
};

// A non-blocking stream: it never synchronises with the legacy default stream.
class Stream {
 public:
  Stream() { EMIX_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (stream_ != nullptr) EMIX_CUDA_TRY_NOTHROW(cudaStreamDestroy(stream_));
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const { EMIX_CUDA_TRY(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

// An event used only for ordering (no timing).
class Event {
 public:
  Event() { EMIX_CUDA_TRY(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~Event() {
    if (event_ != nullptr) EMIX_CUDA_TRY_NOTHROW(cudaEventDestroy(event_));
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class CublasHandle {
 public:
  CublasHandle() { EMIX_CUBLAS_TRY(cublas().create(&handle_)); }
  ~CublasHandle() {
    if (handle_ != nullptr && !cublas_exiting()) {
      const cublasStatus_t status = cublas().destroy(handle_);
      // At exit, after the CUDA runtime's own teardown, cuBLAS cannot reach it either.
      if (status != CUBLAS_STATUS_SUCCESS && cudaPeekAtLastError() != cudaErrorCudartUnloading) {
        std::fprintf(stderr, "emix: cublasDestroy failed with %s (ignored)\n",
                     cublas().status_name(status));
      }
    }
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

// Makes `device` current for a scope and restores the caller's device afterwards.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    EMIX_CUDA_TRY(cudaGetDevice(&previous_));
    if (previous_ != device) EMIX_CUDA_TRY(cudaSetDevice(device));
    device_ = device;
  }
  ~DeviceGuard() {
    if (previous_ != device_) EMIX_CUDA_TRY_NOTHROW(cudaSetDevice(previous_));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  int device_ = 0;
};

}  // namespace emix::gpu

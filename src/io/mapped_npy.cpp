// MappedNpy (emix/io.hpp): a .npy file as chunks of rows read through a read-only mapping.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "io/common.hpp"

namespace emix::io {

namespace {

// The file's rows are `dtype` values as the host reads them: a view of the mapping is the data.
bool holds_directly(const detail::NpyLayout& layout, DType dtype) {
  const detail::Scalar wanted =
      dtype == DType::kFloat32 ? detail::Scalar::kFloat32 : detail::Scalar::kFloat64;
  return layout.scalar == wanted && !layout.swap && !layout.fortran_order &&
         layout.data_offset % dtype_size(dtype) == 0;
}

}  // namespace

struct MappedNpy::State {
  std::string path;
  detail::NpyLayout layout;
  DType dtype = DType::kFloat64;
  bool direct = false;
  std::int64_t chunk_rows = 0;
  std::int64_t n_chunks = 0;
  void* map = nullptr;  // the whole file
  std::size_t map_bytes = 0;
  const unsigned char* data = nullptr;  // the array's first element
  std::vector<unsigned char> buffer;    // one converted chunk (not direct)
  std::vector<unsigned char> column;    // one column's slice (Fortran order)
  std::vector<bool> checked;            // chunks whose values have been checked
  const double* weights = nullptr;
  int fd = -1;
  // The file is larger than half the physical memory: a pass cannot find it in the page cache
  // anyway, so chunks already used are dropped from it, and reading the next ones does not
  // wait for the kernel to reclaim them.
  bool drop_used = false;

  // Read-ahead by a thread of its own, for a file larger than memory: MADV_WILLNEED alone is
  // carried out by the thread that asks (it queues the reads and reclaims memory for them), so
  // the disk and the E-step took turns. The thread faults in the pages of the next two chunks,
  // one byte a page, while the engine's threads compute; it stops a chunk once the fit has
  // reached it, and never writes.
  std::thread reader;
  std::mutex mutex;
  std::condition_variable wake;
  std::int64_t requested = -1;    // guarded by mutex
  std::atomic<bool> stop{false};  // set under mutex, read by the reader's page loop too
  std::atomic<std::int64_t> current{-1};

  // The mapping and the file are released here, so that a constructor that throws after
  // mapping (a chunk buffer too large to allocate) leaks neither.
  ~State() {
    if (map != nullptr) ::munmap(map, map_bytes);
    if (fd >= 0) ::close(fd);
  }
  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  void read_ahead() {
    std::int64_t done = -1;
    for (;;) {
      std::int64_t target = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return stop || requested != done; });
        if (stop) return;
        target = done = requested;
      }
      const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
      for (std::int64_t j = target; j < target + 2; ++j) {
        std::uint64_t offset = 0, bytes = 0;
        if (!chunk_pages(j, &offset, &bytes)) break;
        const volatile unsigned char* p = static_cast<const unsigned char*>(map) + offset;
        unsigned char sink = 0;
        for (std::uint64_t at = 0; at < bytes; at += page) {
          if ((at & ((std::uint64_t{1} << 22) - 1)) == 0 && (current.load() >= j || stop.load())) {
            break;
          }
          sink = static_cast<unsigned char>(sink + p[at]);
        }
        (void)sink;
      }
    }
  }

  void request(std::int64_t i) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      requested = i;
    }
    wake.notify_one();
  }

  std::size_t item() const { return detail::scalar_size(layout.scalar); }

  // Chunk i's bytes in the file, rounded out to whole pages (C order only: in Fortran order a
  // chunk is scattered over every column, left to the sequential advice).
  bool chunk_pages(std::int64_t i, std::uint64_t* offset, std::uint64_t* bytes) const {
    if (i < 0 || i >= n_chunks || map == nullptr || layout.fortran_order) return false;
    const std::uint64_t row_bytes = static_cast<std::uint64_t>(layout.cols) * item();
    const std::uint64_t first =
        layout.data_offset + static_cast<std::uint64_t>(i * chunk_rows) * row_bytes;
    const std::uint64_t end =
        first +
        static_cast<std::uint64_t>(std::min(chunk_rows, layout.rows - i * chunk_rows)) * row_bytes;
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    *offset = first / page * page;
    *bytes = end - *offset;
    return true;
  }

  // Asks the kernel to start reading chunk i's pages, without waiting for them.
  void prefetch(std::int64_t i) const {
    std::uint64_t offset = 0, bytes = 0;
    if (!chunk_pages(i, &offset, &bytes)) return;
    ::madvise(static_cast<unsigned char*>(map) + offset, static_cast<std::size_t>(bytes),
              MADV_WILLNEED);
  }

  // Chunk i has been used: its pages leave this process's page tables (they stay in the page
  // cache, a later use faults them back in) and, for a file larger than memory, the page cache.
  // Only whole pages inside chunk i, so that the next chunk's first page stays.
  void release(std::int64_t i) const {
    std::uint64_t offset = 0, bytes = 0;
    if (!chunk_pages(i, &offset, &bytes)) return;
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t end = (offset + bytes) / page * page;
    if (end <= offset) return;
    ::madvise(static_cast<unsigned char*>(map) + offset, static_cast<std::size_t>(end - offset),
              MADV_DONTNEED);
    if (drop_used && fd >= 0) {
      ::posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(end - offset),
                      POSIX_FADV_DONTNEED);
    }
  }

  // Converts rows [first, first + rows) into `out`; the first bad value in row-major order
  // (NaN / Inf when `check`, or too large for float32) throws, naming the file's row.
  void convert_rows(std::int64_t first, std::int64_t rows, unsigned char* out, bool check) {
    const std::size_t out_item = dtype_size(dtype);
    const std::size_t cols = static_cast<std::size_t>(layout.cols);
    double bad = 0;
    if (!layout.fortran_order) {
      const std::size_t count = static_cast<std::size_t>(rows) * cols;
      const std::size_t done =
          detail::convert(data + static_cast<std::size_t>(first) * cols * item(), layout.scalar,
                          layout.swap, count, dtype, out, check, &bad);
      if (done < count) {
        detail::throw_not_finite(path, first + static_cast<std::int64_t>(done / cols) + 1,
                                 static_cast<std::int64_t>(done % cols) + 1, bad, dtype);
      }
      return;
    }
    column.resize(static_cast<std::size_t>(rows) * out_item);
    std::int64_t bad_row = -1, bad_col = -1;
    double bad_value = 0;
    for (std::size_t c = 0; c < cols; ++c) {
      const unsigned char* src =
          data +
          (c * static_cast<std::size_t>(layout.rows) + static_cast<std::size_t>(first)) * item();
      const std::size_t count = static_cast<std::size_t>(rows);
      const std::size_t done = detail::convert(src, layout.scalar, layout.swap, count, dtype,
                                               column.data(), check, &bad);
      for (std::size_t r = 0; r < done; ++r) {
        std::memcpy(out + (r * cols + c) * out_item, column.data() + r * out_item, out_item);
      }
      if (done < count && (bad_row < 0 || static_cast<std::int64_t>(done) < bad_row)) {
        bad_row = static_cast<std::int64_t>(done);
        bad_col = static_cast<std::int64_t>(c);
        bad_value = bad;
      }
    }
    if (bad_row >= 0) {
      detail::throw_not_finite(path, first + bad_row + 1, bad_col + 1, bad_value, dtype);
    }
  }

  // NaN / Inf in rows [first, first + rows) of the mapping itself (direct()).
  void check_direct(std::int64_t first, std::int64_t rows) const {
    const std::size_t cols = static_cast<std::size_t>(layout.cols);
    const std::size_t begin = static_cast<std::size_t>(first) * cols;
    const std::size_t count = static_cast<std::size_t>(rows) * cols;
    const auto scan = [&](const auto* values) {
      for (std::size_t i = 0; i < count; ++i) {
        const double v = static_cast<double>(values[begin + i]);
        if (!(v - v == 0)) {  // NaN or +-Inf
          detail::throw_not_finite(path, first + static_cast<std::int64_t>(i / cols) + 1,
                                   static_cast<std::int64_t>(i % cols) + 1, v, dtype);
        }
      }
    };
    if (dtype == DType::kFloat32) {
      scan(reinterpret_cast<const float*>(data));
    } else {
      scan(reinterpret_cast<const double*>(data));
    }
  }
};

MappedNpy::Layout MappedNpy::describe(const std::string& path, DType dtype) {
  const detail::NpyLayout layout = detail::npy_layout(path);
  return {holds_directly(layout, dtype), static_cast<std::uint64_t>(layout.rows) *
                                             static_cast<std::uint64_t>(layout.cols) *
                                             dtype_size(dtype)};
}

MappedNpy::MappedNpy(const std::string& path, DType dtype, std::int64_t chunk_rows,
                     ReadAhead read_ahead)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.path = path;
  s.layout = detail::npy_layout(path);  // IoError for a malformed or truncated file
  s.dtype = dtype;
  if (chunk_rows < 0) {
    throw InvalidArgument("MappedNpy(" + detail::quote_path(path) + "): chunk_rows " +
                          std::to_string(chunk_rows) + " is negative");
  }
  const std::size_t out_row_bytes =
      std::max<std::size_t>(1, static_cast<std::size_t>(s.layout.cols) * dtype_size(dtype));
  s.chunk_rows = chunk_rows > 0
                     ? chunk_rows
                     : std::max<std::int64_t>(
                           1, static_cast<std::int64_t>((std::size_t{64} << 20) / out_row_bytes));
  s.chunk_rows = std::max<std::int64_t>(1, std::min(s.chunk_rows, s.layout.rows));
  s.n_chunks = s.layout.rows == 0 ? 0 : (s.layout.rows + s.chunk_rows - 1) / s.chunk_rows;
  s.direct = holds_directly(s.layout, dtype);
  s.checked.assign(static_cast<std::size_t>(s.n_chunks), false);

  const std::uint64_t data_bytes = static_cast<std::uint64_t>(s.layout.rows) *
                                   static_cast<std::uint64_t>(s.layout.cols) * s.item();
  if (data_bytes == 0) return;
  s.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (s.fd < 0) detail::throw_io(path, "cannot open", errno);
  s.map_bytes = static_cast<std::size_t>(s.layout.data_offset + data_bytes);
  void* map = ::mmap(nullptr, s.map_bytes, PROT_READ, MAP_SHARED, s.fd, 0);
  if (map == MAP_FAILED) {
    const int error = errno;
    ::close(s.fd);
    s.fd = -1;
    detail::throw_io(path, "cannot memory-map", error);
  }
  s.map = map;
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  s.drop_used = pages > 0 && page > 0 &&
                static_cast<double>(s.map_bytes) >
                    0.5 * static_cast<double>(pages) * static_cast<double>(page);
  ::madvise(s.map, s.map_bytes, MADV_SEQUENTIAL);
  s.data = static_cast<const unsigned char*>(s.map) + s.layout.data_offset;
  if (!s.direct) {
    s.buffer.resize(static_cast<std::size_t>(s.chunk_rows) * out_row_bytes);
  }
  // Last: nothing after it may throw, or the thread would be left running.
  const bool thread =
      read_ahead == ReadAhead::kThread || (read_ahead == ReadAhead::kAuto && s.drop_used);
  if (thread && !s.layout.fortran_order) {
    s.reader = std::thread([state = state_.get()] { state->read_ahead(); });
  }
}

MappedNpy::~MappedNpy() {
  if (state_ && state_->reader.joinable()) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stop = true;
    }
    state_->wake.notify_one();
    state_->reader.join();
  }
}

std::int64_t MappedNpy::rows() const { return state_->layout.rows; }
std::int64_t MappedNpy::cols() const { return state_->layout.cols; }
std::int64_t MappedNpy::chunk_rows() const { return state_->chunk_rows; }
DType MappedNpy::dtype() const { return state_->dtype; }
bool MappedNpy::direct() const { return state_->direct; }

DataView MappedNpy::view() const {
  if (!state_->direct) {
    throw InvalidArgument("MappedNpy::view: " + detail::quote_path(state_->path) + " holds " +
                          detail::scalar_name(state_->layout.scalar) +
                          (state_->layout.fortran_order ? " in Fortran order" : "") +
                          ", not the mapped " + to_string(state_->dtype) + " rows");
  }
  return {state_->data, state_->layout.rows, state_->layout.cols, state_->dtype,
          MemorySpace::kHost};
}

void MappedNpy::advise_reuse() {
  if (state_->map != nullptr) ::madvise(state_->map, state_->map_bytes, MADV_NORMAL);
}

void MappedNpy::set_sample_weight(const double* weights) { state_->weights = weights; }

std::int64_t MappedNpy::n_chunks() { return state_->n_chunks; }

DataView MappedNpy::chunk(std::int64_t i) {
  State& s = *state_;
  if (i < 0 || i >= s.n_chunks) {
    throw InvalidArgument("MappedNpy::chunk: chunk " + std::to_string(i) + " is outside 0.." +
                          std::to_string(s.n_chunks - 1));
  }
  const std::int64_t first = i * s.chunk_rows;
  const std::int64_t rows = std::min(s.chunk_rows, s.layout.rows - first);
  // The chunk before this one is done with (a source's chunk is valid until the next call);
  // the next two are read ahead while this one is used.
  s.current.store(i);
  if (i > 0) s.release(i - 1);
  if (s.reader.joinable()) {
    s.request(i + 1);
  } else {
    s.prefetch(i + 1);
    s.prefetch(i + 2);
  }
  const bool check = !s.checked[static_cast<std::size_t>(i)];
  DataView view{nullptr, rows, s.layout.cols, s.dtype, MemorySpace::kHost};
  if (s.direct) {
    if (check) s.check_direct(first, rows);
    view.data = s.data + static_cast<std::size_t>(first) * static_cast<std::size_t>(s.layout.cols) *
                             s.item();
  } else {
    s.convert_rows(first, rows, s.buffer.data(), check);
    view.data = s.buffer.data();
  }
  s.checked[static_cast<std::size_t>(i)] = true;
  return view;
}

std::int64_t MappedNpy::known_rows(std::int64_t i) {
  const State& s = *state_;
  if (i < 0 || i >= s.n_chunks) return -1;
  return std::min(s.chunk_rows, s.layout.rows - i * s.chunk_rows);
}

const double* MappedNpy::chunk_weights(std::int64_t i) {
  if (state_->weights == nullptr) return nullptr;
  return state_->weights + i * state_->chunk_rows;
}

}  // namespace emix::io

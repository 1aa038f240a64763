#include "io/atomic_file.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "emix/errors.hpp"

namespace emix::io {
namespace {

std::atomic<unsigned long> temp_counter{0};

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  namespace fs = std::filesystem;
  const fs::path target(path_);
  const std::string name = target.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw IoError(path_ + ": cannot write: not a file name");
  }
  const fs::path dir = target.parent_path();
  const std::string temp_name = "." + name + ".tmp." + std::to_string(::getpid()) + "." +
                                std::to_string(temp_counter.fetch_add(1));
  temp_path_ = (dir / temp_name).string();
  // "x": never open a file that already exists (a stale temporary of a recycled pid).
  file_ = std::fopen(temp_path_.c_str(), "wbx");
  if (file_ == nullptr) {
    const int error = errno;
    throw IoError(path_ + ": cannot write: cannot create a temporary file in '" +
                  (dir.empty() ? std::string(".") : dir.string()) + "': " + std::strerror(error));
  }
}

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

void AtomicFile::discard() noexcept {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
  if (!temp_path_.empty()) std::remove(temp_path_.c_str());
}

void AtomicFile::fail(const std::string& what, int error) {
  discard();
  std::string message = path_ + ": cannot write: " + what;
  if (error != 0) message += std::string(": ") + std::strerror(error);
  throw IoError(message);
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (file_ == nullptr) {
    throw IoError(path_ + ": cannot write: the file was already " +
                  (committed_ ? "committed" : "discarded"));
  }
  if (size == 0) return;
  errno = 0;
  if (std::fwrite(data, 1, size, file_) != size) fail("write failed", errno);
}

void AtomicFile::commit() {
  if (file_ == nullptr) {
    throw IoError(path_ + ": cannot write: the file was already " +
                  (committed_ ? "committed" : "discarded"));
  }
  errno = 0;
  if (std::fflush(file_) != 0) fail("write failed", errno);
  if (std::ferror(file_) != 0) fail("write failed", errno);
  std::FILE* file = file_;
  file_ = nullptr;
  errno = 0;
  if (std::fclose(file) != 0) fail("closing the file failed", errno);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    fail("renaming '" + temp_path_ + "' into place failed", errno);
  }
  committed_ = true;
}

}  // namespace emix::io

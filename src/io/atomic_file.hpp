// A file written under a temporary name and renamed into place, so that a reader never sees a
// partial file and a failed write leaves the target untouched.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace emix::io {

// Opens ".NAME.tmp.PID.N" in the target's own directory (a rename within one file system is
// atomic; across file systems it is not possible at all). commit() flushes, closes and renames
// it over the target. Destroyed uncommitted, or when any step fails, it removes the temporary.
// Every failure throws IoError naming the target path.
//
//   AtomicFile out(path);
//   std::fprintf(out.get(), ...);   // or out.write(...)
//   out.commit();
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // The open temporary file (binary mode); null after commit().
  std::FILE* get() { return file_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  bool committed() const { return committed_; }

  // Writes all `size` bytes or throws IoError (the temporary is removed).
  void write(const void* data, std::size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }

  // Checks every earlier write, including those made through get(), then renames into place.
  void commit();

 private:
  [[noreturn]] void fail(const std::string& what, int error);
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

}  // namespace emix::io

// What the fuzz harnesses share: the input as a file the readers can open by path, and the rule
// that separates a finding from an expected refusal.
//
// Each harness defines LLVMFuzzerTestOneInput. It is linked either with libFuzzer (clang,
// -DEMIX_FUZZ_LIBFUZZER=ON, coverage-guided, for long runs) or with mutation_runner.cpp (any
// compiler, deterministic, for the short run in the test command). A finding is anything but a
// clean return or an emix::Error: a crash, a sanitizer report, a hang (the runners' timeouts), an
// exception of another type (std::bad_alloc from an unchecked size, a library's own exception
// leaking through), or a broken invariant checked by the harness (abort()).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "emix/errors.hpp"

namespace emix::fuzz {

// An anonymous in-memory file (memfd) holding the current input, opened by path through
// /proc/self/fd: the readers take paths, and a memfd costs no disk I/O per execution.
class MemoryFile {
 public:
  explicit MemoryFile(const char* name) : fd_(::memfd_create(name, 0)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  // Replaces the contents; returns the path to open.
  const std::string& hold(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

// Stops the run with a message: an invariant the harness checks does not hold.
[[noreturn]] inline void finding(const char* what) {
  std::fprintf(stderr, "emix fuzz: finding: %s\n", what);
  std::abort();
}

// Runs `body`; an emix::Error is the library refusing the input, which is what it should do
// with most mutants. Anything else escaping is a finding.
template <typename Body>
void expect_only_emix_errors(Body&& body) {
  try {
    body();
  } catch (const emix::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "emix fuzz: finding: an exception that is not an emix::Error: %s\n",
                 e.what());
    std::abort();
  } catch (...) {
    finding("an exception of unknown type");
  }
}

}  // namespace emix::fuzz

// An LD_PRELOAD shim for the CLI's tests of files it maps (tests/reads_unmappable_npy.sh,
// tests/truncated_while_mapped.sh). EMIX_TEST_FILE_MMAP says what a mapping of a file does:
//   fail      (or unset) it fails with ENODEV, as on a file system that cannot map files (but
//             LLVM's OpenMP runtime's registration, which it maps at start-up and aborts
//             without);
//   truncate:PATH  a mapping of PATH (and of no other file) succeeds, then PATH is cut to 4096
//             bytes, as if another program truncated it while emix runs: reading the mapping
//             past the new end raises SIGBUS. Other files map as usual.
// Anonymous mappings (malloc's) go through untouched.
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using Mmap = void* (*)(void*, size_t, int, int, int, off_t);

// The path of the file `fd` is open on ("" where /proc does not say).
void path_of(int fd, char (&path)[4096]) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, path, sizeof path - 1);
  path[n > 0 ? n : 0] = '\0';
}

void* mmap_file(const char* name, void* address, size_t length, int protection, int flags, int fd,
                off_t offset) {
  const auto next = reinterpret_cast<Mmap>(dlsym(RTLD_NEXT, name));
  if (fd < 0 || (flags & MAP_ANONYMOUS) != 0) {
    return next(address, length, protection, flags, fd, offset);
  }
  char path[4096];
  path_of(fd, path);
  const char* mode = std::getenv("EMIX_TEST_FILE_MMAP");
  constexpr char kTruncate[] = "truncate:";
  if (mode == nullptr || std::strncmp(mode, kTruncate, sizeof kTruncate - 1) != 0) {
    constexpr char kRuntime[] = "/dev/shm/__KMP_REGISTERED_LIB_";
    if (std::strncmp(path, kRuntime, sizeof kRuntime - 1) == 0) {
      return next(address, length, protection, flags, fd, offset);
    }
    errno = ENODEV;
    return MAP_FAILED;
  }
  const char* victim = mode + sizeof kTruncate - 1;
  void* map = next(address, length, protection, flags, fd, offset);
  if (map != MAP_FAILED && std::strcmp(path, victim) == 0 && ::truncate(path, 4096) != 0) {
    std::perror("no_file_mmap: truncate");
  }
  return map;
}

}  // namespace

extern "C" void* mmap(void* address, size_t length, int protection, int flags, int fd,
                      off_t offset) {
  return mmap_file("mmap", address, length, protection, flags, fd, offset);
}

extern "C" void* mmap64(void* address, size_t length, int protection, int flags, int fd,
                        off_t offset) {
  return mmap_file("mmap64", address, length, protection, flags, fd, offset);
}

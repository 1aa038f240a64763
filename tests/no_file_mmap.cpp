// An LD_PRELOAD shim for tests/reads_unmappable_npy.sh: mapping a file fails with ENODEV, as on
// a file system that cannot map files; anonymous mappings (malloc's) go through.
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/types.h>

#include <cerrno>

namespace {

using Mmap = void* (*)(void*, size_t, int, int, int, off_t);

void* mmap_unless_file(const char* name, void* address, size_t length, int protection, int flags,
                       int fd, off_t offset) {
  if (fd >= 0 && (flags & MAP_ANONYMOUS) == 0) {
    errno = ENODEV;
    return MAP_FAILED;
  }
  const auto next = reinterpret_cast<Mmap>(dlsym(RTLD_NEXT, name));
  return next(address, length, protection, flags, fd, offset);
}

}  // namespace

extern "C" void* mmap(void* address, size_t length, int protection, int flags, int fd,
                      off_t offset) {
  return mmap_unless_file("mmap", address, length, protection, flags, fd, offset);
}

extern "C" void* mmap64(void* address, size_t length, int protection, int flags, int fd,
                        off_t offset) {
  return mmap_unless_file("mmap64", address, length, protection, flags, fd, offset);
}

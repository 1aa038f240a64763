// emix::io::OutputFile (emix/io.hpp): an output that appears complete or not at all, and a
// signal-safe list of the temporaries that uncommitted outputs hold.
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "io/common.hpp"

namespace emix::io {
namespace {

// ---------------------------------------------------------------------------------------------
// The temporaries that exist now, for remove_temporary_files(), which a signal handler calls.
// A handler may only make async-signal-safe calls and must not take locks, so the paths live in
// fixed slots claimed with atomics. Each slot's state is (generation << 2) | status; a handler
// copies a ready slot's path and unlinks the copy only if the state did not change meanwhile,
// so a slot being reused at that moment is skipped rather than half read.

constexpr std::uint64_t kFree = 0;
constexpr std::uint64_t kFilling = 1;
constexpr std::uint64_t kReady = 2;
constexpr int kSlots = 64;

struct TemporarySlot {
  std::atomic<std::uint64_t> state{kFree};
  char path[PATH_MAX];
};

TemporarySlot g_temporaries[kSlots];

std::atomic<bool> g_in_place_output_begun{false};
static_assert(std::atomic<bool>::is_always_lock_free, "read by a signal handler");

// The slot now holding `path`, or -1 when every slot is taken or the path is too long (the file
// is then still removed by the destructor, but not by a signal handler).
int register_temporary(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    TemporarySlot& slot = g_temporaries[i];
    std::uint64_t state = slot.state.load(std::memory_order_acquire);
    if ((state & 3) != kFree) continue;
    const std::uint64_t generation = (state >> 2) + 1;
    if (!slot.state.compare_exchange_strong(state, (generation << 2) | kFilling,
                                            std::memory_order_acq_rel)) {
      continue;
    }
    std::memcpy(slot.path, path.c_str(), path.size() + 1);
    slot.state.store((generation << 2) | kReady, std::memory_order_release);
    return i;
  }
  return -1;
}

void unregister_temporary(int index) noexcept {
  if (index < 0) return;
  TemporarySlot& slot = g_temporaries[index];
  const std::uint64_t generation = slot.state.load(std::memory_order_acquire) >> 2;
  slot.state.store(generation << 2 | kFree, std::memory_order_release);
}

// ---------------------------------------------------------------------------------------------

std::atomic<unsigned long> g_temp_counter{0};

std::string folder_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

struct OutputFile::State {
  enum class Mode { kReplace, kInPlace };
  std::string path;       // as the caller gave it: every message names this
  std::string label;      // said before the path in messages of the writes ("-o"), or none
  std::string target;     // what is replaced: `path`, or the file a symbolic link leads to
  std::string temporary;  // kReplace only
  Mode mode = Mode::kReplace;
  bool fifo = false;  // kInPlace: opened at the first write (opening blocks until a reader)
  int fd = -1;
  int slot = -1;
  bool finished = false;  // written out and closed: commit() only renames
  bool committed = false;
  bool discarded = false;
};

namespace {

// `why` says it all; error_number() is `error`, as a caller tells the reasons apart.
[[noreturn]] void cannot_write_as(int error, const std::string& path, const std::string& why,
                                  const std::string& label = {}) {
  throw IoError(
      (label.empty() ? "" : label + " ") + detail::quote_path(path) + ": cannot write: " + why,
      error, path);
}

// `why`, then the system's words for `error`.
[[noreturn]] void cannot_write(const std::string& path, const std::string& why, int error = 0,
                               const std::string& label = {}) {
  cannot_write_as(error, path, error == 0 ? why : why + ": " + std::strerror(error), label);
}

// `path`, then each name the symbolic links from it lead to, the last one the name they finally
// lead to, which may not exist yet (a link to a file not yet written). Relative link targets are
// relative to the link's folder.
std::vector<std::string> names_through_links(const std::string& path) {
  std::vector<std::string> names = {path};
  for (int hop = 0; hop < 40; ++hop) {
    const std::string current = names.back();
    struct stat info;
    if (::lstat(current.c_str(), &info) != 0 || !S_ISLNK(info.st_mode)) return names;
    std::string target(PATH_MAX, '\0');
    const ssize_t length = ::readlink(current.c_str(), target.data(), target.size());
    if (length < 0) cannot_write(path, "cannot read the symbolic link", errno);
    target.resize(static_cast<std::size_t>(length));
    if (target.empty()) cannot_write(path, "a symbolic link with an empty target");
    names.push_back(target[0] == '/' ? target : folder_of(current) + "/" + target);
  }
  cannot_write(path, "too many levels of symbolic links", ELOOP);
}

// detail::own_descriptor_named of `path` or of a name its symbolic links lead through (a link
// named out.npy to /dev/stdout), else -1. Such a name is written through a copy of the
// descriptor: opening it anew would start at offset 0 without the shell's O_APPEND, and renaming
// over the file behind it would drop what the shell, or another program sharing the descriptor,
// wrote there.
int own_descriptor_behind(const std::string& path) {
  for (const std::string& name : names_through_links(path)) {
    if (const int descriptor = detail::own_descriptor_named(name); descriptor >= 0) {
      return descriptor;
    }
  }
  return -1;
}

// -1 with errno where it cannot be opened.
int open_in_place(const std::string& target) {
  int fd;
  do {
    fd = ::open(target.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

OutputFile::OutputFile(const std::string& path) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.path = path;
  if (path.empty()) throw IoError("cannot write: the output path is empty");
  // The C library would take the name up to the NUL: another file, perhaps one to keep.
  if (path.find('\0') != std::string::npos) cannot_write(path, "a file name holds no NUL byte");
  const std::string name = name_of(path);
  if (name.empty() || name == "." || name == "..") cannot_write(path, "not a file name");

  // A descriptor of this process (standard output is the program's "-"): written in place
  // through a copy, so that a shell's `>>` appends and `>` keeps its file; never replaced.
  if (const int descriptor = own_descriptor_behind(path); descriptor >= 0) {
    s.mode = State::Mode::kInPlace;
    s.target = path;
    const int flags = ::fcntl(descriptor, F_GETFL);
    if (flags < 0)
      cannot_write(path, "descriptor " + std::to_string(descriptor) + " is not open", errno);
    if ((flags & O_ACCMODE) == O_RDONLY) {
      cannot_write_as(EBADF, path, "the descriptor is open for reading only");
    }
    s.fd = ::fcntl(descriptor, F_DUPFD_CLOEXEC, 0);
    if (s.fd < 0) cannot_write(path, "cannot copy the descriptor", errno);
    return;
  }
  // What the name leads to decides how it is written: only a regular file is ever replaced.
  // The kernel follows the links here: it alone resolves the "links" of /proc/self/fd, which
  // /dev/stdout is (to "pipe:[...]" for a pipe).
  struct stat info;
  bool replaces_a_file = false;
  if (::stat(path.c_str(), &info) == 0) {
    if (S_ISCHR(info.st_mode) || S_ISFIFO(info.st_mode)) {
      s.mode = State::Mode::kInPlace;
      s.target = path;
      s.fifo = S_ISFIFO(info.st_mode);
      if (s.fifo) {
        if (::access(path.c_str(), W_OK) != 0)
          cannot_write(path, "the FIFO is not writable", errno);
      } else {
        s.fd = open_in_place(s.target);
        if (s.fd < 0) cannot_write(path, "cannot open it", errno);
      }
      return;
    }
    if (!S_ISREG(info.st_mode)) {
      cannot_write_as(S_ISDIR(info.st_mode) ? EISDIR : 0, path,
                      std::string("it is ") + kind_of(info.st_mode) +
                          "; emix writes regular files, FIFOs and character devices");
    }
    // As the shell's `>` would: a file its permissions protect from this user is not replaced.
    if (::access(path.c_str(), W_OK) != 0) {
      cannot_write(path, "the file exists and this user may not replace it", errno);
    }
    replaces_a_file = true;
  } else if (errno == ELOOP) {
    cannot_write_as(ELOOP, path, "too many levels of symbolic links");
  } else if (errno != ENOENT) {
    cannot_write(path, "cannot look it up", errno);
  }
  // A regular file, or nothing yet (perhaps at the end of a dangling link): the name the links
  // lead to is the one replaced, so that they stay links.
  s.target = names_through_links(path).back();

  // A regular file or a new one: a temporary beside it, renamed over it by commit(). Its name
  // keeps at most 200 bytes of the target's, so that it stays within NAME_MAX.
  const std::string folder = folder_of(s.target);
  struct stat folder_info;
  if (::stat(folder.c_str(), &folder_info) != 0) {
    const int error = errno;
    if (error == ENOENT) {
      cannot_write_as(ENOENT, path, "the folder " + detail::quote_path(folder) + " does not exist");
    }
    cannot_write(path, "cannot look up the folder " + detail::quote_path(folder), error);
  }
  if (!S_ISDIR(folder_info.st_mode)) {
    cannot_write_as(ENOTDIR, path, detail::quote_path(folder) + " is not a folder");
  }
  const std::string stem = name_of(s.target).substr(0, 200);
  s.temporary = folder + "/." + stem + ".emix-tmp." + std::to_string(::getpid()) + "." +
                std::to_string(g_temp_counter.fetch_add(1));
  // Registered before it exists, so that no moment has a file a signal handler would miss.
  s.slot = register_temporary(s.temporary);
  // O_EXCL: never open a file that already exists (a stale temporary of a recycled pid).
  do {
    s.fd = ::open(s.temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  } while (s.fd < 0 && errno == EINTR);
  if (s.fd < 0) {
    const int error = errno;
    unregister_temporary(s.slot);
    s.slot = -1;
    cannot_write(path, "cannot create a file in the folder " + detail::quote_path(folder), error);
  }
  if (replaces_a_file) {
    // The replacement keeps the file's permissions (a private 0600 model stays private) and,
    // where this user may set them, its owner and group; failing that, it is this user's.
    if (::fchown(s.fd, info.st_uid, info.st_gid) != 0 && errno == EPERM) {
      (void)::fchown(s.fd, static_cast<uid_t>(-1), info.st_gid);
    }
    (void)::fchmod(s.fd, info.st_mode & 0777);
  }
}

OutputFile::~OutputFile() {
  if (state_ && !state_->committed) discard();
}

OutputFile::OutputFile(OutputFile&&) noexcept = default;

const std::string& OutputFile::path() const { return state_->path; }

void OutputFile::set_label(const std::string& label) { state_->label = label; }

bool OutputFile::replaced_by_rename() const { return state_->mode == State::Mode::kReplace; }

void OutputFile::discard() noexcept {
  State& s = *state_;
  if (s.fd >= 0) {
    ::close(s.fd);
    s.fd = -1;
  }
  if (!s.temporary.empty() && !s.committed) ::unlink(s.temporary.c_str());
  unregister_temporary(s.slot);
  s.slot = -1;
  s.discarded = true;
}

void OutputFile::fail(const std::string& why, int error) {
  const std::string path = state_->path;
  const std::string label = state_->label;
  discard();
  cannot_write(path, why, error, label);
}

void OutputFile::write(const void* data, std::size_t size) {
  State& s = *state_;
  if (s.committed || s.discarded) {
    cannot_write(s.path,
                 std::string("the file was already ") + (s.committed ? "committed" : "discarded"),
                 0, s.label);
  }
  if (s.finished) cannot_write(s.path, "the file was already finished", 0, s.label);
  if (s.fd < 0 && s.fifo && (s.fd = open_in_place(s.target)) < 0) fail("cannot open it", errno);
  const auto* bytes = static_cast<const unsigned char*>(data);
  while (size > 0) {
    // At most 1 GiB a call: Linux writes no more than about 2 GiB at once anyway.
    const std::size_t piece = std::min<std::size_t>(size, std::size_t{1} << 30);
    const ssize_t done = ::write(s.fd, bytes, piece);
    if (done < 0) {
      if (errno == EINTR) continue;
      fail("write failed", errno);
    }
    if (done > 0 && s.mode == State::Mode::kInPlace) g_in_place_output_begun = true;
    bytes += done;
    size -= static_cast<std::size_t>(done);
  }
}

void OutputFile::finish() {
  State& s = *state_;
  if (s.committed || s.discarded) {
    cannot_write(s.path,
                 std::string("the file was already ") + (s.committed ? "committed" : "discarded"),
                 0, s.label);
  }
  if (s.finished) return;
  if (s.fd < 0 && s.fifo && (s.fd = open_in_place(s.target)) < 0)
    fail("cannot open it", errno);  // an empty output
  // The bytes on the disk before the rename: after a crash of the machine the target then holds
  // the old file or the new one, never a new name over missing data. (A FIFO or a device, written
  // in place, has nothing to sync.)
  if (s.mode == State::Mode::kReplace) {
    int synced;
    do {
      synced = ::fsync(s.fd);
    } while (synced != 0 && errno == EINTR);
    if (synced != 0) fail("writing it to the disk failed", errno);
  }
  const int fd = s.fd;
  s.fd = -1;
  // close() reports the errors of delayed writes (NFS, some full disks).
  if (::close(fd) != 0 && errno != EINTR) {
    const int error = errno;
    fail("closing the file failed", error);
  }
  s.finished = true;
}

void OutputFile::commit() {
  finish();
  State& s = *state_;
  if (s.mode == State::Mode::kReplace && ::rename(s.temporary.c_str(), s.target.c_str()) != 0) {
    const int error = errno;
    fail("cannot move the finished file into place", error);
  }
  s.committed = true;
  unregister_temporary(s.slot);
  s.slot = -1;
}

bool in_place_output_begun() noexcept { return g_in_place_output_begun; }

void remove_temporary_files() noexcept {
  for (TemporarySlot& slot : g_temporaries) {
    const std::uint64_t before = slot.state.load(std::memory_order_acquire);
    if ((before & 3) != kReady) continue;
    char copy[PATH_MAX];
    std::size_t i = 0;
    for (; i + 1 < sizeof copy && slot.path[i] != '\0'; ++i) copy[i] = slot.path[i];
    copy[i] = '\0';
    if (slot.state.load(std::memory_order_acquire) == before) ::unlink(copy);
  }
}

}  // namespace emix::io

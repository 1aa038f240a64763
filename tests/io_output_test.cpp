// emix::io::OutputFile: what each kind of path gets (a regular file replaced by rename, a link
// kept and its target replaced, a device or FIFO written in place, anything else refused), and
// remove_temporary_files(), which a signal handler calls.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "io_test_util.hpp"

namespace {

namespace fs = std::filesystem;
namespace io = emix::io;
using emix::IoError;
using emix::testing::expect_error;

class OutputFileTest : public emix::testing::TempDirTest {
 protected:
  std::string read(const std::string& name) const {
    std::ifstream in(path(name), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  std::vector<std::string> temporaries() const {
    std::vector<std::string> names;
    for (const std::string& name : entries()) {
      if (name.find(".emix-tmp.") != std::string::npos) names.push_back(name);
    }
    return names;
  }
};

TEST_F(OutputFileTest, RegularFileIsReplacedWholeOnlyAtCommit) {
  file("a.txt", "old contents");
  {
    io::OutputFile out(path("a.txt"));
    EXPECT_TRUE(out.replaced_by_rename());
    EXPECT_EQ(out.path(), path("a.txt"));
    // The temporary exists from the constructor on, hidden, beside the target.
    const std::vector<std::string> temps = temporaries();
    ASSERT_EQ(temps.size(), 1u);
    EXPECT_EQ(temps[0].rfind(".a.txt.emix-tmp." + std::to_string(::getpid()) + ".", 0), 0u)
        << temps[0];
    out.write("new");
    EXPECT_EQ(read("a.txt"), "old contents");
    out.commit();
    expect_error<IoError>([&] { out.write("more"); }, "already committed");
  }
  EXPECT_EQ(read("a.txt"), "new");
  {
    io::OutputFile out(path("a.txt"));
    out.write("abandoned");
  }
  EXPECT_EQ(read("a.txt"), "new");
  EXPECT_EQ(entries(), std::vector<std::string>{"a.txt"});
}

// finish() writes the file out and closes it, replacing nothing: a command finishes all its
// outputs, then renames them together. An unfinished output abandoned after it leaves nothing.
TEST_F(OutputFileTest, FinishWritesOutWithoutReplacing) {
  file("a.txt", "old contents");
  {
    io::OutputFile out(path("a.txt"));
    out.write("new");
    out.finish();
    out.finish();  // again: nothing more to do
    EXPECT_EQ(read("a.txt"), "old contents");
    ASSERT_EQ(temporaries().size(), 1u);
    EXPECT_EQ(read(temporaries()[0]), "new");
    expect_error<IoError>([&] { out.write("more"); }, "already finished");
    out.commit();
  }
  EXPECT_EQ(read("a.txt"), "new");
  {
    io::OutputFile out(path("a.txt"));
    out.write("abandoned");
    out.finish();
  }
  EXPECT_EQ(read("a.txt"), "new");
  EXPECT_EQ(entries(), std::vector<std::string>{"a.txt"});
}

// A replaced file keeps its permissions and owner, as the shell's `>` keeps them: a private
// model stays private. One this user may not write (read-only, for anyone but root) is refused.
TEST_F(OutputFileTest, AReplacedFileKeepsItsPermissionsAndOwner) {
  const auto mode_of = [&](const std::string& name) {
    struct stat info;
    EXPECT_EQ(::stat(path(name).c_str(), &info), 0);
    return info.st_mode & 07777;
  };
  for (const mode_t mode : {0600, 0640, 0604}) {
    file("m.json", "old");
    ASSERT_EQ(::chmod(path("m.json").c_str(), mode), 0);
    io::OutputFile out(path("m.json"));
    out.write("new");
    out.commit();
    EXPECT_EQ(read("m.json"), "new");
    EXPECT_EQ(mode_of("m.json"), mode);
  }
  file("r.json", "kept");
  ASSERT_EQ(::chmod(path("r.json").c_str(), 0444), 0);
  if (::geteuid() != 0) {
    expect_error<IoError>([&] { io::OutputFile out(path("r.json")); },
                          "the file exists and this user may not replace it: Permission denied");
    EXPECT_EQ(read("r.json"), "kept");
    return;
  }
  // Root writes any file, as with `>`; the owner is kept.
  ASSERT_EQ(::chown(path("r.json").c_str(), 65534, 65534), 0);
  io::OutputFile out(path("r.json"));
  out.write("new");
  out.commit();
  struct stat info;
  ASSERT_EQ(::stat(path("r.json").c_str(), &info), 0);
  EXPECT_EQ(info.st_uid, 65534u);
  EXPECT_EQ(info.st_gid, 65534u);
  EXPECT_EQ(info.st_mode & 07777, 0444u);
  EXPECT_EQ(entries().size(), 2u);  // no temporary left
}

TEST_F(OutputFileTest, SymbolicLinksStayLinksAndTheirTargetIsReplaced) {
  fs::create_directories(dir_ / "deep" / "er");
  file("deep/er/model.json", "old");
  // A chain: one.json -> deep/two.json -> er/model.json (relative to deep/).
  fs::create_symlink("er/model.json", dir_ / "deep" / "two.json");
  fs::create_symlink("deep/two.json", dir_ / "one.json");
  {
    io::OutputFile out(path("one.json"));
    EXPECT_TRUE(out.replaced_by_rename());
    out.write("new");
    out.commit();
  }
  EXPECT_TRUE(fs::is_symlink(dir_ / "one.json"));
  EXPECT_TRUE(fs::is_symlink(dir_ / "deep" / "two.json"));
  EXPECT_EQ(read("deep/er/model.json"), "new");
  EXPECT_EQ(fs::read_symlink(dir_ / "one.json"), "deep/two.json");

  // A link to a file not written yet: the file appears where the link points.
  fs::create_symlink("later.json", dir_ / "dangling.json");
  {
    io::OutputFile out(path("dangling.json"));
    out.write("made");
    out.commit();
  }
  EXPECT_TRUE(fs::is_symlink(dir_ / "dangling.json"));
  EXPECT_EQ(read("later.json"), "made");

  fs::create_symlink("loop-b", dir_ / "loop-a");
  fs::create_symlink("loop-a", dir_ / "loop-b");
  expect_error<IoError>([&] { io::OutputFile out(path("loop-a")); },
                        path("loop-a") + ": cannot write: too many levels of symbolic links");
}

// /dev/null is reached through a link: if this ever regressed to replacing what the path names,
// it would replace the link, never the system's device (this runs as root in CI).
TEST_F(OutputFileTest, CharacterDeviceIsWrittenInPlace) {
  fs::create_symlink("/dev/null", dir_ / "null");
  {
    io::OutputFile out(path("null"));
    EXPECT_FALSE(out.replaced_by_rename());
    EXPECT_TRUE(temporaries().empty());
    out.write(std::string(1 << 20, 'x'));
    out.commit();
  }
  EXPECT_TRUE(fs::is_symlink(dir_ / "null"));
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_EQ(entries(), std::vector<std::string>{"null"});
}

TEST_F(OutputFileTest, FifoReceivesTheBytesOpenedAtTheFirstWrite) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0644), 0);
  // Constructing does not wait for a reader (that would block before any work is done).
  io::OutputFile out(path("fifo"));
  EXPECT_FALSE(out.replaced_by_rename());
  std::string received;
  std::thread reader([&] {
    std::ifstream in(path("fifo"), std::ios::binary);
    received.assign(std::istreambuf_iterator<char>(in), {});
  });
  const std::string payload(300000, 'y');  // larger than a pipe's buffer
  out.write(payload);
  out.commit();
  reader.join();
  EXPECT_EQ(received, payload);
  struct stat info;
  ASSERT_EQ(::lstat(path("fifo").c_str(), &info), 0);
  EXPECT_TRUE(S_ISFIFO(info.st_mode));
}

// /dev/stdout when stdout is a pipe: a link, through /proc/self/fd, to "pipe:[...]", which only
// the kernel can follow.
TEST_F(OutputFileTest, PipeReachedThroughProcSelfFdIsWrittenInPlace) {
  int ends[2];
  ASSERT_EQ(::pipe(ends), 0);
  const std::string through_proc = "/proc/self/fd/" + std::to_string(ends[1]);
  {
    io::OutputFile out(through_proc);
    EXPECT_FALSE(out.replaced_by_rename());
    out.write("through the pipe");
    out.commit();
  }
  ::close(ends[1]);
  char buffer[64] = {};
  const ssize_t got = ::read(ends[0], buffer, sizeof buffer);
  ::close(ends[0]);
  EXPECT_EQ(std::string(buffer, got > 0 ? static_cast<std::size_t>(got) : 0), "through the pipe");
}

// A name of one of the program's descriptors (what a shell's `>>` or `{ ...; } > f` opened) was
// followed to the file behind it and renamed over: `>>` lost the file's contents, and what the
// shell wrote there besides went to the replaced file.
TEST_F(OutputFileTest, OwnDescriptorsAreWrittenInPlaceThroughACopy) {
  file("log", "before\n");
  const int appending = ::open(path("log").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(appending, 0);
  const std::string number = std::to_string(appending);
  for (const std::string& name : {"/dev/fd/" + number, "/proc/self/fd/" + number,
                                  "/proc/" + std::to_string(::getpid()) + "/fd/" + number}) {
    io::OutputFile out(name);
    EXPECT_FALSE(out.replaced_by_rename()) << name;
    out.write(name + "\n");
    out.commit();
    // The caller's descriptor goes on where the output ended, as the shell's does.
    ASSERT_EQ(::write(appending, "after\n", 6), 6);
  }
  ::close(appending);
  EXPECT_EQ(read("log"), "before\n/dev/fd/" + number + "\nafter\n/proc/self/fd/" + number +
                             "\nafter\n/proc/" + std::to_string(::getpid()) + "/fd/" + number +
                             "\nafter\n");
  EXPECT_TRUE(temporaries().empty());

  const int reading = ::open(path("log").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(reading, 0);
  expect_error<IoError>([&] { io::OutputFile out("/dev/fd/" + std::to_string(reading)); },
                        "/dev/fd/" + std::to_string(reading) +
                            ": cannot write: the descriptor is open for reading only");
  ::close(reading);
  expect_error<IoError>([&] { io::OutputFile out("/dev/fd/" + std::to_string(reading)); },
                        "/dev/fd/" + std::to_string(reading) + ": cannot write: descriptor " +
                            std::to_string(reading) + " is not open");
  EXPECT_EQ(read("log").substr(0, 7), "before\n");
  // A link to such a name is written through the descriptor too.
  const int again = ::open(path("log").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(again, 0);
  fs::create_symlink("/dev/fd/" + std::to_string(again), dir_ / "link");
  {
    io::OutputFile out(path("link"));
    EXPECT_FALSE(out.replaced_by_rename());
    out.write("linked\n");
    out.commit();
  }
  ::close(again);
  EXPECT_EQ(read("log").substr(0, 7), "before\n");
  EXPECT_EQ(read("log").substr(read("log").size() - 7), "linked\n");
  EXPECT_TRUE(fs::is_symlink(dir_ / "link"));
}

TEST_F(OutputFileTest, FoldersSocketsAndMissingFoldersAreRefused) {
  fs::create_directory(dir_ / "folder");
  expect_error<IoError>([&] { io::OutputFile out(path("folder")); },
                        path("folder") + ": cannot write: it is a folder");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string name = path("socket");
  ASSERT_LT(name.size(), sizeof address.sun_path);
  std::copy(name.begin(), name.end(), address.sun_path);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  expect_error<IoError>([&] { io::OutputFile out(path("socket")); },
                        path("socket") + ": cannot write: it is a socket");
  ::close(fd);
  expect_error<IoError>(
      [&] { io::OutputFile out(path("no/such/x")); },
      path("no/such/x") + ": cannot write: the folder " + path("no/such") + " does not exist");
  // The errno a caller (the Python package's FileNotFoundError) tells the reasons apart by.
  const auto error_number = [](const std::string& output) {
    try {
      io::OutputFile out(output);
    } catch (const IoError& e) {
      return e.error_number();
    }
    return -1;
  };
  EXPECT_EQ(error_number(path("no/such/x")), ENOENT);
  file("plain", "");
  EXPECT_EQ(error_number(path("plain/x")), ENOTDIR);
  fs::create_directory(dir_ / "folder");
  EXPECT_EQ(error_number(path("folder")), EISDIR);
  expect_error<IoError>([&] { io::OutputFile out(""); }, "the output path is empty");
  expect_error<IoError>([&] { io::OutputFile out(path(".")); }, "not a file name");
  // The C library would write the name up to the NUL, "a": another file.
  file("a", "kept");
  expect_error<IoError>([&] { io::OutputFile out(path("a") + std::string(1, '\0') + "b"); },
                        "a file name holds no NUL byte");
  EXPECT_EQ(read("a"), "kept");
}

TEST_F(OutputFileTest, LongNamesKeepTheirTemporaryWithinNameMax) {
  const std::string name(250, 'n');
  io::OutputFile out(path(name));
  out.write("ok");
  out.commit();
  EXPECT_EQ(entries(), std::vector<std::string>{name});
}

// What a signal handler does before _exit: every temporary of every live output goes, also past
// the 64 slots the handler can see (those the destructors would remove).
TEST_F(OutputFileTest, RemoveTemporaryFilesRemovesEveryLiveTemporary) {
  std::vector<std::unique_ptr<io::OutputFile>> outputs;
  for (int i = 0; i < 10; ++i) {
    outputs.push_back(std::make_unique<io::OutputFile>(path("out" + std::to_string(i))));
    outputs.back()->write("partial");
  }
  io::OutputFile committed(path("kept"));
  committed.write("whole");
  committed.commit();
  EXPECT_EQ(temporaries().size(), 10u);
  io::remove_temporary_files();
  EXPECT_TRUE(temporaries().empty());
  EXPECT_EQ(entries(), std::vector<std::string>{"kept"});
  outputs.clear();  // the destructors find nothing left to remove
  EXPECT_EQ(entries(), std::vector<std::string>{"kept"});

  for (int i = 0; i < 100; ++i) {
    outputs.push_back(std::make_unique<io::OutputFile>(path("many" + std::to_string(i))));
  }
  io::remove_temporary_files();
  EXPECT_EQ(temporaries().size(), 100u - 64u);  // the ones beyond the handler's slots
  outputs.clear();
  EXPECT_EQ(entries(), std::vector<std::string>{"kept"});
}

}  // namespace

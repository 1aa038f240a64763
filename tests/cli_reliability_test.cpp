// The `emix` program on the inputs a reliability probe of ce25ca6 found crashing, hanging,
// destroying files or answering wrongly (issue 11), and on neighbours of those cases. Each test
// states what the old program did; every one of them fails on it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "cli_test_util.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"
#include "sanitizers.hpp"

namespace {

namespace fs = std::filesystem;
using emix::testing::CliRun;
using emix::testing::CliTest;
using emix::testing::ProcessLimits;
using emix::testing::read_text;

// Error lines are short: a message quotes excerpts, never whole inputs.
constexpr std::size_t kLongestErrorLine = 1100;

// ---------------------------------------------------------------------------------------------
// Outputs that are not regular files

// Old: `mknod ./null c 1 3; emix fit ... -o ./null` renamed a regular file over the device.
TEST_F(CliTest, CharacterDeviceOutputStaysADeviceAndDiscardsTheOutput) {
  generate(50);
  if (::mknod(path("null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    GTEST_SKIP() << "mknod needs CAP_MKNOD; the symbolic-link test covers /dev/null";
  }
  const CliRun r = emix("fit data.npy -k 2 -o null --labels null --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  struct stat info;
  ASSERT_EQ(::stat(path("null").c_str(), &info), 0);
  EXPECT_TRUE(S_ISCHR(info.st_mode));
  EXPECT_EQ(listing(), (std::set<std::string>{"data.npy", "null"}));
}

// Old: the link was replaced by a regular file; and run as root with -o /dev/null itself, the
// system's /dev/null would have been. A test must not risk that where a regression would do it,
// so as root /dev/null is reached through a second link.
TEST_F(CliTest, SymbolicLinkToDevNullStaysALinkAndDevNullADevice) {
  generate(50);
  fs::create_symlink("/dev/null", path("out.json"));
  fs::create_symlink("/dev/null", path("null-link"));
  const std::string dev_null = ::geteuid() == 0 ? "null-link" : "/dev/null";
  const CliRun r =
      emix("fit data.npy -k 2 -o out.json --responsibilities " + dev_null + " --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(path("null-link")));
  EXPECT_TRUE(fs::is_symlink(path("out.json")));
  EXPECT_EQ(fs::read_symlink(path("out.json")), "/dev/null");
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

// Old: the link was replaced by a regular file and its target left as it was.
TEST_F(CliTest, SymbolicLinkStaysALinkAndItsTargetIsReplaced) {
  generate(50);
  fs::create_directory(path("real"));
  write("real/model.json", "old");
  fs::create_symlink("real/model.json", path("link.json"));
  const CliRun r = emix("fit data.npy -k 2 -o link.json --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(path("link.json")));
  EXPECT_NE(read_text(path("real/model.json")).find("\"emix-model\""), std::string::npos);
  // The temporary was made beside the target, and is gone.
  std::vector<std::string> in_real;
  for (const auto& entry : fs::directory_iterator(path("real"))) {
    in_real.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(in_real, std::vector<std::string>{"model.json"});
}

// Old: the FIFO was replaced by a regular file; a reader got nothing.
TEST_F(CliTest, FifoOutputReceivesTheBytes) {
  generate(300);
  ASSERT_EQ(emix("fit data.npy -k 2 -o model.json --quiet").code, 0);
  ASSERT_EQ(emix("predict model.json data.npy -o reference.npy --proba --quiet").code, 0);
  ASSERT_EQ(::mkfifo(path("fifo.npy").c_str(), 0644), 0);

  // The reader holds the FIFO open without blocking and reads until emix has ended and the
  // FIFO is drained; with no writer yet, read() returns 0 and it keeps waiting.
  const int fd = ::open(path("fifo.npy").c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(fd, 0);
  std::atomic<bool> done{false};
  std::string received;
  std::thread reader([&] {
    char buffer[1 << 16];
    while (true) {
      const ssize_t got = ::read(fd, buffer, sizeof buffer);
      if (got > 0) {
        received.append(buffer, static_cast<std::size_t>(got));
      } else if (done.load()) {
        if (got == 0) break;
      } else {
        ::poll(nullptr, 0, 2);
      }
    }
  });
  const CliRun r = emix("predict model.json data.npy -o fifo.npy --proba --quiet");
  done = true;
  reader.join();
  ::close(fd);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(received, read_text(path("reference.npy")));
  struct stat info;
  ASSERT_EQ(::lstat(path("fifo.npy").c_str(), &info), 0);
  EXPECT_TRUE(S_ISFIFO(info.st_mode));
}

// A pipe or FIFO is read as text (sniffing it would consume it); a .npy through one was
// parsed as a text header ("the header (line 1) has 5 columns but row 1 has 2").
TEST_F(CliTest, ANpyThroughAFifoIsNamedAsOne) {
  generate(50);  // 50 x 3 doubles: within a pipe's buffer, so the writer never waits
  const std::string bytes = read_text(path("data.npy"));
  ASSERT_EQ(::mkfifo(path("input").c_str(), 0644), 0);
  std::thread writer([&] {
    const int fd = ::open(path("input").c_str(), O_WRONLY);
    if (fd < 0) return;
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  });
  expect_failure("fit input -k 2 -o m.json",
                 {"input: a .npy file, read as text", "write it to a regular file named *.npy"});
  writer.join();
}

// A value found bad after a FIFO was read: the message's line number was looked up by opening
// the FIFO again, which waited for a second writer for ever (an audit's fit, select, predict,
// score and --sample-weight all hung). The error now comes at once, without the line.
TEST_F(CliTest, BadDataThroughAFifoIsNamedWithoutWaitingForIt) {
  ASSERT_EQ(::mkfifo(path("input").c_str(), 0644), 0);
  std::thread writer([&] {
    // Not blocking: a program that never opens the FIFO must fail the test, not hang it.
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 6000; ++tries) {
      fd = ::open(path("input").c_str(), O_WRONLY | O_NONBLOCK);  // ENXIO until a reader opens
      if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (fd < 0) return;
    const std::string rows = "1,2\n3,nan\n5,6\n";
    ASSERT_EQ(::write(fd, rows.data(), rows.size()), static_cast<ssize_t>(rows.size()));
    ::close(fd);
  });
  const CliRun r = finish(start({"fit", "input", "-k", "1", "-o", "m.json"}), 60);
  writer.join();
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("input: row 2, column 2 is nan"), std::string::npos) << r.err;
  EXPECT_TRUE(temporaries().empty());
}

// One FIFO as the data and the weights: the second open waited for a writer for ever.
TEST_F(CliTest, AFifoGivenTwiceIsRefused) {
  ASSERT_EQ(::mkfifo(path("ff").c_str(), 0644), 0);
  const CliRun r =
      finish(start({"fit", "ff", "-k", "2", "-o", "m.json", "--sample-weight", "ff"}), 30);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--sample-weight ff: is also INPUT ff, which is not a regular file and "
                       "can be read once"),
            std::string::npos)
      << r.err;
  // A device or a regular file may be read twice: no such refusal.
  const CliRun twice = emix("fit /dev/null -k 1 -o m.json --sample-weight /dev/null");
  EXPECT_EQ(twice.err.find("is also"), std::string::npos) << twice.err;
}

// Raw binary under a name without .bin / .raw: a bad value's line number was looked up by
// reading the file as text, which reported "binary data ... raw binary needs --dtype and --dims"
// (both given) in place of the value, or a line the file does not have.
TEST_F(CliTest, RawBinaryErrorsNameTheValueAndNoLine) {
  std::vector<double> values = {1, 2, 3, 4, 5, 0, 7, 8};
  values[5] = std::nan("");  // row 3, column 2
  std::ofstream(path("r.dat"), std::ios::binary)
      .write(reinterpret_cast<const char*>(values.data()),
             static_cast<std::streamsize>(values.size() * sizeof(double)));
  expect_failure("fit r.dat --dtype float64 --dims 2 -k 1 -o m.json",
                 {"r.dat: row 3, column 2 is nan"});
  EXPECT_EQ(emix("fit r.dat --dtype float64 --dims 2 -k 1 -o m.json").err.find("line"),
            std::string::npos);
}

// Standard input that is a socket (a service's, a test harness's socketpair) has no name to
// open again: "/dev/stdin: cannot open: No such device or address".
TEST_F(CliTest, StandardInputMayBeASocket) {
  int sockets[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets), 0);
  ProcessLimits limits;
  limits.standard_input = sockets[1];
  const pid_t pid = start({"fit", "-", "-k", "1", "-o", "m.json"}, limits);
  ::close(sockets[1]);
  const std::string rows = "1,2\n3,4\n5,7\n";
  ASSERT_EQ(::write(sockets[0], rows.data(), rows.size()), static_cast<ssize_t>(rows.size()));
  ::close(sockets[0]);
  const CliRun r = finish(pid, 60);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(path("m.json")));
}

// Old: a regular file as standard input, part of it already read by an earlier command of the
// shell (`{ head -n 1000 > /dev/null; emix fit -; } < data.csv`), was opened again by name and
// read from its start: the rows the other command took were fitted too, silently.
TEST_F(CliTest, StandardInputReadPartWayIsRefusedNotReadFromItsStart) {
  std::string rows;
  for (int i = 0; i < 100; ++i) rows += std::to_string(i % 7) + "," + std::to_string(i % 5) + "\n";
  write("rows.csv", rows);
  const int fd = ::open(path("rows.csv").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::lseek(fd, 40, SEEK_SET), 40);
  ProcessLimits limits;
  limits.standard_input = fd;
  const CliRun r = finish(start({"fit", "-", "-k", "1", "-q", "-o", "m.json"}, limits), 60);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("already read up to byte 40"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("m.json")));
  // From its start, it is read as a file named on the command line is.
  ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
  const CliRun whole = finish(start({"fit", "-", "-k", "1", "-q", "-o", "m.json"}, limits), 60);
  ::close(fd);
  EXPECT_EQ(whole.code, 0) << whole.err;
}

// Sample weights that overflow their sum are named by their file, as a bad weight is.
TEST_F(CliTest, WeightsWhoseSumOverflowsNameTheirFile) {
  generate(20);
  std::ofstream weights(path("w.txt"));
  for (int i = 0; i < 20; ++i) weights << "1e308\n";
  weights.close();
  expect_failure("fit data.npy -k 2 -o m.json --sample-weight w.txt",
                 {"w.txt: the sample weights sum to inf"});
}

// A FIFO named *.npy is read as a .npy, whose header is checked against a size a FIFO does not
// have: "truncated: the .npy header says it is 118 bytes long but the file has 0 bytes". And the
// message above was garbled ("a pipe, a FIFO or a name without .npy is;").
TEST_F(CliTest, ANpyFifoIsRefusedAsNotARegularFile) {
  generate(50);
  const std::string bytes = read_text(path("data.npy"));
  ASSERT_EQ(::mkfifo(path("input.npy").c_str(), 0644), 0);
  std::thread writer([&] {
    const int fd = ::open(path("input.npy").c_str(), O_WRONLY);
    if (fd < 0) return;
    // emix stops reading at once: the write may fail (EPIPE, SIGPIPE being ignored here).
    const ::sighandler_t previous = ::signal(SIGPIPE, SIG_IGN);
    const ssize_t ignored = ::write(fd, bytes.data(), bytes.size());
    (void)ignored;
    ::signal(SIGPIPE, previous);
    ::close(fd);
  });
  expect_failure("fit input.npy -k 2 -o m.json",
                 {"input.npy: emix reads a .npy only from a regular file, not from a pipe, a FIFO "
                  "or a device; write it to a regular file named *.npy"});
  writer.join();
  fs::remove(path("input.npy"));
  const std::string command = "cd '" + dir_ + "' && cat data.npy | '" + EMIX_CLI_PATH +
                              "' fit - -k 2 -o m.json 2> '" + capture_ + "/err.txt'";
  EXPECT_NE(std::system(command.c_str()), 0);
  EXPECT_NE(read_text(capture_ + "/err.txt")
                .find("/dev/stdin: a .npy file, read as text: emix reads a .npy only from a "
                      "regular file, not through a pipe or a FIFO; write it to a regular file "
                      "named *.npy"),
            std::string::npos)
      << read_text(capture_ + "/err.txt");
}

TEST_F(CliTest, FolderAndSocketOutputsAreRefused) {
  generate(50);
  fs::create_directory(path("folder"));
  expect_failure("fit data.npy -k 2 -o folder", {"-o folder: cannot write: it is a folder"});
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string name = path("socket").string();
  ASSERT_LT(name.size(), sizeof address.sun_path);
  std::copy(name.begin(), name.end(), address.sun_path);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  expect_failure("fit data.npy -k 2 -o socket", {"-o socket: cannot write: it is a socket"});
  ::close(fd);
}

// Old: a predict streamed to standard output that met a NaN part way ended with the NaN's error
// alone, the rows before it already written and nothing said of them.
TEST_F(CliTest, AnErrorAfterAnInPlaceOutputBeganSaysItIsIncomplete) {
  generate(2000);
  ASSERT_EQ(emix("fit data.npy -k 2 -q -o model.json").code, 0);
  std::ifstream in(path("data.npy"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t header =
      10 + (static_cast<unsigned char>(bytes[8]) |
            static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  const double nan = std::nan("");
  std::memcpy(&bytes[header + 1500 * 3 * sizeof(double)], &nan, sizeof nan);  // row 1501
  write("late_nan.npy", bytes);
  const CliRun r = emix("predict model.json late_nan.npy --memory-map --map-chunk-rows 100 -o -");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("row 1501"), std::string::npos) << r.err;
  EXPECT_FALSE(r.out.empty());  // the labels of the chunks before it
  EXPECT_NE(r.err.find("an output written in place (standard output, a FIFO or a device) was left "
                       "incomplete"),
            std::string::npos)
      << r.err;
  // A file is replaced whole or not at all: nothing to say.
  const CliRun to_file =
      emix("predict model.json late_nan.npy --memory-map --map-chunk-rows 100 -o labels.npy");
  EXPECT_EQ(to_file.code, 2);
  EXPECT_EQ(to_file.err.find("incomplete"), std::string::npos) << to_file.err;
}

// Old: --help and --version printed into a full disk ended in success.
TEST_F(CliTest, HelpAndVersionWhoseOutputIsLostFail) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  for (const char* flag : {"--version", "--help", "fit --help"}) {
    const std::string command = std::string("'") + EMIX_CLI_PATH + "' " + flag +
                                " > /dev/full 2> '" + path("err.txt").string() + "'";
    const int status = std::system(command.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2) << flag;
    EXPECT_NE(read_text(path("err.txt")).find("standard output"), std::string::npos) << flag;
    fs::remove(path("err.txt"));
  }
}

// Old: CLI11 saturated a 64-bit option at 2^63 - 1 (--chunk-rows 99999999999999999999 ran).
TEST_F(CliTest, AWholeNumberPastSixtyFourBitsIsRefused) {
  generate(200);
  expect_failure("fit data.npy -k 2 -o model.json --chunk-rows 99999999999999999999",
                 {"--chunk-rows", "99999999999999999999", "out of the option's range"});
}

// ---------------------------------------------------------------------------------------------
// Outputs proved writable before the fit, and named as given

// Old: the fit ran to its end (progress lines), then the write failed.
TEST_F(CliTest, UnwritableOutputFolderFailsBeforeTheFit) {
  generate(200);
  // /proc takes no new files, even from root (a chmod'ed folder would not stop root).
  expect_failure("fit data.npy -k 2 -o /proc/emix-model.json",
                 {"-o /proc/emix-model.json: cannot write: cannot create a file in the folder "
                  "/proc"});
}

// Old: the message named the hidden temporary (".emix-tmp-PID-0-resp.npy: cannot write"); and
// under ulimit -f, SIGXFSZ killed the program silently, its temporary left behind.
TEST_F(CliTest, FullDiskDuringTheWriteNamesTheOutputAndLeavesNoFile) {
  generate(2000);
  const std::set<std::string> before = listing();
  // Responsibilities of 2000 rows x 2 are 32,128 bytes; a 10,000-byte limit fails part way.
  const pid_t pid = start({"fit", "data.npy", "-k", "2", "-o", "model.json", "--responsibilities",
                           "resp.npy", "--quiet"},
                          ProcessLimits{10000, RLIM_INFINITY});
  const CliRun r = finish(pid);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(
      r.err.rfind("emix: error: --responsibilities resp.npy: cannot write: write failed: File too "
                  "large",
                  0),
      0u)
      << r.err;
  EXPECT_EQ(r.err.find("emix-tmp"), std::string::npos) << r.err;
  EXPECT_EQ(listing(), before);
  // A device written in place names its option too, as every other output error does.
  if (fs::exists("/dev/full")) {
    expect_failure("fit data.npy -k 2 -q -o /dev/full",
                   {"emix: error: -o /dev/full: cannot write: write failed: No space left on "
                    "device"});
  }
}

// ---------------------------------------------------------------------------------------------
// Signals: stop at once, remove every temporary, exit 128 + the signal's number

class SignalTest : public CliTest {
 protected:
  // Starts a fit that runs until stopped, waits until it iterates with its temporaries
  // created, sends `signal_number`, and checks how it ended.
  void stop_a_fit(int signal_number) {
    generate(20000);
    const std::set<std::string> before = listing();
    const pid_t pid =
        start({"fit", "data.npy", "-k", "2", "--tol", "0", "--max-iter", "100000", "-o",
               "model.json", "--labels", "labels.npy", "--responsibilities", "resp.npy"});
    const bool iterating =
        wait_until([&] { return stderr_so_far().find("iter 3") != std::string::npos; });
    EXPECT_TRUE(iterating) << stderr_so_far();
    EXPECT_EQ(temporaries().size(), 3u);  // the outputs exist as temporaries during the fit
    ::kill(pid, signal_number);
    const CliRun r = finish(pid, 30);
    EXPECT_EQ(r.signal, 0) << "killed by signal " << r.signal << " instead of exiting";
    EXPECT_EQ(r.code, 128 + signal_number) << r.err;
    EXPECT_NE(r.err.find("emix: stopped by SIG"), std::string::npos) << r.err;
    EXPECT_EQ(listing(), before);
  }
};

// Old: killed by the signal (no exit code), leaving the temporaries it had made.
TEST_F(SignalTest, SigintStopsAFitAndRemovesItsTemporaries) { stop_a_fit(SIGINT); }
TEST_F(SignalTest, SigtermStopsAFitAndRemovesItsTemporaries) { stop_a_fit(SIGTERM); }
TEST_F(SignalTest, SighupStopsAFitAndRemovesItsTemporaries) { stop_a_fit(SIGHUP); }

// Old: the default action of these ended the program without a word, its temporaries left.
TEST_F(SignalTest, SigquitStopsAFitAndRemovesItsTemporaries) { stop_a_fit(SIGQUIT); }
TEST_F(SignalTest, Sigusr1StopsAFitAndRemovesItsTemporaries) { stop_a_fit(SIGUSR1); }
TEST_F(SignalTest, SigxcpuStopsAFitAndRemovesItsTemporaries) { stop_a_fit(SIGXCPU); }

// Old: a partial hidden temporary stayed (205 MB in the probe).
TEST_F(SignalTest, SigtermDuringAWriteLeavesNoPartialFile) {
  // 10^8 rows x 2 would be 1.6 GB; the signal comes once the first megabyte is written.
  const pid_t pid =
      start({"generate", "--n", "100000000", "--d", "2", "-k", "2", "-o", "data.npy", "--quiet"});
  const bool writing = wait_until([&] {
    for (const std::string& name : temporaries()) {
      std::error_code ec;
      if (fs::file_size(path(name), ec) > (1u << 20)) return true;
    }
    return false;
  });
  EXPECT_TRUE(writing);
  ::kill(pid, SIGTERM);
  const CliRun r = finish(pid, 30);
  EXPECT_EQ(r.code, 143) << r.err;
  EXPECT_TRUE(listing().empty()) << *listing().begin();
}

// Old: the outputs were renamed into place one by one, so a SIGTERM between two renames left a
// new labels file beside the old model, and the message said no output was written. strace holds
// each rename for a second (it is the only way to stop the program between two of them on
// purpose); the signal comes after the first.
TEST_F(SignalTest, StopSignalDuringTheRenamesFindsEveryOutputNew) {
  // rename, or renameat / renameat2 where the C library calls those for rename() (aarch64).
  const std::string renames = "rename,renameat,renameat2";
  const std::string hold =
      "strace -f -qq -e trace=" + renames + " -e inject=" + renames + ":delay_exit=1000000";
  if (std::system((hold + " -o /dev/null true > /dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << "needs strace 4.22 or later (inject=...:delay_exit), allowed to trace: "
                    "to hold the program between two renames";
  }
  generate(2000);
  write("model.json", "OLD");
  write("labels.npy", "OLD");
  const std::string trace = capture_ + "/trace.log";
  const std::string script =
      "cd '" + dir_ + "' && { " + hold + " -o '" + trace + "' '" + EMIX_CLI_PATH +
      "' fit data.npy -k 2 --max-iter 3 -o model.json --labels labels.npy --quiet 2> '" + capture_ +
      "/stderr.txt' & tracer=$!; timeout 60 sh -c \"until grep -q 'rename' '" + trace +
      "' 2>/dev/null; do sleep 0.02; done\"; kill -TERM $(cat /proc/$tracer/task/*/children); "
      "wait $tracer; }";
  const int status = std::system(script.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << stderr_so_far();
  EXPECT_NE(read_text(path("model.json")), "OLD");
  EXPECT_NE(read_text(path("labels.npy")), "OLD");
  EXPECT_NE(stderr_so_far().find("stopped by SIGTERM after its outputs were written"),
            std::string::npos)
      << stderr_so_far();
  EXPECT_TRUE(temporaries().empty());
}

// ---------------------------------------------------------------------------------------------
// Crashes and hangs

// Old: SIGFPE (the row size 2^61 x 8 wrapped to 0 and divided the file size).
TEST_F(CliTest, RawRowSizeThatWouldWrapIsAnError) {
  generate(20);
  expect_failure("fit data.npy --dtype float64 --dims 2305843009213693952 -k 2 -o model.json",
                 {"data.npy: raw_cols 2305843009213693952 of float64 makes a row larger than "
                  "2^63 bytes"});
}

// Old: --max-iter 3000000 --tol 0 ran, holding every iteration's log-likelihood and time, and
// wrote them all: a 95 MB model file (and the int range allowed 700 times more). The bound is
// in --help, and a fit or select above it is refused before the data are read.
TEST_F(CliTest, MaxIterAboveTheRecordedLimitIsRefused) {
  generate(20);
  for (const std::string command : {"fit data.npy -k 2 -o model.json", "select data.npy -k 1..2"}) {
    expect_failure(command + " --max-iter 3000000 --tol 0",
                   {"--max-iter: 3000000 is more than 100000, the most iterations a fit records"});
    expect_failure(command + " --max-iter 2147483648",
                   {"--max-iter: 2147483648 is more than 100000"});
  }
  const CliRun bound = emix("fit data.npy -k 2 --max-iter 100000 --tol 1 --device cpu -o m.json");
  EXPECT_EQ(bound.code, 0) << bound.err;
  EXPECT_NE(emix("fit --help").out.find("most EM iterations, up to 100000"), std::string::npos);
}

// Old: SIGSEGV in libgomp.
TEST_F(CliTest, AbsurdThreadCountIsAnError) {
  generate(20);
  expect_failure("fit data.npy -k 2 --threads 100000 -o model.json",
                 {"--threads 100000: must be 0 (OpenMP's default) to 1024"});
}

// Old: SIGSEGV in score, predict and fit --init-model (dump() of the document while the
// message was built), and a 40 KB error line at 20,000 deep.
TEST_F(CliTest, DeeplyNestedModelIsAnErrorWithAShortLine) {
  generate(20);
  for (const int depth : {100000, 20000, 33}) {
    SCOPED_TRACE(depth);
    write("deep.json", std::string(static_cast<std::size_t>(depth), '[') +
                           std::string(static_cast<std::size_t>(depth), ']'));
    for (const std::string command :
         {"score deep.json data.npy", "predict deep.json data.npy -o labels.npy",
          "fit data.npy --init-model deep.json -o model.json"}) {
      expect_failure(command, {"deep.json: arrays and objects nested more than 32 deep"});
      EXPECT_LT(emix(command).err.size(), kLongestErrorLine);
    }
  }
}

// Old: hung (200 placement draws against every earlier mean, O(K^2)).
TEST_F(CliTest, GenerateWithAMillionComponentsEnds) {
  const pid_t pid =
      start({"generate", "-k", "1000000", "--n", "10", "--d", "2", "-o", "g.npy", "--quiet"});
  const CliRun r = finish(pid, 300);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(emix::io::read_matrix(path("g.npy").string()).rows(), 10);
}

// Old: hung placing the means, then would have needed 33 GB for the covariances.
TEST_F(CliTest, GenerateRefusesATrueModelLargerThanMemoryBeforeAllocating) {
  const CliRun r =
      finish(start({"generate", "-k", "1000000", "--n", "10", "--d", "64", "-o", "g.npy"}), 60);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "emix: error: -k 1000000 --d 64: the true model would hold 4160000000 parameters; "
            "generate draws models of at most 134217728\n");
  EXPECT_TRUE(listing().empty());
}

// Binomial counts of 2^24 trials or more in float32: 16777217 was read as 16777216 (and taken as
// a count of 2^24 trials), and generate wrote counts it never drew, without a word.
TEST_F(CliTest, FloatPrecisionIsRefusedForCountsItWouldRound) {
  write("counts.csv", "16777217\n3\n");
  const std::string refusal =
      "--precision float: float32 rounds whole numbers above 2^24 = 16777216, so with 16777216 "
      "trials counts would be read as other counts; use --precision double";
  for (const std::string command : {"fit", "select"}) {
    expect_failure(command +
                       " counts.csv -k 1 --family binomial --trials 16777216 --precision "
                       "float -o out.json",
                   {refusal + " (auto chooses it)"});
  }
  expect_failure(
      "generate --n 10 --d 2 -k 2 --family binomial --trials 16777216 --precision "
      "float -o g.npy",
      {refusal});
  EXPECT_EQ(listing(), std::set<std::string>{"counts.csv"});
  // predict and score take the trials from the model.
  write("small.csv", "1\n3\n");
  ASSERT_EQ(emix("fit small.csv -k 1 --family binomial --trials 16777216 -q -o m.json").code, 0);
  for (const std::string command :
       {"predict m.json counts.csv -o p.npy", "score m.json counts.csv"}) {
    expect_failure(command + " --precision float", {refusal + " (auto chooses it)"});
  }
  fs::remove(path("small.csv"));
  fs::remove(path("m.json"));
  // Below 2^24 trials float keeps a count above them above them: the value check refuses it.
  expect_failure(
      "fit counts.csv -k 1 --family binomial --trials 16777215 --precision float -q "
      "-o model.json",
      {"counts.csv: row 1, column 1 is 16777216, but a binomial mixture with trials = "
       "16777215"});
  // auto reads counts of more trials in double, exactly.
  const CliRun r = emix("fit counts.csv -k 1 --family binomial --trials 20000000 -q -o model.json");
  ASSERT_EQ(r.code, 0) << r.err;
  const emix::Model model = emix::io::read_model(path("model.json").string());
  EXPECT_DOUBLE_EQ(model.probabilities[0], (16777217.0 + 3.0) / 2 / 20000000);
}

// --block-rows, a memory setting, changed the data: block b was drawn from stream b + 1 of the
// seed, so where the blocks began decided the rows (only the first block's agreed). The rows are
// now drawn in units whose size depends on D alone; a block is whole units, at most 2^27 values.
TEST_F(CliTest, GeneratedDataDependOnTheSeedNotOnTheBlockRows) {
  const auto values = [&](const std::string& name) {
    const emix::HostMatrix m = emix::io::read_matrix(path(name).string());
    return std::vector<double>(m.as<double>(), m.as<double>() + m.rows() * m.cols());
  };
  for (const std::string family : {"--covariance diag", "--family binomial --trials 7"}) {
    const std::string common = "generate --d 3 -k 3 --seed 9 -q " + family;
    ASSERT_EQ(emix(common + " --n 150000 -o whole.npy").code, 0);
    const std::vector<double> whole = values("whole.npy");
    ASSERT_EQ(whole.size(), 150000u * 3);
    for (const std::string blocks : {"1000", "70000", "1000000000000"}) {
      const CliRun r = emix(common + " --n 150000 --block-rows " + blocks + " -o blocks.npy");
      ASSERT_EQ(r.code, 0) << r.err;
      EXPECT_TRUE(values("blocks.npy") == whole) << family << ", --block-rows " << blocks;
    }
    ASSERT_EQ(emix(common + " --n 100001 --block-rows 777 -o prefix.npy").code, 0);
    EXPECT_TRUE(values("prefix.npy") ==
                std::vector<double>(whole.begin(), whole.begin() + 100001 * 3))
        << family;
  }
}

// ---------------------------------------------------------------------------------------------
// Silent wrong answers

// Old: accepted; score printed -nan and predict --proba wrote NaN rows, exit 0.
TEST_F(CliTest, VarianceTooSmallToInvertIsRejected) {
  generate(20);
  write("tiny.json",
        R"({"family": "gaussian", "covariance": "diag", "weights": [1], "means": [[0, 0, 0]],
            "covariances": [[5e-324, 1, 1]]})");
  expect_failure("score tiny.json data.npy",
                 {"tiny.json: covariances[0][0] is 5e-324, too small: 1 / variance overflows "
                  "double precision"});
  expect_failure("predict tiny.json data.npy --proba -o p.npy", {"tiny.json", "5e-324"});
}

// Old: the first row was silently taken as a header and dropped, exit 0.
TEST_F(CliTest, FirstRowWithOneNonNumericCellIsAnErrorNotAHeader) {
  write("data.csv", "NA,1,2\n3,4,5\n6,7,8\n9,10,12\n");
  expect_failure("fit data.csv -k 1 -o model.json",
                 {"data.csv: row 1, column 1: 'NA' is not a number (line 1)"});
  // A real header (no cell a number) is still one.
  write("named.csv", "x,y,z\n3,4,5\n6,7,8\n9,10,12\n");
  const CliRun named = emix("fit named.csv -k 1 -o model.json");
  ASSERT_EQ(named.code, 0) << named.err;
  EXPECT_EQ(named.err.find("read as column names"), std::string::npos) << named.err;
  // A first line of numbers taken for pandas' column names is a guess, told (it was silent).
  write("numbered.txt", "0 1\n2.5 3\n4 5.5\n");
  const CliRun guessed = emix("fit numbered.txt -k 1 -o model.json");
  ASSERT_EQ(guessed.code, 0) << guessed.err;
  EXPECT_NE(guessed.err.find("numbered.txt: line 1, whose cells are numbers, read as column names "
                             "(a header), not as a row"),
            std::string::npos)
      << guessed.err;
  // Over whole numbers such a line is taken for a row: pandas' to_csv(index=False) of counts
  // gave one row too many, silently.
  write("counts.csv", "0,1\n1,0\n0,0\n1,1\n");
  const CliRun counted = emix("fit counts.csv --family bernoulli -k 1 -o model.json");
  ASSERT_EQ(counted.code, 0) << counted.err;
  EXPECT_NE(counted.err.find("counts.csv: line 1, the numbers 0, 1, ... that pandas writes as "
                             "column names, read as a row"),
            std::string::npos)
      << counted.err;
  EXPECT_NE(counted.err.find("over 4 rows"), std::string::npos) << counted.err;
  // Where that row is what the family refuses, the error is the only line on stderr: it says
  // so itself (it named a value of 2 in a file of 0s and 1s, and nothing of the guess).
  write("wide.csv", "0,1,2,3\n1,0,1,1\n0,1,1,0\n");
  expect_failure("fit wide.csv --family bernoulli -k 1 -o model.json",
                 {"wide.csv: row 1, column 3 is 2, but a Bernoulli mixture needs 0 or 1 (line 1): "
                  "that line holds the numbers 0, 1, ... that pandas writes as column names, "
                  "read as a row"});
  write("alone.csv", "0,1,2,3\n");
  expect_failure("fit alone.csv --family bernoulli -k 1 -o model.json",
                 {"alone.csv: row 1, column 3 is 2, but a Bernoulli mixture needs 0 or 1 (line 1): "
                  "that line holds the numbers 0, 1, ... that pandas writes as column names, "
                  "read as a row, as no row follows it"});
  write("later.csv", "0,1,0,1\n1,0,1,1\n0,1,2,0\n");
  const CliRun later = emix("fit later.csv --family bernoulli -k 1 -o model.json");
  EXPECT_NE(later.code, 0);
  EXPECT_EQ(later.err.find("pandas"), std::string::npos) << later.err;
}

// Old: silently clamped to 2^64 - 1 (and -1 wrapped), exit 0.
TEST_F(CliTest, SeedOutOfRangeIsAnError) {
  generate(20);
  expect_failure("fit data.npy -k 2 --seed 99999999999999999999999 -o model.json",
                 {"--seed 99999999999999999999999: must be a whole number from 0 to "
                  "18446744073709551615"});
  expect_failure("fit data.npy -k 2 --seed -1 -o model.json", {"--seed -1: must be"});
  expect_failure("generate --n 5 --d 2 -k 1 --seed 1.5 -o g.npy", {"--seed 1.5: must be"});
  ASSERT_EQ(emix("fit data.npy -k 2 --seed 18446744073709551615 -o model.json --quiet").code, 0);
}

// ---------------------------------------------------------------------------------------------
// Exit 1 or unclear messages

// Old: exit 1, "[json.exception.out_of_range.406] number overflow parsing '1e400'".
TEST_F(CliTest, NumberBeyondDoubleInAModelNamesFileLineAndField) {
  generate(20);
  write("big.json", R"({"family": "gaussian", "covariance": "diag", "weights": [1],
  "means": [[1e400, 0, 0]], "covariances": [[1, 1, 1]]})");
  expect_failure("score big.json data.npy",
                 {"big.json: line 2, column 18, in 'means'[0][0]: the number '1e400' is out of "
                  "the range of a double"});
}

// Old: exit 1 "out of memory": K x D (17 GB here) was reserved before the arrays were
// checked. Whether that reservation fails depends on the machine's memory and overcommit
// policy, so the program runs here with 1 GiB of address space: enough for emix, not for that.
TEST_F(CliTest, ModelClaimingHugeWidthIsAnErrorWithoutAllocating) {
#if EMIX_TEST_ADDRESS_SANITIZER
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space; RLIMIT_AS cannot apply";
#endif
  generate(20);
  write("wide.json",
        R"({"family": "gaussian", "covariance": "full", "n_components": 1,
            "n_features": 2147483647, "weights": [1], "means": [[0, 0, 0]],
            "covariances": [[[1, 0, 0], [0, 1, 0], [0, 0, 1]]]})");
  const CliRun r =
      finish(start({"score", "wide.json", "data.npy"}, ProcessLimits{RLIM_INFINITY, 1u << 30}));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.err,
            "emix: error: wide.json: 'means'[0] has 3 values, expected n_features = "
            "2147483647\n");
}

// Old: "libgomp: Thread creation failed: Resource temporarily unavailable" and exit 1 (GNU
// OpenMP ends the process itself; in Python, the interpreter), its temporaries left behind. 1023
// threads' stacks (2 MiB each at the least) do not fit in 1 GiB of address space.
TEST_F(CliTest, ThreadsThatCannotStartAreAnErrorNotAnExit) {
#if EMIX_TEST_ADDRESS_SANITIZER
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space; RLIMIT_AS cannot apply";
#endif
  generate(2000);
  const std::set<std::string> before = listing();
  const CliRun r = finish(start({"fit", "data.npy", "-k", "2", "--threads", "1024", "-o",
                                 "model.json", "--labels", "labels.npy"},
                                ProcessLimits{RLIM_INFINITY, rlim_t{1} << 30}));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("emix: error: cannot start 1024 threads: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("ask for fewer threads (--threads, or OMP_NUM_THREADS)"), std::string::npos)
      << r.err;
  EXPECT_EQ(listing(), before);
}

// Old: exit 1 "out of memory" after allocating for a while. The need (210 GB) is compared with
// the least of physical memory, the cgroup's limit and the process's limits, so a 16 GiB
// address-space limit makes the case the same on any machine.
TEST_F(CliTest, FitThatCannotFitInMemoryIsRefusedUpFront) {
  std::string text;
  for (int i = 0; i < 200000; ++i) text += std::to_string(i % 997) + "\n";
  write("data.txt", text);
  ProcessLimits limits;
#if !EMIX_TEST_ADDRESS_SANITIZER  // AddressSanitizer needs terabytes of address space
  limits.address_space = rlim_t{16} << 30;
#endif
  const CliRun r = finish(
      start({"fit", "data.txt", "-k", "100000", "--init", "random", "-o", "model.json"}, limits));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("emix: error: -k 100000 needs at least 104.9 GB of memory "
                        "(initialisation holds 131072 sampled rows x 1 features and their random "
                        "responsibilities, 131072 x 100000 components in double precision), more "
                        "than the ",
                        0),
            0u)
      << r.err;
  // The library's advice about its init_max_rows, which the program has no flag for, is left out.
  EXPECT_EQ(r.err.find("init_max_rows"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("; use fewer components or the k-means++ initialisation (which holds no "
                       "rows x components matrix)\n"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(listing(), std::set<std::string>{"data.txt"});
#if !EMIX_TEST_ADDRESS_SANITIZER
  // It names the limit that bound, not "of this machine", where the 16 GiB one binds (a machine
  // or container of less memory binds first).
  if (r.err.find("more than the 17.2 GB") != std::string::npos) {
    EXPECT_NE(r.err.find("more than the 17.2 GB this process may use (its address-space limit, "
                         "ulimit -v)"),
              std::string::npos)
        << r.err;
  }
#endif
}

// Old: the responsibilities (N x K doubles) were found too large for memory after the fit had
// run. Now before it: before the fit's own check of the data, which here would name a NaN.
TEST_F(CliTest, ResultsThatCannotFitInMemoryAreRefusedBeforeTheFit) {
  std::string text;
  for (int i = 0; i < 200000; ++i) text += i == 199999 ? "nan\n" : std::to_string(i % 997) + "\n";
  write("data.txt", text);
  ProcessLimits limits;           // 16 GiB of address space: the case is the same on any machine
#if !EMIX_TEST_ADDRESS_SANITIZER  // AddressSanitizer needs terabytes of address space
  limits.address_space = rlim_t{16} << 30;
#endif
  const CliRun r = finish(start(
      {"fit", "data.txt", "-k", "64000", "-o", "model.json", "--responsibilities", "resp.npy"},
      limits));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("emix: error: the results for 200000 rows (64000 responsibilities "
                        "(float64) per row) need 102.4 GB of memory, more than the ",
                        0),
            0u)
      << r.err;
  EXPECT_NE(r.err.find("; for a .npy INPUT, --memory-map streams the results"), std::string::npos)
      << r.err;
  EXPECT_EQ(listing(), std::set<std::string>{"data.txt"});
  // Labels alone need 4 bytes a row: the fit runs, and its check names the NaN.
  expect_failure("fit data.txt -k 64000 -o model.json --labels labels.npy",
                 {"data.txt: row 200000, column 1 is nan"});
}

// Old: a 20 MB error line with the control bytes of the input.
TEST_F(CliTest, ErrorLinesQuoteShortPrintableExcerpts) {
  generate(20);
  write("long.json", "{\"family\": \"" + std::string(20000000, 'x') + "\\u0001\\u0000\"}");
  expect_failure("score long.json data.npy",
                 {"long.json: 'family': unknown family 'xxxxxxxxxx", "(20000002 bytes)"});
  EXPECT_LT(emix("score long.json data.npy").err.size(), kLongestErrorLine);

  write("control.csv", std::string("1,2\n3,\x01\x1b[31mred\n") + "5,6\n");
  expect_failure("fit control.csv -k 1 -o model.json",
                 {"control.csv: row 2, column 2: '\\x01\\x1b[31mred' is not a number"});
  write("huge-cell.csv", "1,2\n3," + std::string(5000000, '7') + "x\n");
  expect_failure("fit huge-cell.csv -k 1 -o model.json", {"(5000001 bytes)"});
  EXPECT_LT(emix("fit huge-cell.csv -k 1 -o model.json").err.size(), kLongestErrorLine);
}

// Not a regression: the old reader named these itself. Now the data are scanned once, by the
// library's validation, and its DataError is named in the file the value came from: file, row,
// column and, for text, line.
TEST_F(CliTest, BadValuesAreNamedInTheirFile) {
  write("data.csv", "# comment\nx,y\n1,2\n3,4\n\n5,inf\n7,8\n");
  expect_failure("fit data.csv -k 1 -o model.json", {"data.csv: row 3, column 2 is inf (line 6)"});
  generate(20);
  std::string weights;
  for (int i = 0; i < 20; ++i) weights += i == 6 ? "-2\n" : "1\n";
  write("w.txt", weights);
  expect_failure("fit data.npy -k 2 --sample-weight w.txt -o model.json",
                 {"w.txt: row 7 is -2, but a sample weight must be a finite number >= 0"});
  // Subnormal weights count as 0 in the engines (FTZ / DAZ): all of them that tiny once gave
  // NaN weights after 100 iterations.
  weights.clear();
  for (int i = 0; i < 20; ++i) weights += "1e-310\n";
  write("w.txt", weights);
  expect_failure("fit data.npy -k 2 --sample-weight w.txt -o model.json",
                 {"w.txt: the sample weights below the smallest normal double", "sum to 1.99",
                  "e-309 against 0 for the others"});
  // Each below DBL_MIN but their sum above it: the engines' sum was still 0, and the E-step was
  // said to overflow, with the advice to scale the weights down.
  weights.clear();
  for (int i = 0; i < 20; ++i) weights += "2e-309\n";
  write("w.txt", weights);
  expect_failure("fit data.npy -k 2 --sample-weight w.txt -o model.json",
                 {"w.txt: the sample weights below the smallest normal double", "scale them up"});
  // Beside a normal weight they do not outweigh 2^53-fold, they would have been dropped silently.
  weights.clear();
  for (int i = 0; i < 20; ++i) weights += i == 3 ? "3e-308\n" : "1e-309\n";
  write("w.txt", weights);
  expect_failure("fit data.npy -k 2 --sample-weight w.txt -o model.json",
                 {"sum to 1.9", "e-308 against 3", "e-308 for the others"});
  // One such weight among normal ones counts as 0, and is taken.
  weights.clear();
  for (int i = 0; i < 20; ++i) weights += i == 3 ? "1e-310\n" : "1\n";
  write("w.txt", weights);
  EXPECT_EQ(emix("fit data.npy -k 2 --sample-weight w.txt --device cpu -o model.json").code, 0);
  weights.clear();
  for (int i = 0; i < 20; ++i) weights += "1e308\n";
  write("w.txt", weights);
  expect_failure("fit data.npy -k 2 --sample-weight w.txt -o model.json",
                 {"sample weights sum to inf (their sum overflows double precision)"});
  // Normal but all tiny: their products with responsibilities flushed to 0, every component was
  // "empty", and a model of nonsense came out with exit 0.
  weights.clear();
  for (int i = 0; i < 20; ++i) weights += "1e-304\n";
  write("w.txt", weights);
  expect_failure(
      "fit data.npy -k 2 --sample-weight w.txt -o model.json",
      {"w.txt: the sample weights are all below", "the largest is 1e-304", "scale them up"});
}

// What a command prints is its result: when standard output cannot take it (a full disk, here
// /dev/full), the command fails saying so, rather than succeeding with an empty file.
TEST_F(CliTest, StandardOutputThatCannotBeWrittenIsAnError) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full on this machine";
  generate(50);
  ASSERT_EQ(emix("fit data.npy -k 2 --device cpu -o model.json").code, 0);
  const std::string err = (fs::path(dir_) / "err.txt").string();
  const std::string command = "cd '" + dir_ + "' && '" + EMIX_CLI_PATH +
                              "' score model.json data.npy --device cpu > /dev/full 2> '" + err +
                              "'";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(read_text(err).find("standard output: No space left on device"), std::string::npos)
      << read_text(err);
}

}  // namespace

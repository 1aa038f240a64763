// Shared by the tests of the `emix` program: each runs the built binary (EMIX_CLI_PATH) in a
// fresh temporary folder and checks its exit code, its messages and the files it leaves behind.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace emix::testing {

namespace fs = std::filesystem;

struct CliRun {
  int code = -1;   // the exit code, or -1 when the program did not exit normally
  int signal = 0;  // the signal that ended it, if one did
  std::string out;
  std::string err;
};

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::string make_temp_dir(const char* stem) {
  std::string pattern = (fs::temp_directory_path() / (std::string(stem) + "XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

// Limits for a program CliTest::start() runs.
struct ProcessLimits {
  // The largest file it may write (RLIMIT_FSIZE): writes past it fail with EFBIG, as on a
  // full disk.
  rlim_t file_size = RLIM_INFINITY;
  // Its address space (RLIMIT_AS): an allocation past it fails at once, whatever the
  // machine's overcommit policy would have allowed.
  rlim_t address_space = RLIM_INFINITY;
  // A descriptor to read as standard input (-1: the test's own).
  int standard_input = -1;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("emix_cli_test_");
    // stdout and stderr are captured outside dir_, so that dir_ holds only what emix wrote.
    capture_ = make_temp_dir("emix_cli_capture_");
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    fs::remove_all(capture_, ignored);
  }

  // Runs `emix <args>` with dir_ as the working folder.
  CliRun emix(const std::string& args) {
    const std::string out = capture_ + "/stdout.txt";
    const std::string err = capture_ + "/stderr.txt";
    const std::string command = "cd '" + dir_ + "' && '" + EMIX_CLI_PATH + "' " + args + " > '" +
                                out + "' 2> '" + err + "'";
    const int status = std::system(command.c_str());
    CliRun r;
    r.code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }

  // Starts `emix <args...>` in dir_ without a shell, with the default action for every signal
  // (a shell running it in the background would ignore SIGINT) and stderr captured. Returns its
  // pid.
  pid_t start(const std::vector<std::string>& args, const ProcessLimits& limits = {}) {
    const std::string err = capture_ + "/stderr.txt";
    const std::string program = EMIX_CLI_PATH;
    std::vector<std::string> words = {program};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (::chdir(dir_.c_str()) != 0) ::_exit(120);
      const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || ::dup2(fd, 2) < 0) ::_exit(121);
      if (limits.standard_input >= 0 && ::dup2(limits.standard_input, 0) < 0) ::_exit(123);
      for (int s = 1; s < 32; ++s) ::signal(s, SIG_DFL);
      if (limits.file_size != RLIM_INFINITY) {
        // SIGXFSZ keeps its default action (killing) here, as under a shell's ulimit -f: the
        // program ignores it itself so that the write fails with EFBIG.
        const struct rlimit r = {limits.file_size, limits.file_size};
        ::setrlimit(RLIMIT_FSIZE, &r);
      }
      if (limits.address_space != RLIM_INFINITY) {
        const struct rlimit r = {limits.address_space, limits.address_space};
        ::setrlimit(RLIMIT_AS, &r);
      }
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(program.c_str(), argv.data());
      ::_exit(122);
    }
    return pid;
  }

  // Waits for a process start() began; kills it after `timeout` seconds.
  CliRun finish(pid_t pid, double timeout = 120) {
    CliRun r;
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ADD_FAILURE() << "emix did not end within " << timeout << " s";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    r.err = read_text(capture_ + "/stderr.txt");
    return r;
  }

  // Polls `ready` every few milliseconds for up to `timeout` seconds; false if it never held.
  static bool wait_until(const std::function<bool()>& ready, double timeout = 60) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
    while (std::chrono::steady_clock::now() < deadline) {
      if (ready()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  std::string stderr_so_far() const { return read_text(capture_ + "/stderr.txt"); }

  fs::path path(const std::string& name) const { return fs::path(dir_) / name; }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(path(name), std::ios::binary) << text;
  }

  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

  // Names in dir_ of emix's temporary files.
  std::vector<std::string> temporaries() const {
    std::vector<std::string> names;
    for (const std::string& name : listing()) {
      if (name.find(".emix-tmp.") != std::string::npos) names.push_back(name);
    }
    return names;
  }

  // Runs a command that must fail: exit code 2, one "emix: error: " line that contains every
  // expected fragment, and the folder exactly as before (no output, no temporary).
  void expect_failure(const std::string& args, const std::vector<std::string>& fragments) {
    SCOPED_TRACE("emix " + args);
    const std::set<std::string> before = listing();
    const CliRun r = emix(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(r.err.rfind("emix: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const std::string& f : fragments) {
      EXPECT_NE(r.err.find(f), std::string::npos) << "expected \"" << f << "\" in: " << r.err;
    }
    EXPECT_EQ(listing(), before);
  }

  // A small well-separated Gaussian data set, data.npy (rows x 3).
  void generate(int rows) {
    const CliRun r =
        emix("generate --n " + std::to_string(rows) + " --d 3 -k 2 --seed 5 -o data.npy");
    ASSERT_EQ(r.code, 0) << r.err;
  }

  std::string dir_;
  std::string capture_;
};

}  // namespace emix::testing

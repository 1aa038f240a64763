// A deterministic mutation fuzzer for the harnesses (LLVMFuzzerTestOneInput), for compilers
// without libFuzzer and for the short run in the test command: the same seed and corpus give the
// same inputs on every machine.
//
//   emix_fuzz_READER [--runs N] [--seed S] [--max-seconds T] [--max-len L] CORPUS_DIR | FILE...
//
// Every corpus file runs once as it is; then N mutants of them run (1 to 8 mutations each:
// bit flips, bytes set to random or to values parsers trip on, runs inserted, erased, duplicated
// or spliced in from another file, numbers of edge-case size written in). A crash, a sanitizer
// report or a hang (one input taking over 20 s) leaves the input in fuzz-finding-READER.bin in
// the working folder and ends the run with the signal; the harnesses abort() on findings.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

// The input being run, for the signal handler to save.
const std::uint8_t* g_input = nullptr;
std::size_t g_input_size = 0;
char g_finding_path[512] = "fuzz-finding.bin";

extern "C" void save_input_and_die(int signal_number) {
  const int fd = ::open(g_finding_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    std::size_t done = 0;
    while (g_input != nullptr && done < g_input_size) {
      const ssize_t n = ::write(fd, g_input + done, g_input_size - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
  const char message[] = "emix fuzz: the input that failed is in ";
  ssize_t ignored = ::write(2, message, sizeof message - 1);
  ignored = ::write(2, g_finding_path, std::strlen(g_finding_path));
  ignored = ::write(2, "\n", 1);
  (void)ignored;
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

class Rng {  // splitmix64: the same stream on every platform
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

using Bytes = std::vector<std::uint8_t>;

// Bytes and texts the readers treat specially.
const std::uint8_t kSpecialBytes[] = {0,   1,   0x7f, 0x80, 0xff, '0',  '9', '-', '+', '.', 'e',
                                      ',', ';', ' ',  '\t', '\n', '\r', '#', '[', ']', '{', '}',
                                      '(', ')', '"',  '\'', ':',  '\\', 'n', 'N', 'L'};
const char* const kSpecialTexts[] = {"-1",
                                     "0",
                                     "1e400",
                                     "-1e400",
                                     "nan",
                                     "inf",
                                     "-inf",
                                     "5e-324",
                                     "1e-320",
                                     "NA",
                                     "2147483647",
                                     "2147483648",
                                     "4294967296",
                                     "9223372036854775807",
                                     "18446744073709551616",
                                     "99999999999999999999999",
                                     "1.7976931348623157e308",
                                     "null",
                                     "true",
                                     "\"\"",
                                     "[]",
                                     "{}",
                                     "\xef\xbb\xbf",
                                     "\\u0000",
                                     "0x10",
                                     "'<f8'",
                                     "'>i8'",
                                     "'|b1'",
                                     "True",
                                     "False",
                                     "(0,)",
                                     "(3, 0)",
                                     "()"};

void mutate(Bytes& input, const std::vector<Bytes>& corpus, Rng& rng, std::size_t max_len) {
  const int count = 1 + static_cast<int>(rng.below(8));
  for (int m = 0; m < count; ++m) {
    const std::size_t size = input.size();
    switch (rng.below(10)) {
      case 0:  // flip a bit
        if (size > 0) input[rng.below(size)] ^= static_cast<std::uint8_t>(1u << rng.below(8));
        break;
      case 1:  // a random byte
        if (size > 0) input[rng.below(size)] = static_cast<std::uint8_t>(rng.next());
        break;
      case 2:  // a byte parsers trip on
        if (size > 0) input[rng.below(size)] = kSpecialBytes[rng.below(sizeof kSpecialBytes)];
        break;
      case 3: {  // insert random bytes
        Bytes run(1 + rng.below(16));
        for (auto& b : run) b = static_cast<std::uint8_t>(rng.next());
        input.insert(input.begin() + static_cast<std::ptrdiff_t>(rng.below(size + 1)), run.begin(),
                     run.end());
        break;
      }
      case 4: {  // erase a run
        if (size == 0) break;
        const std::size_t at = rng.below(size);
        const std::size_t n = 1 + rng.below(std::min<std::size_t>(size - at, 64));
        input.erase(input.begin() + static_cast<std::ptrdiff_t>(at),
                    input.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
      case 5: {  // duplicate a run (nesting, repeated rows)
        if (size == 0) break;
        const std::size_t at = rng.below(size);
        const std::size_t n = 1 + rng.below(std::min<std::size_t>(size - at, 64));
        const Bytes run(input.begin() + static_cast<std::ptrdiff_t>(at),
                        input.begin() + static_cast<std::ptrdiff_t>(at + n));
        const std::size_t times = 1 + rng.below(rng.below(4) == 0 ? 200 : 3);
        for (std::size_t t = 0; t < times && input.size() + run.size() <= max_len; ++t) {
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), run.begin(), run.end());
        }
        break;
      }
      case 6: {  // write an edge-case text over or into the input
        const char* text = kSpecialTexts[rng.below(sizeof kSpecialTexts / sizeof *kSpecialTexts)];
        const std::size_t n = std::strlen(text);
        const std::size_t at = rng.below(size + 1);
        if (rng.below(2) == 0 && at + n <= size) {
          std::memcpy(input.data() + at, text, n);
        } else {
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), text, text + n);
        }
        break;
      }
      case 7: {  // splice in a run of another corpus file
        const Bytes& other = corpus[rng.below(corpus.size())];
        if (other.empty()) break;
        const std::size_t from = rng.below(other.size());
        const std::size_t n = 1 + rng.below(std::min<std::size_t>(other.size() - from, 256));
        input.insert(input.begin() + static_cast<std::ptrdiff_t>(rng.below(size + 1)),
                     other.begin() + static_cast<std::ptrdiff_t>(from),
                     other.begin() + static_cast<std::ptrdiff_t>(from + n));
        break;
      }
      case 8:  // truncate
        if (size > 0) input.resize(rng.below(size));
        break;
      case 9: {  // a little-endian integer of edge-case size (lengths, shapes, raw_cols)
        if (size < 8) break;
        static const std::uint64_t kValues[] = {0,
                                                1,
                                                0x7f,
                                                0xff,
                                                0xffff,
                                                0x7fffffff,
                                                0xffffffff,
                                                std::uint64_t{1} << 61,
                                                ~std::uint64_t{0},
                                                std::uint64_t{1} << 63};
        const std::uint64_t v = kValues[rng.below(sizeof kValues / sizeof *kValues)];
        const std::size_t width = std::size_t{1} << rng.below(4);  // 1, 2, 4 or 8 bytes
        const std::size_t at = rng.below(size - width + 1);
        std::memcpy(input.data() + at, &v, width);
        break;
      }
    }
    if (input.size() > max_len) input.resize(max_len);
  }
}

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void run_one(const Bytes& input) {
  g_input = input.data();
  g_input_size = input.size();
  ::alarm(20);  // a hang is a finding
  LLVMFuzzerTestOneInput(input.data(), input.size());
  ::alarm(0);
  g_input = nullptr;
}

[[noreturn]] void usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s [--runs N] [--seed S] [--max-seconds T] [--max-len L] "
               "CORPUS_DIR | FILE...\n",
               program);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t runs = 10000, seed = 1;
  double max_seconds = 0;  // 0: no limit
  std::size_t max_len = 1 << 16;
  std::vector<fs::path> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&] {
      if (i + 1 >= argc) usage(argv[0]);
      return std::strtoull(argv[++i], nullptr, 10);
    };
    if (arg == "--runs") {
      runs = value();
    } else if (arg == "--seed") {
      seed = value();
    } else if (arg == "--max-seconds") {
      max_seconds = static_cast<double>(value());
    } else if (arg == "--max-len") {
      max_len = static_cast<std::size_t>(value());
    } else if (!arg.empty() && arg[0] == '-') {
      usage(argv[0]);
    } else if (fs::is_directory(arg)) {
      for (const auto& entry : fs::directory_iterator(arg)) paths.push_back(entry.path());
    } else {
      paths.emplace_back(arg);
    }
  }
  if (paths.empty()) usage(argv[0]);
  std::sort(paths.begin(), paths.end());  // directory order differs between machines

  const std::string name = fs::path(argv[0]).filename().string();
  std::snprintf(g_finding_path, sizeof g_finding_path, "fuzz-finding-%s.bin", name.c_str());
  for (const int s : {SIGSEGV, SIGABRT, SIGFPE, SIGBUS, SIGILL, SIGALRM}) {
    ::signal(s, save_input_and_die);
  }

  std::vector<Bytes> corpus;
  for (const fs::path& path : paths) corpus.push_back(read_file(path));
  const auto start = std::chrono::steady_clock::now();
  for (const Bytes& input : corpus) run_one(input);

  Rng rng(seed);
  std::uint64_t done = 0;
  Bytes input;
  for (; done < runs; ++done) {
    if (max_seconds > 0 && (done & 255) == 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >
            max_seconds) {
      break;
    }
    input = corpus[rng.below(corpus.size())];
    mutate(input, corpus, rng, max_len);
    run_one(input);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "%s: %zu corpus inputs and %llu mutants (seed %llu) in %.1f s, %.0f per second: "
      "no finding\n",
      name.c_str(), corpus.size(), static_cast<unsigned long long>(done),
      static_cast<unsigned long long>(seed), seconds,
      static_cast<double>(done) / std::max(seconds, 1e-9));
  return 0;
}

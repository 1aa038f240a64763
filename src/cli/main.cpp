// The `emix` program: parses the command line (CLI11) and runs one subcommand. Every failure
// ends as one line "emix: error: <message>" on stderr: exit code 2 for bad input or usage (an
// emix::Error or a command-line error), 1 for anything else. SIGINT, SIGTERM and SIGHUP end it
// at once with exit code 130, 143 or 129, after removing every temporary output file; an input
// truncated while it is read through a mapping (SIGBUS) ends it with exit code 2, the same way.
#include <signal.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <utility>

#include "cli/commands.hpp"
#include "cli/mpi_session.hpp"
#include "core/initialize.hpp"  // TooFewRows
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"
#include "emix/version.hpp"

namespace {

using emix::cli::DataArgs;

const std::vector<std::string> kFamilies = {"gaussian", "bernoulli", "binomial"};
const std::vector<std::string> kCovariances = {"full", "diag", "spherical", "tied"};
const std::vector<std::string> kInits = {"kmeans++", "random", "random-from-data"};
const std::vector<std::string> kDevices = {"auto", "cpu", "gpu"};

void add_data_options(CLI::App* app, DataArgs& data) {
  app->add_option("--dtype", data.raw_dtype,
                  "INPUT is raw binary with this element type (float32, float64, int8, uint8, "
                  "int16, uint16, int32, uint32, int64, uint64); needs --dims")
      ->check(CLI::IsMember({"float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
                             "uint32", "int64", "uint64"}));
  app->add_option("--dims", data.raw_cols, "raw binary INPUT: the number of columns D");
  app->add_option("--device", data.device, "where the E-step runs")
      ->check(CLI::IsMember(kDevices))
      ->capture_default_str();
  app->add_option("--precision", data.precision,
                  "element type the data are held in: float, double, or auto (float on the GPU, "
                  "double on the CPU)")
      ->check(CLI::IsMember({"auto", "float", "double"}))
      ->capture_default_str();
  app->add_option("--threads", data.threads, "CPU engine threads (0: OpenMP's default)")
      ->capture_default_str();
  app->add_option("--chunk-rows", data.chunk_rows,
                  "GPU engine: rows per device chunk (0: chosen from the GPU's memory)")
      ->capture_default_str();
  app->add_flag("-q,--quiet", data.quiet, "no progress or summary on stderr");
}

// --max-iter, bounded above by kMaxIterations (a value below 0 is the library's to refuse).
void add_max_iter_option(CLI::App* app, int& max_iter) {
  const std::string limit = std::to_string(emix::cli::kMaxIterations);
  app->add_option("--max-iter", max_iter,
                  "most EM iterations, up to " + limit +
                      " (each is recorded in the model file's fit history)")
      ->check(CLI::Validator(
          [limit](const std::string& value) {
            long long iterations = 0;
            if (!CLI::detail::lexical_cast(value, iterations) ||
                iterations <= emix::cli::kMaxIterations) {
              return std::string();  // a value that is no number is named by the conversion
            }
            return value + " is more than " + limit +
                   ", the most iterations a fit records; EM that has not met its --tol by then "
                   "will not, so raise --tol or check the data";
          },
          "", "at most " + limit))
      ->capture_default_str();
}

constexpr const char* kNoMemoryMapHelp =
    "always read INPUT into memory (by default a .npy that already holds the run's element type "
    "is used in place, through a read-only mapping)";

// --memory-map, --no-memory-map and --map-chunk-rows; memory_map() reads the choice after
// parsing: "on", "off" or "auto".
struct MemoryMapFlags {
  CLI::Option* on = nullptr;
  CLI::Option* off = nullptr;
  std::string memory_map() const {
    return on->count() > 0 ? "on" : off->count() > 0 ? "off" : "auto";
  }
};

MemoryMapFlags add_memory_map_options(CLI::App* app, std::int64_t& map_chunk_rows,
                                      const char* what) {
  MemoryMapFlags flags;
  flags.on =
      app->add_flag("--memory-map")
          ->description(
              std::string(
                  "read a .npy INPUT through a read-only memory mapping, chunk by chunk, ") +
              what + " (default: when the copy would take more than half the physical memory)");
  flags.off = app->add_flag("--no-memory-map", kNoMemoryMapHelp)->excludes(flags.on);
  app->add_option("--map-chunk-rows", map_chunk_rows,
                  "memory-mapped INPUT: rows per chunk (0: about 64 MiB); above 0, the .npy "
                  "INPUT is mapped as with --memory-map")
      ->check(CLI::Validator(
          [](const std::string& value) {
            return value.rfind('-', 0) == 0 ? "must be 0 or more, not " + value : std::string();
          },
          "", "non-negative"))
      ->capture_default_str();
  return flags;
}

// The mapping flags and the data options of a command that reads INPUT.
MemoryMapFlags add_input_options(CLI::App* app, emix::cli::InputArgs& args, const char* mapped) {
  const MemoryMapFlags flags = add_memory_map_options(app, args.map_chunk_rows, mapped);
  add_data_options(app, args.data);
  return flags;
}

// The flags of emix::cli::EmArgs, shared by fit and select; read_into() completes the arguments
// after parsing.
struct EmFlags {
  CLI::Option* family = nullptr;
  CLI::Option* trials = nullptr;
  CLI::Option* init = nullptr;
  CLI::Option* kmeans_iter = nullptr;
  CLI::Option* reg_covar = nullptr;
  CLI::Option* prob_epsilon = nullptr;
  std::string seed;

  // Which flags were given, and the seed (an emix::Error where it is no seed).
  void read_into(emix::cli::EmArgs& args) const {
    args.seed = emix::cli::parse_seed(seed, "--seed");
    args.trials_given = trials->count() > 0;
    args.kmeans_iter_given = kmeans_iter->count() > 0;
    args.reg_covar_given = reg_covar->count() > 0;
    args.prob_epsilon_given = prob_epsilon->count() > 0;
    if (args.family == "binomial") args.data.binomial_trials = args.trials;
  }
};

// `flags` is the caller's, and lives as long as the parse: --seed is parsed into its text.
void add_em_options(CLI::App* app, emix::cli::EmArgs& args, const std::string& n_init_help,
                    EmFlags& flags) {
  flags.seed = std::to_string(args.seed);
  flags.family = app->add_option("--family", args.family, "mixture family")
                     ->check(CLI::IsMember(kFamilies))
                     ->capture_default_str();
  flags.trials =
      app->add_option("--trials", args.trials, "binomial: trials per entry (counts in 0..M)");
  flags.init = app->add_option("--init", args.init, "initialisation")
                   ->check(CLI::IsMember(kInits))
                   ->capture_default_str();
  flags.kmeans_iter =
      app->add_option("--kmeans-iter", args.kmeans_iter,
                      "kmeans++: k-means steps after the seeding (0: the seeding alone, each "
                      "row assigned to its nearest seed, as the Python package's "
                      "init_params='k-means++'; scikit-learn's starts from the seed rows alone)")
          ->capture_default_str();
  app->add_option("--sample-weight", args.sample_weight,
                  "per-row weights (N values, .npy or text), acting as repetition counts");
  app->add_option("--n-init", args.n_init, n_init_help)->capture_default_str();
  add_max_iter_option(app, args.max_iter);
  app->add_option("--tol", args.tol,
                  "stop when the mean log-likelihood changes by less (0: run --max-iter)")
      ->capture_default_str();
  flags.reg_covar =
      app->add_option("--reg-covar", args.reg_covar, "Gaussian: added to covariance diagonals")
          ->capture_default_str();
  flags.prob_epsilon = app->add_option("--prob-epsilon", args.prob_epsilon,
                                       "Bernoulli / binomial probabilities kept in [eps, 1 - eps]")
                           ->capture_default_str();
  app->add_option("--seed", flags.seed, "random seed, 0 to 2^64 - 1")->capture_default_str();
}

// One line, at most about 1,000 characters, printable: a message may quote a file name or a
// command-line value, and neither may break the one-line rule or send a terminal control bytes.
std::string one_printable_line(const std::string& message) {
  constexpr std::size_t kMaxLength = 1000;
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < message.size() && out.size() < kMaxLength; ++i) {
    const auto c = static_cast<unsigned char>(message[i]);
    if (c < 0x20 || c == 0x7f) {
      out += c == '\n' ? "\\n" : std::string("\\x") + kHex[c >> 4] + kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() >= kMaxLength) out += "... (message cut)";
  return out;
}

// Set once the command has reported its error and is only exiting: a SIGTERM then (mpirun ending
// the other ranks of a failed job) has nothing to add.
volatile sig_atomic_t g_error_reported = 0;

// Prints the error, except on a rank other than 0 when every rank holds the same one (an
// argument error, or a failure raised on every rank): `mpirun -n 64` printed it 64 times.
int report_error(const std::string& message, int code, bool same_on_every_rank = false) {
  if (!same_on_every_rank || emix::cli::mpi_rank() == 0) {
    std::fprintf(stderr, "emix: error: %s\n", one_printable_line(message).c_str());
    // Files are replaced whole or not at all; what went to standard output, a FIFO or a device
    // cannot be taken back.
    if (emix::io::in_place_output_begun()) {
      std::fputs(
          "emix: note: an output written in place (standard output, a FIFO or a device) "
          "was left incomplete\n",
          stderr);
    }
    std::fflush(stderr);
  }
  g_error_reported = 1;
  if (same_on_every_rank) emix::cli::wait_for_every_rank();
  return code;
}

// The signals that end the program through stop_on_signal: those that ask it to stop, and those
// whose default would end it without a word and leave its temporaries (a CPU-time limit, an alarm,
// a user signal). SIGPROF and SIGVTALRM are profilers'.
constexpr int kStopSignals[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
                                SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU};

const char* signal_name(int signal_number) {
  switch (signal_number) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGALRM:
      return "SIGALRM";
    case SIGXCPU:
      return "SIGXCPU";
    default:
      return "a signal";
  }
}

// The end of a message of a command stopped part way: what it leaves of its outputs (files
// are replaced whole or not at all; what went to standard output, a FIFO or a device cannot be
// taken back). Async-signal-safe.
void write_what_is_left() {
  static constexpr char kDiscarded[] = "; no output was left half written\n";
  static constexpr char kIncomplete[] =
      "; an output written in place (standard output, a FIFO or a device) was left incomplete, "
      "no file was left half written\n";
  const ssize_t ignored = emix::io::in_place_output_begun()
                              ? ::write(2, kIncomplete, sizeof kIncomplete - 1)
                              : ::write(2, kDiscarded, sizeof kDiscarded - 1);
  (void)ignored;
}

// A signal that asks the program to stop ends it here and now, in the middle of a fit or a
// write: the temporaries are removed (the destructors that would remove them do not run after
// _exit) and the exit code is the shell's 128 + signal number. Only async-signal-safe calls.
extern "C" void stop_on_signal(int signal_number) {
  using emix::cli::OutputStage;
  if (emix::cli::g_output_stage == OutputStage::kBeingRenamed) {
    emix::cli::g_deferred_stop_signal = signal_number;
    // The renames may have ended since the stage was read, and their end found no signal yet:
    // then whichever side takes the signal from g_deferred_stop_signal first handles it.
    if (emix::cli::g_output_stage == OutputStage::kBeingRenamed ||
        emix::cli::g_deferred_stop_signal.exchange(0) == 0) {
      return;
    }
  }
  emix::io::remove_temporary_files();
  if (g_error_reported) ::_exit(128 + signal_number);
  const char prefix[] = "emix: stopped by ";
  const char in_place[] = " after its outputs were written\n";
  const char* name = signal_name(signal_number);
  ssize_t ignored = ::write(2, prefix, sizeof prefix - 1);
  ignored = ::write(2, name, std::strlen(name));
  if (emix::cli::g_output_stage == OutputStage::kAllInPlace) {
    ignored = ::write(2, in_place, sizeof in_place - 1);
  } else {
    write_what_is_left();
  }
  (void)ignored;
  ::_exit(128 + signal_number);
}

// SIGBUS from reading a mapped file past its end (BUS_ADRERR): another program truncated an
// input that emix reads through a mapping (a .npy used in place, or --memory-map). It ends the
// command as an input error would, temporaries removed. Any other SIGBUS keeps its default
// action: the handler steps aside and the faulting access repeats.
extern "C" void stop_on_bus_error(int signal_number, siginfo_t* info, void*) {
  if (info == nullptr || info->si_code != BUS_ADRERR) {
    ::signal(signal_number, SIG_DFL);
    return;
  }
  emix::io::remove_temporary_files();
  const char message[] =
      "emix: error: an input file read through a memory mapping ended before its data did: "
      "another program truncated or rewrote it while emix ran (--no-memory-map reads a private "
      "copy)";
  const ssize_t ignored = ::write(2, message, sizeof message - 1);
  (void)ignored;
  write_what_is_left();
  ::_exit(2);
}

void install_signal_handlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = stop_on_signal;
  sigfillset(&action.sa_mask);  // one handler at a time: a second signal waits
  for (const int signal_number : kStopSignals) {
    struct sigaction previous;
    // A signal the parent set to be ignored (nohup, a background job's SIGINT) stays ignored,
    // and one a preloaded library handles stays its.
    if (::sigaction(signal_number, nullptr, &previous) == 0 &&
        ((previous.sa_flags & SA_SIGINFO) != 0 || previous.sa_handler != SIG_DFL)) {
      continue;
    }
    ::sigaction(signal_number, &action, nullptr);
  }
  struct sigaction bus;
  std::memset(&bus, 0, sizeof bus);
  bus.sa_sigaction = stop_on_bus_error;
  bus.sa_flags = SA_SIGINFO;
  sigfillset(&bus.sa_mask);
  ::sigaction(SIGBUS, &bus, nullptr);
  // A FIFO or pipe whose reader went away: the write fails with EPIPE and the command ends
  // through its normal error path (temporaries removed), instead of being killed by SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  // Likewise a file past the size limit (ulimit -f): the write fails with EFBIG and the command
  // reports it, where SIGXFSZ killed it silently and left its temporary behind.
  ::signal(SIGXFSZ, SIG_IGN);
}

// glibc serves each block over 32 MiB (a D x D matrix from D = 2048) with a fresh mmap, zeroed
// page by page on first touch, and unmaps it when freed: every iteration of a D = 2048 fit took
// 128,000 page faults (0.3 s of system time). This one-fit process keeps freed memory for reuse
// instead: 0.80 of the wall time at 4000 x 2048, K = 2, 10 iterations
// (bench/results/cpu-full-threads-in-tiles-2026-12-03.md). A library cannot set this for the
// program that links it; GLIBC_TUNABLES does the same for any process.
void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
#endif
}

// CLI11's "Could not convert: --n = 1e6" says what failed, not what was wanted: the value and
// the kind of value the option takes ("--n 1e6: not a whole number in digits (INT) within the
// option's range"), found by the option's name in the command given.
std::string conversion_message(const CLI::App& app, const std::string& what) {
  const std::string prefix = "Could not convert: ";
  const std::size_t equals = what.find(" = ");
  if (what.rfind(prefix, 0) != 0 || equals == std::string::npos) return what;
  const std::string name = what.substr(prefix.size(), equals - prefix.size());
  const std::string value = what.substr(equals + 3);
  std::string type, command_name = "COMMAND";
  for (const CLI::App* command : app.get_subcommands()) {
    if (const CLI::Option* option = command->get_option_no_throw(name)) {
      type = option->get_type_name();
      command_name = command->get_name();
    }
  }
  std::string wanted = "a value of the option's type";
  if (type == "INT") wanted = "a whole number in digits (INT) within the option's range";
  if (type == "UINT") wanted = "a whole number >= 0 in digits (UINT) within the option's range";
  if (type == "FLOAT") wanted = "a number (FLOAT)";
  return name + " " + value + ": not " + wanted + "; emix " + command_name +
         " --help lists the options";
}

// Edits (insertions, deletions, substitutions) between two names.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The option of `command` a user likely meant by `typed`, an option it does not have: the same
// name in other case or with '_' for '-', scikit-learn's name for it, one a typo away, one it
// begins or that begins it (--cov, --covariance-type), one two typos away; "" when none is close.
std::string nearest_option(const CLI::App& command, const std::string& typed) {
  std::string normal = typed;
  for (char& c : normal) c = c == '_' ? '-' : c;
  // Names a user of scikit-learn (or of another command) would type.
  static const std::pair<const char*, const char*> kOtherNames[] = {
      {"--random-state", "--seed"},       {"--covariance-type", "--covariance"},
      {"--init-params", "--init"},        {"--n-iter", "--max-iter"},
      {"--n-clusters", "--n-components"}, {"--kmax", "--n-components"},
      {"--k-max", "--n-components"},      {"--dims", "--d"},
  };
  std::vector<std::string> long_names, short_names;
  for (const CLI::Option* option : command.get_options()) {
    for (const std::string& name : option->get_lnames()) long_names.push_back("--" + name);
    for (const std::string& name : option->get_snames()) short_names.push_back("-" + name);
  }
  for (const auto& [theirs, ours] : kOtherNames) {
    if (normal == theirs &&
        std::find(long_names.begin(), long_names.end(), ours) != long_names.end()) {
      return ours;
    }
  }
  const auto lower = [](std::string name) {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
  };
  // A short option only by its case (-K for -k): one letter is too far from any other.
  if (normal.size() == 2) {
    for (const std::string& name : short_names) {
      if (lower(name) == lower(normal)) return name;
    }
    return {};
  }
  std::string by_prefix, by_two;
  for (const std::string& name : long_names) {
    const std::size_t distance = edit_distance(lower(normal), name);
    if (distance <= 1) return name;
    const bool prefix = std::min(name.size(), normal.size()) >= 5 &&
                        (normal.rfind(name, 0) == 0 || name.rfind(normal, 0) == 0);
    if (prefix && by_prefix.empty()) by_prefix = name;
    if (distance == 2 && by_two.empty()) by_two = name;
  }
  return by_prefix.empty() ? by_two : by_prefix;
}

// CLI11's messages for a command line it cannot parse list what it did not expect, values first
// ("The following arguments were not expected: 2 --n-component"), or the option alone ("INPUT
// is required", though an INPUT was given before -o). Each is said as the command's own errors
// are: the option it does not know and the one meant, the arguments the command takes.
std::string parse_error_message(CLI::App& app, const CLI::ParseError& error, int argc,
                                char** argv) {
  const std::string what = error.what();
  const CLI::App* command = nullptr;
  for (const CLI::App* known : app.get_subcommands([](CLI::App*) { return true; })) {
    if (argc > 1 && known->get_name() == argv[1]) command = known;
  }
  if (command == nullptr) return what;
  const std::string name = command->get_name();
  std::string usage = "emix " + name;
  for (const CLI::Option* option : command->get_options()) {
    if (option->get_positional()) usage += " " + option->get_name();
  }
  usage += " [options]";
  const std::string help = "emix " + name + " --help lists the options";
  // An option the command does not have comes first: CLI11 may find a required one missing
  // first ("--output is required" for `fit x.npy -k 2 --max_iter 5`).
  for (int i = 2; i < argc; ++i) {
    std::string typed = argv[i];
    if (typed == "--") break;
    // The value of the option before it, whatever it looks like (--sample-weight -w.csv).
    const CLI::Option* before = i > 2 ? command->get_option_no_throw(argv[i - 1]) : nullptr;
    if (before != nullptr && before->get_expected_min() > 0) continue;
    typed = typed.substr(0, typed.find('='));
    // CLI11 takes "-1w.csv", "-.5", "-inf" and "-" for values, as it does negative numbers.
    double number;
    if (typed.size() < 2 || typed[0] != '-' || std::isdigit(static_cast<unsigned char>(typed[1])) ||
        typed[1] == '.' || CLI::detail::lexical_cast(typed, number)) {
      continue;
    }
    std::string meant;
    if (typed[1] != '-') {
      // "-k3" is -k with its value; "-max_iter", whose -m no option has, meant --max_iter, and
      // "-K3" -k.
      if (command->get_option_no_throw(typed.substr(0, 2)) != nullptr || typed == "-h") continue;
      if (typed.size() > 2) meant = nearest_option(*command, "-" + typed);
      if (meant.empty() && typed.size() > 2) meant = nearest_option(*command, typed.substr(0, 2));
    } else if (command->get_option_no_throw(typed) != nullptr || typed == "--help") {
      continue;
    }
    if (meant.empty()) meant = nearest_option(*command, typed);
    return "emix " + name + " has no option " + typed +
           (meant.empty() ? "" : ": did you mean " + meant + "?") + " (" + help + ")";
  }
  // An argument too many, or one missing: what the command takes.
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr ||
      (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr &&
       what.find(" is required") != std::string::npos)) {
    return what + ": " + usage + " (" + help + ")";
  }
  const std::string at_most = ": At Most 1 required but received ";
  if (const std::size_t at = what.find(at_most); at != std::string::npos) {
    return what.substr(0, at) + " is given " + what.substr(at + at_most.size()) +
           " times: give it once";
  }
  return what;
}

// fn(option) for every option of every command.
template <typename Fn>
void for_each_option(CLI::App& app, Fn&& fn) {
  for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
    for (CLI::Option* option : command->get_options()) fn(option);
  }
}

// CLI11 converts an empty value to the type's zero (lexical_assign), so `--tol ""` or
// `--max-iter "$UNSET"` ran with 0 and no word, and an empty path option (`--sample-weight ""`)
// was taken as not given: every option of every command refuses an empty value instead.
// Validators see the text before it is converted, after the option's own checks.
void refuse_empty_values(CLI::App& app) {
  for_each_option(app, [](CLI::Option* option) {
    const std::string type = option->get_type_name();
    const bool number = type == "INT" || type == "UINT" || type == "FLOAT";
    if (!number && type != "TEXT") return;
    const std::string problem = number ? "the value \"\" is not a number (" + type + ")"
                                       : std::string("the value \"\" is empty");
    option->check(CLI::Validator(
        [problem](const std::string& value) { return value.empty() ? problem : std::string(); }, "",
        "not empty"));
  });
}

// CLI11 reads a whole number with a leading 0 as octal and takes 0x, 0o and 0b prefixes, so
// `-k 010` (a zero-padded value from `seq -w`) fitted 8 components and `-k 08` was refused:
// every whole-number option takes decimal digits only, leading zeros dropped.
void read_whole_numbers_as_decimal(CLI::App& app) {
  for_each_option(app, [](CLI::Option* option) {
    const std::string type = option->get_type_name();
    if (type != "INT" && type != "UINT") return;
    option->transform(CLI::Validator(
        [type](std::string& value) {
          const std::size_t digits = !value.empty() && (value[0] == '-' || value[0] == '+');
          if (value.size() == digits) return std::string();  // empty: refuse_empty_values
          if (value.find_first_not_of("0123456789", digits) != std::string::npos) {
            return "the value \"" + value + "\" is not a whole number in decimal digits (" + type +
                   ")";
          }
          const std::size_t first_nonzero = value.find_first_not_of('0', digits);
          value.erase(digits, std::min(first_nonzero, value.size() - 1) - digits);
          // CLI11 saturates a 64-bit option at its limit (--chunk-rows 99999999999999999999 ran
          // as 2^63 - 1); narrower options it refuses itself.
          errno = 0;
          if (type == "UINT") {
            (void)std::strtoull(value.c_str(), nullptr, 10);
          } else {
            (void)std::strtoll(value.c_str(), nullptr, 10);
          }
          if (errno == ERANGE) {
            return "the value \"" + value + "\" is out of the option's range";
          }
          return std::string();
        },
        "", "decimal"));
  });
}

// CLI11 converts a number beyond double's range to infinity (`--tol 1e400`) and one below its
// smallest to 0 (`--reg-covar 1e-400`, silently no regularisation), and the refusal that followed
// an infinity echoed "inf" rather than what was typed: every FLOAT option refuses such a value.
void refuse_numbers_out_of_double_range(CLI::App& app) {
  for_each_option(app, [](CLI::Option* option) {
    if (option->get_type_name() != "FLOAT") return;
    option->check(CLI::Validator(
        [](const std::string& value) {
          errno = 0;
          char* end = nullptr;
          const double number = std::strtod(value.c_str(), &end);
          // Not a number as a whole: CLI11's conversion names it.
          if (errno != ERANGE || end == value.c_str() || *end != '\0') return std::string();
          if (std::isinf(number)) {
            return "the value \"" + value +
                   "\" is beyond the range of a double (FLOAT, of size up to about 1.8e308)";
          }
          if (number == 0) {
            return "the value \"" + value +
                   "\" is below the smallest positive double (FLOAT, 4.9e-324) and would be 0";
          }
          return std::string();  // a subnormal: held, with fewer digits
        },
        "", "within double's range"));
  });
}

}  // namespace

int main(int argc, char** argv) {
  emix::cli::hand_over_to_mpi_program(argv);
  emix::cli::open_closed_standard_streams();
  keep_freed_memory();
  const emix::cli::MpiSession mpi(&argc, &argv);
  install_signal_handlers();
  if (const auto differ = emix::cli::arguments_differ_between_ranks(argc, argv)) {
    g_error_reported = 1;  // by the first rank that differs; the others stop without a word
    if (!differ->empty()) report_error(*differ, 2);
    emix::cli::wait_for_every_rank();
    return 2;
  }
  CLI::App app{
      "emix: mixture models (Gaussian, Bernoulli, binomial) fitted by EM on CPUs and "
      "NVIDIA GPUs"};
  app.set_version_flag("--version", std::string("emix ") + emix::kVersion);
  app.require_subcommand(1);

  emix::cli::FitArgs fit_args;
  CLI::App* fit = app.add_subcommand("fit", "fit a mixture to INPUT and write MODEL.json");
  fit->add_option("INPUT", fit_args.input, "data: .npy, CSV / whitespace text, or raw binary")
      ->required();
  CLI::Option* k_opt = fit->add_option("-k,--n-components", fit_args.k,
                                       "number of components (default: the init model's)");
  CLI::Option* covariance_opt =
      fit->add_option("--covariance", fit_args.covariance, "Gaussian covariance type")
          ->check(CLI::IsMember(kCovariances))
          ->capture_default_str();
  EmFlags fit_em;
  add_em_options(fit, fit_args, "restarts; the best log-likelihood wins", fit_em);
  fit->add_option("--init-model", fit_args.init_model,
                  "start from this model, used exactly as given (not with --init, "
                  "--kmeans-iter or --n-init above 1)");
  fit->add_flag("--fixed-weights", fit_args.fixed_weights, "keep the initial mixing weights");
  fit->add_option("-o,--output", fit_args.output, "the fitted model (JSON)")->required();
  fit->add_option("--labels", fit_args.labels, "also write each row's component (int32 .npy)");
  fit->add_option("--responsibilities", fit_args.responsibilities,
                  "also write the N x K responsibilities (float64 .npy)");
  const MemoryMapFlags fit_map = add_input_options(fit, fit_args, "instead of into memory");

  emix::cli::SelectArgs select_args;
  CLI::App* select = app.add_subcommand(
      "select",
      "fit a grid of numbers of components x covariance types in shared passes over INPUT, print "
      "log-likelihood, BIC, AIC and ICL of each, and keep the best");
  select->add_option("INPUT", select_args.input, "data: .npy, CSV / whitespace text, or raw binary")
      ->required();
  select
      ->add_option("-k,--n-components", select_args.k_grid,
                   "the K grid: a range 1..16, a list 1,2,4,8, or both (1..4,8)")
      ->capture_default_str();
  CLI::Option* select_covariance =
      select
          ->add_option(
              "--covariance", select_args.covariances,
              "Gaussian covariance types to try, comma-separated (full,diag,spherical,tied)")
          ->capture_default_str();
  select->add_option("--criterion", select_args.criterion, "what picks the best model (lowest)")
      ->check(CLI::IsMember({"bic", "aic", "icl"}))
      ->capture_default_str();
  EmFlags select_em;
  add_em_options(select, select_args, "restarts of each candidate", select_em);
  select->add_option("-o,--output", select_args.output,
                     "the best model (JSON, as emix fit -o writes it)");
  select->add_option("--table", select_args.table,
                     "every candidate's results: FILE.csv or FILE.json");
  CLI::Option* plot_opt = select->add_option(
      "--plot", select_args.plot,
      "the criteria against K, one line per covariance type and criterion (PNG)");
  select->add_option("--plot-width", select_args.plot_width, "plot width, pixels")
      ->needs(plot_opt)
      ->capture_default_str();
  select->add_option("--plot-height", select_args.plot_height, "plot height, pixels")
      ->needs(plot_opt)
      ->capture_default_str();
  const MemoryMapFlags select_map =
      add_input_options(select, select_args, "each chunk serving every candidate");
  // select's table goes to stdout, and --quiet leaves it out too.
  select->get_option("--quiet")->description(
      "no table, progress or summary (warnings still print)");

  emix::cli::PredictArgs predict_args;
  CLI::App* predict =
      app.add_subcommand("predict", "write the most probable component of each row");
  predict->add_option("MODEL", predict_args.model, "model file (JSON)")->required();
  predict->add_option("INPUT", predict_args.input, "data")->required();
  predict->add_option("-o,--output", predict_args.output, "labels (int32 .npy)")->required();
  predict->add_flag("--proba", predict_args.proba,
                    "write the N x K responsibilities (float64) instead of labels");
  const MemoryMapFlags predict_map =
      add_input_options(predict, predict_args, "the results streamed to their file");

  emix::cli::ScoreArgs score_args;
  CLI::App* score =
      app.add_subcommand("score", "print the mean log-likelihood per row of INPUT under MODEL");
  score->add_option("MODEL", score_args.model, "model file (JSON)")->required();
  score->add_option("INPUT", score_args.input, "data")->required();
  const MemoryMapFlags score_map = add_input_options(score, score_args, "summed chunk by chunk");

  emix::cli::GenerateArgs gen_args;
  CLI::App* generate = app.add_subcommand(
      "generate", "draw a random well-separated mixture and stream N rows from it to a .npy file");
  generate->add_option("--n", gen_args.n, "rows")->required();
  generate->add_option("--d", gen_args.d, "columns")->required();
  generate->add_option("-k,--n-components", gen_args.k, "components")->required();
  std::string generate_seed = "0";
  generate->add_option("--seed", generate_seed, "random seed, 0 to 2^64 - 1")
      ->capture_default_str();
  generate->add_option("-o,--output", gen_args.output, "the data (.npy)")->required();
  generate->add_option("--truth", gen_args.truth, "also write the true model (JSON)");
  generate->add_option("--family", gen_args.family, "mixture family")
      ->check(CLI::IsMember(kFamilies))
      ->capture_default_str();
  CLI::Option* gen_covariance =
      generate->add_option("--covariance", gen_args.covariance, "Gaussian covariance type")
          ->check(CLI::IsMember(kCovariances))
          ->capture_default_str();
  CLI::Option* gen_trials =
      generate->add_option("--trials", gen_args.trials, "binomial: trials per entry")
          ->capture_default_str();
  generate->add_option("--precision", gen_args.precision, "element type written")
      ->check(CLI::IsMember({"float", "double"}))
      ->capture_default_str();
  generate
      ->add_option("--block-rows", gen_args.block_rows,
                   "rows drawn (in parallel) and written at a time, in whole units of "
                   "min(65536, 2^27 / D) rows and at most 2^27 values; the data do not depend on "
                   "it")
      ->capture_default_str();
  generate->add_flag("-q,--quiet", gen_args.quiet, "no summary on stderr");

  emix::cli::DemoArgs demo_args;
  CLI::App* demo = app.add_subcommand(
      "demo", "the seed's problems solved, then a 1,000,000-point fit timed on each engine");
  demo->add_option("--threads", demo_args.threads, "CPU engine threads (0: OpenMP's default)")
      ->capture_default_str();

  refuse_empty_values(app);
  read_whole_numbers_as_decimal(app);
  refuse_numbers_out_of_double_range(app);

  // A mistyped command: CLI11 would say only "A subcommand is required".
  if (argc > 1 && argv[1][0] != '-') {
    std::string known;
    bool found = false;
    for (const CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
      known += (known.empty() ? "" : ", ") + command->get_name();
      found |= command->get_name() == argv[1];
    }
    if (!found) {
      return report_error(
          std::string("unknown command '") + argv[1] + "' (commands: " + known + "; emix --help)",
          2, true);
    }
  }
  // The command's status, unless what it printed could not all be written: `emix score m.json
  // x.npy > r.txt` on a full disk must not end in success with an empty r.txt.
  const auto with_output_checked = [](int status) {
    errno = 0;
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
      const std::string why = errno != 0 ? std::strerror(errno) : "write error";
      return report_error("standard output: " + why + "; the results printed there are lost", 2);
    }
    return status;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ConversionError& e) {
    return report_error(conversion_message(app, e.what()), 2, true);
  } catch (const CLI::ParseError& e) {
    // --help, --version: printed on standard output, whose loss (> /dev/full) is an error too.
    if (e.get_exit_code() == 0) return with_output_checked(app.exit(e));
    return report_error(parse_error_message(app, e, argc, argv), 2, true);
  }
  try {
    if (*fit) {
      try {
        fit_em.read_into(fit_args);
      } catch (const emix::Error& e) {
        return report_error(e.what(), 2, true);  // the command line's, alike on every rank
      }
      fit_args.k_given = k_opt->count() > 0;
      fit_args.family_given = fit_em.family->count() > 0;
      fit_args.covariance_given = covariance_opt->count() > 0;
      fit_args.init_given = fit_em.init->count() > 0;
      fit_args.memory_map = fit_map.memory_map();
      // Under mpirun only rank 0 writes, and its refusal must reach every rank: run_fit checks.
      if (!emix::cli::mpi_active()) {
        emix::cli::refuse_binary_on_terminal(
            {{"--labels", fit_args.labels, ".npy"},
             {"--responsibilities", fit_args.responsibilities, ".npy"}});
      }
      try {
        emix::cli::standard_streams_for_dashes(
            {{"INPUT", &fit_args.input},
             {"--init-model", &fit_args.init_model},
             {"--sample-weight", &fit_args.sample_weight}},
            {{"-o", &fit_args.output},
             {"--labels", &fit_args.labels},
             {"--responsibilities", &fit_args.responsibilities}});
      } catch (const emix::Error& e) {
        return report_error(e.what(), 2, true);  // the command line's, alike on every rank
      }
      return with_output_checked(emix::cli::run_fit(fit_args));
    }
    if (*select) {
      try {
        select_em.read_into(select_args);
      } catch (const emix::Error& e) {
        return report_error(e.what(), 2, true);  // the command line's, alike on every rank
      }
      select_args.covariance_given = select_covariance->count() > 0;
      select_args.memory_map = select_map.memory_map();
      // --table names its format by its extension, so it has no "-". Under mpirun only rank 0
      // writes, and its refusal must reach every rank: run_select checks.
      if (!emix::cli::mpi_active()) {
        emix::cli::refuse_binary_on_terminal({{"--plot", select_args.plot, "PNG"}});
      }
      try {
        select_args.stdout_taken = emix::cli::standard_streams_for_dashes(
            {{"INPUT", &select_args.input}, {"--sample-weight", &select_args.sample_weight}},
            {{"-o", &select_args.output}, {"--plot", &select_args.plot}});
      } catch (const emix::Error& e) {
        return report_error(e.what(), 2, true);  // the command line's, alike on every rank
      }
      return with_output_checked(emix::cli::run_select(select_args));
    }
    // Under mpirun only `fit` and `select` are distributed; every other command runs once, on
    // rank 0.
    if (emix::cli::mpi_rank() != 0) return 0;
    if (*predict) {
      predict_args.memory_map = predict_map.memory_map();
      emix::cli::refuse_binary_on_terminal({{"-o", predict_args.output, ".npy"}});
      emix::cli::standard_streams_for_dashes(
          {{"MODEL", &predict_args.model}, {"INPUT", &predict_args.input}},
          {{"-o", &predict_args.output}});
      return with_output_checked(emix::cli::run_predict(predict_args));
    }
    if (*score) {
      score_args.memory_map = score_map.memory_map();
      emix::cli::standard_streams_for_dashes(
          {{"MODEL", &score_args.model}, {"INPUT", &score_args.input}}, {});
      return with_output_checked(emix::cli::run_score(score_args));
    }
    if (*generate) {
      gen_args.seed = emix::cli::parse_seed(generate_seed, "--seed");
      gen_args.covariance_given = gen_covariance->count() > 0;
      gen_args.trials_given = gen_trials->count() > 0;
      emix::cli::refuse_binary_on_terminal({{"-o", gen_args.output, ".npy"}});
      emix::cli::standard_streams_for_dashes(
          {}, {{"-o", &gen_args.output}, {"--truth", &gen_args.truth}});
      return with_output_checked(emix::cli::run_generate(gen_args));
    }
    if (*demo) return with_output_checked(emix::cli::run_demo(demo_args));
    return report_error("no command given (emix --help lists them)", 2);
  } catch (const emix::OptionError& e) {
    // The library names its option ("max_iter"); a user of the program typed the flag.
    return report_error(emix::cli::option_error_message(e), 2, emix::cli::raised_on_every_rank(e));
  } catch (const emix::NumericalError& e) {
    return report_error(emix::cli::in_flags(e.what()), 2, emix::cli::raised_on_every_rank(e));
  } catch (const emix::OutOfMemory& e) {  // these name options, never files
    return report_error(emix::cli::in_flags(e.what()), 2, emix::cli::raised_on_every_rank(e));
  } catch (const emix::TooFewRows& e) {
    return report_error(emix::cli::in_flags(e.what()), 2, emix::cli::raised_on_every_rank(e));
  } catch (const emix::Error& e) {
    return report_error(e.what(), 2, emix::cli::raised_on_every_rank(e));
  } catch (const std::bad_alloc&) {
    // Not a bug (exit 1): a run larger than the memory the estimate before it foresaw, or than
    // a limit (ulimit -v, a container's) the estimate cannot see.
    return report_error(
        "out of memory: this machine (or a limit on this process) could not give the memory the "
        "run needs; use fewer components or restarts, or covariance diag or spherical for wide "
        "data",
        2);
  } catch (const std::exception& e) {
    return report_error(e.what(), 1, emix::cli::raised_on_every_rank(e));
  } catch (...) {
    return report_error("unknown failure", 1);
  }
}

#include "cli/common.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cli/mpi_session.hpp"
#include "core/float32_rounding.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"
#include "io/common.hpp"

namespace emix::cli {

namespace fs = std::filesystem;

std::string format(const char* fmt, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, fmt, value);
  return buffer;
}

namespace {
// The library's option names and the program's flags for them.
constexpr std::pair<const char*, const char*> kFlags[] = {
    {"n_components", "-k"},           {"trials", "--trials"},
    {"max_iter", "--max-iter"},       {"tol", "--tol"},
    {"reg_covar", "--reg-covar"},     {"prob_epsilon", "--prob-epsilon"},
    {"n_init", "--n-init"},           {"n_threads", "--threads"},
    {"chunk_rows", "--chunk-rows"},   {"init_model", "--init-model"},
    {"kmeans_iter", "--kmeans-iter"}, {"fixed_weights", "--fixed-weights"}};
}  // namespace

std::string in_flags(std::string text) {
  std::vector<std::pair<const char*, const char*>> words = {
      {"max_iter or tol", "--max-iter or --tol"}};
  words.insert(words.end(), std::begin(kFlags), std::end(kFlags));
  // A library option the program has no flag for is no advice to its user.
  for (const char* clause : {" (or, from the library, a smaller init_max_rows: at least "
                             "n_components)"}) {
    const std::size_t at = text.find(clause);
    if (at != std::string::npos) text.erase(at, std::strlen(clause));
  }
  const auto part_of_a_word = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  };
  for (const auto& [word, flag] : words) {
    const std::string from = word;
    std::size_t at = 0;
    while ((at = text.find(from, at)) != std::string::npos) {
      const std::size_t end = at + from.size();
      if ((at > 0 && part_of_a_word(text[at - 1])) ||
          (end < text.size() && part_of_a_word(text[end]))) {
        at = end;
        continue;
      }
      // "n_components = 3" reads "-k 3", as it is typed.
      const bool assigned = text.compare(end, 3, " = ") == 0;
      text.replace(at, from.size() + (assigned ? 2 : 0), flag);
      at += std::strlen(flag);
    }
  }
  return text;
}

void print_fit_warning(const std::string& text, bool quiet, const std::string& who) {
  const bool note = text.rfind("initialisation used a random sample", 0) == 0;
  if (note && quiet) return;
  std::fprintf(stderr, "%s: %s%s\n", note ? "note" : "warning", who.c_str(),
               in_flags(text).c_str());
}

std::string lower_extension(const std::string& path) { return io::detail::lower_extension(path); }

void require_output_extension(const std::string& path, const std::string& option,
                              const std::string& extension, const std::string& what) {
  const std::string given = lower_extension(path);
  if (given.empty() || given == extension) return;
  throw InvalidArgument(option + " " + path + ": writes " + what + "; name it " + extension);
}

void validate(const DataArgs& args) {
  if (!args.raw_dtype.empty() && args.raw_cols < 1) {
    throw InvalidArgument(
        "--dtype " + args.raw_dtype + " reads raw binary data and needs --dims D >= 1 (the " +
        "number of columns)" +
        (args.raw_cols != 0 ? ", not " + std::to_string(args.raw_cols) : std::string()));
  }
  if (args.raw_cols != 0 && args.raw_dtype.empty()) {
    throw InvalidArgument("--dims " + std::to_string(args.raw_cols) +
                          " reads raw binary data and needs --dtype (the element type on disk)");
  }
  const Device device = parse_device(args.device);
  if (device == Device::kGpu && !gpu_available()) {
    throw NotAvailable("--device gpu: " + gpu_unavailable_reason() + "; use --device cpu or auto");
  }
  emix::validate(engine_options(args));
  (void)resolve_precision(args);  // its refusal before any file is opened
}

EngineOptions engine_options(const DataArgs& args) {
  EngineOptions options;
  options.device = parse_device(args.device);
  options.n_threads = args.threads;
  options.chunk_rows = args.chunk_rows;
  return options;
}

std::string rounded_float_counts(int trials) {
  return "--precision float: float32 rounds whole numbers above 2^24 = 16777216, so with " +
         std::to_string(trials) + " trials counts would be read as other counts";
}

DType resolve_precision(const DataArgs& args) {
  if (args.binomial_trials >= kFloatCountTrialsLimit) {
    if (args.precision == "float") {
      throw InvalidArgument(rounded_float_counts(args.binomial_trials) +
                            "; use --precision double (auto chooses it)");
    }
    return DType::kFloat64;
  }
  if (args.precision == "float") return DType::kFloat32;
  if (args.precision == "double") return DType::kFloat64;
  const Device device = parse_device(args.device);
  const bool on_gpu = device == Device::kGpu || (device == Device::kAuto && gpu_available());
  return on_gpu ? DType::kFloat32 : DType::kFloat64;
}

namespace {

io::ReadOptions read_options(const std::string& path, const DataArgs& args) {
  const std::string extension = lower_extension(path);
  if (args.raw_dtype.empty() && (extension == ".bin" || extension == ".raw")) {
    // The library's own message names its ReadOptions fields as well as the flags.
    throw InvalidArgument(path + ": raw binary (by its name, *" + extension +
                          "), which needs --dtype and --dims: the element type on disk and the "
                          "number of columns");
  }
  io::ReadOptions options;
  options.dtype = resolve_precision(args);
  if (!args.raw_dtype.empty()) {
    options.format = io::FileFormat::kRaw;
    options.raw_dtype = args.raw_dtype;
    options.raw_cols = args.raw_cols;
  }
  return options;
}

}  // namespace

HostMatrix load_data(const std::string& path, const DataArgs& args, bool require_finite,
                     std::int64_t first_row, std::int64_t row_count) {
  io::ReadOptions options = read_options(path, args);
  options.first_row = first_row;
  options.row_count = row_count;
  options.require_finite = require_finite;
  return io::read_matrix(path, options);
}

std::int64_t count_input_rows(const std::string& path, const DataArgs& args) {
  return io::count_rows(path, read_options(path, args));
}

bool reads_once(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode);
}

namespace {

// What a first line of numbers that could have been names, which the reader took for a row, is:
// the note after a fit, or the end of an error that names that line.
std::string first_line_read_as_row(const io::FirstLineGuess& guess) {
  if (guess.every_line_quoted) {
    return "numbers in quotes, read as a row, as the lines under it quote every cell too "
           "(csv.QUOTE_ALL); delete it if it is a header";
  }
  return std::string(
             "the numbers 0, 1, ... that pandas writes as column names, read as a row, "
             "as ") +
         (guess.only_line ? "no row follows it" : "the rows under it are whole numbers") +
         "; delete it if it is a header";
}

}  // namespace

void rethrow_in_file(const DataError& error, const DataFiles& files) {
  const bool weights = error.source() == DataError::Source::kSampleWeight;
  const std::string& path = weights ? files.sample_weight : files.data;
  if (path.empty()) throw InvalidArgument(error.what());
  const std::int64_t row = files.first_row + error.row();
  std::string message = path + ": row " + std::to_string(row);
  if (!weights && error.column() > 0) message += ", column " + std::to_string(error.column());
  message += " " + error.problem();
  // Looked up only now, on the way out: text rows and lines differ by headers and comments.
  if (weights || !files.data_raw) {
    const std::int64_t line = io::text_line_of_row(path, row);
    if (line > 0) message += " (line " + std::to_string(line) + ")";
    // The note after a fit says this of a line pandas' column names make; an error is the
    // only line on stderr, so it says it here (a Bernoulli file's "0,1,2,3" failed at its 2).
    io::FirstLineGuess guess;
    try {
      if (!weights && line > 0) guess = io::text_first_line_guess(path);
    } catch (const std::exception&) {
    }
    if (guess.line == line && line > 0 && !guess.read_as_header) {
      message += ": that line holds " + first_line_read_as_row(guess);
    }
  }
  throw InvalidArgument(message);
}

void rethrow_whole_input_in_file(const InvalidArgument& error, const DataFiles& files) {
  const std::string message = error.what();
  const std::string data = "data: ", weights = "sample weights ";
  if (!files.data.empty() && message.rfind(data, 0) == 0) {
    throw InvalidArgument(files.data + ": " + message.substr(data.size()));
  }
  if (!files.sample_weight.empty() && message.rfind(weights, 0) == 0) {
    throw InvalidArgument(files.sample_weight + ": the " + message);
  }
  for (const auto& [word, file] : {std::pair{std::string("model: "), files.model},
                                   std::pair{std::string("init model: "), files.init_model}}) {
    if (file.empty() || message.rfind(word, 0) != 0) continue;
    std::string named = file + ": " + message.substr(word.size());
    const std::string library_advice = "use float64 data";
    if (named.size() >= library_advice.size() &&
        named.compare(named.size() - library_advice.size(), library_advice.size(),
                      library_advice) == 0) {
      named.replace(named.size() - library_advice.size(), library_advice.size(),
                    "use --precision double");
    }
    throw InvalidArgument(named);
  }
  throw;
}

std::uint64_t parse_seed(const std::string& text, const std::string& option) {
  std::uint64_t value = 0;
  const char* first = text.data();
  const char* last = first + text.size();
  const auto result = std::from_chars(first, last, value);
  if (text.empty() || result.ptr != last || result.ec != std::errc()) {
    throw InvalidArgument(option + " " + text +
                          ": must be a whole number from 0 to 18446744073709551615");
  }
  return value;
}

namespace {

bool is_character_device(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISCHR(info.st_mode);
}

// The file a path not yet written will create: absolute (weakly_canonical leaves a relative
// path relative, so "a.npy" and "./a.npy" differed) and through a dangling link to its target.
fs::path path_written(const std::string& path, std::error_code& error) {
  fs::path resolved = fs::absolute(path, error);
  for (int link = 0; link < 40 && !error; ++link) {
    const fs::file_status status = fs::symlink_status(resolved, error);
    if (error || !fs::is_symlink(status)) break;
    const fs::path target = fs::read_symlink(resolved, error);
    resolved = target.is_absolute() ? target : resolved.parent_path() / target;
  }
  if (error == std::errc::no_such_file_or_directory) error.clear();  // not written yet
  return error ? fs::path() : fs::weakly_canonical(resolved, error);
}

// Whether two paths name one file: the same device and inode where both exist (the kernel
// follows /dev/stdin's links to a pipe, which no path names, and sees hard links), else the same
// file written (an output not yet written); never where a path cannot be resolved.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  const bool a_exists = ::stat(a.c_str(), &sa) == 0;
  const bool b_exists = ::stat(b.c_str(), &sb) == 0;
  if (a_exists && b_exists) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  if (a_exists != b_exists) return false;
  std::error_code ea, eb;
  const fs::path ca = path_written(a, ea);
  const fs::path cb = path_written(b, eb);
  return !ea && !eb && ca == cb;
}

// Whether a path names a terminal: /dev/tty, /dev/pts/N, or /dev/fd/1 where that is one. Only a
// character device is opened to ask (never a file or a FIFO, whose opening could block).
bool names_a_terminal(const std::string& path) {
  if (!is_character_device(path)) return false;
  const int fd = ::open(path.c_str(), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  const bool terminal = ::isatty(fd) != 0;
  ::close(fd);
  return terminal;
}

}  // namespace

void note_text_header(const std::string& input, const DataArgs& args) {
  std::error_code error;
  if (args.quiet || !args.raw_dtype.empty() || !fs::is_regular_file(input, error)) return;
  io::FirstLineGuess guess;
  try {
    guess = io::text_first_line_guess(input);
  } catch (const std::exception&) {
    return;  // read already; a note is not worth an error
  }
  if (guess.line > 0 && guess.read_as_header) {
    std::fprintf(stderr,
                 "%s: line %lld, whose cells are numbers, read as column names (a header), not as "
                 "a row\n",
                 input.c_str(), static_cast<long long>(guess.line));
  } else if (guess.line > 0) {
    // pandas' to_csv(index=False) of whole numbers: one row too many, said nothing of.
    std::fprintf(stderr, "%s: line %lld, %s\n", input.c_str(), static_cast<long long>(guess.line),
                 first_line_read_as_row(guess).c_str());
  }
}

void refuse_binary_on_terminal(const std::vector<BinaryOutput>& outputs) {
  for (const BinaryOutput& output : outputs) {
    const bool standard_output = output.path == "-" || output.path == "/dev/stdout";
    // Under mpirun (Open MPI) every rank's standard output is a pseudo-terminal that mpirun
    // reads, whether or not mpirun's own is redirected: a terminal here says nothing, and the
    // refusal could not be followed ("> FILE" was already there).
    if (standard_output && mpi_active()) continue;
    if (standard_output ? ::isatty(STDOUT_FILENO) == 0 : !names_a_terminal(output.path)) continue;
    const std::string typed = output.path == "/dev/stdout" ? "-" : output.path;
    throw InvalidArgument(
        output.option + " " + typed +
        (standard_output ? ": standard output is a terminal" : ": names a terminal") +
        ", and this output is " + output.kind +
        " (binary); redirect it (> FILE) or give a file name");
  }
}

namespace {
bool started_closed[3] = {false, false, false};
}  // namespace

void open_closed_standard_streams() {
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // The lowest free descriptor: fd itself, as those below it are open by now. Read-only, so
    // that what is printed there still fails, as it would on the closed descriptor: a result
    // printed to a closed stdout (`emix score ... >&-`) is an error, not discarded.
    const int opened = ::open("/dev/null", O_RDONLY);
    if (opened != fd && opened >= 0) {
      ::dup2(opened, fd);
      ::close(opened);
    }
    started_closed[fd] = true;
  }
}

namespace {

// A FIFO or a socket (standard input may be one): a stream that one reader takes, and that a
// second open waits on for ever.
bool is_fifo_or_socket(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && (S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode));
}

}  // namespace

bool standard_streams_for_dashes(const std::vector<std::pair<std::string, std::string*>>& inputs,
                                 const std::vector<std::pair<std::string, std::string*>>& outputs) {
  const auto replace = [](const std::vector<std::pair<std::string, std::string*>>& paths,
                          const char* stream, const char* name) {
    const std::string* first = nullptr;
    const bool closed = started_closed[std::string(name) == "input" ? 0 : 1];
    for (const auto& [option, path] : paths) {
      if (*path != "-") continue;
      if (closed) {
        throw InvalidArgument(option + " -: standard " + std::string(name) +
                              " is closed (the program was started without it)");
      }
      if (first != nullptr) {
        throw InvalidArgument(option + " -: standard " + std::string(name) +
                              " is already taken by " + *first);
      }
      first = &option;
      *path = stream;
    }
    return first != nullptr;
  };
  replace(inputs, "/dev/stdin", "input");
  // A FIFO given twice: the second open waited for a writer of its own for ever.
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    for (std::size_t j = i + 1; j < inputs.size(); ++j) {
      const std::string& a = *inputs[i].second;
      const std::string& b = *inputs[j].second;
      if (!a.empty() && !b.empty() && is_fifo_or_socket(a) && same_file(a, b)) {
        throw InvalidArgument(inputs[j].first + " " + b + ": is also " + inputs[i].first + " " + a +
                              ", which is not a regular file and can be read once");
      }
    }
  }
  return replace(outputs, "/dev/stdout", "output");
}

io::OutputFile& StagedOutputs::stage(const std::string& target, const std::string& option) {
  if (target.empty()) throw InvalidArgument(option + ": the output path is empty");
  // A device (/dev/null) discards or passes on what it is given, so it may take several outputs.
  if (!is_character_device(target)) {
    for (const Input& input : inputs_) {
      if (input.replaced_by != option && same_file(input.path, target)) {
        throw InvalidArgument(option + " " + target + ": is also the input " + input.option + " " +
                              input.path + "; refusing to overwrite it");
      }
    }
    for (const Entry& entry : entries_) {
      if (same_file(entry.target, target)) {
        throw InvalidArgument(option + " " + target + ": " + entry.option + " " + entry.target +
                              " goes to the same file");
      }
    }
  }
  try {
    entries_.push_back({target, option, std::make_unique<io::OutputFile>(target)});
  } catch (const IoError& e) {
    throw IoError(option + " " + e.what());  // "-o out/m.json: cannot write: ..."
  }
  entries_.back().file->set_label(option);  // and so for a write that fails later
  return *entries_.back().file;
}

void StagedOutputs::add_input(const std::string& path, const std::string& option,
                              const std::string& replaced_by) {
  if (!path.empty()) inputs_.push_back({path, option, replaced_by});
}

std::atomic<OutputStage> g_output_stage{OutputStage::kBeingWritten};
static_assert(std::atomic<OutputStage>::is_always_lock_free &&
                  std::atomic<int>::is_always_lock_free,
              "the stop-signal handler reads and writes these");
std::atomic<int> g_deferred_stop_signal{0};

void StagedOutputs::commit() {
  // Every file written out first (the slow part, which a stop signal may still cut short: then
  // nothing is replaced). A stop signal during the renames, on whichever thread it lands, is held
  // until they are done, so that it finds every output old or every one new, never some of each.
  for (Entry& entry : entries_) entry.file->finish();
  // The renames left at `stage`, and a stop signal they held back handled then.
  const auto leave_renames = [](OutputStage stage) {
    g_output_stage = stage;
    if (const int signal_number = g_deferred_stop_signal.exchange(0)) std::raise(signal_number);
  };
  g_output_stage = OutputStage::kBeingRenamed;
  try {
    for (Entry& entry : entries_) entry.file->commit();
  } catch (...) {
    leave_renames(OutputStage::kBeingWritten);
    throw;
  }
  leave_renames(OutputStage::kAllInPlace);
}

Progress::Progress(bool quiet, int n_init)
    : quiet_(quiet), live_(::isatty(2) != 0), n_init_(n_init) {}

void Progress::operator()(const IterationInfo& info) {
  if (quiet_) return;
  // Restarts take their iterations side by side, each pass serving all of them: on a terminal
  // they share the one live line (a newline at each change of restart wrote two lines an
  // iteration, and overwrote the last restart's every time).
  std::string line;
  if (n_init_ > 1) {
    line += "init " + std::to_string(info.init_run + 1) + "/" + std::to_string(n_init_) + "  ";
  }
  // Both per unit of weight (per row, unweighted): the change is what --tol tests, and the total
  // beside it read as if the change were the total's.
  line += "iter " + std::to_string(info.iteration) + "  mean loglik " +
          format("%.6e", info.mean_log_likelihood) + "  change " +
          (info.iteration == 0 ? std::string("-") : format("%.1e", info.change)) + "  " +
          format("%.2f", info.seconds) + " s";
  if (live_) {
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
    line_open_ = true;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (line_open_) {
    std::fputc('\n', stderr);
    std::fflush(stderr);
    line_open_ = false;
  }
}

namespace {

bool is_npy_path(const std::string& path) { return lower_extension(path) == ".npy"; }

double physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

}  // namespace

std::unique_ptr<io::MappedNpy> open_mapping(const std::string& input, const DataArgs& data,
                                            const std::string& memory_map,
                                            std::int64_t map_chunk_rows) {
  // --map-chunk-rows asks for the mapping, as --memory-map does: it was ignored, without a
  // word, for text, with --no-memory-map, and for a .npy the automatic choice read whole.
  const bool chunk_rows_given = map_chunk_rows != 0;
  if (memory_map == "off") {
    if (chunk_rows_given) {
      throw InvalidArgument(
          "--map-chunk-rows sets the chunks of a mapping, which --no-memory-map "
          "turns off");
    }
    return nullptr;
  }
  const bool npy = is_npy_path(input) && data.raw_dtype.empty();
  if (memory_map == "on" || chunk_rows_given) {
    if (!npy) {
      throw InvalidArgument(std::string(memory_map == "on" ? "--memory-map" : "--map-chunk-rows") +
                            " reads .npy files only; " + input + " is not one");
    }
  } else if (!npy) {
    return nullptr;
  }
  const DType dtype = resolve_precision(data);
  if (memory_map == "auto" && !chunk_rows_given &&
      !(static_cast<double>(io::MappedNpy::describe(input, dtype).bytes) >
        0.5 * physical_memory_bytes())) {
    return nullptr;
  }
  auto mapping = std::make_unique<io::MappedNpy>(input, dtype, map_chunk_rows);
  // As the in-memory read says it, rather than the chunked fit's "chunk 0: no data".
  if (mapping->cols() == 0) throw InvalidArgument(input + ": no columns");
  return mapping;
}

InputMatrix InputMatrix::open(const std::string& path, const DataArgs& args,
                              const std::string& memory_map) {
  const DType dtype = resolve_precision(args);
  if (memory_map != "off" && is_npy_path(path) && args.raw_dtype.empty()) {
    const io::MappedNpy::Layout layout = io::MappedNpy::describe(path, dtype);
    // Above half the memory the pages would not all stay: the chunked fit is for those.
    if (layout.direct && static_cast<double>(layout.bytes) <= 0.5 * physical_memory_bytes()) {
      try {
        InputMatrix input;
        input.mapping_ = std::make_unique<io::MappedNpy>(path, dtype);
        input.mapping_->advise_reuse();
        return input;
      } catch (const IoError&) {
        // A file system that cannot map the file (some network or FUSE ones): read it instead,
        // which reports any other problem with the file itself.
      }
    }
  }
  return InputMatrix(load_data(path, args, false));
}

std::string float32_rounding_warning(const std::string& input, const DataArgs& args,
                                     bool evaluation) {
  if (resolve_precision(args) != DType::kFloat32 || !args.raw_dtype.empty() ||
      !is_npy_path(input) || reads_once(input)) {
    return {};
  }
  detail::Float32RoundingScan scan;
  try {
    // Element types float32 holds exactly have nothing to lose: not read again.
    using io::detail::Scalar;
    const Scalar scalar = io::detail::npy_layout(input).scalar;
    if (scalar != Scalar::kFloat64 && scalar != Scalar::kInt32 && scalar != Scalar::kUInt32 &&
        scalar != Scalar::kInt64 && scalar != Scalar::kUInt64) {
      return {};
    }
    // The file's own values, in double, chunk by chunk.
    io::MappedNpy values(input, DType::kFloat64);
    for (std::int64_t i = 0; i < values.n_chunks(); ++i) scan.add(values.chunk(i));
  } catch (const IoError&) {
    return {};  // a file system that cannot map it: no warning rather than another read
  }
  const std::optional<detail::Float32Rounding> worst = scan.worst();
  if (!worst) return {};
  const std::string rounding =
      args.precision == "float" ? "--precision float" : "--precision auto (float32 on the GPU)";
  return input + ": " + rounding + " rounds column " + std::to_string(worst->column + 1) +
         " (values up to " + format("%.3g", worst->largest) + ", spread " +
         format("%.3g", worst->spread) + ") by up to " + format("%.2g", worst->lost) +
         " of its spread, more than float32's 1e-4; " +
         // A fitted model's data cannot be centred alone: its means are the data's.
         (evaluation ? "use --precision double"
                     : "subtract the column means first, or use --precision double");
}

bool runs_on_gpu(const EngineOptions& engine) {
  return engine.device == Device::kGpu || (engine.device == Device::kAuto && gpu_available());
}

namespace {

// Calls evaluate(view, files) for every chunk of `source` in order, with `files` naming INPUT's
// rows (the chunk reports a non-finite value itself, by INPUT's row).
template <typename Evaluate>
void for_each_chunk(io::MappedNpy& source, const std::string& input, const std::string& model,
                    Evaluate&& evaluate) {
  for (std::int64_t i = 0; i < source.n_chunks(); ++i) {
    const DataView view = source.chunk(i);
    evaluate(view, DataFiles{input, "", i * source.chunk_rows(), false, model});
  }
}

}  // namespace

void write_mapped_results(io::MappedNpy& source, const std::string& input, const Model& model,
                          const std::string& model_file, const EngineOptions& engine,
                          io::OutputFile* labels_out, io::OutputFile* resp_out) {
  std::optional<io::NpyWriter> labels, resp;
  if (labels_out != nullptr) labels.emplace(*labels_out, io::NpyWriter::Int32Vector{source.rows()});
  if (resp_out != nullptr) {
    resp.emplace(*resp_out, DType::kFloat64, source.rows(), model.n_components);
  }
  for_each_chunk(source, input, model_file, [&](const DataView& view, const DataFiles& files) {
    if (labels) {
      const std::vector<std::int32_t> part =
          naming_files(files, [&] { return predict(model, view, engine); });
      labels->append(part.data(), view.rows);
    }
    if (resp) {
      const std::vector<double> part =
          naming_files(files, [&] { return predict_proba(model, view, engine); });
      resp->append(part.data(), view.rows);
    }
  });
  if (labels) labels->commit();
  if (resp) resp->commit();
}

double score_mapped(io::MappedNpy& source, const std::string& input, const Model& model,
                    const std::string& model_file, const EngineOptions& engine) {
  double total = 0;
  for_each_chunk(source, input, model_file, [&](const DataView& view, const DataFiles& files) {
    const std::vector<double> log_prob =
        naming_files(files, [&] { return score_samples(model, view, engine); });
    for (const double value : log_prob) total += value;
  });
  return total / static_cast<double>(source.rows());
}

void print_mapping(const std::string& input, io::MappedNpy& mapping) {
  std::fprintf(stderr, "%s: memory-mapped, %lld chunk%s of %lld rows%s\n", input.c_str(),
               static_cast<long long>(mapping.n_chunks()), mapping.n_chunks() == 1 ? "" : "s",
               static_cast<long long>(mapping.chunk_rows()),
               mapping.direct() ? ""
                                : (std::string(", converted to ") + to_string(mapping.dtype()) +
                                   " chunk by chunk")
                                      .c_str());
}

void refuse_options_of_other_families(Family family, bool reg_covar_given,
                                      bool prob_epsilon_given) {
  if (family != Family::kGaussian && reg_covar_given) {
    throw InvalidArgument("--reg-covar applies to Gaussian mixtures only (the family is " +
                          std::string(to_string(family)) +
                          "; --prob-epsilon bounds its "
                          "probabilities)");
  }
  if (family == Family::kGaussian && prob_epsilon_given) {
    throw InvalidArgument(
        "--prob-epsilon applies to Bernoulli and binomial mixtures only (the "
        "family is gaussian; --reg-covar keeps its covariances positive)");
  }
}

std::string flag_of(const std::string& option) {
  for (const auto& [name, flag] : kFlags) {
    if (option == name) return flag;
  }
  return option;
}

std::string option_error_message(const OptionError& error) {
  const std::string flag = flag_of(error.option());
  const std::string message = error.what();
  // "OPTION is VALUE, WHAT IT MUST BE": the value goes beside the flag the user typed.
  const std::string subject = error.option() + " is ";
  const std::size_t comma = message.find(", ", subject.size());
  if (message.rfind(subject, 0) != 0 || comma == std::string::npos) {
    // "fixed_weights keeps the initial weights, and ...": the flag in the sentence too.
    return flag + ": " + in_flags(message);
  }
  return flag + " " + message.substr(subject.size(), comma - subject.size()) + ": " +
         message.substr(comma + 2);
}

void validate_naming_flags(const FitOptions& options) {
  try {
    emix::validate(options);
  } catch (const OptionError& e) {
    throw InvalidArgument(option_error_message(e));
  }
}

}  // namespace emix::cli

// What the `emix` commands share: reading data as the options say, naming the file behind a
// bad value the library reports, staging output files so a failed or interrupted command leaves
// none, and progress on stderr. The library validates every value; the commands check only what
// concerns their flags and files.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "emix/data.hpp"
#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix::cli {

// Options every data-reading command takes.
struct DataArgs {
  std::string raw_dtype;           // --dtype: raw binary element type
  std::int64_t raw_cols = 0;       // --dims: raw binary columns
  int threads = 0;                 // --threads
  std::int64_t chunk_rows = 0;     // --chunk-rows (GPU)
  std::string device = "auto";     // --device
  std::string precision = "auto";  // --precision: auto, float or double
  bool quiet = false;              // --quiet
  int binomial_trials = 0;         // --trials of a binomial fit or selection (0: none)
};

// float32 holds every whole number up to 2^24 and no run of them beyond: binomial counts of
// more trials would be rounded to other counts, and at 2^24 trials a count of 2^24 + 1, which
// must be refused, would pass as 2^24.
constexpr int kFloatCountTrialsLimit = 1 << 24;
// Why float is refused for `trials` (>= kFloatCountTrialsLimit).
std::string rounded_float_counts(int trials);

// Checks what only the command line knows (--dtype and --dims go together, --device gpu needs
// a GPU), then the engine options through the library, before any file is opened.
void validate(const DataArgs& args);
EngineOptions engine_options(const DataArgs& args);
// "auto" is float32 where the GPU engine will run (--device gpu, or auto with a GPU), else
// float64: the GPU's float throughput is what makes it fast, the CPU gains little from float.
// Binomial counts of kFloatCountTrialsLimit trials or more are float64, and "float" is then
// refused.
DType resolve_precision(const DataArgs& args);
// Reads INPUT (.npy, text, or raw binary with --dtype/--dims) in the resolved precision: rows
// [first_row, first_row + row_count), row_count -1 for all. NaN and Inf pass through unless
// `require_finite`: the library's validation names them, and scanning the data once is enough.
HostMatrix load_data(const std::string& path, const DataArgs& args, bool require_finite,
                     std::int64_t first_row = 0, std::int64_t row_count = -1);
// "INPUT: line L, whose cells are numbers, read as column names (a header), not as a row" on
// standard error, unless quiet, where the reader took such a line of a text INPUT for a header,
// or the note that it took pandas' numbered names for a row (io::text_first_line_guess): a
// guess either way, which drops a row or adds one, told.
void note_text_header(const std::string& input, const DataArgs& args);
// INPUT's number of rows, read from its header where it has one.
std::int64_t count_input_rows(const std::string& path, const DataArgs& args);
// Whether `path` exists and is not a regular file (standard input, a pipe, a FIFO, a terminal):
// what can be read once only.
bool reads_once(const std::string& path);

// The files a library call read its data and sample weights from, so that a DataError it
// throws can name the file, its row and column and, for text, its line.
struct DataFiles {
  std::string data;
  std::string sample_weight;   // empty: none
  std::int64_t first_row = 0;  // file row of the view's first row, minus 1 (sharded reads)
  bool data_raw = false;       // read as raw binary (--dtype, --dims): no lines to name
  // The model evaluated (MODEL), and a fit's --init-model ("--init-model m.json"), as messages
  // name them for the library's "model: " and "init model: "; empty: none.
  std::string model = {};
  std::string init_model = {};
};

// Runs `call`; a DataError becomes an InvalidArgument naming the file:
// "data.csv: row 3, column 2 is nan (line 5)".
template <typename Call>
auto naming_files(const DataFiles& files, Call&& call) -> decltype(call());
[[noreturn]] void rethrow_in_file(const DataError& error, const DataFiles& files);
// The library's word for the whole input ("data: 1048577 columns is more than ...", "sample
// weights sum to 0") or for the model ("model: ", "init model: ") replaced by the file's name,
// and its advice to use float64 data by the option that does so ("m.json: a covariance is too
// small for float32 data (...); use --precision double"); any other error rethrown as it is.
[[noreturn]] void rethrow_whole_input_in_file(const InvalidArgument& error, const DataFiles& files);

// Parses --seed: a whole number in 0 .. 2^64 - 1, or InvalidArgument naming `option` (a value
// out of range is an error rather than silently clamped or wrapped).
std::uint64_t parse_seed(const std::string& text, const std::string& option);

// InvalidArgument for --reg-covar given to a Bernoulli or binomial mixture, or --prob-epsilon
// to a Gaussian one, which would ignore it (as --trials and --covariance are refused).
void refuse_options_of_other_families(Family family, bool reg_covar_given, bool prob_epsilon_given);

// The flag that sets a library option (OptionError::option), for messages about its value.
std::string flag_of(const std::string& option);
// The library's message about an option's value, in the words of the command line: "max_iter is
// -1, must be >= 0" becomes "--max-iter -1: must be >= 0".
std::string option_error_message(const OptionError& error);
// emix::validate(options), an OptionError turned into InvalidArgument with its flag named: under
// mpirun an error reaches the other ranks as text only.
void validate_naming_flags(const FitOptions& options);
// The library's warnings and numerical errors name its options ("try a larger max_iter or tol",
// "increase reg_covar"); the program's user typed flags. Such a message quotes no file name, so
// its words are replaced where they stand.
std::string in_flags(std::string text);

// INPUT memory-mapped (io::MappedNpy), or null to read it into memory. memory_map: "on", "off"
// or "auto", which maps a .npy file whose rows, held in the chosen precision, would take more
// than half the physical memory: below that the in-memory read costs one pass and every
// iteration then runs from memory at the same speed (bench/results/out-of-core-2026-12-01.md);
// above it the copy would not fit beside the rest. Not under mpirun, where each rank reads its
// rows into memory (read_rank_rows, which refuses "on").
std::unique_ptr<io::MappedNpy> open_mapping(const std::string& input, const DataArgs& data,
                                            const std::string& memory_map,
                                            std::int64_t map_chunk_rows);

// INPUT whole, for a fit, a selection or an evaluation in memory. A .npy that already holds the
// element type the run uses, in C order and the host's byte order, is used in place through a
// read-only memory mapping (unless memory_map is "off"): nothing is read or copied up front, and
// the first pass over the rows brings the pages from the page cache or the disk. Reading into
// fresh memory costs more, mostly the kernel's first touch of every page: 1.0-1.3 s against
// 0.2-0.3 s for a cached 1.28 GB file on the development machine (bench/results/
// input-in-place-2026-12-01.md). Anything else is read into memory (load_data). A file
// truncated while emix runs ends it with an error (main.cpp, SIGBUS); "off" reads a private
// copy.
class InputMatrix {
 public:
  InputMatrix() = default;
  explicit InputMatrix(HostMatrix matrix) : matrix_(std::move(matrix)) {}
  static InputMatrix open(const std::string& path, const DataArgs& args,
                          const std::string& memory_map = "auto");

  DataView view() const { return mapping_ ? mapping_->view() : matrix_.view(); }
  std::int64_t rows() const { return view().rows; }
  std::int64_t cols() const { return view().cols; }

 private:
  HostMatrix matrix_;
  std::unique_ptr<io::MappedNpy> mapping_;
};

// The warning, in the program's terms, where the run reads a .npy INPUT as float32
// (--precision float, or auto on the GPU) and that rounds a column by more than 1e-4 of its
// spread (detail::Float32RoundingScan, over the file's own values mapped in double: one more
// pass over it), as the Python estimators' dtype='float32' warns; "" where it does not. Text
// and raw INPUT are parsed straight into float32, their values before the rounding never held,
// and are not judged. An `evaluation` (predict, score) is not told to centre the data: the
// model's means are the data's as they are.
std::string float32_rounding_warning(const std::string& input, const DataArgs& args,
                                     bool evaluation = false);

// Per-row results under `model` of a mapped INPUT, chunk by chunk, into open outputs (either
// may be null): the labels (int32) and the N x K responsibilities (float64) stream to their
// files and are never held whole; each chunk is read once for both (and evaluated once for
// each). A value the model cannot take is named by INPUT's row, a model the data cannot take
// by `model_file` (DataFiles::model; empty: the library's word).
void write_mapped_results(io::MappedNpy& source, const std::string& input, const Model& model,
                          const std::string& model_file, const EngineOptions& engine,
                          io::OutputFile* labels_out, io::OutputFile* resp_out);
// score() of a mapped INPUT: the mean log-likelihood per row, summed chunk by chunk in row order.
double score_mapped(io::MappedNpy& source, const std::string& input, const Model& model,
                    const std::string& model_file, const EngineOptions& engine);

// "INPUT: memory-mapped, 8 chunks of 700 rows[, converted to float64 chunk by chunk]" on stderr.
void print_mapping(const std::string& input, io::MappedNpy& mapping);

// Whether the fit will run on the GPU (--device gpu, or auto with a GPU that answers).
bool runs_on_gpu(const EngineOptions& engine);

// A binary output (a .npy, a PNG) given as "-" (or /dev/stdout) while standard output is a
// terminal, or as a path naming a terminal (/dev/tty, /dev/fd/1): refused, as gzip refuses, rather
// than bytes that garble the terminal. Triples are (option, path, what the output is), the first
// two for the message.
struct BinaryOutput {
  std::string option;
  std::string path;
  std::string kind;  // ".npy", "PNG"
};
void refuse_binary_on_terminal(const std::vector<BinaryOutput>& outputs);

// Opens /dev/null, read-only, on whichever of file descriptors 0, 1 and 2 the program was
// started without (`2>&-`, `<&-`), before anything else opens a file: the first file opened
// would take the closed descriptor, and progress lines went into an output's temporary file
// (then renamed into place), or a "-" input read the program's own output. Writes there fail
// as on the closed descriptor. Call first thing in main().
void open_closed_standard_streams();

// "-" as a path stands for standard input (among `inputs`) or standard output (among `outputs`),
// as in most Unix tools: each such path becomes /dev/stdin or /dev/stdout, which the readers and
// OutputFile take (a pipe, a terminal, or a file the shell redirected). Each stream may be
// given once; pairs are (option, path), the option for messages. A "-" for a stream the program
// was started without (open_closed_standard_streams) is refused. Returns whether an output is
// now standard output (what the command prints for people then goes to stderr).
bool standard_streams_for_dashes(const std::vector<std::pair<std::string, std::string*>>& inputs,
                                 const std::vector<std::pair<std::string, std::string*>>& outputs);

// Where a command's outputs are, for the stop-signal handler (main.cpp): while they are renamed
// into place it only records the signal (g_deferred_stop_signal), which StagedOutputs::commit
// raises again once they all are; after that its message says they were written. Lock-free
// atomics: safe in a handler.
enum class OutputStage { kBeingWritten, kBeingRenamed, kAllInPlace };
extern std::atomic<OutputStage> g_output_stage;
extern std::atomic<int> g_deferred_stop_signal;

// Every output of one command: each is checked, and its temporary created, by stage() before the
// slow work starts, so an unwritable output fails first. commit() renames them into place in the
// order staged; whatever was not committed is removed on destruction (and by the signal handler,
// emix::io::remove_temporary_files), so a command that fails leaves no partial file behind.
class StagedOutputs {
 public:
  StagedOutputs() = default;
  StagedOutputs(const StagedOutputs&) = delete;
  StagedOutputs& operator=(const StagedOutputs&) = delete;

  // Refuses a target that is also an input of the command or another output (a character
  // device such as /dev/null may take several), then opens it. `option` names the flag, for
  // messages: "-o out/model.json: cannot write: ...".
  io::OutputFile& stage(const std::string& target, const std::string& option);
  // Records a file the command reads: stage() refuses to make it an output, except the output
  // named `replaced_by` where given: a file read whole before the work (a model to refine) may
  // be replaced, since the output is renamed into place only at the end.
  void add_input(const std::string& path, const std::string& option,
                 const std::string& replaced_by = {});
  // Writes every output out, then renames them all into place (see common.cpp).
  void commit();

 private:
  struct Entry {
    std::string target;
    std::string option;
    std::unique_ptr<io::OutputFile> file;
  };
  std::vector<Entry> entries_;
  struct Input {
    std::string path;
    std::string option;       // that names it
    std::string replaced_by;  // the output option that may replace it, or empty
  };
  std::vector<Input> inputs_;
};

// Progress of a fit on stderr: one line per iteration, or one live line rewritten with '\r'
// when stderr is a terminal; nothing when quiet.
class Progress {
 public:
  // n_init > 1 prefixes each line with the restart it belongs to.
  explicit Progress(bool quiet, int n_init = 1);
  void operator()(const IterationInfo& info);
  // Ends the live line, if one is showing.
  void finish();

 private:
  bool quiet_;
  bool live_;
  int n_init_;
  bool line_open_ = false;
};

// A fit's warnings (FitReport::warnings), each on its own stderr line: "warning: TEXT", or for
// what is information rather than a problem (initialisation on a sample of the rows, as it
// always is for large data) "note: TEXT", which --quiet hides. `who` prefixes the text ("K = 2
// full: ").
void print_fit_warning(const std::string& text, bool quiet, const std::string& who = "");

// "1.234567e+05" style formatting through printf, for the messages and summaries.
std::string format(const char* fmt, double value);

// The file name's extension, lower case, with its dot (".npy"); empty when it has none.
std::string lower_extension(const std::string& path);

// InvalidArgument when an output named with an extension has another one than `extension`, the
// format the option writes ("what"): labels written as .npy bytes into l.csv, which the next
// reader parses as text. Names without one (/dev/null, a FIFO) pass.
void require_output_extension(const std::string& path, const std::string& option,
                              const std::string& extension, const std::string& what);

// Runs `call`; an OutOfMemory for results held whole says that --memory-map streams them.
template <typename Call>
auto check_with_memory_map_hint(Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const OutOfMemory& e) {
    throw OutOfMemory(std::string(e.what()) +
                      "; for a .npy INPUT, --memory-map streams the results to the output file "
                      "instead of holding them");
  }
}

template <typename Call>
auto naming_files(const DataFiles& files, Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const DataError& e) {
    rethrow_in_file(e, files);
  } catch (const InvalidArgument& e) {
    rethrow_whole_input_in_file(e, files);
  }
}

}  // namespace emix::cli

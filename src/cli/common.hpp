// What the `emix` commands share: reading data as the options say, checking values against a
// family, staging output files so a failed command leaves none, and progress on stderr.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "emix/data.hpp"
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
};

// Checks the option values themselves (before any file is opened).
void validate(const DataArgs& args);
EngineOptions engine_options(const DataArgs& args);
// "auto" is float32 where the GPU engine will run (--device gpu, or auto with a GPU), else
// float64: the GPU's float throughput is what makes it fast, the CPU gains little from float.
DType resolve_precision(const DataArgs& args);
// Reads INPUT (.npy, text, or raw binary with --dtype/--dims) in the resolved precision: rows
// [first_row, first_row + row_count), row_count -1 for all.
HostMatrix load_data(const std::string& path, const DataArgs& args, std::int64_t first_row = 0,
                     std::int64_t row_count = -1);
// INPUT's number of rows, read from its header where it has one.
std::int64_t count_input_rows(const std::string& path, const DataArgs& args);

// Throws InvalidArgument naming the file, row and column (1-based) of the first value a
// `family` mixture cannot take: Bernoulli needs 0 or 1, binomial an integer count in 0..trials.
// x holds the file's rows from first_row on.
void check_family_values(const HostMatrix& x, Family family, int trials, const std::string& path,
                         std::int64_t first_row = 0);

// Output files written under temporary names in their target's folder and renamed into place
// together by commit(); whatever was not committed is removed on destruction, so a command
// that fails leaves neither a partial output nor a temporary behind.
class StagedOutputs {
 public:
  StagedOutputs() = default;
  StagedOutputs(const StagedOutputs&) = delete;
  StagedOutputs& operator=(const StagedOutputs&) = delete;
  ~StagedOutputs();

  // Checks that `target` can be written (its folder exists, it is not a folder, no other output
  // of this command has the same path) and returns the temporary path to write it to. `option`
  // names the flag, for messages. Call for every output before the slow work starts.
  std::string stage(const std::string& target, const std::string& option);
  // Records a file the command reads: stage() refuses to make it an output.
  void add_input(const std::string& path, const std::string& option);
  // Renames every staged file to its target, in the order staged.
  void commit();

 private:
  struct Entry {
    std::string target;
    std::string temporary;
    bool renamed = false;
  };
  std::vector<Entry> entries_;
  std::vector<std::pair<std::string, std::string>> inputs_;  // path, option that names it
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
  int last_run_ = -1;
};

// "1.234567e+05" style formatting through printf, for the messages and summaries.
std::string format(const char* fmt, double value);

}  // namespace emix::cli

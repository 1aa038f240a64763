#include "cli/common.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"

namespace emix::cli {

namespace fs = std::filesystem;

std::string format(const char* fmt, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, fmt, value);
  return buffer;
}

void validate(const DataArgs& args) {
  if (args.threads < 0) {
    throw InvalidArgument("--threads " + std::to_string(args.threads) +
                          ": the number of threads must be 0 (OpenMP's default) or more");
  }
  if (args.chunk_rows < 0) {
    throw InvalidArgument("--chunk-rows " + std::to_string(args.chunk_rows) +
                          ": must be 0 (chosen from the GPU's memory) or more");
  }
  if (!args.raw_dtype.empty() && args.raw_cols < 1) {
    throw InvalidArgument("--dtype " + args.raw_dtype +
                          " reads raw binary data and needs --dims D (the number of columns)");
  }
  if (args.raw_cols != 0 && args.raw_dtype.empty()) {
    throw InvalidArgument("--dims " + std::to_string(args.raw_cols) +
                          " reads raw binary data and needs --dtype (the element type on disk)");
  }
  if (args.raw_cols < 0) {
    throw InvalidArgument("--dims " + std::to_string(args.raw_cols) + ": must be at least 1");
  }
  const Device device = parse_device(args.device);
  if (device == Device::kGpu && !gpu_available()) {
    throw NotAvailable(gpu_built()
                           ? "--device gpu: no CUDA device answers on this machine; use --device "
                             "cpu or auto"
                           : "--device gpu: this build of emix has no GPU support (built without "
                             "CUDA); use --device cpu or auto");
  }
}

EngineOptions engine_options(const DataArgs& args) {
  EngineOptions options;
  options.device = parse_device(args.device);
  options.n_threads = args.threads;
  options.chunk_rows = args.chunk_rows;
  return options;
}

DType resolve_precision(const DataArgs& args) {
  if (args.precision == "float") return DType::kFloat32;
  if (args.precision == "double") return DType::kFloat64;
  const Device device = parse_device(args.device);
  const bool on_gpu = device == Device::kGpu || (device == Device::kAuto && gpu_available());
  return on_gpu ? DType::kFloat32 : DType::kFloat64;
}

namespace {

io::ReadOptions read_options(const DataArgs& args) {
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

HostMatrix load_data(const std::string& path, const DataArgs& args, std::int64_t first_row,
                     std::int64_t row_count) {
  io::ReadOptions options = read_options(args);
  options.first_row = first_row;
  options.row_count = row_count;
  return io::read_matrix(path, options);
}

std::int64_t count_input_rows(const std::string& path, const DataArgs& args) {
  return io::count_rows(path, read_options(args));
}

namespace {

template <typename T>
void check_values(const T* x, std::int64_t rows, std::int64_t cols, Family family, int trials,
                  const std::string& path, std::int64_t first_row) {
  for (std::int64_t n = 0; n < rows; ++n) {
    for (std::int64_t d = 0; d < cols; ++d) {
      const double v = static_cast<double>(x[n * cols + d]);
      const bool ok = family == Family::kBernoulli
                          ? (v == 0.0 || v == 1.0)
                          : (v >= 0.0 && v <= trials && v == std::floor(v));
      if (ok) continue;
      std::string where = path + ": row " + std::to_string(first_row + n + 1) + ", column " +
                          std::to_string(d + 1) + " is " + format("%.17g", v);
      if (family == Family::kBernoulli) {
        throw InvalidArgument(where + ", but a Bernoulli mixture needs 0 or 1");
      }
      throw InvalidArgument(where + ", but a binomial mixture with --trials " +
                            std::to_string(trials) + " needs a whole number of successes in 0.." +
                            std::to_string(trials));
    }
  }
}

}  // namespace

void check_family_values(const HostMatrix& x, Family family, int trials, const std::string& path,
                         std::int64_t first_row) {
  if (family == Family::kGaussian) return;
  if (x.dtype() == DType::kFloat32) {
    check_values(x.as<float>(), x.rows(), x.cols(), family, trials, path, first_row);
  } else {
    check_values(x.as<double>(), x.rows(), x.cols(), family, trials, path, first_row);
  }
}

StagedOutputs::~StagedOutputs() {
  for (const Entry& entry : entries_) {
    if (!entry.renamed) {
      std::error_code ignored;
      fs::remove(entry.temporary, ignored);
    }
  }
}

std::string StagedOutputs::stage(const std::string& target, const std::string& option) {
  if (target.empty()) throw InvalidArgument(option + ": the output path is empty");
  const fs::path path(target);
  std::error_code ec;
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(folder, ec)) {
    throw IoError(option + " " + target + ": the folder " + folder.string() + " does not exist");
  }
  if (fs::is_directory(path, ec)) {
    throw IoError(option + " " + target + ": is a folder, not a file");
  }
  const fs::path canonical = fs::weakly_canonical(path, ec);
  for (const auto& [input, input_option] : inputs_) {
    if (fs::weakly_canonical(input, ec) == canonical) {
      throw InvalidArgument(option + " " + target + ": is also the input " + input_option + " " +
                            input + "; refusing to overwrite it");
    }
  }
  for (const Entry& entry : entries_) {
    if (fs::weakly_canonical(entry.target, ec) == canonical) {
      throw InvalidArgument(option + " " + target +
                            ": another output of this command goes to "
                            "the same file");
    }
  }
  // The temporary keeps the target's name at its end (so its extension) and sits in the same
  // folder, so the final rename stays on one file system and is atomic.
  const std::string name = ".emix-tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(entries_.size()) + "-" + path.filename().string();
  entries_.push_back({target, (folder / name).string(), false});
  return entries_.back().temporary;
}

void StagedOutputs::add_input(const std::string& path, const std::string& option) {
  if (!path.empty()) inputs_.emplace_back(path, option);
}

void StagedOutputs::commit() {
  for (Entry& entry : entries_) {
    std::error_code ec;
    fs::rename(entry.temporary, entry.target, ec);
    if (ec) {
      throw IoError(entry.target + ": cannot move the finished file into place: " + ec.message());
    }
    entry.renamed = true;
  }
}

Progress::Progress(bool quiet, int n_init)
    : quiet_(quiet), live_(::isatty(2) != 0), n_init_(n_init) {}

void Progress::operator()(const IterationInfo& info) {
  if (quiet_) return;
  std::string line;
  if (info.init_run != last_run_ && info.init_run > 0 && line_open_) {
    std::fputc('\n', stderr);  // keep each restart's last line on screen
    line_open_ = false;
  }
  last_run_ = info.init_run;
  if (n_init_ > 1) {
    line += "init " + std::to_string(info.init_run + 1) + "/" + std::to_string(n_init_) + "  ";
  }
  line += "iter " + std::to_string(info.iteration) + "  loglik " +
          format("%.6e", info.log_likelihood) + "  change " +
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

}  // namespace emix::cli

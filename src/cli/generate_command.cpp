// emix generate --n N --d D -k K --seed S -o DATA.npy [--truth MODEL.json]
// Streams the rows in blocks, so N may exceed memory.
#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "cli/commands.hpp"
#include "cli/synthetic.hpp"
#include "core/sampling.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"

namespace emix::cli {

namespace fs = std::filesystem;

int run_generate(const GenerateArgs& a) {
  if (a.n < 1) throw InvalidArgument("--n " + std::to_string(a.n) + ": must be at least 1");
  if (a.d < 1) throw InvalidArgument("--d " + std::to_string(a.d) + ": must be at least 1");
  if (a.k < 1) {
    throw InvalidArgument("-k " + std::to_string(a.k) +
                          ": the number of components must be at least 1");
  }
  if (a.trials < 1) {
    throw InvalidArgument("--trials " + std::to_string(a.trials) + ": must be at least 1");
  }
  if (a.block_rows < 1) {
    throw InvalidArgument("--block-rows " + std::to_string(a.block_rows) + ": must be at least 1");
  }
  const Family family = parse_family(a.family);
  const Covariance covariance = parse_covariance(a.covariance);
  // As fit refuses them: an option that cannot apply is a mistake, not something to ignore.
  if (a.trials_given && family != Family::kBinomial) {
    throw InvalidArgument("--trials applies to binomial mixtures only (the family is " + a.family +
                          ")");
  }
  if (a.covariance_given && family != Family::kGaussian) {
    throw InvalidArgument("--covariance applies to Gaussian mixtures only (the family is " +
                          a.family + ")");
  }
  const DType dtype = a.precision == "float" ? DType::kFloat32 : DType::kFloat64;
  if (dtype == DType::kFloat32 && family == Family::kBinomial &&
      a.trials >= kFloatCountTrialsLimit) {
    throw InvalidArgument(rounded_float_counts(a.trials) + "; use --precision double");
  }
  // The true model is held (and its covariance factors drawn) in memory: bound it before
  // anything is allocated. 2^27 doubles is 1 GiB.
  const double per_component = family != Family::kGaussian ? a.d
                               : covariance == Covariance::kFull
                                   ? a.d + static_cast<double>(a.d) * a.d
                                   : a.d + (covariance == Covariance::kDiag ? a.d : 1.0);
  const double model_values = static_cast<double>(a.k) * per_component;
  constexpr double kMaxModelValues = 1 << 27;
  if (model_values > kMaxModelValues) {
    throw InvalidArgument("-k " + std::to_string(a.k) + " --d " + std::to_string(a.d) +
                          ": the true model would hold " + format("%.0f", model_values) +
                          " parameters; generate draws models of at most " +
                          format("%.0f", kMaxModelValues));
  }

  // Named for what is written (a .npy named data.csv would be read as text, and fail).
  require_output_extension(a.output, "-o", ".npy", "a NumPy array");
  if (!a.truth.empty()) require_output_extension(a.truth, "--truth", ".json", "a JSON model file");
  StagedOutputs outputs;
  io::OutputFile& data_out = outputs.stage(a.output, "-o");
  io::OutputFile* truth_out = a.truth.empty() ? nullptr : &outputs.stage(a.truth, "--truth");
  // A file larger than the disk's free space would fail part way, after minutes of writing.
  if (data_out.replaced_by_rename()) {
    const double needed =
        128.0 + static_cast<double>(a.n) * a.d * static_cast<double>(dtype_size(dtype));
    std::error_code ec;
    // The folder the file lands in, where links lead (as OutputFile writes it).
    const fs::path folder = fs::weakly_canonical(fs::absolute(a.output, ec), ec).parent_path();
    const fs::space_info space = fs::space(folder, ec);
    if (!ec && static_cast<double>(space.available) < needed) {
      throw IoError("-o " + a.output + ": the data need " + format("%.3g", needed / 1e9) +
                    " GB, more than the " +
                    format("%.3g", static_cast<double>(space.available) / 1e9) +
                    " GB free on the disk that holds " + folder.string());
    }
  }

  // Stream 0 of the seed draws the model, stream u + 1 the rows of unit u, whose size depends on
  // D alone: the data depend on the seed, never on --block-rows (a block is whole units, drawn
  // in parallel), and the first m rows of --n N are those of --n m.
  const Model model = random_model(family, covariance, a.k, a.d, a.trials, derive_seed(a.seed, 0));
  // A block is drawn in memory before it is written: at most 2^27 values (1 GiB of doubles).
  constexpr std::int64_t kMaxBlockValues = std::int64_t{1} << 27;
  const std::int64_t unit_rows =
      std::max<std::int64_t>(1, std::min<std::int64_t>(65536, kMaxBlockValues / a.d));
  const std::int64_t units_per_block =
      std::clamp<std::int64_t>(a.block_rows / unit_rows + (a.block_rows % unit_rows != 0), 1,
                               std::max<std::int64_t>(1, kMaxBlockValues / a.d / unit_rows));
  {
    io::NpyWriter writer(data_out, dtype, a.n, a.d);
    std::vector<float> narrow;
    for (std::int64_t first = 0, first_unit = 0; first < a.n;
         first += units_per_block * unit_rows, first_unit += units_per_block) {
      const std::int64_t rows = std::min(units_per_block * unit_rows, a.n - first);
      const Sample s = sample_in_blocks(model, rows, 0, unit_rows, [&](std::int64_t unit) {
        const std::uint64_t seed =
            derive_seed(a.seed, static_cast<std::uint64_t>(first_unit + unit) + 1);
        return std::array<std::uint32_t, 4>{static_cast<std::uint32_t>(seed),
                                            static_cast<std::uint32_t>(seed >> 32), 0, 0};
      });
      if (dtype == DType::kFloat32) {
        narrow.assign(s.x.begin(), s.x.end());
        writer.append(narrow.data(), rows);
      } else {
        writer.append(s.x.data(), rows);
      }
    }
    writer.commit();
  }
  if (truth_out != nullptr) io::write_model(*truth_out, model);
  outputs.commit();
  if (!a.quiet) {
    std::string kind = std::string(to_string(family));
    if (family == Family::kGaussian) kind += std::string(" ") + to_string(covariance);
    if (family == Family::kBinomial) kind += " (trials " + std::to_string(a.trials) + ")";
    std::fprintf(
        stderr,
        "wrote %s: %lld rows x %d columns, %s, from a %d-component %s mixture (seed %llu)\n",
        a.output.c_str(), static_cast<long long>(a.n), a.d, to_string(dtype), a.k, kind.c_str(),
        static_cast<unsigned long long>(a.seed));
    if (!a.truth.empty()) std::fprintf(stderr, "wrote %s: the true model\n", a.truth.c_str());
  }
  return 0;
}

}  // namespace emix::cli

#include "kernels/engine_plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <string>

#include "core/statistics.hpp"
#include "emix/errors.hpp"
#include "kernels/fused_params.hpp"

namespace emix::gpu {

PathChoice choose_path(Family family, Covariance covariance, int k, int d, int elem_size,
                       std::int64_t max_shared_bytes, const GpuSettings& settings,
                       const std::string& needs_double) {
  PathChoice choice;
  if (settings.path == GpuPath::kGeneral) {
    choice.reason = "the general path was asked for";
    return choice;
  }
  if (!needs_double.empty() && settings.path != GpuPath::kFused) {
    choice.reason = needs_double;
    return choice;
  }
  const std::optional<FusedPlan> plan =
      choose_fused_plan(family, covariance, k, d, elem_size, max_shared_bytes,
                        settings.max_tile_rows, settings.block_combine);
  if (plan) {
    choice.fused = true;
    choice.plan = *plan;
    choice.plan.fast_softmax = settings.fast_softmax;
    choice.plan.lean = settings.lean_double && elem_size == 8;
    choice.plan.rows_in_registers = settings.row_registers && row_kernel_fits(choice.plan);
    return choice;
  }
  choice.reason = "a tile of 32 rows of K = " + std::to_string(k) +
                  " components over D = " + std::to_string(d) + " features needs more than the " +
                  std::to_string(max_shared_bytes) + " bytes of shared memory a block may have";
  if (settings.path == GpuPath::kFused) {
    throw InvalidArgument("GPU engine: the single-pass kernel cannot run: " + choice.reason);
  }
  return choice;
}

namespace {

// Each variant's name and its switch in GpuSettings.
struct VariantSwitch {
  const char* name;
  bool GpuSettings::*on;
};
constexpr VariantSwitch kVariants[] = {
    {"fast_softmax", &GpuSettings::fast_softmax},
    {"block_combine", &GpuSettings::block_combine},
    {"lean_double", &GpuSettings::lean_double},
    {"row_registers", &GpuSettings::row_registers},
};

}  // namespace

GpuSettings parse_gpu_variants(const std::string& names, const std::string& source) {
  GpuSettings settings;
  std::size_t begin = 0;
  while (begin <= names.size()) {
    const std::size_t comma = std::min(names.find(',', begin), names.size());
    const std::string name = names.substr(begin, comma - begin);
    begin = comma + 1;
    if (name.empty()) continue;
    const auto* variant = std::find_if(std::begin(kVariants), std::end(kVariants),
                                       [&](const VariantSwitch& v) { return name == v.name; });
    if (variant == std::end(kVariants)) {
      std::string known;
      for (const VariantSwitch& v : kVariants)
        known += std::string(known.empty() ? "" : ", ") + v.name;
      throw InvalidArgument(source + ": '" + name + "' is not a GPU kernel variant (" + known +
                            ", separated by commas)");
    }
    settings.*(variant->on) = true;
  }
  return settings;
}

GpuSettings settings_from_environment() {
  const char* names = std::getenv("EMIX_GPU_VARIANTS");
  if (names == nullptr) return GpuSettings{};
  return parse_gpu_variants(names, std::string("EMIX_GPU_VARIANTS=") + names);
}

std::string variant_names(const GpuSettings& settings) {
  std::string names;
  for (const VariantSwitch& v : kVariants) {
    if (settings.*(v.on)) names += std::string(names.empty() ? "" : ",") + v.name;
  }
  return names;
}

int scatter_exponent(double largest_weight) {
  if (!(largest_weight > 0) || !std::isfinite(largest_weight)) return 0;
  const int e = std::ilogb(largest_weight);
  if (e >= -100 && e < 100) return 0;
  return e >= 0 ? e / 2 : -((1 - e) / 2);
}

GeneralChunk general_chunk(std::int64_t rows) {
  GeneralChunk c;
  c.rows = rows;
  c.block_rows = 32;
  while (c.block_rows < kGeneralMaxBlockRows && c.block_rows < rows) c.block_rows *= 2;
  c.ld = (rows + c.block_rows - 1) / c.block_rows * c.block_rows;
  const std::int64_t per_block = std::int64_t{c.block_rows} * kGeneralRowsPerThread;
  c.n_part = (c.ld + per_block - 1) / per_block;
  c.n_q = c.ld / c.block_rows;
  return c;
}

const char* describe(Buf buffer) {
  switch (buffer) {
    case Buf::kData:
      return "the data";
    case Buf::kWeights:
      return "the sample weights";
    case Buf::kParams:
      return "the model parameters";
    case Buf::kLogChoose:
      return "the binomial coefficients";
    case Buf::kTotals:
      return "the statistics";
    case Buf::kPartials:
      return "the partial statistics";
    case Buf::kStaged:
      return "the staged chunk";
    case Buf::kLogJoint:
      return "the chunk's log-densities";
    case Buf::kResp:
      return "the chunk's responsibilities";
    case Buf::kRowLogLik:
      return "the chunk's log-likelihoods";
    case Buf::kRowWeight:
      return "the chunk's weights";
    case Buf::kRowEntropy:
      return "the chunk's entropies";
    case Buf::kLabels:
      return "the chunk's labels";
    case Buf::kProjected:
      return "the chunk's projected rows";
    case Buf::kScatterParts:
      return "the partial scatter matrices";
    case Buf::kOutLogProb:
      return "the chunk's log-probabilities";
    case Buf::kOutResp:
      return "the chunk's responsibilities";
    case Buf::kStreamRows:
      return "the streamed chunks";
    case Buf::kStreamWeights:
      return "the streamed chunks' weights";
    case Buf::kHostTotals:
      return "the statistics (pinned host copy)";
    case Buf::kHostStageRows:
      return "the pinned staging chunks";
    case Buf::kHostStageWeights:
      return "the pinned staging chunks' weights";
    case Buf::kCount:
      break;
  }
  return "?";
}

bool is_pinned(Buf buffer) {
  return buffer == Buf::kHostTotals || buffer == Buf::kHostStageRows ||
         buffer == Buf::kHostStageWeights;
}

std::int64_t BufferPlan::device_bytes() const {
  std::int64_t total = 0;
  for (int i = 0; i < static_cast<int>(Buf::kCount); ++i) {
    if (!is_pinned(static_cast<Buf>(i))) total += bytes[static_cast<std::size_t>(i)];
  }
  return total;
}

std::int64_t BufferPlan::pinned_bytes() const {
  std::int64_t total = 0;
  for (int i = 0; i < static_cast<int>(Buf::kCount); ++i) {
    if (is_pinned(static_cast<Buf>(i))) total += bytes[static_cast<std::size_t>(i)];
  }
  return total;
}

std::int64_t BufferPlan::working_bytes() const {
  return device_bytes() - (*this)[Buf::kData] - (*this)[Buf::kWeights];
}

std::int64_t fused_param_bytes(const FusedPlan& plan) {
  return fused_param_layout(plan).total * plan.elem_size;
}

std::int64_t general_param_doubles(int k, int d) {
  return 2 * std::int64_t{k} + 3 * std::int64_t{k} * d;
}

std::int64_t general_param_typed_offset(int k, int d) {
  return (general_param_doubles(k, d) * 8 + 15) / 16 * 16;
}

std::int64_t general_param_bytes(int k, int d, int data_size, Covariance covariance,
                                 bool gaussian) {
  const std::int64_t kk = k, dd = d;
  std::int64_t u = 0;
  if (gaussian && covariance == Covariance::kFull) u = kk * dd * dd;
  if (gaussian && covariance == Covariance::kTied) u = dd * dd;
  return general_param_typed_offset(k, d) + (dd + u) * data_size;
}

BufferPlan plan_buffers(const BufferPlanInputs& in) {
  BufferPlan plan;
  auto set = [&plan](Buf b, std::int64_t bytes) { plan.bytes[static_cast<int>(b)] = bytes; };
  const std::int64_t t = in.data_size, k = in.k, d = in.d;
  set(Buf::kData, in.resident_rows * d * t);
  set(Buf::kWeights, in.resident_weights ? in.rows * 8 : 0);
  set(Buf::kTotals, in.stats_size * 8);
  set(Buf::kHostTotals, in.stats_size * 8);
  set(Buf::kLogChoose, in.trials > 1 && in.trials <= kMaxLogChoose ? (in.trials + 1) * 8 : 0);
  const std::int64_t rows = in.chunk_rows;
  if (in.fused) {
    set(Buf::kParams, fused_param_bytes(in.fused_plan));
    set(Buf::kPartials, std::int64_t{in.fused_slices} * in.stats_size * 8);
    if (in.outputs) {
      set(Buf::kOutLogProb, rows * 8);
      set(Buf::kOutResp, rows * k * 8);
      set(Buf::kLabels, rows * 4);
    }
  } else {
    const GeneralChunk c = general_chunk(rows);
    const bool gaussian = in.family == Family::kGaussian;
    const bool full_scatter = fused_family_of(in.family, in.covariance) == FusedFamily::kFull;
    // The partials hold every statistic but a full scatter (accumulate_general's stride).
    const StatisticsLayout layout(in.family, in.covariance, static_cast<int>(k),
                                  static_cast<int>(d));
    const std::int64_t stride =
        static_cast<std::int64_t>(layout.full_scatter ? layout.q() : layout.size());
    set(Buf::kParams, general_param_bytes(in.k, in.d, in.data_size, in.covariance, gaussian));
    set(Buf::kStaged, c.ld * d * t);
    set(Buf::kLogJoint, k * c.ld * 8);
    set(Buf::kResp, k * c.ld * 8);
    set(Buf::kRowLogLik, c.ld * 8);
    set(Buf::kRowWeight, c.ld * 8);
    set(Buf::kRowEntropy, c.ld * 8);
    set(Buf::kLabels, c.ld * 4);
    set(Buf::kPartials, c.n_part * stride * 8);
    if (full_scatter) {
      set(Buf::kProjected, k * d * c.ld * t);
      set(Buf::kScatterParts, k * c.n_q * d * d * t);
    }
  }
  if (in.stream_slots > 0) {
    set(Buf::kStreamRows, in.stream_slots * rows * d * t);
    set(Buf::kStreamWeights, in.weights ? in.stream_slots * rows * 8 : 0);
    if (in.staging) {
      set(Buf::kHostStageRows, in.stream_slots * rows * d * t);
      set(Buf::kHostStageWeights, in.weights ? in.stream_slots * rows * 8 : 0);
    }
  }
  return plan;
}

}  // namespace emix::gpu

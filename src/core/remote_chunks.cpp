// The bytes of a pass (remote_chunks.hpp) and a chunk's statistics under them.
#include "core/remote_chunks.hpp"

#include <cstring>
#include <memory>
#include <string>

#include "core/engine.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"

namespace emix {

namespace {

constexpr char kMagic[8] = {'E', 'M', 'I', 'X', 'P', 'A', 'S', 'S'};
constexpr std::uint32_t kVersion = 1;

class Writer {
 public:
  template <typename T>
  void put(T value) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof value);
  }
  void put(const std::vector<double>& values) {
    put(static_cast<std::uint64_t>(values.size()));
    if (values.empty()) return;
    const auto* p = reinterpret_cast<const std::uint8_t*>(values.data());
    bytes.insert(bytes.end(), p, p + values.size() * sizeof(double));
  }
  std::vector<std::uint8_t> bytes;
};

class Reader {
 public:
  explicit Reader(const std::vector<std::uint8_t>& bytes) : bytes_(bytes) {}
  template <typename T>
  T get() {
    T value;
    take(&value, sizeof value);
    return value;
  }
  // A vector that must hold `expected` values.
  std::vector<double> get_values(std::size_t expected) {
    const auto n = get<std::uint64_t>();
    // The bytes must hold the values before anything of their size is allocated.
    if (n != expected || expected > (bytes_.size() - at_) / sizeof(double)) fail();
    std::vector<double> values(expected);
    take(values.data(), expected * sizeof(double));
    return values;
  }
  bool at_end() const { return at_ == bytes_.size(); }
  [[noreturn]] static void fail() {
    throw InvalidArgument("chunk_pass: the pass's bytes are not encode_pass's");
  }

 private:
  void take(void* out, std::size_t size) {
    if (size > bytes_.size() - at_) fail();
    if (size == 0) return;  // an empty vector's data() may be null, which memcpy may not take
    std::memcpy(out, bytes_.data() + at_, size);
    at_ += size;
  }
  const std::vector<std::uint8_t>& bytes_;
  std::size_t at_ = 0;
};

std::size_t prec_chol_size(const PreparedModel& p) {
  if (p.family != Family::kGaussian) return 0;
  std::size_t size = 1;
  for (const std::size_t extent : covariance_extents(p.covariance, p.k, p.d)) size *= extent;
  return size;
}

std::vector<PreparedModel> decode_pass(const std::vector<std::uint8_t>& pass) {
  Reader in(pass);
  char magic[sizeof kMagic];
  for (char& c : magic) c = in.get<char>();
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0 || in.get<std::uint32_t>() != kVersion) {
    Reader::fail();
  }
  const auto count = in.get<std::uint32_t>();
  std::vector<PreparedModel> models;
  for (std::uint32_t m = 0; m < count; ++m) {
    PreparedModel p;
    const auto family = in.get<std::int32_t>();
    const auto covariance = in.get<std::int32_t>();
    if (family < 0 || family > static_cast<std::int32_t>(Family::kBinomial) || covariance < 0 ||
        covariance > static_cast<std::int32_t>(Covariance::kTied)) {
      Reader::fail();
    }
    p.family = static_cast<Family>(family);
    p.covariance = static_cast<Covariance>(covariance);
    p.k = in.get<std::int32_t>();
    p.d = in.get<std::int32_t>();
    p.trials = in.get<std::int32_t>();
    const auto entropy = in.get<std::uint8_t>();
    p.entropy = entropy == 1;
    if (p.k < 1 || p.d < 1 || p.d > kMaxFeatures || p.trials < 1 || entropy > 1 ||
        (p.family != Family::kBinomial && p.trials != 1)) {
      Reader::fail();
    }
    const std::size_t k = static_cast<std::size_t>(p.k), kd = k * static_cast<std::size_t>(p.d);
    const bool gaussian = p.family == Family::kGaussian;
    p.layout = StatisticsLayout(p.family, p.covariance, p.k, p.d);
    p.log_weights = in.get_values(k);
    p.log_norm = in.get_values(k);
    p.centres = in.get_values(kd);
    p.prec_chol = in.get_values(prec_chol_size(p));
    p.mean_prec = in.get_values(gaussian ? kd : 0);
    p.means = in.get_values(gaussian ? kd : 0);
    p.logit = in.get_values(gaussian ? 0 : kd);
    models.push_back(std::move(p));
  }
  if (models.empty() || !in.at_end()) Reader::fail();
  return models;
}

}  // namespace

std::vector<std::uint8_t> encode_pass(const std::vector<const PreparedModel*>& models) {
  Writer out;
  for (const char c : kMagic) out.put(c);
  out.put(kVersion);
  out.put(static_cast<std::uint32_t>(models.size()));
  for (const PreparedModel* p : models) {
    out.put(static_cast<std::int32_t>(p->family));
    out.put(static_cast<std::int32_t>(p->covariance));
    out.put(static_cast<std::int32_t>(p->k));
    out.put(static_cast<std::int32_t>(p->d));
    out.put(static_cast<std::int32_t>(p->trials));
    out.put(static_cast<std::uint8_t>(p->entropy ? 1 : 0));
    out.put(p->log_weights);
    out.put(p->log_norm);
    out.put(p->centres);
    out.put(p->prec_chol);
    out.put(p->mean_prec);
    out.put(p->means);
    out.put(p->logit);
  }
  return std::move(out.bytes);
}

std::vector<double> chunk_pass(const std::vector<std::uint8_t>& pass, const DataView& chunk,
                               const double* weights, const EngineOptions& options,
                               std::string* engine_name) {
  const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
  const std::vector<PreparedModel> models = decode_pass(pass);
  const PreparedModel& first = models.front();
  for (const PreparedModel& p : models) {
    if (p.d != first.d || p.family != first.family || p.trials != first.trials) Reader::fail();
  }
  if (chunk.cols != first.d) {
    throw InvalidArgument("chunk_pass: the chunk has " + count_of(chunk.cols, "column") +
                          ", but the models have " + std::to_string(first.d) + " features");
  }
  FitOptions checks;
  checks.family = first.family;
  checks.trials = first.trials;
  validate_fit_data(chunk, checks);
  validate_sample_weight(weights, chunk.rows, false);

  std::vector<const PreparedModel*> pointers;
  std::size_t total = 0;
  for (const PreparedModel& p : models) {
    pointers.push_back(&p);
    total += p.layout.size();
  }
  std::vector<double> statistics(total);
  std::vector<double*> outputs;
  for (std::size_t m = 0, at = 0; m < models.size(); at += models[m].layout.size(), ++m) {
    outputs.push_back(statistics.data() + at);
  }
  const std::unique_ptr<Engine> engine = make_engine(chunk, weights, options);
  engine->accumulate_many(pointers, outputs);
  if (engine_name != nullptr) *engine_name = engine->name();
  return statistics;
}

}  // namespace emix

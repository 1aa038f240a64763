// The model file: {"format": "emix-model", "version": 1, "family": ..., ...} (see README).
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "io/atomic_file.hpp"
#include "io/common.hpp"

namespace emix::io {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kFormat = "emix-model";
constexpr int kVersion = 1;

// One dimension of an array parameter: its length and the name that sets it.
struct Dim {
  std::int64_t size;
  const char* name;
};

// The shape of the covariances array of a Gaussian model, outermost first.
std::vector<Dim> covariance_shape(Covariance covariance, int k, int d) {
  switch (covariance) {
    case Covariance::kFull:
      return {{k, "n_components"}, {d, "n_features"}, {d, "n_features"}};
    case Covariance::kDiag:
      return {{k, "n_components"}, {d, "n_features"}};
    case Covariance::kSpherical:
      return {{k, "n_components"}};
    case Covariance::kTied:
      return {{d, "n_features"}, {d, "n_features"}};
  }
  return {};
}

std::size_t element_count(const std::vector<Dim>& shape) {
  std::size_t n = 1;
  for (const Dim& dim : shape) n *= static_cast<std::size_t>(dim.size);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Writing

Json nest(const std::vector<double>& values, const std::vector<Dim>& shape, std::size_t level,
          std::size_t* offset) {
  Json array = Json::array();
  for (std::int64_t i = 0; i < shape[level].size; ++i) {
    if (level + 1 == shape.size()) {
      array.push_back(values[(*offset)++]);
    } else {
      array.push_back(nest(values, shape, level + 1, offset));
    }
  }
  return array;
}

Json nest(const std::vector<double>& values, const std::vector<Dim>& shape) {
  std::size_t offset = 0;
  return nest(values, shape, 0, &offset);
}

void check_written(const std::string& path, const char* key, const std::vector<double>& values,
                   const std::vector<Dim>& shape) {
  const std::size_t expected = element_count(shape);
  if (values.size() != expected) {
    std::string dims;
    for (const Dim& dim : shape) dims += std::string(dims.empty() ? "" : " x ") + dim.name;
    throw InvalidArgument("write_model(" + path + "): '" + key + "' has " +
                          std::to_string(values.size()) + " values, expected " + dims + " = " +
                          std::to_string(expected));
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    // JSON has no NaN or Inf; nlohmann would write null, which read_model then rejects.
    if (!std::isfinite(values[i])) {
      std::ostringstream text;
      text << values[i];
      throw InvalidArgument("write_model(" + path + "): '" + key + "' element " +
                            std::to_string(i) + " is " + text.str());
    }
  }
}

// Pretty-prints with arrays of numbers on one line, so that a K x D matrix reads as K lines
// rather than K * D. Numbers are nlohmann's shortest round-trip representation.
void print(const Json& value, int indent, std::string* out) {
  const std::string pad(static_cast<std::size_t>(indent) + 2, ' ');
  if (value.is_object() && !value.empty()) {
    *out += "{\n";
    std::size_t i = 0;
    for (auto it = value.begin(); it != value.end(); ++it, ++i) {
      *out += pad + Json(it.key()).dump() + ": ";
      print(it.value(), indent + 2, out);
      *out += i + 1 < value.size() ? ",\n" : "\n";
    }
    *out += std::string(static_cast<std::size_t>(indent), ' ') + "}";
  } else if (value.is_array() && !value.empty() && value.front().is_structured()) {
    *out += "[\n";
    for (std::size_t i = 0; i < value.size(); ++i) {
      *out += pad;
      print(value[i], indent + 2, out);
      *out += i + 1 < value.size() ? ",\n" : "\n";
    }
    *out += std::string(static_cast<std::size_t>(indent), ' ') + "]";
  } else if (value.is_array()) {
    // nlohmann writes "[1.0,2.0]"; a space after each comma reads better.
    *out += "[";
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (i > 0) *out += ", ";
      *out += value[i].dump();
    }
    *out += "]";
  } else {
    *out += value.dump();
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

class ModelReader {
 public:
  ModelReader(const std::string& path, const Json& root) : path_(path), root_(root) {}

  Model read() {
    if (!root_.is_object()) fail("the top level is " + describe(root_) + ", expected an object");
    if (const Json* format = find("format")) {
      if (!format->is_string() || format->get<std::string>() != kFormat) {
        fail("'format' is " + format->dump() + ", expected \"" + kFormat + "\"");
      }
    }
    if (const Json* version = find("version")) {
      if (!version->is_number_integer() || version->get<std::int64_t>() != kVersion) {
        fail("unsupported model version " + version->dump() + " (this emix reads version " +
             std::to_string(kVersion) + ")");
      }
    }

    Model model;
    model.family = with_key("family", [&] { return parse_family(string_at("family")); });
    const bool gaussian = model.family == Family::kGaussian;
    if (gaussian) {
      model.covariance =
          with_key("covariance", [&] { return parse_covariance(string_at("covariance")); });
    }
    const char* table = gaussian ? "means" : "probabilities";

    // K from n_components, else from the weights; D from n_features, else from the first row of
    // the means / probabilities. When both are given, the arrays are checked against them below.
    const Json& weights = require("weights");
    if (find("n_components") != nullptr) {
      model.n_components = int_at("n_components", 1);
    } else if (weights.is_array()) {
      model.n_components = static_cast<int>(std::min<std::size_t>(
          weights.size(), static_cast<std::size_t>(std::numeric_limits<int>::max())));
      if (model.n_components < 1) fail("'weights' is empty");
    } else {
      fail("'weights' is " + describe(weights) + ", expected an array of numbers");
    }
    const Json& rows = require(table);
    if (find("n_features") != nullptr) {
      model.n_features = int_at("n_features", 1);
    } else if (rows.is_array() && !rows.empty() && rows.front().is_array()) {
      model.n_features = static_cast<int>(std::min<std::size_t>(
          rows.front().size(), static_cast<std::size_t>(std::numeric_limits<int>::max())));
      if (model.n_features < 1) fail(std::string("'") + table + "'[0] is empty");
    } else {
      fail(std::string("cannot tell the number of features: give 'n_features', or '") + table +
           "' as an array of rows");
    }
    const int k = model.n_components;
    const int d = model.n_features;

    model.weights = numbers("weights", weights, {{k, "n_components"}});
    if (gaussian) {
      model.means = numbers("means", rows, {{k, "n_components"}, {d, "n_features"}});
      model.covariances =
          numbers("covariances", require("covariances"), covariance_shape(model.covariance, k, d));
      model.trials = 1;
    } else {
      model.probabilities =
          numbers("probabilities", rows, {{k, "n_components"}, {d, "n_features"}});
      if (model.family == Family::kBinomial) {
        model.trials = int_at("trials", 1);
      } else if (find("trials") != nullptr) {
        model.trials = int_at("trials", 1);
        if (model.trials != 1) {
          fail("'trials' is " + std::to_string(model.trials) +
               " but a bernoulli model has 1 trial per entry (use family \"binomial\")");
        }
      }
    }
    return model;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw IoError(path_ + ": " + what); }

  static std::string describe(const Json& value) {
    switch (value.type()) {
      case Json::value_t::null:
        return "null";
      case Json::value_t::object:
        return "an object";
      case Json::value_t::array:
        return "an array";
      case Json::value_t::string:
        return "the string " + value.dump();
      case Json::value_t::boolean:
        return value.dump();
      default:
        return "the number " + value.dump();
    }
  }

  const Json* find(const char* key) const {
    const auto it = root_.find(key);
    return it == root_.end() ? nullptr : &*it;
  }

  const Json& require(const char* key) const {
    const Json* value = find(key);
    if (value == nullptr) fail(std::string("missing key '") + key + "'");
    return *value;
  }

  std::string string_at(const char* key) const {
    const Json& value = require(key);
    if (!value.is_string()) {
      fail(std::string("'") + key + "' is " + describe(value) + ", expected a string");
    }
    return value.get<std::string>();
  }

  int int_at(const char* key, int minimum) const {
    const Json& value = require(key);
    if (!value.is_number_integer()) {
      fail(std::string("'") + key + "' is " + describe(value) + ", expected an integer");
    }
    const bool negative =
        value.is_number_integer() && !value.is_number_unsigned() && value.get<std::int64_t>() < 0;
    if (negative ||
        value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
      fail(std::string("'") + key + "' is " + value.dump() +
           ", expected an integer >= " + std::to_string(minimum));
    }
    const int result = value.get<int>();
    if (result < minimum) {
      fail(std::string("'") + key + "' is " + value.dump() +
           ", expected an integer >= " + std::to_string(minimum));
    }
    return result;
  }

  // Runs `parse` (parse_family / parse_covariance), naming the key and file in its error.
  template <typename F>
  auto with_key(const char* key, F parse) const -> decltype(parse()) {
    try {
      return parse();
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(path_ + ": '" + key + "': " + e.what());
    }
  }

  // The elements of a nested array of the given shape, row-major.
  std::vector<double> numbers(const char* key, const Json& value,
                              const std::vector<Dim>& shape) const {
    std::vector<double> out;
    out.reserve(element_count(shape));
    collect(std::string("'") + key + "'", value, shape, 0, &out);
    return out;
  }

  void collect(const std::string& name, const Json& value, const std::vector<Dim>& shape,
               std::size_t level, std::vector<double>* out) const {
    static const char* const kNouns[] = {"values", "rows", "matrices"};
    const std::size_t depth = shape.size() - level;  // dimensions still to go, >= 1
    const Dim& dim = shape[level];
    if (!value.is_array()) {
      fail(name + " is " + describe(value) + ", expected an array of " + std::to_string(dim.size) +
           (depth == 1 ? " numbers" : " arrays") + " (" + dim.name + ")");
    }
    if (static_cast<std::int64_t>(value.size()) != dim.size) {
      fail(name + " has " + std::to_string(value.size()) + " " +
           kNouns[std::min<std::size_t>(depth, 3) - 1] + ", expected " + dim.name + " = " +
           std::to_string(dim.size));
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
      const Json& element = value[i];
      const std::string element_name = name + "[" + std::to_string(i) + "]";
      if (depth > 1) {
        collect(element_name, element, shape, level + 1, out);
      } else if (element.is_number()) {
        out->push_back(element.get<double>());
      } else {
        fail(element_name + " is " + describe(element) + ", expected a number");
      }
    }
  }

  const std::string& path_;
  const Json& root_;
};

std::string read_whole_file(const std::string& path) {
  detail::InputFile file(path);
  std::string text(static_cast<std::size_t>(file.size()), '\0');
  text.resize(file.read_some(text.data(), text.size()));
  return text;
}

}  // namespace

Model read_model(const std::string& path) {
  const std::string text = read_whole_file(path);
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 3, column 5: ..." without the tag.
    std::string what = e.what();
    const std::size_t tag_end = what.find("] ");
    if (what.rfind("[json.exception.", 0) == 0 && tag_end != std::string::npos) {
      what = what.substr(tag_end + 2);
    }
    throw IoError(path + ": not valid JSON: " + what);
  }
  const Model model = ModelReader(path, root).read();
  try {
    model.validate();
  } catch (const InvalidArgument& e) {
    // validate() says "model: ..."; here the file is the model.
    std::string what = e.what();
    if (what.rfind("model: ", 0) == 0) what.erase(0, 7);
    throw InvalidArgument(path + ": " + what);
  }
  return model;
}

void write_model(const std::string& path, const Model& model, const FitReport* report) {
  const int k = model.n_components;
  const int d = model.n_features;
  if (k < 1 || d < 1) {
    throw InvalidArgument("write_model(" + path +
                          "): n_components and n_features must be >= 1, got " + std::to_string(k) +
                          " and " + std::to_string(d));
  }
  const bool gaussian = model.family == Family::kGaussian;
  check_written(path, "weights", model.weights, {{k, "n_components"}});

  Json root;
  root["format"] = kFormat;
  root["version"] = kVersion;
  root["family"] = to_string(model.family);
  if (gaussian) root["covariance"] = to_string(model.covariance);
  root["n_components"] = k;
  root["n_features"] = d;
  root["weights"] = model.weights;
  if (gaussian) {
    const std::vector<Dim> means_shape = {{k, "n_components"}, {d, "n_features"}};
    const std::vector<Dim> cov_shape = covariance_shape(model.covariance, k, d);
    check_written(path, "means", model.means, means_shape);
    check_written(path, "covariances", model.covariances, cov_shape);
    root["means"] = nest(model.means, means_shape);
    root["covariances"] = nest(model.covariances, cov_shape);
  } else {
    const std::vector<Dim> shape = {{k, "n_components"}, {d, "n_features"}};
    check_written(path, "probabilities", model.probabilities, shape);
    root["probabilities"] = nest(model.probabilities, shape);
    root["trials"] = model.trials;
  }
  if (report != nullptr) {
    // Non-finite numbers here (a -inf log-likelihood) become null: the fit section is a record
    // for people, and read_model ignores it.
    Json fit;
    fit["log_likelihood"] = report->log_likelihood;
    fit["mean_log_likelihood"] = report->mean_log_likelihood;
    fit["history"] = report->history;
    fit["n_iter"] = report->n_iter;
    fit["converged"] = report->converged;
    fit["engine"] = report->engine;
    fit["precision"] = report->precision;
    fit["seconds"] = report->seconds;
    fit["setup_seconds"] = report->setup_seconds;
    fit["init_seconds"] = report->init_seconds;
    fit["iteration_seconds"] = report->iteration_seconds;
    fit["warnings"] = report->warnings;
    fit["best_init"] = report->best_init;
    root["fit"] = std::move(fit);
  }

  std::string text;
  try {
    print(root, 0, &text);
  } catch (const Json::exception& e) {
    // Strings that are not UTF-8 (an engine name, a warning) cannot be written as JSON.
    throw InvalidArgument("write_model(" + path + "): " + e.what());
  }
  text += '\n';
  AtomicFile file(path);
  file.write(text);
  file.commit();
}

}  // namespace emix::io

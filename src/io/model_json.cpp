// The model file: {"format": "emix-model", "version": 1, "family": ..., ...} (see README).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <locale>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"
#include "emix/io.hpp"
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
  // The first extent is K's but for tied covariances, whose extents are all D.
  std::vector<Dim> shape;
  for (const std::size_t extent : covariance_extents(covariance, k, d)) {
    const bool components = shape.empty() && covariance != Covariance::kTied;
    shape.push_back(
        {static_cast<std::int64_t>(extent), components ? "n_components" : "n_features"});
  }
  return shape;
}

// The number of elements, saturating at SIZE_MAX (K x D x D of a hand-made model may not fit).
std::size_t element_count(const std::vector<Dim>& shape) {
  std::size_t n = 1;
  for (const Dim& dim : shape) {
    const auto size = static_cast<std::size_t>(dim.size);
    if (size != 0 && n > std::numeric_limits<std::size_t>::max() / size) {
      return std::numeric_limits<std::size_t>::max();
    }
    n *= size;
  }
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
    throw InvalidArgument(detail::quote_path(path) + ": cannot write the model: '" + key +
                          "' has " + std::to_string(values.size()) + " values, expected " + dims +
                          " = " + std::to_string(expected));
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    // JSON has no NaN or Inf; nlohmann would write null, which read_model then rejects.
    if (!std::isfinite(values[i])) {
      std::ostringstream text;
      text.imbue(std::locale::classic());  // not a host's global locale: 1.234 for 1234
      text << values[i];
      throw InvalidArgument(detail::quote_path(path) + ": cannot write the model: '" + key +
                            "' element " + std::to_string(i) + " is " + text.str());
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

// Deeper than any model file (root, array, K, D, D is 4) by a wide margin; a deeper document
// is refused while it is parsed, before anything recursive (destruction, dump) meets it.
constexpr int kMaxDepth = 32;

// "'means'[1][2]" for a message: keys as short excerpts, at most kMaxDepth parts.
struct JsonPath {
  struct Part {
    bool is_key = false;
    std::string key;
    std::size_t index = 0;
  };
  std::vector<Part> parts;

  std::string text() const {
    std::string out;
    for (const Part& part : parts) {
      out += part.is_key ? (out.empty() ? "" : ".") + detail::excerpt(part.key, 40)
                         : "[" + std::to_string(part.index) + "]";
    }
    return out.empty() ? "the top level" : out;
  }
};

// Builds the document as nlohmann's own DOM parser would, but refuses nesting deeper than
// kMaxDepth and turns every parse error into one IoError that names the file, the line and
// column, the field being read and a short excerpt of the offending text (nlohmann's own
// messages copy the whole token, which may be megabytes, and do not name the field).
class BoundedDomBuilder {
 public:
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  BoundedDomBuilder(const std::string& path, const std::string& text, Json* root)
      : path_(path), text_(text), root_(root) {}

  bool null() { return add(Json(nullptr)); }
  bool boolean(bool value) { return add(Json(value)); }
  bool number_integer(number_integer_t value) { return add(Json(value)); }
  bool number_unsigned(number_unsigned_t value) { return add(Json(value)); }
  bool number_float(number_float_t value, const string_t&) { return add(Json(value)); }
  bool string(string_t& value) { return add(Json(std::move(value))); }
  bool binary(binary_t& value) { return add(Json::binary(std::move(value))); }

  bool start_object(std::size_t) { return open(Json::object()); }
  bool key(string_t& key) {
    path_parts().back().key = key;
    // A repeated key is legal JSON whose meaning varies by reader (nlohmann and Python keep the
    // last value): a hand-edited file with two "means" would load one of them silently.
    if (stack_.back()->contains(key)) {
      throw IoError(detail::quote_path(path_) + ": " + pending_path() +
                    " is given twice; a model file names each field once");
    }
    pending_key_ = std::move(key);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(Json::array()); }
  bool end_array() { return close(); }

  // nlohmann writes the control bytes of the token it read as "<U+000A>": given back, so that
  // excerpt() escapes them as every other message does ("\n").
  static std::string unescaped(const std::string& token) {
    const auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    std::string bytes;
    for (std::size_t i = 0; i < token.size(); ++i) {
      if (token.compare(i, 5, "<U+00") == 0 && i + 8 <= token.size() && token[i + 7] == '>' &&
          hex(token[i + 5]) >= 0 && hex(token[i + 5]) < 2 && hex(token[i + 6]) >= 0) {
        bytes += static_cast<char>(hex(token[i + 5]) * 16 + hex(token[i + 6]));
        i += 7;
      } else {
        bytes += token[i];
      }
    }
    return bytes;
  }

  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& error) {
    const std::string last_token = unescaped(token);
    std::string where = location(position);
    if (!stack_.empty()) where += ", in " + pending_path();
    if (error.id == 406) {  // number overflow: the only out_of_range error parsing can raise
      throw IoError(detail::quote_path(path_) + ": " + where + ": the number " +
                    detail::excerpt(last_token) + " is out of the range of a double");
    }
    // nlohmann's reason without its tag, position and token: "syntax error while parsing
    // value - invalid literal", "unexpected end of input; expected ...".
    std::string reason = error.what();
    const std::size_t colon = reason.find(": ");
    if (colon != std::string::npos) reason.erase(0, colon + 2);
    const std::size_t last_read = reason.find("; last read:");
    if (last_read != std::string::npos) reason.erase(last_read);
    if (reason.size() > 160) reason = reason.substr(0, 160) + "...";
    std::string message = detail::quote_path(path_) + ": not valid JSON: " + where + ": " + reason;
    if (!last_token.empty()) message += "; last read: " + detail::excerpt(last_token);
    throw IoError(message);
  }

 private:
  std::vector<JsonPath::Part>& path_parts() { return json_path_.parts; }

  // "line L, column C" of byte `position` (1-based as nlohmann counts, the offending one).
  std::string location(std::size_t position) const {
    const std::size_t end = std::min(position, text_.size());
    std::size_t line = 1, column = 0;
    for (std::size_t i = 0; i < end; ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 0;
      } else {
        ++column;
      }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
  }

  // The field the next value would have filled.
  std::string pending_path() const {
    JsonPath next = json_path_;
    if (!next.parts.empty() && !next.parts.back().is_key) {
      next.parts.back().index = stack_.back()->size();
    }
    return next.text();
  }

  Json* place(Json&& value) {
    if (stack_.empty()) {
      *root_ = std::move(value);
      return root_;
    }
    Json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    Json& slot = parent[pending_key_];
    slot = std::move(value);
    return &slot;
  }

  bool add(Json&& value) {
    place(std::move(value));
    return true;
  }

  bool open(Json&& container) {
    if (stack_.size() >= static_cast<std::size_t>(kMaxDepth)) {
      throw IoError(detail::quote_path(path_) + ": arrays and objects nested more than " +
                    std::to_string(kMaxDepth) + " deep, in " + pending_path() +
                    "; a model file needs 4");
    }
    const bool is_object = container.is_object();
    if (!stack_.empty() && !json_path_.parts.back().is_key) {
      json_path_.parts.back().index = stack_.back()->size();
    }
    stack_.push_back(place(std::move(container)));
    JsonPath::Part part;
    part.is_key = is_object;
    json_path_.parts.push_back(part);
    return true;
  }

  bool close() {
    stack_.pop_back();
    json_path_.parts.pop_back();
    return true;
  }

  const std::string& path_;
  const std::string& text_;
  Json* root_;
  std::vector<Json*> stack_;
  JsonPath json_path_;
  std::string pending_key_;
};

class ModelReader {
 public:
  ModelReader(const std::string& path, const Json& root) : path_(path), root_(root) {}

  Model read() {
    if (!root_.is_object()) fail("the top level is " + describe(root_) + ", expected an object");
    if (const Json* format = find("format")) {
      if (!format->is_string() || format->get_ref<const std::string&>() != kFormat) {
        const bool table =
            format->is_string() && format->get_ref<const std::string&>() == "emix-select";
        fail("'format' is " + describe(*format) + ", expected \"" + kFormat + "\"" +
             (table ? ": a table of emix select's candidates (--table); the best model is the "
                      "file its -o writes"
                    : ""));
      }
    }
    if (const Json* version = find("version")) {
      if (!version->is_number_integer() || version->get<std::int64_t>() != kVersion) {
        const std::string shown = version->is_number() ? version->dump() : describe(*version);
        fail("unsupported model version " + shown + " (this emix reads version " +
             std::to_string(kVersion) + ")");
      }
    }

    Model model;
    model.family = enum_at("family", "family", parse_family, kFamilies);
    const bool gaussian = model.family == Family::kGaussian;
    if (gaussian) {
      model.covariance = enum_at("covariance", "covariance type", parse_covariance, kCovariances);
    }
    const char* table = gaussian ? "means" : "probabilities";
    // A key of the other kind of model is a mistake in the file (a Bernoulli model with "means"
    // or a covariance type was read as if they were not there).
    // (A discrete model's "covariance": "full" and a Gaussian one's "trials": 1, the values the
    // C API reports for them, are accepted.)
    const std::vector<const char*> other_kind =
        gaussian ? std::vector<const char*>{"probabilities", "trials"}
                 : std::vector<const char*>{"means", "covariances", "covariance"};
    for (const char* key : other_kind) {
      const Json* value = find(key);
      const bool default_value =
          value != nullptr && ((std::strcmp(key, "covariance") == 0 && value->is_string() &&
                                value->get_ref<const std::string&>() == "full") ||
                               (std::strcmp(key, "trials") == 0 && value->is_number_integer() &&
                                value->get<std::int64_t>() == 1));
      if (value != nullptr && !default_value) {
        fail(std::string("'") + key + "' belongs to " +
             (gaussian ? "Bernoulli and binomial models" : "Gaussian models") + ", not a " +
             to_string(model.family) + " one");
      }
    }

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

    // Every array is checked against its shape level by level before a value is stored, so a
    // 300-byte file that claims n_features = 2147483647 allocates nothing for it.
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
  static constexpr Family kFamilies[] = {Family::kGaussian, Family::kBernoulli, Family::kBinomial};
  static constexpr Covariance kCovariances[] = {Covariance::kFull, Covariance::kDiag,
                                                Covariance::kSpherical, Covariance::kTied};

  [[noreturn]] void fail(const std::string& what) const {
    throw IoError(detail::quote_path(path_) + ": " + what);
  }

  // A value for a message: its kind, and a short excerpt of a string or number.
  static std::string describe(const Json& value) {
    switch (value.type()) {
      case Json::value_t::null:
        return "null";
      case Json::value_t::object:
        return "an object";
      case Json::value_t::array:
        return "an array";
      case Json::value_t::string:
        return "the string " + detail::excerpt(value.get_ref<const std::string&>());
      case Json::value_t::boolean:
        return value.get<bool>() ? "true" : "false";
      case Json::value_t::binary:
        return "binary data";
      default:
        return "the number " + value.dump();  // a number prints in at most ~25 characters
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

  int int_at(const char* key, int minimum) const {
    const Json& value = require(key);
    if (!value.is_number_integer()) {
      fail(std::string("'") + key + "' is " + describe(value) + ", expected an integer");
    }
    const bool negative = !value.is_number_unsigned() && value.get<std::int64_t>() < 0;
    if (negative ||
        value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<int>::max()) ||
        value.get<int>() < minimum) {
      fail(std::string("'") + key + "' is " + value.dump() + ", expected an integer from " +
           std::to_string(minimum) + " to " + std::to_string(std::numeric_limits<int>::max()));
    }
    return value.get<int>();
  }

  // A string naming one of `choices`; InvalidArgument quoting an excerpt of anything else.
  template <typename Enum, std::size_t N>
  Enum enum_at(const char* key, const char* what, Enum (*parse)(const std::string&),
               const Enum (&choices)[N]) const {
    const Json& value = require(key);
    if (!value.is_string()) {
      fail(std::string("'") + key + "' is " + describe(value) + ", expected a string");
    }
    const std::string& name = value.get_ref<const std::string&>();
    for (Enum choice : choices) {
      if (name == to_string(choice)) return parse(name);
    }
    std::string names;
    for (Enum choice : choices)
      names += (names.empty() ? "" : ", ") + std::string(to_string(choice));
    throw InvalidArgument(detail::quote_path(path_) + ": '" + key + "': unknown " + what + " " +
                          detail::excerpt(name) + " (expected one of: " + names + ")");
  }

  // The elements of a nested array of the given shape, row-major.
  std::vector<double> numbers(const char* key, const Json& value,
                              const std::vector<Dim>& shape) const {
    std::vector<double> out;
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
      if (depth > 1) {
        collect(name + "[" + std::to_string(i) + "]", element, shape, level + 1, out);
      } else if (element.is_number()) {
        out->push_back(element.get<double>());
      } else {
        fail(name + "[" + std::to_string(i) + "] is " + describe(element) + ", expected a number");
      }
    }
  }

  const std::string& path_;
  const Json& root_;
};

// What data given where a model goes (`emix predict x.npy m.json`) are told after what they are.
constexpr const char* kDataForAModel =
    "; data? a model file is a JSON object, as emix fit -o writes it (emix predict and score "
    "take MODEL first, then INPUT)";

std::string read_whole_file(const std::string& path) {
  detail::InputFile file(path);
  // A .npy is named by its first bytes, before its size (one of 900 MB was read whole first, one
  // over 1 GiB refused as too long): it said "not valid JSON: line 1, column 8: a NUL byte".
  char magic[6] = {};
  const std::size_t got_magic = file.read_some(magic, sizeof magic);
  if (detail::starts_with_npy_magic(std::string_view(magic, got_magic))) {
    detail::throw_io(path, std::string("a .npy file (data), not a model file") + kDataForAModel);
  }
  // A model file holds K x D x D numbers at most; 1 GiB of text is far beyond any that a fit
  // writes, and a longer file (or an endless device) is refused rather than read into memory.
  constexpr std::uint64_t kMaxModelBytes = std::uint64_t{1} << 30;
  if (file.size() > kMaxModelBytes) {
    detail::throw_io(path, "is " + std::to_string(file.size()) +
                               " bytes; emix reads model files "
                               "of at most 1 GiB");
  }
  std::string text(magic, got_magic);
  // On the heap: a host's thread may have a small stack (musl's 128 KiB).
  std::vector<char> chunk(std::size_t{1} << 16);
  char* const buffer = chunk.data();
  while (true) {
    const std::size_t got = file.read_some(buffer, chunk.size());
    if (got == 0) break;
    if (text.size() + got > kMaxModelBytes) {
      detail::throw_io(path, "is longer than 1 GiB; emix reads model files of at most 1 GiB");
    }
    text.append(buffer, got);
  }
  return text;
}

}  // namespace

Model read_model(const std::string& path) { return read_model(path, nullptr); }

Model read_model(const std::string& path, std::string* fit_section,
                 std::string* estimator_section) {
  const cpu::ScopedNonStopFp non_stop;  // strtod raises overflow on 1e400 (fp_environment.hpp)
  const std::string text = read_whole_file(path);
  const std::size_t start = text.find_first_not_of(" \t\r\n");
  // nlohmann's lexer takes a NUL byte for the end of its input, so whatever followed one went
  // unread: a file with another's bytes after a NUL loaded as the first. JSON holds none raw;
  // NUL bytes (and white space) that end a file are padding, and are read as the end.
  const std::size_t nul = text.find('\0');
  if (nul != std::string::npos &&
      text.find_first_not_of(std::string("\0 \t\r\n", 5), nul) != std::string::npos) {
    const std::size_t line_start = text.rfind('\n', nul);
    const std::size_t line =
        1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + nul, '\n'));
    const std::size_t column = line_start == std::string::npos ? nul + 1 : nul - line_start;
    throw IoError(detail::quote_path(path) + ": not valid JSON: line " + std::to_string(line) +
                  ", column " + std::to_string(column) +
                  ": a NUL byte before more of the file (JSON holds NUL only as \\u0000)");
  }
  Json root;
  BoundedDomBuilder builder(path, text, &root);
  try {
    Json::sax_parse(text, &builder);
  } catch (const IoError& e) {
    // A text file of data (`emix score data.csv m.json`), whose first line is no JSON value.
    if (start == std::string::npos || text[start] == '{' || text[start] == '[') throw;
    throw IoError(e.what() + std::string(kDataForAModel));
  }
  const Model model = ModelReader(path, root).read();
  const auto section = [&](const char* key, std::string* out) {
    if (out == nullptr) return;
    const auto it = root.find(key);
    *out = it == root.end() ? std::string() : it->dump();
  };
  section("fit", fit_section);
  section("estimator", estimator_section);
  try {
    model.validate();
  } catch (const InvalidArgument& e) {
    // validate() says "model: ..."; here the file is the model.
    std::string what = e.what();
    if (what.rfind("model: ", 0) == 0) what.erase(0, 7);
    throw InvalidArgument(detail::quote_path(path) + ": " + what);
  }
  return model;
}

std::vector<std::string> estimator_feature_names(const std::string& estimator_section) {
  const Json section = Json::parse(estimator_section, nullptr, /*allow_exceptions=*/false);
  if (!section.is_object()) return {};
  const auto names = section.find("feature_names_in");
  if (names == section.end() || !names->is_array()) return {};
  std::vector<std::string> out;
  for (const Json& name : *names) {
    if (!name.is_string()) return {};
    out.push_back(name.get<std::string>());
  }
  return out;
}

bool read_fit_report(const std::string& fit_section, FitReport* report) {
  const cpu::ScopedNonStopFp non_stop;
  if (fit_section.empty()) return false;
  const Json fit = Json::parse(fit_section, nullptr, /*allow_exceptions=*/false);
  if (!fit.is_object()) return false;
  const auto number = [&](const char* key, double* out) {
    const auto it = fit.find(key);
    if (it == fit.end()) return;
    if (it->is_number()) *out = it->get<double>();
    if (it->is_null()) *out = std::numeric_limits<double>::quiet_NaN();
  };
  // A count or an index: a value outside 0..INT_MAX (hand-edited) is left out, as a wrong kind
  // is, not wrapped. nlohmann reads a whole number without a sign as unsigned, and only those.
  const auto integer = [&](const char* key, int* out) {
    const auto it = fit.find(key);
    if (it != fit.end() && it->is_number_unsigned() && it->get<std::uint64_t>() <= INT_MAX) {
      *out = static_cast<int>(it->get<std::uint64_t>());
    }
  };
  const auto text = [&](const char* key, std::string* out) {
    const auto it = fit.find(key);
    if (it != fit.end() && it->is_string()) *out = it->get<std::string>();
  };
  const auto numbers = [&](const char* key, std::vector<double>* out) {
    const auto it = fit.find(key);
    if (it == fit.end() || !it->is_array()) return;
    out->clear();
    for (const Json& v : *it) {
      out->push_back(v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN());
    }
  };
  number("log_likelihood", &report->log_likelihood);
  number("mean_log_likelihood", &report->mean_log_likelihood);
  numbers("history", &report->history);
  integer("n_iter", &report->n_iter);
  const auto converged = fit.find("converged");
  if (converged != fit.end() && converged->is_boolean()) report->converged = converged->get<bool>();
  text("engine", &report->engine);
  text("precision", &report->precision);
  number("seconds", &report->seconds);
  number("setup_seconds", &report->setup_seconds);
  number("init_seconds", &report->init_seconds);
  numbers("iteration_seconds", &report->iteration_seconds);
  const auto warnings = fit.find("warnings");
  if (warnings != fit.end() && warnings->is_array()) {
    report->warnings.clear();
    for (const Json& w : *warnings) {
      if (w.is_string()) report->warnings.push_back(w.get<std::string>());
    }
  }
  integer("best_init", &report->best_init);
  return true;
}

namespace {

std::string model_text(const std::string& path, const Model& model, const FitReport* report,
                       const std::string& estimator_section, const std::string& fit_section) {
  const int k = model.n_components;
  const int d = model.n_features;
  if (k < 1 || d < 1) {
    throw InvalidArgument(detail::quote_path(path) +
                          ": cannot write the model: "
                          "n_components and n_features must be >= 1, got " +
                          std::to_string(k) + " and " + std::to_string(d));
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
  // Nothing read_model would refuse: a covariance that is not positive definite (emix_maximize
  // of statistics whose component collapsed) would leave a file that no command can read.
  try {
    model.validate();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(detail::quote_path(path) + ": cannot write the model: " + e.what());
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
  } else if (!fit_section.empty()) {
    Json fit = Json::parse(fit_section, nullptr, /*allow_exceptions=*/false);
    if (fit.is_discarded()) {
      throw InvalidArgument(detail::quote_path(path) +
                            ": cannot write the model: "
                            "the fit section is not the text of JSON");
    }
    root["fit"] = std::move(fit);
  }
  if (!estimator_section.empty()) {
    // Any JSON, as the fit section: a file read with "estimator": null was refused when written
    // back, though emix.h promises both sections back as they were.
    Json estimator = Json::parse(estimator_section, nullptr, /*allow_exceptions=*/false);
    if (estimator.is_discarded()) {
      throw InvalidArgument(detail::quote_path(path) +
                            ": cannot write the model: "
                            "the estimator section is not the text of JSON");
    }
    root["estimator"] = std::move(estimator);
  }

  std::string text;
  try {
    print(root, 0, &text);
  } catch (const Json::exception& e) {
    // Strings that are not UTF-8 (an engine name, a warning) cannot be written as JSON.
    throw InvalidArgument(detail::quote_path(path) + ": cannot write the model: " + e.what());
  }
  text += '\n';
  return text;
}

}  // namespace

void write_model(OutputFile& out, const Model& model, const FitReport* report,
                 const std::string& estimator_section, const std::string& fit_section) {
  out.write(model_text(out.path(), model, report, estimator_section, fit_section));
}

void write_model(const std::string& path, const Model& model, const FitReport* report,
                 const std::string& estimator_section, const std::string& fit_section) {
  // The text first: a model that cannot be written leaves no temporary behind.
  const std::string text = model_text(path, model, report, estimator_section, fit_section);
  OutputFile out(path);
  out.write(text);
  out.commit();
}

}  // namespace emix::io

#include "core/validate.hpp"

#include <cmath>
#include <sstream>

#include "emix/errors.hpp"

namespace emix {

namespace {

template <typename T>
void check_values(const T* data, std::int64_t rows, std::int64_t cols, Family family, int trials) {
  for (std::int64_t n = 0; n < rows; ++n) {
    for (std::int64_t d = 0; d < cols; ++d) {
      const double v = static_cast<double>(data[n * cols + d]);
      const char* problem = nullptr;
      if (!std::isfinite(v)) {
        problem = "is not finite";
      } else if (family == Family::kBernoulli && v != 0.0 && v != 1.0) {
        problem = "is not 0 or 1, as a Bernoulli mixture needs";
      } else if (family == Family::kBinomial && (v < 0 || v > trials || v != std::floor(v))) {
        problem = "is not a whole count in [0, trials]";
      }
      if (problem) {
        std::ostringstream msg;
        msg << "data: row " << n + 1 << ", column " << d + 1 << " is " << v << ", which "
            << problem;
        if (family == Family::kBinomial) msg << " (trials = " << trials << ")";
        throw InvalidArgument(msg.str());
      }
    }
  }
}

void check_data(const DataView& x, Family family, int trials) {
  if (x.rows < 1) throw InvalidArgument("data: no rows");
  if (x.cols < 1) throw InvalidArgument("data: no columns");
  if (!x.data) throw InvalidArgument("data: null pointer");
  if (x.cols > (1 << 20)) {
    throw InvalidArgument("data: " + std::to_string(x.cols) +
                          " columns is more than emix supports");
  }
  if (x.space != MemorySpace::kHost) return;  // device data are the caller's responsibility
  if (x.dtype == DType::kFloat32) {
    check_values(static_cast<const float*>(x.data), x.rows, x.cols, family, trials);
  } else {
    check_values(static_cast<const double*>(x.data), x.rows, x.cols, family, trials);
  }
}

}  // namespace

void validate_sample_weight(const double* sample_weight, std::int64_t rows,
                            bool require_positive_sum) {
  if (!sample_weight) return;
  double total = 0;
  for (std::int64_t n = 0; n < rows; ++n) {
    const double w = sample_weight[n];
    if (!std::isfinite(w) || w < 0) {
      std::ostringstream msg;
      msg << "sample weight of row " << n + 1 << " is " << w
          << "; weights must be finite and non-negative";
      throw InvalidArgument(msg.str());
    }
    total += w;
  }
  if (require_positive_sum && !(total > 0)) throw InvalidArgument("sample weights sum to 0");
}

void validate_fit_options(const FitOptions& o, std::int64_t cols) {
  const auto fail = [](const std::string& what) { throw InvalidArgument(what); };
  if (o.n_components < 1) {
    fail("n_components is " + std::to_string(o.n_components) + ", must be at least 1");
  }
  if (o.family == Family::kBinomial && o.trials < 1) {
    fail("trials is " + std::to_string(o.trials) + ", must be at least 1");
  }
  if (o.max_iter < 0) fail("max_iter is " + std::to_string(o.max_iter) + ", must be >= 0");
  if (!(o.tol >= 0)) fail("tol must be >= 0");
  if (!(o.reg_covar >= 0) || !std::isfinite(o.reg_covar)) fail("reg_covar must be >= 0");
  if (!(o.prob_epsilon > 0 && o.prob_epsilon < 0.5)) fail("prob_epsilon must be in (0, 0.5)");
  if (o.n_init < 1) fail("n_init is " + std::to_string(o.n_init) + ", must be at least 1");
  if (o.init_max_rows < o.n_components) fail("init_max_rows must be at least n_components");
  if (o.init_model) {
    const Model& m = *o.init_model;
    m.validate();
    if (m.family != o.family) {
      fail(std::string("init model: family is ") + to_string(m.family) + ", but the fit asks for " +
           to_string(o.family));
    }
    if (m.family == Family::kGaussian && m.covariance != o.covariance) {
      fail(std::string("init model: covariance type is ") + to_string(m.covariance) +
           ", but the fit asks for " + to_string(o.covariance));
    }
    if (m.n_components != o.n_components) {
      fail("init model has " + std::to_string(m.n_components) +
           " components, but the fit asks for " + std::to_string(o.n_components));
    }
    if (m.n_features != cols) {
      fail("init model has " + std::to_string(m.n_features) + " features, but the data have " +
           std::to_string(cols) + " columns");
    }
    if (m.family == Family::kBinomial && m.trials != o.trials) {
      fail("init model has trials = " + std::to_string(m.trials) + ", but the fit asks for " +
           std::to_string(o.trials));
    }
  }
}

void validate_fit_data(const DataView& x, const FitOptions& o) {
  check_data(x, o.family, o.family == Family::kBinomial ? o.trials : 1);
}

void validate_fit_arguments(const DataView& x, const FitOptions& o, const double* sample_weight) {
  if (o.n_components >= 1 && x.rows >= 1 && o.n_components > x.rows) {
    throw InvalidArgument("n_components = " + std::to_string(o.n_components) +
                          " is larger than the number of rows (" + std::to_string(x.rows) + ")");
  }
  validate_fit_options(o, x.cols);
  validate_fit_data(x, o);
  validate_sample_weight(sample_weight, x.rows);
}

void validate_model_for_data(const Model& model, const DataView& x) {
  model.validate();
  if (model.n_features != x.cols) {
    throw InvalidArgument("the model has " + std::to_string(model.n_features) +
                          " features, but the data have " + std::to_string(x.cols) + " columns");
  }
  check_data(x, model.family, model.trials);
}

}  // namespace emix

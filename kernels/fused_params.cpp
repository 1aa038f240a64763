#include "kernels/fused_params.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "emix/errors.hpp"

namespace emix::gpu {

template <typename C>
FusedParams<C> make_fused_params(const PreparedModel& m, const FusedPlan& p) {
  if (m.k != p.k || m.d != p.d || fused_family_of(m.family, m.covariance) != p.family) {
    throw InvalidArgument("GPU engine: the model (K = " + std::to_string(m.k) +
                          ", D = " + std::to_string(m.d) +
                          ") does not match the kernel plan (K = " + std::to_string(p.k) +
                          ", D = " + std::to_string(p.d) + ")");
  }
  const std::size_t k = static_cast<std::size_t>(m.k), d = static_cast<std::size_t>(m.d);
  const std::size_t kp = static_cast<std::size_t>(p.kp), dq = static_cast<std::size_t>(p.dq);
  FusedParams<C> out;
  out.c0.assign(dq, C(0));
  out.a.assign(kp * dq, C(0));
  out.b.assign(kp * dq, C(0));
  out.shift.assign(kp * dq, C(0));
  out.cst.assign(kp, -std::numeric_limits<C>::infinity());
  for (std::size_t c = 0; c < k; ++c) {
    out.cst[c] = static_cast<C>(m.log_weights[c] + m.log_norm[c]);
  }

  if (m.family != Family::kGaussian) {
    for (std::size_t c = 0; c < k; ++c) {
      for (std::size_t j = 0; j < d; ++j) out.a[c * dq + j] = static_cast<C>(m.logit[c * d + j]);
    }
    if (m.family == Family::kBinomial && m.trials > 1 && m.trials <= kMaxLogChoose) {
      out.log_choose = *log_binomial_coefficient_table(m.trials);
    }
    return out;
  }

  // c0: one shift for all rows, the weighted mean of the centres rounded to C, so that the
  // arithmetic sees x - c0 rather than large numbers that cancel.
  std::vector<double> c0(d, 0.0);
  for (std::size_t j = 0; j < d; ++j) {
    double s = 0.0;
    for (std::size_t c = 0; c < k; ++c) s += std::exp(m.log_weights[c]) * m.centres[c * d + j];
    out.c0[j] = static_cast<C>(std::isfinite(s) ? s : 0.0);
    c0[j] = static_cast<double>(out.c0[j]);
  }
  for (std::size_t c = 0; c < k; ++c) {
    for (std::size_t j = 0; j < d; ++j) {
      out.a[c * dq + j] = static_cast<C>(m.means[c * d + j] - c0[j]);
      out.shift[c * dq + j] = static_cast<C>(m.centres[c * d + j] - c0[j]);
    }
  }
  switch (m.covariance) {
    case Covariance::kDiag:
    case Covariance::kSpherical:
      for (std::size_t c = 0; c < k; ++c) {
        for (std::size_t j = 0; j < d; ++j) {
          const double b =
              m.covariance == Covariance::kSpherical ? m.prec_chol[c] : m.prec_chol[c * d + j];
          out.b[c * dq + j] = static_cast<C>(b);
        }
      }
      break;
    case Covariance::kFull:
    case Covariance::kTied: {
      const std::size_t blocks = m.covariance == Covariance::kTied ? 1 : k;
      const std::size_t dq8 = static_cast<std::size_t>(p.dq8);
      out.u.assign(blocks * dq * dq8, C(0));
      for (std::size_t c = 0; c < blocks; ++c) {
        for (std::size_t i = 0; i < d; ++i) {
          for (std::size_t j = i; j < d; ++j) {
            out.u[(c * dq + i) * dq8 + j] = static_cast<C>(m.prec_chol[(c * d + i) * d + j]);
          }
        }
      }
      break;
    }
  }
  return out;
}

FusedParamLayout fused_param_layout(const FusedPlan& p) {
  const auto round4 = [](std::int64_t n) { return (n + 3) / 4 * 4; };
  const std::int64_t kd = std::int64_t{p.kp} * p.dq;
  FusedParamLayout l;
  l.c0 = 0;
  l.a = round4(p.dq);
  l.b = l.a + kd;
  l.shift = l.b + kd;
  l.cst = l.shift + kd;
  l.u = l.cst + round4(p.kp);
  const std::int64_t u_blocks = p.family == FusedFamily::kFull ? (p.tied ? 1 : p.k) : 0;
  l.total = l.u + u_blocks * p.dq * p.dq8;
  return l;
}

template FusedParams<float> make_fused_params<float>(const PreparedModel&, const FusedPlan&);
template FusedParams<double> make_fused_params<double>(const PreparedModel&, const FusedPlan&);

}  // namespace emix::gpu

// The single-pass E-step, written as phases of one thread block so that the same code runs as a
// CUDA kernel (fused_estep.cu: the phases in order with a barrier between them) and, thread by
// thread, on the CPU (tests/fused_estep_emulation_test.cpp), which checks the indexing for
// awkward shapes where no GPU answers. Plain C++ apart from EMIX_HD and the vector loads.
//
// A block of NT threads takes tiles of R rows in turn: tiles b, b + gridDim, ... Per tile:
//   stage    xs[r][d] = x[row0 + r][d] - c0[d] (compute type C), w[r] = the row's weight
//   phase A  lg[k][r] = log w_k + log p(x_r | k) (without the binomial coefficient)
//   phase B  per row: log-sum-exp over k; lg[k][r] = w_r p(k | x_r); w_r log p(x_r) summed
//   phase C  every statistic of the tile, summed over its rows in C, added in double to the
//            block's slice of `part` (StatisticsLayout, packed); with p.block_combine, to the
//            thread's slots of `acc`, whose row groups fused_combine_groups adds up at the end
// or, evaluating, phase B writes log p(x_r), the label and (then) p(k | x_r) per row.
// X is read once; no N x K value reaches device memory. Every sum has an order fixed by the
// plan and the grid: a block's tiles in order, a thread's rows in order, row groups in order.
#pragma once

#include <cstdint>

#include "core/pointwise.hpp"
#include "core/statistics.hpp"
#include "kernels/fused_plan.hpp"

namespace emix::gpu {

// Four consecutive values (16 bytes of float, 32 of double), loaded in one or two 16-byte
// accesses on the device: callers guarantee 16-byte alignment.
template <typename C>
struct Vec4 {
  C v[4];
};

template <typename C>
EMIX_HD inline Vec4<C> load4(const C* p) {
#ifdef __CUDA_ARCH__
  if constexpr (sizeof(C) == 4) {
    const float4 f = *reinterpret_cast<const float4*>(p);
    return Vec4<C>{{f.x, f.y, f.z, f.w}};
  } else {
    const double2 a = *reinterpret_cast<const double2*>(p);
    const double2 b = *reinterpret_cast<const double2*>(p + 2);
    return Vec4<C>{{a.x, a.y, b.x, b.y}};
  }
#else
  return Vec4<C>{{p[0], p[1], p[2], p[3]}};
#endif
}

// The same through the read-only cache: parameters every lane of a warp reads at one address.
template <typename C>
EMIX_HD inline Vec4<C> load4_readonly(const C* p) {
#ifdef __CUDA_ARCH__
  if constexpr (sizeof(C) == 4) {
    const float4 f = __ldg(reinterpret_cast<const float4*>(p));
    return Vec4<C>{{f.x, f.y, f.z, f.w}};
  } else {
    const double2 a = __ldg(reinterpret_cast<const double2*>(p));
    const double2 b = __ldg(reinterpret_cast<const double2*>(p + 2));
    return Vec4<C>{{a.x, a.y, b.x, b.y}};
  }
#else
  return Vec4<C>{{p[0], p[1], p[2], p[3]}};
#endif
}

template <typename C>
EMIX_HD inline C load_readonly(const C* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

template <typename C>
EMIX_HD inline Vec4<C> operator-(const Vec4<C>& a, const Vec4<C>& b) {
  return Vec4<C>{{a.v[0] - b.v[0], a.v[1] - b.v[1], a.v[2] - b.v[2], a.v[3] - b.v[3]}};
}

// What a fused launch reads and writes. Parameter arrays are device memory in the compute type
// C, zero-padded: a, b, shift are kp x dq (row k at k * dq), cst kp, u (kFull) K_u x dq x dq8.
template <typename T, typename C>
struct FusedArgs {
  const T* x = nullptr;                // count x D, row-major
  std::int64_t count = 0;              // rows of this launch
  const double* weights = nullptr;     // count sample weights, or null for ones
  const C* c0 = nullptr;               // dq: taken off every row before anything else
  const C* a = nullptr;                // kDiag, kFull: mean_k - c0; kLinear: logit_k
  const C* b = nullptr;                // kDiag: the precision Cholesky diagonal
  const C* shift = nullptr;            // centre_k - c0: what the statistics are centred on
  const C* cst = nullptr;              // log w_k + log_norm_k; -inf for padding components
  const C* u = nullptr;                // kFull: U_k (row i, column j), rows of dq8
  const double* log_choose = nullptr;  // kLinear, trials > 1: log C(m, x) for x = 0..m, or null
  int trials = 1;
  StatisticsLayout layout;         // packed
  double* part = nullptr;          // accumulate: one slice of layout.size() per block
  double* log_prob = nullptr;      // evaluate: count values, or null
  double* resp = nullptr;          // evaluate: count x K, row-major, or null
  std::int32_t* labels = nullptr;  // evaluate: count, or null
};

template <typename C>
struct FusedShared {
  C* xs;
  C* lg;
  C* w;
  C* red;  // row_groups > 1: the tile's row-group sums, or with p.block_combine the block's, in
           // double (acc())
  double* fin;
  EMIX_HD double* acc() const { return reinterpret_cast<double*>(red); }
};

template <typename C>
EMIX_HD inline FusedShared<C> carve_shared(unsigned char* base, const FusedPlan& p) {
  return FusedShared<C>{
      reinterpret_cast<C*>(base + p.xs_offset), reinterpret_cast<C*>(base + p.lg_offset),
      reinterpret_cast<C*>(base + p.w_offset), reinterpret_cast<C*>(base + p.red_offset),
      reinterpret_cast<double*>(base + p.fin_offset)};
}

// What a thread carries from tile to tile: its rows' contributions to the log-likelihood, the
// weight sum and the responsibilities' entropy, in double.
struct FusedThreadSums {
  double log_likelihood = 0;
  double weight = 0;
  double entropy = 0;
};

// Once per block, before its first tile: the padding features dq..dp and every row of xs to
// zero, so that the padding of the tile never holds stale or uninitialised values.
template <typename C>
EMIX_HD inline void fused_clear(int tid, const FusedPlan& p, const FusedShared<C>& s) {
  const int n = p.rows * p.dp;
  for (int i = tid; i < n; i += p.threads) s.xs[i] = C(0);
}

// Rows [row0, row0 + rows) of x, coalesced (thread t takes elements t, t + NT, ... of the
// tile's rows * D contiguous values), into xs[r * dp + d]; their weights into w (zero from
// `rows` on).
template <typename T, typename C>
EMIX_HD inline void fused_stage(int tid, const FusedPlan& p, const FusedArgs<T, C>& a,
                                const FusedShared<C>& s, std::int64_t row0, int rows) {
  const int d = p.d;
  const int n = rows * d;
  const T* src = a.x + row0 * d;
  // (r, j) of element e = tid + i * NT, advanced without a division per element.
  const int step_rows = p.threads / d;
  const int step_cols = p.threads - step_rows * d;
  int r = tid / d;
  int j = tid - r * d;
  for (int e = tid; e < n; e += p.threads) {
    s.xs[r * p.dp + j] = static_cast<C>(src[e]) - a.c0[j];
    r += step_rows;
    j += step_cols;
    if (j >= d) {
      j -= d;
      ++r;
    }
  }
  for (int i = tid; i < p.rows; i += p.threads) {
    C w = C(0);
    if (i < rows) w = a.weights != nullptr ? static_cast<C>(a.weights[row0 + i]) : C(1);
    s.w[i] = w;
  }
}

// Phase A. Item (component block kb, row block rb) covers rows rb + i R/4 (i < 4; interleaved,
// so that consecutive lanes read consecutive rows) and components 4 kb .. 4 kb + 3 (kDiag,
// kLinear), or component k (kFull). Lanes of a warp share their components, so parameter reads
// are broadcasts. kFull takes y = (x - mean) U in blocks of kCols columns (8, or 4 for the lean
// kernels: FusedPlan::lean).
template <FusedFamily F, typename T, typename C, int kCols = 8>
EMIX_HD inline void fused_log_joint(int tid, const FusedPlan& p, const FusedArgs<T, C>& a,
                                    const FusedShared<C>& s) {
  const int rb_count = p.row_blocks();
  const int n_items = p.phase_a_items();
  for (int item = tid; item < n_items; item += p.threads) {
    const int rb = item % rb_count;
    const int group = item / rb_count;  // component block (kDiag, kLinear) or component (kFull)
    int rows[4];
    for (int i = 0; i < 4; ++i) rows[i] = rb + i * rb_count;
    if constexpr (F == FusedFamily::kFull) {
      const int k = group;
      const C* uk = a.u + (p.tied ? 0 : static_cast<std::int64_t>(k) * p.dq * p.dq8);
      const C* ak = a.a + static_cast<std::int64_t>(k) * p.dq;
      C sq[4] = {C(0), C(0), C(0), C(0)};
      // y = (x - mean_k) U_k, kCols columns at a time; U_k is upper triangular, so column block
      // jb needs rows i < kCols (jb + 1) only. Columns from dq on are padding (U's are zero).
      static_assert(kCols == 4 || kCols == 8, "U's rows are dq8 long: blocks of 4 or 8 columns");
      const int col_blocks = (kCols == 4 ? p.dq : p.dq8) / kCols;
      for (int jb = 0; jb < col_blocks; ++jb) {
        C y[4][kCols];
        for (int i = 0; i < 4; ++i) {
          for (int j = 0; j < kCols; ++j) y[i][j] = C(0);
        }
        const int ic_limit = (kCols / 4) * (jb + 1);
        const int ic_end = p.dq / 4 < ic_limit ? p.dq / 4 : ic_limit;
        for (int ic = 0; ic < ic_end; ++ic) {
          const Vec4<C> mean = load4_readonly(ak + 4 * ic);
          Vec4<C> xv[4];
          for (int i = 0; i < 4; ++i) xv[i] = load4(s.xs + rows[i] * p.dp + 4 * ic) - mean;
          for (int ii = 0; ii < 4; ++ii) {
            const C* urow = uk + static_cast<std::int64_t>(4 * ic + ii) * p.dq8 + kCols * jb;
            Vec4<C> u[kCols / 4];
            for (int h = 0; h < kCols / 4; ++h) u[h] = load4_readonly(urow + 4 * h);
            for (int i = 0; i < 4; ++i) {
              const C xi = xv[i].v[ii];
              for (int j = 0; j < kCols; ++j) y[i][j] += xi * u[j / 4].v[j % 4];
            }
          }
        }
        for (int i = 0; i < 4; ++i) {
          for (int j = 0; j < kCols; ++j) sq[i] += y[i][j] * y[i][j];
        }
      }
      const C c = load_readonly(a.cst + k);
      for (int i = 0; i < 4; ++i) s.lg[k * p.lg_stride + rows[i]] = c - C(0.5) * sq[i];
    } else {
      const int k0 = 4 * group;
      C acc[4][4];
      for (int i = 0; i < 4; ++i) {
        for (int c = 0; c < 4; ++c) acc[i][c] = C(0);
      }
      for (int dc = 0; dc < p.dq / 4; ++dc) {
        Vec4<C> xv[4];
        for (int i = 0; i < 4; ++i) xv[i] = load4(s.xs + rows[i] * p.dp + 4 * dc);
        for (int c = 0; c < 4; ++c) {
          const std::int64_t at = static_cast<std::int64_t>(k0 + c) * p.dq + 4 * dc;
          const Vec4<C> av = load4_readonly(a.a + at);
          if constexpr (F == FusedFamily::kDiag) {
            const Vec4<C> bv = load4_readonly(a.b + at);
            for (int i = 0; i < 4; ++i) {
              for (int j = 0; j < 4; ++j) {
                const C t = (xv[i].v[j] - av.v[j]) * bv.v[j];
                acc[i][c] += t * t;
              }
            }
          } else {
            for (int i = 0; i < 4; ++i) {
              for (int j = 0; j < 4; ++j) acc[i][c] += xv[i].v[j] * av.v[j];
            }
          }
        }
      }
      for (int c = 0; c < 4; ++c) {
        const C cst = load_readonly(a.cst + k0 + c);
        for (int i = 0; i < 4; ++i) {
          s.lg[(k0 + c) * p.lg_stride + rows[i]] =
              F == FusedFamily::kDiag ? cst - C(0.5) * acc[i][c] : cst + acc[i][c];
        }
      }
    }
  }
}

// sum_d log C(m, x_rd) for a kLinear row with trials > 1 (0 otherwise), in double.
template <FusedFamily F, typename T, typename C>
EMIX_HD inline double fused_log_binomial(const FusedPlan& p, const FusedArgs<T, C>& a,
                                         const C* xr) {
  double sum = 0;
  if constexpr (F == FusedFamily::kLinear) {
    if (a.trials > 1) {
      for (int j = 0; j < p.d; ++j) {
        const double x = static_cast<double>(xr[j]);
        if (a.log_choose != nullptr) {
          int i = static_cast<int>(x);
          i = i < 0 ? 0 : (i > a.trials ? a.trials : i);
          sum += load_readonly(a.log_choose + i);
        } else {
          sum += log_binomial_coefficient(static_cast<double>(a.trials), x);
        }
      }
    }
  }
  return sum;
}

// exp(t) for fused_softmax: on the device in float, the hardware's exponential (__expf: ex2.approx
// of t log2(e), within 2 + 1.2 |t| units in the last place, so within 1e-5 relative over the
// t >= log_negligible (about -70) it is asked for, and 2e-7 for the terms near the largest that
// carry the sums); elsewhere exp itself.
template <typename C>
EMIX_HD inline C fused_exp(C t) {
#ifdef __CUDA_ARCH__
  if constexpr (sizeof(C) == 4) return __expf(t);
#endif
  return exp_of(t);
}

// A row's softmax for phase B: softmax_in_place (core/pointwise.hpp), or with p.fast_softmax, for
// a row whose log-joints are all finite (every row of valid data with positive weights, in
// practice), a shorter path with the same rules: exp_or_zero's threshold, the entropy's two
// non-negative terms. It divides once a row instead of once a component (weight / sum, then a
// product) and takes fused_exp, so its values are within a few units in the last place of
// softmax_in_place's (float on the device: fused_exp's error). A row with a NaN or infinite
// term takes softmax_in_place itself.
template <typename C>
EMIX_HD inline LogSumExp<C> fused_softmax(const FusedPlan& p, C* v, C weight,
                                          C* entropy = nullptr) {
  const int n = p.k;
  const std::int64_t stride = p.lg_stride;
  if (!p.fast_softmax) return softmax_in_place(v, n, stride, weight, entropy);
  C max = v[0];
  bool finite = true;
  for (int k = 0; k < n; ++k) {
    const C t = v[k * stride];
    finite = finite && t - t == C(0);  // false for NaN and +-inf
    max = t > max ? t : max;
  }
  if (!finite) return softmax_in_place(v, n, stride, weight, entropy);
  C sum = C(0), shifted = C(0);
  for (int k = 0; k < n; ++k) {
    const C t = v[k * stride] - max;
    const C e = t < log_negligible<C>() ? C(0) : fused_exp(t);
    v[k * stride] = e;
    sum += e;
    shifted += e * t;  // t is finite: a flushed term adds nothing
  }
  const C scale = weight / sum;  // sum >= 1: the largest term is exp(0)
  for (int k = 0; k < n; ++k) v[k * stride] *= scale;
  if (entropy != nullptr) *entropy = log_of(sum) - shifted / sum;
  return LogSumExp<C>{max, sum};
}

// Phase B, accumulating: thread r (r < rows, then r + NT, ...) turns row r's log-joints into
// g_rk = w_r p(k | x_r) in place and adds w_r log p(x_r), w_r and w_r H_r to its sums.
template <FusedFamily F, typename T, typename C>
EMIX_HD inline void fused_responsibilities(int tid, const FusedPlan& p, const FusedArgs<T, C>& a,
                                           const FusedShared<C>& s, int rows,
                                           FusedThreadSums& sums) {
  for (int r = tid; r < rows; r += p.threads) {
    const C w = s.w[r];
    C entropy = C(0);
    const LogSumExp<C> parts = fused_softmax(p, s.lg + r, w, &entropy);
    const double log_prob = static_cast<double>(log_sum_exp_value(parts)) +
                            fused_log_binomial<F>(p, a, s.xs + r * p.dp);
    sums.log_likelihood += weighted_log_prob(static_cast<double>(w), log_prob);
    sums.weight += static_cast<double>(w);
    sums.entropy += weighted_log_prob(static_cast<double>(w), static_cast<double>(entropy));
  }
}

// Phase B, evaluating: log p(x_r) and the label (lowest k on ties) of each row; lg becomes
// p(k | x_r) for fused_write_responsibilities.
template <FusedFamily F, typename T, typename C>
EMIX_HD inline void fused_evaluate_rows(int tid, const FusedPlan& p, const FusedArgs<T, C>& a,
                                        const FusedShared<C>& s, std::int64_t row0, int rows) {
  for (int r = tid; r < rows; r += p.threads) {
    if (a.labels != nullptr) a.labels[row0 + r] = argmax_strided(s.lg + r, p.k, p.lg_stride);
    const LogSumExp<C> parts = fused_softmax(p, s.lg + r, C(1));
    if (a.log_prob != nullptr) {
      a.log_prob[row0 + r] = static_cast<double>(log_sum_exp_value(parts)) +
                             fused_log_binomial<F>(p, a, s.xs + r * p.dp);
    }
  }
}

// resp[(row0 + r) K + k] = lg[k][r], consecutive threads on consecutive outputs.
template <typename T, typename C>
EMIX_HD inline void fused_write_responsibilities(int tid, const FusedPlan& p,
                                                 const FusedArgs<T, C>& a, const FusedShared<C>& s,
                                                 std::int64_t row0, int rows) {
  const int n = rows * p.k;
  double* out = a.resp + row0 * p.k;
  for (int e = tid; e < n; e += p.threads) {
    const int r = e / p.k;
    const int k = e - r * p.k;
    out[e] = static_cast<double>(s.lg[k * p.lg_stride + r]);
  }
}

// The value v joins statistic `index` of the block's slice: set on the block's first tile,
// added after.
EMIX_HD inline void fused_add(double* slice, std::size_t index, double v, bool first) {
  slice[index] = first ? v : slice[index] + v;
}

// Phase C item: kDiag / kLinear (component pair kp2, feature vector dc), dc fastest (lanes of a
// warp share the pair: its g reads are broadcasts); kFull (component k, upper-triangular 4 x 4
// block (ib, jb)), the block fastest.
struct FusedItem {
  int k = 0;   // first component (kDiag, kLinear: 2 kp2) or the component (kFull)
  int dc = 0;  // kDiag, kLinear: features 4 dc .. 4 dc + 3
  int ib = 0;  // kFull: rows 4 ib .. of Q_k
  int jb = 0;  // kFull: columns 4 jb .. of Q_k, jb >= ib
};

template <FusedFamily F>
EMIX_HD inline FusedItem fused_decode_item(const FusedPlan& p, int item) {
  FusedItem it;
  if constexpr (F == FusedFamily::kFull) {
    const int nb = p.feature_blocks();
    it.k = item / p.scatter_blocks();
    int bi = item - it.k * p.scatter_blocks();
    while (bi >= nb - it.ib) {
      bi -= nb - it.ib;
      ++it.ib;
    }
    it.jb = it.ib + bi;
  } else {
    const int n_dc = p.dq / 4;
    const int kp2 = item / n_dc;
    it.dc = item - kp2 * n_dc;
    it.k = 2 * kp2;
  }
  return it;
}

// The item's values summed over rows g, g + G, ... < rows into e[0 .. item_entries), in C:
// kDiag / kLinear:
//   e[4 c + j]       S[k + c][4 dc + j] = sum g (x - shift)     (kLinear: sum g x)
//   e[8 + 4 c + j]   Q[k + c][4 dc + j] = sum g (x - shift)^2   (kDiag)
//   e[E - 2 + c]     N[k + c] = sum g
// kFull:
//   e[4 i + j]       Q_k[4 ib + i][4 jb + j] = sum g (x_i - shift_ki)(x_j - shift_kj)
//   e[16 + i]        S_k[4 ib + i]   (diagonal blocks)
//   e[20]            N_k             (diagonal blocks)
// Values per item of family F, a compile-time constant so that e[] stays in registers.
template <FusedFamily F>
EMIX_HD constexpr int item_entries() {
  return F == FusedFamily::kFull
             ? kFullItemEntries
             : (F == FusedFamily::kDiag ? kDiagItemEntries : kLinearItemEntries);
}

template <FusedFamily F, typename T, typename C>
EMIX_HD inline void fused_item_sums(const FusedPlan& p, const FusedArgs<T, C>& a,
                                    const FusedShared<C>& s, const FusedItem& it, int g, int rows,
                                    C* e) {
  const int G = p.row_groups;
  for (int i = 0; i < item_entries<F>(); ++i) e[i] = C(0);
  if constexpr (F == FusedFamily::kFull) {
    const bool diagonal = it.ib == it.jb;
    const C* sk = a.shift + static_cast<std::int64_t>(it.k) * p.dq;
    const Vec4<C> shift_i = load4_readonly(sk + 4 * it.ib);
    const Vec4<C> shift_j = load4_readonly(sk + 4 * it.jb);
    const C* gk = s.lg + it.k * p.lg_stride;
    for (int r = g; r < rows; r += G) {
      const C gv = gk[r];
      const C* xr = s.xs + r * p.dp;
      const Vec4<C> xi = load4(xr + 4 * it.ib) - shift_i;
      const Vec4<C> xj = diagonal ? xi : load4(xr + 4 * it.jb) - shift_j;
      C gx[4];
      for (int i = 0; i < 4; ++i) gx[i] = gv * xi.v[i];
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) e[4 * i + j] += gx[i] * xj.v[j];
      }
      if (diagonal) {
        for (int i = 0; i < 4; ++i) e[16 + i] += gx[i];
        e[20] += gv;
      }
    }
  } else {
    Vec4<C> shift[2];
    if constexpr (F == FusedFamily::kDiag) {
      for (int c = 0; c < 2; ++c) {
        shift[c] = load4_readonly(a.shift + static_cast<std::int64_t>(it.k + c) * p.dq + 4 * it.dc);
      }
    }
    constexpr int n_at = item_entries<F>() - 2;
    for (int r = g; r < rows; r += G) {
      const Vec4<C> x = load4(s.xs + r * p.dp + 4 * it.dc);
      for (int c = 0; c < 2; ++c) {
        const C gv = s.lg[(it.k + c) * p.lg_stride + r];
        if constexpr (F == FusedFamily::kDiag) {
          const Vec4<C> dx = x - shift[c];
          for (int j = 0; j < 4; ++j) {
            const C gd = gv * dx.v[j];
            e[4 * c + j] += gd;
            e[8 + 4 * c + j] += gd * dx.v[j];
          }
        } else {
          for (int j = 0; j < 4; ++j) e[4 * c + j] += gv * x.v[j];
        }
        e[n_at + c] += gv;
      }
    }
  }
}

// Where value e of an item goes in the packed layout, or -1 for padding (components >= K,
// features >= D, the lower half of a diagonal block) and for values another item holds.
template <FusedFamily F>
EMIX_HD inline std::int64_t fused_item_target(const FusedPlan& p, const StatisticsLayout& layout,
                                              const FusedItem& it, int e) {
  if constexpr (F == FusedFamily::kFull) {
    if (e < 16) {
      const int i = 4 * it.ib + e / 4;
      const int j = 4 * it.jb + e % 4;
      if (i >= p.d || j >= p.d || i > j) return -1;
      return static_cast<std::int64_t>(layout.q_at(it.k, i, j));
    }
    if (it.ib != it.jb) return -1;
    if (e < 20) {
      const int i = 4 * it.ib + (e - 16);
      return i < p.d ? static_cast<std::int64_t>(layout.s_at(it.k, i)) : -1;
    }
    return it.ib == 0 ? static_cast<std::int64_t>(layout.nk() + it.k) : -1;
  } else {
    constexpr int n_at = item_entries<F>() - 2;
    if (e >= n_at) {
      const int k = it.k + (e - n_at);
      return it.dc == 0 && k < p.k ? static_cast<std::int64_t>(layout.nk() + k) : -1;
    }
    const int k = it.k + (e % 8) / 4;
    const int j = 4 * it.dc + e % 4;
    if (k >= p.k || j >= p.d) return -1;
    return static_cast<std::int64_t>(e < 8 ? layout.s_at(k, j) : layout.q_at(k, j, j));
  }
}

// Phase C, round `round`: thread t sums its item (t % P + round NT when G = 1) over its row group
// (t / P) and, alone on its item (G = 1), adds the sums to the block's slice; with G > 1 it
// leaves them in red[e * NT + t] for fused_combine_groups, or with p.block_combine adds them in
// double to acc[e * NT + t] (set on the block's first tile), which only this thread touches
// until the block's end. A plan with G > 1 has one round (layout_for), so a thread's slots stand
// for one item.
template <FusedFamily F, typename T, typename C>
EMIX_HD inline void fused_statistics_round(int tid, const FusedPlan& p, const FusedArgs<T, C>& a,
                                           const FusedShared<C>& s, int rows, int round,
                                           double* slice, bool first) {
  const int P = p.items_per_round;
  const int G = p.row_groups;
  if (tid >= P * G) return;
  const int item = round * P + tid % P;
  if (item >= p.items) return;
  const int g = tid / P;
  const FusedItem it = fused_decode_item<F>(p, item);
  C e[item_entries<F>()];
  fused_item_sums<F>(p, a, s, it, g, rows, e);
  if (G == 1) {
    for (int i = 0; i < item_entries<F>(); ++i) {
      const std::int64_t at = fused_item_target<F>(p, a.layout, it, i);
      if (at >= 0) fused_add(slice, static_cast<std::size_t>(at), static_cast<double>(e[i]), first);
    }
  } else if (p.block_combine) {
    for (int i = 0; i < item_entries<F>(); ++i) {
      fused_add(s.acc(), static_cast<std::size_t>(i * p.threads + tid), static_cast<double>(e[i]),
                first);
    }
  } else {
    for (int i = 0; i < item_entries<F>(); ++i) s.red[i * p.threads + tid] = e[i];
  }
}

// With G > 1, after a round (`partial` = red, V = C) or, with p.block_combine, once at the
// block's end (`partial` = acc, V = double, first): thread u < P E adds up value e = u / P of
// item u % P over the row groups, in order, in V, and adds it to the slice.
template <FusedFamily F, typename V, typename T, typename C>
EMIX_HD inline void fused_combine_groups(int tid, const FusedPlan& p, const FusedArgs<T, C>& a,
                                         const V* partial, double* slice, bool first) {
  const int P = p.items_per_round;
  const int n = P * p.item_entries;
  for (int u = tid; u < n; u += p.threads) {
    const int item = u % P;
    const int e = u / P;
    const std::int64_t at = fused_item_target<F>(p, a.layout, fused_decode_item<F>(p, item), e);
    if (at < 0) continue;
    V v = V(0);
    for (int g = 0; g < p.row_groups; ++g) v += partial[e * p.threads + g * P + item];
    fused_add(slice, static_cast<std::size_t>(at), static_cast<double>(v), first);
  }
}

// The block's end: each thread's sums into fin; then thread 0 adds them up in thread order.
EMIX_HD inline void fused_publish_sums(int tid, const FusedPlan& p, double* fin,
                                       const FusedThreadSums& sums) {
  fin[tid] = sums.log_likelihood;
  fin[p.threads + tid] = sums.weight;
  fin[2 * p.threads + tid] = sums.entropy;
}

EMIX_HD inline void fused_finish_sums(int tid, const FusedPlan& p, const double* fin,
                                      double* slice) {
  if (tid != 0) return;
  double ll = 0, w = 0, h = 0;
  for (int t = 0; t < p.threads; ++t) {
    ll += fin[t];
    w += fin[p.threads + t];
    h += fin[2 * p.threads + t];
  }
  slice[StatisticsLayout::kLogLikelihood] = ll;
  slice[StatisticsLayout::kWeightSum] = w;
  slice[StatisticsLayout::kEntropy] = h;
}

// Tiles of a launch over `count` rows.
EMIX_HD inline std::int64_t fused_tiles(const FusedPlan& p, std::int64_t count) {
  return (count + p.rows - 1) / p.rows;
}

// Blocks of a launch over `count` rows: at most max_blocks, and no more than there are tiles,
// so that every block writes its whole slice.
EMIX_HD inline int fused_grid(const FusedPlan& p, std::int64_t count, int max_blocks) {
  const std::int64_t tiles = fused_tiles(p, count);
  return static_cast<int>(tiles < max_blocks ? (tiles > 0 ? tiles : 1) : max_blocks);
}

}  // namespace emix::gpu

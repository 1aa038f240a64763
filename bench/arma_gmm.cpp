// Armadillo's gmm_full / gmm_diag from given initial parameters, for bench/compare.py.
//
//   arma_gmm full|diag DATA.npy MEANS.npy COVS.npy WEIGHTS.npy ITERS [REPEATS]
//
// DATA is N x D float64 (C order, which is Armadillo's D x N column-major layout, so it is read
// in place); MEANS K x D, COVS K x D x D (full) or K x D (diag), WEIGHTS K. Each repeat resets the
// parameters and runs learn(..., keep_existing, km_iter = 0, em_iter = ITERS, var_floor = 1e-6),
// timed alone; the final mean log-likelihood avg_log_p is computed outside the timing. Prints one
// JSON object on stdout. Armadillo floors covariance diagonals at var_floor rather than adding
// reg_covar to them, and stops early if the mean log-likelihood changes by <= machine epsilon.
#include <omp.h>

#include <armadillo>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<double> values;
};

// The subset of the .npy format numpy.save writes for a float64 C-order array.
NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(path + ": not .npy");
  std::uint32_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    header_len = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  }
  std::string header(header_len, ' ');
  in.read(&header[0], header_len);
  if (header.find("'descr': '<f8'") == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos) {
    throw std::runtime_error(path + ": expected a float64 C-order array, header " + header);
  }
  const std::size_t open = header.find('(', header.find("'shape'"));
  const std::size_t close = header.find(')', open);
  NpyArray a;
  std::size_t count = 1;
  std::string dims = header.substr(open + 1, close - open - 1);
  std::size_t pos = 0;
  while (pos < dims.size()) {
    std::size_t comma = dims.find(',', pos);
    if (comma == std::string::npos) comma = dims.size();
    const std::string item = dims.substr(pos, comma - pos);
    if (item.find_first_of("0123456789") != std::string::npos) {
      a.shape.push_back(std::stoll(item));
      count *= static_cast<std::size_t>(a.shape.back());
    }
    pos = comma + 1;
  }
  a.values.resize(count);
  in.read(reinterpret_cast<char*>(a.values.data()),
          static_cast<std::streamsize>(count * sizeof(double)));
  if (!in) throw std::runtime_error(path + ": truncated");
  return a;
}

template <typename Gmm, typename Covs>
int run(const arma::mat& x, const arma::mat& means, const Covs& covs, const arma::rowvec& weights,
        int iters, int repeats) {
  using Clock = std::chrono::steady_clock;
  Gmm model;
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    model.set_params(means, covs, weights);
    const auto start = Clock::now();
    const bool ok =
        model.learn(x, static_cast<arma::uword>(means.n_cols), arma::maha_dist, arma::keep_existing,
                    0, static_cast<arma::uword>(iters), 1e-6, false);
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    if (!ok) {
      std::cerr << "arma_gmm: learn() failed\n";
      return 1;
    }
  }
  const double avg_log_p = model.avg_log_p(x);
  std::printf("{\"threads\": %d, \"iters\": %d, \"seconds\": [", omp_get_max_threads(), iters);
  for (std::size_t i = 0; i < seconds.size(); ++i) {
    std::printf("%s%.6f", i ? ", " : "", seconds[i]);
  }
  std::printf("], \"mean_log_likelihood\": %.17g}\n", avg_log_p);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7 || argc > 8) {
    std::cerr << "usage: arma_gmm full|diag DATA.npy MEANS.npy COVS.npy WEIGHTS.npy ITERS "
                 "[REPEATS]\n";
    return 2;
  }
  try {
    const std::string kind = argv[1];
    const NpyArray data = read_npy(argv[2]);
    const NpyArray mu = read_npy(argv[3]);
    const NpyArray cov = read_npy(argv[4]);
    const NpyArray w = read_npy(argv[5]);
    const int iters = std::stoi(argv[6]);
    const int repeats = argc == 8 ? std::stoi(argv[7]) : 1;
    if (data.shape.size() != 2 || mu.shape.size() != 2) throw std::runtime_error("bad shapes");
    const auto n = static_cast<arma::uword>(data.shape[0]);
    const auto d = static_cast<arma::uword>(data.shape[1]);
    const auto k = static_cast<arma::uword>(mu.shape[0]);
    // Row-major N x D is column-major D x N: one column per point, as Armadillo wants.
    const arma::mat x(const_cast<double*>(data.values.data()), d, n, false, true);
    const arma::mat means(mu.values.data(), d, k);
    const arma::rowvec weights(w.values.data(), k);
    if (kind == "full") {
      // K symmetric D x D slices; row- or column-major reads the same.
      const arma::cube covs(cov.values.data(), d, d, k);
      return run<arma::gmm_full>(x, means, covs, weights, iters, repeats);
    }
    if (kind == "diag") {
      const arma::mat covs(cov.values.data(), d, k);
      return run<arma::gmm_diag>(x, means, covs, weights, iters, repeats);
    }
    throw std::runtime_error("unknown kind '" + kind + "' (full or diag)");
  } catch (const std::exception& e) {
    std::cerr << "arma_gmm: " << e.what() << "\n";
    return 2;
  }
}

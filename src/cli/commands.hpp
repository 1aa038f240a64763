// The `emix` subcommands. main.cpp parses the command line into these structs; each run_*
// validates its arguments before reading any data and throws emix::Error on bad input.
#pragma once

#include <cstdint>
#include <string>

#include "cli/common.hpp"

namespace emix::cli {

// The most --max-iter takes. Every iteration adds its log-likelihood and its time to the fit's
// record, held in memory and written into the model file: --max-iter 3000000 with --tol 0 made
// a 95 MB model file, and the int range allows 700 times that. EM that has not met its
// tolerance in 100,000 iterations is not going to; the bound keeps the record under 3.2 MB.
constexpr int kMaxIterations = 100000;

// INPUT and how every command that reads data reads it.
struct InputArgs {
  std::string input;
  // .npy INPUT read through a memory mapping, chunk by chunk, instead of into memory: "auto"
  // (when the in-memory copy would take more than half the physical memory), "on" or "off".
  std::string memory_map = "auto";
  std::int64_t map_chunk_rows = 0;  // rows per chunk of the mapping (0: about 64 MiB)
  DataArgs data;
};

// The EM settings of fit and select (select fits every candidate with them), with the library's
// defaults. *_given says whether the flag was on the command line: a flag that cannot apply to
// the family is refused, not ignored.
struct EmArgs : InputArgs {
  std::string family = "gaussian";
  int trials = 1;
  bool trials_given = false;
  std::string init = "kmeans++";
  std::string sample_weight;
  int kmeans_iter = FitOptions{}.kmeans_iter;  // after k-means++ seeding (0: the seeding alone)
  bool kmeans_iter_given = false;              // refused with another --init
  int n_init = FitOptions{}.n_init;
  int max_iter = FitOptions{}.max_iter;
  double tol = FitOptions{}.tol;
  double reg_covar = FitOptions{}.reg_covar;
  bool reg_covar_given = false;  // refused for Bernoulli and binomial mixtures
  double prob_epsilon = FitOptions{}.prob_epsilon;
  bool prob_epsilon_given = false;  // refused for Gaussian mixtures
  std::uint64_t seed = FitOptions{}.seed;

  // The values a fit takes as they are; each command checks the family, trials and init.
  void copy_into(FitOptions& options) const {
    options.kmeans_iter = kmeans_iter;
    options.n_init = n_init;
    options.max_iter = max_iter;
    options.tol = tol;
    options.reg_covar = reg_covar;
    options.prob_epsilon = prob_epsilon;
    options.seed = seed;
    options.engine = engine_options(data);
  }
};

struct FitArgs : EmArgs {
  std::string output;            // -o MODEL.json
  std::string labels;            // --labels FILE.npy
  std::string responsibilities;  // --responsibilities FILE.npy
  // k, family, covariance and trials may come from --init-model instead; *_given says whether
  // the flag was on the command line (an explicit flag must agree with the init model).
  int k = 0;
  bool k_given = false;
  bool family_given = false;
  std::string covariance = "full";
  bool covariance_given = false;
  bool init_given = false;  // refused with --init-model
  std::string init_model;
  bool fixed_weights = false;
};

// emix select: a K grid and covariance types, each candidate fitted with the EmArgs.
struct SelectArgs : EmArgs {
  std::string k_grid = "1..10";  // "1..16", "1,2,4,8" or both ("1..4,8,16")
  // Comma-separated; for the discrete families (which take none) the default stands for one.
  std::string covariances = "full,diag,spherical,tied";
  bool covariance_given = false;  // refused for Bernoulli and binomial grids
  std::string criterion = "bic";
  std::string output;  // -o BEST.json
  std::string table;   // --table FILE.csv or FILE.json
  std::string plot;    // --plot FILE.png
  int plot_width = 800;
  int plot_height = 500;
  bool stdout_taken = false;  // an output is "-": the table goes to stderr
};

struct PredictArgs : InputArgs {
  std::string model;
  std::string output;
  bool proba = false;  // N x K float64 responsibilities instead of N int32 labels
};

struct ScoreArgs : InputArgs {
  std::string model;
};

struct GenerateArgs {
  std::int64_t n = 0;
  int d = 0;
  int k = 0;
  std::uint64_t seed = 0;
  std::string output;
  std::string truth;  // --truth MODEL.json
  std::string family = "gaussian";
  std::string covariance = "full";
  int trials = 10;
  std::string precision = "double";
  std::int64_t block_rows = 65536;
  bool quiet = false;
  bool covariance_given = false;  // given on the command line: refused where it cannot apply
  bool trials_given = false;
};

struct DemoArgs {
  int threads = 0;  // CPU engine threads, 0 = OpenMP's default
};

int run_fit(const FitArgs& args);
int run_select(const SelectArgs& args);
int run_predict(const PredictArgs& args);
int run_score(const ScoreArgs& args);
int run_generate(const GenerateArgs& args);
int run_demo(const DemoArgs& args);

}  // namespace emix::cli

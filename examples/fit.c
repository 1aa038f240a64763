/* Fits a three-component Gaussian mixture through emix's C API (emix/emix.h). */
#include <emix/emix.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 3000

/* A small deterministic normal generator (Box-Muller on a 64-bit LCG), so the example needs
 * nothing but the C library. */
static uint64_t state = 7;
static double uniform(void) {
  state = state * 6364136223846793005ULL + 1442695040888963407ULL;
  return ((double)(state >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(void) {
  return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform());
}

static int check(emix_status status, const char* what) {
  if (status != EMIX_OK) {
    fprintf(stderr, "%s failed: %s: %s\n", what, emix_status_name(status), emix_last_error());
    exit(1);
  }
  return 0;
}

int main(void) {
  static const double centres[3][2] = {{0, 0}, {6, 0}, {0, 6}};
  static double x[N][2];
  for (int i = 0; i < N; ++i) {
    x[i][0] = centres[i % 3][0] + normal();
    x[i][1] = centres[i % 3][1] + normal();
  }

  emix_options* options = NULL;
  emix_model* model = NULL;
  emix_fit_result result;
  check(emix_options_create(&options), "emix_options_create");
  check(emix_options_set_n_components(options, 3), "emix_options_set_n_components");
  check(emix_options_set_covariance(options, EMIX_FULL), "emix_options_set_covariance");
  check(emix_options_set_seed(options, 1), "emix_options_set_seed");
  check(emix_fit(options, x, N, 2, EMIX_FLOAT64, EMIX_HOST, NULL, &model, &result), "emix_fit");
  printf("emix %s: %d iterations, mean log-likelihood %.6f\n", emix_version(), result.n_iter,
         result.mean_log_likelihood);

  /* A bad argument is an error code with a message, not a crash. */
  if (emix_options_set_family(options, 42) != EMIX_INVALID_ARGUMENT) return 1;
  printf("a bad family gives: %s\n", emix_last_error());

  double means[3][2];
  check(emix_model_get_means(model, &means[0][0]), "emix_model_get_means");
  int found = 0;
  for (int c = 0; c < 3; ++c) {
    for (int k = 0; k < 3; ++k) {
      if (hypot(means[k][0] - centres[c][0], means[k][1] - centres[c][1]) < 0.2) {
        ++found;
        break;
      }
    }
  }

  static int32_t labels[N];
  check(emix_predict(model, options, x, N, 2, EMIX_FLOAT64, EMIX_HOST, labels), "emix_predict");
  check(emix_model_write(model, "fit_c_model.json"), "emix_model_write");
  emix_model* back = NULL;
  check(emix_model_read("fit_c_model.json", &back), "emix_model_read");
  double score = 0;
  check(emix_score(back, NULL, x, N, 2, EMIX_FLOAT64, EMIX_HOST, NULL, &score), "emix_score");
  printf("centres found: %d of 3; score of the model read back: %.6f\n", found, score);

  /* Choosing K: K = 1..5 with full and diagonal covariances, scored by BIC. The chosen
   * candidate's model is what emix_fit gives for its K and covariance type. */
  static const int ks[] = {1, 2, 3, 4, 5};
  static const int covariances[] = {EMIX_FULL, EMIX_DIAG};
  emix_selection* selection = NULL;
  check(emix_select(options, ks, 5, covariances, 2, EMIX_CRITERION_BIC, x, N, 2, EMIX_FLOAT64,
                    EMIX_HOST, NULL, &selection),
        "emix_select");
  int n_candidates = 0, best = 0, passes = 0;
  check(emix_selection_summary(selection, &n_candidates, &best, &passes), "emix_selection_summary");
  emix_candidate chosen;
  check(emix_selection_candidate(selection, best, &chosen), "emix_selection_candidate");
  printf("select: %d candidates in %d passes; best by BIC: K = %d, %s (BIC %.3f)\n", n_candidates,
         passes, chosen.n_components, chosen.covariance == EMIX_FULL ? "full" : "diag", chosen.bic);
  emix_selection_destroy(selection);

  const int ok = found == 3 && fabs(score - result.mean_log_likelihood) < 1e-9 &&
                 labels[0] != labels[1] && labels[0] == labels[3] && chosen.n_components == 3;
  emix_model_destroy(back);
  emix_model_destroy(model);
  emix_options_destroy(options);
  return ok ? 0 : 1;
}

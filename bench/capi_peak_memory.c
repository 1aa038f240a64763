/* Peak memory of the C API's evaluations: emix_predict_proba of N rows x D = 2 under K = 8
 * (8 N doubles of results in the caller's buffer) or emix_score of the same rows. Prints the
 * process's peak resident set (getrusage), to set beside the data's and the buffer's sizes.
 *   capi_peak_memory proba|score [N]      (N defaults to 10,000,000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "emix/emix.h"

int main(int argc, char** argv) {
  if (argc < 2 || (strcmp(argv[1], "proba") != 0 && strcmp(argv[1], "score") != 0)) {
    fprintf(stderr, "usage: %s proba|score [N]\n", argv[0]);
    return 2;
  }
  const long n = argc > 2 ? atol(argv[2]) : 10000000L, d = 2, k = 8;
  double* x = malloc(sizeof(double) * (size_t)(n * d));
  double* resp = strcmp(argv[1], "proba") == 0 ? malloc(sizeof(double) * (size_t)(n * k)) : NULL;
  if (!x || (strcmp(argv[1], "proba") == 0 && !resp)) return 1;
  for (long i = 0; i < n * d; ++i) x[i] = (double)(i % 1000) / 100.0;
  double weights[8], means[16], variances[8];
  for (int c = 0; c < k; ++c) {
    weights[c] = 1.0 / (double)k;
    means[2 * c] = means[2 * c + 1] = c;
    variances[c] = 1;
  }
  emix_model* model = NULL;
  if (emix_model_create(EMIX_GAUSSIAN, EMIX_SPHERICAL, (int)k, (int)d, 1, weights, means, variances,
                        NULL, &model) != EMIX_OK) {
    fprintf(stderr, "%s\n", emix_last_error());
    return 1;
  }
  double score = 0;
  const emix_status status =
      resp ? emix_predict_proba(model, NULL, x, n, d, EMIX_FLOAT64, EMIX_HOST, resp)
           : emix_score(model, NULL, x, n, d, EMIX_FLOAT64, EMIX_HOST, NULL, &score);
  if (status != EMIX_OK) {
    fprintf(stderr, "%s\n", emix_last_error());
    return 1;
  }
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  printf("%s of %ld rows: data %.0f MB, results buffer %.0f MB, peak resident %.0f MB\n", argv[1],
         n, 16.0 * (double)n / 1e6, resp ? 64.0 * (double)n / 1e6 : 0.0,
         (double)usage.ru_maxrss * 1024 / 1e6);
  emix_model_destroy(model);
  free(resp);
  free(x);
  return 0;
}

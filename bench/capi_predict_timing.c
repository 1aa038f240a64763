/* Time of one emix_predict on small data, where the engine's set-up shows: N x D rows (binary
 * for Bernoulli, uniform on [0, 1) for a spherical Gaussian), K = 10, float64, CPU engine, one
 * thread; the best of REPS calls (default 50).
 *   capi_predict_timing bernoulli|gaussian N D */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emix/emix.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s bernoulli|gaussian N D\n", argv[0]);
    return 2;
  }
  const int gaussian = strcmp(argv[1], "gaussian") == 0, k = 10;
  const long n = atol(argv[2]), d = atol(argv[3]);
  const int reps = getenv("REPS") ? atoi(getenv("REPS")) : 50;
  double* x = malloc(sizeof(double) * (size_t)(n * d));
  double* centres = malloc(sizeof(double) * (size_t)(k * d));
  int* labels = malloc(sizeof(int) * (size_t)n);
  if (!x || !centres || !labels || n < 1 || d < 1) return 1;
  srand(1);
  for (long i = 0; i < n * d; ++i) {
    x[i] = gaussian ? (double)rand() / RAND_MAX : (double)(rand() % 4 == 0);
  }
  double weights[10], variances[10];
  for (int c = 0; c < k; ++c) {
    weights[c] = 1.0 / k;
    variances[c] = 1;
    for (long j = 0; j < d; ++j) centres[c * d + j] = gaussian ? 0.1 * c : 0.1 + 0.08 * c;
  }
  emix_model* model = NULL;
  emix_options* options = NULL;
  const emix_status created = gaussian
                                  ? emix_model_create(EMIX_GAUSSIAN, EMIX_SPHERICAL, k, (int)d, 1,
                                                      weights, centres, variances, NULL, &model)
                                  : emix_model_create(EMIX_BERNOULLI, EMIX_FULL, k, (int)d, 1,
                                                      weights, NULL, NULL, centres, &model);
  if (created != EMIX_OK || emix_options_create(&options) != EMIX_OK) {
    fprintf(stderr, "%s\n", emix_last_error());
    return 1;
  }
  emix_options_set_device(options, EMIX_DEVICE_CPU);
  emix_options_set_n_threads(options, 1);
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const double start = now();
    if (emix_predict(model, options, x, n, d, EMIX_FLOAT64, EMIX_HOST, labels) != EMIX_OK) {
      fprintf(stderr, "%s\n", emix_last_error());
      return 1;
    }
    const double seconds = now() - start;
    if (seconds < best) best = seconds;
  }
  printf("%s %ld x %ld, K = %d: predict, best of %d: %.3f ms\n", argv[1], n, d, k, reps,
         best * 1e3);
  emix_options_destroy(options);
  emix_model_destroy(model);
  free(labels);
  free(centres);
  free(x);
  return 0;
}

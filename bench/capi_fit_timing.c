// The C API's fit, timed: best of 3 fits of N x D rows (K well-spread groups), 20 iterations,
// tol 0, on the CPU engine; for A/B runs of two builds (LD_LIBRARY_PATH). Used by
// results/eigen-stack-limit-2026-12-08.md.
// cc -O2 -Iinclude -Ibuild/include bench/capi_fit_timing.c -Lbuild/lib -lemix -lm -o fit_time
// ./fit_time N D K COVARIANCE  (COVARIANCE: 0 full, 1 diag, 2 spherical, 3 tied)
#include <emix/emix.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s N D K COVARIANCE\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[1]), d = atoi(argv[2]), k = atoi(argv[3]);
  int cov = atoi(argv[4]);
  double* x = malloc(sizeof(double) * n * d);
  unsigned long long s = 12345;
  for (long i = 0; i < (long)n * d; ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    x[i] = ((double)(s >> 11) / 9007199254740992.0) + (i / d) % k;
  }
  emix_options* o;
  emix_options_create(&o);
  emix_options_set_n_components(o, k);
  emix_options_set_device(o, EMIX_DEVICE_CPU);
  emix_options_set_max_iter(o, 20);
  emix_options_set_tol(o, 0);
  emix_options_set_covariance(o, cov);
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    emix_model* m = NULL;
    double t = now();
    if (emix_fit(o, x, n, d, EMIX_FLOAT64, EMIX_HOST, NULL, &m, NULL) != EMIX_OK) {
      printf("%s\n", emix_last_error());
      return 1;
    }
    t = now() - t;
    if (t < best) best = t;
    emix_model_destroy(m);
  }
  printf("%.4f\n", best);
}

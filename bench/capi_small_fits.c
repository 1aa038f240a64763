/* Wall time of whole small fits (k-means++ and k-means, then EM) through the C API, as a user
 * fitting many small data sets (one per gene, per sample, per parameter of a sweep) pays it:
 * N x D rows in two clusters 3 apart, K components, full covariance, float64, CPU engine with
 * OpenMP's default thread count, a new seed each fit; the median and the 90th percentile of REPS
 * fits. With "busy", child processes spin on every core meanwhile, as other programs, Dask
 * workers or the other fits of a joblib loop do on a user's machine: a parallel region then waits
 * for a thread the scheduler put behind one of them.
 *   capi_small_fits N D K REPS [busy] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emix/emix.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s N D K REPS [busy]\n", argv[0]);
    return 2;
  }
  const long n = atol(argv[1]), d = atol(argv[2]);
  const int k = atoi(argv[3]), reps = atoi(argv[4]);
  const int busy = argc > 5 && strcmp(argv[5], "busy") == 0;
  double* x = malloc(sizeof(double) * (size_t)(n * d));
  double* seconds = malloc(sizeof(double) * (size_t)reps);
  if (!x || !seconds || n < 1 || d < 1 || k < 1 || reps < 1) return 1;
  srand(1);
  for (long i = 0; i < n * d; ++i) x[i] = (i / d % 2 ? 3.0 : 0.0) + (double)rand() / RAND_MAX;
  enum { kMostSpinners = 256 };
  pid_t spinners[kMostSpinners];
  long n_spinners = busy ? sysconf(_SC_NPROCESSORS_ONLN) : 0;
  if (n_spinners > kMostSpinners) n_spinners = kMostSpinners;
  for (long i = 0; i < n_spinners; ++i) {
    spinners[i] = fork();
    if (spinners[i] == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // gone with the benchmark, however it ends
      for (volatile unsigned long spin = 0;; ++spin) {
      }
    }
  }
  emix_options* options = NULL;
  emix_options_create(&options);
  emix_options_set_n_components(options, k);
  emix_options_set_device(options, EMIX_DEVICE_CPU);
  int status = 0;
  for (int r = 0; r < reps && status == 0; ++r) {
    emix_model* model = NULL;
    emix_fit_result result;
    emix_options_set_seed(options, (uint64_t)r);
    const double start = now();
    if (emix_fit(options, x, n, d, EMIX_FLOAT64, EMIX_HOST, NULL, &model, &result) != EMIX_OK) {
      fprintf(stderr, "%s\n", emix_last_error());
      status = 1;
    }
    seconds[r] = now() - start;
    emix_model_destroy(model);
  }
  for (long i = 0; i < n_spinners; ++i) {
    if (spinners[i] <= 0) continue;
    kill(spinners[i], SIGKILL);
    waitpid(spinners[i], NULL, 0);
  }
  if (status == 0) {
    qsort(seconds, (size_t)reps, sizeof(double), by_value);
    printf("N %ld, D %ld, K %d%s: median %.3f ms, p90 %.3f ms a fit\n", n, d, k,
           busy ? ", every core busy" : "", 1e3 * seconds[reps / 2], 1e3 * seconds[reps * 9 / 10]);
  }
  emix_options_destroy(options);
  free(x);
  free(seconds);
  return status;
}

/* An MPI-distributed fit through the C API: each rank makes its share of three 2-D clusters
 * and every rank receives the same model.   mpirun -np 3 ./fit_mpi_c
 * (Open MPI also wants --allow-run-as-root when run as root, and --oversubscribe on a machine
 * with fewer than 3 cores.) */
#include <emix/emix_mpi.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 3000

static uint64_t state = 7;
static double uniform(void) {
  state = state * 6364136223846793005ULL + 1442695040888963407ULL;
  return ((double)(state >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(void) {
  return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform());
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  /* Every rank draws the same N points and keeps its shard of them. */
  static const double centres[3][2] = {{0, 0}, {6, 0}, {0, 6}};
  static double all[N][2];
  for (int i = 0; i < N; ++i) {
    all[i][0] = centres[i % 3][0] + normal();
    all[i][1] = centres[i % 3][1] + normal();
  }
  int64_t first = 0, count = 0;
  emix_mpi_shard(N, rank, size, &first, &count);

  emix_options* options = NULL;
  emix_model* model = NULL;
  emix_fit_result result;
  emix_options_create(&options);
  emix_options_set_n_components(options, 3);
  emix_options_set_device(options, EMIX_DEVICE_CPU);
  emix_options_set_seed(options, 1);
  const emix_status status = emix_fit_mpi(MPI_COMM_WORLD, options, all[first], count, 2,
                                          EMIX_FLOAT64, EMIX_HOST, NULL, &model, &result);
  int ok = status == EMIX_OK;
  if (!ok) fprintf(stderr, "rank %d: %s\n", rank, emix_last_error());
  if (ok) {
    double means[3][2];
    emix_model_get_means(model, &means[0][0]);
    int found = 0;
    for (int c = 0; c < 3; ++c) {
      for (int k = 0; k < 3; ++k) {
        if (hypot(means[k][0] - centres[c][0], means[k][1] - centres[c][1]) < 0.2) {
          ++found;
          break;
        }
      }
    }
    ok = found == 3;
    if (rank == 0) {
      printf("%d ranks: %d iterations, mean log-likelihood %.6f, centres found %d of 3\n", size,
             result.n_iter, result.mean_log_likelihood, found);
    }
  }
  /* Choosing K over the ranks' rows: every rank gets the same selection. */
  static const int ks[] = {1, 2, 3, 4};
  emix_selection* selection = NULL;
  if (emix_select_mpi(MPI_COMM_WORLD, options, ks, 4, NULL, 0, EMIX_CRITERION_BIC, all[first],
                      count, 2, EMIX_FLOAT64, EMIX_HOST, NULL, &selection) != EMIX_OK) {
    fprintf(stderr, "rank %d: %s\n", rank, emix_last_error());
    ok = 0;
  } else {
    int best = 0;
    emix_candidate chosen;
    if (emix_selection_summary(selection, NULL, &best, NULL) == EMIX_OK &&
        emix_selection_candidate(selection, best, &chosen) == EMIX_OK) {
      ok = ok && chosen.n_components == 3;
      if (rank == 0)
        printf("select: best by BIC K = %d (BIC %.3f)\n", chosen.n_components, chosen.bic);
    } else {
      fprintf(stderr, "rank %d: %s\n", rank, emix_last_error());
      ok = 0;
    }
  }
  emix_selection_destroy(selection);
  emix_model_destroy(model);
  emix_options_destroy(options);
  int all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Finalize();
  return all_ok ? 0 : 1;
}

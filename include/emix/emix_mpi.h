/* The C API's MPI-distributed fit (see emix/mpi.hpp for what it guarantees). Available when
 * emix was built with MPI (EMIX_WITH_MPI in emix/config.h). */
#ifndef EMIX_EMIX_MPI_H
#define EMIX_EMIX_MPI_H

/* Keep Open MPI's and MPICH's deprecated C++ bindings out when C++ includes this. */
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include "emix/emix.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Collective over comm: each rank passes its own local_rows x cols rows (local_rows may be 0)
 * and the same options (their engine settings may differ); every rank receives the same model.
 * A problem on any rank, options that differ included, gives every rank the same error status
 * and message; a failing MPI call inside emix gives EMIX_MPI_ERROR (comm's own error handler
 * still applies to the first exchange). */
emix_status emix_fit_mpi(MPI_Comm comm, const emix_options* options, const void* x,
                         int64_t local_rows, int64_t cols, int dtype, int memory,
                         const double* local_sample_weight, emix_model** model,
                         emix_fit_result* result);
/* The same for Fortran: comm is the Fortran handle (an INTEGER from the mpi module, or
 * comm%MPI_VAL from mpi_f08). */
emix_status emix_fit_mpi_f(MPI_Fint comm, const emix_options* options, const void* x,
                           int64_t local_rows, int64_t cols, int dtype, int memory,
                           const double* local_sample_weight, emix_model** model,
                           emix_fit_result* result);
/* Model selection (emix_select) over the ranks' rows, collective over comm as emix_fit_mpi is:
 * every rank passes its own rows and weights and the same options and grid, and receives the
 * same candidates, criteria and choice (times are each rank's own). Each candidate is bitwise
 * emix_fit_mpi's with its K and covariance type. */
emix_status emix_select_mpi(MPI_Comm comm, const emix_options* options, const int* n_components,
                            int n_k, const int* covariances, int n_covariances, int criterion,
                            const void* x, int64_t local_rows, int64_t cols, int dtype, int memory,
                            const double* local_sample_weight, emix_selection** selection);
emix_status emix_select_mpi_f(MPI_Fint comm, const emix_options* options, const int* n_components,
                              int n_k, const int* covariances, int n_covariances, int criterion,
                              const void* x, int64_t local_rows, int64_t cols, int dtype,
                              int memory, const double* local_sample_weight,
                              emix_selection** selection);
/* The rows [*first_row, *first_row + *row_count) rank `rank` of `size` holds when total_rows
 * are split as evenly as possible, in rank order. */
emix_status emix_mpi_shard(int64_t total_rows, int rank, int size, int64_t* first_row,
                           int64_t* row_count);

#ifdef __cplusplus
}
#endif

#endif /* EMIX_EMIX_MPI_H */

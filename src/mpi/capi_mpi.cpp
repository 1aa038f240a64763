// The C API's MPI entry points (include/emix/emix_mpi.h).
#include "emix/emix_mpi.h"

#include "capi/capi.hpp"
#include "emix/mpi.hpp"

extern "C" {

emix_status emix_fit_mpi(MPI_Comm comm, const emix_options* options, const void* x,
                         int64_t local_rows, int64_t cols, int dtype, int memory,
                         const double* local_sample_weight, emix_model** model,
                         emix_fit_result* result) {
  return emix::capi::guarded("emix_fit_mpi", [&] {
    emix::capi::require(options, "emix_fit_mpi", "options");
    emix::capi::require(model, "emix_fit_mpi", "model");
    const emix::DataView view = emix::capi::data_view(x, local_rows, cols, dtype, memory);
    emix::capi::deliver(
        emix::mpi::fit(comm, view, emix::capi::fit_options(*options), local_sample_weight), model,
        result);
  });
}

emix_status emix_fit_mpi_f(MPI_Fint comm, const emix_options* options, const void* x,
                           int64_t local_rows, int64_t cols, int dtype, int memory,
                           const double* local_sample_weight, emix_model** model,
                           emix_fit_result* result) {
  return emix_fit_mpi(MPI_Comm_f2c(comm), options, x, local_rows, cols, dtype, memory,
                      local_sample_weight, model, result);
}

emix_status emix_mpi_shard(int64_t total_rows, int rank, int size, int64_t* first_row,
                           int64_t* row_count) {
  return emix::capi::guarded("emix_mpi_shard", [&] {
    emix::capi::require(first_row, "emix_mpi_shard", "first_row");
    emix::capi::require(row_count, "emix_mpi_shard", "row_count");
    const emix::mpi::Shard shard = emix::mpi::shard_rows(total_rows, rank, size);
    *first_row = shard.first_row;
    *row_count = shard.row_count;
  });
}

}  // extern "C"

// The C API's MPI entry points (include/emix/emix_mpi.h).
#include "emix/emix_mpi.h"

#include <memory>

#include "capi/capi.hpp"
#include "emix/errors.hpp"
#include "emix/mpi.hpp"
#include "mpi/collective.hpp"

extern "C" {

namespace {

// emix_fit_mpi's body; `function` names the entry point the caller called, for its messages.
emix_status fit_mpi(const char* function, MPI_Comm comm, const emix_options* options, const void* x,
                    int64_t local_rows, int64_t cols, int dtype, int memory,
                    const double* local_sample_weight, emix_model** model,
                    emix_fit_result* result) {
  return emix::capi::guarded(function, [&] {
    emix::capi::clear_output(model);
    emix::mpi::require_initialized();
    if (comm == MPI_COMM_NULL) throw emix::InvalidArgument("comm is MPI_COMM_NULL");
    // Arguments are checked on every rank before any rank starts the fit's collectives, so
    // that a bad argument on one rank ends all of them.
    emix::DataView view;
    emix::FitOptions fit_options;
    emix::mpi::on_every_rank(comm, [&] {
      emix::capi::require(options, "options");
      emix::capi::require(model, "model");
      view = emix::capi::data_view(x, local_rows, cols, dtype, memory);
      fit_options = emix::capi::fit_options(*options);
    });
    emix::capi::deliver(emix::mpi::fit(comm, view, fit_options, local_sample_weight), model,
                        result);
  });
}

// emix_select_mpi's body, as fit_mpi's.
emix_status select_mpi(const char* function, MPI_Comm comm, const emix_options* options,
                       const int* n_components, int n_k, const int* covariances, int n_covariances,
                       int criterion, const void* x, int64_t local_rows, int64_t cols, int dtype,
                       int memory, const double* local_sample_weight, emix_selection** selection) {
  return emix::capi::guarded(function, [&] {
    emix::capi::clear_output(selection);
    emix::mpi::require_initialized();
    if (comm == MPI_COMM_NULL) throw emix::InvalidArgument("comm is MPI_COMM_NULL");
    emix::DataView view;
    emix::SelectOptions select_options;
    emix::mpi::on_every_rank(comm, [&] {
      emix::capi::require(options, "options");
      emix::capi::require(selection, "selection");
      view = emix::capi::data_view(x, local_rows, cols, dtype, memory);
      select_options = emix::capi::select_options(*options, n_components, n_k, covariances,
                                                  n_covariances, criterion);
    });
    emix::SelectReport report = emix::mpi::select(comm, view, select_options, local_sample_weight);
    auto handle = std::make_unique<emix_selection>();
    handle->report = std::move(report);
    *selection = handle.release();
  });
}

}  // namespace

emix_status emix_fit_mpi(MPI_Comm comm, const emix_options* options, const void* x,
                         int64_t local_rows, int64_t cols, int dtype, int memory,
                         const double* local_sample_weight, emix_model** model,
                         emix_fit_result* result) {
  return fit_mpi("emix_fit_mpi", comm, options, x, local_rows, cols, dtype, memory,
                 local_sample_weight, model, result);
}

emix_status emix_fit_mpi_f(MPI_Fint comm, const emix_options* options, const void* x,
                           int64_t local_rows, int64_t cols, int dtype, int memory,
                           const double* local_sample_weight, emix_model** model,
                           emix_fit_result* result) {
  emix::capi::clear_output(model);
  // MPI_Comm_f2c is an MPI call too.
  const emix_status ready =
      emix::capi::guarded("emix_fit_mpi_f", [] { emix::mpi::require_initialized(); });
  if (ready != EMIX_OK) return ready;
  return fit_mpi("emix_fit_mpi_f", MPI_Comm_f2c(comm), options, x, local_rows, cols, dtype, memory,
                 local_sample_weight, model, result);
}

emix_status emix_select_mpi(MPI_Comm comm, const emix_options* options, const int* n_components,
                            int n_k, const int* covariances, int n_covariances, int criterion,
                            const void* x, int64_t local_rows, int64_t cols, int dtype, int memory,
                            const double* local_sample_weight, emix_selection** selection) {
  return select_mpi("emix_select_mpi", comm, options, n_components, n_k, covariances, n_covariances,
                    criterion, x, local_rows, cols, dtype, memory, local_sample_weight, selection);
}

emix_status emix_select_mpi_f(MPI_Fint comm, const emix_options* options, const int* n_components,
                              int n_k, const int* covariances, int n_covariances, int criterion,
                              const void* x, int64_t local_rows, int64_t cols, int dtype,
                              int memory, const double* local_sample_weight,
                              emix_selection** selection) {
  emix::capi::clear_output(selection);
  const emix_status ready =
      emix::capi::guarded("emix_select_mpi_f", [] { emix::mpi::require_initialized(); });
  if (ready != EMIX_OK) return ready;
  return select_mpi("emix_select_mpi_f", MPI_Comm_f2c(comm), options, n_components, n_k,
                    covariances, n_covariances, criterion, x, local_rows, cols, dtype, memory,
                    local_sample_weight, selection);
}

emix_status emix_mpi_shard(int64_t total_rows, int rank, int size, int64_t* first_row,
                           int64_t* row_count) {
  return emix::capi::guarded("emix_mpi_shard", [&] {
    emix::capi::require(first_row, "first_row");
    emix::capi::require(row_count, "row_count");
    const emix::mpi::Shard shard = emix::mpi::shard_rows(total_rows, rank, size);
    *first_row = shard.first_row;
    *row_count = shard.row_count;
  });
}

}  // extern "C"

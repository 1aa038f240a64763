#include "cli/distributed_output.hpp"

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>

#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "emix/mpi.hpp"
#include "mpi/collective.hpp"

namespace emix::cli {

namespace {

int rank() {
  int r = 0;
  mpi::check(MPI_Comm_rank(MPI_COMM_WORLD, &r), "MPI_Comm_rank");
  return r;
}

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<std::int32_t>() {
  return MPI_INT32_T;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

// Every rank's `local` values reach rank 0's `sink` in rank order, in pieces of at most
// `piece` elements. A failing sink does not stop the transfer (the other ranks would wait in
// their sends); its error is thrown on every rank at the end.
template <typename T>
void gather_to_root(const std::vector<T>& local, std::int64_t piece,
                    const std::function<void(const T*, std::int64_t)>& sink) {
  int size = 1;
  mpi::check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  std::exception_ptr error;
  const auto deliver = [&](const T* data, std::int64_t count) {
    if (error) return;
    try {
      sink(data, count);
    } catch (...) {
      error = std::current_exception();
    }
  };
  const auto count = static_cast<std::int64_t>(local.size());
  if (rank() == 0) {
    for (std::int64_t first = 0; first < count; first += piece) {
      deliver(local.data() + first, std::min(piece, count - first));
    }
    std::vector<T> buffer;
    for (int r = 1; r < size; ++r) {
      std::int64_t incoming = 0;
      mpi::check(MPI_Recv(&incoming, 1, MPI_INT64_T, r, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                 "MPI_Recv");
      for (std::int64_t first = 0; first < incoming; first += piece) {
        const std::int64_t n = std::min(piece, incoming - first);
        buffer.resize(static_cast<std::size_t>(n));
        mpi::check(MPI_Recv(buffer.data(), static_cast<int>(n), mpi_type<T>(), r, 2, MPI_COMM_WORLD,
                            MPI_STATUS_IGNORE),
                   "MPI_Recv");
        deliver(buffer.data(), n);
      }
    }
  } else {
    mpi::check(MPI_Send(&count, 1, MPI_INT64_T, 0, 1, MPI_COMM_WORLD), "MPI_Send");
    for (std::int64_t first = 0; first < count; first += piece) {
      const std::int64_t n = std::min(piece, count - first);
      mpi::check(
          MPI_Send(local.data() + first, static_cast<int>(n), mpi_type<T>(), 0, 2, MPI_COMM_WORLD),
          "MPI_Send");
    }
  }
  mpi::raise_if_any_failed(MPI_COMM_WORLD, error);
}

}  // namespace

void write_distributed_labels(io::OutputFile* out, const std::vector<std::int32_t>& local,
                              std::int64_t total_rows) {
  const bool root = rank() == 0;
  std::vector<std::int32_t> all;
  if (root) all.reserve(static_cast<std::size_t>(total_rows));
  gather_to_root<std::int32_t>(local, std::int64_t{1} << 24,
                               [&](const std::int32_t* data, std::int64_t count) {
                                 all.insert(all.end(), data, data + count);
                               });
  mpi::on_every_rank(MPI_COMM_WORLD, [&] {
    if (root) io::write_npy(*out, all);
  });
}

void write_distributed_responsibilities(io::OutputFile* out, const std::vector<double>& local,
                                        std::int64_t total_rows, int k) {
  const bool root = rank() == 0;
  std::unique_ptr<io::NpyWriter> writer;
  mpi::on_every_rank(MPI_COMM_WORLD, [&] {
    if (root) writer = std::make_unique<io::NpyWriter>(*out, DType::kFloat64, total_rows, k);
  });
  // Pieces of whole rows, about 16 M values.
  const std::int64_t piece = std::max<std::int64_t>(1, (std::int64_t{1} << 24) / k) * k;
  gather_to_root<double>(local, piece, [&](const double* data, std::int64_t count) {
    writer->append(data, count / k);
  });
  mpi::on_every_rank(MPI_COMM_WORLD, [&] {
    if (root) writer->commit();
  });
}

}  // namespace emix::cli

#include "mpi/collective.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "capi/status.hpp"
#include "emix/errors.hpp"
#include "emix/version.hpp"

namespace emix::mpi {

namespace {

// MPI counts are int: larger buffers go in pieces.
constexpr std::int64_t kMaxPiece = INT_MAX / 2;

}  // namespace

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = 0;
  throw MpiError(std::string(call) +
                 " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

void require_initialized() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) throw InvalidArgument("MPI is finalized already (MPI_Finalize was called)");
  if (!initialized) throw InvalidArgument("MPI is not initialized (call MPI_Init first)");
}

void require_one_release(MPI_Comm comm) {
  // libemix_mpi calls libemix's internal functions, whose ABI only one release keeps: a
  // libemix.so of another release (the same soname, 0.1, at another patch level, as node-local
  // installs can differ) is refused on every rank, so that no rank waits for one that left.
  const bool mine = std::strcmp(emix::version(), EMIX_VERSION_STRING) != 0;
  int here = mine ? 1 : 0, anywhere = 0;
  check(MPI_Allreduce(&here, &anywhere, 1, MPI_INT, MPI_LOR, comm), "MPI_Allreduce");
  if (anywhere == 0) return;
  throw_on_every_rank(
      mine ? std::string("libemix_mpi ") + EMIX_VERSION_STRING + " needs libemix " +
                 EMIX_VERSION_STRING + ", but libemix " + emix::version() +
                 " is loaded; install both from one release"
           : std::string("a rank loaded a libemix of another release than its libemix_mpi (") +
                 EMIX_VERSION_STRING + "); install both from one release on every node");
}

namespace {
thread_local std::string g_raised_on_every_rank;  // what raise_if_any_failed threw last
}  // namespace

bool raised_on_every_rank(const std::exception& error) {
  return !g_raised_on_every_rank.empty() && g_raised_on_every_rank == error.what();
}

void held_by_every_rank(const std::exception& error) {
  const bool alike = dynamic_cast<const InvalidArgument*>(&error) != nullptr ||
                     dynamic_cast<const NumericalError*>(&error) != nullptr;
  if (alike) g_raised_on_every_rank = error.what();
}

void throw_on_every_rank(const std::string& message) {
  g_raised_on_every_rank = message;
  throw InvalidArgument(message);
}

void raise_if_any_failed(MPI_Comm comm, const std::exception_ptr& local_error) {
  int rank = 0, size = 1;
  check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  std::string message;
  const emix_status status = local_error ? capi::status_of(local_error, &message) : EMIX_OK;
  std::vector<emix_status> statuses(static_cast<std::size_t>(size));
  check(MPI_Allgather(&status, 1, MPI_INT, statuses.data(), 1, MPI_INT, comm), "MPI_Allgather");
  const auto failed =
      std::find_if(statuses.begin(), statuses.end(), [](emix_status s) { return s != EMIX_OK; });
  if (failed == statuses.end()) {
    g_raised_on_every_rank.clear();  // an earlier one was caught, and the ranks went on
    return;
  }
  const int root = static_cast<int>(failed - statuses.begin());
  int length = static_cast<int>(std::min<std::size_t>(message.size(), 1 << 16));
  check(MPI_Bcast(&length, 1, MPI_INT, root, comm), "MPI_Bcast");
  message.resize(static_cast<std::size_t>(length));
  check(MPI_Bcast(message.data(), length, MPI_CHAR, root, comm), "MPI_Bcast");
  g_raised_on_every_rank =
      "rank " + std::to_string(root) + " of " + std::to_string(size) + ": " + message;
  capi::throw_status(*failed, g_raised_on_every_rank);
}

void ordered_sum(MPI_Comm comm, double* values, std::int64_t count) {
  int rank = 0, size = 1;
  check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  if (size == 1 || count == 0) return;
  // Binomial tree towards rank 0: at distance `step`, rank r (a multiple of 2 step) adds what
  // r + step holds after its own subtree, always as mine + theirs. The grouping depends on the
  // number of ranks only, and is emix::merge_in_order's over the ranks' statistics (pairs
  // (0, 1), (2, 3), ..., then pairs of those; tests/mpi checks the two agree bitwise).
  std::vector<double> incoming;
  for (int step = 1; step < size; step *= 2) {
    if (rank % (2 * step) == step) {
      for (std::int64_t first = 0; first < count; first += kMaxPiece) {
        const int n = static_cast<int>(std::min(kMaxPiece, count - first));
        check(MPI_Send(values + first, n, MPI_DOUBLE, rank - step, 0, comm), "MPI_Send");
      }
      break;
    }
    if (rank + step < size) {
      incoming.resize(static_cast<std::size_t>(std::min(kMaxPiece, count)));
      for (std::int64_t first = 0; first < count; first += kMaxPiece) {
        const int n = static_cast<int>(std::min(kMaxPiece, count - first));
        check(MPI_Recv(incoming.data(), n, MPI_DOUBLE, rank + step, 0, comm, MPI_STATUS_IGNORE),
              "MPI_Recv");
        for (int i = 0; i < n; ++i) values[first + i] += incoming[static_cast<std::size_t>(i)];
      }
    }
  }
  for (std::int64_t first = 0; first < count; first += kMaxPiece) {
    const int n = static_cast<int>(std::min(kMaxPiece, count - first));
    check(MPI_Bcast(values + first, n, MPI_DOUBLE, 0, comm), "MPI_Bcast");
  }
}

void exclusive_sum(MPI_Comm comm, double* values, std::int64_t count) {
  for (std::int64_t first = 0; first < count; first += kMaxPiece) {
    const int n = static_cast<int>(std::min(kMaxPiece, count - first));
    check(MPI_Allreduce(MPI_IN_PLACE, values + first, n, MPI_DOUBLE, MPI_SUM, comm),
          "MPI_Allreduce");
  }
}

}  // namespace emix::mpi

#include "cli/mpi_session.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

#if EMIX_HAS_MPI
#include "emix/mpi.hpp"
#include "mpi/collective.hpp"
#endif

namespace emix::cli {

namespace {

bool g_active = false;
int g_rank = 0;
int g_size = 1;

// Launchers announce themselves in the environment: Open MPI, PMIx (Slurm, Open MPI 5), and
// PMI / Hydra (MPICH, Intel MPI, MVAPICH).
bool started_by_mpi_launcher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"}) {
    if (std::getenv(name)) return true;
  }
  return false;
}

#if !EMIX_HAS_MPI
// The emix-mpi beside this program (cli/CMakeLists.txt), or "" when there is none.
std::string mpi_program_beside_this_one() {
  std::string self(4096, '\0');
  const ssize_t length = readlink("/proc/self/exe", self.data(), self.size());
  if (length <= 0 || static_cast<std::size_t>(length) >= self.size()) return {};
  self.resize(static_cast<std::size_t>(length));
  const std::size_t slash = self.rfind('/');
  if (slash == std::string::npos) return {};
  std::string beside = self.substr(0, slash + 1) + "emix-mpi";
  return access(beside.c_str(), X_OK) == 0 ? beside : std::string();
}
#endif

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
#if EMIX_HAS_MPI
  if (!started_by_mpi_launcher()) return;
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_active = true;
#else
  (void)argc;
  if (!started_by_mpi_launcher()) return;
  // This program links no MPI library, so that it starts where none is installed; under mpirun
  // the one that does takes its place (same process, arguments and environment).
  const std::string mpi_program = mpi_program_beside_this_one();
  if (!mpi_program.empty()) {
    execv(mpi_program.c_str(), *argv);
    std::fprintf(stderr,
                 "emix: warning: started by an MPI launcher, but %s did not start (%s): "
                 "every process runs alone on all the data\n",
                 mpi_program.c_str(), std::strerror(errno));
    return;
  }
  std::fprintf(stderr,
               "emix: warning: started by an MPI launcher, but this emix was built without MPI: "
               "every process runs alone on all the data\n");
#endif
}

MpiSession::~MpiSession() {
#if EMIX_HAS_MPI
  if (g_active) MPI_Finalize();
  g_active = false;
#endif
}

std::optional<std::string> arguments_differ_between_ranks(int argc, char** argv) {
#if EMIX_HAS_MPI
  if (!g_active) return std::nullopt;
  std::string mine;  // the arguments, each ended by a NUL so that "a b" differs from "a", "b"
  for (int i = 1; i < argc; ++i) mine.append(argv[i]).push_back('\0');
  std::string first = mine;
  long long length = static_cast<long long>(first.size());
  MPI_Bcast(&length, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  first.resize(static_cast<std::size_t>(length));
  MPI_Bcast(first.data(), static_cast<int>(length), MPI_CHAR, 0, MPI_COMM_WORLD);
  int first_differing = mine == first ? g_size : g_rank;
  MPI_Allreduce(MPI_IN_PLACE, &first_differing, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (first_differing == g_size) return std::nullopt;
  if (first_differing != g_rank) return std::string();
  const auto command_line = [](std::string arguments) {
    if (!arguments.empty()) arguments.pop_back();
    std::replace(arguments.begin(), arguments.end(), '\0', ' ');
    return "'emix " + arguments + "'";
  };
  return "under mpirun every rank runs the same command with the same arguments, but rank " +
         std::to_string(g_rank) + " was started with " + command_line(mine) + " and rank 0 with " +
         command_line(first);
#else
  (void)argc;
  (void)argv;
  return std::nullopt;
#endif
}

bool mpi_active() { return g_active; }
int mpi_rank() { return g_rank; }
int mpi_size() { return g_size; }

void wait_for_every_rank() {
#if EMIX_HAS_MPI
  if (g_active) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

bool raised_on_every_rank(const std::exception& error) {
#if EMIX_HAS_MPI
  return g_active && mpi::raised_on_every_rank(error);
#else
  (void)error;
  return false;
#endif
}

}  // namespace emix::cli

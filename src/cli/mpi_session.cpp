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

}  // namespace

void hand_over_to_mpi_program(char** argv) {
#if EMIX_HAS_MPI
  (void)argv;
#else
  if (!started_by_mpi_launcher()) return;
  // This program links no MPI library, so that it starts where none is installed; under mpirun
  // the emix-mpi beside it, which does, takes its place (same process, arguments, environment
  // and standard streams, closed ones included).
  std::string self(4096, '\0');
  const ssize_t length = readlink("/proc/self/exe", self.data(), self.size());
  std::string mpi_program = "emix-mpi";
  if (length > 0 && static_cast<std::size_t>(length) < self.size()) {
    self.resize(static_cast<std::size_t>(length));
    mpi_program.insert(0, self.substr(0, self.rfind('/') + 1));
    execv(mpi_program.c_str(), argv);
  }
  const char* why = errno == ENOENT ? "there is none" : std::strerror(errno);
  std::fprintf(stderr,
               "emix: warning: started by an MPI launcher, but %s, the emix built with MPI, did "
               "not start (%s): every process runs alone on all the data\n",
               mpi_program.c_str(), why);
#endif
}

MpiSession::MpiSession(int* argc, char*** argv) {
#if EMIX_HAS_MPI
  if (!started_by_mpi_launcher()) return;
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_active = true;
#else
  (void)argc;
  (void)argv;
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

#include "cli/mpi_session.hpp"

#include <cstdio>
#include <cstdlib>
#include <initializer_list>

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
  if (started_by_mpi_launcher()) {
    std::fprintf(stderr,
                 "emix: warning: started by an MPI launcher, but this emix was built without MPI: "
                 "every process runs alone on all the data\n");
  }
#endif
}

MpiSession::~MpiSession() {
#if EMIX_HAS_MPI
  if (g_active) MPI_Finalize();
  g_active = false;
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

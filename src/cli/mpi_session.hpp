// `mpirun -np P emix fit ...`: MPI is initialised only when an MPI launcher started the program.
// `emix` links no MPI library; started by a launcher, it runs the `emix-mpi` beside it in its
// place (cli/CMakeLists.txt), which initialises MPI here.
#pragma once

#include <exception>
#include <optional>
#include <string>

namespace emix::cli {

// In `emix`, started by an MPI launcher: runs the emix-mpi beside it in this process's place
// (execv), and warns when there is none, or it did not start (the processes then run alone).
// Returns at once otherwise, and in emix-mpi. First thing in main, before the standard streams
// are touched, so that emix-mpi finds them as they were.
void hand_over_to_mpi_program(char** argv);

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

// Under mpirun, whether every rank was started with rank 0's arguments: ranks running different
// commands (`mpirun -n 1 emix fit ... : -n 1 emix select ...`), or the same one with different
// options, would wait for each other's collectives forever. Collective; nullopt without MPI or
// when all agree. Otherwise every rank gets a value, and the first rank that differs gets the
// message naming both command lines (the others get "", and stay silent).
std::optional<std::string> arguments_differ_between_ranks(int argc, char** argv);

// True between MpiSession's start and end when it initialised MPI.
bool mpi_active();
int mpi_rank();  // 0 without MPI
int mpi_size();  // 1 without MPI

// Whether `error` is one that every rank holds alike (a failure one rank's step raised on all,
// emix::mpi::raise_if_any_failed), so that rank 0 alone reports it. False without MPI.
bool raised_on_every_rank(const std::exception& error);

// Collective under MPI (returns at once without): so that rank 0 has reported an error that every
// rank holds before any rank exits, and mpirun, seeing a rank fail, ends the others.
void wait_for_every_rank();

}  // namespace emix::cli

// `mpirun -np P emix fit ...`: MPI is initialised only when an MPI launcher started the program
// (and emix was built with MPI), so the plain `emix` never touches MPI.
#pragma once

namespace emix::cli {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

// True between MpiSession's start and end when it initialised MPI.
bool mpi_active();
int mpi_rank();  // 0 without MPI
int mpi_size();  // 1 without MPI

}  // namespace emix::cli

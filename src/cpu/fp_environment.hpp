// Flush-to-zero (FTZ) and denormals-are-zero (DAZ) for the CPU engine's threads, for the duration
// of one call. Negligible responsibilities are already exactly zero (core/pointwise.hpp,
// exp_or_zero); this guard catches what that rule cannot, such as a responsibility times a tiny
// sample weight or data that themselves hold subnormal numbers, so that no subnormal operand
// reaches a matrix product (each one costs a microcode assist of about 100 cycles on x86-64).
//
// A library must leave its caller's floating-point environment as it found it: the guard saves
// the thread's MXCSR on construction and writes it back on destruction (also when an exception
// unwinds the scope). Each OpenMP worker needs its own guard, inside the parallel region: MXCSR
// is per thread. The guard also masks every exception, as ScopedNonStopFp does for the calling
// thread: a worker started by a caller that traps exceptions inherited its traps. On other
// architectures the guard does nothing.
#pragma once

#include <cfenv>

namespace emix::cpu {

// Every floating-point exception non-stop (masked) for one scope, with the caller's whole
// environment (exception masks, modes, status flags; x87 and SSE) restored at its end. The
// library's own arithmetic divides by zero and overflows on purpose where its rules then handle
// the result (log 0 = -inf for a component that emptied, a row of 1e300 whose log-density is
// -inf): a caller that traps exceptions (feenableexcept, gfortran -ffpe-trap) would be killed by
// SIGFPE. Every entry point of the public API runs under one; the caller then finds its traps on
// and its flags as it left them (those the call raised are dropped).
class ScopedNonStopFp {
 public:
  ScopedNonStopFp() { std::feholdexcept(&saved_); }
  ~ScopedNonStopFp() { std::fesetenv(&saved_); }
  ScopedNonStopFp(const ScopedNonStopFp&) = delete;
  ScopedNonStopFp& operator=(const ScopedNonStopFp&) = delete;

 private:
  std::fenv_t saved_;
};

class ScopedFlushDenormals {
 public:
  ScopedFlushDenormals();
  ~ScopedFlushDenormals();
  ScopedFlushDenormals(const ScopedFlushDenormals&) = delete;
  ScopedFlushDenormals& operator=(const ScopedFlushDenormals&) = delete;

 private:
  unsigned saved_ = 0;
};

// The calling thread takes the modes (FTZ, DAZ, rounding, exception masks; not the status flags)
// of `control_register`, another thread's fp_control_register(), for the duration of one scope:
// an OpenMP worker helping a thread that runs under ScopedFlushDenormals does the same arithmetic.
class ScopedFpModes {
 public:
  explicit ScopedFpModes(unsigned control_register);
  ~ScopedFpModes();
  ScopedFpModes(const ScopedFpModes&) = delete;
  ScopedFpModes& operator=(const ScopedFpModes&) = delete;

 private:
  unsigned saved_ = 0;
};

// The calling thread's floating-point control register (MXCSR on x86-64; 0 elsewhere), and the
// bits of it that are modes (FTZ, DAZ, rounding, exception masks) rather than sticky status
// flags, which any arithmetic may set. For tests and diagnostics.
unsigned fp_control_register();
unsigned fp_mode_bits(unsigned control_register);
// FTZ and DAZ bits (0 on other architectures).
unsigned fp_flush_bits();

}  // namespace emix::cpu

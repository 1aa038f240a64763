#include "cpu/fp_environment.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define EMIX_HAS_MXCSR 1
#else
#define EMIX_HAS_MXCSR 0
#endif

namespace emix::cpu {

namespace {
// MXCSR: bits 0-5 are sticky exception flags, bit 6 DAZ, bits 7-12 exception masks (set: the
// exception does not trap), 13-14 rounding control, bit 15 FTZ.
constexpr unsigned kDenormalsAreZero = 1u << 6;
constexpr unsigned kFlushToZero = 1u << 15;
constexpr unsigned kStatusFlags = 0x3Fu;
constexpr unsigned kExceptionMasks = 0x1F80u;
}  // namespace

#if EMIX_HAS_MXCSR
ScopedFlushDenormals::ScopedFlushDenormals() : saved_(_mm_getcsr()) {
  _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero | kExceptionMasks);
}
// The whole register, status flags included: the caller finds it exactly as it left it.
ScopedFlushDenormals::~ScopedFlushDenormals() { _mm_setcsr(saved_); }
ScopedFpModes::ScopedFpModes(unsigned control_register) : saved_(_mm_getcsr()) {
  _mm_setcsr((control_register & ~kStatusFlags) | (saved_ & kStatusFlags));
}
ScopedFpModes::~ScopedFpModes() { _mm_setcsr(saved_); }
unsigned fp_control_register() { return _mm_getcsr(); }
unsigned fp_flush_bits() { return kFlushToZero | kDenormalsAreZero; }
#else
ScopedFpModes::ScopedFpModes(unsigned) {}
ScopedFpModes::~ScopedFpModes() = default;
ScopedFlushDenormals::ScopedFlushDenormals() = default;
ScopedFlushDenormals::~ScopedFlushDenormals() = default;
unsigned fp_control_register() { return 0; }
unsigned fp_flush_bits() { return 0; }
#endif

unsigned fp_mode_bits(unsigned control_register) { return control_register & ~kStatusFlags; }

}  // namespace emix::cpu

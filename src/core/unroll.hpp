// EMIX_UNROLL: a register block's loop over its constant extent, unrolled so that every sum
// stays in a register. Without it, GCC kept two-dimensional blocks (acc[r][c]) on the stack at
// AVX2 and every multiply-add loaded and stored its sum.
#pragma once

#if defined(__clang__)
#define EMIX_UNROLL _Pragma("unroll")
#else
#define EMIX_UNROLL _Pragma("GCC unroll 16")
#endif

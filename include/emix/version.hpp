// The version of emix these headers belong to.
#pragma once

#include "emix/config.h"

namespace emix {
inline constexpr const char* kVersion = EMIX_VERSION_STRING;
// The version of the library linked at run time (may differ from kVersion with a shared library).
const char* version();
}  // namespace emix

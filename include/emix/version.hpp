#pragma once

#define EMIX_VERSION_MAJOR 0
#define EMIX_VERSION_MINOR 1
#define EMIX_VERSION_PATCH 0

namespace emix {
inline constexpr const char* kVersion = "0.1.0";
}

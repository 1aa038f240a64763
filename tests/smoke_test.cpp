#include <gtest/gtest.h>

#include "emix/version.hpp"

TEST(Smoke, VersionIsSet) { EXPECT_STREQ(emix::kVersion, "0.1.0"); }

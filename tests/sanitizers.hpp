// EMIX_TEST_ADDRESS_SANITIZER: 1 in a build under AddressSanitizer, by GCC's macro or clang's
// feature test (clang 14 defines no __SANITIZE_ADDRESS__), else 0.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define EMIX_TEST_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMIX_TEST_ADDRESS_SANITIZER 1
#endif
#endif
#ifndef EMIX_TEST_ADDRESS_SANITIZER
#define EMIX_TEST_ADDRESS_SANITIZER 0
#endif

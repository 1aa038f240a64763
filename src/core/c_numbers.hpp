// Numbers written and read as the "C" locale writes them, whatever locale the host program set:
// after setlocale(LC_ALL, "de_DE.UTF-8"), printf writes 0.5 as "0,5" and strtod stops at a '.',
// so that a text file's 2.5e-400 was read as 2 and messages mixed "-1,5" with "0.9".
#pragma once

#include <locale.h>

namespace emix {

// While one lives, this thread's locale is "C" (uselocale: no other thread's), numbers included:
// every category, since the library formats and parses nothing else by the locale.
class CNumbers {
 public:
  CNumbers() : previous_(c_numeric() != locale_t{} ? uselocale(c_numeric()) : locale_t{}) {}
  ~CNumbers() {
    if (previous_ != locale_t{}) uselocale(previous_);
  }
  CNumbers(const CNumbers&) = delete;
  CNumbers& operator=(const CNumbers&) = delete;

 private:
  static locale_t c_numeric() {
    static const locale_t c = newlocale(LC_NUMERIC_MASK, "C", locale_t{});
    return c;
  }
  locale_t previous_;
};

}  // namespace emix

// emix::PageRanges: the bookkeeping of the host pages the GPU engines page-lock, run here with a
// pretend pin and unpin (the GPU engine's are cudaHostRegister and cudaHostUnregister), so that
// its sharing is tested without a GPU.
#include "core/page_ranges.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <vector>

namespace {

using emix::PageRanges;
constexpr std::uintptr_t kPage = 4096;

// Pages pinned by the pretend pin, each at most once (as cudaHostRegister refuses a page
// registered already), and the pages the caller locked on its own.
struct Pins {
  std::map<std::uintptr_t, int> pinned;  // page -> times pinned
  std::vector<std::uintptr_t> callers;   // pages locked by the caller
  int pin_calls = 0;
  int fail_at_call = -1;  // the first pin call that fails (locked-memory limits), -1: none
  PageRanges::Pinning pinning() {
    PageRanges::Pinning p;
    p.page_size = kPage;
    p.pin = [this](std::uintptr_t first, std::uintptr_t bytes) {
      EXPECT_EQ(first % kPage, 0u);
      EXPECT_EQ(bytes % kPage, 0u);
      const int call = pin_calls++;
      if (fail_at_call >= 0 && call >= fail_at_call) return false;  // limits reached for good
      for (std::uintptr_t page = first; page < first + bytes; page += kPage) {
        if (pinned.count(page)) ADD_FAILURE() << "a page pinned twice by the ranges";
        if (is_callers(page)) return false;  // as cudaHostRegister refuses a registered page
      }
      for (std::uintptr_t page = first; page < first + bytes; page += kPage) pinned[page] = 1;
      ranges[first] = bytes;
      return true;
    };
    p.unpin = [this](std::uintptr_t first) {
      ASSERT_TRUE(ranges.count(first)) << "unpinned what was not pinned";
      for (std::uintptr_t page = first; page < first + ranges[first]; page += kPage) {
        pinned.erase(page);
      }
      ranges.erase(first);
    };
    p.locked = [this](std::uintptr_t address) {
      const std::uintptr_t page = address / kPage * kPage;
      return pinned.count(page) > 0 || is_callers(page);
    };
    return p;
  }
  bool is_callers(std::uintptr_t page) const {
    for (std::uintptr_t c : callers) {
      if (c == page) return true;
    }
    return false;
  }
  // Whether every page of [first, first + bytes) is locked.
  bool all_locked(std::uintptr_t first, std::uintptr_t bytes) const {
    for (std::uintptr_t page = first / kPage * kPage; page < first + bytes; page += kPage) {
      if (!pinned.count(page) && !is_callers(page)) return false;
    }
    return true;
  }
  std::map<std::uintptr_t, std::uintptr_t> ranges;  // first -> bytes, as pinned
};

// Two engines over one array: the first to end left the second's pages pinned.
TEST(PageRanges, EnginesOverOneArrayShareItsPagesUntilTheLastEnds) {
  Pins pins;
  PageRanges ranges;
  const auto p = pins.pinning();
  std::vector<std::uintptr_t> a, b;
  const std::uintptr_t x = 10 * kPage + 100;
  ASSERT_TRUE(ranges.acquire(x, 5 * kPage, p, a));
  ASSERT_TRUE(ranges.acquire(x, 5 * kPage, p, b));
  EXPECT_EQ(pins.pin_calls, 1);
  ranges.release(a, p.unpin);
  EXPECT_TRUE(pins.all_locked(x, 5 * kPage));
  ranges.release(b, p.unpin);
  EXPECT_TRUE(pins.pinned.empty());
  EXPECT_EQ(ranges.size(), 0u);
}

// Weights beginning on x's last page, of one engine and of a second engine over x alone: the
// first engine's end unpinned the weights' pages, or (the table keyed by the trimmed range) the
// second engine found no entry and held nothing while streaming from them.
TEST(PageRanges, ArraysSharingAPageAreCountedOnEveryPageTheyMeet) {
  Pins pins;
  PageRanges ranges;
  const auto p = pins.pinning();
  const std::uintptr_t x = 20 * kPage + 64, x_bytes = 3 * kPage;  // ends inside page 23
  const std::uintptr_t w = x + x_bytes, w_bytes = 24 * kPage;     // begins on page 23
  std::vector<std::uintptr_t> a, b;
  ASSERT_TRUE(ranges.acquire(x, x_bytes, p, a));
  ASSERT_TRUE(ranges.acquire(w, w_bytes, p, a));
  ASSERT_TRUE(ranges.acquire(x, x_bytes, p, b));
  ASSERT_TRUE(ranges.acquire(w, w_bytes, p, b));
  ranges.release(a, p.unpin);
  EXPECT_TRUE(pins.all_locked(x, x_bytes));
  EXPECT_TRUE(pins.all_locked(w, w_bytes));
  ranges.release(b, p.unpin);
  EXPECT_TRUE(pins.pinned.empty());
  // An engine over x alone beside one over x and w: x's pages stay while either holds them.
  std::vector<std::uintptr_t> c, d;
  ASSERT_TRUE(ranges.acquire(x, x_bytes, p, c));
  ASSERT_TRUE(ranges.acquire(w, w_bytes, p, c));
  ASSERT_TRUE(ranges.acquire(x, x_bytes, p, d));
  ranges.release(c, p.unpin);
  EXPECT_TRUE(pins.all_locked(x, x_bytes));
  ranges.release(d, p.unpin);
  EXPECT_TRUE(pins.pinned.empty());
}

// Engines over two halves of one array, their boundary inside a page, and then over the whole:
// each holds what it streams from for as long as it lives.
TEST(PageRanges, PartsOfOneArrayShareTheirBoundaryPage) {
  Pins pins;
  PageRanges ranges;
  const auto p = pins.pinning();
  const std::uintptr_t x = 40 * kPage + 8, half = 6 * kPage + 1000;
  std::vector<std::uintptr_t> first, second, whole;
  ASSERT_TRUE(ranges.acquire(x, half, p, first));
  ASSERT_TRUE(ranges.acquire(x + half, half, p, second));
  ASSERT_TRUE(ranges.acquire(x, 2 * half, p, whole));
  ranges.release(first, p.unpin);
  EXPECT_TRUE(pins.all_locked(x + half, half));
  EXPECT_TRUE(pins.all_locked(x, 2 * half));
  ranges.release(whole, p.unpin);
  EXPECT_TRUE(pins.all_locked(x + half, half));
  ranges.release(second, p.unpin);
  EXPECT_TRUE(pins.pinned.empty());
}

// A pin that fails (locked-memory limits) leaves nothing pinned or held: the engine stages. The
// caller's own locked pages are used and never unpinned.
TEST(PageRanges, AFailedPinLeavesNothingAndTheCallersPagesAreTheirs) {
  Pins pins;
  PageRanges ranges;
  const auto p = pins.pinning();
  std::vector<std::uintptr_t> a, b;
  ASSERT_TRUE(ranges.acquire(60 * kPage, 2 * kPage, p, a));  // pages 60, 61
  // Pages 58..63: gaps 58-59 and 62-63 around the range held; the second pin fails.
  pins.fail_at_call = pins.pin_calls + 1;
  EXPECT_FALSE(ranges.acquire(58 * kPage, 6 * kPage, p, b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(ranges.engines_on(60 * kPage), 1);
  EXPECT_EQ(ranges.size(), 1u);
  EXPECT_EQ(pins.pinned.size(), 2u);
  ranges.release(a, p.unpin);
  EXPECT_TRUE(pins.pinned.empty());

  pins.callers = {80 * kPage, 81 * kPage};
  std::vector<std::uintptr_t> c;
  const int calls = pins.pin_calls;
  ASSERT_TRUE(ranges.acquire(80 * kPage + 5, 2 * kPage - 10, p, c));
  EXPECT_EQ(pins.pin_calls, calls);  // the caller's pages: nothing pinned
  EXPECT_TRUE(c.empty());
  EXPECT_FALSE(ranges.meets_a_range(80 * kPage, kPage, kPage));
}

// The caller's page-locked rows (its cudaHostRegister of a heap array, from an address inside a
// page), and weights that begin on their last page: the gap's ends were probed at page
// boundaries, outside the caller's range, and the whole gap pinned again over the caller's
// pages, which failed, and both arrays were staged.
TEST(PageRanges, PagesTheCallerLockedAtAGapsEndsAreLeftOut) {
  Pins pins;
  PageRanges ranges;
  auto p = pins.pinning();
  const std::uintptr_t x = 12 * kPage + 100, x_bytes = 8 * kPage;  // pages 12..20
  for (std::uintptr_t page = 12; page <= 20; ++page) pins.callers.push_back(page * kPage);
  // The caller's registration shows in its bytes alone, [x, x + x_bytes), but pins its pages.
  p.locked = [&](std::uintptr_t address) {
    return (address >= x && address < x + x_bytes) || pins.pinned.count(address / kPage * kPage);
  };
  std::vector<std::uintptr_t> held;
  ASSERT_TRUE(ranges.acquire(x, x_bytes, p, held));  // the caller's own: nothing pinned
  EXPECT_TRUE(held.empty());
  const std::uintptr_t w = x + x_bytes;  // begins on page 20, the caller's
  ASSERT_TRUE(ranges.acquire(w, 5 * kPage, p, held));
  ASSERT_EQ(pins.ranges.size(), 1u);
  EXPECT_EQ(pins.ranges.begin()->first, 21 * kPage);  // after the caller's last page
  ranges.release(held, p.unpin);
  EXPECT_TRUE(pins.pinned.empty());
}

// A pin that throws (a bad_alloc) undoes the pins of the same call.
TEST(PageRanges, APinThatThrowsUndoesItsCall) {
  Pins pins;
  PageRanges ranges;
  auto p = pins.pinning();
  std::vector<std::uintptr_t> a;
  ASSERT_TRUE(ranges.acquire(100 * kPage, kPage, p, a));
  int calls = 0;
  const auto pin = p.pin;
  p.pin = [&](std::uintptr_t first, std::uintptr_t bytes) {
    if (++calls == 2) throw std::runtime_error("pin");
    return pin(first, bytes);
  };
  std::vector<std::uintptr_t> b;
  EXPECT_THROW(ranges.acquire(98 * kPage, 5 * kPage, p, b), std::runtime_error);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(ranges.size(), 1u);
  EXPECT_EQ(pins.pinned.size(), 1u);
  EXPECT_EQ(ranges.engines_on(100 * kPage), 1);
}

}  // namespace

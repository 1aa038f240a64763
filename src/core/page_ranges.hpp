// The host pages the GPU engines page-lock for their copies (cudaHostRegister), shared between
// engines: host-only bookkeeping, so that it is tested without a GPU.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <utility>
#include <vector>

namespace emix {

// Ranges of whole pages that never overlap, each with the engines that hold it. An engine holds
// every range its rows' pages meet and pins only the pages no range covers: engines over one
// host array (threads fitting it), over arrays that share a page (x and its weights, two small
// heap arrays) or over parts of one array share the pages, and the last engine holding a range
// unpins it. (An engine's unpinning once pulled the pages from under another's copies in flight,
// which had found them locked and pinned nothing.) Not thread-safe: the caller locks.
class PageRanges {
 public:
  struct Pinning {
    std::uintptr_t page_size = 4096;
    std::function<bool(std::uintptr_t first, std::uintptr_t bytes)> pin;  // false: not pinned
    std::function<void(std::uintptr_t first)> unpin;
    // Page-locked by someone else (the caller's cudaHostAlloc): used as it is, never unpinned.
    std::function<bool(std::uintptr_t address)> locked;
  };

  // Whether the pages of [first, first + bytes) are page-locked for one more engine, which then
  // holds the ranges `held` gained (for release). False where a pin fails (locked-memory
  // limits): nothing is held or left pinned by this call.
  bool acquire(std::uintptr_t first, std::uintptr_t bytes, const Pinning& pinning,
               std::vector<std::uintptr_t>& held) {
    if (bytes == 0) return true;
    const Span span = span_of(first, bytes, pinning.page_size);
    const Meeting meeting = meeting_of(span);
    // Before anything is pinned: a bad_alloc here leaves nothing to undo.
    held.reserve(held.size() + meeting.ranges.size() + meeting.gaps.size());
    std::vector<std::uintptr_t> made;
    made.reserve(meeting.gaps.size());
    const auto undo = [&]() noexcept {
      for (const std::uintptr_t range : made) {
        ranges_.erase(range);
        pinning.unpin(range);
      }
    };
    const std::uintptr_t page = pinning.page_size;
    for (auto [begin, end] : meeting.gaps) {
      // Pages the caller locked (cudaHostAlloc, its own cudaHostRegister, perhaps of a part of a
      // page) are the caller's, used as they are: probed within [first, first + bytes), which
      // the caller's allocation covers, and left out at either end of the gap.
      const std::uintptr_t low = std::max(begin, first);
      const std::uintptr_t high = std::min(end, first + bytes);
      if (pinning.locked(low) && pinning.locked(high - 1)) continue;
      if (pinning.locked(low)) begin = low / page * page + page;
      if (pinning.locked(high - 1)) end = (high - 1) / page * page;
      if (end <= begin) continue;
      // A page at either end may be locked by the caller beyond what its probes show (its
      // registration of part of that page pins all of it, and a second pin of it fails): the
      // gap is tried again without it. Such a page, if pageable after all, is copied from all
      // the same, only not asynchronously.
      const std::pair<std::uintptr_t, std::uintptr_t> tries[] = {
          {begin, end}, {begin + page, end}, {begin, end - page}, {begin + page, end - page}};
      bool pinned = false;
      for (const auto& [from, to] : tries) {
        if (to <= from) continue;
        try {
          ranges_.emplace(from, Range{to, 0});  // before the pin, which it then records
          pinned = pinning.pin(from, to - from);
        } catch (...) {
          ranges_.erase(from);
          undo();
          throw;
        }
        if (pinned) {
          made.push_back(from);  // reserved
          break;
        }
        ranges_.erase(from);
      }
      if (!pinned) {  // locked-memory limits
        undo();
        return false;
      }
    }
    // Nothing below allocates (reserved above).
    for (const std::uintptr_t range : meeting.ranges) hold(range, held);
    for (const std::uintptr_t range : made) hold(range, held);
    return true;
  }

  // Whether the pages of [first, first + bytes) meet a range some engine holds.
  bool meets_a_range(std::uintptr_t first, std::uintptr_t bytes, std::uintptr_t page_size) const {
    return bytes > 0 && !meeting_of(span_of(first, bytes, page_size)).ranges.empty();
  }

  // One engine less on each range of `held`; the last one on a range unpins it.
  void release(const std::vector<std::uintptr_t>& held,
               const std::function<void(std::uintptr_t)>& unpin) noexcept {
    for (const std::uintptr_t range : held) {
      const auto it = ranges_.find(range);
      if (it == ranges_.end() || --it->second.engines > 0) continue;
      ranges_.erase(it);
      unpin(range);
    }
  }

  // The engines holding the range that starts at `first` (0: none), for tests.
  int engines_on(std::uintptr_t first) const {
    const auto it = ranges_.find(first);
    return it == ranges_.end() ? 0 : it->second.engines;
  }
  std::size_t size() const { return ranges_.size(); }

 private:
  struct Range {
    std::uintptr_t end = 0;
    int engines = 0;
  };
  struct Span {
    std::uintptr_t begin, end;  // whole pages
  };
  struct Meeting {
    std::vector<std::uintptr_t> ranges;                           // the ranges the span meets
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> gaps;  // its pages no range covers
  };

  void hold(std::uintptr_t range, std::vector<std::uintptr_t>& held) {
    ++ranges_.find(range)->second.engines;
    held.push_back(range);
  }

  static Span span_of(std::uintptr_t first, std::uintptr_t bytes, std::uintptr_t page) {
    return {first / page * page, (first + bytes + page - 1) / page * page};
  }

  Meeting meeting_of(const Span& span) const {
    Meeting m;
    auto it = ranges_.upper_bound(span.begin);
    if (it != ranges_.begin() && std::prev(it)->second.end > span.begin) --it;
    std::uintptr_t at = span.begin;
    for (; it != ranges_.end() && it->first < span.end; ++it) {
      if (it->first > at) m.gaps.emplace_back(at, it->first);
      m.ranges.push_back(it->first);
      at = std::max(at, it->second.end);
    }
    if (at < span.end) m.gaps.emplace_back(at, span.end);
    return m;
  }

  std::map<std::uintptr_t, Range> ranges_;  // by first byte
};

}  // namespace emix

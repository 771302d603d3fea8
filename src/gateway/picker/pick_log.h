#pragma once
// Recent picks of every worker, for /admin/state: what was asked, where it went and why. At
// most one pick per `interval_s` is kept (every pick at low rates, a sample under load), so
// the request path pays for building an entry and the mutex only ~100 times a second.
// Thread-safe.

#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace tidegate::gateway {

struct PickEntry {
  double at = 0;  // monotonic seconds
  std::string model, target, pool, endpoint, winner;
  std::array<double, 5> scores{};
  double total = 0;
};

class PickLog {
 public:
  explicit PickLog(std::size_t capacity = 64, double interval_s = 0.01)
      : capacity_(capacity), interval_s_(interval_s) {}
  // True when a pick made at `now` should be added (lock-free; claims the slot).
  bool wants(double now) {
    double next = next_.load(std::memory_order_relaxed);
    return now >= next &&
           next_.compare_exchange_strong(next, now + interval_s_, std::memory_order_relaxed);
  }
  void add(PickEntry e) {
    std::lock_guard lock(mu_);
    entries_.push_back(std::move(e));
    if (entries_.size() > capacity_) entries_.pop_front();
  }
  std::vector<PickEntry> recent() const {
    std::lock_guard lock(mu_);
    return {entries_.begin(), entries_.end()};
  }

 private:
  mutable std::mutex mu_;
  std::size_t capacity_;
  double interval_s_;
  std::atomic<double> next_{0};
  std::deque<PickEntry> entries_;
};

}  // namespace tidegate::gateway

#pragma once
// The last picks of every worker, for /admin/state: what was asked, where it went and why.
// Thread-safe (a mutex; one short critical section per pick, none on the picker's own path).

#include <array>
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
  explicit PickLog(std::size_t capacity = 64) : capacity_(capacity) {}
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
  std::deque<PickEntry> entries_;
};

}  // namespace tidegate::gateway

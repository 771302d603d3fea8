#pragma once
// Clock: the one place components read time from, so tests and the simulator can drive time.
// Times are seconds as double on a monotonic scale with an arbitrary origin.
// Thread-safety: SteadyClock is safe from any thread; FakeClock is for single-threaded tests.

#include <chrono>

namespace tidegate {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual double now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  double now() const override {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(double start = 0) : now_(start) {}
  double now() const override { return now_; }
  void set(double t) { now_ = t; }
  void advance(double dt) { now_ += dt; }

 private:
  double now_;
};

// The process's monotonic clock, for components that run live (servers, the controller); pure
// code takes `now` as an argument instead.
inline double monotonicSeconds() {
  static const SteadyClock clock;
  return clock.now();
}

// Wall-clock seconds since the Unix epoch, for protocol fields such as OpenAI's `created`.
inline long long unixSeconds() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

// The same with sub-second precision, for records and rate-limit windows.
inline double unixTime() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace tidegate

#pragma once
// Leader election over a coordination.k8s.io/v1 Lease, with client-go's semantics
// (k8s.io/client-go/tools/leaderelection, LeaseLock):
//   - a candidate reads the Lease; if it does not exist, it creates it holding it;
//   - a Lease held by another is respected until leaseDuration has passed since this candidate
//     last SAW the record change (its own monotonic clock: no trust in other clocks);
//   - otherwise the candidate writes itself as holder with a PUT carrying the resourceVersion it
//     read, so of two candidates only one wins (409 Conflict for the other); taking over counts
//     a transition;
//   - the leader renews every retryPeriod; if it has not renewed for renewDeadline it stops
//     acting — before any other candidate may take over (renewDeadline < leaseDuration);
//   - on a clean stop the leader releases the Lease (holder "", leaseDurationSeconds 1) so a
//     successor need not wait.
// Defaults as client-go's: leaseDuration 15 s, renewDeadline 10 s, retryPeriod 2 s.
//
// decideLease() is pure (table-tested); LeaderElector runs it on a Client's executor.

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <functional>
#include <optional>
#include <string>

#include "kube/client.h"

namespace tidegate::kube {

struct LeaderConfig {
  std::string ns = "default";
  std::string name = "tidegate-controller";  // the Lease's name
  std::string identity;                      // this candidate (the pod's name)
  double lease_duration_s = 15;
  double renew_deadline_s = 10;
  double retry_period_s = 2;
};

// What this candidate knows of the Lease between attempts: the record it last saw and when (its
// own monotonic clock) it saw it change.
struct LeaseObservation {
  std::string record;  // holder, renewTime, duration and transitions, serialized
  double observed_at = -1;
};

struct LeaseStep {
  enum class Action { kCreate, kUpdate, kWait } action = Action::kWait;
  bj::object lease;    // the Lease to create, or the updated one to PUT
  std::string holder;  // the current holder (kWait) or this candidate
};

// One tryAcquireOrRenew. `current` is the Lease read (nullopt: it does not exist); `mono` is
// this process's monotonic time, `wall` the wall clock (unix seconds) written into the Lease.
LeaseStep decideLease(const std::optional<bj::object>& current, const LeaderConfig& config,
                      LeaseObservation& seen, double mono, double wall);

// A Lease's MicroTime: RFC 3339 with microseconds, UTC.
std::string formatMicroTime(double unix_seconds);

class LeaderElector {
 public:
  LeaderElector(Client& client, LeaderConfig config);
  // Campaigns and renews until stop(); co_spawn on the client's executor.
  boost::asio::awaitable<void> run();
  // Stops campaigning; a leader releases the Lease first.
  boost::asio::awaitable<void> release();
  void stop() { stopped_ = true; }

  // True while this candidate holds the Lease and renewed it within renewDeadline: act only
  // while this is true (checked at every action, not only when the loop notices a failure).
  bool isLeader() const;
  // Called on the executor when leadership is gained (true) or lost (false).
  void onChange(std::function<void(bool)> fn) { on_change_ = std::move(fn); }

  const std::string& holder() const { return holder_; }
  const std::string& identity() const { return config_.identity; }
  std::uint64_t transitions() const { return transitions_; }  // leadership changes seen here
  const LeaderConfig& config() const { return config_; }

 private:
  // One attempt; true when this candidate holds the Lease afterwards.
  boost::asio::awaitable<bool> tryAcquireOrRenew();
  void setLeading(bool leading);

  Client& client_;
  LeaderConfig config_;
  LeaseObservation seen_;
  std::function<void(bool)> on_change_;
  std::string holder_;
  bool leading_ = false;
  double renewed_at_ = -1e18;  // monotonic time the last successful write was SENT
  std::uint64_t transitions_ = 0;
  bool stopped_ = false;
};

}  // namespace tidegate::kube

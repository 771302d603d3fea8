#pragma once
// The LocalLimiter's rules (rate_limiter.h) kept in Redis, so every gateway sharing the server
// enforces one limit. Each admission and each settlement is one atomic Lua script (EVALSHA, with
// EVAL when the server does not have it yet) on the worker's pipelined connection. The GCRA
// limits run on the Redis server's clock (TIME), so gateways' clocks need not agree; the
// calendar windows come from the gateway's UTC clock. Concurrency is a sorted set of request ids
// leased for the total request timeout, so a gateway that dies does not hold slots forever.
//
// Settlements (the tokens a request really used against what it reserved, and its concurrency
// slot) are not urgent: each worker batches them (Settlements below) and sends one script per
// API key every few milliseconds, so a busy key costs Redis about one script per request (its
// admission) instead of two.
//
// When Redis fails (unreachable, timeout, script error) the policy decides: fail-open lets the
// gateway's own LocalLimiter decide (each gateway then enforces the limit alone), fail-closed
// refuses the request (Refusal::kBackend). Either way a counter and a log line say so.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gateway/admission/rate_limiter.h"
#include "gateway/admission/redis.h"

namespace tidegate::gateway::admission {

class RedisLimiter {
 public:
  // `fallback` decides when Redis cannot; `on_failure` is called (any thread) once per failed
  // call with the reason, for metrics and logs.
  RedisLimiter(LocalLimiter& fallback, bool fail_open, double lease_s,
               std::function<void(const std::string&)> on_failure);

  // Decides the admission of requests of one key, in order, in one script: `requests` are
  // their (tokens to reserve, request id). One Decision per request.
  boost::asio::awaitable<std::vector<Decision>> admitAll(
      RedisClient& redis, const std::string& key, const api::UsagePlan& plan,
      std::vector<std::pair<double, std::string>> requests, double mono, double unix_s);
  // Settles requests of one key admitted by admit() in one script: `delta` is the sum of their
  // (actual - reserved) tokens, `request_ids` their concurrency slots; `tpm` the plan's tokens
  // per minute; `day`/`month` the calendar windows they were charged to.
  boost::asio::awaitable<void> settle(RedisClient& redis, const std::string& key, double tpm,
                                      double delta, long day, long month,
                                      std::vector<std::string> request_ids);
  // True when finishing a request on `plan` has anything to settle.
  static bool needsSettlement(const api::UsagePlan& plan);
  LocalLimiter& fallback() { return fallback_; }

 private:
  boost::asio::awaitable<Result<RedisReply>> eval(RedisClient& redis, const std::string& script,
                                                  const std::string& sha,
                                                  std::vector<std::string> keys_and_args,
                                                  int nkeys);
  LocalLimiter& fallback_;
  bool fail_open_;
  double lease_s_;
  std::function<void(const std::string&)> on_failure_;
};

// One worker's admissions: the requests of one API key that arrive in the same turn of the
// worker's event loop are decided by one script, in arrival order — each decision is exactly
// what a script of its own would have decided — so a busy key costs Redis one script per batch
// instead of one per request. A batch leaves after the handlers already queued on the loop have
// run (no timer: nothing waits that was not already there), or at `max_batch` requests.
// Threads: the worker's own (the executor of `redis`).
class Admissions {
 public:
  Admissions(RedisLimiter& limiter, RedisClient& redis, std::size_t max_batch = 64);
  boost::asio::awaitable<Decision> admit(const std::string& key, const api::UsagePlan& plan,
                                         double tokens, std::string request_id, double mono,
                                         double unix_s);

 private:
  struct Waiter {
    explicit Waiter(boost::asio::any_io_executor ex)
        : wake(ex, std::chrono::steady_clock::time_point::max()) {}
    boost::asio::steady_timer wake;  // cancelled when the decision is in
    Decision decision;
  };
  struct Batch {
    std::shared_ptr<const api::UsagePlan> plan;  // the first request's (a copy: reloads)
    std::vector<std::shared_ptr<Waiter>> waiters;
    std::vector<std::pair<double, std::string>> requests;
    double mono = 0, unix_s = 0;
  };
  void send(const std::string& key);

  RedisLimiter& limiter_;
  RedisClient& redis_;
  std::size_t max_batch_;
  std::map<std::string, Batch> pending_;
  bool scheduled_ = false;
};

// One worker's pending settlements, grouped by API key (and calendar window) and sent as one
// script per group `interval_s` after the first was added, or at once when `max_pending`
// accumulate. Settled late by at most the interval: the limits then see the true usage a few
// milliseconds later, which no per-minute or per-day limit notices.
// Threads: the worker's own (the executor of `redis`).
class Settlements {
 public:
  Settlements(RedisLimiter& limiter, RedisClient& redis, double interval_s = 0.002,
              std::size_t max_pending = 256);
  // Queues the settlement of a request admitted by RedisLimiter::admit (`degraded`: admitted by
  // the local fallback, settled there at once).
  void add(const std::string& key, const api::UsagePlan& plan, double reserved, double actual,
           std::string request_id, bool degraded, double mono, double unix_s);

 private:
  boost::asio::awaitable<void> flushAfter(double seconds);
  void sendAll();
  struct Group {
    double tpm = 0, delta = 0;
    std::vector<std::string> ids;
  };
  RedisLimiter& limiter_;
  RedisClient& redis_;
  double interval_s_;
  std::size_t max_pending_;
  std::map<std::tuple<std::string, long, long>, Group> groups_;  // (key, day, month)
  std::size_t pending_ = 0;
  bool scheduled_ = false;
};

}  // namespace tidegate::gateway::admission

#pragma once
// The LocalLimiter's rules (rate_limiter.h) kept in Redis, so every gateway sharing the server
// enforces one limit. Each admission and each settlement is one atomic Lua script (EVALSHA, with
// EVAL when the server does not have it yet) on the worker's pipelined connection. The GCRA
// limits run on the Redis server's clock (TIME), so gateways' clocks need not agree; the
// calendar windows come from the gateway's UTC clock. Concurrency is a sorted set of request ids
// leased for the total request timeout, so a gateway that dies does not hold slots forever.
//
// When Redis fails (unreachable, timeout, script error) the policy decides: fail-open lets the
// gateway's own LocalLimiter decide (each gateway then enforces the limit alone), fail-closed
// refuses the request (Refusal::kBackend). Either way a counter and a log line say so.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <string>

#include "gateway/admission/rate_limiter.h"
#include "gateway/admission/redis.h"

namespace tidegate::gateway::admission {

class RedisLimiter {
 public:
  // `fallback` decides when Redis cannot; `on_failure` is called (any thread) once per failed
  // call with the reason, for metrics and logs.
  RedisLimiter(LocalLimiter& fallback, bool fail_open, double lease_s,
               std::function<void(const std::string&)> on_failure);

  boost::asio::awaitable<Decision> admit(RedisClient& redis, std::string key,
                                         const api::UsagePlan& plan, double tokens,
                                         std::string request_id, double mono, double unix_s);
  // Settles a request admitted by admit(): `degraded` as its Decision said.
  boost::asio::awaitable<void> finish(RedisClient& redis, std::string key,
                                      const api::UsagePlan& plan, double reserved, double actual,
                                      std::string request_id, bool degraded, double mono,
                                      double unix_s);

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

}  // namespace tidegate::gateway::admission

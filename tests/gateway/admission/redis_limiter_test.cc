// The Redis limiter's batches against a real redis-server: admissions of one key that arrive
// together are decided by one script and exactly as the limits say; settlements are grouped.
#include "gateway/admission/redis_limiter.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "common/clock.h"
#include "support/process.h"

namespace tidegate::gateway::admission {
namespace {

namespace asio = boost::asio;

// Calls of `command` the server has run (INFO commandstats).
long calls(std::uint16_t port, const std::string& command) {
  auto r = testing::runCommand(
      {"/usr/bin/redis-cli", "-p", std::to_string(port), "info", "commandstats"});
  const std::string needle = "cmdstat_" + command + ":calls=";
  const auto at = r.output.find(needle);
  return at == std::string::npos ? 0 : std::stol(r.output.substr(at + needle.size()));
}

TEST(RedisLimiter, AdmissionsArrivingTogetherAreOneScriptAndExact) {
  testing::Redis server;
  asio::io_context ioc;
  LocalLimiter local;
  RedisLimiter limiter(local, /*fail_open=*/false, /*lease_s=*/600,
                       [](const std::string& why) { ADD_FAILURE() << why; });
  RedisClient redis(ioc.get_executor(), {"127.0.0.1", server.port}, 2.0);
  Admissions admissions(limiter, redis);
  Settlements settlements(limiter, redis, /*interval_s=*/0.002);
  api::UsagePlan plan;
  plan.requests_per_minute = 20;
  plan.max_concurrent = 1000;
  constexpr int kRequests = 50;
  int allowed = 0, refused = 0;
  std::vector<std::string> admitted_ids;
  for (int i = 0; i < kRequests; ++i) {
    asio::co_spawn(
        ioc,
        [&, i]() -> asio::awaitable<void> {
          const double mono = monotonicSeconds(), unix_s = unixTime();
          std::string id = "r" + std::to_string(i);
          auto d = co_await admissions.admit("k", plan, 10, id, mono, unix_s);
          if (d.allowed()) {
            ++allowed;
            admitted_ids.push_back(id);
          } else {
            ++refused;
            EXPECT_EQ(d.refusal, Refusal::kRequestsPerMinute);
          }
          if (allowed + refused == kRequests) ioc.stop();  // the client's loops run on
        },
        asio::detached);
  }
  ioc.run_for(std::chrono::seconds(10));
  EXPECT_EQ(allowed, 20);  // exactly the burst, as one script per request would decide
  EXPECT_EQ(refused, 30);
  // One script for the 50 (plus its first sending as EVAL when the server lacked it).
  EXPECT_EQ(calls(server.port, "evalsha") + calls(server.port, "eval"), 2);
  auto inflight = testing::runCommand(
      {"/usr/bin/redis-cli", "-p", std::to_string(server.port), "zcard", "tidegate:{k}:inflight"});
  EXPECT_EQ(std::stol(inflight.output), 20);

  // Their settlements leave together: one more script frees every slot.
  for (const auto& id : admitted_ids)
    settlements.add("k", plan, 10, 12, id, false, monotonicSeconds(), unixTime());
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(300));  // past the batch interval and the reply
  EXPECT_EQ(calls(server.port, "evalsha"), 2);
  inflight = testing::runCommand(
      {"/usr/bin/redis-cli", "-p", std::to_string(server.port), "zcard", "tidegate:{k}:inflight"});
  EXPECT_EQ(std::stol(inflight.output), 0);
}

}  // namespace
}  // namespace tidegate::gateway::admission

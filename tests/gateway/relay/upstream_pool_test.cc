// The worker's upstream pool against a scripted loopback server: what goes back to the pool,
// what is pruned, what is closed when an endpoint leaves the snapshot.
#include "gateway/relay/upstream_pool.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "common/clock.h"
#include "support/scripted_server.h"

namespace tidegate::gateway::relay {
namespace {

using testing::ScriptedServer;
using Action = ScriptedServer::Action;

struct Fixture {
  explicit Fixture(ScriptedServer::Script script, std::size_t max_idle = 256)
      : server(std::move(script)),
        endpoint(std::make_shared<Endpoint>(api::HostPort{"127.0.0.1", server.port()})),
        pool(ioc.get_executor(), {.clock = &clock}, max_idle) {}

  // Runs one request on `c` to completion.
  bool request(http::Client& c) {
    bool ok = false;
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> {
          http::ClientRequest req{.method = "GET", .target = "/", .timeout_s = 2};
          auto r = co_await c.send(req);  // a named request: see docs/development.md
          ok = r.ok();
        },
        boost::asio::detached);
    ioc.restart();
    ioc.run();
    return ok;
  }

  FakeClock clock{100};
  ScriptedServer server;
  std::shared_ptr<Endpoint> endpoint;
  boost::asio::io_context ioc;
  UpstreamPool pool;
};

TEST(UpstreamPool, ReusesKeptAliveConnectionsAndPrunesThemAfterTheServersTimeout) {
  Fixture f([](int, int) { return Action::kKeepAlive; });  // answers Keep-Alive: timeout=5
  auto c = f.pool.acquire(f.endpoint);
  ASSERT_TRUE(f.request(*c));
  f.pool.release(f.endpoint, c);
  EXPECT_EQ(f.pool.idle(), 1u);
  auto again = f.pool.acquire(f.endpoint);
  EXPECT_EQ(again, c);  // the same connection
  ASSERT_TRUE(f.request(*again));
  EXPECT_EQ(f.server.connections(), 1);
  f.pool.release(f.endpoint, again);
  f.pool.prune(f.clock.now() + 3.9);  // still within timeout=5 less the margin
  EXPECT_EQ(f.pool.idle(), 1u);
  f.pool.prune(f.clock.now() + 4.1);
  EXPECT_EQ(f.pool.idle(), 0u);
}

TEST(UpstreamPool, KeepsNoConnectionTheServerSaidItWouldClose) {
  Fixture f([](int, int) { return Action::kConnectionClose; });
  auto c = f.pool.acquire(f.endpoint);
  ASSERT_TRUE(f.request(*c));
  f.pool.release(f.endpoint, c);
  EXPECT_EQ(f.pool.idle(), 0u);
  // A connection whose request did not complete is not reusable either.
  auto fresh = f.pool.acquire(f.endpoint);
  f.pool.release(f.endpoint, fresh);
  EXPECT_EQ(f.pool.idle(), 0u);
}

TEST(UpstreamPool, ClosesTheConnectionsOfAnEndpointThatLeftTheSnapshot) {
  Fixture f([](int, int) { return Action::kKeepAlive; }, /*max_idle=*/2);
  std::vector<std::shared_ptr<http::Client>> cs;
  for (int i = 0; i < 3; ++i) {
    cs.push_back(f.pool.acquire(f.endpoint));
    ASSERT_TRUE(f.request(*cs.back()));
  }
  for (auto& c : cs) f.pool.release(f.endpoint, c);
  EXPECT_EQ(f.pool.idle(), 2u);  // the bound
  f.pool.retain({f.endpoint.get()});
  EXPECT_EQ(f.pool.idle(), 2u);
  f.pool.retain({});
  EXPECT_EQ(f.pool.idle(), 0u);
  EXPECT_FALSE(cs[0]->reusable());  // closed, not merely forgotten
}

}  // namespace
}  // namespace tidegate::gateway::relay

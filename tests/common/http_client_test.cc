// The HTTP client's connection reuse: the Keep-Alive rules (pure) and, against a scripted server
// on a real loopback socket, the one resend on a fresh connection when a reused connection turns
// out to be closed before any response byte arrived.
#include "common/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cmath>
#include <functional>
#include <thread>

#include "common/clock.h"
#include "support/scripted_server.h"

namespace tidegate::http {
namespace {

TEST(KeepAlive, ParsesTheHeaderAndDecidesReuse) {
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    bool persistent;
    std::string header;
    double max_idle_s;
    double want_until;  // for a connection idle since t=100
  } cases[] = {
      {true, "", 30, 130},                      // no header: the client's own limit
      {true, "timeout=5, max=100", 30, 104},    // llama-server: 5 s less the 1 s margin
      {true, "timeout=5", 3, 103},              // the client's limit is shorter
      {true, "max=100, timeout=60", 30, 130},   // order and extra room do not matter
      {true, "TIMEOUT=1", 30, 100.5},           // under 2 s: half of it
      {true, "timeout=0", 30, -inf},            // the server keeps nothing idle
      {true, "timeout=5, max=0", 30, -inf},     // no request left on this connection
      {false, "timeout=5, max=100", 30, -inf},  // Connection: close / HTTP/1.0
      {true, "timeout=abc, max=-3", 30, 130},   // malformed numbers are not said
      {true, "timeout=5x", 30, 130},
  };
  for (const auto& c : cases) {
    const auto k = KeepAlive::parse(c.persistent, c.header);
    EXPECT_EQ(k.reuseUntil(100, c.max_idle_s), c.want_until) << c.header;
  }
  EXPECT_EQ(KeepAlive::parse(true, " timeout=5 , max=99 ").max, 99);
}

using testing::ScriptedServer;
using Action = ScriptedServer::Action;

// Sends `n` requests one after another on one Client; returns each result and whether it was
// resent. `between(i)` runs before request i (i > 0).
struct Sent {
  bool ok;
  Failure kind;
  bool resent;
};
std::vector<Sent> sendSequence(std::uint16_t port, int n, ClientOptions opts = {},
                               std::function<void(int)> between = {},
                               const std::string& host = "127.0.0.1") {
  asio::io_context ioc;
  std::vector<Sent> out;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        Client c(ioc.get_executor(), host, port, opts);
        for (int i = 0; i < n; ++i) {
          if (i > 0 && between) between(i);
          ClientRequest req{.method = "POST", .target = "/x", .body = "{}", .timeout_s = 1};
          auto r = co_await c.send(req);
          out.push_back(
              {r.ok() && r->body == "ok", r ? Failure::kProtocol : r.error().kind, c.resent()});
        }
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ioc.run();
  return out;
}

TEST(Client, ResendsOnceWhenAReusedConnectionDropsTheRequestUnanswered) {
  // The second request arrives on the kept-alive connection, which the server then closes
  // without answering (an idle close racing the request): it goes again on a fresh connection.
  ScriptedServer s([](int conn, int n) {
    return conn == 0 && n == 1 ? Action::kDropRequest : Action::kKeepAlive;
  });
  auto r = sendSequence(s.port(), 3);
  ASSERT_EQ(r.size(), 3u);
  for (const auto& x : r) EXPECT_TRUE(x.ok);
  EXPECT_FALSE(r[0].resent);
  EXPECT_TRUE(r[1].resent);
  EXPECT_FALSE(r[2].resent);
  EXPECT_EQ(s.connections(), 2);
  EXPECT_EQ(s.answered(), 3);  // each request answered exactly once
}

TEST(Client, ConnectsToAnAddressAsIsAndToANameThroughTheResolver) {
  // An IP address is connected to without a resolution; a name (from /etc/hosts, no network)
  // still resolves. Both reach the same server, each on a connection of its own.
  ScriptedServer s([](int, int) { return Action::kKeepAlive; });
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto r = sendSequence(s.port(), 2, {}, {}, host);
    ASSERT_EQ(r.size(), 2u) << host;
    for (const auto& x : r) EXPECT_TRUE(x.ok) << host;
  }
  EXPECT_EQ(s.answered(), 4);
  EXPECT_EQ(s.connections(), 2);
}

TEST(Client, NeverResendsOnAFreshConnection) {
  ScriptedServer s([](int, int) { return Action::kDropRequest; });
  auto r = sendSequence(s.port(), 1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].ok);
  EXPECT_EQ(r[0].kind, Failure::kReset);
  EXPECT_FALSE(r[0].resent);
  EXPECT_EQ(s.requests(), 1);
}

TEST(Client, NeverResendsAfterATimeout) {
  // The server took the request and is slow: it may be processing it, so no second copy.
  ScriptedServer s([](int, int n) { return n == 1 ? Action::kHang : Action::kKeepAlive; });
  auto r = sendSequence(s.port(), 2);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].ok);
  EXPECT_FALSE(r[1].ok);
  EXPECT_EQ(r[1].kind, Failure::kTimeout);
  EXPECT_FALSE(r[1].resent);
  EXPECT_EQ(s.requests(), 2);
}

TEST(Client, ServerThatClosesAfterEveryResponseLosesNoRequest) {
  // llama-server's behaviour after a stream: Keep-Alive said, connection closed anyway.
  ScriptedServer s([](int, int) { return Action::kCloseSilently; });
  auto r = sendSequence(s.port(), 20);
  for (const auto& x : r) EXPECT_TRUE(x.ok);
  EXPECT_EQ(s.answered(), 20);
  EXPECT_EQ(s.connections(), 20);
}

TEST(Client, ABodyOverItsLimitIsTooLargeAndItsConnectionIsNotReused) {
  // The relay's maxResponseBytes: a body over the limit, sized or chunked, fails as kTooLarge
  // (a 502 at the gateway), and the connection with its unread rest is closed, not pooled.
  const std::string sized(2000, 's');
  std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 2; ++i) chunked += "320\r\n" + std::string(800, 'c') + "\r\n";
  chunked += "0\r\n\r\n";
  ScriptedServer s([](int, int n) { return n == 0 ? Action::kKeepAlive : Action::kRaw; },
                   [&](const std::string& target) {
                     return target == "/sized" ? sized : target == "/chunked" ? chunked : "ok";
                   });
  asio::io_context ioc;
  std::vector<ClientResult<Response>> results;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        Client c(ioc.get_executor(), "127.0.0.1", s.port());
        for (const char* target : {"/sized", "/x", "/chunked"}) {
          ClientRequest req{
              .method = "GET", .target = target, .timeout_s = 5, .max_body_bytes = 1024};
          results.push_back(co_await c.send(req));
        }
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ioc.run();
  ASSERT_EQ(results.size(), 3u);
  for (int i : {0, 2}) {
    ASSERT_FALSE(results[i].ok()) << i;
    EXPECT_EQ(results[i].error().kind, Failure::kTooLarge) << i;
    EXPECT_NE(results[i].error().message.find("exceeds 1024 bytes"), std::string::npos)
        << results[i].error().message;
  }
  ASSERT_TRUE(results[1].ok()) << results[1].error().message;
  EXPECT_EQ(results[1]->body, "ok");
  // /x went on a new connection (on the first one, its answer would have been read from the
  // rest of the 2,000 bytes); /chunked reused the one /x left kept alive.
  EXPECT_EQ(s.connections(), 2);
}

TEST(Client, ConnectionCloseIsNeverReused) {
  ScriptedServer s([](int, int) { return Action::kConnectionClose; });
  auto r = sendSequence(s.port(), 5);
  for (const auto& x : r) {
    EXPECT_TRUE(x.ok);
    EXPECT_FALSE(x.resent);  // a new connection each time, not a failed reuse
  }
  EXPECT_EQ(s.connections(), 5);
}

TEST(Client, IdleConnectionPastTheServersTimeoutIsNotReused) {
  // timeout=5 with the 1 s margin: reused while idle under 4 s, replaced after.
  ScriptedServer s([](int, int) { return Action::kKeepAlive; });
  FakeClock clock(1000);
  auto r = sendSequence(s.port(), 3, {.clock = &clock},
                        [&](int i) { clock.advance(i == 1 ? 3.5 : 4.5); });
  for (const auto& x : r) {
    EXPECT_TRUE(x.ok);
    EXPECT_FALSE(x.resent);
  }
  EXPECT_EQ(s.connections(), 2);  // the first reuse at 3.5 s; a new connection after 4.5 s
}

}  // namespace
}  // namespace tidegate::http

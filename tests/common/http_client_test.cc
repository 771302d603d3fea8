// The HTTP client's connection reuse: the Keep-Alive rules (pure) and, against a scripted server
// on a real loopback socket, the one resend on a fresh connection when a reused connection turns
// out to be closed before any response byte arrived.
#include "common/http_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cmath>
#include <functional>
#include <mutex>
#include <thread>

#include "common/clock.h"

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
      {true, "", 30, 130},                       // no header: the client's own limit
      {true, "timeout=5, max=100", 30, 104},     // llama-server: 5 s less the 1 s margin
      {true, "timeout=5", 3, 103},               // the client's limit is shorter
      {true, "max=100, timeout=60", 30, 130},    // order and extra room do not matter
      {true, "TIMEOUT=1", 30, 100.5},            // under 2 s: half of it
      {true, "timeout=0", 30, -inf},             // the server keeps nothing idle
      {true, "timeout=5, max=0", 30, -inf},      // no request left on this connection
      {false, "timeout=5, max=100", 30, -inf},   // Connection: close / HTTP/1.0
      {true, "timeout=abc, max=-3", 30, 130},    // malformed numbers are not said
      {true, "timeout=5x", 30, 130},
  };
  for (const auto& c : cases) {
    const auto k = KeepAlive::parse(c.persistent, c.header);
    EXPECT_EQ(k.reuseUntil(100, c.max_idle_s), c.want_until) << c.header;
  }
  EXPECT_EQ(KeepAlive::parse(true, " timeout=5 , max=99 ").max, 99);
}

// A server on 127.0.0.1 that answers each request as its script says, a thread per connection.
class ScriptedServer {
 public:
  enum class Action {
    kKeepAlive,        // 200, keep the connection open
    kCloseSilently,    // 200 with Keep-Alive: timeout=5, then close (what llama-server does)
    kConnectionClose,  // 200 with Connection: close, then close
    kDropRequest,      // read the request, close without a byte of response
    kHang,             // read the request, never answer
  };
  using Script = std::function<Action(int connection, int request_on_connection)>;

  explicit ScriptedServer(Script script)
      : script_(std::move(script)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept_thread_ = std::thread([this] { acceptLoop(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    beast::error_code ec;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes the blocking accept()
    acceptor_.close(ec);
    {
      std::lock_guard lock(mu_);
      for (auto& s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
    }
    accept_thread_.join();
    for (auto& t : threads_) t.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }
  int requests() const { return requests_; }  // requests read, answered or not
  int answered() const { return answered_; }

 private:
  void acceptLoop() {
    while (!stopping_) {
      auto sock = std::make_shared<tcp::socket>(ioc_);
      beast::error_code ec;
      acceptor_.accept(*sock, ec);
      if (ec) return;
      const int conn = connections_++;
      std::lock_guard lock(mu_);
      sockets_.push_back(sock);
      threads_.emplace_back([this, sock, conn] { serve(*sock, conn); });
    }
  }
  void serve(tcp::socket& sock, int conn) {
    beast::flat_buffer buf;
    for (int n = 0;; ++n) {
      beast::http::request<beast::http::string_body> req;
      beast::error_code ec;
      beast::http::read(sock, buf, req, ec);
      if (ec) return;
      ++requests_;
      const Action a = script_(conn, n);
      if (a == Action::kHang) {
        while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return;
      }
      if (a == Action::kDropRequest) {
        sock.close(ec);
        return;
      }
      std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n";
      head += a == Action::kConnectionClose ? "Connection: close\r\n"
                                            : "Keep-Alive: timeout=5, max=100\r\n";
      head += "\r\nok";
      asio::write(sock, asio::buffer(head), ec);
      ++answered_;
      if (a != Action::kKeepAlive) {
        sock.shutdown(tcp::socket::shutdown_both, ec);
        sock.close(ec);
        return;
      }
    }
  }

  Script script_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0}, requests_{0}, answered_{0};
};
using Action = ScriptedServer::Action;

// Sends `n` requests one after another on one Client; returns each result and whether it was
// resent. `between(i)` runs before request i (i > 0).
struct Sent {
  bool ok;
  Failure kind;
  bool resent;
};
std::vector<Sent> sendSequence(std::uint16_t port, int n, ClientOptions opts = {},
                               std::function<void(int)> between = {}) {
  asio::io_context ioc;
  std::vector<Sent> out;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        Client c(ioc.get_executor(), "127.0.0.1", port, opts);
        for (int i = 0; i < n; ++i) {
          if (i > 0 && between) between(i);
          ClientRequest req{.method = "POST", .target = "/x", .body = "{}", .timeout_s = 1};
          auto r = co_await c.send(req);
          out.push_back({r.ok() && r->body == "ok", r ? Failure::kProtocol : r.error().kind,
                         c.resent()});
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
  auto r = sendSequence(s.port(), 3, {.clock = &clock}, [&](int i) {
    clock.advance(i == 1 ? 3.5 : 4.5);
  });
  for (const auto& x : r) {
    EXPECT_TRUE(x.ok);
    EXPECT_FALSE(x.resent);
  }
  EXPECT_EQ(s.connections(), 2);  // the first reuse at 3.5 s; a new connection after 4.5 s
}

}  // namespace
}  // namespace tidegate::http

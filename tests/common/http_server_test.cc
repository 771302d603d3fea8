// The HTTP server on a real loopback socket, driven by raw POSIX clients so that a test can send
// any bytes, half-close, or stop reading.
#include "common/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/process.h"

namespace tidegate::http {
namespace {

namespace bhttp = beast::http;
using Response = bhttp::response<bhttp::string_body>;
using testing::eventually;

// A Server on 127.0.0.1 (port 0) running on its own thread. Its handlers must end by themselves
// (they poll with bounds), so stopping joins the thread.
class TestServer {
 public:
  TestServer(ServerOptions options, Handler handler)
      : server_(ioc_, std::move(options), std::move(handler)) {
    auto ep = server_.listen("127.0.0.1", 0);
    if (!ep) throw std::runtime_error(ep.error().message);
    port_ = ep->port();
    server_.start();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~TestServer() {
    asio::post(ioc_, [this] { server_.stop(); });
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  const Server& server() const { return server_; }

 private:
  asio::io_context ioc_;
  Server server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// A blocking client on a raw socket. Reads give up after 10 s, so a broken server fails a test
// rather than hanging it.
class RawClient {
 public:
  // `rcvbuf` > 0 shrinks the receive buffer (set before connecting, so the window is small).
  explicit RawClient(std::uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("connect failed");
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  void shutdownWrite() { ::shutdown(fd_, SHUT_WR); }
  // Closes with a reset (SO_LINGER 0), as a client killed with unread data does.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads one response; nullopt when the connection ends or fails first.
  std::optional<Response> readResponse() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.eager(true);
    parser.body_limit(1ull << 30);
    while (true) {
      if (!pending_.empty()) {
        beast::error_code ec;
        const std::size_t used = parser.put(asio::buffer(pending_), ec);
        pending_.erase(0, used);
        if (ec && ec != bhttp::error::need_more) return std::nullopt;
        if (parser.is_done()) return parser.release();
        if (!ec && used > 0) continue;
      }
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      pending_.append(buf, static_cast<std::size_t>(n));
    }
  }

  // True when the server closed the connection: after whatever bytes were still due, a read
  // meets the end of stream or a reset (rather than the 10 s receive timeout).
  bool closedByPeer() {
    char buf[65536];
    while (true) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) continue;
      return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
  }

 private:
  int fd_ = -1;
  std::string pending_;  // received, not yet parsed
};

// Answers "<target> <host> <body>", so tests see what the handler was given.
asio::awaitable<void> echo(Exchange& ex) {
  const auto& req = ex.request();
  std::string body =
      std::string(req.target()) + " " + std::string(req[bhttp::field::host]) + " " + req.body();
  co_await ex.respond(Status::ok, std::move(body), "text/plain");
}

// Polls `cond` every 5 ms on the handler's executor, for at most 10 s; returns its last value.
asio::awaitable<bool> pollFor(const std::function<bool()>& cond) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int i = 0; i < 2000 && !cond(); ++i) {
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return cond();
}

std::string errorField(const Response& r, const char* field) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body(), ec);
  if (ec || !v.is_object()) return "<not JSON: " + r.body() + ">";
  const auto* err = v.get_object().if_contains("error");
  if (!err || !err->is_object()) return "<no error object>";
  const auto* f = err->get_object().if_contains(field);
  return f && f->is_string() ? std::string(f->get_string()) : "<none>";
}

TEST(HttpServer, TransferEncodingOtherThanChunkedAloneIsRefused) {
  TestServer s({}, echo);
  const std::string chunked_body = "5\r\nhello\r\n0\r\n\r\n";
  struct Case {
    const char* name;
    const char* version;
    std::string headers;
    std::string body;
    int want_status;
  } cases[] = {
      {"chunked", "HTTP/1.1", "Transfer-Encoding: chunked\r\n", chunked_body, 200},
      {"chunked in capitals", "HTTP/1.1", "Transfer-Encoding: CHUNKED\r\n", chunked_body, 200},
      {"content-length", "HTTP/1.1", "Content-Length: 5\r\n", "hello", 200},
      // Beast reads these as requests without a body (its bytes would be the next request):
      // refused by the server.
      {"gzip", "HTTP/1.1", "Transfer-Encoding: gzip\r\n", chunked_body, 400},
      {"identity", "HTTP/1.1", "Transfer-Encoding: identity\r\n", "hello", 400},
      {"chunked not last", "HTTP/1.1", "Transfer-Encoding: chunked, gzip\r\n", chunked_body, 400},
      {"gzip then chunked", "HTTP/1.1", "Transfer-Encoding: gzip, chunked\r\n", chunked_body, 400},
      {"two fields", "HTTP/1.1", "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
       chunked_body, 400},
      {"gzip and content-length", "HTTP/1.1", "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n",
       "hello", 400},
      {"HTTP/1.0 chunked", "HTTP/1.0", "Transfer-Encoding: chunked\r\n", chunked_body, 400},
      {"empty", "HTTP/1.1", "Transfer-Encoding: \r\n", "", 400},
      {"empty list items", "HTTP/1.1", "Transfer-Encoding: , chunked ,\r\n", chunked_body, 200},
      // Found by fuzz/http_request_fuzz.cc: Beast's token list ends at the first byte that is no
      // token's, so this read as `chunked` while a proxy in front may see an unknown coding.
      {"chunked then a byte no token has", "HTTP/1.1", "Transfer-Encoding: chunked\xff\r\n",
       chunked_body, 400},
      {"chunked then a vertical tab", "HTTP/1.1", "Transfer-Encoding: chunked\x0b\r\n",
       chunked_body, 400},
      // Beast refuses these itself.
      {"chunked and content-length", "HTTP/1.1",
       "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", chunked_body, 400},
      {"content-length and chunked", "HTTP/1.1",
       "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", chunked_body, 400},
      {"chunked twice", "HTTP/1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
       chunked_body, 400},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawClient client(s.port());
    const std::string request =
        std::string("POST /x ") + c.version + "\r\nHost: t\r\n" + c.headers + "\r\n" + c.body;
    ASSERT_TRUE(client.send(request));
    auto r = client.readResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), c.want_status) << r->body();
    if (c.want_status == 200) {
      EXPECT_EQ(r->body(), "/x t hello");
    } else {
      EXPECT_EQ(errorField(*r, "type"), "invalid_request_error");
      EXPECT_FALSE(r->keep_alive());
      EXPECT_TRUE(client.closedByPeer());
    }
  }
}

TEST(HttpServer, RequestTargetsReachHandlersInOriginForm) {
  TestServer s({}, echo);
  struct Case {
    const char* request_line;
    int want_status;
    const char* want_echo;  // "<target> <host> " as the handler saw them
  } cases[] = {
      {"POST /v1/chat/completions HTTP/1.1", 200, "/v1/chat/completions t "},
      {"POST http://example.com:8080/v1/chat/completions HTTP/1.1", 200,
       "/v1/chat/completions example.com:8080 "},
      {"GET HTTP://Example.com?x=1 HTTP/1.1", 200, "/?x=1 Example.com "},
      {"GET http://h.test HTTP/1.1", 200, "/ h.test "},
      {"GET https://[::1]:8443/a/b?c=d HTTP/1.1", 200, "/a/b?c=d [::1]:8443 "},
      {"OPTIONS * HTTP/1.1", 200, "* t "},
      {"GET * HTTP/1.1", 400, ""},
      {"GET http:///x HTTP/1.1", 400, ""},             // no host
      {"GET http://user@h.test/x HTTP/1.1", 400, ""},  // userinfo
      {"GET http://h.test:80x/ HTTP/1.1", 400, ""},    // bad port
      {"GET ftp://h.test/x HTTP/1.1", 400, ""},
      {"CONNECT h.test:443 HTTP/1.1", 400, ""},  // authority-form: no tunnels here
      {"GET v1/models HTTP/1.1", 400, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.request_line);
    RawClient client(s.port());
    ASSERT_TRUE(client.send(std::string(c.request_line) + "\r\nHost: t\r\n\r\n"));
    auto r = client.readResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), c.want_status) << r->body();
    if (c.want_status == 200) {
      EXPECT_EQ(r->body(), c.want_echo);
    } else {
      EXPECT_EQ(errorField(*r, "type"), "invalid_request_error");
      EXPECT_TRUE(client.closedByPeer());
    }
  }
}

// RFC 9112 §3.2: 400 to an HTTP/1.1 request without Host or with more than one; HTTP/1.0
// clients need not send it.
TEST(HttpServer, HostIsRequiredOnceOfHttp11Requests) {
  TestServer s({}, echo);
  struct Case {
    const char* request;
    int want_status;
    const char* want_message;  // part of the error's message, or the echo of a 200
  } cases[] = {
      {"GET /a HTTP/1.1\r\nHost: t\r\n\r\n", 200, "/a t "},
      {"GET /a HTTP/1.0\r\n\r\n", 200, "/a  "},
      {"GET /a HTTP/1.1\r\n\r\n", 400, "must have a Host header"},
      {"GET http://h.test/a HTTP/1.1\r\n\r\n", 400, "must have a Host header"},
      {"GET /a HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", 400, "malformed HTTP request"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.request);
    RawClient client(s.port());
    ASSERT_TRUE(client.send(c.request));
    auto r = client.readResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), c.want_status) << r->body();
    if (c.want_status == 200) {
      EXPECT_EQ(r->body(), c.want_message);
    } else {
      EXPECT_EQ(errorField(*r, "type"), "invalid_request_error");
      EXPECT_NE(errorField(*r, "message").find(c.want_message), std::string::npos)
          << errorField(*r, "message");
      EXPECT_TRUE(client.closedByPeer());
    }
  }
}

TEST(HttpServer, WriteToAClientThatStopsReadingTimesOut) {
  std::atomic<bool> done{false}, write_failed{false};
  TestServer s({.write_timeout_s = 0.3}, [&](Exchange& ex) -> asio::awaitable<void> {
    const std::string chunk(64 << 10, 'x');
    if (co_await ex.startStream(Status::ok, "text/plain")) {
      // 1 GiB at most: far beyond what the socket buffers hold.
      for (int i = 0; i < 16384 && !write_failed; ++i) write_failed = !co_await ex.write(chunk);
    }
    done = true;
  });
  RawClient client(s.port(), 4096);
  ASSERT_TRUE(client.send("POST /stream HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
  // The client reads nothing until the handler is done.
  ASSERT_TRUE(eventually([&] { return done.load(); }, std::chrono::seconds(30)));
  EXPECT_TRUE(write_failed);
  EXPECT_TRUE(client.closedByPeer());
}

TEST(HttpServer, DeadlinesCoverReadsAndWritesNotTheHandlersWaits) {
  // The handler waits longer than either deadline before and between its writes; the client
  // still gets everything. Then an incomplete request is cut off by the read deadline.
  TestServer s({.idle_timeout_s = 0.3, .write_timeout_s = 0.3},
               [](Exchange& ex) -> asio::awaitable<void> {
                 asio::steady_timer timer(co_await asio::this_coro::executor);
                 timer.expires_after(std::chrono::milliseconds(500));
                 co_await timer.async_wait(asio::use_awaitable);
                 if (!co_await ex.startStream(Status::ok, "text/plain")) co_return;
                 if (!co_await ex.write("a")) co_return;
                 timer.expires_after(std::chrono::milliseconds(500));
                 co_await timer.async_wait(asio::use_awaitable);
                 if (!co_await ex.write("b")) co_return;
                 co_await ex.finishStream();
               });
  RawClient client(s.port());
  ASSERT_TRUE(client.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = client.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), "ab");
  EXPECT_TRUE(r->keep_alive());
  ASSERT_TRUE(client.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhel"));
  EXPECT_TRUE(client.closedByPeer());
}

TEST(HttpServer, HalfClosedClientGetsItsWholeResponse) {
  for (const bool streaming : {false, true}) {
    SCOPED_TRACE(streaming ? "streamed" : "in one piece");
    std::atomic<bool> saw_eof{false}, fired{false};
    TestServer s({}, [&](Exchange& ex) -> asio::awaitable<void> {
      ex.onPeerClosed([&] { fired = true; });
      // Answers once the watch has seen the end of stream, so the answer follows the half-close.
      const std::function<bool()> eof = [&] { return ex.peerHalfClosed(); };
      saw_eof = co_await pollFor(eof);
      const std::string piece(64 << 10, 'y');
      if (!streaming) {
        std::string body;
        for (int i = 0; i < 16; ++i) body += piece;
        co_await ex.respond(Status::ok, std::move(body), "text/plain");
        co_return;
      }
      if (!co_await ex.startStream(Status::ok, "text/plain")) co_return;
      for (int i = 0; i < 16; ++i)
        if (!co_await ex.write(piece)) co_return;
      co_await ex.finishStream();
    });
    RawClient client(s.port());
    ASSERT_TRUE(client.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"));
    client.shutdownWrite();
    auto r = client.readResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 200);
    EXPECT_EQ(r->body(), std::string(16 << 16, 'y'));
    EXPECT_FALSE(r->keep_alive());  // nothing more can come from this client
    EXPECT_TRUE(client.closedByPeer());
    EXPECT_TRUE(saw_eof);
    EXPECT_FALSE(fired);
  }
}

TEST(HttpServer, ClientThatClosedIsFoundAtTheFirstWrite) {
  // A full close looks like a half-close until our bytes reach the closed socket, whose kernel
  // answers with a reset: the watch fires then, and writes fail.
  std::atomic<bool> done{false}, saw_eof{false}, fired{false}, later_write_ok{true};
  TestServer s({}, [&](Exchange& ex) -> asio::awaitable<void> {
    ex.onPeerClosed([&] { fired = true; });
    const std::function<bool()> eof = [&] { return ex.peerHalfClosed(); };
    saw_eof = co_await pollFor(eof);
    if (co_await ex.startStream(Status::ok, "text/plain")) {
      const std::function<bool()> gone = [&] { return fired.load(); };
      co_await pollFor(gone);
      later_write_ok = co_await ex.write("more");
    }
    done = true;
  });
  {
    RawClient client(s.port());
    ASSERT_TRUE(client.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"));
  }  // closed, with nothing unread: a FIN, not a reset
  ASSERT_TRUE(eventually([&] { return done.load(); }, std::chrono::seconds(30)));
  EXPECT_TRUE(saw_eof);
  EXPECT_TRUE(fired);
  EXPECT_FALSE(later_write_ok);
}

// Sends a request on `client` and returns the status of its answer (0: none).
int statusOf(RawClient& client) {
  if (!client.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")) return 0;
  auto r = client.readResponse();
  return r ? r->result_int() : 0;
}

// onPeerClosed's watch starts ServerOptions::watch_delay_s after the call: a client that resets
// sooner is noticed at the delay, not before, and an exchange that ended first never starts one,
// whatever its client does afterwards (most exchanges end within the delay and so cost nothing).
TEST(HttpServer, TheWatchStartsAfterItsDelayAndNeverForAnExchangeThatEndedFirst) {
  ServerOptions options;
  options.watch_delay_s = 0.3;
  std::atomic<int> slow_started{0}, slow_fired{0};
  std::atomic<bool> quick_fired{false};
  std::mutex mu;
  std::vector<double> waited;  // seconds from onPeerClosed to the watch firing
  TestServer s(options, [&](Exchange& ex) -> asio::awaitable<void> {
    if (ex.request().target() == "/quick") {
      ex.onPeerClosed([&] { quick_fired = true; });
      co_await ex.respond(Status::ok, "quick", "text/plain");
      co_return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto fired = std::make_shared<bool>(false);
    ex.onPeerClosed([fired] { *fired = true; });
    ++slow_started;
    const std::function<bool()> gone = [fired] { return *fired; };
    if (co_await pollFor(gone)) {
      std::lock_guard lock(mu);
      waited.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      ++slow_fired;
    }
    co_await ex.respond(Status::ok, "slow", "text/plain");
  });
  // Two slow exchanges with a quick one between them in the queue.
  RawClient a(s.port()), b(s.port()), c(s.port());
  ASSERT_TRUE(a.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(b.send("GET /quick HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = b.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body(), "quick");
  ASSERT_TRUE(eventually([&] { return slow_started.load() == 2; }, std::chrono::seconds(10)));
  b.reset();
  a.reset();
  c.reset();
  ASSERT_TRUE(eventually([&] { return slow_fired.load() == 2; }, std::chrono::seconds(10)));
  {
    std::lock_guard lock(mu);
    for (const double w : waited) EXPECT_GE(w, 0.3);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // past the quick one's delay
  EXPECT_FALSE(quick_fired);
  RawClient d(s.port());
  ASSERT_TRUE(d.send("GET /quick HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto again = d.readResponse();
  ASSERT_TRUE(again) << "the server serves on";
  EXPECT_EQ(again->body(), "quick");
}

// A handler may call onPeerClosed again (the relay does for each attempt): the latest function
// replaces the earlier ones, whether the watch was still waiting for its delay or armed.
TEST(HttpServer, CallingOnPeerClosedAgainReplacesTheFunction) {
  ServerOptions options;
  options.watch_delay_s = 0.1;
  std::atomic<int> fired_mask{0};
  std::atomic<bool> ready{false};
  TestServer s(options, [&](Exchange& ex) -> asio::awaitable<void> {
    ex.onPeerClosed([&] { fired_mask |= 1; });
    ex.onPeerClosed([&] { fired_mask |= 2; });  // while waiting for the delay
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(std::chrono::milliseconds(300));  // past the delay: armed
    co_await timer.async_wait(asio::use_awaitable);
    ex.onPeerClosed([&] { fired_mask |= 4; });
    ready = true;
    const std::function<bool()> gone = [&] { return fired_mask.load() != 0; };
    co_await pollFor(gone);
    co_await ex.respond(Status::ok, "done", "text/plain");
  });
  RawClient client(s.port());
  ASSERT_TRUE(client.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(eventually([&] { return ready.load(); }, std::chrono::seconds(10)));
  client.reset();
  ASSERT_TRUE(eventually([&] { return fired_mask.load() != 0; }, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(fired_mask.load(), 4);
}

TEST(HttpServer, ConnectionBudgetIsSharedByServers) {
  auto budget = std::make_shared<ConnectionBudget>(2);
  TestServer a({.connection_budget = budget}, echo), b({.connection_budget = budget}, echo);
  // One connection to each; once answered, each holds its slot.
  RawClient first(a.port()), second(b.port());
  ASSERT_EQ(statusOf(first), 200);
  ASSERT_EQ(statusOf(second), 200);
  for (const auto port : {a.port(), b.port()}) {
    RawClient over(port);
    ASSERT_TRUE(over.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = over.readResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 503);
    EXPECT_EQ(errorField(*r, "type"), "service_unavailable");
    EXPECT_EQ(errorField(*r, "code"), "connection_limit");
    EXPECT_FALSE(r->keep_alive());
    EXPECT_TRUE(over.closedByPeer());
  }
  EXPECT_EQ(budget->rejected(), 2u);
  EXPECT_EQ(a.server().rejectedConnections(), 1u);
  EXPECT_EQ(b.server().rejectedConnections(), 1u);
  // A closed connection gives its slot back, to either server.
  first.close();
  ASSERT_TRUE(eventually([&] { return budget->open() < 2; }));
  RawClient again(b.port());
  EXPECT_EQ(statusOf(again), 200);
  EXPECT_EQ(statusOf(second), 200);  // the connections that held on are untouched
}

TEST(HttpServer, ABurstQueuedWhileTheLoopIsBusyIsAcceptedAndBudgeted) {
  // Connections the kernel queued while the event loop was not accepting are taken in batches
  // (acceptLoop): every one is answered, and those over the budget get 503 as any other would.
  asio::io_context ioc;
  Server server(ioc, {.max_connections = 30}, echo);
  auto ep = server.listen("127.0.0.1", 0);
  ASSERT_TRUE(ep);
  server.start();
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 100; ++i) {
    clients.push_back(std::make_unique<RawClient>(ep->port()));
    ASSERT_TRUE(clients.back()->send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  }
  std::thread loop([&] { ioc.run(); });
  int ok = 0, refused = 0, other = 0;
  for (auto& c : clients) {
    const auto r = c->readResponse();
    const int status = r ? r->result_int() : 0;
    ++(status == 200 ? ok : status == 503 ? refused : other);
  }
  EXPECT_EQ(ok, 30);
  EXPECT_EQ(refused, 70);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(server.rejectedConnections(), 70u);
  asio::post(ioc, [&] { server.stop(); });
  loop.join();
}

TEST(HttpServer, WithoutABudgetEachServerCountsItsOwnConnections) {
  TestServer a({.max_connections = 1}, echo), b({.max_connections = 1}, echo);
  RawClient first(a.port()), second(b.port());
  EXPECT_EQ(statusOf(first), 200);
  EXPECT_EQ(statusOf(second), 200);
  RawClient over(a.port());
  EXPECT_EQ(statusOf(over), 503);
  EXPECT_EQ(a.server().rejectedConnections(), 1u);
  EXPECT_EQ(b.server().rejectedConnections(), 0u);
}

}  // namespace
}  // namespace tidegate::http

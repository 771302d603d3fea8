#pragma once
// An HTTP/1.1 server on Boost.Beast with one C++20 coroutine per connection.
//
// Ownership and threads: a Server belongs to one io_context and must be used from the thread that
// runs it (the engine runs one; the gateway runs one Server per worker thread with SO_REUSEPORT).
// The handler is called once per request with an Exchange and must answer it through the
// Exchange, either with respond() or with a chunked stream (startStream/write/finishStream). A
// handler that returns without answering gets a 500; an exception escaping a handler is caught,
// logged with the connection id, answered with 500 if possible, and the connection closed.
//
// Graceful shutdown (stopAccepting), as uvicorn's on SIGTERM: the listener closes, connections
// between requests close, the exchanges in progress run to their end and their connections close
// after them; a callback says when none remain. stop() cuts at once.
//
// Limits (ServerOptions): header and body sizes (431 / 413 in OpenAI error format), an idle
// deadline per request read, a deadline on every write to the client, and a cap on open
// connections, per server or shared by several (ConnectionBudget); a connection over the cap is
// answered 503 without its request being read.
//
// Reading a request (http_request.h): RFC 9112 framing checks (a request smuggling guard: 400,
// then the connection closes), absolute-form targets brought to origin-form for handlers.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/intrusive/list.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/http_request.h"
#include "common/result.h"
#include "common/tls.h"

namespace tidegate::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Headers = std::vector<std::pair<std::string, std::string>>;

// A cap on open connections shared by several Servers (the gateway runs one per worker thread):
// a server takes a slot for each connection it accepts and the slot comes back when the
// connection closes. Thread-safe; owned by a shared_ptr (every server and session holds one).
class ConnectionBudget : public std::enable_shared_from_this<ConnectionBudget> {
 public:
  // A taken slot, given back when destroyed. Empty (false) when none was free.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&&) = default;
    Slot& operator=(Slot&&) = delete;
    ~Slot();
    explicit operator bool() const { return budget_ != nullptr; }

   private:
    friend class ConnectionBudget;
    explicit Slot(std::shared_ptr<ConnectionBudget> budget) : budget_(std::move(budget)) {}
    std::shared_ptr<ConnectionBudget> budget_;
  };

  explicit ConnectionBudget(std::size_t limit) : limit_(limit) {}

  // Takes a slot, or returns an empty one when `limit` connections are open.
  // REQUIRES: this budget is owned by a std::shared_ptr.
  Slot tryAcquire();
  // Counts a connection refused because no slot was free. Returns how many were refused since
  // the last report when a report is due (at most one a second across every server sharing the
  // budget, so a flood of refusals logs one line a second), else 0.
  std::uint64_t countRejected(double now);

  std::size_t limit() const { return limit_; }
  std::size_t open() const { return open_.load(std::memory_order_relaxed); }
  // Connections refused so far by every server sharing this budget.
  std::uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }

 private:
  const std::size_t limit_;
  std::atomic<std::size_t> open_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::mutex report_mu_;
  double next_report_ = 0;      // guarded by report_mu_
  std::uint64_t reported_ = 0;  // guarded by report_mu_: rejected_ at the last report
};

struct ServerOptions {
  std::size_t max_body_bytes = 8 << 20;     // default 8 MiB; larger bodies get 413
  std::size_t max_header_bytes = 64 << 10;  // default 64 KiB; larger headers get 431
  double idle_timeout_s = 60;               // default 60 s to receive a whole request
  // Default 30 s for each write to the client (a response, a stream's head, one chunk, the last
  // chunk); a client that stops reading fails the write and the connection closes.
  double write_timeout_s = 30;
  std::size_t max_connections = 20000;  // default 20,000 open connections (without a budget)
  // Default none: this server alone caps its connections at max_connections. When set, the cap
  // is this budget's, shared with every server given the same one (max_connections is unused).
  std::shared_ptr<ConnectionBudget> connection_budget;
  std::string server_name = "tidegate";  // `Server` response header
  bool keep_alive = true;  // default true; false closes every connection after one response
  // Default none: plain HTTP. When set, every connection is TLS with its current context (see
  // tls::ServerTls), and the handshake must finish within handshake_timeout_s. A failed
  // handshake is counted in the ServerTls by reason and closes the connection, nothing else. A
  // connection over the connection budget is closed without an answer (a 503 would cost a
  // handshake while the server is overloaded).
  std::shared_ptr<tls::ServerTls> tls;
  double handshake_timeout_s = 10;  // default 10 s
  // Default 50 ms: the watch of Exchange::onPeerClosed is armed once its exchange has run this
  // long (from the first call; up to a quarter more, to arm them in batches). Most requests end
  // sooner and pay nothing for it (arming costs a receive on the socket and its cancellation, about
  // a tenth of a proxied request's CPU); a client leaving a long generation is noticed that much
  // later. 0 arms it at once.
  double watch_delay_s = 0.05;
};

class WatchQueue;
// An exchange's place in a WatchQueue; it leaves the queue when the exchange is destroyed.
using WatchHook =
    boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class Exchange {
 public:
  // `options` must outlive the exchange (the Server owns them). `request_no` counts the
  // requests of the connection from 1. `draining`, when given, is the server's flag (it must
  // outlive the exchange): once it is set, the connection closes after this exchange.
  // `watches`, when given, delays onPeerClosed's watch (ServerOptions::watch_delay_s); without
  // it the watch is armed at once.
  Exchange(tls::Stream& stream, Request request, std::uint64_t conn_id,
           const ServerOptions& options, std::uint64_t request_no = 1,
           const bool* draining = nullptr, WatchQueue* watches = nullptr);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const Request& request() const { return request_; }
  Request& request() { return request_; }
  std::uint64_t connId() const { return conn_id_; }
  // The client's "ADDRESS:PORT" ("" if the socket no longer knows it).
  std::string remoteAddress() const;
  // "[c12][r3]": connection 12, its third request — or the client's x-request-id in place of
  // r3 when it sent one — for log lines, so one request can be followed across components.
  const std::string& logId() const;

  // Each write below must complete within ServerOptions::write_timeout_s. A write that fails
  // (the peer is gone, or it stopped reading and the deadline passed) returns false, marks the
  // exchange failed (every later write returns false at once) and the connection closes after
  // the handler.

  // Sends a complete response. Returns false if writing failed. (The forms without headers are
  // overloads, not a default argument: GCC 12 destroys a default-argument temporary of a
  // co_await expression twice.)
  asio::awaitable<bool> respond(Status status, std::string body, std::string_view content_type,
                                const Headers& headers);
  asio::awaitable<bool> respond(Status status, std::string body,
                                std::string_view content_type = "application/json") {
    return respond(status, std::move(body), content_type, noHeaders());
  }

  // Starts a chunked response. Returns false if writing failed.
  asio::awaitable<bool> startStream(Status status, std::string_view content_type,
                                    const Headers& headers);
  asio::awaitable<bool> startStream(Status status, std::string_view content_type) {
    return startStream(status, content_type, noHeaders());
  }
  // Writes one chunk. REQUIRES: startStream() succeeded. Returns false if writing failed.
  asio::awaitable<bool> write(std::string_view data);
  // Writes the last chunk. Returns false if writing failed.
  asio::awaitable<bool> finishStream();

  // Arms a watch on the connection: `fn` runs once, on the connection's executor, if the
  // connection fails (a reset; for a client that closed, the reset its kernel sends when our
  // first bytes reach it) before this exchange ends. Lets a long request (a queued or streaming
  // generation) free its resources as soon as its client leaves.
  // An end of stream alone does not fire it: a client may half-close (shutdown(SHUT_WR)) after
  // its request and still read the response. It sets peerHalfClosed() instead.
  // In a Server the watch starts after ServerOptions::watch_delay_s (50 ms): a client that
  // leaves is noticed from then on, and an exchange that ends sooner never starts it.
  void onPeerClosed(std::function<void()> fn);

  bool responded() const { return responded_; }
  // True once the watch saw the client's end of stream: a half-close, or a full close not yet
  // told apart from one. The response is still sent; the connection closes after it. (Before
  // the watch starts, watch_delay_s in, an end of stream is found by the next request's read.)
  bool peerHalfClosed() const;
  // True when the connection must close after this exchange (a failed write, no keep-alive,
  // the client's end of stream, or the server draining). A response started while it is true
  // says `Connection: close`.
  bool closeAfter() const {
    return failed_ || !keep_alive_ || peerHalfClosed() || (draining_ && *draining_);
  }

 private:
  static const Headers& noHeaders() {
    static const Headers none;
    return none;
  }
  struct Watch;
  friend class WatchQueue;
  // Starts the watch with the function onPeerClosed was given.
  void arm();
  void disarm();
  // Writes a response head and its body (or nothing) in one gathered write, under the deadline.
  asio::awaitable<bool> send(std::string head, std::string_view body);
  // Arms the write deadline before a write; clears it after and records a failure.
  void beginWrite();
  bool endWrite(beast::error_code ec);

  tls::Stream& stream_;
  Request request_;
  std::uint64_t conn_id_;
  std::uint64_t request_no_;
  mutable std::string log_id_;  // see logId()
  const ServerOptions& options_;
  const bool* draining_;  // the server's flag, or null
  bool keep_alive_;
  bool responded_ = false;
  bool failed_ = false;
  bool peer_eof_ = false;  // the watch's finding, kept when the watch is disarmed
  std::shared_ptr<Watch> watch_;
  // onPeerClosed's function while the watch waits in `watches_` for its delay.
  std::function<void()> watch_fn_;
  WatchQueue* watches_;
  WatchHook watch_hook_;
  std::chrono::steady_clock::time_point watch_due_{};
};

// The watches of a server's exchanges waiting for their delay (ServerOptions::watch_delay_s), in
// the order they are due; one timer arms them. Used on the server's thread only. The timer's
// handler holds `this`: like the sessions, it relies on the Server outliving what its io_context
// still runs (a Server is destroyed after its io_context stopped or ran out of work).
class WatchQueue {
 public:
  WatchQueue(asio::io_context& ioc, double delay_s);
  // Arms `ex`'s watch once the delay has passed, unless the exchange ends (or disarms) first.
  void add(Exchange& ex);
  // Forgets every waiting watch and the timer's wait (the server is stopping).
  void clear();

 private:
  void waitUntil(std::chrono::steady_clock::time_point due);
  void wake();
  asio::steady_timer timer_;
  std::chrono::steady_clock::duration delay_;
  boost::intrusive::list<Exchange,
                         boost::intrusive::member_hook<Exchange, WatchHook, &Exchange::watch_hook_>,
                         boost::intrusive::constant_time_size<false>>
      pending_;
  bool waiting_ = false;  // the timer has a wait pending
};

using Handler = std::function<asio::awaitable<void>(Exchange&)>;

class Server {
 public:
  Server(asio::io_context& ioc, ServerOptions options, Handler handler);
  ~Server();

  // Binds and listens; port 0 picks a free port. Returns the bound endpoint.
  Result<tcp::endpoint> listen(const std::string& host, std::uint16_t port,
                               bool reuse_port = false);
  // Starts accepting. REQUIRES: listen() succeeded.
  void start();
  // Starts a graceful shutdown, as uvicorn's Server.shutdown does on SIGTERM: closes the
  // listener (new connections are refused), closes every connection that is not inside an
  // exchange (idle keep-alive connections, TLS handshakes, 503 refusals, and a request whose head
  // has not fully arrived: it is dropped unanswered, as uvicorn drops one), and lets the
  // exchanges in progress (from a complete request head to the end of its handler) run to their
  // end. A response they start from now on says `Connection: close`, and every connection closes
  // after its exchange instead of reading another request. `on_drained` (optional) runs once, on
  // the io_context, when the last connection has closed (posted at once if none is open). There
  // is no deadline here: the caller decides when to stop() what remains.
  // REQUIRES: called at most once; not after stop().
  void stopAccepting(std::function<void()> on_drained = {});
  bool draining() const { return draining_; }
  // Stops accepting and closes every open connection (in-flight handlers see write failures).
  // After stopAccepting(), cuts what the drain has not finished.
  void stop();
  std::size_t connections() const { return sockets_.size(); }
  // Exchanges in progress: connections whose request head has been read and whose handler has
  // not finished.
  std::size_t exchanges() const { return exchanges_; }
  // Connections this server refused with 503 because the connection budget was spent. Safe
  // from any thread.
  std::uint64_t rejectedConnections() const { return rejected_.load(std::memory_order_relaxed); }

 private:
  asio::awaitable<void> acceptLoop();
  // Starts a session for an accepted connection, or refuses it (503) over the budget.
  void take(tcp::socket sock);
  asio::awaitable<void> session(tcp::socket socket, std::uint64_t id, ConnectionBudget::Slot slot);
  asio::awaitable<void> refuse(tcp::socket socket);
  // Reads a connection's next request into `out`; true when it holds one. A request refused
  // while read (400, 413, 431) is answered here, then a lingering close; it and a connection that
  // just ends (its end of stream, a timeout, a reset) give false. A coroutine of its own, so
  // that the parser is not in the frame of the session, which every open connection keeps.
  asio::awaitable<bool> readRequest(tls::Stream& stream, beast::flat_buffer& buffer, Request& out);
  // Writes an error response in OpenAI format with `Connection: close`, under the write
  // deadline; the caller closes the connection.
  asio::awaitable<void> sendError(tls::Stream& stream, Status status, std::string message,
                                  std::string_view code = {});
  asio::awaitable<void> lingeringClose(tls::Stream& stream);
  // The TLS handshake of a new connection; false (counted, logged) if it failed.
  asio::awaitable<bool> handshake(tls::Stream& stream, std::uint64_t id);
  // Marks a connection as inside an exchange (`busy`) or between requests.
  void setBusy(tls::Stream& stream, bool busy);
  // Forgets a closed connection; the last one to close during a drain runs on_drained_.
  void forget(tls::Stream& stream);

  asio::io_context& ioc_;
  ServerOptions options_;
  Handler handler_;
  tcp::acceptor acceptor_;
  std::shared_ptr<ConnectionBudget> budget_;  // options_.connection_budget, or this server's own
  // Every open connection, and whether it is inside an exchange (its request head read).
  std::unordered_map<tls::Stream*, bool> sockets_;
  std::size_t exchanges_ = 0;  // connections in sockets_ marked true
  std::function<void()> on_drained_;
  WatchQueue watches_;  // the exchanges' delayed watches
  std::uint64_t next_conn_id_ = 1;
  std::size_t refusing_ = 0;  // 503s being written or lingering (bounded by kMaxRefusing)
  std::atomic<std::uint64_t> rejected_{0};
  double next_tls_log_ = 0;  // handshake failures log at most one line a second
  std::uint64_t tls_unlogged_ = 0;
  bool stopped_ = false;
  bool draining_ = false;  // stopAccepting() was called
};

// Builds the OpenAI error body {"error":{"message","type","param","code"}}.
std::string openaiError(std::string_view message, std::string_view type,
                        std::string_view param = {}, std::string_view code = {});
// The OpenAI error `type` conventionally used for an HTTP status.
std::string_view openaiErrorType(Status status);

}  // namespace tidegate::http

#include "common/http_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>

#include "common/clock.h"
#include "common/http_wire.h"
#include "common/log.h"

namespace tidegate::http {

namespace bhttp = beast::http;
using asio::use_awaitable;
constexpr auto kTuple = asio::as_tuple(use_awaitable);
// Connections being refused (503 written, then a lingering close) at once, per server; past it a
// refused connection is closed without an answer, so a flood cannot pile up sockets.
constexpr std::size_t kMaxRefusing = 256;
// Connections accepted in one go when the listener is readable (see acceptLoop).
constexpr int kAcceptBatch = 64;

namespace {
// An accept that failed: EMFILE and friends are logged (and accepting goes on rather than dying);
// nothing queued (a batch's end) or a connection its client aborted while queued is no news.
void logAcceptError(const beast::error_code& ec) {
  if (ec != asio::error::would_block && ec != asio::error::try_again &&
      ec != asio::error::connection_aborted)
    spdlog::warn("accept: {}", ec.message());
}

std::chrono::steady_clock::duration asDuration(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}
}  // namespace

ConnectionBudget::Slot::~Slot() {
  if (budget_) budget_->open_.fetch_sub(1, std::memory_order_relaxed);
}

ConnectionBudget::Slot ConnectionBudget::tryAcquire() {
  std::size_t n = open_.load(std::memory_order_relaxed);
  do {
    if (n >= limit_) return {};
  } while (!open_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return Slot(shared_from_this());
}

std::uint64_t ConnectionBudget::countRejected(double now) {
  const std::uint64_t total = rejected_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::lock_guard lock(report_mu_);
  if (now < next_report_) return 0;
  next_report_ = now + 1;
  const std::uint64_t since = total - reported_;
  reported_ = total;
  return since;
}

// The watch of onPeerClosed, armed when its exchange has run ServerOptions::watch_delay_s (see
// WatchQueue). The pending waits hold it and may outlive the Exchange: `fn` is cleared when the
// exchange ends, and nothing else (not the socket) is touched after that.
//
// Why an end of stream does not fire it: on Linux a client's shutdown(SHUT_WR) and its close()
// look the same to us until we write. In both cases recv() returns 0, poll() reports
// POLLIN|POLLRDHUP, SO_ERROR is 0 and TCP_INFO says CLOSE_WAIT (checked with real sockets).
// Only when our bytes reach a closed socket does its kernel answer with a reset, which shows as
// POLLERR|POLLHUP here and EPIPE/ECONNRESET on the next write. (A close with unread data resets
// at once, which we see straight away.) So the end of stream is taken as a half-close: the
// request runs on and is answered, and a client that really left is found at our first write,
// by the reset (this watch, armed for errors from then on) or by a failed or timed-out write.
// The price: a client that closes while a non-streamed answer is being computed is noticed only
// when the answer is written.
struct Exchange::Watch : std::enable_shared_from_this<Exchange::Watch> {
  Watch(tcp::socket& s, std::function<void()> f) : sock(s), fn(std::move(f)) {}

  // Waits until the client sends something: more bytes, an end of stream or a reset. A peek,
  // not async_wait: Asio tries a receive at once and, when nothing is there, waits on the
  // socket's epoll registration as it is, where async_wait re-arms it (an epoll_ctl for every
  // request). The peeked byte stays in the socket for the session's next read.
  void waitReadable() {
    sock.async_receive(asio::buffer(&peeked, 1), tcp::socket::message_peek,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (!self->fn || ec == asio::error::operation_aborted) return;  // disarmed
                         // A pipelined next request or an end of stream: the client is still
                         // there, or may be. From now on only an error on the connection says
                         // it left.
                         if (!ec || ec == asio::error::eof) {
                           self->peer_eof = ec == asio::error::eof;
                           return self->waitError();
                         }
                         self->fire();  // reset
                       });
  }

  // Waits for POLLERR/POLLHUP: the reset a gone client's kernel sends when our bytes reach it.
  void waitError() {
    sock.async_wait(tcp::socket::wait_error, [self = shared_from_this()](beast::error_code ec) {
      if (!self->fn || ec == asio::error::operation_aborted) return;  // disarmed
      if (!ec) {
        // The wait also ends on urgent data (POLLPRI), which is no error.
        pollfd p{self->sock.native_handle(), 0, 0};
        if (::poll(&p, 1, 0) >= 0 && (p.revents & (POLLERR | POLLHUP)) == 0)
          return self->waitError();
      }
      self->fire();
    });
  }

  void fire() {
    auto f = std::move(fn);
    fn = nullptr;
    f();
  }

  tcp::socket& sock;
  std::function<void()> fn;
  bool peer_eof = false;
  char peeked = 0;  // waitReadable's buffer
};

Exchange::Exchange(tls::Stream& stream, Request request, std::uint64_t conn_id,
                   const ServerOptions& options, std::uint64_t request_no, const bool* draining,
                   WatchQueue* watches)
    : stream_(stream),
      request_(std::move(request)),
      conn_id_(conn_id),
      request_no_(request_no),
      options_(options),
      draining_(draining),
      keep_alive_(options.keep_alive && request_.keep_alive()),
      watches_(watches) {}

std::string Exchange::remoteAddress() const { return stream_.remoteAddress(); }

const std::string& Exchange::logId() const {
  if (log_id_.empty()) {  // built when first logged, not for every request
    const auto rid = request_["x-request-id"];
    log_id_ = "[c" + std::to_string(conn_id_) + "][" +
              (rid.empty() ? "r" + std::to_string(request_no_) : std::string(rid.substr(0, 64))) +
              "]";
  }
  return log_id_;
}

Exchange::~Exchange() { disarm(); }

void Exchange::disarm() {
  watch_hook_.unlink();  // no longer waiting for its delay, if it was
  watch_fn_ = nullptr;
  if (!watch_) return;
  peer_eof_ = peer_eof_ || watch_->peer_eof;
  watch_->fn = nullptr;
  watch_.reset();
  // Cancels the pending peek (or error wait), so the next request read is the only read
  // operation.
  beast::error_code ec;
  stream_.socket().cancel(ec);
}

void Exchange::onPeerClosed(std::function<void()> fn) {
  // Called again (the relay does, for each attempt): the new function takes the old one's place,
  // and a watch already waiting or armed goes on as it was, keeping its place and its delay.
  if (watch_hook_.is_linked()) {
    watch_fn_ = std::move(fn);
    return;
  }
  if (watch_ && watch_->fn) {
    watch_->fn = std::move(fn);
    return;
  }
  disarm();
  if (failed_) return;  // the connection is closing; nothing left to watch
  watch_fn_ = std::move(fn);
  if (watches_) {
    watches_->add(*this);
  } else {
    arm();
  }
}

void Exchange::arm() {
  if (failed_ || !watch_fn_) return;
  watch_ = std::make_shared<Watch>(stream_.socket(), std::exchange(watch_fn_, nullptr));
  watch_->waitReadable();
}

WatchQueue::WatchQueue(asio::io_context& ioc, double delay_s)
    : timer_(ioc), delay_(asDuration(delay_s)) {}

void WatchQueue::add(Exchange& ex) {
  if (delay_ <= std::chrono::steady_clock::duration::zero()) return ex.arm();  // no delay
  // The delay is the same for every exchange, so appending keeps the queue in due order.
  ex.watch_due_ = std::chrono::steady_clock::now() + delay_;
  pending_.push_back(ex);
  if (!waiting_) waitUntil(ex.watch_due_);
}

// One wait at a time, for the earliest due plus a quarter of the delay, so that one wake arms
// every watch due in that span: the timer wakes at most four times a delay however many
// exchanges run long, and a watch starts between one and one and a quarter delays in.
void WatchQueue::waitUntil(std::chrono::steady_clock::time_point due) {
  waiting_ = true;
  timer_.expires_at(due + delay_ / 4);
  timer_.async_wait([this](beast::error_code ec) {
    if (ec == asio::error::operation_aborted) return;  // the server is going away
    wake();
  });
}

void WatchQueue::wake() {
  waiting_ = false;
  const auto now = std::chrono::steady_clock::now();
  while (!pending_.empty() && pending_.front().watch_due_ <= now) {
    Exchange& ex = pending_.front();
    pending_.pop_front();
    ex.arm();
  }
  if (!pending_.empty()) waitUntil(pending_.front().watch_due_);
}

void WatchQueue::clear() {
  pending_.clear();  // unlinks them: none is armed from now on
  timer_.cancel();
  waiting_ = false;
}

bool Exchange::peerHalfClosed() const { return peer_eof_ || (watch_ && watch_->peer_eof); }

void Exchange::beginWrite() { stream_.tcp().expires_after(asDuration(options_.write_timeout_s)); }

bool Exchange::endWrite(beast::error_code ec) {
  ec = stream_.classify(ec);
  // No deadline while the handler waits between writes (on an engine, say): only writes are
  // timed here, and the session sets its own deadline for the next request.
  stream_.tcp().expires_never();
  if (!ec) return true;
  if (ec == beast::error::timeout)
    spdlog::debug("{} write timed out after {} s: the client stopped reading", logId(),
                  options_.write_timeout_s);
  failed_ = true;  // the response is broken: the connection closes after the handler
  return false;
}

asio::awaitable<bool> Exchange::send(std::string head, std::string_view body) {
  beginWrite();
  const std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
  auto [ec, n] = co_await stream_.io([&](auto& s) { return asio::async_write(s, bufs, kTuple); });
  co_return endWrite(ec);
}

asio::awaitable<bool> Exchange::respond(Status status, std::string body,
                                        std::string_view content_type, const Headers& headers) {
  responded_ = true;
  if (failed_) co_return false;
  std::string head;
  appendResponseHead(head, status, request_.version(), options_.server_name, content_type, headers,
                     !closeAfter(), body.size(), false);
  co_return co_await send(std::move(head), body);
}

asio::awaitable<bool> Exchange::startStream(Status status, std::string_view content_type,
                                            const Headers& headers) {
  responded_ = true;
  if (failed_) co_return false;
  std::string head;
  appendResponseHead(head, status, request_.version(), options_.server_name, content_type, headers,
                     !closeAfter(), 0, true);
  const std::string_view no_body;
  co_return co_await send(std::move(head), no_body);
}

asio::awaitable<bool> Exchange::write(std::string_view data) {
  if (failed_) co_return false;
  if (data.empty()) co_return true;  // an empty chunk would end the body
  // The chunk's size line, its data and its CRLF go out in one gathered write.
  char size_line[20];
  auto r = std::to_chars(size_line, size_line + 16, data.size(), 16);
  *r.ptr++ = '\r';
  *r.ptr++ = '\n';
  const std::array<asio::const_buffer, 3> bufs{
      asio::buffer(size_line, static_cast<std::size_t>(r.ptr - size_line)), asio::buffer(data),
      asio::buffer("\r\n", 2)};
  beginWrite();
  auto [ec, n] = co_await stream_.io([&](auto& s) { return asio::async_write(s, bufs, kTuple); });
  co_return endWrite(ec);
}

asio::awaitable<bool> Exchange::finishStream() {
  if (failed_) co_return false;
  std::string last = "0\r\n\r\n";
  const std::string_view no_body;
  co_return co_await send(std::move(last), no_body);
}

Server::Server(asio::io_context& ioc, ServerOptions options, Handler handler)
    : ioc_(ioc),
      options_(std::move(options)),
      handler_(std::move(handler)),
      acceptor_(ioc),
      budget_(options_.connection_budget
                  ? options_.connection_budget
                  : std::make_shared<ConnectionBudget>(options_.max_connections)),
      watches_(ioc, options_.watch_delay_s) {}

Server::~Server() { stop(); }

Result<tcp::endpoint> Server::listen(const std::string& host, std::uint16_t port, bool reuse_port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Error{"bad listen address '" + host + "': " + ec.message()};
  tcp::endpoint ep{addr, port};
  acceptor_.open(ep.protocol(), ec);
  if (ec) return Error{"open: " + ec.message()};
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (reuse_port) {
    int one = 1;
    ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  acceptor_.bind(ep, ec);
  if (ec) return Error{"bind " + host + ":" + std::to_string(port) + ": " + ec.message()};
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{"listen: " + ec.message()};
  // acceptLoop's batches accept synchronously and must never block the event loop: non-blocking
  // (would_block when nothing is queued), and a connection aborted while queued reported as
  // such (Asio's accept otherwise polls, with no timeout, for the next connection).
  acceptor_.non_blocking(true, ec);
  if (!ec) acceptor_.set_option(asio::socket_base::enable_connection_aborted(true), ec);
  if (ec) return Error{"listen: " + ec.message()};
  return acceptor_.local_endpoint();
}

void Server::start() { asio::co_spawn(ioc_, acceptLoop(), asio::detached); }

void Server::stopAccepting(std::function<void()> on_drained) {
  if (stopped_ || draining_) return;
  draining_ = true;
  on_drained_ = std::move(on_drained);
  beast::error_code ec;
  acceptor_.close(ec);
  // Closing fails the pending read of an idle connection; its session ends (it checks
  // draining_ before reading again) and forget() counts it out.
  for (auto& [s, busy] : sockets_)
    if (!busy) s->socket().close(ec);
  if (sockets_.empty() && on_drained_) asio::post(ioc_, std::exchange(on_drained_, nullptr));
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  watches_.clear();  // the connections are closing: nothing to watch, no wait to keep run() up
  beast::error_code ec;
  acceptor_.close(ec);
  for (auto& [s, busy] : sockets_) s->socket().close(ec);
}

void Server::setBusy(tls::Stream& stream, bool busy) {
  auto it = sockets_.find(&stream);
  if (it == sockets_.end() || it->second == busy) return;
  it->second = busy;
  if (busy) {
    ++exchanges_;
  } else {
    --exchanges_;
  }
}

void Server::forget(tls::Stream& stream) {
  setBusy(stream, false);
  sockets_.erase(&stream);
  // Posted, not called: the session calling this still touches its socket afterwards.
  if (draining_ && sockets_.empty() && on_drained_)
    asio::post(ioc_, std::exchange(on_drained_, nullptr));
}

asio::awaitable<void> Server::acceptLoop() {
  while (!stopped_ && !draining_) {
    auto [ec, sock] = co_await acceptor_.async_accept(kTuple);
    // A connection accepted just before the listener closed goes with it (closed unanswered).
    if (stopped_ || draining_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      logAcceptError(ec);
      continue;
    }
    take(std::move(sock));
    // Then what else the kernel has queued, up to kAcceptBatch: one connection a pass of a busy
    // event loop (a gateway or an engine with thousands of streams) falls behind a burst of
    // thousands of new connections, and past the listen backlog the kernel drops their SYNs
    // (connect timeouts) and resets what it had half-accepted.
    for (int i = 1; i < kAcceptBatch && !stopped_ && !draining_; ++i) {
      tcp::socket more(ioc_);
      acceptor_.accept(more, ec);  // non-blocking (listen): would_block when none is queued
      if (ec) {
        // An error may belong to the connection it dequeued, which no later accept reports.
        logAcceptError(ec);
        break;
      }
      take(std::move(more));
    }
  }
}

void Server::take(tcp::socket sock) {
  beast::error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  auto slot = budget_->tryAcquire();
  if (!slot) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    if (const auto n = budget_->countRejected(monotonicSeconds()); n > 0)
      spdlog::warn(
          "connection limit {} reached: {} connection(s) answered 503 since the last report",
          budget_->limit(), n);
    // Past kMaxRefusing, or on TLS, `sock` closes unanswered as it goes out of scope.
    if (refusing_ < kMaxRefusing && !options_.tls) {
      ++refusing_;
      asio::co_spawn(ioc_, refuse(std::move(sock)), asio::detached);
    }
    return;
  }
  asio::co_spawn(ioc_, session(std::move(sock), next_conn_id_++, std::move(slot)), asio::detached);
}

// Answers a connection over the budget with 503 instead of closing it silently, so its client
// gets an error it can act on (retry elsewhere, later) rather than a reset. Its request is not
// read; the lingering close drains it so the answer is not lost to a reset.
asio::awaitable<void> Server::refuse(tcp::socket socket) {
  tls::Stream stream(std::move(socket));
  sockets_.emplace(&stream, false);
  std::string message = "the server is at its connection limit; retry later";
  co_await sendError(stream, Status::service_unavailable, std::move(message), "connection_limit");
  co_await lingeringClose(stream);
  forget(stream);
  beast::error_code ec;
  stream.socket().close(ec);
  --refusing_;
}

asio::awaitable<void> Server::sendError(tls::Stream& stream, Status status, std::string message,
                                        std::string_view code) {
  const std::string body = openaiError(message, openaiErrorType(status), {}, code);
  std::string head;
  appendResponseHead(head, status, 11, options_.server_name, "application/json", {}, false,
                     body.size(), false);
  const std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
  stream.tcp().expires_after(asDuration(options_.write_timeout_s));
  co_await stream.io([&](auto& s) { return asio::async_write(s, bufs, kTuple); });
  stream.tcp().expires_never();
}

// After an early error response, reads and discards what the client is still sending (bounded in
// bytes and time) before closing, as nginx's lingering_close does: closing with unread data
// makes the kernel send a reset, and the client would lose the response.
asio::awaitable<void> Server::lingeringClose(tls::Stream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.tcp().expires_after(std::chrono::seconds(2));
  std::size_t budget = 64 << 20;
  thread_local char scratch[16384];  // discarded bytes; one buffer per worker thread
  while (budget > 0) {
    auto [rec, n] = co_await stream.io(
        [&](auto& s) { return s.async_read_some(asio::buffer(scratch), kTuple); });
    if (rec) break;
    budget -= std::min(budget, n);
  }
}

asio::awaitable<bool> Server::handshake(tls::Stream& stream, std::uint64_t id) {
  auto& t = *options_.tls;
  stream.startTls(t.current());
  stream.tcp().expires_after(asDuration(options_.handshake_timeout_s));
  auto [hec] = co_await stream.tls().async_handshake(tls::ssl::stream_base::server, kTuple);
  const auto ec = stream.classify(hec);
  stream.tcp().expires_never();
  if (!ec) {
    t.countHandshake();
    co_return true;
  }
  const auto why = tls::classifyHandshakeError(ec);
  t.countFailure(why);
  // A scan or a flood of bad clients must not flood the log: one line a second, with a count.
  ++tls_unlogged_;
  if (const double now = monotonicSeconds(); now >= next_tls_log_) {
    next_tls_log_ = now + 1;
    spdlog::info("[c{}] TLS handshake from {} failed ({}): {}{}", id, stream.remoteAddress(),
                 tls::ServerTls::failureName(why), ec.message(),
                 tls_unlogged_ > 1 ? " (" + std::to_string(tls_unlogged_ - 1) + " more since)"
                                   : std::string());
    tls_unlogged_ = 0;
  }
  co_return false;
}

asio::awaitable<bool> Server::readRequest(tls::Stream& stream, beast::flat_buffer& buffer,
                                          Request& out) {
  RequestReader parser(options_.max_header_bytes, options_.max_body_bytes);
  // One deadline for the whole request, header and body.
  stream.tcp().expires_after(asDuration(options_.idle_timeout_s));
  auto ec = co_await readMessage(stream, buffer, parser, true);
  std::optional<Refusal> refusal;
  if (!ec) {
    // From a complete head on, the request is in progress: a drain lets it finish.
    setBusy(stream, true);
    refusal = checkHead(parser.get());
    if (!refusal) ec = co_await readMessage(stream, buffer, parser, false);
  }
  if (!refusal && ec) refusal = readFailure(ec, options_.max_body_bytes);
  if (refusal) {
    // An early error: answered, then a lingering close (the client may still be sending).
    co_await sendError(stream, refusal->status, std::move(refusal->message));
    co_await lingeringClose(stream);
    co_return false;
  }
  if (ec) co_return false;  // EOF, timeout, reset: just close
  stream.tcp().expires_never();
  out = parser.release();
  co_return true;
}

// `slot` is held, in the coroutine's frame, until the session ends.
namespace {

// A 500 for a handler that threw or did not answer. A coroutine of its own: the temporaries of
// building the answer would otherwise sit in the frame of every session.
asio::awaitable<void> respondInternalError(Exchange& ex, std::string_view message) {
  co_await ex.respond(Status::internal_server_error, openaiError(message, "server_error"));
}

}  // namespace

asio::awaitable<void> Server::session(tcp::socket socket, std::uint64_t id,
                                      [[maybe_unused]] ConnectionBudget::Slot slot) {
  tls::Stream stream(std::move(socket));
  sockets_.emplace(&stream, false);
  beast::flat_buffer buffer;
  if (options_.tls && !co_await handshake(stream, id)) {
    forget(stream);
    beast::error_code ec;
    stream.socket().close(ec);
    co_return;
  }

  try {
    // During a drain no further request is read: the connection closes after its exchange.
    for (std::uint64_t request_no = 1; !stopped_ && !draining_; ++request_no) {
      Request request;
      if (!co_await readRequest(stream, buffer, request)) break;
      // A connection inside an exchange (a stream, say, for minutes) holds no read buffer when
      // nothing was pipelined after its request: one allocation a request, against half a
      // kilobyte for every open stream.
      if (buffer.size() == 0) buffer.shrink_to_fit();
      Exchange ex(stream, std::move(request), id, options_, request_no, &draining_, &watches_);
      bool threw = false;
      try {
        co_await handler_(ex);
      } catch (const std::exception& e) {
        // co_await is not allowed inside a handler block: answer below.
        spdlog::error("{} handler failed: {}", ex.logId(), e.what());
        threw = true;
      }
      if (!ex.responded())
        co_await respondInternalError(ex, threw ? "internal error" : "handler did not respond");
      if (threw || ex.closeAfter()) break;
      setBusy(stream, false);
    }
  } catch (const std::exception& e) {
    spdlog::error("[c{}] session failed: {}", id, e.what());
  }
  forget(stream);
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
}

std::string openaiError(std::string_view message, std::string_view type, std::string_view param,
                        std::string_view code) {
  boost::json::object err;
  err["message"] = message;
  err["type"] = type;
  err["param"] = param.empty() ? boost::json::value(nullptr) : boost::json::value(param);
  err["code"] = code.empty() ? boost::json::value(nullptr) : boost::json::value(code);
  boost::json::object o;
  o["error"] = std::move(err);
  return boost::json::serialize(o);
}

std::string_view openaiErrorType(Status status) {
  switch (status) {
    case Status::unauthorized:
      return "authentication_error";
    case Status::forbidden:
      return "permission_error";
    case Status::not_found:
      return "not_found_error";
    case Status::too_many_requests:
      return "rate_limit_error";
    case Status::service_unavailable:
      return "service_unavailable";
    default:
      return static_cast<unsigned>(status) >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace tidegate::http

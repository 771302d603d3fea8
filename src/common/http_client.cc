#include "common/http_client.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <boost/container/small_vector.hpp>
#include <cerrno>
#include <charconv>
#include <limits>
#include <tuple>

#include "common/clock.h"
#include "common/http_wire.h"

namespace tidegate::http {

namespace bhttp = beast::http;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr double kNever = -std::numeric_limits<double>::infinity();
// The most a read of a response asks for (readSize: 512 bytes, or the rest of a body of known
// length).
constexpr std::size_t kReadSize = 16384;
// The most a connection's buffer keeps between responses: Beast's first read size.
constexpr std::size_t kIdleCapacity = 512;

std::string_view failureName(Failure f) {
  switch (f) {
    case Failure::kResolve:
      return "resolve";
    case Failure::kConnect:
      return "connect";
    case Failure::kTimeout:
      return "timeout";
    case Failure::kReset:
      return "reset";
    case Failure::kRead:
      return "read";
    case Failure::kWrite:
      return "write";
    case Failure::kProtocol:
      return "protocol";
    case Failure::kTooLarge:
      return "too_large";
  }
  return "protocol";
}

namespace {

bool isReset(const beast::error_code& ec) {
  // Over TLS, a peer that closes without close_notify (as servers commonly do) shows as a
  // truncated stream.
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == bhttp::error::end_of_stream ||
         ec == bhttp::error::partial_message || ec == asio::ssl::error::stream_truncated;
}

// Names a failed operation's error by kind.
ClientError describe(Failure op, const beast::error_code& ec, std::string_view what) {
  Failure kind = op;
  if (ec == beast::error::timeout) {
    kind = Failure::kTimeout;
  } else if (isReset(ec)) {
    kind = Failure::kReset;
  } else if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category()) {
    kind = Failure::kProtocol;
  }
  return {kind, std::string(what) + ": " + ec.message()};
}

std::chrono::milliseconds millis(double s) {
  return std::chrono::milliseconds(static_cast<long>(std::max(0.0, s) * 1000));
}

}  // namespace

KeepAlive KeepAlive::parse(bool persistent, std::string_view header) {
  KeepAlive k;
  k.persistent = persistent;
  while (!header.empty()) {
    const auto comma = header.find(',');
    auto item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    const auto name = item.substr(0, eq), value = item.substr(eq + 1);
    long n = 0;
    const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || p != value.data() + value.size() || n < 0) continue;
    if (beast::iequals(name, "timeout")) k.timeout_s = static_cast<double>(n);
    if (beast::iequals(name, "max")) k.max = n;
  }
  return k;
}

double KeepAlive::reuseUntil(double idle_since, double max_idle_s) const {
  if (!persistent || max == 0) return kNever;
  double idle = max_idle_s;
  if (timeout_s >= 0) {
    const double margin = timeout_s >= 2 ? 1.0 : timeout_s / 2;
    idle = std::min(idle, timeout_s - margin);
  }
  return idle <= 0 ? kNever : idle_since + idle;
}

std::string_view Response::header(std::string_view name) const {
  auto it = headers.find(name);
  if (it == headers.end()) return {};
  const auto v = it->value();
  return {v.data(), v.size()};
}

Client::Client(asio::any_io_executor ex, std::string host, std::uint16_t port,
               ClientOptions options)
    : ex_(std::move(ex)),
      host_(std::move(host)),
      port_(port),
      host_header_(host_ + ":" + std::to_string(port)),
      options_(options) {}

Client::~Client() = default;

double Client::now() const { return options_.clock ? options_.clock->now() : monotonicSeconds(); }

bool Client::reusable() const {
  return stream_.has_value() && !parser_ && !cancelled_ && now() < reuse_until_;
}

void Client::cancel() {
  cancelled_ = true;
  if (stream_) {
    beast::error_code ec;
    stream_->socket().close(ec);
  }
}

void Client::close() {
  parser_.reset();
  cancelled_ = false;
  reuse_until_ = kNever;
  if (stream_) {
    beast::error_code ec;
    stream_->socket().close(ec);
    stream_.reset();
  }
  buffer_.clear();
}

bool Client::peerClosedIdle() {
  // An idle connection has nothing to read; EOF or unexpected bytes mean it is unusable. One
  // non-blocking syscall, cheaper than a request that fails and must be sent again.
  char c;
  const ssize_t n = ::recv(stream_->socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

asio::awaitable<ClientResult<bool>> Client::connect(double timeout_s) {
  close();
  // An IP address (engines are mostly addressed by one) is not resolved: Asio resolves on a
  // thread of its own, which costs a thread hop and, for a burst of new connections, a queue of
  // resolutions held in memory.
  boost::container::small_vector<tcp::endpoint, 1> addresses;
  beast::error_code aec;
  if (const auto ip = asio::ip::make_address(host_, aec); !aec) {
    addresses.emplace_back(ip, port_);
  } else {
    tcp::resolver resolver(ex_);
    auto [rec, results] = co_await resolver.async_resolve(host_, std::to_string(port_), kTuple);
    if (rec) co_return ClientError{Failure::kResolve, "resolve " + host_ + ": " + rec.message()};
    for (const auto& entry : results) addresses.push_back(entry.endpoint());
  }
  stream_.emplace(ex_);
  stream_->tcp().expires_after(millis(timeout_s));
  // The addresses in turn, until one takes or the deadline passes (which closes the socket).
  beast::error_code ec = asio::error::host_not_found;
  for (const auto& address : addresses) {
    if (stream_->tcp().timedOut()) break;
    beast::error_code ignored;
    stream_->socket().close(ignored);
    std::tie(ec) = co_await stream_->socket().async_connect(address, kTuple);
    if (!ec) break;
  }
  ec = stream_->classify(ec);
  if (ec) {
    close();
    co_return ClientError{ec == beast::error::timeout ? Failure::kTimeout : Failure::kConnect,
                          "connect " + host_ + ":" + std::to_string(port_) + ": " + ec.message()};
  }
  beast::error_code ignored;
  stream_->socket().set_option(tcp::no_delay(true), ignored);
  if (options_.tls) {
    // The handshake is part of connecting: same deadline, and a failure (say, a certificate
    // that does not verify) is a connect failure, retried elsewhere like one.
    if (auto s = stream_->startClientTls(options_.tls, host_); !s) {
      close();
      co_return ClientError{Failure::kConnect, s.message()};
    }
    auto [handshake_ec] =
        co_await stream_->tls().async_handshake(tls::ssl::stream_base::client, kTuple);
    const auto hec = stream_->classify(handshake_ec);
    if (hec) {
      const auto why = stream_->verifyError();
      close();
      co_return ClientError{hec == beast::error::timeout ? Failure::kTimeout : Failure::kConnect,
                            "TLS handshake with " + host_ + ":" + std::to_string(port_) + ": " +
                                hec.message() + (why.empty() ? "" : ": " + why)};
    }
  }
  stream_->tcp().expires_never();  // connected: the exchange sets its own deadline
  co_return true;
}

asio::awaitable<ClientResult<Response>> Client::start(const ClientRequest& req) {
  resent_ = false;
  bool may_resend = false;
  auto r = co_await exchange(req, may_resend);
  if (r || !may_resend) co_return r;
  // The reused connection was closed by the server before it answered: send once more on a
  // fresh connection.
  close();
  resent_ = true;
  co_return co_await exchange(req, may_resend);
}

asio::awaitable<ClientResult<Response>> Client::exchange(const ClientRequest& req,
                                                         bool& may_resend) {
  parser_.reset();
  may_resend = false;
  // The EOF check costs a syscall, so it is made where a close is likely: after a streamed
  // (chunked) response — llama-server closes then — or after an idle second. A close it misses
  // is caught by the resend below.
  const double t = now();
  if (stream_ && (cancelled_ || t >= reuse_until_ ||
                  ((last_chunked_ || t - idle_since_ >= 1.0) && peerClosedIdle())))
    close();
  const bool reused = stream_.has_value();
  reuse_until_ = kNever;  // in use until the response is complete
  if (!stream_) {
    auto c = co_await connect(req.connect_timeout_s > 0 ? req.connect_timeout_s : req.timeout_s);
    if (!c) co_return c.error();
  }
  // The head and the body (from the caller's string, not copied: a retry sends it again) go
  // out in one gathered write.
  std::string head;
  appendRequestHead(head, req.method, req.target, host_header_, req.headers, req.body.size());
  const std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(req.body)};
  stream_->tcp().expires_after(millis(req.timeout_s));
  auto [wec, wn] =
      co_await stream_->io([&](auto& st) { return asio::async_write(st, bufs, kTuple); });
  if (wec) {
    auto e = describe(Failure::kWrite, stream_->classify(wec), "write");
    may_resend = reused && e.kind == Failure::kReset;
    close();
    co_return e;
  }
  parser_.emplace(req.keep_headers);
  const auto hec = co_await readMessage(*stream_, buffer_, *parser_, true);
  stream_->tcp().expires_never();  // until the next read: the caller reads the body with next()
  if (hec) {
    auto e = describe(Failure::kRead, hec, "read");
    // Nothing of a response arrived before the close: the server never took the request.
    may_resend = reused && e.kind == Failure::kReset && !parser_->got_some() &&
                 buffer_.size() == 0 && hec != bhttp::error::partial_message;
    close();
    co_return e;
  }
  Response resp;
  auto& p = *parser_;
  resp.status = p.status();
  resp.content_type = p.contentType();
  if (auto* fields = p.fields()) resp.headers = std::move(*fields);
  resp.keep_alive = p.keep_alive();
  last_chunked_ = p.chunked();
  keep_alive_ = KeepAlive::parse(resp.keep_alive, p.keepAliveHeader());
  co_return resp;
}

asio::awaitable<ClientResult<std::string_view>> Client::next(double idle_timeout_s) {
  if (!parser_) co_return ClientError{Failure::kProtocol, "next() without start()"};
  auto& p = *parser_;
  while (!p.is_done()) {
    if (buffer_.size() > 0) {
      // The parser stops after each piece of body; the piece stays in buffer_ until the next
      // read, so it is handed out without a copy.
      p.clearBody();
      beast::error_code ec;
      buffer_.consume(p.put(buffer_.data(), ec));
      if (ec && ec != bhttp::error::need_more) {
        auto e = describe(Failure::kRead, ec, "read");
        close();
        co_return e;
      }
      if (!p.body().empty()) co_return p.body();
      if (!ec) continue;
    }
    stream_->tcp().expires_after(millis(idle_timeout_s));
    const auto space = buffer_.prepare(readSize(buffer_, p, kReadSize));
    auto [ec, n] =
        co_await stream_->io([&](auto& st) { return st.async_read_some(space, kTuple); });
    stream_->tcp().expires_never();  // the time between reads is the caller's, not the read's
    buffer_.commit(n);
    if (ec == asio::error::eof && p.got_some()) {
      ec = {};
      p.put_eof(ec);  // the end of a body that runs to the close, or a cut message
    }
    if (ec) {
      auto e = describe(Failure::kRead, stream_->classify(ec), "read");
      close();
      co_return e;
    }
  }
  parser_.reset();
  // A long body grew the buffer (readSize): it is dropped, and the next response starts again
  // from 512 bytes. An allocation more for each long response, against kilobytes held by every
  // idle connection in a pool and every stream a connection carries next.
  if (buffer_.size() == 0 && buffer_.capacity() > kIdleCapacity) buffer_.shrink_to_fit();
  // Idle from now on, perhaps in a pool: no timer wait left pending (it would keep a one-shot
  // io_context running until it fired).
  if (stream_) stream_->tcp().disarm();
  idle_since_ = now();
  reuse_until_ = cancelled_ ? kNever : keep_alive_.reuseUntil(idle_since_, options_.max_idle_s);
  // Bytes after the response (the server spoke out of turn): the connection is not reusable.
  if (reuse_until_ == kNever || buffer_.size() > 0) close();
  co_return std::string_view{};
}

asio::awaitable<ClientResult<std::string>> Client::readAll(std::size_t limit, double idle_timeout_s,
                                                           double total_s) {
  const auto deadline = std::chrono::steady_clock::now() + millis(total_s);
  std::string body;
  if (parser_)
    if (const auto n = parser_->content_length(); n && *n <= limit) body.reserve(*n);
  while (true) {
    const double left =
        std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    auto piece = co_await next(std::max(0.001, std::min(idle_timeout_s, left)));
    if (!piece) co_return piece.error();
    if (piece->empty()) co_return body;
    if (body.size() + piece->size() > limit) {
      close();
      co_return ClientError{Failure::kTooLarge,
                            "response body exceeds " + std::to_string(limit) + " bytes"};
    }
    body.append(piece->data(), piece->size());
  }
}

asio::awaitable<ClientResult<Response>> Client::send(const ClientRequest& req, DataFn on_data) {
  // One deadline for the whole exchange: each read gets only the time that is left.
  const auto deadline = std::chrono::steady_clock::now() + millis(req.timeout_s);
  auto left = [&] {
    return std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
  };
  auto started = co_await start(req);
  if (!started) co_return started;
  Response resp = std::move(started).value();
  if (!on_data) {
    auto body = co_await readAll(req.max_body_bytes, left(), left());
    if (!body) co_return body.error();
    resp.body = std::move(body).value();
    co_return resp;
  }
  while (true) {
    auto piece = co_await next(std::max(left(), 0.001));
    if (!piece) co_return piece.error();
    if (piece->empty()) break;
    if (!on_data(*piece)) {
      close();
      break;
    }
  }
  co_return resp;
}

ClientResult<Response> fetch(const std::string& host, std::uint16_t port, const ClientRequest& req,
                             DataFn on_data, const ClientOptions& options) {
  asio::io_context ioc;
  Client client(ioc.get_executor(), host, port, options);
  std::optional<ClientResult<Response>> out;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        out.emplace(co_await client.send(req, std::move(on_data)));
      },
      [&](std::exception_ptr e) {
        if (e && !out) out.emplace(ClientError{Failure::kProtocol, "client failed"});
      });
  ioc.run();
  if (!out) return ClientError{Failure::kProtocol, "no response"};
  return std::move(*out);
}

}  // namespace tidegate::http

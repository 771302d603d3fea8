#pragma once
// An HTTP/1.1 client on Boost.Beast: one keep-alive connection, one request at a time, with an
// optional callback that receives the body as it arrives (for SSE streams).
//
// Ownership and threads: a Client belongs to the executor it was made with; one coroutine at a
// time may use it (cancel() excepted). Failures are returned as ClientError values with a kind,
// never thrown. A failed connection is closed; the next request reconnects.
//
// Connection reuse follows what the server said (RFC 9112 §9, and the Keep-Alive header that
// llama.cpp, Apache and others send): a connection is never reused after `Connection: close`, an
// HTTP/1.0 response without keep-alive, `Keep-Alive: max=0`, or once it has idled past the
// server's `Keep-Alive: timeout=N` (less a margin) or the client's own `max_idle_s`. Servers may
// still close an idle connection at any moment (llama-server closes after every stream), so when
// a request on a reused connection fails before a single response byte arrived, start() sends it
// once more on a fresh connection: the server cannot have processed it. That resend is not a
// retry (resent() tells it happened); a failure on a fresh connection is returned as is.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/fields.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_server.h"
#include "common/http_wire.h"
#include "common/result.h"

namespace tidegate {
class Clock;
}

namespace tidegate::http {

// Why a request failed, so callers decide (retry, count by kind) without parsing messages.
enum class Failure : std::uint8_t {
  kResolve,   // the host name did not resolve
  kConnect,   // the connection was refused or failed
  kTimeout,   // a deadline passed (connect, headers, or between body bytes)
  kReset,     // the peer closed or reset the connection
  kRead,      // another read error
  kWrite,     // another write error
  kProtocol,  // a malformed response
  kTooLarge,  // the response body exceeded the request's limit
};
// "resolve", "connect", "timeout", "reset", "read", "write", "protocol", "too_large": the
// values of the `kind` label of error metrics.
std::string_view failureName(Failure f);

struct ClientError {
  Failure kind = Failure::kProtocol;
  std::string message;  // for logs: what failed, where, and the system's words
};
template <class T>
using ClientResult = Result<T, ClientError>;

struct Response {
  unsigned status = 0;
  std::string content_type;
  boost::beast::http::fields headers;  // case-insensitive lookups; see keep_headers
  std::string body;                    // empty when a data callback consumed it
  bool keep_alive = false;

  std::string_view header(std::string_view name) const;
};

struct ClientRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  Headers headers;        // e.g. {"Content-Type","application/json"}; Host defaults
  double timeout_s = 30;  // default 30 s: send() for the whole exchange, start() to the headers
  double connect_timeout_s = 0;           // default 0: the same as timeout_s
  std::size_t max_body_bytes = 64 << 20;  // default 64 MiB: send() fails with kTooLarge past it
  // Default true: Response::headers holds every response header. False keeps only the status,
  // Content-Type and keep-alive (one allocation per header less, on the gateway's hot path).
  bool keep_headers = true;
};

// What a response allows for the connection that carried it: pure, so the rules are tested
// apart from sockets.
struct KeepAlive {
  bool persistent = false;  // HTTP/1.1 without `Connection: close`, or 1.0 with keep-alive
  double timeout_s = -1;    // Keep-Alive: timeout=N; -1 when not said
  long max = -1;            // Keep-Alive: max=N (requests the server will still take); -1: not said

  // Reads a Keep-Alive header value such as "timeout=5, max=100"; other parameters are ignored,
  // malformed numbers are treated as not said.
  static KeepAlive parse(bool persistent, std::string_view keep_alive_header);
  // The last moment an idle connection may carry a new request, for a connection idle since
  // `idle_since` with the client's own limit `max_idle_s`; -infinity when it must not be reused.
  // A server timeout is cut by a margin (1 s, or half of it when shorter than 2 s) because its
  // clock started when it sent the last byte, which may be before the client read it.
  double reuseUntil(double idle_since, double max_idle_s) const;
};

struct ClientOptions {
  double max_idle_s = 30;        // default 30 s: idle connections are not reused after this
  const Clock* clock = nullptr;  // default: the process's monotonic clock
  // Default none: plain HTTP. Set: HTTPS with this context (tls::makeClientContext); the
  // handshake is part of connecting, and the server's certificate is checked against the host
  // when the context verifies peers.
  std::shared_ptr<tls::ssl::context> tls;
};

// Receives body bytes as they arrive; return false to stop reading and close the connection.
using DataFn = std::function<bool(std::string_view)>;

class Client {
 public:
  Client(asio::any_io_executor ex, std::string host, std::uint16_t port,
         ClientOptions options = {});
  ~Client();

  // Sends `req` (connecting first if needed) and reads the response. With `on_data`, body bytes
  // go to the callback instead of Response::body.
  asio::awaitable<ClientResult<Response>> send(const ClientRequest& req, DataFn on_data);
  // Without a data callback (an overload: GCC 12 destroys a default-argument temporary of a
  // co_await expression twice).
  asio::awaitable<ClientResult<Response>> send(const ClientRequest& req) { return send(req, {}); }

  // Pull-style streaming: start() sends `req` and reads the response headers (Response::body
  // stays empty); then next() returns body bytes as they arrive, each call waiting at most
  // `idle_timeout_s`, and an empty view once the body is complete. The view (into the client's
  // read buffer) is valid until the next call. The caller controls the pace: nothing is read while
  // it does not call next().
  asio::awaitable<ClientResult<Response>> start(const ClientRequest& req);
  asio::awaitable<ClientResult<std::string_view>> next(double idle_timeout_s);
  // After start(): the rest of the body, at most `limit` bytes (kTooLarge past it), each read
  // within `idle_timeout_s` and all within `total_s`.
  asio::awaitable<ClientResult<std::string>> readAll(std::size_t limit, double idle_timeout_s,
                                                     double total_s);
  // True when the last start() sent the request a second time on a fresh connection because the
  // reused one had been closed by the server (see the header comment).
  bool resent() const { return resent_; }
  // True after a complete response that allows the connection to carry another request now.
  bool reusable() const;
  // When this idle connection stops being reusable (see KeepAlive::reuseUntil); for pools that
  // prune idle connections. -infinity if it is not reusable at all.
  double reuseUntil() const { return reuse_until_; }
  // Aborts whatever the client is doing, from outside its coroutine (e.g. the downstream client
  // left): closes the socket so pending operations complete with an error; the coroutine that
  // owns the client then sees the failure and cleans up. Unlike close(), destroys nothing in use.
  void cancel();
  const std::string& host() const { return host_; }
  std::uint16_t port() const { return port_; }
  // Closes the connection. Only the coroutine using the client may call it.
  void close();

 private:
  asio::awaitable<ClientResult<bool>> connect(double timeout_s);
  // One attempt of start() on the current (or a new) connection.
  asio::awaitable<ClientResult<Response>> exchange(const ClientRequest& req, bool& may_resend);
  // The server closed (or wrote to) the idle connection: it cannot carry a request.
  bool peerClosedIdle();
  double now() const;

  asio::any_io_executor ex_;
  std::string host_;
  std::uint16_t port_;
  std::string host_header_;  // "host:port", the Host of every request
  ClientOptions options_;
  std::optional<tls::Stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<ResponseParser> parser_;  // set between start() and the end of the body
  KeepAlive keep_alive_;
  double reuse_until_ = 0;  // see reuseUntil()
  bool cancelled_ = false;  // cancel() closed the socket: never reuse; the next start() reconnects
  bool resent_ = false;
  bool last_chunked_ = false;  // the last response was chunked (a stream)
  double idle_since_ = 0;      // when the last response completed
};

// Blocking one-shot request on a private io_context: for tests and CLI tools, not hot paths.
ClientResult<Response> fetch(const std::string& host, std::uint16_t port, const ClientRequest& req,
                             DataFn on_data = {}, const ClientOptions& options = {});

}  // namespace tidegate::http

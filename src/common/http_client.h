#pragma once
// An HTTP/1.1 client on Boost.Beast: one keep-alive connection, one request at a time, with an
// optional callback that receives the body as it arrives (for SSE streams).
//
// Ownership and threads: a Client belongs to the executor it was made with; one coroutine at a
// time may use it. Failures are returned as Error values, never thrown; the message starts with
// the kind of failure and a colon — `resolve:`, `connect:`, `timeout:`, `reset:` (the peer closed
// or reset the connection), `read:`/`write:` (other I/O), `protocol:` (malformed response) — so
// callers can count failures by kind (errorKind()). A failed connection is closed; the next
// request reconnects.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_server.h"
#include "common/result.h"

namespace tidegate::http {

struct Response {
  unsigned status = 0;
  std::map<std::string, std::string, std::less<>> headers;  // names lower-cased
  std::string body;  // empty when a data callback consumed it
  bool keep_alive = false;

  std::string_view header(std::string_view name) const;
};

struct ClientRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  Headers headers;        // e.g. {"Content-Type","application/json"}; Host defaults
  double timeout_s = 30;  // default 30 s: send() for the whole exchange, start() to the headers
  double connect_timeout_s = 0;  // default 0: the same as timeout_s
};

// Receives body bytes as they arrive; return false to stop reading and close the connection.
using DataFn = std::function<bool(std::string_view)>;

class Client {
 public:
  Client(asio::any_io_executor ex, std::string host, std::uint16_t port);
  ~Client();

  // Sends `req` (connecting first if needed) and reads the response. With `on_data`, body bytes
  // go to the callback instead of Response::body.
  asio::awaitable<Result<Response>> send(const ClientRequest& req, DataFn on_data = {});

  // Pull-style streaming: start() sends `req` and reads the response headers (Response::body
  // stays empty); then next() returns body bytes as they arrive, each call waiting at most
  // `idle_timeout_s`, and an empty view once the body is complete. The view is valid until the
  // next call. The caller controls the pace: nothing is read while it does not call next().
  asio::awaitable<Result<Response>> start(const ClientRequest& req);
  asio::awaitable<Result<std::string_view>> next(double idle_timeout_s);
  // True after a complete response that allows the connection to be reused.
  bool reusable() const { return stream_.has_value() && !parser_ && keep_alive_ && !cancelled_; }
  // Aborts whatever the client is doing, from outside its coroutine (e.g. the downstream client
  // left): closes the socket so pending operations complete with an error; the coroutine that
  // owns the client then sees the failure and cleans up. Unlike close(), destroys nothing in use.
  void cancel();
  const std::string& host() const { return host_; }
  std::uint16_t port() const { return port_; }
  // Closes the connection. Only the coroutine using the client may call it.
  void close();

 private:
  asio::awaitable<tidegate::Status> connect(double timeout_s);

  asio::any_io_executor ex_;
  std::string host_;
  std::uint16_t port_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  struct Parser;
  std::unique_ptr<Parser> parser_;  // set between start() and the end of the body
  bool keep_alive_ = false;
  bool cancelled_ = false;  // cancel() closed the socket: never reuse; the next start() reconnects
  char chunk_[16384];
};

// The kind of a failure returned by Client::send: the text before the first ':'.
std::string_view errorKind(std::string_view message);

// Blocking one-shot request on a private io_context: for tests and CLI tools, not hot paths.
Result<Response> fetch(const std::string& host, std::uint16_t port, const ClientRequest& req,
                       DataFn on_data = {});

}  // namespace tidegate::http

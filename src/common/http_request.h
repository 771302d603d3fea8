#pragma once
// How the HTTP server reads one request, apart from the socket: the request itself (Request), the
// reader that parses it from the bytes a client sends (RequestReader), the checks of a request's
// head before its body is read, and the answer to a failed read. Server::session (http_server.h)
// reads each request with these; unit tests and the fuzz target (fuzz/http_request_fuzz.cc) drive
// the same functions from a byte buffer. Pure; any thread.
//
// A session, for each request:
//   RequestReader reader(header_limit, body_limit);
//   read the head  -> then checkHead(reader.get()) may refuse it (400);
//   read the body  -> a failed read: readFailure(ec, body_limit) says how to answer.
// Every refusal is answered and the connection closes after it.
//
// The head is one string and its fields offsets into it (Beast's header map allocated a node for
// every field). The grammar and the framing are http_parse.h's: a request line `method SP target
// SP HTTP/1.0|1.1 CRLF` (the method a token, the target visible bytes), field lines, CRLF; the
// head at most the header limit (431). The body: Content-Length (digits; repeated, only with the
// same value), else chunked when Transfer-Encoding is present (checkHead refuses any coding but
// `chunked` alone before the body is read), else none; decoded, at most the body limit (413).
//
// Framing (RFC 9112): a request whose Transfer-Encoding is anything but exactly `chunked`, that
// has both Transfer-Encoding and Content-Length, or that is HTTP/1.0 with Transfer-Encoding is
// refused (a request smuggling guard). An absolute-form target (`POST http://host/v1/x HTTP/1.1`)
// is brought to origin-form (`/v1/x`) with the Host header set to the URI's authority; the
// asterisk-form (`*`) is accepted for OPTIONS only. An HTTP/1.1 request needs exactly one Host
// (§3.2: none is refused by checkHead, more than one by the reader); HTTP/1.0 needs none.

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_parse.h"

namespace tidegate::http {

namespace beast = boost::beast;
using Status = beast::http::status;

// One HTTP request as a handler sees it: its head (method, target, version, fields) and its
// whole body. Field names compare case-insensitively; a missing field reads as "".
class Request {
 public:
  beast::http::verb method() const { return method_; }
  std::string_view method_string() const { return view(method_span_); }
  std::string_view target() const { return view(target_span_); }
  void target(std::string_view t);
  unsigned version() const { return version_; }  // 10 or 11
  // Whether the connection may carry another request after this one: HTTP/1.1 unless
  // `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
  bool keep_alive() const { return keep_alive_; }
  std::string& body() { return body_; }
  const std::string& body() const { return body_; }

  // The first field of that name, or "".
  std::string_view operator[](std::string_view name) const;
  std::string_view operator[](beast::http::field f) const { return (*this)[to_string(f)]; }
  std::size_t count(std::string_view name) const;
  std::size_t count(beast::http::field f) const { return count(to_string(f)); }
  // Replaces every field of that name with one.
  void set(std::string_view name, std::string_view value);

  // Every field in order: name, value.
  std::size_t fieldCount() const { return fields_.size(); }
  std::string_view fieldName(std::size_t i) const { return view(fields_[i].name); }
  std::string_view fieldValue(std::size_t i) const { return view(fields_[i].value); }

 private:
  friend class RequestReader;
  struct Span {
    std::uint32_t at = 0, len = 0;
  };
  struct Field {
    Span name, value;
  };
  static std::string_view to_string(beast::http::field f) {
    const auto s = beast::http::to_string(f);
    return {s.data(), s.size()};
  }
  std::string_view view(Span s) const { return std::string_view(head_).substr(s.at, s.len); }
  Span append(std::string_view s);

  std::string head_;  // the head's bytes, and what target() and set() put in
  std::vector<Field> fields_;
  std::string body_;
  Span method_span_, target_span_;
  beast::http::verb method_ = beast::http::verb::unknown;
  unsigned version_ = 11;
  bool keep_alive_ = true;
};

// Parses one request from the bytes of a connection, fed as they arrive (MessageReader). Bytes
// after the request stay unconsumed (a pipelined next request); readFailure() answers its errors.
class RequestReader : public parse::MessageReader {
 public:
  RequestReader(std::size_t max_header_bytes, std::size_t max_body_bytes)
      : MessageReader(max_header_bytes, max_body_bytes) {}

  // Reads what it can of `in`; returns the bytes consumed. `ec` is need_more when the request is
  // not complete and more bytes are needed, or the error that ended it.
  std::size_t put(boost::asio::const_buffer in, beast::error_code& ec);

  Request& get() { return req_; }
  Request release() { return std::move(req_); }

 private:
  beast::error_code parseHead(std::string_view head);

  Request req_;
};

// An early answer: the status and message of an OpenAI-format error; the connection closes
// after it.
struct Refusal {
  Status status;
  std::string message;
};

// Checks a request whose head has been read, before its body is (the framing decides where the
// body ends): Host present in HTTP/1.1, the framing rules above, then the target brought to
// origin-form, in place.
// Returns a 400 refusal, or nullopt when the body may be read and the request handled.
std::optional<Refusal> checkHead(Request& req);

// How to answer a failed read of a request: 413 (the body limit), 431 (the header limit), 400 (a
// malformed request), or nullopt when the connection just closes (the end of the stream, a
// message cut short, a timeout, a reset).
std::optional<Refusal> readFailure(const beast::error_code& ec, std::size_t max_body_bytes);

}  // namespace tidegate::http

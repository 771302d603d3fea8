#pragma once
// How the HTTP client reads one response, apart from the socket (ResponseParser). Client
// (http_client.h) reads with it through readMessage (http_wire.h); unit tests and the fuzz target
// (fuzz/http_response_fuzz.cc) drive it from a byte buffer. Pure; any thread.

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/fields.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_parse.h"

namespace tidegate::http {

namespace beast = boost::beast;

// A response parser that keeps what a proxy needs — status, Content-Type, the Keep-Alive
// header and, when asked, every header — and hands body bytes (chunked or not) to the caller
// without copying: after each put(), body() is the body bytes that put() consumed (a view into
// the caller's buffer, valid until the buffer changes). put() stops after the head and after
// each piece of body, so one put() yields at most one piece. The framing is http_parse.h's: a
// 1xx, 204 or 304 response has no body; else a chunked Transfer-Encoding, a Content-Length, or
// the bytes up to the close (and then the connection is not kept alive). A response with both
// Transfer-Encoding and Content-Length, or with two different lengths, is refused (RFC 9112
// §6.3: a request smuggling sign). Its head is at most 64 KiB.
class ResponseParser : public parse::MessageReader {
 public:
  explicit ResponseParser(bool keep_headers)
      : MessageReader(64 << 10, SIZE_MAX),
        fields_(keep_headers ? std::make_unique<beast::http::fields>() : nullptr) {}

  // Reads what it can of `in`; returns the bytes consumed. `ec` is need_more when the response
  // is not complete and `in` holds nothing more of it, or the error that ended it.
  std::size_t put(boost::asio::const_buffer in, beast::error_code& ec);

  // Whether the connection may carry another request: HTTP/1.1 unless `Connection: close`,
  // HTTP/1.0 only with `Connection: keep-alive`, and never after a body that ran to the close.
  bool keep_alive() const { return keep_alive_; }

  unsigned status() const { return status_; }
  unsigned version() const { return version_; }
  const std::string& contentType() const { return content_type_; }
  const std::string& keepAliveHeader() const { return keep_alive_header_; }
  // Every header when made with keep_headers; else null.
  beast::http::fields* fields() { return fields_.get(); }
  // The body bytes the last put() consumed.
  std::string_view body() const { return body_piece_; }
  // Forgets the last piece of body; call before each put().
  void clearBody() { body_piece_ = {}; }

 private:
  beast::error_code parseHead(std::string_view head);

  // Every header, or null when not kept: a connection's parser lives as long as its response
  // (a stream, for minutes), and most never keep them.
  std::unique_ptr<beast::http::fields> fields_;
  unsigned status_ = 0;
  unsigned version_ = 11;
  std::string content_type_;
  std::string keep_alive_header_;
  std::string_view body_piece_;
  bool keep_alive_ = true;
};

}  // namespace tidegate::http

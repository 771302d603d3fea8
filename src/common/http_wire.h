#pragma once
// HTTP/1.1 on the wire, for the server (http_server.h) and the client (http_client.h), without
// Beast's composed operations.
//
// Why: on the gateway's request path Beast's async_read/async_write and its serializer were
// about half of the user-space instructions of a proxied request (a header field allocation per
// field written, a buffer sequence walked per byte range, a post() per message read, a composed
// operation per read and write). Here a message head is written into one string and sent with
// its body in one gathered write; a message is read with one loop of read_some + Beast's
// basic_parser::put (the parser itself is kept: it is fast and fuzzed). Deadlines stay the
// stream's (tls::Stream, expires_after), and TLS works through tls::Stream::io as before.
//
// Threads: everything here runs on the caller's strand; nothing is shared.

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/tls.h"

namespace tidegate::http {

namespace beast = boost::beast;
using WireHeaders = std::vector<std::pair<std::string, std::string>>;

// Appends a response head ("HTTP/1.1 200 OK\r\n...\r\n\r\n") to `out`: Server, Content-Type
// (omitted when empty), the extra headers, then the framing — `Content-Length: body_size` or,
// when `chunked`, `Transfer-Encoding: chunked` — and `Connection: close` when !keep_alive (for
// HTTP/1.0, `Connection: keep-alive` when keep_alive). Extra headers named Content-Type replace
// `content_type`; ones that would change the framing (Content-Length, Transfer-Encoding,
// Connection) are dropped: the framing is the server's. A header repeated in `extra` keeps its
// last value. CR and LF in names and values become spaces (no header injection). 1xx, 204 and
// 304 responses carry no Content-Length.
void appendResponseHead(std::string& out, beast::http::status status, unsigned version,
                        std::string_view server, std::string_view content_type,
                        const WireHeaders& extra, bool keep_alive, std::size_t body_size,
                        bool chunked);

// Appends a request head to `out`: the request line, Host (unless `headers` has one), the
// headers (Content-Length and Transfer-Encoding among them dropped), and Content-Length when the
// body is not empty or the method is POST, PUT or OPTIONS (Beast's prepare_payload rule).
void appendRequestHead(std::string& out, std::string_view method, std::string_view target,
                       std::string_view host, const WireHeaders& headers, std::size_t body_size);

// How many bytes the next read into `buffer` asks for, at most `max`: Beast's read_size (512
// bytes, or the buffer's free room) until the parser knows the body's length, then the rest of
// the body. Read 512 bytes at a time, a 2.7 KB response took 9 reads and as many passes of the
// event loop; a head and a stream's events still fit the small buffer a connection keeps.
template <bool isRequest>
std::size_t readSize(const beast::flat_buffer& buffer,
                     const beast::http::basic_parser<isRequest>& parser, std::size_t max) {
  const std::size_t want = beast::read_size(buffer, max);
  if (want == 0 || !parser.is_header_done()) return want;  // 0: the buffer is full
  const auto rest = parser.content_length_remaining();
  if (!rest || *rest <= buffer.size()) return want;
  const std::uint64_t room = std::min<std::uint64_t>(max, buffer.max_size() - buffer.size());
  return std::max(want, static_cast<std::size_t>(std::min(*rest - buffer.size(), room)));
}

// Reads from `stream` into `buffer`, feeding `parser`, until the parser's head is complete
// (`head_only`) or its message is, as Beast's http::async_read_header/async_read do and with
// their errors: http::error::end_of_stream when the peer closed before a byte of the message,
// partial_message when it closed in the middle, the parser's own errors, the stream's. Bytes
// past the message stay in `buffer`. Each read asks for at most `read_size` bytes.
template <bool isRequest>
boost::asio::awaitable<beast::error_code> readMessage(tls::Stream& stream,
                                                      beast::flat_buffer& buffer,
                                                      beast::http::basic_parser<isRequest>& parser,
                                                      bool head_only,
                                                      std::size_t read_size = 16384);

// A response parser that keeps what a proxy needs — status, Content-Type, the Keep-Alive
// header and, when asked, every header — and hands body bytes (chunked or not) to the caller
// without copying: after each put(), body() is the body bytes that put() consumed (a view into
// the caller's buffer, valid until the buffer changes). Not eager: put() stops after each head,
// chunk header and chunk body, so one put() yields at most one piece of body.
class ResponseParser : public beast::http::basic_parser<false> {
 public:
  explicit ResponseParser(bool keep_headers)
      : fields_(keep_headers ? std::make_unique<beast::http::fields>() : nullptr) {}

  unsigned status() const { return status_; }
  unsigned version() const { return version_; }
  const std::string& contentType() const { return content_type_; }
  const std::string& keepAliveHeader() const { return keep_alive_; }
  // Every header when made with keep_headers; else null.
  beast::http::fields* fields() { return fields_.get(); }
  // The body bytes the last put() consumed.
  std::string_view body() const { return body_; }
  // Forgets the last piece of body; call before each put().
  void clearBody() { body_ = {}; }

 private:
  void on_request_impl(beast::http::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int version, beast::error_code&) override {
    status_ = static_cast<unsigned>(code);
    version_ = static_cast<unsigned>(version);
  }
  void on_field_impl(beast::http::field name, beast::string_view name_string,
                     beast::string_view value, beast::error_code&) override;
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    body_ = {body.data(), body.size()};
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 beast::error_code&) override {
    body_ = {body.data(), body.size()};
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  // Every header, or null when not kept: a connection's parser lives as long as its response
  // (a stream, for minutes), and most never keep them.
  std::unique_ptr<beast::http::fields> fields_;
  unsigned status_ = 0;
  unsigned version_ = 11;
  std::string content_type_;
  std::string keep_alive_;
  std::string_view body_;
};

}  // namespace tidegate::http

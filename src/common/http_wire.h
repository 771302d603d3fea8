#pragma once
// HTTP/1.1 on the wire, for the server (http_server.h) and the client (http_client.h), without
// Beast's composed operations.
//
// Why: on the gateway's request path Beast's async_read/async_write and its serializer were
// about half of the user-space instructions of a proxied request (a header field allocation per
// field written, a buffer sequence walked per byte range, a post() per message read, a composed
// operation per read and write). Here a message head is written into one string and sent with
// its body in one gathered write; a message is read with one loop of read_some + a parser's put
// (http_parse.h's framing: RequestReader for requests, ResponseParser for responses).
// Deadlines stay the stream's (tls::Stream, expires_after), and TLS works through
// tls::Stream::io as before.
//
// Threads: everything here runs on the caller's strand; nothing is shared.

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
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

#include "common/http_response.h"
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
template <class Parser>
std::size_t readSize(const beast::flat_buffer& buffer, const Parser& parser, std::size_t max) {
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
// past the message stay in `buffer`. Each read asks for at most `read_size` bytes. `Parser` is
// ResponseParser or RequestReader (http_request.h).
template <class Parser>
boost::asio::awaitable<beast::error_code> readMessage(tls::Stream& stream,
                                                      beast::flat_buffer& buffer, Parser& parser,
                                                      bool head_only,
                                                      std::size_t read_size = 16384);

}  // namespace tidegate::http

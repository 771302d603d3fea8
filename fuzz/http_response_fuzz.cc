// Fuzzes how the HTTP client reads responses (common/http_response.h): ResponseParser over the
// bytes an upstream sends, as Client reads them (readMessage for the head, then next() for each
// piece of body). Invariants:
// - what a response comes to does not depend on how its bytes are split into reads (all at once,
//   or one byte at a time): the same status, framing, body and end;
// - a sized body is exactly as long as its Content-Length, and a response kept alive had its body
//   framed by a length or chunks, never by the close.

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/http_response.h"
#include "fuzz_check.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace http = tidegate::http;

namespace {

// What reading a response came to.
struct Outcome {
  unsigned status = 0;
  bool head = false, done = false, keep_alive = false, chunked = false;
  std::string content_type, body, end;
  bool operator==(const Outcome&) const = default;
};

// Reads one response from `bytes`, handing the parser at most `chunk` new bytes a read, then the
// end of the stream.
Outcome readResponse(std::string_view bytes, std::size_t chunk) {
  http::ResponseParser p(true);
  std::string buffer;
  Outcome o;
  beast::error_code ec;
  while (!p.is_done()) {
    if (!buffer.empty()) {
      p.clearBody();
      const auto used = p.put(asio::buffer(buffer.data(), buffer.size()), ec);
      o.body.append(p.body());  // a view into `buffer`: taken before the buffer changes
      buffer.erase(0, used);
      if (ec && ec != bhttp::error::need_more) break;
      const bool more = ec == bhttp::error::need_more;
      ec = {};
      if (!more) continue;
    }
    if (bytes.empty()) {
      if (p.got_some()) {
        p.put_eof(ec);
      } else {
        ec = bhttp::error::end_of_stream;
      }
      break;
    }
    const auto n = std::min(chunk, bytes.size());
    buffer.append(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  o.head = p.is_header_done();
  o.done = p.is_done();
  o.end = ec.message();
  if (o.head) {
    o.status = p.status();
    o.keep_alive = p.keep_alive();
    o.chunked = p.chunked();
    o.content_type = p.contentType();
    FUZZ_CHECK(p.status() <= 999);
    if (o.done && !ec && p.content_length() && !p.chunked() &&
        !(p.status() < 200 || p.status() == 204 || p.status() == 304))
      FUZZ_CHECK(o.body.size() == *p.content_length());
    if (o.done && !ec && o.keep_alive &&
        !(p.status() < 200 || p.status() == 204 || p.status() == 304))
      FUZZ_CHECK(p.chunked() || p.content_length());
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = tidegate::fuzz::asText(data, size);
  const auto whole = readResponse(bytes, bytes.size() + 1);
  const auto bytewise = readResponse(bytes, 1);
  if (whole == bytewise) return 0;
  std::fprintf(stderr, "at once:  status %u body %zu bytes, ended: %s\n", whole.status,
               whole.body.size(), whole.end.c_str());
  std::fprintf(stderr, "bytewise: status %u body %zu bytes, ended: %s\n", bytewise.status,
               bytewise.body.size(), bytewise.end.c_str());
  FUZZ_CHECK(whole == bytewise);
  return 0;
}

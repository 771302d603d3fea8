// Fuzzes how the HTTP server reads requests (common/http_request.h): Boost.Beast's request parser
// with the server's limits, then its RFC 9112 framing checks and target normalisation, over the
// bytes a client sends on one connection (several requests when it keeps the connection alive).
// The reads follow Server::session, synchronously over a byte buffer. Invariants:
// - a request that reaches a handler has a target in origin-form (or `*` for OPTIONS), at most
//   the body limit, a body as long as its Content-Length, and Transfer-Encoding only as one
//   `chunked` (with nothing else but list commas and blanks) in HTTP/1.1 without Content-Length;
// - a refused request is answered 400, 413 or 431 with a message;
// - the requests handled do not depend on how the bytes are split into reads (all at once, or
//   one byte at a time): the request boundaries are the same however the network delivers
//   them. (How a connection ends may: Beast checks a request line as soon as it has it whole in
//   one read, but after a partial read waits for the end of the head, so bytes that end before
//   the head does get a 400 in one case and a plain close in the other; and its header limit is
//   looser for a head read at once, see below.)

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/http_request.h"
#include "fuzz_check.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace http = tidegate::http;

namespace {

// A SyncReadStream over a byte buffer: reads hand out at most `chunk` bytes, then the end of
// the stream (the client closing its side).
class ByteStream {
 public:
  ByteStream(std::string_view bytes, std::size_t chunk) : bytes_(bytes), chunk_(chunk) {}

  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, beast::error_code& ec) {
    if (bytes_.empty()) {
      ec = asio::error::eof;
      return 0;
    }
    ec = {};
    const std::size_t n =
        asio::buffer_copy(buffers, asio::buffer(bytes_.data(), std::min(chunk_, bytes_.size())));
    bytes_.remove_prefix(n);
    return n;
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    beast::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

 private:
  std::string_view bytes_;
  std::size_t chunk_;
};

// Small limits, so that inputs of a few kilobytes reach them.
constexpr std::size_t kMaxHeaderBytes = 1024;
constexpr std::size_t kMaxBodyBytes = 1024;

// What a handler sees of a request: its method, target, Host and body.
std::string seenByHandler(const http::Request& req) {
  return std::string(req.method_string()) + " " + std::string(req.target()) +
         " host=" + std::string(req[bhttp::field::host]) + " body=" + req.body();
}

// A header value without the commas and blanks between its list's items.
std::string listItems(std::string_view value) {
  std::string out;
  for (char c : value)
    if (c != ',' && c != ' ' && c != '\t') out += c;
  return out;
}

void checkHandled(const http::RequestParser& parser, const http::Request& req) {
  const std::string_view target = req.target();
  FUZZ_CHECK(target.starts_with('/') || (target == "*" && req.method() == bhttp::verb::options));
  FUZZ_CHECK(req.body().size() <= kMaxBodyBytes);
  const bool has_te = req.count(bhttp::field::transfer_encoding) > 0;
  if (has_te) {
    FUZZ_CHECK(req.version() == 11);
    FUZZ_CHECK(req.count(bhttp::field::content_length) == 0);
    FUZZ_CHECK(req.count(bhttp::field::transfer_encoding) == 1);
    FUZZ_CHECK(beast::iequals(listItems(req[bhttp::field::transfer_encoding]), "chunked"));
    FUZZ_CHECK(parser.chunked());
  } else {
    FUZZ_CHECK(!parser.chunked());
    FUZZ_CHECK(req.body().size() == parser.content_length().value_or(0));
  }
}

// What a connection came to: the requests handled, in order, and whether it ended with a 431.
struct Connection {
  std::vector<std::string> handled;
  bool header_limit = false;
};

// Reads every request of one connection as Server::session does.
Connection readConnection(std::string_view bytes, std::size_t chunk) {
  ByteStream stream(bytes, chunk);
  beast::flat_buffer buffer;
  Connection c;
  while (true) {
    http::RequestParser parser;
    http::limitParser(parser, kMaxHeaderBytes, kMaxBodyBytes);
    beast::error_code ec;
    bhttp::read_header(stream, buffer, parser, ec);
    std::optional<http::Refusal> refusal;
    if (!ec) {
      refusal = http::checkHead(parser.get());
      if (!refusal) bhttp::read(stream, buffer, parser, ec);
    }
    if (!refusal && ec) refusal = http::readFailure(ec, kMaxBodyBytes);
    if (refusal) {
      const auto status = refusal->status;
      FUZZ_CHECK(status == http::Status::bad_request || status == http::Status::payload_too_large ||
                 status == http::Status::request_header_fields_too_large);
      FUZZ_CHECK(!refusal->message.empty());
      c.header_limit = status == http::Status::request_header_fields_too_large;
      break;  // answered, then the connection closes
    }
    if (ec) break;  // the end of the stream, or a request cut short: the connection closes
    checkHandled(parser, parser.get());
    const bool keep_alive = parser.get().keep_alive();
    c.handled.push_back(seenByHandler(parser.get()));
    if (!keep_alive) break;
  }
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = tidegate::fuzz::asText(data, size);
  const auto whole = readConnection(bytes, bytes.size() + 1);
  const auto bytewise = readConnection(bytes, 1);
  if (whole.handled == bytewise.handled) return 0;
  for (const auto& o : whole.handled) std::fprintf(stderr, "read at once:  %s\n", o.c_str());
  for (const auto& o : bytewise.handled) std::fprintf(stderr, "read bytewise: %s\n", o.c_str());
  // Beast's header limit: a head read in one piece is held to it in two parts, the request line
  // and then the fields (so up to about twice the limit passes); a head read in pieces is held
  // to it whole. So one reading may answer 431 where the other handles the request; the requests
  // before that one must be the same.
  const auto& fewer = whole.handled.size() < bytewise.handled.size() ? whole : bytewise;
  const auto& more = &fewer == &whole ? bytewise : whole;
  FUZZ_CHECK(fewer.header_limit);
  FUZZ_CHECK(std::equal(fewer.handled.begin(), fewer.handled.end(), more.handled.begin()));
  return 0;
}

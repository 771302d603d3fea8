// Fuzzes how the HTTP server reads requests (common/http_request.h): the request reader with the
// server's limits, then its RFC 9112 framing checks and target normalisation, over the bytes a
// client sends on one connection (several requests when it keeps the connection alive). The
// reads follow Server::session and readMessage, synchronously over a byte buffer. Invariants:
// - a request that reaches a handler has a target in origin-form (or `*` for OPTIONS), at most
//   the body limit, a body as long as its Content-Length, and Transfer-Encoding only as one
//   `chunked` (with nothing else but list commas and blanks) in HTTP/1.1 without Content-Length;
// - a refused request is answered 400, 413 or 431 with a message;
// - what a connection comes to does not depend on how the bytes are split into reads (all at
//   once, or one byte at a time): the same requests handled, and the same refusal or end.

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "common/http_request.h"
#include "fuzz_check.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace http = tidegate::http;

namespace {

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

void checkHandled(const http::RequestReader& parser, const http::Request& req) {
  const std::string_view target = req.target();
  FUZZ_CHECK(target.starts_with('/') || (target == "*" && req.method() == bhttp::verb::options));
  FUZZ_CHECK(req.body().size() <= kMaxBodyBytes);
  // RFC 9112 §3.2: an HTTP/1.1 request reaches a handler with exactly one Host.
  FUZZ_CHECK(req.version() != 11 || req.count(bhttp::field::host) == 1);
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

// What a connection came to: the requests handled, in order, and how it ended (a refusal's
// status, or the read's error).
struct Connection {
  std::vector<std::string> handled;
  std::string end;
  bool operator==(const Connection&) const = default;
};

// Reads every request of one connection as Server::session does, handing the reader at most
// `chunk` new bytes a read.
Connection readConnection(std::string_view bytes, std::size_t chunk) {
  std::string buffer;
  Connection c;
  while (true) {
    http::RequestReader parser(kMaxHeaderBytes, kMaxBodyBytes);
    // readMessage's loop, to the end of the head (`head`) or of the request.
    auto read = [&](bool head) {
      beast::error_code ec;
      while (!(head ? parser.is_header_done() : parser.is_done())) {
        if (!buffer.empty()) {
          buffer.erase(0, parser.put(asio::buffer(buffer.data(), buffer.size()), ec));
          if (!ec) continue;
          if (ec != bhttp::error::need_more) return ec;
          ec = {};
        }
        if (bytes.empty()) {
          parser.put_eof(ec);
          return ec;
        }
        const auto n = std::min(chunk, bytes.size());
        buffer.append(bytes.substr(0, n));
        bytes.remove_prefix(n);
      }
      return ec;
    };
    auto ec = read(true);
    std::optional<http::Refusal> refusal;
    if (!ec) {
      refusal = http::checkHead(parser.get());
      if (!refusal) ec = read(false);
    }
    if (!refusal && ec) refusal = http::readFailure(ec, kMaxBodyBytes);
    if (refusal) {
      const auto status = refusal->status;
      FUZZ_CHECK(status == http::Status::bad_request || status == http::Status::payload_too_large ||
                 status == http::Status::request_header_fields_too_large);
      FUZZ_CHECK(!refusal->message.empty());
      c.end = std::to_string(static_cast<int>(status)) + " " + refusal->message;
      break;  // answered, then the connection closes
    }
    if (ec) {  // the end of the stream, or a request cut short: the connection closes
      c.end = ec.message();
      break;
    }
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
  if (whole == bytewise) return 0;
  for (const auto& o : whole.handled) std::fprintf(stderr, "read at once:  %s\n", o.c_str());
  std::fprintf(stderr, "read at once ended:  %s\n", whole.end.c_str());
  for (const auto& o : bytewise.handled) std::fprintf(stderr, "read bytewise: %s\n", o.c_str());
  std::fprintf(stderr, "read bytewise ended: %s\n", bytewise.end.c_str());
  FUZZ_CHECK(whole == bytewise);
  return 0;
}

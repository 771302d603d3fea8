#include "common/http_response.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <cstdint>

namespace tidegate::http {

using namespace std::string_view_literals;
namespace bhttp = beast::http;

std::size_t ResponseParser::put(boost::asio::const_buffer in, beast::error_code& ec) {
  ec = {};
  const std::string_view bytes(static_cast<const char*>(in.data()), in.size());
  if (!header_done_) return putHead(bytes, ec, [this](std::string_view h) { return parseHead(h); });
  return body_.put(bytes, body_piece_, ec);
}

// The status line `HTTP/1.x SP 3DIGIT SP reason CRLF` (the reason may be empty, and its space
// missing with it), the fields, and the body's framing.
beast::error_code ResponseParser::parseHead(std::string_view h) {
  if (h.starts_with("HTTP/1.1 "sv)) {
    version_ = 11;
  } else if (h.starts_with("HTTP/1.0 "sv)) {
    version_ = 10;
  } else {
    return bhttp::error::bad_version;
  }
  const auto line_end = h.find("\r\n"sv);
  const auto code = h.substr(9, 3);
  if (code.size() < 3 ||
      !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return bhttp::error::bad_status;
  status_ = static_cast<unsigned>((code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0'));
  if (line_end != 12 && h[12] != ' ') return bhttp::error::bad_status;
  if (line_end > 13 && !parse::isFieldValue(h.substr(13, line_end - 13)))
    return bhttp::error::bad_reason;
  bool te = false, chunked = false, close = false, keep_alive = false, bad_length = false;
  const auto ec =
      parse::forEachField(h.substr(line_end + 2, h.size() - line_end - 4),
                          [&](std::string_view name, std::string_view value) {
                            switch (parse::classify(name)) {
                              case parse::Field::kContentType:
                                content_type_.assign(value);
                                break;
                              case parse::Field::kContentLength:
                                takeLength(value, bad_length);
                                break;
                              case parse::Field::kTransferEncoding: {
                                // Chunked when it is the last coding (§6.3); the body runs to the
                                // close otherwise.
                                te = true;
                                if (const auto last = parse::lastListElement(value); !last.empty())
                                  chunked = beast::iequals(last, "chunked");
                                break;
                              }
                              case parse::Field::kConnection:
                                parse::connectionTokens(value, close, keep_alive);
                                break;
                              case parse::Field::kKeepAlive:
                                keep_alive_header_.assign(value);
                                break;
                              default:
                                break;
                            }
                            if (fields_) fields_->insert(name, value);
                          });
  if (ec) return ec;
  if (bad_length) return bhttp::error::bad_content_length;
  if (te && content_length_) return bhttp::error::bad_transfer_encoding;
  keep_alive_ = parse::keepAlive(version_, close, keep_alive);
  // HTTP/1.0 has no Transfer-Encoding: the connection closes after it (RFC 9112 §6.1).
  if (te && version_ < 11) keep_alive_ = false;
  using Framing = parse::BodyReader::Framing;
  if (parse::bodiless(status_)) {
    body_.start(Framing::kNone);
  } else if (te && chunked) {
    body_.start(Framing::kChunked);
  } else if (!te && content_length_) {
    body_.start(Framing::kSized, *content_length_);
  } else {
    body_.start(Framing::kToEof);
    keep_alive_ = false;  // the close ends the body
  }
  return {};
}

}  // namespace tidegate::http

#include "common/http_request.h"

#include "common/http_parse.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <cctype>
#include <cstring>
#include <string_view>

namespace tidegate::http {

namespace bhttp = beast::http;

namespace {

// A request target's bytes: visible and obs-text (its URI grammar is the handler's business).
bool isTargetByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}

// RFC 9112 §6.1 and §6.3: the only transfer coding a request may carry here is `chunked`, alone
// (other codings are not supported, and with `chunked` not last the body length is unknown).
// Transfer-Encoding with Content-Length, or in HTTP/1.0, is faulty framing that a proxy in
// front may read differently: refused, as a request smuggling guard. Returns the reason to
// refuse, or "".
std::string_view framingError(const Request& req) {
  const auto te = req.count(bhttp::field::transfer_encoding);
  if (te == 0) return {};
  if (req.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
  // Only `chunked` is accepted, so a second field can only add nothing (an empty list) or
  // another coding: either way a proxy in front may read it otherwise.
  if (te > 1) return "Transfer-Encoding given more than once";
  if (req.count(bhttp::field::content_length) > 0)
    return "both Transfer-Encoding and Content-Length";
  int codings = 0;
  bool chunked = false;
  // A list of tokens, strictly: Beast's token_list stops at the first byte that is not a token's,
  // so `chunked\xff` would read as `chunked` here while a proxy in front may read it as an
  // unknown coding (and the body as the next request).
  const bhttp::opt_token_list list(req[bhttp::field::transfer_encoding]);
  if (!bhttp::validate_list(list)) return "malformed Transfer-Encoding";
  for (auto coding : list) {
    ++codings;
    chunked = beast::iequals(coding, "chunked");
  }
  if (codings != 1 || !chunked) return "unsupported Transfer-Encoding: only chunked is accepted";
  return {};
}

// host [":" port] of an http(s) URI, RFC 3986 §3.2 without userinfo (RFC 9110 §4.2.4: an error
// in http URIs). A reg-name or IPv4 host, or an IP literal in brackets; a non-empty host.
bool validAuthority(std::string_view a) {
  auto isRegNameChar = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-._~!$&'()*+,;=%").find(c) != std::string_view::npos;
  };
  std::string_view host = a, port;
  if (a.starts_with('[')) {
    const auto close = a.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : a.substr(1, close - 1))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    const auto rest = a.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return false;
    if (!rest.empty()) port = rest.substr(1);
  } else {
    if (const auto colon = a.find(':'); colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
    }
    if (host.empty()) return false;
    for (char c : host)
      if (!isRegNameChar(c)) return false;
  }
  if (port.size() > 5) return false;
  for (char c : port)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// RFC 9112 §3.2: brings the request target to origin-form, so handlers match on paths. An
// absolute-form target (`http://host:port/path?query`, §3.2.2) becomes `/path?query` ("/" when
// the path is empty), and its authority replaces the Host header, which an origin server must
// ignore then. The asterisk-form `*` stays, for OPTIONS only. Anything else (the authority-form
// of CONNECT, a relative path, another scheme) is refused. Returns the reason, or "".
std::string_view normaliseTarget(Request& req) {
  const std::string_view target = req.target();
  if (target.starts_with('/')) return {};
  if (target == "*") {
    if (req.method() == bhttp::verb::options) return {};
    return "the asterisk-form target is only for OPTIONS";
  }
  const auto sep = target.find("://");
  if (sep == std::string_view::npos)
    return "the request target is neither origin-form nor absolute-form";
  const auto scheme = target.substr(0, sep);
  if (!beast::iequals(scheme, "http") && !beast::iequals(scheme, "https"))
    return "the absolute-form target's scheme is not http or https";
  const auto rest = target.substr(sep + 3);
  const auto end = std::min(rest.find_first_of("/?#"), rest.size());
  if (!validAuthority(rest.substr(0, end))) return "bad authority in the absolute-form target";
  std::string authority(rest.substr(0, end));
  std::string origin(rest.substr(end));
  if (!origin.starts_with('/')) origin.insert(0, "/");
  req.set("Host", authority);
  req.target(origin);
  return {};
}

}  // namespace

Request::Span Request::append(std::string_view s) {
  const Span span{static_cast<std::uint32_t>(head_.size()), static_cast<std::uint32_t>(s.size())};
  head_.append(s);
  return span;
}

void Request::target(std::string_view t) {
  const std::string copy(t);  // `t` may be a view into head_, which appending may move
  target_span_ = append(copy);
}

std::string_view Request::operator[](std::string_view name) const {
  for (const auto& f : fields_)
    if (beast::iequals(view(f.name), name)) return view(f.value);
  return {};
}

std::size_t Request::count(std::string_view name) const {
  return static_cast<std::size_t>(
      std::count_if(fields_.begin(), fields_.end(),
                    [&](const Field& f) { return beast::iequals(view(f.name), name); }));
}

void Request::set(std::string_view name, std::string_view value) {
  std::erase_if(fields_, [&](const Field& f) { return beast::iequals(view(f.name), name); });
  // Copied first: `value` may be a view into head_, which appending may move.
  const std::string v(value);
  const Span n = append(name);
  fields_.push_back({n, append(v)});
}

std::size_t RequestReader::put(boost::asio::const_buffer in, beast::error_code& ec) {
  ec = {};
  const std::string_view bytes(static_cast<const char*>(in.data()), in.size());
  if (!header_done_) return putHead(bytes, ec, [this](std::string_view h) { return parseHead(h); });
  std::size_t used = 0;
  while (!body_.done()) {
    std::string_view piece;
    used += body_.put(bytes.substr(used), piece, ec);
    req_.body_.append(piece);
    if (ec) break;
  }
  return used;
}

// Parses a whole head (its request line to its blank line) into the request and chooses how the
// body is framed.
beast::error_code RequestReader::parseHead(std::string_view head) {
  Request& r = req_;
  r.head_.assign(head.data(), head.size() - 2);  // without the blank line
  const std::string_view h = r.head_;
  // The request line.
  const auto sp = h.find(' ');
  if (sp == std::string_view::npos || !parse::isToken(h.substr(0, sp)))
    return bhttp::error::bad_method;
  r.method_span_ = {0, static_cast<std::uint32_t>(sp)};
  r.method_ = bhttp::string_to_verb(h.substr(0, sp));
  std::size_t i = sp + 1;
  const std::size_t t = i;
  while (i < h.size() && isTargetByte(h[i])) ++i;
  if (i == t || i >= h.size() || h[i] != ' ') return bhttp::error::bad_target;
  r.target_span_ = {static_cast<std::uint32_t>(t), static_cast<std::uint32_t>(i - t)};
  ++i;
  const auto version = h.substr(i, 10);
  if (version == "HTTP/1.1\r\n") {
    r.version_ = 11;
  } else if (version == "HTTP/1.0\r\n") {
    r.version_ = 10;
  } else {
    return bhttp::error::bad_version;
  }
  i += 10;
  // The field lines: one for each line of the head but the request line and the blank line.
  r.fields_.reserve(head_.lines() - 2);
  bool has_te = false, close = false, keep_alive = false, bad_length = false;
  int hosts = 0;
  const auto ec =
      parse::forEachField(h.substr(i), [&](std::string_view name, std::string_view value) {
        const auto at = [&](std::string_view s) {
          return Request::Span{static_cast<std::uint32_t>(s.data() - h.data()),
                               static_cast<std::uint32_t>(s.size())};
        };
        r.fields_.push_back({at(name), at(value)});
        switch (parse::classify(name)) {
          case parse::Field::kContentLength:
            takeLength(value, bad_length);
            break;
          case parse::Field::kTransferEncoding:
            has_te = true;
            break;
          case parse::Field::kConnection:
            parse::connectionTokens(value, close, keep_alive);
            break;
          case parse::Field::kHost:
            ++hosts;
            break;
          default:
            break;
        }
      });
  if (ec) return ec;
  if (bad_length) return bhttp::error::bad_content_length;
  // RFC 9112 §3.2: more than one Host is a 400 (routing reads the first; a proxy in front may
  // have read another).
  if (hosts > 1) return bhttp::error::bad_field;
  r.keep_alive_ = parse::keepAlive(r.version_, close, keep_alive);
  using Framing = parse::BodyReader::Framing;
  if (has_te) {
    // checkHead refuses any coding but `chunked` alone, and Content-Length with it, before the
    // body is read.
    body_.start(Framing::kChunked);
  } else if (content_length_) {
    if (*content_length_ > body_.maxBody()) return bhttp::error::body_limit;
    r.body_.reserve(static_cast<std::size_t>(*content_length_));
    body_.start(Framing::kSized, *content_length_);
  } else {
    body_.start(Framing::kNone);
  }
  return {};
}

std::optional<Refusal> checkHead(Request& req) {
  // RFC 9112 §3.2: a server answers 400 to an HTTP/1.1 request without Host (more than one is
  // refused by the parser). An absolute-form target does not excuse it: the client must send both.
  if (req.version() == 11 && req.count(bhttp::field::host) == 0)
    return Refusal{Status::bad_request, "an HTTP/1.1 request must have a Host header"};
  auto refusal = framingError(req);
  if (refusal.empty()) refusal = normaliseTarget(req);
  if (refusal.empty()) return std::nullopt;
  return Refusal{Status::bad_request, std::string(refusal)};
}

std::optional<Refusal> readFailure(const beast::error_code& ec, std::size_t max_body_bytes) {
  if (ec == bhttp::error::body_limit)
    return Refusal{Status::payload_too_large,
                   "request body exceeds " + std::to_string(max_body_bytes) + " bytes"};
  if (ec == bhttp::error::header_limit)
    return Refusal{Status::request_header_fields_too_large, "request headers too large"};
  // Beast's own parse errors; not the end of the stream or a message cut short by it.
  if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
    return Refusal{Status::bad_request, "malformed HTTP request: " + ec.message()};
  return std::nullopt;
}

}  // namespace tidegate::http

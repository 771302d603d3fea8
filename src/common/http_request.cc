#include "common/http_request.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <cctype>
#include <string_view>

namespace tidegate::http {

namespace bhttp = beast::http;

namespace {

// RFC 9112 §6.1 and §6.3: the only transfer coding a request may carry here is `chunked`, alone
// (other codings are not supported, and with `chunked` not last the body length is unknown).
// Transfer-Encoding with Content-Length, or in HTTP/1.0, is faulty framing that a proxy in
// front may read differently: refused, as a request smuggling guard. Beast's parser already
// refuses some of these (Content-Length before Transfer-Encoding, Content-Length after chunked,
// a second Transfer-Encoding after chunked) but reads the rest as a request without a body,
// leaving its body to be taken for the next request. Returns the reason to refuse, or "".
std::string_view framingError(const Request& req) {
  auto range = req.equal_range(bhttp::field::transfer_encoding);
  if (range.first == range.second) return {};
  if (req.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
  if (req.count(bhttp::field::content_length) > 0)
    return "both Transfer-Encoding and Content-Length";
  int codings = 0;
  bool chunked = false;
  for (auto it = range.first; it != range.second; ++it) {
    // A list of tokens, strictly: Beast's token_list stops at the first byte that is not a
    // token's, so `chunked\xff` would read as `chunked` here while a proxy in front may read
    // it as an unknown coding (and the body as the next request).
    const bhttp::opt_token_list list(it->value());
    if (!bhttp::validate_list(list)) return "malformed Transfer-Encoding";
    for (auto coding : list) {
      ++codings;
      chunked = beast::iequals(coding, "chunked");
    }
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
  req.set(bhttp::field::host, authority);
  req.target(origin);
  return {};
}

}  // namespace

void limitParser(RequestParser& parser, std::size_t max_header_bytes, std::size_t max_body_bytes) {
  parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
  parser.body_limit(max_body_bytes);
}

std::optional<Refusal> checkHead(Request& req) {
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

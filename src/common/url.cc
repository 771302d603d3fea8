#include "common/url.h"

#include <cctype>
#include <charconv>

namespace tidegate {

Result<Target> parseUrl(std::string_view url) {
  const std::string where = "URL '" + std::string(url) + "'";
  if (url.starts_with("https://"))
    return Error{where + ": https is not supported; use a plain-HTTP endpoint"};
  if (!url.starts_with("http://")) return Error{where + ": expected http://HOST[:PORT][/PATH]"};
  url.remove_prefix(7);
  auto slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  Target t;
  if (slash != std::string_view::npos) {
    t.base_path = std::string(url.substr(slash));
    while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
  }
  std::string_view host = hostport;
  if (hostport.starts_with('[')) {  // [::1]:8080
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return Error{where + ": unterminated IPv6 address"};
    host = hostport.substr(1, close - 1);
    hostport.remove_prefix(close + 1);
    if (!hostport.empty() && hostport.front() != ':') return Error{where + ": bad port"};
    hostport = hostport.empty() ? hostport : hostport.substr(1);
  } else {
    auto colon = hostport.rfind(':');
    host = hostport.substr(0, colon);
    hostport = colon == std::string_view::npos ? std::string_view{} : hostport.substr(colon + 1);
  }
  if (host.empty()) return Error{where + ": no host"};
  t.host = std::string(host);
  if (!hostport.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(hostport.data(), hostport.data() + hostport.size(), port);
    if (ec != std::errc() || p != hostport.data() + hostport.size() || port == 0 || port > 65535)
      return Error{where + ": bad port '" + std::string(hostport) + "'"};
    t.port = static_cast<std::uint16_t>(port);
  }
  return t;
}

std::string urlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string urlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() &&
               std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string queryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? "" : urlDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

}  // namespace tidegate

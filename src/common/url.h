#pragma once
// http:// URLs as flags and configuration give them: host, port and base path. Only plain HTTP:
// https is refused with a clear message.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace tidegate {

struct Target {
  std::string host;
  std::uint16_t port = 80;
  std::string base_path;  // "" or "/prefix", no trailing slash
};

// Parses "http://HOST[:PORT][/PATH]" (IPv6 hosts in brackets). Errors quote the URL.
Result<Target> parseUrl(std::string_view url);

// Percent-encodes `s` for a URL query value.
std::string urlEncode(std::string_view s);
// Decodes %XX and '+' (as a space); malformed escapes are kept as they are.
std::string urlDecode(std::string_view s);
// The decoded value of `name` in a query string "a=1&b=2" (without '?'); empty when absent.
std::string queryParam(std::string_view query, std::string_view name);

}  // namespace tidegate

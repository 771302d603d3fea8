#pragma once
// What the fuzz targets share. FUZZ_CHECK states an invariant: when it does not hold, the
// target prints it and aborts, and libFuzzer keeps the input as a crash (so does an exception
// that escapes a target: it ends in std::terminate).

#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: invariant does not hold: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

namespace tidegate::fuzz {

inline std::string_view asText(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The reference the DOM-free JSON scanners are held to: Boost.JSON, as lenient as the scanners
// mean to be (bytes inside strings are not checked as UTF-8, nesting deeper than Boost's default
// of 32) and strict in everything else. Duplicate keys: the last one wins, as in Boost.JSON,
// Python's json (vLLM) and nlohmann::json (llama.cpp).
inline boost::json::value parseReference(std::string_view text, boost::system::error_code& ec) {
  boost::json::parse_options options;
  options.max_depth = 1000;
  options.allow_invalid_utf8 = true;
  return boost::json::parse(text, ec, {}, options);
}

// Equal JSON values: Boost.JSON's equality, except that NaN equals NaN (Boost.JSON reads
// 0e99999999 as NaN). Object members compare by name, in any order.
inline bool sameJson(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double() && std::isnan(a.get_double()) && std::isnan(b.get_double()))
    return true;
  if (a.is_array() && b.is_array()) {
    const auto &x = a.get_array(), &y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!sameJson(x[i], y[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    const auto &x = a.get_object(), &y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& [key, value] : x) {
      const auto* other = y.if_contains(key);
      if (!other || !sameJson(value, *other)) return false;
    }
    return true;
  }
  return a == b;
}

// True when the reference refused `text` for a limit of its own, not for its syntax: Boost.JSON
// refuses an exponent past what it represents (1e99999999999999999999), which RFC 8259 allows.
inline bool beyondReferenceLimits(const boost::system::error_code& ec) {
  return ec == boost::json::error::exponent_overflow;
}

// True when `text` escapes a UTF-16 surrogate (\uD800-\uDFFF). RFC 8259's grammar allows a lone
// one, which Boost.JSON refuses: texts with these are left out of comparisons with it.
inline bool escapesSurrogate(std::string_view text) {
  for (std::size_t i = 0; i + 3 < text.size(); ++i)
    if (text[i] == '\\' && text[i + 1] == 'u' && (text[i + 2] == 'd' || text[i + 2] == 'D') &&
        std::string_view("89abcdefABCDEF").find(text[i + 3]) != std::string_view::npos)
      return true;
  return false;
}

}  // namespace tidegate::fuzz

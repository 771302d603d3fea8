#pragma once
// JsonScanner: a minimal validating JSON scanner that builds no DOM. It walks a document token
// by token; positions index into the scanned text, so callers can splice byte ranges (the
// request body's `model`, a stream event's `usage`) without re-serialising anything. Used by the
// request-body scanner (body.h) and the relay's usage scanner (relay/usage_scanner.h).
// Bounded: nesting deeper than 64 is malformed. Not thread-safe; cheap to construct.

#include <boost/json/parse.hpp>
#include <cctype>
#include <string>
#include <string_view>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tidegate::gateway {

class JsonScanner {
 public:
  explicit JsonScanner(std::string_view s) : s_(s) {}

  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  char peek() {
    ws();
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  std::size_t pos() const { return i_; }
  bool atEnd() {
    ws();
    return i_ == s_.size();
  }

  // A string literal; `raw` gets its bytes between the quotes, escapes undecoded (object keys
  // compared against plain names need no decoding, and no allocation).
  bool rawString(std::string_view* raw) {
    ws();
    const std::size_t start = i_;
    if (!string(nullptr)) return false;
    *raw = s_.substr(start + 1, i_ - start - 2);
    return true;
  }

  // A string literal; `out` gets the decoded text if not null.
  bool string(std::string* out) {
    if (out) out->clear();
    return appendString(out);
  }

  // A string literal; its decoded text is appended to `out` if not null.
  bool appendString(std::string* out) {
    ws();
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    const std::size_t start = i_++;
    bool escaped = false;
    while ((i_ = plainRun(i_)) < s_.size()) {
      const char c = s_[i_++];
      if (c == '\\') {
        if (!escape()) return false;
        escaped = true;
      } else if (c == '"') {
        if (out) {
          if (!escaped) {
            out->append(s_.substr(start + 1, i_ - start - 2));
          } else {
            boost::system::error_code ec;
            auto v = boost::json::parse(s_.substr(start, i_ - start), ec);
            if (ec || !v.is_string()) return false;
            out->append(v.get_string());
          }
        }
        return true;
      } else {
        return false;  // a control byte
      }
    }
    return false;
  }

  // Walks an object whose '{' is next: `member(key, depth)` is called with each decoded key and
  // must consume its value (with `value(depth)` to skip it). False if the syntax is wrong or a
  // call returned false. Lets a caller read the few members it needs without building a DOM.
  template <typename F>
  bool members(int depth, F&& member) {
    if (depth > 64 || !eat('{')) return false;
    if (eat('}')) return true;
    std::string key;
    do {
      if (!string(&key) || !eat(':') || !member(std::string_view(key), depth + 1)) return false;
    } while (eat(','));
    return eat('}');
  }

  // Walks an array whose '[' is next: `element(depth)` must consume each element.
  template <typename F>
  bool elements(int depth, F&& element) {
    if (depth > 64 || !eat('[')) return false;
    if (eat(']')) return true;
    do {
      if (!element(depth + 1)) return false;
    } while (eat(','));
    return eat(']');
  }

  // The text from `from` to the current position.
  std::string_view since(std::size_t from) const { return s_.substr(from, i_ - from); }

  // Skips any value, validating its syntax. `depth` bounds nesting.
  bool value(int depth = 0) {
    if (depth > 64) return false;
    const char c = peek();
    if (c == '"') return string(nullptr);
    if (c == '{') {
      ++i_;
      if (eat('}')) return true;
      do {
        if (!string(nullptr) || !eat(':') || !value(depth + 1)) return false;
      } while (eat(','));
      return eat('}');
    }
    if (c == '[') {
      ++i_;
      if (eat(']')) return true;
      do {
        if (!value(depth + 1)) return false;
      } while (eat(','));
      return eat(']');
    }
    return literal();
  }

 private:
  // The rest of an escape after its backslash (RFC 8259 §7): one of "\/bfnrt, or u and four hex
  // digits. A lone surrogate (\uD800) is allowed, as the grammar allows it.
  bool escape() {
    if (i_ >= s_.size()) return false;
    const char e = s_[i_++];
    if (e != 'u') return std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos;
    for (int k = 0; k < 4; ++k, ++i_)
      if (i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_]))) return false;
    return true;
  }

  // The first byte at or after `i` that ends the plain run of a string: a quote, a backslash or
  // a control byte (< 0x20); the end of the text if none. Sixteen bytes a step with SSE2 (every
  // x86-64): string contents are most of the bytes of a request or a response, and a byte a step
  // made this scan a tenth of the gateway's instructions per request.
  std::size_t plainRun(std::size_t i) const {
    const char* p = s_.data();
    const std::size_t n = s_.size();
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      // Unsigned v >= 0x20 exactly when max(v, 0x20) == v.
      const int printable = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(v, space), v));
      const int special =
          _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
      if (const unsigned stop = static_cast<unsigned>(special | (~printable & 0xffff)); stop != 0)
        return i + static_cast<std::size_t>(__builtin_ctz(stop));
    }
#endif
    while (i < n && p[i] != '"' && p[i] != '\\' && static_cast<unsigned char>(p[i]) >= 0x20) ++i;
    return i;
  }

  // A byte of a number or of true/false/null (and of what only looks like one).
  static bool literalByte(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '+' || c == '.';
  }

  bool literal() {
    const std::size_t start = i_;
    while (i_ < s_.size() && literalByte(s_[i_])) ++i_;
    const auto lit = s_.substr(start, i_ - start);
    return lit == "true" || lit == "false" || lit == "null" || isNumber(lit);
  }

 public:
  // RFC 8259's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  static bool isNumber(std::string_view n) {
    std::size_t i = 0;
    auto digits = [&] {
      const std::size_t from = i;
      while (i < n.size() && n[i] >= '0' && n[i] <= '9') ++i;
      return i > from;
    };
    if (i < n.size() && n[i] == '-') ++i;
    if (i < n.size() && n[i] == '0') {
      ++i;
    } else if (!digits()) {
      return false;
    }
    if (i < n.size() && n[i] == '.' && (++i, !digits())) return false;
    if (i < n.size() && (n[i] == 'e' || n[i] == 'E')) {
      ++i;
      if (i < n.size() && (n[i] == '+' || n[i] == '-')) ++i;
      if (!digits()) return false;
    }
    return i == n.size();
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace tidegate::gateway

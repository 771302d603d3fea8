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
    ws();
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    const std::size_t start = i_++;
    bool escaped = false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '\\') {
        if (!escape()) return false;
        escaped = true;
      } else if (c == '"') {
        if (out) {
          if (!escaped) {
            out->assign(s_.substr(start + 1, i_ - start - 2));
          } else {
            boost::system::error_code ec;
            auto v = boost::json::parse(s_.substr(start, i_ - start), ec);
            if (ec || !v.is_string()) return false;
            out->assign(v.get_string());
          }
        }
        return true;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        return false;
      }
    }
    return false;
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

  bool literal() {
    const std::size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '.'))
      ++i_;
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

#include "gateway/body.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <vector>

#include "common/json_util.h"

namespace tidegate::gateway {
namespace {

// A minimal validating JSON scanner over the body; positions index into the body.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

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

  // A string literal; `out` gets the decoded text if not null.
  bool string(std::string* out) {
    ws();
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    const std::size_t start = i_++;
    bool escaped = false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '\\') {
        if (i_ >= s_.size()) return false;
        escaped = true;
        ++i_;
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
  bool literal() {
    const std::size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '.'))
      ++i_;
    const auto lit = s_.substr(start, i_ - start);
    if (lit == "true" || lit == "false" || lit == "null") return true;
    if (lit.empty()) return false;
    boost::system::error_code ec;
    auto v = boost::json::parse(lit, ec);
    return !ec && v.is_number();
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// Appends the text of message contents (strings or text parts) for prefix hashing.
void appendContents(const boost::json::value& messages, std::string& out) {
  if (!messages.is_array()) return;
  for (const auto& m : messages.get_array()) {
    const auto* o = m.if_object();
    if (!o) continue;
    const auto* c = o->if_contains("content");
    if (!c) continue;
    if (c->is_string()) {
      out += c->get_string();
      out += '\n';
    } else if (c->is_array()) {
      for (const auto& part : c->get_array())
        if (const auto* t = part.is_object() ? part.get_object().if_contains("text") : nullptr;
            t && t->is_string())
          out += t->get_string();
      out += '\n';
    }
  }
}

}  // namespace

std::optional<ScanError> scanRequest(std::string_view body, RequestFields& out) {
  Scanner s(body);
  if (s.peek() != '{') return ScanError{"request body must be a JSON object", {}};
  s.eat('{');
  bool has_model = false;
  if (!s.eat('}')) {
    do {
      std::string key;
      if (!s.string(&key) || !s.eat(':')) return ScanError{"malformed JSON in request body", {}};
      s.ws();
      const std::size_t vstart = s.pos();
      if (key == "model") {
        if (s.peek() != '"') {
          if (!s.value()) return ScanError{"malformed JSON in request body", {}};
          return ScanError{"model: expected a string", "model"};
        }
        if (!s.string(&out.model)) return ScanError{"malformed JSON in request body", {}};
        out.model_span = {vstart, s.pos()};
        has_model = true;
      } else if (key == "stream") {
        if (!s.value()) return ScanError{"malformed JSON in request body", {}};
        const auto v = body.substr(vstart, s.pos() - vstart);
        if (v == "true") {
          out.stream = true;
        } else if (v != "false" && v != "null") {
          return ScanError{"stream: expected a boolean", "stream"};
        }
      } else if (key == "max_tokens" || key == "max_completion_tokens") {
        if (!s.value()) return ScanError{"malformed JSON in request body", {}};
        const auto v = body.substr(vstart, s.pos() - vstart);
        long n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec == std::errc() && end == v.data() + v.size()) {
          out.max_tokens = n;
        } else if (v != "null") {
          return ScanError{std::string(key) + ": expected an integer", std::string(key)};
        }
      } else if (key == "stream_options" || key == "prompt" || key == "messages") {
        if (!s.value()) return ScanError{"malformed JSON in request body", {}};
        const auto raw = body.substr(vstart, s.pos() - vstart);
        boost::system::error_code ec;
        auto v = boost::json::parse(raw, ec);
        if (ec) return ScanError{"malformed JSON in request body", {}};
        if (key == "stream_options") {
          out.stream_options_span = {vstart, s.pos()};
          if (const auto* o = v.if_object()) {
            if (const auto* iu = o->if_contains("include_usage"); iu && iu->is_bool())
              out.include_usage = iu->get_bool();
            if (const auto* cu = o->if_contains("continuous_usage_stats"); cu && cu->is_bool())
              out.continuous_usage = cu->get_bool();
          }
        } else if (key == "prompt") {
          if (v.is_string()) out.prompt_text = v.get_string();
        } else {
          appendContents(v, out.prompt_text);
        }
      } else if (!s.value()) {
        return ScanError{"malformed JSON in request body", {}};
      }
    } while (s.eat(','));
    if (!s.eat('}')) return ScanError{"malformed JSON in request body", {}};
  }
  if (!s.atEnd()) return ScanError{"malformed JSON in request body: trailing data", {}};
  if (!has_model) return ScanError{"missing required field: model", "model"};
  return std::nullopt;
}

std::string rewriteBody(std::string_view body, const RequestFields& f, std::string_view model,
                        bool force_usage) {
  struct Edit {
    Span span;
    std::string text;
  };
  std::vector<Edit> edits;
  if (!model.empty() && model != f.model) edits.push_back({f.model_span, json::quoted(model)});
  std::string out;
  if (force_usage && f.stream && !(f.include_usage && f.continuous_usage)) {
    constexpr std::string_view kUsage = R"({"include_usage":true,"continuous_usage_stats":true})";
    if (f.stream_options_span.found()) {
      edits.push_back({f.stream_options_span, std::string(kUsage)});
    } else {
      // Insert before the final '}'.
      const auto close = body.rfind('}');
      edits.push_back({{close, close}, ",\"stream_options\":" + std::string(kUsage)});
    }
  }
  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.span.begin < b.span.begin; });
  out.reserve(body.size() + 64);
  std::size_t at = 0;
  for (const auto& e : edits) {
    out.append(body.substr(at, e.span.begin - at));
    out += e.text;
    at = e.span.end;
  }
  out.append(body.substr(at));
  return out;
}

}  // namespace tidegate::gateway

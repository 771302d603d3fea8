#include "gateway/body.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <string_view>
#include <vector>

#include "common/json_util.h"
#include "gateway/json_scan.h"

namespace tidegate::gateway {
namespace {

// Walks an array of objects (other elements are skipped) and, for each object's member `key`,
// lets `append` consume its value into `out`: a member given twice counts as its last value, as
// in most JSON readers, so an earlier one's text is taken back.
template <typename Append>
bool appendEach(JsonScanner& s, int depth, std::string_view key, std::string& out,
                Append&& append) {
  return s.elements(depth, [&](int d) {
    if (s.peek() != '{') return s.value(d);
    std::size_t at = std::string::npos;
    return s.members(d, [&](std::string_view k, int dd) {
      if (k != key) return s.value(dd);
      if (at != std::string::npos) out.resize(at);
      at = out.size();
      return append(dd);
    });
  });
}

// Appends the text of a message's content (a string, or an array of parts whose text parts
// count) and a newline; any other content is skipped. `depth` is the content's nesting depth.
bool appendContent(JsonScanner& s, int depth, std::string& out) {
  const char c = s.peek();
  if (c == '"') {
    if (!s.appendString(&out)) return false;
  } else if (c == '[') {
    const bool ok = appendEach(s, depth, "text", out, [&](int d) {
      return s.peek() == '"' ? s.appendString(&out) : s.value(d);
    });
    if (!ok) return false;
  } else {
    return s.value(depth);
  }
  out += '\n';
  return true;
}

// Appends the contents of each message (objects with a `content`) for prefix hashing; the walk
// validates the whole array, as skipping it would.
bool appendContents(JsonScanner& s, int depth, std::string& out) {
  if (s.peek() != '[') return s.value(depth);
  return appendEach(s, depth, "content", out, [&](int d) { return appendContent(s, d, out); });
}

// Reads `include_usage` and `continuous_usage_stats` when stream_options is an object.
bool scanStreamOptions(JsonScanner& s, RequestFields& out) {
  if (s.peek() != '{') return s.value(1);
  return s.members(1, [&](std::string_view key, int d) {
    bool* flag = key == "include_usage"            ? &out.include_usage
                 : key == "continuous_usage_stats" ? &out.continuous_usage
                                                   : nullptr;
    s.ws();
    const std::size_t from = s.pos();
    if (!s.value(d)) return false;
    if (flag) *flag = s.since(from) == "true";  // the last one counts, whatever its type
    return true;
  });
}

}  // namespace

std::optional<ScanError> scanRequest(std::string_view body, RequestFields& out) {
  JsonScanner s(body);
  if (s.peek() != '{') return ScanError{"request body must be a JSON object", {}};
  s.eat('{');
  bool has_model = false;
  // The members the gateway reads, seen once each at most: with two, which one counts is up to
  // each JSON reader (most take the last), so the gateway and the engine could read different
  // models or stream settings. Such a body is refused rather than guessed at.
  constexpr std::string_view kOnce[] = {"model", "stream", "stream_options", "max_tokens",
                                        "max_completion_tokens"};
  bool seen[std::size(kOnce)] = {};
  std::string messages_text;  // the contents of `messages`, when it is an array
  bool messages = false;
  if (!s.eat('}')) {
    do {
      std::string key;
      if (!s.string(&key) || !s.eat(':')) return ScanError{"malformed JSON in request body", {}};
      for (std::size_t k = 0; k < std::size(kOnce); ++k) {
        if (key != kOnce[k]) continue;
        if (seen[k]) return ScanError{key + ": given more than once", key};
        seen[k] = true;
      }
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
      } else if (key == "stream_options") {
        if (!scanStreamOptions(s, out)) return ScanError{"malformed JSON in request body", {}};
        out.stream_options_span = {vstart, s.pos()};
      } else if (key == "prompt") {
        out.prompt_text.clear();  // a later `prompt` replaces an earlier one
        const bool ok = s.peek() == '"' ? s.string(&out.prompt_text) : s.value(1);
        if (!ok) return ScanError{"malformed JSON in request body", {}};
      } else if (key == "messages") {
        messages_text.clear();  // a later `messages` replaces an earlier one
        messages = s.peek() == '[';
        if (!appendContents(s, 1, messages_text))
          return ScanError{"malformed JSON in request body", {}};
      } else if (!s.value()) {
        return ScanError{"malformed JSON in request body", {}};
      }
    } while (s.eat(','));
    if (!s.eat('}')) return ScanError{"malformed JSON in request body", {}};
  }
  if (!s.atEnd()) return ScanError{"malformed JSON in request body: trailing data", {}};
  // A chat request's text is its messages, whatever else the body holds.
  if (messages) out.prompt_text = std::move(messages_text);
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

#include "gateway/body.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <iterator>
#include <string_view>
#include <vector>

#include "common/json_util.h"
#include "gateway/json_scan.h"

namespace tidegate::gateway {
namespace {

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

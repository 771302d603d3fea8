// Fuzzes the request-body scanner and the model rewrite (gateway/body.h), which read every
// client's body. Invariants, with Boost.JSON as the reference (fuzz_check.h):
// - scanRequest accepts only a JSON object, and reads from it what the reference reads: the
//   model (a string, and its span holds it), stream, max_tokens and stream_options, and the
//   prompt text (a `prompt` string or the messages' text contents);
// - when the reference reads a JSON object, the scanner does not call it malformed;
// - rewriteBody gives JSON again whose scan has the new model and, when usage is forced on a
//   streamed request, stream_options asking for usage; every other member is unchanged.

#include <boost/json.hpp>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "gateway/body.h"

namespace bj = boost::json;
using tidegate::gateway::RequestFields;
using tidegate::gateway::rewriteBody;
using tidegate::gateway::scanRequest;

namespace {

bool isTrue(const bj::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_bool() && v->get_bool();
}

// The reference's view of what the gateway reads, checked against the scan.
void agree(const bj::object& o, const RequestFields& f, std::string_view body) {
  const auto* model = o.if_contains("model");
  FUZZ_CHECK(model && model->is_string() && model->get_string() == f.model);
  FUZZ_CHECK(f.model_span.found() && f.model_span.end <= body.size());
  boost::system::error_code ec;
  const auto span = tidegate::fuzz::parseReference(
      body.substr(f.model_span.begin, f.model_span.end - f.model_span.begin), ec);
  FUZZ_CHECK(!ec && span.is_string() && span.get_string() == f.model);
  FUZZ_CHECK(f.stream == isTrue(o, "stream"));
  const auto* options = o.if_contains("stream_options");
  const auto* options_object = options ? options->if_object() : nullptr;
  FUZZ_CHECK(f.include_usage == (options_object && isTrue(*options_object, "include_usage")));
  FUZZ_CHECK(f.continuous_usage ==
             (options_object && isTrue(*options_object, "continuous_usage_stats")));
  FUZZ_CHECK(f.stream_options_span.found() == (options != nullptr));
}

// The reference's prompt text: each message's content (a string, or the text of its text parts)
// and a newline when `messages` is an array, else a `prompt` string.
std::string promptText(const bj::object& o) {
  std::string out;
  const auto* messages = o.if_contains("messages");
  if (!messages || !messages->is_array()) {
    if (const auto* p = o.if_contains("prompt"); p && p->is_string()) out = p->get_string();
    return out;
  }
  for (const auto& m : messages->get_array()) {
    const auto* c = m.is_object() ? m.get_object().if_contains("content") : nullptr;
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
  return out;
}

// The members of `o` other than the ones a rewrite may change.
bj::object untouched(bj::object o) {
  o.erase("model");
  o.erase("stream_options");
  return o;
}

void checkRewrite(std::string_view body, const RequestFields& f, const bj::object& before,
                  std::string_view model, bool force_usage) {
  const std::string out = rewriteBody(body, f, model, force_usage);
  boost::system::error_code ec;
  const auto after = tidegate::fuzz::parseReference(out, ec);
  FUZZ_CHECK(!ec && after.is_object());
  RequestFields g;
  FUZZ_CHECK(!scanRequest(out, g));
  agree(after.get_object(), g, out);
  FUZZ_CHECK(g.model == (model.empty() ? f.model : model));
  FUZZ_CHECK(g.stream == f.stream);
  if (force_usage && f.stream) {
    FUZZ_CHECK(g.include_usage && g.continuous_usage);
  } else {
    FUZZ_CHECK(g.include_usage == f.include_usage && g.continuous_usage == f.continuous_usage);
  }
  FUZZ_CHECK(tidegate::fuzz::sameJson(untouched(after.get_object()), untouched(before)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body = tidegate::fuzz::asText(data, size);
  RequestFields f;
  const auto error = scanRequest(body, f);
  if (tidegate::fuzz::escapesSurrogate(body)) return 0;  // Boost.JSON refuses lone surrogates
  boost::system::error_code ec;
  const auto ref = tidegate::fuzz::parseReference(body, ec);
  if (error) {
    // A body the reference reads as an object is never called malformed (a wrong field type or
    // a missing model are other errors). Bytes that are not UTF-8 are checked by the scanner
    // only in strings it decodes (escapes), so those bodies are left out here.
    bj::parse_options strict;
    strict.max_depth = 64;
    boost::system::error_code strict_ec;
    const auto v = bj::parse(body, strict_ec, {}, strict);
    if (!strict_ec && v.is_object())
      FUZZ_CHECK(error->message.find("malformed") == std::string::npos);
    return 0;
  }
  if (tidegate::fuzz::beyondReferenceLimits(ec)) return 0;
  FUZZ_CHECK(!ec && ref.is_object());
  const auto& o = ref.get_object();
  agree(o, f, body);
  FUZZ_CHECK(f.prompt_text == promptText(o));
  const auto* max_tokens = o.if_contains("max_tokens");
  const auto* max_completion_tokens = o.if_contains("max_completion_tokens");
  if (!max_tokens || !max_completion_tokens) {  // with both, the later one in the body counts
    const auto* n = max_tokens ? max_tokens : max_completion_tokens;
    FUZZ_CHECK(f.max_tokens == (n && n->is_int64() ? n->get_int64() : -1));
  }
  for (const bool force : {false, true}) {
    checkRewrite(body, f, o, "", force);
    checkRewrite(body, f, o, "rewritten-\"model\"-\xC3\xA9", force);
  }
  return 0;
}

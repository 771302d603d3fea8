// Fuzzes the relay's usage scanner (gateway/relay/usage_scanner.h), which reads every engine
// response and stream event (engines are not trusted more than clients). Invariants, with
// Boost.JSON as the reference (fuzz_check.h):
// - scanObject calls `object` only a JSON object, and reads from it what the reference reads:
//   whether usage is an object, its token counts, an empty choices array;
// - the edits a client may get (usage removed, usage null) give JSON again, with every other
//   member unchanged; a client that asked for no usage gets none; a dropped event is a
//   usage-only one the client did not ask for.
// A member given twice counts as its last value, as in the reference.

#include <boost/json.hpp>
#include <climits>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "gateway/relay/usage_scanner.h"

namespace bj = boost::json;
using namespace tidegate::gateway::relay;
constexpr auto npos = std::string_view::npos;

namespace {

// The count the reference reads: a non-negative integer, else -1 (not reported).
long count(const bj::object& usage, std::string_view key) {
  const auto* v = usage.if_contains(key);
  if (!v) return -1;
  if (v->is_int64()) return v->get_int64() >= 0 ? static_cast<long>(v->get_int64()) : -1;
  if (v->is_uint64()) return v->get_uint64() <= LONG_MAX ? static_cast<long>(v->get_uint64()) : -1;
  return -1;
}

// How many top-level members of the JSON object `json` (valid JSON) are named `key`: a walk of
// its own over the text, not the scanner's.
int membersNamed(std::string_view json, std::string_view key) {
  int depth = 0, count = 0;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '"') {
      std::size_t end = i + 1;
      while (end < json.size() && json[end] != '"') end += json[end] == '\\' ? 2 : 1;
      std::size_t next = end + 1;
      while (next < json.size() && std::string_view(" \t\r\n").find(json[next]) != npos) ++next;
      if (depth == 1 && next < json.size() && json[next] == ':') {
        boost::system::error_code ec;
        const auto name = tidegate::fuzz::parseReference(json.substr(i, end + 1 - i), ec);
        if (!ec && name.is_string() && name.get_string() == key) ++count;
      }
      i = end;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return count;
}

bj::object without(bj::object o, std::string_view key) {
  o.erase(key);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view json = tidegate::fuzz::asText(data, size);
  const ObjectScan s = scanObject(json);
  for (const bool include : {false, true})
    for (const bool continuous : {false, true}) usageEdit(s, {include, continuous});
  if (!s.object || tidegate::fuzz::escapesSurrogate(json)) return 0;

  boost::system::error_code ec;
  const auto ref = tidegate::fuzz::parseReference(json, ec);
  if (tidegate::fuzz::beyondReferenceLimits(ec)) return 0;
  FUZZ_CHECK(!ec && ref.is_object());
  const auto& o = ref.get_object();
  FUZZ_CHECK(s.error == o.contains("error"));
  const auto* choices = o.if_contains("choices");
  FUZZ_CHECK(s.choices_empty == (choices && choices->is_array() && choices->get_array().empty()));
  const auto* usage = o.if_contains("usage");
  FUZZ_CHECK(s.usage_member.found() == (usage != nullptr));
  FUZZ_CHECK(s.usage_object == (usage && usage->is_object()));
  if (s.usage_object) {
    FUZZ_CHECK(s.usage.prompt == count(usage->get_object(), "prompt_tokens"));
    FUZZ_CHECK(s.usage.completion == count(usage->get_object(), "completion_tokens"));
  } else {
    FUZZ_CHECK(s.usage.prompt == -1 && s.usage.completion == -1);
  }

  for (const bool include : {false, true}) {
    for (const bool continuous : {false, true}) {
      const UsageEdit edit = usageEdit(s, {include, continuous});
      if (edit == UsageEdit::kDrop) {
        FUZZ_CHECK(!include && s.choices_empty && s.usage_object);
        continue;
      }
      const std::string out = applyUsageEdit(json, s, edit);
      const auto after = tidegate::fuzz::parseReference(out, ec);
      FUZZ_CHECK(!ec && after.is_object());
      FUZZ_CHECK(
          tidegate::fuzz::sameJson(without(after.get_object(), "usage"), without(o, "usage")));
      // A client that asked for no usage gets none (of an engine's object that gives usage twice,
      // the last one is removed: which one counts is up to each JSON reader).
      if (!include && membersNamed(json, "usage") <= 1) FUZZ_CHECK(!scanObject(out).usage_object);
      if (edit == UsageEdit::kNullUsage) FUZZ_CHECK(after.get_object().at("usage").is_null());
      if (edit == UsageEdit::kPass) FUZZ_CHECK(out == json);
    }
  }
  return 0;
}

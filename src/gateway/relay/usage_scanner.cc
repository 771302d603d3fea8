#include "gateway/relay/usage_scanner.h"

#include <charconv>
#include <string>

#include "gateway/json_scan.h"

namespace tidegate::gateway::relay {

namespace {

// Reads an integer value at the scanner's position; -1 if it is not a non-negative integer.
long integer(JsonScanner& s, bool& ok) {
  s.ws();
  const std::size_t from = s.pos();
  ok = s.value();
  if (!ok) return -1;
  const auto v = s.since(from);
  long n = -1;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && end == v.data() + v.size() && n >= 0 ? n : -1;
}

// Scans the usage object's members for the token counts.
bool usageObject(JsonScanner& s, Usage& u) {
  if (!s.eat('{')) return false;
  if (s.eat('}')) return true;
  do {
    std::string_view key;
    if (!s.rawString(&key) || !s.eat(':')) return false;
    bool ok = true;
    if (key == "prompt_tokens") {
      u.prompt = integer(s, ok);
    } else if (key == "completion_tokens") {
      u.completion = integer(s, ok);
    } else {
      ok = s.value(1);
    }
    if (!ok) return false;
  } while (s.eat(','));
  return s.eat('}');
}

// choices[0].delta: has a role and no (or empty) content.
bool deltaIsRoleOnly(JsonScanner& s) {
  bool role = false, content = false;
  if (!s.eat('{')) return false;
  if (s.eat('}')) return false;
  do {
    std::string_view key;
    if (!s.rawString(&key) || !s.eat(':')) return false;
    s.ws();
    const std::size_t from = s.pos();
    if (!s.value(3)) return false;
    const auto v = s.since(from);
    if (key == "role") role = true;
    if (key == "content" && v != "null" && v != "\"\"") content = true;
  } while (s.eat(','));
  return s.eat('}') && role && !content;
}

// Scans "choices": sets `empty` and, from its first element's delta, `role_only`.
bool choices(JsonScanner& s, bool& empty, bool& role_only) {
  if (s.peek() != '[') return s.value(1);
  s.eat('[');
  if (s.eat(']')) {
    empty = true;
    return true;
  }
  // The first choice: look for its delta.
  if (s.peek() == '{') {
    s.eat('{');
    if (!s.eat('}')) {
      do {
        std::string_view key;
        if (!s.rawString(&key) || !s.eat(':')) return false;
        if (key == "delta" && s.peek() == '{') {
          JsonScanner probe = s;
          role_only = deltaIsRoleOnly(probe);
        }
        if (!s.value(3)) return false;
      } while (s.eat(','));
      if (!s.eat('}')) return false;
    }
  } else if (!s.value(2)) {
    return false;
  }
  while (s.eat(','))
    if (!s.value(2)) return false;
  return s.eat(']');
}

}  // namespace

ObjectScan scanObject(std::string_view json) {
  ObjectScan out;
  JsonScanner s(json);
  if (!s.eat('{')) return out;
  std::size_t prev_end = s.pos();  // end of the previous member (or just after '{')
  bool first = true;
  if (!s.eat('}')) {
    do {
      s.ws();
      const std::size_t member = s.pos();
      std::string_view key;
      if (!s.rawString(&key) || !s.eat(':')) return out;
      s.ws();
      const std::size_t value = s.pos();
      bool ok = true;
      // A member given twice counts as its last value (as most JSON readers take it).
      if (key == "usage") {
        out.usage_object = false;
        out.usage = {};
        if (s.peek() == '{') {
          JsonScanner probe = s;
          out.usage_object = usageObject(probe, out.usage);
        }
        ok = s.value(1);
        out.usage_value = {value, s.pos()};
        // With its comma: the one before it, or for the first member the one after it.
        out.usage_member = {first ? member : prev_end, s.pos()};
        if (first) {
          JsonScanner after = s;
          if (after.eat(',')) {
            after.ws();
            out.usage_member.end = after.pos();
          }
        }
      } else if (key == "choices") {
        out.choices_empty = out.role_only = false;
        ok = choices(s, out.choices_empty, out.role_only);
      } else {
        if (key == "error") out.error = true;
        ok = s.value(1);
      }
      if (!ok) return out;
      prev_end = s.pos();
      first = false;
    } while (s.eat(','));
    if (!s.eat('}')) return out;
  }
  out.object = s.atEnd();
  if (!out.usage_object) out.usage = {};
  return out;
}

UsageEdit usageEdit(const ObjectScan& s, ClientUsage client) {
  if (!s.object) return UsageEdit::kPass;
  if (s.choices_empty && s.usage_object)
    return client.include ? UsageEdit::kPass : UsageEdit::kDrop;
  if (!s.usage_member.found()) return UsageEdit::kPass;
  if (!client.include) return UsageEdit::kDeleteUsage;
  if (s.usage_object && !client.continuous) return UsageEdit::kNullUsage;
  return UsageEdit::kPass;
}

std::string applyUsageEdit(std::string_view json, const ObjectScan& s, UsageEdit edit) {
  const Span span = edit == UsageEdit::kDeleteUsage ? s.usage_member
                    : edit == UsageEdit::kNullUsage ? s.usage_value
                                                    : Span{};
  if (!span.found()) return std::string(json);
  std::string out;
  out.reserve(json.size());
  out.append(json.substr(0, span.begin));
  if (edit == UsageEdit::kNullUsage) out += "null";
  out.append(json.substr(span.end));
  return out;
}

}  // namespace tidegate::gateway::relay

#include "support/kube_apiserver.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <chrono>
#include <ctime>
#include <deque>
#include <random>
#include <stdexcept>

#include "common/http_server.h"
#include "common/tls.h"
#include "common/url.h"

namespace tidegate::testing::kube {

namespace asio = boost::asio;

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------
namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 r(std::random_device{}());
  return r;
}

std::string rfc3339(std::chrono::system_clock::time_point tp) {
  const std::time_t t = std::chrono::system_clock::to_time_t(tp);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string newUid() {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  auto r = rng()();
  auto r2 = rng()();
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
    const auto bits = i < 16 ? (r >> (4 * i)) : (r2 >> (4 * (i - 16)));
    s += kHex[bits & 0xf];
  }
  return s;
}

// The alphabet and length of names made from generateName (apimachinery's
// util/rand.String: consonants and digits without look-alikes).
std::string randomSuffix(std::size_t n = 5) {
  static const std::string kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += kAlphabet[rng()() % kAlphabet.size()];
  return s;
}

const bj::object* objAt(const bj::object* o, std::string_view k) {
  if (!o) return nullptr;
  const auto* v = o->if_contains(k);
  return v ? v->if_object() : nullptr;
}

bj::object& objRef(bj::object& o, std::string_view k) {
  auto& v = o[k];
  if (!v.is_object()) v = bj::object();
  return v.as_object();
}

std::string strAt(const bj::object* o, std::string_view k) {
  if (!o) return {};
  const auto* v = o->if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// A value at a dotted path ("spec.nodeName") as the text a field selector compares: strings as
// they are, booleans "true"/"false", numbers in decimal, absent ""
std::string fieldText(const bj::object& obj, std::string_view path) {
  const bj::value* v = nullptr;
  const bj::object* o = &obj;
  while (o) {
    const auto dot = path.find('.');
    const auto part = path.substr(0, dot);
    v = o->if_contains(part);
    if (!v) return {};
    if (dot == std::string_view::npos) break;
    path.remove_prefix(dot + 1);
    o = v->if_object();
    if (!o) return {};
  }
  if (!v) return {};
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_bool()) return v->as_bool() ? "true" : "false";
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  return {};
}

std::optional<std::uint64_t> parseUint(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<std::int64_t> parseInt(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string jsonQuote(std::string_view s) { return bj::serialize(bj::value(bj::string(s))); }

// --- Status errors, worded as apimachinery's pkg/api/errors words them ---

ApiError make(int code, std::string reason, std::string message, bj::object details = {}) {
  return ApiError{code, std::move(reason), std::move(message), std::move(details)};
}

bj::object grDetails(const ResourceType& t, const std::string& name) {
  bj::object d;
  if (!name.empty()) d["name"] = name;
  d["group"] = t.group;
  d["kind"] = t.plural;
  return d;
}

ApiError notFound(const ResourceType& t, const std::string& name) {
  return make(404, "NotFound", t.qualified() + " " + jsonQuote(name) + " not found",
              grDetails(t, name));
}

ApiError alreadyExists(const ResourceType& t, const std::string& name) {
  return make(409, "AlreadyExists", t.qualified() + " " + jsonQuote(name) + " already exists",
              grDetails(t, name));
}

ApiError conflict(const ResourceType& t, const std::string& name,
                  const std::string& why =
                      "the object has been modified; please apply your changes to the latest "
                      "version and try again") {
  return make(
      409, "Conflict",
      "Operation cannot be fulfilled on " + t.qualified() + " " + jsonQuote(name) + ": " + why,
      grDetails(t, name));
}

ApiError badRequest(std::string message) { return make(400, "BadRequest", std::move(message)); }

// NewInvalid: `Kind.group "name" is invalid: field: detail`, details.kind the Kind.
ApiError invalid(const ResourceType& t, const std::string& name, const std::string& field,
                 const std::string& detail) {
  bj::object d;
  d["name"] = name;
  d["group"] = t.group;
  d["kind"] = t.kind;
  bj::object cause;
  cause["reason"] = "FieldValueInvalid";
  cause["message"] = detail;
  cause["field"] = field;
  d["causes"] = bj::array{cause};
  const std::string gk = t.group.empty() ? t.kind : t.kind + "." + t.group;
  return make(422, "Invalid", gk + " " + jsonQuote(name) + " is invalid: " + field + ": " + detail,
              std::move(d));
}

// What the real server answers a PATCH whose Content-Type it does not take (custom resources
// do not take strategic merge patches).
ApiError unsupportedMediaType() {
  return make(415, "UnsupportedMediaType",
              "the body of the request was in an unknown format - accepted media types include: "
              "application/json-patch+json, application/merge-patch+json, "
              "application/apply-patch+yaml");
}

ApiError notFoundPath() {
  return make(404, "NotFound", "the server could not find the requested resource");
}

ApiError methodNotSupported(const ResourceType& t, const std::string& verb) {
  return make(405, "MethodNotAllowed",
              verb + " is not supported on resources of kind " + jsonQuote(t.qualified()),
              grDetails(t, ""));
}

std::string defaultReason(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return "";
  }
}

// RFC 1123 subdomain, the rule for most object names.
bool isDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : s)
    if (!alnum(c) && c != '-' && c != '.') return false;
  return alnum(s.front()) && alnum(s.back());
}

const char* kSubdomainMessage =
    ": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

// A label name or value part: up to 63 of [A-Za-z0-9-_.], alphanumeric at both ends.
bool isLabelPart(std::string_view s, bool allow_empty) {
  if (s.empty()) return allow_empty;
  if (s.size() > 63) return false;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (char c : s)
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  return alnum(s.front()) && alnum(s.back());
}

bool isLabelKey(std::string_view k) {
  const auto slash = k.find('/');
  if (slash == std::string_view::npos) return isLabelPart(k, false);
  const auto prefix = k.substr(0, slash);
  std::string lower(prefix);
  return isDnsSubdomain(lower) && isLabelPart(k.substr(slash + 1), false);
}

}  // namespace

bj::object ApiError::status() const {
  bj::object s;
  s["kind"] = "Status";
  s["apiVersion"] = "v1";
  s["metadata"] = bj::object();
  s["status"] = "Failure";
  s["message"] = message;
  s["reason"] = reason;
  if (!details.empty()) s["details"] = details;
  s["code"] = code;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------
namespace {

// Tokens of the selector syntax (apimachinery labels.Lexer): identifiers, and the operators.
struct Lexer {
  std::string_view s;
  std::size_t i = 0;
  enum Kind {
    kEnd,
    kIdent,
    kComma,
    kOpen,
    kClose,
    kEq,
    kDoubleEq,
    kNotEq,
    kBang,
    kIn,
    kNotIn,
    kGt,
    kLt
  };
  struct Token {
    Kind kind;
    std::string text;
  };
  static bool special(char c) {
    return c == ' ' || c == '\t' || c == ',' || c == '(' || c == ')' || c == '!' || c == '=' ||
           c == '<' || c == '>';
  }
  Token next() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= s.size()) return {kEnd, ""};
    const char c = s[i];
    if (c == ',') return ++i, Token{kComma, ","};
    if (c == '(') return ++i, Token{kOpen, "("};
    if (c == ')') return ++i, Token{kClose, ")"};
    if (c == '>') return ++i, Token{kGt, ">"};
    if (c == '<') return ++i, Token{kLt, "<"};
    if (c == '!') {
      if (i + 1 < s.size() && s[i + 1] == '=') return i += 2, Token{kNotEq, "!="};
      return ++i, Token{kBang, "!"};
    }
    if (c == '=') {
      if (i + 1 < s.size() && s[i + 1] == '=') return i += 2, Token{kDoubleEq, "=="};
      return ++i, Token{kEq, "="};
    }
    const auto start = i;
    while (i < s.size() && !special(s[i])) ++i;
    std::string text(s.substr(start, i - start));
    if (text == "in") return {kIn, text};
    if (text == "notin") return {kNotIn, text};
    return {kIdent, text};
  }
  Token peek() {
    const auto save = i;
    auto t = next();
    i = save;
    return t;
  }
};

}  // namespace

Result<LabelSelector> LabelSelector::parse(std::string_view text) {
  LabelSelector sel;
  Lexer lx{text};
  auto fail = [&](const std::string& why) -> Result<LabelSelector> {
    return Error{"unable to parse requirement: " + why};
  };
  if (lx.peek().kind == Lexer::kEnd) return sel;
  for (;;) {
    Requirement r;
    auto t = lx.next();
    if (t.kind == Lexer::kBang) {
      t = lx.next();
      if (t.kind != Lexer::kIdent) return fail("found '" + t.text + "', expected: identifier");
      if (!isLabelKey(t.text)) return fail("invalid label key " + jsonQuote(t.text));
      r.key = t.text;
      r.op = "!";
    } else if (t.kind == Lexer::kIdent) {
      if (!isLabelKey(t.text)) return fail("invalid label key " + jsonQuote(t.text));
      r.key = t.text;
      auto op = lx.peek();
      if (op.kind == Lexer::kEnd || op.kind == Lexer::kComma) {
        r.op = "exists";
      } else {
        lx.next();
        if (op.kind == Lexer::kEq || op.kind == Lexer::kDoubleEq || op.kind == Lexer::kNotEq) {
          r.op = op.kind == Lexer::kNotEq ? "!=" : "=";
          auto v = lx.peek();
          std::string value;
          if (v.kind == Lexer::kIdent)
            value = lx.next().text;
          else if (v.kind != Lexer::kEnd && v.kind != Lexer::kComma)
            return fail("found '" + v.text + "', expected: identifier");
          if (!isLabelPart(value, true)) return fail("invalid label value " + jsonQuote(value));
          r.values = {value};
        } else if (op.kind == Lexer::kGt || op.kind == Lexer::kLt) {
          r.op = op.kind == Lexer::kGt ? "gt" : "lt";
          auto v = lx.next();
          if (v.kind != Lexer::kIdent || !parseInt(v.text))
            return fail("for 'Gt', 'Lt' operators, the value must be an integer");
          r.values = {v.text};
        } else if (op.kind == Lexer::kIn || op.kind == Lexer::kNotIn) {
          r.op = op.kind == Lexer::kIn ? "in" : "notin";
          if (lx.next().kind != Lexer::kOpen) return fail("found '" + op.text + "', expected: '('");
          for (;;) {
            auto v = lx.next();
            if (v.kind == Lexer::kClose && r.values.empty())
              return fail("for 'in', 'notin' operators, values set can't be empty");
            std::string value;
            if (v.kind == Lexer::kIdent) {
              value = v.text;
              v = lx.next();
            }
            if (!isLabelPart(value, true)) return fail("invalid label value " + jsonQuote(value));
            r.values.push_back(value);
            if (v.kind == Lexer::kClose) break;
            if (v.kind != Lexer::kComma)
              return fail("found '" + v.text + "', expected: ',' or ')'");
          }
        } else {
          return fail("found '" + op.text + "', expected: in, notin, =, ==, !=, gt, lt");
        }
      }
    } else {
      return fail("found '" + t.text + "', expected: !, identifier, or 'end of string'");
    }
    sel.reqs_.push_back(std::move(r));
    auto sep = lx.next();
    if (sep.kind == Lexer::kEnd) break;
    if (sep.kind != Lexer::kComma)
      return fail("found '" + sep.text + "', expected: ',' or 'end of string'");
  }
  return sel;
}

Result<LabelSelector> LabelSelector::fromObject(const bj::object& selector) {
  LabelSelector sel;
  if (const auto* ml = objAt(&selector, "matchLabels")) {
    for (const auto& [k, v] : *ml) {
      if (!v.is_string()) return Error{"matchLabels values must be strings"};
      sel.reqs_.push_back({std::string(k), "=", {std::string(v.as_string())}});
    }
  }
  if (const auto* me = selector.if_contains("matchExpressions"); me && me->is_array()) {
    for (const auto& e : me->as_array()) {
      const auto* o = e.if_object();
      if (!o) return Error{"matchExpressions entries must be objects"};
      Requirement r;
      r.key = strAt(o, "key");
      const auto op = strAt(o, "operator");
      if (op == "In")
        r.op = "in";
      else if (op == "NotIn")
        r.op = "notin";
      else if (op == "Exists")
        r.op = "exists";
      else if (op == "DoesNotExist")
        r.op = "!";
      else
        return Error{"\"" + op + "\" is not a valid label selector operator"};
      if (const auto* vals = o->if_contains("values"); vals && vals->is_array())
        for (const auto& v : vals->as_array())
          if (v.is_string()) r.values.emplace_back(v.as_string());
      sel.reqs_.push_back(std::move(r));
    }
  }
  return sel;
}

bool LabelSelector::matches(const bj::object* labels) const {
  for (const auto& r : reqs_) {
    const bj::value* v = labels ? labels->if_contains(r.key) : nullptr;
    const bool has = v && v->is_string();
    const std::string val = has ? std::string(v->as_string()) : std::string();
    const bool in = has && std::find(r.values.begin(), r.values.end(), val) != r.values.end();
    bool ok = false;
    if (r.op == "=" || r.op == "in")
      ok = in;
    else if (r.op == "!=" || r.op == "notin")
      ok = !in;
    else if (r.op == "exists")
      ok = has;
    else if (r.op == "!")
      ok = !has;
    else if (r.op == "gt" || r.op == "lt") {
      const auto a = has ? parseInt(val) : std::nullopt;
      const auto b = parseInt(r.values.at(0));
      ok = a && b && (r.op == "gt" ? *a > *b : *a < *b);
    }
    if (!ok) return false;
  }
  return true;
}

std::string LabelSelector::str() const {
  auto reqs = reqs_;
  std::stable_sort(reqs.begin(), reqs.end(),
                   [](const Requirement& a, const Requirement& b) { return a.key < b.key; });
  std::string out;
  for (const auto& r : reqs) {
    if (!out.empty()) out += ',';
    auto set = [&] {
      std::vector<std::string> v = r.values;
      std::sort(v.begin(), v.end());
      std::string s = "(";
      for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
      return s + ")";
    };
    if (r.op == "=")
      out += r.key + "=" + r.values.at(0);
    else if (r.op == "!=")
      out += r.key + "!=" + r.values.at(0);
    else if (r.op == "in")
      out += r.key + " in " + set();
    else if (r.op == "notin")
      out += r.key + " notin " + set();
    else if (r.op == "exists")
      out += r.key;
    else if (r.op == "!")
      out += "!" + r.key;
    else if (r.op == "gt")
      out += r.key + ">" + r.values.at(0);
    else if (r.op == "lt")
      out += r.key + "<" + r.values.at(0);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Field selectors: `f=v`, `f==v`, `f!=v`, comma-separated; the fields each kind supports.
// ---------------------------------------------------------------------------------------------
namespace {

struct FieldSelector {
  struct Term {
    std::string field;
    bool equal = true;
    std::string value;
  };
  std::vector<Term> terms;

  bool matches(const bj::object& obj) const {
    for (const auto& t : terms)
      if ((fieldText(obj, t.field) == t.value) != t.equal) return false;
    return true;
  }
};

bool supportedField(const ResourceType& t, const std::string& f) {
  if (f == "metadata.name" || f == "metadata.namespace") return true;
  if (t.group.empty() && t.plural == "pods")
    return f == "spec.nodeName" || f == "status.phase" || f == "spec.restartPolicy" ||
           f == "spec.schedulerName" || f == "spec.serviceAccountName" || f == "status.podIP" ||
           f == "status.nominatedNodeName" || f == "spec.hostNetwork";
  if (t.group.empty() && t.plural == "nodes") return f == "spec.unschedulable";
  if (t.group.empty() && t.plural == "secrets") return f == "type";
  if (t.group.empty() && t.plural == "namespaces") return f == "status.phase";
  if (t.group.empty() && t.plural == "events")
    return f.starts_with("involvedObject.") || f == "reason" || f == "type" || f == "source" ||
           f == "reportingComponent";
  return false;
}

Result<FieldSelector> parseFieldSelector(const ResourceType& t, std::string_view text) {
  FieldSelector sel;
  std::size_t pos = 0;
  while (pos <= text.size() && !text.empty()) {
    auto comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    const auto term = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (term.empty()) {
      if (comma >= text.size()) break;
      continue;
    }
    FieldSelector::Term ft;
    std::size_t op;
    if ((op = term.find("!=")) != std::string_view::npos) {
      ft.field = term.substr(0, op);
      ft.equal = false;
      ft.value = term.substr(op + 2);
    } else if ((op = term.find("==")) != std::string_view::npos) {
      ft.field = term.substr(0, op);
      ft.value = term.substr(op + 2);
    } else if ((op = term.find('=')) != std::string_view::npos) {
      ft.field = term.substr(0, op);
      ft.value = term.substr(op + 1);
    } else {
      return Error{"invalid selector: '" + std::string(text) + "'; can't understand '" +
                   std::string(term) + "'"};
    }
    if (!supportedField(t, ft.field)) return Error{"field label not supported: " + ft.field};
    sel.terms.push_back(std::move(ft));
    if (comma >= text.size()) break;
  }
  return sel;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Patches
// ---------------------------------------------------------------------------------------------
bj::value mergePatch(const bj::value& target, const bj::value& patch) {
  const auto* p = patch.if_object();
  if (!p) return patch;
  bj::object result = target.is_object() ? target.as_object() : bj::object();
  for (const auto& [k, v] : *p) {
    if (v.is_null()) {
      result.erase(k);
    } else {
      const auto* cur = result.if_contains(k);
      result[k] = mergePatch(cur ? *cur : bj::value(nullptr), v);
    }
  }
  return result;
}

namespace {

// The patchMergeKey of a list field, by its name; "" for lists replaced whole.
std::string mergeKeyFor(std::string_view field, const bj::array* target, const bj::array& patch) {
  if (field == "containers" || field == "initContainers" || field == "ephemeralContainers" ||
      field == "volumes" || field == "env" || field == "imagePullSecrets" ||
      field == "resourceClaims")
    return "name";
  if (field == "ports") {
    auto hasContainerPort = [](const bj::array* a) {
      if (!a) return false;
      for (const auto& e : *a)
        if (const auto* o = e.if_object(); o && o->contains("containerPort")) return true;
      return false;
    };
    return hasContainerPort(target) || hasContainerPort(&patch) ? "containerPort" : "port";
  }
  if (field == "volumeMounts") return "mountPath";
  if (field == "volumeDevices") return "devicePath";
  if (field == "conditions") return "type";
  if (field == "ownerReferences") return "uid";
  if (field == "hostAliases") return "ip";
  if (field == "topologySpreadConstraints") return "topologyKey";
  return "";
}

bool isDirective(std::string_view k) { return !k.empty() && k.front() == '$'; }

std::string directive(const bj::value& v) {
  const auto* o = v.if_object();
  return o ? strAt(o, "$patch") : std::string();
}

bj::value stripDirectives(const bj::value& v) {
  const auto* o = v.if_object();
  if (!o) return v;
  bj::object out;
  for (const auto& [k, x] : *o)
    if (!isDirective(k)) out[k] = stripDirectives(x);
  return out;
}

Result<bj::value> smp(const bj::value& target, const bj::value& patch);

Result<bj::value> smpList(std::string_view field, const bj::value& target, const bj::array& patch) {
  const bj::array* cur = target.if_array();
  // {"$patch": "replace"} as an element: the list becomes the other elements.
  for (const auto& e : patch)
    if (directive(e) == "replace") {
      bj::array out;
      for (const auto& x : patch)
        if (directive(x).empty()) out.push_back(stripDirectives(x));
      return bj::value(out);
    }
  if (field == "finalizers") {  // patchStrategy: merge on a list of strings: a set union
    bj::array out = cur ? *cur : bj::array();
    for (const auto& e : patch)
      if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
    return bj::value(out);
  }
  const std::string key = mergeKeyFor(field, cur, patch);
  if (key.empty()) return bj::value(patch);
  bj::array out = cur ? *cur : bj::array();
  for (const auto& e : patch) {
    const auto* eo = e.if_object();
    if (!eo)
      return Error{"strategic merge patch: list " + std::string(field) +
                   " must hold objects (merge key " + key + ")"};
    const bj::value* kv = eo->if_contains(key);
    auto it = out.end();
    if (kv)
      it = std::find_if(out.begin(), out.end(), [&](const bj::value& x) {
        const auto* xo = x.if_object();
        const auto* xk = xo ? xo->if_contains(key) : nullptr;
        return xk && *xk == *kv;
      });
    if (directive(e) == "delete") {
      if (it != out.end()) out.erase(it);
      continue;
    }
    if (it != out.end()) {
      auto merged = smp(*it, e);
      if (!merged) return merged;
      *it = std::move(*merged);
    } else {
      out.push_back(stripDirectives(e));
    }
  }
  return bj::value(out);
}

Result<bj::value> smp(const bj::value& target, const bj::value& patch) {
  const auto* p = patch.if_object();
  if (!p) return patch;
  const std::string d = directive(patch);
  if (d == "replace") return stripDirectives(patch);
  bj::object result = target.is_object() ? target.as_object() : bj::object();
  for (const auto& [k, v] : *p) {
    if (k.starts_with("$deleteFromPrimitiveList/")) {
      const auto field = k.substr(std::string_view("$deleteFromPrimitiveList/").size());
      auto* list = result.if_contains(field);
      if (list && list->is_array() && v.is_array()) {
        auto& a = list->as_array();
        for (const auto& x : v.as_array()) a.erase(std::remove(a.begin(), a.end(), x), a.end());
      }
    }
  }
  for (const auto& [k, v] : *p) {
    if (isDirective(k)) continue;  // $patch, $retainKeys, $setElementOrder/..., handled above
    if (v.is_null() || directive(v) == "delete") {
      result.erase(k);
      continue;
    }
    const auto* cur = result.if_contains(k);
    const bj::value current = cur ? *cur : bj::value(nullptr);
    Result<bj::value> merged = v.is_array() ? smpList(k, current, v.as_array()) : smp(current, v);
    if (!merged) return merged;
    result[k] = std::move(*merged);
  }
  return bj::value(result);
}

// RFC 6901 pointer tokens.
Result<std::vector<std::string>> pointer(std::string_view p) {
  std::vector<std::string> out;
  if (p.empty()) return out;
  if (p.front() != '/') return Error{"JSON pointer must start with '/': " + std::string(p)};
  std::size_t i = 1;
  for (;;) {
    const auto slash = p.find('/', i);
    std::string tok(
        p.substr(i, slash == std::string_view::npos ? std::string_view::npos : slash - i));
    std::string decoded;
    for (std::size_t j = 0; j < tok.size(); ++j) {
      if (tok[j] == '~' && j + 1 < tok.size() && (tok[j + 1] == '0' || tok[j + 1] == '1')) {
        decoded += tok[j + 1] == '0' ? '~' : '/';
        ++j;
      } else {
        decoded += tok[j];
      }
    }
    out.push_back(std::move(decoded));
    if (slash == std::string_view::npos) break;
    i = slash + 1;
  }
  return out;
}

std::optional<std::size_t> arrayIndex(const std::string& tok, std::size_t size, bool allow_end) {
  if (allow_end && tok == "-") return size;
  if (tok.empty() || (tok.size() > 1 && tok[0] == '0')) return std::nullopt;
  auto v = parseUint(tok);
  if (!v || *v > size || (!allow_end && *v == size)) return std::nullopt;
  return *v;
}

bj::value* walk(bj::value& root, const std::vector<std::string>& toks, std::size_t n) {
  bj::value* cur = &root;
  for (std::size_t i = 0; i < n; ++i) {
    if (auto* o = cur->if_object()) {
      cur = o->if_contains(toks[i]);
    } else if (auto* a = cur->if_array()) {
      auto idx = arrayIndex(toks[i], a->size(), false);
      cur = idx ? &(*a)[*idx] : nullptr;
    } else {
      cur = nullptr;
    }
    if (!cur) return nullptr;
  }
  return cur;
}

Status jpAdd(bj::value& root, const std::vector<std::string>& toks, bj::value v) {
  if (toks.empty()) {
    root = std::move(v);
    return {};
  }
  bj::value* parent = walk(root, toks, toks.size() - 1);
  if (!parent) return Error{"add operation does not apply: doc is missing path"};
  if (auto* o = parent->if_object()) {
    (*o)[toks.back()] = std::move(v);
    return {};
  }
  if (auto* a = parent->if_array()) {
    auto idx = arrayIndex(toks.back(), a->size(), true);
    if (!idx) return Error{"add operation does not apply: index out of bounds"};
    a->insert(a->begin() + static_cast<std::ptrdiff_t>(*idx), std::move(v));
    return {};
  }
  return Error{"add operation does not apply: parent is not a container"};
}

Result<bj::value> jpRemove(bj::value& root, const std::vector<std::string>& toks) {
  if (toks.empty()) return Error{"remove operation does not apply: cannot remove the root"};
  bj::value* parent = walk(root, toks, toks.size() - 1);
  if (auto* o = parent ? parent->if_object() : nullptr) {
    auto it = o->find(toks.back());
    if (it == o->end()) return Error{"remove operation does not apply: doc is missing path"};
    bj::value out = it->value();
    o->erase(it);
    return out;
  }
  if (auto* a = parent ? parent->if_array() : nullptr) {
    auto idx = arrayIndex(toks.back(), a->size(), false);
    if (!idx) return Error{"remove operation does not apply: index out of bounds"};
    bj::value out = (*a)[*idx];
    a->erase(a->begin() + static_cast<std::ptrdiff_t>(*idx));
    return out;
  }
  return Error{"remove operation does not apply: doc is missing path"};
}

}  // namespace

Result<bj::value> strategicMergePatch(const bj::value& target, const bj::value& patch) {
  if (!patch.is_object()) return Error{"strategic merge patch must be a JSON object"};
  return smp(target, patch);
}

Result<bj::value> jsonPatch(const bj::value& target, const bj::value& patch) {
  const auto* ops = patch.if_array();
  if (!ops) return Error{"json patch must be a JSON array of operations"};
  bj::value doc = target;
  for (const auto& opv : *ops) {
    const auto* op = opv.if_object();
    if (!op) return Error{"json patch operation must be an object"};
    const std::string name = strAt(op, "op");
    auto path = pointer(strAt(op, "path"));
    if (!path) return Error{path.error().message};
    const bj::value* value = op->if_contains("value");
    if (name == "add" || name == "replace" || name == "test") {
      if (!value) return Error{"missing value for " + name + " operation"};
    }
    if (name == "add") {
      if (auto s = jpAdd(doc, *path, *value); !s) return Error{s.message()};
    } else if (name == "remove") {
      if (auto r = jpRemove(doc, *path); !r) return Error{r.error().message};
    } else if (name == "replace") {
      bj::value* at = walk(doc, *path, path->size());
      if (!at)
        return Error{"replace operation does not apply: doc is missing key: " + strAt(op, "path")};
      *at = *value;
    } else if (name == "move" || name == "copy") {
      auto from = pointer(strAt(op, "from"));
      if (!from) return Error{from.error().message};
      bj::value moved;
      if (name == "move") {
        auto r = jpRemove(doc, *from);
        if (!r) return Error{r.error().message};
        moved = std::move(*r);
      } else {
        const bj::value* src = walk(doc, *from, from->size());
        if (!src) return Error{"copy operation does not apply: doc is missing from path"};
        moved = *src;
      }
      if (auto s = jpAdd(doc, *path, std::move(moved)); !s) return Error{s.message()};
    } else if (name == "test") {
      const bj::value* at = walk(doc, *path, path->size());
      if (!at || !(*at == *value))
        return Error{"testing value " + strAt(op, "path") + " failed: test failed"};
    } else {
      return Error{"Unexpected kind: " + name};
    }
  }
  return doc;
}

// ---------------------------------------------------------------------------------------------
// The store, the event history and the watches
// ---------------------------------------------------------------------------------------------
namespace {

struct Event {
  std::uint64_t rv = 0;
  std::string store_key;  // the resource's store key (group/plural)
  std::string type;       // ADDED MODIFIED DELETED
  std::shared_ptr<const bj::object> obj;
  std::shared_ptr<const bj::object> prev;  // the object before the write (null for ADDED)
};

// Where one watch stream is: filled under the store's mutex, drained by its coroutine.
struct Watch {
  std::string store_key;
  ResourceType type;
  std::string ns;  // "" = every namespace
  LabelSelector labels;
  FieldSelector fields;
  std::deque<std::string> lines;        // guarded by the store's mutex
  bool dropped = false;                 // guarded: dropWatches() — cut the connection
  bool overflow = false;                // guarded: the client fell behind — end the stream
  bool peer_closed = false;             // io thread only
  asio::steady_timer* timer = nullptr;  // io thread only: the coroutine's wake-up timer

  bool passes(const bj::object& o) const {
    const auto* md = objAt(&o, "metadata");
    if (!ns.empty() && strAt(md, "namespace") != ns) return false;
    return labels.matches(objAt(md, "labels")) && fields.matches(o);
  }
};

std::string eventLine(std::string_view type, const bj::object& obj) {
  std::string s = "{\"type\":\"";
  s += type;
  s += "\",\"object\":";
  s += bj::serialize(obj);
  s += "}\n";
  return s;
}

std::string objKey(const std::string& ns, const std::string& name) { return ns + "/" + name; }

struct DenyRule {
  std::string verb, group, resource;
};

struct FaultRule {
  int remaining;
  Fault fault;
  std::function<bool(const RequestRecord&)> match;
};

// Where a request goes, parsed from its path.
struct Target {
  ResourceType type;
  std::string ns, name, sub;
  bool watch_path = false;  // /api/v1/watch/...
};

}  // namespace

struct detail::ApiServerState {
  ApiServerOptions opts;
  mutable std::mutex mu;
  std::map<std::string, ResourceType> types;  // guarded: "apiVersion/plural" -> type
  // guarded: store key (group/plural) -> "ns/name" -> object
  std::map<std::string, std::map<std::string, bj::object>> objects;
  std::uint64_t rv = 0;                      // guarded
  std::deque<Event> history;                 // guarded
  std::set<std::shared_ptr<Watch>> watches;  // guarded
  std::vector<DenyRule> denies;              // guarded
  std::vector<FaultRule> faults;             // guarded
  std::vector<RequestRecord> log;            // guarded

  asio::io_context ioc{1};
  std::unique_ptr<http::Server> server;
  std::thread thread;
  std::uint16_t port = 0;

  static std::string storeKey(const ResourceType& t) { return t.group + "/" + t.plural; }

  const ResourceType* findType(const std::string& api_version, const std::string& plural) const {
    auto it = types.find(api_version + "/" + plural);
    return it == types.end() ? nullptr : &it->second;
  }

  void addType(ResourceType t) { types[t.apiVersion() + "/" + t.plural] = std::move(t); }

  // --- events ---

  // Wakes the stream's coroutine (on the io thread).
  void notify(const std::shared_ptr<Watch>& w) {
    asio::post(ioc, [w] {
      if (w->timer) w->timer->cancel();
    });
  }

  void push(const std::shared_ptr<Watch>& w, std::string line) {
    if (w->overflow || w->dropped) return;
    w->lines.push_back(std::move(line));
    if (w->lines.size() > opts.max_watch_queue) w->overflow = true;
    notify(w);
  }

  // What `w` sees of `e` (cache_watcher.go convertToWatchEvent), or "" for nothing.
  static std::string convert(const Watch& w, const Event& e) {
    const bool cur = e.type != "DELETED" && w.passes(*e.obj);
    const bool old = e.prev && w.passes(*e.prev);
    if (cur && !old) return eventLine("ADDED", *e.obj);
    if (cur && old) return eventLine("MODIFIED", *e.obj);
    if (!cur && old) {
      // The previous content, with the event's resourceVersion.
      bj::object o = *e.prev;
      objRef(o, "metadata")["resourceVersion"] = std::to_string(e.rv);
      return eventLine("DELETED", o);
    }
    return {};
  }

  // REQUIRES: mu held. `obj` already carries its new resourceVersion (== rv).
  void emit(const ResourceType& t, const std::string& type, const bj::object& obj,
            const bj::object* prev) {
    Event e;
    e.rv = rv;
    e.store_key = storeKey(t);
    e.type = type;
    e.obj = std::make_shared<const bj::object>(obj);
    if (prev) e.prev = std::make_shared<const bj::object>(*prev);
    if (type == "DELETED") e.prev = e.obj;
    for (const auto& w : watches) {
      if (w->store_key != e.store_key) continue;
      if (auto line = convert(*w, e); !line.empty()) push(w, std::move(line));
    }
    history.push_back(std::move(e));
    while (history.size() > opts.watch_window) history.pop_front();
  }

  // The oldest resourceVersion a watch may resume from (watch_cache.go: rv < oldest-1 expires).
  std::uint64_t oldestMinusOne() const { return history.empty() ? rv : history.front().rv - 1; }

  // --- writes (REQUIRES: mu held) ---

  std::map<std::string, bj::object>& bucket(const ResourceType& t) { return objects[storeKey(t)]; }

  bool namespaceExists(const std::string& ns) {
    auto& b = objects["/namespaces"];
    return b.count(objKey("", ns)) > 0;
  }

  static void stamp(const ResourceType& t, bj::object& obj) {
    obj["kind"] = t.kind;
    obj["apiVersion"] = t.apiVersion();
  }

  // The parts of an object whose change bumps metadata.generation: all but metadata (and status
  // when the kind has a status subresource).
  static bj::object specPart(const ResourceType& t, const bj::object& o) {
    bj::object s = o;
    s.erase("metadata");
    s.erase("kind");
    s.erase("apiVersion");
    if (t.status_subresource) s.erase("status");
    return s;
  }

  ApiResult<bj::object> create(const ResourceType& t, const std::string& ns, bj::object obj) {
    if (const auto k = strAt(&obj, "kind"); !k.empty() && k != t.kind)
      return badRequest("the kind in the data (" + k + ") does not match the expected kind (" +
                        t.kind + ")");
    if (const auto av = strAt(&obj, "apiVersion"); !av.empty() && av != t.apiVersion())
      return badRequest("the API version in the data (" + av +
                        ") does not match the expected API version (" + t.apiVersion() + ")");
    auto& md = objRef(obj, "metadata");
    if (t.namespaced) {
      const auto body_ns = strAt(&md, "namespace");
      if (!body_ns.empty() && body_ns != ns)
        return badRequest(
            "the namespace of the provided object does not match the namespace sent on the "
            "request");
      if (ns.empty()) return notFoundPath();
      md["namespace"] = ns;
      if (opts.require_namespaces && !namespaceExists(ns)) {
        ResourceType nst{"", "v1", "namespaces", "Namespace", false};
        return notFound(nst, ns);
      }
    } else {
      md.erase("namespace");
    }
    auto& b = bucket(t);
    std::string name = strAt(&md, "name");
    if (name.empty()) {
      const auto gen = strAt(&md, "generateName");
      if (gen.empty())
        return invalid(t, "", "metadata.name", "Required value: name or generateName is required");
      for (int i = 0; i < 100 && (name.empty() || b.count(objKey(ns, name))); ++i)
        name = gen + randomSuffix();
    }
    if (!isDnsSubdomain(name))
      return invalid(t, name, "metadata.name",
                     "Invalid value: " + jsonQuote(name) + kSubdomainMessage);
    if (b.count(objKey(ns, name))) return alreadyExists(t, name);
    md["name"] = name;
    md["uid"] = newUid();
    md["creationTimestamp"] = rfc3339(std::chrono::system_clock::now());
    md["generation"] = 1;
    md.erase("deletionTimestamp");
    md.erase("deletionGracePeriodSeconds");
    md.erase("resourceVersion");
    // (stamp and the defaults add keys to `obj`, which may move its members: no `md` after.)
    stamp(t, obj);
    applyCreateDefaults(t, obj);
    objRef(obj, "metadata")["resourceVersion"] = std::to_string(++rv);
    b[objKey(ns, name)] = obj;
    emit(t, "ADDED", obj, nullptr);
    return obj;
  }

  // The defaults and create-time status rules of the kinds with special strategies.
  static void applyCreateDefaults(const ResourceType& t, bj::object& obj) {
    if (t.group.empty() && t.plural == "pods") {
      auto& spec = objRef(obj, "spec");
      if (!spec.contains("terminationGracePeriodSeconds"))
        spec["terminationGracePeriodSeconds"] = 30;
      if (!spec.contains("restartPolicy")) spec["restartPolicy"] = "Always";
      if (!spec.contains("schedulerName")) spec["schedulerName"] = "default-scheduler";
      bj::object status;  // podStrategy.PrepareForCreate: status starts as Pending
      status["phase"] = "Pending";
      obj["status"] = status;
    } else if (t.group == "apps" && t.plural == "deployments") {
      auto& spec = objRef(obj, "spec");
      if (!spec.contains("replicas")) spec["replicas"] = 1;
      obj["status"] = bj::object();  // deploymentStrategy.PrepareForCreate clears status
    } else if (t.group.empty() && t.plural == "namespaces") {
      auto& status = objRef(obj, "status");
      status["phase"] = "Active";
    } else if (t.custom && t.status_subresource) {
      obj.erase("status");  // a CR with a status subresource ignores status on create
    }
    // Nodes keep the status they are created with (nodeStrategy allows it).
  }

  ApiResult<bj::object> update(const ResourceType& t, const std::string& ns,
                               const std::string& name, bj::object obj, const std::string& sub) {
    if (!sub.empty() && !(sub == "status" && t.status_subresource)) return notFoundPath();
    auto& b = bucket(t);
    auto it = b.find(objKey(ns, name));
    const auto* md = objAt(&obj, "metadata");
    if (const auto body_name = strAt(md, "name"); !body_name.empty() && body_name != name)
      return badRequest("the name of the object (" + body_name +
                        ") does not match the name on the URL (" + name + ")");
    if (t.namespaced) {
      if (const auto body_ns = strAt(md, "namespace"); !body_ns.empty() && body_ns != ns)
        return badRequest(
            "the namespace of the provided object does not match the namespace sent on the "
            "request");
    }
    if (it == b.end()) {
      if (t.create_on_update && sub.empty()) {
        objRef(obj, "metadata")["name"] = name;
        objRef(obj, "metadata").erase("resourceVersion");
        return create(t, ns, std::move(obj));
      }
      return notFound(t, name);
    }
    const bj::object& existing = it->second;
    const auto* emd = objAt(&existing, "metadata");
    const auto body_rv = strAt(md, "resourceVersion");
    if (!body_rv.empty() && body_rv != strAt(emd, "resourceVersion")) return conflict(t, name);
    if (body_rv.empty() && t.custom)
      return invalid(t, name, "metadata.resourceVersion",
                     "Invalid value: 0x0: must be specified for an update");
    bj::object next;
    if (sub == "status") {
      next = existing;
      if (const auto* st = obj.if_contains("status"))
        next["status"] = *st;
      else
        next.erase("status");
    } else {
      next = std::move(obj);
      auto& nmd = objRef(next, "metadata");
      for (const char* keep : {"uid", "creationTimestamp", "deletionTimestamp",
                               "deletionGracePeriodSeconds", "generation", "generateName"}) {
        if (const auto* v = emd->if_contains(keep))
          nmd[keep] = *v;
        else
          nmd.erase(keep);
      }
      nmd["name"] = name;
      if (t.namespaced) nmd["namespace"] = ns;
      if (t.status_subresource) {
        if (const auto* st = existing.if_contains("status"))
          next["status"] = *st;
        else
          next.erase("status");
      }
      stamp(t, next);  // may move next's members: `nmd` is not used after
      if (!(specPart(t, next) == specPart(t, existing))) {
        const auto* g = emd->if_contains("generation");
        objRef(next, "metadata")["generation"] = (g && g->is_int64() ? g->as_int64() : 0) + 1;
      }
    }
    return commit(t, ns, name, std::move(next));
  }

  // Writes `next` over the stored object (a no-op write keeps the resourceVersion, as the real
  // storage skips writing identical bytes), and deletes an object whose last finalizer went.
  ApiResult<bj::object> commit(const ResourceType& t, const std::string& ns,
                               const std::string& name, bj::object next) {
    auto& b = bucket(t);
    auto it = b.find(objKey(ns, name));
    bj::object prev = it->second;
    auto& nmd = objRef(next, "metadata");
    nmd["resourceVersion"] = strAt(objAt(&prev, "metadata"), "resourceVersion");
    if (next == prev) return next;
    nmd["resourceVersion"] = std::to_string(++rv);
    const bool deleting = nmd.contains("deletionTimestamp");
    const auto* fins = nmd.if_contains("finalizers");
    const bool no_finalizers = !fins || !fins->is_array() || fins->as_array().empty();
    const auto* grace = nmd.if_contains("deletionGracePeriodSeconds");
    const bool grace_zero = !grace || (grace->is_int64() && grace->as_int64() == 0);
    if (deleting && no_finalizers && grace_zero) {
      b.erase(it);
      emit(t, "DELETED", next, &prev);
      return next;
    }
    it->second = next;
    emit(t, "MODIFIED", next, &prev);
    return next;
  }

  ApiResult<bj::object> patch(const ResourceType& t, const std::string& ns, const std::string& name,
                              PatchType type, const bj::value& p, const std::string& sub) {
    if (!sub.empty() && !(sub == "status" && t.status_subresource)) return notFoundPath();
    auto& b = bucket(t);
    auto it = b.find(objKey(ns, name));
    if (it == b.end()) return notFound(t, name);
    if (type == PatchType::kStrategic && t.custom) return unsupportedMediaType();
    const bj::value existing = it->second;
    Result<bj::value> patched = bj::value();
    switch (type) {
      case PatchType::kMerge:
        if (!p.is_object()) return badRequest("merge patch must be a JSON object");
        patched = mergePatch(existing, p);
        break;
      case PatchType::kStrategic:
        patched = strategicMergePatch(existing, p);
        break;
      case PatchType::kJson:
        if (!p.is_array()) return badRequest("json patch must be a JSON array");
        patched = jsonPatch(existing, p);
        break;
    }
    if (!patched) return make(422, "Invalid", patched.error().message);
    if (!patched->is_object()) return make(422, "Invalid", "the patched object is not an object");
    // A resourceVersion the patch set (or changed) is a precondition.
    bj::object next = std::move(patched->as_object());
    const auto want = strAt(objAt(&next, "metadata"), "resourceVersion");
    const auto have = strAt(objAt(&existing.as_object(), "metadata"), "resourceVersion");
    if (!want.empty() && want != have) return conflict(t, name);
    objRef(next, "metadata")["resourceVersion"] = have;
    return update(t, ns, name, std::move(next), sub);
  }

  ApiResult<bj::object> remove(const ResourceType& t, const std::string& ns,
                               const std::string& name, std::optional<std::int64_t> grace,
                               const bj::object* preconditions) {
    auto& b = bucket(t);
    auto it = b.find(objKey(ns, name));
    if (it == b.end()) return notFound(t, name);
    const bj::object prev = it->second;
    const auto* md = objAt(&prev, "metadata");
    if (preconditions) {
      if (const auto uid = strAt(preconditions, "uid"); !uid.empty() && uid != strAt(md, "uid"))
        return conflict(t, name,
                        "Precondition failed: UID in precondition: " + uid +
                            ", UID in object meta: " + strAt(md, "uid"));
      if (const auto want = strAt(preconditions, "resourceVersion");
          !want.empty() && want != strAt(md, "resourceVersion"))
        return conflict(t, name,
                        "Precondition failed: ResourceVersion in precondition: " + want +
                            ", ResourceVersion in object meta: " + strAt(md, "resourceVersion"));
    }
    const auto* fins = md ? md->if_contains("finalizers") : nullptr;
    const bool has_finalizers = fins && fins->is_array() && !fins->as_array().empty();
    std::int64_t period = 0;
    if (t.group.empty() && t.plural == "pods") {
      const auto* spec = objAt(&prev, "spec");
      const auto* tg = spec ? spec->if_contains("terminationGracePeriodSeconds") : nullptr;
      period = grace ? *grace : (tg && tg->is_int64() ? tg->as_int64() : 30);
      const auto phase = strAt(objAt(&prev, "status"), "phase");
      // podStrategy.CheckGracefulDelete: unscheduled or terminated pods go at once.
      if (strAt(spec, "nodeName").empty() || phase == "Succeeded" || phase == "Failed") period = 0;
      if (period < 0) period = 0;
    }
    if (period > 0 || has_finalizers) {
      if (md && md->contains("deletionTimestamp")) {
        if (!(period == 0 && !has_finalizers)) return prev;  // already terminating
      } else {
        bj::object next = prev;
        auto& nmd = objRef(next, "metadata");
        nmd["deletionTimestamp"] =
            rfc3339(std::chrono::system_clock::now() + std::chrono::seconds(period));
        nmd["deletionGracePeriodSeconds"] = period;
        nmd["resourceVersion"] = std::to_string(++rv);
        it->second = next;
        emit(t, "MODIFIED", next, &prev);
        return next;
      }
    }
    bj::object gone = prev;
    objRef(gone, "metadata")["resourceVersion"] = std::to_string(++rv);
    b.erase(it);
    emit(t, "DELETED", gone, &prev);
    return gone;
  }

  std::vector<bj::object> select(const ResourceType& t, const std::string& ns,
                                 const LabelSelector& labels, const FieldSelector& fields) {
    std::vector<bj::object> out;
    auto& b = bucket(t);
    for (const auto& [key, obj] : b) {
      const auto* md = objAt(&obj, "metadata");
      if (!ns.empty() && strAt(md, "namespace") != ns) continue;
      if (!labels.matches(objAt(md, "labels")) || !fields.matches(obj)) continue;
      out.push_back(obj);
    }
    return out;
  }

  // --- scale ---

  static bj::object scaleOf(const bj::object& d) {
    const auto* md = objAt(&d, "metadata");
    bj::object s;
    s["kind"] = "Scale";
    s["apiVersion"] = "autoscaling/v1";
    bj::object m;
    for (const char* k : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"})
      if (const auto* v = md ? md->if_contains(k) : nullptr) m[k] = *v;
    s["metadata"] = m;
    const auto* spec = objAt(&d, "spec");
    const auto* r = spec ? spec->if_contains("replicas") : nullptr;
    bj::object sspec;
    sspec["replicas"] = r && r->is_int64() ? r->as_int64() : 0;
    s["spec"] = sspec;
    bj::object sst;
    const auto* st = objAt(&d, "status");
    const auto* sr = st ? st->if_contains("replicas") : nullptr;
    sst["replicas"] = sr && sr->is_int64() ? sr->as_int64() : 0;
    std::string selector;
    if (const auto* sel = objAt(spec, "selector")) {
      if (auto ls = LabelSelector::fromObject(*sel)) selector = ls->str();
    }
    sst["selector"] = selector;
    s["status"] = sst;
    return s;
  }

  ApiResult<bj::object> setScale(const ResourceType& t, const std::string& ns,
                                 const std::string& name, const bj::object& scale) {
    auto& b = bucket(t);
    auto it = b.find(objKey(ns, name));
    if (it == b.end()) return notFound(t, name);
    const auto want = strAt(objAt(&scale, "metadata"), "resourceVersion");
    if (!want.empty() && want != strAt(objAt(&it->second, "metadata"), "resourceVersion"))
      return conflict(t, name);
    const auto* spec = objAt(&scale, "spec");
    const auto* r = spec ? spec->if_contains("replicas") : nullptr;
    if (!r || !r->is_int64() || r->as_int64() < 0)
      return invalid(ResourceType{"autoscaling", "v1", "scale", "Scale"}, name, "spec.replicas",
                     "Invalid value: must be greater than or equal to 0");
    bj::object next = it->second;
    objRef(next, "spec")["replicas"] = r->as_int64();
    objRef(next, "metadata").erase("resourceVersion");
    auto res = update(t, ns, name, std::move(next), "");
    if (!res) return res;
    return scaleOf(*res);
  }
};

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------
namespace {

namespace bhttp = boost::beast::http;

struct DroppedWatch : std::runtime_error {
  DroppedWatch() : std::runtime_error("watch cut by dropWatches() (fault injection)") {}
};

std::string queryOf(std::string_view target) {
  const auto q = target.find('?');
  return q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1));
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const auto j = path.find('/', i);
    const auto part = path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (!part.empty()) out.push_back(urlDecode(part));
    if (j == std::string_view::npos) break;
    i = j;
  }
  return out;
}

bool truthy(const std::string& v) { return v == "true" || v == "1"; }

}  // namespace

// The request handler: routing, authentication, authorization, then the store.
class Handler {
 public:
  explicit Handler(detail::ApiServerState& s) : s_(s) {}

  asio::awaitable<void> handle(http::Exchange& ex) {
    const auto& req = ex.request();
    const std::string target(req.target());
    RequestRecord rec;
    rec.method = std::string(req.method_string());
    const auto q = target.find('?');
    rec.path = target.substr(0, q);
    rec.query = queryOf(target);
    rec.user_agent = std::string(req[bhttp::field::user_agent]);
    rec.user = authenticate(ex);
    Target tg;
    std::optional<ApiError> route_error;
    if (auto r = route(rec.path, rec.query, rec.method, tg, rec.verb); !r) route_error = r.error();

    // Injected faults come first: they stand for a server that fails whatever is asked.
    std::optional<Fault> fault;
    {
      std::lock_guard lk(s_.mu);
      for (auto it = s_.faults.begin(); it != s_.faults.end(); ++it) {
        if (it->remaining > 0 && it->match(rec)) {
          fault = it->fault;
          if (--it->remaining == 0) s_.faults.erase(it);
          break;
        }
      }
    }
    if (fault) {
      ApiError e =
          make(fault->code, fault->reason.empty() ? defaultReason(fault->code) : fault->reason,
               fault->message.empty() ? "injected failure" : fault->message);
      http::Headers h;
      if (fault->retry_after_s >= 0) {
        h.emplace_back("Retry-After", std::to_string(fault->retry_after_s));
        e.details["retryAfterSeconds"] = fault->retry_after_s;
      }
      co_await fail(ex, rec, e, h);
      co_return;
    }
    const bool anonymous_ok = rec.path == "/healthz" || rec.path == "/readyz" ||
                              rec.path == "/livez" || rec.path == "/version";
    if (rec.user.empty() && !anonymous_ok) {
      co_await fail(ex, rec, make(401, "Unauthorized", "Unauthorized"));
      co_return;
    }
    if (auto body = discovery(rec.path)) {
      co_await ok(ex, rec, 200, *body);
      co_return;
    }
    if (route_error) {
      co_await fail(ex, rec, *route_error);
      co_return;
    }
    if (auto denied = authorize(rec, tg)) {
      co_await fail(ex, rec, *denied);
      co_return;
    }
    co_await serve(ex, rec, tg);
  }

 private:
  using Headers = http::Headers;

  std::string authenticate(http::Exchange& ex) {
    const auto& req = ex.request();
    const std::string auth(req[bhttp::field::authorization]);
    if (!s_.opts.token.empty() && auth == "Bearer " + s_.opts.token) return s_.opts.token_user;
    // With a client CA every connection carries a verified certificate (the handshake requires
    // one), and the x509 authenticator accepts it whatever else the request says.
    if (!s_.opts.tls_client_ca_file.empty()) return s_.opts.client_certificate_user;
    return {};
  }

  void logRequest(RequestRecord rec, int status) {
    rec.status = status;
    std::lock_guard lk(s_.mu);
    s_.log.push_back(std::move(rec));
  }

  asio::awaitable<void> ok(http::Exchange& ex, const RequestRecord& rec, int code,
                           const bj::value& body) {
    logRequest(rec, code);
    co_await ex.respond(static_cast<http::Status>(code), bj::serialize(body), "application/json");
  }

  asio::awaitable<void> fail(http::Exchange& ex, const RequestRecord& rec, const ApiError& e,
                             const Headers& h = {}) {
    logRequest(rec, e.code);
    co_await ex.respond(static_cast<http::Status>(e.code), bj::serialize(e.status()),
                        "application/json", h);
  }

  // Parses the path into a target and the Kubernetes verb; unknown paths are 404.
  Result<bool, ApiError> route(const std::string& path, const std::string& query,
                               const std::string& method, Target& tg, std::string& verb) {
    auto parts = splitPath(path);
    std::string api_version;
    std::size_t i = 0;
    if (parts.size() >= 2 && parts[0] == "api") {
      api_version = parts[1];
      i = 2;
    } else if (parts.size() >= 3 && parts[0] == "apis") {
      api_version = parts[1] + "/" + parts[2];
      i = 3;
    } else {
      return notFoundPath();
    }
    std::vector<std::string> rest(parts.begin() + static_cast<std::ptrdiff_t>(i), parts.end());
    if (rest.empty()) return notFoundPath();
    if (rest[0] == "watch") {
      tg.watch_path = true;
      rest.erase(rest.begin());
      if (rest.empty()) return notFoundPath();
    }
    std::lock_guard lk(s_.mu);
    const ResourceType* t = nullptr;
    if (rest[0] == "namespaces" && rest.size() >= 3 && (t = s_.findType(api_version, rest[2])) &&
        t->namespaced) {
      tg.ns = rest[1];
      tg.type = *t;
      if (rest.size() > 3) tg.name = rest[3];
      if (rest.size() > 4) tg.sub = rest[4];
      if (rest.size() > 5) return notFoundPath();
    } else if ((t = s_.findType(api_version, rest[0]))) {
      tg.type = *t;
      if (rest.size() > 1) {
        if (t->namespaced) return notFoundPath();  // a namespaced kind by name needs a namespace
        tg.name = rest[1];
      }
      if (rest.size() > 2) tg.sub = rest[2];
      if (rest.size() > 3) return notFoundPath();
    } else {
      return notFoundPath();
    }
    const bool collection = tg.name.empty();
    if (method == "GET") {
      const bool w = tg.watch_path || truthy(queryParam(query, "watch"));
      verb = w ? "watch" : collection ? "list" : "get";
    } else if (method == "POST") {
      verb = "create";
    } else if (method == "PUT") {
      verb = "update";
    } else if (method == "PATCH") {
      verb = "patch";
    } else if (method == "DELETE") {
      verb = collection ? "deletecollection" : "delete";
    } else {
      verb = "";
    }
    return true;
  }

  std::optional<ApiError> authorize(const RequestRecord& rec, const Target& tg) {
    const std::string resource = tg.sub.empty() ? tg.type.plural : tg.type.plural + "/" + tg.sub;
    bool denied = false;
    {
      std::lock_guard lk(s_.mu);
      for (const auto& d : s_.denies) {
        if ((d.verb == "*" || d.verb == rec.verb) && (d.group == "*" || d.group == tg.type.group) &&
            (d.resource == "*" || d.resource == resource))
          denied = true;
      }
    }
    if (!denied) return std::nullopt;
    // responsewriters.forbiddenMessage, then errors.NewForbidden(GroupResource, name, err).
    std::string why = "User " + jsonQuote(rec.user) + " cannot " + rec.verb + " resource " +
                      jsonQuote(resource) + " in API group " + jsonQuote(tg.type.group);
    why += tg.ns.empty() ? " at the cluster scope" : " in the namespace " + jsonQuote(tg.ns);
    const std::string qualified = tg.type.qualified();
    std::string msg = tg.name.empty()
                          ? qualified + " is forbidden: " + why
                          : qualified + " " + jsonQuote(tg.name) + " is forbidden: " + why;
    return make(403, "Forbidden", msg, grDetails(tg.type, tg.name));
  }

  // Discovery documents, /version and the health endpoints; nullopt for other paths.
  std::optional<bj::value> discovery(const std::string& path) {
    if (path == "/healthz" || path == "/readyz" || path == "/livez") return bj::value("ok");
    if (path == "/version") {
      bj::object v;
      v["major"] = "1";
      v["minor"] = "30";
      v["gitVersion"] = "v1.30.0-tidegate-test";
      v["platform"] = "linux/amd64";
      return v;
    }
    std::lock_guard lk(s_.mu);
    if (path == "/api") {
      bj::object v;
      v["kind"] = "APIVersions";
      v["versions"] = bj::array{"v1"};
      return v;
    }
    if (path == "/apis") {
      std::map<std::string, std::set<std::string>> groups;
      for (const auto& [k, t] : s_.types)
        if (!t.group.empty()) groups[t.group].insert(t.version);
      bj::array list;
      for (const auto& [g, versions] : groups) {
        bj::object go;
        go["name"] = g;
        bj::array vs;
        for (const auto& v : versions)
          vs.push_back(bj::object{{"groupVersion", g + "/" + v}, {"version", v}});
        go["preferredVersion"] = vs.front();
        go["versions"] = vs;
        list.push_back(go);
      }
      return bj::object{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", list}};
    }
    std::string gv;
    if (path.starts_with("/api/") && std::count(path.begin(), path.end(), '/') == 2)
      gv = path.substr(5);
    else if (path.starts_with("/apis/") && std::count(path.begin(), path.end(), '/') == 3)
      gv = path.substr(6);
    if (gv.empty()) return std::nullopt;
    bj::array resources;
    for (const auto& [k, t] : s_.types) {
      if (t.apiVersion() != gv) continue;
      bj::array verbs{"create", "delete", "get", "list", "patch", "update", "watch"};
      resources.push_back(bj::object{{"name", t.plural},
                                     {"singularName", ""},
                                     {"namespaced", t.namespaced},
                                     {"kind", t.kind},
                                     {"verbs", verbs}});
      if (t.status_subresource)
        resources.push_back(bj::object{{"name", t.plural + "/status"},
                                       {"singularName", ""},
                                       {"namespaced", t.namespaced},
                                       {"kind", t.kind},
                                       {"verbs", bj::array{"get", "patch", "update"}}});
      if (t.scale_subresource)
        resources.push_back(bj::object{{"name", t.plural + "/scale"},
                                       {"singularName", ""},
                                       {"namespaced", t.namespaced},
                                       {"group", "autoscaling"},
                                       {"version", "v1"},
                                       {"kind", "Scale"},
                                       {"verbs", bj::array{"get", "patch", "update"}}});
    }
    if (resources.empty()) return std::nullopt;
    return bj::object{{"kind", "APIResourceList"},
                      {"apiVersion", "v1"},
                      {"groupVersion", gv},
                      {"resources", resources}};
  }

  asio::awaitable<void> serve(http::Exchange& ex, const RequestRecord& rec, const Target& tg) {
    const auto& req = ex.request();
    const auto& t = tg.type;
    if (rec.verb == "watch") {
      if (!tg.name.empty()) {
        // A watch of one object is a watch with fieldSelector=metadata.name=NAME.
        std::string query = rec.query;
        query += std::string(query.empty() ? "" : "&") + "fieldSelector=metadata.name%3D" +
                 urlEncode(tg.name);
        co_await watch(ex, rec, tg, query);
      } else {
        co_await watch(ex, rec, tg, rec.query);
      }
      co_return;
    }
    if (rec.verb == "list") {
      co_await list(ex, rec, tg);
      co_return;
    }
    // Bodies.
    bj::value body;
    if (rec.verb == "create" || rec.verb == "update" || rec.verb == "patch" ||
        (rec.verb == "delete" && !req.body().empty())) {
      boost::system::error_code ec;
      body = bj::parse(req.body(), ec);
      if (ec) {
        co_await fail(ex, rec,
                      badRequest("the request body could not be decoded as JSON: " + ec.message()));
        co_return;
      }
    }
    ApiResult<bj::object> result = ApiError{};
    int code = 200;
    const bool scale = tg.sub == "scale";
    if (scale && !t.scale_subresource) {
      co_await fail(ex, rec, notFoundPath());
      co_return;
    }
    std::unique_lock lk(s_.mu);
    if (rec.verb == "get") {
      auto& b = s_.bucket(t);
      auto it = b.find(objKey(tg.ns, tg.name));
      if (it == b.end())
        result = notFound(t, tg.name);
      else if (scale)
        result = detail::ApiServerState::scaleOf(it->second);
      else if (!tg.sub.empty() && !(tg.sub == "status" && t.status_subresource))
        result = notFoundPath();
      else
        result = it->second;
    } else if (rec.verb == "create") {
      if (!tg.name.empty() || !tg.sub.empty()) {
        result = methodNotSupported(t, "create");
      } else if (!body.is_object()) {
        result = badRequest("the request body must be a JSON object");
      } else {
        result = s_.create(t, tg.ns, body.as_object());
        code = 201;
      }
    } else if (rec.verb == "update") {
      if (!body.is_object())
        result = badRequest("the request body must be a JSON object");
      else if (scale)
        result = s_.setScale(t, tg.ns, tg.name, body.as_object());
      else {
        const bool existed = s_.bucket(t).count(objKey(tg.ns, tg.name)) > 0;
        result = s_.update(t, tg.ns, tg.name, body.as_object(), tg.sub);
        if (!existed && result.ok()) code = 201;
      }
    } else if (rec.verb == "patch") {
      std::string ct(req[bhttp::field::content_type]);
      if (auto semi = ct.find(';'); semi != std::string::npos) ct.resize(semi);
      std::optional<PatchType> type;
      if (ct == "application/merge-patch+json")
        type = PatchType::kMerge;
      else if (ct == "application/strategic-merge-patch+json")
        type = PatchType::kStrategic;
      else if (ct == "application/json-patch+json")
        type = PatchType::kJson;
      if (!type) {
        result = unsupportedMediaType();
      } else if (scale) {
        auto& b = s_.bucket(t);
        auto it = b.find(objKey(tg.ns, tg.name));
        if (it == b.end()) {
          result = notFound(t, tg.name);
        } else {
          const bj::value current = detail::ApiServerState::scaleOf(it->second);
          Result<bj::value> patched = *type == PatchType::kJson ? jsonPatch(current, body)
                                      : *type == PatchType::kStrategic
                                          ? strategicMergePatch(current, body)
                                          : Result<bj::value>(mergePatch(current, body));
          if (!patched || !patched->is_object())
            result = make(422, "Invalid",
                          patched ? "the patched Scale is not an object" : patched.error().message);
          else
            result = s_.setScale(t, tg.ns, tg.name, patched->as_object());
        }
      } else {
        result = s_.patch(t, tg.ns, tg.name, *type, body, tg.sub);
      }
    } else if (rec.verb == "delete") {
      std::optional<std::int64_t> grace;
      if (auto g = parseInt(queryParam(rec.query, "gracePeriodSeconds"))) grace = *g;
      const bj::object* pre = nullptr;
      if (const auto* o = body.if_object()) {
        if (const auto* g = o->if_contains("gracePeriodSeconds"); g && g->is_int64())
          grace = g->as_int64();
        pre = objAt(o, "preconditions");
      }
      if (!tg.sub.empty())
        result = notFoundPath();
      else
        result = s_.remove(t, tg.ns, tg.name, grace, pre);
    } else {
      result = methodNotSupported(t, rec.verb.empty() ? rec.method : rec.verb);
    }
    lk.unlock();
    if (result)
      co_await ok(ex, rec, code, *result);
    else
      co_await fail(ex, rec, result.error());
  }

  asio::awaitable<void> list(http::Exchange& ex, const RequestRecord& rec, const Target& tg) {
    auto labels = LabelSelector::parse(queryParam(rec.query, "labelSelector"));
    if (!labels) {
      co_await fail(ex, rec, badRequest(labels.error().message));
      co_return;
    }
    auto fields = parseFieldSelector(tg.type, queryParam(rec.query, "fieldSelector"));
    if (!fields) {
      co_await fail(ex, rec, badRequest(fields.error().message));
      co_return;
    }
    const auto limit = parseUint(queryParam(rec.query, "limit")).value_or(0);
    const std::string cont = queryParam(rec.query, "continue");
    if (!cont.empty() &&
        (cont.find('/') == std::string::npos || !parseUint(cont.substr(0, cont.find('/'))))) {
      co_await fail(ex, rec, badRequest("continue key is not valid: " + cont));
      co_return;
    }
    bj::object out;
    {
      std::lock_guard lk(s_.mu);
      auto items = s_.select(tg.type, tg.ns, *labels, *fields);
      std::string list_rv = std::to_string(s_.rv);
      // Pages: the continue token is "<list resourceVersion>/<last key served>".
      std::size_t start = 0;
      if (!cont.empty()) {
        list_rv = cont.substr(0, cont.find('/'));
        const std::string after = cont.substr(cont.find('/') + 1);
        while (start < items.size()) {
          const auto* md = objAt(&items[start], "metadata");
          if (objKey(strAt(md, "namespace"), strAt(md, "name")) > after) break;
          ++start;
        }
      }
      bj::array arr;
      std::size_t end = items.size();
      if (limit > 0 && start + limit < items.size()) end = start + limit;
      for (std::size_t i = start; i < end; ++i) arr.push_back(items[i]);
      bj::object meta;
      meta["resourceVersion"] = list_rv;
      if (end < items.size()) {
        const auto* md = objAt(&items[end - 1], "metadata");
        meta["continue"] = list_rv + "/" + objKey(strAt(md, "namespace"), strAt(md, "name"));
        meta["remainingItemCount"] = static_cast<std::int64_t>(items.size() - end);
      }
      out["kind"] = tg.type.kind + "List";
      out["apiVersion"] = tg.type.apiVersion();
      out["metadata"] = meta;
      out["items"] = arr;
    }
    co_await ok(ex, rec, 200, out);
  }

  asio::awaitable<void> watch(http::Exchange& ex, const RequestRecord& rec, const Target& tg,
                              const std::string& query) {
    auto labels = LabelSelector::parse(queryParam(query, "labelSelector"));
    if (!labels) {
      co_await fail(ex, rec, badRequest(labels.error().message));
      co_return;
    }
    auto fields = parseFieldSelector(tg.type, queryParam(query, "fieldSelector"));
    if (!fields) {
      co_await fail(ex, rec, badRequest(fields.error().message));
      co_return;
    }
    const std::string rv_param = queryParam(query, "resourceVersion");
    std::optional<std::uint64_t> from;
    if (!rv_param.empty()) {
      from = parseUint(rv_param);
      if (!from) {
        co_await fail(ex, rec, badRequest("invalid resource version: " + rv_param));
        co_return;
      }
    }
    double timeout_s = s_.opts.default_watch_timeout_s;
    if (auto ts = parseUint(queryParam(query, "timeoutSeconds")); ts && *ts > 0)
      timeout_s = static_cast<double>(*ts);
    const bool bookmarks = truthy(queryParam(query, "allowWatchBookmarks"));

    auto w = std::make_shared<Watch>();
    w->store_key = detail::ApiServerState::storeKey(tg.type);
    w->type = tg.type;
    w->ns = tg.ns;
    w->labels = *labels;
    w->fields = *fields;
    std::optional<ApiError> expired;
    {
      std::lock_guard lk(s_.mu);
      if (!from || *from == 0) {
        // Synthetic ADDED events for the current state, then the changes after it.
        for (auto& o : s_.select(tg.type, tg.ns, *labels, *fields))
          w->lines.push_back(eventLine("ADDED", o));
      } else if (*from < s_.oldestMinusOne()) {
        expired = make(410, "Expired",
                       "too old resource version: " + std::to_string(*from) + " (" +
                           std::to_string(s_.oldestMinusOne()) + ")");
      } else {
        for (const auto& e : s_.history) {
          if (e.rv <= *from || e.store_key != w->store_key) continue;
          if (auto line = detail::ApiServerState::convert(*w, e); !line.empty())
            w->lines.push_back(std::move(line));
        }
      }
      if (!expired) s_.watches.insert(w);
      RequestRecord r = rec;
      r.status = 200;
      s_.log.push_back(std::move(r));
    }
    if (!co_await ex.startStream(http::Status::ok, "application/json")) {
      forget(w);
      co_return;
    }
    if (expired) {
      bj::object ev{{"type", "ERROR"}, {"object", expired->status()}};
      if (co_await ex.write(bj::serialize(ev) + "\n")) co_await ex.finishStream();
      co_return;
    }
    auto ioex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ioex);
    w->timer = &timer;
    ex.onPeerClosed([w] {
      w->peer_closed = true;
      if (w->timer) w->timer->cancel();
    });
    using Clock = std::chrono::steady_clock;
    const auto deadline =
        Clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
    const auto bookmark_every = std::chrono::milliseconds(
        static_cast<std::int64_t>(std::max(0.01, s_.opts.bookmark_interval_s) * 1000));
    auto next_bookmark = Clock::now() + bookmark_every;
    bool cut = false, clean = true;
    for (;;) {
      std::deque<std::string> lines;
      bool overflow = false;
      {
        std::lock_guard lk(s_.mu);
        lines.swap(w->lines);
        cut = w->dropped;
        overflow = w->overflow;
      }
      if (cut) break;
      bool write_failed = false;
      for (auto& l : lines) {
        if (!co_await ex.write(l)) {
          write_failed = true;
          break;
        }
      }
      if (write_failed || w->peer_closed) {
        clean = false;
        break;
      }
      if (overflow) break;
      const auto now = Clock::now();
      if (now >= deadline) break;
      if (bookmarks && now >= next_bookmark) {
        next_bookmark = now + bookmark_every;
        std::lock_guard lk(s_.mu);
        bj::object bm{{"kind", tg.type.kind},
                      {"apiVersion", tg.type.apiVersion()},
                      {"metadata", bj::object{{"resourceVersion", std::to_string(s_.rv)}}}};
        w->lines.push_back(eventLine("BOOKMARK", bm));
        continue;
      }
      {
        std::lock_guard lk(s_.mu);
        if (!w->lines.empty() || w->dropped || w->overflow) continue;
      }
      // No yield between the check above and the wait: a notification posted after the check
      // runs after the wait began, and cancels it.
      timer.expires_at(bookmarks ? std::min(deadline, next_bookmark) : deadline);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    w->timer = nullptr;
    forget(w);
    if (cut) throw DroppedWatch();
    if (clean) co_await ex.finishStream();
  }

  void forget(const std::shared_ptr<Watch>& w) {
    std::lock_guard lk(s_.mu);
    s_.watches.erase(w);
  }

  detail::ApiServerState& s_;
};

// ---------------------------------------------------------------------------------------------
// ApiServer
// ---------------------------------------------------------------------------------------------

ApiServer::ApiServer(ApiServerOptions options)
    : impl_(std::make_unique<detail::ApiServerState>()), options_(std::move(options)) {
  auto& s = *impl_;
  s.opts = options_;
  auto builtin = [&](std::string g, std::string v, std::string p, std::string k, bool ns,
                     bool status, bool scale = false, bool create_on_update = false) {
    ResourceType t{std::move(g), std::move(v), std::move(p), std::move(k), ns, status, scale};
    t.create_on_update = create_on_update;
    s.addType(std::move(t));
  };
  builtin("", "v1", "pods", "Pod", true, true);
  builtin("", "v1", "nodes", "Node", false, true, false, true);
  builtin("", "v1", "namespaces", "Namespace", false, true);
  builtin("", "v1", "secrets", "Secret", true, false);
  builtin("", "v1", "configmaps", "ConfigMap", true, false);
  builtin("", "v1", "services", "Service", true, true);
  builtin("", "v1", "endpoints", "Endpoints", true, false);
  builtin("", "v1", "events", "Event", true, false, false, true);
  builtin("apps", "v1", "deployments", "Deployment", true, true, true);
  builtin("coordination.k8s.io", "v1", "leases", "Lease", true, false, false, true);
  builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
          false, true);
  {
    std::lock_guard lk(s.mu);
    const ResourceType* nst = s.findType("v1", "namespaces");
    for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      bj::object o{{"metadata", bj::object{{"name", ns}}}};
      (void)s.create(*nst, "", std::move(o));
    }
  }

  http::ServerOptions so;
  so.server_name = "tidegate-kube-apiserver-fixture";
  so.idle_timeout_s = 300;
  if (!options_.tls_certificate_file.empty()) {
    tls::ServerConfig cfg{options_.tls_certificate_file, options_.tls_key_file,
                          options_.tls_client_ca_file};
    auto ctx = tls::makeServerContext(cfg);
    if (!ctx) throw std::runtime_error("kube ApiServer TLS: " + ctx.error().message);
    auto st = tls::ServerTls::make(*ctx, cfg);
    if (!st) throw std::runtime_error("kube ApiServer TLS: " + st.error().message);
    so.tls = *st;
  }
  auto handler = std::make_shared<Handler>(s);
  s.server = std::make_unique<http::Server>(
      s.ioc, so, [handler](http::Exchange& ex) { return handler->handle(ex); });
  auto ep = s.server->listen("127.0.0.1", 0);
  if (!ep) throw std::runtime_error("kube ApiServer cannot listen: " + ep.error().message);
  port_ = s.port = ep->port();
  s.server->start();
  s.thread = std::thread([&s] { s.ioc.run(); });
}

ApiServer::~ApiServer() {
  auto& s = *impl_;
  asio::post(s.ioc, [&s] {
    s.server->stop();
    s.ioc.stop();
  });
  if (s.thread.joinable()) s.thread.join();
  std::lock_guard lk(s.mu);
  for (const auto& w : s.watches) w->timer = nullptr;
  s.watches.clear();
}

std::string ApiServer::url() const {
  return std::string(options_.tls_certificate_file.empty() ? "http" : "https") +
         "://127.0.0.1:" + std::to_string(port_);
}

void ApiServer::registerResource(const std::string& group, const std::string& version,
                                 const std::string& plural, const std::string& kind,
                                 bool namespaced, bool status_subresource) {
  ResourceType t{group, version, plural, kind, namespaced, status_subresource};
  t.custom = true;
  std::lock_guard lk(impl_->mu);
  impl_->addType(std::move(t));
}

std::optional<ResourceType> ApiServer::resourceType(const std::string& api_version,
                                                    const std::string& plural) const {
  std::lock_guard lk(impl_->mu);
  const auto* t = impl_->findType(api_version, plural);
  return t ? std::optional<ResourceType>(*t) : std::nullopt;
}

void ApiServer::deny(const std::string& verb, const std::string& api_group,
                     const std::string& resource) {
  std::lock_guard lk(impl_->mu);
  impl_->denies.push_back({verb, api_group, resource});
}

void ApiServer::allowAll() {
  std::lock_guard lk(impl_->mu);
  impl_->denies.clear();
}

void ApiServer::dropWatches() {
  std::lock_guard lk(impl_->mu);
  for (const auto& w : impl_->watches) {
    w->dropped = true;
    impl_->notify(w);
  }
}

void ApiServer::compact() {
  std::lock_guard lk(impl_->mu);
  impl_->history.clear();
}

void ApiServer::failNext(int count, Fault fault, std::string path_substring) {
  failNext(count, std::move(fault), [p = std::move(path_substring)](const RequestRecord& r) {
    return p.empty() || r.path.find(p) != std::string::npos;
  });
}

void ApiServer::failNext(int count, Fault fault, std::function<bool(const RequestRecord&)> match) {
  if (count <= 0) return;
  std::lock_guard lk(impl_->mu);
  impl_->faults.push_back({count, std::move(fault), std::move(match)});
}

std::vector<RequestRecord> ApiServer::requests() const {
  std::lock_guard lk(impl_->mu);
  return impl_->log;
}

void ApiServer::clearRequests() {
  std::lock_guard lk(impl_->mu);
  impl_->log.clear();
}

std::size_t ApiServer::watchCount() const {
  std::lock_guard lk(impl_->mu);
  return impl_->watches.size();
}

std::uint64_t ApiServer::resourceVersion() const {
  std::lock_guard lk(impl_->mu);
  return impl_->rv;
}

namespace {
ApiError unknownType(const std::string& api_version, const std::string& plural) {
  return make(
      404, "NotFound",
      "the server could not find the requested resource (" + api_version + " " + plural + ")");
}
}  // namespace

ApiResult<bj::object> ApiServer::create(const std::string& api_version, const std::string& plural,
                                        const std::string& ns, bj::object obj) {
  std::lock_guard lk(impl_->mu);
  const auto* t = impl_->findType(api_version, plural);
  if (!t) return unknownType(api_version, plural);
  return impl_->create(*t, ns, std::move(obj));
}

ApiResult<bj::object> ApiServer::get(const std::string& api_version, const std::string& plural,
                                     const std::string& ns, const std::string& name) const {
  std::lock_guard lk(impl_->mu);
  const auto* t = impl_->findType(api_version, plural);
  if (!t) return unknownType(api_version, plural);
  auto& b = impl_->bucket(*t);
  auto it = b.find(objKey(ns, name));
  if (it == b.end()) return notFound(*t, name);
  return it->second;
}

ApiResult<bj::object> ApiServer::update(const std::string& api_version, const std::string& plural,
                                        const std::string& ns, bj::object obj,
                                        const std::string& subresource) {
  std::lock_guard lk(impl_->mu);
  const auto* t = impl_->findType(api_version, plural);
  if (!t) return unknownType(api_version, plural);
  const std::string name = strAt(objAt(&obj, "metadata"), "name");
  if (subresource == "scale") return impl_->setScale(*t, ns, name, obj);
  return impl_->update(*t, ns, name, std::move(obj), subresource);
}

ApiResult<bj::object> ApiServer::patch(const std::string& api_version, const std::string& plural,
                                       const std::string& ns, const std::string& name,
                                       PatchType type, const bj::value& patch,
                                       const std::string& subresource) {
  std::lock_guard lk(impl_->mu);
  const auto* t = impl_->findType(api_version, plural);
  if (!t) return unknownType(api_version, plural);
  return impl_->patch(*t, ns, name, type, patch, subresource);
}

ApiResult<bj::object> ApiServer::remove(const std::string& api_version, const std::string& plural,
                                        const std::string& ns, const std::string& name,
                                        std::optional<std::int64_t> grace_period_s) {
  std::lock_guard lk(impl_->mu);
  const auto* t = impl_->findType(api_version, plural);
  if (!t) return unknownType(api_version, plural);
  return impl_->remove(*t, ns, name, grace_period_s, nullptr);
}

ApiResult<std::vector<bj::object>> ApiServer::list(const std::string& api_version,
                                                   const std::string& plural, const std::string& ns,
                                                   const std::string& label_selector) const {
  auto sel = LabelSelector::parse(label_selector);
  if (!sel) return badRequest(sel.error().message);
  std::lock_guard lk(impl_->mu);
  const auto* t = impl_->findType(api_version, plural);
  if (!t) return unknownType(api_version, plural);
  return impl_->select(*t, ns, *sel, FieldSelector{});
}

}  // namespace tidegate::testing::kube

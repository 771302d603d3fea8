#include "api/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "api/schema.h"
#include "api/yaml_stream.h"
#include "common/crypto.h"
#include "common/duration.h"
#include "common/url.h"

namespace tidegate::api {
namespace {

// A command line's words, as a POSIX shell splits them (without expansions).
Result<std::vector<std::string>> splitWords(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\') {
      if (++i == line.size()) return Error{"a backslash ends the command"};
      word += line[i];
    } else if (c == '\'' || c == '"') {
      const auto end = line.find(c, i + 1);
      if (end == std::string::npos)
        return Error{std::string("unterminated ") + (c == '"' ? "double" : "single") + " quote"};
      word += line.substr(i + 1, end - i - 1);
      i = end;
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return Error{"the command is empty"};
  return words;
}

// Thrown inside the loader only, turned into a Result at its boundary.
struct ConfigError {
  std::string message;
};

// Where we are: the file, the document, its description once known.
struct Context {
  std::string file;
  int document = 0;
  const SecretLookup* secret = nullptr;       // LoadOptions::secret, when set
  std::string what;                           // "InferenceModel inferencemodel-sample"
  std::vector<std::string>* notes = nullptr;  // Config::notes

  std::string where(const YAML::Node& at, const std::string& path) const {
    std::string w = file + ": document " + std::to_string(document);
    if (!what.empty()) w += " (" + what + ")";
    const auto mark = at.Mark();
    if (!mark.is_null()) w += ", line " + std::to_string(mark.line + 1);
    return w + ": " + (path.empty() ? "" : path + ": ");
  }
  [[noreturn]] void fail(const YAML::Node& at, const std::string& path,
                         const std::string& message) const {
    throw ConfigError{where(at, path) + message};
  }
  // Something accepted and not acted on, for `tidegate check` (Config::notes).
  void note(const YAML::Node& at, const std::string& path, const std::string& message) const {
    if (notes) notes->push_back(where(at, path) + message);
  }
};

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return "\"" + n.Scalar() + "\"";
    default:
      return "an undefined value";
  }
}

bool absent(const YAML::Node& n) { return !n.IsDefined() || n.IsNull(); }

// "a, b or c"
std::string alternatives(const std::vector<std::string>& choices) {
  std::string out;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
    out += choices[i];
  }
  return out;
}

using SchemaType = SchemaNode::Type;

// The patterns the schema gives to text that accessors below parse by hand. The parsing is the
// rule; a pattern summarises it for the API server (crd_test.cc checks that the two agree).
constexpr const char* kHostPortPattern = "^.+:[0-9]{1,5}$";
constexpr const char* kDurationPattern =
    "^([0-9]+(\\.[0-9]+)?|([0-9]+(\\.[0-9]+)?(us|ms|s|m|h))+)$";
constexpr const char* kTimestampPattern =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:"
    "[0-9]{2}))?$";

// A map whose keys must all be consumed: finish() reports the first unknown one.
// With a schema node (a recording parse, schema.h), every accessor also records the type, bounds
// and requiredness of the field it reads, whether or not the field is present.
class Fields {
 public:
  Fields(const Context& ctx, const YAML::Node& node, std::string path, SchemaNode* schema = nullptr)
      : ctx_(ctx), node_(node), path_(std::move(path)) {
    if (!node.IsMap()) ctx_.fail(node, path_, "expected a map, got " + describe(node));
    record(schema, /*present=*/true);
  }

  // Records what this map's accessors read into `schema` (null: no recording). `present`: the
  // map is in the document (an absent one reads as empty and does not count for requiredness).
  void record(SchemaNode* schema, bool present) {
    schema_ = schema;
    if (!schema_) return;
    schema_->setType(SchemaType::kObject);
    if (present) visit_ = ++schema_->visits;
  }

  std::string sub(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  // The value of `key`, or an undefined node if absent. Marks the key known (and, recording,
  // leaves it untyped until a typed accessor reads it).
  YAML::Node get(const std::string& key) {
    known_.insert(key);
    field(key);
    return node_[key];
  }
  YAML::Node required(const std::string& key) {
    auto n = get(key);
    if (schema_) schema_->requireIn(key, visit_);
    if (absent(n)) ctx_.fail(node_, sub(key), "required field is missing");
    return n;
  }
  // Accepts a field without using it (documented as accepted and ignored).
  void ignore(const std::string& key) {
    known_.insert(key);
    if (auto* s = field(key)) s->setType(SchemaType::kAny);
  }
  // The same, and when the field is present, a note saying why it changes nothing (`check`
  // prints it): for fields of other systems' kinds that tidegate has no use for.
  void ignoreNoted(const std::string& key, const std::string& why) {
    ignore(key);
    if (const auto n = node_[key]; n.IsDefined() && !n.IsNull()) ctx_.note(n, sub(key), why);
  }

  std::string str(const std::string& key, const std::string& def = {}, bool req = false) {
    typed(key, SchemaType::kString);
    auto n = req ? required(key) : get(key);
    if (absent(n)) return def;
    if (!n.IsScalar()) ctx_.fail(n, sub(key), "expected a string, got " + describe(n));
    return n.Scalar();
  }
  // A string that must be one of `choices` (absent: `def`, which need not be one of them).
  std::string oneOf(const std::string& key, const std::string& def,
                    const std::vector<std::string>& choices, bool req = false) {
    if (auto* s = typed(key, SchemaType::kString); s && s->choices.empty()) s->choices = choices;
    auto n = req ? required(key) : get(key);
    if (absent(n)) return def;
    const auto v = str(key);
    if (std::find(choices.begin(), choices.end(), v) == choices.end())
      ctx_.fail(n, sub(key),
                (choices.size() == 1 ? "only " + choices[0] + " is supported"
                                     : "expected " + alternatives(choices)) +
                    ", got \"" + v + "\"");
    return v;
  }
  long integer(const std::string& key, long def, long lo, long hi, bool req = false) {
    if (auto* s = typed(key, SchemaType::kInteger))
      s->widen(static_cast<double>(lo), static_cast<double>(hi));
    auto n = req ? required(key) : get(key);
    if (absent(n)) return def;
    long v = 0;
    if (!n.IsScalar() || !YAML::convert<long>::decode(n, v))
      ctx_.fail(n, sub(key), "expected an integer, got " + describe(n));
    if (v < lo || v > hi)
      ctx_.fail(n, sub(key),
                "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                    std::to_string(v));
    return v;
  }
  double number(const std::string& key, double def, double lo, double hi, bool req = false) {
    if (auto* s = typed(key, SchemaType::kNumber)) s->widen(lo, hi);
    auto n = req ? required(key) : get(key);
    if (absent(n)) return def;
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v))
      ctx_.fail(n, sub(key), "expected a number, got " + describe(n));
    if (v < lo || v > hi)
      ctx_.fail(n, sub(key),
                "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return v;
  }
  bool boolean(const std::string& key, bool def) {
    typed(key, SchemaType::kBoolean);
    auto n = get(key);
    if (absent(n)) return def;
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
      ctx_.fail(n, sub(key), "expected true or false, got " + describe(n));
    return v;
  }
  // Seconds, from "500ms", "30s", "1m30s" or a bare number of seconds (common/duration.h).
  double duration(const std::string& key, double def) {
    if (auto* s = typed(key, SchemaType::kIntOrString)) {
      s->pattern = kDurationPattern;
      s->minimum = 0;
      s->description =
          "A duration: 500ms, 30s, 2m, 1h30m (units us, ms, s, m, h); a bare "
          "number is seconds.";
    }
    auto n = get(key);
    if (absent(n)) return def;
    if (!n.IsScalar()) ctx_.fail(n, sub(key), "expected a duration, got " + describe(n));
    auto d = parseDuration(n.Scalar());
    if (!d) ctx_.fail(n, sub(key), d.error().message);
    return *d;
  }
  // Unix seconds from an RFC 3339 timestamp or a bare date (common/duration.h); nullopt if absent.
  std::optional<double> timestamp(const std::string& key) {
    if (auto* s = typed(key, SchemaType::kString)) {
      s->pattern = kTimestampPattern;
      s->description = "RFC 3339 (2027-01-01T00:00:00Z) or a date (2027-01-01, midnight UTC).";
    }
    auto n = get(key);
    if (absent(n)) return std::nullopt;
    auto t = parseTimestamp(str(key));
    if (!t) ctx_.fail(n, sub(key), t.error().message);
    return *t;
  }
  // "HOST:PORT"; port 0 ("any free port") only where `allow_zero` (listen addresses).
  HostPort hostPort(const std::string& key, HostPort def, bool allow_zero) {
    recordHostPort(typed(key, SchemaType::kString));
    auto n = get(key);
    if (absent(n)) return def;
    return parseHostPort(n, sub(key), allow_zero);
  }
  // A required, non-empty list of "HOST:PORT" (port 1-65535).
  std::vector<HostPort> hostPorts(const std::string& key) {
    if (auto* s = typed(key, SchemaType::kArray)) {
      s->min_items = 1;
      s->itemSchema().setType(SchemaType::kString);
      recordHostPort(&s->itemSchema());
      schema_->requireIn(key, visit_);
    }
    auto n = get(key);
    if (!n.IsDefined() || !n.IsSequence() || n.size() == 0)
      ctx_.fail(node_, sub(key), "expected a non-empty list of HOST:PORT");
    std::vector<HostPort> out;
    for (std::size_t i = 0; i < n.size(); ++i)
      out.push_back(parseHostPort(n[i], sub(key) + "[" + std::to_string(i) + "]", false));
    return out;
  }
  // Hex digits of `bytes` bytes (a SHA-256 is 32), decoded; empty if absent.
  std::string hexBytes(const std::string& key, std::size_t bytes, const std::string& what) {
    if (auto* s = typed(key, SchemaType::kString))
      s->pattern = "^[0-9a-fA-F]{" + std::to_string(2 * bytes) + "}$";
    const auto hex = str(key);
    if (hex.empty()) return {};
    auto out = crypto::fromHex(hex);
    if (out.size() != bytes)
      ctx_.fail(get(key), sub(key),
                "expected " + std::to_string(2 * bytes) + " hex digits (" + what + ")");
    return out;
  }
  Labels stringMap(const std::string& key, bool req = false) {
    if (auto* s = typed(key, SchemaType::kObject)) s->valueSchema().setType(SchemaType::kString);
    auto n = req ? required(key) : get(key);
    Labels out;
    if (absent(n)) return out;
    if (!n.IsMap()) ctx_.fail(n, sub(key), "expected a map of strings, got " + describe(n));
    for (const auto& kv : n) {
      if (!kv.second.IsScalar())
        ctx_.fail(kv.second, sub(key) + "." + kv.first.Scalar(), "expected a string");
      out[kv.first.Scalar()] = kv.second.Scalar();
    }
    return out;
  }
  // Nested map reader; fails if present and not a map. Absent: an empty map.
  Fields map(const std::string& key, bool req = false) {
    auto* s = typed(key, SchemaType::kObject);
    auto n = req ? required(key) : get(key);
    if (absent(n)) {
      Fields f(ctx_, YAML::Node(YAML::NodeType::Map), sub(key));
      f.record(s, /*present=*/false);
      return f;
    }
    return Fields(ctx_, n, sub(key), s);
  }
  // List items as Fields, for lists of maps.
  std::vector<Fields> list(const std::string& key, bool req = false) {
    auto* s = typed(key, SchemaType::kArray);
    auto n = req ? required(key) : get(key);
    std::vector<Fields> out;
    if (absent(n)) return out;
    if (!n.IsSequence()) ctx_.fail(n, sub(key), "expected a list, got " + describe(n));
    for (std::size_t i = 0; i < n.size(); ++i)
      out.emplace_back(ctx_, n[i], sub(key) + "[" + std::to_string(i) + "]",
                       s ? &s->itemSchema() : nullptr);
    return out;
  }
  std::vector<std::string> strings(const std::string& key) {
    if (auto* s = typed(key, SchemaType::kArray)) s->itemSchema().setType(SchemaType::kString);
    return readStrings(get(key), key);
  }
  // One string (a whole command line, split into words as a shell would: blanks separate,
  // single and double quotes and backslashes keep them; no variables, globs or operators) or a
  // list of strings (argv).
  std::vector<std::string> stringOrStrings(const std::string& key, const std::string& what) {
    if (auto* s = typed(key, SchemaType::kAny)) s->description = what;
    auto n = get(key);
    if (!absent(n) && n.IsScalar()) {
      auto words = splitWords(n.Scalar());
      if (!words) ctx_.fail(n, sub(key), words.error().message);
      return std::move(words).value();
    }
    if (!absent(n) && !n.IsSequence())
      ctx_.fail(n, sub(key), "expected a string or a list of strings, got " + describe(n));
    return readStrings(n, key);
  }

  void finish() const {
    for (const auto& kv : node_) {
      const std::string k = kv.first.Scalar();
      if (!known_.contains(k)) ctx_.fail(kv.first, sub(k), "unknown field");
    }
  }
  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }
  const Context& ctx() const { return ctx_; }

 private:
  // The schema node of field `key`, or null when not recording.
  SchemaNode* field(const std::string& key) { return schema_ ? &schema_->property(key) : nullptr; }
  SchemaNode* typed(const std::string& key, SchemaType t) {
    auto* s = field(key);
    if (s) s->setType(t);
    return s;
  }
  std::vector<std::string> readStrings(const YAML::Node& n, const std::string& key) const {
    std::vector<std::string> out;
    if (absent(n)) return out;
    if (!n.IsSequence()) ctx_.fail(n, sub(key), "expected a list of strings, got " + describe(n));
    for (std::size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsScalar())
        ctx_.fail(n[i], sub(key) + "[" + std::to_string(i) + "]", "expected a string");
      out.push_back(n[i].Scalar());
    }
    return out;
  }
  static void recordHostPort(SchemaNode* s) {
    if (!s) return;
    s->pattern = kHostPortPattern;
    s->description = "HOST:PORT";
  }

  HostPort parseHostPort(const YAML::Node& n, const std::string& path, bool allow_zero) const {
    if (!n.IsScalar()) ctx_.fail(n, path, "expected HOST:PORT, got " + describe(n));
    const std::string s = n.Scalar();
    const auto colon = s.rfind(':');
    long port = -1;
    if (colon != std::string::npos && colon > 0 && colon + 1 < s.size() &&
        s.find_first_not_of("0123456789", colon + 1) == std::string::npos && s.size() - colon < 7)
      port = std::stol(s.substr(colon + 1));
    if (port < (allow_zero ? 0 : 1) || port > 65535)
      ctx_.fail(n, path, "expected HOST:PORT, got \"" + s + "\"");
    return {s.substr(0, colon), static_cast<std::uint16_t>(port)};
  }

  const Context& ctx_;
  YAML::Node node_;
  std::string path_;
  std::set<std::string> known_;
  SchemaNode* schema_ = nullptr;
  int visit_ = 0;
};

// metadata; its annotations too when asked for (`annotations` not null), else ignored.
ObjectMeta readMeta(Fields& top, Labels* annotations = nullptr) {
  auto m = top.map("metadata", true);
  ObjectMeta meta;
  meta.name = m.str("name", {}, true);
  meta.ns = m.str("namespace", "default");
  meta.labels = m.stringMap("labels");
  if (annotations) {
    *annotations = m.stringMap("annotations");
  } else {
    m.ignore("annotations");
  }
  m.ignore("uid");
  m.ignore("resourceVersion");
  m.ignore("generation");
  m.ignore("creationTimestamp");
  m.finish();
  return meta;
}

// A resource of kind T with its source and metadata read; the caller reads its spec.
template <class T>
T startResource(Fields& top, const Source& src) {
  T r;
  r.source = src;
  r.meta = readMeta(top);
  return r;
}

constexpr const char* kXk8s = "inference.networking.x-k8s.io/";
constexpr const char* kK8sV1 = "inference.networking.k8s.io/v1";
constexpr const char* kTidegate = "tidegate.io/v1alpha1";

// A reference to an endpoint picker, as written, for messages ("Service epp:9002, FailClose").
std::string pickerRef(const std::string& kind, const std::string& name, long port,
                      const std::string& failure_mode) {
  return kind + " " + name + (port > 0 ? ":" + std::to_string(port) : "") + ", " + failure_mode;
}

void readPool(Fields& top, const std::string& api, Config& c, Source src) {
  auto p = startResource<InferencePool>(top, src);
  p.api_version = api;
  auto spec = top.map("spec", true);
  const char* kPickerNote =
      "accepted and not called: tidegate is the endpoint picker of this pool (its filters and "
      "scorers, docs/gateway.md)";
  if (api == kK8sV1) {
    auto sel = spec.map("selector", true);
    p.selector = sel.stringMap("matchLabels", true);
    if (p.selector.size() > 64)
      sel.ctx().fail(sel.get("matchLabels"), sel.sub("matchLabels"), "at most 64 labels");
    sel.finish();
    auto ports = spec.list("targetPorts", true);
    if (ports.empty()) spec.ctx().fail(spec.node(), spec.sub("targetPorts"), "needs one port");
    if (ports.size() > 8)
      spec.ctx().fail(spec.get("targetPorts"), spec.sub("targetPorts"),
                      "at most 8 ports, got " + std::to_string(ports.size()));
    for (auto& port : ports) {
      const auto n = static_cast<std::uint16_t>(port.integer("number", 0, 1, 65535, true));
      if (std::find(p.target_ports.begin(), p.target_ports.end(), n) != p.target_ports.end())
        port.ctx().fail(port.get("number"), port.sub("number"),
                        "port " + std::to_string(n) + " is given twice");
      p.target_ports.push_back(n);
      port.finish();
    }
    // HTTP/1.1 is what tidegate speaks to engines; h2c (gRPC) would need another client.
    spec.oneOf("appProtocol", "http", {"http"});
    if (auto e = spec.get("endpointPickerRef"); e.IsDefined() && !e.IsNull()) {
      auto epp = spec.map("endpointPickerRef");
      epp.ignore("group");
      const auto kind = epp.str("kind", "Service");
      const auto name = epp.str("name", {}, true);
      if (kind == "Service" && absent(epp.get("port")))
        epp.ctx().fail(epp.node(), epp.sub("port"),
                       "required when kind is Service (the default): the picker's service port");
      long number = 0;
      if (!absent(epp.get("port"))) {
        auto port = epp.map("port");
        number = port.integer("number", 0, 1, 65535, true);
        port.finish();
      }
      const auto mode = epp.oneOf("failureMode", "FailClose", {"FailOpen", "FailClose"});
      epp.finish();
      p.endpoint_picker = pickerRef(kind, name, number, mode);
      spec.ctx().note(e, spec.sub("endpointPickerRef"), p.endpoint_picker + ": " + kPickerNote);
    }
  } else {
    p.selector = spec.stringMap("selector", true);
    p.target_ports = {
        static_cast<std::uint16_t>(spec.integer("targetPortNumber", 0, 1, 65535, true))};
    if (auto e = spec.get("extensionRef"); e.IsDefined() && !e.IsNull()) {
      auto ext = spec.map("extensionRef");
      for (const char* k : {"group", "targetPortNumber"}) ext.ignore(k);
      const auto kind = ext.str("kind", "Service");
      const auto name = ext.str("name", {}, true);
      const long number = ext.integer("portNumber", 0, 1, 65535);
      const auto mode = ext.oneOf("failureMode", "FailClose", {"FailOpen", "FailClose"});
      ext.finish();
      p.endpoint_picker = pickerRef(kind, name, number, mode);
      spec.ctx().note(e, spec.sub("extensionRef"), p.endpoint_picker + ": " + kPickerNote);
    }
  }
  if (p.selector.empty()) spec.ctx().fail(spec.node(), spec.sub("selector"), "must not be empty");
  spec.finish();
  c.pools.push_back(std::move(p));
}

// The pool a reference names (InferenceModel, InferenceModelRewrite and InferenceObjective
// spec.poolRef, LLMRoute and HTTPRoute backendRefs): `kind`, if given, must be InferencePool
// (HTTPRoute's default is Service, which tidegate cannot route to); group and namespace are
// accepted. Reads the fields of a reference only: the caller finishes the map.
std::string poolRefName(Fields& ref, const std::string& default_kind = "InferencePool") {
  const auto kind = ref.str("kind", default_kind);
  if (kind != "InferencePool")
    ref.ctx().fail(ref.node(), ref.sub("kind"),
                   "only InferencePool is supported, got " + kind +
                       (ref.get("kind").IsDefined() ? "" : " (the default)"));
  ref.ignore("group");
  ref.ignore("namespace");
  return ref.str("name", {}, true);
}

std::string readPoolRef(Fields ref) {
  auto name = poolRefName(ref);
  ref.finish();
  return name;
}

void readModel(Fields& top, Config& c, Source src) {
  auto m = startResource<InferenceModel>(top, src);
  auto spec = top.map("spec", true);
  m.model_name = spec.str("modelName", {}, true);
  const auto crit = spec.str("criticality", "Standard");
  if (crit == "Critical") {
    m.criticality = Criticality::kCritical;
  } else if (crit == "Standard") {
    m.criticality = Criticality::kStandard;
  } else if (crit == "Sheddable") {
    m.criticality = Criticality::kSheddable;
  } else {
    spec.ctx().fail(spec.get("criticality"), spec.sub("criticality"),
                    "expected Critical, Standard or Sheddable, got \"" + crit + "\"");
  }
  for (auto& t : spec.list("targetModels")) {
    TargetModel tm;
    tm.name = t.str("name", {}, true);
    tm.weight = static_cast<int>(t.integer("weight", 1, 0, 1000000));
    t.finish();
    m.targets.push_back(std::move(tm));
  }
  if (!m.targets.empty()) {
    long total = 0;
    for (const auto& t : m.targets) total += t.weight;
    if (total == 0) spec.ctx().fail(spec.node(), spec.sub("targetModels"), "weights sum to 0");
  }
  m.pool = readPoolRef(spec.map("poolRef", true));
  spec.finish();
  c.models.push_back(std::move(m));
}

// InferenceModelRewrite: each rule becomes one InferenceModel per model name it matches (all
// with the rule's targets), or a fallback InferenceModel when it matches nothing in particular.
void readRewrite(Fields& top, Config& c, Source src) {
  const auto meta = readMeta(top);
  auto spec = top.map("spec", true);
  const auto pool = readPoolRef(spec.map("poolRef", true));
  auto rules = spec.list("rules", true);
  for (std::size_t i = 0; i < rules.size(); ++i) {
    auto& rule = rules[i];
    InferenceModel m;
    m.meta = meta;
    m.source = src;
    m.kind = "InferenceModelRewrite";
    m.rule = static_cast<int>(i);
    m.pool = pool;
    auto targets = rule.list("targets");
    if (rule.get("targets").IsDefined() && targets.empty())
      rule.ctx().fail(rule.get("targets"), rule.sub("targets"), "needs at least one target");
    std::size_t weighted = 0;
    for (auto& t : targets) {
      TargetModel tm;
      tm.name = t.str("modelRewrite", {}, true);
      if (tm.name.empty()) t.ctx().fail(t.node(), t.sub("modelRewrite"), "must not be empty");
      weighted += !absent(t.get("weight"));
      tm.weight = static_cast<int>(t.integer("weight", 1, 1, 1000000));
      t.finish();
      m.targets.push_back(std::move(tm));
    }
    // The Extension's rule: weights on every target or on none (then the split is even).
    if (weighted > 0 && weighted < targets.size())
      rule.ctx().fail(rule.get("targets"), rule.sub("targets"),
                      "give a weight to every target or to none (" + std::to_string(weighted) +
                          " of " + std::to_string(targets.size()) + " have one)");
    std::vector<std::string> names;
    for (auto& match : rule.list("matches")) {
      auto model = match.map("model", true);
      model.oneOf("type", "Exact", {"Exact"});
      auto value = model.str("value", {}, true);
      if (value.empty()) model.ctx().fail(model.node(), model.sub("value"), "must not be empty");
      model.finish();
      match.finish();
      names.push_back(std::move(value));
    }
    rule.finish();
    if (names.empty()) {
      m.fallback = true;
      c.models.push_back(std::move(m));
    }
    for (auto& name : names) {
      auto copy = m;
      copy.model_name = std::move(name);
      c.models.push_back(std::move(copy));
    }
  }
  spec.finish();
}

void readObjective(Fields& top, Config& c, Source src) {
  auto o = startResource<InferenceObjective>(top, src);
  auto spec = top.map("spec", true);
  o.priority = static_cast<int>(spec.integer("priority", 0, -2147483648L, 2147483647L));
  o.pool = readPoolRef(spec.map("poolRef", true));
  spec.finish();
  c.objectives.push_back(std::move(o));
}

void readLLMRoute(Fields& top, Config& c, Source src) {
  auto r = startResource<HTTPRoute>(top, src);
  r.kind = "LLMRoute";
  auto spec = top.map("spec", true);
  r.hostnames = {spec.str("host", {}, true)};
  r.parents = spec.strings("gateways");
  // One rule for the host, without matches: the pools of all its rules are the candidates.
  HTTPRouteRule all;
  for (auto& rule : spec.list("rules", true)) {
    for (auto& b : rule.list("backendRefs", true)) {
      RouteBackend backend;
      backend.pool = readPoolRef(b.map("backendRef", true));
      backend.weight = static_cast<int>(b.integer("weight", 1, 0, 1000000));
      b.finish();
      all.backends.push_back(std::move(backend));
    }
    rule.ignore("name");
    rule.finish();
  }
  r.rules.push_back(std::move(all));
  spec.finish();
  c.routes.push_back(std::move(r));
}

// RFC 1123 host names, with an optional leading "*." label: what HTTPRoute.spec.hostnames allow.
bool validHostname(std::string_view h) {
  if (h.starts_with("*.")) h.remove_prefix(2);
  if (h.empty() || h.size() > 253) return false;
  std::size_t start = 0;
  while (start <= h.size()) {
    auto end = h.find('.', start);
    if (end == std::string_view::npos) end = h.size();
    const auto label = h.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char ch : label)
      if (!(std::islower(static_cast<unsigned char>(ch)) ||
            std::isdigit(static_cast<unsigned char>(ch)) || ch == '-'))
        return false;
    start = end + 1;
  }
  return true;
}

// An HTTP header (or query parameter) name: a token of RFC 9110.
bool validToken(std::string_view t) {
  if (t.empty() || t.size() > 256) return false;
  for (char ch : t)
    if (!std::isalnum(static_cast<unsigned char>(ch)) &&
        std::string_view("!#$%&'*+-.^_`|~").find(ch) == std::string_view::npos)
      return false;
  return true;
}

// A list of {type: Exact, name, value} (HTTPRoute matches' headers and queryParams), as (name,
// value) pairs; names lower-cased when `fold_case` (header names are case-insensitive).
std::vector<std::pair<std::string, std::string>> readNameValues(Fields& f, const std::string& key,
                                                                bool fold_case) {
  std::vector<std::pair<std::string, std::string>> out;
  auto items = f.list(key);
  if (items.size() > 16)
    f.ctx().fail(f.get(key), f.sub(key), "at most 16, got " + std::to_string(items.size()));
  for (auto& i : items) {
    i.oneOf("type", "Exact", {"Exact"});
    auto name = i.str("name", {}, true);
    if (!validToken(name))
      i.ctx().fail(i.get("name"), i.sub("name"), "\"" + name + "\" is not a valid name");
    if (fold_case)
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto value = i.str("value", {}, true);
    if (value.empty()) i.ctx().fail(i.get("value"), i.sub("value"), "must not be empty");
    i.finish();
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

// HTTPRoute (gateway.networking.k8s.io/v1): hostnames, rules of matches and weighted
// InferencePool backends. Filters change requests in ways tidegate does not implement: errors.
void readHTTPRoute(Fields& top, Config& c, Source src) {
  auto r = startResource<HTTPRoute>(top, src);
  auto spec = top.map("spec", true);
  for (auto& parent : spec.list("parentRefs")) {
    for (const char* k : {"group", "kind", "namespace", "sectionName", "port"}) parent.ignore(k);
    r.parents.push_back(parent.str("name", {}, true));
    parent.finish();
  }
  r.hostnames = spec.strings("hostnames");
  if (r.hostnames.size() > 16)
    spec.ctx().fail(spec.get("hostnames"), spec.sub("hostnames"),
                    "at most 16, got " + std::to_string(r.hostnames.size()));
  for (std::size_t i = 0; i < r.hostnames.size(); ++i)
    if (!validHostname(r.hostnames[i]))
      spec.ctx().fail(spec.get("hostnames")[i], spec.sub("hostnames[" + std::to_string(i) + "]"),
                      "\"" + r.hostnames[i] +
                          "\" is not a host name (lower-case RFC 1123 labels, optionally after "
                          "\"*.\")");
  auto rules = spec.list("rules", true);
  if (rules.empty() || rules.size() > 16)
    spec.ctx().fail(spec.get("rules"), spec.sub("rules"),
                    "needs 1 to 16 rules, got " + std::to_string(rules.size()));
  const char* kFilters =
      "filters are not supported: tidegate forwards requests unchanged except for the model";
  for (auto& rule : rules) {
    HTTPRouteRule out;
    rule.ignore("name");
    if (!rule.list("filters").empty())
      rule.ctx().fail(rule.get("filters"), rule.sub("filters"), kFilters);
    auto matches = rule.list("matches");
    if (matches.size() > 64)
      rule.ctx().fail(rule.get("matches"), rule.sub("matches"),
                      "at most 64, got " + std::to_string(matches.size()));
    for (auto& match : matches) {
      HTTPRouteMatch m;
      auto path = match.map("path");
      const auto type = path.oneOf("type", "PathPrefix", {"PathPrefix", "Exact"});
      m.path_type = type == "Exact" ? HTTPRouteMatch::Path::kExact : HTTPRouteMatch::Path::kPrefix;
      m.path = path.str("value", "/");
      if (!m.path.starts_with("/") || m.path.size() > 1024)
        path.ctx().fail(path.get("value"), path.sub("value"),
                        "must start with \"/\" (at most 1024 characters), got \"" + m.path + "\"");
      path.finish();
      m.headers = readNameValues(match, "headers", /*fold_case=*/true);
      m.query = readNameValues(match, "queryParams", /*fold_case=*/false);
      m.method = match.oneOf(
          "method", {},
          {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"});
      match.finish();
      out.matches.push_back(std::move(m));
    }
    auto backends = rule.list("backendRefs", true);
    if (backends.empty() || backends.size() > 16)
      rule.ctx().fail(rule.get("backendRefs"), rule.sub("backendRefs"),
                      "needs 1 to 16 backends, got " + std::to_string(backends.size()));
    for (auto& b : backends) {
      RouteBackend backend;
      backend.pool = poolRefName(b, "Service");
      backend.weight = static_cast<int>(b.integer("weight", 1, 0, 1000000));
      b.ignoreNoted("port", "ignored: an InferencePool's endpoints are reached on its targetPorts");
      if (!b.list("filters").empty()) b.ctx().fail(b.get("filters"), b.sub("filters"), kFilters);
      b.finish();
      out.backends.push_back(std::move(backend));
    }
    auto timeouts = rule.map("timeouts");
    out.timeout_s = timeouts.duration("request", 0);
    timeouts.ignoreNoted("backendRequest",
                         "ignored: each attempt is bounded by the Gateway's spec.timeouts "
                         "(connect, firstByte, idle)");
    timeouts.finish();
    rule.finish();
    r.rules.push_back(std::move(out));
  }
  spec.finish();
  c.routes.push_back(std::move(r));
}

void readEndpoints(Fields& top, Config& c, Source src) {
  auto e = startResource<Endpoints>(top, src);
  auto spec = top.map("spec", true);
  e.addresses = spec.hostPorts("addresses");
  const auto scheme = spec.oneOf("scheme", "http", {"http", "https"});
  for (auto& a : e.addresses) a.tls = scheme == "https";
  spec.finish();
  c.endpoints.push_back(std::move(e));
}

void readResourcePolicy(Fields& top, Config& c, Source src) {
  auto r = startResource<ResourcePolicy>(top, src);
  auto spec = top.map("spec", true);
  r.selector = spec.stringMap("selector", true);
  const auto strategy = spec.str("strategy", "prefer");
  if (strategy != "prefer")
    spec.ctx().fail(spec.node(), spec.sub("strategy"),
                    "only \"prefer\" is supported, got \"" + strategy + "\"");
  for (auto& u : spec.list("units", true)) {
    ResourcePolicy::Unit unit;
    unit.resource = u.str("resource", "ecs");
    unit.node_selector = u.stringMap("nodeSelector");
    if (auto m = u.get("max"); m.IsDefined() && !m.IsNull())
      unit.max = static_cast<int>(u.integer("max", 0, 0, 1000000));
    for (const char* k : {"podLabels", "podAnnotations"}) u.ignore(k);
    u.finish();
    r.units.push_back(std::move(unit));
  }
  auto when = spec.map("whenTryNextUnits");
  r.when = when.str("policy", r.when);
  if (r.when != "LackResourceOrExceedMax" && r.when != "ExceedMax" &&
      r.when != "TimeoutOrExceedMax")
    when.ctx().fail(when.node(), when.sub("policy"),
                    "expected LackResourceOrExceedMax, ExceedMax or TimeoutOrExceedMax, got \"" +
                        r.when + "\"");
  r.timeout_s = when.duration("timeout", 0);
  when.finish();
  for (const char* k :
       {"preemptPolicy", "ignorePreviousPod", "ignoreTerminatingPod", "matchLabelKeys"})
    spec.ignore(k);
  spec.finish();
  c.resource_policies.push_back(std::move(r));
}

void readNodePool(Fields& top, Config& c, Source src) {
  auto p = startResource<NodePool>(top, src);
  auto spec = top.map("spec", true);
  const auto kind = spec.oneOf("kind", {}, {"fixed", "elastic"}, true);
  p.elastic = kind == "elastic";
  if (p.elastic) {
    p.min_nodes = static_cast<int>(spec.integer("minNodes", 0, 0, 10000));
    p.max_nodes = static_cast<int>(spec.integer("maxNodes", 0, 1, 10000, true));
    if (p.max_nodes < p.min_nodes)
      spec.ctx().fail(spec.node(), spec.sub("maxNodes"), "must be at least minNodes");
    p.provisioning_delay_s = spec.duration("provisioningDelay", 0);
    p.scale_down_unneeded_s = spec.duration("scaleDownUnneededTime", p.scale_down_unneeded_s);
  } else {
    p.min_nodes = p.max_nodes = static_cast<int>(spec.integer("nodes", 0, 0, 10000, true));
  }
  p.gpus_per_node = static_cast<int>(spec.integer("gpusPerNode", 1, 0, 64));
  p.price_per_node_hour = spec.number("pricePerNodeHour", 0, 0, 1e6);
  p.provider = spec.oneOf("provider", "local", {"local"});
  spec.finish();
  c.node_pools.push_back(std::move(p));
}

control::ScalingRules readRules(Fields f, control::ScalingRules rules) {
  rules.stabilization_s = static_cast<double>(
      f.integer("stabilizationWindowSeconds", static_cast<long>(rules.stabilization_s), 0, 3600));
  const auto select = f.oneOf("selectPolicy", "Max", {"Max", "Min", "Disabled"});
  if (select == "Max") {
    rules.select = control::ScalingRules::Select::kMax;
  } else if (select == "Min") {
    rules.select = control::ScalingRules::Select::kMin;
  } else {
    rules.select = control::ScalingRules::Select::kDisabled;
  }
  auto policies = f.list("policies");
  if (!policies.empty()) rules.policies.clear();
  for (auto& p : policies) {
    control::ScalingPolicy sp;
    const auto type = p.oneOf("type", {}, {"Pods", "Percent"}, true);
    sp.type = type == "Pods" ? control::ScalingPolicy::Type::kPods
                             : control::ScalingPolicy::Type::kPercent;
    sp.value = static_cast<int>(p.integer("value", 0, 1, 100000, true));
    sp.period_s = static_cast<double>(p.integer("periodSeconds", 0, 1, 1800, true));
    p.finish();
    rules.policies.push_back(sp);
  }
  f.finish();
  return rules;
}

void readService(Fields& top, Config& c, Source src) {
  auto s = startResource<InferenceService>(top, src);
  auto spec = top.map("spec", true);
  s.served_model_name = spec.str("servedModelName", s.meta.name);
  s.command = spec.stringOrStrings("command",
                                   "The engine's command: one string (split into words as a shell "
                                   "would, without expansions) or a list of strings.");
  // On Kubernetes: the image of the replicas' container and the port {port} stands for.
  s.image = spec.str("image");
  s.port = static_cast<int>(spec.integer("port", 0, 1, 65535));
  auto volume = spec.map("modelVolume");
  s.model_volume.claim_name = volume.str("claimName");
  s.model_volume.mount_path = volume.str("mountPath");
  if (s.model_volume.claim_name.empty() != s.model_volume.mount_path.empty())
    volume.ctx().fail(volume.node(), volume.path(), "needs both claimName and mountPath");
  volume.finish();
  auto res = spec.map("resources");
  s.gpus = static_cast<int>(res.integer("gpus", 1, 0, 64));
  s.cpu = res.str("cpu");
  s.memory = res.str("memory");
  res.finish();
  s.min_replicas = static_cast<int>(spec.integer("minReplicas", 1, 0, 10000));
  s.max_replicas = static_cast<int>(spec.integer("maxReplicas", s.min_replicas, 1, 10000));
  if (s.max_replicas < s.min_replicas)
    spec.ctx().fail(spec.node(), spec.sub("maxReplicas"), "must be at least minReplicas");
  // The range of a Kubernetes PriorityClass value a user may give (above 1e9 is the system's).
  s.priority = static_cast<int>(spec.integer("priority", 0, -2147483648L, 1000000000L));
  for (auto& m : spec.list("metrics")) {
    std::string name = m.str("metric");
    auto prom = m.map("prometheus");
    if (!prom.node().IsMap() || prom.node().size() == 0) {
      if (name.empty())
        m.ctx().fail(m.node(), m.sub("metric"), "required (or prometheus: {url, query})");
    } else {
      if (!name.empty())
        m.ctx().fail(m.node(), m.path(), "give either metric or prometheus, not both");
      InferenceService::PromQuery q{prom.str("url", {}, true), prom.str("query", {}, true)};
      if (auto u = parseUrl(q.url); !u)
        m.ctx().fail(prom.node(), prom.sub("url"), u.error().message);
      name = "prometheus:" + q.query;
      s.prometheus[name] = std::move(q);
    }
    prom.finish();
    s.metric_targets[name] = m.number("target", 0, 0, 1e12, /*req=*/true);
    if (s.metric_targets[name] <= 0) m.ctx().fail(m.node(), m.sub("target"), "required, > 0");
    m.finish();
  }
  auto behavior = spec.map("behavior");
  s.behavior.scale_up = readRules(behavior.map("scaleUp"), s.behavior.scale_up);
  s.behavior.scale_down = readRules(behavior.map("scaleDown"), s.behavior.scale_down);
  behavior.finish();
  auto panic = spec.map("panic");
  s.panic.enabled = panic.boolean("enabled", false);
  s.panic.threshold = panic.number("threshold", s.panic.threshold, 1, 1000);
  s.panic.hold_s = panic.duration("hold", s.panic.hold_s);
  panic.finish();
  spec.finish();
  c.services.push_back(std::move(s));
}

// ---- KServe InferenceService (serving.kserve.io/v1beta1) and the HPA beside it ----------------
// As `arena serve kserve` writes them: a custom predictor container (or a predictor `model`)
// with its command, port, resources and a model volume; replica bounds and a scale metric in the
// predictor, or — for a metric KServe does not know, such as DCGM_CUSTOM_PROCESS_SM_UTIL — an
// autoscaling/v2 HorizontalPodAutoscaler on the predictor's Deployment (NAME-predictor) and the
// annotation serving.kserve.io/autoscalerClass: external. Both become one tidegate
// InferenceService; what has no meaning here is accepted and named in Config::notes.

// "Where" of a resource for errors raised after its document was read (cross-document checks).
std::string sourceWhere(const Source& s, const std::string& what) {
  return s.file + ": document " + std::to_string(s.document) + " (" + what + "), line " +
         std::to_string(s.line) + ": ";
}

// A Kubernetes quantity ("50", "1.5", "500m", "2k", "12Gi") as a number; nullopt if malformed.
std::optional<double> parseQuantity(const std::string& q) {
  static const std::pair<const char*, double> kSuffixes[] = {
      {"Ki", 1024.0},       {"Mi", 1048576.0},
      {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
      {"m", 1e-3},          {"k", 1e3},
      {"M", 1e6},           {"G", 1e9},
      {"T", 1e12},          {"", 1}};
  for (const auto& [suffix, factor] : kSuffixes) {
    const std::string_view sv(suffix);
    if (!q.ends_with(sv)) continue;
    const auto number = q.substr(0, q.size() - sv.size());
    if (number.empty() || number.find_first_not_of("0123456789.+-eE") != std::string::npos) break;
    char* end = nullptr;
    const double v = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) break;
    return v * factor;
  }
  return std::nullopt;
}

// The model name a vLLM-style command serves: --served-model-name, else --model, else "". A
// `SHELL -c LINE` command (what arena writes) is looked into as the shell would split LINE.
std::string servedModelName(const std::vector<std::string>& argv) {
  std::vector<std::string> words = argv;
  if (argv.size() >= 3 && argv[1] == "-c")
    if (auto w = splitWords(argv[2])) words = std::move(w).value();
  std::string model;
  for (std::size_t i = 0; i < words.size(); ++i) {
    for (const std::string flag : {"--served-model-name", "--model"}) {
      std::string value;
      if (words[i] == flag && i + 1 < words.size()) value = words[i + 1];
      if (words[i].starts_with(flag + "=")) value = words[i].substr(flag.size() + 1);
      if (value.empty()) continue;
      if (flag == "--served-model-name") return value;
      if (model.empty()) model = value;
    }
  }
  return model;
}

std::string joined(const std::vector<std::string>& words, const std::string& sep = " ") {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : sep) + w;
  return out;
}

// What the loader keeps between documents to put a KServe InferenceService and its HPA together.
struct KServePending {
  struct Service {
    std::size_t index;             // in Config::services
    std::string autoscaler_class;  // annotation serving.kserve.io/autoscalerClass (default hpa)
    bool has_hpa = false;
  };
  struct Hpa {
    ObjectMeta meta;
    Source source;
    std::string target;  // spec.scaleTargetRef.name, a Deployment
    int min_replicas = 1, max_replicas = 1;
    std::map<std::string, double> metrics;
    std::vector<std::string> mapping;
    std::optional<control::Behavior> behavior;
  };
  std::vector<Service> services;
  std::vector<Hpa> hpas;
};

constexpr const char* kAutoscalerClass = "serving.kserve.io/autoscalerClass";
constexpr const char* kPlacementNote =
    "ignored: replicas are placed on NodePools, in the order of the ResourcePolicy that selects "
    "them (else of the NodePools)";

void readKServe(Fields& top, Config& c, Source src, KServePending& pending) {
  InferenceService s;
  s.source = src;
  Labels annotations;
  s.meta = readMeta(top, &annotations);
  s.origin =
      "KServe InferenceService " + s.meta.ns + "/" + s.meta.name + " (serving.kserve.io/v1beta1)";
  s.gpus = 0;  // a container that asks for no GPU gets none
  auto& map = s.mapping;
  const auto& ctx = top.ctx();
  // Annotations: the autoscaler class decides where scaling is read from; KServe's others are
  // about how KServe itself would run the service.
  KServePending::Service pend{c.services.size(), "hpa"};
  for (const auto& [k, v] : annotations) {
    const auto path = "metadata.annotations." + k;
    if (k == kAutoscalerClass) {
      if (v != "hpa" && v != "external" && v != "none")
        ctx.fail(top.node()["metadata"]["annotations"][k], path,
                 "expected hpa, external or none, got \"" + v + "\"");
      pend.autoscaler_class = v;
    } else if (k.starts_with("serving.kserve.io/")) {
      ctx.note(top.node()["metadata"]["annotations"][k], path,
               "ignored: tidegate runs the replicas itself, not KServe");
    }
  }
  auto spec = top.map("spec", true);
  for (const char* k : {"transformer", "explainer"})
    if (!absent(spec.get(k)))
      ctx.fail(spec.get(k), spec.sub(k), "not supported: tidegate serves the predictor only");
  auto pred = spec.map("predictor", true);

  // Volumes: persistent volume claims can hold the model; the others are noted where mounted.
  std::map<std::string, std::string> claims;  // volume name -> claimName
  for (auto& v : pred.list("volumes")) {
    const auto name = v.str("name", {}, true);
    if (!absent(v.get("persistentVolumeClaim"))) {
      auto pvc = v.map("persistentVolumeClaim");
      claims[name] = pvc.str("claimName", {}, true);
      pvc.ignore("readOnly");
      pvc.finish();
    }
    for (const char* k : {"emptyDir", "configMap", "secret", "hostPath"})
      v.ignoreNoted(k, "ignored: the volume " + name + " is not given to tidegate's replicas");
    v.finish();
  }

  // The container: containers[0] (a custom predictor, as arena writes it) or model (a model
  // format; its runtime's command is not known here, so the container must name one).
  auto containers = pred.list("containers");
  const bool has_model = !absent(pred.get("model"));
  if (containers.empty() == !has_model)
    ctx.fail(pred.node(), pred.sub("containers"),
             "give the engine's container in containers, or model (not both)");
  if (containers.size() > 1)
    ctx.fail(pred.get("containers"), pred.sub("containers"),
             "one container (the engine) is supported, got " + std::to_string(containers.size()));
  Fields container = has_model ? pred.map("model") : containers[0];
  const auto cp = container.path();
  if (has_model)
    for (const char* k :
         {"modelFormat", "runtime", "storageUri", "runtimeVersion", "protocolVersion", "storage"})
      container.ignoreNoted(k,
                            "ignored: tidegate runs the container's command, not a KServe "
                            "ServingRuntime");
  container.ignore("name");
  s.image = container.str("image");
  if (!s.image.empty()) map.push_back(cp + ".image -> image " + s.image);
  s.command = container.strings("command");
  for (auto& a : container.strings("args")) s.command.push_back(std::move(a));
  if (s.command.empty())
    ctx.fail(container.node(), container.sub("command"),
             "required: tidegate runs the container's command itself (it does not read "
             "ServingRuntimes)");
  const auto served = servedModelName(s.command);
  s.served_model_name = served.empty() ? s.meta.name : served;
  map.push_back(cp + ".command, args -> command " + joined(s.command));
  map.push_back("served model name " + s.served_model_name +
                (served.empty() ? " (the service's name: the command names none)"
                                : " (from the command's --served-model-name or --model)"));
  auto ports = container.list("ports");
  for (auto& port : ports) {
    const auto n = static_cast<int>(port.integer("containerPort", 0, 1, 65535, true));
    if (s.port == 0) s.port = n;
    port.oneOf("protocol", "TCP", {"TCP"});
    port.ignore("name");
    port.finish();
  }
  if (s.port == 0) s.port = 8080;  // KServe's default for a custom container
  map.push_back(cp + (ports.empty() ? " (no ports: KServe's default)" : ".ports[0].containerPort") +
                " -> port " + std::to_string(s.port));
  if (std::none_of(s.command.begin(), s.command.end(),
                   [](const std::string& w) { return w.find("{port}") != std::string::npos; }))
    ctx.note(container.get(container.get("command").IsDefined() ? "command" : "args"),
             container.sub("command"),
             "the command sets its own port (" + std::to_string(s.port) +
                 "); on the local provider each replica needs one of its own: write {port}");

  auto res = container.map("resources");
  const auto limits = res.stringMap("limits"), requests = res.stringMap("requests");
  res.ignore("claims");
  res.finish();
  auto resource = [&](const std::string& k) {
    if (auto it = limits.find(k); it != limits.end()) return it->second;
    if (auto it = requests.find(k); it != requests.end()) return it->second;
    return std::string();
  };
  if (const auto g = resource("nvidia.com/gpu"); !g.empty()) {
    const auto n = parseQuantity(g);
    if (!n || *n < 0 || *n > 64 || *n != static_cast<int>(*n))
      ctx.fail(res.node(), res.sub("limits.nvidia.com/gpu"),
               "expected a whole number of GPUs (0 to 64), got \"" + g + "\"");
    s.gpus = static_cast<int>(*n);
  }
  s.cpu = resource("cpu");
  s.memory = resource("memory");
  map.push_back(cp + ".resources -> " + std::to_string(s.gpus) + " GPU (nvidia.com/gpu)" +
                (s.cpu.empty() ? "" : ", cpu " + s.cpu) +
                (s.memory.empty() ? "" : ", memory " + s.memory));
  for (const auto* rl : {&limits, &requests})
    for (const auto& [k, v] : *rl)
      if (k != "nvidia.com/gpu" && k != "cpu" && k != "memory")
        ctx.note(res.node(), res.sub((rl == &limits ? "limits." : "requests.") + k),
                 "ignored: tidegate places replicas by nvidia.com/gpu only");

  for (auto& m : container.list("volumeMounts")) {
    const auto name = m.str("name", {}, true);
    const auto path = m.str("mountPath", {}, true);
    m.ignore("readOnly");
    m.ignore("subPath");
    m.finish();
    const auto it = claims.find(name);
    if (it == claims.end()) {
      ctx.note(m.node(), m.path(),
               "ignored: " + name + " at " + path + " is not a persistentVolumeClaim volume");
      continue;
    }
    if (!s.model_volume.claim_name.empty())
      ctx.fail(m.node(), m.path(), "one persistentVolumeClaim (the model) can be mounted");
    s.model_volume = {it->second, path};
    map.push_back(m.path() + " -> modelVolume: PersistentVolumeClaim " + it->second + " at " +
                  path);
  }
  for (const char* k : {"env", "envFrom"})
    container.ignoreNoted(k, "ignored: tidegate's replicas get no extra environment");
  for (const char* k : {"imagePullPolicy", "livenessProbe", "readinessProbe", "startupProbe",
                        "securityContext", "workingDir"})
    container.ignoreNoted(k, "ignored: tidegate's replicas have their own probes and settings");
  container.finish();

  // Scaling in the predictor (KServe's own HPA or KPA).
  s.min_replicas = static_cast<int>(pred.integer("minReplicas", 1, 0, 10000));
  s.max_replicas = static_cast<int>(pred.integer("maxReplicas", 0, 0, 10000));
  if (s.max_replicas == 0) s.max_replicas = std::max(1, s.min_replicas);  // KServe: unset
  if (s.max_replicas < s.min_replicas)
    ctx.fail(pred.node(), pred.sub("maxReplicas"), "must be at least minReplicas");
  if (!absent(pred.get("minReplicas")) || !absent(pred.get("maxReplicas")))
    map.push_back(pred.path() + ".minReplicas, maxReplicas -> " + std::to_string(s.min_replicas) +
                  ".." + std::to_string(s.max_replicas) + " replicas");
  const auto metric = pred.oneOf("scaleMetric", {}, {"cpu", "memory", "concurrency", "rps"});
  const long target = pred.integer("scaleTarget", 0, 1, 1000000000L);
  pred.ignoreNoted("scaleMetricType", "ignored: the target is an average per replica");
  if (metric == "concurrency") {
    if (target == 0)
      ctx.fail(pred.node(), pred.sub("scaleTarget"), "required with scaleMetric concurrency");
    s.metric_targets[kGatewayInflight] = static_cast<double>(target);
    map.push_back(pred.path() + ".scaleMetric concurrency, scaleTarget " + std::to_string(target) +
                  " -> metric " + kGatewayInflight + "=" + std::to_string(target) +
                  " (requests in flight per replica)");
  } else if (!metric.empty() || target > 0) {
    ctx.fail(pred.get(metric.empty() ? "scaleTarget" : "scaleMetric"), pred.sub("scaleMetric"),
             (metric.empty() ? std::string("cpu (KServe's default)") : metric) +
                 " is not measured by tidegate: scale on concurrency (requests in flight per "
                 "replica), or on an engine's metric with an autoscaling/v2 "
                 "HorizontalPodAutoscaler (type Pods) and the annotation " +
                 kAutoscalerClass + ": external");
  }
  if (pred.node()["autoScaling"].IsDefined())
    ctx.fail(pred.get("autoScaling"), pred.sub("autoScaling"),
             "not supported: give an autoscaling/v2 HorizontalPodAutoscaler beside the service");
  if (pend.autoscaler_class == "none") {
    s.max_replicas = s.min_replicas;
    s.metric_targets.clear();
    map.push_back("autoscalerClass none -> a fixed " + std::to_string(s.min_replicas) +
                  " replicas");
  }

  Labels labels = pred.stringMap("labels");
  for (const auto& [k, v] : labels) s.meta.labels[k] = v;
  // What KServe puts on the predictor's pods: pools and policies written for the cluster select
  // tidegate's replicas the same way.
  s.meta.labels["serving.kserve.io/inferenceservice"] = s.meta.name;
  s.meta.labels["component"] = "predictor";
  s.meta.labels["app"] = "isvc." + s.meta.name + "-predictor";
  std::vector<std::string> label_text;
  for (const auto& [k, v] : s.meta.labels) label_text.push_back(k + "=" + v);
  map.push_back("metadata.labels, " + pred.path() +
                ".labels and KServe's pod labels -> replica labels " + joined(label_text, ", "));

  pred.ignore("annotations");
  pred.ignore("name");
  for (const char* k : {"nodeSelector", "tolerations", "affinity", "schedulerName"})
    pred.ignoreNoted(k, kPlacementNote);
  for (const char* k :
       {"imagePullSecrets", "securityContext", "serviceAccountName", "priorityClassName"})
    pred.ignoreNoted(k, "ignored: tidegate's replicas use their namespace's defaults");
  pred.ignoreNoted("containerConcurrency",
                   "ignored: the Gateway's spec.saturation thresholds bound what a replica gets");
  pred.ignoreNoted("timeout",
                   "ignored: the Gateway's spec.timeouts (and an HTTPRoute rule's "
                   "timeouts.request) apply");
  pred.ignoreNoted("canaryTrafficPercent",
                   "ignored: a canary is an HTTPRoute rule with weighted backendRefs to two "
                   "InferencePools");
  for (const char* k : {"logger", "batcher", "deploymentStrategy"})
    pred.ignoreNoted(k, "ignored: a KServe feature tidegate does not run");
  pred.finish();
  spec.finish();
  pending.services.push_back(pend);
  c.services.push_back(std::move(s));
}

void readHpa(Fields& top, Source src, KServePending& pending) {
  KServePending::Hpa h;
  h.source = src;
  h.meta = readMeta(top);
  auto spec = top.map("spec", true);
  auto ref = spec.map("scaleTargetRef", true);
  ref.oneOf("apiVersion", "apps/v1", {"apps/v1"});
  ref.oneOf("kind", {}, {"Deployment"}, true);
  h.target = ref.str("name", {}, true);
  ref.finish();
  h.min_replicas = static_cast<int>(spec.integer("minReplicas", 1, 0, 10000));
  h.max_replicas = static_cast<int>(spec.integer("maxReplicas", 0, 1, 10000, true));
  if (h.max_replicas < h.min_replicas)
    spec.ctx().fail(spec.get("maxReplicas"), spec.sub("maxReplicas"),
                    "must be at least minReplicas");
  h.mapping.push_back("HorizontalPodAutoscaler " + h.meta.name +
                      " spec.minReplicas, maxReplicas -> " + std::to_string(h.min_replicas) + ".." +
                      std::to_string(h.max_replicas) + " replicas");
  for (auto& m : spec.list("metrics")) {
    m.oneOf("type", {}, {"Pods", "Resource", "ContainerResource", "Object", "External"}, true);
    if (m.str("type") != "Pods")
      m.ctx().fail(m.get("type"), m.sub("type"),
                   "only Pods is supported: tidegate scales on each replica's own metrics (an "
                   "engine's gauge, such as DCGM_CUSTOM_PROCESS_SM_UTIL or "
                   "vllm:num_requests_waiting)");
    auto pods = m.map("pods", true);
    auto metric = pods.map("metric", true);
    const auto name = metric.str("name", {}, true);
    metric.ignoreNoted("selector", "ignored: each replica's own value of the metric is read");
    metric.finish();
    auto target = pods.map("target", true);
    // A Pods metric's target is its averageValue (`arena serve kserve` writes it with type
    // Utilization).
    target.oneOf("type", "AverageValue", {"AverageValue", "Utilization"});
    const auto value = target.str("averageValue", {}, true);
    const auto q = parseQuantity(value);
    if (!q || *q <= 0)
      target.ctx().fail(target.get("averageValue"), target.sub("averageValue"),
                        "expected a positive quantity, got \"" + value + "\"");
    target.finish();
    pods.finish();
    m.finish();
    h.metrics[name] = *q;
    h.mapping.push_back("HorizontalPodAutoscaler " + h.meta.name + " " + m.path() + " Pods " +
                        name + " averageValue " + value + " -> metric " + name + "=" + value);
  }
  if (!absent(spec.get("behavior"))) {
    auto b = spec.map("behavior");
    auto behavior = control::Behavior::kubernetesDefaults();
    behavior.scale_up = readRules(b.map("scaleUp"), behavior.scale_up);
    behavior.scale_down = readRules(b.map("scaleDown"), behavior.scale_down);
    b.finish();
    h.behavior = behavior;
    h.mapping.push_back("HorizontalPodAutoscaler " + h.meta.name + " spec.behavior -> behavior");
  }
  spec.finish();
  pending.hpas.push_back(std::move(h));
}

// Each HPA to the KServe InferenceService whose predictor Deployment it scales.
void joinKServe(Config& c, KServePending& p) {
  for (auto& h : p.hpas) {
    KServePending::Service* found = nullptr;
    for (auto& k : p.services) {
      const auto& s = c.services[k.index];
      if (s.meta.ns == h.meta.ns && h.target == s.meta.name + "-predictor") found = &k;
    }
    const auto where = sourceWhere(h.source, "HorizontalPodAutoscaler " + h.meta.name);
    if (!found)
      throw ConfigError{where +
                        "spec.scaleTargetRef.name: no KServe InferenceService in namespace " +
                        h.meta.ns + " has the predictor Deployment \"" + h.target +
                        "\" (that of an InferenceService NAME is NAME-predictor)"};
    if (found->has_hpa)
      throw ConfigError{where + "spec.scaleTargetRef.name: " + h.target +
                        " is already scaled by another HorizontalPodAutoscaler"};
    found->has_hpa = true;
    auto& s = c.services[found->index];
    s.origin +=
        " and HorizontalPodAutoscaler " + h.meta.ns + "/" + h.meta.name + " (autoscaling/v2)";
    if (found->autoscaler_class != "external")
      s.mapping.push_back(
          "the HorizontalPodAutoscaler replaces the predictor's scaling (KServe "
          "expects " +
          std::string(kAutoscalerClass) + ": external with it)");
    s.min_replicas = h.min_replicas;
    s.max_replicas = h.max_replicas;
    s.metric_targets = h.metrics;
    if (h.behavior) s.behavior = *h.behavior;
    s.mapping.insert(s.mapping.end(), h.mapping.begin(), h.mapping.end());
  }
  for (const auto& k : p.services) {
    const auto& s = c.services[k.index];
    if (k.autoscaler_class == "external" && !k.has_hpa)
      throw ConfigError{sourceWhere(s.source, "InferenceService " + s.meta.name) +
                        "metadata.annotations." + kAutoscalerClass +
                        ": external, but no HorizontalPodAutoscaler (autoscaling/v2) scales "
                        "Deployment " +
                        s.meta.name + "-predictor: add the one written beside it"};
  }
}

void readPlan(Fields& top, Config& c, Source src) {
  auto p = startResource<UsagePlan>(top, src);
  auto spec = top.map("spec", true);
  p.requests_per_minute = spec.number("requestsPerMinute", 0, 0, 1e12);
  p.requests_per_day = spec.number("requestsPerDay", 0, 0, 1e15);
  p.tokens_per_minute = spec.number("tokensPerMinute", 0, 0, 1e15);
  p.tokens_per_day = spec.number("tokensPerDay", 0, 0, 1e15);
  p.tokens_per_month = spec.number("tokensPerMonth", 0, 0, 1e15);
  p.max_concurrent = static_cast<int>(spec.integer("maxConcurrentRequests", 0, 0, 1000000));
  p.models = spec.strings("models");
  if (const auto pr = spec.oneOf("priority", {}, {"high", "normal", "low"}); !pr.empty()) {
    p.priority = pr == "high"     ? Criticality::kCritical
                 : pr == "normal" ? Criticality::kStandard
                                  : Criticality::kSheddable;
  }
  spec.finish();
  c.plans.push_back(std::move(p));
}

void readKey(Fields& top, Config& c, Source src) {
  auto k = startResource<APIKey>(top, src);
  auto spec = top.map("spec", true);
  k.plan = spec.str("plan", {}, true);
  const auto digest = spec.hexBytes("sha256", 32, "sha256sum of the key");
  auto ref = spec.map("secretRef");
  const auto env = ref.str("env"), file = ref.str("file");
  // A Kubernetes Secret in the APIKey's namespace: its `key` (default "key") holds the key.
  const auto secret = ref.str("name");
  const auto secret_key = ref.str("key", "key");
  ref.finish();
  const int refs = !env.empty() + !file.empty() + !secret.empty();
  if (digest.empty() == (refs == 0) || refs > 1)
    spec.ctx().fail(spec.node(), spec.path(),
                    "give exactly one of sha256 (hex SHA-256 of the key) or secretRef "
                    "(env, file, or name of a Kubernetes Secret)");
  if (!digest.empty()) {
    k.sha256 = digest;
  } else if (!secret.empty()) {
    const auto* lookup = spec.ctx().secret;
    if (!lookup || !*lookup)
      spec.ctx().fail(spec.node(), spec.sub("secretRef.name"),
                      "a Kubernetes Secret needs serve --kubernetes or --kubeconfig");
    const auto value = (*lookup)(k.meta.ns, secret, secret_key);
    if (!value || value->empty())
      spec.ctx().fail(spec.node(), spec.sub("secretRef"),
                      "Secret " + k.meta.ns + "/" + secret + " has no key \"" + secret_key +
                          "\" (is it labelled tidegate.io/api-key?)");
    k.sha256 = crypto::sha256(*value);
  } else if (!env.empty()) {
    const char* v = std::getenv(env.c_str());
    if (!v || !*v)
      spec.ctx().fail(spec.node(), spec.sub("secretRef.env"),
                      "environment variable " + env + " is not set");
    k.sha256 = crypto::sha256(v);
  } else {
    std::ifstream in(file);
    std::string secret;
    if (!in || !std::getline(in, secret) || secret.empty())
      spec.ctx().fail(spec.node(), spec.sub("secretRef.file"), "cannot read a key from " + file);
    k.sha256 = crypto::sha256(secret);
  }
  if (const auto t = spec.timestamp("expiresAt")) k.expires = *t;
  spec.finish();
  c.keys.push_back(std::move(k));
}

void readGateway(Fields& top, Config& c) {
  if (c.has_gateway) top.ctx().fail(top.node(), "", "only one Gateway per configuration");
  c.has_gateway = true;
  auto& g = c.gateway;
  g.name = readMeta(top).name;
  auto spec = top.map("spec");
  g.listen = spec.hostPort("listen", g.listen, /*allow_zero=*/true);
  g.admin = spec.hostPort("admin", g.admin, /*allow_zero=*/true);
  g.workers = static_cast<int>(spec.integer("workers", g.workers, 1, 256));
  g.retries = static_cast<int>(spec.integer("retries", g.retries, 0, 10));
  g.seed = static_cast<std::uint64_t>(spec.integer("seed", 0, 0, 1L << 62));
  auto lim = spec.map("limits");
  g.max_body_bytes = static_cast<std::size_t>(
      lim.integer("maxBodyBytes", static_cast<long>(g.max_body_bytes), 1024, 1L << 34));
  g.max_header_bytes = static_cast<std::size_t>(
      lim.integer("maxHeaderBytes", static_cast<long>(g.max_header_bytes), 1024, 1L << 24));
  g.max_connections = static_cast<std::size_t>(
      lim.integer("maxConnections", static_cast<long>(g.max_connections), 1, 1000000));
  g.max_response_bytes = static_cast<std::size_t>(
      lim.integer("maxResponseBytes", static_cast<long>(g.max_response_bytes), 1024, 1L << 34));
  g.max_event_bytes = static_cast<std::size_t>(
      lim.integer("maxEventBytes", static_cast<long>(g.max_event_bytes), 1024, 1L << 30));
  lim.finish();
  auto t = spec.map("timeouts");
  g.connect_timeout_s = t.duration("connect", g.connect_timeout_s);
  g.first_byte_timeout_s = t.duration("firstByte", g.first_byte_timeout_s);
  g.idle_timeout_s = t.duration("idle", g.idle_timeout_s);
  g.total_timeout_s = t.duration("total", g.total_timeout_s);
  t.finish();
  auto s = spec.map("scrape");
  g.scrape_interval_s = s.duration("interval", g.scrape_interval_s);
  g.stale_after_s = s.duration("staleAfter", g.stale_after_s);
  s.finish();
  auto sat = spec.map("saturation");
  g.queue_threshold = sat.number("queueThreshold", g.queue_threshold, 0, 1e9);
  g.kv_threshold = sat.number("kvCacheThreshold", g.kv_threshold, 0, 1);
  sat.finish();
  auto ctl = spec.map("controller");
  g.controller_interval_s = ctl.duration("interval", g.controller_interval_s);
  ctl.finish();
  if (g.controller_interval_s <= 0)
    ctl.ctx().fail(ctl.node(), "spec.controller.interval", "must be > 0");
  auto picker = spec.map("picker");
  auto w = picker.map("weights");
  g.weights.queue = w.number("queue", g.weights.queue, 0, 1000);
  g.weights.kv_cache = w.number("kvCache", g.weights.kv_cache, 0, 1000);
  g.weights.lora = w.number("lora", g.weights.lora, 0, 1000);
  g.weights.prefix = w.number("prefix", g.weights.prefix, 0, 1000);
  g.weights.inflight = w.number("inflight", g.weights.inflight, 0, 1000);
  w.finish();
  picker.finish();
  auto auth = spec.map("auth");
  g.admin_token = auth.str("adminToken");
  if (const auto mode = auth.oneOf("apiKeys", {}, {"required", "disabled"}); !mode.empty()) {
    g.auth_mode = mode == "required" ? GatewayConfig::AuthMode::kRequired
                                     : GatewayConfig::AuthMode::kDisabled;
    g.auth_mode_explicit = true;
  }
  g.allow_key_removal = auth.boolean("allowKeyRemoval", false);
  auth.finish();
  if (const char* env = std::getenv("TIDEGATE_ADMIN_TOKEN"); env && *env) g.admin_token = env;
  if (auto tls = spec.get("tls"); tls.IsDefined() && !tls.IsNull()) {
    auto t = spec.map("tls");
    g.tls.enabled = true;
    g.tls.certificate_file = t.str("certificateFile", {}, true);
    g.tls.key_file = t.str("keyFile", {}, true);
    g.tls.client_ca_file = t.str("clientCAFile");
    g.tls.min_version = t.oneOf("minVersion", "1.2", {"1.2", "1.3"});
    g.tls.handshake_timeout_s = t.duration("handshakeTimeout", g.tls.handshake_timeout_s);
    if (g.tls.handshake_timeout_s <= 0)
      t.ctx().fail(t.get("handshakeTimeout"), t.sub("handshakeTimeout"), "must be > 0");
    g.tls.admin = t.boolean("admin", false);
    t.finish();
  }
  auto up = spec.map("upstreamTLS");
  g.upstream_tls.ca_file = up.str("caFile");
  g.upstream_tls.certificate_file = up.str("certificateFile");
  g.upstream_tls.key_file = up.str("keyFile");
  if (g.upstream_tls.certificate_file.empty() != g.upstream_tls.key_file.empty())
    up.ctx().fail(up.node(), up.sub("certificateFile"),
                  "certificateFile and keyFile go together (a client certificate and its key)");
  g.upstream_tls.verify = !up.boolean("insecureSkipVerify", false);
  up.finish();
  auto rl = spec.map("rateLimit");
  const auto backend = rl.oneOf("backend", "local", {"local", "redis"});
  g.rate_limit.redis = backend == "redis";
  auto redis = rl.map("redis");
  g.rate_limit.redis_address =
      redis.hostPort("address", g.rate_limit.redis_address, /*allow_zero=*/true);
  g.rate_limit.redis_timeout_s = redis.duration("timeout", g.rate_limit.redis_timeout_s);
  const auto policy = redis.oneOf("failurePolicy", "open", {"open", "closed"});
  g.rate_limit.fail_open = policy == "open";
  redis.finish();
  rl.finish();
  auto ledger = spec.map("ledger");
  g.ledger.path = ledger.str("path");
  g.ledger.flush_interval_s = ledger.duration("flushInterval", g.ledger.flush_interval_s);
  if (g.ledger.flush_interval_s <= 0 || g.ledger.flush_interval_s > 1)
    ledger.ctx().fail(ledger.node(), ledger.sub("flushInterval"),
                      "must be > 0 and at most 1s (at most one second of records may be lost)");
  ledger.finish();
  auto pricing = spec.map("pricing");
  for (auto& m : pricing.list("models")) {
    GatewayConfig::ModelPrice mp;
    mp.model = m.str("model", {}, true);
    mp.prompt_per_million = m.number("promptPerMillion", 0, 0, 1e9);
    mp.completion_per_million = m.number("completionPerMillion", 0, 0, 1e9);
    m.finish();
    g.model_prices.push_back(std::move(mp));
  }
  for (auto& p : pricing.list("pools")) {
    const auto name = p.str("pool", {}, true);
    g.pool_price_per_hour[name] = p.number("pricePerHour", 0, 0, 1e9);
    p.finish();
  }
  pricing.finish();
  spec.finish();
  if (g.scrape_interval_s <= 0) spec.ctx().fail(spec.node(), "spec.scrape.interval", "must be > 0");
}

// Cross-document checks: references resolve, names are unique.
void validate(const Config& c) {
  auto fail = [&](const Source& s, const std::string& what, const std::string& msg) {
    throw ConfigError{sourceWhere(s, what) + msg};
  };
  std::set<std::string> names;
  for (const auto& p : c.pools)
    if (!names.insert(p.meta.name).second)
      fail(p.source, "InferencePool " + p.meta.name, "metadata.name: duplicate pool name");
  // What an InferenceModel or an InferenceModelRewrite rule is, in messages.
  auto describe = [](const InferenceModel& m) {
    return m.kind + " " + m.meta.name +
           (m.rule >= 0 ? " (spec.rules[" + std::to_string(m.rule) + "])" : "");
  };
  std::set<std::string> model_names;
  std::map<std::pair<std::string, std::string>, const InferenceModel*> claims;  // (pool, model)
  std::map<std::string, const InferenceModel*> fallbacks;                       // pool
  for (const auto& m : c.models) {
    const auto what = m.kind + " " + m.meta.name;
    const auto rule = "spec.rules[" + std::to_string(m.rule) + "]";
    if (!c.pool(m.pool))
      fail(m.source, what, "spec.poolRef.name: no InferencePool named \"" + m.pool + "\"");
    if (m.kind == "InferenceModel" && !model_names.insert(m.model_name).second)
      fail(m.source, what,
           "spec.modelName: \"" + m.model_name + "\" is claimed by another InferenceModel");
    if (m.fallback) {
      if (auto [it, fresh] = fallbacks.emplace(m.pool, &m); !fresh)
        fail(m.source, what,
             rule + ": pool " + m.pool + " already has a rule without matches (" +
                 describe(*it->second) + ")");
    } else if (auto [it, fresh] = claims.emplace(std::make_pair(m.pool, m.model_name), &m);
               !fresh) {
      fail(m.source, what,
           (m.rule >= 0 ? rule + ".matches" : std::string("spec.modelName")) + ": \"" +
               m.model_name + "\" on pool " + m.pool + " is already matched by " +
               describe(*it->second));
    }
  }
  std::set<std::string> objective_names;
  for (const auto& o : c.objectives) {
    const auto what = "InferenceObjective " + o.meta.name;
    if (!c.pool(o.pool))
      fail(o.source, what, "spec.poolRef.name: no InferencePool named \"" + o.pool + "\"");
    if (!objective_names.insert(o.meta.name).second)
      fail(o.source, what,
           "metadata.name: another InferenceObjective has this name (requests name one in the "
           "x-gateway-inference-objective header)");
  }
  std::set<std::string> services;
  for (const auto& s : c.services)
    if (!services.insert(s.meta.ns + "/" + s.meta.name).second)
      fail(s.source, "InferenceService " + s.meta.name,
           "metadata.name: another InferenceService in namespace " + s.meta.ns + " has this name");
  std::set<std::string> plan_names, key_names, digests;
  for (const auto& p : c.plans)
    if (!plan_names.insert(p.meta.name).second)
      fail(p.source, "UsagePlan " + p.meta.name, "metadata.name: duplicate plan name");
  for (const auto& k : c.keys) {
    if (!c.plan(k.plan))
      fail(k.source, "APIKey " + k.meta.name, "spec.plan: no UsagePlan named \"" + k.plan + "\"");
    if (!key_names.insert(k.meta.name).second)
      fail(k.source, "APIKey " + k.meta.name, "metadata.name: duplicate key name");
    if (!digests.insert(k.sha256).second)
      fail(k.source, "APIKey " + k.meta.name, "spec: the same secret as another APIKey");
  }
  std::set<std::string> llm_hosts;
  for (const auto& r : c.routes) {
    const auto what = r.kind + " " + r.meta.name;
    for (std::size_t i = 0; i < r.rules.size(); ++i)
      for (std::size_t j = 0; j < r.rules[i].backends.size(); ++j) {
        const auto& pool = r.rules[i].backends[j].pool;
        if (c.pool(pool)) continue;
        // An LLMRoute's rules are one rule here: its message cannot point at one of them.
        fail(r.source, what,
             (r.kind == "LLMRoute" ? std::string("spec.rules[].backendRefs[].backendRef.name")
                                   : "spec.rules[" + std::to_string(i) + "].backendRefs[" +
                                         std::to_string(j) + "].name") +
                 ": no InferencePool named \"" + pool + "\"");
      }
    if (r.kind == "LLMRoute" && !llm_hosts.insert(r.hostnames[0]).second)
      fail(r.source, what, "spec.host: \"" + r.hostnames[0] + "\" is routed twice");
  }
}

}  // namespace

Result<Config> parseConfig(const std::string& text, const std::string& name) {
  return parseConfig(text, name, nullptr);
}

namespace {
// The file's documents and the extra ones, each with the name its messages give.
Result<Config> parseAll(const std::string& text, const std::string& name, SchemaRecorder* recorder,
                        const LoadOptions& options) {
  Config c;
  c.file = name;
  struct Named {
    const std::string* source;
    int index;
    YAML::Node doc;
  };
  std::vector<Named> docs;
  std::string all_text = text;
  auto load = [&](const std::string& t, const std::string& source) -> Status {
    try {
      int i = 0;
      for (auto& d : loadAllDocuments(t)) docs.push_back({&source, ++i, std::move(d)});
    } catch (const YAML::Exception& e) {
      return Error{source + ": line " + std::to_string(e.mark.line + 1) +
                   ": YAML syntax error: " + e.msg};
    }
    return Status::Ok();
  };
  if (auto s = load(text, name); !s) return Error{s.message()};
  for (const auto& d : options.extra) {
    if (auto s = load(d.text, d.source); !s) return Error{s.message()};
    all_text += "\n---\n" + d.text;
  }
  c.digest = crypto::sha256Hex(all_text);
  try {
    int resources = 0;
    KServePending kserve;
    for (const auto& [source, index, doc] : docs) {
      if (doc.IsNull()) continue;  // an empty document (e.g. a trailing ---)
      ++resources;
      Context ctx{*source, index, &options.secret, {}, &c.notes};
      Fields top(ctx, doc, "");
      const auto api = top.str("apiVersion", {}, true);
      const auto kind = top.str("kind", {}, true);
      // (yaml-cpp: an absent key of a const node is invalid, so check IsDefined() first.)
      if (const auto md = doc["metadata"]; md.IsDefined() && md.IsMap()) {
        if (const auto n = md["name"]; n.IsDefined() && n.IsScalar())
          ctx.what = kind + " " + n.Scalar();
      }
      Source src{*source, index, doc.Mark().line + 1};
      if (recorder) top.record(&recorder->root(api, kind), /*present=*/true);
      const bool xk8s =
          api == std::string(kXk8s) + "v1alpha1" || api == std::string(kXk8s) + "v1alpha2";
      // InferenceObjective and InferenceModelRewrite left the Inference Extension for llm-d's
      // router (llm-d.ai) in 2026; both groups hold the same v1alpha2 schema.
      const bool v1alpha2 = api == std::string(kXk8s) + "v1alpha2" || api == "llm-d.ai/v1alpha2";
      if (kind == "InferencePool" && (xk8s || api == kK8sV1)) {
        readPool(top, api, c, src);
      } else if (kind == "InferenceModel" && xk8s) {
        readModel(top, c, src);
      } else if (kind == "InferenceModelRewrite" && v1alpha2) {
        readRewrite(top, c, src);
      } else if (kind == "InferenceObjective" && v1alpha2) {
        readObjective(top, c, src);
      } else if (kind == "LLMRoute" && api == "istio.alibabacloud.com/v1") {
        readLLMRoute(top, c, src);
      } else if (kind == "HTTPRoute" && (api == "gateway.networking.k8s.io/v1" ||
                                         api == "gateway.networking.k8s.io/v1beta1")) {
        readHTTPRoute(top, c, src);
      } else if (kind == "InferenceService" && api == "serving.kserve.io/v1beta1") {
        readKServe(top, c, src, kserve);
      } else if (kind == "HorizontalPodAutoscaler" && api == "autoscaling/v2") {
        readHpa(top, src, kserve);
      } else if (kind == "Endpoints" && api == kTidegate) {
        readEndpoints(top, c, src);
      } else if (kind == "Gateway" && api == kTidegate) {
        readGateway(top, c);
      } else if (kind == "ResourcePolicy" && api == "scheduling.alibabacloud.com/v1alpha1") {
        readResourcePolicy(top, c, src);
      } else if (kind == "NodePool" && api == kTidegate) {
        readNodePool(top, c, src);
      } else if (kind == "InferenceService" && api == kTidegate) {
        readService(top, c, src);
      } else if (kind == "UsagePlan" && api == kTidegate) {
        readPlan(top, c, src);
      } else if (kind == "APIKey" && api == kTidegate) {
        readKey(top, c, src);
      } else {
        ctx.fail(doc, "", "unknown kind " + kind + " of apiVersion " + api);
      }
      top.ignore("status");
      top.finish();
    }
    // An empty file is never meant: it would remove every route and key.
    if (resources == 0) throw ConfigError{name + ": no resources (the file is empty)"};
    joinKServe(c, kserve);
    auto& g = c.gateway;
    if (!g.auth_mode_explicit)
      g.auth_mode = c.plans.empty() && c.keys.empty() ? GatewayConfig::AuthMode::kDisabled
                                                      : GatewayConfig::AuthMode::kRequired;
    validate(c);
  } catch (const ConfigError& e) {
    return Error{e.message};
  }
  return c;
}
}  // namespace

Result<Config> parseConfig(const std::string& text, const std::string& name,
                           SchemaRecorder* recorder) {
  return parseAll(text, name, recorder, {});
}

Result<Config> parseConfig(const std::string& text, const std::string& name,
                           const LoadOptions& options) {
  return parseAll(text, name, nullptr, options);
}

Result<Config> loadConfig(const std::string& path) { return loadConfig(path, {}); }

Result<Config> loadConfig(const std::string& path, const LoadOptions& options) {
  // Every way a path can fail to be a configuration file is an error naming the file and why,
  // for serve, check and reloads alike.
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st))
    return Error{path + ": cannot read the configuration: " +
                 (ec ? ec.message() : std::string("no such file"))};
  if (std::filesystem::is_directory(st))
    return Error{path + ": cannot read the configuration: it is a directory, not a file"};
  if (!std::filesystem::is_regular_file(st))
    return Error{path + ": cannot read the configuration: not a regular file"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot read the configuration: " + std::strerror(errno)};
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error{path + ": cannot read the configuration: " + std::strerror(errno)};
  return parseAll(ss.str(), path, nullptr, options);
}

}  // namespace tidegate::api

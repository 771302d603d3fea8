#include "api/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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
  const SecretLookup* secret = nullptr;  // LoadOptions::secret, when set
  std::string what;                      // "InferenceModel inferencemodel-sample"

  [[noreturn]] void fail(const YAML::Node& at, const std::string& path,
                         const std::string& message) const {
    std::string where = file + ": document " + std::to_string(document);
    if (!what.empty()) where += " (" + what + ")";
    const auto mark = at.Mark();
    if (!mark.is_null()) where += ", line " + std::to_string(mark.line + 1);
    throw ConfigError{where + ": " + (path.empty() ? "" : path + ": ") + message};
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

ObjectMeta readMeta(Fields& top) {
  auto m = top.map("metadata", true);
  ObjectMeta meta;
  meta.name = m.str("name", {}, true);
  meta.ns = m.str("namespace", "default");
  meta.labels = m.stringMap("labels");
  m.ignore("annotations");
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

void readPool(Fields& top, const std::string& api, Config& c, Source src) {
  auto p = startResource<InferencePool>(top, src);
  p.api_version = api;
  auto spec = top.map("spec", true);
  if (api == kK8sV1) {
    auto sel = spec.map("selector", true);
    p.selector = sel.stringMap("matchLabels", true);
    sel.finish();
    auto ports = spec.list("targetPorts", true);
    if (ports.empty()) spec.ctx().fail(spec.node(), spec.sub("targetPorts"), "needs one port");
    p.target_port = static_cast<std::uint16_t>(ports[0].integer("number", 0, 1, 65535, true));
    for (auto& port : ports) port.finish();
    auto epp = spec.map("endpointPickerRef");
    for (const char* k : {"group", "kind", "name", "port", "failureMode"}) epp.ignore(k);
    epp.finish();
  } else {
    p.selector = spec.stringMap("selector", true);
    p.target_port = static_cast<std::uint16_t>(spec.integer("targetPortNumber", 0, 1, 65535, true));
    auto ext = spec.map("extensionRef");
    for (const char* k : {"group", "kind", "name", "portNumber", "targetPortNumber", "failureMode"})
      ext.ignore(k);
    ext.finish();
  }
  if (p.selector.empty()) spec.ctx().fail(spec.node(), spec.sub("selector"), "must not be empty");
  spec.finish();
  c.pools.push_back(std::move(p));
}

// A reference to an InferencePool (InferenceModel.spec.poolRef, LLMRoute backendRef): the
// name; kind, if given, must be InferencePool; group and namespace are accepted.
std::string readPoolRef(Fields ref) {
  const auto kind = ref.str("kind", "InferencePool");
  if (kind != "InferencePool")
    ref.ctx().fail(ref.node(), ref.sub("kind"), "only InferencePool is supported, got " + kind);
  auto name = ref.str("name", {}, true);
  ref.ignore("group");
  ref.ignore("namespace");
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

void readRoute(Fields& top, Config& c, Source src) {
  auto r = startResource<LLMRoute>(top, src);
  auto spec = top.map("spec", true);
  r.host = spec.str("host", {}, true);
  r.gateways = spec.strings("gateways");
  for (auto& rule : spec.list("rules", true)) {
    for (auto& b : rule.list("backendRefs", true)) {
      r.pools.push_back(readPoolRef(b.map("backendRef", true)));
      b.ignore("weight");
      b.finish();
    }
    rule.ignore("name");
    rule.finish();
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
    throw ConfigError{s.file + ": document " + std::to_string(s.document) + " (" + what +
                      "), line " + std::to_string(s.line) + ": " + msg};
  };
  std::set<std::string> names;
  for (const auto& p : c.pools)
    if (!names.insert(p.meta.name).second)
      fail(p.source, "InferencePool " + p.meta.name, "metadata.name: duplicate pool name");
  std::set<std::string> model_names;
  for (const auto& m : c.models) {
    if (!c.pool(m.pool))
      fail(m.source, "InferenceModel " + m.meta.name,
           "spec.poolRef.name: no InferencePool named \"" + m.pool + "\"");
    if (!model_names.insert(m.model_name).second)
      fail(m.source, "InferenceModel " + m.meta.name,
           "spec.modelName: \"" + m.model_name + "\" is claimed by another InferenceModel");
  }
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
  std::set<std::string> hosts;
  for (const auto& r : c.routes) {
    for (const auto& p : r.pools)
      if (!c.pool(p))
        fail(r.source, "LLMRoute " + r.meta.name,
             "spec.rules[].backendRefs[].backendRef.name: no InferencePool named \"" + p + "\"");
    if (!hosts.insert(r.host).second)
      fail(r.source, "LLMRoute " + r.meta.name, "spec.host: \"" + r.host + "\" is routed twice");
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
    for (const auto& [source, index, doc] : docs) {
      if (doc.IsNull()) continue;  // an empty document (e.g. a trailing ---)
      ++resources;
      Context ctx{*source, index, &options.secret, {}};
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
      if (kind == "InferencePool" && (xk8s || api == kK8sV1)) {
        readPool(top, api, c, src);
      } else if (kind == "InferenceModel" && xk8s) {
        readModel(top, c, src);
      } else if (kind == "LLMRoute" && api == "istio.alibabacloud.com/v1") {
        readRoute(top, c, src);
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

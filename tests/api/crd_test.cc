#include "api/crd.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>

#include "api/loader.h"

// The CRDs are the loader's schema: these tests prove that they are complete (every field typed,
// every list with an item schema), structural, equal to the committed deploy/base/crds.yaml, and
// that they agree with the loader: every configuration that loads (examples/, the tests' own)
// validates, and a document the loader rejects for an unknown field, a wrong type, a value out
// of bounds or not allowed, or a missing required field, the schema rejects too.

namespace tidegate::api {
namespace {

namespace fs = std::filesystem;

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- A small structural-schema validator: what the API server checks of a custom resource ----

// YAML scalars are typed before validation (kubectl and the API server read YAML 1.1 into JSON):
// `4` is an integer, `0.9` a number, `true` a boolean, `"4"` a string.
enum class Scalar { kNull, kBool, kInt, kFloat, kString };

Scalar scalarKind(const YAML::Node& n) {
  const auto& tag = n.Tag();
  if (tag == "!" || tag.ends_with(":str")) return Scalar::kString;  // quoted or !!str
  const auto& s = n.Scalar();
  static const std::regex kInt("^[-+]?[0-9]+$");
  static const std::regex kFloat("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
  static const std::regex kBool(
      "^(true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|"
      "off|Off|OFF|y|Y|n|N)$");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Scalar::kNull;
  if (std::regex_match(s, kBool)) return Scalar::kBool;
  if (std::regex_match(s, kInt)) return Scalar::kInt;
  if (std::regex_match(s, kFloat)) return Scalar::kFloat;
  return Scalar::kString;
}

bool isTrue(const YAML::Node& n) { return n.IsDefined() && n.IsScalar() && n.as<bool>(); }

void validate(const YAML::Node& v, const YAML::Node& schema, const std::string& path,
              std::vector<std::string>& errors) {
  auto err = [&](const std::string& m) { errors.push_back(path + ": " + m); };
  if (!v.IsDefined() || v.IsNull() || (v.IsScalar() && scalarKind(v) == Scalar::kNull)) return;
  const std::string type = schema["type"].IsDefined() ? schema["type"].as<std::string>() : "";
  const bool int_or_string = isTrue(schema["x-kubernetes-int-or-string"]);
  const Scalar k = v.IsScalar() ? scalarKind(v) : Scalar::kNull;
  auto bounds = [&]<class T>(T x) {  // integers compared as integers (2^62 + 1 > 2^62)
    if (schema["minimum"].IsDefined() && x < schema["minimum"].as<T>()) err("below minimum");
    if (schema["maximum"].IsDefined() && x > schema["maximum"].as<T>()) err("above maximum");
  };
  auto strings = [&] {
    const auto& s = v.Scalar();
    static std::map<std::string, std::regex> compiled;
    if (const auto p = schema["pattern"]; p.IsDefined()) {
      auto it = compiled.try_emplace(p.as<std::string>(), p.as<std::string>()).first;
      if (!std::regex_search(s, it->second)) err("\"" + s + "\" does not match " + it->first);
    }
    if (schema["enum"].IsDefined()) {
      bool found = false;
      for (const auto& e : schema["enum"]) found = found || e.as<std::string>() == s;
      if (!found) err("\"" + s + "\" is not an allowed value");
    }
  };
  if (type.empty() && !int_or_string) {
    if (!isTrue(schema["x-kubernetes-preserve-unknown-fields"])) err("schema without a type");
    return;  // anything goes
  }
  if (int_or_string) {
    if (!v.IsScalar() || (k != Scalar::kInt && k != Scalar::kString)) return err("int or string");
    if (k == Scalar::kInt) return bounds(v.as<long long>());
    return strings();
  }
  if (type == "string") {
    if (!v.IsScalar() || k != Scalar::kString) return err("must be of type string");
    return strings();
  }
  if (type == "integer") {
    if (!v.IsScalar() || k != Scalar::kInt) return err("must be of type integer");
    return bounds(v.as<long long>());
  }
  if (type == "number") {
    if (!v.IsScalar() || (k != Scalar::kInt && k != Scalar::kFloat))
      return err("must be of type number");
    return bounds(v.as<double>());
  }
  if (type == "boolean") {
    if (!v.IsScalar() || k != Scalar::kBool) err("must be of type boolean");
    return;
  }
  if (type == "array") {
    if (!v.IsSequence()) return err("must be of type array");
    if (schema["minItems"].IsDefined() && v.size() < schema["minItems"].as<std::size_t>())
      err("too few items");
    for (std::size_t i = 0; i < v.size(); ++i)
      validate(v[i], schema["items"], path + "[" + std::to_string(i) + "]", errors);
    return;
  }
  if (type != "object") return err("unknown schema type " + type);
  if (!v.IsMap()) return err("must be of type object");
  const auto props = schema["properties"];
  const auto additional = schema["additionalProperties"];
  if (additional.IsDefined()) {
    for (const auto& kv : v)
      validate(kv.second, additional, path + "." + kv.first.Scalar(), errors);
  } else if (props.IsDefined()) {
    for (const auto& kv : v) {
      const auto key = kv.first.Scalar();
      if (const auto p = props[key]; p.IsDefined()) {
        validate(kv.second, p, path + "." + key, errors);
      } else if (!isTrue(schema["x-kubernetes-preserve-unknown-fields"])) {
        err("unknown field \"" + key + "\"");
      }
    }
  }  // else: metadata, which the API server validates itself
  for (const auto& r : schema["required"]) {
    const auto f = v[r.as<std::string>()];
    if (!f.IsDefined() || f.IsNull()) err("required field \"" + r.as<std::string>() + "\" missing");
  }
}

// ---- The generated CRDs, parsed back as a client would ----

struct Crds {
  std::string text;
  std::vector<YAML::Node> docs;
  std::map<std::string, YAML::Node> schema_by_kind;  // openAPIV3Schema
};

const Crds& crds() {
  static const Crds c = [] {
    Crds c;
    auto text = generateCrds();
    EXPECT_TRUE(text.ok()) << text.error().message;
    if (!text) return c;
    c.text = *text;
    for (const auto& d : YAML::LoadAll(c.text)) {
      c.docs.push_back(d);
      c.schema_by_kind[d["spec"]["names"]["kind"].as<std::string>()].reset(
          d["spec"]["versions"][0]["schema"]["openAPIV3Schema"]);
    }
    return c;
  }();
  return c;
}

const std::string kTidegate = "tidegate.io/v1alpha1";

// Errors of each tidegate.io document of `text` against its CRD; `checked` counts documents.
std::vector<std::string> validateText(const std::string& text, int* checked = nullptr) {
  std::vector<std::string> errors;
  for (const auto& doc : YAML::LoadAll(text)) {
    if (!doc.IsMap() || !doc["apiVersion"].IsDefined() ||
        doc["apiVersion"].as<std::string>() != kTidegate)
      continue;
    const auto kind = doc["kind"].as<std::string>();
    const auto it = crds().schema_by_kind.find(kind);
    if (it == crds().schema_by_kind.end()) {
      errors.push_back("no CRD for kind " + kind);
      continue;
    }
    validate(doc, it->second, kind, errors);
    if (checked) ++*checked;
  }
  return errors;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "  " + s + "\n";
  return out;
}

TEST(Crd, ExemplarsReachEveryFieldTheLoaderReads) {
  auto recorder = recordLoaderSchema();
  ASSERT_TRUE(recorder.ok()) << recorder.error().message;
  const auto gaps = schemaGaps(*recorder);
  EXPECT_TRUE(gaps.empty()) << join(gaps);
}

TEST(Crd, GapsAreFoundAndNamed) {
  // A list no exemplar fills, a field read raw and never typed, a field read with two types.
  SchemaRecorder r;
  auto& spec = r.root(kTidegate, "Gateway").property("spec");
  spec.setType(SchemaNode::Type::kObject);
  spec.property("hosts").setType(SchemaNode::Type::kArray);
  spec.property("raw");
  spec.property("both").setType(SchemaNode::Type::kString);
  spec.property("both").setType(SchemaNode::Type::kInteger);
  const auto gaps = join(schemaGaps(r));
  EXPECT_NE(gaps.find("Gateway.spec.hosts: a list without an item schema"), std::string::npos)
      << gaps;
  EXPECT_NE(gaps.find("Gateway.spec.raw: accepted but never read by a typed accessor"),
            std::string::npos)
      << gaps;
  EXPECT_NE(gaps.find("Gateway.spec.both: read as a string and as an integer"), std::string::npos)
      << gaps;
  EXPECT_NE(gaps.find("NodePool: no exemplar"), std::string::npos) << gaps;
}

TEST(Crd, RequirednessCountsOnlyMapsThatArePresent) {
  // tls.certificateFile is required whenever tls is given; an absent tls does not dilute it.
  // NodePool.maxNodes is required of elastic pools only, so not by the schema.
  auto recorder = recordLoaderSchema();
  ASSERT_TRUE(recorder.ok());
  const auto& gw = *recorder->find(kTidegate, "Gateway");
  const auto tls = gw.properties.at("spec")->properties.at("tls")->required();
  EXPECT_EQ(tls, (std::vector<std::string>{"certificateFile", "keyFile"}));
  const auto& np = *recorder->find(kTidegate, "NodePool");
  EXPECT_EQ(np.properties.at("spec")->required(), std::vector<std::string>{"kind"});
}

TEST(Crd, EveryCrdIsStructural) {
  const auto& c = crds();
  ASSERT_EQ(c.docs.size(), crdKinds().size());
  // Structural: every node typed (or int-or-string, or preserving unknown fields), at most one
  // of properties/additionalProperties/items, required fields among the properties.
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& s,
                                                                        const std::string& path) {
    const bool typed = s["type"].IsDefined() || isTrue(s["x-kubernetes-int-or-string"]) ||
                       isTrue(s["x-kubernetes-preserve-unknown-fields"]);
    EXPECT_TRUE(typed) << path;
    int shapes = s["properties"].IsDefined() + s["additionalProperties"].IsDefined() +
                 s["items"].IsDefined();
    EXPECT_LE(shapes, 1) << path;
    const auto type = s["type"].IsDefined() ? s["type"].as<std::string>() : "";
    if (type == "array") {
      EXPECT_TRUE(s["items"].IsDefined()) << path << ": a list without items";
    }
    if (type == "object" && path.find(".metadata") == std::string::npos &&
        !isTrue(s["x-kubernetes-preserve-unknown-fields"])) {
      EXPECT_EQ(shapes, 1) << path << ": an object without known fields";
    }
    for (const auto& r : s["required"])
      EXPECT_TRUE(s["properties"][r.as<std::string>()].IsDefined()) << path << " " << r;
    for (const auto& kv : s["properties"]) walk(kv.second, path + "." + kv.first.Scalar());
    if (s["additionalProperties"].IsDefined()) walk(s["additionalProperties"], path + ".*");
    if (s["items"].IsDefined()) walk(s["items"], path + "[]");
  };
  for (const auto& d : c.docs) {
    const auto kind = d["spec"]["names"]["kind"].as<std::string>();
    EXPECT_EQ(d["apiVersion"].as<std::string>(), "apiextensions.k8s.io/v1");
    EXPECT_EQ(d["metadata"]["name"].as<std::string>(),
              d["spec"]["names"]["plural"].as<std::string>() + ".tidegate.io");
    const auto schema = c.schema_by_kind.at(kind);
    walk(schema, kind);
    // The top: apiVersion, kind, metadata (left to the API server), spec, status.
    for (const auto& kv : schema["properties"]) {
      const auto key = kv.first.Scalar();
      EXPECT_TRUE(key == "apiVersion" || key == "kind" || key == "metadata" || key == "spec" ||
                  key == "status")
          << kind << "." << key;
    }
    EXPECT_TRUE(isTrue(schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"]));
    // Printer columns point at fields the schema has.
    for (const auto& col : d["spec"]["versions"][0]["additionalPrinterColumns"]) {
      const auto jp = col["jsonPath"].as<std::string>();
      if (!jp.starts_with(".spec.")) continue;
      YAML::Node at = schema["properties"]["spec"];
      std::stringstream parts(jp.substr(6));
      for (std::string part; std::getline(parts, part, '.');) at.reset(at["properties"][part]);
      EXPECT_TRUE(at.IsDefined()) << kind << " column " << col["name"] << ": " << jp;
    }
  }
  const auto scope = [&](const std::string& kind) {
    for (const auto& d : c.docs)
      if (d["spec"]["names"]["kind"].as<std::string>() == kind)
        return d["spec"]["scope"].as<std::string>();
    return std::string();
  };
  EXPECT_EQ(scope("NodePool"), "Cluster");
  EXPECT_EQ(scope("InferenceService"), "Namespaced");
}

TEST(Crd, CommittedFileIsUpToDate) {
  // Like controller-gen's verify: a loader change that forgets `tidegate crds > ...` fails here.
  const auto committed = readFile(fs::path(TIDEGATE_SOURCE_DIR) / "deploy/base/crds.yaml");
  ASSERT_FALSE(crds().text.empty());
  EXPECT_TRUE(committed == crds().text)
      << "deploy/base/crds.yaml is stale: run `./build/tidegate crds > deploy/base/crds.yaml`";
}

TEST(Crd, ExemplarsAndExamplesValidate) {
  int checked = 0;
  auto errors = validateText(crdExemplars(), &checked);
  EXPECT_TRUE(errors.empty()) << "exemplars:\n" << join(errors);
  for (const auto& e : fs::directory_iterator(fs::path(TIDEGATE_SOURCE_DIR) / "examples")) {
    if (e.path().extension() != ".yaml") continue;
    auto c = loadConfig(e.path().string());
    ASSERT_TRUE(c.ok()) << c.error().message;
    errors = validateText(readFile(e.path()), &checked);
    EXPECT_TRUE(errors.empty()) << e.path() << ":\n" << join(errors);
  }
  EXPECT_GE(checked, 20);
}

// The YAML of every raw string literal R"...(...)..." of the unit and integration tests.
std::vector<std::string> testConfigs() {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(TIDEGATE_SOURCE_DIR) / "tests")) {
    const auto p = e.path().string();
    if (!p.ends_with("_test.cc") || p.find("node_modules") != std::string::npos) continue;
    const auto src = readFile(e.path());
    for (std::size_t at = src.find("R\""); at != std::string::npos; at = src.find("R\"", at + 2)) {
      if (at > 0 && (std::isalnum(static_cast<unsigned char>(src[at - 1])) || src[at - 1] == '_'))
        continue;
      const auto open = src.find('(', at);
      if (open == std::string::npos || open - at > 18) continue;
      const std::string close = ")" + src.substr(at + 2, open - at - 2) + "\"";
      const auto end = src.find(close, open);
      if (end == std::string::npos) break;
      const auto body = src.substr(open + 1, end - open - 1);
      if (body.find(kTidegate) != std::string::npos) out.push_back(body);
      at = end;
    }
  }
  return out;
}

TEST(Crd, EveryTestConfigurationThatLoadsValidates) {
  setenv("TIDEGATE_TEST_KEY", "sk-from-env", 0);  // as loader_test.cc's access configuration
  int loaded = 0, checked = 0;
  for (const auto& text : testConfigs()) {
    if (!parseConfig(text, "test.yaml").ok()) continue;  // a fragment, or a format string
    ++loaded;
    const auto errors = validateText(text, &checked);
    EXPECT_TRUE(errors.empty()) << text << "\n" << join(errors);
  }
  EXPECT_GE(loaded, 5);
  EXPECT_GE(checked, 10);
}

// ---- Mutations: what the loader rejects, the schema rejects ----

struct Mutant {
  std::string what;  // "InferenceService.spec.minReplicas: above maximum"
  std::string text;  // the whole configuration with one document changed
};

// YAML::Dump forgets that a scalar was quoted ("4" would come back as 4): keep the quotes.
void emitNode(YAML::Emitter& out, const YAML::Node& n) {
  if (n.IsMap()) {
    out << YAML::BeginMap;
    for (const auto& kv : n) {
      out << YAML::Key;
      emitNode(out, kv.first);
      out << YAML::Value;
      emitNode(out, kv.second);
    }
    out << YAML::EndMap;
  } else if (n.IsSequence()) {
    out << YAML::BeginSeq;
    for (const auto& item : n) emitNode(out, item);
    out << YAML::EndSeq;
  } else if (n.IsScalar()) {
    if (n.Tag() == "!") out << YAML::DoubleQuoted;
    out << n.Scalar();
  } else {
    out << YAML::Null;
  }
}

std::string dumpAll(const std::vector<YAML::Node>& docs) {
  std::string out;
  for (const auto& d : docs) {
    YAML::Emitter e;
    emitNode(e, d);
    out += "---\n" + std::string(e.c_str()) + "\n";
  }
  return out;
}

// A path inside a document: map keys, and "#N" for the Nth item of a list.
using Path = std::vector<std::string>;

YAML::Node child(YAML::Node n, const std::string& step) {
  return step[0] == '#' ? n[std::stoul(step.substr(1))] : n[step];
}

// Mutants of `docs` (a configuration that loads): for each tidegate.io document, each object of
// its spec gets an unknown field or loses a required one, each value gets a wrong type, each
// bounded number goes out of bounds, each enum, pattern gets a value they refuse.
std::vector<Mutant> mutants(const std::vector<YAML::Node>& docs) {
  std::vector<Mutant> out;
  for (std::size_t d = 0; d < docs.size(); ++d) {
    if (!docs[d].IsMap() || !docs[d]["apiVersion"].IsDefined() ||
        docs[d]["apiVersion"].as<std::string>() != kTidegate)
      continue;
    const auto kind = docs[d]["kind"].as<std::string>();
    const auto schema = crds().schema_by_kind.at(kind)["properties"]["spec"];
    // Applies `change` to a copy of the value at `path` (from spec) and records the mutant.
    auto mutate =
        [&](const Path& path, const std::string& what,
            const std::function<void(YAML::Node parent, const std::string& key)>& change) {
          auto copy = docs;
          copy[d].reset(YAML::Clone(docs[d]));
          YAML::Node parent = copy[d];
          std::string key = "spec";
          for (const auto& k : path) {
            parent.reset(child(parent, key));  // (operator= would overwrite the node itself)
            key = k;
          }
          change(parent, key);
          std::string where = kind + ".spec";
          for (const auto& k : path) where += "." + k;
          out.push_back({where + ": " + what, dumpAll(copy)});
        };
    std::function<void(const YAML::Node&, const YAML::Node&, const Path&)> walk =
        [&](const YAML::Node& v, const YAML::Node& s, const Path& path) {
          if (!v.IsDefined() || v.IsNull()) return;
          const bool preserve = isTrue(s["x-kubernetes-preserve-unknown-fields"]);
          const std::string type = s["type"].IsDefined() ? s["type"].as<std::string>() : "";
          if (preserve && type.empty()) return;  // accepted as is by both (a string or a list)
          auto set = [&](const YAML::Node& value) {
            return [value](YAML::Node parent, const std::string& key) {
              if (key[0] == '#') {
                parent[std::stoul(key.substr(1))] = value;
              } else {
                parent[key] = value;
              }
            };
          };
          // A wrong type: a map where a scalar or list is, a scalar where a map is.
          YAML::Node wrong = type == "object" ? YAML::Node("scalar") : YAML::Load("{x: 1}");
          mutate(path, "wrong type", set(wrong));
          if (s["minimum"].IsDefined()) {
            const auto lo = s["minimum"].as<double>();
            mutate(path, "below minimum",
                   set(YAML::Load(std::to_string(static_cast<long>(lo) - 1))));
          }
          if (s["maximum"].IsDefined()) {
            const auto hi = s["maximum"].as<long>();
            mutate(path, "above maximum", set(YAML::Load(std::to_string(hi + 1))));
          }
          if (s["enum"].IsDefined() || s["pattern"].IsDefined())
            mutate(path, "a value not allowed", set(YAML::Node("bogus-value")));
          if (type == "object" && v.IsMap() && s["properties"].IsDefined()) {
            auto p = path;
            p.push_back("bogusField");
            mutate(p, "unknown field", set(YAML::Node(1)));
            for (const auto& r : s["required"]) {
              auto q = path;
              q.push_back(r.as<std::string>());
              mutate(q, "required field removed",
                     [](YAML::Node parent, const std::string& key) { parent.remove(key); });
            }
            for (const auto& kv : v) {
              auto q = path;
              q.push_back(kv.first.Scalar());
              walk(kv.second, s["properties"][kv.first.Scalar()], q);
            }
          }
          if (type == "object" && v.IsMap() && s["additionalProperties"].IsDefined())
            for (const auto& kv : v) {
              auto q = path;
              q.push_back(kv.first.Scalar());
              walk(kv.second, s["additionalProperties"], q);
            }
          // The items of a list: through its first item.
          if (type == "array" && v.IsSequence() && v.size() > 0) {
            auto q = path;
            q.push_back("#0");
            walk(v[0], s["items"], q);
          }
        };
    walk(docs[d]["spec"], schema, {});
  }
  return out;
}

TEST(Crd, WhatTheLoaderRejectsTheSchemaRejects) {
  std::vector<std::pair<std::string, std::string>> configs = {{"exemplars", crdExemplars()}};
  for (const auto& e : fs::directory_iterator(fs::path(TIDEGATE_SOURCE_DIR) / "examples"))
    if (e.path().extension() == ".yaml") configs.push_back({e.path().string(), readFile(e.path())});
  int tried = 0;
  for (const auto& [name, text] : configs) {
    std::vector<YAML::Node> docs;
    for (const auto& d : YAML::LoadAll(text)) docs.push_back(d);
    ASSERT_TRUE(parseConfig(dumpAll(docs), name).ok()) << name << " as dumped does not load";
    const auto unchanged = validateText(dumpAll(docs));
    ASSERT_TRUE(unchanged.empty()) << name << " as dumped:\n" << join(unchanged);
    for (const auto& m : mutants(docs)) {
      ++tried;
      const auto loaded = parseConfig(m.text, name);
      const auto errors = validateText(m.text);
      EXPECT_FALSE(loaded.ok()) << name << ": " << m.what << ": the loader accepts it";
      EXPECT_FALSE(errors.empty()) << name << ": " << m.what << ": the schema accepts it";
    }
  }
  EXPECT_GE(tried, 300);
}

}  // namespace
}  // namespace tidegate::api

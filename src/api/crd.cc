#include "api/crd.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>

#include "api/loader.h"

namespace tidegate::api {
namespace {

using Type = SchemaNode::Type;

const std::string kApiVersion = std::string(kCrdGroup) + "/" + kCrdVersion;

// Bounds as YAML numbers: whole numbers without an exponent (1e15 reads as a string in YAML 1.1).
std::string numberText(double v) {
  if (std::floor(v) == v && std::fabs(v) < 9.2e18) return std::to_string(static_cast<long long>(v));
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// A scalar that must stay a string whatever it looks like ("1.2", "^[0-9]+$").
void quoted(YAML::Emitter& out, const std::string& s) { out << YAML::SingleQuoted << s; }

void emitSchema(YAML::Emitter& out, const SchemaNode& n);

void emitObjectBody(YAML::Emitter& out, const SchemaNode& n) {
  if (n.values) {
    out << YAML::Key << "additionalProperties" << YAML::Value;
    emitSchema(out, *n.values);
    return;
  }
  if (!n.properties.empty()) {
    out << YAML::Key << "properties" << YAML::Value << YAML::BeginMap;
    for (const auto& [key, child] : n.properties) {
      out << YAML::Key << key << YAML::Value;
      emitSchema(out, *child);
    }
    out << YAML::EndMap;
  }
  if (const auto req = n.required(); !req.empty())
    out << YAML::Key << "required" << YAML::Value << YAML::Flow << req;
}

void emitSchema(YAML::Emitter& out, const SchemaNode& n) {
  out << YAML::BeginMap;
  if (!n.description.empty()) out << YAML::Key << "description" << YAML::Value << n.description;
  switch (n.type) {
    case Type::kString:
      out << YAML::Key << "type" << YAML::Value << "string";
      break;
    case Type::kInteger:
      out << YAML::Key << "type" << YAML::Value << "integer";
      break;
    case Type::kNumber:
      out << YAML::Key << "type" << YAML::Value << "number";
      break;
    case Type::kBoolean:
      out << YAML::Key << "type" << YAML::Value << "boolean";
      break;
    case Type::kObject:
      out << YAML::Key << "type" << YAML::Value << "object";
      emitObjectBody(out, n);
      break;
    case Type::kArray:
      out << YAML::Key << "type" << YAML::Value << "array";
      if (n.min_items) out << YAML::Key << "minItems" << YAML::Value << *n.min_items;
      if (n.items) {
        out << YAML::Key << "items" << YAML::Value;
        emitSchema(out, *n.items);
      }
      break;
    case Type::kIntOrString:
      out << YAML::Key << "x-kubernetes-int-or-string" << YAML::Value << true;
      break;
    case Type::kAny:
    case Type::kUnset:  // reported by schemaGaps(); never printed
      out << YAML::Key << "x-kubernetes-preserve-unknown-fields" << YAML::Value << true;
      break;
  }
  if (!n.choices.empty()) {
    out << YAML::Key << "enum" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& c : n.choices) quoted(out, c);
    out << YAML::EndSeq;
  }
  if (!n.pattern.empty()) {
    out << YAML::Key << "pattern" << YAML::Value;
    quoted(out, n.pattern);
  }
  if (n.minimum) out << YAML::Key << "minimum" << YAML::Value << numberText(*n.minimum);
  if (n.maximum) out << YAML::Key << "maximum" << YAML::Value << numberText(*n.maximum);
  out << YAML::EndMap;
}

void findGaps(const SchemaNode& n, const std::string& path, std::vector<std::string>& gaps) {
  for (const auto& c : n.conflicts) gaps.push_back(path + ": " + c);
  switch (n.type) {
    case Type::kUnset:
      gaps.push_back(path + ": accepted but never read by a typed accessor");
      break;
    case Type::kObject:
      if (n.values) {
        findGaps(*n.values, path + ".*", gaps);
      } else if (n.properties.empty()) {
        gaps.push_back(path + ": a map with no known fields");
      }
      for (const auto& [key, child] : n.properties) findGaps(*child, path + "." + key, gaps);
      break;
    case Type::kArray:
      if (!n.items) {
        gaps.push_back(path + ": a list without an item schema (no exemplar has an item)");
      } else {
        findGaps(*n.items, path + "[]", gaps);
      }
      break;
    default:
      break;
  }
}

// The apiVersion/kind/metadata/spec/status top of a kind's schema: spec and status as the
// loader reads them, metadata left to the API server.
void emitTop(YAML::Emitter& out, const CrdKind& k, const SchemaNode& root) {
  out << YAML::BeginMap;
  out << YAML::Key << "description" << YAML::Value << k.description;
  out << YAML::Key << "type" << YAML::Value << "object";
  out << YAML::Key << "properties" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << YAML::BeginMap << YAML::Key << "type"
      << YAML::Value << "string" << YAML::EndMap;
  out << YAML::Key << "kind" << YAML::Value << YAML::BeginMap << YAML::Key << "type" << YAML::Value
      << "string" << YAML::EndMap;
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap << YAML::Key << "type"
      << YAML::Value << "object" << YAML::EndMap;
  for (const auto& [key, child] : root.properties) {
    if (key == "metadata") continue;
    out << YAML::Key << key << YAML::Value;
    if (key == "status") {
      // Written by tidegate (replicas per pool, conditions); free-form for now.
      out << YAML::BeginMap << YAML::Key << "type" << YAML::Value << "object" << YAML::Key
          << "x-kubernetes-preserve-unknown-fields" << YAML::Value << true << YAML::EndMap;
    } else {
      emitSchema(out, *child);
    }
  }
  out << YAML::EndMap;
  std::vector<std::string> req;
  for (const auto& r : root.required())
    if (r != "metadata") req.push_back(r);
  if (!req.empty()) out << YAML::Key << "required" << YAML::Value << YAML::Flow << req;
  out << YAML::EndMap;
}

std::string emitCrd(const CrdKind& k, const SchemaNode& root) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << "apiextensions.k8s.io/v1";
  out << YAML::Key << "kind" << YAML::Value << "CustomResourceDefinition";
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << k.plural + "." + kCrdGroup;
  out << YAML::Key << "labels" << YAML::Value << YAML::BeginMap << YAML::Key
      << "app.kubernetes.io/part-of" << YAML::Value << "tidegate" << YAML::EndMap;
  out << YAML::EndMap;
  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "group" << YAML::Value << kCrdGroup;
  out << YAML::Key << "names" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << k.kind;
  out << YAML::Key << "listKind" << YAML::Value << k.kind + "List";
  out << YAML::Key << "plural" << YAML::Value << k.plural;
  out << YAML::Key << "singular" << YAML::Value << k.singular;
  if (!k.short_names.empty())
    out << YAML::Key << "shortNames" << YAML::Value << YAML::Flow << k.short_names;
  out << YAML::Key << "categories" << YAML::Value << YAML::Flow
      << std::vector<std::string>{"tidegate"};
  out << YAML::EndMap;
  out << YAML::Key << "scope" << YAML::Value << (k.namespaced ? "Namespaced" : "Cluster");
  out << YAML::Key << "versions" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << kCrdVersion;
  out << YAML::Key << "served" << YAML::Value << true;
  out << YAML::Key << "storage" << YAML::Value << true;
  if (k.status_subresource)
    out << YAML::Key << "subresources" << YAML::Value << YAML::BeginMap << YAML::Key << "status"
        << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::EndMap << YAML::EndMap;
  out << YAML::Key << "additionalPrinterColumns" << YAML::Value << YAML::BeginSeq;
  auto columns = k.columns;
  columns.push_back({"Age", "date", ".metadata.creationTimestamp", ""});
  for (const auto& c : columns) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << c.name;
    out << YAML::Key << "type" << YAML::Value << c.type;
    out << YAML::Key << "jsonPath" << YAML::Value << c.json_path;
    if (!c.description.empty()) out << YAML::Key << "description" << YAML::Value << c.description;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "schema" << YAML::Value << YAML::BeginMap << YAML::Key << "openAPIV3Schema"
      << YAML::Value;
  emitTop(out, k, root);
  out << YAML::EndMap;
  out << YAML::EndMap << YAML::EndSeq;
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace

const std::vector<CrdKind>& crdKinds() {
  static const std::vector<CrdKind> kinds = {
      {.kind = "Gateway",
       .plural = "gateways",
       .singular = "gateway",
       .short_names = {"tgw"},
       .status_subresource = true,
       .columns = {{"Listen", "string", ".spec.listen", "HOST:PORT of the OpenAI API"},
                   {"API keys", "string", ".spec.auth.apiKeys", "required or disabled"}},
       .description = "The gateway and controller of tidegate: listener, limits, timeouts, "
                      "picker weights, access control, rate limits, ledger and pricing. One per "
                      "configuration."},
      {.kind = "NodePool",
       .plural = "nodepools",
       .singular = "nodepool",
       .short_names = {"tnp"},
       .namespaced = false,
       .status_subresource = true,
       .columns = {{"Kind", "string", ".spec.kind", "fixed (owned) or elastic (cloud)"},
                   {"Nodes", "integer", ".spec.nodes", "nodes of a fixed pool"},
                   {"Min", "integer", ".spec.minNodes", "least nodes of an elastic pool"},
                   {"Max", "integer", ".spec.maxNodes", "most nodes of an elastic pool"},
                   {"GPUs/node", "integer", ".spec.gpusPerNode", ""},
                   {"Price/node-hour", "number", ".spec.pricePerNodeHour", ""}},
       .description = "Capacity that InferenceService replicas are placed on: a fixed (owned, "
                      "on-prem) pool used first, or an elastic (cloud) pool that grows on peaks "
                      "and is given back first."},
      {.kind = "InferenceService",
       .plural = "inferenceservices",
       .singular = "inferenceservice",
       .short_names = {"tisvc"},
       .status_subresource = true,
       .columns = {{"Model", "string", ".spec.servedModelName", "model name served"},
                   {"Min", "integer", ".spec.minReplicas", ""},
                   {"Max", "integer", ".spec.maxReplicas", ""}},
       .description = "An autoscaled model server: its engine command, resources, replica "
                      "bounds, scaling metrics and behaviour."},
      {.kind = "Endpoints",
       .plural = "endpoints",
       .singular = "endpoints",
       .columns = {{"Addresses", "string", ".spec.addresses", ""},
                   {"Scheme", "string", ".spec.scheme", ""}},
       .description = "Static engine backends; their labels are matched by an InferencePool's "
                      "selector."},
      {.kind = "APIKey",
       .plural = "apikeys",
       .singular = "apikey",
       .columns = {{"Plan", "string", ".spec.plan", "the UsagePlan"},
                   {"Expires", "string", ".spec.expiresAt", ""}},
       .description = "An API key (its SHA-256, never the secret itself) and the UsagePlan "
                      "that limits it."},
      {.kind = "UsagePlan",
       .plural = "usageplans",
       .singular = "usageplan",
       .columns = {{"Req/min", "number", ".spec.requestsPerMinute", ""},
                   {"Tokens/min", "number", ".spec.tokensPerMinute", ""},
                   {"Priority", "string", ".spec.priority", ""}},
       .description = "Rate limits, quotas, allowed models and priority shared by the APIKeys "
                      "that name it."},
  };
  return kinds;
}

const std::string& crdExemplars() {
  // Every optional field is given where a branch or a list depends on it; fields read
  // unconditionally are recorded even when absent, but are given here too for the reader.
  static const std::string text = R"yaml(apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: exemplar}
spec:
  listen: 0.0.0.0:8080
  admin: 127.0.0.1:8081
  workers: 2
  retries: 1
  seed: 7
  limits: {maxBodyBytes: 1048576, maxHeaderBytes: 65536, maxConnections: 1000,
           maxResponseBytes: 1048576, maxEventBytes: 65536}
  timeouts: {connect: 1s, firstByte: 30s, idle: 60s, total: 10m}
  scrape: {interval: 50ms, staleAfter: 2s}
  saturation: {queueThreshold: 8, kvCacheThreshold: 0.9}
  controller: {interval: 1s}
  picker: {weights: {queue: 1, kvCache: 1, lora: 1, prefix: 1, inflight: 1}}
  auth: {adminToken: token, apiKeys: required, allowKeyRemoval: true}
  tls: {certificateFile: /tls/tls.crt, keyFile: /tls/tls.key, clientCAFile: /tls/ca.crt,
        minVersion: "1.3", handshakeTimeout: 5s, admin: true}
  upstreamTLS: {caFile: /tls/ca.crt, certificateFile: /tls/client.crt,
                keyFile: /tls/client.key, insecureSkipVerify: false}
  rateLimit:
    backend: redis
    redis: {address: redis:6379, timeout: 20ms, failurePolicy: closed}
  ledger: {path: /var/lib/tidegate/ledger.db, flushInterval: 250ms}
  pricing:
    models: [{model: m, promptPerMillion: 0.5, completionPerMillion: 1.5}]
    pools: [{pool: p, pricePerHour: 2.5}]
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: owned, labels: {tier: edge}}
spec: {kind: fixed, nodes: 2, gpusPerNode: 8, pricePerNodeHour: 0.9, provider: local}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: cloud}
spec: {kind: elastic, minNodes: 0, maxNodes: 4, gpusPerNode: 1, provisioningDelay: 60s,
       scaleDownUnneededTime: 10m, pricePerNodeHour: 3.06}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: listed, labels: {app: listed}}
spec:
  servedModelName: model
  command: [tidegate, engine, --port, "{port}"]
  image: vllm/vllm-openai:v0.6.3
  port: 8000
  modelVolume: {claimName: llm-model, mountPath: /mnt/models/Qwen}
  resources: {gpus: 1, cpu: "4", memory: 12Gi}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - {metric: tidegate_endpoint_queue, target: 4}
  - prometheus: {url: "http://prometheus:9090", query: "sum(rate(x[1m]))"}
    target: 10
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      selectPolicy: Max
      policies: [{type: Pods, value: 4, periodSeconds: 15}]
    scaleDown:
      stabilizationWindowSeconds: 300
      selectPolicy: Min
      policies: [{type: Percent, value: 50, periodSeconds: 60}]
  panic: {enabled: true, threshold: 2, hold: 60s}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: shell}
spec: {command: "tidegate engine --port {port}"}
---
apiVersion: tidegate.io/v1alpha1
kind: Endpoints
metadata: {name: static, labels: {app: static}}
spec: {addresses: ["10.0.0.1:8000"], scheme: https}
---
apiVersion: tidegate.io/v1alpha1
kind: UsagePlan
metadata: {name: plan}
spec: {requestsPerMinute: 60, requestsPerDay: 1000, tokensPerMinute: 1000, tokensPerDay: 10000,
       tokensPerMonth: 100000, maxConcurrentRequests: 4, models: ["llama-*"], priority: high}
---
apiVersion: tidegate.io/v1alpha1
kind: APIKey
metadata: {name: key}
spec:
  plan: plan
  sha256: e47e4ba5a43e2315c5dacac8bb11b346f061d4cd69e59ec04cc41ac3971fc825
  expiresAt: 2030-01-01T00:00:00Z
)yaml";
  return text;
}

Result<SchemaRecorder> recordLoaderSchema() {
  SchemaRecorder recorder;
  if (auto c = parseConfig(crdExemplars(), "crd-exemplars.yaml", &recorder); !c)
    return Error{"the CRD exemplars no longer load: " + c.error().message};
  return recorder;
}

std::vector<std::string> schemaGaps(const SchemaRecorder& recorder) {
  std::vector<std::string> gaps;
  for (const auto& k : crdKinds()) {
    const auto* root = recorder.find(kApiVersion, k.kind);
    if (!root) {
      gaps.push_back(k.kind + ": no exemplar");
      continue;
    }
    for (const auto& [key, child] : root->properties) {
      if (key == "metadata" || key == "status") continue;
      if (key != "spec")
        gaps.push_back(k.kind + "." + key + ": a top-level field CRDs do not have");
      findGaps(*child, k.kind + "." + key, gaps);
    }
  }
  return gaps;
}

Result<std::string> generateCrds() {
  auto recorder = recordLoaderSchema();
  if (!recorder) return recorder.error();
  if (const auto gaps = schemaGaps(*recorder); !gaps.empty()) {
    std::string msg = "the loader's schema has gaps:";
    for (const auto& g : gaps) msg += "\n  " + g;
    return Error{msg};
  }
  std::string out =
      "# CustomResourceDefinitions of tidegate's own kinds (tidegate.io/v1alpha1).\n"
      "# Generated by `tidegate crds` from the configuration loader (src/api/loader.cc,\n"
      "# src/api/crd.cc). Do not edit: regenerate with `tidegate crds > deploy/base/crds.yaml`.\n";
  for (const auto& k : crdKinds())
    out += "---\n" + emitCrd(k, *recorder->find(kApiVersion, k.kind));
  return out;
}

}  // namespace tidegate::api

#include "kube/objects.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <map>
#include <set>

#include "common/duration.h"

namespace tidegate::kube {

namespace {

const bj::object* obj(const bj::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v && v->is_object() ? &v->get_object() : nullptr;
}
const bj::array* arr(const bj::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v && v->is_array() ? &v->get_array() : nullptr;
}
std::string str(const bj::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
api::Labels stringMap(const bj::object* o) {
  api::Labels out;
  if (!o) return out;
  for (const auto& [k, v] : *o)
    if (v.is_string()) out[std::string(k)] = std::string(v.get_string());
  return out;
}
double timestamp(const std::string& s) {
  auto t = parseTimestamp(s);
  return t ? *t : 0;
}
// A resource quantity that must be a whole number ("1", "2"); anything else counts as 0.
int count(const bj::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  if (!v) return 0;
  if (v->is_int64()) return static_cast<int>(v->as_int64());
  if (!v->is_string()) return 0;
  const auto s = std::string(v->get_string());
  if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoi(s);
}
// The status of condition `type` ("True", "False", "Unknown"), and its reason and message.
const bj::object* condition(const bj::object* status, std::string_view type) {
  if (const auto* conds = arr(status, "conditions"))
    for (const auto& c : *conds)
      if (c.is_object() && str(&c.get_object(), "type") == type) return &c.get_object();
  return nullptr;
}

constexpr const char* kGpu = "nvidia.com/gpu";

}  // namespace

PodInfo podInfo(const bj::object& pod) {
  PodInfo p;
  const auto* meta = obj(&pod, "metadata");
  const auto* spec = obj(&pod, "spec");
  const auto* status = obj(&pod, "status");
  p.name = str(meta, "name");
  p.ns = str(meta, "namespace");
  p.labels = stringMap(obj(meta, "labels"));
  p.annotations = stringMap(obj(meta, "annotations"));
  p.terminating =
      meta && meta->contains("deletionTimestamp") && !meta->at("deletionTimestamp").is_null();
  p.draining = p.annotations.contains(kDrainingAnnotation);
  p.created = timestamp(str(meta, "creationTimestamp"));
  p.node = str(spec, "nodeName");
  p.phase = str(status, "phase");
  p.ip = str(status, "podIP");
  if (const auto* c = condition(status, "Ready")) p.ready = str(c, "status") == "True";
  if (const auto* c = condition(status, "PodScheduled");
      c && str(c, "status") == "False" && str(c, "reason") == "Unschedulable") {
    p.unschedulable = true;
    p.pending_message = str(c, "message");
  }
  if (const auto* containers = arr(spec, "containers"))
    for (const auto& c : *containers) {
      if (!c.is_object()) continue;
      const auto* res = obj(&c.get_object(), "resources");
      // Extended resources: requests equal limits; either may be written.
      p.gpus += std::max(count(obj(res, "limits"), kGpu), count(obj(res, "requests"), kGpu));
    }
  if (auto it = p.labels.find(kUnitLabel); it != p.labels.end()) {
    const auto& v = it->second;
    if (!v.empty() && v.size() < 4 && v.find_first_not_of("0123456789") == std::string::npos)
      p.unit = std::stoi(v);
  }
  return p;
}

NodeInfo nodeInfo(const bj::object& node) {
  NodeInfo n;
  const auto* meta = obj(&node, "metadata");
  const auto* spec = obj(&node, "spec");
  const auto* status = obj(&node, "status");
  n.name = str(meta, "name");
  n.labels = stringMap(obj(meta, "labels"));
  n.created = timestamp(str(meta, "creationTimestamp"));
  if (const auto* u = spec ? spec->if_contains("unschedulable") : nullptr; u && u->is_bool())
    n.unschedulable = u->get_bool();
  const auto* c = condition(status, "Ready");
  n.ready = c && str(c, "status") == "True" && !n.unschedulable;
  const auto* alloc = obj(status, "allocatable");
  n.gpus = count(alloc, kGpu);
  n.cpu = str(alloc, "cpu");
  n.memory = str(alloc, "memory");
  return n;
}

const api::NodePool* poolOf(const api::Config& c, const NodeInfo& node) {
  for (const auto& p : c.node_pools)
    if (api::selectorMatches(p.meta.labels, node.labels)) return &p;
  return nullptr;
}

std::string podState(const PodInfo& p, bool elastic_unit) {
  if (p.terminating) return "Terminating";
  if (p.draining) return "Draining";
  if (p.ready) return "Ready";
  if (!p.node.empty()) return "Starting";
  return elastic_unit ? "Provisioning" : "Pending";
}

PoolUsage poolUsage(const api::Config& c, const api::NodePool& pool,
                    const std::vector<NodeInfo>& nodes, const std::vector<PodInfo>& pods) {
  PoolUsage u;
  for (const auto& n : nodes) {
    if (poolOf(c, n) != &pool) continue;
    ++u.nodes;
    u.ready += n.ready;
    u.gpus += n.gpus;
    for (const auto& p : pods)
      if (p.node == n.name && !p.terminating && p.phase != "Succeeded" && p.phase != "Failed")
        u.gpus_used += p.gpus;
  }
  return u;
}

std::vector<api::Endpoints> podEndpoints(const api::Config& c, const std::vector<PodInfo>& pods) {
  std::vector<api::Endpoints> out;
  for (const auto& p : pods) {
    if (!p.ready || p.ip.empty() || p.terminating || p.draining) continue;
    const bool selected = std::any_of(c.pools.begin(), c.pools.end(), [&](const auto& pool) {
      return pool.meta.ns == p.ns && api::selectorMatches(pool.selector, p.labels);
    });
    if (!selected) continue;
    api::Endpoints e;
    e.meta.name = p.name;
    e.meta.ns = p.ns;
    e.meta.labels = p.labels;
    // Port 0: each pool that selects the pod reaches it on its own target port.
    e.addresses.push_back(api::HostPort{p.ip, 0});
    out.push_back(std::move(e));
  }
  return out;
}

namespace {
std::string dnsLabel(const std::string& in) {
  std::string out;
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(std::isalnum(c) ? static_cast<char>(std::tolower(c)) : '-');
  }
  if (out.size() > 63) out.resize(63);
  while (!out.empty() && out.back() == '-') out.pop_back();
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  return out.empty() ? "x" : out;
}
}  // namespace

std::string unitDeploymentName(const api::Config& c, const api::InferenceService& s, int unit) {
  const auto policy = api::placementPolicy(c, s);
  std::string pool = "unit" + std::to_string(unit);
  if (unit >= 0 && unit < static_cast<int>(policy.units.size()))
    for (const auto& p : c.node_pools)
      if (api::selectorMatches(policy.units[static_cast<std::size_t>(unit)].node_selector,
                               p.meta.labels)) {
        pool = p.meta.name;
        break;
      }
  return dnsLabel(s.meta.name + "-" + pool);
}

int servicePort(const api::Config& c, const api::InferenceService& s) {
  if (s.port > 0) return s.port;
  for (const auto& pool : c.pools)
    if (pool.meta.ns == s.meta.ns && api::selectorMatches(pool.selector, s.meta.labels))
      return pool.target_ports.front();
  return 8000;
}

bj::object deploymentFor(const api::Config& c, const api::InferenceService& s, int unit) {
  const auto policy = api::placementPolicy(c, s);
  const auto name = unitDeploymentName(c, s, unit);
  const int port = servicePort(c, s);
  bj::object selector{{kServiceLabel, s.meta.name}, {kUnitLabel, std::to_string(unit)}};
  bj::object pod_labels = selector;
  for (const auto& [k, v] : s.meta.labels) pod_labels[k] = v;
  bj::object meta_labels = pod_labels;
  meta_labels[kManagedBy] = "tidegate";

  std::vector<std::string> command = s.command.empty()
                                         ? std::vector<std::string>{"tidegate",
                                                                    "engine",
                                                                    "--port",
                                                                    "{port}",
                                                                    "--served-model-name",
                                                                    "{model}"}
                                         : s.command;
  // The device plugin assigns GPUs: {gpu_ids} has no meaning in a pod.
  auto argv = api::expandCommand(command, port, s.served_model_name, "");
  bj::array args;
  for (std::size_t i = 1; i < argv.size(); ++i) args.emplace_back(argv[i]);

  bj::object limits, requests;
  if (s.gpus > 0) {
    limits[kGpu] = std::to_string(s.gpus);
    requests[kGpu] = std::to_string(s.gpus);
  }
  if (!s.cpu.empty()) requests["cpu"] = s.cpu;
  if (!s.memory.empty()) {
    requests["memory"] = s.memory;
    limits["memory"] = s.memory;
  }
  auto probe = [&](int period, int failures) {
    return bj::object{{"httpGet", bj::object{{"path", "/health"}, {"port", port}}},
                      {"periodSeconds", period},
                      {"failureThreshold", failures}};
  };
  bj::object container{
      {"name", "engine"},
      {"image", s.image.empty() ? std::string("tidegate:latest") : s.image},
      {"command", bj::array{bj::value(argv.empty() ? std::string("tidegate") : argv[0])}},
      {"args", std::move(args)},
      {"ports", bj::array{bj::object{{"name", "http"}, {"containerPort", port}}}},
      {"resources", bj::object{{"limits", std::move(limits)}, {"requests", std::move(requests)}}},
      // Loading a model takes minutes: the startup probe allows 30 min before liveness counts.
      {"startupProbe", probe(10, 180)},
      {"readinessProbe", probe(2, 3)},
      {"livenessProbe", probe(10, 6)}};

  bj::object node_selector;
  if (unit >= 0 && unit < static_cast<int>(policy.units.size()))
    for (const auto& [k, v] : policy.units[static_cast<std::size_t>(unit)].node_selector)
      node_selector[k] = v;

  const auto& mv = s.model_volume;
  if (!mv.claim_name.empty())
    container["volumeMounts"] =
        bj::array{bj::object{{"name", "model"}, {"mountPath", mv.mount_path}, {"readOnly", true}}};
  bj::object pod_spec{{"containers", bj::array{std::move(container)}},
                      {"nodeSelector", std::move(node_selector)},
                      // Streams in flight finish: the gateway drains a pod before it goes.
                      {"terminationGracePeriodSeconds", 60}};
  if (!mv.claim_name.empty())
    pod_spec["volumes"] = bj::array{bj::object{
        {"name", "model"},
        {"persistentVolumeClaim", bj::object{{"claimName", mv.claim_name}, {"readOnly", true}}}}};
  if (s.gpus > 0)
    // GPU nodes are commonly tainted so that only GPU workloads land there.
    pod_spec["tolerations"] =
        bj::array{bj::object{{"key", kGpu}, {"operator", "Exists"}, {"effect", "NoSchedule"}}};
  return bj::object{
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata",
       bj::object{{"name", name}, {"namespace", s.meta.ns}, {"labels", std::move(meta_labels)}}},
      {"spec", bj::object{{"replicas", 0},
                          {"selector", bj::object{{"matchLabels", std::move(selector)}}},
                          {"template",
                           bj::object{{"metadata", bj::object{{"labels", std::move(pod_labels)}}},
                                      {"spec", std::move(pod_spec)}}}}}};
}

control::Cluster clusterModel(const api::Config& c, const api::InferenceService& s,
                              const std::vector<NodeInfo>& nodes, const std::vector<PodInfo>& pods,
                              const std::vector<int>& unit_replicas, double now) {
  control::Cluster cluster;
  cluster.pools = api::nodePoolSpecs(c);
  // GPUs other workloads hold on each node.
  std::map<std::string, int> others;
  for (const auto& p : pods) {
    const bool ours = p.ns == s.meta.ns && p.labels.count(kServiceLabel) &&
                      p.labels.at(kServiceLabel) == s.meta.name;
    const bool done = p.phase == "Succeeded" || p.phase == "Failed";
    if (!ours && !done && !p.node.empty()) others[p.node] += p.gpus;
  }
  for (const auto& n : nodes) {
    const auto* pool = poolOf(c, n);
    if (!pool || !n.ready) continue;
    control::Node node;
    node.name = n.name;
    node.pool = pool->meta.name;
    node.gpus = std::max(0, n.gpus - others[n.name]);
    node.ready = true;
    node.created = n.created;
    node.ready_at = n.created;
    node.idle_since = now;
    cluster.nodes.push_back(std::move(node));
  }
  for (const auto& p : pods) {
    if (p.ns != s.meta.ns || !p.labels.count(kServiceLabel) ||
        p.labels.at(kServiceLabel) != s.meta.name || p.terminating || p.phase == "Succeeded" ||
        p.phase == "Failed")
      continue;
    control::Replica r;
    r.id = p.name;
    r.service = s.meta.name;
    r.gpus = s.gpus;
    r.node = p.node;
    r.unit = p.unit;
    r.created = p.created;
    r.pending_since = p.created;
    cluster.replicas.push_back(std::move(r));
  }
  for (int u = 0; u < static_cast<int>(unit_replicas.size()); ++u) {
    const int want = unit_replicas[static_cast<std::size_t>(u)];
    if (want < 0) continue;
    std::vector<std::size_t> in_unit;
    for (std::size_t i = 0; i < cluster.replicas.size(); ++i)
      if (cluster.replicas[i].unit == u) in_unit.push_back(i);
    for (int i = static_cast<int>(in_unit.size()); i < want; ++i) {
      control::Replica r;
      r.id = "(" + std::to_string(u) + "-" + std::to_string(i) + ")";  // a pod to come
      r.service = s.meta.name;
      r.gpus = s.gpus;
      r.unit = u;
      r.created = now;
      r.pending_since = now;
      cluster.replicas.push_back(std::move(r));
    }
    // More pods than replicas: the ReplicaSet deletes Pending ones first, then the newest.
    std::stable_sort(in_unit.begin(), in_unit.end(), [&](std::size_t a, std::size_t b) {
      const auto& x = cluster.replicas[a];
      const auto& y = cluster.replicas[b];
      if (x.node.empty() != y.node.empty()) return x.node.empty();
      return x.created > y.created;
    });
    std::set<std::size_t> going;
    for (int i = 0; i < static_cast<int>(in_unit.size()) - want; ++i)
      going.insert(in_unit[static_cast<std::size_t>(i)]);
    std::size_t k = 0;
    std::erase_if(cluster.replicas, [&](const control::Replica&) { return going.contains(k++); });
  }
  // A Pending replica in a later unit is there because the policy already let it move on from
  // the earlier ones (their max, their lack of room, or their timeout): it has waited them out.
  // Without this, each new pod's fresh creation time would send it back to wait in the first
  // unit, and the Deployments would flap.
  for (auto& r : cluster.replicas)
    if (r.node.empty() && r.unit > 0) r.pending_since = -1e18;
  for (auto& n : cluster.nodes)
    if (std::any_of(cluster.replicas.begin(), cluster.replicas.end(),
                    [&](const control::Replica& r) { return r.node == n.name; }))
      n.idle_since = -1;
  cluster.accrued_until = now;
  return cluster;
}

std::vector<int> unitTargets(const control::Cluster& c, const control::Demand& d,
                             const control::Plan& plan) {
  const int units = static_cast<int>(d.policy.units.size());
  std::vector<int> target(static_cast<std::size_t>(std::max(units, 1)), 0);
  std::map<std::string, int> moved(plan.unit_of.begin(), plan.unit_of.end());
  std::set<std::string> removed(plan.remove.begin(), plan.remove.end());
  auto place = [&](int unit) {
    if (unit < 0 || unit >= units) {
      // Nowhere to go: the first unit under its max keeps it Pending.
      unit = 0;
      for (int u = 0; u < units; ++u) {
        const auto& max = d.policy.units[static_cast<std::size_t>(u)].max;
        if (!max || target[static_cast<std::size_t>(u)] < *max) {
          unit = u;
          break;
        }
      }
    }
    ++target[static_cast<std::size_t>(unit)];
  };
  for (const auto& r : c.replicas) {
    if (r.service != d.service || removed.contains(r.id)) continue;
    auto it = moved.find(r.id);
    place(it != moved.end() ? it->second : r.unit);
  }
  for (const auto& n : plan.create) {
    if (n.service != d.service) continue;
    auto it = moved.find(n.id);
    place(it != moved.end() ? it->second : -1);
  }
  return target;
}

std::string selectorString(const api::Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out;
}

}  // namespace tidegate::kube

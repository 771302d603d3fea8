#include "controller/kubernetes.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/duration.h"
#include "common/log.h"
#include "control/autoscaler.h"
#include "control/placement.h"
#include "controller/observe.h"
#include "controller/scaling_log.h"
#include "gateway/endpoint.h"
#include "gateway/gateway.h"
#include "kube/client.h"
#include "kube/objects.h"
#include "kube/reflector.h"

namespace tidegate::controller {

namespace asio = boost::asio;
namespace bj = boost::json;

namespace {
constexpr const char* kTemplateHash = "tidegate.io/template-hash";
// The cost the ReplicaSet controller sees on a drained pod: lower than any default (0).
constexpr const char* kDrainedCost = "-1000";

std::string objectKey(const std::string& ns, const std::string& name) { return ns + "/" + name; }

const bj::object* objAt(const bj::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v && v->is_object() ? &v->get_object() : nullptr;
}

// The configuration kinds read from the API (kube/objects.h has tidegate's own resources).
const std::vector<kube::Resource>& configKinds() {
  static const std::vector<kube::Resource> kinds = {
      {"inference.networking.x-k8s.io", "v1alpha2", "inferencepools", "InferencePool", true},
      {"inference.networking.x-k8s.io", "v1alpha2", "inferencemodels", "InferenceModel", true},
      {"inference.networking.k8s.io", "v1", "inferencepools", "InferencePool", true},
      {"istio.alibabacloud.com", "v1", "llmroutes", "LLMRoute", true},
      {"scheduling.alibabacloud.com", "v1alpha1", "resourcepolicies", "ResourcePolicy", true},
      {"tidegate.io", "v1alpha1", "gateways", "Gateway", true},
      {"tidegate.io", "v1alpha1", "nodepools", "NodePool", false},
      kube::resources::kInferenceServices,
      {"tidegate.io", "v1alpha1", "endpoints", "Endpoints", true},
      {"tidegate.io", "v1alpha1", "apikeys", "APIKey", true},
      {"tidegate.io", "v1alpha1", "usageplans", "UsagePlan", true},
  };
  return kinds;
}
constexpr const char* kApiKeySecretLabel = "tidegate.io/api-key";

// A configuration object as the loader reads it: apiVersion, kind, spec, and of its metadata
// only what a file would say (name, namespace, labels, annotations).
std::string configDocument(const bj::object& o) {
  bj::object meta;
  if (const auto* m = objAt(&o, "metadata"))
    for (const char* k : {"name", "namespace", "labels", "annotations"})
      if (const auto* v = m->if_contains(k)) meta[k] = *v;
  bj::object doc{{"metadata", std::move(meta)}};
  for (const char* k : {"apiVersion", "kind", "spec"})
    if (const auto* v = o.if_contains(k)) doc[k] = *v;
  return bj::serialize(doc);
}

}  // namespace

struct KubernetesController::Impl {
  gateway::Gateway& gw;
  KubernetesOptions opts;
  // Members the coroutines use come before the io_context: it is destroyed first (with any
  // suspended coroutine frame), while they still exist.
  std::unique_ptr<kube::Client> client;
  std::vector<std::unique_ptr<kube::Reflector>> pods;         // one per namespace
  std::unique_ptr<kube::Reflector> nodes;                     // cluster-wide
  std::vector<std::unique_ptr<kube::Reflector>> deployments;  // one per namespace
  std::unique_ptr<kube::LeaderElector> leader;
  std::vector<std::unique_ptr<kube::Reflector>> config;   // configuration kinds
  std::vector<std::unique_ptr<kube::Reflector>> secrets;  // labelled tidegate.io/api-key
  bool config_dirty = false;
  std::string config_digest;  // of the documents and Secrets last given to the gateway
  // What the gateway's reloads read (any thread): the documents and the Secrets' values.
  struct ConfigSnapshot {
    std::vector<api::Document> documents;
    std::map<std::string, std::map<std::string, std::string>> secrets;  // ns/name -> key -> value
  };
  std::mutex config_mu;
  std::shared_ptr<const ConfigSnapshot> config_snapshot;
  std::map<std::string, std::string> status_written;  // object path -> last status written

  struct Service {
    control::AutoscalerSpec autoscaler;
    control::AutoscalerState state;
    control::Decision last;
    bool decided = false;
  };
  std::map<std::string, Service> services;  // by namespace/name
  // Pods this leader drains: when it began, and whether its deletion cost is set.
  struct Drain {
    std::string service;  // namespace/name of its InferenceService
    int unit = -1;
    double since = 0;
    bool released = false;  // its deletion cost is set
    bool scaled = false;    // its Deployment was scaled down for it
  };
  std::map<std::string, Drain> draining;  // by namespace/name
  std::map<std::string, double> cost;     // NodePool -> money spent so far
  double cost_until = -1;
  std::string published = "(none)";
  std::unique_ptr<ScalingLog> scaling;  // decisions, for logs, metrics and /ui
  bool stopping = false;

  // What other threads read (the admin server's /admin/state, /metrics): rebuilt each tick.
  mutable std::mutex state_mu;
  bj::object state_kubernetes, state_services;
  bj::array state_pools;
  std::string metrics_text;

  asio::io_context ioc;
  std::thread thread;

  Impl(gateway::Gateway& g, KubernetesOptions o) : gw(g), opts(std::move(o)) {}

  std::vector<kube::PodInfo> podInfos() const {
    std::vector<kube::PodInfo> out;
    for (const auto& r : pods)
      for (const auto& [k, o] : r->objects()) out.push_back(kube::podInfo(o));
    return out;
  }
  std::vector<kube::NodeInfo> nodeInfos() const {
    std::vector<kube::NodeInfo> out;
    for (const auto& [k, o] : nodes->objects()) out.push_back(kube::nodeInfo(o));
    return out;
  }
  const bj::object* deployment(const std::string& ns, const std::string& name) const {
    for (const auto& r : deployments) {
      auto it = r->objects().find(objectKey(ns, name));
      if (it != r->objects().end()) return &it->second;
    }
    return nullptr;
  }
  bool synced() const {
    if (!nodes->synced()) return false;
    for (const auto& r : pods)
      if (!r->synced()) return false;
    for (const auto& r : deployments)
      if (!r->synced()) return false;
    return true;
  }

  void setup() {
    const auto cfg = gw.config();
    client = std::make_unique<kube::Client>(ioc.get_executor(), opts.cluster);
    std::set<std::string> namespaces(opts.watch_namespaces.begin(), opts.watch_namespaces.end());
    for (const auto& p : cfg->pools) namespaces.insert(p.meta.ns);
    for (const auto& s : cfg->services) namespaces.insert(s.meta.ns);
    for (const auto& ns : namespaces) {
      pods.push_back(std::make_unique<kube::Reflector>(*client, kube::resources::kPods.path(ns)));
      pods.back()->onChange([this](const kube::Reflector&) { publishEndpoints(); });
    }
    nodes = std::make_unique<kube::Reflector>(*client, kube::resources::kNodes.path());
    std::set<std::string> service_namespaces(opts.watch_namespaces.begin(),
                                             opts.watch_namespaces.end());
    for (const auto& s : cfg->services) service_namespaces.insert(s.meta.ns);
    for (const auto& kind : configKinds()) {
      std::vector<std::string> where;
      if (kind.namespaced)
        where = opts.watch_namespaces;
      else if (!opts.watch_namespaces.empty())
        where = {""};
      for (const auto& ns : where) {
        config.push_back(std::make_unique<kube::Reflector>(*client, kind.path(ns)));
        config.back()->onChange([this](const kube::Reflector&) { config_dirty = true; });
      }
    }
    for (const auto& ns : opts.watch_namespaces) {
      secrets.push_back(std::make_unique<kube::Reflector>(
          *client, kube::resources::kSecrets.path(ns),
          kube::ListOptions{.label_selector = kApiKeySecretLabel}));
      secrets.back()->onChange([this](const kube::Reflector&) { config_dirty = true; });
    }
    if (!opts.watch_namespaces.empty())
      gw.setConfigSource([this] {
        std::shared_ptr<const ConfigSnapshot> snap;
        {
          std::lock_guard lock(config_mu);
          snap = config_snapshot;
        }
        api::LoadOptions o;
        if (!snap) return o;
        o.extra = snap->documents;
        o.secret = [snap](const std::string& ns, const std::string& name,
                          const std::string& key) -> std::optional<std::string> {
          auto it = snap->secrets.find(objectKey(ns, name));
          if (it == snap->secrets.end()) return std::nullopt;
          auto k = it->second.find(key);
          if (k == it->second.end()) return std::nullopt;
          return k->second;
        };
        return o;
      });
    for (const auto& ns : service_namespaces)
      deployments.push_back(std::make_unique<kube::Reflector>(
          *client, kube::resources::kDeployments.path(ns),
          kube::ListOptions{.label_selector = std::string(kube::kManagedBy) + "=tidegate"}));
    leader = std::make_unique<kube::LeaderElector>(*client, opts.leader);
    leader->onChange([this](bool leading) {
      if (!leading) draining.clear();  // the next leader drains from what the pods say
    });
    scaling = std::make_unique<ScalingLog>(gw, "kubernetes");
    gw.metrics().addCollector([this](prom::TextWriter& w) { collect(w); });
    gw.addStateSection("kubernetes", [this] {
      std::lock_guard lock(state_mu);
      return bj::value(state_kubernetes);
    });
    gw.addStateSection("services", [this] {
      std::lock_guard lock(state_mu);
      return bj::value(state_services.contains("services") ? state_services.at("services")
                                                           : bj::value(bj::array{}));
    });
    gw.addStateSection("node_pools", [this] {
      std::lock_guard lock(state_mu);
      return bj::value(state_pools);
    });
    spdlog::info("kubernetes: {} server={} identity={} lease={}/{} namespaces={}",
                 opts.cluster.source, opts.cluster.server, opts.leader.identity, opts.leader.ns,
                 opts.leader.name, namespaces.size());
  }

  // Every Ready pod a pool selects, to the gateway (only when the set changed).
  void publishEndpoints() {
    const auto cfg = gw.config();
    auto eps = kube::podEndpoints(*cfg, podInfos());
    std::string key;
    for (const auto& e : eps)
      key += e.meta.ns + "/" + e.meta.name + "@" + e.addresses[0].host + ";";
    if (key == published) return;
    published = key;
    spdlog::info("kubernetes: {} ready pod endpoint(s)", eps.size());
    gw.setDynamicEndpoints(std::move(eps), "kubernetes");
  }

  asio::awaitable<void> sleep(double seconds) {
    asio::steady_timer t(ioc);
    t.expires_after(std::chrono::microseconds(static_cast<long>(seconds * 1e6)));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  asio::awaitable<void> loop() {
    while (!stopping) {
      applyConfigObjects();
      const auto cfg = gw.config();
      const double now = unixTime();
      accrueCost(*cfg, now);
      publishEndpoints();  // the configuration may have changed which pools select what
      if (synced()) {
        for (const auto& s : cfg->services) co_await reconcile(*cfg, s, now);
        if (leader->isLeader()) co_await writeNodePoolStatus(*cfg);
      }
      report(*cfg);
      co_await sleep(cfg->gateway.controller_interval_s);
    }
  }

  // When the configuration objects or their Secrets changed (and every watch of them has
  // listed once), the gateway reloads with them; a refused reload keeps the running
  // configuration and says why (/admin/state, the log, tidegate_config_reloads_total).
  void applyConfigObjects() {
    if (!config_dirty) return;
    for (const auto& r : config)
      if (!r->synced()) return;
    for (const auto& r : secrets)
      if (!r->synced()) return;
    config_dirty = false;
    auto snap = std::make_shared<ConfigSnapshot>();
    for (const auto& r : config)
      for (const auto& [key, o] : r->objects()) {
        const auto* kind = o.if_contains("kind");
        snap->documents.push_back(
            {"kubernetes " + (kind && kind->is_string() ? std::string(kind->as_string()) : "?") +
                 " " + key,
             configDocument(o)});
      }
    for (const auto& r : secrets)
      for (const auto& [key, o] : r->objects()) {
        auto& values = snap->secrets[key];
        if (const auto* data = objAt(&o, "data"))
          for (const auto& [k, v] : *data)
            if (v.is_string())
              if (auto decoded = crypto::base64Decode(v.as_string())) {
                while (!decoded->empty() && (decoded->back() == '\n' || decoded->back() == '\r'))
                  decoded->pop_back();  // `kubectl create secret --from-file` keeps a newline
                values[std::string(k)] = *decoded;
              }
      }
    // Status writes and metadata churn change objects but not what the loader reads: reload
    // only when the documents or the Secrets' values changed.
    std::string digest;
    for (const auto& d : snap->documents) digest += d.source + "\n" + d.text + "\n";
    for (const auto& [key, values] : snap->secrets)
      for (const auto& [k, v] : values) digest += key + "#" + k + "=" + crypto::sha256Hex(v) + "\n";
    digest = crypto::sha256Hex(digest);
    if (digest == config_digest) return;
    config_digest = digest;
    const auto count = snap->documents.size();
    {
      std::lock_guard lock(config_mu);
      config_snapshot = std::move(snap);
    }
    if (auto st = gw.reload(); st)
      spdlog::info("kubernetes: configuration reloaded with {} object(s) from the API", count);
    else
      spdlog::error("kubernetes: configuration objects refused: {}", st.message());
  }

  // The status of a tidegate.io object the configuration came from, when it changed.
  asio::awaitable<void> writeStatus(const kube::Resource& kind, const std::string& ns,
                                    const std::string& name, bj::object status) {
    const auto path = kind.path(ns, name, "status");
    bool exists = false;
    for (const auto& r : config)
      if (r->path() == kind.path(ns) &&
          r->objects().contains(ns.empty() ? name : objectKey(ns, name)))
        exists = true;
    if (!exists) co_return;
    auto text = bj::serialize(status);
    if (status_written[path] == text) co_return;
    bj::object patch{{"status", std::move(status)}};
    auto r = co_await client->patch(path, patch, kube::PatchType::kMerge);
    if (r)
      status_written[path] = std::move(text);
    else
      spdlog::warn("kubernetes: status of {}: {}", path, r.error().message);
  }

  // The status of NodePools that are cluster objects: their nodes, GPUs and cost so far (to
  // the cent, so that it is not rewritten at every tick).
  asio::awaitable<void> writeNodePoolStatus(const api::Config& cfg) {
    static const kube::Resource kNodePools{"tidegate.io", "v1alpha1", "nodepools", "NodePool",
                                           false};
    const auto nodes_now = nodeInfos();
    const auto pods_now = podInfos();
    for (const auto& np : cfg.node_pools) {
      const auto use = kube::poolUsage(cfg, np, nodes_now, pods_now);
      const double spent = cost.contains(np.meta.name) ? cost.at(np.meta.name) : 0.0;
      // (GCC 12: no braced temporaries inside a co_await expression.)
      bj::object status{{"nodes", use.nodes},
                        {"readyNodes", use.ready},
                        {"gpus", use.gpus},
                        {"gpusUsed", use.gpus_used},
                        {"cost", std::round(spent * 100) / 100}};
      co_await writeStatus(kNodePools, "", np.meta.name, std::move(status));
    }
  }

  // Ensures the unit's Deployment exists with the current template; its spec.replicas (0 when
  // just created; -1 when it could not be read or made).
  asio::awaitable<int> ensureDeployment(const api::Config& cfg, const api::InferenceService& s,
                                        int unit) {
    const auto name = kube::unitDeploymentName(cfg, s, unit);
    auto want = kube::deploymentFor(cfg, s, unit);
    const auto hash =
        crypto::sha256Hex(bj::serialize(want.at("spec").at("template"))).substr(0, 16);
    want["metadata"].as_object()["annotations"] = bj::object{{kTemplateHash, hash}};
    const auto* have = deployment(s.meta.ns, name);
    if (!have) {
      auto r = co_await client->create(kube::resources::kDeployments.path(s.meta.ns), want);
      if (!r && r.error().code != 409) {
        spdlog::error("kubernetes: create deployment {}/{}: {}", s.meta.ns, name,
                      r.error().message);
        co_return -1;
      }
      spdlog::info("kubernetes: service={} created deployment {}/{} (unit {})", s.meta.name,
                   s.meta.ns, name, unit);
      co_return 0;
    }
    const auto* meta = objAt(have, "metadata");
    const auto* ann = objAt(meta, "annotations");
    const auto* have_hash = ann ? ann->if_contains(kTemplateHash) : nullptr;
    if (!have_hash || !have_hash->is_string() || have_hash->get_string() != hash) {
      // The service's pod template changed (image, command, resources, unit selector).
      bj::object patch{{"metadata", bj::object{{"annotations", bj::object{{kTemplateHash, hash}}}}},
                       {"spec", bj::object{{"template", want.at("spec").at("template")}}}};
      auto r = co_await client->patch(kube::resources::kDeployments.path(s.meta.ns, name), patch,
                                      kube::PatchType::kMerge);
      if (r)
        spdlog::info("kubernetes: service={} updated the pod template of {}/{}", s.meta.name,
                     s.meta.ns, name);
      else
        spdlog::warn("kubernetes: update deployment {}/{}: {}", s.meta.ns, name, r.error().message);
    }
    const auto* spec = objAt(have, "spec");
    const auto* replicas = spec ? spec->if_contains("replicas") : nullptr;
    co_return replicas && replicas->is_int64() ? static_cast<int>(replicas->as_int64()) : 1;
  }

  asio::awaitable<bool> annotatePod(const kube::PodInfo& p, const char* key,
                                    const std::string& value) {
    bj::object patch{{"metadata", bj::object{{"annotations", bj::object{{key, value}}}}}};
    auto r = co_await client->patch(kube::resources::kPods.path(p.ns, p.name), patch,
                                    kube::PatchType::kMerge);
    if (!r && r.error().code != 404)
      spdlog::warn("kubernetes: annotate pod {}/{}: {}", p.ns, p.name, r.error().message);
    co_return r.ok();
  }

  asio::awaitable<void> reconcile(const api::Config& cfg, const api::InferenceService& s,
                                  double now) {
    if (!leader->isLeader()) co_return;
    auto& svc = services[objectKey(s.meta.ns, s.meta.name)];
    svc.autoscaler = autoscalerSpec(s);
    const auto policy = api::placementPolicy(cfg, s);
    const int units = static_cast<int>(policy.units.size());
    if (units == 0) co_return;
    std::vector<int> replicas(static_cast<std::size_t>(units), -1);
    for (int u = 0; u < units; ++u) {
      replicas[static_cast<std::size_t>(u)] = co_await ensureDeployment(cfg, s, u);
      if (!leader->isLeader()) co_return;
    }
    if (std::any_of(replicas.begin(), replicas.end(), [](int r) { return r < 0; })) co_return;

    // The service's pods; drains of pods that are gone are over.
    const auto all = podInfos();
    auto ours = [&](const kube::PodInfo& p) {
      auto it = p.labels.find(kube::kServiceLabel);
      return p.ns == s.meta.ns && it != p.labels.end() && it->second == s.meta.name;
    };
    const auto svc_key = objectKey(s.meta.ns, s.meta.name);
    std::set<std::string> present;
    for (const auto& p : all)
      if (ours(p)) present.insert(objectKey(p.ns, p.name));
    std::erase_if(draining, [&](const auto& kv) {
      return kv.second.service == svc_key && !present.contains(kv.first);
    });

    // The model leaves draining pods out (they are going), and the Deployments' counts without
    // the drains they still hold (a drain stops holding once its Deployment was scaled down).
    std::vector<kube::PodInfo> model_pods;
    std::vector<int> adjusted = replicas;
    for (const auto& p : all) {
      if (!(ours(p) && p.draining && !p.terminating)) {
        model_pods.push_back(p);
        continue;
      }
      auto it = draining.find(objectKey(p.ns, p.name));
      const bool scaled = it != draining.end() && it->second.scaled;
      if (!scaled && p.unit >= 0 && p.unit < units)
        adjusted[static_cast<std::size_t>(p.unit)] =
            std::max(0, adjusted[static_cast<std::size_t>(p.unit)] - 1);
    }
    const auto nodes_now = nodeInfos();
    auto model = kube::clusterModel(cfg, s, nodes_now, model_pods, adjusted, now);

    // Observe: the Ready pods' metrics, as the local controller reads its replicas'.
    const auto prom_totals = co_await prometheusTotals(ioc.get_executor(), s);
    std::map<std::string, const kube::PodInfo*> by_name;
    for (const auto& p : model_pods)
      if (ours(p)) by_name[p.name] = &p;
    const int port = kube::servicePort(cfg, s);
    int ready = 0;
    for (const auto& r : model.replicas)
      if (auto it = by_name.find(r.id); it != by_name.end() && it->second->ready) ++ready;
    control::Observation obs;
    obs.current = static_cast<int>(model.replicas.size());
    for (const auto& r : model.replicas) {
      auto it = by_name.find(r.id);
      if (it != by_name.end() && it->second->ready && !it->second->ip.empty()) {
        obs.replicas.push_back(
            observeReplica(gw, api::HostPort{it->second->ip, static_cast<std::uint16_t>(port)},
                           svc.autoscaler, prom_totals, ready));
      } else {
        obs.replicas.push_back(control::ReplicaObservation{.ready = false});
      }
    }
    const auto d = control::decide(svc.autoscaler, obs, now, svc.state);
    scaling->decision(s.meta.name, obs.current, d, svc.autoscaler);
    svc.last = d;
    svc.decided = true;

    // One service's demand on its own model: the scheduler arbitrates between services (the
    // model already leaves out the GPUs of other pods), so no preemption happens here.
    const auto demand = api::placementDemand(cfg, s, d.desired);
    const auto plan = control::plan(model, std::span(&demand, 1), now);
    for (const auto& why : plan.reasons)
      if (why.rfind("provision", 0) == 0 || why.rfind("release", 0) == 0)
        spdlog::debug("kubernetes: service={} (cluster autoscaler's part) {}", s.meta.name, why);
    auto targets = kube::unitTargets(model, demand, plan);

    // Scale-in: the plan's pods leave. Ready ones drain first, holding their replica until
    // drained; the others go at once (their deletion cost marks them for the ReplicaSet).
    for (const auto& id : plan.remove) {
      auto it = by_name.find(id);
      if (it == by_name.end()) continue;  // a pod still to come: fewer replicas is enough
      const auto& p = *it->second;
      const auto key = objectKey(p.ns, p.name);
      if (p.ready) {
        if (co_await annotatePod(p, kube::kDrainingAnnotation, formatTimestamp(now))) {
          draining[key] = Drain{svc_key, p.unit, now};
          spdlog::info("kubernetes: service={} drain pod {} (node {})", s.meta.name, key, p.node);
        }
      } else if (co_await annotatePod(p, kube::kDeletionCost, kDrainedCost)) {
        spdlog::info("kubernetes: service={} remove pod {} ({})", s.meta.name, key,
                     p.node.empty() ? "pending" : "not ready");
        continue;
      }
      // Not marked, or draining: it keeps its replica for now (no other pod may go instead).
      if (p.unit >= 0 && p.unit < units) ++targets[static_cast<std::size_t>(p.unit)];
      if (!leader->isLeader()) co_return;
    }
    // Drains in progress: done when this gateway has nothing in flight there (after
    // drain_min_s, so every gateway saw the annotation) or after drain_grace_s. A done drain
    // gets the lowest deletion cost and stops holding its replica: the scale-down below makes
    // the ReplicaSet delete exactly that pod.
    for (const auto& p : all) {
      if (!ours(p) || !p.draining || p.terminating) continue;
      const auto key = objectKey(p.ns, p.name);
      auto& dr = draining.try_emplace(key, Drain{svc_key, p.unit, now}).first->second;
      if (!dr.released) {
        auto ep = gw.endpoint(api::HostPort{p.ip, static_cast<std::uint16_t>(port)});
        const int inflight = ep ? ep->inflight.load() : 0;
        const double age = now - dr.since;
        if ((age >= opts.drain_min_s && inflight == 0) || age >= opts.drain_grace_s) {
          dr.released = co_await annotatePod(p, kube::kDeletionCost, kDrainedCost);
          if (dr.released)
            spdlog::info("kubernetes: service={} drained pod {} after {:.1f} s ({} in flight)",
                         s.meta.name, key, age, inflight);
        }
      }
      if (!dr.released && !dr.scaled && p.unit >= 0 && p.unit < units)
        ++targets[static_cast<std::size_t>(p.unit)];
      if (!leader->isLeader()) co_return;
    }
    for (int u = 0; u < units; ++u) {
      const auto i = static_cast<std::size_t>(u);
      if (targets[i] == replicas[i]) continue;
      if (!leader->isLeader()) co_return;
      const auto name = kube::unitDeploymentName(cfg, s, u);
      bj::object patch{{"spec", bj::object{{"replicas", targets[i]}}}};
      auto r = co_await client->patch(kube::resources::kDeployments.path(s.meta.ns, name, "scale"),
                                      patch, kube::PatchType::kMerge);
      if (!r) {
        spdlog::warn("kubernetes: scale {}/{}: {}", s.meta.ns, name, r.error().message);
        continue;
      }
      spdlog::info("kubernetes: service={} scale deployment {}/{} {} -> {}", s.meta.name, s.meta.ns,
                   name, replicas[i], targets[i]);
      if (targets[i] < replicas[i])
        for (auto& [key, dr] : draining)
          if (dr.service == svc_key && dr.unit == u && dr.released) dr.scaled = true;
    }

    // Status, for InferenceServices that are cluster objects: what was decided and where.
    bj::array unit_status;
    int ready_total = 0;
    for (int u = 0; u < units; ++u) {
      int ready_u = 0, pending_u = 0;
      for (const auto& p : all)
        if (ours(p) && p.unit == u && !p.terminating) {
          ready_u += p.ready;
          pending_u += p.node.empty();
        }
      ready_total += ready_u;
      unit_status.push_back(bj::object{{"deployment", kube::unitDeploymentName(cfg, s, u)},
                                       {"replicas", targets[static_cast<std::size_t>(u)]},
                                       {"ready", ready_u},
                                       {"pending", pending_u}});
    }
    const bool limited = d.desired != d.recommendation;
    bj::object status{
        {"desiredReplicas", d.desired},
        {"readyReplicas", ready_total},
        {"units", std::move(unit_status)},
        {"conditions",
         bj::array{bj::object{{"type", "Ready"},
                              {"status", ready_total >= std::min(d.desired, 1) ? "True" : "False"},
                              {"reason", ready_total > 0 ? "ReplicasReady" : "NoReadyReplica"}},
                   bj::object{{"type", "ScalingLimited"},
                              {"status", limited ? "True" : "False"},
                              {"reason", scalingReason(d, svc.autoscaler)},
                              {"message", d.reason}}}}};
    co_await writeStatus(kube::resources::kInferenceServices, s.meta.ns, s.meta.name,
                         std::move(status));
  }

  void accrueCost(const api::Config& cfg, double now) {
    const auto node_list = nodeInfos();
    if (cost_until >= 0 && now > cost_until && nodes->synced()) {
      for (const auto& n : node_list)
        if (const auto* pool = kube::poolOf(cfg, n))
          cost[pool->meta.name] += pool->price_per_node_hour * (now - cost_until) / 3600.0;
    }
    cost_until = now;
    // What each InferencePool's nodes cost now: the nodes of the pools its services' units use.
    for (const auto& pool : cfg.pools) {
      std::set<std::string> node_pools;
      bool selects = false;
      for (const auto& s : cfg.services) {
        if (pool.meta.ns != s.meta.ns || !api::selectorMatches(pool.selector, s.meta.labels))
          continue;
        selects = true;
        for (const auto& u : api::placementPolicy(cfg, s).units)
          for (const auto& np : cfg.node_pools)
            if (api::selectorMatches(u.node_selector, np.meta.labels))
              node_pools.insert(np.meta.name);
      }
      if (!selects) continue;
      double rate = 0;
      for (const auto& n : node_list)
        if (const auto* np = kube::poolOf(cfg, n); np && node_pools.contains(np->meta.name))
          rate += np->price_per_node_hour;
      gw.setPoolCostRate(pool.meta.name, rate);
    }
  }

  // /admin/state and the metrics, rebuilt from what the watches hold.
  void report(const api::Config& cfg) {
    const double now = unixTime();
    const auto all = podInfos();
    const auto node_list = nodeInfos();
    bj::array services_json;
    std::map<std::string, double> desired_counts, node_counts;
    std::map<std::tuple<std::string, std::string, std::string>, int> replica_counts;
    for (const auto& s : cfg.services) {
      const auto policy = api::placementPolicy(cfg, s);
      bj::array units_json;
      for (int u = 0; u < static_cast<int>(policy.units.size()); ++u) {
        std::string pool_names;
        bool elastic = false;
        for (const auto& np : cfg.node_pools)
          if (api::selectorMatches(policy.units[static_cast<std::size_t>(u)].node_selector,
                                   np.meta.labels)) {
            pool_names += (pool_names.empty() ? "" : ",") + np.meta.name;
            elastic = elastic || np.elastic;
          }
        const auto name = kube::unitDeploymentName(cfg, s, u);
        const auto* dep = deployment(s.meta.ns, name);
        const auto* spec = objAt(dep, "spec");
        const auto* rep = spec ? spec->if_contains("replicas") : nullptr;
        bj::array pods_json;
        for (const auto& p : all) {
          auto it = p.labels.find(kube::kServiceLabel);
          if (p.ns != s.meta.ns || it == p.labels.end() || it->second != s.meta.name || p.unit != u)
            continue;
          const auto state = kube::podState(p, elastic);
          ++replica_counts[{s.meta.name, pool_names, state}];
          bj::object pj{{"name", p.name},
                        {"state", state},
                        {"node", p.node},
                        {"ip", p.ip},
                        {"age_s", std::max(0.0, now - p.created)}};
          if (!p.pending_message.empty()) pj["message"] = p.pending_message;
          pods_json.push_back(std::move(pj));
        }
        units_json.push_back(bj::object{
            {"unit", u},
            {"deployment", name},
            {"pools", pool_names},
            {"elastic", elastic},
            {"max", policy.units[static_cast<std::size_t>(u)].max
                        ? bj::value(*policy.units[static_cast<std::size_t>(u)].max)
                        : bj::value(nullptr)},
            {"replicas", rep && rep->is_int64() ? bj::value(rep->as_int64()) : bj::value(nullptr)},
            {"pods", std::move(pods_json)}});
      }
      auto it = services.find(objectKey(s.meta.ns, s.meta.name));
      const bool decided = it != services.end() && it->second.decided;
      services_json.push_back(bj::object{
          {"name", s.meta.name},
          {"namespace", s.meta.ns},
          {"model", s.served_model_name},
          {"desired", decided ? bj::value(it->second.last.desired) : bj::value(nullptr)},
          {"last_decision", decided ? bj::value(it->second.last.reason) : bj::value(nullptr)},
          {"units", std::move(units_json)}});
      if (decided) desired_counts[s.meta.name] = it->second.last.desired;
    }

    bj::array pools_json;
    for (const auto& np : cfg.node_pools) {
      const auto use = kube::poolUsage(cfg, np, node_list, all);
      const double spent = cost.contains(np.meta.name) ? cost.at(np.meta.name) : 0.0;
      pools_json.push_back(bj::object{{"name", np.meta.name},
                                      {"elastic", np.elastic},
                                      {"nodes", use.nodes},
                                      {"ready", use.ready},
                                      {"provisioning", use.nodes - use.ready},
                                      {"gpus", use.gpus},
                                      {"gpus_used", use.gpus_used},
                                      {"price_per_node_hour", np.price_per_node_hour},
                                      {"cost", spent}});
      node_counts[np.meta.name] = use.nodes;
    }

    bj::array watches;
    auto watchJson = [&](const kube::Reflector& r) {
      watches.push_back(bj::object{{"path", r.path()},
                                   {"synced", r.synced()},
                                   {"objects", r.objects().size()},
                                   {"resource_version", r.resourceVersion()},
                                   {"relists_after_410", r.stats().gone},
                                   {"failures", r.stats().failures},
                                   {"last_error", r.lastError()}});
    };
    for (const auto& r : pods) watchJson(*r);
    watchJson(*nodes);
    for (const auto& r : deployments) watchJson(*r);
    for (const auto& r : config) watchJson(*r);
    for (const auto& r : secrets) watchJson(*r);
    const bool leading = leader->isLeader();
    bj::object kube_json{{"server", opts.cluster.server},
                         {"source", opts.cluster.source},
                         {"identity", opts.leader.identity},
                         {"leader", leading},
                         {"lease", opts.leader.ns + "/" + opts.leader.name},
                         {"lease_holder", leader->holder()},
                         {"leader_transitions", leader->transitions()},
                         {"requests", client->stats().requests},
                         {"retries", client->stats().retries},
                         {"failures", client->stats().failures},
                         {"throttled_s", client->stats().throttled_s},
                         {"watches", std::move(watches)},
                         {"draining", draining.size()}};

    prom::TextWriter w;
    w.family("tidegate_leader_is_leader", "gauge", "1 while this gateway runs the controller.");
    w.sample("tidegate_leader_is_leader", {{"identity", opts.leader.identity}}, leading ? 1 : 0);
    w.family("tidegate_leader_transitions_total", "counter",
             "Leadership gained or lost by this gateway.");
    w.sample("tidegate_leader_transitions_total", {}, static_cast<double>(leader->transitions()));
    w.family("tidegate_kubernetes_requests_total", "counter",
             "Requests to the Kubernetes API server.");
    w.sample("tidegate_kubernetes_requests_total", {},
             static_cast<double>(client->stats().requests));
    w.family("tidegate_replicas", "gauge", "Replicas by service, pool and state.");
    for (const auto& [k, v] : replica_counts)
      w.sample("tidegate_replicas",
               {{"service", std::get<0>(k)}, {"pool", std::get<1>(k)}, {"state", std::get<2>(k)}},
               v);
    w.family("tidegate_desired_replicas", "gauge", "The autoscaler's last desired replica count.");
    for (const auto& [name, desired] : desired_counts)
      w.sample("tidegate_desired_replicas", {{"service", name}}, desired);
    w.family("tidegate_nodes", "gauge", "Nodes by pool (including provisioning ones).");
    for (const auto& [pool, n] : node_counts) w.sample("tidegate_nodes", {{"pool", pool}}, n);
    w.family("tidegate_node_pool_max_nodes", "gauge",
             "The most nodes a pool may have (an owned pool's nodes, an elastic pool's maxNodes).");
    for (const auto& np : cfg.node_pools)
      w.sample("tidegate_node_pool_max_nodes",
               {{"pool", np.meta.name}, {"kind", np.elastic ? "elastic" : "owned"}},
               np.elastic ? np.max_nodes : np.min_nodes);
    w.family("tidegate_pool_cost_total", "counter", "Node-hours times price, accrued per pool.");
    for (const auto& [pool, n] : node_counts)
      w.sample("tidegate_pool_cost_total", {{"pool", pool}},
               cost.contains(pool) ? cost.at(pool) : 0.0);

    std::lock_guard lock(state_mu);
    state_kubernetes = std::move(kube_json);
    state_services = bj::object{{"services", std::move(services_json)}};
    state_pools = std::move(pools_json);
    metrics_text = w.take();
  }

  void collect(prom::TextWriter& w) const {
    std::lock_guard lock(state_mu);
    w.append(metrics_text);
  }
};

KubernetesController::KubernetesController(gateway::Gateway& gw, KubernetesOptions options)
    : impl_(std::make_unique<Impl>(gw, std::move(options))) {}

KubernetesController::~KubernetesController() { stop(); }

void KubernetesController::start() {
  auto& m = *impl_;
  m.setup();
  for (auto& r : m.pods) asio::co_spawn(m.ioc, r->run(), asio::detached);
  asio::co_spawn(m.ioc, m.nodes->run(), asio::detached);
  for (auto& r : m.deployments) asio::co_spawn(m.ioc, r->run(), asio::detached);
  for (auto& r : m.config) asio::co_spawn(m.ioc, r->run(), asio::detached);
  for (auto& r : m.secrets) asio::co_spawn(m.ioc, r->run(), asio::detached);
  asio::co_spawn(m.ioc, m.leader->run(), asio::detached);
  asio::co_spawn(m.ioc, m.loop(), asio::detached);
  m.thread = std::thread([&m] {
    try {
      m.ioc.run();
    } catch (const std::exception& e) {
      spdlog::critical("kubernetes: controller thread: {}", e.what());
    }
  });
}

void KubernetesController::stop() {
  auto& m = *impl_;
  if (!m.thread.joinable()) return;
  std::promise<void> released;
  auto done = released.get_future();
  asio::post(m.ioc, [&m, &released] {
    m.stopping = true;
    for (auto& r : m.pods) r->stop();
    m.nodes->stop();
    for (auto& r : m.deployments) r->stop();
    for (auto& r : m.config) r->stop();
    for (auto& r : m.secrets) r->stop();
    m.leader->stop();
    asio::co_spawn(
        m.ioc, [&m]() -> asio::awaitable<void> { co_await m.leader->release(); },
        [&released](std::exception_ptr) { released.set_value(); });
  });
  if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
    spdlog::warn("kubernetes: the Lease was not released in 5 s");
  m.client->cancel();
  m.ioc.stop();
  m.thread.join();
}

}  // namespace tidegate::controller

#include "controller/controller.h"

#include <signal.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <future>
#include <set>

#include "common/clock.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/net.h"
#include "common/url.h"
#include "control/autoscaler.h"
#include "control/placement.h"
#include "controller/observe.h"
#include "controller/scaling_log.h"
#include "gateway/endpoint.h"
#include "gateway/gateway.h"
#include "providers/local.h"

namespace tidegate::controller {

namespace asio = boost::asio;
namespace bj = boost::json;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr double kDrainGraceS = 30;
constexpr double kTermGraceS = 5;

namespace {
double now() { return monotonicSeconds(); }
}  // namespace

struct Controller::Impl {
  enum class State { kPending, kProvisioning, kStarting, kReady, kDraining, kTerminating };
  static const char* name(State s) {
    switch (s) {
      case State::kPending:
        return "Pending";
      case State::kProvisioning:
        return "Provisioning";
      case State::kStarting:
        return "Starting";
      case State::kReady:
        return "Ready";
      case State::kDraining:
        return "Draining";
      case State::kTerminating:
        return "Terminating";
    }
    return "?";
  }
  struct Proc {
    std::string id, node, pool;
    int port = 0;
    int slot = 0;  // first GPU index on its node (CUDA_VISIBLE_DEVICES)
    pid_t pid = -1;
    State state = State::kPending;
    double deadline = 0;
    double started = 0;  // when its process started on its node
  };
  struct Service {
    api::InferenceService spec;
    control::AutoscalerSpec autoscaler;
    control::AutoscalerState autoscaler_state;
    control::Demand demand;             // its placement (policy, GPUs, priority); desired per tick
    std::map<std::string, Proc> procs;  // by replica id; includes draining ones
    control::Decision last;
    std::map<std::string, double> replica_seconds;  // pool -> seconds of replicas that stopped
    int crashes = 0;
    double backoff_until = 0;
  };

  gateway::Gateway& gw;
  providers::LocalProvider provider;
  std::vector<std::unique_ptr<Service>> services;
  control::Cluster cluster;  // the node pools and every service's replicas (ids unique across)
  double interval = 1;
  bool stopping = false;
  std::unique_ptr<ScalingLog> scaling;  // decisions and node actions, for logs, metrics, /ui
  std::string published;                // last published endpoint set, to publish only changes

  explicit Impl(gateway::Gateway& g) : gw(g) {}

  void setup() {
    const auto cfg = gw.config();
    interval = cfg->gateway.controller_interval_s;
    cluster.pools = api::nodePoolSpecs(*cfg);
    cluster.bootstrap(now());
    for (const auto& s : cfg->services) {
      auto svc = std::make_unique<Service>();
      svc->spec = s;
      svc->autoscaler = autoscalerSpec(s);
      svc->demand = api::placementDemand(*cfg, s, 0);
      const api::ResourcePolicy* policy = nullptr;
      api::placementPolicy(*cfg, s, &policy);
      spdlog::info("controller: service={} replicas={}..{} priority={} pools={} policy={}",
                   s.meta.name, s.min_replicas, s.max_replicas, s.priority, cluster.pools.size(),
                   policy ? policy->meta.name : "(pool order)");
      services.push_back(std::move(svc));
    }
    scaling = std::make_unique<ScalingLog>(gw, "controller");
    gw.metrics().addCollector([this](prom::TextWriter& w) { collect(w); });
    gw.addStateSection("services", [this] { return servicesJson(); });
    gw.addStateSection("node_pools", [this] { return poolsJson(); });
  }

  asio::awaitable<void> loop() {
    asio::steady_timer timer(gw.controlContext());
    while (!stopping) {
      co_await tick();
      publish();
      publishCosts();
      timer.expires_after(std::chrono::milliseconds(static_cast<long>(interval * 1000)));
      co_await timer.async_wait(kTuple);
    }
  }

  api::HostPort address(const Proc& p) const {
    return {"127.0.0.1", static_cast<std::uint16_t>(p.port)};
  }

  // One reconcile: each service's processes and decision, then one plan for every service over
  // the shared model, then the plan's actions.
  asio::awaitable<void> tick() {
    const double t = now();
    control::advance(cluster, t);
    std::vector<control::Demand> demands;
    for (auto& s : services) {
      co_await watch(*s, t);
      const int desired = co_await decide(*s, t);
      s->demand.desired = desired;
      demands.push_back(s->demand);
    }
    const auto plan = control::plan(cluster, demands, t);
    act(plan, demands, t);
  }

  // Processes: exits, health, drains.
  asio::awaitable<void> watch(Service& s, double t) {
    for (auto it = s.procs.begin(); it != s.procs.end();) {
      Proc& p = it->second;
      if (p.pid > 0) {
        if (auto status = provider.reap(p.pid)) {
          if (p.state != State::kTerminating && p.state != State::kDraining) {
            ++s.crashes;
            s.backoff_until = t + std::min(30.0, double(1 << std::min(s.crashes, 5)));
            spdlog::warn("controller: service={} replica={} crashed status={} restart_backoff_s={}",
                         s.spec.meta.name, p.id, *status, s.backoff_until - t);
          } else {
            spdlog::info("controller: service={} replica={} stopped", s.spec.meta.name, p.id);
          }
          control::finished(cluster, p.id, t);  // its GPUs are free now
          s.replica_seconds[p.pool] += t - p.started;
          it = s.procs.erase(it);
          continue;
        }
      }
      if (p.state == State::kStarting) {
        http::Client client(gw.controlContext().get_executor(), "127.0.0.1",
                            static_cast<std::uint16_t>(p.port));
        http::ClientRequest req{.method = "GET", .target = "/health", .timeout_s = 0.5};
        auto r = co_await client.send(req);
        if (r && r->status == 200) {
          p.state = State::kReady;
          s.crashes = 0;
          spdlog::info("controller: service={} replica={} ready address={} pool={} node={}",
                       s.spec.meta.name, p.id, address(p).str(), p.pool, p.node);
        }
      } else if (p.state == State::kDraining) {
        auto ep = gw.endpoint(address(p));
        if (!ep || ep->inflight.load() == 0 || t >= p.deadline) {
          provider.signal(p.pid, SIGTERM);
          p.state = State::kTerminating;
          p.deadline = t + kTermGraceS;
        }
      } else if (p.state == State::kTerminating && t >= p.deadline) {
        provider.signal(p.pid, SIGKILL);
      }
      ++it;
    }
  }

  // Observes the service's Ready replicas and returns the autoscaler's desired count.
  asio::awaitable<int> decide(Service& s, double t) {
    const auto prom_totals = co_await prometheusTotals(gw.controlContext().get_executor(), s.spec);
    int ready_count = 0;
    for (const auto& [id, p] : s.procs) ready_count += p.state == State::kReady;
    control::Observation obs;
    for (const auto& r : cluster.replicas) {
      if (r.service != s.demand.service || r.terminating) continue;
      ++obs.current;
      auto it = s.procs.find(r.id);
      if (it != s.procs.end() && it->second.state == State::kReady) {
        obs.replicas.push_back(
            observeReplica(gw, address(it->second), s.autoscaler, prom_totals, ready_count));
      } else {
        obs.replicas.push_back(control::ReplicaObservation{.ready = false});
      }
    }
    const auto d = control::decide(s.autoscaler, obs, t, s.autoscaler_state);
    scaling->decision(s.spec.meta.name, obs.current, d, s.autoscaler);
    s.last = d;
    co_return d.desired;
  }

  // The service a replica of the model (or one `plan` creates) belongs to.
  Service* serviceOf(const std::string& replica, const control::Plan& plan) const {
    std::string name;
    for (const auto& r : cluster.replicas)
      if (r.id == replica) name = r.service;
    for (const auto& n : plan.create)
      if (n.id == replica) name = n.service;
    for (const auto& s : services)
      if (s->demand.service == name) return s.get();
    return nullptr;
  }

  // Carries `plan` out: drains what it removes, starts what it binds, keeps the rest Pending.
  void act(const control::Plan& plan, const std::vector<control::Demand>& demands, double t) {
    for (const auto& why : plan.reasons)
      if (why.find(": preempted by ") != std::string::npos) spdlog::info("controller: {}", why);
    std::vector<std::string> stopped;  // removed with no process running: nothing to wait for
    for (const auto& id : plan.remove) {
      Service* s = serviceOf(id, plan);
      if (!s) continue;
      auto it = s->procs.find(id);
      if (it == s->procs.end() || it->second.pid <= 0) stopped.push_back(id);
      if (it == s->procs.end()) continue;
      Proc& p = it->second;
      spdlog::info("controller: service={} replica={} remove pool={} node={}", s->spec.meta.name,
                   id, p.pool, p.node);
      if (p.state == State::kReady) {
        p.state = State::kDraining;  // leaves the picker at the next publish
        p.deadline = t + kDrainGraceS;
      } else if (p.pid > 0) {
        provider.signal(p.pid, SIGTERM);
        p.state = State::kTerminating;
        p.deadline = t + kTermGraceS;
      } else {
        s->procs.erase(it);
      }
    }
    // Node actions: a log line each, and the plan's reason line for the console.
    const auto reasonFor = [&](const std::string& prefix) {
      for (const auto& why : plan.reasons)
        if (why.starts_with(prefix)) return why;
      return prefix;
    };
    for (const auto& [pool, n] : plan.provision) {
      spdlog::info(
          "controller: pool={} provision nodes={} (simulated: slots exist after the "
          "provisioning delay)",
          pool, n);
      scaling->nodes(pool,
                     reasonFor("provision " + std::to_string(n) + " node(s) in " + pool + " "));
    }
    for (const auto& node : plan.release) {
      spdlog::info("controller: release node={} (idle)", node);
      std::string pool;
      for (const auto& x : cluster.nodes)
        if (x.name == node) pool = x.pool;
      scaling->nodes(pool, reasonFor("release idle node " + node + " "));
    }
    // Crash backoff: hold the service's new starts back, keep them Pending. (Had one preempted
    // a lower-priority replica, that one still goes; the held replica takes the freed GPUs at
    // the next plan, before the replacement, without preempting again.)
    control::Plan held = plan;
    std::erase_if(held.bind, [&](const auto& b) {
      const Service* s = serviceOf(b.first, plan);
      return s && t < s->backoff_until;
    });
    control::apply(cluster, held, demands, t);
    for (const auto& id : stopped) control::finished(cluster, id, t);
    for (const auto& [id, node] : held.bind) {
      Service* s = serviceOf(id, held);
      if (!s) continue;
      start(*s, id, node);
    }
    // Replicas still waiting for a node.
    const bool provisioning = std::any_of(cluster.nodes.begin(), cluster.nodes.end(),
                                          [](const control::Node& n) { return !n.ready; });
    for (auto& s : services) {
      for (const auto& r : cluster.replicas) {
        if (r.service != s->demand.service || !r.node.empty() || s->procs.contains(r.id)) continue;
        s->procs[r.id] = Proc{.id = r.id};
      }
      for (auto& [id, p] : s->procs) {
        if (p.state != State::kPending && p.state != State::kProvisioning) continue;
        p.state = provisioning ? State::kProvisioning : State::kPending;
      }
      std::erase_if(s->procs, [&](const auto& kv) {
        const auto& p = kv.second;
        return p.pid < 0 && std::none_of(cluster.replicas.begin(), cluster.replicas.end(),
                                         [&](const control::Replica& r) { return r.id == p.id; });
      });
    }
  }

  // Starts replica `id` of `s` on `node`, on the node's first free GPU slots (those no live
  // replica of any service holds).
  void start(Service& s, const std::string& id, const std::string& node) {
    const control::Node* n = nullptr;
    for (const auto& x : cluster.nodes)
      if (x.name == node) n = &x;
    std::set<int> used;
    for (const auto& other : services)
      for (const auto& [oid, op] : other->procs)
        if (op.node == node && oid != id && op.pid > 0)
          for (int g = 0; g < other->spec.gpus; ++g) used.insert(op.slot + g);
    int slot = 0;
    while (used.contains(slot)) ++slot;
    Proc p;
    p.id = id;
    p.node = node;
    p.pool = n ? n->pool : "";
    p.port = tidegate::freePort();
    p.slot = slot;
    std::string gpu_ids;
    for (int g = 0; g < s.spec.gpus; ++g) gpu_ids += (g ? "," : "") + std::to_string(slot + g);
    auto pid = provider.start(s.spec.meta.name + "-" + id, s.spec.command, p.port,
                              s.spec.served_model_name, gpu_ids);
    if (!pid) {
      spdlog::error("controller: service={} replica={} start failed: {}", s.spec.meta.name, id,
                    pid.error().message);
      return;
    }
    p.pid = *pid;
    p.started = now();
    p.state = State::kStarting;
    spdlog::info("controller: service={} replica={} start pool={} node={} port={} pid={}",
                 s.spec.meta.name, id, p.pool, node, p.port, p.pid);
    s.procs[id] = p;
  }

  // Publishes every Ready replica as an endpoint with its service's labels.
  void publish() {
    std::vector<api::Endpoints> eps;
    std::string key;
    for (const auto& s : services) {
      api::Endpoints e;
      e.meta.name = s->spec.meta.name;
      e.meta.labels = s->spec.meta.labels;
      for (const auto& [id, p] : s->procs)
        if (p.state == State::kReady) {
          e.addresses.push_back(address(p));
          key += address(p).str() + ";";
        }
      if (!e.addresses.empty()) eps.push_back(std::move(e));
    }
    if (key == published) return;
    published = key;
    gw.setDynamicEndpoints(std::move(eps));
  }

  // Tells the gateway what each InferencePool's nodes cost now ($/hour); the gateway allocates
  // it to requests by tokens. The rule, so that a node shared by services is counted once: a
  // NodePool costs the price of all its nodes (provisioning and idle ones too), shared among the
  // services by the GPUs their replicas hold on its nodes; an InferencePool's rate is the sum of
  // the shares of the services it selects. A NodePool on which no replica holds a GPU is charged
  // to no InferencePool (its cost still accrues in tidegate_pool_cost_total).
  void publishCosts() {
    std::map<std::string, double> rate;                      // service -> $/hour
    std::map<std::string, std::map<std::string, int>> held;  // pool -> service -> GPUs
    for (const auto& r : cluster.replicas)
      for (const auto& n : cluster.nodes)
        if (r.node == n.name) held[n.pool][r.service] += r.gpus;
    for (const auto& pool : cluster.pools) {
      double price = 0;
      for (const auto& n : cluster.nodes)
        if (n.pool == pool.name) price += pool.price_per_node_hour;
      int gpus = 0;
      for (const auto& [service, g] : held[pool.name]) gpus += g;
      for (const auto& [service, g] : held[pool.name]) rate[service] += price * g / gpus;
    }
    const auto config = gw.config();
    for (const auto& pool : config->pools) {
      double sum = 0;
      bool selects = false;
      for (const auto& s : services) {
        if (!api::selectorMatches(pool.selector, s->spec.meta.labels)) continue;
        selects = true;
        sum += rate[s->demand.service];
      }
      if (selects) gw.setPoolCostRate(pool.meta.name, sum);
    }
  }

  bj::value servicesJson() const {
    bj::array out;
    for (const auto& s : services) {
      bj::array replicas;
      int current = 0;
      for (const auto& [id, p] : s->procs) {
        if (p.state != State::kDraining && p.state != State::kTerminating) ++current;
        replicas.push_back(
            bj::object{{"id", id},
                       {"pool", p.pool},
                       {"node", p.node},
                       {"state", name(p.state)},
                       {"address", p.port ? bj::value(address(p).str()) : bj::value(nullptr)}});
      }
      out.push_back(bj::object{{"name", s->spec.meta.name},
                               {"model", s->spec.served_model_name},
                               {"priority", s->spec.priority},
                               {"desired", s->last.desired},
                               {"current", current},
                               {"last_decision", s->last.reason},
                               {"replicas", std::move(replicas)}});
    }
    return out;
  }

  bj::value poolsJson() const {
    bj::array out;
    const auto& c = cluster;
    for (const auto& pool : c.pools) {
      int nodes = 0, gpus = 0, free = 0, provisioning = 0;
      for (const auto& n : c.nodes) {
        if (n.pool != pool.name) continue;
        ++nodes;
        gpus += n.gpus;
        if (!n.ready)
          ++provisioning;
        else
          free += c.freeGpus(n);
      }
      auto cost = c.cost.find(pool.name);
      out.push_back(bj::object{{"name", pool.name},
                               {"elastic", pool.elastic},
                               {"nodes", nodes},
                               {"provisioning", provisioning},
                               {"gpus_used", gpus - free - provisioning * pool.gpus_per_node},
                               {"gpus_free", free},
                               {"cost", cost == c.cost.end() ? 0.0 : cost->second}});
    }
    return out;
  }

  void collect(prom::TextWriter& w) const {
    w.family("tidegate_replicas", "gauge", "Replicas by service, pool and state.");
    for (const auto& s : services) {
      std::map<std::pair<std::string, std::string>, int> n;
      for (const auto& [id, p] : s->procs) ++n[{p.pool, name(p.state)}];
      for (const auto& [k, v] : n)
        w.sample("tidegate_replicas",
                 {{"service", s->spec.meta.name}, {"pool", k.first}, {"state", k.second}}, v);
    }
    // As `tidegate simulate` counts them: from a replica's start on its node until it stopped.
    w.family("tidegate_replica_seconds_total", "counter",
             "Seconds replicas ran on a pool's nodes (start to stop, draining included).");
    const double t = now();
    for (const auto& s : services) {
      auto seconds = s->replica_seconds;
      for (const auto& [id, p] : s->procs)
        if (p.pid > 0) seconds[p.pool] += t - p.started;
      for (const auto& [pool, v] : seconds)
        w.sample("tidegate_replica_seconds_total", {{"service", s->spec.meta.name}, {"pool", pool}},
                 v);
    }
    w.family("tidegate_desired_replicas", "gauge", "The autoscaler's last desired replica count.");
    for (const auto& s : services)
      w.sample("tidegate_desired_replicas", {{"service", s->spec.meta.name}}, s->last.desired);
    const auto& c = cluster;
    w.family("tidegate_nodes", "gauge", "Nodes by pool (including provisioning ones).");
    for (const auto& pool : c.pools)
      w.sample("tidegate_nodes", {{"pool", pool.name}},
               static_cast<double>(
                   std::count_if(c.nodes.begin(), c.nodes.end(),
                                 [&](const control::Node& n) { return n.pool == pool.name; })));
    w.family("tidegate_node_pool_max_nodes", "gauge",
             "The most nodes a pool may have (an owned pool's nodes, an elastic pool's maxNodes).");
    for (const auto& pool : c.pools)
      w.sample("tidegate_node_pool_max_nodes",
               {{"pool", pool.name}, {"kind", pool.elastic ? "elastic" : "owned"}},
               pool.elastic ? pool.max_nodes : pool.min_nodes);
    w.family("tidegate_pool_cost_total", "counter", "Node-hours times price, accrued per pool.");
    for (const auto& pool : c.pools) {
      auto it = c.cost.find(pool.name);
      w.sample("tidegate_pool_cost_total", {{"pool", pool.name}},
               it == c.cost.end() ? 0 : it->second);
    }
  }
};

Controller::Controller(gateway::Gateway& gw) : impl_(std::make_unique<Impl>(gw)) {}
Controller::~Controller() { stop(); }

void Controller::start() {
  auto& m = *impl_;
  std::promise<void> ready;
  asio::post(m.gw.controlContext(), [&] {
    m.setup();
    asio::co_spawn(m.gw.controlContext(), m.loop(), asio::detached);
    ready.set_value();
  });
  ready.get_future().wait();
}

void Controller::stop() {
  auto& m = *impl_;
  if (m.stopping) return;
  std::promise<void> done;
  asio::post(m.gw.controlContext(), [&] {
    m.stopping = true;
    m.provider.stopAll(kTermGraceS);
    done.set_value();
  });
  if (done.get_future().wait_for(std::chrono::seconds(15)) != std::future_status::ready) {
    m.stopping = true;
    m.provider.stopAll(1);  // the control thread is gone: stop the children from here
  }
}

}  // namespace tidegate::controller

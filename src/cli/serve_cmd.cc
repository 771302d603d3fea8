#include "cli/serve_cmd.h"

#include <signal.h>

#include <unistd.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <set>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "api/loader.h"
#include "common/log.h"
#include "controller/controller.h"
#include "controller/kubernetes.h"
#include "gateway/gateway.h"
#include "gateway/routing.h"
#include "kube/client.h"
#include "kube/objects.h"

namespace tidegate::cli {

namespace {

// How `serve` reaches a Kubernetes cluster, from its flags.
struct KubeFlags {
  bool in_cluster = false;  // --kubernetes
  std::string kubeconfig;   // --kubeconfig FILE
  std::string context;      // --context NAME
  std::string identity;     // --identity (default $POD_NAME, else HOST-PID)
  std::string lease_name = "tidegate-leader";
  std::string lease_namespace;  // default $POD_NAMESPACE, else the cluster config's namespace
  double lease_duration_s = 15, renew_deadline_s = 10, retry_period_s = 2;
  std::vector<std::string> watch_namespaces;  // --watch-namespace (repeatable, or a,b)
  bool enabled() const { return in_cluster || !kubeconfig.empty(); }
};

Result<controller::KubernetesOptions> kubernetesOptions(const KubeFlags& f) {
  auto cluster = f.in_cluster ? kube::inCluster() : kube::fromKubeconfig(f.kubeconfig, f.context);
  if (!cluster) return Error{cluster.error().message};
  controller::KubernetesOptions o;
  o.cluster = *cluster;
  o.leader.name = f.lease_name;
  const char* pod_ns = std::getenv("POD_NAMESPACE");
  o.leader.ns = !f.lease_namespace.empty() ? f.lease_namespace
                : pod_ns && *pod_ns        ? std::string(pod_ns)
                                           : cluster->ns;
  o.leader.identity = f.identity;
  if (o.leader.identity.empty()) {
    if (const char* pod = std::getenv("POD_NAME"); pod && *pod) {
      o.leader.identity = pod;
    } else {
      char host[256] = {};
      ::gethostname(host, sizeof host - 1);
      o.leader.identity = std::string(host) + "-" + std::to_string(::getpid());
    }
  }
  o.watch_namespaces = f.watch_namespaces;
  o.leader.lease_duration_s = f.lease_duration_s;
  o.leader.renew_deadline_s = f.renew_deadline_s;
  o.leader.retry_period_s = f.retry_period_s;
  // client-go refuses these too: a leader must stop before its lease can pass to another.
  if (!(f.lease_duration_s > f.renew_deadline_s && f.renew_deadline_s > f.retry_period_s &&
        f.retry_period_s > 0))
    return Error{"leader election: need lease duration > renew deadline > retry period > 0"};
  return o;
}

int runServe(const std::string& config, const std::string& level, const KubeFlags& kube_flags) {
  log::init("serve", level);
  // Signals are taken synchronously by this thread; every thread started below inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::optional<controller::KubernetesOptions> kube_options;
  if (kube_flags.enabled()) {
    auto o = kubernetesOptions(kube_flags);
    if (!o) {
      std::cerr << "tidegate serve: " << o.error().message << "\n";
      return 2;
    }
    kube_options = std::move(o).value();
  }
  gateway::Gateway gw({.config_path = config, .log_level = level});
  if (auto st = gw.start(); !st) {
    std::cerr << "tidegate serve: " << st.message() << "\n";
    return 2;
  }
  // On Kubernetes the replicas are pods; otherwise child processes of this gateway.
  std::unique_ptr<controller::Controller> local;
  std::unique_ptr<controller::KubernetesController> kubernetes;
  if (kube_options) {
    kubernetes = std::make_unique<controller::KubernetesController>(gw, *kube_options);
    kubernetes->start();
  } else {
    local = std::make_unique<controller::Controller>(gw);
    local->start();
  }
  // Tests and scripts read the bound ports from this line.
  const auto& g = gw.config()->gateway;
  std::cout << "tidegate serve listening on " << (g.tls.enabled ? "https" : "http")
            << "://127.0.0.1:" << gw.port() << " admin "
            << (g.tls.enabled && g.tls.admin ? "https" : "http")
            << "://127.0.0.1:" << gw.adminPort() << std::endl;
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", config);
      (void)gw.reload();  // a bad configuration is logged and the running one kept
      continue;
    }
    spdlog::info("signal {}: stopping", sig);
    break;
  }
  // Local replicas stop before the gateway does (no orphans); pods belong to the cluster and
  // stay — the leader only hands its Lease on.
  if (local) local->stop();
  if (kubernetes) kubernetes->stop();
  gw.stop();
  return 0;
}

// The control-plane resources as understood, for `tidegate check`.
std::string describeControl(const api::Config& c) {
  std::ostringstream o;
  if (!c.node_pools.empty()) o << "node pools:\n";
  for (const auto& p : c.node_pools) {
    o << "  " << p.meta.name << ": " << (p.elastic ? "elastic " : "fixed ");
    if (p.elastic) {
      o << p.min_nodes << ".." << p.max_nodes << " nodes, ready " << p.provisioning_delay_s
        << " s after asked, released after " << p.scale_down_unneeded_s << " s idle";
    } else {
      o << p.min_nodes << " nodes";
    }
    o << ", " << p.gpus_per_node << " GPU/node, " << p.price_per_node_hour << "/node-hour\n";
  }
  for (const auto& r : c.resource_policies) {
    o << "resource policy " << r.meta.name << " (" << r.when << "):";
    for (std::size_t i = 0; i < r.units.size(); ++i) {
      o << (i ? " then" : "") << " [";
      bool first = true;
      for (const auto& p : c.node_pools)
        if (!r.units[i].node_selector.empty() &&
            api::selectorMatches(r.units[i].node_selector, p.meta.labels)) {
          o << (first ? "" : ", ") << p.meta.name;
          first = false;
        }
      o << "]";
      if (r.units[i].max) o << " max " << *r.units[i].max;
    }
    o << "\n";
  }
  for (const auto& s : c.services) {
    o << "service " << s.meta.name << " (" << s.served_model_name << "): " << s.min_replicas << ".."
      << s.max_replicas << " replicas of " << s.gpus << " GPU, priority " << s.priority
      << ", scaling on";
    for (const auto& [m, t] : s.metric_targets) o << " " << m << "=" << t;
    if (s.metric_targets.empty()) o << " nothing";
    const api::ResourcePolicy* policy = nullptr;
    api::placementPolicy(c, s, &policy);
    if (!c.node_pools.empty())
      o << ", placed by " << (policy ? "resource policy " + policy->meta.name : "NodePool order");
    o << "\n";
    if (!s.origin.empty()) {
      o << "  read from " << s.origin << ":\n";
      for (const auto& line : s.mapping) o << "    " << line << "\n";
    }
  }
  return o.str();
}

// What the loader accepted without acting on it, for `tidegate check`.
std::string describeNotes(const api::Config& c) {
  if (c.notes.empty()) return {};
  std::string out = "accepted and not acted on:\n";
  for (const auto& n : c.notes) out += "  " + n + "\n";
  return out;
}

// Access control and accounting as understood, for `tidegate check`.
std::string describeAccess(const api::Config& c) {
  std::ostringstream o;
  const auto& g = c.gateway;
  const char* implied = g.auth_mode_explicit
                            ? ""
                            : " (implied by the file; state spec.auth.apiKeys to make it explicit)";
  if (!c.keysRequired()) {
    o << "auth: off: API keys disabled" << implied << ": every request is admitted\n";
    if (!c.keys.empty())
      o << "  warning: the file has " << c.keys.size()
        << " APIKeys, unused while keys are disabled\n";
  } else {
    o << "auth: API keys required" << implied << "; " << c.plans.size() << " plans, "
      << c.keys.size()
      << " keys in the file (keys created through the admin API are kept in the ledger)\n";
    if (c.plans.empty())
      o << "  warning: no UsagePlan: no key can be valid, every request is refused\n";
    auto limit = [&](const char* what, double v) {
      if (v > 0) o << " " << static_cast<long long>(v) << " " << what << ";";
    };
    for (const auto& p : c.plans) {
      o << "  plan " << p.meta.name << ":";
      limit("requests/min", p.requests_per_minute);
      limit("requests/day", p.requests_per_day);
      limit("tokens/min", p.tokens_per_minute);
      limit("tokens/day", p.tokens_per_day);
      limit("tokens/month", p.tokens_per_month);
      if (p.max_concurrent > 0) o << " " << p.max_concurrent << " concurrent;";
      o << " models " << (p.models.empty() ? "any" : "");
      for (std::size_t i = 0; i < p.models.size(); ++i) o << (i ? "," : "") << p.models[i];
      if (p.priority) o << "; priority " << api::criticalityName(*p.priority);
      o << "\n";
    }
    o << "rate limits: "
      << (g.rate_limit.redis ? "shared through Redis at " + g.rate_limit.redis_address.str() +
                                   (g.rate_limit.fail_open ? " (fail open)" : " (fail closed)")
                             : std::string("in process (each gateway alone)"))
      << "\n";
  }
  o << "admin API on " << g.admin.str() << ": "
    << (g.admin_token.empty() ? "no token: read-only, /admin/* served on a loopback address only"
                              : "token required for /admin/*")
    << "\n";
  o << "ledger: " << (g.ledger.path.empty() ? "off" : g.ledger.path) << "\n";
  if (g.tls.enabled)
    o << "tls: " << g.tls.certificate_file << " (TLS " << g.tls.min_version << "+"
      << (g.tls.client_ca_file.empty() ? "" : ", client certificates from " + g.tls.client_ca_file)
      << (g.tls.admin ? ", admin address too" : "") << ")\n";
  return o.str();
}

// What a cluster holds for the configuration, for `tidegate check --kubeconfig`: its nodes by
// NodePool, each InferenceService's unit Deployments and pods, and the leader Lease. Exit code
// 2 when the API server cannot be read (the reason, e.g. an RBAC denial, is printed).
int describeCluster(const api::Config& c, const controller::KubernetesOptions& o) {
  namespace bj = boost::json;
  boost::asio::io_context ioc;
  kube::Client client(ioc.get_executor(), o.cluster, {.timeout_s = 10, .max_retries = 1});
  std::ostringstream out;
  int rc = 0;
  auto fail = [&](const kube::ApiError& e) {
    out << "  error: " << e.message << "\n";
    rc = 2;
  };
  boost::asio::co_spawn(
      ioc,
      [&]() -> boost::asio::awaitable<void> {
        out << "cluster: " << o.cluster.server << " (" << o.cluster.source << ")\n";
        const kube::ListOptions all;
        auto nodes = co_await client.list(kube::resources::kNodes.path(), all);
        out << "nodes:\n";
        std::vector<kube::NodeInfo> node_infos;
        if (!nodes) {
          fail(nodes.error());
        } else {
          for (const auto& n : nodes->at("items").as_array())
            node_infos.push_back(kube::nodeInfo(n.as_object()));
          for (const auto& np : c.node_pools) {
            const auto use = kube::poolUsage(c, np, node_infos, {});
            out << "  pool " << np.meta.name << " (" << (np.elastic ? "elastic" : "fixed") << ", "
                << kube::selectorString(np.meta.labels) << "): " << use.nodes << " nodes, "
                << use.ready << " ready, " << use.gpus << " GPUs\n";
          }
          int other = 0;
          for (const auto& n : node_infos) other += kube::poolOf(c, n) == nullptr;
          out << "  in no NodePool: " << other << " nodes\n";
        }
        std::set<std::string> namespaces;
        for (const auto& s : c.services) namespaces.insert(s.meta.ns);
        for (const auto& ns : namespaces) {
          // (GCC 12: no braced temporaries inside a co_await expression.)
          const kube::ListOptions ours{.label_selector = kube::kServiceLabel};
          const kube::ListOptions managed{.label_selector =
                                              std::string(kube::kManagedBy) + "=tidegate"};
          auto pods = co_await client.list(kube::resources::kPods.path(ns), ours);
          auto deps = co_await client.list(kube::resources::kDeployments.path(ns), managed);
          if (!pods) fail(pods.error());
          if (!deps) fail(deps.error());
          if (!pods || !deps) continue;
          for (const auto& s : c.services) {
            if (s.meta.ns != ns) continue;
            out << "service " << s.meta.ns << "/" << s.meta.name << ":\n";
            const auto units = api::placementPolicy(c, s).units.size();
            for (std::size_t u = 0; u < units; ++u) {
              const auto name = kube::unitDeploymentName(c, s, static_cast<int>(u));
              std::string replicas = "missing (created by the leader)";
              for (const auto& d : deps->at("items").as_array())
                if (d.at("metadata").at("name").as_string() == name)
                  replicas = std::to_string(d.at("spec").at("replicas").as_int64()) + " replicas";
              out << "  unit " << u << " deployment " << name << ": " << replicas << "\n";
              for (const auto& p : pods->at("items").as_array()) {
                const auto pod = kube::podInfo(p.as_object());
                if (pod.unit != static_cast<int>(u) ||
                    pod.labels.at(kube::kServiceLabel) != s.meta.name)
                  continue;
                out << "    pod " << pod.name << ": " << kube::podState(pod)
                    << (pod.node.empty() ? "" : " on " + pod.node)
                    << (pod.ip.empty() ? "" : " at " + pod.ip)
                    << (pod.pending_message.empty() ? "" : " (" + pod.pending_message + ")")
                    << "\n";
              }
            }
          }
        }
        auto lease = co_await client.get(kube::resources::kLeases.path(o.leader.ns, o.leader.name));
        out << "lease " << o.leader.ns << "/" << o.leader.name << ": ";
        if (lease) {
          const auto& spec = lease->at("spec").as_object();
          const auto* holder = spec.if_contains("holderIdentity");
          out << "held by "
              << (holder && holder->is_string() && !holder->as_string().empty()
                      ? std::string(holder->as_string())
                      : std::string("nobody"))
              << "\n";
        } else if (lease.error().code == 404) {
          out << "none yet (no leader has run)\n";
        } else {
          out << "\n";
          fail(lease.error());
        }
      },
      boost::asio::detached);
  ioc.run();
  std::cout << out.str();
  return rc;
}

}  // namespace

void addServeCommands(CLI::App& app) {
  auto config = std::make_shared<std::string>();
  auto level = std::make_shared<std::string>("info");
  auto kf = std::make_shared<KubeFlags>();
  auto* serve = app.add_subcommand("serve", "Run the gateway and the controller");
  serve->add_option("-c,--config", *config, "Configuration file (YAML)")->required();
  serve->add_option("--log-level", *level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  serve->add_flag("--kubernetes", kf->in_cluster,
                  "Run against the cluster this pod is in (service account)");
  serve->add_option("--kubeconfig", kf->kubeconfig, "Run against the cluster of a kubeconfig file");
  serve->add_option("--context", kf->context, "The kubeconfig context (default: current-context)");
  serve->add_option("--identity", kf->identity,
                    "Leader-election identity (default: $POD_NAME, else HOST-PID)");
  serve->add_option("--lease-name", kf->lease_name, "The leader-election Lease")
      ->capture_default_str();
  serve->add_option("--lease-namespace", kf->lease_namespace,
                    "The Lease's namespace (default: $POD_NAMESPACE, else the context's)");
  serve
      ->add_option("--watch-namespace", kf->watch_namespaces,
                   "Also read configuration objects (and API-key Secrets) from this namespace")
      ->delimiter(',');
  serve->add_option("--leader-elect-lease-duration", kf->lease_duration_s, "Seconds")
      ->capture_default_str();
  serve->add_option("--leader-elect-renew-deadline", kf->renew_deadline_s, "Seconds")
      ->capture_default_str();
  serve->add_option("--leader-elect-retry-period", kf->retry_period_s, "Seconds")
      ->capture_default_str();
  serve->callback([config, level, kf] {
    if (kf->in_cluster && !kf->kubeconfig.empty())
      throw CLI::ValidationError("--kubernetes and --kubeconfig: give one");
    int rc = runServe(*config, *level, *kf);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });

  auto check_config = std::make_shared<std::string>();
  auto ckf = std::make_shared<KubeFlags>();
  auto* check = app.add_subcommand("check", "Validate a configuration and print what it means");
  check->add_option("-c,--config", *check_config, "Configuration file (YAML)")->required();
  check->add_flag("--kubernetes", ckf->in_cluster,
                  "Also print what the cluster holds (in-cluster service account)");
  check->add_option("--kubeconfig", ckf->kubeconfig,
                    "Also print what the cluster of this kubeconfig holds");
  check->add_option("--context", ckf->context, "The kubeconfig context");
  check->add_option("--lease-name", ckf->lease_name, "The leader-election Lease")
      ->capture_default_str();
  check->add_option("--lease-namespace", ckf->lease_namespace, "The Lease's namespace");
  check->callback([check_config, ckf] {
    auto c = api::loadConfig(*check_config);
    if (!c) {
      std::cerr << c.error().message << "\n";
      throw CLI::RuntimeError(2);
    }
    // Certificates and keys are loaded as serve would: a file that does not load is an error.
    if (auto t = gateway::buildTls(c->gateway); !t) {
      std::cerr << c->file << ": " << t.error().message << "\n";
      throw CLI::RuntimeError(2);
    }
    auto config = std::make_shared<const api::Config>(std::move(c).value());
    gateway::RoutingTable table(config, {});
    std::cout << "configuration is valid\n"
              << table.describe() << describeControl(*config) << describeAccess(*config)
              << describeNotes(*config);
    if (ckf->enabled()) {
      auto o = kubernetesOptions(*ckf);
      if (!o) {
        std::cerr << o.error().message << "\n";
        throw CLI::RuntimeError(2);
      }
      if (int rc = describeCluster(*config, *o); rc != 0) throw CLI::RuntimeError(rc);
    }
  });
}

}  // namespace tidegate::cli

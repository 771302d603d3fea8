#pragma once
// Gateway: the data plane of `tidegate serve`.
//
// Threads: `workers` threads, each with its own io_context and its own HTTP server on the listen
// address (SO_REUSEPORT, so the kernel spreads connections), its own upstream keep-alive pools;
// one control thread that runs the scraper (every endpoint's /metrics every scrape interval and
// /v1/models every second) and the admin server. Workers share only: the routing state
// (an immutable snapshot swapped atomically on reload), the endpoints (atomics and published
// metric snapshots), the metric registry (lock-free updates) and the recent-picks log (mutex).
//
// Request path: admission (method, media type, body scan) -> routing (host, model, weighted
// target) -> picking (filters, scorers) -> relay (retries before the first byte, streaming with
// backpressure, usage capture, usage-chunk stripping) -> accounting (metrics).

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/json/value.hpp>
#include <functional>

#include "api/loader.h"
#include "api/resources.h"
#include "common/prometheus.h"
#include "common/result.h"
#include "common/tls.h"

namespace tidegate::gateway {

// The TLS contexts a Gateway spec asks for: the listener's (when spec.tls is set) and the
// client context for https endpoints (spec.upstreamTLS) — or why one cannot be built, naming
// the field, the file and OpenSSL's reason. Start-up, reloads and `check` all build them here.
struct TlsContexts {
  std::shared_ptr<tls::ssl::context> server;  // null without spec.tls
  tls::ServerConfig server_config;
  std::shared_ptr<tls::ssl::context> upstream;
};
Result<TlsContexts> buildTls(const api::GatewayConfig& g);

struct GatewayOptions {
  std::string config_path;
  std::string log_level = "info";
};

class Gateway {
 public:
  explicit Gateway(GatewayOptions options);
  ~Gateway();

  // Loads the configuration, binds the listen and admin addresses and starts every thread.
  Status start();
  // Re-reads the configuration; on error keeps the running one and returns the error.
  // In-flight requests finish on the configuration they started with.
  Status reload();
  // Stops accepting, closes connections, joins the threads.
  void stop();

  std::uint16_t port() const;
  std::uint16_t adminPort() const;

  // --- Hooks for the controller (which runs on the control thread) ---
  // Endpoints discovered at run time by `source` ("controller": the local controller's Ready
  // replicas; "kubernetes": Ready pods), selected by pools like Endpoints resources. Replaces
  // that source's previous set; thread-safe. An endpoint that leaves is only left out of new
  // picks: requests in flight to it finish.
  void setDynamicEndpoints(std::vector<api::Endpoints> endpoints,
                           const std::string& source = "controller");
  // The endpoint at `address` if some pool selects it (metrics, in-flight count), else null.
  std::shared_ptr<class Endpoint> endpoint(const api::HostPort& address) const;
  std::shared_ptr<const api::Config> config() const;
  prom::Registry& metrics();
  // Adds a section to /admin/state (called on the control thread at each request).
  void addStateSection(std::string name, std::function<boost::json::value()> fn);
  boost::asio::io_context& controlContext();
  // Documents and Secrets from outside the file (the Kubernetes provider's watches of
  // configuration objects), read at every reload together with the file; reload() after it
  // changed. Thread-safe.
  void setConfigSource(std::function<api::LoadOptions()> source);
  // What the nodes behind an InferencePool cost now, in $/hour (for cost allocation).
  void setPoolCostRate(const std::string& pool, double dollars_per_hour);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::gateway

#pragma once
// AdminApi: the admin address — /metrics (the gateway's registry: request, token, picker,
// access and controller metrics, and the pool and endpoint gauges collected at scrape time),
// /healthz, /readyz (some endpoint answers its scrapes), /admin/state (pools, endpoints and
// their scraped load, models and splits, recent picks, and sections other components add),
// /admin/charts/NAME.svg (charts other components add), Access's /admin/keys, /admin/usage and
// /admin/audit, and /ui, the live console (gateway/console.h) that reads them.
//
// The admin API never runs open (adminGate below): with an admin token configured, /admin/*
// needs it; without one, /admin/* is read-only (no key can be created, moved or revoked) and
// served only when the admin address is a loopback address. /metrics and the probes are always
// served (Prometheus and kubelets do not carry tokens), and so is /ui: the page holds no data,
// and fetches /admin/* with the token the user gives it.
//
// Threads: served on the gateway's control thread; addSection() before serving starts.

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/http_server.h"
#include "common/prometheus.h"
#include "gateway/access.h"
#include "gateway/picker/pick_log.h"
#include "gateway/snapshot.h"

namespace tidegate::gateway {

// What the admin API does with a request before any handler runs (pure, for tests).
enum class AdminGate {
  kServe,
  kUnauthorized,  // 401: a token is configured and the request lacks it
  kReadOnly,      // 403: a change without a configured token
  kLoopbackOnly,  // 403: /admin/* without a token on an address others can reach
};
AdminGate adminGate(std::string_view path, boost::beast::http::verb method, bool token_configured,
                    bool token_presented, bool loopback);

class AdminApi {
 public:
  // Registers the pool and endpoint gauges in `metrics`.
  AdminApi(const SnapshotBuilder& snapshots, prom::Registry& metrics, Access& access,
           const PickLog& picks);

  boost::asio::awaitable<void> handle(http::Exchange& ex);
  // Whether the admin server listens on a loopback address (set once, before serving).
  void setLoopback(bool loopback) { loopback_ = loopback; }
  // Adds a section to /admin/state, computed at each request.
  void addSection(std::string name, std::function<boost::json::value()> fn);
  // Serves the SVG `fn` returns at /admin/charts/NAME.svg, rendered at each request.
  void addChart(std::string name, std::function<std::string()> fn);
  // Some endpoint answers its scrapes (or no pool has endpoints).
  bool ready() const;

 private:
  bool tokenPresented(const http::Exchange& ex, const std::string& token) const;
  std::string state() const;
  // The chart served at `target` (/admin/charts/NAME.svg), or null.
  const std::function<std::string()>* chartNamed(std::string_view target) const;
  void collectPools(prom::TextWriter& w) const;

  const SnapshotBuilder& snapshots_;
  prom::Registry& metrics_;
  Access& access_;
  const PickLog& picks_;
  std::vector<std::pair<std::string, std::function<boost::json::value()>>> sections_;
  std::vector<std::pair<std::string, std::function<std::string()>>> charts_;
  bool loopback_ = false;  // until setLoopback(): closed
};

}  // namespace tidegate::gateway

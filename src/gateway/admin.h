#pragma once
// AdminApi: the admin address — /metrics (the gateway's registry: request, token, picker,
// access and controller metrics, and the pool and endpoint gauges collected at scrape time),
// /healthz, /readyz (some endpoint answers its scrapes), /admin/state (pools, endpoints and
// their scraped load, models and splits, recent picks, and sections other components add) and
// Access's /admin/keys and /admin/usage. The admin token, when configured, guards /admin/*.
//
// Threads: served on the gateway's control thread; addSection() before serving starts.

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/http_server.h"
#include "common/prometheus.h"
#include "gateway/access.h"
#include "gateway/picker/pick_log.h"
#include "gateway/snapshot.h"

namespace tidegate::gateway {

class AdminApi {
 public:
  // Registers the pool and endpoint gauges in `metrics`.
  AdminApi(const SnapshotBuilder& snapshots, prom::Registry& metrics, Access& access,
           const PickLog& picks);

  boost::asio::awaitable<void> handle(http::Exchange& ex);
  // Adds a section to /admin/state, computed at each request.
  void addSection(std::string name, std::function<boost::json::value()> fn);
  // Some endpoint answers its scrapes (or no pool has endpoints).
  bool ready() const;

 private:
  bool authorized(const http::Exchange& ex) const;
  std::string state() const;
  void collectPools(prom::TextWriter& w) const;

  const SnapshotBuilder& snapshots_;
  prom::Registry& metrics_;
  Access& access_;
  const PickLog& picks_;
  std::vector<std::pair<std::string, std::function<boost::json::value()>>> sections_;
};

}  // namespace tidegate::gateway

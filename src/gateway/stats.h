#pragma once
// The gateway's own metrics, declared in one place. Thread-safe (prom::Registry).

#include <string>

#include "common/prometheus.h"

namespace tidegate::gateway {

class GatewayStats {
 public:
  // The `model` label of a name neither the configuration nor any engine knows: label values
  // stay bounded whatever clients send (every distinct value is a new series in Prometheus).
  static constexpr const char* kOther = "other";

  explicit GatewayStats(prom::Registry& r);

  prom::Counter& requests(const std::string& model, const std::string& target,
                          const std::string& pool, int status) {
    return requests_.with({model, target, pool, std::to_string(status)});
  }
  prom::Histogram& duration(const std::string& model) { return duration_.with({model}); }
  prom::Histogram& ttft(const std::string& model) { return ttft_.with({model}); }
  prom::Histogram& itl(const std::string& model) { return itl_.with({model}); }
  prom::Counter& promptTokens(const std::string& model) { return prompt_.with({model}); }
  prom::Counter& completionTokens(const std::string& model) { return completion_.with({model}); }
  prom::Counter& upstreamErrors(const std::string& pool, const std::string& kind) {
    return upstream_errors_.with({pool, kind});
  }
  prom::Counter& retries(const std::string& pool) { return retries_.with({pool}); }
  prom::Counter& resends(const std::string& pool) { return resends_.with({pool}); }
  prom::Counter& picks(const std::string& pool, const std::string& winner) {
    return picks_.with({pool, winner});
  }

 private:
  prom::Family<prom::Counter>& requests_;
  prom::Family<prom::Histogram>& duration_;
  prom::Family<prom::Histogram>& ttft_;
  prom::Family<prom::Histogram>& itl_;
  prom::Family<prom::Counter>& prompt_;
  prom::Family<prom::Counter>& completion_;
  prom::Family<prom::Counter>& upstream_errors_;
  prom::Family<prom::Counter>& retries_;
  prom::Family<prom::Counter>& resends_;
  prom::Family<prom::Counter>& picks_;
};

}  // namespace tidegate::gateway

#pragma once
// ScalingLog: what both controllers (local processes, Kubernetes) record of the decisions that
// change capacity, in one place. A decision that changes a service's desired replicas is one log
// line and one increment of tidegate_scaling_events_total{service,direction,reason}. The last
// kKept of those and of the nodes pools provision or release (which the caller logs in its own
// words), with the autoscaler's or the placement's reason, are /admin/state's "scaling_events"
// section (newest first), which the console (/ui) shows.
//
// Threads: record from the controller's thread; the section is read on the gateway's control
// thread (the Kubernetes controller runs on its own), so the list is under a mutex — a few
// entries a minute, never on the request path.

#include <deque>
#include <mutex>
#include <string>

#include "common/prometheus.h"
#include "control/autoscaler.h"

namespace tidegate::gateway {
class Gateway;
}

namespace tidegate::controller {

class ScalingLog {
 public:
  static constexpr std::size_t kKept = 50;

  // Registers the counter and the state section. `who` starts each log line ("controller").
  // REQUIRES: called once per gateway, before it serves /admin/state.
  ScalingLog(gateway::Gateway& gw, std::string who);

  // The autoscaler's decision `d` for `service` with `current` replicas: recorded when it
  // changes the count, else ignored.
  void decision(const std::string& service, int current, const control::Decision& d,
                const control::AutoscalerSpec& spec);
  // Records a node action of a placement plan (not logged here), as its reason line says it
  // ("provision 1 node(s) in cloud for pending replicas (ready in 60 s)", "release idle node
  // cloud-1 (unneeded for 30 s)").
  void nodes(const std::string& pool, const std::string& reason);

 private:
  struct Event {
    double at = 0;          // monotonic seconds
    std::string kind;       // "scale" | "nodes"
    std::string subject;    // the service, or the node pool
    std::string direction;  // "up" | "down" ("" for nodes)
    int from = 0, to = 0;   // replicas (scale events)
    std::string reason;
  };
  void add(Event e);

  std::string who_;
  prom::Family<prom::Counter>& counter_;
  mutable std::mutex mu_;
  std::deque<Event> events_;  // newest first
};

}  // namespace tidegate::controller

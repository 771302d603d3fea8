#include "controller/scaling_log.h"

#include <boost/json.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "controller/observe.h"
#include "gateway/gateway.h"

namespace tidegate::controller {

namespace bj = boost::json;

ScalingLog::ScalingLog(gateway::Gateway& gw, std::string who)
    : who_(std::move(who)),
      counter_(gw.metrics().counter("tidegate_scaling_events_total",
                                    "Scaling decisions that changed the desired replicas.",
                                    {"service", "direction", "reason"})) {
  gw.addStateSection("scaling_events", [this] {
    const double now = monotonicSeconds();
    std::lock_guard lock(mu_);
    bj::array out;
    for (const auto& e : events_) {
      bj::object o{{"age_s", now - e.at}, {"kind", e.kind}, {"reason", e.reason}};
      if (e.kind == "scale") {
        o["service"] = e.subject;
        o["direction"] = e.direction;
        o["from"] = e.from;
        o["to"] = e.to;
      } else {
        o["pool"] = e.subject;
      }
      out.push_back(std::move(o));
    }
    return bj::value(std::move(out));
  });
}

void ScalingLog::decision(const std::string& service, int current, const control::Decision& d,
                          const control::AutoscalerSpec& spec) {
  if (d.desired == current) return;
  const char* direction = d.desired > current ? "up" : "down";
  counter_.with({service, direction, scalingReason(d, spec)}).inc();
  spdlog::info("{}: service={} scale={} current={} desired={} reason=\"{}\"", who_, service,
               direction, current, d.desired, d.reason);
  add({.kind = "scale",
       .subject = service,
       .direction = direction,
       .from = current,
       .to = d.desired,
       .reason = d.reason});
}

void ScalingLog::nodes(const std::string& pool, const std::string& reason) {
  add({.kind = "nodes", .subject = pool, .reason = reason});
}

void ScalingLog::add(Event e) {
  e.at = monotonicSeconds();
  std::lock_guard lock(mu_);
  events_.push_front(std::move(e));
  if (events_.size() > kKept) events_.pop_back();
}

}  // namespace tidegate::controller

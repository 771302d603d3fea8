#pragma once
// Controller: the reconcile loop of `tidegate serve` — observe, decide, act — for every
// InferenceService in the configuration.
//   observe  the gateway's scrapes of each Ready replica (any gauge the service scales on);
//   decide   control::decide (autoscaler) per service, then one control::plan (placement over
//            node pools) for every service at once over ONE model of the node pools, so services
//            that share a pool share its GPUs (by priority; a higher one may preempt a lower
//            one) — the same pure functions the simulator runs;
//   act      the local provider starts replicas as child processes on free ports with
//            CUDA_VISIBLE_DEVICES from their node slot, waits for /health, then publishes them to
//            the gateway as endpoints carrying the service's labels (so InferencePools select
//            them). Scale-in drains: the endpoint leaves the picker first, in-flight requests
//            finish (up to a grace period), then SIGTERM, then SIGKILL. Crashed replicas are
//            replaced, after a backoff. Elastic nodes are simulated: a provisioned node's slots
//            exist only after the pool's provisioning delay (logged).
// Runs on the gateway's control thread; every decision and node change is one log line.

#include <memory>

namespace tidegate::gateway {
class Gateway;
}

namespace tidegate::controller {

class Controller {
 public:
  explicit Controller(gateway::Gateway& gw);
  ~Controller();
  // Starts the loop. REQUIRES: the gateway was started.
  void start();
  // Stops the loop and every replica (SIGTERM, then SIGKILL after 5 s). Blocks until done.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::controller

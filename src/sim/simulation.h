#pragma once
// The discrete-event simulation behind `tidegate simulate`: a configuration (the YAML `tidegate
// serve` reads) and a workload (a trace, a rate, a profile) run through the code that runs live,
// on simulated time, with no sockets and no clock:
//   arrivals   bench::Workload (the same trace readers and synthetic shapes as `tidegate bench`)
//   routing    gateway::RoutingTable (InferenceModel weights, LLMRoute), the picker
//              (gateway::pick with its filters and scorers) fed by simulated scrapes: each
//              replica's load is sampled on the gateway's scrape grid, so the picker sees metrics
//              as stale as live ones; the gateway's in-flight counts and prefix index are exact
//   engines    engine::Scheduler per replica (continuous batching, KV and prefix cache, LoRA
//              slots) stepping by the performance model of the service's `tidegate engine`
//              command or of a named GPU profile; a request that the engine refuses fails as it
//              would live (400 too long; 503 queue full after trying every replica)
//   controller every controller interval: control::decide per service on the scraped gauges
//              (controller::observeMetrics, as live), one control::plan over every service's
//              demand on the shared node pools, control::apply; replicas cold-start (the engine's
//              --startup-ms, else the GPU profile's load time) and are Ready at the first tick
//              after it, as the live health check finds them; scale-in drains (the replica leaves
//              the picker, in-flight requests finish, then it is gone)
//   nodes      provisioning delays, scale-down-unneeded time and prices (control::advance)
// Events are ordered by (time, sequence number); a run is single-threaded and a fixed seed
// replays it exactly. The service starts warm: its minReplicas are Ready at time 0.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "api/resources.h"
#include "bench/spec.h"
#include "bench/stats.h"
#include "bench/workload.h"
#include "common/result.h"
#include "engine/model/scheduler.h"

namespace tidegate::sim {

// How the replicas of one service behave: their engine and their cold start.
struct EngineSpec {
  engine::SchedulerConfig scheduler;  // performance model already divided by the time scale
  double startup_s = 0;               // from placement on a node to answering /health
  std::vector<std::string> adapters;  // LoRA adapters every replica serves
};

struct ModelShare {
  std::string model;  // the `model` requests name
  double weight = 1;
};

struct Options {
  bench::WorkloadConfig workload;  // its output is forced to token ids
  // Models requests name, drawn by weight per request; empty: the first InferenceModel's name,
  // else the first service's served model name.
  std::vector<ModelShare> models;
  std::string gpu;  // a GPU profile for every service, over their commands' ("" = none)
  std::vector<bench::SloCheck> slo;
  bool keep_records = true;  // per-request records (summaries and --csv need them)
  // Called now and then with (simulated time, the workload's last arrival if known, else -1).
  std::function<void(double, double)> progress;
};

struct PoolUsage {
  std::string name;
  bool elastic = false;
  double replica_seconds = 0;  // replicas placed on the pool's nodes, from bind to gone
  double node_hours = 0;
  double cost = 0;
  int peak_nodes = 0;
};

struct ScaleEvent {
  double t = 0;
  std::string service;
  int from = 0, to = 0;
  std::string reason;
};

struct ServiceResult {
  std::string name;
  bench::Summary summary;  // the requests its replicas served (or its pool refused)
  std::map<std::string, double> replica_seconds;  // by node pool
  int peak_replicas = 0;
  int scale_events = 0;
};

// Values over time, one sample per controller tick.
struct Series {
  std::vector<double> t;
  std::vector<double> arrivals_per_s;  // since the previous sample
  std::vector<double> waiting;         // requests queued in every engine
  std::vector<double> running;
  std::vector<double> cost;                                   // cumulative, every pool
  std::map<std::string, std::vector<double>> ready_replicas;  // by node pool
  std::map<std::string, std::vector<double>> replicas;        // placed (any state), by pool
  std::map<std::string, std::vector<double>> nodes;           // by pool (provisioning included)
  std::map<std::string, std::vector<double>> desired;         // by service
};

struct RunResult {
  bench::Summary summary;
  std::vector<ServiceResult> services;
  std::vector<PoolUsage> pools;
  double cost = 0;
  double cost_per_million_tokens = 0;  // every pool's cost over prompt + output tokens
  std::vector<ScaleEvent> events;
  Series series;
  std::vector<bench::Record> records;  // keep_records
  std::vector<int> record_service;     // the service of each record (-1: none)
  double end_s = 0;                    // simulated time of the last event
  std::uint64_t steps = 0;             // engine steps simulated
};

// The engine of `s`'s replicas: its `tidegate engine` command's flags (another command, such as
// vLLM's, gets the defaults), then `gpu` over them when given. An error names the service.
Result<EngineSpec> engineSpec(const api::InferenceService& s, const std::string& gpu);

// Checks that `config` and `options` can be simulated, before anything runs: services, their
// engines and metric sources, models that route somewhere. The error names what is wrong.
Status validate(const api::Config& config, const Options& options);

// Runs the simulation. REQUIRES: validate() passed.
RunResult run(const api::Config& config, const Options& options);

}  // namespace tidegate::sim

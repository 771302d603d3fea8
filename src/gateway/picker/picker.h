#pragma once
// The endpoint picker: filters, then scorers, then the best total score with a random tie-break
// (in the manner of the Gateway API Inference Extension's endpoint picker). Pure: it sees plain
// values and takes its random number as an argument, so table-driven tests drive it.
//
// Filters, in order:
//   ready      the endpoint answered its last scrape (never-scraped or failing ones are out),
//              and no earlier attempt of this request failed there;
//   model      if any ready candidate, tried or not, lists the requested model (base or adapter)
//              in /v1/models, only those that list it remain — an adapter missing on one replica
//              is not sent there, not even as a retry once the replicas that have it failed;
//   saturation an endpoint is saturated if its metrics are stale, its queue is past the
//              threshold, or its KV cache is past the threshold. Non-saturated endpoints are
//              preferred; if all are saturated the pool is, and Sheddable requests are shed.
// Scorers, each 0..1 and weighted by the Gateway's picker weights:
//   queue     fewer waiting requests (min-max normalised across candidates)
//   kvCache   1 - KV-cache use
//   lora      for an adapter: running there 1, a free slot 0.5, must wait 0; base model: 1
//   prefix    the share of the prompt's leading blocks recently sent there
//   inflight  fewer of this gateway's requests in flight there (min-max normalised)

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "api/resources.h"
#include "gateway/endpoint.h"

namespace tidegate::gateway {

inline constexpr std::array<const char*, 5> kScorerNames = {"queue", "kv_cache", "lora", "prefix",
                                                            "inflight"};

struct Candidate {
  const EndpointMetrics* metrics = nullptr;
  bool tried = false;  // an earlier attempt of this request failed there: not picked again
  int inflight = 0;
  double prefix_match = 0;  // 0..1
};

struct PickRequest {
  std::string model;  // the target model sent upstream
  api::Criticality criticality = api::Criticality::kStandard;
};

struct PickConfig {
  api::PickerWeights weights;
  double queue_threshold = 5;
  double kv_threshold = 0.8;
  double stale_after_s = 2;
};

struct Pick {
  int index = -1;          // chosen candidate; -1: none (see `shed`)
  bool no_ready = false;   // no candidate was ready: 503
  bool saturated = false;  // every ready candidate was saturated
  bool shed = false;       // saturated and the request is Sheddable: 429
  std::string winner;      // the scorer that most separated the chosen endpoint from the next
  std::array<double, 5> scores{};  // the chosen endpoint's score per scorer
  double total = 0;
};

bool isSaturated(const EndpointMetrics& m, const PickConfig& c, double now);

Pick pick(std::span<const Candidate> candidates, const PickRequest& req, const PickConfig& cfg,
          double now, std::uint64_t random);

}  // namespace tidegate::gateway

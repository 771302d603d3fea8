#pragma once
// The relay: sends an admitted, routed request to its pool's endpoints and answers the client.
//
// The attempt loop: pick an endpoint (the picker's filters and scorers; endpoints an earlier
// attempt failed on are excluded, and a retry goes only to endpoints that serve the model) →
// send on a pooled connection (UpstreamPool; a dead pooled connection is replaced by the client
// itself, not retried) → on a failure before any byte reached the client, ask the retry policy
// → relay the response: a non-streamed body is checked to be a JSON object (else 502, never
// relayed) and bounded; a stream is relayed event by event with backpressure, its usage scanned
// and edited to what the client asked for (usage_scanner.h), and ended with an error event if
// the engine fails mid-way or ends it without `data: [DONE]`. When every attempt failed, the
// engine's own last 5xx/429 answer is relayed, else a 502/503/504 in OpenAI format
// (retry_policy.h).
//
// Threads: runs on the worker that owns the exchange, `env.pool` and `env.rng`.

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "api/resources.h"
#include "common/http_server.h"
#include "gateway/body.h"
#include "gateway/endpoint.h"
#include "gateway/ledger/ledger.h"
#include "gateway/picker/pick_log.h"
#include "gateway/picker/picker.h"
#include "gateway/relay/upstream_pool.h"
#include "gateway/stats.h"

namespace tidegate::gateway::relay {

// A worker's long-lived parts the relay uses.
struct RelayEnv {
  UpstreamPool& pool;
  std::mt19937_64& rng;
  PickLog& picks;
};

// Where a request goes, from routing.
struct RelayTarget {
  const std::vector<std::shared_ptr<Endpoint>>& endpoints;  // the pool's, from the snapshot
  const std::string& pool;
  const std::string& model;         // as requested (metric label)
  const std::string& target_model;  // what the engine is asked for
  api::Criticality criticality = api::Criticality::kStandard;
  const PickConfig& pick;
  RouteStats& stats;           // resolved for this route by the snapshot
  PoolStats& pool_stats;       // resolved for the pool by the snapshot
  double total_timeout_s = 0;  // the route rule's; 0: the Gateway's spec.timeouts.total
};

// The request the relay sends to an engine, built once for every attempt: `path` and `body`
// (already rewritten for the engine), the client's x-request-id, the Gateway's timeouts.
http::ClientRequest upstreamRequest(const api::GatewayConfig& g, const http::Exchange& ex,
                                    std::string path, std::string body);

// Relays `ex`'s request, sent upstream as `up`, and answers the client. Fills in `rec`: endpoint,
// status (499 when the client left), TTFT, usage as the engine reported it (prompt_tokens stays
// -1 when it reported none; completion_tokens then counts the content chunks relayed). `extra`:
// response headers from admission (x-ratelimit-*). `up` is the caller's and must outlive the
// call (taken by reference: a copy would put the relay's frame over the size Asio recycles);
// its body is released once the response is being relayed, as no attempt follows.
boost::asio::awaitable<void> relayRequest(RelayEnv& env, http::Exchange& ex,
                                          const api::GatewayConfig& g, const RelayTarget& target,
                                          const RequestFields& fields, http::ClientRequest& up,
                                          const http::Headers& extra, UsageRecord& rec);

}  // namespace tidegate::gateway::relay

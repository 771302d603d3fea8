#pragma once
// The request pipeline: a chain of small stages over one per-request context, in the manner of
// Envoy's HTTP filter chain, in process:
//
//   endpoint → authenticate → parse → authorise → route → admit → relay (pick + send) → account
//
// Each stage reads the context, adds what it learned, or refuses the request by setting
// `denial` (an OpenAI-format error); the chain stops at the first denial and accounts for it.
// The synchronous stages are plain functions of their inputs, tested table by table
// (tests/gateway/pipeline/); `admit` may wait on the shared rate-limit backend and `relay` on
// the engines, so those two are coroutines run by the pipeline (gateway.cc).
//
// Threads: a context belongs to the worker running its request.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_server.h"
#include "gateway/access.h"
#include "gateway/body.h"
#include "gateway/ledger/ledger.h"
#include "gateway/routing.h"
#include "gateway/snapshot.h"

namespace tidegate::gateway::pipeline {

// What the pipeline knows about one request as it goes.
struct RequestContext {
  std::shared_ptr<const Snapshot> snap;  // the live snapshot when the request arrived
  std::string path;                      // the target's path, query removed
  double t0 = 0;                         // monotonic start
  Principal who;                         // authenticate
  RequestFields fields;                  // parse
  std::optional<Route> route;            // route
  Grant grant;                           // admit
  std::string model_label;               // the model as a bounded metric label
  UsageRecord rec;                       // what the ledger records, filled by every stage
  std::optional<Denial> denial;          // set by the stage that refuses the request
};

// Which API a request is for.
enum class Api { kGeneration, kModels };

// endpoint: the path and method. A generation (chat, completions, embeddings: POST) or the model
// list (GET); anything else is refused here: 404 for other paths, 405 with `Allow` for other
// methods.
std::variant<Api, Denial> endpoint(std::string_view path, boost::beast::http::verb method);

// parse: a JSON body (Content-Type application/json, or none) with a string `model`; 415 for
// another media type, 400 for a malformed body (with the offending field as `param`).
std::optional<Denial> parse(std::string_view content_type, std::string_view body,
                            RequestFields& out);

// route: the request (host, path, headers) and model to a pool and target model
// (RoutingTable::route), at the criticality of the model — or of the InferenceObjective the
// request names — and the caller's plan, the less critical. 404 (model_not_found) when nothing
// serves the model.
std::optional<Denial> route(const Snapshot& snap, const RequestInfo& request, const Principal& who,
                            const RequestFields& fields, std::uint64_t draw,
                            std::optional<Route>& out);

// admit's input: the tokens a plan's limits reserve — the prompt's and max_tokens (256 when the
// request sets none); nothing without a plan (the prompt is then never tokenised).
double tokensToReserve(const Principal& who, const RequestFields& fields);

}  // namespace tidegate::gateway::pipeline

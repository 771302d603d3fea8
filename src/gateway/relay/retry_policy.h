#pragma once
// The relay's retry policy, as a pure function of how an attempt ended: a request is tried on
// another endpoint only while nothing of its response has reached the client, and only for
// failures another endpoint may not have (connect failures, resets and timeouts before the
// first byte, 5xx and 429 answers, bodies that are not the JSON they must be). A dead pooled
// connection is not an attempt at all: http::Client sends again on a fresh one (its resend).

#include <cstdint>
#include <string_view>

namespace tidegate::gateway::relay {

// How one attempt ended.
enum class Outcome : std::uint8_t {
  kServed,       // a response the client gets as it is (2xx, or 4xx other than 429)
  kConnect,      // the connection failed (refused, unreachable)
  kTimeout,      // no response headers (or body bytes) within the deadline
  kReset,        // the engine closed or reset the connection before answering
  kIo,           // another transport error before the first byte reached the client
  kHttp5xx,      // an error status before any byte reached the client
  kHttp429,      // the engine is full
  kBadResponse,  // a 200 whose body is not the JSON object it must be, or an oversized one
  kNoEndpoint,   // no ready endpoint (left) that serves the model
  kClientGone,   // the client closed its connection
  kMidStream,    // the upstream failed after bytes reached the client
};

// The `kind` label of tidegate_upstream_errors_total for a failed attempt.
std::string_view outcomeKind(Outcome o);

enum class Next : std::uint8_t {
  kDone,    // nothing more to do: served, or the client left, or a stream ended mid-way
  kRetry,   // try another endpoint
  kGiveUp,  // answer the client with an error (see giveUpStatus)
};

// REQUIRES: attempt >= 0 (the first attempt is 0); retries >= 0.
Next decide(Outcome o, int attempt, int retries);

// The status a client gets when the relay gives up after `last`: 503 when no endpoint could be
// tried, 504 when the last attempt timed out, else 502. (An engine's own 5xx/429 answer to the
// last attempt is relayed as it is instead, by the relay.)
unsigned giveUpStatus(Outcome last);

}  // namespace tidegate::gateway::relay

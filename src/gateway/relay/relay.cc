#include "gateway/relay/relay.h"

#include <algorithm>
#include <boost/container/small_vector.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "common/sse.h"
#include "common/tokenizer.h"
#include "engine/model/kv_cache.h"
#include "gateway/picker/picker.h"
#include "gateway/relay/retry_policy.h"
#include "gateway/relay/usage_scanner.h"

namespace tidegate::gateway::relay {

namespace asio = boost::asio;
using http::Status;

namespace {

constexpr int kPrefixBlockTokens = 64;           // the gateway's prefix-affinity granularity
constexpr std::size_t kPrefixMaxTokens = 32768;  // only the first tokens matter for affinity

double now() { return monotonicSeconds(); }

Outcome fromFailure(http::Failure f) {
  switch (f) {
    case http::Failure::kResolve:
    case http::Failure::kConnect:
      return Outcome::kConnect;
    case http::Failure::kTimeout:
      return Outcome::kTimeout;
    case http::Failure::kReset:
      return Outcome::kReset;
    case http::Failure::kTooLarge:
    case http::Failure::kProtocol:
      return Outcome::kBadResponse;
    default:
      return Outcome::kIo;
  }
}

using Tried = boost::container::small_vector<bool, 16>;

// Picks among the endpoints not tried yet. A plain function, so its scratch space lives on the
// stack, not in the relay's coroutine frame that every open stream keeps.
Pick pickEndpoint(const std::vector<std::shared_ptr<Endpoint>>& eps, const Tried& tried,
                  const std::vector<engine::BlockHash>& hashes, const RelayTarget& target,
                  double now, std::uint64_t random) {
  boost::container::small_vector<Candidate, 16> cands(eps.size());
  boost::container::small_vector<std::shared_ptr<const EndpointMetrics>, 16> hold(eps.size());
  for (std::size_t i = 0; i < eps.size(); ++i) {
    hold[i] = eps[i]->metrics();
    cands[i].metrics = hold[i].get();
    cands[i].tried = tried[i];
    if (tried[i]) continue;
    cands[i].inflight = eps[i]->inflight.load(std::memory_order_relaxed);
    cands[i].prefix_match =
        hashes.empty() ? 0 : double(eps[i]->prefix.match(hashes)) / double(hashes.size());
  }
  return pick(cands, {target.target_model, target.criticality}, target.pick, now, random);
}

// The prefix-block hashes of the prompt, for affinity; none when the prefix scorer is off.
std::vector<engine::BlockHash> prefixHashes(const api::GatewayConfig& g,
                                            const RequestFields& fields) {
  if (g.weights.prefix <= 0) return {};
  std::vector<std::uint32_t> ids;
  tokenizer::encode(std::string_view(fields.prompt_text).substr(0, kPrefixMaxTokens * 4), ids);
  if (ids.size() > kPrefixMaxTokens) ids.resize(kPrefixMaxTokens);
  return engine::blockHashes(ids, kPrefixBlockTokens, 0);
}

constexpr int kShed = -2;  // chooseEndpoint: the pool is saturated and the request Sheddable

// Picks the endpoint of the next attempt and books the pick (tried, stats, pick log, prefix
// cache, the record's endpoint). Its index, -1 when nothing (left) can be tried, or kShed.
int chooseEndpoint(RelayEnv& env, const RelayTarget& target, Tried& tried,
                   const std::vector<engine::BlockHash>& hashes, UsageRecord& rec) {
  const auto& eps = target.endpoints;
  const Pick p = pickEndpoint(eps, tried, hashes, target, now(), env.rng());
  if (p.shed) return kShed;
  if (p.index < 0) return -1;
  const auto& ep = eps[static_cast<std::size_t>(p.index)];
  tried[static_cast<std::size_t>(p.index)] = true;
  target.pool_stats.picks[winnerIndex(p.winner)]->inc();
  if (const double t = now(); env.picks.wants(t))
    env.picks.add({t, target.model, target.target_model, target.pool, ep->address().str(), p.winner,
                   p.scores, p.total});
  if (!hashes.empty()) ep->prefix.insert(hashes);
  rec.endpoint = ep->address().str();
  return p.index;
}

// What one attempt got before any byte reached the client.
struct Attempt {
  Outcome outcome = Outcome::kServed;
  std::string message;  // why it failed
  std::shared_ptr<http::Client> client;
  unsigned status = 0;  // the engine's answer
  std::string content_type;
  std::string body;  // the whole answer when not streamed
  Usage usage;       // from a non-streamed 200
  bool streaming = false;
  bool client_gone = false;  // the client left meanwhile

  void fail(const http::ClientError& e) {
    outcome = fromFailure(e.kind);
    message = e.message;
  }
};

// Sends the request to `ep` and reads what comes before the first byte to the client: the head,
// and a body that is not streamed, whole. Its own coroutine, so that its temporaries are not in
// relayRequest's frame, which every open stream keeps.
asio::awaitable<Attempt> attemptOn(RelayEnv& env, http::Exchange& ex, const api::GatewayConfig& g,
                                   const http::ClientRequest& up,
                                   const std::shared_ptr<Endpoint>& ep, bool stream_requested,
                                   double deadline, PoolStats& pool_stats,
                                   const std::shared_ptr<bool>& client_gone) {
  Attempt a;
  a.client = env.pool.acquire(ep);
  // The client left: abort the upstream request too. (weak: the connection may be gone or
  // back in the pool by the time this runs.)
  ex.onPeerClosed([weak = std::weak_ptr<http::Client>(a.client), gone = client_gone] {
    *gone = true;
    if (auto c = weak.lock()) c->cancel();
  });
  auto started = co_await a.client->start(up);
  if (a.client->resent()) pool_stats.resends->inc();
  if (*client_gone) {
    a.client_gone = true;
    co_return a;
  }
  if (!started) {
    a.fail(started.error());
    co_return a;
  }
  a.status = started->status;
  a.content_type = std::move(started->content_type);
  if (a.status >= 500 || a.status == 429) {
    a.outcome = a.status == 429 ? Outcome::kHttp429 : Outcome::kHttp5xx;
    a.message = "HTTP " + std::to_string(a.status);
    auto b = co_await a.client->readAll(g.max_response_bytes, g.idle_timeout_s, deadline - now());
    if (b) a.body = std::move(b).value();
    co_return a;
  }
  a.streaming = stream_requested && a.status == 200 &&
                a.content_type.find("text/event-stream") != std::string::npos;
  if (a.streaming) co_return a;
  auto b = co_await a.client->readAll(g.max_response_bytes, g.idle_timeout_s, deadline - now());
  if (*client_gone) {
    a.client_gone = true;
    co_return a;
  }
  if (!b) {
    a.fail(b.error());
    co_return a;
  }
  a.body = std::move(b).value();
  if (a.status == 200) {
    const auto scan = scanObject(a.body);
    if (!scan.object) {
      // Not the JSON object an OpenAI response is: never relayed.
      a.outcome = Outcome::kBadResponse;
      a.message = "answered 200 with a body that is not a JSON object";
    } else {
      a.usage = scan.usage;
    }
  }
  co_return a;
}

// A streamed answer's progress, for the record.
struct StreamTally {
  Usage usage;              // the engine's latest report
  long content_chunks = 0;  // completion tokens when the engine reports no usage
};

// Relays an engine's event stream to the client (the head already sent), event by event, with
// usage scanned and edited to what the client asked for. Returns the status to record: 200, 499
// when the client left, 502 when the engine failed mid-way (the stream then ends with an error
// event). Its own coroutine for the reason attemptOn is.
asio::awaitable<int> relayStream(http::Exchange& ex, http::Client& client,
                                 const api::GatewayConfig& g, const RelayTarget& target,
                                 ClientUsage client_usage, double t0, double deadline,
                                 const bool& client_gone, StreamTally& tally, UsageRecord& rec) {
  SseParser splitter(g.max_event_bytes);
  std::vector<std::string> events;
  std::string out;
  bool write_failed = false;
  bool done = false;  // the engine's `data: [DONE]` went by
  std::string failure;
  Outcome failure_kind = Outcome::kIo;
  double last_token = -1;
  while (true) {
    auto piece =
        co_await client.next(std::max(0.001, std::min(g.idle_timeout_s, deadline - now())));
    if (!piece) {
      failure = piece.error().message;
      failure_kind = fromFailure(piece.error().kind);
      break;
    }
    if (piece->empty()) break;
    events.clear();
    if (!splitter.feedRaw(*piece, events)) {
      failure = "upstream event over " + std::to_string(g.max_event_bytes) + " bytes";
      failure_kind = Outcome::kBadResponse;
      break;
    }
    out.clear();
    for (auto& ev : events) {
      const auto data = SseParser::data(ev);
      if (data && *data == "[DONE]") done = true;
      if (data && *data != "[DONE]") {
        const auto scan = scanObject(*data);
        if (scan.usage_object) {
          if (scan.usage.prompt >= 0) tally.usage.prompt = scan.usage.prompt;
          if (scan.usage.completion >= 0) tally.usage.completion = scan.usage.completion;
        }
        const auto edit = usageEdit(scan, client_usage);
        if (edit == UsageEdit::kDrop) continue;  // usage the gateway asked for
        if (!(scan.choices_empty && scan.usage_object)) {
          const double t = now();
          if (last_token < 0) {
            rec.ttft_s = t - t0;
            target.stats.ttft.observe(rec.ttft_s);
          } else {
            target.stats.itl.observe(t - last_token);
          }
          last_token = t;
          // The chat stream's first chunk carries the role, not a token.
          if (tally.content_chunks > 0 || !scan.role_only) ++tally.content_chunks;
        }
        if (edit != UsageEdit::kPass) ev = "data: " + applyUsageEdit(*data, scan, edit) + "\n\n";
      }
      out += ev;
    }
    if (!out.empty() && !co_await ex.write(out)) {
      write_failed = true;
      break;
    }
  }
  // A clean end leaves at most an event without its blank line: the engine's [DONE] goes out
  // as it came. A stream that ends without [DONE] was cut short all the same.
  std::string rest;
  if (!write_failed && !client_gone && failure.empty()) {
    rest = splitter.takePending();
    if (const auto data = SseParser::data(rest); data && *data == "[DONE]") done = true;
    if (!done) {
      failure = "the stream ended without data: [DONE]";
      failure_kind = Outcome::kBadResponse;
    }
  }
  if (write_failed || client_gone) {  // the client left (our cancel may have failed the read)
    client.close();
    co_return 499;
  }
  if (!failure.empty()) {
    // Streaming began: no retry. End the stream with an explicit error event.
    target.pool_stats.upstreamError(failure_kind).inc();
    spdlog::warn("{} upstream {} failed mid-stream: {}", ex.logId(), rec.endpoint, failure);
    std::string err = "data: " +
                      http::openaiError("upstream failed mid-stream: " + failure, "server_error",
                                        {}, "upstream_error") +
                      "\n\n";
    co_await ex.write(err);
    co_await ex.finishStream();
    co_return 502;
  }
  if (!rest.empty()) co_await ex.write(rest);
  co_await ex.finishStream();
  co_return 200;
}

// The engine's own error answer to the last attempt, relayed if every attempt fails.
struct ErrorAnswer {
  unsigned status = 0;
  std::string body, content_type;
};

// Answers a request no attempt reached the client with: the pool shed it (429), or every attempt
// failed — the engine's own last error answer if there was one, else a 502/503/504 — and counts
// it. A coroutine of its own, so that the answer is built in its frame, not in relayRequest's.
asio::awaitable<void> answerGiveUp(http::Exchange& ex, const RelayTarget& target, bool shed,
                                   Outcome last, const std::string& last_message,
                                   ErrorAnswer answer, const http::Headers& extra,
                                   UsageRecord& rec) {
  http::Headers headers;
  if (shed) {
    answer = {
        static_cast<unsigned>(Status::too_many_requests),
        http::openaiError("The pool " + target.pool + " is saturated; shedding Sheddable requests.",
                          "rate_limit_error", {}, "saturated"),
        "application/json"};
    headers = {{"x-tidegate-dropped-reason", "saturated"}};
  } else if (answer.status != 0) {
    // The engine's own error answer to the last attempt says most.
    headers = {{"x-tidegate-pool", target.pool}};
  } else {
    const unsigned status = giveUpStatus(last);
    answer = {
        status,
        last == Outcome::kNoEndpoint
            ? http::openaiError("no ready endpoint in pool " + target.pool + " serves the model",
                                "service_unavailable", {}, "no_ready_endpoint")
            : http::openaiError("upstream failed: " + last_message, "server_error", {},
                                status == 504 ? "upstream_timeout" : "upstream_error"),
        "application/json"};
  }
  headers.insert(headers.end(), extra.begin(), extra.end());
  target.stats.requests(static_cast<int>(answer.status)).inc();
  rec.status = static_cast<int>(answer.status);
  co_await ex.respond(static_cast<Status>(answer.status), std::move(answer.body),
                      answer.content_type, headers);
}

}  // namespace

http::ClientRequest upstreamRequest(const api::GatewayConfig& g, const http::Exchange& ex,
                                    std::string path, std::string body) {
  http::ClientRequest up{.method = "POST",
                         .target = std::move(path),
                         .body = std::move(body),
                         .timeout_s = g.first_byte_timeout_s,
                         .connect_timeout_s = g.connect_timeout_s,
                         .keep_headers = false};
  // Emplaced, not an initializer list: a list's strings are built and then copied, twice the
  // allocations on every request.
  up.headers.reserve(2);
  up.headers.emplace_back("Content-Type", "application/json");
  if (auto rid = ex.request()["x-request-id"]; !rid.empty())
    up.headers.emplace_back("x-request-id", rid);
  return up;
}

// Only what spans a suspension is a local here: every local of a coroutine lives in its frame
// for as long as the request runs (a whole stream), so the steps are plain functions or
// coroutines of their own.
asio::awaitable<void> relayRequest(RelayEnv& env, http::Exchange& ex, const api::GatewayConfig& g,
                                   const RelayTarget& target, const RequestFields& fields,
                                   http::ClientRequest& up, const http::Headers& extra,
                                   UsageRecord& rec) {
  const double t0 = now();
  const double deadline =
      t0 + (target.total_timeout_s > 0 ? target.total_timeout_s : g.total_timeout_s);
  rec.target_model = target.target_model;
  rec.pool = target.pool;
  rec.estimated = true;  // until the engine reports usage

  const std::vector<engine::BlockHash> hashes = prefixHashes(g, fields);
  Tried tried(target.endpoints.size(), false);
  const auto client_gone = std::make_shared<bool>(false);  // set by the disconnect watch
  Outcome last = Outcome::kNoEndpoint;
  std::string last_message = "no ready endpoint serves the model";
  ErrorAnswer answer;
  bool shed = false;

  for (int attempt_no = 0;; ++attempt_no) {
    const int index = chooseEndpoint(env, target, tried, hashes, rec);
    if (index == kShed) {
      shed = true;
      break;
    }
    if (index < 0) break;  // nothing (left) to try: `last` says why
    const auto& ep = target.endpoints[static_cast<std::size_t>(index)];
    ep->inflight.fetch_add(1, std::memory_order_relaxed);
    struct Release {
      Endpoint& e;
      ~Release() { e.inflight.fetch_sub(1, std::memory_order_relaxed); }
    } release{*ep};

    Attempt a = co_await attemptOn(env, ex, g, up, ep, fields.stream, deadline, target.pool_stats,
                                   client_gone);
    if (a.client_gone) {
      a.client->close();
      target.stats.requests(499).inc();
      rec.status = 499;
      co_return;  // nobody to answer, nothing to retry for
    }
    if (a.outcome != Outcome::kServed) {
      target.pool_stats.upstreamError(a.outcome).inc();
      spdlog::warn("{} upstream {} failed before the first byte: {}", ex.logId(),
                   ep->address().str(), a.message);
      env.pool.release(ep, std::move(a.client));  // kept only if its response was complete
      last = a.outcome;
      last_message = std::move(a.message);
      if (a.outcome == Outcome::kHttp5xx || a.outcome == Outcome::kHttp429) {
        answer = {a.status, std::move(a.body), std::move(a.content_type)};
      } else {
        answer = {};
      }
      if (decide(a.outcome, attempt_no, g.retries) != Next::kRetry) break;
      target.pool_stats.retries->inc();
      continue;
    }

    // Served: the response goes to the client. No attempt follows, so the request body (the
    // whole prompt) is not kept for as long as the stream runs.
    up.body.clear();
    up.body.shrink_to_fit();
    http::Headers down;
    down.reserve(2 + extra.size());
    down.emplace_back("x-tidegate-endpoint", rec.endpoint);
    down.emplace_back("x-tidegate-pool", target.pool);
    down.insert(down.end(), extra.begin(), extra.end());
    StreamTally tally;
    int status = static_cast<int>(a.status);
    if (!a.streaming) {
      tally.usage = a.usage;
      if (a.status == 200) {
        rec.ttft_s = now() - t0;
        target.stats.ttft.observe(rec.ttft_s);
      }
      co_await ex.respond(static_cast<Status>(a.status), std::move(a.body), a.content_type, down);
    } else if (!co_await ex.startStream(Status::ok, a.content_type, down)) {
      a.client->close();
      status = 499;  // the client went away
    } else {
      const ClientUsage client_usage{fields.include_usage,
                                     fields.include_usage && fields.continuous_usage};
      status = co_await relayStream(ex, *a.client, g, target, client_usage, t0, deadline,
                                    *client_gone, tally, rec);
    }
    env.pool.release(ep, std::move(a.client));
    const Usage& usage = tally.usage;
    if (usage.prompt >= 0) rec.prompt_tokens = usage.prompt;
    if (usage.completion >= 0) {
      rec.completion_tokens = usage.completion;
      rec.estimated = usage.prompt < 0;
    } else {
      // No usage from the engine (an engine that does not report it, or a stream cut short
      // before the first chunk): one content chunk is one token, as engines stream them.
      rec.completion_tokens = tally.content_chunks;
    }
    target.stats.requests(status).inc();
    rec.status = status;
    target.stats.duration.observe(now() - t0);
    if (usage.prompt >= 0) target.stats.prompt_tokens.inc(static_cast<double>(usage.prompt));
    if (usage.completion >= 0)
      target.stats.completion_tokens.inc(static_cast<double>(usage.completion));
    co_return;
  }

  // The pool shed the request, every attempt failed before any byte reached the client, or
  // nothing could be tried.
  rec.prompt_tokens = 0;  // no engine processed it
  co_await answerGiveUp(ex, target, shed, last, last_message, std::move(answer), extra, rec);
}

}  // namespace tidegate::gateway::relay

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

// The engine's own error answer to the last attempt, relayed if every attempt fails.
struct ErrorAnswer {
  unsigned status = 0;
  std::string body, content_type;
};

}  // namespace

asio::awaitable<void> relayRequest(RelayEnv& env, http::Exchange& ex, const api::GatewayConfig& g,
                                   const RelayTarget& target, const RequestFields& fields,
                                   std::string path, std::string body, const http::Headers& extra,
                                   UsageRecord& rec) {
  const auto& eps = target.endpoints;
  const double t0 = now();
  const double deadline =
      t0 + (target.total_timeout_s > 0 ? target.total_timeout_s : g.total_timeout_s);
  const ClientUsage client_usage{fields.include_usage,
                                 fields.include_usage && fields.continuous_usage};
  rec.target_model = target.target_model;
  rec.pool = target.pool;
  rec.estimated = true;  // until the engine reports usage

  // Prefix hashes of the prompt, for affinity; not computed when the prefix scorer is off.
  std::vector<engine::BlockHash> hashes;
  if (g.weights.prefix > 0) {
    std::vector<std::uint32_t> ids;
    tokenizer::encode(std::string_view(fields.prompt_text).substr(0, kPrefixMaxTokens * 4), ids);
    if (ids.size() > kPrefixMaxTokens) ids.resize(kPrefixMaxTokens);
    hashes = engine::blockHashes(ids, kPrefixBlockTokens, 0);
  }

  Tried tried(eps.size(), false);
  const auto client_gone = std::make_shared<bool>(false);  // set by the disconnect watch
  Outcome last = Outcome::kNoEndpoint;
  std::string last_message = "no ready endpoint serves the model";
  ErrorAnswer answer;
  auto& stats = target.stats;
  auto& pool_stats = target.pool_stats;
  auto count = [&](int status) {
    stats.requests(status).inc();
    rec.status = status;
  };

  // The upstream request, built once for every attempt.
  http::ClientRequest up{.method = "POST",
                         .target = std::move(path),
                         .body = std::move(body),
                         .headers = {{"Content-Type", "application/json"}},
                         .timeout_s = g.first_byte_timeout_s,
                         .connect_timeout_s = g.connect_timeout_s,
                         .keep_headers = false};
  if (auto rid = ex.request()["x-request-id"]; !rid.empty())
    up.headers.emplace_back("x-request-id", std::string(rid));

  for (int attempt = 0;; ++attempt) {
    const Pick p = pickEndpoint(eps, tried, hashes, target, now(), env.rng());
    if (p.shed) {
      count(429);
      rec.prompt_tokens = 0;
      http::Headers h{{"x-tidegate-dropped-reason", "saturated"}};
      h.insert(h.end(), extra.begin(), extra.end());
      std::string b = http::openaiError(
          "The pool " + target.pool + " is saturated; shedding Sheddable requests.",
          "rate_limit_error", {}, "saturated");
      co_await ex.respond(Status::too_many_requests, std::move(b), "application/json", h);
      co_return;
    }
    if (p.index < 0) break;  // nothing (left) to try: `last` says why
    const auto& ep = eps[static_cast<std::size_t>(p.index)];
    tried[static_cast<std::size_t>(p.index)] = true;
    pool_stats.picks[winnerIndex(p.winner)]->inc();
    if (const double t = now(); env.picks.wants(t))
      env.picks.add({t, target.model, target.target_model, target.pool, ep->address().str(),
                     p.winner, p.scores, p.total});
    if (!hashes.empty()) ep->prefix.insert(hashes);
    rec.endpoint = ep->address().str();

    auto client = env.pool.acquire(ep);
    ep->inflight.fetch_add(1, std::memory_order_relaxed);
    struct Release {
      Endpoint& e;
      ~Release() { e.inflight.fetch_sub(1, std::memory_order_relaxed); }
    } release{*ep};

    // The client left: abort the upstream request too. (weak: the connection may be gone or
    // back in the pool by the time this runs.)
    ex.onPeerClosed([weak = std::weak_ptr<http::Client>(client), gone = client_gone] {
      *gone = true;
      if (auto c = weak.lock()) c->cancel();
    });
    auto started = co_await client->start(up);
    if (client->resent()) pool_stats.resends->inc();
    if (*client_gone) {
      client->close();
      count(499);
      co_return;  // nobody to answer, nothing to retry for
    }

    // Before any byte reached the client: a failure here may be retried elsewhere.
    Outcome o = Outcome::kServed;
    std::string resp;
    if (!started) {
      o = fromFailure(started.error().kind);
      last_message = started.error().message;
    } else if (started->status >= 500 || started->status == 429) {
      o = started->status == 429 ? Outcome::kHttp429 : Outcome::kHttp5xx;
      last_message = "HTTP " + std::to_string(started->status);
      auto b = co_await client->readAll(g.max_response_bytes, g.idle_timeout_s, deadline - now());
      answer = {started->status, b ? std::move(b).value() : std::string(), started->content_type};
    }
    const bool streaming =
        o == Outcome::kServed && fields.stream && started->status == 200 &&
        started->content_type.find("text/event-stream") != std::string_view::npos;
    if (o == Outcome::kServed && !streaming) {
      auto b = co_await client->readAll(g.max_response_bytes, g.idle_timeout_s, deadline - now());
      if (*client_gone) {
        client->close();
        count(499);
        co_return;
      }
      if (!b) {
        o = fromFailure(b.error().kind);
        last_message = b.error().message;
      } else {
        resp = std::move(b).value();
      }
    }
    Usage usage;
    if (o == Outcome::kServed && !streaming && started->status == 200) {
      const auto scan = scanObject(resp);
      if (!scan.object) {
        // Not the JSON object an OpenAI response is: never relayed.
        o = Outcome::kBadResponse;
        last_message = "answered 200 with a body that is not a JSON object";
      } else {
        usage = scan.usage;
      }
    }
    if (o != Outcome::kServed) {
      pool_stats.upstreamError(o).inc();
      spdlog::warn("{} upstream {} failed before the first byte: {}", ex.logId(),
                   ep->address().str(), last_message);
      env.pool.release(ep, std::move(client));  // kept only if its response was complete
      last = o;
      if (o != Outcome::kHttp5xx && o != Outcome::kHttp429) answer = {};
      if (decide(o, attempt, g.retries) != Next::kRetry) break;
      pool_stats.retries->inc();
      continue;
    }

    // Served: the response goes to the client.
    http::Headers down{{"x-tidegate-endpoint", ep->address().str()},
                       {"x-tidegate-pool", target.pool}};
    down.insert(down.end(), extra.begin(), extra.end());
    auto& ttft = stats.ttft;
    auto& itl = stats.itl;
    long content_chunks = 0;  // completion tokens when the engine reports no usage
    int status = static_cast<int>(started->status);
    if (!streaming) {
      if (started->status == 200) {
        rec.ttft_s = now() - t0;
        ttft.observe(rec.ttft_s);
      }
      co_await ex.respond(static_cast<Status>(started->status), std::move(resp),
                          started->content_type, down);
    } else if (!co_await ex.startStream(Status::ok, started->content_type, down)) {
      client->close();
      status = 499;  // the client went away
    } else {
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
            co_await client->next(std::max(0.001, std::min(g.idle_timeout_s, deadline - now())));
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
              if (scan.usage.prompt >= 0) usage.prompt = scan.usage.prompt;
              if (scan.usage.completion >= 0) usage.completion = scan.usage.completion;
            }
            const auto edit = usageEdit(scan, client_usage);
            if (edit == UsageEdit::kDrop) continue;  // usage the gateway asked for
            if (!(scan.choices_empty && scan.usage_object)) {
              const double t = now();
              if (last_token < 0) {
                rec.ttft_s = t - t0;
                ttft.observe(rec.ttft_s);
              } else {
                itl.observe(t - last_token);
              }
              last_token = t;
              // The chat stream's first chunk carries the role, not a token.
              if (content_chunks > 0 || !scan.role_only) ++content_chunks;
            }
            if (edit != UsageEdit::kPass)
              ev = "data: " + applyUsageEdit(*data, scan, edit) + "\n\n";
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
      if (!write_failed && !*client_gone && failure.empty()) {
        rest = splitter.takePending();
        if (const auto data = SseParser::data(rest); data && *data == "[DONE]") done = true;
        if (!done) {
          failure = "the stream ended without data: [DONE]";
          failure_kind = Outcome::kBadResponse;
        }
      }
      if (write_failed || *client_gone) {  // the client left (our cancel may have failed the read)
        client->close();
        status = 499;
      } else if (!failure.empty()) {
        // Streaming began: no retry. End the stream with an explicit error event.
        pool_stats.upstreamError(failure_kind).inc();
        spdlog::warn("{} upstream {} failed mid-stream: {}", ex.logId(), ep->address().str(),
                     failure);
        std::string err = "data: " +
                          http::openaiError("upstream failed mid-stream: " + failure,
                                            "server_error", {}, "upstream_error") +
                          "\n\n";
        co_await ex.write(err);
        co_await ex.finishStream();
        status = 502;
      } else {
        if (!rest.empty()) co_await ex.write(rest);
        co_await ex.finishStream();
      }
    }
    env.pool.release(ep, std::move(client));
    if (usage.prompt >= 0) rec.prompt_tokens = usage.prompt;
    if (usage.completion >= 0) {
      rec.completion_tokens = usage.completion;
      rec.estimated = usage.prompt < 0;
    } else {
      // No usage from the engine (an engine that does not report it, or a stream cut short
      // before the first chunk): one content chunk is one token, as engines stream them.
      rec.completion_tokens = content_chunks;
    }
    count(status);
    stats.duration.observe(now() - t0);
    if (usage.prompt >= 0) stats.prompt_tokens.inc(static_cast<double>(usage.prompt));
    if (usage.completion >= 0) stats.completion_tokens.inc(static_cast<double>(usage.completion));
    co_return;
  }

  // Every attempt failed before any byte reached the client, or nothing could be tried.
  rec.prompt_tokens = 0;  // no engine processed it
  if (answer.status != 0) {
    // The engine's own error answer to the last attempt says most.
    http::Headers down{{"x-tidegate-pool", target.pool}};
    down.insert(down.end(), extra.begin(), extra.end());
    count(static_cast<int>(answer.status));
    co_await ex.respond(static_cast<Status>(answer.status), std::move(answer.body),
                        answer.content_type, down);
    co_return;
  }
  const unsigned status = giveUpStatus(last);
  count(static_cast<int>(status));
  std::string b =
      last == Outcome::kNoEndpoint
          ? http::openaiError("no ready endpoint in pool " + target.pool + " serves the model",
                              "service_unavailable", {}, "no_ready_endpoint")
          : http::openaiError("upstream failed: " + last_message, "server_error", {},
                              status == 504 ? "upstream_timeout" : "upstream_error");
  co_await ex.respond(static_cast<Status>(status), std::move(b), "application/json", extra);
}

}  // namespace tidegate::gateway::relay

#include "engine/server.h"

#include "engine/model/load_gauges.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <limits>

#include "common/clock.h"
#include "common/json_util.h"
#include "common/log.h"

namespace tidegate::engine {

namespace bj = boost::json;
using http::Status;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

// vLLM's histogram buckets (vllm/v1/metrics/loggers.py), so dashboards built for vLLM work as is.
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                          0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                          20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kItlBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                         0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kLatencyBuckets = {0.3,  0.5,   0.8,   1.0,   1.5,   2.0,    2.5,
                                             5.0,  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,
                                             60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

// Waits until `t` is cancelled (used as an event: notify() == cancel()). Callers re-check their
// condition before waiting, so a cancel with no waiter loses nothing.
asio::awaitable<void> waitEvent(asio::steady_timer& t) {
  t.expires_at(asio::steady_timer::time_point::max());
  co_await t.async_wait(kTuple);
}

std::string hex(std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[i] = kHex[v & 0xF];
  return s;
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

asio::awaitable<void> sendError(http::Exchange& ex, const ApiError& e) {
  std::string_view code = e.code;
  co_await ex.respond(e.status,
                      http::openaiError(e.message, http::openaiErrorType(e.status), e.param, code));
}

}  // namespace

struct EngineServer::Active {
  explicit Active(asio::any_io_executor ex) : wake(std::move(ex)) {}
  GeneratedText text;
  int prompt_tokens = 0;
  int produced = 0;  // output tokens the scheduler has produced so far
  bool done = false;
  bool aborted = false;
  double arrival = 0, scheduled = -1, last_token = -1;
  asio::steady_timer wake;
};

// The engine's metrics, declared in one place. vLLM names and the `model_name` label.
struct EngineServer::Metrics {
  explicit Metrics(prom::Registry& r, const std::string& model)
      : prompt_tokens(r.counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.",
                                {"model_name"})
                          .with({model})),
        generation_tokens(r.counter("vllm:generation_tokens_total",
                                    "Number of generation tokens processed.", {"model_name"})
                              .with({model})),
        success(r.counter("vllm:request_success_total", "Count of successfully processed requests.",
                          {"model_name", "finished_reason"})),
        ttft(r.histogram("vllm:time_to_first_token_seconds",
                         "Histogram of time to first token in seconds.", {"model_name"},
                         kTtftBuckets)
                 .with({model})),
        itl(r.histogram("vllm:inter_token_latency_seconds",
                        "Histogram of inter-token latency in seconds.", {"model_name"}, kItlBuckets)
                .with({model})),
        e2e(r.histogram("vllm:e2e_request_latency_seconds",
                        "Histogram of e2e request latency in seconds.", {"model_name"},
                        kLatencyBuckets)
                .with({model})),
        queue(r.histogram("vllm:request_queue_time_seconds",
                          "Histogram of time spent in WAITING phase for request.", {"model_name"},
                          kLatencyBuckets)
                  .with({model})),
        model_(model) {}

  prom::Counter& finished(std::string_view reason) {
    return success.with({model_, std::string(reason)});
  }

  prom::Counter& prompt_tokens;
  prom::Counter& generation_tokens;
  prom::Family<prom::Counter>& success;
  prom::Histogram& ttft;
  prom::Histogram& itl;
  prom::Histogram& e2e;
  prom::Histogram& queue;
  std::string model_;
};

EngineServer::EngineServer(asio::io_context& ioc, EngineOptions options)
    : ioc_(ioc),
      opts_(std::move(options)),
      scheduler_([&] {
        SchedulerConfig c = opts_.scheduler;
        c.perf = c.perf.scaled(opts_.time_scale);
        c.seed = opts_.seed;
        return c;
      }()),
      tls_(opts_.ssl_certfile.empty()
               ? Result<std::shared_ptr<tls::ServerTls>>(nullptr)
               : tls::ServerTls::make(
                     {.certificate_file = opts_.ssl_certfile, .key_file = opts_.ssl_keyfile})),
      server_(ioc,
              http::ServerOptions{.max_body_bytes = opts_.max_body_bytes,
                                  .idle_timeout_s = opts_.keep_alive_timeout_s,
                                  .server_name = "tidegate-engine",
                                  .keep_alive = opts_.keep_alive,
                                  .tls = tls_ ? *tls_ : nullptr},
              [this](http::Exchange& ex) { return handle(ex); }),
      metrics_(std::make_unique<Metrics>(registry_, opts_.servedName())),
      work_(ioc),
      start_time_(now()),
      created_(unixSeconds()) {
  for (const auto& m : opts_.lora_modules) adapters_[m.name] = m.path;
  registry_.addCollector([this](prom::TextWriter& w) { collect(w); });
}

EngineServer::~EngineServer() { stop(); }

double EngineServer::now() const { return monotonicSeconds(); }

Result<http::tcp::endpoint> EngineServer::start() {
  if (!tls_) return tls_.error();
  auto ep = server_.listen(opts_.host, opts_.port);
  if (!ep) return ep;
  server_.start();
  asio::co_spawn(ioc_, stepLoop(), asio::detached);
  return ep;
}

void EngineServer::drain(std::function<void()> on_drained) {
  if (stopped_) return;
  server_.stopAccepting(std::move(on_drained));
}

void EngineServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  server_.stop();
  work_.cancel();
  for (auto& [id, a] : active_) {
    a->aborted = true;
    a->wake.cancel();
  }
}

bool EngineServer::ready() const {
  const double startup =
      std::isinf(opts_.time_scale) ? 0 : opts_.startup_ms / 1000.0 / opts_.time_scale;
  return now() - start_time_ >= startup;
}

bool EngineServer::knownModel(const std::string& name) const {
  return name == opts_.servedName() || adapters_.contains(name);
}

asio::awaitable<void> EngineServer::handle(http::Exchange& ex) {
  const auto& req = ex.request();
  std::string_view target = req.target();
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  const auto method = req.method();
  using V = boost::beast::http::verb;

  // Answers 405 unless the method is `want`; returns whether the request may proceed.
  const char* wrong_method = nullptr;
  bool not_ready = false;
  auto allow = [&](V want) {
    if (method == want) return true;
    wrong_method = want == V::get ? "GET" : "POST";
    return false;
  };

  if (target == "/health") {
    if (allow(V::get))
      co_await ex.respond(ready() ? Status::ok : Status::service_unavailable, std::string(), "");
  } else if (target == "/metrics") {
    if (allow(V::get))
      co_await ex.respond(Status::ok, registry_.render(),
                          "text/plain; version=0.0.4; charset=utf-8");
  } else if (target == "/version") {
    if (allow(V::get))
      co_await ex.respond(Status::ok, std::string(R"({"version":"tidegate-engine 0.1.0"})"));
  } else if (target == "/v1/models") {
    if (allow(V::get)) co_await ex.respond(Status::ok, modelsBody());
  } else if (target == "/v1/chat/completions" || target == "/v1/completions") {
    if (allow(V::post)) {
      if (ready()) {
        const Endpoint endpoint =
            target == "/v1/chat/completions" ? Endpoint::kChat : Endpoint::kCompletion;
        co_await generate(ex, endpoint);
      } else {
        not_ready = true;
      }
    }
  } else if (target == "/v1/embeddings") {
    if (allow(V::post)) {
      if (ready()) {
        co_await embeddings(ex);
      } else {
        not_ready = true;
      }
    }
  } else if (target == "/v1/load_lora_adapter" || target == "/v1/unload_lora_adapter") {
    const bool load = target == "/v1/load_lora_adapter";
    if (allow(V::post)) co_await loadLora(ex, load);
  } else {
    co_await ex.respond(Status::not_found, http::openaiError("no route for " + std::string(target),
                                                             "not_found_error"));
  }
  if (wrong_method) {
    http::Headers allow_header{{"Allow", wrong_method}};
    std::string body = http::openaiError(
        "method " + std::string(req.method_string()) + " not allowed on " + std::string(target),
        "invalid_request_error");
    co_await ex.respond(Status::method_not_allowed, std::move(body), "application/json",
                        allow_header);
  } else if (not_ready) {
    co_await ex.respond(Status::service_unavailable,
                        http::openaiError("the engine is starting", "service_unavailable"));
  }
}

std::string EngineServer::modelsBody() const {
  bj::array data;
  auto card = [&](const std::string& id, const std::string& root, bj::value parent) {
    return bj::object{{"id", id},
                      {"object", "model"},
                      {"created", created_},
                      {"owned_by", "vllm"},
                      {"root", root},
                      {"parent", std::move(parent)},
                      {"max_model_len", opts_.scheduler.max_model_len}};
  };
  data.push_back(card(opts_.servedName(), opts_.model, nullptr));
  std::vector<std::string> names;
  for (const auto& [name, path] : adapters_) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (const auto& name : names)
    data.push_back(card(name, adapters_.at(name), bj::value(opts_.servedName())));
  return bj::serialize(bj::object{{"object", "list"}, {"data", std::move(data)}});
}

std::variant<SeqId, ApiError> EngineServer::admit(const std::string& body, Endpoint endpoint,
                                                  GenParams& p, Active& a) {
  auto parsed = parseGeneration(endpoint, body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return std::move(*e);
  p = std::move(std::get<GenParams>(parsed));
  if (!knownModel(p.model)) {
    return ApiError{Status::not_found, "The model `" + p.model + "` does not exist.", "model",
                    "model_not_found"};
  }
  const int max_len = opts_.scheduler.max_model_len;
  const int prompt_len = static_cast<int>(p.prompt_ids.size());
  const int max_tokens = p.max_tokens.value_or(std::max(0, max_len - prompt_len));
  if (prompt_len + max_tokens > max_len || max_tokens < 1) {
    return ApiError{Status::bad_request,
                    "This model's maximum context length is " + std::to_string(max_len) +
                        " tokens. However, you requested " +
                        std::to_string(prompt_len + max_tokens) + " tokens (" +
                        std::to_string(prompt_len) + " in the messages, " +
                        std::to_string(max_tokens) +
                        " in the completion). Please reduce the length of the messages or "
                        "completion.",
                    "messages", "context_length_exceeded"};
  }

  const SeqId id = next_id_++;
  a.text = generateText({.mode = opts_.mode,
                         .echo_source = p.echo_source,
                         .max_tokens = max_tokens,
                         .stop = &p.stop,
                         .seed = p.seed ? mix(*p.seed) : mix(opts_.seed ^ mix(id)),
                         .eos_mean = opts_.eos_mean,
                         .ignore_eos = p.ignore_eos});
  a.prompt_tokens = prompt_len;
  a.arrival = now();

  SeqRequest sr;
  sr.tokens = std::move(p.prompt_ids);
  sr.tokens.insert(sr.tokens.end(), a.text.ids.begin(), a.text.ids.end());
  sr.prompt_len = prompt_len;
  sr.output_len = static_cast<int>(a.text.pieces.size());
  if (p.model != opts_.servedName()) sr.lora = p.model;
  const long total = static_cast<long>(sr.tokens.size());
  switch (scheduler_.add(id, std::move(sr))) {
    case Scheduler::Admit::kOk:
      return id;
    case Scheduler::Admit::kQueueFull:
      return ApiError{Status::too_many_requests,
                      "The engine is overloaded: " + std::to_string(scheduler_.numWaiting()) +
                          " requests are already waiting (--max-waiting). Retry later.",
                      {},
                      "queue_full"};
    case Scheduler::Admit::kTooLong:
      return ApiError{Status::bad_request, "request exceeds the maximum model length", "max_tokens",
                      "context_length_exceeded"};
    case Scheduler::Admit::kTooLarge:
      return ApiError{Status::bad_request,
                      "This request needs " + std::to_string(total) +
                          " tokens of KV cache but the whole cache holds " +
                          std::to_string(opts_.scheduler.kv_blocks * opts_.scheduler.block_size) +
                          ".",
                      "max_tokens", "kv_cache_too_small"};
    case Scheduler::Admit::kLoraDisabled:
      return ApiError{
          Status::bad_request, "LoRA adapters are disabled (--max-loras 0)", "model", {}};
  }
  return ApiError{Status::internal_server_error, "unreachable", {}, {}};
}

asio::awaitable<void> EngineServer::generate(http::Exchange& ex, Endpoint endpoint) {
  GenParams p;
  Active a(ioc_.get_executor());
  auto admitted = admit(ex.request().body(), endpoint, p, a);
  if (auto* e = std::get_if<ApiError>(&admitted)) {
    co_await sendError(ex, *e);
    co_return;
  }
  const SeqId id = std::get<SeqId>(admitted);
  const int prompt_len = a.prompt_tokens;
  const int output_len = static_cast<int>(a.text.pieces.size());

  active_.emplace(id, &a);
  work_.cancel();  // wake the step loop
  // Whatever way this coroutine ends, the sequence leaves the scheduler and the table.
  struct Cleanup {
    EngineServer* self;
    SeqId id;
    Active& a;
    ~Cleanup() {
      self->active_.erase(id);
      if (!a.done) self->scheduler_.abort(id);
    }
  } cleanup{this, id, a};
  ex.onPeerClosed([this, id] { abortRequest(id); });

  std::string request_id(ex.request()["x-request-id"]);
  if (request_id.empty()) request_id = hex(mix(created_ ^ mix(id ^ opts_.seed)));
  ResponseWriter writer(endpoint,
                        (endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + request_id,
                        unixSeconds(), p.model, p.include_usage, p.continuous_usage);
  // Built here, not inside a co_await expression: GCC 12 rejects initializer lists there.
  const http::Headers id_header{{"x-request-id", request_id}};
  const auto& finish = a.text.finish_reason;
  const auto& stop_reason = a.text.stop_reason;

  if (!p.stream) {
    while (!a.done && !a.aborted) co_await waitEvent(a.wake);
    if (a.aborted) co_return;
    std::string text;
    for (const auto& piece : a.text.pieces) text += piece;
    co_await ex.respond(Status::ok,
                        writer.fullBody(text, finish, stop_reason, prompt_len, output_len),
                        "application/json", id_header);
    co_return;
  }

  if (!co_await ex.startStream(Status::ok, "text/event-stream; charset=utf-8", id_header)) {
    co_return;
  }
  int sent = 0;
  std::string buf;
  while (!a.aborted) {
    if (sent == a.produced) {
      co_await waitEvent(a.wake);
      continue;
    }
    // Everything produced since the last write goes out in one write, one event per token.
    buf.clear();
    if (sent == 0) buf += writer.roleChunk();
    for (; sent < a.produced; ++sent) {
      const bool last = sent + 1 == output_len;
      writer.appendContentChunk(buf, a.text.pieces[sent], last ? finish : "",
                                last ? stop_reason : "", prompt_len, sent + 1);
    }
    const bool done = a.done;
    if (done) {
      if (p.include_usage) buf += writer.usageChunk(prompt_len, output_len);
      buf += ResponseWriter::kDone;
    }
    if (!co_await ex.write(buf)) {
      abortRequest(id);
      co_return;
    }
    if (done) {
      co_await ex.finishStream();
      co_return;
    }
  }
}

void EngineServer::abortRequest(SeqId id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  Active& a = *it->second;
  if (a.done || a.aborted) return;
  a.aborted = true;
  scheduler_.abort(id);
  metrics_->finished("abort").inc();
  spdlog::debug("request {} aborted: client gone", id);
  a.wake.cancel();
}

asio::awaitable<void> EngineServer::stepLoop() {
  asio::steady_timer step_timer(ioc_);
  while (!stopped_) {
    if (scheduler_.idle()) {
      co_await waitEvent(work_);
      continue;
    }
    const Step& step = scheduler_.schedule();
    if (step.empty()) {
      // Waiting sequences that cannot run until something else changes (e.g. an adapter load).
      co_await waitEvent(work_);
      continue;
    }
    const double t0 = now();
    for (const auto& s : step.seqs) {
      auto it = active_.find(s.id);
      if (it != active_.end() && it->second->scheduled < 0) {
        it->second->scheduled = t0;
        metrics_->queue.observe(t0 - it->second->arrival);
      }
    }
    if (step.duration > 0) {
      step_timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(step.duration)));
      co_await step_timer.async_wait(kTuple);
    } else {
      co_await asio::post(ioc_, asio::use_awaitable);  // let I/O run between zero-length steps
    }
    if (stopped_) break;
    const double t1 = now();
    busy_.add(t0, t1);
    events_.clear();
    scheduler_.complete(events_);
    onTokens(t1);
  }
}

void EngineServer::onTokens(double t) {
  for (const auto& e : events_) {
    auto it = active_.find(e.id);
    if (it == active_.end()) continue;
    Active& a = *it->second;
    if (e.index == 0) {
      metrics_->ttft.observe(t - a.arrival);
      metrics_->prompt_tokens.inc(a.prompt_tokens);
    } else {
      metrics_->itl.observe(t - a.last_token);
    }
    metrics_->generation_tokens.inc();
    a.last_token = t;
    a.produced = e.index + 1;
    if (e.finished) {
      a.done = true;
      metrics_->e2e.observe(t - a.arrival);
      metrics_->finished(a.text.finish_reason).inc();
    }
    a.wake.cancel();
  }
}

void EngineServer::collect(prom::TextWriter& w) const {
  const prom::Labels model{{"model_name", opts_.servedName()}};
  auto gauge = [&](std::string_view name, std::string_view help, double v) {
    w.family(name, "gauge", help);
    w.sample(name, model, v);
  };
  auto counter = [&](std::string_view name, std::string_view help, double v) {
    w.family(name, "counter", help);
    w.sample(name, model, v);
  };
  const auto& st = scheduler_.stats();
  gauge(kRunningGauge, "Number of requests in model execution batches.",
        static_cast<double>(scheduler_.numRunning()));
  gauge(kWaitingGauge, "Number of requests waiting to be processed.",
        static_cast<double>(scheduler_.numWaiting()));
  gauge(kKvUsageGauge, "KV-cache usage. 1 means 100 percent usage.", scheduler_.kv().usage());
  gauge(kGpuCacheUsageGauge, "GPU KV-cache usage. 1 means 100 percent usage.",
        scheduler_.kv().usage());
  counter("vllm:prefix_cache_queries_total",
          "Prefix cache queries, in terms of number of queried tokens.",
          static_cast<double>(st.prefix_queries));
  counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.",
          static_cast<double>(st.prefix_hits));
  counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.",
          static_cast<double>(st.preemptions));

  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  };
  // As in vLLM, the value is the time of the observation; readers take the newest sample.
  w.family("vllm:lora_requests_info", "gauge", "Running stats on lora requests.");
  w.sample("vllm:lora_requests_info",
           {{"max_lora", std::to_string(scheduler_.lora().maxLoras())},
            {"running_lora_adapters", join(scheduler_.lora().running())},
            {"waiting_lora_adapters", join(scheduler_.waitingAdapters())}},
           static_cast<double>(unixSeconds()));
  w.family("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig.");
  w.sample("vllm:cache_config_info",
           {{"block_size", std::to_string(opts_.scheduler.block_size)},
            {"enable_prefix_caching", opts_.scheduler.prefix_caching ? "True" : "False"},
            {"num_gpu_blocks", std::to_string(opts_.scheduler.kv_blocks)}},
           1);
  w.family(kSmUtilGauge, "gauge",
           "Share of the last second the simulated GPU was busy, in percent (0-100).");
  w.sample(kSmUtilGauge, {{"gpu", "0"}, {"model_name", opts_.servedName()}},
           std::round(busy_.share(now()) * 1000) / 10);
}

std::variant<std::string, ApiError> EngineServer::embed(const std::string& request_body) {
  auto parsed = parseEmbeddings(request_body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return std::move(*e);
  auto& p = std::get<EmbeddingParams>(parsed);
  if (!knownModel(p.model)) {
    return ApiError{Status::not_found, "The model `" + p.model + "` does not exist.", "model",
                    "model_not_found"};
  }
  bj::array data;
  std::size_t total = 0;
  for (std::size_t i = 0; i < p.inputs.size(); ++i) {
    if (p.tokens[i] > static_cast<std::size_t>(opts_.scheduler.max_model_len)) {
      return ApiError{Status::bad_request,
                      "input " + std::to_string(i) + " has " + std::to_string(p.tokens[i]) +
                          " tokens, more than the maximum context length " +
                          std::to_string(opts_.scheduler.max_model_len),
                      "input", "context_length_exceeded"};
    }
    total += p.tokens[i];
    // A deterministic unit vector from the input's hash: equal inputs, equal embeddings.
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : p.inputs[i]) h = (h ^ c) * 1099511628211ull;
    std::mt19937_64 rng(mix(h));
    std::normal_distribution<double> n(0, 1);
    std::vector<double> v(static_cast<std::size_t>(opts_.embedding_dim));
    double norm = 0;
    for (auto& x : v) {
      x = n(rng);
      norm += x * x;
    }
    norm = std::sqrt(norm);
    bj::array vec;
    vec.reserve(v.size());
    for (double x : v) vec.push_back(x / norm);
    data.push_back(
        bj::object{{"object", "embedding"}, {"index", i}, {"embedding", std::move(vec)}});
  }
  bj::object body{{"object", "list"},
                  {"data", std::move(data)},
                  {"model", p.model},
                  {"usage", bj::object{{"prompt_tokens", total}, {"total_tokens", total}}}};
  metrics_->prompt_tokens.inc(static_cast<double>(total));
  return bj::serialize(body);
}

asio::awaitable<void> EngineServer::embeddings(http::Exchange& ex) {
  auto result = embed(ex.request().body());
  if (auto* e = std::get_if<ApiError>(&result)) {
    co_await sendError(ex, *e);
  } else {
    co_await ex.respond(Status::ok, std::move(std::get<std::string>(result)));
  }
}

std::variant<std::string, ApiError> EngineServer::applyLora(const std::string& body, bool load) {
  std::string err;
  auto v = json::parse(body, err);
  const bj::object* o = v ? v->if_object() : nullptr;
  if (!o) return ApiError{Status::bad_request, "request body must be a JSON object", {}, {}};
  const auto* name = o->if_contains("lora_name");
  if (!name || !name->is_string() || name->get_string().empty())
    return ApiError{Status::bad_request, "lora_name: expected a non-empty string", "lora_name", {}};
  const std::string lora(name->get_string());
  if (!load) {
    if (!adapters_.erase(lora))
      return ApiError{
          Status::not_found, "The lora adapter '" + lora + "' cannot be found.", "lora_name", {}};
    // Running sequences keep their slot until they finish; an idle slot is freed now.
    scheduler_.evictAdapter(lora);
    spdlog::info("unloaded LoRA adapter {}", lora);
    return "Success: LoRA adapter '" + lora + "' removed successfully.";
  }
  const auto* path = o->if_contains("lora_path");
  if (!path || !path->is_string() || path->get_string().empty())
    return ApiError{Status::bad_request, "lora_path: expected a non-empty string", "lora_path", {}};
  if (lora == opts_.servedName() || adapters_.contains(lora))
    return ApiError{Status::bad_request,
                    "The lora adapter '" + lora + "' has already been loaded.",
                    "lora_name",
                    {}};
  adapters_[lora] = std::string(path->get_string());
  spdlog::info("loaded LoRA adapter {} from {}", lora, adapters_[lora]);
  return "Success: LoRA adapter '" + lora + "' added successfully.";
}

asio::awaitable<void> EngineServer::loadLora(http::Exchange& ex, bool load) {
  auto result = applyLora(ex.request().body(), load);
  if (auto* e = std::get_if<ApiError>(&result)) {
    co_await sendError(ex, *e);
  } else {
    co_await ex.respond(Status::ok, std::move(std::get<std::string>(result)), "text/plain");
  }
}

}  // namespace tidegate::engine

#include "gateway/gateway.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <random>

#include "api/loader.h"
#include "api/reload.h"
#include "common/clock.h"
#include "common/duration.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/prometheus.h"
#include "common/tokenizer.h"
#include "gateway/access.h"
#include "gateway/admin.h"
#include "gateway/body.h"
#include "gateway/pipeline/stages.h"
#include "gateway/relay/relay.h"
#include "gateway/routing.h"
#include "gateway/scraper.h"
#include "gateway/snapshot.h"
#include "gateway/stats.h"

namespace tidegate::gateway {

namespace asio = boost::asio;
namespace bj = boost::json;
using http::Status;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

using tidegate::monotonicSeconds;
double now() { return monotonicSeconds(); }

}  // namespace

Result<TlsContexts> buildTls(const api::GatewayConfig& g) {
  TlsContexts out;
  if (g.tls.enabled) {
    auto version = tls::parseVersion(g.tls.min_version);
    if (!version) return Error{"spec.tls.minVersion: " + version.error().message};
    out.server_config = {g.tls.certificate_file, g.tls.key_file, g.tls.client_ca_file, *version};
    auto ctx = tls::makeServerContext(out.server_config);
    if (!ctx) return Error{"spec.tls: " + ctx.error().message};
    out.server = std::move(ctx).value();
  }
  const auto& u = g.upstream_tls;
  auto up = tls::makeClientContext({u.ca_file, u.certificate_file, u.key_file, u.verify});
  if (!up) return Error{"spec.upstreamTLS: " + up.error().message};
  out.upstream = std::move(up).value();
  return out;
}

struct Gateway::Impl {
  GatewayOptions opts;
  prom::Registry metrics_registry;
  GatewayStats stats{metrics_registry};
  EndpointRegistry registry;
  SnapshotBuilder builder{registry, stats};  // the one writer of the live snapshot
  Access access{metrics_registry};

  // Control thread: scraper and admin server.
  asio::io_context control{1};
  std::unique_ptr<http::Server> admin;
  std::thread control_thread;
  // TLS: the listener's (and maybe the admin address's) server context, and the client context
  // for https endpoints. Both are rebuilt by reloads; the server one also when its files change.
  std::shared_ptr<tls::ServerTls> server_tls;
  std::atomic<std::shared_ptr<tls::ssl::context>> upstream_tls;
  std::shared_ptr<tls::ssl::context> upstreamTls() const { return upstream_tls.load(); }

  Scraper scraper{control, [this] { return builder.current(); },
                  [this] { builder.modelListsChanged(); }, [this] { return upstreamTls(); }};

  struct Worker {
    explicit Worker(relay::UpstreamPool::TlsContext tls)
        : upstream(ioc.get_executor(), {}, 256, std::move(tls)) {}
    // The reactor's per-socket locks are left out (a lock and an unlock less for every read,
    // write and wait), which Asio allows when one thread at a time uses a socket: the worker's
    // sockets are made before its thread starts and destroyed after it ends, and while it runs
    // only it touches them — other threads post to it, and must keep doing so.
    asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    std::unique_ptr<http::Server> server;
    std::thread thread;
    relay::UpstreamPool upstream;
    std::mt19937_64 rng{std::random_device{}()};
    std::unique_ptr<admission::RedisClient> redis;        // the shared rate-limit backend, if any
    std::unique_ptr<admission::Admissions> admissions;    // batched on `redis`
    std::unique_ptr<admission::Settlements> settlements;  // batched on `redis`
  };
  std::vector<std::unique_ptr<Worker>> workers;
  std::uint16_t port = 0, admin_port = 0;

  // The configuration the process started with (start-up-only settings stay as it has them),
  // and what the reloads since did (for /admin/state).
  std::shared_ptr<const api::Config> started;
  struct Reloads {
    int applied = 0, refused = 0;
    double last_at = 0;      // unix seconds of the last attempt
    std::string last_error;  // of the last attempt, if refused
    std::vector<api::RestartSetting> restart_needed;
  };
  mutable std::mutex reloads_mu;
  // Reloads run one at a time (SIGHUP and the Kubernetes watches may ask at once).
  std::mutex reload_mu;
  // Configuration from elsewhere than the file (Kubernetes objects), read at every load.
  mutable std::mutex extra_mu;
  std::function<api::LoadOptions()> extra_source;
  Reloads reloads;

  PickLog picks;                                        // for /admin/state
  TrafficHistory traffic;                               // for /admin/state and /ui; control thread
  std::shared_ptr<http::ConnectionBudget> connections;  // client connections, every worker
  AdminApi admin_api{builder, metrics_registry, access, picks};

  // Reloads the listener's certificate when its files change (a Secret rotated by Kubernetes,
  // a renewal by certbot), without a SIGHUP. Control thread.
  asio::awaitable<void> certificateWatch() {
    asio::steady_timer timer(control);
    while (true) {
      timer.expires_after(std::chrono::seconds(2));
      auto [ec] = co_await timer.async_wait(kTuple);
      if (ec) co_return;
      auto r = server_tls->reloadIfChanged();
      if (!r) {
        spdlog::error("TLS certificate files changed but do not load, keeping the current ones: {}",
                      r.error().message);
      } else if (*r) {
        spdlog::info("TLS certificate reloaded from {} (its files changed)",
                     server_tls->config().certificate_file);
      }
    }
  }

  // Reads the request metrics into the traffic history every interval. Control thread.
  asio::awaitable<void> trafficLoop() {
    asio::steady_timer timer(control);
    while (true) {
      traffic.sample(now(), stats.trafficTotals());
      timer.expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(
          std::chrono::duration<double>(traffic.intervalSeconds())));
      auto [ec] = co_await timer.async_wait(kTuple);
      if (ec) co_return;
    }
  }

  // Closes each worker's idle upstream connections once they pass their keep-alive deadline.
  asio::awaitable<void> pruneLoop(Worker& w) {
    asio::steady_timer timer(w.ioc);
    while (true) {
      timer.expires_after(std::chrono::seconds(1));
      auto [ec] = co_await timer.async_wait(kTuple);
      if (ec) co_return;
      w.upstream.prune(monotonicSeconds());
    }
  }

  explicit Impl(GatewayOptions o) : opts(std::move(o)) {
    metrics_registry.addCollector([this](prom::TextWriter& w) {
      if (!connections) return;
      w.family("tidegate_client_connections", "gauge", "Open client connections, every worker.");
      w.sample("tidegate_client_connections", {}, static_cast<double>(connections->open()));
      w.family("tidegate_client_connections_refused_total", "counter",
               "Client connections answered 503 because limits.maxConnections were open.");
      w.sample("tidegate_client_connections_refused_total", {},
               static_cast<double>(connections->rejected()));
    });
    metrics_registry.addCollector([this](prom::TextWriter& w) { collectTls(w); });
    metrics_registry.addCollector([this](prom::TextWriter& w) {
      std::lock_guard lock(reloads_mu);
      w.family("tidegate_config_reloads_total", "counter",
               "Configuration reloads, by result: applied, or refused (the running one kept).");
      w.sample("tidegate_config_reloads_total", {{"result", "applied"}}, reloads.applied);
      w.sample("tidegate_config_reloads_total", {{"result", "refused"}}, reloads.refused);
      w.family("tidegate_config_last_reload_successful", "gauge",
               "1 unless the last reload was refused.");
      w.sample("tidegate_config_last_reload_successful", {}, reloads.last_error.empty() ? 1 : 0);
    });
    builder.subscribe([this](const std::shared_ptr<const Snapshot>& snap) { onPublish(*snap); });
    admin_api.addSection("configuration", [this] { return configurationState(); });
    admin_api.addSection("traffic", [this] { return traffic.toJson(now()); });
    for (const char* chart : {"requests", "ttft"})
      admin_api.addChart(chart, [this, chart] { return traffic.chart(chart, now()); });
  }

  void collectTls(prom::TextWriter& w) const {
    if (!server_tls) return;
    const auto& t = *server_tls;
    w.family("tidegate_tls_handshakes_total", "counter", "Client TLS handshakes that succeeded.");
    w.sample("tidegate_tls_handshakes_total", {}, static_cast<double>(t.handshakes()));
    w.family("tidegate_tls_handshake_failures_total", "counter",
             "Client TLS handshakes that failed, by reason.");
    using F = tls::ServerTls::Failure;
    for (auto f : {F::kTimeout, F::kProtocol, F::kClientCertificate, F::kClosed})
      w.sample("tidegate_tls_handshake_failures_total",
               {{"reason", tls::ServerTls::failureName(f)}}, static_cast<double>(t.failures(f)));
    w.family("tidegate_tls_certificate_reloads_total", "counter",
             "Listener certificate reloads, by result.");
    w.sample("tidegate_tls_certificate_reloads_total", {{"result", "applied"}},
             static_cast<double>(t.reloads()));
    w.sample("tidegate_tls_certificate_reloads_total", {{"result", "failed"}},
             static_cast<double>(t.reloadFailures()));
    if (auto left = t.secondsUntilExpiry()) {
      w.family("tidegate_tls_certificate_expiry_seconds", "gauge",
               "Seconds until the listener's certificate expires (negative: expired).");
      w.sample("tidegate_tls_certificate_expiry_seconds", {}, *left);
    }
  }

  bj::value configurationState() const {
    const auto cfg = snapshot()->config;
    std::lock_guard lock(reloads_mu);
    bj::array restart;
    for (const auto& r : reloads.restart_needed)
      restart.push_back(
          bj::object{{"field", r.field}, {"running", r.running}, {"configured", r.configured}});
    return bj::object{
        {"file", cfg->file},
        {"sha256", cfg->digest},
        {"api_keys", api::authModeName(cfg->gateway.auth_mode)},
        {"admin_api", cfg->gateway.admin_token.empty() ? "read-only" : "token"},
        {"reloads_applied", reloads.applied},
        {"reloads_refused", reloads.refused},
        {"last_reload_at",
         reloads.last_at > 0 ? bj::value(formatTimestamp(reloads.last_at)) : bj::value(nullptr)},
        {"last_reload_error",
         reloads.last_error.empty() ? bj::value(nullptr) : bj::value(reloads.last_error)},
        {"restart_required", std::move(restart)}};
  }

  std::shared_ptr<const Snapshot> snapshot() const { return builder.current(); }

  // After each new snapshot: scrapers follow its endpoints, and each worker closes its pooled
  // connections to endpoints that left it.
  void onPublish(const Snapshot& snap) {
    asio::post(control, [this] { scraper.sync(); });
    const auto live = snap.endpoints();
    for (auto& w : workers) asio::post(w->ioc, [wp = w.get(), live] { wp->upstream.retain(live); });
  }

  // --- Configuration ---------------------------------------------------------------------

  // Reads and validates the configuration file.
  Result<std::shared_ptr<const api::Config>> load() const {
    api::LoadOptions extra;
    {
      std::lock_guard lock(extra_mu);
      if (extra_source) extra = extra_source();
    }
    auto cfg = api::loadConfig(opts.config_path, extra);
    if (!cfg) return cfg.error();
    return std::make_shared<const api::Config>(std::move(cfg).value());
  }

  // --- Data plane --------------------------------------------------------------------------

  asio::awaitable<void> handle(Worker& w, http::Exchange& ex);
  std::optional<Denial> prepare(Worker& w, const http::Request& req, pipeline::RequestContext& c,
                                bool& record);
  asio::awaitable<std::optional<Denial>> admit(Worker& w, pipeline::RequestContext& c);
  void refused(pipeline::RequestContext& c, const Denial& d);
  relay::RelayTarget relayTarget(const pipeline::RequestContext& c,
                                 std::unique_ptr<RouteStats>& unresolved);
  std::string modelsBody(const Snapshot& st, const Principal& who) const;
};

// The models the caller may use: configured ones and those engines list, within its plan.
std::string Gateway::Impl::modelsBody(const Snapshot& st, const Principal& who) const {
  std::vector<std::string> names;
  auto add = [&](const std::string& n) {
    if (Access::allows(who, n) && std::find(names.begin(), names.end(), n) == names.end())
      names.push_back(n);
  };
  for (const auto& m : st.table->models())
    if (!m.fallback) add(m.model_name);  // a fallback takes names; it lists none
  for (const auto& eps : st.pool_endpoints)
    for (const auto& e : eps) {
      auto m = e->metrics();
      if (!m->up) continue;
      for (const auto& n : m->models) add(n);
      for (const auto& n : m->adapters) add(n);
    }
  bj::array data;
  const auto created = unixSeconds();
  for (const auto& n : names)
    data.push_back(
        bj::object{{"id", n}, {"object", "model"}, {"created", created}, {"owned_by", "tidegate"}});
  return bj::serialize(bj::object{{"object", "list"}, {"data", std::move(data)}});
}

// The stages before admission (endpoint, authenticate, parse, authorise, route). A plain
// function, not part of the coroutine: its temporaries live on the stack, not in the frame
// that every open stream keeps. Returns the answer when the request ends here (a refusal, or
// the model list) with `record` set when it is to be accounted as a request.
std::optional<Denial> Gateway::Impl::prepare(Worker& w, const http::Request& req,
                                             pipeline::RequestContext& c, bool& record) {
  namespace pl = pipeline;
  using F = boost::beast::http::field;
  record = false;
  c.snap = snapshot();
  c.path = std::string(req.target());
  if (auto q = c.path.find('?'); q != std::string::npos) c.path.resize(q);
  auto api = pl::endpoint(c.path, req.method());
  if (auto* d = std::get_if<Denial>(&api)) return std::move(*d);
  c.t0 = now();
  // Admission, cheapest check first: the key (before the body is parsed), the body, the model
  // the plan allows, the route, then the limits (which charge the key).
  auto authn = access.authenticate(c.snap->config, req[F::authorization], req["api-key"]);
  if (auto* d = std::get_if<Denial>(&authn)) {
    c.denial = std::move(*d);
  } else {
    c.who = std::move(std::get<Principal>(authn));
  }
  if (std::get<pl::Api>(api) == pl::Api::kModels) {
    if (c.denial) return std::move(c.denial);
    return Denial{Status::ok, modelsBody(*c.snap, c.who), {}};
  }
  // From here on every request is a usage record, whatever becomes of it.
  record = true;
  c.rec.request_id = std::string(req["x-request-id"]);
  if (!c.denial) c.denial = pl::parse(req[F::content_type], req.body(), c.fields);
  c.rec.model = c.fields.model;
  if (!c.denial) c.denial = access.authorize(c.who, c.fields.model);
  if (!c.denial) {
    const std::string_view target = req.target();
    const auto q = target.find('?');
    const RequestInfo info{req[F::host], c.path,
                           q == std::string_view::npos ? std::string_view() : target.substr(q + 1),
                           req.method_string(),
                           [&req](std::string_view name) { return std::string_view(req[name]); }};
    c.denial = pl::route(*c.snap, info, c.who, c.fields, w.rng(), c.route);
  }
  // A routed name is known (the configuration or an engine names it) unless a rewrite rule
  // without matches took it; before routing the model may be any string a client sent.
  c.model_label = c.route && !(c.route->model && c.route->model->fallback)
                      ? c.fields.model
                      : c.snap->modelLabel(c.fields.model);
  return std::move(c.denial);
}

// A refused request's accounting. A plain function, as prepare().
void Gateway::Impl::refused(pipeline::RequestContext& c, const Denial& d) {
  if (d.status == Status::not_found) stats.refused(c.model_label, 404).inc();
  c.rec.status = static_cast<int>(d.status);
  c.rec.latency_s = now() - c.t0;
  access.record(c.who, std::move(c.rec), c.model_label);
}

// The relay's target for the routed request: its pool, endpoints and pre-resolved stats. A name
// an endpoint started to list after this snapshot was built has no stats resolved yet (the next
// snapshot will), nor has a known name a pool's fallback rewrote: `unresolved` then holds them
// for this request alone.
relay::RelayTarget Gateway::Impl::relayTarget(const pipeline::RequestContext& c,
                                              std::unique_ptr<RouteStats>& unresolved) {
  const auto& route = *c.route;
  RouteStats* route_stats = c.snap->stats(route, c.fields.model);
  if (!route_stats) {
    unresolved =
        stats.route(c.model_label, route.target_model, c.snap->table->pools()[route.pool].name);
    route_stats = unresolved.get();
  }
  return relay::RelayTarget{c.snap->pool_endpoints[route.pool],
                            c.snap->table->pools()[route.pool].name,
                            c.fields.model,
                            route.target_model,
                            route.criticality,
                            c.snap->pick,
                            *route_stats,
                            *c.snap->pool_stats[route.pool],
                            route.timeout_s};
}

// admit: the plan's limits, which charge the key (sets c.grant). Its own coroutine, so that its
// temporaries are not in handle's frame.
asio::awaitable<std::optional<Denial>> Gateway::Impl::admit(Worker& w,
                                                            pipeline::RequestContext& c) {
  // A request id names the reservation in the shared backend (made up only for it).
  std::string request_id = !c.rec.request_id.empty() ? c.rec.request_id
                           : w.redis                 ? "r" + std::to_string(w.rng())
                                                     : std::string();
  auto admitted = co_await access.admit(
      w.admissions.get(), c.who, pipeline::tokensToReserve(c.who, c.fields), std::move(request_id));
  if (auto* d = std::get_if<Denial>(&admitted)) co_return std::move(*d);
  c.grant = std::move(std::get<Grant>(admitted));
  co_return std::nullopt;
}

// Only what spans a suspension is here: every local of a coroutine lives in its frame for as long
// as the request runs (a whole stream), so the stages are plain functions.
asio::awaitable<void> Gateway::Impl::handle(Worker& w, http::Exchange& ex) {
  // On the heap, not in this frame: with it the frame would be over the 1,020 bytes Asio's
  // allocator recycles, and a frame it does not recycle is a malloc and a free of over a
  // kilobyte for every request (the first of which also consolidates malloc's fast bins).
  const auto context = std::make_unique<pipeline::RequestContext>();
  pipeline::RequestContext& c = *context;
  bool record = false;
  std::optional<Denial> answer = prepare(w, ex.request(), c, record);
  if (!answer && c.route) answer = co_await admit(w, c);
  if (answer) {
    if (record) refused(c, *answer);
    co_await ex.respond(answer->status, std::move(answer->body), "application/json",
                        answer->headers);
    co_return;
  }
  c.rec.prompt_tokens = -1;  // unknown until the engine reports it
  {
    relay::RelayEnv env{w.upstream, w.rng, picks};
    std::unique_ptr<RouteStats> unresolved;
    const relay::RelayTarget target = relayTarget(c, unresolved);
    http::ClientRequest up = relay::upstreamRequest(
        c.snap->config->gateway, ex, std::move(c.path),
        rewriteBody(ex.request().body(), c.fields, c.route->target_model, /*force_usage=*/true));
    // The relay sends the rewritten copy: the client's body is not kept for as long as a stream
    // runs (a long prompt would be held twice).
    ex.request().body().clear();
    ex.request().body().shrink_to_fit();
    co_await relay::relayRequest(env, ex, c.snap->config->gateway, target, c.fields, up,
                                 c.grant.headers, c.rec);
  }
  // account: no usage from the engine (it reports none, or the client left first): estimate
  // the prompt.
  c.rec.latency_s = now() - c.t0;
  if (c.rec.prompt_tokens < 0)
    c.rec.prompt_tokens = static_cast<long>(tokenizer::count(c.fields.prompt_text));
  access.finish(w.settlements.get(), c.who, c.grant, std::move(c.rec), c.model_label);
}

Gateway::Gateway(GatewayOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Gateway::~Gateway() { stop(); }

tidegate::Status Gateway::start() {
  auto& m = *impl_;
  auto cfg = m.load();
  if (!cfg) return cfg.error();
  auto tls_contexts = buildTls((*cfg)->gateway);
  if (!tls_contexts) return Error{(*cfg)->file + ": " + tls_contexts.error().message};
  if (auto s = m.access.configure(*cfg); !s) return s;
  m.started = *cfg;
  const auto st = m.builder.setConfig(*cfg);
  const auto& g = st->config->gateway;
  m.upstream_tls.store(tls_contexts->upstream);
  if (tls_contexts->server) {
    auto t = tls::ServerTls::make(tls_contexts->server, tls_contexts->server_config);
    if (!t) return t.error();
    m.server_tls = std::move(t).value();
  }
  if (!g.upstream_tls.verify)
    spdlog::warn("spec.upstreamTLS.insecureSkipVerify: https endpoints are not verified");
  // One connection budget for every worker (the kernel spreads connections unevenly), and a
  // client that stops reading loses its response after the idle timeout: the relay then
  // cancels the upstream request and frees its slot at once.
  m.connections = std::make_shared<http::ConnectionBudget>(g.max_connections);
  http::ServerOptions so{.max_body_bytes = g.max_body_bytes,
                         .max_header_bytes = g.max_header_bytes,
                         .idle_timeout_s = g.idle_timeout_s,  // a slowloris request is dropped
                         .write_timeout_s = g.idle_timeout_s,
                         .connection_budget = m.connections,
                         .server_name = "tidegate",
                         .tls = m.server_tls,
                         .handshake_timeout_s = g.tls.handshake_timeout_s};
  for (int i = 0; i < g.workers; ++i) {
    auto w = std::make_unique<Impl::Worker>([&m] { return m.upstreamTls(); });
    if (g.seed != 0) w->rng.seed(g.seed + static_cast<std::uint64_t>(i));
    w->redis = m.access.makeRedisClient(w->ioc.get_executor());
    w->admissions = m.access.makeAdmissions(w->redis.get());
    w->settlements = m.access.makeSettlements(w->redis.get());
    Impl::Worker* wp = w.get();
    w->server = std::make_unique<http::Server>(
        w->ioc, so, [this, wp](http::Exchange& ex) { return impl_->handle(*wp, ex); });
    // The first worker binds the configured port (0: any); the others share the port it got.
    auto ep = w->server->listen(g.listen.host, i == 0 ? g.listen.port : m.port, true);
    if (!ep) return ep.error();
    m.port = ep->port();
    m.workers.push_back(std::move(w));
  }
  m.admin = std::make_unique<http::Server>(
      m.control,
      http::ServerOptions{.server_name = "tidegate-admin",
                          .tls = g.tls.admin ? m.server_tls : nullptr,
                          .handshake_timeout_s = g.tls.handshake_timeout_s},
      [this](http::Exchange& ex) { return impl_->admin_api.handle(ex); });
  auto aep = m.admin->listen(g.admin.host, g.admin.port);
  if (!aep) return aep.error();
  m.admin_port = aep->port();
  m.admin_api.setLoopback(aep->address().is_loopback());
  m.admin->start();
  asio::post(m.control, [&m] { m.scraper.sync(); });
  if (m.server_tls) asio::co_spawn(m.control, m.certificateWatch(), asio::detached);
  asio::co_spawn(m.control, m.trafficLoop(), asio::detached);
  m.control_thread = std::thread([&m] { m.control.run(); });
  for (auto& w : m.workers) {
    w->server->start();
    asio::co_spawn(w->ioc, m.pruneLoop(*w), asio::detached);
    w->thread = std::thread([wp = w.get()] { wp->ioc.run(); });
  }
  spdlog::info("gateway {}: {} pools, {} models, {} workers; configuration {} (sha256 {})", g.name,
               st->table->pools().size(), st->table->models().size(), g.workers, st->config->file,
               st->config->digest.substr(0, 12));
  if (st->config->keysRequired()) {
    spdlog::info("auth: API keys required ({} keys and {} plans in the file)",
                 st->config->keys.size(), st->config->plans.size());
  } else {
    spdlog::warn("auth: API keys disabled: every request is admitted without a key");
  }
  if (g.admin_token.empty())
    spdlog::warn(
        "admin API on {}: no admin token, so it is read-only{}", g.admin.str(),
        aep->address().is_loopback() ? "" : " and /admin/* is refused (not a loopback address)");
  return tidegate::Status::Ok();
}

// A reload is a transaction: the file is read and validated whole (the loader, then the review
// of what it would change, api/reload.h) before anything is applied; a refused one leaves the
// running configuration as it was.
tidegate::Status Gateway::reload() {
  auto& m = *impl_;
  std::lock_guard serial(m.reload_mu);
  const Access::Actor actor{"reload", "", ""};
  auto refuse = [&](const std::string& why) {
    spdlog::error("reload refused, keeping the running configuration: {}", why);
    m.access.audit(actor, "config.refused", m.opts.config_path, why);
    std::lock_guard lock(m.reloads_mu);
    ++m.reloads.refused;
    m.reloads.last_at = unixTime();
    m.reloads.last_error = why;
    return tidegate::Status(Error{why});
  };
  auto cfg = m.load();
  if (!cfg) return refuse(cfg.error().message);
  const auto running = m.snapshot()->config;
  const auto review = api::reviewReload(*m.started, *running, **cfg);
  if (!review.allowed()) {
    std::string why = m.opts.config_path + ":";
    for (const auto& r : review.refusals) why += " " + r + ";";
    why.pop_back();
    return refuse(why);
  }
  // Certificates and keys are part of the transaction: loaded before anything is applied.
  auto tls_contexts = buildTls((*cfg)->gateway);
  if (!tls_contexts) return refuse(m.opts.config_path + ": " + tls_contexts.error().message);
  if (auto s = m.access.configure(*cfg); !s) return refuse(s.message());
  // Before the snapshot: scrapes of endpoints it adds start with the new client context.
  m.upstream_tls.store(tls_contexts->upstream);
  m.builder.setConfig(*cfg);
  if (!(*cfg)->gateway.upstream_tls.verify)
    spdlog::warn("spec.upstreamTLS.insecureSkipVerify: https endpoints are not verified");
  // TLS on or off waits for a restart (the review names it); its certificates apply now, to
  // connections accepted from now on.
  if (m.server_tls && tls_contexts->server)
    m.server_tls->install(tls_contexts->server, tls_contexts->server_config);
  const auto digest = (*cfg)->digest.substr(0, 12);
  spdlog::info("configuration reloaded from {} (sha256 {}): {}", m.opts.config_path, digest,
               review.changes);
  for (const auto& r : review.restart_needed)
    spdlog::warn("{} changed from {} to {}: it applies at the next restart", r.field, r.running,
                 r.configured);
  m.access.audit(actor, "config.reload", m.opts.config_path,
                 "sha256 " + (*cfg)->digest + ": " + review.changes);
  std::lock_guard lock(m.reloads_mu);
  ++m.reloads.applied;
  m.reloads.last_at = unixTime();
  m.reloads.last_error.clear();
  m.reloads.restart_needed = review.restart_needed;
  return tidegate::Status::Ok();
}

void Gateway::stop() {
  auto& m = *impl_;
  for (auto& w : m.workers) {
    asio::post(w->ioc, [wp = w.get()] {
      wp->server->stop();
      wp->upstream.clear();
      if (wp->redis) wp->redis->close();
      wp->ioc.stop();
    });
  }
  for (auto& w : m.workers)
    if (w->thread.joinable()) w->thread.join();
  asio::post(m.control, [&m] {
    if (m.admin) m.admin->stop();
    m.scraper.stop();
    m.control.stop();
  });
  if (m.control_thread.joinable()) m.control_thread.join();
  m.access.stop();  // commits the ledger's last records
}

void Gateway::setConfigSource(std::function<api::LoadOptions()> source) {
  std::lock_guard lock(impl_->extra_mu);
  impl_->extra_source = std::move(source);
}

void Gateway::setDynamicEndpoints(std::vector<api::Endpoints> endpoints,
                                  const std::string& source) {
  impl_->builder.setEndpoints(source, std::move(endpoints));
}

std::shared_ptr<Endpoint> Gateway::endpoint(const api::HostPort& address) const {
  return impl_->snapshot()->endpoint(address);
}

std::shared_ptr<const api::Config> Gateway::config() const { return impl_->snapshot()->config; }
prom::Registry& Gateway::metrics() { return impl_->metrics_registry; }
void Gateway::addStateSection(std::string name, std::function<boost::json::value()> fn) {
  impl_->admin_api.addSection(std::move(name), std::move(fn));
}
boost::asio::io_context& Gateway::controlContext() { return impl_->control; }
void Gateway::setPoolCostRate(const std::string& pool, double dollars_per_hour) {
  impl_->access.cost().setPoolRate(pool, dollars_per_hour);
}

std::uint16_t Gateway::port() const { return impl_->port; }
std::uint16_t Gateway::adminPort() const { return impl_->admin_port; }

}  // namespace tidegate::gateway

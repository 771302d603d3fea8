#include "gateway/admin.h"

#include <boost/json.hpp>

#include "common/clock.h"
#include "common/crypto.h"
#include "gateway/console.h"
#include "gateway/picker/picker.h"

namespace tidegate::gateway {

namespace asio = boost::asio;
namespace bj = boost::json;
using http::Status;

namespace {
double now() { return monotonicSeconds(); }
}  // namespace

AdminApi::AdminApi(const SnapshotBuilder& snapshots, prom::Registry& metrics, Access& access,
                   const PickLog& picks)
    : snapshots_(snapshots), metrics_(metrics), access_(access), picks_(picks) {
  metrics_.addCollector([this](prom::TextWriter& w) { collectPools(w); });
}

void AdminApi::addSection(std::string name, std::function<bj::value()> fn) {
  sections_.emplace_back(std::move(name), std::move(fn));
}

void AdminApi::addChart(std::string name, std::function<std::string()> fn) {
  charts_.emplace_back(std::move(name), std::move(fn));
}

AdminGate adminGate(std::string_view path, boost::beast::http::verb method, bool token_configured,
                    bool token_presented, bool loopback) {
  using V = boost::beast::http::verb;
  if (!path.starts_with("/admin/")) return AdminGate::kServe;
  if (token_configured) return token_presented ? AdminGate::kServe : AdminGate::kUnauthorized;
  if (method != V::get && method != V::head) return AdminGate::kReadOnly;
  return loopback ? AdminGate::kServe : AdminGate::kLoopbackOnly;
}

// Compared in constant time (the digests), like API keys.
bool AdminApi::tokenPresented(const http::Exchange& ex, const std::string& token) const {
  const auto presented = admission::presentedKey(
      ex.request()[boost::beast::http::field::authorization], ex.request()["x-admin-token"]);
  return !presented.empty() &&
         crypto::constantTimeEqual(crypto::sha256(presented), crypto::sha256(token));
}

namespace {

// The name an admin caller gives itself (X-Tidegate-Actor), kept printable and short: it goes
// into logs and the audit trail.
std::string actorName(std::string_view header) {
  std::string out;
  for (const char c : header.substr(0, 64)) out += c >= 0x20 && c < 0x7f ? c : '?';
  return out.empty() ? "admin" : out;
}

}  // namespace

asio::awaitable<void> AdminApi::handle(http::Exchange& ex) {
  std::string target(ex.request().target());
  if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
  const std::string token = snapshots_.current()->config->gateway.admin_token;
  const bool presented = !token.empty() && tokenPresented(ex, token);
  switch (adminGate(target, ex.request().method(), !token.empty(), presented, loopback_)) {
    case AdminGate::kServe:
      break;
    case AdminGate::kUnauthorized: {
      const http::Headers challenge{{"WWW-Authenticate", "Bearer"}};
      std::string b = http::openaiError("the admin API needs 'Authorization: Bearer ADMIN_TOKEN'",
                                        "invalid_request_error", {}, "invalid_admin_token");
      co_await ex.respond(Status::unauthorized, std::move(b), "application/json", challenge);
      co_return;
    }
    case AdminGate::kReadOnly:
      co_await ex.respond(
          Status::forbidden,
          http::openaiError("the admin API is read-only without an admin token: set the "
                            "Gateway's spec.auth.adminToken (or TIDEGATE_ADMIN_TOKEN) to "
                            "create, change or revoke keys",
                            "permission_error", {}, "admin_read_only"));
      co_return;
    case AdminGate::kLoopbackOnly:
      co_await ex.respond(
          Status::forbidden,
          http::openaiError("without an admin token, /admin/* is served only on a loopback admin "
                            "address: set spec.auth.adminToken (or TIDEGATE_ADMIN_TOKEN), or "
                            "listen on 127.0.0.1",
                            "permission_error", {}, "admin_loopback_only"));
      co_return;
  }
  const Access::Actor actor{actorName(ex.request()["x-tidegate-actor"]), ex.remoteAddress(),
                            token.empty() ? "" : crypto::sha256Hex(token).substr(0, 8)};
  if (co_await access_.handleAdmin(ex, target, actor)) co_return;
  if (ex.request().method() != boost::beast::http::verb::get) {
    co_await ex.respond(Status::method_not_allowed,
                        http::openaiError("use GET", "invalid_request_error"));
  } else if (target == "/metrics") {
    co_await ex.respond(Status::ok, metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
  } else if (target == "/healthz") {
    co_await ex.respond(Status::ok, std::string("ok\n"), "text/plain");
  } else if (target == "/readyz") {
    const bool is_ready = ready();
    co_await ex.respond(is_ready ? Status::ok : Status::service_unavailable,
                        std::string(is_ready ? "ready\n" : "no ready endpoint\n"), "text/plain");
  } else if (target == "/admin/state") {
    co_await ex.respond(Status::ok, state());
  } else if (target == "/ui" || target == "/ui/") {
    const http::Headers headers = consoleHeaders();
    co_await ex.respond(Status::ok, std::string(consolePage()), "text/html; charset=utf-8",
                        headers);
  } else if (const auto* chart = chartNamed(target)) {
    std::string svg = (*chart)();
    co_await ex.respond(Status::ok, std::move(svg), "image/svg+xml");
  } else {
    co_await ex.respond(Status::not_found,
                        http::openaiError("no route for " + target, "not_found_error"));
  }
}

const std::function<std::string()>* AdminApi::chartNamed(std::string_view target) const {
  constexpr std::string_view kPrefix = "/admin/charts/", kSuffix = ".svg";
  if (!target.starts_with(kPrefix) || !target.ends_with(kSuffix)) return nullptr;
  target.remove_prefix(kPrefix.size());
  target.remove_suffix(kSuffix.size());
  for (const auto& [name, fn] : charts_)
    if (name == target) return &fn;
  return nullptr;
}

bool AdminApi::ready() const {
  const auto st = snapshots_.current();
  if (st->pool_endpoints.empty()) return true;
  for (const auto& eps : st->pool_endpoints)
    for (const auto& e : eps)
      if (e->metrics()->up) return true;
  return false;
}

std::string AdminApi::state() const {
  const auto st = snapshots_.current();
  const PickConfig& pc = st->pick;
  const double t = now();
  bj::array pools;
  for (std::size_t p = 0; p < st->pool_endpoints.size(); ++p) {
    bj::array eps;
    const auto& entry = st->table->pools()[p];
    for (std::size_t i = 0; i < st->pool_endpoints[p].size(); ++i) {
      const auto& e = st->pool_endpoints[p][i];
      auto m = e->metrics();
      bj::object labels;
      for (const auto& [k, v] : entry.endpoint_labels[i]) labels[k] = v;
      bj::array running, waiting, models, adapters;
      for (const auto& x : m->running_loras) running.push_back(bj::value(x));
      for (const auto& x : m->waiting_loras) waiting.push_back(bj::value(x));
      for (const auto& x : m->models) models.push_back(bj::value(x));
      for (const auto& x : m->adapters) adapters.push_back(bj::value(x));
      eps.push_back(bj::object{
          {"address", e->address().str()},
          {"labels", std::move(labels)},
          {"ready", m->up},
          {"saturated", m->up && isSaturated(*m, pc, t)},
          {"inflight", e->inflight.load()},
          {"scrape_age_s", m->scraped_at < 0 ? bj::value(nullptr) : bj::value(t - m->scraped_at)},
          {"error", m->error},
          {"scrape_failures", m->failures},
          {"engine", m->engine},
          {"metrics", bj::object{{"waiting", m->waiting},
                                 {"running", m->running},
                                 {"kv_cache", m->kv},
                                 {"running_lora_adapters", std::move(running)},
                                 {"waiting_lora_adapters", std::move(waiting)},
                                 {"max_lora", m->max_lora}}},
          {"models", std::move(models)},
          {"adapters", std::move(adapters)}});
    }
    pools.push_back(bj::object{{"name", entry.name}, {"endpoints", std::move(eps)}});
  }
  bj::array models;
  for (const auto& m : st->table->models()) {
    bj::array targets;
    const double total = m.cumulative.empty() ? 0 : static_cast<double>(m.cumulative.back());
    for (const auto& tm : m.targets)
      targets.push_back(
          bj::object{{"name", tm.name}, {"weight", tm.weight}, {"share", tm.weight / total}});
    models.push_back(bj::object{{"model", m.fallback ? "*" : m.model_name},
                                {"fallback", m.fallback},
                                {"kind", m.kind},
                                {"inference_model", m.inference_model},
                                {"criticality", api::criticalityName(m.criticality)},
                                {"pool", st->table->pools()[m.pool].name},
                                {"targets", std::move(targets)}});
  }
  bj::array recent;
  for (const auto& p : picks_.recent()) {
    bj::object scores;
    for (std::size_t k = 0; k < 5; ++k) scores[kScorerNames[k]] = p.scores[k];
    recent.push_back(bj::object{{"age_s", t - p.at},
                                {"model", p.model},
                                {"target", p.target},
                                {"pool", p.pool},
                                {"endpoint", p.endpoint},
                                {"winner", p.winner},
                                {"scores", std::move(scores)},
                                {"total", p.total}});
  }
  bj::object out{{"config", st->config->file},
                 {"pools", std::move(pools)},
                 {"models", std::move(models)},
                 {"recent_picks", std::move(recent)}};
  for (const auto& [name, fn] : sections_) out[name] = fn();
  return bj::serialize(out);
}

void AdminApi::collectPools(prom::TextWriter& w) const {
  const auto st = snapshots_.current();
  const PickConfig& pc = st->pick;
  const double t = now();
  w.family("tidegate_pool_ready_endpoints", "gauge", "Endpoints of the pool answering scrapes.");
  std::vector<std::array<double, 4>> agg(st->pool_endpoints.size());
  for (std::size_t p = 0; p < st->pool_endpoints.size(); ++p) {
    double ready = 0, sat = 0, q = 0, kv = 0;
    for (const auto& e : st->pool_endpoints[p]) {
      auto m = e->metrics();
      if (!m->up) continue;
      ++ready;
      sat += isSaturated(*m, pc, t) ? 1 : 0;
      q += m->waiting;
      kv += m->kv;
    }
    agg[p] = {ready, ready > 0 && sat == ready ? 1.0 : 0.0, ready ? q / ready : 0,
              ready ? kv / ready : 0};
    w.sample("tidegate_pool_ready_endpoints", {{"pool", st->table->pools()[p].name}}, ready);
  }
  const char* names[] = {"tidegate_pool_saturated", "tidegate_pool_avg_queue",
                         "tidegate_pool_avg_kv_cache"};
  const char* helps[] = {"1 if every ready endpoint of the pool is saturated.",
                         "Mean waiting requests over the pool's ready endpoints.",
                         "Mean KV-cache use over the pool's ready endpoints (0-1)."};
  for (int k = 0; k < 3; ++k) {
    w.family(names[k], "gauge", helps[k]);
    for (std::size_t p = 0; p < agg.size(); ++p)
      w.sample(names[k], {{"pool", st->table->pools()[p].name}}, agg[p][k + 1]);
  }
  const char* enames[] = {"tidegate_endpoint_queue", "tidegate_endpoint_kv_cache",
                          "tidegate_endpoint_inflight", "tidegate_endpoint_up"};
  const char* ehelps[] = {"Waiting requests at the endpoint (last scrape).",
                          "KV-cache use at the endpoint (last scrape, 0-1).",
                          "This gateway's requests in flight at the endpoint.",
                          "1 if the endpoint answered its last scrape."};
  for (int k = 0; k < 4; ++k) {
    w.family(enames[k], "gauge", ehelps[k]);
    for (std::size_t p = 0; p < st->pool_endpoints.size(); ++p) {
      for (const auto& e : st->pool_endpoints[p]) {
        auto m = e->metrics();
        const double v = k == 0 ? m->waiting : k == 1 ? m->kv : k == 2 ? e->inflight.load() : m->up;
        w.sample(enames[k],
                 {{"pool", st->table->pools()[p].name}, {"endpoint", e->address().str()}}, v);
      }
    }
  }
}

}  // namespace tidegate::gateway

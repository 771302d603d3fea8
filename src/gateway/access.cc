#include "gateway/access.h"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <shared_mutex>
#include <unordered_map>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/duration.h"
#include "common/log.h"
#include "common/url.h"

namespace tidegate::gateway {

namespace asio = boost::asio;
namespace bj = boost::json;
using admission::Decision;
using admission::Refusal;
using http::Status;

// Access's metrics, declared in one place.
struct Access::Stats {
  explicit Stats(prom::Registry& r)
      : auth_failures(r.counter("tidegate_auth_failures_total",
                                "Requests refused for a missing, unknown or expired API key.",
                                {"reason"})),
        refusals(r.counter("tidegate_ratelimit_refusals_total",
                           "Requests refused by a plan's limit or model list.",
                           {"key", "plan", "reason"})),
        requests(r.counter("tidegate_key_requests_total",
                           "Requests by API key, its plan, model and status.",
                           {"key", "plan", "model", "code"})),
        tokens(r.counter("tidegate_key_tokens_total",
                         "Tokens by API key, its plan, model and type.",
                         {"key", "plan", "model", "type"})),
        cost(r.counter("tidegate_key_cost_dollars_total",
                       "Cost in dollars by API key, its plan and model.",
                       {"key", "plan", "model"})),
        backend_errors(r.counter("tidegate_ratelimit_backend_errors_total",
                                 "Calls to the shared rate-limit backend (Redis) that failed.")) {}
  prom::Family<prom::Counter>& auth_failures;
  prom::Family<prom::Counter>& refusals;
  prom::Family<prom::Counter>& requests;
  prom::Family<prom::Counter>& tokens;
  prom::Family<prom::Counter>& cost;
  prom::Family<prom::Counter>& backend_errors;

  // One (key, plan, model label)'s counters, resolved on first use (a status's on its first use),
  // so accounting a request takes a shared lock and one lookup, not a family lookup per counter.
  // The plan is a label so usage can be summed by plan; a key moved to another plan starts new
  // series (the plans are the configuration's, so the label stays bounded).
  struct KeyModel {
    KeyModel(Stats& s, const std::string& key, const std::string& plan, const std::string& model)
        : prompt(s.tokens.with({key, plan, model, "prompt"})),
          completion(s.tokens.with({key, plan, model, "completion"})),
          cost(s.cost.with({key, plan, model})),
          requests(s.requests, {key, plan, model}) {}
    prom::Counter &prompt, &completion, &cost;
    prom::CountersByStatus requests;
  };
  KeyModel& keyModel(const std::string& key, const std::string& plan, const std::string& model) {
    thread_local std::string id;
    id.assign(key).push_back('\0');
    id.append(plan).push_back('\0');
    id.append(model);
    {
      std::shared_lock lock(key_models_mu);
      if (auto it = key_models.find(id); it != key_models.end()) return *it->second;
    }
    std::unique_lock lock(key_models_mu);
    auto& km = key_models[id];
    if (!km) km = std::make_unique<KeyModel>(*this, key, plan, model);
    return *km;
  }
  std::shared_mutex key_models_mu;
  std::unordered_map<std::string, std::unique_ptr<KeyModel>> key_models;

  // The last decision per key, for the remaining-quota gauges.
  std::mutex mu;
  std::unordered_map<std::string, std::pair<double, double>> remaining;  // key -> {req, tok}
};

Access::Access(prom::Registry& metrics)
    : metrics_(metrics), stats_(std::make_unique<Stats>(metrics)) {
  metrics_.addCollector([this](prom::TextWriter& w) {
    w.family("tidegate_ratelimit_remaining", "gauge",
             "What a key may still use now, as its last response's x-ratelimit-remaining-* said.");
    {
      std::lock_guard lock(stats_->mu);
      for (const auto& [key, rem] : stats_->remaining) {
        if (rem.first >= 0)
          w.sample("tidegate_ratelimit_remaining", {{"key", key}, {"kind", "requests"}}, rem.first);
        if (rem.second >= 0)
          w.sample("tidegate_ratelimit_remaining", {{"key", key}, {"kind", "tokens"}}, rem.second);
      }
    }
    if (redis_) {
      const double failed = backend_failed_at_.load();
      w.family("tidegate_ratelimit_backend_up", "gauge",
               "0 if the last call to the shared rate-limit backend failed within 10 s.");
      w.sample("tidegate_ratelimit_backend_up", {},
               failed >= 0 && monotonicSeconds() - failed < 10 ? 0 : 1);
    }
    if (ledger_) {
      w.family("tidegate_ledger_records_total", "counter",
               "Usage records committed to the ledger.");
      w.sample("tidegate_ledger_records_total", {}, static_cast<double>(ledger_->written()));
      w.family("tidegate_ledger_dropped_total", "counter",
               "Usage records dropped because the disk could not keep up.");
      w.sample("tidegate_ledger_dropped_total", {}, static_cast<double>(ledger_->dropped()));
      w.family("tidegate_ledger_pending", "gauge", "Usage records waiting for the next commit.");
      w.sample("tidegate_ledger_pending", {}, static_cast<double>(ledger_->pending()));
      w.family("tidegate_ledger_last_flush_seconds", "gauge", "Duration of the last commit.");
      w.sample("tidegate_ledger_last_flush_seconds", {}, ledger_->lastFlushSeconds());
    }
  });
}

Access::~Access() { stop(); }

void Access::stop() {
  if (ledger_) ledger_->stop();
}

tidegate::Status Access::configure(const std::shared_ptr<const api::Config>& config) {
  const auto& g = config->gateway;
  if (!config_.load() && !g.ledger.path.empty()) {  // the first configuration only
    auto l = Ledger::open(g.ledger.path, g.ledger.flush_interval_s);
    if (!l) return l.error();
    ledger_ = std::move(l).value();
    ledger_path_ = g.ledger.path;
    auto keys = ledger_->loadKeys();
    if (!keys) return keys.error();
    for (auto& k : *keys) keys_.put(std::move(k));
    spdlog::info("ledger at {} ({} API keys created through the admin API)", ledger_path_,
                 keys->size());
  }  // a later change of the path waits for a restart (api/reload.h names it)
  if (!redis_ && g.rate_limit.redis && !config_.load()) {
    redis_config_ = g.rate_limit;
    lease_s_ = g.total_timeout_s;
    redis_ = std::make_unique<admission::RedisLimiter>(
        local_, g.rate_limit.fail_open, lease_s_,
        [this](const std::string& why) { onBackendFailure(why); });
    spdlog::info("rate limits shared through Redis at {} (if it fails: {})",
                 g.rate_limit.redis_address.str(),
                 g.rate_limit.fail_open ? "open, local limits" : "closed, refuse");
  }
  keys_.setStatic(config->keys);
  cost_.configure(g);
  // Seed today's and this month's usage from the ledger, so quotas survive a restart.
  if (ledger_ && !config_.load()) {
    const double now = unixTime();
    const double day_start = static_cast<double>(admission::dayOf(now)) * 86400.0;
    const double month_start = admission::startOfMonth(now);
    for (const auto& k : keys_.list()) {
      auto today = ledger_->keyUsageSince(k->id, day_start);
      auto month = ledger_->keyUsageSince(k->id, month_start);
      if (today && month) local_.seed(k->id, today->first, today->second, month->second, now);
    }
  }
  config_.store(config);
  return tidegate::Status::Ok();
}

std::unique_ptr<admission::Admissions> Access::makeAdmissions(admission::RedisClient* redis) const {
  if (!redis_ || !redis) return nullptr;
  return std::make_unique<admission::Admissions>(*redis_, *redis);
}

std::unique_ptr<admission::Settlements> Access::makeSettlements(
    admission::RedisClient* redis) const {
  if (!redis_ || !redis) return nullptr;
  return std::make_unique<admission::Settlements>(*redis_, *redis);
}

std::unique_ptr<admission::RedisClient> Access::makeRedisClient(asio::any_io_executor ex) const {
  if (!redis_) return nullptr;
  return std::make_unique<admission::RedisClient>(ex, redis_config_.redis_address,
                                                  redis_config_.redis_timeout_s);
}

void Access::onBackendFailure(const std::string& why) {
  stats_->backend_errors.with({}).inc();
  const double now = monotonicSeconds();
  const double before = backend_failed_at_.exchange(now);
  // One log line when failures start (or resume after 10 s without any), not one per request.
  if (before < 0 || now - before > 10)
    spdlog::error("rate-limit backend failed ({}); policy: {}", why,
                  redis_config_.fail_open ? "fail open (each gateway applies its own limits)"
                                          : "fail closed (requests are refused)");
}

std::variant<Principal, Denial> Access::authenticate(
    const std::shared_ptr<const api::Config>& config, std::string_view authorization,
    std::string_view api_key) const {
  Principal who{nullptr, config, nullptr};
  if (!config->keysRequired()) return who;
  const http::Headers challenge{{"WWW-Authenticate", "Bearer"}};
  const auto secret = admission::presentedKey(authorization, api_key);
  auto fail = [&](const char* reason, std::string message, const char* code) {
    stats_->auth_failures.with({reason}).inc();
    return Denial{Status::unauthorized,
                  http::openaiError(message, "invalid_request_error", {}, code), challenge};
  };
  if (secret.empty())
    return fail("missing",
                "You didn't provide an API key. Provide it as 'Authorization: Bearer KEY' or in "
                "an 'api-key' header.",
                "missing_api_key");
  who.key = keys_.find(secret);
  // The key itself is never echoed or logged.
  if (!who.key) return fail("invalid", "Incorrect API key provided.", "invalid_api_key");
  if (who.key->expires && *who.key->expires <= unixTime())
    return fail("expired", "The API key " + who.key->id + " expired.", "expired_api_key");
  who.plan = config->plan(who.key->plan);
  if (!who.plan)
    return Denial{Status::forbidden,
                  http::openaiError("The plan '" + who.key->plan + "' of API key " + who.key->id +
                                        " does not exist.",
                                    "permission_error", {}, "plan_not_found")};
  return who;
}

bool Access::allows(const Principal& who, std::string_view model) {
  if (!who.plan || who.plan->models.empty()) return true;
  for (const auto& m : who.plan->models)
    if (api::globMatches(m, model)) return true;
  return false;
}

std::optional<Denial> Access::authorize(const Principal& who, const std::string& model) const {
  if (allows(who, model)) return std::nullopt;
  stats_->refusals.with({who.key->id, who.plan->meta.name, "model_not_allowed"}).inc();
  return Denial{Status::forbidden,
                http::openaiError("The plan '" + who.plan->meta.name +
                                      "' does not allow the model '" + model + "'.",
                                  "permission_error", "model", "model_not_allowed")};
}

api::Criticality Access::criticality(const Principal& who, api::Criticality model) {
  if (!who.plan || !who.plan->priority) return model;
  return std::max(model, *who.plan->priority);  // larger = more sheddable
}

namespace {

http::Headers rateHeaders(const Decision& d) {
  http::Headers h;
  auto add = [&](const char* kind, double limit, double remaining, double reset) {
    if (limit < 0) return;
    h.emplace_back(std::string("x-ratelimit-limit-") + kind, std::to_string(std::llround(limit)));
    h.emplace_back(std::string("x-ratelimit-remaining-") + kind,
                   std::to_string(std::llround(std::floor(remaining))));
    h.emplace_back(std::string("x-ratelimit-reset-") + kind, formatDuration(reset));
  };
  add("requests", d.limit_requests, d.remaining_requests, d.reset_requests_s);
  add("tokens", d.limit_tokens, d.remaining_tokens, d.reset_tokens_s);
  return h;
}

std::string refusalMessage(const Decision& d, const api::UsagePlan& plan) {
  const auto wait = formatDuration(d.retry_after_s);
  switch (d.refusal) {
    case Refusal::kRequestsPerMinute:
      return "Rate limit reached on requests per minute (RPM): limit " +
             std::to_string(std::llround(plan.requests_per_minute)) + ". Please try again in " +
             wait + ".";
    case Refusal::kTokensPerMinute:
      return "Rate limit reached on tokens per minute (TPM): limit " +
             std::to_string(std::llround(plan.tokens_per_minute)) +
             " (a request reserves its prompt and max_tokens). Please try again in " + wait + ".";
    case Refusal::kRequestsPerDay:
      return "Daily request quota of the plan '" + plan.meta.name + "' is used up (" +
             std::to_string(std::llround(plan.requests_per_day)) + "); it resets at 00:00 UTC.";
    case Refusal::kTokensPerDay:
      return "Daily token quota of the plan '" + plan.meta.name + "' is used up (" +
             std::to_string(std::llround(plan.tokens_per_day)) + "); it resets at 00:00 UTC.";
    case Refusal::kTokensPerMonth:
      return "Monthly token quota of the plan '" + plan.meta.name + "' is used up (" +
             std::to_string(std::llround(plan.tokens_per_month)) +
             "); it resets on the 1st at 00:00 UTC.";
    case Refusal::kConcurrency:
      return "Too many concurrent requests: the plan '" + plan.meta.name + "' allows " +
             std::to_string(plan.max_concurrent) + ".";
    default:
      return "The rate-limit backend is unavailable.";
  }
}

}  // namespace

asio::awaitable<std::variant<Grant, Denial>> Access::admit(admission::Admissions* admissions,
                                                           const Principal& who, double tokens,
                                                           std::string request_id) {
  Grant g;
  if (!who.plan) co_return g;
  const double mono = monotonicSeconds(), unix_s = unixTime();
  Decision d;
  if (redis_ && admissions) {
    d = co_await admissions->admit(who.key->id, *who.plan, tokens, request_id, mono, unix_s);
  } else {
    d = local_.admit(who.key->id, *who.plan, tokens, mono, unix_s);
  }
  auto headers = rateHeaders(d);
  {
    std::lock_guard lock(stats_->mu);
    stats_->remaining[who.key->id] = {d.limit_requests < 0 ? -1 : d.remaining_requests,
                                      d.limit_tokens < 0 ? -1 : d.remaining_tokens};
  }
  if (!d.allowed()) {
    stats_->refusals.with({who.key->id, who.plan->meta.name, admission::refusalName(d.refusal)})
        .inc();
    const long after = std::max(1L, static_cast<long>(std::ceil(d.retry_after_s)));
    headers.emplace_back("Retry-After", std::to_string(after));
    headers.emplace_back("retry-after-ms",
                         std::to_string(std::llround(std::ceil(d.retry_after_s * 1000))));
    const bool quota = d.refusal == Refusal::kRequestsPerDay ||
                       d.refusal == Refusal::kTokensPerDay || d.refusal == Refusal::kTokensPerMonth;
    if (d.refusal == Refusal::kBackend)
      co_return Denial{Status::service_unavailable,
                       http::openaiError(refusalMessage(d, *who.plan), "service_unavailable", {},
                                         "rate_limit_backend_unavailable"),
                       std::move(headers)};
    const char* type = quota                                    ? "insufficient_quota"
                       : d.refusal == Refusal::kTokensPerMinute ? "tokens"
                                                                : "requests";
    co_return Denial{Status::too_many_requests,
                     http::openaiError(refusalMessage(d, *who.plan), type, {},
                                       quota ? "insufficient_quota" : "rate_limit_exceeded"),
                     std::move(headers)};
  }
  g.limited = true;
  g.reserved_tokens = tokens;
  g.degraded = d.degraded;
  g.request_id = std::move(request_id);
  g.headers = std::move(headers);
  co_return g;
}

void Access::finish(admission::Settlements* settlements, const Principal& who, const Grant& grant,
                    UsageRecord r, const std::string& model_label) {
  if (grant.limited) {
    const double actual = static_cast<double>(r.prompt_tokens + r.completion_tokens);
    const double mono = monotonicSeconds(), unix_s = unixTime();
    if (redis_ && settlements) {
      settlements->add(who.key->id, *who.plan, grant.reserved_tokens, actual, grant.request_id,
                       grant.degraded, mono, unix_s);
    } else {
      local_.finish(who.key->id, *who.plan, grant.reserved_tokens, actual, mono, unix_s);
    }
  }
  r.cost = cost_.charge(r.model, r.target_model, r.pool, r.prompt_tokens, r.completion_tokens,
                        monotonicSeconds());
  account(who, r, model_label);
}

void Access::record(const Principal& who, UsageRecord r, const std::string& model_label) {
  account(who, r, model_label);
}

void Access::account(const Principal& who, UsageRecord& r, const std::string& model_label) {
  if (who.key) {
    r.key_id = who.key->id;
    r.key_name = who.key->name;
  }
  if (who.plan) r.plan = who.plan->meta.name;
  if (r.time == 0) r.time = unixTime();
  static const std::string anonymous = "anonymous";
  const std::string& key = r.key_id.empty() ? anonymous : r.key_id;
  auto& km = stats_->keyModel(key, r.plan, model_label);
  km.requests.at(r.status).inc();
  if (r.prompt_tokens > 0) km.prompt.inc(static_cast<double>(r.prompt_tokens));
  if (r.completion_tokens > 0) km.completion.inc(static_cast<double>(r.completion_tokens));
  if (r.cost > 0) km.cost.inc(r.cost);
  if (ledger_) ledger_->append(std::move(r));
}

// --- Admin API -----------------------------------------------------------------------------

namespace {

bj::object keyJson(const admission::KeyRecord& k) {
  bj::object o{{"id", k.id},
               {"name", k.name},
               {"plan", k.plan},
               {"source", k.dynamic ? "api" : "config"},
               {"created", k.created > 0 ? bj::value(formatTimestamp(k.created)) : nullptr},
               {"expires", k.expires ? bj::value(formatTimestamp(*k.expires)) : nullptr}};
  return o;
}

// "2027-01-01T00:00:00Z" or unix seconds.
std::optional<double> timeParam(const std::string& v) {
  if (v.empty()) return std::nullopt;
  char* end = nullptr;
  const double n = std::strtod(v.c_str(), &end);
  if (end && *end == '\0') return n;
  auto t = parseTimestamp(v);
  if (!t) return std::nullopt;
  return *t;
}

}  // namespace

namespace {

AuditEntry auditEntry(const Access::Actor& a, std::string action, std::string subject,
                      std::string detail) {
  return {unixTime(),         a.name,           a.remote, a.token, std::move(action),
          std::move(subject), std::move(detail)};
}

}  // namespace

void Access::audit(const Actor& actor, const std::string& action, const std::string& subject,
                   const std::string& detail) {
  if (!ledger_) return;
  if (auto s = ledger_->appendAudit(auditEntry(actor, action, subject, detail)); !s)
    spdlog::error("audit trail: {}", s.message());
}

std::string Access::handleCreateKey(const std::string& body, const Actor& actor, Status& status) {
  boost::system::error_code ec;
  const auto v = bj::parse(body, ec);
  status = Status::bad_request;
  if (ec || !v.is_object())
    return http::openaiError("expected a JSON object {name, plan[, expiresAt]}",
                             "invalid_request_error");
  const auto& o = v.get_object();
  const auto* plan = o.if_contains("plan");
  if (!plan || !plan->is_string())
    return http::openaiError("plan: required string", "invalid_request_error", "plan");
  admission::KeyRecord k;
  k.plan = plan->get_string();
  if (!config_.load()->plan(k.plan))
    return http::openaiError("plan: no UsagePlan named '" + k.plan + "'", "invalid_request_error",
                             "plan");
  k.id = "key_" + crypto::randomHex(8);
  k.name = k.id;
  if (const auto* n = o.if_contains("name")) {
    if (!n->is_string())
      return http::openaiError("name: expected a string", "invalid_request_error", "name");
    k.name = n->get_string();
  }
  if (const auto* e = o.if_contains("expiresAt"); e && !e->is_null()) {
    if (!e->is_string())
      return http::openaiError("expiresAt: expected an RFC 3339 time", "invalid_request_error",
                               "expiresAt");
    auto t = parseTimestamp(e->get_string());
    if (!t) return http::openaiError(t.error().message, "invalid_request_error", "expiresAt");
    k.expires = *t;
  }
  const std::string secret = "sk-tg-" + crypto::randomHex(24);
  k.digest = crypto::sha256(secret);
  k.created = unixTime();
  k.dynamic = true;
  if (ledger_) {
    const auto why = auditEntry(actor, "key.create", k.id, "plan " + k.plan + ", name " + k.name);
    if (auto s = ledger_->saveKey(k, why); !s) {
      status = Status::internal_server_error;
      return http::openaiError(s.message(), "server_error");
    }
  }
  keys_.put(k);
  spdlog::info("admin: {} from {} created API key {} ({}) on plan {}", actor.name, actor.remote,
               k.id, k.name, k.plan);
  auto out = keyJson(k);
  out["key"] = secret;  // shown once, never again
  out["persisted"] = ledger_ != nullptr;
  status = Status::created;
  return bj::serialize(out);
}

std::string Access::handleListKeys() {
  bj::array data;
  const double now = unixTime();
  for (const auto& k : keys_.list()) {
    auto o = keyJson(*k);
    o["expired"] = k->expires && *k->expires <= now;
    data.push_back(std::move(o));
  }
  return bj::serialize(bj::object{{"object", "list"}, {"data", std::move(data)}});
}

std::string Access::handleUsage(std::string_view query, Status& status) {
  status = Status::bad_request;
  if (!ledger_)
    return http::openaiError("no ledger is configured (Gateway spec.ledger.path)",
                             "invalid_request_error");
  const auto from_s = queryParam(query, "from"), to_s = queryParam(query, "to");
  auto group = queryParam(query, "group_by");
  if (group.empty()) group = "key";
  const auto from = from_s.empty() ? std::optional<double>(0) : timeParam(from_s);
  const auto to = to_s.empty() ? std::optional<double>(unixTime() + 1) : timeParam(to_s);
  if (!from || !to)
    return http::openaiError("from and to: RFC 3339 times or unix seconds", "invalid_request_error",
                             from ? "to" : "from");
  auto rows = ledger_->totals(*from, *to, group);
  if (!rows) return http::openaiError(rows.error().message, "invalid_request_error", "group_by");
  bj::array data;
  UsageTotals all;
  auto json = [](const UsageTotals& t) {
    return bj::object{{"requests", t.requests},
                      {"errors", t.errors},
                      {"prompt_tokens", t.prompt_tokens},
                      {"completion_tokens", t.completion_tokens},
                      {"total_tokens", t.prompt_tokens + t.completion_tokens},
                      {"cost", t.cost},
                      {"cost_per_million_tokens", t.costPerMillionTokens()}};
  };
  for (const auto& t : *rows) {
    auto o = json(t);
    o["group"] = t.group;
    data.push_back(std::move(o));
    all.requests += t.requests;
    all.errors += t.errors;
    all.prompt_tokens += t.prompt_tokens;
    all.completion_tokens += t.completion_tokens;
    all.cost += t.cost;
  }
  status = Status::ok;
  return bj::serialize(bj::object{{"from", formatTimestamp(*from)},
                                  {"to", formatTimestamp(*to)},
                                  {"group_by", group},
                                  {"data", std::move(data)},
                                  {"total", json(all)}});
}

std::string Access::handleAudit(std::string_view query, Status& status) {
  status = Status::bad_request;
  if (!ledger_)
    return http::openaiError("no ledger is configured (Gateway spec.ledger.path)",
                             "invalid_request_error");
  const auto since_s = queryParam(query, "since"), limit_s = queryParam(query, "limit");
  const auto since = since_s.empty() ? std::optional<double>(0) : timeParam(since_s);
  if (!since)
    return http::openaiError("since: an RFC 3339 time or unix seconds", "invalid_request_error",
                             "since");
  long limit = 100;
  if (!limit_s.empty()) {
    const auto [p, ec] = std::from_chars(limit_s.data(), limit_s.data() + limit_s.size(), limit);
    if (ec != std::errc() || p != limit_s.data() + limit_s.size() || limit < 1 || limit > 10000)
      return http::openaiError("limit: an integer from 1 to 10000", "invalid_request_error",
                               "limit");
  }
  auto rows = ledger_->audit(*since, static_cast<std::size_t>(limit));
  if (!rows) {
    status = Status::internal_server_error;
    return http::openaiError(rows.error().message, "server_error");
  }
  bj::array data;
  for (const auto& e : *rows)
    data.push_back(bj::object{{"time", formatTimestamp(e.time)},
                              {"actor", e.actor},
                              {"remote", e.remote},
                              {"token", e.token},
                              {"action", e.action},
                              {"subject", e.subject},
                              {"detail", e.detail}});
  status = Status::ok;
  return bj::serialize(bj::object{{"object", "list"}, {"data", std::move(data)}});
}

asio::awaitable<bool> Access::handleAdmin(http::Exchange& ex, const std::string& path,
                                          const Actor& actor) {
  using V = boost::beast::http::verb;
  const auto method = ex.request().method();
  std::string_view target = ex.request().target();
  const auto q = target.find('?');
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  Status status = Status::ok;
  std::string body;
  if (path == "/admin/usage" || path == "/admin/audit") {
    if (method != V::get) {
      status = Status::method_not_allowed;
      body = http::openaiError("use GET", "invalid_request_error");
    } else {
      body = path == "/admin/usage" ? handleUsage(query, status) : handleAudit(query, status);
    }
  } else if (path == "/admin/keys") {
    if (method == V::post) {
      body = handleCreateKey(ex.request().body(), actor, status);
    } else if (method == V::get) {
      body = handleListKeys();
    } else {
      status = Status::method_not_allowed;
      body = http::openaiError("use GET or POST", "invalid_request_error");
    }
  } else if (path.starts_with("/admin/keys/")) {
    const std::string id = path.substr(std::string_view("/admin/keys/").size());
    const auto key = keys_.byId(id);
    if (!key) {
      status = Status::not_found;
      body = http::openaiError("no API key " + id, "not_found_error");
    } else if (method == V::get) {
      body = bj::serialize(keyJson(*key));
    } else if (!key->dynamic && (method == V::delete_ || method == V::patch)) {
      status = Status::conflict;
      body = http::openaiError(
          "API key " + id + " is defined in the configuration: change it there and reload",
          "invalid_request_error");
    } else if (method == V::delete_) {
      if (ledger_) {
        if (auto s =
                ledger_->deleteKey(id, auditEntry(actor, "key.revoke", id, "plan " + key->plan));
            !s) {
          status = Status::internal_server_error;
          body = http::openaiError(s.message(), "server_error");
        }
      }
      if (status == Status::ok) {
        keys_.remove(id);  // refused by every worker from their next request on
        spdlog::info("admin: {} from {} revoked API key {}", actor.name, actor.remote, id);
        body = bj::serialize(bj::object{{"id", id}, {"deleted", true}});
      }
    } else if (method == V::patch) {
      boost::system::error_code ec;
      const auto v = bj::parse(ex.request().body(), ec);
      const auto* plan = !ec && v.is_object() ? v.get_object().if_contains("plan") : nullptr;
      if (!plan || !plan->is_string() || !config_.load()->plan(std::string(plan->get_string()))) {
        status = Status::bad_request;
        body = http::openaiError("expected {\"plan\": NAME} naming a UsagePlan",
                                 "invalid_request_error", "plan");
      } else {
        auto k = *key;
        k.plan = plan->get_string();
        tidegate::Status st = tidegate::Status::Ok();
        if (ledger_)
          st = ledger_->saveKey(k, auditEntry(actor, "key.plan", id, key->plan + " -> " + k.plan));
        if (!st) {
          status = Status::internal_server_error;
          body = http::openaiError(st.message(), "server_error");
        } else {
          keys_.put(k);
          spdlog::info("admin: {} from {} moved API key {} to plan {}", actor.name, actor.remote,
                       id, k.plan);
          body = bj::serialize(keyJson(k));
        }
      }
    } else {
      status = Status::method_not_allowed;
      body = http::openaiError("use GET, PATCH or DELETE", "invalid_request_error");
    }
  } else {
    co_return false;
  }
  co_await ex.respond(status, std::move(body));
  co_return true;
}

}  // namespace tidegate::gateway

#include "api/reload.h"

#include <fmt/format.h>

namespace tidegate::api {

namespace {

// More than half of `before` gone (1 -> 0 counts: a lone key or plan is all of them).
bool mostlyDropped(std::size_t before, std::size_t after) {
  return after < before && (before - after) * 2 > before;
}

std::string seconds(double s) { return fmt::format("{:g}s", s); }

std::string count(const char* what, std::size_t before, std::size_t after) {
  std::string s = std::string(what) + " " + std::to_string(before);
  if (after != before) s += " -> " + std::to_string(after);
  return s;
}

}  // namespace

std::vector<RestartSetting> restartSettings(const Config& started, const Config& next) {
  const auto& a = started.gateway;
  const auto& b = next.gateway;
  std::vector<RestartSetting> out;
  auto check = [&](const char* field, const std::string& was, const std::string& now) {
    if (was != now) out.push_back({field, was, now});
  };
  check("spec.listen", a.listen.str(), b.listen.str());
  check("spec.admin", a.admin.str(), b.admin.str());
  check("spec.workers", std::to_string(a.workers), std::to_string(b.workers));
  check("spec.seed", std::to_string(a.seed), std::to_string(b.seed));
  check("spec.limits.maxConnections", std::to_string(a.max_connections),
        std::to_string(b.max_connections));
  check("spec.limits.maxBodyBytes", std::to_string(a.max_body_bytes),
        std::to_string(b.max_body_bytes));
  check("spec.limits.maxHeaderBytes", std::to_string(a.max_header_bytes),
        std::to_string(b.max_header_bytes));
  // The client side of the idle timeout (request reads, response writes) is set per connection
  // at start-up; the upstream side follows reloads.
  check("spec.timeouts.idle (client connections)", seconds(a.idle_timeout_s),
        seconds(b.idle_timeout_s));
  check("spec.ledger.path", a.ledger.path, b.ledger.path);
  check("spec.rateLimit.backend", a.rate_limit.redis ? "redis" : "local",
        b.rate_limit.redis ? "redis" : "local");
  check("spec.tls", a.tls.enabled ? "on" : "off", b.tls.enabled ? "on" : "off");
  if (a.tls.enabled && b.tls.enabled) {
    check("spec.tls.admin", a.tls.admin ? "true" : "false", b.tls.admin ? "true" : "false");
    check("spec.tls.handshakeTimeout", seconds(a.tls.handshake_timeout_s),
          seconds(b.tls.handshake_timeout_s));
  }
  if (a.rate_limit.redis && b.rate_limit.redis)
    check("spec.rateLimit.redis.address", a.rate_limit.redis_address.str(),
          b.rate_limit.redis_address.str());
  return out;
}

ReloadReview reviewReload(const Config& started, const Config& running, const Config& next) {
  ReloadReview r;
  const auto& was = running.gateway;
  const auto& now = next.gateway;
  if (was.auth_mode != now.auth_mode && !now.auth_mode_explicit)
    r.refusals.push_back(std::string("spec.auth.apiKeys would change from ") +
                         authModeName(was.auth_mode) + " to " + authModeName(now.auth_mode) +
                         " without the file saying so: state spec.auth.apiKeys: " +
                         authModeName(now.auth_mode) + " to mean it");
  if (!now.allow_key_removal) {
    auto guard = [&](const char* what, std::size_t before, std::size_t after) {
      if (mostlyDropped(before, after))
        r.refusals.push_back(std::string("the file drops ") + std::to_string(before - after) +
                             " of " + std::to_string(before) + " " + what +
                             " (more than half): set spec.auth.allowKeyRemoval: true to mean it");
    };
    guard("APIKeys", running.keys.size(), next.keys.size());
    guard("UsagePlans", running.plans.size(), next.plans.size());
  }
  // Mutual TLS may be what authenticates clients: a reload cannot stop asking for certificates.
  if (was.tls.enabled && !was.tls.client_ca_file.empty() && now.tls.client_ca_file.empty())
    r.refusals.push_back(
        "spec.tls.clientCAFile would be removed, and clients no longer asked for certificates: "
        "turning mutual TLS off takes a restart");
  r.restart_needed = restartSettings(started, next);
  r.changes = std::string("auth ") + authModeName(now.auth_mode) + ", " +
              count("keys", running.keys.size(), next.keys.size()) + ", " +
              count("plans", running.plans.size(), next.plans.size()) + ", " +
              count("pools", running.pools.size(), next.pools.size()) + ", " +
              count("models", running.models.size(), next.models.size()) + ", " +
              count("routes", running.routes.size(), next.routes.size());
  return r;
}

}  // namespace tidegate::api

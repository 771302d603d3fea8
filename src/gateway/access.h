#pragma once
// Access: who may call the gateway, how much, and what it cost. Owns the key store, the
// limiters (local, or Redis-backed per worker), the usage ledger and the cost model, and serves
// the admin API's /admin/keys, /admin/usage and /admin/audit. Whether keys are required is the
// Gateway's auth mode (spec.auth.apiKeys), read from the request's snapshot: when required, a
// request without a valid key is refused even if no key exists at all. When disabled every
// request passes (and is still recorded in the ledger when one is configured).
//
// Threads: authenticate/authorize/admit/finish run on the workers (admit/finish through the
// worker's own Admissions and Settlements batches on its RedisClient); configure() on reload;
// the admin handlers on the control thread.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "api/resources.h"
#include "common/http_server.h"
#include "common/prometheus.h"
#include "gateway/admission/keys.h"
#include "gateway/admission/rate_limiter.h"
#include "gateway/admission/redis.h"
#include "gateway/admission/redis_limiter.h"
#include "gateway/ledger/cost.h"
#include "gateway/ledger/ledger.h"

namespace tidegate::gateway {

// A refused request: what to answer.
struct Denial {
  http::Status status;
  std::string body;  // OpenAI error format
  http::Headers headers;
};

// An authenticated caller (key and plan null when auth is off).
struct Principal {
  std::shared_ptr<const admission::KeyRecord> key;
  std::shared_ptr<const api::Config> config;  // keeps `plan` alive
  const api::UsagePlan* plan = nullptr;
};

// An admitted request's reservation, settled by finish().
struct Grant {
  bool limited = false;  // a plan's limits apply (finish must settle)
  double reserved_tokens = 0;
  bool degraded = false;
  std::string request_id;
  http::Headers headers;  // x-ratelimit-* for the response
};

class Access {
 public:
  explicit Access(prom::Registry& metrics);
  ~Access();

  // Applies a configuration: keys, plans, prices. The ledger and the rate-limit backend are
  // set up by the first call; later changes to them are logged and wait for a restart.
  tidegate::Status configure(const std::shared_ptr<const api::Config>& config);
  // Commits the ledger (clean shutdown).
  void stop();

  bool redisBackend() const { return redis_ != nullptr; }
  // A worker's Redis connection (one per worker); null for the local backend.
  std::unique_ptr<admission::RedisClient> makeRedisClient(boost::asio::any_io_executor ex) const;
  // A worker's batches of admissions and of settlements on its Redis connection; null for the
  // local backend.
  std::unique_ptr<admission::Admissions> makeAdmissions(admission::RedisClient* redis) const;
  std::unique_ptr<admission::Settlements> makeSettlements(admission::RedisClient* redis) const;

  // 401 unless a valid, unexpired key is presented (when `config` requires keys).
  std::variant<Principal, Denial> authenticate(const std::shared_ptr<const api::Config>& config,
                                               std::string_view authorization,
                                               std::string_view api_key) const;
  // 403 when the plan does not allow `model`.
  std::optional<Denial> authorize(const Principal& who, const std::string& model) const;
  // True when the plan allows `model` (every model when keys are not required).
  static bool allows(const Principal& who, std::string_view model);
  // The plan's criticality for the picker (the less critical of the two).
  static api::Criticality criticality(const Principal& who, api::Criticality model);
  // 429 (503 when the shared backend fails closed) or a Grant carrying the x-ratelimit headers.
  // `admissions`: the worker's batch (Redis backend), else null.
  boost::asio::awaitable<std::variant<Grant, Denial>> admit(admission::Admissions* admissions,
                                                            const Principal& who, double tokens,
                                                            std::string request_id);
  // Settles the grant with the tokens actually used, prices the request and records it (ledger,
  // per-key metrics). `r` is filled in by the caller except for cost and key fields.
  // `model_label`: the requested model as a metric label (bounded: see GatewayStats::kOther).
  // `settlements`: the worker's batch (Redis backend), else null.
  void finish(admission::Settlements* settlements, const Principal& who, const Grant& grant,
              UsageRecord r, const std::string& model_label);
  // Records a request refused before admission (401/403/404/429...).
  void record(const Principal& who, UsageRecord r, const std::string& model_label);

  CostModel& cost() { return cost_; }

  // Who made an admin API change, for the audit trail.
  struct Actor {
    std::string name;    // X-Tidegate-Actor, when the caller names itself; else "admin"
    std::string remote;  // the caller's address
    std::string token;   // the first hex digits of the admin token's SHA-256 (which token)
  };
  // Admin API (control thread). Returns false if `path` is not one of Access's. Changes (keys
  // created, moved, revoked) are recorded in the ledger's audit table.
  boost::asio::awaitable<bool> handleAdmin(http::Exchange& ex, const std::string& path,
                                           const Actor& actor);
  // Records an event in the audit trail (with a ledger; else only the log has it).
  void audit(const Actor& actor, const std::string& action, const std::string& subject,
             const std::string& detail);

 private:
  void onBackendFailure(const std::string& why);
  void account(const Principal& who, UsageRecord& r, const std::string& model_label);
  std::string handleCreateKey(const std::string& body, const Actor& actor, http::Status& status);
  std::string handleListKeys();
  std::string handleUsage(std::string_view query, http::Status& status);
  std::string handleAudit(std::string_view query, http::Status& status);

  prom::Registry& metrics_;
  // The configuration last applied: set by configure() (reloads), read by the admin API.
  std::atomic<std::shared_ptr<const api::Config>> config_;
  admission::KeyStore keys_;
  admission::LocalLimiter local_;
  std::unique_ptr<admission::RedisLimiter> redis_;
  api::GatewayConfig::RateLimit redis_config_;
  double lease_s_ = 600;
  std::unique_ptr<Ledger> ledger_;
  std::string ledger_path_;
  CostModel cost_;
  std::atomic<double> backend_failed_at_{-1};
  std::atomic<long> backend_failures_logged_{0};

  struct Stats;
  std::unique_ptr<Stats> stats_;
};

}  // namespace tidegate::gateway

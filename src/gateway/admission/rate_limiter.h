#pragma once
// The limits of a UsagePlan applied to one key, in process (LocalLimiter) or shared between
// gateways through Redis (admission/redis_limiter.h, the same rules in a Lua script).
//
// Per key: requests and tokens per minute are GCRA limits (limiter.h: burst = the limit);
// requests and tokens per day and tokens per month are fixed UTC calendar windows (what a user
// means by "per day": it resets at midnight UTC); concurrent requests are a counter. A request is
// admitted only if every limit admits it, and then every limit is charged at once (all or
// nothing). Tokens are reserved at admission (an estimate) and settled with the real usage.
// Thread-safe (sharded mutexes); time is an argument.

#include <array>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "api/resources.h"
#include "gateway/admission/limiter.h"

namespace tidegate::gateway::admission {

// Why a request was refused; kNone when admitted.
enum class Refusal {
  kNone,
  kRequestsPerMinute,
  kTokensPerMinute,
  kRequestsPerDay,
  kTokensPerDay,
  kTokensPerMonth,
  kConcurrency,
  kBackend,  // the shared backend is unreachable and the policy is fail-closed
};
const char* refusalName(Refusal r);

struct Decision {
  Refusal refusal = Refusal::kNone;
  bool allowed() const { return refusal == Refusal::kNone; }
  double retry_after_s = 0;  // when refused
  // OpenAI's x-ratelimit-* headers: the per-minute limits (or, without one, the daily request /
  // token quota); limit < 0 when the plan has neither.
  double limit_requests = -1, remaining_requests = 0, reset_requests_s = 0;
  double limit_tokens = -1, remaining_tokens = 0, reset_tokens_s = 0;
  bool degraded = false;  // decided by the local fallback because the shared backend failed
};

// Calendar windows, as integers (UTC): days since the epoch, months since year 0.
long dayOf(double unix_s);
long monthOf(double unix_s);
double secondsToNextDay(double unix_s);
double secondsToNextMonth(double unix_s);
double startOfMonth(double unix_s);  // 00:00 UTC on the 1st

// Fills the x-ratelimit-* fields of `d` from the key's state after the decision: the per-minute
// limits' verdicts and the day's usage. Shared by the local and the Redis limiter.
void fillHeaders(Decision& d, const api::UsagePlan& plan, const Verdict& requests_per_minute,
                 const Verdict& tokens_per_minute, double day_requests, double day_tokens,
                 double unix_s);

// What a key has used (for remaining-quota gauges). Values are "remaining" (may be infinite).
struct Remaining {
  double requests_per_minute, tokens_per_minute, requests_per_day, tokens_per_day, tokens_per_month;
  int concurrent;
};

class LocalLimiter {
 public:
  // Admits one request of `tokens` estimated tokens for `key` on `plan`. `mono` drives the GCRA
  // limits, `unix_s` the calendar windows.
  Decision admit(std::string_view key, const api::UsagePlan& plan, double tokens, double mono,
                 double unix_s);
  // The request admitted with `reserved` tokens used `actual`: moves the token limits by the
  // difference and releases its concurrency slot.
  void finish(std::string_view key, const api::UsagePlan& plan, double reserved, double actual,
              double mono, double unix_s);
  // Seeds the calendar windows (e.g. from the ledger at start-up, so quotas survive a restart).
  void seed(std::string_view key, double requests_today, double tokens_today,
            double tokens_this_month, double unix_s);
  Remaining remaining(std::string_view key, const api::UsagePlan& plan, double mono, double unix_s);

 private:
  struct State {
    double tat_requests = 0, tat_tokens = 0;
    long day = -1, month = -1;
    double day_requests = 0, day_tokens = 0, month_tokens = 0;
    int concurrent = 0;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, State> keys;
  };
  Shard& shard(std::string_view key);
  static void roll(State& s, double unix_s);
  std::array<Shard, 16> shards_;
};

}  // namespace tidegate::gateway::admission

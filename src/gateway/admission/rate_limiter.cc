#include "gateway/admission/rate_limiter.h"

#include <cmath>
#include <ctime>
#include <functional>

#include "gateway/admission/limiter.h"

namespace tidegate::gateway::admission {

const char* refusalName(Refusal r) {
  switch (r) {
    case Refusal::kNone:
      return "none";
    case Refusal::kRequestsPerMinute:
      return "requests_per_minute";
    case Refusal::kTokensPerMinute:
      return "tokens_per_minute";
    case Refusal::kRequestsPerDay:
      return "requests_per_day";
    case Refusal::kTokensPerDay:
      return "tokens_per_day";
    case Refusal::kTokensPerMonth:
      return "tokens_per_month";
    case Refusal::kConcurrency:
      return "max_concurrent_requests";
    case Refusal::kBackend:
      return "rate_limit_backend";
  }
  return "none";
}

long dayOf(double unix_s) { return static_cast<long>(std::floor(unix_s / 86400)); }

long monthOf(double unix_s) {
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return (tm.tm_year + 1900L) * 12 + tm.tm_mon;
}

double secondsToNextDay(double unix_s) { return (dayOf(unix_s) + 1) * 86400.0 - unix_s; }

namespace {
// Unix seconds at 00:00 UTC on the 1st of month `m` (months since year 0).
double monthBegins(long m) {
  std::tm tm{};
  tm.tm_year = static_cast<int>(m / 12 - 1900);
  tm.tm_mon = static_cast<int>(m % 12);
  tm.tm_mday = 1;
  return static_cast<double>(timegm(&tm));
}
}  // namespace

double startOfMonth(double unix_s) { return monthBegins(monthOf(unix_s)); }
double secondsToNextMonth(double unix_s) { return monthBegins(monthOf(unix_s) + 1) - unix_s; }

LocalLimiter::Shard& LocalLimiter::shard(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

void LocalLimiter::roll(State& s, double unix_s) {
  if (const long d = dayOf(unix_s); d != s.day) {
    s.day = d;
    s.day_requests = s.day_tokens = 0;
  }
  if (const long m = monthOf(unix_s); m != s.month) {
    s.month = m;
    s.month_tokens = 0;
  }
}

namespace {
Limit perMinute(double limit) { return {.limit = limit, .period_s = 60}; }
}  // namespace

void fillHeaders(Decision& d, const api::UsagePlan& plan, const Verdict& requests_per_minute,
                 const Verdict& tokens_per_minute, double day_requests, double day_tokens,
                 double unix_s) {
  // One kind of header: the per-minute limit if the plan has one, else the daily quota.
  auto fill = [&](double per_minute, const Verdict& v, double per_day, double used_today,
                  double& limit, double& remaining, double& reset) {
    if (per_minute > 0) {
      limit = per_minute;
      remaining = v.remaining;
      reset = v.reset_s;
    } else if (per_day > 0) {
      limit = per_day;
      remaining = std::max(0.0, per_day - used_today);
      reset = secondsToNextDay(unix_s);
    }
  };
  fill(plan.requests_per_minute, requests_per_minute, plan.requests_per_day, day_requests,
       d.limit_requests, d.remaining_requests, d.reset_requests_s);
  fill(plan.tokens_per_minute, tokens_per_minute, plan.tokens_per_day, day_tokens, d.limit_tokens,
       d.remaining_tokens, d.reset_tokens_s);
}

Decision LocalLimiter::admit(std::string_view key, const api::UsagePlan& plan, double tokens,
                             double mono, double unix_s) {
  auto& sh = shard(key);
  std::lock_guard lock(sh.mu);
  auto& s = sh.keys[std::string(key)];
  roll(s, unix_s);
  Decision d;
  // Try every limit on copies; commit only if all admit.
  double tat_r = s.tat_requests, tat_t = s.tat_tokens;
  const Verdict vr = take(perMinute(plan.requests_per_minute), tat_r, 1, mono);
  const Verdict vt = take(perMinute(plan.tokens_per_minute), tat_t, tokens, mono);
  auto refuse = [&](Refusal r, double after) {
    if (d.allowed()) d.refusal = r;
    d.retry_after_s = std::max(d.retry_after_s, after);
  };
  if (!vr.allowed) refuse(Refusal::kRequestsPerMinute, vr.retry_after_s);
  if (!vt.allowed) refuse(Refusal::kTokensPerMinute, vt.retry_after_s);
  if (plan.requests_per_day > 0 && s.day_requests + 1 > plan.requests_per_day)
    refuse(Refusal::kRequestsPerDay, secondsToNextDay(unix_s));
  if (plan.tokens_per_day > 0 && s.day_tokens + tokens > plan.tokens_per_day)
    refuse(Refusal::kTokensPerDay, secondsToNextDay(unix_s));
  if (plan.tokens_per_month > 0 && s.month_tokens + tokens > plan.tokens_per_month)
    refuse(Refusal::kTokensPerMonth, secondsToNextMonth(unix_s));
  if (plan.max_concurrent > 0 && s.concurrent >= plan.max_concurrent)
    refuse(Refusal::kConcurrency, 1);
  if (d.allowed()) {
    s.tat_requests = tat_r;
    s.tat_tokens = tat_t;
    s.day_requests += 1;
    s.day_tokens += tokens;
    s.month_tokens += tokens;
    ++s.concurrent;
  }
  fillHeaders(d, plan, peek(perMinute(plan.requests_per_minute), s.tat_requests, mono),
              peek(perMinute(plan.tokens_per_minute), s.tat_tokens, mono), s.day_requests,
              s.day_tokens, unix_s);
  return d;
}

void LocalLimiter::finish(std::string_view key, const api::UsagePlan& plan, double reserved,
                          double actual, double mono, double unix_s) {
  auto& sh = shard(key);
  std::lock_guard lock(sh.mu);
  auto& s = sh.keys[std::string(key)];
  const long day = s.day, month = s.month;
  roll(s, unix_s);
  settle(perMinute(plan.tokens_per_minute), s.tat_tokens, reserved, actual, mono);
  // The reservation was charged to the window it was made in; settle there only.
  if (s.day == day) s.day_tokens = std::max(0.0, s.day_tokens + actual - reserved);
  if (s.month == month) s.month_tokens = std::max(0.0, s.month_tokens + actual - reserved);
  if (s.concurrent > 0) --s.concurrent;
}

void LocalLimiter::seed(std::string_view key, double requests_today, double tokens_today,
                        double tokens_this_month, double unix_s) {
  auto& sh = shard(key);
  std::lock_guard lock(sh.mu);
  auto& s = sh.keys[std::string(key)];
  roll(s, unix_s);
  s.day_requests += requests_today;
  s.day_tokens += tokens_today;
  s.month_tokens += tokens_this_month;
}

Remaining LocalLimiter::remaining(std::string_view key, const api::UsagePlan& plan, double mono,
                                  double unix_s) {
  auto& sh = shard(key);
  std::lock_guard lock(sh.mu);
  auto& s = sh.keys[std::string(key)];
  roll(s, unix_s);
  auto left = [](double limit, double used) {
    return limit > 0 ? std::max(0.0, limit - used) : HUGE_VAL;
  };
  return {peek(perMinute(plan.requests_per_minute), s.tat_requests, mono).remaining,
          peek(perMinute(plan.tokens_per_minute), s.tat_tokens, mono).remaining,
          left(plan.requests_per_day, s.day_requests),
          left(plan.tokens_per_day, s.day_tokens),
          left(plan.tokens_per_month, s.month_tokens),
          s.concurrent};
}

}  // namespace tidegate::gateway::admission

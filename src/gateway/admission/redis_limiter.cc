#include "gateway/admission/redis_limiter.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cmath>

#include "common/crypto.h"

namespace tidegate::gateway::admission {

namespace asio = boost::asio;

namespace {

// KEYS: state hash, concurrency set. ARGV: rpm tpm rpd tpd tpmonth maxconc day month
// to_next_day to_next_month lease_s, then for each request of the batch: tokens request_id.
// Decides the requests in order, exactly as one script per request would, and returns for each
// {refusal, retry_after, remaining_req, reset_req, remaining_tok, reset_tok, day_requests,
// day_tokens} (numbers as strings: Lua numbers would be truncated to integers). Refusal codes
// follow admission::Refusal.
constexpr const char* kAdmitScript = R"lua(
local t = redis.call('TIME')
local now = t[1] + t[2] / 1e6
local rpm, tpm, rpd, tpd, tpmo, maxc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local day, month = ARGV[7], ARGV[8]
local to_day, to_month, lease = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local s = redis.call('HMGET', KEYS[1], 'tr', 'tt', 'd', 'dr', 'dt', 'm', 'mt')
local tr, tt = tonumber(s[1]) or 0, tonumber(s[2]) or 0
local dr, dt, mt = tonumber(s[4]) or 0, tonumber(s[5]) or 0, tonumber(s[7]) or 0
local new_day = s[3] ~= day
if new_day then dr = 0; dt = 0 end
if s[6] ~= month then mt = 0 end
local inflight, inflight_before = 0, 0
if maxc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - lease)
  inflight = redis.call('ZCARD', KEYS[2])
  inflight_before = inflight
end
local out, admitted = {}, 0
for i = 12, #ARGV, 2 do
  local n = tonumber(ARGV[i])
  local refusal, retry = 0, 0
  local ntr, ntt = tr, tt
  if rpm > 0 then
    ntr = math.max(tr, now) + 60 / rpm
    local over = ntr - now - 60
    if over > 1e-9 then refusal = 1; retry = over end
  end
  if tpm > 0 then
    ntt = math.max(tt, now) + n * 60 / tpm
    local over = ntt - now - 60
    if over > 1e-9 then
      if refusal == 0 then refusal = 2 end
      retry = math.max(retry, over)
    end
  end
  if rpd > 0 and dr + 1 > rpd then
    if refusal == 0 then refusal = 3 end
    retry = math.max(retry, to_day)
  end
  if tpd > 0 and dt + n > tpd then
    if refusal == 0 then refusal = 4 end
    retry = math.max(retry, to_day)
  end
  if tpmo > 0 and mt + n > tpmo then
    if refusal == 0 then refusal = 5 end
    retry = math.max(retry, to_month)
  end
  if maxc > 0 and inflight >= maxc then
    if refusal == 0 then refusal = 6 end
    retry = math.max(retry, 1)
  end
  if refusal == 0 then
    tr, tt, dr, dt, mt = ntr, ntt, dr + 1, dt + n, mt + n
    admitted = admitted + 1
    if maxc > 0 then
      redis.call('ZADD', KEYS[2], now, ARGV[i + 1])
      inflight = inflight + 1
    end
  end
  local rr, resr, rt, rest = 0, 0, 0, 0
  if rpm > 0 then
    resr = math.max(tr, now) - now
    rr = math.max(0, math.floor((60 - resr) * rpm / 60 + 1e-9))
  end
  if tpm > 0 then
    rest = math.max(tt, now) - now
    rt = math.max(0, math.floor((60 - rest) * tpm / 60 + 1e-9))
  end
  local k = #out
  out[k + 1], out[k + 2], out[k + 3], out[k + 4] = tostring(refusal), tostring(retry),
    tostring(rr), tostring(resr)
  out[k + 5], out[k + 6], out[k + 7], out[k + 8] = tostring(rt), tostring(rest), tostring(dr),
    tostring(dt)
end
if admitted > 0 then
  redis.call('HSET', KEYS[1], 'tr', string.format('%.6f', tr), 'tt', string.format('%.6f', tt),
             'd', day, 'dr', dr, 'dt', dt, 'm', month, 'mt', mt)
  -- Idle keys go away (after longer than a month); refreshed once a day, not on every call.
  if new_day then redis.call('EXPIRE', KEYS[1], 3024000) end
  if maxc > 0 and inflight_before == 0 then
    redis.call('EXPIRE', KEYS[2], math.ceil(lease) + 60)
  end
end
return out
)lua";

// KEYS: state hash, concurrency set. ARGV: tpm delta day month request_id... (the settlements of
// several requests: their summed delta, every request id).
constexpr const char* kFinishScript = R"lua(
local delta = tonumber(ARGV[2])
if delta ~= 0 then
  local s = redis.call('HMGET', KEYS[1], 'tt', 'd', 'dt', 'm', 'mt')
  local tpm = tonumber(ARGV[1])
  local f = {}
  if tpm > 0 and s[1] then
    local t = redis.call('TIME')
    local now = t[1] + t[2] / 1e6
    f[#f + 1] = 'tt'
    f[#f + 1] = string.format('%.6f', math.max(now, s[1] + delta * 60 / tpm))
  end
  if s[2] == ARGV[3] and s[3] then
    f[#f + 1] = 'dt'
    f[#f + 1] = math.max(0, s[3] + delta)
  end
  if s[4] == ARGV[4] and s[5] then
    f[#f + 1] = 'mt'
    f[#f + 1] = math.max(0, s[5] + delta)
  end
  if #f > 0 then redis.call('HSET', KEYS[1], unpack(f)) end
end
if #ARGV > 4 then redis.call('ZREM', KEYS[2], unpack(ARGV, 5)) end
return 1
)lua";

// The shortest text that reads back as `v` (std::to_chars: no locale, no printf parsing).
std::string num(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

double toNumber(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return static_cast<double>(r.integer);
  if (r.type == RedisReply::Type::kString) return std::strtod(r.str.c_str(), nullptr);
  return 0;
}

// Keys of one API key's state; the hash tag keeps both in one slot of a Redis Cluster.
std::vector<std::string> keysOf(const std::string& key) {
  return {"tidegate:{" + key + "}:limits", "tidegate:{" + key + "}:inflight"};
}

}  // namespace

RedisLimiter::RedisLimiter(LocalLimiter& fallback, bool fail_open, double lease_s,
                           std::function<void(const std::string&)> on_failure)
    : fallback_(fallback),
      fail_open_(fail_open),
      lease_s_(lease_s),
      on_failure_(std::move(on_failure)) {}

asio::awaitable<Result<RedisReply>> RedisLimiter::eval(RedisClient& redis,
                                                       const std::string& script,
                                                       const std::string& sha,
                                                       std::vector<std::string> keys_and_args,
                                                       int nkeys) {
  std::vector<std::string> argv{"EVALSHA", sha, std::to_string(nkeys)};
  argv.insert(argv.end(), keys_and_args.begin(), keys_and_args.end());
  auto r = co_await redis.call(argv);
  if (r && r->type == RedisReply::Type::kError && r->str.starts_with("NOSCRIPT")) {
    // First use on this server (or after SCRIPT FLUSH): send the script itself, which also
    // caches it for the next EVALSHA.
    argv[0] = "EVAL";
    argv[1] = script;
    r = co_await redis.call(std::move(argv));
  }
  if (r && r->type == RedisReply::Type::kError) co_return Error{"redis: " + r->str};
  co_return r;
}

asio::awaitable<std::vector<Decision>> RedisLimiter::admitAll(
    RedisClient& redis, const std::string& key, const api::UsagePlan& plan,
    std::vector<std::pair<double, std::string>> requests, double mono, double unix_s) {
  static const std::string sha = crypto::sha1Hex(kAdmitScript);
  static const std::string script = kAdmitScript;
  auto args = keysOf(key);
  for (double v :
       {plan.requests_per_minute, plan.tokens_per_minute, plan.requests_per_day,
        plan.tokens_per_day, plan.tokens_per_month, static_cast<double>(plan.max_concurrent)})
    args.push_back(num(v));
  // Day and month as the integers the state stores (the scripts compare them as strings).
  args.push_back(std::to_string(dayOf(unix_s)));
  args.push_back(std::to_string(monthOf(unix_s)));
  args.push_back(num(secondsToNextDay(unix_s)));
  args.push_back(num(secondsToNextMonth(unix_s)));
  args.push_back(num(lease_s_));
  for (auto& [tokens, id] : requests) {
    args.push_back(num(tokens));
    args.push_back(std::move(id));
  }
  auto r = co_await eval(redis, script, sha, std::move(args), 2);
  std::vector<Decision> out(requests.size());
  if (!r || r->type != RedisReply::Type::kArray || r->elements.size() != 8 * requests.size()) {
    on_failure_(r ? "redis: unexpected reply to the admission script" : r.error().message);
    for (std::size_t i = 0; i < requests.size(); ++i) {
      auto& d = out[i];
      if (fail_open_) {
        d = fallback_.admit(key, plan, requests[i].first, mono, unix_s);
      } else {
        d.refusal = Refusal::kBackend;
        d.retry_after_s = 1;
      }
      d.degraded = true;
    }
    co_return out;
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto* e = &r->elements[8 * i];
    auto& d = out[i];
    const int code = static_cast<int>(toNumber(e[0]));
    d.refusal = code >= 1 && code <= 6 ? static_cast<Refusal>(code) : Refusal::kNone;
    d.retry_after_s = toNumber(e[1]);
    Verdict per_minute_requests, per_minute_tokens;
    per_minute_requests.remaining = toNumber(e[2]);
    per_minute_requests.reset_s = toNumber(e[3]);
    per_minute_tokens.remaining = toNumber(e[4]);
    per_minute_tokens.reset_s = toNumber(e[5]);
    fillHeaders(d, plan, per_minute_requests, per_minute_tokens, toNumber(e[6]), toNumber(e[7]),
                unix_s);
  }
  co_return out;
}

bool RedisLimiter::needsSettlement(const api::UsagePlan& plan) {
  return plan.tokens_per_minute > 0 || plan.tokens_per_day > 0 || plan.tokens_per_month > 0 ||
         plan.max_concurrent > 0;
}

asio::awaitable<void> RedisLimiter::settle(RedisClient& redis, const std::string& key, double tpm,
                                           double delta, long day, long month,
                                           std::vector<std::string> request_ids) {
  static const std::string sha = crypto::sha1Hex(kFinishScript);
  static const std::string script = kFinishScript;
  auto args = keysOf(key);
  args.push_back(num(tpm));
  args.push_back(num(delta));
  args.push_back(std::to_string(day));
  args.push_back(std::to_string(month));
  for (auto& id : request_ids) args.push_back(std::move(id));
  auto r = co_await eval(redis, script, sha, std::move(args), 2);
  if (!r) on_failure_(r.error().message);
}

Settlements::Settlements(RedisLimiter& limiter, RedisClient& redis, double interval_s,
                         std::size_t max_pending)
    : limiter_(limiter), redis_(redis), interval_s_(interval_s), max_pending_(max_pending) {}

void Settlements::add(const std::string& key, const api::UsagePlan& plan, double reserved,
                      double actual, std::string request_id, bool degraded, double mono,
                      double unix_s) {
  if (degraded) {
    limiter_.fallback().finish(key, plan, reserved, actual, mono, unix_s);
    return;
  }
  if (!RedisLimiter::needsSettlement(plan)) return;
  auto& g = groups_[{key, dayOf(unix_s), monthOf(unix_s)}];
  g.tpm = plan.tokens_per_minute;
  g.delta += actual - reserved;
  if (plan.max_concurrent > 0) g.ids.push_back(std::move(request_id));
  ++pending_;
  if (pending_ >= max_pending_) {
    sendAll();
  } else if (!scheduled_) {
    scheduled_ = true;
    asio::co_spawn(redis_.executor(), flushAfter(interval_s_), asio::detached);
  }
}

asio::awaitable<void> Settlements::flushAfter(double seconds) {
  asio::steady_timer timer(redis_.executor());
  timer.expires_after(std::chrono::microseconds(static_cast<long>(seconds * 1e6)));
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  scheduled_ = false;
  sendAll();
}

void Settlements::sendAll() {
  // One script per group, all pipelined on the worker's connection.
  auto groups = std::exchange(groups_, {});
  pending_ = 0;
  for (auto& [k, g] : groups) {
    const auto& [key, day, month] = k;
    if (g.delta == 0 && g.ids.empty()) continue;
    asio::co_spawn(redis_.executor(),
                   limiter_.settle(redis_, key, g.tpm, g.delta, day, month, std::move(g.ids)),
                   asio::detached);
  }
}

Admissions::Admissions(RedisLimiter& limiter, RedisClient& redis, std::size_t max_batch)
    : limiter_(limiter), redis_(redis), max_batch_(max_batch) {}

asio::awaitable<Decision> Admissions::admit(const std::string& key, const api::UsagePlan& plan,
                                            double tokens, std::string request_id, double mono,
                                            double unix_s) {
  auto w = std::make_shared<Waiter>(redis_.executor());
  auto& batch = pending_[key];
  if (!batch.plan) batch.plan = std::make_shared<const api::UsagePlan>(plan);
  batch.waiters.push_back(w);
  batch.requests.emplace_back(tokens, std::move(request_id));
  batch.mono = mono;
  batch.unix_s = unix_s;
  if (batch.waiters.size() >= max_batch_) {
    send(key);
  } else if (!scheduled_) {
    // After the handlers already queued on this loop: the requests that arrived with this one
    // join its batch.
    scheduled_ = true;
    asio::post(redis_.executor(), [this] {
      scheduled_ = false;
      while (!pending_.empty()) send(pending_.begin()->first);
    });
  }
  co_await w->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return w->decision;
}

void Admissions::send(const std::string& key) {
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  auto batch = std::make_shared<Batch>(std::move(it->second));
  pending_.erase(it);
  asio::co_spawn(
      redis_.executor(),
      [this, key, batch]() -> asio::awaitable<void> {
        auto decisions = co_await limiter_.admitAll(
            redis_, key, *batch->plan, std::move(batch->requests), batch->mono, batch->unix_s);
        for (std::size_t i = 0; i < batch->waiters.size(); ++i) {
          batch->waiters[i]->decision = decisions[i];
          batch->waiters[i]->wake.cancel();
        }
      },
      asio::detached);
}

}  // namespace tidegate::gateway::admission

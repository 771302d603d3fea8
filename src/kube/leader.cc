#include "kube/leader.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <ctime>
#include <random>

#include "common/clock.h"
#include "common/log.h"

namespace tidegate::kube {

namespace asio = boost::asio;

std::string formatMicroTime(double unix_seconds) {
  const double whole = std::floor(unix_seconds);
  const std::time_t t = static_cast<std::time_t>(whole);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06ldZ",
                std::min(999999L, std::lround((unix_seconds - whole) * 1e6)));
  return buf;
}

namespace {
const bj::object* objectAt(const bj::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}
std::string stringAt(const bj::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
std::int64_t intAt(const bj::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v && v->is_int64() ? v->as_int64() : 0;
}
}  // namespace

LeaseStep decideLease(const std::optional<bj::object>& current, const LeaderConfig& config,
                      LeaseObservation& seen, double mono, double wall) {
  LeaseStep step;
  const auto now = formatMicroTime(wall);
  // Whole seconds, truncated as client-go writes int(LeaseDuration / time.Second).
  const auto duration = static_cast<std::int64_t>(config.lease_duration_s);
  if (!current) {
    step.action = LeaseStep::Action::kCreate;
    step.holder = config.identity;
    step.lease =
        bj::object{{"apiVersion", "coordination.k8s.io/v1"},
                   {"kind", "Lease"},
                   {"metadata", bj::object{{"name", config.name}, {"namespace", config.ns}}},
                   {"spec", bj::object{{"holderIdentity", config.identity},
                                       {"leaseDurationSeconds", duration},
                                       {"acquireTime", now},
                                       {"renewTime", now},
                                       {"leaseTransitions", 0}}}};
    return step;
  }
  const auto* spec = objectAt(*current, "spec");
  const auto holder = stringAt(spec, "holderIdentity");
  // The record as this candidate saw it: a change restarts the clock on it (client-go compares
  // the whole record, so a renewal by the holder is a change).
  const std::string record = holder + "|" + stringAt(spec, "renewTime") + "|" +
                             std::to_string(intAt(spec, "leaseDurationSeconds")) + "|" +
                             std::to_string(intAt(spec, "leaseTransitions"));
  if (record != seen.record || seen.observed_at < 0) {
    seen.record = record;
    seen.observed_at = mono;
  }
  // The holder's own duration when it gave one (a released Lease says 1 s).
  const auto held_for = intAt(spec, "leaseDurationSeconds");
  const double valid_for = held_for > 0 ? static_cast<double>(held_for) : config.lease_duration_s;
  if (!holder.empty() && holder != config.identity && seen.observed_at + valid_for > mono) {
    step.action = LeaseStep::Action::kWait;
    step.holder = holder;
    return step;
  }
  bj::object lease = *current;
  auto& s = lease["spec"].is_object() ? lease["spec"].get_object() : lease["spec"].emplace_object();
  const bool takeover = holder != config.identity;
  s["holderIdentity"] = config.identity;
  s["leaseDurationSeconds"] = duration;
  s["renewTime"] = now;
  if (takeover) {
    s["acquireTime"] = now;
    // client-go counts every acquisition by a candidate that was not the holder, a released
    // Lease (no holder) included.
    s["leaseTransitions"] = intAt(spec, "leaseTransitions") + 1;
  }
  step.action = LeaseStep::Action::kUpdate;
  step.holder = config.identity;
  step.lease = std::move(lease);
  return step;
}

LeaderElector::LeaderElector(Client& client, LeaderConfig config)
    : client_(client), config_(std::move(config)) {}

bool LeaderElector::isLeader() const {
  return leading_ && monotonicSeconds() < renewed_at_ + config_.renew_deadline_s;
}

void LeaderElector::setLeading(bool leading) {
  if (leading == leading_) return;
  leading_ = leading;
  ++transitions_;
  spdlog::info("leader election: {} {} lease {}/{}", config_.identity,
               leading ? "acquired" : "lost", config_.ns, config_.name);
  if (on_change_) on_change_(leading);
}

asio::awaitable<bool> LeaderElector::tryAcquireOrRenew() {
  const auto path = resources::kLeases.path(config_.ns, config_.name);
  auto got = co_await client_.get(path);
  std::optional<bj::object> current;
  if (got) {
    current = std::move(*got);
  } else if (got.error().code != 404) {
    spdlog::warn("leader election: {}", got.error().message);
    co_return false;
  }
  // release() may have run while the GET was in flight (it sets stopped_ first): writing now
  // could take back the Lease it just gave up, and the successor would wait out a lease
  // nobody renews.
  if (stopped_) co_return false;
  const double sent = monotonicSeconds();
  auto step = decideLease(current, config_, seen_, sent, unixTime());
  if (step.action == LeaseStep::Action::kWait) {
    holder_ = step.holder;
    co_return false;
  }
  // (GCC 12: no co_await inside a conditional expression.)
  Client::Object r = ApiError{};
  if (step.action == LeaseStep::Action::kCreate) {
    r = co_await client_.create(resources::kLeases.path(config_.ns), step.lease);
  } else {
    r = co_await client_.update(path, step.lease);
  }
  if (!r) {
    // A 409 means another candidate wrote first: it leads.
    if (r.error().code != 409 && r.error().code != 422)
      spdlog::warn("leader election: {}", r.error().message);
    co_return false;
  }
  holder_ = config_.identity;
  renewed_at_ = sent;  // the lease runs from when the write was sent, not when it was answered
  co_return true;
}

asio::awaitable<void> LeaderElector::run() {
  std::mt19937_64 rng(std::random_device{}());
  // client-go: JitterUntil(retryPeriod, 1.2) while campaigning.
  std::uniform_real_distribution<double> jitter(1.0, 1.2);
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  // The renew deadline is kept by a watchdog of its own: a renewal can take far longer than
  // renewDeadline (the client's retries with backoff, a slow server), and the loop below only
  // sees its end. client-go bounds the renew loop by a context with the renew deadline; here the
  // watchdog reports the loss (onChange(false)) when the deadline passes, whatever the request
  // in flight is doing, so a successor that acquires after leaseDuration never overlaps it.
  bool running = true, watchdog_done = false;
  asio::steady_timer watchdog(ex);
  asio::co_spawn(
      ex,
      [&]() -> asio::awaitable<void> {
        while (running) {
          const double due = leading_ ? renewed_at_ + config_.renew_deadline_s
                                      : monotonicSeconds() + config_.retry_period_s;
          const double wait = std::max(0.0, due - monotonicSeconds());
          watchdog.expires_after(std::chrono::microseconds(static_cast<long>(wait * 1e6) + 1));
          co_await watchdog.async_wait(asio::as_tuple(asio::use_awaitable));
          if (running && leading_ && !isLeader()) setLeading(false);
        }
        watchdog_done = true;
      },
      asio::detached);
  while (!stopped_) {
    const bool held = co_await tryAcquireOrRenew();
    // A write answered after renewDeadline (retries) does not make a leader: the watchdog may
    // already have reported the loss; the next renewal, if prompt, leads again.
    const bool fresh = monotonicSeconds() < renewed_at_ + config_.renew_deadline_s;
    if (held && fresh) {
      setLeading(true);
    } else if (leading_ && !fresh) {
      setLeading(false);
    } else if (leading_ && holder_ != config_.identity) {
      setLeading(false);  // someone else holds it now
    }
    watchdog.cancel();  // leadership or the last renewal changed: re-arm at the new deadline
    const double wait = config_.retry_period_s * (leading_ ? 1.0 : jitter(rng));
    timer.expires_after(std::chrono::microseconds(static_cast<long>(wait * 1e6)));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  // The watchdog refers to this frame: wait for it to end.
  running = false;
  while (!watchdog_done) {
    watchdog.cancel();
    co_await asio::post(ex, asio::use_awaitable);
  }
}

asio::awaitable<void> LeaderElector::release() {
  stopped_ = true;
  if (!leading_) co_return;
  const auto path = resources::kLeases.path(config_.ns, config_.name);
  const auto identity = config_.identity;
  auto r = co_await client_.modify(path, [&](bj::object& lease) {
    auto* spec = lease.if_contains("spec");
    if (!spec || !spec->is_object()) return false;
    auto& s = spec->get_object();
    if (stringAt(&s, "holderIdentity") != identity) return false;
    const auto now = formatMicroTime(unixTime());
    s["holderIdentity"] = "";
    s["leaseDurationSeconds"] = 1;
    s["renewTime"] = now;
    s["acquireTime"] = now;
    return true;
  });
  if (!r) spdlog::warn("leader election: release: {}", r.error().message);
  setLeading(false);
}

}  // namespace tidegate::kube

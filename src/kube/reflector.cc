#include "kube/reflector.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <random>

#include "common/clock.h"
#include "common/log.h"

namespace tidegate::kube {

namespace asio = boost::asio;

namespace {
const bj::object* metadata(const bj::object& o) {
  const auto* m = o.if_contains("metadata");
  return m && m->is_object() ? &m->get_object() : nullptr;
}
std::string metaString(const bj::object& o, std::string_view key) {
  const auto* m = metadata(o);
  const auto* v = m ? m->if_contains(key) : nullptr;
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
}  // namespace

std::string Reflector::key(const bj::object& object) {
  const auto ns = metaString(object, "namespace");
  const auto name = metaString(object, "name");
  return ns.empty() ? name : ns + "/" + name;
}

Reflector::Reflector(Client& client, std::string path, ListOptions options)
    : client_(client), path_(std::move(path)), options_(std::move(options)) {}

void Reflector::stop() { stopped_ = true; }

asio::awaitable<void> Reflector::sleep(double seconds) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(std::chrono::microseconds(static_cast<long>(seconds * 1e6)));
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

void Reflector::fail(const ApiError& e) {
  ++stats_.failures;
  ++failures_in_row_;
  last_error_ = e.message;
  // One line per failure streak step, at most every 30 s: a cluster that is down for an hour
  // must not fill the log.
  const double t = monotonicSeconds();
  if (failures_in_row_ == 1 || t - last_logged_ >= 30) {
    last_logged_ = t;
    if (e.code == 403)
      spdlog::error(
          "kubernetes: {} (RBAC: the service account lacks this permission; see "
          "deploy/base/rbac.yaml) — serving the last known state",
          e.message);
    else
      spdlog::warn("kubernetes: {} — serving the last known state, retrying", e.message);
  }
}

asio::awaitable<Reflector::Listed> Reflector::relist() {
  ++stats_.lists;
  auto r = co_await client_.list(path_, options_);
  if (!r && r.error().code == 404) {
    // The kind is not served (its CRD is not installed): there are none of it. Synced, so
    // consumers need not wait for it; looked at again later.
    const bool changed = !objects_.empty() || !synced_;
    objects_.clear();
    resource_version_.clear();
    synced_ = true;
    if (last_error_.empty())
      spdlog::info("kubernetes: {} is not served (CRD not installed?): none of it", path_);
    last_error_ = "not served by the API server (is its CRD installed?)";
    if (changed && on_change_) on_change_(*this);
    co_return Listed::kNotServed;
  }
  if (!r) {
    fail(r.error());
    co_return Listed::kFailed;
  }
  std::map<std::string, bj::object> fresh;
  if (const auto* items = r->if_contains("items"); items && items->is_array())
    for (const auto& item : items->get_array())
      if (item.is_object()) fresh.emplace(key(item.get_object()), item.get_object());
  objects_ = std::move(fresh);
  resource_version_ = metaString(*r, "resourceVersion");
  synced_ = true;
  failures_in_row_ = 0;
  last_error_.clear();
  if (on_change_) on_change_(*this);
  co_return Listed::kOk;
}

asio::awaitable<void> Reflector::run() {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  auto backoff = [&] {
    // 0.5 s doubling to 30 s, with jitter, as client-go's reflector backoff manager.
    const double bound = std::min(30.0, 0.5 * std::pow(2.0, std::min(failures_in_row_, 8)));
    return bound * jitter(rng);
  };
  bool need_list = true;
  while (!stopped_) {
    if (need_list) {
      const auto listed = co_await relist();
      if (listed == Listed::kFailed) {
        co_await sleep(backoff());
        continue;
      }
      if (listed == Listed::kNotServed) {
        co_await sleep(30);
        continue;
      }
      need_list = false;
    }
    ++stats_.watches;
    auto end = co_await client_.watch(path_, options_, resource_version_, [&](const WatchEvent& e) {
      if (stopped_) return false;
      ++stats_.events;
      const auto rv = metaString(e.object, "resourceVersion");
      if (!rv.empty()) resource_version_ = rv;
      switch (e.type) {
        case WatchEvent::Type::kAdded:
        case WatchEvent::Type::kModified:
          objects_[key(e.object)] = e.object;
          break;
        case WatchEvent::Type::kDeleted:
          objects_.erase(key(e.object));
          break;
        case WatchEvent::Type::kBookmark:
        case WatchEvent::Type::kError:
          return true;  // bookmarks only move the resourceVersion on
      }
      failures_in_row_ = 0;
      last_error_.clear();
      if (on_change_) on_change_(*this);
      return true;
    });
    if (stopped_) break;
    switch (end.kind) {
      case WatchEnd::Kind::kClosed:
        break;  // watch again from resource_version_
      case WatchEnd::Kind::kGone:
        ++stats_.gone;
        spdlog::info("kubernetes: {}: resourceVersion {} expired (410): listing again", path_,
                     resource_version_);
        need_list = true;
        break;
      case WatchEnd::Kind::kFailed:
        fail(end.error);
        co_await sleep(backoff());
        break;
    }
  }
}

}  // namespace tidegate::kube

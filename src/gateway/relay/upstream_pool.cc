#include "gateway/relay/upstream_pool.h"

#include <algorithm>

namespace tidegate::gateway::relay {

UpstreamPool::UpstreamPool(boost::asio::any_io_executor ex, http::ClientOptions options,
                           std::size_t max_idle_per_endpoint, TlsContext tls)
    : ex_(std::move(ex)),
      options_(std::move(options)),
      max_idle_(max_idle_per_endpoint),
      tls_(std::move(tls)) {}

UpstreamPool::~UpstreamPool() { clear(); }

std::shared_ptr<http::Client> UpstreamPool::acquire(const std::shared_ptr<Endpoint>& ep) {
  auto it = by_endpoint_.find(ep.get());
  if (it != by_endpoint_.end()) {
    auto& idle = it->second.idle;
    // Most recently used first: the likeliest to be alive, and the older ones age out.
    while (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      if (c->reusable()) return c;
      c->close();
    }
  }
  if (!ep->address().tls)
    return std::make_shared<http::Client>(ex_, ep->address().host, ep->address().port, options_);
  auto options = options_;
  options.tls = tls_ ? tls_() : nullptr;
  return std::make_shared<http::Client>(ex_, ep->address().host, ep->address().port, options);
}

void UpstreamPool::release(const std::shared_ptr<Endpoint>& ep, std::shared_ptr<http::Client> c) {
  if (!c->reusable()) {
    c->close();
    return;
  }
  auto& e = by_endpoint_[ep.get()];
  if (!e.endpoint) e.endpoint = ep;
  if (e.idle.size() >= max_idle_) {
    c->close();
    return;
  }
  e.idle.push_back(std::move(c));
}

void UpstreamPool::prune(double now) {
  for (auto it = by_endpoint_.begin(); it != by_endpoint_.end();) {
    auto& idle = it->second.idle;
    std::erase_if(idle, [&](const std::shared_ptr<http::Client>& c) {
      if (c->reuseUntil() > now) return false;
      c->close();
      return true;
    });
    it = idle.empty() ? by_endpoint_.erase(it) : std::next(it);
  }
}

void UpstreamPool::retain(const std::unordered_set<const Endpoint*>& live) {
  for (auto it = by_endpoint_.begin(); it != by_endpoint_.end();) {
    if (live.contains(it->first)) {
      ++it;
      continue;
    }
    for (auto& c : it->second.idle) c->close();
    it = by_endpoint_.erase(it);
  }
}

void UpstreamPool::clear() { retain({}); }

std::size_t UpstreamPool::idle() const {
  std::size_t n = 0;
  for (const auto& [k, e] : by_endpoint_) n += e.idle.size();
  return n;
}

}  // namespace tidegate::gateway::relay

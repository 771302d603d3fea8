#include "gateway/scraper.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/clock.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/prometheus.h"

namespace tidegate::gateway {

namespace asio = boost::asio;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {
double now() { return monotonicSeconds(); }

// A replica goes down after this many failed scrapes in a row (Kubernetes' readiness probe
// failureThreshold default), or at once when nothing listens on its port. A busy engine can
// answer /metrics past the scrape timeout (vLLM serves it from the event loop that also streams
// tokens); one late answer must not take a replica that is serving out of rotation. Until then
// its last metrics age, and the picker treats metrics older than staleAfter as saturated.
constexpr int kScrapeFailuresToDown = 3;
}  // namespace

Scraper::Scraper(asio::io_context& control,
                 std::function<std::shared_ptr<const Snapshot>()> current,
                 std::function<void()> models_changed,
                 std::function<std::shared_ptr<tls::ssl::context>()> tls)
    : control_(control),
      current_(std::move(current)),
      models_changed_(std::move(models_changed)),
      tls_(std::move(tls)) {}

// Starts scraping_ endpoints not yet scraped; stops scraping_ dropped ones. Control thread.
void Scraper::sync() {
  const auto st = current_();
  std::lock_guard lock(mu_);
  std::unordered_map<std::string, std::shared_ptr<std::atomic<bool>>> next;
  for (const auto& eps : st->pool_endpoints) {
    for (const auto& e : eps) {
      const auto key = e->address().key();
      if (next.contains(key)) continue;
      auto it = scraping_.find(key);
      if (it != scraping_.end()) {
        next[key] = it->second;
        continue;
      }
      auto alive = std::make_shared<std::atomic<bool>>(true);
      next[key] = alive;
      asio::co_spawn(control_, scrapeLoop(e, alive), asio::detached);
    }
  }
  for (auto& [k, alive] : scraping_)
    if (!next.contains(k)) *alive = false;
  scraping_ = std::move(next);
}

void Scraper::stop() {
  std::lock_guard lock(mu_);
  for (auto& [k, alive] : scraping_) *alive = false;
}

asio::awaitable<void> Scraper::scrapeLoop(std::shared_ptr<Endpoint> ep,
                                          std::shared_ptr<std::atomic<bool>> alive) {
  // An https endpoint's client takes the upstream TLS context at each new connection, so a
  // reload's new CA bundle applies to scrapes too.
  auto connect = [&] {
    http::ClientOptions options;
    if (ep->address().tls) options.tls = tls_ ? tls_() : nullptr;
    return std::make_unique<http::Client>(control_.get_executor(), ep->address().host,
                                          ep->address().port, options);
  };
  auto client = connect();
  asio::steady_timer timer(control_);
  double last_models = -1;
  while (*alive) {
    const auto st = current_();
    const auto& g = st->config->gateway;
    const double timeout = std::max(0.2, std::min(1.0, g.stale_after_s / 2));
    auto prev = ep->metrics();
    auto next = std::make_shared<EndpointMetrics>(*prev);
    http::ClientRequest req{.method = "GET", .target = "/metrics", .timeout_s = timeout};
    if (ep->address().tls && !client->reusable()) client = connect();
    auto r = co_await client->send(req);
    std::string failure;
    if (r && r->status == 200) {
      if (auto scrape = prom::parse(r->body)) {
        readEngineMetrics(*scrape, *next);
        next->up = true;
        next->failures = 0;
        next->scraped_at = now();
        next->error.clear();
      } else {
        failure = "metrics: " + scrape.error().message;
      }
    } else {
      failure = r ? "metrics: HTTP " + std::to_string(r->status) : r.error().message;
    }
    if (!failure.empty()) {
      next->failures = prev->failures + 1;
      const bool refused = !r && r.error().kind == http::Failure::kConnect;
      next->up = prev->up && !refused && next->failures < kScrapeFailuresToDown;
      next->error = std::move(failure);
    }
    if (failure.empty() && (last_models < 0 || now() - last_models >= 1.0)) {
      http::ClientRequest mreq{.method = "GET", .target = "/v1/models", .timeout_s = timeout};
      auto m = co_await client->send(mreq);
      if (m && m->status == 200 && readModelList(m->body, *next)) last_models = now();
    }
    if (prev->up != next->up)
      spdlog::info("endpoint {} is {}{}", ep->address().str(), next->up ? "up" : "down",
                   next->up ? "" : ": " + next->error);
    const bool models_changed = next->models != prev->models || next->adapters != prev->adapters;
    ep->publish(std::move(next));
    // New names become known model labels and get their stats in the next snapshot.
    if (models_changed && models_changed_) models_changed_();
    timer.expires_after(std::chrono::microseconds(static_cast<long>(g.scrape_interval_s * 1e6)));
    co_await timer.async_wait(kTuple);
  }
}

}  // namespace tidegate::gateway

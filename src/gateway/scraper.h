#pragma once
// Scraper: keeps every endpoint of the live snapshot's pools scraped — its /metrics every scrape
// interval (vLLM or llama.cpp names, read into EndpointMetrics and published on the Endpoint,
// where the picker reads it lock-free) and its /v1/models at most once a second.
//
// Threads: runs on the gateway's control thread (one coroutine per endpoint, one keep-alive
// connection each); sync() is called there after each new snapshot; stop() from any thread
// before the control loop ends.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/tls.h"
#include "gateway/snapshot.h"

namespace tidegate::gateway {

class Scraper {
 public:
  // `current` returns the live snapshot (for the scrape interval and timeouts).
  // `models_changed` runs (on the control thread) when an endpoint's model list changed.
  // `tls`: the client context for https endpoints.
  Scraper(boost::asio::io_context& control,
          std::function<std::shared_ptr<const Snapshot>()> current,
          std::function<void()> models_changed,
          std::function<std::shared_ptr<tls::ssl::context>()> tls = {});
  // Starts scraping endpoints of the live snapshot not yet scraped; stops scraping dropped ones.
  void sync();
  // Stops every scrape loop (each ends after its current scrape).
  void stop();

 private:
  boost::asio::awaitable<void> scrapeLoop(std::shared_ptr<Endpoint> ep,
                                          std::shared_ptr<std::atomic<bool>> alive);

  boost::asio::io_context& control_;
  std::function<std::shared_ptr<const Snapshot>()> current_;
  std::function<void()> models_changed_;
  std::function<std::shared_ptr<tls::ssl::context>()> tls_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<std::atomic<bool>>> scraping_;  // by address
};

}  // namespace tidegate::gateway

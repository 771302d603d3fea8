#pragma once
// Endpoint: one engine replica the gateway can send to, shared by every worker thread.
// The scraper publishes an immutable EndpointMetrics snapshot (atomic shared_ptr swap); workers
// read it lock-free. `inflight` counts this gateway's requests there (atomic). The prefix index
// remembers which prompt blocks were recently sent there (mutex; short critical sections).

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/resources.h"
#include "common/prometheus.h"

namespace tidegate::gateway {

struct EndpointMetrics {
  double scraped_at = -1;  // clock time of the last successful scrape; -1: never
  bool up = false;         // scrapes succeed (see kScrapeFailuresToDown)
  int failures = 0;        // consecutive failed scrapes
  double waiting = 0;      // queued requests (vLLM waiting / llama.cpp deferred)
  double running = 0;
  double kv = 0;  // KV-cache use, 0..1
  std::vector<std::string> running_loras, waiting_loras;
  int max_lora = -1;                  // -1: unknown
  std::vector<std::string> models;    // base models from /v1/models
  std::vector<std::string> adapters;  // LoRA adapters from /v1/models (cards with a parent)
  std::string error;                  // why the last scrape failed
  std::string engine;  // "vllm" or "llamacpp" by the metric names it exposes; "" if neither
  std::map<std::string, double> gauges;  // every gauge family, summed (autoscaler metrics)

  bool lists(const std::string& model) const;
  bool isAdapter(const std::string& model) const;
};

// Reads an engine's /metrics (vLLM or llama.cpp names) into `out` (load fields only).
void readEngineMetrics(const prom::Scrape& scrape, EndpointMetrics& out);
// Reads an OpenAI /v1/models body into out.models / out.adapters. False if malformed.
bool readModelList(std::string_view body, EndpointMetrics& out);

// An LRU set of prompt-block hashes.
class PrefixIndex {
 public:
  explicit PrefixIndex(std::size_t capacity) : capacity_(capacity) {}
  // How many leading `hashes` are in the index.
  std::size_t match(std::span<const std::uint64_t> hashes) const;
  void insert(std::span<const std::uint64_t> hashes);

 private:
  mutable std::mutex mu_;
  std::size_t capacity_;
  std::list<std::uint64_t> lru_;  // front: most recent
  std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> pos_;
};

class Endpoint {
 public:
  explicit Endpoint(api::HostPort address)
      : address_(std::move(address)), metrics_(std::make_shared<EndpointMetrics>()) {}
  const api::HostPort& address() const { return address_; }
  std::shared_ptr<const EndpointMetrics> metrics() const { return metrics_.load(); }
  void publish(std::shared_ptr<const EndpointMetrics> m) { metrics_.store(std::move(m)); }

  std::atomic<int> inflight{0};
  PrefixIndex prefix{65536};

 private:
  api::HostPort address_;
  std::atomic<std::shared_ptr<const EndpointMetrics>> metrics_;
};

// Every endpoint any pool selects, by address; endpoints survive reloads (and keep their
// scraped state) while some pool still selects them. Thread-safe.
class EndpointRegistry {
 public:
  std::shared_ptr<Endpoint> get(const api::HostPort& address);
  // Keeps only these addresses; returns the endpoints dropped.
  std::vector<std::shared_ptr<Endpoint>> retain(const std::vector<api::HostPort>& addresses);
  std::vector<std::shared_ptr<Endpoint>> all() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Endpoint>> by_address_;
};

}  // namespace tidegate::gateway

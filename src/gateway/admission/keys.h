#pragma once
// The API keys a gateway accepts: the static ones of the configuration (APIKey resources) and
// the ones created through the admin API (persisted in the ledger database). Only SHA-256
// digests are held. find() hashes the presented secret, looks the digest up and confirms it with
// a constant-time comparison; timing can reveal nothing about a secret beyond its digest.
//
// Readers (every worker, per request) take an immutable snapshot without locking; writers
// (configuration reload, the admin API) build a new snapshot under a mutex and swap it, so a
// revoked key is refused by every worker from the next request on.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/resources.h"

namespace tidegate::gateway::admission {

struct KeyRecord {
  std::string id;                 // static: metadata.name; created: "key_" + 16 hex digits
  std::string name;               // a label for people (dashboards, usage reports)
  std::string plan;               // a UsagePlan's name
  std::string digest;             // SHA-256 of the secret, 32 raw bytes
  std::optional<double> expires;  // unix seconds
  double created = 0;             // unix seconds (0 for static keys)
  bool dynamic = false;           // created through the admin API
};

class KeyStore {
 public:
  KeyStore();
  // Replaces the configuration's keys; created keys stay.
  void setStatic(const std::vector<api::APIKey>& keys);
  // Adds a created key (or replaces one with the same id).
  void put(KeyRecord key);
  // Removes a created key; false if there is none with `id` (static keys cannot be removed here:
  // they belong to the configuration).
  bool remove(const std::string& id);
  // The key whose secret is `secret`, or null.
  std::shared_ptr<const KeyRecord> find(std::string_view secret) const;
  std::shared_ptr<const KeyRecord> byId(const std::string& id) const;
  std::vector<std::shared_ptr<const KeyRecord>> list() const;

 private:
  struct Table {
    std::unordered_map<std::string, std::shared_ptr<const KeyRecord>> by_digest, by_id;
  };
  void publish();  // REQUIRES: mu_ held
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const KeyRecord>> static_, dynamic_;
  std::atomic<std::shared_ptr<const Table>> table_;
};

// The key a request presents: `Authorization: Bearer KEY` or `api-key: KEY` (Azure OpenAI's
// header). Empty when neither is there.
std::string_view presentedKey(std::string_view authorization, std::string_view api_key);

}  // namespace tidegate::gateway::admission

#include "gateway/admission/keys.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>

#include "common/crypto.h"

namespace tidegate::gateway::admission {

KeyStore::KeyStore() { table_.store(std::make_shared<const Table>()); }

void KeyStore::setStatic(const std::vector<api::APIKey>& keys) {
  std::lock_guard lock(mu_);
  static_.clear();
  for (const auto& k : keys)
    static_.push_back(std::make_shared<const KeyRecord>(
        KeyRecord{k.meta.name, k.meta.name, k.plan, k.sha256, k.expires, 0, false}));
  publish();
}

void KeyStore::put(KeyRecord key) {
  std::lock_guard lock(mu_);
  key.dynamic = true;
  std::erase_if(dynamic_, [&](const auto& k) { return k->id == key.id; });
  dynamic_.push_back(std::make_shared<const KeyRecord>(std::move(key)));
  publish();
}

bool KeyStore::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  const auto n = std::erase_if(dynamic_, [&](const auto& k) { return k->id == id; });
  if (n > 0) publish();
  return n > 0;
}

void KeyStore::publish() {
  auto t = std::make_shared<Table>();
  for (const auto* list : {&static_, &dynamic_})
    for (const auto& k : *list) {
      t->by_digest[k->digest] = k;
      t->by_id[k->id] = k;
    }
  table_.store(std::move(t));
}

std::shared_ptr<const KeyRecord> KeyStore::find(std::string_view secret) const {
  if (secret.empty()) return nullptr;
  const auto digest = crypto::sha256(secret);
  const auto t = table_.load();
  const auto it = t->by_digest.find(digest);
  if (it == t->by_digest.end() || !crypto::constantTimeEqual(it->second->digest, digest))
    return nullptr;
  return it->second;
}

std::shared_ptr<const KeyRecord> KeyStore::byId(const std::string& id) const {
  const auto t = table_.load();
  const auto it = t->by_id.find(id);
  return it == t->by_id.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const KeyRecord>> KeyStore::list() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const KeyRecord>> out(static_.begin(), static_.end());
  out.insert(out.end(), dynamic_.begin(), dynamic_.end());
  return out;
}

std::string_view presentedKey(std::string_view authorization, std::string_view api_key) {
  constexpr std::string_view kBearer = "Bearer ";
  // The scheme is case-insensitive (RFC 9110).
  if (authorization.size() > kBearer.size() &&
      boost::beast::iequals(authorization.substr(0, kBearer.size()), kBearer)) {
    auto k = authorization.substr(kBearer.size());
    while (!k.empty() && k.front() == ' ') k.remove_prefix(1);
    while (!k.empty() && k.back() == ' ') k.remove_suffix(1);
    return k;
  }
  return api_key;
}

}  // namespace tidegate::gateway::admission

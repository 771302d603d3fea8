#include "gateway/endpoint.h"

#include <algorithm>
#include <boost/json.hpp>
#include <set>

namespace tidegate::gateway {

bool EndpointMetrics::lists(const std::string& model) const {
  return std::find(models.begin(), models.end(), model) != models.end() || isAdapter(model);
}

bool EndpointMetrics::isAdapter(const std::string& model) const {
  return std::find(adapters.begin(), adapters.end(), model) != adapters.end();
}

namespace {
std::vector<std::string> splitList(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    auto c = s.find(',');
    auto item = s.substr(0, c);
    if (!item.empty()) out.emplace_back(item);
    if (c == std::string_view::npos) break;
    s.remove_prefix(c + 1);
  }
  return out;
}

// The value of the first family present, summed over its samples; -1 if none is present.
double firstOf(const prom::Scrape& s, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (s.find(n)) return s.sum(n);
  return -1;
}
}  // namespace

void readEngineMetrics(const prom::Scrape& scrape, EndpointMetrics& out) {
  out.gauges.clear();
  out.engine.clear();
  for (const auto& s : scrape.samples) {
    if (out.engine.empty() && s.name.starts_with("vllm:")) out.engine = "vllm";
    if (out.engine.empty() && s.name.starts_with("llamacpp:")) out.engine = "llamacpp";
    auto t = scrape.types.find(s.name);
    if (t != scrape.types.end() && t->second == "gauge" && s.name != "vllm:lora_requests_info")
      out.gauges[s.name] += s.value;
  }
  out.waiting =
      std::max(0.0, firstOf(scrape, {"vllm:num_requests_waiting", "llamacpp:requests_deferred"}));
  out.running =
      std::max(0.0, firstOf(scrape, {"vllm:num_requests_running", "llamacpp:requests_processing"}));
  const double kv = firstOf(scrape, {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
                                     "llamacpp:kv_cache_usage_ratio"});
  out.kv = std::clamp(kv, 0.0, 1.0);
  // vLLM writes one lora_requests_info sample per change, valued with its time: take the newest.
  const prom::Sample* newest = nullptr;
  for (const auto& s : scrape.samples)
    if (s.name == "vllm:lora_requests_info" && (!newest || s.value > newest->value)) newest = &s;
  if (newest) {
    out.running_loras = splitList(newest->label("running_lora_adapters"));
    out.waiting_loras = splitList(newest->label("waiting_lora_adapters"));
    const auto max = newest->label("max_lora");
    out.max_lora = max.empty() ? -1 : std::atoi(std::string(max).c_str());
  }
}

bool readModelList(std::string_view body, EndpointMetrics& out) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return false;
  const auto* data = v.get_object().if_contains("data");
  if (!data || !data->is_array()) return false;
  out.models.clear();
  out.adapters.clear();
  for (const auto& card : data->get_array()) {
    const auto* o = card.if_object();
    if (!o) continue;
    const auto* id = o->if_contains("id");
    if (!id || !id->is_string()) continue;
    const auto* parent = o->if_contains("parent");
    if (parent && parent->is_string()) {
      out.adapters.emplace_back(id->get_string());
    } else {
      out.models.emplace_back(id->get_string());
    }
  }
  return true;
}

std::size_t PrefixIndex::match(std::span<const std::uint64_t> hashes) const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (auto h : hashes) {
    if (!pos_.contains(h)) break;
    ++n;
  }
  return n;
}

void PrefixIndex::insert(std::span<const std::uint64_t> hashes) {
  std::lock_guard lock(mu_);
  for (auto h : hashes) {
    if (auto it = pos_.find(h); it != pos_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      continue;
    }
    lru_.push_front(h);
    pos_[h] = lru_.begin();
    if (lru_.size() > capacity_) {
      pos_.erase(lru_.back());
      lru_.pop_back();
    }
  }
}

std::shared_ptr<Endpoint> EndpointRegistry::get(const api::HostPort& address) {
  std::lock_guard lock(mu_);
  auto& e = by_address_[address.key()];
  if (!e) e = std::make_shared<Endpoint>(address);
  return e;
}

std::vector<std::shared_ptr<Endpoint>> EndpointRegistry::retain(
    const std::vector<api::HostPort>& addresses) {
  std::set<std::string> keep;
  for (const auto& a : addresses) keep.insert(a.key());
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Endpoint>> dropped;
  for (auto it = by_address_.begin(); it != by_address_.end();) {
    if (keep.contains(it->first)) {
      ++it;
    } else {
      dropped.push_back(it->second);
      it = by_address_.erase(it);
    }
  }
  return dropped;
}

std::vector<std::shared_ptr<Endpoint>> EndpointRegistry::all() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Endpoint>> out;
  for (const auto& [k, e] : by_address_) out.push_back(e);
  return out;
}

}  // namespace tidegate::gateway

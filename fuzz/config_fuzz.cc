// Fuzzes the configuration loader (api/loader.h `parseConfig`): YAML from files an operator
// edits, the admin API's inputs and reloads. Invariants:
// - parseConfig returns a configuration or an error naming the file, never throws (yaml-cpp's
//   exceptions included);
// - a configuration it accepts holds no dangling reference (a model's or an objective's pool, a
//   route's pools, a key's plan) and no duplicate pool or service name; a KServe service read
//   with its HPA keeps maxReplicas >= minReplicas.

#include <cstdint>
#include <set>
#include <string>

#include "api/loader.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(tidegate::fuzz::asText(data, size));
  const auto config = tidegate::api::parseConfig(text, "fuzz.yaml");
  if (!config) {
    FUZZ_CHECK(config.error().message.starts_with("fuzz.yaml"));
    return 0;
  }
  FUZZ_CHECK(config->file == "fuzz.yaml");
  std::set<std::string> pools;
  for (const auto& p : config->pools) FUZZ_CHECK(pools.insert(p.meta.name).second);
  for (const auto& m : config->models) FUZZ_CHECK(config->pool(m.pool) != nullptr);
  for (const auto& o : config->objectives) FUZZ_CHECK(config->pool(o.pool) != nullptr);
  for (const auto& r : config->routes)
    for (const auto& rule : r.rules)
      for (const auto& b : rule.backends) FUZZ_CHECK(config->pool(b.pool) != nullptr);
  std::set<std::string> services;
  for (const auto& s : config->services) {
    FUZZ_CHECK(services.insert(s.meta.ns + "/" + s.meta.name).second);
    FUZZ_CHECK(s.max_replicas >= s.min_replicas);
  }
  for (const auto& k : config->keys) FUZZ_CHECK(config->plan(k.plan) != nullptr);
  return 0;
}

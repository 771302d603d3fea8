#include "api/resources.h"

namespace tidegate::api {

bool selectorMatches(const Labels& selector, const Labels& labels) {
  if (selector.empty()) return false;
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

const char* criticalityName(Criticality c) {
  switch (c) {
    case Criticality::kCritical:
      return "Critical";
    case Criticality::kStandard:
      return "Standard";
    case Criticality::kSheddable:
      return "Sheddable";
  }
  return "Standard";
}

const InferencePool* Config::pool(const std::string& name) const {
  for (const auto& p : pools)
    if (p.meta.name == name) return &p;
  return nullptr;
}

}  // namespace tidegate::api

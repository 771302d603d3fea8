#include "engine/model/lora_slots.h"

namespace tidegate::engine {

LoraSlots::LoraSlots(int max_loras) : slots_(static_cast<std::size_t>(max_loras)) {}

LoraSlots::Slot* LoraSlots::find(const std::string& name) {
  for (auto& s : slots_)
    if (s.name == name) return &s;
  return nullptr;
}

const LoraSlots::Slot* LoraSlots::find(const std::string& name) const {
  for (const auto& s : slots_)
    if (s.name == name) return &s;
  return nullptr;
}

bool LoraSlots::isResident(const std::string& name) const { return find(name) != nullptr; }

bool LoraSlots::canAcquire(const std::string& name) const {
  if (isResident(name)) return true;
  for (const auto& s : slots_)
    if (s.pins == 0) return true;
  return false;
}

bool LoraSlots::acquire(const std::string& name) {
  ++tick_;
  if (Slot* s = find(name)) {
    ++s->pins;
    s->last_used = tick_;
    return false;
  }
  // Prefer an empty slot, else the least recently used unpinned one.
  Slot* victim = nullptr;
  for (auto& s : slots_) {
    if (s.pins != 0) continue;
    if (s.name.empty()) {
      victim = &s;
      break;
    }
    if (!victim || s.last_used < victim->last_used) victim = &s;
  }
  if (!victim) return false;  // precondition broken; refuse rather than corrupt a pinned slot
  victim->name = name;
  victim->pins = 1;
  victim->last_used = tick_;
  ++loads_;
  return true;
}

void LoraSlots::release(const std::string& name) {
  if (Slot* s = find(name); s && s->pins > 0) --s->pins;
}

void LoraSlots::evict(const std::string& name) {
  if (Slot* s = find(name); s && s->pins == 0) *s = Slot{};
}

std::vector<std::string> LoraSlots::running() const {
  std::vector<std::string> out;
  for (const auto& s : slots_)
    if (s.pins > 0) out.push_back(s.name);
  return out;
}

std::vector<std::string> LoraSlots::resident() const {
  std::vector<std::string> out;
  for (const auto& s : slots_)
    if (!s.name.empty()) out.push_back(s.name);
  return out;
}

}  // namespace tidegate::engine

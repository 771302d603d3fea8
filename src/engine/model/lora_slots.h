#pragma once
// LoraSlots: the GPU slots that hold LoRA adapters (vLLM's --max-loras). A running sequence pins
// its adapter's slot; an adapter stays resident after its last sequence ends, until another
// adapter needs the slot (least recently used first). A sequence whose adapter is not resident
// and finds every slot pinned must wait.
//
// Pure data structure: single-threaded, no clock.

#include <cstdint>
#include <string>
#include <vector>

namespace tidegate::engine {

class LoraSlots {
 public:
  // REQUIRES: max_loras >= 0 (0 disables LoRA serving).
  explicit LoraSlots(int max_loras);

  int maxLoras() const { return static_cast<int>(slots_.size()); }
  bool isResident(const std::string& name) const;
  // True if `name` could be pinned now: resident, or a slot is empty or holds an unpinned adapter.
  bool canAcquire(const std::string& name) const;
  // Pins `name` for one sequence. Returns true if it had to be loaded into a slot (a cost).
  // REQUIRES: canAcquire(name).
  bool acquire(const std::string& name);
  // Unpins one sequence's use of `name`.
  void release(const std::string& name);
  // Drops `name` from its slot if no sequence pins it (after unload_lora_adapter).
  void evict(const std::string& name);

  // Adapters with at least one running sequence, in slot order.
  std::vector<std::string> running() const;
  // Adapters resident in slots, pinned or not.
  std::vector<std::string> resident() const;
  std::uint64_t loads() const { return loads_; }

 private:
  struct Slot {
    std::string name;  // empty: free
    int pins = 0;
    std::uint64_t last_used = 0;
  };
  Slot* find(const std::string& name);
  const Slot* find(const std::string& name) const;

  std::vector<Slot> slots_;
  std::uint64_t tick_ = 0;
  std::uint64_t loads_ = 0;
};

}  // namespace tidegate::engine

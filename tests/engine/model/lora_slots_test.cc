#include "engine/model/lora_slots.h"

#include <gtest/gtest.h>

namespace tidegate::engine {
namespace {

TEST(LoraSlots, PinnedSlotsBlockOtherAdapters) {
  LoraSlots s(2);
  EXPECT_TRUE(s.acquire("a"));   // loaded
  EXPECT_FALSE(s.acquire("a"));  // already resident: no load
  EXPECT_TRUE(s.acquire("b"));
  EXPECT_FALSE(s.canAcquire("c"));  // both slots pinned
  EXPECT_TRUE(s.canAcquire("a"));
  EXPECT_EQ(s.running(), (std::vector<std::string>{"a", "b"}));
  s.release("b");
  EXPECT_TRUE(s.canAcquire("c"));  // b is resident but idle: evictable
  EXPECT_TRUE(s.acquire("c"));
  EXPECT_FALSE(s.isResident("b"));
  EXPECT_EQ(s.loads(), 3u);
}

TEST(LoraSlots, EvictsLeastRecentlyUsedIdleAdapter) {
  LoraSlots s(2);
  s.acquire("a");
  s.acquire("b");
  s.release("a");
  s.release("b");
  s.acquire("a");  // a used after b
  s.release("a");
  s.acquire("c");
  EXPECT_TRUE(s.isResident("a"));
  EXPECT_FALSE(s.isResident("b"));
}

TEST(LoraSlots, EvictOnlyWhenIdle) {
  LoraSlots s(1);
  s.acquire("a");
  s.evict("a");
  EXPECT_TRUE(s.isResident("a"));
  s.release("a");
  s.evict("a");
  EXPECT_FALSE(s.isResident("a"));
  EXPECT_TRUE(s.resident().empty());
}

TEST(LoraSlots, ZeroSlotsNeverAcquire) {
  LoraSlots s(0);
  EXPECT_FALSE(s.canAcquire("a"));
}

}  // namespace
}  // namespace tidegate::engine

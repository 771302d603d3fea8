#include "engine/model/kv_cache.h"

#include <gtest/gtest.h>

#include <numeric>

namespace tidegate::engine {
namespace {

std::vector<std::uint32_t> seqTokens(std::size_t n, std::uint32_t start = 0) {
  std::vector<std::uint32_t> t(n);
  std::iota(t.begin(), t.end(), start);
  return t;
}

TEST(BlockHashes, ChainCoversPrefixAndSalt) {
  auto a = seqTokens(40);
  auto b = a;
  b[20] = 999;  // differs in block 1 (tokens 16..31)
  auto ha = blockHashes(a, 16, 0), hb = blockHashes(b, 16, 0), hs = blockHashes(a, 16, 7);
  ASSERT_EQ(ha.size(), 2u);  // only full blocks
  EXPECT_EQ(ha[0], hb[0]);
  EXPECT_NE(ha[1], hb[1]);
  EXPECT_NE(ha[0], hs[0]);  // another adapter: other KV
}

TEST(KvCache, AllocatesAndRefusesWhenFull) {
  KvCache kv(4, 16, true);
  BlockTable t1, t2;
  EXPECT_TRUE(kv.allocate(t1, {}, 0, 33));  // 3 blocks
  EXPECT_EQ(kv.freeBlocks(), 1);
  EXPECT_DOUBLE_EQ(kv.usage(), 0.75);
  EXPECT_FALSE(kv.allocate(t2, {}, 0, 17));  // needs 2
  EXPECT_TRUE(t2.blocks.empty());            // unchanged on failure
  EXPECT_TRUE(kv.allocate(t1, {}, 0, 48));   // still 3 blocks
  EXPECT_TRUE(kv.allocate(t1, {}, 0, 49));   // grows to 4
  EXPECT_EQ(kv.freeBlocks(), 0);
  kv.release(t1);
  EXPECT_EQ(kv.freeBlocks(), 4);
  EXPECT_TRUE(t1.blocks.empty());
}

TEST(KvCache, ReleasedPrefixIsReusedUntilEvicted) {
  KvCache kv(4, 16, true);
  auto tokens = seqTokens(48);
  auto h = blockHashes(tokens, 16, 0);
  BlockTable t;
  ASSERT_TRUE(kv.allocate(t, h, 0, 48));
  kv.commit(t, h, 48);
  kv.release(t);
  EXPECT_EQ(kv.freeBlocks(), 4);     // cached blocks count as free...
  EXPECT_EQ(kv.cachedPrefix(h), 3);  // ...and can be taken back
  BlockTable again;
  ASSERT_TRUE(kv.allocate(again, h, 2, 40));  // 2 cached blocks + 1 new for tokens 32..39
  EXPECT_EQ(again.blocks.size(), 3u);
  EXPECT_EQ(kv.freeBlocks(), 1);
  kv.release(again);
  // Fill the cache with other content: LRU eviction removes the old prefix.
  auto other = seqTokens(64, 1000);
  BlockTable o;
  ASSERT_TRUE(kv.allocate(o, {}, 0, 64));
  EXPECT_EQ(kv.cachedPrefix(h), 0);
  kv.release(o);
}

TEST(KvCache, SharedPrefixBlocksAreRefCounted) {
  KvCache kv(8, 4, true);
  auto tokens = seqTokens(8);
  auto h = blockHashes(tokens, 4, 0);
  BlockTable a, b;
  ASSERT_TRUE(kv.allocate(a, h, 0, 8));
  kv.commit(a, h, 8);
  ASSERT_EQ(kv.cachedPrefix(h), 2);
  ASSERT_TRUE(kv.allocate(b, h, 2, 9));  // shares 2 blocks, 1 new
  EXPECT_EQ(kv.freeBlocks(), 8 - 3);
  kv.release(a);
  EXPECT_EQ(kv.freeBlocks(), 8 - 3);  // shared blocks still held by b
  kv.release(b);
  EXPECT_EQ(kv.freeBlocks(), 8);
}

TEST(KvCache, EvictsUncachedBlocksBeforeCachedOnes) {
  KvCache kv(4, 4, true);
  auto tokens = seqTokens(8);
  auto h = blockHashes(tokens, 4, 0);
  BlockTable cached, scratch, next;
  ASSERT_TRUE(kv.allocate(cached, h, 0, 8));
  kv.commit(cached, h, 8);
  ASSERT_TRUE(kv.allocate(scratch, {}, 0, 8));
  kv.release(cached);
  kv.release(scratch);                       // released later, but holds nothing reusable
  ASSERT_TRUE(kv.allocate(next, {}, 0, 8));  // takes the two scratch blocks first
  EXPECT_EQ(kv.cachedPrefix(h), 2);
}

TEST(KvCache, NoSharingWithPrefixCachingOff) {
  KvCache kv(4, 4, false);
  auto tokens = seqTokens(8);
  auto h = blockHashes(tokens, 4, 0);
  BlockTable t;
  ASSERT_TRUE(kv.allocate(t, h, 0, 8));
  kv.commit(t, h, 8);
  kv.release(t);
  EXPECT_EQ(kv.cachedPrefix(h), 0);
}

}  // namespace
}  // namespace tidegate::engine

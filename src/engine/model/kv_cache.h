#pragma once
// KvCache: the simulated GPU KV cache, a fixed number of blocks of `block_size` tokens, with
// automatic prefix caching as vLLM does it.
//
// Blocks belong to running sequences (reference-counted: a cached prefix block may be shared).
// A full block is identified by a chained hash of its tokens and all tokens before it (plus a
// salt such as the LoRA adapter), so equal prefixes map to equal hashes. When a sequence releases
// its blocks, hashed blocks stay in the cache as "evictable": they count as free, but a later
// sequence with the same prefix can take them back without recomputing. New allocations evict
// the least recently released block first (LRU).
//
// Pure data structure: single-threaded, no clock, no I/O.

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace tidegate::engine {

using BlockHash = std::uint64_t;

// Chained hashes of the full blocks of `tokens`: hash[i] covers tokens[0, (i+1)*block_size).
std::vector<BlockHash> blockHashes(std::span<const std::uint32_t> tokens, int block_size,
                                   std::uint64_t salt);

// The blocks a sequence holds, in token order.
struct BlockTable {
  std::vector<int> blocks;
  int committed = 0;  // leading blocks whose hash is registered (or that came from the cache)
};

class KvCache {
 public:
  // REQUIRES: num_blocks > 0, block_size > 0.
  KvCache(int num_blocks, int block_size, bool prefix_caching);

  int numBlocks() const { return static_cast<int>(ref_.size()); }
  int blockSize() const { return block_size_; }
  // Blocks not held by any sequence (including evictable cached blocks).
  int freeBlocks() const { return free_count_; }
  // Share of blocks held by sequences, 0..1 (vLLM's kv_cache_usage_perc).
  double usage() const {
    return 1.0 - static_cast<double>(free_count_) / static_cast<double>(ref_.size());
  }
  int blocksFor(long tokens) const {
    return static_cast<int>((tokens + block_size_ - 1) / block_size_);
  }

  // Number of leading `hashes` whose blocks are in the cache. Changes nothing.
  int cachedPrefix(std::span<const BlockHash> hashes) const;

  // Grows `table` to hold `num_tokens` tokens. If `table` is empty, its first `cached_blocks`
  // blocks are taken from the cache (REQUIRES: cached_blocks <= cachedPrefix(hashes)).
  // Returns false and changes nothing if there are not enough free blocks.
  bool allocate(BlockTable& table, std::span<const BlockHash> hashes, int cached_blocks,
                long num_tokens);

  // Registers the hashes of the table's blocks that are full of computed tokens, so later
  // sequences can share them. `hashes` covers at least those blocks.
  void commit(BlockTable& table, std::span<const BlockHash> hashes, long computed_tokens);

  // Returns the table's blocks: hashed ones become evictable, the rest free. Clears `table`.
  void release(BlockTable& table);

 private:
  static constexpr int kNone = -1;
  void pushFree(int b);
  void pushFreeFront(int b);
  void unlinkFree(int b);
  int popFree();

  int block_size_;
  bool prefix_caching_;
  std::vector<int> ref_;
  std::vector<BlockHash> hash_;
  std::vector<bool> hashed_;
  std::vector<int> prev_, next_;  // intrusive LRU list of free blocks: head evicted first
  int head_ = kNone, tail_ = kNone;
  int free_count_ = 0;
  std::unordered_map<BlockHash, int> cached_;
};

}  // namespace tidegate::engine

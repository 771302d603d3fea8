#include "engine/model/kv_cache.h"

#include <algorithm>

namespace tidegate::engine {

std::vector<BlockHash> blockHashes(std::span<const std::uint32_t> tokens, int block_size,
                                   std::uint64_t salt) {
  std::vector<BlockHash> out;
  const std::size_t full = tokens.size() / static_cast<std::size_t>(block_size);
  out.reserve(full);
  // FNV-1a over 32-bit token ids, chained through the previous block's hash.
  std::uint64_t h = 1469598103934665603ull ^ salt;
  for (std::size_t b = 0; b < full; ++b) {
    for (int i = 0; i < block_size; ++i) {
      h ^= tokens[b * block_size + i];
      h *= 1099511628211ull;
    }
    // Mix so that chained hashes of different lengths do not collide trivially.
    h ^= h >> 29;
    out.push_back(h);
  }
  return out;
}

KvCache::KvCache(int num_blocks, int block_size, bool prefix_caching)
    : block_size_(block_size),
      prefix_caching_(prefix_caching),
      ref_(num_blocks, 0),
      hash_(num_blocks, 0),
      hashed_(num_blocks, false),
      prev_(num_blocks, kNone),
      next_(num_blocks, kNone) {
  for (int b = 0; b < num_blocks; ++b) pushFree(b);
}

void KvCache::pushFree(int b) {
  prev_[b] = tail_;
  next_[b] = kNone;
  if (tail_ != kNone) {
    next_[tail_] = b;
  } else {
    head_ = b;
  }
  tail_ = b;
  ++free_count_;
}

void KvCache::pushFreeFront(int b) {
  prev_[b] = kNone;
  next_[b] = head_;
  if (head_ != kNone) {
    prev_[head_] = b;
  } else {
    tail_ = b;
  }
  head_ = b;
  ++free_count_;
}

void KvCache::unlinkFree(int b) {
  if (prev_[b] != kNone) {
    next_[prev_[b]] = next_[b];
  } else {
    head_ = next_[b];
  }
  if (next_[b] != kNone) {
    prev_[next_[b]] = prev_[b];
  } else {
    tail_ = prev_[b];
  }
  prev_[b] = next_[b] = kNone;
  --free_count_;
}

int KvCache::popFree() {
  int b = head_;
  unlinkFree(b);
  if (hashed_[b]) {  // evict: the block's old content is no longer reusable
    auto it = cached_.find(hash_[b]);
    if (it != cached_.end() && it->second == b) cached_.erase(it);
    hashed_[b] = false;
  }
  return b;
}

int KvCache::cachedPrefix(std::span<const BlockHash> hashes) const {
  if (!prefix_caching_) return 0;
  int n = 0;
  for (BlockHash h : hashes) {
    if (!cached_.contains(h)) break;
    ++n;
  }
  return n;
}

bool KvCache::allocate(BlockTable& table, std::span<const BlockHash> hashes, int cached_blocks,
                       long num_tokens) {
  const int reuse = table.blocks.empty() ? cached_blocks : 0;
  const int have = static_cast<int>(table.blocks.size()) + reuse;
  const int need = blocksFor(num_tokens) - have;
  // Cached blocks nobody holds are counted as free; taking them uses up free blocks too.
  int reuse_from_free = 0;
  for (int i = 0; i < reuse; ++i)
    if (ref_[cached_.at(hashes[i])] == 0) ++reuse_from_free;
  if (need > free_count_ - reuse_from_free) return false;
  for (int i = 0; i < reuse; ++i) {
    int b = cached_.at(hashes[i]);
    if (ref_[b]++ == 0) unlinkFree(b);
    table.blocks.push_back(b);
  }
  if (reuse > 0) table.committed = reuse;
  for (int i = 0; i < need; ++i) {
    int b = popFree();
    ref_[b] = 1;
    table.blocks.push_back(b);
  }
  return true;
}

void KvCache::commit(BlockTable& table, std::span<const BlockHash> hashes, long computed_tokens) {
  if (!prefix_caching_) return;
  const int full = static_cast<int>(computed_tokens / block_size_);
  const int limit =
      std::min<int>({full, static_cast<int>(table.blocks.size()), static_cast<int>(hashes.size())});
  for (int i = table.committed; i < limit; ++i) {
    int b = table.blocks[i];
    // If another sequence already registered this content, keep theirs; ours stays private.
    if (!hashed_[b] && !cached_.contains(hashes[i])) {
      hash_[b] = hashes[i];
      hashed_[b] = true;
      cached_.emplace(hashes[i], b);
    }
  }
  if (limit > table.committed) table.committed = limit;
}

void KvCache::release(BlockTable& table) {
  // Reverse order: a sequence's last blocks are evicted before its prefix, which is likelier to
  // be shared.
  for (auto it = table.blocks.rbegin(); it != table.blocks.rend(); ++it) {
    int b = *it;
    if (--ref_[b] != 0) continue;
    // Blocks without reusable content go first in line for reuse; cached ones wait in LRU order.
    if (hashed_[b]) {
      pushFree(b);
    } else {
      pushFreeFront(b);
    }
  }
  table.blocks.clear();
  table.committed = 0;
}

}  // namespace tidegate::engine

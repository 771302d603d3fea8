#pragma once
// Scheduler: vLLM-style continuous batching over the simulated GPU.
//
// Sequences wait in a FCFS queue (bounded: add() refuses past max_waiting). Each step, the
// scheduler (1) gives every running sequence its next tokens — one for a decoding sequence, a
// chunk of the prompt for a prefilling one (chunked prefill, within max_num_batched_tokens) —
// preempting the newest running sequences when the KV cache runs out (recompute: their blocks
// are freed and they go back to the front of the queue); then (2), if nothing was preempted,
// admits waiting sequences while there is room (max_num_seqs, token budget, KV blocks, a LoRA
// slot). A waiting sequence whose adapter cannot get a slot is skipped, not blocking the queue;
// a lack of KV blocks stops admission. Prefix-cache hits skip the cached part of the prompt.
//
// The caller drives time: schedule(now) returns the next step and its duration; when that time
// has passed, complete(now) applies it and reports the tokens produced. Between the two calls
// abort() may remove sequences (a client left); their blocks are freed at once.
//
// Pure: no clock, no I/O, single-threaded. Randomness (step-time noise) comes from `seed`.

#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/model/kv_cache.h"
#include "engine/model/lora_slots.h"
#include "engine/model/perf_model.h"

namespace tidegate::engine {

using SeqId = std::uint64_t;

struct SchedulerConfig {
  int max_num_seqs = 256;             // default 256 running sequences (vLLM's default)
  int max_num_batched_tokens = 2048;  // default 2048 tokens per step (vLLM V1, online serving)
  int max_waiting = 4096;             // default 4096 queued sequences; beyond, add() refuses
  int max_model_len = 8192;           // default 8192 tokens of prompt + output
  int block_size = 16;                // default 16 tokens per KV block
  int kv_blocks = 2048;               // default 2048 blocks = 32,768 tokens (8B FP16 on 24 GB)
  bool prefix_caching = true;         // default on, as in vLLM V1
  int max_loras = 1;                  // default 1 adapter resident at once (vLLM's default)
  PerfParams perf;
  std::uint64_t seed = 0;
};

struct SeqRequest {
  // Token ids of the prompt followed by the output the sequence will produce
  // (size() == prompt_len + output_len); ids make prefix-cache hashes, including of outputs.
  std::vector<std::uint32_t> tokens;
  int prompt_len = 0;
  int output_len = 1;  // >= 1
  std::string lora;    // adapter name; empty for the base model
};

struct ScheduledSeq {
  SeqId id;
  int num_new_tokens;
};

struct Step {
  std::vector<ScheduledSeq> seqs;
  std::vector<SeqId> preempted;  // preempted while planning this step
  StepShape shape;
  double duration = 0;  // seconds, noise included
  bool empty() const { return seqs.empty(); }
};

struct TokenEvent {
  SeqId id;
  int index;      // 0-based index of the produced output token
  bool finished;  // the sequence produced its last token and left the engine
};

struct SchedulerStats {
  std::uint64_t prefix_queries = 0;  // prompt tokens looked up in the prefix cache
  std::uint64_t prefix_hits = 0;     // of those, tokens found cached
  std::uint64_t preemptions = 0;
  std::uint64_t steps = 0;
  std::uint64_t lora_loads = 0;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerConfig& config);

  enum class Admit { kOk, kQueueFull, kTooLong, kTooLarge, kLoraDisabled };
  // Queues a sequence. kTooLong: prompt + output exceed max_model_len; kTooLarge: it could never
  // fit in the whole KV cache; kLoraDisabled: an adapter was named with max_loras == 0.
  Admit add(SeqId id, SeqRequest request);
  // Removes a sequence wherever it is and frees its blocks and slot. False if unknown.
  bool abort(SeqId id);

  // Frees `name`'s LoRA slot if no running sequence uses it (the adapter was unloaded).
  void evictAdapter(const std::string& name) { lora_.evict(name); }

  // Plans the next step. An empty step means there is nothing to run.
  // REQUIRES: the previous step was completed.
  const Step& schedule();
  // Applies the planned step: advances every scheduled sequence and appends the produced tokens
  // to `out` in scheduling order. Sequences aborted since schedule() are skipped.
  void complete(std::vector<TokenEvent>& out);

  std::size_t numRunning() const { return running_.size(); }
  std::size_t numWaiting() const { return waiting_.size(); }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  const KvCache& kv() const { return kv_; }
  const LoraSlots& lora() const { return lora_; }
  const SchedulerStats& stats() const { return stats_; }
  const SchedulerConfig& config() const { return config_; }
  // Adapters named by waiting sequences (deduplicated, in queue order).
  std::vector<std::string> waitingAdapters() const;

 private:
  struct Seq {
    SeqRequest req;
    std::vector<BlockHash> hashes;
    BlockTable table;
    long computed = 0;  // tokens whose KV is in the cache
    int generated = 0;  // output tokens produced so far
    bool running = false;
    long known() const { return req.prompt_len + generated; }
  };
  void preempt(SeqId id);
  bool admit(SeqId id, Seq& s, long& budget);
  void finish(SeqId id, Seq& s);
  void dropFromRunning(SeqId id);

  SchedulerConfig config_;
  KvCache kv_;
  LoraSlots lora_;
  std::unordered_map<SeqId, Seq> seqs_;
  std::deque<SeqId> waiting_;
  std::vector<SeqId> running_;  // in admission order; the last is preempted first
  Step step_;
  SchedulerStats stats_;
  std::mt19937_64 rng_;
  std::normal_distribution<double> noise_{0.0, 1.0};
};

}  // namespace tidegate::engine

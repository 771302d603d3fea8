#include "engine/model/scheduler.h"

#include <algorithm>
#include <functional>

namespace tidegate::engine {

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(config),
      kv_(config.kv_blocks, config.block_size, config.prefix_caching),
      lora_(config.max_loras),
      rng_(config.seed) {}

Scheduler::Admit Scheduler::add(SeqId id, SeqRequest request) {
  const long total = static_cast<long>(request.prompt_len) + request.output_len;
  if (total > config_.max_model_len) return Admit::kTooLong;
  // The final output token is never fed back, so the KV cache must hold total - 1 tokens.
  if (kv_.blocksFor(total - 1) > kv_.numBlocks()) return Admit::kTooLarge;
  if (!request.lora.empty() && config_.max_loras == 0) return Admit::kLoraDisabled;
  if (waiting_.size() >= static_cast<std::size_t>(config_.max_waiting)) return Admit::kQueueFull;
  Seq s;
  // Adapters salt the hashes: the same text under another adapter has other KV values.
  const std::uint64_t salt = request.lora.empty() ? 0 : std::hash<std::string>{}(request.lora) | 1;
  s.hashes = blockHashes(request.tokens, config_.block_size, salt);
  s.req = std::move(request);
  seqs_.emplace(id, std::move(s));
  waiting_.push_back(id);
  return Admit::kOk;
}

bool Scheduler::abort(SeqId id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return false;
  Seq& s = it->second;
  if (s.running) {
    dropFromRunning(id);
    if (!s.req.lora.empty()) lora_.release(s.req.lora);
  } else {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), id));
  }
  kv_.release(s.table);
  seqs_.erase(it);
  return true;
}

void Scheduler::dropFromRunning(SeqId id) {
  running_.erase(std::find(running_.begin(), running_.end(), id));
}

void Scheduler::preempt(SeqId id) {
  Seq& s = seqs_.at(id);
  dropFromRunning(id);
  if (!s.req.lora.empty()) lora_.release(s.req.lora);
  kv_.release(s.table);
  s.computed = 0;  // recompute mode: the prompt and the output so far are prefilled again
  s.running = false;
  waiting_.push_front(id);
  step_.preempted.push_back(id);
  ++stats_.preemptions;
}

bool Scheduler::admit(SeqId id, Seq& s, long& budget) {
  // Reuse cached full blocks of what is known so far, leaving at least one token to compute
  // (the step must produce logits for the next token).
  const long known = s.known();
  int cached = 0;
  if (config_.prefix_caching) {
    const long max_blocks = (known - 1) / config_.block_size;
    std::span<const BlockHash> lookup(s.hashes.data(),
                                      std::min<std::size_t>(s.hashes.size(), max_blocks));
    cached = kv_.cachedPrefix(lookup);
  }
  const long computed = static_cast<long>(cached) * config_.block_size;
  const long num_new = std::min(known - computed, budget);
  if (!kv_.allocate(s.table, s.hashes, cached, computed + num_new)) return false;
  stats_.prefix_queries += static_cast<std::uint64_t>(known);
  stats_.prefix_hits += static_cast<std::uint64_t>(computed);
  if (!s.req.lora.empty() && lora_.acquire(s.req.lora)) {
    ++step_.shape.loras_loaded;
    ++stats_.lora_loads;
  }
  s.computed = computed;
  s.running = true;
  running_.push_back(id);
  step_.seqs.push_back({id, static_cast<int>(num_new)});
  step_.shape.prefill_tokens += num_new;
  step_.shape.prefill_pairs += prefillPairs(computed, num_new);
  budget -= num_new;
  return true;
}

const Step& Scheduler::schedule() {
  step_ = Step{};
  long budget = config_.max_num_batched_tokens;

  // 1. Running sequences, oldest first.
  for (std::size_t i = 0; i < running_.size() && budget > 0;) {
    const SeqId id = running_[i];
    Seq& s = seqs_.at(id);
    const long num_new = std::min(s.known() - s.computed, budget);
    bool preempted_self = false;
    while (!kv_.allocate(s.table, s.hashes, 0, s.computed + num_new)) {
      const SeqId victim = running_.back();
      preempt(victim);
      if (victim == id) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) break;
    step_.seqs.push_back({id, static_cast<int>(num_new)});
    if (s.computed >= s.req.prompt_len) {
      ++step_.shape.decode_seqs;
      step_.shape.context_tokens += s.computed;
    } else {
      step_.shape.prefill_tokens += num_new;
      step_.shape.prefill_pairs += prefillPairs(s.computed, num_new);
    }
    budget -= num_new;
    ++i;
  }

  // 2. Waiting sequences, FCFS, unless memory pressure forced a preemption in this step.
  if (step_.preempted.empty()) {
    for (auto it = waiting_.begin();
         it != waiting_.end() && budget > 0 &&
         running_.size() < static_cast<std::size_t>(config_.max_num_seqs);) {
      const SeqId id = *it;
      Seq& s = seqs_.at(id);
      if (!s.req.lora.empty() && !lora_.canAcquire(s.req.lora)) {
        ++it;  // every slot is pinned by other adapters: let others pass
        continue;
      }
      if (!admit(id, s, budget)) break;  // out of KV blocks
      it = waiting_.erase(it);
    }
  }

  step_.duration = stepDuration(config_.perf, step_.shape);
  if (step_.duration > 0 && config_.perf.noise > 0) {
    step_.duration *= std::max(0.5, 1.0 + config_.perf.noise * noise_(rng_));
  }
  if (!step_.empty()) ++stats_.steps;
  return step_;
}

void Scheduler::complete(std::vector<TokenEvent>& out) {
  for (const auto& sched : step_.seqs) {
    auto it = seqs_.find(sched.id);
    if (it == seqs_.end() || !it->second.running) continue;  // aborted meanwhile
    Seq& s = it->second;
    s.computed += sched.num_new_tokens;
    kv_.commit(s.table, s.hashes, s.computed);
    if (s.computed < s.known()) continue;  // a prefill chunk that did not finish the prompt
    const int index = s.generated++;
    const bool done = s.generated >= s.req.output_len;
    out.push_back({sched.id, index, done});
    if (done) finish(sched.id, s);
  }
  step_.seqs.clear();
}

void Scheduler::finish(SeqId id, Seq& s) {
  dropFromRunning(id);
  if (!s.req.lora.empty()) lora_.release(s.req.lora);
  kv_.release(s.table);
  seqs_.erase(id);
}

std::vector<std::string> Scheduler::waitingAdapters() const {
  std::vector<std::string> out;
  for (SeqId id : waiting_) {
    const auto& name = seqs_.at(id).req.lora;
    if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

}  // namespace tidegate::engine

#include "engine/model/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>

namespace tidegate::engine {
namespace {

SchedulerConfig quiet() {
  SchedulerConfig c;
  c.perf.noise = 0;
  return c;
}

SeqRequest req(int prompt, int output, std::string lora = {}, std::uint32_t base = 0) {
  SeqRequest r;
  r.tokens.resize(static_cast<std::size_t>(prompt + output));
  std::iota(r.tokens.begin(), r.tokens.end(), base);
  r.prompt_len = prompt;
  r.output_len = output;
  r.lora = std::move(lora);
  return r;
}

// Drives a scheduler step by step and records every produced token.
struct Runner {
  explicit Runner(Scheduler& sched) : s(sched) {}
  const Step& schedule() { return s.schedule(); }
  // Completes the planned step; returns its events.
  std::vector<TokenEvent> complete() {
    std::vector<TokenEvent> ev;
    s.complete(ev);
    ++steps;
    for (const auto& e : ev) {
      EXPECT_EQ(e.index, tokens[e.id]) << "tokens arrive in order";
      if (e.index == 0) first_token_step[e.id] = steps;
      ++tokens[e.id];
    }
    return ev;
  }
  void runToCompletion(int max_steps = 100000) {
    while (!s.idle() && steps < max_steps) {
      if (schedule().empty()) break;
      complete();
    }
  }
  Scheduler& s;
  std::map<SeqId, int> tokens;
  std::map<SeqId, int> first_token_step;
  int steps = 0;
};

TEST(Scheduler, BatchesUpToMaxNumSeqs) {
  auto c = quiet();
  c.max_num_seqs = 2;
  Scheduler s(c);
  for (SeqId id = 1; id <= 3; ++id) ASSERT_EQ(s.add(id, req(10, 5)), Scheduler::Admit::kOk);
  Runner r(s);
  const Step& step = r.schedule();
  EXPECT_EQ(step.seqs.size(), 2u);
  EXPECT_EQ(s.numRunning(), 2u);
  EXPECT_EQ(s.numWaiting(), 1u);
  r.complete();
  r.runToCompletion();
  EXPECT_EQ(r.tokens[1], 5);
  EXPECT_EQ(r.tokens[3], 5);
  EXPECT_EQ(r.first_token_step[3], 6);  // the third waits for a free seat
}

TEST(Scheduler, ChunkedPrefillDelaysTheFirstToken) {
  auto c = quiet();
  c.max_num_batched_tokens = 32;
  Scheduler s(c);
  ASSERT_EQ(s.add(1, req(100, 3)), Scheduler::Admit::kOk);
  Runner r(s);
  // Each chunk attends to itself and to the chunks before it: the pairs of the four chunks add
  // up to those of the whole prompt, so chunking costs no more attention than one prefill.
  long cached = 0, pairs = 0;
  for (long chunk : {32, 32, 32, 4}) {
    const Step& step = r.schedule();
    EXPECT_EQ(step.shape.prefill_tokens, chunk);
    EXPECT_EQ(step.shape.prefill_pairs, chunk * cached + chunk * (chunk + 1) / 2);
    cached += chunk;
    pairs += step.shape.prefill_pairs;
    r.complete();
  }
  EXPECT_EQ(pairs, 100 * 101 / 2);
  r.runToCompletion();
  EXPECT_EQ(r.first_token_step[1], 4);  // 32 + 32 + 32 + 4 prompt tokens
  EXPECT_EQ(r.tokens[1], 3);
  EXPECT_EQ(r.steps, 6);  // then one decode step per further token
  EXPECT_EQ(s.kv().usage(), 0);
}

TEST(Scheduler, StepDurationFollowsThePerformanceModel) {
  auto c = quiet();
  Scheduler s(c);
  for (SeqId id = 1; id <= 10; ++id) ASSERT_EQ(s.add(id, req(16, 4)), Scheduler::Admit::kOk);
  const Step& prefill = s.schedule();
  EXPECT_EQ(prefill.shape.prefill_tokens, 160);
  EXPECT_EQ(prefill.shape.prefill_pairs, 10 * (16 * 17 / 2));
  EXPECT_DOUBLE_EQ(prefill.duration, c.perf.step_s + 160 * c.perf.prefill_token_s);
  std::vector<TokenEvent> ev;
  s.complete(ev);
  EXPECT_EQ(ev.size(), 10u);
  const Step& decode = s.schedule();
  EXPECT_EQ(decode.shape.decode_seqs, 10);
  EXPECT_EQ(decode.shape.context_tokens, 160);
  EXPECT_DOUBLE_EQ(decode.duration,
                   c.perf.step_s + 10 * c.perf.decode_seq_s + 160 * c.perf.attention_token_s);
  EXPECT_GT(decode.duration, stepDuration(c.perf, {.decode_seqs = 1, .context_tokens = 16}));
}

TEST(Scheduler, PreemptsNewestWhenKvRunsOutAndStillFinishesEverything) {
  auto c = quiet();
  c.block_size = 4;
  c.kv_blocks = 6;  // 24 tokens for two sequences that grow to 15 tokens each
  c.prefix_caching = false;
  Scheduler s(c);
  ASSERT_EQ(s.add(1, req(4, 12)), Scheduler::Admit::kOk);
  ASSERT_EQ(s.add(2, req(4, 12)), Scheduler::Admit::kOk);
  Runner r(s);
  r.runToCompletion();
  EXPECT_EQ(r.tokens[1], 12);
  EXPECT_EQ(r.tokens[2], 12);
  EXPECT_GE(s.stats().preemptions, 1u);
  EXPECT_LT(r.first_token_step[1], 3);
  EXPECT_EQ(s.kv().freeBlocks(), 6);
}

TEST(Scheduler, RefusesWhatCanNeverRun) {
  auto c = quiet();
  c.max_model_len = 100;
  c.block_size = 16;
  c.kv_blocks = 4;
  c.max_waiting = 1;
  Scheduler s(c);
  EXPECT_EQ(s.add(1, req(90, 11)), Scheduler::Admit::kTooLong);
  EXPECT_EQ(s.add(2, req(60, 20)), Scheduler::Admit::kTooLarge);  // 79 tokens > 64 in cache
  EXPECT_EQ(s.add(3, req(10, 10)), Scheduler::Admit::kOk);
  EXPECT_EQ(s.add(4, req(10, 10)), Scheduler::Admit::kQueueFull);
  c.max_loras = 0;
  Scheduler nolora(c);
  EXPECT_EQ(nolora.add(1, req(10, 10, "a")), Scheduler::Admit::kLoraDisabled);
}

TEST(Scheduler, PrefixCacheHitsSkipCachedPrompt) {
  auto c = quiet();
  Scheduler s(c);
  Runner r(s);
  ASSERT_EQ(s.add(1, req(64, 2)), Scheduler::Admit::kOk);
  r.runToCompletion();
  EXPECT_EQ(s.stats().prefix_hits, 0u);
  ASSERT_EQ(s.add(2, req(64, 2)), Scheduler::Admit::kOk);
  const Step& step = r.schedule();
  // Three of four prompt blocks are cached; the last is recomputed to produce logits.
  EXPECT_EQ(step.shape.prefill_tokens, 16);
  EXPECT_EQ(step.shape.prefill_pairs, 16 * 48 + 16 * 17 / 2);  // the chunk attends to the cache
  EXPECT_EQ(s.stats().prefix_hits, 48u);
  EXPECT_EQ(s.stats().prefix_queries, 128u);
  ASSERT_EQ(r.complete().size(), 1u);  // first token right after the short prefill
  // The same text under a LoRA adapter shares nothing with the base model.
  ASSERT_EQ(s.add(3, req(64, 2, "a")), Scheduler::Admit::kOk);
  r.runToCompletion();
  EXPECT_EQ(s.stats().prefix_hits, 48u);
}

TEST(Scheduler, LoraSequencesWaitForASlotWithoutBlockingOthers) {
  auto c = quiet();
  c.max_loras = 1;
  Scheduler s(c);
  ASSERT_EQ(s.add(1, req(8, 3, "a")), Scheduler::Admit::kOk);
  ASSERT_EQ(s.add(2, req(8, 3, "b")), Scheduler::Admit::kOk);
  ASSERT_EQ(s.add(3, req(8, 3, "a")), Scheduler::Admit::kOk);
  ASSERT_EQ(s.add(4, req(8, 3)), Scheduler::Admit::kOk);
  Runner r(s);
  const Step& step = r.schedule();
  std::vector<SeqId> ids;
  for (const auto& x : step.seqs) ids.push_back(x.id);
  EXPECT_EQ(ids, (std::vector<SeqId>{1, 3, 4}));  // b skipped, not blocking 3 and 4
  EXPECT_EQ(step.shape.loras_loaded, 1);
  EXPECT_EQ(s.waitingAdapters(), std::vector<std::string>{"b"});
  EXPECT_EQ(s.lora().running(), std::vector<std::string>{"a"});
  r.complete();
  r.runToCompletion();
  EXPECT_EQ(r.tokens[2], 3);
  EXPECT_EQ(r.first_token_step[2], 4);  // b ran only once a's sequences left the slot
  EXPECT_EQ(s.stats().lora_loads, 2u);
}

TEST(Scheduler, AbortFreesBlocksAtOnce) {
  auto c = quiet();
  Scheduler s(c);
  ASSERT_EQ(s.add(1, req(100, 50)), Scheduler::Admit::kOk);
  ASSERT_EQ(s.add(2, req(10, 5)), Scheduler::Admit::kOk);
  s.schedule();
  EXPECT_GT(s.kv().usage(), 0);
  EXPECT_TRUE(s.abort(1));
  EXPECT_TRUE(s.abort(2));
  EXPECT_FALSE(s.abort(2));
  EXPECT_EQ(s.kv().usage(), 0);
  std::vector<TokenEvent> ev;
  s.complete(ev);  // the in-flight step produces nothing for aborted sequences
  EXPECT_TRUE(ev.empty());
  EXPECT_TRUE(s.idle());
}

TEST(Scheduler, SeededNoiseIsReproducible) {
  auto run = [](std::uint64_t seed) {
    SchedulerConfig c;
    c.perf.noise = 0.1;
    c.seed = seed;
    Scheduler s(c);
    for (SeqId id = 1; id <= 4; ++id) (void)s.add(id, req(32, 20));
    std::vector<double> d;
    std::vector<TokenEvent> ev;
    while (!s.idle()) {
      d.push_back(s.schedule().duration);
      s.complete(ev);
    }
    return d;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

}  // namespace
}  // namespace tidegate::engine

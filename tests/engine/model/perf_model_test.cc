#include "engine/model/perf_model.h"

#include <gtest/gtest.h>

#include <cmath>

namespace tidegate::engine {
namespace {

// Round numbers, so each expected duration is plain arithmetic.
PerfParams params(double overlap, double floor) {
  return {.step_s = 0.010,
          .prefill_token_s = 0.001,
          .prefill_pair_s = 0.0001,
          .weights_overlap = overlap,
          .prefill_floor_s = floor,
          .decode_seq_s = 0.002,
          .attention_token_s = 0.00001,
          .lora_load_s = 0.5};
}

TEST(PerfModel, DefaultsAddUpEveryTerm) {
  const PerfParams p;  // the A10 defaults: no pair cost, no overlap, no floor
  const StepShape s{.prefill_tokens = 100,
                    .prefill_pairs = 5050,
                    .decode_seqs = 8,
                    .context_tokens = 4000,
                    .loras_loaded = 1};
  EXPECT_DOUBLE_EQ(stepDuration(p, s), p.step_s + 100 * p.prefill_token_s + 8 * p.decode_seq_s +
                                           4000 * p.attention_token_s + p.lora_load_s);
}

TEST(PerfModel, StepDurationTable) {
  struct Case {
    const char* what;
    double overlap, floor;
    StepShape shape;
    double want;
  };
  const Case cases[] = {
      {"empty step", 1, 0.05, {}, 0},
      {"decode: weights + per sequence + KV reads",
       1,
       0.05,
       {.decode_seqs = 4, .context_tokens = 1000},
       0.010 + 0.008 + 0.010},
      {"prefill, no overlap: weights + prompt",
       0,
       0,
       {.prefill_tokens = 20, .prefill_pairs = 210},
       0.010 + 0.020 + 0.021},
      {"prefill, full overlap: the longer of weights and prompt",
       1,
       0,
       {.prefill_tokens = 20, .prefill_pairs = 210},
       0.041},
      {"prefill, half overlap: half the shorter hides",
       0.5,
       0,
       {.prefill_tokens = 20, .prefill_pairs = 210},
       0.051 - 0.005},
      {"short prefill, full overlap: the weights read is the longer",
       1,
       0,
       {.prefill_tokens = 2, .prefill_pairs = 3},
       0.010},
      {"short prefill: the eager floor", 1, 0.05, {.prefill_tokens = 2, .prefill_pairs = 3}, 0.05},
      {"long prefill: above the floor",
       1,
       0.05,
       {.prefill_tokens = 40, .prefill_pairs = 820},
       0.040 + 0.082},
      {"decode only: no floor", 1, 0.05, {.decode_seqs = 1, .context_tokens = 100}, 0.013},
      {"mixed: one pass, decode costs on the prompt's",
       1,
       0.05,
       {.prefill_tokens = 40, .prefill_pairs = 820, .decode_seqs = 4, .context_tokens = 1000},
       0.122 + 0.008 + 0.010},
      {"mixed, small: the floor still holds",
       1,
       0.05,
       {.prefill_tokens = 1, .prefill_pairs = 101, .decode_seqs = 1, .context_tokens = 100},
       0.05},
      {"adapter load: on top of the floor",
       1,
       0.05,
       {.prefill_tokens = 2, .prefill_pairs = 3, .loras_loaded = 1},
       0.55},
  };
  for (const auto& c : cases) {
    EXPECT_NEAR(stepDuration(params(c.overlap, c.floor), c.shape), c.want, 1e-12) << c.what;
  }
}

// A chunked prefill mixed with decodes is never cheaper than either part run alone, whatever
// the overlap: the weights read hides at most under the prompt's compute.
TEST(PerfModel, MixedStepCostsAtLeastEachPart) {
  const StepShape prompt{.prefill_tokens = 512, .prefill_pairs = prefillPairs(1024, 512)};
  const StepShape decode{.decode_seqs = 64, .context_tokens = 64 * 2048};
  const StepShape mixed{.prefill_tokens = 512,
                        .prefill_pairs = prefillPairs(1024, 512),
                        .decode_seqs = 64,
                        .context_tokens = 64 * 2048};
  for (double overlap : {0.0, 0.3, 1.0}) {
    const PerfParams p = params(overlap, 0.05);
    EXPECT_GE(stepDuration(p, mixed), stepDuration(p, prompt)) << overlap;
    EXPECT_GE(stepDuration(p, mixed), stepDuration(p, decode)) << overlap;
  }
}

TEST(PerfModel, PrefillPairsOfChunksAddUpToTheWholePrompt) {
  EXPECT_EQ(prefillPairs(0, 1), 1);  // a token attends to itself
  EXPECT_EQ(prefillPairs(0, 8192), 8192L * 8193 / 2);
  EXPECT_EQ(prefillPairs(0, 3000) + prefillPairs(3000, 3000) + prefillPairs(6000, 2192),
            prefillPairs(0, 8192));
  EXPECT_EQ(prefillPairs(100, 1), 101);  // a decode-sized chunk attends to the cache and itself
}

TEST(PerfModel, ScalingDividesEveryCost) {
  const PerfParams p = params(0.5, 0.05);
  const auto half = p.scaled(2);
  EXPECT_DOUBLE_EQ(half.step_s, p.step_s / 2);
  EXPECT_DOUBLE_EQ(half.prefill_token_s, p.prefill_token_s / 2);
  EXPECT_DOUBLE_EQ(half.prefill_pair_s, p.prefill_pair_s / 2);
  EXPECT_DOUBLE_EQ(half.prefill_floor_s, p.prefill_floor_s / 2);
  EXPECT_DOUBLE_EQ(half.decode_seq_s, p.decode_seq_s / 2);
  EXPECT_DOUBLE_EQ(half.attention_token_s, p.attention_token_s / 2);
  EXPECT_DOUBLE_EQ(half.lora_load_s, p.lora_load_s / 2);
  EXPECT_EQ(half.weights_overlap, p.weights_overlap);  // a share, not a duration
  EXPECT_EQ(half.noise, p.noise);
  const StepShape s{.prefill_tokens = 1000, .prefill_pairs = 500500, .decode_seqs = 10};
  EXPECT_DOUBLE_EQ(stepDuration(half, s), stepDuration(p, s) / 2);
  EXPECT_EQ(stepDuration(p.scaled(HUGE_VAL), s), 0);
  EXPECT_EQ(stepDuration(p, {}), 0);  // an empty step costs nothing
}

}  // namespace
}  // namespace tidegate::engine

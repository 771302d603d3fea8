#include "engine/model/profiles.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace tidegate::engine {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const fs::path kDataDir = fs::path(TIDEGATE_SOURCE_DIR) / "data/profiles";

json::object readJson(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str()).as_object();
}

double number(const json::value& v) { return v.to_number<double>(); }

// Every measured step of a data file against the profile fitted to it: a decode step of `batch`
// sequences over `context` tokens each, a prefill of `tokens` tokens from an empty cache.
void expectReproducesEveryPoint(const GpuProfile& p, const json::object& data) {
  constexpr double kTolerance = 0.10;
  int points = 0;
  for (const auto& [batch, row] : data.at("decode_ms").as_object()) {
    for (const auto& [context, ms] : row.as_object()) {
      const long b = std::stol(std::string(batch));
      const long c = std::stol(std::string(context));
      const double model = stepDuration(p.perf, {.decode_seqs = b, .context_tokens = b * c});
      const double measured = number(ms) / 1e3;
      EXPECT_LE(std::abs(model / measured - 1), kTolerance)
          << p.name << " decode batch " << b << " context " << c << ": model " << model * 1e3
          << " ms, measured " << measured * 1e3 << " ms";
      ++points;
    }
  }
  for (const auto& [tokens, ms] : data.at("prefill_ms").as_object()) {
    const long n = std::stol(std::string(tokens));
    const double model =
        stepDuration(p.perf, {.prefill_tokens = n, .prefill_pairs = prefillPairs(0, n)});
    const double measured = number(ms) / 1e3;
    EXPECT_LE(std::abs(model / measured - 1), kTolerance)
        << p.name << " prefill " << n << ": model " << model * 1e3 << " ms, measured "
        << measured * 1e3 << " ms";
    ++points;
  }
  EXPECT_GT(points, 0) << p.name;
}

TEST(GpuProfiles, FittedProfilesReproduceEveryMeasuredPointWithinTenPercent) {
  int fitted = 0;
  for (const auto& p : profiles()) {
    if (p.source.empty()) continue;
    SCOPED_TRACE(std::string(p.source));
    const fs::path path = kDataDir / p.source;
    ASSERT_TRUE(fs::exists(path)) << path;
    expectReproducesEveryPoint(p, readJson(path));
    ++fitted;
  }
  EXPECT_GE(fitted, 4);
}

TEST(GpuProfiles, EveryDataFileHasAProfile) {
  std::set<std::string> sources;
  for (const auto& p : profiles()) sources.emplace(p.source);
  int files = 0;
  for (const auto& e : fs::directory_iterator(kDataDir)) {
    if (e.path().extension() != ".json") continue;
    EXPECT_TRUE(sources.contains(e.path().filename().string())) << e.path();
    ++files;
  }
  EXPECT_EQ(files, 4);
}

TEST(GpuProfiles, DefaultIsTheA10AndEqualsTheDefaults) {
  ASSERT_FALSE(profiles().empty());
  EXPECT_EQ(profiles().front().name, kDefaultProfile);
  auto p = findProfile("a10-llama-3.1-8b");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(*p, &profiles().front());

  SchedulerConfig config;
  config.seed = 7;
  config.max_model_len = 4096;
  applyProfile(**p, config);
  const SchedulerConfig defaults;
  const PerfParams& perf = config.perf;
  const PerfParams& want = defaults.perf;
  EXPECT_EQ(perf.step_s, want.step_s);
  EXPECT_EQ(perf.prefill_token_s, want.prefill_token_s);
  EXPECT_EQ(perf.prefill_pair_s, 0);
  EXPECT_EQ(perf.weights_overlap, 0);
  EXPECT_EQ(perf.prefill_floor_s, 0);
  EXPECT_EQ(perf.decode_seq_s, want.decode_seq_s);
  EXPECT_EQ(perf.attention_token_s, want.attention_token_s);
  EXPECT_EQ(perf.lora_load_s, want.lora_load_s);
  EXPECT_EQ(perf.noise, want.noise);
  EXPECT_EQ(config.kv_blocks, defaults.kv_blocks);
  EXPECT_EQ(config.max_num_seqs, defaults.max_num_seqs);
  EXPECT_EQ(config.max_num_batched_tokens, defaults.max_num_batched_tokens);
  // What a profile does not name stays as it was.
  EXPECT_EQ(config.seed, 7u);
  EXPECT_EQ(config.max_model_len, 4096);
}

TEST(GpuProfiles, ApplySetsThePerfModelAndGpuSizes) {
  auto p = findProfile("h100-llama-3.1-8b");
  ASSERT_TRUE(p.ok()) << p.error().message;
  SchedulerConfig config;
  applyProfile(**p, config);
  EXPECT_EQ(config.perf.step_s, (*p)->perf.step_s);
  EXPECT_EQ(config.perf.prefill_floor_s, (*p)->perf.prefill_floor_s);
  EXPECT_EQ(config.kv_blocks, (*p)->kv_blocks);
  EXPECT_EQ(config.max_num_seqs, 1024);
  EXPECT_EQ(config.max_num_batched_tokens, 8192);
  EXPECT_EQ(config.block_size, SchedulerConfig{}.block_size);
}

TEST(GpuProfiles, UnknownNameIsAnErrorListingTheKnownNames) {
  auto p = findProfile("h100");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("'h100'"), std::string::npos) << p.error().message;
  for (const auto& known : profiles()) {
    EXPECT_NE(p.error().message.find(known.name), std::string::npos) << p.error().message;
  }
}

TEST(GpuProfiles, NamesAreUniqueAndEveryProfileIsComplete) {
  std::set<std::string_view> names;
  for (const auto& p : profiles()) {
    EXPECT_TRUE(names.insert(p.name).second) << p.name;
    EXPECT_FALSE(p.gpu.empty()) << p.name;
    EXPECT_FALSE(p.model.empty()) << p.name;
    EXPECT_GT(p.kv_blocks, 0) << p.name;
    EXPECT_GT(p.max_num_seqs, 0) << p.name;
    EXPECT_GT(p.max_num_batched_tokens, 0) << p.name;
    EXPECT_GT(p.load_s, 0) << p.name;
    EXPECT_GE(p.perf.weights_overlap, 0) << p.name;
    EXPECT_LE(p.perf.weights_overlap, 1) << p.name;
    auto found = findProfile(p.name);
    ASSERT_TRUE(found.ok()) << p.name;
    EXPECT_EQ(*found, &p);
  }
}

// More memory per GPU and a smaller model leave more room for KV blocks; a model's blocks hold the
// same bytes, so the ordering is a check on the memory arithmetic.
TEST(GpuProfiles, KvBlocksFollowTheMemoryLeftAfterWeights) {
  auto blocks = [](std::string_view name) {
    auto p = findProfile(name);
    return p.ok() ? (*p)->kv_blocks : 0;
  };
  EXPECT_GT(blocks("h100-llama-3.1-8b"), blocks("a10-llama-3.1-8b"));
  EXPECT_GT(blocks("h200-llama-3.1-8b"), blocks("h100-llama-3.1-8b"));
  EXPECT_GT(blocks("h200-llama-3.2-1b"), blocks("h100-llama-3.2-1b"));
  // A 1B block (32 KiB per token) is a quarter of an 8B one (128 KiB), and 1B weights are smaller.
  EXPECT_GT(blocks("h100-llama-3.2-1b"), 4 * blocks("h100-llama-3.1-8b"));
}

}  // namespace
}  // namespace tidegate::engine

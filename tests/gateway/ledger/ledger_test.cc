#include "gateway/ledger/ledger.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/crypto.h"
#include "gateway/ledger/cost.h"

namespace tidegate::gateway {
namespace {

std::string tempDb() {
  auto p = std::filesystem::temp_directory_path() /
           ("tidegate-ledger-" + std::to_string(::getpid()) + "-" + crypto::randomHex(4) + ".db");
  return p.string();
}

UsageRecord record(double t, const std::string& key, const std::string& model, long p, long c,
                   int status = 200, double cost = 0) {
  UsageRecord r;
  r.time = t;
  r.key_id = key;
  r.plan = key == "a" ? "free" : "pro";
  r.model = model;
  r.pool = "pool";
  r.prompt_tokens = p;
  r.completion_tokens = c;
  r.status = status;
  r.cost = cost;
  return r;
}

TEST(Ledger, StopCommitsEverythingAndTotalsGroup) {
  const auto path = tempDb();
  {
    auto l = Ledger::open(path, 0.5);
    ASSERT_TRUE(l.ok()) << l.error().message;
    for (int i = 0; i < 1000; ++i)
      (*l)->append(record(100 + i, i % 2 ? "a" : "b", i % 4 < 2 ? "m1" : "m2", 10, 5,
                          i % 10 == 0 ? 429 : 200, 0.001));
    (*l)->stop();  // before the first interval ends: everything must still be there
    EXPECT_EQ((*l)->written(), 1000u);
  }
  auto l = Ledger::open(path, 0.5);
  ASSERT_TRUE(l.ok());
  auto by_key = (*l)->totals(0, 1e12, "key");
  ASSERT_TRUE(by_key.ok()) << by_key.error().message;
  ASSERT_EQ(by_key->size(), 2u);
  EXPECT_EQ((*by_key)[0].group, "a");
  EXPECT_EQ((*by_key)[0].requests, 500);
  EXPECT_EQ((*by_key)[0].prompt_tokens, 5000);
  EXPECT_EQ((*by_key)[0].errors + (*by_key)[1].errors, 100);
  EXPECT_NEAR((*by_key)[0].cost, 0.5, 1e-9);
  EXPECT_NEAR((*by_key)[0].costPerMillionTokens(), 0.5 / 7500 * 1e6, 1e-6);
  auto window = (*l)->totals(100, 200, "model");  // the first 100 records
  ASSERT_TRUE(window.ok());
  EXPECT_EQ((*window)[0].requests + (*window)[1].requests, 100);
  EXPECT_FALSE((*l)->totals(0, 1, "colour").ok());
  std::filesystem::remove(path);
}

TEST(Ledger, RecordsReachTheDiskWithinTheFlushInterval) {
  const auto path = tempDb();
  auto l = Ledger::open(path, 0.05);
  ASSERT_TRUE(l.ok());
  (*l)->append(record(1, "a", "m", 1, 1));
  // Another connection (as after a crash) sees the record once the writer committed it.
  for (int i = 0; i < 200 && (*l)->written() == 0; ++i) usleep(10000);
  auto other = Ledger::open(path, 1);
  ASSERT_TRUE(other.ok());
  auto t = (*other)->totals(0, 10, "key");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 1u);
  EXPECT_EQ((*t)[0].requests, 1);
  std::filesystem::remove(path);
}

TEST(Ledger, KeepsCreatedKeysAsHashes) {
  const auto path = tempDb();
  {
    auto l = Ledger::open(path, 1);
    ASSERT_TRUE(l.ok());
    admission::KeyRecord k{"key_1", "ci", "pro", crypto::sha256("sk-secret"), 5.0, 2, true};
    const AuditEntry why{1, "ops", "127.0.0.1:5", "abcd", "key.create", "key_1", "plan pro"};
    ASSERT_TRUE((*l)->saveKey(k, why).ok());
    ASSERT_TRUE(
        (*l)->saveKey({"key_2", "x", "free", crypto::sha256("sk-2"), {}, 3, true}, why).ok());
    ASSERT_TRUE((*l)->deleteKey("key_2", why).ok());
  }
  auto l = Ledger::open(path, 1);
  auto keys = (*l)->loadKeys();
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].digest, crypto::sha256("sk-secret"));
  EXPECT_EQ((*keys)[0].expires, 5.0);
  std::filesystem::remove(path);
}

TEST(Ledger, EveryKeyChangeHasItsAuditEntryNewestFirst) {
  const auto path = tempDb();
  auto l = Ledger::open(path, 1);
  ASSERT_TRUE(l.ok());
  admission::KeyRecord k{"key_1", "ci", "pro", crypto::sha256("sk-secret"), {}, 2, true};
  ASSERT_TRUE(
      (*l)->saveKey(k, {10, "ops", "127.0.0.1:5", "abcd", "key.create", "key_1", "pro"}).ok());
  ASSERT_TRUE((*l)->deleteKey("key_1", {20, "bob", "", "abcd", "key.revoke", "key_1", ""}).ok());
  ASSERT_TRUE((*l)->appendAudit({30, "reload", "", "", "config.reload", "f.yaml", "sha"}).ok());
  auto all = (*l)->audit(0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].action, "config.reload");
  EXPECT_EQ((*all)[1].actor, "bob");
  EXPECT_EQ((*all)[2].remote, "127.0.0.1:5");
  EXPECT_EQ((*all)[2].detail, "pro");
  auto recent = (*l)->audit(15, 1);  // since and limit
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 1u);
  EXPECT_EQ((*recent)[0].time, 30);
  std::filesystem::remove(path);
}

TEST(Ledger, BadPathsAreClearErrors) {
  auto l = Ledger::open("/nonexistent-dir/x.db", 1);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("/nonexistent-dir/x.db"), std::string::npos);
}

TEST(CostModel, TokenPricesWinOverPoolCost) {
  CostModel c;
  api::GatewayConfig g;
  g.model_prices.push_back({"llama-*", 0.5, 1.5});
  g.pool_price_per_hour["gpu"] = 3.6;
  c.configure(g);
  EXPECT_NEAR(c.charge("llama-3", "llama-3", "gpu", 1'000'000, 1'000'000, 10), 2.0, 1e-12);
  // Unpriced model: the pool's cost over the window, by token share.
  c.charge("other", "other", "gpu", 300, 0, 100);                      // 300 tokens
  const double cost = c.charge("other", "other", "gpu", 100, 0, 159);  // 59 s later
  // 400 tokens served in the last minute; this request's 100 pay a quarter of $3.6/h × 59 s.
  EXPECT_NEAR(cost, 100.0 / 400 * 3.6 * 59 / 3600, 1e-9);
  // A minute later the first request has left the window.
  EXPECT_NEAR(c.charge("other", "other", "gpu", 100, 0, 200), 100.0 / 200 * 3.6 * 60 / 3600, 1e-9);
  EXPECT_EQ(c.charge("other", "other", "cpu", 100, 0, 160), 0);  // no price known
  c.setPoolRate("cpu", 7.2);
  EXPECT_GT(c.charge("other", "other", "cpu", 100, 0, 161), 0);
}

}  // namespace
}  // namespace tidegate::gateway

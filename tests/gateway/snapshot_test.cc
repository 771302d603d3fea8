#include "gateway/snapshot.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace tidegate::gateway {
namespace {

std::shared_ptr<const api::Config> config(const std::string& static_address, int generation) {
  auto c = std::make_shared<api::Config>();
  c->file = "gen" + std::to_string(generation);
  api::InferencePool p;
  p.meta.name = "p";
  p.selector = {{"app", "x"}};
  p.target_ports = {8000};
  c->pools.push_back(p);
  api::Endpoints e;
  e.meta.name = "static";
  e.meta.labels = {{"app", "x"}};
  e.addresses = {{static_address, 8000}};
  c->endpoints.push_back(e);
  return c;
}

std::vector<api::Endpoints> replicas(std::vector<std::uint16_t> ports) {
  api::Endpoints e;
  e.meta.name = "replicas";
  e.meta.labels = {{"app", "x"}};
  for (auto p : ports) e.addresses.push_back({"127.0.0.1", p});
  return {e};
}

std::vector<std::string> addresses(const Snapshot& s) {
  std::vector<std::string> out;
  for (const auto& e : s.pool_endpoints.at(0)) out.push_back(e->address().str());
  return out;
}

TEST(SnapshotBuilder, EverySourceKeepsItsLatestInput) {
  prom::Registry metrics;
  GatewayStats stats(metrics);
  EndpointRegistry registry;
  SnapshotBuilder b(registry, stats);
  b.setEndpoints("controller", replicas({9001}));  // before any configuration: kept, not lost
  EXPECT_EQ(b.current(), nullptr);
  auto s1 = b.setConfig(config("10.0.0.1", 1));
  EXPECT_EQ(s1->generation, 1u);
  EXPECT_EQ(addresses(*s1), (std::vector<std::string>{"10.0.0.1:8000", "127.0.0.1:9001"}));
  // A reload keeps the controller's replicas; a replica update keeps the reloaded file.
  b.setConfig(config("10.0.0.2", 2));
  b.setEndpoints("controller", replicas({9001, 9002}));
  auto s = b.current();
  EXPECT_EQ(s->config->file, "gen2");
  EXPECT_EQ(addresses(*s),
            (std::vector<std::string>{"10.0.0.2:8000", "127.0.0.1:9001", "127.0.0.1:9002"}));
  EXPECT_EQ(s->generation, 3u);
  // An endpoint selected before and after keeps its object (its scraped metrics, in-flight).
  EXPECT_EQ(s1->endpoint({"127.0.0.1", 9001}), s->endpoint({"127.0.0.1", 9001}));
  EXPECT_EQ(s->endpoint({"10.0.0.1", 8000}), nullptr);
}

TEST(SnapshotBuilder, ConcurrentReloadsAndReplicaUpdatesNeverUndoEachOther) {
  // Before the builder, a replica update built from the configuration it had last seen and a
  // reload from the replicas it had last seen; whichever stored last undid the other.
  prom::Registry metrics;
  GatewayStats stats(metrics);
  EndpointRegistry registry;
  SnapshotBuilder b(registry, stats);
  b.setConfig(config("10.0.0.0", 0));
  std::atomic<int> published{0};
  b.subscribe([&](const std::shared_ptr<const Snapshot>&) { ++published; });
  constexpr int kRounds = 300;
  std::thread reloads([&] {
    for (int i = 1; i <= kRounds; ++i) b.setConfig(config("10.0.0." + std::to_string(i % 250), i));
  });
  std::thread updates([&] {
    for (int i = 1; i <= kRounds; ++i)
      b.setEndpoints("controller", replicas({static_cast<std::uint16_t>(9000 + i)}));
  });
  reloads.join();
  updates.join();
  auto s = b.current();
  EXPECT_EQ(s->config->file, "gen" + std::to_string(kRounds));
  EXPECT_EQ(addresses(*s).back(), "127.0.0.1:" + std::to_string(9000 + kRounds));
  EXPECT_EQ(published, 2 * kRounds);
  EXPECT_EQ(s->generation, static_cast<std::uint64_t>(2 * kRounds + 1));
}

}  // namespace
}  // namespace tidegate::gateway

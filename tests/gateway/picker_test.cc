#include "gateway/picker/picker.h"

#include <gtest/gtest.h>

#include <set>

namespace tidegate::gateway {
namespace {

EndpointMetrics up(double waiting, double kv = 0.1) {
  EndpointMetrics m;
  m.up = true;
  m.scraped_at = 100;
  m.waiting = waiting;
  m.kv = kv;
  m.models = {"base"};
  return m;
}

PickConfig cfg() {
  PickConfig c;
  c.queue_threshold = 5;
  c.kv_threshold = 0.8;
  c.stale_after_s = 2;
  return c;
}

int pickIndex(const std::vector<EndpointMetrics>& ms, PickRequest req = {"base"},
              std::vector<int> inflight = {}, std::vector<double> prefix = {},
              std::uint64_t rnd = 0, PickConfig c = cfg()) {
  std::vector<Candidate> cs(ms.size());
  for (std::size_t i = 0; i < ms.size(); ++i) {
    cs[i].metrics = &ms[i];
    cs[i].inflight = i < inflight.size() ? inflight[i] : 0;
    cs[i].prefix_match = i < prefix.size() ? prefix[i] : 0;
  }
  return pick(cs, req, c, 100.5, rnd).index;
}

TEST(Picker, ScorersPreferTheLighterEndpoint) {
  struct Case {
    const char* name;
    std::vector<EndpointMetrics> ms;
    PickRequest req;
    std::vector<int> inflight;
    std::vector<double> prefix;
    int want;
  };
  auto lora = [](double waiting, std::vector<std::string> running, int max) {
    auto m = up(waiting);
    m.adapters = {"sql", "tweet"};
    m.running_loras = std::move(running);
    m.max_lora = max;
    return m;
  };
  std::vector<Case> cases = {
      {"shorter queue", {up(4), up(1), up(3)}, {"base"}, {}, {}, 1},
      {"lower KV use", {up(0, 0.7), up(0, 0.2)}, {"base"}, {}, {}, 1},
      {"fewer in flight here", {up(0), up(0)}, {"base"}, {9, 2}, {}, 1},
      {"longer cached prefix", {up(0), up(0)}, {"base"}, {}, {0.1, 0.9}, 1},
      {"adapter running beats free slot",
       {lora(0, {"tweet"}, 2), lora(0, {"sql"}, 2)},
       {"sql"},
       {},
       {},
       1},
      {"free slot beats waiting for one",
       {lora(0, {"tweet", "x"}, 2), lora(0, {"tweet"}, 2)},
       {"sql"},
       {},
       {},
       1},
  };
  for (const auto& c : cases)
    EXPECT_EQ(pickIndex(c.ms, c.req, c.inflight, c.prefix), c.want) << c.name;
}

TEST(Picker, FiltersReadinessAndModel) {
  auto down = up(0);
  down.up = false;
  auto never = up(0);
  never.scraped_at = -1;
  EXPECT_EQ(pickIndex({down, never, up(3)}), 2);
  std::vector<Candidate> none(2);
  EndpointMetrics d2 = down;
  none[0].metrics = &d2;
  EXPECT_TRUE(pick(none, {"base"}, cfg(), 100, 0).no_ready);
  // Only one endpoint has the adapter: it gets the request despite its longer queue.
  auto with = up(4);
  with.adapters = {"sql-lora"};
  EXPECT_EQ(pickIndex({up(0), with, up(0)}, {"sql-lora"}), 1);
}

TEST(Picker, SaturatedPoolShedsSheddableOnly) {
  auto stale = up(0);
  stale.scraped_at = 90;  // 10.5 s old
  std::vector<EndpointMetrics> ms = {up(9), up(1, 0.95), stale};
  std::vector<Candidate> cs(3);
  for (int i = 0; i < 3; ++i) cs[i].metrics = &ms[i];
  auto shed = pick(cs, {"base", api::Criticality::kSheddable}, cfg(), 100.5, 0);
  EXPECT_TRUE(shed.saturated);
  EXPECT_TRUE(shed.shed);
  EXPECT_EQ(shed.index, -1);
  auto critical = pick(cs, {"base", api::Criticality::kCritical}, cfg(), 100.5, 0);
  EXPECT_TRUE(critical.saturated);
  EXPECT_FALSE(critical.shed);
  EXPECT_GE(critical.index, 0);
  // One non-saturated endpoint: only it is considered.
  ms.push_back(up(2));
  cs.resize(4);
  for (int i = 0; i < 4; ++i) cs[i].metrics = &ms[i];
  auto p = pick(cs, {"base", api::Criticality::kSheddable}, cfg(), 100.5, 0);
  EXPECT_FALSE(p.saturated);
  EXPECT_EQ(p.index, 3);
}

TEST(Picker, TiesBreakAtRandomAndTheDecidingScorerIsNamed) {
  std::set<int> seen;
  for (std::uint64_t r = 0; r < 10; ++r)
    seen.insert(pickIndex({up(1), up(1), up(1)}, {"base"}, {}, {}, r));
  EXPECT_EQ(seen.size(), 3u);
  std::vector<EndpointMetrics> ms = {up(4), up(0)};
  std::vector<Candidate> cs(2);
  cs[0].metrics = &ms[0];
  cs[1].metrics = &ms[1];
  auto p = pick(cs, {"base"}, cfg(), 100.5, 0);
  EXPECT_EQ(p.index, 1);
  EXPECT_EQ(p.winner, "queue");
  std::vector<Candidate> one(1);
  one[0].metrics = &ms[0];
  EXPECT_EQ(pick(one, {"base"}, cfg(), 100.5, 0).winner, "single");
}

TEST(EngineMetrics, ReadsVllmAndLlamaCppNames) {
  auto v = prom::parse(
      "vllm:num_requests_waiting{model_name=\"m\"} 3\nvllm:num_requests_running{model_name=\"m\"} "
      "7\n"
      "vllm:kv_cache_usage_perc{model_name=\"m\"} 0.42\n"
      "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"old\",waiting_lora_adapters="
      "\"\"} 100\n"
      "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"a,b\",waiting_lora_adapters="
      "\"c\"} 200\n");
  ASSERT_TRUE(v.ok());
  EndpointMetrics m;
  readEngineMetrics(*v, m);
  EXPECT_EQ(m.waiting, 3);
  EXPECT_EQ(m.running, 7);
  EXPECT_DOUBLE_EQ(m.kv, 0.42);
  EXPECT_EQ(m.running_loras, (std::vector<std::string>{"a", "b"}));  // the newest sample
  EXPECT_EQ(m.waiting_loras, std::vector<std::string>{"c"});
  EXPECT_EQ(m.max_lora, 2);
  auto l = prom::parse("llamacpp:requests_processing 2\nllamacpp:requests_deferred 5\n");
  EndpointMetrics n;
  readEngineMetrics(*l, n);
  EXPECT_EQ(n.waiting, 5);
  EXPECT_EQ(n.running, 2);
  EXPECT_TRUE(readModelList(
      R"({"object":"list","data":[{"id":"base","parent":null},{"id":"sql","parent":"base"}]})", n));
  EXPECT_EQ(n.models, std::vector<std::string>{"base"});
  EXPECT_TRUE(n.isAdapter("sql"));
  EXPECT_TRUE(n.lists("sql"));
  EXPECT_FALSE(readModelList("nope", n));
}

TEST(PrefixIndex, MatchesLeadingBlocksAndEvictsLeastRecent) {
  PrefixIndex idx(4);
  const std::vector<std::uint64_t> a = {1, 2, 3};
  idx.insert(a);
  EXPECT_EQ(idx.match(std::vector<std::uint64_t>{1, 2, 9}), 2u);
  EXPECT_EQ(idx.match(std::vector<std::uint64_t>{2, 3}), 2u);
  EXPECT_EQ(idx.match(std::vector<std::uint64_t>{9, 1}), 0u);
  idx.insert(std::vector<std::uint64_t>{7, 8});  // capacity 4: 1 (least recent) goes
  EXPECT_EQ(idx.match(std::vector<std::uint64_t>{1}), 0u);
  EXPECT_EQ(idx.match(std::vector<std::uint64_t>{2, 3}), 2u);
}

}  // namespace
}  // namespace tidegate::gateway

namespace tidegate::gateway {
namespace {

TEST(Picker, RetriesGoOnlyToEndpointsThatServeTheModel) {
  // Endpoints 0 and 1 list the adapter, 2 does not. A retry after both failed must not land on
  // 2 (its 404 would reach the client): nothing is left instead.
  std::vector<EndpointMetrics> ms = {up(0), up(0), up(0)};
  ms[0].adapters = ms[1].adapters = {"sql"};
  struct Case {
    std::vector<bool> tried;
    std::string model;
    std::set<int> want;  // -1: none left
  } cases[] = {
      {{false, false, false}, "sql", {0, 1}},
      {{true, false, false}, "sql", {1}},
      {{true, true, false}, "sql", {-1}},
      {{true, true, false}, "base", {2}},         // every endpoint serves the base model
      {{false, false, true}, "unknown", {0, 1}},  // no one lists it: any untried endpoint
  };
  for (const auto& c : cases) {
    std::set<int> got;
    for (std::uint64_t rnd = 0; rnd < 8; ++rnd) {
      std::vector<Candidate> cs(ms.size());
      for (std::size_t i = 0; i < ms.size(); ++i) {
        cs[i].metrics = &ms[i];
        cs[i].tried = c.tried[i];
      }
      got.insert(pick(cs, {c.model}, cfg(), 100.5, rnd).index);
    }
    EXPECT_EQ(got, c.want) << c.model << " tried " << c.tried[0] << c.tried[1] << c.tried[2];
  }
}

}  // namespace
}  // namespace tidegate::gateway

#include "kube/client.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace tidegate::kube {
namespace {

TEST(KubeResource, PathsFollowTheApiLayout) {
  EXPECT_EQ(resources::kPods.path("default"), "/api/v1/namespaces/default/pods");
  EXPECT_EQ(resources::kPods.path(), "/api/v1/pods");  // every namespace
  EXPECT_EQ(resources::kPods.path("ns", "p1"), "/api/v1/namespaces/ns/pods/p1");
  EXPECT_EQ(resources::kNodes.path("ignored", "n1"), "/api/v1/nodes/n1");  // cluster-scoped
  EXPECT_EQ(resources::kDeployments.path("default", "qwen-edge", "scale"),
            "/apis/apps/v1/namespaces/default/deployments/qwen-edge/scale");
  EXPECT_EQ(resources::kLeases.apiVersion(), "coordination.k8s.io/v1");
  EXPECT_EQ(resources::kPods.apiVersion(), "v1");
}

TEST(KubeTokenBucket, BurstThenQps) {
  TokenBucket b(/*qps=*/10, /*burst=*/3);
  EXPECT_EQ(b.reserve(0), 0);
  EXPECT_EQ(b.reserve(0), 0);
  EXPECT_EQ(b.reserve(0), 0);
  EXPECT_NEAR(b.reserve(0), 0.1, 1e-9);  // the 4th waits one refill
  EXPECT_NEAR(b.reserve(0), 0.2, 1e-9);  // and the 5th two: reservations queue up
  EXPECT_EQ(b.reserve(10), 0);           // refilled to the burst, not beyond
  EXPECT_EQ(b.reserve(10), 0);
  EXPECT_EQ(b.reserve(10), 0);
  EXPECT_GT(b.reserve(10), 0);
}

TEST(KubeRetry, WhatIsRetriedAndHowLong) {
  ClientOptions o;
  o.max_retries = 3;
  o.backoff_base_s = 0.2;
  o.backoff_cap_s = 1;
  struct Case {
    int code;
    bool idempotent;
    double retry_after;
    int attempt;
    double jitter;
    std::optional<double> want;
  };
  const std::vector<Case> cases = {
      {429, false, -1, 0, 0.5, 0.1},  // 429: any verb, the server did not act
      {503, false, 2, 0, 0.5, 2.0},   // Retry-After is a floor
      {500, true, -1, 1, 1.0, 0.4},   // idempotent GET: exponential
      {500, false, -1, 0, 0.5, {}},   // POST on 500: it may have been applied
      {0, true, -1, 2, 0.99, 0.792},  // transport failure on GET
      {0, false, -1, 0, 0.5, {}},     // ... but never a POST
      {404, true, -1, 0, 0.5, {}},    // a definite answer
      {409, true, -1, 0, 0.5, {}},    // conflicts are the caller's (modify())
      {403, true, -1, 0, 0.5, {}},    // RBAC: retrying does not help
      {429, true, -1, 3, 0.5, {}},    // out of attempts
      {502, true, -1, 10, 1.0, {}},   //
      {504, true, -1, 2, 1.0, 0.8},   //
      {429, true, -1, 2, 1.0, 0.8},   //
  };
  for (const auto& c : cases) {
    auto got =
        retryDelay(c.attempt, ApiError{c.code, "", ""}, c.idempotent, c.retry_after, o, c.jitter);
    ASSERT_EQ(got.has_value(), c.want.has_value()) << c.code << " attempt " << c.attempt;
    if (got) {
      EXPECT_NEAR(*got, *c.want, 1e-9) << c.code << " attempt " << c.attempt;
    }
  }
  // The cap holds however many attempts.
  o.max_retries = 100;
  EXPECT_LE(*retryDelay(50, ApiError{503, "", ""}, true, -1, o, 0.999), 1.0);
}

TEST(KubeWatch, LinesSplitAcrossChunks) {
  LineSplitter s;
  EXPECT_TRUE(s.feed("{\"a\":"));
  EXPECT_FALSE(s.next());
  EXPECT_TRUE(s.feed("1}\n{\"b\":2}\r\n{\"c\""));
  EXPECT_EQ(*s.next(), "{\"a\":1}");
  EXPECT_EQ(*s.next(), "{\"b\":2}");
  EXPECT_FALSE(s.next());
  EXPECT_TRUE(s.feed(":3}\n"));
  EXPECT_EQ(*s.next(), "{\"c\":3}");
  LineSplitter small(8);
  EXPECT_TRUE(small.feed("12345678"));
  EXPECT_FALSE(small.feed("9"));  // a line past the limit
}

TEST(KubeWatch, EventsParseAndBadOnesAreErrors) {
  auto e =
      parseWatchEvent(R"({"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"p"}}})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, WatchEvent::Type::kModified);
  EXPECT_EQ(e->object.at("kind").as_string(), "Pod");
  auto b = parseWatchEvent(
      R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}})");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->type, WatchEvent::Type::kBookmark);
  for (const char* bad : {"", "[]", "{\"type\":\"ADDED\"}", "{\"object\":{}}",
                          "{\"type\":\"RENAMED\",\"object\":{}}", "{\"type\":1,\"object\":{}}"})
    EXPECT_FALSE(parseWatchEvent(bad)) << bad;
}

TEST(KubeStatus, ErrorsCarryTheStatusReasonAndMessage) {
  auto e = statusError(
      403,
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden: User \"system:serviceaccount:tidegate:tidegate\" cannot list resource \"pods\"","reason":"Forbidden","code":403})",
      "GET /api/v1/pods");
  EXPECT_EQ(e.code, 403);
  EXPECT_EQ(e.reason, "Forbidden");
  EXPECT_NE(e.message.find("GET /api/v1/pods"), std::string::npos);
  EXPECT_NE(e.message.find("cannot list resource"), std::string::npos);
  auto plain = statusError(502, "<html>bad gateway</html>", "GET /x");
  EXPECT_EQ(plain.code, 502);
  EXPECT_EQ(plain.reason, "");
  EXPECT_EQ(plain.message, "GET /x: HTTP 502");
}

}  // namespace
}  // namespace tidegate::kube

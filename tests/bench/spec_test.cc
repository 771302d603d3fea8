#include "bench/spec.h"

#include <gtest/gtest.h>

namespace tidegate::bench {
namespace {

TEST(Spec, Dist) {
  auto d = parseDist("512:128", "--prompt-tokens");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->mean, 512);
  EXPECT_EQ(d->stddev, 128);
  EXPECT_EQ(parseDist("64", "--max-tokens")->stddev, 0);
  EXPECT_FALSE(parseDist("0", "--max-tokens").ok());
  EXPECT_FALSE(parseDist("a:b", "--max-tokens").ok());
  EXPECT_FALSE(parseDist("10:-1", "--max-tokens").ok());
}

TEST(Spec, Profile) {
  auto p = parseProfile("30s@2,1m@20,30s@0");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ((*p)[1].duration_s, 60);
  EXPECT_EQ((*p)[1].rate, 20);
  for (const char* bad : {"", "30s", "30x@2", "30s@fast", "0s@5", "30s@-1", "30s@2,"}) {
    auto r = parseProfile(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(Spec, Slo) {
  auto s = parseSlo("ttft_p90<2s,itl_p90<=100ms,error_rate<1%");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].metric, "ttft");
  EXPECT_EQ((*s)[0].stat, "p90");
  EXPECT_EQ((*s)[0].limit, 2);
  EXPECT_TRUE((*s)[1].inclusive);
  EXPECT_DOUBLE_EQ((*s)[1].limit, 0.1);
  EXPECT_DOUBLE_EQ((*s)[2].limit, 0.01);
  for (const char* bad : {"ttft_p90", "tpot_p90<1s", "ttft_p42<1s", "ttft_p90<soon"})
    EXPECT_FALSE(parseSlo(bad).ok()) << bad;
}

TEST(Spec, Url) {
  auto t = parseUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->base_path, "");
  auto p = parseUrl("http://localhost/api/");
  EXPECT_EQ(p->port, 80);
  EXPECT_EQ(p->base_path, "/api");
  auto v6 = parseUrl("http://[::1]:9000/x");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9000);
  for (const char* bad :
       {"127.0.0.1:8080", "https://x", "http://:80", "http://h:0", "http://h:99999"})
    EXPECT_FALSE(parseUrl(bad).ok()) << bad;
}

}  // namespace
}  // namespace tidegate::bench

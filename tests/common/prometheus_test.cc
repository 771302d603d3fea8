#include "common/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>

namespace tidegate::prom {
namespace {

TEST(PrometheusWriter, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escapeHelp("x\\y\nz\"q"), "x\\\\y\\nz\"q");
  TextWriter w;
  w.family("m", "gauge", "line1\nline2");
  w.sample("m", {{"path", "C:\\tmp\n\"x\""}}, 1.5);
  EXPECT_EQ(w.text(),
            "# HELP m line1\\nline2\n# TYPE m gauge\nm{path=\"C:\\\\tmp\\n\\\"x\\\"\"} 1.5\n");
}

TEST(PrometheusWriter, FormatsSpecialValues) {
  EXPECT_EQ(formatValue(3), "3");
  EXPECT_EQ(formatValue(0.25), "0.25");
  EXPECT_EQ(formatValue(HUGE_VAL), "+Inf");
  EXPECT_EQ(formatValue(-HUGE_VAL), "-Inf");
  EXPECT_EQ(formatValue(std::nan("")), "NaN");
  EXPECT_EQ(formatValue(1e20), "1e+20");
}

TEST(PrometheusRegistry, RendersCountersGaugesHistograms) {
  Registry r;
  r.counter("req_total", "Requests.", {"code"}).with({"200"}).inc(3);
  r.gauge("temp", "Temperature.").with({}).set(-1.5);
  auto& h = r.histogram("lat_seconds", "Latency.", {}, {0.1, 1}).with({});
  h.observe(0.05);
  h.observe(0.1);  // le is inclusive
  h.observe(5);
  const std::string text = r.render();
  EXPECT_NE(text.find("# TYPE req_total counter\nreq_total{code=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("temp -1.5\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_sum 5.15\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count 3\n"), std::string::npos);
}

TEST(PrometheusHistogram, QuantileInterpolatesInsideTheBucketLikePromQl) {
  const std::vector<double> bounds = {0.1, 0.5, 1};
  // 10 observations: 2 up to 0.1, 6 in (0.1, 0.5], 2 in (0.5, 1], none above.
  const std::vector<std::uint64_t> cum = {2, 8, 10, 10};
  EXPECT_DOUBLE_EQ(histogramQuantile(0.1, bounds, cum), 0.05);  // rank 1 of 2 in [0, 0.1]
  EXPECT_DOUBLE_EQ(histogramQuantile(0.5, bounds, cum), 0.1 + 0.4 * 3 / 6);
  EXPECT_DOUBLE_EQ(histogramQuantile(0.9, bounds, cum), 0.5 + 0.5 * 1 / 2);
  // A rank in +Inf gives the highest finite bound; no observations give NaN.
  EXPECT_DOUBLE_EQ(histogramQuantile(0.99, bounds, std::vector<std::uint64_t>{0, 0, 1, 5}), 1);
  EXPECT_TRUE(std::isnan(histogramQuantile(0.5, bounds, std::vector<std::uint64_t>{0, 0, 0, 0})));
  EXPECT_TRUE(std::isnan(histogramQuantile(0.5, bounds, std::vector<std::uint64_t>{1, 2})));
  // Agrees with a registry histogram's own buckets.
  Histogram h({0.25, 0.5, 1, 2.5});
  for (double v : {0.3, 0.3, 0.4, 0.6, 2.0}) h.observe(v);
  const double p50 = histogramQuantile(0.5, h.bounds(), h.cumulative());
  EXPECT_GT(p50, 0.25);
  EXPECT_LE(p50, 0.5);
}

TEST(PrometheusRegistry, SameNameReturnsSameFamily) {
  Registry r;
  r.counter("c_total", "C.", {"a"}).with({"x"}).inc();
  r.counter("c_total", "C.", {"a"}).with({"x"}).inc();
  EXPECT_EQ(r.counter("c_total", "C.", {"a"}).with({"x"}).value(), 2);
}

TEST(PrometheusRegistry, CollectorsRunAtRender) {
  Registry r;
  int calls = 0;
  r.addCollector([&](TextWriter& w) {
    ++calls;
    w.family("live", "gauge", "Computed at scrape.");
    w.sample("live", {}, calls);
  });
  EXPECT_NE(r.render().find("live 1\n"), std::string::npos);
  EXPECT_NE(r.render().find("live 2\n"), std::string::npos);
}

TEST(PrometheusParser, RoundTripsRegistryOutput) {
  Registry r;
  r.counter("vllm:prompt_tokens_total", "P.", {"model_name"}).with({"m \"q\""}).inc(42);
  r.histogram("h_seconds", "H.", {"model_name"}, {0.5}).with({"m"}).observe(0.2);
  auto s = parse(r.render());
  ASSERT_TRUE(s.ok()) << s.error().message;
  const Sample* p = s->find("vllm:prompt_tokens_total", {{"model_name", "m \"q\""}});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->value, 42);
  EXPECT_EQ(s->types.at("h_seconds"), "histogram");
  const Sample* inf = s->find("h_seconds_bucket", {{"le", "+Inf"}});
  ASSERT_NE(inf, nullptr);
  EXPECT_EQ(inf->value, 1);
}

TEST(PrometheusParser, ReadsWhatEnginesExpose) {
  const char* text =
      "# HELP llamacpp:requests_processing Number of requests processing.\n"
      "# TYPE llamacpp:requests_processing gauge\n"
      "llamacpp:requests_processing 2\n"
      "vllm:num_requests_waiting{model_name=\"a\",} 7.0\n"
      "x{a=\"1\", b=\"two\\nlines\"} +Inf 1700000000000\n"
      "nan_metric NaN\r\n"
      "\n";
  auto s = parse(text);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->samples.size(), 4u);
  EXPECT_EQ(s->sum("llamacpp:requests_processing"), 2);
  EXPECT_EQ(s->find("vllm:num_requests_waiting", {{"model_name", "a"}})->value, 7);
  const Sample* x = s->find("x");
  EXPECT_TRUE(std::isinf(x->value));
  EXPECT_EQ(x->label("b"), "two\nlines");
  EXPECT_TRUE(std::isnan(s->find("nan_metric")->value));
}

TEST(PrometheusParser, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"ok 1\n{bad} 2\n", "line 2: expected a metric name"},
      {"m{a=1} 2\n", "line 1: expected '\"' for label a"},
      {"m{a=\"1\" 2\n", "line 1: expected ',' or '}' in labels"},
      {"m{a=\"1\n", "line 1: unterminated value of label a"},
      {"m\n", "line 1: expected a value"},
      {"m abc\n", "line 1: bad sample value 'abc'"},
      // Found by fuzz/prometheus_fuzz.cc: which `le` would count? Prometheus refuses it too.
      {"m{le=\"1\",model=\"a\",le=\"2\"} 1\n", "line 1: duplicate label le"},
  };
  for (const auto& c : cases) {
    auto s = parse(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.error().message, c.error) << c.text;
  }
}

}  // namespace
}  // namespace tidegate::prom

namespace tidegate::prom {
namespace {

TEST(Prometheus, LabelValuesAreAlwaysValidUtf8) {
  struct Case {
    std::string in, want;
  } cases[] = {
      {"plain", "plain"},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},
      {"bad\xFF", "bad\xEF\xBF\xBD"},
      {"\xC3", "\xEF\xBF\xBD"},                                  // truncated sequence
      {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                  // overlong '/'
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // a surrogate
      {"q\"\\\n", "q\\\"\\\\\\n"},
  };
  for (const auto& c : cases) EXPECT_EQ(escapeLabelValue(c.in), c.want) << c.in;
  // A registry with such a label still renders a page that parses.
  Registry r;
  r.counter("x_total", "x", {"model"}).with({"m\xFF\xFE"}).inc();
  auto text = r.render();
  ASSERT_TRUE(parse(text).ok()) << text;
}

}  // namespace
}  // namespace tidegate::prom

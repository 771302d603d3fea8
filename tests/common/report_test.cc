#include "common/report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

namespace tidegate::report {
namespace {

using boost::property_tree::ptree;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Parses `xml` (an SVG, or the HTML, which is also well-formed XML); fails the test if it is
// not well-formed. The tree's element names are paths; attributes live under "<xmlattr>".
ptree parseXml(const std::string& xml) {
  ptree tree;
  std::istringstream in(xml);
  try {
    boost::property_tree::read_xml(in, tree);
  } catch (const boost::property_tree::xml_parser_error& e) {
    ADD_FAILURE() << "not well-formed XML: " << e.what() << "\n" << xml.substr(0, 2000);
  }
  return tree;
}

// Every element named `name` anywhere under `tree`.
void collect(const ptree& tree, const std::string& name, std::vector<const ptree*>& out) {
  for (const auto& [key, child] : tree) {
    if (key == name) out.push_back(&child);
    if (key != "<xmlattr>") collect(child, name, out);
  }
}
std::vector<const ptree*> elements(const ptree& tree, const std::string& name) {
  std::vector<const ptree*> out;
  collect(tree, name, out);
  return out;
}
std::string attr(const ptree* e, const std::string& name) {
  return e->get<std::string>("<xmlattr>." + name, "");
}

// A chart must be a complete standalone SVG document with nothing unprintable in it.
void expectValidSvg(const std::string& svg) {
  const ptree tree = parseXml(svg);
  const auto roots = elements(tree, "svg");
  ASSERT_EQ(roots.size(), 1u);
  EXPECT_EQ(attr(roots[0], "xmlns"), "http://www.w3.org/2000/svg");
  EXPECT_FALSE(attr(roots[0], "width").empty());
  EXPECT_FALSE(attr(roots[0], "height").empty());
  EXPECT_FALSE(attr(roots[0], "viewBox").empty());
  EXPECT_FALSE(attr(roots[0], "font-family").empty());
  std::string lower(svg);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  EXPECT_EQ(lower.find("nan"), std::string::npos) << svg;
  EXPECT_EQ(lower.find("inf"), std::string::npos) << svg;
  EXPECT_EQ(lower.find("e+"), std::string::npos) << "exponent notation in " << svg;
  EXPECT_EQ(lower.find("<script"), std::string::npos);
  EXPECT_EQ(lower.find("href"), std::string::npos) << "external reference in " << svg;
  EXPECT_EQ(lower.find("class="), std::string::npos);
}

std::vector<std::string> texts(const std::string& svg) {
  std::vector<std::string> out;
  const ptree tree = parseXml(svg);  // outlives the loop (range-for keeps only its range alive)
  for (const ptree* t : elements(tree, "text")) out.push_back(t->data());
  return out;
}

bool hasText(const std::string& svg, const std::string& text) {
  const auto all = texts(svg);
  return std::find(all.begin(), all.end(), text) != all.end();
}

Series ramp(std::string name, std::size_t n, double slope) {
  Series s{std::move(name), {}, {}};
  for (std::size_t i = 0; i < n; ++i) {
    s.points.push_back({static_cast<double>(i), slope * static_cast<double>(i)});
  }
  return s;
}

TEST(ReportEscape, EscapesMarkupAndQuotes) {
  EXPECT_EQ(escapeXml("<script>&\"x\"'"), "&lt;script&gt;&amp;&quot;x&quot;&#39;");
  EXPECT_EQ(escapeXml("plain 8B"), "plain 8B");
}

TEST(ReportEscape, UserTextIsNeverRawInCharts) {
  const std::string evil = "<script>&\"x\"";
  const std::string escaped = "&lt;script&gt;&amp;&quot;x&quot;";
  LineChart line{.title = evil, .y = {.title = evil}, .series = {ramp(evil, 10, 1)}};
  line.references.push_back({5, evil});
  ScatterChart scatter{.title = evil, .points = {{1, 2, evil, true, true}, {2, 3, evil}}};
  scatter.frontier_label = evil;
  scatter.frontier = {0, 1};
  for (const std::string& svg : {renderLineChart(line), renderScatterChart(scatter)}) {
    expectValidSvg(svg);
    EXPECT_EQ(svg.find(evil), std::string::npos) << svg;
    EXPECT_NE(svg.find(escaped), std::string::npos) << svg;
    // Parsed back, the text is what the user wrote.
    EXPECT_TRUE(hasText(svg, evil));
  }
}

TEST(ReportTicks, NiceTicksUseOneTwoFiveSteps) {
  struct Case {
    double lo, hi;
    std::vector<double> ticks;
  } cases[] = {
      {0, 10, {0, 2, 4, 6, 8, 10}},
      {0, 1, {0, 0.2, 0.4, 0.6, 0.8, 1}},
      {0, 7, {0, 2, 4, 6, 8}},
      {3, 97, {0, 20, 40, 60, 80, 100}},
      {-3, 3, {-4, -2, 0, 2, 4}},
      {0.001, 0.002, {0.001, 0.0012, 0.0014, 0.0016, 0.0018, 0.002}},
      {0, 86400, {0, 20000, 40000, 60000, 80000, 100000}},
      {7, 3, {3, 4, 5, 6, 7}},  // reversed bounds
      // Degenerate ranges widen around the value; non-finite bounds fall back to [0, 1].
      {0, 0, {0, 0.2, 0.4, 0.6, 0.8, 1}},
      {5, 5, {2, 3, 4, 5, 6, 7, 8}},
      {kNaN, 3, {0, 0.2, 0.4, 0.6, 0.8, 1}},
      {0, kInf, {0, 0.2, 0.4, 0.6, 0.8, 1}},
  };
  for (const auto& c : cases) {
    const Ticks t = niceTicks(c.lo, c.hi);
    ASSERT_EQ(t.values.size(), c.ticks.size()) << c.lo << ".." << c.hi;
    for (std::size_t i = 0; i < c.ticks.size(); ++i) {
      EXPECT_NEAR(t.values[i], c.ticks[i], 1e-12) << c.lo << ".." << c.hi << " tick " << i;
    }
    EXPECT_DOUBLE_EQ(t.lo, t.values.front());
    EXPECT_DOUBLE_EQ(t.hi, t.values.back());
  }
}

TEST(ReportTicks, HugeRangesStayFinite) {
  const Ticks t = niceTicks(-1e308, 1e308);
  ASSERT_GE(t.values.size(), 2u);
  for (const double v : t.values) EXPECT_TRUE(std::isfinite(v));
}

TEST(ReportTicks, TimeTicksUseClockSteps) {
  struct Case {
    double lo, hi, step;
    std::vector<std::string> labels;
  } cases[] = {
      {0, 86400, 21600, {"0", "6h", "12h", "18h", "1d"}},
      {0, 600, 120, {"0", "2m", "4m", "6m", "8m", "10m"}},
      {0, 170, 30, {"0", "30s", "1m", "1m30s", "2m", "2m30s", "3m"}},
      {0, 5400, 900, {"0", "15m", "30m", "45m", "1h", "1h15m", "1h30m"}},
      {0, 1.5, 0.5, {"0", "0.5s", "1s", "1.5s"}},
      {0, 10 * 86400, 2 * 86400, {"0", "2d", "4d", "6d", "8d", "10d"}},
  };
  for (const auto& c : cases) {
    const Ticks t = timeTicks(c.lo, c.hi);
    EXPECT_DOUBLE_EQ(t.step, c.step) << c.hi;
    EXPECT_EQ(tickLabels(Format::kTime, t), c.labels) << c.hi;
  }
}

TEST(ReportTicks, FormatsTimeDownToTheStep) {
  struct Case {
    double seconds, step;
    const char* text;
  } cases[] = {
      {0, 30, "0"},
      {30, 30, "30s"},
      {300, 60, "5m"},
      {5400, 1800, "1h30m"},
      {90, 30, "1m30s"},
      {86400, 21600, "1d"},
      {108000, 21600, "1d6h"},
      {3601, 3600, "1h"},  // rounded to the step
      {2.5, 0.5, "2.5s"},
      {-60, 60, "-1m"},
      {kNaN, 60, "0"},
      {60, kNaN, "1m"},
  };
  for (const auto& c : cases) EXPECT_EQ(formatTime(c.seconds, c.step), c.text) << c.seconds;
}

TEST(ReportTicks, LabelsPickOneUnitAndFewDecimals) {
  EXPECT_EQ(tickLabels(Format::kLatency, niceTicks(0, 0.5)),
            (std::vector<std::string>{"0", "100ms", "200ms", "300ms", "400ms", "500ms"}));
  EXPECT_EQ(tickLabels(Format::kLatency, niceTicks(0, 2)),
            (std::vector<std::string>{"0", "0.5s", "1s", "1.5s", "2s"}));
  EXPECT_EQ(tickLabels(Format::kPercent, niceTicks(0, 1)),
            (std::vector<std::string>{"0%", "20%", "40%", "60%", "80%", "100%"}));
  EXPECT_EQ(tickLabels(Format::kNumber, niceTicks(0, 50000)),
            (std::vector<std::string>{"0", "10k", "20k", "30k", "40k", "50k"}));
  EXPECT_EQ(tickLabels(Format::kNumber, niceTicks(0, 1.5e6)),
            (std::vector<std::string>{"0", "0.5M", "1M", "1.5M"}));
  EXPECT_EQ(tickLabels(Format::kNumber, niceTicks(0, 5000)),
            (std::vector<std::string>{"0", "1000", "2000", "3000", "4000", "5000"}));
  EXPECT_EQ(tickLabels(Format::kNumber, niceTicks(-0.3, 0.3)),
            (std::vector<std::string>{"-0.4", "-0.2", "0", "0.2", "0.4"}));
}

TEST(ReportDownsample, KeepsPeaksAndBoundsTheSize) {
  std::vector<Point> points;
  for (int i = 0; i < 86400; ++i) points.push_back({double(i), 10 + std::sin(i * 0.01)});
  points[40000].y = 500;  // a one-second spike
  points[60000].y = -7;   // and a dip
  const auto out = downsample(points);
  EXPECT_LE(out.size(), kMaxPointsPerSeries);
  EXPECT_GE(out.size(), kMaxPointsPerSeries / 2);
  EXPECT_EQ(out.front().x, 0);
  EXPECT_EQ(out.back().x, 86399);
  const auto has = [&](double x, double y) {
    return std::any_of(out.begin(), out.end(),
                       [&](const Point& p) { return p.x == x && p.y == y; });
  };
  EXPECT_TRUE(has(40000, 500));
  EXPECT_TRUE(has(60000, -7));
  EXPECT_TRUE(std::is_sorted(out.begin(), out.end(),
                             [](const Point& a, const Point& b) { return a.x < b.x; }));
  EXPECT_LE(downsample(points, 10).size(), 10u);
}

TEST(ReportDownsample, DropsFlatRunsLosslessly) {
  // A replica count: 2 for an hour, 5 for an hour, per second.
  std::vector<Point> points;
  for (int i = 0; i < 7200; ++i) points.push_back({double(i), i < 3600 ? 2.0 : 5.0});
  const auto out = downsample(points);
  EXPECT_EQ(out.size(), 4u);  // both ends and both sides of the step
  EXPECT_EQ(out[1].x, 3599);
  EXPECT_EQ(out[2].x, 3600);
  // Short series keep every point that is not on a flat run.
  EXPECT_EQ(downsample(ramp("r", 100, 1).points).size(), 100u);
}

TEST(ReportDownsample, DropsNonFinitePoints) {
  const std::vector<Point> points = {{0, 1}, {1, kNaN}, {kInf, 2}, {3, 4}};
  const auto out = downsample(points);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].x, 3);
}

TEST(ReportStack, LayersSumAtEveryX) {
  const std::vector<Series> series = {
      {"owned", {{0, 1}, {10, 3}}, {}},
      {"elastic", {{5, 4}, {8, 2}}, {}},
  };
  struct Case {
    bool step;
    double x, owned, total;
  } cases[] = {
      // Before its first point a layer counts 0; after its last it holds its value.
      {true, 0, 1, 1},  {true, 5, 1, 5},  {true, 8, 1, 3},      {true, 10, 3, 5},
      {false, 0, 1, 1}, {false, 5, 2, 6}, {false, 8, 2.6, 4.6}, {false, 10, 3, 5},
  };
  for (const auto& c : cases) {
    const auto tops = stackSeries(series, c.step);
    ASSERT_EQ(tops.size(), 2u);
    ASSERT_EQ(tops[0].points.size(), 4u);  // the union of x: 0, 5, 8, 10
    const auto at = [&](const Series& s) {
      for (const Point& p : s.points) {
        if (p.x == c.x) return p.y;
      }
      return kNaN;
    };
    EXPECT_NEAR(at(tops[0]), c.owned, 1e-12) << c.step << " x=" << c.x;
    EXPECT_NEAR(at(tops[1]), c.total, 1e-12) << c.step << " x=" << c.x;
  }
}

TEST(ReportStack, StackedChartPaintsEachLayerToTheSum) {
  LineChart chart{.title = "Replicas",
                  .series = {{"owned", {{0, 3}, {60, 3}}, std::string(kPalette[0])},
                             {"elastic", {{0, 4}, {60, 4}}, std::string(kPalette[1])}},
                  .step = true,
                  .stacked = true};
  const std::string svg = renderLineChart(chart);
  expectValidSvg(svg);
  // The y axis reaches the sum, 7, and each layer is one filled area in its colour.
  EXPECT_TRUE(hasText(svg, "7") || hasText(svg, "8")) << svg;
  std::vector<std::string> fills;
  const ptree tree = parseXml(svg);
  for (const ptree* p : elements(tree, "path")) {
    if (!attr(p, "fill").empty() && attr(p, "fill") != "none") fills.push_back(attr(p, "fill"));
  }
  // The elastic layer is painted first, the owned layer over its lower part.
  EXPECT_EQ(fills, (std::vector<std::string>{std::string(kPalette[1]), std::string(kPalette[0])}));
}

TEST(ReportDegenerate, AnyInputRendersAValidChart) {
  const std::vector<std::pair<std::string, LineChart>> charts = {
      {"no series", LineChart{.title = "a"}},
      {"empty series", LineChart{.title = "a", .series = {{"s", {}, {}}}}},
      {"one point", LineChart{.title = "a", .series = {{"s", {{5, 5}}, {}}}}},
      {"all equal", LineChart{.title = "a",
                              .y = {.from_zero = false},
                              .series = {{"s", {{0, 3}, {1, 3}, {2, 3}}, {}}}}},
      {"all zero", LineChart{.title = "a", .series = {{"s", {{0, 0}, {1, 0}}, {}}}}},
      {"non-finite", LineChart{.title = "a",
                               .series = {{"s", {{0, kNaN}, {1, kInf}, {kNaN, 2}, {3, 1}}, {}}},
                               .references = {{kNaN, "slo"}}}},
      {"only NaN", LineChart{.title = "a", .series = {{"s", {{kNaN, kNaN}}, {}}}}},
      {"huge", LineChart{.title = "a", .series = {{"s", {{0, 1e308}, {1, -1e308}}, {}}}}},
      {"stacked empty", LineChart{.title = "a", .series = {{"s", {}, {}}}, .stacked = true}},
      {"tiny", LineChart{.title = "a", .series = {ramp("s", 3, 1)}, .width = 1, .height = -5}},
  };
  for (const auto& [name, chart] : charts) {
    SCOPED_TRACE(name);
    expectValidSvg(renderLineChart(chart));
  }
  EXPECT_TRUE(hasText(renderLineChart(charts[0].second), "no data"));
  EXPECT_TRUE(hasText(renderLineChart(charts[6].second), "no data"));
  EXPECT_FALSE(hasText(renderLineChart(charts[2].second), "no data"));

  for (const auto& points : std::vector<std::vector<ScatterPoint>>{
           {}, {{kNaN, 1}}, {{1, 1}}, {{1, 1}, {1, 1}}, {{kInf, 0}, {2, 3, "x", true}}}) {
    const std::string svg =
        renderScatterChart({.title = "s", .points = points, .frontier = {0, 7}});
    expectValidSvg(svg);
  }
  EXPECT_TRUE(hasText(renderScatterChart({.title = "s"}), "no data"));
  expectValidSvg(renderLineChart(cdfChart("TTFT", "TTFT", {cdfSeries("ttft", {})})));
}

TEST(ReportCdf, EvenlySpacedRanksFromMinToMax) {
  std::vector<double> samples;
  for (int i = 1000; i >= 1; --i) samples.push_back(i * 0.001);
  samples.push_back(kNaN);
  const Series s = cdfSeries("ttft", samples, 101);
  ASSERT_EQ(s.points.size(), 101u);
  EXPECT_DOUBLE_EQ(s.points.front().x, 0.001);
  EXPECT_DOUBLE_EQ(s.points.front().y, 0.001);
  EXPECT_DOUBLE_EQ(s.points.back().x, 1.0);
  EXPECT_DOUBLE_EQ(s.points.back().y, 1.0);
  EXPECT_NEAR(s.points[50].y, 0.5, 0.002);
  for (std::size_t i = 1; i < s.points.size(); ++i) {
    EXPECT_LE(s.points[i - 1].x, s.points[i].x);
    EXPECT_LT(s.points[i - 1].y, s.points[i].y);
  }
  // Few samples: every one.
  EXPECT_EQ(cdfSeries("few", std::vector<double>{3, 1, 2}).points.size(), 3u);

  LineChart chart = cdfChart("TTFT distribution", "TTFT", {s});
  chart.references.push_back({0.9, "p90"});
  const std::string svg = renderLineChart(chart);
  expectValidSvg(svg);
  EXPECT_TRUE(hasText(svg, "100%"));
  EXPECT_TRUE(hasText(svg, "p90"));
}

TEST(ReportOverTime, RatesCountEveryBucketIncludingEmptyOnes) {
  // Events at 0.5 s, 1.2 s, 1.9 s (weight 3) and 4.1 s, with 2 s buckets, through 7 s.
  const std::vector<Point> events = {{0.5, 1}, {1.2, 1}, {1.9, 3}, {4.1, 1}, {-1, 1}, {kNaN, 1}};
  const Series s = rateSeries("done", events, 2, 7);
  EXPECT_EQ(s.name, "done");
  ASSERT_EQ(s.points.size(), 4u);  // [0,2) [2,4) [4,6) [6,8)
  const double want[][2] = {{1, 2.5}, {3, 0}, {5, 0.5}, {7, 0}};
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_DOUBLE_EQ(s.points[k].x, want[k][0]) << k;
    EXPECT_DOUBLE_EQ(s.points[k].y, want[k][1]) << k;
  }
  // The last event extends past `end`; a bad width gives nothing; no events still span `end`.
  EXPECT_EQ(rateSeries("r", events, 2, 0).points.size(), 3u);
  EXPECT_TRUE(rateSeries("r", events, 0, 7).points.empty());
  EXPECT_TRUE(rateSeries("r", events, kNaN, 7).points.empty());
  EXPECT_EQ(rateSeries("r", {}, 1, 2.5).points.size(), 3u);
  // The bucket count is bounded whatever the input.
  EXPECT_LE(rateSeries("r", std::vector<Point>{{1e300, 1}}, 1).points.size(), 1000000u);
}

TEST(ReportOverTime, QuantilesPerBucketSkipEmptyBuckets) {
  std::vector<Point> samples;
  for (int i = 1; i <= 10; ++i) samples.push_back({10 + i * 0.1, static_cast<double>(i)});
  samples.push_back({130, 7});
  samples.push_back({kNaN, 1});
  const Series p90 = quantileSeries("p90", samples, 60, 0.9);
  ASSERT_EQ(p90.points.size(), 2u);  // minute 0 and minute 2; minute 1 had no sample
  EXPECT_DOUBLE_EQ(p90.points[0].x, 30);
  EXPECT_DOUBLE_EQ(p90.points[0].y, 9.1);  // 1..10 at position 0.9 * 9
  EXPECT_DOUBLE_EQ(p90.points[1].x, 150);
  EXPECT_DOUBLE_EQ(p90.points[1].y, 7);
  EXPECT_TRUE(quantileSeries("q", samples, -1, 0.5).points.empty());
}

TEST(ReportLine, AxisBoundsWidenTheRangeNeverNarrowIt) {
  LineChart chart{.title = "window",
                  .x = {.format = Format::kTime, .min = -300, .max = 0},
                  .y = {.max = 10},
                  .series = {{"last seconds", {{-20, 1}, {-10, 2}}, {}}}};
  std::string svg = renderLineChart(chart);
  expectValidSvg(svg);
  EXPECT_TRUE(hasText(svg, "-5m"));
  EXPECT_TRUE(hasText(svg, "0"));
  EXPECT_TRUE(hasText(svg, "10"));
  // Data beyond the bounds still show; non-finite bounds are none.
  chart.x.min = -5;
  chart.y.max = kInf;
  svg = renderLineChart(chart);
  expectValidSvg(svg);
  EXPECT_TRUE(hasText(svg, "-20s"));
  EXPECT_FALSE(hasText(svg, "10"));
}

TEST(ReportOverTime, BucketWidthIsAClockStep) {
  EXPECT_DOUBLE_EQ(bucketWidth(60, 120), 1);
  EXPECT_DOUBLE_EQ(bucketWidth(600, 120), 5);
  EXPECT_DOUBLE_EQ(bucketWidth(3600, 120), 30);
  EXPECT_DOUBLE_EQ(bucketWidth(0), 1);
  EXPECT_DOUBLE_EQ(bucketWidth(kInf), 1);
  EXPECT_EQ(formatNumber(1.5), "1.50");
  EXPECT_EQ(formatNumber(kNaN), "-");
  EXPECT_EQ(formatNumber(kInf, "%.1f"), "-");
}

TEST(ReportLine, DrawsSeriesLegendAndReferenceLine) {
  LineChart chart{.title = "TTFT p90 per minute",
                  .x = {.title = "time", .format = Format::kTime},
                  .y = {.title = "TTFT p90", .format = Format::kLatency},
                  .series = {ramp("configured", 600, 0.004), ramp("queue-hpa", 600, 0.002)},
                  .references = {{2, "TTFT p90 SLO 2 s"}}};
  const std::string svg = renderLineChart(chart);
  expectValidSvg(svg);
  for (const char* t :
       {"configured", "queue-hpa", "TTFT p90 SLO 2 s", "time", "TTFT p90", "4m", "2s"}) {
    EXPECT_TRUE(hasText(svg, t)) << t;
  }
  const ptree tree = parseXml(svg);
  int lines = 0, dashed = 0;
  for (const ptree* p : elements(tree, "path")) {
    lines += attr(p, "stroke") == kPalette[0] || attr(p, "stroke") == kPalette[1];
    dashed += !attr(p, "stroke-dasharray").empty();
  }
  EXPECT_EQ(lines, 2 + 2);  // two series and their two legend swatches
  EXPECT_EQ(dashed, 1);
}

TEST(ReportScatter, MarksTheHighlightedPointAndTheFrontier) {
  ScatterChart chart{
      .title = "Sweep",
      .x = {.title = "cost per hour ($)", .from_zero = false},
      .y = {.title = "SLO attainment", .format = Format::kPercent, .from_zero = false},
      .points = {{10, 0.80, "owned=1,target=2", false, false},
                 {14, 0.991, "owned=2,target=4", true, true},
                 {20, 0.999, "owned=3,target=4", false, true},
                 {22, 0.95, "owned=4,target=8", false, false}},
      .references = {{0.99, "SLO 99%"}}};
  chart.frontier = paretoFrontier(chart.points, true);
  EXPECT_EQ(chart.frontier, (std::vector<std::size_t>{0, 1, 2}));
  const std::string svg = renderScatterChart(chart);
  expectValidSvg(svg);
  // The highlighted point is labelled in text and ringed; the others are tooltips only.
  EXPECT_TRUE(hasText(svg, "owned=2,target=4"));
  EXPECT_FALSE(hasText(svg, "owned=3,target=4"));
  const ptree tree = parseXml(svg);
  int rings = 0, dots = 0, crosses = 0;
  for (const ptree* c : elements(tree, "circle")) {
    rings += attr(c, "r") == "9";
    dots += attr(c, "r") == "4.5" && !c->get<std::string>("title", "").empty();
  }
  for (const ptree* p : elements(tree, "path")) {
    crosses += attr(p, "stroke") == kPalette[3] && !p->get<std::string>("title", "").empty();
  }
  EXPECT_EQ(rings, 1);
  EXPECT_EQ(dots, 2);
  EXPECT_EQ(crosses, 2);
  // Attainment near 100% is padded up to 100%, not past it.
  EXPECT_TRUE(hasText(svg, "100%"));
  EXPECT_FALSE(hasText(svg, "105%"));
  for (const char* t : {"meets every SLO", "misses an SLO", "Pareto frontier", "SLO 99%"}) {
    EXPECT_TRUE(hasText(svg, t)) << t;
  }
}

TEST(ReportScatter, ParetoFrontier) {
  const std::vector<ScatterPoint> points = {{10, 2.0}, {5, 3.0},    {5, 1.0}, {8, 1.5},
                                            {12, 0.5}, {kNaN, 0.1}, {9, 1.5}};
  // Lower y is better (TTFT p90): cheapest first, each next one faster.
  EXPECT_EQ(paretoFrontier(points, false), (std::vector<std::size_t>{2, 4}));
  // Higher y is better (attainment).
  EXPECT_EQ(paretoFrontier(points, true), (std::vector<std::size_t>{1}));
  EXPECT_TRUE(paretoFrontier({}, true).empty());
}

TEST(ReportSize, ADayOfPerSecondPointsStaysSmall) {
  Document doc("tidegate simulate");
  for (int chart = 0; chart < 4; ++chart) {
    LineChart c{.title = "chart " + std::to_string(chart)};
    for (int s = 0; s < 3; ++s) {
      Series series{"series " + std::to_string(s), {}, {}};
      // Noise (nothing flat to drop) with full-precision values.
      std::uint64_t state = 12345 + chart * 7 + s;
      for (int i = 0; i < 86400; ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        series.points.push_back({double(i), 1.0 / 3 + static_cast<double>(state >> 40) / 1e5});
      }
      c.series.push_back(std::move(series));
    }
    c.step = chart % 2 == 1;
    doc.chart(renderLineChart(c));
  }
  const std::string html = doc.html();
  EXPECT_LT(html.size(), 300u * 1024);
  // Numbers are printed with few decimals: no run of three or more after a point.
  int decimals = -1, longest = 0;
  for (const char c : html) {
    if (c == '.') {
      decimals = 0;
    } else if (decimals >= 0 && std::isdigit(static_cast<unsigned char>(c))) {
      longest = std::max(longest, ++decimals);
    } else {
      decimals = -1;
    }
  }
  EXPECT_LE(longest, 2);
  parseXml(html);
}

TEST(ReportHtml, NumericCells) {
  struct Case {
    const char* cell;
    bool numeric;
  } cases[] = {{"12", true},          {"-3.5", true},
               {"1,234", true},       {"$12.30", true},
               {"99.2%", true},       {"250ms", true},
               {"12k", true},         {"1h30m", true},
               {"1.5 tok/s", true},   {"queue-hpa", false},
               {"A10", false},        {"", false},
               {"owned-only", false}, {"3 replicas and more", false},
               {"-", false}};
  for (const auto& c : cases) EXPECT_EQ(looksNumeric(c.cell), c.numeric) << c.cell;
}

TEST(ReportHtml, DocumentIsSelfContainedAndEscaped) {
  Document doc("Simulation <of> day & night");
  doc.heading("Summary");
  doc.paragraph("Trace \"azure\" <2024>");
  doc.summary({{"Requests", "12,345"}, {"Policy", "<configured>"}});
  doc.table({.header = {"policy", "cost", "TTFT p90"},
             .rows = {{"configured", "$12.30", "1.2s"},
                      {"static-peak", "$40.00", "0.8s"},
                      {"owned-only"}},
             .highlighted_row = 0});
  doc.chart(renderLineChart({.title = "Arrival rate", .series = {ramp("rate", 10, 2)}}),
            "requests per second");
  const std::string html = doc.html();
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  for (const char* raw :
       {"<of>", "\"azure\"", "<2024>", "<configured>", "<script", "http://", "https://", "src="}) {
    // The SVG namespace is a name, not a reference; nothing else may point outside.
    if (std::string_view(raw) == "http://") {
      EXPECT_EQ(html.find("http://", html.find("http://www.w3.org/2000/svg") + 1),
                std::string::npos);
      continue;
    }
    EXPECT_EQ(html.find(raw), std::string::npos) << raw;
  }
  const ptree tree = parseXml(html);
  EXPECT_EQ(tree.get<std::string>("html.head.title"), "Simulation <of> day & night");
  EXPECT_EQ(tree.get<std::string>("html.body.h1"), "Simulation <of> day & night");
  EXPECT_EQ(elements(tree, "style").size(), 1u);
  EXPECT_EQ(elements(tree, "svg").size(), 1u);
  EXPECT_EQ(elements(tree, "figcaption").size(), 1u);

  // Numeric columns are right-aligned, the highlighted row marked, short rows padded.
  const auto rows = elements(tree, "tr");
  int highlighted = 0;
  for (const ptree* r : rows) highlighted += attr(r, "class") == "highlight";
  EXPECT_EQ(highlighted, 1);
  std::vector<std::string> classes;
  for (const ptree* d : elements(tree, "td")) classes.push_back(attr(d, "class"));
  // Summary: "12,345" numeric, "<configured>" not; table: 3 rows × (text, num, num).
  EXPECT_EQ(classes, (std::vector<std::string>{"num", "", "", "num", "num", "", "num", "num", "",
                                               "num", "num"}));
  const auto header = elements(tree, "th");
  ASSERT_EQ(header.size(), 2u + 3u);
  EXPECT_EQ(attr(header[3], "class"), "num");
}

}  // namespace
}  // namespace tidegate::report

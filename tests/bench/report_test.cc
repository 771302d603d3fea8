#include "bench/report.h"

#include <gtest/gtest.h>

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <sstream>

namespace tidegate::bench {
namespace {

// A run of 60 s: one request a second, TTFT growing with time, every 10th failing.
Recorder wave() {
  Recorder rec;
  for (int i = 0; i < 60; ++i) {
    Record r;
    r.index = static_cast<std::uint64_t>(i);
    r.scheduled = r.sent = i;
    if (i % 10 == 9) {
      r.error = "http_503";
      r.status = 503;
      rec.add(r, {});
      continue;
    }
    r.status = 200;
    r.ttft = 0.05 + i * 0.01;
    r.e2e = r.ttft + 0.5;
    r.output_tokens = 20;
    r.prompt_tokens = 100;
    r.model = "m<1>";
    rec.add(r, {0.02, 0.03, 0.025});
  }
  return rec;
}

TEST(BenchReport, ChartsAndSummaryOfTheRun) {
  Recorder rec = wave();
  Summary s = summarize(rec, 60.5, 0.2);
  const auto slo = parseSlo("ttft_p90<500ms,error_rate<1%").value();
  evaluateSlo(s, slo);
  ReportInput in{.title = "bench <run>",
                 .about = {"Target: http://127.0.0.1:1 (chat, model m)"},
                 .summary = &s,
                 .records = &rec.records(),
                 .itls = &rec.itls(),
                 .slo = slo};
  const auto cs = charts(in);
  std::vector<std::string> names;
  for (const auto& [name, svg] : cs) {
    names.push_back(name);
    EXPECT_EQ(svg.rfind("<svg", 0), 0u) << name;
    EXPECT_EQ(svg.find("nan"), std::string::npos) << name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"ttft", "itl", "throughput", "tokens", "ttft_over_time"}));
  EXPECT_NE(cs[2].second.find("failed"), std::string::npos);
  EXPECT_NE(cs[2].second.find("1s buckets"), std::string::npos);  // 60 s: one-second buckets
  EXPECT_NE(cs[4].second.find("SLO TTFT p90 500.0 ms"), std::string::npos);

  const std::string html = renderReport(in);
  // Well-formed, self-contained, escaped.
  boost::property_tree::ptree tree;
  std::istringstream xml(html);
  ASSERT_NO_THROW(boost::property_tree::read_xml(xml, tree)) << html.substr(0, 2000);
  EXPECT_EQ(tree.get<std::string>("html.head.title"), "bench <run>");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("responses from m&lt;1&gt;"), std::string::npos);
  // The numbers of the summary: 60 sent, 54 completed, 6 failed as http_503; SLOs judged.
  for (const char* want : {"<td class=\"num\">60</td>", "54 / 6", "errors: http_503",
                           "SLO ttft_p90&lt;500ms", "SLO error_rate&lt;1%", "missed"})
    EXPECT_NE(html.find(want), std::string::npos) << want;
  // The latency table: TTFT, ITL and E2E rows with their sample counts (54 TTFTs, 162 gaps).
  EXPECT_NE(html.find("<td>ITL</td><td class=\"num\">162</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>TTFT</td><td class=\"num\">54</td>"), std::string::npos);
}

TEST(BenchReport, AnEmptyOrFailedRunStillRenders) {
  Recorder rec;
  Record r;
  r.error = "connect";
  rec.add(r, {});
  Summary s = summarize(rec, 0, 0);
  ReportInput in{.summary = &s, .records = &rec.records(), .itls = nullptr};
  const std::string html = renderReport(in);
  EXPECT_NE(html.find("no data"), std::string::npos);
  EXPECT_EQ(html.find("nan"), std::string::npos);
  EXPECT_EQ(html.find("inf<"), std::string::npos);
  Recorder none;
  Summary z = summarize(none, 0, 0);
  ReportInput empty{.summary = &z, .records = &none.records()};
  EXPECT_NE(renderReport(empty).find("<svg"), std::string::npos);
}

}  // namespace
}  // namespace tidegate::bench

#include "common/duration.h"

#include <gtest/gtest.h>

namespace tidegate {
namespace {

TEST(Duration, ParsesGoAndKubernetesForms) {
  struct Case {
    const char* text;
    double seconds;
  } cases[] = {{"30s", 30},   {"2m", 120},       {"1h", 3600}, {"500ms", 0.5}, {"1m30s", 90},
               {"1.5s", 1.5}, {"250us", 250e-6}, {"10", 10},   {"0s", 0},      {"2h45m", 9900}};
  for (const auto& c : cases) {
    auto d = parseDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.error().message;
    EXPECT_DOUBLE_EQ(*d, c.seconds) << c.text;
  }
}

TEST(Duration, RejectsWithAReason) {
  struct Case {
    const char* text;
    const char* reason;
  } cases[] = {{"", "empty"},
               {"abc", "expected a number"},
               {"5x", "unknown unit 'x'"},
               {"-5s", "negative"},
               {"1m30", "unit"},
               {"s", "expected a number"}};
  for (const auto& c : cases) {
    auto d = parseDuration(c.text);
    ASSERT_FALSE(d.ok()) << c.text;
    EXPECT_NE(d.error().message.find(c.reason), std::string::npos)
        << c.text << " -> " << d.error().message;
  }
}

TEST(Duration, Formats) {
  EXPECT_EQ(formatDuration(0.25), "250ms");
  EXPECT_EQ(formatDuration(1.5), "1.5s");
  EXPECT_EQ(formatDuration(90), "1m30s");
  EXPECT_EQ(formatDuration(5400), "1h30m");
}

}  // namespace
}  // namespace tidegate

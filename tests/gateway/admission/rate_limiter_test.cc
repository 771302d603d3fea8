#include "gateway/admission/rate_limiter.h"

#include <gtest/gtest.h>

namespace tidegate::gateway::admission {
namespace {

api::UsagePlan plan(double rpm = 0, double tpm = 0, double rpd = 0, double tpd = 0,
                    double tpmonth = 0, int conc = 0) {
  api::UsagePlan p;
  p.meta.name = "p";
  p.requests_per_minute = rpm;
  p.tokens_per_minute = tpm;
  p.requests_per_day = rpd;
  p.tokens_per_day = tpd;
  p.tokens_per_month = tpmonth;
  p.max_concurrent = conc;
  return p;
}

constexpr double kNoon = 1798804800;  // 2027-01-01T12:00:00Z

TEST(LocalLimiter, NRequestsPerMinuteAdmitsExactlyNThenSaysWhen) {
  LocalLimiter l;
  const auto p = plan(10);
  int admitted = 0;
  Decision last;
  for (int i = 0; i < 25; ++i) {
    last = l.admit("k", p, 1, 100.0 + i * 0.001, kNoon);
    if (last.allowed()) {
      ++admitted;
      l.finish("k", p, 1, 1, 100.0, kNoon);
    }
  }
  EXPECT_EQ(admitted, 10);
  EXPECT_EQ(last.refusal, Refusal::kRequestsPerMinute);
  EXPECT_NEAR(last.retry_after_s, 6.0, 0.05);  // one request every 6 s
  EXPECT_EQ(last.limit_requests, 10);
  EXPECT_EQ(last.remaining_requests, 0);
  // Another key is not affected.
  EXPECT_TRUE(l.admit("other", p, 1, 100, kNoon).allowed());
  // After the retry-after one more fits.
  EXPECT_TRUE(l.admit("k", p, 1, 106.1, kNoon).allowed());
}

TEST(LocalLimiter, AllLimitsOrNoneAreCharged) {
  LocalLimiter l;
  const auto p = plan(100, 1000);
  // 900 tokens fit; the next 200 do not, and the refused request does not use a request slot.
  EXPECT_TRUE(l.admit("k", p, 900, 0, kNoon).allowed());
  const auto d = l.admit("k", p, 200, 0, kNoon);
  EXPECT_EQ(d.refusal, Refusal::kTokensPerMinute);
  EXPECT_EQ(d.remaining_requests, 99);
  EXPECT_EQ(d.remaining_tokens, 100);
}

TEST(LocalLimiter, SettlingRefundsAnOverEstimate) {
  LocalLimiter l;
  const auto p = plan(0, 1000);
  ASSERT_TRUE(l.admit("k", p, 1000, 0, kNoon).allowed());
  EXPECT_FALSE(l.admit("k", p, 100, 0, kNoon).allowed());
  l.finish("k", p, 1000, 300, 0, kNoon);  // used 300 of the 1000 reserved
  EXPECT_TRUE(l.admit("k", p, 700, 0, kNoon).allowed());
  EXPECT_FALSE(l.admit("k", p, 10, 0, kNoon).allowed());
}

TEST(LocalLimiter, DailyQuotasResetAtMidnightUtc) {
  LocalLimiter l;
  const auto p = plan(0, 0, 3, 0);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(l.admit("k", p, 1, 0, kNoon).allowed());
  const auto d = l.admit("k", p, 1, 0, kNoon);
  EXPECT_EQ(d.refusal, Refusal::kRequestsPerDay);
  EXPECT_NEAR(d.retry_after_s, 12 * 3600, 1);
  EXPECT_EQ(d.limit_requests, 3);  // the daily quota stands in for the per-minute headers
  EXPECT_TRUE(l.admit("k", p, 1, 0, kNoon + 12 * 3600).allowed());
}

TEST(LocalLimiter, TokenQuotasPerDayAndMonthSettleInTheirWindow) {
  LocalLimiter l;
  const auto p = plan(0, 0, 0, 1000, 1500);
  ASSERT_TRUE(l.admit("k", p, 800, 0, kNoon).allowed());
  l.finish("k", p, 800, 500, 0, kNoon);
  EXPECT_TRUE(l.admit("k", p, 500, 0, kNoon).allowed());  // 500 + 500 <= 1000
  l.finish("k", p, 500, 500, 0, kNoon);
  EXPECT_EQ(l.admit("k", p, 1, 0, kNoon).refusal, Refusal::kTokensPerDay);
  // The next day the monthly quota (1000 of 1500 used) is what binds.
  const double tomorrow = kNoon + 86400;
  EXPECT_EQ(l.admit("k", p, 600, 0, tomorrow).refusal, Refusal::kTokensPerMonth);
  EXPECT_TRUE(l.admit("k", p, 500, 0, tomorrow).allowed());
}

TEST(LocalLimiter, ConcurrencyIsHeldUntilFinish) {
  LocalLimiter l;
  const auto p = plan(0, 0, 0, 0, 0, 2);
  EXPECT_TRUE(l.admit("k", p, 1, 0, kNoon).allowed());
  EXPECT_TRUE(l.admit("k", p, 1, 0, kNoon).allowed());
  EXPECT_EQ(l.admit("k", p, 1, 0, kNoon).refusal, Refusal::kConcurrency);
  l.finish("k", p, 1, 1, 0, kNoon);
  EXPECT_TRUE(l.admit("k", p, 1, 0, kNoon).allowed());
}

TEST(LocalLimiter, SeededUsageCountsAgainstQuotas) {
  LocalLimiter l;
  const auto p = plan(0, 0, 10, 0);
  l.seed("k", 9, 0, 0, kNoon);
  EXPECT_TRUE(l.admit("k", p, 1, 0, kNoon).allowed());
  EXPECT_FALSE(l.admit("k", p, 1, 0, kNoon).allowed());
  EXPECT_EQ(l.remaining("k", p, 0, kNoon).requests_per_day, 0);
}

TEST(CalendarWindows, MonthsHaveTheirRealLength) {
  EXPECT_NEAR(secondsToNextMonth(kNoon), 30 * 86400 + 12 * 3600, 1);  // January: 31 days
  EXPECT_EQ(monthOf(kNoon) + 1, monthOf(kNoon + 31 * 86400));
  EXPECT_NEAR(secondsToNextDay(kNoon), 12 * 3600, 1e-6);
}

}  // namespace
}  // namespace tidegate::gateway::admission

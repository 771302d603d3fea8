#include "gateway/admission/limiter.h"

#include <gtest/gtest.h>

namespace tidegate::gateway::admission {
namespace {

TEST(Limiter, APlanOfNRequestsPerMinuteAdmitsExactlyNInABurst) {
  const Limit rpm{.limit = 10, .period_s = 60};
  double tat = 0;
  int admitted = 0;
  for (int i = 0; i < 25; ++i) admitted += take(rpm, tat, 1, 100).allowed;
  EXPECT_EQ(admitted, 10);
  auto denied = take(rpm, tat, 1, 100);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.remaining, 0);
  EXPECT_NEAR(denied.retry_after_s, 6, 1e-9);  // one request's worth of the period
  EXPECT_NEAR(denied.reset_s, 60, 1e-9);
  // After 6 s exactly one more fits; after the whole period, the full burst again.
  EXPECT_TRUE(take(rpm, tat, 1, 106).allowed);
  EXPECT_FALSE(take(rpm, tat, 1, 106).allowed);
  EXPECT_EQ(peek(rpm, tat, 172).remaining, 10);
}

TEST(Limiter, SteadyTrafficAtTheRateIsNeverDenied) {
  const Limit rps{.limit = 5, .period_s = 1, .burst = 1};
  double tat = 0;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(take(rps, tat, 1, i * 0.2).allowed) << i;
  EXPECT_FALSE(take(rps, tat, 1, 99 * 0.2 + 0.1).allowed);  // faster than the rate
}

TEST(Limiter, TokenLimitsReserveThenSettleOnRealUsage) {
  const Limit tpm{.limit = 1000, .period_s = 60};
  double tat = 0;
  // Reserve prompt + max_tokens = 600; the answer used 200: 400 come back.
  ASSERT_TRUE(take(tpm, tat, 600, 0).allowed);
  EXPECT_EQ(peek(tpm, tat, 0).remaining, 400);
  settle(tpm, tat, 600, 200, 0);
  EXPECT_EQ(peek(tpm, tat, 0).remaining, 800);
  // Under-estimates become a debt the next requests pay.
  ASSERT_TRUE(take(tpm, tat, 100, 0).allowed);
  settle(tpm, tat, 100, 900, 0);
  EXPECT_EQ(peek(tpm, tat, 0).remaining, 0);
  EXPECT_FALSE(take(tpm, tat, 1, 0).allowed);
  // A refund never banks capacity beyond the burst.
  double fresh = 0;
  settle(tpm, fresh, 500, 0, 10);
  EXPECT_EQ(peek(tpm, fresh, 10).remaining, 1000);
}

TEST(Limiter, RequestsLargerThanTheBurstAreDeniedWithAnHonestRetryAfter) {
  const Limit tpm{.limit = 1000, .period_s = 60};
  double tat = 0;
  auto v = take(tpm, tat, 1500, 0);
  EXPECT_FALSE(v.allowed);
  EXPECT_NEAR(v.retry_after_s, 30, 1e-9);  // it can never fit: the caller reports that
  EXPECT_EQ(tat, 0);                       // denials consume nothing
  const Limit none{};
  EXPECT_TRUE(take(none, tat, 1e9, 0).allowed);  // no limit configured
}

}  // namespace
}  // namespace tidegate::gateway::admission

#include "gateway/relay/retry_policy.h"

#include <gtest/gtest.h>

namespace tidegate::gateway::relay {
namespace {

TEST(RetryPolicy, RetriesOnlyWhatAnotherEndpointMayAnswer) {
  struct Case {
    Outcome outcome;
    int attempt, retries;
    Next want;
  } cases[] = {
      {Outcome::kServed, 0, 2, Next::kDone},
      {Outcome::kClientGone, 0, 2, Next::kDone},  // nobody to answer
      {Outcome::kMidStream, 0, 2, Next::kDone},   // bytes reached the client: no second copy
      {Outcome::kConnect, 0, 2, Next::kRetry},
      {Outcome::kReset, 1, 2, Next::kRetry},
      {Outcome::kTimeout, 0, 2, Next::kRetry},
      {Outcome::kIo, 0, 2, Next::kRetry},
      {Outcome::kHttp5xx, 0, 2, Next::kRetry},
      {Outcome::kHttp429, 0, 2, Next::kRetry},
      {Outcome::kBadResponse, 0, 2, Next::kRetry},
      {Outcome::kHttp5xx, 2, 2, Next::kGiveUp},     // retries used up
      {Outcome::kConnect, 0, 0, Next::kGiveUp},     // retries off
      {Outcome::kNoEndpoint, 0, 2, Next::kGiveUp},  // nothing left to try
  };
  for (const auto& c : cases)
    EXPECT_EQ(decide(c.outcome, c.attempt, c.retries), c.want)
        << outcomeKind(c.outcome) << " attempt " << c.attempt << " of " << c.retries;
}

TEST(RetryPolicy, GivingUpSaysWhy) {
  EXPECT_EQ(giveUpStatus(Outcome::kNoEndpoint), 503u);
  EXPECT_EQ(giveUpStatus(Outcome::kTimeout), 504u);
  for (auto o :
       {Outcome::kConnect, Outcome::kReset, Outcome::kIo, Outcome::kBadResponse, Outcome::kHttp5xx})
    EXPECT_EQ(giveUpStatus(o), 502u) << outcomeKind(o);
}

}  // namespace
}  // namespace tidegate::gateway::relay

#include "kube/leader.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace tidegate::kube {
namespace {

bj::object lease(const std::string& holder, const std::string& renew, int duration = 15,
                 int transitions = 0) {
  return bj::object{{"apiVersion", "coordination.k8s.io/v1"},
                    {"kind", "Lease"},
                    {"metadata", bj::object{{"name", "tidegate-controller"},
                                            {"namespace", "tidegate"},
                                            {"resourceVersion", "7"}}},
                    {"spec", bj::object{{"holderIdentity", holder},
                                        {"leaseDurationSeconds", duration},
                                        {"acquireTime", "2026-11-23T00:00:00.000000Z"},
                                        {"renewTime", renew},
                                        {"leaseTransitions", transitions}}}};
}

LeaderConfig config(const std::string& me) {
  LeaderConfig c;
  c.ns = "tidegate";
  c.identity = me;
  return c;
}

TEST(KubeLease, MicroTimeHasMicroseconds) {
  EXPECT_EQ(formatMicroTime(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(formatMicroTime(1795392000.25), "2026-11-23T00:00:00.250000Z");
}

TEST(KubeLease, AMissingLeaseIsCreatedHeldByUs) {
  LeaseObservation seen;
  auto s = decideLease(std::nullopt, config("a"), seen, 100, 1795392000);
  EXPECT_EQ(s.action, LeaseStep::Action::kCreate);
  EXPECT_EQ(s.holder, "a");
  const auto& spec = s.lease.at("spec").as_object();
  EXPECT_EQ(spec.at("holderIdentity").as_string(), "a");
  EXPECT_EQ(spec.at("leaseDurationSeconds").as_int64(), 15);
  EXPECT_EQ(spec.at("leaseTransitions").as_int64(), 0);
  EXPECT_EQ(s.lease.at("metadata").at("namespace").as_string(), "tidegate");
}

TEST(KubeLease, AnotherHoldersLeaseIsRespectedUntilItExpiresOnOurClock) {
  LeaseObservation seen;
  const auto held = lease("b", "2026-11-23T00:00:00.000000Z");
  // First sight at t=100: b holds it for 15 s from now on our clock, whatever its renewTime says.
  auto s = decideLease(held, config("a"), seen, 100, 0);
  EXPECT_EQ(s.action, LeaseStep::Action::kWait);
  EXPECT_EQ(s.holder, "b");
  EXPECT_EQ(decideLease(held, config("a"), seen, 114.9, 0).action, LeaseStep::Action::kWait);
  // b renewed (the record changed) at 110: the clock restarts.
  const auto renewed = lease("b", "2026-11-23T00:00:10.000000Z");
  EXPECT_EQ(decideLease(renewed, config("a"), seen, 110, 0).action, LeaseStep::Action::kWait);
  EXPECT_EQ(decideLease(renewed, config("a"), seen, 124.9, 0).action, LeaseStep::Action::kWait);
  // No change for 15 s: we take it over, counting a transition and keeping the resourceVersion
  // (the PUT's precondition: of two candidates only one can win).
  auto take = decideLease(renewed, config("a"), seen, 125.1, 1795392000);
  ASSERT_EQ(take.action, LeaseStep::Action::kUpdate);
  const auto& spec = take.lease.at("spec").as_object();
  EXPECT_EQ(spec.at("holderIdentity").as_string(), "a");
  EXPECT_EQ(spec.at("leaseTransitions").as_int64(), 1);
  EXPECT_EQ(spec.at("acquireTime").as_string(), "2026-11-23T00:00:00.000000Z");
  EXPECT_EQ(take.lease.at("metadata").at("resourceVersion").as_string(), "7");
}

TEST(KubeLease, OurOwnLeaseIsRenewedWithoutATransition) {
  LeaseObservation seen;
  auto s = decideLease(lease("a", "2026-11-23T00:00:00.000000Z", 15, 4), config("a"), seen, 100,
                       1795392005);
  ASSERT_EQ(s.action, LeaseStep::Action::kUpdate);
  const auto& spec = s.lease.at("spec").as_object();
  EXPECT_EQ(spec.at("leaseTransitions").as_int64(), 4);
  EXPECT_EQ(spec.at("acquireTime").as_string(), "2026-11-23T00:00:00.000000Z");  // kept
  EXPECT_EQ(spec.at("renewTime").as_string(), "2026-11-23T00:00:05.000000Z");
}

TEST(KubeLease, AReleasedLeaseIsTakenAtOnce) {
  LeaseObservation seen;
  // Released: no holder (and a 1 s duration): no wait; taking it is a transition (client-go).
  auto s = decideLease(lease("", "2026-11-23T00:00:00.000000Z", 1, 3), config("a"), seen, 100, 0);
  ASSERT_EQ(s.action, LeaseStep::Action::kUpdate);
  EXPECT_EQ(s.lease.at("spec").at("leaseTransitions").as_int64(), 4);
  // A holder that set a 1 s duration is waited for 1 s only.
  LeaseObservation seen2;
  const auto short_lease = lease("b", "2026-11-23T00:00:00.000000Z", 1, 3);
  EXPECT_EQ(decideLease(short_lease, config("a"), seen2, 100, 0).action, LeaseStep::Action::kWait);
  EXPECT_EQ(decideLease(short_lease, config("a"), seen2, 101.1, 0).action,
            LeaseStep::Action::kUpdate);
}

}  // namespace
}  // namespace tidegate::kube

#include "gateway/admin.h"

#include <gtest/gtest.h>

namespace tidegate::gateway {
namespace {

TEST(AdminGate, NeverRunsOpen) {
  using V = boost::beast::http::verb;
  using G = AdminGate;
  struct Case {
    const char* path;
    V method;
    bool token_configured, token_presented, loopback;
    G want;
  } cases[] = {
      // Probes and metrics are always served: Prometheus and kubelets carry no token.
      {"/metrics", V::get, false, false, false, G::kServe},
      {"/healthz", V::get, true, false, false, G::kServe},
      {"/readyz", V::get, true, false, true, G::kServe},
      // With a token: /admin/* needs it, whatever the address.
      {"/admin/state", V::get, true, false, true, G::kUnauthorized},
      {"/admin/keys", V::post, true, false, true, G::kUnauthorized},
      {"/admin/keys", V::post, true, true, false, G::kServe},
      {"/admin/keys/key_1", V::delete_, true, true, true, G::kServe},
      // Without one: read-only, and only on a loopback address.
      {"/admin/keys", V::get, false, false, true, G::kServe},
      {"/admin/state", V::head, false, false, true, G::kServe},
      {"/admin/keys", V::post, false, false, true, G::kReadOnly},
      {"/admin/keys/key_1", V::delete_, false, false, true, G::kReadOnly},
      {"/admin/keys/key_1", V::patch, false, false, true, G::kReadOnly},
      {"/admin/keys", V::put, false, false, true, G::kReadOnly},
      {"/admin/keys", V::post, false, false, false, G::kReadOnly},
      {"/admin/usage", V::get, false, false, false, G::kLoopbackOnly},
      {"/admin/state", V::get, false, false, false, G::kLoopbackOnly},
  };
  for (const auto& c : cases)
    EXPECT_EQ(adminGate(c.path, c.method, c.token_configured, c.token_presented, c.loopback),
              c.want)
        << c.path << " " << boost::beast::http::to_string(c.method) << " token "
        << c.token_configured << c.token_presented << " loopback " << c.loopback;
}

}  // namespace
}  // namespace tidegate::gateway

#include "api/reload.h"

#include <gtest/gtest.h>

#include "api/loader.h"

namespace tidegate::api {
namespace {

// A configuration with `plans` plans and `keys` keys, and `gateway_spec` as the Gateway's spec.
Config make(int plans, int keys, const std::string& gateway_spec = "{}") {
  std::string y = "apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: g}\nspec: " +
                  gateway_spec + "\n";
  for (int i = 0; i < plans; ++i)
    y += "---\napiVersion: tidegate.io/v1alpha1\nkind: UsagePlan\nmetadata: {name: p" +
         std::to_string(i) + "}\nspec: {}\n";
  for (int i = 0; i < keys; ++i)
    y += "---\napiVersion: tidegate.io/v1alpha1\nkind: APIKey\nmetadata: {name: k" +
         std::to_string(i) + "}\nspec: {plan: p0, sha256: " + std::string(63, '0') +
         std::to_string(i) + "}\n";
  auto c = parseConfig(y, "f.yaml");
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.ok() ? *c : Config{};
}

const char* kTls = "{tls: {certificateFile: c, keyFile: k}}";
const char* kMutualTls = "{tls: {certificateFile: c, keyFile: k, clientCAFile: ca}}";

TEST(Reload, RefusesWhatAFileCutShortWouldDoUnlessTheFileSaysSo) {
  struct Case {
    const char* name;
    Config running, next;
    std::string refusal;  // empty: allowed
  } cases[] = {
      {"same file", make(2, 4), make(2, 4), ""},
      {"one key more", make(2, 4), make(2, 5), ""},
      {"half the keys dropped", make(2, 4), make(2, 2), ""},
      {"more than half the keys dropped", make(2, 4), make(2, 1),
       "the file drops 3 of 4 APIKeys (more than half): set spec.auth.allowKeyRemoval: true"},
      {"the only key dropped", make(1, 1), make(1, 0),
       "the file drops 1 of 1 APIKeys (more than half)"},
      {"most plans dropped", make(3, 1), make(1, 1),
       "the file drops 2 of 3 UsagePlans (more than half)"},
      {"drop allowed by the new file", make(2, 4), make(2, 1, "{auth: {allowKeyRemoval: true}}"),
       ""},
      // Cut short to its first documents: keys and plans gone, so the implied mode would turn
      // authentication off.
      {"implied mode switched off", make(2, 2), make(0, 0),
       "spec.auth.apiKeys would change from required to disabled without the file saying so"},
      {"implied mode switched off, removal allowed", make(2, 2),
       make(0, 0, "{auth: {allowKeyRemoval: true}}"), "spec.auth.apiKeys would change"},
      {"explicit mode switched off", make(2, 2),
       make(0, 0, "{auth: {apiKeys: disabled, allowKeyRemoval: true}}"), ""},
      {"explicit required, keys gone, removal allowed", make(1, 2, "{auth: {apiKeys: required}}"),
       make(0, 0, "{auth: {apiKeys: required, allowKeyRemoval: true}}"), ""},
      {"explicit required to implied disabled", make(0, 0, "{auth: {apiKeys: required}}"),
       make(0, 0), "spec.auth.apiKeys would change from required to disabled"},
      {"implied disabled to implied required", make(0, 0), make(1, 1),
       "spec.auth.apiKeys would change from disabled to required"},
      {"mutual TLS turned off", make(1, 1, kMutualTls), make(1, 1, kTls),
       "spec.tls.clientCAFile would be removed"},
      {"mutual TLS with another CA", make(1, 1, kMutualTls),
       make(1, 1, "{tls: {certificateFile: c, keyFile: k, clientCAFile: other}}"), ""},
  };
  for (const auto& c : cases) {
    const auto r = reviewReload(c.running, c.running, c.next);
    if (c.refusal.empty()) {
      EXPECT_TRUE(r.allowed()) << c.name << ": " << (r.refusals.empty() ? "" : r.refusals[0]);
    } else {
      ASSERT_FALSE(r.allowed()) << c.name;
      bool found = false;
      for (const auto& f : r.refusals) found = found || f.find(c.refusal) != std::string::npos;
      EXPECT_TRUE(found) << c.name << ": want " << c.refusal << "\ngot " << r.refusals[0];
    }
  }
}

TEST(Reload, NamesStartUpOnlySettingsAgainstTheFirstConfiguration) {
  const auto started = make(1, 1);
  const auto moved = make(1, 1,
                          "{listen: \"127.0.0.1:9000\", workers: 4, ledger: {path: /tmp/l.db}, "
                          "rateLimit: {backend: redis}}");
  auto r = reviewReload(started, started, moved);
  EXPECT_TRUE(r.allowed());
  ASSERT_EQ(r.restart_needed.size(), 4u);
  EXPECT_EQ(r.restart_needed[0].field, "spec.listen");
  EXPECT_EQ(r.restart_needed[0].running, "127.0.0.1:8080");
  EXPECT_EQ(r.restart_needed[0].configured, "127.0.0.1:9000");
  EXPECT_EQ(r.restart_needed[1].field, "spec.workers");
  EXPECT_EQ(r.restart_needed[2].field, "spec.ledger.path");
  EXPECT_EQ(r.restart_needed[3].field, "spec.rateLimit.backend");
  EXPECT_EQ(r.restart_needed[3].configured, "redis");
  // A second reload is still compared with what the process started with.
  EXPECT_EQ(reviewReload(started, moved, moved).restart_needed.size(), 4u);
  EXPECT_TRUE(reviewReload(started, moved, started).restart_needed.empty());
  // Every other setting read only at start-up, one at a time.
  for (const auto& [spec, field] : std::vector<std::pair<std::string, std::string>>{
           {"{limits: {maxConnections: 5}}", "spec.limits.maxConnections"},
           {"{limits: {maxBodyBytes: 4096}}", "spec.limits.maxBodyBytes"},
           {"{limits: {maxHeaderBytes: 4096}}", "spec.limits.maxHeaderBytes"},
           {"{timeouts: {idle: 5s}}", "spec.timeouts.idle (client connections)"},
           {"{seed: 7}", "spec.seed"},
           {"{admin: \"127.0.0.1:9001\"}", "spec.admin"},
           {"{rateLimit: {backend: redis}}", "spec.rateLimit.backend"},
           {kTls, "spec.tls"}}) {
    const auto review = reviewReload(started, started, make(1, 1, spec));
    ASSERT_EQ(review.restart_needed.size(), 1u) << spec;
    EXPECT_EQ(review.restart_needed[0].field, field);
  }
  const auto tls = make(1, 1, kTls);
  const auto slow = make(1, 1, "{tls: {certificateFile: c, keyFile: k, handshakeTimeout: 1m}}");
  const auto named = reviewReload(tls, tls, slow).restart_needed;
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].field, "spec.tls.handshakeTimeout");
  EXPECT_EQ(named[0].running, "10s");
  EXPECT_EQ(named[0].configured, "60s");
  EXPECT_EQ(r.changes, "auth required, keys 1, plans 1, pools 0, models 0, routes 0");
  EXPECT_EQ(reviewReload(started, started, make(2, 2)).changes,
            "auth required, keys 1 -> 2, plans 1 -> 2, pools 0, models 0, routes 0");
}

}  // namespace
}  // namespace tidegate::api

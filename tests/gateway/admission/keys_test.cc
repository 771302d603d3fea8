#include "gateway/admission/keys.h"

#include <gtest/gtest.h>

#include "common/crypto.h"

namespace tidegate::gateway::admission {
namespace {

api::APIKey key(const std::string& name, const std::string& secret) {
  api::APIKey k;
  k.meta.name = name;
  k.plan = "free";
  k.sha256 = crypto::sha256(secret);
  return k;
}

TEST(KeyStore, FindsKeysBySecretOnly) {
  KeyStore s;
  s.setStatic({key("a", "sk-a"), key("b", "sk-b")});
  ASSERT_TRUE(s.find("sk-a"));
  EXPECT_EQ(s.find("sk-a")->id, "a");
  EXPECT_EQ(s.find("sk-b")->id, "b");
  EXPECT_FALSE(s.find("sk-c"));
  EXPECT_FALSE(s.find(""));
  EXPECT_FALSE(s.find(crypto::sha256("sk-a")));  // the digest is not the key
}

TEST(KeyStore, CreatedKeysSurviveReloadsAndAreRevokedAtOnce) {
  KeyStore s;
  s.setStatic({key("a", "sk-a")});
  KeyRecord created{"key_1", "ci", "pro", crypto::sha256("sk-new"), std::nullopt, 1, true};
  s.put(created);
  s.setStatic({});  // a reload that drops the static key
  EXPECT_FALSE(s.find("sk-a"));
  ASSERT_TRUE(s.find("sk-new"));
  const auto held = s.find("sk-new");  // a request in flight keeps its snapshot
  EXPECT_TRUE(s.remove("key_1"));
  EXPECT_FALSE(s.find("sk-new"));
  EXPECT_EQ(held->plan, "pro");
  EXPECT_FALSE(s.remove("key_1"));
}

TEST(KeyStore, PresentedKeyReadsBearerOrApiKey) {
  EXPECT_EQ(presentedKey("Bearer sk-1", ""), "sk-1");
  EXPECT_EQ(presentedKey("bearer  sk-1 ", ""), "sk-1");
  EXPECT_EQ(presentedKey("", "sk-2"), "sk-2");
  EXPECT_EQ(presentedKey("Basic abc", "sk-2"), "sk-2");
  EXPECT_EQ(presentedKey("", ""), "");
}

}  // namespace
}  // namespace tidegate::gateway::admission

#include "gateway/console.h"

#include <gtest/gtest.h>

#include "common/crypto.h"

namespace tidegate::gateway {
namespace {

std::string between(std::string_view text, std::string_view open, std::string_view close) {
  const auto a = text.find(open);
  if (a == std::string_view::npos) return "";
  const auto b = text.find(close, a + open.size());
  if (b == std::string_view::npos) return "";
  return std::string(text.substr(a + open.size(), b - a - open.size()));
}

std::string header(const http::Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

// The browser runs the page's script and style only if their hashes are the ones the
// Content-Security-Policy names: a page edited without them would show nothing.
TEST(ConsolePage, TheContentSecurityPolicyAllowsExactlyItsOwnScriptAndStyle) {
  const std::string_view page = consolePage();
  const std::string csp = header(consoleHeaders(), "Content-Security-Policy");
  for (const auto& [open, close, directive] :
       {std::tuple{"<script>", "</script>", "script-src"}, {"<style>", "</style>", "style-src"}}) {
    const std::string body = between(page, open, close);
    ASSERT_FALSE(body.empty()) << open;
    const std::string hash = "'sha256-" + crypto::base64Encode(crypto::sha256(body)) + "'";
    EXPECT_NE(csp.find(std::string(directive) + " " + hash), std::string::npos) << csp;
  }
  // One script, one stylesheet, nothing from elsewhere.
  EXPECT_EQ(page.find("<script", page.find("<script>") + 1), std::string_view::npos);
  for (const char* ref : {"http://", "https://", " src=", "@import", "url("})
    EXPECT_EQ(page.find(ref), std::string_view::npos) << ref;
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(header(consoleHeaders(), "X-Content-Type-Options"), "nosniff");
}

}  // namespace
}  // namespace tidegate::gateway

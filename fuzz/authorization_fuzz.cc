// Fuzzes how a request's API key is read from its headers (gateway/admission/keys.h
// `presentedKey`, for `Authorization: Bearer KEY` or `api-key: KEY`) and looked up. The input is
// the two header values, separated by the first newline (a header value holds none). Invariants:
// - the key is a part of one of the two values, never bytes from elsewhere;
// - a Bearer key (the scheme in any case) is the rest of the Authorization value without the
//   spaces around it; otherwise it is the api-key value;
// - the key store finds a key exactly when the presented secret is the key's secret.

#include <cctype>
#include <cstdint>
#include <string>

#include "api/resources.h"
#include "common/crypto.h"
#include "fuzz_check.h"
#include "gateway/admission/keys.h"

namespace admission = tidegate::gateway::admission;

namespace {

constexpr std::string_view kSecret = "sk-fuzz-0123456789";

const admission::KeyStore& store() {
  static const admission::KeyStore* keys = [] {
    auto* k = new admission::KeyStore;
    tidegate::api::APIKey key;
    key.meta.name = "fuzz";
    key.plan = "default";
    key.sha256 = tidegate::crypto::sha256(kSecret);
    k->setStatic({key});
    return k;
  }();
  return *keys;
}

bool within(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

bool startsWithBearer(std::string_view v) {
  constexpr std::string_view kBearer = "bearer ";
  if (v.size() < kBearer.size()) return false;
  for (std::size_t i = 0; i < kBearer.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(v[i])) != kBearer[i]) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = tidegate::fuzz::asText(data, size);
  const auto newline = input.find('\n');
  const std::string_view authorization = input.substr(0, newline);
  const std::string_view api_key =
      newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);

  const std::string_view key = admission::presentedKey(authorization, api_key);
  if (startsWithBearer(authorization) && authorization.size() > 7) {
    FUZZ_CHECK(within(key, authorization));
    FUZZ_CHECK(!key.starts_with(' ') && !key.ends_with(' '));
    std::string_view rest = authorization.substr(7);
    while (rest.starts_with(' ')) rest.remove_prefix(1);
    while (rest.ends_with(' ')) rest.remove_suffix(1);
    FUZZ_CHECK(key == rest);
  } else {
    FUZZ_CHECK(key.data() == api_key.data() && key.size() == api_key.size());
  }

  const auto found = store().find(key);
  FUZZ_CHECK((found != nullptr) == (key == kSecret));
  if (found) FUZZ_CHECK(found->id == "fuzz");
  return 0;
}

// Integration tests of API keys, plans, limits and the usage ledger: real `tidegate serve` and
// `tidegate engine` processes, a real redis-server, the ledger read back with SQLite.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/crypto.h"
#include "common/net.h"
#include "support/process.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

std::string tempPath(const std::string& what) {
  static int n = 0;
  return "/tmp/tidegate-access-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + what;
}

// A gateway in front of `engine`, with the plans and keys in `access` and the `spec` lines.
std::string config(const Engine& engine, const std::string& spec, const std::string& access) {
  return "apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n"
         "  listen: 127.0.0.1:0\n  admin: 127.0.0.1:0\n" +
         spec +
         "---\napiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: InferencePool\n"
         "metadata: {name: pool}\nspec: {targetPortNumber: 1, selector: {app: e}}\n"
         "---\napiVersion: tidegate.io/v1alpha1\nkind: Endpoints\n"
         "metadata: {name: e, labels: {app: e}}\nspec: {addresses: [\"127.0.0.1:" +
         std::to_string(engine.port) +
         "\"]}\n"
         "---\napiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: InferenceModel\n"
         "metadata: {name: m}\nspec: {modelName: base, poolRef: {name: pool}}\n" +
         access;
}

std::string plan(const std::string& name, const std::string& spec) {
  return "---\napiVersion: tidegate.io/v1alpha1\nkind: UsagePlan\nmetadata: {name: " + name +
         "}\nspec: " + spec + "\n";
}

std::string key(const std::string& name, const std::string& plan, const std::string& secret,
                const std::string& extra = "") {
  return "---\napiVersion: tidegate.io/v1alpha1\nkind: APIKey\nmetadata: {name: " + name +
         "}\nspec: {plan: " + plan + ", sha256: " + crypto::sha256Hex(secret) + extra + "}\n";
}

const std::string kChat =
    R"({"model":"base","messages":[{"role":"user","content":"hello there"}],"max_tokens":4})";

http::Headers bearer(const std::string& k) { return {{"Authorization", "Bearer " + k}}; }

bool waitUp(const Serve& s) {
  return eventually([&] { return s.metric("tidegate_endpoint_up") == 1; });
}

bj::object errorOf(const http::Response& r) {
  auto v = bj::parse(r.body);
  return v.at("error").as_object();
}

TEST(Access, KeysPlansAndLimitsAnswerLikeOpenAI) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  Serve gw(config(engine, "",
                  plan("free", "{requestsPerMinute: 5, models: [\"base\"]}") +
                      plan("other", "{models: [\"llama-*\"]}") +
                      plan("tiny", "{tokensPerMinute: 50}") + key("alice", "free", "sk-alice") +
                      key("carol", "other", "sk-carol") + key("tim", "tiny", "sk-tim") +
                      key("old", "free", "sk-old", ", expiresAt: \"2020-01-01T00:00:00Z\"")));
  ASSERT_TRUE(waitUp(gw));

  // 401: no key, a wrong key, an expired key. OpenAI's error format, a Bearer challenge, and
  // never the presented secret in the answer.
  auto none = gw.post("/v1/chat/completions", kChat);
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(none.header("www-authenticate"), "Bearer");
  EXPECT_EQ(errorOf(none).at("code"), "missing_api_key");
  auto wrong = gw.post("/v1/chat/completions", kChat, bearer("sk-wrong-secret"));
  EXPECT_EQ(wrong.status, 401u);
  EXPECT_EQ(errorOf(wrong).at("code"), "invalid_api_key");
  EXPECT_EQ(wrong.body.find("sk-wrong-secret"), std::string::npos);
  auto old = gw.post("/v1/chat/completions", kChat, bearer("sk-old"));
  EXPECT_EQ(old.status, 401u);
  EXPECT_EQ(errorOf(old).at("code"), "expired_api_key");

  // 403: the plan does not list the model.
  auto forbidden = gw.post("/v1/chat/completions", kChat, bearer("sk-carol"));
  EXPECT_EQ(forbidden.status, 403u);
  EXPECT_EQ(errorOf(forbidden).at("code"), "model_not_allowed");
  EXPECT_EQ(errorOf(forbidden).at("param"), "model");

  // 5 requests per minute admit exactly 5, through either header, counting down.
  int admitted = 0;
  http::Response last;
  for (int i = 0; i < 12; ++i) {
    const http::Headers h = i % 2 ? http::Headers{{"api-key", "sk-alice"}} : bearer("sk-alice");
    last = gw.post("/v1/chat/completions", kChat, h);
    ASSERT_TRUE(last.status == 200 || last.status == 429) << last.status << last.body;
    EXPECT_EQ(last.header("x-ratelimit-limit-requests"), "5");
    if (last.status == 200) {
      ++admitted;
      EXPECT_EQ(last.header("x-ratelimit-remaining-requests"), std::to_string(5 - admitted));
    }
  }
  EXPECT_EQ(admitted, 5);
  EXPECT_EQ(last.status, 429u);
  EXPECT_EQ(errorOf(last).at("code"), "rate_limit_exceeded");
  EXPECT_EQ(errorOf(last).at("type"), "requests");
  EXPECT_EQ(last.header("x-ratelimit-remaining-requests"), "0");
  const int retry_after = std::stoi(std::string(last.header("retry-after")));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 12);  // one request every 12 s
  EXPECT_FALSE(last.header("x-ratelimit-reset-requests").empty());

  // Token limits: prompt + max_tokens is reserved, so a request that can never fit is refused
  // with the token headers.
  auto big =
      gw.post("/v1/chat/completions",
              R"({"model":"base","messages":[{"role":"user","content":"hi"}],"max_tokens":100})",
              bearer("sk-tim"));
  EXPECT_EQ(big.status, 429u);
  EXPECT_EQ(errorOf(big).at("type"), "tokens");
  EXPECT_EQ(big.header("x-ratelimit-limit-tokens"), "50");
  auto fits = gw.post("/v1/chat/completions", kChat, bearer("sk-tim"));
  EXPECT_EQ(fits.status, 200u);

  // Metrics by key.
  EXPECT_EQ(gw.metric("tidegate_ratelimit_refusals_total",
                      {{"key", "alice"}, {"reason", "requests_per_minute"}}),
            7);
  EXPECT_EQ(gw.metric("tidegate_auth_failures_total", {{"reason", "invalid"}}), 1);
  EXPECT_GT(gw.metric("tidegate_key_tokens_total", {{"key", "alice"}, {"type", "completion"}}), 0);
  // The plan is a label, so usage and refusals can be summed by plan.
  EXPECT_EQ(gw.metric("tidegate_ratelimit_refusals_total",
                      {{"plan", "free"}, {"reason", "requests_per_minute"}}),
            7);
  EXPECT_GT(gw.metric("tidegate_key_requests_total", {{"plan", "free"}, {"code", "200"}}), 0);
  EXPECT_EQ(gw.metric("tidegate_key_requests_total", {{"plan", "tiny"}, {"key", "alice"}}), -1)
      << "alice's requests are counted under her own plan only";
  EXPECT_EQ(gw.metric("tidegate_ratelimit_remaining", {{"key", "alice"}, {"kind", "requests"}}), 0);
}

TEST(Access, WithoutKeyResourcesAuthIsOffAndCheckSaysSo) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  const std::string yaml = config(engine, "", "");
  Serve gw(yaml);
  ASSERT_TRUE(waitUp(gw));
  EXPECT_EQ(gw.post("/v1/chat/completions", kChat).status, 200u);
  auto off = runCommand({binaryPath(), "check", "-c", gw.path});
  EXPECT_EQ(off.exit_code, 0) << off.output;
  EXPECT_NE(off.output.find("auth: off"), std::string::npos) << off.output;
  gw.rewrite(yaml + plan("free", "{}") + key("a", "free", "sk-a"));
  auto on = runCommand({binaryPath(), "check", "-c", gw.path});
  EXPECT_NE(on.output.find("auth: API keys required (implied by the file"), std::string::npos)
      << on.output;
  EXPECT_NE(on.output.find("1 plans, 1 keys in the file"), std::string::npos) << on.output;
}

// examples/access.yaml as shipped, on free ports, in front of `engine`, its ledger at `ledger`.
std::string accessExample(const Engine& engine, const std::string& ledger) {
  std::ifstream in(std::string(TIDEGATE_SOURCE_DIR) + "/examples/access.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string y = ss.str();
  auto replace = [&](const std::string& from, const std::string& to) {
    const auto at = y.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    y.replace(at, from.size(), to);
  };
  replace("127.0.0.1:8080", "127.0.0.1:0");
  replace("127.0.0.1:8081", "127.0.0.1:0");
  replace("127.0.0.1:8001", "127.0.0.1:" + std::to_string(engine.port));
  replace("/tmp/tidegate-access-ledger.db", ledger);
  replace("modelName: llama-3.1-8b", "modelName: base");
  replace("models: [\"llama-*\"]", "models: [\"base\"]");
  return y;
}

// The first `n` documents of a multi-document YAML file.
std::string firstDocuments(const std::string& yaml, int n) {
  std::size_t at = 0;
  for (int i = 0; i < n && at != std::string::npos; ++i) at = yaml.find("\n---\n", at + 1);
  return at == std::string::npos ? yaml : yaml.substr(0, at + 1);
}

// The issue that made authentication a mode: examples/access.yaml cut short to its first four
// documents (every APIKey and UsagePlan gone) or emptied, then SIGHUP, used to admit requests
// with no key at all.
TEST(FailClosed, AReloadCannotSwitchAuthenticationOff) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  const auto db = tempPath(".db");
  const std::string full = accessExample(engine, db);
  Serve gw(full);
  ASSERT_TRUE(waitUp(gw));
  auto chat = [&](const http::Headers& h) {
    return gw.post("/v1/chat/completions", kChat, h).status;
  };
  auto keys_still_required = [&] {
    EXPECT_EQ(chat({}), 401u);
    EXPECT_EQ(chat(bearer("sk-made-up")), 401u);
    EXPECT_EQ(chat(bearer("sk-demo-pro")), 200u);
  };
  keys_still_required();
  // Cut short: every key and plan gone: refused. Cut short with the mode line gone too (so the
  // mode is implied, and would be "disabled"): refused as well.
  gw.rewrite(firstDocuments(full, 4));
  EXPECT_FALSE(gw.reload());
  keys_still_required();
  std::string implied = firstDocuments(full, 4);
  const auto mode = implied.find("    apiKeys: required");
  ASSERT_NE(mode, std::string::npos);
  implied.erase(mode, implied.find('\n', mode) + 1 - mode);
  gw.rewrite(implied);
  EXPECT_FALSE(gw.reload());
  keys_still_required();
  // Emptied; then a directory where the file was.
  gw.rewrite("");
  EXPECT_FALSE(gw.reload());
  keys_still_required();
  std::filesystem::remove(gw.path);
  std::filesystem::create_directory(gw.path);
  EXPECT_FALSE(gw.reload());
  std::filesystem::remove(gw.path);
  keys_still_required();
  const auto admin = bearer("admin-demo");
  auto state = bj::parse(gw.request("GET", "/admin/state", {}, admin, true).body);
  const auto& conf = state.at("configuration").as_object();
  EXPECT_EQ(conf.at("reloads_refused").as_int64(), 4);
  EXPECT_EQ(conf.at("api_keys").as_string(), "required");
  EXPECT_NE(std::string(conf.at("last_reload_error").as_string()).find("it is a directory"),
            std::string::npos)
      << conf;
  EXPECT_EQ(gw.metric("tidegate_config_last_reload_successful"), 0);
  // One key of two may go: that is not more than half.
  gw.rewrite(full.substr(0, full.rfind("\n---\n") + 1));
  EXPECT_TRUE(gw.reload());
  EXPECT_EQ(chat(bearer("sk-demo-pro")), 401u);  // its APIKey was the last document
  EXPECT_EQ(chat(bearer("sk-demo-free")), 200u);
  EXPECT_EQ(gw.metric("tidegate_config_last_reload_successful"), 1);
  // Saying so turns keys off.
  std::string off = firstDocuments(full, 4);
  const auto required = off.find("apiKeys: required");
  ASSERT_NE(required, std::string::npos);
  off.replace(required, 17, "apiKeys: disabled\n    allowKeyRemoval: true");
  gw.rewrite(off);
  EXPECT_TRUE(gw.reload());
  EXPECT_EQ(chat({}), 200u);
  std::filesystem::remove(db);
}

// `tidegate check -c <a directory>` used to say the configuration is valid.
TEST(FailClosed, CheckAndServeRefuseWhatIsNotAConfigurationFile) {
  const auto dir = tempPath(".d");
  std::filesystem::create_directory(dir);
  const auto empty = dir + "/empty.yaml";
  std::ofstream(empty) << "# nothing here yet\n---\n";
  for (const auto& [path, why] : std::vector<std::pair<std::string, std::string>>{
           {dir, "it is a directory"},
           {empty, "no resources (the file is empty)"},
           {dir + "/missing.yaml", "No such file or directory"}}) {
    for (const char* cmd : {"check", "serve"}) {
      auto r = runCommand({binaryPath(), cmd, "-c", path}, 20s);
      EXPECT_EQ(r.exit_code, 2) << cmd << " " << path << ": " << r.output;
      EXPECT_NE(r.output.find(path + ": "), std::string::npos) << r.output;
      EXPECT_NE(r.output.find(why), std::string::npos) << r.output;
      EXPECT_EQ(r.output.find("configuration is valid"), std::string::npos) << r.output;
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(FailClosed, RequiredKeysWithNoKeyAtAllRefuseEveryRequest) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  Serve gw(config(engine, "  auth: {apiKeys: required}\n", ""));
  ASSERT_TRUE(waitUp(gw));
  EXPECT_EQ(gw.post("/v1/chat/completions", kChat).status, 401u);
  EXPECT_EQ(gw.post("/v1/chat/completions", kChat, bearer("sk-anything")).status, 401u);
  EXPECT_EQ(gw.request("GET", "/v1/models").status, 401u);
}

TEST(FailClosed, ModelsNeedAKeyAndListWhatThePlanAllows) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  const std::string other =
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: InferenceModel\n"
      "metadata: {name: o}\nspec: {modelName: other, poolRef: {name: pool}}\n";
  Serve gw(config(engine, "",
                  other + plan("small", "{models: [\"ba*\"]}") + plan("all", "{}") +
                      key("s", "small", "sk-s") + key("a", "all", "sk-a")));
  ASSERT_TRUE(waitUp(gw));
  auto ids = [&](const http::Headers& h) {
    auto r = gw.request("GET", "/v1/models", {}, h);
    std::set<std::string> out;
    if (r.status != 200) return std::set<std::string>{"status " + std::to_string(r.status)};
    const auto body = bj::parse(r.body);
    for (const auto& m : body.at("data").as_array())
      out.insert(std::string(m.at("id").as_string()));
    return out;
  };
  EXPECT_EQ(ids({}), std::set<std::string>{"status 401"});
  EXPECT_EQ(ids(bearer("sk-nope")), std::set<std::string>{"status 401"});
  EXPECT_EQ(ids(bearer("sk-s")), std::set<std::string>{"base"});
  EXPECT_EQ(ids(bearer("sk-a")), (std::set<std::string>{"base", "other"}));
}

TEST(FailClosed, AdminApiWithoutATokenIsReadOnly) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  const auto db = tempPath(".db");
  Serve gw(config(engine, "  ledger: {path: " + db + "}\n",
                  plan("free", "{}") + key("a", "free", "sk-a")));
  ASSERT_TRUE(waitUp(gw));
  auto list = gw.request("GET", "/admin/keys", {}, {}, true);  // loopback: readable
  EXPECT_EQ(list.status, 200u);
  EXPECT_NE(list.body.find("\"a\""), std::string::npos);
  for (const auto& [method, target, body] :
       std::vector<std::array<std::string, 3>>{{"POST", "/admin/keys", R"({"plan":"free"})"},
                                               {"DELETE", "/admin/keys/a", ""},
                                               {"PATCH", "/admin/keys/a", R"({"plan":"free"})"}}) {
    auto r = gw.request(method, target, body, {}, true);
    EXPECT_EQ(r.status, 403u) << method << " " << target;
    EXPECT_EQ(errorOf(r).at("code").as_string(), "admin_read_only") << r.body;
    EXPECT_NE(r.body.find("spec.auth.adminToken"), std::string::npos) << r.body;
  }
  EXPECT_EQ(gw.post("/v1/chat/completions", kChat, bearer("sk-a")).status, 200u);
  auto check = runCommand({binaryPath(), "check", "-c", gw.path});
  EXPECT_NE(check.output.find("no token: read-only"), std::string::npos) << check.output;
  std::filesystem::remove(db);
}

TEST(FailClosed, KeyChangesAndReloadsAreAudited) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  const auto db = tempPath(".db");
  const std::string spec = "  auth: {adminToken: tok}\n  ledger: {path: " + db + "}\n";
  const std::string access =
      plan("free", "{}") + plan("pro", "{}") + key("a", "free", "sk-a") + key("b", "pro", "sk-b");
  Serve gw(config(engine, spec, access));
  ASSERT_TRUE(waitUp(gw));
  http::Headers alice = bearer("tok");
  alice.emplace_back("X-Tidegate-Actor", "alice");
  auto created = gw.request("POST", "/admin/keys", R"({"name":"ci","plan":"free"})", alice, true);
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id(bj::parse(created.body).at("id").as_string());
  ASSERT_EQ(gw.request("PATCH", "/admin/keys/" + id, R"({"plan":"pro"})", alice, true).status,
            200u);
  ASSERT_EQ(gw.request("DELETE", "/admin/keys/" + id, {}, bearer("tok"), true).status, 200u);
  // A reload that changes a start-up-only setting: applied, and the setting named.
  const std::string next = config(engine, spec + "  workers: 1\n", access);
  gw.rewrite(next);
  EXPECT_TRUE(gw.reload());
  auto state = bj::parse(gw.request("GET", "/admin/state", {}, bearer("tok"), true).body);
  const auto& conf = state.at("configuration").as_object();
  EXPECT_EQ(conf.at("sha256").as_string(), crypto::sha256Hex(next));
  const auto& restart = conf.at("restart_required").as_array();
  ASSERT_EQ(restart.size(), 1u) << conf;
  EXPECT_EQ(restart[0].at("field").as_string(), "spec.workers");
  EXPECT_EQ(restart[0].at("running").as_string(), "2");
  EXPECT_EQ(restart[0].at("configured").as_string(), "1");
  auto audit = gw.request("GET", "/admin/audit", {}, bearer("tok"), true);
  ASSERT_EQ(audit.status, 200u) << audit.body;
  const auto rows = bj::parse(audit.body).at("data").as_array();
  ASSERT_EQ(rows.size(), 4u) << audit.body;
  const std::string token_id = crypto::sha256Hex("tok").substr(0, 8);
  EXPECT_EQ(rows[0].at("action").as_string(), "config.reload");
  EXPECT_NE(std::string(rows[0].at("detail").as_string()).find(crypto::sha256Hex(next)),
            std::string::npos);
  EXPECT_EQ(rows[1].at("action").as_string(), "key.revoke");
  EXPECT_EQ(rows[1].at("actor").as_string(), "admin");
  EXPECT_EQ(rows[2].at("action").as_string(), "key.plan");
  EXPECT_EQ(rows[2].at("detail").as_string(), "free -> pro");
  EXPECT_EQ(rows[3].at("action").as_string(), "key.create");
  for (std::size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(rows[i].at("subject").as_string(), id);
    EXPECT_EQ(rows[i].at("token").as_string(), token_id);
    EXPECT_TRUE(std::string(rows[i].at("remote").as_string()).starts_with("127.0.0.1:"));
  }
  EXPECT_EQ(rows[3].at("actor").as_string(), "alice");
  // The trail is in the ledger database itself.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(raw, "SELECT COUNT(*) FROM audit WHERE actor = 'alice'", -1, &st, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 2);
  sqlite3_finalize(st);
  sqlite3_close(raw);
  std::filesystem::remove(db);
}

TEST(Access, AdminApiCreatesRevokesAndMovesKeysWithoutRestart) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  const auto db = tempPath(".db");
  const std::string spec =
      "  workers: 2\n  auth: {adminToken: tok}\n  ledger: {path: " + db + "}\n";
  const std::string access = plan("free", "{requestsPerMinute: 1000}") +
                             plan("none", "{models: [\"nothing\"]}") + key("a", "free", "sk-a");
  std::string secret, id;
  {
    Serve gw(config(engine, spec, access));
    ASSERT_TRUE(waitUp(gw));
    const http::Headers admin = bearer("tok");
    EXPECT_EQ(gw.request("GET", "/admin/keys", {}, {}, true).status, 401u);
    EXPECT_EQ(gw.request("GET", "/admin/keys", {}, bearer("nope"), true).status, 401u);
    EXPECT_EQ(gw.request("POST", "/admin/keys", R"({"plan":"gold"})", admin, true).status, 400u);
    auto created = gw.request("POST", "/admin/keys", R"({"name":"ci","plan":"free"})", admin, true);
    ASSERT_EQ(created.status, 201u) << created.body;
    auto k = bj::parse(created.body).as_object();
    secret = std::string(k.at("key").as_string());
    id = std::string(k.at("id").as_string());
    EXPECT_TRUE(secret.starts_with("sk-"));
    // Listed, but never with its secret.
    auto list = gw.request("GET", "/admin/keys", {}, admin, true);
    EXPECT_NE(list.body.find(id), std::string::npos);
    EXPECT_EQ(list.body.find(secret), std::string::npos);
    EXPECT_EQ(gw.post("/v1/chat/completions", kChat, bearer(secret)).status, 200u);
    // Plan change: the next request runs on the new plan.
    auto moved = gw.request("PATCH", "/admin/keys/" + id, R"({"plan":"none"})", admin, true);
    ASSERT_EQ(moved.status, 200u) << moved.body;
    EXPECT_EQ(gw.post("/v1/chat/completions", kChat, bearer(secret)).status, 403u);
    gw.request("PATCH", "/admin/keys/" + id, R"({"plan":"free"})", admin, true);
    // Static keys belong to the configuration.
    EXPECT_EQ(gw.request("DELETE", "/admin/keys/a", {}, admin, true).status, 409u);
    // A reload keeps created keys.
    EXPECT_TRUE(gw.reload());
    EXPECT_EQ(gw.post("/v1/chat/completions", kChat, bearer(secret)).status, 200u);
  }
  {
    // A restart keeps them too (the ledger database holds their hashes), and revocation is
    // immediate on every worker: each request below is a new connection, spread by the kernel.
    Serve gw(config(engine, spec, access));
    ASSERT_TRUE(waitUp(gw));
    EXPECT_EQ(gw.post("/v1/chat/completions", kChat, bearer(secret)).status, 200u);
    auto del = gw.request("DELETE", "/admin/keys/" + id, {}, bearer("tok"), true);
    ASSERT_EQ(del.status, 200u) << del.body;
    for (int i = 0; i < 20; ++i)
      EXPECT_EQ(gw.post("/v1/chat/completions", kChat, bearer(secret)).status, 401u);
    EXPECT_EQ(gw.request("DELETE", "/admin/keys/" + id, {}, bearer("tok"), true).status, 404u);
  }
  std::filesystem::remove(db);
}

// Sends `n` requests with `key`, spread over `gateways` by `threads` threads; returns how many
// were admitted (200).
int admittedOf(const std::vector<const Serve*>& gateways, const std::string& k, int n,
               int threads = 8) {
  std::atomic<int> next{0}, ok{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i; (i = next++) < n;) {
        auto r = gateways[static_cast<std::size_t>(i) % gateways.size()]->post(
            "/v1/chat/completions", kChat, bearer(k));
        if (r.status == 200) {
          ++ok;
        } else if (r.status != 429) {
          ++other;
        }
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(other.load(), 0);
  return ok.load();
}

TEST(Access, TwoGatewaysSharingRedisEnforceOneLimit) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  Redis redis;
  // A daily quota: no refill during the test, so "one limit" is an exact number.
  const std::string access = plan("p", "{requestsPerDay: 300}") + key("k", "p", "sk-k");
  const std::string shared =
      "  rateLimit: {backend: redis, redis: {address: \"127.0.0.1:" + std::to_string(redis.port) +
      "\"}}\n";
  {
    Serve a(config(engine, shared, access)), b(config(engine, shared, access));
    ASSERT_TRUE(waitUp(a) && waitUp(b));
    const int admitted = admittedOf({&a, &b}, "sk-k", 900);
    EXPECT_GE(admitted, 297);  // within 1% of the one limit
    EXPECT_LE(admitted, 303);
    EXPECT_EQ(a.metric("tidegate_ratelimit_backend_errors_total"), -1);  // never failed
  }
  {
    // Without Redis each gateway enforces the limit alone: twice as many get in.
    Serve a(config(engine, "", access)), b(config(engine, "", access));
    ASSERT_TRUE(waitUp(a) && waitUp(b));
    const int admitted = admittedOf({&a, &b}, "sk-k", 900);
    EXPECT_GE(admitted, 594);
    EXPECT_LE(admitted, 600);
  }
}

TEST(Access, RedisFailurePolicyOpensOrClosesAndSaysSo) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  const auto dead = std::to_string(freePort());  // nothing listens there
  const std::string access = plan("p", "{requestsPerMinute: 3}") + key("k", "p", "sk-k");
  auto spec = [&](const std::string& policy) {
    return "  rateLimit: {backend: redis, redis: {address: \"127.0.0.1:" + dead +
           "\", failurePolicy: " + policy + "}}\n";
  };
  {
    Serve open(config(engine, spec("open"), access));
    ASSERT_TRUE(waitUp(open));
    // Fail-open falls back to the gateway's own limits: still exactly 3 per minute.
    EXPECT_EQ(admittedOf({&open}, "sk-k", 8, 1), 3);
    EXPECT_GE(open.metric("tidegate_ratelimit_backend_errors_total"), 1);
    EXPECT_EQ(open.metric("tidegate_ratelimit_backend_up"), 0);
  }
  {
    Serve closed(config(engine, spec("closed"), access));
    ASSERT_TRUE(waitUp(closed));
    auto r = closed.post("/v1/chat/completions", kChat, bearer("sk-k"));
    EXPECT_EQ(r.status, 503u);
    EXPECT_EQ(errorOf(r).at("code"), "rate_limit_backend_unavailable");
  }
}

// The same plan limits through either backend: exactly N per minute, token reservations
// settled with real usage, concurrency slots held while a stream runs and freed after.
void checkLimits(const Serve& gw) {
  int admitted = 0;
  for (int i = 0; i < 9; ++i)
    if (gw.post("/v1/chat/completions", kChat, bearer("sk-rpm")).status == 200) ++admitted;
  EXPECT_EQ(admitted, 4);
  // 60 tokens per minute; each request reserves its prompt estimate + 4 and is settled to the
  // engine's count (about 13 with the chat template), so about 60 tokens' worth get in.
  int tokens_ok = 0;
  for (int i = 0; i < 6; ++i)
    if (gw.post("/v1/chat/completions", kChat, bearer("sk-tpm")).status == 200) ++tokens_ok;
  EXPECT_GE(tokens_ok, 3);
  EXPECT_LE(tokens_ok, 5);
  // Two slow streams hold both slots of the plan; a third is refused until one ends.
  const std::string slow =
      R"({"model":"base","messages":[{"role":"user","content":"hi"}],"max_tokens":400,"stream":true})";
  std::atomic<int> started{0};
  std::vector<std::thread> streams;
  for (int i = 0; i < 2; ++i)
    streams.emplace_back([&] {
      bool first = true;
      (void)http::fetch(
          "127.0.0.1", gw.port,
          {.method = "POST",
           .target = "/v1/chat/completions",
           .body = slow,
           .headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer sk-conc"}},
           .timeout_s = 60},
          [&](std::string_view) {
            if (first) ++started;  // this stream holds its slot
            first = false;
            return true;
          });
    });
  ASSERT_TRUE(eventually([&] { return started >= 2; }));
  auto third = gw.post("/v1/chat/completions", kChat, bearer("sk-conc"));
  EXPECT_EQ(third.status, 429u);
  EXPECT_NE(third.body.find("concurrent"), std::string::npos) << third.body;
  for (auto& t : streams) t.join();
  EXPECT_TRUE(eventually(
      [&] { return gw.post("/v1/chat/completions", kChat, bearer("sk-conc")).status == 200; }));
}

const std::string kLimitPlans =
    plan("rpm", "{requestsPerMinute: 4}") + plan("tpm", "{tokensPerMinute: 60}") +
    plan("conc", "{maxConcurrentRequests: 2}") + key("r", "rpm", "sk-rpm") +
    key("t", "tpm", "sk-tpm") + key("c", "conc", "sk-conc");

TEST(Access, LocalAndRedisBackendsApplyTheSameLimits) {
  // Streams of 400 tokens take a few seconds at a tenth of the A10's pace.
  Engine engine({"--served-model-name", "base", "--time-scale", "10"});
  {
    Serve local(config(engine, "", kLimitPlans));
    ASSERT_TRUE(waitUp(local));
    checkLimits(local);
  }
  Redis redis;
  Serve shared(config(engine,
                      "  rateLimit: {backend: redis, redis: {address: \"127.0.0.1:" +
                          std::to_string(redis.port) + "\"}}\n",
                      kLimitPlans));
  ASSERT_TRUE(waitUp(shared));
  checkLimits(shared);
  EXPECT_EQ(shared.metric("tidegate_ratelimit_backend_errors_total"), -1);
}

// Reads the ledger's usage table: {status, prompt, completion} per record.
struct Row {
  int status;
  long prompt, completion;
  std::string key;
};
std::vector<Row> readLedger(const std::string& path) {
  std::vector<Row> rows;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return rows;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT status, prompt_tokens, completion_tokens, key_id FROM usage",
                         -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW)
      rows.push_back({sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1),
                      sqlite3_column_int64(st, 2),
                      reinterpret_cast<const char*>(sqlite3_column_text(st, 3))});
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

TEST(Access, StreamsIncludingDroppedOnesAreRecordedWithRealTokenCounts) {
  // Slow enough (200 tokens at ~1/10 of the A10's pace) that a client can leave midway.
  Engine engine({"--served-model-name", "base", "--time-scale", "10"});
  const auto db = tempPath(".db");
  Serve gw(config(engine, "  ledger: {path: " + db + ", flushInterval: 100ms}\n",
                  plan("p", "{}") + key("k", "p", "sk-k")));
  ASSERT_TRUE(waitUp(gw));
  const double prompt0 = engine.metric("vllm:prompt_tokens_total");
  const double gen0 = engine.metric("vllm:generation_tokens_total");
  const std::string body =
      R"({"model":"base","messages":[{"role":"user","content":"tell me a long story"}],"max_tokens":200,"stream":true})";
  // 4 complete streams, 4 the client drops after a few chunks.
  for (int i = 0; i < 8; ++i) {
    const bool drop = i % 2 == 1;
    int events = 0;
    auto r = http::fetch(
        "127.0.0.1", gw.port,
        {.method = "POST",
         .target = "/v1/chat/completions",
         .body = body,
         .headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer sk-k"}},
         .timeout_s = 60},
        [&](std::string_view data) {
          for (auto p = data.find("data: "); p != std::string_view::npos;
               p = data.find("data: ", p + 1))
            ++events;
          return !drop || events < 20;
        });
    if (!drop) {
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ(r->status, 200u);
      // The client did not ask for usage: it sees none.
      EXPECT_EQ(events, 1 + 200 + 1);  // role, 200 tokens, [DONE]
    }
  }
  ASSERT_TRUE(eventually([&] { return readLedger(db).size() == 8; }, 20s));
  // The engine stops generating when the gateway cancels: wait for its counters to settle.
  std::this_thread::sleep_for(300ms);
  const double prompt = engine.metric("vllm:prompt_tokens_total") - prompt0;
  const double gen = engine.metric("vllm:generation_tokens_total") - gen0;
  long ledger_prompt = 0, ledger_completion = 0;
  int dropped = 0;
  for (const auto& row : readLedger(db)) {
    EXPECT_EQ(row.key, "k");
    ledger_prompt += row.prompt;
    ledger_completion += row.completion;
    if (row.status == 499) {
      ++dropped;
      EXPECT_GE(row.completion, 18);  // at least what the client received
      EXPECT_LT(row.completion, 200);
    } else {
      EXPECT_EQ(row.status, 200);
      EXPECT_EQ(row.completion, 200);
    }
  }
  EXPECT_EQ(dropped, 4);
  EXPECT_EQ(ledger_prompt, static_cast<long>(prompt));  // exactly what the engine processed
  // Completion: what the engine generated, less at most a couple of tokens per dropped stream
  // that were produced after the gateway's last chunk.
  EXPECT_LE(ledger_completion, static_cast<long>(gen));
  EXPECT_GE(ledger_completion, static_cast<long>(gen) - 4 * 3);
  std::filesystem::remove(db);
}

TEST(Access, KillNineLosesAtMostOneSecondOfRecords) {
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  const auto db = tempPath(".db");
  Serve gw(config(engine, "  ledger: {path: " + db + "}\n", ""));
  ASSERT_TRUE(waitUp(gw));
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> done;  // when each response completed
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      while (!stop) {
        auto r = http::fetch("127.0.0.1", gw.port,
                             {.method = "POST",
                              .target = "/v1/chat/completions",
                              .body = kChat,
                              .headers = {{"Content-Type", "application/json"}},
                              .timeout_s = 5});
        if (r && r->status == 200) {
          std::lock_guard lock(mu);
          done.push_back(std::chrono::steady_clock::now());
        }
      }
    });
  std::this_thread::sleep_for(3s);
  const auto killed_at = std::chrono::steady_clock::now();
  ::kill(gw.proc->pid(), SIGKILL);
  stop = true;
  for (auto& t : clients) t.join();
  std::size_t before = 0;  // responses completed more than a second before the kill
  for (const auto& d : done)
    if (d < killed_at - 1s) ++before;
  const auto rows = readLedger(db);
  EXPECT_GT(before, 100u);
  EXPECT_GE(rows.size(), before);
  EXPECT_LE(rows.size(), done.size() + 4);  // nothing recorded twice
  std::filesystem::remove(db);
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
}

}  // namespace
}  // namespace tidegate::testing

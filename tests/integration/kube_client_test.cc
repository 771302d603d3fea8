// tidegate's Kubernetes client (src/kube/) driven in-process against the stand-in API server
// (support/kube_apiserver.h): kube::Client, kube::Reflector and kube::LeaderElector run as
// coroutines on an io_context of the test's own thread, the fixture serves on its own thread, and
// the assertions read the client's results and the fixture's request log.
//
// What is covered: kubeconfig TLS (certificate-authority-data, client-certificate-data and
// client-key-data, tokenFile and its rotation); retries (503/429 with Retry-After for every verb,
// 500 only for idempotent verbs, max_retries, 403 at once); the token bucket; modify() through a
// 409 Conflict; watch order and bookmarks; a Reflector through dropped watches, a compacted
// history and an outage; Lease leader election between two candidates.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/crypto.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/leader.h"
#include "kube/reflector.h"
#include "support/certs.h"
#include "support/kube_apiserver.h"

namespace tidegate::kube {
namespace {

namespace asio = boost::asio;
namespace fx = tidegate::testing::kube;
using namespace std::chrono_literals;
using tidegate::testing::TestCerts;

const std::string kCM = "/api/v1/namespaces/default/configmaps";
const std::string kLeasePath = "/apis/coordination.k8s.io/v1/namespaces/default/leases/lock";

// Runs `ioc` until `pred` holds or `timeout` passes; true if it held.
template <class Pred>
bool runUntil(asio::io_context& ioc, Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (ioc.stopped()) ioc.restart();
    if (ioc.run_one_for(10ms) == 0) std::this_thread::sleep_for(1ms);
  }
  return true;
}
void runFor(asio::io_context& ioc, std::chrono::milliseconds d) {
  runUntil(
      ioc, [] { return false; }, d);
}

// Runs one awaitable to completion on `ioc` (other coroutines spawned there run meanwhile).
template <class T>
T await(asio::io_context& ioc, asio::awaitable<T> a, std::chrono::milliseconds timeout = 30s) {
  std::optional<T> out;
  bool done = false;
  asio::co_spawn(
      ioc, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(a)); },
      [&](std::exception_ptr e) {
        done = true;
        if (e) std::rethrow_exception(e);
      });
  if (!runUntil(
          ioc, [&] { return done; }, timeout))
    throw std::runtime_error("the operation did not finish in time");
  return std::move(*out);
}

// Spawns a long-running coroutine (a Reflector's or an elector's run()); `done` is set when it
// returns.
void spawn(asio::io_context& ioc, asio::awaitable<void> a, bool& done) {
  asio::co_spawn(ioc, std::move(a), [&done](std::exception_ptr e) {
    done = true;
    if (e) std::rethrow_exception(e);
  });
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes a kubeconfig with one context "test" to `path`; `cluster` and `user` are the extra
// lines of the cluster's and the user's maps (already indented by four spaces).
void writeKubeconfig(const std::string& path, const std::string& server, const std::string& cluster,
                     const std::string& user) {
  std::ofstream(path) << "apiVersion: v1\n"
                         "kind: Config\n"
                         "current-context: test\n"
                         "clusters:\n"
                         "- name: c\n"
                         "  cluster:\n"
                         "    server: "
                      << server << "\n"
                      << cluster
                      << "contexts:\n"
                         "- name: test\n"
                         "  context: {cluster: c, user: u, namespace: default}\n"
                         "users:\n"
                         "- name: u\n"
                         "  user:\n"
                      << (user.empty() ? "    {}\n" : user);
}

ClusterConfig plain(const fx::ApiServer& api, const std::string& token = "test-token") {
  ClusterConfig c;
  EXPECT_TRUE(parseServer(api.url(), c).ok());
  c.token = token;
  return c;
}

bj::object configMap(const std::string& name, bj::object labels = {}) {
  return bj::object{{"apiVersion", "v1"},
                    {"kind", "ConfigMap"},
                    {"metadata", bj::object{{"name", name}, {"labels", std::move(labels)}}},
                    {"data", bj::object{{"k", "v"}}}};
}

std::string rvOf(const bj::object& o) {
  const auto* m = o.if_contains("metadata");
  const auto* rv = m && m->is_object() ? m->as_object().if_contains("resourceVersion") : nullptr;
  return rv && rv->is_string() ? std::string(rv->as_string()) : std::string();
}
std::string label(const bj::object& o, const std::string& key) {
  const auto* l = o.at("metadata").as_object().if_contains("labels");
  const auto* v = l && l->is_object() ? l->as_object().if_contains(key) : nullptr;
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// Requests of the fixture's log with this method whose path contains `path`.
int count(const fx::ApiServer& api, const std::string& method, const std::string& path) {
  int n = 0;
  for (const auto& r : api.requests())
    if (r.method == method && r.path.find(path) != std::string::npos) ++n;
  return n;
}

// --- TLS and credentials from a kubeconfig --------------------------------------------------

TEST(KubeClient, KubeconfigCertificateAuthorityDataVerifiesTheServer) {
  TestCerts certs;
  fx::ApiServerOptions o;
  o.tls_certificate_file = certs.crt("server");
  o.tls_key_file = certs.key("server");
  fx::ApiServer api(o);
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("a")).ok());

  const std::string with_ca = certs.dir + "/with-ca.yaml";
  writeKubeconfig(
      with_ca, api.url(),
      "    certificate-authority-data: " + crypto::base64Encode(readAll(certs.crt("ca"))) + "\n",
      "    token: test-token\n");
  auto cfg = fromKubeconfig(with_ca);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_TRUE(cfg->https);
  asio::io_context ioc;
  Client client(ioc.get_executor(), *cfg);
  auto list = await(ioc, client.list(kCM, {}));
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->at("items").as_array().size(), 1u);
  EXPECT_EQ(api.requests().back().user, "system:serviceaccount:tidegate:tidegate");

  // Without the CA the system's trust store does not know the test CA: the handshake fails.
  const std::string without_ca = certs.dir + "/without-ca.yaml";
  writeKubeconfig(without_ca, api.url(), "", "    token: test-token\n");
  auto bad = fromKubeconfig(without_ca);
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  Client untrusting(ioc.get_executor(), *bad, {.max_retries = 1, .backoff_base_s = 0.01});
  auto failed = await(ioc, untrusting.list(kCM, {}));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, 0) << "no response: the connection was never made";
  EXPECT_NE(failed.error().message.find("TLS"), std::string::npos) << failed.error().message;
  EXPECT_NE(failed.error().message.find("certificate"), std::string::npos)
      << failed.error().message;
}

TEST(KubeClient, KubeconfigClientCertificateDataAuthenticatesWithMutualTls) {
  TestCerts certs;
  fx::ApiServerOptions o;
  o.token = "";  // no token is accepted: only the certificate authenticates
  o.tls_certificate_file = certs.crt("server");
  o.tls_key_file = certs.key("server");
  o.tls_client_ca_file = certs.crt("ca");
  fx::ApiServer api(o);
  const std::string ca =
      "    certificate-authority-data: " + crypto::base64Encode(readAll(certs.crt("ca"))) + "\n";

  const std::string path = certs.dir + "/mtls.yaml";
  writeKubeconfig(
      path, api.url(), ca,
      "    client-certificate-data: " + crypto::base64Encode(readAll(certs.crt("client"))) + "\n" +
          "    client-key-data: " + crypto::base64Encode(readAll(certs.key("client"))) + "\n");
  auto cfg = fromKubeconfig(path);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  asio::io_context ioc;
  Client client(ioc.get_executor(), *cfg);
  auto list = await(ioc, client.list(kCM, {}));
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_FALSE(api.requests().empty());
  EXPECT_EQ(api.requests().back().user, o.client_certificate_user);

  // No client certificate: the server's handshake refuses the connection.
  const std::string none = certs.dir + "/no-cert.yaml";
  writeKubeconfig(none, api.url(), ca, "");
  auto bare = fromKubeconfig(none);
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  Client anonymous(ioc.get_executor(), *bare, {.max_retries = 0});
  auto refused = await(ioc, anonymous.list(kCM, {}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, 0) << refused.error().message;
}

TEST(KubeClient, KubeconfigTokenFileIsUsedAndReReadWhenItRotates) {
  fx::ApiServerOptions o;
  o.token = "rotated-token";
  fx::ApiServer api(o);
  TestCerts certs;  // (only for its temporary directory)
  std::ofstream(certs.dir + "/token") << "old-token\n";
  const std::string path = certs.dir + "/token.yaml";
  writeKubeconfig(path, api.url(), "", "    tokenFile: token\n");  // relative to the file
  auto cfg = fromKubeconfig(path);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->token_file, certs.dir + "/token");
  EXPECT_EQ(cfg->token, "old-token");

  FakeClock clock(1000);
  asio::io_context ioc;
  Client client(ioc.get_executor(), *cfg, {.clock = &clock});
  auto denied = await(ioc, client.get(kCM));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, 401);
  EXPECT_EQ(denied.error().reason, "Unauthorized");
  EXPECT_EQ(count(api, "GET", kCM), 1) << "401 is not retried";

  // The kubelet rotates the bound token: the client reads the file again after a minute.
  std::ofstream(certs.dir + "/token") << "rotated-token\n";
  clock.advance(30);
  EXPECT_EQ(await(ioc, client.get(kCM)).error().code, 401) << "read at most every minute";
  clock.advance(31);
  auto ok = await(ioc, client.get(kCM));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(api.requests().back().user, o.token_user);
}

// --- Retries ------------------------------------------------------------------------------

TEST(KubeClient, A503IsRetriedAfterRetryAfter) {
  fx::ApiServer api;
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api));
  api.failNext(2, {.code = 503, .retry_after_s = 1}, "/configmaps");
  const double start = monotonicSeconds();
  auto r = await(ioc, client.list(kCM, {}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(count(api, "GET", kCM), 3) << "two 503s, then the answer";
  EXPECT_EQ(client.stats().retries, 2u);
  EXPECT_GE(monotonicSeconds() - start, 1.9) << "Retry-After: 1 is a floor under each backoff";
}

TEST(KubeClient, APostIsRetriedOn429ButNotOn500) {
  fx::ApiServer api;
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api), {.backoff_base_s = 0.01});

  api.failNext(1, {.code = 429, .retry_after_s = 0}, "/configmaps");
  auto created = await(ioc, client.create(kCM, configMap("a")));
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(count(api, "POST", kCM), 2) << "429: the server did not act; any verb is retried";

  api.clearRequests();
  api.failNext(1, {.code = 500}, "/configmaps");
  auto failed = await(ioc, client.create(kCM, configMap("b")));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, 500);
  EXPECT_EQ(failed.error().reason, "InternalError");
  EXPECT_EQ(count(api, "POST", kCM), 1) << "a POST that may have been applied is not resent";
}

TEST(KubeClient, A500OnAGetIsRetriedUpToMaxRetries) {
  fx::ApiServer api;
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api), {.max_retries = 2, .backoff_base_s = 0.01});

  api.failNext(1, {.code = 500}, "/configmaps");
  auto r = await(ioc, client.get(kCM));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(count(api, "GET", kCM), 2);

  api.clearRequests();
  api.failNext(10, {.code = 500}, "/configmaps");
  auto failed = await(ioc, client.get(kCM));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, 500);
  EXPECT_EQ(count(api, "GET", kCM), 3) << "the first attempt and max_retries = 2";
  EXPECT_EQ(client.stats().retries, 3u);  // one above, two here
  EXPECT_EQ(client.stats().failures, 1u);
}

TEST(KubeClient, ForbiddenIsReturnedAtOnceWithTheRbacRule) {
  fx::ApiServer api;
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api));
  api.deny("list", "", "configmaps");
  auto r = await(ioc, client.list(kCM, {}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, 403);
  EXPECT_EQ(r.error().reason, "Forbidden");
  EXPECT_NE(r.error().message.find(
                "configmaps is forbidden: User \"system:serviceaccount:tidegate:tidegate\" cannot "
                "list resource \"configmaps\" in API group \"\" in the namespace \"default\""),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(count(api, "GET", kCM), 1);
  EXPECT_EQ(client.stats().retries, 0u);
}

// --- Rate limiting ------------------------------------------------------------------------

TEST(KubeClient, TheTokenBucketThrottlesPastTheBurst) {
  fx::ApiServer api;
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api), {.qps = 5, .burst = 2});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(await(ioc, client.get(kCM)).ok());
  // Two from the burst, then eight at 5/s: 8 × 0.2 s of waiting (less the time the requests
  // themselves took, during which the bucket refilled).
  EXPECT_GE(client.stats().throttled_s, 1.5);
  EXPECT_LE(client.stats().throttled_s, 1.7);
  EXPECT_EQ(client.stats().requests, 10u);
}

// --- modify() -----------------------------------------------------------------------------

TEST(KubeClient, ModifyRereadsOnConflictAndKeepsBothChanges) {
  fx::ApiServer api;
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("a")).ok());
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api));
  int calls = 0;
  auto r = await(ioc, client.modify(kCM + "/a", [&](bj::object& o) {
    if (++calls == 1) {
      // Another writer changes the object between this GET and the PUT.
      auto w = api.patch("v1", "configmaps", "default", "a", fx::PatchType::kMerge,
                         bj::parse(R"({"metadata":{"labels":{"writer":"other"}}})"));
      EXPECT_TRUE(w.ok());
    }
    auto& labels = o["metadata"].as_object()["labels"];
    if (!labels.is_object()) labels.emplace_object();
    labels.as_object()["writer2"] = "modify";
    return true;
  }));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(calls, 2);
  auto log = api.requests();
  std::vector<std::pair<std::string, int>> seen;
  for (const auto& q : log) seen.emplace_back(q.method, q.status);
  const std::vector<std::pair<std::string, int>> want{
      {"GET", 200}, {"PUT", 409}, {"GET", 200}, {"PUT", 200}};
  EXPECT_EQ(seen, want);
  auto final = api.get("v1", "configmaps", "default", "a");
  ASSERT_TRUE(final.ok());
  EXPECT_EQ(label(*final, "writer"), "other");
  EXPECT_EQ(label(*final, "writer2"), "modify");
}

// --- Watch --------------------------------------------------------------------------------

TEST(KubeClient, WatchDeliversEventsInOrderFromAListsResourceVersion) {
  fx::ApiServerOptions o;
  o.bookmark_interval_s = 0.05;
  fx::ApiServer api(o);
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("before")).ok());
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api));
  auto list = await(ioc, client.list(kCM, {}));
  ASSERT_TRUE(list.ok());
  const std::string rv = rvOf(*list);
  ASSERT_FALSE(rv.empty());

  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("a")).ok());
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("b")).ok());
  ASSERT_TRUE(api.patch("v1", "configmaps", "default", "a", fx::PatchType::kMerge,
                        bj::parse(R"({"data":{"k":"w"}})"))
                  .ok());
  ASSERT_TRUE(api.remove("v1", "configmaps", "default", "b").ok());
  ASSERT_TRUE(
      api.create("v1", "secrets", "default", bj::object{{"metadata", bj::object{{"name", "s"}}}})
          .ok());  // another kind: only moves the resourceVersion
  const std::string last = std::to_string(api.resourceVersion());

  std::vector<std::string> events;
  std::vector<long> versions;
  std::string bookmark_rv;
  auto end = await(ioc, client.watch(kCM, {}, rv, [&](const WatchEvent& e) {
    if (e.type == WatchEvent::Type::kBookmark) {
      bookmark_rv = rvOf(e.object);
      return bookmark_rv != last;  // until a bookmark has caught up with the secret
    }
    static const char* names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
    events.push_back(std::string(names[static_cast<int>(e.type)]) + " " +
                     std::string(e.object.at("metadata").at("name").as_string()));
    versions.push_back(std::stol(rvOf(e.object)));
    return true;
  }));
  EXPECT_EQ(end.kind, WatchEnd::Kind::kClosed);
  const std::vector<std::string> want{"ADDED a", "ADDED b", "MODIFIED a", "DELETED b"};
  EXPECT_EQ(events, want) << "nothing at or before the list's resourceVersion, then in order";
  EXPECT_TRUE(std::is_sorted(versions.begin(), versions.end()));
  EXPECT_EQ(bookmark_rv, last);
  const auto log = api.requests();
  ASSERT_FALSE(log.empty());
  const auto& watch = log.back();
  EXPECT_EQ(watch.verb, "watch");
  EXPECT_NE(watch.query.find("allowWatchBookmarks=true"), std::string::npos);
  EXPECT_NE(watch.query.find("resourceVersion=" + rv), std::string::npos);
}

// A Reflector on configmaps, run on `ioc` until the test stops it.
struct RunningReflector {
  asio::io_context& ioc;
  Client& client;
  Reflector reflector;
  bool done = false;
  int changes = 0;

  RunningReflector(asio::io_context& i, Client& c) : ioc(i), client(c), reflector(c, kCM) {
    reflector.onChange([this](const Reflector&) { ++changes; });
    spawn(ioc, reflector.run(), done);
    EXPECT_TRUE(runUntil(ioc, [&] { return reflector.synced(); }));
  }
  ~RunningReflector() {
    reflector.stop();
    client.cancel();
    EXPECT_TRUE(runUntil(
        ioc, [&] { return done; }, 5s))
        << "the reflector did not stop";
  }
  bool has(const std::string& name) const { return reflector.objects().count("default/" + name); }
};

TEST(KubeClient, ReflectorBookmarksOnlyMoveTheResourceVersion) {
  fx::ApiServerOptions o;
  o.bookmark_interval_s = 0.05;
  fx::ApiServer api(o);
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("a")).ok());
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api));
  RunningReflector r(ioc, client);
  ASSERT_TRUE(r.has("a"));
  const int changes = r.changes;
  const std::string before = r.reflector.resourceVersion();
  ASSERT_TRUE(
      api.create("v1", "secrets", "default", bj::object{{"metadata", bj::object{{"name", "s"}}}})
          .ok());
  const std::string now = std::to_string(api.resourceVersion());
  ASSERT_NE(before, now);
  EXPECT_TRUE(runUntil(ioc, [&] { return r.reflector.resourceVersion() == now; }))
      << "a bookmark moves the resourceVersion on";
  EXPECT_EQ(r.changes, changes) << "and changes nothing else";
  EXPECT_EQ(r.reflector.objects().size(), 1u);
  EXPECT_EQ(r.reflector.stats().lists, 1u);
}

TEST(KubeClient, ReflectorResumesAfterADroppedWatchWithoutRelisting) {
  fx::ApiServerOptions o;
  o.bookmark_interval_s = 0.1;
  fx::ApiServer api(o);
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("a")).ok());
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api));
  RunningReflector r(ioc, client);
  ASSERT_TRUE(runUntil(ioc, [&] { return api.watchCount() == 1; }));
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("b")).ok());
  ASSERT_TRUE(runUntil(ioc, [&] { return r.has("b"); }));

  api.clearRequests();
  // The watch is cut while nobody watches a write: the resumed watch must deliver it.
  api.deny("watch", "", "configmaps");
  api.dropWatches();
  ASSERT_TRUE(runUntil(ioc, [&] { return r.reflector.stats().failures >= 1; }));
  const std::string rv = r.reflector.resourceVersion();
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("c")).ok());
  EXPECT_TRUE(r.has("a") && r.has("b")) << "the copy stays while the watch is down";
  api.allowAll();
  EXPECT_TRUE(runUntil(ioc, [&] { return r.has("c"); }));

  EXPECT_EQ(r.reflector.stats().lists, 1u) << "no relist";
  EXPECT_EQ(r.reflector.stats().gone, 0u);
  int lists = 0, resumed = 0;
  for (const auto& q : api.requests()) {
    if (q.verb == "list") ++lists;
    if (q.verb == "watch" && q.status == 200 &&
        q.query.find("resourceVersion=" + rv) != std::string::npos)
      ++resumed;
  }
  EXPECT_EQ(lists, 0);
  EXPECT_EQ(resumed, 1) << "a watch from the last resourceVersion seen";
}

TEST(KubeClient, ReflectorRelistsWhenItsResourceVersionWasCompacted) {
  fx::ApiServerOptions o;
  o.bookmark_interval_s = 0.1;
  fx::ApiServer api(o);
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("a")).ok());
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("b")).ok());
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api));
  RunningReflector r(ioc, client);
  ASSERT_TRUE(runUntil(ioc, [&] { return api.watchCount() == 1; }));

  // Writes the reflector does not see, then the history that held them is compacted away: its
  // resourceVersion is too old (410) and only a new list can catch up.
  api.deny("watch", "", "configmaps");
  api.dropWatches();
  ASSERT_TRUE(runUntil(ioc, [&] { return r.reflector.stats().failures >= 1; }));
  ASSERT_TRUE(api.remove("v1", "configmaps", "default", "a").ok());
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("c")).ok());
  api.compact();
  api.dropWatches();
  api.allowAll();
  EXPECT_TRUE(runUntil(ioc, [&] { return r.reflector.stats().gone >= 1 && r.has("c"); }));
  EXPECT_FALSE(r.has("a")) << "the relist replaced the copy";
  EXPECT_TRUE(r.has("b"));
  EXPECT_EQ(r.reflector.stats().lists, 2u);
  EXPECT_TRUE(runUntil(ioc, [&] { return api.watchCount() == 1; })) << "watching again";
}

TEST(KubeClient, ReflectorKeepsItsCopyThroughAnOutageAndCatchesUp) {
  fx::ApiServerOptions o;
  o.bookmark_interval_s = 0.1;
  fx::ApiServer api(o);
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("a")).ok());
  asio::io_context ioc;
  Client client(ioc.get_executor(), plain(api), {.max_retries = 0});
  RunningReflector r(ioc, client);
  ASSERT_TRUE(runUntil(ioc, [&] { return api.watchCount() == 1; }));

  api.deny("list", "", "configmaps");
  api.deny("watch", "", "configmaps");
  api.dropWatches();
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("b")).ok());
  ASSERT_TRUE(api.remove("v1", "configmaps", "default", "a").ok());
  EXPECT_TRUE(runUntil(ioc, [&] { return r.reflector.stats().failures >= 2; }));
  EXPECT_TRUE(r.has("a")) << "the last known state is served while the API server is away";
  EXPECT_FALSE(r.has("b"));
  EXPECT_NE(r.reflector.lastError().find("Forbidden"), std::string::npos)
      << r.reflector.lastError();

  api.allowAll();
  EXPECT_TRUE(runUntil(
      ioc, [&] { return r.has("b") && !r.has("a"); }, 20s));
  EXPECT_TRUE(r.reflector.lastError().empty());
}

// --- Leader election ----------------------------------------------------------------------

// Two candidates, each with a Client of its own (user agents "elector-a" and "elector-b"), on one
// io_context; checks after every handler that they never both lead.
struct Election {
  asio::io_context ioc;
  Client ca, cb;
  LeaderElector a, b;
  bool a_done = false, b_done = false;
  bool both_led = false;

  static LeaderConfig config(const std::string& id) {
    return {.ns = "default",
            .name = "lock",
            .identity = id,
            // Whole seconds: the Lease holds leaseDurationSeconds truncated, as client-go's.
            .lease_duration_s = 2,
            .renew_deadline_s = 1,
            .retry_period_s = 0.25};
  }
  explicit Election(const fx::ApiServer& api)
      : ca(ioc.get_executor(), plain(api), {.user_agent = "elector-a"}),
        cb(ioc.get_executor(), plain(api), {.user_agent = "elector-b"}),
        a(ca, config("a")),
        b(cb, config("b")) {
    spawn(ioc, a.run(), a_done);
    spawn(ioc, b.run(), b_done);
  }
  ~Election() {
    a.stop();
    b.stop();
    runUntil(
        ioc, [&] { return a_done && b_done; }, 10s);
    ca.cancel();
    cb.cancel();
    runFor(ioc, 50ms);
  }
  template <class Pred>
  bool until(Pred pred, std::chrono::milliseconds timeout = 10s) {
    return runUntil(
        ioc,
        [&] {
          if (a.isLeader() && b.isLeader()) both_led = true;
          return pred();
        },
        timeout);
  }
  std::int64_t transitions(const fx::ApiServer& api) {
    auto l = api.get("coordination.k8s.io/v1", "leases", "default", "lock");
    return l.ok() ? l->at("spec").at("leaseTransitions").as_int64() : -1;
  }
  std::string holder(const fx::ApiServer& api) {
    auto l = api.get("coordination.k8s.io/v1", "leases", "default", "lock");
    return l.ok() ? std::string(l->at("spec").at("holderIdentity").as_string()) : "";
  }
};

TEST(KubeClient, LeaderElectionOneLeadsAndAnotherTakesOverWhenTheLeaseExpires) {
  fx::ApiServer api;
  Election e(api);
  ASSERT_TRUE(e.until([&] { return e.a.isLeader() || e.b.isLeader(); }));
  e.until([] { return false; }, 1s);  // several renewals
  ASSERT_NE(e.a.isLeader(), e.b.isLeader()) << "exactly one leads";
  LeaderElector& leader = e.a.isLeader() ? e.a : e.b;
  LeaderElector& other = e.a.isLeader() ? e.b : e.a;
  EXPECT_EQ(other.holder(), leader.identity());
  EXPECT_EQ(e.holder(api), leader.identity());
  const auto transitions = e.transitions(api);

  // The leader stops renewing without releasing (a crash): the other waits out the lease.
  leader.stop();
  const double stopped = monotonicSeconds();
  ASSERT_TRUE(e.until([&] { return other.isLeader(); }));
  const double took = monotonicSeconds() - stopped;
  // The lease runs from the last renewal the other saw, which may be up to a retry period
  // (0.25 s) before the stop.
  EXPECT_GE(took, 2.0 - 0.25 - 0.05) << "the lease was respected";
  EXPECT_LE(took, 5.0);
  EXPECT_EQ(e.holder(api), other.identity());
  EXPECT_EQ(e.transitions(api), transitions + 1);
  EXPECT_FALSE(e.both_led);
}

TEST(KubeClient, LeaderElectionReleaseHandsOverAtOnce) {
  fx::ApiServer api;
  Election e(api);
  ASSERT_TRUE(e.until([&] { return e.a.isLeader() || e.b.isLeader(); }));
  LeaderElector& leader = e.a.isLeader() ? e.a : e.b;
  LeaderElector& other = e.a.isLeader() ? e.b : e.a;
  e.until([] { return false; }, 500ms);
  bool released = false;
  asio::co_spawn(e.ioc, leader.release(), [&](std::exception_ptr) { released = true; });
  ASSERT_TRUE(e.until([&] { return released; }));
  EXPECT_FALSE(leader.isLeader());
  const double at = monotonicSeconds();
  ASSERT_TRUE(e.until([&] { return other.isLeader(); }));
  EXPECT_LT(monotonicSeconds() - at, 1.0) << "no wait for the lease to expire";
  EXPECT_EQ(e.holder(api), other.identity());
  EXPECT_FALSE(e.both_led);
}

TEST(KubeClient, LeaderElectionALeaderThatCannotRenewStopsLeadingBeforeAnotherAcquires) {
  fx::ApiServer api;
  Election e(api);
  ASSERT_TRUE(e.until([&] { return e.a.isLeader() || e.b.isLeader(); }));
  LeaderElector& leader = e.a.isLeader() ? e.a : e.b;
  LeaderElector& other = e.a.isLeader() ? e.b : e.a;
  bool leader_told = false;
  double told_at = 0, lost_at = 0;
  leader.onChange([&](bool leading) {
    if (!leading) {
      leader_told = true;
      told_at = monotonicSeconds();
    }
  });
  e.until([] { return false; }, 500ms);

  // Only the leader's writes fail (the fixture's deny() is global; a fault matched on the
  // leader's user agent is not).
  const std::string ua = "elector-" + leader.identity();
  api.failNext(1000, {.code = 500}, [ua](const fx::RequestRecord& r) {
    return r.verb == "update" && r.user_agent == ua;
  });
  const double start = monotonicSeconds();
  ASSERT_TRUE(e.until([&] { return !leader.isLeader(); }));
  lost_at = monotonicSeconds();
  EXPECT_LE(lost_at - start, 1.0 + 0.1) << "within renewDeadline of the last renewal";
  ASSERT_TRUE(e.until([&] { return other.isLeader(); }));
  const double acquired_at = monotonicSeconds();
  EXPECT_LT(lost_at, acquired_at);
  EXPECT_TRUE(leader_told) << "onChange(false) came before the other acquired";
  if (leader_told) {
    EXPECT_LT(told_at, acquired_at);
  }
  EXPECT_FALSE(e.both_led);
}

}  // namespace
}  // namespace tidegate::kube

// Tests OF the stand-in Kubernetes API server (support/kube_apiserver.h) and of the controller
// stand-ins (support/kube_cluster.h), over real HTTP with tidegate's own client. They are also
// the executable documentation of the semantics the fixture follows (see the URLs in
// kube_apiserver.h): resource versions, list + watch, bookmarks, 410 Expired, optimistic
// concurrency, the three patch types, selectors, authentication and RBAC, subresources, graceful
// deletion, and a deployment whose pods are scheduled, run as real `tidegate engine` processes on
// their own loopback addresses, and become Ready.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/http_client.h"
#include "common/tls.h"
#include "common/url.h"
#include "support/certs.h"
#include "support/kube_apiserver.h"
#include "support/kube_cluster.h"

namespace tidegate::testing::kube {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Polls `pred` until it holds or `timeout` passes; true if it held.
template <class Pred>
bool waitFor(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

bj::object parseObj(const std::string& s) {
  boost::system::error_code ec;
  auto v = bj::parse(s, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << s;
    return {};
  }
  return v.as_object();
}

std::string str(const bj::value& v) { return v.is_string() ? std::string(v.as_string()) : ""; }
std::string rvOf(const bj::object& o) {
  return str(o.at("metadata").as_object().contains("resourceVersion")
                 ? o.at("metadata").at("resourceVersion")
                 : bj::value());
}

// A client of the fixture: requests with the bearer token over plain HTTP or HTTPS.
struct Client {
  const ApiServer& api;
  std::string token = "test-token";
  std::shared_ptr<tls::ssl::context> tls;

  http::Response request(const std::string& method, const std::string& target,
                         const std::string& body = "",
                         const std::string& content_type = "application/json") const {
    http::Headers h{{"User-Agent", "kube-apiserver-test/1.0"}};
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    if (!body.empty()) h.emplace_back("Content-Type", content_type);
    auto r = http::fetch(
        "127.0.0.1", api.port(),
        {.method = method, .target = target, .body = body, .headers = h, .timeout_s = 10}, {},
        {.tls = tls});
    EXPECT_TRUE(r.ok()) << method << " " << target << ": " << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : http::Response{};
  }
  bj::object get(const std::string& target, unsigned want = 200) const {
    auto r = request("GET", target);
    EXPECT_EQ(r.status, want) << target << ": " << r.body;
    return parseObj(r.body);
  }
  bj::object post(const std::string& target, const bj::object& body, unsigned want = 201) const {
    auto r = request("POST", target, bj::serialize(body));
    EXPECT_EQ(r.status, want) << target << ": " << r.body;
    return parseObj(r.body);
  }
  bj::object put(const std::string& target, const bj::object& body, unsigned want = 200) const {
    auto r = request("PUT", target, bj::serialize(body));
    EXPECT_EQ(r.status, want) << target << ": " << r.body;
    return parseObj(r.body);
  }
  bj::object patch(const std::string& target, const std::string& body,
                   const std::string& content_type, unsigned want = 200) const {
    auto r = request("PATCH", target, body, content_type);
    EXPECT_EQ(r.status, want) << target << ": " << r.body;
    return parseObj(r.body);
  }
  bj::object del(const std::string& target, unsigned want = 200,
                 const std::string& body = "") const {
    auto r = request("DELETE", target, body);
    EXPECT_EQ(r.status, want) << target << ": " << r.body;
    return parseObj(r.body);
  }
};

// A watch stream read on its own thread: the events as parsed JSON lines, in order.
class WatchStream {
 public:
  WatchStream(const ApiServer& api, const std::string& target, std::string token = "test-token")
      : client_(ioc_.get_executor(), "127.0.0.1", api.port()) {
    http::ClientRequest req;
    req.target = target;
    req.timeout_s = 10;
    req.headers = {{"Authorization", "Bearer " + token}};
    asio::co_spawn(
        ioc_,
        [this, req]() -> asio::awaitable<void> {
          auto head = co_await client_.start(req);
          {
            std::lock_guard lk(mu_);
            status_ = head ? head->status : 0;
          }
          cv_.notify_all();
          if (!head) {
            finish(false);
            co_return;
          }
          std::string buf;
          for (;;) {
            auto chunk = co_await client_.next(3600);
            if (!chunk) {
              finish(false);  // cut: the connection failed mid-stream
              co_return;
            }
            if (chunk->empty()) {
              finish(true);  // the last chunk: the server ended the stream cleanly
              co_return;
            }
            buf.append(chunk->data(), chunk->size());
            for (auto nl = buf.find('\n'); nl != std::string::npos; nl = buf.find('\n')) {
              auto line = buf.substr(0, nl);
              buf.erase(0, nl + 1);
              {
                std::lock_guard lk(mu_);
                events_.push_back(parseObj(line));
              }
              cv_.notify_all();
            }
          }
        },
        asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~WatchStream() {
    asio::post(ioc_, [this] { client_.cancel(); });
    thread_.join();
  }

  unsigned status() {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, 10s, [&] { return status_ != 0 || ended_; });
    return status_;
  }
  // The next event (skipping BOOKMARKs unless `bookmarks`), or an empty object after `timeout`.
  bj::object next(std::chrono::milliseconds timeout = 5s, bool bookmarks = false) {
    std::unique_lock lk(mu_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      while (!events_.empty()) {
        auto e = std::move(events_.front());
        events_.pop_front();
        if (bookmarks || str(e["type"]) != "BOOKMARK") return e;
      }
      if (ended_) return {};
      if (cv_.wait_until(lk, deadline) == std::cv_status::timeout && events_.empty()) return {};
    }
  }
  // True once the stream ended; `clean` tells whether it ended with the last chunk.
  bool waitEnd(std::chrono::milliseconds timeout, bool* clean = nullptr) {
    std::unique_lock lk(mu_);
    bool ended = cv_.wait_for(lk, timeout, [&] { return ended_; });
    if (clean) *clean = clean_;
    return ended;
  }

 private:
  void finish(bool clean) {
    {
      std::lock_guard lk(mu_);
      ended_ = true;
      clean_ = clean;
    }
    cv_.notify_all();
  }

  asio::io_context ioc_;
  http::Client client_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<bj::object> events_;
  unsigned status_ = 0;
  bool ended_ = false, clean_ = false;
};

bj::object configMap(const std::string& name, bj::object labels = {}, bj::object data = {}) {
  bj::object md{{"name", name}};
  if (!labels.empty()) md["labels"] = labels;
  return bj::object{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", md}, {"data", data}};
}

// The port every pod of a test deployment listens on (on its own 127.0.0.N): one per test
// process, so that test processes running side by side do not collide.
const std::string kPodPort = std::to_string(20000 + ::getpid() % 20000);

bj::object deployment(const std::string& name, int replicas) {
  return parseObj(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")" + name +
                  R"("},"spec":{"replicas":)" + std::to_string(replicas) +
                  R"(,"selector":{"matchLabels":{"app":")" + name +
                  R"("}},"template":{"metadata":{"labels":{"app":")" + name +
                  R"("}},"spec":{"containers":[{"name":"engine","image":"tidegate",)"
                  R"("command":["tidegate","engine"],"args":["--port",")" +
                  kPodPort +
                  R"("],)"
                  R"("ports":[{"containerPort":)" +
                  kPodPort + R"(,"name":"http"}]}]}}}})");
}

const std::string kCM = "/api/v1/namespaces/default/configmaps";
const std::string kDeploy = "/apis/apps/v1/namespaces/default/deployments";

TEST(KubeApi, EveryWriteGetsTheNextGlobalResourceVersionAndListsCarryTheCurrentOne) {
  ApiServer api;
  Client c{api};
  auto a = c.post(kCM, configMap("a"));
  auto b = c.post(kCM, configMap("b"));
  const auto rva = std::stoull(rvOf(a)), rvb = std::stoull(rvOf(b));
  EXPECT_EQ(rvb, rva + 1) << "one counter for every kind, like an etcd revision";
  EXPECT_FALSE(str(a["metadata"].at("uid")).empty());
  EXPECT_EQ(str(a["metadata"].at("namespace")), "default");
  EXPECT_EQ(str(a["metadata"].at("creationTimestamp")).size(), 20u);  // 2024-01-02T03:04:05Z
  a["data"] = bj::object{{"k", "v"}};
  auto a2 = c.put(kCM + "/a", a);
  EXPECT_EQ(std::stoull(rvOf(a2)), rvb + 1);
  // A write that changes nothing is not a write.
  auto a3 = c.put(kCM + "/a", a2);
  EXPECT_EQ(rvOf(a3), rvOf(a2));
  auto list = c.get(kCM);
  EXPECT_EQ(str(list["kind"]), "ConfigMapList");
  EXPECT_EQ(str(list["apiVersion"]), "v1");
  EXPECT_EQ(str(list["metadata"].at("resourceVersion")), std::to_string(api.resourceVersion()));
  EXPECT_EQ(list["items"].as_array().size(), 2u);
  // Not found, already exists: Status objects with the real reasons and messages.
  auto nf = c.get(kCM + "/zzz", 404);
  EXPECT_EQ(str(nf["kind"]), "Status");
  EXPECT_EQ(str(nf["reason"]), "NotFound");
  EXPECT_EQ(str(nf["message"]), "configmaps \"zzz\" not found");
  EXPECT_EQ(str(nf["details"].at("kind")), "configmaps");
  auto dup = c.post(kCM, configMap("a"), 409);
  EXPECT_EQ(str(dup["reason"]), "AlreadyExists");
  // generateName, and a namespace that does not exist.
  auto g = c.post(kCM, bj::object{{"metadata", bj::object{{"generateName", "gen-"}}}});
  EXPECT_EQ(str(g["metadata"].at("name")).size(), 9u);
  auto nons = c.post("/api/v1/namespaces/nope/configmaps", configMap("x"), 404);
  EXPECT_EQ(str(nons["message"]), "namespaces \"nope\" not found");
  // Unknown resources are 404.
  EXPECT_EQ(c.request("GET", "/api/v1/namespaces/default/widgets").status, 404u);
  // Generation moves with the spec, not with metadata or status.
  auto d = c.post(kDeploy, deployment("web", 1));
  EXPECT_EQ(d["metadata"].at("generation").as_int64(), 1);
  d["spec"].as_object()["replicas"] = 2;
  auto d2 = c.put(kDeploy + "/web", d);
  EXPECT_EQ(d2["metadata"].at("generation").as_int64(), 2);
  d2["metadata"].as_object()["labels"] = bj::object{{"x", "y"}};
  auto d3 = c.put(kDeploy + "/web", d2);
  EXPECT_EQ(d3["metadata"].at("generation").as_int64(), 2);
}

TEST(KubeApi, WatchFromTheListResourceVersionSeesExactlyTheLaterChanges) {
  ApiServer api;
  Client c{api};
  c.post(kCM, configMap("before"));
  const auto list_rv = str(c.get(kCM)["metadata"].at("resourceVersion"));
  c.post(kCM, configMap("after"));  // between the list and the watch: still seen
  WatchStream w(api, kCM + "?watch=true&resourceVersion=" + list_rv);
  ASSERT_EQ(w.status(), 200u);
  auto e1 = w.next();
  EXPECT_EQ(str(e1["type"]), "ADDED");
  EXPECT_EQ(str(e1["object"].at("metadata").at("name")), "after");
  ASSERT_TRUE(waitFor([&] { return api.watchCount() == 1; }));
  auto cm = c.get(kCM + "/after");
  cm["data"] = bj::object{{"x", "1"}};
  c.put(kCM + "/after", cm);
  c.del(kCM + "/before");
  auto e2 = w.next();
  EXPECT_EQ(str(e2["type"]), "MODIFIED");
  EXPECT_EQ(str(e2["object"].at("data").at("x")), "1");
  auto e3 = w.next();
  EXPECT_EQ(str(e3["type"]), "DELETED");
  EXPECT_EQ(str(e3["object"].at("metadata").at("name")), "before");
  EXPECT_EQ(rvOf(e3["object"].as_object()), std::to_string(api.resourceVersion()))
      << "a DELETED event carries the deletion's resourceVersion";
  EXPECT_TRUE(w.next(200ms).empty()) << "nothing else";
  // Writes through the C++ interface are the same events.
  ASSERT_TRUE(api.create("v1", "configmaps", "default", configMap("cxx")).ok());
  EXPECT_EQ(str(w.next()["object"].at("metadata").at("name")), "cxx");
}

TEST(KubeApi, WatchWithoutResourceVersionStartsWithSyntheticAddedForTheCurrentState) {
  ApiServer api;
  Client c{api};
  c.post(kCM, configMap("one"));
  c.post(kCM, configMap("two"));
  c.post("/api/v1/namespaces/kube-system/configmaps", configMap("elsewhere"));
  WatchStream w(api, kCM + "?watch=1");
  std::set<std::string> names;
  for (int i = 0; i < 2; ++i) {
    auto e = w.next();
    EXPECT_EQ(str(e["type"]), "ADDED");
    names.insert(str(e["object"].at("metadata").at("name")));
  }
  EXPECT_EQ(names, (std::set<std::string>{"one", "two"}));
  EXPECT_TRUE(w.next(200ms).empty()) << "the other namespace is not watched";
  // All namespaces: /api/v1/configmaps.
  WatchStream all(api, "/api/v1/configmaps?watch=true&resourceVersion=0");
  int n = 0;
  while (!all.next(300ms).empty()) ++n;
  EXPECT_EQ(n, 3);
}

TEST(KubeApi, BookmarksCarryOnlyKindApiVersionAndTheCurrentResourceVersion) {
  ApiServerOptions o;
  o.bookmark_interval_s = 0.1;
  ApiServer api(o);
  Client c{api};
  c.post(kDeploy, deployment("web", 1));
  WatchStream w(api, kDeploy + "?watch=true&allowWatchBookmarks=true&resourceVersion=" +
                         std::to_string(api.resourceVersion()));
  auto e = w.next(5s, true);
  ASSERT_EQ(str(e["type"]), "BOOKMARK");
  const auto& obj = e["object"].as_object();
  EXPECT_EQ(str(obj.at("kind")), "Deployment");
  EXPECT_EQ(str(obj.at("apiVersion")), "apps/v1");
  EXPECT_EQ(obj.at("metadata").as_object().size(), 1u);
  EXPECT_EQ(rvOf(obj), std::to_string(api.resourceVersion()));
  // Without allowWatchBookmarks, none.
  WatchStream plain(
      api, kDeploy + "?watch=true&resourceVersion=" + std::to_string(api.resourceVersion()));
  EXPECT_TRUE(plain.next(400ms, true).empty());
}

TEST(KubeApi, ATooOldResourceVersionIs200ThenAnErrorEventWith410Expired) {
  ApiServer api;
  Client c{api};
  c.post(kCM, configMap("a"));
  const auto old_rv = api.resourceVersion();
  c.post(kCM, configMap("b"));
  api.compact();
  WatchStream w(api, kCM + "?watch=true&resourceVersion=" + std::to_string(old_rv));
  EXPECT_EQ(w.status(), 200u) << "the watch cache answers 200 and then an ERROR event";
  auto e = w.next();
  ASSERT_EQ(str(e["type"]), "ERROR");
  const auto& st = e["object"].as_object();
  EXPECT_EQ(str(st.at("kind")), "Status");
  EXPECT_EQ(st.at("code").as_int64(), 410);
  EXPECT_EQ(str(st.at("reason")), "Expired");
  EXPECT_EQ(str(st.at("message")), "too old resource version: " + std::to_string(old_rv) + " (" +
                                       std::to_string(api.resourceVersion()) + ")");
  bool clean = false;
  EXPECT_TRUE(w.waitEnd(5s, &clean));
  EXPECT_TRUE(clean);
  // From the current resourceVersion it works.
  WatchStream ok(api, kCM + "?watch=true&resourceVersion=" + std::to_string(api.resourceVersion()));
  ASSERT_TRUE(waitFor([&] { return api.watchCount() == 1; }));
  c.post(kCM, configMap("c"));
  EXPECT_EQ(str(ok.next()["type"]), "ADDED");
  // The retained window: with 3 events kept, a resourceVersion 5 writes back is too old.
  ApiServerOptions small;
  small.watch_window = 3;
  ApiServer api2(small);
  Client c2{api2};
  const auto start = api2.resourceVersion();
  for (int i = 0; i < 5; ++i) c2.post(kCM, configMap("x" + std::to_string(i)));
  WatchStream expired(api2, kCM + "?watch=true&resourceVersion=" + std::to_string(start));
  EXPECT_EQ(str(expired.next()["type"]), "ERROR");
  WatchStream within(api2, kCM + "?watch=true&resourceVersion=" + std::to_string(start + 2));
  EXPECT_EQ(str(within.next()["object"].at("metadata").at("name")), "x2");
}

TEST(KubeApi, StalePutAndStaleScaleAre409ConflictWithTheRealMessage) {
  ApiServer api;
  Client c{api};
  auto d = c.post(kDeploy, deployment("x", 1));
  auto stale = d;
  d["spec"].as_object()["replicas"] = 3;
  c.put(kDeploy + "/x", d);
  stale["spec"].as_object()["replicas"] = 5;
  auto conflict = c.put(kDeploy + "/x", stale, 409);
  EXPECT_EQ(str(conflict["reason"]), "Conflict");
  EXPECT_EQ(str(conflict["message"]),
            "Operation cannot be fulfilled on deployments.apps \"x\": the object has been "
            "modified; please apply your changes to the latest version and try again");
  // Without a resourceVersion an update is unconditional (built-in kinds allow it).
  stale["metadata"].as_object().erase("resourceVersion");
  EXPECT_EQ(c.put(kDeploy + "/x", stale)["spec"].at("replicas").as_int64(), 5);

  // /scale: an autoscaling/v1 Scale carrying the deployment's resourceVersion.
  auto scale = c.get(kDeploy + "/x/scale");
  EXPECT_EQ(str(scale["kind"]), "Scale");
  EXPECT_EQ(str(scale["apiVersion"]), "autoscaling/v1");
  EXPECT_EQ(scale["spec"].at("replicas").as_int64(), 5);
  EXPECT_EQ(str(scale["status"].at("selector")), "app=x");
  EXPECT_EQ(rvOf(scale), rvOf(c.get(kDeploy + "/x")));
  auto stale_scale = scale;
  scale["spec"].as_object()["replicas"] = 2;
  auto scaled = c.put(kDeploy + "/x/scale", scale);
  EXPECT_EQ(scaled["spec"].at("replicas").as_int64(), 2);
  EXPECT_EQ(c.get(kDeploy + "/x")["spec"].at("replicas").as_int64(), 2);
  stale_scale["spec"].as_object()["replicas"] = 7;
  auto sc = c.put(kDeploy + "/x/scale", stale_scale, 409);
  EXPECT_EQ(str(sc["reason"]), "Conflict");
  auto patched =
      c.patch(kDeploy + "/x/scale", R"({"spec":{"replicas":4}})", "application/merge-patch+json");
  EXPECT_EQ(patched["spec"].at("replicas").as_int64(), 4);
  // A resourceVersion in a patch is a precondition.
  auto pc = c.patch(kDeploy + "/x", R"({"metadata":{"resourceVersion":"1"},"spec":{"replicas":1}})",
                    "application/merge-patch+json", 409);
  EXPECT_EQ(str(pc["reason"]), "Conflict");
  // Leases: the optimistic concurrency leader election relies on.
  const std::string leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
  auto lease =
      c.post(leases, parseObj(R"({"metadata":{"name":"l"},"spec":{"holderIdentity":"a"}})"));
  auto other = lease;
  lease["spec"].as_object()["holderIdentity"] = "b";
  c.put(leases + "/l", lease);
  other["spec"].as_object()["holderIdentity"] = "c";
  c.put(leases + "/l", other, 409);
}

TEST(KubeApi, MergeStrategicMergeAndJsonPatches) {
  ApiServer api;
  Client c{api};
  const std::string pods = "/api/v1/namespaces/default/pods";
  c.post(pods, parseObj(R"({"metadata":{"name":"p","labels":{"a":"1","b":"2"}},"spec":{
      "containers":[{"name":"main","image":"i1","env":[{"name":"X","value":"1"}],
                     "ports":[{"containerPort":80}]},{"name":"side","image":"s"}],
      "tolerations":[{"key":"k1","operator":"Exists"}]}})"));
  // Merge patch (RFC 7386): maps merge, null deletes, lists are replaced.
  auto m = c.patch(pods + "/p", R"({"metadata":{"labels":{"a":null,"c":"3"}}})",
                   "application/merge-patch+json");
  EXPECT_EQ(m["metadata"].at("labels"), (bj::value(bj::object{{"b", "2"}, {"c", "3"}})));
  // Strategic merge: containers merged by name, env by name, ports by containerPort;
  // tolerations (no patch strategy) replaced whole.
  auto s = c.patch(pods + "/p", R"({"spec":{
      "containers":[{"name":"main","image":"i2","env":[{"name":"Y","value":"2"}],
                     "ports":[{"containerPort":81}]}],
      "tolerations":[{"key":"k2","operator":"Exists"}]}})",
                   "application/strategic-merge-patch+json");
  const auto& cs = s["spec"].at("containers").as_array();
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(str(cs[0].at("image")), "i2");
  EXPECT_EQ(cs[0].at("env").as_array().size(), 2u);
  EXPECT_EQ(cs[0].at("ports").as_array().size(), 2u);
  EXPECT_EQ(str(cs[1].at("name")), "side");
  EXPECT_EQ(s["spec"].at("tolerations").as_array().size(), 1u);
  EXPECT_EQ(str(s["spec"].at("tolerations").at(0).at("key")), "k2");
  // $patch: delete removes a keyed element.
  auto del = c.patch(pods + "/p", R"({"spec":{"containers":[{"name":"side","$patch":"delete"}]}})",
                     "application/strategic-merge-patch+json");
  EXPECT_EQ(del["spec"].at("containers").as_array().size(), 1u);
  // Conditions (by type) through /status.
  c.patch(
      pods + "/p/status",
      R"({"status":{"conditions":[{"type":"Ready","status":"False"},{"type":"PodScheduled","status":"True"}]}})",
      "application/strategic-merge-patch+json");
  auto st =
      c.patch(pods + "/p/status", R"({"status":{"conditions":[{"type":"Ready","status":"True"}]}})",
              "application/strategic-merge-patch+json");
  EXPECT_EQ(st["status"].at("conditions").as_array().size(), 2u);
  EXPECT_EQ(str(st["status"].at("conditions").at(0).at("status")), "True");
  // JSON patch (RFC 6902).
  auto j = c.patch(pods + "/p",
                   R"([{"op":"test","path":"/metadata/labels/b","value":"2"},
                       {"op":"add","path":"/metadata/labels/d","value":"4"},
                       {"op":"replace","path":"/spec/containers/0/image","value":"i3"},
                       {"op":"remove","path":"/metadata/labels/c"}])",
                   "application/json-patch+json");
  EXPECT_EQ(j["metadata"].at("labels"), (bj::value(bj::object{{"b", "2"}, {"d", "4"}})));
  EXPECT_EQ(str(j["spec"].at("containers").at(0).at("image")), "i3");
  auto failed = c.patch(pods + "/p", R"([{"op":"test","path":"/metadata/labels/b","value":"9"}])",
                        "application/json-patch+json", 422);
  EXPECT_EQ(str(failed["reason"]), "Invalid");
  // Unsupported content type; strategic merge on a custom resource.
  auto bad = c.patch(pods + "/p", "{}", "application/yaml", 415);
  EXPECT_EQ(str(bad["reason"]), "UnsupportedMediaType");
  api.registerResource("tidegate.io", "v1alpha1", "nodepools", "NodePool", true, true);
  const std::string np = "/apis/tidegate.io/v1alpha1/namespaces/default/nodepools";
  c.post(np, parseObj(R"({"metadata":{"name":"n"},"spec":{"min":1},"status":{"x":1}})"));
  c.patch(np + "/n", R"({"spec":{"min":2}})", "application/strategic-merge-patch+json", 415);
  auto cr =
      c.patch(np + "/n", R"({"spec":{"min":2},"status":{"x":2}})", "application/merge-patch+json");
  EXPECT_EQ(cr["spec"].at("min").as_int64(), 2);
  EXPECT_FALSE(cr.contains("status")) << "status is ignored on create and on the main resource";
  auto crs = c.patch(np + "/n/status", R"({"status":{"x":3}})", "application/merge-patch+json");
  EXPECT_EQ(crs["status"].at("x").as_int64(), 3);
  EXPECT_EQ(crs["metadata"].at("generation").as_int64(), 2) << "status does not move generation";
}

TEST(KubeApi, LabelAndFieldSelectorsInEveryDocumentedForm) {
  ApiServer api;
  Client c{api};
  c.post(kCM, configMap("a", {{"env", "prod"}, {"tier", "web"}}));
  c.post(kCM, configMap("b", {{"env", "dev"}, {"tier", "web"}}));
  c.post(kCM, configMap("c", {{"env", "qa"}}));
  c.post(kCM, configMap("d"));
  auto names = [&](const std::string& sel) {
    auto l = c.get(kCM + "?labelSelector=" + urlEncode(sel));
    std::string out;
    for (const auto& i : l["items"].as_array()) out += str(i.at("metadata").at("name"));
    return out;
  };
  EXPECT_EQ(names("env=prod"), "a");
  EXPECT_EQ(names("env==prod"), "a");
  EXPECT_EQ(names("env!=prod"), "bcd") << "!= matches objects without the label";
  EXPECT_EQ(names("env in (prod,dev)"), "ab");
  EXPECT_EQ(names("env notin (prod,dev)"), "cd");
  EXPECT_EQ(names("tier"), "ab");
  EXPECT_EQ(names("!tier"), "cd");
  EXPECT_EQ(names("tier=web,env!=dev"), "a");
  EXPECT_EQ(names(""), "abcd");
  for (const char* bad : {"env in prod", "env in ()", "=x", "env=a b", "bad key!=x", "env,,"}) {
    auto r = c.request("GET", kCM + "?labelSelector=" + urlEncode(bad));
    EXPECT_EQ(r.status, 400u) << bad;
    EXPECT_EQ(str(parseObj(r.body)["reason"]), "BadRequest") << bad;
  }
  auto byName = c.get(kCM + "?fieldSelector=" + urlEncode("metadata.name=b"));
  EXPECT_EQ(byName["items"].as_array().size(), 1u);
  auto notName = c.get(kCM + "?fieldSelector=" + urlEncode("metadata.name!=b"));
  EXPECT_EQ(notName["items"].as_array().size(), 3u);
  EXPECT_EQ(c.request("GET", kCM + "?fieldSelector=" + urlEncode("spec.nodeName=x")).status, 400u)
      << "configmaps have no spec.nodeName field label";
  // Pods: spec.nodeName and status.phase.
  const std::string pods = "/api/v1/namespaces/default/pods";
  c.post(pods, parseObj(R"({"metadata":{"name":"p1"},"spec":{"nodeName":"n1","containers":[]}})"));
  c.post(pods, parseObj(R"({"metadata":{"name":"p2"},"spec":{"containers":[]}})"));
  auto on_n1 = c.get("/api/v1/pods?fieldSelector=" + urlEncode("spec.nodeName=n1"));
  EXPECT_EQ(on_n1["items"].as_array().size(), 1u);
  auto unbound = c.get(pods + "?fieldSelector=" + urlEncode("spec.nodeName=,status.phase=Pending"));
  ASSERT_EQ(unbound["items"].as_array().size(), 1u);
  EXPECT_EQ(str(unbound["items"].at(0).at("metadata").at("name")), "p2");
  // Pages.
  auto page = c.get(kCM + "?limit=3");
  EXPECT_EQ(page["items"].as_array().size(), 3u);
  const auto cont = str(page["metadata"].at("continue"));
  ASSERT_FALSE(cont.empty());
  auto rest = c.get(kCM + "?limit=3&continue=" + urlEncode(cont));
  EXPECT_EQ(rest["items"].as_array().size(), 1u);
  EXPECT_FALSE(rest["metadata"].as_object().contains("continue"));
}

TEST(KubeApi, AWatchWithASelectorSeesDeletedWhenAnObjectStopsMatchingAndAddedWhenItStarts) {
  ApiServer api;
  Client c{api};
  c.post(kCM, configMap("a", {{"app", "x"}}));
  WatchStream w(api, kCM + "?watch=true&labelSelector=app%3Dx&resourceVersion=" +
                         std::to_string(api.resourceVersion()));
  ASSERT_TRUE(waitFor([&] { return api.watchCount() == 1; }));
  c.patch(kCM + "/a", R"({"metadata":{"labels":{"app":"y"}}})", "application/merge-patch+json");
  auto gone = w.next();
  EXPECT_EQ(str(gone["type"]), "DELETED");
  EXPECT_EQ(str(gone["object"].at("metadata").at("labels").at("app")), "x")
      << "the previous content";
  EXPECT_EQ(rvOf(gone["object"].as_object()), std::to_string(api.resourceVersion()));
  c.patch(kCM + "/a", R"({"metadata":{"labels":{"app":"x"}}})", "application/merge-patch+json");
  EXPECT_EQ(str(w.next()["type"]), "ADDED");
  c.post(kCM, configMap("other", {{"app", "z"}}));
  EXPECT_TRUE(w.next(200ms).empty());
}

TEST(KubeApi, TimeoutSecondsEndsAWatchCleanlyAndDropWatchesCutsItAbruptly) {
  ApiServer api;
  WatchStream timed(api, kCM + "?watch=true&timeoutSeconds=1");
  bool clean = false;
  EXPECT_TRUE(timed.waitEnd(5s, &clean));
  EXPECT_TRUE(clean) << "the last chunk was sent";
  WatchStream cut(api, kCM + "?watch=true");
  ASSERT_TRUE(waitFor([&] { return api.watchCount() == 1; }));
  api.dropWatches();
  EXPECT_TRUE(cut.waitEnd(5s, &clean));
  EXPECT_FALSE(clean) << "the connection was cut mid-stream";
  EXPECT_TRUE(waitFor([&] { return api.watchCount() == 0; }));
}

TEST(KubeApi, UnauthenticatedIs401AndDeniedIs403WithARealLookingStatus) {
  ApiServer api;
  Client anon{api, ""};
  auto r = anon.request("GET", kCM);
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(str(parseObj(r.body)["reason"]), "Unauthorized");
  Client wrong{api, "nope"};
  EXPECT_EQ(wrong.request("GET", kCM).status, 401u);
  EXPECT_EQ(anon.request("GET", "/healthz").status, 200u);

  api.deny("list", "", "pods");
  api.deny("update", "apps", "deployments/scale");
  Client c{api};
  auto f = c.get("/api/v1/namespaces/default/pods", 403);
  EXPECT_EQ(str(f["reason"]), "Forbidden");
  EXPECT_EQ(str(f["message"]),
            "pods is forbidden: User \"system:serviceaccount:tidegate:tidegate\" cannot list "
            "resource \"pods\" in API group \"\" in the namespace \"default\"");
  EXPECT_EQ(str(f["details"].at("kind")), "pods");
  auto all = c.get("/api/v1/pods", 403);
  EXPECT_NE(str(all["message"]).find("at the cluster scope"), std::string::npos);
  c.get("/api/v1/namespaces/default/pods/p", 404);  // get is allowed
  c.post(kDeploy, deployment("web", 1));
  auto s = c.put(kDeploy + "/web/scale", parseObj(R"({"spec":{"replicas":2}})"), 403);
  EXPECT_EQ(str(s["message"]),
            "deployments.apps \"web\" is forbidden: User "
            "\"system:serviceaccount:tidegate:tidegate\" cannot update resource "
            "\"deployments/scale\" in API group \"apps\" in the namespace \"default\"");
  EXPECT_EQ(str(s["details"].at("group")), "apps");
  api.allowAll();
  c.put(kDeploy + "/web/scale", parseObj(R"({"spec":{"replicas":2}})"));
  // The request log.
  auto log = api.requests();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.front().status, 401);
  EXPECT_EQ(log.back().verb, "update");
  EXPECT_EQ(log.back().path, kDeploy + "/web/scale");
  EXPECT_EQ(log.back().user_agent, "kube-apiserver-test/1.0");
}

TEST(KubeApi, ClientCertificatesAuthenticateOverTlsAndTokensStillWork) {
  TestCerts certs;
  ApiServerOptions o;
  o.tls_certificate_file = certs.crt("server");
  o.tls_key_file = certs.key("server");
  o.tls_client_ca_file = certs.crt("ca");
  ApiServer api(o);
  EXPECT_EQ(api.url(), "https://127.0.0.1:" + std::to_string(api.port()));
  auto ctx = [&](const std::string& client) {
    auto r = tls::makeClientContext({certs.crt("ca"), client.empty() ? "" : certs.crt(client),
                                     client.empty() ? "" : certs.key(client)});
    EXPECT_TRUE(r.ok());
    return *r;
  };
  api.deny("list", "", "secrets");
  Client cert{api, "", ctx("client")};
  auto f = cert.get("/api/v1/namespaces/default/secrets", 403);
  EXPECT_NE(str(f["message"]).find("User \"tidegate-client\""), std::string::npos)
      << "a verified certificate authenticates";
  cert.get(kCM);
  Client token{api, "test-token", ctx("client")};
  auto t = token.get("/api/v1/namespaces/default/secrets", 403);
  EXPECT_NE(str(t["message"]).find("system:serviceaccount:tidegate:tidegate"), std::string::npos)
      << "a valid token names its own user";
  auto none =
      http::fetch("127.0.0.1", api.port(), {.target = kCM, .timeout_s = 5}, {}, {.tls = ctx("")});
  EXPECT_FALSE(none.ok()) << "mutual TLS: no certificate, no connection";
  auto stranger = http::fetch("127.0.0.1", api.port(), {.target = kCM, .timeout_s = 5}, {},
                              {.tls = ctx("stranger")});
  EXPECT_FALSE(stranger.ok()) << "a certificate from another CA fails the handshake";
}

TEST(KubeApi, InjectedFailuresAnswerTheNextMatchingRequests) {
  ApiServer api;
  Client c{api};
  api.failNext(2, {.code = 429, .retry_after_s = 1}, "/configmaps");
  auto r1 = c.request("GET", kCM);
  EXPECT_EQ(r1.status, 429u);
  EXPECT_EQ(r1.header("Retry-After"), "1");
  EXPECT_EQ(str(parseObj(r1.body)["reason"]), "TooManyRequests");
  EXPECT_EQ(c.request("GET", "/api/v1/namespaces/default/pods").status, 200u) << "no match";
  EXPECT_EQ(c.request("GET", kCM).status, 429u);
  EXPECT_EQ(c.request("GET", kCM).status, 200u);
  api.failNext(1, {.code = 500}, [](const RequestRecord& r) { return r.verb == "create"; });
  EXPECT_EQ(c.request("POST", kCM, bj::serialize(configMap("a"))).status, 500u);
  EXPECT_EQ(c.request("POST", kCM, bj::serialize(configMap("a"))).status, 201u);
}

TEST(KubeApi, StatusSubresourceAndPodGracefulDeletionWithoutAKubelet) {
  ApiServer api;
  Client c{api};
  const std::string pods = "/api/v1/namespaces/default/pods";
  auto p = c.post(pods, parseObj(R"({"metadata":{"name":"p"},"spec":{"nodeName":"n1",
      "containers":[{"name":"c","image":"i"}]},"status":{"phase":"Running"}})"));
  EXPECT_EQ(str(p["status"].at("phase")), "Pending") << "a pod is created Pending";
  p["status"].as_object()["phase"] = "Running";
  EXPECT_EQ(str(c.put(pods + "/p", p)["status"].at("phase")), "Pending")
      << "the main resource ignores status";
  EXPECT_EQ(str(c.put(pods + "/p/status", p)["status"].at("phase")), "Running");
  WatchStream w(api, pods + "?watch=true&resourceVersion=" + std::to_string(api.resourceVersion()));
  ASSERT_TRUE(waitFor([&] { return api.watchCount() == 1; }));
  auto d = c.del(pods + "/p");
  EXPECT_TRUE(d["metadata"].as_object().contains("deletionTimestamp"));
  EXPECT_EQ(d["metadata"].at("deletionGracePeriodSeconds").as_int64(), 30);
  auto e = w.next();
  EXPECT_EQ(str(e["type"]), "MODIFIED");
  EXPECT_TRUE(e["object"].at("metadata").as_object().contains("deletionTimestamp"));
  c.get(pods + "/p");  // still there: the kubelet has not confirmed
  c.del(pods + "/p?gracePeriodSeconds=0");
  EXPECT_EQ(str(w.next()["type"]), "DELETED");
  c.get(pods + "/p", 404);
  // An unbound pod goes at once; an object with finalizers waits for them.
  c.post(pods, parseObj(R"({"metadata":{"name":"q"},"spec":{"containers":[]}})"));
  EXPECT_EQ(str(w.next()["type"]), "ADDED");
  c.del(pods + "/q");
  EXPECT_EQ(str(w.next()["type"]), "DELETED");
  c.post(kCM, parseObj(R"({"metadata":{"name":"f","finalizers":["x/y"]}})"));
  c.del(kCM + "/f");
  auto f = c.get(kCM + "/f");
  EXPECT_TRUE(f["metadata"].as_object().contains("deletionTimestamp"));
  c.patch(kCM + "/f", R"({"metadata":{"finalizers":null}})", "application/merge-patch+json");
  c.get(kCM + "/f", 404);
}

TEST(KubeApi, DiscoveryListsRegisteredResources) {
  ApiServer api;
  api.registerResource("inference.networking.k8s.io", "v1", "inferencepools", "InferencePool",
                       true);
  Client c{api};
  auto groups = c.get("/apis");
  bool found = false;
  for (const auto& g : groups["groups"].as_array())
    found = found || str(g.at("name")) == "inference.networking.k8s.io";
  EXPECT_TRUE(found);
  auto res = c.get("/apis/apps/v1");
  bool scale = false;
  for (const auto& r : res["resources"].as_array())
    scale = scale || str(r.at("name")) == "deployments/scale";
  EXPECT_TRUE(scale);
  c.post("/apis/inference.networking.k8s.io/v1/namespaces/default/inferencepools",
         parseObj(R"({"metadata":{"name":"pool"},"spec":{"targetPorts":[{"number":8000}]}})"));
  EXPECT_EQ(c.get("/apis/inference.networking.k8s.io/v1/inferencepools")["items"].as_array().size(),
            1u);
}

// --- The controller stand-ins ---

// A runtime without processes: pods "run" as soon as they start, until crash() or stop().
class FakeRuntime : public PodRuntime {
 public:
  Status start(const bj::object& pod, const std::string&) override {
    std::lock_guard lk(mu_);
    running_[str(pod.at("metadata").at("uid"))] = true;
    return {};
  }
  void stop(const std::string& uid, double) override {
    std::lock_guard lk(mu_);
    running_.erase(uid);
    stopped_.push_back(uid);
  }
  bool running(const std::string& uid) override {
    std::lock_guard lk(mu_);
    return running_[uid];
  }
  void crash(const std::string& uid) {
    std::lock_guard lk(mu_);
    running_[uid] = false;
  }
  std::vector<std::string> stopped() {
    std::lock_guard lk(mu_);
    return stopped_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, bool> running_;
  std::vector<std::string> stopped_;
};

std::vector<bj::object> podsOf(ApiServer& api, const std::string& selector) {
  auto l = api.list("v1", "pods", "default", selector);
  return l ? *l : std::vector<bj::object>{};
}

bool podReady(const bj::object& p) {
  if (const auto* st = p.if_contains("status"))
    if (const auto* cs = st->as_object().if_contains("conditions"))
      for (const auto& c : cs->as_array())
        if (str(c.at("type")) == "Ready") return str(c.at("status")) == "True";
  return false;
}

// Pods matching `selector` that exist, are not terminating and are Ready.
std::size_t readyPods(ApiServer& api, const std::string& selector) {
  std::size_t n = 0;
  for (const auto& p : podsOf(api, selector))
    if (!p.at("metadata").as_object().contains("deletionTimestamp") && podReady(p)) ++n;
  return n;
}

std::int64_t readyReplicas(ApiServer& api, const std::string& name) {
  auto d = api.get("apps/v1", "deployments", "default", name);
  if (!d) return -1;
  const auto* st = d->at("status").as_object().if_contains("readyReplicas");
  return st ? st->as_int64() : 0;
}

TEST(KubeApi, ADeploymentsPodsAreScheduledAndRunAsRealEnginesOnTheirOwnLoopbackAddresses) {
  ApiServer api;
  auto runtime = std::make_shared<EngineRuntime>();
  Cluster cluster(api, {.runtime = runtime});
  ASSERT_TRUE(cluster.addNode("node-1", {{"pool", "edge"}}, 8).ok());
  Client c{api};
  auto d = deployment("web", 2);
  auto& container = d["spec"]
                        .as_object()["template"]
                        .as_object()["spec"]
                        .as_object()["containers"]
                        .as_array()[0]
                        .as_object();
  container["args"] =
      bj::array{"--port", kPodPort, "--log-level", "warn", "--served-model-name", "m"};
  container["readinessProbe"] =
      bj::object{{"httpGet", bj::object{{"path", "/health"}, {"port", "http"}}}};
  c.post(kDeploy, d);
  ASSERT_TRUE(waitFor([&] { return readyReplicas(api, "web") == 2; }, 20s))
      << bj::serialize(c.get(kDeploy + "/web"));
  auto pods = podsOf(api, "app=web");
  ASSERT_EQ(pods.size(), 2u);
  std::set<std::string> ips;
  for (const auto& p : pods) {
    const auto& md = p.at("metadata").as_object();
    const auto hash = str(md.at("labels").at("pod-template-hash"));
    EXPECT_FALSE(hash.empty());
    EXPECT_EQ(str(md.at("name")).rfind("web-" + hash + "-", 0), 0u) << md.at("name");
    EXPECT_EQ(str(md.at("name")).size(), ("web-" + hash + "-").size() + 5);
    const auto& owner = md.at("ownerReferences").at(0).as_object();
    EXPECT_EQ(str(owner.at("kind")), "Deployment");
    EXPECT_EQ(str(owner.at("name")), "web");
    EXPECT_TRUE(owner.at("controller").as_bool());
    EXPECT_EQ(str(p.at("spec").at("nodeName")), "node-1");
    EXPECT_EQ(str(p.at("status").at("phase")), "Running");
    EXPECT_TRUE(podReady(p));
    const auto ip = str(p.at("status").at("podIP"));
    EXPECT_EQ(ip.rfind("127.0.0.", 0), 0u);
    EXPECT_NE(ip, "127.0.0.1");
    EXPECT_EQ(ip, cluster.podIp("default", str(md.at("name"))));
    ips.insert(ip);
    // Each pod is a real engine listening on its own address at the pool's port.
    auto h = http::fetch(ip, static_cast<std::uint16_t>(std::stoi(kPodPort)),
                         {.target = "/v1/models", .timeout_s = 5});
    ASSERT_TRUE(h.ok()) << ip;
    EXPECT_EQ(h->status, 200u);
  }
  EXPECT_EQ(ips.size(), 2u) << "every pod has its own IP";
  for (const auto& argv : runtime->started()) {
    EXPECT_EQ(argv[0], TIDEGATE_BINARY);
    EXPECT_EQ(argv[argv.size() - 2], "--host");
  }
  auto dep = c.get(kDeploy + "/web");
  EXPECT_EQ(dep["status"].at("replicas").as_int64(), 2);
  EXPECT_EQ(dep["status"].at("availableReplicas").as_int64(), 2);
  EXPECT_EQ(dep["status"].at("updatedReplicas").as_int64(), 2);
  EXPECT_EQ(dep["status"].at("observedGeneration").as_int64(), 1);
  // Readiness follows the probe: forced off, the pod goes not ready and the deployment counts it.
  const auto one = str(pods[0].at("metadata").at("name"));
  cluster.setProbeOverride("default", one, false);
  EXPECT_TRUE(waitFor([&] { return readyReplicas(api, "web") == 1; }));
  cluster.setProbeOverride("default", one, std::nullopt);
  EXPECT_TRUE(waitFor([&] { return readyReplicas(api, "web") == 2; }));
}

TEST(KubeApi, ScaleDownDeletesPodsInReplicaSetRankOrderHonouringPodDeletionCost) {
  ApiServer api;
  auto runtime = std::make_shared<FakeRuntime>();
  Cluster cluster(api, {.runtime = runtime});
  ASSERT_TRUE(cluster.addNode("node-1").ok());
  Client c{api};
  c.post(kDeploy, deployment("web", 3));
  ASSERT_TRUE(waitFor([&] { return readyPods(api, "app=web") == 3; }));
  auto pods = podsOf(api, "app=web");
  ASSERT_EQ(pods.size(), 3u);
  // The cheapest to delete goes first, whatever the ages.
  const std::vector<std::string> costs = {"100", "-5", "7"};
  for (std::size_t i = 0; i < 3; ++i)
    c.patch("/api/v1/namespaces/default/pods/" + str(pods[i].at("metadata").at("name")),
            R"({"metadata":{"annotations":{"controller.kubernetes.io/pod-deletion-cost":")" +
                costs[i] + R"("}}})",
            "application/merge-patch+json");
  c.patch(kDeploy + "/web/scale", R"({"spec":{"replicas":2}})", "application/merge-patch+json");
  ASSERT_TRUE(waitFor([&] { return podsOf(api, "app=web").size() == 2; }));
  auto names = [&] {
    std::set<std::string> n;
    for (const auto& p : podsOf(api, "app=web")) n.insert(str(p.at("metadata").at("name")));
    return n;
  };
  EXPECT_EQ(names(), (std::set<std::string>{str(pods[0].at("metadata").at("name")),
                                            str(pods[2].at("metadata").at("name"))}));
  c.patch(kDeploy + "/web/scale", R"({"spec":{"replicas":1}})", "application/merge-patch+json");
  ASSERT_TRUE(waitFor([&] { return podsOf(api, "app=web").size() == 1; }));
  EXPECT_EQ(names(), (std::set<std::string>{str(pods[0].at("metadata").at("name"))}));
  // A not-ready pod goes before a ready one even when it costs more.
  c.patch(kDeploy + "/web/scale", R"({"spec":{"replicas":2}})", "application/merge-patch+json");
  ASSERT_TRUE(waitFor(
      [&] { return podsOf(api, "app=web").size() == 2 && readyPods(api, "app=web") == 2; }));
  cluster.setProbeOverride("default", str(pods[0].at("metadata").at("name")), false);
  ASSERT_TRUE(waitFor([&] { return readyPods(api, "app=web") == 1; }));
  c.patch(kDeploy + "/web/scale", R"({"spec":{"replicas":1}})", "application/merge-patch+json");
  ASSERT_TRUE(waitFor([&] { return podsOf(api, "app=web").size() == 1; }));
  EXPECT_EQ(names().count(str(pods[0].at("metadata").at("name"))), 0u);
}

TEST(KubeApi, TheSchedulerExplainsWhyAPodDoesNotFitAndTolerationsLetItIn) {
  ApiServer api;
  Cluster cluster(api, {.runtime = std::make_shared<FakeRuntime>()});
  ASSERT_TRUE(cluster.addNode("gpu-small", {{"gpu", "yes"}}, 2).ok());
  ASSERT_TRUE(cluster.addNode("cpu-a").ok());
  ASSERT_TRUE(cluster.addNode("cpu-b").ok());
  Client c{api};
  const std::string pods = "/api/v1/namespaces/default/pods";
  c.post(pods, parseObj(R"({"metadata":{"name":"big"},"spec":{"nodeSelector":{"gpu":"yes"},
      "containers":[{"name":"c","resources":{"limits":{"nvidia.com/gpu":"4"}}}]}})"));
  std::string message;
  ASSERT_TRUE(waitFor([&] {
    auto p = c.get(pods + "/big");
    for (const auto& cond : p["status"].as_object()["conditions"].is_array()
                                ? p["status"].at("conditions").as_array()
                                : bj::array())
      if (str(cond.at("type")) == "PodScheduled" && str(cond.at("reason")) == "Unschedulable")
        message = str(cond.at("message"));
    return !message.empty();
  }));
  EXPECT_EQ(message,
            "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) didn't match "
            "Pod's node affinity/selector.");
  // Taints: only a pod that tolerates them lands on a tainted node.
  ASSERT_TRUE(cluster
                  .addNode("tainted", {{"gpu", "yes"}}, 8,
                           bj::array{bj::object{
                               {"key", "dedicated"}, {"value", "llm"}, {"effect", "NoSchedule"}}})
                  .ok());
  c.post(pods, parseObj(R"({"metadata":{"name":"tolerant"},"spec":{"nodeSelector":{"gpu":"yes"},
      "tolerations":[{"key":"dedicated","operator":"Equal","value":"llm","effect":"NoSchedule"}],
      "containers":[{"name":"c","resources":{"limits":{"nvidia.com/gpu":"4"}}}]}})"));
  ASSERT_TRUE(waitFor(
      [&] { return str(c.get(pods + "/tolerant")["spec"].as_object()["nodeName"]) == "tainted"; }));
  ASSERT_TRUE(waitFor([&] {
    auto p = c.get(pods + "/big");
    for (const auto& cond : p["status"].at("conditions").as_array())
      if (str(cond.at("type")) == "PodScheduled")
        return str(cond.at("message")).find("1 node(s) had untolerated taint {dedicated: llm}") !=
               std::string::npos;
    return false;
  })) << bj::serialize(c.get(pods + "/big"));
}

TEST(KubeApi, ThePodLifecycleGracefulDeletionAndAProcessThatExits) {
  ApiServer api;
  auto runtime = std::make_shared<FakeRuntime>();
  Cluster cluster(api, {.runtime = runtime});
  ASSERT_TRUE(cluster.addNode("node-1").ok());
  Client c{api};
  const std::string pods = "/api/v1/namespaces/default/pods";
  WatchStream w(api, pods + "?watch=true");
  auto p =
      c.post(pods, parseObj(R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}})"));
  const auto uid = str(p["metadata"].at("uid"));
  ASSERT_TRUE(waitFor([&] { return podReady(c.get(pods + "/p")); }));
  // The process exits: not ready, a restart counted, started again, ready again.
  runtime->crash(uid);
  ASSERT_TRUE(waitFor([&] {
    auto q = c.get(pods + "/p");
    return q["status"].at("containerStatuses").at(0).at("restartCount").as_int64() == 1 &&
           podReady(q);
  }));
  // Graceful deletion: MODIFIED with a deletionTimestamp, the runtime stops it, then DELETED.
  c.del(pods + "/p");
  bool saw_terminating = false, saw_deleted = false;
  while (!saw_deleted) {
    auto e = w.next();
    if (e.empty()) break;
    const auto type = str(e["type"]);
    if (type == "MODIFIED" && e["object"].at("metadata").as_object().contains("deletionTimestamp"))
      saw_terminating = true;
    if (type == "DELETED") saw_deleted = true;
  }
  EXPECT_TRUE(saw_terminating);
  EXPECT_TRUE(saw_deleted);
  EXPECT_EQ(runtime->stopped().back(), uid);
  EXPECT_TRUE(cluster.podIp("default", "p").empty()) << "the IP is free again";
}

TEST(KubeApi, TheNodeAutoscalerAddsANodeForAPendingPodAndRemovesItWhenIdle) {
  ApiServer api;
  NodeGroup g;
  g.name = "gpu";
  g.labels = {{"alibabacloud.com/nodepool-id", "np-gpu"}};
  g.gpus = 4;
  g.max = 2;
  g.provisioning_delay_s = 0.3;
  g.scale_down_unneeded_s = 0.5;
  Cluster cluster(api, {.runtime = std::make_shared<FakeRuntime>(), .node_groups = {g}});
  ASSERT_TRUE(cluster.addNode("cpu-1").ok());
  Client c{api};
  WatchStream nodes(
      api, "/api/v1/nodes?watch=true&resourceVersion=" + std::to_string(api.resourceVersion()));
  auto d = deployment("llm", 1);
  auto& spec = d["spec"].as_object()["template"].as_object()["spec"].as_object();
  spec["nodeSelector"] = bj::object{{"alibabacloud.com/nodepool-id", "np-gpu"}};
  spec["containers"].as_array()[0].as_object()["resources"] =
      bj::object{{"limits", bj::object{{"nvidia.com/gpu", 2}}}};
  c.post(kDeploy, d);
  // A node of the group appears NotReady, then becomes Ready; the pod runs there.
  auto added = nodes.next(10s);
  ASSERT_EQ(str(added["type"]), "ADDED");
  const auto node = str(added["object"].at("metadata").at("name"));
  EXPECT_EQ(node.rfind("gpu-", 0), 0u);
  EXPECT_EQ(str(added["object"].at("metadata").at("labels").at("alibabacloud.com/nodepool-id")),
            "np-gpu");
  EXPECT_EQ(str(added["object"].at("status").at("allocatable").at("nvidia.com/gpu")), "4");
  EXPECT_FALSE(podReady(added["object"].as_object())) << "NotReady first";
  ASSERT_TRUE(waitFor([&] { return readyReplicas(api, "llm") == 1; }));
  EXPECT_EQ(str(podsOf(api, "app=llm").at(0).at("spec").at("nodeName")), node);
  EXPECT_EQ(api.list("v1", "nodes")->size(), 2u) << "one pod, one node: no more";
  // Idle: removed after the unneeded time.
  c.patch(kDeploy + "/llm/scale", R"({"spec":{"replicas":0}})", "application/merge-patch+json");
  bool removed = false;
  for (auto e = nodes.next(10s); !e.empty(); e = nodes.next(10s))
    if (str(e["type"]) == "DELETED" && str(e["object"].at("metadata").at("name")) == node) {
      removed = true;
      break;
    }
  EXPECT_TRUE(removed);
  EXPECT_EQ(api.list("v1", "nodes")->size(), 1u) << "the static node stays";
}

}  // namespace
}  // namespace tidegate::testing::kube

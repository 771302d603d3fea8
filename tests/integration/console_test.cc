// Integration tests of the live console (/ui on the admin address) in a real browser: Debian's
// Chromium, headless, loads the page from a real `tidegate serve` (with its controller and real
// `tidegate engine` replicas) and the tests read what the page rendered (the DOM after its
// scripts ran). Skipped when Chromium is not installed (scripts/deps.sh installs it; CI has it).
//
// Each look is a fresh page load: `--virtual-time-budget` lets the page run its polling loop a
// few times (virtual time waits for pending fetches), then Chromium prints the DOM. Changes the
// system goes through in real time (a wave of requests) are seen by looking again, inside
// generous eventually() waits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <regex>

#include "support/configs.h"
#include "support/process.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

constexpr const char* kToken = "console-test-token";

std::string chromiumPath() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

#define REQUIRE_CHROMIUM()                                                                     \
  if (chromiumPath().empty())                                                                  \
  GTEST_SKIP() << "Chromium is not installed (apt-get install chromium; scripts/deps.sh does " \
                  "it): skipping the console's browser test"

// Chromium in its own throw-away profile, so looks never share storage or lock each other out.
std::vector<std::string> chromiumArgs(const std::string& profile) {
  return {chromiumPath(),
          "--headless=new",
          "--no-sandbox",
          "--disable-gpu",
          "--log-level=3",
          "--no-first-run",
          "--user-data-dir=" + profile};
}

std::string profileDir() {
  static int n = 0;
  return "/tmp/tidegate-console-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

// The DOM of `url` after the page ran for `budget_ms` of virtual time.
std::string look(const std::string& url, int budget_ms = 3000) {
  const std::string profile = profileDir();
  auto argv = chromiumArgs(profile);
  argv.insert(argv.end(),
              {"--virtual-time-budget=" + std::to_string(budget_ms), "--dump-dom", url});
  ChildProcess browser(argv);
  std::string dom = browser.readAll(90s);
  browser.wait(30s);
  std::filesystem::remove_all(profile);
  return dom;
}

// A PNG of the page at `url` (for docs/img/console.png).
void screenshot(const std::string& url, const std::string& path) {
  const std::string profile = profileDir();
  auto argv = chromiumArgs(profile);
  argv.insert(argv.end(), {"--virtual-time-budget=3000", "--hide-scrollbars",
                           "--window-size=1400,1080", "--screenshot=" + path, url});
  ChildProcess browser(argv);
  browser.readAll(90s);
  browser.wait(30s);
  std::filesystem::remove_all(profile);
}

std::string consoleUrl(const Serve& s, const std::string& token = kToken) {
  std::string url = "http://127.0.0.1:" + std::to_string(s.admin_port) + "/ui";
  if (!token.empty()) url += "#token=" + token;
  return url;
}

// An attribute of the page's <body> (its state and update count; the stylesheet before it
// names the same attributes in selectors).
std::string bodyAttr(const std::string& dom, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex("<body[^>]* " + name + "=\"([^\"]*)\""))) return "";
  return m[1];
}

// The status line's text (the script holds the same words as literals: look at the element).
std::string status(const std::string& dom) {
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex("<span id=\"status\">([^<]*)</span>"))) return "";
  return m[1];
}

// What the services table shows for one service on one node pool; -1 where there is no row.
struct Row {
  int ready = -1, starting = -1, waiting = -1, draining = -1;
};
Row replicaRow(const std::string& dom, const std::string& service, const std::string& pool) {
  std::smatch m;
  const std::regex re("data-service=\"" + service + "\" data-pool=\"" + pool +
                      "\" data-ready=\"(\\d+)\" data-starting=\"(\\d+)\" data-waiting=\"(\\d+)\" "
                      "data-draining=\"(\\d+)\"");
  if (!std::regex_search(dom, m, re)) return {};
  return {std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]), std::stoi(m[4])};
}

const std::string kHybrid = hybridConfig(", auth: {adminToken: console-test-token}");

// The page is served without the token because it holds no data; the data need the token.
TEST(Console, ThePageHoldsNoDataAndTheStateNeedsTheToken) {
  Serve gw(kHybrid);
  const auto page = gw.request("GET", "/ui", {}, {}, true);
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.header("content-type").find("text/html"), std::string::npos);
  const std::string csp(page.header("content-security-policy"));
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'sha256-"), std::string::npos) << csp;
  // Self-contained: nothing loaded from anywhere.
  for (const char* ref : {"http://", "https://", " src=", "@import"})
    EXPECT_EQ(page.body.find(ref), std::string::npos) << ref;
  for (const char* data : {"qwen-pool", "qwen-chat", kToken})
    EXPECT_EQ(page.body.find(data), std::string::npos) << data;
  EXPECT_EQ(gw.request("GET", "/admin/state", {}, {}, true).status, 401);
  EXPECT_EQ(gw.request("GET", "/admin/charts/requests.svg", {}, {}, true).status, 401);
  const http::Headers auth{{"Authorization", std::string("Bearer ") + kToken}};
  const auto svg = gw.request("GET", "/admin/charts/requests.svg", {}, auth, true);
  EXPECT_EQ(svg.status, 200);
  EXPECT_EQ(svg.body.rfind("<svg", 0), 0u) << svg.body.substr(0, 200);
  EXPECT_EQ(gw.request("GET", "/admin/charts/nope.svg", {}, auth, true).status, 404);
}

TEST(Console, AsksForTheTokenAndShowsNothingWithoutIt) {
  REQUIRE_CHROMIUM();
  Serve gw(kHybrid);
  for (const std::string token : {"", "wrong-token"}) {
    const std::string dom = look(consoleUrl(gw, token));
    EXPECT_EQ(bodyAttr(dom, "data-state"), "needs-token") << token << "\n" << dom;
    EXPECT_EQ(status(dom), token.empty() ? "needs the admin token" : "the admin token was refused")
        << dom;
    EXPECT_EQ(dom.find("data-service="), std::string::npos) << dom;
    EXPECT_EQ(dom.find("data-inference-pool="), std::string::npos) << dom;
  }
}

// The page during a wave: the owned replica first, cloud replicas while the wave lasts (with the
// scaling decisions that asked for them), back to the owned one after it.
TEST(Console, ShowsReplicasFollowAWave) {
  REQUIRE_CHROMIUM();
  Serve gw(kHybrid);
  const std::string url = consoleUrl(gw);
  std::string dom;
  ASSERT_TRUE(eventually(
      [&] {
        dom = look(url);
        return replicaRow(dom, "qwen-chat", "edge").ready == 1;
      },
      60s))
      << dom;
  EXPECT_EQ(bodyAttr(dom, "data-state"), "live") << dom;
  EXPECT_EQ(status(dom).rfind("live · updated ", 0), 0u) << dom;
  // It polls by itself: the page re-rendered within its few seconds of (virtual) time.
  EXPECT_GE(std::atoi(bodyAttr(dom, "data-updates").c_str()), 2) << dom;
  EXPECT_EQ(replicaRow(dom, "qwen-chat", "cloud").ready, 0) << dom;
  EXPECT_NE(dom.find("data-inference-pool=\"qwen-pool\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("data-node-pool=\"edge\" data-nodes=\"1\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("data-node-pool=\"cloud\" data-nodes=\"0\""), std::string::npos) << dom;
  // The endpoint the owned replica serves on, with its in-flight count.
  const auto state =
      bj::parse(gw.request("GET", "/admin/state", {},
                           {{"Authorization", std::string("Bearer ") + kToken}}, true)
                    .body);
  const std::string address(
      state.at("pools").as_array()[0].at("endpoints").as_array()[0].at("address").as_string());
  EXPECT_NE(dom.find("data-endpoint=\"" + address + "\" data-inflight=\"0\""), std::string::npos)
      << dom;

  // The wave: more than the owned replica can serve, so the controller bursts into the cloud;
  // long enough to be seen between looks of a few seconds each on a busy machine.
  ChildProcess load(
      {binaryPath(), "bench", "--url", "http://127.0.0.1:" + std::to_string(gw.port), "--model",
       "qwen", "-c", "24", "-z", "20s", "--max-tokens", "30", "--progress", "off", "-q"},
      true);
  ASSERT_TRUE(eventually(
      [&] {
        dom = look(url);
        return replicaRow(dom, "qwen-chat", "cloud").ready >= 1;
      },
      60s))
      << dom;
  EXPECT_EQ(replicaRow(dom, "qwen-chat", "edge").ready, 1) << dom;
  // Why: the autoscaler's decision, with its metric, and the nodes it provisioned.
  EXPECT_NE(dom.find("data-event=\"scale\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("vllm:num_requests_waiting average"), std::string::npos) << dom;
  EXPECT_TRUE(std::regex_search(dom, std::regex("provision [12] node\\(s\\) in cloud"))) << dom;
  // Traffic: both charts drawn from the gateway's history, with the requests of the wave.
  EXPECT_NE(dom.find("Requests per second"), std::string::npos) << dom;
  EXPECT_NE(dom.find("Time to first token"), std::string::npos) << dom;
  std::smatch rate;
  ASSERT_TRUE(std::regex_search(dom, rate, std::regex("s: ([0-9.]+) requests/s"))) << dom;
  EXPECT_GT(std::stod(rate[1]), 0) << dom;
  if (const char* path = std::getenv("TIDEGATE_CONSOLE_SCREENSHOT")) screenshot(url, path);

  ASSERT_GE(load.wait(60s), 0);
  // After the wave: the cloud replicas drain and go, the owned one stays, and what the cloud
  // nodes cost stays counted.
  ASSERT_TRUE(eventually(
      [&] {
        dom = look(url);
        const Row cloud = replicaRow(dom, "qwen-chat", "cloud");
        return cloud.ready == 0 && cloud.draining == 0 &&
               replicaRow(dom, "qwen-chat", "edge").ready == 1;
      },
      90s))
      << dom;
  EXPECT_NE(dom.find("data-event=\"scale\" data-direction=\"down\""), std::string::npos) << dom;
  // The cloud nodes cost while they ran; the total counts every pool.
  std::smatch cost;
  ASSERT_TRUE(std::regex_search(
      dom, cost,
      std::regex("data-node-pool=\"cloud\" data-nodes=\"\\d+\" data-cost=\"([0-9.e-]+)\"")))
      << dom;
  EXPECT_GT(std::stod(cost[1]), 0) << dom;
  ASSERT_TRUE(std::regex_search(dom, cost, std::regex("id=\"cost-total\">([0-9.]+)<"))) << dom;
  EXPECT_GT(std::stod(cost[1]), 0) << dom;
}

}  // namespace
}  // namespace tidegate::testing

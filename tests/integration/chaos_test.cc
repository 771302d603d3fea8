// The chaos suite: a real `tidegate serve` in front of real `tidegate engine` processes, loaded by
// real `tidegate bench` processes, while things are broken on purpose — an engine killed (-9)
// mid-stream and mid-body, an engine frozen (SIGSTOP), an engine answering garbage, clients that
// trickle their request (slowloris) or never read their answer, SIGHUP every 100 ms alternating
// valid and invalid files, the gateway itself killed (-9) and restarted.
//
// Whatever breaks, each test asserts what must hold: the gateway still runs; no client waits
// forever (each bench ends, no request times out); every request gets a status, and every stream
// that began ends with [DONE] or an error event; in-flight counts (the gateway's per endpoint,
// the engines' running requests, open client connections) return to zero; and the usage ledger
// holds exactly one row per answered request, by status (after a kill -9: every row older than
// the flush interval).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "common/crypto.h"
#include "support/process.h"
#include "support/scripted_server.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string tempPath(const std::string& what) {
  static int n = 0;
  return "/tmp/tidegate-chaos-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + what;
}

// Removes a ledger database and its WAL files when the test ends.
struct TempLedger {
  std::string path = tempPath(".db");
  ~TempLedger() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }
};

// A gateway on 127.0.0.1 (`port`, 0: any) in front of the engines on `engines`, serving model
// `m` from pool `p`, with a ledger at `ledger` flushed every `flush`; `spec` adds Gateway spec
// lines and `docs` more documents.
std::string config(const std::string& ledger, const std::vector<std::uint16_t>& engines,
                   const std::string& spec = "", const std::string& docs = "",
                   std::uint16_t port = 0, const std::string& flush = "100ms") {
  std::string s =
      "apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n"
      "  listen: 127.0.0.1:" +
      std::to_string(port) +
      "\n  admin: 127.0.0.1:0\n"
      "  scrape: {interval: 20ms, staleAfter: 1s}\n"
      "  ledger: {path: " +
      ledger + ", flushInterval: " + flush + "}\n" + spec +
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
      "metadata: {name: p}\nspec: {targetPortNumber: 8000, selector: {app: x}}\n"
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
      "metadata: {name: m}\nspec: {modelName: m, poolRef: {name: p}}\n"
      "---\napiVersion: tidegate.io/v1alpha1\nkind: Endpoints\n"
      "metadata: {name: e, labels: {app: x}}\nspec:\n  addresses:\n";
  for (auto p : engines) s += "  - 127.0.0.1:" + std::to_string(p) + "\n";
  return s + docs;
}

// The sum of every sample of `name` on the gateway's /metrics whose labels include `match`.
double total(const Serve& gw, const std::string& name, const prom::Labels& match = {}) {
  auto scrape = prom::parse(gw.admin("/metrics").body);
  if (!scrape) throw std::runtime_error("metrics do not parse: " + scrape.error().message);
  double sum = 0;
  for (const auto& s : scrape->samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : match) all = all && s.label(k) == v;
    if (all) sum += s.value;
  }
  return sum;
}

// tidegate_requests_total by status.
std::map<int, long> answeredByStatus(const Serve& gw) {
  auto scrape = prom::parse(gw.admin("/metrics").body);
  if (!scrape) throw std::runtime_error("metrics do not parse: " + scrape.error().message);
  std::map<int, long> out;
  for (const auto& s : scrape->samples)
    if (s.name == "tidegate_requests_total" && s.value > 0)
      out[std::stoi(std::string(s.label("status")))] += static_cast<long>(s.value);
  return out;
}

bool waitUp(const Serve& gw, int endpoints) {
  return eventually([&] { return total(gw, "tidegate_endpoint_up") == endpoints; });
}

// The ledger's usage rows by status (empty if the database cannot be read).
std::map<int, long> ledgerByStatus(const std::string& path) {
  std::map<int, long> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT status, COUNT(*) FROM usage GROUP BY status", -1, &st,
                           nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW)
        out[sqlite3_column_int(st, 0)] = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

long ledgerRows(const std::string& path) {
  long n = 0;
  for (const auto& [status, rows] : ledgerByStatus(path)) n += rows;
  return n;
}

std::string show(const std::map<int, long>& m) {
  std::string s = "{";
  for (const auto& [k, v] : m) s += " " + std::to_string(k) + ": " + std::to_string(v);
  return s + " }";
}

// What the clients of one bench run got, request by request (from its --csv).
struct Outcomes {
  std::size_t sent = 0;
  std::size_t ok = 0;                        // a 200, and for a stream its [DONE]
  std::size_t error_events = 0;              // a 200 stream that ended with an error event
  std::map<std::string, std::size_t> other;  // anything else, by "STATUS ERROR"
  std::string output;                        // what the bench printed
};

// `tidegate bench` against the gateway on `port`, in its own process, asking for model `m`.
// Each request has a 20 s deadline: a request that times out is a client left waiting.
class Bench {
 public:
  Bench(std::uint16_t port, const std::vector<std::string>& args) {
    std::vector<std::string> argv{binaryPath(),
                                  "bench",
                                  "--url",
                                  "http://127.0.0.1:" + std::to_string(port),
                                  "--model",
                                  "m",
                                  "--prompt-tokens",
                                  "16",
                                  "--timeout",
                                  "20s",
                                  "--progress",
                                  "off",
                                  "--quiet",
                                  "--csv",
                                  csv_};
    argv.insert(argv.end(), args.begin(), args.end());
    proc_ = std::make_unique<ChildProcess>(argv, /*capture_stderr=*/true);
  }
  ~Bench() { std::remove(csv_.c_str()); }

  // Waits for the run to end and reads what every request got. A bench still running after a
  // minute fails the test: some client was left waiting.
  Outcomes finish() {
    Outcomes o;
    o.output = proc_->readAll(60s);
    const int st = proc_->wait(5s);
    EXPECT_EQ(st, 0) << "bench did not end cleanly: " << o.output;
    std::ifstream in(csv_);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      // index,scheduled_s,sent_s,ttft_s,e2e_s,itl_mean_s,prompt_tokens,output_tokens,status,
      // error,"model"
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string field; f.size() < 10 && std::getline(ss, field, ',');) f.push_back(field);
      if (f.size() < 10) {
        ADD_FAILURE() << "bad CSV line: " << line;
        continue;
      }
      ++o.sent;
      const std::string& status = f[8];
      const std::string& error = f[9];
      if (status == "200" && error.empty()) {
        ++o.ok;
      } else if (status == "200" && error == "stream_error") {
        ++o.error_events;
      } else {
        ++o.other[status + " " + error];
      }
    }
    return o;
  }

 private:
  std::string csv_ = tempPath(".csv");
  std::unique_ptr<ChildProcess> proc_;
};

std::string show(const std::map<std::string, std::size_t>& m) {
  std::string s = "{";
  for (const auto& [k, v] : m) s += " \"" + k + "\": " + std::to_string(v);
  return s + " }";
}

// Every request got a complete answer or a stream that ended with an error event.
void expectEveryClientAnswered(const Outcomes& o) {
  EXPECT_GT(o.sent, 0u) << o.output;
  EXPECT_EQ(o.ok + o.error_events, o.sent) << "other outcomes: " << show(o.other);
}

// What must hold once the load has ended, whatever was broken: the gateway runs, nothing is in
// flight at any endpoint (the gateway's count and each engine's), no client connection is left
// open, and the gateway's answers and the ledger's rows are `answered`, status by status.
void expectSettled(const Serve& gw, const std::string& ledger, const std::map<int, long>& answered,
                   const std::vector<const Engine*>& engines = {}) {
  EXPECT_TRUE(gw.proc->running());
  EXPECT_TRUE(eventually([&] { return total(gw, "tidegate_endpoint_inflight") == 0; }))
      << "in flight: " << total(gw, "tidegate_endpoint_inflight");
  EXPECT_TRUE(eventually([&] { return total(gw, "tidegate_client_connections") == 0; }))
      << "client connections: " << total(gw, "tidegate_client_connections");
  for (const auto* e : engines)
    EXPECT_TRUE(eventually([&] {
      return e->metric("vllm:num_requests_running") == 0 &&
             e->metric("vllm:num_requests_waiting") == 0;
    })) << "engine on port "
        << e->port << " still runs " << e->metric("vllm:num_requests_running");
  std::map<int, long> expected;
  for (const auto& [status, n] : answered)
    if (n > 0) expected[status] = n;
  EXPECT_EQ(show(answeredByStatus(gw)), show(expected));
  EXPECT_TRUE(eventually([&] { return ledgerByStatus(ledger) == expected; }))
      << "ledger " << show(ledgerByStatus(ledger)) << ", answered " << show(expected);
}

// --- Engines that die, hang or answer garbage -------------------------------------------------

// The engines of the tests that break one: 30 tokens take about half a second at half the A10's
// pace, so a request the victim holds is mid-way (an engine sends a stream's head as soon as it
// admits it). The survivor runs 3 sequences at a time: its queue grows and the picker prefers
// the victim, which soon runs 7 of the 12 requests two benches of 6 keep in flight — so at
// least one stream and one whole body.
const std::vector<std::string> kVictim{"--served-model-name", "m", "--time-scale", "2"};
const std::vector<std::string> kSurvivor{"--served-model-name", "m", "--time-scale", "2",
                                         "--max-num-seqs",      "3"};

bool holdsBothKinds(const Engine& victim) {
  return eventually([&] { return victim.metric("vllm:num_requests_running") >= 7; });
}

TEST(Chaos, EngineKilledMidStreamAndMidBody) {
  auto doomed = std::make_unique<Engine>(kVictim);
  Engine survivor(kSurvivor);
  TempLedger db;
  Serve gw(config(db.path, {doomed->port, survivor.port}));
  ASSERT_TRUE(waitUp(gw, 2));
  Bench streams(gw.port, {"-c", "6", "-z", "3s", "--max-tokens", "30"});
  Bench bodies(gw.port, {"-c", "6", "-z", "3s", "--max-tokens", "30", "--no-stream"});
  ASSERT_TRUE(holdsBothKinds(*doomed));
  doomed->proc.stop(SIGKILL);
  const auto s = streams.finish(), b = bodies.finish();
  expectEveryClientAnswered(s);
  expectEveryClientAnswered(b);
  // Streams cut mid-way end with an error event; everything that had not reached its client —
  // whole bodies, streams before their first byte — was retried on the survivor.
  EXPECT_GE(s.error_events, 1u);
  EXPECT_EQ(b.ok, b.sent);
  EXPECT_GE(total(gw, "tidegate_upstream_retries_total"), 1);
  expectSettled(gw, db.path,
                {{200, static_cast<long>(s.ok + b.ok)}, {502, static_cast<long>(s.error_events)}},
                {&survivor});
}

TEST(Chaos, EngineThatHangsIsTimedOutAndItsRequestsRetriedOrEnded) {
  Engine frozen(kVictim), survivor(kSurvivor);
  TempLedger db;
  // A stream that stops is given up after 1 s; a request without a first byte after 5 s (the
  // survivor's queue, once it serves everything, can hold a whole body back for more than 1 s).
  Serve gw(config(db.path, {frozen.port, survivor.port},
                  "  timeouts: {connect: 1s, firstByte: 5s, idle: 1s, total: 30s}\n"));
  ASSERT_TRUE(waitUp(gw, 2));
  Bench streams(gw.port, {"-c", "6", "-z", "3s", "--max-tokens", "30"});
  Bench bodies(gw.port, {"-c", "6", "-z", "3s", "--max-tokens", "30", "--no-stream"});
  ASSERT_TRUE(holdsBothKinds(frozen));
  // SIGSTOP: the process still holds its sockets (the kernel accepts connections for it) but
  // never answers — the hang of a wedged engine.
  ::kill(frozen.proc.pid(), SIGSTOP);
  struct Thaw {
    pid_t pid;
    ~Thaw() { ::kill(pid, SIGCONT); }
  } thaw{frozen.proc.pid()};
  EXPECT_TRUE(eventually([&] { return total(gw, "tidegate_endpoint_up") == 1; }));
  const auto s = streams.finish(), b = bodies.finish();
  expectEveryClientAnswered(s);
  expectEveryClientAnswered(b);
  EXPECT_GE(s.error_events, 1u);  // streams stalled mid-way: ended by the idle timeout
  EXPECT_EQ(b.ok, b.sent);        // bodies and unstarted streams: retried on the survivor
  EXPECT_GE(total(gw, "tidegate_upstream_errors_total", {{"kind", "timeout"}}), 1);
  // Thawed, the engine is back in the pool, and the requests the gateway gave up on there are
  // cancelled (the gateway closed their connections).
  ::kill(frozen.proc.pid(), SIGCONT);
  EXPECT_TRUE(waitUp(gw, 2));
  expectSettled(gw, db.path,
                {{200, static_cast<long>(s.ok + b.ok)}, {502, static_cast<long>(s.error_events)}},
                {&frozen, &survivor});
}

std::string http200(const std::string& type, const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

std::string chunk(const std::string& data) {
  std::ostringstream o;
  o << std::hex << data.size() << "\r\n" << data << "\r\n";
  return o.str();
}

// Generation answers no client may get as a response. The stream kinds start well (200,
// text/event-stream) and break after: their clients must get an error event.
std::vector<std::string> garbageAnswers() {
  const std::string sse =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n";
  std::string noise;
  for (int i = 0; i < 512; ++i) noise += static_cast<char>((i * 131 + 7) & 0xff);
  return {
      // A stream cut short after a token and an event that is not JSON.
      sse +
          chunk(R"(data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,)"
                R"("delta":{"content":"hi"}}]})"
                "\n\n") +
          chunk("data: {\"choices\":[{\"delta\":\x01\xff\n\n"),
      // Not JSON.
      http200("application/json", "hello, I am not JSON"),
      // A stream whose chunked framing is broken.
      sse + "zz-not-a-chunk-size\r\ndata: {}\r\n",
      // Not HTTP.
      "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
      // A stream with one event over the gateway's limit (maxEventBytes: 4096).
      sse + chunk("data: {\"x\":\"" + std::string(8192, 'x') + "\"}\n\n"),
      // A body cut short of its Content-Length.
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n"
      "Connection: close\r\n\r\n{\"id\":\"cmpl-1\",\"choi",
      // Bytes.
      noise,
      // JSON, but not the object an answer is.
      http200("application/json", "[1,2,3]"),
      // A well-formed answer over the gateway's limit (maxResponseBytes: 4096): relayed, it would
      // count as a success here, so the test sees a limit that is not applied.
      http200("application/json",
              R"({"id":"cmpl-2","object":"text_completion","model":"m","choices":[{"index":0,)"
              R"("text":")" +
                  std::string(8192, 'y') +
                  R"(","finish_reason":"length"}],"usage":{"prompt_tokens":1,)"
                  R"("completion_tokens":8,"total_tokens":9}})"),
      // A stream that ends cleanly after a token, without its [DONE]: cut short all the same.
      sse +
          chunk(R"(data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,)"
                R"("delta":{"content":"hi"}}]})"
                "\n\n") +
          "0\r\n\r\n",
      // Headers that never end, far over any limit.
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Huge: " + std::string(100000, 'h'),
  };
}

// The garbage engine's answer to `target`: well-formed metrics and model list (so the gateway
// finds it ready, serving `m`, with an empty queue), garbage for the rest, each generation path
// going through every kind in turn.
std::string garbageEngine(const std::string& target, std::atomic<int>& chat,
                          std::atomic<int>& completions) {
  if (target == "/metrics")
    return http200("text/plain; version=0.0.4",
                   "# TYPE vllm:num_requests_running gauge\n"
                   "vllm:num_requests_running{model_name=\"m\"} 0\n"
                   "# TYPE vllm:num_requests_waiting gauge\n"
                   "vllm:num_requests_waiting{model_name=\"m\"} 0\n"
                   "# TYPE vllm:kv_cache_usage_perc gauge\n"
                   "vllm:kv_cache_usage_perc{model_name=\"m\"} 0\n");
  if (target == "/v1/models")
    return http200("application/json",
                   R"({"object":"list","data":[{"id":"m","object":"model","owned_by":"x"}]})");
  static const std::vector<std::string> answers = garbageAnswers();
  auto& n = target == "/v1/chat/completions" ? chat : completions;
  return answers[static_cast<std::size_t>(n++) % answers.size()];
}

TEST(Chaos, EngineThatAnswersGarbageIsNeverRelayedAsAnAnswer) {
  // The good engine takes a little while (8 tokens at a tenth of the A10's pace); the garbage
  // engine answers at once. With fewer requests in flight there, the picker sends it nearly
  // every first attempt.
  Engine good({"--served-model-name", "m", "--time-scale", "10"});
  std::atomic<int> chat{0}, completions{0};
  ScriptedServer garbage(
      [](int, int) { return ScriptedServer::Action::kRaw; },
      [&](const std::string& target) { return garbageEngine(target, chat, completions); });
  TempLedger db;
  Serve gw(config(db.path, {good.port, garbage.port()},
                  "  limits: {maxEventBytes: 4096, maxResponseBytes: 4096}\n"));
  ASSERT_TRUE(waitUp(gw, 2));
  // Streams on the chat path, whole bodies on the completions path: each path meets every kind
  // of garbage in turn.
  Bench streams(gw.port, {"-c", "4", "-n", "90", "--max-tokens", "8"});
  Bench bodies(gw.port, {"-c", "4", "-n", "90", "--max-tokens", "8", "--no-stream", "--endpoint",
                         "completions"});
  const auto s = streams.finish(), b = bodies.finish();
  expectEveryClientAnswered(s);
  expectEveryClientAnswered(b);
  // Every kind met at least once on each path.
  EXPECT_GE(chat.load(), static_cast<int>(garbageAnswers().size()));
  EXPECT_GE(completions.load(), static_cast<int>(garbageAnswers().size()));
  // Garbage before the first byte reached the client is retried on the good engine; a stream
  // the garbage engine began ends with an error event. Each garbage answer is one upstream error.
  EXPECT_EQ(b.ok, b.sent);
  EXPECT_GE(s.error_events, 1u);
  EXPECT_EQ(total(gw, "tidegate_upstream_errors_total"), chat + completions);
  expectSettled(gw, db.path,
                {{200, static_cast<long>(s.ok + b.ok)}, {502, static_cast<long>(s.error_events)}},
                {&good});
}

// A busy engine can answer /metrics late. One late scrape must not take a replica that serves
// out of rotation; three in a row do, as a readiness probe's failureThreshold does, and it comes
// back when it answers again.
TEST(Chaos, EngineSlowToAnswerItsMetricsStaysInRotationUntilThreeScrapesFail) {
  std::atomic<bool> slow{false};
  ScriptedServer engine(
      [](int, int) { return ScriptedServer::Action::kRaw; },
      [&](const std::string& target) {
        if (target == "/metrics")
          for (int i = 0; slow && i < 2000; ++i) std::this_thread::sleep_for(10ms);
        if (target == "/v1/completions")
          return http200("application/json",
                         R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"m",)"
                         R"("choices":[{"index":0,"text":"hi","finish_reason":"stop"}],)"
                         R"("usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})");
        std::atomic<int> unused{0};
        return garbageEngine(target, unused, unused);  // metrics and the model list
      });
  TempLedger db;
  // staleAfter 4s: each scrape may take 1 s, so three failures take at least 3 s.
  std::string yaml = config(db.path, {engine.port()});
  yaml.replace(yaml.find("staleAfter: 1s"), 14, "staleAfter: 4s");
  Serve gw(yaml);
  ASSERT_TRUE(waitUp(gw, 1));
  const auto endpoint = [&] {
    return boost::json::parse(gw.admin("/admin/state").body)
        .at("pools")
        .at(0)
        .at("endpoints")
        .at(0)
        .as_object();
  };
  const std::string request = R"({"model":"m","prompt":"hi","max_tokens":1})";
  slow = true;
  ASSERT_TRUE(eventually([&] { return endpoint().at("scrape_failures").as_int64() >= 1; }));
  EXPECT_TRUE(endpoint().at("ready").as_bool());
  EXPECT_EQ(gw.post("/v1/completions", request).status, 200u);
  // Still late: down after the third failure, and requests are refused for want of a replica.
  EXPECT_TRUE(eventually([&] { return total(gw, "tidegate_endpoint_up") == 0; }));
  EXPECT_GE(endpoint().at("scrape_failures").as_int64(), 3);
  EXPECT_EQ(gw.post("/v1/completions", request).status, 503u);
  slow = false;
  EXPECT_TRUE(waitUp(gw, 1));
  EXPECT_EQ(gw.post("/v1/completions", request).status, 200u);
}

// --- Clients that misbehave -------------------------------------------------------------------

int connectTo(std::uint16_t port, int rcvbuf = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// A slowloris client: sends the start of a request, then one byte at a time (trickle()), never
// finishing it — either its headers never end, or its body stays far short of its
// Content-Length.
class Slowloris {
 public:
  Slowloris(std::uint16_t port, bool in_body) : fd_(connectTo(port)), in_body_(in_body) {
    const std::string head =
        in_body ? "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"model\":\"m\""
                : "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-Slow: ";
    EXPECT_EQ(::send(fd_, head.data(), head.size(), MSG_NOSIGNAL), ssize_t(head.size()));
  }
  ~Slowloris() { ::close(fd_); }
  Slowloris(const Slowloris&) = delete;
  Slowloris& operator=(const Slowloris&) = delete;

  // Sends one more byte. Returns false once the gateway has closed the connection. Called from
  // one thread; closed() from any.
  bool trickle() {
    if (closed_) return false;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT)) > 0)
      answer_.append(buf, static_cast<std::size_t>(n));
    const bool gone = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    const char c = in_body_ ? ' ' : 'a';
    if (gone || (::send(fd_, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)) {
      closed_ = true;
      return false;
    }
    return true;
  }
  bool closed() const { return closed_; }
  const std::string& answer() const { return answer_; }

 private:
  int fd_;
  bool in_body_;
  std::atomic<bool> closed_{false};
  std::string answer_;  // whatever the gateway sent before closing
};

TEST(Chaos, SlowlorisClientsAreCutOffWhileOthersAreServed) {
  Engine engine({"--served-model-name", "m", "--time-scale", "inf"});
  TempLedger db;
  Serve gw(config(db.path, {engine.port}, "  timeouts: {idle: 1s}\n"));
  ASSERT_TRUE(waitUp(gw, 1));
  std::vector<std::unique_ptr<Slowloris>> slow;
  for (int i = 0; i < 32; ++i) slow.push_back(std::make_unique<Slowloris>(gw.port, i % 2 == 1));
  ASSERT_TRUE(eventually([&] { return total(gw, "tidegate_client_connections") == 32; }));
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    while (!stop) {
      for (auto& s : slow) s->trickle();
      std::this_thread::sleep_for(20ms);
    }
  });
  Bench bench(gw.port, {"-c", "8", "-z", "2s", "--max-tokens", "8"});
  const auto r = bench.finish();
  expectEveryClientAnswered(r);
  EXPECT_EQ(r.ok, r.sent);
  // However slowly they keep sending, the gateway closes them: a request that has not arrived
  // within the idle timeout never will.
  EXPECT_TRUE(eventually(
      [&] {
        for (const auto& s : slow)
          if (!s->closed()) return false;
        return true;
      },
      20s));
  stop = true;
  trickler.join();
  for (const auto& s : slow) EXPECT_EQ(s->answer(), "");  // no request, no answer
  slow.clear();
  expectSettled(gw, db.path, {{200, static_cast<long>(r.ok)}}, {&engine});
}

TEST(Chaos, ClientsThatNeverReadLoseTheirStreamsAndFreeTheEngine) {
  // The stalled streams have an engine of their own (model `s`, pool `q`): generating 150,000
  // tokens flat out until the gateway gives up, it has little time left for anything else.
  Engine engine({"--served-model-name", "m", "--time-scale", "inf"});
  Engine hog({"--served-model-name", "m", "--time-scale", "inf", "--max-model-len", "200000",
              "--kv-blocks", "20000"});
  TempLedger db;
  Serve gw(config(db.path, {engine.port}, "  timeouts: {idle: 1s}\n",
                  "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
                  "metadata: {name: q}\nspec: {targetPortNumber: 8000, selector: {app: y}}\n"
                  "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
                  "metadata: {name: s}\nspec: {modelName: s, poolRef: {name: q}, targetModels: "
                  "[{name: m}]}\n"
                  "---\napiVersion: tidegate.io/v1alpha1\nkind: Endpoints\n"
                  "metadata: {name: f, labels: {app: y}}\nspec: {addresses: [\"127.0.0.1:" +
                      std::to_string(hog.port) + "\"]}\n"));
  ASSERT_TRUE(waitUp(gw, 2));
  // Four clients ask for very long streams with a tiny receive buffer, and never read.
  const std::string body = R"({"model":"s","prompt":"x","max_tokens":150000,"stream":true})";
  const std::string request =
      "POST /v1/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<int> stalled;
  for (int i = 0; i < 4; ++i) {
    stalled.push_back(connectTo(gw.port, 4096));
    EXPECT_EQ(::send(stalled.back(), request.data(), request.size(), MSG_NOSIGNAL),
              ssize_t(request.size()));
  }
  Bench bench(gw.port, {"-c", "4", "-z", "2s", "--max-tokens", "16"});
  const auto r = bench.finish();
  expectEveryClientAnswered(r);
  EXPECT_EQ(r.ok, r.sent);
  // Each stalled stream is given up after the idle timeout (status 499), its engine request
  // cancelled.
  EXPECT_TRUE(eventually(
      [&] {
        return total(gw, "tidegate_requests_total", {{"status", "499"}}) == 4;
      },
      20s))
      << show(answeredByStatus(gw));
  for (int fd : stalled) ::close(fd);
  expectSettled(gw, db.path, {{200, static_cast<long>(r.ok)}, {499, 4}}, {&engine, &hog});
}

// --- Operators' mistakes and crashes ----------------------------------------------------------

std::string plan() {
  return "---\napiVersion: tidegate.io/v1alpha1\nkind: UsagePlan\nmetadata: {name: p}\n"
         "spec: {}\n";
}

std::string key(const std::string& name) {
  return "---\napiVersion: tidegate.io/v1alpha1\nkind: APIKey\nmetadata: {name: " + name +
         "}\nspec: {plan: p, sha256: " + crypto::sha256Hex("sk-" + name) + "}\n";
}

// The audit trail's rows by action.
std::map<std::string, long> auditByAction(const std::string& path) {
  std::map<std::string, long> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT action, COUNT(*) FROM audit GROUP BY action", -1, &st,
                           nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW)
        out[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] =
            sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

TEST(Chaos, SighupEvery100msWithValidAndInvalidFilesKeepsServing) {
  Engine engine({"--served-model-name", "m", "--time-scale", "inf"});
  TempLedger db;
  const std::string keys = plan() + key("k1") + key("k2") + key("k3");
  const std::string alias =
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
      "metadata: {name: alias}\nspec: {modelName: alias, poolRef: {name: p}, targetModels: "
      "[{name: m}]}\n";
  // Two valid files that differ (a second model name), and files a reload must refuse, each
  // for another reason.
  const std::string valid[2] = {config(db.path, {engine.port}, "", keys),
                                config(db.path, {engine.port}, "", keys + alias)};
  const std::string invalid[] = {
      "",                                                    // empty
      "# nothing here\n",                                    // no documents
      "kind: [unclosed\n",                                   // not YAML
      std::string("\x00\x01\xfe\xff garbage", 12),           // bytes
      config(db.path, {engine.port}, "  bogus: 1\n", keys),  // an unknown field
      config(db.path, {engine.port}, "", keys) +
          "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
          "metadata: {name: n}\nspec: {modelName: n, poolRef: {name: nope}}\n",  // no such pool
      config(db.path, {engine.port}, "", plan()),  // every key gone: auth would switch off
      config(db.path, {engine.port}, "", keys) + "---\nkind: Nonsense\n",  // an unknown kind
  };
  const std::size_t kinds = std::size(invalid);
  Serve gw(valid[0]);
  ASSERT_TRUE(waitUp(gw, 1));
  Bench bench(gw.port, {"-c", "4", "-z", "4s", "--max-tokens", "8", "--api-key", "sk-k1"});
  // 32 reloads, one every 100 ms (or as soon as the previous one is counted, if slower):
  // invalid, valid, invalid, ... ending valid.
  const int reloads = 32;
  const auto start = Clock::now();
  std::string last_valid;
  for (int i = 0; i < reloads; ++i) {
    std::this_thread::sleep_until(start + i * 100ms);
    const bool good = i % 2 == 1;
    const std::string& file = good ? valid[(i / 2) % 2] : invalid[(i / 2) % kinds];
    gw.rewrite(file);
    EXPECT_EQ(gw.reload(), good) << "reload " << i << ": " << file.substr(0, 200);
    if (good) last_valid = file;
  }
  const auto r = bench.finish();
  expectEveryClientAnswered(r);
  EXPECT_EQ(r.ok, r.sent);  // no refused file ever took effect: every request had its key honoured
  EXPECT_EQ(total(gw, "tidegate_config_reloads_total", {{"result", "applied"}}), reloads / 2);
  EXPECT_EQ(total(gw, "tidegate_config_reloads_total", {{"result", "refused"}}), reloads / 2);
  EXPECT_EQ(total(gw, "tidegate_config_last_reload_successful"), 1);
  const auto state = bj::parse(gw.admin("/admin/state").body);
  EXPECT_EQ(state.at("configuration").at("sha256").as_string(), crypto::sha256Hex(last_valid));
  EXPECT_EQ(auditByAction(db.path), (std::map<std::string, long>{{"config.refused", reloads / 2},
                                                                 {"config.reload", reloads / 2}}));
  expectSettled(gw, db.path, {{200, static_cast<long>(r.ok)}}, {&engine});
}

// A free port below the kernel's ephemeral range. While the gateway is down the load keeps
// connecting to its port; were it an ephemeral port, one of those connections could be given it
// as its own and connect to itself (a TCP self-connect), taking the port from the restarted
// gateway.
std::uint16_t freePortBelowEphemeralRange() {
  int low = 32768, high = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = std::max(1024, low - 1 - static_cast<int>(rng() % 8000));
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (free) return static_cast<std::uint16_t>(port);
  }
  throw std::runtime_error("no free port below the ephemeral range");
}

TEST(Chaos, GatewayKilledAndRestartedLosesNoRecordOlderThanTheFlushInterval) {
  Engine engine({"--served-model-name", "m", "--time-scale", "inf"});
  TempLedger db;
  // A fixed port, so the load goes on against the restarted gateway.
  const auto port = freePortBelowEphemeralRange();
  const auto flush = 200ms;
  const std::string yaml = config(db.path, {engine.port}, "", "", port, "200ms");
  auto gw = std::make_unique<Serve>(yaml);
  ASSERT_TRUE(waitUp(*gw, 1));
  const int concurrency = 8;
  Bench bench(port, {"-c", std::to_string(concurrency), "-z", "4s", "--max-tokens", "4"});
  // How many requests the gateway had answered, over time: a request is counted by key just
  // before its ledger record is appended. Each sample is stamped when its answer arrived, so
  // it counts no more than what was answered by then.
  std::vector<std::pair<Clock::time_point, double>> answered;
  const auto sampling_until = Clock::now() + 1500ms;
  while (Clock::now() < sampling_until) {
    const double n = total(*gw, "tidegate_key_requests_total");
    answered.emplace_back(Clock::now(), n);
  }
  const auto killed_at = Clock::now();
  gw->proc->stop(SIGKILL);
  const long kept = ledgerRows(db.path);
  gw = std::make_unique<Serve>(yaml);  // the same port and ledger
  const auto r = bench.finish();
  // Everything answered more than a flush interval before the kill (and one more interval
  // for that flush to commit) is in the ledger.
  double before = 0;
  for (const auto& [t, n] : answered)
    if (t <= killed_at - 2 * flush) before = n;
  EXPECT_GT(before, 100);
  EXPECT_GE(kept, static_cast<long>(before)) << "answered " << answered.back().second;
  // Clients got an answer, or — the moment the gateway died and until it was back — a
  // connection error; none was left waiting. Requests that reach the restarted gateway before
  // its first scrape found the engine ready get 503 (no ready endpoint): an answer too.
  std::size_t answers = r.ok;
  for (const auto& [what, n] : r.other) {
    if (what == "503 http_503") {
      answers += n;
      continue;
    }
    EXPECT_TRUE(what == "0 connect" || what == "0 reset" || what == "0 read" || what == "0 write")
        << what << ": " << n;
  }
  EXPECT_EQ(r.error_events, 0u);
  // The restarted gateway served the rest; with a clean stop (SIGTERM) its every record is
  // committed after the first gateway's: nothing recorded twice, nothing of it lost.
  const double after = total(*gw, "tidegate_key_requests_total");
  EXPECT_GT(after, 0);
  EXPECT_TRUE(eventually([&] { return total(*gw, "tidegate_endpoint_inflight") == 0; }));
  EXPECT_LE(
      kept + static_cast<long>(after),
      static_cast<long>(answers) + concurrency)  // in flight when it died: counted, unanswered
      << "kept " << kept << ", answered after the restart " << after << ", clients got " << answers;
  EXPECT_EQ(gw->proc->stop(SIGTERM), 0);
  EXPECT_EQ(ledgerRows(db.path), kept + static_cast<long>(after));
}

}  // namespace
}  // namespace tidegate::testing

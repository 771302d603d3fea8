#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/net.h"
#include "common/prometheus.h"

namespace tidegate::testing {

std::string binaryPath() { return TIDEGATE_BINARY; }

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ChildProcess::ChildProcess(std::vector<std::string> argv, bool capture_stderr) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    if (capture_stderr) ::dup2(fds[1], STDERR_FILENO);
    // Die with the test runner, so no child outlives a crashed test.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fds[1]);
  out_fd_ = fds[0];
}

ChildProcess::~ChildProcess() {
  if (running()) stop(SIGTERM, std::chrono::seconds(5));
  if (running()) stop(SIGKILL, std::chrono::seconds(5));
  if (out_fd_ >= 0) ::close(out_fd_);
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    pid_ = -1;
    return false;
  }
  return true;
}

int ChildProcess::stop(int sig, std::chrono::milliseconds timeout) {
  if (!running()) return status_;
  ::kill(pid_, sig);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return status_;
    ::usleep(2000);
  }
  return -1;
}

std::string ChildProcess::waitForLine(const std::string& needle,
                                      std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::size_t nl;
    while ((nl = buffered_.find('\n')) != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      if (line.find(needle) != std::string::npos) return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "";
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) return "";
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string ChildProcess::readAll(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out = std::move(buffered_);
  buffered_.clear();
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return out;
    char buf[8192];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    ::usleep(2000);
  }
  return status_;
}

CommandResult runCommand(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  ChildProcess p(std::move(argv), /*capture_stderr=*/true);
  CommandResult r;
  r.output = p.readAll(timeout);
  const int st = p.wait(std::chrono::seconds(5));
  if (st >= 0 && WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
  return r;
}

Engine::Engine(const std::vector<std::string>& extra_flags)
    : proc([&] {
        std::vector<std::string> argv{binaryPath(), "engine", "--port", "0", "--log-level", "warn"};
        argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
        return argv;
      }()) {
  std::string line = proc.waitForLine("listening on http", std::chrono::seconds(20));
  auto colon = line.rfind(':');
  if (line.empty() || colon == std::string::npos)
    throw std::runtime_error("engine did not report its port");
  port = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

http::Response Engine::get(const std::string& path) const {
  auto r = http::fetch("127.0.0.1", port, {.method = "GET", .target = path});
  if (!r) throw std::runtime_error("GET " + path + ": " + r.error().message);
  return std::move(r).value();
}

http::Response Engine::post(const std::string& path, const std::string& body) const {
  return postStream(path, body, {});
}

http::Response Engine::postStream(const std::string& path, const std::string& body,
                                  http::DataFn on_data) const {
  auto r = http::fetch("127.0.0.1", port,
                       {.method = "POST",
                        .target = path,
                        .body = body,
                        .headers = {{"Content-Type", "application/json"}},
                        .timeout_s = 60},
                       std::move(on_data));
  if (!r) throw std::runtime_error("POST " + path + ": " + r.error().message);
  return std::move(r).value();
}

Serve::Serve(const std::string& yaml, const std::vector<std::string>& extra,
             const std::string& log_level) {
  static int n = 0;
  path = "/tmp/tidegate-serve-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".yaml";
  rewrite(yaml);
  std::vector<std::string> argv{binaryPath(), "serve", "-c", path, "--log-level", log_level};
  argv.insert(argv.end(), extra.begin(), extra.end());
  proc = std::make_unique<ChildProcess>(argv);
  const std::string line = proc->waitForLine("listening on http", std::chrono::seconds(20));
  const auto a = line.find("://127.0.0.1:");
  const auto b = line.rfind(':');
  if (line.empty() || a == std::string::npos) throw std::runtime_error("serve did not start");
  port = static_cast<std::uint16_t>(std::stoi(line.substr(a + 13)));
  admin_port = static_cast<std::uint16_t>(std::stoi(line.substr(b + 1)));
}

Serve::~Serve() {
  proc.reset();
  std::remove(path.c_str());
}

void Serve::rewrite(const std::string& yaml) { std::ofstream(path) << yaml; }

bool Serve::reload() const {
  auto count = [&](const char* result) {
    return std::max(0.0, metric("tidegate_config_reloads_total", {{"result", result}}));
  };
  const double applied = count("applied"), refused = count("refused");
  ::kill(proc->pid(), SIGHUP);
  bool was_applied = false;
  if (!eventually([&] {
        was_applied = count("applied") > applied;
        return was_applied || count("refused") > refused;
      }))
    throw std::runtime_error("SIGHUP: no reload counted");
  return was_applied;
}

http::Response Serve::post(const std::string& target, const std::string& body,
                           const http::Headers& headers) const {
  http::Headers h{{"Content-Type", "application/json"}};
  h.insert(h.end(), headers.begin(), headers.end());
  auto r = http::fetch(
      "127.0.0.1", port,
      {.method = "POST", .target = target, .body = body, .headers = h, .timeout_s = 60});
  if (!r) throw std::runtime_error("POST " + target + ": " + r.error().message);
  return std::move(r).value();
}

http::Response Serve::admin(const std::string& target) const {
  auto r = http::fetch("127.0.0.1", admin_port, {.method = "GET", .target = target});
  if (!r) throw std::runtime_error("GET " + target + ": " + r.error().message);
  return std::move(r).value();
}

http::Response Serve::request(const std::string& method, const std::string& target,
                              const std::string& body, const http::Headers& headers,
                              bool to_admin) const {
  auto r = http::fetch(
      "127.0.0.1", to_admin ? admin_port : port,
      {.method = method, .target = target, .body = body, .headers = headers, .timeout_s = 60});
  if (!r) throw std::runtime_error(method + " " + target + ": " + r.error().message);
  return std::move(r).value();
}

Redis::Redis() {
  for (int attempt = 0; attempt < 5 && !proc; ++attempt) {
    port = static_cast<std::uint16_t>(freePort());
    auto p = std::make_unique<ChildProcess>(std::vector<std::string>{
        "/usr/bin/redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save",
        "", "--appendonly", "no", "--loglevel", "notice"});
    if (!p->waitForLine("Ready to accept connections", std::chrono::seconds(10)).empty())
      proc = std::move(p);
  }
  if (!proc) throw std::runtime_error("redis-server did not start");
}

std::string LlamaServer::path() {
  const char* p = std::getenv("TIDEGATE_LLAMA_SERVER");
  if (!p || !*p || ::access(p, X_OK) != 0) return "";
  return p;
}

LlamaServer::LlamaServer(std::uint16_t p) : port(p) {
  if (port == 0) port = static_cast<std::uint16_t>(freePort());
  start();
}

void LlamaServer::start() {
  const std::string bin = path();
  if (bin.empty()) throw std::runtime_error(kSkipMessage);
  std::string model;
  if (const char* m = std::getenv("TIDEGATE_LLAMA_MODEL"); m && *m) {
    model = m;
  } else {
    model = bin.substr(0, bin.rfind('/')) + "/../models/tiny-echo-f16.gguf";
  }
  proc = std::make_unique<ChildProcess>(std::vector<std::string>{
      bin, "-m", model, "--host", "127.0.0.1", "--port", std::to_string(port), "-c", "4096", "-np",
      "4", "-t", "1", "--metrics", "-a", "tiny", "--log-disable"});
  const bool up = eventually(
      [&] {
        auto r =
            http::fetch("127.0.0.1", port, {.method = "GET", .target = "/health", .timeout_s = 1});
        return r.ok() && r->status == 200;
      },
      std::chrono::seconds(60));
  if (!up)
    throw std::runtime_error("llama-server did not become healthy on port " + std::to_string(port));
}

void LlamaServer::restart() {
  proc->stop(SIGKILL);
  proc.reset();
  start();
}

double LlamaServer::metric(const std::string& name) const {
  auto r = http::fetch("127.0.0.1", port, {.method = "GET", .target = "/metrics"});
  if (!r) throw std::runtime_error("llama-server /metrics: " + r.error().message);
  auto scrape = prom::parse(r->body);
  if (!scrape) throw std::runtime_error("metrics do not parse: " + scrape.error().message);
  const auto* s = scrape->find(name);
  return s ? s->value : -1;
}

double Serve::metric(const std::string& name, const prom::Labels& match) const {
  auto scrape = prom::parse(admin("/metrics").body);
  if (!scrape) throw std::runtime_error("metrics do not parse: " + scrape.error().message);
  const auto* s = scrape->find(name, match);
  return s ? s->value : -1;
}

double Engine::metric(const std::string& name, const prom::Labels& match) const {
  auto text = get("/metrics").body;
  auto scrape = prom::parse(text);
  if (!scrape) throw std::runtime_error("metrics do not parse: " + scrape.error().message);
  const auto* s = scrape->find(name, match);
  return s ? s->value : -1;
}

}  // namespace tidegate::testing

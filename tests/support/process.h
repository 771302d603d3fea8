#pragma once
// Test support: runs real child processes (the tidegate binary, redis-server, ...) and talks to
// them over loopback. A ChildProcess is killed (SIGTERM, then SIGKILL) when it goes out of scope,
// so a failing test leaves no orphans.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/prometheus.h"

namespace tidegate::testing {

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`; its stdout is captured (and stderr too if `capture_stderr`,
  // else inherited).
  explicit ChildProcess(std::vector<std::string> argv, bool capture_stderr = false);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reads stdout until a line contains `needle`; returns that line, or "" on EOF/timeout.
  std::string waitForLine(const std::string& needle, std::chrono::milliseconds timeout);
  // Sends `sig`; then waits up to `timeout` for exit. Returns the exit status (or -1).
  int stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads the rest of the output until the process closes it or `timeout` passes.
  std::string readAll(std::chrono::milliseconds timeout);
  // Waits for exit; returns the wait status, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }
  bool running();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffered_;
  int status_ = -1;
};

struct CommandResult {
  int exit_code = -1;  // -1: killed or timed out
  std::string output;  // stdout and stderr, interleaved
};
// Runs a command to completion (killing it after `timeout`).
CommandResult runCommand(std::vector<std::string> argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(120));

// A `tidegate engine` child on 127.0.0.1 with port 0; `port` is read from its first line.
struct Engine {
  explicit Engine(const std::vector<std::string>& extra_flags);
  ChildProcess proc;
  std::uint16_t port = 0;

  http::Response get(const std::string& path) const;
  http::Response post(const std::string& path, const std::string& body) const;
  // POST with the body delivered to `on_data` as it streams.
  http::Response postStream(const std::string& path, const std::string& body,
                            http::DataFn on_data) const;
  // GET /metrics parsed; fails the test if it does not parse.
  double metric(const std::string& name, const prom::Labels& match = {}) const;
};

// A `tidegate serve` child on 127.0.0.1 with ports 0, from a configuration written to a
// temporary file. `port` and `admin_port` are read from its first line.
struct Serve {
  // `extra` flags follow the configuration (e.g. --kubeconfig FILE).
  explicit Serve(const std::string& yaml, const std::vector<std::string>& extra = {},
                 const std::string& log_level = "warn");
  ~Serve();
  // Rewrites the configuration file (for SIGHUP reloads).
  void rewrite(const std::string& yaml);
  // Sends SIGHUP and waits until the gateway counts the reload (tidegate_config_reloads_total);
  // true if it was applied, false if refused. Throws if no reload is counted in time.
  bool reload() const;
  std::string path;
  std::unique_ptr<ChildProcess> proc;
  std::uint16_t port = 0, admin_port = 0;

  http::Response post(const std::string& target, const std::string& body,
                      const http::Headers& headers = {}) const;
  http::Response admin(const std::string& target) const;
  // Any request, to the listen address or (`to_admin`) the admin address.
  http::Response request(const std::string& method, const std::string& target,
                         const std::string& body = {}, const http::Headers& headers = {},
                         bool to_admin = false) const;
  double metric(const std::string& name, const prom::Labels& match = {}) const;
};

// A real redis-server on 127.0.0.1 (a free port, no persistence), stopped with the object.
struct Redis {
  Redis();
  std::uint16_t port = 0;
  std::unique_ptr<ChildProcess> proc;
};

// The real llama.cpp `llama-server` (see ../shared/engines/llama.cpp/README.md), found through the
// environment: TIDEGATE_LLAMA_SERVER is the path of its bin/llama-server, TIDEGATE_LLAMA_MODEL
// its model (default: models/tiny-echo-f16.gguf beside bin/). `.ci/run` sets them when the
// shared engines are present; tests skip with a message naming the variable otherwise.
// Serves the model as `tiny`, 4 slots, metrics on, on 127.0.0.1.
struct LlamaServer {
  // "" when TIDEGATE_LLAMA_SERVER is not set or names no executable.
  static std::string path();
  static constexpr const char* kSkipMessage =
      "TIDEGATE_LLAMA_SERVER is not set (the path of llama.cpp's bin/llama-server; .ci/run sets "
      "it from ../shared/engines/llama.cpp): skipping the real-engine test";
  // Starts on `port`, or a free port when 0; waits until /health answers 200.
  explicit LlamaServer(std::uint16_t port = 0);
  // Stops the server (SIGKILL: an engine crash) and starts it again on the same port.
  void restart();
  double metric(const std::string& name) const;
  std::uint16_t port = 0;
  std::unique_ptr<ChildProcess> proc;

 private:
  void start();
};

// Polls `cond` every few milliseconds until it is true or `timeout` passes. For waiting on state
// that another process reaches, never for asserting speed.
template <class Cond>
bool eventually(Cond cond, std::chrono::milliseconds timeout = std::chrono::seconds(10));

std::string binaryPath();

// The whole of a file a command wrote (e.g. its --json or --csv output); "" if it cannot be read.
std::string readFile(const std::string& path);

}  // namespace tidegate::testing

#include "support/process_inl.h"

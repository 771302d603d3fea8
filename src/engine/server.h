#pragma once
// EngineServer: the OpenAI-compatible server of `tidegate engine`, around the pure Scheduler.
//
// One io_context, one thread: the HTTP sessions (one coroutine each) and the step loop share it,
// so the model needs no locks. The step loop asks the scheduler for a step, waits the step's
// (scaled) duration on a timer, applies it, and wakes the requests that got tokens. A request
// coroutine waits on its own timer used as an event; a client that disconnects aborts its
// sequence at once (its KV blocks and LoRA slot are freed before the next step).

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <unordered_map>
#include <variant>

#include "common/http_server.h"
#include "common/prometheus.h"
#include "engine/model/busy_window.h"
#include "engine/model/scheduler.h"
#include "engine/openai_api.h"
#include "engine/options.h"

namespace tidegate::engine {

namespace asio = boost::asio;

class EngineServer {
 public:
  EngineServer(asio::io_context& ioc, EngineOptions options);
  ~EngineServer();

  // Listens and starts serving. Returns the bound endpoint.
  Result<http::tcp::endpoint> start();
  // Starts a graceful shutdown (http::Server::stopAccepting, which follows uvicorn's): the
  // listener closes, idle connections close, and the requests in flight (streams included) run
  // to their end while the step loop keeps stepping for them. `on_drained` runs once, on the
  // io_context, when no connection remains; it does not stop the engine (call stop()). Without a
  // stop() the drain has no deadline.
  void drain(std::function<void()> on_drained);
  // Stops accepting, closes connections (cutting requests and streams in flight) and ends the
  // step loop.
  void stop();
  bool draining() const { return server_.draining(); }
  // Generation requests in progress, and open connections (for shutdown logs).
  std::size_t requestsInFlight() const { return active_.size(); }
  std::size_t connections() const { return server_.connections(); }

 private:
  struct Active;
  struct Metrics;

  asio::awaitable<void> handle(http::Exchange& ex);
  // Validates a generation request and queues its sequence. Synchronous: coroutines only do I/O
  // (GCC 12 mishandles temporaries built inside co_await expressions).
  std::variant<SeqId, ApiError> admit(const std::string& body, Endpoint endpoint, GenParams& p,
                                      Active& a);
  std::variant<std::string, ApiError> embed(const std::string& body);
  std::variant<std::string, ApiError> applyLora(const std::string& body, bool load);
  asio::awaitable<void> generate(http::Exchange& ex, Endpoint endpoint);
  asio::awaitable<void> embeddings(http::Exchange& ex);
  asio::awaitable<void> loadLora(http::Exchange& ex, bool load);
  std::string modelsBody() const;
  bool ready() const;
  bool knownModel(const std::string& name) const;
  asio::awaitable<void> stepLoop();
  void onTokens(double now);
  void abortRequest(SeqId id);
  double now() const;
  void collect(prom::TextWriter& w) const;

  asio::io_context& ioc_;
  EngineOptions opts_;
  Scheduler scheduler_;
  Result<std::shared_ptr<tls::ServerTls>> tls_;  // null without --ssl-certfile
  http::Server server_;
  prom::Registry registry_;
  std::unique_ptr<Metrics> metrics_;
  asio::steady_timer work_;  // the step loop sleeps on it while idle; cancel() wakes it
  std::unordered_map<SeqId, Active*> active_;
  std::unordered_map<std::string, std::string> adapters_;  // registered LoRA name -> path
  std::vector<TokenEvent> events_;
  BusyWindow busy_;  // for GPU utilisation
  double start_time_;
  long long created_;
  SeqId next_id_ = 1;
  bool stopped_ = false;
};

}  // namespace tidegate::engine

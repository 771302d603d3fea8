#include "cli/engine_cmd.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "common/log.h"
#include "engine/flags.h"
#include "engine/server.h"

namespace tidegate::cli {

namespace {

int runEngine(engine::EngineFlags& f) {
  log::init("engine", f.log_level);
  if (auto st = engine::finishEngineFlags(f); !st) {
    std::cerr << "error: " << st.message() << "\n";
    return 2;
  }
  const auto& o = f.opts;

  boost::asio::io_context ioc(1);
  engine::EngineServer server(ioc, o);
  auto ep = server.start();
  if (!ep) {
    std::cerr << "error: " << ep.error().message << "\n";
    return 1;
  }
  // Tests and scripts read the bound port from this line (with --port 0).
  std::cout << "tidegate engine listening on " << (o.ssl_certfile.empty() ? "http" : "https")
            << "://" << ep->address().to_string() << ":" << ep->port() << std::endl;
  spdlog::info("serving {} ({} LoRA adapters) on {}:{}, time scale {}", o.servedName(),
               o.lora_modules.size(), ep->address().to_string(), ep->port(), f.time_scale);
  // Shutdown as vLLM's OpenAI server does under uvicorn (uvicorn's Server.shutdown, with
  // --timeout-graceful-shutdown, https://www.uvicorn.org/settings/#timeouts; vLLM's
  // --shutdown-timeout, https://github.com/vllm-project/vllm/pull/34730): the first SIGTERM or
  // SIGINT stops accepting, closes idle connections and lets requests in flight (streams
  // included) finish, the scheduler still stepping; the process exits 0 once no connection
  // remains. After --shutdown-timeout (0: at once) or on a second signal (uvicorn's force exit)
  // the remaining connections are cut and the exit status is 1.
  int exit_code = 0;
  bool cut = false;
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  boost::asio::steady_timer deadline(ioc);
  // Closes everything and lets every coroutine finish (closed sockets fail their I/O at once),
  // so nothing is left suspended when the server is destroyed. If something still runs 5 s
  // later, exits without unwinding rather than hang.
  auto cutNow = [&](const std::string& why) {
    if (cut) return;
    cut = true;
    if (server.requestsInFlight() > 0 || server.connections() > 0) exit_code = 1;
    spdlog::warn("{}: cutting {} request(s) in flight on {} connection(s)", why,
                 server.requestsInFlight(), server.connections());
    signals.cancel();
    deadline.cancel();
    server.stop();
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::seconds(5));
      spdlog::warn("still busy 5 s after stop; exiting");
      std::_Exit(1);
    }).detach();
  };
  std::function<void(const boost::system::error_code&, int)> onSignal;
  onSignal = [&](const boost::system::error_code& ec, int sig) {
    if (ec || cut) return;
    if (server.draining()) {
      cutNow("signal " + std::to_string(sig) + " again");
      return;
    }
    signals.async_wait(onSignal);  // a second signal exits at once
    if (o.shutdown_timeout_s <= 0) {
      cutNow("signal " + std::to_string(sig) + " with --shutdown-timeout 0");
      return;
    }
    spdlog::info(
        "signal {}: shutting down; waiting up to {} s for {} request(s) in flight on {} "
        "connection(s) (signal again to exit now)",
        sig, o.shutdown_timeout_s, server.requestsInFlight(), server.connections());
    server.drain([&] {
      if (cut) return;
      spdlog::info("drained: every request finished; exiting");
      signals.cancel();
      deadline.cancel();
      server.stop();
    });
    deadline.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(o.shutdown_timeout_s)));
    deadline.async_wait([&](const boost::system::error_code& tec) {
      if (!tec) cutNow(fmt::format("--shutdown-timeout {} s passed", o.shutdown_timeout_s));
    });
  };
  signals.async_wait(onSignal);
  ioc.run();
  return exit_code;
}

}  // namespace

void addEngineCommand(CLI::App& app) {
  auto f = std::make_shared<engine::EngineFlags>();
  auto* cmd = app.add_subcommand(
      "engine", "Run an OpenAI-compatible engine simulator that behaves like vLLM");
  engine::addEngineFlags(*cmd, *f);
  cmd->callback([f] {
    int rc = runEngine(*f);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace tidegate::cli

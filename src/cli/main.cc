// tidegate: one binary, one subcommand per job (ARCHITECTURE.md). Only wiring lives here.
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include "cli/bench_cmd.h"
#include "cli/crds_cmd.h"
#include "cli/demo_cmd.h"
#include "cli/engine_cmd.h"
#include "cli/serve_cmd.h"
#include "cli/simulate_cmd.h"

namespace {
// Every subcommand holds thousands of sockets (streams, load generation): lift the soft limit on
// open files to the hard limit, as servers such as nginx do, instead of failing at 1,024.
void raiseFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}
}  // namespace

int main(int argc, char** argv) {
  raiseFileLimit();
  CLI::App app{"tidegate: an elastic LLM inference platform"};
  app.set_version_flag("--version", "tidegate 0.1.0");
  app.require_subcommand(1);
  tidegate::cli::addEngineCommand(app);
  tidegate::cli::addBenchCommand(app);
  tidegate::cli::addServeCommands(app);
  tidegate::cli::addDemoCommand(app);
  tidegate::cli::addCrdsCommand(app);
  tidegate::cli::addSimulateCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}

// tidegate: one binary, one subcommand per job (ARCHITECTURE.md). Only wiring lives here.
#include <CLI/CLI.hpp>

#include "cli/engine_cmd.h"

int main(int argc, char** argv) {
  CLI::App app{"tidegate: an elastic LLM inference platform"};
  app.set_version_flag("--version", "tidegate 0.1.0");
  app.require_subcommand(1);
  tidegate::cli::addEngineCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}

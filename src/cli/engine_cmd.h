#pragma once
// `tidegate engine`: flags and entry point.

#include <CLI/CLI.hpp>

namespace tidegate::cli {

// Adds the `engine` subcommand to `app`; the callback runs the engine until SIGINT/SIGTERM.
void addEngineCommand(CLI::App& app);

}  // namespace tidegate::cli

#pragma once
// `tidegate simulate`: flags and entry point.

#include <CLI/CLI.hpp>

namespace tidegate::cli {

// Adds the `simulate` subcommand. Exit codes: 0 done, 2 bad input (before anything runs),
// 3 the configured policy missed an --slo check.
void addSimulateCommand(CLI::App& app);

}  // namespace tidegate::cli

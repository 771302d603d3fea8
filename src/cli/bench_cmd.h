#pragma once
// `tidegate bench`: flags and entry point.

#include <CLI/CLI.hpp>

namespace tidegate::cli {

// Adds the `bench` subcommand. Exit codes: 0 done, 2 bad input (before any load), 3 SLO missed.
void addBenchCommand(CLI::App& app);

}  // namespace tidegate::cli

#pragma once
// `tidegate demo`: what `make demo` runs.

#include <CLI/CLI.hpp>

namespace tidegate::cli {

void addDemoCommand(CLI::App& app);

}  // namespace tidegate::cli

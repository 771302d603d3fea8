#pragma once
// `tidegate serve -c FILE` and `tidegate check -c FILE`.

#include <CLI/CLI.hpp>

namespace tidegate::cli {

void addServeCommands(CLI::App& app);

}  // namespace tidegate::cli

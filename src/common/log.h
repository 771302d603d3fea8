#pragma once
// Logging: spdlog behind a few helpers. Log lines about a connection or request carry
// `[conn][req]` ids so one request can be followed across components.

#include <spdlog/spdlog.h>

#include <string_view>

namespace tidegate::log {

// Sets the global level from a name (trace|debug|info|warn|error|off). Returns false if unknown.
bool setLevel(std::string_view level);

// Initialises the default logger: stderr, `ts level [component] message`.
void init(std::string_view component, std::string_view level = "info");

}  // namespace tidegate::log

#pragma once
// Durations as people and Kubernetes write them: "500ms", "30s", "2m", "1h", "1m30s", "1.5s"
// (Go's time.ParseDuration units us|ms|s|m|h); a bare number is seconds. Used by command-line
// flags and configuration alike.

#include <string>
#include <string_view>

#include "common/result.h"

namespace tidegate {

// Seconds, or an error naming what was wrong. Negative durations are refused.
Result<double> parseDuration(std::string_view text);

// "1.5s", "250ms", "2m", "1h30m": the shortest readable form, for logs and reports.
std::string formatDuration(double seconds);

}  // namespace tidegate

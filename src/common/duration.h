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

// Timestamps (RFC 3339, UTC or with an offset): "2026-12-31T23:59:59Z",
// "2027-01-01T00:00:00+01:00"; a bare date "2027-01-01" is its midnight UTC. Unix seconds, or an
// error.
Result<double> parseTimestamp(std::string_view text);
// Unix seconds as "2026-12-31T23:59:59Z".
std::string formatTimestamp(double unix_seconds);

}  // namespace tidegate

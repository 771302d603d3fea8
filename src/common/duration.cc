#include "common/duration.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace tidegate {

Result<double> parseDuration(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (text.empty()) return Error{"empty duration"};
  double total = 0;
  std::size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    double v = 0;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
    if (ec != std::errc() || p == text.data() + i)
      return Error{"bad duration " + quoted + ": expected a number like 30s, 500ms, 2m or 1h"};
    if (v < 0) return Error{"bad duration " + quoted + ": must not be negative"};
    i = static_cast<std::size_t>(p - text.data());
    std::size_t u = i;
    while (u < text.size() && ((text[u] >= 'a' && text[u] <= 'z'))) ++u;
    const std::string_view unit = text.substr(i, u - i);
    double scale;
    if (unit.empty()) {
      if (any || u != text.size())
        return Error{"bad duration " + quoted + ": a unit (ms, s, m, h) is missing"};
      scale = 1;  // a bare number: seconds
    } else if (unit == "h") {
      scale = 3600;
    } else if (unit == "m") {
      scale = 60;
    } else if (unit == "s") {
      scale = 1;
    } else if (unit == "ms") {
      scale = 1e-3;
    } else if (unit == "us") {
      scale = 1e-6;
    } else {
      return Error{"bad duration " + quoted + ": unknown unit '" + std::string(unit) +
                   "' (use us, ms, s, m or h)"};
    }
    total += v * scale;
    any = true;
    i = u;
  }
  if (!std::isfinite(total)) return Error{"bad duration " + quoted};
  return total;
}

std::string formatDuration(double s) {
  char buf[64];
  if (s < 1) {
    std::snprintf(buf, sizeof buf, "%.3gms", s * 1e3);
  } else if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.3gs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600,
                  (static_cast<int>(s) % 3600) / 60);
  }
  return buf;
}

}  // namespace tidegate

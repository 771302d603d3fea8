#include "common/duration.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

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

Result<double> parseTimestamp(std::string_view text) {
  const std::string t(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, consumed = 0;
  double sec = 0;
  std::tm tm{};
  const auto bad = [&] {
    return Error{"bad timestamp '" + t + "': expected RFC 3339 like 2027-01-01T00:00:00Z"};
  };
  double offset = 0;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &consumed) != 3) return bad();
  std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
  if (!rest.empty()) {
    if (rest[0] != 'T' && rest[0] != 't' && rest[0] != ' ') return bad();
    const std::string r(rest.substr(1));
    int n = 0;
    if (std::sscanf(r.c_str(), "%2d:%2d:%lf%n", &h, &mi, &sec, &n) != 3) return bad();
    std::string_view zone = std::string_view(r).substr(static_cast<std::size_t>(n));
    if (zone == "Z" || zone == "z") {
      offset = 0;
    } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
      int oh = 0, om = 0;
      if (std::sscanf(std::string(zone.substr(1)).c_str(), "%2d:%2d", &oh, &om) != 2) return bad();
      offset = (zone[0] == '+' ? 1 : -1) * (oh * 3600.0 + om * 60.0);
    } else {
      return bad();
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 || sec >= 61)
    return bad();
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return static_cast<double>(timegm(&tm)) + sec - offset;
}

std::string formatTimestamp(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(std::floor(unix_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace tidegate

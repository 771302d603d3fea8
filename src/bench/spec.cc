#include "bench/spec.h"

#include <charconv>
#include <cmath>

#include "common/duration.h"

namespace tidegate::bench {
namespace {

Result<double> number(std::string_view s, const std::string& what) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v))
    return Error{what + ": '" + std::string(s) + "' is not a number"};
  return v;
}

std::vector<std::string_view> splitComma(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    auto c = s.find(',');
    out.push_back(s.substr(0, c));
    if (c == std::string_view::npos) break;
    s.remove_prefix(c + 1);
  }
  return out;
}

}  // namespace

Result<Dist> parseDist(std::string_view text, std::string_view flag) {
  const std::string what = std::string(flag) + " '" + std::string(text) + "'";
  auto colon = text.find(':');
  auto mean = number(text.substr(0, colon), std::string(flag));
  if (!mean) return mean.error();
  Dist d{*mean, 0};
  if (colon != std::string_view::npos) {
    auto sd = number(text.substr(colon + 1), std::string(flag));
    if (!sd) return sd.error();
    d.stddev = *sd;
  }
  if (d.mean < 1) return Error{what + ": the mean must be at least 1"};
  if (d.stddev < 0) return Error{what + ": the standard deviation must not be negative"};
  return d;
}

Result<std::vector<Segment>> parseProfile(std::string_view text) {
  std::vector<Segment> out;
  if (text.empty()) return Error{"--profile is empty; expected e.g. '30s@2,60s@20,30s@2'"};
  for (auto part : splitComma(text)) {
    auto at = part.find('@');
    if (at == std::string_view::npos)
      return Error{"--profile segment '" + std::string(part) +
                   "': expected DURATION@RATE, e.g. 60s@20"};
    auto d = parseDuration(part.substr(0, at));
    if (!d) return Error{"--profile segment '" + std::string(part) + "': " + d.error().message};
    if (*d <= 0)
      return Error{"--profile segment '" + std::string(part) + "': duration must be > 0"};
    auto r = number(part.substr(at + 1), "--profile segment '" + std::string(part) + "' rate");
    if (!r) return r.error();
    if (*r < 0) return Error{"--profile segment '" + std::string(part) + "': rate must be >= 0"};
    out.push_back({*d, *r});
  }
  return out;
}

Result<std::vector<SloCheck>> parseSlo(std::string_view text) {
  std::vector<SloCheck> out;
  for (auto part : splitComma(text)) {
    const std::string where = "--slo '" + std::string(part) + "'";
    auto lt = part.find('<');
    if (lt == std::string_view::npos)
      return Error{where + ": expected METRIC<LIMIT, e.g. ttft_p90<2s"};
    SloCheck c;
    c.text = std::string(part);
    c.inclusive = lt + 1 < part.size() && part[lt + 1] == '=';
    std::string_view lhs = part.substr(0, lt);
    std::string_view rhs = part.substr(lt + (c.inclusive ? 2 : 1));
    if (lhs == "error_rate") {
      c.metric = "error_rate";
      bool pct = !rhs.empty() && rhs.back() == '%';
      auto v = number(pct ? rhs.substr(0, rhs.size() - 1) : rhs, where);
      if (!v) return v.error();
      c.limit = pct ? *v / 100 : *v;
    } else {
      auto us = lhs.find('_');
      c.metric = std::string(lhs.substr(0, us));
      c.stat = us == std::string_view::npos ? "" : std::string(lhs.substr(us + 1));
      if (c.metric != "ttft" && c.metric != "itl" && c.metric != "e2e")
        return Error{where + ": unknown metric '" + c.metric + "' (ttft, itl, e2e, error_rate)"};
      if (c.stat != "mean" && c.stat != "p50" && c.stat != "p90" && c.stat != "p95" &&
          c.stat != "p99")
        return Error{where + ": unknown statistic '" + c.stat + "' (mean, p50, p90, p95, p99)"};
      auto d = parseDuration(rhs);
      if (!d) return Error{where + ": " + d.error().message};
      c.limit = *d;
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace tidegate::bench

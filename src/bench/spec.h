#pragma once
// The textual specifications `tidegate bench` accepts, parsed into values. Pure functions; every
// error message names the offending text, so bad input is reported before any load is sent.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/url.h"

namespace tidegate::bench {

// MEAN[:STDDEV], e.g. "512" or "512:128": a normal distribution clipped to >= 1.
struct Dist {
  double mean = 0;
  double stddev = 0;
};
Result<Dist> parseDist(std::string_view text, std::string_view flag);

// A piecewise-constant open-loop rate: "30s@2,60s@20,30s@2" = 30 s at 2 req/s, then 60 s at 20...
struct Segment {
  double duration_s;
  double rate;  // requests per second (0 allowed: a pause)
};
Result<std::vector<Segment>> parseProfile(std::string_view text);

// "ttft_p90<2s,itl_p90<100ms,e2e_p99<=10s,error_rate<1%".
struct SloCheck {
  std::string metric;  // ttft | itl | e2e | error_rate
  std::string stat;    // mean | p50 | p90 | p95 | p99 (empty for error_rate)
  bool inclusive;      // <= rather than <
  double limit;        // seconds, or a fraction for error_rate
  std::string text;    // as written
};
Result<std::vector<SloCheck>> parseSlo(std::string_view text);

// Target and parseUrl live in common/url.h (the controller parses URLs too).
using tidegate::parseUrl;
using tidegate::Target;

}  // namespace tidegate::bench

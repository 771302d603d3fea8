#include "common/trace.h"

#include <boost/json.hpp>
#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

namespace tidegate {
namespace {

// Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
long long daysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<long long>(era) * 146097 + static_cast<long long>(doe) - 719468;
}

template <class T>
bool toNumber(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "2023-11-16 18:17:03.9799600" -> seconds since the Unix epoch.
bool parseTimestamp(std::string_view s, double& out) {
  int y;
  unsigned mo, d, h, mi;
  double sec;
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') ||
      s[13] != ':' || s[16] != ':')
    return false;
  if (!toNumber(s.substr(0, 4), y) || !toNumber(s.substr(5, 2), mo) ||
      !toNumber(s.substr(8, 2), d) || !toNumber(s.substr(11, 2), h) ||
      !toNumber(s.substr(14, 2), mi) || !toNumber(s.substr(17), sec))
    return false;
  // (Written so that a NaN second, which from_chars reads from "nan", is refused too.)
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || !(sec >= 0 && sec < 61))
    return false;
  out = static_cast<double>(daysFromCivil(y, mo, d)) * 86400 + h * 3600.0 + mi * 60.0 + sec;
  return true;
}

Result<Trace> parseAzure(std::istream& in, const std::string& path) {
  Trace t;
  t.format = "azure-csv";
  std::string line;
  std::size_t n = 0;
  double first = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(n) + ": ";
    if (n == 1) {
      if (line != "TIMESTAMP,ContextTokens,GeneratedTokens")
        return Error{where + "expected the header TIMESTAMP,ContextTokens,GeneratedTokens"};
      continue;
    }
    auto c1 = line.find(',');
    auto c2 = c1 == std::string::npos ? c1 : line.find(',', c1 + 1);
    if (c2 == std::string::npos) return Error{where + "expected 3 comma-separated fields"};
    std::string_view sv(line);
    TraceRow r;
    double ts;
    if (!parseTimestamp(sv.substr(0, c1), ts))
      return Error{where + "bad TIMESTAMP '" + std::string(sv.substr(0, c1)) + "'"};
    if (!toNumber(sv.substr(c1 + 1, c2 - c1 - 1), r.input_tokens) || r.input_tokens < 0)
      return Error{where + "bad ContextTokens"};
    if (!toNumber(sv.substr(c2 + 1), r.output_tokens) || r.output_tokens < 0)
      return Error{where + "bad GeneratedTokens"};
    if (t.rows.empty()) first = ts;
    r.offset_s = ts - first;
    if (!t.rows.empty() && r.offset_s < t.rows.back().offset_s)
      return Error{where + "rows must be in arrival order"};
    t.rows.push_back(std::move(r));
  }
  return t;
}

Result<Trace> parseMooncake(std::istream& in, const std::string& path) {
  Trace t;
  t.format = "mooncake-jsonl";
  t.block_tokens = 512;
  std::string line;
  std::size_t n = 0;
  double first = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line == "\r") continue;
    const std::string where = path + ":" + std::to_string(n) + ": ";
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) return Error{where + "expected a JSON object"};
    const auto& o = v.get_object();
    // A number in [0, max]; Boost.JSON reads a number too large for a double as infinity.
    auto num = [&](const char* key, double max, double& out) {
      const auto* x = o.if_contains(key);
      if (!x || !x->is_number()) return false;
      out = x->to_number<double>();
      return out >= 0 && out <= max;
    };
    constexpr double kMaxTokens = std::numeric_limits<int>::max();
    double ts, in_len, out_len;
    if (!num("timestamp", std::numeric_limits<double>::max(), ts))
      return Error{where + "missing or bad 'timestamp'"};
    if (!num("input_length", kMaxTokens, in_len))
      return Error{where + "missing or bad 'input_length'"};
    if (!num("output_length", kMaxTokens, out_len))
      return Error{where + "missing or bad 'output_length'"};
    TraceRow r;
    r.input_tokens = static_cast<int>(in_len);
    r.output_tokens = static_cast<int>(out_len);
    if (const auto* ids = o.if_contains("hash_ids")) {
      if (!ids->is_array()) return Error{where + "'hash_ids' must be an array"};
      for (const auto& id : ids->get_array()) {
        if (!id.is_uint64() && !(id.is_int64() && id.get_int64() >= 0))
          return Error{where + "'hash_ids' must hold integers that are not negative"};
        r.hash_ids.push_back(id.to_number<std::uint64_t>());
      }
    }
    if (t.rows.empty()) first = ts;
    r.offset_s = (ts - first) / 1000.0;
    if (!t.rows.empty() && r.offset_s < t.rows.back().offset_s)
      return Error{where + "rows must be in arrival order"};
    t.rows.push_back(std::move(r));
  }
  return t;
}

}  // namespace

Result<Trace> loadTrace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read trace " + path};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{"cannot read trace " + path};
  return parseTrace(text.view(), path);
}

Result<Trace> parseTrace(std::string_view text, const std::string& name) {
  std::istringstream in{std::string(text)};
  Result<Trace> t = text.starts_with('{') ? parseMooncake(in, name) : parseAzure(in, name);
  if (t && t->rows.empty()) return Error{"trace " + name + " has no requests"};
  return t;
}

}  // namespace tidegate

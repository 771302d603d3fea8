#include "common/sse.h"

#include <algorithm>
#include <utility>

namespace tidegate {

bool SseParser::feedRaw(std::string_view bytes, std::vector<std::string>& raw) {
  buf_.append(bytes.data(), bytes.size());
  std::size_t start = 0;
  while (true) {
    // An event ends at a blank line: "\n\n" (or "\r\n\r\n"). Resume scanning where the last
    // call stopped, minus the bytes a separator split across calls may have left.
    const std::size_t from = std::max(start, scanned_ > 3 ? scanned_ - 3 : 0);
    std::size_t end = buf_.find("\n\n", from);
    std::size_t sep = 2;
    const std::size_t crlf = buf_.find("\r\n\r\n", from);
    if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
      end = crlf;
      sep = 4;
    }
    if (end == std::string::npos) break;
    raw.push_back(buf_.substr(start, end + sep - start));
    start = end + sep;
    scanned_ = start;
  }
  buf_.erase(0, start);
  scanned_ = buf_.size();
  return buf_.size() <= max_;
}

std::optional<std::string> SseParser::data(std::string_view block) {
  std::string out;
  bool has_data = false;
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t nl = block.find('\n', pos);
    if (nl == std::string_view::npos) nl = block.size();
    std::string_view line = block.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("data:")) {
      line.remove_prefix(5);
      if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      if (has_data) out += '\n';
      out.append(line);
      has_data = true;
    }
    pos = nl + 1;
  }
  if (!has_data) return std::nullopt;
  return out;
}

bool SseParser::feed(std::string_view bytes, std::vector<std::string>& events) {
  std::vector<std::string> raw;
  const bool ok = feedRaw(bytes, raw);
  for (const auto& ev : raw)
    if (auto d = data(ev)) events.push_back(std::move(*d));
  return ok;
}

}  // namespace tidegate

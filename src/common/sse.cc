#include "common/sse.h"

namespace tidegate {

bool SseParser::feed(std::string_view bytes, std::vector<std::string>& events) {
  buf_.append(bytes.data(), bytes.size());
  while (true) {
    // An event ends at a blank line: "\n\n" (or "\r\n\r\n").
    std::size_t end = buf_.find("\n\n", scanned_ > 0 ? scanned_ - 1 : 0);
    std::size_t sep = 2;
    std::size_t crlf = buf_.find("\r\n\r\n", scanned_ > 2 ? scanned_ - 3 : 0);
    if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
      end = crlf;
      sep = 4;
    }
    if (end == std::string::npos) {
      scanned_ = buf_.size();
      return buf_.size() <= max_;
    }
    std::string_view block(buf_.data(), end);
    std::string data;
    bool has_data = false;
    std::size_t pos = 0;
    while (pos <= block.size()) {
      std::size_t nl = block.find('\n', pos);
      if (nl == std::string_view::npos) nl = block.size();
      std::string_view line = block.substr(pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.starts_with("data:")) {
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (has_data) data += '\n';
        data.append(line);
        has_data = true;
      }
      pos = nl + 1;
    }
    if (has_data) events.push_back(std::move(data));
    buf_.erase(0, end + sep);
    scanned_ = 0;
  }
}

}  // namespace tidegate

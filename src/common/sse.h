#pragma once
// Incremental parser of Server-Sent Events as OpenAI-compatible servers send them
// (`data: {json}\n\n`, ending with `data: [DONE]`). Feed it bytes as they arrive in any split.
// feedRaw() yields each complete event's bytes unchanged (a relay forwards them as they are);
// feed() yields each event's data (multi-line data joined with '\n'; comments and other fields
// skipped). Bounded: an event larger than the limit is an error, never unbounded buffering.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tidegate {

class SseParser {
 public:
  explicit SseParser(std::size_t max_event_bytes = 1 << 20) : max_(max_event_bytes) {}

  // Appends bytes; each complete event's data goes to `events`. Returns false if an event
  // exceeded the limit (the parser is then unusable).
  bool feed(std::string_view bytes, std::vector<std::string>& events);
  // Appends bytes; each complete event, as received (blank line included), goes to `raw`.
  bool feedRaw(std::string_view bytes, std::vector<std::string>& raw);
  // The data of one raw event; nullopt if it has no data field.
  static std::optional<std::string> data(std::string_view raw_event);

  // Bytes received but not yet part of a complete event.
  std::size_t pending() const { return buf_.size(); }
  std::string takePending() { return std::exchange(buf_, {}); }

 private:
  std::string buf_;
  std::size_t scanned_ = 0;
  std::size_t max_;
};

}  // namespace tidegate

#pragma once
// Incremental parser of Server-Sent Events as OpenAI-compatible servers send them
// (`data: {json}\n\n`, ending with `data: [DONE]`). Feed it bytes as they arrive in any split;
// it yields each event's data (multi-line data joined with '\n'). Comments and other fields are
// skipped. Bounded: an event larger than the limit is an error, never unbounded buffering.

#include <string>
#include <string_view>
#include <vector>

namespace tidegate {

class SseParser {
 public:
  explicit SseParser(std::size_t max_event_bytes = 1 << 20) : max_(max_event_bytes) {}

  // Appends bytes; complete events are appended to `events`. Returns false if an event exceeded
  // the limit (the parser is then unusable).
  bool feed(std::string_view bytes, std::vector<std::string>& events);

  // Bytes received but not yet part of a complete event.
  std::size_t pending() const { return buf_.size(); }

 private:
  std::string buf_;
  std::size_t scanned_ = 0;
  std::size_t max_;
};

}  // namespace tidegate

// Fuzzes the Server-Sent Events splitter (common/sse.h), which cuts an engine's stream into the
// events the relay forwards. Invariants:
// - the raw events and the pending bytes are the input, byte for byte, in order;
// - each raw event ends at its first blank line ("\n\n" or "\r\n\r\n"), and at no earlier one;
// - the events do not depend on how the bytes arrive: fed at once, or in pieces of 1 to 7 bytes;
// - feed() gives data(event) of each raw event that has data;
// - the size limit fails the parser exactly when the bytes held exceed it.

#include <cstdint>
#include <string>
#include <vector>

#include "common/sse.h"
#include "fuzz_check.h"

using tidegate::SseParser;

namespace {

// The first blank line in `s` ends at the returned offset (npos if there is none).
std::size_t firstEventEnd(std::string_view s) {
  const auto lf = s.find("\n\n");
  const auto crlf = s.find("\r\n\r\n");
  if (crlf != std::string_view::npos && (lf == std::string_view::npos || crlf < lf))
    return crlf + 4;
  return lf == std::string_view::npos ? lf : lf + 2;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = tidegate::fuzz::asText(data, size);

  SseParser whole;
  std::vector<std::string> raw;
  FUZZ_CHECK(whole.feedRaw(bytes, raw));
  std::string joined;
  for (const auto& ev : raw) {
    FUZZ_CHECK(firstEventEnd(ev) == ev.size());
    joined += ev;
  }
  FUZZ_CHECK(firstEventEnd(bytes.substr(joined.size())) == std::string_view::npos);
  const std::size_t pending = whole.pending();
  FUZZ_CHECK(pending == bytes.size() - joined.size());
  joined += whole.takePending();
  FUZZ_CHECK(joined == bytes);

  SseParser pieces;
  std::vector<std::string> raw_pieces;
  for (std::size_t at = 0, n = 1; at < bytes.size(); at += n, n = n % 7 + 1)
    FUZZ_CHECK(pieces.feedRaw(bytes.substr(at, n), raw_pieces));
  FUZZ_CHECK(raw_pieces == raw);
  FUZZ_CHECK(pieces.pending() == pending);

  SseParser decoding;
  std::vector<std::string> events, expected;
  FUZZ_CHECK(decoding.feed(bytes, events));
  for (const auto& ev : raw)
    if (auto d = SseParser::data(ev)) expected.push_back(std::move(*d));
  FUZZ_CHECK(events == expected);

  // A limit below the input's size: the parser fails when the bytes it holds pass it.
  const std::size_t limit = size / 3;
  SseParser bounded(limit);
  std::vector<std::string> raw_bounded;
  const bool ok = bounded.feedRaw(bytes, raw_bounded);
  FUZZ_CHECK(ok == (bounded.pending() <= limit));
  FUZZ_CHECK(raw_bounded == raw);
  return 0;
}

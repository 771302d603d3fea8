#include "common/sse.h"

#include <gtest/gtest.h>

namespace tidegate {
namespace {

TEST(SseParser, YieldsEventsAcrossAnySplit) {
  const std::string stream =
      "data: {\"a\":1}\n\n: comment\n\ndata: line1\ndata: line2\n\nevent: x\r\ndata: crlf\r\n\r\n"
      "data: [DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "line1\nline2", "crlf", "[DONE]"};
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    SseParser p;
    std::vector<std::string> events;
    for (std::size_t i = 0; i < stream.size(); i += chunk)
      ASSERT_TRUE(p.feed(std::string_view(stream).substr(i, chunk), events));
    EXPECT_EQ(events, want) << "chunk size " << chunk;
    EXPECT_EQ(p.pending(), 0u);
  }
}

TEST(SseParser, RefusesAnOversizedEvent) {
  SseParser p(16);
  std::vector<std::string> events;
  EXPECT_FALSE(p.feed("data: 0123456789abcdefghij", events));
}

}  // namespace
}  // namespace tidegate

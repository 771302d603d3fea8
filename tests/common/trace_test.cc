#include "common/trace.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>

#include <fstream>

namespace tidegate {
namespace {

std::string writeTemp(const std::string& content) {
  char path[] = "/tmp/tidegate-trace-XXXXXX";
  int fd = mkstemp(path);
  ::close(fd);
  std::ofstream(path) << content;
  return path;
}

TEST(Trace, ReadsAzureCsvAsOffsets) {
  auto path = writeTemp(
      "TIMESTAMP,ContextTokens,GeneratedTokens\n"
      "2023-11-16 18:17:03.9799600,4808,10\n"
      "2023-11-16 18:17:04.0319600,3180,8\n"
      "2023-11-16 18:18:03.9799600,110,27\n");
  auto t = loadTrace(path);
  std::remove(path.c_str());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->format, "azure-csv");
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_DOUBLE_EQ(t->rows[0].offset_s, 0);
  EXPECT_NEAR(t->rows[1].offset_s, 0.052, 1e-6);
  EXPECT_NEAR(t->rows[2].offset_s, 60, 1e-6);
  EXPECT_EQ(t->rows[0].input_tokens, 4808);
  EXPECT_EQ(t->rows[2].output_tokens, 27);
}

TEST(Trace, ReadsMooncakeJsonl) {
  auto path = writeTemp(
      "{\"timestamp\": 0, \"input_length\": 1000, \"output_length\": 5, \"hash_ids\": [0, 1]}\n"
      "{\"timestamp\": 1500, \"input_length\": 600, \"output_length\": 9, \"hash_ids\": [0, 2]}\n");
  auto t = loadTrace(path);
  std::remove(path.c_str());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->format, "mooncake-jsonl");
  EXPECT_EQ(t->block_tokens, 512);
  EXPECT_DOUBLE_EQ(t->rows[1].offset_s, 1.5);
  EXPECT_EQ(t->rows[1].hash_ids, (std::vector<std::uint64_t>{0, 2}));
}

TEST(Trace, ErrorsNameFileAndLine) {
  struct Case {
    std::string content;
    std::string error;
  } cases[] = {
      {"TIMESTAMP,X\n", ":1: expected the header"},
      {"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,12\n", ":2: expected 3"},
      {"TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,2\n", ":2: bad TIMESTAMP"},
      {"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,x,2\n",
       ":2: bad ContextTokens"},
      {"TIMESTAMP,ContextTokens,GeneratedTokens\n", "has no requests"},
      {"{\"timestamp\": 0, \"input_length\": 5}\n", ":1: missing or bad 'output_length'"},
      {"{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1}\n{bad\n",
       ":2: expected a JSON object"},
      {"{\"timestamp\": 9, \"input_length\": 5, \"output_length\": 1}\n"
       "{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 1}\n",
       ":2: rows must be in arrival order"},
  };
  for (const auto& c : cases) {
    auto path = writeTemp(c.content);
    auto t = loadTrace(path);
    std::remove(path.c_str());
    ASSERT_FALSE(t.ok()) << c.content;
    EXPECT_NE(t.error().message.find(c.error), std::string::npos) << t.error().message;
  }
  EXPECT_FALSE(loadTrace("/nonexistent/trace.csv").ok());
}

TEST(Trace, ParsesFromText) {
  auto t = parseTrace("TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16T18:17:03.5,4,2\r\n",
                      "mem.csv");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->format, "azure-csv");
  EXPECT_EQ(t->rows.at(0).input_tokens, 4);
  auto e = parseTrace("", "mem.csv");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "trace mem.csv has no requests");
}

// Found by fuzz/trace_fuzz.cc: a length past INT_MAX (a float-to-int conversion UBSan reports)
// and a row earlier than the one before it; the other cases are the same checks' neighbours.
TEST(Trace, NumbersOutOfRangeAndRowsOutOfOrderAreErrors) {
  const std::string azure = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
  struct Case {
    std::string content;
    std::string error;
  } cases[] = {
      {"{\"timestamp\": 0, \"input_length\": 671844674407370955161558, \"output_length\": 5}\n",
       ":1: missing or bad 'input_length'"},
      {"{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 2147483648}\n",
       ":1: missing or bad 'output_length'"},
      {"{\"timestamp\": 1e400, \"input_length\": 5, \"output_length\": 1}\n",
       ":1: missing or bad 'timestamp'"},
      {"{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1, \"hash_ids\": [-1]}\n",
       ":1: 'hash_ids' must hold integers that are not negative"},
      {azure + "2023-11-16 18:17:nan,1,2\n", ":2: bad TIMESTAMP"},
      {azure + "2023-11-16 18:17:inf,1,2\n", ":2: bad TIMESTAMP"},
      {azure + "2023-11-16 18:17:03,1,99999999999\n", ":2: bad GeneratedTokens"},
      // Later than the first row, earlier than the one before it.
      {azure + "2023-11-16 18:17:03,1,2\n2023-11-16 18:17:07,1,2\n2023-11-16 18:17:04,1,2\n",
       ":4: rows must be in arrival order"},
  };
  for (const auto& c : cases) {
    auto t = parseTrace(c.content, "f.trace");
    ASSERT_FALSE(t.ok()) << c.content;
    EXPECT_EQ(t.error().message.find("f.trace" + c.error), 0u) << t.error().message;
  }
  auto ok = parseTrace(
      "{\"timestamp\": 0, \"input_length\": 2147483647, \"output_length\": 0, \"hash_ids\": "
      "[18446744073709551615]}\n",
      "f.trace");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->rows[0].input_tokens, 2147483647);
  EXPECT_EQ(ok->rows[0].hash_ids[0], 18446744073709551615u);
}

TEST(Trace, ShippedTracesLoad) {
  for (const char* name :
       {"azure_llm_2023_code.csv", "azure_llm_2023_conv.csv", "mooncake_conversation.jsonl"}) {
    auto t = loadTrace(std::string(TIDEGATE_SOURCE_DIR) + "/data/traces/" + name);
    ASSERT_TRUE(t.ok()) << name << ": " << t.error().message;
    EXPECT_GT(t->rows.size(), 8000u) << name;
    EXPECT_GT(t->rows.back().offset_s, 3000) << name;  // about an hour
  }
}

}  // namespace
}  // namespace tidegate

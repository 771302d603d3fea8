#pragma once
// Request traces: the Azure LLM inference CSV (`TIMESTAMP,ContextTokens,GeneratedTokens`) and the
// Mooncake JSONL (`timestamp` ms, `input_length`, `output_length`, `hash_ids`) formats. The load
// generator replays them; the simulator will run them. The format is detected from the content.
// Every error names the file and line.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tidegate {

struct TraceRow {
  double offset_s = 0;  // arrival time from the first row
  int input_tokens = 0;
  int output_tokens = 0;
  std::vector<std::uint64_t> hash_ids;  // Mooncake: one id per prompt block (equal ids, equal text)
};

struct Trace {
  std::string format;    // "azure-csv" | "mooncake-jsonl"
  int block_tokens = 0;  // tokens per hash_ids block (512 for Mooncake), 0 if none
  std::vector<TraceRow> rows;
};

// Reads the trace file at `path` (parseTrace of its content).
Result<Trace> loadTrace(const std::string& path);
// Parses a trace from its text; `name` stands for the file in messages. A trace without rows is
// an error.
Result<Trace> parseTrace(std::string_view text, const std::string& name);

}  // namespace tidegate

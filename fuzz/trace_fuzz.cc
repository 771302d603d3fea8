// Fuzzes the trace readers (common/trace.h: the Azure CSV and Mooncake JSONL formats), which read
// files from elsewhere for `tidegate bench --trace` and the simulator. Invariants:
// - parseTrace returns a trace or an error naming the file and, for a bad row, its line;
// - a trace has rows, in arrival order from offset 0, with finite offsets and token counts that
//   are not negative.

#include <cmath>
#include <cstdint>
#include <string>

#include "common/trace.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = tidegate::fuzz::asText(data, size);
  const auto trace = tidegate::parseTrace(text, "fuzz.trace");
  if (!trace) {
    FUZZ_CHECK(trace.error().message.find("fuzz.trace") != std::string::npos);
    return 0;
  }
  FUZZ_CHECK(trace->format == (text.starts_with('{') ? "mooncake-jsonl" : "azure-csv"));
  FUZZ_CHECK(!trace->rows.empty());
  FUZZ_CHECK(trace->rows.front().offset_s == 0);
  double previous = 0;
  for (const auto& row : trace->rows) {
    FUZZ_CHECK(std::isfinite(row.offset_s) && row.offset_s >= previous);
    FUZZ_CHECK(row.input_tokens >= 0 && row.output_tokens >= 0);
    previous = row.offset_s;
  }
  return 0;
}

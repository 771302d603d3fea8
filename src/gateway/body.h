#pragma once
// Reads what the gateway needs from an OpenAI request body — the top-level `model`, `stream` and
// `stream_options` — with a single pass that validates the JSON but builds no DOM, and rewrites
// the body by splicing byte ranges (a new `model`, `stream_options.include_usage: true`), so the
// rest of the body reaches the engine byte for byte. Pure functions; safe from any thread.

#include <optional>
#include <string>
#include <string_view>

namespace tidegate::gateway {

struct Span {
  std::size_t begin = 0, end = 0;  // byte range of a value in the body
  bool found() const { return end > begin; }
};

struct RequestFields {
  std::string model;  // decoded
  Span model_span;    // the model value, quotes included
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage was true
  bool continuous_usage = false;  // stream_options.continuous_usage_stats was true (vLLM)
  long max_tokens = -1;           // max_tokens or max_completion_tokens; -1 when absent
  Span stream_options_span;       // the stream_options value, if present
  // The message contents (strings, or the text of text parts; a newline after each) when
  // `messages` is an array, else a `prompt` string: for prefix affinity and token estimates.
  std::string prompt_text;
};

// Scans `body`. Errors (malformed JSON, not an object, wrong field types, missing model, a member
// the gateway reads given twice) are returned as a message and the offending field.
struct ScanError {
  std::string message;
  std::string param;
};
std::optional<ScanError> scanRequest(std::string_view body, RequestFields& out);

// Returns `body` with the model replaced by `model` (if not empty) and, when `force_usage` on a
// streamed request, stream_options set to {"include_usage":true,"continuous_usage_stats":true}
// (an existing stream_options object is replaced): vLLM then reports the usage so far in every
// chunk, so a stream the client drops midway is still accounted with real token counts.
// REQUIRES: `f` came from scanRequest(body).
std::string rewriteBody(std::string_view body, const RequestFields& f, std::string_view model,
                        bool force_usage);

}  // namespace tidegate::gateway

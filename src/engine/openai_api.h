#pragma once
// The engine's OpenAI-compatible request parsing and response formatting, apart from the server
// so it can be tested without sockets. Requests are validated the way vLLM's OpenAI server
// validates them; every failure becomes an ApiError that the server sends in OpenAI format.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/http_server.h"

namespace tidegate::engine {

struct ApiError {
  http::Status status = http::Status::bad_request;
  std::string message;
  std::string param;  // the offending field, if any
  std::string code;
};

enum class Endpoint { kChat, kCompletion };

struct GenParams {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;
  std::vector<std::uint32_t> prompt_ids;  // the prompt as the model sees it (chat template applied)
  std::string echo_source;                // what --mode echo repeats: last user message / prompt
  std::optional<int> max_tokens;
  std::vector<std::string> stop;
  std::optional<std::uint64_t> seed;
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage = false;  // stream_options.continuous_usage_stats (vLLM): usage per chunk
  bool ignore_eos = false;
};

// Parses a /v1/chat/completions or /v1/completions body.
std::variant<GenParams, ApiError> parseGeneration(Endpoint endpoint, std::string_view body);

struct EmbeddingParams {
  std::string model;
  std::vector<std::string> inputs;  // token-id inputs are rendered as text of their ids
  std::vector<std::size_t> tokens;  // token count of each input
};
std::variant<EmbeddingParams, ApiError> parseEmbeddings(std::string_view body);

// Chat template overhead, as in OpenAI's accounting: each message costs its content plus
// kTokensPerMessage tokens of role markers, and the reply is primed with kReplyPrimingTokens.
inline constexpr int kTokensPerMessage = 4;
inline constexpr int kReplyPrimingTokens = 3;

// Builds the streaming chunks and final bodies of one response. Chunks are rendered by string
// concatenation around a fixed prefix (hot path: one chunk per token).
class ResponseWriter {
 public:
  ResponseWriter(Endpoint endpoint, std::string id, long long created, std::string model,
                 bool include_usage, bool continuous_usage = false);

  // `data: {...}\n\n` for the first chat chunk (delta.role); empty for completions.
  std::string roleChunk() const;
  // Appends one content chunk; `finish_reason` empty while the stream goes on. With continuous
  // usage the chunk carries the usage so far (`completion_tokens` including this chunk's token).
  void appendContentChunk(std::string& out, std::string_view text, std::string_view finish_reason,
                          std::string_view stop_reason, int prompt_tokens = 0,
                          int completion_tokens = 0) const;
  // The usage chunk (choices: []) and `data: [DONE]`.
  std::string usageChunk(int prompt_tokens, int completion_tokens) const;
  static constexpr std::string_view kDone = "data: [DONE]\n\n";

  // A complete non-streaming body.
  std::string fullBody(std::string_view text, std::string_view finish_reason,
                       std::string_view stop_reason, int prompt_tokens,
                       int completion_tokens) const;

 private:
  Endpoint endpoint_;
  std::string id_;
  long long created_;
  std::string model_;
  bool include_usage_;
  bool continuous_usage_;
  std::string prefix_;  // `data: {"id":...,"model":...,"choices":[{"index":0,`
};

}  // namespace tidegate::engine

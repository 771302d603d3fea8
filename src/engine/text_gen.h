#pragma once
// What the simulated model says. The whole output of a request is decided when it arrives (the
// scheduler only needs its length and token ids); the server then streams it token by token.
//   random: words drawn from a small vocabulary with a seeded RNG (the request's `seed`, else
//           the engine's --seed and a request counter), so a seeded request answers the same
//           text every time; every word is exactly one token under common/tokenizer.h.
//   echo:   the last user message (chat) or the prompt (completions), token by token.
// Generation ends at max_tokens ("length"), at a stop string ("stop", the text before it kept),
// or at an end-of-sequence token ("stop"): in echo mode after the echoed text, in random mode
// after a geometric number of tokens with mean `eos_mean` (0: never; `ignore_eos` disables it).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tidegate::engine {

enum class TextMode { kRandom, kEcho };

struct GenerateSpec {
  TextMode mode = TextMode::kRandom;
  std::string_view echo_source;
  int max_tokens = 16;
  const std::vector<std::string>* stop = nullptr;
  std::uint64_t seed = 0;
  double eos_mean = 0;
  bool ignore_eos = false;
};

struct GeneratedText {
  std::vector<std::string> pieces;  // one per output token; the EOS token's piece is empty
  std::vector<std::uint32_t> ids;   // token ids, for prefix-cache hashes
  std::string finish_reason;        // "stop" or "length"
  std::string stop_reason;          // the matched stop string, if any
};

GeneratedText generateText(const GenerateSpec& spec);

}  // namespace tidegate::engine
